/* decode.h - x86 instruction decoder: bytes -> struct insn.
 *
 * Pure: it reads only the bytes it is given and the code size (16/32/64), so
 * a decoded instruction can be cached per guest-physical page and reused by
 * any executor (the interpreter now, a JIT later).  It validates the encoding
 * (length <= 15, prefixes, ModRM forms the opcode allows) and leaves every
 * check that depends on run-time state (CPL, CR4, segment limits) to the
 * executor. */
#ifndef MINIVM_SOFTCPU_DECODE_H
#define MINIVM_SOFTCPU_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* Opcode numbering: one-byte map 0x000-0x0ff, 0F map 0x100-0x1ff, and two
 * pseudo-opcodes right after them, so the executor's switch is one dense
 * jump table.  The three-byte maps decode to op OP_0F | 0x38 and
 * OP_0F | 0x3a; raw_op numbers them 0x200-0x2ff (0F 38) and 0x300-0x3ff
 * (0F 3A). */
#define OP_0F 0x100
#define OP_UD 0x200      /* undefined or unsupported encoding: #UD */
#define OP_TOOLONG 0x201 /* more than 15 bytes: #GP(0) */
#define RAW_OP_0F38 0x200
#define RAW_OP_0F3A 0x300
#define RAW_OP_COUNT 0x400

/* prefix bits */
#define PFX_LOCK 0x01u
#define PFX_REP 0x02u   /* F3 */
#define PFX_REPNE 0x04u /* F2 */
#define PFX_OPSZ 0x08u  /* 66 */
#define PFX_ADSZ 0x10u  /* 67 */
#define PFX_REX 0x20u   /* a REX prefix was present (byte registers SPL..DIL) */
#define PFX_SEG 0x40u   /* explicit segment override */

#define REG_NONE 0xff
#define REG_RIP 0xfe

struct insn {
	uint16_t op;   /* opcode (see above) */
	uint8_t len;   /* bytes, 1..15 */
	uint8_t pfx;   /* PFX_* */
	uint8_t osz;   /* operand size in bytes for non-byte forms: 2, 4 or 8 */
	uint8_t asz;   /* address size in bytes: 2, 4 or 8 */
	uint8_t rex;   /* the REX byte (0 if none) */
	uint8_t seg;   /* segment of the memory operand (override or default) */
	uint8_t mod;   /* ModRM.mod; 3 = register operand; also 3 when no ModRM */
	uint8_t reg;   /* ModRM.reg + REX.R, or opcode low bits + REX.B for +r forms */
	uint8_t rm;    /* ModRM.rm + REX.B (register operand when mod == 3) */
	uint8_t base;  /* memory operand: base register, REG_RIP or REG_NONE */
	uint8_t index; /* memory operand: index register or REG_NONE */
	uint8_t scale; /* log2 of the index scale */
	uint8_t handler; /* the executor's choice (softcpu_exec_prepare), not the decoder's: 0 here */
	int32_t disp;
	uint64_t imm;  /* immediate (sign-extended where the encoding says so) */
	uint16_t imm2; /* second immediate: ENTER's level byte, far pointer's selector */
	uint16_t raw_op; /* the opcode as encoded, also for OP_UD (diagnostics) */
};

/* Decode one instruction from bytes[0..avail).  code_bits is 16, 32 or 64.
 * Returns the length, or 0 if the instruction continues past `avail` bytes
 * (avail < 15); invalid encodings decode to OP_UD with the length parsed so
 * far, over-long ones to OP_TOOLONG. */
int decode_insn(struct insn *in, const uint8_t *bytes, size_t avail, int code_bits);

#endif
