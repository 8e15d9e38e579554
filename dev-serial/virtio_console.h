/* virtio_console.h - hvc0: a virtio-console (virtio 1.2, section 5.3),
 * device type 3, single port (no MULTIPORT), on the virtio-mmio transport
 * of devlib/virtio.
 *
 * - transmitq0: each chain's bytes go to the host unaltered, straight from
 *   guest RAM (io.output, one call per buffer, which copies them into
 *   dev-serial's stdout buffer; no per-byte message).  Linux's hvc console adds one buffer (up to a page), notifies
 *   and spins with interrupts off until the buffer comes back, so the
 *   notify's latency is the console's throughput: QueueNotify is a doorbell
 *   in the state page (no message) and the notifying vCPU sleeps until
 *   dev-serial has taken it (IPC_REG_DOORBELL_WAIT), rather than spinning
 *   against dev-serial for the host's CPUs.  The driver asks for an
 *   interrupt for every used buffer (its used_event), which then finds
 *   nothing: its spinning took the buffer.  So the used-buffer notification
 *   of buffers transmitted on a ring is decided later, at the next ring or
 *   once the rings have been quiet for DOORBELL_QUIET_US: by then a polling
 *   driver has taken the buffers and moved used_event past them (no
 *   interrupt is due), while a driver that waits gets its interrupt then.
 *   A device reads used_event after publishing the used index, as here,
 *   only later: the driver's protocol already allows for that.
 * - receiveq0: host input is queued here (VIRTIO_CONSOLE_INPUT_SIZE bytes,
 *   in the state page) and moved into the receive buffers the driver posts
 *   once its port is open (below); input typed before waits (typeahead).
 *   The caller stops reading its input while the queue is full
 *   (virtio_console_input_space), so nothing is dropped.
 * - VIRTIO_CONSOLE_F_SIZE: config space holds the host terminal's columns
 *   and rows; every change (virtio_console_resize) is a configuration
 *   change interrupt, which makes Linux's virtio_console read them and
 *   resize hvc0.  Linux reads them only when such an interrupt comes: the
 *   size is announced right after DRIVER_OK (as cloud-hypervisor does) and
 *   again once the port is open.
 *
 * When is the port open?  Linux's probe sets DRIVER_OK and posts its
 * receive buffers before it lists the port; a receive buffer completed
 * before that is thrown away with its bytes (in_intr finds no port and
 * flushes the queue), and a size announced then is dropped.  The device
 * cannot see the port being listed, so it asks: with each batch of
 * transmitted buffers (the guest writes, so its probe is over) while the
 * port is not known to be open, it completes one receive buffer with zero
 * bytes (at most one per VIRTIO_CONSOLE_PROBE_NS).  Linux gives such a
 * buffer back — posts it again — only once the tty is open and reads it
 * (hvc_poll -> get_chars); after its probe it posts receive buffers for no
 * other reason.  So the driver's avail index moving past where it stood at
 * a probe means the port is open.  A probe that lands before the port is
 * listed costs the driver one receive buffer (of the 256 it posts).
 *
 * Everything a restarted process needs is in struct virtio_console_state,
 * which dev-serial keeps in its state page. */
#ifndef MINIVM_VIRTIO_CONSOLE_H
#define MINIVM_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"
#include "ipc.h"
#include "virtio_mmio.h"

#define VIRTIO_CONSOLE_DEVICE_ID 3
#define VIRTIO_CONSOLE_F_SIZE 0  /* config space cols/rows are valid */
#define VIRTIO_CONSOLE_RX 0      /* receiveq0: host -> guest */
#define VIRTIO_CONSOLE_TX 1      /* transmitq0: guest -> host */
#define VIRTIO_CONSOLE_QUEUE_MAX 256
#define VIRTIO_CONSOLE_INPUT_SIZE 4096 /* host input held for the guest */
#define VIRTIO_CONSOLE_PROBE_NS 20000000ull /* between two probes of the port */
/* Config space (virtio 1.2, 5.3.4): le16 cols, le16 rows, le32
 * max_nr_ports, le32 emerg_wr. */
#define VIRTIO_CONSOLE_CONFIG_SIZE 12
/* Registers a virtio console adds to a HELLO (virtio_console_hello). */
#define VIRTIO_CONSOLE_HELLO_REGS VIRTIO_MMIO_HELLO_REGS

#define VIRTIO_CONSOLE_STATE_MAGIC 0x30637668u /* "hvc0" */

/* In the state page; no pointers. */
struct virtio_console_state {
	uint32_t magic; /* VIRTIO_CONSOLE_STATE_MAGIC */
	uint32_t size;  /* sizeof(struct virtio_console_state) */
	struct virtio_mmio_state mmio;
	uint16_t cols, rows;       /* what config space says */
	uint8_t port_open;         /* 1: the driver's port reads its receive buffers */
	uint8_t probing;           /* 1: a probe is out, the avail index stood at probe_avail */
	uint16_t probe_avail;
	uint32_t in_head, in_len;  /* ring of held input: in_buf[in_head], in_len bytes */
	uint8_t in_buf[VIRTIO_CONSOLE_INPUT_SIZE];
};

/* Where the device's effects go. */
struct virtio_console_io {
	void *opaque;
	/* Bytes the guest transmitted (may block: a slow terminal slows the
	 * guest, nothing is dropped).  buf points into guest RAM, which the
	 * driver reuses once the buffer is used: take the bytes before
	 * returning. */
	void (*output)(void *opaque, const void *buf, size_t len);
	void (*irq)(void *opaque, int level);
	/* A shadowed register's new value (slot first_slot + which). */
	void (*publish_shadow)(void *opaque, enum virtio_mmio_shadow which, uint32_t value);
};

struct virtio_console {
	struct virtio_dev vdev; /* opaque: this struct */
	struct virtio_console_state *state;
	struct virtio_console_io io;
	uint64_t last_probe_ns; /* host_now_ns of the last probe */
	bool taking_rings;       /* inside virtio_console_doorbell */
	bool tx_signal_deferred; /* transmit buffers used, their notification not yet decided */
};

/* Add the console's range (a virtio-mmio slot the core assigns), its line
 * and its registers to h, with shadow slots from first_slot on and
 * QueueNotify as the state page's doorbell `doorbell` where the host has
 * them (virtio_mmio_hello_doorbell). */
void virtio_console_hello(struct ipc_hello *h, unsigned first_slot, unsigned doorbell);

/* Start serving with state s (in the state page) and guest RAM ram: resume
 * what a previous incarnation left in s if resumed and valid (the driver
 * keeps running), else start fresh (a resumed state that is not valid
 * makes the driver reset the device: logged once).  cols/rows: the host
 * terminal's size now (0: unknown).  Returns false if a resumed state was
 * not kept. */
bool virtio_console_attach(struct virtio_console *c, struct virtio_console_state *s,
			   const struct guest_mem *ram, bool resumed, uint16_t cols, uint16_t rows);

/* The guest's access at offset into the device's window. */
uint64_t virtio_console_read(struct virtio_console *c, uint64_t offset, unsigned size);
void virtio_console_write(struct virtio_console *c, uint64_t offset, unsigned size, uint64_t value);

/* The console's doorbell was rung with these bits (its queues notified). */
void virtio_console_doorbell(struct virtio_console *c, uint32_t bits);
/* No ring for a while (devlib's ops.doorbell_quiet): send what is deferred. */
void virtio_console_doorbell_quiet(struct virtio_console *c);

/* The machine was reset: the transport starts over; held input stays (it
 * was typed for the next boot too, as for the UART). */
void virtio_console_machine_reset(struct virtio_console *c);

/* Host input: hold up to n bytes (returns how many fit), and deliver what
 * the driver has buffers for. */
size_t virtio_console_input(struct virtio_console *c, const uint8_t *buf, size_t n);
size_t virtio_console_input_space(const struct virtio_console *c);

/* The host terminal is now cols x rows. */
void virtio_console_resize(struct virtio_console *c, uint16_t cols, uint16_t rows);

#endif
