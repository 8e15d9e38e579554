/* parse.c - see parse.h. */
#include "parse.h"

static int digit_value(char c, unsigned base)
{
	int v = c >= '0' && c <= '9' ? c - '0'
	      : c >= 'a' && c <= 'f' ? c - 'a' + 10
	      : c >= 'A' && c <= 'F' ? c - 'A' + 10
	      : -1;
	return v >= 0 && (unsigned)v < base ? v : -1;
}

enum parse_status parse_u64_prefix(const char **s, uint64_t max, uint64_t *out)
{
	const char *p = *s;
	unsigned base = 10;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (digit_value(*p, base) < 0)
		return PARSE_SYNTAX;
	uint64_t v = 0;
	bool too_big = false;
	for (int d; (d = digit_value(*p, base)) >= 0; p++) {
		if ((uint64_t)d > max || v > (max - (uint64_t)d) / base)
			too_big = true; /* keep going: *s moves past every digit */
		else
			v = v * base + (uint64_t)d;
	}
	*s = p;
	if (too_big)
		return PARSE_RANGE;
	*out = v;
	return PARSE_OK;
}

bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;
	if (parse_u64_prefix(&s, max, &v) != PARSE_OK || *s)
		return false;
	*out = v;
	return true;
}
