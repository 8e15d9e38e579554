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
	                 * vector * 0x1000 (engines with signal_msi only) */
};

struct vcpu_boot {
	enum vcpu_mode mode;
	uint64_t entry; /* RIP (or IP for REAL16) */
	uint64_t rsp;
	uint64_t rsi; /* Linux 64-bit boot protocol: boot_params address */
	uint64_t cr3; /* LONG64: PML4 address */
	uint64_t gdt_base; /* LONG64: a GDT with 0x08 = 64-bit code, 0x10 = data */
	uint16_t gdt_limit;
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
	int cpus;
	struct engine_bus bus;
	struct engine_irqchip irqchip;
};

struct engine;

struct engine_ops {
	const char *name; /* "kvm", "soft", "whpx" */
	/* Can this engine run here?  If not, why (one line, what to do). */
	bool (*available)(char *why, size_t n);
	struct engine *(*create)(const struct engine_config *cfg, char *err, size_t n);
	int (*vcpu_init)(struct engine *e, int cpu, const struct vcpu_boot *boot, char *err, size_t n);
	/* Runs vCPU `cpu` on this thread until it stops. */
	void (*vcpu_run)(struct engine *e, int cpu, struct vcpu_stop_info *stop);
	/* Set the level of a board interrupt line (GSI); any thread.  Used only
	 * by engines without signal_msi (the board's IOAPIC cannot reach them). */
	void (*set_irq)(struct engine *e, unsigned gsi, int level);
	/* Deliver an interrupt message in MSI format (address 0xFEExxxxx with
	 * the destination, data with vector, delivery and trigger mode) to the
	 * engine's LAPICs: what the board's IOAPIC sends.  Any thread.  NULL
	 * when the engine has no LAPICs yet (KVM: would be KVM_SIGNAL_MSI with
	 * a split irqchip, not done: Linux cannot run on this PVM host). */
	void (*signal_msi)(struct engine *e, uint64_t address, uint32_t data);
	/* Make every vcpu_run return with `reason` (POWEROFF or RESET); any thread. */
	void (*stop)(struct engine *e, enum vcpu_stop reason);
	void (*destroy)(struct engine *e);
};

/* The engines built into this binary, best first; NULL-terminated. */
extern const struct engine_ops *const engine_list[];
const struct engine_ops *engine_find(const char *name);

#endif
