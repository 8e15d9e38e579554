/* virtio_console.c - hvc0, a single-port virtio-console
 * (virtio_console.h). */
#include "virtio_console.h"

#include <string.h>

#include "host.h"
#include "le.h"
#include "log.h"
#include "virtqueue.h"

_Static_assert(VIRTIO_CONSOLE_INPUT_SIZE && !(VIRTIO_CONSOLE_INPUT_SIZE & (VIRTIO_CONSOLE_INPUT_SIZE - 1)),
	       "the input ring wraps with a mask");

/* ---- config space ---- */

static void config_bytes(const struct virtio_console_state *s, uint8_t cfg[VIRTIO_CONSOLE_CONFIG_SIZE])
{
	memset(cfg, 0, VIRTIO_CONSOLE_CONFIG_SIZE);
	put_le16(cfg, s->cols);
	put_le16(cfg + 2, s->rows);
	/* max_nr_ports (MULTIPORT only) and emerg_wr (EMERG_WRITE only): 0. */
}

static uint64_t config_read(void *opaque, uint32_t offset, unsigned size)
{
	struct virtio_console *c = opaque;
	uint8_t cfg[VIRTIO_CONSOLE_CONFIG_SIZE];
	config_bytes(c->state, cfg);
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++) /* the transport checked offset + size */
		v |= (uint64_t)cfg[offset + i] << (8 * i);
	return v;
}

/* ---- receiveq0: held host input into the driver's buffers ---- */

/* The port is open once a probe's buffer came back (virtio_console.h). */
static void check_port_open(struct virtio_console *c)
{
	struct virtio_console_state *s = c->state;
	uint16_t avail;
	if (s->port_open || !s->probing || !virtq_avail_idx(&c->vdev, VIRTIO_CONSOLE_RX, &avail) ||
	    avail == s->probe_avail)
		return;
	s->port_open = 1;
	s->probing = 0;
	virtio_mmio_config_changed(&c->vdev); /* the size, now that it is heard */
}

/* Complete one receive buffer with zero bytes. */
static void probe_port(struct virtio_console *c)
{
	struct virtio_console_state *s = c->state;
	uint64_t now = host_now_ns();
	struct virtq_chain chain;
	if (s->port_open || (s->probing && now - c->last_probe_ns < VIRTIO_CONSOLE_PROBE_NS))
		return;
	uint16_t avail;
	if (!virtq_avail_idx(&c->vdev, VIRTIO_CONSOLE_RX, &avail) ||
	    !virtq_pop(&c->vdev, VIRTIO_CONSOLE_RX, &chain))
		return;
	c->last_probe_ns = now;
	s->probing = 1;
	s->probe_avail = avail;
	virtq_push(&c->vdev, VIRTIO_CONSOLE_RX, &chain, 0);
	virtq_signal_used(&c->vdev, VIRTIO_CONSOLE_RX);
}

static void deliver_input(struct virtio_console *c)
{
	struct virtio_console_state *s = c->state;
	struct virtio_dev *dev = &c->vdev;
	struct virtq_chain chain;
	bool pushed = false;
	check_port_open(c);
	if (!s->port_open)
		return;
	/* Out of buffers with input left, virtq_pop asks for a notify when the
	 * driver posts more (it gives none unasked) and looks once more. */
	while (s->in_len && virtq_pop(dev, VIRTIO_CONSOLE_RX, &chain)) {
		uint32_t written = 0;
		while (s->in_len && written < chain.write_len) {
			uint32_t run = VIRTIO_CONSOLE_INPUT_SIZE - s->in_head; /* up to the wrap */
			if (run > s->in_len)
				run = s->in_len;
			size_t n = virtq_chain_write(dev, &chain, written, s->in_buf + s->in_head, run);
			if (!n)
				break; /* the chain has no writable room left */
			written += (uint32_t)n;
			s->in_head = (s->in_head + (uint32_t)n) & (VIRTIO_CONSOLE_INPUT_SIZE - 1);
			s->in_len -= (uint32_t)n;
		}
		virtq_push(dev, VIRTIO_CONSOLE_RX, &chain, written);
		pushed = true;
	}
	if (pushed)
		virtq_signal_used(dev, VIRTIO_CONSOLE_RX);
}

size_t virtio_console_input(struct virtio_console *c, const uint8_t *buf, size_t n)
{
	struct virtio_console_state *s = c->state;
	size_t taken = 0;
	while (taken < n && s->in_len < VIRTIO_CONSOLE_INPUT_SIZE) {
		uint32_t tail = (s->in_head + s->in_len) & (VIRTIO_CONSOLE_INPUT_SIZE - 1);
		/* Free and contiguous: up to the end of the buffer, or to the head
		 * once the tail has wrapped. */
		size_t run = tail >= s->in_head ? VIRTIO_CONSOLE_INPUT_SIZE - tail : s->in_head - tail;
		if (run > n - taken)
			run = n - taken;
		memcpy(s->in_buf + tail, buf + taken, run);
		s->in_len += (uint32_t)run;
		taken += run;
	}
	deliver_input(c);
	return taken;
}

size_t virtio_console_input_space(const struct virtio_console *c)
{
	return VIRTIO_CONSOLE_INPUT_SIZE - c->state->in_len;
}

/* ---- transmitq0: straight from guest RAM to the host ---- */

static void transmit(struct virtio_console *c)
{
	struct virtio_dev *dev = &c->vdev;
	struct virtq_chain chain;
	bool pushed = false;
	while (virtq_pop(dev, VIRTIO_CONSOLE_TX, &chain)) {
		for (unsigned i = 0; i < chain.nread; i++) {
			/* Inside RAM (virtq_pop checked).  The guest may change the
			 * bytes meanwhile: we pass them on, never interpret them. */
			const void *p = guest_mem_ptr(dev->mem, chain.range[i].gpa, chain.range[i].len);
			c->io.output(c->io.opaque, p, chain.range[i].len);
		}
		virtq_push(dev, VIRTIO_CONSOLE_TX, &chain, 0);
		pushed = true;
	}
	if (pushed && c->taking_rings)
		c->tx_signal_deferred = true; /* virtio_console.h: deferred while rings come */
	else if (pushed)
		virtq_signal_used(dev, VIRTIO_CONSOLE_TX);
	/* Linux posts receive buffers again without a notify (the device
	 * asked for none): look here, where the guest is active. */
	deliver_input(c);
	if (pushed)
		probe_port(c);
}

/* ---- the transport's callbacks ---- */

static void queue_notify(void *opaque, unsigned q)
{
	struct virtio_console *c = opaque;
	if (q == VIRTIO_CONSOLE_TX)
		transmit(c);
	else
		deliver_input(c);
}

/* A new driver: its port is not open yet. */
static void forget_port(struct virtio_console_state *s)
{
	s->port_open = s->probing = 0;
	s->probe_avail = 0;
}

static void transport_reset(void *opaque)
{
	struct virtio_console *c = opaque;
	forget_port(c->state);
	c->tx_signal_deferred = false;
}

static void driver_ok(void *opaque)
{
	struct virtio_console *c = opaque;
	virtio_mmio_config_changed(&c->vdev);
}

static void irq(void *opaque, int level)
{
	struct virtio_console *c = opaque;
	c->io.irq(c->io.opaque, level);
}

static void publish_shadow(void *opaque, enum virtio_mmio_shadow which, uint32_t value)
{
	struct virtio_console *c = opaque;
	c->io.publish_shadow(c->io.opaque, which, value);
}

/* ---- HELLO ---- */

void virtio_console_hello(struct ipc_hello *h, unsigned first_slot, unsigned doorbell)
{
	uint32_t line = h->nirqs++;
	h->irqs[line] = (struct ipc_irq_line){.gsi = IPC_IRQ_ANY, .trigger = IPC_TRIGGER_LEVEL};
	h->ranges[h->nranges++] = (struct ipc_range){.space = IPC_SPACE_MMIO, .base = 0,
						     .size = IPC_VIRTIO_MMIO_SIZE,
						     .kind = IPC_RANGE_VIRTIO_MMIO, .has_irq = true,
						     .irq = (uint8_t)line};
	/* Registers of a slot range are declared at offsets from 0: the core
	 * moves them to the slot it assigns (ipc.h). */
	struct ipc_reg *regs = &h->regs[h->nregs];
	h->nregs += virtio_mmio_hello_regs(0, first_slot, regs);
	/* Linux's hvc console spins, interrupts off, until its transmit buffer
	 * is used (virtio_console.h): the vCPU waits for the ring instead. */
	virtio_mmio_hello_doorbell(regs, doorbell, true);
}

/* ---- attaching ---- */

static bool console_state_valid(const struct virtio_console *c, const struct virtio_console_state *s)
{
	return s->magic == VIRTIO_CONSOLE_STATE_MAGIC && s->size == sizeof(*s) &&
	       s->port_open <= 1 && s->probing <= 1 && !(s->port_open && s->probing) &&
	       s->in_head < VIRTIO_CONSOLE_INPUT_SIZE && s->in_len <= VIRTIO_CONSOLE_INPUT_SIZE;
}

bool virtio_console_attach(struct virtio_console *c, struct virtio_console_state *s,
			   const struct guest_mem *ram, bool resumed, uint16_t cols, uint16_t rows)
{
	c->state = s;
	c->last_probe_ns = 0;
	c->taking_rings = c->tx_signal_deferred = false;
	c->vdev = (struct virtio_dev){
		.device_id = VIRTIO_CONSOLE_DEVICE_ID,
		.device_features = 1ull << VIRTIO_CONSOLE_F_SIZE,
		.num_queues = 2,
		.queue_max = {VIRTIO_CONSOLE_QUEUE_MAX, VIRTIO_CONSOLE_QUEUE_MAX},
		.config_size = VIRTIO_CONSOLE_CONFIG_SIZE,
		.mem = ram,
		.state = &s->mmio,
		.opaque = c,
		.config_read = config_read,
		.queue_notify = queue_notify,
		.reset = transport_reset,
		.driver_ok = driver_ok,
		.irq = irq,
		.publish_shadow = publish_shadow,
	};
	bool kept = resumed && console_state_valid(c, s);
	if (resumed && !kept)
		log_once("the hvc0 state left by the previous dev-serial is not valid: its driver must reset it");
	if (kept) {
		kept = virtio_mmio_restart(&c->vdev); /* logs itself */
		/* The previous incarnation may have died with a transmit
		 * notification deferred (virtio_console.h): give it now. */
		if (kept)
			virtq_signal_used(&c->vdev, VIRTIO_CONSOLE_TX);
	} else {
		memset(s, 0, sizeof(*s));
		s->magic = VIRTIO_CONSOLE_STATE_MAGIC;
		s->size = sizeof(*s);
		virtio_mmio_init(&c->vdev);
		if (resumed) /* a driver may be running: tell it */
			virtio_mmio_needs_reset(&c->vdev, "its saved state was not valid");
	}
	virtio_console_resize(c, cols, rows);
	deliver_input(c);
	return !resumed || kept;
}

/* ---- the guest's accesses ---- */

uint64_t virtio_console_read(struct virtio_console *c, uint64_t offset, unsigned size)
{
	return virtio_mmio_read(&c->vdev, offset, size);
}

void virtio_console_write(struct virtio_console *c, uint64_t offset, unsigned size, uint64_t value)
{
	virtio_mmio_write(&c->vdev, offset, size, value);
}

/* The transmit queue's used-buffer notification, if one was deferred: due
 * only if the driver has not taken the buffers by now (its used_event). */
static void send_deferred_tx_signal(struct virtio_console *c)
{
	if (!c->tx_signal_deferred)
		return;
	c->tx_signal_deferred = false;
	virtq_signal_used(&c->vdev, VIRTIO_CONSOLE_TX);
}

void virtio_console_doorbell(struct virtio_console *c, uint32_t bits)
{
	send_deferred_tx_signal(c);
	c->taking_rings = true;
	virtio_mmio_doorbell(&c->vdev, bits);
	c->taking_rings = false;
}

void virtio_console_doorbell_quiet(struct virtio_console *c)
{
	send_deferred_tx_signal(c);
}

void virtio_console_machine_reset(struct virtio_console *c)
{
	forget_port(c->state);
	c->tx_signal_deferred = false;
	virtio_mmio_init(&c->vdev);
}

void virtio_console_resize(struct virtio_console *c, uint16_t cols, uint16_t rows)
{
	struct virtio_console_state *s = c->state;
	if (!cols || !rows || (cols == s->cols && rows == s->rows))
		return;
	s->cols = cols;
	s->rows = rows;
	virtio_mmio_config_changed(&c->vdev);
}
