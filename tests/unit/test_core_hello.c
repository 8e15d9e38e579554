/* test_core_hello.c - what a device may declare in its HELLO: valid and
 * hostile declarations, and what a restarted device must repeat. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devproxy_policy.h"

/* A 16550 at 0x3f8 with IRQ 4: LSR shadowed, THR a stream register. */
static struct ipc_hello uart_hello(void)
{
	struct ipc_hello h = {.version = IPC_PROTO_VERSION, .name = "serial"};
	h.nranges = 1;
	h.ranges[0] = (struct ipc_range){IPC_SPACE_PIO, 0x3f8, 8};
	h.nirqs = 1;
	h.irqs[0] = 4;
	h.nregs = 2;
	h.regs[0] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_SHADOW, 0, 0x3fd};
	h.regs[1] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_STREAM, 0, 0x3f8};
	return h;
}

static void expect_rejected(const struct ipc_hello *h, const char *reason_part)
{
	char why[128] = "";
	assert_int_equal(policy_check_hello(h, why, sizeof(why)), -1);
	assert_non_null(strstr(why, reason_part));
}

static void test_valid_hello_accepted(void **state)
{
	struct ipc_hello h = uart_hello();
	char why[128];
	assert_int_equal(policy_check_hello(&h, why, sizeof(why)), 0);
	h.nregs = 0;
	h.nirqs = 0;
	assert_int_equal(policy_check_hello(&h, why, sizeof(why)), 0);
}

static void test_wrong_version(void **state)
{
	struct ipc_hello h = uart_hello();
	h.version = IPC_PROTO_VERSION + 1;
	expect_rejected(&h, "version");
}

static void test_irq_outside_board_lines(void **state)
{
	struct ipc_hello h = uart_hello();
	h.irqs[0] = BOARD_IRQ_LINES;
	expect_rejected(&h, "irq 24");
	h.irqs[0] = 0xffffffffu;
	expect_rejected(&h, "irq");
	h.irqs[0] = BOARD_IRQ_LINES - 1;
	char why[128];
	assert_int_equal(policy_check_hello(&h, why, sizeof(why)), 0);
}

static void test_counts_beyond_arrays(void **state)
{
	struct ipc_hello h = uart_hello();
	h.nranges = IPC_MAX_RANGES + 1;
	expect_rejected(&h, "too many");
	h = uart_hello();
	h.nregs = 0xffffffffu;
	expect_rejected(&h, "too many");
}

static void test_register_outside_own_ranges(void **state)
{
	struct ipc_hello h = uart_hello();
	h.regs[0].addr = 0x2fd; /* someone else's port */
	expect_rejected(&h, "outside");
	h = uart_hello();
	h.regs[0].addr = 0x3ff; /* starts inside, ends outside */
	h.regs[0].size = 2;
	expect_rejected(&h, "outside");
	h = uart_hello();
	h.regs[0].space = IPC_SPACE_MMIO; /* right address, wrong space */
	expect_rejected(&h, "outside");
}

static void test_register_malformed(void **state)
{
	struct ipc_hello h = uart_hello();
	h.regs[0].size = 3;
	expect_rejected(&h, "size");
	h = uart_hello();
	h.regs[0].flags = 0x80;
	expect_rejected(&h, "flags");
	h = uart_hello();
	h.regs[0].slot = IPC_MAX_REGS;
	expect_rejected(&h, "slot");
	h = uart_hello();
	h.regs[0].space = 9;
	expect_rejected(&h, "space");
	h = uart_hello();
	h.regs[1].addr = h.regs[0].addr;
	expect_rejected(&h, "twice");
}

static void test_restart_must_declare_the_same(void **state)
{
	struct ipc_hello a = uart_hello(), b = uart_hello();
	assert_true(policy_same_device(&a, &b));
	memset(b.name, 'x', sizeof(b.name) - 1); /* the name is only a label */
	assert_true(policy_same_device(&a, &b));
	b = uart_hello();
	b.ranges[0].size = 16;
	assert_false(policy_same_device(&a, &b));
	b = uart_hello();
	b.irqs[0] = 3;
	assert_false(policy_same_device(&a, &b));
	b = uart_hello();
	b.regs[0].flags = 0;
	assert_false(policy_same_device(&a, &b));
	b = uart_hello();
	b.nregs = 1;
	assert_false(policy_same_device(&a, &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_hello_accepted),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_irq_outside_board_lines),
		cmocka_unit_test(test_counts_beyond_arrays),
		cmocka_unit_test(test_register_outside_own_ranges),
		cmocka_unit_test(test_register_malformed),
		cmocka_unit_test(test_restart_must_declare_the_same),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
