/* check.c - `vmm-core --check` (run by `launcher check`): which engines can
 * run on this host and why not, what each finds here (engine_ops.describe),
 * and a run of the s001 program on each engine that can, bounded to one
 * second.  The output is meant to be pasted into a bug report as it is.
 *
 * The run needs no device process: the check's own bus collects what s001
 * writes to the debug port, so only the engine is tested. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "boot.h"
#include "check.h"
#include "engine.h"
#include "host.h"

#define CHECK_RAM (1u << 20)
#define CHECK_TIMEOUT_MS 1000
#define DEBUG_PORT 0xf1

/* tests/guests/s001.S assembled: real mode at 0000:0000, "Helo\n" to port
 * 0xf1 one `mov $c,%al; outb %al,$0xf1` at a time, then HLT. */
static const uint8_t s001[] = {
	0xb0, 'H', 0xe6, DEBUG_PORT, 0xb0, 'e', 0xe6, DEBUG_PORT, 0xb0, 'l', 0xe6, DEBUG_PORT,
	0xb0, 'o', 0xe6, DEBUG_PORT, 0xb0, '\n', 0xe6, DEBUG_PORT, 0xf4,
};
#define S001_OUTPUT "Helo\n"

struct check_run {
	const struct engine_ops *ops;
	struct engine *engine;
	char out[16]; /* what reached the debug port */
	size_t out_len;
	unsigned other_accesses;
	struct vcpu_stop_info stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static uint64_t check_pio_read(void *opaque, uint16_t port, unsigned size)
{
	struct check_run *r = opaque;
	(void)port;
	r->other_accesses++;
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1; /* nothing there: all ones */
}

static void check_pio_write(void *opaque, uint16_t port, unsigned size, uint64_t value)
{
	struct check_run *r = opaque;
	if (port == DEBUG_PORT && size == 1 && r->out_len < sizeof(r->out) - 1)
		r->out[r->out_len++] = (char)value;
	else
		r->other_accesses++;
}

static uint64_t check_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
	return check_pio_read(opaque, (uint16_t)gpa, size);
}

static void check_mmio_write(void *opaque, uint64_t gpa, unsigned size, uint64_t value)
{
	struct check_run *r = opaque;
	(void)gpa, (void)size, (void)value;
	r->other_accesses++;
}

static void *check_vcpu(void *arg)
{
	struct check_run *r = arg;
	r->ops->vcpu_run(r->engine, 0, &r->stop);
	pthread_mutex_lock(&r->lock);
	r->done = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Wait up to CHECK_TIMEOUT_MS for the vCPU; false if it is still running. */
static bool wait_done(struct check_run *r)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CHECK_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&r->lock);
	while (!r->done)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until))
			break;
	bool done = r->done;
	pthread_mutex_unlock(&r->lock);
	return done;
}

/* s001 on one engine: one line saying what happened; true if it printed
 * "Helo" and halted. */
static bool run_s001(const struct engine_ops *ops, FILE *out)
{
	char err[256];
	host_shm *ram = host_shm_create("check-ram", CHECK_RAM, err, sizeof(err));
	if (!ram) {
		fprintf(out, "  s001: FAILED: no guest RAM: %s\n", err);
		return false;
	}
	uint8_t *base = host_shm_ptr(ram);
	memcpy(base, s001, sizeof(s001));
	struct check_run r = {.ops = ops};
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	struct engine_config cfg = {
		.ram = base, .ram_size = CHECK_RAM, .cpus = 1,
		.bus = {.opaque = &r, .pio_read = check_pio_read, .pio_write = check_pio_write,
			.mmio_read = check_mmio_read, .mmio_write = check_mmio_write},
	};
	struct vcpu_boot boot;
	bool ok = false;
	uint64_t start = host_now_ns();
	r.engine = ops->create(&cfg, err, sizeof(err));
	pthread_t thread;
	if (!r.engine) {
		fprintf(out, "  s001: FAILED: cannot create the engine: %s\n", err);
	} else if (boot_flat(base, CHECK_RAM, sizeof(s001), VCPU_REAL16, &boot, err, sizeof(err)) ||
		   ops->vcpu_init(r.engine, 0, &boot, err, sizeof(err))) {
		fprintf(out, "  s001: FAILED: cannot start the vCPU: %s\n", err);
	} else if (pthread_create(&thread, NULL, check_vcpu, &r)) {
		fprintf(out, "  s001: FAILED: cannot start a thread\n");
	} else {
		bool done = wait_done(&r);
		if (!done)
			ops->stop(r.engine, VCPU_STOP_POWEROFF);
		pthread_join(thread, NULL);
		double ms = (double)(host_now_ns() - start) / 1e6;
		ok = done && r.stop.reason == VCPU_STOP_HALT && strcmp(r.out, S001_OUTPUT) == 0;
		if (ok)
			fprintf(out, "  s001: ok, printed \"Helo\" and halted, %.1f ms with the engine's "
				"set-up\n", ms);
		else
			fprintf(out, "  s001: FAILED: %s after %.1f ms; debug port got \"%.*s\" (%zu "
				"bytes), %u other accesses; %s\n",
				done ? "stopped" : "still running (stopped)", ms,
				(int)strcspn(r.out, "\n"), r.out, r.out_len, r.other_accesses,
				r.stop.diag[0] ? r.stop.diag : "no diagnosis");
	}
	if (r.engine)
		ops->destroy(r.engine);
	pthread_mutex_destroy(&r.lock);
	pthread_cond_destroy(&r.cond);
	host_shm_close(ram);
	return ok;
}

int core_check(FILE *out)
{
	int failed = 0;
	for (size_t i = 0; engine_list[i]; i++) {
		const struct engine_ops *ops = engine_list[i];
		char why[320];
		bool available = ops->available(why, sizeof(why));
		if (available)
			fprintf(out, "engine %s: available\n", ops->name);
		else
			fprintf(out, "engine %s: not available: %s\n", ops->name, why);
		if (ops->describe) {
			char text[2048];
			ops->describe(text, sizeof(text));
			fputs(text, out);
		}
		if (available && !run_s001(ops, out))
			failed++;
		fflush(out);
	}
	return failed ? 1 : 0;
}
