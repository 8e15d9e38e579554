/* ipc.h - the messages vmm-core and the device processes exchange, and the
 * nng channel that carries them.
 *
 * Every process links this library.  Wire format: little-endian, a fixed
 * 16-byte header followed by a type-specific body; ipc_decode() checks every
 * field of a message from another process before anything else looks at it,
 * so callers may trust a decoded struct ipc_msg (sizes, counts, strings) but
 * must still treat the *values* (addresses, line numbers) as guest- or
 * peer-controlled and check them against what they own.
 *
 * Hot-path design (see docs/ARCHITECTURE.md):
 *  - IO writes are posted: the vCPU never waits for a write.
 *  - A device declares registers whose reads have no side effects as
 *    "shadowed": it publishes their values in its state page (below) and the
 *    core answers reads of them locally, without a round trip, once every
 *    ordered write sent before has been applied (state->applied_seq).
 *  - Writes to registers declared "stream" (e.g. a UART's THR) never change a
 *    shadowed value, so they do not make the core wait before a shadow read.
 *  - A register whose reads acknowledge an event (a UART's IIR) may be
 *    answered by the core too (IPC_REG_READ_ACK): the read is then posted to
 *    the device as IPC_IO_READ_DONE, which applies its side effect.
 *  - Writes to registers declared "doorbell" (virtio's QueueNotify) are no
 *    message at all: a bit and a count in the state page and a wake-up.
 *  - A receive register (a UART's RBR) may be popped by the core from a
 *    byte ring in the state page that the device fills (IPC_REG_RX_RING);
 *    the core tells the device with one posted IO_READ_DONE when it has
 *    emptied the ring, not once per byte.
 *  - A level-triggered line declared IPC_IRQ_PUBLISHED is no message
 *    either: the device publishes its level in the state page and wakes a
 *    core thread only if it sleeps (struct ipc_irq_levels).
 */
#ifndef MINIVM_IPC_H
#define MINIVM_IPC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"
#include "host.h"

#define IPC_MAGIC 0x564du /* "MV" on the wire */
#define IPC_PROTO_VERSION 4
#define IPC_HDR_SIZE 16
#define IPC_MAX_MSG 1024 /* no valid message is larger */
#define IPC_MAX_FRAME 4096 /* one channel message: a message, or a batch of posted ones */

#define IPC_MAX_NAME 16    /* device name, NUL included */
#define IPC_MAX_RANGES 8   /* address ranges one device may own */
#define IPC_MAX_IRQS 8     /* interrupt lines one device may drive */
#define IPC_MAX_REGS 24    /* registers with special read/write handling */
#define IPC_MAX_SHM_NAME 128
#define IPC_MAX_REASON 128

enum ipc_msg_type {
	IPC_HELLO = 1,    /* dev -> core: name, version, ranges, irqs, regs */
	IPC_WELCOME = 2,  /* core -> dev: attached; shared-memory names; HELLO's seq */
	IPC_REJECT = 3,   /* core -> dev: not attached, with a reason; HELLO's seq */
	IPC_IO_READ = 4,  /* core -> dev: read; answered by IPC_IO_REPLY, same seq */
	IPC_IO_REPLY = 5, /* dev -> core */
	IPC_IO_WRITE = 6, /* core -> dev: posted write, no reply */
	IPC_IRQ = 7,      /* dev -> core: set an interrupt line's level (its GSI) */
	IPC_RESET = 8,    /* core -> dev: the guest reset the machine */
	IPC_SHUTDOWN = 9, /* core -> dev: the VM is ending; exit cleanly */
	IPC_QUIT = 10,    /* dev -> core: the user asked to stop the VM */
	IPC_PING = 11,    /* either way: answered by IPC_PONG with the same seq */
	IPC_PONG = 12,
	IPC_IO_READ_DONE = 13, /* core -> dev: a read the core answered itself
	                        * (IPC_REG_READ_ACK), data = what it returned;
	                        * posted and ordered like a write */
	IPC_IO_WRITE_RUN = 14, /* core -> dev: posted 1-byte writes to one stream
	                        * register, in order (struct ipc_io_run), under
	                        * one seq: a UART's THR writes, coalesced; perhaps
	                        * followed by the IO_READ_DONE posted next */
	IPC_MSG_TYPE_MAX
};

/* A device process exits with this status when it is refused for good: its
 * arguments are wrong, or the core answered IPC_REJECT.  Starting it again
 * would only repeat the refusal, so the launcher stops the VM instead of
 * restarting it.  (78 is sysexits' EX_CONFIG.) */
#define IPC_DEVICE_EXIT_REFUSED 78

enum ipc_space { IPC_SPACE_PIO = 0, IPC_SPACE_MMIO = 1 };

/* flags of struct ipc_reg */
#define IPC_REG_SHADOW 0x1u /* reads answered by the core from shadow[slot] */
#define IPC_REG_STREAM 0x2u /* writes never change a shadowed value */
/* An interrupt acknowledge (virtio's InterruptACK): a write whose value
 * clears every bit set in shadow[slot] (the pending-interrupt register) makes
 * the core lower the line of the register's range at once, before the
 * write is posted, so that the guest's EOI finds a low line (no second,
 * spurious interrupt).  The device, after applying such a write, sends the
 * line's level again if anything is still pending. */
#define IPC_REG_ACK_LOWERS 0x4u
/* A register whose reads acknowledge an event that the writes to the stream
 * registers of its range raise: a 16550's IIR, where each THR write raises
 * the THR-empty interrupt and the IIR read that reports it acknowledges it.
 * Size 1.  The device publishes in shadow[slot] an IPC_READ_ACK_* word: the
 * register's value with the event pending and without, and whether it is
 * pending.  The core answers reads itself whenever it could answer a shadow
 * read (magic, applied_seq), tracking the event between the device's
 * publications: a stream write it posts raises it, a read it answers that
 * reports it acknowledges it; such a read goes to the device as
 * IPC_IO_READ_DONE so that the device acknowledges the same.  Whether a
 * stream write raises it is in the word too (IPC_READ_ACK_STREAM_RAISES);
 * a stream write posted while the core cannot trust the word leaves the
 * event unknown, and reads go to the device until it has applied that write.  If nothing
 * else holds the line up once the event is acknowledged (IPC_READ_ACK_IDLE),
 * the core lowers the range's line at once, before posting READ_DONE with
 * a line note saying so (struct ipc_line_note); the device, applying it,
 * reports its level if it differs from where the line ends.  A read the
 * core answers with the CLEAR value while nothing holds the line up, and
 * the line up (a device's IPC_IRQ landed after the core's last lowering),
 * lowers it too and is posted as READ_DONE with the note, acknowledging
 * nothing (docs/ARCHITECTURE.md, "IIR without a round trip"). */
#define IPC_REG_READ_ACK 0x8u
/* Writes to the register change at most the shadow slots whose bits are set
 * in ipc_reg.changes (a 16550's IER: its own shadow and IIR's word, never
 * LSR): the core's reads of other shadows need not wait for them.  Without
 * this flag (or IPC_REG_STREAM, which changes none) a write may change
 * every shadow. */
#define IPC_REG_CHANGES_ONLY 0x10u

/* The word an IPC_REG_READ_ACK register's shadow slot holds. */
#define IPC_READ_ACK_CLEAR(w) ((uint8_t)(w))         /* the value with the event not pending */
#define IPC_READ_ACK_RAISED(w) ((uint8_t)((w) >> 8)) /* the value with the event pending */
#define IPC_READ_ACK_PENDING (1ull << 16) /* the event is pending in the device */
#define IPC_READ_ACK_REPORTS (1ull << 17) /* the RAISED value reports the event (reading it acknowledges) */
#define IPC_READ_ACK_IDLE (1ull << 18)    /* without the event, nothing holds the line up */
#define IPC_READ_ACK_STREAM_RAISES (1ull << 19) /* a stream write raises the event now (a
                                                 * 16550 with DLAB set writes the divisor instead) */
#define IPC_READ_ACK_LINE_UP (1ull << 21) /* with the event pending, the line is up (a 16550
                                           * with IER's ETBEI set): the core raises the line
                                           * itself when a stream write makes it pending */
/* The event's enable bits (a 16550's IER.ETBEI, 0 with DLAB set): the
 * shadowed IPC_REG_CHANGES_ONLY register of the same range whose slot is
 * IPC_READ_ACK_ENABLE_SLOT(w) enables the event with the bits of
 * IPC_READ_ACK_ENABLE_MASK(w).  With a mask, the RAISED value, REPORTS and
 * LINE_UP say what they would with the event enabled, and
 * IPC_READ_ACK_ENABLED whether it is: disabled, the event reads as not
 * pending.  A write to that register that changes only those bits (its
 * shadow and the word current) changes its own shadow and nothing else:
 * the core knows the event enabled or disabled from then on, pending too
 * if enabling makes it so (IPC_READ_ACK_ENABLE_RAISES: the 16550 raises
 * THRE when ETBEI is set), until the device has applied the write. */
#define IPC_READ_ACK_ENABLED (1ull << 22)
#define IPC_READ_ACK_ENABLE_RAISES (1ull << 23)
#define IPC_READ_ACK_ENABLE_MASK(w) ((uint8_t)((w) >> 48))
#define IPC_READ_ACK_ENABLE_SLOT(w) ((unsigned)((w) >> 56) & 0xff)
/* A doorbell (virtio's QueueNotify): a write of a value below 32 is not a
 * message.  The core sets bit `value` of state->doorbell.pending[slot]
 * (slot < IPC_MAX_DOORBELLS), counts the ring in doorbell.rung and wakes
 * the device (host_shared_wake), which takes the bits and later stores
 * doorbell.taken.  A ring can overtake writes posted before it: the device
 * must treat it as "look again", never as the only sign of work (virtio:
 * a queue made live looks at its ring by itself).  Larger values are
 * posted as writes.  Only where host_shared_wait_supported(). */
#define IPC_REG_DOORBELL 0x20u
/* With IPC_REG_DOORBELL: the vCPU that rang waits (bounded, a few ms)
 * until the device has taken the ring, for a driver that spins until the
 * device has done the work (Linux's hvc console): the vCPU looks at taken
 * in a short spin, then sleeps, instead of running the guest's polling
 * loop against the device for the host's CPUs. */
#define IPC_REG_DOORBELL_WAIT 0x40u
/* The receive ring (struct ipc_rx_ring in the state page; a 16550's RX
 * FIFO).  Registers of one range take part, all size 1:
 *  - the receive register (RBR): the flag (and perhaps IPC_REG_STREAM, for
 *    the writes to its address: THR), with a slot whose word
 *    (IPC_RX_POP_*) says whether the core may pop the ring now and what a
 *    read of an empty ring returns.  One per HELLO.  A pop moves the ring's
 *    head; the read that empties the ring is posted as IPC_IO_READ_DONE
 *    (data: the value it returned), after the core has lowered the range's line if
 *    nothing else holds it up (as for IPC_REG_READ_ACK);
 *  - with IPC_REG_SHADOW (LSR): the shadow holds the register's value with
 *    the ring empty (IPC_RX_EMPTY_VALUE) and not (IPC_RX_DATA_VALUE);
 *  - with IPC_REG_READ_ACK (IIR): the word's two values say nothing of the
 *    ring; data in it is an event of higher priority, which the word
 *    describes (IPC_READ_ACK_RX_*), and IPC_READ_ACK_IDLE means idle with
 *    the ring empty.
 * Whenever the ring is not poppable the core reads through the device as
 * before (docs/ARCHITECTURE.md, "Receive without a round trip"). */
#define IPC_REG_RX_RING 0x80u
#define IPC_REG_FLAGS                                                                        \
	(IPC_REG_SHADOW | IPC_REG_STREAM | IPC_REG_ACK_LOWERS | IPC_REG_READ_ACK | IPC_REG_CHANGES_ONLY | \
	 IPC_REG_DOORBELL | IPC_REG_DOORBELL_WAIT | IPC_REG_RX_RING)

/* The receive register's word. */
#define IPC_RX_POP_EMPTY(w) ((uint8_t)(w))  /* what a read of an empty ring returns */
#define IPC_RX_POP_LIVE (1ull << 8)         /* the ring is the receiver: the core may pop */
/* A shadowed register's word with IPC_REG_RX_RING. */
#define IPC_RX_EMPTY_VALUE(w) ((uint8_t)(w))
#define IPC_RX_DATA_VALUE(w) ((uint8_t)((w) >> 8))
/* In an IPC_REG_READ_ACK word with IPC_REG_RX_RING: */
#define IPC_READ_ACK_RX_ENABLED (1ull << 20) /* data in the ring is an event */
#define IPC_READ_ACK_RX_FULL(w) ((uint8_t)((w) >> 24))    /* the value with at least trigger bytes */
#define IPC_READ_ACK_RX_PARTIAL(w) ((uint8_t)((w) >> 32)) /* the value with fewer */
#define IPC_READ_ACK_RX_TRIGGER(w) ((unsigned)((w) >> 40) & 0xff)

/* flags of IPC_WELCOME */
#define IPC_WELCOME_RESUMED 0x1u /* state page holds a previous incarnation's state */

/* What a range is, so that the core can describe it to the guest (ACPI)
 * without knowing the device: devices are described by data. */
enum ipc_range_kind {
	IPC_RANGE_PLAIN = 0,       /* not described to the guest */
	IPC_RANGE_UART16550 = 1,   /* a 16550, 8 registers (ACPI PNP0501 for a PIO one) */
	IPC_RANGE_VIRTIO_MMIO = 2, /* a virtio-mmio transport (ACPI LNRO0005) */
	IPC_RANGE_DEBUGCON = 3,    /* a 1-byte debug port, PIO or MMIO: writes are posted to
	                            * the device, reads answered by the core itself
	                            * (IPC_DEBUGCON_READBACK); not described to the guest */
	IPC_RANGE_PL011 = 4,       /* an Arm PL011 UART, IPC_PL011_SIZE bytes of MMIO with a
	                            * line (device tree "arm,pl011") */
	IPC_RANGE_KIND_MAX
};
#define IPC_UART16550_SIZE 8
#define IPC_VIRTIO_MMIO_SIZE 0x200
#define IPC_PL011_SIZE 0x1000
#define IPC_DEBUGCON_READBACK 0xe9 /* what QEMU's isa-debugcon reads as */

struct ipc_range {
	uint8_t space; /* enum ipc_space */
	/* > 0, base + size does not wrap.  A virtio-mmio range with base 0
	 * asks the core for a slot: WELCOME gives the base it got, and the
	 * registers the HELLO declares inside [0, size) of MMIO are offsets
	 * into the slot (the core moves them there). */
	uint64_t base;
	uint64_t size;
	uint8_t kind;  /* enum ipc_range_kind */
	bool has_irq;  /* the range raises ipc_hello.irqs[irq] */
	uint8_t irq;
};

enum ipc_trigger { IPC_TRIGGER_EDGE = 0, IPC_TRIGGER_LEVEL = 1 };
/* ipc_irq_line.gsi in a HELLO: the core picks the line (with a slot). */
#define IPC_IRQ_ANY 0xffffffffu

/* flags of struct ipc_irq_line */
/* The device publishes the line's level in the state page (struct
 * ipc_irq_levels) instead of sending IPC_IRQ for it.  Level-triggered lines
 * only (the last level published wins; an edge needs every change), and
 * only where host_shared_wait_supported(): the core refuses it elsewhere. */
#define IPC_IRQ_PUBLISHED 0x1u
#define IPC_IRQ_FLAGS IPC_IRQ_PUBLISHED

struct ipc_irq_line {
	uint32_t gsi;    /* the board's interrupt line, or IPC_IRQ_ANY */
	uint8_t trigger; /* enum ipc_trigger */
	uint8_t flags;   /* IPC_IRQ_* */
};

struct ipc_reg {
	uint8_t space;
	uint8_t size; /* access size in bytes: 1, 2, 4 or 8 */
	uint8_t flags;
	uint8_t slot; /* shadow slot, < IPC_MAX_REGS, for IPC_REG_SHADOW; doorbell, for IPC_REG_DOORBELL */
	uint64_t addr;
	uint32_t changes; /* IPC_REG_CHANGES_ONLY: bit s = shadow slot s; else 0 */
};

struct ipc_hello {
	uint32_t version;
	char name[IPC_MAX_NAME];
	uint32_t nranges, nirqs, nregs;
	struct ipc_range ranges[IPC_MAX_RANGES];
	struct ipc_irq_line irqs[IPC_MAX_IRQS];
	struct ipc_reg regs[IPC_MAX_REGS];
};

struct ipc_welcome {
	uint32_t flags;
	uint64_t ram_size;
	uint64_t state_size;
	char ram_name[IPC_MAX_SHM_NAME];
	char state_name[IPC_MAX_SHM_NAME];
	/* Where the HELLO's ranges and lines ended up: the declared values,
	 * or the slot and line the core assigned.  The counts are the HELLO's;
	 * IPC_IRQ messages name lines by these GSIs. */
	uint32_t nranges, nirqs;
	uint64_t range_base[IPC_MAX_RANGES];
	uint32_t irq_gsi[IPC_MAX_IRQS];
	/* Where guest RAM's ram_size bytes sit in guest-physical space
	 * (guest_mem_set_regions: the decoder has checked the layout). */
	uint32_t nregions;
	struct guest_mem_region ram_regions[GUEST_MEM_MAX_REGIONS];
	/* The IPC_IRQ messages from this device's incarnations the core has
	 * applied so far: where this incarnation's count starts
	 * (struct ipc_line_note). */
	uint32_t irqs_applied;
};

/* What the core did to the line of the register's range just before it sent
 * an IO_WRITE, IO_WRITE_RUN or IO_READ_DONE (zero for the other messages):
 * raised it (a stream write made an IPC_REG_READ_ACK event pending whose
 * word says IPC_READ_ACK_LINE_UP) or lowered it (an acknowledge, or the pop
 * that emptied the receive ring, with nothing else holding it up).
 * irqs_applied: how many IPC_IRQ messages from this device (every
 * incarnation, counted from the core's start, modulo 2^32) the core had
 * applied to its lines before it did so.  A device that has sent exactly
 * that many (WELCOME's irqs_applied plus its own since) knows the line is
 * where the core put it; one that has sent more knows the rest land after
 * the change, so the line ends at the level of its last message; a count
 * above its own leaves the level unknown, and it says it again
 * (docs/ARCHITECTURE.md, "THRE raised by the core"). */
enum ipc_line_action { IPC_LINE_UNTOUCHED = 0, IPC_LINE_RAISED = 1, IPC_LINE_LOWERED = 2 };
struct ipc_line_note {
	uint8_t action; /* enum ipc_line_action */
	uint32_t irqs_applied;
};

struct ipc_io {
	uint8_t space;
	uint8_t size; /* 1, 2, 4 or 8 */
	uint64_t addr;
	uint64_t data; /* write data (fits in size bytes), or the reply's read data */
	struct ipc_line_note line; /* IO_WRITE and IO_READ_DONE */
};

/* The most bytes one IPC_IO_WRITE_RUN carries. */
#define IPC_IO_RUN_MAX 512
/* flags of IPC_IO_WRITE_RUN on the wire */
#define IPC_RUN_THEN_READ_DONE 0x1u

/* A run's writes, and perhaps the IPC_IO_READ_DONE the core posted right
 * after them, in the same message: a 16550 driver's interrupt handler
 * writes a burst to THR and, on the next interrupt, reads IIR, which the
 * core answers and posts (IPC_REG_READ_ACK) -- one message per burst
 * instead of two.  The device applies it exactly as the two messages:
 * the writes (seq), then the read done (read_done_seq, which is larger). */
struct ipc_io_run {
	uint8_t space;
	uint16_t count; /* 1..IPC_IO_RUN_MAX */
	uint64_t addr;  /* each write is 1 byte here */
	struct ipc_line_note line; /* the core acted before the first write was applied */
	bool then_read_done;
	uint64_t read_done_seq;
	struct ipc_io read_done; /* as IPC_IO_READ_DONE's u.io */
	uint8_t data[IPC_IO_RUN_MAX];
};

struct ipc_irq {
	uint32_t line;
	uint32_t level; /* 0 or 1 */
};

struct ipc_msg {
	uint8_t type; /* enum ipc_msg_type */
	uint64_t seq;
	union {
		struct ipc_hello hello;
		struct ipc_welcome welcome;
		char reason[IPC_MAX_REASON]; /* IPC_REJECT */
		struct ipc_io io;            /* IO_READ, IO_REPLY (data only), IO_WRITE, IO_READ_DONE */
		struct ipc_io_run run;       /* IO_WRITE_RUN */
		struct ipc_irq irq;
	} u;
};

enum ipc_status {
	IPC_OK = 0,
	IPC_ETIMEDOUT = -1, /* nothing arrived in time */
	IPC_EBADMSG = -2,   /* a message arrived and failed validation */
	IPC_ECLOSED = -3,   /* channel closed */
	IPC_EIO = -4,       /* transport error */
	IPC_ENOSPC = -5,    /* encode: buffer too small */
};

/* Encode m into buf; returns the length written or IPC_ENOSPC/IPC_EBADMSG
 * (a message that would not decode is never encoded). */
int ipc_encode(const struct ipc_msg *m, uint8_t *buf, size_t cap);

/* Decode and validate len bytes.  Returns IPC_OK, or IPC_EBADMSG with a
 * one-line reason in err (if err is not NULL). */
int ipc_decode(const uint8_t *buf, size_t len, struct ipc_msg *m, char *err, size_t errlen);

const char *ipc_type_name(unsigned type);

/* Posted messages (IO_WRITE, IO_WRITE_RUN, IO_READ_DONE) may travel
 * several to a frame, back to back, each with its own header (whose length
 * field delimits it): a UART transmitting 16 bytes per interrupt posts a
 * run and an acknowledge per burst, and one channel message each was the
 * most of what the core and the device spent besides the guest (thread
 * wake-ups on both sides; docs/PERFORMANCE.md, "ttyS0: a batch of bursts
 * per message").  The receiver applies them in order, as if each had come
 * alone.  A frame of one message may hold any type. */
static inline bool ipc_is_posted(unsigned type)
{
	return type == IPC_IO_WRITE || type == IPC_IO_WRITE_RUN || type == IPC_IO_READ_DONE;
}

struct ipc_batch {
	unsigned count; /* messages in buf */
	size_t len;
	uint8_t buf[IPC_MAX_FRAME];
};

/* Append m, encoded, to b.  IPC_ENOSPC (b unchanged) when it does not
 * fit; IPC_EBADMSG when m is not a posted message or would not decode. */
int ipc_batch_add(struct ipc_batch *b, const struct ipc_msg *m);

/* Decode the message at *off of a frame of len bytes received as one
 * channel message, and move *off past it (to len on any error: the rest
 * of a malformed frame is not trusted).  A frame holding more than one
 * message holds only posted ones. */
int ipc_decode_next(const uint8_t *frame, size_t len, size_t *off, struct ipc_msg *m, char *err,
		    size_t errlen);

/* ---- the channel: one nng pair0 socket per device ---- */

typedef struct ipc_chan ipc_chan;

/* Called from nng's thread when the peer attaches (up=true) or goes away. */
typedef void (*ipc_peer_cb)(void *opaque, bool up);

/* Core side: listen on url ("ipc:///path" or, on Windows, "ipc://name").
 * While no peer is attached, ipc_recv renews the listener every second
 * (nng 1.5.2's can stop accepting for good; chan.c says when). */
int ipc_listen(const char *url, ipc_peer_cb cb, void *opaque, ipc_chan **out, char *err, size_t errlen);
/* Device side: dial url, retrying until connected or timeout_ms passes
 * (IPC_ETIMEDOUT).  A dialed channel serves one listener: once it goes away,
 * ipc_recv and ipc_send return IPC_ECLOSED (within ~50 ms) for good. */
int ipc_dial(const char *url, int timeout_ms, ipc_chan **out, char *err, size_t errlen);
/* Blocks while the peer is away or its queue is full (backpressure, never
 * drop); up to 256 messages queue inside the channel.  Any thread. */
int ipc_send(ipc_chan *c, const struct ipc_msg *m);
/* The same, but gives up with IPC_ETIMEDOUT once the message has waited
 * about timeout_ms (+ up to 50 ms): for senders that must not hang on a peer
 * that stopped reading. */
int ipc_send_timeout(ipc_chan *c, const struct ipc_msg *m, int timeout_ms);
/* b's messages as one frame, as ipc_send_timeout. */
int ipc_send_batch_timeout(ipc_chan *c, const struct ipc_batch *b, int timeout_ms);
/* timeout_ms < 0 waits forever.  A message that fails validation is consumed
 * and reported as IPC_EBADMSG with the reason in err.  A frame's messages
 * come one per call, in order (ipc_decode_next). */
int ipc_recv(ipc_chan *c, struct ipc_msg *m, int timeout_ms, char *err, size_t errlen);
/* A handle (host.h) that polls readable while a message waits to be
 * received (nng's NNG_OPT_RECVFD), for event loops that also wait on other
 * handles; receive with timeout 0 once it is.  A dialer whose peer went away
 * is not signalled through it: such a loop wakes at least every 50 ms and
 * tries ipc_recv, which reports IPC_ECLOSED.  -1 if nng cannot give one. */
host_pollable ipc_chan_pollable(ipc_chan *c);
/* Not while another thread is still inside ipc_send/ipc_recv on c. */
void ipc_close(ipc_chan *c);

/* ---- the state page: per device, created by the core, outlives restarts ----
 * Layout of the shared-memory object named in IPC_WELCOME.state_name.  The
 * first IPC_STATE_DEV_OFFSET bytes are this header; the rest belongs to the
 * device (its registers and queues, so a restarted device resumes).  The core
 * reads only `magic`, `applied_seq`, `shadow[]`, the doorbell's counts,
 * the receive ring, the published line levels and the applied_seq wait's
 * wake count (atomically), and validates nothing
 * else: a value read from here goes to the guest as a register value, never
 * used as a size or address by the core. */
#define IPC_STATE_MAGIC 0x4d565354u /* "MVST" */
#define IPC_STATE_DEV_OFFSET 512
#define IPC_STATE_SIZE 65536

#define IPC_MAX_DOORBELLS 4

/* IPC_REG_DOORBELL's words.  The core: fetch-or pending, increment rung,
 * wake rung if device_sleeps; with IPC_REG_DOORBELL_WAIT it then waits
 * until taken reaches its ring's count: it spins on taken a while (no
 * word changed: the device wakes nobody), then increments vcpus_waiting,
 * looks at taken again, sleeps on it, and decrements vcpus_waiting.  The device: loads rung, exchanges every
 * pending word with 0 and acts on the bits, stores the rung it loaded in
 * taken and wakes taken if vcpus_waiting; to sleep on rung while rung ==
 * taken it sets device_sleeps, looks at rung again, sleeps, and clears
 * device_sleeps.  (Each side stores, then loads the other's word, all
 * sequentially consistent: a wake-up is never missed, and none is made
 * for a side that is not asleep — a system call saved per ring.)  Counts
 * wrap: compared by their difference.  Everything here is written by both
 * processes: a wrong value only makes a wait end early or at its bound. */
struct ipc_doorbell {
	_Atomic uint32_t rung;
	_Atomic uint32_t taken;
	_Atomic uint32_t pending[IPC_MAX_DOORBELLS];
	_Atomic uint32_t device_sleeps; /* the device's: 1 while its thread sleeps on rung */
	_Atomic uint32_t vcpus_waiting; /* the core's: vCPUs sleeping on taken */
};

/* IPC_REG_RX_RING's bytes: ring indices are free-running, tail - head bytes
 * wait at data[head % IPC_RX_RING_SIZE] on.  The device stores data, then
 * tail (release), and moves head only while the core cannot pop (the read
 * of the receive register it is answering itself, a restart).  The core
 * pops under its lock and stores head (release) before sending anything
 * else.  The core trusts neither index: a ring claiming more than
 * IPC_RX_RING_SIZE bytes is not popped (the read goes to the device). */
#define IPC_RX_RING_SIZE 16
struct ipc_rx_ring {
	_Atomic uint32_t head;
	_Atomic uint32_t tail;
	_Atomic uint8_t data[IPC_RX_RING_SIZE];
};

/* The levels of the lines a HELLO declares IPC_IRQ_PUBLISHED.  The device,
 * under its lock, stores `level` (bit i: line i of its HELLO), then
 * increments `said` — also when the level did not change: the core may
 * have lowered the line meanwhile (IPC_REG_ACK_LOWERS), and saying "high"
 * again must raise it again — then wakes `said` if `core_sleeps`.  The core's
 * thread loads `said`, then `level`, and sets each published line to its
 * bit (every line, every look: the core's own lowerings make its memory of
 * what it set worthless); it repeats while `said` moved, and to sleep sets
 * `core_sleeps`, looks at `said` again, sleeps, clears `core_sleeps`.  The
 * core also increments `said` itself to make its thread look again (the
 * device attached or went away).  All sequentially consistent, as the
 * doorbell's words: no wake-up missed, none made for a thread that runs.
 * Bits of lines not published are ignored: a hostile device moves only its
 * own lines, as fast as IPC_IRQ would let it (the same budget). */
struct ipc_irq_levels {
	_Atomic uint32_t level;
	_Atomic uint32_t said;
	_Atomic uint32_t core_sleeps; /* the core's: 1 while its thread sleeps on said */
};

/* A vCPU whose posted writes are POST_WINDOW ahead of the device
 * (devproxy.c) waits for applied_seq to move: it increments
 * `vcpus_waiting`, loads `wake`, looks at applied_seq again, sleeps on
 * `wake` (at most 1 ms) and decrements `vcpus_waiting`.  The device stores
 * applied_seq, then increments `wake` and wakes it if `vcpus_waiting`.
 * Sequentially consistent, as the doorbell's words: no wake-up missed, no
 * system call while nobody waits.  A wrong value only ends a wait early or
 * at its bound. */
struct ipc_applied_wait {
	_Atomic uint32_t vcpus_waiting; /* the core's */
	_Atomic uint32_t wake;          /* the device's */
};

struct ipc_state_page {
	uint32_t magic;   /* written by the device once its shadows are valid */
	uint32_t version; /* IPC_PROTO_VERSION */
	_Atomic uint64_t applied_seq;            /* seq of the last IO_WRITE applied */
	_Atomic uint64_t shadow[IPC_MAX_REGS];   /* current values of shadowed registers */
	struct ipc_doorbell doorbell;
	struct ipc_rx_ring rx;
	struct ipc_irq_levels irq;
	struct ipc_applied_wait applied;
};

_Static_assert(sizeof(struct ipc_state_page) <= IPC_STATE_DEV_OFFSET, "state header too big");

#endif
