/* arm64_board.h - the arm64 board's Linux pieces that need no engine: its
 * memory map, the device tree (libfdt) and the kernel Image loader.
 *
 * Memory map (guest physical): RAM from 0 up to 3 GiB, as on the x86 board,
 * so guest_mem and the devices' DMA addresses stay the same; above it the
 * MMIO the devices declare (the PL011 at 0xC0000000, the virtio-mmio slots
 * from 0xD0001000) and the in-kernel GICv3 (distributor, then one
 * redistributor frame pair per vCPU).  Device lines are GIC SPIs: line N is
 * SPI N (interrupt ID 32 + N). */
#ifndef MINIVM_ARM64_BOARD_H
#define MINIVM_ARM64_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARM64_GICD_BASE 0xf0000000ull
#define ARM64_GICD_SIZE 0x10000ull
#define ARM64_GICR_BASE 0xf0010000ull
#define ARM64_GICR_SIZE_PER_CPU 0x20000ull /* RD_base and SGI_base frames */
#define ARM64_MAX_CPUS 8

/* The architected timer's PPIs (interrupt IDs 16 + n): secure, non-secure,
 * virtual, hypervisor physical, as the DT binding lists them. */
#define ARM64_TIMER_PPI_SEC 13
#define ARM64_TIMER_PPI_NONSEC 14
#define ARM64_TIMER_PPI_VIRT 11
#define ARM64_TIMER_PPI_HYP 10

enum arm64_dt_kind { ARM64_DT_PL011, ARM64_DT_VIRTIO_MMIO };

struct arm64_dt_device {
	enum arm64_dt_kind kind;
	uint64_t base, size;
	uint32_t spi;    /* the device's line */
	bool edge;       /* else level-triggered, active high */
};

#define ARM64_DT_MAX_DEVICES 16

/* Append to out[*n] a node for each range of a device's placed HELLO that
 * the tree describes: a PL011 or virtio-mmio range with a line (the core
 * placed it: virtio-mmio slots and their SPIs from devproxy_policy.c).
 * Other ranges (the debug ports) are the core's alone.  Returns 0, or -1
 * when more than ARM64_DT_MAX_DEVICES nodes would be needed. */
struct ipc_hello;
int arm64_dt_add_devices(const struct ipc_hello *placed, struct arm64_dt_device *out,
			 unsigned *n);

struct arm64_dt_config {
	uint64_t ram_size; /* RAM at 0 */
	unsigned cpus;
	const char *bootargs;               /* NULL: none */
	uint64_t initrd_start, initrd_size; /* size 0: no initrd */
	const struct arm64_dt_device *devices;
	unsigned ndevices;
};

/* Build the flattened device tree into buf (size bytes): memory, cpus
 * (PSCI 0.2 by HVC), the timer, the GICv3, a 24 MHz clock for the PL011s,
 * each device, /chosen (bootargs, initrd, stdout-path = the first PL011).
 * Returns the blob's size, or 0 with a one-line reason in err. */
size_t arm64_dt_build(void *buf, size_t size, const struct arm64_dt_config *cfg, char *err,
		      size_t errlen);

/* Where Linux was put: the entry point and the device tree's address. */
struct arm64_linux_loaded {
	uint64_t entry;
	uint64_t dtb;
	uint64_t initrd_start, initrd_size;
};

/* A kernel file that starts with gzip's magic (an Image.gz, which some
 * distributions ship as vmlinuz). */
bool arm64_image_is_gzip(const uint8_t *kernel, size_t kernel_size);

/* Inflate a gzip'd Image (its first gzip member) with zlib into a new
 * malloc'd buffer (*out, *out_size; the caller frees it), of max_size bytes
 * at most (the guest's RAM: a bigger Image could not be placed anyway).
 * Returns 0, or -1 with a one-line reason in err (corrupt, truncated, too
 * big). */
int arm64_image_gunzip(const uint8_t *gz, size_t gz_size, size_t max_size, uint8_t **out,
		       size_t *out_size, char *err, size_t errlen);

/* Place an arm64 kernel Image (Documentation/arm64/booting.rst; unpacked)
 * at 2 MiB + its text_offset, the initrd at the top of RAM below the device
 * tree's 2 MiB, and report where; the device tree itself is the caller's,
 * built for these addresses and copied to loaded->dtb (ARM64_DTB_MAX bytes
 * at most).  Returns 0, or -1 with a one-line reason in err. */
#define ARM64_DTB_MAX 0x200000ull
int arm64_linux_place(uint8_t *ram, uint64_t ram_size, const uint8_t *kernel, size_t kernel_size,
		      const uint8_t *initrd, size_t initrd_size, struct arm64_linux_loaded *loaded,
		      char *err, size_t errlen);

#endif
