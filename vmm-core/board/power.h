/* power.h - the board's power and reset registers, the ones the FADT points
 * the guest at (acpi.h): a byte-wide sleep control, sleep status and reset
 * register at three consecutive I/O ports.  A core-local bus device.
 *
 *  - sleep control: SLP_EN | ACPI_S5_SLP_TYP << 2 powers the machine off;
 *    other sleep types are not offered by the DSDT and are ignored.
 *  - sleep status: reads 0 (never "woken").
 *  - reset: POWER_RESET_VALUE resets the machine. */
#ifndef MINIVM_POWER_H
#define MINIVM_POWER_H

#include "bus.h"
#include "engine.h"

#define POWER_SLEEP_CONTROL_PORT 0x600
#define POWER_SLEEP_STATUS_PORT 0x601
#define POWER_RESET_PORT 0x602
#define POWER_RESET_VALUE 0x42

struct power {
	struct bus_device dev;
	struct ipc_range range; /* what dev owns: bus_attach(bus, &dev, &range, 1, ...) */
	/* Asked to stop the machine with VCPU_STOP_POWEROFF or VCPU_STOP_RESET. */
	void (*stop)(void *opaque, enum vcpu_stop reason);
	void *opaque;
};

void power_init(struct power *p, void (*stop)(void *opaque, enum vcpu_stop reason), void *opaque);

#endif
