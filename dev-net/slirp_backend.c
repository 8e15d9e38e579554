/* slirp_backend.c - libslirp behind dev-net's event loop.
 *
 * What a dev-net restart keeps and loses.  All NAT state lives in this
 * process: libslirp's TCP control blocks, its host sockets (connections to
 * the outside, hostfwd listeners and accepted connections), the ARP/NDP
 * tables and the DHCP leases.  slirp_state_save/load would carry almost
 * none of it across a restart: they save the guestfwd sockets, the IP id
 * counter and the DHCP table, not the NAT'd host sockets nor the hostfwd
 * listeners, and a new process cannot adopt the old one's sockets anyway.
 * So a restarted dev-net starts from a fresh instance built from the same
 * net_config:
 *   - kept: the guest's view of the network - the same addresses, MAC,
 *     MTU, and the DHCP lease (the guest renews 10.0.2.15 from the first
 *     free slot, which is its own since the table starts empty); forwards
 *     listen again because backend_create() re-adds every hostfwd
 *     (libslirp sets SO_REUSEADDR, so they bind over the old connections'
 *     TIME_WAITs).  The ARP table starts empty: libslirp asks for the
 *     guest's MAC again before its first frame to the guest;
 *   - lost: every open TCP connection.  Its host side was closed when the
 *     old process died (the peer sees a reset or EOF); the guest's next
 *     segment for it meets no control block in the new instance and
 *     libslirp answers with RST (tcp_input's dropwithreset), so nothing is
 *     left hanging.  UDP and DNS simply resume: each datagram opens a new
 *     host socket.  Frames in flight in either direction are dropped; TCP
 *     retransmits them for the connections that survive, which are none. */
#include "slirp_backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "log.h"
#include "net_csum.h"

/* The version shim: libslirp 4.9 (config v6) polls host sockets as
 * slirp_os_socket through slirp_pollfds_fill_socket and register_poll_socket;
 * older ones use int fds.  Only the fields of the version we declare are
 * read, so each branch names the version whose fields it fills. */
#if SLIRP_CHECK_VERSION(4, 9, 0)
#define BACKEND_SLIRP_CONFIG_VERSION 6
#define backend_slirp_pollfds_fill slirp_pollfds_fill_socket
#else
#define BACKEND_SLIRP_CONFIG_VERSION 4
#define backend_slirp_pollfds_fill slirp_pollfds_fill
#endif

#define ETH_HEADER_LEN 14
#define IP_PACKET_MAX 65535
/* libslirp's TCP timers want the loop at most this far apart (it caps its
 * own poll timeout at 1 s). */
#define SLIRP_TIMEOUT_MAX_MS 1000u

struct backend_timer {
	struct backend_timer *next;
	SlirpTimerId id;
	void *cb_opaque;
	bool armed;
	int64_t expire_ms; /* host_now_ns() / 1e6 clock */
	uint64_t fired_in_run;
};

struct slirp_backend {
	Slirp *slirp;
	struct net_config cfg; /* the strings libslirp was given live here */
	backend_frame_out_fn *frame_out;
	void *opaque;

	struct backend_pollfd *pollfds;
	size_t n_pollfds, cap_pollfds;
	uint32_t slirp_timeout_ms; /* from the last fill */

	struct backend_timer *timers;
	uint64_t timer_runs;
};

static int64_t now_ms(void)
{
	return (int64_t)(host_now_ns() / 1000000u);
}

/* ---- libslirp's callbacks ---- */

static slirp_ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_backend *b = opaque;
	b->frame_out(buf, len, b->opaque);
	return (slirp_ssize_t)len;
}

static void guest_error(const char *msg, void *opaque)
{
	log_once("guest network error (logged once): %s", msg);
}

static int64_t clock_get_ns(void *opaque)
{
	return (int64_t)host_now_ns();
}

static void *timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct slirp_backend *b = opaque;
	struct backend_timer *t = calloc(1, sizeof(*t));
	if (!t) {
		/* libslirp cannot take a failure here; its only timer is IPv6's
		 * router advertisement, which is then never re-sent. */
		log_once("out of memory for a libslirp timer");
		return NULL;
	}
	t->id = id;
	t->cb_opaque = cb_opaque;
	t->next = b->timers;
	b->timers = t;
	return t;
}

static void timer_free(void *timer, void *opaque)
{
	struct slirp_backend *b = opaque;
	for (struct backend_timer **p = &b->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

static void timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct backend_timer *t = timer;
	if (t) {
		t->armed = true;
		t->expire_ms = expire_ms;
	}
}

/* dev-net polls what each fill returns; nothing to keep registered. */
static void poll_socket_ignored(slirp_os_socket fd, void *opaque)
{
}

/* libslirp's "poll me again" (a socket buffer drained): the loop asks for
 * the sockets again after each of its turns, and virtio_net.c wakes it
 * after frames given to libslirp off the loop (a doorbell). */
static void notify_ignored(void *opaque)
{
}

static const SlirpCb callbacks = {
	.send_packet = send_packet,
	.guest_error = guest_error,
	.clock_get_ns = clock_get_ns,
	.timer_free = timer_free,
	.timer_mod = timer_mod,
#if BACKEND_SLIRP_CONFIG_VERSION >= 6
	.register_poll_socket = poll_socket_ignored,
	.unregister_poll_socket = poll_socket_ignored,
#else
	.register_poll_fd = poll_socket_ignored,
	.unregister_poll_fd = poll_socket_ignored,
#endif
	.notify = notify_ignored,
	.timer_new_opaque = timer_new_opaque,
};

/* ---- life ---- */

static struct in_addr in_addr_of(uint32_t host_order)
{
	return (struct in_addr){.s_addr = htonl(host_order)};
}

/* QEMU's IPv6 defaults: fec0::/64, host fec0::2, DNS fec0::3. */
static struct in6_addr site_local(uint8_t last)
{
	struct in6_addr a = {{{0xfe, 0xc0}}};
	a.s6_addr[15] = last;
	return a;
}

static int add_forwards(struct slirp_backend *b, char *err, size_t errlen)
{
	for (unsigned i = 0; i < b->cfg.n_hostfwd; i++) {
		const struct net_hostfwd *f = &b->cfg.hostfwd[i];
		errno = 0;
		if (slirp_add_hostfwd(b->slirp, f->udp, in_addr_of(f->host_addr), f->host_port,
				      in_addr_of(f->guest_addr), f->guest_port) < 0) {
			char addr[16];
			int e = errno;
			snprintf(err, errlen, "hostfwd: cannot listen on %s %s:%u: %s", f->udp ? "udp" : "tcp",
				 net_addr_str(f->host_addr, addr, sizeof(addr)), f->host_port,
				 e == EADDRINUSE ? "the port is in use" : e ? strerror(e) : "refused by libslirp");
			return -1;
		}
	}
	return 0;
}

struct slirp_backend *backend_create(const struct net_config *cfg, backend_frame_out_fn *frame_out,
				     void *opaque, char *err, size_t errlen)
{
	if (host_sockets_init(err, errlen))
		return NULL;
	struct slirp_backend *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->cfg = *cfg;
	b->frame_out = frame_out;
	b->opaque = opaque;
	b->slirp_timeout_ms = SLIRP_TIMEOUT_MAX_MS;

	const char *dnssearch[NET_DNSSEARCH_MAX + 1] = {0};
	for (unsigned i = 0; i < b->cfg.n_dnssearch; i++)
		dnssearch[i] = b->cfg.dnssearch[i];
	SlirpConfig sc = {
		.version = BACKEND_SLIRP_CONFIG_VERSION,
		.restricted = b->cfg.restricted,
		.in_enabled = true,
		.vnetwork = in_addr_of(b->cfg.net),
		.vnetmask = in_addr_of(b->cfg.mask),
		.vhost = in_addr_of(b->cfg.host),
		.in6_enabled = b->cfg.ipv6,
		.vprefix_addr6 = site_local(0),
		.vprefix_len = 64,
		.vhost6 = site_local(2),
		.vhostname = b->cfg.hostname[0] ? b->cfg.hostname : NULL,
		.vdhcp_start = in_addr_of(b->cfg.dhcpstart),
		.vnameserver = in_addr_of(b->cfg.dns),
		.vnameserver6 = site_local(3),
		.vdnssearch = b->cfg.n_dnssearch ? dnssearch : NULL,
		.vdomainname = b->cfg.domainname[0] ? b->cfg.domainname : NULL,
		.if_mtu = b->cfg.mtu,
		.if_mru = b->cfg.mtu,
	};
	b->slirp = slirp_new(&sc, &callbacks, b);
	if (!b->slirp) {
		snprintf(err, errlen, "libslirp %s refused the network configuration", slirp_version_string());
		backend_destroy(b);
		return NULL;
	}
	if (add_forwards(b, err, errlen)) {
		backend_destroy(b);
		return NULL;
	}
	/* The forwards are the only sockets yet: let each take a burst of
	 * connections (host_listen_deepen says why). */
	struct backend_pollfd *fds;
	size_t n = backend_fill_pollfds(b, &fds);
	for (size_t i = 0; i < n; i++)
		host_listen_deepen((host_pollable)fds[i].fd);
	return b;
}

void backend_destroy(struct slirp_backend *b)
{
	if (!b)
		return;
	if (b->slirp)
		slirp_cleanup(b->slirp); /* frees its timers through timer_free */
	while (b->timers) {
		struct backend_timer *t = b->timers;
		b->timers = t->next;
		free(t);
	}
	free(b->pollfds);
	free(b);
}

/* ---- frames from the guest ---- */

int backend_input(struct slirp_backend *b, uint8_t *frame, size_t len, const struct backend_tx_csum *csum)
{
	if (len > ETH_HEADER_LEN + IP_PACKET_MAX) {
		log_once("guest frame of %zu bytes dropped: larger than any IP packet", len);
		return -1;
	}
	/* libslirp 4.7's IPv4 reassembly crashes on fragments a hostile guest
	 * crafts (found by fuzz_dev_net: a lone last fragment at offset 2040).
	 * The guest has no reason to fragment: the MTU (65520 by default)
	 * holds any datagram it sends unless the user lowered it. */
	if (len >= ETH_HEADER_LEN + 20 && frame[12] == 0x08 && frame[13] == 0x00 &&
	    (frame[ETH_HEADER_LEN + 6] & 0x3f) | frame[ETH_HEADER_LEN + 7]) {
		log_once("guest IPv4 fragments dropped (libslirp cannot be trusted with them)");
		return -1;
	}
	/* libslirp checks TCP and UDP checksums: finish the guest's. */
	if (csum && csum->needed && net_csum_complete(frame, len, csum->start, csum->offset)) {
		log_once("guest frame dropped: checksum at %u+%u is outside its %zu bytes", csum->start,
			 csum->offset, len);
		return -1;
	}
	slirp_input(b->slirp, frame, (int)len);
	return 0;
}

/* ---- the event loop ---- */

static int add_poll(slirp_os_socket fd, int events, void *opaque)
{
	struct slirp_backend *b = opaque;
	if (b->n_pollfds == b->cap_pollfds) {
		size_t cap = b->cap_pollfds ? 2 * b->cap_pollfds : 16;
		struct backend_pollfd *p = realloc(b->pollfds, cap * sizeof(*p));
		if (!p) {
			/* -1: libslirp treats the socket as having no events. */
			log_once("out of memory for the socket poll list");
			return -1;
		}
		b->pollfds = p;
		b->cap_pollfds = cap;
	}
	b->pollfds[b->n_pollfds] = (struct backend_pollfd){.fd = fd, .events = events};
	return (int)b->n_pollfds++;
}

static int get_revents(int idx, void *opaque)
{
	const struct slirp_backend *b = opaque;
	if (idx < 0 || (size_t)idx >= b->n_pollfds)
		return 0;
	return b->pollfds[idx].revents;
}

size_t backend_fill_pollfds(struct slirp_backend *b, struct backend_pollfd **fds)
{
	b->n_pollfds = 0;
	b->slirp_timeout_ms = SLIRP_TIMEOUT_MAX_MS;
	backend_slirp_pollfds_fill(b->slirp, &b->slirp_timeout_ms, add_poll, b);
	*fds = b->pollfds;
	return b->n_pollfds;
}

void backend_poll_done(struct slirp_backend *b, bool poll_failed)
{
	slirp_pollfds_poll(b->slirp, poll_failed, get_revents, b);
}

int backend_next_timeout_ms(const struct slirp_backend *b)
{
	int64_t timeout = b->slirp_timeout_ms;
	int64_t now = now_ms();
	for (const struct backend_timer *t = b->timers; t; t = t->next) {
		if (t->armed && t->expire_ms - now < timeout)
			timeout = t->expire_ms - now;
	}
	return timeout < 0 ? 0 : (int)timeout;
}

void backend_run_timers(struct slirp_backend *b)
{
	/* A handler may add, free or re-arm timers: rescan after each one,
	 * and fire each timer at most once per call. */
	uint64_t run = ++b->timer_runs;
	int64_t now = now_ms();
	for (struct backend_timer *t = b->timers; t;) {
		if (t->armed && t->expire_ms <= now && t->fired_in_run != run) {
			t->armed = false;
			t->fired_in_run = run;
			slirp_handle_timer(b->slirp, t->id, t->cb_opaque);
			t = b->timers;
		} else {
			t = t->next;
		}
	}
}
