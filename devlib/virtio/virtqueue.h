/* virtqueue.h - split virtqueues (virtio 1.2, 2.7) for devices built on
 * virtio_mmio.h: pop a descriptor chain as a validated list of guest ranges,
 * copy to and from it, return it through the used ring, and interrupt the
 * driver only when it asked (VIRTIO_F_EVENT_IDX, VIRTQ_AVAIL_F_NO_INTERRUPT).
 *
 * The rings are in guest memory, which the guest may change at any time:
 * every index and descriptor is copied out once, then validated — inside
 * guest RAM, next in range, no loops (a chain never visits more descriptors
 * than its table holds), writable buffers after readable ones, indirect
 * tables only at the head, not nested, a multiple of 16 bytes and at most
 * QueueNum entries, the avail index never more than QueueNum ahead.  A
 * violation makes the device need reset (virtio_mmio_needs_reset) and every
 * later call here does nothing until the driver resets it.
 *
 * One thread at a time per device (the library keeps no locks); the guest's
 * vCPUs run concurrently, and the fences here order our ring accesses
 * against theirs. */
#ifndef MINIVM_VIRTQUEUE_H
#define MINIVM_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio_mmio.h"

/* Ring layout (virtio 1.2, 2.7.5 - 2.7.8) */
#define VIRTQ_DESC_F_NEXT 1u
#define VIRTQ_DESC_F_WRITE 2u
#define VIRTQ_DESC_F_INDIRECT 4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY 1u
#define VIRTQ_DESC_SIZE 16
#define VIRTQ_USED_ELEM_SIZE 8

/* Guest buffers of one chain, at most this many (zero-length descriptors are
 * not counted).  Linux's drivers use a handful (virtio-net: at most
 * MAX_SKB_FRAGS + 2 = 19); a longer chain makes the device need reset. */
#define VIRTQ_CHAIN_MAX 128

struct virtq_range {
	uint64_t gpa; /* wholly inside guest RAM */
	uint32_t len;
};

struct virtq_chain {
	uint16_t head;   /* descriptor index, what virtq_push returns to the driver */
	unsigned nread;  /* range[0 .. nread): device-readable */
	unsigned nwrite; /* range[nread .. nread + nwrite): device-writable */
	uint64_t read_len, write_len; /* total bytes of each part */
	struct virtq_range range[VIRTQ_CHAIN_MAX];
};

/* The next available chain of queue q into *c: true, or false when there is
 * none, the queue is not live, or the ring is bad (the device then needs
 * reset).  Finding the ring empty, it asks the driver to notify its next
 * chain (unless the device disabled notifications) and looks once more
 * behind a full fence, so a chain posted meanwhile is not missed: a device
 * that just wants the next chain or a notify needs nothing else. */
bool virtq_pop(struct virtio_dev *dev, unsigned q, struct virtq_chain *c);

/* Copy up to len bytes from the chain's readable part, starting offset bytes
 * into it; returns the number copied. */
size_t virtq_chain_read(const struct virtio_dev *dev, const struct virtq_chain *c,
			uint64_t offset, void *dst, size_t len);
/* Copy up to len bytes into the chain's writable part at offset; returns the
 * number copied. */
size_t virtq_chain_write(const struct virtio_dev *dev, const struct virtq_chain *c,
			 uint64_t offset, const void *src, size_t len);

/* Return chain c to the driver through queue q's used ring, saying written
 * bytes were written (clamped to c->write_len).  No interrupt: call
 * virtq_signal_used after a batch. */
void virtq_push(struct virtio_dev *dev, unsigned q, const struct virtq_chain *c, uint32_t written);

/* Whether the driver wants a used buffer notification for what was pushed
 * since the last one (EVENT_IDX's used_event, else NO_INTERRUPT).  Records
 * the decision point, so call it once per notification decision. */
bool virtq_notify_needed(struct virtio_dev *dev, unsigned q);
/* Raise the used buffer interrupt if virtq_notify_needed says so. */
void virtq_signal_used(struct virtio_dev *dev, unsigned q);

/* Ask the driver not to notify queue q (the device is polling it), or to
 * notify it again.  virtq_enable_notify returns true if buffers became
 * available meanwhile: the device must look again, no notify will come for
 * them. */
void virtq_disable_notify(struct virtio_dev *dev, unsigned q);
bool virtq_enable_notify(struct virtio_dev *dev, unsigned q);

/* The driver's avail index of live queue q (how many chains it has made
 * available, free-running) into *idx; false if q is not live. */
bool virtq_avail_idx(const struct virtio_dev *dev, unsigned q, uint16_t *idx);

/* Whether the ring of a ready queue is well placed for its size: aligned
 * and inside guest RAM (checked when the driver sets QueueReady, and on a
 * resumed state). */
bool virtq_rings_valid(const struct virtio_dev *dev, const struct virtq_state *vq);

/* A resumed queue: adopt the used ring's index if the dead process
 * published used entries it had not yet counted; false if that index is
 * impossible. */
bool virtq_resume(struct virtio_dev *dev, unsigned q);

/* Give back, empty, the chains of live queue q a dead process popped but
 * never pushed; returns how many.  They are the avail ring's entries from
 * used_idx to last_avail_idx because every device completes its chains in
 * the order it popped them: a device built on this library must keep it so. */
unsigned virtq_return_in_flight(struct virtio_dev *dev, unsigned q);

#endif
