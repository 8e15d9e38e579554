/* boot.c - long-mode start-up tables and the flat-image layout (boot.h). */
#include "boot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The start state's control registers. */
#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

/* Its segments: flat, base 0, limit 4 GiB (G=1), present, DPL 0. */
static const struct boot_segment code64 = {
	.selector = BOOT_GDT_CODE64, .limit = 0xffffffffu,
	.attr = 0xa09b, /* type 0xb (code, read, accessed), S, P; L, G */
};
static const struct boot_segment data = {
	.selector = BOOT_GDT_DATA, .limit = 0xffffffffu,
	.attr = 0xc093, /* type 0x3 (data, write, accessed), S, P; D/B, G */
};
static const struct boot_segment task = {
	.limit = 0x67, .attr = 0x008b, /* a busy 64-bit TSS, P */
};

/* The GDT descriptor that loads as `seg`. */
static uint64_t descriptor(const struct boot_segment *seg)
{
	uint64_t limit = seg->attr & 0x8000 ? seg->limit >> 12 : seg->limit;
	return (limit & 0xffff) | (seg->base & 0xffffff) << 16 | (uint64_t)(seg->attr & 0xff) << 40 |
	       (limit >> 16 & 0xf) << 48 | (uint64_t)(seg->attr >> 12 & 0xf) << 52 |
	       (seg->base >> 24 & 0xff) << 56;
}

void boot_long_mode_state(const struct vcpu_boot *boot, struct boot_long_mode_state *s)
{
	*s = (struct boot_long_mode_state){
		.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
		.cr3 = boot->cr3,
		.cr4 = CR4_PAE,
		.efer = EFER_LME | EFER_LMA,
		.gdt_base = boot->gdt_base,
		.gdt_limit = boot->gdt_limit,
		.code = code64,
		.data = data,
		.tr = task,
	};
}

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
	put64(t + GDT_OFF + BOOT_GDT_CODE64, descriptor(&code64));
	put64(t + GDT_OFF + BOOT_GDT_DATA, descriptor(&data));

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

/* A64 encodings for the catch-all vectors. */
#define A64_MOVZ_X0(imm16) (0xd2800000u | ((uint32_t)(imm16) << 5))
#define A64_MOVK_X0_LSL16(imm16) (0xf2a00000u | ((uint32_t)(imm16) << 5))
#define A64_STR_XZR_X0 0xf900001fu
#define A64_B_SELF 0x14000000u

int boot_flat_arm64(uint8_t *ram, uint64_t ram_size, uint64_t at, uint64_t image_size,
		    struct vcpu_boot *boot, char *err, size_t errlen)
{
	memset(boot, 0, sizeof(*boot));
	if (at < BOOT_ARM64_RAM_START || at % 4) {
		snprintf(err, errlen,
			 "flat address %#llx: want a multiple of 4 at or above %#x (below is MMIO)",
			 (unsigned long long)at, BOOT_ARM64_RAM_START);
		return -1;
	}
	uint64_t vectors = (ram_size & ~(uint64_t)(BOOT_ARM64_VECTORS_SIZE - 1)) - BOOT_ARM64_VECTORS_SIZE;
	if (at > vectors || image_size > vectors - at) {
		snprintf(err, errlen, "flat image (%llu bytes at %#llx) does not fit in %llu bytes of RAM",
			 (unsigned long long)image_size, (unsigned long long)at,
			 (unsigned long long)ram_size);
		return -1;
	}
	/* 16 vectors of 0x80 bytes: x0 = the trap address, store, spin. */
	static const uint32_t entry[] = {A64_MOVZ_X0(BOOT_ARM64_TRAP_GPA & 0xffff),
					 A64_MOVK_X0_LSL16(BOOT_ARM64_TRAP_GPA >> 16), A64_STR_XZR_X0,
					 A64_B_SELF};
	memset(ram + vectors, 0, BOOT_ARM64_VECTORS_SIZE);
	for (unsigned v = 0; v < 16; v++)
		for (unsigned i = 0; i < 4; i++)
			for (unsigned b = 0; b < 4; b++)
				ram[vectors + v * 0x80 + i * 4 + b] = (uint8_t)(entry[i] >> (8 * b));
	boot->mode = VCPU_AARCH64;
	boot->entry = at;
	boot->vbar = vectors;
	boot->trap_gpa = BOOT_ARM64_TRAP_GPA;
	return 0;
}

int boot_read_file(const char *path, uint8_t **buf, size_t *size, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	long len = -1;
	if (f && fseek(f, 0, SEEK_END) == 0)
		len = ftell(f);
	if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	*buf = malloc(len ? (size_t)len : 1);
	if (!*buf || fread(*buf, 1, (size_t)len, f) != (size_t)len) {
		snprintf(err, errlen, "%s: %s", path, *buf ? "read failed" : "out of memory");
		free(*buf);
		*buf = NULL;
		fclose(f);
		return -1;
	}
	fclose(f);
	*size = (size_t)len;
	return 0;
}
