/* test_core_devproxy.c - a device proxy against a scripted device process
 * (this test, on the other end of a real nng socket): attach and reject,
 * round-trip and shadow reads, posted writes, doorbells, published line levels, a restart
 * that resumes, and a hostile device marked broken instead of hanging or crashing the core. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus.h"
#include "devproxy.h"
#include "guest_mem.h"
#include "host.h"
#include "stats.h"

#define RAM_SIZE (1u << 20)
#define LSR 0x3fd /* shadowed, slot 5 */
#define THR 0x3f8 /* stream */
#define IER 0x3f9 /* neither: reads are round trips, writes are ordered */
#define IIR 0x3fa /* read-acknowledge, slot 6 (with uart_hello_iir) */
#define DEBUG_PORT 0x10000996ull /* a debug port range (MMIO, above RAM) */

struct fixture {
	char dir[256], url[300];
	struct bus bus;
	host_shm *ram;
	struct devproxy *proxy;
	ipc_chan *dev;                /* the device's end */
	struct ipc_msg read_done;     /* the READ_DONE a received run carried, next for dev_recv */
	bool has_read_done;
	host_shm *state_shm;          /* the device's mapping of its state page */
	struct ipc_state_page *state;
	struct slot_table slots;
	_Atomic int irqs, lowers, quits;
	_Atomic int level[24], sets[24]; /* each line's level as the board has it, and its settings */
};

static void hook_irq(void *opaque, unsigned line, int level)
{
	struct fixture *f = opaque;
	if (line == 4 && level == 1)
		f->irqs++;
	if (line == 4 && level == 0)
		f->lowers++;
	assert_true(line < 24);
	f->level[line] = level;
	f->sets[line]++;
}

static void hook_quit(void *opaque)
{
	struct fixture *f = opaque;
	f->quits++;
}

static struct ipc_msg uart_hello(void)
{
	struct ipc_msg m = {.type = IPC_HELLO, .seq = 1};
	struct ipc_hello *h = &m.u.hello;
	h->version = IPC_PROTO_VERSION;
	snprintf(h->name, sizeof(h->name), "serial");
	h->nranges = 1;
	h->ranges[0] = (struct ipc_range){.space = IPC_SPACE_PIO, .base = 0x3f8, .size = 8};
	h->nirqs = 1;
	h->irqs[0].gsi = 4;
	h->nregs = 2;
	h->regs[0] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_SHADOW, 5, LSR, 0};
	h->regs[1] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_STREAM, 0, THR, 0};
	return m;
}

/* With IIR as a read-acknowledge register (a 16550's, as dev-serial
 * declares it). */
static struct ipc_msg uart_hello_iir(void)
{
	struct ipc_msg m = uart_hello();
	struct ipc_hello *h = &m.u.hello;
	h->ranges[0].has_irq = true;
	h->regs[h->nregs++] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_READ_ACK, 6, IIR, 0};
	return m;
}

/* The next message to the device.  A run that carries a READ_DONE (ipc.h,
 * struct ipc_io_run) comes as the two messages the device applies it as:
 * the run (its then_read_done still set, for the tests that check it),
 * then the READ_DONE. */
static struct ipc_msg dev_recv(struct fixture *f)
{
	if (f->has_read_done) {
		f->has_read_done = false;
		return f->read_done;
	}
	struct ipc_msg m;
	char err[128];
	assert_int_equal(ipc_recv(f->dev, &m, 5000, err, sizeof(err)), IPC_OK);
	if (m.type == IPC_IO_WRITE_RUN && m.u.run.then_read_done) {
		f->read_done = (struct ipc_msg){.type = IPC_IO_READ_DONE, .seq = m.u.run.read_done_seq};
		f->read_done.u.io = m.u.run.read_done;
		f->has_read_done = true;
	}
	return m;
}

/* The device process dies.  pair0 refuses a new peer until the core has
 * seen the old one go, so give it a moment before the next incarnation dials. */
static void dev_die(struct fixture *f)
{
	ipc_close(f->dev);
	f->dev = NULL;
	host_sleep_ms(100);
}

/* Dial as the device and say hello; returns what the core answered. */
static struct ipc_msg dev_hello(struct fixture *f, const struct ipc_msg *hello)
{
	char err[128];
	assert_int_equal(ipc_dial(f->url, 5000, &f->dev, err, sizeof(err)), IPC_OK);
	assert_int_equal(ipc_send(f->dev, hello), IPC_OK);
	return dev_recv(f);
}

static void dev_attach_with(struct fixture *f, const struct ipc_msg *hello)
{
	struct ipc_msg w = dev_hello(f, hello);
	assert_int_equal(w.type, IPC_WELCOME);
	assert_int_equal(w.u.welcome.ram_size, RAM_SIZE);
	assert_int_equal(w.u.welcome.nregions, 1);
	assert_int_equal(w.u.welcome.ram_regions[0].gpa, 0);
	assert_int_equal(w.u.welcome.ram_regions[0].size, RAM_SIZE);
	assert_string_equal(w.u.welcome.ram_name, host_shm_name(f->ram));
	char err[128];
	if (!f->state_shm) {
		f->state_shm = host_shm_open(w.u.welcome.state_name, w.u.welcome.state_size, err,
					     sizeof(err));
		assert_non_null(f->state_shm);
		f->state = host_shm_ptr(f->state_shm);
	}
	assert_int_equal(devproxy_wait_attached(f->proxy, 5000, err, sizeof(err)), 0);
}

static void dev_attach(struct fixture *f)
{
	struct ipc_msg hello = uart_hello();
	dev_attach_with(f, &hello);
}

static void dev_publish_lsr(struct fixture *f, uint64_t lsr, uint64_t applied_seq)
{
	atomic_store(&f->state->shadow[5], lsr);
	atomic_store(&f->state->applied_seq, applied_seq);
	f->state->magic = IPC_STATE_MAGIC;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[128];
	assert_int_equal(host_runtime_dir_create(f->dir, sizeof(f->dir), err, sizeof(err)), 0);
	assert_int_equal(host_ipc_url(f->dir, "serial", f->url, sizeof(f->url)), 0);
	f->ram = host_shm_create("test-ram", guest_mem_shm_size(RAM_SIZE), err, sizeof(err));
	assert_non_null(f->ram);
	bus_init(&f->bus, RAM_SIZE);
	static const struct guest_mem ram_layout = {.size = RAM_SIZE}; /* all at 0 */
	pthread_mutex_init(&f->slots.lock, NULL);
	struct devproxy_board board = {
		.bus = &f->bus,
		.slots = &f->slots,
		.ram_name = host_shm_name(f->ram),
		.ram = &ram_layout,
		.hooks = {.opaque = f, .irq = hook_irq, .quit = hook_quit},
	};
	f->proxy = devproxy_create("serial", f->url, &board, err, sizeof(err));
	assert_non_null(f->proxy);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	/* The device goes first, as one that took SHUTDOWN would: the proxy
	 * then does not wait for it. */
	if (f->proxy)
		devproxy_abort(f->proxy);
	if (f->dev)
		ipc_close(f->dev);
	if (f->proxy)
		devproxy_shutdown_and_destroy(f->proxy);
	if (f->state_shm)
		host_shm_close(f->state_shm);
	host_shm_close(f->ram);
	host_runtime_dir_remove(f->dir);
	free(f);
	return 0;
}

/* A vCPU reading on its own thread while the test plays the device. */
struct vcpu_read {
	struct bus *bus;
	uint16_t port;
	uint64_t value;
	pthread_t thread;
};

static void *vcpu_read_thread(void *arg)
{
	struct vcpu_read *r = arg;
	r->value = bus_read(r->bus, IPC_SPACE_PIO, r->port, 1);
	return NULL;
}

static void start_read(struct fixture *f, struct vcpu_read *r, uint16_t port)
{
	*r = (struct vcpu_read){.bus = &f->bus, .port = port};
	assert_int_equal(pthread_create(&r->thread, NULL, vcpu_read_thread, r), 0);
}

static uint64_t finish_read(struct vcpu_read *r)
{
	pthread_join(r->thread, NULL);
	return r->value;
}

/* Read the shadowed LSR until it answers `want` (the receive thread works
 * asynchronously); false after 5 s. */
static bool lsr_becomes(struct fixture *f, uint64_t want)
{
	for (int i = 0; i < 500; i++) {
		if (bus_read(&f->bus, IPC_SPACE_PIO, LSR, 1) == want)
			return true;
		host_sleep_ms(10);
	}
	return false;
}

static void test_hostile_hello_rejected(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello();
	hello.u.hello.irqs[0].gsi = 99;
	struct ipc_msg answer = dev_hello(f, &hello);
	assert_int_equal(answer.type, IPC_REJECT);
	assert_non_null(strstr(answer.u.reason, "irq"));
	char err[256];
	assert_int_equal(devproxy_wait_attached(f->proxy, 100, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "irq"));
	/* Nothing was put on the bus. */
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, THR, 1), 0xff);
}

static void test_hello_over_ram_rejected(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello();
	hello.u.hello.ranges[0] = (struct ipc_range){.space = IPC_SPACE_MMIO, .base = 0x1000, .size = 0x1000};
	hello.u.hello.nregs = 0;
	struct ipc_msg answer = dev_hello(f, &hello);
	assert_int_equal(answer.type, IPC_REJECT);
	assert_non_null(strstr(answer.u.reason, "RAM"));
}

static void test_round_trip_read_and_posted_write(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	struct vcpu_read r;
	start_read(f, &r, IER);
	struct ipc_msg m = dev_recv(f);
	assert_int_equal(m.type, IPC_IO_READ);
	assert_int_equal(m.u.io.addr, IER);
	assert_int_equal(m.u.io.size, 1);
	struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = m.seq};
	reply.u.io.data = 0x0f;
	assert_int_equal(ipc_send(f->dev, &reply), IPC_OK);
	assert_int_equal(finish_read(&r), 0x0f);

	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'x');
	m = dev_recv(f); /* a run of one byte, sent by the receive thread within a few ms */
	assert_int_equal(m.type, IPC_IO_WRITE_RUN);
	assert_int_equal(m.u.run.count, 1);
	assert_int_equal(m.u.run.data[0], 'x');
	assert_true(m.seq > reply.seq);
}

static void test_shadow_read_needs_no_device(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	dev_publish_lsr(f, 0x60, 0);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, LSR, 1), 0x60);
	/* A stream write does not hold shadow reads back... */
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'a');
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, LSR, 1), 0x60);
	assert_int_equal(dev_recv(f).type, IPC_IO_WRITE_RUN);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, LSR, 1), 0x60);
}

/* Stream writes wait in a run, which leaves before any later message: the
 * device sees the bytes in order, then the ordered write, in seq order. */
static void test_stream_writes_leave_as_one_run(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	for (const char *c = "abc"; *c; c++)
		bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, (uint8_t)*c);
	bus_write(&f->bus, IPC_SPACE_PIO, IER, 1, 0x02);
	struct ipc_msg run = dev_recv(f), w = dev_recv(f);
	assert_int_equal(run.type, IPC_IO_WRITE_RUN);
	assert_int_equal(run.u.run.addr, THR);
	assert_int_equal(run.u.run.count, 3);
	assert_memory_equal(run.u.run.data, "abc", 3);
	assert_int_equal(w.type, IPC_IO_WRITE);
	assert_int_equal(w.u.io.addr, IER);
	assert_true(w.seq > run.seq);
}

/* A write declared to change only some shadows (IPC_REG_CHANGES_ONLY, as
 * dev-serial declares IER) holds back reads of those, not of the others:
 * Linux's console writes IER, then polls LSR. */
static void test_write_holds_back_only_the_shadows_it_changes(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello();
	hello.u.hello.regs[hello.u.hello.nregs++] = (struct ipc_reg){
		IPC_SPACE_PIO, 1, IPC_REG_SHADOW | IPC_REG_CHANGES_ONLY, 7, IER, 1u << 7};
	dev_attach_with(f, &hello);
	atomic_store(&f->state->shadow[7], 0x0f);
	dev_publish_lsr(f, 0x60, 0);
	bus_write(&f->bus, IPC_SPACE_PIO, IER, 1, 0x00);
	struct ipc_msg w = dev_recv(f);
	assert_int_equal(w.type, IPC_IO_WRITE);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, LSR, 1), 0x60); /* not held back */
	struct vcpu_read r;
	start_read(f, &r, IER); /* held back: a round trip */
	struct ipc_msg m = dev_recv(f);
	assert_int_equal(m.type, IPC_IO_READ);
	struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = m.seq};
	reply.u.io.data = 0x00;
	assert_int_equal(ipc_send(f->dev, &reply), IPC_OK);
	assert_int_equal(finish_read(&r), 0x00);
	atomic_store(&f->state->shadow[7], 0x00);
	dev_publish_lsr(f, 0x60, w.seq);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IER, 1), 0x00);
}

/* The word dev-serial publishes for IIR: FIFOs on, THRE the event. */
#define IIR_NONE 0xc1
#define IIR_THRI 0xc2
#define IIR_RDI 0xc4
static void dev_publish_iir(struct fixture *f, uint64_t word, uint64_t applied_seq)
{
	atomic_store(&f->state->shadow[6], word);
	atomic_store(&f->state->applied_seq, applied_seq);
	f->state->magic = IPC_STATE_MAGIC;
}

/* A UART with the IIR word attached, THRE pending in what it published. */
static void dev_attach_thre_pending(struct fixture *f)
{
	struct ipc_msg hello = uart_hello_iir();
	dev_attach_with(f, &hello);
	dev_publish_iir(f, IIR_NONE | IIR_THRI << 8 | IPC_READ_ACK_PENDING | IPC_READ_ACK_REPORTS |
				   IPC_READ_ACK_IDLE | IPC_READ_ACK_STREAM_RAISES, 0);
}

/* IIR without a round trip: an answer that reports THRE acknowledges it
 * (posted as READ_DONE after the line is lowered), the core then answers
 * from what it knows ahead of the device (its own acknowledge, its own THR
 * writes) until the device has applied them. */
static void test_iir_answered_by_the_core(void **state)
{
	struct fixture *f = *state;
	dev_attach_thre_pending(f);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_THRI);
	assert_int_equal(f->lowers, 1); /* nothing else pending: lowered before READ_DONE left */
	struct ipc_msg done = dev_recv(f);
	assert_int_equal(done.type, IPC_IO_READ_DONE);
	assert_int_equal(done.u.io.addr, IIR);
	assert_int_equal(done.u.io.data, IIR_THRI);
	/* Not applied yet, the word still says pending: the core knows better. */
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_NONE);
	/* A THR write raises it again before the device has seen either. */
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'x');
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_THRI);
	struct ipc_msg run = dev_recv(f), done2 = dev_recv(f);
	assert_int_equal(run.type, IPC_IO_WRITE_RUN);
	assert_true(run.u.run.then_read_done); /* one message: the burst and its acknowledge */
	assert_int_equal(done2.type, IPC_IO_READ_DONE);
	assert_true(run.seq > done.seq && done2.seq > run.seq);
	/* Once the device has applied everything, its word is the truth. */
	uint64_t idle = IIR_NONE | IIR_THRI << 8 | IPC_READ_ACK_REPORTS | IPC_READ_ACK_IDLE;
	dev_publish_iir(f, idle | IPC_READ_ACK_STREAM_RAISES, done2.seq);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_NONE);
	assert_int_equal(f->lowers, 2);
	/* With DLAB set a write to THR's address sets the divisor: THRE stays
	 * as it was. */
	dev_publish_iir(f, idle, done2.seq);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 0x01);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_NONE);
	assert_int_equal(dev_recv(f).type, IPC_IO_WRITE_RUN);
	assert_int_equal(f->lowers, 2);
}

/* The device's messages so far have all been handled by the core's
 * receive thread (which handles them in order): a PING answered. */
static void dev_sync(struct fixture *f)
{
	struct ipc_msg ping = {.type = IPC_PING, .seq = 99};
	assert_int_equal(ipc_send(f->dev, &ping), IPC_OK);
	struct ipc_msg pong = dev_recv(f);
	assert_int_equal(pong.type, IPC_PONG);
}

static void dev_send_irq(struct fixture *f, uint32_t level)
{
	struct ipc_msg irq = {.type = IPC_IRQ, .seq = 7};
	irq.u.irq = (struct ipc_irq){.line = 4, .level = level};
	assert_int_equal(ipc_send(f->dev, &irq), IPC_OK);
}

/* THRE raised by the core: the THR write that makes the event pending,
 * with the word saying the event holds the line up (IER's ETBEI), raises
 * IRQ 4 at once on the vCPU's thread, and the run says so with how many of
 * the device's IPC_IRQ the core had applied; an acknowledge lowers the line
 * and its READ_DONE says so the same way.  Writes while the event is
 * pending raise nothing more; with ETBEI off nothing is raised.  A
 * restarted device learns the count in its WELCOME. */
static void dev_expect_nothing(struct fixture *f);

/* The 8250's interrupt-driven output: a burst to THR, then the next
 * interrupt's IIR read, again and again.  The bursts and their
 * acknowledges reach the device complete and in order, and several to a
 * frame (16 here: one frame unless every gap between bursts took 1 ms). */
static void test_bursts_share_a_frame(void **state)
{
	struct fixture *f = *state;
	dev_attach_thre_pending(f);
	uint64_t frames = atomic_load(&core_stats.frames_sent), msgs = atomic_load(&core_stats.frame_msgs);
	enum { BURSTS = 16, BURST = 4 };
	for (unsigned i = 0; i < BURSTS; i++) {
		for (unsigned j = 0; j < BURST; j++)
			bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'a' + i);
		assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_THRI);
	}
	uint64_t seq = 0;
	for (unsigned i = 0; i < BURSTS; i++) {
		struct ipc_msg run = dev_recv(f), done = dev_recv(f);
		assert_int_equal(run.type, IPC_IO_WRITE_RUN);
		assert_int_equal(run.u.run.count, BURST);
		for (unsigned j = 0; j < BURST; j++)
			assert_int_equal(run.u.run.data[j], 'a' + i);
		assert_int_equal(done.type, IPC_IO_READ_DONE);
		assert_int_equal(done.u.io.data, IIR_THRI);
		assert_true(run.seq > seq && done.seq > run.seq);
		seq = done.seq;
	}
	dev_expect_nothing(f);
	assert_int_equal(atomic_load(&core_stats.frame_msgs) - msgs, BURSTS);
	uint64_t sent = atomic_load(&core_stats.frames_sent) - frames;
	assert_true(sent >= 1 && sent < BURSTS);
}

static void test_thre_raised_by_the_core(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello_iir();
	dev_attach_with(f, &hello);
	uint64_t idle = IIR_NONE | IIR_THRI << 8 | IPC_READ_ACK_REPORTS | IPC_READ_ACK_IDLE |
			IPC_READ_ACK_STREAM_RAISES | IPC_READ_ACK_LINE_UP;
	dev_publish_iir(f, idle, 0);
	dev_send_irq(f, 1);
	dev_send_irq(f, 0);
	dev_sync(f);
	assert_int_equal(f->irqs, 1);
	assert_int_equal(f->lowers, 1);

	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'a');
	assert_int_equal(f->irqs, 2); /* at the write, no device involved */
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'b');
	assert_int_equal(f->irqs, 2);
	/* The guest's handler reads IIR before the device has seen the run. */
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_THRI);
	assert_int_equal(f->lowers, 2);
	struct ipc_msg run = dev_recv(f), done = dev_recv(f);
	assert_int_equal(run.type, IPC_IO_WRITE_RUN);
	assert_int_equal(run.u.run.count, 2);
	assert_int_equal(run.u.run.line.action, IPC_LINE_RAISED);
	assert_int_equal(run.u.run.line.irqs_applied, 2);
	assert_int_equal(done.type, IPC_IO_READ_DONE);
	assert_int_equal(done.u.io.line.action, IPC_LINE_LOWERED);
	assert_int_equal(done.u.io.line.irqs_applied, 2);

	/* A "high" of the device's applied before the next raise is counted. */
	dev_send_irq(f, 1);
	dev_sync(f);
	assert_int_equal(f->irqs, 3);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'c');
	assert_int_equal(f->irqs, 4);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_THRI);
	run = dev_recv(f);
	assert_int_equal(run.u.run.line.action, IPC_LINE_RAISED);
	assert_int_equal(run.u.run.line.irqs_applied, 3);
	done = dev_recv(f);
	assert_int_equal(done.u.io.line.irqs_applied, 3);

	/* ETBEI off (the device applied everything): a THR write raises
	 * nothing, its run touches no line. */
	dev_publish_iir(f, IIR_NONE | IIR_NONE << 8 | IPC_READ_ACK_IDLE | IPC_READ_ACK_STREAM_RAISES,
			done.seq);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'd');
	assert_int_equal(f->irqs, 4);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_NONE);
	run = dev_recv(f);
	assert_int_equal(run.type, IPC_IO_WRITE_RUN);
	assert_int_equal(run.u.run.line.action, IPC_LINE_UNTOUCHED);

	/* A run raised for a device that dies before taking it reaches the
	 * next incarnation, whose count starts at the WELCOME's. */
	dev_publish_iir(f, idle, run.seq);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'e');
	assert_int_equal(f->irqs, 5);
	dev_die(f);
	/* The run left while no device was there: nng hands it to the next
	 * one before or after its WELCOME (devlib keeps such early writes). */
	struct ipc_msg w = dev_hello(f, &hello);
	run = dev_recv(f);
	if (w.type != IPC_WELCOME) {
		struct ipc_msg first = w;
		w = run;
		run = first;
	}
	assert_int_equal(w.type, IPC_WELCOME);
	assert_int_equal(w.u.welcome.irqs_applied, 3);
	assert_int_equal(run.type, IPC_IO_WRITE_RUN);
	assert_int_equal(run.u.run.line.action, IPC_LINE_RAISED);
	assert_int_equal(run.u.run.line.irqs_applied, 3);
}

static void dev_expect_nothing(struct fixture *f);

/* Linux's 8250 turns ETBEI off when it has nothing more to send and then
 * reads IIR, and on again when the writer has more: such IER writes change
 * only the bit the word names, so they hold back only IER's own shadow,
 * and IIR is answered at once ("none" with the event disabled; THRE,
 * raised with the line, once enabled) instead of waiting for the device to
 * catch up with the output before them.  An IER write that changes
 * anything else is ordered as before: the next IIR read is the device's. */
static void test_etbei_answered_by_the_core(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello_iir();
	struct ipc_hello *h = &hello.u.hello;
	h->regs[h->nregs++] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_SHADOW | IPC_REG_CHANGES_ONLY, 7, IER,
						1u << 7 | 1u << 6};
	dev_attach_with(f, &hello);
	uint64_t on = IIR_NONE | IIR_THRI << 8 | IPC_READ_ACK_REPORTS | IPC_READ_ACK_IDLE |
		      IPC_READ_ACK_STREAM_RAISES | IPC_READ_ACK_LINE_UP | IPC_READ_ACK_ENABLE_RAISES |
		      IPC_READ_ACK_ENABLED | 0x02ull << 48 | 7ull << 56;
	atomic_store(&f->state->shadow[7], 0x03);
	dev_publish_iir(f, on, 0);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'a');
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_THRI);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'b');
	bus_write(&f->bus, IPC_SPACE_PIO, IER, 1, 0x01);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_NONE);
	struct ipc_msg run = dev_recv(f), done = dev_recv(f), run2 = dev_recv(f), ier = dev_recv(f);
	assert_int_equal(run.type, IPC_IO_WRITE_RUN);
	assert_int_equal(done.type, IPC_IO_READ_DONE);
	assert_int_equal(run2.type, IPC_IO_WRITE_RUN);
	assert_int_equal(ier.type, IPC_IO_WRITE);
	assert_int_equal(ier.u.io.data, 0x01);
	/* Nothing else held IRQ 4 up: lowered with the write, and noted. */
	assert_int_equal(ier.u.io.line.action, IPC_LINE_LOWERED);
	dev_expect_nothing(f); /* no IO_READ: the core answered */
	/* The device applied it all: ETBEI off in its word and shadow.  On
	 * again (the writer has more, the 8250's start_tx): THRE pending and
	 * IRQ 4 raised at the write, the IER write noted, IIR answered. */
	dev_publish_iir(f, (on & ~IPC_READ_ACK_ENABLED) | IPC_READ_ACK_PENDING, ier.seq);
	atomic_store(&f->state->shadow[7], 0x01);
	int raised = f->irqs;
	bus_write(&f->bus, IPC_SPACE_PIO, IER, 1, 0x03);
	assert_int_equal(f->irqs, raised + 1);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_THRI);
	ier = dev_recv(f);
	assert_int_equal(ier.type, IPC_IO_WRITE);
	assert_int_equal(ier.u.io.line.action, IPC_LINE_RAISED);
	assert_int_equal(dev_recv(f).type, IPC_IO_READ_DONE);
	/* An IER write that changes more (ERBFI) is ordered: IIR asks. */
	bus_write(&f->bus, IPC_SPACE_PIO, IER, 1, 0x02);
	struct vcpu_read r;
	start_read(f, &r, IIR);
	ier = dev_recv(f);
	assert_int_equal(ier.type, IPC_IO_WRITE);
	assert_int_equal(ier.u.io.line.action, IPC_LINE_UNTOUCHED);
	struct ipc_msg read = dev_recv(f);
	assert_int_equal(read.type, IPC_IO_READ);
	struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = read.seq};
	reply.u.io.data = IIR_NONE;
	assert_int_equal(ipc_send(f->dev, &reply), IPC_OK);
	assert_int_equal(finish_read(&r), IIR_NONE);
}

/* A stream write posted while an ordered write (here LCR, which may set
 * DLAB) is not applied yet: whether it raised THRE is unknown, so IIR goes
 * to the device until it has applied both. */
static void test_iir_after_unsettled_stream_write_asks_the_device(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello_iir();
	dev_attach_with(f, &hello);
	dev_publish_iir(f, IIR_NONE | IIR_THRI << 8 | IPC_READ_ACK_REPORTS | IPC_READ_ACK_IDLE |
				   IPC_READ_ACK_STREAM_RAISES, 0);
	bus_write(&f->bus, IPC_SPACE_PIO, IER + 2 /* LCR */, 1, 0x80);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 0x0c);
	struct vcpu_read r;
	start_read(f, &r, IIR);
	struct ipc_msg lcr = dev_recv(f), run = dev_recv(f), read = dev_recv(f);
	assert_int_equal(lcr.type, IPC_IO_WRITE);
	assert_int_equal(run.type, IPC_IO_WRITE_RUN);
	assert_int_equal(read.type, IPC_IO_READ);
	struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = read.seq};
	reply.u.io.data = IIR_NONE;
	assert_int_equal(ipc_send(f->dev, &reply), IPC_OK);
	assert_int_equal(finish_read(&r), IIR_NONE);
}

/* The race that stalled a paste: input the device published (RX data, a
 * higher priority than THRE) is never hidden behind THRE, and an answer
 * that does not report THRE acknowledges nothing and lowers nothing. */
static void test_iir_never_hides_published_input(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello_iir();
	dev_attach_with(f, &hello);
	dev_publish_iir(f, IIR_RDI | IIR_RDI << 8 | IPC_READ_ACK_PENDING, 0);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_RDI);
	/* THRE still pending behind RX data: not reported, so the core posted
	 * no READ_DONE (the next message is the run) and lowered nothing. */
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'y');
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_RDI);
	assert_int_equal(dev_recv(f).type, IPC_IO_WRITE_RUN);
	assert_int_equal(f->lowers, 0);
	/* Input handled, THRE reported: now it is acknowledged, but the line
	 * stays up for the device to decide (not IDLE: more input queued). */
	dev_publish_iir(f, IIR_RDI | IIR_THRI << 8 | IPC_READ_ACK_PENDING | IPC_READ_ACK_REPORTS, 0);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_THRI);
	assert_int_equal(dev_recv(f).type, IPC_IO_READ_DONE);
	assert_int_equal(f->lowers, 0);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_RDI);
}

/* With the receive ring (IPC_REG_RX_RING) as dev-serial declares it: RBR
 * (THR's address) pops it, LSR's DR and IIR's receive interrupt follow it. */
#define RBR THR
#define RBR_SLOT 7
#define IIR_CTI 0xcc
static struct ipc_msg uart_hello_rx(void)
{
	struct ipc_msg m = uart_hello_iir();
	struct ipc_hello *h = &m.u.hello;
	h->regs[0].flags |= IPC_REG_RX_RING; /* LSR */
	h->regs[1] = (struct ipc_reg){IPC_SPACE_PIO, 1, IPC_REG_STREAM | IPC_REG_RX_RING, RBR_SLOT, RBR, 0};
	h->regs[2].flags |= IPC_REG_RX_RING; /* IIR */
	return m;
}

/* The IIR word with the receive interrupt on, trigger level 4. */
static const uint64_t iir_rx_word = IIR_NONE | IIR_THRI << 8 | IPC_READ_ACK_REPORTS | IPC_READ_ACK_IDLE |
				    IPC_READ_ACK_STREAM_RAISES | IPC_READ_ACK_RX_ENABLED |
				    (uint64_t)IIR_RDI << 24 | (uint64_t)IIR_CTI << 32 | 4ull << 40;

/* The device publishes `bytes` in the ring from head on, a live RBR, an
 * LSR that follows the ring, and IIR's word. */
static void dev_publish_ring(struct fixture *f, uint32_t head, const char *bytes, uint64_t iir)
{
	uint32_t n = (uint32_t)strlen(bytes);
	for (uint32_t i = 0; i < n; i++)
		atomic_store(&f->state->rx.data[(head + i) % IPC_RX_RING_SIZE], (uint8_t)bytes[i]);
	atomic_store(&f->state->rx.head, head);
	atomic_store(&f->state->rx.tail, head + n);
	atomic_store(&f->state->shadow[5], 0x60 | 0x61 << 8);
	atomic_store(&f->state->shadow[RBR_SLOT], IPC_RX_POP_LIVE);
	dev_publish_iir(f, iir, 0);
}

/* Nothing but what the test expects reached the device. */
static void dev_expect_nothing(struct fixture *f)
{
	assert_false(f->has_read_done);
	struct ipc_msg m;
	char err[128];
	assert_int_equal(ipc_recv(f->dev, &m, 100, err, sizeof(err)), IPC_ETIMEDOUT);
}

/* A paste's batch: the core pops it with no message until the ring is
 * empty, LSR and IIR following the count (character timeout below the
 * trigger level); the pop that empties it lowers the line (nothing else
 * pending) and then posts READ_DONE; reads of an empty ring pop nothing. */
static void test_rx_ring_popped_by_the_core(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello_rx();
	dev_attach_with(f, &hello);
	dev_publish_ring(f, 1000, "abcd", iir_rx_word);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, LSR, 1), 0x61);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_RDI); /* 4 >= trigger */
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, RBR, 1), 'a');
	assert_int_equal(atomic_load(&f->state->rx.head), 1001);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_CTI); /* 3 left */
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, RBR, 1), 'b');
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, RBR, 1), 'c');
	dev_expect_nothing(f);
	assert_int_equal(f->lowers, 0);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, RBR, 1), 'd');
	assert_int_equal(f->lowers, 1);
	struct ipc_msg done = dev_recv(f);
	assert_int_equal(done.type, IPC_IO_READ_DONE);
	assert_int_equal(done.u.io.addr, RBR);
	assert_int_equal(done.u.io.data, 'd');
	assert_int_equal(atomic_load(&f->state->rx.head), 1004);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, LSR, 1), 0x60);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_NONE);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, RBR, 1), 0); /* the empty value */
	assert_int_equal(atomic_load(&f->state->rx.head), 1004);
	dev_expect_nothing(f);
	/* Input the device adds while the guest drains is simply there. */
	atomic_store(&f->state->rx.data[1004 % IPC_RX_RING_SIZE], 'e');
	atomic_store(&f->state->rx.tail, 1005);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, LSR, 1), 0x61);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, RBR, 1), 'e');
	assert_int_equal(dev_recv(f).type, IPC_IO_READ_DONE);
}

/* THRE pending and reported holds the line up: emptying the ring does not
 * lower it (the guest's handler acknowledges THRE next), but READ_DONE is
 * posted all the same.  The THR write's run leaves before it (seq order). */
static void test_rx_ring_emptied_under_thre_keeps_the_line(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello_rx();
	dev_attach_with(f, &hello);
	dev_publish_ring(f, 0, "x", iir_rx_word);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'y'); /* raises THRE in the core's view */
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_CTI); /* RX outranks THRE */
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, RBR, 1), 'x');
	assert_int_equal(f->lowers, 0);
	struct ipc_msg run = dev_recv(f), done = dev_recv(f);
	assert_int_equal(run.type, IPC_IO_WRITE_RUN);
	assert_int_equal(done.type, IPC_IO_READ_DONE);
	assert_int_equal(done.u.io.addr, RBR);
	/* The handler's next IIR read reports and acknowledges THRE: now the
	 * line falls. */
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_THRI);
	assert_int_equal(f->lowers, 1);
	done = dev_recv(f);
	assert_int_equal(done.type, IPC_IO_READ_DONE);
	assert_int_equal(done.u.io.addr, IIR);
}

/* The lost edge of the first merge of the core's THRE raise (a guest
 * typing while it printed hung in HLT with IRQ 4 up and input waiting).
 * The guest drains a batch; the pop that empties the ring lowers the line
 * (the device's "high" for the batch counted); a "high" the device sent
 * before it heard of the pops lands after that lowering and leaves the
 * line up; the guest's handler reads IIR: nothing pending, it leaves.
 * With the line up the device's next "high" (the next batch) makes no
 * edge, so that read lowers the line and tells the device as an
 * acknowledge's lowering does, with the count of its messages applied.  A
 * "none" with the line low (every handler's last read) costs nothing. */
static void test_iir_none_lowers_a_line_left_up(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello_rx();
	dev_attach_with(f, &hello);
	dev_publish_ring(f, 0, "ab", iir_rx_word);
	dev_send_irq(f, 1); /* the batch */
	dev_sync(f);
	assert_int_equal(f->level[4], 1);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_CTI);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, RBR, 1), 'a');
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, RBR, 1), 'b');
	assert_int_equal(f->level[4], 0);
	struct ipc_msg done = dev_recv(f);
	assert_int_equal(done.u.io.addr, RBR);
	assert_int_equal(done.u.io.line.action, IPC_LINE_LOWERED);
	assert_int_equal(done.u.io.line.irqs_applied, 1);

	dev_send_irq(f, 1); /* late: sent before the device took the pops */
	dev_sync(f);
	assert_int_equal(f->level[4], 1);
	int lowers = f->lowers;
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_NONE);
	assert_int_equal(f->level[4], 0);
	assert_int_equal(f->lowers, lowers + 1);
	done = dev_recv(f);
	assert_int_equal(done.type, IPC_IO_READ_DONE);
	assert_int_equal(done.u.io.addr, IIR);
	assert_int_equal(done.u.io.data, IIR_NONE); /* acknowledges nothing */
	assert_int_equal(done.u.io.line.action, IPC_LINE_LOWERED);
	assert_int_equal(done.u.io.line.irqs_applied, 2);

	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IIR, 1), IIR_NONE);
	assert_int_equal(f->lowers, lowers + 1);
	dev_expect_nothing(f);
}

/* The ring's indices come from a page the device writes: a ring claiming
 * more than it holds (torn by a crash, or hostile), a ring the device says
 * is not live (DLAB), or an ordered write the device has not applied yet
 * (which may change the ring) send the read to the device. */
static void test_rx_ring_untrusted_reads_go_to_the_device(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello_rx();
	dev_attach_with(f, &hello);
	const uint32_t bad_tails[] = {IPC_RX_RING_SIZE + 1, 0xffffffffu};
	for (unsigned i = 0; i < 3; i++) {
		dev_publish_ring(f, 7, "", iir_rx_word);
		if (i < 2)
			atomic_store(&f->state->rx.tail, 7 + bad_tails[i]);
		else
			atomic_store(&f->state->shadow[RBR_SLOT], 0); /* not live */
		struct vcpu_read r;
		start_read(f, &r, RBR);
		struct ipc_msg read = dev_recv(f);
		assert_int_equal(read.type, IPC_IO_READ);
		assert_int_equal(read.u.io.addr, RBR);
		struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = read.seq};
		reply.u.io.data = 'r';
		assert_int_equal(ipc_send(f->dev, &reply), IPC_OK);
		assert_int_equal(finish_read(&r), 'r');
		assert_int_equal(atomic_load(&f->state->rx.head), 7); /* the core popped nothing */
	}
	/* An ordered write that may change the ring (here IER, declared as
	 * changing every shadow) holds pops back until applied. */
	dev_publish_ring(f, 7, "z", iir_rx_word);
	bus_write(&f->bus, IPC_SPACE_PIO, IER, 1, 0x01);
	struct ipc_msg ier = dev_recv(f);
	assert_int_equal(ier.type, IPC_IO_WRITE);
	struct vcpu_read r;
	start_read(f, &r, RBR);
	struct ipc_msg read = dev_recv(f);
	assert_int_equal(read.type, IPC_IO_READ);
	struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = read.seq};
	reply.u.io.data = 'z';
	assert_int_equal(ipc_send(f->dev, &reply), IPC_OK);
	assert_int_equal(finish_read(&r), 'z');
	atomic_store(&f->state->applied_seq, read.seq);
	atomic_store(&f->state->rx.head, 8); /* the device popped it answering */
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, RBR, 1), 0);
	dev_expect_nothing(f);
}

/* The core answers a debug port's reads itself; its writes reach the device. */
static void test_debug_port_reads_need_no_device(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello();
	hello.u.hello.ranges[hello.u.hello.nranges++] = (struct ipc_range){
		.space = IPC_SPACE_MMIO, .base = DEBUG_PORT, .size = 1, .kind = IPC_RANGE_DEBUGCON};
	dev_attach_with(f, &hello);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_MMIO, DEBUG_PORT, 1), IPC_DEBUGCON_READBACK);
	bus_write(&f->bus, IPC_SPACE_MMIO, DEBUG_PORT, 1, 'H');
	struct ipc_msg m = dev_recv(f); /* the write is the first thing the device gets */
	assert_int_equal(m.type, IPC_IO_WRITE);
	assert_int_equal(m.u.io.addr, DEBUG_PORT);
	assert_int_equal(m.u.io.data, 'H');
}

#define DOORBELL 0x3fa /* IPC_REG_DOORBELL | IPC_REG_DOORBELL_WAIT, doorbell 2 */

/* The device's doorbell thread, once: take the next ring. */
static void *take_one_ring(void *arg)
{
	struct ipc_doorbell *db = &((struct fixture *)arg)->state->doorbell;
	uint32_t taken = atomic_load(&db->taken);
	for (int i = 0; i < 500 && atomic_load(&db->rung) == taken; i++)
		host_shared_wait(&db->rung, taken, 10000);
	atomic_store(&db->taken, atomic_load(&db->rung));
	host_shared_wake(&db->taken);
	return NULL;
}

/* A doorbell write sets its bit and counts the ring in the state page, with
 * no message; the vCPU waits until the device took it (or gives up: with
 * nobody taking, bus_write still returns, and the vCPU no longer counts as
 * waiting).  Values of 32 and more are posted as writes. */
static void test_doorbell_rings_without_a_message(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello();
	hello.u.hello.regs[hello.u.hello.nregs++] = (struct ipc_reg){
		.space = IPC_SPACE_PIO, .size = 1, .flags = IPC_REG_DOORBELL | IPC_REG_DOORBELL_WAIT,
		.slot = 2, .addr = DOORBELL};
	if (!host_shared_wait_supported()) { /* Windows: no doorbells, the HELLO is refused */
		assert_int_equal(dev_hello(f, &hello).type, IPC_REJECT);
		return;
	}
	dev_attach_with(f, &hello);
	struct ipc_doorbell *db = &f->state->doorbell;
	uint64_t waits = atomic_load(&core_stats.doorbell_waits);

	pthread_t taker;
	assert_int_equal(pthread_create(&taker, NULL, take_one_ring, f), 0);
	bus_write(&f->bus, IPC_SPACE_PIO, DOORBELL, 1, 5);
	pthread_join(taker, NULL);
	assert_int_equal(atomic_load(&db->pending[2]), 1u << 5);
	assert_int_equal(atomic_load(&db->rung), 1);
	assert_int_equal(atomic_load(&db->taken), 1);
	assert_int_equal(atomic_load(&core_stats.doorbell_waits), waits + 1);

	uint64_t timeouts = atomic_load(&core_stats.doorbell_timeouts);
	bus_write(&f->bus, IPC_SPACE_PIO, DOORBELL, 1, 0); /* nobody takes it: bounded */
	assert_int_equal(atomic_load(&db->pending[2]), (1u << 5) | 1);
	assert_int_equal(atomic_load(&db->rung), 2);
	assert_int_equal(atomic_load(&core_stats.doorbell_timeouts), timeouts + 1);
	assert_int_equal(atomic_load(&db->vcpus_waiting), 0);

	bus_write(&f->bus, IPC_SPACE_PIO, DOORBELL, 1, 32);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'z');
	struct ipc_msg m = dev_recv(f); /* the first message: no ring made one */
	assert_int_equal(m.type, IPC_IO_WRITE);
	assert_int_equal(m.u.io.addr, DOORBELL);
	assert_int_equal(m.u.io.data, 32);
	m = dev_recv(f);
	assert_int_equal(m.u.io.addr, THR);
	assert_int_equal(atomic_load(&db->rung), 2);
}

static void test_ordered_write_waits_for_the_device(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	dev_publish_lsr(f, 0x60, 0);
	bus_write(&f->bus, IPC_SPACE_PIO, IER, 1, 0x02); /* may change LSR */
	struct ipc_msg w = dev_recv(f);
	/* Not applied yet: the LSR read must come to the device. */
	struct vcpu_read r;
	start_read(f, &r, LSR);
	struct ipc_msg m = dev_recv(f);
	assert_int_equal(m.type, IPC_IO_READ);
	struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = m.seq};
	reply.u.io.data = 0x20;
	assert_int_equal(ipc_send(f->dev, &reply), IPC_OK);
	assert_int_equal(finish_read(&r), 0x20);
	/* Once applied, the shadow answers again. */
	dev_publish_lsr(f, 0x21, w.seq);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, LSR, 1), 0x21);
}

/* A vCPU writing on its own thread while the test plays the device. */
struct vcpu_writes {
	struct bus *bus;
	unsigned count;
	_Atomic unsigned done;
	pthread_t thread;
};

static void *vcpu_writes_thread(void *arg)
{
	struct vcpu_writes *w = arg;
	for (unsigned i = 0; i < w->count; i++) {
		bus_write(w->bus, IPC_SPACE_PIO, IER, 1, i & 1);
		w->done++;
	}
	return NULL;
}

/* At most 64 posted writes (devproxy.c, POST_WINDOW) are in flight: the
 * 65th waits until the device has applied the first, and goes once it has. */
static void test_posted_writes_wait_for_the_window(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	struct vcpu_writes w = {.bus = &f->bus, .count = 65};
	assert_int_equal(pthread_create(&w.thread, NULL, vcpu_writes_thread, &w), 0);
	struct ipc_msg first = dev_recv(f);
	assert_int_equal(first.type, IPC_IO_WRITE);
	for (int i = 1; i < 64; i++)
		assert_int_equal(dev_recv(f).type, IPC_IO_WRITE);
	struct ipc_msg none;
	char err[128];
	assert_int_equal(ipc_recv(f->dev, &none, 100, err, sizeof(err)), IPC_ETIMEDOUT); /* the 65th waits */
	assert_true(w.done <= 64);
	atomic_store(&f->state->applied_seq, first.seq);
	struct ipc_msg last = dev_recv(f);
	assert_int_equal(last.type, IPC_IO_WRITE);
	pthread_join(w.thread, NULL);
	assert_int_equal(w.done, 65);
}

static void test_reset_is_posted_in_order_and_holds_shadow_reads(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	dev_publish_lsr(f, 0x60, 0);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'a');
	devproxy_reset(f->proxy);
	struct ipc_msg w = dev_recv(f);
	struct ipc_msg r = dev_recv(f);
	assert_int_equal(w.type, IPC_IO_WRITE_RUN);
	assert_int_equal(r.type, IPC_RESET);
	assert_true(r.seq > w.seq);
	/* Until the device has applied the reset, LSR comes from the device. */
	struct vcpu_read rd;
	start_read(f, &rd, LSR);
	struct ipc_msg m = dev_recv(f);
	assert_int_equal(m.type, IPC_IO_READ);
	struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = m.seq};
	reply.u.io.data = 0x60;
	assert_int_equal(ipc_send(f->dev, &reply), IPC_OK);
	assert_int_equal(finish_read(&rd), 0x60);
	dev_publish_lsr(f, 0x61, r.seq);
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, LSR, 1), 0x61);
}

static void test_irq_and_quit_reach_the_board(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	struct ipc_msg irq = {.type = IPC_IRQ, .seq = 5};
	irq.u.irq = (struct ipc_irq){.line = 4, .level = 1};
	assert_int_equal(ipc_send(f->dev, &irq), IPC_OK);
	struct ipc_msg quit = {.type = IPC_QUIT, .seq = 6};
	assert_int_equal(ipc_send(f->dev, &quit), IPC_OK);
	for (int i = 0; i < 500 && !f->quits; i++)
		host_sleep_ms(10);
	assert_int_equal(f->irqs, 1);
	assert_int_equal(f->quits, 1);
}

static void test_restart_resumes_and_retries_lost_read(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	struct vcpu_read r;
	start_read(f, &r, IER);
	assert_int_equal(dev_recv(f).type, IPC_IO_READ);
	/* The device dies without answering; a new incarnation attaches. */
	dev_die(f);
	struct ipc_msg hello = uart_hello();
	struct ipc_msg w = dev_hello(f, &hello);
	assert_int_equal(w.type, IPC_WELCOME);
	assert_true(w.u.welcome.flags & IPC_WELCOME_RESUMED);
	/* The vCPU asks the new incarnation again. */
	struct ipc_msg m = dev_recv(f);
	assert_int_equal(m.type, IPC_IO_READ);
	struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = m.seq};
	reply.u.io.data = 0x05;
	assert_int_equal(ipc_send(f->dev, &reply), IPC_OK);
	assert_int_equal(finish_read(&r), 0x05);
}

static void test_restart_with_other_declarations_rejected(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	dev_die(f);
	struct ipc_msg hello = uart_hello();
	hello.u.hello.ranges[0].size = 16;
	assert_int_equal(dev_hello(f, &hello).type, IPC_REJECT);
}

/* A virtio-mmio range with base 0 and an ANY line gets the board's first
 * slot; WELCOME says where, the bus routes it, and a restart gets the same. */
static void test_slot_assigned_and_kept_across_restart(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = uart_hello();
	struct ipc_hello *h = &hello.u.hello;
	h->ranges[h->nranges++] = (struct ipc_range){
		.space = IPC_SPACE_MMIO, .size = IPC_VIRTIO_MMIO_SIZE, .kind = IPC_RANGE_VIRTIO_MMIO,
		.has_irq = true, .irq = 1};
	h->irqs[h->nirqs++] = (struct ipc_irq_line){.gsi = IPC_IRQ_ANY, .trigger = IPC_TRIGGER_LEVEL};
	for (int incarnation = 0; incarnation < 2; incarnation++) {
		struct ipc_msg w = dev_hello(f, &hello);
		assert_int_equal(w.type, IPC_WELCOME);
		assert_int_equal(w.u.welcome.nranges, 2);
		assert_int_equal(w.u.welcome.nirqs, 2);
		assert_int_equal(w.u.welcome.range_base[0], 0x3f8);
		assert_int_equal(w.u.welcome.range_base[1], BOARD_VIRTIO_MMIO_BASE);
		assert_int_equal(w.u.welcome.irq_gsi[0], 4);
		assert_int_equal(w.u.welcome.irq_gsi[1], BOARD_VIRTIO_MMIO_GSI);
		char err[128];
		assert_int_equal(devproxy_wait_attached(f->proxy, 5000, err, sizeof(err)), 0);
		dev_die(f);
	}
	const struct ipc_hello *placed = devproxy_placed(f->proxy);
	assert_int_equal(placed->ranges[1].base, BOARD_VIRTIO_MMIO_BASE);
	assert_int_equal(placed->irqs[1].gsi, BOARD_VIRTIO_MMIO_GSI);
	assert_int_equal(placed->irqs[1].trigger, IPC_TRIGGER_LEVEL);
	assert_string_equal(f->slots.slot[0].owner, "serial");
	assert_string_equal(f->slots.slot[1].owner, "");
}

static void test_reply_nobody_asked_for_breaks_device(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	dev_publish_lsr(f, 0x60, 0);
	struct ipc_msg bogus = {.type = IPC_IO_REPLY, .seq = 12345};
	assert_int_equal(ipc_send(f->dev, &bogus), IPC_OK);
	assert_true(lsr_becomes(f, 0xff));
	/* Broken: reads answer all-ones at once, writes are dropped. */
	assert_int_equal(bus_read(&f->bus, IPC_SPACE_PIO, IER, 1), 0xff);
	bus_write(&f->bus, IPC_SPACE_PIO, THR, 1, 'z');
	struct ipc_msg m;
	char err[128];
	assert_int_equal(ipc_recv(f->dev, &m, 100, err, sizeof(err)), IPC_ETIMEDOUT);
}

static void test_undeclared_irq_breaks_device(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	dev_publish_lsr(f, 0x60, 0);
	struct ipc_msg irq = {.type = IPC_IRQ, .seq = 7};
	irq.u.irq = (struct ipc_irq){.line = 5, .level = 1};
	assert_int_equal(ipc_send(f->dev, &irq), IPC_OK);
	assert_true(lsr_becomes(f, 0xff));
	assert_int_equal(f->irqs, 0);
}

static void test_core_message_from_device_breaks_it(void **state)
{
	struct fixture *f = *state;
	dev_attach(f);
	dev_publish_lsr(f, 0x60, 0);
	struct ipc_msg m = {.type = IPC_IO_WRITE, .seq = 9};
	m.u.io = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 1, .addr = THR, .data = 1};
	assert_int_equal(ipc_send(f->dev, &m), IPC_OK);
	assert_true(lsr_becomes(f, 0xff));
}

/* ---- published line levels ---- */

#define PUB_GSI 10      /* the published line, line 1 of pub_hello */
#define PUB_BASE 0x500  /* its range */
#define PUB_ACK 0x504   /* an acknowledge that lowers it, over shadow slot 7 */

/* uart_hello plus a level-triggered line the device publishes, with a
 * range and an interrupt acknowledge of its own (as virtio-mmio's). */
static struct ipc_msg pub_hello(void)
{
	struct ipc_msg m = uart_hello();
	struct ipc_hello *h = &m.u.hello;
	h->ranges[h->nranges++] = (struct ipc_range){.space = IPC_SPACE_PIO, .base = PUB_BASE,
						     .size = 8, .has_irq = true, .irq = 1};
	h->irqs[h->nirqs++] = (struct ipc_irq_line){.gsi = PUB_GSI, .trigger = IPC_TRIGGER_LEVEL,
						    .flags = IPC_IRQ_PUBLISHED};
	h->regs[h->nregs++] = (struct ipc_reg){IPC_SPACE_PIO, 4, IPC_REG_ACK_LOWERS, 7, PUB_ACK, 0};
	return m;
}

/* Attach with a published line; false where the host cannot wake across
 * processes (Windows), after checking that the core refuses it there. */
static bool pub_attach(struct fixture *f, const struct ipc_msg *hello)
{
	if (!host_shared_wait_supported()) {
		assert_int_equal(dev_hello(f, hello).type, IPC_REJECT);
		return false;
	}
	dev_attach_with(f, hello);
	return true;
}

/* The device's side (devlib does the same): the level of line 1, said. */
static void dev_say_level(struct fixture *f, int level)
{
	struct ipc_irq_levels *lv = &f->state->irq;
	atomic_store(&lv->level, level ? 1u << 1 : 0);
	atomic_fetch_add(&lv->said, 1);
	if (atomic_load(&lv->core_sleeps))
		host_shared_wake(&lv->said);
}

/* Until the board's line has `level`; false after 5 s. */
static bool line_becomes(struct fixture *f, unsigned line, int level)
{
	for (int i = 0; i < 500; i++) {
		if (f->level[line] == level)
			return true;
		host_sleep_ms(10);
	}
	return false;
}

/* Until the core's thread has looked at the levels once more than `looks`
 * and gone back to sleep (everything it saw is applied); false after 5 s. */
static bool looked_since(struct fixture *f, uint64_t looks)
{
	for (int i = 0; i < 500; i++) {
		if (atomic_load(&core_stats.level_looks) > looks && atomic_load(&f->state->irq.core_sleeps))
			return true;
		host_sleep_ms(10);
	}
	return false;
}

static bool core_thread_sleeps(struct fixture *f)
{
	for (int i = 0; i < 500; i++) {
		if (atomic_load(&f->state->irq.core_sleeps))
			return true;
		host_sleep_ms(10);
	}
	return false;
}

/* A level said while the core's thread sleeps wakes it; levels said while
 * it runs are not lost (the last wins); no IPC_IRQ travels. */
static void test_published_level_sets_the_line(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = pub_hello();
	if (!pub_attach(f, &hello))
		return;
	assert_true(core_thread_sleeps(f));
	uint64_t messages = atomic_load(&core_stats.irq_msgs);
	dev_say_level(f, 1);
	assert_true(line_becomes(f, PUB_GSI, 1));
	dev_say_level(f, 0);
	assert_true(line_becomes(f, PUB_GSI, 0));
	/* A burst, the core's thread waking and looking meanwhile. */
	for (int i = 0; i < 20000; i++)
		dev_say_level(f, i & 1);
	assert_true(line_becomes(f, PUB_GSI, 1));
	uint64_t looks = atomic_load(&core_stats.level_looks);
	dev_say_level(f, 0);
	assert_true(looked_since(f, looks));
	assert_int_equal(f->level[PUB_GSI], 0);
	assert_int_equal(atomic_load(&core_stats.irq_msgs), messages);
	assert_int_equal(f->sets[4], 0); /* the edge line is not the thread's */
}

/* The core lowers the line on an acknowledge (IPC_REG_ACK_LOWERS) while
 * the word still says high; the device, applying the ACK with more
 * pending, says "high" again without changing the word: the line rises. */
static void test_published_level_said_again_after_an_acknowledge(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = pub_hello();
	if (!pub_attach(f, &hello))
		return;
	atomic_store(&f->state->shadow[7], 1); /* pending: bit 0 */
	f->state->magic = IPC_STATE_MAGIC;
	dev_say_level(f, 1);
	assert_true(line_becomes(f, PUB_GSI, 1));
	bus_write(&f->bus, IPC_SPACE_PIO, PUB_ACK, 4, 1);
	assert_int_equal(f->level[PUB_GSI], 0); /* lowered before the write left */
	struct ipc_msg ack = dev_recv(f);
	assert_int_equal(ack.type, IPC_IO_WRITE);
	assert_int_equal(ack.u.io.addr, PUB_ACK);
	assert_int_equal(atomic_load(&f->state->irq.level), 1u << 1); /* unchanged */
	dev_say_level(f, 1);
	assert_true(line_becomes(f, PUB_GSI, 1));
}

/* A device that goes away takes its published line down; its last word
 * is not applied again, not even if a dying process still writes it; the
 * next incarnation starts from a cleared word and says its own level. */
static void test_published_line_falls_with_its_device(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = pub_hello();
	if (!pub_attach(f, &hello))
		return;
	dev_say_level(f, 1);
	assert_true(line_becomes(f, PUB_GSI, 1));
	dev_die(f);
	assert_true(line_becomes(f, PUB_GSI, 0));
	uint64_t looks = atomic_load(&core_stats.level_looks);
	dev_say_level(f, 1); /* the dead incarnation's last word */
	assert_true(looked_since(f, looks));
	assert_int_equal(f->level[PUB_GSI], 0);

	struct ipc_msg w = dev_hello(f, &hello);
	assert_int_equal(w.type, IPC_WELCOME);
	char err[128];
	assert_int_equal(devproxy_wait_attached(f->proxy, 5000, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&f->state->irq.level), 0); /* cleared at the HELLO */
	assert_true(line_becomes(f, PUB_GSI, 0));
	dev_say_level(f, 1);
	assert_true(line_becomes(f, PUB_GSI, 1));
}

/* Garbage in the word moves only the device's published lines: not its
 * edge line (4), not lines it never declared. */
static void test_published_garbage_moves_only_its_lines(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = pub_hello();
	if (!pub_attach(f, &hello))
		return;
	assert_true(core_thread_sleeps(f));
	uint64_t looks = atomic_load(&core_stats.level_looks);
	atomic_store(&f->state->irq.level, 0xffffffffu);
	atomic_fetch_add(&f->state->irq.said, 1);
	host_shared_wake(&f->state->irq.said);
	assert_true(looked_since(f, looks));
	assert_int_equal(f->level[PUB_GSI], 1);
	for (unsigned line = 0; line < 24; line++)
		if (line != PUB_GSI)
			assert_int_equal(f->sets[line], 0);
}

/* A published line on an edge-triggered line is refused by the decoder
 * (test_ipc_codec); here, a device that sends IPC_IRQ for its published
 * line anyway is served as before: the message sets it. */
static void test_published_line_still_takes_a_message(void **state)
{
	struct fixture *f = *state;
	struct ipc_msg hello = pub_hello();
	uint64_t looks = atomic_load(&core_stats.level_looks);
	if (!pub_attach(f, &hello))
		return;
	/* The core's thread looks at the published levels once the device
	 * attached (all low): had that look come after the message, it would
	 * have lowered the line again (1 run in 20 under load). */
	assert_true(looked_since(f, looks));
	struct ipc_msg irq = {.type = IPC_IRQ, .seq = 5};
	irq.u.irq = (struct ipc_irq){.line = PUB_GSI, .level = 1};
	assert_int_equal(ipc_send(f->dev, &irq), IPC_OK);
	assert_true(line_becomes(f, PUB_GSI, 1));
}

/* Ends the program as a failure if destroy hangs, rather than hanging ctest. */
static _Atomic bool destroy_returned;

static void *destroy_watchdog(void *arg)
{
	for (int i = 0; i < 300 && !destroy_returned; i++)
		host_sleep_ms(100);
	if (!destroy_returned) {
		fprintf(stderr, "devproxy_shutdown_and_destroy hung for 30 s\n");
		_Exit(1);
	}
	return NULL;
}

/* A device that stops reading while the core still has things to send
 * (here: answers to a flood of PINGs) must not keep the core from exiting.
 * Before the core's sends were bounded this hung in destroy. */
static void test_device_not_reading_cannot_hang_shutdown(void **state)
{
	struct fixture *f = *state;
	pthread_t watchdog;
	assert_int_equal(pthread_create(&watchdog, NULL, destroy_watchdog, NULL), 0);
	dev_attach(f);
	struct ipc_msg ping = {.type = IPC_PING};
	int rc = IPC_OK;
	for (int i = 0; i < 1000000 && rc == IPC_OK; i++) {
		ping.seq = (uint64_t)i;
		rc = ipc_send_timeout(f->dev, &ping, 200);
	}
	/* Every queue between the two is full: the core blocks on a PONG. */
	assert_int_equal(rc, IPC_ETIMEDOUT);

	uint64_t t0 = host_now_ns();
	devproxy_abort(f->proxy);
	devproxy_shutdown_and_destroy(f->proxy);
	f->proxy = NULL;
	destroy_returned = true;
	pthread_join(watchdog, NULL);
	assert_true(host_now_ns() - t0 < 5000000000ull);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_hostile_hello_rejected),
		T(test_hello_over_ram_rejected),
		T(test_round_trip_read_and_posted_write),
		T(test_shadow_read_needs_no_device),
		T(test_stream_writes_leave_as_one_run),
		T(test_write_holds_back_only_the_shadows_it_changes),
		T(test_iir_answered_by_the_core),
		T(test_iir_never_hides_published_input),
		T(test_bursts_share_a_frame),
		T(test_thre_raised_by_the_core),
		T(test_etbei_answered_by_the_core),
		T(test_iir_after_unsettled_stream_write_asks_the_device),
		T(test_rx_ring_popped_by_the_core),
		T(test_rx_ring_emptied_under_thre_keeps_the_line),
		T(test_iir_none_lowers_a_line_left_up),
		T(test_rx_ring_untrusted_reads_go_to_the_device),
		T(test_debug_port_reads_need_no_device),
		T(test_doorbell_rings_without_a_message),
		T(test_ordered_write_waits_for_the_device),
		T(test_posted_writes_wait_for_the_window),
		T(test_reset_is_posted_in_order_and_holds_shadow_reads),
		T(test_irq_and_quit_reach_the_board),
		T(test_restart_resumes_and_retries_lost_read),
		T(test_restart_with_other_declarations_rejected),
		T(test_slot_assigned_and_kept_across_restart),
		T(test_reply_nobody_asked_for_breaks_device),
		T(test_undeclared_irq_breaks_device),
		T(test_core_message_from_device_breaks_it),
		T(test_device_not_reading_cannot_hang_shutdown),
		T(test_published_level_sets_the_line),
		T(test_published_level_said_again_after_an_acknowledge),
		T(test_published_line_falls_with_its_device),
		T(test_published_garbage_moves_only_its_lines),
		T(test_published_line_still_takes_a_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
