/* acpi.c - ACPI tables for the x86 board (acpi.h), with a minimal AML
 * emitter for the DSDT.  Layouts follow the ACPI 6.4 specification:
 * RSDP 5.2.5, table header 5.2.6, XSDT 5.2.8, FADT 5.2.9, MADT 5.2.12,
 * AML encoding chapter 20, resource descriptors 6.4. */
#include "acpi.h"

#include <stdio.h>
#include <string.h>

#include "le.h"

#define OEM_ID "MINIVM"     /* 6 bytes */
#define OEM_TABLE_ID "MVBOARD " /* 8 bytes */
#define CREATOR_ID "MNVM"
#define HEADER_SIZE 36

#define RSDP_SIZE 36
#define RSDP_V1_SIZE 20 /* the part the first checksum covers */
#define XSDT_ENTRIES 2  /* FADT, MADT; the FADT points at the DSDT */
#define FADT_SIZE 276   /* revision 6, minor 3: up to the hypervisor vendor id */

/* FADT field offsets */
#define FADT_DSDT 40
#define FADT_SCI_INT 46
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_MINOR_VERSION 131
#define FADT_X_DSDT 140
#define FADT_SLEEP_CONTROL 244
#define FADT_SLEEP_STATUS 256

#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)
#define BOOT_ARCH_8042 (1u << 1)
#define BOOT_ARCH_NO_VGA (1u << 2)
#define BOOT_ARCH_NO_CMOS_RTC (1u << 5)
#define SCI_IRQ 9 /* unused in hardware-reduced mode; the conventional value */

#define GAS_SIZE 12
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

/* MADT */
#define MADT_FIXED_SIZE 44
#define MADT_LAPIC 0
#define MADT_LAPIC_SIZE 8
#define MADT_IOAPIC 1
#define MADT_IOAPIC_SIZE 12
#define MADT_ISO 2
#define MADT_ISO_SIZE 10
#define MADT_LAPIC_NMI 4
#define MADT_LAPIC_NMI_SIZE 6
#define MADT_ENABLED 1
#define PIT_ISA_IRQ 0
#define PIT_GSI 2

/* AML opcodes and prefixes */
#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_EXT_PREFIX 0x5b
#define AML_DEVICE 0x82 /* after AML_EXT_PREFIX */
#define AML_ROOT 0x5c   /* '\' */

/* Resource descriptors */
#define RES_IRQ_NO_FLAGS 0x22  /* small, 2 bytes: ISA IRQ mask, edge, high */
#define RES_IO 0x47            /* small, 7 bytes */
#define RES_END_TAG 0x79       /* small, 1 byte: checksum 0 = "ok" */
#define RES_MEMORY32_FIXED 0x86 /* large, 9 bytes */
#define RES_EXT_IRQ 0x89        /* large, 6 bytes for one interrupt */
#define EXT_IRQ_CONSUMER 0x01   /* level (HE=0), active high (LL=0), exclusive */
#define EXT_IRQ_EDGE 0x02       /* HE=1: edge-triggered */
#define IO_DECODE16 0x01
#define MEM_READ_WRITE 0x01
#define UART_PORTS 8

/* ---- AML emitter ---- */

static void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->overflow || n > a->cap - a->len) {
		a->overflow = 1;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

/* A package (PkgLength-prefixed) starts here; aml_close() finishes it. */
static size_t aml_open(const struct aml *a)
{
	return a->len;
}

/* Insert the PkgLength of the body that began at `start`, in its shortest
 * encoding (20.2.4: the length counts the PkgLength bytes themselves). */
static void aml_close(struct aml *a, size_t start)
{
	if (a->overflow)
		return;
	size_t body = a->len - start, n;
	for (n = 1; n < 4; n++) {
		size_t limit = n == 1 ? 0x40 : (size_t)1 << (4 + 8 * (n - 1));
		if (body + n < limit)
			break;
	}
	size_t total = body + n;
	if (n > a->cap - a->len) {
		a->overflow = 1;
		return;
	}
	memmove(a->buf + start + n, a->buf + start, body);
	uint8_t *p = a->buf + start;
	if (n == 1) {
		p[0] = (uint8_t)total;
	} else {
		p[0] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (size_t i = 1; i < n; i++)
			p[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	a->len += n;
}

static void aml_nameseg(struct aml *a, const char name[4])
{
	aml_bytes(a, name, 4);
}

static void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[8];
	put_le64(b, v);
	if (v == 0 || v == 1) {
		aml_byte(a, v ? AML_ONE : AML_ZERO);
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_bytes(a, b, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_bytes(a, b, 2);
	} else if (v <= 0xffffffffu) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_bytes(a, b, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_bytes(a, b, 8);
	}
}

static void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

/* EisaId("PNP0501"): three letters in 5 bits each and four hex digits,
 * stored big-endian (so it reads 41 D0 05 01 in memory). */
static void aml_eisaid(struct aml *a, const char id[7])
{
	uint32_t v = (uint32_t)(id[0] - 0x40) << 26 | (uint32_t)(id[1] - 0x40) << 21 |
		     (uint32_t)(id[2] - 0x40) << 16;
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		v |= (uint32_t)(c <= '9' ? c - '0' : c - 'A' + 10) << (4 * (6 - i));
	}
	uint8_t be[5] = {AML_DWORD_PREFIX, (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
			 (uint8_t)v};
	aml_bytes(a, be, sizeof(be));
}

/* Name(seg, ...): the caller appends the value. */
static void aml_name(struct aml *a, const char seg[4])
{
	aml_byte(a, AML_NAME);
	aml_nameseg(a, seg);
}

/* Name(_CRS, ResourceTemplate() { <res> EndTag }) */
static void aml_crs(struct aml *a, const uint8_t *res, size_t len)
{
	aml_name(a, "_CRS");
	aml_byte(a, AML_BUFFER);
	size_t pkg = aml_open(a);
	aml_integer(a, len + 2);
	aml_bytes(a, res, len);
	aml_byte(a, RES_END_TAG);
	aml_byte(a, 0);
	aml_close(a, pkg);
}

/* Device(name) { Name(_HID, hid) Name(_UID, uid) Name(_CRS, ...) } with an
 * EISA id when the hid is one (7 characters), else a string. */
static void aml_device(struct aml *a, const char name[4], const char *hid, unsigned uid,
		       const uint8_t *res, size_t res_len)
{
	aml_byte(a, AML_EXT_PREFIX);
	aml_byte(a, AML_DEVICE);
	size_t pkg = aml_open(a);
	aml_nameseg(a, name);
	aml_name(a, "_HID");
	if (strlen(hid) == 7)
		aml_eisaid(a, hid);
	else
		aml_string(a, hid);
	aml_name(a, "_UID");
	aml_integer(a, uid);
	aml_crs(a, res, res_len);
	aml_close(a, pkg);
}

static void serial_device(struct aml *a, unsigned index, const struct acpi_uart *u)
{
	uint16_t port = u->port, irq_mask = (uint16_t)(1u << u->irq);
	uint8_t res[] = {
		RES_IO, IO_DECODE16, (uint8_t)port, (uint8_t)(port >> 8), (uint8_t)port,
		(uint8_t)(port >> 8), 0 /* alignment */, UART_PORTS,
		RES_IRQ_NO_FLAGS, (uint8_t)irq_mask, (uint8_t)(irq_mask >> 8),
	};
	char name[4] = {'C', 'O', 'M', (char)('1' + index)};
	aml_device(a, name, "PNP0501", index, res, sizeof(res));
}

static void virtio_mmio_device(struct aml *a, unsigned index, const struct acpi_virtio_mmio *v)
{
	uint8_t res[12 + 9];
	res[0] = RES_MEMORY32_FIXED;
	put_le16(res + 1, 9);
	res[3] = MEM_READ_WRITE;
	put_le32(res + 4, v->base);
	put_le32(res + 8, v->size);
	res[12] = RES_EXT_IRQ;
	put_le16(res + 13, 6);
	res[15] = EXT_IRQ_CONSUMER | (v->edge ? EXT_IRQ_EDGE : 0);
	res[16] = 1; /* one interrupt */
	put_le32(res + 17, v->gsi);
	static const char hex[] = "0123456789ABCDEF";
	char name[4] = {'V', 'R', hex[index >> 4 & 0xf], hex[index & 0xf]};
	aml_device(a, name, "LNRO0005", index, res, sizeof(res));
}

void acpi_dsdt_body(struct aml *a, const struct acpi_config *cfg)
{
	aml_byte(a, AML_SCOPE);
	size_t scope = aml_open(a);
	aml_byte(a, AML_ROOT);
	aml_nameseg(a, "_SB_");
	for (unsigned i = 0; i < cfg->nuarts; i++)
		serial_device(a, i, &cfg->uarts[i]);
	for (unsigned i = 0; i < cfg->nvirtio; i++)
		virtio_mmio_device(a, i, &cfg->virtio[i]);
	aml_close(a, scope);

	/* Name(_S5, Package() { SLP_TYPa, SLP_TYPb, reserved, reserved }) */
	aml_name(a, "_S5_");
	aml_byte(a, AML_PACKAGE);
	size_t pkg = aml_open(a);
	aml_byte(a, 4);
	aml_integer(a, ACPI_S5_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_close(a, pkg);
}

/* ---- tables ---- */

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

static void header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put_le32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE_ID, 8);
	put_le32(t + 24, 1); /* OEM revision */
	memcpy(t + 28, CREATOR_ID, 4);
	put_le32(t + 32, 1); /* creator revision */
}

static void finish(uint8_t *t)
{
	t[9] = 0;
	t[9] = checksum(t, le32(t + 4));
}

/* A byte-wide register in I/O space (generic address structure). */
static void gas_io(uint8_t *g, uint16_t port)
{
	g[0] = GAS_SYSTEM_IO;
	g[1] = 8; /* bit width */
	g[2] = 0; /* bit offset */
	g[3] = GAS_ACCESS_BYTE;
	put_le64(g + 4, port);
}

static void build_fadt(uint8_t *t, const struct acpi_config *cfg, uint64_t dsdt)
{
	header(t, "FACP", FADT_SIZE, 6);
	put_le32(t + FADT_DSDT, (uint32_t)dsdt);
	put_le16(t + FADT_SCI_INT, SCI_IRQ);
	uint16_t boot_arch = BOOT_ARCH_NO_VGA;
	if (cfg->has_i8042)
		boot_arch |= BOOT_ARCH_8042;
	if (!cfg->has_cmos_rtc)
		boot_arch |= BOOT_ARCH_NO_CMOS_RTC;
	put_le16(t + FADT_IAPC_BOOT_ARCH, boot_arch);
	put_le32(t + FADT_FLAGS, FADT_F_HW_REDUCED_ACPI | FADT_F_RESET_REG_SUP);
	gas_io(t + FADT_RESET_REG, cfg->reset_port);
	t[FADT_RESET_VALUE] = cfg->reset_value;
	t[FADT_MINOR_VERSION] = 3;
	put_le64(t + FADT_X_DSDT, dsdt);
	gas_io(t + FADT_SLEEP_CONTROL, cfg->sleep_control_port);
	gas_io(t + FADT_SLEEP_STATUS, cfg->sleep_status_port);
	finish(t);
}

static size_t madt_size(const struct acpi_config *cfg)
{
	return MADT_FIXED_SIZE + cfg->cpus * MADT_LAPIC_SIZE + MADT_IOAPIC_SIZE + MADT_ISO_SIZE +
	       MADT_LAPIC_NMI_SIZE;
}

static void build_madt(uint8_t *t, const struct acpi_config *cfg)
{
	uint32_t len = (uint32_t)madt_size(cfg);
	header(t, "APIC", len, 5);
	put_le32(t + 36, ACPI_LAPIC_ADDR);
	put_le32(t + 40, 0); /* flags: no PC-AT 8259 pair */
	uint8_t *e = t + MADT_FIXED_SIZE;
	for (unsigned cpu = 0; cpu < cfg->cpus; cpu++, e += MADT_LAPIC_SIZE) {
		e[0] = MADT_LAPIC;
		e[1] = MADT_LAPIC_SIZE;
		e[2] = (uint8_t)cpu; /* ACPI processor UID */
		e[3] = (uint8_t)cpu; /* APIC id */
		put_le32(e + 4, MADT_ENABLED);
	}
	e[0] = MADT_IOAPIC;
	e[1] = MADT_IOAPIC_SIZE;
	e[2] = (uint8_t)cfg->cpus; /* IOAPIC id, after the LAPIC ids */
	e[3] = 0;
	put_le32(e + 4, ACPI_IOAPIC_ADDR);
	put_le32(e + 8, 0); /* GSI base */
	e += MADT_IOAPIC_SIZE;
	e[0] = MADT_ISO;
	e[1] = MADT_ISO_SIZE;
	e[2] = 0; /* ISA bus */
	e[3] = PIT_ISA_IRQ;
	put_le32(e + 4, PIT_GSI);
	put_le16(e + 8, 0); /* polarity and trigger: as the bus says */
	e += MADT_ISO_SIZE;
	e[0] = MADT_LAPIC_NMI;
	e[1] = MADT_LAPIC_NMI_SIZE;
	e[2] = 0xff; /* every processor */
	put_le16(e + 3, 0);
	e[5] = 1; /* LINT1 */
	finish(t);
}

static int check_config(const struct acpi_config *cfg, char *err, size_t errlen)
{
	if (cfg->cpus == 0 || cfg->cpus > ACPI_MAX_CPUS) {
		snprintf(err, errlen, "ACPI: %u CPUs (1 to %d)", cfg->cpus, ACPI_MAX_CPUS);
		return -1;
	}
	if (cfg->nvirtio > ACPI_MAX_VIRTIO_MMIO || (cfg->nvirtio && !cfg->virtio)) {
		snprintf(err, errlen, "ACPI: %u virtio-mmio devices (at most %d)", cfg->nvirtio,
			 ACPI_MAX_VIRTIO_MMIO);
		return -1;
	}
	if (cfg->nuarts > ACPI_MAX_UARTS || (cfg->nuarts && !cfg->uarts)) {
		snprintf(err, errlen, "ACPI: %u UARTs (at most %d)", cfg->nuarts, ACPI_MAX_UARTS);
		return -1;
	}
	for (unsigned i = 0; i < cfg->nuarts; i++) {
		if (cfg->uarts[i].irq > 15) {
			snprintf(err, errlen, "ACPI: serial IRQ %u is not an ISA IRQ", cfg->uarts[i].irq);
			return -1;
		}
	}
	for (unsigned i = 0; i < cfg->nvirtio; i++) {
		const struct acpi_virtio_mmio *v = &cfg->virtio[i];
		if (v->size == 0 || v->base > UINT32_MAX - (v->size - 1)) {
			snprintf(err, errlen, "ACPI: virtio-mmio device %u (%#x, %u bytes) is not below 4 GiB",
				 i, v->base, v->size);
			return -1;
		}
	}
	return 0;
}

uint64_t acpi_build(uint8_t *ram, uint64_t ram_size, uint64_t region, uint64_t region_size,
		    const struct acpi_config *cfg, char *err, size_t errlen)
{
	if (check_config(cfg, err, errlen) != 0)
		return 0;
	if (region > ram_size || region_size > ram_size - region || region > UINT32_MAX ||
	    region_size > UINT32_MAX - region) {
		snprintf(err, errlen, "ACPI: region %#llx (+%llu) is not in RAM below 4 GiB",
			 (unsigned long long)region, (unsigned long long)region_size);
		return 0;
	}
	uint64_t end = region + region_size;
	uint64_t rsdp = (region + 15) & ~15ull;
	uint64_t xsdt = rsdp + RSDP_SIZE;
	uint64_t xsdt_len = HEADER_SIZE + XSDT_ENTRIES * 8;
	uint64_t fadt = (xsdt + xsdt_len + 7) & ~7ull;
	uint64_t madt = fadt + FADT_SIZE;
	uint64_t dsdt = (madt + madt_size(cfg) + 7) & ~7ull;
	if (dsdt + HEADER_SIZE > end) {
		snprintf(err, errlen, "ACPI: region of %llu bytes is too small",
			 (unsigned long long)region_size);
		return 0;
	}
	memset(ram + region, 0, region_size);

	struct aml body = {ram + dsdt + HEADER_SIZE, end - dsdt - HEADER_SIZE, 0, 0};
	acpi_dsdt_body(&body, cfg);
	if (body.overflow) {
		snprintf(err, errlen, "ACPI: region of %llu bytes is too small for the DSDT",
			 (unsigned long long)region_size);
		return 0;
	}
	header(ram + dsdt, "DSDT", (uint32_t)(HEADER_SIZE + body.len), 2);
	finish(ram + dsdt);

	build_fadt(ram + fadt, cfg, dsdt);
	build_madt(ram + madt, cfg);

	uint8_t *x = ram + xsdt;
	header(x, "XSDT", (uint32_t)xsdt_len, 1);
	put_le64(x + HEADER_SIZE, fadt);
	put_le64(x + HEADER_SIZE + 8, madt);
	finish(x);

	uint8_t *r = ram + rsdp;
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, OEM_ID, 6);
	r[15] = 2; /* revision: ACPI 2.0+, has the XSDT */
	put_le32(r + 16, 0); /* no RSDT */
	put_le32(r + 20, RSDP_SIZE);
	put_le64(r + 24, xsdt);
	r[8] = checksum(r, RSDP_V1_SIZE);
	r[32] = checksum(r, RSDP_SIZE);
	return rsdp;
}
