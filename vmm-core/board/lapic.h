/* lapic.h - a software local APIC (xAPIC, MMIO at 0xFEE00000) for engines
 * that have none of their own (the software CPU; KVM and WHP keep theirs in
 * the hypervisor).  Engine-neutral: the CPU sees it through two calls,
 * "is an interrupt deliverable?" (the intr callback, a level) and
 * lapic_ack() when the CPU takes it.
 *
 * Model: ID, version, TPR/PPR, IRR/ISR/TMR, EOI (a level-triggered vector's
 * EOI is broadcast to the IOAPIC through the eoi callback), SVR, the LVT
 * timer one-shot and periodic (TSC-deadline is not offered: the CPU does not
 * advertise it), ESR, LDR/DFR and the ICR with fixed, lowest-priority, INIT
 * and SIPI IPIs.  NMI, SMI and LINT0/1 inputs are not modelled.
 *
 * Time: the timer counts LAPIC_TIMER_HZ ticks per second before the divide
 * configuration, the same clock as the software CPU's TSC and as CPUID 0x15's
 * crystal, so Linux takes the timer's rate from CPUID and never calibrates.
 * A thread per LAPIC (lapic_start_timer) sleeps until the next expiry.
 *
 * Locking: each LAPIC has its own mutex.  The intr callback runs with it
 * held (so levels reach the CPU in order); eoi and startup callbacks, and
 * deliveries to other LAPICs, run after it is released. */
#ifndef MINIVM_LAPIC_H
#define MINIVM_LAPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define LAPIC_DEFAULT_BASE 0xfee00000u
#define LAPIC_MMIO_SIZE 0x1000
#define LAPIC_TIMER_HZ 1000000000ull /* 1 GHz: one tick per nanosecond */

/* Delivery modes (ICR and MSI data bits 10:8). */
enum lapic_delivery {
	LAPIC_DM_FIXED = 0,
	LAPIC_DM_LOWEST = 1,
	LAPIC_DM_SMI = 2,
	LAPIC_DM_NMI = 4,
	LAPIC_DM_INIT = 5,
	LAPIC_DM_SIPI = 6,
	LAPIC_DM_EXTINT = 7,
};

/* One interrupt message, from the IOAPIC, an MSI or an IPI. */
struct lapic_msg {
	uint8_t vector;
	uint8_t delivery; /* enum lapic_delivery */
	uint8_t dest;     /* APIC id, or logical mask when `logical` */
	bool logical;
	bool level;       /* level-triggered: TMR set, EOI broadcast */
};

struct lapic_ops {
	void *opaque;
	/* Is there a vector the CPU should take (level)?  Under the lock. */
	void (*intr)(void *opaque, int level);
	/* EOI of a level-triggered vector: tell the IOAPIC. */
	void (*eoi)(void *opaque, uint8_t vector);
	/* INIT (sipi = false) or Startup IPI with its vector arrived. */
	void (*startup)(void *opaque, bool sipi, uint8_t vector);
};

struct lapic {
	pthread_mutex_t lock;
	uint32_t id; /* APIC id, 0..254 */
	struct lapic_ops ops;
	uint64_t (*now_ns)(void);
	/* All LAPICs of the machine (this one included), for IPIs. */
	struct lapic *const *peers;
	int npeers;

	uint32_t tpr, ldr, dfr, svr, esr, icr_lo, icr_hi;
	uint32_t lvt[7]; /* timer, thermal, perf, LINT0, LINT1, error, CMCI */
	uint32_t irr[8], isr[8], tmr[8];
	uint32_t timer_initial, timer_dcr;
	bool timer_armed;
	uint64_t timer_start_ns; /* when the count was (re)loaded */
	uint64_t timer_next_ns;  /* next expiry while armed */

	pthread_cond_t timer_cond; /* timer state changed, or stopping */
	bool timer_thread_running, timer_stop;
	pthread_t timer_thread;
};

void lapic_init(struct lapic *l, uint32_t id, const struct lapic_ops *ops, uint64_t (*now_ns)(void),
		struct lapic *const *peers, int npeers);
/* Power-on / INIT state (registers, IRR/ISR cleared, timer stopped). */
void lapic_reset(struct lapic *l);
/* Stop the timer thread (if started) and free the LAPIC's resources. */
void lapic_destroy(struct lapic *l);

/* Start the thread that fires the timer at its expiries. */
int lapic_start_timer(struct lapic *l);
/* Fire the timer if it expired by `now`; returns the next expiry (ns) or
 * UINT64_MAX when not armed.  The timer thread calls it; tests call it with
 * their own clock. */
uint64_t lapic_timer_poll(struct lapic *l, uint64_t now);

/* A 32-bit register access at offset in the LAPIC page (other sizes and
 * unaligned accesses read 0 and are ignored, logged once). */
uint32_t lapic_read(struct lapic *l, uint32_t offset, unsigned size);
void lapic_write(struct lapic *l, uint32_t offset, unsigned size, uint32_t value);

/* The CPU takes the highest deliverable vector (IRR -> ISR); -1 if none is
 * deliverable any more. */
int lapic_ack(struct lapic *l);

/* Decode an MSI address/data pair into a message. */
void lapic_msg_from_msi(uint64_t address, uint32_t data, struct lapic_msg *m);
/* Deliver m to every LAPIC of peers[] it addresses (physical id or 0xff
 * broadcast; logical flat mode by LDR mask; lowest priority: the first
 * addressed LAPIC). */
void lapic_route(struct lapic *const *peers, int npeers, const struct lapic_msg *m);

#endif
