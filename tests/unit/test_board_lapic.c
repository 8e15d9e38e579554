/* test_board_lapic.c - the software LAPIC (vmm-core/board/lapic.h): fixed
 * interrupts through IRR/ISR with task priority, EOI and its broadcast for
 * level-triggered vectors, the timer one-shot and periodic on a test clock,
 * IPIs between two LAPICs, INIT/SIPI, and hostile accesses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lapic.h"

enum {
	REG_ID = 0x20, REG_VERSION = 0x30, REG_TPR = 0x80, REG_PPR = 0xa0, REG_EOI = 0xb0,
	REG_SVR = 0xf0, REG_ISR = 0x100, REG_IRR = 0x200, REG_ICR_LO = 0x300, REG_ICR_HI = 0x310,
	REG_LVT_TIMER = 0x320, REG_TIMER_INITIAL = 0x380, REG_TIMER_CURRENT = 0x390, REG_TIMER_DCR = 0x3e0,
};

static uint64_t now;

static uint64_t test_clock(void)
{
	return now;
}

/* What each LAPIC told its CPU and its IOAPIC. */
static struct probe {
	int intr;
	int eois, eoi_vector;
	int inits, sipis, sipi_vector;
} probe[2];

static void on_intr(void *opaque, int level)
{
	((struct probe *)opaque)->intr = level;
}

static void on_eoi(void *opaque, uint8_t vector)
{
	struct probe *p = opaque;
	p->eois++;
	p->eoi_vector = vector;
}

static void on_startup(void *opaque, bool sipi, uint8_t vector)
{
	struct probe *p = opaque;
	if (sipi) {
		p->sipis++;
		p->sipi_vector = vector;
	} else {
		p->inits++;
	}
}

static struct lapic lapics[2];
static struct lapic *const peers[2] = {&lapics[0], &lapics[1]};
static struct lapic *const l0 = &lapics[0];

static int setup(void **state)
{
	now = 1000;
	for (int i = 0; i < 2; i++) {
		probe[i] = (struct probe){0};
		struct lapic_ops ops = {.opaque = &probe[i], .intr = on_intr, .eoi = on_eoi, .startup = on_startup};
		lapic_init(&lapics[i], (uint32_t)i, &ops, test_clock, peers, 2);
		lapic_write(&lapics[i], REG_SVR, 4, 0x1ff); /* software-enable, spurious 0xff */
	}
	return 0;
}

static int teardown(void **state)
{
	lapic_destroy(&lapics[0]);
	lapic_destroy(&lapics[1]);
	return 0;
}

static void fixed(struct lapic *l, uint8_t vector, bool level)
{
	struct lapic_msg m = {.vector = vector, .delivery = LAPIC_DM_FIXED, .dest = (uint8_t)l->id, .level = level};
	lapic_route(peers, 2, &m);
}

static void test_identity(void **state)
{
	assert_int_equal(lapic_read(l0, REG_VERSION, 4), 0x00050014u);
	assert_int_equal(lapic_read(&lapics[1], REG_ID, 4), 1u << 24);
	assert_int_equal(lapic_read(l0, REG_LVT_TIMER, 4), 0x10000u); /* masked at reset */
}

static void test_fixed_interrupt_ack_and_eoi(void **state)
{
	fixed(l0, 0x41, false);
	assert_int_equal(probe[0].intr, 1);
	assert_int_equal(probe[1].intr, 0); /* addressed to APIC 0 only */
	assert_int_equal(lapic_read(l0, REG_IRR + 0x20, 4), 1u << 1);
	assert_int_equal(lapic_ack(l0), 0x41);
	assert_int_equal(probe[0].intr, 0);
	assert_int_equal(lapic_read(l0, REG_ISR + 0x20, 4), 1u << 1);
	assert_int_equal(lapic_read(l0, REG_PPR, 4), 0x40);
	lapic_write(l0, REG_EOI, 4, 0);
	assert_int_equal(lapic_read(l0, REG_ISR + 0x20, 4), 0);
	assert_int_equal(probe[0].eois, 0); /* edge: no broadcast */
	assert_int_equal(lapic_ack(l0), -1);
}

static void test_priorities(void **state)
{
	lapic_write(l0, REG_TPR, 4, 0x50);
	fixed(l0, 0x45, false);
	assert_int_equal(probe[0].intr, 0); /* class 4 <= TPR class 5 */
	fixed(l0, 0x61, false);
	assert_int_equal(probe[0].intr, 1);
	assert_int_equal(lapic_ack(l0), 0x61);
	fixed(l0, 0x62, false); /* same class as the one in service: waits */
	assert_int_equal(probe[0].intr, 0);
	fixed(l0, 0x80, false); /* higher class: nests */
	assert_int_equal(lapic_ack(l0), 0x80);
	lapic_write(l0, REG_EOI, 4, 0); /* EOI ends the highest in service: 0x80 */
	assert_int_equal(probe[0].intr, 0);
	lapic_write(l0, REG_EOI, 4, 0); /* then 0x61 */
	assert_int_equal(probe[0].intr, 1);
	assert_int_equal(lapic_ack(l0), 0x62);
	lapic_write(l0, REG_EOI, 4, 0);
	lapic_write(l0, REG_TPR, 4, 0);
	assert_int_equal(lapic_ack(l0), 0x45);
}

static void test_level_eoi_is_broadcast(void **state)
{
	fixed(l0, 0x51, true);
	assert_int_equal(lapic_ack(l0), 0x51);
	lapic_write(l0, REG_EOI, 4, 0);
	assert_int_equal(probe[0].eois, 1);
	assert_int_equal(probe[0].eoi_vector, 0x51);
}

static void test_software_disabled(void **state)
{
	lapic_write(l0, REG_LVT_TIMER, 4, 0x30);
	lapic_write(l0, REG_SVR, 4, 0xff); /* disable */
	assert_true(lapic_read(l0, REG_LVT_TIMER, 4) & 0x10000u);
	fixed(l0, 0x41, false);
	assert_int_equal(probe[0].intr, 0);
	lapic_write(l0, REG_SVR, 4, 0x1ff);
	assert_int_equal(probe[0].intr, 1); /* held in IRR meanwhile */
}

static void test_timer_one_shot(void **state)
{
	lapic_write(l0, REG_TIMER_DCR, 4, 0xb); /* divide by 1 */
	lapic_write(l0, REG_LVT_TIMER, 4, 0xec);
	lapic_write(l0, REG_TIMER_INITIAL, 4, 1000);
	now += 400;
	assert_int_equal(lapic_read(l0, REG_TIMER_CURRENT, 4), 600);
	assert_int_equal(lapic_timer_poll(l0, now), 2000);
	assert_int_equal(probe[0].intr, 0);
	now += 600;
	assert_int_equal(lapic_timer_poll(l0, now), UINT64_MAX);
	assert_int_equal(probe[0].intr, 1);
	assert_int_equal(lapic_ack(l0), 0xec);
	assert_int_equal(lapic_read(l0, REG_TIMER_CURRENT, 4), 0);
	lapic_write(l0, REG_TIMER_INITIAL, 4, 0); /* a zero count stops the timer */
	assert_int_equal(lapic_timer_poll(l0, now + 5000), UINT64_MAX);
}

static void test_timer_periodic_and_divider(void **state)
{
	lapic_write(l0, REG_TIMER_DCR, 4, 0x0); /* divide by 2 */
	lapic_write(l0, REG_LVT_TIMER, 4, 0x20000 | 0xed);
	lapic_write(l0, REG_TIMER_INITIAL, 4, 100); /* 200 ns period */
	now += 250;
	assert_int_equal(lapic_read(l0, REG_TIMER_CURRENT, 4), 75);
	assert_int_equal(lapic_timer_poll(l0, now), 1400);
	assert_int_equal(lapic_ack(l0), 0xed);
	lapic_write(l0, REG_EOI, 4, 0);
	now += 1000; /* five periods missed: one interrupt, next on the grid */
	assert_int_equal(lapic_timer_poll(l0, now), 2400);
	assert_int_equal(lapic_ack(l0), 0xed);
	assert_int_equal(lapic_ack(l0), -1);
	lapic_write(l0, REG_LVT_TIMER, 4, 0x30000 | 0xed); /* masked: counts, no interrupt */
	lapic_write(l0, REG_EOI, 4, 0);
	now += 1000;
	lapic_timer_poll(l0, now);
	assert_int_equal(probe[0].intr, 0);
}

static void test_ipis(void **state)
{
	lapic_write(l0, REG_ICR_HI, 4, 1u << 24);
	lapic_write(l0, REG_ICR_LO, 4, 0x4053); /* fixed, vector 0x53, to APIC 1 */
	assert_int_equal(probe[1].intr, 1);
	assert_int_equal(lapic_ack(&lapics[1]), 0x53);
	lapic_write(&lapics[1], REG_EOI, 4, 0);
	lapic_write(l0, REG_ICR_LO, 4, (1u << 18) | 0x54); /* self */
	assert_int_equal(lapic_ack(l0), 0x54);
	lapic_write(l0, REG_EOI, 4, 0);
	lapic_write(l0, REG_ICR_LO, 4, (3u << 18) | 0x55); /* all but self */
	assert_int_equal(lapic_ack(&lapics[1]), 0x55);
	assert_int_equal(lapic_ack(l0), -1);
	lapic_write(l0, REG_ICR_LO, 4, 0x4500); /* INIT to APIC 1 */
	lapic_write(l0, REG_ICR_LO, 4, 0x8500); /* INIT level de-assert: ignored */
	lapic_write(l0, REG_ICR_LO, 4, 0x4609); /* SIPI, vector 9 -> 0x9000 */
	assert_int_equal(probe[1].inits, 1);
	assert_int_equal(probe[1].sipis, 1);
	assert_int_equal(probe[1].sipi_vector, 9);
	assert_int_equal(probe[0].inits + probe[0].sipis, 0);
}

static void test_logical_and_msi(void **state)
{
	lapic_write(&lapics[1], 0xd0, 4, 0x02000000); /* LDR: logical id bit 1 */
	struct lapic_msg m;
	lapic_msg_from_msi(0xfee02004, 0x8061, &m); /* logical dest 2, level, vector 0x61 */
	assert_true(m.logical);
	assert_true(m.level);
	assert_int_equal(m.dest, 2);
	lapic_route(peers, 2, &m);
	assert_int_equal(probe[0].intr, 0);
	assert_int_equal(lapic_ack(&lapics[1]), 0x61);
	lapic_msg_from_msi(0xfeeff000, 0x0071, &m); /* physical broadcast */
	lapic_route(peers, 2, &m);
	assert_int_equal(lapic_ack(l0), 0x71);
	assert_int_equal(lapic_ack(&lapics[1]), 0x71);
}

static void test_hostile_accesses(void **state)
{
	assert_int_equal(lapic_read(l0, REG_VERSION, 1), 0);
	assert_int_equal(lapic_read(l0, REG_VERSION + 2, 4), 0);
	assert_int_equal(lapic_read(l0, 0x1000, 4), 0);
	lapic_write(l0, REG_TPR, 2, 0xff);
	assert_int_equal(lapic_read(l0, REG_TPR, 4), 0);
	fixed(l0, 3, false); /* vectors below 16 are illegal: ESR, not IRR */
	assert_int_equal(probe[0].intr, 0);
	assert_int_equal(lapic_read(l0, 0x280, 4), 0x40);
	lapic_write(l0, REG_EOI, 4, 0); /* EOI with nothing in service */
	assert_int_equal(probe[0].eois, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixed_interrupt_ack_and_eoi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_priorities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_eoi_is_broadcast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_software_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_one_shot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_periodic_and_divider, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipis, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logical_and_msi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_accesses, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
