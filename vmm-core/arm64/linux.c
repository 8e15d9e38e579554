/* linux.c - placing an arm64 kernel Image and its initrd (arm64_board.h).
 * The Image header (Documentation/arm64/booting.rst): code0/code1, then
 * text_offset and image_size (little-endian u64 at 8 and 16), flags at 24,
 * the magic "ARM\x64" at 56. */
#include "arm64_board.h"

#include <stdio.h>
#include <string.h>

#include "le.h"

#define IMAGE_HEADER_SIZE 64
#define IMAGE_MAGIC 0x644d5241u /* "ARM\x64" */
#define KERNEL_BASE 0x200000ull /* 2 MiB aligned, as booting.rst asks */
#define TWO_MIB 0x200000ull
#define PAGE 0x1000ull

int arm64_linux_place(uint8_t *ram, uint64_t ram_size, const uint8_t *kernel, size_t kernel_size,
		      const uint8_t *initrd, size_t initrd_size, struct arm64_linux_loaded *loaded,
		      char *err, size_t errlen)
{
	memset(loaded, 0, sizeof(*loaded));
	if (kernel_size >= 2 && kernel[0] == 0x1f && kernel[1] == 0x8b) {
		snprintf(err, errlen, "a gzip-compressed Image (vmlinuz): unpack it first "
			 "(gunzip <vmlinuz >Image; this build has no zlib)");
		return -1;
	}
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
