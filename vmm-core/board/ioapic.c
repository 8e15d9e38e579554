/* ioapic.c - the board's I/O APIC (ioapic.h). */
#include "ioapic.h"

#include <string.h>

#include "log.h"

#define IOAPIC_VERSION 0x11u /* no directed-EOI register: EOIs arrive by broadcast */
#define REG_IOREGSEL 0x00
#define REG_IOWIN 0x10

/* Indirect registers behind IOWIN. */
#define IND_ID 0x00
#define IND_VERSION 0x01
#define IND_ARBITRATION 0x02
#define IND_REDTBL 0x10 /* two 32-bit halves per pin */

/* Bits of an entry the guest may write; remote IRR and delivery status are
 * the IOAPIC's own. */
#define RTE_WRITABLE (~(IOAPIC_RTE_REMOTE_IRR | (1ull << 12)))

static uint64_t ioapic_bus_read(void *opaque, enum ipc_space space, uint64_t addr, unsigned size)
{
	struct ioapic *io = opaque;
	return ioapic_mmio_read(io, addr - io->range.base, size);
}

static void ioapic_bus_write(void *opaque, enum ipc_space space, uint64_t addr, unsigned size, uint64_t value)
{
	struct ioapic *io = opaque;
	ioapic_mmio_write(io, addr - io->range.base, size, value);
}

/* Entry e as an interrupt message; false for a reserved delivery mode. */
static bool rte_message(unsigned pin, uint64_t e, uint64_t *address, uint32_t *data)
{
	unsigned delmode = (unsigned)(e >> IOAPIC_RTE_DELMODE_SHIFT) & 7;
	/* 3 and 6 (Startup) are reserved in a redirection entry: passed on as
	 * a message they would let an interrupt line start a parked vCPU. */
	if (delmode == 3 || delmode == 6) {
		log_once("IOAPIC pin %u: reserved delivery mode %u, interrupt dropped", pin, delmode);
		return false;
	}
	uint8_t dest = (uint8_t)(e >> IOAPIC_RTE_DEST_SHIFT);
	bool level = e & IOAPIC_RTE_LEVEL;
	*address = 0xfee00000u | (uint64_t)dest << 12 | ((e & IOAPIC_RTE_DESTMODE) ? 1u << 2 : 0);
	*data = (uint32_t)(e & IOAPIC_RTE_VECTOR) | delmode << 8 | 1u << 14 /* assert */ |
		(level ? 1u << 15 : 0);
	return true;
}

/* Send pin's message if the entry lets it fire now; a level-triggered
 * delivery sets remote IRR until the EOI. */
static void fire_locked(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin], address;
	uint32_t data;
	if ((e & IOAPIC_RTE_MASKED) || (e & IOAPIC_RTE_REMOTE_IRR) ||
	    !rte_message(pin, e, &address, &data))
		return;
	if (e & IOAPIC_RTE_LEVEL)
		io->rte[pin] |= IOAPIC_RTE_REMOTE_IRR;
	io->sink.deliver(io->sink.opaque, address, data);
}

/* Tell the sink what pin sends now (entry written or reset). */
static void route_locked(struct ioapic *io, unsigned pin)
{
	if (!io->sink.route)
		return;
	uint64_t e = io->rte[pin], address = 0;
	uint32_t data = 0;
	bool masked = (e & IOAPIC_RTE_MASKED) || !rte_message(pin, e, &address, &data);
	io->sink.route(io->sink.opaque, pin, masked, address, data);
}

void ioapic_init(struct ioapic *io, uint64_t base, uint8_t id, const struct ioapic_sink *sink)
{
	memset(io, 0, sizeof(*io));
	io->dev = (struct bus_device){.opaque = io, .read = ioapic_bus_read, .write = ioapic_bus_write};
	io->range = (struct ipc_range){.space = IPC_SPACE_MMIO, .base = base, .size = IOAPIC_MMIO_SIZE};
	pthread_mutex_init(&io->lock, NULL);
	io->sink = *sink;
	io->id = (uint32_t)(id & 0xf) << 24;
	ioapic_reset(io);
}

void ioapic_reset(struct ioapic *io)
{
	pthread_mutex_lock(&io->lock);
	io->regsel = 0;
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		io->rte[pin] = IOAPIC_RTE_MASKED;
		route_locked(io, pin);
	}
	pthread_mutex_unlock(&io->lock);
}

static uint32_t read_indirect_locked(struct ioapic *io, uint32_t reg)
{
	switch (reg) {
	case IND_ID:
	case IND_ARBITRATION:
		return io->id;
	case IND_VERSION:
		return IOAPIC_VERSION | (IOAPIC_PINS - 1) << 16;
	default:
		if (reg >= IND_REDTBL && reg < IND_REDTBL + 2 * IOAPIC_PINS) {
			uint64_t e = io->rte[(reg - IND_REDTBL) / 2];
			return (uint32_t)(reg & 1 ? e >> 32 : e);
		}
		return 0;
	}
}

static void write_indirect_locked(struct ioapic *io, uint32_t reg, uint32_t value)
{
	if (reg == IND_ID) {
		io->id = value & 0x0f000000u;
		return;
	}
	if (reg < IND_REDTBL || reg >= IND_REDTBL + 2 * IOAPIC_PINS)
		return; /* version and arbitration are read-only */
	unsigned pin = (reg - IND_REDTBL) / 2;
	uint64_t old = io->rte[pin], e = old;
	uint64_t half = reg & 1 ? (uint64_t)value << 32 : value;
	uint64_t keep = reg & 1 ? 0xffffffffull : 0xffffffff00000000ull;
	uint64_t written = (e & keep) | half;
	e = (e & ~RTE_WRITABLE) | (written & RTE_WRITABLE);
	if (!(e & IOAPIC_RTE_LEVEL))
		e &= ~IOAPIC_RTE_REMOTE_IRR; /* remote IRR means nothing for edge entries */
	io->rte[pin] = e;
	if (e != old)
		route_locked(io, pin);
	/* A level interrupt that was masked while asserted fires on unmask. */
	if ((e & IOAPIC_RTE_LEVEL) && (io->asserted & (1u << pin)))
		fire_locked(io, pin);
}

uint64_t ioapic_mmio_read(struct ioapic *io, uint64_t offset, unsigned size)
{
	if (size != 4 || (offset != REG_IOREGSEL && offset != REG_IOWIN)) {
		log_once("ioapic: %u-byte read at offset %#llx (only 32-bit IOREGSEL/IOWIN exist): reads 0",
			 size, (unsigned long long)offset);
		return 0;
	}
	pthread_mutex_lock(&io->lock);
	uint32_t v = offset == REG_IOREGSEL ? io->regsel : read_indirect_locked(io, io->regsel);
	pthread_mutex_unlock(&io->lock);
	return v;
}

void ioapic_mmio_write(struct ioapic *io, uint64_t offset, unsigned size, uint64_t value)
{
	if (size != 4 || (offset != REG_IOREGSEL && offset != REG_IOWIN)) {
		log_once("ioapic: %u-byte write at offset %#llx (only 32-bit IOREGSEL/IOWIN exist): ignored",
			 size, (unsigned long long)offset);
		return;
	}
	pthread_mutex_lock(&io->lock);
	if (offset == REG_IOREGSEL)
		io->regsel = (uint32_t)value & 0xff;
	else
		write_indirect_locked(io, io->regsel, (uint32_t)value);
	pthread_mutex_unlock(&io->lock);
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, int level)
{
	if (pin >= IOAPIC_PINS) {
		log_once("ioapic: interrupt line %u does not exist (pins 0..%d): ignored", pin,
			 IOAPIC_PINS - 1);
		return;
	}
	uint32_t bit = 1u << pin;
	pthread_mutex_lock(&io->lock);
	bool was = io->asserted & bit;
	if (level)
		io->asserted |= bit;
	else
		io->asserted &= ~bit;
	/* Edge: fire on the rising edge.  Level: fire while asserted; remote
	 * IRR keeps a repeated assert from firing twice before the EOI. */
	if (level && (!was || (io->rte[pin] & IOAPIC_RTE_LEVEL)))
		fire_locked(io, pin);
	pthread_mutex_unlock(&io->lock);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	pthread_mutex_lock(&io->lock);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->rte[pin];
		if (!(e & IOAPIC_RTE_REMOTE_IRR) || (e & IOAPIC_RTE_VECTOR) != vector)
			continue;
		io->rte[pin] = e & ~IOAPIC_RTE_REMOTE_IRR;
		if (io->asserted & (1u << pin)) /* still asserted: the device wants more service */
			fire_locked(io, pin);
	}
	pthread_mutex_unlock(&io->lock);
}
