/* cpu.c - the run loop, the decoded-block cache, and the CPU's system state:
 * reset, segment loads, control registers, MSRs, CPUID, the TSC.
 *
 * Run loop: between blocks it checks requests from other threads (one
 * relaxed atomic load) and the interrupt line; faults raised while an
 * instruction runs longjmp back here and are delivered with the double-fault
 * rules.  Blocks are decoded once per (guest-physical address, code size)
 * and dropped when their page is written (mmu.c bumps the page generation). */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "jit.h"
#include "log.h"

#define BLOCK_MAX_INSNS 64
#define BLOCK_HASH_SIZE (1u << 14)
#define BLOCK_ARENA_BYTES (16u << 20)

struct block {
	uint64_t phys;
	uint32_t gen;      /* code_gen of its page when decoded */
	uint8_t code_bits;
	uint16_t ninsn;
	struct block *hnext;
	struct jit_ref jit; /* its translation, if any */
	struct insn insn[];
};

/* The block last run at a linear address, valid while the TLB (so the
 * address's translation and permissions) and all code pages are unchanged:
 * saves the translation and the hash lookup on most block transitions. */
#define JUMP_CACHE_SIZE 8192 /* 2048 conflicted 6 M times in a Linux boot, 8192 1.8 M */
struct jump_entry {
	uint64_t lin;
	struct block *b;
	uint32_t tlb_gen;
	uint32_t code_epoch;
	uint8_t key; /* code size | user */
} __attribute__((aligned(32)));

struct block_cache {
	struct jump_entry jump[JUMP_CACHE_SIZE];
	struct block *hash[BLOCK_HASH_SIZE];
	uint8_t *arena;
	size_t used;
	/* A block of one instruction crossing a page: decoded, not cached.
	 * Last: softcpu_init allocates room for its instruction after it. */
	struct block scratch;
};

/* ---- machine and vCPU lifecycle ---- */

static uint64_t default_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int softcpu_machine_init(struct softcpu_machine *m, uint8_t *ram, uint64_t ram_size)
{
	memset(m, 0, sizeof(*m));
	m->ram = ram;
	m->ram_size = ram_size;
	m->npages = (ram_size + 4095) / 4096;
	m->code_bitmap = calloc(m->npages ? m->npages : 1, sizeof(*m->code_bitmap));
	m->code_gen = calloc(m->npages ? m->npages : 1, sizeof(*m->code_gen));
	m->clock_ns = default_clock_ns;
	m->dirty_generation = &m->no_dirty_log;
	pthread_mutex_init(&m->dirty_lock, NULL);
	if (!m->code_bitmap || !m->code_gen) {
		softcpu_machine_destroy(m);
		return -1;
	}
	return 0;
}

int softcpu_machine_add_high_ram(struct softcpu_machine *m, uint64_t gpa, uint64_t size)
{
	if (size == 0 || gpa < m->ram_size || gpa % 4096 || size % 4096 || size > UINT64_MAX - gpa)
		return -1;
	/* Code pages are tracked by guest page number: cover up to the top. */
	uint64_t npages = (gpa + size) / 4096;
	_Atomic uint8_t *bitmap = calloc(npages, sizeof(*bitmap));
	_Atomic uint32_t *gen = calloc(npages, sizeof(*gen));
	if (!bitmap || !gen) {
		free((void *)bitmap);
		free((void *)gen);
		return -1;
	}
	free((void *)m->code_bitmap);
	free((void *)m->code_gen);
	m->code_bitmap = bitmap;
	m->code_gen = gen;
	m->npages = npages;
	m->high_base = gpa;
	m->high_size = size;
	return 0;
}

void softcpu_machine_destroy(struct softcpu_machine *m)
{
	free((void *)m->code_bitmap);
	free((void *)m->code_gen);
	m->code_bitmap = NULL;
	m->code_gen = NULL;
	pthread_mutex_destroy(&m->dirty_lock);
}

void softcpu_machine_set_dirty_log(struct softcpu_machine *m, const struct guest_mem *mem)
{
	m->devices_mem = *mem;
	if (mem->dirty)
		m->dirty_generation = &mem->dirty->generation;
}

int softcpu_init(struct softcpu *c, struct softcpu_machine *m)
{
	memset(c, 0, sizeof(*c));
	c->m = m;
	c->inject_vector = -1;
	c->blocks = calloc(1, sizeof(*c->blocks) + sizeof(struct insn));
	if (!c->blocks)
		return -1;
	c->blocks->arena = malloc(BLOCK_ARENA_BYTES);
	if (!c->blocks->arena) {
		free(c->blocks);
		return -1;
	}
	pthread_mutex_init(&c->wake_lock, NULL);
	pthread_cond_init(&c->wake_cond, NULL);
	softcpu_reset(c);
	return 0;
}

void softcpu_destroy(struct softcpu *c)
{
	jit_release(c);
	if (c->blocks) {
		free(c->blocks->arena);
		free(c->blocks);
		c->blocks = NULL;
	}
	pthread_mutex_destroy(&c->wake_lock);
	pthread_cond_destroy(&c->wake_cond);
}

void softcpu_inject_exception(struct softcpu *c, int vector, uint32_t error, bool has_error)
{
	c->inject_vector = vector;
	c->inject_error = error;
	c->inject_has_error = has_error;
}

void softcpu_reset(struct softcpu *c)
{
	memset(c->r, 0, sizeof(c->r));
	c->r[R_DX] = 0x600; /* family 6 signature, as after RESET */
	c->rflags = 0x2;
	c->lf.op = LF_NONE;
	for (int s = 0; s < S_NSEG; s++)
		softcpu_set_seg(c, s, 0, 0, 0xffff, 0x93);
	softcpu_set_seg(c, S_CS, 0xf000, 0xffff0000u, 0xffff, 0x9b);
	c->rip = 0xfff0;
	c->ldtr = (struct softcpu_seg){.limit = 0xffff, .attr = 0x82};
	c->tr = (struct softcpu_seg){.limit = 0xffff, .attr = 0x8b};
	c->gdtr = (struct softcpu_dtr){0, 0xffff};
	c->idtr = (struct softcpu_dtr){0, 0xffff};
	c->cr0 = CR0_ET | 0x60000000u; /* CD, NW set at reset */
	c->cr2 = c->cr3 = c->cr4 = c->cr8 = 0;
	c->efer = 0;
	c->pat = 0x0007040600070406ull;
	c->misc_enable = 1; /* fast string operations on: REP MOVS/STOS run in bulk here */
	c->apic_base = 0xfee00000u | 0x800 | 0x100; /* enabled, BSP */
	c->mxcsr = 0x1f80;
	/* x87 after RESET: FCW 0x40, all tags empty (FINIT gives 0x37f) */
	softcpu_x87_flush(c);
	memset(&c->x87, 0, sizeof(c->x87));
	c->x87.img.fcw = 0x40;
	c->x87.img.ftw = 0xffff;
	c->halted = false;
	c->intr_shadow = false;
	c->exc_nest = 0;
	c->inject_vector = -1;
	softcpu_update_mode(c);
	softcpu_tlb_flush(c, true);
	softcpu_block_cache_invalidate_all(c);
}

/* ---- flags, modes and segments ---- */

uint64_t softcpu_get_rflags(struct softcpu *c)
{
	flags_materialize(c);
	return c->rflags;
}

void softcpu_set_rflags(struct softcpu *c, uint64_t v)
{
	c->rflags = (v & 0x3f7fd5u) | 0x2u; /* reserved bits: 1 is set, 3/5/15/22+ clear */
	c->lf.op = LF_NONE;
}

void softcpu_update_mode(struct softcpu *c)
{
	if (!(c->cr0 & CR0_PE))
		c->cpl = 0;
	c->long64 = (c->efer & EFER_LMA) && (c->seg[S_CS].attr & SEG_ATTR_L);
	c->code_bits = c->long64 ? 64 : (c->seg[S_CS].attr & SEG_ATTR_DB) ? 32 : 16;
	c->rip_mask = ~0ull >> (64 - c->code_bits);
	c->stack_bits = c->long64 ? 64 : (c->seg[S_SS].attr & SEG_ATTR_DB) ? 32 : 16;
	for (int s = 0; s < S_NSEG; s++)
		c->segbase[s] = (c->long64 && s < S_FS) ? 0 : c->seg[s].base;
}

void softcpu_set_seg(struct softcpu *c, int sreg, uint16_t sel, uint64_t base, uint32_t limit, uint16_t attr)
{
	c->seg[sreg] = (struct softcpu_seg){.base = base, .limit = limit, .sel = sel, .attr = attr};
	if (sreg == S_CS && (c->cr0 & CR0_PE))
		c->cpl = (attr >> 5) & 3;
	softcpu_update_mode(c);
}

void softcpu_seg_from_descriptor(struct softcpu_seg *s, uint16_t sel, uint64_t d)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
	uint16_t attr = (uint16_t)((d >> 40) & 0xf0ff);
	if (attr & SEG_ATTR_G)
		limit = (limit << 12) | 0xfff;
	s->base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000u);
	s->limit = limit;
	s->attr = attr;
	s->sel = sel;
}

uint64_t softcpu_read_descriptor(struct softcpu *c, uint16_t sel)
{
	uint64_t base, limit;
	if (sel & 4) {
		if (!(c->ldtr.attr & SEG_ATTR_P))
			raise_gp(c, sel & ~3u);
		base = c->ldtr.base;
		limit = c->ldtr.limit;
	} else {
		base = c->gdtr.base;
		limit = c->gdtr.limit;
	}
	if ((uint64_t)(sel & ~7u) + 7 > limit)
		raise_gp(c, sel & ~3u);
	return mmu_read_slow(c, base + (sel & ~7u), 8, true);
}

/* Set the descriptor's accessed bit, as the CPU does on a segment load. */
static void mark_accessed(struct softcpu *c, uint16_t sel, uint64_t desc)
{
	if (desc & (1ull << 40))
		return;
	uint64_t base = (sel & 4) ? c->ldtr.base : c->gdtr.base;
	mmu_write_slow(c, base + (sel & ~7u) + 5, 1, (desc >> 40) | 1, true);
}

void softcpu_load_seg(struct softcpu *c, int sreg, uint16_t sel)
{
	struct softcpu_seg *s = &c->seg[sreg];
	if (!(c->cr0 & CR0_PE)) {
		s->sel = sel;
		s->base = (uint64_t)sel << 4;
		softcpu_update_mode(c);
		return;
	}
	if ((sel & ~3u) == 0) {
		/* A null selector: loadable into data segments, and into SS only
		 * in 64-bit mode below CPL 3. */
		if (sreg == S_SS && !(c->long64 && c->cpl < 3 && (sel & 3) == c->cpl))
			raise_gp(c, 0);
		*s = (struct softcpu_seg){.sel = sel};
		softcpu_update_mode(c);
		return;
	}
	uint64_t d = softcpu_read_descriptor(c, sel);
	unsigned attr = (unsigned)(d >> 40) & 0xff, dpl = (attr >> 5) & 3, rpl = sel & 3;
	bool code = attr & 0x8, writable = !code && (attr & 0x2), readable = !code || (attr & 0x2);
	if (!(attr & SEG_ATTR_S))
		raise_gp(c, sel & ~3u);
	if (sreg == S_SS) {
		if (!writable || rpl != c->cpl || dpl != c->cpl)
			raise_gp(c, sel & ~3u);
		if (!(attr & SEG_ATTR_P))
			softcpu_raise(c, EXC_SS, sel & ~3u, true);
	} else {
		bool conforming = code && (attr & 0x4);
		if (!readable || (!conforming && (rpl > dpl || c->cpl > dpl)))
			raise_gp(c, sel & ~3u);
		if (!(attr & SEG_ATTR_P))
			softcpu_raise(c, EXC_NP, sel & ~3u, true);
	}
	mark_accessed(c, sel, d);
	softcpu_seg_from_descriptor(s, sel, d | (1ull << 40));
	softcpu_update_mode(c);
}

/* ---- control registers ---- */

#define CR4_ALLOWED (0x1u | 0x2u | 0x4u | 0x8u | CR4_PSE | CR4_PAE | 0x40u | CR4_PGE | 0x100u | CR4_OSFXSR | CR4_OSXMMEXCPT)

static void update_lma(struct softcpu *c)
{
	if ((c->efer & EFER_LME) && (c->cr0 & CR0_PG))
		c->efer |= EFER_LMA;
	else
		c->efer &= ~(uint64_t)EFER_LMA;
}

void softcpu_write_cr(struct softcpu *c, int cr, uint64_t val)
{
	switch (cr) {
	case 0: {
		if (val >> 32)
			raise_gp(c, 0);
		val |= CR0_ET;
		if ((val & CR0_PG) && !(val & CR0_PE))
			raise_gp(c, 0);
		if ((val & CR0_PG) && !(c->cr0 & CR0_PG) && (c->efer & EFER_LME) && !(c->cr4 & CR4_PAE))
			raise_gp(c, 0);
		if (!(val & CR0_PG) && c->long64)
			raise_gp(c, 0);
		uint64_t changed = c->cr0 ^ val;
		c->cr0 = val;
		update_lma(c);
		if (changed & (CR0_PG | CR0_WP | CR0_PE))
			softcpu_tlb_flush(c, true);
		softcpu_update_mode(c);
		break;
	}
	case 2:
		c->cr2 = val;
		break;
	case 3:
		c->cr3 = val & ~(1ull << 63);
		softcpu_tlb_flush(c, false);
		break;
	case 4: {
		if (val & ~(uint64_t)CR4_ALLOWED)
			raise_gp(c, 0);
		if ((c->efer & EFER_LMA) && !(val & CR4_PAE))
			raise_gp(c, 0);
		uint64_t changed = c->cr4 ^ val;
		c->cr4 = val;
		if (changed & (CR4_PGE | CR4_PAE | CR4_PSE))
			softcpu_tlb_flush(c, true);
		break;
	}
	case 8:
		if (val & ~0xfull)
			raise_gp(c, 0);
		c->cr8 = val;
		break;
	default:
		raise_ud(c);
	}
}

/* An interpreter executes nothing speculatively: none of the transient-
 * execution bugs this MSR can deny applies, so Linux skips their mitigations
 * (page-table isolation, buffer clearing...), which cost a lot under
 * emulation.  RDCL_NO, SSB_NO, MDS_NO, PSCHANGE_MC_NO, TAA_NO, SBDR_SSDP_NO,
 * FBSDP_NO, PSDP_NO, PBRSB_NO, GDS_NO, RFDS_NO. */
#define ARCH_CAPABILITIES                                                                                  \
	((1ull << 0) | (1ull << 4) | (1ull << 5) | (1ull << 6) | (1ull << 8) | (1ull << 13) | (1ull << 14) | \
	 (1ull << 15) | (1ull << 24) | (1ull << 26) | (1ull << 27))

/* ---- MSRs ---- */

enum {
	MSR_TSC = 0x10, MSR_APIC_BASE = 0x1b, MSR_FEATURE_CONTROL = 0x3a, MSR_TSC_ADJUST = 0x3b,
	MSR_UCODE_REV = 0x8b,
	MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175, MSR_SYSENTER_EIP = 0x176,
	MSR_ARCH_CAPABILITIES = 0x10a, MSR_MISC_ENABLE = 0x1a0, MSR_PAT = 0x277,
	MSR_EFER = 0xc0000080, MSR_STAR = 0xc0000081, MSR_LSTAR = 0xc0000082, MSR_CSTAR = 0xc0000083,
	MSR_SFMASK = 0xc0000084, MSR_FS_BASE = 0xc0000100, MSR_GS_BASE = 0xc0000101,
	MSR_KERNEL_GS_BASE = 0xc0000102, MSR_TSC_AUX = 0xc0000103,
};

uint64_t softcpu_rdtsc(struct softcpu *c)
{
	return c->m->clock_ns() + c->tsc_offset; /* a 1 GHz TSC */
}

bool softcpu_rdmsr(struct softcpu *c, uint32_t msr, uint64_t *val)
{
	switch (msr) {
	case MSR_TSC: *val = softcpu_rdtsc(c); return true;
	case MSR_TSC_ADJUST: *val = c->tsc_adjust; return true;
	case MSR_APIC_BASE: *val = c->apic_base; return true;
	case MSR_FEATURE_CONTROL: *val = 1; return true; /* locked, VMX off */
	case MSR_UCODE_REV: *val = 0; return true;
	case MSR_SYSENTER_CS: *val = c->sysenter_cs; return true;
	case MSR_SYSENTER_ESP: *val = c->sysenter_esp; return true;
	case MSR_SYSENTER_EIP: *val = c->sysenter_eip; return true;
	case MSR_MISC_ENABLE: *val = c->misc_enable; return true;
	case MSR_ARCH_CAPABILITIES: *val = ARCH_CAPABILITIES; return true;
	case MSR_PAT: *val = c->pat; return true;
	case MSR_EFER: *val = c->efer; return true;
	case MSR_STAR: *val = c->star; return true;
	case MSR_LSTAR: *val = c->lstar; return true;
	case MSR_CSTAR: *val = c->cstar; return true;
	case MSR_SFMASK: *val = c->sfmask; return true;
	case MSR_FS_BASE: *val = c->seg[S_FS].base; return true;
	case MSR_GS_BASE: *val = c->seg[S_GS].base; return true;
	case MSR_KERNEL_GS_BASE: *val = c->kernel_gs_base; return true;
	case MSR_TSC_AUX: *val = c->tsc_aux; return true;
	default: return false;
	}
}

bool softcpu_wrmsr(struct softcpu *c, uint32_t msr, uint64_t val)
{
	switch (msr) {
	case MSR_TSC: { /* the SDM: a TSC write moves TSC_ADJUST by the same amount */
		uint64_t offset = val - c->m->clock_ns();
		c->tsc_adjust += offset - c->tsc_offset;
		c->tsc_offset = offset;
		return true;
	}
	case MSR_TSC_ADJUST:
		c->tsc_offset += val - c->tsc_adjust;
		c->tsc_adjust = val;
		return true;
	case MSR_APIC_BASE: c->apic_base = val; return true;
	case MSR_UCODE_REV: return true;
	case MSR_SYSENTER_CS: c->sysenter_cs = val; return true;
	case MSR_SYSENTER_ESP: c->sysenter_esp = val; return true;
	case MSR_SYSENTER_EIP: c->sysenter_eip = val; return true;
	case MSR_MISC_ENABLE: c->misc_enable = val; return true;
	case MSR_PAT: c->pat = val; return true;
	case MSR_EFER: {
		if (val & ~(uint64_t)(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
			return false;
		if (((val ^ c->efer) & EFER_LME) && (c->cr0 & CR0_PG))
			return false;
		uint64_t changed = (c->efer ^ val) & EFER_NXE;
		c->efer = (val & ~(uint64_t)EFER_LMA) | (c->efer & EFER_LMA);
		update_lma(c);
		if (changed)
			softcpu_tlb_flush(c, true);
		softcpu_update_mode(c);
		return true;
	}
	case MSR_STAR: c->star = val; return true;
	case MSR_LSTAR: if (!canonical(val)) return false; c->lstar = val; return true;
	case MSR_CSTAR: if (!canonical(val)) return false; c->cstar = val; return true;
	case MSR_SFMASK: c->sfmask = val & 0xffffffffu; return true;
	case MSR_FS_BASE:
		if (!canonical(val))
			return false;
		c->seg[S_FS].base = val;
		softcpu_update_mode(c);
		return true;
	case MSR_GS_BASE:
		if (!canonical(val))
			return false;
		c->seg[S_GS].base = val;
		softcpu_update_mode(c);
		return true;
	case MSR_KERNEL_GS_BASE: if (!canonical(val)) return false; c->kernel_gs_base = val; return true;
	case MSR_TSC_AUX: c->tsc_aux = val & 0xffffffffu; return true;
	default: return false;
	}
}

/* ---- CPUID: baseline x86-64 with x87 and SSE2, and only what the executor runs ---- */

void softcpu_cpuid(struct softcpu *c, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	out[0] = out[1] = out[2] = out[3] = 0;
	switch (leaf) {
	case 0:
		out[0] = 0x16;
		memcpy(&out[1], "Genu", 4); /* EBX, EDX, ECX spell GenuineIntel */
		memcpy(&out[3], "ineI", 4);
		memcpy(&out[2], "ntel", 4);
		break;
	case 1:
		out[0] = 0x000006f1; /* family 6, model 15, stepping 1 */
		out[1] = (8u << 8) | (1u << 16) | ((uint32_t)c->apic_id << 24); /* CLFLUSH 64 bytes, 1 logical CPU */
		/* x86-64-v2: SSE3 SSSE3 SSE4.1 SSE4.2 CX16 POPCNT (and LAHF, leaf 0x80000001) */
		out[2] = (1u << 0) /* SSE3 */ | (1u << 9) /* SSSE3 */ | (1u << 13) /* CX16 */ | (1u << 19) /* SSE4.1 */ |
			 (1u << 20) /* SSE4.2 */ | (1u << 23) /* POPCNT */ | (1u << 31) /* hypervisor */;
		out[3] = (softcpu_x87_present() ? 1u << 0 : 0) /* FPU */ | (1u << 3) /* PSE */ | (1u << 4) /* TSC */ | (1u << 5) /* MSR */ |
			 (1u << 6) /* PAE */ | (1u << 8) /* CX8 */ | (1u << 13) /* PGE */ | (1u << 15) /* CMOV */ |
			 (1u << 16) /* PAT */ | (1u << 19) /* CLFSH */ | (1u << 23) /* MMX */ | (1u << 24) /* FXSR */ |
			 (1u << 25) /* SSE */ | (1u << 26) /* SSE2 */ | (c->lapic_present ? 1u << 9 : 0) /* APIC */;
		break;
	case 7:
		/* TSC_ADJUST with invariant TSC (0x80000007) lets Linux trust the
		 * TSC without the clocksource watchdog, whose jiffies reference
		 * drifts when emulation delays timer ticks. */
		if (sub == 0) {
			out[1] = 1u << 1; /* IA32_TSC_ADJUST */
			out[3] = 1u << 29; /* IA32_ARCH_CAPABILITIES */
		}
		break;
	case 6:
		out[0] = c->lapic_present ? 1u << 2 : 0; /* ARAT: the LAPIC timer never stops */
		break;
	/* The TSC (softcpu_rdtsc) counts host nanoseconds: 1 GHz.  Leaf 0x15
	 * says so exactly (crystal 1 GHz, ratio 1/1), and Linux also takes the
	 * LAPIC timer's rate from the crystal (board/lapic.c counts at 1 GHz),
	 * so it calibrates neither. */
	case 0x15:
		out[0] = 1;
		out[1] = 1;
		out[2] = 1000000000u;
		break;
	case 0x16:
		out[0] = out[1] = out[2] = 1000; /* base, max, bus MHz */
		break;
	case 0x80000000:
		out[0] = 0x80000008;
		break;
	case 0x80000001:
		out[2] = (1u << 0) /* LAHF/SAHF in 64-bit mode */ | (1u << 5) /* ABM: LZCNT */;
		out[3] = (1u << 11) /* SYSCALL */ | (1u << 20) /* NX */ | (1u << 26) /* 1 GiB pages */ |
			 (1u << 27) /* RDTSCP */ | (1u << 29) /* LM */;
		break;
	case 0x80000002: case 0x80000003: case 0x80000004: {
		static const char brand[48] = "minivm software x86-64 CPU";
		memcpy(out, brand + (leaf - 0x80000002) * 16, 16);
		break;
	}
	case 0x80000007:
		out[3] = 1u << 8; /* invariant TSC: host monotonic time */
		break;
	case 0x80000008:
		out[0] = 0x3028; /* 48 linear, 40 physical address bits */
		break;
	default:
		break;
	}
}

/* ---- decoded-block cache ---- */

void softcpu_block_cache_invalidate_all(struct softcpu *c)
{
	if (!c->blocks)
		return;
	memset(c->blocks->hash, 0, sizeof(c->blocks->hash));
	memset(c->blocks->jump, 0, sizeof(c->blocks->jump));
	c->blocks->used = 0;
	jit_flush(c); /* translations call into the decoded instructions */
}

/* Does execution after this instruction not simply continue with the next
 * one (a branch, a mode change, something that may unmask interrupts)? */
static bool ends_block(const struct insn *in)
{
	unsigned op = in->op;
	if ((op >= 0x70 && op <= 0x7f) || (op >= (OP_0F | 0x80) && op <= (OP_0F | 0x8f)))
		return true;
	switch (op) {
	case 0x9a: case 0x9d: case 0xc2: case 0xc3: case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf:
	case 0xe0: case 0xe1: case 0xe2: case 0xe3: case 0xe8: case 0xe9: case 0xea: case 0xeb:
	case 0xe4: case 0xe5: case 0xe6: case 0xe7: case 0xec: case 0xed: case 0xee: case 0xef:
	case 0x6c: case 0x6d: case 0x6e: case 0x6f:
	case 0xf1: case 0xf4: case 0xfa: case 0xfb: case 0x8e: case 0x07: case 0x17: case 0x1f:
	case OP_0F | 0x00: case OP_0F | 0x01: case OP_0F | 0x05: case OP_0F | 0x06: case OP_0F | 0x07:
	case OP_0F | 0x0b: case OP_0F | 0x22: case OP_0F | 0x23: case OP_0F | 0x30: case OP_0F | 0xb2:
	case OP_0F | 0xb4: case OP_0F | 0xb5: case OP_0F | 0xae:
	case OP_UD: case OP_TOOLONG:
		return true;
	case 0xff:
		return (in->reg & 7) >= 2 && (in->reg & 7) <= 5;
	default:
		return false;
	}
}

static uint32_t hash_phys(uint64_t phys, unsigned code_bits)
{
	uint64_t h = (phys ^ code_bits) * 0x9e3779b97f4a7c15ull;
	return (uint32_t)(h >> 50) & (BLOCK_HASH_SIZE - 1);
}

static struct block *block_find_or_decode(struct softcpu *c, uint64_t lin);

/* Decode the instruction crossing a page boundary at linear `lin` into the
 * scratch block: fetch its bytes through both pages' translations. */
static struct block *decode_crossing(struct softcpu *c, uint64_t lin, uint64_t phys)
{
	struct block_cache *bc = c->blocks;
	uint8_t bytes[15];
	unsigned first = 4096 - (unsigned)(phys & 0xfff);
	uint64_t next = lin + first;
	if (c->code_bits != 64)
		next = (uint32_t)next; /* linear addresses wrap at 4 GiB outside long mode */
	uint64_t phys2 = mmu_translate_exec(c, next);
	if (!mmu_ram_ptr(c, phys2 & ~0xfffull, 4096)) {
		log_once("softcpu: instruction continues outside guest RAM at physical %#llx -> #UD",
			 (unsigned long long)phys2);
		raise_ud(c);
	}
	for (unsigned i = 0; i < 15; i++) {
		uint64_t pa = i < first ? phys + i : phys2 + (i - first);
		bytes[i] = *mmu_ram_ptr(c, pa, 1);
	}
	decode_insn(&bc->scratch.insn[0], bytes, 15, c->code_bits);
	softcpu_exec_prepare(&bc->scratch.insn[0]);
	bc->scratch.ninsn = 1;
	return &bc->scratch;
}

static struct block *block_lookup(struct softcpu *c)
{
	struct block_cache *bc = c->blocks;
	uint64_t lin = c->segbase[S_CS] + c->rip;
	if (!c->long64)
		lin = (uint32_t)lin;
	uint8_t key = (uint8_t)(c->code_bits | (c->cpl == 3 ? 0x80 : 0));
	struct jump_entry *je = &bc->jump[(lin ^ (lin >> 12)) & (JUMP_CACHE_SIZE - 1)];
	uint32_t epoch = atomic_load_explicit(&c->m->code_epoch, memory_order_acquire);
	if (likely(je->lin == lin && je->key == key && je->tlb_gen == c->tlb_gen && je->code_epoch == epoch && je->b))
		return je->b;
	struct block *b = block_find_or_decode(c, lin);
	if (b != &bc->scratch) {
		unsigned bit = jump_page_bit(lin);
		c->jump_pages[bit / 64] |= 1ull << (bit % 64);
		*je = (struct jump_entry){.lin = lin, .b = b, .tlb_gen = c->tlb_gen, .code_epoch = epoch, .key = key};
	}
	return b;
}

static __attribute__((noinline)) struct block *block_find_or_decode(struct softcpu *c, uint64_t lin)
{
	/* A page newly holding code bumps code_epoch too, so every vCPU comes
	 * here soon after and drops its write fast paths to code pages. */
	uint32_t code_marks = atomic_load_explicit(&c->m->code_mark_epoch, memory_order_acquire);
	if (unlikely(code_marks != c->seen_code_mark_epoch))
		mmu_sync_code_pages(c, code_marks);
	struct block_cache *bc = c->blocks;
	uint64_t phys = mmu_translate_exec(c, lin);
	uint64_t pfn = phys >> 12;
	const uint8_t *page = mmu_ram_ptr(c, phys & ~0xfffull, 4096);
	if (!page) {
		log_once("softcpu: execution outside guest RAM at physical %#llx -> #UD", (unsigned long long)phys);
		raise_ud(c);
	}
	uint32_t gen = atomic_load_explicit(&c->m->code_gen[pfn], memory_order_acquire);
	uint32_t h = hash_phys(phys, c->code_bits);
	for (struct block **pp = &bc->hash[h]; *pp; pp = &(*pp)->hnext) {
		struct block *b = *pp;
		if (b->phys != phys || b->code_bits != c->code_bits)
			continue;
		if (b->gen == gen)
			return b;
		*pp = b->hnext; /* stale: its page was written */
		break;
	}

	size_t need = sizeof(struct block) + BLOCK_MAX_INSNS * sizeof(struct insn);
	if (bc->used + need > BLOCK_ARENA_BYTES)
		softcpu_block_cache_invalidate_all(c);
	struct block *b = (struct block *)(bc->arena + bc->used);
	mmu_mark_code_page(c, phys);
	gen = atomic_load_explicit(&c->m->code_gen[pfn], memory_order_acquire);
	unsigned off = (unsigned)(phys & 0xfff), n = 0;
	while (n < BLOCK_MAX_INSNS && off < 4096) {
		struct insn *in = &b->insn[n];
		int len = decode_insn(in, page + off, 4096 - off, c->code_bits);
		if (len == 0)
			break; /* crosses into the next page */
		softcpu_exec_prepare(in);
		n++;
		off += (unsigned)len;
		if (ends_block(in))
			break;
	}
	if (n == 0)
		return decode_crossing(c, lin, phys);
	b->phys = phys;
	b->gen = gen;
	b->code_bits = c->code_bits;
	b->ninsn = (uint16_t)n;
	b->jit = (struct jit_ref){0};
	b->hnext = bc->hash[h];
	bc->hash[h] = b;
	bc->used += (sizeof(struct block) + n * sizeof(struct insn) + 15) & ~(size_t)15;
	return b;
}

/* ---- guest RAM written by device processes ---- */

static void device_wrote_page(void *machine, uint64_t gpa)
{
	softcpu_machine_ram_written(machine, gpa, 4096);
}

/* The dirty log's generation moved: the first vCPU to see it takes the
 * pages and stales their code for all; the others wait on the lock until
 * that is done, so none runs a stale block after seeing the move. */
static __attribute__((noinline)) void sync_device_writes(struct softcpu *c)
{
	struct softcpu_machine *m = c->m;
	pthread_mutex_lock(&m->dirty_lock);
	uint64_t generation = atomic_load_explicit(m->dirty_generation, memory_order_acquire);
	if (generation != m->dirty_taken) {
		guest_mem_take_dirty(&m->devices_mem, device_wrote_page, m);
		m->dirty_taken = generation;
	}
	c->seen_dirty_generation = generation;
	pthread_mutex_unlock(&m->dirty_lock);
}

/* ---- requests and interrupts ---- */

void softcpu_request(struct softcpu *c, unsigned req)
{
	atomic_fetch_or_explicit(&c->requests, req, memory_order_release);
	pthread_mutex_lock(&c->wake_lock);
	pthread_cond_broadcast(&c->wake_cond);
	pthread_mutex_unlock(&c->wake_lock);
}

void softcpu_set_intr(struct softcpu *c, int level)
{
	atomic_store_explicit(&c->intr_line, level ? 1 : 0, memory_order_release);
	if (level)
		softcpu_request(c, REQ_INTR);
}

/* Exception classes for the double-fault rules. */
enum { EXC_BENIGN, EXC_CONTRIBUTORY, EXC_PAGEFAULT, EXC_DOUBLE };

static int exc_class(int vector)
{
	switch (vector) {
	case EXC_DE: case EXC_TS: case EXC_NP: case EXC_SS: case EXC_GP: return EXC_CONTRIBUTORY;
	case EXC_PF: return EXC_PAGEFAULT;
	case EXC_DF: return EXC_DOUBLE;
	default: return EXC_BENIGN;
	}
}

/* Deliver the exception softcpu_raise() recorded.  false: triple fault. */
static bool handle_fault(struct softcpu *c)
{
	int vector = c->exc_vector;
	uint32_t error = c->exc_error;
	bool has_error = c->exc_has_error;
	int first = c->exc_nest, second = exc_class(vector);
	if (first == EXC_DOUBLE && second != EXC_BENIGN)
		return false;
	if ((first == EXC_CONTRIBUTORY && second == EXC_CONTRIBUTORY) ||
	    (first == EXC_PAGEFAULT && second != EXC_BENIGN)) {
		vector = EXC_DF;
		error = 0;
		has_error = true;
		second = EXC_DOUBLE;
	}
	c->exc_nest = second;
	softcpu_deliver(c, vector, error, has_error, INTR_EXCEPTION, c->rip);
	c->exc_nest = EXC_BENIGN;
	return true;
}

static void wait_for_wakeup(struct softcpu *c)
{
	pthread_mutex_lock(&c->wake_lock);
	while (!atomic_load_explicit(&c->requests, memory_order_acquire) &&
	       !(atomic_load_explicit(&c->intr_line, memory_order_acquire) && c->intr_ack))
		pthread_cond_wait(&c->wake_cond, &c->wake_lock);
	pthread_mutex_unlock(&c->wake_lock);
}

/* Not inlined into softcpu_run: a function calling setjmp keeps its locals
 * in memory, and this loop is hot. */
static __attribute__((noinline)) enum softcpu_exit run_loop(struct softcpu *c)
{
	for (;;) {
		unsigned req = atomic_load_explicit(&c->requests, memory_order_relaxed);
		if (unlikely(req)) {
			atomic_fetch_and_explicit(&c->requests, ~(REQ_INTR | REQ_STOP), memory_order_acquire);
			if (req & REQ_STOP)
				return SOFTCPU_EXIT_STOP;
		}
		bool shadow = c->intr_shadow;
		c->intr_shadow = false;
		if (atomic_load_explicit(&c->intr_line, memory_order_relaxed) && c->intr_ack && (c->rflags & F_IF) &&
		    !shadow) {
			int vector = c->intr_ack(c->intr_opaque);
			if (vector >= 0 && vector < 256) {
				c->halted = false;
				softcpu_deliver(c, vector, 0, false, INTR_EXTERNAL, c->rip);
			}
		}
		if (c->halted) {
			/* Nothing can wake a CPU with interrupts off, or one with
			 * no interrupt controller attached. */
			if (!(c->rflags & F_IF) || !c->intr_ack)
				return SOFTCPU_EXIT_HALT;
			wait_for_wakeup(c);
			continue;
		}
		if (c->icount >= c->run_limit)
			return SOFTCPU_EXIT_STOP;
		/* Device writes (guest_mem.c says why this ordering is enough): the
		 * fence keeps the guest's loads so far (a used index) before the
		 * generation's; it costs nothing on x86. */
		atomic_thread_fence(memory_order_acquire);
		if (unlikely(atomic_load_explicit(c->m->dirty_generation, memory_order_acquire) !=
			     c->seen_dirty_generation))
			sync_device_writes(c);
		struct block *b = block_lookup(c);
		/* The scratch block (an instruction crossing pages) changes
		 * under its translation: always interpreted. */
		if (c->jit && !shadow && b != &c->blocks->scratch && jit_run(c, &b->jit, b->insn, b->ninsn))
			continue;
		softcpu_exec(c, b->insn, shadow ? 1 : b->ninsn);
	}
}

const uint8_t *softcpu_jit_next(struct softcpu *c)
{
	if (atomic_load_explicit(&c->requests, memory_order_relaxed) || c->intr_shadow || c->halted ||
	    (atomic_load_explicit(&c->intr_line, memory_order_relaxed) && c->intr_ack && (c->rflags & F_IF)) ||
	    c->icount >= c->run_limit)
		return NULL;
	atomic_thread_fence(memory_order_acquire); /* as the run loop */
	if (atomic_load_explicit(c->m->dirty_generation, memory_order_acquire) != c->seen_dirty_generation)
		return NULL;
	struct block *b = block_lookup(c);
	return b == &c->blocks->scratch ? NULL : jit_code(c, &b->jit);
}

static enum softcpu_exit run(struct softcpu *c, uint64_t max_insns)
{
	c->run_limit = max_insns ? c->icount + max_insns : UINT64_MAX;
	c->exc_nest = EXC_BENIGN;
	if (__builtin_setjmp(c->fault_jmp)) {
		if (c->exc_vector == EXC_ABANDON) {
			c->exc_vector = -1;
			c->exc_nest = EXC_BENIGN;
			return SOFTCPU_EXIT_ABANDONED;
		}
		if (!handle_fault(c)) {
			c->exc_nest = EXC_BENIGN;
			return SOFTCPU_EXIT_SHUTDOWN;
		}
	} else if (c->inject_vector >= 0) {
		int vector = c->inject_vector;
		c->inject_vector = -1;
		c->halted = false;
		softcpu_raise(c, vector, c->inject_error, c->inject_has_error); /* delivered just above */
	}
	return run_loop(c);
}

enum softcpu_exit softcpu_run(struct softcpu *c, uint64_t max_insns)
{
	enum softcpu_exit why = run(c, max_insns);
	softcpu_x87_flush(c); /* the host FPU holds guest state only in run() */
	return why;
}
