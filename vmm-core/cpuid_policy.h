/* cpuid_policy.h - what CPUID says about minivm's board, whichever engine
 * answers: the hardware engines (KVM, WHP) start from what their hypervisor
 * offers and fit it here, so a guest sees the same board on both.  (The
 * software CPU has its own complete CPUID table, soft/cpu.c: it offers only
 * what its executor runs.) */
#ifndef MINIVM_CPUID_POLICY_H
#define MINIVM_CPUID_POLICY_H

#include <stdbool.h>
#include <stdint.h>

struct cpuid_policy {
	int apic_id;       /* this vCPU's initial APIC id, or -1: leave leaf 1's EBX */
	bool tsc_deadline; /* the LAPIC has a TSC-deadline timer: say so */
	bool invariant_tsc; /* the TSC runs at a constant rate: say so (leaf 0x80000007) */
	uint32_t tsc_khz;  /* the guest's TSC frequency, or 0: leaves 0x15/0x16 as offered */
};

/* Fit the hypervisor's answer r[] = {EAX, EBX, ECX, EDX} for leaf `fn` to
 * the board: no x2APIC (the IOAPIC sends 8-bit xAPIC destinations), the
 * hypervisor bit set, no topology leaves (each vCPU is its own package), the
 * TSC frequency where known.  false: the board hides the whole leaf (answer
 * zeros, or leave it out of a table). */
bool cpuid_policy_fit(const struct cpuid_policy *p, uint32_t fn, uint32_t r[4]);

#endif
