/* periodic.c - a thread that calls a function periodically (see periodic.h). */
#include "periodic.h"

#include <errno.h>
#include <time.h>

void periodic_init(struct periodic *p)
{
	*p = (struct periodic){0};
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
}

/* The absolute CLOCK_REALTIME time ms from now (pthread_cond_timedwait's). */
static struct timespec deadline_in(long ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += ms * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	return until;
}

static void *periodic_loop(void *arg)
{
	struct periodic *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->quit) {
		struct timespec until = deadline_in(p->period_ms);
		if (pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
			continue;
		p->tick(p->opaque);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int periodic_start(struct periodic *p, long period_ms, void (*tick)(void *opaque), void *opaque)
{
	p->period_ms = period_ms;
	p->tick = tick;
	p->opaque = opaque;
	if (pthread_create(&p->thread, NULL, periodic_loop, p))
		return -1;
	p->started = true;
	return 0;
}

void periodic_destroy(struct periodic *p)
{
	if (p->started) {
		pthread_mutex_lock(&p->lock);
		p->quit = true;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
		p->started = false;
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
}
