/* test_ipc_parse.c - the one number parser: decimal and 0x hexadecimal, no
 * sign, no blanks, a maximum, and a prefix form for unit suffixes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parse.h"

static void accepts_decimal_and_hex(void **state)
{
	uint64_t v = 0;
	assert_true(parse_u64("0", 10, &v));
	assert_int_equal(v, 0);
	assert_true(parse_u64("1016", UINT64_MAX, &v));
	assert_int_equal(v, 1016);
	assert_true(parse_u64("0x3F8", 0xffff, &v));
	assert_int_equal(v, 0x3f8);
	assert_true(parse_u64("0Xd0000000", UINT64_MAX, &v));
	assert_int_equal(v, 0xd0000000u);
	assert_true(parse_u64("18446744073709551615", UINT64_MAX, &v));
	assert_true(v == UINT64_MAX);
	assert_true(parse_u64("0xffffffffffffffff", UINT64_MAX, &v));
	assert_true(v == UINT64_MAX);
	assert_true(parse_u64("007", 7, &v)); /* decimal, not octal */
	assert_int_equal(v, 7);
}

static void refuses_what_strtoull_would_take(void **state)
{
	uint64_t v = 42;
	const char *bad[] = {"", "-1", "+1", " 7", "7 ", "0x", "0x 1", "1e3", "12a", "0xfg", "x10", "-0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(parse_u64(bad[i], UINT64_MAX, &v));
		assert_int_equal(v, 42); /* untouched */
	}
}

static void refuses_values_above_the_maximum(void **state)
{
	uint64_t v = 42;
	assert_false(parse_u64("65536", 0xffff, &v));
	assert_false(parse_u64("0x10000", 0xffff, &v));
	assert_false(parse_u64("18446744073709551616", UINT64_MAX, &v));
	assert_false(parse_u64("0x10000000000000000", UINT64_MAX, &v));
	assert_false(parse_u64("1", 0, &v));
	assert_int_equal(v, 42);
	assert_true(parse_u64("65535", 0xffff, &v));
	assert_int_equal(v, 65535);
}

static void prefix_stops_at_the_first_non_digit(void **state)
{
	uint64_t v = 0;
	const char *s = "256M";
	assert_int_equal(parse_u64_prefix(&s, UINT64_MAX, &v), PARSE_OK);
	assert_int_equal(v, 256);
	assert_string_equal(s, "M");
	s = "99999999999999999999G";
	assert_int_equal(parse_u64_prefix(&s, UINT64_MAX, &v), PARSE_RANGE);
	assert_string_equal(s, "G"); /* past every digit even when too big */
	s = "G";
	assert_int_equal(parse_u64_prefix(&s, UINT64_MAX, &v), PARSE_SYNTAX);
	assert_string_equal(s, "G");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_decimal_and_hex),
		cmocka_unit_test(refuses_what_strtoull_would_take),
		cmocka_unit_test(refuses_values_above_the_maximum),
		cmocka_unit_test(prefix_stops_at_the_first_non_digit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
