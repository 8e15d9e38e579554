/* test_uart.c - the 16550A model (dev-serial/uart16550.h): registers, DLAB,
 * FIFO and trigger levels, interrupt priorities and IIR, THRE rules,
 * loopback, LSR errors, the input queue's backpressure, state validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uart16550.h"

/* What the model did through its callbacks. */
struct effects {
	uint8_t out[8192];
	size_t nout;
	int level;      /* last level reported */
	int irq_calls;  /* number of reports */
	int rises;      /* reports of 1 after 0: edges an ISA IRQ sees */
};

static void record_output(void *opaque, uint8_t byte)
{
	struct effects *e = opaque;
	e->out[e->nout++] = byte;
}

static void record_irq(void *opaque, int level)
{
	struct effects *e = opaque;
	if (level && !e->level)
		e->rises++;
	e->level = level;
	e->irq_calls++;
}

struct fixture {
	struct uart16550 u;
	struct effects fx;
	struct uart_io io;
};

static struct fixture *new_fixture(void)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	uart_init(&f->u);
	f->io = (struct uart_io){.opaque = &f->fx, .output = record_output, .set_irq = record_irq};
	return f;
}

static int setup(void **state)
{
	*state = new_fixture();
	return 0;
}

static int teardown(void **state)
{
	test_free(*state);
	return 0;
}

static uint8_t rd(struct fixture *f, unsigned reg)
{
	return uart_read(&f->u, reg, &f->io);
}

static void wr(struct fixture *f, unsigned reg, uint8_t v)
{
	uart_write(&f->u, reg, v, &f->io);
}

static void input(struct fixture *f, const char *s)
{
	assert_int_equal(uart_input(&f->u, (const uint8_t *)s, strlen(s), &f->io), strlen(s));
}

static void test_reset_values(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(rd(f, UART_IER), 0);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_NO_INT);
	assert_int_equal(rd(f, UART_LCR), 0);
	assert_int_equal(rd(f, UART_MCR), 0);
	assert_int_equal(rd(f, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(rd(f, UART_MSR), UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD);
	assert_int_equal(rd(f, UART_SCR), 0);
	assert_int_equal(f->fx.irq_calls, 0);
	assert_true(uart_status_reads_pure(&f->u));
}

static void test_plain_registers(void **state)
{
	struct fixture *f = *state;
	wr(f, UART_SCR, 0x5a);
	assert_int_equal(rd(f, UART_SCR), 0x5a);
	wr(f, UART_LCR, 0x1b);
	assert_int_equal(rd(f, UART_LCR), 0x1b);
	wr(f, UART_IER, 0xff); /* only the low four bits exist */
	assert_int_equal(rd(f, UART_IER), 0x0f);
	wr(f, UART_MCR, 0xff & ~UART_MCR_LOOP);
	assert_int_equal(rd(f, UART_MCR), 0x0f);
	/* LSR and MSR ignore writes. */
	wr(f, UART_LSR, 0);
	wr(f, UART_MSR, 0);
	assert_int_equal(uart_lsr(&f->u), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(uart_msr(&f->u), 0xb0);
}

static void test_dlab(void **state)
{
	struct fixture *f = *state;
	wr(f, UART_IER, UART_IER_RDI);
	wr(f, UART_LCR, UART_LCR_DLAB | 0x03);
	wr(f, UART_RBR, 0x01); /* DLL, not THR */
	wr(f, UART_IER, 0x02); /* DLM, not IER */
	assert_int_equal(f->fx.nout, 0);
	assert_int_equal(rd(f, UART_RBR), 0x01);
	assert_int_equal(rd(f, UART_IER), 0x02);
	wr(f, UART_LCR, 0x03);
	assert_int_equal(rd(f, UART_IER), UART_IER_RDI);
	wr(f, UART_RBR, 'x');
	assert_int_equal(f->fx.nout, 1);
	assert_int_equal(f->fx.out[0], 'x');
	wr(f, UART_LCR, UART_LCR_DLAB);
	assert_int_equal(rd(f, UART_RBR), 0x01); /* the divisor survived */
	assert_int_equal(rd(f, UART_IER), 0x02);
}

static void test_transmit(void **state)
{
	struct fixture *f = *state;
	const char *msg = "Hello\n";
	for (const char *p = msg; *p; p++) {
		assert_true(rd(f, UART_LSR) & UART_LSR_THRE);
		wr(f, UART_RBR, (uint8_t)*p);
	}
	assert_int_equal(f->fx.nout, strlen(msg));
	assert_memory_equal(f->fx.out, msg, strlen(msg));
	assert_int_equal(uart_lsr(&f->u), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(f->fx.irq_calls, 0); /* no interrupt enabled */
}

static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;
	wr(f, UART_IER, UART_IER_THRI); /* rising edge with THRE set: pending */
	assert_int_equal(f->fx.level, 1);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_THRI);
	/* That IIR read acknowledged it. */
	assert_int_equal(f->fx.level, 0);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_NO_INT);
	/* Reading LSR does not re-arm it; sending a byte does. */
	rd(f, UART_LSR);
	assert_int_equal(f->fx.level, 0);
	wr(f, UART_RBR, 'a');
	assert_int_equal(f->fx.level, 1);
	int calls = f->fx.irq_calls;
	wr(f, UART_RBR, 'b'); /* still pending: no new report */
	assert_int_equal(f->fx.irq_calls, calls);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_THRI);
	assert_int_equal(f->fx.level, 0);
	/* Linux's start-up test: IER through zero and back re-raises it. */
	wr(f, UART_IER, 0);
	wr(f, UART_IER, UART_IER_THRI);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_THRI);
	/* Rewriting the same IER value is not a rising edge. */
	wr(f, UART_IER, UART_IER_THRI);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_NO_INT);
	/* Disabling THRI lowers the output while the THRE stays armed. */
	wr(f, UART_RBR, 'c');
	assert_int_equal(f->fx.level, 1);
	wr(f, UART_IER, 0);
	assert_int_equal(f->fx.level, 0);
}

static void test_receive_without_fifo(void **state)
{
	struct fixture *f = *state;
	input(f, "ab");
	assert_int_equal(rd(f, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT | UART_LSR_DR);
	assert_int_equal(f->fx.irq_calls, 0);
	wr(f, UART_IER, UART_IER_RDI);
	assert_int_equal(f->fx.level, 1);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_RDI);
	assert_int_equal(rd(f, UART_RBR), 'a');
	/* The queue refilled the one-byte receiver. */
	assert_true(rd(f, UART_LSR) & UART_LSR_DR);
	assert_int_equal(rd(f, UART_RBR), 'b');
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	assert_int_equal(f->fx.level, 0);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_NO_INT);
}

static void test_fifo_trigger_levels(void **state)
{
	static const uint8_t trigger_bits[4] = {0x00, 0x40, 0x80, 0xc0};
	static const unsigned levels[4] = {1, 4, 8, 14};
	static const char zs[] = "zzzzzzzzzzzzzzzz";
	_Static_assert(sizeof(zs) - 1 == UART_FIFO_SIZE, "one FIFO of z");
	for (int t = 0; t < 4; t++) {
		/* n bytes reach the empty FIFO at once. */
		for (unsigned n = 1; n <= UART_FIFO_SIZE; n++) {
			struct fixture *f = new_fixture();
			wr(f, UART_IIR, UART_FCR_ENABLE | trigger_bits[t]);
			wr(f, UART_IER, UART_IER_RDI);
			assert_int_equal(rd(f, UART_IIR), UART_IIR_FIFO_ON | UART_IIR_NO_INT);
			input(f, zs + UART_FIFO_SIZE - n);
			uint8_t want = n >= levels[t] ? UART_IIR_RDI : UART_IIR_CTI;
			assert_int_equal(rd(f, UART_IIR), UART_IIR_FIFO_ON | want);
			assert_int_equal(f->fx.level, 1);
			test_free(f);
		}
		struct fixture *f = new_fixture();
		wr(f, UART_IIR, UART_FCR_ENABLE | trigger_bits[t]);
		wr(f, UART_IER, UART_IER_RDI);
		/* The FIFO holds 16; the rest waits in the queue, and input
		 * arriving while the FIFO holds bytes waits there too. */
		input(f, zs);
		input(f, "0123");
		assert_int_equal(rd(f, UART_IIR), UART_IIR_FIFO_ON | UART_IIR_RDI);
		assert_int_equal(uart_input_space(&f->u), UART_INPUT_SIZE - UART_FIFO_SIZE - 4);
		for (int i = 0; i < UART_FIFO_SIZE; i++)
			assert_int_equal(rd(f, UART_RBR), 'z');
		/* "0123" moved into the FIFO and keep their room in the queue. */
		assert_int_equal(uart_input_space(&f->u), UART_INPUT_SIZE - 4);
		for (int i = 0; i < 4; i++)
			assert_int_equal(rd(f, UART_RBR), '0' + i);
		assert_false(rd(f, UART_LSR) & UART_LSR_DR);
		assert_int_equal(f->fx.level, 0);
		test_free(f);
	}
	(void)state;
}

static void test_fifo_clear_and_toggle(void **state)
{
	struct fixture *f = *state;
	wr(f, UART_IIR, UART_FCR_ENABLE);
	input(f, "0123456789abcdefXY"); /* 16 in the FIFO, 2 queued */
	assert_int_equal(rd(f, UART_RBR), '0');
	/* Clearing the RX FIFO empties it; host input the guest had not read
	 * goes back to the front of the queue and arrives again, in order
	 * (typeahead survives the clears of Linux's probe and start-up). */
	wr(f, UART_IIR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX);
	const char *rest = "123456789abcdefXY";
	for (const char *c = rest; *c; c++)
		assert_int_equal(rd(f, UART_RBR), *c);
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	assert_int_equal(uart_input_space(&f->u), UART_INPUT_SIZE);
	/* Looped-back bytes are the guest's own: a clear drops them. */
	wr(f, UART_MCR, UART_MCR_LOOP);
	wr(f, UART_RBR, 'L');
	input(f, "h");
	wr(f, UART_IIR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX);
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	wr(f, UART_MCR, 0);
	assert_int_equal(rd(f, UART_RBR), 'h');
	/* The clear bits do not stick; switching the FIFO off clears it too,
	 * and the one-byte receiver then takes the returned input byte by byte. */
	input(f, "pq");
	assert_int_equal(rd(f, UART_IIR), UART_IIR_FIFO_ON | UART_IIR_NO_INT);
	wr(f, UART_IIR, 0);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_NO_INT);
	assert_true(uart_state_valid(&f->u));
	assert_int_equal(rd(f, UART_RBR), 'p');
	assert_int_equal(rd(f, UART_RBR), 'q');
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	assert_true(uart_state_valid(&f->u));
}

static void test_loopback(void **state)
{
	struct fixture *f = *state;
	input(f, "h"); /* host input waits while the line is looped */
	assert_int_equal(rd(f, UART_RBR), 'h');
	wr(f, UART_IIR, UART_FCR_ENABLE);
	/* Linux's probe: loopback with RTS and OUT2 set reads CTS and DCD. */
	wr(f, UART_MCR, UART_MCR_LOOP | UART_MCR_RTS | UART_MCR_OUT2);
	assert_false(uart_status_reads_pure(&f->u));
	assert_int_equal(rd(f, UART_MSR) & 0xf0, UART_MSR_CTS | UART_MSR_DCD);
	input(f, "k");
	wr(f, UART_RBR, 'L');
	assert_int_equal(f->fx.nout, 0); /* nothing reaches the line */
	assert_true(rd(f, UART_LSR) & UART_LSR_DR);
	assert_int_equal(rd(f, UART_RBR), 'L');
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	/* Leaving loopback reconnects the line: the held input arrives. */
	wr(f, UART_MCR, 0);
	assert_int_equal(rd(f, UART_RBR), 'k');
	wr(f, UART_RBR, 'o');
	assert_int_equal(f->fx.nout, 1);
}

static void test_modem_status_deltas(void **state)
{
	struct fixture *f = *state;
	wr(f, UART_IER, UART_IER_MSI);
	wr(f, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT1);
	/* CTS, DSR and DCD dropped; RI rose (RI reports trailing edges only). */
	assert_int_equal(uart_msr(&f->u),
			 UART_MSR_RI | UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
	assert_int_equal(f->fx.level, 1);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_MSI);
	assert_int_equal(rd(f, UART_MSR),
			 UART_MSR_RI | UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
	assert_int_equal(uart_msr(&f->u), UART_MSR_RI); /* the read consumed the deltas */
	assert_int_equal(f->fx.level, 0);
	wr(f, UART_MCR, UART_MCR_LOOP);
	assert_int_equal(uart_msr(&f->u), UART_MSR_TERI);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_MSI);
	rd(f, UART_MSR);
	wr(f, UART_MCR, 0);
	assert_int_equal(uart_msr(&f->u), 0xb0 | UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
	assert_false(uart_status_reads_pure(&f->u)); /* deltas pending */
	rd(f, UART_MSR);
	assert_true(uart_status_reads_pure(&f->u));
}

static void test_overrun(void **state)
{
	struct fixture *f = *state;
	wr(f, UART_IER, UART_IER_RLSI);
	wr(f, UART_MCR, UART_MCR_LOOP);
	wr(f, UART_RBR, '1');
	wr(f, UART_RBR, '2'); /* one-byte receiver is full: overrun */
	assert_int_equal(f->fx.level, 1);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_RLSI);
	wr(f, UART_MCR, 0);
	assert_false(uart_status_reads_pure(&f->u)); /* the error is still unread */
	assert_int_equal(rd(f, UART_LSR),
			 UART_LSR_THRE | UART_LSR_TEMT | UART_LSR_DR | UART_LSR_OE);
	/* The read consumed the error; the received byte is the first one. */
	assert_int_equal(rd(f, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT | UART_LSR_DR);
	assert_int_equal(f->fx.level, 0);
	rd(f, UART_MSR); /* consume the deltas of entering and leaving loopback */
	assert_true(uart_status_reads_pure(&f->u));
	assert_int_equal(rd(f, UART_RBR), '1');
	/* With the FIFO: 16 fit, the 17th overruns and is lost. */
	wr(f, UART_IIR, UART_FCR_ENABLE);
	wr(f, UART_MCR, UART_MCR_LOOP);
	for (int i = 0; i < 17; i++)
		wr(f, UART_RBR, (uint8_t)('a' + i));
	assert_true(rd(f, UART_LSR) & UART_LSR_OE);
	for (int i = 0; i < 16; i++)
		assert_int_equal(rd(f, UART_RBR), 'a' + i);
}

static void test_interrupt_priority(void **state)
{
	struct fixture *f = *state;
	wr(f, UART_IIR, UART_FCR_ENABLE | 0xc0); /* trigger 14 */
	wr(f, UART_MCR, UART_MCR_LOOP);          /* modem deltas pending */
	for (int i = 0; i < 17; i++)             /* data past the trigger, and an overrun */
		wr(f, UART_RBR, 'x');
	wr(f, UART_IER, 0x0f); /* THRE armed by the rising edge */
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_RLSI);
	rd(f, UART_LSR);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_RDI);
	for (int i = 0; i < 3; i++)
		rd(f, UART_RBR);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_CTI); /* 13 left, under 14 */
	while (rd(f, UART_LSR) & UART_LSR_DR)
		rd(f, UART_RBR);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_THRI);
	/* That read acknowledged THRE; the modem status is next. */
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_MSI);
	assert_int_equal(f->fx.level, 1);
	rd(f, UART_MSR);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_NO_INT);
	assert_int_equal(f->fx.level, 0);
}

static void test_input_backpressure(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[UART_INPUT_SIZE + 1000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	/* The queue takes what fits and no more, counting the byte the
	 * receiver took from it (a FIFO clear would give it back). */
	size_t taken = uart_input(&f->u, data, sizeof(data), &f->io);
	assert_int_equal(taken, UART_INPUT_SIZE);
	assert_int_equal(uart_input_space(&f->u), 0);
	assert_int_equal(uart_input(&f->u, data + taken, 2, &f->io), 0);
	/* The guest drains it in order; each read makes room again. */
	size_t got = 0;
	while (rd(f, UART_LSR) & UART_LSR_DR) {
		assert_int_equal(rd(f, UART_RBR), data[got]);
		got++;
		if (got == 10) {
			assert_int_equal(uart_input_space(&f->u), 10);
			taken += uart_input(&f->u, data + taken, sizeof(data) - taken, &f->io);
		}
	}
	assert_int_equal(got, taken);
	assert_int_equal(uart_lsr(&f->u) & UART_LSR_OE, 0); /* nothing was lost */
}

/* A paste longer than the FIFO: every batch the queue moves into the emptied
 * FIFO raises the interrupt output anew, so an edge-triggered IRQ 4 fires
 * again even if the guest's handler stopped reading with the line high. */
static void test_long_input_gives_an_edge_per_fifo_batch(void **state)
{
	struct fixture *f = *state;
	wr(f, UART_IIR, UART_FCR_ENABLE | 0xc0); /* trigger level 14 */
	wr(f, UART_IER, UART_IER_RDI);
	static char text[4 * UART_FIFO_SIZE + 1];
	memset(text, 'p', sizeof(text) - 1);
	input(f, text);
	assert_int_equal(f->fx.rises, 1);
	int batches = 1;
	for (size_t got = 0; got < sizeof(text) - 1; got++) {
		assert_true(rd(f, UART_LSR) & UART_LSR_DR);
		assert_int_equal(rd(f, UART_RBR), 'p');
		if ((got + 1) % UART_FIFO_SIZE == 0 && got + 1 < sizeof(text) - 1)
			assert_int_equal(f->fx.rises, ++batches);
	}
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	assert_int_equal(f->fx.level, 0);
}

/* Issue 7's paste stall.  Linux's 8250 handler reads at most 256 bytes a
 * pass and gives up after 512 passes with the line still high
 * (serial8250_interrupt's PASS_LIMIT); on the edge-triggered IRQ 4 it is
 * called again only for a new rising edge.  dev-serial's stdin reader tops
 * the input queue up whenever the guest's reads make room, so the FIFO must
 * not be topped up before the guest has emptied it: the interrupt output
 * then falls and rises once per FIFO batch, whatever the host does.
 * Topping it up on every input kept the line high through 128 KiB of
 * reads, the handler gave up, and the guest never read again. */
static void test_input_topped_up_while_draining_still_gives_edges(void **state)
{
	struct fixture *f = *state;
	wr(f, UART_IIR, UART_FCR_ENABLE | 0x80); /* trigger level 8, as Linux sets it */
	wr(f, UART_IER, UART_IER_RLSI | UART_IER_RDI);
	static uint8_t data[8 * UART_INPUT_SIZE];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)('a' + i % 23 + i / 4096);
	size_t fed = uart_input(&f->u, data, sizeof(data), &f->io);
	assert_int_equal(f->fx.rises, 1);
	size_t got = 0;
	while (got < sizeof(data)) {
		/* One pass of the handler: IIR, then RBR while LSR.DR. */
		assert_int_equal(rd(f, UART_IIR) & UART_IIR_NO_INT, 0);
		for (int n = 0; n < 256 && (rd(f, UART_LSR) & UART_LSR_DR); n++) {
			assert_int_equal(rd(f, UART_RBR), data[got]);
			got++;
			/* The reader refills the queue as soon as there is room. */
			fed += uart_input(&f->u, data + fed, sizeof(data) - fed, &f->io);
		}
	}
	assert_int_equal(fed, sizeof(data));
	assert_int_equal(f->fx.rises, sizeof(data) / UART_FIFO_SIZE);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_NO_INT);
	assert_int_equal(f->fx.level, 0);
}

static void test_reset_keeps_input(void **state)
{
	struct fixture *f = *state;
	wr(f, UART_IER, UART_IER_RDI);
	wr(f, UART_LCR, 0x03);
	input(f, "ab");
	assert_int_equal(f->fx.level, 1);
	uart_reset(&f->u, &f->io);
	assert_int_equal(f->fx.level, 0);
	assert_int_equal(rd(f, UART_LCR), 0);
	assert_int_equal(rd(f, UART_IER), 0);
	/* 'a' sat in the receiver, unread: the reset clears the receiver and
	 * gives it back to the queue, like a FIFO clear. */
	assert_int_equal(rd(f, UART_RBR), 'a');
	assert_int_equal(rd(f, UART_RBR), 'b');
}

/* Input typed before Linux opens the port survives its probe and start-up
 * (the 8250 driver's register sequence) and arrives once the receive
 * interrupt is on; a guest that never enables it gets input at once. */
static void test_typeahead_survives_linux_probe_and_startup(void **state)
{
	struct fixture *f = *state;
	input(f, "ls\n");
	assert_true(uart_lsr(&f->u) & UART_LSR_DR); /* a polling guest has it */
	/* autoconfig(): IER test, FIFO probe, clear, a blind RBR read. */
	wr(f, UART_IER, 0);
	wr(f, UART_IER, 0x0f);
	wr(f, UART_IER, 0);
	wr(f, UART_IIR, UART_FCR_ENABLE);
	wr(f, UART_IIR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX);
	wr(f, UART_IIR, 0);
	rd(f, UART_RBR);
	assert_false(rd(f, UART_LSR) & UART_LSR_DR); /* held: receive interrupt off */
	/* Input arriving now waits too (console writes toggle IER the same way). */
	input(f, "x");
	/* serial8250_do_startup(): clear the FIFOs, read LSR, RBR, IIR, MSR. */
	wr(f, UART_IIR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX);
	wr(f, UART_IIR, 0);
	rd(f, UART_LSR);
	rd(f, UART_RBR);
	rd(f, UART_IIR);
	rd(f, UART_MSR);
	wr(f, UART_LCR, 0x03);
	wr(f, UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
	wr(f, UART_IER, UART_IER_THRI); /* the THRE test */
	rd(f, UART_IIR);
	wr(f, UART_IER, 0);
	rd(f, UART_LSR);
	rd(f, UART_RBR);
	assert_int_equal(f->fx.level, 0);
	/* set_termios(): receive interrupts on, then the FIFO on (a clear). */
	wr(f, UART_IER, UART_IER_RLSI | UART_IER_RDI);
	assert_int_equal(f->fx.level, 1);
	wr(f, UART_IIR, UART_FCR_ENABLE);
	wr(f, UART_IIR, UART_FCR_ENABLE | 0x80);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_FIFO_ON | UART_IIR_CTI);
	assert_int_equal(f->fx.level, 1);
	const char *want = "ls\nx";
	for (const char *c = want; *c; c++)
		assert_int_equal(rd(f, UART_RBR), *c);
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	/* The console's write: IER off holds new input, restoring it delivers. */
	wr(f, UART_IER, 0);
	input(f, "y");
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	wr(f, UART_IER, UART_IER_RLSI | UART_IER_RDI);
	assert_int_equal(rd(f, UART_RBR), 'y');
	/* A reset forgets that the guest used interrupts: polling works again. */
	uart_reset(&f->u, &f->io);
	input(f, "z");
	assert_int_equal(rd(f, UART_RBR), 'z');
}

static void test_state_validation(void **state)
{
	struct fixture *f = *state;
	assert_true(uart_state_valid(&f->u));

	struct uart16550 bad;
	memset(&bad, 0xff, sizeof(bad));
	assert_false(uart_state_valid(&bad));

	struct {
		size_t off;
		uint8_t value;
	} bytes[] = {
		{offsetof(struct uart16550, ier), 0x10},
		{offsetof(struct uart16550, mcr), 0x20},
		{offsetof(struct uart16550, fcr), UART_FCR_CLEAR_RX},
		{offsetof(struct uart16550, lsr_errors), UART_LSR_THRE},
		{offsetof(struct uart16550, msr_deltas), UART_MSR_CTS},
		{offsetof(struct uart16550, thr_pending), 2},
		{offsetof(struct uart16550, irq_level), UART_LINE_UNKNOWN + 1},
		{offsetof(struct uart16550, rx_irq_driven), 2},
	};
	for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
		bad = f->u;
		((uint8_t *)&bad)[bytes[i].off] = bytes[i].value;
		assert_false(uart_state_valid(&bad));
	}
	/* Counts: two bytes in the one-byte receiver, more than 16 in the
	 * FIFO, a queue longer than its buffer. */
	bad = f->u;
	bad.rx_tail = bad.rx_head + 2;
	assert_false(uart_state_valid(&bad));
	bad.fcr = UART_FCR_ENABLE;
	assert_true(uart_state_valid(&bad));
	bad.rx_tail = bad.rx_head + UART_FIFO_SIZE + 1;
	assert_false(uart_state_valid(&bad));
	bad = f->u;
	bad.in_head = 5;
	bad.in_tail = 4; /* a negative count */
	assert_false(uart_state_valid(&bad));
	/* Free-running indexes may wrap. */
	bad = f->u;
	bad.in_head = UINT32_MAX - 1;
	bad.in_tail = 3;
	assert_true(uart_state_valid(&bad));
	assert_int_equal(uart_input_space(&bad), UART_INPUT_SIZE - 5);
	/* Host-input marks only on bytes the receiver holds, and room in the
	 * queue for them to come back. */
	bad = f->u;
	bad.rx_from_input = 1;
	assert_false(uart_state_valid(&bad));
	bad.rx_tail = bad.rx_head + 1;
	assert_true(uart_state_valid(&bad));
	bad.in_tail = bad.in_head + UART_INPUT_SIZE;
	assert_false(uart_state_valid(&bad));
}

static void test_status_values(void **state)
{
	struct fixture *f = *state;
	/* uart_lsr/uart_msr are what a read returns, without consuming it. */
	input(f, "q");
	assert_int_equal(uart_lsr(&f->u), UART_LSR_THRE | UART_LSR_TEMT | UART_LSR_DR);
	assert_int_equal(uart_lsr(&f->u), rd(f, UART_LSR));
	assert_true(uart_status_reads_pure(&f->u));
	rd(f, UART_RBR);
	assert_int_equal(uart_lsr(&f->u), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(uart_msr(&f->u), rd(f, UART_MSR));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dlab, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transmit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_without_fifo, setup, teardown),
		cmocka_unit_test(test_fifo_trigger_levels),
		cmocka_unit_test_setup_teardown(test_fifo_clear_and_toggle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modem_status_deltas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overrun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_priority, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_input_gives_an_edge_per_fifo_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_topped_up_while_draining_still_gives_edges, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reset_keeps_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_typeahead_survives_linux_probe_and_startup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_values, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
