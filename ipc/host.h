/* host.h - the thin host-OS layer: everything that differs between Linux and
 * Windows sits behind these functions (host_linux.c, host_windows.c).
 * Threads and mutexes are POSIX threads on both (winpthreads on MinGW). */
#ifndef MINIVM_HOST_H
#define MINIVM_HOST_H

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

/* ---- termination signals ---- */
/* Run fn (async-signal-safe work only) when SIGINT/SIGTERM/SIGHUP or a
 * console close event arrives; then the process exits with 128+signal. */
void host_on_terminate(void (*fn)(int sig));

/* ---- time ---- */
uint64_t host_now_ns(void); /* monotonic */
void host_sleep_ms(unsigned ms);

/* ---- run-time library loading (WinHvPlatform.dll) ---- */
void *host_lib_open_system(const char *name, char *err, size_t errlen);
void *host_lib_sym(void *lib, const char *sym);

#endif
