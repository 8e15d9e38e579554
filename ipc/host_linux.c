/* host_linux.c - the host-OS layer (host.h) on Linux. */
#define _GNU_SOURCE
#include "host.h"
#include "log.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...) MINIVM_PRINTF(3, 4);

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- shared memory ----
 * A memfd, named by its /proc path: another process of the same user opens
 * it there (ptrace read access to the creator, which Yama does not restrict).
 * Its size is sealed, so no process holding it can shrink it under another's
 * mapping (that would turn accesses into SIGBUS). */
struct host_shm {
	int fd;
	void *ptr;
	uint64_t size;
	char name[64];
};

static host_shm *shm_map(int fd, uint64_t size, char *err, size_t errlen)
{
	if (size == 0 || size > (uint64_t)SIZE_MAX) {
		set_err(err, errlen, "shared memory: bad size %llu", (unsigned long long)size);
		return NULL;
	}
	void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		set_err(err, errlen, "shared memory: mmap of %llu bytes: %s", (unsigned long long)size, strerror(errno));
		return NULL;
	}
	host_shm *s = calloc(1, sizeof(*s));
	if (!s) {
		munmap(p, (size_t)size);
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	s->fd = fd;
	s->ptr = p;
	s->size = size;
	snprintf(s->name, sizeof(s->name), "/proc/%ld/fd/%d", (long)getpid(), fd);
	return s;
}

host_shm *host_shm_create(const char *tag, uint64_t size, char *err, size_t errlen)
{
	int fd = memfd_create(tag, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		set_err(err, errlen, "memfd_create(%s): %s", tag, strerror(errno));
		return NULL;
	}
	if (size > (uint64_t)INT64_MAX || ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		set_err(err, errlen, "shared memory %s of %llu bytes: %s", tag, (unsigned long long)size,
			strerror(errno));
		close(fd);
		return NULL;
	}
	host_shm *s = shm_map(fd, size, err, errlen);
	if (!s)
		close(fd);
	return s;
}

host_shm *host_shm_open(const char *name, uint64_t size, char *err, size_t errlen)
{
	int fd = open(name, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		set_err(err, errlen, "open shared memory %s: %s", name, strerror(errno));
		return NULL;
	}
	/* The name came from another process: map only a sealed regular file
	 * at least as large as we will touch. */
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < size || seals < 0 ||
	    !(seals & F_SEAL_SHRINK)) {
		set_err(err, errlen, "shared memory %s is not a sealed object of at least %llu bytes", name,
			(unsigned long long)size);
		close(fd);
		return NULL;
	}
	host_shm *s = shm_map(fd, size, err, errlen);
	if (!s) {
		close(fd);
		return NULL;
	}
	/* Keep the name the creator gave, so it can be passed on again. */
	snprintf(s->name, sizeof(s->name), "%s", name);
	return s;
}

void *host_shm_ptr(const host_shm *s)
{
	return s->ptr;
}

uint64_t host_shm_size(const host_shm *s)
{
	return s->size;
}

const char *host_shm_name(const host_shm *s)
{
	return s->name;
}

void host_shm_close(host_shm *s)
{
	if (!s)
		return;
	munmap(s->ptr, (size_t)s->size);
	close(s->fd);
	free(s);
}

/* ---- terminal ---- */
_Static_assert(sizeof(struct termios) <= sizeof(((struct host_term *)0)->opaque), "termios does not fit");

bool host_stdin_is_tty(void)
{
	return isatty(STDIN_FILENO);
}

bool host_stdout_is_tty(void)
{
	return isatty(STDOUT_FILENO);
}

int host_term_save(struct host_term *t)
{
	struct termios tio;
	t->saved = false;
	if (tcgetattr(STDIN_FILENO, &tio) < 0)
		return -1;
	memcpy(t->opaque, &tio, sizeof(tio));
	t->saved = true;
	return 0;
}

int host_term_raw(const struct host_term *saved)
{
	if (!saved->saved)
		return -1;
	struct termios tio;
	memcpy(&tio, saved->opaque, sizeof(tio));
	/* cfmakeraw(), spelled out: no input translation, no echo, no signals
	 * from keys (Ctrl-C goes to the guest), and no output processing, so
	 * the guest's bytes reach the terminal untouched. */
	tio.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	tio.c_oflag &= ~(tcflag_t)OPOST;
	tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	tio.c_cflag |= CS8;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	return tcsetattr(STDIN_FILENO, TCSANOW, &tio) < 0 ? -1 : 0;
}

int host_term_size(unsigned *cols, unsigned *rows)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) != 0)
		return -1;
	*cols = ws.ws_col;
	*rows = ws.ws_row;
	return 0;
}

/* SIGWINCH: the handler writes a byte to a pipe, a thread reads it and
 * calls the callback outside signal context (it takes locks). */
static int winch_pipe[2] = {-1, -1};
static void (*resize_fn)(void *opaque);
static void *resize_opaque;

static void on_winch(int sig)
{
	int saved = errno;
	char b = 0;
	ssize_t rc = write(winch_pipe[1], &b, 1); /* full: a wake-up is pending anyway */
	(void)rc;
	errno = saved;
}

static void *winch_thread(void *arg)
{
	char buf[64];
	for (;;) {
		ssize_t n = read(winch_pipe[0], buf, sizeof(buf));
		if (n > 0)
			resize_fn(resize_opaque);
		else if (n == 0 || errno != EINTR)
			return NULL;
	}
}

void host_on_term_resize(void (*fn)(void *opaque), void *opaque)
{
	if (winch_pipe[0] >= 0)
		return;
	if (pipe2(winch_pipe, O_CLOEXEC) != 0) {
		log_msg("cannot follow the terminal's size: %s", strerror(errno));
		return;
	}
	fcntl(winch_pipe[1], F_SETFL, O_NONBLOCK);
	resize_fn = fn;
	resize_opaque = opaque;
	pthread_t t;
	if (pthread_create(&t, NULL, winch_thread, NULL) != 0) {
		log_msg("cannot follow the terminal's size: no thread");
		return;
	}
	pthread_detach(t);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_winch;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, NULL);
}

void host_term_restore(const struct host_term *t)
{
	/* Called from signal handlers: tcsetattr is async-signal-safe. */
	if (!t->saved)
		return;
	struct termios tio;
	memcpy(&tio, t->opaque, sizeof(tio));
	tcsetattr(STDIN_FILENO, TCSANOW, &tio);
}

long host_stdin_read(void *buf, size_t n)
{
	for (;;) {
		ssize_t r = read(STDIN_FILENO, buf, n);
		if (r >= 0)
			return (long)r;
		if (errno != EINTR)
			return -1;
	}
}

int host_stdout_write(const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- processes ---- */
struct host_proc {
	pid_t pid;
	bool reaped;
};

/* In the child between fork and exec: only async-signal-safe calls. */
static void spawn_child(const char *path, char *const argv[], pid_t parent, int report_fd)
{
	/* Die with the parent.  Linux ties the death signal to the parent
	 * *thread*: host_spawn must be called from a thread that lives as long
	 * as the children (the launcher's main thread). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the parent died before prctl took effect */
		_exit(127);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(path, argv);
	int e = errno;
	ssize_t ignored = write(report_fd, &e, sizeof(e));
	(void)ignored;
	_exit(127);
}

host_proc *host_spawn(const char *path, char *const argv[], char *err, size_t errlen)
{
	host_proc *p = calloc(1, sizeof(*p));
	/* exec failures come back through a close-on-exec pipe: EOF = exec'd. */
	int report[2];
	if (!p || pipe2(report, O_CLOEXEC) < 0) {
		set_err(err, errlen, "spawn %s: %s", path, strerror(errno));
		free(p);
		return NULL;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0)
		spawn_child(path, argv, parent, report[1]);
	close(report[1]);
	if (pid < 0) {
		set_err(err, errlen, "fork for %s: %s", path, strerror(errno));
		close(report[0]);
		free(p);
		return NULL;
	}
	int child_errno;
	ssize_t r;
	do
		r = read(report[0], &child_errno, sizeof(child_errno));
	while (r < 0 && errno == EINTR);
	close(report[0]);
	if (r == (ssize_t)sizeof(child_errno)) {
		waitpid(pid, NULL, 0);
		set_err(err, errlen, "cannot run %s: %s", path, strerror(child_errno));
		free(p);
		return NULL;
	}
	p->pid = pid;
	return p;
}

static int exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	return 128 + WTERMSIG(wstatus);
}

int host_wait_any(host_proc *const procs[], int n, int timeout_ms, int *status)
{
	/* Poll with short sleeps: simple, and no SIGCHLD handler to share with
	 * the rest of the process.  A 5 ms delay in noticing a death is fine. */
	uint64_t deadline = host_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000u;
	for (;;) {
		bool any_alive = false;
		for (int i = 0; i < n; i++) {
			host_proc *p = procs[i];
			if (!p || p->reaped)
				continue;
			any_alive = true;
			int ws;
			pid_t r = waitpid(p->pid, &ws, WNOHANG);
			if (r == p->pid) {
				p->reaped = true;
				*status = exit_status(ws);
				return i;
			}
			if (r < 0 && errno == ECHILD) { /* reaped elsewhere: report it gone */
				p->reaped = true;
				*status = 128 + SIGKILL;
				return i;
			}
		}
		if (!any_alive || (timeout_ms >= 0 && host_now_ns() >= deadline))
			return -1;
		host_sleep_ms(5);
	}
}

void host_proc_kill(host_proc *p)
{
	if (p && !p->reaped)
		kill(p->pid, SIGKILL);
}

void host_proc_terminate(host_proc *p)
{
	if (p && !p->reaped)
		kill(p->pid, SIGTERM);
}

long host_proc_pid(const host_proc *p)
{
	return (long)p->pid;
}

void host_proc_free(host_proc *p)
{
	free(p);
}

void host_child_init(void)
{
	/* Nothing to do on Linux: host_spawn's child sets PR_SET_PDEATHSIG and
	 * checks its parent before exec, which closes the race already. */
}

int host_exe_dir(char *buf, size_t n)
{
	char path[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (len <= 0)
		return -1;
	path[len] = '\0';
	char *slash = strrchr(path, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	if ((size_t)snprintf(buf, n, "%s", path) >= n)
		return -1;
	return 0;
}

const char *host_exe_suffix(void)
{
	return "";
}

/* ---- runtime directory and ipc addresses ---- */

/* Room left in a socket path after the directory: "/" NAME ".sock". */
#define SOCK_NAME_ROOM (1 + 15 + 5)

int host_runtime_dir_create(char *buf, size_t n, char *err, size_t errlen)
{
	/* A socket path must fit in sun_path: fall back to /tmp when
	 * $XDG_RUNTIME_DIR is too long for "<dir>/minivm-XXXXXX/<name>.sock"
	 * or unusable. */
	const char *bases[2] = { getenv("XDG_RUNTIME_DIR"), "/tmp" };
	size_t max_dir = sizeof(((struct sockaddr_un *)0)->sun_path) - 1 - SOCK_NAME_ROOM;
	set_err(err, errlen, "no runtime directory: $XDG_RUNTIME_DIR and /tmp unusable");
	for (int i = 0; i < 2; i++) {
		const char *base = bases[i];
		if (!base || base[0] != '/')
			continue;
		int len = snprintf(buf, n, "%s/minivm-XXXXXX", base);
		if (len < 0 || (size_t)len >= n || (size_t)len > max_dir)
			continue;
		if (mkdtemp(buf)) /* mode 0700 */
			return 0;
		set_err(err, errlen, "cannot create a runtime directory in %s: %s", base, strerror(errno));
	}
	return -1;
}

void host_runtime_dir_remove(const char *path)
{
	/* It holds only our sockets: remove them, then the directory. */
	DIR *d = opendir(path);
	if (d) {
		int dfd = dirfd(d);
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dfd, e->d_name, 0);
		closedir(d);
	}
	rmdir(path);
}

int host_ipc_url(const char *dir, const char *name, char *buf, size_t n)
{
	int len = snprintf(buf, n, "ipc://%s/%s.sock", dir, name);
	return len < 0 || (size_t)len >= n ? -1 : 0;
}

/* ---- the user's cache ---- */

int host_cache_dir(char *buf, size_t n)
{
	const char *own = getenv("MINIVM_CACHE_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int len;
	if (own)
		len = own[0] ? snprintf(buf, n, "%s", own) : -1;
	else if (xdg && xdg[0] == '/')
		len = snprintf(buf, n, "%s/minivm", xdg);
	else if (home && home[0] == '/') {
		/* ~/.cache may not exist yet (a fresh account). */
		len = snprintf(buf, n, "%s/.cache", home);
		if (len >= 0 && (size_t)len < n && mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		len = snprintf(buf, n, "%s/.cache/minivm", home);
	} else
		return -1;
	if (len < 0 || (size_t)len >= n)
		return -1;
	return mkdir(buf, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* Remove all but the `keep` newest regular files in dir whose names start
 * with prefix (files being written, ".tmp.", are another store's). */
static void cache_prune(const char *dir, const char *prefix, unsigned keep)
{
	size_t prefix_len = strlen(prefix);
	DIR *d = opendir(dir);
	if (!d)
		return;
	for (;;) {
		/* One pass per file beyond `keep`: a cache holds a handful. */
		unsigned count = 0;
		char oldest[NAME_MAX + 1] = "";
		struct timespec oldest_time = {0};
		struct dirent *e;
		rewinddir(d);
		while ((e = readdir(d))) {
			struct stat st;
			if (strncmp(e->d_name, prefix, prefix_len) != 0 || strstr(e->d_name, ".tmp.") ||
			    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
				continue;
			count++;
			if (!oldest[0] || st.st_mtim.tv_sec < oldest_time.tv_sec ||
			    (st.st_mtim.tv_sec == oldest_time.tv_sec && st.st_mtim.tv_nsec < oldest_time.tv_nsec)) {
				snprintf(oldest, sizeof(oldest), "%s", e->d_name);
				oldest_time = st.st_mtim;
			}
		}
		if (count <= keep || unlinkat(dirfd(d), oldest, 0) != 0)
			break;
	}
	closedir(d);
}

/* Write all of buf to fd: 0, or -1 with errno (0 for a short write). */
static int write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = 0;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int host_cache_store(const char *dir, const char *name, size_t prefix_len, unsigned keep,
		     const void *data, size_t size, const void *tail, size_t tail_size, char *err,
		     size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int len = snprintf(path, sizeof(path), "%s/%s", dir, name);
	int tlen = snprintf(tmp, sizeof(tmp), "%s/%s.tmp.%ld", dir, name, (long)getpid());
	if (len < 0 || (size_t)len >= sizeof(path) || tlen < 0 || (size_t)tlen >= sizeof(tmp)) {
		set_err(err, errlen, "%s: path too long", dir);
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		set_err(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write_all(fd, data, size) != 0 || write_all(fd, tail, tail_size) != 0) {
		set_err(err, errlen, "%s: %s", tmp, errno ? strerror(errno) : "short write");
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	char prefix[NAME_MAX + 1];
	snprintf(prefix, sizeof(prefix), "%.*s", (int)prefix_len, name);
	cache_prune(dir, prefix, keep);
	return 0;
}

/* ---- termination signals ---- */
static void (*terminate_fn)(int sig);
static atomic_int terminate_running;

static void on_terminate_signal(int sig)
{
	/* Several threads may take a signal at once: the first runs fn and
	 * exits, the others wait for that. */
	if (atomic_exchange(&terminate_running, 1))
		for (;;)
			pause();
	if (terminate_fn)
		terminate_fn(sig);
	_exit(128 + sig);
}

void host_on_terminate(void (*fn)(int sig))
{
	terminate_fn = fn;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_terminate_signal;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGHUP);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ---- time ---- */
int host_poll(struct host_pollfd *fds, size_t n, int timeout_ms)
{
	struct pollfd pfd[n ? n : 1];
	for (size_t i = 0; i < n; i++) {
		pfd[i] = (struct pollfd){.fd = (int)fds[i].fd};
		pfd[i].events = (short)((fds[i].events & HOST_POLLIN ? POLLIN : 0) |
					(fds[i].events & HOST_POLLOUT ? POLLOUT : 0));
	}
	int rc = poll(pfd, (nfds_t)n, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	for (size_t i = 0; i < n; i++) {
		short r = pfd[i].revents;
		fds[i].revents = (r & POLLIN ? HOST_POLLIN : 0) | (r & POLLOUT ? HOST_POLLOUT : 0) |
				 (r & (POLLERR | POLLNVAL) ? HOST_POLLERR : 0) | (r & POLLHUP ? HOST_POLLHUP : 0);
	}
	return rc;
}

uint64_t host_memory_bytes(void)
{
	struct sysinfo si;
	if (sysinfo(&si) != 0)
		return 0;
	return ((uint64_t)si.totalram + si.totalswap) * si.mem_unit;
}

uint64_t host_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void host_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- waiting on a word of shared memory ---- */

bool host_shared_wait_supported(void)
{
	return true;
}

/* Not FUTEX_PRIVATE: the word is in a mapping other processes share. */
void host_shared_wait(_Atomic uint32_t *word, uint32_t expected, unsigned timeout_us)
{
	struct timespec ts = {.tv_sec = timeout_us / 1000000, .tv_nsec = (long)(timeout_us % 1000000) * 1000};
	syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

void host_shared_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---- run-time library loading ---- */
void *host_lib_open_system(const char *name, char *err, size_t errlen)
{
	void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		set_err(err, errlen, "%s", dlerror());
	return lib;
}

void *host_lib_sym(void *lib, const char *sym)
{
	return dlsym(lib, sym);
}

int host_sockets_init(char *err, size_t errlen)
{
	return 0;
}

void host_listen_deepen(host_pollable s)
{
	int listening = 0;
	socklen_t len = sizeof(listening);
	if (getsockopt((int)s, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
		listen((int)s, SOMAXCONN); /* a second listen() only resizes the backlog */
}

/* ---- executable memory ---- */

int host_exec_alloc(struct host_exec *x, size_t size, char *err, size_t errlen)
{
	*x = (struct host_exec){0};
	int fd = memfd_create("minivm-jit", MFD_CLOEXEC);
	if (fd < 0) {
		set_err(err, errlen, "jit code cache: memfd_create: %s", strerror(errno));
		return -1;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		set_err(err, errlen, "jit code cache: ftruncate: %s", strerror(errno));
		close(fd);
		return -1;
	}
	void *rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	void *rx = rw == MAP_FAILED ? MAP_FAILED : mmap(NULL, size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	int saved = errno;
	close(fd); /* the mappings keep the memory */
	if (rx == MAP_FAILED) {
		if (rw != MAP_FAILED)
			munmap(rw, size);
		set_err(err, errlen, "jit code cache: mmap: %s", strerror(saved));
		return -1;
	}
	*x = (struct host_exec){.rw = rw, .rx = rx, .size = size};
	return 0;
}

void host_exec_free(struct host_exec *x)
{
	if (x->rw) {
		munmap(x->rw, x->size);
		munmap(x->rx, x->size);
	}
	*x = (struct host_exec){0};
}

/* Set once a sandbox is entered (sandbox_linux.c): no Unix socket can be
 * made, and the root is an empty directory, so a listener's socket file
 * cannot be bound anew.  Here rather than there: the fuzz targets link the
 * host layer without the sandbox. */
static atomic_bool sandboxed;

void host_note_sandboxed(void)
{
	atomic_store(&sandboxed, true);
}

bool host_can_listen_anew(void)
{
	return !atomic_load(&sandboxed);
}
