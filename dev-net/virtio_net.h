/* virtio_net.h - dev-net's device: virtio-net (virtio 1.2, 5.1) on the
 * virtio-mmio transport, with a libslirp NAT behind it, as a devlib device.
 *
 * Queues: 0 receive (frames for the guest), 1 transmit.  Features: MAC,
 * STATUS (link state), MTU, MRG_RXBUF, CSUM (the guest may leave checksums
 * partial: completed before libslirp), GUEST_CSUM (frames for the guest are
 * marked DATA_VALID: libslirp's checksums are always complete), HOST_TSO4
 * (the guest may send TCP/IPv4 segments up to 64 KiB whatever the MTU:
 * libslirp takes them whole, so they are not cut into MTU-sized frames).
 *
 * Frames from libslirp wait in a bounded queue until the guest posts
 * receive buffers (beyond the bound they are dropped: TCP retransmits).
 *
 * The state page holds the transport (virtio_mmio_state) and the link
 * state, so a restarted process resumes the guest's driver without a reset
 * and tells it, through STATUS and a config interrupt, that the link went
 * down and came back (as QEMU does on a vhost-user reconnect).
 *
 * QueueNotify is a doorbell where the host has shared-memory waits
 * (virtio_mmio_hello_doorbell; elsewhere a posted write): devlib's doorbell
 * thread runs the queues, and a transmit feeds libslirp from there.  Every
 * call here, on either thread, holds the device lock (devlib.h), which is
 * what keeps libslirp (not thread-safe) on one thread at a time.  The guest's
 * rings and every message are hostile (virtqueue.h checks the rings). */
#ifndef MINIVM_VIRTIO_NET_H
#define MINIVM_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devlib.h"
#include "net_config.h"
#include "slirp_backend.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

/* Feature bits (virtio 1.2, 5.1.3) */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

#define VIRTIO_NET_S_LINK_UP 1u

/* struct virtio_net_hdr with VERSION_1: 12 bytes, num_buffers included */
#define VIRTIO_NET_HDR_LEN 12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1u
#define VIRTIO_NET_HDR_F_DATA_VALID 2u
#define VIRTIO_NET_HDR_GSO_NONE 0u
#define VIRTIO_NET_HDR_GSO_TCPV4 1u

/* Config space: mac[6], status u16, max_virtqueue_pairs u16, mtu u16 */
#define VIRTIO_NET_CFG_MAC 0
#define VIRTIO_NET_CFG_STATUS 6
#define VIRTIO_NET_CFG_MAX_PAIRS 8
#define VIRTIO_NET_CFG_MTU 10
#define VIRTIO_NET_CFG_SIZE 12

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
#define VIRTIO_NET_QUEUE_SIZE 256

/* Frames waiting for receive buffers: at most this many, and this many
 * bytes (a 64 KiB TCP window of full-size frames, with room to spare). */
#define NET_RX_QUEUE_FRAMES 512
#define NET_RX_QUEUE_BYTES (4u << 20)
/* Receive chains popped for a frame not yet complete (MRG_RXBUF with small
 * buffers: a 64 KiB frame in 1.5 KiB buffers takes 44). */
#define NET_RX_HELD_MAX 64

/* Ethernet header + the largest IP packet: the largest frame either way. */
#define NET_FRAME_MAX (14 + 65535)

/* What the device keeps in the state page after the transport. */
struct net_state {
	struct virtio_mmio_state vio;
	uint32_t magic; /* NET_STATE_MAGIC */
	uint32_t size;  /* sizeof(struct net_state) */
	uint16_t link;  /* config status: VIRTIO_NET_S_LINK_UP or 0 */
	uint16_t reserved;
	/* The guest's IPv4 address as its frames last said (0: none yet): a
	 * restarted NAT learns its ARP entry at once instead of asking a
	 * guest whose link is still coming back. */
	uint8_t guest_ip[4];
};

struct net_rx_frame {
	struct net_rx_frame *next;
	size_t len;
	uint8_t data[]; /* Ethernet frame */
};

/* Where the device's effects go: the devlib loop in the process, a fake in
 * the tests and the fuzz target. */
struct net_sink {
	bool (*send)(void *opaque, struct ipc_msg *m); /* IRQ messages (dev_send) */
	/* Make the loop ask libslirp for its sockets and timers again: frames
	 * given to it off the loop (a doorbell) may have changed them. */
	void (*wake)(void *opaque);
	void *opaque;
};

/* What MINIVM_STATS=1 prints at exit (main.c). */
struct net_stats {
	uint64_t doorbells;     /* doorbell rings taken (each may stand for several) */
	uint64_t tx_frames;     /* frames from the guest */
	uint64_t rx_frames;     /* frames into the guest's receive buffers */
	uint64_t irqs;          /* times the interrupt line was raised */
	uint64_t loop_wakes;    /* sink.wake calls */
};

struct net_device {
	struct net_config cfg; /* checked (net_config_check) */
	struct net_sink sink;
	struct virtio_dev vdev;
	struct ipc_state_page *page;
	struct net_state *state;
	uint64_t base; /* where the core placed the MMIO window */
	uint32_t gsi;
	struct slirp_backend *backend; /* set by the process before dev_run */
	struct backend_pollfd *polled; /* the backend's sockets of the last poll_prepare */
	size_t npolled;

	/* frames for the guest, oldest first */
	struct net_rx_frame *rx_head, **rx_tail;
	unsigned rx_frames;
	size_t rx_bytes;
	/* receive chains popped but not yet used (one frame's worth at most) */
	struct virtq_chain *rx_held;
	unsigned rx_nheld;
	uint64_t rx_held_room;

	/* Set by a transmit that gave libslirp frames, cleared by each doorbell
	 * before it runs the queues: whether that doorbell must wake the loop. */
	bool backend_fed;
	bool loop_woken; /* a doorbell woke the loop, which has not polled again yet */
	struct net_stats stats;

	uint64_t link_up_at_ns; /* a restart's link-up is due then (0: none) */
	uint64_t hold_sockets_until_ns; /* libslirp's sockets not polled before (0: none) */
	uint8_t frame[VIRTIO_NET_HDR_LEN + NET_FRAME_MAX]; /* one guest frame */
};

/* A device for cfg; the caller creates its backend (net_frame_out, d).  -1 if out of memory. */
int net_device_init(struct net_device *d, const struct net_config *cfg, struct net_sink sink);
void net_device_destroy(struct net_device *d);

extern const struct dev_ops net_dev_ops;

/* A frame libslirp sends to the guest: queued, then delivered as receive
 * buffers allow (backend_frame_out_fn). */
void net_frame_out(const uint8_t *frame, size_t len, void *opaque);
/* Move queued frames into receive buffers and interrupt the guest. */
void net_rx_flush(struct net_device *d);

#endif
