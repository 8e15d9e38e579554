/* Shared by the guest tools (devwrite, devread): open a device the way a
 * benchmark needs it.  A tty is opened once and put in raw mode for the whole
 * transfer: hvc0 forgets its termios on the last close, so a separate
 * `stty raw` would not stick, and cooked output turns every '\n' into
 * "\r\n" and writes hvc0 a line at a time. */
#ifndef GUEST_TOOLS_RAWTTY_H
#define GUEST_TOOLS_RAWTTY_H

#include <stdbool.h>
#include <termios.h>

struct rawtty {
	int fd;
	bool is_tty;
	struct termios saved; /* restored by rawtty_close */
};

/* Opens path with flags (O_NOCTTY added), waiting up to 10 s for it to
 * appear (a virtio console shows up once its driver has probed), and makes
 * it raw if it is a tty.  Prints the reason on stderr and returns false on
 * failure. */
bool rawtty_open(struct rawtty *t, const char *path, int flags);

/* Waits for queued output to leave, restores the settings, closes. */
void rawtty_close(struct rawtty *t);

/* Parses a byte count ("1048576", "16M", "64K"); false if it is not one. */
bool parse_bytes(const char *s, unsigned long long *out);

/* Seconds on the monotonic clock. */
double now_seconds(void);

#endif
