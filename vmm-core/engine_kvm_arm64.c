/* engine_kvm_arm64.c - the KVM engine on arm64 Linux hosts: guest RAM as one
 * memory slot, one vCPU per thread (KVM_ARM_VCPU_INIT with the host's
 * preferred target and PSCI 0.2), data aborts outside RAM turned into bus
 * accesses, PSCI SYSTEM_OFF / SYSTEM_RESET into the VM's end.
 *
 * The interrupt controller is KVM's in-kernel GICv3 (KVM_CREATE_DEVICE),
 * at the board's addresses (arm64_board.h), created and initialised once
 * every vCPU exists; set_irq drives its SPIs (KVM_IRQ_LINE), and the
 * architected timer's PPIs are KVM's own.  PSCI is KVM's too: CPU_ON starts
 * a secondary vCPU (created powered off), SYSTEM_OFF and SYSTEM_RESET on any
 * vCPU end or reset the whole VM.
 *
 * A guest that runs off its program takes an exception through VBAR_EL1,
 * which the flat board points at catch-all vectors that write
 * vcpu_boot.trap_gpa (KVM 6.1 turns a fetch outside RAM into a prefetch
 * abort in the guest, which would loop there forever): that is how such a
 * guest ends, promptly, with the syndrome and the faulting PC in the
 * diagnosis. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h> /* offsetof, in KVM_REG_ARM_CORE_REG */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arm64_board.h"
#include "engine.h"
#include "kvm_vcpu.h"
#include "log.h"
#include "stats.h"


/* PSTATE at entry: EL1 with SP_EL1 (EL1h), debug, SError, IRQ and FIQ
 * masked: what Linux's arm64 boot protocol asks for, and KVM's reset state. */
#define PSTATE_EL1H 0x5u
#define PSTATE_DAIF (0xfu << 6)

#define CORE_REG(field) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
			 KVM_REG_ARM_CORE_REG(field))
/* System registers by their encoding (op0, op1, CRn, CRm, op2). */
#define SYS_REG(op0, op1, crn, crm, op2) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | \
	KVM_REG_ARM64_SYSREG | ((uint64_t)(op0) << KVM_REG_ARM64_SYSREG_OP0_SHIFT) | \
	((uint64_t)(op1) << KVM_REG_ARM64_SYSREG_OP1_SHIFT) | \
	((uint64_t)(crn) << KVM_REG_ARM64_SYSREG_CRN_SHIFT) | \
	((uint64_t)(crm) << KVM_REG_ARM64_SYSREG_CRM_SHIFT) | \
	((uint64_t)(op2) << KVM_REG_ARM64_SYSREG_OP2_SHIFT))
#define REG_ESR_EL1 SYS_REG(3, 0, 5, 2, 0)
#define REG_ELR_EL1 CORE_REG(elr_el1) /* a core register in KVM's ABI, not a sysreg */
#define REG_VBAR_EL1 SYS_REG(3, 0, 12, 0, 0)

struct kvm_vcpu {
	int fd; /* -1 until vcpu_init */
	struct kvm_run *run;
	uint64_t trap_gpa; /* vcpu_boot.trap_gpa */
};

struct engine {
	int kvm_fd, vm_fd;
	size_t run_size;
	struct engine_bus bus;
	struct kvm_vcpu_threads threads; /* vCPU threads, kicks and the stop asked */
	int gic_fd; /* the in-kernel GICv3, -1 until the last vCPU exists */
	int ncpus;
	struct kvm_vcpu vcpus[];
};

static bool kvm_available(char *why, size_t n)
{
	int fd = kvm_open_checked("this kernel or machine has no KVM "
				  "(arm64 needs EL2: on QEMU, -M virt,virtualization=on)", NULL, why, n);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void kvm_destroy(struct engine *e)
{
	for (int i = 0; i < e->ncpus; i++) {
		if (e->vcpus[i].run)
			munmap(e->vcpus[i].run, e->run_size);
		if (e->vcpus[i].fd >= 0)
			close(e->vcpus[i].fd);
	}
	if (e->gic_fd >= 0)
		close(e->gic_fd);
	if (e->vm_fd >= 0)
		close(e->vm_fd);
	if (e->kvm_fd >= 0)
		close(e->kvm_fd);
	kvm_vcpu_threads_destroy(&e->threads);
	free(e);
}

static struct engine *kvm_create(const struct engine_config *cfg, char *err, size_t n)
{
	if (cfg->ram_map_from >= cfg->ram_size || cfg->ram_map_from % 4096) {
		snprintf(err, n, "RAM mapped from %#llx: not a page inside %llu bytes of RAM",
			 (unsigned long long)cfg->ram_map_from, (unsigned long long)cfg->ram_size);
		return NULL;
	}
	struct engine *e = calloc(1, sizeof(*e) + (size_t)cfg->cpus * sizeof(struct kvm_vcpu));
	if (!e) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	e->bus = cfg->bus;
	e->ncpus = cfg->cpus;
	e->kvm_fd = -1;
	e->vm_fd = -1;
	e->gic_fd = -1;
	int threads_ok = kvm_vcpu_threads_init(&e->threads, e->ncpus);
	for (int i = 0; i < e->ncpus; i++)
		e->vcpus[i].fd = -1;
	if (threads_ok < 0) {
		snprintf(err, n, "out of memory");
		goto fail;
	}

	if (kvm_vm_open(&e->kvm_fd, &e->vm_fd, &e->run_size, err, n))
		goto fail;
	struct kvm_userspace_memory_region ram = {
		.slot = 0,
		.guest_phys_addr = cfg->ram_map_from,
		.memory_size = cfg->ram_size - cfg->ram_map_from,
		.userspace_addr = (uintptr_t)(cfg->ram + cfg->ram_map_from),
	};
	if (ioctl(e->vm_fd, KVM_SET_USER_MEMORY_REGION, &ram) < 0) {
		snprintf(err, n, "cannot give KVM %llu bytes of guest RAM: %s",
			 (unsigned long long)ram.memory_size, strerror(errno));
		goto fail;
	}
	kvm_vcpu_kick_handler_install();
	return e;
fail:
	kvm_destroy(e);
	return NULL;
}

static int set_reg(int fd, uint64_t id, uint64_t value)
{
	struct kvm_one_reg reg = {.id = id, .addr = (uintptr_t)&value};
	return ioctl(fd, KVM_SET_ONE_REG, &reg);
}

/* The register's value, or 0 if KVM cannot tell (only for diagnoses). */
static uint64_t get_reg(int fd, uint64_t id)
{
	uint64_t value = 0;
	struct kvm_one_reg reg = {.id = id, .addr = (uintptr_t)&value};
	if (ioctl(fd, KVM_GET_ONE_REG, &reg) < 0)
		return 0;
	return value;
}

static int gic_attr(int fd, uint32_t group, uint64_t attr, const void *value)
{
	struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uintptr_t)value};
	return ioctl(fd, KVM_SET_DEVICE_ATTR, &a);
}

/* The GICv3 at the board's addresses, for every vCPU created so far (all of
 * them: called after the last one). */
static int create_gic(struct engine *e, char *err, size_t n)
{
	struct kvm_create_device dev = {.type = KVM_DEV_TYPE_ARM_VGIC_V3};
	if (ioctl(e->vm_fd, KVM_CREATE_DEVICE, &dev) < 0) {
		snprintf(err, n, "cannot create the in-kernel GICv3: %s (the host's GIC must be "
			 "a GICv3; on QEMU: -M virt,gic-version=3)", strerror(errno));
		return -1;
	}
	e->gic_fd = (int)dev.fd;
	uint64_t dist = ARM64_GICD_BASE, redist = ARM64_GICR_BASE;
	uint32_t nr_irqs = 128; /* SGIs, PPIs and 96 SPIs: the board's lines are below 64 */
	if (gic_attr(e->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist) < 0 ||
	    gic_attr(e->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist) < 0 ||
	    gic_attr(e->gic_fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs) < 0 ||
	    gic_attr(e->gic_fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL) < 0) {
		snprintf(err, n, "cannot set up the in-kernel GICv3: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int kvm_vcpu_init(struct engine *e, int cpu, const struct vcpu_boot *boot, char *err,
			 size_t n)
{
	if (cpu < 0 || cpu >= e->ncpus) {
		snprintf(err, n, "no vCPU %d", cpu);
		return -1;
	}
	if (boot->mode != VCPU_AARCH64 && boot->mode != VCPU_WAIT_SIPI) {
		snprintf(err, n, "vCPU %d: an arm64 vCPU starts in EL1 (or powered off), not in x86 "
			 "mode %d", cpu, (int)boot->mode);
		return -1;
	}
	struct kvm_vcpu *v = &e->vcpus[cpu];
	v->fd = ioctl(e->vm_fd, KVM_CREATE_VCPU, (unsigned long)cpu);
	if (v->fd < 0) {
		snprintf(err, n, "KVM_CREATE_VCPU %d failed: %s", cpu, strerror(errno));
		return -1;
	}
	v->run = mmap(NULL, e->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		snprintf(err, n, "cannot map vCPU %d's kvm_run: %s", cpu, strerror(errno));
		return -1;
	}
	e->threads.vcpu[cpu].run = v->run;
	struct kvm_vcpu_init init;
	if (ioctl(e->vm_fd, KVM_ARM_PREFERRED_TARGET, &init) < 0) {
		snprintf(err, n, "KVM_ARM_PREFERRED_TARGET failed: %s", strerror(errno));
		return -1;
	}
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	/* Secondaries wait, powered off, for the guest's PSCI CPU_ON. */
	if (boot->mode == VCPU_WAIT_SIPI)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
	if (ioctl(v->fd, KVM_ARM_VCPU_INIT, &init) < 0) {
		snprintf(err, n, "KVM_ARM_VCPU_INIT (target %u) failed on vCPU %d: %s", init.target,
			 cpu, strerror(errno));
		return -1;
	}
	if (cpu == e->ncpus - 1 && create_gic(e, err, n))
		return -1;
	if (boot->mode == VCPU_WAIT_SIPI)
		return 0;
	v->trap_gpa = boot->trap_gpa;
	if (set_reg(v->fd, CORE_REG(regs.pc), boot->entry) < 0 ||
	    set_reg(v->fd, CORE_REG(regs.pstate), PSTATE_EL1H | PSTATE_DAIF) < 0 ||
	    set_reg(v->fd, CORE_REG(regs.regs[0]), boot->x0) < 0 ||
	    set_reg(v->fd, REG_VBAR_EL1, boot->vbar) < 0) {
		snprintf(err, n, "KVM_SET_ONE_REG failed on vCPU %d: %s", cpu, strerror(errno));
		return -1;
	}
	return 0;
}

/* What an exception class in ESR_EL1 means, for the diagnosis. */
static const char *exception_class_name(unsigned ec)
{
	switch (ec) {
	case 0x00: return "undefined instruction";
	case 0x01: return "WFI/WFE";
	case 0x0e: return "illegal execution state";
	case 0x15: return "SVC";
	case 0x16: return "HVC";
	case 0x17: return "SMC";
	case 0x18: return "system register access";
	case 0x20: case 0x21: return "instruction abort";
	case 0x22: return "PC alignment fault";
	case 0x24: case 0x25: return "data abort";
	case 0x26: return "SP alignment fault";
	case 0x2f: return "SError";
	case 0x3c: return "BRK";
	default: return "exception";
	}
}

/* The guest wrote the board's trap address from its catch-all vectors. */
static void diagnose_trap(struct kvm_vcpu *v, int cpu, struct vcpu_stop_info *stop)
{
	uint64_t esr = get_reg(v->fd, REG_ESR_EL1);
	uint64_t elr = get_reg(v->fd, REG_ELR_EL1);
	unsigned ec = (unsigned)(esr >> 26) & 0x3f;
	stop->rip = elr;
	snprintf(stop->diag, sizeof(stop->diag),
		 "vCPU %d took an exception it has no handler for (%s, ESR_EL1 %#llx) at PC %#llx",
		 cpu, exception_class_name(ec), (unsigned long long)esr, (unsigned long long)elr);
}

static void stopped(struct vcpu_stop_info *stop, enum vcpu_stop reason, const struct kvm_vcpu *v)
{
	stop->reason = reason;
	stop->rip = get_reg(v->fd, CORE_REG(regs.pc));
}

static void kvm_stop(struct engine *e, enum vcpu_stop reason)
{
	kvm_vcpu_threads_stop(&e->threads, reason);
}

/* PSCI SYSTEM_OFF / SYSTEM_RESET: whichever vCPU asks, the VM ends or
 * resets (the others are stopped with the same reason). */
static void system_event(struct engine *e, struct kvm_run *run, int cpu, struct vcpu_stop_info *stop)
{
	switch (run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		stop->reason = VCPU_STOP_POWEROFF;
		snprintf(stop->diag, sizeof(stop->diag), "PSCI SYSTEM_OFF on vCPU %d", cpu);
		kvm_stop(e, VCPU_STOP_POWEROFF);
		return;
	case KVM_SYSTEM_EVENT_RESET:
		stop->reason = VCPU_STOP_RESET;
		snprintf(stop->diag, sizeof(stop->diag), "PSCI SYSTEM_RESET on vCPU %d", cpu);
		kvm_stop(e, VCPU_STOP_RESET);
		return;
	default:
		stop->reason = VCPU_STOP_ERROR;
		snprintf(stop->diag, sizeof(stop->diag),
			 "unexpected KVM system event %u on vCPU %d at PC %#llx",
			 run->system_event.type, cpu, (unsigned long long)stop->rip);
		return;
	}
}

static void kvm_vcpu_run(struct engine *e, int cpu, struct vcpu_stop_info *stop)
{
	memset(stop, 0, sizeof(*stop));
	if (cpu < 0 || cpu >= e->ncpus || e->vcpus[cpu].fd < 0) {
		stop->reason = VCPU_STOP_ERROR;
		snprintf(stop->diag, sizeof(stop->diag), "vCPU %d was not initialised", cpu);
		return;
	}
	struct kvm_vcpu *v = &e->vcpus[cpu];
	kvm_vcpu_thread_enter(&e->threads, cpu);

	for (;;) {
		int asked = kvm_vcpu_stop_asked(&e->threads);
		if (asked >= 0) {
			stopped(stop, (enum vcpu_stop)asked, v);
			snprintf(stop->diag, sizeof(stop->diag), "stopped by the board");
			break;
		}
		int rc = ioctl(v->fd, KVM_RUN, 0);
		STATS_ADD(exits, 1);
		if (rc < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue; /* a kick: the loop head sees why */
			int run_errno = errno;
			stopped(stop, VCPU_STOP_ERROR, v);
			snprintf(stop->diag, sizeof(stop->diag), "KVM_RUN failed on vCPU %d: %s (PC %#llx)",
				 cpu, strerror(run_errno), (unsigned long long)stop->rip);
			break;
		}
		struct kvm_run *run = v->run;
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO:
			if (v->trap_gpa && run->mmio.is_write && run->mmio.phys_addr == v->trap_gpa) {
				stop->reason = VCPU_STOP_ERROR;
				diagnose_trap(v, cpu, stop);
				break;
			}
			kvm_vcpu_mmio_exit(&e->bus, v->run);
			continue;
		case KVM_EXIT_INTR:
			continue;
		case KVM_EXIT_SYSTEM_EVENT:
			stopped(stop, VCPU_STOP_ERROR, v);
			system_event(e, run, cpu, stop);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			stopped(stop, VCPU_STOP_ERROR, v);
			snprintf(stop->diag, sizeof(stop->diag),
				 "KVM internal error (suberror %u) on vCPU %d at PC %#llx",
				 run->internal.suberror, cpu, (unsigned long long)stop->rip);
			break;
		default:
			stopped(stop, VCPU_STOP_ERROR, v);
			snprintf(stop->diag, sizeof(stop->diag),
				 "unexpected KVM exit reason %u on vCPU %d at PC %#llx",
				 run->exit_reason, cpu, (unsigned long long)stop->rip);
			break;
		}
		break;
	}
	kvm_vcpu_thread_leave(&e->threads, cpu);
}

/* Device line N is the GIC's SPI N (interrupt ID 32 + N). */
static void kvm_set_irq(struct engine *e, unsigned line, int level)
{
	if (e->gic_fd < 0 || line >= 96) {
		log_once("interrupt line %u: no such SPI on the board's GIC; ignored", line);
		return;
	}
	struct kvm_irq_level irq = {
		.irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (32 + line),
		.level = level ? 1 : 0,
	};
	if (ioctl(e->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_once("KVM_IRQ_LINE for line %u failed: %s", line, strerror(errno));
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
