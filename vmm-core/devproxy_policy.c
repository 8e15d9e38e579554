/* devproxy_policy.c - what a device may declare and how accesses are served
 * (devproxy_policy.h). */
#include "devproxy_policy.h"

#include <stdio.h>
#include <string.h>

#include "host.h"

static bool range_holds(const struct ipc_range *r, uint8_t space, uint64_t addr, uint64_t size)
{
	return r->space == space && addr >= r->base && addr - r->base < r->size &&
	       size <= r->size - (addr - r->base);
}

/* A doorbell's slot indexes the state page's doorbell words, not shadows,
 * so it takes no other slot flag; rings need shared-memory waits. */
static int check_doorbell(const struct ipc_reg *reg, unsigned i, char *why, size_t n)
{
	bool doorbell = reg->flags & IPC_REG_DOORBELL;
	if (!doorbell && (reg->flags & IPC_REG_DOORBELL_WAIT)) {
		snprintf(why, n, "register %u: a doorbell wait without a doorbell", i);
		return -1;
	}
	if (!doorbell)
		return 0;
	if (reg->flags & (IPC_REG_SHADOW | IPC_REG_ACK_LOWERS | IPC_REG_READ_ACK | IPC_REG_CHANGES_ONLY)) {
		snprintf(why, n, "register %u: a doorbell cannot be a shadow, an acknowledge or change shadows", i);
		return -1;
	}
	if (reg->slot >= IPC_MAX_DOORBELLS) {
		snprintf(why, n, "register %u: doorbell %u out of range", i, reg->slot);
		return -1;
	}
	if (!host_shared_wait_supported()) {
		snprintf(why, n, "register %u: a doorbell, which this host cannot ring", i);
		return -1;
	}
	return 0;
}
static int check_reg(const struct ipc_hello *h, unsigned i, char *why, size_t n)
{
	const struct ipc_reg *reg = &h->regs[i];
	if (reg->space != IPC_SPACE_PIO && reg->space != IPC_SPACE_MMIO) {
		snprintf(why, n, "register %u: unknown space %u", i, reg->space);
		return -1;
	}
	if (reg->size != 1 && reg->size != 2 && reg->size != 4 && reg->size != 8) {
		snprintf(why, n, "register %u: size %u is not 1, 2, 4 or 8", i, reg->size);
		return -1;
	}
	if (reg->flags & ~IPC_REG_FLAGS) {
		snprintf(why, n, "register %u: unknown flags %#x", i, reg->flags);
		return -1;
	}
	if ((reg->flags & (IPC_REG_SHADOW | IPC_REG_ACK_LOWERS | IPC_REG_READ_ACK | IPC_REG_RX_RING)) &&
	    reg->slot >= IPC_MAX_REGS) {
		snprintf(why, n, "register %u: shadow slot %u out of range", i, reg->slot);
		return -1;
	}
	if (check_doorbell(reg, i, why, n))
		return -1;
	const struct ipc_range *in = NULL;
	for (uint32_t r = 0; r < h->nranges && !in; r++)
		if (range_holds(&h->ranges[r], reg->space, reg->addr, reg->size))
			in = &h->ranges[r];
	if (!in) {
		snprintf(why, n, "register %u at %#llx is outside the device's ranges", i,
			 (unsigned long long)reg->addr);
		return -1;
	}
	if ((reg->changes && !(reg->flags & IPC_REG_CHANGES_ONLY)) || reg->changes >> IPC_MAX_REGS ||
	    ((reg->flags & IPC_REG_CHANGES_ONLY) && (reg->flags & IPC_REG_STREAM))) {
		snprintf(why, n, "register %u: changes %#x do not match its flags", i, reg->changes);
		return -1;
	}
	if ((reg->flags & IPC_REG_READ_ACK) && reg->size != 1) {
		snprintf(why, n, "register %u: a read-acknowledge register has size 1", i);
		return -1;
	}
	if ((reg->flags & IPC_REG_ACK_LOWERS) && (!in->has_irq || in->irq >= h->nirqs)) {
		snprintf(why, n, "register %u lowers a line but its range has none", i);
		return -1;
	}
	for (unsigned j = 0; j < i; j++) {
		if (h->regs[j].space == reg->space && h->regs[j].addr == reg->addr) {
			snprintf(why, n, "register %u at %#llx is declared twice", i,
				 (unsigned long long)reg->addr);
			return -1;
		}
	}
	return 0;
}

static int range_of(const struct ipc_hello *h, const struct ipc_reg *reg);

/* The receive ring's registers (IPC_REG_RX_RING) are one range's: its
 * receive register and the status and interrupt registers that describe
 * the ring. */
static int check_rx_ring(const struct ipc_hello *h, char *why, size_t n)
{
	const struct ipc_reg *pop = policy_rx_pop_reg(h);
	for (uint32_t i = 0; i < h->nregs; i++) {
		const struct ipc_reg *reg = &h->regs[i];
		if (!(reg->flags & IPC_REG_RX_RING))
			continue;
		if (!pop || range_of(h, reg) != range_of(h, pop)) {
			snprintf(why, n, "register %u describes a receive ring that its range does not pop", i);
			return -1;
		}
	}
	return 0;
}

int policy_check_hello(const struct ipc_hello *h, char *why, size_t n)
{
	if (h->version != IPC_PROTO_VERSION) {
		snprintf(why, n, "protocol version %u, the core speaks %u", h->version,
			 IPC_PROTO_VERSION);
		return -1;
	}
	if (h->nranges > IPC_MAX_RANGES || h->nirqs > IPC_MAX_IRQS || h->nregs > IPC_MAX_REGS) {
		snprintf(why, n, "too many ranges, irqs or registers");
		return -1;
	}
	for (uint32_t i = 0; i < h->nirqs; i++) {
		uint32_t gsi = h->irqs[i].gsi;
		if (gsi >= BOARD_IRQ_LINES && gsi != IPC_IRQ_ANY) {
			snprintf(why, n, "irq %u is not a board line (0..%d)", gsi, BOARD_IRQ_LINES - 1);
			return -1;
		}
		if ((h->irqs[i].flags & IPC_IRQ_PUBLISHED) && !host_shared_wait_supported()) {
			snprintf(why, n, "line %u: a published level, which this host cannot wake on", i);
			return -1;
		}
	}
	for (uint32_t i = 0; i < h->nregs; i++)
		if (check_reg(h, i, why, n))
			return -1;
	return check_rx_ring(h, why, n);
}

bool policy_same_device(const struct ipc_hello *a, const struct ipc_hello *b)
{
	if (a->nranges != b->nranges || a->nirqs != b->nirqs || a->nregs != b->nregs)
		return false;
	for (uint32_t i = 0; i < a->nranges && i < IPC_MAX_RANGES; i++) {
		const struct ipc_range *x = &a->ranges[i], *y = &b->ranges[i];
		if (x->space != y->space || x->base != y->base || x->size != y->size ||
		    x->kind != y->kind || x->has_irq != y->has_irq || x->irq != y->irq)
			return false;
	}
	for (uint32_t i = 0; i < a->nirqs && i < IPC_MAX_IRQS; i++)
		if (a->irqs[i].gsi != b->irqs[i].gsi || a->irqs[i].trigger != b->irqs[i].trigger ||
		    a->irqs[i].flags != b->irqs[i].flags)
			return false;
	for (uint32_t i = 0; i < a->nregs && i < IPC_MAX_REGS; i++) {
		const struct ipc_reg *x = &a->regs[i], *y = &b->regs[i];
		if (x->space != y->space || x->size != y->size || x->flags != y->flags ||
		    x->slot != y->slot || x->changes != y->changes || x->addr != y->addr)
			return false;
	}
	return true;
}

const struct ipc_reg *policy_find_reg(const struct ipc_hello *h, enum ipc_space space,
				      uint64_t addr, unsigned size)
{
	for (uint32_t i = 0; i < h->nregs && i < IPC_MAX_REGS; i++) {
		const struct ipc_reg *reg = &h->regs[i];
		if (reg->space == space && reg->addr == addr && size <= reg->size)
			return reg;
	}
	return NULL;
}

bool policy_local_read(const struct ipc_hello *h, enum ipc_space space, uint64_t addr,
		       unsigned size, uint64_t *value)
{
	for (uint32_t i = 0; i < h->nranges && i < IPC_MAX_RANGES; i++) {
		const struct ipc_range *r = &h->ranges[i];
		if (r->kind == IPC_RANGE_DEBUGCON && r->space == space && addr - r->base < r->size) {
			*value = size >= 8 ? IPC_DEBUGCON_READBACK
					   : IPC_DEBUGCON_READBACK & ((1ull << (8 * size)) - 1);
			return true;
		}
	}
	return false;
}

/* The bytes waiting in the receive ring, with its head in *head; -1 if the
 * indices cannot be (more bytes than the ring holds: a torn or hostile
 * page).  Acquire: the bytes the device stored before the tail are there. */
static int rx_ring_count(const struct ipc_state_page *state, uint32_t *head)
{
	uint32_t tail = atomic_load_explicit(&state->rx.tail, memory_order_acquire);
	*head = atomic_load_explicit(&state->rx.head, memory_order_relaxed);
	uint32_t count = tail - *head;
	return count <= IPC_RX_RING_SIZE ? (int)count : -1;
}

const struct ipc_reg *policy_rx_pop_reg(const struct ipc_hello *h)
{
	for (uint32_t i = 0; i < h->nregs && i < IPC_MAX_REGS; i++) {
		const struct ipc_reg *reg = &h->regs[i];
		if ((reg->flags & IPC_REG_RX_RING) && !(reg->flags & (IPC_REG_SHADOW | IPC_REG_READ_ACK)))
			return reg;
	}
	return NULL;
}

bool policy_shadow_read(const struct ipc_reg *reg, const struct ipc_state_page *state,
			uint64_t ordered_mark, unsigned size, uint64_t *value)
{
	if (!reg || !(reg->flags & IPC_REG_SHADOW) || reg->slot >= IPC_MAX_REGS || !state)
		return false;
	if (__atomic_load_n(&state->magic, __ATOMIC_ACQUIRE) != IPC_STATE_MAGIC)
		return false;
	/* Acquire: the shadow values the device stored before publishing
	 * applied_seq are the ones we read next. */
	if (atomic_load_explicit(&state->applied_seq, memory_order_acquire) < ordered_mark)
		return false;
	uint64_t v = atomic_load_explicit(&state->shadow[reg->slot], memory_order_relaxed);
	if (reg->flags & IPC_REG_RX_RING) {
		/* The ring's count is the receiver's: the value follows it.  The
		 * word's two values change only with ordered writes. */
		uint32_t head;
		int count = rx_ring_count(state, &head);
		if (count < 0)
			return false;
		v = count ? IPC_RX_DATA_VALUE(v) : IPC_RX_EMPTY_VALUE(v);
	}
	*value = size >= 8 ? v : v & ((1ull << (8 * size)) - 1);
	return true;
}

bool policy_rx_pop(const struct ipc_reg *reg, const struct ipc_state_page *state,
		   uint64_t ordered_mark, struct rx_pop_answer *a)
{
	if (!reg || !(reg->flags & IPC_REG_RX_RING) || (reg->flags & (IPC_REG_SHADOW | IPC_REG_READ_ACK)) ||
	    reg->slot >= IPC_MAX_REGS || !state)
		return false;
	if (__atomic_load_n(&state->magic, __ATOMIC_ACQUIRE) != IPC_STATE_MAGIC ||
	    atomic_load_explicit(&state->applied_seq, memory_order_acquire) < ordered_mark)
		return false;
	uint64_t w = atomic_load_explicit(&state->shadow[reg->slot], memory_order_relaxed);
	if (!(w & IPC_RX_POP_LIVE))
		return false;
	uint32_t head;
	int count = rx_ring_count(state, &head);
	if (count < 0)
		return false;
	if (!count) {
		*a = (struct rx_pop_answer){.value = IPC_RX_POP_EMPTY(w), .head = head};
		return true;
	}
	uint8_t byte = atomic_load_explicit(&state->rx.data[head % IPC_RX_RING_SIZE], memory_order_relaxed);
	*a = (struct rx_pop_answer){.value = byte, .popped = true, .head = head + 1, .emptied = count == 1};
	return true;
}

static int range_gsi(const struct ipc_hello *h, const struct ipc_reg *reg);

/* Is a read-acknowledge register's event enabled, as far as the core knows
 * (IPC_READ_ACK_ENABLE_*): the word says, unless a write of the core's that
 * only changed the enable bits is not applied yet (policy_enable_written). */
static bool event_enabled(uint64_t w, uint64_t applied, const struct read_ack_track *t)
{
	if (!IPC_READ_ACK_ENABLE_MASK(w))
		return true;
	return applied < t->enable_seq ? t->enabled : (w & IPC_READ_ACK_ENABLED) != 0;
}

int policy_ack_lowers(const struct ipc_hello *h, const struct ipc_reg *reg,
		      const struct ipc_state_page *state, unsigned size, uint64_t value)
{
	if (!reg || !(reg->flags & IPC_REG_ACK_LOWERS) || reg->slot >= IPC_MAX_REGS || !state)
		return -1;
	if (__atomic_load_n(&state->magic, __ATOMIC_ACQUIRE) != IPC_STATE_MAGIC)
		return -1;
	uint64_t mask = size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
	uint64_t pending = atomic_load_explicit(&state->shadow[reg->slot], memory_order_acquire);
	if (pending & mask & ~value)
		return -1; /* something stays pending: the line stays up */
	return range_gsi(h, reg);
}

/* The range holding reg: its index, or -1. */
static int range_of(const struct ipc_hello *h, const struct ipc_reg *reg)
{
	for (uint32_t r = 0; r < h->nranges && r < IPC_MAX_RANGES; r++)
		if (range_holds(&h->ranges[r], reg->space, reg->addr, reg->size))
			return (int)r;
	return -1;
}

/* The GSI of the line of reg's range, or -1 if it has none. */
static int range_gsi(const struct ipc_hello *h, const struct ipc_reg *reg)
{
	int r = range_of(h, reg);
	if (r < 0)
		return -1;
	const struct ipc_range *range = &h->ranges[r];
	return range->has_irq && range->irq < h->nirqs && range->irq < IPC_MAX_IRQS
		       ? (int)h->irqs[range->irq].gsi
		       : -1;
}

bool policy_read_ack(const struct ipc_hello *h, const struct ipc_reg *reg,
		     const struct ipc_state_page *state, uint64_t ordered_mark,
		     const struct read_ack_track *t, struct read_ack_answer *a)
{
	if (!reg || !(reg->flags & IPC_REG_READ_ACK) || reg->slot >= IPC_MAX_REGS || !state)
		return false;
	if (__atomic_load_n(&state->magic, __ATOMIC_ACQUIRE) != IPC_STATE_MAGIC)
		return false;
	/* Acquire, then the word: a device that has applied seq s published
	 * the word of a state at least as recent as s (policy_shadow_read). */
	uint64_t applied = atomic_load_explicit(&state->applied_seq, memory_order_acquire);
	if (applied < ordered_mark)
		return false;
	uint64_t w = atomic_load_explicit(&state->shadow[reg->slot], memory_order_relaxed);
	/* The word's two values do not depend on the event, only on what the
	 * device changes by itself (host input) and on ordered writes, which
	 * are applied by now.  Only whether the event is pending may be ahead
	 * of the device: the core's own stream writes and acknowledges that
	 * the device has not applied yet. */
	bool device_knows = applied >= t->seq;
	if (!device_knows && t->unknown)
		return false;
	bool pending = device_knows ? (w & IPC_READ_ACK_PENDING) != 0 : t->pending;
	/* Disabled, it is not reported and holds no line up. */
	if (!event_enabled(w, applied, t))
		pending = false;
	/* Data in the receive ring outranks the event (a 16550's RX data over
	 * THRE): the read then reports the data and acknowledges nothing. */
	int rx = 0;
	uint32_t head;
	if ((reg->flags & IPC_REG_RX_RING) && (w & IPC_READ_ACK_RX_ENABLED) &&
	    (rx = rx_ring_count(state, &head)) < 0)
		return false;
	if (rx) {
		bool full = (unsigned)rx >= IPC_READ_ACK_RX_TRIGGER(w);
		*a = (struct read_ack_answer){
			.value = full ? IPC_READ_ACK_RX_FULL(w) : IPC_READ_ACK_RX_PARTIAL(w), .lower_gsi = -1,
			.idle_gsi = -1};
		return true;
	}
	a->value = pending ? IPC_READ_ACK_RAISED(w) : IPC_READ_ACK_CLEAR(w);
	a->acknowledges = pending && (w & IPC_READ_ACK_REPORTS);
	a->idle = (w & IPC_READ_ACK_IDLE) && (!pending || a->acknowledges || !(w & IPC_READ_ACK_REPORTS));
	a->lower_gsi = a->acknowledges && a->idle ? range_gsi(h, reg) : -1;
	a->idle_gsi = !a->acknowledges && a->idle ? range_gsi(h, reg) : -1;
	return true;
}

int policy_rx_emptied_lowers(const struct ipc_hello *h, const struct ipc_reg *read_ack,
			     const struct ipc_state_page *state, uint64_t ordered_mark,
			     const struct read_ack_track *t)
{
	struct read_ack_answer a;
	if (!read_ack || !(read_ack->flags & IPC_REG_RX_RING) ||
	    !policy_read_ack(h, read_ack, state, ordered_mark, t, &a) || !a.idle || a.acknowledges)
		return -1; /* unknown, busy, or the event holds the line until its read */
	return range_gsi(h, read_ack);
}

int policy_stream_written(const struct ipc_hello *h, const struct ipc_reg *written,
			  const struct ipc_reg *read_ack, const struct ipc_state_page *state,
			  uint64_t ordered_mark, uint64_t seq, struct read_ack_track *t)
{
	if (!written || !(written->flags & IPC_REG_STREAM) || !(read_ack->flags & IPC_REG_READ_ACK) ||
	    read_ack->slot >= IPC_MAX_REGS || !state)
		return -1;
	int r = range_of(h, written);
	if (r < 0 || r != range_of(h, read_ack))
		return -1;
	/* What makes a stream write raise the event (a 16550's DLAB clear)
	 * changes only with ordered writes: once those are applied, the word
	 * says how this write acts. */
	uint64_t applied = atomic_load_explicit(&state->applied_seq, memory_order_acquire);
	if (__atomic_load_n(&state->magic, __ATOMIC_ACQUIRE) != IPC_STATE_MAGIC || applied < ordered_mark) {
		t->pending = false;
		t->unknown = true;
		t->seq = seq;
		return -1;
	}
	uint64_t w = atomic_load_explicit(&state->shadow[read_ack->slot], memory_order_relaxed);
	if (!(w & IPC_READ_ACK_STREAM_RAISES))
		return -1;
	/* Pending before this write, as a read now would see it
	 * (policy_read_ack); not known counts as not pending. */
	bool was_pending = applied >= t->seq ? (w & IPC_READ_ACK_PENDING) != 0 : t->pending && !t->unknown;
	t->pending = true;
	t->unknown = false;
	t->seq = seq;
	/* The event is the device's interrupt: the line goes up now, as the
	 * device would raise it applying this write.  Already pending: the
	 * line is up already, or the device says so itself; disabled by a
	 * write the device has not applied: the word's LINE_UP is stale. */
	bool line_up = (w & IPC_READ_ACK_LINE_UP) && event_enabled(w, applied, t);
	return !was_pending && line_up ? range_gsi(h, read_ack) : -1;
}

bool policy_enable_written(const struct ipc_hello *h, const struct ipc_reg *reg,
			   const struct ipc_reg *read_ack, const struct ipc_state_page *state,
			   uint64_t reg_mark, uint64_t read_ack_mark, uint64_t value, uint64_t seq,
			   struct read_ack_track *t, int *gsi, int *level)
{
	*gsi = -1;
	const uint32_t plain = IPC_REG_SHADOW | IPC_REG_CHANGES_ONLY;
	if (!reg || (reg->flags & plain) != plain || reg->slot >= IPC_MAX_REGS ||
	    !(read_ack->flags & IPC_REG_READ_ACK) || read_ack->slot >= IPC_MAX_REGS || !state)
		return false;
	int r = range_of(h, reg);
	if (r < 0 || r != range_of(h, read_ack))
		return false;
	uint64_t applied = atomic_load_explicit(&state->applied_seq, memory_order_acquire);
	if (__atomic_load_n(&state->magic, __ATOMIC_ACQUIRE) != IPC_STATE_MAGIC || applied < read_ack_mark)
		return false;
	/* The register's value: its shadow once every write to it is applied,
	 * or the core's own last one if that was an enable write (ETBEI off
	 * then on again before the device caught up). */
	uint64_t old;
	if (applied >= reg_mark)
		old = atomic_load_explicit(&state->shadow[reg->slot], memory_order_relaxed);
	else if (reg_mark == t->enable_seq)
		old = t->enable_value;
	else
		return false;
	uint64_t w = atomic_load_explicit(&state->shadow[read_ack->slot], memory_order_relaxed);
	uint64_t mask = IPC_READ_ACK_ENABLE_MASK(w);
	if (!mask || IPC_READ_ACK_ENABLE_SLOT(w) != reg->slot || value == old || (value ^ old) & ~mask ||
	    ((value & mask) && (value & mask) != mask))
		return false;
	bool enable = (value & mask) != 0;
	t->enabled = enable;
	t->enable_seq = seq;
	t->enable_value = value;
	if (enable && (w & IPC_READ_ACK_ENABLE_RAISES)) {
		t->pending = true;
		t->unknown = false;
		t->seq = seq;
		if (w & IPC_READ_ACK_LINE_UP) {
			*gsi = range_gsi(h, read_ack);
			*level = 1;
		}
	} else if (!enable && (w & IPC_READ_ACK_IDLE)) {
		/* Nothing else holds the line up, unless the receive ring holds
		 * data that is an interrupt (or cannot be read). */
		uint32_t head;
		bool rx = (read_ack->flags & IPC_REG_RX_RING) && (w & IPC_READ_ACK_RX_ENABLED) &&
			  rx_ring_count(state, &head) != 0;
		if (!rx) {
			*gsi = range_gsi(h, read_ack);
			*level = 0;
		}
	}
	return true;
}

uint32_t policy_write_changes(const struct ipc_reg *reg)
{
	if (reg && (reg->flags & IPC_REG_STREAM))
		return 0;
	if (reg && (reg->flags & IPC_REG_CHANGES_ONLY))
		return reg->changes & POLICY_ALL_SLOTS;
	return POLICY_ALL_SLOTS;
}

static int find_slot_locked(struct slot_table *t, const char *name, unsigned range)
{
	int free_slot = -1;
	for (int i = 0; i < BOARD_VIRTIO_MMIO_SLOTS; i++) {
		if (!strcmp(t->slot[i].owner, name) && t->slot[i].range == range)
			return i;
		if (free_slot < 0 && !t->slot[i].owner[0])
			free_slot = i;
	}
	if (free_slot >= 0) {
		snprintf(t->slot[free_slot].owner, IPC_MAX_NAME, "%s", name);
		t->slot[free_slot].range = range;
	}
	return free_slot;
}

int policy_place(struct slot_table *t, const char *name, const struct ipc_hello *h,
		 struct ipc_hello *placed, char *why, size_t n)
{
	*placed = *h;
	for (uint32_t i = 0; i < h->nranges && i < IPC_MAX_RANGES; i++) {
		struct ipc_range *r = &placed->ranges[i];
		/* ipc_decode: such a range has a line of gsi ANY of its own. */
		if (r->kind != IPC_RANGE_VIRTIO_MMIO || r->base != 0 || !r->has_irq || r->irq >= h->nirqs)
			continue;
		pthread_mutex_lock(&t->lock);
		int slot = find_slot_locked(t, name, i);
		pthread_mutex_unlock(&t->lock);
		if (slot < 0) {
			snprintf(why, n, "no virtio-mmio slot left (the board has %d)",
				 BOARD_VIRTIO_MMIO_SLOTS);
			return -1;
		}
		r->base = BOARD_VIRTIO_MMIO_BASE + (uint64_t)slot * IPC_VIRTIO_MMIO_SIZE;
		placed->irqs[r->irq] = (struct ipc_irq_line){
			.gsi = BOARD_VIRTIO_MMIO_GSI + (uint32_t)slot, .trigger = IPC_TRIGGER_LEVEL,
			.flags = h->irqs[r->irq].flags};
		/* The device declared this range's registers at offsets from 0,
		 * not knowing its base: they move with it. */
		for (uint32_t j = 0; j < h->nregs && j < IPC_MAX_REGS; j++)
			if (range_holds(&h->ranges[i], h->regs[j].space, h->regs[j].addr, h->regs[j].size))
				placed->regs[j].addr += r->base;
	}
	for (uint32_t i = 0; i < placed->nirqs && i < IPC_MAX_IRQS; i++) {
		if (placed->irqs[i].gsi == IPC_IRQ_ANY) {
			snprintf(why, n, "line %u is ANY but no range asks for a slot with it", i);
			return -1;
		}
	}
	return 0;
}

uint64_t policy_irq_wait(struct irq_budget *b, uint64_t now_ns)
{
	const uint64_t interval = 1000000000ull / DEVPROXY_IRQ_RATE;
	const uint64_t tolerance = interval * DEVPROXY_IRQ_BURST;
	uint64_t tat = (b->tat > now_ns ? b->tat : now_ns) + interval;
	b->tat = tat; /* the caller waits if it must: the message is then on time */
	return tat - now_ns > tolerance ? tat - now_ns - tolerance : 0;
}
