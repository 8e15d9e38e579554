/* linux_boot.h - load a Linux kernel and initrd into guest RAM for the x86
 * 64-bit boot protocol (Documentation/x86/boot.rst).
 *
 * Kernel formats:
 *  - bzImage: the protected-mode part (the kernel's own decompressor) goes at
 *    the header's pref_address; entry = load address + 0x200 (startup_64).
 *  - bzImage with its payload unpacked on the host (linux_unpack_bzimage:
 *    the xz payload the header locates, payload_offset/payload_length,
 *    unpacked with liblzma): the resulting ELF vmlinux is loaded as below.
 *    The guest then skips its own decompressor, which is slow on the
 *    software CPU and under nested KVM.  The boot_params carry the bzImage's
 *    own setup header either way.
 *  - ELF vmlinux: PT_LOAD segments at their physical addresses; entry =
 *    e_entry (Linux links it as the physical address of startup_64; a virtual
 *    e_entry is translated through the segment that holds it).  This is the
 *    64-bit boot protocol entered at startup_64, not PVH.
 *
 * In every case the vCPU starts in VCPU_LONG64 (identity-mapped low 4 GiB)
 * at `entry` with rsi = `boot_params`, interrupts off.
 *
 * The library does no file I/O: it takes buffers.  Everything in a kernel
 * image is treated as hostile: every offset and size is checked, and nothing
 * is written outside guest RAM. */
#ifndef MINIVM_LINUX_BOOT_H
#define MINIVM_LINUX_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* e820 memory map entry types the board uses. */
#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3

#define LINUX_E820_MAX 128 /* entries the zero page holds */

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* Suggested low-memory layout (as Firecracker's): the zero page and the
 * command line; the long-mode tables of boot.h fit in 0x9000..0x10000. */
#define LINUX_BOOT_PARAMS_ADDR 0x7000u
#define LINUX_CMDLINE_ADDR 0x20000u

struct linux_load_args {
	const uint8_t *kernel; /* bzImage or ELF vmlinux */
	size_t kernel_size;
	const uint8_t *initrd; /* NULL: no initrd */
	size_t initrd_size;
	const char *cmdline; /* NUL-terminated; NULL = empty */
	/* Memory map given to the guest.  The kernel and initrd are placed only
	 * inside its E820_RAM entries (and inside the RAM buffer). */
	const struct e820_entry *e820;
	unsigned e820_count;
	uint64_t boot_params_addr; /* 4 KiB zero page, in RAM */
	uint64_t cmdline_addr;
	uint64_t acpi_rsdp_addr; /* 0: the kernel scans 0xE0000..0xFFFFF itself */
	/* bzImage only: its payload as linux_unpack_bzimage unpacked it, loaded
	 * in place of the guest's decompressor; NULL: the decompressor runs. */
	const uint8_t *vmlinux;
	size_t vmlinux_size;
};

struct linux_loaded {
	uint64_t entry;       /* 64-bit entry point (guest physical) */
	uint64_t boot_params; /* for rsi */
	uint64_t kernel_start, kernel_end; /* memory the kernel may use at boot */
	uint64_t initrd_start, initrd_end; /* equal when there is no initrd */
	bool decompressed_on_host;
};

/* Load the kernel, initrd, command line and zero page into ram (guest
 * physical 0..ram_size).  Returns 0, or -1 with a one-line reason in err. */
int linux_load(uint8_t *ram, uint64_t ram_size, const struct linux_load_args *args,
	       struct linux_loaded *out, char *err, size_t errlen);

/* A PC memory map for `ram_size` bytes of RAM at guest physical 0: RAM below
 * 0xA0000, the BIOS area 0xE0000..0xFFFFF reserved (the ACPI tables live
 * there), RAM from 1 MiB to ram_size.  Returns the number of entries (3), or
 * -1 if cap is too small or ram_size is under 2 MiB. */
int linux_e820_pc(uint64_t ram_size, struct e820_entry *out, unsigned cap);

/* True if this build can unpack xz payloads (liblzma; not in the MinGW
 * build, where the guest's own decompressor runs instead). */
bool linux_host_decompress_available(void);

/* The ELF vmlinux in a bzImage's xz payload, unpacked into a malloc'd
 * buffer of at most max_size bytes (the caller frees it), for
 * linux_load_args.vmlinux.  Separate from linux_load so that it can run
 * once per image and before the board is known (while the device
 * processes start).  0 with *vmlinux NULL when there is nothing to unpack:
 * no liblzma in this build, or not a well-formed bzImage (linux_load says
 * what is wrong with it); -1 with a one-line reason in err when the payload
 * lies outside the file, is not xz or does not unpack. */
int linux_unpack_bzimage(const uint8_t *img, size_t size, uint64_t max_size, uint8_t **vmlinux,
			 size_t *vmlinux_size, char *err, size_t errlen);

#endif
