/* jit_emit.h - a small x86-64 machine-code emitter for the JIT (jit.c).
 *
 * It knows encodings, nothing about guests: registers are host registers,
 * memory operands are [base + index * 2^scale + disp].  Code is written
 * through the code cache's writable view; branch targets are offsets in the
 * same view (rel32 is a difference, the same in both views). */
#ifndef MINIVM_SOFTCPU_JIT_EMIT_H
#define MINIVM_SOFTCPU_JIT_EMIT_H

#include <stdbool.h>
#include <stdint.h>

enum hreg { HAX, HCX, HDX, HBX, HSP, HBP, HSI, HDI, H8, H9, H10, H11, H12, H13, H14, H15 };
#define HNONE 0xffu

/* Host argument registers of the C calling convention. */
#ifdef _WIN32
#define HARG0 HCX
#define HARG1 HDX
#define HARG2 H8
#define HARG3 H9
#else
#define HARG0 HDI
#define HARG1 HSI
#define HARG2 HDX
#define HARG3 HCX
#endif

struct hmem {
	uint8_t base, index, scale; /* HNONE: absent */
	int32_t disp;
};

static inline struct hmem hmem_at(unsigned base, int32_t disp)
{
	return (struct hmem){.base = (uint8_t)base, .index = HNONE, .disp = disp};
}

struct emit {
	uint8_t *p, *end; /* end: leave room for the longest instruction */
};

/* Did the buffer run out?  (Writes past `end` are dropped, so a full
 * buffer never overflows; the translation is then thrown away.) */
static inline bool emit_full(const struct emit *e)
{
	return e->p > e->end;
}

/* Instructions: size is the operand size in bytes (1, 2, 4, 8); opcodes
 * above 0xff are two bytes (0x0fb6 = MOVZX r, r/m8), above 0xffff three
 * (0x0f3800 = PSHUFB). */
void emit_byte(struct emit *e, uint8_t b);
void emit_u32(struct emit *e, uint32_t v);
void emit_rr(struct emit *e, unsigned size, unsigned opcode, unsigned reg, unsigned rm);
void emit_rm(struct emit *e, unsigned size, unsigned opcode, unsigned reg, struct hmem m);

/* SSE forms: pfx is the mandatory prefix (0x66, 0xf2, 0xf3; 0 for none),
 * reg and rm XMM registers (or a general register, or a /digit, as the
 * opcode says). */
void emit_sse_rr(struct emit *e, unsigned pfx, unsigned opcode, unsigned reg, unsigned rm);
void emit_sse_rm(struct emit *e, unsigned pfx, unsigned opcode, unsigned reg, struct hmem m);
void emit_load(struct emit *e, unsigned size, unsigned dst, struct hmem m);   /* zero-extending */
void emit_store(struct emit *e, unsigned size, unsigned src, struct hmem m);
void emit_mov_rr(struct emit *e, unsigned size, unsigned dst, unsigned src);
void emit_mov_imm(struct emit *e, unsigned dst, uint64_t v);                 /* whole register */
void emit_mov_mem_imm(struct emit *e, unsigned size, struct hmem m, int32_t v); /* sign-extended to 8 */
void emit_lea(struct emit *e, unsigned size, unsigned dst, struct hmem m);   /* size 4 or 8 */
/* ALU operation aop (0 ADD, 1 OR, 4 AND, 5 SUB, 6 XOR, 7 CMP) */
void emit_alu_rr(struct emit *e, unsigned size, unsigned aop, unsigned dst, unsigned src);
void emit_alu_ri(struct emit *e, unsigned size, unsigned aop, unsigned dst, int32_t imm);
void emit_alu_mi(struct emit *e, unsigned size, unsigned aop, struct hmem m, int32_t imm);
void emit_alu_rm(struct emit *e, unsigned size, unsigned aop, unsigned dst, struct hmem m);
/* Group 2 (4 SHL, 5 SHR, 7 SAR) by an immediate count; group 4/5 INC (0) DEC (1). */
void emit_shift_ri(struct emit *e, unsigned size, unsigned op, unsigned reg, uint8_t count);
void emit_incdec(struct emit *e, unsigned size, bool dec, unsigned reg);
void emit_setcc_mem(struct emit *e, unsigned cc, struct hmem m);
void emit_movsx(struct emit *e, unsigned from, unsigned dst, unsigned src); /* to 64 bits, from 1, 2 or 4 */
void emit_call(struct emit *e, const void *fn); /* through RAX */
void emit_pushfq(struct emit *e);
void emit_popfq(struct emit *e);
void emit_push(struct emit *e, unsigned reg);
void emit_pop(struct emit *e, unsigned reg);
void emit_ret(struct emit *e);
void emit_jmp_reg(struct emit *e, unsigned reg);
/* Branches with a rel32 to fill in: they return where it sits (NULL when
 * the buffer is full); emit_patch points it at target. */
uint8_t *emit_jcc(struct emit *e, unsigned cc);
uint8_t *emit_jmp(struct emit *e);
void emit_patch(uint8_t *rel32, const uint8_t *target);

#endif
