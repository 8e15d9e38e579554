/* devproxy_policy.h - the decisions a device proxy makes about what a device
 * declares and how each access is served, as pure functions (no sockets, no
 * threads) so that unit tests can drive them with hostile input. */
#ifndef MINIVM_DEVPROXY_POLICY_H
#define MINIVM_DEVPROXY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

#include <pthread.h>

#define BOARD_IRQ_LINES 24 /* GSIs 0..23: the IOAPIC pins of the board */

/* The board's virtio-mmio slots, handed to devices that ask (a virtio-mmio
 * range with base 0 and a line of gsi ANY): slot n is 0x200 bytes at
 * BOARD_VIRTIO_MMIO_BASE + n * 0x200 with GSI BOARD_VIRTIO_MMIO_GSI + n,
 * level-triggered.  Below 4 GiB (the DSDT's Memory32Fixed), above the
 * largest RAM (3 GiB) and apart from the IOAPIC and LAPIC pages; GSIs
 * 16..23, the IOAPIC's pins above the ISA IRQs (COM1's 4 among them), as
 * QEMU's microvm does. */
#define BOARD_VIRTIO_MMIO_BASE 0xd0001000u
#define BOARD_VIRTIO_MMIO_SLOTS 8
#define BOARD_VIRTIO_MMIO_GSI 16

/* Who holds each slot: a device name and its range index, so that a device
 * asking again (a restart, the same name) gets the same slot back.  Shared
 * by every proxy of the VM. */
struct slot_table {
	pthread_mutex_t lock;
	struct {
		char owner[IPC_MAX_NAME]; /* "" if free */
		unsigned range;
	} slot[BOARD_VIRTIO_MMIO_SLOTS];
};

/* Place h's ranges and lines: copy h to *placed with every slot-asking
 * range's base and its line's GSI filled in from t, and the registers
 * declared inside such a range (at offsets from 0) moved to its base (the slot name/range
 * held before, else the first free one).  Returns 0, or -1 with a reason in
 * why (no slot left). */
int policy_place(struct slot_table *t, const char *name, const struct ipc_hello *h,
		 struct ipc_hello *placed, char *why, size_t n);

/* A HELLO's declarations make sense on their own: protocol version, interrupt
 * lines in 0..23 (or ANY, for a slot), registers of a valid size and flags lying wholly inside one
 * of the device's own ranges of the same space, no register declared twice,
 * shadow slots in range.  Range placement (RAM, other devices, each other) is
 * the bus's business (bus_attach).  Returns 0, or -1 with a reason in why. */
int policy_check_hello(const struct ipc_hello *h, char *why, size_t n);

/* A restarted device must declare exactly what its first incarnation did:
 * the bus and the state page were built from the first HELLO. */
bool policy_same_device(const struct ipc_hello *a, const struct ipc_hello *b);

/* The declared register an access of size bytes at addr hits, or NULL.  A
 * register serves accesses at its address no wider than itself. */
const struct ipc_reg *policy_find_reg(const struct ipc_hello *h, enum ipc_space space,
				      uint64_t addr, unsigned size);

/* Does the core answer a read at addr itself, with no word from the device?
 * A debug port (IPC_RANGE_DEBUGCON) reads as IPC_DEBUGCON_READBACK. */
bool policy_local_read(const struct ipc_hello *h, enum ipc_space space, uint64_t addr,
		       unsigned size, uint64_t *value);

/* Can a read of reg be answered from the state page?  Only for a shadowed
 * register, once the device has published valid shadows (magic) and applied
 * every write sent before that may change its slot (applied_seq >=
 * ordered_mark, the caller's mark for that slot).  On true,
 * *value is shadow[slot] masked to the access size; for a register that
 * describes the receive ring (IPC_REG_RX_RING), the word's value for the
 * ring's state, and false if the ring's indices are not sane. */
bool policy_shadow_read(const struct ipc_reg *reg, const struct ipc_state_page *state,
			uint64_t ordered_mark, unsigned size, uint64_t *value);

/* A write of value (size bytes) to reg, a placed HELLO h's register: the GSI
 * to lower at once (IPC_REG_ACK_LOWERS, with every bit pending in
 * shadow[slot] cleared by value and the shadows valid), else -1. */
int policy_ack_lowers(const struct ipc_hello *h, const struct ipc_reg *reg,
		      const struct ipc_state_page *state, unsigned size, uint64_t value);

/* What the core knows of an IPC_REG_READ_ACK register's event beyond the
 * device's publications: the event as the last message that changed it
 * left it (a stream write raised it, an IO_READ_DONE acknowledged it) and
 * that message's seq.  Once the device has applied that seq, its own word
 * says the truth (seq 0: from the start). */
struct read_ack_track {
	bool pending;
	bool unknown; /* a stream write posted when the word could not say whether it raises */
	uint64_t seq;
	/* The last write that only enabled or disabled the event
	 * (policy_enable_written): until the device has applied enable_seq,
	 * `enabled` says which. */
	bool enabled;
	uint64_t enable_seq;
	uint64_t enable_value; /* the value it wrote */
};

struct read_ack_answer {
	uint64_t value;    /* what the read returns */
	bool acknowledges; /* it reports the event: post IPC_IO_READ_DONE */
	bool idle;         /* after this read nothing holds the line up */
	int lower_gsi;     /* the line to lower at once (acknowledges and idle), or -1 */
	/* The read acknowledges nothing and says nothing holds the line up
	 * (a 16550's IIR reading "no interrupt"): the line, which must be
	 * low from now on; the caller lowers it if it is up.  Else -1. */
	int idle_gsi;
};

/* Can a read of reg (IPC_REG_READ_ACK) be answered by the core?  Under the
 * same conditions as policy_shadow_read; then *a says what it returns and
 * whether it acknowledges the event (ipc.h).  With IPC_REG_RX_RING, data in
 * the receive ring, if the word says it is an interrupt, is reported
 * instead and acknowledges nothing (false if the ring's indices are not
 * sane).  The caller, on a->acknowledges, records the event as not pending
 * from its READ_DONE on. */
bool policy_read_ack(const struct ipc_hello *h, const struct ipc_reg *reg,
		     const struct ipc_state_page *state, uint64_t ordered_mark,
		     const struct read_ack_track *t, struct read_ack_answer *a);

/* The register that pops the receive ring (IPC_REG_RX_RING, neither a
 * shadow nor a read-acknowledge), or NULL. */
const struct ipc_reg *policy_rx_pop_reg(const struct ipc_hello *h);

struct rx_pop_answer {
	uint64_t value; /* what the read returns */
	bool popped;    /* it took a byte: store head */
	bool emptied;   /* and the ring is empty now: post IPC_IO_READ_DONE */
	uint32_t head;  /* the ring's head after the read */
};

/* Can a read of reg (the ring's receive register) be answered by the core?
 * Under the conditions of policy_shadow_read, with the word saying the ring
 * is live and its indices sane; then *a says what the read returns.  The
 * caller stores a->head in the ring before it sends anything else. */
bool policy_rx_pop(const struct ipc_reg *reg, const struct ipc_state_page *state,
		   uint64_t ordered_mark, struct rx_pop_answer *a);

/* A pop has just emptied the ring: the line to lower at once if the
 * ring's read-acknowledge register (read_ack, the IIR) answered now would
 * say nothing holds it up, else -1. */
int policy_rx_emptied_lowers(const struct ipc_hello *h, const struct ipc_reg *read_ack,
			     const struct ipc_state_page *state, uint64_t ordered_mark,
			     const struct read_ack_track *t);

/* A write to `written`, posted with seq, and the read-acknowledge register
 * read_ack: a stream register of the same range raises its event if the
 * word says stream writes do (IPC_READ_ACK_STREAM_RAISES) and can be
 * trusted (as for policy_read_ack); if it cannot, the event is unknown
 * until the device has applied seq.  Updates *t.  Returns the GSI of the
 * range's line if the core raises it now (the write made the event
 * pending, and the word says IPC_READ_ACK_LINE_UP), else -1. */
int policy_stream_written(const struct ipc_hello *h, const struct ipc_reg *written,
			  const struct ipc_reg *read_ack, const struct ipc_state_page *state,
			  uint64_t ordered_mark, uint64_t seq, struct read_ack_track *t);

/* A write of value to reg, posted with seq, that changes only the enable
 * bits of read_ack's event (IPC_READ_ACK_ENABLE_*: reg is the register the
 * word names, in the same range, and its value and the word are known:
 * applied_seq has reached read_ack_mark and reg_mark, the slots' marks, or
 * the write marking reg was the core's last enable write):
 * *t records the event enabled or disabled (and pending, if enabling
 * raises it) until the device has applied seq, and the write changes reg's
 * own slot only.  Returns false if the write is not such a write; else
 * *gsi is the line the core sets to *level now, or -1: raised when enabling
 * made the event pending and it holds the line up, lowered when disabling
 * leaves nothing holding it up (IPC_READ_ACK_IDLE, no receive-ring data
 * that is an interrupt). */
bool policy_enable_written(const struct ipc_hello *h, const struct ipc_reg *reg,
			  const struct ipc_reg *read_ack, const struct ipc_state_page *state,
			  uint64_t reg_mark, uint64_t read_ack_mark, uint64_t value, uint64_t seq,
			  struct read_ack_track *t, int *gsi, int *level);

/* The shadow slots a write to reg (NULL: an undeclared register) may
 * change, one bit per slot: reads of those wait until the device has
 * applied it.  None for a stream register, the declared ones with
 * IPC_REG_CHANGES_ONLY, else all. */
#define POLICY_ALL_SLOTS ((uint32_t)((1ull << IPC_MAX_REGS) - 1))
uint32_t policy_write_changes(const struct ipc_reg *reg);

/* How fast a device may send IPC_IRQ: DEVPROXY_IRQ_RATE messages a second,
 * with bursts of DEVPROXY_IRQ_BURST (a virtio device raises its line once
 * per batch of buffers, the UART once per FIFO's worth).  Beyond it the
 * proxy's receive thread waits before taking the next message, so a flooding
 * device is slowed down by its own send queue backing up; nothing is
 * dropped, and no other device, vCPU or the guest's interrupt handling pays
 * for it.  A generic cell rate algorithm: tat is when the next message
 * would be on time. */
#define DEVPROXY_IRQ_RATE 100000
#define DEVPROXY_IRQ_BURST 1000
struct irq_budget {
	uint64_t tat; /* host_now_ns clock; 0 before the first message */
};
/* One IRQ message at now_ns: 0 if within the budget, else how many ns the
 * caller waits before handling it. */
uint64_t policy_irq_wait(struct irq_budget *b, uint64_t now_ns);

#endif
