/* sse.c - SSE/SSE2 (the subset listed in sse_exec), FXSAVE/FXRSTOR,
 * LDMXCSR/STMXCSR and the x87 control instructions glibc and the kernel run
 * at start-up (FNINIT, FNSTCW/FLDCW, FNSTSW).  The x87 register stack and
 * MMX are not implemented: their instructions raise #UD and are logged once.
 *
 * Floating point uses the host's IEEE double/float with round-to-nearest;
 * MXCSR rounding modes and exception flags are stored but not applied
 * (the default MXCSR masks every exception, which is what Linux and glibc
 * run with). */
#include <math.h>

#include "internal.h"

/* ---- FPU state checks ---- */

static void check_sse(struct softcpu *c)
{
	if ((c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
		raise_ud(c);
	if (c->cr0 & CR0_TS)
		softcpu_raise(c, EXC_NM, 0, false);
}

static void check_x87(struct softcpu *c)
{
	if (c->cr0 & (CR0_EM | CR0_TS))
		softcpu_raise(c, EXC_NM, 0, false);
}

/* ---- FXSAVE / FXRSTOR (512-byte area; x87 registers saved as zero) ---- */

void softcpu_fxsave(struct softcpu *c, uint64_t lin)
{
	check_x87(c);
	if (lin & 15)
		raise_gp(c, 0);
	mmu_probe_write(c, lin, 512);
	mem_write(c, lin + 0, 2, c->fcw);
	mem_write(c, lin + 2, 2, c->fsw);
	mem_write(c, lin + 4, 1, c->ftw);
	mem_write(c, lin + 5, 1, 0);
	mem_write(c, lin + 6, 2, 0); /* FOP */
	mem_write(c, lin + 8, 8, 0); /* FIP */
	mem_write(c, lin + 16, 8, 0); /* FDP */
	mem_write(c, lin + 24, 4, c->mxcsr);
	/* MXCSR_MASK: bits 0-15 are writable; they are kept, not applied
	 * (rounding modes, DAZ and FTZ are not modelled). */
	mem_write(c, lin + 28, 4, 0xffff);
	for (unsigned i = 0; i < 8; i++) {
		mem_write(c, lin + 32 + 16 * i, 8, 0);
		mem_write(c, lin + 40 + 16 * i, 8, 0);
	}
	unsigned nxmm = c->long64 ? 16 : 8;
	for (unsigned i = 0; i < nxmm; i++) {
		mem_write(c, lin + 160 + 16 * i, 8, c->xmm[i].q[0]);
		mem_write(c, lin + 168 + 16 * i, 8, c->xmm[i].q[1]);
	}
}

void softcpu_fxrstor(struct softcpu *c, uint64_t lin)
{
	check_x87(c);
	if (lin & 15)
		raise_gp(c, 0);
	uint32_t mxcsr = (uint32_t)mem_read(c, lin + 24, 4);
	if (mxcsr & ~0xffffu)
		raise_gp(c, 0);
	uint16_t fcw = (uint16_t)mem_read(c, lin, 2), fsw = (uint16_t)mem_read(c, lin + 2, 2);
	uint8_t ftw = (uint8_t)mem_read(c, lin + 4, 1);
	unsigned nxmm = c->long64 ? 16 : 8;
	struct xmm_reg x[16];
	for (unsigned i = 0; i < nxmm; i++) {
		x[i].q[0] = mem_read(c, lin + 160 + 16 * i, 8);
		x[i].q[1] = mem_read(c, lin + 168 + 16 * i, 8);
	}
	c->fcw = fcw;
	c->fsw = fsw;
	c->ftw = ftw;
	c->mxcsr = mxcsr;
	memcpy(c->xmm, x, nxmm * sizeof(x[0]));
}

/* ---- x87 control subset ---- */

void softcpu_exec_x87(struct softcpu *c, const struct insn *in)
{
	unsigned op = in->op, r = in->reg & 7;
	check_x87(c);
	if (op == 0xdb && in->mod == 3 && r == 4 && (in->rm & 7) == 3) { /* FNINIT */
		c->fcw = 0x37f;
		c->fsw = 0;
		c->ftw = 0;
		return;
	}
	if (op == 0xdb && in->mod == 3 && r == 4 && (in->rm & 7) == 2) { /* FNCLEX */
		c->fsw &= 0x7f00;
		return;
	}
	if (op == 0xdf && in->mod == 3 && r == 4 && (in->rm & 7) == 0) { /* FNSTSW AX */
		c->r[R_AX] = (c->r[R_AX] & ~0xffffull) | c->fsw;
		return;
	}
	if (in->mod != 3) {
		uint64_t lin = mem_addr(c, in);
		if (op == 0xd9 && r == 7) { /* FNSTCW m16 */
			mem_write(c, lin, 2, c->fcw);
			return;
		}
		if (op == 0xd9 && r == 5) { /* FLDCW m16 */
			c->fcw = (uint16_t)mem_read(c, lin, 2);
			return;
		}
		if (op == 0xdd && r == 7) { /* FNSTSW m16 */
			mem_write(c, lin, 2, c->fsw);
			return;
		}
	}
	softcpu_unimplemented(c, in);
}

/* ---- SSE / SSE2 ---- */

/* Mandatory-prefix column of an SSE opcode. */
enum { P_NONE, P_66, P_F3, P_F2 };

static unsigned sse_prefix(const struct insn *in)
{
	if (in->pfx & PFX_REP)
		return P_F3;
	if (in->pfx & PFX_REPNE)
		return P_F2;
	return (in->pfx & PFX_OPSZ) ? P_66 : P_NONE;
}

/* The xmm register named by ModRM.reg / ModRM.rm */
static struct xmm_reg *xreg(struct softcpu *c, unsigned r)
{
	return &c->xmm[r & 15];
}

/* 128-bit r/m operand; `aligned` requires 16-byte alignment (#GP). */
static struct xmm_reg read_x(struct softcpu *c, const struct insn *in, bool aligned)
{
	if (in->mod == 3)
		return *xreg(c, in->rm);
	uint64_t lin = mem_addr(c, in);
	if (aligned && (lin & 15))
		raise_gp(c, 0);
	struct xmm_reg v = {{mem_read(c, lin, 8), mem_read(c, lin + 8, 8)}};
	return v;
}

static void write_x(struct softcpu *c, const struct insn *in, bool aligned, struct xmm_reg v)
{
	if (in->mod == 3) {
		*xreg(c, in->rm) = v;
		return;
	}
	uint64_t lin = mem_addr(c, in);
	if (aligned && (lin & 15))
		raise_gp(c, 0);
	mmu_probe_write(c, lin, 16);
	mem_write(c, lin, 8, v.q[0]);
	mem_write(c, lin + 8, 8, v.q[1]);
}

/* Low 32/64 bits of the r/m operand (scalar forms). */
static uint64_t read_scalar(struct softcpu *c, const struct insn *in, unsigned size)
{
	if (in->mod == 3)
		return xreg(c, in->rm)->q[0] & size_mask(size);
	return mem_read(c, mem_addr(c, in), size);
}

static double as_double(uint64_t v) { double d; memcpy(&d, &v, 8); return d; }
static uint64_t from_double(double d) { uint64_t v; memcpy(&v, &d, 8); return v; }
static float as_float(uint32_t v) { float f; memcpy(&f, &v, 4); return f; }
static uint32_t from_float(float f) { uint32_t v; memcpy(&v, &f, 4); return v; }

/* Lane access on a 128-bit value: `w` bytes per lane. */
static uint64_t lane(const struct xmm_reg *x, unsigned w, unsigned i)
{
	uint64_t v = 0;
	memcpy(&v, (const uint8_t *)x->q + i * w, w);
	return v & size_mask(w);
}

static void set_lane(struct xmm_reg *x, unsigned w, unsigned i, uint64_t v)
{
	memcpy((uint8_t *)x->q + i * w, &v, w);
}

/* Packed integer lane operations (66 0F xx). */
enum pint { PADD, PSUB, PADDUS, PSUBUS, PADDS, PSUBS, PCMPEQ, PCMPGT, PMINU, PMAXU, PMULLO };

static struct xmm_reg packed_int(enum pint op, unsigned w, struct xmm_reg a, struct xmm_reg b)
{
	struct xmm_reg r;
	uint64_t m = size_mask(w);
	int64_t smax = (int64_t)(m >> 1), smin = -smax - 1;
	for (unsigned i = 0; i < 16 / w; i++) {
		uint64_t x = lane(&a, w, i), y = lane(&b, w, i), v;
		int64_t sx = (int64_t)(x << (64 - 8 * w)) >> (64 - 8 * w), sy = (int64_t)(y << (64 - 8 * w)) >> (64 - 8 * w);
		switch (op) {
		case PADD: v = x + y; break;
		case PSUB: v = x - y; break;
		case PADDUS: v = x + y > m ? m : x + y; break;
		case PSUBUS: v = x > y ? x - y : 0; break;
		case PADDS: { int64_t s = sx + sy; v = (uint64_t)(s > smax ? smax : s < smin ? smin : s); break; }
		case PSUBS: { int64_t s = sx - sy; v = (uint64_t)(s > smax ? smax : s < smin ? smin : s); break; }
		case PCMPEQ: v = x == y ? m : 0; break;
		case PCMPGT: v = sx > sy ? m : 0; break;
		case PMINU: v = x < y ? x : y; break;
		case PMAXU: v = x > y ? x : y; break;
		default: v = (uint64_t)(sx * sy); break;
		}
		set_lane(&r, w, i, v & m);
	}
	return r;
}

/* Shifts by a count: 0 logical right, 1 arithmetic right, 2 left. */
static struct xmm_reg packed_shift(unsigned kind, unsigned w, struct xmm_reg a, uint64_t count)
{
	struct xmm_reg r;
	unsigned bits = 8 * w;
	for (unsigned i = 0; i < 16 / w; i++) {
		uint64_t x = lane(&a, w, i), v;
		if (kind == 1) {
			int64_t sx = (int64_t)(x << (64 - bits)) >> (64 - bits);
			v = (uint64_t)(sx >> (count >= bits ? bits - 1 : count));
		} else if (count >= bits) {
			v = 0;
		} else {
			v = kind == 0 ? x >> count : x << count;
		}
		set_lane(&r, w, i, v & size_mask(w));
	}
	return r;
}

/* Byte shift of the whole register (PSLLDQ / PSRLDQ). */
static struct xmm_reg byte_shift(struct xmm_reg a, unsigned n, bool left)
{
	uint8_t in[16], out[16] = {0};
	memcpy(in, a.q, 16);
	if (n < 16)
		for (unsigned i = 0; i < 16 - n; i++) {
			if (left)
				out[i + n] = in[i];
			else
				out[i] = in[i + n];
		}
	struct xmm_reg r;
	memcpy(r.q, out, 16);
	return r;
}

/* PUNPCKL/H: interleave lanes of width w from the low (high) halves. */
static struct xmm_reg unpack(unsigned w, bool high, struct xmm_reg a, struct xmm_reg b)
{
	struct xmm_reg r;
	unsigned half = 8 / w, base = high ? half : 0;
	for (unsigned i = 0; i < half; i++) {
		set_lane(&r, w, 2 * i, lane(&a, w, base + i));
		set_lane(&r, w, 2 * i + 1, lane(&b, w, base + i));
	}
	return r;
}

/* Scalar/packed floating-point arithmetic on one lane of width w (4 or 8):
 * 0x51 sqrt, 0x58 add, 0x59 mul, 0x5c sub, 0x5d min, 0x5e div, 0x5f max.
 * Single precision is computed in double and rounded once: exact for these
 * operations.  MIN/MAX return an operand's bits unchanged (the second one
 * unless the first compares below/above it), so a signalling NaN stays so. */
static uint64_t fp_op(unsigned op, unsigned w, uint64_t a_bits, uint64_t b_bits)
{
	double a = w == 8 ? as_double(a_bits) : as_float((uint32_t)a_bits);
	double b = w == 8 ? as_double(b_bits) : as_float((uint32_t)b_bits);
	double r;
	switch (op) {
	case 0x51: r = sqrt(b); break;
	case 0x58: r = a + b; break;
	case 0x59: r = a * b; break;
	case 0x5c: r = a - b; break;
	case 0x5d: return a < b ? a_bits : b_bits;
	case 0x5e: r = a / b; break;
	default: return a > b ? a_bits : b_bits;
	}
	return w == 8 ? from_double(r) : from_float((float)r);
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

/* Truncating/rounding conversion to a signed integer; out of range gives
 * the "integer indefinite" value. */
static uint64_t fp_to_int(double d, unsigned size, bool truncate)
{
	double r = truncate ? trunc(d) : nearbyint(d);
	double lim = size == 8 ? 9223372036854775808.0 : 2147483648.0;
	if (isnan(r) || r >= lim || r < -lim)
		return size == 8 ? 0x8000000000000000ull : 0x80000000u;
	return size == 8 ? (uint64_t)(int64_t)r : (uint32_t)(int32_t)r;
}

void softcpu_exec_sse(struct softcpu *c, const struct insn *in)
{
	unsigned op = in->op & 0xff, p = sse_prefix(in);
	check_sse(c);
	if (in->op == (OP_0F | 0xae)) { /* LDMXCSR / STMXCSR */
		uint64_t lin = mem_addr(c, in);
		if ((in->reg & 7) == 2) {
			uint64_t v = mem_read(c, lin, 4);
			if (v & ~0xffffull)
				raise_gp(c, 0);
			c->mxcsr = (uint32_t)v;
		} else {
			mem_write(c, lin, 4, c->mxcsr);
		}
		return;
	}
	/* MMX forms (no prefix) of the integer opcodes are not implemented. */
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
	case 0x14: case 0x15: /* UNPCKLPS/PD, UNPCKHPS/PD */
		if (p != P_NONE && p != P_66)
			break;
		src = read_x(c, in, true);
		*dst = unpack(p == P_66 ? 8 : 4, op == 0x15, *dst, src);
		return;
	case 0x2a: /* CVTSI2SS / CVTSI2SD */
		if (p == P_F3 || p == P_F2) {
			unsigned size = (in->rex & 8) ? 8 : 4;
			int64_t v = (int64_t)(in->mod == 3 ? get_reg(c, in, in->rm, size) : mem_read(c, mem_addr(c, in), size));
			if (size == 4)
				v = (int32_t)v;
			if (p == P_F2)
				dst->q[0] = from_double((double)v);
			else
				dst->q[0] = (dst->q[0] & ~0xffffffffull) | from_float((float)v);
			return;
		}
		break;
	case 0x2c: case 0x2d: /* CVTT / CVT SS/SD 2SI */
		if (p == P_F3 || p == P_F2) {
			unsigned size = (in->rex & 8) ? 8 : 4;
			double d = p == P_F2 ? as_double(read_scalar(c, in, 8)) : as_float((uint32_t)read_scalar(c, in, 4));
			set_reg(c, in, in->reg, size, fp_to_int(d, size, op == 0x2c));
			return;
		}
		break;
	case 0x2e: case 0x2f: /* UCOMISS/D, COMISS/D (QNaN signalling ignored) */
		if (p == P_NONE || p == P_66) {
			double a = p == P_66 ? as_double(dst->q[0]) : as_float((uint32_t)dst->q[0]);
			double b = p == P_66 ? as_double(read_scalar(c, in, 8)) : as_float((uint32_t)read_scalar(c, in, 4));
			set_comi_flags(c, a, b);
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
	case 0xdb: case 0xdf: case 0xeb: case 0xef: /* PAND PANDN POR PXOR */
		if ((op < 0x58 && p != P_NONE && p != P_66) || (op > 0x58 && p != P_66))
			break;
		src = read_x(c, in, true);
		for (int i = 0; i < 2; i++) {
			uint64_t a = dst->q[i], b = src.q[i];
			dst->q[i] = (op == 0x54 || op == 0xdb) ? a & b
				  : (op == 0x55 || op == 0xdf) ? ~a & b
				  : (op == 0x56 || op == 0xeb) ? a | b : a ^ b;
		}
		return;
	case 0x51: case 0x58: case 0x59: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
		if (p == P_F2 || p == P_F3) { /* scalar */
			unsigned w = p == P_F2 ? 8 : 4;
			uint64_t r = fp_op(op, w, dst->q[0] & size_mask(w), read_scalar(c, in, w));
			dst->q[0] = (dst->q[0] & ~size_mask(w)) | r;
		} else { /* packed */
			src = read_x(c, in, true);
			unsigned w = dbl ? 8 : 4;
			for (unsigned i = 0; i < 16 / w; i++) {
				set_lane(dst, w, i, fp_op(op, w, lane(dst, w, i), lane(&src, w, i)));
			}
		}
		return;
	case 0x5a: /* CVTSS2SD / CVTSD2SS */
		if (p == P_F3) {
			dst->q[0] = from_double(as_float((uint32_t)read_scalar(c, in, 4)));
			return;
		}
		if (p == P_F2) {
			dst->q[0] = (dst->q[0] & ~0xffffffffull) | from_float((float)as_double(read_scalar(c, in, 8)));
			return;
		}
		break;
	case 0x6e: /* MOVD/MOVQ xmm, r/m */
		if (p == P_66) {
			unsigned size = (in->rex & 8) ? 8 : 4;
			uint64_t v = in->mod == 3 ? get_reg(c, in, in->rm, size) : mem_read(c, mem_addr(c, in), size);
			*dst = (struct xmm_reg){{v, 0}};
			return;
		}
		break;
	case 0x7e:
		if (p == P_66) { /* MOVD/MOVQ r/m, xmm */
			unsigned size = (in->rex & 8) ? 8 : 4;
			if (in->mod == 3)
				set_reg(c, in, in->rm, size, dst->q[0] & size_mask(size));
			else
				mem_write(c, mem_addr(c, in), size, dst->q[0]);
			return;
		}
		if (p == P_F3) { /* MOVQ xmm, xmm/m64 */
			*dst = (struct xmm_reg){{read_scalar(c, in, 8), 0}};
			return;
		}
		break;
	case 0xd6: /* MOVQ xmm/m64, xmm */
		if (p == P_66) {
			if (in->mod == 3)
				*xreg(c, in->rm) = (struct xmm_reg){{dst->q[0], 0}};
			else
				mem_write(c, mem_addr(c, in), 8, dst->q[0]);
			return;
		}
		break;
	case 0x6f: /* MOVDQA / MOVDQU */
		if (p == P_66 || p == P_F3) {
			*dst = read_x(c, in, p == P_66);
			return;
		}
		break;
	case 0x7f:
		if (p == P_66 || p == P_F3) {
			write_x(c, in, p == P_66, *dst);
			return;
		}
		break;
	case 0xe7: /* MOVNTDQ */
		if (p == P_66 && in->mod != 3) {
			write_x(c, in, true, *dst);
			return;
		}
		break;
	case 0x70: /* PSHUFD / PSHUFHW / PSHUFLW */
		if (p != P_NONE) {
			src = read_x(c, in, true);
			struct xmm_reg r = src;
			unsigned imm = (unsigned)in->imm & 0xff;
			if (p == P_66)
				for (unsigned i = 0; i < 4; i++)
					set_lane(&r, 4, i, lane(&src, 4, (imm >> (2 * i)) & 3));
			else
				for (unsigned i = 0; i < 4; i++) {
					unsigned base = p == P_F3 ? 4 : 0;
					set_lane(&r, 2, base + i, lane(&src, 2, base + ((imm >> (2 * i)) & 3)));
				}
			*dst = r;
			return;
		}
		break;
	case 0x71: case 0x72: case 0x73: /* shifts by immediate: /2 SRL, /4 SRA, /6 SLL, 73 /3 SRLDQ /7 SLLDQ */
		if (p == P_66 && in->mod == 3) {
			struct xmm_reg *d = xreg(c, in->rm);
			unsigned r = in->reg & 7, w = op == 0x71 ? 2 : op == 0x72 ? 4 : 8;
			unsigned count = (unsigned)in->imm & 0xff;
			if (op == 0x73 && (r == 3 || r == 7)) {
				*d = byte_shift(*d, count, r == 7);
				return;
			}
			if (r == 2 || (r == 4 && op != 0x73) || r == 6) {
				*d = packed_shift(r == 2 ? 0 : r == 4 ? 1 : 2, w, *d, count);
				return;
			}
		}
		break;
	case 0xd1: case 0xd2: case 0xd3: case 0xe1: case 0xe2: case 0xf1: case 0xf2: case 0xf3:
		if (p == P_66) { /* shifts by xmm/m128 count */
			src = read_x(c, in, true);
			unsigned kind = op < 0xe0 ? 0 : op < 0xf0 ? 1 : 2;
			unsigned w = (op & 3) == 1 ? 2 : (op & 3) == 2 ? 4 : 8;
			*dst = packed_shift(kind, w, *dst, src.q[0]);
			return;
		}
		break;
	case 0x60: case 0x61: case 0x62: case 0x6c: case 0x68: case 0x69: case 0x6a: case 0x6d:
		if (p == P_66) {
			src = read_x(c, in, true);
			unsigned w = op == 0x6c || op == 0x6d ? 8 : 1u << (op & 3);
			*dst = unpack(w, (op >= 0x68 && op <= 0x6a) || op == 0x6d, *dst, src);
			return;
		}
		break;
	case 0xd7: /* PMOVMSKB */
		if (p == P_66 && in->mod == 3) {
			struct xmm_reg *s = xreg(c, in->rm);
			unsigned mask = 0;
			for (unsigned i = 0; i < 16; i++)
				mask |= (unsigned)(lane(s, 1, i) >> 7) << i;
			set_reg(c, in, in->reg, 4, mask);
			return;
		}
		break;
	case 0xd4: case 0xfc: case 0xfd: case 0xfe: /* PADDQ PADDB PADDW PADDD */
	case 0xf8: case 0xf9: case 0xfa: case 0xfb: /* PSUBB PSUBW PSUBD PSUBQ */
	case 0xdc: case 0xdd: case 0xd8: case 0xd9: /* PADDUSB/W PSUBUSB/W */
	case 0xec: case 0xed: case 0xe8: case 0xe9: /* PADDSB/W PSUBSB/W */
	case 0x74: case 0x75: case 0x76: case 0x64: case 0x65: case 0x66: /* PCMPEQ, PCMPGT */
	case 0xda: case 0xde: case 0xd5: /* PMINUB PMAXUB PMULLW */
		if (p == P_66) {
			enum pint k;
			unsigned w;
			switch (op) {
			case 0xd4: k = PADD; w = 8; break;
			case 0xfc: case 0xfd: case 0xfe: k = PADD; w = 1u << (op - 0xfc); break;
			case 0xf8: case 0xf9: case 0xfa: case 0xfb: k = PSUB; w = 1u << (op - 0xf8); break;
			case 0xdc: case 0xdd: k = PADDUS; w = op - 0xdb; break;
			case 0xd8: case 0xd9: k = PSUBUS; w = op - 0xd7; break;
			case 0xec: case 0xed: k = PADDS; w = op - 0xeb; break;
			case 0xe8: case 0xe9: k = PSUBS; w = op - 0xe7; break;
			case 0x74: case 0x75: case 0x76: k = PCMPEQ; w = 1u << (op - 0x74); break;
			case 0x64: case 0x65: case 0x66: k = PCMPGT; w = 1u << (op - 0x64); break;
			case 0xda: k = PMINU; w = 1; break;
			case 0xde: k = PMAXU; w = 1; break;
			default: k = PMULLO; w = 2; break;
			}
			src = read_x(c, in, true);
			*dst = packed_int(k, w, *dst, src);
			return;
		}
		break;
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
