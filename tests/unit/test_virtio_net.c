/* test_virtio_net.c - dev-net's virtio-net device without its process: a
 * fake driver writes rings into a buffer of guest RAM the way Linux's
 * virtio_net does, a real libslirp (restrict=on: no host socket) answers
 * ARP and ICMP, and the tests look at what lands in the receive buffers,
 * the interrupt line and the config space, across a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "le.h"
#include "virtio_net.h"

#define RAM_SIZE (1u << 20)
#define BASE 0xd0001000u
#define GSI 16
#define QSIZE 64
#define RX_DESC 0x1000
#define RX_AVAIL 0x2000
#define RX_USED 0x3000
#define TX_DESC 0x5000
#define TX_AVAIL 0x6000
#define TX_USED 0x7000
#define TX_BUF 0x10000
#define RX_BUF 0x40000

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t gateway_mac[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};

static struct {
	struct net_device dev;
	struct guest_mem mem;
	_Alignas(8) uint8_t page[IPC_STATE_SIZE];
	uint16_t tx_avail, rx_avail, rx_used_seen;
	int level, config_irqs;
	unsigned wakes; /* of the loop, by the device */
} t;

static bool record_irq(void *opaque, struct ipc_msg *m)
{
	assert_int_equal(m->type, IPC_IRQ);
	assert_int_equal(m->u.irq.line, GSI);
	t.level = (int)m->u.irq.level;
	return true;
}

static void count_wake(void *opaque)
{
	t.wakes++;
}

static void attach(bool resumed)
{
	struct ipc_welcome w = {.flags = resumed ? IPC_WELCOME_RESUMED : 0, .nranges = 1, .nirqs = 1};
	w.range_base[0] = BASE;
	w.irq_gsi[0] = GSI;
	net_dev_ops.attach(&t.dev, (struct ipc_state_page *)t.page, &t.mem, &w);
}

static uint32_t reg_read(uint32_t off)
{
	struct ipc_io io = {.space = IPC_SPACE_MMIO, .size = 4, .addr = BASE + off};
	return (uint32_t)net_dev_ops.read(&t.dev, &io);
}

static void reg_write(uint32_t off, uint32_t value)
{
	struct ipc_io io = {.space = IPC_SPACE_MMIO, .size = 4, .addr = BASE + off, .data = value};
	net_dev_ops.write(&t.dev, &io);
}

static void queue_setup(unsigned q, uint32_t desc, uint32_t avail, uint32_t used)
{
	reg_write(VIRTIO_MMIO_QUEUE_SEL, q);
	reg_write(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	reg_write(VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	reg_write(VIRTIO_MMIO_QUEUE_DRIVER_LOW, avail);
	reg_write(VIRTIO_MMIO_QUEUE_DEVICE_LOW, used);
	reg_write(VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Linux's probe: accept the features in mask, both queues, DRIVER_OK. */
static void driver_init(uint64_t mask)
{
	reg_write(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	reg_write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t offered = reg_read(VIRTIO_MMIO_DEVICE_FEATURES);
	reg_write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)reg_read(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	uint64_t accept = offered & mask;
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)accept);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(accept >> 32));
	reg_write(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					      VIRTIO_STATUS_FEATURES_OK);
	queue_setup(VIRTIO_NET_RXQ, RX_DESC, RX_AVAIL, RX_USED);
	queue_setup(VIRTIO_NET_TXQ, TX_DESC, TX_AVAIL, TX_USED);
	reg_write(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void post(uint32_t desc, uint32_t avail, uint16_t *idx, uint64_t gpa, uint32_t len,
		 uint16_t flags)
{
	uint16_t slot = *idx % QSIZE;
	uint8_t *d = t.mem.base + desc + 16 * slot;
	put_le64(d, gpa);
	put_le32(d + 8, len);
	put_le16(d + 12, flags);
	put_le16(t.mem.base + avail + 4 + 2 * slot, slot);
	put_le16(t.mem.base + avail + 2, ++*idx);
}

static void post_rx(unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = t.rx_avail % QSIZE;
		post(RX_DESC, RX_AVAIL, &t.rx_avail, RX_BUF + (uint64_t)slot * 0x2000, size,
		     VIRTQ_DESC_F_WRITE);
	}
	reg_write(VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ);
}

/* hdr (the virtio-net header) + frame, through the transmit ring */
static void transmit_with_header(const uint8_t *hdr, const uint8_t *frame, size_t len)
{
	memcpy(t.mem.base + TX_BUF, hdr, VIRTIO_NET_HDR_LEN);
	memcpy(t.mem.base + TX_BUF + VIRTIO_NET_HDR_LEN, frame, len);
	post(TX_DESC, TX_AVAIL, &t.tx_avail, TX_BUF, (uint32_t)(VIRTIO_NET_HDR_LEN + len), 0);
	reg_write(VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
}

/* header (12 zero bytes: no offload) + frame */
static void transmit(const uint8_t *frame, size_t len)
{
	static const uint8_t no_offload[VIRTIO_NET_HDR_LEN];
	transmit_with_header(no_offload, frame, len);
}

/* The next packet the device gave the guest: its buffers concatenated
 * (header first) into out; returns the total length, 0 if none. */
static size_t receive(uint8_t *out, unsigned *nbuffers)
{
	uint16_t used = le16(t.mem.base + RX_USED + 2);
	if (used == t.rx_used_seen)
		return 0;
	size_t total = 0;
	unsigned n = 0, want = 1;
	while (n < want) {
		assert_int_not_equal(t.rx_used_seen, used);
		const uint8_t *e = t.mem.base + RX_USED + 4 + 8 * (t.rx_used_seen++ % QSIZE);
		uint32_t id = le32(e), len = le32(e + 4);
		memcpy(out + total, t.mem.base + RX_BUF + (uint64_t)id * 0x2000, len);
		if (n == 0)
			want = le16(out + 10); /* num_buffers */
		total += len;
		n++;
	}
	*nbuffers = n;
	return total;
}

static uint16_t ip_csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static size_t arp_request(uint8_t *f)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, guest_mac, 6);
	static const uint8_t arp[] = {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1};
	memcpy(f + 12, arp, sizeof(arp));
	memcpy(f + 22, guest_mac, 6);
	memcpy(f + 28, (uint8_t[]){10, 0, 2, 15}, 4);
	memset(f + 32, 0, 6);
	memcpy(f + 38, (uint8_t[]){10, 0, 2, 2}, 4);
	return 42;
}

/* ICMP echo request of payload bytes from 10.0.2.15 to 10.0.2.2 */
static size_t echo_request(uint8_t *f, size_t payload)
{
	memcpy(f, gateway_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08, f[13] = 0;
	uint8_t *ip = f + 14, *icmp = ip + 20;
	size_t ip_len = 20 + 8 + payload;
	memset(ip, 0, 20);
	ip[0] = 0x45, ip[8] = 64, ip[9] = 1;
	ip[2] = (uint8_t)(ip_len >> 8), ip[3] = (uint8_t)ip_len;
	memcpy(ip + 12, (uint8_t[]){10, 0, 2, 15, 10, 0, 2, 2}, 8);
	uint16_t c = ip_csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
	memset(icmp, 0, 8);
	icmp[0] = 8, icmp[5] = 1, icmp[7] = 1;
	for (size_t i = 0; i < payload; i++)
		icmp[8 + i] = (uint8_t)i;
	c = ip_csum(icmp, 8 + payload);
	icmp[2] = (uint8_t)(c >> 8), icmp[3] = (uint8_t)c;
	return 14 + ip_len;
}

/* A TCP segment of payload bytes (flags PSH only, sequence seq) from
 * 10.0.2.15:40000 to 10.0.2.2:9 whose checksum the guest left partial, as
 * Linux's TSO hands it over: the IP header with the whole length and its
 * checksum, the pseudo-header sum in the TCP checksum field. */
static size_t tcp_segment_partial_csum(uint8_t *f, size_t payload, uint32_t seq)
{
	memcpy(f, gateway_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08, f[13] = 0;
	uint8_t *ip = f + 14, *tcp = ip + 20;
	size_t tcp_len = 20 + payload, ip_len = 20 + tcp_len;
	memset(ip, 0, 40);
	ip[0] = 0x45, ip[6] = 0x40 /* DF */, ip[8] = 64, ip[9] = 6;
	ip[2] = (uint8_t)(ip_len >> 8), ip[3] = (uint8_t)ip_len;
	memcpy(ip + 12, (uint8_t[]){10, 0, 2, 15, 10, 0, 2, 2}, 8);
	uint16_t c = ip_csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
	tcp[0] = 40000 >> 8, tcp[1] = 40000 & 0xff, tcp[3] = 9;
	tcp[4] = (uint8_t)(seq >> 24), tcp[5] = (uint8_t)(seq >> 16), tcp[6] = (uint8_t)(seq >> 8),
	tcp[7] = (uint8_t)seq;
	tcp[12] = 5 << 4, tcp[13] = 0x08 /* PSH */, tcp[14] = 0xff, tcp[15] = 0xff;
	for (size_t i = 0; i < payload; i++)
		tcp[20 + i] = (uint8_t)(i * 7);
	uint8_t pseudo[12] = {10, 0, 2, 15, 10, 0, 2, 2, 0, 6, (uint8_t)(tcp_len >> 8), (uint8_t)tcp_len};
	c = (uint16_t)~ip_csum(pseudo, sizeof(pseudo)); /* the sum, not its complement */
	tcp[16] = (uint8_t)(c >> 8), tcp[17] = (uint8_t)c;
	return 14 + ip_len;
}

static const uint64_t all_features = (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
				     (1ull << VIRTIO_NET_F_MTU) | (1ull << VIRTIO_NET_F_MAC) |
				     (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_STATUS) |
				     VIRTIO_TRANSPORT_FEATURES;

static int setup(void **state)
{
	memset(&t, 0, sizeof(t));
	struct net_config cfg;
	char err[NET_ERR_MAX];
	net_config_init(&cfg);
	assert_int_equal(net_config_set(&cfg, "restrict", "on", err, sizeof(err)), 0);
	assert_int_equal(net_config_check(&cfg, err, sizeof(err)), 0);
	assert_int_equal(net_device_init(&t.dev, &cfg, (struct net_sink){.send = record_irq, .wake = count_wake}),
			 0);
	t.dev.backend = backend_create(&t.dev.cfg, net_frame_out, &t.dev, err, sizeof(err));
	assert_non_null(t.dev.backend);
	t.mem = (struct guest_mem){.base = calloc(1, RAM_SIZE), .size = RAM_SIZE};
	attach(false);
	return 0;
}

static int teardown(void **state)
{
	net_device_destroy(&t.dev);
	free(t.mem.base);
	return 0;
}

static void test_hello_asks_for_a_slot(void **state)
{
	struct ipc_hello h;
	net_dev_ops.hello(&t.dev, &h);
	assert_int_equal(h.nranges, 1);
	assert_int_equal(h.ranges[0].base, 0);
	assert_int_equal(h.ranges[0].kind, IPC_RANGE_VIRTIO_MMIO);
	assert_int_equal(h.irqs[0].gsi, IPC_IRQ_ANY);
	assert_int_equal(h.nregs, VIRTIO_MMIO_HELLO_REGS);
	/* QueueNotify: a doorbell the vCPU does not wait for, where the host
	 * has shared-memory waits; a posted write elsewhere */
	const struct ipc_reg *notify = NULL;
	for (unsigned i = 0; i < h.nregs; i++)
		if (h.regs[i].addr == VIRTIO_MMIO_QUEUE_NOTIFY)
			notify = &h.regs[i];
	assert_non_null(notify);
	if (host_shared_wait_supported()) {
		assert_int_equal(notify->flags, IPC_REG_DOORBELL);
		assert_int_equal(notify->slot, 0);
	} else {
		assert_int_equal(notify->flags, IPC_REG_STREAM);
	}
}

static void test_config_space(void **state)
{
	driver_init(all_features);
	assert_int_equal(reg_read(VIRTIO_MMIO_DEVICE_ID), 1);
	for (unsigned i = 0; i < 6; i++) {
		struct ipc_io io = {.space = IPC_SPACE_MMIO, .size = 1, .addr = BASE + 0x100 + i};
		assert_int_equal(net_dev_ops.read(&t.dev, &io), guest_mac[i]);
	}
	assert_int_equal(reg_read(0x100 + VIRTIO_NET_CFG_STATUS) & 0xffff, VIRTIO_NET_S_LINK_UP);
	assert_int_equal(reg_read(0x100 + VIRTIO_NET_CFG_MAX_PAIRS) >> 16, 65520); /* mtu */
}

static void test_arp_reply_marked_data_valid(void **state)
{
	driver_init(all_features);
	post_rx(8, 2048);
	uint8_t f[2048], rx[8192];
	transmit(f, arp_request(f));
	unsigned nbuf;
	size_t n = receive(rx, &nbuf);
	assert_true(n >= VIRTIO_NET_HDR_LEN + 42);
	assert_int_equal(nbuf, 1);
	assert_int_equal(rx[0], VIRTIO_NET_HDR_F_DATA_VALID);
	assert_memory_equal(rx + VIRTIO_NET_HDR_LEN, guest_mac, 6); /* to us */
	assert_memory_equal(rx + VIRTIO_NET_HDR_LEN + 6, gateway_mac, 6);
	assert_int_equal(rx[VIRTIO_NET_HDR_LEN + 21], 2); /* ARP reply */
	assert_int_equal(t.level, 1);
	assert_int_equal(le16(t.mem.base + TX_USED + 2), 1); /* the transmit buffer came back */
}

/* A frame larger than one buffer spans several (MRG_RXBUF, num_buffers). */
static void test_large_reply_spans_merged_buffers(void **state)
{
	driver_init(all_features);
	post_rx(16, 1024);
	static uint8_t f[8192], rx[16384];
	unsigned nbuf;
	transmit(f, arp_request(f)); /* libslirp learns our MAC */
	assert_true(receive(rx, &nbuf) > 0);
	size_t len = echo_request(f, 3000);
	transmit(f, len);
	size_t n = receive(rx, &nbuf);
	assert_int_equal(n, VIRTIO_NET_HDR_LEN + len);
	assert_int_equal(nbuf, (VIRTIO_NET_HDR_LEN + len + 1023) / 1024);
	assert_int_equal(rx[VIRTIO_NET_HDR_LEN + 14 + 20], 0); /* echo reply */
	assert_memory_equal(rx + VIRTIO_NET_HDR_LEN + 14 + 28, f + 14 + 28, 3000);
}

/* Without MRG_RXBUF a frame needs one buffer that holds it: a smaller one
 * comes back empty (or it would block the queue) and the frame is dropped. */
static void test_without_mergeable_a_small_buffer_comes_back_empty(void **state)
{
	driver_init(all_features & ~(1ull << VIRTIO_NET_F_MRG_RXBUF));
	post_rx(1, 40);
	uint8_t f[2048], rx[8192];
	unsigned nbuf;
	transmit(f, arp_request(f));
	assert_int_equal(le16(t.mem.base + RX_USED + 2), 1);
	assert_int_equal(le32(t.mem.base + RX_USED + 4 + 4), 0); /* written: nothing */
	t.rx_used_seen++;
	post_rx(1, 2048);
	transmit(f, arp_request(f));
	assert_true(receive(rx, &nbuf) >= VIRTIO_NET_HDR_LEN + 42);
	assert_int_equal(nbuf, 1);
}

/* A restarted process resumes the queues (no reset), tells the driver the
 * link went down, and brings it up once the driver has read it. */
static void test_restart_resumes_and_flaps_the_link(void **state)
{
	driver_init(all_features);
	post_rx(8, 2048);
	uint8_t f[2048], rx[8192];
	unsigned nbuf;
	transmit(f, arp_request(f));
	transmit(f, echo_request(f, 64)); /* the device learns the guest's address */
	while (receive(rx, &nbuf))
		;
	uint32_t generation = reg_read(VIRTIO_MMIO_CONFIG_GENERATION);
	reg_write(VIRTIO_MMIO_INTERRUPT_ACK, reg_read(VIRTIO_MMIO_INTERRUPT_STATUS));

	/* a new process: a new NAT, then the WELCOME with RESUMED */
	char err[NET_ERR_MAX];
	backend_destroy(t.dev.backend);
	t.dev.backend = backend_create(&t.dev.cfg, net_frame_out, &t.dev, err, sizeof(err));
	assert_non_null(t.dev.backend);
	attach(true);
	assert_int_equal(reg_read(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_DRIVER_OK);
	assert_true(reg_read(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(t.level, 1);
	assert_int_not_equal(reg_read(VIRTIO_MMIO_CONFIG_GENERATION), generation);
	assert_int_equal(reg_read(0x100 + VIRTIO_NET_CFG_STATUS) & 0xffff, 0); /* down, seen */
	reg_write(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);

	struct host_pollfd fds[DEV_MAX_POLLFDS];
	uint64_t deadline = UINT64_MAX;
	size_t n = net_dev_ops.poll_prepare(&t.dev, fds, DEV_MAX_POLLFDS, &deadline);
	assert_true(deadline < host_now_ns() + 100ull * 1000000); /* soon after it was seen */
	while (host_now_ns() < deadline)
		host_sleep_ms(5);
	net_dev_ops.poll_dispatch(&t.dev, fds, n);
	assert_int_equal(reg_read(0x100 + VIRTIO_NET_CFG_STATUS) & 0xffff, VIRTIO_NET_S_LINK_UP);
	assert_true(reg_read(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);

	/* The queues work as before, and the new NAT knew the guest's MAC
	 * (announced at attach): the echo reply comes without an ARP request. */
	size_t len = echo_request(f, 64);
	transmit(f, len);
	assert_int_equal(receive(rx, &nbuf), VIRTIO_NET_HDR_LEN + len);
	assert_int_equal(rx[VIRTIO_NET_HDR_LEN + 12], 0x08);
	assert_int_equal(rx[VIRTIO_NET_HDR_LEN + 13], 0x00); /* IPv4, not ARP */
}

/* QueueNotify through the doorbell (devlib's thread, off the loop): a
 * transmit reaches libslirp and its answer the receive ring at once, and
 * the loop is woken once until it polls again, to ask libslirp for its
 * sockets; receive buffers alone give libslirp nothing and wake nobody. */
static void test_doorbell_transmits_and_wakes_the_loop_once(void **state)
{
	driver_init(all_features);
	for (unsigned i = 0; i < 8; i++)
		post(RX_DESC, RX_AVAIL, &t.rx_avail, RX_BUF + (uint64_t)i * 0x2000, 2048,
		     VIRTQ_DESC_F_WRITE);
	net_dev_ops.doorbell(&t.dev, 0, 1u << VIRTIO_NET_RXQ);
	assert_int_equal(t.wakes, 0);

	uint8_t rx[8192];
	unsigned nbuf;
	memset(t.mem.base + TX_BUF, 0, VIRTIO_NET_HDR_LEN); /* no offload */
	size_t len = arp_request(t.mem.base + TX_BUF + VIRTIO_NET_HDR_LEN);
	post(TX_DESC, TX_AVAIL, &t.tx_avail, TX_BUF, (uint32_t)(VIRTIO_NET_HDR_LEN + len), 0);
	net_dev_ops.doorbell(&t.dev, 0, 1u << VIRTIO_NET_TXQ);
	assert_int_equal(le16(t.mem.base + TX_USED + 2), 1);
	assert_true(receive(rx, &nbuf) > 0); /* the ARP reply */
	assert_int_equal(t.wakes, 1);

	len = echo_request(t.mem.base + TX_BUF + VIRTIO_NET_HDR_LEN, 64);
	post(TX_DESC, TX_AVAIL, &t.tx_avail, TX_BUF, (uint32_t)(VIRTIO_NET_HDR_LEN + len), 0);
	net_dev_ops.doorbell(&t.dev, 0, 1u << VIRTIO_NET_TXQ);
	assert_int_equal(receive(rx, &nbuf), VIRTIO_NET_HDR_LEN + len); /* the echo reply */
	assert_int_equal(t.wakes, 1); /* the loop has not polled since the first */

	/* The loop polls: the next transmit wakes it again.  A ring of a
	 * doorbell not ours does nothing. */
	struct host_pollfd fds[DEV_MAX_POLLFDS];
	uint64_t deadline = UINT64_MAX;
	net_dev_ops.poll_prepare(&t.dev, fds, DEV_MAX_POLLFDS, &deadline);
	post(TX_DESC, TX_AVAIL, &t.tx_avail, TX_BUF, (uint32_t)(VIRTIO_NET_HDR_LEN + len), 0);
	net_dev_ops.doorbell(&t.dev, 1, 1u << VIRTIO_NET_TXQ);
	assert_int_equal(le16(t.mem.base + TX_USED + 2), 2);
	net_dev_ops.doorbell(&t.dev, 0, 1u << VIRTIO_NET_TXQ);
	assert_int_equal(receive(rx, &nbuf), VIRTIO_NET_HDR_LEN + len);
	assert_int_equal(t.wakes, 2);
}

/* HOST_TSO4: a 20000-byte TCP segment (MSS 1460) reaches libslirp whole
 * with its checksum completed: libslirp, finding no connection, resets it
 * acknowledging all 20000 bytes (tcp_input drops a segment whose checksum
 * is wrong, and ip_input one whose length is not the frame's). */
static void test_tso_segment_reaches_libslirp_whole(void **state)
{
	driver_init(all_features | 1ull << VIRTIO_NET_F_HOST_TSO4);
	post_rx(8, 2048);
	static uint8_t f[32768], rx[8192];
	unsigned nbuf;
	transmit(f, arp_request(f)); /* libslirp learns our MAC */
	assert_true(receive(rx, &nbuf) > 0);
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4};
	put_le16(hdr + 2, 14 + 20 + 20); /* hdr_len */
	put_le16(hdr + 4, 1460);         /* gso_size */
	put_le16(hdr + 6, 14 + 20);      /* csum_start */
	put_le16(hdr + 8, 16);           /* csum_offset: the TCP checksum */
	transmit_with_header(hdr, f, tcp_segment_partial_csum(f, 20000, 1000));
	size_t n = receive(rx, &nbuf);
	assert_true(n >= VIRTIO_NET_HDR_LEN + 14 + 40);
	const uint8_t *tcp = rx + VIRTIO_NET_HDR_LEN + 14 + 20;
	assert_int_equal(rx[VIRTIO_NET_HDR_LEN + 14 + 9], 6);
	assert_int_equal(tcp[13], 0x14); /* RST | ACK */
	assert_int_equal(tcp[8] << 24 | tcp[9] << 16 | tcp[10] << 8 | tcp[11], 1000 + 20000);
}

/* Without HOST_TSO4 negotiated the same segment is dropped, unanswered. */
static void test_tso_segment_dropped_unless_negotiated(void **state)
{
	driver_init(all_features);
	post_rx(8, 2048);
	static uint8_t f[32768], rx[8192];
	unsigned nbuf;
	transmit(f, arp_request(f));
	assert_true(receive(rx, &nbuf) > 0);
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4};
	put_le16(hdr + 6, 14 + 20);
	put_le16(hdr + 8, 16);
	transmit_with_header(hdr, f, tcp_segment_partial_csum(f, 20000, 1000));
	assert_int_equal(receive(rx, &nbuf), 0);
	/* the same segment without GSO is answered: the drop was the GSO type */
	hdr[1] = VIRTIO_NET_HDR_GSO_NONE;
	transmit_with_header(hdr, f, tcp_segment_partial_csum(f, 20000, 1000));
	assert_true(receive(rx, &nbuf) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello_asks_for_a_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_reply_marked_data_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_reply_spans_merged_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_mergeable_a_small_buffer_comes_back_empty,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_resumes_and_flaps_the_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_doorbell_transmits_and_wakes_the_loop_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tso_segment_reaches_libslirp_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tso_segment_dropped_unless_negotiated, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
