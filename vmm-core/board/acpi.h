/* acpi.h - the ACPI tables of the x86 board: RSDP, XSDT, FADT, MADT, DSDT.
 *
 * Hardware-reduced ACPI (FADT flag HW_REDUCED_ACPI), as QEMU's microvm and
 * Firecracker use: no PM1 blocks, no SCI, no legacy PIC.  The board
 * implements three byte-wide I/O registers whose ports are parameters:
 *  - sleep control: the guest writes SLP_EN (bit 5) | SLP_TYP << 2 (bits 4:2)
 *    to enter a sleep state; SLP_TYP is ACPI_S5_SLP_TYP for poweroff (the
 *    DSDT's \_S5 package), the only state offered;
 *  - sleep status: reads 0 (the guest polls WAK_STS, bit 7, after S5 fails);
 *  - reset: the guest writes reset_value to reboot (FADT RESET_REG).
 * Consequence for the board with Linux: in hardware-reduced mode the kernel
 * sets up no PIT/HPET timer interrupt (x86 acpi_generic_reduced_hw_init); it
 * calibrates the LAPIC timer by polling the TSC, so the TSC frequency must be
 * known to it (CPUID 0x15/0x16, or PIT channel 2 via ports 0x42/0x43/0x61
 * for TSC calibration).
 *
 * Interrupts: one IOAPIC (GSI base 0), ISA IRQ n = GSI n except IRQ 0 -> GSI 2
 * (an interrupt source override, as on every PC).  The 16550 uses its ISA
 * IRQ (edge, active high); virtio-mmio devices are level-triggered, active
 * high on their GSI.
 *
 * All tables go in one caller-given guest-physical region, the RSDP first
 * (16-byte aligned).  Put it in 0xE0000..0xFFFFF so Linux finds the RSDP by
 * scanning, and pass the RSDP address in boot_params as well. */
#ifndef MINIVM_ACPI_H
#define MINIVM_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 255        /* xAPIC ids; one IOAPIC id after them */
#define ACPI_MAX_VIRTIO_MMIO 32
#define ACPI_S5_SLP_TYP 5
#define ACPI_SLEEP_ENABLE 0x20   /* SLP_EN in the sleep control register */
#define ACPI_IOAPIC_ADDR 0xfec00000u
#define ACPI_LAPIC_ADDR 0xfee00000u

#define ACPI_MAX_UARTS 4         /* COM1..COM4 */

/* A 16550 on ports port..port+7 raising ISA IRQ irq (edge, active high). */
struct acpi_uart {
	uint16_t port;
	uint8_t irq;
};

struct acpi_virtio_mmio {
	uint32_t base; /* below 4 GiB: the DSDT uses Memory32Fixed */
	uint32_t size;
	uint32_t gsi;
	int edge;      /* its line is edge-triggered (0: level, as QEMU's microvm) */
};

struct acpi_config {
	unsigned cpus; /* LAPIC ids 0..cpus-1; the IOAPIC's id is cpus */
	uint16_t sleep_control_port;
	uint16_t sleep_status_port;
	uint16_t reset_port;
	uint8_t reset_value;
	const struct acpi_uart *uarts; /* as the devices declared them (HELLO) */
	unsigned nuarts;
	int has_i8042;        /* FADT boot flags: is a keyboard controller there? */
	int has_cmos_rtc;     /* ... and a CMOS RTC at 0x70? */
	const struct acpi_virtio_mmio *virtio;
	unsigned nvirtio;
};

/* Build every table in guest RAM at [region, region + region_size).
 * Returns the RSDP's address (== region rounded up to 16), or 0 with a
 * one-line reason in err (bad config, region outside RAM or too small). */
uint64_t acpi_build(uint8_t *ram, uint64_t ram_size, uint64_t region, uint64_t region_size,
		    const struct acpi_config *cfg, char *err, size_t errlen);

/* ---- the AML emitter the DSDT is written with (exposed for tests) ---- */

struct aml {
	uint8_t *buf;
	size_t cap, len;
	int overflow; /* set when a write did not fit; len stops growing */
};

/* Append the DSDT body (everything after the table header) for cfg. */
void acpi_dsdt_body(struct aml *a, const struct acpi_config *cfg);

#endif
