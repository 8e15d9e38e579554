/* internal.h - what the parts of the software CPU share: raising guest
 * exceptions, lazy arithmetic flags, and the inline fast paths of memory
 * access (TLB hit on a RAM page) in front of mmu.c's slow paths. */
#ifndef MINIVM_SOFTCPU_INTERNAL_H
#define MINIVM_SOFTCPU_INTERNAL_H

#include <stdnoreturn.h>
#include <string.h>

#include "cpu.h"
#include "decode.h"

/* The interpreter's hot helpers must be inlined into its handlers and its
 * fallback switch; GCC's heuristics give up on functions that large. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* A 64-bit address is canonical when bits 63..47 are all equal. */
static inline bool canonical(uint64_t v)
{
	return (uint64_t)(((int64_t)v << 16) >> 16) == v;
}

/* ---- exceptions (except.c) ----
 * softcpu_raise() abandons the current instruction (c->rip still points at
 * it, as faults require) and returns to the run loop, which delivers it. */
noreturn void softcpu_raise(struct softcpu *c, int vector, uint32_t error, bool has_error);
/* exc_vector of softcpu_abandon(): no exception, leave the run loop. */
#define EXC_ABANDON (-2)
static inline noreturn void raise_ud(struct softcpu *c) { softcpu_raise(c, EXC_UD, 0, false); }
static inline noreturn void raise_gp(struct softcpu *c, uint32_t err) { softcpu_raise(c, EXC_GP, err, true); }
/* #UD for an encoding this CPU does not implement: logged once per opcode. */
noreturn void softcpu_unimplemented(struct softcpu *c, const struct insn *in);

enum intr_kind {
	INTR_EXCEPTION, /* fault or trap raised by the CPU */
	INTR_SOFTWARE,  /* INT n, INT3, INTO: gate DPL checked against CPL */
	INTR_EXTERNAL,  /* from the interrupt controller */
};
/* Deliver an interrupt or exception now, returning to return_rip.  May
 * raise (a fault during delivery: c->rip is untouched until delivery is
 * complete, so the fault points at the instruction), which the run loop
 * turns into #DF by the double-fault rules. */
void softcpu_deliver(struct softcpu *c, int vector, uint32_t error, bool has_error, enum intr_kind kind,
		     uint64_t return_rip);

/* ---- lazy flags ----
 * lf.res/src1/src2 are stored truncated to lf.size. */
ALWAYS_INLINE uint64_t size_mask(unsigned size) { return ~0ull >> (64 - 8 * size); }
ALWAYS_INLINE unsigned sign_shift(unsigned size) { return 8 * size - 1; }

ALWAYS_INLINE void set_flags(struct softcpu *c, enum lazy_op op, unsigned size, uint64_t res, uint64_t src1,
			     uint64_t src2)
{
	c->lf.op = (uint8_t)op;
	c->lf.size = (uint8_t)size;
	c->lf.res = res;
	c->lf.src1 = src1;
	c->lf.src2 = src2;
}

ALWAYS_INLINE unsigned flag_cf(const struct softcpu *c)
{
	const struct lazy_flags *f = &c->lf;
	switch (f->op) {
	case LF_ADD: return f->res < f->src1;
	case LF_ADC: return f->cin ? f->res <= f->src1 : f->res < f->src1;
	case LF_SUB: return f->src1 < f->src2;
	case LF_SBB: return f->cin ? f->src1 <= f->src2 : f->src1 < f->src2;
	case LF_LOGIC: return 0;
	case LF_INC: case LF_DEC: return f->cin;
	case LF_MUL: return (unsigned)f->src1;
	case LF_SHL: return f->src2 <= 8u * f->size ? (unsigned)(f->src1 >> (8 * f->size - f->src2)) & 1 : 0;
	case LF_SHR: return (unsigned)(f->src1 >> (f->src2 - 1)) & 1;
	case LF_SAR: {
		unsigned s = 64 - 8 * f->size, n = (unsigned)f->src2 - 1;
		return (unsigned)(((int64_t)(f->src1 << s) >> s) >> (n > 63 ? 63 : n)) & 1;
	}
	default: return c->rflags & F_CF;
	}
}

ALWAYS_INLINE unsigned flag_zf(const struct softcpu *c)
{
	return c->lf.op == LF_NONE ? !!(c->rflags & F_ZF) : c->lf.res == 0;
}

ALWAYS_INLINE unsigned flag_sf(const struct softcpu *c)
{
	return c->lf.op == LF_NONE ? !!(c->rflags & F_SF) : (unsigned)(c->lf.res >> sign_shift(c->lf.size)) & 1;
}

ALWAYS_INLINE unsigned flag_pf(const struct softcpu *c)
{
	return c->lf.op == LF_NONE ? !!(c->rflags & F_PF) : !__builtin_parityll(c->lf.res & 0xff);
}

ALWAYS_INLINE unsigned flag_af(const struct softcpu *c)
{
	const struct lazy_flags *f = &c->lf;
	if (f->op == LF_NONE)
		return !!(c->rflags & F_AF);
	if (f->op == LF_LOGIC || f->op >= LF_SHL)
		return 0; /* undefined for logic, shifts and multiplications: 0 */
	if (f->op == LF_INC)
		return (f->res & 0xf) == 0;
	if (f->op == LF_DEC)
		return (f->res & 0xf) == 0xf;
	return (unsigned)((f->src1 ^ f->src2 ^ f->res) >> 4) & 1;
}

ALWAYS_INLINE unsigned flag_of(const struct softcpu *c)
{
	const struct lazy_flags *f = &c->lf;
	unsigned s = sign_shift(f->size);
	switch (f->op) {
	case LF_ADD: case LF_ADC:
		return (unsigned)(((f->src1 ^ f->res) & (f->src2 ^ f->res)) >> s) & 1;
	case LF_SUB: case LF_SBB:
		return (unsigned)(((f->src1 ^ f->src2) & (f->src1 ^ f->res)) >> s) & 1;
	case LF_INC: return f->res == 1ull << s;        /* to the smallest negative */
	case LF_DEC: return f->res == (1ull << s) - 1;  /* to the largest positive */
	case LF_LOGIC: case LF_SAR: return 0;
	case LF_MUL: return (unsigned)f->src1;
	case LF_SHL: return (unsigned)(f->res >> s & 1) ^ flag_cf(c); /* for count 1; undefined otherwise */
	case LF_SHR: return (unsigned)(f->src1 >> s) & 1;
	default: return !!(c->rflags & F_OF);
	}
}

/* Fold the lazy flags into rflags. */
ALWAYS_INLINE void flags_materialize(struct softcpu *c)
{
	if (c->lf.op == LF_NONE)
		return;
	uint64_t f = c->rflags & ~(uint64_t)F_ARITH;
	f |= flag_cf(c) ? F_CF : 0;
	f |= flag_pf(c) ? F_PF : 0;
	f |= flag_af(c) ? F_AF : 0;
	f |= flag_zf(c) ? F_ZF : 0;
	f |= flag_sf(c) ? F_SF : 0;
	f |= flag_of(c) ? F_OF : 0;
	c->rflags = f;
	c->lf.op = LF_NONE;
}

/* Set the flags of `mask` to those of `values`, the others as they are. */
ALWAYS_INLINE void update_flags(struct softcpu *c, uint64_t mask, uint64_t values)
{
	flags_materialize(c);
	c->rflags = (c->rflags & ~mask) | (values & mask);
}

/* Condition codes 0-15 (O, NO, B, NB, Z, NZ, BE, NBE, S, NS, P, NP, L, NL, LE, NLE). */
ALWAYS_INLINE bool cond_true(const struct softcpu *c, unsigned cc)
{
	unsigned r;
	switch (cc >> 1) {
	case 0: r = flag_of(c); break;
	case 1: r = flag_cf(c); break;
	case 2: r = flag_zf(c); break;
	case 3: r = flag_cf(c) | flag_zf(c); break;
	case 4: r = flag_sf(c); break;
	case 5: r = flag_pf(c); break;
	case 6: r = flag_sf(c) ^ flag_of(c); break;
	default: r = flag_zf(c) | (flag_sf(c) ^ flag_of(c)); break;
	}
	return r ^ (cc & 1);
}

/* ---- memory (mmu.c) ---- */
enum access { ACC_READ, ACC_WRITE, ACC_EXEC };
/* Slow paths: TLB miss, page-crossing, MMIO, code pages.  `sys` marks an
 * implicit supervisor access (descriptor tables, TSS) regardless of CPL. */
uint64_t mmu_read_slow(struct softcpu *c, uint64_t lin, unsigned size, bool sys);
void mmu_write_slow(struct softcpu *c, uint64_t lin, unsigned size, uint64_t val, bool sys);
/* Make sure [lin, lin+size) is writable (read-modify-write operands fault as
 * writes before the read happens); fills the TLB. */
void mmu_probe_write(struct softcpu *c, uint64_t lin, unsigned size);
/* Translate an instruction fetch; raises #PF.  Returns the physical address. */
uint64_t mmu_translate_exec(struct softcpu *c, uint64_t lin);
/* Host pointer to a physical RAM range or NULL (MMIO, out of RAM). */
uint8_t *mmu_ram_ptr(struct softcpu *c, uint64_t phys, uint64_t len);
/* Physical accesses (RAM or MMIO); writes keep the block cache coherent. */
uint64_t phys_read(struct softcpu *c, uint64_t pa, unsigned size);
void phys_write(struct softcpu *c, uint64_t pa, unsigned size, uint64_t val);
void mmu_invlpg(struct softcpu *c, uint64_t lin);
/* Mark a RAM page as holding decoded code (its writes then take the slow path). */
void mmu_mark_code_page(struct softcpu *c, uint64_t phys);
/* Another vCPU marked code pages (machine code_mark_epoch is `epoch`): drop
 * this vCPU's write fast paths to them. */
void mmu_sync_code_pages(struct softcpu *c, uint32_t epoch);

ALWAYS_INLINE unsigned jump_page_bit(uint64_t lin)
{
	return (unsigned)(lin >> 12) & (SOFTCPU_JUMP_PAGE_BITS - 1);
}

ALWAYS_INLINE struct tlb_entry *tlb_slot(struct softcpu *c, uint64_t lin, bool user)
{
	return &c->tlb[user][(lin >> 12) & (SOFTCPU_TLB_SIZE - 1)];
}

ALWAYS_INLINE uint64_t load_le(const void *p, unsigned size)
{
	switch (size) {
	case 1: return *(const uint8_t *)p;
	case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
	case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
	default: { uint64_t v; memcpy(&v, p, 8); return v; }
	}
}

ALWAYS_INLINE void store_le(void *p, unsigned size, uint64_t v)
{
	switch (size) {
	case 1: *(uint8_t *)p = (uint8_t)v; break;
	case 2: { uint16_t t = (uint16_t)v; memcpy(p, &t, 2); break; }
	case 4: { uint32_t t = (uint32_t)v; memcpy(p, &t, 4); break; }
	default: memcpy(p, &v, 8); break;
	}
}

ALWAYS_INLINE uint64_t mem_read(struct softcpu *c, uint64_t lin, unsigned size)
{
	struct tlb_entry *e = tlb_slot(c, lin, c->cpl == 3);
	if (likely(e->tag_read == lin >> 12 && (lin & 0xfff) <= 4096u - size))
		return load_le((const void *)(e->addend + (uintptr_t)lin), size);
	return mmu_read_slow(c, lin, size, false);
}

ALWAYS_INLINE void mem_write(struct softcpu *c, uint64_t lin, unsigned size, uint64_t val)
{
	struct tlb_entry *e = tlb_slot(c, lin, c->cpl == 3);
	if (likely(e->tag_write == lin >> 12 && (lin & 0xfff) <= 4096u - size)) {
		store_le((void *)(e->addend + (uintptr_t)lin), size, val);
		return;
	}
	mmu_write_slow(c, lin, size, val, false);
}

/* Host pointer for [lin, lin+len) if it lies in one RAM page the TLB maps
 * for this access, else NULL (the caller takes the element-wise path). */
ALWAYS_INLINE uint8_t *tlb_host(struct softcpu *c, uint64_t lin, uint64_t len, bool write)
{
	struct tlb_entry *e = tlb_slot(c, lin, c->cpl == 3);
	uint64_t tag = write ? e->tag_write : e->tag_read;
	if (tag != lin >> 12 || (lin & 0xfff) + len > 4096)
		return NULL;
	return (uint8_t *)(e->addend + (uintptr_t)lin);
}

/* Read of a read-modify-write operand: faults as a write. */
ALWAYS_INLINE uint64_t mem_read_rmw(struct softcpu *c, uint64_t lin, unsigned size)
{
	struct tlb_entry *e = tlb_slot(c, lin, c->cpl == 3);
	if (unlikely(e->tag_write != lin >> 12 || (lin & 0xfff) > 4096u - size))
		mmu_probe_write(c, lin, size);
	return mem_read(c, lin, size);
}

/* ---- operands of decoded instructions ---- */

ALWAYS_INLINE uint64_t get_reg(const struct softcpu *c, const struct insn *in, unsigned r, unsigned size)
{
	if (size == 1) {
		if (r < 4 || (in->pfx & PFX_REX))
			return c->r[r] & 0xff;
		return (c->r[r - 4] >> 8) & 0xff;
	}
	return c->r[r] & size_mask(size);
}

ALWAYS_INLINE void set_reg(struct softcpu *c, const struct insn *in, unsigned r, unsigned size, uint64_t v)
{
	switch (size) {
	case 1:
		if (r < 4 || (in->pfx & PFX_REX))
			c->r[r] = (c->r[r] & ~0xffull) | (v & 0xff);
		else
			c->r[r - 4] = (c->r[r - 4] & ~0xff00ull) | ((v & 0xff) << 8);
		break;
	case 2: c->r[r] = (c->r[r] & ~0xffffull) | (v & 0xffff); break;
	case 4: c->r[r] = (uint32_t)v; break;
	default: c->r[r] = v; break;
	}
}

ALWAYS_INLINE uint64_t linear(const struct softcpu *c, unsigned seg, uint64_t off)
{
	uint64_t l = c->segbase[seg] + off;
	return c->long64 ? l : (uint32_t)l;
}

ALWAYS_INLINE uint64_t ea_offset(const struct softcpu *c, const struct insn *in)
{
	uint64_t a = (uint64_t)(int64_t)in->disp;
	if (in->base != REG_NONE)
		a += in->base == REG_RIP ? c->rip + in->len : c->r[in->base];
	if (in->index != REG_NONE)
		a += c->r[in->index] << in->scale;
	return a & size_mask(in->asz);
}

ALWAYS_INLINE uint64_t mem_addr(const struct softcpu *c, const struct insn *in)
{
	return linear(c, in->seg, ea_offset(c, in));
}

/* ---- cpu.c ---- */
void softcpu_load_seg(struct softcpu *c, int sreg, uint16_t sel); /* protected-mode rules, raises */
void softcpu_write_cr(struct softcpu *c, int cr, uint64_t val);  /* raises #GP on bad values */
bool softcpu_rdmsr(struct softcpu *c, uint32_t msr, uint64_t *val);
bool softcpu_wrmsr(struct softcpu *c, uint32_t msr, uint64_t val);
uint64_t softcpu_rdtsc(struct softcpu *c);
/* Read a descriptor (8 bytes) for selector sel from the GDT/LDT; raises
 * #GP(sel) if it lies outside the table. */
uint64_t softcpu_read_descriptor(struct softcpu *c, uint16_t sel);
void softcpu_seg_from_descriptor(struct softcpu_seg *s, uint16_t sel, uint64_t desc);
void softcpu_block_cache_invalidate_all(struct softcpu *c);

/* ---- exec.c ---- */
/* Choose the executor's handler for a freshly decoded instruction (once,
 * before it is first executed; an unprepared one takes the generic path). */
void softcpu_exec_prepare(struct insn *in);
/* Execute up to n decoded instructions starting at c->rip; stops early when
 * one sets c->block_end (a write to a code page, an unfinished REP...). */
void softcpu_exec(struct softcpu *c, const struct insn *in, unsigned n);
/* SSE and MMX instructions (sse.c, simd_int.c); raise #UD for what is not there. */
void softcpu_exec_sse(struct softcpu *c, const struct insn *in);
/* MXCSR bits that exist (DAZ included): FXSAVE reports it, LDMXCSR and
 * FXRSTOR raise #GP for others. */
#define SOFTCPU_MXCSR_MASK 0xffffu
/* x87 instructions D8-DF, FXSAVE/FXRSTOR (x87.c). */
void softcpu_exec_x87(struct softcpu *c, const struct insn *in);
void softcpu_fxsave(struct softcpu *c, const struct insn *in, uint64_t lin);
void softcpu_fxrstor(struct softcpu *c, const struct insn *in, uint64_t lin);
/* FWAIT: #MF if an unmasked x87 exception is pending. */
void softcpu_x87_wait(struct softcpu *c);
/* MMX (x87.c: MM0-MM7 alias the x87 registers).  check: #UD, #NM, #MF as
 * for an x87 instruction; enter: TOP = 0 and every tag valid, done after
 * the instruction's memory accesses; get/set: MMi by number. */
void softcpu_mmx_check(struct softcpu *c);
void softcpu_mmx_enter(struct softcpu *c);
uint64_t softcpu_mmx_get(struct softcpu *c, unsigned i);
void softcpu_mmx_set(struct softcpu *c, unsigned i, uint64_t v);
void softcpu_emms(struct softcpu *c);
/* Whether this host can run the x87 (CPUID's FPU bit). */
bool softcpu_x87_present(void);
/* Store the guest's x87 state back into c->x87.img if the host FPU holds
 * it (x87.c says when). */
void softcpu_x87_flush(struct softcpu *c);

#endif
