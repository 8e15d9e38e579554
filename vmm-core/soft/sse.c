/* sse.c - SSE/SSE2/SSE3/SSE4.1 floating point (the subset softcpu_exec_sse
 * lists) and LDMXCSR/STMXCSR; packed integers, MMX and data movement are in
 * simd_int.c, the x87 and FXSAVE/FXRSTOR in x87.c.
 *
 * Arithmetic and conversions run on the host's SSE unit under the guest's
 * MXCSR rounding control, FTZ and DAZ (see "MXCSR applied"); compares,
 * MIN/MAX and ROUND are done in software with DAZ applied.  Unmasked SIMD
 * exceptions (#XM) are not delivered: Linux and glibc run with every one
 * masked. */
#include <math.h>

#include "simd.h"

static double as_double(uint64_t v) { double d; memcpy(&d, &v, 8); return d; }
static uint64_t from_double(double d) { uint64_t v; memcpy(&v, &d, 8); return v; }
static float as_float(uint32_t v) { float f; memcpy(&f, &v, 4); return f; }
static uint32_t from_float(float f) { uint32_t v; memcpy(&v, &f, 4); return v; }

/* ---- MXCSR applied ----
 * The host's own SSE unit does the arithmetic and conversions under the
 * guest's rounding control, FTZ and DAZ (every exception masked: the guest's
 * unmasked exceptions are not delivered), and the exception flags it raises
 * become the guest's sticky flags.  Each computation sits between
 * fp_enter() and fp_leave() with its inputs and result pinned by FP_PIN, so
 * the compiler cannot move it out: a memory access that faults never runs
 * inside.  LDMXCSR is slow, so the host's MXCSR is loaded only when its
 * control bits differ from the guest's, or when it holds a flag the guest
 * has not (which the guest would then inherit), and fp_leave() restores
 * only the control bits: the host keeps whatever flags the guest's
 * arithmetic raised, which nothing on the host reads.  Other hosts compute
 * with round-to-nearest and no FTZ/DAZ. */
#define MXCSR_FLAGS 0x3fu
#define MXCSR_DAZ 0x40u
#define MXCSR_CONTROL 0xe040u /* FTZ, RC, DAZ */
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
	uint32_t host = read_host_mxcsr(), want = (c->mxcsr & (MXCSR_CONTROL | MXCSR_FLAGS)) | 0x1f80u;
	if ((host & ~MXCSR_FLAGS) != (want & ~MXCSR_FLAGS) || (host & MXCSR_FLAGS & ~c->mxcsr))
		load_host_mxcsr(want);
	return host;
}
static inline void fp_leave(struct softcpu *c, uint32_t host)
{
	uint32_t now = read_host_mxcsr();
	c->mxcsr |= now & MXCSR_FLAGS;
	if ((now ^ host) & ~MXCSR_FLAGS)
		load_host_mxcsr(host);
}
#else
#define FP_PIN(v) ((void)0)
static inline uint32_t fp_enter(const struct softcpu *c) { (void)c; return 0; }
static inline void fp_leave(struct softcpu *c, uint32_t host) { (void)c; (void)host; }
#endif

/* DAZ for the operations done in software (compares, MIN/MAX, ROUND): a
 * denormal input is a zero of its sign. */
static uint64_t daz(const struct softcpu *c, unsigned w, uint64_t bits)
{
	uint64_t exp_mask = w == 8 ? 0x7ff0000000000000ull : 0x7f800000u, sign = 1ull << (8 * w - 1);
	if ((c->mxcsr & MXCSR_DAZ) && !(bits & exp_mask))
		return bits & sign;
	return bits;
}

/* A lane's value as a double (exact for single precision). */
static double lane_value(const struct softcpu *c, unsigned w, uint64_t bits)
{
	bits = daz(c, w, bits);
	return w == 8 ? as_double(bits) : as_float((uint32_t)bits);
}

/* Scalar/packed floating-point arithmetic on one lane of width w (4 or 8):
 * 0x51 sqrt, 0x58 add, 0x59 mul, 0x5c sub, 0x5d min, 0x5e div, 0x5f max,
 * between fp_enter() and fp_leave() (one pair per instruction: the MXCSR
 * accesses cost more than the arithmetic).  MIN/MAX return an operand's bits unchanged (the second one unless the
 * first compares below/above it), so a signalling NaN stays so. */
static uint64_t fp_op(const struct softcpu *c, unsigned op, unsigned w, uint64_t a_bits, uint64_t b_bits)
{
	if (op == 0x5d || op == 0x5f) {
		a_bits = daz(c, w, a_bits);
		b_bits = daz(c, w, b_bits);
		double a = lane_value(c, w, a_bits), b = lane_value(c, w, b_bits);
		return (op == 0x5d ? a < b : a > b) ? a_bits : b_bits;
	}
	uint64_t out;
	if (w == 8) {
		double a = as_double(a_bits), b = as_double(b_bits), r;
		FP_PIN(a);
		FP_PIN(b);
		switch (op) {
		case 0x51: r = __builtin_sqrt(b); break;
		case 0x58: r = a + b; break;
		case 0x59: r = a * b; break;
		case 0x5c: r = a - b; break;
		default: r = a / b; break;
		}
		FP_PIN(r);
		out = from_double(r);
	} else {
		float a = as_float((uint32_t)a_bits), b = as_float((uint32_t)b_bits), r;
		FP_PIN(a);
		FP_PIN(b);
		switch (op) {
		case 0x51: r = __builtin_sqrtf(b); break;
		case 0x58: r = a + b; break;
		case 0x59: r = a * b; break;
		case 0x5c: r = a - b; break;
		default: r = a / b; break;
		}
		FP_PIN(r);
		out = from_float(r);
	}
	return out;
}

static void set_comi_flags(struct softcpu *c, double a, double b)
{
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

/* Conversions, under the guest's MXCSR: `from` and `to` are 4 (single),
 * 8 (double), or -4/-8 for a signed integer of that size; `truncate`
 * chooses CVTT to an integer.  Out-of-range integers give the "integer
 * indefinite" value. */
static uint64_t fp_convert(struct softcpu *c, int from, int to, uint64_t bits, bool truncate)
{
	uint64_t out;
	uint32_t host = fp_enter(c);
	double d;
	if (from == 8) {
		d = as_double(bits);
	} else if (from == 4) {
		float f = as_float((uint32_t)bits);
		FP_PIN(f);
		d = f;
	} else if (to == 4) { /* integer to single: one rounding */
		float f = from == -8 ? (float)(int64_t)bits : (float)(int32_t)bits;
		FP_PIN(f);
		out = from_float(f);
		goto done;
	} else {
		int64_t i = from == -8 ? (int64_t)bits : (int32_t)bits;
		__asm__ volatile("" : "+r"(i));
		d = (double)i;
	}
	FP_PIN(d);
	if (to == 8) {
		out = from_double(d);
	} else if (to == 4) {
		float f = (float)d;
		FP_PIN(f);
		out = from_float(f);
	} else {
		double r = truncate ? __builtin_trunc(d) : __builtin_nearbyint(d);
		FP_PIN(r);
		double lim = to == -8 ? 9223372036854775808.0 : 2147483648.0;
		if (isnan(r) || r >= lim || r < -lim)
			out = to == -8 ? 0x8000000000000000ull : 0x80000000u;
		else
			out = to == -8 ? (uint64_t)(int64_t)r : (uint32_t)(int32_t)r;
	}
done:
	fp_leave(c, host);
	return out;
}

/* ROUNDPS/PD/SS/SD: imm8 bits 1:0 the rounding (nearest even, down, up,
 * toward zero), bit 2 MXCSR.RC instead. */
static uint64_t round_lane(struct softcpu *c, unsigned w, uint64_t bits, unsigned imm)
{
	double x = lane_value(c, w, bits), r;
	unsigned mode = (imm & 4) ? (c->mxcsr >> 13) & 3 : imm & 3;
	switch (mode) {
	case 0: r = nearbyint(x); break;
	case 1: r = floor(x); break;
	case 2: r = ceil(x); break;
	default: r = trunc(x); break;
	}
	return w == 8 ? from_double(r) : from_float((float)r);
}

/* 0F 3A forms with floating point: ROUND*, DPPS, DPPD (the decoder lets
 * no other opcode of the map reach here: simd_int.c takes the rest). */
static void exec_sse41_fp(struct softcpu *c, const struct insn *in, unsigned op)
{
	struct xmm_reg *dst = xreg(c, in->reg), src, r;
	unsigned imm = (unsigned)in->imm & 0xff;
	if (op == 0x0a || op == 0x0b) { /* ROUNDSS / ROUNDSD */
		unsigned w = op == 0x0a ? 4 : 8;
		set_lane(dst, w, 0, round_lane(c, w, read_scalar(c, in, w), imm));
		return;
	}
	src = read_x(c, in, true);
	if (op == 0x08 || op == 0x09) { /* ROUNDPS / ROUNDPD */
		unsigned w = op == 0x08 ? 4 : 8;
		for (unsigned i = 0; i < 16 / w; i++)
			set_lane(&r, w, i, round_lane(c, w, lane(&src, w, i), imm));
	} else { /* DPPS, DPPD: products, then pairwise sums, each rounded (+0 for lanes left out) */
		unsigned w = op == 0x40 ? 4 : 8, n = 16 / w;
		uint64_t t[4];
		uint32_t host = fp_enter(c);
		for (unsigned i = 0; i < n; i++)
			t[i] = (imm >> (4 + i)) & 1 ? fp_op(c, 0x59, w, lane(dst, w, i), lane(&src, w, i)) : 0;
		uint64_t sum = fp_op(c, 0x58, w, t[0], t[1]);
		if (n == 4)
			sum = fp_op(c, 0x58, w, sum, fp_op(c, 0x58, w, t[2], t[3]));
		fp_leave(c, host);
		for (unsigned i = 0; i < n; i++)
			set_lane(&r, w, i, (imm >> i) & 1 ? sum : 0);
	}
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
	bool dbl = p == P_66 || p == P_F2;

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
			set_lane(dst, w, 0, fp_convert(c, -(int)size, (int)w, v, false));
			return;
		}
		break;
	case 0x2c: case 0x2d: /* CVTT / CVT SS/SD 2SI */
		if (p == P_F3 || p == P_F2) {
			unsigned size = (in->rex & 8) ? 8 : 4;
			unsigned w = p == P_F2 ? 8 : 4;
			set_reg(c, in, in->reg, size, fp_convert(c, (int)w, -(int)size, read_scalar(c, in, w), op == 0x2c));
			return;
		}
		break;
	case 0x2e: case 0x2f: /* UCOMISS/D, COMISS/D (QNaN signalling ignored) */
		if (p == P_NONE || p == P_66) {
			unsigned w = p == P_66 ? 8 : 4;
			uint64_t b = read_scalar(c, in, w);
			set_comi_flags(c, lane_value(c, w, dst->q[0] & size_mask(w)), lane_value(c, w, b));
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
		if (p == P_F2 || p == P_F3) { /* scalar */
			unsigned w = p == P_F2 ? 8 : 4;
			uint64_t b = read_scalar(c, in, w);
			uint32_t host = fp_enter(c);
			uint64_t r = fp_op(c, op, w, dst->q[0] & size_mask(w), b);
			fp_leave(c, host);
			dst->q[0] = (dst->q[0] & ~size_mask(w)) | r;
		} else { /* packed */
			src = read_x(c, in, true);
			unsigned w = dbl ? 8 : 4;
			uint32_t host = fp_enter(c);
			for (unsigned i = 0; i < 16 / w; i++)
				set_lane(dst, w, i, fp_op(c, op, w, lane(dst, w, i), lane(&src, w, i)));
			fp_leave(c, host);
		}
		return;
	case 0x5a: /* CVTSS2SD / CVTSD2SS */
		if (p == P_F3) {
			dst->q[0] = fp_convert(c, 4, 8, read_scalar(c, in, 4), false);
			return;
		}
		if (p == P_F2) {
			set_lane(dst, 4, 0, fp_convert(c, 8, 4, read_scalar(c, in, 8), false));
			return;
		}
		if (p == P_NONE) { /* CVTPS2PD: the low two floats */
			uint64_t v = read_scalar(c, in, 8);
			dst->q[0] = fp_convert(c, 4, 8, (uint32_t)v, false);
			dst->q[1] = fp_convert(c, 4, 8, v >> 32, false);
		} else { /* CVTPD2PS */
			src = read_x(c, in, true);
			dst->q[0] = fp_convert(c, 8, 4, src.q[0], false) | fp_convert(c, 8, 4, src.q[1], false) << 32;
			dst->q[1] = 0;
		}
		return;
	case 0xd0: case 0x7c: case 0x7d: { /* SSE3: ADDSUBPD/PS, HADDPD/PS, HSUBPD/PS */
		if (p != P_66 && p != P_F2)
			break;
		unsigned w = p == P_66 ? 8 : 4, n = 16 / w;
		struct xmm_reg a = *dst, r;
		src = read_x(c, in, true);
		uint32_t host = fp_enter(c);
		for (unsigned i = 0; i < n; i++) {
			if (op == 0xd0) { /* subtract in even lanes, add in odd ones */
				set_lane(&r, w, i, fp_op(c, i & 1 ? 0x58 : 0x5c, w, lane(&a, w, i), lane(&src, w, i)));
			} else { /* pairs of the destination, then of the source */
				const struct xmm_reg *from = i < n / 2 ? &a : &src;
				unsigned j = 2 * (i % (n / 2));
				set_lane(&r, w, i, fp_op(c, op == 0x7c ? 0x58 : 0x5c, w, lane(from, w, j), lane(from, w, j + 1)));
			}
		}
		fp_leave(c, host);
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
		if (n == 1)
			src.q[0] = read_scalar(c, in, w);
		else
			src = read_x(c, in, true);
		for (unsigned i = 0; i < n; i++) {
			uint64_t xa = lane(dst, w, i), xb = lane(&src, w, i);
			double a = lane_value(c, w, xa), b = lane_value(c, w, xb);
			bool unord = isnan(a) || isnan(b), t;
			switch (in->imm & 7) {
			case 0: t = !unord && a == b; break;
			case 1: t = !unord && a < b; break;
			case 2: t = !unord && a <= b; break;
			case 3: t = unord; break;
			case 4: t = unord || a != b; break;
			case 5: t = unord || !(a < b); break;
			case 6: t = unord || !(a <= b); break;
			default: t = !unord; break;
			}
			set_lane(dst, w, i, t ? size_mask(w) : 0);
		}
		return;
	}
	case 0x5b: /* CVTDQ2PS, CVTPS2DQ, CVTTPS2DQ */
		if (p == P_F2)
			break;
		src = read_x(c, in, true);
		for (unsigned i = 0; i < 4; i++) {
			uint32_t v = (uint32_t)lane(&src, 4, i);
			set_lane(dst, 4, i, p == P_NONE ? fp_convert(c, -4, 4, v, false) : fp_convert(c, 4, -4, v, p == P_F3));
		}
		return;
	case 0xe6: /* CVTDQ2PD, CVTPD2DQ, CVTTPD2DQ */
		if (p == P_NONE)
			break;
		if (p == P_F3) {
			uint64_t v = read_scalar(c, in, 8);
			dst->q[0] = fp_convert(c, -4, 8, (uint32_t)v, false);
			dst->q[1] = fp_convert(c, -4, 8, v >> 32, false);
		} else {
			src = read_x(c, in, true);
			dst->q[0] = fp_convert(c, 8, -4, src.q[0], p == P_66) | fp_convert(c, 8, -4, src.q[1], p == P_66) << 32;
			dst->q[1] = 0;
		}
		return;
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
