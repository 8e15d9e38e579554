/* virtqueue.c - split virtqueues against a hostile driver (virtqueue.h). */
#include "virtqueue.h"

#include <string.h>

#include "le.h"

/* Ring offsets (virtio 1.2, 2.7.6 and 2.7.8) */
#define AVAIL_FLAGS 0
#define AVAIL_IDX 2
#define AVAIL_RING 4
#define USED_FLAGS 0
#define USED_IDX 2
#define USED_RING 4

static uint64_t avail_size(uint32_t num) { return 6 + 2ull * num; } /* + used_event */
static uint64_t used_size(uint32_t num) { return 6 + 8ull * num; }  /* + avail_event */

bool virtq_rings_valid(const struct virtio_dev *dev, const struct virtq_state *vq)
{
	const struct guest_mem *m = dev->mem;
	return vq->desc % 16 == 0 && vq->avail % 2 == 0 && vq->used % 4 == 0 &&
	       guest_mem_ptr(m, vq->desc, (uint64_t)VIRTQ_DESC_SIZE * vq->num) &&
	       guest_mem_ptr(m, vq->avail, avail_size(vq->num)) &&
	       guest_mem_ptr(m, vq->used, used_size(vq->num));
}

/* The 16-bit ring indexes and flags are shared with running vCPUs: one
 * aligned atomic access each (a byte-wise copy could tear an index the
 * guest is incrementing), in the ring's little-endian byte order.  The
 * rings were checked to lie in RAM and be aligned when the queue became
 * ready, and guest RAM never shrinks. */
static uint16_t ring_load16(const struct virtio_dev *dev, uint64_t gpa)
{
	const uint16_t *p = guest_mem_ptr(dev->mem, gpa, 2);
	uint16_t raw = __atomic_load_n(p, __ATOMIC_ACQUIRE);
	return le16((const uint8_t *)&raw);
}

static void ring_store16(const struct virtio_dev *dev, uint64_t gpa, uint16_t value)
{
	uint16_t *p = guest_mem_ptr(dev->mem, gpa, 2);
	uint16_t raw;
	put_le16((uint8_t *)&raw, value);
	__atomic_store_n(p, raw, __ATOMIC_RELEASE);
	guest_mem_written(dev->mem, gpa, 2);
}

static uint64_t used_event_gpa(const struct virtq_state *vq)
{
	return vq->avail + AVAIL_RING + 2ull * vq->num;
}

static uint64_t avail_event_gpa(const struct virtq_state *vq)
{
	return vq->used + USED_RING + (uint64_t)VIRTQ_USED_ELEM_SIZE * vq->num;
}

/* ---- popping a chain ---- */

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

/* Entry i of the descriptor table at gpa, copied out once. */
static bool read_desc(const struct virtio_dev *dev, uint64_t table, uint32_t i, struct desc *d)
{
	uint8_t raw[VIRTQ_DESC_SIZE];
	if (!guest_mem_read(dev->mem, table + (uint64_t)i * VIRTQ_DESC_SIZE, raw, sizeof(raw)))
		return false;
	d->addr = le64(raw);
	d->len = le32(raw + 8);
	d->flags = le16(raw + 12);
	d->next = le16(raw + 14);
	return true;
}

/* Walk the chain at head into c; NULL, or why the ring is bad. */
static const char *walk_chain(struct virtio_dev *dev, const struct virtq_state *vq, uint16_t head,
			      struct virtq_chain *c)
{
	uint64_t table = vq->desc;
	uint32_t table_len = vq->num, i = head, visited = 0;
	bool indirect = false;
	memset(c, 0, offsetof(struct virtq_chain, range));
	c->head = head;
	for (;;) {
		struct desc d;
		if (!read_desc(dev, table, i, &d))
			return "a descriptor outside guest RAM";
		if (++visited > table_len)
			return "a descriptor chain that loops";
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (indirect)
				return "a nested indirect descriptor";
			if (!virtio_has_feature(dev, VIRTIO_F_INDIRECT_DESC))
				return "an indirect descriptor without VIRTIO_F_INDIRECT_DESC";
			if (visited != 1 || (d.flags & VIRTQ_DESC_F_NEXT))
				return "an indirect descriptor that is not a chain of its own";
			if (!d.len || d.len % VIRTQ_DESC_SIZE || d.len / VIRTQ_DESC_SIZE > vq->num)
				return "an indirect table of a bad size";
			if (!guest_mem_ptr(dev->mem, d.addr, d.len))
				return "an indirect table outside guest RAM";
			table = d.addr;
			table_len = d.len / VIRTQ_DESC_SIZE;
			i = 0;
			visited = 0;
			indirect = true;
			continue;
		}
		if (!guest_mem_ptr(dev->mem, d.addr, d.len))
			return "a buffer outside guest RAM";
		bool writable = d.flags & VIRTQ_DESC_F_WRITE;
		if (!writable && c->nwrite)
			return "a readable buffer after a writable one";
		if (d.len) {
			if (c->nread + c->nwrite == VIRTQ_CHAIN_MAX)
				return "a chain of more buffers than the device takes";
			c->range[c->nread + c->nwrite] = (struct virtq_range){d.addr, d.len};
			if (writable) {
				c->nwrite++;
				c->write_len += d.len;
			} else {
				c->nread++;
				c->read_len += d.len;
			}
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return NULL;
		if (d.next >= table_len)
			return "a descriptor's next out of range";
		i = d.next;
	}
}

bool virtq_pop(struct virtio_dev *dev, unsigned q, struct virtq_chain *c)
{
	if (!virtio_queue_live(dev, q))
		return false;
	struct virtq_state *vq = &dev->state->queue[q];
	uint16_t avail_idx = ring_load16(dev, vq->avail + AVAIL_IDX); /* acquire: ring entries after */
	uint16_t pending = (uint16_t)(avail_idx - vq->last_avail_idx);
	if (!pending) {
		/* Empty: the driver will notify for the next chain only if it
		 * sees the avail_event our last pop stored, and the CPU may
		 * have let our avail index load pass that store.  Store it
		 * again behind a full fence and look once more, as vhost's
		 * enable_notify does (without this, Linux's hvc0 console
		 * once spun for ever waiting for a transmit buffer). */
		if (vq->notify_off || !virtq_enable_notify(dev, q))
			return false;
		avail_idx = ring_load16(dev, vq->avail + AVAIL_IDX);
		pending = (uint16_t)(avail_idx - vq->last_avail_idx);
	}
	if (pending > vq->num) {
		virtio_mmio_needs_reset(dev, "the avail index ran more than the queue size ahead");
		return false;
	}
	uint16_t head = ring_load16(dev, vq->avail + AVAIL_RING + 2ull * (vq->last_avail_idx % vq->num));
	const char *bad = head < vq->num ? walk_chain(dev, vq, head, c) : "an avail entry out of range";
	if (bad) {
		virtio_mmio_needs_reset(dev, bad);
		return false;
	}
	vq->last_avail_idx++;
	/* EVENT_IDX: the driver notifies when it makes entry avail_event
	 * available; ask for the next one we have not seen. */
	if (!vq->notify_off && virtio_has_feature(dev, VIRTIO_F_EVENT_IDX))
		ring_store16(dev, avail_event_gpa(vq), vq->last_avail_idx);
	return true;
}

/* ---- copying ---- */

/* Copy between buf and the ranges [first, first + n) of c, from offset bytes
 * into them; to_guest chooses the direction. */
static size_t chain_copy(const struct virtio_dev *dev, const struct virtq_range *r, unsigned n,
			 uint64_t offset, uint8_t *buf, size_t len, bool to_guest)
{
	size_t done = 0;
	for (unsigned k = 0; k < n && done < len; k++) {
		if (offset >= r[k].len) {
			offset -= r[k].len;
			continue;
		}
		size_t piece = r[k].len - offset;
		if (piece > len - done)
			piece = len - done;
		bool ok = to_guest ? guest_mem_write(dev->mem, r[k].gpa + offset, buf + done, piece)
				   : guest_mem_read(dev->mem, r[k].gpa + offset, buf + done, piece);
		if (!ok) /* cannot happen: the ranges were checked in RAM */
			break;
		done += piece;
		offset = 0;
	}
	return done;
}

size_t virtq_chain_read(const struct virtio_dev *dev, const struct virtq_chain *c,
			uint64_t offset, void *dst, size_t len)
{
	return chain_copy(dev, c->range, c->nread, offset, dst, len, false);
}

size_t virtq_chain_write(const struct virtio_dev *dev, const struct virtq_chain *c,
			 uint64_t offset, const void *src, size_t len)
{
	return chain_copy(dev, c->range + c->nread, c->nwrite, offset, (uint8_t *)src, len, true);
}

/* ---- returning it ---- */

void virtq_push(struct virtio_dev *dev, unsigned q, const struct virtq_chain *c, uint32_t written)
{
	if (!virtio_queue_live(dev, q))
		return;
	struct virtq_state *vq = &dev->state->queue[q];
	uint8_t elem[VIRTQ_USED_ELEM_SIZE];
	put_le32(elem, c->head);
	put_le32(elem + 4, written < c->write_len ? written : (uint32_t)c->write_len);
	uint64_t slot = vq->used + USED_RING + (uint64_t)VIRTQ_USED_ELEM_SIZE * (vq->used_idx % vq->num);
	guest_mem_write(dev->mem, slot, elem, sizeof(elem));
	/* Release: the driver that sees the new index sees the element and
	 * everything written into the buffers. */
	ring_store16(dev, vq->used + USED_IDX, (uint16_t)(vq->used_idx + 1));
	vq->used_idx++;
}

/* vring_need_event (virtio 1.2, 2.7.10): did the used index pass
 * used_event on its way from old to new? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool virtq_notify_needed(struct virtio_dev *dev, unsigned q)
{
	if (!virtio_queue_live(dev, q))
		return false;
	struct virtq_state *vq = &dev->state->queue[q];
	/* Full fence: our used index store before the driver's flags/event
	 * load, against the driver's event store before its used index load. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!virtio_has_feature(dev, VIRTIO_F_EVENT_IDX))
		return !(ring_load16(dev, vq->avail + AVAIL_FLAGS) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	bool had_old = vq->signalled_used_valid;
	uint16_t old_idx = vq->signalled_used;
	vq->signalled_used = vq->used_idx;
	vq->signalled_used_valid = 1;
	if (!had_old)
		return true;
	return need_event(ring_load16(dev, used_event_gpa(vq)), vq->used_idx, old_idx);
}

void virtq_signal_used(struct virtio_dev *dev, unsigned q)
{
	if (virtq_notify_needed(dev, q))
		virtio_mmio_interrupt(dev, VIRTIO_MMIO_INT_VRING);
}

/* ---- notification suppression ---- */

void virtq_disable_notify(struct virtio_dev *dev, unsigned q)
{
	if (!virtio_queue_live(dev, q))
		return;
	struct virtq_state *vq = &dev->state->queue[q];
	vq->notify_off = 1;
	/* With EVENT_IDX, an avail_event left behind means the same: the
	 * driver notifies only on reaching it, which popping no longer moves. */
	if (!virtio_has_feature(dev, VIRTIO_F_EVENT_IDX))
		ring_store16(dev, vq->used + USED_FLAGS, VIRTQ_USED_F_NO_NOTIFY);
}

bool virtq_enable_notify(struct virtio_dev *dev, unsigned q)
{
	if (!virtio_queue_live(dev, q))
		return false;
	struct virtq_state *vq = &dev->state->queue[q];
	vq->notify_off = 0;
	if (virtio_has_feature(dev, VIRTIO_F_EVENT_IDX))
		ring_store16(dev, avail_event_gpa(vq), vq->last_avail_idx);
	else
		ring_store16(dev, vq->used + USED_FLAGS, 0);
	/* Full fence: our store before the avail index load, against the
	 * driver's avail index store before its flags/event load. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return ring_load16(dev, vq->avail + AVAIL_IDX) != vq->last_avail_idx;
}

bool virtq_avail_idx(const struct virtio_dev *dev, unsigned q, uint16_t *idx)
{
	if (!virtio_queue_live(dev, q))
		return false;
	*idx = ring_load16(dev, dev->state->queue[q].avail + AVAIL_IDX);
	return true;
}

/* ---- restart ---- */

bool virtq_resume(struct virtio_dev *dev, unsigned q)
{
	struct virtq_state *vq = &dev->state->queue[q];
	uint16_t ring_idx = ring_load16(dev, vq->used + USED_IDX);
	uint16_t ahead = (uint16_t)(ring_idx - vq->used_idx);
	if (ahead > (uint16_t)(vq->last_avail_idx - vq->used_idx))
		return false;
	vq->used_idx = ring_idx;
	return true;
}

unsigned virtq_return_in_flight(struct virtio_dev *dev, unsigned q)
{
	if (!virtio_queue_live(dev, q))
		return 0;
	struct virtq_state *vq = &dev->state->queue[q];
	unsigned returned = 0;
	while (vq->used_idx != vq->last_avail_idx) {
		/* The driver leaves an entry alone until it is used; one that
		 * changed anyway is the driver's own corruption. */
		struct virtq_chain c = {
			.head = ring_load16(dev, vq->avail + AVAIL_RING + 2ull * (vq->used_idx % vq->num))};
		if (c.head >= vq->num) {
			virtio_mmio_needs_reset(dev, "an in-flight avail entry changed to one out of range");
			break;
		}
		virtq_push(dev, q, &c, 0);
		returned++;
	}
	return returned;
}
