/* serial_device.h - dev-serial between the ipc channel and its models: the
 * addresses it owns and declares in HELLO, the handling of every message
 * from the core, and the state page it publishes for the core's shadow
 * reads.  No sockets, threads or terminal here (main.c owns those), so the
 * fuzz target runs exactly this code.  Callers serialise all calls.
 *
 * Shadowed registers (answered by the core from the state page):
 *  - LSR and MSR of each UART.  Their reads have side effects only while
 *    error or delta bits are pending, and THR writes (declared stream) change
 *    them only in loopback.  In those states the device withdraws the
 *    shadows by clearing the state page's magic, so the core forwards every
 *    read in order behind the writes; it stores the magic again once reads
 *    are pure.  Error and delta bits arise only in loopback, which Linux uses
 *    once, to probe the port.
 *  - The debug port's read value (constant 0xe9).
 * IIR is not shadowed: reading it acknowledges a THRE interrupt, and Linux
 * reads it once per interrupt, not per byte. */
#ifndef MINIVM_SERIAL_DEVICE_H
#define MINIVM_SERIAL_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "uart16550.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_DEBUGCON_READBACK 0xe9 /* what QEMU's isa-debugcon reads as */

/* The device's part of the state page (from IPC_STATE_DEV_OFFSET). */
struct serial_state {
	uint32_t magic; /* SERIAL_STATE_MAGIC once initialised */
	uint32_t size;  /* sizeof(struct serial_state): another layout is not resumed */
	struct uart16550 com1;
	struct uart16550 mmio; /* used only with an MMIO UART */
};

struct serial_config {
	bool stdio;          /* the UART is on the host terminal (else its output is dropped) */
	bool debugcon;
	uint16_t debugcon_port;
	bool mmio_uart;
	uint64_t mmio_base;  /* 8 registers, 1-byte stride */
};

/* Where the device's effects go. */
struct serial_sink {
	void *opaque;
	void (*send)(void *opaque, const struct ipc_msg *m); /* to the core */
	void (*output)(void *opaque, uint8_t byte);         /* to the host's stdout */
};

struct serial_device {
	struct serial_config cfg;
	struct serial_sink sink;
	struct ipc_state_page *page; /* shared with the core; NULL until attached */
	struct serial_state *state;  /* inside page */
	uint64_t next_seq;           /* of messages this device originates */
};

enum serial_verdict { SERIAL_CONTINUE, SERIAL_EXIT };

/* The HELLO announcing cfg's ranges, interrupt line and registers. */
void serial_hello(const struct serial_config *cfg, struct ipc_msg *m);

/* Start serving with the state page page (IPC_STATE_SIZE bytes): resume the
 * state a previous incarnation left there if resumed and it is valid (else
 * reset it, logged once), publish the shadows and report the interrupt
 * level.  Returns false if a resumed state had to be reset. */
bool serial_attach(struct serial_device *d, void *page, bool resumed);

/* Every field in range, and the layout this build writes: s may be resumed. */
bool serial_state_valid(const struct serial_state *s);

/* A message that arrives before WELCOME was sent to the previous incarnation
 * of this device, which died before taking it.  True if it must be handled
 * once attached: writes and resets (the guest issued them and nobody resends
 * them).  Reads are dropped unanswered: the core fails them back to the vCPU,
 * which retries after the new HELLO, and would take a late reply for a
 * protocol error. */
bool serial_keep_early(const struct ipc_msg *m);

/* One decoded message from the core (after serial_attach). */
enum serial_verdict serial_handle(struct serial_device *d, const struct ipc_msg *m);

/* Host keyboard input for the 0x3f8 UART: queues what fits, returns how much. */
size_t serial_input(struct serial_device *d, const uint8_t *buf, size_t n);
size_t serial_input_space(const struct serial_device *d);

/* Ask the core to stop the VM (the user typed Ctrl-A x). */
void serial_quit(struct serial_device *d);

#endif
