/* cpu.h - the software x86-64 CPU: architectural state of one vCPU, the
 * machine state its vCPUs share (RAM, buses, code-page tracking), and the
 * interface the engine (engine_soft.c) and the tests drive it through.
 *
 * Structure of the CPU (see each file's header):
 *   decode.c  bytes -> struct insn; pure, no guest state beyond the mode
 *   exec.c    runs decoded instructions (the interpreter; a JIT may replace it)
 *   mmu.c     linear -> physical (4-level paging, software TLB), RAM and MMIO
 *   except.c  exception and interrupt delivery (IVT, IDT gates, #DF, shutdown)
 *   cpu.c     the run loop, the decoded-block cache, reset/boot state, MSRs
 * Everything the guest controls (registers, descriptor tables, page tables,
 * instruction bytes) is hostile: a bad value raises a guest exception, never
 * a host crash or an access outside guest RAM.
 */
#ifndef MINIVM_SOFTCPU_CPU_H
#define MINIVM_SOFTCPU_CPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"

enum { R_AX, R_CX, R_DX, R_BX, R_SP, R_BP, R_SI, R_DI, R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15 };
/* Segment registers in the order the instruction encoding numbers them. */
enum { S_ES, S_CS, S_SS, S_DS, S_FS, S_GS, S_NSEG };

/* RFLAGS bits */
#define F_CF 0x0001u
#define F_PF 0x0004u
#define F_AF 0x0010u
#define F_ZF 0x0040u
#define F_SF 0x0080u
#define F_TF 0x0100u
#define F_IF 0x0200u
#define F_DF 0x0400u
#define F_OF 0x0800u
#define F_IOPL 0x3000u
#define F_NT 0x4000u
#define F_RF 0x10000u
#define F_VM 0x20000u
#define F_AC 0x40000u
#define F_ID 0x200000u
#define F_ARITH (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

#define CR0_PE 0x1u
#define CR0_MP 0x2u
#define CR0_EM 0x4u
#define CR0_TS 0x8u
#define CR0_ET 0x10u
#define CR0_NE 0x20u
#define CR0_WP 0x10000u
#define CR0_AM 0x40000u
#define CR0_PG 0x80000000u
#define CR4_PSE 0x10u
#define CR4_PAE 0x20u
#define CR4_PGE 0x80u
#define CR4_OSFXSR 0x200u
#define CR4_OSXMMEXCPT 0x400u
#define EFER_SCE 0x1u
#define EFER_LME 0x100u
#define EFER_LMA 0x400u
#define EFER_NXE 0x800u

/* Exception vectors */
enum {
	EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5, EXC_UD = 6, EXC_NM = 7,
	EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12, EXC_GP = 13, EXC_PF = 14, EXC_MF = 16,
	EXC_AC = 17, EXC_XM = 19,
};

/* A segment register with its hidden part.  attr holds the descriptor's
 * bytes 5-6 without the limit bits: bits 0-7 the access byte (type, S, DPL,
 * P), bits 12-15 the flags (AVL, L, D/B, G); e.g. 0xa09b = 64-bit code. */
struct softcpu_seg {
	uint64_t base;
	uint32_t limit;
	uint16_t sel;
	uint16_t attr;
};
#define SEG_ATTR_P 0x80u
#define SEG_ATTR_S 0x10u
#define SEG_ATTR_L 0x2000u
#define SEG_ATTR_DB 0x4000u
#define SEG_ATTR_G 0x8000u

struct softcpu_dtr {
	uint64_t base;
	uint16_t limit;
};

/* Arithmetic flags are computed lazily: the last flag-setting operation is
 * recorded and each flag is derived when something reads it. */
enum lazy_op {
	LF_NONE,  /* the flags are in rflags */
	LF_ADD,   /* res = src1 + src2 */
	LF_ADC,   /* res = src1 + src2 + cin */
	LF_SUB,   /* res = src1 - src2 (also CMP, NEG with src1 = 0) */
	LF_SBB,   /* res = src1 - src2 - cin */
	LF_LOGIC, /* CF = OF = 0 */
	LF_INC,   /* res = src1 + 1, CF = cin (preserved); the flags need res only */
	LF_DEC,   /* res = src1 - 1, CF = cin; the same */
	LF_SHL,   /* res = src1 << src2 (count 1..63, never 0) */
	LF_SHR,   /* res = src1 >> src2 */
	LF_SAR,   /* res = src1 >> src2, arithmetic */
	LF_MUL,   /* MUL/IMUL: res = low half, CF = OF = src1 (the product did not fit) */
};

struct lazy_flags {
	uint64_t res, src1, src2;
	uint8_t op;   /* enum lazy_op */
	uint8_t size; /* operand size in bytes */
	uint8_t cin;  /* carry in (ADC/SBB), preserved CF (INC/DEC) */
};

#define SOFTCPU_TLB_SIZE 1024
#define SOFTCPU_TLB_VICTIMS 8
#define SOFTCPU_TLB_LARGE_MAX 32
#define SOFTCPU_JUMP_PAGE_BITS 4096
/* One software TLB entry (32 bytes: the fast path indexes it with a shift).
 * A tag is the linear page number that may use the fast path for reads /
 * writes, or TLB_INVALID; addend + linear = host address (only RAM pages get
 * entries).  phys holds the page's physical address and TLB_EXEC/TLB_GLOBAL. */
struct tlb_entry {
	uint64_t tag_read, tag_write;
	uintptr_t addend;
	uint64_t phys;
};
#define TLB_INVALID (~0ull)
#define TLB_EXEC 0x1ull   /* instruction fetches allowed (with tag_read) */
#define TLB_GLOBAL 0x2ull /* a global page: kept by CR3 writes */
#define TLB_PAGE(e) ((e)->phys & ~0xfffull)
_Static_assert(sizeof(struct tlb_entry) == 32, "TLB entries are indexed by shifting");

struct xmm_reg {
	uint64_t q[2];
};

/* The x87 FPU state in the layout FNSAVE writes in 32-bit protected mode
 * (108 bytes): x87.c hands it to the host's FRSTOR/FNSAVE as is.  The
 * registers are in stack order (st[i] is ST(i)), the tag word in physical
 * order, TOP in fsw bits 11-13.  The instruction and operand pointers are
 * the guest's, 64 bits wide (FXSAVE64 keeps them whole). */
struct softcpu_x87 {
	struct {
		uint16_t fcw, res0, fsw, res1, ftw, res2;
		uint32_t fip32;
		uint16_t fcs, fop;
		uint32_t fdp32;
		uint16_t fds, res3;
		uint8_t st[8][10];
	} img;
	uint64_t fip, fdp; /* last non-control instruction's offset and its memory operand's */
	uint16_t fop;      /* its opcode: bits 10-8 of the first byte, then ModRM */
	/* The host FPU holds the registers, control/status words and tags
	 * (x87.c); img has them only after softcpu_x87_flush(). */
	bool live;
};
_Static_assert(sizeof(((struct softcpu_x87 *)0)->img) == 108, "the FNSAVE image");

struct insn;
struct block;
struct block_cache;
struct softcpu;

/* Board-side view of memory and devices, shared by all vCPUs of a machine. */
struct softcpu_machine {
	uint8_t *ram;
	uint64_t ram_size;
	/* RAM above the board's MMIO hole (softcpu_machine_add_high_ram):
	 * guest physical [high_base, high_base + high_size) is ram + ram_size
	 * on.  high_size 0: none. */
	uint64_t high_base, high_size;
	/* board callbacks (same shapes as struct engine_bus) */
	void *bus_opaque;
	uint64_t (*pio_read)(void *opaque, uint16_t port, unsigned size);
	void (*pio_write)(void *opaque, uint16_t port, unsigned size, uint64_t value);
	uint64_t (*mmio_read)(void *opaque, uint64_t gpa, unsigned size);
	void (*mmio_write)(void *opaque, uint64_t gpa, unsigned size, uint64_t value);
	uint64_t (*clock_ns)(void); /* monotonic clock for the TSC */
	/* Optional, for a host that emulates some instructions itself (the
	 * WHP stand-in): called before CPUID runs, and when RDMSR/WRMSR meets
	 * an MSR this CPU does not implement (before its #GP).  A hook that
	 * takes the instruction over calls softcpu_abandon(). */
	void (*cpuid_hook)(struct softcpu *c, uint32_t leaf);
	void (*unknown_msr_hook)(struct softcpu *c, uint32_t msr, bool write);
	/* Self-modifying code: one bit per RAM page holding decoded code; a
	 * write to such a page bumps its generation, which stales its blocks. */
	_Atomic uint8_t *code_bitmap;
	_Atomic uint32_t *code_gen;
	_Atomic uint32_t code_epoch; /* bumped with any code_gen: stales every jump cache entry */
	/* Bumped when a page first holds code: every vCPU then drops the TLB
	 * write fast paths to code pages (at its next block lookup). */
	_Atomic uint32_t code_mark_epoch;
	uint64_t npages;
	/* Guest RAM as device processes write it (softcpu_machine_set_dirty_log):
	 * vCPUs compare *dirty_generation with what they last saw at every block
	 * boundary.  It points at the log's generation, or at no_dirty_log. */
	struct guest_mem devices_mem;
	const _Atomic uint64_t *dirty_generation;
	_Atomic uint64_t no_dirty_log;
	pthread_mutex_t dirty_lock;
	uint64_t dirty_taken; /* generation of the last take (under dirty_lock) */
};

/* Requests from other threads, checked between blocks (softcpu_request). */
#define REQ_STOP 0x1u  /* return from softcpu_run with SOFTCPU_EXIT_STOP */
#define REQ_INTR 0x2u  /* the interrupt line changed (re-check intr_line) */

enum softcpu_exit {
	SOFTCPU_EXIT_HALT,     /* HLT with RFLAGS.IF = 0, or with no intr_ack to wake it */
	SOFTCPU_EXIT_SHUTDOWN, /* triple fault */
	SOFTCPU_EXIT_STOP,     /* REQ_STOP */
	SOFTCPU_EXIT_ABANDONED, /* softcpu_abandon() */
};

struct softcpu {
	/* ---- architectural state ---- */
	uint64_t r[16];
	uint64_t rip;
	uint64_t rflags; /* arithmetic bits valid only when lf.op == LF_NONE */
	struct lazy_flags lf;
	struct softcpu_seg seg[S_NSEG];
	struct softcpu_seg ldtr, tr;
	struct softcpu_dtr gdtr, idtr;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
	uint64_t dr[8];
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base, pat, apic_base, misc_enable;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t tsc_offset;
	uint64_t tsc_adjust; /* IA32_TSC_ADJUST: what guest TSC writes added */
	uint64_t tsc_aux;
	struct xmm_reg xmm[16];
	uint32_t mxcsr;
	struct softcpu_x87 x87;

	/* ---- derived mode (recomputed by softcpu_update_mode) ---- */
	uint8_t cpl;
	uint8_t code_bits;      /* 16, 32 or 64: default operand/address size of CS */
	uint8_t stack_bits;     /* 16, 32 or 64: SS.B / long mode */
	bool long64;            /* EFER.LMA && CS.L */
	uint64_t rip_mask;      /* IP/EIP/RIP width of the code size */
	uint64_t segbase[S_NSEG]; /* base used for addressing (0 for ES/CS/SS/DS in 64-bit mode) */

	/* ---- execution state ---- */
	bool halted;
	bool intr_shadow;       /* after STI / MOV SS / POP SS: no interrupt before the next insn */
	bool block_end;         /* leave the current block after this instruction */
	uint64_t icount;        /* instructions retired */
	/* softcpu_raise() lands in the run loop: GCC's __builtin_setjmp /
	 * __builtin_longjmp, which restore the stack without unwinding it
	 * (MinGW's longjmp unwinds with SEH, which cannot walk through
	 * translated code's frames). */
	void *fault_jmp[5];
	int exc_vector;         /* the exception being raised, -1 none */
	uint32_t exc_error;
	bool exc_has_error;
	int exc_nest;           /* class of the exception being delivered (cpu.c) */
	uint64_t run_limit;     /* softcpu_run stops when icount reaches it */
	int inject_vector;      /* softcpu_inject_exception: raised at the next run, -1 none */
	uint32_t inject_error;
	bool inject_has_error;

	/* ---- interrupt input (driven by the board) ----
	 * intr_line: level of the external maskable interrupt request (INTR),
	 * e.g. "the LAPIC has a deliverable vector".  When it is 1, RFLAGS.IF =
	 * 1 and no interrupt shadow is active, the CPU calls intr_ack() for the
	 * vector (the controller moves it to in-service) and delivers it; a
	 * negative answer means spurious, nothing is delivered.  Without
	 * intr_ack no external interrupt is ever delivered. */
	_Atomic int intr_line;
	void *intr_opaque;
	int (*intr_ack)(void *opaque);
	_Atomic unsigned requests; /* REQ_* */
	bool lapic_present;         /* the board attached a LAPIC: CPUID says APIC */
	uint8_t apic_id;            /* its initial APIC ID (CPUID leaf 1 EBX[31:24]) */
	pthread_mutex_t wake_lock;  /* HLT with IF = 1 sleeps on wake_cond */
	pthread_cond_t wake_cond;

	/* ---- memory ---- */
	struct softcpu_machine *m;
	struct tlb_entry tlb[2][SOFTCPU_TLB_SIZE]; /* [0] supervisor, [1] user accesses */
	/* Entries evicted from tlb[] (a memcpy between addresses 4 MiB apart
	 * would otherwise thrash one slot); searched before a page walk. */
	struct tlb_entry tlb_victim[2][SOFTCPU_TLB_VICTIMS];
	unsigned tlb_victim_next[2];
	/* The large pages the TLB holds 4 KiB pieces of (in slots all over the
	 * TLB: an INVLPG inside one flushes everything).  tlb_large_count >
	 * SOFTCPU_TLB_LARGE_MAX: more than that, any INVLPG flushes. */
	struct {
		uint64_t base, mask;
	} tlb_large[SOFTCPU_TLB_LARGE_MAX];
	unsigned tlb_large_count;
	uint32_t tlb_gen; /* bumped by TLB flushes and INVLPGs that may hit it: stales the block jump cache */
	/* Linear pages (hashed to a bit) that entries of the jump cache were
	 * translated through since tlb_gen last changed: an INVLPG of another
	 * page leaves tlb_gen, and so the jump cache, alone. */
	uint64_t jump_pages[SOFTCPU_JUMP_PAGE_BITS / 64];
	uint32_t seen_code_mark_epoch; /* machine's code_mark_epoch at the last sync */
	uint64_t seen_dirty_generation; /* machine's *dirty_generation at the last sync */
	struct block_cache *blocks;
	struct jit *jit; /* the translator's state (jit.c), NULL: interpret */
};

/* ---- lifecycle ---- */
int softcpu_machine_init(struct softcpu_machine *m, uint8_t *ram, uint64_t ram_size);
/* The rest of guest RAM, after the first ram_size bytes of ram, at guest
 * physical gpa (at or above ram_size, 4 KiB aligned).  -1: out of memory or
 * a bad layout. */
int softcpu_machine_add_high_ram(struct softcpu_machine *m, uint64_t gpa, uint64_t size);
void softcpu_machine_destroy(struct softcpu_machine *m);
/* Guest RAM [gpa, gpa+len) was written other than by a vCPU (a loader, a
 * device's DMA): drop decoded code from it. */
void softcpu_machine_ram_written(struct softcpu_machine *m, uint64_t gpa, uint64_t len);
/* Device processes write guest RAM, mem (its dirty log): before running
 * their code, drop what was decoded from the pages they wrote. */
void softcpu_machine_set_dirty_log(struct softcpu_machine *m, const struct guest_mem *mem);
int softcpu_init(struct softcpu *c, struct softcpu_machine *m);
void softcpu_destroy(struct softcpu *c);
/* Power-on state (real mode, CS:IP = F000:FFF0 with base FFFF0000). */
void softcpu_reset(struct softcpu *c);

/* ---- running ----
 * Runs until HLT (see SOFTCPU_EXIT_HALT), a triple fault, or REQ_STOP.  max_insns > 0
 * bounds the run (returns SOFTCPU_EXIT_STOP when reached, for tests). */
enum softcpu_exit softcpu_run(struct softcpu *c, uint64_t max_insns);
/* From a bus callback or hook on the vCPU's thread: abandon the instruction
 * being executed (nothing of it is done, RIP points at it) and return from
 * softcpu_run with SOFTCPU_EXIT_ABANDONED.  For a host that emulates the
 * instruction itself, as a hypervisor's exit leaves it to its VMM.  Bus
 * accesses come before an instruction's other effects, except for
 * instructions that access memory twice (MOVS, a push of a memory operand),
 * whose first access may be done already. */
_Noreturn void softcpu_abandon(struct softcpu *c);
/* Raise exception `vector` (with its error code if has_error) before the
 * next instruction, when softcpu_run next starts: a hypervisor's pending
 * exception injection. */
void softcpu_inject_exception(struct softcpu *c, int vector, uint32_t error, bool has_error);
/* Up to n bytes of the instruction at RIP, as far as they are in the TLB
 * (without walking page tables or faulting): the count copied. */
unsigned softcpu_peek_code(struct softcpu *c, uint8_t *buf, unsigned n);
/* Any thread: post a request (REQ_*), waking a halted vCPU. */
void softcpu_request(struct softcpu *c, unsigned req);
/* Any thread: set the INTR line level. */
void softcpu_set_intr(struct softcpu *c, int level);

/* ---- state access for the engine and tests ---- */
uint64_t softcpu_get_rflags(struct softcpu *c);
void softcpu_set_rflags(struct softcpu *c, uint64_t v);
/* Call after changing CR0/EFER/segments directly. */
void softcpu_update_mode(struct softcpu *c);
/* Load a segment register from raw descriptor fields (boot state, tests). */
void softcpu_set_seg(struct softcpu *c, int sreg, uint16_t sel, uint64_t base, uint32_t limit, uint16_t attr);
/* The x87 state as FXSAVE holds it: control and status word, abridged tags
 * (bit p: physical register p in use), ST(0)..ST(7) as 80-bit values. */
struct softcpu_fxstate {
	uint16_t fcw, fsw;
	uint8_t ftw;
	uint8_t st[8][10];
};
void softcpu_get_x87(struct softcpu *c, struct softcpu_fxstate *out);
void softcpu_set_x87(struct softcpu *c, const struct softcpu_fxstate *in);
/* What CPUID answers for leaf/sub-leaf: {EAX, EBX, ECX, EDX}. */
void softcpu_cpuid(struct softcpu *c, uint32_t leaf, uint32_t sub, uint32_t out[4]);
/* Flush the TLB (after changing CR0/CR3/CR4 directly). */
void softcpu_tlb_flush(struct softcpu *c, bool include_global);

#endif
