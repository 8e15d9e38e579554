/* guest_mem.h - the only way a device touches guest RAM: every access is
 * checked against the mapped size, with overflow-safe arithmetic. */
#ifndef MINIVM_GUEST_MEM_H
#define MINIVM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem {
	uint8_t *base;
	uint64_t size;
};

/* Pointer to [gpa, gpa+len) if it lies wholly inside guest RAM, else NULL. */
static inline void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (!m->base || gpa > m->size || len > m->size - gpa)
		return NULL;
	return m->base + gpa;
}

bool guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len);
bool guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len);

#endif
