/* bootmark.c - the boot-time marker port (bootmark.h). */
#include "bootmark.h"

#include "host.h"
#include "log.h"

static uint64_t bootmark_read(void *opaque, enum ipc_space space, uint64_t addr, unsigned size)
{
	return 0;
}

static void bootmark_write(void *opaque, enum ipc_space space, uint64_t addr, unsigned size,
			   uint64_t value)
{
	struct bootmark *m = opaque;
	if (value != BOOTMARK_VALUE)
		return;
	uint64_t now = host_now_ns();
	uint64_t elapsed = now > m->launch_ns ? now - m->launch_ns : 1;
	uint64_t none = 0;
	/* Only the first marker counts (a rebooted guest writes it again). */
	if (atomic_compare_exchange_strong(&m->elapsed_ns, &none, elapsed) && m->announce)
		log_msg("boot marker: %llu ms after launch", (unsigned long long)(elapsed / 1000000));
}

void bootmark_init(struct bootmark *m, uint64_t launch_ns, bool announce)
{
	m->dev = (struct bus_device){.opaque = m, .read = bootmark_read, .write = bootmark_write};
	m->range = (struct ipc_range){.space = IPC_SPACE_PIO, .base = BOOTMARK_PORT, .size = 1};
	m->launch_ns = launch_ns;
	m->announce = announce;
	atomic_init(&m->elapsed_ns, 0);
}
