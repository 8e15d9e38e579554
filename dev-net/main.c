/* main.c - the dev-net process: virtio-net (virtio_net.c) with its libslirp
 * NAT, on one devlib event loop that watches the core's channel, libslirp's
 * host sockets and its timers (poll_prepare/poll_dispatch).
 *
 * The NAT is created before the core is dialled, so that a forward whose
 * host port is taken is one error at start, and the VM does not start
 * (exit IPC_DEVICE_EXIT_REFUSED: the launcher does not retry). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devlib.h"
#include "host.h"
#include "ipc.h"
#include "log.h"
#include "net_config.h"
#include "sandbox.h"
#include "virtio_net.h"

static const char usage[] =
	"usage: dev-net --connect URL [--net KEY=VALUE]...\n"
	"  --connect URL      the core's ipc address for this device\n"
	"  --net KEY=VALUE    one [net] setting (vm.conf's keys: hostfwd, restrict, mtu, ...)\n";

static struct dev_loop *loop; /* set by dev_run before it calls the device */
static struct net_device dev;

static bool send_to_core(void *opaque, struct ipc_msg *m)
{
	return dev_send(loop, m);
}

static void wake_loop(void *opaque)
{
	dev_wake(loop);
}

/* MINIVM_STATS=1: the device's counters, as vmm-core prints its own. */
static void print_stats(const struct net_device *d)
{
	const char *env = getenv("MINIVM_STATS");
	if (!env || strcmp(env, "1"))
		return;
	const struct net_stats *s = &d->stats;
	log_msg("stats: %llu frames from the guest, %llu to it, %llu interrupts raised "
		"(%llu re-raised by an acknowledge), %llu doorbell rings taken, %llu loop wake-ups after them",
		(unsigned long long)s->tx_frames, (unsigned long long)s->rx_frames,
		(unsigned long long)s->irqs, (unsigned long long)d->vdev.acks_resignalled,
		(unsigned long long)s->doorbells, (unsigned long long)s->loop_wakes);
}

static void __attribute__((format(printf, 1, 2), noreturn)) refuse(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "dev-net: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(IPC_DEVICE_EXIT_REFUSED);
}

static const char *parse_args(int argc, char **argv, struct net_config *cfg)
{
	const char *url = NULL;
	char err[NET_ERR_MAX];
	net_config_init(cfg);
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
			fputs(usage, stdout);
			exit(0);
		}
		if (strcmp(opt, "--connect") && strcmp(opt, "--net"))
			refuse("unknown option %s\n%s", opt, usage);
		if (i + 1 >= argc)
			refuse("%s needs a value\n%s", opt, usage);
		const char *val = argv[++i];
		if (!strcmp(opt, "--connect"))
			url = val;
		else if (net_config_set_arg(cfg, val, err, sizeof(err)))
			refuse("--net %s", err);
	}
	if (!url)
		refuse("--connect URL is required\n%s", usage);
	if (net_config_check(cfg, err, sizeof(err)))
		refuse("--net %s", err);
	if (!cfg->user)
		refuse("user=off: no network device to run");
	return url;
}

int main(int argc, char **argv)
{
	host_child_init();
	log_init("dev-net");
	struct net_config cfg;
	const char *url = parse_args(argc, argv, &cfg);
	if (net_device_init(&dev, &cfg, (struct net_sink){.send = send_to_core, .wake = wake_loop}))
		refuse("out of memory");
	char err[NET_ERR_MAX];
	dev.backend = backend_create(&dev.cfg, net_frame_out, &dev, err, sizeof(err));
	if (!dev.backend)
		refuse("%s", err);
	struct dev_ops ops = net_dev_ops;
	ops.sandbox = &net_sandbox; /* entered once attached: sockets stay, files and exec go */
	int status = dev_run(url, &ops, &dev, &loop);
	print_stats(&dev);
	exit(status);
}
