/* The guest tools' common part: see rawtty.h. */
#include "rawtty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { OPEN_WAIT_MS = 10000, OPEN_RETRY_MS = 50 };

bool rawtty_open(struct rawtty *t, const char *path, int flags)
{
	for (int waited = 0;; waited += OPEN_RETRY_MS) {
		t->fd = open(path, flags | O_NOCTTY);
		if (t->fd >= 0)
			break;
		if ((errno != ENOENT && errno != ENODEV && errno != ENXIO) || waited >= OPEN_WAIT_MS) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			return false;
		}
		usleep(OPEN_RETRY_MS * 1000);
	}
	t->is_tty = tcgetattr(t->fd, &t->saved) == 0;
	if (t->is_tty) {
		struct termios raw = t->saved;
		cfmakeraw(&raw);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(t->fd, TCSANOW, &raw) != 0) {
			fprintf(stderr, "%s: tcsetattr: %s\n", path, strerror(errno));
			close(t->fd);
			return false;
		}
	}
	return true;
}

void rawtty_close(struct rawtty *t)
{
	if (t->is_tty) {
		tcdrain(t->fd);
		tcsetattr(t->fd, TCSADRAIN, &t->saved);
	}
	close(t->fd);
}

bool parse_bytes(const char *s, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (*end == 'K')
		shift = 10;
	else if (*end == 'M')
		shift = 20;
	if (shift)
		end++;
	if (errno || end == s || *end || *s == '-' || n > (~0ULL >> shift))
		return false;
	*out = n << shift;
	return true;
}

double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
