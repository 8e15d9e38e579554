/* engine_soft.c - the software CPU (vmm-core/soft) behind the engine
 * interface: guest RAM and the board's buses go to the CPU core as they are;
 * each vCPU runs the interpreter on its caller's thread.
 *
 * Interrupts: each vCPU has a software LAPIC (board/lapic.c) on the CPU
 * core's interrupt input (struct softcpu: intr_line, intr_ack); the board's
 * IOAPIC reaches them through signal_msi.  The LAPIC page (0xFEE00000) is
 * per vCPU, so MMIO there goes to the LAPIC of the vCPU on this thread. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot.h"
#include "cpu.h"
#include "engine.h"
#include "host.h"
#include "jit.h"
#include "lapic.h"
#include "log.h"
#include "stats.h"

#define APIC_BASE_BSP 0x100ull          /* IA32_APIC_BASE bit 8 */
#define APIC_BASE_ENABLE 0x800ull       /* IA32_APIC_BASE bit 11 */
#define APIC_BASE_ADDR 0xffffff000ull   /* its page address bits */

/* A vCPU's LAPIC and what its callbacks need to reach. */
struct soft_apic {
	struct engine *e;
	int cpu;
	struct lapic lapic;
	/* An application processor's start-up: the Startup IPI arrives on the
	 * sender's thread and is taken over by this vCPU's own thread. */
	pthread_mutex_t start_lock;
	pthread_cond_t start_cond;
	bool wait_for_sipi; /* parked in the wait-for-SIPI state */
	int sipi_vector;    /* the SIPI received while parked, or -1 */
};

struct engine {
	struct softcpu_machine machine;
	_Atomic int stop_reason;     /* enum vcpu_stop asked by stop(), or -1 */
	int ncpus;
	bool *booted;
	struct softcpu *cpus; /* all created with the engine, so stop() can reach them */
	struct soft_apic *apics;   /* one per vCPU */
	struct lapic **lapics;     /* &apics[i].lapic, for IPI and MSI routing */
	struct engine_bus bus;     /* the board's MMIO, for what is not a LAPIC */
	struct engine_irqchip irqchip;
};

/* The vCPU running on this thread: the LAPIC page is each vCPU's own. */
static __thread struct soft_apic *current_apic;

static bool soft_available(char *why, size_t n)
{
	(void)why;
	(void)n;
	return true;
}

static void soft_destroy(struct engine *e)
{
	if (!e)
		return;
	if (e->apics)
		for (int i = 0; i < e->ncpus; i++) {
			lapic_destroy(&e->apics[i].lapic);
			pthread_mutex_destroy(&e->apics[i].start_lock);
			pthread_cond_destroy(&e->apics[i].start_cond);
		}
	if (e->cpus)
		for (int i = 0; i < e->ncpus; i++) {
			uint64_t translated, full_flushes;
			softcpu_jit_counts(&e->cpus[i], &translated, &full_flushes);
			STATS_ADD(jit_blocks, translated);
			STATS_ADD(jit_full_flushes, full_flushes);
			softcpu_destroy(&e->cpus[i]);
		}
	free(e->apics);
	free(e->lapics);
	free(e->cpus);
	free(e->booted);
	softcpu_machine_destroy(&e->machine);
	free(e);
}

/* Is gpa in the APIC page of the vCPU on this thread (APIC_BASE MSR, when
 * the APIC is enabled there)?  Only vCPU threads make MMIO accesses. */
static bool in_lapic_page(const struct soft_apic *a, uint64_t gpa)
{
	uint64_t base = a->e->cpus[a->cpu].apic_base;
	return (base & APIC_BASE_ENABLE) && (gpa & ~0xfffull) == (base & APIC_BASE_ADDR);
}

static uint64_t soft_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
	struct soft_apic *a = current_apic;
	if (in_lapic_page(a, gpa))
		return lapic_read(&a->lapic, (uint32_t)(gpa & 0xfff), size);
	return a->e->bus.mmio_read(opaque, gpa, size);
}

static void soft_mmio_write(void *opaque, uint64_t gpa, unsigned size, uint64_t value)
{
	struct soft_apic *a = current_apic;
	if (in_lapic_page(a, gpa))
		lapic_write(&a->lapic, (uint32_t)(gpa & 0xfff), size, (uint32_t)value);
	else
		a->e->bus.mmio_write(opaque, gpa, size, value);
}

static void apic_intr(void *opaque, int level)
{
	struct soft_apic *a = opaque;
	softcpu_set_intr(&a->e->cpus[a->cpu], level);
}

static void apic_eoi(void *opaque, uint8_t vector)
{
	struct soft_apic *a = opaque;
	if (a->e->irqchip.eoi)
		a->e->irqchip.eoi(a->e->irqchip.opaque, vector);
}

/* INIT and SIPI for a vCPU: only a parked one starts (at its first SIPI);
 * INIT of a running vCPU (Linux does it only to take a CPU offline for
 * good) is not modelled. */
static void apic_startup(void *opaque, bool sipi, uint8_t vector)
{
	struct soft_apic *a = opaque;
	pthread_mutex_lock(&a->start_lock);
	if (sipi && a->wait_for_sipi && a->sipi_vector < 0) {
		a->sipi_vector = vector;
		pthread_cond_broadcast(&a->start_cond);
	} else if (!sipi && !a->wait_for_sipi) {
		log_once("soft engine: INIT of running vCPU %d ignored", a->cpu);
	}
	pthread_mutex_unlock(&a->start_lock);
}

static int apic_ack(void *opaque)
{
	return lapic_ack(opaque);
}

/* One LAPIC per vCPU (APIC id = vCPU number) on the CPU's interrupt input,
 * its timer running on its own thread; -1 if out of memory or threads. */
static int create_lapics(struct engine *e)
{
	struct soft_apic *apics = calloc((size_t)e->ncpus, sizeof(*apics));
	e->lapics = calloc((size_t)e->ncpus, sizeof(*e->lapics));
	if (!apics || !e->lapics) {
		free(apics);
		return -1;
	}
	for (int i = 0; i < e->ncpus; i++) {
		struct soft_apic *a = &apics[i];
		a->e = e;
		a->cpu = i;
		pthread_mutex_init(&a->start_lock, NULL);
		pthread_cond_init(&a->start_cond, NULL);
		a->sipi_vector = -1;
		e->lapics[i] = &a->lapic;
		struct lapic_ops ops = {.opaque = a, .intr = apic_intr, .eoi = apic_eoi, .startup = apic_startup};
		lapic_init(&a->lapic, (uint32_t)i, &ops, host_now_ns, e->lapics, e->ncpus);
		struct softcpu *c = &e->cpus[i];
		c->intr_opaque = &a->lapic;
		c->intr_ack = apic_ack;
		c->lapic_present = true;
		c->apic_id = (uint8_t)i;
	}
	e->apics = apics; /* from here soft_destroy tears them down */
	for (int i = 0; i < e->ncpus; i++)
		if (lapic_start_timer(&apics[i].lapic) < 0)
			return -1;
	return 0;
}

/* Whether the JIT's executable memory is mapped: after the sandbox is
 * entered nothing may try to map it (a forbidden system call). */
static bool jit_reserved;

static int soft_before_sandbox(bool jit, char *err, size_t n)
{
	if (!jit)
		return 0;
	char why[160];
	if (softcpu_jit_reserve(why, sizeof(why)) < 0) {
		snprintf(err, n, "soft engine: %s", why);
		return -1;
	}
	jit_reserved = true;
	return 0;
}

/* For `vmm-core --check`: whether the JIT runs here (its executable memory
 * can be mapped: a Windows policy or an SELinux rule may forbid it). */
static int soft_describe(char *out, size_t n)
{
	char why[160];
	if (softcpu_jit_reserve(why, sizeof(why)) < 0)
		return snprintf(out, n, "  JIT: no (%s): the engine interprets\n", why);
	return snprintf(out, n, "  JIT: yes, the default (--jit off interprets)\n");
}

static struct engine *soft_create(const struct engine_config *cfg, char *err, size_t n)
{
	if (cfg->cpus < 1 || !cfg->ram || cfg->ram_size == 0) {
		snprintf(err, n, "soft engine: bad configuration (%d vCPUs, %llu bytes of RAM)", cfg->cpus,
			 (unsigned long long)cfg->ram_size);
		return NULL;
	}
	struct engine *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, n, "soft engine: out of memory");
		return NULL;
	}
	atomic_init(&e->stop_reason, -1);
	if (softcpu_machine_init(&e->machine, cfg->ram, cfg->ram_size) < 0) {
		free(e);
		snprintf(err, n, "soft engine: out of memory");
		return NULL;
	}
	struct softcpu_machine *m = &e->machine;
	if (cfg->high_ram_size &&
	    softcpu_machine_add_high_ram(m, cfg->high_ram_gpa, cfg->high_ram_size) < 0) {
		softcpu_machine_destroy(m);
		free(e);
		snprintf(err, n, "soft engine: out of memory for %llu bytes of RAM above 4 GiB",
			 (unsigned long long)cfg->high_ram_size);
		return NULL;
	}
	m->bus_opaque = cfg->bus.opaque;
	m->pio_read = cfg->bus.pio_read;
	m->pio_write = cfg->bus.pio_write;
	m->mmio_read = soft_mmio_read; /* the LAPIC page, then cfg->bus */
	m->mmio_write = soft_mmio_write;
	m->clock_ns = host_now_ns;
	if (cfg->mem)
		softcpu_machine_set_dirty_log(m, cfg->mem);
	e->bus = cfg->bus;
	e->irqchip = cfg->irqchip;
	e->cpus = calloc((size_t)cfg->cpus, sizeof(*e->cpus));
	e->booted = calloc((size_t)cfg->cpus, sizeof(*e->booted));
	if (!e->cpus || !e->booted) {
		soft_destroy(e);
		snprintf(err, n, "soft engine: out of memory");
		return NULL;
	}
	for (int i = 0; i < cfg->cpus; i++) {
		if (softcpu_init(&e->cpus[i], m) < 0) {
			soft_destroy(e);
			snprintf(err, n, "soft engine: out of memory for vCPU %d", i);
			return NULL;
		}
		e->ncpus = i + 1;
		if (cfg->jit && jit_reserved && softcpu_set_jit(&e->cpus[i], true) < 0)
			log_msg("soft engine: no JIT code cache left for vCPU %d; it interprets", i);
	}
	if (create_lapics(e) < 0) {
		soft_destroy(e);
		snprintf(err, n, "soft engine: cannot create the LAPICs");
		return NULL;
	}
	return e;
}

static void load_segment(struct softcpu *c, int seg, const struct boot_segment *s)
{
	softcpu_set_seg(c, seg, s->selector, s->base, s->limit, s->attr);
}

/* The long-mode start state every engine shares (boot.h). */
static void boot_long64(struct softcpu *c, const struct vcpu_boot *boot)
{
	struct boot_long_mode_state s;
	boot_long_mode_state(boot, &s);
	c->cr0 = s.cr0;
	c->cr4 = s.cr4;
	c->cr3 = s.cr3;
	c->efer = s.efer;
	c->gdtr = (struct softcpu_dtr){.base = s.gdt_base, .limit = s.gdt_limit};
	c->tr = (struct softcpu_seg){.sel = s.tr.selector, .base = s.tr.base, .limit = s.tr.limit,
				     .attr = s.tr.attr};
	load_segment(c, S_CS, &s.code);
	for (int seg = 0; seg < S_NSEG; seg++)
		if (seg != S_CS)
			load_segment(c, seg, &s.data);
	softcpu_tlb_flush(c, true);
}

static int soft_vcpu_init(struct engine *e, int cpu, const struct vcpu_boot *boot, char *err, size_t n)
{
	if (cpu < 0 || cpu >= e->ncpus || e->booted[cpu]) {
		snprintf(err, n, "bad vCPU number %d", cpu);
		return -1;
	}
	struct softcpu *c = &e->cpus[cpu];
	softcpu_reset(c);
	if (cpu > 0)
		c->apic_base &= ~APIC_BASE_BSP;
	if (boot->mode == VCPU_WAIT_SIPI) {
		e->apics[cpu].wait_for_sipi = true;
		e->apics[cpu].sipi_vector = -1;
		e->booted[cpu] = true;
		return 0;
	}
	if (boot->mode == VCPU_LONG64)
		boot_long64(c, boot);
	else /* out of reset CS is f000 with base ffff0000: make it 0000:entry */
		softcpu_set_seg(c, S_CS, 0, 0, 0xffff, 0x9b);
	c->rip = boot->entry;
	c->r[R_SP] = boot->rsp;
	c->r[R_SI] = boot->rsi;
	c->r[R_DX] = 0;
	softcpu_set_rflags(c, 0x2);
	e->booted[cpu] = true;
	return 0;
}

static void stopped(struct vcpu_stop_info *stop, enum vcpu_stop reason, uint64_t rip)
{
	stop->reason = reason;
	stop->rip = rip;
}

/* A parked application processor waits here for its SIPI, then starts in
 * real mode at CS:IP = vector<<8 : 0.  false: the VM stopped first. */
static bool wait_for_sipi(struct engine *e, int cpu)
{
	struct soft_apic *a = &e->apics[cpu];
	pthread_mutex_lock(&a->start_lock);
	while (a->wait_for_sipi && a->sipi_vector < 0 && atomic_load(&e->stop_reason) < 0)
		pthread_cond_wait(&a->start_cond, &a->start_lock);
	if (a->wait_for_sipi && a->sipi_vector >= 0) {
		struct softcpu *c = &e->cpus[cpu];
		softcpu_set_seg(c, S_CS, (uint16_t)(a->sipi_vector << 8), (uint64_t)a->sipi_vector << 12, 0xffff,
				0x9b);
		c->rip = 0;
		a->wait_for_sipi = false;
	}
	bool running = !a->wait_for_sipi;
	pthread_mutex_unlock(&a->start_lock);
	return running;
}

static void soft_vcpu_run(struct engine *e, int cpu, struct vcpu_stop_info *stop)
{
	memset(stop, 0, sizeof(*stop));
	if (cpu < 0 || cpu >= e->ncpus || !e->booted[cpu]) {
		stopped(stop, VCPU_STOP_ERROR, 0);
		snprintf(stop->diag, sizeof(stop->diag), "vCPU %d was not initialised", cpu);
		return;
	}
	struct softcpu *c = &e->cpus[cpu];
	current_apic = &e->apics[cpu];
	if (!wait_for_sipi(e, cpu)) {
		stopped(stop, (enum vcpu_stop)atomic_load(&e->stop_reason), c->rip);
		snprintf(stop->diag, sizeof(stop->diag), "stopped by the board before its Startup IPI");
		return;
	}
	for (;;) {
		enum softcpu_exit why = softcpu_run(c, 0);
		int asked = atomic_load(&e->stop_reason);
		if (asked >= 0) {
			stopped(stop, (enum vcpu_stop)asked, c->rip);
			snprintf(stop->diag, sizeof(stop->diag), "stopped by the board");
			return;
		}
		switch (why) {
		case SOFTCPU_EXIT_HALT: /* with interrupts off: nothing can wake it */
			stopped(stop, VCPU_STOP_HALT, c->rip);
			snprintf(stop->diag, sizeof(stop->diag), "HLT at RIP %#llx", (unsigned long long)c->rip);
			return;
		case SOFTCPU_EXIT_SHUTDOWN:
			stopped(stop, VCPU_STOP_SHUTDOWN, c->rip);
			snprintf(stop->diag, sizeof(stop->diag),
				 "triple fault on vCPU %d at RIP %#llx (exception %d, error code %#x, while "
				 "delivering a double fault)",
				 cpu, (unsigned long long)c->rip, c->exc_vector, c->exc_error);
			return;
		case SOFTCPU_EXIT_STOP:
		case SOFTCPU_EXIT_ABANDONED: /* never: this engine sets no hook that abandons */
			continue; /* a request that was not a stop (the loop head checks) */
		}
	}
}

static void soft_signal_msi(struct engine *e, uint64_t address, uint32_t data)
{
	struct lapic_msg m;
	lapic_msg_from_msi(address, data, &m);
	lapic_route(e->lapics, e->ncpus, &m);
}

static void soft_stop(struct engine *e, enum vcpu_stop reason)
{
	int none = -1;
	atomic_compare_exchange_strong(&e->stop_reason, &none, (int)reason);
	for (int i = 0; i < e->ncpus; i++) {
		softcpu_request(&e->cpus[i], REQ_STOP);
		pthread_mutex_lock(&e->apics[i].start_lock); /* a parked vCPU too */
		pthread_cond_broadcast(&e->apics[i].start_cond);
		pthread_mutex_unlock(&e->apics[i].start_lock);
	}
}

const struct engine_ops engine_soft = {
	.name = "soft",
	.available = soft_available,
	.before_sandbox = soft_before_sandbox,
	.create = soft_create,
	.vcpu_init = soft_vcpu_init,
	.vcpu_run = soft_vcpu_run,
	.signal_msi = soft_signal_msi,
	.stop = soft_stop,
	.destroy = soft_destroy,
	.describe = soft_describe,
};
