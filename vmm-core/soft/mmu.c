/* mmu.c - linear -> physical translation and physical memory access.
 *
 * Paging: 4-level (long mode), PAE and 2-level 32-bit, with NX, global pages,
 * accessed/dirty bits and large pages.  Translations are cached in a
 * direct-mapped software TLB per access class (supervisor, user): a hit on a
 * RAM page is the inline fast path in internal.h; everything else (misses,
 * MMIO, page-crossing accesses, writes to pages holding decoded code) comes
 * here.  Physical addresses below ram_size, and in the high RAM above the
 * board's MMIO hole, are RAM; all others are MMIO and go to the board.  No
 * guest value is used to index host memory without a bounds check against
 * those. */
#include <stdio.h>

#include "internal.h"

#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_U 0x4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull
#define PTE_G 0x100ull
#define PTE_NX (1ull << 63)
#define PHYS_ADDR_BITS 40 /* CPUID 0x80000008 says so */
#define PTE_ADDR_MASK (((1ull << PHYS_ADDR_BITS) - 1) & ~0xfffull)
/* Bits 51..PHYS_ADDR_BITS must be zero in every paging-structure entry. */
#define PTE_RSVD_HIGH (((1ull << 52) - 1) & ~((1ull << PHYS_ADDR_BITS) - 1))

#define PF_P 0x1u
#define PF_W 0x2u
#define PF_U 0x4u
#define PF_RSVD 0x8u
#define PF_I 0x10u

/* ---- physical memory ---- */

uint8_t *mmu_ram_ptr(struct softcpu *c, uint64_t phys, uint64_t len)
{
	const struct softcpu_machine *m = c->m;
	if (phys < m->ram_size)
		return len > m->ram_size - phys ? NULL : m->ram + phys;
	if (phys < m->high_base || phys - m->high_base >= m->high_size ||
	    len > m->high_size - (phys - m->high_base))
		return NULL;
	return m->ram + m->ram_size + (phys - m->high_base);
}

/* Is phys in RAM (low or high)? */
static bool phys_is_ram(const struct softcpu_machine *m, uint64_t phys)
{
	return phys < m->ram_size || (phys >= m->high_base && phys - m->high_base < m->high_size);
}

/* Page pfn was written: if it held decoded code, stale its blocks.
 * Returns whether it did. */
static bool machine_code_page_written(struct softcpu_machine *m, uint64_t pfn)
{
	if (atomic_load_explicit(&m->code_bitmap[pfn], memory_order_relaxed) &&
	    atomic_exchange_explicit(&m->code_bitmap[pfn], 0, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&m->code_gen[pfn], 1, memory_order_release);
		atomic_fetch_add_explicit(&m->code_epoch, 1, memory_order_release);
		return true;
	}
	return false;
}

static void code_page_written(struct softcpu *c, uint64_t pfn)
{
	if (machine_code_page_written(c->m, pfn))
		c->block_end = true; /* the running block may be stale now */
}

void softcpu_machine_ram_written(struct softcpu_machine *m, uint64_t gpa, uint64_t len)
{
	uint64_t end = m->npages * 4096; /* code pages are tracked up to here */
	if (len == 0 || gpa >= end)
		return;
	uint64_t last = (len > end - gpa ? end - 1 : gpa + len - 1) >> 12;
	for (uint64_t pfn = gpa >> 12; pfn <= last; pfn++)
		machine_code_page_written(m, pfn);
}

static bool natural_size(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

uint64_t phys_read(struct softcpu *c, uint64_t pa, unsigned size)
{
	const uint8_t *p = mmu_ram_ptr(c, pa, size);
	if (p && natural_size(size))
		return load_le(p, size);
	if (!phys_is_ram(c->m, pa) && natural_size(size))
		return c->m->mmio_read(c->m->bus_opaque, pa, size) & size_mask(size);
	uint64_t v = 0; /* odd size (a page-crossing piece) or straddles the end of RAM */
	for (unsigned i = 0; i < size; i++)
		v |= phys_read(c, pa + i, 1) << (8 * i);
	return v;
}

void phys_write(struct softcpu *c, uint64_t pa, unsigned size, uint64_t val)
{
	uint8_t *p = mmu_ram_ptr(c, pa, size);
	if (p && natural_size(size)) {
		code_page_written(c, pa >> 12);
		if (((pa + size - 1) >> 12) != pa >> 12)
			code_page_written(c, (pa + size - 1) >> 12);
		store_le(p, size, val);
		return;
	}
	if (!phys_is_ram(c->m, pa) && natural_size(size)) {
		c->m->mmio_write(c->m->bus_opaque, pa, size, val & size_mask(size));
		return;
	}
	for (unsigned i = 0; i < size; i++)
		phys_write(c, pa + i, 1, val >> (8 * i));
}

void mmu_mark_code_page(struct softcpu *c, uint64_t phys)
{
	uint64_t pfn = phys >> 12;
	if (pfn >= c->m->npages)
		return;
	if (atomic_exchange_explicit(&c->m->code_bitmap[pfn], 1, memory_order_relaxed))
		return; /* already code: no TLB entry lets writes to it through */
	uint32_t before = atomic_fetch_add_explicit(&c->m->code_mark_epoch, 1, memory_order_release);
	atomic_fetch_add_explicit(&c->m->code_epoch, 1, memory_order_release); /* stale jump caches: see block_find_or_decode */
	if (c->seen_code_mark_epoch == before)
		c->seen_code_mark_epoch = before + 1; /* only our own mark: the scan below is enough */
	/* Writes to the page must now take the slow path, from this vCPU at once. */
	for (int cls = 0; cls < 2; cls++) {
		for (int i = 0; i < SOFTCPU_TLB_SIZE; i++)
			if (TLB_PAGE(&c->tlb[cls][i]) == (pfn << 12))
				c->tlb[cls][i].tag_write = TLB_INVALID;
		for (int i = 0; i < SOFTCPU_TLB_VICTIMS; i++)
			if (TLB_PAGE(&c->tlb_victim[cls][i]) == (pfn << 12))
				c->tlb_victim[cls][i].tag_write = TLB_INVALID;
	}
}

void mmu_sync_code_pages(struct softcpu *c, uint32_t epoch)
{
	c->seen_code_mark_epoch = epoch;
	for (int cls = 0; cls < 2; cls++) {
		struct tlb_entry *sets[2] = {c->tlb[cls], c->tlb_victim[cls]};
		int sizes[2] = {SOFTCPU_TLB_SIZE, SOFTCPU_TLB_VICTIMS};
		for (int s = 0; s < 2; s++)
			for (int i = 0; i < sizes[s]; i++) {
				struct tlb_entry *e = &sets[s][i];
				if (e->tag_write != TLB_INVALID &&
				    atomic_load_explicit(&c->m->code_bitmap[TLB_PAGE(e) >> 12], memory_order_relaxed))
					e->tag_write = TLB_INVALID;
			}
	}
}

/* ---- TLB ---- */

static void tlb_invalidate(struct tlb_entry *e)
{
	e->tag_read = e->tag_write = TLB_INVALID;
	e->phys = 0;
}

static bool tlb_matches(const struct tlb_entry *e, uint64_t vpn)
{
	return e->tag_read == vpn || e->tag_write == vpn;
}

void softcpu_tlb_flush(struct softcpu *c, bool include_global)
{
	c->tlb_gen++;
	memset(c->jump_pages, 0, sizeof(c->jump_pages));
	if (include_global)
		c->tlb_large_count = 0; /* a CR3 write keeps global large pages */
	for (int cls = 0; cls < 2; cls++) {
		for (int i = 0; i < SOFTCPU_TLB_SIZE; i++)
			if (include_global || !(c->tlb[cls][i].phys & TLB_GLOBAL))
				tlb_invalidate(&c->tlb[cls][i]);
		for (int i = 0; i < SOFTCPU_TLB_VICTIMS; i++)
			if (include_global || !(c->tlb_victim[cls][i].phys & TLB_GLOBAL))
				tlb_invalidate(&c->tlb_victim[cls][i]);
	}
}

/* Remember a large page the TLB now holds a piece of. */
static void tlb_note_large(struct softcpu *c, uint64_t base, uint64_t mask)
{
	unsigned n = c->tlb_large_count;
	if (n > SOFTCPU_TLB_LARGE_MAX)
		return;
	for (unsigned i = 0; i < n; i++)
		if (c->tlb_large[i].base == base && c->tlb_large[i].mask == mask)
			return;
	if (n < SOFTCPU_TLB_LARGE_MAX) {
		c->tlb_large[n].base = base;
		c->tlb_large[n].mask = mask;
	}
	c->tlb_large_count = n + 1;
}

static bool tlb_may_hold_large(const struct softcpu *c, uint64_t lin)
{
	if (c->tlb_large_count > SOFTCPU_TLB_LARGE_MAX)
		return true;
	for (unsigned i = 0; i < c->tlb_large_count; i++)
		if ((lin & ~c->tlb_large[i].mask) == c->tlb_large[i].base)
			return true;
	return false;
}

void mmu_invlpg(struct softcpu *c, uint64_t lin)
{
	/* Large pages are cached as 4 KiB pieces in different slots, so INVLPG
	 * of an address inside one flushes everything rather than hunting them.
	 * (Linux's INVLPGs hit 4 KiB pages: fixmap, vmalloc, user space.) */
	if (tlb_may_hold_large(c, lin)) {
		softcpu_tlb_flush(c, true);
		return;
	}
	unsigned bit = jump_page_bit(lin);
	if (c->jump_pages[bit / 64] & (1ull << (bit % 64))) {
		c->tlb_gen++;
		memset(c->jump_pages, 0, sizeof(c->jump_pages));
	}
	for (int cls = 0; cls < 2; cls++) {
		struct tlb_entry *e = tlb_slot(c, lin, cls);
		if (tlb_matches(e, lin >> 12))
			tlb_invalidate(e);
		for (int i = 0; i < SOFTCPU_TLB_VICTIMS; i++)
			if (tlb_matches(&c->tlb_victim[cls][i], lin >> 12))
				tlb_invalidate(&c->tlb_victim[cls][i]);
	}
}

/* ---- page walk ---- */

struct walk {
	uint64_t phys; /* physical address of the byte */
	bool writable, user, nx, dirty, global, large;
	uint64_t page_mask; /* offset bits within the (large) page */
};

static noreturn void page_fault(struct softcpu *c, uint64_t lin, uint32_t err)
{
	c->cr2 = lin;
	softcpu_raise(c, EXC_PF, err, true);
}

/* Read one paging-structure entry; an entry outside RAM reads as not present. */
static uint64_t read_pte(struct softcpu *c, uint64_t pa, unsigned size)
{
	const uint8_t *p = mmu_ram_ptr(c, pa, size);
	return p ? load_le(p, size) : 0;
}

static void set_pte_bits(struct softcpu *c, uint64_t pa, uint64_t old, uint64_t bits, unsigned size)
{
	if ((old & bits) != bits)
		phys_write(c, pa, size, old | bits);
}

/* Walk the page tables for `lin`; raises #PF if the access is not allowed. */
static void walk(struct softcpu *c, uint64_t lin, enum access acc, bool user, struct walk *w)
{
	uint32_t err = (acc == ACC_WRITE ? PF_W : 0) | (user ? PF_U : 0);
	bool nxe = c->efer & EFER_NXE;
	if (acc == ACC_EXEC && nxe)
		err |= PF_I;
	w->writable = w->user = true;
	w->nx = w->global = w->large = false;

	uint64_t entries[4], addrs[4];
	unsigned size = 8, levels, n = 0;
	uint64_t table;
	uint64_t rsvd = PTE_RSVD_HIGH | (nxe ? 0 : PTE_NX);
	unsigned shift;

	if (c->efer & EFER_LMA) {
		levels = 4;
		table = c->cr3 & PTE_ADDR_MASK;
		shift = 39;
	} else if (c->cr4 & CR4_PAE) {
		/* The PDPTE: 4 entries at CR3 (32-byte aligned), only P and address bits. */
		uint64_t pa = (c->cr3 & 0xffffffe0u) + ((lin >> 30) & 3) * 8;
		uint64_t e = read_pte(c, pa, 8);
		if (!(e & PTE_P))
			page_fault(c, lin, err);
		if (e & (PTE_RSVD_HIGH | 0x1e6ull))
			page_fault(c, lin, err | PF_P | PF_RSVD);
		levels = 2;
		table = e & PTE_ADDR_MASK;
		shift = 21;
	} else {
		levels = 2;
		size = 4;
		table = c->cr3 & 0xfffff000u;
		shift = 22;
		rsvd = 0;
	}

	for (;;) {
		unsigned idx_bits = size == 8 ? 9 : 10;
		uint64_t pa = table + ((lin >> shift) & ((1u << idx_bits) - 1)) * size;
		uint64_t e = read_pte(c, pa, size);
		entries[n] = e;
		addrs[n] = pa;
		n++;
		if (!(e & PTE_P))
			page_fault(c, lin, err);
		/* PS makes a large page: 1 GiB / 2 MiB in 4-level paging, 2 MiB
		 * with PAE, 4 MiB in 32-bit paging with CR4.PSE. */
		bool ps_allowed = levels == 4 ? (n == 2 || n == 3) : (n == 1 && (size == 8 || (c->cr4 & CR4_PSE)));
		bool leaf = n == levels || ((e & PTE_PS) && ps_allowed);
		uint64_t r = rsvd;
		if ((e & PTE_PS) && levels == 4 && n == 1)
			r |= PTE_PS; /* no 512 GiB pages */
		if (leaf && n < levels && size == 8)
			r |= ((1ull << shift) - 1) & ~0x1fffull; /* large-page address bits below the page */
		if (e & r)
			page_fault(c, lin, err | PF_P | PF_RSVD);
		w->writable &= !!(e & PTE_W);
		w->user &= !!(e & PTE_U);
		w->nx |= nxe && (e & PTE_NX);
		if (leaf) {
			uint64_t page_mask = (1ull << shift) - 1;
			uint64_t frame;
			if (size == 4 && n < levels) /* 4 MiB page: bits 13-20 hold address bits 32-39 */
				frame = (e & 0xffc00000u) | ((e & 0x1fe000ull) << 19);
			else
				frame = e & PTE_ADDR_MASK & ~page_mask;
			w->phys = frame | (lin & page_mask);
			w->dirty = e & PTE_D;
			w->global = (e & PTE_G) && (c->cr4 & CR4_PGE);
			w->large = n < levels;
			w->page_mask = page_mask;
			break;
		}
		table = size == 8 ? e & PTE_ADDR_MASK : e & 0xfffff000u;
		shift -= idx_bits;
	}

	/* Permissions */
	if (user && !w->user)
		page_fault(c, lin, err | PF_P);
	if (acc == ACC_WRITE && !w->writable && (user || (c->cr0 & CR0_WP)))
		page_fault(c, lin, err | PF_P);
	if (acc == ACC_EXEC && w->nx)
		page_fault(c, lin, err | PF_P);
	/* Supervisor writes to read-only pages with CR0.WP = 0 are allowed,
	 * but a TLB entry must still not let user-class writes through. */
	if (!user && !(c->cr0 & CR0_WP))
		w->writable = true;

	for (unsigned i = 0; i < n; i++)
		set_pte_bits(c, addrs[i], entries[i], PTE_A | (i == n - 1 && acc == ACC_WRITE ? PTE_D : 0), size);
	if (acc == ACC_WRITE)
		w->dirty = true;
}

static uint64_t tlb_tag(const struct tlb_entry *e, enum access acc)
{
	if (acc == ACC_EXEC)
		return (e->phys & TLB_EXEC) ? e->tag_read : TLB_INVALID;
	return acc == ACC_READ ? e->tag_read : e->tag_write;
}

/* Translate lin for `acc` in access class `user`, filling the TLB. */
static uint64_t translate(struct softcpu *c, uint64_t lin, enum access acc, bool user)
{
	if ((c->efer & EFER_LMA) && !canonical(lin))
		raise_gp(c, 0);
	struct tlb_entry *slot = tlb_slot(c, lin, user);
	for (int i = 0; i < SOFTCPU_TLB_VICTIMS; i++) {
		struct tlb_entry *v = &c->tlb_victim[user][i];
		if (tlb_tag(v, acc) == lin >> 12) { /* swap it back in */
			struct tlb_entry t = *slot;
			*slot = *v;
			*v = t;
			return TLB_PAGE(slot) | (lin & 0xfff);
		}
	}
	struct walk w = {.phys = lin, .writable = true, .user = true, .dirty = true};
	if (c->cr0 & CR0_PG)
		walk(c, lin, acc, user, &w);

	uint64_t page = w.phys & ~0xfffull;
	uint8_t *host = mmu_ram_ptr(c, page, 4096);
	if (host) {
		struct tlb_entry *e = slot;
		uint64_t vpn = lin >> 12;
		if (e->tag_read != TLB_INVALID && e->tag_read != vpn)
			c->tlb_victim[user][c->tlb_victim_next[user]++ % SOFTCPU_TLB_VICTIMS] = *e;
		bool code = atomic_load_explicit(&c->m->code_bitmap[page >> 12], memory_order_relaxed);
		e->tag_read = vpn;
		e->tag_write = (w.writable && w.dirty && !code) ? vpn : TLB_INVALID;
		e->addend = (uintptr_t)host - (uintptr_t)(lin & ~0xfffull);
		e->phys = page | (w.nx ? 0 : TLB_EXEC) | (w.global ? TLB_GLOBAL : 0);
		if (w.large)
			tlb_note_large(c, lin & ~w.page_mask, w.page_mask);
	}
	return w.phys;
}

uint64_t mmu_translate_exec(struct softcpu *c, uint64_t lin)
{
	struct tlb_entry *e = tlb_slot(c, lin, c->cpl == 3);
	if (e->tag_read == lin >> 12 && (e->phys & TLB_EXEC))
		return TLB_PAGE(e) | (lin & 0xfff);
	return translate(c, lin, ACC_EXEC, c->cpl == 3);
}

uint64_t mmu_read_slow(struct softcpu *c, uint64_t lin, unsigned size, bool sys)
{
	bool user = c->cpl == 3 && !sys;
	if (!(c->efer & EFER_LMA))
		lin = (uint32_t)lin;
	unsigned first = 4096 - (unsigned)(lin & 0xfff);
	if (first >= size)
		return phys_read(c, translate(c, lin, ACC_READ, user), size);
	/* Crosses a page: translate both pages before reading either. */
	uint64_t pa0 = translate(c, lin, ACC_READ, user);
	uint64_t pa1 = translate(c, lin + first, ACC_READ, user);
	uint64_t lo = phys_read(c, pa0, first);
	uint64_t hi = phys_read(c, pa1, size - first);
	return lo | hi << (8 * first);
}

void mmu_write_slow(struct softcpu *c, uint64_t lin, unsigned size, uint64_t val, bool sys)
{
	bool user = c->cpl == 3 && !sys;
	if (!(c->efer & EFER_LMA))
		lin = (uint32_t)lin;
	unsigned first = 4096 - (unsigned)(lin & 0xfff);
	if (first >= size) {
		phys_write(c, translate(c, lin, ACC_WRITE, user), size, val);
		return;
	}
	uint64_t pa0 = translate(c, lin, ACC_WRITE, user);
	uint64_t pa1 = translate(c, lin + first, ACC_WRITE, user);
	phys_write(c, pa0, first, val);
	phys_write(c, pa1, size - first, val >> (8 * first));
}

void mmu_probe_write(struct softcpu *c, uint64_t lin, unsigned size)
{
	bool user = c->cpl == 3;
	if (!(c->efer & EFER_LMA))
		lin = (uint32_t)lin;
	translate(c, lin, ACC_WRITE, user);
	if ((lin & 0xfff) + size > 4096)
		translate(c, lin + size - 1, ACC_WRITE, user);
}
