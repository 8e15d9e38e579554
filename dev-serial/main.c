/* main.c - the dev-serial process: the 16550A at 0x3f8 (IRQ 4) and hvc0 (a
 * virtio-console) on the host terminal, an optional debug port and an
 * optional MMIO UART.
 *
 * The device library (devlib.h) runs the protocol on the main thread; with
 * --stdio on, a reader thread moves stdin into the console's input queue
 * (the UART's or hvc0's, --console) and stops reading while the queue is
 * full (the guest's reads make room, and the library wakes it after each
 * batch of messages); terminal resizes reach hvc0 from the host layer's
 * resize callback (host.h).  The library's lock
 * serialises every call into the device, so the interrupt messages leave in
 * the order the model decides them. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devlib.h"
#include "escape.h"
#include "host.h"
#include "ipc.h"
#include "log.h"
#include "parse.h"
#include "sandbox.h"
#include "serial_device.h"

static const char usage[] =
	"usage: dev-serial --connect URL [--stdio on|off] [--hvc0 on|off] [--console ttyS0|hvc0]\n"
	"                  [--debugcon PORT] [--debugcon-mmio ADDR]\n"
	"                  [--mmio-uart ADDR] [--uart 16550|pl011]\n"
	"  --connect URL     the core's ipc address for this device\n"
	"  --stdio on|off    the UART at 0x3f8 and hvc0 on this terminal (default on)\n"
	"  --hvc0 on|off     a virtio-console (hvc0) in a virtio-mmio slot (default on)\n"
	"  --console DEV     the device the terminal's input goes to (default ttyS0)\n"
	"  --debugcon PORT   a debug port: bytes written to it go to stdout\n"
	"  --debugcon-mmio ADDR  the same debug port at MMIO ADDR (1 byte)\n"
	"  --mmio-uart ADDR  a second 16550 at MMIO ADDR (8 bytes, output to stdout)\n"
	"  --uart KIND       the terminal's UART: 16550 at port 0x3f8 (default) or\n"
	"                    pl011 at MMIO 0xc0000000, line 1 (the arm64 board's)\n";

static struct dev_loop *loop; /* set by dev_run before it calls the device */
static struct serial_device dev;

/* ---- the terminal ---- */

static struct host_term saved_term;
static volatile int term_raw; /* read from the signal handler */

static void restore_terminal(void)
{
	if (term_raw) {
		host_term_restore(&saved_term);
		term_raw = 0;
	}
}

static void on_terminate(int sig)
{
	restore_terminal();
}

static void enter_raw_mode(void)
{
	if (host_term_save(&saved_term) != 0 || host_term_raw(&saved_term) != 0) {
		log_msg("cannot put the terminal in raw mode: continuing without");
		return;
	}
	term_raw = 1;
	log_set_raw(true);
	atexit(restore_terminal);
	host_on_terminate(on_terminate);
}

/* ---- the device's effects ---- */

static bool send_to_core(void *opaque, struct ipc_msg *m)
{
	return dev_send(loop, m);
}

/* Everything for stdout — the UARTs' bytes (one per THR write) and hvc0's
 * transmit buffers — gathers here and leaves in one write: once the library
 * has handled every message waiting (poll_dispatch), once the doorbell
 * rings have stopped for a moment (doorbell_quiet), when the oldest byte
 * has waited OUT_MAX_AGE_NS (looked at once a ring is taken:
 * doorbell_taken), when full, before the escape help, and at exit.  A
 * write per byte cost dev-serial more than the messages that carry the
 * bytes, and a write per hvc0 buffer (Linux's tty layer gives 2 KiB at a
 * time, one ring each) a system call per ring on the path the guest waits
 * on.  hvc0's driver gets its buffer back once its bytes are copied here,
 * and the write comes after that, while the guest goes on; the age bound
 * keeps what a dev-serial killed before the write loses to about a
 * millisecond of output, and what a terminal shows that late.  A write
 * that blocks still holds the device lock, so the next ring waits for it:
 * a slow terminal slows the guest.  With the device lock held, as every
 * call into the device. */
#define OUT_MAX_AGE_NS 1000000ull
/* 16 KiB: more than a millisecond of hvc0 at its fastest (~14 MB/s), and
 * with the core's window of posted writes (devproxy.c, POST_WINDOW: 32
 * KiB of runs) what a killed dev-serial loses stays under 64 KiB. */
static uint8_t out_buf[16384];
static size_t out_len;
static uint64_t out_since_ns; /* when the oldest byte in out_buf came */

/* Blocking: a slow terminal slows the guest down, nothing is dropped. */
static void write_all(const void *buf, size_t len)
{
	if (host_stdout_write(buf, len) != 0)
		log_once("cannot write to stdout: %s", strerror(errno));
}

static void flush_stdout(void)
{
	if (out_len)
		write_all(out_buf, out_len);
	out_len = 0;
}

static void write_stdout(void *opaque, uint8_t byte)
{
	if (out_len == sizeof(out_buf))
		flush_stdout();
	if (!out_len)
		out_since_ns = host_now_ns();
	out_buf[out_len++] = byte;
}

static void write_stdout_run(void *opaque, const void *buf, size_t len)
{
	if (len > sizeof(out_buf) - out_len)
		flush_stdout();
	if (len >= sizeof(out_buf)) {
		write_all(buf, len);
		return;
	}
	if (!out_len)
		out_since_ns = host_now_ns();
	memcpy(out_buf + out_len, buf, len);
	out_len += len;
}

static void flush_when_old(void *d)
{
	if (out_len && host_now_ns() - out_since_ns >= OUT_MAX_AGE_NS)
		flush_stdout();
}

static void flush_after_messages(void *d, const struct host_pollfd *fds, size_t n)
{
	flush_stdout();
}

static void flush_when_quiet(void *d)
{
	serial_dev_ops.doorbell_quiet(d);
	flush_stdout();
}

/* With the device lock held. */
static void read_terminal_size(void)
{
	unsigned cols, rows;
	if (host_term_size(&cols, &rows) == 0)
		serial_resize(&dev, (uint16_t)(cols > 0xffff ? 0xffff : cols),
			      (uint16_t)(rows > 0xffff ? 0xffff : rows));
}

/* The host layer's thread: the terminal changed size. */
static void terminal_resized(void *opaque)
{
	dev_lock(loop);
	read_terminal_size();
	dev_unlock(loop);
}

/* ---- stdin ---- */

/* Room for the largest chunk escape_filter can produce from what we read. */
static size_t wait_for_input_space(void)
{
	dev_lock(loop);
	size_t space;
	while ((space = serial_input_space(&dev)) < 2)
		dev_wait_change(loop);
	dev_unlock(loop);
	return space;
}

static void *stdin_reader(void *arg)
{
	bool escapes = term_raw; /* only on a terminal: piped bytes pass untouched */
	struct escape esc = {0};
	uint8_t in[UART_INPUT_SIZE], out[UART_INPUT_SIZE + 1];
	for (;;) {
		size_t space = wait_for_input_space();
		/* hvc0's queue can hold more than one read's buffer. */
		long n = host_stdin_read(in, space - 1 < sizeof(in) ? space - 1 : sizeof(in));
		if (n <= 0)
			break; /* end of input: the guest runs on without it */
		unsigned actions = 0;
		size_t len = (size_t)n;
		if (escapes)
			len = escape_filter(&esc, in, (size_t)n, out, &actions);
		else
			memcpy(out, in, len);

		dev_lock(loop);
		serial_input(&dev, out, len); /* fits: only this thread adds input */
		if (actions & ESCAPE_HELP) {
			write_stdout_run(NULL, escape_help, strlen(escape_help));
			flush_stdout();
		}
		if (actions & ESCAPE_QUIT)
			serial_quit(&dev);
		dev_unlock(loop);
		if (actions & ESCAPE_QUIT)
			break; /* the core ends the VM and sends SHUTDOWN */
	}
	return NULL;
}

/* ---- start-up ---- */

static void __attribute__((format(printf, 1, 2), noreturn)) bad_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "dev-serial: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage);
	exit(IPC_DEVICE_EXIT_REFUSED);
}

static const char *parse_args(int argc, char **argv, struct serial_config *cfg)
{
	const char *url = NULL;
	cfg->stdio = true;
	cfg->hvc0 = true;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
			fputs(usage, stdout);
			exit(0);
		}
		if (strcmp(opt, "--connect") && strcmp(opt, "--stdio") && strcmp(opt, "--debugcon") &&
		    strcmp(opt, "--mmio-uart") && strcmp(opt, "--hvc0") && strcmp(opt, "--console") &&
		    strcmp(opt, "--debugcon-mmio") && strcmp(opt, "--uart"))
			bad_usage("unknown option %s", opt);
		if (i + 1 >= argc)
			bad_usage("%s needs a value", opt);
		const char *val = argv[++i];
		uint64_t v;
		if (!strcmp(opt, "--connect")) {
			url = val;
		} else if (!strcmp(opt, "--stdio")) {
			if (strcmp(val, "on") && strcmp(val, "off"))
				bad_usage("--stdio takes on or off, not %s", val);
			cfg->stdio = !strcmp(val, "on");
		} else if (!strcmp(opt, "--hvc0")) {
			if (strcmp(val, "on") && strcmp(val, "off"))
				bad_usage("--hvc0 takes on or off, not %s", val);
			cfg->hvc0 = !strcmp(val, "on");
		} else if (!strcmp(opt, "--console")) {
			if (strcmp(val, "ttyS0") && strcmp(val, "hvc0"))
				bad_usage("--console takes ttyS0 or hvc0, not %s", val);
			cfg->console = !strcmp(val, "hvc0") ? SERIAL_CONSOLE_HVC0 : SERIAL_CONSOLE_TTYS0;
		} else if (!strcmp(opt, "--debugcon")) {
			if (!parse_u64(val, 0xffff, &v) || v - SERIAL_COM1_BASE < UART_NREGS)
				bad_usage("--debugcon: %s is not a free port number (0..0xffff, not 0x3f8..0x3ff)", val);
			cfg->debugcon = true;
			cfg->debugcon_port = (uint16_t)v;
		} else if (!strcmp(opt, "--uart")) {
			if (strcmp(val, "16550") && strcmp(val, "pl011"))
				bad_usage("--uart takes 16550 or pl011, not %s", val);
			cfg->pl011 = !strcmp(val, "pl011");
		} else if (!strcmp(opt, "--debugcon-mmio")) {
			if (!parse_u64(val, UINT64_MAX, &v))
				bad_usage("--debugcon-mmio: %s is not an address", val);
			cfg->debugcon_mmio = true;
			cfg->debugcon_mmio_addr = v;
		} else {
			if (!parse_u64(val, UINT64_MAX - UART_NREGS, &v))
				bad_usage("--mmio-uart: %s is not an address", val);
			cfg->mmio_uart = true;
			cfg->mmio_base = v;
		}
	}
	if (!url)
		bad_usage("--connect URL is required");
	if (cfg->console == SERIAL_CONSOLE_HVC0 && !cfg->hvc0)
		bad_usage("--console hvc0 needs --hvc0 on");
	return url;
}

/* Called by the library once attached, with its lock held: from here on
 * the device may send, so the reader may start. */
static void attach_and_read_stdin(void *d, struct ipc_state_page *page, const struct guest_mem *ram,
				  const struct ipc_welcome *w)
{
	if (dev.cfg.stdio && dev.cfg.hvc0) {
		read_terminal_size(); /* hvc0 starts with it (and a restart catches up) */
		host_on_term_resize(terminal_resized, NULL);
	}
	serial_dev_ops.attach(d, page, ram, w);
	flush_stdout(); /* what a resumed hvc0 transmitted at once */
	pthread_t reader;
	if (!dev.cfg.stdio)
		return;
	if (pthread_create(&reader, NULL, stdin_reader, NULL) != 0) {
		log_msg("cannot start the stdin reader thread: no terminal input");
		return;
	}
	pthread_detach(reader);
}

int main(int argc, char **argv)
{
	host_child_init();
	log_init("dev-serial");
	dev.sink = (struct serial_sink){.send = send_to_core, .output = write_stdout,
					.write = write_stdout_run};
	const char *url = parse_args(argc, argv, &dev.cfg);

	if (dev.cfg.stdio && host_stdin_is_tty())
		enter_raw_mode();
	struct dev_ops ops = serial_dev_ops;
	ops.attach = attach_and_read_stdin;
	ops.sandbox = &serial_sandbox;
	ops.poll_dispatch = flush_after_messages;
	ops.doorbell_quiet = flush_when_quiet;
	ops.doorbell_taken = flush_when_old;
	/* Returns holding the device lock: the reader never touches the
	 * device again, and is not joined (it may be blocked in a read).
	 * atexit restores the terminal. */
	int status = dev_run(url, &ops, &dev, &loop);
	flush_stdout();
	exit(status);
}
