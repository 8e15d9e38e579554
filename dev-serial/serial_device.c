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
	SLOT_DEBUGCON,
	SLOT_MMIO_LSR,
	SLOT_MMIO_MSR,
};

/* ---- the models' effects ---- */

static void send_msg(struct serial_device *d, struct ipc_msg *m)
{
	m->seq = d->next_seq++;
	d->sink.send(d->sink.opaque, m);
}

static void uart_output(void *opaque, uint8_t byte)
{
	struct serial_device *d = opaque;
	if (d->cfg.stdio)
		d->sink.output(d->sink.opaque, byte);
}

static void com1_set_irq(void *opaque, int level)
{
	struct serial_device *d = opaque;
	struct ipc_msg m = {.type = IPC_IRQ};
	m.u.irq.line = SERIAL_COM1_IRQ;
	m.u.irq.level = (uint32_t)level;
	send_msg(d, &m);
}

/* The MMIO UART has no interrupt line: the guests that use it poll. */
static void no_irq(void *opaque, int level)
{
}

static struct uart_io com1_io(struct serial_device *d)
{
	return (struct uart_io){.opaque = d, .output = uart_output, .set_irq = com1_set_irq};
}

static struct uart_io mmio_io(struct serial_device *d)
{
	return (struct uart_io){.opaque = d, .output = uart_output, .set_irq = no_irq};
}

/* ---- HELLO ---- */

static void add_range(struct ipc_hello *h, enum ipc_space space, uint64_t base, uint64_t size)
{
	h->ranges[h->nranges++] = (struct ipc_range){.space = space, .base = base, .size = size};
}

/* slot matters only with IPC_REG_SHADOW. */
static void add_reg(struct ipc_hello *h, enum ipc_space space, uint64_t addr, uint8_t flags,
		    enum serial_slot slot)
{
	h->regs[h->nregs++] = (struct ipc_reg){
		.space = space, .size = 1, .flags = flags, .slot = slot, .addr = addr};
}

void serial_hello(const struct serial_config *cfg, struct ipc_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = IPC_HELLO;
	struct ipc_hello *h = &m->u.hello;
	h->version = IPC_PROTO_VERSION;
	strcpy(h->name, "serial");
	h->irqs[h->nirqs++] = SERIAL_COM1_IRQ;

	add_range(h, IPC_SPACE_PIO, SERIAL_COM1_BASE, UART_NREGS);
	add_reg(h, IPC_SPACE_PIO, SERIAL_COM1_BASE + UART_RBR, IPC_REG_STREAM, 0);
	add_reg(h, IPC_SPACE_PIO, SERIAL_COM1_BASE + UART_LSR, IPC_REG_SHADOW, SLOT_COM1_LSR);
	add_reg(h, IPC_SPACE_PIO, SERIAL_COM1_BASE + UART_MSR, IPC_REG_SHADOW, SLOT_COM1_MSR);
	if (cfg->debugcon) {
		add_range(h, IPC_SPACE_PIO, cfg->debugcon_port, 1);
		add_reg(h, IPC_SPACE_PIO, cfg->debugcon_port, IPC_REG_SHADOW | IPC_REG_STREAM,
			SLOT_DEBUGCON);
	}
	if (cfg->mmio_uart) {
		add_range(h, IPC_SPACE_MMIO, cfg->mmio_base, UART_NREGS);
		add_reg(h, IPC_SPACE_MMIO, cfg->mmio_base + UART_RBR, IPC_REG_STREAM, 0);
		add_reg(h, IPC_SPACE_MMIO, cfg->mmio_base + UART_LSR, IPC_REG_SHADOW, SLOT_MMIO_LSR);
		add_reg(h, IPC_SPACE_MMIO, cfg->mmio_base + UART_MSR, IPC_REG_SHADOW, SLOT_MMIO_MSR);
	}
}

/* ---- the state page ---- */

/* Store the shadowed registers' values, then say whether the core may use
 * them (serial_device.h).  Release: a core that sees the magic sees the
 * values stored before it. */
static void publish(struct serial_device *d)
{
	struct ipc_state_page *p = d->page;
	const struct uart16550 *com1 = &d->state->com1, *mmio = &d->state->mmio;
	bool pure = uart_status_reads_pure(com1);
	atomic_store_explicit(&p->shadow[SLOT_COM1_LSR], uart_lsr(com1), memory_order_relaxed);
	atomic_store_explicit(&p->shadow[SLOT_COM1_MSR], uart_msr(com1), memory_order_relaxed);
	atomic_store_explicit(&p->shadow[SLOT_DEBUGCON], SERIAL_DEBUGCON_READBACK,
			      memory_order_relaxed);
	if (d->cfg.mmio_uart) {
		pure = pure && uart_status_reads_pure(mmio);
		atomic_store_explicit(&p->shadow[SLOT_MMIO_LSR], uart_lsr(mmio), memory_order_relaxed);
		atomic_store_explicit(&p->shadow[SLOT_MMIO_MSR], uart_msr(mmio), memory_order_relaxed);
	}
	__atomic_store_n(&p->magic, pure ? IPC_STATE_MAGIC : 0, __ATOMIC_RELEASE);
}

bool serial_state_valid(const struct serial_state *s)
{
	return s->magic == SERIAL_STATE_MAGIC && s->size == sizeof(*s) &&
	       uart_state_valid(&s->com1) && uart_state_valid(&s->mmio);
}

static void state_init(struct serial_state *s)
{
	uart_init(&s->com1);
	uart_init(&s->mmio);
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
	publish(d);
	/* Whatever the core's line says now, make it match the model. */
	struct uart_io io = com1_io(d);
	io.set_irq(io.opaque, d->state->com1.irq_level);
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

static void io_read(struct serial_device *d, const struct ipc_msg *m)
{
	struct target t = find_target(d, &m->u.io);
	uint64_t value = all_ones(m->u.io.size);
	if (t.kind == TARGET_UART)
		value = uart_read(t.uart, t.reg, &t.io);
	else if (t.kind == TARGET_DEBUGCON)
		value = SERIAL_DEBUGCON_READBACK;
	publish(d); /* before the reply: the core may read a shadow right after it */

	struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = m->seq};
	reply.u.io = m->u.io;
	reply.u.io.data = value;
	d->sink.send(d->sink.opaque, &reply);
}

static void io_write(struct serial_device *d, const struct ipc_msg *m)
{
	struct target t = find_target(d, &m->u.io);
	uint8_t byte = (uint8_t)m->u.io.data;
	if (t.kind == TARGET_UART)
		uart_write(t.uart, t.reg, byte, &t.io);
	else if (t.kind == TARGET_DEBUGCON)
		d->sink.output(d->sink.opaque, byte);
	publish(d);
	/* Release: the shadows above are visible to a core that sees this. */
	atomic_store_explicit(&d->page->applied_seq, m->seq, memory_order_release);
}

bool serial_keep_early(const struct ipc_msg *m)
{
	return m->type == IPC_IO_WRITE || m->type == IPC_RESET;
}

enum serial_verdict serial_handle(struct serial_device *d, const struct ipc_msg *m)
{
	switch (m->type) {
	case IPC_IO_READ:
		io_read(d, m);
		break;
	case IPC_IO_WRITE:
		io_write(d, m);
		break;
	case IPC_RESET: {
		struct uart_io io = com1_io(d);
		uart_reset(&d->state->com1, &io);
		io = mmio_io(d);
		uart_reset(&d->state->mmio, &io);
		publish(d);
		/* A reset is ordered like a write: the core's shadow reads wait for it. */
		atomic_store_explicit(&d->page->applied_seq, m->seq, memory_order_release);
		break;
	}
	case IPC_SHUTDOWN:
		return SERIAL_EXIT;
	case IPC_PING: {
		struct ipc_msg pong = {.type = IPC_PONG, .seq = m->seq};
		d->sink.send(d->sink.opaque, &pong);
		break;
	}
	case IPC_PONG:
		break;
	default:
		log_once("ignoring an unexpected %s message from the core", ipc_type_name(m->type));
		break;
	}
	return SERIAL_CONTINUE;
}

/* ---- host side ---- */

size_t serial_input(struct serial_device *d, const uint8_t *buf, size_t n)
{
	struct uart_io io = com1_io(d);
	size_t taken = uart_input(&d->state->com1, buf, n, &io);
	publish(d);
	return taken;
}

size_t serial_input_space(const struct serial_device *d)
{
	return uart_input_space(&d->state->com1);
}

void serial_quit(struct serial_device *d)
{
	struct ipc_msg m = {.type = IPC_QUIT};
	send_msg(d, &m);
}
