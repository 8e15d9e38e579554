/* test_devlib.c - the device library (devlib/devlib.h) against a scripted
 * core over a real ipc socket: HELLO/WELCOME, guest RAM and the state page
 * mapped, reads answered, writes acknowledged through applied_seq, PING,
 * numbered IRQs, the slot placement WELCOME gives (and a WELCOME that
 * misplaces a range refused), writes kept from before WELCOME (reads dropped), REJECT,
 * SHUTDOWN, the core going away, the event loop's host handles, timer
 * deadline and wake-up from another thread, doorbells, and level-triggered
 * lines published in the state page instead of sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "devlib.h"
#include "host.h"
#include "ipc.h"
#include "log.h"

#define RAM_SIZE (1u << 20)
#define RAM_MARK_GPA 0x1000 /* the fake device writes here on attach */
#define FAKE_LINE 9
#define FAKE_REG 0x500

/* ---- a fake device ---- */

struct fake {
	struct dev_loop *loop;
	struct ipc_state_page *page;
	uint64_t ram_size;
	bool resumed;
	uint64_t slot_base; /* where the core put the virtio-mmio range */
	uint32_t slot_gsi;
	uint64_t writes[16]; /* data of each write, in order */
	_Atomic size_t nwrites;
	_Atomic unsigned resets;
	_Atomic uint64_t read_done; /* data of the last IO_READ_DONE */
	/* the event loop */
	int pipe_r;              /* watched when >= 0 */
	_Atomic bool pipe_seen;  /* poll_dispatch saw it readable */
	uint64_t deadline;       /* asked for in poll_prepare (0: none) */
	_Atomic bool deadline_met;
	_Atomic unsigned dispatches;
	/* doorbells */
	bool declare_doorbell;   /* QueueNotify of the slot range is doorbell 1 */
	uint32_t doorbell_bits[IPC_MAX_DOORBELLS]; /* every bit rung, under the lock */
	unsigned doorbell_calls;
	unsigned taken_calls;    /* of doorbell_taken, under the lock... */
	uint32_t taken_seen;     /* ...and the taken count it saw last */
};

static void fake_hello(void *dev, struct ipc_hello *h)
{
	strcpy(h->name, "fake");
	h->nranges = 2;
	h->ranges[0] = (struct ipc_range){.space = IPC_SPACE_PIO, .base = FAKE_REG, .size = 4,
					  .has_irq = true, .irq = 0};
	/* A virtio-mmio transport asking for a slot. */
	h->ranges[1] = (struct ipc_range){.space = IPC_SPACE_MMIO, .size = IPC_VIRTIO_MMIO_SIZE,
					  .kind = IPC_RANGE_VIRTIO_MMIO, .has_irq = true, .irq = 1};
	h->nirqs = 2;
	h->irqs[0] = (struct ipc_irq_line){.gsi = FAKE_LINE, .trigger = IPC_TRIGGER_EDGE};
	h->irqs[1] = (struct ipc_irq_line){.gsi = IPC_IRQ_ANY, .trigger = IPC_TRIGGER_LEVEL};
	struct fake *f = dev;
	if (f->declare_doorbell)
		h->regs[h->nregs++] = (struct ipc_reg){.space = IPC_SPACE_MMIO, .size = 4,
						       .flags = IPC_REG_DOORBELL, .slot = 1, .addr = 0x50};
}

static void fake_attach(void *dev, struct ipc_state_page *page, const struct guest_mem *ram,
			const struct ipc_welcome *w)
{
	struct fake *f = dev;
	f->page = page;
	f->ram_size = ram->size;
	f->resumed = w->flags & IPC_WELCOME_RESUMED;
	f->slot_base = w->range_base[1];
	f->slot_gsi = w->irq_gsi[1];
	assert_true(guest_mem_write(ram, RAM_MARK_GPA, "DEVL", 4));
	assert_false(guest_mem_write(ram, RAM_SIZE - 2, "DEVL", 4)); /* the accessor is checked */
	dev_irq(f->loop, FAKE_LINE, 1);
	dev_irq(f->loop, FAKE_LINE, 0);
}

static uint64_t fake_read(void *dev, const struct ipc_io *io)
{
	return io->addr + 0x1000;
}

static void fake_write(void *dev, const struct ipc_io *io)
{
	struct fake *f = dev;
	if (f->nwrites < 16)
		f->writes[f->nwrites] = io->data;
	f->nwrites++;
}

static void fake_read_done(void *dev, const struct ipc_io *io)
{
	struct fake *f = dev;
	f->read_done = io->data;
}

static void fake_reset(void *dev)
{
	struct fake *f = dev;
	f->resets++;
}

static size_t fake_prepare(void *dev, struct host_pollfd *fds, size_t max, uint64_t *deadline)
{
	struct fake *f = dev;
	if (f->deadline)
		*deadline = f->deadline;
	if (f->pipe_r < 0)
		return 0;
	fds[0] = (struct host_pollfd){.fd = f->pipe_r, .events = HOST_POLLIN};
	return 1;
}

static void fake_dispatch(void *dev, const struct host_pollfd *fds, size_t n)
{
	struct fake *f = dev;
	f->dispatches++;
	if (n == 1 && (fds[0].revents & HOST_POLLIN)) {
		char c;
		assert_int_equal(read(f->pipe_r, &c, 1), 1);
		f->pipe_seen = true;
	}
	if (f->deadline && host_now_ns() >= f->deadline) {
		f->deadline = 0;
		f->deadline_met = true;
	}
}

static void fake_doorbell(void *dev, unsigned doorbell, uint32_t bits)
{
	struct fake *f = dev;
	assert_true(doorbell < IPC_MAX_DOORBELLS);
	f->doorbell_bits[doorbell] |= bits;
	f->doorbell_calls++;
}

static void fake_doorbell_taken(void *dev)
{
	struct fake *f = dev;
	f->taken_calls++;
	f->taken_seen = atomic_load(&f->page->doorbell.taken);
}

static const struct dev_ops fake_ops = {
	.hello = fake_hello, .attach = fake_attach, .read = fake_read, .write = fake_write,
	.read_done = fake_read_done, .reset = fake_reset, .poll_prepare = fake_prepare, .poll_dispatch = fake_dispatch,
	.doorbell = fake_doorbell, .doorbell_taken = fake_doorbell_taken,
};

/* ---- the scripted core, and the device on a thread ---- */

struct rig {
	char dir[256], url[320];
	ipc_chan *chan;
	host_shm *state, *ram;
	struct fake fake;
	pthread_t thread;
	_Atomic int status; /* dev_run's, -1 while running */
	uint64_t seq;
};

static void *device_thread(void *arg)
{
	struct rig *r = arg;
	r->status = dev_run(r->url, &fake_ops, &r->fake, &r->fake.loop);
	return NULL;
}

static int setup(void **state)
{
	char err[256];
	struct rig *r = calloc(1, sizeof(*r));
	assert_int_equal(host_runtime_dir_create(r->dir, sizeof(r->dir), err, sizeof(err)), 0);
	assert_int_equal(host_ipc_url(r->dir, "fake", r->url, sizeof(r->url)), 0);
	assert_int_equal(ipc_listen(r->url, NULL, NULL, &r->chan, err, sizeof(err)), IPC_OK);
	r->state = host_shm_create("fake-state", IPC_STATE_SIZE, err, sizeof(err));
	r->ram = host_shm_create("fake-ram", guest_mem_shm_size(RAM_SIZE), err, sizeof(err));
	assert_non_null(r->state);
	assert_non_null(r->ram);
	r->fake.pipe_r = -1;
	r->status = -1;
	r->seq = 500;
	*state = r;
	return 0;
}

static void start_device(struct rig *r)
{
	assert_int_equal(pthread_create(&r->thread, NULL, device_thread, r), 0);
}

/* The device's run returns (it keeps its lock: the thread is joined only). */
static int join_device(struct rig *r)
{
	pthread_join(r->thread, NULL);
	return r->status;
}

static int teardown(void **state)
{
	struct rig *r = *state;
	ipc_close(r->chan);
	host_shm_close(r->state);
	host_shm_close(r->ram);
	host_runtime_dir_remove(r->dir);
	free(r);
	return 0;
}

static void recv_msg(struct rig *r, struct ipc_msg *m, uint8_t type)
{
	char err[256];
	assert_int_equal(ipc_recv(r->chan, m, 5000, err, sizeof(err)), IPC_OK);
	assert_int_equal(m->type, type);
}

static void send_msg(struct rig *r, struct ipc_msg *m)
{
	assert_int_equal(ipc_send(r->chan, m), IPC_OK);
}

static uint64_t expect_hello(struct rig *r)
{
	struct ipc_msg m;
	recv_msg(r, &m, IPC_HELLO);
	assert_int_equal(m.u.hello.version, IPC_PROTO_VERSION);
	assert_string_equal(m.u.hello.name, "fake");
	assert_int_equal(m.u.hello.irqs[0].gsi, FAKE_LINE);
	assert_int_equal(m.u.hello.irqs[1].gsi, IPC_IRQ_ANY);
	return m.seq;
}

#define SLOT_BASE 0xd0001200u
#define SLOT_GSI 17

/* placed: the ranges and lines where the HELLO asked (or a slot), else a
 * base the device did not declare. */
static void send_welcome_placed(struct rig *r, uint64_t hello_seq, bool placed)
{
	struct ipc_msg w = {.type = IPC_WELCOME, .seq = hello_seq};
	w.u.welcome.nranges = 2;
	w.u.welcome.nirqs = 2;
	w.u.welcome.range_base[0] = placed ? FAKE_REG : FAKE_REG + 0x10;
	w.u.welcome.range_base[1] = SLOT_BASE;
	w.u.welcome.irq_gsi[0] = FAKE_LINE;
	w.u.welcome.irq_gsi[1] = SLOT_GSI;
	w.u.welcome.ram_size = RAM_SIZE;
	w.u.welcome.nregions = 1;
	w.u.welcome.ram_regions[0] = (struct guest_mem_region){0, RAM_SIZE};
	w.u.welcome.state_size = IPC_STATE_SIZE;
	snprintf(w.u.welcome.ram_name, sizeof(w.u.welcome.ram_name), "%s", host_shm_name(r->ram));
	snprintf(w.u.welcome.state_name, sizeof(w.u.welcome.state_name), "%s", host_shm_name(r->state));
	send_msg(r, &w);
}

static void send_welcome(struct rig *r, uint64_t hello_seq)
{
	send_welcome_placed(r, hello_seq, true);
}

/* The IRQs the fake sends on attach, numbered from 1 by the library. */
static void expect_attach_irqs(struct rig *r)
{
	struct ipc_msg m;
	recv_msg(r, &m, IPC_IRQ);
	assert_int_equal(m.u.irq.line, FAKE_LINE);
	assert_int_equal(m.u.irq.level, 1);
	uint64_t first = m.seq;
	recv_msg(r, &m, IPC_IRQ);
	assert_int_equal(m.u.irq.level, 0);
	assert_int_equal(m.seq, first + 1);
}

static void attach(struct rig *r)
{
	start_device(r);
	send_welcome(r, expect_hello(r));
	expect_attach_irqs(r);
}

static void send_io(struct rig *r, uint8_t type, uint64_t addr, uint64_t data)
{
	struct ipc_msg m = {.type = type, .seq = ++r->seq};
	m.u.io = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 1, .addr = addr, .data = data};
	send_msg(r, &m);
}

static uint64_t applied_seq(struct rig *r)
{
	struct ipc_state_page *p = host_shm_ptr(r->state);
	return atomic_load_explicit(&p->applied_seq, memory_order_acquire);
}

static void wait_until(_Atomic bool *flag)
{
	for (int i = 0; i < 500 && !*flag; i++)
		host_sleep_ms(10);
	assert_true(*flag);
}

static void shutdown_device(struct rig *r)
{
	struct ipc_msg m = {.type = IPC_SHUTDOWN, .seq = ++r->seq};
	send_msg(r, &m);
	assert_int_equal(join_device(r), 0);
}

/* ---- tests ---- */

static void test_attach_and_serve(void **state)
{
	struct rig *r = *state;
	attach(r);
	assert_int_equal(r->fake.ram_size, RAM_SIZE);
	assert_false(r->fake.resumed);
	assert_int_equal(r->fake.slot_base, SLOT_BASE);
	assert_int_equal(r->fake.slot_gsi, SLOT_GSI);
	assert_memory_equal((uint8_t *)host_shm_ptr(r->ram) + RAM_MARK_GPA, "DEVL", 4);

	send_io(r, IPC_IO_READ, FAKE_REG + 2, 0);
	struct ipc_msg m;
	recv_msg(r, &m, IPC_IO_REPLY);
	assert_int_equal(m.seq, r->seq);
	assert_int_equal(m.u.io.data, FAKE_REG + 2 + 0x1000);

	send_io(r, IPC_IO_WRITE, FAKE_REG, 0x41);
	send_io(r, IPC_IO_WRITE, FAKE_REG, 0x42);
	struct ipc_msg ping = {.type = IPC_PING, .seq = 9999};
	send_msg(r, &ping);
	recv_msg(r, &m, IPC_PONG);
	assert_int_equal(m.seq, 9999);
	/* PING came after the writes: they are applied and acknowledged. */
	assert_int_equal(r->fake.nwrites, 2);
	assert_int_equal(r->fake.writes[1], 0x42);
	assert_int_equal(applied_seq(r), r->seq);

	/* A run is its writes, one by one in order, applied under its seq; a
	 * READ_DONE reaches the device's op and is applied like a write. */
	struct ipc_msg run = {.type = IPC_IO_WRITE_RUN, .seq = ++r->seq};
	run.u.run = (struct ipc_io_run){.space = IPC_SPACE_PIO, .addr = FAKE_REG, .count = 3};
	memcpy(run.u.run.data, "xyz", 3);
	send_msg(r, &run);
	send_io(r, IPC_IO_READ_DONE, FAKE_REG + 1, 0x5a);
	send_msg(r, &ping);
	recv_msg(r, &m, IPC_PONG);
	assert_int_equal(r->fake.nwrites, 5);
	assert_int_equal(r->fake.writes[2], 'x');
	assert_int_equal(r->fake.writes[4], 'z');
	assert_int_equal(r->fake.read_done, 0x5a);
	assert_int_equal(applied_seq(r), r->seq);
	/* A run that carries the READ_DONE posted after it is the two: the
	 * writes, then the read done, applied under the read done's seq. */
	run.seq = ++r->seq;
	run.u.run.count = 2;
	memcpy(run.u.run.data, "pq", 2);
	run.u.run.then_read_done = true;
	run.u.run.read_done_seq = ++r->seq;
	run.u.run.read_done = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 1, .addr = FAKE_REG + 1, .data = 0x6b};
	send_msg(r, &run);
	send_msg(r, &ping);
	recv_msg(r, &m, IPC_PONG);
	assert_int_equal(r->fake.nwrites, 7);
	assert_int_equal(r->fake.writes[6], 'q');
	assert_int_equal(r->fake.read_done, 0x6b);
	assert_int_equal(applied_seq(r), r->seq);

	struct ipc_msg reset = {.type = IPC_RESET, .seq = ++r->seq};
	send_msg(r, &reset);
	send_msg(r, &ping);
	recv_msg(r, &m, IPC_PONG);
	assert_int_equal(r->fake.resets, 1);
	assert_int_equal(applied_seq(r), reset.seq);
	shutdown_device(r);
}

/* Writes and resets sent before WELCOME were meant for a previous
 * incarnation: applied once attached.  Reads are dropped. */
static void test_early_writes_kept_reads_dropped(void **state)
{
	struct rig *r = *state;
	start_device(r);
	uint64_t hello = expect_hello(r);
	send_io(r, IPC_IO_WRITE, FAKE_REG, 0x11);
	send_io(r, IPC_IO_READ, FAKE_REG, 0);
	send_io(r, IPC_IO_WRITE, FAKE_REG, 0x22);
	uint64_t last_early = r->seq;
	send_welcome(r, hello);
	expect_attach_irqs(r);
	struct ipc_msg ping = {.type = IPC_PING, .seq = 7}, m;
	send_msg(r, &ping);
	recv_msg(r, &m, IPC_PONG); /* no IO_REPLY before it */
	assert_int_equal(r->fake.nwrites, 2);
	assert_int_equal(r->fake.writes[0], 0x11);
	assert_int_equal(r->fake.writes[1], 0x22);
	assert_int_equal(applied_seq(r), last_early);
	shutdown_device(r);
}

static void test_reject_refuses(void **state)
{
	struct rig *r = *state;
	start_device(r);
	struct ipc_msg m = {.type = IPC_REJECT, .seq = expect_hello(r)};
	strcpy(m.u.reason, "range overlaps RAM");
	send_msg(r, &m);
	assert_int_equal(join_device(r), IPC_DEVICE_EXIT_REFUSED);
	assert_int_equal(r->fake.nwrites, 0);
}

/* A WELCOME that moves an explicit range is not the core we spoke to. */
static void test_misplacing_welcome_refused(void **state)
{
	struct rig *r = *state;
	start_device(r);
	send_welcome_placed(r, expect_hello(r), false);
	assert_int_equal(join_device(r), 1);
	assert_null(r->fake.page); /* never attached */
}

static void test_core_gone_ends_the_run(void **state)
{
	struct rig *r = *state;
	attach(r);
	ipc_close(r->chan);
	r->chan = NULL;
	assert_int_equal(join_device(r), 0);
	char err[256];
	assert_int_equal(ipc_listen(r->url, NULL, NULL, &r->chan, err, sizeof(err)), IPC_OK);
}

/* A host handle the device registers, its timer, and a wake-up from
 * another thread each reach poll_dispatch. */
static void test_event_loop_handles_timer_and_wake(void **state)
{
	struct rig *r = *state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	r->fake.pipe_r = p[0];
	attach(r);
	assert_int_equal(write(p[1], "x", 1), 1);
	wait_until(&r->fake.pipe_seen);

	/* A deadline 100 ms away is met although nothing else happens. */
	dev_lock(r->fake.loop);
	r->fake.deadline = host_now_ns() + 100000000ull;
	dev_wake(r->fake.loop); /* the loop takes the new deadline */
	dev_unlock(r->fake.loop);
	uint64_t t0 = host_now_ns();
	wait_until(&r->fake.deadline_met);
	assert_true(host_now_ns() - t0 >= 90000000ull);

	/* A wake-up alone runs the loop at once, not at its next periodic
	 * look at the channel (every 50 ms): 20 in a row take well under
	 * 20 * 25 ms. */
	t0 = host_now_ns();
	for (int round = 0; round < 20; round++) {
		unsigned before = r->fake.dispatches;
		dev_wake(r->fake.loop);
		while (r->fake.dispatches == before && host_now_ns() - t0 < 5000000000ull)
			host_sleep_ms(0);
	}
	assert_true(host_now_ns() - t0 < 250000000ull);

	/* dev_wait_change returns once the loop has handled a message. */
	dev_lock(r->fake.loop);
	send_io(r, IPC_IO_WRITE, FAKE_REG, 0x33);
	while (r->fake.nwrites == 0)
		dev_wait_change(r->fake.loop);
	dev_unlock(r->fake.loop);
	assert_int_equal(r->fake.writes[0], 0x33);
	shutdown_device(r);
	close(p[0]);
	close(p[1]);
}

/* The core's side of a ring (vmm-core's devproxy does the same). */
static uint32_t ring(struct rig *r, unsigned doorbell, unsigned value)
{
	struct ipc_doorbell *db = &((struct ipc_state_page *)host_shm_ptr(r->state))->doorbell;
	atomic_fetch_or(&db->pending[doorbell], 1u << value);
	uint32_t n = atomic_fetch_add(&db->rung, 1) + 1;
	host_shared_wake(&db->rung);
	return n;
}

/* Until the device has taken ring n (a liveness bound, not a speed test). */
static void wait_taken(struct rig *r, uint32_t n)
{
	struct ipc_doorbell *db = &((struct ipc_state_page *)host_shm_ptr(r->state))->doorbell;
	for (int i = 0; i < 500 && atomic_load(&db->taken) != n; i++)
		host_shared_wait(&db->taken, atomic_load(&db->taken), 10000);
	assert_int_equal(atomic_load(&db->taken), n);
}

/* A device thread waiting for a change (dev-serial's stdin reader waiting
 * for room) until the device has taken `calls` doorbell calls. */
struct change_waiter {
	struct rig *r;
	unsigned calls;
	_Atomic bool waiting, done;
};

static void *wait_for_doorbell_calls(void *arg)
{
	struct change_waiter *w = arg;
	dev_lock(w->r->fake.loop);
	while (w->r->fake.doorbell_calls < w->calls) {
		w->waiting = true;
		dev_wait_change(w->r->fake.loop);
	}
	dev_unlock(w->r->fake.loop);
	w->done = true;
	return NULL;
}

/* Rings reach the device's doorbell op without a message, those made while
 * no process was there included, and rings made while the device is busy
 * are taken together and wake dev_wait_change; doorbell_taken follows each
 * call, once the rings are stored as taken; the run still ends cleanly
 * with the thread. */
static void test_doorbell_rings_reach_the_device(void **state)
{
	struct rig *r = *state;
	assert_true(host_shared_wait_supported()); /* this test is built on Linux only */
	r->fake.declare_doorbell = true;
	uint32_t n = ring(r, 1, 2); /* before the device is there */
	attach(r);
	wait_taken(r, n);
	dev_lock(r->fake.loop);
	assert_int_equal(r->fake.doorbell_bits[1], 1u << 2);
	assert_int_equal(r->fake.doorbell_calls, 1);
	assert_int_equal(r->fake.taken_calls, 1);
	assert_int_equal(r->fake.taken_seen, n);
	dev_unlock(r->fake.loop);

	wait_taken(r, n = ring(r, 0, 3));
	dev_lock(r->fake.loop);
	assert_int_equal(r->fake.doorbell_bits[0], 1u << 3);
	assert_int_equal(r->fake.doorbell_calls, 2);
	/* Busy: two rings wait for the lock, then go in one call. */
	ring(r, 0, 0);
	n = ring(r, 0, 1);
	dev_unlock(r->fake.loop);
	wait_taken(r, n);
	dev_lock(r->fake.loop);
	assert_int_equal(r->fake.doorbell_bits[0], (1u << 3) | 0x3);
	assert_int_equal(r->fake.doorbell_calls, 3);
	assert_int_equal(r->fake.taken_calls, 3);
	assert_int_equal(r->fake.taken_seen, n);
	assert_int_equal(r->fake.nwrites, 0); /* no message carried them */
	dev_unlock(r->fake.loop);

	/* A ring wakes a thread in dev_wait_change, as a message would. */
	struct change_waiter w = {.r = r, .calls = 4};
	pthread_t waiter;
	assert_int_equal(pthread_create(&waiter, NULL, wait_for_doorbell_calls, &w), 0);
	wait_until(&w.waiting);
	dev_lock(r->fake.loop); /* it set waiting under the lock: now it waits */
	dev_unlock(r->fake.loop);
	wait_taken(r, ring(r, 3, 0));
	wait_until(&w.done);
	pthread_join(waiter, NULL);
	shutdown_device(r);
}

/* The core's level thread (vmm-core's devproxy does the same): asleep on
 * `said` until the device says a level. */
struct level_sleeper {
	struct ipc_irq_levels *lv;
	uint32_t said;  /* before */
	_Atomic bool asleep;
	bool woken;     /* said moved, and the thread woke long before its bound */
	pthread_t thread;
};

static void *level_sleeper_main(void *arg)
{
	struct level_sleeper *s = arg;
	uint64_t deadline = host_now_ns() + 30000000000ull; /* a missed wake-up: fails */
	atomic_store(&s->lv->core_sleeps, 1);
	s->asleep = true;
	while (atomic_load(&s->lv->said) == s->said && host_now_ns() < deadline)
		host_shared_wait(&s->lv->said, s->said, 30000000);
	atomic_store(&s->lv->core_sleeps, 0);
	s->woken = atomic_load(&s->lv->said) != s->said && host_now_ns() < deadline;
	return NULL;
}

/* A level-triggered line is declared published: its levels go to the state
 * page, each saying counted (an unchanged level too: the core may have
 * lowered the line meanwhile), and a core thread asleep on the count is
 * woken.  The edge-triggered line stays a message. */
static void test_level_lines_are_published(void **state)
{
	struct rig *r = *state;
	assert_true(host_shared_wait_supported()); /* this test is built on Linux only */
	struct ipc_state_page *p = host_shm_ptr(r->state);
	atomic_store(&p->irq.level, 0); /* the core clears the word at each HELLO */
	start_device(r);
	struct ipc_msg m;
	recv_msg(r, &m, IPC_HELLO);
	assert_int_equal(m.u.hello.irqs[0].flags, 0); /* edge */
	assert_int_equal(m.u.hello.irqs[1].flags, IPC_IRQ_PUBLISHED);
	send_welcome(r, m.seq);
	expect_attach_irqs(r); /* the edge line's, as messages */

	struct level_sleeper s = {.lv = &p->irq, .said = atomic_load(&p->irq.said)};
	assert_int_equal(pthread_create(&s.thread, NULL, level_sleeper_main, &s), 0);
	wait_until(&s.asleep);
	dev_lock(r->fake.loop);
	dev_irq(r->fake.loop, SLOT_GSI, 1);
	dev_unlock(r->fake.loop);
	pthread_join(s.thread, NULL);
	assert_true(s.woken);
	assert_int_equal(atomic_load(&p->irq.said), s.said + 1);
	assert_int_equal(atomic_load(&p->irq.level), 1u << 1); /* line 1 of the HELLO */

	dev_lock(r->fake.loop);
	dev_irq(r->fake.loop, SLOT_GSI, 1); /* said again */
	assert_int_equal(atomic_load(&p->irq.said), s.said + 2);
	assert_int_equal(atomic_load(&p->irq.level), 1u << 1);
	dev_irq(r->fake.loop, SLOT_GSI, 0);
	assert_int_equal(atomic_load(&p->irq.said), s.said + 3);
	assert_int_equal(atomic_load(&p->irq.level), 0);
	dev_unlock(r->fake.loop);

	/* None of them was a message: the next one is the PING's answer. */
	struct ipc_msg ping = {.type = IPC_PING, .seq = ++r->seq};
	send_msg(r, &ping);
	recv_msg(r, &m, IPC_PONG);
	assert_int_equal(m.seq, ping.seq);
	shutdown_device(r);
}

int main(void)
{
	log_init("test_devlib");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_attach_and_serve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_early_writes_kept_reads_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misplacing_welcome_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_gone_ends_the_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_loop_handles_timer_and_wake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_doorbell_rings_reach_the_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_lines_are_published, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
