/* engine_soft.c - the software CPU (vmm-core/soft) behind the engine
 * interface: guest RAM and the board's buses go to the CPU core as they are;
 * each vCPU runs the interpreter on its caller's thread.
 *
 * No interrupt controller yet (the LAPIC/IOAPIC come with the board, issue
 * 4): set_irq records the line, and a HLT with interrupts enabled stops the
 * vCPU as under KVM.  The board will attach its LAPIC through the CPU core's
 * interrupt input (struct softcpu: intr_line, intr_ack). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "engine.h"
#include "host.h"
#include "log.h"

struct engine {
	struct softcpu_machine machine;
	_Atomic int stop_reason;     /* enum vcpu_stop asked by stop(), or -1 */
	_Atomic uint32_t irq_levels; /* one bit per line, recorded only */
	int ncpus;
	bool *booted;
	struct softcpu *cpus; /* all created with the engine, so stop() can reach them */
};

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
	if (e->cpus)
		for (int i = 0; i < e->ncpus; i++)
			softcpu_destroy(&e->cpus[i]);
	free(e->cpus);
	free(e->booted);
	softcpu_machine_destroy(&e->machine);
	free(e);
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
	m->bus_opaque = cfg->bus.opaque;
	m->pio_read = cfg->bus.pio_read;
	m->pio_write = cfg->bus.pio_write;
	m->mmio_read = cfg->bus.mmio_read;
	m->mmio_write = cfg->bus.mmio_write;
	m->clock_ns = host_now_ns;
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
	}
	return e;
}

/* The long-mode start state the board promises (engine.h): flat 64-bit code
 * at selector 0x08, data at 0x10, paging on with boot->cr3. */
static void boot_long64(struct softcpu *c, const struct vcpu_boot *boot)
{
	c->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	c->cr4 = CR4_PAE;
	c->cr3 = boot->cr3;
	c->efer = EFER_LME | EFER_LMA;
	c->gdtr = (struct softcpu_dtr){.base = boot->gdt_base, .limit = boot->gdt_limit};
	c->tr = (struct softcpu_seg){.limit = 0x67, .attr = 0x8b};
	softcpu_set_seg(c, S_CS, 0x08, 0, 0xffffffffu, 0xa09b);
	for (int s = 0; s < S_NSEG; s++)
		if (s != S_CS)
			softcpu_set_seg(c, s, 0x10, 0, 0xffffffffu, 0xc093);
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

static void soft_vcpu_run(struct engine *e, int cpu, struct vcpu_stop_info *stop)
{
	memset(stop, 0, sizeof(*stop));
	if (cpu < 0 || cpu >= e->ncpus || !e->booted[cpu]) {
		stopped(stop, VCPU_STOP_ERROR, 0);
		snprintf(stop->diag, sizeof(stop->diag), "vCPU %d was not initialised", cpu);
		return;
	}
	struct softcpu *c = &e->cpus[cpu];
	for (;;) {
		enum softcpu_exit why = softcpu_run(c, 0);
		int asked = atomic_load(&e->stop_reason);
		if (asked >= 0) {
			stopped(stop, (enum vcpu_stop)asked, c->rip);
			snprintf(stop->diag, sizeof(stop->diag), "stopped by the board");
			return;
		}
		switch (why) {
		case SOFTCPU_EXIT_HALT:
			if (c->rflags & F_IF)
				log_msg("vCPU %d: HLT with interrupts enabled, but no interrupt "
					"controller exists yet: stopping", cpu);
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
			continue; /* a request that was not a stop (the loop head checks) */
		}
	}
}

static void soft_set_irq(struct engine *e, unsigned gsi, int level)
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

static void soft_stop(struct engine *e, enum vcpu_stop reason)
{
	int none = -1;
	atomic_compare_exchange_strong(&e->stop_reason, &none, (int)reason);
	for (int i = 0; i < e->ncpus; i++)
		softcpu_request(&e->cpus[i], REQ_STOP);
}

const struct engine_ops engine_soft = {
	.name = "soft",
	.available = soft_available,
	.create = soft_create,
	.vcpu_init = soft_vcpu_init,
	.vcpu_run = soft_vcpu_run,
	.set_irq = soft_set_irq,
	.stop = soft_stop,
	.destroy = soft_destroy,
};
