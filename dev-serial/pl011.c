/* pl011.c - the PL011 model (pl011.h).
 *
 * Semantics follow the PL011 TRM (DDI 0183) as far as Linux's amba-pl011
 * driver relies on them, with an infinitely fast line:
 *  - TX: every DR write raises the transmit interrupt (the FIFO is at once
 *    below its trigger level again), which stays raised until ICR clears
 *    it; the driver writes a few bytes, enables TXIM and continues from the
 *    interrupt.
 *  - RX: the receive and receive-timeout interrupts are raised while input
 *    is queued (ICR cannot clear them then: the FIFO still holds data, as on
 *    the hardware, where the timeout re-arms at once on an idle line).
 * No parity, framing, break or overrun errors: the host side has none. */
#include "pl011.h"

#include <string.h>

/* PeriphID0..3 then PrimeCell ID0..3: an r1p5 PL011, as QEMU's. */
static const uint8_t id_bytes[8] = {0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

#define CR_RESET 0x0300 /* TXE | RXE */

static uint32_t queued(const struct pl011 *u)
{
	return u->in_tail - u->in_head;
}

static uint16_t raw_status(const struct pl011 *u)
{
	uint16_t ris = u->tx_int ? PL011_INT_TX : 0;
	if (queued(u))
		ris |= PL011_INT_RX | PL011_INT_RT;
	return ris;
}

static void update_irq(struct pl011 *u, const struct pl011_io *io)
{
	uint8_t level = (raw_status(u) & u->imsc) != 0;
	if (level != u->irq_level) {
		u->irq_level = level;
		io->set_irq(io->opaque, level);
	}
}

void pl011_init(struct pl011 *u)
{
	memset(u, 0, sizeof(*u));
	u->cr = CR_RESET;
}

void pl011_reset(struct pl011 *u, const struct pl011_io *io)
{
	u->cr = CR_RESET;
	u->lcr_h = u->ibrd = u->fbrd = u->ifls = u->imsc = u->dmacr = 0;
	u->ilpr = 0;
	u->tx_int = 0;
	update_irq(u, io);
}

uint32_t pl011_fr(const struct pl011 *u)
{
	uint32_t fr = PL011_FR_TXFE;
	if (!queued(u))
		fr |= PL011_FR_RXFE;
	else if (queued(u) == PL011_INPUT_SIZE)
		fr |= PL011_FR_RXFF;
	return fr;
}

uint32_t pl011_read(struct pl011 *u, unsigned off, const struct pl011_io *io)
{
	switch (off) {
	case PL011_DR: {
		if (!queued(u))
			return 0;
		uint8_t byte = u->in_buf[u->in_head % PL011_INPUT_SIZE];
		u->in_head++;
		update_irq(u, io);
		return byte;
	}
	case PL011_RSR: return 0;
	case PL011_FR: return pl011_fr(u);
	case PL011_ILPR: return u->ilpr;
	case PL011_IBRD: return u->ibrd;
	case PL011_FBRD: return u->fbrd;
	case PL011_LCR_H: return u->lcr_h;
	case PL011_CR: return u->cr;
	case PL011_IFLS: return u->ifls;
	case PL011_IMSC: return u->imsc;
	case PL011_RIS: return raw_status(u);
	case PL011_MIS: return raw_status(u) & u->imsc;
	case PL011_DMACR: return u->dmacr;
	default:
		if (off >= PL011_PERIPH_ID0 && off < PL011_SIZE && off % 4 == 0)
			return id_bytes[(off - PL011_PERIPH_ID0) / 4];
		return 0;
	}
}

void pl011_write(struct pl011 *u, unsigned off, uint32_t value, const struct pl011_io *io)
{
	switch (off) {
	case PL011_DR:
		io->output(io->opaque, (uint8_t)value);
		u->tx_int = 1;
		break;
	case PL011_RSR: break; /* no errors to clear */
	case PL011_ILPR: u->ilpr = (uint8_t)value; break;
	case PL011_IBRD: u->ibrd = (uint16_t)value; break;
	case PL011_FBRD: u->fbrd = value & 0x3f; break;
	case PL011_LCR_H: u->lcr_h = value & 0xff; break;
	case PL011_CR: u->cr = (uint16_t)value; break;
	case PL011_IFLS: u->ifls = value & 0x3f; break;
	case PL011_IMSC: u->imsc = value & PL011_INT_ALL; break;
	case PL011_ICR:
		if (value & PL011_INT_TX)
			u->tx_int = 0;
		break;
	case PL011_DMACR: u->dmacr = value & 0x7; break;
	default: break; /* read-only or reserved */
	}
	update_irq(u, io);
}

size_t pl011_input(struct pl011 *u, const uint8_t *buf, size_t n, const struct pl011_io *io)
{
	size_t taken = 0;
	while (taken < n && queued(u) < PL011_INPUT_SIZE) {
		u->in_buf[u->in_tail % PL011_INPUT_SIZE] = buf[taken++];
		u->in_tail++;
	}
	update_irq(u, io);
	return taken;
}

size_t pl011_input_space(const struct pl011 *u)
{
	return PL011_INPUT_SIZE - queued(u);
}

bool pl011_state_valid(const struct pl011 *u)
{
	return queued(u) <= PL011_INPUT_SIZE && u->tx_int <= 1 && u->irq_level <= 1 &&
	       !(u->imsc & ~PL011_INT_ALL);
}
