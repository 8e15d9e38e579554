/* slirp_backend.h - dev-net's NAT: one libslirp instance built from a
 * net_config, driven by the device process's event loop.
 *
 * Frames from the guest go in with backend_input(); frames for the guest
 * come out through the frame_out callback (from backend_input(),
 * backend_poll_done() or backend_run_timers(), never from another thread).
 *
 * One turn of the event loop:
 *     n = backend_fill_pollfds(b, &fds);     // the host sockets to watch
 *     timeout = backend_next_timeout_ms(b);  // combine with the loop's own
 *     poll the n sockets (fds[i].fd, fds[i].events) and the loop's own fds;
 *     set fds[i].revents (BACKEND_POLL_* bits)
 *     backend_poll_done(b, poll_failed);     // libslirp reads/writes sockets
 *     backend_run_timers(b);                 // and its expired timers
 * libslirp's TCP timers run inside backend_poll_done(), so the loop must
 * turn at least every backend_next_timeout_ms() even when nothing happens. */
#ifndef MINIVM_SLIRP_BACKEND_H
#define MINIVM_SLIRP_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libslirp.h> /* pkg-config slirp: -I.../slirp */

#include "net_config.h"

/* libslirp 4.9 passes host sockets as slirp_os_socket (a SOCKET on Win64);
 * before, as int. */
#if !SLIRP_CHECK_VERSION(4, 9, 0)
typedef int slirp_os_socket;
#endif
/* 4.8 named the return type of its write callbacks; before, ssize_t. */
#if !SLIRP_CHECK_VERSION(4, 8, 0)
typedef ssize_t slirp_ssize_t;
#endif

/* The socket events, with libslirp's values. */
enum {
	BACKEND_POLL_IN = SLIRP_POLL_IN,
	BACKEND_POLL_OUT = SLIRP_POLL_OUT,
	BACKEND_POLL_PRI = SLIRP_POLL_PRI,
	BACKEND_POLL_ERR = SLIRP_POLL_ERR,
	BACKEND_POLL_HUP = SLIRP_POLL_HUP,
};

struct backend_pollfd {
	slirp_os_socket fd;
	int events;  /* wanted: BACKEND_POLL_IN/OUT/PRI */
	int revents; /* set by the caller after polling */
};

/* A frame for the guest (Ethernet header first, no virtio-net header).  If
 * the guest has no room, drop it: TCP retransmits. */
typedef void backend_frame_out_fn(const uint8_t *frame, size_t len, void *opaque);

struct slirp_backend;

/* A NAT for cfg (after net_config_check()), with every hostfwd listening.
 * NULL with one line in err if libslirp refuses the configuration or a
 * forward's host port cannot be bound ("hostfwd tcp 127.0.0.1:2222: host port
 * in use"). */
struct slirp_backend *backend_create(const struct net_config *cfg, backend_frame_out_fn *frame_out,
				     void *opaque, char *err, size_t errlen);
void backend_destroy(struct slirp_backend *b);

/* What virtio-net's header says about a guest frame's checksum. */
struct backend_tx_csum {
	bool needed; /* VIRTIO_NET_HDR_F_NEEDS_CSUM */
	uint16_t start, offset;
};

/* One frame from the guest (the device's own copy: completing its checksum
 * writes into it).  Returns -1, and drops the frame, if it is larger than an
 * IP packet can be or its checksum offsets point outside it. */
int backend_input(struct slirp_backend *b, uint8_t *frame, size_t len, const struct backend_tx_csum *csum);

/* The sockets libslirp wants watched now, in an array the backend owns
 * (valid until the next call). */
size_t backend_fill_pollfds(struct slirp_backend *b, struct backend_pollfd **fds);
/* After polling the array of the last fill: let libslirp do its socket I/O.
 * poll_failed: the poll itself failed (revents are meaningless). */
void backend_poll_done(struct slirp_backend *b, bool poll_failed);
/* Milliseconds until libslirp next needs the loop (its TCP timers, as of
 * the last fill, and its own timers); 0 if something is due. */
int backend_next_timeout_ms(const struct slirp_backend *b);
/* Fire libslirp's expired timers. */
void backend_run_timers(struct slirp_backend *b);

#endif
