/* test_core_cpuid_policy.c - the board's CPUID as the hardware engines
 * (KVM, WHP) fit their hypervisor's answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cpuid_policy.h"

enum { EAX, EBX, ECX, EDX };

static void leaf1_no_x2apic_hypervisor_bit_apic_id(void **state)
{
	struct cpuid_policy p = {.apic_id = 3};
	uint32_t r[4] = {0x806c1, 0x00010800, 1u << 21 | 1u << 0, 0xbfebfbff};
	assert_true(cpuid_policy_fit(&p, 1, r));
	assert_int_equal(r[ECX] & 1u << 21, 0);     /* x2APIC gone */
	assert_int_not_equal(r[ECX] & 1u << 31, 0); /* hypervisor */
	assert_int_not_equal(r[ECX] & 1u << 0, 0);  /* the rest kept */
	assert_int_equal(r[ECX] & 1u << 24, 0);     /* no TSC deadline unless offered */
	assert_int_equal(r[EBX], 0x03010800);       /* APIC id in bits 31..24 */
	assert_int_equal(r[EAX], 0x806c1);
	assert_int_equal(r[EDX], 0xbfebfbff);

	p = (struct cpuid_policy){.apic_id = -1, .tsc_deadline = true};
	uint32_t keep[4] = {0, 0x07010800, 0, 0};
	assert_true(cpuid_policy_fit(&p, 1, keep));
	assert_int_equal(keep[EBX], 0x07010800);
	assert_int_not_equal(keep[ECX] & 1u << 24, 0);
}

static void topology_leaves_hidden(void **state)
{
	struct cpuid_policy p = {.apic_id = 0};
	uint32_t r[4] = {1, 2, 3, 4};
	assert_false(cpuid_policy_fit(&p, 0xb, r));
	assert_int_equal(r[EAX] | r[EBX] | r[ECX] | r[EDX], 0);
	uint32_t r2[4] = {1, 2, 3, 4};
	assert_false(cpuid_policy_fit(&p, 0x1f, r2));
}

static void tsc_frequency_where_known(void **state)
{
	struct cpuid_policy p = {.apic_id = -1, .tsc_khz = 2400000, .invariant_tsc = true};
	uint32_t crystal[4] = {0};
	assert_true(cpuid_policy_fit(&p, 0x15, crystal));
	assert_int_equal(crystal[EAX], 1);
	assert_int_equal(crystal[EBX], 1);
	assert_int_equal(crystal[ECX], 2400000000u);
	uint32_t base[4] = {0};
	assert_true(cpuid_policy_fit(&p, 0x16, base));
	assert_int_equal(base[EAX], 2400);
	uint32_t power[4] = {0};
	assert_true(cpuid_policy_fit(&p, 0x80000007, power));
	assert_int_not_equal(power[EDX] & 1u << 8, 0);

	p = (struct cpuid_policy){.apic_id = -1}; /* unknown: as offered */
	uint32_t offered[4] = {2, 3, 0, 0};
	assert_true(cpuid_policy_fit(&p, 0x15, offered));
	assert_int_equal(offered[EAX], 2);
	assert_int_equal(offered[EBX], 3);
	uint32_t variant[4] = {0};
	assert_true(cpuid_policy_fit(&p, 0x80000007, variant));
	assert_int_equal(variant[EDX], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(leaf1_no_x2apic_hypervisor_bit_apic_id),
		cmocka_unit_test(topology_leaves_hidden),
		cmocka_unit_test(tsc_frequency_where_known),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
