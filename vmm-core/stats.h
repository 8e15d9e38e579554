/* stats.h - counters of where the core spends its exits and waits, printed
 * at exit when MINIVM_STATS=1 (the Linux-boot work needs these figures to
 * keep round trips off the hot paths).  Updated from any thread with relaxed
 * atomics: each counter is independent. */
#ifndef MINIVM_STATS_H
#define MINIVM_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct core_stats {
	_Atomic uint64_t exits;       /* returns from the engine's guest execution */
	_Atomic uint64_t pio_reads, pio_writes, mmio_reads, mmio_writes;
	_Atomic uint64_t unowned;     /* accesses no device owns */
	_Atomic uint64_t round_trips; /* IO_READ answered by a device */
	_Atomic uint64_t shadow_hits; /* reads answered from a state page */
	_Atomic uint64_t rx_pops;     /* receive-register reads answered from a receive ring */
	_Atomic uint64_t posted_writes;
	_Atomic uint64_t run_writes, runs_sent; /* posted writes that left in IO_WRITE_RUNs, and those */
	_Atomic uint64_t read_dones_in_runs; /* IO_READ_DONEs that left inside a run */
	_Atomic uint64_t frames_sent, frame_msgs; /* batches of posted messages, and what they held */
	_Atomic uint64_t acks_lowered; /* interrupt acknowledges (and receive-ring reads that
					* emptied the ring) that lowered a line at once */
	_Atomic uint64_t idle_lowered; /* reads that reported no interrupt and lowered a line
					* left up (by a device's late "high") */
	_Atomic uint64_t irq_msgs;    /* IPC_IRQ messages from devices */
	_Atomic uint64_t lines_raised; /* stream writes that raised a line at once (THRE) */
	_Atomic uint64_t window_waits; /* waits of a vCPU ahead of its device by POST_WINDOW writes */
	_Atomic uint64_t ipc_wait_ns; /* vCPU time spent waiting for devices */
	_Atomic uint64_t doorbells;   /* writes that rang a device's doorbell (no message) */
	_Atomic uint64_t doorbell_waits;   /* rings whose vCPU waited for them to be taken */
	_Atomic uint64_t doorbell_wait_ns; /* vCPU time waiting for rings to be taken */
	_Atomic uint64_t doorbell_sleeps;  /* ... times it went to sleep for it */
	_Atomic uint64_t doorbell_timeouts; /* ... waits that gave up */
	_Atomic uint64_t level_looks;  /* looks at a state page's published line levels */
	_Atomic uint64_t level_sleeps; /* ... times the looking thread went to sleep */
	_Atomic uint64_t jit_blocks;  /* soft engine: blocks its JIT translated */
	_Atomic uint64_t jit_full_flushes; /* ... and times a code cache was full */
	_Atomic uint64_t kernel_cache_hits; /* kernels read unpacked from the cache (kernel_cache.h) */
};

extern struct core_stats core_stats;

/* The core's start-up, for the boot-time work: host_now_ns() at each
 * milestone of the first start (a reboot's do not count), printed with the
 * counters as milliseconds after the launcher started. */
enum stats_milestone {
	STATS_CORE_STARTED,     /* main() entered */
	STATS_LISTENING,        /* every device's channel listens */
	STATS_IMAGES_READ,      /* kernel and initrd read (and the kernel unpacked) */
	STATS_DEVICES_ATTACHED, /* every device said HELLO */
	STATS_GUEST_LOADED,     /* tables, kernel, initrd and command line in guest RAM */
	STATS_VCPUS_STARTED,    /* the engine made, the vCPU threads started */
	STATS_MILESTONES
};

/* Record milestone m now, unless it was recorded before. */
void stats_milestone(enum stats_milestone m);

#define STATS_ADD(field, n) atomic_fetch_add_explicit(&core_stats.field, (n), memory_order_relaxed)

/* Print the counters to stderr if MINIVM_STATS=1; elapsed_ns is the run
 * time, launch_ns the launcher's start (host_now_ns()). */
void stats_print_if_asked(uint64_t elapsed_ns, uint64_t launch_ns);

#endif
