/* test_vmconf.c - vm.conf parsing, the launcher's command line, and the
 * command lines it gives vmm-core and dev-serial.  Files live in TEST_DIR
 * (set by launcher/CMakeLists.txt). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "child_argv.h"
#include "cli.h"
#include "vmconf.h"

#define CONF TEST_DIR "/vm.conf"

static struct vmconf conf;
static char err[VMCONF_ERR_MAX + 2 * VMCONF_PATH_MAX];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup_files(void **state)
{
	write_file(TEST_DIR "/bzImage", "not really a kernel");
	write_file(TEST_DIR "/initrd.img", "not really an initrd");
	write_file(TEST_DIR "/hello.bin", "\xb0\x48\xe6\xf1\xf4");
	write_file(TEST_DIR "/empty.bin", "");
	return 0;
}

static int count_args(char **argv)
{
	int n = 0;
	while (argv[n])
		n++;
	return n;
}

/* Parse a NULL-terminated argv. */
static int run_args(char **argv)
{
	enum cli_action action;
	err[0] = '\0';
	int rc = cli_parse(count_args(argv), argv, &conf, &action, err, sizeof(err));
	if (rc == 0)
		assert_int_equal(action, CLI_RUN);
	return rc;
}

/* Write text as vm.conf and parse it the way `launcher run vm.conf` does. */
static int run_conf(const char *text)
{
	write_file(CONF, text);
	char *argv[] = {"launcher", "run", CONF, NULL};
	return run_args(argv);
}

/* The error must be exactly TEST_DIR "/" + expected_tail. */
static void assert_conf_error(const char *text, const char *expected_tail)
{
	assert_int_equal(run_conf(text), -1);
	char expected[sizeof(err)];
	snprintf(expected, sizeof(expected), "%s/%s", TEST_DIR, expected_tail);
	assert_string_equal(err, expected);
}

/* ---- vm.conf ---- */

static void test_defaults(void **state)
{
	assert_int_equal(run_conf("[vm]\nflat = hello.bin\n"), 0);
	assert_string_equal(conf.engine, "auto");
	assert_int_equal(conf.memory, 256u << 20);
	assert_int_equal(conf.cpus, 1);
	assert_int_equal(conf.flat_mode, VMCONF_FLAT_REAL);
	assert_true(conf.stdio);
	assert_true(conf.sandbox);
	assert_int_equal(conf.debugcon, -1);
	assert_false(conf.has_mmio_uart);
	assert_string_equal(conf.kernel, "");
	assert_string_equal(conf.initrd, "");
	assert_false(vmconf_is_set(&conf, VMCONF_CMDLINE));
}

/* The example from the documentation, inline comments and all. */
static void test_every_kernel_key_with_inline_comments(void **state)
{
	assert_int_equal(run_conf("[vm]\n"
				  "engine = kvm           ; auto | kvm | whpx | soft   (tcg is an alias of soft)\n"
				  "memory = 512M\n"
				  "cpus = 4\n"
				  "kernel = bzImage       ; or:\n"
				  "initrd = initrd.img\n"
				  "cmdline = console=ttyS0 panic=-1\n"
				  "[serial]\n"
				  "stdio = off            ; ttyS0 on the launcher's stdin/stdout\n"
				  "debugcon = 0xf1        ; optional debug port, output to stdout\n"
				  "mmio-uart = 0xd0000000 ; optional second 16550\n"),
			 0);
	assert_string_equal(conf.engine, "kvm");
	assert_int_equal(conf.memory, 512u << 20);
	assert_int_equal(conf.cpus, 4);
	assert_string_equal(conf.kernel, TEST_DIR "/bzImage");
	assert_string_equal(conf.initrd, TEST_DIR "/initrd.img");
	assert_string_equal(conf.cmdline, "console=ttyS0 panic=-1");
	assert_false(conf.stdio);
	assert_int_equal(conf.debugcon, 0xf1);
	assert_true(conf.has_mmio_uart);
	assert_int_equal(conf.mmio_uart, 0xd0000000u);
}

static void test_flat_keys(void **state)
{
	assert_int_equal(run_conf("[vm]\nflat = hello.bin ; raw binary\nflat-mode = long\n"
				  "[serial]\ndebugcon = 241\n"),
			 0);
	assert_string_equal(conf.flat, TEST_DIR "/hello.bin");
	assert_int_equal(conf.flat_mode, VMCONF_FLAT_LONG);
	assert_int_equal(conf.debugcon, 241);
}

static void test_value_forms(void **state)
{
	static const struct {
		const char *memory;
		uint64_t bytes;
	} sizes[] = {{"2M", 2u << 20}, {"3G", 3ull << 30}, {"5G", 5ull << 30}, {"1g", 1u << 30}, {"512", 512u << 20},
		     {"4096K", 4u << 20}};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "[vm]\nflat = hello.bin\nmemory = %s\n", sizes[i].memory);
		assert_int_equal(run_conf(text), 0);
		assert_int_equal(conf.memory, sizes[i].bytes);
	}
	assert_int_equal(run_conf("[vm]\nflat = hello.bin\nengine = tcg\n[serial]\nstdio = no\n"), 0);
	assert_string_equal(conf.engine, "soft");
	assert_false(conf.stdio);
	assert_int_equal(run_conf("[vm]\nflat = hello.bin\ncpus = 8\n[serial]\ndebugcon = off\n"), 0);
	assert_int_equal(conf.cpus, 8);
	assert_int_equal(conf.debugcon, -1);
	assert_int_equal(run_conf("[vm]\nkernel = bzImage\ncmdline =\n"), 0);
	assert_true(vmconf_is_set(&conf, VMCONF_CMDLINE));
	assert_string_equal(conf.cmdline, "");
}

static void test_layout_tolerated(void **state)
{
	/* A byte order mark, CRLF, indentation, comment lines, blank lines:
	 * an indented line is a key of its own, not a continuation. */
	assert_int_equal(run_conf("\xEF\xBB\xBF; minivm\r\n\r\n[vm]\r\n  flat = hello.bin\r\n"
				  "\tmemory = 64M\r\n# hash comment\r\n[serial]\r\n  debugcon = 0xe9\r\n"),
			 0);
	assert_string_equal(conf.flat, TEST_DIR "/hello.bin");
	assert_int_equal(conf.memory, 64u << 20);
	assert_int_equal(conf.debugcon, 0xe9);
}

static void test_absolute_path_kept(void **state)
{
	assert_int_equal(run_conf("[vm]\nflat = " TEST_DIR "/hello.bin\n"), 0);
	assert_string_equal(conf.flat, TEST_DIR "/hello.bin");
}

static void test_bad_values(void **state)
{
	assert_conf_error("[vm]\nflat = hello.bin\nmemory = 12Q\n",
			  "vm.conf:3: [vm] memory: \"12Q\" is not a size (use e.g. 256M or 1G)");
	assert_conf_error("[vm]\nmemory = 1M\n", "vm.conf:2: [vm] memory: \"1M\" is out of range (2M .. 512G)");
	assert_conf_error("[vm]\nmemory = 513G\n", "vm.conf:2: [vm] memory: \"513G\" is out of range (2M .. 512G)");
	assert_conf_error("[vm]\nmemory = 99999999999999999999G\n",
			  "vm.conf:2: [vm] memory: \"99999999999999999999G\" is out of range (2M .. 512G)");
	assert_conf_error("[vm]\nmemory = 3001K\n", "vm.conf:2: [vm] memory: \"3001K\" is not a multiple of 4K");
	assert_conf_error("[vm]\nmemory = -256M\n",
			  "vm.conf:2: [vm] memory: \"-256M\" is not a size (use e.g. 256M or 1G)");
	assert_conf_error("[vm]\ncpus = 0\n", "vm.conf:2: [vm] cpus: \"0\" is not a number of CPUs (1 .. 8)");
	assert_conf_error("[vm]\ncpus = 9\n", "vm.conf:2: [vm] cpus: \"9\" is not a number of CPUs (1 .. 8)");
	assert_conf_error("[vm]\ncpus = two\n", "vm.conf:2: [vm] cpus: \"two\" is not a number of CPUs (1 .. 8)");
	assert_conf_error("[vm]\nengine = vmx9\n",
			  "vm.conf:2: [vm] engine: \"vmx9\" is not an engine (use auto, kvm, whpx or soft)");
	assert_conf_error("[vm]\nflat-mode = protected\n",
			  "vm.conf:2: [vm] flat-mode: \"protected\" is not a flat mode (use real or long)");
	assert_conf_error("[vm]\nflat =\n", "vm.conf:2: [vm] flat: is empty (give a file name)");
	assert_conf_error("[serial]\nstdio = maybe\n", "vm.conf:2: [serial] stdio: \"maybe\" is not on or off");
	assert_conf_error("[serial]\nhvc0 = maybe\n", "vm.conf:2: [serial] hvc0: \"maybe\" is not on or off");
	assert_conf_error("[serial]\nconsole = tty1\n",
			  "vm.conf:2: [serial] console: \"tty1\" is not a console (use ttyS0 or hvc0)");
	/* Across keys: input cannot go to a device that is not there. */
	assert_conf_error("[vm]\nkernel = bzImage\n[serial]\nhvc0 = off\nconsole = hvc0\n",
			  "vm.conf:5: [serial] console: hvc0 is the console but [serial] hvc0 is off");
	assert_conf_error("[serial]\ndebugcon = 0x10000\n",
			  "vm.conf:2: [serial] debugcon: \"0x10000\" is not a port (0 .. 0xffff, or off)");
	assert_conf_error("[serial]\ndebugcon = 0x\n",
			  "vm.conf:2: [serial] debugcon: \"0x\" is not a port (0 .. 0xffff, or off)");
	assert_conf_error("[serial]\nmmio-uart = 0xd0000001\n",
			  "vm.conf:2: [serial] mmio-uart: \"0xd0000001\" is not a multiple of 8 below 4 GiB");
	assert_conf_error("[serial]\nmmio-uart = 0x100000000\n",
			  "vm.conf:2: [serial] mmio-uart: \"0x100000000\" is not a multiple of 8 below 4 GiB");
	assert_conf_error("[serial]\nmmio-uart = uart\n",
			  "vm.conf:2: [serial] mmio-uart: \"uart\" is not an address (e.g. 0xd0000000, or off)");
}

static void test_structure_errors(void **state)
{
	assert_conf_error("[vm]\nflat = hello.bin\ncolour = blue\n",
			  "vm.conf:3: [vm] colour: unknown key (the [vm] keys are engine, memory, cpus, "
			  "kernel, flat, flat-mode, flat-addr, initrd, cmdline, reboot, sandbox, jit)");
	assert_conf_error("[serial]\nbaud = 9600\n",
			  "vm.conf:2: [serial] baud: unknown key (the [serial] keys are stdio, debugcon, mmio-uart, hvc0, console, debugcon-mmio)");
	assert_conf_error("[vm]\nflat = hello.bin\n[disk]\n",
			  "vm.conf:3: unknown section [disk] (vm.conf has [vm], [serial] and [net])");
	assert_conf_error("flat = hello.bin\n",
			  "vm.conf:1: flat: outside a section (put it under [vm] or [serial])");
	assert_conf_error("[vm]\nmemory = 64M\nflat = hello.bin\nmemory = 128M\n",
			  "vm.conf:4: [vm] memory: already set on line 2");
	assert_conf_error("[vm]\nflat = hello.bin\njust some words\n",
			  "vm.conf:3: not a [section] or a key = value line");
	assert_conf_error("[vm\nflat = hello.bin\n", "vm.conf:1: not a [section] or a key = value line");
	/* The first error wins, whichever kind it is. */
	assert_conf_error("[vm]\nwords\nmemory = 12Q\n", "vm.conf:2: not a [section] or a key = value line");

	/* Lines have no length limit of their own; values do. */
	static char text[VMCONF_CMDLINE_MAX + 64] = "[vm]\ncmdline = ";
	memset(text + strlen(text), 'x', VMCONF_CMDLINE_MAX);
	strcat(text, "\nflat = hello.bin\n");
	char expected[64];
	snprintf(expected, sizeof(expected), "vm.conf:2: [vm] cmdline: is longer than %d characters",
		 VMCONF_CMDLINE_MAX - 1);
	assert_conf_error(text, expected);
}

static void test_kernel_and_flat_exclusive(void **state)
{
	assert_conf_error("[vm]\nflat = hello.bin\nkernel = bzImage\n",
			  "vm.conf:3: [vm] kernel: cannot be combined with " TEST_DIR
			  "/vm.conf:2: [vm] flat (give either kernel or flat)");
	assert_conf_error("[vm]\nmemory = 64M\n",
			  "vm.conf: no guest to run: set kernel or flat in [vm], or give -kernel or --flat");
	assert_conf_error("[vm]\nflat = hello.bin\ninitrd = initrd.img\n",
			  "vm.conf:3: [vm] initrd: only for a kernel, and the guest is a flat binary");
	assert_conf_error("[vm]\nflat = hello.bin\ncmdline = quiet\n",
			  "vm.conf:3: [vm] cmdline: only for a kernel, and the guest is a flat binary");
	assert_conf_error("[vm]\nkernel = bzImage\nflat-mode = long\n",
			  "vm.conf:3: [vm] flat-mode: only for a flat binary, and the guest is a kernel");
}

static void test_file_errors(void **state)
{
	assert_conf_error("[vm]\nflat = absent.bin\n",
			  "vm.conf:2: [vm] flat: cannot read \"" TEST_DIR
			  "/absent.bin\": No such file or directory");
	assert_conf_error("[vm]\nkernel = bzImage\ninitrd = absent.img\n",
			  "vm.conf:3: [vm] initrd: cannot read \"" TEST_DIR
			  "/absent.img\": No such file or directory");
	assert_conf_error("[vm]\nkernel = .\n",
			  "vm.conf:2: [vm] kernel: \"" TEST_DIR "/.\" is not a regular file");
	assert_conf_error("[vm]\nflat = empty.bin\n",
			  "vm.conf:2: [vm] flat: \"" TEST_DIR "/empty.bin\" is empty");
	assert_conf_error("[vm]\nflat = vm.conf\nmemory = 2M\n[serial]\nmmio-uart = 0x1000\n",
			  "vm.conf:5: [serial] mmio-uart: 0x1000 is inside guest RAM (below 0x200000)");

	char *argv[] = {"launcher", "run", TEST_DIR "/nope.conf", NULL};
	assert_int_equal(run_args(argv), -1);
	assert_string_equal(err, TEST_DIR "/nope.conf: cannot open: No such file or directory");
}

static void test_flat_must_fit_in_memory(void **state)
{
	static char big[3u << 20];
	memset(big, 0xf4, sizeof(big) - 1);
	write_file(TEST_DIR "/big.bin", big);
	assert_conf_error("[vm]\nflat = big.bin\nmemory = 2M\n",
			  "vm.conf:2: [vm] flat: \"" TEST_DIR
			  "/big.bin\" (3145727 bytes) does not fit in memory (2097152 bytes)");
	remove(TEST_DIR "/big.bin");
}

/* ---- the command line ---- */

static void test_flags_without_conf(void **state)
{
	char *argv[] = {"launcher", "run", "--flat", TEST_DIR "/hello.bin", "-accel", "kvm",
			"--debugcon", "0xf1", NULL};
	assert_int_equal(run_args(argv), 0);
	assert_string_equal(conf.flat, TEST_DIR "/hello.bin");
	assert_string_equal(conf.engine, "kvm");
	assert_int_equal(conf.debugcon, 0xf1);
	assert_string_equal(conf.conf_path, "");
}

static void test_flags_override_conf(void **state)
{
	write_file(CONF, "[vm]\nengine = soft\nmemory = 64M\ncpus = 2\nkernel = bzImage\n"
			 "cmdline = quiet\n[serial]\ndebugcon = 0xe9\n");
	char *argv[] = {"launcher", "run", "-m", "1G", CONF, "-smp", "3", "-accel", "tcg",
			"-append", "console=ttyS0", "--debugcon", "off", "-initrd",
			TEST_DIR "/initrd.img", NULL};
	assert_int_equal(run_args(argv), 0);
	assert_int_equal(conf.memory, 1u << 30);
	assert_int_equal(conf.cpus, 3);
	assert_string_equal(conf.engine, "soft");
	assert_string_equal(conf.cmdline, "console=ttyS0");
	assert_int_equal(conf.debugcon, -1);
	assert_string_equal(conf.kernel, TEST_DIR "/bzImage");
	assert_string_equal(conf.initrd, TEST_DIR "/initrd.img");
}

static void test_double_dash_forms(void **state)
{
	char *argv[] = {"launcher", "run", "-flat", TEST_DIR "/hello.bin", "--m", "16M", "--smp",
			"2", "-flat-mode", "long", NULL};
	assert_int_equal(run_args(argv), 0);
	assert_int_equal(conf.memory, 16u << 20);
	assert_int_equal(conf.cpus, 2);
	assert_int_equal(conf.flat_mode, VMCONF_FLAT_LONG);
}

static void test_command_line_guest_replaces_conf_guest(void **state)
{
	write_file(CONF, "[vm]\nkernel = bzImage\ninitrd = initrd.img\ncmdline = quiet\n");
	char *flat_argv[] = {"launcher", "run", CONF, "--flat", TEST_DIR "/hello.bin", NULL};
	assert_int_equal(run_args(flat_argv), 0);
	assert_string_equal(conf.flat, TEST_DIR "/hello.bin");
	assert_string_equal(conf.kernel, "");
	assert_string_equal(conf.initrd, "");
	assert_false(vmconf_is_set(&conf, VMCONF_CMDLINE));

	write_file(CONF, "[vm]\nflat = hello.bin\nflat-mode = long\n");
	char *kernel_argv[] = {"launcher", "run", CONF, "-kernel", TEST_DIR "/bzImage", NULL};
	assert_int_equal(run_args(kernel_argv), 0);
	assert_string_equal(conf.kernel, TEST_DIR "/bzImage");
	assert_string_equal(conf.flat, "");
	assert_int_equal(conf.flat_mode, VMCONF_FLAT_REAL);

	char *both_argv[] = {"launcher", "run", "-kernel", TEST_DIR "/bzImage", "--flat",
			     TEST_DIR "/hello.bin", NULL};
	assert_int_equal(run_args(both_argv), -1);
	assert_string_equal(err, "--flat: cannot be combined with -kernel (give either kernel or flat)");
}

static void test_command_line_paths_relative_to_cwd(void **state)
{
	char cwd[VMCONF_PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(TEST_DIR), 0);
	char *argv[] = {"launcher", "run", "--flat", "hello.bin", NULL};
	int rc = run_args(argv);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rc, 0);
	assert_string_equal(conf.flat, "hello.bin");
}

static void test_command_line_errors(void **state)
{
	static const struct {
		char *argv[7]; /* NULL-terminated */
		const char *error;
	} cases[] = {
		{{"launcher"}, "no command (try: launcher run vm.conf, or launcher --help)"},
		{{"launcher", "start"}, "unknown command \"start\" (try launcher --help)"},
		{{"launcher", "run", "--frobnicate"}, "unknown flag --frobnicate (try launcher --help)"},
		{{"launcher", "run", "-"}, "unknown flag - (try launcher --help)"},
		{{"launcher", "run", "-m"}, "-m needs a value"},
		{{"launcher", "run", "a.conf", "b.conf"}, "unexpected argument \"b.conf\" (one vm.conf at most)"},
		{{"launcher", "run", "--flat", TEST_DIR "/hello.bin", "-m", "12Q"},
		 "-m: \"12Q\" is not a size (use e.g. 256M or 1G)"},
		{{"launcher", "run", "--flat", TEST_DIR "/hello.bin", "-accel", "vmx9"},
		 "-accel: \"vmx9\" is not an engine (use auto, kvm, whpx or soft)"},
		{{"launcher", "run", "--flat", TEST_DIR "/hello.bin", "-smp", "16"},
		 "-smp: \"16\" is not a number of CPUs (1 .. 8)"},
		{{"launcher", "run", "--flat", TEST_DIR "/hello.bin", "--flat-mode", "long64"},
		 "--flat-mode: \"long64\" is not a flat mode (use real or long)"},
		{{"launcher", "run", "--flat", TEST_DIR "/hello.bin", "--debugcon", "0xf1f1f"},
		 "--debugcon: \"0xf1f1f\" is not a port (0 .. 0xffff, or off)"},
		{{"launcher", "run", "--flat", TEST_DIR "/hello.bin", "-initrd", TEST_DIR "/initrd.img"},
		 "-initrd: only for a kernel, and the guest is a flat binary"},
		{{"launcher", "run", "-accel"}, "-accel needs a value"},
		{{"launcher", "run", "-accel", "kvm"},
		 "no guest to run: set kernel or flat in [vm], or give -kernel or --flat"},
		{{"launcher", "run", "-kernel", TEST_DIR "/absent"},
		 "-kernel: cannot read \"" TEST_DIR "/absent\": No such file or directory"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[7];
		memcpy(argv, cases[i].argv, sizeof(argv));
		assert_int_equal(run_args(argv), -1);
		assert_string_equal(err, cases[i].error);
	}
}

static void test_help_and_version(void **state)
{
	static const struct {
		char *argv[5]; /* NULL-terminated */
		enum cli_action action;
	} cases[] = {
		{{"launcher", "--help"}, CLI_HELP},
		{{"launcher", "-h"}, CLI_HELP},
		{{"launcher", "--version"}, CLI_VERSION},
		{{"launcher", "run", "-h"}, CLI_HELP},
		{{"launcher", "run", "-m", "--help"}, CLI_RUN}, /* "--help" is -m's value */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[5];
		memcpy(argv, cases[i].argv, sizeof(argv));
		enum cli_action action = CLI_RUN;
		int rc = cli_parse(count_args(argv), argv, &conf, &action, err, sizeof(err));
		assert_int_equal(action, cases[i].action);
		assert_int_equal(rc, action == CLI_RUN ? -1 : 0);
	}
}

/* ---- the children's command lines ---- */

static void assert_argv(char *const *argv, const char *const *expected)
{
	size_t i = 0;
	for (; expected[i]; i++) {
		assert_non_null(argv[i]);
		assert_string_equal(argv[i], expected[i]);
	}
	assert_null(argv[i]);
}

/* vmm-core's command line with the devices conf lists, all at url (tests
 * list one). */
static int core_argv(struct child_argv *a, const char *exe, const char *url, uint64_t launch_ns)
{
	const struct device_program *devs[DEVICE_PROGRAMS_MAX];
	const char *urls[DEVICE_PROGRAMS_MAX];
	unsigned n = devices_listed(&conf, devs);
	for (unsigned i = 0; i < n; i++)
		urls[i] = url;
	return child_argv_core(a, exe, &conf, devs, urls, n, launch_ns);
}

static int serial_argv(struct child_argv *a, const char *exe, const char *url)
{
	const struct device_program *serial = device_program_for_section("serial", 6);
	assert_non_null(serial);
	return child_argv_device(a, exe, serial, &conf, url);
}

/* The device table: [serial] is dev-serial, named serial, always listed. */
static void test_device_table(void **state)
{
	assert_int_equal(run_conf("[vm]\nkernel = bzImage\n"), 0);
	const struct device_program *devs[DEVICE_PROGRAMS_MAX];
	assert_int_equal(devices_listed(&conf, devs), 1);
	assert_string_equal(devs[0]->program, "dev-serial");
	assert_string_equal(devs[0]->name, "serial");
	assert_ptr_equal(device_program_for_section("serial", 6), devs[0]);
	assert_null(device_program_for_section("serial", 5));
	assert_non_null(device_program_for_section("net", 3));
}

/* [net]: dev-net listed, one --net per key in the file's order; -nic
 * replaces the file's keys; errors name file:line or the flag, and the key. */
static void test_net_section_and_nic(void **state)
{
	assert_int_equal(run_conf("[vm]\nkernel = bzImage\n[net]\nhostfwd = tcp::2222-:22\n"
				  "mtu = 1500\nhostfwd = udp::5353-:53\n"),
			 0);
	const struct device_program *devs[DEVICE_PROGRAMS_MAX];
	assert_int_equal(devices_listed(&conf, devs), 2);
	assert_string_equal(devs[1]->program, "dev-net");
	static struct child_argv a;
	assert_int_equal(child_argv_device(&a, "/bin/dev-net", devs[1], &conf, "ipc:///n"), 0);
	const char *net[] = {"/bin/dev-net", "--connect", "ipc:///n", "--net", "hostfwd=tcp::2222-:22",
			     "--net", "mtu=1500", "--net", "hostfwd=udp::5353-:53", NULL};
	assert_argv(a.argv, net);

	char *nic[] = {"launcher", "run", CONF, "-nic", "user,restrict=on,hostfwd=tcp::8080-:80", NULL};
	assert_int_equal(run_args(nic), 0);
	assert_int_equal(devices_listed(&conf, devs), 2);
	assert_int_equal(child_argv_device(&a, "/bin/dev-net", devs[1], &conf, "ipc:///n"), 0);
	const char *from_nic[] = {"/bin/dev-net", "--connect", "ipc:///n", "--net", "user=on",
				  "--net", "restrict=on", "--net", "hostfwd=tcp::8080-:80", NULL};
	assert_argv(a.argv, from_nic);

	char *none[] = {"launcher", "run", CONF, "-nic", "none", NULL};
	assert_int_equal(run_args(none), 0);
	assert_int_equal(devices_listed(&conf, devs), 1); /* serial only */

	/* No [net], no -nic: no network device. */
	assert_int_equal(run_conf("[vm]\nkernel = bzImage\n"), 0);
	assert_int_equal(devices_listed(&conf, devs), 1);

	assert_conf_error("[vm]\nkernel = bzImage\n[net]\nmtu = 70000\n",
			  "vm.conf:4: [net] mtu: \"70000\" is out of range (68..65520)");
	/* A check across keys names the line of the key it is about. */
	write_file(CONF, "[vm]\nkernel = bzImage\n[net]\nnet = 10.0.3.0/24\nhost = 10.0.2.2\n");
	char *conf_only[] = {"launcher", "run", CONF, NULL};
	assert_int_equal(run_args(conf_only), -1);
	assert_non_null(strstr(err, "vm.conf:5: [net] host:"));
	char *bad_nic[] = {"launcher", "run", CONF, "-nic", "user,hostfwd=tcp::0-:22", NULL};
	assert_int_equal(run_args(bad_nic), -1);
	assert_non_null(strstr(err, "-nic: hostfwd:"));
	char *bad_kind[] = {"launcher", "run", CONF, "-nic", "tap", NULL};
	assert_int_equal(run_args(bad_kind), -1);
	assert_non_null(strstr(err, "-nic: \"tap\""));
}

static void test_child_argv_flat(void **state)
{
	assert_int_equal(run_conf("[vm]\nengine = kvm\nmemory = 16M\nflat = hello.bin\n"
				  "flat-mode = long\n[serial]\nstdio = off\ndebugcon = 0xf1\n"
				  "mmio-uart = 0xd0000000\nhvc0 = off\n"),
			 0);
	static struct child_argv a;
	assert_int_equal(core_argv(&a, "/bin/vmm-core", "ipc:///run/x/serial.sock", 0), 0);
	const char *core[] = {"/bin/vmm-core", "--engine", "kvm", "--memory", "16777216", "--cpus", "1",
			      "--flat", TEST_DIR "/hello.bin", "--flat-mode", "long", "--device",
			      "serial=ipc:///run/x/serial.sock", NULL};
	assert_argv(a.argv, core);

	assert_int_equal(serial_argv(&a, "/bin/dev-serial", "ipc:///run/x/serial.sock"), 0);
	const char *serial[] = {"/bin/dev-serial", "--connect", "ipc:///run/x/serial.sock", "--stdio", "off",
				"--hvc0", "off", "--console", "ttyS0",
#ifdef __aarch64__
				"--uart", "pl011",
#endif
				"--debugcon", "0xf1",
				"--mmio-uart", "0xd0000000", NULL};
	assert_argv(a.argv, serial);
}

/* The arm64 board's s003 command, from the file and from the flags. */
static void test_child_argv_arm64_flat(void **state)
{
	assert_int_equal(run_conf("[vm]\nengine = kvm\nmemory = 16M\nflat = hello.bin\n"
				  "flat-addr = 0x10000\n[serial]\ndebugcon-mmio = 0x996\n"),
			 0);
	static struct child_argv a;
	assert_int_equal(core_argv(&a, "vmm-core", "U", 0), 0);
	const char *core[] = {"vmm-core", "--engine", "kvm", "--memory", "16777216", "--cpus", "1",
			      "--flat", TEST_DIR "/hello.bin", "--flat-mode", "real", "--flat-addr",
			      "0x10000", "--device", "serial=U", NULL};
	assert_argv(a.argv, core);
	assert_int_equal(serial_argv(&a, "dev-serial", "U"), 0);
	const char *serial[] = {"dev-serial", "--connect", "U", "--stdio", "on", "--hvc0", "on",
				"--console", "ttyS0",
#ifdef __aarch64__
				"--uart", "pl011",
#endif
				"--debugcon-mmio", "0x996", NULL};
	assert_argv(a.argv, serial);

	char *argv[] = {"launcher", "run", "--flat", TEST_DIR "/hello.bin", "--flat-addr", "65536",
			"--debugcon-mmio", "0x996", NULL};
	assert_int_equal(run_args(argv), 0);
	assert_true(vmconf_is_set(&conf, VMCONF_FLAT_ADDR));
	assert_int_equal(conf.flat_addr, 0x10000);
	assert_true(conf.has_debugcon_mmio);
	assert_int_equal(conf.debugcon_mmio, 0x996);

	/* Not given: vmm-core gets no --flat-addr (the x86 board refuses one). */
	assert_int_equal(run_conf("[vm]\nflat = hello.bin\n[serial]\ndebugcon-mmio = off\n"), 0);
	assert_false(vmconf_is_set(&conf, VMCONF_FLAT_ADDR));
	assert_false(conf.has_debugcon_mmio);
	assert_conf_error("[vm]\nflat = hello.bin\nflat-addr = 3G\n",
			  "vm.conf:3: [vm] flat-addr: \"3G\" is not an address below 3 GiB (e.g. 0x10000)");
	assert_conf_error("[serial]\ndebugcon-mmio = 0x1q\n",
			  "vm.conf:2: [serial] debugcon-mmio: \"0x1q\" is not an address below 3 GiB (e.g. 0x10000)");
}

static void test_child_argv_kernel(void **state)
{
	assert_int_equal(run_conf("[vm]\nkernel = bzImage\ninitrd = initrd.img\ncmdline =\ncpus = 2\n"
				  "[serial]\nconsole = hvc0\n"), 0);
	static struct child_argv a;
	assert_int_equal(core_argv(&a, "vmm-core", "U", 0), 0);
	const char *core[] = {"vmm-core", "--engine", "auto", "--memory", "268435456", "--cpus", "2",
			      "--kernel", TEST_DIR "/bzImage", "--initrd", TEST_DIR "/initrd.img",
			      "--cmdline", "", "--device", "serial=U", NULL};
	assert_argv(a.argv, core);

	assert_int_equal(serial_argv(&a, "dev-serial", "U"), 0);
	const char *serial[] = {"dev-serial", "--connect", "U", "--stdio", "on", "--hvc0", "on",
				"--console", "hvc0",
#ifdef __aarch64__
				"--uart", "pl011",
#endif
				NULL};
	assert_argv(a.argv, serial);

	assert_int_equal(run_conf("[vm]\nkernel = bzImage\n"), 0);
	assert_int_equal(core_argv(&a, "vmm-core", "U", 0), 0);
	const char *no_extras[] = {"vmm-core", "--engine", "auto", "--memory", "268435456", "--cpus", "1",
				   "--kernel", TEST_DIR "/bzImage", "--device", "serial=U", NULL};
	assert_argv(a.argv, no_extras);
}

/* [vm] reboot = exit and -no-reboot (a flag without a value) both reach
 * vmm-core as --no-reboot; the launch time goes along when given. */
static void test_reboot_key_and_flag(void **state)
{
	static struct child_argv a;
	assert_int_equal(run_conf("[vm]\nkernel = bzImage\nreboot = exit\n"), 0);
	assert_true(conf.reboot_exits);
	assert_int_equal(core_argv(&a, "vmm-core", "U", 42), 0);
	const char *core[] = {"vmm-core", "--engine", "auto", "--memory", "268435456", "--cpus", "1",
			      "--kernel", TEST_DIR "/bzImage", "--no-reboot", "--launch-time-ns", "42",
			      "--device", "serial=U", NULL};
	assert_argv(a.argv, core);

	assert_int_equal(run_conf("[vm]\nkernel = bzImage\nreboot = restart\n"), 0);
	assert_false(conf.reboot_exits);
	char *argv[] = {"launcher", "run", CONF, "-no-reboot", "-m", "64M", NULL};
	assert_int_equal(run_args(argv), 0);
	assert_true(conf.reboot_exits);
	assert_int_equal(conf.memory, 64ull << 20);
	assert_conf_error("[vm]\nkernel = bzImage\nreboot = maybe\n",
			  "vm.conf:3: [vm] reboot: \"maybe\" is not a reboot action (use restart or exit)");
}

/* [vm] sandbox = off and --no-sandbox (no value) both turn it off; the
 * children learn it from the environment (launcher/main.c), not from argv. */
static void test_sandbox_key_and_flag(void **state)
{
	assert_int_equal(run_conf("[vm]\nkernel = bzImage\nsandbox = off\n"), 0);
	assert_false(conf.sandbox);
	assert_int_equal(run_conf("[vm]\nkernel = bzImage\nsandbox = on\n"), 0);
	assert_true(conf.sandbox);
	char *argv[] = {"launcher", "run", CONF, "--no-sandbox", NULL};
	assert_int_equal(run_args(argv), 0);
	assert_false(conf.sandbox);
	assert_conf_error("[vm]\nkernel = bzImage\nsandbox = maybe\n",
			  "vm.conf:3: [vm] sandbox: \"maybe\" is not on or off");
}

/* [vm] jit (default on) and --jit: left unset, vmm-core hears nothing and
 * translates where the host can; set, it hears which (an explicit on is an
 * error there on a host without a JIT). */
static void test_jit_key_and_flag(void **state)
{
	static struct child_argv a;
	assert_int_equal(run_conf("[vm]\nkernel = bzImage\n"), 0);
	assert_true(conf.jit);
	assert_int_equal(core_argv(&a, "vmm-core", "U", 0), 0);
	const char *unset[] = {"vmm-core", "--engine", "auto", "--memory", "268435456", "--cpus", "1",
			       "--kernel", TEST_DIR "/bzImage", "--device", "serial=U", NULL};
	assert_argv(a.argv, unset);

	assert_int_equal(run_conf("[vm]\nkernel = bzImage\njit = on\n"), 0);
	assert_true(conf.jit);
	assert_int_equal(core_argv(&a, "vmm-core", "U", 0), 0);
	const char *on[] = {"vmm-core", "--engine", "auto", "--memory", "268435456", "--cpus", "1", "--jit", "on",
			    "--kernel", TEST_DIR "/bzImage", "--device", "serial=U", NULL};
	assert_argv(a.argv, on);

	char *argv[] = {"launcher", "run", CONF, "--jit", "off", NULL};
	assert_int_equal(run_args(argv), 0);
	assert_false(conf.jit);
	assert_int_equal(core_argv(&a, "vmm-core", "U", 0), 0);
	const char *off[] = {"vmm-core", "--engine", "auto", "--memory", "268435456", "--cpus", "1", "--jit", "off",
			     "--kernel", TEST_DIR "/bzImage", "--device", "serial=U", NULL};
	assert_argv(a.argv, off);
	assert_conf_error("[vm]\nkernel = bzImage\njit = fast\n", "vm.conf:3: [vm] jit: \"fast\" is not on or off");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_reboot_key_and_flag),
		cmocka_unit_test(test_sandbox_key_and_flag),
		cmocka_unit_test(test_jit_key_and_flag),
		cmocka_unit_test(test_every_kernel_key_with_inline_comments),
		cmocka_unit_test(test_flat_keys),
		cmocka_unit_test(test_value_forms),
		cmocka_unit_test(test_layout_tolerated),
		cmocka_unit_test(test_absolute_path_kept),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_kernel_and_flat_exclusive),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_flat_must_fit_in_memory),
		cmocka_unit_test(test_flags_without_conf),
		cmocka_unit_test(test_flags_override_conf),
		cmocka_unit_test(test_double_dash_forms),
		cmocka_unit_test(test_command_line_guest_replaces_conf_guest),
		cmocka_unit_test(test_command_line_paths_relative_to_cwd),
		cmocka_unit_test(test_command_line_errors),
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_device_table),
		cmocka_unit_test(test_net_section_and_nic),
		cmocka_unit_test(test_child_argv_flat),
		cmocka_unit_test(test_child_argv_kernel),
		cmocka_unit_test(test_child_argv_arm64_flat),
	};
	return cmocka_run_group_tests(tests, setup_files, NULL);
}
