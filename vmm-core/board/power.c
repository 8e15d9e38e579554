/* power.c - the FADT's power and reset registers (power.h). */
#include "power.h"

#include <string.h>

#include "acpi.h"
#include "log.h"

static uint64_t power_read(void *opaque, enum ipc_space space, uint64_t addr, unsigned size)
{
	return 0; /* sleep status: WAK_STS clear; the others are write-only */
}

static void power_write(void *opaque, enum ipc_space space, uint64_t addr, unsigned size,
			uint64_t value)
{
	struct power *p = opaque;
	if (size != 1) {
		log_once("power: %u-byte write to port %#llx (registers are byte-wide): ignored", size,
			 (unsigned long long)addr);
		return;
	}
	if (addr == POWER_SLEEP_CONTROL_PORT) {
		if ((value & ACPI_SLEEP_ENABLE) && ((value >> 2) & 7) == ACPI_S5_SLP_TYP)
			p->stop(p->opaque, VCPU_STOP_POWEROFF);
		else if (value & ACPI_SLEEP_ENABLE)
			log_once("power: sleep type %u requested; only S5 (poweroff) exists: ignored",
				 (unsigned)((value >> 2) & 7));
	} else if (addr == POWER_RESET_PORT && value == POWER_RESET_VALUE) {
		p->stop(p->opaque, VCPU_STOP_RESET);
	}
}

int power_install_reset_stub(uint8_t *ram, uint64_t ram_size)
{
	static const uint8_t stub[POWER_RESET_STUB_SIZE] = {
		0xb0, POWER_RESET_VALUE,                                    /* mov al, 0x42 */
		0xba, POWER_RESET_PORT & 0xff, POWER_RESET_PORT >> 8,       /* mov dx, 0x602 */
		0xee,                                                       /* out dx, al */
		0xf4,                                                       /* 1: hlt */
		0xeb, 0xfd,                                                 /* jmp 1b */
	};
	if (ram_size < POWER_RESET_VECTOR + sizeof(stub))
		return -1;
	memcpy(ram + POWER_RESET_VECTOR, stub, sizeof(stub));
	return 0;
}

void power_init(struct power *p, void (*stop)(void *opaque, enum vcpu_stop reason), void *opaque)
{
	*p = (struct power){.dev = {.opaque = p, .read = power_read, .write = power_write},
			    .range = {.space = IPC_SPACE_PIO, .base = POWER_SLEEP_CONTROL_PORT, .size = 3},
			    .stop = stop,
			    .opaque = opaque};
}
