/* test_core_boot.c - the long-mode start-up tables, checked by walking them
 * the way the MMU does, and the flat-image layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boot.h"

#define RAM_SIZE (16u << 20)

static uint8_t *ram;

static int setup(void **state)
{
	ram = calloc(1, RAM_SIZE);
	return ram ? 0 : -1;
}

static int teardown(void **state)
{
	free(ram);
	return 0;
}

static uint64_t get64(uint64_t gpa)
{
	assert_true(gpa + 8 <= RAM_SIZE);
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | ram[gpa + i];
	return v;
}

/* Translate a virtual address through 4-level paging with 2 MiB pages. */
static uint64_t walk(uint64_t cr3, uint64_t va)
{
	uint64_t pml4e = get64(cr3 + ((va >> 39) & 511) * 8);
	assert_true(pml4e & 1);
	uint64_t pdpte = get64((pml4e & 0x000ffffffffff000ull) + ((va >> 30) & 511) * 8);
	assert_true(pdpte & 1);
	assert_false(pdpte & 0x80); /* not a 1 GiB page */
	uint64_t pde = get64((pdpte & 0x000ffffffffff000ull) + ((va >> 21) & 511) * 8);
	assert_true(pde & 1);
	assert_true(pde & 2);    /* writable */
	assert_true(pde & 0x80); /* 2 MiB page */
	return (pde & 0x000fffffffe00000ull) | (va & 0x1fffff);
}

static void test_long_mode_identity_maps_4gib(void **state)
{
	struct vcpu_boot b;
	char err[128];
	assert_int_equal(boot_flat(ram, RAM_SIZE, 4096, VCPU_LONG64, &b, err, sizeof(err)), 0);
	assert_int_equal(b.mode, VCPU_LONG64);
	assert_int_equal(b.entry, 0);
	uint64_t samples[] = {0, 0x1234, 0x200000, RAM_SIZE - 1, 0xd0000005, 0xfee00000, 0xffffffff};
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		assert_int_equal(walk(b.cr3, samples[i]), samples[i]);
}

static void test_flat_layout_top_64k(void **state)
{
	struct vcpu_boot b;
	char err[128];
	assert_int_equal(boot_flat(ram, RAM_SIZE, 4096, VCPU_LONG64, &b, err, sizeof(err)), 0);
	assert_int_equal(b.cr3, RAM_SIZE - BOOT_FLAT_RESERVED);
	assert_true(b.gdt_base >= b.cr3 && b.gdt_base + b.gdt_limit < b.cr3 + BOOT_TABLES_SIZE);
	assert_int_equal(b.rsp, RAM_SIZE);
	/* The stack below rsp has BOOT_FLAT_RESERVED - BOOT_TABLES_SIZE bytes to itself. */
	assert_true(b.cr3 + BOOT_TABLES_SIZE <= b.rsp - 0x1000);
}

static void test_gdt_descriptors(void **state)
{
	struct vcpu_boot b;
	char err[128];
	assert_int_equal(boot_flat(ram, RAM_SIZE, 0, VCPU_LONG64, &b, err, sizeof(err)), 0);
	assert_int_equal(b.gdt_limit, 23);
	assert_int_equal(get64(b.gdt_base), 0); /* null descriptor */
	uint64_t code = get64(b.gdt_base + BOOT_GDT_CODE64);
	assert_true(code & (1ull << 47));  /* present */
	assert_true(code & (1ull << 43));  /* code */
	assert_true(code & (1ull << 53));  /* L: 64-bit */
	assert_false(code & (1ull << 54)); /* D must be 0 with L */
	uint64_t data = get64(b.gdt_base + BOOT_GDT_DATA);
	assert_true(data & (1ull << 47));
	assert_false(data & (1ull << 43)); /* data */
	assert_true(data & (1ull << 41));  /* writable */
}

/* The state every engine loads is the one the GDT describes: reloading
 * CS or SS from the GDT (an iretq, a far return) changes nothing. */
static void test_start_state_matches_the_gdt(void **state)
{
	struct vcpu_boot b;
	char err[128];
	assert_int_equal(boot_flat(ram, RAM_SIZE, 0, VCPU_LONG64, &b, err, sizeof(err)), 0);
	struct boot_long_mode_state s;
	boot_long_mode_state(&b, &s);
	assert_int_equal(s.cr3, b.cr3);
	assert_int_equal(s.gdt_base, b.gdt_base);
	assert_int_equal(s.gdt_limit, b.gdt_limit);
	assert_int_equal(s.cr0 & 0x80000001u, 0x80000001u); /* PG, PE */
	assert_int_equal(s.cr4 & 0x20, 0x20);               /* PAE */
	assert_int_equal(s.efer & 0x500, 0x500);            /* LME, LMA */
	/* The well-known flat descriptors, byte for byte. */
	assert_int_equal(get64(b.gdt_base + s.code.selector), 0x00af9b000000ffffull);
	assert_int_equal(get64(b.gdt_base + s.data.selector), 0x00cf93000000ffffull);
	assert_int_equal(s.code.attr, 0xa09b);
	assert_int_equal(s.data.attr, 0xc093);
	assert_int_equal(s.code.limit, 0xffffffffu);
	assert_int_equal(s.tr.attr & 0x8f, 0x8b); /* present busy TSS */
}

static void test_image_must_not_reach_the_tables(void **state)
{
	struct vcpu_boot b;
	char err[128] = "";
	uint64_t room = RAM_SIZE - BOOT_FLAT_RESERVED;
	assert_int_equal(boot_flat(ram, RAM_SIZE, room, VCPU_LONG64, &b, err, sizeof(err)), 0);
	assert_int_equal(boot_flat(ram, RAM_SIZE, room + 1, VCPU_LONG64, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "overlaps"));
	/* Real mode needs no tables: the whole of RAM is the image's. */
	assert_int_equal(boot_flat(ram, RAM_SIZE, RAM_SIZE, VCPU_REAL16, &b, err, sizeof(err)), 0);
	assert_int_equal(boot_flat(ram, RAM_SIZE, RAM_SIZE + 1, VCPU_REAL16, &b, err, sizeof(err)),
			 -1);
}

static void test_tables_refused_outside_ram(void **state)
{
	struct vcpu_boot b;
	char err[128];
	assert_int_equal(boot_long_mode_tables(ram, RAM_SIZE, RAM_SIZE - 0x1000, &b, err, sizeof(err)),
			 -1);
	assert_int_equal(boot_long_mode_tables(ram, RAM_SIZE, 0x1001, &b, err, sizeof(err)), -1);
	assert_int_equal(boot_long_mode_tables(ram, RAM_SIZE, ~0ull & ~0xfffull, &b, err, sizeof(err)),
			 -1);
	assert_int_equal(boot_long_mode_tables(ram, RAM_SIZE, 0x9000, &b, err, sizeof(err)), 0);
	assert_int_equal(walk(b.cr3, 0xcafe000), 0xcafe000);
}

static uint32_t get32(uint64_t gpa)
{
	return (uint32_t)get64(gpa);
}

/* s003's layout: entered at the load address in EL1; every exception
 * vector at VBAR_EL1 stores to the trap address and spins. */
static void test_arm64_flat(void **state)
{
	struct vcpu_boot b;
	char err[128];
	assert_int_equal(boot_flat_arm64(ram, RAM_SIZE, 0x10000, 48, &b, err, sizeof(err)), 0);
	assert_int_equal(b.mode, VCPU_AARCH64);
	assert_int_equal(b.entry, 0x10000);
	assert_int_equal(b.vbar, RAM_SIZE - 0x800);
	assert_int_equal(b.trap_gpa, BOOT_ARM64_TRAP_GPA);
	assert_true(b.trap_gpa < BOOT_ARM64_RAM_START); /* unmapped: an MMIO exit */
	for (uint64_t v = b.vbar; v < RAM_SIZE; v += 0x80) {
		assert_int_equal(get32(v), 0xd2800000u | (BOOT_ARM64_TRAP_GPA & 0xffff) << 5); /* movz x0 */
		assert_int_equal(get32(v + 4), 0xf2a00000u | (BOOT_ARM64_TRAP_GPA >> 16) << 5); /* movk x0, lsl 16 */
		assert_int_equal(get32(v + 8), 0xf900001fu);  /* str xzr, [x0] */
		assert_int_equal(get32(v + 12), 0x14000000u); /* b . */
	}
}

static void test_arm64_flat_refused(void **state)
{
	struct vcpu_boot b;
	char err[128];
	/* Below RAM's start (MMIO there), misaligned, or over the vectors. */
	assert_int_equal(boot_flat_arm64(ram, RAM_SIZE, 0, 48, &b, err, sizeof(err)), -1);
	assert_string_equal(err, "flat address 0: want a multiple of 4 at or above 0x10000 (below is MMIO)");
	assert_int_equal(boot_flat_arm64(ram, RAM_SIZE, 0x10002, 48, &b, err, sizeof(err)), -1);
	assert_int_equal(boot_flat_arm64(ram, RAM_SIZE, 0x10000, RAM_SIZE - 0x10000 - 0x7ff, &b, err,
					 sizeof(err)), -1);
	assert_int_equal(boot_flat_arm64(ram, RAM_SIZE, RAM_SIZE + 4, 0, &b, err, sizeof(err)), -1);
	assert_int_equal(boot_flat_arm64(ram, RAM_SIZE, 0x10000, RAM_SIZE - 0x10000 - 0x800, &b, err,
					 sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_long_mode_identity_maps_4gib, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flat_layout_top_64k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gdt_descriptors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_state_matches_the_gdt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_must_not_reach_the_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tables_refused_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arm64_flat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arm64_flat_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
