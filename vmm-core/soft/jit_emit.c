/* jit_emit.c - x86-64 instruction encodings for the JIT (see jit_emit.h). */
#include "jit_emit.h"

#include <string.h>

void emit_byte(struct emit *e, uint8_t b)
{
	if (e->p <= e->end)
		*e->p = b;
	e->p++;
}

void emit_u32(struct emit *e, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		emit_byte(e, (uint8_t)(v >> (8 * i)));
}

/* Prefixes and opcode.  A byte operation on registers 4-7 needs a REX
 * prefix to mean SPL..DIL rather than AH..BH. */
static void prefix(struct emit *e, unsigned size, unsigned opcode, unsigned reg, unsigned index, unsigned rm,
		   bool byte_regs)
{
	if (size == 2)
		emit_byte(e, 0x66);
	unsigned rex = (size == 8 ? 8 : 0) | ((reg & 8) ? 4 : 0) | ((index != HNONE && (index & 8)) ? 2 : 0) |
		       ((rm != HNONE && (rm & 8)) ? 1 : 0);
	if (rex || (byte_regs && ((reg >= 4 && reg < 8) || (rm != HNONE && rm >= 4 && rm < 8))))
		emit_byte(e, (uint8_t)(0x40 | rex));
	if (opcode > 0xffff)
		emit_byte(e, (uint8_t)(opcode >> 16));
	if (opcode > 0xff)
		emit_byte(e, (uint8_t)(opcode >> 8));
	emit_byte(e, (uint8_t)opcode);
}

static bool byte_form(unsigned size, unsigned opcode)
{
	return size == 1 || opcode == 0x0fb6 || opcode == 0x0fbe || (opcode >= 0x0f90 && opcode <= 0x0f9f);
}

void emit_rr(struct emit *e, unsigned size, unsigned opcode, unsigned reg, unsigned rm)
{
	prefix(e, size, opcode, reg, HNONE, rm, byte_form(size, opcode));
	emit_byte(e, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}

void emit_rm(struct emit *e, unsigned size, unsigned opcode, unsigned reg, struct hmem m)
{
	prefix(e, size, opcode, reg, m.index, m.base, false);
	unsigned r = (reg & 7) << 3;
	if (m.base == HNONE) { /* SIB without base: [index*s + disp32] (or [disp32]) */
		emit_byte(e, (uint8_t)(0x04 | r));
		unsigned idx = m.index == HNONE ? 4 : (m.index & 7);
		emit_byte(e, (uint8_t)((m.scale << 6) | (idx << 3) | 5));
		emit_u32(e, (uint32_t)m.disp);
		return;
	}
	unsigned mod = (m.disp == 0 && (m.base & 7) != HBP) ? 0 : (m.disp >= -128 && m.disp <= 127) ? 1 : 2;
	bool sib = m.index != HNONE || (m.base & 7) == HSP;
	emit_byte(e, (uint8_t)((mod << 6) | r | (sib ? 4 : (m.base & 7))));
	if (sib) {
		unsigned idx = m.index == HNONE ? 4 : (m.index & 7);
		emit_byte(e, (uint8_t)((m.scale << 6) | (idx << 3) | (m.base & 7)));
	}
	if (mod == 1)
		emit_byte(e, (uint8_t)m.disp);
	else if (mod == 2)
		emit_u32(e, (uint32_t)m.disp);
}

void emit_sse_rr(struct emit *e, unsigned pfx, unsigned opcode, unsigned reg, unsigned rm)
{
	if (pfx)
		emit_byte(e, (uint8_t)pfx);
	emit_rr(e, 4, opcode, reg, rm);
}

void emit_sse_rm(struct emit *e, unsigned pfx, unsigned opcode, unsigned reg, struct hmem m)
{
	if (pfx)
		emit_byte(e, (uint8_t)pfx);
	emit_rm(e, 4, opcode, reg, m);
}

void emit_load(struct emit *e, unsigned size, unsigned dst, struct hmem m)
{
	switch (size) {
	case 1: emit_rm(e, 4, 0x0fb6, dst, m); break;
	case 2: emit_rm(e, 4, 0x0fb7, dst, m); break;
	default: emit_rm(e, size, 0x8b, dst, m); break;
	}
}

void emit_store(struct emit *e, unsigned size, unsigned src, struct hmem m)
{
	/* a byte store from SIL/DIL needs REX: prefix() only adds it for rr forms */
	if (size == 1 && src >= 4 && src < 8 && !(m.base != HNONE && (m.base & 8)) &&
	    !(m.index != HNONE && (m.index & 8)))
		emit_byte(e, 0x40);
	emit_rm(e, size, size == 1 ? 0x88 : 0x89, src, m);
}

void emit_mov_rr(struct emit *e, unsigned size, unsigned dst, unsigned src)
{
	emit_rr(e, size, size == 1 ? 0x88 : 0x89, src, dst);
}

void emit_mov_imm(struct emit *e, unsigned dst, uint64_t v)
{
	if (v <= 0xffffffffu) {
		if (dst & 8)
			emit_byte(e, 0x41);
		emit_byte(e, (uint8_t)(0xb8 + (dst & 7)));
		emit_u32(e, (uint32_t)v);
	} else if ((uint64_t)(int64_t)(int32_t)v == v) {
		emit_rr(e, 8, 0xc7, 0, dst);
		emit_u32(e, (uint32_t)v);
	} else {
		emit_byte(e, (uint8_t)(0x48 | ((dst & 8) ? 1 : 0)));
		emit_byte(e, (uint8_t)(0xb8 + (dst & 7)));
		emit_u32(e, (uint32_t)v);
		emit_u32(e, (uint32_t)(v >> 32));
	}
}

void emit_mov_mem_imm(struct emit *e, unsigned size, struct hmem m, int32_t v)
{
	emit_rm(e, size, size == 1 ? 0xc6 : 0xc7, 0, m);
	if (size == 1)
		emit_byte(e, (uint8_t)v);
	else if (size == 2)
		emit_byte(e, (uint8_t)v), emit_byte(e, (uint8_t)(v >> 8));
	else
		emit_u32(e, (uint32_t)v);
}

void emit_lea(struct emit *e, unsigned size, unsigned dst, struct hmem m)
{
	emit_rm(e, size, 0x8d, dst, m);
}

void emit_alu_rr(struct emit *e, unsigned size, unsigned aop, unsigned dst, unsigned src)
{
	emit_rr(e, size, aop * 8 + (size == 1 ? 0 : 1), src, dst);
}

static void imm_for(struct emit *e, unsigned size, int32_t imm, bool imm8)
{
	if (imm8)
		emit_byte(e, (uint8_t)imm);
	else if (size == 2)
		emit_byte(e, (uint8_t)imm), emit_byte(e, (uint8_t)(imm >> 8));
	else
		emit_u32(e, (uint32_t)imm);
}

void emit_alu_ri(struct emit *e, unsigned size, unsigned aop, unsigned dst, int32_t imm)
{
	bool imm8 = size == 1 || (imm >= -128 && imm <= 127);
	emit_rr(e, size, size == 1 ? 0x80 : imm8 ? 0x83 : 0x81, aop, dst);
	imm_for(e, size, imm, imm8);
}

void emit_alu_mi(struct emit *e, unsigned size, unsigned aop, struct hmem m, int32_t imm)
{
	bool imm8 = size == 1 || (imm >= -128 && imm <= 127);
	emit_rm(e, size, size == 1 ? 0x80 : imm8 ? 0x83 : 0x81, aop, m);
	imm_for(e, size, imm, imm8);
}

void emit_alu_rm(struct emit *e, unsigned size, unsigned aop, unsigned dst, struct hmem m)
{
	emit_rm(e, size, aop * 8 + (size == 1 ? 2 : 3), dst, m);
}

void emit_shift_ri(struct emit *e, unsigned size, unsigned op, unsigned reg, uint8_t count)
{
	emit_rr(e, size, size == 1 ? 0xc0 : 0xc1, op, reg);
	emit_byte(e, count);
}

void emit_incdec(struct emit *e, unsigned size, bool dec, unsigned reg)
{
	emit_rr(e, size, size == 1 ? 0xfe : 0xff, dec ? 1 : 0, reg);
}

void emit_setcc_mem(struct emit *e, unsigned cc, struct hmem m)
{
	emit_rm(e, 4, 0x0f90 + cc, 0, m);
}

void emit_movsx(struct emit *e, unsigned from, unsigned dst, unsigned src)
{
	emit_rr(e, 8, from == 1 ? 0x0fbe : from == 2 ? 0x0fbf : 0x63, dst, src);
}

void emit_call(struct emit *e, const void *fn)
{
	emit_mov_imm(e, HAX, (uint64_t)(uintptr_t)fn);
	emit_byte(e, 0xff);
	emit_byte(e, 0xd0);
}

void emit_pushfq(struct emit *e) { emit_byte(e, 0x9c); }
void emit_popfq(struct emit *e) { emit_byte(e, 0x9d); }
void emit_ret(struct emit *e) { emit_byte(e, 0xc3); }

void emit_push(struct emit *e, unsigned reg)
{
	if (reg & 8)
		emit_byte(e, 0x41);
	emit_byte(e, (uint8_t)(0x50 + (reg & 7)));
}

void emit_pop(struct emit *e, unsigned reg)
{
	if (reg & 8)
		emit_byte(e, 0x41);
	emit_byte(e, (uint8_t)(0x58 + (reg & 7)));
}

void emit_jmp_reg(struct emit *e, unsigned reg)
{
	emit_rr(e, 4, 0xff, 4, reg);
}

uint8_t *emit_jcc(struct emit *e, unsigned cc)
{
	emit_byte(e, 0x0f);
	emit_byte(e, (uint8_t)(0x80 + cc));
	uint8_t *at = e->p;
	emit_u32(e, 0);
	return emit_full(e) ? NULL : at;
}

uint8_t *emit_jmp(struct emit *e)
{
	emit_byte(e, 0xe9);
	uint8_t *at = e->p;
	emit_u32(e, 0);
	return emit_full(e) ? NULL : at;
}

void emit_patch(uint8_t *rel32, const uint8_t *target)
{
	if (!rel32)
		return;
	int32_t rel = (int32_t)(target - (rel32 + 4));
	memcpy(rel32, &rel, 4);
}
