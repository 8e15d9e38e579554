/* lapic.c - the software local APIC (lapic.h). */
#include "lapic.h"

#include <string.h>
#include <time.h>

#include "log.h"

/* Register offsets in the APIC page. */
enum {
	REG_ID = 0x20,
	REG_VERSION = 0x30,
	REG_TPR = 0x80,
	REG_APR = 0x90,
	REG_PPR = 0xa0,
	REG_EOI = 0xb0,
	REG_RRD = 0xc0,
	REG_LDR = 0xd0,
	REG_DFR = 0xe0,
	REG_SVR = 0xf0,
	REG_ISR = 0x100, /* 8 registers, 0x10 apart */
	REG_TMR = 0x180,
	REG_IRR = 0x200,
	REG_ESR = 0x280,
	REG_LVT_CMCI = 0x2f0,
	REG_ICR_LO = 0x300,
	REG_ICR_HI = 0x310,
	REG_LVT_TIMER = 0x320, /* ... to REG_LVT_ERROR, 0x10 apart */
	REG_LVT_ERROR = 0x370,
	REG_TIMER_INITIAL = 0x380,
	REG_TIMER_CURRENT = 0x390,
	REG_TIMER_DCR = 0x3e0,
};

enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_CMCI, LVT_COUNT };

/* Version 0x14 (integrated xAPIC), 6 LVT entries (max LVT index 5). */
#define LAPIC_VERSION 0x00050014u
#define LVT_MASKED 0x10000u
#define LVT_TIMER_PERIODIC 0x20000u /* mode bits 18:17 = 01 */
#define LVT_TIMER_MODE_MASK 0x60000u
#define SVR_ENABLED 0x100u
#define ICR_DESTMODE_LOGICAL 0x800u
#define ICR_LEVEL_TRIGGER 0x8000u
#define ICR_SHORTHAND_SHIFT 18
enum { SH_NONE, SH_SELF, SH_ALL, SH_OTHERS };

/* Bits a guest may write in each LVT (vector, delivery mode, polarity,
 * trigger, mask, timer mode). */
static const uint32_t lvt_writable[LVT_COUNT] = {
	[LVT_TIMER] = 0x700ff, [LVT_THERMAL] = 0x107ff, [LVT_PERF] = 0x107ff,
	[LVT_LINT0] = 0x1a7ff, [LVT_LINT1] = 0x1a7ff, [LVT_ERROR] = 0x100ff, [LVT_CMCI] = 0x107ff,
};

static bool vec_test(const uint32_t *bits, unsigned v)
{
	return bits[v / 32] & (1u << (v % 32));
}

static void vec_set(uint32_t *bits, unsigned v)
{
	bits[v / 32] |= 1u << (v % 32);
}

static void vec_clear(uint32_t *bits, unsigned v)
{
	bits[v / 32] &= ~(1u << (v % 32));
}

/* Highest set vector, or -1. */
static int vec_highest(const uint32_t *bits)
{
	for (int i = 7; i >= 0; i--)
		if (bits[i])
			return i * 32 + 31 - __builtin_clz(bits[i]);
	return -1;
}

static uint32_t ppr_locked(const struct lapic *l)
{
	int isrv = vec_highest(l->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
	return (l->tpr & 0xf0) >= isr_class ? l->tpr & 0xff : isr_class;
}

/* The vector the CPU would take now, or -1. */
static int deliverable_locked(const struct lapic *l)
{
	if (!(l->svr & SVR_ENABLED))
		return -1;
	int v = vec_highest(l->irr);
	if (v < 0 || ((uint32_t)v & 0xf0) <= (ppr_locked(l) & 0xf0))
		return -1;
	return v;
}

static void update_intr_locked(struct lapic *l)
{
	l->ops.intr(l->ops.opaque, deliverable_locked(l) >= 0);
}

static void accept_locked(struct lapic *l, uint8_t vector, bool level)
{
	if (vector < 16) {
		l->esr |= 0x40; /* received illegal vector */
		return;
	}
	vec_set(l->irr, vector);
	if (level)
		vec_set(l->tmr, vector);
	else
		vec_clear(l->tmr, vector);
	update_intr_locked(l);
}

/* ---- lifecycle ---- */

void lapic_init(struct lapic *l, uint32_t id, const struct lapic_ops *ops, uint64_t (*now_ns)(void),
		struct lapic *const *peers, int npeers)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->timer_cond, NULL);
	l->id = id;
	l->ops = *ops;
	l->now_ns = now_ns;
	l->peers = peers;
	l->npeers = npeers;
	lapic_reset(l);
}

void lapic_reset(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	l->tpr = l->ldr = l->esr = l->icr_lo = l->icr_hi = 0;
	l->dfr = 0xffffffffu;
	l->svr = 0xff;
	for (int i = 0; i < LVT_COUNT; i++)
		l->lvt[i] = LVT_MASKED;
	memset(l->irr, 0, sizeof(l->irr));
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->tmr, 0, sizeof(l->tmr));
	l->timer_initial = l->timer_dcr = 0;
	l->timer_armed = false;
	update_intr_locked(l);
	pthread_cond_signal(&l->timer_cond);
	pthread_mutex_unlock(&l->lock);
}

/* ---- the timer ---- */

static unsigned timer_shift(uint32_t dcr)
{
	unsigned v = (dcr & 3) | ((dcr >> 1) & 4); /* bits 0, 1 and 3 */
	return (v + 1) & 7;                        /* 0b111 divides by 1 */
}

static uint64_t timer_period_ns_locked(const struct lapic *l)
{
	return (uint64_t)l->timer_initial << timer_shift(l->timer_dcr);
}

static void timer_load_locked(struct lapic *l, uint64_t now)
{
	l->timer_start_ns = now;
	l->timer_armed = l->timer_initial != 0;
	l->timer_next_ns = now + timer_period_ns_locked(l);
	pthread_cond_signal(&l->timer_cond);
}

static uint32_t timer_current_locked(const struct lapic *l, uint64_t now)
{
	if (!l->timer_armed)
		return 0;
	uint64_t period = timer_period_ns_locked(l);
	uint64_t elapsed = now - l->timer_start_ns;
	if ((l->lvt[LVT_TIMER] & LVT_TIMER_MODE_MASK) == LVT_TIMER_PERIODIC)
		elapsed %= period;
	else if (elapsed >= period)
		return 0;
	return l->timer_initial - (uint32_t)(elapsed >> timer_shift(l->timer_dcr));
}

uint64_t lapic_timer_poll(struct lapic *l, uint64_t now)
{
	pthread_mutex_lock(&l->lock);
	if (l->timer_armed && now >= l->timer_next_ns) {
		uint32_t lvt = l->lvt[LVT_TIMER];
		if (!(lvt & LVT_MASKED))
			accept_locked(l, (uint8_t)lvt, false);
		if ((lvt & LVT_TIMER_MODE_MASK) == LVT_TIMER_PERIODIC) {
			/* Periods missed while the host was busy collapse into
			 * this one interrupt, as a real timer's would. */
			uint64_t period = timer_period_ns_locked(l);
			uint64_t missed = (now - l->timer_next_ns) / period;
			l->timer_next_ns += (missed + 1) * period;
		} else {
			l->timer_armed = false;
		}
	}
	uint64_t next = l->timer_armed ? l->timer_next_ns : UINT64_MAX;
	pthread_mutex_unlock(&l->lock);
	return next;
}

/* Sleep until the next expiry or a change.  Condition variables time out on
 * the realtime clock (winpthreads has no other): wait for the remaining
 * monotonic interval from "now" on that clock, and re-check on waking. */
static void *timer_thread(void *arg)
{
	struct lapic *l = arg;
	for (;;) {
		uint64_t next = lapic_timer_poll(l, l->now_ns());
		pthread_mutex_lock(&l->lock);
		if (l->timer_stop) {
			pthread_mutex_unlock(&l->lock);
			return NULL;
		}
		uint64_t now = l->now_ns();
		if (!l->timer_armed) {
			pthread_cond_wait(&l->timer_cond, &l->lock);
		} else if (l->timer_next_ns == next && next > now) { /* else: changed, poll again */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t wait = next - now;
			uint64_t nsec = (uint64_t)ts.tv_nsec + wait % 1000000000u;
			ts.tv_sec += (time_t)(wait / 1000000000u + nsec / 1000000000u);
			ts.tv_nsec = (long)(nsec % 1000000000u);
			pthread_cond_timedwait(&l->timer_cond, &l->lock, &ts);
		}
		pthread_mutex_unlock(&l->lock);
	}
}

int lapic_start_timer(struct lapic *l)
{
	if (pthread_create(&l->timer_thread, NULL, timer_thread, l))
		return -1;
	l->timer_thread_running = true;
	return 0;
}

void lapic_destroy(struct lapic *l)
{
	if (l->timer_thread_running) {
		pthread_mutex_lock(&l->lock);
		l->timer_stop = true;
		pthread_cond_signal(&l->timer_cond);
		pthread_mutex_unlock(&l->lock);
		pthread_join(l->timer_thread, NULL);
		l->timer_thread_running = false;
	}
	pthread_cond_destroy(&l->timer_cond);
	pthread_mutex_destroy(&l->lock);
}

/* ---- interrupt messages ---- */

void lapic_msg_from_msi(uint64_t address, uint32_t data, struct lapic_msg *m)
{
	m->dest = (uint8_t)(address >> 12);
	m->logical = address & (1u << 2);
	m->vector = (uint8_t)data;
	m->delivery = (uint8_t)((data >> 8) & 7);
	m->level = data & (1u << 15);
}

static bool addressed(struct lapic *l, const struct lapic_msg *m)
{
	if (!m->logical)
		return m->dest == 0xff || m->dest == l->id;
	/* Flat model (DFR 0xF...): LDR bits 31:24 are a mask.  The cluster
	 * model is not offered (Linux uses flat or physical for <= 8 CPUs). */
	pthread_mutex_lock(&l->lock);
	bool hit = (l->ldr >> 24) & m->dest;
	pthread_mutex_unlock(&l->lock);
	return hit;
}

static void deliver_one(struct lapic *l, const struct lapic_msg *m)
{
	switch (m->delivery) {
	case LAPIC_DM_FIXED:
	case LAPIC_DM_LOWEST:
		pthread_mutex_lock(&l->lock);
		accept_locked(l, m->vector, m->level);
		pthread_mutex_unlock(&l->lock);
		break;
	case LAPIC_DM_INIT:
		if (l->ops.startup)
			l->ops.startup(l->ops.opaque, false, 0);
		break;
	case LAPIC_DM_SIPI:
		if (l->ops.startup)
			l->ops.startup(l->ops.opaque, true, m->vector);
		break;
	default:
		log_once("lapic: delivery mode %u (NMI/SMI/ExtINT) is not modelled: dropped",
			 m->delivery);
		break;
	}
}

void lapic_route(struct lapic *const *peers, int npeers, const struct lapic_msg *m)
{
	for (int i = 0; i < npeers; i++) {
		if (!addressed(peers[i], m))
			continue;
		deliver_one(peers[i], m);
		if (m->delivery == LAPIC_DM_LOWEST)
			return;
	}
}

/* An ICR write: the IPI goes out once the source's lock is released. */
static void send_ipi(struct lapic *l, uint32_t lo, uint32_t hi)
{
	struct lapic_msg m = {
		.vector = (uint8_t)lo,
		.delivery = (uint8_t)((lo >> 8) & 7),
		.dest = (uint8_t)(hi >> 24),
		.logical = lo & ICR_DESTMODE_LOGICAL,
		.level = lo & ICR_LEVEL_TRIGGER,
	};
	/* An INIT level de-assert (level trigger, level bit 14 clear) is a
	 * no-op on every APIC since the Pentium 4. */
	if (m.delivery == LAPIC_DM_INIT && m.level && !(lo & 0x4000u))
		return;
	m.level = m.level && (m.delivery == LAPIC_DM_FIXED || m.delivery == LAPIC_DM_LOWEST);
	switch ((lo >> ICR_SHORTHAND_SHIFT) & 3) {
	case SH_NONE:
		lapic_route(l->peers, l->npeers, &m);
		break;
	case SH_SELF:
		deliver_one(l, &m);
		break;
	case SH_ALL:
	case SH_OTHERS:
		for (int i = 0; i < l->npeers; i++)
			if (l->peers[i] != l || ((lo >> ICR_SHORTHAND_SHIFT) & 3) == SH_ALL)
				deliver_one(l->peers[i], &m);
		break;
	}
}

int lapic_ack(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	int v = deliverable_locked(l);
	if (v >= 0) {
		vec_clear(l->irr, (unsigned)v);
		vec_set(l->isr, (unsigned)v);
	}
	update_intr_locked(l);
	pthread_mutex_unlock(&l->lock);
	return v;
}

/* ---- registers ---- */

static bool bad_access(uint32_t offset, unsigned size, const char *what)
{
	if (size == 4 && offset % 16 == 0 && offset < LAPIC_MMIO_SIZE)
		return false;
	log_once("lapic: %u-byte %s at offset %#x (registers are 32-bit, 16-byte aligned): ignored",
		 size, what, offset);
	return true;
}

uint32_t lapic_read(struct lapic *l, uint32_t offset, unsigned size)
{
	if (bad_access(offset, size, "read"))
		return 0;
	pthread_mutex_lock(&l->lock);
	uint32_t v = 0;
	if (offset >= REG_ISR && offset < REG_ISR + 0x80)
		v = l->isr[(offset - REG_ISR) / 16];
	else if (offset >= REG_TMR && offset < REG_TMR + 0x80)
		v = l->tmr[(offset - REG_TMR) / 16];
	else if (offset >= REG_IRR && offset < REG_IRR + 0x80)
		v = l->irr[(offset - REG_IRR) / 16];
	else if (offset >= REG_LVT_TIMER && offset <= REG_LVT_ERROR)
		v = l->lvt[(offset - REG_LVT_TIMER) / 16];
	else {
		switch (offset) {
		case REG_ID: v = l->id << 24; break;
		case REG_VERSION: v = LAPIC_VERSION; break;
		case REG_TPR: v = l->tpr; break;
		case REG_PPR: v = ppr_locked(l); break;
		case REG_LDR: v = l->ldr; break;
		case REG_DFR: v = l->dfr; break;
		case REG_SVR: v = l->svr; break;
		case REG_ESR: v = l->esr; break;
		case REG_LVT_CMCI: v = l->lvt[LVT_CMCI]; break;
		case REG_ICR_LO: v = l->icr_lo; break; /* delivery status: always idle */
		case REG_ICR_HI: v = l->icr_hi; break;
		case REG_TIMER_INITIAL: v = l->timer_initial; break;
		case REG_TIMER_CURRENT: v = timer_current_locked(l, l->now_ns()); break;
		case REG_TIMER_DCR: v = l->timer_dcr; break;
		default: v = 0; break; /* APR, RRD, reserved */
		}
	}
	pthread_mutex_unlock(&l->lock);
	return v;
}

static void write_lvt_locked(struct lapic *l, int index, uint32_t value)
{
	value &= lvt_writable[index];
	if (!(l->svr & SVR_ENABLED))
		value |= LVT_MASKED; /* a software-disabled APIC keeps its LVTs masked */
	uint32_t old = l->lvt[index];
	l->lvt[index] = value;
	/* A timer mode change restarts the count from the initial value. */
	if (index == LVT_TIMER && ((old ^ value) & LVT_TIMER_MODE_MASK) && l->timer_armed)
		timer_load_locked(l, l->now_ns());
}

void lapic_write(struct lapic *l, uint32_t offset, unsigned size, uint32_t value)
{
	if (bad_access(offset, size, "write"))
		return;
	int eoi_vector = -1;
	bool ipi = false;
	uint32_t icr_lo = 0, icr_hi = 0;
	pthread_mutex_lock(&l->lock);
	if (offset >= REG_LVT_TIMER && offset <= REG_LVT_ERROR) {
		write_lvt_locked(l, (int)(offset - REG_LVT_TIMER) / 16, value);
	} else {
		switch (offset) {
		case REG_TPR:
			l->tpr = value & 0xff;
			update_intr_locked(l);
			break;
		case REG_EOI: {
			int v = vec_highest(l->isr);
			if (v >= 0) {
				vec_clear(l->isr, (unsigned)v);
				if (vec_test(l->tmr, (unsigned)v)) {
					vec_clear(l->tmr, (unsigned)v);
					eoi_vector = v;
				}
			}
			update_intr_locked(l);
			break;
		}
		case REG_LDR: l->ldr = value & 0xff000000u; break;
		case REG_DFR: l->dfr = value | 0x0fffffffu; break;
		case REG_SVR:
			l->svr = value & 0x3ff;
			if (!(l->svr & SVR_ENABLED))
				for (int i = 0; i < LVT_COUNT; i++)
					l->lvt[i] |= LVT_MASKED;
			update_intr_locked(l);
			break;
		case REG_ESR: l->esr = 0; break;
		case REG_LVT_CMCI: write_lvt_locked(l, LVT_CMCI, value); break;
		case REG_ICR_HI: l->icr_hi = value & 0xff000000u; break;
		case REG_ICR_LO:
			l->icr_lo = value & 0xccfffu; /* delivery status (bit 12) reads idle */
			ipi = true;
			icr_lo = l->icr_lo;
			icr_hi = l->icr_hi;
			break;
		case REG_TIMER_INITIAL:
			l->timer_initial = value;
			timer_load_locked(l, l->now_ns());
			break;
		case REG_TIMER_DCR: {
			/* A running count restarts at the new rate (guests set
			 * the divider before loading the count anyway). */
			l->timer_dcr = value & 0xb;
			if (l->timer_armed)
				timer_load_locked(l, l->now_ns());
			break;
		}
		default:
			break; /* read-only or reserved */
		}
	}
	pthread_mutex_unlock(&l->lock);
	if (eoi_vector >= 0 && l->ops.eoi)
		l->ops.eoi(l->ops.opaque, (uint8_t)eoi_vector);
	if (ipi)
		send_ipi(l, icr_lo, icr_hi);
}
