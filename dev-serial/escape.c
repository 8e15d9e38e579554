/* escape.c - the Ctrl-A escapes (escape.h). */
#include "escape.h"

const char escape_help[] = "\r\n"
			   "C-a h    print this help\r\n"
			   "C-a x    exit minivm\r\n"
			   "C-a C-a  send C-a to the guest\r\n";

size_t escape_filter(struct escape *e, const uint8_t *in, size_t n, uint8_t *out, unsigned *actions)
{
	size_t len = 0;
	*actions = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];
		if (!e->pending) {
			if (c == ESCAPE_CHAR)
				e->pending = true;
			else
				out[len++] = c;
			continue;
		}
		e->pending = false;
		if (c == 'x') {
			*actions |= ESCAPE_QUIT;
			break;
		} else if (c == 'h') {
			*actions |= ESCAPE_HELP;
		} else if (c == ESCAPE_CHAR) {
			out[len++] = ESCAPE_CHAR;
		} else {
			out[len++] = ESCAPE_CHAR;
			out[len++] = c;
		}
	}
	return len;
}
