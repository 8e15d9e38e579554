/* child_argv.h - the device processes a vm.conf starts (one table), and
 * the command lines of vmm-core and the devices, built from a checked
 * struct vmconf as docs/ARCHITECTURE.md specifies them. */
#ifndef MINIVM_CHILD_ARGV_H
#define MINIVM_CHILD_ARGV_H

#include <stdbool.h>
#include <stddef.h>

#include "vmconf.h"

#define CHILD_ARGV_MAX (32 + 2 * VMCONF_NET_ARGS_MAX)
#define CHILD_URL_MAX (VMCONF_PATH_MAX + 64)

struct child_argv {
	char *argv[CHILD_ARGV_MAX + 1]; /* NULL-terminated, for host_spawn */
	int argc;
	/* The strings argv points to: the longest command line is vmm-core's
	 * with its path, three file paths, a cmdline and a URL. */
	char text[5 * VMCONF_PATH_MAX + VMCONF_CMDLINE_MAX + CHILD_URL_MAX + 512 +
		  VMCONF_NET_ARGS_MAX * (NET_PAIR_MAX + 8)];
	size_t used;
};

/* One kind of device process.  A new device is one entry of
 * device_programs (child_argv.c) and its keys in vmconf's key table. */
struct device_program {
	const char *section; /* its vm.conf [section] */
	const char *program; /* the executable, next to the launcher, without host_exe_suffix() */
	const char *name;    /* its endpoint's and HELLO's name: vmm-core --device NAME=URL */
	/* Is it started for c?  (Its section, or a key of it, is set...) */
	bool (*listed)(const struct vmconf *c);
	/* Its vm.conf keys as flags, after `--connect URL`. */
	void (*flags)(struct child_argv *a, const struct vmconf *c);
};

#define DEVICE_PROGRAMS_MAX 8 /* vmm-core's --device limit */
extern const struct device_program device_programs[];
extern const unsigned ndevice_programs;

/* The device_programs entry for vm.conf section name[0..len), or NULL. */
const struct device_program *device_program_for_section(const char *name, size_t len);

/* The devices c starts, in table order; returns how many. */
unsigned devices_listed(const struct vmconf *c, const struct device_program *out[DEVICE_PROGRAMS_MAX]);

/* `vmm-core --engine ... --device NAME=URL...`, one --device per listed
 * device (devs[i] at urls[i]); exe is the path to run; launch_ns
 * (host_now_ns() when the launcher started, for the boot-time marker) is
 * passed on unless 0.  Returns -1 only if a string does not fit (cannot
 * happen for a conf that vmconf_check accepted). */
int child_argv_core(struct child_argv *a, const char *exe, const struct vmconf *c,
		    const struct device_program *const devs[], const char *const urls[], unsigned n,
		    uint64_t launch_ns);

/* `PROGRAM --connect URL FLAGS...`, e.g. `dev-serial --connect URL --stdio
 * on|off [--debugcon PORT] [--mmio-uart ADDR]` */
int child_argv_device(struct child_argv *a, const char *exe, const struct device_program *dev,
		      const struct vmconf *c, const char *url);

#endif
