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

/* The receive ring (IPC_REG_RX_RING) from a hostile page: every tail and
 * head pair, including ones that wrap, either gives a count of at most the
 * ring's size or is refused; a pop reads the slot at head modulo the size. */
static void test_rx_ring_indices_from_a_hostile_page(void **state)
{
	hello.regs[0].flags |= IPC_REG_RX_RING;                 /* LSR */
	hello.regs[1] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_STREAM | IPC_REG_RX_RING, 7, 0x3f8, 0};
	atomic_store(&page.shadow[5], 0x60 | 0x61 << 8);
	atomic_store(&page.shadow[7], IPC_RX_POP_LIVE | 0x00);
	for (unsigned i = 0; i < IPC_RX_RING_SIZE; i++)
		atomic_store(&page.rx.data[i], (uint8_t)('a' + i));
	const struct {
		uint32_t head, tail;
		bool sane;
	} cases[] = {
		{0, 0, true},          {0, 16, true},          {0xfffffff8u, 8, true}, /* wraps: 16 */
		{0, 17, false},        {5, 4, false},          {0x80000000u, 0, false},
		{0xffffffffu, 0xffffffffu, true},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		atomic_store(&page.rx.head, cases[c].head);
		atomic_store(&page.rx.tail, cases[c].tail);
		struct rx_pop_answer a = {0};
		uint64_t lsr = 0;
		assert_int_equal(policy_rx_pop(&hello.regs[1], &page, 10, &a), cases[c].sane);
		assert_int_equal(policy_shadow_read(&hello.regs[0], &page, 10, 1, &lsr), cases[c].sane);
		if (!cases[c].sane)
			continue;
		bool data = cases[c].tail != cases[c].head;
		assert_int_equal(lsr, data ? 0x61 : 0x60);
		assert_int_equal(a.popped, data);
		if (data) {
			assert_int_equal(a.value, 'a' + cases[c].head % IPC_RX_RING_SIZE);
			assert_int_equal(a.head, cases[c].head + 1);
		}
	}
	/* Not live (DLAB: RBR reads DLL), or an ordered write not applied. */
	atomic_store(&page.rx.head, 0);
	atomic_store(&page.rx.tail, 1);
	struct rx_pop_answer a;
	assert_false(policy_rx_pop(&hello.regs[1], &page, 11, &a));
	atomic_store(&page.shadow[7], 0);
	assert_false(policy_rx_pop(&hello.regs[1], &page, 10, &a));
}

/* IIR with the ring: data above the trigger level reads RDI, below it CTI,
 * acknowledging nothing; with the receive interrupt off the ring is not an
 * event and THRE is reported as without a ring. */
static void test_rx_ring_puts_its_interrupt_on_top(void **state)
{
	hello.ranges[0].has_irq = true;
	hello.nirqs = 1;
	hello.irqs[0].gsi = 4;
	hello.regs[2] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_READ_ACK | IPC_REG_RX_RING, 6, 0x3fa, 0};
	uint64_t w = 0xc1 | 0xc2 << 8 | IPC_READ_ACK_PENDING | IPC_READ_ACK_REPORTS | IPC_READ_ACK_IDLE |
		     (uint64_t)0xc4 << 24 | (uint64_t)0xcc << 32 | 8ull << 40;
	struct read_ack_track t = {0};
	struct read_ack_answer a;
	const struct {
		uint32_t count;
		bool enabled;
		uint8_t value;
		bool acknowledges;
	} cases[] = {
		{8, true, 0xc4, false}, {7, true, 0xcc, false}, {1, true, 0xcc, false},
		{0, true, 0xc2, true},  {5, false, 0xc2, true},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		atomic_store(&page.shadow[6], w | (cases[c].enabled ? IPC_READ_ACK_RX_ENABLED : 0));
		atomic_store(&page.rx.head, 100);
		atomic_store(&page.rx.tail, 100 + cases[c].count);
		assert_true(policy_read_ack(&hello, &hello.regs[2], &page, 10, &t, &a));
		assert_int_equal(a.value, cases[c].value);
		assert_int_equal(a.acknowledges, cases[c].acknowledges);
		assert_int_equal(a.lower_gsi, cases[c].acknowledges ? 4 : -1);
	}
	/* A torn ring while data is an interrupt: the device answers. */
	atomic_store(&page.shadow[6], w | IPC_READ_ACK_RX_ENABLED);
	atomic_store(&page.rx.tail, 100 + IPC_RX_RING_SIZE + 1);
	assert_false(policy_read_ack(&hello, &hello.regs[2], &page, 10, &t, &a));
}

/* Which THR writes raise IRQ 4 in the core: the one that makes THRE
 * pending (as a read would see it now), with the word trusted, saying that
 * stream writes raise it and that it holds the line up (ETBEI). */
static void test_stream_write_raises_the_line(void **state)
{
	hello.ranges[0].has_irq = true;
	hello.nirqs = 1;
	hello.irqs[0].gsi = 4;
	hello.regs[2] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_READ_ACK, 6, 0x3fa, 0};
	const struct ipc_reg *thr = &hello.regs[1], *iir = &hello.regs[2];
	uint64_t w = 0xc1 | 0xc2 << 8 | IPC_READ_ACK_REPORTS | IPC_READ_ACK_IDLE |
		     IPC_READ_ACK_STREAM_RAISES | IPC_READ_ACK_LINE_UP;
	atomic_store(&page.shadow[6], w);
	struct read_ack_track t = {0};
	assert_int_equal(policy_stream_written(&hello, thr, iir, &page, 10, 11, &t), 4);
	assert_true(t.pending);
	assert_int_equal(t.seq, 11);
	/* Pending already (the core's own write, not applied yet): no more. */
	assert_int_equal(policy_stream_written(&hello, thr, iir, &page, 10, 11, &t), -1);
	/* Acknowledged by the core (its READ_DONE not applied yet): again. */
	t = (struct read_ack_track){.pending = false, .seq = 12};
	assert_int_equal(policy_stream_written(&hello, thr, iir, &page, 10, 13, &t), 4);
	/* The device has applied everything and says pending: its line. */
	atomic_store(&page.applied_seq, 13);
	atomic_store(&page.shadow[6], w | IPC_READ_ACK_PENDING);
	assert_int_equal(policy_stream_written(&hello, thr, iir, &page, 10, 14, &t), -1);
	/* ETBEI off, DLAB set, or the word not trusted: nothing raised. */
	t = (struct read_ack_track){.seq = 13};
	atomic_store(&page.shadow[6], w & ~IPC_READ_ACK_LINE_UP);
	assert_int_equal(policy_stream_written(&hello, thr, iir, &page, 10, 15, &t), -1);
	assert_true(t.pending);
	t = (struct read_ack_track){.seq = 13};
	atomic_store(&page.shadow[6], w & ~IPC_READ_ACK_STREAM_RAISES);
	assert_int_equal(policy_stream_written(&hello, thr, iir, &page, 10, 15, &t), -1);
	assert_false(t.pending);
	atomic_store(&page.shadow[6], w);
	assert_int_equal(policy_stream_written(&hello, thr, iir, &page, 14, 15, &t), -1);
	assert_true(t.unknown);
	page.magic = 0;
	t = (struct read_ack_track){.seq = 13};
	assert_int_equal(policy_stream_written(&hello, thr, iir, &page, 10, 15, &t), -1);
	assert_true(t.unknown);
	/* After an unknown write, the next trusted one raises (at worst a
	 * line already up goes up). */
	page.magic = IPC_STATE_MAGIC;
	assert_int_equal(policy_stream_written(&hello, thr, iir, &page, 10, 16, &t), 4);
}

/* policy_enable_written in one number: -2 not an enable write, -1 no line
 * change, the GSI raised, or 100 + the GSI lowered. */
static int enable_write(const struct ipc_reg *reg, const struct ipc_reg *ra, uint64_t reg_mark,
			uint64_t ra_mark, uint64_t value, uint64_t seq, struct read_ack_track *t)
{
	int gsi, level;
	if (!policy_enable_written(&hello, reg, ra, &page, reg_mark, ra_mark, value, seq, t, &gsi, &level))
		return -2;
	return gsi < 0 ? -1 : level ? gsi : 100 + gsi;
}

/* IER's ETBEI (IPC_READ_ACK_ENABLE_*): a write to the register the word
 * names that changes only the enable bits, with its shadow and the word
 * current, changes nothing but its own shadow; the core knows the event
 * disabled (IIR reads "none") or enabled (THRE raised: pending, the line
 * up) until the device has applied it.  Any other write does not qualify. */
static void test_event_enabled_by_an_enable_write(void **state)
{
	hello.ranges[0].has_irq = true;
	hello.nirqs = 1;
	hello.irqs[0].gsi = 4;
	hello.nregs = 4;
	hello.regs[2] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_READ_ACK, 6, 0x3fa, 0};
	hello.regs[3] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_SHADOW | IPC_REG_CHANGES_ONLY, 7, 0x3f9,
					 1u << 7 | 1u << 6};
	const struct ipc_reg *ier = &hello.regs[3], *iir = &hello.regs[2];
	uint64_t w = 0xc1 | 0xc2 << 8 | IPC_READ_ACK_PENDING | IPC_READ_ACK_REPORTS | IPC_READ_ACK_IDLE |
		     IPC_READ_ACK_STREAM_RAISES | IPC_READ_ACK_LINE_UP | IPC_READ_ACK_ENABLE_RAISES |
		     IPC_READ_ACK_ENABLED | 0x02ull << 48 | 7ull << 56;
	atomic_store(&page.shadow[6], w);
	atomic_store(&page.shadow[7], 0x03); /* ERBFI | ETBEI */
	struct read_ack_track t = {0};
	struct read_ack_answer a;
	/* More than ETBEI changed, nothing changed, a stale shadow or word, a
	 * word naming another register or no bits: no. */
	const int no = -2;
	assert_int_equal(enable_write(ier, iir, 10, 10, 0x00, 11, &t), no);
	assert_int_equal(enable_write(ier, iir, 10, 10, 0x03, 11, &t), no);
	assert_int_equal(enable_write(ier, iir, 11, 10, 0x01, 11, &t), no);
	assert_int_equal(enable_write(ier, iir, 10, 11, 0x01, 11, &t), no);
	atomic_store(&page.shadow[6], (w & ~(0xffull << 56)) | 5ull << 56);
	assert_int_equal(enable_write(ier, iir, 10, 10, 0x01, 11, &t), no);
	atomic_store(&page.shadow[6], w & ~(0xffull << 48));
	assert_int_equal(enable_write(ier, iir, 10, 10, 0x01, 11, &t), no);
	assert_int_equal(t.enable_seq, 0);
	assert_true(policy_read_ack(&hello, iir, &page, 10, &t, &a));
	assert_int_equal(a.value, 0xc2);
	/* ETBEI cleared: IIR reads "none" and acknowledges nothing until the
	 * device has applied the write; THR writes raise no line meanwhile. */
	atomic_store(&page.shadow[6], w);
	assert_int_equal(enable_write(ier, iir, 10, 10, 0x01, 11, &t), 104); /* idle: lowered */
	assert_int_equal(t.enable_seq, 11);
	assert_false(t.enabled);
	assert_true(policy_read_ack(&hello, iir, &page, 10, &t, &a));
	assert_int_equal(a.value, 0xc1);
	assert_false(a.acknowledges);
	assert_int_equal(a.lower_gsi, -1);
	assert_int_equal(policy_stream_written(&hello, &hello.regs[1], iir, &page, 10, 12, &t), -1);
	/* On again before the device has applied "off": the core knows IER's
	 * value from its own write; not if another write to IER came since. */
	struct read_ack_track t2 = t;
	assert_int_equal(enable_write(ier, iir, 11, 10, 0x03, 13, &t2), 4);
	assert_true(t2.enabled);
	assert_true(t2.pending);
	t2 = t;
	assert_int_equal(enable_write(ier, iir, 12, 10, 0x03, 13, &t2),
			 -2);
	/* Applied: the device's word says ETBEI is off, and the same. */
	atomic_store(&page.applied_seq, 12);
	atomic_store(&page.shadow[6], w & ~IPC_READ_ACK_ENABLED);
	atomic_store(&page.shadow[7], 0x01);
	assert_true(policy_read_ack(&hello, iir, &page, 12, &t, &a));
	assert_int_equal(a.value, 0xc1);
	/* ETBEI set again: THRE pending at once and the line to raise, IIR
	 * reports it before the device has seen the write. */
	assert_int_equal(enable_write(ier, iir, 12, 12, 0x03, 13, &t), 4);
	assert_true(t.enabled);
	assert_true(t.pending);
	assert_int_equal(t.seq, 13);
	assert_true(policy_read_ack(&hello, iir, &page, 12, &t, &a));
	assert_int_equal(a.value, 0xc2);
	assert_true(a.acknowledges);
	assert_int_equal(a.lower_gsi, 4);
	/* Disabling while something else holds the line (not IDLE): left up. */
	t = (struct read_ack_track){0};
	atomic_store(&page.shadow[6], w & ~IPC_READ_ACK_IDLE);
	atomic_store(&page.shadow[7], 0x03);
	assert_int_equal(enable_write(ier, iir, 12, 12, 0x01, 13, &t), -1);
	/* Enabling without the word saying it raises the event: no line. */
	t = (struct read_ack_track){0};
	atomic_store(&page.shadow[6], w & ~(IPC_READ_ACK_ENABLED | IPC_READ_ACK_ENABLE_RAISES));
	atomic_store(&page.shadow[7], 0x01);
	assert_int_equal(enable_write(ier, iir, 12, 12, 0x03, 13, &t), -1);
	assert_false(t.pending);
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
		cmocka_unit_test_setup(test_rx_ring_indices_from_a_hostile_page, setup),
		cmocka_unit_test_setup(test_rx_ring_puts_its_interrupt_on_top, setup),
		cmocka_unit_test_setup(test_stream_write_raises_the_line, setup),
		cmocka_unit_test_setup(test_event_enabled_by_an_enable_write, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
