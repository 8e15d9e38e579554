/* bootmark.h - the boot-time marker port (Firecracker's convention): the
 * guest writes BOOTMARK_VALUE to BOOTMARK_PORT when it is up (the default
 * guest's /init does), and the board records the time since launch.  A
 * core-local bus device. */
#ifndef MINIVM_BOOTMARK_H
#define MINIVM_BOOTMARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"

#define BOOTMARK_PORT 0x3f0
#define BOOTMARK_VALUE 123

struct bootmark {
	struct bus_device dev;
	struct ipc_range range; /* what dev owns: bus_attach(bus, &dev, &range, 1, ...) */
	uint64_t launch_ns;           /* host_now_ns() when the launcher started */
	bool announce;                /* print the time on stderr when it arrives */
	_Atomic uint64_t elapsed_ns;  /* launch -> first marker; 0 until then */
};

void bootmark_init(struct bootmark *m, uint64_t launch_ns, bool announce);

#endif
