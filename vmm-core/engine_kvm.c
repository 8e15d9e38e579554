/* engine_kvm.c - the KVM engine (Linux): guest RAM as one memory slot, one
 * vCPU per thread, exits turned into bus accesses.
 *
 * Not connected to the board's interrupt controllers yet (engine.h says
 * why: Linux cannot run on this PVM host anyway): HLT always returns to us
 * and set_irq only records the line.  The way there is KVM's split irqchip
 * with the board's userspace IOAPIC delivering through KVM_SIGNAL_MSI. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"
#include "stats.h"

#define KVM_PATH "/dev/kvm"
#define KVM_TSS_ADDR 0xfffbd000ul /* 3 pages VMX needs for real mode, above RAM */
#define KICK_SIGNAL SIGUSR1       /* makes KVM_RUN return on a vCPU thread */
#define RFLAGS_IF (1ull << 9)
#define CPUID_MAX_ENTRIES 512

struct kvm_vcpu {
	int fd; /* -1 until vcpu_init */
	struct kvm_run *run;
	bool thread_known; /* under kick_lock: thread is inside vcpu_run */
	pthread_t thread;
};

struct engine {
	int kvm_fd, vm_fd;
	size_t run_size;
	struct engine_bus bus;
	_Atomic int stop_reason; /* enum vcpu_stop asked by stop(), or -1 */
	pthread_mutex_t kick_lock; /* a kicked thread is still inside vcpu_run */
	_Atomic uint32_t irq_levels; /* one bit per line (the board has 24), recorded only */
	int ncpus;
	struct kvm_vcpu vcpus[];
};

static bool kvm_available(char *why, size_t n)
{
	int fd = open(KVM_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			snprintf(why, n, "%s is missing: load kvm_intel/kvm_amd or use -accel soft",
				 KVM_PATH);
		else if (errno == EACCES || errno == EPERM)
			snprintf(why, n, "%s is not permitted: add yourself to group kvm "
				 "(usermod -aG kvm $USER, then log in again) or use -accel soft",
				 KVM_PATH);
		else
			snprintf(why, n, "cannot open %s: %s", KVM_PATH, strerror(errno));
		return false;
	}
	int version = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (version != KVM_API_VERSION) {
		snprintf(why, n, "%s speaks KVM API %d, not %d", KVM_PATH, version, KVM_API_VERSION);
		return false;
	}
	return true;
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN with EINTR */
}

static void kvm_destroy(struct engine *e)
{
	for (int i = 0; i < e->ncpus; i++) {
		if (e->vcpus[i].run)
			munmap(e->vcpus[i].run, e->run_size);
		if (e->vcpus[i].fd >= 0)
			close(e->vcpus[i].fd);
	}
	if (e->vm_fd >= 0)
		close(e->vm_fd);
	if (e->kvm_fd >= 0)
		close(e->kvm_fd);
	pthread_mutex_destroy(&e->kick_lock);
	free(e);
}

static struct engine *kvm_create(const struct engine_config *cfg, char *err, size_t n)
{
	struct engine *e = calloc(1, sizeof(*e) + (size_t)cfg->cpus * sizeof(struct kvm_vcpu));
	if (!e) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	e->bus = cfg->bus;
	e->ncpus = cfg->cpus;
	e->vm_fd = -1;
	atomic_store(&e->stop_reason, -1);
	pthread_mutex_init(&e->kick_lock, NULL);
	for (int i = 0; i < e->ncpus; i++)
		e->vcpus[i].fd = -1;

	e->kvm_fd = open(KVM_PATH, O_RDWR | O_CLOEXEC);
	if (e->kvm_fd < 0) {
		snprintf(err, n, "cannot open %s: %s", KVM_PATH, strerror(errno));
		goto fail;
	}
	long run_size = ioctl(e->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	e->vm_fd = ioctl(e->kvm_fd, KVM_CREATE_VM, 0);
	if (run_size <= 0 || e->vm_fd < 0) {
		snprintf(err, n, "KVM_CREATE_VM failed: %s", strerror(errno));
		goto fail;
	}
	e->run_size = (size_t)run_size;
	if (ioctl(e->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
	    ioctl(e->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
		snprintf(err, n, "KVM_SET_TSS_ADDR failed: %s", strerror(errno));
		goto fail;
	}
	struct kvm_userspace_memory_region ram = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = cfg->ram_size,
		.userspace_addr = (uintptr_t)cfg->ram,
	};
	if (ioctl(e->vm_fd, KVM_SET_USER_MEMORY_REGION, &ram) < 0) {
		snprintf(err, n, "cannot give KVM %llu bytes of guest RAM: %s",
			 (unsigned long long)cfg->ram_size, strerror(errno));
		goto fail;
	}
	/* No SA_RESTART: the kick must make KVM_RUN fail with EINTR. */
	struct sigaction sa = {.sa_handler = kick_handler};
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);
	return e;
fail:
	kvm_destroy(e);
	return NULL;
}

/* What this host's KVM supports, as the guest's CPUID: without it the vCPU
 * has no long mode and writing EFER.LME faults. */
static int set_cpuid(struct engine *e, int fd, char *err, size_t n)
{
	for (unsigned nent = 64; nent <= CPUID_MAX_ENTRIES; nent *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c)
			break;
		c->nent = nent;
		if (ioctl(e->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			int rc = ioctl(fd, KVM_SET_CPUID2, c);
			free(c);
			if (rc < 0)
				snprintf(err, n, "KVM_SET_CPUID2 failed: %s", strerror(errno));
			return rc < 0 ? -1 : 0;
		}
		free(c);
		if (errno != E2BIG)
			break;
	}
	snprintf(err, n, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(errno));
	return -1;
}

static void set_long_mode(struct kvm_sregs *s, const struct vcpu_boot *boot)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 0xb, /* code, read, accessed */
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0x3, /* data, write, accessed */
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	s->cs = code;
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	/* VM entry wants a usable TR even though nothing here switches tasks. */
	s->tr = (struct kvm_segment){.limit = 0x67, .type = 0xb, .present = 1};
	s->gdt.base = boot->gdt_base;
	s->gdt.limit = boot->gdt_limit;
	s->cr3 = boot->cr3;
	s->cr4 = 1u << 5;                                            /* PAE */
	s->cr0 = (1u << 0) | (1u << 4) | (1u << 5) | (1u << 16) | (1u << 31); /* PE ET NE WP PG */
	s->efer = (1u << 8) | (1u << 10);                            /* LME LMA */
}

static int kvm_vcpu_init(struct engine *e, int cpu, const struct vcpu_boot *boot, char *err,
			 size_t n)
{
	if (cpu < 0 || cpu >= e->ncpus || e->vcpus[cpu].fd >= 0) {
		snprintf(err, n, "bad vCPU number %d", cpu);
		return -1;
	}
	struct kvm_vcpu *v = &e->vcpus[cpu];
	v->fd = ioctl(e->vm_fd, KVM_CREATE_VCPU, cpu);
	if (v->fd < 0) {
		snprintf(err, n, "KVM_CREATE_VCPU failed: %s", strerror(errno));
		return -1;
	}
	void *run = mmap(NULL, e->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED) {
		snprintf(err, n, "cannot map the vCPU's run area: %s", strerror(errno));
		return -1;
	}
	v->run = run;
	if (set_cpuid(e, v->fd, err, n))
		return -1;

	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(err, n, "KVM_GET_SREGS failed: %s", strerror(errno));
		return -1;
	}
	struct kvm_regs regs = {.rflags = 0x2, .rip = boot->entry, .rsp = boot->rsp, .rsi = boot->rsi};
	if (boot->mode == VCPU_LONG64) {
		set_long_mode(&sregs, boot);
	} else {
		/* Out of reset CS is f000 with base ffff0000: make it 0000:entry. */
		sregs.cs.selector = 0;
		sregs.cs.base = 0;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
		snprintf(err, n, "cannot set the vCPU's start state: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static uint64_t vcpu_rip(const struct kvm_vcpu *v)
{
	struct kvm_regs regs;
	return ioctl(v->fd, KVM_GET_REGS, &regs) == 0 ? regs.rip : ~0ull;
}

/* Port I/O, including string I/O: `count` items of `size` bytes in the run
 * area.  The layout comes from the kernel, checked anyway. */
static void handle_io(struct engine *e, struct kvm_vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned size = run->io.size;
	uint64_t off = run->io.data_offset, len = (uint64_t)size * run->io.count;
	if ((size != 1 && size != 2 && size != 4) || off > e->run_size || len > e->run_size - off) {
		log_once("KVM gave a malformed I/O exit (port %#x, size %u); ignored", run->io.port,
			 size);
		return;
	}
	uint8_t *data = (uint8_t *)run + off;
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		uint64_t value = 0;
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			memcpy(&value, data, size); /* x86 host: little-endian like the guest */
			e->bus.pio_write(e->bus.opaque, run->io.port, size, value);
		} else {
			value = e->bus.pio_read(e->bus.opaque, run->io.port, size);
			memcpy(data, &value, size);
		}
	}
}

static void handle_mmio(struct engine *e, struct kvm_vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned len = run->mmio.len;
	if (len == 0 || len > sizeof(run->mmio.data)) {
		log_once("KVM gave a malformed MMIO exit (len %u); ignored", len);
		return;
	}
	uint64_t value = 0;
	if (run->mmio.is_write) {
		memcpy(&value, run->mmio.data, len);
		e->bus.mmio_write(e->bus.opaque, run->mmio.phys_addr, len, value);
	} else {
		value = e->bus.mmio_read(e->bus.opaque, run->mmio.phys_addr, len);
		memcpy(run->mmio.data, &value, len);
	}
}

static bool interrupts_enabled(const struct kvm_vcpu *v)
{
	struct kvm_regs regs;
	return ioctl(v->fd, KVM_GET_REGS, &regs) == 0 && (regs.rflags & RFLAGS_IF);
}

static void stopped(struct vcpu_stop_info *stop, enum vcpu_stop reason, uint64_t rip)
{
	stop->reason = reason;
	stop->rip = rip;
}

static void kvm_vcpu_run(struct engine *e, int cpu, struct vcpu_stop_info *stop)
{
	memset(stop, 0, sizeof(*stop));
	if (cpu < 0 || cpu >= e->ncpus || e->vcpus[cpu].fd < 0) {
		stopped(stop, VCPU_STOP_ERROR, 0);
		snprintf(stop->diag, sizeof(stop->diag), "vCPU %d was not initialised", cpu);
		return;
	}
	struct kvm_vcpu *v = &e->vcpus[cpu];
	pthread_mutex_lock(&e->kick_lock);
	v->thread = pthread_self();
	v->thread_known = true;
	pthread_mutex_unlock(&e->kick_lock);
	/* The kick signal must reach this thread even if the caller blocked it. */
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	for (;;) {
		int asked = atomic_load(&e->stop_reason);
		if (asked >= 0) {
			stopped(stop, (enum vcpu_stop)asked, vcpu_rip(v));
			snprintf(stop->diag, sizeof(stop->diag), "stopped by the board");
			break;
		}
		int rc = ioctl(v->fd, KVM_RUN, 0);
		STATS_ADD(exits, 1);
		if (rc < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue; /* a kick: the loop head sees why */
			stopped(stop, VCPU_STOP_ERROR, vcpu_rip(v));
			snprintf(stop->diag, sizeof(stop->diag), "KVM_RUN failed: %s (RIP %#llx)",
				 strerror(errno), (unsigned long long)stop->rip);
			break;
		}
		struct kvm_run *run = v->run;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(e, v);
			continue;
		case KVM_EXIT_MMIO:
			handle_mmio(e, v);
			continue;
		case KVM_EXIT_INTR:
			continue;
		case KVM_EXIT_HLT:
			if (interrupts_enabled(v))
				log_msg("vCPU %d: HLT with interrupts enabled, but no interrupt "
					"controller exists yet: stopping", cpu);
			stopped(stop, VCPU_STOP_HALT, vcpu_rip(v));
			snprintf(stop->diag, sizeof(stop->diag), "HLT at RIP %#llx",
				 (unsigned long long)stop->rip);
			break;
		case KVM_EXIT_SHUTDOWN:
			stopped(stop, VCPU_STOP_SHUTDOWN, vcpu_rip(v));
			snprintf(stop->diag, sizeof(stop->diag),
				 "triple fault (KVM_EXIT_SHUTDOWN) on vCPU %d at RIP %#llx", cpu,
				 (unsigned long long)stop->rip);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			stopped(stop, VCPU_STOP_ERROR, vcpu_rip(v));
			snprintf(stop->diag, sizeof(stop->diag),
				 "KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason "
				 "%#llx) on vCPU %d at RIP %#llx",
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason, cpu,
				 (unsigned long long)stop->rip);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			stopped(stop, VCPU_STOP_ERROR, vcpu_rip(v));
			snprintf(stop->diag, sizeof(stop->diag),
				 "KVM internal error (KVM_EXIT_INTERNAL_ERROR, suberror %u%s) on vCPU %d "
				 "at RIP %#llx",
				 run->internal.suberror,
				 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
					 ? ": instruction emulation failed"
					 : "",
				 cpu, (unsigned long long)stop->rip);
			break;
		default:
			stopped(stop, VCPU_STOP_ERROR, vcpu_rip(v));
			snprintf(stop->diag, sizeof(stop->diag),
				 "unexpected KVM exit reason %u on vCPU %d at RIP %#llx",
				 run->exit_reason, cpu, (unsigned long long)stop->rip);
			break;
		}
		break;
	}
	pthread_mutex_lock(&e->kick_lock);
	v->thread_known = false;
	pthread_mutex_unlock(&e->kick_lock);
}

static void kvm_set_irq(struct engine *e, unsigned gsi, int level)
{
	if (gsi >= 32)
		return;
	uint32_t bit = 1u << gsi;
	if (level)
		atomic_fetch_or(&e->irq_levels, bit);
	else
		atomic_fetch_and(&e->irq_levels, ~bit);
	if (level)
		log_once("interrupt line %u raised, but there is no interrupt controller yet: "
			 "recorded only", gsi);
}

static void kvm_stop(struct engine *e, enum vcpu_stop reason)
{
	int none = -1;
	atomic_compare_exchange_strong(&e->stop_reason, &none, (int)reason);
	pthread_mutex_lock(&e->kick_lock);
	for (int i = 0; i < e->ncpus; i++) {
		struct kvm_vcpu *v = &e->vcpus[i];
		if (v->run)
			v->run->immediate_exit = 1; /* a KVM_RUN about to start returns at once */
		if (v->thread_known)
			pthread_kill(v->thread, KICK_SIGNAL); /* one in progress returns EINTR */
	}
	pthread_mutex_unlock(&e->kick_lock);
}

const struct engine_ops engine_kvm = {
	.name = "kvm",
	.available = kvm_available,
	.create = kvm_create,
	.vcpu_init = kvm_vcpu_init,
	.vcpu_run = kvm_vcpu_run,
	.set_irq = kvm_set_irq,
	.stop = kvm_stop,
	.destroy = kvm_destroy,
};
