/* fuzz_virtio.c - libFuzzer target for the virtio-mmio transport and split
 * virtqueues: each input is a script of what a hostile guest does (register
 * reads and writes, bytes stored anywhere in its 64 KiB of RAM) interleaved
 * with what the device does (serve a queue, toggle notifications, change its
 * config, die and restart, with its state page damaged or not).  Guest RAM
 * is a heap block of exactly its size, so AddressSanitizer catches any
 * access outside it.  Checked after every step: the state is valid, the
 * interrupt line matches InterruptStatus, every shadow matches its register.
 *
 * Script: one opcode byte, then its operands (little-endian); a truncated
 * step ends the input.
 *   0 write   off:u16 size:u8 value:u32   register write (off % 0x200)
 *   1 read    off:u16 size:u8             register read
 *   2 poke    gpa:u16 len:u8 bytes[len]   the guest stores into RAM
 *   3 serve   q:u8                        the device pops, reads, fills, pushes, signals
 *   4 notify  q:u8 on:u8                  virtq_enable/disable_notify
 *   5 config                              virtio_mmio_config_changed
 *   6 restart at:u8 xor:u8                state byte `at` ^= xor (0: intact), restart
 *   7 init    features:u32 num:u8         Linux's init sequence, queues at fixed places
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "le.h"
#include "log.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

#define RAM_SIZE 0x10000
#define QUEUES 2

static struct {
	struct guest_mem mem;
	struct virtio_mmio_state state;
	struct virtio_dev dev;
	uint32_t shadow[VIRTIO_SHADOW_COUNT];
	int level;
	uint8_t config[8];
} fx;

static uint64_t config_read(void *opaque, uint32_t offset, unsigned size)
{
	uint64_t v = 0;
	memcpy(&v, fx.config + offset, size);
	return v;
}

static void config_write(void *opaque, uint32_t offset, unsigned size, uint64_t value)
{
	memcpy(fx.config + offset, &value, size);
}

static void serve(unsigned q);

static void queue_notify(void *opaque, unsigned q)
{
	if (q >= QUEUES)
		abort();
	serve(q);
}

static void reset(void *opaque)
{
}

static void set_irq(void *opaque, int level)
{
	fx.level = level;
}

static void publish_shadow(void *opaque, enum virtio_mmio_shadow which, uint32_t value)
{
	fx.shadow[which] = value;
}

/* The device's work: take every available chain, read what the guest wrote,
 * fill what it may write, give it back. */
static void serve(unsigned q)
{
	struct virtq_chain c;
	uint8_t buf[512];
	while (virtq_pop(&fx.dev, q, &c)) {
		if (c.nread + c.nwrite > VIRTQ_CHAIN_MAX || c.read_len > RAM_SIZE * (uint64_t)VIRTQ_CHAIN_MAX)
			abort();
		for (uint64_t off = 0; off < c.read_len; off += sizeof(buf))
			virtq_chain_read(&fx.dev, &c, off, buf, sizeof(buf));
		memset(buf, 0xa5, sizeof(buf));
		uint64_t written = 0;
		while (written < c.write_len) {
			size_t n = virtq_chain_write(&fx.dev, &c, written, buf, sizeof(buf));
			if (!n)
				abort(); /* the writable part is shorter than it said */
			written += n;
		}
		virtq_push(&fx.dev, q, &c, (uint32_t)written);
	}
	virtq_signal_used(&fx.dev, q);
}

static void check(void)
{
	static const uint16_t reg[VIRTIO_SHADOW_COUNT] = {
		VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_VERSION, VIRTIO_MMIO_DEVICE_ID,
		VIRTIO_MMIO_VENDOR_ID, VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_STATUS,
		VIRTIO_MMIO_CONFIG_GENERATION};
	if (!virtio_mmio_state_valid(&fx.dev, &fx.state))
		abort();
	if (fx.level != (fx.state.interrupt_status != 0))
		abort();
	for (unsigned i = 0; i < VIRTIO_SHADOW_COUNT; i++)
		if (fx.shadow[i] != virtio_mmio_read(&fx.dev, reg[i], 4))
			abort();
}

static void write_reg(uint64_t off, uint32_t value)
{
	virtio_mmio_write(&fx.dev, off, 4, value);
}

/* What Linux does, with the queues at fixed places in RAM. */
static void linux_init(uint32_t features, uint8_t num_log2)
{
	uint32_t num = 1u << (num_log2 % 10); /* 1 .. 512: above the max too */
	write_reg(VIRTIO_MMIO_STATUS, 0);
	write_reg(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	write_reg(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	write_reg(VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	write_reg(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	write_reg(VIRTIO_MMIO_DRIVER_FEATURES, features);
	write_reg(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					      VIRTIO_STATUS_FEATURES_OK);
	for (uint32_t q = 0; q < QUEUES; q++) {
		uint32_t desc = 0x1000 + q * 0x3000;
		write_reg(VIRTIO_MMIO_QUEUE_SEL, q);
		write_reg(VIRTIO_MMIO_QUEUE_NUM, num);
		write_reg(VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
		write_reg(VIRTIO_MMIO_QUEUE_DRIVER_LOW, desc + 0x1000);
		write_reg(VIRTIO_MMIO_QUEUE_DEVICE_LOW, desc + 0x2000);
		write_reg(VIRTIO_MMIO_QUEUE_READY, 1);
	}
	write_reg(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static unsigned access_size(uint8_t code)
{
	return 1u << (code % 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fx.mem.base) {
		log_init("fuzz_virtio");
		fx.mem = (struct guest_mem){.base = malloc(RAM_SIZE), .size = RAM_SIZE};
		fx.dev = (struct virtio_dev){
			.device_id = 3,
			.device_features = 1, /* a device-specific bit */
			.num_queues = QUEUES,
			.queue_max = {256, 128},
			.config_size = sizeof(fx.config),
			.mem = &fx.mem,
			.state = &fx.state,
			.config_read = config_read,
			.config_write = config_write,
			.queue_notify = queue_notify,
			.reset = reset,
			.irq = set_irq,
			.publish_shadow = publish_shadow,
		};
	}
	memset(fx.mem.base, 0, RAM_SIZE);
	memset(fx.config, 0, sizeof(fx.config));
	virtio_mmio_init(&fx.dev);
	check();

	const uint8_t *p = data, *end = data + size;
	while (p < end) {
		uint8_t op = *p++ % 8;
		size_t left = (size_t)(end - p);
		switch (op) {
		case 0:
			if (left < 7)
				return 0;
			virtio_mmio_write(&fx.dev, le16(p) % VIRTIO_MMIO_WINDOW_SIZE, access_size(p[2]),
					  le32(p + 3));
			p += 7;
			break;
		case 1:
			if (left < 3)
				return 0;
			virtio_mmio_read(&fx.dev, le16(p) % VIRTIO_MMIO_WINDOW_SIZE, access_size(p[2]));
			p += 3;
			break;
		case 2: {
			if (left < 3)
				return 0;
			uint16_t gpa = le16(p);
			size_t len = p[2];
			p += 3;
			if (len > (size_t)(end - p))
				len = (size_t)(end - p);
			if (len > RAM_SIZE - (size_t)gpa)
				len = RAM_SIZE - (size_t)gpa;
			memcpy(fx.mem.base + gpa, p, len);
			p += len;
			break;
		}
		case 3:
			if (left < 1)
				return 0;
			serve(*p++ % QUEUES);
			break;
		case 4:
			if (left < 2)
				return 0;
			if (p[1] & 1)
				virtq_enable_notify(&fx.dev, p[0] % QUEUES);
			else
				virtq_disable_notify(&fx.dev, p[0] % QUEUES);
			p += 2;
			break;
		case 5:
			virtio_mmio_config_changed(&fx.dev);
			break;
		case 6:
			if (left < 2)
				return 0;
			((uint8_t *)&fx.state)[p[0] % sizeof(fx.state)] ^= p[1];
			fx.level = -1; /* a new process: the line is unknown until restart sets it */
			memset(fx.shadow, 0xff, sizeof(fx.shadow));
			virtio_mmio_restart(&fx.dev);
			p += 2;
			break;
		case 7:
			if (left < 5)
				return 0;
			linux_init(le32(p), p[4]);
			p += 5;
			break;
		}
		check();
	}
	return 0;
}
