/* periodic.h - a thread that calls a function every so many milliseconds
 * until it is stopped (the hardware engines' halt watchers: engine_kvm.c,
 * engine_whp.c).  Plain pthreads, so it builds on Linux and MinGW. */
#ifndef MINIVM_PERIODIC_H
#define MINIVM_PERIODIC_H

#include <pthread.h>
#include <stdbool.h>

struct periodic {
	pthread_mutex_t lock; /* held while tick runs */
	pthread_cond_t wake;  /* signalled to make the thread quit */
	bool quit, started;
	pthread_t thread;
	long period_ms;
	void (*tick)(void *opaque);
	void *opaque;
};

/* Not started yet; periodic_destroy is safe from here on. */
void periodic_init(struct periodic *p);

/* Starts the thread: tick(opaque) every period_ms, the first one period_ms
 * from now.  -1 if no thread could be started. */
int periodic_start(struct periodic *p, long period_ms, void (*tick)(void *opaque), void *opaque);

/* Stops the thread (if started) and waits for it. */
void periodic_destroy(struct periodic *p);

#endif
