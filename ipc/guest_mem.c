/* guest_mem.c - bounds-checked copies to and from guest RAM (guest_mem.h). */
#include "guest_mem.h"

#include <string.h>

bool guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len)
{
	const void *src = guest_mem_ptr(m, gpa, len);
	if (!src)
		return false;
	memcpy(dst, src, len);
	return true;
}

bool guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len)
{
	void *dst = guest_mem_ptr(m, gpa, len);
	if (!dst)
		return false;
	memcpy(dst, src, len);
	guest_mem_written(m, gpa, len);
	return true;
}

#define PAGE 4096u

bool guest_mem_set_regions(struct guest_mem *m, const struct guest_mem_region *r, unsigned n)
{
	if (n < 1 || n > GUEST_MEM_MAX_REGIONS)
		return false;
	uint64_t total = 0, next_gpa = 0;
	for (unsigned i = 0; i < n; i++) {
		if (r[i].size == 0 || r[i].gpa % PAGE || r[i].size % PAGE || r[i].gpa < next_gpa ||
		    r[i].size > UINT64_MAX - r[i].gpa || r[i].size > UINT64_MAX - total)
			return false;
		next_gpa = r[i].gpa + r[i].size;
		total += r[i].size;
	}
	if (total != m->size)
		return false;
	for (unsigned i = 0; i < n; i++)
		m->regions[i] = r[i];
	m->nregions = n;
	return true;
}

/* The guest-physical address of the object's byte at offset (< m->size). */
static uint64_t gpa_of_offset(const struct guest_mem *m, uint64_t offset)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		if (offset < m->regions[i].size)
			return m->regions[i].gpa + offset;
		offset -= m->regions[i].size;
	}
	return offset;
}

static uint64_t page_round_up(uint64_t n)
{
	return (n + PAGE - 1) & ~(uint64_t)(PAGE - 1);
}

static uint64_t dirty_words(uint64_t ram_size)
{
	return (page_round_up(ram_size) / PAGE + 63) / 64;
}

uint64_t guest_mem_shm_size(uint64_t ram_size)
{
	return page_round_up(ram_size) +
	       page_round_up(sizeof(struct guest_dirty_log) + dirty_words(ram_size) * sizeof(uint64_t));
}

void guest_mem_attach(struct guest_mem *m, void *shm, uint64_t ram_size)
{
	m->base = shm;
	m->size = ram_size;
	m->nregions = 0;
	m->dirty = (struct guest_dirty_log *)((uint8_t *)shm + page_round_up(ram_size));
}

/* Ordering: the bits are set, then the generation is bumped with release,
 * and the caller makes the data visible to the guest (the used index) only
 * after this returns.  A vCPU that sees that index and jumps to the new code
 * does so through a block boundary, where it loads the generation (after an
 * acquire fence, so not before its load of the index): it sees the bump,
 * and through the release/acquire pair the bits and the bytes written. */
void guest_mem_written(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t offset;
	if (!m->dirty || len == 0 || !guest_mem_offset(m, gpa, len, &offset))
		return;
	uint64_t last = (offset + len - 1) / PAGE;
	for (uint64_t pfn = offset / PAGE; pfn <= last; pfn++)
		atomic_fetch_or_explicit(&m->dirty->bits[pfn / 64], 1ull << (pfn % 64), memory_order_relaxed);
	atomic_fetch_add_explicit(&m->dirty->generation, 1, memory_order_release);
}

void guest_mem_take_dirty(const struct guest_mem *m, void (*page_written)(void *opaque, uint64_t gpa),
			  void *opaque)
{
	if (!m->dirty)
		return;
	uint64_t words = dirty_words(m->size);
	for (uint64_t i = 0; i < words; i++) {
		if (!atomic_load_explicit(&m->dirty->bits[i], memory_order_relaxed))
			continue;
		uint64_t w = atomic_exchange_explicit(&m->dirty->bits[i], 0, memory_order_acquire);
		for (; w; w &= w - 1)
			page_written(opaque, gpa_of_offset(m, (i * 64 + (uint64_t)__builtin_ctzll(w)) * PAGE));
	}
}
