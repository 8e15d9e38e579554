/* simd.h - what sse.c (floating point) and simd_int.c (packed integers,
 * MMX, string compares) share: the SSE state check, the mandatory-prefix
 * column of an opcode, XMM operands and lane access. */
#ifndef MINIVM_SOFTCPU_SIMD_H
#define MINIVM_SOFTCPU_SIMD_H

#include "internal.h"

static inline void check_sse(struct softcpu *c)
{
	if ((c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
		raise_ud(c);
	if (c->cr0 & CR0_TS)
		softcpu_raise(c, EXC_NM, 0, false);
}

/* Mandatory-prefix column of an SSE opcode. */
enum { P_NONE, P_66, P_F3, P_F2 };

static inline unsigned sse_prefix(const struct insn *in)
{
	if (in->pfx & PFX_REP)
		return P_F3;
	if (in->pfx & PFX_REPNE)
		return P_F2;
	return (in->pfx & PFX_OPSZ) ? P_66 : P_NONE;
}

/* The opcode byte within its map: 0F xx, 0F 38 xx or 0F 3A xx (the decoder
 * leaves op at OP_0F | 0x38 / 0x3a and the third byte in raw_op). */
static inline unsigned sse_opcode(const struct insn *in)
{
	return in->raw_op & 0xff;
}

/* The xmm register named by ModRM.reg / ModRM.rm */
static inline struct xmm_reg *xreg(struct softcpu *c, unsigned r)
{
	return &c->xmm[r & 15];
}

/* 128-bit r/m operand; `aligned` requires 16-byte alignment (#GP). */
static inline struct xmm_reg read_x(struct softcpu *c, const struct insn *in, bool aligned)
{
	if (in->mod == 3)
		return *xreg(c, in->rm);
	uint64_t lin = mem_addr(c, in);
	if (aligned && (lin & 15))
		raise_gp(c, 0);
	struct xmm_reg v = {{mem_read(c, lin, 8), mem_read(c, lin + 8, 8)}};
	return v;
}

static inline void write_x(struct softcpu *c, const struct insn *in, bool aligned, struct xmm_reg v)
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

/* Low `size` bytes of the r/m operand (scalar forms). */
static inline uint64_t read_scalar(struct softcpu *c, const struct insn *in, unsigned size)
{
	if (in->mod == 3)
		return xreg(c, in->rm)->q[0] & size_mask(size);
	return mem_read(c, mem_addr(c, in), size);
}

/* Lane access on a 128-bit value: `w` bytes per lane. */
static inline uint64_t lane(const struct xmm_reg *x, unsigned w, unsigned i)
{
	uint64_t v = 0;
	memcpy(&v, (const uint8_t *)x->q + i * w, w);
	return v & size_mask(w);
}

static inline int64_t slane(const struct xmm_reg *x, unsigned w, unsigned i)
{
	unsigned s = 64 - 8 * w;
	return (int64_t)(lane(x, w, i) << s) >> s;
}

static inline void set_lane(struct xmm_reg *x, unsigned w, unsigned i, uint64_t v)
{
	memcpy((uint8_t *)x->q + i * w, &v, w);
}

/* Packed integers, MMX, SSSE3, SSE4.1's integer and data-movement forms,
 * SSE4.2 (simd_int.c).  Returns false for an opcode/prefix it does not
 * handle, which sse.c then tries. */
bool softcpu_exec_simd_int(struct softcpu *c, const struct insn *in);

#endif
