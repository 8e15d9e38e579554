/* fuzz_net.c - libFuzzer target for dev-net without its process: the
 * message handler (dev_handle with net_dev_ops), the virtio-net device, its
 * virtqueues and a real libslirp NAT behind it.  Each input is a script of
 * what a hostile core and guest do: ipc messages, bytes stored anywhere in
 * the guest's 64 KiB of RAM (descriptor chains, rings), frames transmitted
 * through a well-formed transmit ring (ARP, DHCP, IP as the fuzzer likes),
 * receive buffers posted, time passing, and restarts over a damaged state
 * page.  Guest RAM is a heap block of exactly its size, so AddressSanitizer
 * catches any access outside it.
 *
 * The NAT runs with restrict=on and no forwards: libslirp answers ARP, DHCP
 * and its own addresses but opens no host socket, so fuzzing never touches
 * the network.
 *
 * Script: one opcode byte, then its operands (little-endian); a truncated
 * step ends the input.
 *   0 msg     len:u16 bytes[len]        an ipc message from the core
 *   1 poke    gpa:u16 len:u8 bytes[len] the guest stores into RAM
 *   2 init    features:u32              Linux's driver init, queues in place
 *   3 tx      len:u16 bytes[len]        header + frame through the tx ring (its
 *                                       notify rung as the doorbell)
 *   4 rx      n:u8 size:u16             post n receive buffers of size bytes
 *   5 poll                              the loop turns (libslirp's timers)
 *   6 restart at:u8 xor:u8              state byte `at` ^= xor, re-attach
 * Checked after every step: the transport state is valid and everything the
 * device sends encodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_sink.h"
#include "le.h"
#include "log.h"
#include "virtio_net.h"

#define RAM_SIZE 0x10000
#define MMIO_BASE 0xd0001000u
#define GSI 16
#define QSIZE 16
/* Ring placement used by the init step */
#define TX_DESC 0x0000
#define TX_AVAIL 0x0100
#define TX_USED 0x0200
#define RX_DESC 0x0400
#define RX_AVAIL 0x0500
#define RX_USED 0x0600
#define TX_BUF 0x1000 /* up to 0x7fff */
#define RX_BUF 0x8000 /* up to 0xffff */

static struct {
	struct net_device dev;
	struct guest_mem mem;
	_Alignas(8) uint8_t page[IPC_STATE_SIZE];
	uint16_t tx_avail, rx_avail; /* our driver's avail indices */
} fx;

static void attach(bool resumed)
{
	struct ipc_welcome w = {.flags = resumed ? IPC_WELCOME_RESUMED : 0, .ram_size = RAM_SIZE,
				.state_size = IPC_STATE_SIZE, .nranges = 1, .nirqs = 1};
	w.range_base[0] = MMIO_BASE;
	w.irq_gsi[0] = GSI;
	net_dev_ops.attach(&fx.dev, (struct ipc_state_page *)fx.page, &fx.mem, &w);
}

/* The loop turns when the script says (step 5). */
static void wake_ignored(void *opaque)
{
}

static struct net_device *device(void)
{
	if (fx.mem.base)
		return &fx.dev;
	log_init("fuzz_dev_net");
	struct net_config cfg;
	char err[NET_ERR_MAX];
	net_config_init(&cfg);
	if (net_config_set(&cfg, "restrict", "on", err, sizeof(err)) ||
	    net_config_check(&cfg, err, sizeof(err)) ||
	    net_device_init(&fx.dev, &cfg, (struct net_sink){.send = fuzz_check_originated,
							       .wake = wake_ignored}))
		abort();
	fx.dev.backend = backend_create(&fx.dev.cfg, net_frame_out, &fx.dev, err, sizeof(err));
	fx.mem = (struct guest_mem){.base = calloc(1, RAM_SIZE), .size = RAM_SIZE};
	if (!fx.dev.backend || !fx.mem.base)
		abort();
	attach(false);
	return &fx.dev;
}

static void reg_write(uint32_t off, uint32_t value)
{
	virtio_mmio_write(&fx.dev.vdev, off, 4, value);
}

static void queue_setup(unsigned q, uint64_t desc, uint64_t avail, uint64_t used)
{
	reg_write(VIRTIO_MMIO_QUEUE_SEL, q);
	reg_write(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	reg_write(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	reg_write(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	reg_write(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	reg_write(VIRTIO_MMIO_QUEUE_READY, 1);
}

static void driver_init(uint32_t low_features)
{
	reg_write(VIRTIO_MMIO_STATUS, 0);
	memset(fx.mem.base, 0, 0x800);
	fx.tx_avail = fx.rx_avail = 0;
	reg_write(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES, low_features);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	reg_write(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					      VIRTIO_STATUS_FEATURES_OK);
	queue_setup(VIRTIO_NET_RXQ, RX_DESC, RX_AVAIL, RX_USED);
	queue_setup(VIRTIO_NET_TXQ, TX_DESC, TX_AVAIL, TX_USED);
	reg_write(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* One descriptor in the next avail slot of a ring placed by driver_init. */
static void post(uint64_t desc, uint64_t avail, uint16_t *idx, uint64_t gpa, uint32_t len, uint16_t flags)
{
	uint16_t slot = *idx % QSIZE;
	uint8_t *d = fx.mem.base + desc + 16 * slot;
	put_le64(d, gpa);
	put_le32(d + 8, len);
	put_le16(d + 12, flags);
	put_le16(d + 14, 0);
	put_le16(fx.mem.base + avail + 4 + 2 * slot, slot);
	put_le16(fx.mem.base + avail + 2, ++*idx);
}

static void transmit(const uint8_t *bytes, uint16_t len)
{
	if (len > RX_BUF - TX_BUF)
		len = RX_BUF - TX_BUF;
	memcpy(fx.mem.base + TX_BUF, bytes, len);
	post(TX_DESC, TX_AVAIL, &fx.tx_avail, TX_BUF, len, 0);
	net_dev_ops.doorbell(&fx.dev, 0, 1u << VIRTIO_NET_TXQ); /* QueueNotify, as on Linux hosts */
}

static void receive_buffers(unsigned n, uint16_t size)
{
	uint64_t gpa = RX_BUF;
	for (unsigned i = 0; i < n && gpa + size <= RAM_SIZE; i++, gpa += size)
		post(RX_DESC, RX_AVAIL, &fx.rx_avail, gpa, size, VIRTQ_DESC_F_WRITE);
	reg_write(VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ);
}

static void loop_turn(void)
{
	struct host_pollfd fds[DEV_MAX_POLLFDS];
	uint64_t deadline = UINT64_MAX;
	size_t n = net_dev_ops.poll_prepare(&fx.dev, fds, DEV_MAX_POLLFDS, &deadline);
	for (size_t i = 0; i < n; i++)
		fds[i].revents = 0;
	net_dev_ops.poll_dispatch(&fx.dev, fds, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_device *d = device();
	struct dev_port port = {.ops = &net_dev_ops, .dev = d, .page = d->page, .send = fuzz_check_sendable};
	const uint8_t *p = data, *end = data + size;
#define NEED(n) do { if ((size_t)(end - p) < (n)) return 0; } while (0)
	while (p < end) {
		uint8_t op = *p++;
		switch (op % 7) {
		case 0: {
			NEED(2);
			uint16_t len = le16(p);
			p += 2;
			NEED(len);
			struct ipc_msg m;
			if (ipc_decode(p, len, &m, NULL, 0) == IPC_OK)
				dev_handle(&port, &m);
			p += len;
			break;
		}
		case 1: {
			NEED(3);
			uint16_t gpa = le16(p);
			uint8_t len = p[2];
			p += 3;
			NEED(len);
			size_t n = len <= RAM_SIZE - gpa ? len : RAM_SIZE - gpa;
			memcpy(fx.mem.base + gpa, p, n);
			p += len;
			break;
		}
		case 2:
			NEED(4);
			driver_init(le32(p));
			p += 4;
			break;
		case 3: {
			NEED(2);
			uint16_t len = le16(p);
			p += 2;
			NEED(len);
			transmit(p, len);
			p += len;
			break;
		}
		case 4:
			NEED(3);
			receive_buffers(p[0] % (QSIZE + 1), le16(p + 1));
			p += 3;
			break;
		case 5:
			loop_turn();
			break;
		case 6:
			NEED(2);
			fx.page[IPC_STATE_DEV_OFFSET + p[0] % sizeof(struct net_state)] ^= p[1];
			p += 2;
			attach(true);
			break;
		}
		if (!virtio_mmio_state_valid(&d->vdev, &d->state->vio))
			abort();
	}
	return 0;
}
