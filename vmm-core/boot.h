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

#endif
