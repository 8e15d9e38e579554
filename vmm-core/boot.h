/* boot.h - engine-neutral start-up state built in guest RAM: the identity
 * page tables and GDT a vCPU needs to start directly in 64-bit long mode,
 * and the layout used for flat guest images.
 *
 * Every engine (KVM, the software CPU, WHP) starts a vCPU from the same
 * struct vcpu_boot, so the tables live here and not in an engine. */
#ifndef MINIVM_BOOT_H
#define MINIVM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* Long-mode start-up tables: PML4, PDPT, four page directories of 2 MiB
 * pages (identity map of 0..4 GiB) and a 3-entry GDT, 4 KiB aligned. */
#define BOOT_TABLES_SIZE 0x7000u
#define BOOT_GDT_CODE64 0x08
#define BOOT_GDT_DATA 0x10

/* A segment register as a vCPU holds it after loading a descriptor: attr
 * packs the descriptor's access byte (bits 0..7: type, S, DPL, P) and its
 * flags nibble (bits 12..15: AVL, L, D/B, G), VMX's access-rights layout;
 * limit is in bytes (already scaled by G). */
struct boot_segment {
	uint16_t selector;
	uint64_t base;
	uint32_t limit;
	uint16_t attr;
};

/* The architectural state of a vCPU entering 64-bit mode at boot: one
 * definition for every engine, which only translates it into its own
 * register format.  The GDT that boot_long_mode_tables writes holds the
 * same code and data descriptors. */
struct boot_long_mode_state {
	uint64_t cr0, cr3, cr4, efer;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	struct boot_segment code; /* CS */
	struct boot_segment data; /* DS, ES, FS, GS, SS */
	struct boot_segment tr;   /* VM entry wants a usable TR; nothing switches tasks */
};

/* The start state for a VCPU_LONG64 boot (boot->cr3, gdt_base, gdt_limit). */
void boot_long_mode_state(const struct vcpu_boot *boot, struct boot_long_mode_state *s);

/* Flat guests: the top BOOT_FLAT_RESERVED bytes of RAM hold the long-mode
 * tables (at its start) and the initial stack (the rest, rsp = end of RAM). */
#define BOOT_FLAT_RESERVED 0x10000u

/* Write the long-mode tables at guest physical `at` (4 KiB aligned, wholly
 * in RAM) and fill boot->cr3, gdt_base and gdt_limit.  Returns 0, or -1 with
 * a one-line reason in err. */
int boot_long_mode_tables(uint8_t *ram, uint64_t ram_size, uint64_t at, struct vcpu_boot *boot,
			  char *err, size_t errlen);

/* Start state for a flat image of image_size bytes loaded at guest physical
 * 0 and entered at 0: real mode (CS:IP = 0000:0000) or long mode (tables and
 * stack in the top BOOT_FLAT_RESERVED bytes of RAM, which the image must not
 * reach).  Returns 0, or -1 with a one-line reason in err. */
int boot_flat(uint8_t *ram, uint64_t ram_size, uint64_t image_size, enum vcpu_mode mode,
	      struct vcpu_boot *boot, char *err, size_t errlen);

/* The arm64 flat board: RAM from guest physical 0, but its first
 * BOOT_ARM64_RAM_START bytes are not mapped, so MMIO can sit there (the
 * s003 program's debug port is 0x996).  The last 2 KiB of RAM hold
 * catch-all exception vectors, each a store to BOOT_ARM64_TRAP_GPA: a flat
 * guest that faults ends the VM instead of looping in the guest. */
#define BOOT_ARM64_RAM_START 0x10000u
#define BOOT_ARM64_VECTORS_SIZE 0x800u
#define BOOT_ARM64_TRAP_GPA 0xfff8u

/* Start state for an arm64 flat image of image_size bytes loaded at `at`
 * in RAM of ram_size bytes: EL1, PC = at.  `at` must be in mapped RAM and
 * 4-byte aligned, the image wholly in RAM.  Returns 0, or -1 with a one-line
 * reason in err. */
int boot_flat_arm64(uint8_t *ram, uint64_t ram_size, uint64_t at, uint64_t image_size,
		    struct vcpu_boot *boot, char *err, size_t errlen);

/* Read a whole guest image file into a malloc'd buffer.  Returns 0, or -1
 * with "PATH: reason" in err. */
int boot_read_file(const char *path, uint8_t **buf, size_t *size, char *err, size_t errlen);
#endif
