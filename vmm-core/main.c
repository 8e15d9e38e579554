/* main.c - vmm-core: guest RAM, the CPU engine, the bus and the device
 * proxies of one VM (docs/ARCHITECTURE.md has the command-line contract).
 *
 * Exit status: 0 the guest halted or powered off, or the user quit (or
 * reset with --no-reboot); 1 an error (one line on stderr); 2 the guest
 * triple-faulted (one line).  A reset without --no-reboot reboots the guest:
 * the image is loaded again and the vCPUs start over.
 *
 * The x86 board (Linux guests): RAM from 0 up to 3 GiB, the rest of it from
 * 4 GiB (the 32-bit MMIO hole between); in the BIOS area (0xE0000,
 * reserved in the e820 map) the ACPI tables and a reset stub at the reset
 * vector; the zero page at 0x7000, the boot stack below 0x9000, the
 * long-mode start-up tables at 0x9000..0x10000 (low, because the initrd goes
 * to the top of RAM), the command line at 0x20000, the kernel where its
 * header asks (16 MiB).  In this process: the IOAPIC at 0xFEC00000, the
 * FADT's power and reset ports at 0x600..0x602, the boot-time marker at
 * 0x3f0, the CMOS clock at 0x70.  Each vCPU's LAPIC (0xFEE00000) is the
 * engine's; the UART is dev-serial's.  No PCI: the configuration ports
 * 0xcf8/0xcfc read all-ones and writes do nothing (an engine may drop
 * writes to 0xcf8 in the hypervisor: engine_config.quiet_ports).
 *
 * The arm64 board (built for arm64 hosts, __aarch64__; vmm-core/arm64/):
 * RAM from 0.  A flat image loads at --flat-addr, with the first 64 KiB
 * left unmapped for MMIO (s003's debug port is at 0x996), and the vCPU
 * starts there in EL1.  A Linux Image gets a device tree (arm64_board.h has
 * the memory map); the GICv3, the timer and PSCI are KVM's.  No board
 * devices in this process. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"
#include "bus.h"
#include "devproxy.h"
#include "check.h"
#include "engine.h"
#include "guest_mem.h"
#include "host.h"
#include "log.h"
#include "parse.h"
#include "stats.h"
#ifdef __aarch64__
#include "arm64_board.h"
#else /* the x86 board */
#include "acpi.h"
#include "bootmark.h"
#include "ioapic.h"
#include "jit.h"
#include "kernel_cache.h"
#include "linux_boot.h"
#include "power.h"
#include "rtc.h"
#endif
#include "sandbox.h"

#define MAX_DEVICES 8
#define MAX_CPUS 8 /* vCPUs; the launcher offers 1 to 8 */
#define ATTACH_TIMEOUT_MS 30000 /* the devices start beside the core; slow under nested emulation */
#define MEMORY_MIN (1ull << 20)
/* RAM below the 32-bit MMIO hole ends at 3 GiB; the rest goes at 4 GiB. */
#define MEMORY_HOLE (3ull << 30)
#define HIGH_RAM_BASE (4ull << 30)
/* 512 GiB: within the soft CPU's 40 physical address bits (and any KVM's). */
#define MEMORY_MAX (512ull << 30)
#define PVM_MODULE "/sys/module/kvm_pvm"

enum { EXIT_GUEST_DONE = 0, EXIT_ERROR = 1, EXIT_TRIPLE_FAULT = 2 };
#define RUN_REBOOT (-1) /* run_vm: the guest reset and wants to start again */

/* Guest-physical layout of the board (see the top of this file). */
#define BOARD_ACPI_REGION 0xe0000u
#define BOARD_ACPI_REGION_SIZE (POWER_RESET_VECTOR - BOARD_ACPI_REGION) /* the reset stub follows */
#define BOARD_BOOT_STACK_TOP 0x9000u
#define BOARD_BOOT_TABLES 0x9000u
#define BOARD_PCI_CONFIG_ADDRESS 0xcf8u /* no PCI: the port is nobody's */

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
	uint64_t flat_addr; /* where the flat image loads and starts */
	const char *kernel, *initrd, *cmdline;
	uint64_t launch_ns; /* host_now_ns() when the launcher started */
	bool no_reboot;     /* a guest reset ends the VM (exit 0) */
	bool jit;           /* the soft engine translates guest code (default: where it can) */
	bool jit_asked;     /* --jit on: without the JIT the VM does not start */
	int ndevices;
	struct device_arg devices[MAX_DEVICES];
};

/* The guest's image files, read once at start: a reboot loads them again
 * from here, since the sandboxed core opens no file (sandbox.c). */
struct guest_files {
	uint8_t *kernel, *initrd, *flat;
	size_t kernel_size, initrd_size, flat_size;
	uint8_t *vmlinux; /* x86: the bzImage's payload unpacked here, or NULL */
	size_t vmlinux_size;
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
#ifndef __aarch64__
	/* The x86 board's devices in this process. */
	struct ioapic ioapic;
	struct power power;
	struct bootmark bootmark;
	struct rtc rtc;
#endif
};

/* Whether the soft engine can translate here (jit.h); the arm64 board has
 * no soft engine at all. */
static bool host_has_jit(void)
{
#ifdef __aarch64__
	return false;
#else
	return softcpu_jit_supported();
#endif
}

static void usage(FILE *to)
{
	fprintf(to,
		"usage: vmm-core --engine NAME|auto --memory BYTES --cpus N\n"
		"                (--flat FILE [--flat-mode real|long] [--flat-addr ADDR] |\n"
		"                 --kernel FILE [--initrd FILE] [--cmdline STR])\n"
		"                [--launch-time-ns NS] [--no-reboot] [--jit on|off] --device NAME=URL ...\n"
		"Runs one VM: guest RAM, the CPU engine and a proxy for each device process,\n"
		"which must dial URL and say HELLO within 30 s.  Normally started by launcher.\n"
		"  --engine NAME     kvm, soft, whpx (as built in) or auto\n"
		"  --check           (alone) the engines on this host and a 1 s test run on each\n"
		"  --memory BYTES    guest RAM, a multiple of 4096 from 1 MiB to 512 GiB (and\n"
		"                    the host's RAM and swap); beyond 3 GiB the rest goes at 4 GiB\n"
		"  --flat FILE       raw image loaded at guest physical 0 and entered at 0,\n"
		"                    in 16-bit real mode or (--flat-mode long) in 64-bit mode\n"
		"                    with the first 4 GiB identity-mapped\n"
		"  --flat-addr ADDR  arm64: load the flat image at ADDR (64 KiB or above) and\n"
		"                    start there in EL1\n"
		"  --kernel FILE     Linux bzImage or ELF vmlinux, entered in 64-bit mode\n"
		"  --initrd FILE     initial ramdisk, placed at the top of RAM\n"
		"  --cmdline STR     kernel command line\n"
		"  --launch-time-ns NS  host_now_ns() at launch, for the boot-time marker\n"
		"  --no-reboot       a guest reset ends the VM with status 0\n"
		"  --jit on|off      soft engine: translate guest code to host code (on, the\n"
		"                    default on x86-64 hosts) or interpret every instruction (off)\n"
		"  MINIVM_STATS=1    print exit, ipc and JIT counters at exit\n"
		"  MINIVM_BOOT_TIME=1  print the boot-time marker (port 0x3f0) when it arrives\n");
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
	enum { OPT_ENGINE = 256, OPT_MEMORY, OPT_CPUS, OPT_FLAT, OPT_FLAT_MODE, OPT_FLAT_ADDR, OPT_KERNEL,
	       OPT_INITRD, OPT_CMDLINE, OPT_DEVICE, OPT_LAUNCH_TIME, OPT_NO_REBOOT, OPT_JIT };
	static const struct option longopts[] = {
		{"engine", required_argument, NULL, OPT_ENGINE},
		{"memory", required_argument, NULL, OPT_MEMORY},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"flat", required_argument, NULL, OPT_FLAT},
		{"flat-mode", required_argument, NULL, OPT_FLAT_MODE},
		{"flat-addr", required_argument, NULL, OPT_FLAT_ADDR},
		{"kernel", required_argument, NULL, OPT_KERNEL},
		{"initrd", required_argument, NULL, OPT_INITRD},
		{"cmdline", required_argument, NULL, OPT_CMDLINE},
		{"device", required_argument, NULL, OPT_DEVICE},
		{"launch-time-ns", required_argument, NULL, OPT_LAUNCH_TIME},
		{"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
		{"jit", required_argument, NULL, OPT_JIT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct options){.engine = "auto", .cpus = 1, .flat_mode = VCPU_REAL16, .jit = host_has_jit(),
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
			if (!parse_u64(optarg, MEMORY_MAX, &o->memory) || o->memory < MEMORY_MIN ||
			    o->memory % 4096) {
				log_msg("--memory %s: want a multiple of 4096 bytes from 1 MiB to 512 GiB",
					optarg);
				return 1;
			}
			have_memory = true;
			break;
		case OPT_CPUS:
			if (!parse_u64(optarg, MAX_CPUS, &cpus) || cpus < 1) {
				log_msg("--cpus %s: want a number from 1 to %d", optarg, MAX_CPUS);
				return 1;
			}
			o->cpus = (int)cpus;
			break;
		case OPT_FLAT:
			o->flat = optarg;
			break;
		case OPT_JIT:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				log_msg("--jit %s: want on or off", optarg);
				return 1;
			}
			o->jit = o->jit_asked = !strcmp(optarg, "on");
			if (o->jit && !host_has_jit()) {
				log_msg("--jit on: this host has no JIT (only x86-64 hosts have one); use --jit off");
				return 1;
			}
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
		case OPT_FLAT_ADDR:
			if (!parse_u64(optarg, MEMORY_MAX, &o->flat_addr)) {
				log_msg("--flat-addr %s: want a guest physical address below 3 GiB", optarg);
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
			if (!parse_u64(optarg, UINT64_MAX, &o->launch_ns)) {
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
			else if (first_why[0])
				log_msg("engine auto: %s; using the %s engine", first_why, ops->name);
			else if (strcmp(ops->name, "whpx") == 0)
				log_msg("engine auto: using the whpx engine (Windows Hypervisor Platform)");
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

/* Guest RAM below the MMIO hole: where every image and table goes. */
static uint64_t low_ram(const struct options *o)
{
	return o->memory < MEMORY_HOLE ? o->memory : MEMORY_HOLE;
}

static int read_guest_files(const struct options *o, struct guest_files *f)
{
	char err[256];
	*f = (struct guest_files){0};
	if ((o->kernel && boot_read_file(o->kernel, &f->kernel, &f->kernel_size, err, sizeof(err))) ||
	    (o->initrd && boot_read_file(o->initrd, &f->initrd, &f->initrd_size, err, sizeof(err))) ||
	    (o->flat && boot_read_file(o->flat, &f->flat, &f->flat_size, err, sizeof(err)))) {
		log_msg("cannot read %s", err);
		return -1;
	}
#ifndef __aarch64__
	/* Unpacked once (a reboot reuses it), and before the devices have
	 * attached: their processes start meanwhile (the channels listen).
	 * The next run of the same image takes it from the cache. */
	struct kernel_cache_key key = {.name = ""};
	if (f->kernel)
		kernel_cache_key(f->kernel, f->kernel_size, &key);
	if (f->kernel && kernel_cache_load(&key, low_ram(o), &f->vmlinux, &f->vmlinux_size) == 0) {
		STATS_ADD(kernel_cache_hits, 1);
	} else if (f->kernel) {
		if (linux_unpack_bzimage(f->kernel, f->kernel_size, low_ram(o), &f->vmlinux,
					 &f->vmlinux_size, err, sizeof(err))) {
			log_msg("%s: %s", o->kernel, err);
			return -1;
		}
		if (f->vmlinux)
			kernel_cache_store(&key, f->vmlinux, f->vmlinux_size);
	}
#else
	/* A gzip'd Image is unpacked once here: a reboot places it again. */
	if (f->kernel && arm64_image_is_gzip(f->kernel, f->kernel_size)) {
		uint8_t *image;
		size_t image_size;
		if (arm64_image_gunzip(f->kernel, f->kernel_size, (size_t)low_ram(o), &image,
				       &image_size, err, sizeof(err))) {
			log_msg("%s: %s", o->kernel, err);
			return -1;
		}
		free(f->kernel);
		f->kernel = image;
		f->kernel_size = image_size;
	}
#endif
	stats_milestone(STATS_IMAGES_READ);
	return 0;
}

/* Copy the flat image to guest physical --flat-addr (0 on x86). */
static int load_flat(const struct options *o, const struct guest_files *f, uint8_t *ram)
{
	if (o->flat_addr >= low_ram(o) || f->flat_size > low_ram(o) - o->flat_addr) {
		log_msg("%s (%zu bytes at %#llx) does not fit in guest RAM", o->flat, f->flat_size,
			(unsigned long long)o->flat_addr);
		return -1;
	}
	memcpy(ram + o->flat_addr, f->flat, f->flat_size);
	return 0;
}

#ifndef __aarch64__
/* The DSDT's devices, from what the attached devices declared (placed by
 * the board): each PIO 16550 with its line, each virtio-mmio transport.
 * No device address is known here otherwise.  -1 if there are more than
 * the DSDT takes. */
static int acpi_devices(const struct vm *vm, struct acpi_config *cfg, struct acpi_uart *uarts,
			struct acpi_virtio_mmio *virtio)
{
	cfg->uarts = uarts;
	cfg->virtio = virtio;
	for (int i = 0; i < vm->ndevices; i++) {
		const struct ipc_hello *h = devproxy_placed(vm->devices[i]);
		for (uint32_t r = 0; r < h->nranges; r++) {
			const struct ipc_range *range = &h->ranges[r];
			uint32_t gsi = range->has_irq ? h->irqs[range->irq].gsi : 0;
			if (range->kind == IPC_RANGE_UART16550 && range->space == IPC_SPACE_PIO &&
			    range->has_irq) {
				if (cfg->nuarts == ACPI_MAX_UARTS)
					return -1;
				uarts[cfg->nuarts++] = (struct acpi_uart){.port = (uint16_t)range->base,
									  .irq = (uint8_t)gsi};
			} else if (range->kind == IPC_RANGE_VIRTIO_MMIO) {
				if (cfg->nvirtio == ACPI_MAX_VIRTIO_MMIO || range->base > UINT32_MAX)
					return -1;
				virtio[cfg->nvirtio++] = (struct acpi_virtio_mmio){
					.base = (uint32_t)range->base, .size = (uint32_t)range->size, .gsi = gsi,
					.edge = h->irqs[range->irq].trigger == IPC_TRIGGER_EDGE};
			}
		}
	}
	return 0;
}

/* Load a Linux kernel (and initrd, command line) with the board's memory
 * map and ACPI tables, and fill the 64-bit boot state. */
static int load_linux(const struct vm *vm, const struct options *o, const struct guest_files *f,
		      uint8_t *ram, struct vcpu_boot *boot)
{
	char err[256];
	struct e820_entry e820[4];
	int ne820 = linux_e820_pc(low_ram(o), e820, 3);
	if (ne820 < 0) {
		log_msg("--memory: a Linux guest needs at least 2 MiB");
		return -1;
	}
	if (o->memory > low_ram(o))
		e820[ne820++] = (struct e820_entry){HIGH_RAM_BASE, o->memory - low_ram(o), E820_RAM};
	struct acpi_config acpi = {
		.cpus = (unsigned)o->cpus,
		.sleep_control_port = POWER_SLEEP_CONTROL_PORT,
		.sleep_status_port = POWER_SLEEP_STATUS_PORT,
		.reset_port = POWER_RESET_PORT,
		.reset_value = POWER_RESET_VALUE,
	};
	struct acpi_uart uarts[ACPI_MAX_UARTS];
	struct acpi_virtio_mmio virtio[ACPI_MAX_VIRTIO_MMIO];
	if (acpi_devices(vm, &acpi, uarts, virtio)) {
		log_msg("the devices declare more UARTs or virtio-mmio devices (or higher) than the DSDT takes");
		return -1;
	}
	uint64_t rsdp = acpi_build(ram, low_ram(o), BOARD_ACPI_REGION, BOARD_ACPI_REGION_SIZE, &acpi,
				   err, sizeof(err));
	if (!rsdp || power_install_reset_stub(ram, low_ram(o))) {
		log_msg("%s", rsdp ? "no room for the reset vector" : err);
		return -1;
	}
	struct linux_load_args args = {
		.kernel = f->kernel,
		.kernel_size = f->kernel_size,
		.initrd = f->initrd,
		.initrd_size = f->initrd_size,
		.cmdline = o->cmdline,
		.e820 = e820,
		.e820_count = (unsigned)ne820,
		.boot_params_addr = LINUX_BOOT_PARAMS_ADDR,
		.cmdline_addr = LINUX_CMDLINE_ADDR,
		.acpi_rsdp_addr = rsdp,
		.vmlinux = f->vmlinux,
		.vmlinux_size = f->vmlinux_size,
	};
	struct linux_loaded loaded;
	if (linux_load(ram, low_ram(o), &args, &loaded, err, sizeof(err))) {
		log_msg("%s: %s", o->kernel, err);
		return -1;
	}
	*boot = (struct vcpu_boot){.mode = VCPU_LONG64,
				   .entry = loaded.entry,
				   .rsp = BOARD_BOOT_STACK_TOP,
				   .rsi = loaded.boot_params};
	if (boot_long_mode_tables(ram, low_ram(o), BOARD_BOOT_TABLES, boot, err, sizeof(err))) {
		log_msg("%s", err);
		return -1;
	}
	return 0;
}

#else
/* The device tree's devices, from what the attached devices declared
 * (placed by the board): each PL011 and virtio-mmio range with its line.
 * -1 if there are more than the tree takes. */
static int dt_devices(const struct vm *vm, struct arm64_dt_device *out, unsigned *n)
{
	*n = 0;
	for (int i = 0; i < vm->ndevices; i++)
		if (arm64_dt_add_devices(devproxy_placed(vm->devices[i]), out, n))
			return -1;
	return 0;
}

/* Load an arm64 kernel Image (and initrd) with a device tree describing the
 * board and its devices; vCPU 0 enters it with X0 = the tree. */
static int load_linux(const struct vm *vm, const struct options *o, const struct guest_files *f,
		      uint8_t *ram, struct vcpu_boot *boot)
{
	char err[256];
	struct arm64_linux_loaded loaded;
	if (arm64_linux_place(ram, low_ram(o), f->kernel, f->kernel_size, f->initrd, f->initrd_size,
			      &loaded, err, sizeof(err))) {
		log_msg("%s: %s", o->kernel, err);
		return -1;
	}
	struct arm64_dt_device devices[ARM64_DT_MAX_DEVICES];
	struct arm64_dt_config dt = {.ram_size = low_ram(o), .cpus = (unsigned)o->cpus,
				     .bootargs = o->cmdline, .initrd_start = loaded.initrd_start,
				     .initrd_size = loaded.initrd_size, .devices = devices};
	if (dt_devices(vm, devices, &dt.ndevices)) {
		log_msg("the devices declare more than %d ranges for the device tree", ARM64_DT_MAX_DEVICES);
		return -1;
	}
	if (!arm64_dt_build(ram + loaded.dtb, ARM64_DTB_MAX, &dt, err, sizeof(err))) {
		log_msg("%s", err);
		return -1;
	}
	*boot = (struct vcpu_boot){.mode = VCPU_AARCH64, .entry = loaded.entry, .x0 = loaded.dtb};
	return 0;
}
#endif

/* Put the guest image in RAM and fill the vCPU's start state. */
static int load_guest(const struct vm *vm, const struct options *o, const struct guest_files *f,
		      uint8_t *ram, struct vcpu_boot *boot)
{
	if (o->kernel) {
		if (load_linux(vm, o, f, ram, boot))
			return -1;
		stats_milestone(STATS_GUEST_LOADED);
		return 0;
	}
	char err[256];
	if (load_flat(o, f, ram))
		return -1;
#ifdef __aarch64__
	int rc = boot_flat_arm64(ram, low_ram(o), o->flat_addr, f->flat_size, boot, err, sizeof(err));
#else
	int rc = -1;
	if (o->flat_addr)
		snprintf(err, sizeof(err), "the x86 board runs flat images at 0 (--flat-addr is for arm64)");
	else
		rc = boot_flat(ram, low_ram(o), f->flat_size, o->flat_mode, boot, err, sizeof(err));
#endif
	if (rc) {
		log_msg("%s: %s", o->flat, err);
		return -1;
	}
	stats_milestone(STATS_GUEST_LOADED);
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

#ifndef __aarch64__ /* the x86 power device's hook */
static void board_stop(void *opaque, enum vcpu_stop reason)
{
	vm_stop(opaque, reason);
}
#endif

/* A device's line goes to the board's IOAPIC. */
static void hook_irq(void *opaque, unsigned line, int level)
{
	struct vm *vm = opaque;
#ifndef __aarch64__
	if (vm->ops->signal_msi) {
		ioapic_set_irq(&vm->ioapic, line, level);
		return;
	}
#endif
	pthread_mutex_lock(&vm->lock);
	if (vm->engine && vm->ops->set_irq)
		vm->ops->set_irq(vm->engine, line, level);
	pthread_mutex_unlock(&vm->lock);
}

#ifndef __aarch64__
/* The IOAPIC's messages (called with its lock held: lock order is IOAPIC,
 * then vm->lock, then the engine's LAPICs). */
static void ioapic_to_engine(void *opaque, uint64_t address, uint32_t data)
{
	struct vm *vm = opaque;
	pthread_mutex_lock(&vm->lock);
	if (vm->engine && vm->ops->signal_msi)
		vm->ops->signal_msi(vm->engine, address, data);
	pthread_mutex_unlock(&vm->lock);
}

/* An IOAPIC entry changed (same lock order as ioapic_to_engine). */
static void ioapic_route_to_engine(void *opaque, unsigned pin, bool masked, uint64_t address,
				   uint32_t data)
{
	struct vm *vm = opaque;
	pthread_mutex_lock(&vm->lock);
	if (vm->engine && vm->ops->irq_route)
		vm->ops->irq_route(vm->engine, pin, masked, address, data);
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
	struct ioapic_sink sink = {.opaque = vm, .deliver = ioapic_to_engine,
				   .route = ioapic_route_to_engine};
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

#else
/* The arm64 board has no devices in this process yet. */
static int attach_board(struct vm *vm, struct bus *bus, const struct options *o)
{
	return 0;
}
#endif

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

/* A channel for each device, listening: the device processes, which the
 * launcher starts beside the core, dial and say HELLO while the core reads
 * and unpacks the guest's images (wait_devices waits for them). */
static int listen_devices(struct vm *vm, const struct options *o, const struct devproxy_board *b)
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
	stats_milestone(STATS_LISTENING);
	return 0;
}

static int wait_devices(struct vm *vm)
{
	char err[256];
	/* One budget for all of them: they start in parallel. */
	uint64_t deadline = host_now_ns() + (uint64_t)ATTACH_TIMEOUT_MS * 1000000;
	for (int i = 0; i < vm->ndevices; i++) {
		uint64_t now = host_now_ns();
		int left_ms = now < deadline ? (int)((deadline - now) / 1000000) : 0;
		if (devproxy_wait_attached(vm->devices[i], left_ms, err, sizeof(err))) {
			log_msg("%s", err);
			return -1;
		}
	}
	stats_milestone(STATS_DEVICES_ATTACHED);
	return 0;
}

/* Everything from outside is in hand: the devices' connections, guest RAM,
 * the image in memory (sandbox.c says what is left allowed). */
static int enter_sandbox(const struct vm *vm, const struct options *o)
{
	char err[256];
	/* glibc reads the time zone file at the first gmtime (the CMOS clock's),
	 * whatever the zone: now, while files can be opened. */
	tzset();
	if (vm->ops->before_sandbox && vm->ops->before_sandbox(o->jit, err, sizeof(err)) < 0) {
		if (o->jit_asked) {
			log_msg("--jit on: %s", err);
			return -1;
		}
		log_msg("%s; interpreting", err);
	}
	if (host_sandbox_enter(core_sandbox(vm->ops->name), err, sizeof(err)) == HOST_SANDBOX_FAILED) {
		log_msg("%s", err);
		return -1;
	}
	return 0;
}

/* Create the engine and vCPU 0 and run it to its end; the exit status. */
static int run_vm(struct vm *vm, const struct options *o, struct bus *bus, const struct guest_mem *mem,
		  const struct vcpu_boot *boot)
{
	char err[256];
#ifndef __aarch64__
	static const uint16_t pci_config_address = BOARD_PCI_CONFIG_ADDRESS;
	unsigned nquiet = bus_owns_any(bus, IPC_SPACE_PIO, BOARD_PCI_CONFIG_ADDRESS, 4) ? 0 : 1;
#endif
	struct engine_config cfg = {.ram = mem->base,
				    .ram_size = low_ram(o),
				    .high_ram_gpa = HIGH_RAM_BASE,
				    .high_ram_size = o->memory - low_ram(o),
				    .mem = mem,
				    .cpus = o->cpus,
				    .jit = o->jit,
				    .bus = bus_engine_callbacks(bus),
#ifdef __aarch64__
				    .ram_map_from = o->kernel ? 0 : BOOT_ARM64_RAM_START,
#else
				    .irqchip = {.opaque = vm, .eoi = engine_eoi},
				    .quiet_ports = &pci_config_address,
				    .nquiet_ports = nquiet,
#endif
	};
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
	stats_milestone(STATS_VCPUS_STARTED);
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
	stats_milestone(STATS_CORE_STARTED);
	log_init("vmm-core");
	host_child_init();
	if (argc == 2 && strcmp(argv[1], "--check") == 0)
		return core_check(stdout);
	struct options o;
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc < 0 ? 0 : EXIT_ERROR;

	struct vm vm = {0};
	pthread_mutex_init(&vm.lock, NULL);
	vm.ops = choose_engine(o.engine);
	if (!vm.ops)
		return EXIT_ERROR;
	if (o.cpus > 1 && !vm.ops->signal_msi && !vm.ops->set_irq) {
		/* Application processors start through LAPIC INIT/SIPI, or PSCI
		 * with an in-kernel interrupt controller (arm64). */
		log_msg("--cpus %d: the %s engine has no LAPICs yet: use 1 vCPU or the soft engine",
			o.cpus, vm.ops->name);
		return EXIT_ERROR;
	}

	char err[256];
	uint64_t host_bytes = host_memory_bytes();
	if (host_bytes && o.memory > host_bytes) {
		log_msg("--memory %llu MiB: this host has %llu MiB of RAM and swap; ask for less",
			(unsigned long long)(o.memory >> 20), (unsigned long long)(host_bytes >> 20));
		return EXIT_ERROR;
	}
	/* Guest RAM and, after it, the log of pages devices write (guest_mem.h). */
	host_shm *ram_shm = host_shm_create("guest-ram", guest_mem_shm_size(o.memory), err, sizeof(err));
	if (!ram_shm) {
		log_msg("cannot create %llu bytes of guest RAM: %s", (unsigned long long)o.memory, err);
		return EXIT_ERROR;
	}
	struct guest_mem mem;
	guest_mem_attach(&mem, host_shm_ptr(ram_shm), o.memory);
	if (o.memory > low_ram(&o)) {
		const struct guest_mem_region split[2] = {{0, low_ram(&o)},
							  {HIGH_RAM_BASE, o.memory - low_ram(&o)}};
		guest_mem_set_regions(&mem, split, 2);
	}
	uint8_t *ram = mem.base;
	struct vcpu_boot boot;

	struct bus bus;
	bus_init(&bus, low_ram(&o));
	bus.high_ram_base = HIGH_RAM_BASE;
	bus.high_ram_size = o.memory - low_ram(&o);
#ifdef __aarch64__
	if (!o.kernel) /* the flat board leaves its first 64 KiB to MMIO */
		bus.ram_start = BOOT_ARM64_RAM_START;
#endif
	if (attach_board(&vm, &bus, &o))
		return EXIT_ERROR;
	static struct slot_table slots = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct devproxy_board board = {
		.bus = &bus,
		.slots = &slots,
		.ram_name = host_shm_name(ram_shm),
		.ram = &mem,
		.hooks = {.opaque = &vm, .irq = hook_irq, .quit = hook_quit},
	};
	uint64_t start = host_now_ns();
	/* The guest is loaded once every device has said what it is: the ACPI
	 * tables describe what they declared. */
	struct guest_files files = {0};
	int status = listen_devices(&vm, &o, &board) || read_guest_files(&o, &files) ||
				     wait_devices(&vm) || load_guest(&vm, &o, &files, ram, &boot) ||
				     enter_sandbox(&vm, &o)
			     ? EXIT_ERROR
			     : run_vm(&vm, &o, &bus, &mem, &boot);
	while (status == RUN_REBOOT) {
		/* QEMU's behaviour: the machine starts over with the same image,
		 * and every device is reset (host input queued for the UART
		 * stays: it was typed for the next boot too). */
		log_msg("the guest reset the machine: rebooting");
#ifndef __aarch64__
		ioapic_reset(&vm.ioapic);
#endif
		for (int i = 0; i < vm.ndevices; i++)
			devproxy_reset(vm.devices[i]);
		status = load_guest(&vm, &o, &files, ram, &boot) ? EXIT_ERROR : run_vm(&vm, &o, &bus, &mem, &boot);
	}
	uint64_t run_ns = host_now_ns() - start;

	for (int i = 0; i < vm.ndevices; i++)
		devproxy_abort(vm.devices[i]);
	for (int i = 0; i < vm.ndevices; i++)
		devproxy_shutdown_and_destroy(vm.devices[i]);
	stats_print_if_asked(run_ns, o.launch_ns);
#ifndef __aarch64__
	const char *stats = getenv("MINIVM_STATS");
	uint64_t marker_ns = atomic_load(&vm.bootmark.elapsed_ns);
	if (stats && strcmp(stats, "1") == 0 && marker_ns)
		log_msg("boot marker: %llu ms after launch", (unsigned long long)(marker_ns / 1000000));
#endif
	host_shm_close(ram_shm);
	free(files.kernel);
	free(files.vmlinux);
	free(files.initrd);
	free(files.flat);
	return status;
}
