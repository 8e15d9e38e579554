/* parse.h - the one number parser of every minivm program (command lines,
 * vm.conf, benchmarks).
 *
 * A number is decimal, or hexadecimal after "0x"/"0X": at least one digit,
 * no sign, no blanks (strtoull alone would take "-1", " 7" or "" too). */
#ifndef MINIVM_PARSE_H
#define MINIVM_PARSE_H

#include <stdbool.h>
#include <stdint.h>

enum parse_status {
	PARSE_OK = 0,
	PARSE_SYNTAX = -1, /* no digits where a number must be */
	PARSE_RANGE = -2,  /* digits, but a value above the maximum */
};

/* The number at the start of *s, at most max.  On PARSE_OK and PARSE_RANGE
 * *s moves past the digits (a unit suffix may follow); on PARSE_OK *out
 * holds the value. */
enum parse_status parse_u64_prefix(const char **s, uint64_t max, uint64_t *out);

/* The whole of s is a number <= max. */
bool parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif
