/* test_pl011.c - the PL011 model (dev-serial/pl011.h): identification, the
 * transmit path and its interrupt, the receive queue, FR, interrupt masking
 * and clearing, reset, state validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pl011.h"

struct fixture {
	struct pl011 u;
	struct pl011_io io;
	uint8_t out[64];
	size_t nout;
	int level;
	int irq_calls;
};

static void record_output(void *opaque, uint8_t byte)
{
	struct fixture *f = opaque;
	f->out[f->nout++] = byte;
}

static void record_irq(void *opaque, int level)
{
	struct fixture *f = opaque;
	f->level = level;
	f->irq_calls++;
}

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	pl011_init(&f->u);
	f->io = (struct pl011_io){.opaque = f, .output = record_output, .set_irq = record_irq};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	test_free(*state);
	return 0;
}

static uint32_t rd(struct fixture *f, unsigned off)
{
	return pl011_read(&f->u, off, &f->io);
}

static void wr(struct fixture *f, unsigned off, uint32_t v)
{
	pl011_write(&f->u, off, v, &f->io);
}

/* Linux's AMBA bus matches the driver by these: 0x00?41011, PrimeCell B105F00D. */
static void test_identification(void **state)
{
	struct fixture *f = *state;
	uint32_t periph = 0, cell = 0;
	for (unsigned i = 0; i < 4; i++) {
		periph |= rd(f, PL011_PERIPH_ID0 + 4 * i) << (8 * i);
		cell |= rd(f, PL011_PERIPH_ID0 + 0x10 + 4 * i) << (8 * i);
	}
	assert_int_equal(periph & 0x000fffff, 0x41011);
	assert_int_equal(cell, 0xb105f00d);
	assert_int_equal(rd(f, PL011_CR), 0x300);
	assert_int_equal(rd(f, PL011_FR), PL011_FR_TXFE | PL011_FR_RXFE);
}

static void test_transmit_and_its_interrupt(void **state)
{
	struct fixture *f = *state;
	wr(f, PL011_DR, 'h');
	wr(f, PL011_DR, 0x169); /* only the low 8 bits are data */
	assert_int_equal(f->nout, 2);
	assert_memory_equal(f->out, "hi", 2);
	assert_int_equal(rd(f, PL011_RIS), PL011_INT_TX);
	assert_int_equal(rd(f, PL011_MIS), 0);
	assert_int_equal(f->level, 0); /* masked */
	wr(f, PL011_IMSC, PL011_INT_TX);
	assert_int_equal(f->level, 1);
	assert_int_equal(rd(f, PL011_MIS), PL011_INT_TX);
	wr(f, PL011_ICR, PL011_INT_TX);
	assert_int_equal(f->level, 0);
	assert_int_equal(rd(f, PL011_RIS), 0);
	assert_int_equal(rd(f, PL011_FR) & PL011_FR_TXFF, 0); /* never full */
}

static void test_receive(void **state)
{
	struct fixture *f = *state;
	wr(f, PL011_IMSC, PL011_INT_RX | PL011_INT_RT);
	assert_int_equal(f->level, 0);
	assert_int_equal(pl011_input(&f->u, (const uint8_t *)"ok", 2, &f->io), 2);
	assert_int_equal(f->level, 1);
	assert_int_equal(rd(f, PL011_FR) & PL011_FR_RXFE, 0);
	assert_int_equal(rd(f, PL011_MIS), PL011_INT_RX | PL011_INT_RT);
	/* ICR cannot clear a receive interrupt while data waits. */
	wr(f, PL011_ICR, PL011_INT_ALL);
	assert_int_equal(f->level, 1);
	assert_int_equal(rd(f, PL011_DR), 'o');
	assert_int_equal(f->level, 1);
	assert_int_equal(rd(f, PL011_DR), 'k');
	assert_int_equal(f->level, 0);
	assert_int_equal(rd(f, PL011_FR), PL011_FR_TXFE | PL011_FR_RXFE);
	assert_int_equal(rd(f, PL011_DR), 0); /* empty */
}

static void test_input_queue_never_drops(void **state)
{
	struct fixture *f = *state;
	static uint8_t big[PL011_INPUT_SIZE + 10];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	assert_int_equal(pl011_input(&f->u, big, sizeof(big), &f->io), PL011_INPUT_SIZE);
	assert_int_equal(pl011_input_space(&f->u), 0);
	assert_true(rd(f, PL011_FR) & PL011_FR_RXFF);
	assert_int_equal(rd(f, PL011_DR), 0);
	assert_int_equal(rd(f, PL011_DR), 1);
	assert_int_equal(pl011_input_space(&f->u), 2);
	assert_int_equal(pl011_input(&f->u, big + PL011_INPUT_SIZE, 10, &f->io), 2);
}

static void test_reset_keeps_input_and_lowers_the_line(void **state)
{
	struct fixture *f = *state;
	wr(f, PL011_IMSC, PL011_INT_RX);
	wr(f, PL011_LCR_H, 0x70);
	pl011_input(&f->u, (const uint8_t *)"x", 1, &f->io);
	assert_int_equal(f->level, 1);
	pl011_reset(&f->u, &f->io);
	assert_int_equal(f->level, 0);
	assert_int_equal(rd(f, PL011_IMSC), 0);
	assert_int_equal(rd(f, PL011_LCR_H), 0);
	assert_int_equal(rd(f, PL011_DR), 'x');
}

static void test_registers_and_validation(void **state)
{
	struct fixture *f = *state;
	wr(f, PL011_IBRD, 13);
	wr(f, PL011_FBRD, 0xff);
	wr(f, PL011_IFLS, 0x12);
	assert_int_equal(rd(f, PL011_IBRD), 13);
	assert_int_equal(rd(f, PL011_FBRD), 0x3f);
	assert_int_equal(rd(f, PL011_IFLS), 0x12);
	wr(f, PL011_FR, 0); /* read-only */
	assert_int_equal(rd(f, PL011_FR), PL011_FR_TXFE | PL011_FR_RXFE);
	assert_true(pl011_state_valid(&f->u));
	f->u.in_tail = f->u.in_head + PL011_INPUT_SIZE + 1;
	assert_false(pl011_state_valid(&f->u));
	f->u.in_tail = f->u.in_head;
	f->u.tx_int = 2;
	assert_false(pl011_state_valid(&f->u));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identification, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transmit_and_its_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_queue_never_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_keeps_input_and_lowers_the_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registers_and_validation, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
