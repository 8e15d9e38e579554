/* test_virtio_console.c - hvc0 (dev-serial/virtio_console.c) against a fake
 * guest RAM and a fake driver that does what Linux's virtio_console does:
 * config space and resize, the output path and its deferred notification
 * on doorbell rings, typeahead held until receive
 * buffers are posted, and a restarted process resuming the state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "host.h"
#include "virtio_console.h"
#include "virtio_fake.h"

struct host {
	uint8_t out[8192];
	size_t out_len;
	int level;
	uint32_t shadow[VIRTIO_SHADOW_COUNT];
};

static void host_output(void *opaque, const void *buf, size_t len)
{
	struct host *h = opaque;
	assert_true(h->out_len + len <= sizeof(h->out));
	memcpy(h->out + h->out_len, buf, len);
	h->out_len += len;
}

static void host_irq(void *opaque, int level)
{
	((struct host *)opaque)->level = level;
}

static void host_publish(void *opaque, enum virtio_mmio_shadow which, uint32_t value)
{
	((struct host *)opaque)->shadow[which] = value;
}

struct rig {
	struct fake *f; /* guest RAM, rings and the driver's register accesses */
	struct host host;
	struct virtio_console con;
	struct virtio_console_state state; /* what dev-serial keeps in its state page */
};

/* The fake driver's register accesses go to f->dev: make it the console's
 * transport (a virtio_dev is a description; the state is behind its
 * pointer, shared). */
static void attach(struct rig *r, bool resumed, uint16_t cols, uint16_t rows)
{
	r->con.io = (struct virtio_console_io){.opaque = &r->host, .output = host_output,
					       .irq = host_irq, .publish_shadow = host_publish};
	virtio_console_attach(&r->con, &r->state, &r->f->mem, resumed, cols, rows);
	r->f->dev = r->con.vdev;
}

static struct rig *rig_new(uint16_t cols, uint16_t rows)
{
	struct rig *r = calloc(1, sizeof(*r));
	r->f = fake_new();
	attach(r, false, cols, rows);
	return r;
}

static void rig_free(struct rig *r)
{
	fake_free(r->f);
	free(r);
}

static uint32_t int_status(struct rig *r)
{
	return rd(r->f, VIRTIO_MMIO_INTERRUPT_STATUS);
}

static void ack_all(struct rig *r)
{
	wr(r->f, VIRTIO_MMIO_INTERRUPT_ACK, int_status(r));
}

static uint64_t config(struct rig *r, uint32_t offset, unsigned size)
{
	return virtio_mmio_read(&r->f->dev, VIRTIO_MMIO_CONFIG + offset, size);
}

/* Post a receive buffer of len bytes at gpa as descriptor i, and notify. */
static void post_rx(struct rig *r, unsigned i, uint64_t gpa, uint32_t len)
{
	drv_desc(r->f, VIRTIO_CONSOLE_RX, i, gpa, len, VIRTQ_DESC_F_WRITE, 0);
	drv_post(r->f, VIRTIO_CONSOLE_RX, (uint16_t)i);
	wr(r->f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_RX);
}

/* The driver transmits len bytes from gpa as descriptor i, and notifies. */
static void transmit(struct rig *r, unsigned i, uint64_t gpa, uint32_t len)
{
	drv_desc(r->f, VIRTIO_CONSOLE_TX, i, gpa, len, 0, 0);
	drv_set_used_event(r->f, VIRTIO_CONSOLE_TX, drv_used_idx(r->f, VIRTIO_CONSOLE_TX));
	drv_post(r->f, VIRTIO_CONSOLE_TX, (uint16_t)i);
	wr(r->f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_TX);
}

/* What Linux does around the device's probe of its port
 * (virtio_console.h): receive buffer 0 posted at probe time; a transmit;
 * the device completes buffer 0 with zero bytes; the open tty reads it and
 * posts it again, without a notify.  The device notices at the next
 * transmit (or input). */
static void open_port(struct rig *r)
{
	post_rx(r, 0, FAKE_BUF + 0x8000, 64);
	uint16_t used = drv_used_idx(r->f, VIRTIO_CONSOLE_RX);
	transmit(r, 7, FAKE_BUF + 0x9000, 1);
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_RX), (uint16_t)(used + 1));
	uint32_t id, len;
	drv_used_elem(r->f, VIRTIO_CONSOLE_RX, used, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	assert_int_equal(r->state.port_open, 0);
	drv_post(r->f, VIRTIO_CONSOLE_RX, 0);
	transmit(r, 7, FAKE_BUF + 0x9000, 1);
	assert_int_equal(r->state.port_open, 1);
	ack_all(r);
	r->host.out_len = 0;
}

static void test_config_space_and_resize(void **unused)
{
	struct rig *r = rig_new(80, 25);
	assert_int_equal(rd(r->f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_CONSOLE_DEVICE_ID);
	assert_int_equal(config(r, 0, 2), 80);
	assert_int_equal(config(r, 2, 2), 25);
	assert_int_equal(config(r, 0, 4), 25u << 16 | 80);
	assert_int_equal(config(r, 4, 4), 0); /* max_nr_ports: no MULTIPORT */
	assert_int_equal(config(r, 12, 1), 0); /* past the config space */

	/* F_SIZE offered; after DRIVER_OK one configuration interrupt
	 * announces the size. */
	assert_int_equal(int_status(r), 0);
	uint32_t status = linux_init(r->f, ~0ull);
	assert_true(status & VIRTIO_STATUS_FEATURES_OK);
	assert_true(virtio_has_feature(&r->f->dev, VIRTIO_CONSOLE_F_SIZE));
	assert_int_equal(int_status(r), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(r->host.level, 1);
	ack_all(r);
	assert_int_equal(r->host.level, 0);

	/* A resize: new values, a new generation, one interrupt. */
	uint32_t gen = rd(r->f, VIRTIO_MMIO_CONFIG_GENERATION);
	virtio_console_resize(&r->con, 132, 43);
	assert_int_equal(config(r, 0, 2), 132);
	assert_int_equal(config(r, 2, 2), 43);
	assert_int_not_equal(rd(r->f, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	assert_int_equal(r->host.shadow[VIRTIO_SHADOW_CONFIG_GENERATION],
			 rd(r->f, VIRTIO_MMIO_CONFIG_GENERATION));
	assert_int_equal(int_status(r), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(r->host.shadow[VIRTIO_SHADOW_INTERRUPT_STATUS], VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(r->host.level, 1);
	ack_all(r);

	/* The same size again, or an unknown one (0), changes nothing. */
	virtio_console_resize(&r->con, 132, 43);
	virtio_console_resize(&r->con, 0, 0);
	assert_int_equal(int_status(r), 0);
	assert_int_equal(config(r, 0, 2), 132);
	rig_free(r);
}

static void test_output_straight_to_the_host(void **unused)
{
	struct rig *r = rig_new(80, 25);
	linux_init(r->f, ~0ull);
	ack_all(r);
	memcpy(r->f->ram + FAKE_BUF, "hello, ", 7);
	memcpy(r->f->ram + FAKE_BUF + 0x100, "world\r\n", 7);
	drv_desc(r->f, VIRTIO_CONSOLE_TX, 0, FAKE_BUF, 7, VIRTQ_DESC_F_NEXT, 1);
	drv_desc(r->f, VIRTIO_CONSOLE_TX, 1, FAKE_BUF + 0x100, 7, 0, 0);
	drv_post(r->f, VIRTIO_CONSOLE_TX, 0);
	wr(r->f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_TX);

	assert_int_equal(r->host.out_len, 14);
	assert_memory_equal(r->host.out, "hello, world\r\n", 14);
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_TX), 1);
	uint32_t id, len;
	drv_used_elem(r->f, VIRTIO_CONSOLE_TX, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0); /* nothing written into a transmit buffer */
	assert_int_equal(int_status(r), VIRTIO_MMIO_INT_VRING);
	ack_all(r);

	/* Bytes unaltered (all 256 values). */
	for (unsigned i = 0; i < 256; i++)
		r->f->ram[FAKE_BUF + 0x200 + i] = (uint8_t)i;
	drv_desc(r->f, VIRTIO_CONSOLE_TX, 2, FAKE_BUF + 0x200, 256, 0, 0);
	drv_set_used_event(r->f, VIRTIO_CONSOLE_TX, 1); /* EVENT_IDX: interrupt for the next one */
	drv_post(r->f, VIRTIO_CONSOLE_TX, 2);
	wr(r->f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_TX);
	assert_int_equal(r->host.out_len, 14 + 256);
	assert_memory_equal(r->host.out + 14, r->f->ram + FAKE_BUF + 0x200, 256);
	assert_int_equal(int_status(r), VIRTIO_MMIO_INT_VRING);
	rig_free(r);
}

/* Linux's hvc console through the doorbell: each transmit buffer, then a
 * spin on the used ring that takes it (used_event moves past it).  Its
 * used-buffer notification is decided at the next ring or once the rings
 * are quiet: none is due then.  A driver that waits instead (used_event
 * left at the buffer) gets its interrupt at the next ring, or when quiet. */
static void test_transmit_on_rings_defers_the_notification(void **unused)
{
	struct rig *r = rig_new(80, 25);
	linux_init(r->f, ~0ull);
	/* The first notification decision signals (nothing to compare with). */
	transmit(r, 7, FAKE_BUF + 0x900, 1);
	ack_all(r);
	r->host.out_len = 0;
	for (unsigned i = 0; i < 3; i++) {
		memcpy(r->f->ram + FAKE_BUF + 0x100 * i, "spin", 4);
		drv_desc(r->f, VIRTIO_CONSOLE_TX, i, FAKE_BUF + 0x100 * i, 4, 0, 0);
		drv_set_used_event(r->f, VIRTIO_CONSOLE_TX, drv_used_idx(r->f, VIRTIO_CONSOLE_TX));
		drv_post(r->f, VIRTIO_CONSOLE_TX, (uint16_t)i);
		virtio_console_doorbell(&r->con, 1u << VIRTIO_CONSOLE_TX);
		assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_TX), i + 2); /* used at once */
		assert_int_equal(int_status(r), 0);                           /* not signalled yet */
		/* The spin takes it: "notify me at the next one". */
		drv_set_used_event(r->f, VIRTIO_CONSOLE_TX, (uint16_t)(i + 2));
	}
	virtio_console_doorbell_quiet(&r->con);
	assert_int_equal(int_status(r), 0);
	assert_int_equal(r->host.level, 0);
	assert_int_equal(r->host.out_len, 12);

	/* A driver waiting for the interrupt: due at the next ring... */
	drv_desc(r->f, VIRTIO_CONSOLE_TX, 3, FAKE_BUF, 4, 0, 0);
	drv_post(r->f, VIRTIO_CONSOLE_TX, 3);
	virtio_console_doorbell(&r->con, 1u << VIRTIO_CONSOLE_TX);
	assert_int_equal(int_status(r), 0);
	virtio_console_doorbell(&r->con, 1u << VIRTIO_CONSOLE_RX); /* any ring */
	assert_int_equal(int_status(r), VIRTIO_MMIO_INT_VRING);
	assert_int_equal(r->host.level, 1);
	ack_all(r);
	/* ...or once the rings are quiet. */
	drv_set_used_event(r->f, VIRTIO_CONSOLE_TX, 5);
	drv_desc(r->f, VIRTIO_CONSOLE_TX, 4, FAKE_BUF, 4, 0, 0);
	drv_post(r->f, VIRTIO_CONSOLE_TX, 4);
	virtio_console_doorbell(&r->con, 1u << VIRTIO_CONSOLE_TX);
	assert_int_equal(int_status(r), 0);
	virtio_console_doorbell_quiet(&r->con);
	assert_int_equal(int_status(r), VIRTIO_MMIO_INT_VRING);
	/* A notify by message (no doorbell on the host) signals at once. */
	ack_all(r);
	transmit(r, 5, FAKE_BUF, 4);
	assert_int_equal(int_status(r), VIRTIO_MMIO_INT_VRING);
	rig_free(r);
}

/* The port is open once a probe's buffer comes back, and the size is
 * announced again then; a probe the driver threw away (before its port was
 * listed) is followed by another, not before VIRTIO_CONSOLE_PROBE_NS. */
static void test_port_probe(void **unused)
{
	struct rig *r = rig_new(80, 25);
	linux_init(r->f, ~0ull);
	ack_all(r);
	post_rx(r, 0, FAKE_BUF, 64);
	post_rx(r, 1, FAKE_BUF + 0x100, 64);
	post_rx(r, 2, FAKE_BUF + 0x200, 64);
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_RX), 0); /* no probe before a transmit */
	transmit(r, 0, FAKE_BUF + 0x1000, 1);
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_RX), 1);
	transmit(r, 0, FAKE_BUF + 0x1000, 1); /* too soon for another */
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_RX), 1);
	host_sleep_ms(VIRTIO_CONSOLE_PROBE_NS / 1000000 + 5);
	transmit(r, 0, FAKE_BUF + 0x1000, 1); /* the first was flushed: again */
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_RX), 2);
	assert_int_equal(r->state.port_open, 0);
	ack_all(r);
	drv_post(r->f, VIRTIO_CONSOLE_RX, 1); /* the second comes back */
	assert_int_equal(virtio_console_input(&r->con, (const uint8_t *)"k", 1), 1);
	assert_int_equal(r->state.port_open, 1);
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_RX), 3); /* "k" delivered */
	assert_int_equal(r->f->ram[FAKE_BUF + 0x200], 'k');
	assert_int_equal(int_status(r), VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
	rig_free(r);
}

static void test_typeahead_held_until_buffers(void **unused)
{
	struct rig *r = rig_new(80, 25);
	/* Typed before the driver exists: held, nothing lost. */
	assert_int_equal(virtio_console_input(&r->con, (const uint8_t *)"uname -a\n", 9), 9);
	assert_int_equal(virtio_console_input_space(&r->con), VIRTIO_CONSOLE_INPUT_SIZE - 9);
	linux_init(r->f, ~0ull);
	ack_all(r);
	assert_int_equal(virtio_console_input_space(&r->con), VIRTIO_CONSOLE_INPUT_SIZE - 9);
	open_port(r);
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_RX), 2); /* the probe and... */
	uint32_t id, len;
	drv_used_elem(r->f, VIRTIO_CONSOLE_RX, 1, &id, &len);    /* ...its buffer, filled */
	assert_int_equal(len, 9);
	assert_memory_equal(r->f->ram + FAKE_BUF + 0x8000, "uname -a\n", 9);

	/* A receive buffer smaller than what is held: filled, the rest waits. */
	virtio_console_input(&r->con, (const uint8_t *)"uname -a\n", 9);
	post_rx(r, 0, FAKE_BUF, 4);
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_RX), 3);
	drv_used_elem(r->f, VIRTIO_CONSOLE_RX, 2, &id, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(r->f->ram + FAKE_BUF, "unam", 4);
	assert_int_equal(int_status(r), VIRTIO_MMIO_INT_VRING);
	ack_all(r);
	post_rx(r, 1, FAKE_BUF + 0x1000, 64);
	drv_used_elem(r->f, VIRTIO_CONSOLE_RX, 3, &id, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(r->f->ram + FAKE_BUF + 0x1000, "e -a\n", 5);
	assert_int_equal(virtio_console_input_space(&r->con), VIRTIO_CONSOLE_INPUT_SIZE);

	/* A posted buffer waits for input, which then goes at once. */
	post_rx(r, 2, FAKE_BUF + 0x2000, 64);
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_RX), 4);
	virtio_console_input(&r->con, (const uint8_t *)"x", 1);
	assert_int_equal(drv_used_idx(r->f, VIRTIO_CONSOLE_RX), 5);
	assert_int_equal(r->f->ram[FAKE_BUF + 0x2000], 'x');
	rig_free(r);
}

/* Bounded: a full queue takes nothing more (the reader stops reading), and
 * what it holds comes out in order across the ring's wrap. */
static void test_typeahead_bounded_and_in_order(void **unused)
{
	struct rig *r = rig_new(80, 25);
	static uint8_t in[VIRTIO_CONSOLE_INPUT_SIZE + 100];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7);
	assert_int_equal(virtio_console_input(&r->con, in, sizeof(in)), VIRTIO_CONSOLE_INPUT_SIZE);
	assert_int_equal(virtio_console_input_space(&r->con), 0);
	assert_int_equal(virtio_console_input(&r->con, in, 1), 0);

	linux_init(r->f, ~0ull);
	/* The port opens: the probe's buffer (64 bytes) comes back filled. */
	open_port(r);
	post_rx(r, 0, FAKE_BUF, 1000 - 64); /* room for 1000 more */
	assert_int_equal(virtio_console_input(&r->con, in + VIRTIO_CONSOLE_INPUT_SIZE, 100), 100);
	post_rx(r, 1, FAKE_BUF + 0x1000, 0x2000);
	uint32_t id, len;
	drv_used_elem(r->f, VIRTIO_CONSOLE_RX, 3, &id, &len);
	assert_int_equal(len, VIRTIO_CONSOLE_INPUT_SIZE + 100 - 1000);
	assert_memory_equal(r->f->ram + FAKE_BUF + 0x8000, in, 64);
	assert_memory_equal(r->f->ram + FAKE_BUF, in + 64, 1000 - 64);
	assert_memory_equal(r->f->ram + FAKE_BUF + 0x1000, in + 1000, len);
	rig_free(r);
}

/* A restarted dev-serial: the driver keeps running, held input and the
 * size are kept; a torn state is not trusted. */
static void test_state_resume(void **unused)
{
	struct rig *r = rig_new(80, 25);
	linux_init(r->f, ~0ull);
	ack_all(r);
	open_port(r);
	virtio_console_input(&r->con, (const uint8_t *)"xy", 2); /* into the one buffer posted */
	ack_all(r);
	virtio_console_input(&r->con, (const uint8_t *)"ls\n", 3); /* no buffer: held */
	assert_int_equal(virtio_console_input_space(&r->con), VIRTIO_CONSOLE_INPUT_SIZE - 3);

	memset(&r->con, 0x5a, sizeof(r->con)); /* the process is gone */
	attach(r, true, 100, 40); /* the terminal changed meanwhile */
	assert_true(rd(r->f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK);
	assert_false(rd(r->f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(config(r, 0, 2), 100);
	/* The size changed; a transmit notification the dead process may have
	 * deferred is given. */
	assert_int_equal(int_status(r), VIRTIO_MMIO_INT_CONFIG | VIRTIO_MMIO_INT_VRING);
	ack_all(r);
	post_rx(r, 0, FAKE_BUF, 64);
	assert_memory_equal(r->f->ram + FAKE_BUF, "ls\n", 3);

	/* Torn: an input length beyond the ring.  Started afresh, and the
	 * running driver is told to reset the device. */
	r->state.in_len = VIRTIO_CONSOLE_INPUT_SIZE + 1;
	assert_false(virtio_console_attach(&r->con, &r->state, &r->f->mem, true, 80, 25));
	r->f->dev = r->con.vdev;
	assert_true(rd(r->f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(virtio_console_input_space(&r->con), VIRTIO_CONSOLE_INPUT_SIZE);
	/* The driver's reset recovers. */
	assert_true(linux_init(r->f, ~0ull) & VIRTIO_STATUS_FEATURES_OK);
	assert_false(rd(r->f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	rig_free(r);
}

/* The machine reset: the transport starts over, typed input stays. */
static void test_machine_reset_keeps_input(void **unused)
{
	struct rig *r = rig_new(80, 25);
	linux_init(r->f, ~0ull);
	virtio_console_input(&r->con, (const uint8_t *)"ab", 2);
	virtio_console_machine_reset(&r->con);
	assert_int_equal(rd(r->f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(r->host.level, 0);
	assert_int_equal(virtio_console_input_space(&r->con), VIRTIO_CONSOLE_INPUT_SIZE - 2);
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_space_and_resize),
		cmocka_unit_test(test_output_straight_to_the_host),
		cmocka_unit_test(test_transmit_on_rings_defers_the_notification),
		cmocka_unit_test(test_port_probe),
		cmocka_unit_test(test_typeahead_held_until_buffers),
		cmocka_unit_test(test_typeahead_bounded_and_in_order),
		cmocka_unit_test(test_state_resume),
		cmocka_unit_test(test_machine_reset_keeps_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
