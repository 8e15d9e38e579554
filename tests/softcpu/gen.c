/* gen.c - generator of differential test cases.
 *
 * A table of instruction forms (opcode, operand encoding, immediate, operand
 * sizes, flags written/undefined/read) drives the encoder.  A case is 1-4
 * random forms with random operands, then INT3.  Operand constraints keep
 * every access inside the test regions on both CPUs:
 *   - destinations and most operands are drawn from RAX RCX RDX RBX RSI RDI
 *     R8-R13; RSP is the stack, RBP points into the stack, R15 = DATA + 0x1000
 *     is the base of every memory operand and R14 (0..63) its index;
 *   - RIP-relative and absolute operands point into the data region.
 * Undefined flags: each form lists the flags it leaves undefined; the case
 * accumulates them (a later writer defines them again) and masks them in the
 * final comparison.  Before a form that reads flags which are undefined at
 * that point, a CMP is inserted to define all of them.
 *
 * The masks, from the Intel SDM (vol. 2, each instruction's "Flags
 * Affected"):
 *   AND/OR/XOR/TEST: AF.  MUL/IMUL: SF ZF AF PF.  DIV/IDIV: all six.
 *   Shifts by CL/imm: OF (count != 1), AF; CF too for 8/16-bit shifts by CL
 *   (counts above the width).  Rotates by CL/imm: OF.  SHLD/SHRD: OF AF.
 *   BT*: OF SF AF PF.  BSF/BSR: CF OF SF AF PF. */
#include <stdio.h>
#include <string.h>

#include "difftest.h"

enum enc {
	E_NONE,
	E_RM,       /* ModRM: reg = GPR, rm = GPR or memory */
	E_RM_MEM,   /* rm must be memory */
	E_DIGIT,    /* ModRM: reg = /digit, rm = GPR or memory */
	E_DIGIT_MEM,
	E_PLUSR,    /* register in the opcode's low bits */
	E_XMM,      /* reg = XMM, rm = XMM or memory */
	E_XMM_MEM,  /* reg = XMM, rm = memory */
	E_XMM_DIGIT, /* reg = /digit, rm = XMM register */
	E_XMM_GPR,  /* reg = XMM, rm = GPR or memory */
	E_GPR_XMM,  /* reg = GPR, rm = XMM or memory */
	E_GPR_XMMREG, /* reg = GPR, rm = XMM register */
	E_X87_REG,  /* x87 ModRM C0 | digit << 3 | random ST(i) */
	E_X87_FIXED, /* x87 with a fixed ModRM byte (in digit) */
	E_X87_MEM,  /* x87 ModRM: reg = digit, rm = memory */
};

enum imm { I_NONE, I_8, I_Z, I_V, I_COUNT /* imm8 below the operand width */ };

#define S8 1u
#define S16 2u
#define S32 4u
#define S64 8u
#define SV (S16 | S32 | S64)

enum special { /* 0: none */
	SP_STRING = 1, /* set RSI, RDI, RCX first */
	SP_BT_MEM, /* bit offset register is R14 when the operand is memory */
	SP_JCC8,   /* Jcc rel8 over an INC RAX */
	SP_JCC32,
	SP_DEF64,  /* 64-bit by default in 64-bit mode (PUSH/POP): no REX.W */
};

struct form {
	char name[24];
	uint8_t pfx;      /* mandatory prefix (66/F2/F3) or 0 */
	uint8_t op[3];
	uint8_t oplen;
	uint8_t enc, digit, imm, sizes, special;
	uint16_t wr, un, rd; /* flags written (defined), left undefined, read */
	bool sse;
	bool lockable; /* takes a LOCK prefix with a memory operand */
};

#define MAX_FORMS 800
static struct form forms[MAX_FORMS];
static unsigned nforms;

#define ALL DT_ARITH
#define LOGIC_WR (DT_ARITH & ~DT_AF)

static void add(const char *name, uint8_t pfx, unsigned op, unsigned enc, unsigned digit, unsigned imm,
		unsigned sizes, unsigned wr, unsigned un, unsigned rd, unsigned special)
{
	struct form *f = &forms[nforms++];
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->pfx = pfx;
	if (op >= 0x3800) { /* 0F 38 xx, 0F 3A xx */
		f->op[0] = 0x0f;
		f->op[1] = (uint8_t)(op >> 8);
		f->op[2] = (uint8_t)op;
		f->oplen = 3;
	} else if (op > 0xff) {
		f->op[0] = 0x0f;
		f->op[1] = (uint8_t)op;
		f->oplen = 2;
	} else {
		f->op[0] = (uint8_t)op;
		f->oplen = 1;
	}
	f->enc = (uint8_t)enc;
	f->digit = (uint8_t)digit;
	f->imm = (uint8_t)imm;
	f->sizes = (uint8_t)sizes;
	f->wr = (uint16_t)wr;
	f->un = (uint16_t)un;
	f->rd = (uint16_t)rd;
	f->special = (uint8_t)special;
	f->sse = enc >= E_XMM;
	unsigned d = digit, o = op & 0xff;
	if (op < 0x40)
		f->lockable = (op & 7) < 2 && op / 8 != 7;
	else if (op <= 0xff)
		f->lockable = ((o >= 0x80 && o <= 0x83) && d != 7) || o == 0x86 || o == 0x87 ||
			      ((o == 0xf6 || o == 0xf7) && (d == 2 || d == 3));
	else if (op < 0x3800)
		f->lockable = o == 0xab || o == 0xb3 || o == 0xbb || (o == 0xba && d >= 5) || o == 0xb0 || o == 0xb1 ||
			      o == 0xc0 || o == 0xc1 || o == 0xc7;
	if ((o == 0xfe || o == 0xff) && op <= 0xff && enc == E_DIGIT && d < 2)
		f->lockable = true;
}

#define OF2(x) (0x100 | (x)) /* 0F xx */
#define OF38(x) (0x3800 | (x)) /* 0F 38 xx */
#define OF3A(x) (0x3a00 | (x)) /* 0F 3A xx */

/* The x87: every memory form but FNSTENV/FNSAVE (whose instruction and
 * operand pointers differ between CPU generations), every register form. */
static void build_x87_forms(void)
{
	static const char *arith[8] = {"fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"};
	static const struct { uint8_t op, digit; const char *name; } mem[] = {
		{0xd9, 0, "fld m32"}, {0xd9, 2, "fst m32"}, {0xd9, 3, "fstp m32"}, {0xd9, 4, "fldenv"},
		{0xd9, 5, "fldcw"}, {0xd9, 7, "fnstcw"}, {0xdb, 0, "fild m32"}, {0xdb, 1, "fisttp m32"},
		{0xdb, 2, "fist m32"}, {0xdb, 3, "fistp m32"}, {0xdb, 5, "fld m80"}, {0xdb, 7, "fstp m80"},
		{0xdd, 0, "fld m64"}, {0xdd, 1, "fisttp m64"}, {0xdd, 2, "fst m64"}, {0xdd, 3, "fstp m64"},
		{0xdd, 4, "frstor"}, {0xdd, 7, "fnstsw m16"}, {0xdf, 0, "fild m16"}, {0xdf, 1, "fisttp m16"},
		{0xdf, 2, "fist m16"}, {0xdf, 3, "fistp m16"}, {0xdf, 4, "fbld"}, {0xdf, 5, "fild m64"},
		{0xdf, 6, "fbstp"}, {0xdf, 7, "fistp m64"},
	};
	static const char *msrc[4] = {"m32", "m32int", "m64", "m16int"};
	char n[24];
	for (unsigned k = 0; k < 4; k++)
		for (unsigned d = 0; d < 8; d++) {
			snprintf(n, sizeof(n), "%s %s", arith[d], msrc[k]);
			add(n, 0, 0xd8 + 2 * k, E_X87_MEM, d, I_NONE, S32, 0, 0, 0, 0);
		}
	for (unsigned i = 0; i < sizeof(mem) / sizeof(mem[0]); i++)
		add(mem[i].name, 0, mem[i].op, E_X87_MEM, mem[i].digit, I_NONE, S32, 0, 0, 0, 0);
	for (unsigned d = 0; d < 8; d++) {
		snprintf(n, sizeof(n), "%s st,st(i)", arith[d]);
		add(n, 0, 0xd8, E_X87_REG, d, I_NONE, S32, 0, 0, 0, 0);
		snprintf(n, sizeof(n), "dc /%u st(i),st", d); /* FCOM2 FCOMP3 aliases at /2 /3 */
		add(n, 0, 0xdc, E_X87_REG, d, I_NONE, S32, 0, 0, 0, 0);
		snprintf(n, sizeof(n), "de /%u st(i),st pop", d); /* FCOMP5 alias at /2 */
		if (d != 3)
			add(n, 0, 0xde, E_X87_REG, d, I_NONE, S32, 0, 0, 0, 0);
	}
	static const struct { uint8_t op, digit; uint16_t wr, rd; const char *name; } reg[] = {
		{0xd9, 0, 0, 0, "fld st(i)"}, {0xd9, 1, 0, 0, "fxch"}, {0xd9, 3, 0, 0, "fstp1"},
		{0xda, 0, 0, DT_CF, "fcmovb"}, {0xda, 1, 0, DT_ZF, "fcmove"}, {0xda, 2, 0, DT_CF | DT_ZF, "fcmovbe"},
		{0xda, 3, 0, DT_PF, "fcmovu"}, {0xdb, 0, 0, DT_CF, "fcmovnb"}, {0xdb, 1, 0, DT_ZF, "fcmovne"},
		{0xdb, 2, 0, DT_CF | DT_ZF, "fcmovnbe"}, {0xdb, 3, 0, DT_PF, "fcmovnu"}, {0xdb, 5, ALL, 0, "fucomi"},
		{0xdb, 6, ALL, 0, "fcomi"}, {0xdd, 0, 0, 0, "ffree"}, {0xdd, 1, 0, 0, "fxch4"}, {0xdd, 2, 0, 0, "fst st(i)"},
		{0xdd, 3, 0, 0, "fstp st(i)"}, {0xdd, 4, 0, 0, "fucom"}, {0xdd, 5, 0, 0, "fucomp"},
		{0xdf, 0, 0, 0, "ffreep"}, {0xdf, 1, 0, 0, "fxch7"}, {0xdf, 2, 0, 0, "fstp8"}, {0xdf, 3, 0, 0, "fstp9"},
		{0xdf, 5, ALL, 0, "fucomip"}, {0xdf, 6, ALL, 0, "fcomip"},
	};
	for (unsigned i = 0; i < sizeof(reg) / sizeof(reg[0]); i++)
		add(reg[i].name, 0, reg[i].op, E_X87_REG, reg[i].digit, I_NONE, S32, reg[i].wr, 0, reg[i].rd, 0);
	static const struct { uint8_t op, modrm; const char *name; } fixed[] = {
		{0xd9, 0xd0, "fnop"}, {0xd9, 0xe0, "fchs"}, {0xd9, 0xe1, "fabs"}, {0xd9, 0xe4, "ftst"},
		{0xd9, 0xe5, "fxam"}, {0xd9, 0xe8, "fld1"}, {0xd9, 0xe9, "fldl2t"}, {0xd9, 0xea, "fldl2e"},
		{0xd9, 0xeb, "fldpi"}, {0xd9, 0xec, "fldlg2"}, {0xd9, 0xed, "fldln2"}, {0xd9, 0xee, "fldz"},
		{0xd9, 0xf0, "f2xm1"}, {0xd9, 0xf1, "fyl2x"}, {0xd9, 0xf2, "fptan"}, {0xd9, 0xf3, "fpatan"},
		{0xd9, 0xf4, "fxtract"}, {0xd9, 0xf5, "fprem1"}, {0xd9, 0xf6, "fdecstp"}, {0xd9, 0xf7, "fincstp"},
		{0xd9, 0xf8, "fprem"}, {0xd9, 0xf9, "fyl2xp1"}, {0xd9, 0xfa, "fsqrt"}, {0xd9, 0xfb, "fsincos"},
		{0xd9, 0xfc, "frndint"}, {0xd9, 0xfd, "fscale"}, {0xd9, 0xfe, "fsin"}, {0xd9, 0xff, "fcos"},
		{0xda, 0xe9, "fucompp"}, {0xdb, 0xe2, "fnclex"}, {0xdb, 0xe3, "fninit"}, {0xde, 0xd9, "fcompp"},
		{0xdf, 0xe0, "fnstsw ax"},
	};
	for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		add(fixed[i].name, 0, fixed[i].op, E_X87_FIXED, fixed[i].modrm, I_NONE, S32, 0, 0, 0, 0);
}

/* MMX (the packed-integer opcodes without a prefix), the SSE2 integer
 * forms MMX shares, SSSE3, SSE4.1, SSE4.2. */
static void build_mmx_ssse3_sse4_forms(void)
{
	char n[24];
	static const uint8_t mmx_ops[] = {
		0xdb, 0xdf, 0xeb, 0xef, 0xfc, 0xfd, 0xfe, 0xd4, 0xf8, 0xf9, 0xfa, 0xfb, 0xdc, 0xdd, 0xd8, 0xd9, 0xec, 0xed,
		0xe8, 0xe9, 0x74, 0x75, 0x76, 0x64, 0x65, 0x66, 0xda, 0xde, 0xd5, 0x60, 0x61, 0x62, 0x68, 0x69, 0x6a,
		0xd1, 0xd2, 0xd3, 0xe1, 0xe2, 0xf1, 0xf2, 0xf3, 0x63, 0x67, 0x6b, 0xe0, 0xe3, 0xe4, 0xe5, 0xea, 0xee,
		0xf4, 0xf5, 0xf6,
	};
	for (unsigned i = 0; i < sizeof(mmx_ops); i++) {
		snprintf(n, sizeof(n), "mmx 0f %02x", mmx_ops[i]);
		add(n, 0, OF2(mmx_ops[i]), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
		if (i >= 43) { /* SSE2 forms the SSE list above lacks */
			snprintf(n, sizeof(n), "66 0f %02x", mmx_ops[i]);
			add(n, 0x66, OF2(mmx_ops[i]), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
		}
	}
	static const struct { uint8_t op, digit; } mshift[] = {
		{0x71, 2}, {0x71, 4}, {0x71, 6}, {0x72, 2}, {0x72, 4}, {0x72, 6}, {0x73, 2}, {0x73, 6},
	};
	for (unsigned i = 0; i < sizeof(mshift) / sizeof(mshift[0]); i++) {
		snprintf(n, sizeof(n), "mmx 0f %02x /%u ib", mshift[i].op, mshift[i].digit);
		add(n, 0, OF2(mshift[i].op), E_XMM_DIGIT, mshift[i].digit, I_8, S32, 0, 0, 0, 0);
	}
	add("movd/q mm,Ev", 0, OF2(0x6e), E_XMM_GPR, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("movd/q Ev,mm", 0, OF2(0x7e), E_XMM_GPR, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("movq mm,mm/m64", 0, OF2(0x6f), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movq mm/m64,mm", 0, OF2(0x7f), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movntq", 0, OF2(0xe7), E_XMM_MEM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("pshufw", 0, OF2(0x70), E_XMM, 0, I_8, S32, 0, 0, 0, 0);
	add("pinsrw mm", 0, OF2(0xc4), E_XMM_GPR, 0, I_8, S32, 0, 0, 0, 0);
	add("pinsrw xmm", 0x66, OF2(0xc4), E_XMM_GPR, 0, I_8, S32, 0, 0, 0, 0);
	add("pextrw mm", 0, OF2(0xc5), E_GPR_XMMREG, 0, I_8, S32, 0, 0, 0, 0);
	add("pextrw xmm", 0x66, OF2(0xc5), E_GPR_XMMREG, 0, I_8, S32, 0, 0, 0, 0);
	add("pmovmskb mm", 0, OF2(0xd7), E_GPR_XMMREG, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movq2dq", 0xf3, OF2(0xd6), E_GPR_XMMREG, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movdq2q", 0xf2, OF2(0xd6), E_GPR_XMMREG, 0, I_NONE, S32, 0, 0, 0, 0);
	add("maskmovq", 0, OF2(0xf7), E_GPR_XMMREG, 0, I_NONE, S32, 0, 0, 0, SP_STRING);
	add("maskmovdqu", 0x66, OF2(0xf7), E_GPR_XMMREG, 0, I_NONE, S32, 0, 0, 0, SP_STRING);
	add("emms", 0, OF2(0x77), E_NONE, 0, I_NONE, S32, 0, 0, 0, 0);
	forms[nforms - 1].sse = true;

	/* SSSE3: MMX and XMM forms */
	static const uint8_t ssse3_ops[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x1c, 0x1d, 0x1e};
	for (unsigned i = 0; i < sizeof(ssse3_ops); i++) {
		snprintf(n, sizeof(n), "mmx 0f 38 %02x", ssse3_ops[i]);
		add(n, 0, OF38(ssse3_ops[i]), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
		snprintf(n, sizeof(n), "66 0f 38 %02x", ssse3_ops[i]);
		add(n, 0x66, OF38(ssse3_ops[i]), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	}
	add("palignr mm", 0, OF3A(0x0f), E_XMM, 0, I_8, S32, 0, 0, 0, 0);
	add("palignr xmm", 0x66, OF3A(0x0f), E_XMM, 0, I_8, S32, 0, 0, 0, 0);

	/* SSE4.1, SSE4.2 */
	static const uint8_t sse41_ops[] = {
		0x10, 0x14, 0x15, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x28, 0x29, 0x2b, 0x30, 0x31, 0x32, 0x33, 0x34,
		0x35, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41,
	};
	for (unsigned i = 0; i < sizeof(sse41_ops); i++) {
		snprintf(n, sizeof(n), "66 0f 38 %02x", sse41_ops[i]);
		add(n, 0x66, OF38(sse41_ops[i]), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	}
	add("ptest", 0x66, OF38(0x17), E_XMM, 0, I_NONE, S32, ALL, 0, 0, 0);
	add("movntdqa", 0x66, OF38(0x2a), E_XMM_MEM, 0, I_NONE, S32, 0, 0, 0, 0);
	static const uint8_t sse41_imm_ops[] = {0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x21, 0x40, 0x41, 0x42};
	for (unsigned i = 0; i < sizeof(sse41_imm_ops); i++) {
		snprintf(n, sizeof(n), "66 0f 3a %02x ib", sse41_imm_ops[i]);
		add(n, 0x66, OF3A(sse41_imm_ops[i]), E_XMM, 0, I_8, S32, 0, 0, 0, 0);
	}
	add("pextrb", 0x66, OF3A(0x14), E_XMM_GPR, 0, I_8, S32, 0, 0, 0, 0);
	add("pextrw Ew", 0x66, OF3A(0x15), E_XMM_GPR, 0, I_8, S32, 0, 0, 0, 0);
	add("pextrd/q", 0x66, OF3A(0x16), E_XMM_GPR, 0, I_8, S32 | S64, 0, 0, 0, 0);
	add("extractps", 0x66, OF3A(0x17), E_XMM_GPR, 0, I_8, S32, 0, 0, 0, 0);
	add("pinsrb", 0x66, OF3A(0x20), E_XMM_GPR, 0, I_8, S32, 0, 0, 0, 0);
	add("pinsrd/q", 0x66, OF3A(0x22), E_XMM_GPR, 0, I_8, S32 | S64, 0, 0, 0, 0);
	static const char *const strcmp_names[] = {"pcmpestrm", "pcmpestri", "pcmpistrm", "pcmpistri"};
	for (unsigned i = 0; i < 4; i++)
		add(strcmp_names[i], 0x66, OF3A(0x60 + i), E_XMM, 0, I_8, S32 | S64, ALL, 0, 0, 0);
	add("crc32 Gv,Eb", 0xf2, OF38(0xf0), E_RM, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("crc32 Gv,Ev", 0xf2, OF38(0xf1), E_RM, 0, I_NONE, SV, 0, 0, 0, 0);
}

static void build_forms(void)
{
	static const char *alu[8] = {"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"};
	for (unsigned k = 0; k < 8; k++) {
		bool logic = k == 1 || k == 4 || k == 6;
		unsigned wr = logic ? LOGIC_WR : ALL, un = logic ? DT_AF : 0, rd = (k == 2 || k == 3) ? DT_CF : 0;
		char n[24];
		snprintf(n, sizeof(n), "%s Eb,Gb", alu[k]); add(n, 0, k * 8 + 0, E_RM, 0, I_NONE, S8, wr, un, rd, 0);
		snprintf(n, sizeof(n), "%s Ev,Gv", alu[k]); add(n, 0, k * 8 + 1, E_RM, 0, I_NONE, SV, wr, un, rd, 0);
		snprintf(n, sizeof(n), "%s Gb,Eb", alu[k]); add(n, 0, k * 8 + 2, E_RM, 0, I_NONE, S8, wr, un, rd, 0);
		snprintf(n, sizeof(n), "%s Gv,Ev", alu[k]); add(n, 0, k * 8 + 3, E_RM, 0, I_NONE, SV, wr, un, rd, 0);
		snprintf(n, sizeof(n), "%s AL,Ib", alu[k]); add(n, 0, k * 8 + 4, E_NONE, 0, I_8, S8, wr, un, rd, 0);
		snprintf(n, sizeof(n), "%s eAX,Iz", alu[k]); add(n, 0, k * 8 + 5, E_NONE, 0, I_Z, SV, wr, un, rd, 0);
		snprintf(n, sizeof(n), "%s Eb,Ib", alu[k]); add(n, 0, 0x80, E_DIGIT, k, I_8, S8, wr, un, rd, 0);
		snprintf(n, sizeof(n), "%s Ev,Iz", alu[k]); add(n, 0, 0x81, E_DIGIT, k, I_Z, SV, wr, un, rd, 0);
		snprintf(n, sizeof(n), "%s Ev,Ib", alu[k]); add(n, 0, 0x83, E_DIGIT, k, I_8, SV, wr, un, rd, 0);
	}
	add("test Eb,Gb", 0, 0x84, E_RM, 0, I_NONE, S8, LOGIC_WR, DT_AF, 0, 0);
	add("test Ev,Gv", 0, 0x85, E_RM, 0, I_NONE, SV, LOGIC_WR, DT_AF, 0, 0);
	add("test AL,Ib", 0, 0xa8, E_NONE, 0, I_8, S8, LOGIC_WR, DT_AF, 0, 0);
	add("test eAX,Iz", 0, 0xa9, E_NONE, 0, I_Z, SV, LOGIC_WR, DT_AF, 0, 0);
	add("test Eb,Ib", 0, 0xf6, E_DIGIT, 0, I_8, S8, LOGIC_WR, DT_AF, 0, 0);
	add("test Ev,Iz", 0, 0xf7, E_DIGIT, 0, I_Z, SV, LOGIC_WR, DT_AF, 0, 0);
	static const char *g3[8] = {"", "", "not", "neg", "mul", "imul", "div", "idiv"};
	for (unsigned d = 2; d < 8; d++) {
		unsigned wr = d == 2 ? 0 : d == 3 ? ALL : d < 6 ? DT_CF | DT_OF : 0;
		unsigned un = d < 4 ? 0 : d < 6 ? DT_SF | DT_ZF | DT_AF | DT_PF : ALL;
		char n[24];
		snprintf(n, sizeof(n), "%s Eb", g3[d]); add(n, 0, 0xf6, E_DIGIT, d, I_NONE, S8, wr, un, 0, 0);
		snprintf(n, sizeof(n), "%s Ev", g3[d]); add(n, 0, 0xf7, E_DIGIT, d, I_NONE, SV, wr, un, 0, 0);
	}
	unsigned incdec = DT_PF | DT_AF | DT_ZF | DT_SF | DT_OF;
	add("inc Eb", 0, 0xfe, E_DIGIT, 0, I_NONE, S8, incdec, 0, 0, 0);
	add("dec Eb", 0, 0xfe, E_DIGIT, 1, I_NONE, S8, incdec, 0, 0, 0);
	add("inc Ev", 0, 0xff, E_DIGIT, 0, I_NONE, SV, incdec, 0, 0, 0);
	add("dec Ev", 0, 0xff, E_DIGIT, 1, I_NONE, SV, incdec, 0, 0, 0);
	unsigned imul_un = DT_SF | DT_ZF | DT_AF | DT_PF;
	add("imul Gv,Ev", 0, OF2(0xaf), E_RM, 0, I_NONE, SV, DT_CF | DT_OF, imul_un, 0, 0);
	add("imul Gv,Ev,Iz", 0, 0x69, E_RM, 0, I_Z, SV, DT_CF | DT_OF, imul_un, 0, 0);
	add("imul Gv,Ev,Ib", 0, 0x6b, E_RM, 0, I_8, SV, DT_CF | DT_OF, imul_un, 0, 0);

	static const char *g2[8] = {"rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"};
	for (unsigned d = 0; d < 8; d++) {
		bool rot = d < 4;
		unsigned rd = (d == 2 || d == 3) ? DT_CF : 0;
		unsigned wr1 = rot ? DT_CF | DT_OF : DT_CF | DT_PF | DT_ZF | DT_SF | DT_OF;
		unsigned un1 = rot ? 0 : DT_AF;
		unsigned un = rot ? DT_OF : DT_OF | DT_AF;
		char n[24];
		snprintf(n, sizeof(n), "%s Eb,1", g2[d]); add(n, 0, 0xd0, E_DIGIT, d, I_NONE, S8, wr1, un1, rd, 0);
		snprintf(n, sizeof(n), "%s Ev,1", g2[d]); add(n, 0, 0xd1, E_DIGIT, d, I_NONE, SV, wr1, un1, rd, 0);
		snprintf(n, sizeof(n), "%s Eb,CL", g2[d]); add(n, 0, 0xd2, E_DIGIT, d, I_NONE, S8, 0, un | (rot ? 0 : DT_CF), rd, 0);
		snprintf(n, sizeof(n), "%s Ew,CL", g2[d]); add(n, 0, 0xd3, E_DIGIT, d, I_NONE, S16, 0, un | (rot ? 0 : DT_CF), rd, 0);
		snprintf(n, sizeof(n), "%s Ev,CL", g2[d]); add(n, 0, 0xd3, E_DIGIT, d, I_NONE, S32 | S64, 0, un, rd, 0);
		snprintf(n, sizeof(n), "%s Eb,Ib", g2[d]); add(n, 0, 0xc0, E_DIGIT, d, I_COUNT, S8, 0, un, rd, 0);
		snprintf(n, sizeof(n), "%s Ev,Ib", g2[d]); add(n, 0, 0xc1, E_DIGIT, d, I_COUNT, SV, 0, un, rd, 0);
	}
	add("shld Ev,Gv,Ib", 0, OF2(0xa4), E_RM, 0, I_COUNT, SV, 0, DT_OF | DT_AF, 0, 0);
	add("shld Ev,Gv,CL", 0, OF2(0xa5), E_RM, 0, I_NONE, S32 | S64, 0, DT_OF | DT_AF, 0, 0);
	add("shrd Ev,Gv,Ib", 0, OF2(0xac), E_RM, 0, I_COUNT, SV, 0, DT_OF | DT_AF, 0, 0);
	add("shrd Ev,Gv,CL", 0, OF2(0xad), E_RM, 0, I_NONE, S32 | S64, 0, DT_OF | DT_AF, 0, 0);

	unsigned bt_un = DT_OF | DT_SF | DT_AF | DT_PF;
	add("bt Ev,Gv", 0, OF2(0xa3), E_RM, 0, I_NONE, SV, DT_CF, bt_un, 0, SP_BT_MEM);
	add("bts Ev,Gv", 0, OF2(0xab), E_RM, 0, I_NONE, SV, DT_CF, bt_un, 0, SP_BT_MEM);
	add("btr Ev,Gv", 0, OF2(0xb3), E_RM, 0, I_NONE, SV, DT_CF, bt_un, 0, SP_BT_MEM);
	add("btc Ev,Gv", 0, OF2(0xbb), E_RM, 0, I_NONE, SV, DT_CF, bt_un, 0, SP_BT_MEM);
	for (unsigned d = 4; d < 8; d++) {
		static const char *bn[4] = {"bt Ev,Ib", "bts Ev,Ib", "btr Ev,Ib", "btc Ev,Ib"};
		add(bn[d - 4], 0, OF2(0xba), E_DIGIT, d, I_8, SV, DT_CF, bt_un, 0, 0);
	}
	add("bsf Gv,Ev", 0, OF2(0xbc), E_RM, 0, I_NONE, SV, DT_ZF, DT_CF | DT_OF | DT_SF | DT_AF | DT_PF, 0, 0);
	add("bsr Gv,Ev", 0, OF2(0xbd), E_RM, 0, I_NONE, SV, DT_ZF, DT_CF | DT_OF | DT_SF | DT_AF | DT_PF, 0, 0);
	add("popcnt Gv,Ev", 0xf3, OF2(0xb8), E_RM, 0, I_NONE, SV, ALL, 0, 0, 0);
	add("lzcnt Gv,Ev", 0xf3, OF2(0xbd), E_RM, 0, I_NONE, SV, DT_CF | DT_ZF, DT_OF | DT_SF | DT_AF | DT_PF, 0, 0);
	for (unsigned cc = 0; cc < 16; cc++) {
		char n[24];
		snprintf(n, sizeof(n), "cmov%u Gv,Ev", cc); add(n, 0, OF2(0x40 + cc), E_RM, 0, I_NONE, SV, 0, 0, ALL, 0);
		snprintf(n, sizeof(n), "set%u Eb", cc); add(n, 0, OF2(0x90 + cc), E_DIGIT, 0, I_NONE, S8, 0, 0, ALL, 0);
		snprintf(n, sizeof(n), "j%u rel8", cc); add(n, 0, 0x70 + cc, E_NONE, 0, I_NONE, S32, 0, 0, ALL, SP_JCC8);
		snprintf(n, sizeof(n), "j%u rel32", cc); add(n, 0, OF2(0x80 + cc), E_NONE, 0, I_NONE, S32, 0, 0, ALL, SP_JCC32);
	}
	add("xchg Eb,Gb", 0, 0x86, E_RM, 0, I_NONE, S8, 0, 0, 0, 0);
	add("xchg Ev,Gv", 0, 0x87, E_RM, 0, I_NONE, SV, 0, 0, 0, 0);
	add("xchg rAX,r", 0, 0x90, E_PLUSR, 0, I_NONE, SV, 0, 0, 0, 0);
	add("mov Eb,Gb", 0, 0x88, E_RM, 0, I_NONE, S8, 0, 0, 0, 0);
	add("mov Ev,Gv", 0, 0x89, E_RM, 0, I_NONE, SV, 0, 0, 0, 0);
	add("mov Gb,Eb", 0, 0x8a, E_RM, 0, I_NONE, S8, 0, 0, 0, 0);
	add("mov Gv,Ev", 0, 0x8b, E_RM, 0, I_NONE, SV, 0, 0, 0, 0);
	add("mov Eb,Ib", 0, 0xc6, E_DIGIT, 0, I_8, S8, 0, 0, 0, 0);
	add("mov Ev,Iz", 0, 0xc7, E_DIGIT, 0, I_Z, SV, 0, 0, 0, 0);
	add("mov r8,Ib", 0, 0xb0, E_PLUSR, 0, I_8, S8, 0, 0, 0, 0);
	add("mov r,Iv", 0, 0xb8, E_PLUSR, 0, I_V, SV, 0, 0, 0, 0);
	add("movzx Gv,Eb", 0, OF2(0xb6), E_RM, 0, I_NONE, SV, 0, 0, 0, 0);
	add("movzx Gv,Ew", 0, OF2(0xb7), E_RM, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("movsx Gv,Eb", 0, OF2(0xbe), E_RM, 0, I_NONE, SV, 0, 0, 0, 0);
	add("movsx Gv,Ew", 0, OF2(0xbf), E_RM, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("movsxd Gv,Ed", 0, 0x63, E_RM, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("lea Gv,M", 0, 0x8d, E_RM_MEM, 0, I_NONE, SV, 0, 0, 0, 0);
	add("cbw/cwde/cdqe", 0, 0x98, E_NONE, 0, I_NONE, SV, 0, 0, 0, 0);
	add("cwd/cdq/cqo", 0, 0x99, E_NONE, 0, I_NONE, SV, 0, 0, 0, 0);
	add("xadd Eb,Gb", 0, OF2(0xc0), E_RM, 0, I_NONE, S8, ALL, 0, 0, 0);
	add("xadd Ev,Gv", 0, OF2(0xc1), E_RM, 0, I_NONE, SV, ALL, 0, 0, 0);
	add("cmpxchg Eb,Gb", 0, OF2(0xb0), E_RM, 0, I_NONE, S8, ALL, 0, 0, 0);
	add("cmpxchg Ev,Gv", 0, OF2(0xb1), E_RM, 0, I_NONE, SV, ALL, 0, 0, 0);
	add("cmpxchg8b M", 0, OF2(0xc7), E_DIGIT_MEM, 1, I_NONE, S32, DT_ZF, 0, 0, 0);
	add("cmpxchg16b M", 0, OF2(0xc7), E_DIGIT_MEM, 1, I_NONE, S64, DT_ZF, 0, 0, 0);
	add("bswap r", 0, OF2(0xc8), E_PLUSR, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("push r", 0, 0x50, E_PLUSR, 0, I_NONE, S16 | S64, 0, 0, 0, SP_DEF64);
	add("pop r", 0, 0x58, E_PLUSR, 0, I_NONE, S16 | S64, 0, 0, 0, SP_DEF64);
	add("push Iz", 0, 0x68, E_NONE, 0, I_Z, S16 | S64, 0, 0, 0, SP_DEF64);
	add("push Ib", 0, 0x6a, E_NONE, 0, I_8, S16 | S64, 0, 0, 0, SP_DEF64);
	add("push Ev", 0, 0xff, E_DIGIT, 6, I_NONE, S16 | S64, 0, 0, 0, SP_DEF64);
	add("pop Ev", 0, 0x8f, E_DIGIT, 0, I_NONE, S16 | S64, 0, 0, 0, SP_DEF64);
	add("pushf", 0, 0x9c, E_NONE, 0, I_NONE, S16 | S64, 0, 0, ALL, SP_DEF64);
	add("lahf", 0, 0x9f, E_NONE, 0, I_NONE, S32, 0, 0, ALL & ~DT_OF, 0);
	add("sahf", 0, 0x9e, E_NONE, 0, I_NONE, S32, ALL & ~DT_OF, 0, 0, 0);
	add("clc", 0, 0xf8, E_NONE, 0, I_NONE, S32, DT_CF, 0, 0, 0);
	add("stc", 0, 0xf9, E_NONE, 0, I_NONE, S32, DT_CF, 0, 0, 0);
	add("cmc", 0, 0xf5, E_NONE, 0, I_NONE, S32, DT_CF, 0, DT_CF, 0);
	add("cld", 0, 0xfc, E_NONE, 0, I_NONE, S32, 0, 0, 0, 0);
	add("std", 0, 0xfd, E_NONE, 0, I_NONE, S32, 0, 0, 0, 0);
	add("nop Ev", 0, OF2(0x1f), E_DIGIT, 0, I_NONE, S16 | S32, 0, 0, 0, 0);
	add("pause", 0xf3, 0x90, E_NONE, 0, I_NONE, S32, 0, 0, 0, 0);
	static const struct { const char *name; unsigned op; bool cmp; } str[] = {
		{"movs", 0xa4, false}, {"cmps", 0xa6, true}, {"stos", 0xaa, false}, {"lods", 0xac, false}, {"scas", 0xae, true},
	};
	for (unsigned i = 0; i < 5; i++) {
		char n[24];
		unsigned wr = str[i].cmp ? ALL : 0;
		snprintf(n, sizeof(n), "%sb", str[i].name); add(n, 0, str[i].op, E_NONE, 0, I_NONE, S8, wr, 0, 0, SP_STRING);
		snprintf(n, sizeof(n), "%s", str[i].name); add(n, 0, str[i].op + 1, E_NONE, 0, I_NONE, SV, wr, 0, 0, SP_STRING);
		snprintf(n, sizeof(n), "rep %sb", str[i].name); add(n, 0xf3, str[i].op, E_NONE, 0, I_NONE, S8, 0, 0, 0, SP_STRING);
		snprintf(n, sizeof(n), "rep %s", str[i].name); add(n, 0xf3, str[i].op + 1, E_NONE, 0, I_NONE, SV, 0, 0, 0, SP_STRING);
		if (str[i].cmp) {
			snprintf(n, sizeof(n), "repne %sb", str[i].name); add(n, 0xf2, str[i].op, E_NONE, 0, I_NONE, S8, 0, 0, 0, SP_STRING);
			snprintf(n, sizeof(n), "repne %s", str[i].name); add(n, 0xf2, str[i].op + 1, E_NONE, 0, I_NONE, SV, 0, 0, 0, SP_STRING);
		}
	}

	/* ---- SSE/SSE2 ---- */
	add("movups", 0, OF2(0x10), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movups store", 0, OF2(0x11), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movupd", 0x66, OF2(0x10), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movss", 0xf3, OF2(0x10), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movss store", 0xf3, OF2(0x11), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movsd", 0xf2, OF2(0x10), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movsd store", 0xf2, OF2(0x11), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movaps", 0, OF2(0x28), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movaps store", 0, OF2(0x29), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movlps/movhlps", 0, OF2(0x12), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movhps/movlhps", 0, OF2(0x16), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movlpd", 0x66, OF2(0x12), E_XMM_MEM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movhpd", 0x66, OF2(0x16), E_XMM_MEM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movlps store", 0, OF2(0x13), E_XMM_MEM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movhps store", 0, OF2(0x17), E_XMM_MEM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movdqa", 0x66, OF2(0x6f), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movdqu", 0xf3, OF2(0x6f), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movdqa store", 0x66, OF2(0x7f), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movdqu store", 0xf3, OF2(0x7f), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movntdq", 0x66, OF2(0xe7), E_XMM_MEM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movq xmm,xmm/m64", 0xf3, OF2(0x7e), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movq xmm/m64,xmm", 0x66, OF2(0xd6), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movd/q xmm,Ev", 0x66, OF2(0x6e), E_XMM_GPR, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("movd/q Ev,xmm", 0x66, OF2(0x7e), E_XMM_GPR, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	static const uint8_t logic_ops[] = {0x54, 0x55, 0x56, 0x57};
	for (unsigned i = 0; i < 4; i++) {
		char n[24];
		snprintf(n, sizeof(n), "logic ps %02x", logic_ops[i]); add(n, 0, OF2(logic_ops[i]), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
		snprintf(n, sizeof(n), "logic pd %02x", logic_ops[i]); add(n, 0x66, OF2(logic_ops[i]), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	}
	static const uint8_t pint_ops[] = {
		0xdb, 0xdf, 0xeb, 0xef, 0xfc, 0xfd, 0xfe, 0xd4, 0xf8, 0xf9, 0xfa, 0xfb, 0xdc, 0xdd, 0xd8, 0xd9, 0xec, 0xed,
		0xe8, 0xe9, 0x74, 0x75, 0x76, 0x64, 0x65, 0x66, 0xda, 0xde, 0xd5, 0x60, 0x61, 0x62, 0x68, 0x69, 0x6a,
		0x6c, 0x6d, 0xd1, 0xd2, 0xd3, 0xe1, 0xe2, 0xf1, 0xf2, 0xf3,
	};
	for (unsigned i = 0; i < sizeof(pint_ops); i++) {
		char n[24];
		snprintf(n, sizeof(n), "66 0f %02x", pint_ops[i]);
		add(n, 0x66, OF2(pint_ops[i]), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	}
	static const struct { uint8_t op, digit; } pshift[] = {
		{0x71, 2}, {0x71, 4}, {0x71, 6}, {0x72, 2}, {0x72, 4}, {0x72, 6}, {0x73, 2}, {0x73, 3}, {0x73, 6}, {0x73, 7},
	};
	for (unsigned i = 0; i < sizeof(pshift) / sizeof(pshift[0]); i++) {
		char n[24];
		snprintf(n, sizeof(n), "66 0f %02x /%u ib", pshift[i].op, pshift[i].digit);
		add(n, 0x66, OF2(pshift[i].op), E_XMM_DIGIT, pshift[i].digit, I_8, S32, 0, 0, 0, 0);
	}
	add("unpcklps", 0, OF2(0x14), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("unpckhps", 0, OF2(0x15), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("unpcklpd", 0x66, OF2(0x14), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("unpckhpd", 0x66, OF2(0x15), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("pshufd", 0x66, OF2(0x70), E_XMM, 0, I_8, S32, 0, 0, 0, 0);
	add("pshufhw", 0xf3, OF2(0x70), E_XMM, 0, I_8, S32, 0, 0, 0, 0);
	add("pshuflw", 0xf2, OF2(0x70), E_XMM, 0, I_8, S32, 0, 0, 0, 0);
	add("shufps", 0, OF2(0xc6), E_XMM, 0, I_8, S32, 0, 0, 0, 0);
	add("shufpd", 0x66, OF2(0xc6), E_XMM, 0, I_8, S32, 0, 0, 0, 0);
	add("pmovmskb", 0x66, OF2(0xd7), E_GPR_XMMREG, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movmskps", 0, OF2(0x50), E_GPR_XMMREG, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movmskpd", 0x66, OF2(0x50), E_GPR_XMMREG, 0, I_NONE, S32, 0, 0, 0, 0);
	static const uint8_t fp_ops[] = {0x51, 0x58, 0x59, 0x5c, 0x5d, 0x5e, 0x5f};
	static const uint8_t fp_pfx[] = {0, 0x66, 0xf3, 0xf2};
	for (unsigned i = 0; i < sizeof(fp_ops); i++)
		for (unsigned p = 0; p < 4; p++) {
			char n[24];
			snprintf(n, sizeof(n), "%02x 0f %02x", fp_pfx[p], fp_ops[i]);
			add(n, fp_pfx[p], OF2(fp_ops[i]), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
		}
	add("cvtsi2sd", 0xf2, OF2(0x2a), E_XMM_GPR, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("cvtsi2ss", 0xf3, OF2(0x2a), E_XMM_GPR, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("cvttsd2si", 0xf2, OF2(0x2c), E_GPR_XMM, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("cvtsd2si", 0xf2, OF2(0x2d), E_GPR_XMM, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("cvttss2si", 0xf3, OF2(0x2c), E_GPR_XMM, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("cvtss2si", 0xf3, OF2(0x2d), E_GPR_XMM, 0, I_NONE, S32 | S64, 0, 0, 0, 0);
	add("cvtss2sd", 0xf3, OF2(0x5a), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("cvtsd2ss", 0xf2, OF2(0x5a), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("addsubpd", 0x66, OF2(0xd0), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("addsubps", 0xf2, OF2(0xd0), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("haddpd", 0x66, OF2(0x7c), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("haddps", 0xf2, OF2(0x7c), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("hsubpd", 0x66, OF2(0x7d), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("hsubps", 0xf2, OF2(0x7d), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movddup", 0xf2, OF2(0x12), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movsldup", 0xf3, OF2(0x12), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("movshdup", 0xf3, OF2(0x16), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("lddqu", 0xf2, OF2(0xf0), E_XMM_MEM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("cmpps", 0, OF2(0xc2), E_XMM, 0, I_COUNT, S32, 0, 0, 0, 0);
	add("cmppd", 0x66, OF2(0xc2), E_XMM, 0, I_COUNT, S32, 0, 0, 0, 0);
	add("cmpss", 0xf3, OF2(0xc2), E_XMM, 0, I_COUNT, S32, 0, 0, 0, 0);
	add("cmpsd", 0xf2, OF2(0xc2), E_XMM, 0, I_COUNT, S32, 0, 0, 0, 0);
	add("cvtps2pd", 0, OF2(0x5a), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("cvtpd2ps", 0x66, OF2(0x5a), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("cvtdq2ps", 0, OF2(0x5b), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("cvtps2dq", 0x66, OF2(0x5b), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("cvttps2dq", 0xf3, OF2(0x5b), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("cvtdq2pd", 0xf3, OF2(0xe6), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("cvtpd2dq", 0xf2, OF2(0xe6), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("cvttpd2dq", 0x66, OF2(0xe6), E_XMM, 0, I_NONE, S32, 0, 0, 0, 0);
	add("ucomiss", 0, OF2(0x2e), E_XMM, 0, I_NONE, S32, ALL, 0, 0, 0);
	add("comiss", 0, OF2(0x2f), E_XMM, 0, I_NONE, S32, ALL, 0, 0, 0);
	add("ucomisd", 0x66, OF2(0x2e), E_XMM, 0, I_NONE, S32, ALL, 0, 0, 0);
	add("comisd", 0x66, OF2(0x2f), E_XMM, 0, I_NONE, S32, ALL, 0, 0, 0);
	build_mmx_ssse3_sse4_forms();
	build_x87_forms();
}

/* ---- random numbers (xorshift64*) ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

void gen_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
	if (!nforms)
		build_forms();
}

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static unsigned below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* Values that exercise flag edge cases. */
static uint64_t interesting(void)
{
	static const uint64_t edge[] = {
		0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000u,
		0xffffffffu, 0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull, ~1ull, 0x0f0f0f0f0f0f0f0full,
	};
	switch (below(4)) {
	case 0: return edge[below(sizeof(edge) / sizeof(edge[0]))];
	case 1: return rnd() & 0xff;
	case 2: return (uint64_t)(int64_t)(int8_t)rnd();
	default: return rnd();
	}
}

bool gen_form_is_x87(unsigned form)
{
	return forms[form].enc >= E_X87_REG;
}

unsigned gen_form_count(void)
{
	if (!nforms)
		build_forms();
	return nforms;
}

const char *gen_form_name(unsigned form)
{
	return form < nforms ? forms[form].name : "?";
}

/* ---- encoder ---- */

/* Registers random operands may use: not RSP/RBP (stack), R14/R15 (addressing). */
static const uint8_t free_regs[] = {0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13};

static unsigned free_reg(void)
{
	return free_regs[below(sizeof(free_regs))];
}

/* A byte register without REX may be any of 0-7 (AL..BH). */
static unsigned byte_reg(bool rex)
{
	return rex ? free_reg() : below(8);
}

struct out {
	uint8_t *p;
	unsigned n;
};

static void put(struct out *o, unsigned b)
{
	if (o->n < CODE_MAX)
		o->p[o->n++] = (uint8_t)b;
}

static void put_n(struct out *o, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		put(o, (unsigned)(v >> (8 * i)));
}

/* A ModRM memory operand (see the file comment). */
struct mem_operand {
	unsigned mod, rm, sib, disp_bytes;
	bool has_sib, rex_b, rex_x, rip_rel;
	uint64_t disp, rip_target;
};

static void pick_mem(struct mem_operand *m, bool aligned)
{
	memset(m, 0, sizeof(*m));
	if (aligned) { /* SSE: mostly 16-byte aligned, else most would just #GP */
		m->rex_b = true;
		m->rm = 7;
		if (below(2)) {
			m->mod = 1; m->disp_bytes = 1; m->disp = (uint64_t)(int64_t)(-128 + 16 * (int)below(16));
		} else {
			m->mod = 2; m->disp_bytes = 4; m->disp = (uint64_t)(int64_t)(16 * (int)below(0x160) - 0xc00);
		}
		return;
	}
	switch (below(6)) {
	case 0: /* [r15] */
		m->mod = 0; m->rm = 7; m->rex_b = true;
		break;
	case 1: /* [r15 + disp8] */
		m->mod = 1; m->rm = 7; m->rex_b = true; m->disp_bytes = 1; m->disp = rnd() & 0xff;
		break;
	case 2: /* [r15 + disp32] */
		m->mod = 2; m->rm = 7; m->rex_b = true; m->disp_bytes = 4;
		m->disp = (uint64_t)(int64_t)((int)below(0x1700) - 0xc00);
		break;
	case 3: /* [r15 + r14*s + disp8] */
		m->mod = 1; m->rm = 4; m->has_sib = true; m->sib = (below(4) << 6) | (6 << 3) | 7;
		m->rex_b = m->rex_x = true; m->disp_bytes = 1; m->disp = rnd() & 0xff;
		break;
	case 4: /* RIP-relative into the data region */
		m->mod = 0; m->rm = 5; m->disp_bytes = 4; m->rip_rel = true;
		m->rip_target = DATA_ADDR + below(DATA_SIZE - 32);
		break;
	default: /* absolute disp32 (SIB, no base, no index) */
		m->mod = 0; m->rm = 4; m->has_sib = true; m->sib = (4 << 3) | 5; m->disp_bytes = 4;
		m->disp = DATA_ADDR + below(DATA_SIZE - 32);
		break;
	}
}

static unsigned imm_bytes(unsigned imm, unsigned size)
{
	switch (imm) {
	case I_8: case I_COUNT: return 1;
	case I_Z: return size == 2 ? 2 : 4;
	case I_V: return size;
	default: return 0;
	}
}

/* Emit one instruction of form f at operand size `size` (bytes). */
static void emit_form(struct out *o, const struct form *f, unsigned size)
{
	bool byte_form = f->sizes == S8;
	bool rex_w = size == 8 && f->special != SP_DEF64 && !f->sse;
	if (f->sse && (f->sizes & S64) && size == 8)
		rex_w = true;
	bool want_rex = byte_form && below(2);
	unsigned reg = 0, rm = 0;
	bool mem = false;
	struct mem_operand m = {0};

	switch (f->enc) {
	case E_RM: case E_RM_MEM: case E_DIGIT: case E_DIGIT_MEM:
		mem = f->enc == E_RM_MEM || f->enc == E_DIGIT_MEM || below(2);
		if (f->enc == E_DIGIT || f->enc == E_DIGIT_MEM)
			reg = f->digit;
		else
			reg = byte_form ? byte_reg(want_rex) : free_reg();
		if (f->special == SP_BT_MEM && mem)
			reg = 14; /* small bit offset */
		if (!mem)
			rm = byte_form ? byte_reg(want_rex) : free_reg();
		break;
	case E_PLUSR:
		reg = byte_form ? byte_reg(want_rex) : free_reg();
		break;
	case E_XMM: case E_XMM_MEM:
		reg = below(16);
		mem = f->enc == E_XMM_MEM || (f->enc == E_XMM && below(2));
		rm = below(16);
		break;
	case E_XMM_DIGIT:
		reg = f->digit;
		rm = below(16);
		break;
	case E_XMM_GPR:
		reg = below(16);
		mem = below(2);
		rm = free_reg();
		break;
	case E_X87_REG:
		reg = f->digit;
		rm = below(8);
		break;
	case E_X87_MEM:
		reg = f->digit;
		mem = true;
		break;
	case E_GPR_XMM: case E_GPR_XMMREG:
		reg = free_reg();
		mem = f->enc == E_GPR_XMM && below(2);
		rm = below(16);
		break;
	default:
		break;
	}
	if (mem)
		pick_mem(&m, f->sse && f->enc < E_X87_REG && below(4) != 0);
	/* Byte registers 4-7 mean AH..BH without REX: no REX bits then. */
	if (byte_form && !want_rex && (reg >= 8 || (!mem && rm >= 8)))
		want_rex = true;

	if (mem && f->lockable && below(3) == 0)
		put(o, 0xf0); /* LOCK */
	if (size == 2 && !byte_form && !f->sse)
		put(o, 0x66);
	if (mem && below(8) == 0 && !m.rip_rel && m.rm != 4)
		put(o, 0x67); /* 32-bit address size: r15d is the same address */
	if (f->pfx)
		put(o, f->pfx);
	unsigned rex = 0x40 | (rex_w ? 8 : 0) | (((f->enc == E_PLUSR ? 0 : reg) & 8) ? 4 : 0);
	if (mem)
		rex |= (m.rex_x ? 2 : 0) | (m.rex_b ? 1 : 0);
	else if (f->enc == E_PLUSR)
		rex |= (reg & 8) ? 1 : 0;
	else
		rex |= (rm & 8) ? 1 : 0;
	if (rex != 0x40 || want_rex)
		put(o, rex);
	for (unsigned i = 0; i < f->oplen; i++)
		put(o, f->op[i] + (i + 1u == f->oplen && f->enc == E_PLUSR ? (reg & 7) : 0));

	unsigned disp_at = 0;
	if (f->enc == E_X87_FIXED) {
		put(o, f->digit);
	} else if (f->enc != E_NONE && f->enc != E_PLUSR) {
		if (mem) {
			put(o, (m.mod << 6) | ((reg & 7) << 3) | m.rm);
			if (m.has_sib)
				put(o, m.sib);
			disp_at = o->n;
			put_n(o, m.disp, m.disp_bytes);
		} else {
			put(o, 0xc0 | ((reg & 7) << 3) | (rm & 7));
		}
	}
	unsigned ib = imm_bytes(f->imm, byte_form ? 1 : size);
	uint64_t imm = interesting();
	if (f->imm == I_COUNT)
		imm = below(byte_form ? 8 : size == 2 ? 16 : 8 * size);
	put_n(o, imm, ib);
	if (m.rip_rel) { /* relative to the end of the instruction */
		uint32_t d = (uint32_t)(m.rip_target - (CODE_ADDR + o->n));
		memcpy(o->p + disp_at, &d, 4);
	}
}

static unsigned pick_size(const struct form *f)
{
	unsigned choices[4], n = 0;
	if (f->sizes & S8) choices[n++] = 1;
	if (f->sizes & S16) choices[n++] = 2;
	if (f->sizes & S32) choices[n++] = 4;
	if (f->sizes & S64) choices[n++] = 8;
	return choices[below(n)];
}

/* MOV reg, imm32 sign-extended (REX.W C7 /0) */
static void emit_mov_imm(struct out *o, unsigned reg, int32_t v)
{
	put(o, 0x48 | ((reg & 8) ? 1 : 0));
	put(o, 0xc7);
	put(o, 0xc0 | (reg & 7));
	put_n(o, (uint32_t)v, 4);
}

/* An 80-bit value: mostly numbers that arithmetic keeps in range, some
 * specials (zeros, infinities, NaNs, denormals, unnormals), some raw bits. */
static void random_f80(uint8_t out[10])
{
	static const uint16_t exps[] = {0x3fff, 0x4000, 0x3ffe, 0x401f, 0x3fc0, 0x0000, 0x7fff, 0x43fe, 0x0001, 0xc000};
	uint64_t mant = rnd();
	uint16_t se;
	switch (below(8)) {
	case 0: /* raw */
		se = (uint16_t)rnd();
		break;
	case 1: /* special exponent, any mantissa */
		se = exps[5 + below(5)] | (below(2) ? 0x8000 : 0);
		if (below(2))
			mant = below(2) ? 1ull << 63 : 0;
		break;
	default: /* normal number near 1 or a random exponent near the middle */
		mant |= 1ull << 63;
		se = (uint16_t)((below(2) ? exps[below(5)] : 0x3fff - 40 + below(80)) | (below(2) ? 0x8000 : 0));
		if (below(4) == 0)
			mant &= ~0ull << 40; /* short mantissa: exact in double and integers */
		break;
	}
	memcpy(out, &mant, 8);
	memcpy(out + 8, &se, 2);
}

/* x87 and MXCSR state: all precision and rounding controls, exceptions mostly
 * masked (an unmasked one ends the case in #MF at the next waiting x87
 * instruction, on both CPUs), any TOP, tags and condition codes; no
 * exception pending at the start. */
static void random_x87(struct dt_state *s, bool sse)
{
	if (!sse) {
		memset(s->st, 0, sizeof(s->st));
		s->fcw = 0x37f;
		s->fsw = 0;
		s->ftw = 0;
		s->mxcsr = 0x1f80;
		return;
	}
	s->fcw = (uint16_t)(0x40 | (rnd() & 0xf00) | 0x3f);
	if (below(8) == 0)
		s->fcw &= (uint16_t)~(1u << below(6));
	s->fsw = (uint16_t)((rnd() & 0x4700) | (below(8) << 11));
	s->fsw |= (uint16_t)(rnd() & 0x3f & s->fcw); /* sticky flags of masked exceptions */
	unsigned ntags = below(9);
	unsigned top = (s->fsw >> 11) & 7;
	s->ftw = 0;
	for (unsigned i = 0; i < ntags; i++) /* ST(0)..ST(ntags-1) in use, mostly */
		s->ftw |= (uint8_t)(1u << ((top + i) & 7));
	if (below(4) == 0)
		s->ftw = (uint8_t)rnd();
	for (unsigned i = 0; i < 8; i++)
		random_f80(s->st[i]);
	/* MXCSR: half the time round-to-nearest, else any rounding; FTZ and
	 * DAZ a quarter of the time each; some flags; a quarter of the time
	 * some exceptions unmasked (an SSE instruction raising one ends the
	 * case in #XM, on both CPUs) */
	s->mxcsr = 0x1f80 | (below(2) ? (uint32_t)below(4) << 13 : 0) | (below(4) ? 0 : 0x8000u) | (below(4) ? 0 : 0x40u);
	if (below(4) == 0)
		s->mxcsr |= (uint32_t)rnd() & 0x3f;
	if (below(4) == 0)
		s->mxcsr &= ~((uint32_t)rnd() & 0x3f) << 7;
}

/* Data, stack and XMM contents, drawn from the generator's stream: a
 * regression case records the stream's state before this (fill_seed) instead
 * of 12 KiB of bytes, so this must keep drawing the same way. */
static void random_memory(struct dt_state *s, bool sse)
{
	for (unsigned i = 0; i < DATA_SIZE; i += 8) {
		uint64_t v = interesting();
		memcpy(s->data + i, &v, 8);
	}
	for (unsigned i = 0; i < STACK_SIZE; i += 8) {
		uint64_t v = rnd();
		memcpy(s->stack + i, &v, 8);
	}
	if (sse)
		for (int i = 0; i < 16; i++) {
			static const double specials[] = {0.0, -0.0, 1.0, -1.5, 3.25e10, 1e-310, 1.0 / 0.0, 2.5};
			double d = specials[below(8)];
			uint64_t bits;
			memcpy(&bits, &d, 8);
			s->xmm[i][0] = below(2) ? interesting() : bits;
			s->xmm[i][1] = below(2) ? interesting() : bits;
		}
	random_x87(s, sse);
}

void gen_fill(struct dt_state *s, bool sse, uint64_t fill_seed)
{
	uint64_t saved = rng_state;
	rng_state = fill_seed;
	random_memory(s, sse);
	rng_state = saved;
}

static void random_state(struct dt_case *tc, bool sse)
{
	struct dt_state *s = &tc->init;
	for (int i = 0; i < 16; i++)
		s->r[i] = interesting();
	s->r[4] = STACK_TOP;
	s->r[5] = STACK_TOP - 64 - below(64);
	s->r[14] = below(64);
	s->r[15] = DATA_ADDR + 0x1000;
	s->rflags = rnd() & DT_ARITH;
	tc->fill_seed = rng_state;
	tc->sse = sse;
	random_memory(s, sse);
}

/* Which NaN DPPS and DPPD leave in a lane depends on the CPU model (see
 * same_xmm in difftest.c, which lets a NaN lane match any NaN): nothing may
 * consume that lane after them, so they end their case. */
static bool ends_case(const struct form *f)
{
	return f->oplen == 3 && f->op[0] == 0x0f && f->op[1] == 0x3a && (f->op[2] == 0x40 || f->op[2] == 0x41);
}

void gen_case(struct dt_case *tc, bool sse)
{
	if (!nforms)
		build_forms();
	memset(tc, 0, sizeof(*tc));
	random_state(tc, sse);
	struct out o = {.p = tc->code};
	uint32_t undef = 0;
	unsigned count = 1 + below(4);
	for (unsigned k = 0; k < count; k++) {
		unsigned idx;
		do
			idx = below(nforms);
		while (forms[idx].sse != sse && below(8) != 0);
		const struct form *f = &forms[idx];
		unsigned size = pick_size(f);
		if (f->rd & undef) { /* define the flags it reads: CMP r, r */
			put(&o, 0x48);
			put(&o, 0x39);
			put(&o, 0xc0 | (free_reg() & 7) << 3 | (free_reg() & 7));
			tc->ninsns++;
			undef = 0;
		}
		if (f->special == SP_STRING) { /* RSI, RDI in the data region, a small RCX */
			emit_mov_imm(&o, 6, (int32_t)(DATA_ADDR + 0x400 + below(0x1000)));
			emit_mov_imm(&o, 7, (int32_t)(DATA_ADDR + 0x400 + below(0x1000)));
			emit_mov_imm(&o, 1, (int32_t)below(24));
			tc->ninsns += 3;
		}
		if (f->special == SP_JCC8 || f->special == SP_JCC32) {
			for (unsigned i = 0; i < f->oplen; i++)
				put(&o, f->op[i]);
			put_n(&o, 3, f->special == SP_JCC8 ? 1 : 4);
			put(&o, 0x48); /* INC RAX, skipped when taken */
			put(&o, 0xff);
			put(&o, 0xc0);
			tc->ninsns += 2;
		} else {
			emit_form(&o, f, size);
			tc->ninsns++;
		}
		undef = (undef & ~(uint32_t)f->wr) | f->un;
		if (tc->nforms < MAX_FORMS_PER_CASE)
			tc->forms[tc->nforms++] = idx;
		if (ends_case(f))
			break;
	}
	put(&o, 0xcc); /* INT3 */
	tc->code_len = o.n;
	tc->undef_flags = undef;
}
