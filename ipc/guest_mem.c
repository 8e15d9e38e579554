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
	return true;
}
