/* virtio_mmio.c - the virtio-mmio register file, feature negotiation,
 * interrupts and restart (virtio_mmio.h). */
#include "virtio_mmio.h"

#include <string.h>

#include "host.h"
#include "log.h"
#include "virtqueue.h"

#define STATUS_DRIVER_BITS                                                      \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK | \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_FAILED)
#define INT_BITS (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG)

static uint64_t offered_features(const struct virtio_dev *dev)
{
	return dev->device_features | VIRTIO_TRANSPORT_FEATURES;
}

/* What FEATURES_OK needs: only offered bits, and the modern interface. */
static bool features_acceptable(const struct virtio_dev *dev, uint64_t features)
{
	return !(features & ~offered_features(dev)) && (features >> VIRTIO_F_VERSION_1 & 1);
}

bool virtio_has_feature(const struct virtio_dev *dev, unsigned bit)
{
	return bit < 64 && (dev->state->status & VIRTIO_STATUS_FEATURES_OK) &&
	       (dev->state->driver_features >> bit & 1);
}

bool virtio_queue_live(const struct virtio_dev *dev, unsigned q)
{
	const struct virtio_mmio_state *s = dev->state;
	return (s->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) ==
		       VIRTIO_STATUS_DRIVER_OK &&
	       q < dev->num_queues && s->queue[q].ready;
}

/* ---- shadows and the interrupt line ---- */

static uint32_t shadow_value(const struct virtio_dev *dev, enum virtio_mmio_shadow which)
{
	const struct virtio_mmio_state *s = dev->state;
	switch (which) {
	case VIRTIO_SHADOW_MAGIC: return VIRTIO_MMIO_MAGIC;
	case VIRTIO_SHADOW_VERSION: return 2;
	case VIRTIO_SHADOW_DEVICE_ID: return dev->device_id;
	case VIRTIO_SHADOW_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case VIRTIO_SHADOW_INTERRUPT_STATUS: return s->interrupt_status;
	case VIRTIO_SHADOW_STATUS: return s->status;
	case VIRTIO_SHADOW_CONFIG_GENERATION: return s->config_generation;
	case VIRTIO_SHADOW_COUNT: break;
	}
	return 0;
}

static void publish(struct virtio_dev *dev, enum virtio_mmio_shadow which)
{
	dev->publish_shadow(dev->opaque, which, shadow_value(dev, which));
}

static void publish_all(struct virtio_dev *dev)
{
	for (unsigned i = 0; i < VIRTIO_SHADOW_COUNT; i++)
		publish(dev, i);
}

unsigned virtio_mmio_hello_regs(uint64_t base, unsigned first_slot, struct ipc_reg *regs)
{
	static const uint16_t shadowed[VIRTIO_SHADOW_COUNT] = {
		[VIRTIO_SHADOW_MAGIC] = VIRTIO_MMIO_MAGIC_VALUE,
		[VIRTIO_SHADOW_VERSION] = VIRTIO_MMIO_VERSION,
		[VIRTIO_SHADOW_DEVICE_ID] = VIRTIO_MMIO_DEVICE_ID,
		[VIRTIO_SHADOW_VENDOR_ID] = VIRTIO_MMIO_VENDOR_ID,
		[VIRTIO_SHADOW_INTERRUPT_STATUS] = VIRTIO_MMIO_INTERRUPT_STATUS,
		[VIRTIO_SHADOW_STATUS] = VIRTIO_MMIO_STATUS,
		[VIRTIO_SHADOW_CONFIG_GENERATION] = VIRTIO_MMIO_CONFIG_GENERATION,
	};
	for (unsigned i = 0; i < VIRTIO_SHADOW_COUNT; i++)
		regs[i] = (struct ipc_reg){.space = IPC_SPACE_MMIO, .size = 4, .flags = IPC_REG_SHADOW,
					   .slot = (uint8_t)(first_slot + i), .addr = base + shadowed[i]};
	regs[VIRTIO_SHADOW_COUNT] = (struct ipc_reg){.space = IPC_SPACE_MMIO, .size = 4,
						     .flags = IPC_REG_STREAM,
						     .addr = base + VIRTIO_MMIO_QUEUE_NOTIFY};
	regs[VIRTIO_SHADOW_COUNT + 1] = (struct ipc_reg){
		.space = IPC_SPACE_MMIO, .size = 4, .flags = IPC_REG_ACK_LOWERS,
		.slot = (uint8_t)(first_slot + VIRTIO_SHADOW_INTERRUPT_STATUS),
		.addr = base + VIRTIO_MMIO_INTERRUPT_ACK};
	return VIRTIO_MMIO_HELLO_REGS;
}

void virtio_mmio_hello_doorbell(struct ipc_reg *regs, unsigned doorbell, bool vcpu_waits)
{
	struct ipc_reg *notify = &regs[VIRTIO_SHADOW_COUNT];
	if (!host_shared_wait_supported())
		return;
	notify->flags = IPC_REG_DOORBELL | (vcpu_waits ? IPC_REG_DOORBELL_WAIT : 0);
	notify->slot = (uint8_t)doorbell;
}

/* The line is level-triggered: high exactly while InterruptStatus is not 0.
 * The shadow is published before the line moves, so the guest's handler
 * reads the new value without a round trip.
 *
 * The race with a posted ACK: the guest reads InterruptStatus from the
 * shadow, writes InterruptACK (posted: it reaches us later) and then reads
 * the used ring.  If we push and signal buffer B2 while that ACK is in
 * flight, the bit is already set so nothing seems to change — but the guest
 * may have read the used ring before B2 was there, and the ACK arriving
 * after B2 would clear the bit that stood for B2: a lost interrupt, the
 * driver waiting forever.  We cannot tell whether the guest's read of the
 * shadow came before or after B2 (the core answered it alone).  So a bit
 * signalled again while already pending is remembered in
 * interrupt_resignal, and the ACK that clears it sets it again: the line
 * stays high and the guest takes one more interrupt.  At worst that
 * interrupt finds nothing new (Linux counts it as unhandled, harmless);
 * never is one lost. */
static void set_interrupt_status(struct virtio_dev *dev, uint32_t status)
{
	struct virtio_mmio_state *s = dev->state;
	uint32_t old = s->interrupt_status;
	if (status == old)
		return;
	s->interrupt_status = status;
	s->interrupt_resignal &= status;
	publish(dev, VIRTIO_SHADOW_INTERRUPT_STATUS);
	if (!old != !status)
		dev->irq(dev->opaque, status != 0);
}

void virtio_mmio_interrupt(struct virtio_dev *dev, uint32_t bits)
{
	struct virtio_mmio_state *s = dev->state;
	bits &= INT_BITS;
	s->interrupt_resignal |= s->interrupt_status & bits;
	set_interrupt_status(dev, s->interrupt_status | bits);
}

/* The core may have lowered the line already when the ACK left the vCPU
 * (InterruptACK is declared IPC_REG_ACK_LOWERS: the guest's EOI then finds
 * the line low and takes no second, spurious interrupt).  So whatever is
 * still pending after the ACK — bits it did not clear, or a re-signal —
 * raises the line again; set_interrupt_status alone would not, since the
 * status stayed non-zero. */
static void interrupt_ack(struct virtio_dev *dev, uint32_t ack)
{
	struct virtio_mmio_state *s = dev->state;
	uint32_t again = s->interrupt_resignal & ack;
	s->interrupt_resignal &= ~ack;
	dev->acks_resignalled += again != 0;
	set_interrupt_status(dev, (s->interrupt_status & ~ack) | again);
	if (s->interrupt_status)
		dev->irq(dev->opaque, 1);
}

/* ---- lifecycle ---- */

static void fresh_state(struct virtio_dev *dev)
{
	struct virtio_mmio_state *s = dev->state;
	uint32_t generation = s->config_generation; /* keeps counting across resets */
	memset(s, 0, sizeof(*s));
	s->magic = VIRTIO_MMIO_STATE_MAGIC;
	s->size = sizeof(*s);
	s->config_generation = generation;
}

void virtio_mmio_init(struct virtio_dev *dev)
{
	memset(dev->state, 0, sizeof(*dev->state));
	fresh_state(dev);
	publish_all(dev);
	dev->irq(dev->opaque, 0);
}

/* The driver wrote 0 to Status. */
static void device_reset(struct virtio_dev *dev)
{
	fresh_state(dev);
	publish_all(dev);
	dev->irq(dev->opaque, 0);
	dev->reset(dev->opaque);
}

void virtio_mmio_needs_reset(struct virtio_dev *dev, const char *reason)
{
	struct virtio_mmio_state *s = dev->state;
	if (s->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_once("virtio device %u needs reset: %s", (unsigned)dev->device_id, reason);
	s->status |= VIRTIO_STATUS_NEEDS_RESET;
	publish(dev, VIRTIO_SHADOW_STATUS);
	if (s->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_mmio_interrupt(dev, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio_config_changed(struct virtio_dev *dev)
{
	struct virtio_mmio_state *s = dev->state;
	s->config_generation++;
	publish(dev, VIRTIO_SHADOW_CONFIG_GENERATION);
	if (s->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_mmio_interrupt(dev, VIRTIO_MMIO_INT_CONFIG);
}

/* A power of two no larger than the device's QueueNumMax for queue q. */
static bool queue_size_ok(const struct virtio_dev *dev, unsigned q, uint32_t num)
{
	return num && !(num & (num - 1)) && num <= dev->queue_max[q];
}

static bool queue_state_valid(const struct virtio_dev *dev, const struct virtio_mmio_state *s,
			      unsigned q)
{
	const struct virtq_state *vq = &s->queue[q];
	if (q >= dev->num_queues) { /* never written: still zero */
		static const struct virtq_state zero;
		return !memcmp(vq, &zero, sizeof(zero));
	}
	if (vq->ready > 1 || vq->signalled_used_valid > 1 || vq->notify_off > 1)
		return false;
	/* Not ready: num and the addresses are whatever the driver wrote (they
	 * are checked when it sets QueueReady); the indexes start at 0 then. */
	if (!vq->ready)
		return !vq->last_avail_idx && !vq->used_idx && !vq->signalled_used &&
		       !vq->signalled_used_valid && !vq->notify_off;
	/* Ready: set up after FEATURES_OK, a size the device allows, rings that
	 * fit, and no more buffers in flight than the ring holds. */
	return (s->status & VIRTIO_STATUS_FEATURES_OK) && queue_size_ok(dev, q, vq->num) &&
	       virtq_rings_valid(dev, vq) && (uint16_t)(vq->last_avail_idx - vq->used_idx) <= vq->num;
}

/* Device selectors and QueueSel take any value the driver writes (reads
 * through an out-of-range one give 0), so they need no check. */
bool virtio_mmio_state_valid(const struct virtio_dev *dev, const struct virtio_mmio_state *s)
{
	if (s->magic != VIRTIO_MMIO_STATE_MAGIC || s->size != sizeof(*s) || s->reserved)
		return false;
	if (s->status & ~(STATUS_DRIVER_BITS | VIRTIO_STATUS_NEEDS_RESET))
		return false;
	if ((s->status & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(dev, s->driver_features))
		return false;
	if ((s->status & VIRTIO_STATUS_DRIVER_OK) && !(s->status & VIRTIO_STATUS_FEATURES_OK))
		return false;
	if ((s->interrupt_status & ~INT_BITS) || (s->interrupt_resignal & ~s->interrupt_status))
		return false;
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		if (!queue_state_valid(dev, s, q))
			return false;
	return true;
}

/* Restart: the state was written by a process that may have died anywhere.
 *
 * In-flight buffers.  vhost-user backends restart by rewinding
 * last_avail_idx to the used index and popping again what the dead process
 * had popped.  That replays: a transmit buffer already written to the host
 * is written again (duplicated output), and a device that completes out of
 * order would pop a buffer it had already returned (a duplicate in the
 * guest's used ring, which drivers treat as corruption).  Keeping
 * last_avail_idx and forgetting those chains is no better: a driver may
 * wait for its buffer forever — Linux's hvc0 console spins, interrupts off,
 * until its transmit buffer comes back.  So the new process returns each of
 * them empty (virtq_return_in_flight): every buffer comes back, nothing is
 * delivered twice, and what was in flight is lost — output that may or may
 * not have reached the host, an empty receive buffer (virtio-net counts a
 * length error, virtio-console reads nothing).
 *
 * The used index: virtq_push writes the used element, then used->idx, then
 * state->used_idx.  A death between the last two leaves the ring ahead of
 * the state; virtq_resume adopts the ring's index when it lies between the
 * two counters. */
bool virtio_mmio_restart(struct virtio_dev *dev)
{
	struct virtio_mmio_state *s = dev->state;
	bool valid = virtio_mmio_state_valid(dev, s);
	for (unsigned q = 0; valid && q < dev->num_queues; q++)
		if (s->queue[q].ready && !virtq_resume(dev, q))
			valid = false;
	if (!valid) {
		log_once("virtio device %u: the saved state is not consistent; starting afresh",
			 (unsigned)dev->device_id);
		memset(s, 0, sizeof(*s));
		fresh_state(dev);
		s->status = VIRTIO_STATUS_NEEDS_RESET; /* tell a driver that was running */
		publish_all(dev);
		dev->irq(dev->opaque, 0);
		return false;
	}
	for (unsigned q = 0; q < dev->num_queues; q++)
		s->queue[q].signalled_used_valid = 0; /* the next signal interrupts: lose none */
	publish_all(dev);
	dev->irq(dev->opaque, s->interrupt_status != 0);
	for (unsigned q = 0; q < dev->num_queues; q++)
		if (virtq_return_in_flight(dev, q))
			virtq_signal_used(dev, q);
	for (unsigned q = 0; q < dev->num_queues; q++)
		if (virtio_queue_live(dev, q))
			dev->queue_notify(dev->opaque, q);
	return true;
}

/* ---- notifications ---- */

static void notify_queue(struct virtio_dev *dev, unsigned q)
{
	if (virtio_queue_live(dev, q))
		dev->queue_notify(dev->opaque, q);
}

void virtio_mmio_doorbell(struct virtio_dev *dev, uint32_t bits)
{
	for (unsigned q = 0; q < dev->num_queues && q < 32; q++)
		if (bits >> q & 1)
			notify_queue(dev, q);
}

/* ---- registers ---- */

static struct virtq_state *selected_queue(struct virtio_dev *dev)
{
	uint32_t q = dev->state->queue_sel;
	return q < dev->num_queues ? &dev->state->queue[q] : NULL;
}

static uint64_t config_read(struct virtio_dev *dev, uint64_t offset, unsigned size)
{
	if (offset + size > dev->config_size || !dev->config_read)
		return 0;
	return dev->config_read(dev->opaque, (uint32_t)offset, size);
}

static void config_write(struct virtio_dev *dev, uint64_t offset, unsigned size, uint64_t value)
{
	if (offset + size <= dev->config_size && dev->config_write)
		dev->config_write(dev->opaque, (uint32_t)offset, size, value);
}

static bool access_size_ok(uint64_t offset, unsigned size)
{
	if (offset >= VIRTIO_MMIO_WINDOW_SIZE || size > VIRTIO_MMIO_WINDOW_SIZE - offset)
		return false;
	if (offset >= VIRTIO_MMIO_CONFIG)
		return size == 1 || size == 2 || size == 4 || size == 8;
	if (size != 4 || offset % 4) {
		log_once("virtio-mmio: a %u-byte access at register 0x%x (registers take 32 bits)",
			 size, (unsigned)offset);
		return false;
	}
	return true;
}

uint64_t virtio_mmio_read(struct virtio_dev *dev, uint64_t offset, unsigned size)
{
	const struct virtio_mmio_state *s = dev->state;
	if (!access_size_ok(offset, size))
		return 0;
	if (offset >= VIRTIO_MMIO_CONFIG)
		return config_read(dev, offset - VIRTIO_MMIO_CONFIG, size);
	const struct virtq_state *vq = selected_queue(dev);
	switch (offset) {
	case VIRTIO_MMIO_MAGIC_VALUE: return shadow_value(dev, VIRTIO_SHADOW_MAGIC);
	case VIRTIO_MMIO_VERSION: return shadow_value(dev, VIRTIO_SHADOW_VERSION);
	case VIRTIO_MMIO_DEVICE_ID: return shadow_value(dev, VIRTIO_SHADOW_DEVICE_ID);
	case VIRTIO_MMIO_VENDOR_ID: return shadow_value(dev, VIRTIO_SHADOW_VENDOR_ID);
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return s->device_features_sel < 2
			       ? (uint32_t)(offered_features(dev) >> (32 * s->device_features_sel))
			       : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return vq ? dev->queue_max[s->queue_sel] : 0;
	case VIRTIO_MMIO_QUEUE_READY: return vq ? vq->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS: return s->interrupt_status;
	case VIRTIO_MMIO_STATUS: return s->status;
	case VIRTIO_MMIO_SHM_LEN_LOW: /* no shared memory regions: length all-ones */
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH: return 0xffffffffu;
	case VIRTIO_MMIO_CONFIG_GENERATION: return s->config_generation;
	default: return 0; /* write-only or reserved */
	}
}

/* Writes to a queue's configuration count only before it is ready. */
static void write_queue(struct virtio_dev *dev, uint64_t offset, uint32_t value)
{
	struct virtq_state *vq = selected_queue(dev);
	if (!vq || vq->ready)
		return;
	switch (offset) {
	case VIRTIO_MMIO_QUEUE_NUM: vq->num = value; break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: vq->desc = (vq->desc & ~0xffffffffull) | value; break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: vq->desc = (uint32_t)vq->desc | (uint64_t)value << 32; break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW: vq->avail = (vq->avail & ~0xffffffffull) | value; break;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: vq->avail = (uint32_t)vq->avail | (uint64_t)value << 32; break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW: vq->used = (vq->used & ~0xffffffffull) | value; break;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: vq->used = (uint32_t)vq->used | (uint64_t)value << 32; break;
	}
}

static void set_queue_ready(struct virtio_dev *dev, uint32_t value)
{
	struct virtio_mmio_state *s = dev->state;
	struct virtq_state *vq = selected_queue(dev);
	if (!vq || (value & 1) == vq->ready)
		return;
	if (!(value & 1)) { /* the driver takes the queue back */
		vq->ready = 0;
		vq->last_avail_idx = vq->used_idx = vq->signalled_used = 0;
		vq->signalled_used_valid = vq->notify_off = 0;
		return;
	}
	if (!(s->status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_mmio_needs_reset(dev, "a queue made ready before FEATURES_OK");
		return;
	}
	bool size_ok = queue_size_ok(dev, s->queue_sel, vq->num);
	if (!size_ok || !virtq_rings_valid(dev, vq)) {
		virtio_mmio_needs_reset(dev, size_ok ? "a queue's rings are misaligned or outside RAM"
						     : "a queue size that is not a power of two <= QueueNumMax");
		return;
	}
	vq->ready = 1;
	/* Live if DRIVER_OK came first: a doorbell rung for it may have come
	 * before this write (virtio_mmio_doorbell). */
	notify_queue(dev, s->queue_sel);
}

/* Status: the driver adds bits one step at a time; 0 resets.  FEATURES_OK
 * sticks only for an acceptable feature set (the driver reads it back),
 * DRIVER_OK only after FEATURES_OK; NEEDS_RESET is ours alone. */
static void write_status(struct virtio_dev *dev, uint32_t value)
{
	struct virtio_mmio_state *s = dev->state;
	if (!value) {
		device_reset(dev);
		return;
	}
	uint32_t old = s->status;
	uint32_t status = (value & STATUS_DRIVER_BITS) | (old & VIRTIO_STATUS_NEEDS_RESET);
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    !features_acceptable(dev, s->driver_features))
		status &= ~VIRTIO_STATUS_FEATURES_OK;
	if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
		if (old & VIRTIO_STATUS_FEATURES_OK) /* bits go away only by a reset */
			status |= VIRTIO_STATUS_FEATURES_OK;
		else
			status &= ~VIRTIO_STATUS_DRIVER_OK;
	}
	if (old & VIRTIO_STATUS_DRIVER_OK)
		status |= VIRTIO_STATUS_DRIVER_OK;
	s->status = status;
	if (status != old)
		publish(dev, VIRTIO_SHADOW_STATUS);
	if (!(status & ~old & VIRTIO_STATUS_DRIVER_OK))
		return;
	if (dev->driver_ok)
		dev->driver_ok(dev->opaque);
	/* The queues are live now: a doorbell rung for one may have come before
	 * this write (virtio_mmio_doorbell). */
	for (unsigned q = 0; q < dev->num_queues; q++)
		notify_queue(dev, q);
}

void virtio_mmio_write(struct virtio_dev *dev, uint64_t offset, unsigned size, uint64_t value)
{
	struct virtio_mmio_state *s = dev->state;
	if (!access_size_ok(offset, size))
		return;
	if (offset >= VIRTIO_MMIO_CONFIG) {
		config_write(dev, offset - VIRTIO_MMIO_CONFIG, size, value);
		return;
	}
	uint32_t v = (uint32_t)value;
	switch (offset) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: s->device_features_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (s->status & VIRTIO_STATUS_FEATURES_OK) /* negotiation is over */
			break;
		if (s->driver_features_sel == 0)
			s->driver_features = (s->driver_features & ~0xffffffffull) | v;
		else if (s->driver_features_sel == 1)
			s->driver_features = (uint32_t)s->driver_features | (uint64_t)v << 32;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: s->driver_features_sel = v; break;
	case VIRTIO_MMIO_QUEUE_SEL: s->queue_sel = v; break;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: write_queue(dev, offset, v); break;
	case VIRTIO_MMIO_QUEUE_READY: set_queue_ready(dev, v); break;
	case VIRTIO_MMIO_QUEUE_NOTIFY: notify_queue(dev, v); break;
	case VIRTIO_MMIO_INTERRUPT_ACK: interrupt_ack(dev, v); break;
	case VIRTIO_MMIO_STATUS: write_status(dev, v); break;
	default: break; /* read-only or reserved */
	}
}
