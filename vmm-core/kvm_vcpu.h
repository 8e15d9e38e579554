/* kvm_vcpu.h - the vCPU threads of the Linux KVM engines (engine_kvm.c on
 * x86, engine_kvm_arm64.c on arm64): each vCPU runs KVM_RUN on its own
 * thread, and stop() (or the x86 halt watcher) makes a KVM_RUN in progress
 * return by kicking that thread with a signal (EINTR).  Their MMIO exits
 * become bus accesses the same way too, and both open their VM the same way. */
#ifndef MINIVM_KVM_VCPU_H
#define MINIVM_KVM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

#include "engine.h"

#define KVM_PATH "/dev/kvm"

/* Opens KVM_PATH for a look and checks its API version: the fd (the caller
 * closes it), or -1 with why set -- missing_hint saying what to do when
 * the file is missing, fallback (NULL: none) the other engine to offer. */
int kvm_open_checked(const char *missing_hint, const char *fallback, char *why, size_t n);

/* Opens KVM_PATH and creates a VM (machine type 0): sets *kvm_fd, *vm_fd and
 * the size of a vCPU's run area; 0, or -1 with err set (the fds the caller
 * set to -1 beforehand are closed by its own clean-up). */
int kvm_vm_open(int *kvm_fd, int *vm_fd, size_t *run_size, char *err, size_t n);

/* One vCPU's thread, as a kick reaches it. */
struct kvm_vcpu_thread {
	struct kvm_run *run; /* the vCPU's run area (its engine's mapping), NULL until mapped */
	bool in_run;         /* under kick_lock: thread is inside vcpu_run */
	pthread_t thread;
};

/* Every vCPU thread of one VM, and the stop the board asked for. */
struct kvm_vcpu_threads {
	_Atomic int stop_reason;   /* enum vcpu_stop asked by kvm_vcpu_threads_stop, or -1 */
	pthread_mutex_t kick_lock; /* a kicked thread is still inside vcpu_run */
	int count;
	struct kvm_vcpu_thread *vcpu; /* count of them */
};

/* No stop asked, no thread inside vcpu_run; -1 when out of memory (then
 * kvm_vcpu_threads_destroy is still safe). */
int kvm_vcpu_threads_init(struct kvm_vcpu_threads *t, int count);
void kvm_vcpu_threads_destroy(struct kvm_vcpu_threads *t);

/* Installs the kick signal's handler (process-wide, without SA_RESTART). */
void kvm_vcpu_kick_handler_install(void);

/* Around a vCPU's run loop, on its own thread: from enter on, a kick reaches
 * it (the kick signal is unblocked on this thread). */
void kvm_vcpu_thread_enter(struct kvm_vcpu_threads *t, int cpu);
void kvm_vcpu_thread_leave(struct kvm_vcpu_threads *t, int cpu);

/* The enum vcpu_stop asked by kvm_vcpu_threads_stop, or -1. */
int kvm_vcpu_stop_asked(struct kvm_vcpu_threads *t);

/* Makes vCPU cpu's KVM_RUN in progress (if any) return EINTR. */
void kvm_vcpu_kick(struct kvm_vcpu_threads *t, int cpu);

/* Asks every vCPU to stop with reason (the first reason asked wins): a
 * KVM_RUN about to start returns at once, one in progress returns EINTR. */
void kvm_vcpu_threads_stop(struct kvm_vcpu_threads *t, enum vcpu_stop reason);

/* A KVM_EXIT_MMIO as an access on the bus (a malformed one is logged once
 * and ignored). */
void kvm_vcpu_mmio_exit(const struct engine_bus *bus, struct kvm_run *run);

#endif
