/* devproxy.h - the core's side of one device process: listens on the
 * device's nng URL, attaches it to the bus when its HELLO is acceptable, and
 * serves the vCPUs' accesses to its ranges: posted writes, reads from the
 * state page's shadows when allowed (devproxy_policy.h), otherwise a round
 * trip.  A device that dies and comes back (same declarations) resumes with
 * the state page it left; a device that sends anything malformed is marked
 * broken: logged once, its reads answer all-ones, its writes are dropped. */
#ifndef MINIVM_DEVPROXY_H
#define MINIVM_DEVPROXY_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "devproxy_policy.h"

/* What the proxy reports to the board; called on the proxy's receive thread. */
struct devproxy_hooks {
	void *opaque;
	void (*irq)(void *opaque, unsigned line, int level);
	void (*quit)(void *opaque); /* the user asked to stop the VM */
};

/* Everything a device is told in its WELCOME, and where its ranges go. */
struct devproxy_board {
	struct bus *bus;
	struct slot_table *slots; /* the board's virtio-mmio slots (devproxy_policy.h) */
	const char *ram_name;       /* host_shm_name of guest RAM */
	const struct guest_mem *ram; /* its size and guest-physical regions */
	struct devproxy_hooks hooks;
};

struct devproxy;

/* Listen on url for the device called name.  NULL with a reason in err. */
struct devproxy *devproxy_create(const char *name, const char *url,
				 const struct devproxy_board *board, char *err, size_t errlen);

/* Wait up to timeout_ms for the first accepted HELLO.  0, or -1 with the
 * reason (the last REJECT sent, or a timeout) in err. */
int devproxy_wait_attached(struct devproxy *d, int timeout_ms, char *err, size_t errlen);

/* What the device declared, placed: its ranges and lines where the board
 * put them (slots filled in).  Valid once devproxy_wait_attached succeeded;
 * the ACPI tables are built from it. */
const struct ipc_hello *devproxy_placed(const struct devproxy *d);

/* The guest reset the machine: tell the device (IPC_RESET, posted in order
 * with its writes; later shadow reads wait until it has reset). */
void devproxy_reset(struct devproxy *d);

/* The VM is stopping: nothing waits for this device any more (pending and
 * future reads answer all-ones, writes are dropped).  Any thread. */
void devproxy_abort(struct devproxy *d);

/* Abort, tell an attached device the VM is over (IPC_SHUTDOWN) and give it
 * a moment to take what was sent before and go, then stop serving it and
 * free everything.  Returns within about 2 s whatever the device does.  The
 * state page is released with it. */
void devproxy_shutdown_and_destroy(struct devproxy *d);

#endif
