/* main.c - the dev-serial process: the 16550A at 0x3f8 (IRQ 4) on the host
 * terminal, an optional debug port and an optional MMIO UART.
 *
 * Threads: the main thread receives the core's messages and hands them to
 * serial_device.c; with --stdio on, a reader thread moves stdin into the
 * UART's input queue and stops reading while the queue is full (the guest's
 * reads make room and wake it).  One mutex serialises every call into the
 * device, so the interrupt messages leave in the order the model decides
 * them. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "host.h"
#include "ipc.h"
#include "log.h"
#include "serial_device.h"

#define ATTACH_TIMEOUT_MS 10000 /* dialling until WELCOME, every attempt included */
#define WELCOME_WAIT_MS 1000    /* per attempt: the core answers a HELLO at once */
#define REDIAL_MIN_MS 10        /* backoff between attempts, doubling... */
#define REDIAL_MAX_MS 200       /* ...up to this */
#define CORE_LOST_NS 3000000000ull /* transport errors for this long: the core is gone */

static const char usage[] =
	"usage: dev-serial --connect URL [--stdio on|off] [--debugcon PORT] [--mmio-uart ADDR]\n"
	"  --connect URL     the core's ipc address for this device\n"
	"  --stdio on|off    the UART at 0x3f8 on this terminal (default on)\n"
	"  --debugcon PORT   a debug port: bytes written to it go to stdout\n"
	"  --mmio-uart ADDR  a second 16550 at MMIO ADDR (8 bytes, output to stdout)\n";

static ipc_chan *chan;
static host_shm *state_shm; /* the state page, mapped from WELCOME to exit */
static struct serial_device dev;
static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t input_space = PTHREAD_COND_INITIALIZER; /* signalled after each message */

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

static void send_to_core(void *opaque, const struct ipc_msg *m)
{
	int rc = ipc_send(chan, m);
	/* A closed channel is noticed by the receive loop, which exits. */
	if (rc != IPC_OK && rc != IPC_ECLOSED)
		log_once("cannot send %s to the core (error %d)", ipc_type_name(m->type), rc);
}

/* Blocking: a slow terminal slows the guest down, nothing is dropped. */
static void write_stdout(void *opaque, uint8_t byte)
{
	if (host_stdout_write(&byte, 1) != 0)
		log_once("cannot write to stdout: %s", strerror(errno));
}

/* ---- stdin ---- */

/* Room for the largest chunk escape_filter can produce from what we read. */
static size_t wait_for_input_space(void)
{
	pthread_mutex_lock(&dev_lock);
	size_t space;
	while ((space = serial_input_space(&dev)) < 2)
		pthread_cond_wait(&input_space, &dev_lock);
	pthread_mutex_unlock(&dev_lock);
	return space;
}

static void *stdin_reader(void *arg)
{
	bool escapes = term_raw; /* only on a terminal: piped bytes pass untouched */
	struct escape esc = {0};
	uint8_t in[UART_INPUT_SIZE], out[UART_INPUT_SIZE + 1];
	for (;;) {
		size_t space = wait_for_input_space();
		long n = host_stdin_read(in, space - 1);
		if (n <= 0)
			break; /* end of input: the guest runs on without it */
		unsigned actions = 0;
		size_t len = (size_t)n;
		if (escapes)
			len = escape_filter(&esc, in, (size_t)n, out, &actions);
		else
			memcpy(out, in, len);

		pthread_mutex_lock(&dev_lock);
		serial_input(&dev, out, len); /* fits: only this thread adds input */
		if (actions & ESCAPE_HELP)
			host_stdout_write(escape_help, strlen(escape_help));
		if (actions & ESCAPE_QUIT)
			serial_quit(&dev);
		pthread_mutex_unlock(&dev_lock);
		if (actions & ESCAPE_QUIT)
			break; /* the core ends the VM and sends SHUTDOWN */
	}
	return NULL;
}

/* ---- start-up ---- */

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return false;
	*out = v;
	return true;
}

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
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
			fputs(usage, stdout);
			exit(0);
		}
		if (strcmp(opt, "--connect") && strcmp(opt, "--stdio") && strcmp(opt, "--debugcon") &&
		    strcmp(opt, "--mmio-uart"))
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
		} else if (!strcmp(opt, "--debugcon")) {
			if (!parse_u64(val, 0xffff, &v) || v - SERIAL_COM1_BASE < UART_NREGS)
				bad_usage("--debugcon: %s is not a free port number (0..0xffff, not 0x3f8..0x3ff)", val);
			cfg->debugcon = true;
			cfg->debugcon_port = (uint16_t)v;
		} else {
			if (!parse_u64(val, UINT64_MAX - UART_NREGS, &v))
				bad_usage("--mmio-uart: %s is not an address", val);
			cfg->mmio_uart = true;
			cfg->mmio_base = v;
		}
	}
	if (!url)
		bad_usage("--connect URL is required");
	return url;
}

/* Messages sent to a previous incarnation that it never took
 * (serial_keep_early), handled once attached.  The channel queues a few
 * hundred at most; the bound is against a core gone mad. */
#define EARLY_MAX 4096
static struct ipc_msg *early;
static size_t nearly;

static void keep_early(const struct ipc_msg *m)
{
	if (nearly == EARLY_MAX) {
		log_once("more than %d messages before WELCOME: dropping the rest", EARLY_MAX);
		return;
	}
	if (!(nearly & (nearly - 1))) { /* 0, 1, 2, 4...: grow by doubling */
		struct ipc_msg *bigger = realloc(early, (nearly ? 2 * nearly : 1) * sizeof(*early));
		if (!bigger) {
			log_msg("out of memory");
			exit(1);
		}
		early = bigger;
	}
	early[nearly++] = *m;
}

/* One attempt on a freshly dialled channel: HELLO number `attempt`, then
 * its answer.  False if the channel closed or nothing came by WELCOME_WAIT_MS
 * or the deadline: a new attempt may succeed (see attach). */
static bool hello_welcome(uint64_t attempt, uint64_t deadline, struct ipc_welcome *w)
{
	char err[256];
	struct ipc_msg m;
	serial_hello(&dev.cfg, &m);
	m.seq = attempt; /* the core's answer carries it */
	if (ipc_send(chan, &m) != IPC_OK)
		return false;
	uint64_t now = host_now_ns();
	if (deadline > now + WELCOME_WAIT_MS * 1000000ull)
		deadline = now + WELCOME_WAIT_MS * 1000000ull;
	for (;;) {
		now = host_now_ns();
		if (now >= deadline)
			return false;
		int rc = ipc_recv(chan, &m, (int)((deadline - now) / 1000000), err, sizeof(err));
		if (rc == IPC_EBADMSG) {
			log_once("ignoring a malformed message from the core: %s", err);
			continue;
		}
		if (rc != IPC_OK)
			return false;
		switch (m.type) {
		case IPC_WELCOME:
			/* An earlier attempt's HELLO did reach the core: the
			 * answer to this one follows. */
			if (m.seq != attempt)
				continue;
			*w = m.u.welcome;
			return true;
		case IPC_REJECT:
			log_msg("the core refused the device: %s", m.u.reason);
			exit(IPC_DEVICE_EXIT_REFUSED);
		case IPC_SHUTDOWN:
			exit(0);
		default:
			if (serial_keep_early(&m))
				keep_early(&m);
		}
	}
}

/* Dial, HELLO, WELCOME; then the state page and what was left for us.
 * A restarted device may dial before the core has noticed its previous
 * incarnation go: pair0 then refuses the new connection and closes it, and
 * that channel is closed for good.  So each attempt that closes or stays
 * unanswered is followed by a new dial, until ATTACH_TIMEOUT_MS.  Messages
 * kept from earlier attempts stay kept: they are older than later ones. */
static void attach(const char *url)
{
	char err[256];
	uint64_t deadline = host_now_ns() + ATTACH_TIMEOUT_MS * 1000000ull;
	unsigned backoff_ms = REDIAL_MIN_MS;
	struct ipc_welcome w;
	for (uint64_t attempt = 1;; attempt++) {
		uint64_t now = host_now_ns();
		int left_ms = now < deadline ? (int)((deadline - now) / 1000000) : 0;
		if (ipc_dial(url, left_ms, &chan, err, sizeof(err)) != IPC_OK) {
			log_msg("%s", err);
			exit(1);
		}
		if (hello_welcome(attempt, deadline, &w))
			break;
		ipc_close(chan);
		chan = NULL;
		if (host_now_ns() + backoff_ms * 1000000ull >= deadline) {
			log_msg("no answer from the core at %s within %d s", url, ATTACH_TIMEOUT_MS / 1000);
			exit(1);
		}
		host_sleep_ms(backoff_ms);
		backoff_ms = backoff_ms * 2 < REDIAL_MAX_MS ? backoff_ms * 2 : REDIAL_MAX_MS;
	}
	if (w.state_size < IPC_STATE_SIZE) {
		log_msg("the core's state page has %" PRIu64 " bytes, %d needed", w.state_size,
			IPC_STATE_SIZE);
		exit(1);
	}
	state_shm = host_shm_open(w.state_name, IPC_STATE_SIZE, err, sizeof(err));
	if (!state_shm) {
		log_msg("%s", err);
		exit(1);
	}
	pthread_mutex_lock(&dev_lock);
	serial_attach(&dev, host_shm_ptr(state_shm), w.flags & IPC_WELCOME_RESUMED);
	for (size_t i = 0; i < nearly; i++)
		serial_handle(&dev, &early[i]);
	pthread_mutex_unlock(&dev_lock);
	free(early);
	early = NULL;
	nearly = 0;
}

/* Every exit once attached.  The reader thread may be blocked in a read:
 * exit without joining it, but holding dev_lock, so that it never touches
 * the channel or the state page again.  atexit restores the terminal. */
static void __attribute__((noreturn)) detach_and_exit(int status)
{
	pthread_mutex_lock(&dev_lock);
	ipc_close(chan);
	host_shm_close(state_shm);
	exit(status);
}

/* ---- serving ---- */

static void serve(void)
{
	uint64_t failing_since = 0; /* first of a run of transport errors */
	for (;;) {
		struct ipc_msg m;
		char err[256];
		int rc = ipc_recv(chan, &m, -1, err, sizeof(err));
		if (rc == IPC_OK) {
			failing_since = 0;
			pthread_mutex_lock(&dev_lock);
			enum serial_verdict v = serial_handle(&dev, &m);
			pthread_cond_signal(&input_space);
			pthread_mutex_unlock(&dev_lock);
			if (v == SERIAL_EXIT)
				return;
		} else if (rc == IPC_EBADMSG) {
			log_once("ignoring a malformed message from the core: %s", err);
		} else if (rc == IPC_ECLOSED) {
			return; /* the core is gone: the VM is over */
		} else {
			uint64_t now = host_now_ns();
			if (!failing_since)
				failing_since = now;
			if (now - failing_since > CORE_LOST_NS) {
				log_msg("lost the channel to the core: %s", err);
				return;
			}
			host_sleep_ms(100);
		}
	}
}

int main(int argc, char **argv)
{
	host_child_init();
	log_init("dev-serial");
	dev.sink = (struct serial_sink){.send = send_to_core, .output = write_stdout};
	const char *url = parse_args(argc, argv, &dev.cfg);

	if (dev.cfg.stdio && host_stdin_is_tty())
		enter_raw_mode();
	attach(url);
	if (dev.cfg.stdio) {
		pthread_t reader;
		if (pthread_create(&reader, NULL, stdin_reader, NULL) != 0) {
			log_msg("cannot start the stdin reader thread");
			detach_and_exit(1);
		}
		pthread_detach(reader);
	}
	serve();
	detach_and_exit(0);
}
