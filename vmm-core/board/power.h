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

#include <stdint.h>

#include "bus.h"
#include "engine.h"

#define POWER_SLEEP_CONTROL_PORT 0x600
#define POWER_SLEEP_STATUS_PORT 0x601
#define POWER_RESET_PORT 0x602
#define POWER_RESET_VALUE 0x42

/* The x86 reset vector, F000:FFF0 in real mode. */
#define POWER_RESET_VECTOR 0xffff0u
#define POWER_RESET_STUB_SIZE 16

struct power {
	struct bus_device dev;
	struct ipc_range range; /* what dev owns: bus_attach(bus, &dev, &range, 1, ...) */
	/* Asked to stop the machine with VCPU_STOP_POWEROFF or VCPU_STOP_RESET. */
	void (*stop)(void *opaque, enum vcpu_stop reason);
	void *opaque;
};

void power_init(struct power *p, void (*stop)(void *opaque, enum vcpu_stop reason), void *opaque);

/* The board's whole firmware: at the reset vector, code that writes the
 * reset register.  Linux on hardware-reduced ACPI reboots through "EFI",
 * then by jumping to the reset vector in real mode (BOOT_BIOS), never
 * reaching the FADT's reset register; this stub turns that jump into a
 * reset.  RAM must reach past POWER_RESET_VECTOR + 16: returns -1 if not. */
int power_install_reset_stub(uint8_t *ram, uint64_t ram_size);

#endif
