/* devread DEV BYTES: reads exactly BYTES from DEV (opened once, raw if a
 * tty: no echo, no line editing, no CR/LF mapping) and prints, on DEV, a
 * ready line before and a result line after:
 *
 *     devread: ready
 *     devread: BYTES bytes crc32 XXXXXXXX in S s
 *
 * The CRC is CRC-32/ISO-HDLC, what Python's zlib.crc32 computes, so the host
 * checks the paste without a hash in the guest's busybox.  The ready line
 * tells the host the guest is listening: input sent earlier may be lost. */
#include "rawtty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static uint32_t crc_table[256];

static void crc32_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* crc is the running value, starting at 0; as zlib.crc32(data, crc). */
static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

/* Writes all of s to fd. */
static bool put(int fd, const char *s)
{
	size_t len = strlen(s);
	while (len) {
		ssize_t w = write(fd, s, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		s += w;
		len -= (size_t)w;
	}
	return true;
}

int main(int argc, char **argv)
{
	unsigned long long total;
	if (argc != 3 || !parse_bytes(argv[2], &total)) {
		fprintf(stderr, "usage: devread DEV BYTES   (K and M suffixes)\n");
		return 2;
	}
	crc32_init();
	struct rawtty dev;
	if (!rawtty_open(&dev, argv[1], O_RDWR))
		return 1;
	if (!put(dev.fd, "devread: ready\n")) {
		fprintf(stderr, "devread: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	unsigned char buf[4096];
	unsigned long long done = 0;
	uint32_t crc = 0;
	double start = 0;
	while (done < total) {
		size_t want = total - done < sizeof buf ? total - done : sizeof buf;
		ssize_t r = read(dev.fd, buf, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "devread: %s after %llu bytes: %s\n", argv[1], done,
				r < 0 ? strerror(errno) : "end of file");
			return 1;
		}
		if (done == 0)
			start = now_seconds();
		crc = crc32_update(crc, buf, (size_t)r);
		done += (unsigned long long)r;
	}
	char result[96];
	snprintf(result, sizeof result, "devread: %llu bytes crc32 %08x in %.3f s\n", done, crc,
		 done ? now_seconds() - start : 0.0);
	bool ok = put(dev.fd, result);
	rawtty_close(&dev);
	return ok ? 0 : 1;
}
