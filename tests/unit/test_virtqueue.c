/* test_virtqueue.c - split virtqueues (devlib/virtio/virtqueue.h): a request
 * and its response through a queue, EVENT_IDX and flag-based suppression in
 * both directions, indirect descriptors, restart's used-ring reconciliation,
 * and hostile rings, each of which must break the device (NEEDS_RESET, a
 * config interrupt) without touching memory outside guest RAM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "virtio_fake.h"

#define NO_EVENT_IDX (~(1ull << VIRTIO_F_EVENT_IDX))
#define NO_INDIRECT (~(1ull << VIRTIO_F_INDIRECT_DESC))

static struct fake *running(uint64_t accept)
{
	struct fake *f = fake_new();
	linux_init(f, accept);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_DRIVER_OK);
	return f;
}

/* A request: "ping" readable, 64 bytes writable, as two descriptors. */
static void post_ping(struct fake *f, unsigned q, uint16_t head, uint64_t buf)
{
	memcpy(f->ram + buf, "ping", 4);
	drv_desc(f, q, head, buf, 4, VIRTQ_DESC_F_NEXT, (uint16_t)((head + 1) % FAKE_NUM));
	drv_desc(f, q, (head + 1) % FAKE_NUM, buf + 0x100, 64, VIRTQ_DESC_F_WRITE, 0);
	drv_post(f, q, head);
}

/* The device's side: answer every request with "pong". */
static unsigned serve(struct fake *f, unsigned q)
{
	struct virtq_chain c;
	unsigned n = 0;
	while (virtq_pop(&f->dev, q, &c)) {
		char req[8] = {0};
		assert_int_equal(virtq_chain_read(&f->dev, &c, 0, req, sizeof(req)), 4);
		assert_string_equal(req, "ping");
		assert_int_equal(virtq_chain_write(&f->dev, &c, 0, "pong", 4), 4);
		virtq_push(&f->dev, q, &c, 4);
		n++;
	}
	return n;
}

static void test_request_response(void **unused)
{
	struct fake *f = running(~0ull);
	post_ping(f, 0, 0, FAKE_BUF);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->notified[0], 2); /* DRIVER_OK's look, and this notify */

	struct virtq_chain c;
	assert_true(virtq_pop(&f->dev, 0, &c));
	assert_int_equal(c.head, 0);
	assert_int_equal(c.nread, 1);
	assert_int_equal(c.nwrite, 1);
	assert_int_equal(c.read_len, 4);
	assert_int_equal(c.write_len, 64);
	assert_int_equal(c.range[1].gpa, FAKE_BUF + 0x100);
	char req[4];
	assert_int_equal(virtq_chain_read(&f->dev, &c, 1, req, sizeof(req)), 3); /* from an offset */
	assert_memory_equal(req, "ing", 3);
	assert_int_equal(virtq_chain_write(&f->dev, &c, 60, "pong-and-more", 13), 4); /* bounded */
	assert_int_equal(virtq_chain_write(&f->dev, &c, 0, "pong", 4), 4);
	virtq_push(&f->dev, 0, &c, 1000); /* clamped to the writable size */
	virtq_signal_used(&f->dev, 0);

	assert_int_equal(drv_used_idx(f, 0), 1);
	uint32_t id, len;
	drv_used_elem(f, 0, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 64);
	assert_memory_equal(f->ram + FAKE_BUF + 0x100, "pong", 4);
	assert_int_equal(f->level, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	/* EVENT_IDX: the device asked to be told about the next entry. */
	assert_int_equal(drv_avail_event(f, 0), 1);
	assert_false(virtq_pop(&f->dev, 0, &c)); /* empty */
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));

	/* Many rounds, past the 16-bit index wrap. */
	for (unsigned i = 0; i < 70000; i++) {
		post_ping(f, 1, (uint16_t)(2 * (i % 4)), FAKE_BUF + 0x1000);
		assert_int_equal(serve(f, 1), 1);
	}
	assert_int_equal(drv_used_idx(f, 1), (uint16_t)70000);
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));
	fake_free(f);
}

static void test_nothing_before_driver_ok(void **unused)
{
	struct fake *f = fake_new();
	struct virtq_chain c;
	post_ping(f, 0, 0, FAKE_BUF);
	assert_false(virtq_pop(&f->dev, 0, &c));
	assert_false(virtq_pop(&f->dev, FAKE_QUEUES, &c));
	virtq_signal_used(&f->dev, 0);
	assert_int_equal(f->level, 0);
	fake_free(f);
}

/* used_event: the driver wants an interrupt once the used index passes it. */
static void test_event_idx_used_suppression(void **unused)
{
	struct fake *f = running(~0ull);
	drv_set_used_event(f, 0, 2); /* interrupt when entry 2 is used */
	for (uint16_t i = 0; i < 4; i++)
		post_ping(f, 0, (uint16_t)(2 * i), FAKE_BUF);
	struct virtq_chain c;
	bool needed[4];
	for (int i = 0; i < 4; i++) {
		assert_true(virtq_pop(&f->dev, 0, &c));
		virtq_push(&f->dev, 0, &c, 0);
		needed[i] = virtq_notify_needed(&f->dev, 0);
	}
	/* The first decision always interrupts (no previous one recorded); then
	 * only the push that makes used idx pass 2 (idx 2 -> 3). */
	assert_true(needed[0]);
	assert_false(needed[1]);
	assert_true(needed[2]);
	assert_false(needed[3]);
	/* And signal_used follows the decision. */
	post_ping(f, 0, 0, FAKE_BUF);
	assert_true(virtq_pop(&f->dev, 0, &c));
	virtq_push(&f->dev, 0, &c, 0);
	virtq_signal_used(&f->dev, 0); /* used idx 4 -> 5, event still 2 */
	assert_int_equal(f->level, 0);
	drv_set_used_event(f, 0, 5);
	post_ping(f, 0, 2, FAKE_BUF);
	assert_true(virtq_pop(&f->dev, 0, &c));
	virtq_push(&f->dev, 0, &c, 0);
	virtq_signal_used(&f->dev, 0); /* 5 -> 6 passes 5 */
	assert_int_equal(f->level, 1);
	assert_int_equal(virtq_notify_needed(&f->dev, 0), 0); /* nothing new */
	fake_free(f);
}

/* avail_event: the device tells the driver which entry to notify at. */
static void test_event_idx_notify_suppression(void **unused)
{
	struct fake *f = running(~0ull);
	post_ping(f, 0, 0, FAKE_BUF);
	post_ping(f, 0, 2, FAKE_BUF);
	virtq_disable_notify(&f->dev, 0);
	assert_int_equal(serve(f, 0), 2);
	assert_int_equal(drv_avail_event(f, 0), 0); /* left behind while polling */
	assert_int_equal(drv_used_flags(f, 0), 0);  /* EVENT_IDX: flags unused */
	assert_false(virtq_enable_notify(&f->dev, 0));
	assert_int_equal(drv_avail_event(f, 0), 2);
	/* A buffer made available while notifications were off is reported. */
	virtq_disable_notify(&f->dev, 0);
	post_ping(f, 0, 4, FAKE_BUF);
	assert_true(virtq_enable_notify(&f->dev, 0));
	assert_int_equal(serve(f, 0), 1);
	assert_int_equal(drv_avail_event(f, 0), 3);
	fake_free(f);
}

static void test_flag_suppression_without_event_idx(void **unused)
{
	struct fake *f = running(NO_EVENT_IDX);
	assert_false(virtio_has_feature(&f->dev, VIRTIO_F_EVENT_IDX));
	virtq_disable_notify(&f->dev, 0);
	assert_int_equal(drv_used_flags(f, 0), VIRTQ_USED_F_NO_NOTIFY);
	post_ping(f, 0, 0, FAKE_BUF);
	assert_true(virtq_enable_notify(&f->dev, 0));
	assert_int_equal(drv_used_flags(f, 0), 0);
	assert_int_equal(drv_avail_event(f, 0), 0); /* never written */
	drv_set_avail_flags(f, 0, VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_int_equal(serve(f, 0), 1);
	virtq_signal_used(&f->dev, 0);
	assert_int_equal(f->level, 0);
	drv_set_avail_flags(f, 0, 0);
	virtq_signal_used(&f->dev, 0);
	assert_int_equal(f->level, 1);
	fake_free(f);
}

static void test_indirect(void **unused)
{
	struct fake *f = running(~0ull);
	uint64_t table = FAKE_BUF + 0x2000;
	memcpy(f->ram + FAKE_BUF, "pi", 2);
	memcpy(f->ram + FAKE_BUF + 0x10, "ng", 2);
	drv_desc_at(f, table, 0, FAKE_BUF, 2, VIRTQ_DESC_F_NEXT, 2); /* out of order on purpose */
	drv_desc_at(f, table, 2, FAKE_BUF + 0x10, 2, VIRTQ_DESC_F_NEXT, 1);
	drv_desc_at(f, table, 1, FAKE_BUF + 0x100, 64, VIRTQ_DESC_F_WRITE, 0);
	drv_desc(f, 0, 5, table, 3 * VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
	drv_post(f, 0, 5);
	struct virtq_chain c;
	assert_true(virtq_pop(&f->dev, 0, &c));
	assert_int_equal(c.head, 5);
	assert_int_equal(c.nread, 2);
	assert_int_equal(c.nwrite, 1);
	char req[4];
	assert_int_equal(virtq_chain_read(&f->dev, &c, 0, req, 4), 4);
	assert_memory_equal(req, "ping", 4);
	virtq_push(&f->dev, 0, &c, 4);
	uint32_t id, len;
	drv_used_elem(f, 0, 0, &id, &len);
	assert_int_equal(id, 5);
	assert_int_equal(len, 4);
	fake_free(f);
}

/* Copies cross buffer boundaries, skip empty descriptors and stop at the
 * end of the chain's part. */
static void test_copy_across_buffers(void **unused)
{
	struct fake *f = running(~0ull);
	drv_desc(f, 0, 0, FAKE_BUF, 3, VIRTQ_DESC_F_NEXT, 1);
	drv_desc(f, 0, 1, FAKE_BUF + 0x100, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	drv_desc(f, 0, 2, FAKE_BUF + 0x200, 2, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	drv_desc(f, 0, 3, FAKE_BUF + 0x300, 5, VIRTQ_DESC_F_WRITE, 0);
	drv_post(f, 0, 0);
	struct virtq_chain c;
	assert_true(virtq_pop(&f->dev, 0, &c));
	assert_int_equal(c.nread, 1);
	assert_int_equal(c.nwrite, 2); /* the empty one is not a range */
	assert_int_equal(c.write_len, 7);
	assert_int_equal(virtq_chain_write(&f->dev, &c, 1, "abcdefgh", 8), 6);
	assert_memory_equal(f->ram + FAKE_BUF + 0x200, "\0a", 2);
	assert_memory_equal(f->ram + FAKE_BUF + 0x300, "bcdef", 5);
	assert_int_equal(f->ram[FAKE_BUF + 0x305], 0);
	assert_int_equal(virtq_chain_write(&f->dev, &c, 7, "x", 1), 0);
	char buf[4];
	assert_int_equal(virtq_chain_read(&f->dev, &c, 3, buf, sizeof(buf)), 0);
	fake_free(f);
}

static void test_restart_adopts_used_ring(void **unused)
{
	struct fake *f = running(~0ull);
	post_ping(f, 0, 0, FAKE_BUF);
	post_ping(f, 0, 2, FAKE_BUF);
	post_ping(f, 0, 4, FAKE_BUF);
	struct virtq_chain c[3];
	for (int i = 0; i < 3; i++)
		assert_true(virtq_pop(&f->dev, 0, &c[i]));
	virtq_push(&f->dev, 0, &c[0], 4);
	virtq_push(&f->dev, 0, &c[1], 4);
	f->state.queue[0].used_idx--; /* died after used->idx, before the state */
	assert_true(virtio_mmio_restart(&f->dev));
	/* c[1] counted from the ring; c[2] given back empty, not replayed. */
	assert_int_equal(f->state.queue[0].used_idx, 3);
	assert_int_equal(f->state.queue[0].last_avail_idx, 3);
	assert_int_equal(drv_used_idx(f, 0), 3);
	uint32_t id, len;
	drv_used_elem(f, 0, 1, &id, &len);
	assert_int_equal(id, 2);
	assert_int_equal(len, 4);
	drv_used_elem(f, 0, 2, &id, &len);
	assert_int_equal(id, 4);
	assert_int_equal(len, 0);
	assert_false(virtq_pop(&f->dev, 0, &c[0]));
	post_ping(f, 0, 6, FAKE_BUF);
	assert_int_equal(serve(f, 0), 1);
	assert_int_equal(drv_used_idx(f, 0), 4);
	drv_used_elem(f, 0, 3, &id, &len);
	assert_int_equal(id, 6);
	fake_free(f);
}

/* ---- hostile rings ---- */

/* The driver wrote something bad into queue 0 and notified: the device
 * needs reset, says so with a config interrupt, processes nothing more
 * (a good chain on queue 1 included) until reset, and then works again. */
static void expect_broken(struct fake *f, const char *what)
{
	print_message("hostile ring: %s\n", what);
	struct virtq_chain c;
	assert_false(virtq_pop(&f->dev, 0, &c));
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(f->shadow[VIRTIO_SHADOW_STATUS] & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(f->level, 1);
	post_ping(f, 1, 0, FAKE_BUF);
	assert_false(virtq_pop(&f->dev, 1, &c));
	assert_int_equal(drv_used_idx(f, 1), 0);
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));
	memset(f->ram, 0, FAKE_BUF); /* the driver's reset frees its rings */
	linux_init(f, ~0ull);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
	post_ping(f, 0, 0, FAKE_BUF);
	assert_int_equal(serve(f, 0), 1);
	fake_free(f);
}

static void test_hostile_loop(void **unused)
{
	struct fake *f = running(~0ull);
	drv_desc(f, 0, 0, FAKE_BUF, 4, VIRTQ_DESC_F_NEXT, 1);
	drv_desc(f, 0, 1, FAKE_BUF, 4, VIRTQ_DESC_F_NEXT, 0);
	drv_post(f, 0, 0);
	expect_broken(f, "a chain looping 0 -> 1 -> 0");
}

static void test_hostile_self_loop(void **unused)
{
	struct fake *f = running(~0ull);
	/* Zero-length: no buffer limit would end this walk, only loop detection. */
	drv_desc(f, 0, 3, FAKE_BUF, 0, VIRTQ_DESC_F_NEXT, 3);
	drv_post(f, 0, 3);
	expect_broken(f, "an empty descriptor whose next is itself");
}

static void test_hostile_huge_length(void **unused)
{
	struct fake *f = running(~0ull);
	drv_desc(f, 0, 0, FAKE_BUF, 0xffffffff, VIRTQ_DESC_F_WRITE, 0);
	drv_post(f, 0, 0);
	expect_broken(f, "a 4 GiB buffer");
}

static void test_hostile_address_outside_ram(void **unused)
{
	struct fake *f = running(~0ull);
	drv_desc(f, 0, 0, FAKE_RAM_SIZE - 2, 4, 0, 0);
	drv_post(f, 0, 0);
	expect_broken(f, "a buffer straddling the end of RAM");
}

static void test_hostile_address_wrapping(void **unused)
{
	struct fake *f = running(~0ull);
	drv_desc(f, 0, 0, 0xfffffffffffffff0ull, 0x20, 0, 0);
	drv_post(f, 0, 0);
	expect_broken(f, "a buffer whose end wraps around");
}

static void test_hostile_next_out_of_range(void **unused)
{
	struct fake *f = running(~0ull);
	drv_desc(f, 0, 0, FAKE_BUF, 4, VIRTQ_DESC_F_NEXT, FAKE_NUM);
	drv_post(f, 0, 0);
	expect_broken(f, "next past the table");
}

static void test_hostile_head_out_of_range(void **unused)
{
	struct fake *f = running(~0ull);
	drv_post(f, 0, FAKE_NUM);
	expect_broken(f, "an avail entry past the table");
}

static void test_hostile_avail_runaway(void **unused)
{
	struct fake *f = running(~0ull);
	post_ping(f, 0, 0, FAKE_BUF);
	drv_set_avail_idx(f, 0, FAKE_NUM + 1);
	expect_broken(f, "avail idx more than the queue size ahead");
}

static void test_hostile_readable_after_writable(void **unused)
{
	struct fake *f = running(~0ull);
	drv_desc(f, 0, 0, FAKE_BUF, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	drv_desc(f, 0, 1, FAKE_BUF, 4, 0, 0);
	drv_post(f, 0, 0);
	expect_broken(f, "a readable buffer after a writable one");
}

static void test_hostile_indirect_self(void **unused)
{
	struct fake *f = running(~0ull);
	/* The indirect table is the descriptor table itself: its entry 0 is
	 * the indirect descriptor again. */
	drv_desc(f, 0, 0, q_desc(0), FAKE_NUM * VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
	drv_post(f, 0, 0);
	expect_broken(f, "an indirect table pointing at itself");
}

static void test_hostile_indirect_nested(void **unused)
{
	struct fake *f = running(~0ull);
	uint64_t t1 = FAKE_BUF + 0x2000, t2 = FAKE_BUF + 0x3000;
	drv_desc_at(f, t2, 0, FAKE_BUF, 4, 0, 0);
	drv_desc_at(f, t1, 0, t2, VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
	drv_desc(f, 0, 0, t1, VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
	drv_post(f, 0, 0);
	expect_broken(f, "an indirect table inside an indirect table");
}

static void test_hostile_indirect_loop(void **unused)
{
	struct fake *f = running(~0ull);
	uint64_t t = FAKE_BUF + 0x2000;
	drv_desc_at(f, t, 0, FAKE_BUF, 4, VIRTQ_DESC_F_NEXT, 1);
	drv_desc_at(f, t, 1, FAKE_BUF, 4, VIRTQ_DESC_F_NEXT, 0);
	drv_desc(f, 0, 0, t, 2 * VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
	drv_post(f, 0, 0);
	expect_broken(f, "a loop inside an indirect table");
}

static void test_hostile_indirect_sizes(void **unused)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags;
		const char *what;
	} cases[] = {
		{FAKE_BUF, 24, 0, "an indirect table not a multiple of 16"},
		{FAKE_BUF, 0, 0, "an empty indirect table"},
		{FAKE_BUF, (FAKE_NUM + 1) * VIRTQ_DESC_SIZE, 0, "more entries than the queue size"},
		{FAKE_RAM_SIZE - 16, 32, 0, "an indirect table past RAM"},
		{FAKE_BUF, 16, VIRTQ_DESC_F_NEXT, "INDIRECT with NEXT"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake *f = running(~0ull);
		drv_desc(f, 0, 0, cases[i].addr, cases[i].len, VIRTQ_DESC_F_INDIRECT | cases[i].flags, 1);
		drv_post(f, 0, 0);
		expect_broken(f, cases[i].what);
	}
}

static void test_hostile_indirect_not_at_head(void **unused)
{
	struct fake *f = running(~0ull);
	drv_desc_at(f, FAKE_BUF + 0x2000, 0, FAKE_BUF, 4, 0, 0);
	drv_desc(f, 0, 0, FAKE_BUF, 4, VIRTQ_DESC_F_NEXT, 1);
	drv_desc(f, 0, 1, FAKE_BUF + 0x2000, VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
	drv_post(f, 0, 0);
	expect_broken(f, "an indirect descriptor in the middle of a chain");
}

static void test_hostile_indirect_not_negotiated(void **unused)
{
	struct fake *f = running(NO_INDIRECT);
	drv_desc_at(f, FAKE_BUF + 0x2000, 0, FAKE_BUF, 4, 0, 0);
	drv_desc(f, 0, 0, FAKE_BUF + 0x2000, VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
	drv_post(f, 0, 0);
	expect_broken(f, "indirect without VIRTIO_F_INDIRECT_DESC");
}

/* A legal chain longer than VIRTQ_CHAIN_MAX buffers (through an indirect
 * table on a big queue) is refused, not overflowed. */
static void test_hostile_too_many_buffers(void **unused)
{
	struct fake *f = fake_new(); /* queue 0 256 entries big: a 200-entry indirect table is legal */
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1u << VIRTIO_F_INDIRECT_DESC);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					  VIRTIO_STATUS_FEATURES_OK);
	setup_queue(f, 0, 256);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	uint64_t t = FAKE_BUF + 0x4000;
	for (unsigned i = 0; i < 200; i++)
		drv_desc_at(f, t, i, FAKE_BUF + i, 1, i < 199 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	drv_desc(f, 0, 0, t, 200 * VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
	put_le16(f->ram + q_avail(0) + 4, 0);
	drv_set_avail_idx(f, 0, 1);
	struct virtq_chain c;
	assert_false(virtq_pop(&f->dev, 0, &c));
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_response),
		cmocka_unit_test(test_nothing_before_driver_ok),
		cmocka_unit_test(test_event_idx_used_suppression),
		cmocka_unit_test(test_event_idx_notify_suppression),
		cmocka_unit_test(test_flag_suppression_without_event_idx),
		cmocka_unit_test(test_indirect),
		cmocka_unit_test(test_copy_across_buffers),
		cmocka_unit_test(test_restart_adopts_used_ring),
		cmocka_unit_test(test_hostile_loop),
		cmocka_unit_test(test_hostile_self_loop),
		cmocka_unit_test(test_hostile_huge_length),
		cmocka_unit_test(test_hostile_address_outside_ram),
		cmocka_unit_test(test_hostile_address_wrapping),
		cmocka_unit_test(test_hostile_next_out_of_range),
		cmocka_unit_test(test_hostile_head_out_of_range),
		cmocka_unit_test(test_hostile_avail_runaway),
		cmocka_unit_test(test_hostile_readable_after_writable),
		cmocka_unit_test(test_hostile_indirect_self),
		cmocka_unit_test(test_hostile_indirect_nested),
		cmocka_unit_test(test_hostile_indirect_loop),
		cmocka_unit_test(test_hostile_indirect_sizes),
		cmocka_unit_test(test_hostile_indirect_not_at_head),
		cmocka_unit_test(test_hostile_indirect_not_negotiated),
		cmocka_unit_test(test_hostile_too_many_buffers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
