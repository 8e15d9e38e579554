/* main.c - the launcher: reads the command line and vm.conf, starts vmm-core
 * and the device processes, supervises them (a crashed device is restarted
 * while the VM keeps running), and leaves the terminal as it found it.
 * Its exit status is vmm-core's (docs/ARCHITECTURE.md). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child_argv.h"
#include "cli.h"
#include "host.h"
#include "ipc.h"
#include "log.h"
#include "vmconf.h"

/* How long children get to exit on their own, then after SIGTERM, then
 * after SIGKILL: a process stuck in the kernel (a vCPU thread that a broken
 * host KVM never lets out of KVM_RUN) may not die even then, and the
 * launcher must not wait for it forever. */
#define EXIT_GRACE_MS 2000
#define TERMINATE_GRACE_MS 2000
#define KILL_WAIT_MS 5000 /* SIGKILL is prompt; a loaded host may take a moment to reap */
/* On SIGINT/SIGTERM/SIGHUP the user wants the VM gone now. */
#define SIGNAL_GRACE_MS 1000
/* A device that dies more often than this is broken, not unlucky. */
#define RESTART_LIMIT 5
#define RESTART_WINDOW_NS (10ull * 1000000000u)

/* Child 0 is vmm-core; 1.. are the devices the conf lists (child_argv.h). */
#define CHILD_CORE 0
#define CHILD_MAX (1 + DEVICE_PROGRAMS_MAX)

struct child {
	const char *name;
	struct child_argv args; /* args.argv[0] is the executable's path */
	uint64_t restart_ns[RESTART_LIMIT]; /* times of the last restarts, a ring */
	unsigned restarts;
};

static struct child child_info[CHILD_MAX] = {
	[CHILD_CORE] = {.name = "vmm-core"},
};
static int nchildren; /* the core and the listed devices */

/* What the termination handler (on_terminate) cleans up.  On Linux it runs
 * as a signal handler on the main thread, so it only reads these. */
static host_proc *children[CHILD_MAX]; /* NULL: not started, or forgotten */
static bool child_running[CHILD_MAX];  /* started and not yet reaped */
static struct host_term saved_term;
static char runtime_dir[VMCONF_PATH_MAX];
/* host_runtime_dir_remove allocates (opendir): not while the main thread is
 * inside the allocator itself, which it only is around spawn and free. */
static volatile sig_atomic_t main_allocating;

/* ---- stopping children ---- */

/* host_wait_any on every child, keeping child_running up to date. */
static int reap_any(int timeout_ms, int *status)
{
	int i = host_wait_any(children, nchildren, timeout_ms, status);
	if (i >= 0)
		child_running[i] = false;
	return i;
}

static bool any_child_running(void)
{
	for (int i = 0; i < nchildren; i++) {
		if (child_running[i])
			return true;
	}
	return false;
}

/* Wait until every child has exited or ms pass (-1: no limit); true if all did. */
static bool wait_children(int ms)
{
	uint64_t deadline = host_now_ns() + (uint64_t)(ms < 0 ? 0 : ms) * 1000000u;
	int status;
	while (any_child_running()) {
		int left = -1;
		if (ms >= 0) {
			uint64_t now = host_now_ns();
			left = now < deadline ? (int)((deadline - now) / 1000000u) : 0;
		}
		if (reap_any(left, &status) < 0)
			return false;
	}
	return true;
}

/* Give the children own_ms to exit by themselves (a device exits once the
 * core tells it or is gone: it may still be writing the guest's last output),
 * then term_ms after SIGTERM, then SIGKILL.  Reaps them all, except one
 * that SIGKILL does not end within KILL_WAIT_MS: true if so. */
static bool stop_children(int own_ms, int term_ms)
{
	if (wait_children(own_ms))
		return false;
	for (int i = 0; i < nchildren; i++) {
		if (child_running[i])
			host_proc_terminate(children[i]);
	}
	if (wait_children(term_ms))
		return false;
	for (int i = 0; i < nchildren; i++) {
		if (child_running[i])
			host_proc_kill(children[i]);
	}
	return !wait_children(KILL_WAIT_MS);
}

/* The normal ends: as stop_children, saying which child outlived SIGKILL. */
static void stop_children_logged(int own_ms)
{
	if (!stop_children(own_ms, TERMINATE_GRACE_MS))
		return;
	for (int i = 0; i < nchildren; i++) {
		if (child_running[i])
			log_msg("%s (pid %ld) has not exited %d ms after SIGKILL (stuck in the kernel?); "
				"leaving it", child_info[i].name, host_proc_pid(children[i]), KILL_WAIT_MS);
	}
}

/* SIGINT/SIGTERM/SIGHUP (a console close on Windows): the host layer exits
 * with 128+sig after this, within SIGNAL_GRACE_MS + KILL_WAIT_MS. */
static void on_terminate(int sig)
{
	stop_children(0, SIGNAL_GRACE_MS);
	host_term_restore(&saved_term);
	if (runtime_dir[0] && !main_allocating)
		host_runtime_dir_remove(runtime_dir);
}

/* ---- starting and restarting ---- */

/* Start child i (its slot is empty); false, with one line logged, if not. */
static bool start_child(int i)
{
	char err[256];
	main_allocating = 1;
	host_proc *p = host_spawn(child_info[i].args.argv[0], child_info[i].args.argv, err, sizeof(err));
	main_allocating = 0;
	if (!p) {
		log_msg("cannot start %s: %s", child_info[i].name, err);
		return false;
	}
	children[i] = p;
	child_running[i] = true;
	return true;
}

/* Free the handle of child i, which has been reaped. */
static void forget_child(int i)
{
	host_proc *p = children[i];
	children[i] = NULL; /* never seen half-freed by on_terminate */
	main_allocating = 1;
	host_proc_free(p);
	main_allocating = 0;
}

static void describe_status(int status, char *buf, size_t n)
{
	/* host_wait_any reports a death by signal as 128 + the signal. */
	if (status == HOST_EXIT_SANDBOX_VIOLATION)
		snprintf(buf, n, "was stopped by its sandbox (SIGSYS: a forbidden system call, named above)");
	else if (status > 128)
		snprintf(buf, n, "died (signal %d)", status - 128);
	else
		snprintf(buf, n, "exited with status %d", status);
}

/* Device i exited while the VM runs: start it again with the same argv; it
 * re-dials and the core resumes it from its state page.  -1: give up. */
static int restart_device(int i, int status)
{
	struct child *c = &child_info[i];
	/* It may have died with the terminal in raw mode; the new one saves the
	 * settings it finds, so give it the user's. */
	host_term_restore(&saved_term);

	char how[128];
	describe_status(status, how, sizeof(how));
	uint64_t now = host_now_ns();
	uint64_t oldest = c->restart_ns[c->restarts % RESTART_LIMIT];
	if (c->restarts >= RESTART_LIMIT && now - oldest < RESTART_WINDOW_NS) {
		log_msg("%s %s after %d restarts within 10 s; stopping the VM", c->name, how, RESTART_LIMIT);
		return -1;
	}
	log_msg("%s %s; restarting it", c->name, how);

	forget_child(i);
	if (!start_child(i))
		return -1;
	c->restart_ns[c->restarts++ % RESTART_LIMIT] = now;
	return 0;
}

/* vmm-core's status becomes the launcher's: 0, 1, 2 pass through. */
static int core_exit_status(int status)
{
	if (status >= 0 && status <= 2)
		return status;
	char how[128];
	describe_status(status, how, sizeof(how));
	log_msg("vmm-core %s", how);
	return 1;
}

/* Until vmm-core exits; returns the launcher's exit status. */
static int supervise(void)
{
	for (;;) {
		int status;
		int i = reap_any(-1, &status);
		if (i == CHILD_CORE) {
			stop_children_logged(EXIT_GRACE_MS);
			return core_exit_status(status);
		}
		if (i < 0) { /* cannot happen while the core is being waited for */
			log_msg("lost track of vmm-core");
			stop_children_logged(0);
			return 1;
		}
		/* A device that exits cleanly is done only because the VM is
		 * (Ctrl-A x, guest poweroff): the core follows it shortly. */
		host_proc *core_only[1] = {children[CHILD_CORE]};
		int core_status;
		if (status == 0 && host_wait_any(core_only, 1, EXIT_GRACE_MS, &core_status) == 0) {
			child_running[CHILD_CORE] = false;
			stop_children_logged(EXIT_GRACE_MS);
			return core_exit_status(core_status);
		}
		if (status == IPC_DEVICE_EXIT_REFUSED) {
			log_msg("%s was refused (see above); stopping the VM", child_info[i].name);
			stop_children_logged(0);
			return 1;
		}
		if (restart_device(i, status)) {
			stop_children_logged(0);
			return 1;
		}
	}
}

/* From the runtime directory on, every path leaves through the end of this
 * function: children stopped, terminal restored, directory removed. */
static int run_vm(const struct vmconf *conf, uint64_t launch_ns)
{
	char dir[VMCONF_PATH_MAX], exe[VMCONF_PATH_MAX + 32];
	if (host_exe_dir(dir, sizeof(dir))) {
		log_msg("cannot find the directory the launcher runs from");
		return 1;
	}

	char err[512];
	if (host_runtime_dir_create(runtime_dir, sizeof(runtime_dir), err, sizeof(err))) {
		log_msg("%s", err);
		return 1;
	}
	int status = 1;
	const struct device_program *devs[DEVICE_PROGRAMS_MAX];
	unsigned ndevs = devices_listed(conf, devs);
	static char urls[DEVICE_PROGRAMS_MAX][CHILD_URL_MAX];
	const char *url_of[DEVICE_PROGRAMS_MAX];
	bool fits = true;
	for (unsigned d = 0; d < ndevs && fits; d++) {
		struct child *c = &child_info[1 + d];
		c->name = devs[d]->program;
		snprintf(exe, sizeof(exe), "%s/%s%s", dir, devs[d]->program, host_exe_suffix());
		url_of[d] = urls[d];
		fits = !host_ipc_url(runtime_dir, devs[d]->name, urls[d], sizeof(urls[d])) &&
		       !child_argv_device(&c->args, exe, devs[d], conf, urls[d]);
	}
	snprintf(exe, sizeof(exe), "%s/vmm-core%s", dir, host_exe_suffix());
	if (!fits || child_argv_core(&child_info[CHILD_CORE].args, exe, conf, devs, url_of, ndevs, launch_ns)) {
		log_msg("command lines for the VM's processes are too long");
		goto out;
	}
	nchildren = 1 + (int)ndevs;
	if (!conf->sandbox) {
		/* Inherited by every child; read by host_sandbox_enter. */
		static char sandbox_off[] = HOST_SANDBOX_ENV "=off";
		putenv(sandbox_off);
	}

	/* Before anything can change it: the restore point for every exit. */
	if (host_stdin_is_tty())
		host_term_save(&saved_term);
	host_on_terminate(on_terminate);

	/* The core first: it listens, the devices dial (and retry). */
	bool started = start_child(CHILD_CORE);
	for (int i = 1; i < nchildren && started; i++)
		started = start_child(i);
	if (started)
		status = supervise();
	else
		stop_children_logged(0);

out:
	for (int i = 0; i < nchildren; i++)
		forget_child(i);
	host_term_restore(&saved_term);
	host_runtime_dir_remove(runtime_dir);
	return status;
}

/* `launcher check`: which engines can run here, what they find, a short
 * s001 run on each (vmm-core --check does it; check.c in vmm-core), under a
 * header naming the version: what a bug report should contain.  vmm-core's
 * status is the launcher's. */
static int check_host(void)
{
	char dir[VMCONF_PATH_MAX], exe[VMCONF_PATH_MAX + 32], err[256];
	if (host_exe_dir(dir, sizeof(dir))) {
		log_msg("cannot find the directory the launcher runs from");
		return 1;
	}
	snprintf(exe, sizeof(exe), "%s/vmm-core%s", dir, host_exe_suffix());
	printf("minivm %s: launcher check\n", MINIVM_VERSION);
	fflush(stdout);
	char check_flag[] = "--check";
	char *const args[] = {exe, check_flag, NULL};
	host_proc *core = host_spawn(exe, args, err, sizeof(err));
	if (!core) {
		log_msg("cannot start %s: %s", exe, err);
		return 1;
	}
	int status = 1;
	if (host_wait_any(&core, 1, -1, &status) < 0)
		log_msg("lost track of vmm-core --check");
	host_proc_free(core);
	return status;
}

int main(int argc, char **argv)
{
	log_init("launcher");
	/* The boot-time marker measures from here (monotonic clocks are
	 * system-wide on Linux and Windows, so vmm-core can compare). */
	uint64_t launch_ns = host_now_ns();
	/* Large (paths); static rather than on the stack. */
	static struct vmconf conf;
	enum cli_action action;
	char err[VMCONF_ERR_MAX + 2 * VMCONF_PATH_MAX];
	if (cli_parse(argc, argv, &conf, &action, err, sizeof(err))) {
		log_msg("%s", err);
		return 1;
	}
	if (action == CLI_HELP) {
		cli_usage(stdout);
		return 0;
	}
	if (action == CLI_VERSION) {
		printf("launcher (minivm) %s\n", MINIVM_VERSION);
		return 0;
	}
	if (action == CLI_CHECK)
		return check_host();
	return run_vm(&conf, launch_ns);
}
