/* bus.c - the board's address decoder (bus.h). */
#include "bus.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "stats.h"

#define PIO_SPACE_END 0x10000ull

void bus_init(struct bus *b, uint64_t ram_size)
{
	memset(b, 0, sizeof(*b));
	b->ram_size = ram_size;
	pthread_mutex_init(&b->lock, NULL);
}

uint64_t bus_ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static const char *space_name(enum ipc_space space)
{
	return space == IPC_SPACE_PIO ? "port" : "mmio";
}

/* [base, base+size) and [obase, obase+osize) share an address; sizes > 0 and
 * neither range wraps (ipc_decode guarantees it for ranges from devices). */
static int overlaps(uint64_t base, uint64_t size, uint64_t obase, uint64_t osize)
{
	return base < obase + osize && obase < base + size;
}

static int range_refused(const struct bus *b, const struct ipc_range *r, unsigned nexisting,
			 char *err, size_t errlen)
{
	if (r->size == 0 || r->base + r->size < r->base) {
		snprintf(err, errlen, "empty or wrapping %s range at %#llx", space_name(r->space),
			 (unsigned long long)r->base);
		return 1;
	}
	if (r->space == IPC_SPACE_PIO && r->base + r->size > PIO_SPACE_END) {
		snprintf(err, errlen, "port range %#llx+%#llx goes past 0xffff",
			 (unsigned long long)r->base, (unsigned long long)r->size);
		return 1;
	}
	if (r->space == IPC_SPACE_MMIO && (overlaps(r->base, r->size, b->ram_start, b->ram_size - b->ram_start) ||
					   (b->high_ram_size && overlaps(r->base, r->size, b->high_ram_base,
									 b->high_ram_size)))) {
		snprintf(err, errlen, "mmio range %#llx+%#llx overlaps guest RAM",
			 (unsigned long long)r->base, (unsigned long long)r->size);
		return 1;
	}
	for (unsigned i = 0; i < nexisting; i++) {
		const struct bus_range *o = &b->ranges[i];
		if (o->space == (enum ipc_space)r->space && overlaps(r->base, r->size, o->base, o->size)) {
			snprintf(err, errlen, "%s range %#llx+%#llx overlaps %#llx+%#llx",
				 space_name(r->space), (unsigned long long)r->base,
				 (unsigned long long)r->size, (unsigned long long)o->base,
				 (unsigned long long)o->size);
			return 1;
		}
	}
	return 0;
}

int bus_attach(struct bus *b, const struct bus_device *dev, const struct ipc_range *ranges,
	       unsigned n, char *err, size_t errlen)
{
	pthread_mutex_lock(&b->lock);
	unsigned have = atomic_load_explicit(&b->nranges, memory_order_relaxed);
	int rc = 0;
	if (n > BUS_MAX_RANGES - have) {
		snprintf(err, errlen, "too many address ranges on the bus (max %d)", BUS_MAX_RANGES);
		rc = -1;
	}
	for (unsigned i = 0; i < n && rc == 0; i++) {
		if (ranges[i].space != IPC_SPACE_PIO && ranges[i].space != IPC_SPACE_MMIO) {
			snprintf(err, errlen, "range %u has unknown space %u", i, ranges[i].space);
			rc = -1;
		} else if (range_refused(b, &ranges[i], have + i, err, errlen)) {
			/* checked against the bus and this call's ranges so far */
			rc = -1;
		} else {
			b->ranges[have + i] = (struct bus_range){.space = ranges[i].space,
								 .base = ranges[i].base,
								 .size = ranges[i].size,
								 .dev = dev};
		}
	}
	if (rc == 0)
		atomic_store_explicit(&b->nranges, have + n, memory_order_release);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static const struct bus_range *find(struct bus *b, enum ipc_space space, uint64_t addr,
				    unsigned size)
{
	unsigned n = atomic_load_explicit(&b->nranges, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		const struct bus_range *r = &b->ranges[i];
		if (r->space == space && addr >= r->base && addr - r->base < r->size &&
		    size <= r->size - (addr - r->base))
			return r;
	}
	return NULL;
}

bool bus_owns_any(struct bus *b, enum ipc_space space, uint64_t addr, unsigned size)
{
	unsigned n = atomic_load_explicit(&b->nranges, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		const struct bus_range *r = &b->ranges[i];
		if (r->space == space && overlaps(addr, size, r->base, r->size))
			return true;
	}
	return false;
}

/* Log the first access to each unowned address, up to BUS_LOGGED_UNOWNED
 * addresses (a guest probing the whole space must not flood the log).  Not a
 * hot path: a guest touching unowned addresses is probing or broken. */
static void log_unowned(struct bus *b, enum ipc_space space, uint64_t addr, unsigned size,
			bool write)
{
	STATS_ADD(unowned, 1);
	uint64_t key = addr | (space == IPC_SPACE_MMIO ? 1ull << 63 : 0);
	pthread_mutex_lock(&b->lock);
	unsigned n = b->nlogged < BUS_LOGGED_UNOWNED ? b->nlogged : BUS_LOGGED_UNOWNED;
	bool known = false;
	for (unsigned i = 0; i < n && !known; i++)
		known = b->logged[i] == key;
	if (!known && b->nlogged < BUS_LOGGED_UNOWNED) {
		b->logged[b->nlogged++] = key;
		log_msg("unowned %s %s of %u bytes at %#llx (%s; logged once)", space_name(space),
			write ? "write" : "read", size, (unsigned long long)addr,
			write ? "ignored" : "reads as all-ones");
	} else if (!known && b->nlogged == BUS_LOGGED_UNOWNED) {
		b->nlogged++; /* past the table: the last message below is printed once */
		log_msg("more than %d unowned addresses accessed: no longer logging them",
			BUS_LOGGED_UNOWNED);
	}
	pthread_mutex_unlock(&b->lock);
}

uint64_t bus_read(struct bus *b, enum ipc_space space, uint64_t addr, unsigned size)
{
	if (space == IPC_SPACE_PIO)
		STATS_ADD(pio_reads, 1);
	else
		STATS_ADD(mmio_reads, 1);
	const struct bus_range *r = find(b, space, addr, size);
	if (!r) {
		log_unowned(b, space, addr, size, false);
		return bus_ones(size);
	}
	return r->dev->read(r->dev->opaque, space, addr, size) & bus_ones(size);
}

void bus_write(struct bus *b, enum ipc_space space, uint64_t addr, unsigned size, uint64_t value)
{
	if (space == IPC_SPACE_PIO)
		STATS_ADD(pio_writes, 1);
	else
		STATS_ADD(mmio_writes, 1);
	const struct bus_range *r = find(b, space, addr, size);
	if (!r) {
		log_unowned(b, space, addr, size, true);
		return;
	}
	r->dev->write(r->dev->opaque, space, addr, size, value & bus_ones(size));
}

static uint64_t cb_pio_read(void *opaque, uint16_t port, unsigned size)
{
	return bus_read(opaque, IPC_SPACE_PIO, port, size);
}

static void cb_pio_write(void *opaque, uint16_t port, unsigned size, uint64_t value)
{
	bus_write(opaque, IPC_SPACE_PIO, port, size, value);
}

static uint64_t cb_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
	return bus_read(opaque, IPC_SPACE_MMIO, gpa, size);
}

static void cb_mmio_write(void *opaque, uint64_t gpa, unsigned size, uint64_t value)
{
	bus_write(opaque, IPC_SPACE_MMIO, gpa, size, value);
}

struct engine_bus bus_engine_callbacks(struct bus *b)
{
	return (struct engine_bus){.opaque = b,
				   .pio_read = cb_pio_read,
				   .pio_write = cb_pio_write,
				   .mmio_read = cb_mmio_read,
				   .mmio_write = cb_mmio_write};
}
