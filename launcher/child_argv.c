/* child_argv.c - the device table, and vmm-core's and the devices' command
 * lines. */
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

/* ---- the devices ---- */

/* The console: always there (its keys default to a UART on the terminal). */
static bool serial_listed(const struct vmconf *c)
{
	return true;
}

static void serial_flags(struct child_argv *a, const struct vmconf *c)
{
	argv_add(a, "--stdio");
	argv_add(a, "%s", c->stdio ? "on" : "off");
	argv_add(a, "--hvc0");
	argv_add(a, "%s", c->hvc0 ? "on" : "off");
	argv_add(a, "--console");
	argv_add(a, "%s", c->console_hvc0 ? "hvc0" : "ttyS0");
#ifdef __aarch64__
	/* The arm64 board has no port I/O: its terminal UART is a PL011. */
	argv_add(a, "--uart");
	argv_add(a, "pl011");
#endif
	if (c->debugcon >= 0) {
		argv_add(a, "--debugcon");
		argv_add(a, "0x%x", (unsigned)c->debugcon);
	}
	if (c->has_debugcon_mmio) {
		argv_add(a, "--debugcon-mmio");
		argv_add(a, "0x%llx", (unsigned long long)c->debugcon_mmio);
	}
	if (c->has_mmio_uart) {
		argv_add(a, "--mmio-uart");
		argv_add(a, "0x%llx", (unsigned long long)c->mmio_uart);
	}
}

/* The network: when [net] or -nic asks for it, user = on. */
static bool net_listed(const struct vmconf *c)
{
	return c->net_listed && c->net.user;
}

static void net_flags(struct child_argv *a, const struct vmconf *c)
{
	for (unsigned i = 0; i < c->n_net_args; i++) {
		argv_add(a, "--net");
		argv_add(a, "%s", c->net_args[i].text);
	}
}

const struct device_program device_programs[] = {
	{.section = "serial", .program = "dev-serial", .name = "serial",
	 .listed = serial_listed, .flags = serial_flags},
	{.section = "net", .program = "dev-net", .name = "net", .listed = net_listed, .flags = net_flags},
};
const unsigned ndevice_programs = sizeof(device_programs) / sizeof(device_programs[0]);
_Static_assert(sizeof(device_programs) / sizeof(device_programs[0]) <= DEVICE_PROGRAMS_MAX,
	       "more device programs than vmm-core takes");

const struct device_program *device_program_for_section(const char *name, size_t len)
{
	for (unsigned i = 0; i < ndevice_programs; i++) {
		const char *s = device_programs[i].section;
		if (strlen(s) == len && !memcmp(s, name, len))
			return &device_programs[i];
	}
	return NULL;
}

unsigned devices_listed(const struct vmconf *c, const struct device_program *out[DEVICE_PROGRAMS_MAX])
{
	unsigned n = 0;
	for (unsigned i = 0; i < ndevice_programs; i++)
		if (device_programs[i].listed(c))
			out[n++] = &device_programs[i];
	return n;
}

/* ---- command lines ---- */

int child_argv_core(struct child_argv *a, const char *exe, const struct vmconf *c,
		    const struct device_program *const devs[], const char *const urls[], unsigned n,
		    uint64_t launch_ns)
{
	argv_start(a);
	argv_add(a, "%s", exe);
	argv_add(a, "--engine");
	argv_add(a, "%s", c->engine);
	argv_add(a, "--memory");
	argv_add(a, "%llu", (unsigned long long)c->memory);
	argv_add(a, "--cpus");
	argv_add(a, "%d", c->cpus);
	/* Unset, vmm-core translates where the host can; an explicit on makes
	 * a host without a JIT an error there. */
	if (!c->jit || vmconf_is_set(c, VMCONF_JIT)) {
		argv_add(a, "--jit");
		argv_add(a, "%s", c->jit ? "on" : "off");
	}
	if (c->flat[0]) {
		argv_add(a, "--flat");
		argv_add(a, "%s", c->flat);
		argv_add(a, "--flat-mode");
		argv_add(a, "%s", c->flat_mode == VMCONF_FLAT_LONG ? "long" : "real");
		if (vmconf_is_set(c, VMCONF_FLAT_ADDR)) {
			argv_add(a, "--flat-addr");
			argv_add(a, "0x%llx", (unsigned long long)c->flat_addr);
		}
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
	for (unsigned i = 0; i < n; i++) {
		argv_add(a, "--device");
		argv_add(a, "%s=%s", devs[i]->name, urls[i]);
	}
	return a->argc < 0 ? -1 : 0;
}

int child_argv_device(struct child_argv *a, const char *exe, const struct device_program *dev,
		      const struct vmconf *c, const char *url)
{
	argv_start(a);
	argv_add(a, "%s", exe);
	argv_add(a, "--connect");
	argv_add(a, "%s", url);
	dev->flags(a, c);
	return a->argc < 0 ? -1 : 0;
}
