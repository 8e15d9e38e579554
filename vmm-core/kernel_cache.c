/* kernel_cache.c - the bzImage's unpacked kernel kept between runs (see
 * kernel_cache.h). */
#include "kernel_cache.h"
#include "boot.h"
#include "host.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MINIVM_HAVE_LZMA
#include <lzma.h>

#include "le.h"

#define NAME_PREFIX "vmlinux-"

/* Each file ends in a trailer: a magic and the CRC-64 of what precedes
 * it, so that a damaged file (a full disk, an editor, a bad sector) is
 * unpacked again instead of booted (0.05 s natively for 66 MB). */
static const uint8_t trailer_magic[8] = {'m', 'i', 'n', 'i', 'v', 'm', 'K', '1'};
#define TRAILER_SIZE 16

void kernel_cache_key(const uint8_t *img, size_t size, struct kernel_cache_key *key)
{
	key->name[0] = 0;
	if (host_cache_dir(key->dir, sizeof(key->dir)) != 0)
		return;
	int len = snprintf(key->name, sizeof(key->name), NAME_PREFIX "%016llx-%zu",
			   (unsigned long long)lzma_crc64(img, size, 0), size);
	if (len < 0 || (size_t)len >= sizeof(key->name))
		key->name[0] = 0;
}

int kernel_cache_load(const struct kernel_cache_key *key, uint64_t max_size, uint8_t **vmlinux,
		      size_t *vmlinux_size)
{
	char path[sizeof(key->dir) + sizeof(key->name)], err[256];
	uint8_t *buf;
	size_t len;
	*vmlinux = NULL;
	if (!key->name[0] || snprintf(path, sizeof(path), "%s/%s", key->dir, key->name) >= (int)sizeof(path))
		return -1;
	FILE *probe = fopen(path, "rb"); /* absent is the usual miss: no message */
	if (!probe)
		return -1;
	fclose(probe);
	if (boot_read_file(path, &buf, &len, err, sizeof(err)) != 0) {
		log_msg("kernel cache: cannot read %s (unpacking instead)", err);
		return -1;
	}
	if (len < TRAILER_SIZE || memcmp(buf + len - TRAILER_SIZE, trailer_magic, 8) != 0 ||
	    le64(buf + len - 8) != lzma_crc64(buf, len - TRAILER_SIZE, 0)) {
		log_msg("kernel cache: %s is damaged (unpacking instead)", path);
		free(buf);
		return -1;
	}
	len -= TRAILER_SIZE;
	if (len > max_size) {
		free(buf);
		return -1;
	}
	*vmlinux = buf;
	*vmlinux_size = len;
	return 0;
}

void kernel_cache_store(const struct kernel_cache_key *key, const uint8_t *vmlinux,
			size_t vmlinux_size)
{
	char err[256];
	uint8_t trailer[TRAILER_SIZE];
	if (!key->name[0])
		return;
	memcpy(trailer, trailer_magic, 8);
	put_le64(trailer + 8, lzma_crc64(vmlinux, vmlinux_size, 0));
	if (host_cache_store(key->dir, key->name, sizeof(NAME_PREFIX) - 1, KERNEL_CACHE_KEEP, vmlinux,
			     vmlinux_size, trailer, sizeof(trailer), err, sizeof(err)) != 0)
		log_msg("kernel cache: %s (the next run unpacks again)", err);
}

#else /* nothing is unpacked on the host, so nothing is kept */

void kernel_cache_key(const uint8_t *img, size_t size, struct kernel_cache_key *key)
{
	(void)img, (void)size;
	key->name[0] = 0;
}

int kernel_cache_load(const struct kernel_cache_key *key, uint64_t max_size, uint8_t **vmlinux,
		      size_t *vmlinux_size)
{
	(void)key, (void)max_size, (void)vmlinux_size;
	*vmlinux = NULL;
	return -1;
}

void kernel_cache_store(const struct kernel_cache_key *key, const uint8_t *vmlinux,
			size_t vmlinux_size)
{
	(void)key, (void)vmlinux, (void)vmlinux_size;
}

#endif
