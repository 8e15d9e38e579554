/* serial_device.h - dev-serial's device behind the device library
 * (devlib.h): the addresses it owns and declares in HELLO, its reads, writes
 * and reset, and the state page it publishes for the core's shadow reads.
 * No sockets, threads or terminal here (main.c owns those), so the fuzz
 * target runs exactly this code through dev_handle.  Callers serialise all
 * calls.
 *
 * Shadowed registers (answered by the core from the state page):
 *  - LSR and MSR of each UART.  Their reads have side effects only while
 *    error or delta bits are pending, and THR writes (declared stream) change
 *    them only in loopback.  In those states the device withdraws the
 *    shadows by clearing the state page's magic, so the core forwards every
 *    read in order behind the writes; it stores the magic again once reads
 *    are pure.  Error and delta bits arise only in loopback, which Linux uses
 *    once, to probe the port.
 *  - IER (DLM with DLAB set), LCR, MCR and SCR of the 16550 at 0x3f8: reads
 *    without side effects that only the guest's (ordered) writes change;
 *    Linux's console reads IER before every message it prints.
 *  - The debug port's read value (constant 0xe9).
 *  - IIR of the 16550 at 0x3f8, as a read-acknowledge register
 *    (IPC_REG_READ_ACK): reading it acknowledges a THRE interrupt, which each
 *    THR write raises again; the core answers it from the two values
 *    published (THRE pending or not) and posts IO_READ_DONE when its answer
 *    acknowledged.  Linux's 8250 driver reads IIR twice per interrupt and
 *    once per 16 bytes it transmits.
 *  - RBR of the 16550 at 0x3f8, as the receive ring (IPC_REG_RX_RING): the
 *    ring in the state page holds the receiver's bytes (and, for a polling
 *    guest, the input queued behind them), the core pops it, and LSR's DR
 *    and IIR's receive interrupt follow its count.  Before anything else
 *    acts on the UART the device pops its model up to the core's head;
 *    IO_READ_DONE at RBR says the core emptied the ring.
 * The shadows are published after every change and before every interrupt
 * message (the core's answers rely on that: devproxy.c, read_ack_here). */
#ifndef MINIVM_SERIAL_DEVICE_H
#define MINIVM_SERIAL_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devlib.h"
#include "ipc.h"
#include "pl011.h"
#include "uart16550.h"
#include "virtio_console.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
/* The arm64 board's ttyAMA0 (cfg.pl011): the core puts what the HELLO
 * declares in the device tree. */
#define SERIAL_PL011_BASE 0xc0000000ull
#define SERIAL_PL011_IRQ 1 /* a level-triggered line (the GIC's SPI 1) */

/* The device's part of the state page (from IPC_STATE_DEV_OFFSET). */
struct serial_state {
	uint32_t magic; /* SERIAL_STATE_MAGIC once initialised */
	uint32_t size;  /* sizeof(struct serial_state): another layout is not resumed */
	struct uart16550 com1;
	struct uart16550 mmio; /* used only with an MMIO UART */
	struct pl011 pl011;    /* used only with cfg.pl011 */
	struct virtio_console_state hvc0; /* used only with hvc0 */
};

/* Which device the host terminal's input goes to. */
enum serial_console { SERIAL_CONSOLE_TTYS0, SERIAL_CONSOLE_HVC0 };

struct serial_config {
	bool stdio;          /* the UART is on the host terminal (else its output is dropped) */
	bool pl011;          /* the terminal's UART is a PL011 at SERIAL_PL011_BASE
	                      * (the arm64 board), not the 16550 at 0x3f8 */
	bool debugcon;
	uint16_t debugcon_port;
	bool debugcon_mmio;  /* the same debug port at an MMIO address (arm64 boards) */
	uint64_t debugcon_mmio_addr;
	bool mmio_uart;
	uint64_t mmio_base;  /* 8 registers, 1-byte stride */
	bool hvc0;           /* a virtio-console in a virtio-mmio slot */
	enum serial_console console; /* SERIAL_CONSOLE_HVC0 needs hvc0 */
};

/* Where the device's effects go. */
struct serial_sink {
	void *opaque;
	/* IRQ and QUIT messages to the core (dev_send numbers them); false:
	 * an IRQ on a published line, which is no message (dev_send). */
	bool (*send)(void *opaque, struct ipc_msg *m);
	void (*output)(void *opaque, uint8_t byte);         /* to the host's stdout */
	void (*write)(void *opaque, const void *buf, size_t len); /* the same, a run of bytes */
};

struct serial_device {
	struct serial_config cfg;
	struct serial_sink sink;
	struct ipc_state_page *page; /* shared with the core; NULL until attached */
	struct serial_state *state;  /* inside page */
	struct virtio_console hvc0;  /* with cfg.hvc0, once attached */
	uint64_t hvc0_base;          /* its window: the slot the core gave */
	uint32_t hvc0_gsi;           /* its line */
	uint16_t cols, rows;         /* the host terminal's size (0: unknown) */
	/* IPC_IRQ messages sent, counted on from the WELCOME's irqs_applied
	 * (modulo 2^32, as the core counts): ipc.h, struct ipc_line_note. */
	uint32_t irqs_sent;
};

/* The device's ops for dev_run and dev_handle; dev is a struct serial_device. */
extern const struct dev_ops serial_dev_ops;

/* The HELLO body announcing cfg's ranges, interrupt line and registers. */
void serial_hello(const struct serial_config *cfg, struct ipc_hello *h);

/* Start serving with the state page page (IPC_STATE_SIZE bytes): resume the
 * state a previous incarnation left there if resumed and it is valid (else
 * reset it, logged once), publish the shadows and report the interrupt
 * level.  Returns false if a resumed state had to be reset. */
bool serial_attach(struct serial_device *d, void *page, bool resumed);

/* Attach hvc0 (with cfg.hvc0, after serial_attach): its window at base,
 * its line gsi, guest RAM ram; resumed as for serial_attach. */
bool serial_attach_hvc0(struct serial_device *d, const struct guest_mem *ram, uint64_t base,
			uint32_t gsi, bool resumed);

/* The host terminal is now cols x rows (hvc0's size; kept until attached). */
void serial_resize(struct serial_device *d, uint16_t cols, uint16_t rows);

/* Every field in range, and the layout this build writes: s may be resumed. */
bool serial_state_valid(const struct serial_state *s);

/* An access the core forwarded (any address, any size: checked here). */
uint64_t serial_read(struct serial_device *d, const struct ipc_io *io);
void serial_write(struct serial_device *d, const struct ipc_io *io);
/* The core answered a read of IIR itself (IO_READ_DONE, data = its answer),
 * or emptied the receive ring (IO_READ_DONE at RBR). */
void serial_read_done(struct serial_device *d, const struct ipc_io *io);
/* The machine was reset: both UARTs are. */
void serial_reset(struct serial_device *d);

/* Host keyboard input for the console (cfg.console: the 0x3f8 UART or
 * hvc0): queues what fits, returns how much. */
size_t serial_input(struct serial_device *d, const uint8_t *buf, size_t n);
size_t serial_input_space(const struct serial_device *d);

/* Ask the core to stop the VM (the user typed Ctrl-A x). */
void serial_quit(struct serial_device *d);

#endif
