/* x87.c - the x87 FPU: every D8-DF instruction, FSAVE/FRSTOR/FNSTENV/FLDENV
 * in their four formats, FXSAVE/FXRSTOR (x87 + SSE state), and #MF.
 *
 * Implementation: the host's own x87 runs the guest's instruction.  The
 * host is x86-64 (Linux or MinGW), and its x87 is the reference the guest
 * expects: running the same opcode on the same 80-bit registers, with the
 * guest's control word (precision, rounding, masks) loaded, gives results,
 * status flags (C0-C3, exceptions, TOP) and tags that are bit-exact,
 * transcendental precision included, for a few lines of code; a soft-float
 * model would be thousands of lines and still need checking against this
 * same hardware.  A portable soft-float fallback can replace x87_host_run()
 * for other hosts; until then they get #UD and CPUID leaves FPU out.
 *
 * The guest's registers, control/status words and tags stay loaded in the
 * host FPU across consecutive x87 instructions ("live"): the first one
 * loads the image (FRSTOR), each runs one instruction in a stub and stores
 * the status word, and softcpu_x87_flush() stores the image back (FNSAVE,
 * which also re-initialises the host FPU) when anything else needs it:
 * FXSAVE/FXRSTOR, FNSAVE/FSTENV and the other control forms, MMX, the
 * state accessors, a reset, and every return from softcpu_run() (so the
 * host FPU holds guest state only while this thread runs guest code; the
 * VMM's own C code, board callbacks included, has no x87 instruction:
 * long double is not used).  An FRSTOR and an FNSAVE around every
 * instruction held bench/softcpu's x87 loop to 8 MIPS, against ~50 now
 * (docs/PERFORMANCE.md).  A stub also hands back the host RFLAGS
 * (FCOMI) after loading the guest's CF/PF/ZF first (FCMOVcc).
 * A host x87 exception is taken only by the next waiting x87 instruction:
 * when an instruction leaves one pending (ES in the status word) the image
 * is flushed at once, so the host never runs a waiting instruction with an
 * exception pending, and a guest image with one never reaches FRSTOR: the
 * guest gets #MF first (x87_check_pending), exactly as its own waiting
 * instruction would deliver it. */
#include "internal.h"

/* ---- FPU state checks ---- */

static void check_x87(struct softcpu *c)
{
	if (c->cr0 & (CR0_EM | CR0_TS))
		softcpu_raise(c, EXC_NM, 0, false);
}

#define FSW_ES 0x0080u
#define FSW_TOP_SHIFT 11

/* A waiting instruction finds an exception pending: #MF.  With CR0.NE
 * clear a PC would signal FERR# to the PIC instead; Linux on x86-64 always
 * sets NE, and #MF is what it expects either way. */
static void x87_check_pending(struct softcpu *c)
{
	if (c->x87.live) /* never with an exception pending */
		return;
	uint16_t fsw = c->x87.img.fsw, fcw = c->x87.img.fcw;
	if ((fsw & FSW_ES) || (fsw & ~fcw & 0x3f))
		softcpu_raise(c, EXC_MF, 0, false);
}

void softcpu_x87_wait(struct softcpu *c)
{
	x87_check_pending(c);
}

#if defined(__x86_64__)
#define X87_HOST 1
/* 512 register-form stubs (D8+op>>6, C0+op&63) then 64 memory-form stubs
 * (D8+i>>3, ModRM /i with [RSI]), 16 bytes apart, on the live state.  In:
 * RDI = where to store the status word, RSI = memory operand, RDX = RFLAGS
 * to load (rows DA and DB: FCMOVcc).  Out: RAX = RFLAGS (rows DB and DF:
 * FCOMI and friends). */
/* A naked function places them in the code section on ELF and PE alike. */
__attribute__((naked, used)) static void x87_stub_table(void)
{
	__asm__(".balign 16\n"
	"minivm_x87_stubs:\n"
	".set x87_i, 0\n"
	".rept 576\n"
	".if (x87_i >> 6) == 2 || (x87_i >> 6) == 3\n"
	"push %rdx\n"
	"popfq\n"
	".endif\n"
	".if x87_i < 512\n"
	".byte 0xd8 + (x87_i >> 6), 0xc0 + (x87_i & 63)\n"
	".else\n"
	".byte 0xd8 + ((x87_i - 512) >> 3), 0x06 + (((x87_i - 512) & 7) << 3)\n"
	".endif\n"
	"fnstsw (%rdi)\n"
	".if (x87_i >> 6) == 3 || (x87_i >> 6) == 7\n"
	"pushfq\n"
	"pop %rax\n"
	".endif\n"
	"ret\n"
	".balign 16, 0xcc\n"
	".set x87_i, x87_i + 1\n"
	".endr\n");
}
extern const uint8_t minivm_x87_stubs[];

/* Run stub `index` on the live state; returns the host's RFLAGS after it
 * (rows DB and DF only), *fsw the status word. */
static uint64_t x87_host_run(uint16_t *fsw, void *mem, uint64_t rflags, unsigned index)
{
	uint64_t out;
	void *img = fsw;
	const void *stub = minivm_x87_stubs + 16 * index;
	/* The call pushes below RSP: step over the SysV red zone first. */
	__asm__ volatile("sub $128, %%rsp\n\t"
			 "call *%[stub]\n\t"
			 "add $128, %%rsp"
			 : "=a"(out), "+D"(img), "+S"(mem), "+d"(rflags)
			 : [stub] "r"(stub)
			 : "memory", "cc");
	return out;
}
#else
#define X87_HOST 0
#endif

bool softcpu_x87_present(void)
{
	return X87_HOST;
}

#if X87_HOST
/* Load the guest's state into the host FPU, if it is not there. */
static void x87_load(struct softcpu *c)
{
	if (!c->x87.live) {
		__asm__ volatile("frstor %0" : : "m"(c->x87.img));
		c->x87.live = true;
	}
}
#endif

void softcpu_x87_flush(struct softcpu *c)
{
#if X87_HOST
	if (!c->x87.live)
		return;
	/* FNSAVE stores the host's own instruction and operand pointers: keep
	 * the guest's (note_pointers). */
	uint16_t fcs = c->x87.img.fcs, fds = c->x87.img.fds;
	__asm__ volatile("fnsave %0" : "=m"(c->x87.img));
	c->x87.img.res0 = c->x87.img.res1 = c->x87.img.res2 = c->x87.img.res3 = 0;
	c->x87.img.fcs = fcs;
	c->x87.img.fds = fds;
	c->x87.live = false;
#else
	(void)c;
#endif
}

/* ---- tags ---- */

/* The full tag (0 valid, 1 zero, 2 special, 3 empty) that the contents of
 * a non-empty register imply (FXRSTOR rebuilds the tag word this way). */
static unsigned tag_of(const uint8_t reg[10])
{
	uint64_t mant;
	memcpy(&mant, reg, 8);
	unsigned exp = (reg[8] | (unsigned)reg[9] << 8) & 0x7fff;
	if (exp == 0x7fff)
		return 2;
	if (exp == 0)
		return mant ? 2 : 1;
	return (mant >> 63) ? 0 : 2;
}

static unsigned top_of(const struct softcpu *c)
{
	return (c->x87.img.fsw >> FSW_TOP_SHIFT) & 7;
}

static uint8_t abridged_tags(const struct softcpu *c)
{
	uint8_t t = 0;
	for (unsigned i = 0; i < 8; i++)
		if (((c->x87.img.ftw >> (2 * i)) & 3) != 3)
			t |= (uint8_t)(1u << i);
	return t;
}

/* Tag word from abridged tags: physical register p is ST((p - TOP) & 7). */
static uint16_t full_tags(const struct softcpu *c, uint8_t abridged)
{
	uint16_t t = 0;
	unsigned top = top_of(c);
	for (unsigned p = 0; p < 8; p++) {
		unsigned tag = (abridged >> p) & 1 ? tag_of(c->x87.img.st[(p - top) & 7]) : 3;
		t |= (uint16_t)(tag << (2 * p));
	}
	return t;
}

void softcpu_get_x87(struct softcpu *c, struct softcpu_fxstate *out)
{
	softcpu_x87_flush(c);
	out->fcw = c->x87.img.fcw;
	out->fsw = c->x87.img.fsw;
	out->ftw = abridged_tags(c);
	memcpy(out->st, c->x87.img.st, sizeof(out->st));
}

void softcpu_set_x87(struct softcpu *c, const struct softcpu_fxstate *in)
{
	softcpu_x87_flush(c);
	c->x87.img.fcw = in->fcw;
	c->x87.img.fsw = in->fsw;
	memcpy(c->x87.img.st, in->st, sizeof(in->st));
	c->x87.img.ftw = full_tags(c, in->ftw);
}

/* Make `top` the new TOP: the physical registers keep their contents, so
 * the stack-order image rotates. */
static void set_top(struct softcpu *c, unsigned top)
{
	uint8_t phys[8][10];
	unsigned old = top_of(c);
	for (unsigned i = 0; i < 8; i++)
		memcpy(phys[(old + i) & 7], c->x87.img.st[i], 10);
	for (unsigned i = 0; i < 8; i++)
		memcpy(c->x87.img.st[i], phys[(top + i) & 7], 10);
	c->x87.img.fsw = (uint16_t)((c->x87.img.fsw & ~(7u << FSW_TOP_SHIFT)) | top << FSW_TOP_SHIFT);
}

/* FNINIT (and the end of FNSAVE): the registers keep their contents. */
static void fninit(struct softcpu *c)
{
	set_top(c, 0);
	c->x87.img.fcw = 0x37f;
	c->x87.img.fsw = 0;
	c->x87.img.ftw = 0xffff;
	c->x87.img.fcs = c->x87.img.fds = 0;
	c->x87.fip = c->x87.fdp = 0;
	c->x87.fop = 0;
}

/* What loading a control and status word keeps: reserved control bits read
 * as 0 (bit 6 as 1); ES and B say whether an unmasked exception is flagged. */
static void load_control_status(struct softcpu *c, uint16_t fcw, uint16_t fsw)
{
	fcw = (uint16_t)((fcw & 0x1f3f) | 0x40);
	fsw &= 0x7f7f;
	if (fsw & ~fcw & 0x3f)
		fsw |= 0x8080;
	c->x87.img.fcw = fcw;
	c->x87.img.fsw = fsw;
}

/* ---- environment (FNSTENV/FLDENV, first part of FNSAVE/FRSTOR) ---- */

/* 14 bytes with a 16-bit operand size, else 28; real-mode (and VM86)
 * layouts keep linear 20/32-bit pointers instead of selector:offset. */
static unsigned env_size(const struct insn *in)
{
	return in->osz == 2 ? 14 : 28;
}

static bool env_real(const struct softcpu *c)
{
	return !(c->cr0 & CR0_PE) || (c->rflags & F_VM);
}

static void store_env(struct softcpu *c, const struct insn *in, uint64_t lin)
{
	const struct softcpu_x87 *x = &c->x87;
	unsigned w = in->osz == 2 ? 2 : 4;
	uint32_t v[7] = {x->img.fcw, x->img.fsw, full_tags(c, abridged_tags(c)), (uint32_t)x->fip, x->img.fcs | (uint32_t)x->fop << 16,
			 (uint32_t)x->fdp, x->img.fds};
	if (env_real(c)) {
		uint32_t ip = (uint32_t)x->fip, dp = (uint32_t)x->fdp;
		v[3] = ip & 0xffff;
		v[4] = (w == 2 ? (ip >> 16 & 0xf) : ip >> 16) << 12 | x->fop;
		v[5] = dp & 0xffff;
		v[6] = (w == 2 ? (dp >> 16 & 0xf) : dp >> 16) << 12;
	} else if (w == 2) {
		v[4] = x->img.fcs;
	}
	for (unsigned i = 0; i < 7; i++) /* reserved halves of 32-bit slots read as 0xffff on Intel */
		mem_write(c, lin + w * i, w, w == 4 && i < 3 ? v[i] | 0xffff0000u : v[i]);
}

static void load_env(struct softcpu *c, const struct insn *in, uint64_t lin)
{
	unsigned w = in->osz == 2 ? 2 : 4;
	uint32_t v[7];
	for (unsigned i = 0; i < 7; i++)
		v[i] = (uint32_t)mem_read(c, lin + w * i, w);
	struct softcpu_x87 *x = &c->x87;
	set_top(c, (v[1] >> FSW_TOP_SHIFT) & 7);
	load_control_status(c, (uint16_t)v[0], (uint16_t)v[1]);
	x->img.ftw = (uint16_t)v[2];
	if (env_real(c)) {
		unsigned hi = w == 2 ? 0xf : 0xfffff;
		x->fip = (v[3] & 0xffff) | (uint64_t)((v[4] >> 12) & hi) << 16;
		x->fop = v[4] & 0x7ff;
		x->fdp = (v[5] & 0xffff) | (uint64_t)((v[6] >> 12) & hi) << 16;
		x->img.fcs = x->img.fds = 0;
	} else {
		x->fip = v[3];
		x->img.fcs = (uint16_t)v[4];
		x->fop = w == 4 ? (v[4] >> 16) & 0x7ff : 0;
		x->fdp = v[5];
		x->img.fds = (uint16_t)v[6];
	}
}

/* ---- FXSAVE / FXRSTOR (512 bytes: x87, MXCSR, XMM) ---- */

void softcpu_fxsave(struct softcpu *c, const struct insn *in, uint64_t lin)
{
	check_x87(c);
	if (lin & 15)
		raise_gp(c, 0);
	mmu_probe_write(c, lin, 512);
	softcpu_x87_flush(c);
	const struct softcpu_x87 *x = &c->x87;
	mem_write(c, lin + 0, 2, x->img.fcw);
	mem_write(c, lin + 2, 2, x->img.fsw);
	mem_write(c, lin + 4, 1, abridged_tags(c));
	mem_write(c, lin + 5, 1, 0);
	mem_write(c, lin + 6, 2, x->fop);
	if (in->rex & 8) { /* FXSAVE64: 64-bit pointers */
		mem_write(c, lin + 8, 8, x->fip);
		mem_write(c, lin + 16, 8, x->fdp);
	} else {
		mem_write(c, lin + 8, 8, (uint32_t)x->fip | (uint64_t)x->img.fcs << 32);
		mem_write(c, lin + 16, 8, (uint32_t)x->fdp | (uint64_t)x->img.fds << 32);
	}
	mem_write(c, lin + 24, 4, c->mxcsr);
	mem_write(c, lin + 28, 4, SOFTCPU_MXCSR_MASK);
	for (unsigned i = 0; i < 8; i++) {
		uint64_t lo, hi = 0;
		memcpy(&lo, x->img.st[i], 8);
		memcpy(&hi, x->img.st[i] + 8, 2);
		mem_write(c, lin + 32 + 16 * i, 8, lo);
		mem_write(c, lin + 40 + 16 * i, 8, hi);
	}
	unsigned nxmm = c->long64 ? 16 : 8;
	for (unsigned i = 0; i < nxmm; i++) {
		mem_write(c, lin + 160 + 16 * i, 8, c->xmm[i].q[0]);
		mem_write(c, lin + 168 + 16 * i, 8, c->xmm[i].q[1]);
	}
}

void softcpu_fxrstor(struct softcpu *c, const struct insn *in, uint64_t lin)
{
	check_x87(c);
	if (lin & 15)
		raise_gp(c, 0);
	uint32_t mxcsr = (uint32_t)mem_read(c, lin + 24, 4);
	if (mxcsr & ~SOFTCPU_MXCSR_MASK)
		raise_gp(c, 0);
	softcpu_x87_flush(c);
	struct softcpu_x87 x = c->x87;
	x.img.fcw = (uint16_t)mem_read(c, lin, 2);
	x.img.fsw = (uint16_t)mem_read(c, lin + 2, 2);
	uint8_t abridged = (uint8_t)mem_read(c, lin + 4, 1);
	x.fop = (uint16_t)mem_read(c, lin + 6, 2) & 0x7ff;
	uint64_t ip = mem_read(c, lin + 8, 8), dp = mem_read(c, lin + 16, 8);
	if (in->rex & 8) {
		x.fip = ip;
		x.fdp = dp;
	} else {
		x.fip = (uint32_t)ip;
		x.img.fcs = (uint16_t)(ip >> 32);
		x.fdp = (uint32_t)dp;
		x.img.fds = (uint16_t)(dp >> 32);
	}
	for (unsigned i = 0; i < 8; i++) {
		uint64_t lo = mem_read(c, lin + 32 + 16 * i, 8), hi = mem_read(c, lin + 40 + 16 * i, 2);
		memcpy(x.img.st[i], &lo, 8);
		memcpy(x.img.st[i] + 8, &hi, 2);
	}
	unsigned nxmm = c->long64 ? 16 : 8;
	struct xmm_reg xr[16];
	for (unsigned i = 0; i < nxmm; i++) {
		xr[i].q[0] = mem_read(c, lin + 160 + 16 * i, 8);
		xr[i].q[1] = mem_read(c, lin + 168 + 16 * i, 8);
	}
	c->x87 = x;
	c->x87.img.ftw = full_tags(c, abridged);
	c->mxcsr = mxcsr;
	memcpy(c->xmm, xr, nxmm * sizeof(xr[0]));
}

/* ---- the memory forms ---- */

enum x87_mem_kind {
	XM_UD,    /* no such memory form */
	XM_READ,  /* loads / arithmetic with a memory source */
	XM_WRITE, /* stores */
	XM_LDENV, XM_STENV, XM_RSTOR, XM_SAVE,
	XM_LDCW, XM_STCW, XM_STSW,
};

/* [opcode - D8][ModRM.reg]: what the memory operand is, and its size. */
static const struct {
	uint8_t kind, size;
} x87_mem_forms[8][8] = {
	/* D8 m32real arithmetic */
	{{XM_READ, 4}, {XM_READ, 4}, {XM_READ, 4}, {XM_READ, 4},
	 {XM_READ, 4}, {XM_READ, 4}, {XM_READ, 4}, {XM_READ, 4}},
	/* D9 FLD m32, -, FST m32, FSTP m32, FLDENV, FLDCW, FNSTENV, FNSTCW */
	{{XM_READ, 4}, {XM_UD, 0}, {XM_WRITE, 4}, {XM_WRITE, 4},
	 {XM_LDENV, 0}, {XM_LDCW, 2}, {XM_STENV, 0}, {XM_STCW, 2}},
	/* DA m32int arithmetic */
	{{XM_READ, 4}, {XM_READ, 4}, {XM_READ, 4}, {XM_READ, 4},
	 {XM_READ, 4}, {XM_READ, 4}, {XM_READ, 4}, {XM_READ, 4}},
	/* DB FILD m32, FISTTP m32, FIST m32, FISTP m32, -, FLD m80, -, FSTP m80 */
	{{XM_READ, 4}, {XM_WRITE, 4}, {XM_WRITE, 4}, {XM_WRITE, 4},
	 {XM_UD, 0}, {XM_READ, 10}, {XM_UD, 0}, {XM_WRITE, 10}},
	/* DC m64real arithmetic */
	{{XM_READ, 8}, {XM_READ, 8}, {XM_READ, 8}, {XM_READ, 8},
	 {XM_READ, 8}, {XM_READ, 8}, {XM_READ, 8}, {XM_READ, 8}},
	/* DD FLD m64, FISTTP m64, FST m64, FSTP m64, FRSTOR, -, FNSAVE, FNSTSW */
	{{XM_READ, 8}, {XM_WRITE, 8}, {XM_WRITE, 8}, {XM_WRITE, 8},
	 {XM_RSTOR, 0}, {XM_UD, 0}, {XM_SAVE, 0}, {XM_STSW, 2}},
	/* DE m16int arithmetic */
	{{XM_READ, 2}, {XM_READ, 2}, {XM_READ, 2}, {XM_READ, 2},
	 {XM_READ, 2}, {XM_READ, 2}, {XM_READ, 2}, {XM_READ, 2}},
	/* DF FILD m16, FISTTP m16, FIST m16, FISTP m16, FBLD, FILD m64, FBSTP, FISTP m64 */
	{{XM_READ, 2}, {XM_WRITE, 2}, {XM_WRITE, 2}, {XM_WRITE, 2},
	 {XM_READ, 10}, {XM_READ, 8}, {XM_WRITE, 10}, {XM_WRITE, 8}},
};

static void read_bytes(struct softcpu *c, uint64_t lin, uint8_t *buf, unsigned size, bool rmw)
{
	for (unsigned done = 0; done < size;) {
		unsigned n = size - done >= 8 ? 8 : size - done >= 4 ? 4 : 2;
		uint64_t v = rmw ? mem_read_rmw(c, lin + done, n) : mem_read(c, lin + done, n);
		memcpy(buf + done, &v, n);
		done += n;
	}
}

static void write_bytes(struct softcpu *c, uint64_t lin, const uint8_t *buf, unsigned size)
{
	for (unsigned done = 0; done < size;) {
		unsigned n = size - done >= 8 ? 8 : size - done >= 4 ? 4 : 2;
		uint64_t v = 0;
		memcpy(&v, buf + done, n);
		mem_write(c, lin + done, n, v);
		done += n;
	}
}

/* After a non-control instruction: the pointers FSTENV/FXSAVE report. */
static void note_pointers(struct softcpu *c, const struct insn *in, uint64_t operand)
{
	c->x87.fip = c->rip;
	c->x87.img.fcs = c->seg[S_CS].sel;
	c->x87.fop = (uint16_t)(((in->op & 7) << 8) | in->mod << 6 | (in->reg & 7) << 3 | (in->rm & 7));
	if (in->mod != 3) {
		c->x87.fdp = operand;
		c->x87.img.fds = c->seg[in->seg].sel;
	}
}

/* Run one instruction on the host; memory (may be NULL) is its operand. */
static void run_on_host(struct softcpu *c, const struct insn *in, unsigned stub, uint8_t *memory)
{
#if X87_HOST
	flags_materialize(c);
	uint64_t in_flags = 0x2 | (c->rflags & (F_CF | F_PF | F_ZF));
	uint16_t fsw;
	x87_load(c);
	uint64_t out_flags = x87_host_run(&fsw, memory, in_flags, stub);
	if (fsw & FSW_ES)
		softcpu_x87_flush(c);
	unsigned op = in->op, r = in->reg & 7;
	/* FCOMI FUCOMI FCOMIP FUCOMIP write ZF PF CF and clear OF SF AF */
	if (in->mod == 3 && (op == 0xdb || op == 0xdf) && (r == 5 || r == 6))
		c->rflags = (c->rflags & ~(uint64_t)F_ARITH) | (out_flags & (F_CF | F_PF | F_ZF));
#else
	(void)stub;
	(void)memory;
	softcpu_unimplemented(c, in);
#endif
}

static void exec_memory_form(struct softcpu *c, const struct insn *in)
{
	unsigned r = in->reg & 7, row = in->op - 0xd8;
	uint64_t off = ea_offset(c, in), lin = linear(c, in->seg, off);
	unsigned kind = x87_mem_forms[row][r].kind;
	if (kind != XM_READ && kind != XM_WRITE && kind != XM_LDCW)
		softcpu_x87_flush(c);
	switch (kind) {
	case XM_STCW: /* the FN* forms do not wait */
		mem_write(c, lin, 2, c->x87.img.fcw);
		return;
	case XM_STSW:
		mem_write(c, lin, 2, c->x87.img.fsw);
		return;
	case XM_STENV:
		mmu_probe_write(c, lin, env_size(in));
		store_env(c, in, lin);
		c->x87.img.fcw |= 0x3f; /* all exceptions masked */
		return;
	case XM_SAVE: {
		mmu_probe_write(c, lin, env_size(in) + 80);
		store_env(c, in, lin);
		write_bytes(c, lin + env_size(in), &c->x87.img.st[0][0], 80);
		fninit(c);
		return;
	}
	case XM_LDENV: case XM_RSTOR: {
		uint8_t regs[80];
		x87_check_pending(c);
		if (x87_mem_forms[row][r].kind == XM_RSTOR)
			read_bytes(c, lin + env_size(in), regs, 80, false);
		load_env(c, in, lin); /* reads everything before changing c->x87 */
		if (x87_mem_forms[row][r].kind == XM_RSTOR)
			memcpy(c->x87.img.st, regs, 80);
		return;
	}
	case XM_LDCW: {
		x87_check_pending(c);
		uint8_t buf[2];
		read_bytes(c, lin, buf, 2, false);
		run_on_host(c, in, 512 + row * 8 + r, buf);
		return;
	}
	case XM_READ: case XM_WRITE: {
		unsigned size = x87_mem_forms[row][r].size;
		uint8_t buf[10];
		x87_check_pending(c);
		/* A store that an unmasked exception suppresses leaves memory as
		 * it was: run it on the old contents and always write back. */
		bool write = x87_mem_forms[row][r].kind == XM_WRITE;
		read_bytes(c, lin, buf, size, write);
		run_on_host(c, in, 512 + row * 8 + r, buf);
		if (write)
			write_bytes(c, lin, buf, size);
		note_pointers(c, in, off);
		return;
	}
	default:
		raise_ud(c);
	}
}

void softcpu_exec_x87(struct softcpu *c, const struct insn *in)
{
	check_x87(c);
	if (in->mod != 3) {
		exec_memory_form(c, in);
		return;
	}
	unsigned row = in->op - 0xd8, modrm = (in->reg & 7) << 3 | (in->rm & 7);
	switch (row << 8 | 0xc0 | modrm) {
	case 0x3e3: case 0x3e2: case 0x7e0:
		softcpu_x87_flush(c);
		break;
	default:
		break;
	}
	switch (row << 8 | 0xc0 | modrm) {
	case 0x3e3: /* FNINIT */
		fninit(c);
		return;
	case 0x3e2: /* FNCLEX */
		c->x87.img.fsw &= 0x7f00;
		return;
	case 0x7e0: /* FNSTSW AX */
		c->r[R_AX] = (c->r[R_AX] & ~0xffffull) | c->x87.img.fsw;
		return;
	case 0x3e0: case 0x3e1: case 0x3e4: /* FNENI, FNDISI, FNSETPM: no-ops since the 387 */
		return;
	default:
		break;
	}
	/* Register forms the 387 left undefined raise #UD on the host too:
	 * only the documented ones reach the stub. */
	static const uint8_t valid_rows[8][8] = {
		/* [opcode][ModRM.reg]: bit rm set = an encoding the CPU executes
		 * (documented, or one of the 8087-era aliases such as FSTP1,
		 * FCOM2, FXCH4, FFREEP that Intel and AMD still run) */
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* D8 */
		{0xff, 0xff, 0x01, 0xff, 0x33, 0x7f, 0xff, 0xff}, /* D9: FNOP; FCHS FABS FTST FXAM; 7 constants */
		{0xff, 0xff, 0xff, 0xff, 0x00, 0x02, 0x00, 0x00}, /* DA: FCMOVcc, FUCOMPP */
		{0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00}, /* DB: FCMOVNcc, FUCOMI, FCOMI */
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* DC */
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00}, /* DD */
		{0xff, 0xff, 0xff, 0x02, 0xff, 0xff, 0xff, 0xff}, /* DE: FCOMPP */
		{0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00}, /* DF: FUCOMIP FCOMIP */
	};
	if (!(valid_rows[row][in->reg & 7] >> (in->rm & 7) & 1))
		raise_ud(c);
	x87_check_pending(c);
	run_on_host(c, in, row * 64 + modrm, NULL);
	note_pointers(c, in, 0);
}

/* ---- MMX: MM0-MM7 are the mantissas of the physical x87 registers ---- */

void softcpu_mmx_check(struct softcpu *c)
{
	softcpu_x87_flush(c);
	if (c->cr0 & CR0_EM)
		raise_ud(c);
	if (c->cr0 & CR0_TS)
		softcpu_raise(c, EXC_NM, 0, false);
	x87_check_pending(c);
}

/* Every MMX instruction leaves TOP = 0 and, but EMMS, all tags valid, so
 * ST(i) is MMi from then on. */
void softcpu_mmx_enter(struct softcpu *c)
{
	softcpu_x87_flush(c);
	set_top(c, 0);
	c->x87.img.ftw = 0;
}

uint64_t softcpu_mmx_get(struct softcpu *c, unsigned i)
{
	softcpu_x87_flush(c);
	uint64_t v;
	memcpy(&v, c->x87.img.st[(i - top_of(c)) & 7], 8);
	return v;
}

/* A write also sets the register's sign and exponent bits, as the CPU does. */
void softcpu_mmx_set(struct softcpu *c, unsigned i, uint64_t v)
{
	softcpu_x87_flush(c);
	uint8_t *reg = c->x87.img.st[(i - top_of(c)) & 7];
	memcpy(reg, &v, 8);
	reg[8] = reg[9] = 0xff;
}

/* EMMS also leaves TOP = 0 (as the host CPU does), then every tag empty. */
void softcpu_emms(struct softcpu *c)
{
	softcpu_mmx_check(c);
	set_top(c, 0);
	c->x87.img.ftw = 0xffff;
}
