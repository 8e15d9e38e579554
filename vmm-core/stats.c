/* stats.c - the core's counters (stats.h). */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "log.h"

struct core_stats core_stats;
static _Atomic uint64_t milestone_ns[STATS_MILESTONES];

void stats_milestone(enum stats_milestone m)
{
	uint64_t unset = 0;
	atomic_compare_exchange_strong(&milestone_ns[m], &unset, host_now_ns());
}

static uint64_t get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Milliseconds from launch to milestone m, or -1 if it was not reached. */
static double milestone_ms(enum stats_milestone m, uint64_t launch_ns)
{
	uint64_t t = atomic_load(&milestone_ns[m]);
	return t ? ((double)t - (double)launch_ns) / 1e6 : -1.0;
}

void stats_print_if_asked(uint64_t elapsed_ns, uint64_t launch_ns)
{
	const char *env = getenv("MINIVM_STATS");
	if (!env || strcmp(env, "1") != 0)
		return;
	double secs = elapsed_ns ? (double)elapsed_ns / 1e9 : 1e-9;
	log_msg("start-up (ms after launch): core %.1f, listening %.1f, images read %.1f%s, "
		"devices attached %.1f, guest loaded %.1f, vCPUs started %.1f",
		milestone_ms(STATS_CORE_STARTED, launch_ns), milestone_ms(STATS_LISTENING, launch_ns),
		milestone_ms(STATS_IMAGES_READ, launch_ns),
		get(&core_stats.kernel_cache_hits) ? " (the kernel unpacked before, from the cache)" : "",
		milestone_ms(STATS_DEVICES_ATTACHED, launch_ns),
		milestone_ms(STATS_GUEST_LOADED, launch_ns),
		milestone_ms(STATS_VCPUS_STARTED, launch_ns));
	uint64_t exits = get(&core_stats.exits);
	uint64_t trips = get(&core_stats.round_trips);
	uint64_t wait_ns = get(&core_stats.ipc_wait_ns);
	log_msg("stats: %.3f s, %llu exits (%.0f/s): pio %llu r / %llu w, mmio %llu r / %llu w, "
		"%llu unowned",
		secs, (unsigned long long)exits, (double)exits / secs,
		(unsigned long long)get(&core_stats.pio_reads),
		(unsigned long long)get(&core_stats.pio_writes),
		(unsigned long long)get(&core_stats.mmio_reads),
		(unsigned long long)get(&core_stats.mmio_writes),
		(unsigned long long)get(&core_stats.unowned));
	log_msg("stats: %llu round trips (%.1f us avg), %llu shadow hits, %llu receive-ring reads, "
		"%llu posted writes (%llu of them in %llu runs, with %llu read dones; %llu messages batched in %llu frames), %llu acks lowered a line, "
		"%llu reads of \"no interrupt\" lowered one, %llu IPC_IRQ messages, %llu lines raised by writes, %llu waits for the posting window, "
		"%.3f s waited on ipc (%.1f%%)",
		(unsigned long long)trips, trips ? (double)wait_ns / 1e3 / (double)trips : 0.0,
		(unsigned long long)get(&core_stats.shadow_hits),
		(unsigned long long)get(&core_stats.rx_pops),
		(unsigned long long)get(&core_stats.posted_writes),
		(unsigned long long)get(&core_stats.run_writes),
		(unsigned long long)get(&core_stats.runs_sent),
		(unsigned long long)get(&core_stats.read_dones_in_runs),
		(unsigned long long)get(&core_stats.frame_msgs),
		(unsigned long long)get(&core_stats.frames_sent),
		(unsigned long long)get(&core_stats.acks_lowered),
		(unsigned long long)get(&core_stats.idle_lowered),
		(unsigned long long)get(&core_stats.irq_msgs),
		(unsigned long long)get(&core_stats.lines_raised),
		(unsigned long long)get(&core_stats.window_waits), (double)wait_ns / 1e9,
		100.0 * (double)wait_ns / 1e9 / secs);
	uint64_t doorbells = get(&core_stats.doorbells), waits = get(&core_stats.doorbell_waits);
	if (doorbells)
		log_msg("stats: %llu doorbells rung, %llu waited for: %.3f s (%.1f us avg), %llu sleeps, %llu waits gave up",
			(unsigned long long)doorbells, (unsigned long long)waits,
			(double)get(&core_stats.doorbell_wait_ns) / 1e9,
			waits ? (double)get(&core_stats.doorbell_wait_ns) / 1e3 / (double)waits : 0.0,
			(unsigned long long)get(&core_stats.doorbell_sleeps),
			(unsigned long long)get(&core_stats.doorbell_timeouts));
	log_msg("stats: %llu looks at published line levels (%llu sleeps)",
		(unsigned long long)get(&core_stats.level_looks),
		(unsigned long long)get(&core_stats.level_sleeps));
	uint64_t jit_blocks = get(&core_stats.jit_blocks);
	if (jit_blocks)
		log_msg("stats: the JIT translated %llu blocks (%llu code caches flushed full)",
			(unsigned long long)jit_blocks, (unsigned long long)get(&core_stats.jit_full_flushes));
}
