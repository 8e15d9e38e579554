/* main.c - vmm-core: guest RAM, the CPU engine, the bus and the device
 * proxies of one VM (docs/ARCHITECTURE.md has the command-line contract).
 *
 * Exit status: 0 the guest halted or powered off, or the user quit (or
 * reset with --no-reboot); 1 an error (one line on stderr); 2 the guest
 * triple-faulted (one line).  A reset without --no-reboot reboots the guest:
 * the image is loaded again and the vCPUs start over.
 *
 * The x86 board (Linux guests): RAM from 0; in the BIOS area (0xE0000,
 * reserved in the e820 map) the ACPI tables and a reset stub at the reset
 * vector; the zero page at 0x7000, the boot stack below 0x9000, the
 * long-mode start-up tables at 0x9000..0x10000 (low, because the initrd goes
 * to the top of RAM), the command line at 0x20000, the kernel where its
 * header asks (16 MiB).  In this process: the IOAPIC at 0xFEC00000, the
 * FADT's power and reset ports at 0x600..0x602, the boot-time marker at
 * 0x3f0, the CMOS clock at 0x70.  Each vCPU's LAPIC (0xFEE00000) is the
 * engine's; the UART is dev-serial's. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acpi.h"
#include "boot.h"
#include "bootmark.h"
#include "bus.h"
#include "devproxy.h"
#include "engine.h"
#include "host.h"
#include "ioapic.h"
#include "linux_boot.h"
#include "log.h"
#include "power.h"
#include "rtc.h"
#include "stats.h"

#define MAX_DEVICES 8
#define MAX_CPUS 8 /* vCPUs; the launcher offers 1 to 8 */
#define ATTACH_TIMEOUT_MS 10000
#define MEMORY_MIN (1ull << 20)
#define MEMORY_MAX (3ull << 30) /* the MMIO hole starts at 3 GiB */
#define PVM_MODULE "/sys/module/kvm_pvm"

enum { EXIT_GUEST_DONE = 0, EXIT_ERROR = 1, EXIT_TRIPLE_FAULT = 2 };
#define RUN_REBOOT (-1) /* run_vm: the guest reset and wants to start again */

/* Guest-physical layout of the board (see the top of this file). */
#define BOARD_ACPI_REGION 0xe0000u
#define BOARD_ACPI_REGION_SIZE (POWER_RESET_VECTOR - BOARD_ACPI_REGION) /* the reset stub follows */
#define BOARD_BOOT_STACK_TOP 0x9000u
#define BOARD_BOOT_TABLES 0x9000u
#define BOARD_SERIAL_PORT 0x3f8
#define BOARD_SERIAL_IRQ 4

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
	const char *kernel, *initrd, *cmdline;
	uint64_t launch_ns; /* host_now_ns() when the launcher started */
	bool no_reboot;     /* a guest reset ends the VM (exit 0) */
	int ndevices;
	struct device_arg devices[MAX_DEVICES];
};

/* The VM as the device proxies' hooks see it: they may ask to stop it or
 * raise a line at any time, also before the engine exists. */
struct vm {
	pthread_mutex_t lock;
	const struct engine_ops *ops;
	struct engine *engine; /* set once the vCPUs are ready to run */
	bool poweroff_asked;   /* the user quit or the guest powered off: ends the VM
	                        * even if asked between reboots or during a reset */
	struct devproxy *devices[MAX_DEVICES];
	int ndevices;
	/* The board devices in this process. */
	struct ioapic ioapic;
	struct power power;
	struct bootmark bootmark;
	struct rtc rtc;
};

static void usage(FILE *to)
{
	fprintf(to,
		"usage: vmm-core --engine NAME|auto --memory BYTES --cpus N\n"
		"                (--flat FILE [--flat-mode real|long] |\n"
		"                 --kernel FILE [--initrd FILE] [--cmdline STR])\n"
		"                [--launch-time-ns NS] [--no-reboot] --device NAME=URL ...\n"
		"Runs one VM: guest RAM, the CPU engine and a proxy for each device process,\n"
		"which must dial URL and say HELLO within 10 s.  Normally started by launcher.\n"
		"  --engine NAME     kvm, soft, whpx (as built in) or auto\n"
		"  --memory BYTES    guest RAM, a multiple of 4096 from 1 MiB to 3 GiB\n"
		"  --flat FILE       raw image loaded at guest physical 0 and entered at 0,\n"
		"                    in 16-bit real mode or (--flat-mode long) in 64-bit mode\n"
		"                    with the first 4 GiB identity-mapped\n"
		"  --kernel FILE     Linux bzImage or ELF vmlinux, entered in 64-bit mode\n"
		"  --initrd FILE     initial ramdisk, placed at the top of RAM\n"
		"  --cmdline STR     kernel command line\n"
		"  --launch-time-ns NS  host_now_ns() at launch, for the boot-time marker\n"
		"  --no-reboot       a guest reset ends the VM with status 0\n"
		"  MINIVM_STATS=1    print exit and ipc counters at exit\n"
		"  MINIVM_BOOT_TIME=1  print the boot-time marker (port 0x3f0) when it arrives\n");
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
	       OPT_INITRD, OPT_CMDLINE, OPT_DEVICE, OPT_LAUNCH_TIME, OPT_NO_REBOOT };
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
		{"launch-time-ns", required_argument, NULL, OPT_LAUNCH_TIME},
		{"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct options){.engine = "auto", .cpus = 1, .flat_mode = VCPU_REAL16,
			      .launch_ns = host_now_ns()};
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
			if (parse_u64(optarg, &cpus) || cpus < 1 || cpus > MAX_CPUS) {
				log_msg("--cpus %s: want a number from 1 to %d", optarg, MAX_CPUS);
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
			o->kernel = optarg;
			break;
		case OPT_INITRD:
			o->initrd = optarg;
			break;
		case OPT_CMDLINE:
			o->cmdline = optarg;
			break;
		case OPT_LAUNCH_TIME:
			if (parse_u64(optarg, &o->launch_ns)) {
				log_msg("--launch-time-ns %s: want a number of nanoseconds", optarg);
				return 1;
			}
			break;
		case OPT_NO_REBOOT:
			o->no_reboot = true;
			break;
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
	if (!have_memory || !o->flat == !o->kernel) {
		log_msg("--memory and one of --flat or --kernel are required (see --help)");
		return 1;
	}
	if (!o->kernel && (o->initrd || o->cmdline)) {
		log_msg("--initrd and --cmdline go with --kernel");
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

/* Load a Linux kernel (and initrd, command line) with the board's memory
 * map and ACPI tables, and fill the 64-bit boot state. */
static int load_linux(const struct options *o, uint8_t *ram, struct vcpu_boot *boot)
{
	char err[256];
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t kernel_size = 0, initrd_size = 0;
	int rc = -1;
	if (linux_read_file(o->kernel, &kernel, &kernel_size, err, sizeof(err)) ||
	    (o->initrd && linux_read_file(o->initrd, &initrd, &initrd_size, err, sizeof(err)))) {
		log_msg("cannot read %s", err);
		goto out;
	}
	struct e820_entry e820[4];
	int ne820 = linux_e820_pc(o->memory, e820, 4);
	if (ne820 < 0) {
		log_msg("--memory: a Linux guest needs at least 2 MiB");
		goto out;
	}
	struct acpi_config acpi = {
		.cpus = (unsigned)o->cpus,
		.sleep_control_port = POWER_SLEEP_CONTROL_PORT,
		.sleep_status_port = POWER_SLEEP_STATUS_PORT,
		.reset_port = POWER_RESET_PORT,
		.reset_value = POWER_RESET_VALUE,
		.serial_port = BOARD_SERIAL_PORT,
		.serial_irq = BOARD_SERIAL_IRQ,
	};
	uint64_t rsdp = acpi_build(ram, o->memory, BOARD_ACPI_REGION, BOARD_ACPI_REGION_SIZE, &acpi,
				   err, sizeof(err));
	if (!rsdp || power_install_reset_stub(ram, o->memory)) {
		log_msg("%s", rsdp ? "no room for the reset vector" : err);
		goto out;
	}
	struct linux_load_args args = {
		.kernel = kernel,
		.kernel_size = kernel_size,
		.initrd = initrd,
		.initrd_size = initrd_size,
		.cmdline = o->cmdline,
		.e820 = e820,
		.e820_count = (unsigned)ne820,
		.boot_params_addr = LINUX_BOOT_PARAMS_ADDR,
		.cmdline_addr = LINUX_CMDLINE_ADDR,
		.acpi_rsdp_addr = rsdp,
		.host_decompress = linux_host_decompress_available(),
	};
	struct linux_loaded loaded;
	if (linux_load(ram, o->memory, &args, &loaded, err, sizeof(err))) {
		log_msg("%s: %s", o->kernel, err);
		goto out;
	}
	*boot = (struct vcpu_boot){.mode = VCPU_LONG64,
				   .entry = loaded.entry,
				   .rsp = BOARD_BOOT_STACK_TOP,
				   .rsi = loaded.boot_params};
	if (boot_long_mode_tables(ram, o->memory, BOARD_BOOT_TABLES, boot, err, sizeof(err))) {
		log_msg("%s", err);
		goto out;
	}
	rc = 0;
out:
	free(kernel);
	free(initrd);
	return rc;
}

/* Put the guest image in RAM and fill the vCPU's start state. */
static int load_guest(const struct options *o, uint8_t *ram, struct vcpu_boot *boot)
{
	if (o->kernel)
		return load_linux(o, ram, boot);
	char err[256];
	uint64_t image_size;
	if (load_flat(o->flat, ram, o->memory, &image_size))
		return -1;
	if (boot_flat(ram, o->memory, image_size, o->flat_mode, boot, err, sizeof(err))) {
		log_msg("%s: %s", o->flat, err);
		return -1;
	}
	return 0;
}

/* ---- the hooks the device proxies and board devices call ---- */

static void vm_stop(struct vm *vm, enum vcpu_stop reason)
{
	pthread_mutex_lock(&vm->lock);
	/* A reset comes only from a running vCPU; a poweroff (Ctrl-A x) can
	 * come at any time, so it is remembered beyond this engine. */
	if (reason == VCPU_STOP_POWEROFF)
		vm->poweroff_asked = true;
	if (vm->engine)
		vm->ops->stop(vm->engine, reason);
	pthread_mutex_unlock(&vm->lock);
}

static void hook_quit(void *opaque)
{
	vm_stop(opaque, VCPU_STOP_POWEROFF);
}

static void board_stop(void *opaque, enum vcpu_stop reason)
{
	vm_stop(opaque, reason);
}

/* A device's line goes to the board's IOAPIC when the engine takes its
 * messages; otherwise (KVM for now) to the engine's own line input. */
static void hook_irq(void *opaque, unsigned line, int level)
{
	struct vm *vm = opaque;
	if (vm->ops->signal_msi) {
		ioapic_set_irq(&vm->ioapic, line, level);
		return;
	}
	pthread_mutex_lock(&vm->lock);
	if (vm->engine && vm->ops->set_irq)
		vm->ops->set_irq(vm->engine, line, level);
	pthread_mutex_unlock(&vm->lock);
}

/* The IOAPIC's messages (called with its lock held: lock order is IOAPIC,
 * then vm->lock, then the engine's LAPICs). */
static void ioapic_to_engine(void *opaque, uint64_t address, uint32_t data)
{
	struct vm *vm = opaque;
	pthread_mutex_lock(&vm->lock);
	if (vm->engine)
		vm->ops->signal_msi(vm->engine, address, data);
	pthread_mutex_unlock(&vm->lock);
}

static void engine_eoi(void *opaque, uint8_t vector)
{
	struct vm *vm = opaque;
	ioapic_eoi(&vm->ioapic, vector);
}

/* Put the board devices of this process on the bus. */
static int attach_board(struct vm *vm, struct bus *bus, const struct options *o)
{
	char err[256];
	struct ioapic_sink sink = {.opaque = vm, .deliver = ioapic_to_engine};
	ioapic_init(&vm->ioapic, ACPI_IOAPIC_ADDR, (uint8_t)o->cpus, &sink); /* id after the LAPICs, as in the MADT */
	power_init(&vm->power, board_stop, vm);
	const char *announce = getenv("MINIVM_BOOT_TIME");
	bootmark_init(&vm->bootmark, o->launch_ns, announce && strcmp(announce, "1") == 0);
	rtc_init(&vm->rtc);
	if (bus_attach(bus, &vm->ioapic.dev, &vm->ioapic.range, 1, err, sizeof(err)) ||
	    bus_attach(bus, &vm->power.dev, &vm->power.range, 1, err, sizeof(err)) ||
	    bus_attach(bus, &vm->bootmark.dev, &vm->bootmark.range, 1, err, sizeof(err)) ||
	    bus_attach(bus, &vm->rtc.dev, &vm->rtc.range, 1, err, sizeof(err))) {
		log_msg("board: %s", err);
		return -1;
	}
	return 0;
}

struct vcpu_thread {
	struct vm *vm;
	struct engine *engine;
	int cpu;
	struct vcpu_stop_info stop;
};

/* Each vCPU on its own thread.  The VM ends with the boot vCPU, or when
 * any vCPU fails (triple fault, engine error): then the others are stopped.
 * An application processor that halts with interrupts off just ends. */
static void *vcpu_thread(void *arg)
{
	struct vcpu_thread *t = arg;
	t->vm->ops->vcpu_run(t->engine, t->cpu, &t->stop);
	bool failed = t->stop.reason == VCPU_STOP_SHUTDOWN || t->stop.reason == VCPU_STOP_ERROR;
	if (t->cpu == 0 || failed)
		t->vm->ops->stop(t->engine, VCPU_STOP_POWEROFF); /* no-op if a reason is set */
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
				    .bus = bus_engine_callbacks(bus),
				    .irqchip = {.opaque = vm, .eoi = engine_eoi}};
	struct engine *engine = vm->ops->create(&cfg, err, sizeof(err));
	if (!engine) {
		log_msg("engine %s: %s", vm->ops->name, err);
		return EXIT_ERROR;
	}
	struct vcpu_boot ap_boot = {.mode = VCPU_WAIT_SIPI};
	for (int cpu = 0; cpu < o->cpus; cpu++) {
		if (vm->ops->vcpu_init(engine, cpu, cpu == 0 ? boot : &ap_boot, err, sizeof(err))) {
			log_msg("engine %s: %s", vm->ops->name, err);
			vm->ops->destroy(engine);
			return EXIT_ERROR;
		}
	}
	pthread_mutex_lock(&vm->lock);
	vm->engine = engine;
	if (vm->poweroff_asked)
		vm->ops->stop(engine, VCPU_STOP_POWEROFF);
	pthread_mutex_unlock(&vm->lock);

	struct vcpu_thread threads[MAX_CPUS];
	pthread_t ids[MAX_CPUS];
	int started = 0;
	for (; started < o->cpus; started++) {
		threads[started] = (struct vcpu_thread){.vm = vm, .engine = engine, .cpu = started};
		if (pthread_create(&ids[started], NULL, vcpu_thread, &threads[started])) {
			log_msg("cannot start the thread of vCPU %d", started);
			vm->ops->stop(engine, VCPU_STOP_POWEROFF);
			break;
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(ids[i], NULL);

	pthread_mutex_lock(&vm->lock);
	vm->engine = NULL;
	bool poweroff_asked = vm->poweroff_asked;
	pthread_mutex_unlock(&vm->lock);
	vm->ops->destroy(engine);
	if (started < o->cpus)
		return EXIT_ERROR;

	/* The boot vCPU's end is the VM's, unless another vCPU failed. */
	struct vcpu_thread t = threads[0];
	for (int i = 1; i < o->cpus; i++)
		if (threads[i].stop.reason == VCPU_STOP_SHUTDOWN || threads[i].stop.reason == VCPU_STOP_ERROR)
			t = threads[i];
	switch (t.stop.reason) {
	case VCPU_STOP_HALT:
	case VCPU_STOP_POWEROFF:
		return EXIT_GUEST_DONE;
	case VCPU_STOP_RESET:
		return o->no_reboot || poweroff_asked ? EXIT_GUEST_DONE : RUN_REBOOT;
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

	struct vm vm = {0};
	pthread_mutex_init(&vm.lock, NULL);
	vm.ops = choose_engine(o.engine);
	if (!vm.ops)
		return EXIT_ERROR;
	if (o.cpus > 1 && !vm.ops->signal_msi) {
		/* Application processors start through LAPIC INIT/SIPI. */
		log_msg("--cpus %d: the %s engine has no LAPICs yet: use 1 vCPU or the soft engine",
			o.cpus, vm.ops->name);
		return EXIT_ERROR;
	}

	char err[256];
	host_shm *ram_shm = host_shm_create("guest-ram", o.memory, err, sizeof(err));
	if (!ram_shm) {
		log_msg("cannot create %llu bytes of guest RAM: %s", (unsigned long long)o.memory, err);
		return EXIT_ERROR;
	}
	uint8_t *ram = host_shm_ptr(ram_shm);
	struct vcpu_boot boot;
	if (load_guest(&o, ram, &boot))
		return EXIT_ERROR;

	struct bus bus;
	bus_init(&bus, o.memory);
	if (attach_board(&vm, &bus, &o))
		return EXIT_ERROR;
	struct devproxy_board board = {
		.bus = &bus,
		.ram_name = host_shm_name(ram_shm),
		.ram_size = o.memory,
		.hooks = {.opaque = &vm, .irq = hook_irq, .quit = hook_quit},
	};
	uint64_t start = host_now_ns();
	int status = attach_devices(&vm, &o, &board) ? EXIT_ERROR : run_vm(&vm, &o, &bus, ram, &boot);
	while (status == RUN_REBOOT) {
		/* QEMU's behaviour: the machine starts over with the same image,
		 * and every device is reset (host input queued for the UART
		 * stays: it was typed for the next boot too). */
		log_msg("the guest reset the machine: rebooting");
		ioapic_reset(&vm.ioapic);
		for (int i = 0; i < vm.ndevices; i++)
			devproxy_reset(vm.devices[i]);
		status = load_guest(&o, ram, &boot) ? EXIT_ERROR : run_vm(&vm, &o, &bus, ram, &boot);
	}
	uint64_t run_ns = host_now_ns() - start;

	for (int i = 0; i < vm.ndevices; i++)
		devproxy_abort(vm.devices[i]);
	for (int i = 0; i < vm.ndevices; i++)
		devproxy_shutdown_and_destroy(vm.devices[i]);
	stats_print_if_asked(run_ns);
	const char *stats = getenv("MINIVM_STATS");
	uint64_t marker_ns = atomic_load(&vm.bootmark.elapsed_ns);
	if (stats && strcmp(stats, "1") == 0 && marker_ns)
		log_msg("boot marker: %llu ms after launch", (unsigned long long)(marker_ns / 1000000));
	host_shm_close(ram_shm);
	return status;
}
