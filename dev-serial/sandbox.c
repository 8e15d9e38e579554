/* sandbox.c - dev-serial's sandbox profile (host.h).
 *
 * Once attached, dev-serial only moves bytes: the channel to the core (nng,
 * already dialled), stdin and stdout (inherited), and the state page and
 * guest RAM (mapped).  So beyond the base every process has
 * (ipc/sandbox_linux.c: memory, threads, time, poll, I/O on open
 * descriptors) it needs only the terminal's ioctls: reading and restoring
 * its modes (raw mode is set before attach, restored at exit) and its size
 * (virtio-console's resize).  No file opens, no sockets (a Unix socket for
 * nng's redial is refused with EACCES, any other kills), no exec, no new
 * processes.  Memory: 64 MiB beyond what it holds once attached; its
 * resident peak with the default guest running is about 3 MiB (VmHWM),
 * nng's thread stacks are already mapped by then. */
#include "sandbox.h"

#ifdef __linux__
#include <sys/ioctl.h>

static const unsigned long terminal_ioctls[] = {TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, 0};
#endif

const struct host_sandbox_profile serial_sandbox = {
#ifdef __linux__
	.ioctls = terminal_ioctls,
#endif
	.data_limit = 64ull << 20,
	.files_max = 64,
};
