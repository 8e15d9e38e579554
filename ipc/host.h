/* host.h - the thin host-OS layer: everything that differs between Linux and
 * Windows sits behind these functions (host_linux.c, host_windows.c).
 * Threads and mutexes are POSIX threads on both (winpthreads on MinGW). */
#ifndef MINIVM_HOST_H
#define MINIVM_HOST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- shared memory: guest RAM and device state pages ----
 * A creator makes an object and gets a name another process passes to
 * host_shm_open().  The object lives while any process maps it. */
typedef struct host_shm host_shm;
host_shm *host_shm_create(const char *tag, uint64_t size, char *err, size_t errlen);
host_shm *host_shm_open(const char *name, uint64_t size, char *err, size_t errlen);
void *host_shm_ptr(const host_shm *s);
uint64_t host_shm_size(const host_shm *s);
const char *host_shm_name(const host_shm *s);
void host_shm_close(host_shm *s);

/* ---- terminal (console) ---- */
struct host_term {
	bool saved;
	unsigned char opaque[256]; /* struct termios / console modes */
};
bool host_stdin_is_tty(void);
bool host_stdout_is_tty(void);
int host_term_save(struct host_term *t);          /* of stdin/stdout */
int host_term_raw(const struct host_term *saved); /* raw input, no echo, no output processing (bytes pass as written; VT processing on a Windows console) */
void host_term_restore(const struct host_term *t); /* async-signal-safe on Linux */

/* The terminal's size in character cells (of stdout, else stdin): 0, or -1
 * when neither is a terminal. */
int host_term_size(unsigned *cols, unsigned *rows);
/* Call fn(opaque) from a thread of the host layer each time the terminal's
 * size may have changed (SIGWINCH on Linux; a console buffer-size event,
 * seen while host_stdin_read reads the console, on Windows).  fn then asks
 * host_term_size.  Once per process. */
void host_on_term_resize(void (*fn)(void *opaque), void *opaque);

/* Read up to n bytes of stdin; blocks until at least one byte is there.
 * Returns bytes read, 0 at end of input, -1 on error. On a Windows console,
 * key events without characters (arrows...) are turned into VT sequences. */
long host_stdin_read(void *buf, size_t n);
/* Write all n bytes to stdout (retrying short writes); -1 on error. */
int host_stdout_write(const void *buf, size_t n);

/* ---- processes ---- */
typedef struct host_proc host_proc;
/* Start path with argv (argv[0] included, NULL-terminated).  The child
 * inherits stdin/stdout/stderr and dies with the calling process
 * (PR_SET_PDEATHSIG / a kill-on-close Job object).  Linux sends the death
 * signal when the spawning *thread* exits: spawn from a thread that lives as
 * long as the children (the main thread). */
host_proc *host_spawn(const char *path, char *const argv[], char *err, size_t errlen);
/* Wait up to timeout_ms (-1: forever) for any of the n processes to exit.
 * Returns its index and stores its status (exit code, or 128+signal), or -1
 * on timeout or when none is left to wait for (NULL entries are skipped).
 * A process reported once is not reported again. */
int host_wait_any(host_proc *const procs[], int n, int timeout_ms, int *status);
void host_proc_kill(host_proc *p);     /* forceful */
void host_proc_terminate(host_proc *p); /* polite (SIGTERM); forceful on Windows */
long host_proc_pid(const host_proc *p);
void host_proc_free(host_proc *p);
/* Called once at start by processes spawned by host_spawn: exit if the
 * parent is already gone (closes the PDEATHSIG race). */
void host_child_init(void);

/* Directory of the running executable (no trailing separator). */
int host_exe_dir(char *buf, size_t n);
/* File name suffix of executables: "" or ".exe". */
const char *host_exe_suffix(void);

/* ---- runtime directory and ipc addresses ---- */
/* Create a private (0700) directory for this VM's sockets; path in buf. */
int host_runtime_dir_create(char *buf, size_t n, char *err, size_t errlen);
void host_runtime_dir_remove(const char *path);
/* The nng url for endpoint `name` in runtime dir `dir`: "ipc://DIR/NAME.sock"
 * on Linux, a named pipe "ipc://minivm-<pid>-NAME" on Windows. */
int host_ipc_url(const char *dir, const char *name, char *buf, size_t n);

/* ---- the user's cache ----
 * Files worth keeping between runs (the unpacked kernel), each named by its
 * content's key: a lost or foreign file only costs the work again. */
/* minivm's directory in the user's cache, created (owner only) if missing:
 * $MINIVM_CACHE_DIR if set, else $XDG_CACHE_HOME/minivm or
 * $HOME/.cache/minivm (%LOCALAPPDATA%\minivm on Windows).  -1 when there is
 * none, or MINIVM_CACHE_DIR is set empty (caching off). */
int host_cache_dir(char *buf, size_t n);
/* Store data and then tail as the file dir/name, whole: written beside it
 * under a temporary name, then renamed, so a reader sees no file or all of
 * it.  Then only the `keep` newest files of dir whose names start as
 * name's first `prefix_len` bytes are kept. */
int host_cache_store(const char *dir, const char *name, size_t prefix_len, unsigned keep,
		     const void *data, size_t size, const void *tail, size_t tail_size, char *err,
		     size_t errlen);

/* ---- termination signals ---- */
/* Run fn (async-signal-safe work only) when SIGINT/SIGTERM/SIGHUP or a
 * console close event arrives; then the process exits with 128+signal. */
void host_on_terminate(void (*fn)(int sig));

/* ---- waiting on several handles ----
 * A pollable handle is a file descriptor on Linux and a SOCKET on Windows
 * (WSAPoll takes sockets only: nng's NNG_OPT_RECVFD is one there). */
typedef intptr_t host_pollable;
#define HOST_POLLIN 0x1   /* readable (or a connection to accept) */
#define HOST_POLLOUT 0x2  /* writable */
#define HOST_POLLERR 0x4  /* revents only: error */
#define HOST_POLLHUP 0x8  /* revents only: the peer hung up */
struct host_pollfd {
	host_pollable fd;
	unsigned events;  /* HOST_POLLIN | HOST_POLLOUT */
	unsigned revents; /* set by host_poll */
};
/* Wait up to timeout_ms (-1: forever) until one of the n handles is ready.
 * Returns the number ready (0 on timeout, or when a signal interrupted the
 * wait), -1 on error. */
int host_poll(struct host_pollfd *fds, size_t n, int timeout_ms);

/* Make sockets usable in this process before it opens its own (dev-net's
 * libslirp): WSAStartup on Windows, where nng starts Winsock only when it
 * opens its first socket; nothing on Linux.  0, or -1 with err. */
int host_sockets_init(char *err, size_t errlen);

/* If socket s is listening, let its backlog hold as many pending connections
 * as the OS allows (libslirp listens with a backlog of 1, which turns a
 * burst of connections into SYN retransmissions seconds apart).  Nothing
 * for any other handle. */
void host_listen_deepen(host_pollable s);

/* ---- sandbox ----
 * A process enters its sandbox once it holds everything it needs from
 * outside (a device: after attaching, i.e. with the channel dialled and the
 * state page and guest RAM mapped).  From then on it can no longer gain
 * privileges, start programs, open files (unless its profile says so) or
 * make network sockets (unless it says so).  Linux (sandbox_linux.c): a
 * seccomp-bpf allowlist (the base every minivm process needs plus the
 * profile's system calls), no_new_privs, no capabilities, and when started
 * as root the user and group nobody (65534) and an empty root directory.
 * A forbidden system call ends the process: one line on stderr naming it,
 * then exit status HOST_EXIT_SANDBOX_VIOLATION, which is what a death by
 * SIGSYS looks like in host_wait_any.  Windows (host_windows.c): a job
 * object of its own that allows no child process and bounds memory, and
 * the low integrity level (what else Windows offers: there). */
struct host_sandbox_profile {
	/* Linux: system calls allowed beyond the base, by name, NULL-terminated. */
	const char *const *syscalls;
	/* Linux: the ioctl requests allowed, 0-terminated; NULL: any (vmm-core
	 * drives KVM through ioctls). */
	const unsigned long *ioctls;
	unsigned flags;      /* HOST_SANDBOX_* */
	/* Bytes of private memory the process may take beyond what it holds
	 * when it enters (RLIMIT_DATA; the job's committed memory on Windows):
	 * what it holds already depends on the host (nng starts threads per
	 * CPU).  0: no bound. */
	uint64_t data_limit;
	unsigned files_max;  /* open handles (RLIMIT_NOFILE); 0: unchanged */
};
#define HOST_SANDBOX_INET 0x1      /* may make TCP/UDP sockets, listen and accept (dev-net: libslirp) */
#define HOST_SANDBOX_OPEN_READ 0x2 /* may open existing files read-only (dev-net: libslirp re-reads resolv.conf) */
#define HOST_SANDBOX_OPEN_DEVICE 0x4 /* may open existing files read-write, never create one, and keeps
				      * its user (vmm-core under KVM: /dev/kvm on every boot) */
#define HOST_SANDBOX_SERVES_PIPES 0x8 /* Windows: creates named-pipe instances for (re)connecting
				       * devices (vmm-core), so it keeps its integrity level */
#define HOST_EXIT_SANDBOX_VIOLATION (128 + 31) /* 128 + SIGSYS */
/* The launcher's --no-sandbox ([vm] sandbox = off) reaches its children as
 * this environment variable set to "off". */
#define HOST_SANDBOX_ENV "MINIVM_SANDBOX"
enum host_sandbox_result { HOST_SANDBOX_ENTERED, HOST_SANDBOX_OFF, HOST_SANDBOX_FAILED };
/* Enter the sandbox of profile p for the rest of the process's life (every
 * thread), unless HOST_SANDBOX_ENV is "off".  FAILED: err says why, and the
 * caller must not go on unconfined. */
enum host_sandbox_result host_sandbox_enter(const struct host_sandbox_profile *p, char *err, size_t errlen);
/* Can this process still create an ipc listener's endpoint?  Linux: not once
 * sandboxed (no new Unix socket, an empty root).  Windows: yes, the core
 * serves its pipes (HOST_SANDBOX_SERVES_PIPES). */
bool host_can_listen_anew(void);
/* Linux: host_sandbox_enter's record that it succeeded (for
 * host_can_listen_anew; the fuzz targets link the host layer without the
 * sandbox). */
void host_note_sandboxed(void);

/* ---- executable memory (the software CPU's JIT code cache) ----
 * One region seen at two addresses: `rw` to write code, `rx` to run it (W^X:
 * no address is writable and executable).  Linux: a memfd mapped twice;
 * Windows: a pagefile-backed section viewed twice.  Allocate before entering
 * the sandbox, which forbids executable mappings. */
struct host_exec {
	uint8_t *rw;
	uint8_t *rx;
	size_t size;
};
int host_exec_alloc(struct host_exec *x, size_t size, char *err, size_t errlen);
void host_exec_free(struct host_exec *x);

/* ---- time ---- */
uint64_t host_now_ns(void); /* monotonic */
/* The host's RAM plus swap (page file) in bytes: the most guest RAM it can
 * back.  0 if unknown. */
uint64_t host_memory_bytes(void);
void host_sleep_ms(unsigned ms);

/* ---- waiting on a word of shared memory, across processes ----
 * A doorbell between the core and a device (ipc.h) without a message: one
 * process changes a 32-bit word in a shared-memory object and wakes the
 * other, which sleeps until the word differs from what it last saw.  On
 * Linux a futex on the shared mapping; Windows has no cross-process
 * equivalent of WaitOnAddress, so there host_shared_wait_supported() is
 * false, the wait only sleeps and the wake does nothing (devices then keep
 * to messages). */
bool host_shared_wait_supported(void);
/* Sleep while *word == expected, up to timeout_us (spurious returns are
 * allowed: the caller loads the word again). */
void host_shared_wait(_Atomic uint32_t *word, uint32_t expected, unsigned timeout_us);
/* Wake every process sleeping on word. */
void host_shared_wake(_Atomic uint32_t *word);
/* One pause in a loop that spins on such a word (x86 PAUSE, arm64 YIELD):
 * kinder to a sibling hyperthread, and what a hypervisor's pause-loop
 * detection looks for. */
static inline void host_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* ---- run-time library loading (WinHvPlatform.dll) ---- */
void *host_lib_open_system(const char *name, char *err, size_t errlen);
void *host_lib_sym(void *lib, const char *sym);

#endif
