/* virtio_fake.h - for the virtio unit tests: a fake device over a buffer of
 * guest RAM that records what the library did through its callbacks, and a
 * fake driver that writes rings and registers the way Linux's virtio_mmio
 * and virtio_ring do. */
#ifndef MINIVM_TEST_VIRTIO_FAKE_H
#define MINIVM_TEST_VIRTIO_FAKE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "le.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

#define FAKE_RAM_SIZE (1u << 20)
#define FAKE_QUEUES 2
#define FAKE_QUEUE_MAX 256
#define FAKE_NUM 8 /* the size the fake driver picks */
#define FAKE_DEVICE_FEATURE (1ull << 0) /* a device-specific feature bit */
#define FAKE_BUF 0x40000 /* guest buffers from here */

struct fake {
	uint8_t *ram;
	struct guest_mem mem;
	struct virtio_mmio_state state;
	struct virtio_dev dev;
	uint32_t shadow[VIRTIO_SHADOW_COUNT];
	int level, irq_calls, rises;
	int notified[FAKE_QUEUES];
	int resets, driver_oks;
	uint8_t config[12];
};

static inline uint64_t fake_config_read(void *opaque, uint32_t offset, unsigned size)
{
	struct fake *f = opaque;
	uint64_t v = 0;
	memcpy(&v, f->config + offset, size); /* the tests run on little-endian hosts */
	return v;
}

static inline void fake_config_write(void *opaque, uint32_t offset, unsigned size, uint64_t value)
{
	struct fake *f = opaque;
	memcpy(f->config + offset, &value, size);
}

static inline void fake_notify(void *opaque, unsigned q)
{
	((struct fake *)opaque)->notified[q]++;
}

static inline void fake_reset(void *opaque)
{
	((struct fake *)opaque)->resets++;
}

static inline void fake_driver_ok(void *opaque)
{
	((struct fake *)opaque)->driver_oks++;
}

static inline void fake_irq(void *opaque, int level)
{
	struct fake *f = opaque;
	if (level && !f->level)
		f->rises++;
	f->level = level;
	f->irq_calls++;
}

static inline void fake_publish(void *opaque, enum virtio_mmio_shadow which, uint32_t value)
{
	((struct fake *)opaque)->shadow[which] = value;
}

static inline struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, FAKE_RAM_SIZE);
	f->mem = (struct guest_mem){.base = f->ram, .size = FAKE_RAM_SIZE};
	f->dev = (struct virtio_dev){
		.device_id = 3,
		.device_features = FAKE_DEVICE_FEATURE,
		.num_queues = FAKE_QUEUES,
		.queue_max = {FAKE_QUEUE_MAX, FAKE_QUEUE_MAX},
		.config_size = sizeof(f->config),
		.mem = &f->mem,
		.state = &f->state,
		.opaque = f,
		.config_read = fake_config_read,
		.config_write = fake_config_write,
		.queue_notify = fake_notify,
		.reset = fake_reset,
		.driver_ok = fake_driver_ok,
		.irq = fake_irq,
		.publish_shadow = fake_publish,
	};
	virtio_mmio_init(&f->dev);
	return f;
}

static inline void fake_free(struct fake *f)
{
	free(f->ram);
	free(f);
}

static inline uint32_t rd(struct fake *f, uint64_t offset)
{
	return (uint32_t)virtio_mmio_read(&f->dev, offset, 4);
}

static inline void wr(struct fake *f, uint64_t offset, uint32_t value)
{
	virtio_mmio_write(&f->dev, offset, 4, value);
}

/* Where the fake driver puts queue q's rings. */
static inline uint64_t q_desc(unsigned q) { return 0x1000 + q * 0x4000ull; }
static inline uint64_t q_avail(unsigned q) { return q_desc(q) + 0x1000; }
static inline uint64_t q_used(unsigned q) { return q_desc(q) + 0x2000; }

static inline void setup_queue(struct fake *f, unsigned q, uint32_t num)
{
	wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, num);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q_desc(q));
	wr(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)q_avail(q));
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)q_used(q));
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Linux's virtio_mmio probe and virtio_dev_probe, in order: reset,
 * ACKNOWLEDGE, DRIVER, read the features, accept `accept` of them,
 * FEATURES_OK and read it back, set up the queues, DRIVER_OK.  Returns the
 * status read back after FEATURES_OK. */
static inline uint32_t linux_init(struct fake *f, uint64_t accept)
{
	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t offered = (uint64_t)rd(f, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	offered |= rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	uint64_t features = offered & accept;
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					  VIRTIO_STATUS_FEATURES_OK);
	uint32_t status = rd(f, VIRTIO_MMIO_STATUS);
	if (!(status & VIRTIO_STATUS_FEATURES_OK))
		return status;
	for (unsigned q = 0; q < FAKE_QUEUES; q++)
		setup_queue(f, q, FAKE_NUM);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	return status;
}

/* ---- the fake driver's side of the rings ---- */

static inline void drv_desc_at(struct fake *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	uint8_t *d = f->ram + table + 16ull * i;
	put_le64(d, addr);
	put_le32(d + 8, len);
	put_le16(d + 12, flags);
	put_le16(d + 14, next);
}

static inline void drv_desc(struct fake *f, unsigned q, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	drv_desc_at(f, q_desc(q), i, addr, len, flags, next);
}

static inline uint16_t drv_avail_idx(struct fake *f, unsigned q)
{
	return le16(f->ram + q_avail(q) + 2);
}

static inline void drv_set_avail_idx(struct fake *f, unsigned q, uint16_t idx)
{
	put_le16(f->ram + q_avail(q) + 2, idx);
}

/* Make the chain at head available. */
static inline void drv_post(struct fake *f, unsigned q, uint16_t head)
{
	uint16_t idx = drv_avail_idx(f, q);
	put_le16(f->ram + q_avail(q) + 4 + 2 * (idx % FAKE_NUM), head);
	drv_set_avail_idx(f, q, (uint16_t)(idx + 1));
}

static inline void drv_set_avail_flags(struct fake *f, unsigned q, uint16_t flags)
{
	put_le16(f->ram + q_avail(q), flags);
}

static inline void drv_set_used_event(struct fake *f, unsigned q, uint16_t event)
{
	put_le16(f->ram + q_avail(q) + 4 + 2 * FAKE_NUM, event);
}

static inline uint16_t drv_used_idx(struct fake *f, unsigned q)
{
	return le16(f->ram + q_used(q) + 2);
}

static inline uint16_t drv_used_flags(struct fake *f, unsigned q)
{
	return le16(f->ram + q_used(q));
}

static inline uint16_t drv_avail_event(struct fake *f, unsigned q)
{
	return le16(f->ram + q_used(q) + 4 + 8 * FAKE_NUM);
}

static inline void drv_used_elem(struct fake *f, unsigned q, uint16_t i, uint32_t *id, uint32_t *len)
{
	const uint8_t *e = f->ram + q_used(q) + 4 + 8 * (i % FAKE_NUM);
	*id = le32(e);
	*len = le32(e + 4);
}

#endif
