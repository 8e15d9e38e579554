/* test_core_hello.c - what a device may declare in its HELLO: valid and
 * hostile declarations, and what a restarted device must repeat. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "devproxy_policy.h"
#include "host.h"

/* A 16550 at 0x3f8 with IRQ 4: LSR shadowed, THR a stream register. */
static struct ipc_hello uart_hello(void)
{
	struct ipc_hello h = {.version = IPC_PROTO_VERSION, .name = "serial"};
	h.nranges = 1;
	h.ranges[0] = (struct ipc_range){.space = IPC_SPACE_PIO, .base = 0x3f8, .size = 8};
	h.nirqs = 1;
	h.irqs[0].gsi = 4;
	h.nregs = 2;
	h.regs[0] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_SHADOW, 0, 0x3fd, 0};
	h.regs[1] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_STREAM, 0, 0x3f8, 0};
	return h;
}

static void expect_rejected(const struct ipc_hello *h, const char *reason_part)
{
	char why[128] = "";
	assert_int_equal(policy_check_hello(h, why, sizeof(why)), -1);
	if (!strstr(why, reason_part))
		fail_msg("rejected for \"%s\", not \"%s\"", why, reason_part);
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
	h.irqs[0].gsi = BOARD_IRQ_LINES;
	expect_rejected(&h, "irq 24");
	h.irqs[0].gsi = 0xfffffffeu;
	expect_rejected(&h, "irq");
	h.irqs[0].gsi = BOARD_IRQ_LINES - 1;
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
	h.regs[0].flags = IPC_REG_SHADOW | IPC_REG_RX_RING; /* no receive register pops it */
	expect_rejected(&h, "receive ring");
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

/* A published line (IPC_IRQ_PUBLISHED) needs a host that wakes across
 * processes; a restart must publish what the first incarnation did. */
static void test_published_line_declarations(void **state)
{
	char why[128];
	struct ipc_hello h = uart_hello(), first;
	h.irqs[h.nirqs++] = (struct ipc_irq_line){.gsi = 10, .trigger = IPC_TRIGGER_LEVEL,
						  .flags = IPC_IRQ_PUBLISHED};
	if (!host_shared_wait_supported()) {
		expect_rejected(&h, "cannot wake");
		return;
	}
	assert_int_equal(policy_check_hello(&h, why, sizeof(why)), 0);
	first = h;
	h.irqs[1].flags = 0;
	assert_false(policy_same_device(&first, &h));
	assert_true(policy_same_device(&first, &first));
}

/* A doorbell's slot indexes the state page's doorbells: in range, not also
 * a shadow or an acknowledge; a wait only with a doorbell. */
static void test_doorbell_declarations(void **state)
{
	char why[128];
	struct ipc_hello h = uart_hello();
	h.regs[1].flags = IPC_REG_DOORBELL | IPC_REG_DOORBELL_WAIT;
	h.regs[1].slot = IPC_MAX_DOORBELLS - 1;
	if (!host_shared_wait_supported()) {
		expect_rejected(&h, "cannot ring");
		return;
	}
	assert_int_equal(policy_check_hello(&h, why, sizeof(why)), 0);
	h.regs[1].slot = IPC_MAX_DOORBELLS;
	expect_rejected(&h, "doorbell 4 out of range");
	h = uart_hello();
	h.regs[1].flags = IPC_REG_DOORBELL_WAIT;
	expect_rejected(&h, "without a doorbell");
	h = uart_hello();
	h.regs[0].flags = IPC_REG_DOORBELL | IPC_REG_SHADOW;
	expect_rejected(&h, "cannot be a shadow");
	h = uart_hello();
	h.regs[1].flags = IPC_REG_DOORBELL | IPC_REG_ACK_LOWERS;
	expect_rejected(&h, "an acknowledge");
	h = uart_hello();
	h.regs[1].flags = IPC_REG_DOORBELL | IPC_REG_READ_ACK;
	expect_rejected(&h, "an acknowledge");
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
	b.irqs[0].gsi = 3;
	assert_false(policy_same_device(&a, &b));
	b = uart_hello();
	b.regs[0].flags = 0;
	assert_false(policy_same_device(&a, &b));
	b = uart_hello();
	b.nregs = 1;
	assert_false(policy_same_device(&a, &b));
}

/* The uart's HELLO plus a virtio-mmio range asking for a slot, with its
 * ANY line. */
static struct ipc_hello slot_hello(void)
{
	struct ipc_hello h = uart_hello();
	h.ranges[1] = (struct ipc_range){.space = IPC_SPACE_MMIO, .size = IPC_VIRTIO_MMIO_SIZE,
					 .kind = IPC_RANGE_VIRTIO_MMIO, .has_irq = true, .irq = 1};
	h.nranges = 2;
	h.irqs[1] = (struct ipc_irq_line){.gsi = IPC_IRQ_ANY, .trigger = IPC_TRIGGER_LEVEL};
	h.nirqs = 2;
	/* The virtio Status register, shadowed, at its offset in the range. */
	h.regs[h.nregs++] = (struct ipc_reg){.space = IPC_SPACE_MMIO, .size = 4,
					     .flags = IPC_REG_SHADOW, .slot = 5, .addr = 0x70, 0};
	return h;
}

static void test_slots_by_name(void **state)
{
	static struct slot_table t = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct ipc_hello h = slot_hello(), placed;
	char why[128];
	assert_int_equal(policy_check_hello(&h, why, sizeof(why)), 0); /* ANY is fine */
	assert_int_equal(policy_place(&t, "console", &h, &placed, why, sizeof(why)), 0);
	assert_int_equal(placed.ranges[0].base, 0x3f8); /* explicit: untouched */
	assert_int_equal(placed.irqs[0].gsi, 4);
	assert_int_equal(placed.ranges[1].base, BOARD_VIRTIO_MMIO_BASE);
	assert_int_equal(placed.irqs[1].gsi, BOARD_VIRTIO_MMIO_GSI);
	assert_int_equal(h.ranges[1].base, 0); /* the declaration stays as it was */
	/* The slot range's registers move with it; the uart's stay. */
	assert_int_equal(placed.regs[0].addr, h.regs[0].addr);
	assert_int_equal(placed.regs[h.nregs - 1].addr, BOARD_VIRTIO_MMIO_BASE + 0x70);
	assert_non_null(policy_find_reg(&placed, IPC_SPACE_MMIO, BOARD_VIRTIO_MMIO_BASE + 0x70, 4));

	/* Another device gets the next slot; the first asking again its own. */
	assert_int_equal(policy_place(&t, "net", &h, &placed, why, sizeof(why)), 0);
	assert_int_equal(placed.ranges[1].base, BOARD_VIRTIO_MMIO_BASE + IPC_VIRTIO_MMIO_SIZE);
	assert_int_equal(placed.irqs[1].gsi, BOARD_VIRTIO_MMIO_GSI + 1);
	assert_int_equal(policy_place(&t, "console", &h, &placed, why, sizeof(why)), 0);
	assert_int_equal(placed.ranges[1].base, BOARD_VIRTIO_MMIO_BASE);

	/* Every slot taken: refused with a reason. */
	for (int i = 2; i < BOARD_VIRTIO_MMIO_SLOTS; i++) {
		char name[IPC_MAX_NAME];
		snprintf(name, sizeof(name), "dev%d", i);
		assert_int_equal(policy_place(&t, name, &h, &placed, why, sizeof(why)), 0);
	}
	assert_int_equal(policy_place(&t, "one-too-many", &h, &placed, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no virtio-mmio slot left"));
	/* The slots stay below 4 GiB, apart from the IOAPIC and LAPIC. */
	uint64_t end = BOARD_VIRTIO_MMIO_BASE + (uint64_t)BOARD_VIRTIO_MMIO_SLOTS * IPC_VIRTIO_MMIO_SIZE;
	assert_true(end <= 0xfec00000u);
	assert_true(BOARD_VIRTIO_MMIO_GSI + BOARD_VIRTIO_MMIO_SLOTS <= BOARD_IRQ_LINES);
}

/* A slot range's registers are offsets: placed with the range.  Its
 * InterruptACK (IPC_REG_ACK_LOWERS over the InterruptStatus shadow) lowers
 * the slot's line only when the write clears everything pending. */
static void test_slot_registers_and_ack_lowers(void **state)
{
	static struct slot_table t = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct ipc_hello h = slot_hello(), placed;
	h.regs[h.nregs++] = (struct ipc_reg){IPC_SPACE_MMIO, 4, IPC_REG_SHADOW, 3, 0x60, 0};
	h.regs[h.nregs++] = (struct ipc_reg){IPC_SPACE_MMIO, 4, IPC_REG_ACK_LOWERS, 3, 0x64, 0};
	char why[128];
	assert_int_equal(policy_check_hello(&h, why, sizeof(why)), 0);
	assert_int_equal(policy_place(&t, "console", &h, &placed, why, sizeof(why)), 0);
	assert_int_equal(placed.regs[h.nregs - 2].addr, BOARD_VIRTIO_MMIO_BASE + 0x60);
	assert_int_equal(placed.regs[h.nregs - 1].addr, BOARD_VIRTIO_MMIO_BASE + 0x64);
	assert_int_equal(placed.regs[0].addr, 0x3fd); /* explicit ranges' registers stay */

	static struct ipc_state_page page;
	const struct ipc_reg *ack =
		policy_find_reg(&placed, IPC_SPACE_MMIO, BOARD_VIRTIO_MMIO_BASE + 0x64, 4);
	assert_non_null(ack);
	page.shadow[3] = 0x3; /* used buffer and config change pending */
	assert_int_equal(policy_ack_lowers(&placed, ack, &page, 4, 0x3), -1); /* shadows not valid yet */
	page.magic = IPC_STATE_MAGIC;
	assert_int_equal(policy_ack_lowers(&placed, ack, &page, 4, 0x3), BOARD_VIRTIO_MMIO_GSI);
	assert_int_equal(policy_ack_lowers(&placed, ack, &page, 4, 0x1), -1); /* config stays */
	assert_int_equal(policy_ack_lowers(&placed, &placed.regs[2], &page, 4, 0x3), -1); /* not an ACK */

	/* A line-lowering register in a range without a line is refused. */
	h.regs[h.nregs - 1].addr = 0x3f9;
	h.regs[h.nregs - 1].space = IPC_SPACE_PIO;
	h.regs[h.nregs - 1].size = 1;
	h.ranges[0].has_irq = false;
	expect_rejected(&h, "lowers a line but its range has none");
}

/* A restart must declare kind and line as before, not merely the addresses. */
static void test_restart_with_other_kind_or_trigger(void **state)
{
	struct ipc_hello a = slot_hello(), b = a;
	assert_true(policy_same_device(&a, &b));
	b.ranges[0].kind = IPC_RANGE_UART16550; /* declared plain first */
	assert_false(policy_same_device(&a, &b));
	b = a;
	b.irqs[1].trigger = IPC_TRIGGER_EDGE;
	assert_false(policy_same_device(&a, &b));
	b = a;
	b.ranges[1].irq = 0;
	assert_false(policy_same_device(&a, &b));
}

/* A device's interrupt messages: a burst passes at once, a flood is held
 * to DEVPROXY_IRQ_RATE a second, and a quiet spell refills the burst. */
static void test_irq_rate_limit(void **state)
{
	struct irq_budget b = {0};
	uint64_t now = 1000000000ull;
	for (int i = 0; i < DEVPROXY_IRQ_BURST; i++)
		assert_int_equal(policy_irq_wait(&b, now), 0);
	uint64_t wait = policy_irq_wait(&b, now);
	assert_int_equal(wait, 1000000000ull / DEVPROXY_IRQ_RATE);
	/* A sender that always waits as told gets the rate, not more. */
	uint64_t start = now, sent = 0;
	now += wait;
	while (now - start < 1000000000ull) {
		now += policy_irq_wait(&b, now);
		sent++;
	}
	assert_true(sent <= DEVPROXY_IRQ_RATE && sent >= DEVPROXY_IRQ_RATE - 1);
	/* A second of silence: a whole burst again. */
	now += 1000000000ull;
	for (int i = 0; i < DEVPROXY_IRQ_BURST; i++)
		assert_int_equal(policy_irq_wait(&b, now), 0);
	assert_true(policy_irq_wait(&b, now) > 0);
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
		cmocka_unit_test(test_doorbell_declarations),
		cmocka_unit_test(test_published_line_declarations),
		cmocka_unit_test(test_restart_must_declare_the_same),
		cmocka_unit_test(test_slots_by_name),
		cmocka_unit_test(test_slot_registers_and_ack_lowers),
		cmocka_unit_test(test_restart_with_other_kind_or_trigger),
		cmocka_unit_test(test_irq_rate_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
