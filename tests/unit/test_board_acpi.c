/* test_board_acpi.c - the ACPI tables (vmm-core/board/acpi.h): walk RSDP ->
 * XSDT -> every table as Linux does, checking signatures, lengths and
 * checksums; the FADT and MADT fields; one DSDT device node byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acpi.h"
#include "le.h"

#define RAM_SIZE 0x200000
#define REGION 0xe0000
#define REGION_SIZE 0x20000

static uint8_t *ram;

static int setup_ram(void **state)
{
	ram = calloc(1, RAM_SIZE);
	return ram ? 0 : -1;
}

static int free_ram(void **state)
{
	free(ram);
	return 0;
}

static const struct acpi_virtio_mmio two_virtio[] = {
	{0xd0000000, 0x200, 5, 0},
	{0xd0000200, 0x200, 6, 0},
};

static const struct acpi_uart com1_uart = {.port = 0x3f8, .irq = 4};

static struct acpi_config config(unsigned cpus, const struct acpi_virtio_mmio *v, unsigned n)
{
	return (struct acpi_config){
		.cpus = cpus,
		.sleep_control_port = 0x600,
		.sleep_status_port = 0x601,
		.reset_port = 0x602,
		.reset_value = 0x42,
		.uarts = &com1_uart,
		.nuarts = 1,
		.has_i8042 = 0,
		.has_cmos_rtc = 1,
		.virtio = v,
		.nvirtio = n,
	};
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* A table at gpa: inside the region, signature, length, checksum. */
static const uint8_t *table(uint64_t gpa, const char sig[4])
{
	assert_true(gpa >= REGION && gpa + 36 <= REGION + REGION_SIZE);
	const uint8_t *t = ram + gpa;
	assert_memory_equal(t, sig, 4);
	uint32_t len = le32(t + 4);
	assert_true(len >= 36 && gpa + len <= REGION + REGION_SIZE);
	assert_int_equal(sum(t, len), 0);
	return t;
}

/* Follow RSDP -> XSDT; returns the tables the XSDT lists (FADT, MADT). */
static void walk(uint64_t rsdp, const uint8_t **fadt, const uint8_t **madt)
{
	assert_int_equal(rsdp % 16, 0);
	const uint8_t *r = ram + rsdp;
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(sum(r, 20), 0);
	assert_int_equal(r[15], 2);
	assert_int_equal(le32(r + 20), 36);
	assert_int_equal(sum(r, 36), 0);
	const uint8_t *x = table(le64(r + 24), "XSDT");
	uint32_t n = (le32(x + 4) - 36) / 8;
	assert_int_equal(le32(x + 4), 36 + 8 * n);
	*fadt = *madt = NULL;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t at = le64(x + 36 + 8 * i);
		if (memcmp(ram + at, "FACP", 4) == 0)
			*fadt = table(at, "FACP");
		else
			*madt = table(at, "APIC");
	}
	assert_non_null(*fadt);
	assert_non_null(*madt);
}

static void check_gas_io(const uint8_t *g, uint16_t port)
{
	assert_int_equal(g[0], 1); /* system I/O */
	assert_int_equal(g[1], 8);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], 1); /* byte access */
	assert_int_equal(le64(g + 4), port);
}

static void test_tables(void **state)
{
	struct acpi_config cfg = config(4, two_virtio, 2);
	char err[128] = "";
	uint64_t rsdp = acpi_build(ram, RAM_SIZE, REGION, REGION_SIZE, &cfg, err, sizeof(err));
	assert_int_equal(rsdp, REGION);
	const uint8_t *fadt, *madt;
	walk(rsdp, &fadt, &madt);

	assert_int_equal(le32(fadt + 4), 276);
	assert_int_equal(fadt[8], 6);
	uint32_t flags = le32(fadt + 112);
	assert_true(flags & (1u << 20)); /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10)); /* RESET_REG_SUP */
	uint16_t boot_arch = le16(fadt + 109);
	assert_false(boot_arch & (1u << 1)); /* no 8042 */
	assert_false(boot_arch & (1u << 5)); /* the CMOS RTC is there */
	check_gas_io(fadt + 116, 0x602);
	assert_int_equal(fadt[128], 0x42);
	check_gas_io(fadt + 244, 0x600);
	check_gas_io(fadt + 256, 0x601);
	uint64_t dsdt = le64(fadt + 140);
	assert_int_equal(le32(fadt + 40), dsdt);
	const uint8_t *d = table(dsdt, "DSDT");
	assert_int_equal(d[8], 2); /* 64-bit AML integers */

	/* MADT: LAPIC address, then entries that exactly fill the table. */
	assert_int_equal(le32(madt + 36), 0xfee00000);
	uint32_t len = le32(madt + 4), off = 44;
	unsigned lapics = 0, ioapics = 0, isos = 0;
	while (off < len) {
		const uint8_t *e = madt + off;
		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[3], lapics); /* APIC id */
			assert_int_equal(le32(e + 4), 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], 4); /* IOAPIC id after the LAPICs */
			assert_int_equal(le32(e + 4), 0xfec00000);
			assert_int_equal(le32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			assert_int_equal(e[3], 0);
			assert_int_equal(le32(e + 4), 2);
			isos++;
			break;
		case 4:
			assert_int_equal(e[1], 6);
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(off, len);
	assert_int_equal(lapics, 4);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 1);
}

/* The DSDT for one CPU and one virtio-mmio device, against bytes assembled by
 * hand from the ACPI spec (what iasl makes of the equivalent ASL). */
static void test_dsdt_bytes(void **state)
{
	struct acpi_config cfg = config(1, two_virtio, 1);
	uint8_t buf[512];
	struct aml a = {buf, sizeof(buf), 0, 0};
	acpi_dsdt_body(&a, &cfg);
	assert_false(a.overflow);

	static const uint8_t com1[] = {
		0x5b, 0x82, 0x2b, 'C', 'O', 'M', '1',            /* Device (COM1), PkgLength 43 */
		0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01, /* EisaId ("PNP0501") */
		0x08, '_', 'U', 'I', 'D', 0x00,                  /* Zero */
		0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d, /* Buffer (13) */
		0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08,  /* IO (Decode16, 0x3f8, 0x3f8, 0, 8) */
		0x22, 0x10, 0x00,                                /* IRQNoFlags () {4} */
		0x79, 0x00,                                      /* EndTag */
	};
	static const uint8_t vr00[] = {
		0x5b, 0x82, 0x3a, 'V', 'R', '0', '0',            /* Device (VR00), PkgLength 58 */
		0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00,
		0x08, '_', 'U', 'I', 'D', 0x00,
		0x08, '_', 'C', 'R', 'S', 0x11, 0x1a, 0x0a, 0x17, /* Buffer (23) */
		0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0,  /* Memory32Fixed (ReadWrite, */
		0x00, 0x02, 0x00, 0x00,                          /*   0xd0000000, 0x200) */
		0x89, 0x06, 0x00, 0x01, 0x01, 0x05, 0x00, 0x00, 0x00, /* Interrupt (Consumer, Level,
		                                                          ActiveHigh, Exclusive) {5} */
		0x79, 0x00,
	};
	static const uint8_t s5[] = {
		0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00,
	};
	/* Scope (\_SB_) { COM1 VR00 } Name (_S5_, Package (4) {5, 0, 0, 0}) */
	size_t scope_len = 2 + 5 + sizeof(com1) + sizeof(vr00); /* PkgLength, \_SB_, devices */
	assert_true(scope_len >= 64 && scope_len < 4096);       /* a 2-byte PkgLength */
	uint8_t expect[512];
	size_t n = 0;
	expect[n++] = 0x10;
	expect[n++] = (uint8_t)(0x40 | (scope_len & 0xf));
	expect[n++] = (uint8_t)(scope_len >> 4);
	memcpy(expect + n, "\\_SB_", 5);
	n += 5;
	memcpy(expect + n, com1, sizeof(com1));
	n += sizeof(com1);
	memcpy(expect + n, vr00, sizeof(vr00));
	n += sizeof(vr00);
	memcpy(expect + n, s5, sizeof(s5));
	n += sizeof(s5);
	assert_int_equal(a.len, n);
	assert_memory_equal(buf, expect, n);
}

/* A virtio-mmio line declared edge-triggered is described so. */
static void test_dsdt_edge_virtio(void **state)
{
	static const struct acpi_virtio_mmio edge = {.base = 0xd0001000, .size = 0x200, .gsi = 16, .edge = 1};
	struct acpi_config cfg = config(1, &edge, 1);
	uint8_t buf[512];
	struct aml a = {buf, sizeof(buf), 0, 0};
	acpi_dsdt_body(&a, &cfg);
	static const uint8_t irq[] = {0x89, 0x06, 0x00, 0x03, 0x01, 16, 0x00, 0x00, 0x00};
	bool found = false;
	for (size_t i = 0; i + sizeof(irq) <= a.len; i++)
		found = found || !memcmp(buf + i, irq, sizeof(irq));
	assert_true(found);
}

/* Decode a PkgLength at p; *used = its bytes. */
static size_t pkg_length(const uint8_t *p, size_t *used)
{
	size_t follow = p[0] >> 6;
	size_t len = follow ? (p[0] & 0xf) : (p[0] & 0x3f);
	for (size_t i = 0; i < follow; i++)
		len |= (size_t)p[1 + i] << (4 + 8 * i);
	*used = 1 + follow;
	return len;
}

/* Many devices: every Device's PkgLength lands on the next one and the
 * scope's on the _S5_ name; each device is found once, in order. */
static void test_dsdt_many_devices(void **state)
{
	struct acpi_virtio_mmio v[ACPI_MAX_VIRTIO_MMIO];
	for (unsigned i = 0; i < ACPI_MAX_VIRTIO_MMIO; i++)
		v[i] = (struct acpi_virtio_mmio){0xd0000000 + 0x200 * i, 0x200, 16 + i, 0};
	struct acpi_config cfg = config(8, v, ACPI_MAX_VIRTIO_MMIO);
	char err[128] = "";
	uint64_t rsdp = acpi_build(ram, RAM_SIZE, REGION, REGION_SIZE, &cfg, err, sizeof(err));
	assert_int_not_equal(rsdp, 0);
	const uint8_t *fadt, *madt;
	walk(rsdp, &fadt, &madt);
	const uint8_t *d = table(le64(fadt + 140), "DSDT");
	const uint8_t *p = d + 36, *end = d + le32(d + 4);

	assert_int_equal(p[0], 0x10);
	size_t used, scope_len = pkg_length(p + 1, &used);
	const uint8_t *scope_end = p + 1 + scope_len;
	assert_true(scope_end < end);
	assert_memory_equal(scope_end, "\x08_S5_", 5);
	p += 1 + used;
	assert_memory_equal(p, "\\_SB_", 5);
	p += 5;
	for (unsigned i = 0; i <= ACPI_MAX_VIRTIO_MMIO; i++) {
		assert_true(p < scope_end);
		assert_int_equal(p[0], 0x5b);
		assert_int_equal(p[1], 0x82);
		size_t dev_len = pkg_length(p + 2, &used);
		const char *name = (const char *)p + 2 + used;
		if (i == 0) {
			assert_memory_equal(name, "COM1", 4);
		} else {
			char want[5];
			snprintf(want, sizeof(want), "VR%02X", i - 1);
			assert_memory_equal(name, want, 4);
		}
		p += 2 + dev_len;
	}
	assert_ptr_equal(p, scope_end);
}

static void test_bad_configs(void **state)
{
	char err[128];
	struct acpi_config cfg = config(0, NULL, 0);
	assert_int_equal(acpi_build(ram, RAM_SIZE, REGION, REGION_SIZE, &cfg, err, sizeof(err)), 0);
	cfg = config(256, NULL, 0);
	assert_int_equal(acpi_build(ram, RAM_SIZE, REGION, REGION_SIZE, &cfg, err, sizeof(err)), 0);
	static const struct acpi_virtio_mmio over_4g = {0xfffffe00, 0x400, 5, 0};
	cfg = config(1, &over_4g, 1);
	assert_int_equal(acpi_build(ram, RAM_SIZE, REGION, REGION_SIZE, &cfg, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "4 GiB"));
	cfg = config(1, two_virtio, ACPI_MAX_VIRTIO_MMIO + 1);
	assert_int_equal(acpi_build(ram, RAM_SIZE, REGION, REGION_SIZE, &cfg, err, sizeof(err)), 0);
	static const struct acpi_uart not_isa = {.port = 0x3f8, .irq = 16};
	cfg = config(1, NULL, 0);
	cfg.uarts = &not_isa;
	assert_int_equal(acpi_build(ram, RAM_SIZE, REGION, REGION_SIZE, &cfg, err, sizeof(err)), 0);
	cfg = config(1, NULL, 0);
	cfg.nuarts = ACPI_MAX_UARTS + 1;
	assert_int_equal(acpi_build(ram, RAM_SIZE, REGION, REGION_SIZE, &cfg, err, sizeof(err)), 0);
	/* Regions outside RAM, too small for the fixed tables, too small for the DSDT. */
	cfg = config(1, two_virtio, 2);
	assert_int_equal(acpi_build(ram, RAM_SIZE, RAM_SIZE - 0x100, 0x1000, &cfg, err, sizeof(err)), 0);
	assert_int_equal(acpi_build(ram, RAM_SIZE, UINT64_MAX - 10, 100, &cfg, err, sizeof(err)), 0);
	assert_int_equal(acpi_build(ram, RAM_SIZE, REGION, 200, &cfg, err, sizeof(err)), 0);
	assert_int_equal(acpi_build(ram, RAM_SIZE, REGION, 500, &cfg, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "too small"));
	/* The smallest region that works, found by search, leaves no byte spare. */
	uint64_t size = 200;
	while (!acpi_build(ram, RAM_SIZE, REGION, size, &cfg, err, sizeof(err)))
		size++;
	const uint8_t *fadt, *madt;
	walk(REGION, &fadt, &madt);
	const uint8_t *d = ram + le64(fadt + 140);
	assert_int_equal(d - ram + le32(d + 4), REGION + size);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_dsdt_bytes),
		cmocka_unit_test(test_dsdt_edge_virtio),
		cmocka_unit_test(test_dsdt_many_devices),
		cmocka_unit_test(test_bad_configs),
	};
	return cmocka_run_group_tests(tests, setup_ram, free_ram);
}
