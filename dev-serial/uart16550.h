/* uart16550.h - a 16550A UART as a pure state machine: no I/O, no globals,
 * no pointers in its state.  The device process keeps the struct in the
 * shared state page so that a restarted process resumes it.
 *
 * The transmitter is infinitely fast: a THR write hands the byte to the
 * output callback at once, so LSR.THRE and LSR.TEMT are always set.  The
 * receiver is fed from a bounded input queue (host keyboard) that sits in
 * front of the 16-byte RX FIFO and refills it each time the guest empties it; the
 * queue never overwrites or drops a byte: uart_input() takes only what fits.
 *
 * Every combination of in-range field values is a state the model can run
 * from, and every queue or FIFO operation moves exactly one index, so a state
 * left half-updated by a killed process is still usable (at worst a byte is
 * seen twice); uart_state_valid() rejects what is out of range. */
#ifndef MINIVM_UART16550_H
#define MINIVM_UART16550_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Register offsets (DLAB = LCR bit 7 selects the divisor latch at 0 and 1). */
enum uart_reg {
	UART_RBR = 0, /* read: receive buffer; write: THR; DLAB: DLL */
	UART_IER = 1, /* DLAB: DLM */
	UART_IIR = 2, /* read: IIR; write: FCR */
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
	UART_NREGS = 8
};

#define UART_IER_RDI 0x01  /* received data available (and character timeout) */
#define UART_IER_THRI 0x02 /* transmitter holding register empty */
#define UART_IER_RLSI 0x04 /* receiver line status */
#define UART_IER_MSI 0x08  /* modem status */

#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI 0x00
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_RLSI 0x06
#define UART_IIR_CTI 0x0c     /* character timeout */
#define UART_IIR_FIFO_ON 0xc0 /* both bits set while the FIFOs are enabled */

#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_FCR_CLEAR_TX 0x04
#define UART_FCR_DMA 0x08
#define UART_FCR_TRIGGER 0xc0 /* RX trigger level: 1, 4, 8, 14 bytes */

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10

#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_PE 0x04
#define UART_LSR_FE 0x08
#define UART_LSR_BI 0x10
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_LSR_ERRORS (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_DELTAS 0x0f
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

#define UART_FIFO_SIZE 16
#define UART_INPUT_SIZE 4096 /* host input queued in front of the RX FIFO */

struct uart16550 {
	uint8_t ier; /* low 4 bits */
	uint8_t lcr;
	uint8_t mcr; /* low 5 bits */
	uint8_t fcr; /* UART_FCR_ENABLE, _DMA and _TRIGGER; the clear bits self-clear */
	uint8_t lsr_errors; /* error bits not yet consumed by an LSR read */
	uint8_t msr_deltas; /* MSR delta bits not yet consumed by an MSR read */
	uint8_t scr;
	uint8_t dll, dlm;
	uint8_t thr_pending; /* 1: THRE interrupt armed (cleared by the IIR read reporting it) */
	/* The level of the line the interrupt output drives, as far as the
	 * model knows: the last it reported through set_irq, or the one
	 * someone else set it to (uart_line_set); UART_LINE_UNKNOWN when a
	 * report may still land after someone else's change. */
	uint8_t irq_level;
	/* 1: the guest enabled the receive interrupt (IER.ERBFI) since reset, so
	 * it is an interrupt-driven driver and host input waits in the queue
	 * while that interrupt is off (typeahead, uart16550.c). */
	uint8_t rx_irq_driven;
	/* Bit i: rx_fifo[i] holds a byte from the host input queue (not one the
	 * guest looped back); a FIFO clear returns those to the queue. */
	uint16_t rx_from_input;
	uint8_t rx_fifo[UART_FIFO_SIZE];
	uint32_t rx_head, rx_tail; /* free-running; rx_tail - rx_head bytes queued */
	uint32_t in_head, in_tail; /* free-running; in_tail - in_head bytes queued */
	uint8_t in_buf[UART_INPUT_SIZE];
};

/* Where the model's effects go; passed to each call, never stored. */
struct uart_io {
	void *opaque;
	void (*output)(void *opaque, uint8_t byte);    /* a transmitted byte */
	void (*set_irq)(void *opaque, int level);      /* the interrupt output changed */
};

#define UART_LINE_UNKNOWN 2

/* Power-on state: registers at their reset values, FIFO and input queue
 * empty, interrupt output low (not reported). */
void uart_init(struct uart16550 *u);

/* Machine reset: registers and RX FIFO to power-on values; the host input
 * queue is kept (it is the user's typing, not guest state). */
void uart_reset(struct uart16550 *u, const struct uart_io *io);

uint8_t uart_read(struct uart16550 *u, unsigned reg, const struct uart_io *io);
void uart_write(struct uart16550 *u, unsigned reg, uint8_t value, const struct uart_io *io);

/* Host input: queue up to n bytes, returns how many fit (never drops).  The
 * queue's bytes reach the receiver while it has room, except while an
 * interrupt-driven guest has the receive interrupt off (typeahead). */
size_t uart_input(struct uart16550 *u, const uint8_t *buf, size_t n, const struct uart_io *io);
size_t uart_input_space(const struct uart16550 *u);

/* IER (or DLM with DLAB set), LCR, MCR or SCR as a read returns it: reads
 * without side effects, which only the guest's writes change. */
uint8_t uart_plain_reg(const struct uart16550 *u, unsigned reg);

/* Register values as a read would return them now, without its side effects. */
uint8_t uart_lsr(const struct uart16550 *u);
uint8_t uart_msr(const struct uart16550 *u);

/* What a read of IIR would return now if the THRE interrupt were pending
 * (thre 1) or not (0), without its side effects: the two values the core
 * chooses between when it answers IIR itself (IPC_REG_READ_ACK). */
uint8_t uart_iir(const struct uart16550 *u, bool thre);

/* The same with the receiver taken as empty: while someone else serves
 * the receiver's bytes (the core, from its receive ring), it puts their
 * interrupt on top of this (uart_rx_interrupt). */
uint8_t uart_iir_receiver_empty(const struct uart16550 *u, bool thre);

/* What IIR would read with the receiver taken as empty, THRE pending and
 * IER's ETBEI set, whether it is set or not. */
uint8_t uart_iir_thre_enabled(const struct uart16550 *u);

/* What the receiver's bytes make IIR read: `full` with at least `trigger`
 * bytes, `partial` (character timeout) with fewer.  True if they are an
 * interrupt at all (IER.ERBFI) that nothing pending outranks. */
struct uart_rx_interrupt {
	uint8_t full, partial, trigger;
};
bool uart_rx_interrupt(const struct uart16550 *u, struct uart_rx_interrupt *r);

/* The bytes someone else (the core, from its copy of them) may hand to the
 * guest as the receiver's, up to max: those it holds and, while nothing
 * the guest can observe says when input arrives (the receiver takes input
 * and its interrupt is off: a polling guest), the queued input behind
 * them.  The i-th (from 0) has index rx_head + i; indices are
 * free-running, and a byte keeps its index until it is read (a FIFO clear
 * gives it back to the queue, where it has the same index again).  Only
 * the guest's writes take bytes out of view. */
uint32_t uart_rx_visible(const struct uart16550 *u, uint32_t max);
uint8_t uart_rx_visible_byte(const struct uart16550 *u, uint32_t i);

/* Someone else answered the guest's reads of RBR up to index head: pop
 * them with their side effects (the receiver emptied: the interrupt output
 * falls and the next input comes in).  False if head is beyond the first
 * UART_FIFO_SIZE visible bytes (no copy holds more): nothing is popped. */
bool uart_rx_consumed(struct uart16550 *u, uint32_t head, const struct uart_io *io);

/* The receiver is empty and its next byte has index head (a state that
 * cannot be trusted, or a fresh one, joins the indices someone else
 * kept). */
void uart_rx_restart_at(struct uart16550 *u, uint32_t head);

/* Someone else (the core) set the line the interrupt output drives to
 * level (0 or 1), or to an unknown level (UART_LINE_UNKNOWN: a report of
 * ours may land after its change): the next change the model makes, or
 * uart_sync_irq, reports the output if it differs from that level, and
 * always if unknown.  Call it before applying the message that told. */
void uart_line_set(struct uart16550 *u, uint8_t level);

/* Report the interrupt output if the line may not show it (uart_line_set). */
void uart_sync_irq(struct uart16550 *u, const struct uart_io *io);

/* Someone else answered a read of IIR with value (the core, from the
 * published values): apply that read's side effect (a THRE interrupt it
 * reported is acknowledged) and report the output if it changed. */
void uart_iir_read_done(struct uart16550 *u, uint8_t value, const struct uart_io *io);

/* True while reads of LSR and MSR have no side effect (no error or delta bits
 * pending) and no THR write can change them (not in loopback): only then may
 * someone else answer those reads from a copy of their values. */
bool uart_status_reads_pure(const struct uart16550 *u);

/* Every field in range: a state found in shared memory may be resumed. */
bool uart_state_valid(const struct uart16550 *u);

#endif
