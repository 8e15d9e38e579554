/* cli.c - `launcher run [vm.conf] [flags]`: flags set the same keys as
 * vm.conf, through vmconf_set(), after the file. */
#include "cli.h"

#include <string.h>

/* Flag names without their dashes: "-m" and "--m" both work, as in QEMU.
 * A flag with a `fixed` value takes no argument and sets its key to it. */
static const struct {
	const char *name;
	enum vmconf_key key;
	const char *fixed;
} flags[] = {
	{"kernel", VMCONF_KERNEL, NULL}, {"initrd", VMCONF_INITRD, NULL}, {"append", VMCONF_CMDLINE, NULL},
	{"m", VMCONF_MEMORY, NULL},      {"smp", VMCONF_CPUS, NULL},      {"accel", VMCONF_ENGINE, NULL},
	{"flat", VMCONF_FLAT, NULL},     {"flat-mode", VMCONF_FLAT_MODE, NULL},
	{"flat-addr", VMCONF_FLAT_ADDR, NULL}, {"debugcon-mmio", VMCONF_DEBUGCON_MMIO, NULL},
	{"debugcon", VMCONF_DEBUGCON, NULL}, {"no-reboot", VMCONF_REBOOT, "exit"},
	{"console", VMCONF_CONSOLE, NULL},
	{"no-sandbox", VMCONF_SANDBOX, "off"},
	{"jit", VMCONF_JIT, NULL},
};

static const char *without_dashes(const char *arg)
{
	return arg + (arg[1] == '-' ? 2 : 1);
}

/* The index in flags[] of arg (a flag, dashes included); -1 if none. */
static int flag_index(const char *arg)
{
	const char *name = without_dashes(arg);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (!strcmp(name, flags[i].name))
			return (int)i;
	}
	return -1;
}

/* -nic: QEMU's network option string, applied by net_config (vmconf_set_nic). */
static bool is_nic(const char *arg)
{
	return !strcmp(without_dashes(arg), "nic");
}

static bool is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "help");
}

void cli_usage(FILE *out)
{
	fputs("usage: launcher run [vm.conf] [flags]    start a VM; flags override vm.conf\n"
	      "       launcher check                    the engines on this host (for bug reports)\n"
	      "       launcher --help | --version\n"
	      "\n"
	      "flags, and the vm.conf key each one overrides:\n"
	      "  -kernel FILE      Linux bzImage to boot                 [vm] kernel\n"
	      "  -initrd FILE      initial ramdisk for the kernel        [vm] initrd\n"
	      "  -append STR       kernel command line                   [vm] cmdline\n"
	      "  --flat FILE       raw binary loaded at guest physical 0 [vm] flat\n"
	      "  --flat-mode MODE  real: start it in 16-bit real mode at [vm] flat-mode\n"
	      "                    0000:0000; long: in 64-bit long mode\n"
	      "  --flat-addr ADDR  arm64: load and start it at ADDR      [vm] flat-addr\n"
	      "  -m SIZE           guest RAM, e.g. 256M or 1G (2M .. 3G) [vm] memory\n"
	      "  -smp N            number of vCPUs (1 .. 8)              [vm] cpus\n"
	      "  -accel ENGINE     auto, kvm, whpx or soft (tcg = soft)  [vm] engine\n"
	      "  --debugcon PORT   debug port printed on stdout, or off  [serial] debugcon\n"
	      "  -console DEV      ttyS0 or hvc0: gets the terminal's input [serial] console\n"
	      "  --debugcon-mmio ADDR  the same at an MMIO address (arm64) [serial] debugcon-mmio\n"
	      "  -no-reboot        a guest reboot ends the VM (status 0) [vm] reboot = exit\n"
	      "  -nic user[,OPT=V...]  user-mode network (libslirp), QEMU's [net] (replaces it)\n"
	      "                    options, e.g. hostfwd=tcp::2222-:22 (host side 127.0.0.1)\n"
	      "  -nic none         no network device\n"
	      "  --no-sandbox      processes run unconfined (debugging)  [vm] sandbox = off\n"
	      "  --jit on|off      soft engine: translate guest code     [vm] jit\n"
	      "                    (on, the default on x86-64 hosts) or interpret it (off)\n"
	      "  -kernel replaces the file's flat; --flat replaces its kernel, initrd, cmdline.\n"
	      "  Paths on the command line are relative to the current directory.\n"
	      "\n"
	      "vm.conf (INI; \"; comment\" after a blank; paths relative to the file):\n"
	      "  [vm]\n"
	      "  engine = auto         ; auto | kvm | whpx | soft (tcg is an alias of soft)\n"
	      "  memory = 256M         ; K, M or G; a bare number means MiB\n"
	      "  cpus = 1\n"
	      "  kernel = bzImage      ; or:\n"
	      "  flat = hello.bin      ; raw binary at guest physical 0\n"
	      "  flat-mode = real      ; real | long\n"
	      "  flat-addr = 0x10000   ; arm64: where the flat image loads and starts\n"
	      "  initrd = initrd.img\n"
	      "  cmdline = console=ttyS0\n"
	      "  reboot = restart      ; restart | exit: what a guest reboot does\n"
	      "  sandbox = on          ; on | off: confine every process (README)\n"
	      "  jit = on              ; on | off: the soft engine's translator (off: interpreter)\n"
	      "  [serial]\n"
	      "  stdio = on            ; ttyS0 and hvc0 on the launcher's stdin/stdout\n"
	      "  hvc0 = on             ; a virtio-console (hvc0) that follows the window's size\n"
	      "  console = ttyS0       ; ttyS0 | hvc0: the device the terminal's input goes to\n"
	      "  debugcon = 0xf1       ; optional debug port, output to stdout\n"
	      "  mmio-uart = 0xd0000000 ; optional second 16550 at an MMIO address\n"
	      "  debugcon-mmio = 0x996 ; optional debug port at an MMIO address (arm64)\n"
	      "\n"
	      "On a terminal: Ctrl-A x stops the VM, Ctrl-A h lists the other keys.\n"
	      "Exit status: 0 guest powered off or halted, 1 error, 2 guest triple fault.\n",
	      out);
}

int cli_parse(int argc, char **argv, struct vmconf *conf, enum cli_action *action, char *err,
	      size_t errlen)
{
	*action = CLI_RUN;
	if (argc < 2) {
		snprintf(err, errlen, "no command (try: launcher run vm.conf, or launcher --help)");
		return -1;
	}
	if (is_help(argv[1]) || !strcmp(argv[1], "--version")) {
		*action = is_help(argv[1]) ? CLI_HELP : CLI_VERSION;
		return 0;
	}
	if (!strcmp(argv[1], "check")) {
		*action = CLI_CHECK;
		if (argc > 2) {
			snprintf(err, errlen, "launcher check takes no arguments");
			return -1;
		}
		return 0;
	}
	if (strcmp(argv[1], "run")) {
		snprintf(err, errlen, "unknown command \"%s\" (try launcher --help)", argv[1]);
		return -1;
	}

	/* First pass: the shape of the command line, before any file is read. */
	const char *conf_path = NULL;
	bool kernel_flag = false, flat_flag = false;
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i];
		if (arg[0] != '-') {
			if (conf_path) {
				snprintf(err, errlen, "unexpected argument \"%s\" (one vm.conf at most)", arg);
				return -1;
			}
			conf_path = arg;
			continue;
		}
		if (is_help(arg) || !strcmp(arg, "--version")) {
			*action = is_help(arg) ? CLI_HELP : CLI_VERSION;
			return 0;
		}
		if (is_nic(arg)) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a value", arg);
				return -1;
			}
			i++;
			continue;
		}
		int f = flag_index(arg);
		if (f < 0) {
			snprintf(err, errlen, "unknown flag %s (try launcher --help)", arg);
			return -1;
		}
		if (flags[f].fixed)
			continue;
		if (i + 1 >= argc) {
			snprintf(err, errlen, "%s needs a value", arg);
			return -1;
		}
		kernel_flag |= flags[f].key == VMCONF_KERNEL;
		flat_flag |= flags[f].key == VMCONF_FLAT;
		i++;
	}

	vmconf_init(conf);
	if (conf_path && vmconf_parse_file(conf, conf_path, err, errlen))
		return -1;

	/* A guest named on the command line replaces the file's, so that
	 * `launcher run linux.conf --flat test.bin` just works. */
	if (kernel_flag) {
		vmconf_unset_guest_key(conf, VMCONF_FLAT);
		vmconf_unset_guest_key(conf, VMCONF_FLAT_MODE);
		vmconf_unset_guest_key(conf, VMCONF_FLAT_ADDR);
	}
	if (flat_flag) {
		vmconf_unset_guest_key(conf, VMCONF_KERNEL);
		vmconf_unset_guest_key(conf, VMCONF_INITRD);
		vmconf_unset_guest_key(conf, VMCONF_CMDLINE);
	}

	for (int i = 2; i < argc; i++) {
		if (argv[i][0] != '-')
			continue;
		if (is_nic(argv[i])) {
			char why[VMCONF_ERR_MAX];
			if (vmconf_set_nic(conf, argv[i], argv[i + 1], why, sizeof(why))) {
				snprintf(err, errlen, "%s: %s", argv[i], why);
				return -1;
			}
			i++;
			continue;
		}
		int f = flag_index(argv[i]);
		enum vmconf_key key = flags[f].key;
		const char *value = flags[f].fixed ? flags[f].fixed : argv[i + 1];
		char why[VMCONF_ERR_MAX];
		if (vmconf_set(conf, key, value, "", why, sizeof(why))) {
			snprintf(err, errlen, "%s: %s", argv[i], why);
			return -1;
		}
		conf->origin[key] = (struct vmconf_origin){.flag = argv[i]};
		if (!flags[f].fixed)
			i++;
	}
	return vmconf_check(conf, err, errlen);
}
