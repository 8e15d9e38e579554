/* test_launcher_supervise.c - the launcher's supervision, with fake children
 * (test_launcher_fake_child.c) in place of vmm-core and dev-serial: exit
 * statuses, device restarts and giving up, signals, the runtime directory.
 * SUPERVISE_DIR holds a copy of the launcher and the fakes (Linux only). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc.h"

#define LOG SUPERVISE_DIR "/children.log"
#define STDERR_FILE SUPERVISE_DIR "/launcher.stderr"
#define GUEST SUPERVISE_DIR "/guest.bin"

static const char *const fake_vars[] = {"FAKE_CORE_MS",    "FAKE_CORE_EXIT",    "FAKE_CORE_SIGNAL",
					"FAKE_SERIAL_MS",  "FAKE_SERIAL_EXIT",  "FAKE_SERIAL_SIGNAL",
					"FAKE_SERIAL_CRASHES", "FAKE_CORE_DEAF",  "FAKE_SERIAL_DEAF"};

static int reset(void **state)
{
	for (size_t i = 0; i < sizeof(fake_vars) / sizeof(fake_vars[0]); i++)
		unsetenv(fake_vars[i]);
	setenv("FAKE_LOG", LOG, 1);
	remove(LOG);
	FILE *f = fopen(GUEST, "wb");
	assert_non_null(f);
	fputs("\xf4", f); /* hlt */
	fclose(f);
	return 0;
}

static pid_t start_launcher(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int err = open(STDERR_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(in, 0);
		dup2(err, 2);
		execl(SUPERVISE_DIR "/launcher", "launcher", "run", "--flat", GUEST, (char *)NULL);
		_exit(99);
	}
	return pid;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* The launcher's exit status (128+sig if killed); fails after timeout_ms. */
static int wait_launcher(pid_t pid, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		int ws;
		if (waitpid(pid, &ws, WNOHANG) == pid)
			return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fail_msg("the launcher did not exit within %d ms", timeout_ms);
	return -1;
}

static char *read_text(const char *path)
{
	static char text[16384];
	text[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f) {
		text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
		fclose(f);
	}
	return text;
}

/* Starts of role ("CORE" or "SERIAL") in the log; the pid of the last one. */
static int starts(const char *role, long *last_pid)
{
	int n = 0;
	char role_sp[16];
	snprintf(role_sp, sizeof(role_sp), "%s ", role);
	for (const char *line = read_text(LOG); line && *line; line = strchr(line, '\n')) {
		line += *line == '\n';
		if (!strncmp(line, role_sp, strlen(role_sp))) {
			n++;
			if (last_pid)
				*last_pid = strtol(line + strlen(role_sp), NULL, 10);
		}
	}
	return n;
}

/* Did every start of role get the same arguments? */
static bool same_args_every_start(const char *role)
{
	char first[4096] = "";
	for (const char *line = read_text(LOG); line && *line; line = strchr(line, '\n')) {
		line += *line == '\n';
		if (strncmp(line, role, strlen(role)) || line[strlen(role)] != ' ')
			continue;
		const char *args = strchr(line + strlen(role) + 1, ' '); /* after the pid */
		size_t len = strcspn(args, "\n");
		if (!first[0])
			snprintf(first, sizeof(first), "%.*s", (int)len, args);
		else if (strlen(first) != len || strncmp(first, args, len))
			return false;
	}
	return first[0] != '\0';
}

static void wait_started(void)
{
	for (int i = 0; i < 500 && !(starts("CORE", NULL) && starts("SERIAL", NULL)); i++)
		sleep_ms(10);
	assert_int_equal(starts("CORE", NULL), 1);
	assert_int_equal(starts("SERIAL", NULL), 1);
}

/* The runtime directory, from dev-serial's "--connect ipc://DIR/serial.sock". */
static void runtime_dir(char *buf, size_t n)
{
	const char *url = strstr(read_text(LOG), "--connect ipc://");
	assert_non_null(url);
	url += strlen("--connect ipc://");
	const char *end = strstr(url, "/serial.sock");
	assert_non_null(end);
	snprintf(buf, n, "%.*s", (int)(end - url), url);
}

static bool process_exists(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

static void test_core_status_passes_through(void **state)
{
	for (int status = 0; status <= 2; status++) {
		char value[4];
		snprintf(value, sizeof(value), "%d", status);
		setenv("FAKE_CORE_MS", "100", 1);
		setenv("FAKE_CORE_EXIT", value, 1);
		remove(LOG);
		assert_int_equal(wait_launcher(start_launcher(), 10000), status);
		long serial;
		assert_int_equal(starts("SERIAL", &serial), 1);
		assert_false(process_exists(serial));
		char dir[4096];
		runtime_dir(dir, sizeof(dir));
		assert_int_not_equal(access(dir, F_OK), 0);
	}
	/* The core's argv, as docs/ARCHITECTURE.md has it. */
	assert_non_null(strstr(read_text(LOG), "CORE "));
	assert_non_null(strstr(read_text(LOG), " --engine auto --memory 268435456 --cpus 1 --flat " GUEST
					      " --flat-mode real --launch-time-ns "));
	assert_non_null(strstr(read_text(LOG), " --device serial=ipc://"));
}

static void test_core_killed_by_signal(void **state)
{
	setenv("FAKE_CORE_MS", "100", 1);
	setenv("FAKE_CORE_SIGNAL", "9", 1);
	assert_int_equal(wait_launcher(start_launcher(), 10000), 1);
	assert_string_equal(read_text(STDERR_FILE), "launcher: vmm-core died (signal 9)\n");
}

static void test_crashed_device_restarted(void **state)
{
	setenv("FAKE_CORE_MS", "1000", 1);
	setenv("FAKE_SERIAL_MS", "100", 1);
	setenv("FAKE_SERIAL_SIGNAL", "9", 1);
	setenv("FAKE_SERIAL_CRASHES", "2", 1);
	assert_int_equal(wait_launcher(start_launcher(), 10000), 0);
	assert_int_equal(starts("CORE", NULL), 1);
	assert_int_equal(starts("SERIAL", NULL), 3);
	assert_string_equal(read_text(STDERR_FILE), "launcher: dev-serial died (signal 9); restarting it\n"
						    "launcher: dev-serial died (signal 9); restarting it\n");
	assert_true(same_args_every_start("SERIAL"));
}

/* A device its sandbox stopped (SIGSYS) is named as such, and restarted. */
static void test_sandbox_stop_is_named_and_restarted(void **state)
{
	setenv("FAKE_CORE_MS", "1000", 1);
	setenv("FAKE_SERIAL_MS", "100", 1);
	setenv("FAKE_SERIAL_SIGNAL", "31", 1); /* SIGSYS, as SECCOMP_RET_KILL_PROCESS leaves it */
	setenv("FAKE_SERIAL_CRASHES", "1", 1);
	assert_int_equal(wait_launcher(start_launcher(), 10000), 0);
	assert_int_equal(starts("SERIAL", NULL), 2);
	assert_string_equal(read_text(STDERR_FILE),
			    "launcher: dev-serial was stopped by its sandbox (SIGSYS: a forbidden system call, "
			    "named above); restarting it\n");
}

static void test_gives_up_on_a_crash_loop(void **state)
{
	setenv("FAKE_SERIAL_MS", "20", 1);
	setenv("FAKE_SERIAL_EXIT", "3", 1);
	assert_int_equal(wait_launcher(start_launcher(), 10000), 1);
	long core;
	assert_int_equal(starts("CORE", &core), 1);
	assert_int_equal(starts("SERIAL", NULL), 6);
	assert_false(process_exists(core));
	const char *err = read_text(STDERR_FILE);
	assert_non_null(strstr(err, "launcher: dev-serial exited with status 3 after 5 restarts within 10 s; "
				    "stopping the VM\n"));
}

/* Bad arguments or the core's REJECT: restarting would only repeat it. */
static void test_refused_device_is_not_restarted(void **state)
{
	char refused[8];
	snprintf(refused, sizeof(refused), "%d", IPC_DEVICE_EXIT_REFUSED);
	setenv("FAKE_SERIAL_MS", "20", 1);
	setenv("FAKE_SERIAL_EXIT", refused, 1);
	assert_int_equal(wait_launcher(start_launcher(), 10000), 1);
	long core;
	assert_int_equal(starts("CORE", &core), 1);
	assert_int_equal(starts("SERIAL", NULL), 1);
	assert_false(process_exists(core));
	assert_string_equal(read_text(STDERR_FILE),
			    "launcher: dev-serial was refused (see above); stopping the VM\n");
}

/* Ctrl-A x: dev-serial exits 0 first, the core follows. */
static void test_device_exit_before_core_is_normal(void **state)
{
	setenv("FAKE_SERIAL_MS", "50", 1);
	setenv("FAKE_CORE_MS", "300", 1);
	assert_int_equal(wait_launcher(start_launcher(), 10000), 0);
	assert_int_equal(starts("SERIAL", NULL), 1);
	assert_string_equal(read_text(STDERR_FILE), "");
}

static void test_termination_signals(void **state)
{
	static const int signals[] = {SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		remove(LOG);
		pid_t launcher = start_launcher();
		wait_started();
		char dir[4096];
		runtime_dir(dir, sizeof(dir));
		assert_int_equal(access(dir, F_OK), 0);
		kill(launcher, signals[i]);
		assert_int_equal(wait_launcher(launcher, 10000), 128 + signals[i]);
		long core, serial;
		starts("CORE", &core);
		starts("SERIAL", &serial);
		assert_false(process_exists(core));
		assert_false(process_exists(serial));
		assert_int_not_equal(access(dir, F_OK), 0);
	}
}

/* Children that ignore SIGTERM (a core wedged in teardown) cannot keep the
 * launcher from ending on a signal: they get SIGKILL after a short grace. */
static void test_termination_signal_kills_deaf_children(void **state)
{
	setenv("FAKE_CORE_DEAF", "1", 1);
	setenv("FAKE_SERIAL_DEAF", "1", 1);
	pid_t launcher = start_launcher();
	wait_started();
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	kill(launcher, SIGTERM);
	assert_int_equal(wait_launcher(launcher, 10000), 128 + SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 900); /* SIGNAL_GRACE_MS first; wait_launcher bounds the rest */
	long core, serial;
	starts("CORE", &core);
	starts("SERIAL", &serial);
	assert_false(process_exists(core));
	assert_false(process_exists(serial));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_core_status_passes_through, reset),
		cmocka_unit_test_setup(test_core_killed_by_signal, reset),
		cmocka_unit_test_setup(test_crashed_device_restarted, reset),
		cmocka_unit_test_setup(test_sandbox_stop_is_named_and_restarted, reset),
		cmocka_unit_test_setup(test_gives_up_on_a_crash_loop, reset),
		cmocka_unit_test_setup(test_refused_device_is_not_restarted, reset),
		cmocka_unit_test_setup(test_device_exit_before_core_is_normal, reset),
		cmocka_unit_test_setup(test_termination_signals, reset),
		cmocka_unit_test_setup(test_termination_signal_kills_deaf_children, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
