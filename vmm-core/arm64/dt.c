/* dt.c - the arm64 board's device tree (arm64_board.h), written with
 * libfdt's sequential-write API.  Bindings: Linux's
 * Documentation/devicetree/bindings (arm/cpus, arm/psci, timer/arm,arch_timer,
 * interrupt-controller/arm,gic-v3, serial/pl011, virtio/mmio). */
#include "arm64_board.h"

#include <libfdt.h>
#include <stdio.h>
#include <string.h>

#include "ipc.h"

#define PHANDLE_GIC 1
#define PHANDLE_CLK 2
#define PL011_CLOCK_HZ 24000000u

/* GIC interrupt specifier cells (gic-v3 binding). */
#define GIC_SPI 0
#define GIC_PPI 1
#define IRQ_EDGE_RISING 1
#define IRQ_LEVEL_HIGH 4

/* Every libfdt call below goes through this: the first failure is kept. */
struct writer {
	void *fdt;
	int err;
};

#define W(w, call) do { if (!(w)->err) (w)->err = (call); } while (0)

static void prop_reg(struct writer *w, uint64_t base, uint64_t size)
{
	fdt64_t reg[2] = {cpu_to_fdt64(base), cpu_to_fdt64(size)};
	W(w, fdt_property(w->fdt, "reg", reg, sizeof(reg)));
}

static void prop_irq(struct writer *w, uint32_t type, uint32_t num, uint32_t flags)
{
	fdt32_t irq[3] = {cpu_to_fdt32(type), cpu_to_fdt32(num), cpu_to_fdt32(flags)};
	W(w, fdt_property(w->fdt, "interrupts", irq, sizeof(irq)));
}

/* A property of NUL-separated strings. */
static void prop_strings(struct writer *w, const char *name, const char *list, size_t len)
{
	W(w, fdt_property(w->fdt, name, list, (int)len));
}

static void begin(struct writer *w, const char *name)
{
	W(w, fdt_begin_node(w->fdt, name));
}

static void end(struct writer *w)
{
	W(w, fdt_end_node(w->fdt));
}

static void cpus(struct writer *w, unsigned n)
{
	begin(w, "cpus");
	W(w, fdt_property_u32(w->fdt, "#address-cells", 1));
	W(w, fdt_property_u32(w->fdt, "#size-cells", 0));
	for (unsigned i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "cpu@%u", i);
		begin(w, name);
		W(w, fdt_property_string(w->fdt, "device_type", "cpu"));
		W(w, fdt_property_string(w->fdt, "compatible", "arm,arm-v8"));
		W(w, fdt_property_u32(w->fdt, "reg", i)); /* MPIDR affinity 0 = the vCPU index */
		W(w, fdt_property_string(w->fdt, "enable-method", "psci"));
		end(w);
	}
	end(w);
}

static void timer(struct writer *w)
{
	static const uint32_t ppis[4] = {ARM64_TIMER_PPI_SEC, ARM64_TIMER_PPI_NONSEC,
					 ARM64_TIMER_PPI_VIRT, ARM64_TIMER_PPI_HYP};
	fdt32_t irqs[12];
	for (int i = 0; i < 4; i++) {
		irqs[3 * i] = cpu_to_fdt32(GIC_PPI);
		irqs[3 * i + 1] = cpu_to_fdt32(ppis[i]);
		irqs[3 * i + 2] = cpu_to_fdt32(IRQ_LEVEL_HIGH);
	}
	begin(w, "timer");
	W(w, fdt_property_string(w->fdt, "compatible", "arm,armv8-timer"));
	W(w, fdt_property(w->fdt, "interrupts", irqs, sizeof(irqs)));
	W(w, fdt_property(w->fdt, "always-on", NULL, 0));
	end(w);
}

static void gic(struct writer *w, unsigned ncpus)
{
	char name[32];
	snprintf(name, sizeof(name), "intc@%llx", (unsigned long long)ARM64_GICD_BASE);
	begin(w, name);
	W(w, fdt_property_string(w->fdt, "compatible", "arm,gic-v3"));
	W(w, fdt_property_u32(w->fdt, "#interrupt-cells", 3));
	W(w, fdt_property(w->fdt, "interrupt-controller", NULL, 0));
	W(w, fdt_property_u32(w->fdt, "#redistributor-regions", 1));
	fdt64_t reg[4] = {cpu_to_fdt64(ARM64_GICD_BASE), cpu_to_fdt64(ARM64_GICD_SIZE),
			  cpu_to_fdt64(ARM64_GICR_BASE),
			  cpu_to_fdt64(ARM64_GICR_SIZE_PER_CPU * ncpus)};
	W(w, fdt_property(w->fdt, "reg", reg, sizeof(reg)));
	W(w, fdt_property_u32(w->fdt, "phandle", PHANDLE_GIC));
	end(w);
}

static void device(struct writer *w, const struct arm64_dt_device *d)
{
	char name[48];
	static const char pl011_compat[] = "arm,pl011\0arm,primecell";
	static const char pl011_clocks[] = "uartclk\0apb_pclk";
	bool pl011 = d->kind == ARM64_DT_PL011;
	snprintf(name, sizeof(name), "%s@%llx", pl011 ? "pl011" : "virtio_mmio",
		 (unsigned long long)d->base);
	begin(w, name);
	if (pl011) {
		prop_strings(w, "compatible", pl011_compat, sizeof(pl011_compat));
		prop_strings(w, "clock-names", pl011_clocks, sizeof(pl011_clocks));
		fdt32_t clocks[2] = {cpu_to_fdt32(PHANDLE_CLK), cpu_to_fdt32(PHANDLE_CLK)};
		W(w, fdt_property(w->fdt, "clocks", clocks, sizeof(clocks)));
	} else {
		W(w, fdt_property_string(w->fdt, "compatible", "virtio,mmio"));
		W(w, fdt_property(w->fdt, "dma-coherent", NULL, 0));
	}
	prop_reg(w, d->base, d->size);
	prop_irq(w, GIC_SPI, d->spi, d->edge ? IRQ_EDGE_RISING : IRQ_LEVEL_HIGH);
	end(w);
}

int arm64_dt_add_devices(const struct ipc_hello *h, struct arm64_dt_device *out, unsigned *n)
{
	for (uint32_t r = 0; r < h->nranges; r++) {
		const struct ipc_range *range = &h->ranges[r];
		if ((range->kind != IPC_RANGE_PL011 && range->kind != IPC_RANGE_VIRTIO_MMIO) ||
		    !range->has_irq)
			continue;
		if (*n == ARM64_DT_MAX_DEVICES)
			return -1;
		out[(*n)++] = (struct arm64_dt_device){
			.kind = range->kind == IPC_RANGE_PL011 ? ARM64_DT_PL011 : ARM64_DT_VIRTIO_MMIO,
			.base = range->base, .size = range->size,
			.spi = h->irqs[range->irq].gsi,
			.edge = h->irqs[range->irq].trigger == IPC_TRIGGER_EDGE};
	}
	return 0;
}

size_t arm64_dt_build(void *buf, size_t size, const struct arm64_dt_config *cfg, char *err,
		      size_t errlen)
{
	if (cfg->cpus < 1 || cfg->cpus > ARM64_MAX_CPUS) {
		snprintf(err, errlen, "the arm64 board takes 1 to %d vCPUs, not %u", ARM64_MAX_CPUS,
			 cfg->cpus);
		return 0;
	}
	struct writer w = {.fdt = buf};
	W(&w, fdt_create(buf, (int)size));
	W(&w, fdt_finish_reservemap(buf));
	begin(&w, "");
	W(&w, fdt_property_string(buf, "compatible", "minivm,arm64"));
	W(&w, fdt_property_string(buf, "model", "minivm arm64 board"));
	W(&w, fdt_property_u32(buf, "#address-cells", 2));
	W(&w, fdt_property_u32(buf, "#size-cells", 2));
	W(&w, fdt_property_u32(buf, "interrupt-parent", PHANDLE_GIC));

	begin(&w, "chosen");
	if (cfg->bootargs)
		W(&w, fdt_property_string(buf, "bootargs", cfg->bootargs));
	if (cfg->initrd_size) {
		W(&w, fdt_property_u64(buf, "linux,initrd-start", cfg->initrd_start));
		W(&w, fdt_property_u64(buf, "linux,initrd-end", cfg->initrd_start + cfg->initrd_size));
	}
	for (unsigned i = 0; i < cfg->ndevices; i++) {
		if (cfg->devices[i].kind == ARM64_DT_PL011) {
			char path[48];
			snprintf(path, sizeof(path), "/pl011@%llx", (unsigned long long)cfg->devices[i].base);
			W(&w, fdt_property_string(buf, "stdout-path", path));
			break;
		}
	}
	end(&w);

	begin(&w, "memory@0");
	W(&w, fdt_property_string(buf, "device_type", "memory"));
	prop_reg(&w, 0, cfg->ram_size);
	end(&w);

	cpus(&w, cfg->cpus);
	begin(&w, "psci");
	static const char psci_compat[] = "arm,psci-0.2\0arm,psci";
	prop_strings(&w, "compatible", psci_compat, sizeof(psci_compat));
	W(&w, fdt_property_string(buf, "method", "hvc"));
	end(&w);
	timer(&w);
	gic(&w, cfg->cpus);

	begin(&w, "apb-pclk");
	W(&w, fdt_property_string(buf, "compatible", "fixed-clock"));
	W(&w, fdt_property_u32(buf, "#clock-cells", 0));
	W(&w, fdt_property_u32(buf, "clock-frequency", PL011_CLOCK_HZ));
	W(&w, fdt_property_string(buf, "clock-output-names", "clk24mhz"));
	W(&w, fdt_property_u32(buf, "phandle", PHANDLE_CLK));
	end(&w);

	for (unsigned i = 0; i < cfg->ndevices; i++)
		device(&w, &cfg->devices[i]);
	end(&w);
	W(&w, fdt_finish(buf));
	if (w.err) {
		snprintf(err, errlen, "device tree: %s", fdt_strerror(w.err));
		return 0;
	}
	return fdt_totalsize(buf);
}
