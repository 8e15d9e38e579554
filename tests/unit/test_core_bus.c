/* test_core_bus.c - the board's address decoder: dispatch to the owner,
 * all-ones for unowned accesses, and ranges refused at attach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus.h"
#include "stats.h"

#define RAM_SIZE (16u << 20)

/* A device that answers reads with a fixed value and remembers the last write. */
struct fake_dev {
	uint64_t answer;
	unsigned reads, writes;
	enum ipc_space last_space;
	uint64_t last_addr, last_value;
	unsigned last_size;
};

static uint64_t fake_read(void *opaque, enum ipc_space space, uint64_t addr, unsigned size)
{
	struct fake_dev *f = opaque;
	f->reads++;
	f->last_space = space;
	f->last_addr = addr;
	f->last_size = size;
	return f->answer;
}

static void fake_write(void *opaque, enum ipc_space space, uint64_t addr, unsigned size,
		       uint64_t value)
{
	struct fake_dev *f = opaque;
	f->writes++;
	f->last_space = space;
	f->last_addr = addr;
	f->last_size = size;
	f->last_value = value;
}

static struct bus bus;
static struct fake_dev uart, other;
static const struct bus_device uart_dev = {&uart, fake_read, fake_write};
static const struct bus_device other_dev = {&other, fake_read, fake_write};

static int setup(void **state)
{
	bus_init(&bus, RAM_SIZE);
	memset(&uart, 0, sizeof(uart));
	memset(&other, 0, sizeof(other));
	uart.answer = 0x60;
	other.answer = 0x1234;
	return 0;
}

static void attach_uart(void)
{
	char err[128];
	struct ipc_range r[] = {{.space = IPC_SPACE_PIO, .base = 0x3f8, .size = 8}, {.space = IPC_SPACE_MMIO, .base = 0xd0000000, .size = 0x1000}};
	assert_int_equal(bus_attach(&bus, &uart_dev, r, 2, err, sizeof(err)), 0);
}

static void test_reads_reach_the_owner(void **state)
{
	attach_uart();
	assert_int_equal(bus_read(&bus, IPC_SPACE_PIO, 0x3fd, 1), 0x60);
	assert_int_equal(uart.last_addr, 0x3fd);
	assert_int_equal(uart.last_size, 1);
	assert_int_equal(bus_read(&bus, IPC_SPACE_MMIO, 0xd0000005, 1), 0x60);
	assert_int_equal(uart.last_space, IPC_SPACE_MMIO);
	assert_int_equal(uart.reads, 2);
}

static void test_owner_answer_is_masked_to_access_size(void **state)
{
	attach_uart();
	uart.answer = 0xabcdef;
	assert_int_equal(bus_read(&bus, IPC_SPACE_PIO, 0x3f8, 1), 0xef);
	assert_int_equal(bus_read(&bus, IPC_SPACE_PIO, 0x3f8, 2), 0xcdef);
}

static void test_writes_reach_the_owner(void **state)
{
	attach_uart();
	struct engine_bus cb = bus_engine_callbacks(&bus);
	cb.pio_write(cb.opaque, 0x3f8, 1, 'A');
	assert_int_equal(uart.writes, 1);
	assert_int_equal(uart.last_value, 'A');
	cb.mmio_write(cb.opaque, 0xd0000000, 1, 'B');
	assert_int_equal(uart.writes, 2);
	assert_int_equal(uart.last_space, IPC_SPACE_MMIO);
}

static void test_unowned_reads_all_ones(void **state)
{
	attach_uart();
	uint64_t before = atomic_load(&core_stats.unowned);
	struct engine_bus cb = bus_engine_callbacks(&bus);
	assert_int_equal(cb.pio_read(cb.opaque, 0x60, 1), 0xff);
	assert_int_equal(cb.pio_read(cb.opaque, 0x60, 2), 0xffff);
	assert_int_equal(cb.mmio_read(cb.opaque, 0xd0100000, 4), 0xffffffffu);
	assert_true(cb.mmio_read(cb.opaque, 0xd0100000, 8) == ~0ull);
	cb.pio_write(cb.opaque, 0x60, 1, 0); /* dropped */
	assert_int_equal(uart.reads + uart.writes, 0);
	assert_int_equal(atomic_load(&core_stats.unowned) - before, 5);
}

static void test_access_straddling_a_range_end_is_unowned(void **state)
{
	attach_uart();
	assert_int_equal(bus_read(&bus, IPC_SPACE_PIO, 0x3ff, 2), 0xffff);
	assert_int_equal(bus_read(&bus, IPC_SPACE_PIO, 0x3f6, 4), 0xffffffffu);
	assert_int_equal(uart.reads, 0);
	assert_int_equal(bus_read(&bus, IPC_SPACE_PIO, 0x3fc, 4), 0x60); /* wholly inside */
}

/* Which ranges the board may let an engine keep to itself (quiet ports):
 * a port is owned if a device has any byte of it. */
static void test_owns_any_byte(void **state)
{
	assert_false(bus_owns_any(&bus, IPC_SPACE_PIO, 0x3f8, 4));
	attach_uart();
	assert_true(bus_owns_any(&bus, IPC_SPACE_PIO, 0x3f8, 1));
	assert_true(bus_owns_any(&bus, IPC_SPACE_PIO, 0x3f6, 4)); /* straddles its start */
	assert_true(bus_owns_any(&bus, IPC_SPACE_PIO, 0x3ff, 2)); /* and its end */
	assert_false(bus_owns_any(&bus, IPC_SPACE_PIO, 0x3f4, 4));
	assert_false(bus_owns_any(&bus, IPC_SPACE_PIO, 0x400, 4));
	assert_false(bus_owns_any(&bus, IPC_SPACE_PIO, 0xcf8, 4));
	assert_false(bus_owns_any(&bus, IPC_SPACE_MMIO, 0x3f8, 4)); /* the other space */
	assert_true(bus_owns_any(&bus, IPC_SPACE_MMIO, 0xd0000ffc, 8));
}

static void test_spaces_are_separate(void **state)
{
	attach_uart();
	/* The UART owns port 0x3f8, not MMIO 0x3f8 (which is RAM, never sent to the bus). */
	assert_int_equal(bus_read(&bus, IPC_SPACE_MMIO, 0x3f8, 1), 0xff);
	assert_int_equal(bus_read(&bus, IPC_SPACE_MMIO, 0xd0001000, 1), 0xff); /* past its page */
	assert_int_equal(uart.reads, 0);
}

static void test_overlap_with_another_device_refused(void **state)
{
	char err[128] = "";
	attach_uart();
	struct ipc_range r = {.space = IPC_SPACE_PIO, .base = 0x3fc, .size = 8};
	assert_int_equal(bus_attach(&bus, &other_dev, &r, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "overlaps"));
	struct ipc_range m = {.space = IPC_SPACE_MMIO, .base = 0xcffff000, .size = 0x2000};
	assert_int_equal(bus_attach(&bus, &other_dev, &m, 1, err, sizeof(err)), -1);
	/* Adjacent is fine. */
	struct ipc_range next = {.space = IPC_SPACE_PIO, .base = 0x400, .size = 8};
	assert_int_equal(bus_attach(&bus, &other_dev, &next, 1, err, sizeof(err)), 0);
	assert_int_equal(bus_read(&bus, IPC_SPACE_PIO, 0x400, 2), 0x1234);
}

static void test_attach_is_all_or_none(void **state)
{
	char err[128];
	/* The second range overlaps the first: neither may be on the bus. */
	struct ipc_range r[] = {{.space = IPC_SPACE_PIO, .base = 0x2f8, .size = 8}, {.space = IPC_SPACE_PIO, .base = 0x2fc, .size = 1}};
	assert_int_equal(bus_attach(&bus, &other_dev, r, 2, err, sizeof(err)), -1);
	assert_int_equal(bus_read(&bus, IPC_SPACE_PIO, 0x2f8, 1), 0xff);
	assert_int_equal(other.reads, 0);
}

static void test_ranges_outside_their_space_refused(void **state)
{
	char err[128];
	struct ipc_range past_ports = {.space = IPC_SPACE_PIO, .base = 0xfff8, .size = 9};
	assert_int_equal(bus_attach(&bus, &other_dev, &past_ports, 1, err, sizeof(err)), -1);
	struct ipc_range over_ram = {.space = IPC_SPACE_MMIO, .base = RAM_SIZE - 0x1000, .size = 0x2000};
	assert_int_equal(bus_attach(&bus, &other_dev, &over_ram, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "RAM"));
	struct ipc_range wraps = {.space = IPC_SPACE_MMIO, .base = ~0ull - 0xff, .size = 0x1000};
	assert_int_equal(bus_attach(&bus, &other_dev, &wraps, 1, err, sizeof(err)), -1);
	struct ipc_range empty = {.space = IPC_SPACE_MMIO, .base = 0xe0000000, .size = 0};
	assert_int_equal(bus_attach(&bus, &other_dev, &empty, 1, err, sizeof(err)), -1);
	struct ipc_range bad_space = {.space = 7, .base = 0xe0000000, .size = 0x1000};
	assert_int_equal(bus_attach(&bus, &other_dev, &bad_space, 1, err, sizeof(err)), -1);
	struct ipc_range last_port = {.space = IPC_SPACE_PIO, .base = 0xffff, .size = 1};
	assert_int_equal(bus_attach(&bus, &other_dev, &last_port, 1, err, sizeof(err)), 0);
}

static void test_bus_full(void **state)
{
	char err[128];
	for (unsigned i = 0; i < BUS_MAX_RANGES; i++) {
		struct ipc_range r = {.space = IPC_SPACE_PIO, .base = 0x1000 + i * 4, .size = 4};
		assert_int_equal(bus_attach(&bus, &other_dev, &r, 1, err, sizeof(err)), 0);
	}
	struct ipc_range r = {.space = IPC_SPACE_PIO, .base = 0x100, .size = 4};
	assert_int_equal(bus_attach(&bus, &other_dev, &r, 1, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_reads_reach_the_owner, setup),
		cmocka_unit_test_setup(test_owner_answer_is_masked_to_access_size, setup),
		cmocka_unit_test_setup(test_writes_reach_the_owner, setup),
		cmocka_unit_test_setup(test_unowned_reads_all_ones, setup),
		cmocka_unit_test_setup(test_access_straddling_a_range_end_is_unowned, setup),
		cmocka_unit_test_setup(test_owns_any_byte, setup),
		cmocka_unit_test_setup(test_spaces_are_separate, setup),
		cmocka_unit_test_setup(test_overlap_with_another_device_refused, setup),
		cmocka_unit_test_setup(test_attach_is_all_or_none, setup),
		cmocka_unit_test_setup(test_ranges_outside_their_space_refused, setup),
		cmocka_unit_test_setup(test_bus_full, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
