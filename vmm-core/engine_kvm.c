/* engine_kvm.c - the KVM engine (Linux): guest RAM as one memory slot (two
 * when it goes on above the MMIO hole), one
 * vCPU per thread, exits turned into bus accesses.
 *
 * Interrupts: KVM's split irqchip.  Each vCPU's LAPIC is KVM's (it also
 * takes INIT/SIPI, so application processors start in the kernel); the
 * board's IOAPIC stays in vmm-core and delivers through KVM_SIGNAL_MSI.
 * KVM reports the EOI of a level-triggered vector (KVM_EXIT_IOAPIC_EOI)
 * only for vectors its GSI routing table says come from the IOAPIC, so the
 * IOAPIC's entries are mirrored there (irq_route).
 *
 * With the LAPIC in the kernel a HLT never exits: a watcher kicks the boot
 * vCPU now and then, and one found halted with interrupts disabled stops
 * (VCPU_STOP_HALT), as on the other engines. */
#include <errno.h>
#include <fcntl.h>
#include <asm/kvm_para.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot.h"
#include "cpuid_policy.h"
#include "engine.h"
#include "kvm_vcpu.h"
#include "periodic.h"
#include "log.h"
#include "stats.h"

#define KVM_TSS_ADDR 0xfffbd000ul /* 3 pages VMX needs for real mode, above RAM */
#define RFLAGS_IF (1ull << 9)
#define CPUID_MAX_ENTRIES 512
#define IOAPIC_PINS 24         /* the board's IOAPIC: GSIs 0..23 are its pins */
#define HALT_WATCH_MS 100      /* how often the boot vCPU is checked for a final HLT */
#define APIC_BUS_KHZ 1000000u  /* KVM's LAPIC timer counts at 1 GHz */
#define QUIET_PORTS_MAX 4      /* engine_config.quiet_ports taken (the board has one) */

/* A vCPU just out of reset (what KVM leaves after a shutdown on AMD). */
#define RESET_RIP 0xfff0u
#define RESET_CS 0xf000u
#define RESET_CS_BASE 0xffff0000u

#define CPUID_TIMING_LEAF 0x40000010u /* TSC and APIC bus kHz (VMware's, read by Linux) */

struct kvm_vcpu {
	int fd; /* -1 until vcpu_init */
	struct kvm_run *run;
};

struct engine {
	int kvm_fd, vm_fd;
	size_t run_size;
	struct engine_bus bus;
	struct engine_irqchip irqchip;
	struct kvm_vcpu_threads threads; /* vCPU threads, kicks and the stop asked */
	struct kvm_cpuid2 *cpuid;  /* what this KVM supports (each vCPU's is fitted to the board) */
	bool tsc_deadline;         /* KVM_CAP_TSC_DEADLINE_TIMER */
	/* The IOAPIC's messages as KVM GSI routes (irq_route). */
	pthread_mutex_t route_lock;
	bool routed[IOAPIC_PINS];
	struct kvm_irq_routing_entry routes[IOAPIC_PINS];
	/* The halt watcher (see the top of this file). */
	struct periodic halt_watcher;
	/* An ioeventfd per quiet port (engine_config.quiet_ports), never read. */
	int quiet_fds[QUIET_PORTS_MAX];
	int nquiet;
	int ncpus;
	struct kvm_vcpu vcpus[];
};

static bool kvm_available(char *why, size_t n)
{
	int fd = kvm_open_checked("load kvm_intel/kvm_amd or use -accel soft", "-accel soft", why, n);
	if (fd < 0)
		return false;
	bool split = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_SPLIT_IRQCHIP) > 0;
	close(fd);
	if (!split) {
		snprintf(why, n, "%s has no split irqchip (KVM_CAP_SPLIT_IRQCHIP, Linux 4.4 and "
			 "later): use -accel soft", KVM_PATH);
		return false;
	}
	return true;
}

/* For `vmm-core --check`: what this KVM offers the engine. */
static int kvm_describe(char *out, size_t n)
{
	int fd = open(KVM_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (n)
			out[0] = '\0'; /* available() said why */
		return 0;
	}
	int len = snprintf(out, n,
			   "  API version: %d\n  split irqchip: %s\n  TSC-deadline timer: %s\n"
			   "  vCPUs: %d recommended, %d at most\n",
			   ioctl(fd, KVM_GET_API_VERSION, 0),
			   ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_SPLIT_IRQCHIP) > 0 ? "yes" : "no",
			   ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0 ? "yes" : "no",
			   ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS),
			   ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS));
	close(fd);
	return len;
}

static void kvm_destroy(struct engine *e)
{
	periodic_destroy(&e->halt_watcher);
	for (int i = 0; i < e->nquiet; i++)
		close(e->quiet_fds[i]);
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
	free(e->cpuid);
	kvm_vcpu_threads_destroy(&e->threads);
	pthread_mutex_destroy(&e->route_lock);
	free(e);
}

/* Kicks the boot vCPU every HALT_WATCH_MS: KVM_RUN returns EINTR and the
 * vCPU's own thread looks at its state (final_halt). */
static void halt_watch(void *opaque)
{
	struct engine *e = opaque;
	kvm_vcpu_kick(&e->threads, 0);
}

/* What this host's KVM supports (without it the vCPU has no long mode and
 * writing EFER.LME faults); NULL with err set. */
static struct kvm_cpuid2 *supported_cpuid(int kvm_fd, char *err, size_t n)
{
	for (unsigned nent = 64; nent <= CPUID_MAX_ENTRIES; nent *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (nent + 1) * sizeof(c->entries[0]));
		if (!c)
			break;
		c->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c; /* room for one more entry: the timing leaf */
		free(c);
		if (errno != E2BIG)
			break;
	}
	snprintf(err, n, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(errno));
	return NULL;
}

static struct kvm_cpuid_entry2 *cpuid_leaf(struct kvm_cpuid2 *c, uint32_t function)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == function)
			return &c->entries[i];
	return NULL;
}

/* The supported CPUID, cut to what the board provides (cpuid_policy.h),
 * and KVM's own leaf: no extended MSI destination ids, no PV unhalt. */
static void fit_cpuid(struct kvm_cpuid2 *c, const struct cpuid_policy *policy)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *leaf = &c->entries[i];
		uint32_t r[4] = {leaf->eax, leaf->ebx, leaf->ecx, leaf->edx};
		if (!cpuid_policy_fit(policy, leaf->function, r))
			continue;
		leaf->eax = r[0];
		leaf->ebx = r[1];
		leaf->ecx = r[2];
		leaf->edx = r[3];
		if (leaf->function == KVM_CPUID_FEATURES)
			/* PV_UNHALT: a PV spinlock waiter halts with interrupts
			 * disabled, which the halt watcher must read as the end. */
			leaf->eax &= ~(1u << KVM_FEATURE_MSI_EXT_DEST_ID |
				       1u << KVM_FEATURE_MIGRATION_CONTROL | 1u << KVM_FEATURE_PV_UNHALT);
		c->entries[kept++] = *leaf;
	}
	c->nent = kept;
}

/* The hypervisor timing leaf with the guest's TSC frequency, read by Linux
 * next to KVM's leaves. */
static void add_timing_leaf(struct kvm_cpuid2 *c, uint32_t tsc_khz)
{
	struct kvm_cpuid_entry2 *signature = cpuid_leaf(c, KVM_CPUID_SIGNATURE);
	if (!signature || cpuid_leaf(c, CPUID_TIMING_LEAF))
		return;
	if (signature->eax < CPUID_TIMING_LEAF)
		signature->eax = CPUID_TIMING_LEAF;
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = CPUID_TIMING_LEAF, .eax = tsc_khz, .ebx = APIC_BUS_KHZ};
}

/* 4-byte writes to the quiet ports (engine_config.quiet_ports) end in
 * KVM: each signals an eventfd nobody reads instead of leaving the guest
 * for the board, which would ignore it.  Only a saving: a port KVM does not
 * take keeps its exits. */
static void quiet_ports(struct engine *e, const struct engine_config *cfg)
{
	for (unsigned i = 0; i < cfg->nquiet_ports && e->nquiet < QUIET_PORTS_MAX; i++) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		struct kvm_ioeventfd io = {.addr = cfg->quiet_ports[i], .len = 4, .fd = fd,
					   .flags = KVM_IOEVENTFD_FLAG_PIO};
		if (fd < 0 || ioctl(e->vm_fd, KVM_IOEVENTFD, &io) < 0) {
			log_msg("writes to port %#x will leave the guest (KVM_IOEVENTFD: %s)",
				cfg->quiet_ports[i], strerror(errno));
			if (fd >= 0)
				close(fd);
			continue;
		}
		e->quiet_fds[e->nquiet++] = fd;
	}
}

static struct engine *kvm_create(const struct engine_config *cfg, char *err, size_t n)
{
	struct engine *e = calloc(1, sizeof(*e) + (size_t)cfg->cpus * sizeof(struct kvm_vcpu));
	if (!e) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	e->bus = cfg->bus;
	e->irqchip = cfg->irqchip;
	e->ncpus = cfg->cpus;
	e->kvm_fd = -1;
	e->vm_fd = -1;
	int threads_ok = kvm_vcpu_threads_init(&e->threads, e->ncpus);
	pthread_mutex_init(&e->route_lock, NULL);
	periodic_init(&e->halt_watcher);
	for (int i = 0; i < e->ncpus; i++)
		e->vcpus[i].fd = -1;
	if (threads_ok < 0) {
		snprintf(err, n, "out of memory");
		goto fail;
	}

	if (kvm_vm_open(&e->kvm_fd, &e->vm_fd, &e->run_size, err, n))
		goto fail;
	if (ioctl(e->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
	    ioctl(e->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
		snprintf(err, n, "KVM_SET_TSS_ADDR failed: %s", strerror(errno));
		goto fail;
	}
	struct kvm_enable_cap split = {.cap = KVM_CAP_SPLIT_IRQCHIP, .args = {IOAPIC_PINS}};
	if (ioctl(e->vm_fd, KVM_ENABLE_CAP, &split) < 0) {
		snprintf(err, n, "this KVM has no split irqchip (KVM_CAP_SPLIT_IRQCHIP, Linux 4.4 and "
			 "later): %s", strerror(errno));
		goto fail;
	}
	/* No virtual PMU: the board offers none, and AMD's legacy counters need
	 * no CPUID bit, so a guest would find KVM's and drive its NMI watchdog
	 * with them (in the nested rig an L2 died of nested NMIs in perf's
	 * start-up).  Before any vCPU exists; KVMs older than 5.18 keep theirs. */
	if (ioctl(e->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_PMU_CAPABILITY) & KVM_PMU_CAP_DISABLE) {
		struct kvm_enable_cap pmu = {.cap = KVM_CAP_PMU_CAPABILITY, .args = {KVM_PMU_CAP_DISABLE}};
		if (ioctl(e->vm_fd, KVM_ENABLE_CAP, &pmu) < 0)
			log_msg("cannot disable KVM's virtual PMU: %s", strerror(errno));
	}
	e->tsc_deadline = ioctl(e->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	e->cpuid = supported_cpuid(e->kvm_fd, err, n);
	if (!e->cpuid)
		goto fail;
	/* Slot 0: RAM below the MMIO hole; slot 1: the rest, above 4 GiB. */
	struct kvm_userspace_memory_region ram[2] = {
		{.slot = 0, .guest_phys_addr = 0, .memory_size = cfg->ram_size,
		 .userspace_addr = (uintptr_t)cfg->ram},
		{.slot = 1, .guest_phys_addr = cfg->high_ram_gpa, .memory_size = cfg->high_ram_size,
		 .userspace_addr = (uintptr_t)(cfg->ram + cfg->ram_size)},
	};
	for (int slot = 0; slot < (cfg->high_ram_size ? 2 : 1); slot++) {
		if (ioctl(e->vm_fd, KVM_SET_USER_MEMORY_REGION, &ram[slot]) < 0) {
			snprintf(err, n, "cannot give KVM %llu bytes of guest RAM at %#llx: %s",
				 (unsigned long long)ram[slot].memory_size,
				 (unsigned long long)ram[slot].guest_phys_addr, strerror(errno));
			goto fail;
		}
	}
	quiet_ports(e, cfg);
	kvm_vcpu_kick_handler_install();
	if (periodic_start(&e->halt_watcher, HALT_WATCH_MS, halt_watch, e)) {
		snprintf(err, n, "cannot start a thread");
		goto fail;
	}
	return e;
fail:
	kvm_destroy(e);
	return NULL;
}

/* The fitted CPUID with this vCPU's APIC id and the TSC frequency. */
static int set_cpuid(struct engine *e, int cpu, int fd, char *err, size_t n)
{
	size_t size = sizeof(*e->cpuid) + (e->cpuid->nent + 1) * sizeof(e->cpuid->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	if (!c) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	memcpy(c, e->cpuid, size);
	int tsc_khz = ioctl(fd, KVM_GET_TSC_KHZ, 0);
	struct cpuid_policy policy = {.apic_id = cpu, .tsc_deadline = e->tsc_deadline,
				      .tsc_khz = tsc_khz > 0 ? (uint32_t)tsc_khz : 0};
	fit_cpuid(c, &policy);
	if (tsc_khz > 0)
		add_timing_leaf(c, (uint32_t)tsc_khz);
	int rc = ioctl(fd, KVM_SET_CPUID2, c);
	free(c);
	if (rc < 0)
		snprintf(err, n, "KVM_SET_CPUID2 failed: %s", strerror(errno));
	return rc < 0 ? -1 : 0;
}

static struct kvm_segment kvm_segment_from(const struct boot_segment *s)
{
	return (struct kvm_segment){
		.base = s->base, .limit = s->limit, .selector = s->selector,
		.type = s->attr & 0xf, .s = s->attr >> 4 & 1, .dpl = s->attr >> 5 & 3,
		.present = s->attr >> 7 & 1, .avl = s->attr >> 12 & 1, .l = s->attr >> 13 & 1,
		.db = s->attr >> 14 & 1, .g = s->attr >> 15 & 1,
	};
}

/* The long-mode start state every engine shares (boot.h). */
static void set_long_mode(struct kvm_sregs *sregs, const struct vcpu_boot *boot)
{
	struct boot_long_mode_state s;
	boot_long_mode_state(boot, &s);
	sregs->cs = kvm_segment_from(&s.code);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = kvm_segment_from(&s.data);
	sregs->tr = kvm_segment_from(&s.tr);
	sregs->gdt.base = s.gdt_base;
	sregs->gdt.limit = s.gdt_limit;
	sregs->cr0 = s.cr0;
	sregs->cr3 = s.cr3;
	sregs->cr4 = s.cr4;
	sregs->efer = s.efer;
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
	e->threads.vcpu[cpu].run = run;
	if (set_cpuid(e, cpu, v->fd, err, n))
		return -1;
	if (boot->mode == VCPU_WAIT_SIPI) {
		/* KVM's LAPIC starts it at the Startup IPI (KVM parks every
		 * vCPU but 0 so already; said anyway). */
		struct kvm_mp_state parked = {.mp_state = KVM_MP_STATE_UNINITIALIZED};
		if (ioctl(v->fd, KVM_SET_MP_STATE, &parked) < 0) {
			snprintf(err, n, "cannot park vCPU %d for its Startup IPI: %s", cpu,
				 strerror(errno));
			return -1;
		}
		return 0;
	}

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

/* Is the vCPU halted for good: in HLT with interrupts disabled? */
static bool final_halt(const struct kvm_vcpu *v)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	return ioctl(v->fd, KVM_GET_MP_STATE, &mp) == 0 && mp.mp_state == KVM_MP_STATE_HALTED &&
	       ioctl(v->fd, KVM_GET_REGS, &regs) == 0 && !(regs.rflags & RFLAGS_IF);
}

static void stopped(struct vcpu_stop_info *stop, enum vcpu_stop reason, uint64_t rip)
{
	stop->reason = reason;
	stop->rip = rip;
}

/* A triple fault.  On AMD, KVM resets the vCPU before it reports the
 * shutdown (the VMCB is undefined after one), so the registers then read are
 * the reset state, not where the guest died: said so rather than quoting
 * the reset vector as the guest's RIP. */
static void shutdown_stop(const struct kvm_vcpu *v, int cpu, struct vcpu_stop_info *stop)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	bool known = ioctl(v->fd, KVM_GET_SREGS, &sregs) == 0 && ioctl(v->fd, KVM_GET_REGS, &regs) == 0;
	bool reset = known && regs.rip == RESET_RIP && sregs.cs.selector == RESET_CS &&
		     sregs.cs.base == RESET_CS_BASE;
	stopped(stop, VCPU_STOP_SHUTDOWN, known && !reset ? regs.rip : ~0ull);
	if (reset)
		snprintf(stop->diag, sizeof(stop->diag),
			 "triple fault (KVM_EXIT_SHUTDOWN) on vCPU %d; where is unknown: KVM reset the "
			 "vCPU before reporting it (AMD SVM does), its registers are gone",
			 cpu);
	else
		snprintf(stop->diag, sizeof(stop->diag),
			 "triple fault (KVM_EXIT_SHUTDOWN) on vCPU %d at RIP %#llx", cpu,
			 (unsigned long long)stop->rip);
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
	kvm_vcpu_thread_enter(&e->threads, cpu);

	for (;;) {
		int asked = kvm_vcpu_stop_asked(&e->threads);
		if (asked >= 0) {
			stopped(stop, (enum vcpu_stop)asked, vcpu_rip(v));
			snprintf(stop->diag, sizeof(stop->diag), "stopped by the board");
			break;
		}
		int rc = ioctl(v->fd, KVM_RUN, 0);
		STATS_ADD(exits, 1);
		if (rc < 0 && errno != EINTR && errno != EAGAIN) {
			stopped(stop, VCPU_STOP_ERROR, vcpu_rip(v));
			snprintf(stop->diag, sizeof(stop->diag), "KVM_RUN failed: %s (RIP %#llx)",
				 strerror(errno), (unsigned long long)stop->rip);
			break;
		}
		if (rc < 0) { /* a kick: from stop() (the loop head sees it) or the halt watcher */
			if (kvm_vcpu_stop_asked(&e->threads) >= 0 || cpu != 0 || !final_halt(v))
				continue;
			stopped(stop, VCPU_STOP_HALT, vcpu_rip(v));
			snprintf(stop->diag, sizeof(stop->diag), "HLT with interrupts disabled at RIP %#llx",
				 (unsigned long long)stop->rip);
			break;
		}
		struct kvm_run *run = v->run;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(e, v);
			continue;
		case KVM_EXIT_MMIO:
			kvm_vcpu_mmio_exit(&e->bus, v->run);
			continue;
		case KVM_EXIT_INTR:
			continue;
		case KVM_EXIT_IOAPIC_EOI:
			if (e->irqchip.eoi)
				e->irqchip.eoi(e->irqchip.opaque, run->eoi.vector);
			continue;
		case KVM_EXIT_SHUTDOWN:
			shutdown_stop(v, cpu, stop);
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
	kvm_vcpu_thread_leave(&e->threads, cpu);
}

static void kvm_signal_msi(struct engine *e, uint64_t address, uint32_t data)
{
	struct kvm_msi msi = {.address_lo = (uint32_t)address, .address_hi = (uint32_t)(address >> 32),
			      .data = data};
	int rc = ioctl(e->vm_fd, KVM_SIGNAL_MSI, &msi);
	if (rc == 0)
		log_once("interrupt message to APIC %u (vector %#x): no LAPIC accepted it (no such "
			 "APIC, or it is disabled), dropped",
			 (unsigned)(address >> 12) & 0xff, data & 0xff);
	else if (rc < 0)
		log_once("KVM_SIGNAL_MSI (address %#llx, data %#x) failed: %s; interrupt dropped",
			 (unsigned long long)address, data, strerror(errno));
}

static void kvm_irq_route(struct engine *e, unsigned gsi, bool masked, uint64_t address,
			  uint32_t data)
{
	if (gsi >= IOAPIC_PINS)
		return;
	pthread_mutex_lock(&e->route_lock);
	e->routed[gsi] = !masked;
	e->routes[gsi] = (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
		.u.msi = {.address_lo = (uint32_t)address, .address_hi = (uint32_t)(address >> 32),
			  .data = data}};
	/* struct kvm_irq_routing ends in a flexible array: room for a route per pin. */
	union {
		struct kvm_irq_routing table;
		uint8_t room[sizeof(struct kvm_irq_routing) +
			     IOAPIC_PINS * sizeof(struct kvm_irq_routing_entry)];
	} r = {0};
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		if (e->routed[pin])
			r.table.entries[r.table.nr++] = e->routes[pin];
	if (ioctl(e->vm_fd, KVM_SET_GSI_ROUTING, &r.table) < 0)
		log_once("KVM_SET_GSI_ROUTING failed: %s; level-triggered interrupts may stall",
			 strerror(errno));
	pthread_mutex_unlock(&e->route_lock);
}

static void kvm_stop(struct engine *e, enum vcpu_stop reason)
{
	kvm_vcpu_threads_stop(&e->threads, reason);
}

const struct engine_ops engine_kvm = {
	.name = "kvm",
	.available = kvm_available,
	.create = kvm_create,
	.vcpu_init = kvm_vcpu_init,
	.vcpu_run = kvm_vcpu_run,
	.signal_msi = kvm_signal_msi,
	.irq_route = kvm_irq_route,
	.stop = kvm_stop,
	.destroy = kvm_destroy,
	.describe = kvm_describe,
};
