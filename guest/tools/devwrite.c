/* devwrite DEV BYTES [CHUNK]: writes BYTES of a fixed pattern to DEV in
 * CHUNK-byte write()s (default 4096), DEV opened once and raw if a tty, and
 * nothing else to DEV.  The elapsed guest time goes to stderr afterwards.
 *
 * The pattern is 64-byte printable lines, so a terminal showing it stays
 * sane and the host can check every byte: line n (from 0) is n modulo 10^8
 * as 8 decimal digits, a space, PATTERN_TAIL (54 bytes) and '\n'; the last
 * line is cut at BYTES.  guest/tools/devpattern.py generates the same bytes
 * on the host. */
#include "rawtty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATTERN_TAIL "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz01"
enum { LINE = 64, MAX_CHUNK = 1 << 20 };
_Static_assert(9 + sizeof PATTERN_TAIL - 1 + 1 == LINE, "a pattern line is 64 bytes");

/* The pattern's bytes [offset, offset + len) into buf. */
static void pattern_fill(char *buf, unsigned long long offset, size_t len)
{
	char line[LINE + 1];
	unsigned long long line_no = offset / LINE;
	size_t skip = offset % LINE;
	while (len) {
		snprintf(line, sizeof line, "%08llu " PATTERN_TAIL "\n", line_no % 100000000ULL);
		size_t n = LINE - skip < len ? LINE - skip : len;
		memcpy(buf, line + skip, n);
		buf += n;
		len -= n;
		skip = 0;
		line_no++;
	}
}

int main(int argc, char **argv)
{
	unsigned long long total, chunk = 4096;
	if (argc < 3 || argc > 4 || !parse_bytes(argv[2], &total) ||
	    (argc == 4 && (!parse_bytes(argv[3], &chunk) || chunk == 0 || chunk > MAX_CHUNK))) {
		fprintf(stderr, "usage: devwrite DEV BYTES [CHUNK]   (CHUNK 1 .. %d, default 4096;"
				" K and M suffixes)\n", MAX_CHUNK);
		return 2;
	}
	char *buf = malloc(chunk);
	struct rawtty dev;
	if (!buf || !rawtty_open(&dev, argv[1], O_WRONLY))
		return 1;
	double start = now_seconds();
	unsigned long long done = 0;
	while (done < total) {
		size_t n = total - done < chunk ? total - done : chunk;
		pattern_fill(buf, done, n);
		size_t off = 0;
		while (off < n) {
			ssize_t w = write(dev.fd, buf + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				fprintf(stderr, "devwrite: %s after %llu bytes: %s\n", argv[1],
					done + off, w < 0 ? strerror(errno) : "wrote nothing");
				return 1;
			}
			off += (size_t)w;
		}
		done += n;
	}
	rawtty_close(&dev); /* waits until a tty has sent it all */
	double elapsed = now_seconds() - start;
	fprintf(stderr, "devwrite: %llu bytes in %.3f s guest time (%.3f MB/s)\n", total, elapsed,
		elapsed > 0 ? (double)total / elapsed / 1e6 : 0.0);
	free(buf);
	return 0;
}
