/* boot.c - long-mode start-up tables and the flat-image layout (boot.h). */
#include "boot.h"

#include <stdio.h>
#include <string.h>

/* Offsets inside the BOOT_TABLES_SIZE block. */
#define PML4_OFF 0x0000u
#define PDPT_OFF 0x1000u
#define PD_OFF 0x2000u /* four page directories, one per GiB */
#define GDT_OFF 0x6000u

#define PTE_PRESENT (1ull << 0)
#define PTE_WRITE (1ull << 1)
#define PTE_ACCESSED (1ull << 5)
#define PTE_DIRTY (1ull << 6)
#define PTE_LARGE (1ull << 7) /* PS: a 2 MiB page in a page directory */

/* GDT descriptors: flat, base 0, limit 4 GiB (G=1), present, DPL 0. */
#define GDT_CODE64 0x00af9b000000ffffull /* type 0xb (code, read, accessed), L=1 */
#define GDT_DATA 0x00cf93000000ffffull   /* type 0x3 (data, write, accessed), D/B=1 */

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int boot_long_mode_tables(uint8_t *ram, uint64_t ram_size, uint64_t at, struct vcpu_boot *boot,
			  char *err, size_t errlen)
{
	if (at % 4096 || at > ram_size || ram_size - at < BOOT_TABLES_SIZE) {
		snprintf(err, errlen, "long-mode tables at %#llx do not fit in %llu bytes of RAM",
			 (unsigned long long)at, (unsigned long long)ram_size);
		return -1;
	}
	uint8_t *t = ram + at;
	memset(t, 0, BOOT_TABLES_SIZE);

	/* Accessed/dirty preset so no engine has to write them back. */
	const uint64_t table_flags = PTE_PRESENT | PTE_WRITE | PTE_ACCESSED;
	put64(t + PML4_OFF, (at + PDPT_OFF) | table_flags);
	for (uint64_t gib = 0; gib < 4; gib++) {
		uint64_t pd = PD_OFF + gib * 0x1000;
		put64(t + PDPT_OFF + gib * 8, (at + pd) | table_flags);
		for (uint64_t i = 0; i < 512; i++) {
			uint64_t phys = (gib << 30) | (i << 21);
			put64(t + pd + i * 8, phys | table_flags | PTE_DIRTY | PTE_LARGE);
		}
	}
	put64(t + GDT_OFF + BOOT_GDT_CODE64, GDT_CODE64);
	put64(t + GDT_OFF + BOOT_GDT_DATA, GDT_DATA);

	boot->cr3 = at + PML4_OFF;
	boot->gdt_base = at + GDT_OFF;
	boot->gdt_limit = 3 * 8 - 1;
	return 0;
}

int boot_flat(uint8_t *ram, uint64_t ram_size, uint64_t image_size, enum vcpu_mode mode,
	      struct vcpu_boot *boot, char *err, size_t errlen)
{
	memset(boot, 0, sizeof(*boot));
	boot->mode = mode;
	boot->entry = 0;
	if (mode == VCPU_REAL16) {
		if (image_size > ram_size) {
			snprintf(err, errlen, "flat image (%llu bytes) is larger than RAM",
				 (unsigned long long)image_size);
			return -1;
		}
		return 0;
	}
	uint64_t top = ram_size & ~0xfffull;
	if (top < BOOT_FLAT_RESERVED || image_size > top - BOOT_FLAT_RESERVED) {
		snprintf(err, errlen,
			 "flat image (%llu bytes) overlaps the long-mode tables in the top 64 KiB of RAM",
			 (unsigned long long)image_size);
		return -1;
	}
	boot->rsp = top;
	return boot_long_mode_tables(ram, ram_size, top - BOOT_FLAT_RESERVED, boot, err, errlen);
}
