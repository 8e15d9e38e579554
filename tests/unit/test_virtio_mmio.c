/* test_virtio_mmio.c - the virtio-mmio transport (devlib/virtio/virtio_mmio.h):
 * identification and shadows, Linux's init sequence and feature
 * negotiation, queue setup checks, reset, interrupts and the ACK race,
 * config space, HELLO registers, and restart from valid and torn states. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "host.h"
#include "virtio_fake.h"

#define ALL_FEATURES (~0ull)
#define STATUS_UP                                                               \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | \
	 VIRTIO_STATUS_DRIVER_OK)

static void test_identification_and_shadows(void **unused)
{
	struct fake *f = fake_new();
	assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(f, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), 3);
	assert_int_equal(rd(f, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	/* Every shadow equals what a round trip would read. */
	static const uint16_t reg[VIRTIO_SHADOW_COUNT] = {
		VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_VERSION, VIRTIO_MMIO_DEVICE_ID,
		VIRTIO_MMIO_VENDOR_ID, VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_STATUS,
		VIRTIO_MMIO_CONFIG_GENERATION};
	linux_init(f, ALL_FEATURES);
	virtio_mmio_config_changed(&f->dev);
	for (unsigned i = 0; i < VIRTIO_SHADOW_COUNT; i++)
		assert_int_equal(f->shadow[i], rd(f, reg[i]));
	assert_int_equal(f->shadow[VIRTIO_SHADOW_STATUS], STATUS_UP);
	assert_int_equal(f->shadow[VIRTIO_SHADOW_INTERRUPT_STATUS], VIRTIO_MMIO_INT_CONFIG);
	fake_free(f);
}

static void test_hello_regs(void **unused)
{
	struct ipc_reg regs[VIRTIO_MMIO_HELLO_REGS];
	assert_int_equal(virtio_mmio_hello_regs(0xd0000200, 4, regs), VIRTIO_MMIO_HELLO_REGS);
	assert_int_equal(regs[VIRTIO_SHADOW_INTERRUPT_STATUS].addr, 0xd0000260);
	assert_int_equal(regs[VIRTIO_SHADOW_INTERRUPT_STATUS].slot, 4 + VIRTIO_SHADOW_INTERRUPT_STATUS);
	assert_int_equal(regs[VIRTIO_SHADOW_STATUS].addr, 0xd0000270);
	assert_int_equal(regs[VIRTIO_SHADOW_CONFIG_GENERATION].addr, 0xd00002fc);
	for (unsigned i = 0; i < VIRTIO_SHADOW_COUNT; i++) {
		assert_int_equal(regs[i].flags, IPC_REG_SHADOW);
		assert_int_equal(regs[i].size, 4);
		assert_int_equal(regs[i].space, IPC_SPACE_MMIO);
	}
	assert_int_equal(regs[VIRTIO_SHADOW_COUNT].addr, 0xd0000250);
	assert_int_equal(regs[VIRTIO_SHADOW_COUNT].flags, IPC_REG_STREAM);
	/* QueueNotify as a doorbell where the host has shared-memory waits;
	 * the other registers stay as they were. */
	struct ipc_reg before[VIRTIO_MMIO_HELLO_REGS];
	memcpy(before, regs, sizeof(regs));
	virtio_mmio_hello_doorbell(regs, 2, true);
	struct ipc_reg *notify = &regs[VIRTIO_SHADOW_COUNT];
	if (host_shared_wait_supported()) {
		assert_int_equal(notify->flags, IPC_REG_DOORBELL | IPC_REG_DOORBELL_WAIT);
		assert_int_equal(notify->slot, 2);
	} else {
		assert_int_equal(notify->flags, IPC_REG_STREAM);
	}
	assert_int_equal(notify->addr, 0xd0000250);
	notify->flags = before[VIRTIO_SHADOW_COUNT].flags;
	notify->slot = before[VIRTIO_SHADOW_COUNT].slot;
	assert_memory_equal(before, regs, sizeof(regs));
	virtio_mmio_hello_doorbell(regs, 0, false);
	if (host_shared_wait_supported())
		assert_int_equal(notify->flags, IPC_REG_DOORBELL);
}

static void test_linux_init_negotiates(void **unused)
{
	struct fake *f = fake_new();
	uint32_t status = linux_init(f, ALL_FEATURES);
	assert_true(status & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), STATUS_UP);
	assert_int_equal(f->driver_oks, 1);
	/* DRIVER_OK looks at every live queue: a doorbell may have come first. */
	assert_int_equal(f->notified[0], 1);
	assert_int_equal(f->notified[1], 1);
	assert_true(virtio_has_feature(&f->dev, VIRTIO_F_VERSION_1));
	assert_true(virtio_has_feature(&f->dev, VIRTIO_F_EVENT_IDX));
	assert_true(virtio_has_feature(&f->dev, VIRTIO_F_INDIRECT_DESC));
	assert_true(virtio_has_feature(&f->dev, 0));
	assert_false(virtio_has_feature(&f->dev, 1)); /* never offered */
	assert_int_equal(f->state.driver_features, VIRTIO_TRANSPORT_FEATURES | FAKE_DEVICE_FEATURE);
	/* Offered: both halves, and nothing past them. */
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 1);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 0x30000001);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	/* Queues: sizes and readiness read back; an absent queue reads 0. */
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), FAKE_QUEUE_MAX);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(f->state.queue[1].desc, q_desc(1));
	assert_int_equal(f->state.queue[1].avail, q_avail(1));
	assert_int_equal(f->state.queue[1].used, q_used(1));
	wr(f, VIRTIO_MMIO_QUEUE_SEL, FAKE_QUEUES);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	/* Features are frozen after FEATURES_OK. */
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_true(virtio_has_feature(&f->dev, VIRTIO_F_EVENT_IDX));
	/* A ready queue's configuration is frozen too. */
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x8000);
	assert_int_equal(f->state.queue[0].num, FAKE_NUM);
	assert_int_equal(f->state.queue[0].desc, q_desc(0));
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));
	fake_free(f);
}

static void test_legacy_driver_fails_features_ok(void **unused)
{
	struct fake *f = fake_new();
	uint32_t status = linux_init(f, ALL_FEATURES & ~(1ull << VIRTIO_F_VERSION_1));
	assert_false(status & VIRTIO_STATUS_FEATURES_OK);
	/* DRIVER_OK cannot follow a failed negotiation. */
	wr(f, VIRTIO_MMIO_STATUS, status | VIRTIO_STATUS_DRIVER_OK);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(f->driver_oks, 0);
	/* Until QueueReady, a queue's size is just what the driver wrote (the
	 * fuzzer found a valid state refused for this). */
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 100000);
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));
	/* A queue made ready without FEATURES_OK breaks the device. */
	setup_queue(f, 0, FAKE_NUM);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));
	fake_free(f);
}

static void test_unoffered_feature_fails_features_ok(void **unused)
{
	struct fake *f = fake_new();
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 2); /* not offered */
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					  VIRTIO_STATUS_FEATURES_OK);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	/* The driver may try again with an acceptable set. */
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					  VIRTIO_STATUS_FEATURES_OK);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	fake_free(f);
}

static void expect_bad_queue_setup(uint32_t num, uint64_t desc, const char *what)
{
	struct fake *f = fake_new();
	linux_init(f, ALL_FEATURES);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					  VIRTIO_STATUS_FEATURES_OK);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, num);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)q_avail(0));
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)q_used(0));
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	print_message("bad queue setup: %s\n", what);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(f->shadow[VIRTIO_SHADOW_STATUS] & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));
	/* Reset recovers. */
	linux_init(f, ALL_FEATURES);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), STATUS_UP);
	fake_free(f);
}

static void test_bad_queue_setups(void **unused)
{
	expect_bad_queue_setup(0, q_desc(0), "size 0");
	expect_bad_queue_setup(6, q_desc(0), "size not a power of two");
	expect_bad_queue_setup(FAKE_QUEUE_MAX * 2, q_desc(0), "size above QueueNumMax");
	expect_bad_queue_setup(FAKE_NUM, q_desc(0) + 8, "misaligned descriptor table");
	expect_bad_queue_setup(FAKE_NUM, FAKE_RAM_SIZE - 16, "descriptor table past RAM");
	expect_bad_queue_setup(FAKE_NUM, 0xfffffffffffffff0ull, "descriptor table wrapping");
}

static void test_reset(void **unused)
{
	struct fake *f = fake_new();
	linux_init(f, ALL_FEATURES);
	virtio_mmio_interrupt(&f->dev, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->level, 1);
	uint32_t generation = rd(f, VIRTIO_MMIO_CONFIG_GENERATION);
	int resets = f->resets; /* linux_init's own */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->resets, resets + 1);
	assert_int_equal(f->level, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(f->shadow[VIRTIO_SHADOW_STATUS], 0);
	assert_int_equal(f->shadow[VIRTIO_SHADOW_INTERRUPT_STATUS], 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), generation);
	assert_int_equal(f->state.driver_features, 0);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_false(virtio_has_feature(&f->dev, VIRTIO_F_VERSION_1));
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));
	fake_free(f);
}

static void test_queue_notify(void **unused)
{
	struct fake *f = fake_new();
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* before DRIVER_OK: nothing */
	assert_int_equal(f->notified[0], 0);
	linux_init(f, ALL_FEATURES);
	memset(f->notified, 0, sizeof(f->notified)); /* DRIVER_OK's look at each queue */
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, FAKE_QUEUES); /* no such queue */
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffff);
	assert_int_equal(f->notified[0], 0);
	assert_int_equal(f->notified[1], 1);
	virtio_mmio_needs_reset(&f->dev, "test");
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 1); /* a broken device processes nothing */
	assert_int_equal(f->notified[1], 1);
	fake_free(f);
}

/* The level follows InterruptStatus; the ACK clears what it names. */
static void test_interrupt_level_and_ack(void **unused)
{
	struct fake *f = fake_new();
	linux_init(f, ALL_FEATURES);
	virtio_mmio_interrupt(&f->dev, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->level, 1);
	assert_int_equal(f->shadow[VIRTIO_SHADOW_INTERRUPT_STATUS], VIRTIO_MMIO_INT_VRING);
	virtio_mmio_config_changed(&f->dev);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 3);
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->level, 1);
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->level, 0);
	assert_int_equal(f->shadow[VIRTIO_SHADOW_INTERRUPT_STATUS], 0);
	assert_int_equal(f->rises, 1);
	fake_free(f);
}

/* The guest read InterruptStatus (1) from the shadow and its ACK is in
 * flight when the device signals a second used buffer: the ACK must not
 * swallow it. */
static void test_ack_in_flight_loses_nothing(void **unused)
{
	struct fake *f = fake_new();
	linux_init(f, ALL_FEATURES);
	virtio_mmio_interrupt(&f->dev, VIRTIO_MMIO_INT_VRING);
	uint32_t seen = f->shadow[VIRTIO_SHADOW_INTERRUPT_STATUS]; /* the guest's read */
	virtio_mmio_interrupt(&f->dev, VIRTIO_MMIO_INT_VRING); /* B2, ACK still in flight */
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, seen);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->level, 1); /* the guest takes one more interrupt */
	assert_int_equal(f->dev.acks_resignalled, 1); /* it waited for the ACK */
	/* That one acknowledged with nothing new: the line goes down. */
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, f->shadow[VIRTIO_SHADOW_INTERRUPT_STATUS]);
	assert_int_equal(f->level, 0);
	/* A signal with nothing pending sets the bit without a second round. */
	virtio_mmio_interrupt(&f->dev, VIRTIO_MMIO_INT_VRING);
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->level, 0);
	assert_int_equal(f->dev.acks_resignalled, 1);
	fake_free(f);
}

static void test_config_space(void **unused)
{
	struct fake *f = fake_new();
	memcpy(f->config, "\x50\x00\x18\x00", 4); /* cols 80, rows 24 */
	assert_int_equal(virtio_mmio_read(&f->dev, VIRTIO_MMIO_CONFIG, 2), 80);
	assert_int_equal(virtio_mmio_read(&f->dev, VIRTIO_MMIO_CONFIG + 2, 2), 24);
	assert_int_equal(virtio_mmio_read(&f->dev, VIRTIO_MMIO_CONFIG, 4), 0x180050);
	/* Past the device's config space: 0, and writes go nowhere. */
	assert_int_equal(virtio_mmio_read(&f->dev, VIRTIO_MMIO_CONFIG + 10, 4), 0);
	assert_int_equal(virtio_mmio_read(&f->dev, VIRTIO_MMIO_WINDOW_SIZE - 4, 8), 0);
	virtio_mmio_write(&f->dev, VIRTIO_MMIO_CONFIG + 4, 4, 0x12345678);
	assert_int_equal(virtio_mmio_read(&f->dev, VIRTIO_MMIO_CONFIG + 4, 4), 0x12345678);
	virtio_mmio_write(&f->dev, VIRTIO_MMIO_CONFIG + 10, 4, 0xffffffff);
	assert_int_equal(f->config[10], 0);
	/* A change before DRIVER_OK bumps the generation, no interrupt. */
	virtio_mmio_config_changed(&f->dev);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	assert_int_equal(f->level, 0);
	linux_init(f, ALL_FEATURES);
	virtio_mmio_config_changed(&f->dev);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), 2);
	assert_int_equal(f->shadow[VIRTIO_SHADOW_CONFIG_GENERATION], 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(f->level, 1);
	fake_free(f);
}

static void test_register_access_sizes(void **unused)
{
	struct fake *f = fake_new();
	assert_int_equal(virtio_mmio_read(&f->dev, VIRTIO_MMIO_MAGIC_VALUE, 2), 0);
	assert_int_equal(virtio_mmio_read(&f->dev, VIRTIO_MMIO_MAGIC_VALUE, 8), 0);
	assert_int_equal(virtio_mmio_read(&f->dev, VIRTIO_MMIO_MAGIC_VALUE + 1, 4), 0);
	assert_int_equal(virtio_mmio_read(&f->dev, VIRTIO_MMIO_WINDOW_SIZE, 4), 0);
	virtio_mmio_write(&f->dev, VIRTIO_MMIO_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	virtio_mmio_write(&f->dev, 0xffffffffffffffffull, 4, 1);
	/* The device's bit is its own: a driver cannot set or clear it. */
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_mmio_needs_reset(&f->dev, "test");
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(rd(f, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
	fake_free(f);
}

/* A doorbell's bits notify the live queues they name, nothing else; a
 * ring that overtook the writes making a queue live is made good when it
 * becomes live. */
static void test_doorbell(void **unused)
{
	struct fake *f = fake_new();
	virtio_mmio_doorbell(&f->dev, 0x3); /* before DRIVER_OK: nothing */
	assert_int_equal(f->notified[0] + f->notified[1], 0);
	linux_init(f, ALL_FEATURES);
	memset(f->notified, 0, sizeof(f->notified));
	virtio_mmio_doorbell(&f->dev, 1u << 1);
	assert_int_equal(f->notified[0], 0);
	assert_int_equal(f->notified[1], 1);
	virtio_mmio_doorbell(&f->dev, 0xffffffffu); /* queues that do not exist: ignored */
	assert_int_equal(f->notified[0], 1);
	assert_int_equal(f->notified[1], 2);
	/* The driver takes queue 1 back and sets it up again after DRIVER_OK:
	 * made ready, it is looked at. */
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 0);
	virtio_mmio_doorbell(&f->dev, 1u << 1); /* not ready: nothing */
	assert_int_equal(f->notified[1], 2);
	setup_queue(f, 1, FAKE_NUM);
	assert_int_equal(f->notified[1], 3);
	virtio_mmio_needs_reset(&f->dev, "test");
	virtio_mmio_doorbell(&f->dev, 0x3); /* a broken device processes nothing */
	assert_int_equal(f->notified[0], 1);
	assert_int_equal(f->notified[1], 3);
	fake_free(f);
}

/* ---- restart ---- */

static void test_restart_resumes(void **unused)
{
	struct fake *f = fake_new();
	linux_init(f, ALL_FEATURES);
	virtio_mmio_interrupt(&f->dev, VIRTIO_MMIO_INT_VRING);
	/* A new incarnation: fresh process-local side, the same state. */
	memset(f->shadow, 0, sizeof(f->shadow));
	memset(f->notified, 0, sizeof(f->notified));
	f->level = 0;
	assert_true(virtio_mmio_restart(&f->dev));
	assert_int_equal(f->shadow[VIRTIO_SHADOW_STATUS], STATUS_UP);
	assert_int_equal(f->shadow[VIRTIO_SHADOW_MAGIC], VIRTIO_MMIO_MAGIC);
	assert_int_equal(f->shadow[VIRTIO_SHADOW_INTERRUPT_STATUS], VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->level, 1); /* re-asserted */
	assert_int_equal(f->notified[0], 1); /* every ready queue looked at */
	assert_int_equal(f->notified[1], 1);
	assert_int_equal(f->resets, 1); /* only linux_init's */
	assert_true(virtio_has_feature(&f->dev, VIRTIO_F_EVENT_IDX));
	fake_free(f);
}

/* Chains the dead process popped but never pushed come back to the driver
 * empty, in the order they were popped, with an interrupt (Linux's hvc0
 * spins until its transmit buffer comes back).  An in-flight avail entry
 * the driver rewrote out of range makes the device need reset. */
static void test_restart_returns_in_flight_chains(void **unused)
{
	struct fake *f = fake_new();
	linux_init(f, ALL_FEATURES);
	drv_desc(f, 0, 3, FAKE_BUF, 64, 0, 0);
	drv_desc(f, 0, 5, FAKE_BUF + 0x100, 64, 0, 0);
	drv_post(f, 0, 3);
	drv_post(f, 0, 5);
	struct virtq_chain c;
	assert_true(virtq_pop(&f->dev, 0, &c));
	assert_true(virtq_pop(&f->dev, 0, &c));
	f->level = 0; /* the process dies with both chains */
	assert_true(virtio_mmio_restart(&f->dev));
	assert_int_equal(drv_used_idx(f, 0), 2);
	uint32_t id, len;
	drv_used_elem(f, 0, 0, &id, &len);
	assert_int_equal(id, 3);
	assert_int_equal(len, 0);
	drv_used_elem(f, 0, 1, &id, &len);
	assert_int_equal(id, 5);
	assert_int_equal(len, 0);
	assert_int_equal(f->state.queue[0].used_idx, f->state.queue[0].last_avail_idx);
	assert_int_equal(f->level, 1);
	assert_int_equal(drv_used_idx(f, 1), 0); /* nothing was in flight there */

	drv_post(f, 0, 3);
	assert_true(virtq_pop(&f->dev, 0, &c));
	/* The driver rewrites that in-flight entry (avail ring slot 2). */
	uint8_t *slot = f->ram + q_avail(0) + 4 + 2 * 2;
	slot[0] = FAKE_NUM;
	slot[1] = 0;
	assert_true(virtio_mmio_restart(&f->dev));
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(drv_used_idx(f, 0), 2);
	fake_free(f);
}

/* Damage one field of a running device's state; restart must refuse it. */
static void expect_torn(void (*tear)(struct virtio_mmio_state *), const char *what)
{
	struct fake *f = fake_new();
	linux_init(f, ALL_FEATURES);
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));
	tear(&f->state);
	print_message("torn state: %s\n", what);
	assert_false(virtio_mmio_state_valid(&f->dev, &f->state));
	memset(f->notified, 0, sizeof(f->notified));
	assert_false(virtio_mmio_restart(&f->dev));
	/* Fresh, telling the driver, and consistent. */
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->shadow[VIRTIO_SHADOW_STATUS], VIRTIO_STATUS_NEEDS_RESET);
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));
	assert_int_equal(f->notified[0] + f->notified[1], 0);
	assert_int_equal(linux_init(f, ALL_FEATURES) & VIRTIO_STATUS_FEATURES_OK,
			 VIRTIO_STATUS_FEATURES_OK);
	fake_free(f);
}

static void tear_magic(struct virtio_mmio_state *s) { s->magic ^= 1; }
static void tear_size(struct virtio_mmio_state *s) { s->size++; }
static void tear_reserved(struct virtio_mmio_state *s) { s->reserved = 1; }
static void tear_status_bits(struct virtio_mmio_state *s) { s->status |= 0x20; }
static void tear_driver_ok_alone(struct virtio_mmio_state *s) { s->status = VIRTIO_STATUS_DRIVER_OK; }
static void tear_features(struct virtio_mmio_state *s) { s->driver_features |= 1ull << 40; }
static void tear_no_version_1(struct virtio_mmio_state *s) { s->driver_features &= ~(1ull << 32); }
static void tear_isr(struct virtio_mmio_state *s) { s->interrupt_status = 4; }
static void tear_resignal(struct virtio_mmio_state *s) { s->interrupt_resignal = 1; }
static void tear_num(struct virtio_mmio_state *s) { s->queue[0].num = 12; }
static void tear_num_max(struct virtio_mmio_state *s) { s->queue[0].num = FAKE_QUEUE_MAX * 2; }
static void tear_ready(struct virtio_mmio_state *s) { s->queue[0].ready = 2; }
static void tear_desc(struct virtio_mmio_state *s) { s->queue[1].desc = FAKE_RAM_SIZE; }
static void tear_used_align(struct virtio_mmio_state *s) { s->queue[1].used += 2; }
static void tear_in_flight(struct virtio_mmio_state *s) { s->queue[0].last_avail_idx = FAKE_NUM + 1; }
static void tear_signalled(struct virtio_mmio_state *s) { s->queue[0].signalled_used_valid = 7; }
static void tear_notify_off(struct virtio_mmio_state *s) { s->queue[0].notify_off = 2; }
static void tear_absent_queue(struct virtio_mmio_state *s) { s->queue[FAKE_QUEUES].num = 8; }
static void tear_unready_index(struct virtio_mmio_state *s)
{
	s->queue[1].ready = 0;
	s->queue[1].used_idx = 3;
}
/* The used ring's index far ahead of what was ever popped. */
static void tear_used_ring(struct virtio_mmio_state *s) { s->queue[0].used_idx = 0xfff0; s->queue[0].last_avail_idx = 0xfff0; }

static void test_restart_refuses_torn_state(void **unused)
{
	expect_torn(tear_magic, "magic");
	expect_torn(tear_size, "size");
	expect_torn(tear_reserved, "reserved");
	expect_torn(tear_status_bits, "unknown status bit");
	expect_torn(tear_driver_ok_alone, "DRIVER_OK without FEATURES_OK");
	expect_torn(tear_features, "unoffered feature after FEATURES_OK");
	expect_torn(tear_no_version_1, "no VERSION_1 after FEATURES_OK");
	expect_torn(tear_isr, "unknown interrupt bit");
	expect_torn(tear_resignal, "resignal bit not pending");
	expect_torn(tear_num, "queue size not a power of two");
	expect_torn(tear_num_max, "queue size above max");
	expect_torn(tear_ready, "ready not 0/1");
	expect_torn(tear_desc, "descriptor table outside RAM");
	expect_torn(tear_used_align, "misaligned used ring");
	expect_torn(tear_in_flight, "more in flight than the ring holds");
	expect_torn(tear_signalled, "signalled_used_valid not 0/1");
	expect_torn(tear_notify_off, "notify_off not 0/1");
	expect_torn(tear_absent_queue, "a queue the device does not have");
	expect_torn(tear_unready_index, "indexes of a queue not ready");
}

/* Caught by the ring check rather than the state check: the used ring says
 * more was pushed than was ever popped. */
static void test_restart_refuses_impossible_used_ring(void **unused)
{
	struct fake *f = fake_new();
	linux_init(f, ALL_FEATURES);
	tear_used_ring(&f->state);
	assert_true(virtio_mmio_state_valid(&f->dev, &f->state));
	assert_false(virtio_mmio_restart(&f->dev)); /* the ring's used idx is 0, 16 "ahead" */
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_NEEDS_RESET);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identification_and_shadows),
		cmocka_unit_test(test_hello_regs),
		cmocka_unit_test(test_linux_init_negotiates),
		cmocka_unit_test(test_legacy_driver_fails_features_ok),
		cmocka_unit_test(test_unoffered_feature_fails_features_ok),
		cmocka_unit_test(test_bad_queue_setups),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_queue_notify),
		cmocka_unit_test(test_doorbell),
		cmocka_unit_test(test_interrupt_level_and_ack),
		cmocka_unit_test(test_ack_in_flight_loses_nothing),
		cmocka_unit_test(test_config_space),
		cmocka_unit_test(test_register_access_sizes),
		cmocka_unit_test(test_restart_resumes),
		cmocka_unit_test(test_restart_returns_in_flight_chains),
		cmocka_unit_test(test_restart_refuses_torn_state),
		cmocka_unit_test(test_restart_refuses_impossible_used_ring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
