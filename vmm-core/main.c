/* main.c - vmm-core: guest RAM, the CPU engine, the bus and the device
 * proxies of one VM (docs/ARCHITECTURE.md has the command-line contract).
 *
 * Exit status: 0 the guest halted or powered off, or the user quit;
 * 1 an error (one line on stderr); 2 the guest triple-faulted (one line). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot.h"
#include "bus.h"
#include "devproxy.h"
#include "engine.h"
#include "host.h"
#include "log.h"
#include "stats.h"

#define MAX_DEVICES 8
#define ATTACH_TIMEOUT_MS 10000
#define MEMORY_MIN (1ull << 20)
#define MEMORY_MAX (3ull << 30) /* the MMIO hole starts at 3 GiB */
#define PVM_MODULE "/sys/module/kvm_pvm"

enum { EXIT_GUEST_DONE = 0, EXIT_ERROR = 1, EXIT_TRIPLE_FAULT = 2 };

struct device_arg {
	char name[IPC_MAX_NAME];
	const char *url;
};

struct options {
	const char *engine;
	uint64_t memory;
	int cpus;
	const char *flat;
	enum vcpu_mode flat_mode;
	int ndevices;
	struct device_arg devices[MAX_DEVICES];
};

/* The VM as the device proxies' hooks see it: they may ask to stop it or
 * raise a line at any time, also before the engine exists. */
struct vm {
	pthread_mutex_t lock;
	const struct engine_ops *ops;
	struct engine *engine; /* set once the vCPUs are ready to run */
	int stop_asked;        /* enum vcpu_stop asked before the engine existed, or -1 */
	struct devproxy *devices[MAX_DEVICES];
	int ndevices;
};

static void usage(FILE *to)
{
	fprintf(to,
		"usage: vmm-core --engine NAME|auto --memory BYTES --cpus N\n"
		"                (--flat FILE [--flat-mode real|long] | --kernel FILE ...)\n"
		"                --device NAME=URL ...\n"
		"Runs one VM: guest RAM, the CPU engine and a proxy for each device process,\n"
		"which must dial URL and say HELLO within 10 s.  Normally started by launcher.\n"
		"  --engine NAME     kvm, soft, whpx (as built in) or auto\n"
		"  --memory BYTES    guest RAM, a multiple of 4096 from 1 MiB to 3 GiB\n"
		"  --flat FILE       raw image loaded at guest physical 0 and entered at 0,\n"
		"                    in 16-bit real mode or (--flat-mode long) in 64-bit mode\n"
		"                    with the first 4 GiB identity-mapped\n"
		"  MINIVM_STATS=1    print exit and ipc counters at exit\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		return -1;
	*out = v;
	return 0;
}

static int parse_device(const char *arg, struct options *o)
{
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : 0;
	if (!eq || len == 0 || len >= IPC_MAX_NAME || !eq[1]) {
		log_msg("--device wants NAME=URL with a name of 1 to %d characters, not '%s'",
			IPC_MAX_NAME - 1, arg);
		return -1;
	}
	if (o->ndevices == MAX_DEVICES) {
		log_msg("at most %d devices", MAX_DEVICES);
		return -1;
	}
	struct device_arg *d = &o->devices[o->ndevices++];
	memcpy(d->name, arg, len);
	d->name[len] = '\0';
	d->url = eq + 1;
	return 0;
}

/* 0: parsed; 1: error (logged); -1: help printed. */
static int parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_ENGINE = 256, OPT_MEMORY, OPT_CPUS, OPT_FLAT, OPT_FLAT_MODE, OPT_KERNEL,
	       OPT_INITRD, OPT_CMDLINE, OPT_DEVICE };
	static const struct option longopts[] = {
		{"engine", required_argument, NULL, OPT_ENGINE},
		{"memory", required_argument, NULL, OPT_MEMORY},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"flat", required_argument, NULL, OPT_FLAT},
		{"flat-mode", required_argument, NULL, OPT_FLAT_MODE},
		{"kernel", required_argument, NULL, OPT_KERNEL},
		{"initrd", required_argument, NULL, OPT_INITRD},
		{"cmdline", required_argument, NULL, OPT_CMDLINE},
		{"device", required_argument, NULL, OPT_DEVICE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct options){.engine = "auto", .cpus = 1, .flat_mode = VCPU_REAL16};
	bool have_memory = false;
	uint64_t cpus;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_ENGINE:
			o->engine = optarg;
			break;
		case OPT_MEMORY:
			if (parse_u64(optarg, &o->memory) || o->memory < MEMORY_MIN ||
			    o->memory > MEMORY_MAX || o->memory % 4096) {
				log_msg("--memory %s: want a multiple of 4096 bytes from 1 MiB to 3 GiB",
					optarg);
				return 1;
			}
			have_memory = true;
			break;
		case OPT_CPUS:
			if (parse_u64(optarg, &cpus) || cpus < 1 || cpus > 64) {
				log_msg("--cpus %s: want a number from 1 to 64", optarg);
				return 1;
			}
			o->cpus = (int)cpus;
			break;
		case OPT_FLAT:
			o->flat = optarg;
			break;
		case OPT_FLAT_MODE:
			if (strcmp(optarg, "real") == 0) {
				o->flat_mode = VCPU_REAL16;
			} else if (strcmp(optarg, "long") == 0) {
				o->flat_mode = VCPU_LONG64;
			} else {
				log_msg("--flat-mode %s: want real or long", optarg);
				return 1;
			}
			break;
		case OPT_KERNEL:
		case OPT_INITRD:
		case OPT_CMDLINE:
			log_msg("--kernel, --initrd and --cmdline are not supported yet: "
				"Linux boot comes with the board");
			return 1;
		case OPT_DEVICE:
			if (parse_device(optarg, o))
				return 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			log_msg("unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
			return 1;
		}
	}
	if (optind < argc) {
		log_msg("unexpected argument '%s' (see --help)", argv[optind]);
		return 1;
	}
	if (!have_memory || !o->flat) {
		log_msg("--memory and --flat are required (see --help)");
		return 1;
	}
	if (o->cpus > 1) {
		log_msg("--cpus %d: only 1 vCPU until SMP start-up exists (it comes with the board)",
			o->cpus);
		return 1;
	}
	return 0;
}

static bool pvm_host(void)
{
	return access(PVM_MODULE, F_OK) == 0;
}

/* Resolve --engine.  `auto` takes the first available engine, except that on
 * a PVM host KVM runs ordinary kernels at ~3 MIPS: prefer another engine
 * (soft), and stop if there is none.  An explicit `kvm` just runs. */
static const struct engine_ops *choose_engine(const char *name)
{
	char why[256];
	if (strcmp(name, "auto") != 0) {
		const struct engine_ops *ops = engine_find(name);
		if (!ops) {
			log_msg("engine '%s' is not built into this vmm-core", name);
			return NULL;
		}
		if (!ops->available(why, sizeof(why))) {
			log_msg("engine %s: %s", name, why);
			return NULL;
		}
		return ops;
	}
	bool skipped_pvm_kvm = false;
	char first_why[256] = "";
	for (size_t i = 0; engine_list[i]; i++) {
		const struct engine_ops *ops = engine_list[i];
		if (strcmp(ops->name, "kvm") == 0 && pvm_host()) {
			skipped_pvm_kvm = true;
			continue;
		}
		if (ops->available(why, sizeof(why))) {
			if (skipped_pvm_kvm)
				log_msg("host KVM is PVM (~3 MIPS for ordinary kernels): using the %s engine",
					ops->name);
			return ops;
		}
		if (!first_why[0])
			snprintf(first_why, sizeof(first_why), "%s", why);
	}
	if (skipped_pvm_kvm)
		log_msg("host KVM is PVM (~3 MIPS for ordinary kernels) and the soft engine is not "
			"built in: choose --engine kvm explicitly to run anyway");
	else if (first_why[0])
		log_msg("no engine can run here: %s", first_why);
	else
		log_msg("no engine is built into this vmm-core");
	return NULL;
}

static int load_flat(const char *path, uint8_t *ram, uint64_t ram_size, uint64_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		log_msg("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	size_t n = fread(ram, 1, ram_size, f);
	bool too_big = n == ram_size && fgetc(f) != EOF;
	bool failed = ferror(f);
	fclose(f);
	if (failed) {
		log_msg("cannot read %s", path);
		return -1;
	}
	if (too_big) {
		log_msg("%s does not fit in guest RAM", path);
		return -1;
	}
	*size = n;
	return 0;
}

/* ---- the hooks the device proxies call ---- */

static void vm_stop(struct vm *vm, enum vcpu_stop reason)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->engine)
		vm->ops->stop(vm->engine, reason);
	else if (vm->stop_asked < 0)
		vm->stop_asked = (int)reason;
	pthread_mutex_unlock(&vm->lock);
}

static void hook_quit(void *opaque)
{
	vm_stop(opaque, VCPU_STOP_POWEROFF);
}

static void hook_irq(void *opaque, unsigned line, int level)
{
	struct vm *vm = opaque;
	pthread_mutex_lock(&vm->lock);
	if (vm->engine)
		vm->ops->set_irq(vm->engine, line, level);
	pthread_mutex_unlock(&vm->lock);
}

struct vcpu_thread {
	struct vm *vm;
	struct engine *engine;
	int cpu;
	struct vcpu_stop_info stop;
};

static void *vcpu_thread(void *arg)
{
	struct vcpu_thread *t = arg;
	t->vm->ops->vcpu_run(t->engine, t->cpu, &t->stop);
	return NULL;
}

static int attach_devices(struct vm *vm, const struct options *o, const struct devproxy_board *b)
{
	char err[256];
	for (int i = 0; i < o->ndevices; i++) {
		vm->devices[i] = devproxy_create(o->devices[i].name, o->devices[i].url, b, err,
						 sizeof(err));
		if (!vm->devices[i]) {
			log_msg("%s", err);
			return -1;
		}
		vm->ndevices++;
	}
	/* One 10 s budget for all of them: they start in parallel. */
	uint64_t deadline = host_now_ns() + (uint64_t)ATTACH_TIMEOUT_MS * 1000000;
	for (int i = 0; i < vm->ndevices; i++) {
		uint64_t now = host_now_ns();
		int left_ms = now < deadline ? (int)((deadline - now) / 1000000) : 0;
		if (devproxy_wait_attached(vm->devices[i], left_ms, err, sizeof(err))) {
			log_msg("%s", err);
			return -1;
		}
	}
	return 0;
}

/* Create the engine and vCPU 0 and run it to its end; the exit status. */
static int run_vm(struct vm *vm, const struct options *o, struct bus *bus, uint8_t *ram,
		  const struct vcpu_boot *boot)
{
	char err[256];
	struct engine_config cfg = {.ram = ram,
				    .ram_size = o->memory,
				    .cpus = o->cpus,
				    .bus = bus_engine_callbacks(bus)};
	struct engine *engine = vm->ops->create(&cfg, err, sizeof(err));
	if (!engine) {
		log_msg("engine %s: %s", vm->ops->name, err);
		return EXIT_ERROR;
	}
	if (vm->ops->vcpu_init(engine, 0, boot, err, sizeof(err))) {
		log_msg("engine %s: %s", vm->ops->name, err);
		vm->ops->destroy(engine);
		return EXIT_ERROR;
	}
	pthread_mutex_lock(&vm->lock);
	vm->engine = engine;
	if (vm->stop_asked >= 0)
		vm->ops->stop(engine, (enum vcpu_stop)vm->stop_asked);
	pthread_mutex_unlock(&vm->lock);

	struct vcpu_thread t = {.vm = vm, .engine = engine, .cpu = 0};
	pthread_t thread;
	if (pthread_create(&thread, NULL, vcpu_thread, &t)) {
		log_msg("cannot start the vCPU thread");
		return EXIT_ERROR;
	}
	pthread_join(thread, NULL);

	pthread_mutex_lock(&vm->lock);
	vm->engine = NULL;
	pthread_mutex_unlock(&vm->lock);
	vm->ops->destroy(engine);

	switch (t.stop.reason) {
	case VCPU_STOP_HALT:
	case VCPU_STOP_POWEROFF:
		return EXIT_GUEST_DONE;
	case VCPU_STOP_RESET:
		log_msg("the guest asked for a reset, which does not exist yet: stopping");
		return EXIT_GUEST_DONE;
	case VCPU_STOP_SHUTDOWN:
		log_msg("%s", t.stop.diag);
		return EXIT_TRIPLE_FAULT;
	case VCPU_STOP_ERROR:
		break;
	}
	log_msg("%s", t.stop.diag);
	return EXIT_ERROR;
}

int main(int argc, char **argv)
{
	log_init("vmm-core");
	host_child_init();
	struct options o;
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc < 0 ? 0 : EXIT_ERROR;

	struct vm vm = {.stop_asked = -1};
	pthread_mutex_init(&vm.lock, NULL);
	vm.ops = choose_engine(o.engine);
	if (!vm.ops)
		return EXIT_ERROR;

	char err[256];
	host_shm *ram_shm = host_shm_create("guest-ram", o.memory, err, sizeof(err));
	if (!ram_shm) {
		log_msg("cannot create %llu bytes of guest RAM: %s", (unsigned long long)o.memory, err);
		return EXIT_ERROR;
	}
	uint8_t *ram = host_shm_ptr(ram_shm);
	uint64_t image_size;
	struct vcpu_boot boot;
	if (load_flat(o.flat, ram, o.memory, &image_size))
		return EXIT_ERROR;
	if (boot_flat(ram, o.memory, image_size, o.flat_mode, &boot, err, sizeof(err))) {
		log_msg("%s: %s", o.flat, err);
		return EXIT_ERROR;
	}

	struct bus bus;
	bus_init(&bus, o.memory);
	struct devproxy_board board = {
		.bus = &bus,
		.ram_name = host_shm_name(ram_shm),
		.ram_size = o.memory,
		.hooks = {.opaque = &vm, .irq = hook_irq, .quit = hook_quit},
	};
	uint64_t start = host_now_ns();
	int status = attach_devices(&vm, &o, &board) ? EXIT_ERROR : run_vm(&vm, &o, &bus, ram, &boot);
	uint64_t run_ns = host_now_ns() - start;

	for (int i = 0; i < vm.ndevices; i++)
		devproxy_abort(vm.devices[i]);
	for (int i = 0; i < vm.ndevices; i++)
		devproxy_shutdown_and_destroy(vm.devices[i]);
	stats_print_if_asked(run_ns);
	host_shm_close(ram_shm);
	return status;
}
