/* escape.h - QEMU's Ctrl-A escapes on the host terminal, as a pure filter
 * over the bytes typed: Ctrl-A x quits, Ctrl-A h asks for help, Ctrl-A
 * Ctrl-A sends one Ctrl-A, and Ctrl-A followed by anything else sends both
 * bytes.  A Ctrl-A at the end of one chunk pairs with the next chunk. */
#ifndef MINIVM_ESCAPE_H
#define MINIVM_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ESCAPE_CHAR 0x01 /* Ctrl-A */

struct escape {
	bool pending; /* the last byte seen was an unpaired Ctrl-A */
};

enum escape_action {
	ESCAPE_QUIT = 0x1, /* Ctrl-A x: stop the VM; the rest of the chunk is not filtered */
	ESCAPE_HELP = 0x2, /* Ctrl-A h: print escape_help */
};

/* Filter n bytes of in into out, which has room for n + 1 bytes; returns the
 * number of bytes for the guest and sets *actions to a mask of escape_action. */
size_t escape_filter(struct escape *e, const uint8_t *in, size_t n, uint8_t *out, unsigned *actions);

/* For a terminal in raw mode: lines end with \r\n. */
extern const char escape_help[];

#endif
