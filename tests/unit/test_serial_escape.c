/* test_serial_escape.c - the Ctrl-A escapes of dev-serial's terminal
 * (dev-serial/escape.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "escape.h"

/* Filter s (a C string, so \x01 is Ctrl-A) and compare with want. */
static void check(struct escape *e, const char *s, const char *want, unsigned want_actions)
{
	uint8_t out[64];
	unsigned actions = 99;
	size_t n = escape_filter(e, (const uint8_t *)s, strlen(s), out, &actions);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	assert_int_equal(actions, want_actions);
}

static void test_plain_bytes_pass(void **state)
{
	struct escape e = {0};
	check(&e, "ls -l\r", "ls -l\r", 0);
	check(&e, "x", "x", 0);
}

static void test_quit(void **state)
{
	struct escape e = {0};
	/* What follows Ctrl-A x is not sent. */
	check(&e, "ab\x01xcd", "ab", ESCAPE_QUIT);
}

static void test_help(void **state)
{
	struct escape e = {0};
	check(&e, "\x01hz", "z", ESCAPE_HELP);
	assert_non_null(strstr(escape_help, "\r\n"));
}

static void test_double_ctrl_a_sends_one(void **state)
{
	struct escape e = {0};
	check(&e, "\x01\x01" "a", "\x01" "a", 0);
}

static void test_other_byte_sends_both(void **state)
{
	struct escape e = {0};
	check(&e, "\x01q", "\x01q", 0);
}

static void test_escape_across_chunks(void **state)
{
	struct escape e = {0};
	check(&e, "ab\x01", "ab", 0);
	/* One byte in, two out: the caller's out has room for n + 1. */
	check(&e, "c", "\x01" "c", 0);
	check(&e, "\x01", "", 0);
	check(&e, "x", "", ESCAPE_QUIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_bytes_pass),
		cmocka_unit_test(test_quit),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_double_ctrl_a_sends_one),
		cmocka_unit_test(test_other_byte_sends_both),
		cmocka_unit_test(test_escape_across_chunks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
