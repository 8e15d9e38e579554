/* test_serial_device.c - dev-serial's message handling and state page
 * (dev-serial/serial_device.h): the HELLO, reads and writes by address,
 * shadows and applied_seq, withdrawing shadows in loopback, resuming or
 * resetting a state page, hostile accesses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipc.h"
#include "serial_device.h"

#define COM1 SERIAL_COM1_BASE
#define DEBUGCON 0xe9
#define DEBUGCON_MMIO 0x996 /* s003's */
#define MMIO_BASE 0xd0000000ull

struct harness {
	struct serial_device d;
	struct ipc_msg sent[64];
	size_t nsent;
	uint8_t out[256];
	size_t nout;
	uint64_t iir_word_at_irq; /* COM1's IIR word as the last IPC_IRQ left */
	bool irqs_published;      /* the sink says IRQs left as no message (dev_send) */
	_Alignas(8) uint8_t page[IPC_STATE_SIZE];
};

static void record_send(void *opaque, const struct ipc_msg *m)
{
	struct harness *h = opaque;
	assert_true(h->nsent < 64);
	h->sent[h->nsent++] = *m;
}

static unsigned iir_slot(void);

static bool record_originated(void *opaque, struct ipc_msg *m)
{
	struct harness *h = opaque;
	if (m->type == IPC_IRQ)
		h->iir_word_at_irq = atomic_load(&((struct ipc_state_page *)h->page)->shadow[iir_slot()]);
	record_send(opaque, m);
	return !(m->type == IPC_IRQ && h->irqs_published);
}

/* The core's message through the library's handler, as in the process. */
static enum dev_verdict serial_handle(struct harness *h, const struct ipc_msg *m)
{
	struct dev_port port = {.ops = &serial_dev_ops, .dev = &h->d, .page = h->d.page,
				.send = record_send, .send_opaque = h};
	return dev_handle(&port, m);
}

static void record_output(void *opaque, uint8_t byte)
{
	struct harness *h = opaque;
	h->out[h->nout++] = byte;
}

static struct ipc_state_page *page_of(struct harness *h)
{
	return (struct ipc_state_page *)h->page;
}

static struct serial_state *state_of(struct harness *h)
{
	return (struct serial_state *)(h->page + IPC_STATE_DEV_OFFSET);
}

static void configure(struct harness *h)
{
	h->d = (struct serial_device){
		.cfg = {.stdio = true, .debugcon = true, .debugcon_port = DEBUGCON,
			.debugcon_mmio = true, .debugcon_mmio_addr = DEBUGCON_MMIO,
			.mmio_uart = true, .mmio_base = MMIO_BASE},
		.sink = {.opaque = h, .send = record_originated, .output = record_output},
	};
}

static int setup(void **state)
{
	struct harness *h = test_calloc(1, sizeof(*h));
	configure(h);
	serial_attach(&h->d, h->page, false);
	h->nsent = 0;
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	test_free(*state);
	return 0;
}

static uint64_t seq = 100;

static uint64_t read_reg(struct harness *h, uint8_t space, uint64_t addr, uint8_t size)
{
	struct ipc_msg m = {.type = IPC_IO_READ, .seq = ++seq};
	m.u.io = (struct ipc_io){.space = space, .size = size, .addr = addr};
	size_t before = h->nsent;
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	/* Exactly one reply with the request's seq (IRQ messages may precede it). */
	assert_true(h->nsent > before);
	const struct ipc_msg *r = &h->sent[h->nsent - 1];
	assert_int_equal(r->type, IPC_IO_REPLY);
	assert_int_equal(r->seq, seq);
	return r->u.io.data;
}

static void write_reg(struct harness *h, uint8_t space, uint64_t addr, uint8_t value)
{
	struct ipc_msg m = {.type = IPC_IO_WRITE, .seq = ++seq};
	m.u.io = (struct ipc_io){.space = space, .size = 1, .addr = addr, .data = value};
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(atomic_load(&page_of(h)->applied_seq), seq);
}

static uint64_t shadow(struct harness *h, unsigned slot)
{
	return atomic_load(&page_of(h)->shadow[slot]);
}

/* The shadow slot the HELLO declares for a register. */
static unsigned slot_for(struct harness *h, uint8_t space, uint64_t addr)
{
	struct ipc_msg m;
	serial_hello(&h->d.cfg, &m.u.hello);
	for (uint32_t i = 0; i < m.u.hello.nregs; i++) {
		const struct ipc_reg *r = &m.u.hello.regs[i];
		if (r->space == space && r->addr == addr) {
			assert_true(r->flags & IPC_REG_SHADOW);
			return r->slot;
		}
	}
	fail_msg("register %#llx is not declared", (unsigned long long)addr);
	return 0;
}

/* COM1's RBR: the receive ring's register. */
static unsigned slot_for_rbr(void)
{
	struct serial_config cfg = {.stdio = true};
	struct ipc_msg m;
	serial_hello(&cfg, &m.u.hello);
	for (uint32_t i = 0; i < m.u.hello.nregs; i++) {
		const struct ipc_reg *r = &m.u.hello.regs[i];
		if (r->space == IPC_SPACE_PIO && r->addr == COM1 + UART_RBR)
			return r->slot;
	}
	fail_msg("RBR is not declared");
	return 0;
}

/* COM1's IIR: a read-acknowledge register (the core answers it). */
static unsigned iir_slot(void)
{
	struct serial_config cfg = {.stdio = true};
	struct ipc_msg m;
	serial_hello(&cfg, &m.u.hello);
	for (uint32_t i = 0; i < m.u.hello.nregs; i++) {
		const struct ipc_reg *r = &m.u.hello.regs[i];
		if (r->space == IPC_SPACE_PIO && r->addr == COM1 + UART_IIR) {
			assert_int_equal(r->flags, IPC_REG_READ_ACK | IPC_REG_RX_RING);
			return r->slot;
		}
	}
	fail_msg("IIR is not declared");
	return 0;
}

/* Bytes in the receive ring the core pops (ipc.h). */
static uint32_t ring_count(struct harness *h)
{
	return atomic_load(&page_of(h)->rx.tail) - atomic_load(&page_of(h)->rx.head);
}

static bool shadows_valid(struct harness *h)
{
	return __atomic_load_n(&page_of(h)->magic, __ATOMIC_ACQUIRE) == IPC_STATE_MAGIC;
}

static void test_hello_encodes_and_decodes(void **state)
{
	struct harness *h = *state;
	struct ipc_msg m = {.type = IPC_HELLO}, back;
	serial_hello(&h->d.cfg, &m.u.hello);
	uint8_t buf[IPC_MAX_MSG];
	int len = ipc_encode(&m, buf, sizeof(buf));
	assert_true(len > 0);
	char err[128] = "";
	assert_int_equal(ipc_decode(buf, (size_t)len, &back, err, sizeof(err)), IPC_OK);
	const struct ipc_hello *hello = &back.u.hello;
	assert_string_equal(hello->name, "serial");
	assert_int_equal(hello->nirqs, 1);
	assert_int_equal(hello->irqs[0].gsi, 4);
	assert_int_equal(hello->irqs[0].trigger, IPC_TRIGGER_EDGE);
	assert_int_equal(hello->ranges[0].kind, IPC_RANGE_UART16550);
	assert_true(hello->ranges[0].has_irq);
	assert_int_equal(hello->nranges, 4); /* COM1, debugcon, debugcon-mmio, MMIO UART */
	/* The debug ports are ranges the core answers reads of: no registers. */
	assert_int_equal(hello->ranges[1].kind, IPC_RANGE_DEBUGCON);
	assert_int_equal(hello->ranges[1].space, IPC_SPACE_PIO);
	assert_int_equal(hello->ranges[2].kind, IPC_RANGE_DEBUGCON);
	assert_int_equal(hello->ranges[2].space, IPC_SPACE_MMIO);
	assert_int_equal(hello->ranges[2].base, DEBUGCON_MMIO);
	for (uint32_t i = 0; i < hello->nregs; i++)
		assert_true(hello->regs[i].addr != DEBUGCON && hello->regs[i].addr != DEBUGCON_MMIO);
	assert_int_equal(hello->ranges[0].base, COM1);
	assert_int_equal(hello->ranges[0].size, 8);
	/* THR is a stream register and RBR pops the receive ring; LSR and
	 * MSR are shadowed. */
	bool thr_stream = false;
	for (uint32_t i = 0; i < hello->nregs; i++)
		if (hello->regs[i].addr == COM1 && hello->regs[i].space == IPC_SPACE_PIO)
			thr_stream = hello->regs[i].flags == (IPC_REG_STREAM | IPC_REG_RX_RING);
	assert_true(thr_stream);
	slot_for(h, IPC_SPACE_PIO, COM1 + UART_LSR);
	slot_for(h, IPC_SPACE_PIO, COM1 + UART_MSR);
	slot_for(h, IPC_SPACE_MMIO, MMIO_BASE + UART_LSR);

	/* Without options: only the UART at 0x3f8. */
	struct serial_config plain = {.stdio = true};
	serial_hello(&plain, &m.u.hello);
	assert_int_equal(m.u.hello.nranges, 1);
	assert_true(ipc_encode(&m, buf, sizeof(buf)) > 0);
}

static void test_fresh_attach_publishes(void **state)
{
	struct harness *h = test_calloc(1, sizeof(*h));
	configure(h);
	memset(h->page, 0xa5, sizeof(h->page)); /* a fresh page is not trusted either */
	assert_true(serial_attach(&h->d, h->page, false));
	assert_true(shadows_valid(h));
	assert_int_equal(page_of(h)->version, IPC_PROTO_VERSION);
	/* COM1's LSR follows the receive ring: 0x60 empty, 0x61 with data. */
	assert_int_equal(shadow(h, slot_for(h, IPC_SPACE_PIO, COM1 + UART_LSR)), 0x6160);
	assert_int_equal(ring_count(h), 0);
	assert_int_equal(shadow(h, slot_for(h, IPC_SPACE_PIO, COM1 + UART_MSR)), 0xb0);
	assert_int_equal(shadow(h, slot_for(h, IPC_SPACE_MMIO, MMIO_BASE + UART_LSR)), 0x60);
	/* The core's line is told the model's level. */
	assert_int_equal(h->nsent, 1);
	assert_int_equal(h->sent[0].type, IPC_IRQ);
	assert_int_equal(h->sent[0].u.irq.line, 4);
	assert_int_equal(h->sent[0].u.irq.level, 0);
	test_free(h);
}

static void test_write_and_read(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1, 'H');
	write_reg(h, IPC_SPACE_PIO, DEBUGCON, 'e');
	write_reg(h, IPC_SPACE_MMIO, MMIO_BASE, 'y');
	assert_int_equal(h->nout, 3);
	assert_memory_equal(h->out, "Hey", 3);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 0x42);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 1), 0x42);
	assert_int_equal(read_reg(h, IPC_SPACE_MMIO, MMIO_BASE + UART_SCR, 1), 0);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, DEBUGCON, 1), 0xe9);
	write_reg(h, IPC_SPACE_MMIO, DEBUGCON_MMIO, '!');
	assert_int_equal(h->nout, 4);
	assert_int_equal(h->out[3], '!');
	assert_int_equal(read_reg(h, IPC_SPACE_MMIO, DEBUGCON_MMIO, 1), 0xe9);
}

/* The paste stall of issue 7, device side.  THRE pending holds IRQ 4 up;
 * host input arrives (the line is up already: no message); the core had
 * answered IIR = THRI from a word older than the input, lowered the line
 * (the READ_DONE's note says so, after every message of ours) and posted
 * READ_DONE.  Applying it, the device raises the line again, and the word
 * published before that message shows the input: the guest gets a fresh
 * edge and finds RX data, where a stale NO_INT would end its handler for
 * good (IRQ 4 is edge-triggered). */
static void test_iir_read_done_gives_input_a_fresh_edge(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IIR, UART_FCR_ENABLE);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_RDI | UART_IER_THRI);
	assert_int_equal(h->sent[h->nsent - 1].type, IPC_IRQ);
	assert_int_equal(h->sent[h->nsent - 1].u.irq.level, 1);
	uint64_t before = shadow(h, iir_slot());
	assert_int_equal(IPC_READ_ACK_RAISED(before), UART_IIR_FIFO_ON | UART_IIR_THRI);
	assert_int_equal(IPC_READ_ACK_CLEAR(before), UART_IIR_FIFO_ON | UART_IIR_NO_INT);
	assert_true(before & IPC_READ_ACK_PENDING);
	assert_true(before & IPC_READ_ACK_REPORTS);
	assert_true(before & IPC_READ_ACK_IDLE);

	size_t n = h->nsent;
	assert_int_equal(serial_input(&h->d, (const uint8_t *)"z", 1), 1);
	assert_int_equal(h->nsent, n);
	/* The input is in the receive ring; the word says that data there
	 * outranks THRE (the core puts it on top: IPC_READ_ACK_RX_*). */
	uint64_t with_input = shadow(h, iir_slot());
	assert_int_equal(ring_count(h), 1);
	assert_true(with_input & IPC_READ_ACK_RX_ENABLED);
	assert_int_equal(IPC_READ_ACK_RX_TRIGGER(with_input), 1);
	assert_int_equal(IPC_READ_ACK_RX_FULL(with_input), UART_IIR_FIFO_ON | UART_IIR_RDI);
	assert_int_equal(IPC_READ_ACK_CLEAR(with_input), UART_IIR_FIFO_ON | UART_IIR_NO_INT);

	struct ipc_msg done = {.type = IPC_IO_READ_DONE, .seq = ++seq};
	done.u.io = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 1, .addr = COM1 + UART_IIR,
				    .data = IPC_READ_ACK_RAISED(before),
				    .line = {IPC_LINE_LOWERED, h->d.irqs_sent}};
	assert_int_equal(serial_handle(h, &done), DEV_CONTINUE);
	assert_int_equal(atomic_load(&page_of(h)->applied_seq), seq);
	assert_int_equal(h->nsent, n + 1);
	assert_int_equal(h->sent[n].type, IPC_IRQ);
	assert_int_equal(h->sent[n].u.irq.line, 4);
	assert_int_equal(h->sent[n].u.irq.level, 1);
	/* Published before the message left: THRE acknowledged, RX data shown. */
	assert_false(h->iir_word_at_irq & IPC_READ_ACK_PENDING);
	assert_true(h->iir_word_at_irq & IPC_READ_ACK_RX_ENABLED);
	assert_int_equal(ring_count(h), 1);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_IIR, 1), UART_IIR_FIFO_ON | UART_IIR_RDI);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'z');
}

/* The core answered IIR "no interrupt" with IRQ 4 up (a "high" of ours had
 * landed after its last lowering) and lowered it (test_core_devproxy.c,
 * test_iir_none_lowers_a_line_left_up): the READ_DONE acknowledges nothing
 * and its note says the line is low.  Input that came meanwhile holds the
 * model's output up: "high", an edge after the lowering.  Had a message of
 * ours been in flight (the note counts fewer), it lands after the lowering
 * and the line ends at its level: nothing to say. */
static void test_iir_none_read_done_says_high_again(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IIR, UART_FCR_ENABLE);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_RDI);
	assert_int_equal(serial_input(&h->d, (const uint8_t *)"q", 1), 1);
	size_t n = h->nsent;
	assert_int_equal(h->sent[n - 1].u.irq.level, 1);
	uint8_t none = UART_IIR_FIFO_ON | UART_IIR_NO_INT;

	struct ipc_msg done = {.type = IPC_IO_READ_DONE, .seq = ++seq};
	done.u.io = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 1, .addr = COM1 + UART_IIR,
				    .data = none, .line = {IPC_LINE_LOWERED, h->d.irqs_sent - 1}};
	assert_int_equal(serial_handle(h, &done), DEV_CONTINUE);
	assert_int_equal(h->nsent, n);

	done.seq = ++seq;
	done.u.io.line.irqs_applied = h->d.irqs_sent;
	assert_int_equal(serial_handle(h, &done), DEV_CONTINUE);
	assert_int_equal(h->nsent, n + 1);
	assert_int_equal(h->sent[n].u.irq.level, 1);
	assert_true(h->iir_word_at_irq & IPC_READ_ACK_RX_ENABLED);
	assert_int_equal(ring_count(h), 1);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'q');
}

/* IER (DLM under DLAB), LCR, MCR and SCR are shadowed: what a read would
 * return, after every write. */
static void test_plain_registers_shadowed(void **state)
{
	struct harness *h = *state;
	unsigned ier = slot_for(h, IPC_SPACE_PIO, COM1 + UART_IER);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, 0x05);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_LCR, UART_LCR_DLAB | 0x03);
	assert_int_equal(shadow(h, ier), 0); /* DLM */
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, 0x12);
	assert_int_equal(shadow(h, ier), 0x12);
	assert_int_equal(shadow(h, slot_for(h, IPC_SPACE_PIO, COM1 + UART_LCR)), 0x83);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_LCR, 0x03);
	assert_int_equal(shadow(h, ier), 0x05);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_MCR, UART_MCR_OUT2 | UART_MCR_DTR);
	assert_int_equal(shadow(h, slot_for(h, IPC_SPACE_PIO, COM1 + UART_MCR)), 0x09);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 0x5a);
	assert_int_equal(shadow(h, slot_for(h, IPC_SPACE_PIO, COM1 + UART_SCR)), 0x5a);
	for (unsigned reg = UART_IER; reg <= UART_SCR; reg++)
		if (reg == UART_IER || reg == UART_LCR || reg == UART_MCR || reg == UART_SCR)
			assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + reg, 1),
					 shadow(h, slot_for(h, IPC_SPACE_PIO, COM1 + reg)));
	assert_true(shadows_valid(h));
}

/* COM1's line after a message whose note says the core lowered it (an
 * acknowledge) or raised it (THR writes) just before sending it. */
static struct ipc_msg noted_read_done(uint8_t action, uint32_t irqs_applied)
{
	struct ipc_msg m = {.type = IPC_IO_READ_DONE, .seq = ++seq};
	m.u.io = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 1, .addr = COM1 + UART_IIR,
				 .data = UART_IIR_FIFO_ON | UART_IIR_THRI, .line = {action, irqs_applied}};
	return m;
}

static struct ipc_msg noted_run(const char *bytes, uint8_t action, uint32_t irqs_applied)
{
	struct ipc_msg m = {.type = IPC_IO_WRITE_RUN, .seq = ++seq};
	m.u.run = (struct ipc_io_run){.space = IPC_SPACE_PIO, .addr = COM1,
				      .count = (uint16_t)strlen(bytes), .line = {action, irqs_applied}};
	memcpy(m.u.run.data, bytes, strlen(bytes));
	return m;
}

/* The core raises IRQ 4 itself when THR writes make THRE pending and
 * lowers it on the acknowledge; its notes say so, with how many of our
 * IPC_IRQ it had applied first.  All of them: the line is where the core
 * put it, and while the model's output agrees the device says nothing —
 * no message per 16 bytes.  Fewer: the rest of ours land after the
 * core's change, so the line ends at the level of the last one we sent,
 * and the device speaks when its output differs from that (the stalled
 * boot: a "high" that reached the core after its lowering left the line
 * up, and the acknowledged model must say "low"). */
static void test_line_notes(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IIR, UART_FCR_ENABLE);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_THRI);
	size_t n = h->nsent;
	assert_int_equal(h->sent[n - 1].u.irq.level, 1);
	uint64_t word = shadow(h, iir_slot());
	assert_true(word & IPC_READ_ACK_LINE_UP);
	assert_true(word & IPC_READ_ACK_ENABLED);
	assert_true(word & IPC_READ_ACK_ENABLE_RAISES);
	assert_int_equal(IPC_READ_ACK_ENABLE_MASK(word), UART_IER_THRI);
	assert_int_equal(IPC_READ_ACK_ENABLE_SLOT(word), slot_for(h, IPC_SPACE_PIO, COM1 + UART_IER));
	uint32_t ours = h->d.irqs_sent;

	/* Lowered before our "high" was applied: it may land after; "low". */
	struct ipc_msg m = noted_read_done(IPC_LINE_LOWERED, ours - 1);
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(h->nsent, n + 1);
	assert_int_equal(h->sent[n].u.irq.level, 0);
	assert_int_equal(h->d.irqs_sent, ours + 1);
	ours++;

	/* Every message applied: raised with a run, lowered on the
	 * acknowledge, raised again — the model agrees each time. */
	m = noted_run("ab", IPC_LINE_RAISED, ours);
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_true(shadow(h, iir_slot()) & IPC_READ_ACK_PENDING);
	m = noted_read_done(IPC_LINE_LOWERED, ours);
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_false(shadow(h, iir_slot()) & IPC_READ_ACK_PENDING);
	m = noted_run("cd", IPC_LINE_RAISED, ours);
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(h->nsent, n + 1);
	assert_int_equal(h->nout, 4);
	assert_memory_equal(h->out, "abcd", 4);

	/* The guest turns THRE off (IER, an ordered write): our "low". */
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, 0);
	assert_int_equal(h->nsent, n + 2);
	assert_int_equal(h->sent[n + 1].u.irq.level, 0);
	assert_false(shadow(h, iir_slot()) & IPC_READ_ACK_ENABLED);
	assert_true(shadow(h, iir_slot()) & IPC_READ_ACK_LINE_UP); /* were it enabled */
	ours++;
	/* and on again: our "high".  The core raised for a THR write before
	 * that "high" was applied: ours lands after its raise, the line ends
	 * up high either way and the model's output is high: nothing to say. */
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_THRI);
	assert_int_equal(h->nsent, n + 3);
	assert_int_equal(h->sent[n + 2].u.irq.level, 1);
	ours++;
	m = noted_run("e", IPC_LINE_RAISED, ours - 1);
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(h->nsent, n + 3);

	/* Lowered on the acknowledge after our "high" landed: the model
	 * agrees. */
	m = noted_read_done(IPC_LINE_LOWERED, ours);
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(h->nsent, n + 3);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, 0); /* no message: the line is low */
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_THRI); /* "high" */
	assert_int_equal(h->nsent, n + 4);
	ours++;
	m = noted_read_done(IPC_LINE_LOWERED, ours - 1); /* crossed our "high": "low" */
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(h->nsent, n + 5);
	assert_int_equal(h->sent[n + 4].u.irq.level, 0);
	ours++;
	m = noted_run("f", IPC_LINE_RAISED, ours - 1); /* crossed that "low": "high" */
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(h->nsent, n + 6);
	assert_int_equal(h->sent[n + 5].u.irq.level, 1);
	assert_true(h->iir_word_at_irq & IPC_READ_ACK_PENDING);
	ours++;

	/* The device behind the core: notes made before our last message
	 * landed, each changing the line the same way as the model's output
	 * changes.  Our message lands after all of them, so the line ends at
	 * its level: nothing to say while the output stays there.  (Taken
	 * as unknown, each said the level again, every message made the next
	 * notes stale, and a guest typing while it printed sent 8 854
	 * IPC_IRQ in a minute.) */
	for (int i = 0; i < 4; i++) {
		m = noted_run("g", IPC_LINE_RAISED, ours - 1);
		assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	}
	assert_int_equal(h->nsent, n + 6);

	/* A note that counts more of ours than we sent (no core of ours
	 * makes one): the level is said again. */
	m = noted_run("h", IPC_LINE_RAISED, ours + 1);
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(h->nsent, n + 7);
	assert_int_equal(h->sent[n + 6].u.irq.level, 1);
	ours++;

	/* An acknowledge the core made without touching the line (it left
	 * the line alone): only a change of the output is said. */
	m = noted_read_done(IPC_LINE_UNTOUCHED, 0);
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(h->nsent, n + 8);
	assert_int_equal(h->sent[n + 7].u.irq.level, 0);
	ours++;
	m = noted_read_done(IPC_LINE_UNTOUCHED, 0);
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(h->nsent, n + 8);
	assert_int_equal(h->d.irqs_sent, ours);
}

/* An interrupt that left as no message (a published line's: dev_send says
 * false) is not counted: the core counts IPC_IRQ messages, and a count
 * ahead of the core's would make every line note look stale (a message
 * more per note: ttyS0 output at half speed beside hvc0's published line). */
static void test_only_irq_messages_are_counted(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IIR, UART_FCR_ENABLE);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_THRI); /* "high", a message */
	uint32_t ours = h->d.irqs_sent;
	h->irqs_published = true;
	size_t n = h->nsent;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, 0); /* "low", no message */
	assert_int_equal(h->nsent, n + 1);
	assert_int_equal(h->d.irqs_sent, ours);
}

/* With DLAB set, offset 0 is the divisor and offset 1 DLM: the IIR word
 * says THR writes raise nothing and names no enable register. */
static void test_iir_word_under_dlab(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_THRI);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_LCR, UART_LCR_DLAB | 0x03);
	uint64_t w = shadow(h, iir_slot());
	assert_false(w & (IPC_READ_ACK_STREAM_RAISES | IPC_READ_ACK_ENABLE_RAISES | IPC_READ_ACK_ENABLED));
	assert_int_equal(IPC_READ_ACK_ENABLE_MASK(w), 0);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_LCR, 0x03);
	assert_int_equal(IPC_READ_ACK_ENABLE_MASK(shadow(h, iir_slot())), UART_IER_THRI);
}

/* A note at a register with no line of ours is ignored (logged once). */
static void test_line_note_elsewhere_ignored(void **state)
{
	struct harness *h = *state;
	struct ipc_msg m = {.type = IPC_IO_WRITE, .seq = ++seq};
	m.u.io = (struct ipc_io){.space = IPC_SPACE_MMIO, .size = 1, .addr = MMIO_BASE, .data = 'm',
				 .line = {IPC_LINE_RAISED, h->d.irqs_sent}};
	assert_int_equal(serial_handle(h, &m), DEV_CONTINUE);
	assert_int_equal(h->nsent, 0);
	assert_int_equal(state_of(h)->com1.irq_level, 0);
	assert_int_equal(h->nout, 1);
}

static void test_stdio_off_drops_uart_output(void **state)
{
	struct harness *h = *state;
	h->d.cfg.stdio = false;
	write_reg(h, IPC_SPACE_PIO, COM1, 'u');
	write_reg(h, IPC_SPACE_PIO, DEBUGCON, 'd'); /* the debug port always prints */
	assert_int_equal(h->nout, 1);
	assert_int_equal(h->out[0], 'd');
}

static void test_input_and_interrupts(void **state)
{
	struct harness *h = *state;
	unsigned lsr_slot = slot_for(h, IPC_SPACE_PIO, COM1 + UART_LSR);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_RDI);
	assert_int_equal(h->nsent, 0);
	assert_int_equal(serial_input(&h->d, (const uint8_t *)"hi", 2), 2);
	/* The line rose and the LSR shadow shows data ready. */
	assert_int_equal(h->nsent, 1);
	assert_int_equal(h->sent[0].type, IPC_IRQ);
	assert_int_equal(h->sent[0].u.irq.level, 1);
	assert_int_equal(shadow(h, lsr_slot), 0x6160);
	assert_int_equal(ring_count(h), 1);
	/* 'h' in the receiver keeps its room in the queue (a FIFO clear
	 * would give it back), 'i' is queued. */
	assert_int_equal(serial_input_space(&h->d), UART_INPUT_SIZE - 2);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'h');
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'i');
	assert_int_equal(ring_count(h), 0);
	/* The IRQ went down before the reply to the read that drained it. */
	assert_int_equal(h->sent[h->nsent - 2].type, IPC_IRQ);
	assert_int_equal(h->sent[h->nsent - 2].u.irq.level, 0);
	assert_int_equal(serial_input_space(&h->d), UART_INPUT_SIZE);
}

static void test_loopback_withdraws_shadows(void **state)
{
	struct harness *h = *state;
	assert_true(shadows_valid(h));
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_MCR, UART_MCR_LOOP | 0x0a);
	/* Withdrawn before applied_seq moved (write_reg checked applied_seq). */
	assert_false(shadows_valid(h));
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_MSR, 1) & 0xf0, 0x90);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_MCR, 0);
	assert_false(shadows_valid(h)); /* modem deltas still unread */
	read_reg(h, IPC_SPACE_PIO, COM1 + UART_MSR, 1);
	assert_true(shadows_valid(h));
	/* The MMIO UART counts too. */
	write_reg(h, IPC_SPACE_MMIO, MMIO_BASE + UART_MCR, UART_MCR_LOOP);
	assert_false(shadows_valid(h));
}

static void test_hostile_accesses(void **state)
{
	struct harness *h = *state;
	/* Not ours: all-ones of the access size, nothing changes. */
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, 0x2f8, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_MMIO, COM1, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, 0x3f7, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, 0x400, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_MMIO, MMIO_BASE - 1, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_MMIO, MMIO_BASE + 8, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, UINT64_MAX, 1), 0xff);
	/* Wrong sizes on our registers. */
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_LSR, 2), 0xffff);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 8), UINT64_MAX);
	struct ipc_msg m = {.type = IPC_IO_WRITE, .seq = ++seq};
	m.u.io = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 4, .addr = COM1, .data = 'x'};
	serial_handle(h, &m);
	assert_int_equal(h->nout, 0);
	/* Messages a device never gets are ignored. */
	static const uint8_t odd_types[] = {IPC_HELLO, IPC_WELCOME, IPC_REJECT, IPC_IO_REPLY,
					    IPC_IRQ, IPC_QUIT, IPC_PONG};
	for (size_t i = 0; i < sizeof(odd_types); i++) {
		struct ipc_msg o = {.type = odd_types[i], .seq = ++seq};
		assert_int_equal(serial_handle(h, &o), DEV_CONTINUE);
	}
	assert_int_equal(h->nout, 0);
}

static void test_ping_reset_shutdown(void **state)
{
	struct harness *h = *state;
	struct ipc_msg m = {.type = IPC_PING, .seq = 77};
	serial_handle(h, &m);
	assert_int_equal(h->sent[h->nsent - 1].type, IPC_PONG);
	assert_int_equal(h->sent[h->nsent - 1].seq, 77);

	write_reg(h, IPC_SPACE_PIO, COM1 + UART_LCR, 0x03);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_THRI);
	assert_int_equal(h->sent[h->nsent - 1].u.irq.level, 1);
	m = (struct ipc_msg){.type = IPC_RESET, .seq = ++seq};
	serial_handle(h, &m);
	assert_int_equal(h->sent[h->nsent - 1].u.irq.level, 0);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_LCR, 1), 0);

	m = (struct ipc_msg){.type = IPC_SHUTDOWN, .seq = ++seq};
	assert_int_equal(serial_handle(h, &m), DEV_EXIT);
}

static void test_resume(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 0x77);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_RDI);
	serial_input(&h->d, (const uint8_t *)"abc", 3);

	/* A new incarnation on the same page carries on, and re-reports the
	 * interrupt level to the core. */
	configure(h);
	h->nsent = 0;
	assert_true(serial_attach(&h->d, h->page, true));
	assert_int_equal(h->nsent, 1);
	assert_int_equal(h->sent[0].u.irq.level, 1);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 1), 0x77);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'a');
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'b');

	/* A damaged page is reset, never trusted. */
	state_of(h)->com1.rx_tail += 5;
	configure(h);
	assert_false(serial_attach(&h->d, h->page, true));
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 1), 0);
	assert_true(shadows_valid(h));

	memset(h->page + IPC_STATE_DEV_OFFSET, 0xff, sizeof(struct serial_state));
	configure(h);
	assert_false(serial_attach(&h->d, h->page, true));
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_LSR, 1), 0x60);

	/* A page from a different layout is not resumed. */
	state_of(h)->size--;
	configure(h);
	assert_false(serial_attach(&h->d, h->page, true));
}

/* A restart between the core's raise and the device's apply: the core
 * raised IRQ 4 for a THR write and queued the run for the incarnation that
 * died; the next one gets it after its WELCOME, whose count (40) is where
 * its own messages count on from.  Its first word to the core (the level,
 * at attach) may land after the raise, so a note stamped before the HELLO
 * is never taken for the truth: the level is said again.  Nothing is
 * doubled: the run's byte is transmitted once. */
static void test_line_note_from_before_a_restart(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_THRI);
	struct ipc_msg ack = noted_read_done(IPC_LINE_LOWERED, h->d.irqs_sent);
	assert_int_equal(serial_handle(h, &ack), DEV_CONTINUE);

	configure(h);
	h->nsent = 0;
	struct ipc_welcome w = {.flags = IPC_WELCOME_RESUMED, .irqs_applied = 40};
	serial_dev_ops.attach(&h->d, page_of(h), NULL, &w);
	assert_int_equal(h->nsent, 1);
	assert_int_equal(h->sent[0].u.irq.level, 0);
	assert_int_equal(h->d.irqs_sent, 41);
	struct ipc_msg run = noted_run("r", IPC_LINE_RAISED, 40);
	assert_int_equal(serial_handle(h, &run), DEV_CONTINUE);
	assert_int_equal(h->nsent, 2);
	assert_int_equal(h->sent[1].u.irq.level, 1);
	assert_int_equal(h->nout, 1);
	/* From then on the counts agree: nothing to say. */
	ack = noted_read_done(IPC_LINE_LOWERED, 42);
	assert_int_equal(serial_handle(h, &ack), DEV_CONTINUE);
	run = noted_run("s", IPC_LINE_RAISED, 42);
	assert_int_equal(serial_handle(h, &run), DEV_CONTINUE);
	assert_int_equal(h->nsent, 2);
	assert_memory_equal(h->out, "rs", 2);
}

/* The core pops n bytes from the receive ring as rx_pop_here does (the
 * page's head), returning them. */
static void core_pops(struct harness *h, unsigned n, char *out)
{
	struct ipc_rx_ring *r = &page_of(h)->rx;
	uint32_t head = atomic_load(&r->head);
	assert_true(atomic_load(&r->tail) - head >= n);
	for (unsigned i = 0; i < n; i++)
		out[i] = (char)atomic_load(&r->data[(head + i) % IPC_RX_RING_SIZE]);
	atomic_store(&r->head, head + n);
}

static void rbr_read_done(struct harness *h)
{
	struct ipc_msg done = {.type = IPC_IO_READ_DONE, .seq = ++seq};
	done.u.io = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 1, .addr = COM1 + UART_RBR};
	assert_int_equal(serial_handle(h, &done), DEV_CONTINUE);
}

/* An interrupt-driven guest (Linux: FIFO on, receive interrupt on) sees a
 * batch of 16 in the ring; the core pops it; the READ_DONE of the pop that
 * emptied it brings the next batch in and says the level again (high, the
 * line the core lowered gets a fresh edge).  A pop the device hears of on
 * any other message is taken first. */
static void test_rx_ring_batches(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IIR, UART_FCR_ENABLE | 0xc0 /* trigger 14 */);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_RDI);
	const char *paste = "0123456789abcdefghijklmnopqrstuvwxyz";
	assert_int_equal(serial_input(&h->d, (const uint8_t *)paste, 36), 36);
	assert_int_equal(ring_count(h), 16); /* the FIFO's batch, no more */
	uint64_t iir = shadow(h, iir_slot());
	assert_int_equal(IPC_READ_ACK_RX_TRIGGER(iir), 14);
	assert_int_equal(IPC_READ_ACK_RX_PARTIAL(iir), UART_IIR_FIFO_ON | UART_IIR_CTI);
	assert_int_equal(h->sent[h->nsent - 1].u.irq.level, 1);
	char got[40];
	core_pops(h, 3, got);
	write_reg(h, IPC_SPACE_PIO, COM1, '!'); /* a THR write: the device takes the pops */
	assert_int_equal(state_of(h)->com1.rx_head, atomic_load(&page_of(h)->rx.head));
	assert_int_equal(ring_count(h), 13);
	core_pops(h, 13, got + 3);
	size_t n = h->nsent;
	rbr_read_done(h);
	assert_memory_equal(got, paste, 16);
	assert_int_equal(ring_count(h), 16);
	/* The model fell and rose (taking the pops), then READ_DONE said
	 * "high" again: whatever the core's line was, it is up with an edge. */
	assert_true(h->nsent > n);
	assert_int_equal(h->sent[h->nsent - 1].type, IPC_IRQ);
	assert_int_equal(h->sent[h->nsent - 1].u.irq.level, 1);
	core_pops(h, 16, got + 16);
	rbr_read_done(h);
	assert_int_equal(ring_count(h), 4);
	core_pops(h, 4, got + 32);
	rbr_read_done(h);
	assert_memory_equal(got, paste, 36);
	assert_int_equal(ring_count(h), 0);
	assert_int_equal(h->sent[h->nsent - 1].u.irq.level, 0);
	assert_int_equal(serial_input_space(&h->d), UART_INPUT_SIZE);
}

/* A polling guest (receive interrupt off) with the FIFO off: the ring holds
 * the receiver's byte and the input queued behind it, so the core hands out
 * 16 bytes per message, not one.  Enabling the receive interrupt takes the
 * queued ones back out of view (a 1-byte receiver again). */
static void test_rx_ring_polling_guest_sees_queued_input(void **state)
{
	struct harness *h = *state;
	assert_int_equal(serial_input(&h->d, (const uint8_t *)"hello, world!!!!xyz", 19), 19);
	assert_int_equal(ring_count(h), 16);
	char got[19];
	core_pops(h, 16, got);
	rbr_read_done(h);
	assert_int_equal(ring_count(h), 3);
	assert_int_equal(uart_lsr(&state_of(h)->com1) & UART_LSR_DR, UART_LSR_DR);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_RDI);
	assert_int_equal(ring_count(h), 1);
	core_pops(h, 1, got + 16);
	rbr_read_done(h);
	assert_int_equal(ring_count(h), 1);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'y'); /* through the device */
	assert_int_equal(atomic_load(&page_of(h)->rx.head), state_of(h)->com1.rx_head);
	core_pops(h, 1, got + 18);
	rbr_read_done(h);
	assert_memory_equal(got, "hello, world!!!!x", 17);
	assert_int_equal(got[18], 'z');
	/* In DLAB, RBR is DLL: the ring is not popped. */
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_LCR, UART_LCR_DLAB);
	assert_false(shadow(h, slot_for_rbr()) & IPC_RX_POP_LIVE);
}

/* dev-serial killed mid-paste: bytes the core popped before the new
 * incarnation attached are not delivered again; those still in the ring
 * are kept.  A head the page cannot explain (torn) drops the receiver's
 * bytes: lost, never doubled. */
static void test_rx_ring_restart_mid_paste(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IIR, UART_FCR_ENABLE);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_RDI);
	const char *paste = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	serial_input(&h->d, (const uint8_t *)paste, 26);
	char got[26];
	core_pops(h, 5, got); /* the device dies before it hears of these */
	configure(h);
	h->nsent = 0;
	assert_true(serial_attach(&h->d, h->page, true));
	assert_int_equal(ring_count(h), 11);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'F');
	core_pops(h, 10, got + 5);
	rbr_read_done(h);
	assert_memory_equal(got + 5, "GHIJKLMNOP", 10);
	assert_int_equal(ring_count(h), 10);

	/* Torn: the head points past everything the receiver holds. */
	atomic_fetch_add(&page_of(h)->rx.head, 40);
	configure(h);
	assert_true(serial_attach(&h->d, h->page, true));
	assert_int_equal(ring_count(h), 0);
	assert_int_equal(state_of(h)->com1.rx_head, atomic_load(&page_of(h)->rx.head));
	/* A state that is reset starts at the core's head too. */
	state_of(h)->com1.rx_tail += 99;
	configure(h);
	assert_false(serial_attach(&h->d, h->page, true));
	assert_int_equal(ring_count(h), 0);
	assert_int_equal(state_of(h)->com1.rx_head, atomic_load(&page_of(h)->rx.head));
}

/* hvc0 beside the UARTs: the HELLO's last range asks for a slot (its
 * registers as offsets), MMIO accesses in the slot the core gave
 * reach the virtio-console, its shadows sit after the UARTs', and with
 * console = hvc0 the terminal's input goes to it, not to the UART. */
static void test_hvc0_beside_the_uarts(void **state)
{
	struct harness *h = test_calloc(1, sizeof(*h));
	configure(h);
	h->d.cfg.hvc0 = true;
	h->d.cfg.console = SERIAL_CONSOLE_HVC0;
	struct ipc_msg m = {.type = IPC_HELLO, .seq = 1};
	serial_hello(&h->d.cfg, &m.u.hello);
	const struct ipc_hello *hello = &m.u.hello;
	assert_int_equal(hello->nregs, 11 + VIRTIO_CONSOLE_HELLO_REGS); /* 8 of COM1, 3 of the MMIO UART */
	const struct ipc_range *r = &hello->ranges[hello->nranges - 1];
	assert_int_equal(r->kind, IPC_RANGE_VIRTIO_MMIO);
	assert_int_equal(r->base, 0);
	assert_int_equal(hello->irqs[r->irq].gsi, IPC_IRQ_ANY);
	uint8_t wire[IPC_MAX_MSG];
	assert_true(ipc_encode(&m, wire, sizeof(wire)) > 0);

	static uint8_t ram[1 << 16];
	struct guest_mem mem = {.base = ram, .size = sizeof(ram)};
	serial_attach(&h->d, h->page, false);
	serial_resize(&h->d, 90, 30);
	assert_true(serial_attach_hvc0(&h->d, &mem, 0xd0001000, 16, false));
	struct ipc_io io = {.space = IPC_SPACE_MMIO, .size = 4, .addr = 0xd0001000};
	assert_int_equal(serial_read(&h->d, &io), VIRTIO_MMIO_MAGIC);
	io.addr = 0xd0001000 + VIRTIO_MMIO_DEVICE_ID;
	assert_int_equal(serial_read(&h->d, &io), VIRTIO_CONSOLE_DEVICE_ID);
	io = (struct ipc_io){.space = IPC_SPACE_MMIO, .size = 2, .addr = 0xd0001000 + VIRTIO_MMIO_CONFIG};
	assert_int_equal(serial_read(&h->d, &io), 90);
	/* The core answers MagicValue from the slot after the UARTs' (the PL011's, COM1's RBR). */
	assert_int_equal(page_of(h)->shadow[11 + VIRTIO_SHADOW_MAGIC], VIRTIO_MMIO_MAGIC);

	size_t uart_space = serial_input_space(&h->d);
	assert_int_equal(uart_space, VIRTIO_CONSOLE_INPUT_SIZE);
	assert_int_equal(serial_input(&h->d, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(serial_input_space(&h->d), VIRTIO_CONSOLE_INPUT_SIZE - 2);
	assert_int_equal(state_of(h)->hvc0.in_len, 2);
	assert_int_equal(uart_input_space(&state_of(h)->com1), UART_INPUT_SIZE); /* not the UART's */
	test_free(h);
}

/* The arm64 board's UART: a PL011 in place of the 16550 at 0x3f8, on a
 * level-triggered line, its FR shadowed, the terminal's input its own. */
static void test_pl011_in_place_of_com1(void **state)
{
	struct harness *h = test_calloc(1, sizeof(*h));
	configure(h);
	h->d.cfg.pl011 = true;
	struct ipc_msg m = {.type = IPC_HELLO, .seq = 1};
	serial_hello(&h->d.cfg, &m.u.hello);
	const struct ipc_hello *hello = &m.u.hello;
	uint8_t wire[IPC_MAX_MSG];
	assert_true(ipc_encode(&m, wire, sizeof(wire)) > 0);
	assert_int_equal(hello->irqs[0].gsi, SERIAL_PL011_IRQ);
	assert_int_equal(hello->irqs[0].trigger, IPC_TRIGGER_LEVEL);
	assert_int_equal(hello->ranges[0].kind, IPC_RANGE_PL011);
	assert_int_equal(hello->ranges[0].base, SERIAL_PL011_BASE);
	for (uint32_t i = 0; i < hello->nranges; i++)
		assert_int_not_equal(hello->ranges[i].space == IPC_SPACE_PIO &&
				     hello->ranges[i].base == COM1, 1);
	serial_attach(&h->d, h->page, false);
	unsigned fr_slot = slot_for(h, IPC_SPACE_MMIO, SERIAL_PL011_BASE + PL011_FR);
	assert_int_equal(shadow(h, fr_slot), PL011_FR_TXFE | PL011_FR_RXFE);

	struct ipc_msg w = {.type = IPC_IO_WRITE, .seq = ++seq};
	w.u.io = (struct ipc_io){.space = IPC_SPACE_MMIO, .size = 4,
				 .addr = SERIAL_PL011_BASE + PL011_IMSC, .data = PL011_INT_RX};
	assert_int_equal(serial_handle(h, &w), DEV_CONTINUE);
	w.seq = ++seq;
	w.u.io = (struct ipc_io){.space = IPC_SPACE_MMIO, .size = 2,
				 .addr = SERIAL_PL011_BASE + PL011_DR, .data = 'A'};
	assert_int_equal(serial_handle(h, &w), DEV_CONTINUE);
	assert_int_equal(h->nout, 1);
	assert_int_equal(h->out[0], 'A');
	size_t before = h->nsent;
	assert_int_equal(serial_input(&h->d, (const uint8_t *)"z", 1), 1);
	assert_int_equal(h->nsent, before + 1);
	assert_int_equal(h->sent[before].u.irq.line, SERIAL_PL011_IRQ);
	assert_int_equal(h->sent[before].u.irq.level, 1);
	assert_int_equal(shadow(h, fr_slot), PL011_FR_TXFE);
	assert_int_equal(read_reg(h, IPC_SPACE_MMIO, SERIAL_PL011_BASE + PL011_DR, 4), 'z');
	assert_int_equal(shadow(h, fr_slot), PL011_FR_TXFE | PL011_FR_RXFE);
	assert_int_equal(uart_input_space(&state_of(h)->com1), UART_INPUT_SIZE); /* not COM1's */
	test_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello_encodes_and_decodes, setup, teardown),
		cmocka_unit_test(test_fresh_attach_publishes),
		cmocka_unit_test_setup_teardown(test_write_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdio_off_drops_uart_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iir_read_done_gives_input_a_fresh_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_notes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iir_none_read_done_says_high_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_note_elsewhere_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_only_irq_messages_are_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iir_word_under_dlab, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_registers_shadowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_and_interrupts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_withdraws_shadows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ping_reset_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_note_from_before_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_ring_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_ring_polling_guest_sees_queued_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_ring_restart_mid_paste, setup, teardown),
		cmocka_unit_test(test_hvc0_beside_the_uarts),
		cmocka_unit_test(test_pl011_in_place_of_com1),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
