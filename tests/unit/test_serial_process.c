/* test_serial_process.c - the dev-serial executable against a stand-in core
 * on a real ipc socket: HELLO/WELCOME, host input through a pipe (more than
 * the input queue holds, then end of input), output, PING, SHUTDOWN, and a
 * restart that resumes the state page and applies the writes queued for the
 * dead incarnation, and a restart that dials while the core still holds the
 * dead one.  Linux only (stdin/stdout are swapped for pipes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest_mem.h"
#include "host.h"
#include "ipc.h"
#include "uart16550.h"

#define COM1 0x3f8

struct core {
	char dir[256], url[320];
	ipc_chan *chan;
	_Atomic bool peer_up;
	host_shm *state;
	host_shm *ram; /* guest RAM the device maps (the UARTs do not use it) */
	uint64_t seq;
};

struct device {
	host_proc *proc;
	int in_w;  /* the device's stdin */
	int out_r; /* the device's stdout */
};

static void on_peer(void *opaque, bool up)
{
	struct core *c = opaque;
	c->peer_up = up;
}

static void core_open(struct core *c)
{
	char err[256];
	memset(c, 0, sizeof(*c));
	assert_int_equal(host_runtime_dir_create(c->dir, sizeof(c->dir), err, sizeof(err)), 0);
	assert_int_equal(host_ipc_url(c->dir, "serial", c->url, sizeof(c->url)), 0);
	assert_int_equal(ipc_listen(c->url, on_peer, c, &c->chan, err, sizeof(err)), IPC_OK);
	c->state = host_shm_create("serial-state", IPC_STATE_SIZE, err, sizeof(err));
	assert_non_null(c->state);
	c->ram = host_shm_create("serial-ram", guest_mem_shm_size(1 << 20), err, sizeof(err));
	assert_non_null(c->ram);
	c->seq = 1000;
}

static void core_close(struct core *c)
{
	ipc_close(c->chan);
	host_shm_close(c->state);
	host_shm_close(c->ram);
	host_runtime_dir_remove(c->dir);
}

/* Spawn dev-serial with pipes for stdin and stdout. */
static void device_start(struct device *d, const struct core *c)
{
	int in[2], out[2];
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	int saved_in = dup(0), saved_out = dup(1);
	fflush(stdout);
	dup2(in[0], 0);
	dup2(out[1], 1);
	char *argv[] = {DEV_SERIAL_PATH, "--connect", (char *)c->url, NULL};
	char err[256];
	d->proc = host_spawn(DEV_SERIAL_PATH, argv, err, sizeof(err));
	dup2(saved_in, 0);
	dup2(saved_out, 1);
	close(saved_in);
	close(saved_out);
	close(in[0]);
	close(out[1]);
	assert_non_null(d->proc);
	d->in_w = in[1];
	d->out_r = out[0];
}

static void device_close_pipes(struct device *d)
{
	if (d->in_w >= 0)
		close(d->in_w);
	close(d->out_r);
	host_proc_free(d->proc);
}

/* Next message from the device other than an interrupt report. */
static void recv_skipping_irqs(struct core *c, struct ipc_msg *m)
{
	char err[256];
	do
		assert_int_equal(ipc_recv(c->chan, m, 5000, err, sizeof(err)), IPC_OK);
	while (m->type == IPC_IRQ);
}

static void welcome(struct core *c, bool resumed)
{
	struct ipc_msg m;
	recv_skipping_irqs(c, &m);
	assert_int_equal(m.type, IPC_HELLO);
	assert_string_equal(m.u.hello.name, "serial");
	struct ipc_msg w = {.type = IPC_WELCOME, .seq = m.seq};
	w.u.welcome.flags = resumed ? IPC_WELCOME_RESUMED : 0;
	w.u.welcome.state_size = IPC_STATE_SIZE;
	snprintf(w.u.welcome.state_name, sizeof(w.u.welcome.state_name), "%s",
		 host_shm_name(c->state));
	w.u.welcome.ram_size = 1 << 20;
	w.u.welcome.nregions = 1;
	w.u.welcome.ram_regions[0] = (struct guest_mem_region){0, 1 << 20};
	/* Placed where dev-serial asked (COM1 and its line), hvc0 in the
	 * board's first virtio-mmio slot. */
	w.u.welcome.nranges = m.u.hello.nranges;
	w.u.welcome.nirqs = m.u.hello.nirqs;
	for (uint32_t i = 0; i < m.u.hello.nranges; i++)
		w.u.welcome.range_base[i] = m.u.hello.ranges[i].base ? m.u.hello.ranges[i].base : 0xd0001000;
	for (uint32_t i = 0; i < m.u.hello.nirqs; i++)
		w.u.welcome.irq_gsi[i] = m.u.hello.irqs[i].gsi != IPC_IRQ_ANY ? m.u.hello.irqs[i].gsi : 16;
	snprintf(w.u.welcome.ram_name, sizeof(w.u.welcome.ram_name), "%s", host_shm_name(c->ram));
	assert_int_equal(ipc_send(c->chan, &w), IPC_OK);
}

static uint8_t io_read(struct core *c, uint16_t port)
{
	struct ipc_msg m = {.type = IPC_IO_READ, .seq = c->seq++};
	m.u.io = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 1, .addr = port};
	assert_int_equal(ipc_send(c->chan, &m), IPC_OK);
	struct ipc_msg r;
	recv_skipping_irqs(c, &r);
	assert_int_equal(r.type, IPC_IO_REPLY);
	assert_int_equal(r.seq, m.seq);
	return (uint8_t)r.u.io.data;
}

static void io_write(struct core *c, uint16_t port, uint8_t value)
{
	struct ipc_msg m = {.type = IPC_IO_WRITE, .seq = c->seq++};
	m.u.io = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 1, .addr = port, .data = value};
	assert_int_equal(ipc_send(c->chan, &m), IPC_OK);
}

static void shutdown_and_wait(struct core *c, struct device *d)
{
	struct ipc_msg m = {.type = IPC_SHUTDOWN, .seq = c->seq++};
	assert_int_equal(ipc_send(c->chan, &m), IPC_OK);
	int status = -1;
	assert_int_equal(host_wait_any(&d->proc, 1, 5000, &status), 0);
	assert_int_equal(status, 0);
}

static void test_input_output_shutdown(void **state)
{
	struct core c;
	struct device d;
	core_open(&c);
	device_start(&d, &c);
	welcome(&c, false);

	/* More than the input queue holds, then end of input. */
	static uint8_t typed[UART_INPUT_SIZE + 2000];
	for (size_t i = 0; i < sizeof(typed); i++)
		typed[i] = (uint8_t)(i * 13 + 1);
	assert_int_equal(write(d.in_w, typed, sizeof(typed)), (ssize_t)sizeof(typed));
	close(d.in_w);
	d.in_w = -1;

	size_t got = 0;
	/* Two round trips a byte: seconds when idle, far more on a loaded host. */
	uint64_t deadline = host_now_ns() + 120000000000ull;
	while (got < sizeof(typed) && host_now_ns() < deadline) {
		if (io_read(&c, COM1 + UART_LSR) & UART_LSR_DR)
			assert_int_equal(io_read(&c, COM1 + UART_RBR), typed[got++]);
		else
			host_sleep_ms(1);
	}
	assert_int_equal(got, sizeof(typed));

	/* The guest's output reaches stdout, and the device outlives its input. */
	for (const char *p = "ok\n"; *p; p++)
		io_write(&c, COM1, (uint8_t)*p);
	char out[4] = "";
	size_t n = 0;
	while (n < 3) {
		ssize_t k = read(d.out_r, out + n, 3 - n);
		assert_true(k > 0);
		n += (size_t)k;
	}
	assert_memory_equal(out, "ok\n", 3);
	struct ipc_msg ping = {.type = IPC_PING, .seq = 4242}, pong;
	assert_int_equal(ipc_send(c.chan, &ping), IPC_OK);
	recv_skipping_irqs(&c, &pong);
	assert_int_equal(pong.type, IPC_PONG);
	assert_int_equal(pong.seq, 4242);

	shutdown_and_wait(&c, &d);
	device_close_pipes(&d);
	core_close(&c);
}

static void test_restart_resumes(void **state)
{
	struct core c;
	struct device d;
	core_open(&c);
	device_start(&d, &c);
	welcome(&c, false);
	io_write(&c, COM1 + UART_SCR, 0x5a);
	assert_int_equal(io_read(&c, COM1 + UART_SCR), 0x5a);

	host_proc_kill(d.proc);
	int status;
	assert_int_equal(host_wait_any(&d.proc, 1, 5000, &status), 0);
	device_close_pipes(&d);
	/* Sent once the core knows the device is gone (before that it could
	 * still go to the dead one): the next incarnation applies it. */
	while (c.peer_up)
		host_sleep_ms(1);
	io_write(&c, COM1 + UART_LCR, 0x03);

	device_start(&d, &c);
	welcome(&c, true);
	assert_int_equal(io_read(&c, COM1 + UART_SCR), 0x5a);
	assert_int_equal(io_read(&c, COM1 + UART_LCR), 0x03);
	shutdown_and_wait(&c, &d);
	device_close_pipes(&d);
	core_close(&c);
}

/* A restarted device may dial before the core has seen the previous
 * incarnation go: pair0 refuses the new connection and closes it.  The
 * device must dial again until it is taken, not give up. */
static void test_attach_redials_while_the_old_peer_lingers(void **state)
{
	struct core c;
	struct device d;
	char err[256];
	core_open(&c);
	ipc_chan *old; /* the previous incarnation, not yet noticed gone */
	assert_int_equal(ipc_dial(c.url, 5000, &old, err, sizeof(err)), IPC_OK);
	while (!c.peer_up)
		host_sleep_ms(1);
	device_start(&d, &c);
	host_sleep_ms(500); /* its connections are refused meanwhile */
	ipc_close(old);

	welcome(&c, false);
	io_write(&c, COM1 + UART_SCR, 0xa5);
	assert_int_equal(io_read(&c, COM1 + UART_SCR), 0xa5);
	shutdown_and_wait(&c, &d);
	device_close_pipes(&d);
	core_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_input_output_shutdown),
		cmocka_unit_test(test_restart_resumes),
		cmocka_unit_test(test_attach_redials_while_the_old_peer_lingers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
