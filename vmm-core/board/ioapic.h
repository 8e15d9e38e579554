/* ioapic.h - the board's I/O APIC (82093AA-style, version 0x11), shared by
 * every engine: 24 input pins, a redirection table, edge and level triggers
 * with remote IRR.  It lives in vmm-core, not in an engine, because WHP and
 * KVM's split irqchip both keep the IOAPIC in userspace.
 *
 * A pin that fires becomes an interrupt message in MSI format (address
 * 0xFEExxxxx, data) handed to a sink, normally the engine's LAPICs.  A
 * level-triggered pin then waits for the LAPIC's EOI broadcast (ioapic_eoi)
 * before it can fire again.
 *
 * Thread-safe: pins change on device-proxy threads, registers and EOIs come
 * from vCPU threads.  The sink is called with the IOAPIC's lock held, so it
 * must not call back into the IOAPIC. */
#ifndef MINIVM_IOAPIC_H
#define MINIVM_IOAPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"

#define IOAPIC_PINS 24
#define IOAPIC_MMIO_SIZE 0x1000

/* Redirection-table entry bits. */
#define IOAPIC_RTE_VECTOR 0xffull
#define IOAPIC_RTE_DELMODE_SHIFT 8
#define IOAPIC_RTE_DESTMODE (1ull << 11) /* logical destination */
#define IOAPIC_RTE_POLARITY (1ull << 13) /* active low */
#define IOAPIC_RTE_REMOTE_IRR (1ull << 14)
#define IOAPIC_RTE_LEVEL (1ull << 15)
#define IOAPIC_RTE_MASKED (1ull << 16)
#define IOAPIC_RTE_DEST_SHIFT 56

struct ioapic_sink {
	void *opaque;
	void (*deliver)(void *opaque, uint64_t msi_address, uint32_t msi_data);
	/* Optional (NULL): pin's entry changed; from now on it sends
	 * (msi_address, msi_data), or nothing while `masked`.  For LAPICs that
	 * broadcast EOIs only for vectors known to come from the IOAPIC (KVM's
	 * split irqchip). */
	void (*route)(void *opaque, unsigned pin, bool masked, uint64_t msi_address,
		      uint32_t msi_data);
};

struct ioapic {
	struct bus_device dev;  /* the MMIO page at `range`, for bus_attach */
	struct ipc_range range;
	pthread_mutex_t lock;
	uint32_t id;       /* IOAPIC id register, bits 27:24 */
	uint32_t regsel;   /* IOREGSEL */
	uint64_t rte[IOAPIC_PINS];
	uint32_t asserted; /* one bit per pin: the input line's level */
	struct ioapic_sink sink;
};

/* Power-on state: every entry masked; registers at guest physical base. */
void ioapic_init(struct ioapic *io, uint64_t base, uint8_t id, const struct ioapic_sink *sink);
void ioapic_reset(struct ioapic *io);

/* A guest access at offset (0..IOAPIC_MMIO_SIZE) into the IOAPIC's page. */
uint64_t ioapic_mmio_read(struct ioapic *io, uint64_t offset, unsigned size);
void ioapic_mmio_write(struct ioapic *io, uint64_t offset, unsigned size, uint64_t value);

/* Set input pin's level (1 asserted).  Levels are logical: devices say
 * "asserted", so the entry's polarity bit does not invert them.  Pins out of
 * range are ignored (logged once). */
void ioapic_set_irq(struct ioapic *io, unsigned pin, int level);

/* A LAPIC's EOI broadcast for a level-triggered vector. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

#endif
