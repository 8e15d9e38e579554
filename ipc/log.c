/* log.c - one-line diagnostics on stderr (see log.h). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *log_process = "minivm";
static atomic_bool log_raw;

void log_init(const char *process_name)
{
	log_process = process_name;
}

void log_set_raw(bool raw)
{
	atomic_store(&log_raw, raw);
}

void log_msg(const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	/* Assemble the whole line first: one write() keeps lines from several
	 * processes sharing the terminal from interleaving. Room for "\r\n"
	 * per character of text in the worst case. */
	char line[64 + 2 * sizeof(text) + 2];
	size_t n = 0;
	bool raw = atomic_load(&log_raw);
	for (const char *p = log_process; *p && n < 64; p++)
		line[n++] = *p;
	line[n++] = ':';
	line[n++] = ' ';
	size_t len = strlen(text);
	while (len > 0 && text[len - 1] == '\n')
		len--; /* the line ending is ours to add */
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n' && raw)
			line[n++] = '\r';
		line[n++] = text[i];
	}
	if (raw)
		line[n++] = '\r';
	line[n++] = '\n';

	/* stderr may be a terminal or pipe that takes less than all at once. */
	for (size_t done = 0; done < n;) {
		ssize_t w = write(STDERR_FILENO, line + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere left to report a failing stderr */
		done += (size_t)w;
	}
}
