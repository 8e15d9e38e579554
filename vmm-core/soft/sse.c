/* sse.c - SSE/SSE2/SSE3/SSE4.1 floating point (the subset softcpu_exec_sse
 * lists) and LDMXCSR/STMXCSR; packed integers, MMX and data movement are in
 * simd_int.c, the x87 and FXSAVE/FXRSTOR in x87.c.
 *
 * Arithmetic and float conversions run on the host's SSE unit under the
 * guest's MXCSR rounding control, FTZ and DAZ (see "MXCSR applied");
 * compares, MIN/MAX, ROUND and conversions to integers are done in software
 * with DAZ applied and their exception flags set by rule.  Every
 * instruction computes its whole result first, then fp_finish() sets the
 * sticky flags and, for an unmasked exception, raises #XM (#UD with
 * CR4.OSXMMEXCPT clear) before anything is written: fault semantics. */
#include <math.h>

#include "simd.h"

static double as_double(uint64_t v) { double d; memcpy(&d, &v, 8); return d; }
static uint64_t from_double(double d) { uint64_t v; memcpy(&v, &d, 8); return v; }
static float as_float(uint32_t v) { float f; memcpy(&f, &v, 4); return f; }
static uint32_t from_float(float f) { uint32_t v; memcpy(&v, &f, 4); return v; }

#define MX_IE 0x01u
#define MX_DE 0x02u
#define MX_ZE 0x04u
#define MX_OE 0x08u
#define MX_UE 0x10u
#define MX_PE 0x20u
#define MXCSR_FLAGS 0x3fu
#define MXCSR_PRE (MX_IE | MX_DE | MX_ZE) /* detected before the computation */
#define MXCSR_DAZ 0x40u
#define MXCSR_MASKS 0x1f80u
#define MXCSR_FTZ 0x8000u
#define MXCSR_CONTROL 0xe040u /* FTZ, RC, DAZ */

/* The exceptions the guest leaves unmasked, as flag bits. */
static inline uint32_t unmasked(const struct softcpu *c)
{
	return ~(c->mxcsr >> 7) & MXCSR_FLAGS;
}

/* ---- MXCSR applied ----
 * The host's own SSE unit does the arithmetic and float conversions under
 * the guest's rounding control, FTZ and DAZ, with every exception masked,
 * and the flags it raises are the instruction's.  Each computation sits
 * between fp_enter() and fp_leave() with its inputs and result pinned by
 * FP_PIN, so the compiler cannot move it out: a memory access that faults
 * never runs inside.  LDMXCSR is slow: while the guest masks every
 * exception (Linux and glibc do), the host's MXCSR is loaded only when its
 * control bits differ from the guest's, or when it holds a flag the guest
 * has not (which the guest would then inherit), so the flags fp_leave()
 * returns may include earlier instructions' (already the guest's: setting
 * them again changes nothing).  With an exception unmasked every window
 * starts from clear flags, so they are exactly this instruction's, and FTZ
 * is off when underflow is unmasked (the CPU ignores FTZ then, and a tiny
 * exact result must be seen).  fp_leave() restores only the host's control
 * bits.  Host floating point outside a window (the software forms) can
 * leave flags behind: the guest has them already, or the next window
 * clears them.  Other hosts compute with round-to-nearest and no FTZ/DAZ,
 * and report only the flags set by rule. */
#if defined(__x86_64__)
#define FP_PIN(v) __asm__ volatile("" : "+x"(v))
static inline uint32_t read_host_mxcsr(void)
{
	uint32_t v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}
static inline void load_host_mxcsr(uint32_t v)
{
	__asm__ volatile("ldmxcsr %0" : : "m"(v));
}
static inline uint32_t fp_enter(const struct softcpu *c)
{
	uint32_t host = read_host_mxcsr(), want = (c->mxcsr & (MXCSR_CONTROL | MXCSR_FLAGS)) | MXCSR_MASKS;
	if (unmasked(c)) {
		want &= ~MXCSR_FLAGS;
		if (unmasked(c) & MX_UE)
			want &= ~MXCSR_FTZ;
		if (host != want)
			load_host_mxcsr(want);
	} else if ((host & ~MXCSR_FLAGS) != (want & ~MXCSR_FLAGS) || (host & MXCSR_FLAGS & ~c->mxcsr)) {
		load_host_mxcsr(want);
	}
	return host;
}
/* The flags raised since fp_enter(). */
static inline uint32_t fp_leave(uint32_t host)
{
	uint32_t now = read_host_mxcsr();
	if ((now ^ host) & ~MXCSR_FLAGS)
		load_host_mxcsr(host);
	return now & MXCSR_FLAGS;
}
/* a OP b as the instruction computes it: for + and * the compiler may swap
 * C's operands, which changes the NaN a result with two NaNs keeps (the
 * first operand's). */
#define FP_ARITH(insn, op, a, b)                                                                   \
	__extension__({                                                                            \
		__typeof__(a) r_ = (a);                                                            \
		__asm__ volatile(insn " %1, %0" : "+x"(r_) : "x"(b));                              \
		r_;                                                                                \
	})
/* The square root as one instruction: __builtin_sqrt of a negative
 * operand calls libm for errno, whose own compares raise DE for a denormal
 * (CI's random difftest seed 0x18ed72cfdc440547, SQRTSS). */
#define FP_SQRT(insn, fn, b)                                                                       \
	__extension__({                                                                            \
		__typeof__(b) r_;                                                                  \
		__asm__ volatile(insn " %1, %0" : "=x"(r_) : "x"(b));                              \
		r_;                                                                                \
	})
#else
#define FP_PIN(v) ((void)0)
#define FP_ARITH(insn, op, a, b) ((a) op (b))
#define FP_SQRT(insn, fn, b) fn(b)
static inline uint32_t fp_enter(const struct softcpu *c) { (void)c; return 0; }
static inline uint32_t fp_leave(uint32_t host) { (void)host; return 0; }
#endif

/* The end of every floating-point instruction, before it writes anything:
 * `raised` are the flags its computation raised.  Masked ones become
 * sticky.  An unmasked one faults with the destination unchanged: an
 * unmasked invalid, denormal or divide-by-zero stops the instruction before
 * its computation, so only those flags are set (SDM vol. 1, 11.5.1). */
static noreturn void fp_fault(struct softcpu *c, uint32_t raised, uint32_t bad)
{
	if (bad & MXCSR_PRE)
		raised &= MXCSR_PRE;
	c->mxcsr |= raised;
	if (c->cr4 & CR4_OSXMMEXCPT)
		softcpu_raise(c, EXC_XM, 0, false);
	raise_ud(c);
}

static inline void fp_finish(struct softcpu *c, uint32_t raised)
{
	uint32_t bad = raised & unmasked(c);
	if (unlikely(bad))
		fp_fault(c, raised, bad);
	c->mxcsr |= raised;
}

/* ---- lane classification (bits of a w-byte lane, w 4 or 8) ---- */

static uint64_t exp_mask(unsigned w) { return w == 8 ? 0x7ff0000000000000ull : 0x7f800000u; }
static uint64_t mant_mask(unsigned w) { return w == 8 ? 0x000fffffffffffffull : 0x007fffffu; }
static uint64_t quiet_bit(unsigned w) { return w == 8 ? 1ull << 51 : 1u << 22; }

static bool is_nan(unsigned w, uint64_t bits)
{
	return (bits & exp_mask(w)) == exp_mask(w) && (bits & mant_mask(w));
}

static bool is_snan(unsigned w, uint64_t bits)
{
	return is_nan(w, bits) && !(bits & quiet_bit(w));
}

static bool is_denormal(unsigned w, uint64_t bits)
{
	return !(bits & exp_mask(w)) && (bits & mant_mask(w));
}

/* DAZ for the operations done in software: a denormal input is a zero of
 * its sign. */
static uint64_t daz(const struct softcpu *c, unsigned w, uint64_t bits)
{
	if ((c->mxcsr & MXCSR_DAZ) && is_denormal(w, bits))
		return bits & (1ull << (8 * w - 1));
	return bits;
}

/* A lane's value as a double (exact for single precision). */
static double lane_value(unsigned w, uint64_t bits)
{
	return w == 8 ? as_double(bits) : as_float((uint32_t)bits);
}

/* The flags a compare of two lanes (after DAZ) raises: invalid for a
 * signalling NaN, or for any NaN when `signalling` (CMP LT/LE/NLT/NLE,
 * COMIS, MIN/MAX); else denormal for a denormal operand. */
static uint32_t compare_flags(unsigned w, uint64_t a, uint64_t b, bool signalling)
{
	if (is_nan(w, a) || is_nan(w, b))
		return (signalling || is_snan(w, a) || is_snan(w, b)) ? MX_IE : 0;
	return (is_denormal(w, a) || is_denormal(w, b)) ? MX_DE : 0;
}

/* x rounded to an integer: mode 0 nearest even (the host's default
 * rounding, outside a window), 1 down, 2 up, 3 toward zero. */
static double round_int(double x, unsigned mode)
{
	switch (mode) {
	case 0: return nearbyint(x);
	case 1: return floor(x);
	case 2: return ceil(x);
	default: return trunc(x);
	}
}

/* One lane of arithmetic on the host, width w (4 or 8): 0x51 sqrt, 0x58
 * add, 0x59 mul, 0x5c sub, 0x5e div; 0x5a converts the double b to single
 * (w 4). */
static uint64_t host_op(unsigned op, unsigned w, uint64_t a_bits, uint64_t b_bits)
{
	if (op == 0x5a) {
		double d = as_double(b_bits);
		FP_PIN(d);
		float f = (float)d;
		FP_PIN(f);
		return from_float(f);
	}
	if (w == 8) {
		double a = as_double(a_bits), b = as_double(b_bits), r;
		FP_PIN(a);
		FP_PIN(b);
		switch (op) {
		case 0x51: r = FP_SQRT("sqrtsd", __builtin_sqrt, b); break;
		case 0x58: r = FP_ARITH("addsd", +, a, b); break;
		case 0x59: r = FP_ARITH("mulsd", *, a, b); break;
		case 0x5c: r = FP_ARITH("subsd", -, a, b); break;
		default: r = FP_ARITH("divsd", /, a, b); break;
		}
		FP_PIN(r);
		return from_double(r);
	}
	float a = as_float((uint32_t)a_bits), b = as_float((uint32_t)b_bits), r;
	FP_PIN(a);
	FP_PIN(b);
	switch (op) {
	case 0x51: r = FP_SQRT("sqrtss", __builtin_sqrtf, b); break;
	case 0x58: r = FP_ARITH("addss", +, a, b); break;
	case 0x59: r = FP_ARITH("mulss", *, a, b); break;
	case 0x5c: r = FP_ARITH("subss", -, a, b); break;
	default: r = FP_ARITH("divss", /, a, b); break;
	}
	FP_PIN(r);
	return from_float(r);
}

/* ---- unmasked overflow and underflow ----
 * With OM (UM) clear an overflowing (tiny) result sets OE (UE) and PE only
 * if the result rounded to the precision with an unbounded exponent is
 * inexact; the masked computation sets PE whenever the delivered result is
 * (and UE only for a tiny inexact result).  So each such lane is redone
 * with an operand scaled by a power of two (exactly) until the result is
 * normal, whose PE is the unbounded one.  x86 hosts only: elsewhere no
 * host flags are read. */
#if defined(__x86_64__)
static uint32_t take_host_flags(void)
{
	uint32_t m = read_host_mxcsr();
	if (m & MXCSR_FLAGS)
		load_host_mxcsr(m & ~MXCSR_FLAGS);
	return m & MXCSR_FLAGS;
}

/* Unbiased exponent of a lane (denormals: the minimum). */
static int exponent(unsigned w, uint64_t bits)
{
	int e = (int)((bits & exp_mask(w)) >> (w == 8 ? 52 : 23)), bias = w == 8 ? 1023 : 127;
	return e ? e - bias : 1 - bias;
}

static uint64_t scaled(unsigned w, uint64_t bits, int k)
{
	uint64_t p = w == 8 ? (uint64_t)(k + 1023) << 52 : (uint64_t)(k + 127) << 23;
	return host_op(0x59, w, bits, p);
}

/* PE of the unbounded-exponent result of op (a, b already after DAZ). */
static uint32_t unbounded_pe(unsigned op, unsigned w, uint64_t a, uint64_t b, bool over)
{
	int k = w == 8 ? 256 : 32, emax = w == 8 ? 1023 : 127;
	uint64_t sign = 1ull << (8 * w - 1);
	if (op == 0x58 || op == 0x5c) { /* tiny sums are exact */
		if (!over)
			return 0;
		uint64_t small = exponent(w, a) < exponent(w, b) ? a : b;
		if ((small & ~sign) && exponent(w, small) < 2 - emax + (w == 8 ? 64 : 30))
			return MX_PE; /* far below the huge operand's last bit */
		a = scaled(w, a, -2);
		b = scaled(w, b, -2);
	}
	unsigned rw = op == 0x5a ? 4 : w;
	for (int round = 0; round < 16; round++) { /* a few rounds reach the normal range */
		take_host_flags();
		uint64_t r = host_op(op, w, a, b);
		uint32_t f = take_host_flags();
		if (!(f & (MX_OE | MX_UE)) && !is_denormal(rw, r))
			return f & MX_PE;
		bool big = f & MX_OE;
		if (op == 0x5a)
			b = scaled(8, b, big ? -64 : 64);
		else if (op == 0x59 && (exponent(w, a) > exponent(w, b)) == big)
			a = scaled(w, a, big ? -k : k);
		else if (op == 0x59)
			b = scaled(w, b, big ? -k : k);
		else if (big ? exponent(w, a) > 0 : exponent(w, a) < emax - k - 1)
			a = scaled(w, a, big ? -k : k); /* division: scale the dividend... */
		else
			b = scaled(w, b, big ? k : -k); /* ...or the divisor */
	}
	return MX_PE;
}
#endif

/* The flags of one lane's result `out` (w bytes) when overflow or
 * underflow is unmasked, taken from the host. */
static __attribute__((noinline)) uint32_t lane_post_flags(const struct softcpu *c, unsigned op, unsigned w,
							  uint64_t a, uint64_t b, uint64_t out)
{
	uint32_t um = unmasked(c) & (MX_OE | MX_UE);
#if defined(__x86_64__)
	uint32_t f = take_host_flags();
	bool tiny = (f & MX_UE) || is_denormal(op == 0x5a ? 4 : w, out);
	if (((f & MX_OE) && (um & MX_OE)) || (tiny && (um & MX_UE)))
		f = (f & MXCSR_PRE) | (f & MX_OE ? MX_OE : MX_UE) |
		    unbounded_pe(op, w, daz(c, w, a), op == 0x5a ? daz(c, 8, b) : daz(c, w, b), f & MX_OE);
	return f;
#else
	(void)op;
	(void)a;
	(void)b;
	return (um & MX_UE) && is_denormal(op == 0x5a ? 4 : w, out) ? MX_UE : 0;
#endif
}

/* Scalar/packed arithmetic on one lane (host_op), between fp_enter() and
 * fp_leave() (one pair per instruction: the MXCSR accesses cost more than
 * the arithmetic). */
static uint64_t fp_op(const struct softcpu *c, unsigned op, unsigned w, uint64_t a_bits, uint64_t b_bits,
		      uint32_t *flags)
{
	uint64_t out = host_op(op, w, a_bits, b_bits);
	if (unlikely(unmasked(c) & (MX_OE | MX_UE)))
		*flags |= lane_post_flags(c, op, w, a_bits, b_bits, out);
	return out;
}

/* MINPS/MAXPS lanes: the second operand unless the first compares below
 * (above) it, so a NaN in either gives the second operand's bits. */
static uint64_t min_max(const struct softcpu *c, unsigned op, unsigned w, uint64_t a_bits, uint64_t b_bits,
			uint32_t *flags)
{
	a_bits = daz(c, w, a_bits);
	b_bits = daz(c, w, b_bits);
	*flags |= compare_flags(w, a_bits, b_bits, true);
	double a = lane_value(w, a_bits), b = lane_value(w, b_bits);
	return (op == 0x5d ? a < b : a > b) ? a_bits : b_bits;
}

/* COMISS/UCOMISS/COMISD/UCOMISD: ZF PF CF, the others cleared. */
static void comis(struct softcpu *c, unsigned w, uint64_t a_bits, uint64_t b_bits, bool signalling)
{
	a_bits = daz(c, w, a_bits);
	b_bits = daz(c, w, b_bits);
	fp_finish(c, compare_flags(w, a_bits, b_bits, signalling));
	double a = lane_value(w, a_bits), b = lane_value(w, b_bits);
	uint64_t f;
	if (isnan(a) || isnan(b))
		f = F_ZF | F_PF | F_CF;
	else if (a < b)
		f = F_CF;
	else if (a == b)
		f = F_ZF;
	else
		f = 0;
	flags_materialize(c);
	c->rflags = (c->rflags & ~(uint64_t)F_ARITH) | f;
}

/* Conversions to an integer (`to` -4 or -8: a signed integer of that size)
 * in software, under MXCSR.RC or truncating: invalid for a NaN or a value
 * out of range (the "integer indefinite" result), else precision when
 * rounding changed it.  DAZ applies; denormal is not reported. */
static uint64_t cvt_to_int(const struct softcpu *c, unsigned w, int to, uint64_t bits, bool truncate,
			   uint32_t *flags)
{
	double d = lane_value(w, daz(c, w, bits));
	double r = round_int(d, truncate ? 3 : (c->mxcsr >> 13) & 3);
	double lim = to == -8 ? 9223372036854775808.0 : 2147483648.0;
	if (isnan(r) || r >= lim || r < -lim) {
		*flags |= MX_IE;
		return to == -8 ? 0x8000000000000000ull : 0x80000000u;
	}
	if (r != d)
		*flags |= MX_PE;
	return to == -8 ? (uint64_t)(int64_t)r : (uint32_t)(int32_t)r;
}

/* Other conversions, on the host under the guest's MXCSR: `from` and `to`
 * are 4 (single), 8 (double), or -4/-8 for a signed integer source. */
static uint64_t fp_convert(const struct softcpu *c, int from, int to, uint64_t bits, uint32_t *flags)
{
	uint64_t out;
	if (to == 8) {
		double d;
		if (from == 4) {
			float f = as_float((uint32_t)bits);
			FP_PIN(f);
			d = f;
		} else {
			int64_t i = from == -8 ? (int64_t)bits : (int32_t)bits;
			__asm__ volatile("" : "+r"(i));
			d = (double)i;
		}
		FP_PIN(d);
		out = from_double(d);
	} else {
		if (from == 8)
			return fp_op(c, 0x5a, 4, 0, bits, flags);
		int64_t i = from == -8 ? (int64_t)bits : (int32_t)bits; /* integer to single: one rounding */
		__asm__ volatile("" : "+r"(i));
		float f = (float)i;
		FP_PIN(f);
		out = from_float(f);
	}
	return out;
}

/* ROUNDPS/PD/SS/SD: imm8 bits 1:0 the rounding (nearest even, down, up,
 * toward zero), bit 2 MXCSR.RC instead, bit 3 no precision exception.
 * Invalid for a signalling NaN (quietened); denormal is not reported. */
static uint64_t round_lane(const struct softcpu *c, unsigned w, uint64_t bits, unsigned imm, uint32_t *flags)
{
	bits = daz(c, w, bits);
	if (is_nan(w, bits)) {
		if (is_snan(w, bits))
			*flags |= MX_IE;
		return bits | quiet_bit(w);
	}
	double x = lane_value(w, bits);
	double r = round_int(x, (imm & 4) ? (c->mxcsr >> 13) & 3 : imm & 3);
	if (r != x && !(imm & 8))
		*flags |= MX_PE;
	return w == 8 ? from_double(r) : from_float((float)r);
}

/* 0F 3A forms with floating point: ROUND*, DPPS, DPPD (the decoder lets
 * no other opcode of the map reach here: simd_int.c takes the rest). */
static void exec_sse41_fp(struct softcpu *c, const struct insn *in, unsigned op)
{
	struct xmm_reg *dst = xreg(c, in->reg), src, r = *dst;
	unsigned imm = (unsigned)in->imm & 0xff;
	uint32_t flags = 0;
	if (op == 0x0a || op == 0x0b) { /* ROUNDSS / ROUNDSD */
		unsigned w = op == 0x0a ? 4 : 8;
		set_lane(&r, w, 0, round_lane(c, w, read_scalar(c, in, w), imm, &flags));
	} else if (op == 0x08 || op == 0x09) { /* ROUNDPS / ROUNDPD */
		unsigned w = op == 0x08 ? 4 : 8;
		src = read_x(c, in, true);
		for (unsigned i = 0; i < 16 / w; i++)
			set_lane(&r, w, i, round_lane(c, w, lane(&src, w, i), imm, &flags));
	} else { /* DPPS, DPPD: products, then pairwise sums, each rounded (+0 for lanes left out) */
		unsigned w = op == 0x40 ? 4 : 8, n = 16 / w;
		uint64_t t[4];
		src = read_x(c, in, true);
		uint32_t host = fp_enter(c);
		for (unsigned i = 0; i < n; i++)
			t[i] = (imm >> (4 + i)) & 1 ? fp_op(c, 0x59, w, lane(dst, w, i), lane(&src, w, i), &flags) : 0;
		/* Exceptions are taken stage by stage (SDM, DPPS): an unmasked one
		 * in the products stops the instruction before the sums, one in
		 * DPPS's pair sums before the last sum. */
		flags |= fp_leave(host);
		fp_finish(c, flags);
		host = fp_enter(c);
		uint64_t sum = fp_op(c, 0x58, w, t[0], t[1], &flags);
		if (n == 4) {
			uint64_t high = fp_op(c, 0x58, w, t[2], t[3], &flags);
			flags |= fp_leave(host);
			fp_finish(c, flags);
			host = fp_enter(c);
			sum = fp_op(c, 0x58, w, sum, high, &flags);
		}
		flags |= fp_leave(host);
		for (unsigned i = 0; i < n; i++)
			set_lane(&r, w, i, (imm >> i) & 1 ? sum : 0);
	}
	fp_finish(c, flags);
	*dst = r;
}

void softcpu_exec_sse(struct softcpu *c, const struct insn *in)
{
	unsigned op = in->op & 0xff, p = sse_prefix(in);
	if (softcpu_exec_simd_int(c, in))
		return;
	check_sse(c);
	if (in->op == (OP_0F | 0x3a) && p == P_66) {
		exec_sse41_fp(c, in, sse_opcode(in));
		return;
	}
	if (in->op == (OP_0F | 0xae)) { /* LDMXCSR / STMXCSR */
		uint64_t lin = mem_addr(c, in);
		if ((in->reg & 7) == 2) {
			uint64_t v = mem_read(c, lin, 4);
			if (v & ~(uint64_t)SOFTCPU_MXCSR_MASK)
				raise_gp(c, 0);
			c->mxcsr = (uint32_t)v;
		} else {
			mem_write(c, lin, 4, c->mxcsr);
		}
		return;
	}
	struct xmm_reg *dst = xreg(c, in->reg);
	struct xmm_reg src;

	switch (op) {
	case 0x10: case 0x11: /* MOVUPS/MOVUPD/MOVSS/MOVSD */
		if (p == P_F3 || p == P_F2) {
			unsigned size = p == P_F3 ? 4 : 8;
			if (op == 0x10) {
				uint64_t v = read_scalar(c, in, size);
				if (in->mod == 3)
					dst->q[0] = (dst->q[0] & ~size_mask(size)) | v;
				else
					*dst = (struct xmm_reg){{v, 0}};
			} else if (in->mod == 3) {
				struct xmm_reg *d = xreg(c, in->rm);
				d->q[0] = (d->q[0] & ~size_mask(size)) | (dst->q[0] & size_mask(size));
			} else {
				mem_write(c, mem_addr(c, in), size, dst->q[0]);
			}
		} else if (op == 0x10) {
			*dst = read_x(c, in, false);
		} else {
			write_x(c, in, false, *dst);
		}
		return;
	case 0x28: case 0x29: case 0x2b: /* MOVAPS/MOVAPD, MOVNTPS/PD */
		if (p != P_NONE && p != P_66)
			break;
		if (op == 0x28)
			*dst = read_x(c, in, true);
		else if (op == 0x2b && in->mod == 3)
			raise_ud(c);
		else
			write_x(c, in, true, *dst);
		return;
	case 0x12: case 0x13: case 0x16: case 0x17: { /* MOVLPS/PD, MOVHPS/PD, MOVHLPS, MOVLHPS */
		if (p == P_F2 && op == 0x12) { /* MOVDDUP (SSE3): m64 */
			dst->q[0] = dst->q[1] = read_scalar(c, in, 8);
			return;
		}
		if (p == P_F3 && (op == 0x12 || op == 0x16)) { /* MOVSLDUP / MOVSHDUP (SSE3) */
			src = read_x(c, in, true);
			unsigned odd = op == 0x16;
			for (unsigned i = 0; i < 4; i += 2) {
				uint64_t v = lane(&src, 4, i + odd);
				set_lane(dst, 4, i, v);
				set_lane(dst, 4, i + 1, v);
			}
			return;
		}
		if (p != P_NONE && p != P_66)
			break;
		unsigned half = op >= 0x16;
		if (op == 0x12 || op == 0x16) {
			if (in->mod == 3) {
				if (p != P_NONE)
					raise_ud(c);
				dst->q[half] = xreg(c, in->rm)->q[!half]; /* MOVHLPS / MOVLHPS */
			} else {
				dst->q[half] = mem_read(c, mem_addr(c, in), 8);
			}
		} else {
			if (in->mod == 3)
				raise_ud(c);
			mem_write(c, mem_addr(c, in), 8, dst->q[half]);
		}
		return;
	}
	case 0x2a: /* CVTSI2SS / CVTSI2SD */
		if (p == P_F3 || p == P_F2) {
			unsigned size = (in->rex & 8) ? 8 : 4;
			uint64_t v = in->mod == 3 ? get_reg(c, in, in->rm, size) : mem_read(c, mem_addr(c, in), size);
			unsigned w = p == P_F2 ? 8 : 4;
			uint32_t flags = 0, host = fp_enter(c);
			uint64_t r = fp_convert(c, -(int)size, (int)w, v, &flags);
			fp_finish(c, flags | fp_leave(host));
			set_lane(dst, w, 0, r);
			return;
		}
		break;
	case 0x2c: case 0x2d: /* CVTT / CVT SS/SD 2SI */
		if (p == P_F3 || p == P_F2) {
			unsigned size = (in->rex & 8) ? 8 : 4;
			unsigned w = p == P_F2 ? 8 : 4;
			uint32_t flags = 0;
			uint64_t r = cvt_to_int(c, w, -(int)size, read_scalar(c, in, w), op == 0x2c, &flags);
			fp_finish(c, flags);
			set_reg(c, in, in->reg, size, r);
			return;
		}
		break;
	case 0x2e: case 0x2f: /* UCOMISS/D, COMISS/D (a QNaN signals too) */
		if (p == P_NONE || p == P_66) {
			unsigned w = p == P_66 ? 8 : 4;
			uint64_t b = read_scalar(c, in, w);
			comis(c, w, dst->q[0] & size_mask(w), b, op == 0x2f);
			return;
		}
		break;
	case 0x50: /* MOVMSKPS/PD */
		if (in->mod == 3 && (p == P_NONE || p == P_66)) {
			struct xmm_reg *s = xreg(c, in->rm);
			unsigned w = p == P_66 ? 8 : 4, mask = 0;
			for (unsigned i = 0; i < 16 / w; i++)
				mask |= (unsigned)(lane(s, w, i) >> (8 * w - 1)) << i;
			set_reg(c, in, in->reg, 4, mask);
			return;
		}
		break;
	case 0x54: case 0x55: case 0x56: case 0x57: /* ANDPS ANDNPS ORPS XORPS (and PD) */
		if (p != P_NONE && p != P_66)
			break;
		src = read_x(c, in, true);
		for (int i = 0; i < 2; i++) {
			uint64_t a = dst->q[i], b = src.q[i];
			dst->q[i] = op == 0x54 ? a & b : op == 0x55 ? ~a & b : op == 0x56 ? a | b : a ^ b;
		}
		return;
	case 0x51: case 0x58: case 0x59: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
	{
		unsigned w = p == P_F2 || p == P_66 ? 8 : 4, n = 16 / w;
		struct xmm_reg r = *dst;
		uint32_t flags = 0;
		if (p == P_F2 || p == P_F3) { /* scalar */
			src.q[0] = read_scalar(c, in, w);
			n = 1;
		} else {
			src = read_x(c, in, true);
		}
		if (op == 0x5d || op == 0x5f) {
			for (unsigned i = 0; i < n; i++)
				set_lane(&r, w, i, min_max(c, op, w, lane(dst, w, i), lane(&src, w, i), &flags));
		} else {
			uint32_t host = fp_enter(c);
			for (unsigned i = 0; i < n; i++)
				set_lane(&r, w, i, fp_op(c, op, w, lane(dst, w, i), lane(&src, w, i), &flags));
			flags |= fp_leave(host);
		}
		fp_finish(c, flags);
		*dst = r;
		return;
	}
	case 0x5a: { /* CVTSS2SD, CVTSD2SS, CVTPS2PD, CVTPD2PS */
		struct xmm_reg r = *dst;
		uint32_t flags = 0, host;
		if (p == P_F3 || p == P_F2) {
			uint64_t v = read_scalar(c, in, p == P_F3 ? 4 : 8);
			host = fp_enter(c);
			if (p == P_F3)
				r.q[0] = fp_convert(c, 4, 8, v, &flags);
			else
				set_lane(&r, 4, 0, fp_convert(c, 8, 4, v, &flags));
		} else if (p == P_NONE) { /* CVTPS2PD: the low two floats */
			uint64_t v = read_scalar(c, in, 8);
			host = fp_enter(c);
			r.q[0] = fp_convert(c, 4, 8, (uint32_t)v, &flags);
			r.q[1] = fp_convert(c, 4, 8, v >> 32, &flags);
		} else { /* CVTPD2PS */
			src = read_x(c, in, true);
			host = fp_enter(c);
			r.q[0] = fp_convert(c, 8, 4, src.q[0], &flags) | fp_convert(c, 8, 4, src.q[1], &flags) << 32;
			r.q[1] = 0;
		}
		fp_finish(c, flags | fp_leave(host));
		*dst = r;
		return;
	}
	case 0xd0: case 0x7c: case 0x7d: { /* SSE3: ADDSUBPD/PS, HADDPD/PS, HSUBPD/PS */
		if (p != P_66 && p != P_F2)
			break;
		unsigned w = p == P_66 ? 8 : 4, n = 16 / w;
		struct xmm_reg a = *dst, r;
		uint32_t flags = 0;
		src = read_x(c, in, true);
		uint32_t host = fp_enter(c);
		for (unsigned i = 0; i < n; i++) {
			if (op == 0xd0) { /* subtract in even lanes, add in odd ones */
				set_lane(&r, w, i, fp_op(c, i & 1 ? 0x58 : 0x5c, w, lane(&a, w, i), lane(&src, w, i), &flags));
			} else { /* pairs of the destination, then of the source */
				const struct xmm_reg *from = i < n / 2 ? &a : &src;
				unsigned j = 2 * (i % (n / 2));
				set_lane(&r, w, i,
					 fp_op(c, op == 0x7c ? 0x58 : 0x5c, w, lane(from, w, j), lane(from, w, j + 1), &flags));
			}
		}
		fp_finish(c, flags | fp_leave(host));
		*dst = r;
		return;
	}
	case 0xf0: /* LDDQU (SSE3): unaligned m128 */
		if (p != P_F2 || in->mod == 3)
			break;
		*dst = read_x(c, in, false);
		return;
	case 0xc2: { /* CMPPS CMPPD CMPSS CMPSD: predicate imm8 0-7, all-ones lanes where true */
		unsigned w = (p == P_66 || p == P_F2) ? 8 : 4, n = p == P_NONE || p == P_66 ? 16 / w : 1;
		unsigned pred = (unsigned)in->imm & 7;
		struct xmm_reg r = *dst;
		uint32_t flags = 0;
		if (n == 1)
			src.q[0] = read_scalar(c, in, w);
		else
			src = read_x(c, in, true);
		for (unsigned i = 0; i < n; i++) {
			uint64_t xa = daz(c, w, lane(dst, w, i)), xb = daz(c, w, lane(&src, w, i));
			flags |= compare_flags(w, xa, xb, (pred & 3) == 1 || (pred & 3) == 2);
			double a = lane_value(w, xa), b = lane_value(w, xb);
			bool unord = isnan(a) || isnan(b), t;
			switch (pred) {
			case 0: t = !unord && a == b; break;
			case 1: t = !unord && a < b; break;
			case 2: t = !unord && a <= b; break;
			case 3: t = unord; break;
			case 4: t = unord || a != b; break;
			case 5: t = unord || !(a < b); break;
			case 6: t = unord || !(a <= b); break;
			default: t = !unord; break;
			}
			set_lane(&r, w, i, t ? size_mask(w) : 0);
		}
		fp_finish(c, flags);
		*dst = r;
		return;
	}
	case 0x5b: /* CVTDQ2PS, CVTPS2DQ, CVTTPS2DQ */
		if (p == P_F2)
			break;
	{
		struct xmm_reg r;
		uint32_t flags = 0;
		src = read_x(c, in, true);
		if (p == P_NONE) {
			uint32_t host = fp_enter(c);
			for (unsigned i = 0; i < 4; i++)
				set_lane(&r, 4, i, fp_convert(c, -4, 4, lane(&src, 4, i), &flags));
			flags |= fp_leave(host);
		} else {
			for (unsigned i = 0; i < 4; i++)
				set_lane(&r, 4, i, cvt_to_int(c, 4, -4, lane(&src, 4, i), p == P_F3, &flags));
		}
		fp_finish(c, flags);
		*dst = r;
		return;
	}
	case 0xe6: /* CVTDQ2PD, CVTPD2DQ, CVTTPD2DQ */
		if (p == P_NONE)
			break;
	{
		struct xmm_reg r;
		uint32_t flags = 0;
		if (p == P_F3) { /* exact: no flags */
			uint64_t v = read_scalar(c, in, 8);
			uint32_t host = fp_enter(c);
			r.q[0] = fp_convert(c, -4, 8, (uint32_t)v, &flags);
			r.q[1] = fp_convert(c, -4, 8, v >> 32, &flags);
			flags |= fp_leave(host);
		} else {
			src = read_x(c, in, true);
			r.q[0] = cvt_to_int(c, 8, -4, src.q[0], p == P_66, &flags) |
				 cvt_to_int(c, 8, -4, src.q[1], p == P_66, &flags) << 32;
			r.q[1] = 0;
		}
		fp_finish(c, flags);
		*dst = r;
		return;
	}
	case 0xc6: /* SHUFPS / SHUFPD */
		if (p == P_NONE || p == P_66) {
			src = read_x(c, in, true);
			unsigned imm = (unsigned)in->imm & 0xff;
			struct xmm_reg r;
			if (p == P_66) {
				r.q[0] = dst->q[imm & 1];
				r.q[1] = src.q[(imm >> 1) & 1];
			} else {
				for (unsigned i = 0; i < 4; i++)
					set_lane(&r, 4, i, lane(i < 2 ? dst : &src, 4, (imm >> (2 * i)) & 3));
			}
			*dst = r;
			return;
		}
		break;
	default:
		break;
	}
	softcpu_unimplemented(c, in);
}
