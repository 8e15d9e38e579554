/* decode.c - x86 instruction decoder (see decode.h).
 *
 * Two tables give, per opcode of the one-byte and 0F maps, what follows the
 * opcode (ModRM, immediate kind) and how the operand size is chosen in
 * 64-bit mode; two more give the 0F 38 / 0F 3A maps (SSSE3, SSE4), whose
 * instructions decode to op OP_0F | 0x38 / 0x3a with the third byte in
 * raw_op. */
#include "decode.h"

#include <stdbool.h>
#include <string.h>

#include "cpu.h"

enum {
	A_M = 0x001,   /* ModRM follows */
	A_I8 = 0x002,  /* imm8, sign-extended */
	A_IZ = 0x004,  /* imm16 (16-bit operand size) or imm32, sign-extended */
	A_IV = 0x008,  /* immediate of the operand size (MOV r, imm64) */
	A_I16 = 0x010, /* imm16, zero-extended */
	A_MOFFS = 0x020, /* address-size offset (MOV AL, moffs) */
	A_FAR = 0x040, /* ptr16:16 / ptr16:32 */
	A_ENTER = 0x080, /* imm16, imm8 */
	A_INV64 = 0x100, /* invalid in 64-bit mode */
	A_DEF64 = 0x200, /* 64-bit mode: operand size 64 unless 66 */
	A_F64 = 0x400,   /* 64-bit mode: operand size always 64 (near branches) */
	A_UD = 0x800,    /* undefined or not implemented: #UD */
	A_PFX = 0x1000,  /* a prefix byte (handled before the table) */
};

#define M A_M
#define I8 A_I8
#define IZ A_IZ
#define X A_INV64
#define U A_UD
#define P A_PFX

static const uint16_t one_byte[256] = {
	/* 00 */ M, M, M, M, I8, IZ, X, X, M, M, M, M, I8, IZ, X, 0,
	/* 10 */ M, M, M, M, I8, IZ, X, X, M, M, M, M, I8, IZ, X, X,
	/* 20 */ M, M, M, M, I8, IZ, P, U, M, M, M, M, I8, IZ, P, U,
	/* 30 */ M, M, M, M, I8, IZ, P, U, M, M, M, M, I8, IZ, P, U,
	/* 40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 50 */ A_DEF64, A_DEF64, A_DEF64, A_DEF64, A_DEF64, A_DEF64, A_DEF64, A_DEF64,
	A_DEF64, A_DEF64, A_DEF64, A_DEF64, A_DEF64, A_DEF64, A_DEF64, A_DEF64,
	/* 60 */ X, X, U, M, P, P, P, P, IZ | A_DEF64, M | IZ, I8 | A_DEF64, M | I8, 0, 0, 0, 0,
	/* 70 */ I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64,
	I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64,
	/* 80 */ M | I8, M | IZ, M | I8 | X, M | I8, M, M, M, M, M, M, M, M, M, M, M, M | A_DEF64,
	/* 90 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, A_FAR | X, 0, A_DEF64, A_DEF64, 0, 0,
	/* A0 */ A_MOFFS, A_MOFFS, A_MOFFS, A_MOFFS, 0, 0, 0, 0, I8, IZ, 0, 0, 0, 0, 0, 0,
	/* B0 */ I8, I8, I8, I8, I8, I8, I8, I8, A_IV, A_IV, A_IV, A_IV, A_IV, A_IV, A_IV, A_IV,
	/* C0 */ M | I8, M | I8, A_I16 | A_F64, A_F64, U, U, M | I8, M | IZ,
	A_ENTER | A_DEF64, A_DEF64, A_I16, 0, 0, I8, X, 0,
	/* D0 */ M, M, M, M, U, U, U, 0, M, M, M, M, M, M, M, M,
	/* E0 */ I8 | A_F64, I8 | A_F64, I8 | A_F64, I8 | A_F64, I8, I8, I8, I8,
	IZ | A_F64, IZ | A_F64, A_FAR | X, I8 | A_F64, 0, 0, 0, 0,
	/* F0 */ P, 0, P, P, 0, 0, M, M, 0, 0, 0, 0, 0, 0, M, M,
};

static const uint16_t two_byte[256] = {
	/* 00 */ M, M, U, U, U, 0, 0, 0, 0, 0, U, 0, U, M, U, U,
	/* 10 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 20 */ M, M, M, M, U, U, U, U, M, M, M, M, M, M, M, M,
	/* 30 */ 0, 0, 0, U, U, U, U, U, 0, U, 0, U, U, U, U, U, /* 38, 3A: three-byte maps below */
	/* 40 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 50 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 60 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 70 */ M | I8, M | I8, M | I8, M | I8, M, M, M, 0, U, U, U, U, M, M, M, M,
	/* 80 */ IZ | A_F64, IZ | A_F64, IZ | A_F64, IZ | A_F64, IZ | A_F64, IZ | A_F64, IZ | A_F64, IZ | A_F64,
	IZ | A_F64, IZ | A_F64, IZ | A_F64, IZ | A_F64, IZ | A_F64, IZ | A_F64, IZ | A_F64, IZ | A_F64,
	/* 90 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* A0 */ A_DEF64, A_DEF64, 0, M, M | I8, M, U, U, A_DEF64, A_DEF64, U, M, M | I8, M, M, M,
	/* B0 */ M, M, M, M, M, M, M, M, M, U, M | I8, M, M, M, M, M,
	/* C0 */ M, M, M | I8, M, M | I8, M | I8, M | I8, M, 0, 0, 0, 0, 0, 0, 0, 0,
	/* D0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* E0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* F0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, U,
};

/* 0F 38 xx: SSSE3, SSE4.1, SSE4.2 (CRC32 at F0/F1; MOVBE shares them but
 * is not implemented).  All take ModRM. */
static const uint16_t three_byte_38[256] = {
	/* 00 */ M, M, M, M, M, M, M, M, M, M, M, M, U, U, U, U,
	/* 10 */ M, U, U, U, M, M, U, M, U, U, U, U, M, M, M, U,
	/* 20 */ M, M, M, M, M, M, U, U, M, M, M, M, U, U, U, U,
	/* 30 */ M, M, M, M, M, M, U, M, M, M, M, M, M, M, M, M,
	/* 40 */ M, M, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 50 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 60 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 70 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 80 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 90 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* A0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* B0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* C0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* D0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* E0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* F0 */ M, M, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
};

/* 0F 3A xx: SSSE3 PALIGNR, SSE4.1, SSE4.2 string compares; all ModRM + imm8. */
#define MI (M | I8)
static const uint16_t three_byte_3a[256] = {
	/* 00 */ U, U, U, U, U, U, U, U, MI, MI, MI, MI, MI, MI, MI, MI,
	/* 10 */ U, U, U, U, MI, MI, MI, MI, U, U, U, U, U, U, U, U,
	/* 20 */ MI, MI, MI, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 30 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 40 */ MI, MI, MI, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 50 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 60 */ MI, MI, MI, MI, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 70 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 80 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* 90 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* A0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* B0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* C0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* D0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* E0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	/* F0 */ U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
};
#undef MI

#undef M
#undef I8
#undef IZ
#undef X
#undef U
#undef P

/* May this opcode (with its ModRM.reg) take a LOCK prefix? Only with a
 * memory destination, which the caller checks. */
static bool lockable(unsigned op, unsigned reg)
{
	if (op < 0x40)
		return (op & 7) < 2 && (op & 0x38) != 0x38; /* ALU Eb,Gb / Ev,Gv except CMP */
	switch (op) {
	case 0x80: case 0x81: case 0x82: case 0x83:
		return reg != 7;
	case 0x86: case 0x87:
		return true;
	case 0xf6: case 0xf7:
		return reg == 2 || reg == 3;
	case 0xfe: case 0xff:
		return reg < 2;
	case OP_0F | 0xab: case OP_0F | 0xb3: case OP_0F | 0xbb:
	case OP_0F | 0xb0: case OP_0F | 0xb1: case OP_0F | 0xc0: case OP_0F | 0xc1:
		return true;
	case OP_0F | 0xba:
		return reg >= 5;
	case OP_0F | 0xc7:
		return reg == 1;
	default:
		return false;
	}
}

struct cursor {
	const uint8_t *p;
	size_t pos, avail;
	bool short_input; /* ran past avail */
};

static uint64_t take(struct cursor *c, unsigned n)
{
	uint64_t v = 0;
	if (c->pos + n > c->avail) {
		c->short_input = true;
		c->pos += n;
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)c->p[c->pos + i] << (8 * i);
	c->pos += n;
	return v;
}

static int64_t sext(uint64_t v, unsigned bytes)
{
	unsigned shift = 64 - 8 * bytes;
	return (int64_t)(v << shift) >> shift;
}

/* Parse ModRM (and SIB/displacement) into in->mod/reg/rm/base/index/... */
static void decode_modrm(struct insn *in, struct cursor *cur, int code_bits, bool *default_ss)
{
	unsigned modrm = (unsigned)take(cur, 1);
	unsigned rex_r = (in->rex >> 2) & 1, rex_x = (in->rex >> 1) & 1, rex_b = in->rex & 1;
	in->mod = modrm >> 6;
	in->reg = ((modrm >> 3) & 7) | (rex_r << 3);
	in->rm = (modrm & 7) | (rex_b << 3);
	in->base = REG_NONE;
	in->index = REG_NONE;
	in->scale = 0;
	in->disp = 0;
	*default_ss = false;
	if (in->mod == 3)
		return;
	if (in->asz == 2) {
		static const uint8_t base16[8] = {R_BX, R_BX, R_BP, R_BP, R_SI, R_DI, R_BP, R_BX};
		static const uint8_t index16[8] = {R_SI, R_DI, R_SI, R_DI, REG_NONE, REG_NONE, REG_NONE, REG_NONE};
		unsigned rm = modrm & 7;
		in->rm = rm;
		if (in->mod == 0 && rm == 6) {
			in->disp = (int32_t)sext(take(cur, 2), 2);
			return;
		}
		in->base = base16[rm];
		in->index = index16[rm];
		*default_ss = in->base == R_BP;
		if (in->mod == 1)
			in->disp = (int32_t)sext(take(cur, 1), 1);
		else if (in->mod == 2)
			in->disp = (int32_t)sext(take(cur, 2), 2);
		return;
	}
	unsigned rm = modrm & 7;
	if (rm == 4) {
		unsigned sib = (unsigned)take(cur, 1);
		unsigned idx = ((sib >> 3) & 7) | (rex_x << 3);
		unsigned b = sib & 7;
		in->scale = sib >> 6;
		in->index = idx == R_SP ? REG_NONE : idx;
		if (b == 5 && in->mod == 0) {
			in->disp = (int32_t)take(cur, 4);
		} else {
			in->base = b | (rex_b << 3);
			*default_ss = b == R_SP || b == R_BP;
		}
	} else if (rm == 5 && in->mod == 0) {
		in->disp = (int32_t)take(cur, 4);
		if (code_bits == 64)
			in->base = REG_RIP;
	} else {
		in->base = rm | (rex_b << 3);
		*default_ss = rm == R_BP;
	}
	if (in->mod == 1)
		in->disp = (int32_t)sext(take(cur, 1), 1);
	else if (in->mod == 2)
		in->disp = (int32_t)take(cur, 4);
}

int decode_insn(struct insn *in, const uint8_t *bytes, size_t avail, int code_bits)
{
	struct cursor cur = {.p = bytes, .avail = avail > 15 ? 15 : avail};
	memset(in, 0, sizeof(*in));
	in->seg = S_DS;
	in->mod = 3;
	in->base = in->index = REG_NONE;
	int seg_override = -1;

	/* Prefixes.  A REX counts only if it comes last, just before the opcode. */
	unsigned b;
	for (;;) {
		b = (unsigned)take(&cur, 1);
		if (cur.short_input)
			break;
		switch (b) {
		case 0xf0: in->pfx |= PFX_LOCK; in->rex = 0; continue;
		case 0xf2: in->pfx = (in->pfx & ~PFX_REP) | PFX_REPNE; in->rex = 0; continue;
		case 0xf3: in->pfx = (in->pfx & ~PFX_REPNE) | PFX_REP; in->rex = 0; continue;
		case 0x66: in->pfx |= PFX_OPSZ; in->rex = 0; continue;
		case 0x67: in->pfx |= PFX_ADSZ; in->rex = 0; continue;
		case 0x26: seg_override = S_ES; in->rex = 0; continue;
		case 0x2e: seg_override = S_CS; in->rex = 0; continue;
		case 0x36: seg_override = S_SS; in->rex = 0; continue;
		case 0x3e: seg_override = S_DS; in->rex = 0; continue;
		case 0x64: seg_override = S_FS; in->rex = 0; continue;
		case 0x65: seg_override = S_GS; in->rex = 0; continue;
		default:
			break;
		}
		if (code_bits == 64 && (b & 0xf0) == 0x40) {
			in->rex = (uint8_t)b;
			continue;
		}
		break;
	}
	if (in->rex)
		in->pfx |= PFX_REX;

	/* Opcode */
	unsigned op = b;
	uint16_t attr;
	if (b == 0x0f) {
		unsigned b2 = (unsigned)take(&cur, 1);
		if (b2 == 0x38 || b2 == 0x3a) {
			/* op stays OP_0F | 38 / 3A (the executor's switch stays dense);
			 * raw_op numbers the third byte */
			unsigned b3 = (unsigned)take(&cur, 1);
			op = (b2 == 0x38 ? RAW_OP_0F38 : RAW_OP_0F3A) | b3;
			attr = b2 == 0x38 ? three_byte_38[b3] : three_byte_3a[b3];
		} else {
			op = OP_0F | b2;
			attr = two_byte[b2];
		}
	} else {
		attr = one_byte[b];
	}
	in->op = (uint16_t)(op >= RAW_OP_0F38 ? OP_0F | (op >= RAW_OP_0F3A ? 0x3a : 0x38) : op);
	in->raw_op = (uint16_t)op;

	/* Sizes */
	bool wide = in->rex & 8;
	if (code_bits == 64) {
		in->asz = (in->pfx & PFX_ADSZ) ? 4 : 8;
		if (attr & A_F64)
			in->osz = 8;
		else if (wide)
			in->osz = 8;
		else if (attr & A_DEF64)
			in->osz = (in->pfx & PFX_OPSZ) ? 2 : 8;
		else
			in->osz = (in->pfx & PFX_OPSZ) ? 2 : 4;
	} else {
		bool big = code_bits == 32;
		in->asz = (big != !!(in->pfx & PFX_ADSZ)) ? 4 : 2;
		in->osz = (big != !!(in->pfx & PFX_OPSZ)) ? 4 : 2;
	}

	if ((attr & A_UD) || (code_bits == 64 && (attr & A_INV64)))
		in->op = OP_UD;
	if (op == 0x63 && code_bits != 64) /* ARPL is not implemented */
		in->op = OP_UD;
	/* +r forms: the register is in the opcode's low bits */
	if ((op >= 0x40 && op <= 0x5f) || (op >= 0x90 && op <= 0x97) || (op >= 0xb0 && op <= 0xbf) ||
	    (op >= (OP_0F | 0xc8) && op <= (OP_0F | 0xcf)))
		in->reg = (op & 7) | ((in->rex & 1) << 3);

	bool default_ss = false;
	if (attr & A_M)
		decode_modrm(in, &cur, code_bits, &default_ss);
	/* F6/F7 TEST has an immediate the table cannot express. */
	if ((op == 0xf6 || op == 0xf7) && (in->reg & 7) < 2)
		attr |= op == 0xf6 ? A_I8 : A_IZ;
	/* FF /2 /4 (near CALL/JMP) are 64-bit in 64-bit mode; FF /6 PUSH defaults to 64. */
	if (op == 0xff && code_bits == 64) {
		unsigned r = in->reg & 7;
		if (r == 2 || r == 4)
			in->osz = 8;
		else if (r == 6)
			in->osz = wide ? 8 : (in->pfx & PFX_OPSZ) ? 2 : 8;
	}

	/* Immediates */
	if (attr & A_I8) {
		in->imm = (uint64_t)sext(take(&cur, 1), 1);
	} else if (attr & A_IZ) {
		unsigned n = in->osz == 2 ? 2 : 4;
		in->imm = (uint64_t)sext(take(&cur, n), n);
	} else if (attr & A_IV) {
		in->imm = take(&cur, in->osz);
	} else if (attr & A_I16) {
		in->imm = take(&cur, 2);
	} else if (attr & A_MOFFS) {
		in->imm = take(&cur, in->asz);
	} else if (attr & A_FAR) {
		in->imm = take(&cur, in->osz == 2 ? 2 : 4);
		in->imm2 = (uint16_t)take(&cur, 2);
	} else if (attr & A_ENTER) {
		in->imm = take(&cur, 2);
		in->imm2 = (uint16_t)take(&cur, 1);
	}

	if (cur.pos > 15) {
		if (cur.short_input && avail < 15)
			return 0;
		in->op = OP_TOOLONG;
		in->len = 15;
		return 15;
	}
	if (cur.short_input)
		return 0;
	in->len = (uint8_t)cur.pos;

	if (seg_override >= 0) {
		in->seg = (uint8_t)seg_override;
		in->pfx |= PFX_SEG;
	} else if (default_ss) {
		in->seg = S_SS;
	}
	if ((in->pfx & PFX_LOCK) && (in->mod == 3 || !lockable(op, in->reg & 7)))
		in->op = OP_UD;
	return in->len;
}
