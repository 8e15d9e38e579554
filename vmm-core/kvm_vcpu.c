/* kvm_vcpu.c - the Linux KVM engines' vCPU threads, kicks, stops and MMIO exits (see
 * kvm_vcpu.h), and the VM both open. */
#include "kvm_vcpu.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"

#define KICK_SIGNAL SIGUSR1 /* makes KVM_RUN return on a vCPU thread */

int kvm_vcpu_threads_init(struct kvm_vcpu_threads *t, int count)
{
	atomic_store(&t->stop_reason, -1);
	pthread_mutex_init(&t->kick_lock, NULL);
	t->vcpu = calloc((size_t)count, sizeof(*t->vcpu));
	t->count = t->vcpu ? count : 0;
	return t->vcpu ? 0 : -1;
}

void kvm_vcpu_threads_destroy(struct kvm_vcpu_threads *t)
{
	pthread_mutex_destroy(&t->kick_lock);
	free(t->vcpu);
	t->vcpu = NULL;
	t->count = 0;
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN with EINTR */
}

void kvm_vcpu_kick_handler_install(void)
{
	/* No SA_RESTART: the kick must make KVM_RUN fail with EINTR. */
	struct sigaction sa = {.sa_handler = kick_handler};
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);
}

void kvm_vcpu_thread_enter(struct kvm_vcpu_threads *t, int cpu)
{
	pthread_mutex_lock(&t->kick_lock);
	t->vcpu[cpu].thread = pthread_self();
	t->vcpu[cpu].in_run = true;
	pthread_mutex_unlock(&t->kick_lock);
	/* The kick signal must reach this thread even if the caller blocked it. */
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
}

void kvm_vcpu_thread_leave(struct kvm_vcpu_threads *t, int cpu)
{
	pthread_mutex_lock(&t->kick_lock);
	t->vcpu[cpu].in_run = false;
	pthread_mutex_unlock(&t->kick_lock);
}

int kvm_vcpu_stop_asked(struct kvm_vcpu_threads *t)
{
	return atomic_load(&t->stop_reason);
}

void kvm_vcpu_kick(struct kvm_vcpu_threads *t, int cpu)
{
	pthread_mutex_lock(&t->kick_lock);
	if (t->vcpu[cpu].in_run)
		pthread_kill(t->vcpu[cpu].thread, KICK_SIGNAL);
	pthread_mutex_unlock(&t->kick_lock);
}

void kvm_vcpu_threads_stop(struct kvm_vcpu_threads *t, enum vcpu_stop reason)
{
	int none = -1;
	atomic_compare_exchange_strong(&t->stop_reason, &none, (int)reason);
	pthread_mutex_lock(&t->kick_lock);
	for (int i = 0; i < t->count; i++) {
		struct kvm_vcpu_thread *v = &t->vcpu[i];
		if (v->run)
			v->run->immediate_exit = 1; /* a KVM_RUN about to start returns at once */
		if (v->in_run)
			pthread_kill(v->thread, KICK_SIGNAL); /* one in progress returns EINTR */
	}
	pthread_mutex_unlock(&t->kick_lock);
}

void kvm_vcpu_mmio_exit(const struct engine_bus *bus, struct kvm_run *run)
{
	unsigned len = run->mmio.len;
	if (len == 0 || len > sizeof(run->mmio.data)) {
		log_once("KVM gave a malformed MMIO exit (len %u); ignored", len);
		return;
	}
	uint64_t value = 0;
	if (run->mmio.is_write) {
		memcpy(&value, run->mmio.data, len);
		bus->mmio_write(bus->opaque, run->mmio.phys_addr, len, value);
	} else {
		value = bus->mmio_read(bus->opaque, run->mmio.phys_addr, len);
		memcpy(run->mmio.data, &value, len);
	}
}

int kvm_open_checked(const char *missing_hint, const char *fallback, char *why, size_t n)
{
	int fd = open(KVM_PATH, O_RDWR | O_CLOEXEC);
	const char *instead = fallback ? ", or use " : "";
	if (!fallback)
		fallback = "";
	if (fd < 0) {
		if (errno == ENOENT)
			snprintf(why, n, "%s is missing: %s", KVM_PATH, missing_hint);
		else if (errno == EACCES || errno == EPERM)
			snprintf(why, n, "%s is not permitted: add yourself to group kvm "
				 "(usermod -aG kvm $USER, then log in again)%s%s", KVM_PATH, instead, fallback);
		else
			snprintf(why, n, "cannot open %s: %s", KVM_PATH, strerror(errno));
		return -1;
	}
	int version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(why, n, "%s speaks KVM API %d, not %d%s%s", KVM_PATH, version, KVM_API_VERSION,
			 instead, fallback);
		close(fd);
		return -1;
	}
	return fd;
}

int kvm_vm_open(int *kvm_fd, int *vm_fd, size_t *run_size, char *err, size_t n)
{
	*kvm_fd = open(KVM_PATH, O_RDWR | O_CLOEXEC);
	if (*kvm_fd < 0) {
		snprintf(err, n, "cannot open %s: %s", KVM_PATH, strerror(errno));
		return -1;
	}
	long size = ioctl(*kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	*vm_fd = ioctl(*kvm_fd, KVM_CREATE_VM, 0); /* on arm64: the default 40-bit IPA space */
	if (size <= 0 || *vm_fd < 0) {
		snprintf(err, n, "KVM_CREATE_VM failed: %s", strerror(errno));
		return -1;
	}
	*run_size = (size_t)size;
	return 0;
}
