/* sandbox_linux.c - host_sandbox_enter() on Linux (host.h): libseccomp
 * allowlist, no_new_privs, no capabilities, user nobody and an empty root
 * when started as root.  What each process may do is its profile, defined
 * next to it (dev-serial/sandbox.c, dev-net/sandbox.c, vmm-core/sandbox.c);
 * the base below is what every minivm process needs once it runs: memory,
 * threads, time, poll/epoll, the already-open nng sockets and pipes. */
#define _GNU_SOURCE
#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NOBODY 65534 /* uid and gid a root-started process becomes */

static const char *const base_syscalls[] = {
	/* memory (mmap and mprotect: below, never executable) */
	"munmap", "madvise", "brk", "mremap",
	/* threads (clone: below, threads only), signals, exit */
	"futex", "set_robust_list", "rseq", "exit", "exit_group", "gettid", "getpid", "getppid",
	"rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall", "sched_yield",
	"sched_getaffinity", "getuid", "geteuid", "getgid", "getegid", "sysinfo",
	/* time */
	"nanosleep", "clock_nanosleep", "clock_gettime", "gettimeofday",
	/* descriptors already open: nng's sockets and notification pipes,
	 * stdio, shared memory */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "close", "fstat", "newfstatat",
	"lseek", "fcntl", "dup", "pipe2", "eventfd2", "poll", "ppoll", "epoll_create1", "epoll_ctl",
	"epoll_wait", "epoll_pwait", "getrandom", "sendmsg", "recvmsg", "sendto", "recvfrom",
	"shutdown", "getsockopt", "setsockopt", "getsockname", "getpeername",
	NULL,
};

/* ---- the report of a forbidden call ----
 * The filter's default action is SECCOMP_RET_TRAP: the kernel sends SIGSYS
 * (forced: a blocked or ignored SIGSYS kills the process instead), this
 * handler names the call and ends the process.  The filter itself kills a
 * process that tries to replace the handler. */

#define NAMED_SYSCALLS 512
static const char *syscall_names[NAMED_SYSCALLS]; /* resolved before the filter: no allocation in the handler */
static const char *process_name = "minivm";

static size_t append(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static void on_forbidden_syscall(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char line[160], num[12];
	int nr = si->si_syscall;
	/* The number in decimal, without stdio. */
	char digits[12];
	size_t nd = 0;
	unsigned v = nr < 0 ? 0 : (unsigned)nr;
	do
		digits[nd++] = (char)('0' + v % 10);
	while ((v /= 10) && nd < sizeof(digits) - 1);
	for (size_t i = 0; i < nd; i++)
		num[i] = digits[nd - 1 - i];
	num[nd] = '\0';
	size_t n = 0;
	n = append(line, n, sizeof(line), process_name);
	n = append(line, n, sizeof(line), ": sandbox: forbidden system call ");
	n = append(line, n, sizeof(line), num);
	if (nr >= 0 && nr < NAMED_SYSCALLS && syscall_names[nr]) {
		n = append(line, n, sizeof(line), " (");
		n = append(line, n, sizeof(line), syscall_names[nr]);
		n = append(line, n, sizeof(line), ")");
	}
	n = append(line, n, sizeof(line), "; stopping\n");
	ssize_t ignored = write(STDERR_FILENO, line, n);
	(void)ignored;
	syscall(SYS_exit_group, HOST_EXIT_SANDBOX_VIOLATION);
}

static void name_syscalls(void)
{
	for (int nr = 0; nr < NAMED_SYSCALLS; nr++)
		if (!syscall_names[nr])
			syscall_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
}

/* ---- building the filter ---- */

static int allow_names(scmp_filter_ctx ctx, const char *const *names, char *err, size_t errlen)
{
	for (; names && *names; names++) {
		int nr = seccomp_syscall_resolve_name(*names);
		int rc = nr == __NR_SCMP_ERROR ? -EINVAL : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0) {
			snprintf(err, errlen, "sandbox: cannot allow %s: %s", *names, strerror(-rc));
			return -1;
		}
	}
	return 0;
}

/* libseccomp's SCMP_An() leave datum_b out, which clang's
 * -Wmissing-field-initializers rejects: every field, by name. */
#define ARG(n, cmp, a, b) ((struct scmp_arg_cmp){.arg = (n), .op = (cmp), .datum_a = (a), .datum_b = (b)})

/* The rules with arguments, base and profile. */
static int add_argument_rules(scmp_filter_ctx ctx, const struct host_sandbox_profile *p)
{
	int rc = 0;
#define RULE(action, call, ...)                                                              \
	do {                                                                                 \
		if (!rc)                                                                     \
			rc = seccomp_rule_add(ctx, action, SCMP_SYS(call), __VA_ARGS__);     \
	} while (0)
	/* No new code: memory is never mapped or made executable. */
	RULE(SCMP_ACT_ALLOW, mmap, 1, ARG(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	RULE(SCMP_ACT_ALLOW, mprotect, 1, ARG(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Threads, never processes.  clone3 passes its flags in memory the
	 * filter cannot see: ENOSYS makes glibc fall back to clone. */
	RULE(SCMP_ACT_ALLOW, clone, 1, ARG(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	RULE(SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
	/* Signals to this process only (raise, abort, glibc's setxid). */
	RULE(SCMP_ACT_ALLOW, tgkill, 1, ARG(0, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
	/* The SIGSYS handler stays. */
	RULE(SCMP_ACT_ALLOW, rt_sigaction, 1, ARG(0, SCMP_CMP_NE, SIGSYS, 0));
	RULE(SCMP_ACT_KILL_PROCESS, rt_sigaction, 1, ARG(0, SCMP_CMP_EQ, SIGSYS, 0));
	/* Thread names (glibc's pthread_setname_np on itself). */
	RULE(SCMP_ACT_ALLOW, prctl, 1, ARG(0, SCMP_CMP_EQ, PR_SET_NAME, 0));
	RULE(SCMP_ACT_ALLOW, prctl, 1, ARG(0, SCMP_CMP_EQ, PR_GET_NAME, 0));
	/* A Unix socket is what nng's dialer would make to redial a core that
	 * went away (chan.c closes it first): refused, so it would give up
	 * quietly while the process ends. */
	RULE(SCMP_ACT_ERRNO(EACCES), socket, 1, ARG(0, SCMP_CMP_EQ, AF_UNIX, 0));
	/* nng removes its listener's socket file when it closes it (vmm-core
	 * at the end): the launcher removes the runtime directory anyway.
	 * arm64 has only unlinkat. */
	RULE(SCMP_ACT_ERRNO(EACCES), unlink, 0);
	RULE(SCMP_ACT_ERRNO(EACCES), unlinkat, 0);
	if (p->flags & HOST_SANDBOX_INET) {
		RULE(SCMP_ACT_ALLOW, socket, 1, ARG(0, SCMP_CMP_EQ, AF_INET, 0));
		RULE(SCMP_ACT_ALLOW, socket, 1, ARG(0, SCMP_CMP_EQ, AF_INET6, 0));
	}
	/* Opening files: never creating, truncating or appending one. */
	scmp_datum_t creating = O_CREAT | O_TRUNC | O_APPEND | (O_TMPFILE & ~O_DIRECTORY);
	if (p->flags & HOST_SANDBOX_OPEN_DEVICE)
		RULE(SCMP_ACT_ALLOW, openat, 1, ARG(2, SCMP_CMP_MASKED_EQ, creating | O_WRONLY, 0));
	else if (p->flags & HOST_SANDBOX_OPEN_READ)
		RULE(SCMP_ACT_ALLOW, openat, 1, ARG(2, SCMP_CMP_MASKED_EQ, creating | O_ACCMODE, O_RDONLY));
	if (!p->ioctls)
		RULE(SCMP_ACT_ALLOW, ioctl, 0);
	else
		for (const unsigned long *req = p->ioctls; *req; req++)
			RULE(SCMP_ACT_ALLOW, ioctl, 1, ARG(1, SCMP_CMP_EQ, (scmp_datum_t)*req, 0));
#undef RULE
	return rc;
}

static int install_filter(const struct host_sandbox_profile *p, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		snprintf(err, errlen, "sandbox: seccomp_init failed");
		return -1;
	}
	int rc;
	/* Every thread, also those started before (dev-serial's reader, nng's). */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1)) < 0) {
		snprintf(err, errlen, "sandbox: seccomp attributes: %s", strerror(-rc));
		seccomp_release(ctx);
		return -1;
	}
	if (allow_names(ctx, base_syscalls, err, errlen) || allow_names(ctx, p->syscalls, err, errlen)) {
		seccomp_release(ctx);
		return -1;
	}
	if ((rc = add_argument_rules(ctx, p)) < 0 || (rc = seccomp_load(ctx)) < 0) {
		snprintf(err, errlen, "sandbox: seccomp filter: %s", strerror(-rc));
		seccomp_release(ctx);
		return -1;
	}
	seccomp_release(ctx);
	return 0;
}

/* ---- privileges ---- */

/* An empty root: a fresh directory, entered and deleted, so nothing can be
 * created in it and no path leads anywhere.  chroot acts on every thread
 * (they share one fs_struct), where unshare(CLONE_NEWNS) in a process that
 * already runs threads (nng's) would move the calling thread only. */
static int enter_empty_root(char *err, size_t errlen)
{
	char dir[] = "/tmp/minivm-empty-XXXXXX";
	int tmp = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tmp < 0 || !mkdtemp(dir) || chmod(dir, 0555) < 0) {
		snprintf(err, errlen, "sandbox: empty root in /tmp: %s", strerror(errno));
		if (tmp >= 0)
			close(tmp);
		return -1;
	}
	int rc = chroot(dir) < 0 || chdir("/") < 0 ? -1 : 0;
	int e = errno;
	unlinkat(tmp, dir + strlen("/tmp/"), AT_REMOVEDIR);
	close(tmp);
	if (rc)
		snprintf(err, errlen, "sandbox: chroot to an empty directory: %s", strerror(e));
	return rc;
}

/* Whether user nobody exists in this process's user namespace.  Root in a
 * user namespace (`unshare -r`, rootless containers) maps only itself: it
 * is an unprivileged user on the host already and cannot become nobody, so
 * it keeps its id and loses its capabilities like everyone else. */
static bool nobody_mapped(void)
{
	FILE *f = fopen("/proc/self/uid_map", "r");
	unsigned long long inside, outside, count;
	bool mapped = false;
	while (f && !mapped && fscanf(f, "%llu %llu %llu", &inside, &outside, &count) == 3)
		mapped = NOBODY >= inside && NOBODY - inside < count;
	if (f)
		fclose(f);
	return mapped;
}

static int drop_privileges(const struct host_sandbox_profile *p, char *err, size_t errlen)
{
	pid_t parent = getppid();
	bool root = geteuid() == 0;
	bool become_nobody = root && !(p->flags & HOST_SANDBOX_OPEN_DEVICE) && nobody_mapped();
	if (root && !(p->flags & (HOST_SANDBOX_OPEN_READ | HOST_SANDBOX_OPEN_DEVICE)) &&
	    enter_empty_root(err, errlen))
		return -1;
	/* The bounding set needs CAP_SETPCAP, so before anything else goes. */
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap) < 0 && errno != EPERM) {
			snprintf(err, errlen, "sandbox: dropping capability %d: %s", cap, strerror(errno));
			return -1;
		}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (become_nobody) {
		if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0) {
			snprintf(err, errlen, "sandbox: becoming user %d: %s", NOBODY, strerror(errno));
			return -1;
		}
		/* A changed user clears the death signal (host_child_init). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	}
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3] = {{0}};
	if (syscall(SYS_capset, &hdr, none) < 0) {
		snprintf(err, errlen, "sandbox: clearing capabilities: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* VmData now: what RLIMIT_DATA counts (private writable mappings, thread
 * stacks among them). */
static uint64_t data_in_use(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	unsigned long long kib = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmData: %llu kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kib << 10;
}

static int set_limit(int resource, const char *what, uint64_t value, char *err, size_t errlen)
{
	struct rlimit rl = {.rlim_cur = value, .rlim_max = value};
	if (setrlimit(resource, &rl) < 0) {
		snprintf(err, errlen, "sandbox: limit on %s: %s", what, strerror(errno));
		return -1;
	}
	return 0;
}

enum host_sandbox_result host_sandbox_enter(const struct host_sandbox_profile *p, char *err, size_t errlen)
{
	const char *env = getenv(HOST_SANDBOX_ENV);
	if (env && !strcmp(env, "off"))
		return HOST_SANDBOX_OFF;
	process_name = program_invocation_short_name;
	name_syscalls();
	/* glibc sizes its malloc arenas from the online CPUs, read from
	 * /sys/devices/system/cpu/online the first time threads contend for
	 * memory (vmm-core's vCPUs, after the filter): set its own default,
	 * 8 per CPU, now. */
	mallopt(M_ARENA_MAX, 8 * get_nprocs());
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_forbidden_syscall;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0 || set_limit(RLIMIT_CORE, "core dumps", 0, err, errlen) ||
	    (p->data_limit && set_limit(RLIMIT_DATA, "memory", data_in_use() + p->data_limit, err, errlen)) ||
	    (p->files_max && set_limit(RLIMIT_NOFILE, "open files", p->files_max, err, errlen)) ||
	    drop_privileges(p, err, errlen) || install_filter(p, err, errlen))
		return HOST_SANDBOX_FAILED;
	host_note_sandboxed();
	return HOST_SANDBOX_ENTERED;
}
