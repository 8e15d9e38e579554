/* engine.h - the one interface between vmm-core and a CPU engine (KVM, the
 * software CPU, WHP).  Nothing outside vmm-core/engine_*.c includes an
 * engine's own headers; devices never see this file at all.
 *
 * Model: the engine runs a vCPU on the calling thread and calls back into the
 * board (struct engine_bus) for every port or MMIO access that is not RAM.
 * vcpu_run() returns only when the vCPU stops for good or needs the core. */
#ifndef MINIVM_ENGINE_H
#define MINIVM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;

/* Callbacks into the board; called on the vCPU's thread. */
struct engine_bus {
	void *opaque;
	uint64_t (*pio_read)(void *opaque, uint16_t port, unsigned size);
	void (*pio_write)(void *opaque, uint16_t port, unsigned size, uint64_t value);
	uint64_t (*mmio_read)(void *opaque, uint64_t gpa, unsigned size);
	void (*mmio_write)(void *opaque, uint64_t gpa, unsigned size, uint64_t value);
};

/* How a vCPU starts. */
enum vcpu_mode {
	VCPU_REAL16, /* CS:IP = 0000:entry, flat 16-bit real mode */
	VCPU_LONG64, /* 64-bit long mode, paging on (identity map of the first 4 GiB
	              * built by the core in guest RAM at boot.page_tables) */
	VCPU_WAIT_SIPI, /* an application processor: parked until another vCPU's
	                 * LAPIC sends INIT and a Startup IPI, then real mode at
	                 * vector * 0x1000 (engines with signal_msi only); on
	                 * arm64: powered off until the guest's PSCI CPU_ON */
	VCPU_AARCH64, /* arm64: EL1h, DAIF masked, MMU off, PC = entry, X0 = x0 */
};

struct vcpu_boot {
	enum vcpu_mode mode;
	uint64_t entry; /* RIP (or IP for REAL16) */
	uint64_t rsp;
	uint64_t rsi; /* Linux 64-bit boot protocol: boot_params address */
	uint64_t cr3; /* LONG64: PML4 address */
	uint64_t gdt_base; /* LONG64: a GDT with 0x08 = 64-bit code, 0x10 = data */
	uint16_t gdt_limit;
	uint64_t x0; /* AARCH64: Linux's arm64 boot protocol: the device tree's address */
	uint64_t vbar; /* AARCH64: VBAR_EL1 at entry */
	uint64_t trap_gpa; /* AARCH64: a write here means the guest took an exception
	                    * into the board's catch-all vectors: the vCPU stops with
	                    * a diagnosis (0: none) */
};

enum vcpu_stop {
	VCPU_STOP_HALT,     /* HLT with interrupts disabled: nothing left to do */
	VCPU_STOP_SHUTDOWN, /* triple fault */
	VCPU_STOP_POWEROFF, /* the board asked to power off (engine_stop) */
	VCPU_STOP_RESET,    /* the board asked to reset */
	VCPU_STOP_ERROR,    /* engine failure: diagnosis in the stop info */
};

struct vcpu_stop_info {
	enum vcpu_stop reason;
	uint64_t rip;
	char diag[256]; /* one line: what happened, with exit reason and RIP */
};

/* The board's IOAPIC as an engine sees it (split irqchip: LAPICs in the
 * engine, the IOAPIC in vmm-core, as KVM_CAP_SPLIT_IRQCHIP and WHP have it). */
struct engine_irqchip {
	void *opaque;
	/* A LAPIC took the EOI of a level-triggered vector (EOI broadcast);
	 * called on the vCPU's thread.  NULL: nobody listens. */
	void (*eoi)(void *opaque, uint8_t vector);
};

struct engine_config {
	uint8_t *ram;      /* guest RAM, mapped at guest physical 0 */
	uint64_t ram_size;
	/* The rest of it, right after ram_size bytes at ram, at guest physical
	 * high_ram_gpa (above the board's 32-bit MMIO hole); size 0: none. */
	uint64_t high_ram_gpa, high_ram_size;
	/* Guest RAM below this address (a multiple of 4096) is not mapped, so
	 * that the board can put MMIO there: the arm64 flat board's first
	 * 64 KiB.  0 on x86 (engines there map all of RAM). */
	uint64_t ram_map_from;
	/* The same RAM with the log of pages device processes write
	 * (guest_mem.h): engines that cache decoded code read it; KVM and WHP
	 * have no such cache. */
	const struct guest_mem *mem;
	int cpus;
	bool jit; /* soft engine: translate guest code (jit.h) rather than interpret */
	struct engine_bus bus;
	/* Ports no device owns a byte of, whose 4-byte writes the board only
	 * ignores: an engine whose exits are dear may drop those writes in the
	 * hypervisor, without an exit to this process (reads still come here
	 * and read all-ones).  The
	 * x86 board lists the PCI configuration address port, 0xcf8, when no
	 * device owns it: Linux's AGP aperture search on AMD family 0xf-0x15
	 * CPUs writes it 16 000 times, one configuration read each. */
	const uint16_t *quiet_ports;
	unsigned nquiet_ports;
	struct engine_irqchip irqchip;
};

struct engine;

struct engine_ops {
	const char *name; /* "kvm", "soft", "whpx" */
	/* Can this engine run here?  If not, why (one line, what to do). */
	bool (*available)(char *why, size_t n);
	/* Optional, before the process enters its sandbox: take what the
	 * engine needs that the sandbox forbids (the JIT's executable memory).
	 * -1 (err set): it could not; the engine then runs without it. */
	int (*before_sandbox)(bool jit, char *err, size_t n);
	struct engine *(*create)(const struct engine_config *cfg, char *err, size_t n);
	int (*vcpu_init)(struct engine *e, int cpu, const struct vcpu_boot *boot, char *err, size_t n);
	/* Runs vCPU `cpu` on this thread until it stops. */
	void (*vcpu_run)(struct engine *e, int cpu, struct vcpu_stop_info *stop);
	/* Deliver an interrupt message in MSI format (address 0xFEExxxxx with
	 * the destination, data with vector, delivery and trigger mode) to the
	 * engine's LAPICs: what the board's IOAPIC sends.  Any thread.  NULL
	 * when the engine has no LAPICs yet (its guests get no interrupts). */
	void (*signal_msi)(struct engine *e, uint64_t address, uint32_t data);
	/* The IOAPIC's pin `gsi` now sends (address, data), or nothing while
	 * `masked` (called on every redirection-entry change).  For engines
	 * whose LAPICs report EOIs (engine_irqchip.eoi) only for level-triggered
	 * vectors they know come from the IOAPIC (KVM's split irqchip); NULL
	 * otherwise.  Any thread. */
	void (*irq_route)(struct engine *e, unsigned gsi, bool masked, uint64_t address,
			  uint32_t data);
	/* Set device interrupt line `line` (the board's numbering) to `level`,
	 * for engines whose interrupt controller is the hypervisor's (arm64:
	 * the in-kernel GIC); NULL on x86, where the board's IOAPIC takes the
	 * lines and sends signal_msi.  Any thread. */
	void (*set_irq)(struct engine *e, unsigned line, int level);
	/* Make every vcpu_run return with `reason` (POWEROFF or RESET); any thread. */
	void (*stop)(struct engine *e, enum vcpu_stop reason);
	void (*destroy)(struct engine *e);
	/* What the engine finds on this host, for `vmm-core --check` and bug
	 * reports: lines of "  name: value\n" into out (truncated at n).  NULL:
	 * nothing beyond available(). */
	int (*describe)(char *out, size_t n);
};

/* The engines built into this binary, best first; NULL-terminated. */
extern const struct engine_ops *const engine_list[];
const struct engine_ops *engine_find(const char *name);

#endif
