/* devproxy.c - the core's side of one device process (devproxy.h).
 *
 * Threads: the vCPU threads call dev_read/dev_write through the bus; one
 * receive thread per device handles everything the device sends; one level
 * thread per device that publishes line levels (IPC_IRQ_PUBLISHED) sets
 * them; nng calls peer_changed when the device process connects or goes
 * away.
 *
 * Locks: `lock` guards the attachment state and the pending reads; `send_lock`
 * keeps writes on the wire in seq order, so the device's applied_seq only
 * grows (taken before `lock`, never while waiting on `cond`).  No thread
 * holds `lock` across a blocking send.  `line_lock` (innermost but for
 * `lock`, which a broken device's IPC_IRQ takes under it) makes applying a
 * device's IPC_IRQ and counting it one step for a vCPU that changes a
 * line itself (touch_line).
 *
 * Device restarts: when the peer goes away, reads in flight are failed back to
 * their vCPU, which waits for the next HELLO and retries; writes wait for it
 * too.  Replies of the old incarnation that arrive late are recognised by
 * their seq (<= stale_seq) and dropped. */
#include "devproxy.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devproxy_policy.h"
#include "host.h"
#include "log.h"
#include "stats.h"

/* A device silent this long is broken.  Generous: under nested emulation on
 * a loaded host a round trip averaged 216-262 ms and peaked above 5 s. */
#define READ_REPLY_TIMEOUT_MS 30000
#define RECV_POLL_MS 50            /* how often the receive thread checks for close */
#define SEND_POLL_MS 50            /* how often a blocked send checks for abort */
#define SHUTDOWN_WAIT_MS 1000      /* for the device to take SHUTDOWN and go */
/* A run of stream writes (IO_WRITE_RUN) leaves at the latest this long
 * after its first byte while the guest keeps writing, and within a
 * receive-thread wake-up (RUN_POLL_MS while one is open) once it stops. */
#define RUN_MAX_AGE_NS 1000000ull
/* Posted writes in flight (sent or in the open run, not yet applied): a
 * device that dies loses them, and without a bound a device that falls
 * behind (its terminal reads slowly) lets the guest run as far ahead as the
 * socket buffers hold (hundreds of KiB).  A vCPU posting while the write
 * posted POST_WINDOW writes ago is not applied yet waits until it is, as a
 * UART's full FIFO holds its transmitter: at most 64 runs (32 KiB) lost. */
#define POST_WINDOW 64
#define RUN_POLL_MS 1
/* Posted messages per frame (ipc_batch): a quarter of the window, so that
 * the device applying one frame while the next fills keeps the vCPU out of
 * the window's wait. */
#define BATCH_MAX 16

/* A read waiting for its IO_REPLY; lives on the waiting vCPU's stack. */
struct pending_read {
	uint64_t seq;
	bool done; /* data is the device's answer */
	bool lost; /* the device went away before answering: retry */
	uint64_t data;
	struct pending_read *next;
};

struct devproxy {
	char name[IPC_MAX_NAME];
	struct devproxy_board board;
	struct bus_device busdev;
	ipc_chan *chan;
	pthread_t rx_thread;
	_Atomic bool closing;

	pthread_mutex_t send_lock;
	pthread_mutex_t lock;

	/* Under send_lock: single-byte writes to a stream register waiting to
	 * leave as one IO_WRITE_RUN.  Its seq was taken with the first byte,
	 * so every other message (a later seq) sends it first: the wire stays
	 * in seq order.  run_open is read without the lock by the receive
	 * thread to pick its wake-up interval. */
	struct ipc_msg run;
	_Atomic bool run_open;
	uint64_t run_started_ns;
	/* Under send_lock: posted messages (closed runs, read dones) older than
	 * the open run, waiting to leave as one frame, with the same deadline
	 * as a run: RUN_MAX_AGE_NS after the oldest was posted.  batch_open,
	 * read without the lock like run_open, while it holds any. */
	struct ipc_batch batch;
	_Atomic bool batch_open;
	uint64_t batch_started_ns;
	pthread_cond_t cond; /* attachment changed, a reply arrived, or abort */

	/* Under lock. */
	bool up;       /* attached: WELCOME sent, vCPU messages may flow */
	bool broken;   /* sent something malformed: not served until it re-HELLOs */
	bool aborted;  /* the VM is stopping */
	bool attached_once;
	unsigned incarnation;
	uint64_t next_seq;
	/* The seqs of the last POST_WINDOW posted writes (a ring; posted_count
	 * of them since this incarnation's WELCOME). */
	uint64_t posted_seq[POST_WINDOW];
	uint64_t posted_count;
	/* Per shadow slot: the seq of the last message sent that may change
	 * it (policy_write_changes); reads of the slot wait until the device
	 * has applied it. */
	uint64_t slot_mark[IPC_MAX_REGS];
	uint64_t stale_seq;    /* replies up to this seq belong to a dead incarnation */
	/* Per declared register (hello.regs' index), for IPC_REG_READ_ACK ones. */
	struct read_ack_track read_ack[IPC_MAX_REGS];
	struct pending_read *pending;
	/* IPC_IRQ messages from the device (every incarnation) applied to the
	 * board's lines, under line_lock: counted by the receive thread with
	 * each, read by the vCPU that changes a line itself (touch_line). */
	pthread_mutex_t line_lock;
	uint32_t irqs_applied;
	/* Under line_lock: bit g set while this proxy last set GSI g high
	 * (IPC_IRQ or touch_line); no one else drives its edge lines. */
	uint32_t lines_up;
	char reject_reason[IPC_MAX_REASON];
	struct irq_budget irq_budget; /* receive thread only */

	/* Set by the first accepted HELLO, before any vCPU runs; read-only after:
	 * what it declared, and where it was placed (slots filled in). */
	struct ipc_hello declared;
	struct ipc_hello hello;
	host_shm *state_shm;
	const struct ipc_state_page *state;
	struct ipc_doorbell *doorbell; /* in the state page */
	struct ipc_rx_ring *rx;        /* in the state page */
	struct ipc_irq_levels *levels; /* in the state page */
	struct ipc_applied_wait *applied; /* in the state page */
	uint32_t published;            /* bit i: hello.irqs[i] is IPC_IRQ_PUBLISHED */
	pthread_t level_thread;        /* level_main, from creation on */
	struct irq_budget level_budget; /* level thread only */
	/* IPC_REG_RX_RING's receive register and the read-acknowledge
	 * register of its range (hello.regs), or NULL. */
	const struct ipc_reg *rx_pop, *rx_read_ack;
};

/* How long a vCPU waits for the device to take a ring it must wait for
 * (IPC_REG_DOORBELL_WAIT): long enough for a loaded host to schedule the
 * device, short enough that a device that is gone or stuck costs the guest
 * little; the guest's driver spins on after it. */
#define DOORBELL_WAIT_US 5000
/* Of which the vCPU spins this long before it sleeps.  A device thread
 * woken on another CPU takes an hvc0 ring in about 40 us on average (its
 * own wake-up); had the vCPU slept, the device would pay a wake-up (a
 * cross-CPU interrupt, ~15 us of its CPU on a host that is itself a VM)
 * and the vCPU the time to be scheduled again: 80-90 us from ring to taken
 * on average with 16 MiB of hvc0 output (docs/PERFORMANCE.md).  A device
 * woken on the vCPU's own CPU preempts the spin, so spinning there costs
 * little. */
#define DOORBELL_SPIN_US 100

static struct timespec deadline_after_ms(int ms)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Fail every read in flight back to its vCPU; replies up to now are stale. */
static void lose_pending_locked(struct devproxy *d)
{
	for (struct pending_read *p = d->pending; p; p = p->next)
		p->lost = true;
	d->pending = NULL;
	d->stale_seq = d->next_seq - 1;
	pthread_cond_broadcast(&d->cond);
}

static void unlink_pending_locked(struct devproxy *d, struct pending_read *p)
{
	for (struct pending_read **pp = &d->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static void levels_look_again(struct devproxy *d);

static void mark_broken_locked(struct devproxy *d, const char *why)
{
	if (!d->broken)
		log_msg("device %s is broken (%s): its reads now answer all-ones", d->name, why);
	d->broken = true;
	levels_look_again(d); /* its published lines fall */
	pthread_cond_broadcast(&d->cond);
}

static void mark_broken(struct devproxy *d, const char *why)
{
	pthread_mutex_lock(&d->lock);
	mark_broken_locked(d, why);
	pthread_mutex_unlock(&d->lock);
}

static bool vm_stopping(struct devproxy *d)
{
	pthread_mutex_lock(&d->lock);
	bool aborted = d->aborted;
	pthread_mutex_unlock(&d->lock);
	return aborted;
}

/* The sends below wait while the device's queue is full (backpressure),
 * but only until the VM stops: a device that stopped reading must not keep
 * the core from ending.  IPC_ETIMEDOUT: given up because of devproxy_abort.
 * send_lock held. */
static int send_now(struct devproxy *d, const struct ipc_msg *m)
{
	int rc;
	do
		rc = ipc_send_timeout(d->chan, m, SEND_POLL_MS);
	while (rc == IPC_ETIMEDOUT && !vm_stopping(d));
	return rc;
}

static void batch_empty(struct devproxy *d)
{
	d->batch.count = 0;
	d->batch.len = 0;
	atomic_store(&d->batch_open, false);
}

/* The batch leaves now, as one frame (and is empty, sent or not). */
static int send_batch(struct devproxy *d)
{
	if (!d->batch.count)
		return IPC_OK;
	STATS_ADD(frames_sent, 1);
	STATS_ADD(frame_msgs, d->batch.count);
	int rc;
	do
		rc = ipc_send_batch_timeout(d->chan, &d->batch, SEND_POLL_MS);
	while (rc == IPC_ETIMEDOUT && !vm_stopping(d));
	batch_empty(d);
	return rc;
}

/* m joins the batch, which leaves first if m does not fit or it is full;
 * posted_ns: when m's first write was posted.  send_lock held. */
static int batch_post(struct devproxy *d, const struct ipc_msg *m, uint64_t posted_ns)
{
	int rc = d->batch.count < BATCH_MAX ? ipc_batch_add(&d->batch, m) : IPC_ENOSPC;
	if (rc == IPC_ENOSPC) {
		rc = send_batch(d);
		if (rc == IPC_OK)
			rc = ipc_batch_add(&d->batch, m);
	}
	if (rc == IPC_OK && d->batch.count == 1) {
		d->batch_started_ns = posted_ns;
		atomic_store(&d->batch_open, true);
	}
	return rc;
}

/* The open run, if any, joins the batch: no write more goes into it.
 * send_lock held. */
static int close_run(struct devproxy *d)
{
	if (!atomic_load(&d->run_open))
		return IPC_OK;
	atomic_store(&d->run_open, false);
	STATS_ADD(runs_sent, 1);
	STATS_ADD(run_writes, d->run.u.run.count);
	return batch_post(d, &d->run, d->run_started_ns);
}

/* Everything posted and not sent (the batch, then the open run) leaves
 * now.  send_lock held. */
static int flush_posted(struct devproxy *d)
{
	int rc = close_run(d);
	return rc == IPC_OK ? send_batch(d) : rc;
}

/* When the oldest message not sent yet was posted.  send_lock held, and
 * something is waiting (run_open or the batch). */
static uint64_t oldest_posted_ns(const struct devproxy *d)
{
	return d->batch.count ? d->batch_started_ns : d->run_started_ns;
}

/* The batch and the open run leave if the oldest of them is due.
 * send_lock held. */
static int flush_posted_if_due(struct devproxy *d)
{
	if ((!d->batch.count && !atomic_load(&d->run_open)) ||
	    host_now_ns() - oldest_posted_ns(d) < RUN_MAX_AGE_NS)
		return IPC_OK;
	return flush_posted(d);
}

/* m, after everything posted before it (whose seqs are older): in their
 * frame if m is posted too.  send_lock held. */
static int send_until_abort(struct devproxy *d, const struct ipc_msg *m)
{
	int rc = close_run(d);
	if (rc != IPC_OK)
		return rc;
	if (d->batch.count && ipc_is_posted(m->type)) {
		rc = batch_post(d, m, host_now_ns());
		return rc == IPC_OK ? send_batch(d) : rc;
	}
	rc = send_batch(d);
	return rc == IPC_OK ? send_now(d, m) : rc;
}

static int send_msg(struct devproxy *d, const struct ipc_msg *m)
{
	pthread_mutex_lock(&d->send_lock);
	int rc = send_until_abort(d, m);
	pthread_mutex_unlock(&d->send_lock);
	return rc;
}

/* Wait (lock held) until the device can be talked to.  False: do not wait
 * for it at all (broken or the VM is stopping). */
static bool wait_usable_locked(struct devproxy *d)
{
	while (!d->up && !d->broken && !d->aborted)
		pthread_cond_wait(&d->cond, &d->lock);
	return !d->broken && !d->aborted;
}

static void flush_stale_run(struct devproxy *d);

/* ---- the vCPU side ---- */

static uint64_t round_trip_locked(struct devproxy *d, enum ipc_space space, uint64_t addr,
				  unsigned size, bool *answered)
{
	struct pending_read p = {.seq = d->next_seq++};
	p.next = d->pending;
	d->pending = &p;
	struct ipc_msg m = {.type = IPC_IO_READ, .seq = p.seq};
	m.u.io = (struct ipc_io){.space = space, .size = size, .addr = addr};
	pthread_mutex_unlock(&d->lock);
	int rc = send_msg(d, &m);
	pthread_mutex_lock(&d->lock);
	if (rc != IPC_OK && rc != IPC_ETIMEDOUT && !p.lost)
		mark_broken_locked(d, "cannot send to it");

	struct timespec deadline = deadline_after_ms(READ_REPLY_TIMEOUT_MS);
	while (!p.done && !p.lost && !d->broken && !d->aborted) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &deadline) == ETIMEDOUT && !p.done &&
		    !p.lost)
			mark_broken_locked(d, "no reply to a read within 30 s");
	}
	if (!p.lost)
		unlink_pending_locked(d, &p);
	*answered = p.done;
	return p.data;
}

/* Set line gsi to level on the core's own knowledge (an acknowledge
 * lowers it, a stream write raises it), and say so in the note that the
 * next message to the device carries: with how many of the device's
 * IPC_IRQ messages had been applied before, so that the device knows
 * whether one of its own may still land after this (ipc.h, struct
 * ipc_line_note).  Under line_lock, under which the receive thread applies
 * and counts each IPC_IRQ: a message counted landed before this change,
 * one not counted lands after it.  send_lock held, so that the notes reach
 * the device in the order of the changes. */
/* Set line gsi to level and remember it.  line_lock held. */
static void set_line_locked(struct devproxy *d, unsigned gsi, int level)
{
	d->board.hooks.irq(d->board.hooks.opaque, gsi, level);
	uint32_t bit = gsi < 32 ? 1u << gsi : 0;
	d->lines_up = level ? d->lines_up | bit : d->lines_up & ~bit;
}

static struct ipc_line_note touch_line(struct devproxy *d, int gsi, int level)
{
	pthread_mutex_lock(&d->line_lock);
	struct ipc_line_note note = {.action = level ? IPC_LINE_RAISED : IPC_LINE_LOWERED,
				     .irqs_applied = d->irqs_applied};
	set_line_locked(d, (unsigned)gsi, level);
	pthread_mutex_unlock(&d->line_lock);
	return note;
}

static bool line_up(struct devproxy *d, int gsi)
{
	pthread_mutex_lock(&d->line_lock);
	bool up = gsi < 32 && (d->lines_up >> gsi & 1);
	pthread_mutex_unlock(&d->line_lock);
	return up;
}

/* A read answered here that the device must learn of (m, IPC_IO_READ_DONE):
 * lower line lower_gsi first if it is one (>= 0), then post m -- inside the
 * open run, if there is one, which joins the batch with it (ipc.h, struct
 * ipc_io_run: a UART's burst and the next IIR acknowledge are one
 * message), or in the batch if that holds anything (m is younger); alone
 * otherwise.  Called with send_lock held and lock released; releases
 * send_lock. */
static void post_read_done(struct devproxy *d, int lower_gsi, struct ipc_msg *m)
{
	if (lower_gsi >= 0)
		m->u.io.line = touch_line(d, lower_gsi, 0);
	int rc;
	if (atomic_load(&d->run_open)) {
		struct ipc_io_run *r = &d->run.u.run;
		r->then_read_done = true;
		r->read_done_seq = m->seq;
		r->read_done = m->u.io;
		STATS_ADD(read_dones_in_runs, 1);
		rc = close_run(d);
	} else if (d->batch.count) {
		rc = batch_post(d, m, host_now_ns());
	} else {
		rc = send_now(d, m);
	}
	if (rc == IPC_OK)
		rc = d->batch.count >= BATCH_MAX ? send_batch(d) : flush_posted_if_due(d);
	pthread_mutex_unlock(&d->send_lock);
	if (rc != IPC_OK && rc != IPC_ETIMEDOUT)
		mark_broken(d, "cannot send to it");
}

/* A read of an IPC_REG_READ_ACK register answered here, if the state page
 * allows it (ipc.h); false: it takes the usual path.  An acknowledging read
 * is posted as IPC_IO_READ_DONE, after the line is lowered (if nothing else
 * holds it up) and in seq order with the stream writes whose events it
 * acknowledges.
 *
 * Why the guest cannot miss an interrupt (edge-triggered IRQ 4: the 8250
 * driver's handler reads IIR until it says "none", and only a new edge
 * runs it again): once the guest reads "none" the line is low, so every
 * later cause makes an edge.  The answer is the value of a state the
 * device published, with the core's own unapplied writes and acknowledges
 * on top; whatever the device learns later (host input) is, for the guest,
 * an event after this read.  The device publishes its shadows before
 * every IPC_IRQ it sends (serial_device.c), so a guest woken by an edge
 * reads a word that shows the cause.  A "none" with the line up (a
 * device's "high" that landed after the core's last lowering) lowers it
 * here, and its READ_DONE carries the note.  Applying a READ_DONE whose
 * note says the core lowered the line, the device knows where the line
 * ends (touch_line's count) and reports its level if it differs: input
 * that arrived between the word this read used and READ_DONE gets an
 * edge after the lowering.  docs/ARCHITECTURE.md, "IIR without a round
 * trip"; tested in test_core_devproxy.c and test_serial_device.c. */
static bool read_ack_here(struct devproxy *d, const struct ipc_reg *reg, uint64_t *value)
{
	unsigned i = (unsigned)(reg - d->hello.regs);
	struct read_ack_answer a;
	pthread_mutex_lock(&d->send_lock);
	pthread_mutex_lock(&d->lock);
	if (!d->up || d->broken || d->aborted ||
	    !policy_read_ack(&d->hello, reg, d->state, d->slot_mark[reg->slot], &d->read_ack[i], &a)) {
		pthread_mutex_unlock(&d->lock);
		pthread_mutex_unlock(&d->send_lock);
		return false;
	}
	*value = a.value;
	int lower_gsi = a.lower_gsi;
	if (!a.acknowledges) {
		pthread_mutex_unlock(&d->lock);
		if (a.idle_gsi < 0 || !line_up(d, a.idle_gsi)) {
			pthread_mutex_unlock(&d->send_lock);
			return true;
		}
		/* "No interrupt" with the line up: a device's "high" that
		 * landed after the core's last lowering left it there (the
		 * lost edge of docs/ARCHITECTURE.md, "IIR without a round
		 * trip").  The guest leaves its handler now, and with the line
		 * up no later cause would make an edge: it falls, and the
		 * device hears of it as of an acknowledge's lowering. */
		pthread_mutex_lock(&d->lock);
		lower_gsi = a.idle_gsi;
		STATS_ADD(idle_lowered, 1);
	} else if (lower_gsi >= 0) {
		STATS_ADD(acks_lowered, 1);
	}
	struct ipc_msg m = {.type = IPC_IO_READ_DONE, .seq = d->next_seq++};
	m.u.io = (struct ipc_io){.space = reg->space, .size = 1, .addr = reg->addr, .data = a.value};
	if (a.acknowledges) {
		d->read_ack[i].pending = false;
		d->read_ack[i].unknown = false;
		d->read_ack[i].seq = m.seq;
	}
	pthread_mutex_unlock(&d->lock);
	post_read_done(d, lower_gsi, &m);
	return true;
}

/* A read of the receive ring's register (IPC_REG_RX_RING) answered here, if
 * the state page allows it (ipc.h); false: it takes the usual path.  A pop
 * stores the ring's head at once (under lock, so that pops are serial and
 * every later message leaves after the store); the pop that empties the
 * ring lowers the line if nothing else holds it up and is posted as
 * IPC_IO_READ_DONE, as an IIR acknowledge is (read_ack_here): the device
 * then takes its next batch of input into the ring and reports its level
 * against the line note as for IIR, which is why no edge is lost
 * (docs/ARCHITECTURE.md, "Receive without a round trip"). */
static bool rx_pop_here(struct devproxy *d, const struct ipc_reg *reg, uint64_t *value)
{
	struct rx_pop_answer a;
	pthread_mutex_lock(&d->send_lock);
	pthread_mutex_lock(&d->lock);
	if (!d->up || d->broken || d->aborted ||
	    !policy_rx_pop(reg, d->state, d->slot_mark[reg->slot], &a)) {
		pthread_mutex_unlock(&d->lock);
		pthread_mutex_unlock(&d->send_lock);
		return false;
	}
	*value = a.value;
	if (a.popped)
		atomic_store_explicit(&d->rx->head, a.head, memory_order_release);
	if (!a.emptied) {
		pthread_mutex_unlock(&d->lock);
		pthread_mutex_unlock(&d->send_lock);
		return true;
	}
	int lower_gsi = -1;
	if (d->rx_read_ack) {
		unsigned i = (unsigned)(d->rx_read_ack - d->hello.regs);
		lower_gsi = policy_rx_emptied_lowers(&d->hello, d->rx_read_ack, d->state,
						     d->slot_mark[d->rx_read_ack->slot], &d->read_ack[i]);
	}
	if (lower_gsi >= 0)
		STATS_ADD(acks_lowered, 1);
	struct ipc_msg m = {.type = IPC_IO_READ_DONE, .seq = d->next_seq++};
	m.u.io = (struct ipc_io){.space = reg->space, .size = 1, .addr = reg->addr, .data = a.value};
	pthread_mutex_unlock(&d->lock);
	post_read_done(d, lower_gsi, &m);
	return true;
}

static uint64_t dev_read(void *opaque, enum ipc_space space, uint64_t addr, unsigned size)
{
	struct devproxy *d = opaque;
	const struct ipc_reg *reg = policy_find_reg(&d->hello, space, addr, size);
	uint64_t value = bus_ones(size);
	if (policy_local_read(&d->hello, space, addr, size, &value))
		return value;
	if (reg && reg == d->rx_pop && rx_pop_here(d, reg, &value)) {
		STATS_ADD(rx_pops, 1);
		flush_stale_run(d);
		return value;
	}
	if (reg && (reg->flags & IPC_REG_READ_ACK) && read_ack_here(d, reg, &value)) {
		STATS_ADD(shadow_hits, 1);
		flush_stale_run(d);
		return value;
	}
	uint64_t t0 = host_now_ns();
	pthread_mutex_lock(&d->lock);
	while (wait_usable_locked(d)) {
		if (reg && reg->slot < IPC_MAX_REGS &&
		    policy_shadow_read(reg, d->state, d->slot_mark[reg->slot], size, &value)) {
			pthread_mutex_unlock(&d->lock);
			STATS_ADD(shadow_hits, 1);
			flush_stale_run(d);
			return value;
		}
		bool answered;
		uint64_t data = round_trip_locked(d, space, addr, size, &answered);
		if (answered) {
			value = data;
			STATS_ADD(round_trips, 1);
			break;
		}
		/* Lost with a dead incarnation: wait for the next one and ask again. */
	}
	pthread_mutex_unlock(&d->lock);
	STATS_ADD(ipc_wait_ns, host_now_ns() - t0);
	return value;
}

/* The stream write of seq to reg may raise the events of the
 * read-acknowledge registers of its range: the line to raise for them
 * (policy_stream_written), or -1.  Lock held. */
static int raise_read_acks_locked(struct devproxy *d, const struct ipc_reg *reg, uint64_t seq)
{
	int raise_gsi = -1;
	for (uint32_t i = 0; i < d->hello.nregs && i < IPC_MAX_REGS; i++) {
		const struct ipc_reg *ra = &d->hello.regs[i];
		if (ra->slot >= IPC_MAX_REGS)
			continue;
		int gsi = policy_stream_written(&d->hello, reg, ra, d->state, d->slot_mark[ra->slot], seq,
						&d->read_ack[i]);
		if (gsi >= 0)
			raise_gsi = gsi;
	}
	return raise_gsi;
}

/* An ordered write of value to reg that may change the slots in *changes:
 * if it merely enables or disables the events of read-acknowledge
 * registers (policy_enable_written: the core then answers them without
 * waiting for the device), only reg's own slot; returns the line the core
 * sets to *level for it, or -1.  Lock held. */
static int enable_read_acks_locked(struct devproxy *d, const struct ipc_reg *reg, uint64_t value,
				   uint64_t seq, uint32_t *changes, int *level)
{
	int line = -1;
	if (!reg || reg->slot >= IPC_MAX_REGS)
		return line;
	for (uint32_t i = 0; i < d->hello.nregs && i < IPC_MAX_REGS; i++) {
		const struct ipc_reg *ra = &d->hello.regs[i];
		int gsi, lvl;
		if (ra->slot >= IPC_MAX_REGS ||
		    !policy_enable_written(&d->hello, reg, ra, d->state, d->slot_mark[reg->slot],
					   d->slot_mark[ra->slot], value, seq, &d->read_ack[i], &gsi, &lvl))
			continue;
		*changes = 1u << reg->slot;
		if (gsi >= 0) {
			line = gsi;
			*level = lvl;
		}
	}
	return line;
}

/* Can m join a run (IO_WRITE_RUN)?  A single-byte write to a stream
 * register: it changes no shadow, so it may wait (a UART's THR). */
static bool runnable(const struct ipc_msg *m, const struct ipc_reg *reg)
{
	return m->type == IPC_IO_WRITE && m->u.io.size == 1 && reg && (reg->flags & IPC_REG_STREAM);
}

/* Does the open run take m next?  send_lock held. */
static bool run_takes(const struct devproxy *d, const struct ipc_msg *m)
{
	const struct ipc_io_run *r = &d->run.u.run;
	return atomic_load(&d->run_open) && r->space == m->u.io.space && r->addr == m->u.io.addr &&
	       r->count < IPC_IO_RUN_MAX;
}

/* May another write be posted?  (POST_WINDOW)  A device that stores a
 * wrong applied_seq only loosens or tightens its own bound.  Lock held. */
static bool window_open_locked(const struct devproxy *d)
{
	if (d->posted_count < POST_WINDOW)
		return true;
	uint64_t oldest = d->posted_seq[d->posted_count % POST_WINDOW];
	return atomic_load_explicit(&d->state->applied_seq, memory_order_acquire) >= oldest;
}

/* Asleep until the device applies more of what was posted, or RUN_POLL_MS
 * (ipc.h, struct ipc_applied_wait): a 1 ms nap cost the guest most of it,
 * the device being a few runs behind (ttyS0 output: 213 naps per 256 KiB,
 * a sixth of the guest's time). */
static void wait_window(struct devproxy *d)
{
	struct ipc_applied_wait *w = d->applied;
	if (!host_shared_wait_supported()) {
		host_sleep_ms(RUN_POLL_MS);
		return;
	}
	atomic_fetch_add(&w->vcpus_waiting, 1);
	uint32_t wake = atomic_load(&w->wake);
	pthread_mutex_lock(&d->lock);
	bool open = window_open_locked(d);
	pthread_mutex_unlock(&d->lock);
	if (!open)
		host_shared_wait(&w->wake, wake, RUN_POLL_MS * 1000u);
	atomic_fetch_sub(&w->vcpus_waiting, 1);
}

static void note_posted_locked(struct devproxy *d, uint64_t seq)
{
	d->posted_seq[d->posted_count++ % POST_WINDOW] = seq;
}

/* Post m (an IO_WRITE to reg, or a RESET with reg NULL) in seq order once
 * the device is usable; a runnable write joins a run instead of leaving at
 * once.
 * Later reads of the shadow slots in `changes` wait until the device has
 * applied m (its applied_seq reaches m's seq).  Returns the send's status,
 * or IPC_ECLOSED when the device is not usable (broken, or the VM stops). */
static int post(struct devproxy *d, struct ipc_msg *m, const struct ipc_reg *reg, uint32_t changes)
{
	/* send_lock before lock, and never while waiting: the receive thread
	 * needs send_lock to WELCOME the device we may be waiting for. */
	for (;;) {
		pthread_mutex_lock(&d->lock);
		bool usable = wait_usable_locked(d);
		pthread_mutex_unlock(&d->lock);
		if (!usable)
			return IPC_ECLOSED;
		pthread_mutex_lock(&d->send_lock);
		pthread_mutex_lock(&d->lock);
		bool window_open = window_open_locked(d);
		bool usable_now = d->up && !d->broken && !d->aborted;
		if (usable_now && window_open)
			break; /* both locks held */
		pthread_mutex_unlock(&d->lock);
		if (usable_now && (d->batch.count || atomic_load(&d->run_open))) {
			/* The window counts what waits in the batch and the run:
			 * it leaves before the wait for the device to apply it. */
			int rc = flush_posted(d);
			pthread_mutex_unlock(&d->send_lock);
			if (rc != IPC_OK && rc != IPC_ETIMEDOUT)
				mark_broken(d, "cannot send to it");
			if (rc != IPC_OK)
				return rc;
			continue;
		}
		pthread_mutex_unlock(&d->send_lock);
		if (!window_open) {
			STATS_ADD(window_waits, 1);
			wait_window(d);
		}
	}
	bool run = runnable(m, reg);
	if (run && atomic_load(&d->run_open) && !run_takes(d, m)) {
		/* Another register's run, or a full one: it joins the batch
		 * first (not under lock: the batch may leave, and a send may
		 * block). */
		pthread_mutex_unlock(&d->lock);
		int rc = close_run(d);
		pthread_mutex_lock(&d->lock);
		if (rc != IPC_OK || !d->up || d->broken || d->aborted) {
			pthread_mutex_unlock(&d->lock);
			pthread_mutex_unlock(&d->send_lock);
			if (rc != IPC_OK && rc != IPC_ETIMEDOUT)
				mark_broken(d, "cannot send to it");
			return rc != IPC_OK ? rc : IPC_ECLOSED;
		}
	}
	int rc = IPC_OK;
	if (run) {
		struct ipc_io_run *r = &d->run.u.run;
		if (!atomic_load(&d->run_open)) {
			d->run = (struct ipc_msg){.type = IPC_IO_WRITE_RUN, .seq = d->next_seq++};
			note_posted_locked(d, d->run.seq);
			*r = (struct ipc_io_run){.space = m->u.io.space, .addr = m->u.io.addr};
			d->run_started_ns = host_now_ns();
			atomic_store(&d->run_open, true);
		}
		r->data[r->count++] = (uint8_t)m->u.io.data;
		m->seq = d->run.seq;
		int raise_gsi = raise_read_acks_locked(d, reg, m->seq);
		pthread_mutex_unlock(&d->lock);
		/* The run leaves later, but before any message with a later
		 * seq: the device learns of the raise before anything else. */
		if (raise_gsi >= 0) {
			r->line = touch_line(d, raise_gsi, 1);
			STATS_ADD(lines_raised, 1);
		}
		rc = flush_posted_if_due(d);
	} else {
		m->seq = d->next_seq++;
		note_posted_locked(d, m->seq);
		int line = -1, level = 1;
		if (m->type == IPC_IO_WRITE && !(reg && (reg->flags & IPC_REG_STREAM)))
			line = enable_read_acks_locked(d, reg, m->u.io.data, m->seq, &changes, &level);
		for (unsigned s = 0; s < IPC_MAX_REGS; s++)
			if (changes & (1u << s))
				d->slot_mark[s] = m->seq;
		int stream_gsi = raise_read_acks_locked(d, reg, m->seq);
		if (stream_gsi >= 0) {
			line = stream_gsi;
			level = 1;
		}
		pthread_mutex_unlock(&d->lock);
		if (line >= 0) {
			m->u.io.line = touch_line(d, line, level);
			STATS_ADD(lines_raised, level);
		}
		rc = send_until_abort(d, m);
	}
	pthread_mutex_unlock(&d->send_lock);
	if (rc != IPC_OK && rc != IPC_ETIMEDOUT)
		mark_broken(d, "cannot send to it");
	return rc;
}

static bool doorbell_taken(struct ipc_doorbell *db, uint32_t ring)
{
	return (int32_t)(atomic_load(&db->taken) - ring) >= 0;
}

/* Spin until ring `ring` is taken or the clock reaches end; false if not
 * taken by then.  No system call: the device sees no vCPU waiting and
 * wakes nobody. */
static bool spin_until_taken(struct ipc_doorbell *db, uint32_t ring, uint64_t end)
{
	for (unsigned i = 1; !doorbell_taken(db, ring); i++) {
		if (!(i % 16) && host_now_ns() >= end)
			return false;
		host_cpu_relax();
	}
	return true;
}

/* Asleep until ring `ring` is taken or the clock reaches deadline.  The
 * device wakes taken only while vcpus_waiting says someone sleeps on it
 * (ipc.h). */
static void sleep_until_taken(struct ipc_doorbell *db, uint32_t ring, uint64_t deadline)
{
	while (!doorbell_taken(db, ring)) {
		uint64_t now = host_now_ns();
		if (now >= deadline) {
			STATS_ADD(doorbell_timeouts, 1);
			return;
		}
		atomic_fetch_add(&db->vcpus_waiting, 1);
		uint32_t taken = atomic_load(&db->taken);
		if ((int32_t)(taken - ring) < 0) {
			STATS_ADD(doorbell_sleeps, 1);
			host_shared_wait(&db->taken, taken, (unsigned)((deadline - now) / 1000) + 1);
		}
		atomic_fetch_sub(&db->vcpus_waiting, 1);
	}
}

/* Until the device has taken ring `ring` (its taken count reached it), or
 * DOORBELL_WAIT_US: spinning for DOORBELL_SPIN_US, then asleep.  The
 * device writes taken: a wrong value only ends the wait early or late,
 * within the bound. */
static void wait_doorbell_taken(struct ipc_doorbell *db, uint32_t ring)
{
	uint64_t start = host_now_ns();
	STATS_ADD(doorbell_waits, 1);
	if (!spin_until_taken(db, ring, start + DOORBELL_SPIN_US * 1000ull))
		sleep_until_taken(db, ring, start + DOORBELL_WAIT_US * 1000ull);
	STATS_ADD(doorbell_wait_ns, host_now_ns() - start);
}

/* IPC_REG_DOORBELL (ipc.h): no message, so nothing waits for the device to
 * be attached; rings while it is away are taken by its next incarnation.
 * The device's thread is woken only if it sleeps (a busy one looks at rung
 * again before it sleeps).  False: not a ring, post the write. */
static bool ring_doorbell(struct devproxy *d, const struct ipc_reg *reg, uint64_t value)
{
	if (!reg || !(reg->flags & IPC_REG_DOORBELL) || value >= 32 ||
	    reg->slot >= IPC_MAX_DOORBELLS || !d->doorbell)
		return false;
	struct ipc_doorbell *db = d->doorbell;
	atomic_fetch_or(&db->pending[reg->slot], 1u << value);
	uint32_t ring = atomic_fetch_add(&db->rung, 1) + 1;
	if (atomic_load(&db->device_sleeps))
		host_shared_wake(&db->rung);
	STATS_ADD(doorbells, 1);
	if (reg->flags & IPC_REG_DOORBELL_WAIT)
		wait_doorbell_taken(db, ring);
	return true;
}

static void dev_write(void *opaque, enum ipc_space space, uint64_t addr, unsigned size,
		      uint64_t value)
{
	struct devproxy *d = opaque;
	const struct ipc_reg *reg = policy_find_reg(&d->hello, space, addr, size);
	if (ring_doorbell(d, reg, value))
		return;
	struct ipc_msg m = {.type = IPC_IO_WRITE};
	m.u.io = (struct ipc_io){.space = space, .size = size, .addr = addr, .data = value};
	/* An acknowledge that clears everything pending: lower the line now,
	 * before the write leaves, so that the device's answer to it (the
	 * level again, if something new is pending) comes after (ipc.h). */
	int gsi = policy_ack_lowers(&d->hello, reg, d->state, size, value);
	if (gsi >= 0) {
		d->board.hooks.irq(d->board.hooks.opaque, (unsigned)gsi, 0);
		STATS_ADD(acks_lowered, 1);
	}
	if (post(d, &m, reg, policy_write_changes(reg)) == IPC_OK)
		STATS_ADD(posted_writes, 1);
}

void devproxy_reset(struct devproxy *d)
{
	struct ipc_msg m = {.type = IPC_RESET};
	post(d, &m, NULL, POLICY_ALL_SLOTS);
}

/* ---- published line levels (IPC_IRQ_PUBLISHED) ---- */

/* How long the level thread sleeps before it looks whether the proxy is
 * closing (destroy wakes it at once). */
#define LEVEL_IDLE_US 100000

/* Make the level thread look at the levels again: the device attached, went
 * away or broke.  Any thread; a no-op for a device that publishes none. */
static void levels_look_again(struct devproxy *d)
{
	if (!d->published)
		return;
	atomic_fetch_add(&d->levels->said, 1);
	if (atomic_load(&d->levels->core_sleeps))
		host_shared_wake(&d->levels->said);
}

/* Set every published line to the device's level, or low while the device
 * cannot be served (away, broken): the core keeps no line up for a device
 * that is not there.  The lines are set whether or not the level changed
 * since the last look: the core lowers them itself on acknowledges
 * (IPC_REG_ACK_LOWERS), and a device saying "high" again after one must
 * raise the line again.  Why a level may overtake nothing that matters:
 * the line is level-triggered, so only the last level counts, and the
 * device says its level again after every change the core makes behind
 * its back (an acknowledge's lowering is followed by the ACK write, whose
 * application publishes the level once more); a look that read an older
 * word is followed by one that reads the newer, since every word comes
 * with an increment of `said` (docs/ARCHITECTURE.md, "Interrupts without
 * a message"). */
static void apply_levels(struct devproxy *d)
{
	pthread_mutex_lock(&d->lock);
	bool live = d->up && !d->broken;
	pthread_mutex_unlock(&d->lock);
	uint32_t level = live ? atomic_load(&d->levels->level) : 0;
	STATS_ADD(level_looks, 1);
	uint64_t wait_ns = live ? policy_irq_wait(&d->level_budget, host_now_ns()) : 0;
	if (wait_ns) {
		log_once("a device changes its published levels more than %d times a second: slowing it down",
			 DEVPROXY_IRQ_RATE);
		host_sleep_ms((unsigned)(wait_ns / 1000000 + 1));
	}
	for (uint32_t i = 0; i < d->hello.nirqs && i < IPC_MAX_IRQS; i++)
		if (d->published >> i & 1)
			d->board.hooks.irq(d->board.hooks.opaque, d->hello.irqs[i].gsi, (int)(level >> i & 1));
}

/* The level thread: once the first HELLO declared published lines, one look
 * per increment of `said` it sees (several increments may make one look),
 * asleep in between (ipc.h).  Until then it waits, for nothing if the
 * device publishes none. */
static void *level_main(void *arg)
{
	struct devproxy *d = arg;
	pthread_mutex_lock(&d->lock);
	while (!d->published && !atomic_load(&d->closing))
		pthread_cond_wait(&d->cond, &d->lock);
	pthread_mutex_unlock(&d->lock);
	if (atomic_load(&d->closing))
		return NULL;
	struct ipc_irq_levels *lv = d->levels;
	uint32_t seen = atomic_load(&lv->said);
	apply_levels(d);
	while (!atomic_load(&d->closing)) {
		uint32_t said = atomic_load(&lv->said);
		if (said != seen) {
			seen = said;
			apply_levels(d);
			continue;
		}
		atomic_store(&lv->core_sleeps, 1);
		if (atomic_load(&lv->said) == seen) {
			STATS_ADD(level_sleeps, 1);
			host_shared_wait(&lv->said, seen, LEVEL_IDLE_US);
		}
		atomic_store(&lv->core_sleeps, 0);
	}
	return NULL;
}

/* ---- the receive side ---- */

static void reject(struct devproxy *d, uint64_t seq, const char *why)
{
	pthread_mutex_lock(&d->lock);
	/* A device repeating the same bad HELLO must not flood the log. */
	if (strcmp(d->reject_reason, why) != 0)
		log_msg("device %s rejected: %s", d->name, why);
	snprintf(d->reject_reason, sizeof(d->reject_reason), "%s", why);
	pthread_mutex_unlock(&d->lock);
	struct ipc_msg m = {.type = IPC_REJECT, .seq = seq};
	snprintf(m.u.reason, sizeof(m.u.reason), "%s", why);
	send_msg(d, &m);
}

/* First HELLO: claim the ranges and create the state page, which then
 * outlives every restart of the device.  Lock held. */
static int first_attach_locked(struct devproxy *d, const struct ipc_hello *h, char *why,
			       size_t n)
{
	char err[160];
	d->state_shm = host_shm_create("state", IPC_STATE_SIZE, err, sizeof(err));
	if (!d->state_shm) {
		snprintf(why, n, "cannot create its state page: %.90s", err);
		return -1;
	}
	struct ipc_hello placed;
	if (policy_place(d->board.slots, d->name, h, &placed, why, n) ||
	    bus_attach(d->board.bus, &d->busdev, placed.ranges, placed.nranges, why, n)) {
		host_shm_close(d->state_shm);
		d->state_shm = NULL;
		return -1;
	}
	d->state = host_shm_ptr(d->state_shm);
	d->doorbell = &((struct ipc_state_page *)host_shm_ptr(d->state_shm))->doorbell;
	d->rx = &((struct ipc_state_page *)host_shm_ptr(d->state_shm))->rx;
	d->levels = &((struct ipc_state_page *)host_shm_ptr(d->state_shm))->irq;
	d->applied = &((struct ipc_state_page *)host_shm_ptr(d->state_shm))->applied;
	d->declared = *h;
	d->hello = placed;
	for (uint32_t i = 0; i < d->hello.nirqs; i++)
		if (d->hello.irqs[i].flags & IPC_IRQ_PUBLISHED)
			d->published |= 1u << i;
	pthread_cond_broadcast(&d->cond); /* the level thread starts looking */
	d->rx_pop = policy_rx_pop_reg(&d->hello);
	for (uint32_t i = 0; i < d->hello.nregs && d->rx_pop; i++)
		if ((d->hello.regs[i].flags & (IPC_REG_RX_RING | IPC_REG_READ_ACK)) ==
		    (IPC_REG_RX_RING | IPC_REG_READ_ACK))
			d->rx_read_ack = &d->hello.regs[i];
	return 0;
}

static void on_hello(struct devproxy *d, const struct ipc_msg *m)
{
	char why[IPC_MAX_REASON];
	if (policy_check_hello(&m->u.hello, why, sizeof(why))) {
		reject(d, m->seq, why);
		return;
	}
	pthread_mutex_lock(&d->lock);
	int rc = 0;
	if (!d->attached_once)
		rc = first_attach_locked(d, &m->u.hello, why, sizeof(why));
	else if (!policy_same_device(&d->declared, &m->u.hello)) {
		snprintf(why, sizeof(why), "a restarted device must declare what it did first");
		rc = -1;
	}
	if (rc) {
		pthread_mutex_unlock(&d->lock);
		reject(d, m->seq, why);
		return;
	}
	/* A HELLO while up: the old incarnation vanished without a peer-down yet. */
	if (d->up)
		lose_pending_locked(d);
	d->up = false;
	/* A new incarnation's lines start low until it says otherwise (its
	 * attach says them all); the dead one's last word is not its word. */
	if (d->published)
		atomic_store(&d->levels->level, 0);
	levels_look_again(d);
	bool resumed = d->attached_once;
	d->attached_once = true;
	d->broken = false;
	/* The slot marks stay: writes queued for the dead incarnation reach this
	 * one before its WELCOME and are applied after it; if some were lost
	 * with the old process, the next write applied moves applied_seq past
	 * the mark, and until then LSR/MSR reads are round trips. */
	unsigned incarnation = ++d->incarnation;
	pthread_mutex_unlock(&d->lock);

	struct ipc_msg w = {.type = IPC_WELCOME, .seq = m->seq};
	w.u.welcome.flags = resumed ? IPC_WELCOME_RESUMED : 0;
	w.u.welcome.ram_size = d->board.ram->size;
	/* A core that never split its RAM has it all at 0. */
	w.u.welcome.nregions = d->board.ram->nregions ? d->board.ram->nregions : 1;
	if (d->board.ram->nregions)
		memcpy(w.u.welcome.ram_regions, d->board.ram->regions, sizeof(w.u.welcome.ram_regions));
	else
		w.u.welcome.ram_regions[0] = (struct guest_mem_region){0, d->board.ram->size};
	w.u.welcome.state_size = IPC_STATE_SIZE;
	/* Where the new incarnation's messages count on from. */
	pthread_mutex_lock(&d->line_lock);
	w.u.welcome.irqs_applied = d->irqs_applied;
	pthread_mutex_unlock(&d->line_lock);
	snprintf(w.u.welcome.ram_name, sizeof(w.u.welcome.ram_name), "%s", d->board.ram_name);
	snprintf(w.u.welcome.state_name, sizeof(w.u.welcome.state_name), "%s",
		 host_shm_name(d->state_shm));
	w.u.welcome.nranges = d->hello.nranges;
	w.u.welcome.nirqs = d->hello.nirqs;
	for (uint32_t i = 0; i < d->hello.nranges; i++)
		w.u.welcome.range_base[i] = d->hello.ranges[i].base;
	for (uint32_t i = 0; i < d->hello.nirqs; i++)
		w.u.welcome.irq_gsi[i] = d->hello.irqs[i].gsi;
	rc = send_msg(d, &w);
	if (rc != IPC_OK) {
		if (rc != IPC_ETIMEDOUT) /* not merely the VM stopping */
			mark_broken(d, "cannot send WELCOME");
		return;
	}
	if (resumed)
		log_msg("device %s re-attached (incarnation %u), state resumed", d->name, incarnation);
	pthread_mutex_lock(&d->lock);
	d->up = true;
	d->posted_count = 0; /* what the dead one did not apply is not waited for */
	levels_look_again(d);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void on_reply(struct devproxy *d, const struct ipc_msg *m)
{
	pthread_mutex_lock(&d->lock);
	struct pending_read *p = d->pending;
	while (p && p->seq != m->seq)
		p = p->next;
	if (p) {
		p->data = m->u.io.data;
		p->done = true;
		unlink_pending_locked(d, p);
		pthread_cond_broadcast(&d->cond);
	} else if (m->seq > d->stale_seq) {
		mark_broken_locked(d, "a reply nobody asked for");
	}
	pthread_mutex_unlock(&d->lock);
}

static bool irq_declared(const struct devproxy *d, uint32_t line)
{
	for (uint32_t i = 0; i < d->hello.nirqs; i++)
		if (d->hello.irqs[i].gsi == line)
			return true;
	return false;
}

static void handle(struct devproxy *d, const struct ipc_msg *m)
{
	if (m->type == IPC_HELLO) {
		on_hello(d, m);
		return;
	}
	pthread_mutex_lock(&d->lock);
	bool up = d->up, broken = d->broken;
	pthread_mutex_unlock(&d->lock);
	/* Before a HELLO, what arrives is the tail of a dead incarnation. */
	if (!up || broken)
		return;
	/* An IPC_IRQ is applied and counted in one step (touch_line). */
	bool irq = m->type == IPC_IRQ;
	if (irq)
		pthread_mutex_lock(&d->line_lock);
	switch (m->type) {
	case IPC_IO_REPLY:
		on_reply(d, m);
		break;
	case IPC_IRQ: {
		uint64_t wait_ns = policy_irq_wait(&d->irq_budget, host_now_ns());
		if (wait_ns) {
			log_once("a device sends more than %d interrupt messages a second: slowing it down",
				 DEVPROXY_IRQ_RATE);
			host_sleep_ms((unsigned)(wait_ns / 1000000 + 1));
		}
		if (!irq_declared(d, m->u.irq.line) || m->u.irq.level > 1)
			mark_broken(d, "an interrupt on a line it did not declare");
		else
			set_line_locked(d, m->u.irq.line, (int)m->u.irq.level);
		break;
	}
	case IPC_QUIT:
		log_msg("device %s asked to stop the VM", d->name);
		d->board.hooks.quit(d->board.hooks.opaque);
		break;
	case IPC_PING: {
		struct ipc_msg pong = {.type = IPC_PONG, .seq = m->seq};
		send_msg(d, &pong);
		break;
	}
	case IPC_PONG:
		break; /* liveness only */
	default: {
		char why[64];
		snprintf(why, sizeof(why), "unexpected %s", ipc_type_name(m->type));
		mark_broken(d, why);
	}
	}
	if (irq) {
		d->irqs_applied++;
		pthread_mutex_unlock(&d->line_lock);
		STATS_ADD(irq_msgs, 1);
	}
}

/* A run or batch the guest stopped adding to leaves: called by the
 * receive thread, and by vCPUs reading a shadow (a guest polling LSR for
 * input after its output is not kept waiting for the receive thread).
 * Never waits for send_lock: its holder may be blocked on a full queue
 * that only the receive thread's receiving drains, and it sends them
 * anyway. */
static void flush_stale_run(struct devproxy *d)
{
	if ((!atomic_load(&d->run_open) && !atomic_load(&d->batch_open)) ||
	    pthread_mutex_trylock(&d->send_lock))
		return;
	int rc = flush_posted_if_due(d);
	pthread_mutex_unlock(&d->send_lock);
	if (rc != IPC_OK && rc != IPC_ETIMEDOUT)
		mark_broken(d, "cannot send to it");
}

static void *receive_thread(void *arg)
{
	struct devproxy *d = arg;
	while (!atomic_load(&d->closing)) {
		struct ipc_msg m;
		char err[160];
		flush_stale_run(d);
		int wait_ms = atomic_load(&d->run_open) || atomic_load(&d->batch_open) ? RUN_POLL_MS
										      : RECV_POLL_MS;
		int rc = ipc_recv(d->chan, &m, wait_ms, err, sizeof(err));
		if (rc == IPC_OK)
			handle(d, &m);
		else if (rc == IPC_EBADMSG)
			mark_broken(d, err);
		else if (rc == IPC_ECLOSED)
			break;
		else if (rc != IPC_ETIMEDOUT)
			log_once("receiving from a device failed (%d); retrying", rc);
	}
	return NULL;
}

/* nng's thread: the device process connected (up) or went away. */
static void peer_changed(void *opaque, bool up)
{
	struct devproxy *d = opaque;
	if (up)
		return; /* nothing flows until its HELLO */
	pthread_mutex_lock(&d->lock);
	if (d->up && !d->aborted)
		log_msg("device %s went away; waiting for it to come back", d->name);
	d->up = false;
	lose_pending_locked(d);
	levels_look_again(d); /* its published lines fall */
	pthread_mutex_unlock(&d->lock);
}

/* ---- life cycle ---- */

/* closing set (here): the level thread ends at once, before the state page
 * it reads goes. */
static void level_thread_stop(struct devproxy *d)
{
	atomic_store(&d->closing, true);
	pthread_mutex_lock(&d->lock);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	levels_look_again(d);
	pthread_join(d->level_thread, NULL);
}

struct devproxy *devproxy_create(const char *name, const char *url,
				 const struct devproxy_board *board, char *err, size_t errlen)
{
	struct devproxy *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->board = *board;
	d->busdev = (struct bus_device){.opaque = d, .read = dev_read, .write = dev_write};
	d->next_seq = 1;
	pthread_mutex_init(&d->send_lock, NULL);
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->line_lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	snprintf(d->reject_reason, sizeof(d->reject_reason), "no HELLO");
	char why[160];
	if (ipc_listen(url, peer_changed, d, &d->chan, why, sizeof(why)) != IPC_OK) {
		snprintf(err, errlen, "device %s: cannot listen on %s: %s", name, url, why);
		free(d);
		return NULL;
	}
	if (pthread_create(&d->level_thread, NULL, level_main, d)) {
		snprintf(err, errlen, "device %s: cannot start its level thread", name);
		ipc_close(d->chan);
		free(d);
		return NULL;
	}
	if (pthread_create(&d->rx_thread, NULL, receive_thread, d)) {
		snprintf(err, errlen, "device %s: cannot start its receive thread", name);
		level_thread_stop(d);
		ipc_close(d->chan);
		free(d);
		return NULL;
	}
	return d;
}

const struct ipc_hello *devproxy_placed(const struct devproxy *d)
{
	return &d->hello;
}

int devproxy_wait_attached(struct devproxy *d, int timeout_ms, char *err, size_t errlen)
{
	struct timespec deadline = deadline_after_ms(timeout_ms);
	pthread_mutex_lock(&d->lock);
	int rc = 0;
	while (!d->up && !d->aborted && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&d->cond, &d->lock, &deadline);
	bool up = d->up;
	if (!up)
		snprintf(err, errlen, "device %s did not attach within %d s (%s)", d->name,
			 timeout_ms / 1000, d->reject_reason);
	pthread_mutex_unlock(&d->lock);
	return up ? 0 : -1;
}

void devproxy_abort(struct devproxy *d)
{
	pthread_mutex_lock(&d->lock);
	d->aborted = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

void devproxy_shutdown_and_destroy(struct devproxy *d)
{
	/* The receive thread notices within RECV_POLL_MS, and its sends give
	 * up as the abort says: then nobody else uses the channel. */
	devproxy_abort(d);
	atomic_store(&d->closing, true);
	pthread_join(d->rx_thread, NULL);

	/* Every wait is bounded: a device that stopped reading cannot keep the
	 * core from exiting (the launcher stops what is left). */
	pthread_mutex_lock(&d->lock);
	if (d->up) {
		pthread_mutex_unlock(&d->lock);
		/* The guest's last output may wait in a run.  A vCPU still
		 * sending gives up soon: the abort above. */
		int rc = IPC_OK;
		pthread_mutex_lock(&d->send_lock);
		if (atomic_load(&d->run_open)) {
			atomic_store(&d->run_open, false);
			if (ipc_batch_add(&d->batch, &d->run) != IPC_OK) { /* full: the run after it */
				rc = ipc_send_batch_timeout(d->chan, &d->batch, SHUTDOWN_WAIT_MS);
				batch_empty(d);
				if (rc == IPC_OK)
					rc = ipc_send_timeout(d->chan, &d->run, SHUTDOWN_WAIT_MS);
			}
		}
		if (rc == IPC_OK)
			rc = ipc_send_batch_timeout(d->chan, &d->batch, SHUTDOWN_WAIT_MS);
		batch_empty(d);
		pthread_mutex_unlock(&d->send_lock);
		struct ipc_msg m = {.type = IPC_SHUTDOWN};
		if (rc == IPC_OK)
			rc = ipc_send_timeout(d->chan, &m, SHUTDOWN_WAIT_MS);
		pthread_mutex_lock(&d->lock);
		/* The device goes once it has taken everything sent before
		 * SHUTDOWN.  Closing the socket earlier could drop what nng
		 * still holds: the guest's last output. */
		struct timespec deadline = deadline_after_ms(SHUTDOWN_WAIT_MS);
		while (rc == IPC_OK && d->up &&
		       pthread_cond_timedwait(&d->cond, &d->lock, &deadline) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&d->lock);
	level_thread_stop(d);
	ipc_close(d->chan);
	if (d->state_shm)
		host_shm_close(d->state_shm);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->line_lock);
	pthread_mutex_destroy(&d->send_lock);
	free(d);
}
