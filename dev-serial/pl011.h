/* pl011.h - an Arm PrimeCell PL011 UART (the arm64 board's ttyAMA0) as a
 * pure state machine, like uart16550.h: no I/O, no globals, no pointers in
 * its state, which lives in the shared state page so that a restarted
 * dev-serial resumes it.
 *
 * The transmitter is infinitely fast: a DR write hands the byte to the
 * output callback at once, so FR.TXFE is always set and FR.TXFF never.  The
 * receiver is the host input queue itself (PL011_INPUT_SIZE bytes, never
 * overwritten: pl011_input takes what fits); FR.RXFE says whether it is
 * empty.  Registers are 32 bits apart; accesses of 1, 2 or 4 bytes at a
 * register's offset read or write its low bits (Linux's driver uses 16- or
 * 32-bit accesses, its earlycon 8-bit writes). */
#ifndef MINIVM_PL011_H
#define MINIVM_PL011_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL011_SIZE 0x1000 /* the register window */

/* Register offsets. */
enum pl011_reg {
	PL011_DR = 0x000,
	PL011_RSR = 0x004, /* write: ECR, clears errors */
	PL011_FR = 0x018,
	PL011_ILPR = 0x020,
	PL011_IBRD = 0x024,
	PL011_FBRD = 0x028,
	PL011_LCR_H = 0x02c,
	PL011_CR = 0x030,
	PL011_IFLS = 0x034,
	PL011_IMSC = 0x038,
	PL011_RIS = 0x03c,
	PL011_MIS = 0x040,
	PL011_ICR = 0x044,
	PL011_DMACR = 0x048,
	PL011_PERIPH_ID0 = 0xfe0, /* ..0xfec, then PrimeCell ID 0xff0..0xffc */
};

#define PL011_FR_RXFE 0x10
#define PL011_FR_TXFF 0x20
#define PL011_FR_RXFF 0x40
#define PL011_FR_TXFE 0x80

/* Interrupt bits (IMSC, RIS, MIS, ICR). */
#define PL011_INT_RX 0x10 /* receive */
#define PL011_INT_TX 0x20 /* transmit */
#define PL011_INT_RT 0x40 /* receive timeout */
#define PL011_INT_ALL 0x7ff

#define PL011_INPUT_SIZE 4096

struct pl011 {
	uint16_t cr, lcr_h, ibrd, fbrd, ifls, imsc, dmacr;
	uint8_t ilpr;
	uint8_t tx_int;    /* 1: PL011_INT_TX raised by a write, until ICR clears it */
	uint8_t irq_level; /* interrupt output last reported through set_irq */
	uint32_t in_head, in_tail; /* free-running; in_tail - in_head bytes queued */
	uint8_t in_buf[PL011_INPUT_SIZE];
};

/* Where the model's effects go; passed to each call, never stored. */
struct pl011_io {
	void *opaque;
	void (*output)(void *opaque, uint8_t byte);
	void (*set_irq)(void *opaque, int level);
};

/* Power-on state: registers at their reset values, input queue empty. */
void pl011_init(struct pl011 *u);
/* Machine reset: registers to power-on values; the host input queue is kept. */
void pl011_reset(struct pl011 *u, const struct pl011_io *io);
/* An access of size 1, 2 or 4 bytes at offset off (< PL011_SIZE). */
uint32_t pl011_read(struct pl011 *u, unsigned off, const struct pl011_io *io);
void pl011_write(struct pl011 *u, unsigned off, uint32_t value, const struct pl011_io *io);
/* Host input: queue up to n bytes, returns how many fit (never drops). */
size_t pl011_input(struct pl011 *u, const uint8_t *buf, size_t n, const struct pl011_io *io);
size_t pl011_input_space(const struct pl011 *u);
/* FR as a read would return it (reads of FR have no side effect: the core
 * may answer them from a copy). */
uint32_t pl011_fr(const struct pl011 *u);
/* Every field in range: a resumed state may be run from. */
bool pl011_state_valid(const struct pl011 *u);

#endif
