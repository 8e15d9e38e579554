/* child_argv.c - vmm-core's and dev-serial's command lines. */
#include "child_argv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void argv_start(struct child_argv *a)
{
	a->argc = 0;
	a->used = 0;
	a->argv[0] = NULL;
}

/* Append one argument, formatted; marks a as failed (argc = -1) on overflow. */
static void argv_add(struct child_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void argv_add(struct child_argv *a, const char *fmt, ...)
{
	if (a->argc < 0)
		return;
	size_t room = sizeof(a->text) - a->used;
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(a->text + a->used, room, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= room || a->argc >= CHILD_ARGV_MAX) {
		a->argc = -1;
		return;
	}
	a->argv[a->argc++] = a->text + a->used;
	a->argv[a->argc] = NULL;
	a->used += (size_t)len + 1;
}

int child_argv_core(struct child_argv *a, const char *exe, const struct vmconf *c,
		    const char *serial_url, uint64_t launch_ns)
{
	argv_start(a);
	argv_add(a, "%s", exe);
	argv_add(a, "--engine");
	argv_add(a, "%s", c->engine);
	argv_add(a, "--memory");
	argv_add(a, "%llu", (unsigned long long)c->memory);
	argv_add(a, "--cpus");
	argv_add(a, "%d", c->cpus);
	if (c->flat[0]) {
		argv_add(a, "--flat");
		argv_add(a, "%s", c->flat);
		argv_add(a, "--flat-mode");
		argv_add(a, "%s", c->flat_mode == VMCONF_FLAT_LONG ? "long" : "real");
	} else {
		argv_add(a, "--kernel");
		argv_add(a, "%s", c->kernel);
		if (c->initrd[0]) {
			argv_add(a, "--initrd");
			argv_add(a, "%s", c->initrd);
		}
		if (vmconf_is_set(c, VMCONF_CMDLINE)) {
			argv_add(a, "--cmdline");
			argv_add(a, "%s", c->cmdline);
		}
	}
	if (c->reboot_exits)
		argv_add(a, "--no-reboot");
	if (launch_ns) {
		argv_add(a, "--launch-time-ns");
		argv_add(a, "%llu", (unsigned long long)launch_ns);
	}
	argv_add(a, "--device");
	argv_add(a, "%s=%s", CHILD_SERIAL_NAME, serial_url);
	return a->argc < 0 ? -1 : 0;
}

int child_argv_serial(struct child_argv *a, const char *exe, const struct vmconf *c,
		      const char *url)
{
	argv_start(a);
	argv_add(a, "%s", exe);
	argv_add(a, "--connect");
	argv_add(a, "%s", url);
	argv_add(a, "--stdio");
	argv_add(a, "%s", c->stdio ? "on" : "off");
	if (c->debugcon >= 0) {
		argv_add(a, "--debugcon");
		argv_add(a, "0x%x", (unsigned)c->debugcon);
	}
	if (c->has_mmio_uart) {
		argv_add(a, "--mmio-uart");
		argv_add(a, "0x%llx", (unsigned long long)c->mmio_uart);
	}
	return a->argc < 0 ? -1 : 0;
}
