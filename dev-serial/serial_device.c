/* serial_device.c - dev-serial's message handling and state page
 * (serial_device.h). */
#include "serial_device.h"

#include <string.h>

#include "log.h"

#define SERIAL_STATE_MAGIC 0x4c524553u /* "SERL" */

_Static_assert(IPC_STATE_DEV_OFFSET + sizeof(struct serial_state) <= IPC_STATE_SIZE,
	       "serial state does not fit in the state page");

/* Shadow slots: one per shadowed register, fixed whatever the options. */
enum serial_slot {
	SLOT_COM1_LSR,
	SLOT_COM1_MSR,
	SLOT_MMIO_LSR,
	SLOT_MMIO_MSR,
	SLOT_PL011_FR,
	SLOT_COM1_IIR, /* an IPC_READ_ACK_* word */
	SLOT_COM1_IER, /* IER, or DLM with DLAB set */
	SLOT_COM1_LCR,
	SLOT_COM1_MCR,
	SLOT_COM1_SCR,
	SLOT_COM1_RBR, /* an IPC_RX_POP_* word: the receive ring */
	SLOT_HVC0_FIRST, /* VIRTIO_SHADOW_COUNT slots from here */
};
/* uart_rx_consumed takes up to a FIFO's worth: the ring holds no more. */
_Static_assert(IPC_RX_RING_SIZE <= UART_FIFO_SIZE, "the receive ring");
_Static_assert(SLOT_HVC0_FIRST + VIRTIO_SHADOW_COUNT <= IPC_MAX_REGS, "shadow slots");
/* Doorbells of the state page (ipc.h): hvc0's QueueNotify. */
enum serial_doorbell { DOORBELL_HVC0 };
_Static_assert(11 + VIRTIO_CONSOLE_HELLO_REGS <= IPC_MAX_REGS, "the HELLO's registers");

/* ---- the models' effects ---- */

static void uart_output(void *opaque, uint8_t byte)
{
	struct serial_device *d = opaque;
	if (d->cfg.stdio)
		d->sink.output(d->sink.opaque, byte);
}

static void publish(struct serial_device *d);

/* Every IPC_IRQ of ours leaves here, counted if it left as a message (a
 * published line's is none: dev_send): the core's line notes say how
 * many it had applied (core_touched_line). */
static void send_irq(struct serial_device *d, uint32_t line, int level)
{
	struct ipc_msg m = {.type = IPC_IRQ};
	m.u.irq.line = line;
	m.u.irq.level = (uint32_t)level;
	if (d->sink.send(d->sink.opaque, &m))
		d->irqs_sent++;
}

/* Every IPC_IRQ leaves after the shadows show what it is about: a guest
 * woken by it reads them without a round trip (devproxy.c, read_ack_here). */
static void com1_set_irq(void *opaque, int level)
{
	struct serial_device *d = opaque;
	publish(d);
	send_irq(d, SERIAL_COM1_IRQ, level);
}

/* The MMIO UART has no interrupt line: the guests that use it poll. */
static void no_irq(void *opaque, int level)
{
}

static struct uart_io com1_io(struct serial_device *d)
{
	return (struct uart_io){.opaque = d, .output = uart_output, .set_irq = com1_set_irq};
}

static void pl011_set_irq(void *opaque, int level)
{
	struct serial_device *d = opaque;
	publish(d);
	send_irq(d, SERIAL_PL011_IRQ, level);
}

static struct pl011_io pl011_io(struct serial_device *d)
{
	return (struct pl011_io){.opaque = d, .output = uart_output, .set_irq = pl011_set_irq};
}

static struct uart_io mmio_io(struct serial_device *d)
{
	return (struct uart_io){.opaque = d, .output = uart_output, .set_irq = no_irq};
}

/* ---- HELLO ---- */

static struct ipc_range *add_range(struct ipc_hello *h, enum ipc_space space, uint64_t base,
				   uint64_t size, enum ipc_range_kind kind)
{
	struct ipc_range *r = &h->ranges[h->nranges++];
	*r = (struct ipc_range){.space = space, .base = base, .size = size, .kind = kind};
	return r;
}

/* slot matters only with IPC_REG_SHADOW. */
static void add_reg(struct ipc_hello *h, enum ipc_space space, uint64_t addr, uint8_t flags,
		    enum serial_slot slot)
{
	h->regs[h->nregs++] = (struct ipc_reg){
		.space = space, .size = 1, .flags = flags, .slot = slot, .addr = addr};
}

/* A shadowed register whose writes change only the shadows of `changes`
 * (IPC_REG_CHANGES_ONLY): reads of the others need not wait for them. */
static void add_plain_reg(struct ipc_hello *h, uint64_t addr, enum serial_slot slot, uint32_t changes)
{
	h->regs[h->nregs++] = (struct ipc_reg){
		.space = IPC_SPACE_PIO, .size = 1, .flags = IPC_REG_SHADOW | IPC_REG_CHANGES_ONLY,
		.slot = slot, .changes = changes, .addr = addr};
}

void serial_hello(const struct serial_config *cfg, struct ipc_hello *h)
{
	memset(h, 0, sizeof(*h));
	h->version = IPC_PROTO_VERSION;
	strcpy(h->name, "serial");
	if (cfg->pl011) {
		/* A level-triggered line; DR writes are a stream, FR is read
		 * before every byte the driver sends: shadowed. */
		h->irqs[h->nirqs++] = (struct ipc_irq_line){.gsi = SERIAL_PL011_IRQ,
							    .trigger = IPC_TRIGGER_LEVEL};
		struct ipc_range *r =
			add_range(h, IPC_SPACE_MMIO, SERIAL_PL011_BASE, PL011_SIZE, IPC_RANGE_PL011);
		r->has_irq = true;
		r->irq = 0;
		h->regs[h->nregs++] = (struct ipc_reg){.space = IPC_SPACE_MMIO, .size = 4,
						       .flags = IPC_REG_STREAM,
						       .addr = SERIAL_PL011_BASE + PL011_DR};
		h->regs[h->nregs++] = (struct ipc_reg){.space = IPC_SPACE_MMIO, .size = 4,
						       .flags = IPC_REG_SHADOW, .slot = SLOT_PL011_FR,
						       .addr = SERIAL_PL011_BASE + PL011_FR};
	} else {
		/* The 16550's ISA interrupt: edge-triggered, as on every PC. */
		h->irqs[h->nirqs++] = (struct ipc_irq_line){.gsi = SERIAL_COM1_IRQ,
							    .trigger = IPC_TRIGGER_EDGE};
		struct ipc_range *com1 =
			add_range(h, IPC_SPACE_PIO, SERIAL_COM1_BASE, UART_NREGS, IPC_RANGE_UART16550);
		com1->has_irq = true;
		com1->irq = 0;
		/* RBR's bytes are the state page's receive ring, which the core
		 * pops (IPC_REG_RX_RING); LSR's DR and IIR's receive
		 * interrupt follow the ring. */
		add_reg(h, IPC_SPACE_PIO, SERIAL_COM1_BASE + UART_RBR, IPC_REG_STREAM | IPC_REG_RX_RING,
			SLOT_COM1_RBR);
		add_reg(h, IPC_SPACE_PIO, SERIAL_COM1_BASE + UART_IIR, IPC_REG_READ_ACK | IPC_REG_RX_RING,
			SLOT_COM1_IIR);
		add_reg(h, IPC_SPACE_PIO, SERIAL_COM1_BASE + UART_LSR, IPC_REG_SHADOW | IPC_REG_RX_RING,
			SLOT_COM1_LSR);
		add_reg(h, IPC_SPACE_PIO, SERIAL_COM1_BASE + UART_MSR, IPC_REG_SHADOW, SLOT_COM1_MSR);
		/* Read by Linux's console before every message it prints (IER)
		 * and while it sets the port up: plain reads, shadowed.  The
		 * console also writes IER around every message, and then polls
		 * LSR: an IER write changes IER and the interrupt state (IIR),
		 * never LSR, so the polls need not wait for it.  LCR's DLAB
		 * switches offset 1 to DLM and THR's address to DLL (IIR's word
		 * says which) and RBR's to DLL (RBR's word: the ring is not
		 * popped); MCR's loopback may change every shadow.  The
		 * receive ring waits for IER writes too: enabling the receive
		 * interrupt takes the input queued behind the receiver out of
		 * it (uart_rx_visible). */
		uint32_t iir = 1u << SLOT_COM1_IIR;
		add_plain_reg(h, SERIAL_COM1_BASE + UART_IER, SLOT_COM1_IER,
			      1u << SLOT_COM1_IER | 1u << SLOT_COM1_RBR | iir);
		add_plain_reg(h, SERIAL_COM1_BASE + UART_LCR, SLOT_COM1_LCR,
			      1u << SLOT_COM1_LCR | 1u << SLOT_COM1_IER | 1u << SLOT_COM1_RBR | iir);
		add_reg(h, IPC_SPACE_PIO, SERIAL_COM1_BASE + UART_MCR, IPC_REG_SHADOW, SLOT_COM1_MCR);
		add_plain_reg(h, SERIAL_COM1_BASE + UART_SCR, SLOT_COM1_SCR, 1u << SLOT_COM1_SCR);
	}
	/* The debug ports need no registers: the core answers their reads. */
	if (cfg->debugcon)
		add_range(h, IPC_SPACE_PIO, cfg->debugcon_port, 1, IPC_RANGE_DEBUGCON);
	if (cfg->debugcon_mmio)
		add_range(h, IPC_SPACE_MMIO, cfg->debugcon_mmio_addr, 1, IPC_RANGE_DEBUGCON);
	if (cfg->mmio_uart) {
		/* No line: the guests that use it poll. */
		add_range(h, IPC_SPACE_MMIO, cfg->mmio_base, UART_NREGS, IPC_RANGE_UART16550);
		add_reg(h, IPC_SPACE_MMIO, cfg->mmio_base + UART_RBR, IPC_REG_STREAM, 0);
		add_reg(h, IPC_SPACE_MMIO, cfg->mmio_base + UART_LSR, IPC_REG_SHADOW, SLOT_MMIO_LSR);
		add_reg(h, IPC_SPACE_MMIO, cfg->mmio_base + UART_MSR, IPC_REG_SHADOW, SLOT_MMIO_MSR);
	}
	if (cfg->hvc0) /* last: its range is the WELCOME's last */
		virtio_console_hello(h, SLOT_HVC0_FIRST, DOORBELL_HVC0);
}

/* ---- the state page ---- */

/* The core pops COM1's receiver from the ring (RBR reads the receiver, not
 * DLL).  Loopback needs no test: its status reads are not pure, so the
 * page's magic is clear and nothing is answered from it. */
static bool rx_ring_live(const struct uart16550 *u)
{
	return !(uart_plain_reg(u, UART_LCR) & UART_LCR_DLAB);
}

/* IIR as the core answers it (IPC_REG_READ_ACK): the THRE interrupt is the
 * event, which THR writes raise and the IIR read reporting it acknowledges.
 * While the ring is live the two values leave the receiver out and the
 * core puts its interrupt on top (IPC_READ_ACK_RX_*), from the ring's
 * count: it may have popped bytes we have not heard of yet. */
static uint64_t iir_word(const struct uart16550 *u)
{
	bool live = rx_ring_live(u);
	uint8_t clear = live ? uart_iir_receiver_empty(u, false) : uart_iir(u, false);
	/* While the ring is live (DLAB clear) the core knows ETBEI (below):
	 * the raised value is with it set. */
	uint8_t raised = live ? uart_iir_thre_enabled(u) : uart_iir(u, true);
	uint64_t w = clear | (uint64_t)raised << 8;
	struct uart_rx_interrupt rx;
	if (live && uart_rx_interrupt(u, &rx))
		w |= IPC_READ_ACK_RX_ENABLED | (uint64_t)rx.full << 24 | (uint64_t)rx.partial << 32 |
		     (uint64_t)rx.trigger << 40;
	if (u->thr_pending)
		w |= IPC_READ_ACK_PENDING;
	if ((raised & 0x0f) == UART_IIR_THRI)
		w |= IPC_READ_ACK_REPORTS;
	if (!(raised & UART_IIR_NO_INT))
		w |= IPC_READ_ACK_LINE_UP; /* THRE pending raises the output (IER's ETBEI) */
	if (clear & UART_IIR_NO_INT)
		w |= IPC_READ_ACK_IDLE;
	/* With DLAB, offset 0 is the divisor and offset 1 DLM: no THR, no IER.
	 * Setting ETBEI raises THRE (set_interrupt_enable). */
	if (live)
		w |= IPC_READ_ACK_STREAM_RAISES | IPC_READ_ACK_ENABLE_RAISES |
		     (uart_plain_reg(u, UART_IER) & UART_IER_THRI ? IPC_READ_ACK_ENABLED : 0) |
		     (uint64_t)UART_IER_THRI << 48 | (uint64_t)SLOT_COM1_IER << 56;
	return w;
}

/* COM1's receiver as the ring the core pops (ipc.h): the visible bytes
 * (uart_rx_visible: the receiver's, and for a polling guest the input
 * queued behind them), then the tail.  The model's head never passes the
 * core's, so a slot we store holds the byte of an index the core has not
 * popped yet or the same byte again.  With the PL011 there is no COM1 and
 * no ring. */
static void publish_rx_ring(struct serial_device *d)
{
	const struct uart16550 *com1 = &d->state->com1;
	if (d->cfg.pl011)
		return;
	struct ipc_rx_ring *r = &d->page->rx;
	uint32_t n = uart_rx_visible(com1, IPC_RX_RING_SIZE);
	for (uint32_t i = 0; i < n; i++)
		atomic_store_explicit(&r->data[(com1->rx_head + i) % IPC_RX_RING_SIZE],
				      uart_rx_visible_byte(com1, i), memory_order_relaxed);
	atomic_store_explicit(&r->tail, com1->rx_head + n, memory_order_release);
}

/* Pop what the core has popped from the ring since we last looked: before
 * anything else acts on COM1, so that the model's receiver is the ring's.
 * A head outside the receiver (a torn page after a crash) empties it: a
 * byte may be lost, none is seen twice. */
static void take_rx_pops(struct serial_device *d)
{
	if (d->cfg.pl011)
		return;
	struct uart16550 *com1 = &d->state->com1;
	uint32_t head = atomic_load_explicit(&d->page->rx.head, memory_order_acquire);
	struct uart_io io = com1_io(d);
	if (!uart_rx_consumed(com1, head, &io)) {
		log_once("the receive ring's head is not within COM1's receiver: its bytes are dropped");
		uart_rx_restart_at(com1, head);
	}
}

/* A read of RBR that we answered popped the receiver: the ring's head
 * follows (the core pops no byte meanwhile: it asked us because it could
 * not). */
static void store_rx_head(struct serial_device *d)
{
	if (!d->cfg.pl011)
		atomic_store_explicit(&d->page->rx.head, d->state->com1.rx_head, memory_order_release);
}

/* Store the shadowed registers' values, then say whether the core may use
 * them (serial_device.h).  Release: a core that sees the magic sees the
 * values stored before it. */
static void publish(struct serial_device *d)
{
	struct ipc_state_page *p = d->page;
	const struct uart16550 *com1 = &d->state->com1, *mmio = &d->state->mmio;
	bool pure = uart_status_reads_pure(com1);
	publish_rx_ring(d);
	uint8_t lsr = uart_lsr(com1);
	uint64_t lsr_word = rx_ring_live(com1)
				    ? (uint64_t)(lsr & ~UART_LSR_DR) | (uint64_t)(lsr | UART_LSR_DR) << 8
				    : (uint64_t)lsr | (uint64_t)lsr << 8;
	atomic_store_explicit(&p->shadow[SLOT_COM1_LSR], lsr_word, memory_order_relaxed);
	atomic_store_explicit(&p->shadow[SLOT_COM1_RBR], rx_ring_live(com1) ? IPC_RX_POP_LIVE : 0,
			      memory_order_relaxed);
	atomic_store_explicit(&p->shadow[SLOT_COM1_MSR], uart_msr(com1), memory_order_relaxed);
	atomic_store_explicit(&p->shadow[SLOT_COM1_IIR], iir_word(com1), memory_order_relaxed);
	static const struct {
		enum serial_slot slot;
		unsigned reg;
	} plain[] = {{SLOT_COM1_IER, UART_IER}, {SLOT_COM1_LCR, UART_LCR},
		     {SLOT_COM1_MCR, UART_MCR}, {SLOT_COM1_SCR, UART_SCR}};
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		atomic_store_explicit(&p->shadow[plain[i].slot], uart_plain_reg(com1, plain[i].reg),
				      memory_order_relaxed);
	atomic_store_explicit(&p->shadow[SLOT_PL011_FR], pl011_fr(&d->state->pl011),
			      memory_order_relaxed);
	if (d->cfg.mmio_uart) {
		pure = pure && uart_status_reads_pure(mmio);
		atomic_store_explicit(&p->shadow[SLOT_MMIO_LSR], uart_lsr(mmio), memory_order_relaxed);
		atomic_store_explicit(&p->shadow[SLOT_MMIO_MSR], uart_msr(mmio), memory_order_relaxed);
	}
	__atomic_store_n(&p->magic, pure ? IPC_STATE_MAGIC : 0, __ATOMIC_RELEASE);
}

/* ---- hvc0 ---- */

static void hvc0_output(void *opaque, const void *buf, size_t len)
{
	struct serial_device *d = opaque;
	if (d->cfg.stdio)
		d->sink.write(d->sink.opaque, buf, len);
}

static void hvc0_irq(void *opaque, int level)
{
	struct serial_device *d = opaque;
	send_irq(d, d->hvc0_gsi, level);
}

static void hvc0_publish(void *opaque, enum virtio_mmio_shadow which, uint32_t value)
{
	struct serial_device *d = opaque;
	atomic_store_explicit(&d->page->shadow[SLOT_HVC0_FIRST + which], value, memory_order_release);
}

bool serial_attach_hvc0(struct serial_device *d, const struct guest_mem *ram, uint64_t base,
			uint32_t gsi, bool resumed)
{
	d->hvc0_base = base;
	d->hvc0_gsi = gsi;
	d->hvc0.io = (struct virtio_console_io){
		.opaque = d, .output = hvc0_output, .irq = hvc0_irq, .publish_shadow = hvc0_publish};
	return virtio_console_attach(&d->hvc0, &d->state->hvc0, ram, resumed, d->cols, d->rows);
}

void serial_resize(struct serial_device *d, uint16_t cols, uint16_t rows)
{
	d->cols = cols;
	d->rows = rows;
	if (d->cfg.hvc0 && d->hvc0.state)
		virtio_console_resize(&d->hvc0, cols, rows);
}

static bool hvc0_hit(const struct serial_device *d, const struct ipc_io *io)
{
	return d->cfg.hvc0 && d->hvc0.state && io->space == IPC_SPACE_MMIO &&
	       io->addr - d->hvc0_base < VIRTIO_MMIO_WINDOW_SIZE;
}

bool serial_state_valid(const struct serial_state *s)
{
	return s->magic == SERIAL_STATE_MAGIC && s->size == sizeof(*s) &&
	       uart_state_valid(&s->com1) && uart_state_valid(&s->mmio) &&
	       pl011_state_valid(&s->pl011);
}

static void state_init(struct serial_state *s)
{
	uart_init(&s->com1);
	uart_init(&s->mmio);
	pl011_init(&s->pl011);
	s->size = sizeof(*s);
	s->magic = SERIAL_STATE_MAGIC;
}

bool serial_attach(struct serial_device *d, void *page, bool resumed)
{
	d->page = page;
	d->state = (struct serial_state *)((uint8_t *)page + IPC_STATE_DEV_OFFSET);
	bool kept = true;
	if (resumed && !serial_state_valid(d->state)) {
		log_once("the state left by the previous dev-serial is not valid: the UARTs are reset");
		kept = false;
	}
	if (!resumed || !kept)
		state_init(d->state);
	d->page->version = IPC_PROTO_VERSION;
	/* The core's pops while we were away: bytes it took from the ring
	 * leave the receiver (never seen twice); a fresh receiver starts at
	 * the core's head. */
	if (!kept || !resumed) {
		if (!d->cfg.pl011)
			uart_rx_restart_at(&d->state->com1, atomic_load(&d->page->rx.head));
	} else {
		take_rx_pops(d);
	}
	publish(d);
	/* Whatever the core's line says now, make it match the model. */
	if (d->cfg.pl011) {
		pl011_set_irq(d, d->state->pl011.irq_level);
	} else {
		struct uart_io io = com1_io(d);
		uart_line_set(&d->state->com1, UART_LINE_UNKNOWN);
		uart_sync_irq(&d->state->com1, &io);
	}
	return kept;
}

/* ---- IO ---- */

static uint64_t all_ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

enum target_kind { TARGET_NONE, TARGET_UART, TARGET_DEBUGCON };

struct target {
	enum target_kind kind;
	struct uart16550 *uart;
	struct uart_io io;
	unsigned reg;
};

/* What an access from the core hits.  The core should only forward accesses
 * to our ranges with sizes we declared, but its messages are checked. */
static struct target find_target(struct serial_device *d, const struct ipc_io *io)
{
	struct target t = {.kind = TARGET_NONE};
	if (io->size != 1) {
		log_once("ignoring a %u-byte access at %#llx: the registers are 1 byte wide",
			 io->size, (unsigned long long)io->addr);
		return t;
	}
	if (io->space == IPC_SPACE_PIO && io->addr - SERIAL_COM1_BASE < UART_NREGS) {
		t = (struct target){TARGET_UART, &d->state->com1, com1_io(d),
				    (unsigned)(io->addr - SERIAL_COM1_BASE)};
	} else if (io->space == IPC_SPACE_PIO && d->cfg.debugcon && io->addr == d->cfg.debugcon_port) {
		t.kind = TARGET_DEBUGCON;
	} else if (io->space == IPC_SPACE_MMIO && d->cfg.debugcon_mmio &&
		   io->addr == d->cfg.debugcon_mmio_addr) {
		t.kind = TARGET_DEBUGCON;
	} else if (io->space == IPC_SPACE_MMIO && d->cfg.mmio_uart &&
		   io->addr - d->cfg.mmio_base < UART_NREGS) {
		t = (struct target){TARGET_UART, &d->state->mmio, mmio_io(d),
				    (unsigned)(io->addr - d->cfg.mmio_base)};
	} else {
		log_once("ignoring an access to %s %#llx, which is not ours",
			 io->space == IPC_SPACE_PIO ? "port" : "MMIO address",
			 (unsigned long long)io->addr);
	}
	return t;
}

/* An access to the PL011's window (any size: the model takes 1, 2 or 4). */
static bool pl011_hit(const struct serial_device *d, const struct ipc_io *io)
{
	if (!d->cfg.pl011 || io->space != IPC_SPACE_MMIO || io->addr - SERIAL_PL011_BASE >= PL011_SIZE)
		return false;
	if (io->size != 1 && io->size != 2 && io->size != 4) {
		log_once("ignoring a %u-byte PL011 access: its registers take 1, 2 or 4", io->size);
		return false;
	}
	return true;
}

uint64_t serial_read(struct serial_device *d, const struct ipc_io *io)
{
	if (hvc0_hit(d, io))
		return virtio_console_read(&d->hvc0, io->addr - d->hvc0_base, io->size);
	if (pl011_hit(d, io)) {
		struct pl011_io pio = pl011_io(d);
		uint64_t v = pl011_read(&d->state->pl011, (unsigned)(io->addr - SERIAL_PL011_BASE), &pio);
		publish(d);
		return v & all_ones(io->size);
	}
	struct target t = find_target(d, io);
	uint64_t value = all_ones(io->size);
	take_rx_pops(d);
	if (t.kind == TARGET_UART) {
		value = uart_read(t.uart, t.reg, &t.io);
		if (t.uart == &d->state->com1 && t.reg == UART_RBR)
			store_rx_head(d);
	} else if (t.kind == TARGET_DEBUGCON) {
		value = IPC_DEBUGCON_READBACK; /* the core answers these itself */
	}
	publish(d); /* before the reply: the core may read a shadow right after it */
	return value;
}

/* The core changed COM1's line itself just before it sent the message
 * carrying note (ipc.h, struct ipc_line_note), having applied
 * note->irqs_applied of our IPC_IRQ messages.  All of them: the line is at
 * the level it set.  Fewer: the rest land after its change, so the line
 * ends at the level of the last one we sent, which is what the model
 * holds already (no note since that message said all of ours had landed:
 * such a note would have the count of every later one).  More, which no
 * core of ours sends: not known, and the model reports its output at its
 * next look (uart_line_set).  Before the message is applied: its effects
 * are measured against that line.  Why no edge is lost and no line
 * sticks: docs/ARCHITECTURE.md, "THRE raised by the core". */
static void core_touched_line(struct serial_device *d, const struct target *t,
			      const struct ipc_line_note *note)
{
	if (note->action == IPC_LINE_UNTOUCHED)
		return;
	if (t->kind != TARGET_UART || t->uart != &d->state->com1) {
		log_once("ignoring a line note at a register that has no line of ours");
		return;
	}
	int32_t in_flight = (int32_t)(d->irqs_sent - note->irqs_applied);
	if (in_flight == 0)
		uart_line_set(t->uart, note->action == IPC_LINE_RAISED);
	else if (in_flight < 0)
		uart_line_set(t->uart, UART_LINE_UNKNOWN);
}

void serial_write(struct serial_device *d, const struct ipc_io *io)
{
	if (hvc0_hit(d, io)) {
		virtio_console_write(&d->hvc0, io->addr - d->hvc0_base, io->size, io->data);
		return;
	}
	if (pl011_hit(d, io)) {
		struct pl011_io pio = pl011_io(d);
		pl011_write(&d->state->pl011, (unsigned)(io->addr - SERIAL_PL011_BASE),
			    (uint32_t)(io->data & all_ones(io->size)), &pio);
		publish(d);
		return;
	}
	struct target t = find_target(d, io);
	uint8_t byte = (uint8_t)io->data;
	core_touched_line(d, &t, &io->line);
	take_rx_pops(d);
	if (t.kind == TARGET_UART)
		uart_write(t.uart, t.reg, byte, &t.io);
	else if (t.kind == TARGET_DEBUGCON)
		d->sink.output(d->sink.opaque, byte);
	publish(d);
}

void serial_read_done(struct serial_device *d, const struct ipc_io *io)
{
	struct target t = find_target(d, io);
	core_touched_line(d, &t, &io->line);
	take_rx_pops(d);
	bool com1 = t.kind == TARGET_UART && t.uart == &d->state->com1;
	if (com1 && t.reg == UART_IIR)
		uart_iir_read_done(t.uart, (uint8_t)io->data, &t.io);
	else if (com1 && t.reg == UART_RBR && !d->cfg.pl011)
		uart_sync_irq(t.uart, &t.io); /* take_rx_pops popped them */
	else
		log_once("ignoring IO_READ_DONE at %#llx: only COM1's IIR and RBR are answered by the core",
			 (unsigned long long)io->addr);
	publish(d);
}

void serial_reset(struct serial_device *d)
{
	take_rx_pops(d);
	struct uart_io io = com1_io(d);
	uart_reset(&d->state->com1, &io);
	io = mmio_io(d);
	uart_reset(&d->state->mmio, &io);
	struct pl011_io pio = pl011_io(d);
	pl011_reset(&d->state->pl011, &pio);
	if (d->cfg.hvc0 && d->hvc0.state)
		virtio_console_machine_reset(&d->hvc0);
	publish(d);
}

/* ---- as a devlib device ---- */

static void ops_hello(void *dev, struct ipc_hello *h)
{
	struct serial_device *d = dev;
	serial_hello(&d->cfg, h);
}

/* The ranges and the line are explicit: the WELCOME places them as declared. */
static void ops_attach(void *dev, struct ipc_state_page *page, const struct guest_mem *ram,
		       const struct ipc_welcome *w)
{
	struct serial_device *d = dev;
	bool resumed = w->flags & IPC_WELCOME_RESUMED;
	d->irqs_sent = w->irqs_applied; /* ours count on from the core's count */
	serial_attach(d, page, resumed);
	if (d->cfg.hvc0) /* the HELLO's last range and line */
		serial_attach_hvc0(d, ram, w->range_base[w->nranges - 1], w->irq_gsi[w->nirqs - 1], resumed);
}

static uint64_t ops_read(void *dev, const struct ipc_io *io)
{
	return serial_read(dev, io);
}

static void ops_write(void *dev, const struct ipc_io *io)
{
	serial_write(dev, io);
}

static void ops_read_done(void *dev, const struct ipc_io *io)
{
	serial_read_done(dev, io);
}

static void ops_reset(void *dev)
{
	serial_reset(dev);
}

static void ops_doorbell(void *dev, unsigned doorbell, uint32_t bits)
{
	struct serial_device *d = dev;
	if (doorbell == DOORBELL_HVC0 && d->cfg.hvc0 && d->hvc0.state)
		virtio_console_doorbell(&d->hvc0, bits);
}

static void ops_doorbell_quiet(void *dev)
{
	struct serial_device *d = dev;
	if (d->cfg.hvc0 && d->hvc0.state)
		virtio_console_doorbell_quiet(&d->hvc0);
}

const struct dev_ops serial_dev_ops = {
	.hello = ops_hello,
	.attach = ops_attach,
	.read = ops_read,
	.write = ops_write,
	.read_done = ops_read_done,
	.reset = ops_reset,
	.doorbell = ops_doorbell,
	.doorbell_quiet = ops_doorbell_quiet,
};

/* ---- host side ---- */

static bool input_to_hvc0(const struct serial_device *d)
{
	return d->cfg.console == SERIAL_CONSOLE_HVC0 && d->cfg.hvc0;
}

size_t serial_input(struct serial_device *d, const uint8_t *buf, size_t n)
{
	if (input_to_hvc0(d))
		return virtio_console_input(&d->hvc0, buf, n);
	if (d->cfg.pl011) {
		struct pl011_io pio = pl011_io(d);
		size_t taken = pl011_input(&d->state->pl011, buf, n, &pio);
		publish(d);
		return taken;
	}
	struct uart_io io = com1_io(d);
	size_t taken = uart_input(&d->state->com1, buf, n, &io);
	publish(d);
	return taken;
}

size_t serial_input_space(const struct serial_device *d)
{
	if (input_to_hvc0(d))
		return virtio_console_input_space(&d->hvc0);
	if (d->cfg.pl011)
		return pl011_input_space(&d->state->pl011);
	return uart_input_space(&d->state->com1);
}

void serial_quit(struct serial_device *d)
{
	struct ipc_msg m = {.type = IPC_QUIT};
	d->sink.send(d->sink.opaque, &m);
}
