/* rtc.c - the CMOS clock's time registers (rtc.h). */
#include "rtc.h"

#include <string.h>
#include <time.h>

enum {
	REG_SECONDS = 0x00,
	REG_MINUTES = 0x02,
	REG_HOURS = 0x04,
	REG_WEEKDAY = 0x06,
	REG_DAY = 0x07,
	REG_MONTH = 0x08,
	REG_YEAR = 0x09,
	REG_A = 0x0a, /* bit 7: update in progress (never); divider and rate */
	REG_B = 0x0b, /* bit 1: 24-hour; bit 2 clear: BCD */
	REG_C = 0x0c, /* interrupt flags: none */
	REG_D = 0x0d, /* bit 7: the clock's battery is good */
	REG_CENTURY = 0x32,
};

static uint8_t bcd(int v)
{
	return (uint8_t)((v / 10) << 4 | v % 10);
}

/* A time register, from the host's UTC clock; under the lock (gmtime's
 * buffer is shared). */
static uint8_t time_register_locked(uint8_t index)
{
	time_t now = time(NULL);
	const struct tm *t = gmtime(&now);
	if (!t)
		return 0;
	switch (index) {
	case REG_SECONDS: return bcd(t->tm_sec > 59 ? 59 : t->tm_sec);
	case REG_MINUTES: return bcd(t->tm_min);
	case REG_HOURS: return bcd(t->tm_hour);
	case REG_WEEKDAY: return bcd(t->tm_wday + 1);
	case REG_DAY: return bcd(t->tm_mday);
	case REG_MONTH: return bcd(t->tm_mon + 1);
	case REG_YEAR: return bcd(t->tm_year % 100);
	default: return bcd((t->tm_year + 1900) / 100); /* REG_CENTURY */
	}
}

static uint64_t rtc_read(void *opaque, enum ipc_space space, uint64_t addr, unsigned size)
{
	struct rtc *r = opaque;
	if (addr != RTC_DATA_PORT || size != 1)
		return 0;
	pthread_mutex_lock(&r->lock);
	uint8_t i = r->index, v;
	if (i <= REG_YEAR || i == REG_CENTURY)
		v = time_register_locked(i);
	else
		v = r->cmos[i];
	pthread_mutex_unlock(&r->lock);
	return v;
}

static void rtc_write(void *opaque, enum ipc_space space, uint64_t addr, unsigned size, uint64_t value)
{
	struct rtc *r = opaque;
	if (size != 1)
		return;
	pthread_mutex_lock(&r->lock);
	if (addr == RTC_INDEX_PORT)
		r->index = (uint8_t)(value & 0x7f);
	else if (r->index > REG_D && r->index != REG_CENTURY)
		r->cmos[r->index] = (uint8_t)value; /* the clock itself is the host's: not settable */
	pthread_mutex_unlock(&r->lock);
}

void rtc_init(struct rtc *r)
{
	memset(r, 0, sizeof(*r));
	r->dev = (struct bus_device){.opaque = r, .read = rtc_read, .write = rtc_write};
	r->range = (struct ipc_range){.space = IPC_SPACE_PIO, .base = RTC_INDEX_PORT, .size = 2};
	pthread_mutex_init(&r->lock, NULL);
	r->cmos[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
	r->cmos[REG_B] = 0x02;
	r->cmos[REG_D] = 0x80;
}
