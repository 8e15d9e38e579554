/* virtio_mmio.h - the virtio-mmio transport (virtio 1.2, section 4.2,
 * register layout version 2, modern devices only) as a pure library: no
 * sockets, threads or processes.  A device process (virtio-console in
 * dev-serial, virtio-net in dev-net) embeds it and forwards the guest's
 * accesses to its MMIO window here; the split virtqueues are in virtqueue.h.
 *
 * Two halves:
 *  - struct virtio_mmio_state: everything the transport knows, a plain struct
 *    with no pointers.  It lives in the device's state page, so a device
 *    process restarted under a running guest resumes it
 *    (virtio_mmio_restart) instead of resetting the guest's driver.
 *  - struct virtio_dev: the process-local description of the device and its
 *    callbacks, rebuilt by each incarnation.
 *
 * Shadows: MagicValue, Version, DeviceID, VendorID, InterruptStatus, Status
 * and ConfigGeneration have reads without side effects, so the device
 * declares them IPC_REG_SHADOW (virtio_mmio_hello_regs) and the core answers
 * them from the state page.  The library calls dev->publish_shadow whenever
 * one of their values changes, always before the line's level that makes
 * the guest read it (the level's store releases it).  With QueueNotify declared a stream register (or a
 * doorbell: virtio_mmio_hello_doorbell) and InterruptACK a posted write, an
 * interrupt costs the guest no synchronous round trip: read InterruptStatus
 * (shadow), write InterruptACK (posted), read the used ring (shared
 * memory).
 *
 * Everything the guest writes is hostile: a value the library cannot accept
 * is ignored or makes the device "need reset" (status bit 0x40, a config
 * interrupt, one log line); it then processes nothing until the driver
 * resets it. */
#ifndef MINIVM_VIRTIO_MMIO_H
#define MINIVM_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#include "guest_mem.h"
#include "ipc.h"

/* ---- registers (offsets into the device's MMIO window) ---- */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_SHM_SEL 0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW 0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH 0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW 0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH 0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100
#define VIRTIO_MMIO_WINDOW_SIZE 0x200 /* what a device claims; config space is 0x100 bytes */

#define VIRTIO_MMIO_MAGIC 0x74726976u     /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x494e494du    /* "MINI" */

/* Status bits (virtio 1.2, 2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01u
#define VIRTIO_STATUS_DRIVER 0x02u
#define VIRTIO_STATUS_DRIVER_OK 0x04u
#define VIRTIO_STATUS_FEATURES_OK 0x08u
#define VIRTIO_STATUS_NEEDS_RESET 0x40u
#define VIRTIO_STATUS_FAILED 0x80u

/* InterruptStatus bits */
#define VIRTIO_MMIO_INT_VRING 0x1u  /* used buffer notification */
#define VIRTIO_MMIO_INT_CONFIG 0x2u /* configuration change notification */

/* Feature bits the transport and the ring library implement (always offered) */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_TRANSPORT_FEATURES                                               \
	((1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_F_EVENT_IDX) |      \
	 (1ull << VIRTIO_F_VERSION_1))

#define VIRTIO_MMIO_MAX_QUEUES 8
#define VIRTQ_MAX_SIZE 32768 /* the split ring's limit (virtio 1.2, 2.7) */

/* ---- the state (in the device's state page; no pointers) ---- */
#define VIRTIO_MMIO_STATE_MAGIC 0x4f495456u /* "VTIO" */

struct virtq_state {
	uint32_t num;   /* QueueNum: 0 until the driver sets a power of two <= max */
	uint32_t ready; /* QueueReady: 0 or 1; the fields below are frozen while 1 */
	uint64_t desc, avail, used; /* guest-physical: descriptor table, driver area, device area */
	uint16_t last_avail_idx; /* free-running: the next avail ring entry to pop */
	uint16_t used_idx;       /* free-running: our copy of used->idx */
	uint16_t signalled_used; /* used_idx when the last interrupt was decided (EVENT_IDX) */
	uint8_t signalled_used_valid; /* 0: the next signal_used interrupts unconditionally */
	uint8_t notify_off;      /* 1: the device asked the driver not to notify */
};

struct virtio_mmio_state {
	uint32_t magic; /* VIRTIO_MMIO_STATE_MAGIC */
	uint32_t size;  /* sizeof(struct virtio_mmio_state) */
	uint32_t status;
	uint32_t device_features_sel, driver_features_sel, queue_sel; /* any value the driver wrote */
	uint64_t driver_features;
	uint32_t interrupt_status;   /* VIRTIO_MMIO_INT_* */
	uint32_t interrupt_resignal; /* bits signalled again while already pending: see virtio_mmio.c */
	uint32_t config_generation;
	uint32_t reserved; /* zero */
	struct virtq_state queue[VIRTIO_MMIO_MAX_QUEUES];
};

/* ---- the device (process-local) ---- */

/* Registers the core answers from the state page's shadows; the device maps
 * them to slots first_slot + which (virtio_mmio_hello_regs). */
enum virtio_mmio_shadow {
	VIRTIO_SHADOW_MAGIC,
	VIRTIO_SHADOW_VERSION,
	VIRTIO_SHADOW_DEVICE_ID,
	VIRTIO_SHADOW_VENDOR_ID,
	VIRTIO_SHADOW_INTERRUPT_STATUS,
	VIRTIO_SHADOW_STATUS,
	VIRTIO_SHADOW_CONFIG_GENERATION,
	VIRTIO_SHADOW_COUNT
};

struct virtio_dev {
	uint32_t device_id;       /* virtio device type: 3 console, 1 network */
	uint64_t device_features; /* device-specific bits; VIRTIO_TRANSPORT_FEATURES are added */
	unsigned num_queues;      /* 1 .. VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max[VIRTIO_MMIO_MAX_QUEUES]; /* QueueNumMax: powers of two <= VIRTQ_MAX_SIZE */
	uint32_t config_size;     /* bytes of config space, <= 0x100 */
	const struct guest_mem *mem;
	struct virtio_mmio_state *state; /* in the state page */

	void *opaque; /* passed to every callback */
	/* Config space: offset + size <= config_size, size 1, 2, 4 or 8. */
	uint64_t (*config_read)(void *opaque, uint32_t offset, unsigned size);
	void (*config_write)(void *opaque, uint32_t offset, unsigned size, uint64_t value);
	/* The driver notified queue q (ready, DRIVER_OK, not needing reset). */
	void (*queue_notify)(void *opaque, unsigned q);
	/* The driver reset the device (status 0); the transport state is fresh. */
	void (*reset)(void *opaque);
	/* Optional: the driver set DRIVER_OK (e.g. for a first config interrupt). */
	void (*driver_ok)(void *opaque);
	/* Set the interrupt line's level (devlib publishes it in the state page, or
	 * sends IPC_IRQ where the host cannot wake across processes). */
	void (*irq)(void *opaque, int level);
	/* Store a shadowed register's new value in the state page. */
	void (*publish_shadow)(void *opaque, enum virtio_mmio_shadow which, uint32_t value);

	/* For the device's MINIVM_STATS line: acknowledges that found their
	 * bits signalled again while pending, and raised the line again
	 * (interrupt_ack): interrupts that came only with the acknowledge's
	 * arrival — one the guest waited for, if the core had lowered the
	 * line on that acknowledge first, else a spurious one. */
	uint64_t acks_resignalled;
};

/* The registers a virtio-mmio device at MMIO address base (0 for a slot
 * range: offsets) declares in its HELLO: the shadows at slots first_slot +
 * enum virtio_mmio_shadow, QueueNotify as a stream register (a notify
 * changes no shadow synchronously: used buffers and their interrupt come
 * later anyway), and InterruptACK as IPC_REG_ACK_LOWERS over the
 * InterruptStatus shadow.  Fills VIRTIO_MMIO_HELLO_REGS entries of regs and
 * returns that count. */
#define VIRTIO_MMIO_HELLO_REGS (VIRTIO_SHADOW_COUNT + 2)
unsigned virtio_mmio_hello_regs(uint64_t base, unsigned first_slot, struct ipc_reg *regs);

/* Where the host has shared-memory waits (host.h), make QueueNotify in regs
 * (as filled by virtio_mmio_hello_regs) doorbell `doorbell` of the device's
 * state page instead of a message (ipc.h, IPC_REG_DOORBELL); vcpu_waits
 * adds IPC_REG_DOORBELL_WAIT, for a driver that spins until its buffer is
 * used.  The device passes the doorbell's bits to virtio_mmio_doorbell. */
void virtio_mmio_hello_doorbell(struct ipc_reg *regs, unsigned doorbell, bool vcpu_waits);

/* The queues whose bits are set in `bits` were notified through the
 * doorbell.  A ring may overtake the writes that made a queue live; the
 * transport looks at every queue when it becomes live, so such a ring is
 * not lost. */
void virtio_mmio_doorbell(struct virtio_dev *dev, uint32_t bits);

/* A fresh device (first attach or a state that failed validation):
 * initialises dev->state, publishes every shadow, lowers the line. */
void virtio_mmio_init(struct virtio_dev *dev);

/* A restarted process attaching to a previous incarnation's state: if it is
 * valid (virtio_mmio_state_valid), reconciles each ready queue with its used
 * ring, republishes the shadows, sets the line to match InterruptStatus,
 * kicks every ready queue (work posted while no process was there) and
 * returns true.  Otherwise starts fresh with DEVICE_NEEDS_RESET set, logs
 * one line and returns false: the driver's next reset recovers.
 * In-flight buffers (popped, not pushed, by the dead process) go back to
 * the driver empty: virtio_mmio.c explains why they are not replayed. */
bool virtio_mmio_restart(struct virtio_dev *dev);

/* Every field of a resumed (possibly torn or garbage) state is consistent
 * with dev: the state can be trusted. */
bool virtio_mmio_state_valid(const struct virtio_dev *dev, const struct virtio_mmio_state *s);

/* A guest access at offset (< VIRTIO_MMIO_WINDOW_SIZE) of size 1, 2, 4 or 8.
 * Registers below the config space take 32-bit accesses only; anything else
 * reads 0 / is ignored. */
uint64_t virtio_mmio_read(struct virtio_dev *dev, uint64_t offset, unsigned size);
void virtio_mmio_write(struct virtio_dev *dev, uint64_t offset, unsigned size, uint64_t value);

/* The device's configuration changed: bump ConfigGeneration and, once the
 * driver is running, send a configuration change notification. */
void virtio_mmio_config_changed(struct virtio_dev *dev);

/* Something is wrong with what the driver gave us (reason: one line, for
 * the log): set DEVICE_NEEDS_RESET, notify the driver, stop processing. */
void virtio_mmio_needs_reset(struct virtio_dev *dev, const char *reason);

/* The driver has negotiated feature bit `bit`. */
bool virtio_has_feature(const struct virtio_dev *dev, unsigned bit);

/* The device may process queue q: DRIVER_OK, not needing reset, q ready. */
bool virtio_queue_live(const struct virtio_dev *dev, unsigned q);

/* Raise InterruptStatus bits (VIRTIO_MMIO_INT_*); virtqueue.h's
 * virtq_signal_used decides when a used buffer notification is due. */
void virtio_mmio_interrupt(struct virtio_dev *dev, uint32_t bits);

#endif
