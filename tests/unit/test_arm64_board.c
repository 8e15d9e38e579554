/* test_arm64_board.c - the arm64 board's device tree builder, kernel Image
 * unpacking (gzip, made here with zlib) and placement
 * (vmm-core/arm64/arm64_board.h), read back with libfdt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libfdt.h>
#include <zlib.h>

#include "arm64_board.h"
#include "ipc.h"
#include "le.h"

#define MiB (1ull << 20)

static uint8_t blob[64 * 1024];

static const struct arm64_dt_device devices[] = {
	{.kind = ARM64_DT_PL011, .base = 0xc0000000, .size = 0x1000, .spi = 1},
	{.kind = ARM64_DT_VIRTIO_MMIO, .base = 0xd0001000, .size = 0x200, .spi = 16},
	{.kind = ARM64_DT_VIRTIO_MMIO, .base = 0xd0001200, .size = 0x200, .spi = 17, .edge = true},
};

static size_t build(unsigned cpus)
{
	struct arm64_dt_config cfg = {.ram_size = 256 * MiB, .cpus = cpus,
				      .bootargs = "console=ttyAMA0 quiet",
				      .initrd_start = 0xe000000, .initrd_size = 0x123456,
				      .devices = devices, .ndevices = 3};
	char err[128] = "";
	size_t n = arm64_dt_build(blob, sizeof(blob), &cfg, err, sizeof(err));
	assert_string_equal(err, "");
	return n;
}

static int node(const char *path)
{
	int off = fdt_path_offset(blob, path);
	if (off < 0)
		fail_msg("no node %s", path);
	return off;
}

static const void *prop(const char *path, const char *name, int *len)
{
	const void *p = fdt_getprop(blob, node(path), name, len);
	if (!p)
		fail_msg("%s has no %s", path, name);
	return p;
}

static uint32_t cell(const void *p, int i)
{
	return fdt32_to_cpu(((const fdt32_t *)p)[i]);
}

static uint64_t cell64(const void *p, int i)
{
	return fdt64_to_cpu(((const fdt64_t *)p)[i]);
}

static void test_tree_describes_the_board(void **state)
{
	size_t n = build(2);
	assert_true(n > 0 && n <= sizeof(blob));
	assert_int_equal(fdt_check_header(blob), 0);
	assert_int_equal(fdt_totalsize(blob), n);
	int len;
	assert_int_equal(cell(prop("/", "#address-cells", &len), 0), 2);
	assert_int_equal(cell(prop("/", "interrupt-parent", &len), 0),
			 cell(prop("/intc@f0000000", "phandle", &len), 0));

	const void *reg = prop("/memory@0", "reg", &len);
	assert_int_equal(len, 16);
	assert_int_equal(cell64(reg, 0), 0);
	assert_int_equal(cell64(reg, 1), 256 * MiB);

	assert_string_equal(prop("/cpus/cpu@1", "enable-method", &len), "psci");
	assert_int_equal(cell(prop("/cpus/cpu@1", "reg", &len), 0), 1);
	assert_true(fdt_path_offset(blob, "/cpus/cpu@2") < 0);
	assert_string_equal(prop("/psci", "compatible", &len), "arm,psci-0.2");
	assert_string_equal(prop("/psci", "method", &len), "hvc");

	const void *timer = prop("/timer", "interrupts", &len);
	assert_int_equal(len, 12 * 4);
	assert_int_equal(cell(timer, 0), 1); /* PPI */
	assert_int_equal(cell(timer, 1), 13);
	assert_int_equal(cell(timer, 7), 11); /* the virtual timer, third */

	const void *gic = prop("/intc@f0000000", "reg", &len);
	assert_int_equal(len, 32);
	assert_int_equal(cell64(gic, 0), ARM64_GICD_BASE);
	assert_int_equal(cell64(gic, 2), ARM64_GICR_BASE);
	assert_int_equal(cell64(gic, 3), 2 * ARM64_GICR_SIZE_PER_CPU);
	assert_string_equal(prop("/intc@f0000000", "compatible", &len), "arm,gic-v3");

	assert_string_equal(prop("/chosen", "bootargs", &len), "console=ttyAMA0 quiet");
	assert_string_equal(prop("/chosen", "stdout-path", &len), "/pl011@c0000000");
	assert_int_equal(cell64(prop("/chosen", "linux,initrd-start", &len), 0), 0xe000000);
	assert_int_equal(cell64(prop("/chosen", "linux,initrd-end", &len), 0), 0xe000000 + 0x123456);

	const void *uart = prop("/pl011@c0000000", "interrupts", &len);
	assert_int_equal(cell(uart, 0), 0); /* SPI */
	assert_int_equal(cell(uart, 1), 1);
	assert_int_equal(cell(uart, 2), 4); /* level, active high */
	assert_int_equal(fdt_node_check_compatible(blob, node("/pl011@c0000000"), "arm,primecell"), 0);
	assert_int_equal(cell(prop("/pl011@c0000000", "clocks", &len), 0),
			 cell(prop("/apb-pclk", "phandle", &len), 0));

	assert_string_equal(prop("/virtio_mmio@d0001000", "compatible", &len), "virtio,mmio");
	const void *virtio = prop("/virtio_mmio@d0001200", "interrupts", &len);
	assert_int_equal(cell(virtio, 1), 17);
	assert_int_equal(cell(virtio, 2), 1); /* edge */
	reg = prop("/virtio_mmio@d0001000", "reg", &len);
	assert_int_equal(cell64(reg, 0), 0xd0001000);
	assert_int_equal(cell64(reg, 1), 0x200);
}

/* What the devices declared, as the core placed it: dev-serial's PL011 (its
 * own line), its debug port (no line: not in the tree) and hvc0 in
 * virtio-mmio slot 0; dev-net's virtio-net in slot 1 (devproxy_policy.c:
 * 0xd0001000 + 0x200 n, SPI 16 + n, level). */
static void test_tree_from_placed_devices(void **state)
{
	struct ipc_hello serial = {.nranges = 3, .nirqs = 2};
	serial.ranges[0] = (struct ipc_range){.space = IPC_SPACE_MMIO, .base = 0x996, .size = 1,
					      .kind = IPC_RANGE_DEBUGCON};
	serial.ranges[1] = (struct ipc_range){.space = IPC_SPACE_MMIO, .base = 0xc0000000,
					      .size = 0x1000, .kind = IPC_RANGE_PL011,
					      .has_irq = true, .irq = 1};
	serial.ranges[2] = (struct ipc_range){.space = IPC_SPACE_MMIO, .base = 0xd0001000,
					      .size = 0x200, .kind = IPC_RANGE_VIRTIO_MMIO,
					      .has_irq = true, .irq = 0};
	serial.irqs[0] = (struct ipc_irq_line){.gsi = 16, .trigger = IPC_TRIGGER_LEVEL};
	serial.irqs[1] = (struct ipc_irq_line){.gsi = 1, .trigger = IPC_TRIGGER_LEVEL};
	struct ipc_hello net = {.nranges = 1, .nirqs = 1};
	net.ranges[0] = (struct ipc_range){.space = IPC_SPACE_MMIO, .base = 0xd0001200,
					   .size = 0x200, .kind = IPC_RANGE_VIRTIO_MMIO,
					   .has_irq = true, .irq = 0};
	net.irqs[0] = (struct ipc_irq_line){.gsi = 17, .trigger = IPC_TRIGGER_LEVEL};

	struct arm64_dt_device devs[ARM64_DT_MAX_DEVICES];
	unsigned n = 0;
	assert_int_equal(arm64_dt_add_devices(&serial, devs, &n), 0);
	assert_int_equal(arm64_dt_add_devices(&net, devs, &n), 0);
	assert_int_equal(n, 3);
	struct arm64_dt_config cfg = {.ram_size = 256 * MiB, .cpus = 2, .devices = devs,
				      .ndevices = n};
	char err[128] = "";
	assert_true(arm64_dt_build(blob, sizeof(blob), &cfg, err, sizeof(err)) > 0);
	int len;
	assert_string_equal(prop("/chosen", "stdout-path", &len), "/pl011@c0000000");
	assert_int_equal(cell(prop("/pl011@c0000000", "interrupts", &len), 1), 1);
	const char *nodes[2] = {"/virtio_mmio@d0001000", "/virtio_mmio@d0001200"};
	for (int i = 0; i < 2; i++) {
		assert_string_equal(prop(nodes[i], "compatible", &len), "virtio,mmio");
		const void *irq = prop(nodes[i], "interrupts", &len);
		assert_int_equal(len, 12);
		assert_int_equal(cell(irq, 0), 0);      /* SPI */
		assert_int_equal(cell(irq, 1), 16 + i); /* the slot's line */
		assert_int_equal(cell(irq, 2), 4);      /* level, active high */
		const void *reg = prop(nodes[i], "reg", &len);
		assert_int_equal(cell64(reg, 0), 0xd0001000 + 0x200 * i);
		assert_int_equal(cell64(reg, 1), 0x200);
		assert_true(fdt_getprop(blob, node(nodes[i]), "dma-coherent", &len) != NULL);
	}
	/* Nothing for the debug port: three device nodes, no more. */
	assert_true(fdt_path_offset(blob, "/virtio_mmio@d0001400") < 0);

	/* A tree takes ARM64_DT_MAX_DEVICES nodes: one more is refused. */
	n = ARM64_DT_MAX_DEVICES - 1;
	assert_int_equal(arm64_dt_add_devices(&net, devs, &n), 0);
	assert_int_equal(n, ARM64_DT_MAX_DEVICES);
	assert_int_equal(arm64_dt_add_devices(&net, devs, &n), -1);
	assert_int_equal(n, ARM64_DT_MAX_DEVICES);
}

static void test_tree_errors(void **state)
{
	struct arm64_dt_config cfg = {.ram_size = 64 * MiB, .cpus = 9};
	char err[128] = "";
	assert_int_equal(arm64_dt_build(blob, sizeof(blob), &cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "the arm64 board takes 1 to 8 vCPUs, not 9");
	cfg.cpus = 1;
	assert_int_equal(arm64_dt_build(blob, 200, &cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "device tree: FDT_ERR_NOSPACE");
	/* No initrd, no bootargs, no PL011: no such properties. */
	assert_true(arm64_dt_build(blob, sizeof(blob), &cfg, err, sizeof(err)) > 0);
	int len;
	assert_null(fdt_getprop(blob, node("/chosen"), "linux,initrd-start", &len));
	assert_null(fdt_getprop(blob, node("/chosen"), "stdout-path", &len));
}

static void test_image_placement(void **state)
{
	uint64_t ram_size = 64 * MiB;
	uint8_t *ram = calloc(1, ram_size);
	uint8_t kernel[4096] = {0};
	put_le64(kernel + 8, 0);            /* text_offset */
	put_le64(kernel + 16, 3 * MiB);     /* image_size, with the bss */
	put_le32(kernel + 56, 0x644d5241);  /* "ARM\x64" */
	kernel[100] = 0x5a;
	uint8_t initrd[5000];
	memset(initrd, 0x77, sizeof(initrd));
	struct arm64_linux_loaded l;
	char err[160] = "";
	assert_int_equal(arm64_linux_place(ram, ram_size, kernel, sizeof(kernel), initrd,
					   sizeof(initrd), &l, err, sizeof(err)), 0);
	assert_int_equal(l.entry, 2 * MiB);
	assert_int_equal(ram[l.entry + 100], 0x5a);
	assert_int_equal(l.dtb, 62 * MiB);
	assert_int_equal(l.initrd_start % 4096, 0);
	assert_true(l.initrd_start + sizeof(initrd) <= l.dtb);
	assert_int_equal(ram[l.initrd_start], 0x77);
	assert_int_equal(l.initrd_size, sizeof(initrd));

	/* A foreign file, too little RAM: refused with the reason. */
	put_le32(kernel + 56, 0);
	assert_int_equal(arm64_linux_place(ram, ram_size, kernel, sizeof(kernel), NULL, 0, &l, err,
					   sizeof(err)), -1);
	assert_non_null(strstr(err, "not an arm64 kernel Image"));
	put_le32(kernel + 56, 0x644d5241);
	put_le64(kernel + 16, 60 * MiB);
	assert_int_equal(arm64_linux_place(ram, ram_size, kernel, sizeof(kernel), initrd,
					   sizeof(initrd), &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "do not fit"));
	free(ram);
}

/* data gzip'd as gzip(1) would (a gzip wrapper around deflate); returns its size. */
static size_t gzip_buf(const uint8_t *data, size_t size, uint8_t *out, size_t cap)
{
	z_stream z = {.next_in = (Bytef *)data, .avail_in = (uInt)size, .next_out = out,
		      .avail_out = (uInt)cap};
	assert_int_equal(deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t n = cap - z.avail_out;
	deflateEnd(&z);
	return n;
}

static void test_image_gunzip(void **state)
{
	/* More than one of the unpacker's 16 MiB steps, not a multiple of them. */
	size_t size = 17 * MiB + 123;
	uint8_t *image = malloc(size);
	for (size_t i = 0; i < size; i++)
		image[i] = (uint8_t)(i * 7 + (i >> 13));
	put_le32(image + 56, 0x644d5241);
	size_t cap = size + size / 100 + 1024;
	uint8_t *gz = malloc(cap + 16);
	size_t gz_size = gzip_buf(image, size, gz, cap);
	assert_true(arm64_image_is_gzip(gz, gz_size));
	assert_false(arm64_image_is_gzip(image, size));

	uint8_t *out;
	size_t out_size;
	char err[160] = "";
	assert_int_equal(arm64_image_gunzip(gz, gz_size, 64 * MiB, &out, &out_size, err,
					     sizeof(err)), 0);
	assert_int_equal(out_size, size);
	assert_memory_equal(out, image, size);
	free(out);

	/* Bytes after the gzip member are ignored, as gzip -d does. */
	memset(gz + gz_size, 0, 16);
	assert_int_equal(arm64_image_gunzip(gz, gz_size + 16, 64 * MiB, &out, &out_size, err,
					     sizeof(err)), 0);
	assert_int_equal(out_size, size);
	free(out);

	/* Truncated, corrupt: refused, nothing returned. */
	assert_int_equal(arm64_image_gunzip(gz, gz_size / 2, 64 * MiB, &out, &out_size, err,
					     sizeof(err)), -1);
	assert_null(out);
	assert_non_null(strstr(err, "truncated"));
	gz[gz_size - 5] ^= 0xff; /* the CRC-32 in the trailer */
	assert_int_equal(arm64_image_gunzip(gz, gz_size, 64 * MiB, &out, &out_size, err,
					     sizeof(err)), -1);
	assert_null(out);
	assert_non_null(strstr(err, "corrupt"));

	/* Exactly max_size bytes fit; one byte less is refused, nothing returned. */
	gz[gz_size - 5] ^= 0xff;
	assert_int_equal(arm64_image_gunzip(gz, gz_size, size, &out, &out_size, err, sizeof(err)), 0);
	assert_int_equal(out_size, size);
	free(out);
	assert_int_equal(arm64_image_gunzip(gz, gz_size, size - 1, &out, &out_size, err,
					     sizeof(err)), -1);
	assert_null(out);
	assert_non_null(strstr(err, "unpacks to more than"));
	free(gz);
	free(image);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_describes_the_board),
		cmocka_unit_test(test_tree_from_placed_devices),
		cmocka_unit_test(test_tree_errors),
		cmocka_unit_test(test_image_placement),
		cmocka_unit_test(test_image_gunzip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
