/* sandbox.c - dev-net's sandbox profile (host.h).
 *
 * dev-net is the one process that talks to the host's network: libslirp
 * turns the guest's TCP/UDP flows into host sockets (socket, connect,
 * sendto/recvfrom, send/recv through sendmsg/recvmsg), listens for hostfwd
 * forwards (bind, listen, accept), looks at them (getsockname, getpeername,
 * get/setsockopt, FIONREAD for a UDP datagram's size, FIONBIO) and waits on
 * them in the device library's poll.  IPv4 and IPv6 sockets only: a
 * netlink, packet or raw socket kills the process (ICMP echo would need a
 * raw or ping socket: libslirp falls back to UDP, or answers itself).
 * libslirp re-reads /etc/resolv.conf (stat, then open read-only) when it
 * changes, to forward DNS to the host's resolver: read-only opens of
 * existing files stay allowed, so the root directory is kept; as nobody it
 * reads only what anybody may.  No exec, no new process.
 *
 * Bounds: a guest opening connections without end meets RLIMIT_NOFILE
 * (libslirp's accept/socket fail, the flow is refused) and RLIMIT_DATA
 * (each connection buffers at most its 64 KiB window each way in libslirp).
 *
 * Windows (host_windows.c): a job object of its own that allows no child
 * process and bounds committed memory by data_limit, and the low integrity
 * level: Winsock needs no integrity level to connect, listen or accept, and
 * the forwards' listeners are bound before the sandbox anyway; the DNS
 * servers libslirp forwards to come from GetNetworkParams, which a
 * low-integrity process may call.  The syscall and ioctl lists, and
 * files_max, are Linux's only. */
#include "sandbox.h"

#ifdef __linux__
#include <sys/ioctl.h>

static const unsigned long net_ioctls[] = {FIONREAD, FIONBIO, 0};
#endif

static const char *const net_syscalls[] = {
	"connect", "bind", "listen", "accept", "accept4", NULL,
};

const struct host_sandbox_profile net_sandbox = {
	.syscalls = net_syscalls,
#ifdef __linux__
	.ioctls = net_ioctls,
#endif
	.flags = HOST_SANDBOX_INET | HOST_SANDBOX_OPEN_READ,
	.data_limit = 256ull << 20,
	.files_max = 1024,
};
