/* bus.h - the board's address decoder: which device owns a port or MMIO
 * address.  Engines call into it (through struct engine_bus) for every
 * access that is not RAM.
 *
 * Ranges are added while devices attach, before the vCPUs start (a restarted
 * device must come back with the same ranges, devproxy.c enforces that), so
 * lookups on the vCPU threads take no lock: entries are appended under `lock`
 * and then published with a release store of the count. */
#ifndef MINIVM_BUS_H
#define MINIVM_BUS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "ipc.h"

#define BUS_MAX_RANGES 64
#define BUS_LOGGED_UNOWNED 64 /* distinct unowned addresses we log */

/* The owner of a range: a device proxy (or a test double). */
struct bus_device {
	void *opaque;
	uint64_t (*read)(void *opaque, enum ipc_space space, uint64_t addr, unsigned size);
	void (*write)(void *opaque, enum ipc_space space, uint64_t addr, unsigned size,
		      uint64_t value);
};

struct bus_range {
	enum ipc_space space;
	uint64_t base, size;
	const struct bus_device *dev;
};

struct bus {
	uint64_t ram_size; /* MMIO below this is RAM and cannot be claimed... */
	uint64_t ram_start; /* ...from here: 0 but on the arm64 board, whose
	                     * RAM below BOOT_ARM64_RAM_START is left to MMIO */
	uint64_t high_ram_base, high_ram_size; /* nor RAM above the 32-bit MMIO hole */
	struct bus_range ranges[BUS_MAX_RANGES];
	_Atomic unsigned nranges;
	pthread_mutex_t lock; /* attach, and the unowned-address log below */
	/* Unowned addresses already logged (MMIO marked by bit 63). */
	uint64_t logged[BUS_LOGGED_UNOWNED];
	unsigned nlogged;
};

void bus_init(struct bus *b, uint64_t ram_size);

/* Give dev the n ranges, all or none: refused (-1, reason in err) when a
 * range is outside its space (ports above 0xffff, MMIO over RAM) or overlaps
 * a range already on the bus or another of the n. */
int bus_attach(struct bus *b, const struct bus_device *dev, const struct ipc_range *ranges,
	       unsigned n, char *err, size_t errlen);

/* An access of size bytes at addr: the owner's answer, or all-ones of the
 * access size (logged once per address) when no device owns all of it. */
uint64_t bus_read(struct bus *b, enum ipc_space space, uint64_t addr, unsigned size);
void bus_write(struct bus *b, enum ipc_space space, uint64_t addr, unsigned size, uint64_t value);

/* Does any device own a byte of [addr, addr + size)? */
bool bus_owns_any(struct bus *b, enum ipc_space space, uint64_t addr, unsigned size);

/* The struct engine_bus callbacks for this bus. */
struct engine_bus bus_engine_callbacks(struct bus *b);

/* All-ones of an access size in bytes (1..8). */
uint64_t bus_ones(unsigned size);

#endif
