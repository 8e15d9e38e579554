/* dev_loop.c - the device process's life (devlib.h): dial, HELLO, WELCOME,
 * the shared memory, and the event loop that serves the core and the
 * device's own handles. */
#include "devlib.h"

#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Dialling until WELCOME, every attempt included.  Generous: the core may
 * take long to start listening (seen: over 10 s in the nested arm64 rig under
 * load), and a core that is gone ends this process through the launcher. */
#define ATTACH_TIMEOUT_MS 60000
#define WELCOME_WAIT_MS 1000    /* per attempt: the core answers a HELLO at once */
#define REDIAL_MIN_MS 10        /* backoff between attempts, doubling... */
#define REDIAL_MAX_MS 200       /* ...up to this */
#define CORE_LOST_NS 3000000000ull /* transport errors for this long: the core is gone */
/* The channel's handle does not signal a core that went away (ipc.h): the
 * loop looks at least this often. */
#define CORE_CHECK_MS 50
/* Messages sent to a previous incarnation that it never took, handled once
 * attached.  The channel queues a few hundred at most; the bound is against
 * a core gone mad. */
#define EARLY_MAX 4096

struct dev_loop {
	const struct dev_ops *ops;
	void *dev;
	struct dev_port port;
	ipc_chan *chan;
	pthread_mutex_t lock; /* every call into the device, every message it sends */
	pthread_cond_t changed; /* broadcast after messages from the core or rings were handled */
	uint64_t next_seq;      /* of messages the device originates */
	/* dev_wake: a message on an in-process pair of nng sockets, so that the
	 * wake-up is a pollable handle on every host. */
	nng_socket wake_rx, wake_tx;
	host_shm *state_shm, *ram_shm;
	struct guest_mem ram;
	struct ipc_msg *early;
	size_t nearly;
	struct ipc_hello hello; /* as sent */
	/* The lines whose levels go to the state page (IPC_IRQ_PUBLISHED):
	 * bit i for hello.irqs[i], placed at gsi[i]; the levels last said. */
	uint32_t published, levels;
	uint32_t gsi[IPC_MAX_IRQS];
	/* The doorbell thread, while doorbell_running; it ends once stopping
	 * (under lock) is set. */
	pthread_t doorbell_thread;
	bool doorbell_running, stopping;
};

/* ---- sending ---- */

static void send_msg(void *opaque, const struct ipc_msg *m)
{
	struct dev_loop *l = opaque;
	int rc = ipc_send(l->chan, m);
	/* A closed channel is noticed by the loop, which ends the run. */
	if (rc != IPC_OK && rc != IPC_ECLOSED)
		log_once("cannot send %s to the core (error %d)", ipc_type_name(m->type), rc);
}

static bool publish_level(struct dev_loop *l, const struct ipc_irq *irq);

bool dev_send(struct dev_loop *l, struct ipc_msg *m)
{
	if (m->type == IPC_IRQ && publish_level(l, &m->u.irq))
		return false;
	m->seq = l->next_seq++;
	send_msg(l, m);
	return true;
}

void dev_irq(struct dev_loop *l, uint32_t line, int level)
{
	struct ipc_msg m = {.type = IPC_IRQ};
	m.u.irq = (struct ipc_irq){.line = line, .level = level ? 1 : 0};
	dev_send(l, &m);
}

/* ---- published line levels (ipc.h: IPC_IRQ_PUBLISHED) ---- */

/* Every level-triggered line, where the core's thread can be woken across
 * processes: its level is a word in the state page, not a message. */
static void declare_published_lines(struct ipc_hello *h)
{
	if (!host_shared_wait_supported())
		return;
	for (uint32_t i = 0; i < h->nirqs && i < IPC_MAX_IRQS; i++)
		if (h->irqs[i].trigger == IPC_TRIGGER_LEVEL)
			h->irqs[i].flags |= IPC_IRQ_PUBLISHED;
}

/* Attached: where the published lines were placed.  The core cleared
 * their word at our HELLO; the device's attach says each level. */
static void published_lines_attach(struct dev_loop *l, const struct ipc_welcome *w)
{
	l->published = 0;
	l->levels = 0;
	for (uint32_t i = 0; i < l->hello.nirqs && i < IPC_MAX_IRQS; i++) {
		l->gsi[i] = w->irq_gsi[i];
		if (l->hello.irqs[i].flags & IPC_IRQ_PUBLISHED)
			l->published |= 1u << i;
	}
}

/* An IPC_IRQ for a published line: store the level, count the saying
 * (also of an unchanged level: the core may have lowered the line on an
 * acknowledge, and "high" again must raise it), and wake the core's
 * thread if it sleeps (ipc.h, struct ipc_irq_levels).  False: not such a
 * line, send the message.  With the lock held. */
static bool publish_level(struct dev_loop *l, const struct ipc_irq *irq)
{
	if (!l->published || !l->port.page)
		return false;
	for (uint32_t i = 0; i < l->hello.nirqs && i < IPC_MAX_IRQS; i++) {
		if (!(l->published >> i & 1) || l->gsi[i] != irq->line)
			continue;
		struct ipc_irq_levels *lv = &l->port.page->irq;
		l->levels = irq->level ? l->levels | 1u << i : l->levels & ~(1u << i);
		atomic_store(&lv->level, l->levels);
		atomic_fetch_add(&lv->said, 1);
		if (atomic_load(&lv->core_sleeps))
			host_shared_wake(&lv->said);
		return true;
	}
	return false;
}

/* ---- the lock and the wake-up ---- */

void dev_lock(struct dev_loop *l)
{
	pthread_mutex_lock(&l->lock);
}

void dev_unlock(struct dev_loop *l)
{
	pthread_mutex_unlock(&l->lock);
}

void dev_wait_change(struct dev_loop *l)
{
	pthread_cond_wait(&l->changed, &l->lock);
}

void dev_wake(struct dev_loop *l)
{
	/* A full queue means a wake-up is pending already. */
	nng_send(l->wake_tx, "", 1, NNG_FLAG_NONBLOCK);
}

static bool wake_open(struct dev_loop *l)
{
	char url[64];
	snprintf(url, sizeof(url), "inproc://devlib-wake-%p", (void *)l);
	int rv;
	if ((rv = nng_pair0_open(&l->wake_rx)) || (rv = nng_pair0_open(&l->wake_tx)) ||
	    (rv = nng_listen(l->wake_rx, url, NULL, 0)) || (rv = nng_dial(l->wake_tx, url, NULL, 0))) {
		log_msg("cannot set up the wake-up sockets: %s", nng_strerror(rv));
		return false;
	}
	return true;
}

static void wake_drain(struct dev_loop *l)
{
	char buf[8];
	size_t len;
	do
		len = sizeof(buf);
	while (nng_recv(l->wake_rx, buf, &len, NNG_FLAG_NONBLOCK) == 0);
}

/* ---- attaching ---- */

static bool keep_early(struct dev_loop *l, const struct ipc_msg *m)
{
	if (l->nearly == EARLY_MAX) {
		log_once("more than %d messages before WELCOME: dropping the rest", EARLY_MAX);
		return true;
	}
	if (!(l->nearly & (l->nearly - 1))) { /* 0, 1, 2, 4...: grow by doubling */
		struct ipc_msg *bigger =
			realloc(l->early, (l->nearly ? 2 * l->nearly : 1) * sizeof(*l->early));
		if (!bigger) {
			log_msg("out of memory");
			return false;
		}
		l->early = bigger;
	}
	l->early[l->nearly++] = *m;
	return true;
}

enum attempt { ATTEMPT_WELCOMED, ATTEMPT_RETRY, ATTEMPT_REJECTED, ATTEMPT_SHUTDOWN, ATTEMPT_FAILED };

/* One attempt on a freshly dialled channel: HELLO number `attempt`, then
 * its answer.  ATTEMPT_RETRY if the channel closed or nothing came by
 * WELCOME_WAIT_MS or the deadline: a new dial may succeed (see attach). */
static enum attempt hello_welcome(struct dev_loop *l, uint64_t attempt, uint64_t deadline,
				  struct ipc_welcome *w)
{
	char err[256];
	struct ipc_msg m = {.type = IPC_HELLO, .seq = attempt}; /* the core's answer carries it */
	l->ops->hello(l->dev, &m.u.hello);
	m.u.hello.version = IPC_PROTO_VERSION;
	declare_published_lines(&m.u.hello);
	l->hello = m.u.hello;
	if (ipc_send(l->chan, &m) != IPC_OK)
		return ATTEMPT_RETRY;
	uint64_t now = host_now_ns();
	if (deadline > now + WELCOME_WAIT_MS * 1000000ull)
		deadline = now + WELCOME_WAIT_MS * 1000000ull;
	for (;;) {
		now = host_now_ns();
		if (now >= deadline)
			return ATTEMPT_RETRY;
		int rc = ipc_recv(l->chan, &m, (int)((deadline - now) / 1000000), err, sizeof(err));
		if (rc == IPC_EBADMSG) {
			log_once("ignoring a malformed message from the core: %s", err);
			continue;
		}
		if (rc != IPC_OK)
			return ATTEMPT_RETRY;
		switch (m.type) {
		case IPC_WELCOME:
			/* An earlier attempt's HELLO did reach the core: the
			 * answer to this one follows. */
			if (m.seq != attempt)
				continue;
			*w = m.u.welcome;
			return ATTEMPT_WELCOMED;
		case IPC_REJECT:
			log_msg("the core refused the device: %s", m.u.reason);
			return ATTEMPT_REJECTED;
		case IPC_SHUTDOWN:
			return ATTEMPT_SHUTDOWN;
		default:
			if (dev_keep_early(&m) && !keep_early(l, &m))
				return ATTEMPT_FAILED;
		}
	}
}

/* Dial, HELLO, WELCOME.  A restarted device may dial before the core has
 * noticed its previous incarnation go: pair0 then refuses the new
 * connection and closes it, and that channel is closed for good.  So each
 * attempt that closes or stays unanswered is followed by a new dial, until
 * ATTACH_TIMEOUT_MS.  Messages kept from earlier attempts stay kept: they
 * are older than later ones. */
static enum attempt dial_until_welcome(struct dev_loop *l, const char *url, struct ipc_welcome *w)
{
	char err[256];
	uint64_t deadline = host_now_ns() + ATTACH_TIMEOUT_MS * 1000000ull;
	unsigned backoff_ms = REDIAL_MIN_MS;
	for (uint64_t attempt = 1;; attempt++) {
		uint64_t now = host_now_ns();
		int left_ms = now < deadline ? (int)((deadline - now) / 1000000) : 0;
		if (ipc_dial(url, left_ms, &l->chan, err, sizeof(err)) != IPC_OK) {
			log_msg("%s", err);
			return ATTEMPT_FAILED;
		}
		enum attempt a = hello_welcome(l, attempt, deadline, w);
		if (a != ATTEMPT_RETRY)
			return a;
		ipc_close(l->chan);
		l->chan = NULL;
		if (host_now_ns() + backoff_ms * 1000000ull >= deadline) {
			log_msg("no answer from the core at %s within %d s", url, ATTACH_TIMEOUT_MS / 1000);
			return ATTEMPT_FAILED;
		}
		host_sleep_ms(backoff_ms);
		backoff_ms = backoff_ms * 2 < REDIAL_MAX_MS ? backoff_ms * 2 : REDIAL_MAX_MS;
	}
}

/* The WELCOME places what the HELLO declared: same counts, explicit bases
 * and lines unchanged, slots and ANY lines filled in. */
static bool placement_matches(const struct ipc_hello *h, const struct ipc_welcome *w)
{
	if (w->nranges != h->nranges || w->nirqs != h->nirqs)
		return false;
	for (uint32_t i = 0; i < h->nranges; i++) {
		const struct ipc_range *r = &h->ranges[i];
		bool slot = r->kind == IPC_RANGE_VIRTIO_MMIO && r->base == 0;
		if (slot ? w->range_base[i] == 0 : w->range_base[i] != r->base)
			return false;
	}
	for (uint32_t i = 0; i < h->nirqs; i++)
		if (h->irqs[i].gsi != IPC_IRQ_ANY && w->irq_gsi[i] != h->irqs[i].gsi)
			return false;
	return true;
}

/* The state page and guest RAM named in WELCOME. */
static bool map_shared(struct dev_loop *l, const struct ipc_welcome *w)
{
	char err[256];
	if (!placement_matches(&l->hello, w)) {
		log_msg("the core's WELCOME does not place the ranges and lines of our HELLO");
		return false;
	}
	if (w->state_size < IPC_STATE_SIZE) {
		log_msg("the core's state page has %" PRIu64 " bytes, %d needed", w->state_size,
			IPC_STATE_SIZE);
		return false;
	}
	l->state_shm = host_shm_open(w->state_name, IPC_STATE_SIZE, err, sizeof(err));
	if (!l->state_shm) {
		log_msg("state page: %s", err);
		return false;
	}
	l->ram_shm = host_shm_open(w->ram_name, guest_mem_shm_size(w->ram_size), err, sizeof(err));
	if (!l->ram_shm) {
		log_msg("guest RAM: %s", err);
		return false;
	}
	l->ram = (struct guest_mem){.base = host_shm_ptr(l->ram_shm), .size = w->ram_size};
	guest_mem_set_regions(&l->ram, w->ram_regions, w->nregions); /* checked by the decoder */
	return true;
}

/* ---- serving ---- */

/* Every message waiting on the channel.  Returns -1 to go on, else the
 * run's exit status. */
static int handle_messages(struct dev_loop *l, uint64_t *failing_since)
{
	bool handled = false;
	int status = -1;
	for (;;) {
		struct ipc_msg m;
		char err[256];
		int rc = ipc_recv(l->chan, &m, 0, err, sizeof(err));
		if (rc == IPC_OK) {
			*failing_since = 0;
			handled = true;
			if (dev_handle(&l->port, &m) == DEV_EXIT) {
				status = 0;
				break;
			}
		} else if (rc == IPC_EBADMSG) {
			log_once("ignoring a malformed message from the core: %s", err);
		} else if (rc == IPC_ETIMEDOUT) {
			break; /* none left */
		} else if (rc == IPC_ECLOSED) {
			status = 0; /* the core is gone: the VM is over */
			break;
		} else {
			uint64_t now = host_now_ns();
			if (!*failing_since)
				*failing_since = now;
			if (now - *failing_since > CORE_LOST_NS) {
				log_msg("lost the channel to the core: %s", err);
				status = 0;
				break;
			}
			dev_unlock(l);
			host_sleep_ms(100);
			dev_lock(l);
			break;
		}
	}
	if (handled)
		pthread_cond_broadcast(&l->changed);
	return status;
}

/* The event loop, entered and left with the lock held. */
static int serve(struct dev_loop *l)
{
	int wake_fd;
	host_pollable chan_fd = ipc_chan_pollable(l->chan);
	if (chan_fd < 0 || nng_socket_get_int(l->wake_rx, NNG_OPT_RECVFD, &wake_fd)) {
		log_msg("nng gives no pollable handle");
		return 1;
	}
	uint64_t failing_since = 0; /* first of a run of transport errors */
	struct host_pollfd fds[2 + DEV_MAX_POLLFDS];
	for (;;) {
		fds[0] = (struct host_pollfd){.fd = chan_fd, .events = HOST_POLLIN};
		fds[1] = (struct host_pollfd){.fd = wake_fd, .events = HOST_POLLIN};
		size_t n = 0;
		uint64_t deadline = UINT64_MAX;
		if (l->ops->poll_prepare) {
			n = l->ops->poll_prepare(l->dev, fds + 2, DEV_MAX_POLLFDS, &deadline);
			if (n > DEV_MAX_POLLFDS)
				n = DEV_MAX_POLLFDS;
		}
		uint64_t now = host_now_ns();
		int timeout_ms = CORE_CHECK_MS;
		if (deadline <= now)
			timeout_ms = 0;
		else if ((deadline - now + 999999) / 1000000 < (uint64_t)timeout_ms)
			timeout_ms = (int)((deadline - now + 999999) / 1000000);

		dev_unlock(l);
		int ready = host_poll(fds, 2 + n, timeout_ms);
		dev_lock(l);
		if (ready < 0) {
			log_msg("cannot wait for events");
			return 1;
		}
		if (fds[1].revents)
			wake_drain(l);
		int status = handle_messages(l, &failing_since);
		if (status >= 0)
			return status;
		if (l->ops->poll_dispatch)
			l->ops->poll_dispatch(l->dev, fds + 2, n);
	}
}

/* ---- doorbells (ipc.h: IPC_REG_DOORBELL) ---- */

/* How long the doorbell thread sleeps before it looks whether the run is
 * over (finish wakes it at once). */
#define DOORBELL_IDLE_US 100000

static bool declares_doorbell(const struct ipc_hello *h)
{
	for (uint32_t i = 0; i < h->nregs && i < IPC_MAX_REGS; i++)
		if (h->regs[i].flags & IPC_REG_DOORBELL)
			return true;
	return false;
}

/* Sleep on rung while it still says `rung`, at most timeout_us; the core
 * wakes us only while device_sleeps is set (ipc.h). */
static void sleep_on_rung(struct ipc_doorbell *db, uint32_t rung, unsigned timeout_us)
{
	atomic_store(&db->device_sleeps, 1);
	if (atomic_load(&db->rung) == rung)
		host_shared_wait(&db->rung, rung, timeout_us);
	atomic_store(&db->device_sleeps, 0);
}

/* Take every ring up to now: the pending bits go to the device, then the
 * count goes to taken for a vCPU waiting on it, then ops.doorbell_taken
 * does what the vCPU need not wait for, all under the lock.  A previous
 * incarnation's untaken rings are taken by the first pass. */
static void *doorbell_main(void *arg)
{
	struct dev_loop *l = arg;
	struct ipc_doorbell *db = &l->port.page->doorbell;
	bool quiet_due = false; /* ops.doorbell_quiet once the rings stop */
	for (;;) {
		uint32_t rung = atomic_load(&db->rung);
		if (rung == atomic_load(&db->taken)) {
			sleep_on_rung(db, rung, quiet_due ? DOORBELL_QUIET_US : DOORBELL_IDLE_US);
			dev_lock(l);
			bool stopping = l->stopping;
			if (!stopping && quiet_due && atomic_load(&db->rung) == rung) {
				l->ops->doorbell_quiet(l->dev);
				quiet_due = false;
			}
			dev_unlock(l);
			if (stopping)
				return NULL;
			continue;
		}
		dev_lock(l);
		if (l->stopping) {
			dev_unlock(l);
			return NULL;
		}
		for (unsigned i = 0; i < IPC_MAX_DOORBELLS; i++) {
			uint32_t bits = atomic_exchange(&db->pending[i], 0);
			if (bits)
				l->ops->doorbell(l->dev, i, bits);
		}
		atomic_store(&db->taken, rung);
		if (atomic_load(&db->vcpus_waiting))
			host_shared_wake(&db->taken);
		if (l->ops->doorbell_taken)
			l->ops->doorbell_taken(l->dev);
		pthread_cond_broadcast(&l->changed); /* as after messages: dev_wait_change */
		dev_unlock(l);
		quiet_due = l->ops->doorbell_quiet != NULL;
	}
}

static bool doorbell_start(struct dev_loop *l)
{
	if (!declares_doorbell(&l->hello))
		return true;
	if (!l->ops->doorbell) {
		log_msg("the device declares a doorbell but cannot take one");
		return false;
	}
	if (pthread_create(&l->doorbell_thread, NULL, doorbell_main, l) != 0) {
		log_msg("cannot start the doorbell thread");
		return false;
	}
	l->doorbell_running = true;
	return true;
}

/* Lock held; released while the thread ends (it may be waiting for it).
 * The wake-up can come just before the thread sleeps: it then sees
 * `stopping` after DOORBELL_IDLE_US. */
static void doorbell_stop(struct dev_loop *l)
{
	if (!l->doorbell_running)
		return;
	l->stopping = true;
	host_shared_wake(&l->port.page->doorbell.rung);
	dev_unlock(l);
	pthread_join(l->doorbell_thread, NULL);
	dev_lock(l);
	l->doorbell_running = false;
}

/* With the lock held, never released (but by doorbell_stop): the device's
 * threads stop touching the channel and the shared memory before they go. */
static int finish(struct dev_loop *l, int status)
{
	doorbell_stop(l);
	ipc_close(l->chan);
	l->chan = NULL;
	host_shm_close(l->state_shm);
	host_shm_close(l->ram_shm);
	l->ram = (struct guest_mem){0};
	free(l->early);
	l->early = NULL;
	return status;
}

int dev_run(const char *url, const struct dev_ops *ops, void *dev, struct dev_loop **loop_out)
{
	struct dev_loop *l = calloc(1, sizeof(*l));
	if (!l) {
		log_msg("out of memory");
		return 1;
	}
	l->ops = ops;
	l->dev = dev;
	l->next_seq = 1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->changed, NULL);
	if (loop_out)
		*loop_out = l;
	dev_lock(l);
	if (!wake_open(l))
		return finish(l, 1);

	struct ipc_welcome w;
	switch (dial_until_welcome(l, url, &w)) {
	case ATTEMPT_WELCOMED:
		break;
	case ATTEMPT_REJECTED:
		return finish(l, IPC_DEVICE_EXIT_REFUSED);
	case ATTEMPT_SHUTDOWN:
		return finish(l, 0);
	default:
		return finish(l, 1);
	}
	if (!map_shared(l, &w))
		return finish(l, 1);
	l->port = (struct dev_port){.ops = ops, .dev = dev, .page = host_shm_ptr(l->state_shm),
				    .send = send_msg, .send_opaque = l};
	published_lines_attach(l, &w);
	ops->attach(dev, l->port.page, &l->ram, &w);
	if (!doorbell_start(l))
		return finish(l, 1);
	if (ops->sandbox) {
		char err[256];
		if (host_sandbox_enter(ops->sandbox, err, sizeof(err)) == HOST_SANDBOX_FAILED) {
			log_msg("%s", err);
			return finish(l, IPC_DEVICE_EXIT_REFUSED);
		}
	}
	for (size_t i = 0; i < l->nearly; i++)
		if (dev_handle(&l->port, &l->early[i]) == DEV_EXIT)
			return finish(l, 0);
	free(l->early);
	l->early = NULL;
	l->nearly = 0;
	return finish(l, serve(l));
}
