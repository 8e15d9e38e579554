/* child_argv.h - the command lines of vmm-core and dev-serial, built from a
 * checked struct vmconf as docs/ARCHITECTURE.md specifies them. */
#ifndef MINIVM_CHILD_ARGV_H
#define MINIVM_CHILD_ARGV_H

#include <stddef.h>

#include "vmconf.h"

/* The one device so far, and the name its endpoint and HELLO carry. */
#define CHILD_SERIAL_NAME "serial"

#define CHILD_ARGV_MAX 32
#define CHILD_URL_MAX (VMCONF_PATH_MAX + 64)

struct child_argv {
	char *argv[CHILD_ARGV_MAX + 1]; /* NULL-terminated, for host_spawn */
	int argc;
	/* The strings argv points to: the longest command line is vmm-core's
	 * with its path, three file paths, a cmdline and a URL. */
	char text[5 * VMCONF_PATH_MAX + VMCONF_CMDLINE_MAX + CHILD_URL_MAX + 512];
	size_t used;
};

/* `vmm-core --engine ... --device serial=URL`; exe is the path to run;
 * launch_ns (host_now_ns() when the launcher started, for the boot-time
 * marker) is passed on unless 0.  Returns -1 only if a string does not fit
 * (cannot happen for a conf that vmconf_check accepted). */
int child_argv_core(struct child_argv *a, const char *exe, const struct vmconf *c,
		    const char *serial_url, uint64_t launch_ns);

/* `dev-serial --connect URL --stdio on|off [--debugcon PORT] [--mmio-uart ADDR]` */
int child_argv_serial(struct child_argv *a, const char *exe, const struct vmconf *c,
		      const char *url);

#endif
