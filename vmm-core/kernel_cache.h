/* kernel_cache.h - the bzImage's unpacked kernel kept between runs.
 *
 * Unpacking the xz payload (linux_unpack_bzimage) takes 0.8 s natively and
 * 8-11 s in the nested KVM rig's emulated L1: the largest part of a boot
 * under KVM that is minivm's own.  The unpacked ELF is stored in the user's
 * cache directory (host_cache_dir) under a name made of the whole bzImage's
 * CRC-64 and size, so the next boot of the same image reads it instead.
 * A file whose trailing CRC-64 does not match is unpacked again; one that
 * matches is no more trusted than the bzImage: linux_load checks it as it
 * checks every ELF. */
#ifndef MINIVM_KERNEL_CACHE_H
#define MINIVM_KERNEL_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* Files kept: the newest few images' unpacks (about 60 MB each). */
#define KERNEL_CACHE_KEEP 4

/* Where img's unpacked kernel is kept: computed once per image (a CRC-64
 * of the whole bzImage), for both the load and, on a miss, the store.
 * name is empty when caching is off or this build unpacks nothing. */
struct kernel_cache_key {
	char dir[4096];
	char name[64];
};

void kernel_cache_key(const uint8_t *img, size_t size, struct kernel_cache_key *key);

/* The unpacked kernel kept under key, read into a malloc'd buffer: 0, or
 * -1 when it is not there (or caching is off) or larger than max_size. */
int kernel_cache_load(const struct kernel_cache_key *key, uint64_t max_size, uint8_t **vmlinux,
		      size_t *vmlinux_size);

/* Keep an unpacked kernel under key for the next run; a failure is logged
 * once and costs only the next run's unpack. */
void kernel_cache_store(const struct kernel_cache_key *key, const uint8_t *vmlinux,
			size_t vmlinux_size);

#endif
