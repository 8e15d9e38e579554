/* linux.c - unpacking and placing an arm64 kernel Image and its initrd
 * (arm64_board.h).  The Image header (Documentation/arm64/booting.rst):
 * code0/code1, then text_offset and image_size (little-endian u64 at 8 and
 * 16), flags at 24, the magic "ARM\x64" at 56.  A gzip'd Image (Image.gz,
 * what several distributions ship as vmlinuz) is inflated with zlib. */
#include "arm64_board.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "le.h"

#define IMAGE_HEADER_SIZE 64
#define IMAGE_MAGIC 0x644d5241u /* "ARM\x64" */
#define KERNEL_BASE 0x200000ull /* 2 MiB aligned, as booting.rst asks */
#define TWO_MIB 0x200000ull
#define PAGE 0x1000ull
#define GZIP_CHUNK (16u << 20) /* the output buffer grows by this much */
#define GZIP_INPUT_MAX (1u << 30) /* no Image is that big; keeps avail_in a uInt */

bool arm64_image_is_gzip(const uint8_t *kernel, size_t kernel_size)
{
	return kernel_size >= 2 && kernel[0] == 0x1f && kernel[1] == 0x8b;
}

int arm64_image_gunzip(const uint8_t *gz, size_t gz_size, size_t max_size, uint8_t **out,
		       size_t *out_size, char *err, size_t errlen)
{
	*out = NULL;
	*out_size = 0;
	if (gz_size > GZIP_INPUT_MAX) {
		snprintf(err, errlen, "the gzip'd Image is larger than %u MiB", GZIP_INPUT_MAX >> 20);
		return -1;
	}
	z_stream z = {.next_in = (Bytef *)gz, .avail_in = (uInt)gz_size};
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) { /* 16: a gzip wrapper, not zlib's */
		snprintf(err, errlen, "zlib: cannot start inflating");
		return -1;
	}
	uint8_t *buf = NULL;
	size_t cap = 0;
	int rc = Z_OK;
	while (rc == Z_OK) {
		if (z.avail_out == 0) {
			if (cap >= max_size) {
				snprintf(err, errlen, "the gzip'd Image unpacks to more than %zu bytes",
					 max_size);
				goto fail;
			}
			size_t step = max_size - cap < GZIP_CHUNK ? max_size - cap : GZIP_CHUNK;
			uint8_t *grown = realloc(buf, cap + step);
			if (!grown) {
				snprintf(err, errlen, "out of memory unpacking the gzip'd Image");
				goto fail;
			}
			buf = grown;
			z.next_out = buf + cap;
			z.avail_out = (uInt)step;
			cap += step;
		}
		rc = inflate(&z, Z_NO_FLUSH);
	}
	if (rc != Z_STREAM_END) { /* Z_BUF_ERROR here: the input ended first */
		snprintf(err, errlen, "the gzip'd Image %s (zlib: %s)",
			 rc == Z_BUF_ERROR   ? "is truncated"
			 : rc == Z_MEM_ERROR ? "cannot be unpacked: out of memory"
					     : "is corrupt",
			 z.msg ? z.msg : zError(rc));
		goto fail;
	}
	*out = buf;
	*out_size = cap - z.avail_out; /* bytes after the first gzip member are ignored, as by gzip -d */
	inflateEnd(&z);
	return 0;
fail:
	inflateEnd(&z);
	free(buf);
	return -1;
}

int arm64_linux_place(uint8_t *ram, uint64_t ram_size, const uint8_t *kernel, size_t kernel_size,
		      const uint8_t *initrd, size_t initrd_size, struct arm64_linux_loaded *loaded,
		      char *err, size_t errlen)
{
	memset(loaded, 0, sizeof(*loaded));
	if (kernel_size < IMAGE_HEADER_SIZE || le32(kernel + 56) != IMAGE_MAGIC) {
		snprintf(err, errlen, "not an arm64 kernel Image (no \"ARM\\x64\" magic at offset 56)");
		return -1;
	}
	uint64_t text_offset = le64(kernel + 8);
	uint64_t image_size = le64(kernel + 16);
	if (image_size == 0) /* kernels before 3.17: no size given */
		image_size = kernel_size;
	if (text_offset >= TWO_MIB || image_size < kernel_size) {
		snprintf(err, errlen, "the Image header is inconsistent (text_offset %#llx, image_size "
			 "%#llx for %zu bytes)", (unsigned long long)text_offset,
			 (unsigned long long)image_size, kernel_size);
		return -1;
	}
	uint64_t entry = KERNEL_BASE + text_offset;
	/* The device tree in the last 2 MiB-aligned 2 MiB of RAM, the initrd
	 * page-aligned below it, the kernel (with its bss) below that. */
	if (ram_size < 4 * TWO_MIB) {
		snprintf(err, errlen, "an arm64 Linux guest needs at least 8 MiB of RAM");
		return -1;
	}
	uint64_t dtb = (ram_size & ~(TWO_MIB - 1)) - TWO_MIB;
	uint64_t initrd_start = (dtb - initrd_size) & ~(PAGE - 1);
	if (initrd_size > dtb || entry + image_size > initrd_start) {
		snprintf(err, errlen, "the kernel (%llu bytes in memory) and initrd (%zu bytes) do not "
			 "fit in %llu bytes of RAM", (unsigned long long)image_size, initrd_size,
			 (unsigned long long)ram_size);
		return -1;
	}
	memset(ram + entry, 0, image_size);
	memcpy(ram + entry, kernel, kernel_size);
	if (initrd_size)
		memcpy(ram + initrd_start, initrd, initrd_size);
	*loaded = (struct arm64_linux_loaded){.entry = entry, .dtb = dtb,
					      .initrd_start = initrd_size ? initrd_start : 0,
					      .initrd_size = initrd_size};
	return 0;
}
