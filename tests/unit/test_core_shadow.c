/* test_core_shadow.c - when the core may answer a read from a device's state
 * page instead of asking the device, and which writes order later reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devproxy_policy.h"

static struct ipc_hello hello;
static struct ipc_state_page page;

static int setup(void **state)
{
	memset(&hello, 0, sizeof(hello));
	hello.version = IPC_PROTO_VERSION;
	hello.nranges = 1;
	hello.ranges[0] = (struct ipc_range){.space = IPC_SPACE_PIO, .base = 0x3f8, .size = 8};
	hello.nregs = 3;
	hello.regs[0] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_SHADOW, 5, 0x3fd, 0};  /* LSR */
	hello.regs[1] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_STREAM, 0, 0x3f8, 0};  /* THR */
	hello.regs[2] = (struct ipc_reg){IPC_SPACE_PIO, 2, IPC_REG_SHADOW, 6, 0x3fa, 0};  /* 2 bytes */
	memset(&page, 0, sizeof(page));
	page.magic = IPC_STATE_MAGIC;
	page.version = IPC_PROTO_VERSION;
	atomic_store(&page.applied_seq, 10);
	atomic_store(&page.shadow[5], 0x60);
	atomic_store(&page.shadow[6], 0xbeef);
	return 0;
}

static void test_find_reg(void **state)
{
	assert_ptr_equal(policy_find_reg(&hello, IPC_SPACE_PIO, 0x3fd, 1), &hello.regs[0]);
	assert_null(policy_find_reg(&hello, IPC_SPACE_PIO, 0x3fd, 2)); /* wider than declared */
	assert_null(policy_find_reg(&hello, IPC_SPACE_MMIO, 0x3fd, 1));
	assert_null(policy_find_reg(&hello, IPC_SPACE_PIO, 0x3fc, 1));
	assert_ptr_equal(policy_find_reg(&hello, IPC_SPACE_PIO, 0x3fa, 1), &hello.regs[2]);
}

static void test_shadow_answers_when_writes_applied(void **state)
{
	uint64_t v = 0;
	assert_true(policy_shadow_read(&hello.regs[0], &page, 10, 1, &v));
	assert_int_equal(v, 0x60);
	assert_true(policy_shadow_read(&hello.regs[0], &page, 3, 1, &v));
}

static void test_no_shadow_while_an_ordered_write_is_pending(void **state)
{
	uint64_t v = 0x1234;
	assert_false(policy_shadow_read(&hello.regs[0], &page, 11, 1, &v));
	assert_int_equal(v, 0x1234); /* untouched */
}

static void test_no_shadow_before_the_device_publishes(void **state)
{
	uint64_t v;
	page.magic = 0;
	assert_false(policy_shadow_read(&hello.regs[0], &page, 0, 1, &v));
	page.magic = IPC_STATE_MAGIC ^ 1;
	assert_false(policy_shadow_read(&hello.regs[0], &page, 0, 1, &v));
	assert_false(policy_shadow_read(&hello.regs[0], NULL, 0, 1, &v));
}

static void test_no_shadow_for_undeclared_or_plain_registers(void **state)
{
	uint64_t v;
	assert_false(policy_shadow_read(NULL, &page, 0, 1, &v));
	assert_false(policy_shadow_read(&hello.regs[1], &page, 0, 1, &v)); /* stream only */
	struct ipc_reg hostile = {IPC_SPACE_PIO, 1, IPC_REG_SHADOW, 200, 0x3fd, 0};
	assert_false(policy_shadow_read(&hostile, &page, 0, 1, &v)); /* slot out of the page */
}

static void test_shadow_masked_to_access_size(void **state)
{
	uint64_t v;
	atomic_store(&page.shadow[6], 0xffffffffffffbeefull); /* the device's value is hostile too */
	assert_true(policy_shadow_read(&hello.regs[2], &page, 0, 1, &v));
	assert_int_equal(v, 0xef);
	assert_true(policy_shadow_read(&hello.regs[2], &page, 0, 2, &v));
	assert_int_equal(v, 0xbeef);
}

static void test_which_writes_are_ordered(void **state)
{
	assert_int_equal(policy_write_changes(&hello.regs[1]), 0); /* THR: a stream */
	assert_int_equal(policy_write_changes(&hello.regs[0]), POLICY_ALL_SLOTS);
	assert_int_equal(policy_write_changes(NULL), POLICY_ALL_SLOTS); /* undeclared: anything */
	struct ipc_reg ier = {IPC_SPACE_PIO, 1, IPC_REG_SHADOW | IPC_REG_CHANGES_ONLY, 7, 0x3f9, 0x82};
	assert_int_equal(policy_write_changes(&ier), 0x82); /* only what it declares */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_find_reg, setup),
		cmocka_unit_test_setup(test_shadow_answers_when_writes_applied, setup),
		cmocka_unit_test_setup(test_no_shadow_while_an_ordered_write_is_pending, setup),
		cmocka_unit_test_setup(test_no_shadow_before_the_device_publishes, setup),
		cmocka_unit_test_setup(test_no_shadow_for_undeclared_or_plain_registers, setup),
		cmocka_unit_test_setup(test_shadow_masked_to_access_size, setup),
		cmocka_unit_test_setup(test_which_writes_are_ordered, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
