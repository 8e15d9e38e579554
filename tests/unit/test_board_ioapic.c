/* test_board_ioapic.c - the board's IOAPIC (vmm-core/board/ioapic.h):
 * registers, edge and level triggering, remote IRR and the EOI broadcast,
 * masking, and hostile accesses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ioapic.h"

#define BASE 0xfec00000u
#define MAX_SENT 16

static struct {
	uint64_t address[MAX_SENT];
	uint32_t data[MAX_SENT];
	int n;
} sent;

static void record(void *opaque, uint64_t address, uint32_t data)
{
	if (sent.n < MAX_SENT) {
		sent.address[sent.n] = address;
		sent.data[sent.n] = data;
	}
	sent.n++;
}

static struct {
	bool masked[IOAPIC_PINS];
	uint64_t address[IOAPIC_PINS];
	uint32_t data[IOAPIC_PINS];
	int n;
} routes;

static void record_route(void *opaque, unsigned pin, bool masked, uint64_t address, uint32_t data)
{
	routes.masked[pin] = masked;
	routes.address[pin] = address;
	routes.data[pin] = data;
	routes.n++;
}

static struct ioapic io;

static int setup(void **state)
{
	sent.n = 0;
	routes.n = 0;
	struct ioapic_sink sink = {.opaque = NULL, .deliver = record, .route = record_route};
	ioapic_init(&io, BASE, 1, &sink);
	return 0;
}

static uint32_t reg_read(uint32_t reg)
{
	ioapic_mmio_write(&io, 0x00, 4, reg);
	return (uint32_t)ioapic_mmio_read(&io, 0x10, 4);
}

static void reg_write(uint32_t reg, uint32_t value)
{
	ioapic_mmio_write(&io, 0x00, 4, reg);
	ioapic_mmio_write(&io, 0x10, 4, value);
}

static void set_entry(unsigned pin, uint64_t entry)
{
	reg_write(0x10 + 2 * pin, (uint32_t)entry);
	reg_write(0x11 + 2 * pin, (uint32_t)(entry >> 32));
}

static uint64_t entry(unsigned pin)
{
	return reg_read(0x10 + 2 * pin) | (uint64_t)reg_read(0x11 + 2 * pin) << 32;
}

static void test_identity_registers(void **state)
{
	assert_int_equal(reg_read(0x00), 1u << 24);     /* id */
	assert_int_equal(reg_read(0x01), 0x00170011u);  /* 24 entries, version 0x11 */
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		assert_true(entry(pin) & IOAPIC_RTE_MASKED); /* reset state */
	reg_write(0x01, 0); /* read-only */
	assert_int_equal(reg_read(0x01), 0x00170011u);
	/* The bus device decodes addresses relative to its base. */
	assert_int_equal(io.range.base, BASE);
	io.dev.write(io.dev.opaque, IPC_SPACE_MMIO, BASE, 4, 0x01);
	assert_int_equal(io.dev.read(io.dev.opaque, IPC_SPACE_MMIO, BASE + 0x10, 4), 0x00170011u);
}

/* The sink hears each entry's message when the guest programs it (what
 * KVM's split irqchip needs to report EOIs of level-triggered vectors). */
static void test_route_follows_the_entry(void **state)
{
	assert_int_equal(routes.n, IOAPIC_PINS); /* reset: every pin masked */
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		assert_true(routes.masked[pin]);
	routes.n = 0;
	set_entry(9, 0x0300000000008041ull); /* level, fixed, vector 0x41, dest 3 */
	assert_int_equal(routes.n, 2); /* each half, as the guest writes them */
	assert_false(routes.masked[9]);
	assert_int_equal(routes.address[9], 0xfee03000u);
	assert_int_equal(routes.data[9], 0x41 | 1u << 14 | 1u << 15);
	set_entry(9, 0x0300000000008041ull); /* the same again: nothing to tell */
	assert_int_equal(routes.n, 2);
	set_entry(9, 0x0300000000018041ull); /* masked */
	assert_true(routes.masked[9]);
	set_entry(9, 0x0000000000000641ull); /* reserved delivery mode 6: sends nothing */
	assert_true(routes.masked[9]);
	ioapic_reset(&io);
	assert_true(routes.masked[9]);
}

static void test_edge_fires_on_rising_edge_only(void **state)
{
	set_entry(4, 0x30); /* fixed, physical dest 0, edge, unmasked */
	ioapic_set_irq(&io, 4, 1);
	assert_int_equal(sent.n, 1);
	assert_int_equal(sent.address[0], 0xfee00000u);
	assert_int_equal(sent.data[0], 0x4030u); /* assert | fixed | vector 0x30 */
	ioapic_set_irq(&io, 4, 1); /* still high: no edge */
	assert_int_equal(sent.n, 1);
	ioapic_set_irq(&io, 4, 0);
	ioapic_set_irq(&io, 4, 1);
	assert_int_equal(sent.n, 2);
	assert_false(entry(4) & IOAPIC_RTE_REMOTE_IRR); /* edge entries never set it */
}

/* Startup (6) and mode 3 are reserved in a redirection entry: a guest that
 * programs them must not start vCPUs through an interrupt line. */
static void test_reserved_delivery_modes_dropped(void **state)
{
	set_entry(4, 0x630); /* delivery mode 6: startup */
	ioapic_set_irq(&io, 4, 1);
	set_entry(5, 0x330);
	ioapic_set_irq(&io, 5, 1);
	assert_int_equal(sent.n, 0);
	set_entry(6, 0x130); /* lowest priority is fine */
	ioapic_set_irq(&io, 6, 1);
	assert_int_equal(sent.n, 1);
}

static void test_level_waits_for_eoi(void **state)
{
	set_entry(16, 0x41 | IOAPIC_RTE_LEVEL | (3ull << IOAPIC_RTE_DEST_SHIFT));
	ioapic_set_irq(&io, 16, 1);
	assert_int_equal(sent.n, 1);
	assert_int_equal(sent.address[0], 0xfee03000u);
	assert_int_equal(sent.data[0], 0xc041u); /* level | assert | vector 0x41 */
	assert_true(entry(16) & IOAPIC_RTE_REMOTE_IRR);
	ioapic_set_irq(&io, 16, 1); /* re-assert before the EOI: nothing */
	assert_int_equal(sent.n, 1);
	ioapic_eoi(&io, 0x99); /* another vector: nothing */
	assert_true(entry(16) & IOAPIC_RTE_REMOTE_IRR);
	ioapic_eoi(&io, 0x41); /* still asserted: fires again */
	assert_int_equal(sent.n, 2);
	assert_true(entry(16) & IOAPIC_RTE_REMOTE_IRR);
	ioapic_set_irq(&io, 16, 0);
	ioapic_eoi(&io, 0x41); /* serviced and released */
	assert_int_equal(sent.n, 2);
	assert_false(entry(16) & IOAPIC_RTE_REMOTE_IRR);
}

static void test_masking(void **state)
{
	set_entry(5, 0x50 | IOAPIC_RTE_MASKED);
	ioapic_set_irq(&io, 5, 1);
	assert_int_equal(sent.n, 0); /* a masked edge is lost */
	set_entry(6, 0x60 | IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED);
	ioapic_set_irq(&io, 6, 1);
	assert_int_equal(sent.n, 0);
	set_entry(6, 0x60 | IOAPIC_RTE_LEVEL); /* unmasking an asserted level line fires it */
	assert_int_equal(sent.n, 1);
	assert_int_equal(sent.data[0] & 0xff, 0x60);
}

static void test_guest_cannot_write_status_bits(void **state)
{
	set_entry(7, 0x70 | IOAPIC_RTE_REMOTE_IRR | (1ull << 12) | IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED);
	assert_false(entry(7) & (IOAPIC_RTE_REMOTE_IRR | (1ull << 12)));
	set_entry(8, 0x80 | (1ull << 11) | (0x0full << IOAPIC_RTE_DEST_SHIFT));
	ioapic_set_irq(&io, 8, 1);
	assert_int_equal(sent.n, 1);
	assert_int_equal(sent.address[0], 0xfee0f004u); /* logical destination mode */
}

static void test_hostile_accesses(void **state)
{
	assert_int_equal(ioapic_mmio_read(&io, 0x10, 1), 0);
	assert_int_equal(ioapic_mmio_read(&io, 0x20, 4), 0);
	ioapic_mmio_write(&io, 0x04, 8, ~0ull);
	ioapic_set_irq(&io, IOAPIC_PINS, 1);
	ioapic_set_irq(&io, ~0u, 1);
	assert_int_equal(sent.n, 0);
	assert_int_equal(reg_read(0x10 + 2 * IOAPIC_PINS), 0); /* past the table */
	reg_write(0xff, 0x12345678);
	assert_int_equal(reg_read(0x01), 0x00170011u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_identity_registers, setup),
		cmocka_unit_test_setup(test_route_follows_the_entry, setup),
		cmocka_unit_test_setup(test_edge_fires_on_rising_edge_only, setup),
		cmocka_unit_test_setup(test_level_waits_for_eoi, setup),
		cmocka_unit_test_setup(test_masking, setup),
		cmocka_unit_test_setup(test_guest_cannot_write_status_bits, setup),
		cmocka_unit_test_setup(test_hostile_accesses, setup),
		cmocka_unit_test_setup(test_reserved_delivery_modes_dropped, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
