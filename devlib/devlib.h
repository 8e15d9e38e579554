/* devlib.h - the device side of the core<->device protocol, once, for every
 * dev-* process.
 *
 * A device process parses its arguments, fills a struct dev_ops and calls
 * dev_run().  The library dials the core (redialling with backoff), sends the
 * device's HELLO, keeps the writes, READ_DONEs and resets that arrive before WELCOME
 * (they were meant for a previous incarnation), maps the state page and guest
 * RAM named in WELCOME, and then serves: reads are answered, writes and
 * resets are applied and acknowledged through state->applied_seq, PING gets
 * PONG, SHUTDOWN or a vanished core ends the run.  REJECT ends it with
 * IPC_DEVICE_EXIT_REFUSED.
 *
 * Doorbells (IPC_REG_DOORBELL, ipc.h) bypass the channel: a thread of the
 * library sleeps on the state page's doorbell and calls ops->doorbell.  So
 * do the levels of level-triggered lines, in the other direction
 * (IPC_IRQ_PUBLISHED: dev_send).
 *
 * One event loop per process: it waits (host_poll) on the channel, on a
 * wake-up handle and on whatever host handles the device adds
 * (poll_prepare), with the device's next timer deadline as timeout; then it
 * handles the core's messages and calls poll_dispatch.  Every call into the
 * device's ops is made with the device lock held.  A device's own threads
 * (dev-serial's stdin reader) take the same lock with dev_lock() around
 * their calls into the device, may send with dev_send(), wait for the
 * device to change with dev_wait_change(), and make the loop run
 * poll_prepare/poll_dispatch again with dev_wake(). */
#ifndef MINIVM_DEVLIB_H
#define MINIVM_DEVLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"
#include "host.h"
#include "ipc.h"

struct dev_ops {
	/* The HELLO's body: name, ranges, interrupt lines, registers.  The
	 * library fills version and the message's seq. */
	void (*hello)(void *dev, struct ipc_hello *h);
	/* Attached: page is the state page (IPC_STATE_SIZE bytes, the device's
	 * part from IPC_STATE_DEV_OFFSET), ram guest RAM (valid until the run
	 * ends), w the WELCOME: IPC_WELCOME_RESUMED in w->flags when the page
	 * holds a previous incarnation's state, and where each range and line
	 * was placed (w->range_base, w->irq_gsi: a slot's base and GSI; the
	 * library checked that the explicit ones are as declared).  The device
	 * publishes its shadows and re-sends its interrupt levels here. */
	void (*attach)(void *dev, struct ipc_state_page *page, const struct guest_mem *ram,
		       const struct ipc_welcome *w);
	/* An IO_READ: the value to reply with.  Publish shadows before
	 * returning: the core may read one right after the reply. */
	uint64_t (*read)(void *dev, const struct ipc_io *io);
	/* A posted IO_WRITE.  The library stores applied_seq afterwards.
	 * io->line: what the core did to the register's line just before it
	 * sent the write (ipc.h, struct ipc_line_note); a run's writes come
	 * one by one, the run's note with the first. */
	void (*write)(void *dev, const struct ipc_io *io);
	/* An IO_READ_DONE: the core answered a read of an IPC_REG_READ_ACK
	 * register itself with io->data; apply that read's side effect.
	 * Ordered like a write, with a line note as a write.  Needed by
	 * devices that declare such a register (the core never sends it to
	 * others). */
	void (*read_done)(void *dev, const struct ipc_io *io);
	/* The guest reset the machine.  Ordered like a write. */
	void (*reset)(void *dev);
	/* Optional (NULL: none; needed by a device that declares an
	 * IPC_REG_DOORBELL register).  Doorbell `doorbell` was rung with the
	 * values whose bits are set in `bits` (ipc.h).  Called from the
	 * library's doorbell thread, unordered with the messages: a ring may
	 * arrive before writes the guest made earlier. */
	void (*doorbell)(void *dev, unsigned doorbell, uint32_t bits);
	/* Optional: no ring has come for DOORBELL_QUIET_US since the last one
	 * taken (or a little earlier: spurious wake-ups).  The time to send
	 * what a device deferred while rings kept coming. */
	void (*doorbell_quiet)(void *dev);
	/* Optional: the rings just handled by ops.doorbell are stored as taken
	 * (a vCPU waiting for them runs on).  The time for work the guest need
	 * not wait for. */
	void (*doorbell_taken)(void *dev);

	/* Optional (NULL: none).  Before each wait: add up to max host handles
	 * to watch to fds and return how many; lower *deadline_ns (host_now_ns
	 * clock; UINT64_MAX: no timer) to be called back by then. */
	size_t (*poll_prepare)(void *dev, struct host_pollfd *fds, size_t max, uint64_t *deadline_ns);
	/* After each wait, whatever ended it (a handle, the deadline, a wake
	 * or a message): the handles of poll_prepare with their revents. */
	void (*poll_dispatch)(void *dev, const struct host_pollfd *fds, size_t n);

	/* What the process may still do once attached (host.h; each device's
	 * sandbox.c).  dev_run enters it right after attach: the channel is
	 * dialled and the shared memory mapped, and a restarted incarnation is
	 * started unconfined by the launcher, so it can map them again.
	 * Failing to enter it ends the run with IPC_DEVICE_EXIT_REFUSED (never
	 * unconfined).  NULL: none (unit tests that run the loop in-process). */
	const struct host_sandbox_profile *sandbox;
};

/* How long the doorbells stay quiet before ops.doorbell_quiet. */
#define DOORBELL_QUIET_US 1000

/* Host handles one device may watch: dev-net watches one socket per NAT
 * connection and forward (100 concurrent connections and more). */
#define DEV_MAX_POLLFDS 1024

/* ---- one message, no sockets: the part the fuzz targets and unit tests drive ---- */

/* A device bound to where its messages go. */
struct dev_port {
	const struct dev_ops *ops;
	void *dev;
	struct ipc_state_page *page; /* from attach on */
	void (*send)(void *opaque, const struct ipc_msg *m); /* replies (seq = the request's) */
	void *send_opaque;
};

enum dev_verdict { DEV_CONTINUE, DEV_EXIT };

/* One decoded message from the core, once attached. */
enum dev_verdict dev_handle(struct dev_port *p, const struct ipc_msg *m);

/* A message that arrives before WELCOME was sent to the previous incarnation,
 * which died before taking it.  Writes, READ_DONEs and resets are kept and handled once
 * attached (the guest issued them and nobody resends them); reads are
 * dropped unanswered: the core fails them back to the vCPU, which retries
 * after the new HELLO, and would take a late reply for a protocol error. */
bool dev_keep_early(const struct ipc_msg *m);

/* ---- the process ---- */

struct dev_loop;

/* Run the device with the core at url until the VM ends.  Returns the
 * process's exit status: 0 (SHUTDOWN, or the core went away), 1 (cannot
 * reach the core, or out of resources), IPC_DEVICE_EXIT_REFUSED (REJECT).
 * Returns with the device lock held, so that the device's threads stop
 * touching the channel and the state page; the caller exits.
 * *loop_out (may be NULL) is set before the first call into ops, for the
 * device's threads. */
int dev_run(const char *url, const struct dev_ops *ops, void *dev, struct dev_loop **loop_out);

/* A message the device originates (IRQ, QUIT): numbered here, sent now.
 * With the device lock held (ops are called with it held).  An IPC_IRQ for
 * a level-triggered line is no message where the host can wake a thread of
 * another process (host_shared_wait_supported): the library declares
 * such lines IPC_IRQ_PUBLISHED in the HELLO and stores their levels in the
 * state page, waking the core's thread only if it sleeps (ipc.h).  True:
 * it left as a message (the core counts IPC_IRQ messages: line notes). */
bool dev_send(struct dev_loop *l, struct ipc_msg *m);
/* Set interrupt line `line` (its GSI) to level (0/1), as dev_send says. */
void dev_irq(struct dev_loop *l, uint32_t line, int level);

void dev_lock(struct dev_loop *l);
void dev_unlock(struct dev_loop *l);
/* With the lock held: wait until the loop has handled messages from the
 * core or a doorbell's rings (the device may have changed). */
void dev_wait_change(struct dev_loop *l);
/* Any thread, lock held or not: run poll_prepare/poll_dispatch soon. */
void dev_wake(struct dev_loop *l);

#endif
