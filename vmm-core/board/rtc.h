/* rtc.h - the CMOS real-time clock's time registers (MC146818 at ports
 * 0x70/0x71), read from the host's clock: Linux reads the wall-clock time
 * there at boot even on hardware-reduced ACPI, and without an answer it
 * polls the "update in progress" bit for about a second and starts in 1970.
 *
 * Index port 0x70 (bit 7, the NMI mask, is ignored), data port 0x71.  Time
 * registers are BCD, 24-hour, UTC; no update-in-progress, no alarms, no
 * periodic interrupt (the FADT does not announce an RTC device, so no driver
 * asks for IRQ 8).  The other CMOS bytes are plain storage.  A core-local
 * bus device. */
#ifndef MINIVM_RTC_H
#define MINIVM_RTC_H

#include <pthread.h>
#include <stdint.h>

#include "bus.h"

#define RTC_INDEX_PORT 0x70
#define RTC_DATA_PORT 0x71
#define RTC_CMOS_SIZE 128

struct rtc {
	struct bus_device dev;
	struct ipc_range range; /* what dev owns: bus_attach(bus, &dev, &range, 1, ...) */
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[RTC_CMOS_SIZE];
};

void rtc_init(struct rtc *r);

#endif
