/* chan.c - the channel between vmm-core and one device: an nng pair0 socket
 * carrying the messages of ipc.c.
 *
 * pair0 has at most one peer.  Sends block while there is none or while it
 * is not reading (backpressure; nothing is ever dropped); a write sent while
 * a device restarts reaches the new incarnation.
 *
 * The listening side (the core) outlives its peers: devices come and go, the
 * callback reports each.  The dialing side (a device) lives for one listener:
 * once it goes away the channel is closed for good, so a device notices that
 * the core is gone and exits; its nng dialer is closed then too, so nng
 * never reconnects it behind our back (see on_pipe_event).  nng cannot
 * interrupt a blocked send or receive
 * when that happens, so they wait in PEER_POLL_MS slices and look at
 * peer_gone (and a send at its deadline) in between.  Between its receive
 * slices the listening side renews its listener while it has no peer (see
 * RELISTEN_NS).
 */
#include "ipc.h"

#include "host.h"
#include "log.h"

#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/un.h>
#endif

#define PEER_POLL_MS 50
/* nng 1.5.2's listener stops accepting for good when its half of the
 * connection handshake fails with EPIPE: a dialer that connected and closed
 * at once (a device killed, or closing its channel while nng's dialer was
 * reconnecting in the background).  So a listener that has had no peer for
 * this long is renewed, and keeps being renewed until one comes. */
#define RELISTEN_NS 1000000000ull
#define DIAL_RETRY_MS 10
/* Larger messages make nng drop the connection.  Anything above
 * IPC_MAX_MSG is refused anyway; this bound only keeps a hostile peer from
 * making us buffer megabytes, while still letting ipc_recv say why a merely
 * oversized message was refused. */
#define RECV_MAX_BYTES 65536
/* Messages queued in each direction inside nng.  Without a queue every send
 * waits for the previous message's write to finish, which caps posted writes
 * at a thread hand-off each; a full queue still blocks the sender. */
#define QUEUE_MSGS 256
/* The last few pipe ids reported up, and removed (see on_pipe_event).  A
 * pipe's events and messages follow its removal closely, so a short memory
 * suffices. */
#define RECENT_PIPES 16

struct pipe_ring {
	uint32_t id[RECENT_PIPES];
	unsigned next;
};

struct ipc_chan {
	nng_socket sock;
	nng_aio *recv_aio; /* one receiving thread at a time */
	nng_msg *frame;    /* the receiving thread's: a frame with messages left */
	size_t frame_off;  /* where its next message starts */
	bool dialer;
	ipc_peer_cb cb;
	void *opaque;
	pthread_mutex_t peer_lock; /* orders the peer callbacks */
	uint32_t peer_pipe;        /* nng pipe id of the attached peer, 0 if none */
	struct pipe_ring reported; /* pipes reported up */
	struct pipe_ring removed;  /* pipes whose REM_POST came */
	uint64_t idle_since;       /* listener: host_now_ns() since no peer, or renewed */
	nng_listener listener;
	char *url;                 /* listener: to renew it */
	_Atomic bool peer_gone;    /* dialer: the listener went away */
};

/* The host_now_ns() at which timeout_ms (negative: 0) will have passed. */
static uint64_t deadline_after_ms(int timeout_ms)
{
	return host_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
}

static void set_err(char *err, size_t errlen, const char *what, const char *url, int rv)
{
	if (err && errlen)
		snprintf(err, errlen, "%s %s: %s", what, url, nng_strerror(rv));
}

/* The peer is gone: say so once (peer_lock held). */
static void peer_lost_locked(ipc_chan *c)
{
	c->peer_pipe = 0;
	c->idle_since = host_now_ns();
	if (c->dialer)
		c->peer_gone = true;
	if (c->cb)
		c->cb(c->opaque, false);
}

static bool ring_has(const struct pipe_ring *r, uint32_t id)
{
	for (unsigned i = 0; i < RECENT_PIPES; i++)
		if (r->id[i] == id)
			return true;
	return false;
}

static void ring_add(struct pipe_ring *r, uint32_t id)
{
	r->id[r->next] = id;
	r->next = (r->next + 1) % RECENT_PIPES;
}

/* Pipe `id` is the peer (peer_lock held): report it, once.  pair0 takes a
 * new pipe only once its previous peer has closed, so a new peer means the
 * old one is gone; a pipe removed already is reported come and gone. */
static void peer_seen_locked(ipc_chan *c, uint32_t id)
{
	if (id == 0 || id == c->peer_pipe || ring_has(&c->reported, id))
		return;
	ring_add(&c->reported, id);
	if (c->peer_pipe != 0)
		peer_lost_locked(c);
	c->peer_pipe = id;
	if (c->cb)
		c->cb(c->opaque, true);
	if (ring_has(&c->removed, id))
		peer_lost_locked(c);
}

/* nng calls this on its own threads for every pipe.  ADD_POST comes only
 * for a pipe pair0 took as its peer, but after pair0 starts receiving from
 * it, and REM_POST comes from nng's reaper, unordered with ADD_POST.  So:
 * - a listener's peer is "seen" at its ADD_POST or at its first message,
 *   whichever comes first (ipc_recv): the old peer's loss must be reported
 *   before the new one's HELLO is handled, or the core would take the new
 *   device for gone (a HELLO handled, then the old pipe's loss reported);
 * - a REM_POST counts only for the current peer (a refused pipe, or an old
 *   one replaced already, has one too) and is otherwise remembered: a pipe
 *   whose removal came first is reported come and gone at once.  It was
 *   the peer, so the listener may have received its HELLO and must hear
 *   that it went (a device closed right after the core heard its HELLO, as
 *   in test_channel_peers_replaced_at_once); a dialer must not wait on it,
 *   a dead pipe (test_serial_process: a device dialing while the core
 *   still holds its previous incarnation).
 *
 * A dialer's channel ends with its pipe, so its nng dialer is closed here:
 * nng's reaper runs REM_POST and then starts a reconnection in the
 * background.  Such a reconnection was never used (peer_gone stays) yet
 * reached the listener, which took it as its peer; and on Windows one still
 * connecting when the channel was closed outlived ipc_close: nng closes a
 * named pipe's client end only when it frees the connection, and it never
 * frees one negotiated after its dialer stopped waiting for it.  The core
 * then held that open pipe as its peer and refused every later dial from
 * the same process, as it does a device re-dialing after an unanswered
 * HELLO (test_channel_peers_replaced_at_once under Wine: "up 38 down 37").
 * Outside peer_lock: closing waits for the connection that made this pipe
 * to be added, whose ADD_POST may still be to come and takes the lock. */
static void on_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	ipc_chan *c = arg;
	uint32_t id = (uint32_t)nng_pipe_id(pipe);
	if (ev == NNG_PIPE_EV_REM_POST && c->dialer)
		nng_dialer_close(nng_pipe_dialer(pipe));
	pthread_mutex_lock(&c->peer_lock);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		peer_seen_locked(c, id);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		ring_add(&c->removed, id);
		if (c->peer_pipe == id)
			peer_lost_locked(c);
	}
	pthread_mutex_unlock(&c->peer_lock);
}

static int check_url(const char *url, char *err, size_t errlen)
{
#ifndef _WIN32
	/* nng's message for an over-long socket path is unhelpful. */
	const char *prefix = "ipc://";
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	if (!strncmp(url, prefix, strlen(prefix)) && strlen(url + strlen(prefix)) > max) {
		if (err && errlen)
			snprintf(err, errlen, "socket path %s is %zu bytes, the limit is %zu: use a shorter runtime directory",
				 url + strlen(prefix), strlen(url + strlen(prefix)), max);
		return IPC_EIO;
	}
#else
	(void)url, (void)err, (void)errlen;
#endif
	return IPC_OK;
}

static ipc_chan *chan_open(const char *url, bool dialer, ipc_peer_cb cb, void *opaque, char *err, size_t errlen)
{
	if (check_url(url, err, errlen) != IPC_OK)
		return NULL;
	ipc_chan *c = calloc(1, sizeof(*c));
	if (!c) {
		set_err(err, errlen, "channel", url, NNG_ENOMEM);
		return NULL;
	}
	c->dialer = dialer;
	c->cb = cb;
	c->opaque = opaque;
	pthread_mutex_init(&c->peer_lock, NULL);
	int rv = nng_pair0_open(&c->sock);
	if (rv) {
		set_err(err, errlen, "pair0 socket for", url, rv);
		pthread_mutex_destroy(&c->peer_lock);
		free(c);
		return NULL;
	}
	if ((rv = nng_aio_alloc(&c->recv_aio, NULL, NULL)) ||
	    (rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, RECV_MAX_BYTES)) ||
	    (rv = nng_socket_set_int(c->sock, NNG_OPT_SENDBUF, QUEUE_MSGS)) ||
	    (rv = nng_socket_set_int(c->sock, NNG_OPT_RECVBUF, QUEUE_MSGS)) ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, PEER_POLL_MS)) ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, on_pipe_event, c)) ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, on_pipe_event, c))) {
		set_err(err, errlen, "setting up the channel for", url, rv);
		ipc_close(c);
		return NULL;
	}
	return c;
}

int ipc_listen(const char *url, ipc_peer_cb cb, void *opaque, ipc_chan **out, char *err, size_t errlen)
{
	ipc_chan *c = chan_open(url, false, cb, opaque, err, errlen);
	if (!c)
		return IPC_EIO;
	c->idle_since = host_now_ns();
	c->url = strdup(url);
	int rv = c->url ? nng_listen(c->sock, url, &c->listener, 0) : NNG_ENOMEM;
	if (rv) {
		set_err(err, errlen, "listen on", url, rv);
		ipc_close(c);
		return IPC_EIO;
	}
	*out = c;
	return IPC_OK;
}

/* Listener: renew the nng listener once no peer has come for RELISTEN_NS
 * (see its definition).  A device dialling at that moment is refused and
 * dials again.  Not in a sandbox that forbids making a listener: closing
 * the one we have would lose it for good, and every device restart slower
 * than RELISTEN_NS with it. */
static void renew_listener_if_idle(ipc_chan *c)
{
	if (!host_can_listen_anew())
		return;
	uint64_t now = host_now_ns();
	pthread_mutex_lock(&c->peer_lock);
	bool idle = c->peer_pipe == 0 && now - c->idle_since >= RELISTEN_NS;
	if (idle)
		c->idle_since = now;
	pthread_mutex_unlock(&c->peer_lock);
	if (!idle)
		return;
	nng_listener_close(c->listener);
	int rv = nng_listen(c->sock, c->url, &c->listener, 0);
	if (rv)
		log_once("cannot listen on %s again: %s", c->url, nng_strerror(rv));
}

int ipc_dial(const char *url, int timeout_ms, ipc_chan **out, char *err, size_t errlen)
{
	ipc_chan *c = chan_open(url, true, NULL, NULL, err, errlen);
	if (!c)
		return IPC_EIO;
	/* The core may not be listening yet, or be renewing its listener
	 * (RELISTEN_NS: a connection in progress then ends ECLOSED, seen under
	 * Wine): retry while the address is missing, refuses or closes, until
	 * the deadline. */
	uint64_t deadline = deadline_after_ms(timeout_ms);
	for (;;) {
		int rv = nng_dial(c->sock, url, NULL, 0);
		if (rv == 0)
			break;
		bool retry = rv == NNG_ECONNREFUSED || rv == NNG_ENOENT || rv == NNG_ECONNSHUT ||
			     rv == NNG_ETIMEDOUT || rv == NNG_ECLOSED;
		if (!retry || host_now_ns() >= deadline) {
			set_err(err, errlen, "connect to", url, rv);
			ipc_close(c);
			return retry ? IPC_ETIMEDOUT : IPC_EIO;
		}
		host_sleep_ms(DIAL_RETRY_MS);
	}
	*out = c;
	return IPC_OK;
}

/* deadline_ns 0: no deadline. */
static int send_frame_until(ipc_chan *c, const uint8_t *buf, size_t len, uint64_t deadline_ns)
{
	for (;;) {
		if (c->peer_gone)
			return IPC_ECLOSED;
		int rv = nng_send(c->sock, (void *)buf, len, 0); /* copies buf */
		if (rv == 0)
			return IPC_OK;
		if (rv == NNG_ECLOSED)
			return IPC_ECLOSED;
		if (rv != NNG_ETIMEDOUT) /* a PEER_POLL_MS slice */
			return IPC_EIO;
		if (deadline_ns && host_now_ns() >= deadline_ns)
			return IPC_ETIMEDOUT;
	}
}

static int send_until(ipc_chan *c, const struct ipc_msg *m, uint64_t deadline_ns)
{
	uint8_t buf[IPC_MAX_MSG];
	int len = ipc_encode(m, buf, sizeof(buf));
	if (len < 0)
		return len;
	return send_frame_until(c, buf, (size_t)len, deadline_ns);
}

int ipc_send(ipc_chan *c, const struct ipc_msg *m)
{
	return send_until(c, m, 0);
}

int ipc_send_timeout(ipc_chan *c, const struct ipc_msg *m, int timeout_ms)
{
	return send_until(c, m, deadline_after_ms(timeout_ms));
}

int ipc_send_batch_timeout(ipc_chan *c, const struct ipc_batch *b, int timeout_ms)
{
	return b->count ? send_frame_until(c, b->buf, b->len, deadline_after_ms(timeout_ms)) : IPC_OK;
}

/* The next message of the frame being received.  Consumes the frame when
 * it has none left (or is malformed: ipc_decode_next). */
static int next_of_frame(ipc_chan *c, struct ipc_msg *m, char *err, size_t errlen)
{
	int rc = ipc_decode_next(nng_msg_body(c->frame), nng_msg_len(c->frame), &c->frame_off, m, err,
				 errlen);
	if (c->frame_off >= nng_msg_len(c->frame)) {
		nng_msg_free(c->frame);
		c->frame = NULL;
	}
	return rc;
}

int ipc_recv(ipc_chan *c, struct ipc_msg *m, int timeout_ms, char *err, size_t errlen)
{
	/* What came before the peer went is delivered first. */
	if (c->frame)
		return next_of_frame(c, m, err, errlen);
	uint64_t deadline = deadline_after_ms(timeout_ms);
	for (;;) {
		if (c->peer_gone) {
			if (err && errlen)
				snprintf(err, errlen, "the peer closed the channel");
			return IPC_ECLOSED;
		}
		nng_duration wait = NNG_DURATION_INFINITE;
		if (timeout_ms >= 0) {
			uint64_t now = host_now_ns();
			wait = now >= deadline ? 0 : (nng_duration)((deadline - now + 999999) / 1000000);
		}
		if (wait == NNG_DURATION_INFINITE || wait > PEER_POLL_MS)
			wait = PEER_POLL_MS;
		nng_aio_set_timeout(c->recv_aio, wait);
		nng_recv_aio(c->sock, c->recv_aio);
		nng_aio_wait(c->recv_aio);
		int rv = nng_aio_result(c->recv_aio);
		if (rv == 0) {
			nng_msg *msg = nng_aio_get_msg(c->recv_aio);
			if (!c->dialer) {
				pthread_mutex_lock(&c->peer_lock);
				peer_seen_locked(c, (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg)));
				pthread_mutex_unlock(&c->peer_lock);
			}
			if (nng_msg_len(msg) > IPC_MAX_FRAME) {
				if (err && errlen)
					snprintf(err, errlen, "a frame of %zu bytes exceeds %d", nng_msg_len(msg),
						 IPC_MAX_FRAME);
				nng_msg_free(msg);
				return IPC_EBADMSG;
			}
			c->frame = msg;
			c->frame_off = 0;
			return next_of_frame(c, m, err, errlen);
		}
		if (rv == NNG_ETIMEDOUT) {
			if (!c->dialer)
				renew_listener_if_idle(c);
			if (timeout_ms >= 0 && host_now_ns() >= deadline)
				return IPC_ETIMEDOUT;
			continue;
		}
		if (err && errlen)
			snprintf(err, errlen, "receive: %s", nng_strerror(rv));
		return rv == NNG_ECLOSED ? IPC_ECLOSED : IPC_EIO;
	}
}

host_pollable ipc_chan_pollable(ipc_chan *c)
{
	int fd;
	return nng_socket_get_int(c->sock, NNG_OPT_RECVFD, &fd) ? -1 : fd;
}

void ipc_close(ipc_chan *c)
{
	if (!c)
		return;
	/* The receive aio goes before the socket: nng 1.5's expire thread may
	 * still be cancelling our last timed receive, which completed on its
	 * own after that thread took the cancel function -- whose argument is
	 * the socket.  nng_aio_free waits for it; freed after nng_close, the
	 * socket's mutex was gone under it ("panic: pthread_mutex_lock:
	 * Invalid argument" in nng's expire thread: test_core_devproxy, 1 run
	 * in 60 under load, the core's receive thread polling every 1 ms).
	 * Then closing the socket stops the pipe callbacks before c goes. */
	nng_aio_free(c->recv_aio);
	if (c->frame)
		nng_msg_free(c->frame);
	nng_close(c->sock);
	pthread_mutex_destroy(&c->peer_lock);
	free(c->url);
	free(c);
}
