/* uart16550.c - the 16550A model (uart16550.h).
 *
 * Semantics follow the 16550A datasheet and what Linux's 8250 driver relies
 * on.  Two deliberate simplifications, both consequences of an infinitely
 * fast line:
 *  - The transmitter never holds a byte, so LSR.THRE/TEMT are constant.
 *  - The character timeout fires at once: host input moves into the RX FIFO
 *    as soon as it arrives and the FIFO is empty, so a FIFO holding fewer
 *    bytes than the trigger level means the line is idle, which is exactly
 *    when a real 16550A raises the timeout interrupt (4 character times
 *    later).  Input never tops up a FIFO the guest has not emptied (see
 *    refill_rx): a batch is read, the interrupt output falls, the next batch
 *    raises it again, as a real line slower than the guest would.
 *
 * Typeahead.  A line may deliver a byte at any time, so the model chooses a
 * time at which the guest is ready for it:
 *  - A guest that has enabled the receive interrupt (IER.ERBFI) since reset
 *    is interrupt-driven: while that interrupt is off, host input stays in
 *    the queue.  Linux's 8250 driver enables it in its probe and again once
 *    a port is open; in between it clears the FIFOs and reads RBR blindly
 *    (probe, port start-up), which would eat input that had reached the
 *    receiver.  A polling guest never enables it and gets input at once.
 *  - Clearing the RX FIFO (FCR) returns the host-input bytes it held to the
 *    front of the queue: as far as the guest can tell they were cleared and
 *    the line sent the same bytes again later.  The queue keeps room for
 *    them (uart_input_space).
 * PE, FE and BI never occur: the host side has no parity, framing or break.
 * OE occurs in loopback, when the guest sends into a full receiver. */
#include "uart16550.h"

#include <string.h>

static const uint8_t trigger_levels[4] = {1, 4, 8, 14};

static bool fifo_enabled(const struct uart16550 *u)
{
	return u->fcr & UART_FCR_ENABLE;
}

static bool loopback(const struct uart16550 *u)
{
	return u->mcr & UART_MCR_LOOP;
}

/* Without the FIFO the receiver holds one byte (RBR). */
static unsigned rx_capacity(const struct uart16550 *u)
{
	return fifo_enabled(u) ? UART_FIFO_SIZE : 1;
}

static unsigned rx_count(const struct uart16550 *u)
{
	return u->rx_tail - u->rx_head;
}

static unsigned input_count(const struct uart16550 *u)
{
	return u->in_tail - u->in_head;
}

static uint16_t slot_bit(uint32_t index)
{
	return (uint16_t)(1u << (index % UART_FIFO_SIZE));
}

/* Host-input bytes in the receiver, which a FIFO clear gives back. */
static unsigned rx_input_count(const struct uart16550 *u)
{
	return (unsigned)__builtin_popcount(u->rx_from_input);
}

/* The modem input lines: in loopback the outputs are wired back to them,
 * otherwise the host end is always ready (CTS, DSR, DCD asserted). */
static uint8_t modem_inputs(const struct uart16550 *u)
{
	if (!loopback(u))
		return UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD;
	uint8_t in = 0;
	if (u->mcr & UART_MCR_RTS)
		in |= UART_MSR_CTS;
	if (u->mcr & UART_MCR_DTR)
		in |= UART_MSR_DSR;
	if (u->mcr & UART_MCR_OUT1)
		in |= UART_MSR_RI;
	if (u->mcr & UART_MCR_OUT2)
		in |= UART_MSR_DCD;
	return in;
}

uint8_t uart_lsr(const struct uart16550 *u)
{
	uint8_t lsr = UART_LSR_THRE | UART_LSR_TEMT | u->lsr_errors;
	if (rx_count(u))
		lsr |= UART_LSR_DR;
	return lsr;
}

uint8_t uart_msr(const struct uart16550 *u)
{
	return modem_inputs(u) | u->msr_deltas;
}

/* The pending interrupt of highest priority, as IIR bits 0-3, if the THRE
 * interrupt is armed (thr_pending) or not and the receiver holds count
 * bytes. */
static uint8_t interrupt_with_ier(const struct uart16550 *u, uint8_t ier, bool thr_pending,
				  unsigned count)
{
	if ((ier & UART_IER_RLSI) && (u->lsr_errors & UART_LSR_ERRORS))
		return UART_IIR_RLSI;
	if ((ier & UART_IER_RDI) && count) {
		if (!fifo_enabled(u) || count >= trigger_levels[u->fcr >> 6])
			return UART_IIR_RDI;
		return UART_IIR_CTI;
	}
	if ((ier & UART_IER_THRI) && thr_pending)
		return UART_IIR_THRI;
	if ((ier & UART_IER_MSI) && u->msr_deltas)
		return UART_IIR_MSI;
	return UART_IIR_NO_INT;
}

static uint8_t interrupt_with(const struct uart16550 *u, bool thr_pending, unsigned count)
{
	return interrupt_with_ier(u, u->ier, thr_pending, count);
}

static uint8_t pending_interrupt(const struct uart16550 *u)
{
	return interrupt_with(u, u->thr_pending, rx_count(u));
}

static uint8_t iir_value(const struct uart16550 *u, uint8_t id)
{
	return id | (fifo_enabled(u) ? UART_IIR_FIFO_ON : 0);
}

uint8_t uart_iir(const struct uart16550 *u, bool thre)
{
	return iir_value(u, interrupt_with(u, thre, rx_count(u)));
}

uint8_t uart_iir_receiver_empty(const struct uart16550 *u, bool thre)
{
	return iir_value(u, interrupt_with(u, thre, 0));
}

uint8_t uart_iir_thre_enabled(const struct uart16550 *u)
{
	return iir_value(u, interrupt_with_ier(u, u->ier | UART_IER_THRI, true, 0));
}

bool uart_rx_interrupt(const struct uart16550 *u, struct uart_rx_interrupt *r)
{
	r->full = iir_value(u, UART_IIR_RDI);
	r->partial = iir_value(u, fifo_enabled(u) ? UART_IIR_CTI : UART_IIR_RDI);
	r->trigger = fifo_enabled(u) ? trigger_levels[u->fcr >> 6] : 1;
	/* Receiver line status outranks it; in loopback only, whose reads go
	 * through the device (uart_status_reads_pure). */
	return (u->ier & UART_IER_RDI) && !((u->ier & UART_IER_RLSI) && (u->lsr_errors & UART_LSR_ERRORS));
}

/* Report the interrupt output only when the line may not show it: each
 * report is a message to the core. */
static void update_irq(struct uart16550 *u, const struct uart_io *io)
{
	uint8_t level = pending_interrupt(u) != UART_IIR_NO_INT;
	if (level == u->irq_level)
		return;
	u->irq_level = level;
	io->set_irq(io->opaque, level);
}

/* A byte arrives at the receiver; a full receiver keeps its contents and
 * flags the overrun (the datasheet's rule). */
static void receive(struct uart16550 *u, uint8_t byte, bool from_input)
{
	if (rx_count(u) >= rx_capacity(u)) {
		u->lsr_errors |= UART_LSR_OE;
		return;
	}
	u->rx_fifo[u->rx_tail % UART_FIFO_SIZE] = byte;
	if (from_input)
		u->rx_from_input |= slot_bit(u->rx_tail);
	else
		u->rx_from_input &= (uint16_t)~slot_bit(u->rx_tail);
	u->rx_tail++;
}

/* Does host input move into the receiver now?  In loopback the receiver is
 * disconnected from the line; an interrupt-driven guest with the receive
 * interrupt off is not ready for it (typeahead, above). */
static bool receiver_takes_input(const struct uart16550 *u)
{
	return !loopback(u) && (!u->rx_irq_driven || (u->ier & UART_IER_RDI));
}

/* Move a batch of queued host input into the receiver, only once the guest
 * has emptied it.  IRQ 4 is edge-triggered (ISA): the interrupt output must
 * fall between batches, or the guest sees no new edge.  Linux's 8250
 * handler gives up on a line that stays busy for 512 passes ("too much
 * work"), each reading at most 256 bytes, and is called again only for a
 * new edge; a receiver topped up whenever input arrived (dev-serial's stdin
 * reader adds input as soon as the guest's reads make room) kept the line
 * high through all of them and the paste stalled (issue 7). */
static void refill_rx(struct uart16550 *u)
{
	if (rx_count(u))
		return;
	while (receiver_takes_input(u) && input_count(u) && rx_count(u) < rx_capacity(u)) {
		receive(u, u->in_buf[u->in_head % UART_INPUT_SIZE], true);
		u->in_head++;
	}
}

/* Empty the receiver; its host-input bytes go back to the front of the
 * queue, in order (typeahead, above). */
static void clear_rx(struct uart16550 *u)
{
	while (u->rx_tail != u->rx_head) {
		u->rx_tail--;
		if (u->rx_from_input & slot_bit(u->rx_tail)) {
			u->in_head--;
			u->in_buf[u->in_head % UART_INPUT_SIZE] = u->rx_fifo[u->rx_tail % UART_FIFO_SIZE];
		}
	}
	u->rx_from_input = 0;
}

/* The guest has read the byte at the receiver's head. */
static void pop_rx(struct uart16550 *u, const struct uart_io *io)
{
	u->rx_from_input &= (uint16_t)~slot_bit(u->rx_head);
	u->rx_head++;
	/* Emptied: the interrupt output falls before the next batch raises
	 * it again (refill_rx). */
	if (!rx_count(u)) {
		update_irq(u, io);
		refill_rx(u);
	}
}

/* Nothing the guest can observe tells when a byte arrives while the
 * receiver takes input and the receive interrupt is off (a polling guest):
 * a byte queued behind the receiver may as well have arrived the moment
 * the guest read the one before it. */
static bool arrival_unobserved(const struct uart16550 *u)
{
	return receiver_takes_input(u) && !(u->ier & UART_IER_RDI);
}

uint32_t uart_rx_visible(const struct uart16550 *u, uint32_t max)
{
	uint32_t n = rx_count(u);
	if (arrival_unobserved(u))
		n += input_count(u);
	return n < max ? n : max;
}

uint8_t uart_rx_visible_byte(const struct uart16550 *u, uint32_t i)
{
	if (i < rx_count(u))
		return u->rx_fifo[(u->rx_head + i) % UART_FIFO_SIZE];
	return u->in_buf[(u->in_head + i - rx_count(u)) % UART_INPUT_SIZE];
}

bool uart_rx_consumed(struct uart16550 *u, uint32_t head, const struct uart_io *io)
{
	if (head - u->rx_head > uart_rx_visible(u, UART_FIFO_SIZE))
		return false;
	if (head == u->rx_head)
		return true;
	while (u->rx_head != head)
		pop_rx(u, io);
	update_irq(u, io);
	return true;
}

void uart_rx_restart_at(struct uart16550 *u, uint32_t head)
{
	u->rx_head = u->rx_tail = head;
	u->rx_from_input = 0;
}

static void set_modem_control(struct uart16550 *u, uint8_t mcr)
{
	uint8_t before = modem_inputs(u);
	u->mcr = mcr & 0x1f;
	uint8_t after = modem_inputs(u);
	uint8_t changed = before ^ after;
	if (changed & UART_MSR_CTS)
		u->msr_deltas |= UART_MSR_DCTS;
	if (changed & UART_MSR_DSR)
		u->msr_deltas |= UART_MSR_DDSR;
	if ((before & UART_MSR_RI) && !(after & UART_MSR_RI))
		u->msr_deltas |= UART_MSR_TERI; /* trailing edge only */
	if (changed & UART_MSR_DCD)
		u->msr_deltas |= UART_MSR_DDCD;
}

static void set_fifo_control(struct uart16550 *u, uint8_t fcr)
{
	/* Switching the FIFOs on or off clears them.  Clear before storing the
	 * new mode so that no intermediate state holds more than it may. */
	if ((fcr ^ u->fcr) & UART_FCR_ENABLE)
		fcr |= UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX;
	if (fcr & UART_FCR_CLEAR_RX)
		clear_rx(u);
	if (fcr & UART_FCR_CLEAR_TX)
		u->thr_pending = 1; /* the (always empty) transmitter is empty again */
	u->fcr = fcr & (UART_FCR_ENABLE | UART_FCR_DMA | UART_FCR_TRIGGER);
}

static void set_interrupt_enable(struct uart16550 *u, uint8_t ier)
{
	uint8_t rising = ~u->ier & ier;
	u->ier = ier & 0x0f;
	if (ier & UART_IER_RDI)
		u->rx_irq_driven = 1;
	/* Enabling THRI while THRE is set raises the interrupt again even after
	 * an IIR read cleared it: not in the datasheet, but real parts do it,
	 * Linux's THRE test at port start-up expects it and Windows relies on
	 * it (it toggles IER through zero). */
	if (rising & UART_IER_THRI)
		u->thr_pending = 1;
}

static void transmit(struct uart16550 *u, uint8_t byte, const struct uart_io *io)
{
	if (loopback(u))
		receive(u, byte, false);
	else
		io->output(io->opaque, byte);
	u->thr_pending = 1; /* the byte is gone at once: THR is empty again */
}

uint8_t uart_plain_reg(const struct uart16550 *u, unsigned reg)
{
	switch (reg) {
	case UART_IER:
		return (u->lcr & UART_LCR_DLAB) ? u->dlm : u->ier;
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_SCR:
		return u->scr;
	default:
		return 0xff;
	}
}

uint8_t uart_read(struct uart16550 *u, unsigned reg, const struct uart_io *io)
{
	bool dlab = u->lcr & UART_LCR_DLAB;
	uint8_t value = 0;
	switch (reg) {
	case UART_RBR:
		if (dlab)
			return u->dll;
		if (rx_count(u)) {
			value = u->rx_fifo[u->rx_head % UART_FIFO_SIZE];
			pop_rx(u, io);
		}
		break;
	case UART_IER:
	case UART_LCR:
	case UART_MCR:
	case UART_SCR:
		return uart_plain_reg(u, reg);
	case UART_IIR: {
		uint8_t id = pending_interrupt(u);
		value = iir_value(u, id);
		if (id == UART_IIR_THRI)
			u->thr_pending = 0; /* reading IIR acknowledges THRE */
		break;
	}
	case UART_LSR:
		value = uart_lsr(u);
		u->lsr_errors = 0;
		break;
	case UART_MSR:
		value = uart_msr(u);
		u->msr_deltas = 0;
		break;
	default:
		return 0xff;
	}
	update_irq(u, io);
	return value;
}

void uart_write(struct uart16550 *u, unsigned reg, uint8_t value, const struct uart_io *io)
{
	bool dlab = u->lcr & UART_LCR_DLAB;
	switch (reg) {
	case UART_RBR:
		if (dlab)
			u->dll = value;
		else
			transmit(u, value, io);
		break;
	case UART_IER:
		if (dlab)
			u->dlm = value;
		else
			set_interrupt_enable(u, value);
		break;
	case UART_IIR:
		set_fifo_control(u, value);
		break;
	case UART_LCR:
		u->lcr = value;
		break;
	case UART_MCR:
		set_modem_control(u, value);
		break;
	case UART_SCR:
		u->scr = value;
		break;
	default: /* LSR and MSR are read-only (writes are a factory test) */
		return;
	}
	refill_rx(u); /* FIFO mode, clearing, IER.ERBFI or leaving loopback can let input in */
	update_irq(u, io);
}

void uart_iir_read_done(struct uart16550 *u, uint8_t value, const struct uart_io *io)
{
	if ((value & 0x0f) == UART_IIR_THRI)
		u->thr_pending = 0;
	update_irq(u, io);
}

void uart_line_set(struct uart16550 *u, uint8_t level)
{
	u->irq_level = level <= 1 ? level : UART_LINE_UNKNOWN;
}

void uart_sync_irq(struct uart16550 *u, const struct uart_io *io)
{
	update_irq(u, io);
}

/* Room is kept for the receiver's host-input bytes to come back. */
size_t uart_input_space(const struct uart16550 *u)
{
	return UART_INPUT_SIZE - input_count(u) - rx_input_count(u);
}

size_t uart_input(struct uart16550 *u, const uint8_t *buf, size_t n, const struct uart_io *io)
{
	size_t space = uart_input_space(u);
	if (n > space)
		n = space;
	for (size_t i = 0; i < n; i++) {
		u->in_buf[u->in_tail % UART_INPUT_SIZE] = buf[i];
		u->in_tail++;
	}
	refill_rx(u);
	update_irq(u, io);
	return n;
}

static void reset_registers(struct uart16550 *u)
{
	u->ier = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->fcr = 0;
	u->lsr_errors = 0;
	u->msr_deltas = 0;
	u->scr = 0;
	u->dll = 0x0c; /* 9600 baud */
	u->dlm = 0;
	u->thr_pending = 0;
	u->rx_irq_driven = 0;
	clear_rx(u);
}

void uart_init(struct uart16550 *u)
{
	memset(u, 0, sizeof(*u));
	reset_registers(u);
}

void uart_reset(struct uart16550 *u, const struct uart_io *io)
{
	reset_registers(u);
	refill_rx(u);
	update_irq(u, io);
}

/* rx_from_input marks only slots the receiver holds. */
static bool rx_input_bits_held(const struct uart16550 *u)
{
	uint16_t held = 0;
	for (uint32_t i = u->rx_head; i != u->rx_tail && rx_count(u) <= UART_FIFO_SIZE; i++)
		held |= slot_bit(i);
	return !(u->rx_from_input & ~held);
}

bool uart_state_valid(const struct uart16550 *u)
{
	return !(u->ier & ~0x0f) && !(u->mcr & ~0x1f) &&
	       !(u->fcr & ~(UART_FCR_ENABLE | UART_FCR_DMA | UART_FCR_TRIGGER)) &&
	       !(u->lsr_errors & ~UART_LSR_OE) && !(u->msr_deltas & ~UART_MSR_DELTAS) &&
	       u->thr_pending <= 1 && u->irq_level <= UART_LINE_UNKNOWN && u->rx_irq_driven <= 1 &&
	       rx_count(u) <= rx_capacity(u) && input_count(u) <= UART_INPUT_SIZE &&
	       input_count(u) + rx_input_count(u) <= UART_INPUT_SIZE && rx_input_bits_held(u);
}

bool uart_status_reads_pure(const struct uart16550 *u)
{
	return !loopback(u) && !u->lsr_errors && !u->msr_deltas;
}
