/* cpuid_policy.c - the board's CPUID for the hardware engines (cpuid_policy.h). */
#include "cpuid_policy.h"

#define CPUID1_ECX_X2APIC (1u << 21)
#define CPUID1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID1_ECX_HYPERVISOR (1u << 31)
#define CPUID_80000007_EDX_INVARIANT_TSC (1u << 8)

enum { EAX, EBX, ECX, EDX };

bool cpuid_policy_fit(const struct cpuid_policy *p, uint32_t fn, uint32_t r[4])
{
	switch (fn) {
	case 0xb:
	case 0x1f:
		r[EAX] = r[EBX] = r[ECX] = r[EDX] = 0;
		return false;
	case 1:
		r[ECX] &= ~CPUID1_ECX_X2APIC;
		r[ECX] |= CPUID1_ECX_HYPERVISOR;
		if (p->tsc_deadline)
			r[ECX] |= CPUID1_ECX_TSC_DEADLINE;
		if (p->apic_id >= 0)
			r[EBX] = (r[EBX] & 0x00ffffffu) | (uint32_t)p->apic_id << 24;
		break;
	case 0x15: /* TSC = crystal * EBX / EAX: a crystal at the TSC's rate */
		if (p->tsc_khz) {
			r[EAX] = 1;
			r[EBX] = 1;
			r[ECX] = p->tsc_khz * 1000;
		}
		break;
	case 0x16:
		if (p->tsc_khz)
			r[EAX] = p->tsc_khz / 1000; /* base MHz */
		break;
	case 0x80000007:
		if (p->invariant_tsc)
			r[EDX] |= CPUID_80000007_EDX_INVARIANT_TSC;
		break;
	}
	return true;
}
