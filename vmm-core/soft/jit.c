/* jit.c - translation of decoded blocks to host x86-64 code (see jit.h).
 *
 * Host code keeps the vCPU pointer in RBX and the vCPU's struct jit in R14.
 * Scratch: RAX, RCX, RDX, RSI (linear address), RDI (what a store writes);
 * R12 counts a loop's iterations down to its next run-loop checks.
 * - Registers: the guest registers a block's inline instructions use most
 *   (twice at least, once in a loop) live in RBP, R13, R15 and R8-R11 within
 *   the block: loaded at first use, stored back (when written) before
 *   anything reads struct softcpu's copy or can fault: block exits, calls
 *   of the interpreter, slow paths (which store on their out-of-line path
 *   only, and load R8-R11 again after their call).  RIP and the lazy flags
 *   stay in struct softcpu.  Operations of 32 and 64 bits on a cached
 *   register work on its host register in place.
 *
 * Per instruction, either inline code (moves, the ALU operations, INC/DEC,
 * NOT/NEG, MUL/IMUL, LEA, MOVZX/MOVSX, CWDE/CDQE, SETcc, CMOVcc, shifts
 * and ROL/ROR by an immediate (a call folds a rotate's flags in where they
 * are live), PUSH/POP, near branches, CALL, RET, and the SSE integer and
 * move forms of enum sse_kind) or a call of softcpu_exec() for that
 * instruction.
 * - SSE: guest XMM registers stay in struct softcpu; an inline form loads
 *   its operands into host XMM0/XMM1 (caller-saved on both ABIs), runs the
 *   guest's own opcode there and stores the result.  The interpreter's
 *   state check (CR0.EM/TS, CR4.OSFXSR) is made inline once per block and
 *   again after each interpreter call; a failed check, a misaligned
 *   aligned-form operand and a TLB miss hand the whole instruction to the
 *   interpreter, which raises what it must.
 * - Flags: inline operations record the interpreter's lazy flags (struct
 *   lazy_flags), unless the next flag writer in the block overwrites them
 *   before anything can read them or fault (dead-flag elimination; INC/DEC
 *   right after an operation that leaves CF in the host's flags take it
 *   from there and count as writers of all; ADC/SBB there take it too and
 *   do not read the lazy flags).  The host's own flags stay valid after
 *   the operation, so a following Jcc, SETcc, CMOVcc or ADC tests them
 *   directly.
 * - Memory: the TLB check is inline (index, tag compare covering the
 *   access's last byte, addend); misses, MMIO, code pages and page-crossing
 *   accesses call mmu.c's slow paths out of line.
 * - Precise faults: c->rip is brought to the instruction and the cached
 *   registers are stored before anything that can fault runs (out of line
 *   for slow paths), and flags are in memory then, so softcpu_raise()'s
 *   longjmp leaves the exact guest state.
 * - Exits: a store's slow path may set c->block_end (a code page was
 *   written): the block is left right after that instruction.  Direct
 *   branches within the block's page chain to the target's translation
 *   once the run loop has seen it, after checking for requests, device
 *   writes, code changes and the run limit; a branch back to the block's
 *   own start loops with the registers in place and makes the same checks
 *   every LOOP_CHECK_EVERY iterations (R12 counts down to them).
 *   RET, indirect JMP/CALL and targets in other pages look the target up
 *   inline in a direct-mapped cache (struct jit_target) before asking
 *   cpu.c (softcpu_jit_next). */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "internal.h"
#include "jit.h"
#include "jit_emit.h"
#include "simd.h"

#if defined(__x86_64__) || defined(_M_X64)
#define JIT_HOST 1
#else
#define JIT_HOST 0
#endif

#define JIT_SLICE_BYTES (32u << 20) /* code cache per vCPU */
#define JIT_SLICES 8                /* vCPUs that can translate at once */
#define JIT_BLOCK_MAX_BYTES 16384   /* a 64-instruction block takes < 4 KiB */
#define JIT_TARGETS 4096            /* the indirect-branch cache's entries */

/* Where a branch whose target is only known at run time (RET, an indirect
 * JMP or CALL, a target in another page) last went: translated code looks
 * it up inline before asking cpu.c.  tag: the linear address's low 48 bits
 * and the mode (never 0); ver: the TLB generation and the code epoch the
 * translation was found under.  A flush clears it. */
struct jit_target {
	uint64_t tag, ver;
	const uint8_t *code;
	uint64_t unused;
};
_Static_assert(sizeof(struct jit_target) == 32, "indexed by shifting");

struct jit {
	uint8_t *rw, *rx; /* this vCPU's slice of the pool, in both views */
	size_t used;
	uint32_t flush_gen;
	uint64_t translated, full_flushes; /* softcpu_jit_counts() */
	unsigned slice;
	uint8_t *exit_rw; /* the trampoline's exit (code returning to C) */
	void (*enter)(struct softcpu *c, const uint8_t *code, struct jit *j);
	/* Read by translated code: */
	uint32_t seen_code_epoch;  /* the machine's code_epoch when the run loop looked the block up */
	const _Atomic uint32_t *code_epoch;         /* the machine's */
	const _Atomic uint64_t *dirty_generation;   /* the machine's (it may change: set_dirty_log) */
	uint64_t *pending_slot;    /* a chain slot to fill with the next block's code (rw view) */
	/* What the pending slot's target must match to be chained (jit_run). */
	uint64_t pending_rip, pending_cs_base;
	uint32_t pending_tlb_gen, pending_flush_gen;
	uint8_t pending_mode;
	struct jit_target targets[JIT_TARGETS];
};

/* ---- the process's executable memory ---- */

static struct {
	pthread_mutex_t lock;
	struct host_exec mem;
	bool used[JIT_SLICES];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

bool softcpu_jit_supported(void)
{
	return JIT_HOST;
}

static int reserve_locked(char *err, size_t errlen)
{
	if (pool.mem.rw)
		return 0;
	return host_exec_alloc(&pool.mem, (size_t)JIT_SLICE_BYTES * JIT_SLICES, err, errlen);
}

int softcpu_jit_reserve(char *err, size_t errlen)
{
	if (!JIT_HOST) {
		snprintf(err, errlen, "the JIT translates to x86-64 only");
		return -1;
	}
	pthread_mutex_lock(&pool.lock);
	int r = reserve_locked(err, errlen);
	pthread_mutex_unlock(&pool.lock);
	return r;
}

/* ---- helpers translated code calls ---- */

static uint64_t jit_cond(struct softcpu *c, uint64_t cc)
{
	return cond_true(c, (unsigned)cc);
}

static uint64_t jit_flag_cf(struct softcpu *c)
{
	return flag_cf(c);
}

/* ROL/ROR whose flags are live: CF and OF as the host's rotate left them
 * (host_flags: its RFLAGS), the others as they were. */
static void jit_rot_flags(struct softcpu *c, uint64_t host_flags)
{
	update_flags(c, F_CF | F_OF, host_flags);
}

static void jit_write_slow(struct softcpu *c, uint64_t lin, uint64_t val, uint64_t size)
{
	mmu_write_slow(c, lin, (unsigned)size, val, false);
}

static uint64_t jit_read_slow(struct softcpu *c, uint64_t lin, uint64_t size)
{
	return mmu_read_slow(c, lin, (unsigned)size, false);
}



static uint8_t mode_of(const struct softcpu *c)
{
	return (uint8_t)(c->code_bits | (c->stack_bits == 32 ? 1 : 0) | (c->stack_bits == 16 ? 2 : 0) |
			 (c->cpl == 3 ? 4 : 0) | (c->long64 ? 0x80 : 0));
}

static uint64_t target_tag(uint64_t lin, uint8_t mode)
{
	return (lin & 0xffffffffffffull) | (uint64_t)mode << 48;
}

/* The miss path of the inline lookup: cpu.c's answer, remembered. */
static const uint8_t *jit_next_fill(struct softcpu *c)
{
	const uint8_t *code = softcpu_jit_next(c);
	struct jit *j = c->jit;
	if (code && atomic_load_explicit(&c->m->code_epoch, memory_order_acquire) == j->seen_code_epoch) {
		uint64_t lin = c->segbase[S_CS] + c->rip;
		if (!c->long64)
			lin = (uint32_t)lin;
		struct jit_target *tg = &j->targets[lin & (JIT_TARGETS - 1)];
		tg->tag = target_tag(lin, mode_of(c));
		tg->ver = c->tlb_gen | (uint64_t)j->seen_code_epoch << 32;
		tg->code = code;
	}
	return code;
}

/* ---- the trampoline: C -> translated code -> C ---- */

#ifdef _WIN32
static const uint8_t saved_regs[] = {HBX, HBP, HDI, HSI, H12, H13, H14, H15};
#else
static const uint8_t saved_regs[] = {HBX, HBP, H12, H13, H14, H15};
#endif
/* After the pushes RSP is 8 mod 16: this re-aligns it and leaves the 32
 * bytes of shadow space Windows callees may use. */
#define FRAME_BYTES 40

static void emit_trampoline(struct jit *j, struct emit *e)
{
	uint8_t *start = e->p;
	for (size_t i = 0; i < sizeof(saved_regs); i++)
		emit_push(e, saved_regs[i]);
	emit_alu_ri(e, 8, 5, HSP, FRAME_BYTES);
	emit_mov_rr(e, 8, HBX, HARG0);
	emit_mov_rr(e, 8, H14, HARG2);
	emit_jmp_reg(e, HARG1);
	j->exit_rw = e->p;
	emit_alu_ri(e, 8, 0, HSP, FRAME_BYTES);
	for (size_t i = sizeof(saved_regs); i-- > 0;)
		emit_pop(e, saved_regs[i]);
	emit_ret(e);
	j->enter = (void (*)(struct softcpu *, const uint8_t *, struct jit *))(void *)(j->rx + (start - j->rw));
}

static void reset_cache(struct jit *j)
{
	struct emit e = {.p = j->rw, .end = j->rw + 256};
	emit_trampoline(j, &e);
	j->used = (size_t)(e.p - j->rw + 15) & ~(size_t)15;
	j->flush_gen++;
	j->pending_slot = NULL;
	memset(j->targets, 0, sizeof(j->targets));
}

int softcpu_set_jit(struct softcpu *c, bool on)
{
	if (!on) {
		jit_release(c);
		return 0;
	}
	if (c->jit)
		return 0;
	char err[160];
	pthread_mutex_lock(&pool.lock);
	int slice = -1;
	if (JIT_HOST && reserve_locked(err, sizeof(err)) == 0) {
		for (int i = 0; i < JIT_SLICES && slice < 0; i++)
			if (!pool.used[i])
				slice = i;
		if (slice >= 0)
			pool.used[slice] = true;
	}
	pthread_mutex_unlock(&pool.lock);
	if (slice < 0)
		return -1;
	struct jit *j = calloc(1, sizeof(*j));
	if (!j) {
		pthread_mutex_lock(&pool.lock);
		pool.used[slice] = false;
		pthread_mutex_unlock(&pool.lock);
		return -1;
	}
	j->slice = (unsigned)slice;
	j->rw = pool.mem.rw + (size_t)slice * JIT_SLICE_BYTES;
	j->rx = pool.mem.rx + (size_t)slice * JIT_SLICE_BYTES;
	reset_cache(j);
	c->jit = j;
	return 0;
}

void jit_release(struct softcpu *c)
{
	struct jit *j = c->jit;
	if (!j)
		return;
	pthread_mutex_lock(&pool.lock);
	pool.used[j->slice] = false;
	pthread_mutex_unlock(&pool.lock);
	free(j);
	c->jit = NULL;
}

void softcpu_jit_counts(const struct softcpu *c, uint64_t *translated, uint64_t *full_flushes)
{
	*translated = c->jit ? c->jit->translated : 0;
	*full_flushes = c->jit ? c->jit->full_flushes : 0;
}

void jit_flush(struct softcpu *c)
{
	if (c->jit)
		reset_cache(c->jit);
}

/* ---- the translator ---- */

#define STORE_VAL HDI  /* the value a store writes: the TLB check leaves it alone */
#define LOOP_BUDGET H12 /* a loop's iterations left before it makes the run loop's checks */
#define LOOP_CHECK_EVERY 64

#define OFF(field) ((int32_t)offsetof(struct softcpu, field))
#define GREG(n) hmem_at(HBX, (int32_t)offsetof(struct softcpu, r) + 8 * (int32_t)(n))
#define MEM_C(field) hmem_at(HBX, OFF(field))
#define MEM_J(field) hmem_at(H14, (int32_t)offsetof(struct jit, field))

/* Host flags that hold the guest's after an inline operation. */
enum { HF_CF = 1, HF_ZF = 2, HF_SF = 4, HF_OF = 8, HF_PF = 16, HF_ALL = 31 };
static const uint8_t cc_needs[8] = {HF_OF, HF_CF, HF_ZF, HF_CF | HF_ZF, HF_SF, HF_PF, HF_SF | HF_OF,
				    HF_ZF | HF_SF | HF_OF};
#define LF_UNKNOWN 0xff

/* What an instruction does, decided before any code is emitted. */
enum kind {
	K_FALLBACK,
	K_ALU,        /* dst op= src (or CMP/TEST): see struct plan */
	K_INCDEC,
	K_SHIFT,
	K_SHIFT_CL,   /* by CL: nothing happens for a zero count */
	K_NOP,
	K_MOV,        /* dst = src */
	K_MOVX,       /* MOVZX/MOVSX/MOVSXD: dst(osz) = extend(src) */
	K_LEA,
	K_PUSH, K_POP,
	K_JCC, K_JMP, K_CALL, K_RET,
	K_JMP_INDIRECT, /* JMP r/m: the target is read, then looked up as RET's */
	K_ROT,        /* ROL/ROR by an immediate: a call folds its flags in where they are live */
	K_IMUL,       /* dst = dst (or imm) * src, truncated */
	K_MUL,        /* MUL/IMUL r/m: rDX:rAX = rAX * src (32 or 64 bits) */
	K_NOT, K_NEG,
	K_SETCC,      /* dst(byte) = cc */
	K_CMOV,       /* if (cc) dst = src; a 32-bit dst is zero-extended either way */
	K_SSE,        /* an SSE/SSE2/SSSE3 integer or move form: see enum sse_kind */
};

/* The SSE forms the host runs itself (K_SSE), on guest XMM registers that
 * stay in struct softcpu: each instruction loads them into host XMM0/XMM1
 * and stores its result back. */
enum sse_kind {
	SSE_OP,        /* xmm[reg] = op(xmm[reg], xmm[rm] or m128[, imm8]): the guest's opcode on the host */
	SSE_SHIFT_IMM, /* xmm[rm] = shift(xmm[rm], imm8): 66 0F 71-73 /digit */
	SSE_LOAD,      /* xmm[reg] = xmm[rm] or m128 */
	SSE_STORE,     /* xmm[rm] or m128 = xmm[reg] */
	SSE_MOVD_IN,   /* xmm[reg] = zero-extended r/m32 or r/m64 */
	SSE_MOVD_OUT,  /* r/m32 or r/m64 = low bits of xmm[reg] */
	SSE_MOVQ_IN,   /* xmm[reg] = zero-extended low quadword of xmm[rm] or m64 */
	SSE_MOVQ_OUT,  /* low quadword of xmm[rm] (zero-extended) or m64 = that of xmm[reg] */
	SSE_MOVMSK,    /* r32 = PMOVMSKB xmm[rm] */
};

/* Operands: a register, a memory operand (the insn's ModRM), an immediate. */
enum opnd { O_NONE, O_REG, O_MEM, O_IMM };

struct plan {
	uint8_t kind;
	uint8_t aop;          /* ALU op (0 ADD 1 OR 4 AND 5 SUB 6 XOR 7 CMP), shift op, DEC? */
	uint8_t size;         /* operand size */
	uint8_t src_size;     /* MOVX source size */
	bool sign;            /* MOVX: sign-extend */
	bool writeback;       /* ALU: not CMP/TEST */
	uint8_t dst, src;     /* enum opnd */
	uint8_t dst_reg, src_reg;
	uint64_t imm;
	/* flag effects */
	bool writes_all, reads, may_fault;
	/* K_SSE: the host's form of the operation (SSE_OP, SSE_SHIFT_IMM),
	 * whether a memory operand must be 16-byte aligned (#GP), and whether
	 * the SSE state check (CR0.EM, CR0.TS, CR4.OSFXSR) comes first: at the
	 * block's first SSE form and at the first after an interpreter call. */
	uint32_t host_op;
	uint8_t host_pfx;
	bool aligned, has_imm, state_check;
};

enum {
	STUB_LOAD,  /* the slow path of a load, which goes on inline */
	STUB_STORE, /* the same of a store */
	STUB_EXEC,  /* the interpreter runs the whole instruction (read-modify-write) */
};
struct stub {
	uint8_t type, size, len;
	uint8_t addr;          /* the host register holding the linear address */
	uint8_t dst;           /* STUB_LOAD: the host register the value goes to */
	int32_t rip_delta;     /* c->rip + rip_delta = the instruction's address */
	/* STUB_STORE that wrote a code page: the instruction's end, where the
	 * block is left: RIP = its address + exit_delta, RSP += sp_delta (PUSH
	 * and CALL move it after their store; CALL goes to its target). */
	int32_t exit_delta, sp_delta;
	uint16_t spill, reload; /* guest registers to store first / to load again after the call */
	uint8_t *branch, *branch2, *join; /* branch2: a second way in, or NULL */
	const struct insn *in; /* STUB_EXEC */
};
#define MAX_STUBS 160

struct tr {
	struct jit *j;
	struct emit e;
	bool long64, user;
	unsigned stack_bits;
	uint8_t mode;        /* mode_of() the block is translated for */
	uint64_t page_off;   /* offset of the block start in its page */
	uint32_t synced;     /* c->rip holds block start + synced */
	uint8_t hf;          /* HF_* valid in the host flags */
	uint8_t addr;        /* the host register emit_address left the address in */
	uint8_t lf_op;       /* what the lazy flags in memory hold, LF_UNKNOWN */
	/* Guest registers kept in host registers within the block: host_of[g]
	 * (HNONE: in struct softcpu only); loaded: the host register holds it;
	 * dirty: struct softcpu's copy is old; nocache: this instruction uses
	 * it as AH..BH, through memory. */
	uint8_t host_of[16];
	uint16_t loaded, dirty, nocache;
	/* A block branching back to its own start loops in translated code:
	 * loop_head follows the loads of every cached register (which it
	 * takes as loaded and dirty), NULL otherwise. */
	uint8_t *loop_head;
	uint16_t cached;
	struct stub stubs[MAX_STUBS];
	unsigned nstubs;
	bool overflow;
};

/* ADC and SBB need CF: inline when the destination is a register. */
static bool is_alu_op(unsigned aop, bool mem_dst)
{
	return !mem_dst || (aop != 2 && aop != 3);
}

static void plan_alu(struct plan *p, unsigned aop, unsigned size, uint8_t dst, uint8_t dst_reg, uint8_t src,
		     uint8_t src_reg, uint64_t imm)
{
	p->kind = K_ALU;
	p->aop = (uint8_t)aop;
	p->size = (uint8_t)size;
	p->dst = dst, p->dst_reg = dst_reg;
	p->src = src, p->src_reg = src_reg;
	p->imm = imm & size_mask(size);
	p->writeback = aop != 7;
	p->writes_all = true;
}

/* Does the host have SSSE3 (PSHUFB, PALIGNR...)?  Guests are offered it
 * whatever the host has: without it those stay with the interpreter. */
static bool host_ssse3(void)
{
#if JIT_HOST
	return __builtin_cpu_supports("ssse3");
#else
	return false;
#endif
}

/* Pure two-operand forms of the 0F map with the 66 prefix (and the SSE1
 * ones among them without it: UNPCKLPS/HPS, ANDPS..XORPS) whose host
 * instruction is the guest's own: the packed-integer arithmetic, compares,
 * logic, shifts by an XMM count, unpacks and packs, PMADDWD, PSADBW. */
static bool sse_host_op_66(unsigned op)
{
	return (op >= 0x60 && op <= 0x6d) || (op >= 0x74 && op <= 0x76) || op == 0x14 || op == 0x15 ||
	       (op >= 0x54 && op <= 0x57) || (op >= 0xd1 && op <= 0xd5) || (op >= 0xd8 && op <= 0xe5) ||
	       (op >= 0xe8 && op <= 0xef) || (op >= 0xf1 && op <= 0xf6) || (op >= 0xf8 && op <= 0xfe);
}

/* The SSE forms of plan_insn (K_SSE), as the interpreter reads them
 * (simd.h: sse_prefix, sse_opcode); anything else stays K_FALLBACK. */
static void plan_sse(const struct insn *in, struct plan *p)
{
	unsigned pfx = sse_prefix(in), op = sse_opcode(in);
	bool mem = in->mod != 3;
	static const uint8_t host_pfx[4] = {[P_NONE] = 0, [P_66] = 0x66, [P_F3] = 0xf3, [P_F2] = 0xf2};
	struct plan q = {.kind = K_SSE, .aop = SSE_OP, .size = 16, .aligned = true, .host_pfx = host_pfx[pfx],
			 .host_op = 0x0f00 | op};
	if (in->op == (OP_0F | 0x38) || in->op == (OP_0F | 0x3a)) {
		bool palignr = in->op == (OP_0F | 0x3a) && op == 0x0f;
		bool ssse3 = in->op == (OP_0F | 0x38) && (op <= 0x0b || (op >= 0x1c && op <= 0x1e));
		if (pfx != P_66 || !(ssse3 || palignr) || !host_ssse3())
			return;
		q.host_op = (in->op == (OP_0F | 0x38) ? 0x0f3800u : 0x0f3a00u) | op;
		q.has_imm = palignr;
	} else if (pfx == P_NONE) {
		switch (op) {
		case 0x10: q.aop = SSE_LOAD, q.aligned = false; break;  /* MOVUPS */
		case 0x28: q.aop = SSE_LOAD; break;                     /* MOVAPS */
		case 0x11: q.aop = SSE_STORE, q.aligned = false; break; /* MOVUPS */
		case 0x29: q.aop = SSE_STORE; break;                    /* MOVAPS */
		case 0x14: case 0x15: case 0x54: case 0x55: case 0x56: case 0x57: break;
		default: return;
		}
	} else if (pfx == P_66) {
		switch (op) {
		case 0x10: q.aop = SSE_LOAD, q.aligned = false; break;  /* MOVUPD */
		case 0x28: case 0x6f: q.aop = SSE_LOAD; break;          /* MOVAPD, MOVDQA */
		case 0x11: q.aop = SSE_STORE, q.aligned = false; break; /* MOVUPD */
		case 0x29: case 0x7f: q.aop = SSE_STORE; break;         /* MOVAPD, MOVDQA */
		case 0xe7: /* MOVNTDQ: memory only */
			if (!mem)
				return;
			q.aop = SSE_STORE;
			break;
		case 0x6e: q.aop = SSE_MOVD_IN; break;
		case 0x7e: q.aop = SSE_MOVD_OUT; break;
		case 0xd6: q.aop = SSE_MOVQ_OUT; break;
		case 0xd7: /* PMOVMSKB: register source only */
			if (mem)
				return;
			q.aop = SSE_MOVMSK;
			break;
		case 0x70: q.has_imm = true; break; /* PSHUFD */
		case 0x71: case 0x72: case 0x73: {  /* shifts by imm8: /2 SRL, /4 SRA, /6 SLL, 73 /3 SRLDQ, /7 SLLDQ */
			unsigned d = in->reg & 7;
			bool valid = op == 0x73 ? d == 2 || d == 3 || d == 6 || d == 7 : d == 2 || d == 4 || d == 6;
			if (mem || !valid)
				return;
			q.aop = SSE_SHIFT_IMM, q.has_imm = true;
			break;
		}
		default:
			if (!sse_host_op_66(op))
				return;
			break;
		}
	} else {
		switch (op) {
		case 0x6f: /* MOVDQU (F3) */
			if (pfx != P_F3)
				return;
			q.aop = SSE_LOAD, q.aligned = false;
			break;
		case 0x7f: /* MOVDQU (F3) */
			if (pfx != P_F3)
				return;
			q.aop = SSE_STORE, q.aligned = false;
			break;
		case 0x7e: /* MOVQ xmm, xmm/m64 (F3) */
			if (pfx != P_F3)
				return;
			q.aop = SSE_MOVQ_IN;
			break;
		case 0x70: q.has_imm = true; break; /* PSHUFHW (F3), PSHUFLW (F2) */
		default: return;
		}
	}
	/* General registers: MOVD/MOVQ's r/m and PMOVMSKB's destination. */
	unsigned gsize = (in->rex & 8) ? 8 : 4;
	if (q.aop == SSE_MOVD_IN && !mem)
		q.src = O_REG, q.src_reg = in->rm, q.size = (uint8_t)gsize;
	else if (q.aop == SSE_MOVD_OUT && !mem)
		q.dst = O_REG, q.dst_reg = in->rm, q.size = (uint8_t)gsize;
	else if (q.aop == SSE_MOVMSK)
		q.dst = O_REG, q.dst_reg = in->reg, q.size = 4;
	else if (mem && (q.aop == SSE_STORE || q.aop == SSE_MOVD_OUT || q.aop == SSE_MOVQ_OUT))
		q.dst = O_MEM;
	else if (mem)
		q.src = O_MEM;
	if (q.aop == SSE_MOVD_IN || q.aop == SSE_MOVD_OUT)
		q.size = (uint8_t)gsize;
	q.may_fault = mem; /* and the state check: translate() */
	*p = q;
}

/* Decide how instruction `in` is translated in this mode. */
static void plan_insn(const struct tr *t, const struct insn *in, struct plan *p)
{
	*p = (struct plan){.kind = K_FALLBACK, .reads = true, .may_fault = true};
	unsigned op = in->op, osz = in->osz, reg_op = in->reg & 7;
	bool mem = in->mod != 3;
	if (in->pfx & PFX_LOCK)
		return;
	if (mem && (in->asz == 2 || (in->base == REG_RIP && !t->long64)))
		return;
	bool native_osz = osz == (t->long64 ? 8u : 4u);
	uint8_t rm_kind = mem ? O_MEM : O_REG;
	if (op < 0x40 && (op & 7) < 6 && is_alu_op(op >> 3, mem && (op & 7) < 2)) {
		unsigned aop = op >> 3, size = (op & 1) ? osz : 1;
		switch (op & 7) {
		case 0: case 1: plan_alu(p, aop, size, rm_kind, in->rm, O_REG, in->reg, 0); break;
		case 2: case 3: plan_alu(p, aop, size, O_REG, in->reg, rm_kind, in->rm, 0); break;
		default: plan_alu(p, aop, size, O_REG, R_AX, O_IMM, 0, in->imm); break;
		}
	} else {
		switch (op) {
		case 0x80: case 0x81: case 0x83: {
			unsigned size = op == 0x80 ? 1 : osz;
			if (!is_alu_op(reg_op, mem))
				return;
			plan_alu(p, reg_op, size, rm_kind, in->rm, O_IMM, 0, in->imm);
			break;
		}
		case 0x84: case 0x85:
			plan_alu(p, 4, op == 0x84 ? 1 : osz, rm_kind, in->rm, O_REG, in->reg, 0);
			p->writeback = false;
			break;
		case 0xa8: case 0xa9:
			plan_alu(p, 4, op == 0xa8 ? 1 : osz, O_REG, R_AX, O_IMM, 0, in->imm);
			p->writeback = false;
			break;
		case 0xf6: case 0xf7:
			if (reg_op == 2 || reg_op == 3) {
				if (mem)
					return;
				*p = (struct plan){.kind = reg_op == 2 ? K_NOT : K_NEG, .size = (uint8_t)(op == 0xf6 ? 1 : osz),
						   .dst = O_REG, .dst_reg = in->rm, .writes_all = reg_op == 3};
				break;
			}
			if (reg_op == 4 || reg_op == 5) { /* MUL, IMUL: rDX:rAX = rAX * r/m */
				if (op == 0xf6 || osz == 2)
					return;
				*p = (struct plan){.kind = K_MUL, .size = (uint8_t)osz, .sign = reg_op == 5, .src = rm_kind,
						   .src_reg = in->rm, .writes_all = true, .may_fault = mem};
				break;
			}
			if (reg_op >= 2)
				return;
			plan_alu(p, 4, op == 0xf6 ? 1 : osz, rm_kind, in->rm, O_IMM, 0, in->imm);
			p->writeback = false;
			break;
		case 0x69: case 0x6b: case OP_0F | 0xaf:
			*p = (struct plan){.kind = K_IMUL, .size = (uint8_t)osz, .dst = O_REG, .dst_reg = in->reg,
					   .src = rm_kind, .src_reg = in->rm, .imm = in->imm, .sign = op != (OP_0F | 0xaf),
					   .writes_all = true, .may_fault = mem};
			break;
		case OP_0F | 0x90: case OP_0F | 0x91: case OP_0F | 0x92: case OP_0F | 0x93:
		case OP_0F | 0x94: case OP_0F | 0x95: case OP_0F | 0x96: case OP_0F | 0x97:
		case OP_0F | 0x98: case OP_0F | 0x99: case OP_0F | 0x9a: case OP_0F | 0x9b:
		case OP_0F | 0x9c: case OP_0F | 0x9d: case OP_0F | 0x9e: case OP_0F | 0x9f:
			if (mem)
				return;
			*p = (struct plan){.kind = K_SETCC, .aop = (uint8_t)(op & 15), .size = 1, .dst = O_REG,
					   .dst_reg = in->rm, .reads = true};
			break;
		case OP_0F | 0x40: case OP_0F | 0x41: case OP_0F | 0x42: case OP_0F | 0x43:
		case OP_0F | 0x44: case OP_0F | 0x45: case OP_0F | 0x46: case OP_0F | 0x47:
		case OP_0F | 0x48: case OP_0F | 0x49: case OP_0F | 0x4a: case OP_0F | 0x4b:
		case OP_0F | 0x4c: case OP_0F | 0x4d: case OP_0F | 0x4e: case OP_0F | 0x4f:
			if (mem)
				return;
			*p = (struct plan){.kind = K_CMOV, .aop = (uint8_t)(op & 15), .size = (uint8_t)osz, .dst = O_REG,
					   .dst_reg = in->reg, .src = O_REG, .src_reg = in->rm, .reads = true};
			break;
		case 0xfe: case 0xff:
			if (op == 0xff && reg_op == 4 && native_osz) {
				*p = (struct plan){.kind = K_JMP_INDIRECT, .size = (uint8_t)osz, .src = rm_kind, .src_reg = in->rm,
						   .may_fault = true};
				break;
			}
			if (reg_op >= 2 || mem)
				return;
			*p = (struct plan){.kind = K_INCDEC, .aop = (uint8_t)reg_op, .size = (uint8_t)(op == 0xfe ? 1 : osz),
					   .dst = O_REG, .dst_reg = in->rm, .reads = true};
			break;
		case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
		case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
			/* INC/DEC r (not REX prefixes: those are only in 64-bit mode) */
			*p = (struct plan){.kind = K_INCDEC, .aop = (uint8_t)((op >> 3) & 1), .size = (uint8_t)osz,
					   .dst = O_REG, .dst_reg = (uint8_t)(op & 7), .reads = true};
			break;
		case 0xc1: case 0xd1: {
			unsigned count = op == 0xd1 ? 1 : (unsigned)in->imm & (osz == 8 ? 63 : 31);
			if (mem || osz == 2 || count == 0)
				return;
			if (reg_op < 2) {
				*p = (struct plan){.kind = K_ROT, .aop = (uint8_t)reg_op, .size = (uint8_t)osz, .dst = O_REG,
						   .dst_reg = in->rm, .imm = count};
				break;
			}
			if (reg_op != 4 && reg_op != 5 && reg_op != 7)
				return;
			*p = (struct plan){.kind = K_SHIFT, .aop = (uint8_t)reg_op, .size = (uint8_t)osz, .dst = O_REG,
					   .dst_reg = in->rm, .imm = count, .writes_all = true};
			break;
		}
		case 0xd3:
			if (mem || osz == 2 || (reg_op != 4 && reg_op != 5 && reg_op != 7))
				return;
			*p = (struct plan){.kind = K_SHIFT_CL, .aop = (uint8_t)reg_op, .size = (uint8_t)osz, .dst = O_REG,
					   .dst_reg = in->rm, .reads = true};
			break;
		case 0x90: /* with REX.B it is XCHG r8, rAX */
			if (in->rex & 1)
				return;
			*p = (struct plan){.kind = K_NOP};
			break;
		case OP_0F | 0x0d: case OP_0F | 0x18: case OP_0F | 0x19: case OP_0F | 0x1a: case OP_0F | 0x1b:
		case OP_0F | 0x1c: case OP_0F | 0x1d: case OP_0F | 0x1e: case OP_0F | 0x1f:
			*p = (struct plan){.kind = K_NOP}; /* hints and multi-byte NOPs, as the interpreter */
			break;
		case 0x88: case 0x89:
			*p = (struct plan){.kind = K_MOV, .size = (uint8_t)(op == 0x88 ? 1 : osz), .dst = rm_kind,
					   .dst_reg = in->rm, .src = O_REG, .src_reg = in->reg, .may_fault = mem};
			break;
		case 0x8a: case 0x8b:
			*p = (struct plan){.kind = K_MOV, .size = (uint8_t)(op == 0x8a ? 1 : osz), .dst = O_REG,
					   .dst_reg = in->reg, .src = rm_kind, .src_reg = in->rm, .may_fault = mem};
			break;
		case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
		case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf: {
			unsigned size = op < 0xb8 ? 1 : osz;
			*p = (struct plan){.kind = K_MOV, .size = (uint8_t)size, .dst = O_REG, .dst_reg = in->reg,
					   .src = O_IMM, .imm = in->imm & size_mask(size)};
			break;
		}
		case 0xc6: case 0xc7: {
			unsigned size = op == 0xc6 ? 1 : osz;
			if (reg_op != 0)
				return;
			*p = (struct plan){.kind = K_MOV, .size = (uint8_t)size, .dst = rm_kind, .dst_reg = in->rm,
					   .src = O_IMM, .imm = in->imm & size_mask(size), .may_fault = mem};
			break;
		}
		case OP_0F | 0xb6: case OP_0F | 0xb7: case OP_0F | 0xbe: case OP_0F | 0xbf:
			*p = (struct plan){.kind = K_MOVX, .size = (uint8_t)osz, .src_size = (op & 1) ? 2 : 1,
					   .sign = (op & 8) != 0, .dst = O_REG, .dst_reg = in->reg, .src = rm_kind,
					   .src_reg = in->rm, .may_fault = mem};
			if (osz == 2 && (op & 1))
				p->kind = K_FALLBACK, p->reads = p->may_fault = true;
			break;
		case 0x98: /* CWDE, CDQE: EAX/RAX = sign-extended AX/EAX */
			if (osz == 2)
				return;
			*p = (struct plan){.kind = K_MOVX, .size = (uint8_t)osz, .src_size = (uint8_t)(osz / 2), .sign = true,
					   .dst = O_REG, .dst_reg = R_AX, .src = O_REG, .src_reg = R_AX};
			break;
		case 0x63:
			if (osz != 8 || !t->long64)
				return;
			*p = (struct plan){.kind = K_MOVX, .size = 8, .src_size = 4, .sign = true, .dst = O_REG,
					   .dst_reg = in->reg, .src = rm_kind, .src_reg = in->rm, .may_fault = mem};
			break;
		case 0x8d:
			if (!mem || osz == 2)
				return;
			*p = (struct plan){.kind = K_LEA, .size = (uint8_t)osz, .dst = O_REG, .dst_reg = in->reg};
			break;
		case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
		case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
			if (!native_osz || t->stack_bits != (t->long64 ? 64u : 32u))
				return;
			*p = (struct plan){.kind = op < 0x58 ? K_PUSH : K_POP, .size = (uint8_t)osz, .dst_reg = in->reg,
					   .may_fault = true};
			break;
		case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
		case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
		case OP_0F | 0x80: case OP_0F | 0x81: case OP_0F | 0x82: case OP_0F | 0x83:
		case OP_0F | 0x84: case OP_0F | 0x85: case OP_0F | 0x86: case OP_0F | 0x87:
		case OP_0F | 0x88: case OP_0F | 0x89: case OP_0F | 0x8a: case OP_0F | 0x8b:
		case OP_0F | 0x8c: case OP_0F | 0x8d: case OP_0F | 0x8e: case OP_0F | 0x8f:
			if (!native_osz)
				return;
			*p = (struct plan){.kind = K_JCC, .size = (uint8_t)osz, .aop = (uint8_t)(op & 15), .imm = in->imm,
					   .reads = true, .may_fault = true};
			break;
		case 0xe9: case 0xeb:
			if (!native_osz)
				return;
			*p = (struct plan){.kind = K_JMP, .size = (uint8_t)osz, .imm = in->imm, .may_fault = true};
			break;
		case 0xe8:
			if (!native_osz || t->stack_bits != (t->long64 ? 64u : 32u))
				return;
			*p = (struct plan){.kind = K_CALL, .size = (uint8_t)osz, .imm = in->imm, .may_fault = true};
			break;
		case 0xc3:
			if (!native_osz || t->stack_bits != (t->long64 ? 64u : 32u))
				return;
			*p = (struct plan){.kind = K_RET, .size = (uint8_t)osz, .may_fault = true};
			break;
		default:
			if (op >= OP_0F && op < OP_UD)
				plan_sse(in, p);
			return;
		}
	}
	if (p->kind == K_ALU) {
		p->may_fault = p->dst == O_MEM || p->src == O_MEM;
		p->reads = p->aop == 2 || p->aop == 3;
	}
}

/* ---- emission helpers ---- */

/* Host registers that hold guest registers: the callee-saved ones survive
 * helper calls, R8-R11 are loaded again after one. */
static const uint8_t cache_pool[] = {HBP, H13, H15, H8, H9, H10, H11};
#define HOST_VOLATILE(h) ((h) >= H8 && (h) <= H11)

static bool is_cached(const struct tr *t, unsigned g)
{
	return g < 16 && t->host_of[g] != HNONE && !((t->nocache >> g) & 1);
}

/* Guest registers whose host register a C call clobbers and that are loaded. */
static uint16_t volatile_loaded(const struct tr *t)
{
	uint16_t m = 0;
	for (unsigned g = 0; g < 16; g++)
		if (t->host_of[g] != HNONE && HOST_VOLATILE(t->host_of[g]))
			m |= (uint16_t)(1u << g);
	return m & t->loaded;
}

/* The host register holding cached guest register g, loaded if need be. */
static unsigned reg_host(struct tr *t, unsigned g)
{
	unsigned h = t->host_of[g];
	if (!((t->loaded >> g) & 1)) {
		emit_load(&t->e, 8, h, GREG(g));
		t->loaded |= (uint16_t)(1u << g);
	}
	return h;
}

/* Store the guest registers of `mask` that are dirty (no flags change). */
static void emit_spill(struct tr *t, uint16_t mask)
{
	for (unsigned g = 0; g < 16; g++)
		if ((mask >> g) & 1)
			emit_store(&t->e, 8, t->host_of[g], GREG(g));
}

static void emit_reload(struct tr *t, uint16_t mask)
{
	for (unsigned g = 0; g < 16; g++)
		if ((mask >> g) & 1)
			emit_load(&t->e, 8, t->host_of[g], GREG(g));
}

/* Before anything that reads struct softcpu's registers or leaves: */
static void spill_all(struct tr *t)
{
	emit_spill(t, t->dirty);
	t->dirty = 0;
}

/* Before a helper call: the registers it clobbers are stored and forgotten. */
static void spill_volatile(struct tr *t)
{
	uint16_t v = volatile_loaded(t);
	emit_spill(t, v & t->dirty);
	t->dirty &= (uint16_t)~v;
	t->loaded &= (uint16_t)~v;
}

/* Choose which guest registers the block keeps in host registers: the most
 * used by inline instructions, at least twice (once in a loop). */
static void count_reg(unsigned *uses, unsigned g)
{
	if (g < 16)
		uses[g]++;
}

static bool high_byte(const struct insn *in, unsigned r, unsigned size)
{
	return size == 1 && r >= 4 && r < 8 && !(in->pfx & PFX_REX);
}

static struct hmem guest_reg(const struct insn *in, unsigned r, unsigned size)
{
	if (high_byte(in, r, size))
		return hmem_at(HBX, OFF(r) + 8 * (int32_t)(r - 4) + 1); /* AH, CH, DH, BH */
	return hmem_at(HBX, OFF(r) + 8 * (int32_t)r);
}

/* Zero-extending read of a guest register into host register dst. */
static void read_guest_reg(struct tr *t, const struct insn *in, unsigned r, unsigned size, unsigned dst)
{
	if (high_byte(in, r, size) || !is_cached(t, r)) {
		emit_load(&t->e, size, dst, guest_reg(in, r, size));
		return;
	}
	unsigned h = reg_host(t, r);
	switch (size) {
	case 1: emit_rr(&t->e, 4, 0x0fb6, dst, h); break;
	case 2: emit_rr(&t->e, 4, 0x0fb7, dst, h); break;
	default:
		if (dst != h || size == 4)
			emit_mov_rr(&t->e, size, dst, h);
		break;
	}
}

/* Size-4 values in host registers always have their upper half clear. */
static void write_guest_reg(struct tr *t, const struct insn *in, unsigned r, unsigned size, unsigned src)
{
	if (high_byte(in, r, size) || !is_cached(t, r)) {
		emit_store(&t->e, size == 4 ? 8 : size, src, guest_reg(in, r, size));
		return;
	}
	unsigned h = size < 4 ? reg_host(t, r) : t->host_of[r];
	emit_mov_rr(&t->e, size, h, src);
	t->loaded |= (uint16_t)(1u << r);
	t->dirty |= (uint16_t)(1u << r);
}

/* The host register caching guest register r, for an operation of `size`
 * on it in place, or HNONE.  Sizes 4 and 8 only: a 32-bit host operation
 * zero-extends as the guest's does.  The caller marks it written. */
static unsigned in_place(struct tr *t, unsigned r, unsigned size)
{
	if ((size != 4 && size != 8) || !is_cached(t, r))
		return HNONE;
	return reg_host(t, r);
}

/* The same for an operation that replaces the whole register (MOV, LEA):
 * its old value is not loaded. */
static unsigned in_place_write(struct tr *t, unsigned r, unsigned size)
{
	if ((size != 4 && size != 8) || !is_cached(t, r))
		return HNONE;
	return t->host_of[r];
}

static void mark_written(struct tr *t, unsigned r)
{
	t->loaded |= (uint16_t)(1u << r);
	t->dirty |= (uint16_t)(1u << r);
}

/* The host register an operation on guest register g works in: g's own
 * where it is cached (4 or 8 bytes), else HAX, loaded with g when its old
 * value is an operand (`load`).  dst_done() makes the result g's. */
static unsigned dst_begin(struct tr *t, const struct insn *in, unsigned g, unsigned size, bool load)
{
	unsigned h = load ? in_place(t, g, size) : in_place_write(t, g, size);
	if (h != HNONE)
		return h;
	if (load)
		read_guest_reg(t, in, g, size, HAX);
	return HAX;
}

static void dst_done(struct tr *t, const struct insn *in, unsigned g, unsigned size, unsigned r)
{
	if (r != HAX) /* HAX is never a cache register (cache_pool) */
		mark_written(t, g);
	else
		write_guest_reg(t, in, g, size, HAX);
}

/* A guest register's 64 bits as a host register: its cache, or `scratch`. */
static unsigned reg_full(struct tr *t, unsigned g, unsigned scratch)
{
	if (is_cached(t, g))
		return reg_host(t, g);
	emit_load(&t->e, 8, scratch, GREG(g));
	return scratch;
}

/* RSP += delta at the stack's width (a 32-bit stack keeps the upper half:
 * RSP is cached in 64-bit mode only). */
static void sp_adjust(struct tr *t, unsigned size, int32_t delta)
{
	if (is_cached(t, R_SP)) {
		emit_alu_ri(&t->e, 8, 0, reg_host(t, R_SP), delta);
		t->dirty |= 1u << R_SP;
	} else {
		emit_alu_mi(&t->e, size, 0, GREG(R_SP), delta);
	}
	t->hf = 0;
}

/* This instruction reads or writes a register as AH..BH: that register
 * goes through memory for it, and is loaded again after. */
static void prepare_high_bytes(struct tr *t, const struct insn *in, const struct plan *p)
{
	unsigned rs[2] = {16, 16};
	if (p->dst == O_REG && high_byte(in, p->dst_reg, p->size))
		rs[0] = p->dst_reg - 4;
	unsigned ssize = p->kind == K_MOVX ? p->src_size : p->size;
	if (p->src == O_REG && high_byte(in, p->src_reg, ssize))
		rs[1] = p->src_reg - 4;
	for (int i = 0; i < 2; i++) {
		unsigned g = rs[i];
		if (g >= 16 || t->host_of[g] == HNONE)
			continue;
		uint16_t bit = (uint16_t)(1u << g);
		emit_spill(t, t->dirty & bit);
		t->dirty &= (uint16_t)~bit;
		t->loaded &= (uint16_t)~bit;
		t->nocache |= bit;
	}
}

/* c->rip += delta, at the code size's width (it wraps at 4 GiB outside long mode). */
static void add_rip(struct tr *t, int64_t delta)
{
	if (delta)
		emit_alu_mi(&t->e, t->long64 ? 8 : 4, 0, MEM_C(rip), (int32_t)delta);
	t->hf = 0; /* the host flags are gone */
}

static void sync_rip(struct tr *t, uint32_t off)
{
	add_rip(t, (int64_t)off - t->synced);
	t->synced = off;
}

/* softcpu_exec(c, in, n): the interpreter runs n instructions. */
static void emit_interpret(struct emit *e, const struct insn *in, unsigned n)
{
	emit_mov_rr(e, 8, HARG0, HBX);
	emit_mov_imm(e, HARG1, (uint64_t)(uintptr_t)in);
	emit_mov_imm(e, HARG2, n);
	emit_call(e, (const void *)softcpu_exec);
}

static void jump_to_exit(struct tr *t)
{
	emit_patch(emit_jmp(&t->e), t->j->exit_rw);
}

/* What the run loop would look at between two blocks: requests (which
 * carry interrupts), the run limit, code written by another vCPU, device
 * writes.  Each of the 4 branches goes to the exit when patched. */
static void emit_block_checks(struct tr *t, uint8_t *out[4])
{
	struct emit *e = &t->e;
	emit_load(e, 4, HAX, MEM_C(requests));
	emit_alu_rr(e, 4, 4, HAX, HAX); /* TEST-like AND */
	out[0] = emit_jcc(e, 5);
	emit_load(e, 8, HAX, MEM_C(icount));
	emit_alu_rm(e, 8, 7, HAX, MEM_C(run_limit));
	out[1] = emit_jcc(e, 3); /* JAE */
	emit_load(e, 8, HCX, MEM_J(code_epoch));
	emit_load(e, 4, HAX, hmem_at(HCX, 0));
	emit_alu_rm(e, 4, 7, HAX, MEM_J(seen_code_epoch));
	out[2] = emit_jcc(e, 5);
	emit_load(e, 8, HCX, MEM_J(dirty_generation));
	emit_load(e, 8, HAX, hmem_at(HCX, 0));
	emit_alu_rm(e, 8, 7, HAX, MEM_C(seen_dirty_generation));
	out[3] = emit_jcc(e, 5);
	t->hf = 0;
}

/* Leave for a block only known at run time (c->rip is set): straight there
 * if it is translated and nothing else is to be done.  fast: the inline
 * lookup first (the block cannot have changed RFLAGS.IF, the interrupt
 * shadow or HLT state, which only cpu.c's lookup looks at). */
static void jump_to_next(struct tr *t, bool fast)
{
	struct emit *e = &t->e;
	spill_all(t);
	uint8_t *miss[2] = {NULL, NULL};
	if (fast) {
		uint8_t *out[4];
		emit_block_checks(t, out);
		for (int i = 0; i < 4; i++)
			emit_patch(out[i], t->j->exit_rw);
		emit_load(e, 8, HAX, MEM_C(rip));
		if (!t->long64) {
			emit_alu_rm(e, 8, 0, HAX, MEM_C(segbase[S_CS]));
			emit_mov_rr(e, 4, HAX, HAX);
		}
		emit_mov_rr(e, 8, HDX, HAX);
		emit_shift_ri(e, 8, 4, HDX, 16);
		emit_shift_ri(e, 8, 5, HDX, 16);
		emit_mov_imm(e, HCX, (uint64_t)t->mode << 48);
		emit_alu_rr(e, 8, 1, HDX, HCX); /* the tag */
		emit_alu_ri(e, 4, 4, HAX, JIT_TARGETS - 1);
		emit_shift_ri(e, 4, 4, HAX, 5);
		int32_t base = (int32_t)offsetof(struct jit, targets);
		emit_alu_rm(e, 8, 7, HDX, (struct hmem){.base = H14, .index = HAX, .disp = base});
		miss[0] = emit_jcc(e, 5);
		emit_load(e, 4, HCX, MEM_C(tlb_gen));
		emit_load(e, 4, HDX, MEM_J(seen_code_epoch));
		emit_shift_ri(e, 8, 4, HDX, 32);
		emit_alu_rr(e, 8, 1, HCX, HDX);
		emit_alu_rm(e, 8, 7, HCX, (struct hmem){.base = H14, .index = HAX, .disp = base + 8});
		miss[1] = emit_jcc(e, 5);
		emit_load(e, 8, HAX, (struct hmem){.base = H14, .index = HAX, .disp = base + 16});
		emit_jmp_reg(e, HAX);
		emit_patch(miss[0], e->p);
		emit_patch(miss[1], e->p);
	}
	emit_mov_rr(e, 8, HARG0, HBX);
	emit_call(e, fast ? (const void *)jit_next_fill : (const void *)softcpu_jit_next);
	emit_alu_rr(e, 8, 4, HAX, HAX);
	emit_patch(emit_jcc(e, 4), t->j->exit_rw);
	emit_jmp_reg(e, HAX);
}

/* dst = the instruction's RIP-relative effective address (64-bit code only:
 * plan_insn), the next RIP + disp, at `size` (4: the address size truncates). */
static void emit_rip_relative(struct tr *t, const struct insn *in, uint32_t off, unsigned size, unsigned dst)
{
	struct emit *e = &t->e;
	emit_load(e, 8, dst, MEM_C(rip));
	int64_t d = (int64_t)off - t->synced + in->len + in->disp;
	if (d == (int32_t)d) {
		emit_lea(e, size, dst, hmem_at(dst, (int32_t)d));
	} else {
		emit_mov_imm(e, HDX, (uint64_t)d);
		emit_lea(e, size, dst, (struct hmem){.base = (uint8_t)dst, .index = HDX, .scale = 0});
	}
}

/* The linear address of the instruction's memory operand: into RSI, or
 * (a plain 64-bit base register kept in RBP, R13 or R15, which no call
 * passes an argument in) left where it is; t->addr says which. */
static void emit_address(struct tr *t, const struct insn *in, uint32_t off)
{
	struct emit *e = &t->e;
	unsigned asz = in->asz;
	t->hf = 0;
	t->addr = HSI;
	if (t->long64 && in->seg < S_FS && asz == 8 && in->base < 16 && in->index == REG_NONE && in->disp == 0 &&
	    is_cached(t, in->base) && !HOST_VOLATILE(t->host_of[in->base])) {
		t->addr = (uint8_t)reg_host(t, in->base);
		return;
	}
	if (in->base == REG_RIP) {
		emit_rip_relative(t, in, off, asz == 4 ? 4 : 8, HSI);
	} else {
		struct hmem m = {.base = HNONE, .index = HNONE, .disp = in->disp};
		if (in->base != REG_NONE)
			m.base = (uint8_t)reg_full(t, in->base, HSI);
		if (in->index != REG_NONE) {
			m.index = (uint8_t)reg_full(t, in->index, HDX);
			m.scale = in->scale;
		}
		emit_lea(e, asz == 4 ? 4 : 8, HSI, m);
	}
	if (!t->long64 || in->seg >= S_FS)
		emit_alu_rm(e, t->long64 ? 8 : 4, 0, HSI, MEM_C(segbase[in->seg]));
}

static struct stub *new_stub(struct tr *t)
{
	if (t->nstubs == MAX_STUBS) {
		t->overflow = true;
		return &t->stubs[0];
	}
	return &t->stubs[t->nstubs++];
}

/* The TLB check for an access of `size` bytes at t->addr: leaves the host
 * address in RAX on a hit, branches to a stub on a miss. */
static void emit_tlb(struct tr *t, struct stub *s, bool write, unsigned size)
{
	struct emit *e = &t->e;
	unsigned addr = t->addr;
	s->addr = (uint8_t)addr;
	t->hf = 0;
	int32_t tlb = OFF(tlb) + (t->user ? (int32_t)sizeof(((struct softcpu *)0)->tlb[0]) : 0);
	/* RAX = the entry's offset: (lin >> 12) % SOFTCPU_TLB_SIZE * 32 */
	_Static_assert(sizeof(struct tlb_entry) == 32 && SOFTCPU_TLB_SIZE * 32 <= 0x8000, "offset in one step");
	emit_mov_rr(e, 4, HAX, addr);
	emit_shift_ri(e, 4, 5, HAX, 12 - 5);
	emit_alu_ri(e, 4, 4, HAX, (SOFTCPU_TLB_SIZE - 1) << 5);
	if (size == 1)
		emit_mov_rr(e, 8, HDX, addr);
	else
		emit_lea(e, 8, HDX, hmem_at(addr, (int32_t)size - 1));
	emit_shift_ri(e, 8, 5, HDX, 12);
	int32_t tag = write ? (int32_t)offsetof(struct tlb_entry, tag_write) : (int32_t)offsetof(struct tlb_entry, tag_read);
	emit_alu_rm(e, 8, 7, HDX, (struct hmem){.base = HBX, .index = HAX, .disp = tlb + tag});
	s->spill = t->dirty;
	s->reload = volatile_loaded(t);
	s->branch = emit_jcc(e, 5); /* JNE */
	emit_load(e, 8, HAX, (struct hmem){.base = HBX, .index = HAX, .disp = tlb + (int32_t)offsetof(struct tlb_entry, addend)});
	emit_alu_rr(e, 8, 0, HAX, addr);
}

/* Load `size` bytes at the memory operand (address in t->addr) into host
 * register dst, zero-extended to 64 bits. */
static void emit_mem_load_to(struct tr *t, const struct insn *in, uint32_t off, unsigned size, unsigned dst)
{
	struct stub *s = new_stub(t);
	*s = (struct stub){.type = STUB_LOAD, .size = (uint8_t)size, .len = in->len, .dst = (uint8_t)dst,
			   .rip_delta = (int32_t)off - (int32_t)t->synced};
	emit_tlb(t, s, false, size);
	emit_load(&t->e, size, dst, hmem_at(HAX, 0));
	s->join = t->e.p;
}

static void emit_mem_load(struct tr *t, const struct insn *in, uint32_t off, unsigned size)
{
	emit_mem_load_to(t, in, off, size, HAX);
}

/* Store STORE_VAL's low `size` bytes at t->addr. */
static struct stub *emit_mem_store(struct tr *t, const struct insn *in, uint32_t off, unsigned size)
{
	struct stub *s = new_stub(t);
	*s = (struct stub){.type = STUB_STORE, .size = (uint8_t)size, .len = in->len,
			   .rip_delta = (int32_t)off - (int32_t)t->synced, .exit_delta = in->len};
	emit_tlb(t, s, true, size);
	emit_store(&t->e, size, STORE_VAL, hmem_at(HAX, 0));
	s->join = t->e.p;
	return s;
}

/* Out of line: the slow path of a memory access.  The host flags survive
 * (a Jcc may test them later); a store that wrote a code page leaves the
 * block after the instruction. */
static void emit_stub(struct tr *t, const struct stub *s)
{
	struct emit *e = &t->e;
	emit_patch(s->branch, e->p);
	if (s->branch2)
		emit_patch(s->branch2, e->p);
	emit_spill(t, s->spill);
	if (s->type == STUB_EXEC) {
		add_rip(t, s->rip_delta);
		emit_interpret(e, s->in, 1);
		emit_reload(t, s->reload);
		emit_rm(e, 1, 0x80, 7, MEM_C(block_end));
		emit_byte(e, 0);
		emit_patch(emit_jcc(e, 5), t->j->exit_rw);
		emit_alu_mi(e, 8, 5, MEM_C(icount), 1); /* counted inline already */
		add_rip(t, -(int64_t)(s->rip_delta + s->len));
		emit_patch(emit_jmp(e), s->join);
		return;
	}
	emit_pushfq(e);
	emit_alu_ri(e, 8, 5, HSP, 40);
	add_rip(t, s->rip_delta);
	if (s->type == STUB_LOAD) {
		emit_mov_rr(e, 8, HARG0, HBX);
		emit_mov_rr(e, 8, HARG1, s->addr);
		emit_mov_imm(e, HARG2, s->size);
		emit_call(e, (const void *)jit_read_slow);
		emit_reload(t, s->reload);
		if (s->dst != HAX)
			emit_mov_rr(e, 8, s->dst, HAX);
	} else {
		/* STORE_VAL (RDI) is an argument register: moved first */
		emit_mov_rr(e, 8, HARG2, STORE_VAL);
		emit_mov_rr(e, 8, HARG1, s->addr);
		emit_mov_rr(e, 8, HARG0, HBX);
		emit_mov_imm(e, HARG3, s->size);
		emit_mov_mem_imm(e, 1, MEM_C(block_end), 0); /* the interpreter clears it itself */
		emit_call(e, (const void *)jit_write_slow);
		emit_reload(t, s->reload);
		emit_rm(e, 1, 0x80, 7, MEM_C(block_end)); /* CMP byte, 0 */
		emit_byte(e, 0);
		uint8_t *stay = emit_jcc(e, 4); /* JE */
		emit_alu_ri(e, 8, 0, HSP, 40);
		emit_popfq(e);
		if (s->sp_delta) /* the registers are stored: RSP is the one in memory now */
			emit_alu_mi(e, s->size, 0, GREG(R_SP), s->sp_delta);
		add_rip(t, s->exit_delta);
		jump_to_exit(t);
		emit_patch(stay, e->p);
	}
	add_rip(t, -(int64_t)s->rip_delta);
	emit_alu_ri(e, 8, 0, HSP, 40);
	emit_popfq(e);
	emit_patch(emit_jmp(e), s->join);
}

/* The interpreter runs the n instructions from `in` (len bytes); leave the
 * block if it says so. */
static void emit_fallback(struct tr *t, const struct insn *in, unsigned n, uint32_t off, uint32_t len, bool last)
{
	struct emit *e = &t->e;
	sync_rip(t, off);
	spill_all(t);
	emit_interpret(e, in, n);
	t->loaded = 0; /* the interpreter may have changed any register */
	t->synced = off + len;
	t->hf = 0;
	t->lf_op = LF_UNKNOWN;
	if (last) {
		/* an indirect JMP or CALL changes nothing cpu.c's lookup checks */
		const struct insn *l = &in[n - 1];
		jump_to_next(t, l->op == 0xff && ((l->reg & 7) == 2 || (l->reg & 7) == 4));
		return;
	}
	emit_rm(e, 1, 0x80, 7, MEM_C(block_end));
	emit_byte(e, 0);
	emit_patch(emit_jcc(e, 5), t->j->exit_rw);
}

/* Record the lazy flags: result RAX, operands RDX and RCX. */
static void store_flags_res(struct tr *t, unsigned res, unsigned lf, unsigned size, bool operands)
{
	struct emit *e = &t->e;
	emit_store(e, 8, res, MEM_C(lf.res));
	if (operands) {
		emit_store(e, 8, HDX, MEM_C(lf.src1));
		emit_store(e, 8, HCX, MEM_C(lf.src2));
	}
	_Static_assert(offsetof(struct lazy_flags, size) == offsetof(struct lazy_flags, op) + 1, "op, size");
	emit_mov_mem_imm(e, 2, MEM_C(lf.op), (int32_t)(lf | (size << 8)));
	t->lf_op = (uint8_t)lf;
}

static void store_flags(struct tr *t, unsigned lf, unsigned size, bool operands)
{
	store_flags_res(t, HAX, lf, size, operands);
}

/* The branch back to the block's start of a loop: straight to the loop
 * head with the registers where they are; every LOOP_CHECK_EVERY
 * iterations, the run loop's checks first (a request, the run limit, code
 * changed by another vCPU or a device wait that long at most; the run
 * limit may be passed by as many iterations). */
static void emit_back_edge(struct tr *t)
{
	struct emit *e = &t->e;
	add_rip(t, -(int64_t)t->synced);
	emit_reload(t, t->cached & (uint16_t)~t->loaded);
	emit_rr(e, 4, 0xff, 1, LOOP_BUDGET); /* DEC r12d */
	emit_patch(emit_jcc(e, 5), t->loop_head);
	uint8_t *out[4];
	emit_block_checks(t, out);
	emit_mov_imm(e, LOOP_BUDGET, LOOP_CHECK_EVERY);
	emit_patch(emit_jmp(e), t->loop_head);
	for (int i = 0; i < 4; i++)
		emit_patch(out[i], e->p);
	emit_spill(t, t->dirty);
	jump_to_exit(t);
}

/* ---- SSE ---- */

static struct hmem xmm_at(unsigned r, int32_t byte)
{
	return hmem_at(HBX, OFF(xmm) + 16 * (int32_t)(r & 15) + byte);
}

/* Host XMM register x = / from 16 bytes in memory (MOVDQU). */
static void emit_xmm_load(struct emit *e, unsigned x, struct hmem m)
{
	emit_sse_rm(e, 0xf3, 0x0f6f, x, m);
}

static void emit_xmm_store(struct emit *e, unsigned x, struct hmem m)
{
	emit_sse_rm(e, 0xf3, 0x0f7f, x, m);
}

/* A way out of line to the interpreter, which runs the whole instruction
 * (and raises what it must); it comes back at the end of the inline code,
 * where the caller sets join and the registers to load again. */
static struct stub *sse_exec_stub(struct tr *t, const struct insn *in, uint32_t off)
{
	struct stub *s = new_stub(t);
	*s = (struct stub){.type = STUB_EXEC, .len = in->len, .rip_delta = (int32_t)off - (int32_t)t->synced,
			   .in = in, .spill = t->dirty};
	return s;
}

/* The memory operand of a 16-byte access: its host address in RAX, or the
 * stub (the interpreter runs the instruction) when it is misaligned for an
 * aligned form (#GP), or misses the TLB. */
static struct stub *sse_mem16(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p, bool write)
{
	struct emit *e = &t->e;
	emit_address(t, in, off);
	struct stub *s = sse_exec_stub(t, in, off);
	if (p->aligned) {
		emit_rr(e, 4, 0xf7, 0, t->addr); /* TEST addr32, 15 */
		emit_u32(e, 15);
		s->branch2 = emit_jcc(e, 5);
	}
	emit_tlb(t, s, write, 16);
	return s;
}

/* Host XMM register `h` = the instruction's 16-byte r/m source (guest XMM
 * register or memory); returns sse_mem16's stub for a memory operand. */
static struct stub *emit_xmm_load_rm(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p, unsigned h)
{
	if (in->mod == 3) {
		emit_xmm_load(&t->e, h, xmm_at(in->rm, 0));
		return NULL;
	}
	struct stub *s = sse_mem16(t, in, off, p, false);
	emit_xmm_load(&t->e, h, hmem_at(HAX, 0));
	return s;
}

/* xmm[r].q[0] = RAX, xmm[r].q[1] = 0 */
static void emit_xmm_set_low(struct tr *t, unsigned r)
{
	emit_store(&t->e, 8, HAX, xmm_at(r, 0));
	emit_mov_mem_imm(&t->e, 8, xmm_at(r, 8), 0);
}

static void tr_sse(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p)
{
	struct emit *e = &t->e;
	struct stub *out[2] = {NULL, NULL};
	bool mem = in->mod != 3;
	if (p->state_check) { /* as check_sse: #UD with CR0.EM or without CR4.OSFXSR, #NM with CR0.TS */
		out[0] = sse_exec_stub(t, in, off);
		emit_rm(e, 1, 0xf6, 0, MEM_C(cr0)); /* TEST byte */
		emit_byte(e, CR0_EM | CR0_TS);
		out[0]->branch = emit_jcc(e, 5);
		emit_rm(e, 1, 0xf6, 0, hmem_at(HBX, OFF(cr4) + 1));
		emit_byte(e, CR4_OSFXSR >> 8);
		out[0]->branch2 = emit_jcc(e, 4);
		t->hf = 0;
	}
	switch (p->aop) {
	case SSE_OP:
		out[1] = emit_xmm_load_rm(t, in, off, p, 1);
		emit_xmm_load(e, 0, xmm_at(in->reg, 0));
		emit_sse_rr(e, p->host_pfx, p->host_op, 0, 1);
		if (p->has_imm)
			emit_byte(e, (uint8_t)in->imm);
		emit_xmm_store(e, 0, xmm_at(in->reg, 0));
		break;
	case SSE_SHIFT_IMM:
		emit_xmm_load(e, 0, xmm_at(in->rm, 0));
		emit_sse_rr(e, 0x66, p->host_op, in->reg & 7, 0);
		emit_byte(e, (uint8_t)in->imm);
		emit_xmm_store(e, 0, xmm_at(in->rm, 0));
		break;
	case SSE_LOAD:
		out[1] = emit_xmm_load_rm(t, in, off, p, 0);
		emit_xmm_store(e, 0, xmm_at(in->reg, 0));
		break;
	case SSE_STORE:
		if (mem) {
			out[1] = sse_mem16(t, in, off, p, true);
			emit_xmm_load(e, 0, xmm_at(in->reg, 0));
			emit_xmm_store(e, 0, hmem_at(HAX, 0));
		} else {
			emit_xmm_load(e, 0, xmm_at(in->reg, 0));
			emit_xmm_store(e, 0, xmm_at(in->rm, 0));
		}
		break;
	case SSE_MOVD_IN:
	case SSE_MOVQ_IN: {
		unsigned size = p->aop == SSE_MOVQ_IN ? 8 : p->size;
		if (mem) {
			emit_address(t, in, off);
			emit_mem_load(t, in, off, size);
		} else if (p->aop == SSE_MOVQ_IN) {
			emit_load(e, 8, HAX, xmm_at(in->rm, 0));
		} else {
			read_guest_reg(t, in, in->rm, size, HAX);
		}
		emit_xmm_set_low(t, in->reg);
		break;
	}
	case SSE_MOVD_OUT:
	case SSE_MOVQ_OUT: {
		unsigned size = p->aop == SSE_MOVQ_OUT ? 8 : p->size;
		if (mem) {
			emit_load(e, size, STORE_VAL, xmm_at(in->reg, 0));
			emit_address(t, in, off);
			emit_mem_store(t, in, off, size);
		} else if (p->aop == SSE_MOVQ_OUT) {
			emit_load(e, 8, HAX, xmm_at(in->reg, 0));
			emit_xmm_set_low(t, in->rm);
		} else {
			emit_load(e, size, HAX, xmm_at(in->reg, 0));
			write_guest_reg(t, in, in->rm, size, HAX);
		}
		break;
	}
	case SSE_MOVMSK:
		emit_xmm_load(e, 0, xmm_at(in->rm, 0));
		emit_sse_rr(e, 0x66, 0x0fd7, HAX, 0);
		write_guest_reg(t, in, in->reg, 4, HAX);
		break;
	default:
		break;
	}
	/* The interpreter's way joins here: the registers the inline way holds
	 * now come from struct softcpu (which the stub stored first). */
	for (int i = 0; i < 2; i++)
		if (out[i]) {
			out[i]->join = e->p;
			out[i]->reload = t->loaded;
			t->lf_op = LF_UNKNOWN; /* what the lazy flags hold is the interpreter's business there */
		}
}

/* Leave for guest address block start + target_off (c->rip updated);
 * chain when the target is in the block's page. */
static void emit_exit_to(struct tr *t, int64_t target_off, bool canonical_check, const struct insn *in, uint32_t off)
{
	struct emit *e = &t->e;
	if (t->loop_head && target_off == 0) {
		emit_back_edge(t);
		return;
	}
	spill_all(t);
	add_rip(t, target_off - t->synced);
	int64_t in_page = (int64_t)t->page_off + target_off;
	if (canonical_check && (in_page < 0 || in_page >= 4096)) {
		/* A 64-bit target outside the page may be non-canonical: #GP
		 * from the interpreter, which runs the branch again. */
		emit_load(e, 8, HAX, MEM_C(rip));
		emit_mov_rr(e, 8, HDX, HAX);
		emit_shift_ri(e, 8, 4, HDX, 16);
		emit_shift_ri(e, 8, 7, HDX, 16);
		emit_alu_rr(e, 8, 7, HDX, HAX);
		uint8_t *ok = emit_jcc(e, 4);
		add_rip(t, (int64_t)off - target_off);
		emit_interpret(e, in, 1);
		jump_to_exit(t);
		emit_patch(ok, e->p);
	}
	if (in_page < 0 || in_page >= 4096) {
		jump_to_next(t, true);
		return;
	}
	/* Chain: checks the run loop would make between blocks, then the slot. */
	uint8_t *out[5];
	emit_block_checks(t, out);
	/* The slot: 8 aligned bytes in the code, NULL until chained. */
	uint8_t *slot_load = e->p;
	emit_mov_imm(e, HAX, 0x7fffffffffffffffull); /* patched below: the slot's rx address */
	emit_load(e, 8, HAX, hmem_at(HAX, 0));
	emit_alu_rr(e, 8, 4, HAX, HAX);
	out[4] = emit_jcc(e, 4); /* JE: not chained yet */
	emit_jmp_reg(e, HAX);
	for (int i = 0; i < 4; i++)
		emit_patch(out[i], t->j->exit_rw);
	jump_to_exit(t);
	/* Not chained yet: ask the run loop to chain it. */
	emit_patch(out[4], e->p);
	uint8_t *slot_addr_imm = e->p;
	emit_mov_imm(e, HAX, 0x7fffffffffffffffull); /* patched: the slot's rw address */
	emit_store(e, 8, HAX, MEM_J(pending_slot));
	jump_to_exit(t);
	while ((uintptr_t)e->p & 7)
		emit_byte(e, 0xcc);
	uint8_t *slot = e->p;
	for (int i = 0; i < 8; i++)
		emit_byte(e, 0);
	if (emit_full(e))
		return;
	uint64_t slot_rx = (uint64_t)(uintptr_t)(t->j->rx + (slot - t->j->rw));
	uint64_t slot_rw = (uint64_t)(uintptr_t)slot;
	memcpy(slot_load + 2, &slot_rx, 8);      /* MOV RAX, imm64: 48 B8 imm64 */
	memcpy(slot_addr_imm + 2, &slot_rw, 8);
}

/* ---- instructions ---- */

/* Load operand kind `o` (register r or the memory operand) of `size` into RAX. */
static void load_operand(struct tr *t, const struct insn *in, uint32_t off, uint8_t o, unsigned r, unsigned size,
			 uint64_t imm)
{
	switch (o) {
	case O_REG: read_guest_reg(t, in, r, size, HAX); break;
	case O_IMM: emit_mov_imm(&t->e, HAX, imm); break;
	default:
		emit_address(t, in, off);
		emit_mem_load(t, in, off, size);
		break;
	}
}

/* lf.cin = the guest's CF now (what INC/DEC keep, ADC/SBB add).  Storing
 * it never changes the flags lf records: for INC/DEC, cin is their CF. */
static void emit_cin(struct tr *t)
{
	struct emit *e = &t->e;
	if (t->hf & HF_CF) {
		emit_setcc_mem(e, 2, MEM_C(lf.cin)); /* SETB */
	} else if (t->lf_op == LF_LOGIC) {
		emit_mov_mem_imm(e, 1, MEM_C(lf.cin), 0);
	} else {
		spill_volatile(t);
		emit_mov_rr(e, 8, HARG0, HBX);
		emit_call(e, (const void *)jit_flag_cf);
		emit_store(e, 1, HAX, MEM_C(lf.cin));
		t->hf = 0;
	}
}

/* op mem, reg/imm: inline on a TLB hit for writing, else the interpreter
 * runs it (faults, MMIO, code pages); the host flags are unknown after. */
static void tr_alu_rmw(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p, bool flags_live)
{
	struct emit *e = &t->e;
	unsigned size = p->size;
	if (p->src == O_REG && is_cached(t, p->src_reg) && !high_byte(in, p->src_reg, size))
		reg_host(t, p->src_reg); /* loaded on both paths */
	emit_address(t, in, off);
	struct stub *s = new_stub(t);
	*s = (struct stub){.type = STUB_EXEC, .len = in->len, .rip_delta = (int32_t)off - (int32_t)t->synced, .in = in};
	emit_tlb(t, s, true, size);
	emit_mov_rr(e, 8, HDI, HAX);
	emit_load(e, size, HAX, hmem_at(HDI, 0));
	if (p->src == O_IMM)
		emit_mov_imm(e, HCX, p->imm);
	else
		read_guest_reg(t, in, p->src_reg, size, HCX);
	bool arith = p->aop == 0 || p->aop == 5;
	if (flags_live && arith)
		emit_mov_rr(e, 8, HDX, HAX);
	emit_alu_rr(e, size, p->aop, HAX, HCX);
	if (flags_live)
		store_flags(t, p->aop == 0 ? LF_ADD : arith ? LF_SUB : LF_LOGIC, size, arith);
	emit_store(e, size, HAX, hmem_at(HDI, 0));
	s->join = e->p;
	t->hf = 0;
	t->lf_op = LF_UNKNOWN;
}

static void tr_alu(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p, bool flags_live)
{
	struct emit *e = &t->e;
	unsigned size = p->size;
	if (p->dst == O_MEM && p->writeback) {
		tr_alu_rmw(t, in, off, p, flags_live);
		return;
	}
	bool carry = p->aop == 2 || p->aop == 3;
	/* ADC/SBB: with register operands the host's CF, when it is the
	 * guest's, survives the moves below; else it goes through lf.cin. */
	bool cf_kept = carry && (t->hf & HF_CF) && p->src != O_MEM;
	if (carry && (!cf_kept || flags_live))
		emit_cin(t);
	static const uint8_t lf_of_aop[8] = {LF_ADD, LF_LOGIC, LF_ADC, LF_SBB, LF_LOGIC, LF_SUB, LF_LOGIC, LF_SUB};
	bool arith = p->aop == 0 || p->aop == 5 || p->aop == 7 || carry;
	if ((size == 4 || size == 8) && p->dst == O_REG && is_cached(t, p->dst_reg) &&
	    (p->src == O_IMM || (p->src == O_REG && is_cached(t, p->src_reg))) && (p->writeback || !flags_live)) {
		/* on the host registers themselves */
		unsigned hd = reg_host(t, p->dst_reg), hs = p->src == O_REG ? reg_host(t, p->src_reg) : HNONE;
		if (flags_live && arith) {
			emit_mov_rr(e, size, HDX, hd);
			if (hs != HNONE)
				emit_mov_rr(e, size, HCX, hs);
			else
				emit_mov_imm(e, HCX, p->imm);
		}
		if (carry && !cf_kept) {
			emit_rm(e, 1, 0x80, 7, MEM_C(lf.cin));
			emit_byte(e, 1);
			emit_byte(e, 0xf5);
		}
		if (!p->writeback && p->aop == 4) { /* TEST */
			if (hs != HNONE) {
				emit_rr(e, size, 0x85, hs, hd);
			} else {
				emit_rr(e, size, 0xf7, 0, hd);
				emit_u32(e, (uint32_t)p->imm);
			}
		} else if (hs != HNONE) {
			emit_alu_rr(e, size, p->aop, hd, hs);
		} else {
			emit_alu_ri(e, size, p->aop, hd, (int32_t)p->imm);
		}
		t->hf = HF_ALL;
		if (flags_live)
			store_flags_res(t, hd, lf_of_aop[p->aop], size, arith);
		else
			t->lf_op = LF_UNKNOWN;
		if (p->writeback)
			t->dirty |= (uint16_t)(1u << p->dst_reg);
		return;
	}
	/* src -> RCX, dst -> RAX (a memory operand first: its load uses RAX) */
	if (p->src == O_MEM) {
		load_operand(t, in, off, O_MEM, 0, size, 0);
		emit_mov_rr(e, 8, HCX, HAX);
		load_operand(t, in, off, p->dst, p->dst_reg, size, 0);
	} else {
		load_operand(t, in, off, p->dst, p->dst_reg, size, 0);
		if (p->src == O_IMM)
			emit_mov_imm(e, HCX, p->imm);
		else
			read_guest_reg(t, in, p->src_reg, size, HCX);
	}
	if (flags_live && arith)
		emit_mov_rr(e, 8, HDX, HAX);
	if (carry && !cf_kept) { /* CMP byte [lf.cin], 1; CMC: CF = cin */
		emit_rm(e, 1, 0x80, 7, MEM_C(lf.cin));
		emit_byte(e, 1);
		emit_byte(e, 0xf5);
	}
	emit_alu_rr(e, size, p->aop == 7 ? 5 : p->aop, HAX, HCX);
	t->hf = HF_ALL;
	if (flags_live)
		store_flags(t, lf_of_aop[p->aop], size, arith);
	else
		t->lf_op = LF_UNKNOWN;
	if (p->writeback)
		write_guest_reg(t, in, p->dst_reg, size, HAX);
}

static void tr_incdec(struct tr *t, const struct insn *in, const struct plan *p, bool flags_live)
{
	struct emit *e = &t->e;
	uint8_t keep_cf = t->hf & HF_CF; /* the host's INC/DEC keep CF too */
	if (flags_live)
		emit_cin(t);
	unsigned r = dst_begin(t, in, p->dst_reg, p->size, true);
	emit_incdec(e, p->size, p->aop == 1, r);
	t->hf = (uint8_t)(HF_ZF | HF_SF | HF_OF | HF_PF | keep_cf);
	if (flags_live) /* the lazy flags of INC/DEC need the result only */
		store_flags_res(t, r, p->aop ? LF_DEC : LF_INC, p->size, false);
	else
		t->lf_op = LF_UNKNOWN;
	dst_done(t, in, p->dst_reg, p->size, r);
}

static void tr_shift(struct tr *t, const struct insn *in, const struct plan *p, bool flags_live)
{
	struct emit *e = &t->e;
	unsigned r = dst_begin(t, in, p->dst_reg, p->size, true);
	if (flags_live) {
		emit_mov_rr(e, p->size == 8 ? 8 : 4, HDX, r); /* truncated to the size */
		emit_mov_imm(e, HCX, p->imm);
	}
	emit_shift_ri(e, p->size, p->aop, r, (uint8_t)p->imm);
	t->hf = HF_CF | HF_ZF | HF_SF | HF_PF;
	if (flags_live)
		store_flags_res(t, r, p->aop == 4 ? LF_SHL : p->aop == 5 ? LF_SHR : LF_SAR, p->size, true);
	else
		t->lf_op = LF_UNKNOWN;
	dst_done(t, in, p->dst_reg, p->size, r);
}

/* SHL/SHR/SAR reg, CL: a zero count changes no flag (and only zero-extends
 * a 32-bit register), so the flags are unknown after. */
static void tr_shift_cl(struct tr *t, const struct insn *in, const struct plan *p)
{
	struct emit *e = &t->e;
	/* both arms below must leave the register cache alike: load first */
	if (is_cached(t, p->dst_reg))
		reg_host(t, p->dst_reg);
	if (is_cached(t, R_CX))
		emit_mov_rr(e, 4, HCX, reg_host(t, R_CX));
	else
		emit_load(e, 4, HCX, GREG(R_CX));
	emit_alu_ri(e, 4, 4, HCX, p->size == 8 ? 63 : 31);
	uint8_t *zero = emit_jcc(e, 4); /* JE */
	read_guest_reg(t, in, p->dst_reg, p->size, HAX);
	emit_mov_rr(e, 8, HDX, HAX);
	emit_rr(e, p->size, 0xd3, p->aop, HAX);
	store_flags(t, p->aop == 4 ? LF_SHL : p->aop == 5 ? LF_SHR : LF_SAR, p->size, true);
	write_guest_reg(t, in, p->dst_reg, p->size, HAX);
	uint8_t *done = emit_jmp(e);
	emit_patch(zero, e->p);
	if (p->size == 4) {
		read_guest_reg(t, in, p->dst_reg, 4, HAX);
		write_guest_reg(t, in, p->dst_reg, 4, HAX);
	}
	emit_patch(done, e->p);
	t->hf = 0;
	t->lf_op = LF_UNKNOWN;
}

static void tr_mov(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p)
{
	if (p->dst == O_MEM) {
		if (p->src == O_IMM)
			emit_mov_imm(&t->e, STORE_VAL, p->imm);
		else
			read_guest_reg(t, in, p->src_reg, p->size, STORE_VAL);
		emit_address(t, in, off);
		emit_mem_store(t, in, off, p->size);
		return;
	}
	unsigned h = in_place_write(t, p->dst_reg, p->size);
	if (h != HNONE && (p->src == O_IMM || (p->src == O_REG && is_cached(t, p->src_reg)))) {
		if (p->src == O_IMM)
			emit_mov_imm(&t->e, h, p->imm); /* a 32-bit immediate zero-extends */
		else
			emit_mov_rr(&t->e, p->size, h, reg_host(t, p->src_reg));
		mark_written(t, p->dst_reg);
		return;
	}
	if (h != HNONE && p->src == O_MEM) {
		emit_address(t, in, off);
		emit_mem_load_to(t, in, off, p->size, h);
		mark_written(t, p->dst_reg);
		return;
	}
	load_operand(t, in, off, p->src, p->src_reg, p->size, p->imm);
	write_guest_reg(t, in, p->dst_reg, p->size, HAX);
}

static void tr_movx(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p)
{
	unsigned h = in_place_write(t, p->dst_reg, p->size);
	if (h != HNONE && p->src == O_MEM && !p->sign) { /* MOVZX: the load zero-extends */
		emit_address(t, in, off);
		emit_mem_load_to(t, in, off, p->src_size, h);
		mark_written(t, p->dst_reg);
		return;
	}
	load_operand(t, in, off, p->src, p->src_reg, p->src_size, 0);
	if (p->sign) {
		emit_movsx(&t->e, p->src_size, HAX, HAX);
		if (p->size == 4)
			emit_mov_rr(&t->e, 4, HAX, HAX); /* zero-extends */
	}
	write_guest_reg(t, in, p->dst_reg, p->size, HAX);
}

static void tr_lea(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p)
{
	/* the address size truncates first, then the operand size */
	unsigned size = in->asz == 4 || p->size == 4 ? 4 : 8;
	unsigned r = dst_begin(t, in, p->dst_reg, p->size, false);
	if (in->base == REG_RIP) {
		emit_rip_relative(t, in, off, size, r);
		dst_done(t, in, p->dst_reg, p->size, r);
		return;
	}
	struct hmem m = {.base = HNONE, .index = HNONE, .disp = in->disp};
	if (in->base != REG_NONE)
		m.base = (uint8_t)reg_full(t, in->base, HSI);
	if (in->index != REG_NONE) {
		m.index = (uint8_t)reg_full(t, in->index, HDX);
		m.scale = in->scale;
	}
	emit_lea(&t->e, size, r, m);
	dst_done(t, in, p->dst_reg, p->size, r);
}

/* ROL/ROR by an immediate.  Where nothing reads its flags (translate())
 * the lazy flags are left as they are; else they are folded into RFLAGS
 * with the rotate's CF and OF (a call). */
static void tr_rot(struct tr *t, const struct insn *in, const struct plan *p, bool flags_live)
{
	struct emit *e = &t->e;
	unsigned r = dst_begin(t, in, p->dst_reg, p->size, true);
	emit_shift_ri(e, p->size, p->aop, r, (uint8_t)p->imm);
	dst_done(t, in, p->dst_reg, p->size, r);
	t->hf = 0;
	if (flags_live) {
		emit_pushfq(e);
		emit_pop(e, HARG1);
		spill_volatile(t);
		emit_mov_rr(e, 8, HARG0, HBX);
		emit_call(e, (const void *)jit_rot_flags);
		t->lf_op = LF_UNKNOWN;
	}
}

static void tr_imul(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p, bool flags_live)
{
	struct emit *e = &t->e;
	unsigned src = HAX;
	if (p->src == O_REG && is_cached(t, p->src_reg) && p->size >= 4)
		src = reg_host(t, p->src_reg);
	else
		load_operand(t, in, off, p->src, p->src_reg, p->size, 0);
	int32_t imm32 = (int32_t)p->imm;
	bool imm_fits = p->size == 4 || (uint64_t)(int64_t)imm32 == p->imm;
	unsigned h = p->sign ? (imm_fits ? in_place_write(t, p->dst_reg, p->size) : HNONE)
			     : in_place(t, p->dst_reg, p->size);
	if (h != HNONE && p->sign) {
		emit_rr(e, p->size, 0x69, h, src); /* IMUL h, src, imm32 */
		emit_u32(e, (uint32_t)imm32);
	} else if (h != HNONE) {
		emit_rr(e, p->size, 0x0faf, h, src); /* IMUL h, src */
	} else {
		if (src != HAX)
			emit_mov_rr(e, 8, HAX, src);
		if (p->sign)
			emit_mov_imm(e, HCX, p->imm);
		else
			read_guest_reg(t, in, p->dst_reg, p->size, HCX);
		emit_rr(e, p->size, 0x0faf, HAX, HCX); /* IMUL rax, rcx */
	}
	unsigned r = h != HNONE ? h : HAX;
	t->hf = HF_CF | HF_OF;
	if (flags_live) { /* LF_MUL: src1 = the product did not fit (CF) */
		emit_rr(e, 4, 0x0f92, 0, HDX); /* SETB dl */
		emit_rr(e, 4, 0x0fb6, HDX, HDX);
		emit_mov_imm(e, HCX, 0);
		store_flags_res(t, r, LF_MUL, p->size, true);
	} else {
		t->lf_op = LF_UNKNOWN;
	}
	dst_done(t, in, p->dst_reg, p->size, r);
}

static void tr_mul(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p, bool flags_live)
{
	struct emit *e = &t->e;
	load_operand(t, in, off, p->src, p->src_reg, p->size, 0);
	emit_mov_rr(e, 8, HCX, HAX);
	read_guest_reg(t, in, R_AX, p->size, HAX);
	emit_rr(e, p->size, 0xf7, p->sign ? 5 : 4, HCX); /* MUL/IMUL rcx: rdx:rax */
	write_guest_reg(t, in, R_AX, p->size, HAX);
	write_guest_reg(t, in, R_DX, p->size, HDX);
	t->hf = HF_CF | HF_OF;
	if (flags_live) { /* LF_MUL: src1 = the product did not fit (CF) */
		emit_rr(e, 4, 0x0f92, 0, HDX); /* SETB dl */
		emit_rr(e, 4, 0x0fb6, HDX, HDX);
		emit_mov_imm(e, HCX, 0);
		store_flags_res(t, HAX, LF_MUL, p->size, true);
	} else {
		t->lf_op = LF_UNKNOWN;
	}
}

static void tr_not_neg(struct tr *t, const struct insn *in, const struct plan *p, bool flags_live)
{
	struct emit *e = &t->e;
	unsigned r = dst_begin(t, in, p->dst_reg, p->size, true);
	bool neg = p->kind == K_NEG;
	if (neg && flags_live) {
		emit_mov_rr(e, p->size == 8 ? 8 : 4, HCX, r); /* truncated to the size */
		emit_mov_imm(e, HDX, 0);
	}
	emit_rr(e, p->size, p->size == 1 ? 0xf6 : 0xf7, neg ? 3 : 2, r);
	if (neg) {
		t->hf = HF_ALL;
		if (flags_live)
			store_flags_res(t, r, LF_SUB, p->size, true);
		else
			t->lf_op = LF_UNKNOWN;
	}
	dst_done(t, in, p->dst_reg, p->size, r);
}

/* The condition cc into the host's flags as "NE" when the host flags do not
 * hold it; returns the host condition to test. */
static unsigned host_cond(struct tr *t, unsigned cc)
{
	struct emit *e = &t->e;
	if ((t->hf & cc_needs[cc >> 1]) == cc_needs[cc >> 1])
		return cc;
	spill_volatile(t);
	emit_mov_rr(e, 8, HARG0, HBX);
	emit_mov_imm(e, HARG1, cc);
	emit_call(e, (const void *)jit_cond);
	emit_alu_rr(e, 1, 4, HAX, HAX);
	t->hf = 0;
	return 5; /* NE */
}

static void tr_setcc(struct tr *t, const struct insn *in, const struct plan *p)
{
	unsigned cc = host_cond(t, p->aop);
	emit_rr(&t->e, 4, 0x0f90 + cc, 0, HAX); /* SETcc al */
	write_guest_reg(t, in, p->dst_reg, 1, HAX);
}

static void tr_cmov(struct tr *t, const struct insn *in, const struct plan *p)
{
	unsigned cc = host_cond(t, p->aop);
	/* moves and loads below: the flags stay */
	unsigned h = in_place(t, p->dst_reg, p->size); /* a false 32-bit CMOV zero-extends too */
	unsigned src = HCX;
	if (h != HNONE && is_cached(t, p->src_reg))
		src = reg_host(t, p->src_reg);
	else
		read_guest_reg(t, in, p->src_reg, p->size, HCX);
	if (h != HNONE) {
		emit_rr(&t->e, p->size, 0x0f40 + cc, h, src);
		mark_written(t, p->dst_reg);
		return;
	}
	read_guest_reg(t, in, p->dst_reg, p->size, HAX);
	emit_rr(&t->e, p->size, 0x0f40 + cc, HAX, HCX);
	write_guest_reg(t, in, p->dst_reg, p->size, HAX);
}

/* The stack address of [SP + delta] (stack width = operand size here) into RSI. */
static void stack_address(struct tr *t, unsigned size, int32_t delta)
{
	t->hf = 0;
	t->addr = HSI;
	if (is_cached(t, R_SP))
		emit_mov_rr(&t->e, size, HSI, reg_host(t, R_SP));
	else
		emit_load(&t->e, size, HSI, GREG(R_SP));
	if (delta)
		emit_alu_ri(&t->e, size, 0, HSI, delta);
	if (!t->long64)
		emit_alu_rm(&t->e, 4, 0, HSI, MEM_C(segbase[S_SS]));
}

static void tr_push(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p)
{
	read_guest_reg(t, in, p->dst_reg, p->size, STORE_VAL);
	stack_address(t, p->size, -(int32_t)p->size);
	emit_mem_store(t, in, off, p->size)->sp_delta = -(int32_t)p->size;
	sp_adjust(t, p->size, -(int32_t)p->size);
}

static void tr_pop(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p)
{
	stack_address(t, p->size, 0);
	emit_mem_load(t, in, off, p->size);
	sp_adjust(t, p->size, (int32_t)p->size);
	write_guest_reg(t, in, p->dst_reg, p->size, HAX);
}

static void tr_jcc(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p)
{
	struct emit *e = &t->e;
	unsigned cc = p->aop;
	uint8_t *taken;
	int64_t next = (int64_t)off + in->len;
	if (!t->loop_head)
		spill_all(t); /* stores: the host flags stay */
	if (t->loop_head && next + (int64_t)p->imm == 0) {
		/* the loop goes on in line, the exit is out of line */
		uint8_t *not_taken = emit_jcc(e, host_cond(t, cc) ^ 1);
		uint16_t dirty = t->dirty, loaded = t->loaded;
		uint32_t synced = t->synced;
		emit_back_edge(t);
		emit_patch(not_taken, e->p);
		t->synced = synced;
		t->dirty = dirty, t->loaded = loaded;
		emit_exit_to(t, next, false, in, off);
		return;
	}
	taken = emit_jcc(e, host_cond(t, cc));
	uint16_t dirty = t->dirty, loaded = t->loaded; /* the not-taken exit spills */
	uint32_t synced = t->synced;
	emit_exit_to(t, next, false, in, off);
	emit_patch(taken, e->p);
	t->synced = synced;
	t->dirty = dirty, t->loaded = loaded;
	emit_exit_to(t, next + (int64_t)p->imm, t->long64, in, off);
}

static void tr_call(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p)
{
	struct emit *e = &t->e;
	int64_t next = (int64_t)off + in->len;
	int64_t target = next + (int64_t)p->imm;
	sync_rip(t, off);
	spill_all(t);
	if (t->long64 && ((int64_t)t->page_off + target < 0 || (int64_t)t->page_off + target >= 4096)) {
		emit_load(e, 8, HAX, MEM_C(rip));
		emit_alu_ri(e, 8, 0, HAX, (int32_t)(target - off));
		emit_mov_rr(e, 8, HDX, HAX);
		emit_shift_ri(e, 8, 4, HDX, 16);
		emit_shift_ri(e, 8, 7, HDX, 16);
		emit_alu_rr(e, 8, 7, HDX, HAX);
		uint8_t *ok = emit_jcc(e, 4);
		emit_interpret(e, in, 1);
		jump_to_exit(t);
		emit_patch(ok, e->p);
	}
	emit_load(e, p->size, STORE_VAL, MEM_C(rip));
	emit_alu_ri(e, p->size, 0, STORE_VAL, in->len);
	stack_address(t, p->size, -(int32_t)p->size);
	struct stub *s = emit_mem_store(t, in, off, p->size);
	s->sp_delta = -(int32_t)p->size;
	s->exit_delta = (int32_t)(target - (int64_t)off);
	sp_adjust(t, p->size, -(int32_t)p->size);
	emit_exit_to(t, target, false, in, off);
}

/* A 64-bit branch target in RAX that is not canonical: #GP from the
 * interpreter, which runs the branch again. */
static void check_target(struct tr *t, const struct insn *in)
{
	struct emit *e = &t->e;
	if (!t->long64)
		return;
	emit_mov_rr(e, 8, HDX, HAX);
	emit_shift_ri(e, 8, 4, HDX, 16);
	emit_shift_ri(e, 8, 7, HDX, 16);
	emit_alu_rr(e, 8, 7, HDX, HAX);
	uint8_t *ok = emit_jcc(e, 4);
	emit_interpret(e, in, 1);
	jump_to_exit(t);
	emit_patch(ok, e->p);
}

static void tr_ret(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p)
{
	sync_rip(t, off);
	spill_all(t);
	stack_address(t, p->size, 0);
	emit_mem_load(t, in, off, p->size);
	check_target(t, in);
	sp_adjust(t, p->size, (int32_t)p->size);
	emit_store(&t->e, 8, HAX, MEM_C(rip));
	jump_to_next(t, true);
}

static void tr_jmp_indirect(struct tr *t, const struct insn *in, uint32_t off, const struct plan *p)
{
	sync_rip(t, off);
	spill_all(t);
	load_operand(t, in, off, p->src, p->src_reg, p->size, 0);
	check_target(t, in);
	emit_store(&t->e, 8, HAX, MEM_C(rip));
	jump_to_next(t, true);
}

static int64_t insn_bytes(const struct insn *insn, unsigned n)
{
	int64_t len = 0;
	for (unsigned i = 0; i < n; i++)
		len += insn[i].len;
	return len;
}

static void choose_cached(struct tr *t, const struct insn *insn, const struct plan *plans, unsigned n,
			  unsigned min_uses)
{
	unsigned uses[16] = {0};
	for (unsigned i = 0; i < n; i++) {
		const struct plan *p = &plans[i];
		const struct insn *in = &insn[i];
		if (p->kind == K_FALLBACK)
			continue;
		if (p->dst == O_REG || p->kind == K_INCDEC || p->kind == K_SHIFT || p->kind == K_SHIFT_CL ||
		    p->kind == K_PUSH || p->kind == K_POP)
			count_reg(uses, p->dst_reg);
		if (p->src == O_REG)
			count_reg(uses, p->src_reg);
		if (p->dst == O_MEM || p->src == O_MEM || p->kind == K_LEA) {
			count_reg(uses, in->base);
			count_reg(uses, in->index);
		}
		if (p->kind == K_PUSH || p->kind == K_POP || p->kind == K_CALL || p->kind == K_RET)
			count_reg(uses, R_SP);
		if (p->kind == K_SHIFT_CL)
			count_reg(uses, R_CX);
		if (p->kind == K_MUL) {
			count_reg(uses, R_AX);
			count_reg(uses, R_DX);
		}
	}
	if (!t->long64)
		uses[R_SP] = 0; /* a 32-bit stack pointer keeps its upper half (sp_adjust) */
	memset(t->host_of, HNONE, sizeof(t->host_of));
	for (size_t k = 0; k < sizeof(cache_pool); k++) {
		unsigned best = 16;
		for (unsigned g = 0; g < 16; g++)
			if (t->host_of[g] == HNONE && uses[g] >= min_uses && (best == 16 || uses[g] > uses[best]))
				best = g;
		if (best == 16)
			break;
		t->host_of[best] = cache_pool[k];
	}
}

/* Translate the block into the cache; NULL if the cache is full. */
static const uint8_t *translate(struct softcpu *c, const struct insn *insn, unsigned n)
{
	struct jit *j = c->jit;
	static __thread struct tr t; /* ~4 KiB of stubs: off the vCPU thread's stack */
	t = (struct tr){.j = j, .long64 = c->long64, .user = c->cpl == 3, .stack_bits = c->stack_bits,
			.lf_op = LF_UNKNOWN};
	t.page_off = (c->segbase[S_CS] + c->rip) & 0xfff;
	t.mode = mode_of(c);
	uint8_t *start = j->rw + j->used;
	t.e = (struct emit){.p = start, .end = j->rw + JIT_SLICE_BYTES - 64};
	if (t.e.end > start + JIT_BLOCK_MAX_BYTES)
		t.e.end = start + JIT_BLOCK_MAX_BYTES;

	struct plan plans[n];
	memset(plans, 0, sizeof(plans)); /* GCC 12 cannot tell plan_insn fills each */
	bool flags_live[n];
	unsigned ninline = 0;
	for (unsigned i = 0; i < n; i++) {
		plan_insn(&t, &insn[i], &plans[i]);
		ninline += plans[i].kind != K_FALLBACK;
	}
	/* INC/DEC keep CF: when the instruction before leaves the guest's CF
	 * in the host's CF (as the emitters below set t->hf), they take it
	 * from there and write all the lazy flags, so the flags before them
	 * need not be stored. */
	bool cf_in_host = false, sse_checked = false;
	for (unsigned i = 0; i < n; i++) {
		struct plan *p = &plans[i];
		if (p->kind == K_INCDEC && cf_in_host)
			p->reads = false, p->writes_all = true;
		/* ADC/SBB with register or immediate operands take that CF too */
		if (p->kind == K_ALU && (p->aop == 2 || p->aop == 3) && p->src != O_MEM && cf_in_host)
			p->reads = false;
		/* The SSE state check: once, until an interpreter call (which may
		 * change CR0 or CR4). */
		if (p->kind == K_SSE) {
			p->state_check = !sse_checked;
			p->may_fault |= p->state_check;
		}
		sse_checked = p->kind == K_SSE || (sse_checked && p->kind != K_FALLBACK);
		cf_in_host = (p->kind == K_ALU && !(p->dst == O_MEM && p->writeback)) || p->kind == K_SHIFT ||
			     p->kind == K_IMUL || p->kind == K_NEG ||
			     ((p->kind == K_INCDEC || p->kind == K_NOT) && cf_in_host);
	}
	/* Dead flags: an instruction's flags are dead when the next flag
	 * writer overwrites them all before anything reads them or faults. */
	bool live = true;
	for (unsigned i = n; i-- > 0;) {
		flags_live[i] = live;
		struct plan *p = &plans[i];
		if (p->reads || p->may_fault)
			live = true;
		else if (p->writes_all)
			live = false;
	}

	const struct plan *lp = &plans[n ? n - 1 : 0];
	bool loop = n && (lp->kind == K_JCC || lp->kind == K_JMP) && insn_bytes(insn, n) + (int64_t)lp->imm == 0;
	choose_cached(&t, insn, plans, n, loop ? 1 : 2);
	struct emit *e = &t.e;
	if (loop) {
		for (unsigned g = 0; g < 16; g++)
			if (t.host_of[g] != HNONE)
				t.cached |= (uint16_t)(1u << g);
		emit_reload(&t, t.cached);
		emit_mov_imm(e, LOOP_BUDGET, LOOP_CHECK_EVERY);
		t.loaded = t.dirty = t.cached;
		t.loop_head = e->p;
	}
	if (ninline)
		emit_alu_mi(e, 8, 0, MEM_C(icount), (int32_t)ninline);
	uint32_t off = 0;
	bool exited = false;
	for (unsigned i = 0; i < n; i++) {
		const struct insn *in = &insn[i];
		const struct plan *p = &plans[i];
		if (p->kind == K_FALLBACK) {
			/* the interpreter runs the whole run of them in one call */
			unsigned k = 1;
			uint32_t len = in->len;
			while (i + k < n && plans[i + k].kind == K_FALLBACK)
				len += insn[i + k++].len;
			i += k - 1;
			emit_fallback(&t, in, k, off, len, i == n - 1);
			off += len;
			exited = i == n - 1;
			if (exited)
				break;
			continue;
		}
		prepare_high_bytes(&t, in, p);
		switch (p->kind) {
		case K_ALU: tr_alu(&t, in, off, p, flags_live[i]); break;
		case K_INCDEC: tr_incdec(&t, in, p, flags_live[i]); break;
		case K_SHIFT: tr_shift(&t, in, p, flags_live[i]); break;
		case K_SHIFT_CL: tr_shift_cl(&t, in, p); break;
		case K_NOP: break;
		case K_MOV: tr_mov(&t, in, off, p); break;
		case K_MOVX: tr_movx(&t, in, off, p); break;
		case K_LEA: tr_lea(&t, in, off, p); break;
		case K_PUSH: tr_push(&t, in, off, p); break;
		case K_POP: tr_pop(&t, in, off, p); break;
		case K_JCC: tr_jcc(&t, in, off, p); exited = true; break;
		case K_JMP: emit_exit_to(&t, (int64_t)off + in->len + (int64_t)p->imm, t.long64, in, off); exited = true; break;
		case K_CALL: tr_call(&t, in, off, p); exited = true; break;
		case K_RET: tr_ret(&t, in, off, p); exited = true; break;
		case K_JMP_INDIRECT: tr_jmp_indirect(&t, in, off, p); exited = true; break;
		case K_ROT: tr_rot(&t, in, p, flags_live[i]); break;
		case K_IMUL: tr_imul(&t, in, off, p, flags_live[i]); break;
		case K_MUL: tr_mul(&t, in, off, p, flags_live[i]); break;
		case K_NOT: case K_NEG: tr_not_neg(&t, in, p, flags_live[i]); break;
		case K_SETCC: tr_setcc(&t, in, p); break;
		case K_CMOV: tr_cmov(&t, in, p); break;
		case K_SSE: tr_sse(&t, in, off, p); break;
		default: break;
		}
		t.nocache = 0;
		off += in->len;
		if (exited)
			break;
	}
	if (!exited)
		emit_exit_to(&t, off, false, NULL, 0);
	for (unsigned i = 0; i < t.nstubs; i++)
		emit_stub(&t, &t.stubs[i]);
	if (emit_full(e) || t.overflow)
		return NULL;
	j->used = (size_t)(e->p - j->rw + 15) & ~(size_t)15;
	return j->rx + (start - j->rw);
}

/* The previous block asked to be chained to its branch target: if this is
 * that target, seen the same way, fill the slot. */
static void chain_pending(struct softcpu *c, struct jit *j, const uint8_t *code, uint8_t mode)
{
	if (j->pending_flush_gen == j->flush_gen && j->pending_rip == c->rip &&
	    j->pending_cs_base == c->segbase[S_CS] && j->pending_tlb_gen == c->tlb_gen && j->pending_mode == mode) {
		uint64_t v = (uint64_t)(uintptr_t)code;
		memcpy(j->pending_slot, &v, 8);
	}
	j->pending_slot = NULL;
}

const uint8_t *jit_code(const struct softcpu *c, const struct jit_ref *ref)
{
	const struct jit *j = c->jit;
	if (!ref->code || ref->flush_gen != j->flush_gen || ref->mode != mode_of(c) || c->code_bits == 16)
		return NULL;
	return ref->code;
}

bool jit_run(struct softcpu *c, struct jit_ref *ref, const struct insn *insn, unsigned n)
{
	struct jit *j = c->jit;
	if (c->code_bits == 16)
		return false; /* real mode and 16-bit code: the interpreter */
	uint8_t mode = mode_of(c);
	if (!ref->code || ref->flush_gen != j->flush_gen || ref->mode != mode) {
		const uint8_t *code = translate(c, insn, n);
		if (!code) {
			reset_cache(j);
			j->full_flushes++;
			code = translate(c, insn, n);
			if (!code)
				return false;
		}
		j->translated++;
		*ref = (struct jit_ref){.code = code, .flush_gen = j->flush_gen, .mode = mode};
	}
	if (j->pending_slot)
		chain_pending(c, j, ref->code, mode);
	j->seen_code_epoch = atomic_load_explicit(&c->m->code_epoch, memory_order_acquire);
	j->code_epoch = &c->m->code_epoch;
	j->dirty_generation = c->m->dirty_generation;
	j->enter(c, ref->code, j);
	if (j->pending_slot) {
		j->pending_rip = c->rip;
		j->pending_cs_base = c->segbase[S_CS];
		j->pending_tlb_gen = c->tlb_gen;
		j->pending_flush_gen = j->flush_gen;
		j->pending_mode = mode_of(c);
	}
	return true;
}
