/* guest_mem.h - the only way a device touches guest RAM: every access is
 * checked against the RAM regions, with overflow-safe arithmetic.
 *
 * Guest RAM is one shared-memory object; its bytes may sit in guest-physical
 * space in up to GUEST_MEM_MAX_REGIONS pieces (the PC board puts what does
 * not fit below its 32-bit MMIO hole above 4 GiB).  The regions follow each
 * other in the object in the order listed. */
#ifndef MINIVM_GUEST_MEM_H
#define MINIVM_GUEST_MEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The dirty log: which guest pages device processes wrote, so that the
 * software CPU drops code it decoded from them.  It lives in the same
 * shared-memory object as guest RAM, at the first page boundary after RAM:
 * this header, then one bit per 4 KiB guest page (bit pfn % 64 of
 * bits[pfn / 64]).  A device sets bits, then bumps the generation; the core
 * notices the generation change, takes (and clears) the bits.  Devices can
 * write it at will: the core computes the log's size from its own RAM size
 * and a wrong bit costs only a needless invalidation. */
struct guest_dirty_log {
	_Atomic uint64_t generation;
	uint64_t pad[7]; /* the generation alone in its cache line */
	_Atomic uint64_t bits[];
};

#define GUEST_MEM_MAX_REGIONS 2

struct guest_mem_region {
	uint64_t gpa, size;
};

struct guest_mem {
	uint8_t *base;
	uint64_t size;                 /* bytes of RAM in the object */
	struct guest_dirty_log *dirty; /* NULL: nobody needs to know of writes */
	/* 0: one region, guest physical [0, size) (guest_mem_set_regions). */
	unsigned nregions;
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
};

/* Lay the object's bytes out as n regions (ascending, not overlapping, 4 KiB
 * aligned, not wrapping, their sizes adding up to m->size).  false, and m
 * unchanged, if they are not so: they may come from another process. */
bool guest_mem_set_regions(struct guest_mem *m, const struct guest_mem_region *r, unsigned n);

/* The offset in the object of [gpa, gpa+len) if it lies wholly inside one
 * RAM region. */
static inline bool guest_mem_offset(const struct guest_mem *m, uint64_t gpa, uint64_t len,
				    uint64_t *offset)
{
	if (m->nregions == 0) {
		if (gpa > m->size || len > m->size - gpa)
			return false;
		*offset = gpa;
		return true;
	}
	uint64_t at = 0;
	for (unsigned i = 0; i < m->nregions && i < GUEST_MEM_MAX_REGIONS; i++) {
		const struct guest_mem_region *r = &m->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa)) {
			*offset = at + (gpa - r->gpa);
			return true;
		}
		at += r->size;
	}
	return false;
}

/* Bytes of the shared-memory object that holds guest RAM of ram_size bytes
 * and the dirty log after it: the core creates it with this size, a device
 * maps it with this size. */
uint64_t guest_mem_shm_size(uint64_t ram_size);

/* Guest RAM of ram_size bytes and its dirty log, in shm (mapped with
 * guest_mem_shm_size(ram_size) bytes): the same for the core and devices. */
void guest_mem_attach(struct guest_mem *m, void *shm, uint64_t ram_size);

/* The core: take the pages marked in the log since the last take, clearing
 * them, calling page_written(opaque, gpa) for each. */
void guest_mem_take_dirty(const struct guest_mem *m, void (*page_written)(void *opaque, uint64_t gpa),
			  void *opaque);

/* A device wrote [gpa, gpa+len) through a pointer from guest_mem_ptr: tell
 * the CPU, whose cached translations of those pages are now stale (marks the
 * log, then bumps its generation).  Call it before making the data visible
 * to the guest (the used index).  guest_mem_write does this itself. */
void guest_mem_written(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Pointer to [gpa, gpa+len) if it lies wholly inside one RAM region, else
 * NULL. */
static inline void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t offset;
	if (!m->base || !guest_mem_offset(m, gpa, len, &offset))
		return NULL;
	return m->base + offset;
}

bool guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len);
bool guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len);

#endif
