/* ipc_bench.c - what a forwarded device access costs.
 *
 *   ipc_bench [READS [WRITES]]      (defaults: 20000 reads, 200000 writes)
 *
 * A forked "device" process serves a real ipc:// channel the way dev-serial
 * does.  Measured:
 *  (a) the round trip of a forwarded read, IO_READ -> IO_REPLY;
 *  (b) the rate of posted IO_WRITEs, until the device has applied them all
 *      (a PING after the last write: its PONG comes after every write);
 *  (c) the same round trip over a raw AF_UNIX SOCK_SEQPACKET socketpair with
 *      messages of the same sizes, the floor any channel here could reach.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host.h"
#include "ipc.h"
#include "parse.h"

#define WARMUP 200
#define RAW_READ_BYTES 32  /* an encoded IO_READ */
#define RAW_REPLY_BYTES 24 /* an encoded IO_REPLY */

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "ipc_bench: %s: %s\n", what, detail);
	exit(1);
}

/* ---- the device side ---- */

/* Answers reads, applies writes, answers PING, stops at SHUTDOWN. */
static void device_main(const char *url)
{
	char err[256];
	ipc_chan *c;
	if (ipc_dial(url, 5000, &c, err, sizeof(err)) != IPC_OK)
		die("device", err);
	uint64_t applied = 0;
	for (;;) {
		struct ipc_msg m, out;
		int rc = ipc_recv(c, &m, -1, err, sizeof(err));
		if (rc != IPC_OK)
			die("device receive", err);
		switch (m.type) {
		case IPC_IO_READ:
			out = (struct ipc_msg){ .type = IPC_IO_REPLY, .seq = m.seq };
			out.u.io.data = applied;
			ipc_send(c, &out);
			break;
		case IPC_IO_WRITE:
			applied++;
			break;
		case IPC_PING:
			out = (struct ipc_msg){ .type = IPC_PONG, .seq = m.seq };
			ipc_send(c, &out);
			break;
		case IPC_SHUTDOWN:
			ipc_close(c);
			_exit(0);
		default:
			break;
		}
	}
}

static void raw_echo_main(int fd)
{
	uint8_t buf[64], reply[RAW_REPLY_BYTES] = { 0 };
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			_exit(0);
		if (send(fd, reply, sizeof(reply), 0) != (ssize_t)sizeof(reply))
			_exit(1);
	}
}

/* ---- statistics ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorts the samples (ns); median and 99th percentile in microseconds. */
static void percentiles(uint64_t *ns, size_t n, double *median_us, double *p99_us)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	*median_us = ns[n / 2] / 1000.0;
	*p99_us = ns[(n * 99) / 100] / 1000.0;
}

/* ---- the core side ---- */

static void read_once(ipc_chan *c, uint64_t seq)
{
	struct ipc_msg m = { .type = IPC_IO_READ, .seq = seq };
	m.u.io = (struct ipc_io){ .space = IPC_SPACE_PIO, .size = 1, .addr = 0x3fd };
	char err[256] = "";
	if (ipc_send(c, &m) != IPC_OK)
		die("send IO_READ", "channel failed");
	if (ipc_recv(c, &m, 5000, err, sizeof(err)) != IPC_OK)
		die("receive IO_REPLY", err[0] ? err : "timed out");
	if (m.type != IPC_IO_REPLY || m.seq != seq)
		die("receive IO_REPLY", "unexpected message");
}

static double bench_reads(ipc_chan *c, uint64_t *ns, size_t n, double *p99_us)
{
	for (uint64_t i = 0; i < WARMUP; i++)
		read_once(c, i);
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = host_now_ns();
		read_once(c, WARMUP + i);
		ns[i] = host_now_ns() - t0;
	}
	double median_us;
	percentiles(ns, n, &median_us, p99_us);
	return median_us;
}

/* Messages per second for n posted writes, all applied by the device. */
static double bench_writes(ipc_chan *c, size_t n, double *seconds)
{
	uint64_t t0 = host_now_ns();
	for (size_t i = 0; i < n; i++) {
		struct ipc_msg m = { .type = IPC_IO_WRITE, .seq = i + 1 };
		m.u.io = (struct ipc_io){ .space = IPC_SPACE_PIO, .size = 1, .addr = 0x3f8, .data = 'a' + i % 26 };
		if (ipc_send(c, &m) != IPC_OK)
			die("send IO_WRITE", "channel failed");
	}
	struct ipc_msg ping = { .type = IPC_PING, .seq = 1 };
	char err[256] = "";
	if (ipc_send(c, &ping) != IPC_OK || ipc_recv(c, &ping, 60000, err, sizeof(err)) != IPC_OK ||
	    ping.type != IPC_PONG)
		die("waiting for the writes to be applied", err[0] ? err : "no PONG");
	*seconds = (host_now_ns() - t0) / 1e9;
	return n / *seconds;
}

static double bench_raw(int fd, uint64_t *ns, size_t n, double *p99_us)
{
	uint8_t msg[RAW_READ_BYTES] = { 0 }, reply[64];
	for (size_t i = 0; i < WARMUP + n; i++) {
		uint64_t t0 = host_now_ns();
		if (send(fd, msg, sizeof(msg), 0) != (ssize_t)sizeof(msg) || recv(fd, reply, sizeof(reply), 0) <= 0)
			die("raw socket", strerror(errno));
		if (i >= WARMUP)
			ns[i - WARMUP] = host_now_ns() - t0;
	}
	double median_us;
	percentiles(ns, n, &median_us, p99_us);
	return median_us;
}

static size_t count_arg(const char *s, const char *what)
{
	uint64_t v;
	if (!parse_u64(s, 100000000, &v) || v == 0)
		die(what, "expected a count between 1 and 100000000");
	return (size_t)v;
}

int main(int argc, char **argv)
{
	size_t reads = argc > 1 ? count_arg(argv[1], "READS") : 20000;
	size_t writes = argc > 2 ? count_arg(argv[2], "WRITES") : 200000;
	uint64_t *ns = malloc(reads * sizeof(*ns));
	char dir[256], url[300], err[256] = "";
	if (!ns)
		die("memory", "out of memory");
	if (host_runtime_dir_create(dir, sizeof(dir), err, sizeof(err)) < 0)
		die("runtime directory", err);
	if (host_ipc_url(dir, "bench", url, sizeof(url)) < 0)
		die("url", "too long");

	/* Fork the peers before nng starts its threads in this process. */
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair) < 0)
		die("socketpair", strerror(errno));
	pid_t raw_pid = fork();
	if (raw_pid == 0) {
		close(pair[0]);
		raw_echo_main(pair[1]);
	}
	close(pair[1]);
	pid_t dev_pid = fork();
	if (dev_pid == 0) {
		close(pair[0]);
		device_main(url);
	}
	if (raw_pid < 0 || dev_pid < 0)
		die("fork", strerror(errno));

	ipc_chan *core;
	if (ipc_listen(url, NULL, NULL, &core, err, sizeof(err)) != IPC_OK)
		die("listen", err);

	double ipc_p99, raw_p99, write_s;
	double ipc_median = bench_reads(core, ns, reads, &ipc_p99);
	printf("ipc read round trip: median %.1f us, p99 %.1f us (%zu samples)\n", ipc_median, ipc_p99, reads);
	double rate = bench_writes(core, writes, &write_s);
	printf("ipc posted writes: %.0f messages/s (%zu writes, all applied in %.2f s)\n", rate, writes, write_s);
	double raw_median = bench_raw(pair[0], ns, reads, &raw_p99);
	printf("raw AF_UNIX SOCK_SEQPACKET round trip: median %.1f us, p99 %.1f us (%zu samples)\n", raw_median,
	       raw_p99, reads);
	printf("ipc channel vs raw socket (median round trip): %.2fx\n", ipc_median / raw_median);

	struct ipc_msg bye = { .type = IPC_SHUTDOWN };
	ipc_send(core, &bye);
	close(pair[0]); /* the raw echo process sees EOF */
	int status;
	waitpid(dev_pid, &status, 0);
	waitpid(raw_pid, NULL, 0);
	ipc_close(core);
	host_runtime_dir_remove(dir);
	free(ns);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
