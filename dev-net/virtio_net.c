/* virtio_net.c - dev-net's virtio-net device (virtio_net.h). */
#include "virtio_net.h"

#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "le.h"
#include "log.h"

#define NET_STATE_MAGIC 0x5454454eu /* "NETT" */
_Static_assert(IPC_STATE_DEV_OFFSET + sizeof(struct net_state) <= IPC_STATE_SIZE,
	       "net state does not fit in the state page");

/* How long a restarted device shows the link down: long enough for the
 * driver to read it (a config read after the interrupt), short enough that
 * new connections work within a second of the restart. */
#define LINK_DOWN_MAX_NS (300ull * 1000000)
#define LINK_DOWN_AFTER_SEEN_NS (20ull * 1000000)
/* libslirp's host sockets wait while the link is down and this long after
 * it comes up: a connection the forwards accept meanwhile would send its SYN
 * to a guest whose answer its own stack still drops (no carrier yet), and
 * the guest retransmits only a second later. */
#define LINK_SETTLE_NS (50ull * 1000000)

/* The device's one doorbell (ipc.h): QueueNotify, bit q for queue q. */
#define NET_DOORBELL 0

static const uint64_t offered_features =
	(1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) | (1ull << VIRTIO_NET_F_MTU) |
	(1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_STATUS) |
	(1ull << VIRTIO_NET_F_HOST_TSO4);

/* ---- receive: frames queued for the guest ---- */

static void rx_queue_clear(struct net_device *d)
{
	while (d->rx_head) {
		struct net_rx_frame *f = d->rx_head;
		d->rx_head = f->next;
		free(f);
	}
	d->rx_tail = &d->rx_head;
	d->rx_frames = 0;
	d->rx_bytes = 0;
}

void net_frame_out(const uint8_t *frame, size_t len, void *opaque)
{
	struct net_device *d = opaque;
	if (len > NET_FRAME_MAX || d->rx_frames >= NET_RX_QUEUE_FRAMES ||
	    d->rx_bytes + len > NET_RX_QUEUE_BYTES)
		return; /* the guest is not taking them: drop, TCP retransmits */
	struct net_rx_frame *f = malloc(sizeof(*f) + len);
	if (!f)
		return;
	f->next = NULL;
	f->len = len;
	memcpy(f->data, frame, len);
	*d->rx_tail = f;
	d->rx_tail = &f->next;
	d->rx_frames++;
	d->rx_bytes += len;
}

/* Every chain of the receive ring is with us (popped, not used): the guest
 * cannot post more until we use some.  A driver that reuses descriptors we
 * hold could make us pop more; we never do, so the ring's indices stay
 * consistent (virtio_mmio_state_valid). */
static bool rx_ring_exhausted(const struct net_device *d)
{
	const struct virtq_state *q = &d->state->vio.queue[VIRTIO_NET_RXQ];
	return (uint16_t)(q->last_avail_idx - q->used_idx) >= q->num;
}

/* Pop one more receive chain into the held ones.  False when the guest has
 * posted none (with notifications on: it tells us when it does). */
static bool rx_hold_one(struct net_device *d)
{
	struct virtq_chain *c = &d->rx_held[d->rx_nheld];
	/* An empty ring asks the driver for a notify on its next buffer and
	 * looks once more (virtq_pop): nothing to add here. */
	if (!virtq_pop(&d->vdev, VIRTIO_NET_RXQ, c))
		return false;
	d->rx_nheld++;
	d->rx_held_room += c->write_len;
	return true;
}

/* The first n held chains were used: forget them. */
static void rx_release(struct net_device *d, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		d->rx_held_room -= d->rx_held[i].write_len;
	d->rx_nheld -= n;
	memmove(d->rx_held, d->rx_held + n, d->rx_nheld * sizeof(*d->rx_held));
}

/* Write header + frame f across held chains from the first on, push them.
 * The caller made sure they hold it. */
static void rx_deliver(struct net_device *d, const struct net_rx_frame *f)
{
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = {0};
	size_t total = VIRTIO_NET_HDR_LEN + f->len;
	unsigned used = 0;
	for (uint64_t room = 0; room < total; used++)
		room += d->rx_held[used].write_len;
	if (virtio_has_feature(&d->vdev, VIRTIO_NET_F_GUEST_CSUM))
		hdr[0] = VIRTIO_NET_HDR_F_DATA_VALID; /* libslirp's checksums are complete */
	hdr[1] = VIRTIO_NET_HDR_GSO_NONE;
	put_le16(hdr + 10, (uint16_t)used); /* num_buffers */

	size_t done = 0; /* bytes of header + frame written */
	for (unsigned i = 0; i < used; i++) {
		const struct virtq_chain *c = &d->rx_held[i];
		size_t written = 0;
		while (written < c->write_len && done < total) {
			const uint8_t *src = done < VIRTIO_NET_HDR_LEN ? hdr + done : f->data + (done - VIRTIO_NET_HDR_LEN);
			size_t want = done < VIRTIO_NET_HDR_LEN ? VIRTIO_NET_HDR_LEN - done : total - done;
			size_t n = virtq_chain_write(&d->vdev, c, written, src, want);
			if (!n)
				break;
			written += n;
			done += n;
		}
		virtq_push(&d->vdev, VIRTIO_NET_RXQ, c, (uint32_t)written);
	}
	rx_release(d, used);
	d->stats.rx_frames++;
}

void net_rx_flush(struct net_device *d)
{
	bool pushed = false;
	bool mergeable = virtio_has_feature(&d->vdev, VIRTIO_NET_F_MRG_RXBUF);
	while (d->rx_head && virtio_queue_live(&d->vdev, VIRTIO_NET_RXQ)) {
		struct net_rx_frame *f = d->rx_head;
		uint64_t need = VIRTIO_NET_HDR_LEN + f->len;
		/* Without MRG_RXBUF a frame goes in one chain, the first.  A
		 * frame larger than all the buffers we may hold is dropped. */
		bool out_of_buffers = false;
		while (mergeable ? d->rx_held_room < need : d->rx_nheld == 0) {
			if (d->rx_nheld == NET_RX_HELD_MAX || rx_ring_exhausted(d))
				break;
			if (!rx_hold_one(d)) {
				out_of_buffers = true;
				break;
			}
		}
		if (out_of_buffers)
			break; /* the guest's next notify brings more */
		bool fits = mergeable ? d->rx_held_room >= need
					: d->rx_nheld && d->rx_held[0].write_len >= need;
		if (fits) {
			rx_deliver(d, f);
			pushed = true;
		} else {
			log_once("dropping a %zu-byte frame: the guest's receive buffers are too small",
				 f->len);
			if (!mergeable && d->rx_nheld) {
				/* give the buffer back empty, or it would block every frame */
				virtq_push(&d->vdev, VIRTIO_NET_RXQ, &d->rx_held[0], 0);
				rx_release(d, 1);
				pushed = true;
			}
		}
		d->rx_head = f->next;
		if (!d->rx_head)
			d->rx_tail = &d->rx_head;
		d->rx_frames--;
		d->rx_bytes -= f->len;
		free(f);
	}
	if (pushed)
		virtq_signal_used(&d->vdev, VIRTIO_NET_RXQ);
}

/* ---- transmit ---- */

/* An IPv4 frame from the guest's MAC names the guest's address. */
static void remember_guest_ip(struct net_device *d, const uint8_t *frame, size_t len)
{
	if (len < 14 + 20 || frame[12] != 0x08 || frame[13] != 0x00 || memcmp(frame + 6, d->cfg.mac, 6))
		return;
	const uint8_t *src = frame + 14 + 12;
	uint32_t ip = (uint32_t)src[0] << 24 | (uint32_t)src[1] << 16 | (uint32_t)src[2] << 8 | src[3];
	if ((ip & d->cfg.mask) == d->cfg.net && memcmp(d->state->guest_ip, src, 4))
		memcpy(d->state->guest_ip, src, 4);
}

/* A restarted NAT knows nothing of the guest: tell it the guest's MAC and
 * address as the guest itself would, with a gratuitous ARP. */
static void announce_guest(struct net_device *d)
{
	static const uint8_t zero[4];
	if (!d->backend || !memcmp(d->state->guest_ip, zero, 4))
		return;
	uint8_t f[42];
	memset(f, 0xff, 6);
	memcpy(f + 6, d->cfg.mac, 6);
	static const uint8_t arp_request[] = {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1};
	memcpy(f + 12, arp_request, sizeof(arp_request));
	memcpy(f + 22, d->cfg.mac, 6);
	memcpy(f + 28, d->state->guest_ip, 4);
	memset(f + 32, 0, 6);
	memcpy(f + 38, d->state->guest_ip, 4); /* target = sender: gratuitous */
	backend_input(d->backend, f, sizeof(f), NULL);
}

/* One chain from the transmit queue: header + frame, to libslirp. */
static void tx_one(struct net_device *d, const struct virtq_chain *c)
{
	uint64_t len = c->read_len;
	if (len < VIRTIO_NET_HDR_LEN + 14 || len > sizeof(d->frame)) {
		log_once("dropping a transmitted buffer of %llu bytes: not a frame",
			 (unsigned long long)len);
		return;
	}
	if (virtq_chain_read(&d->vdev, c, 0, d->frame, (size_t)len) != len)
		return;
	/* Copied once: from here on the guest cannot change what we check. */
	uint8_t flags = d->frame[0], gso = d->frame[1];
	/* A TSO segment goes to libslirp whole, as one large TCP segment: its
	 * IP header already gives the whole length (Linux writes it so), the
	 * TCP checksum is completed over all of it below, and libslirp's TCP
	 * takes a segment larger than the MSS it announced.  No ECN variant:
	 * HOST_ECN is not offered. */
	bool tso = gso == VIRTIO_NET_HDR_GSO_TCPV4 && virtio_has_feature(&d->vdev, VIRTIO_NET_F_HOST_TSO4);
	if (gso != VIRTIO_NET_HDR_GSO_NONE && !tso) {
		log_once("dropping a frame with GSO type %u, which was not offered", gso);
		return;
	}
	remember_guest_ip(d, d->frame + VIRTIO_NET_HDR_LEN, (size_t)len - VIRTIO_NET_HDR_LEN);
	struct backend_tx_csum csum = {
		.needed = virtio_has_feature(&d->vdev, VIRTIO_NET_F_CSUM) &&
			  (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM),
		.start = le16(d->frame + 6),
		.offset = le16(d->frame + 8),
	};
	d->stats.tx_frames++;
	if (d->backend) {
		backend_input(d->backend, d->frame + VIRTIO_NET_HDR_LEN,
			      (size_t)len - VIRTIO_NET_HDR_LEN, &csum);
		d->backend_fed = true;
	}
}

static void tx_flush(struct net_device *d)
{
	struct virtq_chain c;
	bool pushed = false;
	while (virtq_pop(&d->vdev, VIRTIO_NET_TXQ, &c)) {
		tx_one(d, &c);
		virtq_push(&d->vdev, VIRTIO_NET_TXQ, &c, 0);
		pushed = true;
	}
	if (pushed)
		virtq_signal_used(&d->vdev, VIRTIO_NET_TXQ);
	net_rx_flush(d); /* libslirp answers some frames at once (ARP, DHCP) */
}

/* ---- the transport's callbacks ---- */

static uint64_t config_read(void *opaque, uint32_t offset, unsigned size)
{
	struct net_device *d = opaque;
	uint8_t cfg[VIRTIO_NET_CFG_SIZE];
	memcpy(cfg + VIRTIO_NET_CFG_MAC, d->cfg.mac, 6);
	put_le16(cfg + VIRTIO_NET_CFG_STATUS, d->state->link);
	put_le16(cfg + VIRTIO_NET_CFG_MAX_PAIRS, 1);
	put_le16(cfg + VIRTIO_NET_CFG_MTU, (uint16_t)d->cfg.mtu);
	if (offset < VIRTIO_NET_CFG_STATUS + 2 && offset + size > VIRTIO_NET_CFG_STATUS &&
	    !d->state->link && d->link_up_at_ns) {
		/* The driver has seen the link down: bring it back soon. */
		uint64_t soon = host_now_ns() + LINK_DOWN_AFTER_SEEN_NS;
		if (soon < d->link_up_at_ns)
			d->link_up_at_ns = soon;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++) /* the transport checked offset + size */
		v |= (uint64_t)cfg[offset + i] << (8 * i);
	return v;
}

/* The MAC is read-only with VERSION_1; nothing else is writable. */
static void config_write(void *opaque, uint32_t offset, unsigned size, uint64_t value)
{
}

static void queue_notify(void *opaque, unsigned q)
{
	struct net_device *d = opaque;
	if (q == VIRTIO_NET_TXQ)
		tx_flush(d);
	else
		net_rx_flush(d);
}

/* The driver reset the device: the rings it gave us are gone. */
static void driver_reset(void *opaque)
{
	struct net_device *d = opaque;
	d->rx_nheld = 0;
	d->rx_held_room = 0;
	rx_queue_clear(d);
}

static void set_irq(void *opaque, int level)
{
	struct net_device *d = opaque;
	struct ipc_msg m = {.type = IPC_IRQ};
	if (level)
		d->stats.irqs++;
	m.u.irq.line = d->gsi;
	m.u.irq.level = (uint32_t)level;
	d->sink.send(d->sink.opaque, &m);
}

static void publish_shadow(void *opaque, enum virtio_mmio_shadow which, uint32_t value)
{
	struct net_device *d = opaque;
	atomic_store_explicit(&d->page->shadow[which], value, memory_order_relaxed);
}

/* ---- life ---- */

int net_device_init(struct net_device *d, const struct net_config *cfg, struct net_sink sink)
{
	memset(d, 0, offsetof(struct net_device, frame));
	d->cfg = *cfg;
	d->sink = sink;
	d->rx_tail = &d->rx_head;
	d->rx_held = calloc(NET_RX_HELD_MAX, sizeof(*d->rx_held));
	if (!d->rx_held)
		return -1;
	d->vdev = (struct virtio_dev){
		.device_id = 1,
		.device_features = offered_features,
		.num_queues = 2,
		.queue_max = {VIRTIO_NET_QUEUE_SIZE, VIRTIO_NET_QUEUE_SIZE},
		.config_size = VIRTIO_NET_CFG_SIZE,
		.opaque = d,
		.config_read = config_read,
		.config_write = config_write,
		.queue_notify = queue_notify,
		.reset = driver_reset,
		.irq = set_irq,
		.publish_shadow = publish_shadow,
	};
	return 0;
}

void net_device_destroy(struct net_device *d)
{
	backend_destroy(d->backend);
	d->backend = NULL;
	rx_queue_clear(d);
	free(d->rx_held);
	d->rx_held = NULL;
}

static bool net_state_valid(const struct net_state *s)
{
	return s->magic == NET_STATE_MAGIC && s->size == sizeof(*s) &&
	       (s->link == 0 || s->link == VIRTIO_NET_S_LINK_UP);
}

static void ops_hello(void *dev, struct ipc_hello *h)
{
	memset(h, 0, sizeof(*h));
	strcpy(h->name, "net");
	/* base 0 and line ANY: a virtio-mmio slot from the board */
	h->ranges[h->nranges++] = (struct ipc_range){.space = IPC_SPACE_MMIO, .base = 0,
						     .size = IPC_VIRTIO_MMIO_SIZE,
						     .kind = IPC_RANGE_VIRTIO_MMIO, .has_irq = true, .irq = 0};
	h->irqs[h->nirqs++] = (struct ipc_irq_line){.gsi = IPC_IRQ_ANY, .trigger = IPC_TRIGGER_LEVEL};
	h->nregs = virtio_mmio_hello_regs(0, 0, h->regs);
	/* The vCPU does not wait for the ring to be taken: Linux's virtio_net
	 * never spins on the device (its transmit completions are reaped
	 * later, receive buffers are only posted). */
	virtio_mmio_hello_doorbell(h->regs, NET_DOORBELL, false);
}

static void ops_attach(void *dev, struct ipc_state_page *page, const struct guest_mem *ram,
		       const struct ipc_welcome *w)
{
	struct net_device *d = dev;
	d->page = page;
	d->state = (struct net_state *)((uint8_t *)page + IPC_STATE_DEV_OFFSET);
	d->base = w->range_base[0];
	d->gsi = w->irq_gsi[0];
	d->vdev.mem = ram;
	d->vdev.state = &d->state->vio;
	d->rx_nheld = 0; /* chains a previous attach held are not ours now */
	d->rx_held_room = 0;
	page->version = IPC_PROTO_VERSION;
	bool resumed = (w->flags & IPC_WELCOME_RESUMED) && net_state_valid(d->state);
	if (resumed) {
		/* Tell the driver, as a vhost-user reconnect does: the link went
		 * down (its connections are gone) and comes back soon. */
		d->state->link = 0;
		d->link_up_at_ns = host_now_ns() + LINK_DOWN_MAX_NS;
		d->hold_sockets_until_ns = UINT64_MAX;
		resumed = virtio_mmio_restart(&d->vdev);
	}
	if (!resumed) {
		if (w->flags & IPC_WELCOME_RESUMED)
			virtio_mmio_restart(&d->vdev); /* logs, and asks the driver to reset */
		else
			virtio_mmio_init(&d->vdev);
		d->state->magic = NET_STATE_MAGIC;
		d->state->size = sizeof(*d->state);
		d->state->link = VIRTIO_NET_S_LINK_UP;
		memset(d->state->guest_ip, 0, 4);
		d->link_up_at_ns = 0;
		d->hold_sockets_until_ns = 0;
	}
	__atomic_store_n(&page->magic, IPC_STATE_MAGIC, __ATOMIC_RELEASE);
	if (resumed) {
		announce_guest(d);
		virtio_mmio_config_changed(&d->vdev);
	}
}

static uint64_t ops_read(void *dev, const struct ipc_io *io)
{
	struct net_device *d = dev;
	uint64_t off = io->addr - d->base;
	if (io->space != IPC_SPACE_MMIO || off >= VIRTIO_MMIO_WINDOW_SIZE) {
		log_once("ignoring a read of %#llx, which is not ours", (unsigned long long)io->addr);
		return 0;
	}
	return virtio_mmio_read(&d->vdev, off, io->size);
}

static void ops_write(void *dev, const struct ipc_io *io)
{
	struct net_device *d = dev;
	uint64_t off = io->addr - d->base;
	if (io->space != IPC_SPACE_MMIO || off >= VIRTIO_MMIO_WINDOW_SIZE) {
		log_once("ignoring a write to %#llx, which is not ours", (unsigned long long)io->addr);
		return;
	}
	virtio_mmio_write(&d->vdev, off, io->size, io->data);
}

/* QueueNotify rung as a doorbell (devlib's doorbell thread).  A transmit
 * gave libslirp frames while the loop sleeps in a poll of the sockets and
 * with the deadline libslirp asked for before: an acknowledge from the guest
 * may have made room to read a socket again, a SYN opened a socket to
 * watch, a delayed ACK armed a 2 ms timer.  So the loop asks libslirp again
 * (once until it has). */
static void ops_doorbell(void *dev, unsigned doorbell, uint32_t bits)
{
	struct net_device *d = dev;
	if (doorbell != NET_DOORBELL)
		return;
	d->stats.doorbells++;
	d->backend_fed = false;
	virtio_mmio_doorbell(&d->vdev, bits);
	if (d->backend_fed && !d->loop_woken) {
		d->loop_woken = true;
		d->stats.loop_wakes++;
		d->sink.wake(d->sink.opaque);
	}
}

/* The machine reset: the device starts afresh, link up. */
static void ops_reset(void *dev)
{
	struct net_device *d = dev;
	driver_reset(d);
	virtio_mmio_init(&d->vdev);
	d->state->link = VIRTIO_NET_S_LINK_UP;
	memset(d->state->guest_ip, 0, 4);
	d->link_up_at_ns = 0;
	d->hold_sockets_until_ns = 0;
}

static size_t ops_poll_prepare(void *dev, struct host_pollfd *fds, size_t max, uint64_t *deadline_ns)
{
	struct net_device *d = dev;
	uint64_t now = host_now_ns();
	d->loop_woken = false;
	if (d->link_up_at_ns && d->link_up_at_ns < *deadline_ns)
		*deadline_ns = d->link_up_at_ns;
	d->polled = NULL;
	d->npolled = 0;
	if (d->hold_sockets_until_ns && now >= d->hold_sockets_until_ns)
		d->hold_sockets_until_ns = 0;
	if (d->hold_sockets_until_ns) {
		if (d->hold_sockets_until_ns < *deadline_ns)
			*deadline_ns = d->hold_sockets_until_ns;
		return 0;
	}
	if (!d->backend)
		return 0;
	struct backend_pollfd *bfds;
	size_t n = backend_fill_pollfds(d->backend, &bfds);
	if (n > max) {
		log_once("libslirp watches %zu sockets, more than the %zu polled", n, max);
		n = max;
	}
	d->polled = bfds;
	d->npolled = n;
	for (size_t i = 0; i < n; i++) {
		unsigned ev = 0;
		if (bfds[i].events & (BACKEND_POLL_IN | BACKEND_POLL_PRI))
			ev |= HOST_POLLIN;
		if (bfds[i].events & BACKEND_POLL_OUT)
			ev |= HOST_POLLOUT;
		fds[i] = (struct host_pollfd){.fd = bfds[i].fd, .events = ev};
	}
	uint64_t timer = now + (uint64_t)backend_next_timeout_ms(d->backend) * 1000000;
	if (timer < *deadline_ns)
		*deadline_ns = timer;
	return n;
}

static void ops_poll_dispatch(void *dev, const struct host_pollfd *fds, size_t n)
{
	struct net_device *d = dev;
	if (d->backend && d->polled) {
		/* poll_prepare's fill, index for index (a new fill could
		 * order the sockets differently) */
		struct backend_pollfd *bfds = d->polled;
		for (size_t i = 0; i < n && i < d->npolled; i++) {
			int rev = 0;
			if (fds[i].revents & HOST_POLLIN)
				rev |= BACKEND_POLL_IN;
			if (fds[i].revents & HOST_POLLOUT)
				rev |= BACKEND_POLL_OUT;
			if (fds[i].revents & HOST_POLLERR)
				rev |= BACKEND_POLL_ERR;
			if (fds[i].revents & HOST_POLLHUP)
				rev |= BACKEND_POLL_HUP;
			bfds[i].revents = rev;
		}
		backend_poll_done(d->backend, false);
		backend_run_timers(d->backend);
	}
	if (d->link_up_at_ns && host_now_ns() >= d->link_up_at_ns) {
		d->link_up_at_ns = 0;
		d->state->link = VIRTIO_NET_S_LINK_UP;
		virtio_mmio_config_changed(&d->vdev);
		d->hold_sockets_until_ns = host_now_ns() + LINK_SETTLE_NS;
	}
	net_rx_flush(d);
}

const struct dev_ops net_dev_ops = {
	.hello = ops_hello,
	.attach = ops_attach,
	.read = ops_read,
	.write = ops_write,
	.reset = ops_reset,
	.doorbell = ops_doorbell,
	.poll_prepare = ops_poll_prepare,
	.poll_dispatch = ops_poll_dispatch,
};
