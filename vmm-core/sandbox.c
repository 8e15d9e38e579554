/* sandbox.c - vmm-core's sandbox profiles (host.h).
 *
 * The core enters its sandbox once every device said HELLO (their sockets
 * listen and are connected) and the guest image is loaded (the files are
 * read once into memory, so a reboot opens nothing).  From then on it runs
 * vCPU threads over guest RAM, talks to its devices on sockets it already
 * holds, and accepts a restarted device's new connection on the listening
 * socket it already has (accept4).  It needs no new socket, no file, no
 * exec, no process.  The soft engine needs nothing else: the core runs as
 * nobody (when started as root) in an empty root.
 *
 * The KVM engine opens /dev/kvm again for every boot (engine_kvm.c creates
 * a VM per run) and drives it with ioctls of every kind: that profile may
 * open existing files without creating any and call any ioctl, and keeps
 * its user, since /dev/kvm is root's (0600) on our hosts; it still has no
 * capability and no way to start a program or open a socket.  A KVM
 * engine that kept its /dev/kvm descriptor across reboots would let it
 * drop to nobody too.
 *
 * On Windows the core keeps its integrity level: nng makes a new instance
 * of each device's named pipe for every (re)connection (host_windows.c).
 *
 * Memory: 512 MiB beyond what it holds at entry (RLIMIT_DATA) for the
 * engine's own allocations: the soft CPU's caches, vCPU threads (the
 * unpacked kernel is held from before, and kept for reboots).  Guest RAM
 * is shared memory, not counted. */
#include "sandbox.h"

#include <string.h>

static const unsigned long no_ioctls[] = {0};

static const char *const core_syscalls[] = {
	"accept", "accept4", /* a restarted device connects to the listener */
	NULL,
};

static const struct host_sandbox_profile soft_sandbox = {
	.syscalls = core_syscalls,
	.ioctls = no_ioctls,
	.flags = HOST_SANDBOX_SERVES_PIPES,
	.data_limit = 512ull << 20,
};

static const struct host_sandbox_profile kvm_sandbox = {
	.syscalls = core_syscalls,
	.ioctls = NULL, /* KVM */
	.flags = HOST_SANDBOX_OPEN_DEVICE | HOST_SANDBOX_SERVES_PIPES,
	.data_limit = 512ull << 20,
};

const struct host_sandbox_profile *core_sandbox(const char *engine_name)
{
	return strcmp(engine_name, "kvm") == 0 ? &kvm_sandbox : &soft_sandbox;
}
