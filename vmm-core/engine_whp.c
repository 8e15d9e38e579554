/* engine_whp.c - the Windows Hypervisor Platform engine: one WHP partition,
 * guest RAM mapped into it from the shared file mapping, one vCPU per thread,
 * exits turned into bus accesses.
 *
 * WinHvPlatform.dll is loaded at run time into a dispatch table, never
 * linked: it exists only where the "Windows Hypervisor Platform" feature is
 * enabled, and a missing import would stop vmm-core.exe before main() with
 * no useful message.  Only System32 is searched.
 *
 * Interrupts: the split irqchip, as with KVM.  Each vCPU's LAPIC is the
 * hypervisor's (LocalApicEmulationMode xAPIC: it also takes INIT/SIPI, runs
 * the LAPIC timer and blocks a vCPU in HLT until an interrupt); the board's
 * IOAPIC stays in vmm-core and delivers with WHvRequestInterrupt.  The
 * hypervisor reports the EOI of level-triggered vectors (X64ApicEoi exit),
 * which drives the IOAPIC's remote IRR.
 *
 * The end of a guest is HLT with interrupts off.  Whether WHP reports every
 * such HLT (X64Halt exit) when it emulates the LAPIC is not documented, so
 * as on KVM a watcher also cancels vCPU 0's run every HALT_WATCH_MS and the
 * vCPU's thread looks whether it is halted (HaltSuspend) with IF = 0.
 *
 * Instruction emulation: WHP leaves the instruction behind a port or MMIO
 * exit to us.  Port I/O comes decoded (port, size, direction); string I/O
 * and MMIO are decoded with the soft CPU's decoder (soft/decode.c) rather
 * than WinHvEmulation.dll: one x86 decoder in the project, already tested
 * and fuzzed; no second DLL to load; and the instructions that reach devices
 * (MOV, MOVZX/MOVSX, TEST, INS/OUTS) are few.  Anything else is reported in
 * one line and stops the vCPU rather than guessed at. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <winhvplatform.h>

#include "boot.h"
#include "cpuid_policy.h"
/* winnt.h's REG_NONE is a registry value type, unused here; decode.h's
 * means "no register". */
#undef REG_NONE
#include "decode.h"
#include "engine.h"
#include "host.h"
#include "log.h"
#include "periodic.h"
#include "stats.h"

#define WHP_DLL "WinHvPlatform.dll"
/* What to do, kept short: the whole reason must fit one line of 256. */
#define ENABLE_WHP                                                                     \
	"turn on the Windows feature \"Windows Hypervisor Platform\" (optionalfeatures.exe) " \
	"and restart, or use -accel soft"
#define HALT_WATCH_MS 100 /* how often vCPU 0 is checked for a final HLT */
#define RFLAGS_IF (1ull << 9)
#define RFLAGS_DF (1ull << 10)
#define RFLAGS_TEST_FLAGS 0x8d5ull /* CF PF AF ZF SF OF: what TEST writes */

/* ---- the dispatch table ---- */

/* Every WHv function the engine (and `vmm-core --check`) calls. */
#define WHP_FUNCTIONS(X)                                                                    \
	X(WHvGetCapability, (WHV_CAPABILITY_CODE, VOID *, UINT32, UINT32 *))                  \
	X(WHvCreatePartition, (WHV_PARTITION_HANDLE *))                                     \
	X(WHvSetupPartition, (WHV_PARTITION_HANDLE))                                        \
	X(WHvDeletePartition, (WHV_PARTITION_HANDLE))                                       \
	X(WHvSetPartitionProperty,                                                          \
	  (WHV_PARTITION_HANDLE, WHV_PARTITION_PROPERTY_CODE, const VOID *, UINT32))          \
	X(WHvMapGpaRange, (WHV_PARTITION_HANDLE, VOID *, WHV_GUEST_PHYSICAL_ADDRESS, UINT64,   \
			   WHV_MAP_GPA_RANGE_FLAGS))                                        \
	X(WHvTranslateGva, (WHV_PARTITION_HANDLE, UINT32, WHV_GUEST_VIRTUAL_ADDRESS,           \
			    WHV_TRANSLATE_GVA_FLAGS, WHV_TRANSLATE_GVA_RESULT *,              \
			    WHV_GUEST_PHYSICAL_ADDRESS *))                                  \
	X(WHvCreateVirtualProcessor, (WHV_PARTITION_HANDLE, UINT32, UINT32))                \
	X(WHvDeleteVirtualProcessor, (WHV_PARTITION_HANDLE, UINT32))                        \
	X(WHvRunVirtualProcessor, (WHV_PARTITION_HANDLE, UINT32, VOID *, UINT32))           \
	X(WHvCancelRunVirtualProcessor, (WHV_PARTITION_HANDLE, UINT32, UINT32))             \
	X(WHvGetVirtualProcessorRegisters, (WHV_PARTITION_HANDLE, UINT32,                   \
					    const WHV_REGISTER_NAME *, UINT32,              \
					    WHV_REGISTER_VALUE *))                          \
	X(WHvSetVirtualProcessorRegisters, (WHV_PARTITION_HANDLE, UINT32,                   \
					    const WHV_REGISTER_NAME *, UINT32,              \
					    const WHV_REGISTER_VALUE *))                    \
	X(WHvRequestInterrupt, (WHV_PARTITION_HANDLE, const WHV_INTERRUPT_CONTROL *, UINT32))

struct whp_api {
#define WHP_FIELD(name, params) HRESULT(WINAPI *name) params;
	WHP_FUNCTIONS(WHP_FIELD)
#undef WHP_FIELD
};

static struct whp_api whp;
static pthread_once_t whp_once = PTHREAD_ONCE_INIT;
static char whp_why[320]; /* empty when whp is loaded */

static void whp_load(void)
{
	char err[256];
	void *lib = host_lib_open_system(WHP_DLL, err, sizeof(err));
	if (!lib) {
		snprintf(whp_why, sizeof(whp_why), "%s: %s", err, ENABLE_WHP);
		return;
	}
	/* Stays loaded: the process that asks is the one that will use it. */
#define WHP_RESOLVE(name, params)                                                          \
	whp.name = (HRESULT(WINAPI *) params)host_lib_sym(lib, #name);                       \
	if (!whp.name) {                                                                   \
		snprintf(whp_why, sizeof(whp_why), "%s has no %s: Windows 10 1803 or later " \
			 "is needed, or use -accel soft", WHP_DLL, #name);                  \
		return;                                                                    \
	}
	WHP_FUNCTIONS(WHP_RESOLVE)
#undef WHP_RESOLVE
}

/* The table, or NULL with why. */
static const struct whp_api *whp_api(char *why, size_t n)
{
	pthread_once(&whp_once, whp_load);
	if (whp_why[0]) {
		snprintf(why, n, "%s", whp_why);
		return NULL;
	}
	return &whp;
}

static bool whp_available(char *why, size_t n)
{
	const struct whp_api *api = whp_api(why, n);
	if (!api)
		return false;
	WHV_CAPABILITY cap = {0};
	UINT32 written = 0;
	HRESULT hr = api->WHvGetCapability(WHvCapabilityCodeHypervisorPresent, &cap, sizeof(cap),
					   &written);
	if (FAILED(hr)) {
		snprintf(why, n, "WHvGetCapability failed (HRESULT 0x%08lx): %s", (unsigned long)hr,
			 ENABLE_WHP);
		return false;
	}
	if (!cap.HypervisorPresent) {
		snprintf(why, n, "WinHvPlatform.dll is there but no hypervisor is running: enable "
				 "virtualization (VT-x/AMD-V) in the firmware, then %s",
			 ENABLE_WHP);
		return false;
	}
	return true;
}

static int whp_describe(char *out, size_t n)
{
	char why[320];
	const struct whp_api *api = whp_api(why, sizeof(why));
	if (!api) {
		if (n)
			out[0] = '\0'; /* available() said why */
		return 0;
	}
	WHV_CAPABILITY cap;
	UINT32 written;
	size_t len = 0;
#define CAP(code) (memset(&cap, 0, sizeof(cap)), \
		   SUCCEEDED(api->WHvGetCapability(code, &cap, sizeof(cap), &written)))
#define PUT(...)                                                                           \
	do {                                                                               \
		int k = snprintf(out + len, len < n ? n - len : 0, __VA_ARGS__);            \
		if (k > 0)                                                                 \
			len += (size_t)k;                                                  \
	} while (0)
	PUT("  hypervisor present: %s\n",
	    CAP(WHvCapabilityCodeHypervisorPresent) ? (cap.HypervisorPresent ? "yes" : "no")
						    : "unknown (WHvGetCapability failed)");
	if (CAP(WHvCapabilityCodeFeatures))
		PUT("  features: %#llx (LocalApicEmulation %s, Xsave %s)\n",
		    (unsigned long long)cap.Features.AsUINT64,
		    cap.Features.LocalApicEmulation ? "yes" : "no", cap.Features.Xsave ? "yes" : "no");
	if (CAP(WHvCapabilityCodeExtendedVmExits))
		PUT("  extended exits: %#llx (CPUID %s, MSR %s, exception %s)\n",
		    (unsigned long long)cap.ExtendedVmExits.AsUINT64,
		    cap.ExtendedVmExits.X64CpuidExit ? "yes" : "no",
		    cap.ExtendedVmExits.X64MsrExit ? "yes" : "no",
		    cap.ExtendedVmExits.ExceptionExit ? "yes" : "no");
	if (CAP(WHvCapabilityCodeProcessorVendor))
		PUT("  processor vendor: %s\n", cap.ProcessorVendor == WHvProcessorVendorIntel ? "Intel"
						: cap.ProcessorVendor == WHvProcessorVendorAmd ? "AMD"
											       : "other");
	if (CAP(WHvCapabilityCodeProcessorFeatures))
		PUT("  processor features: %#llx\n", (unsigned long long)cap.ProcessorFeatures.AsUINT64);
	if (CAP(WHvCapabilityCodeProcessorClockFrequency))
		PUT("  processor clock: %llu Hz\n", (unsigned long long)cap.ProcessorClockFrequency);
	if (CAP(WHvCapabilityCodeInterruptClockFrequency))
		PUT("  interrupt clock: %llu Hz\n", (unsigned long long)cap.InterruptClockFrequency);
#undef PUT
#undef CAP
	return (int)len;
}

/* ---- the partition ---- */

struct whp_vcpu {
	bool created;
};

struct engine {
	WHV_PARTITION_HANDLE partition;
	uint8_t *ram;
	uint64_t ram_size;                  /* at guest physical 0 */
	uint64_t high_ram_gpa, high_ram_size; /* the rest, at ram + ram_size */
	struct engine_bus bus;
	struct engine_irqchip irqchip;
	_Atomic int stop_reason; /* enum vcpu_stop asked by stop(), or -1 */
	struct cpuid_policy cpuid;
	/* The halt watcher (see the top of this file). */
	struct periodic halt_watcher;
	int ncpus;
	struct whp_vcpu vcpus[];
};

/* The CPUID leaves answered on exits: the board's policy (cpuid_policy.h)
 * and the TSC frequency.  WHP fixes CPUID at WHvSetupPartition, so the
 * per-vCPU APIC id can only be given this way. */
static const UINT32 cpuid_exit_leaves[] = {1, 0xb, 0x15, 0x16, 0x1f, 0x80000007};

static void whp_destroy(struct engine *e)
{
	if (!e)
		return;
	periodic_destroy(&e->halt_watcher);
	if (e->partition) {
		for (int i = 0; i < e->ncpus; i++)
			if (e->vcpus[i].created)
				whp.WHvDeleteVirtualProcessor(e->partition, (UINT32)i);
		whp.WHvDeletePartition(e->partition);
	}
	free(e);
}

static int set_property(struct engine *e, WHV_PARTITION_PROPERTY_CODE code, const void *value,
			UINT32 size, const char *what, char *err, size_t n)
{
	HRESULT hr = whp.WHvSetPartitionProperty(e->partition, code, value, size);
	if (FAILED(hr)) {
		snprintf(err, n, "the hypervisor refused the partition's %s (HRESULT 0x%08lx)", what,
			 (unsigned long)hr);
		return -1;
	}
	return 0;
}

/* Cancels vCPU 0's run every HALT_WATCH_MS: its thread then looks at its
 * state (final_halt).  WHP does not document whether a cancel reaches a
 * vCPU that is not running at that moment; the stand-in keeps it. */
static void halt_watch(void *opaque)
{
	struct engine *e = opaque;
	/* After stop(), every vCPU again: a cancel that came between a
	 * thread's look at stop_reason and its next run may be lost. */
	int upto = atomic_load(&e->stop_reason) >= 0 ? e->ncpus : 1;
	for (int i = 0; i < upto; i++)
		if (e->vcpus[i].created)
			whp.WHvCancelRunVirtualProcessor(e->partition, (UINT32)i, 0);
}

static struct engine *whp_create(const struct engine_config *cfg, char *err, size_t n)
{
	if (!whp_available(err, n))
		return NULL;
	struct engine *e = calloc(1, sizeof(*e) + (size_t)cfg->cpus * sizeof(struct whp_vcpu));
	if (!e) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	e->ram = cfg->ram;
	e->ram_size = cfg->ram_size;
	e->high_ram_gpa = cfg->high_ram_gpa;
	e->high_ram_size = cfg->high_ram_size;
	e->bus = cfg->bus;
	e->irqchip = cfg->irqchip;
	e->ncpus = cfg->cpus;
	atomic_init(&e->stop_reason, -1);
	periodic_init(&e->halt_watcher);

	HRESULT hr = whp.WHvCreatePartition(&e->partition);
	if (FAILED(hr)) {
		e->partition = NULL;
		snprintf(err, n, "the hypervisor refused to create a partition (HRESULT 0x%08lx): is "
			 "another hypervisor (VirtualBox, VMware without WHP) holding VT-x/AMD-V? "
			 "Or use -accel soft",
			 (unsigned long)hr);
		goto fail;
	}
	WHV_PARTITION_PROPERTY prop;
	memset(&prop, 0, sizeof(prop));
	prop.ProcessorCount = (UINT32)cfg->cpus;
	if (set_property(e, WHvPartitionPropertyCodeProcessorCount, &prop, sizeof(prop),
			 "processor count", err, n))
		goto fail;
	memset(&prop, 0, sizeof(prop));
	prop.LocalApicEmulationMode = WHvX64LocalApicEmulationModeXApic;
	if (set_property(e, WHvPartitionPropertyCodeLocalApicEmulationMode, &prop, sizeof(prop),
			 "xAPIC emulation (LocalApicEmulationMode; Windows 10 1809 or later)", err,
			 n))
		goto fail;
	memset(&prop, 0, sizeof(prop));
	prop.ExtendedVmExits.X64CpuidExit = 1;
	prop.ExtendedVmExits.X64MsrExit = 1;
	if (set_property(e, WHvPartitionPropertyCodeExtendedVmExits, &prop, sizeof(prop),
			 "CPUID and MSR exits", err, n))
		goto fail;
	if (set_property(e, WHvPartitionPropertyCodeCpuidExitList, cpuid_exit_leaves,
			 sizeof(cpuid_exit_leaves), "CPUID exit list", err, n))
		goto fail;
	hr = whp.WHvSetupPartition(e->partition);
	if (FAILED(hr)) {
		snprintf(err, n, "WHvSetupPartition failed (HRESULT 0x%08lx)", (unsigned long)hr);
		goto fail;
	}
	/* The guest's TSC runs at the processor clock, and WHP's TSC is invariant. */
	WHV_CAPABILITY cap = {0};
	UINT32 written;
	if (SUCCEEDED(whp.WHvGetCapability(WHvCapabilityCodeProcessorClockFrequency, &cap,
					   sizeof(cap), &written)))
		e->cpuid.tsc_khz = (uint32_t)(cap.ProcessorClockFrequency / 1000);
	e->cpuid.invariant_tsc = e->cpuid.tsc_khz != 0;
	e->cpuid.tsc_deadline = false; /* left as the hypervisor's LAPIC offers it */
	/* RAM below the MMIO hole at 0; the rest, if any, above 4 GiB. */
	const struct {
		uint8_t *host;
		uint64_t gpa, size;
	} ranges[2] = {{cfg->ram, 0, cfg->ram_size},
		       {cfg->ram + cfg->ram_size, cfg->high_ram_gpa, cfg->high_ram_size}};
	for (int r = 0; r < (cfg->high_ram_size ? 2 : 1); r++) {
		hr = whp.WHvMapGpaRange(e->partition, ranges[r].host, ranges[r].gpa, ranges[r].size,
					WHvMapGpaRangeFlagRead | WHvMapGpaRangeFlagWrite |
						WHvMapGpaRangeFlagExecute);
		if (FAILED(hr)) {
			snprintf(err, n, "cannot map %llu bytes of guest RAM at %#llx into the "
				 "partition (HRESULT 0x%08lx)", (unsigned long long)ranges[r].size,
				 (unsigned long long)ranges[r].gpa, (unsigned long)hr);
			goto fail;
		}
	}
	if (periodic_start(&e->halt_watcher, HALT_WATCH_MS, halt_watch, e)) {
		snprintf(err, n, "cannot start a thread");
		goto fail;
	}
	return e;
fail:
	whp_destroy(e);
	return NULL;
}

/* ---- registers ---- */

static WHV_X64_SEGMENT_REGISTER whp_segment(const struct boot_segment *s)
{
	WHV_X64_SEGMENT_REGISTER r = {.Base = s->base, .Limit = s->limit, .Selector = s->selector};
	r.Attributes = s->attr; /* boot.h's attr is the same (VMX) layout */
	return r;
}

static HRESULT set_regs(struct engine *e, int cpu, const WHV_REGISTER_NAME *names,
			const WHV_REGISTER_VALUE *values, UINT32 count)
{
	return whp.WHvSetVirtualProcessorRegisters(e->partition, (UINT32)cpu, names, count, values);
}

static HRESULT get_regs(struct engine *e, int cpu, const WHV_REGISTER_NAME *names,
			WHV_REGISTER_VALUE *values, UINT32 count)
{
	return whp.WHvGetVirtualProcessorRegisters(e->partition, (UINT32)cpu, names, count, values);
}

static int whp_vcpu_init(struct engine *e, int cpu, const struct vcpu_boot *boot, char *err,
			 size_t n)
{
	if (cpu < 0 || cpu >= e->ncpus || e->vcpus[cpu].created) {
		snprintf(err, n, "bad vCPU number %d", cpu);
		return -1;
	}
	HRESULT hr = whp.WHvCreateVirtualProcessor(e->partition, (UINT32)cpu, 0);
	if (FAILED(hr)) {
		snprintf(err, n, "WHvCreateVirtualProcessor %d failed (HRESULT 0x%08lx)", cpu,
			 (unsigned long)hr);
		return -1;
	}
	e->vcpus[cpu].created = true;

	WHV_REGISTER_NAME names[16];
	WHV_REGISTER_VALUE values[16];
	UINT32 count = 0;
	memset(values, 0, sizeof(values));
	if (boot->mode == VCPU_WAIT_SIPI) {
		/* The hypervisor's LAPIC starts it at the Startup IPI. */
		names[count] = WHvRegisterInternalActivityState;
		values[count++].InternalActivity.StartupSuspend = 1;
	} else {
		names[count] = WHvX64RegisterRip;
		values[count++].Reg64 = boot->entry;
		names[count] = WHvX64RegisterRsp;
		values[count++].Reg64 = boot->rsp;
		names[count] = WHvX64RegisterRsi;
		values[count++].Reg64 = boot->rsi;
		names[count] = WHvX64RegisterRflags;
		values[count++].Reg64 = 0x2;
		if (boot->mode == VCPU_LONG64) {
			/* The long-mode start state every engine shares (boot.h). */
			struct boot_long_mode_state s;
			boot_long_mode_state(boot, &s);
			static const WHV_REGISTER_NAME data_segs[] = {
				WHvX64RegisterDs, WHvX64RegisterEs, WHvX64RegisterFs,
				WHvX64RegisterGs, WHvX64RegisterSs};
			names[count] = WHvX64RegisterCs;
			values[count++].Segment = whp_segment(&s.code);
			for (size_t i = 0; i < sizeof(data_segs) / sizeof(data_segs[0]); i++) {
				names[count] = data_segs[i];
				values[count++].Segment = whp_segment(&s.data);
			}
			names[count] = WHvX64RegisterTr;
			values[count++].Segment = whp_segment(&s.tr);
			names[count] = WHvX64RegisterGdtr;
			values[count].Table.Base = s.gdt_base;
			values[count++].Table.Limit = s.gdt_limit;
			names[count] = WHvX64RegisterCr0;
			values[count++].Reg64 = s.cr0;
			names[count] = WHvX64RegisterCr3;
			values[count++].Reg64 = s.cr3;
			names[count] = WHvX64RegisterCr4;
			values[count++].Reg64 = s.cr4;
			names[count] = WHvX64RegisterEfer;
			values[count++].Reg64 = s.efer;
		} else {
			/* Out of reset CS is f000 with base ffff0000: make it 0000:entry. */
			static const struct boot_segment real_cs = {.limit = 0xffff, .attr = 0x9b};
			names[count] = WHvX64RegisterCs;
			values[count++].Segment = whp_segment(&real_cs);
		}
	}
	hr = set_regs(e, cpu, names, values, count);
	if (FAILED(hr)) {
		snprintf(err, n, "cannot set vCPU %d's start state (HRESULT 0x%08lx)", cpu,
			 (unsigned long)hr);
		return -1;
	}
	return 0;
}

/* Is the vCPU halted for good: in HLT with interrupts disabled? */
static bool final_halt(struct engine *e, int cpu, uint64_t *rip)
{
	static const WHV_REGISTER_NAME names[3] = {WHvRegisterInternalActivityState,
						   WHvX64RegisterRflags, WHvX64RegisterRip};
	WHV_REGISTER_VALUE v[3];
	if (FAILED(get_regs(e, cpu, names, v, 3)))
		return false;
	*rip = v[2].Reg64;
	return v[0].InternalActivity.HaltSuspend && !(v[1].Reg64 & RFLAGS_IF);
}

static void stopped(struct vcpu_stop_info *stop, enum vcpu_stop reason, uint64_t rip)
{
	stop->reason = reason;
	stop->rip = rip;
}

/* The guest's general registers in instruction-encoding order, RIP and
 * RFLAGS: what instruction emulation reads and writes. */
#define GPR_COUNT 18
#define GPR_RIP 16
#define GPR_RFLAGS 17
static const WHV_REGISTER_NAME gpr_names[GPR_COUNT] = {
	WHvX64RegisterRax, WHvX64RegisterRcx, WHvX64RegisterRdx, WHvX64RegisterRbx,
	WHvX64RegisterRsp, WHvX64RegisterRbp, WHvX64RegisterRsi, WHvX64RegisterRdi,
	WHvX64RegisterR8,  WHvX64RegisterR9,  WHvX64RegisterR10, WHvX64RegisterR11,
	WHvX64RegisterR12, WHvX64RegisterR13, WHvX64RegisterR14, WHvX64RegisterR15,
	WHvX64RegisterRip, WHvX64RegisterRflags,
};

static uint64_t size_mask(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

/* Register `reg` as an operand of `size` bytes (AH..BH for byte registers
 * 4-7 without a REX prefix). */
static uint64_t gpr_read(const WHV_REGISTER_VALUE *g, unsigned reg, unsigned size, bool rex)
{
	if (size == 1 && !rex && reg >= 4 && reg < 8)
		return g[reg - 4].Reg64 >> 8 & 0xff;
	return g[reg].Reg64 & size_mask(size);
}

/* Writing a 32-bit register clears its upper half; 8 and 16-bit writes
 * keep the rest. */
static void gpr_write(WHV_REGISTER_VALUE *g, unsigned reg, unsigned size, bool rex, uint64_t v)
{
	if (size == 1 && !rex && reg >= 4 && reg < 8) {
		g[reg - 4].Reg64 = (g[reg - 4].Reg64 & ~0xff00ull) | (v & 0xff) << 8;
		return;
	}
	if (size == 4) {
		g[reg].Reg64 = v & 0xffffffffu;
		return;
	}
	g[reg].Reg64 = (g[reg].Reg64 & ~size_mask(size)) | (v & size_mask(size));
}

static int code_bits(const WHV_VP_EXIT_CONTEXT *vp)
{
	if (vp->ExecutionState.EferLma && vp->Cs.Long)
		return 64;
	return vp->Cs.Default ? 32 : 16;
}

/* ---- port I/O ---- */

static uint64_t port_in(struct engine *e, uint16_t port, unsigned size)
{
	return e->bus.pio_read(e->bus.opaque, port, size) & size_mask(size);
}

/* Guest linear address -> guest RAM, `size` bytes (not across a page: an
 * element of string I/O is at most 4 bytes and checked by the caller).
 * NULL if unmapped or not RAM. */
static uint8_t *guest_ram_at(struct engine *e, int cpu, uint64_t gva, unsigned size, bool write)
{
	WHV_TRANSLATE_GVA_RESULT result;
	WHV_GUEST_PHYSICAL_ADDRESS gpa;
	HRESULT hr = whp.WHvTranslateGva(e->partition, (UINT32)cpu, gva,
					 write ? WHvTranslateGvaFlagValidateWrite
					       : WHvTranslateGvaFlagValidateRead,
					 &result, &gpa);
	if (FAILED(hr) || result.ResultCode != WHvTranslateGvaResultSuccess)
		return NULL;
	if (gpa < e->ram_size)
		return e->ram_size - gpa < size ? NULL : e->ram + gpa;
	if (gpa >= e->high_ram_gpa && gpa - e->high_ram_gpa < e->high_ram_size &&
	    e->high_ram_size - (gpa - e->high_ram_gpa) >= size)
		return e->ram + e->ram_size + (gpa - e->high_ram_gpa);
	return NULL;
}

/* The exit's instruction length, which the caller adds to RIP: documented
 * for these exits, but a 0 would run the instruction again for ever. */
static bool length_given(const WHV_RUN_VP_EXIT_CONTEXT *x, const char *what, char *diag, size_t n)
{
	if (x->VpContext.InstructionLength)
		return true;
	snprintf(diag, n, "%s exit without the instruction's length", what);
	return false;
}

/* INS/OUTS: one element per exit.  A REP form re-executes (RIP stays) until
 * RCX reaches 0, which the architecture allows (REP string instructions are
 * interruptible between elements). */
static int string_io(struct engine *e, int cpu, const WHV_RUN_VP_EXIT_CONTEXT *x, char *diag,
		     size_t n)
{
	const WHV_X64_IO_PORT_ACCESS_CONTEXT *io = &x->IoPortAccess;
	unsigned size = io->AccessInfo.AccessSize;
	struct insn in;
	if (decode_insn(&in, io->InstructionBytes, io->InstructionByteCount,
			code_bits(&x->VpContext)) <= 0 ||
	    in.len != x->VpContext.InstructionLength) {
		snprintf(diag, n, "string I/O on port %#x: cannot decode the instruction",
			 io->PortNumber);
		return -1;
	}
	WHV_REGISTER_VALUE g[GPR_COUNT];
	if (FAILED(get_regs(e, cpu, gpr_names, g, GPR_COUNT))) {
		snprintf(diag, n, "string I/O: cannot read the registers");
		return -1;
	}
	uint64_t amask = size_mask(in.asz);
	bool rep = io->AccessInfo.RepPrefix;
	if (!rep || (g[1].Reg64 & amask) != 0) {
		bool out = io->AccessInfo.IsWrite;
		unsigned index = out ? 6 : 7; /* RSI or RDI */
		uint64_t base;
		if (out && (in.pfx & PFX_SEG) && in.seg != 3 /* DS */) {
			static const WHV_REGISTER_NAME segs[6] = {
				WHvX64RegisterEs, WHvX64RegisterCs, WHvX64RegisterSs,
				WHvX64RegisterDs, WHvX64RegisterFs, WHvX64RegisterGs};
			WHV_REGISTER_VALUE seg;
			if (in.seg >= 6 || FAILED(get_regs(e, cpu, &segs[in.seg], &seg, 1))) {
				snprintf(diag, n, "string I/O: bad segment %u", in.seg);
				return -1;
			}
			base = seg.Segment.Base;
		} else {
			base = out ? io->Ds.Base : io->Es.Base;
		}
		uint64_t offset = g[index].Reg64 & amask;
		uint64_t gva = base + offset;
		if ((gva & 0xfff) + size > 0x1000) {
			snprintf(diag, n, "string I/O on port %#x across a page boundary at %#llx",
				 io->PortNumber, (unsigned long long)gva);
			return -1;
		}
		uint8_t *p = guest_ram_at(e, cpu, gva, size, !out);
		if (!p) {
			snprintf(diag, n, "string I/O on port %#x at %#llx: not guest RAM",
				 io->PortNumber, (unsigned long long)gva);
			return -1;
		}
		uint64_t value = 0;
		if (out) {
			memcpy(&value, p, size); /* x86 host: little-endian like the guest */
			e->bus.pio_write(e->bus.opaque, io->PortNumber, size, value);
		} else {
			value = port_in(e, io->PortNumber, size);
			memcpy(p, &value, size);
		}
		uint64_t step = g[GPR_RFLAGS].Reg64 & RFLAGS_DF ? -(uint64_t)size : size;
		g[index].Reg64 = (g[index].Reg64 & ~amask) | ((offset + step) & amask);
		if (rep)
			g[1].Reg64 = (g[1].Reg64 & ~amask) | ((g[1].Reg64 - 1) & amask);
	}
	if (!rep || (g[1].Reg64 & amask) == 0)
		g[GPR_RIP].Reg64 = x->VpContext.Rip + x->VpContext.InstructionLength;
	if (FAILED(set_regs(e, cpu, gpr_names, g, GPR_COUNT))) {
		snprintf(diag, n, "string I/O: cannot write the registers");
		return -1;
	}
	return 0;
}

static int handle_io(struct engine *e, int cpu, const WHV_RUN_VP_EXIT_CONTEXT *x, char *diag,
		     size_t n)
{
	const WHV_X64_IO_PORT_ACCESS_CONTEXT *io = &x->IoPortAccess;
	unsigned size = io->AccessInfo.AccessSize;
	if (size != 1 && size != 2 && size != 4) {
		snprintf(diag, n, "port I/O exit with access size %u", size);
		return -1;
	}
	if (io->AccessInfo.StringOp)
		return string_io(e, cpu, x, diag, n);
	if (!length_given(x, "port I/O", diag, n))
		return -1;
	WHV_REGISTER_NAME names[2] = {WHvX64RegisterRip, WHvX64RegisterRax};
	WHV_REGISTER_VALUE values[2];
	memset(values, 0, sizeof(values));
	values[0].Reg64 = x->VpContext.Rip + x->VpContext.InstructionLength;
	UINT32 count = 1;
	if (io->AccessInfo.IsWrite) {
		e->bus.pio_write(e->bus.opaque, io->PortNumber, size, io->Rax & size_mask(size));
	} else {
		uint64_t value = port_in(e, io->PortNumber, size);
		/* IN EAX clears RAX's upper half; AL and AX keep the rest. */
		values[1].Reg64 = size == 4 ? value : (io->Rax & ~size_mask(size)) | value;
		count = 2;
	}
	if (FAILED(set_regs(e, cpu, names, values, count))) {
		snprintf(diag, n, "port I/O: cannot write the registers");
		return -1;
	}
	return 0;
}

/* ---- MMIO ---- */

static uint64_t sign_extend(uint64_t v, unsigned size)
{
	unsigned shift = 64 - size * 8;
	return size >= 8 ? v : (uint64_t)((int64_t)(v << shift) >> shift);
}

/* TEST's flags: SF, ZF, PF of the result; CF = OF = 0 (AF undefined: 0). */
static uint64_t test_flags(uint64_t rflags, uint64_t result, unsigned size)
{
	result &= size_mask(size);
	rflags &= ~RFLAGS_TEST_FLAGS;
	if (!result)
		rflags |= 1u << 6; /* ZF */
	if (result >> (size * 8 - 1) & 1)
		rflags |= 1u << 7; /* SF */
	if (!__builtin_parity((unsigned)(result & 0xff)))
		rflags |= 1u << 2; /* PF: an even number of bits set */
	return rflags;
}

/* Emulate the instruction behind an MMIO exit: the access goes to the bus
 * at the exit's GPA (the hypervisor translated it), registers and RIP are
 * updated as the instruction would. */
static int handle_mmio(struct engine *e, int cpu, const WHV_RUN_VP_EXIT_CONTEXT *x, char *diag,
		       size_t n)
{
	const WHV_MEMORY_ACCESS_CONTEXT *m = &x->MemoryAccess;
	uint64_t gpa = m->Gpa;
	if (m->AccessInfo.AccessType == WHvMemoryAccessExecute) {
		snprintf(diag, n, "the guest jumped to %#llx, where no RAM is",
			 (unsigned long long)gpa);
		return -1;
	}
	/* The exit carries the instruction's first bytes, or none (Microsoft's
	 * documentation allows InstructionByteCount 0): then read them from
	 * guest memory at CS:RIP, a byte at a time across a page end. */
	uint8_t fetched[16];
	const uint8_t *bytes = m->InstructionBytes;
	unsigned nbytes = m->InstructionByteCount <= sizeof(m->InstructionBytes)
				  ? m->InstructionByteCount
				  : sizeof(m->InstructionBytes);
	if (nbytes == 0) {
		uint64_t rip = x->VpContext.Cs.Base + x->VpContext.Rip;
		for (; nbytes < 15; nbytes++) {
			const uint8_t *b = guest_ram_at(e, cpu, rip + nbytes, 1, false);
			if (!b)
				break;
			fetched[nbytes] = *b;
		}
		bytes = fetched;
	}
	struct insn in;
	int len = decode_insn(&in, bytes, nbytes, code_bits(&x->VpContext));
	if (len <= 0 || in.op >= OP_UD) {
		snprintf(diag, n, "MMIO at %#llx: cannot decode the instruction (%u bytes given)",
			 (unsigned long long)gpa, m->InstructionByteCount);
		return -1;
	}
	WHV_REGISTER_VALUE g[GPR_COUNT];
	if (FAILED(get_regs(e, cpu, gpr_names, g, GPR_COUNT))) {
		snprintf(diag, n, "MMIO: cannot read the registers");
		return -1;
	}
	bool rex = in.pfx & PFX_REX;
	bool byte_op = !(in.op & 1); /* 88/8A/C6/F6/84, A0/A2: byte forms are even */
	unsigned size = byte_op ? 1 : in.osz;
	uint64_t value;
	switch (in.op) {
	case 0x88: case 0x89: /* MOV r/m, reg */
		e->bus.mmio_write(e->bus.opaque, gpa, size, gpr_read(g, in.reg, size, rex));
		break;
	case 0xc6: case 0xc7: /* MOV r/m, imm */
		e->bus.mmio_write(e->bus.opaque, gpa, size, in.imm & size_mask(size));
		break;
	case 0xa2: case 0xa3: /* MOV moffs, AL/eAX */
		e->bus.mmio_write(e->bus.opaque, gpa, size, gpr_read(g, 0, size, rex));
		break;
	case 0x8a: case 0x8b: /* MOV reg, r/m */
		gpr_write(g, in.reg, size, rex, e->bus.mmio_read(e->bus.opaque, gpa, size));
		break;
	case 0xa0: case 0xa1: /* MOV AL/eAX, moffs */
		gpr_write(g, 0, size, rex, e->bus.mmio_read(e->bus.opaque, gpa, size));
		break;
	case OP_0F + 0xb6: case OP_0F + 0xb7: /* MOVZX */
	case OP_0F + 0xbe: case OP_0F + 0xbf: { /* MOVSX */
		unsigned from = in.op & 1 ? 2 : 1;
		value = e->bus.mmio_read(e->bus.opaque, gpa, from) & size_mask(from);
		if (in.op >= OP_0F + 0xbe)
			value = sign_extend(value, from);
		gpr_write(g, in.reg, in.osz, rex, value);
		break;
	}
	case 0x84: case 0x85: /* TEST r/m, reg */
		value = e->bus.mmio_read(e->bus.opaque, gpa, size);
		value &= gpr_read(g, in.reg, size, rex);
		g[GPR_RFLAGS].Reg64 = test_flags(g[GPR_RFLAGS].Reg64, value, size);
		break;
	case 0xf6: case 0xf7: /* TEST r/m, imm (group 3, /0 and /1) */
		if ((in.reg & 7) < 2) {
			value = e->bus.mmio_read(e->bus.opaque, gpa, size);
			g[GPR_RFLAGS].Reg64 = test_flags(g[GPR_RFLAGS].Reg64, value & in.imm, size);
			break;
		}
		/* fall through */
	default:
		snprintf(diag, n, "MMIO at %#llx by an instruction the WHP engine does not emulate "
			 "(opcode %#x at RIP %#llx)",
			 (unsigned long long)gpa, in.raw_op, (unsigned long long)x->VpContext.Rip);
		return -1;
	}
	g[GPR_RIP].Reg64 = x->VpContext.Rip + (uint64_t)len;
	if (FAILED(set_regs(e, cpu, gpr_names, g, GPR_COUNT))) {
		snprintf(diag, n, "MMIO: cannot write the registers");
		return -1;
	}
	return 0;
}

/* ---- CPUID, MSRs ---- */

static int handle_cpuid(struct engine *e, int cpu, const WHV_RUN_VP_EXIT_CONTEXT *x, char *diag,
			size_t n)
{
	if (!length_given(x, "CPUID", diag, n))
		return -1;
	const WHV_X64_CPUID_ACCESS_CONTEXT *c = &x->CpuidAccess;
	uint32_t r[4] = {(uint32_t)c->DefaultResultRax, (uint32_t)c->DefaultResultRbx,
			 (uint32_t)c->DefaultResultRcx, (uint32_t)c->DefaultResultRdx};
	struct cpuid_policy policy = e->cpuid;
	policy.apic_id = cpu;
	cpuid_policy_fit(&policy, (uint32_t)c->Rax, r);
	static const WHV_REGISTER_NAME names[5] = {WHvX64RegisterRip, WHvX64RegisterRax,
						   WHvX64RegisterRbx, WHvX64RegisterRcx,
						   WHvX64RegisterRdx};
	WHV_REGISTER_VALUE values[5];
	memset(values, 0, sizeof(values));
	values[0].Reg64 = x->VpContext.Rip + x->VpContext.InstructionLength;
	for (int i = 0; i < 4; i++)
		values[1 + i].Reg64 = r[i];
	return FAILED(set_regs(e, cpu, names, values, 5)) ? -1 : 0;
}

/* An MSR the hypervisor does not implement: #GP, as the other engines
 * answer an MSR they do not model (guests probe with rdmsr_safe).  RIP
 * stays: the exception is delivered at the instruction. */
static int handle_msr(struct engine *e, int cpu, const WHV_RUN_VP_EXIT_CONTEXT *x)
{
	log_once("WHP: the guest %s MSR %#x, which is not modelled: #GP",
		 x->MsrAccess.AccessInfo.IsWrite ? "wrote" : "read", x->MsrAccess.MsrNumber);
	WHV_REGISTER_NAME name = WHvRegisterPendingInterruption;
	WHV_REGISTER_VALUE gp;
	memset(&gp, 0, sizeof(gp));
	gp.PendingInterruption.InterruptionPending = 1;
	gp.PendingInterruption.InterruptionType = WHvX64PendingException;
	gp.PendingInterruption.DeliverErrorCode = 1;
	gp.PendingInterruption.InterruptionVector = 13; /* #GP(0) */
	return FAILED(set_regs(e, cpu, &name, &gp, 1)) ? -1 : 0;
}

/* ---- running ---- */

static void whp_vcpu_run(struct engine *e, int cpu, struct vcpu_stop_info *stop)
{
	memset(stop, 0, sizeof(*stop));
	if (cpu < 0 || cpu >= e->ncpus || !e->vcpus[cpu].created) {
		stopped(stop, VCPU_STOP_ERROR, 0);
		snprintf(stop->diag, sizeof(stop->diag), "vCPU %d was not initialised", cpu);
		return;
	}
	for (;;) {
		int asked = atomic_load(&e->stop_reason);
		if (asked >= 0) {
			stopped(stop, (enum vcpu_stop)asked, 0);
			snprintf(stop->diag, sizeof(stop->diag), "stopped by the board");
			return;
		}
		WHV_RUN_VP_EXIT_CONTEXT x;
		HRESULT hr = whp.WHvRunVirtualProcessor(e->partition, (UINT32)cpu, &x, sizeof(x));
		STATS_ADD(exits, 1);
		if (FAILED(hr)) {
			stopped(stop, VCPU_STOP_ERROR, 0);
			snprintf(stop->diag, sizeof(stop->diag),
				 "WHvRunVirtualProcessor failed on vCPU %d (HRESULT 0x%08lx)", cpu,
				 (unsigned long)hr);
			return;
		}
		uint64_t rip = x.VpContext.Rip;
		char diag[200] = "";
		int rc = 0;
		switch (x.ExitReason) {
		case WHvRunVpExitReasonX64IoPortAccess:
			rc = handle_io(e, cpu, &x, diag, sizeof(diag));
			break;
		case WHvRunVpExitReasonMemoryAccess:
			rc = handle_mmio(e, cpu, &x, diag, sizeof(diag));
			break;
		case WHvRunVpExitReasonX64Cpuid:
			rc = handle_cpuid(e, cpu, &x, diag, sizeof(diag));
			break;
		case WHvRunVpExitReasonX64MsrAccess:
			rc = handle_msr(e, cpu, &x);
			break;
		case WHvRunVpExitReasonX64ApicEoi:
			if (e->irqchip.eoi)
				e->irqchip.eoi(e->irqchip.opaque, (uint8_t)x.ApicEoi.InterruptVector);
			break;
		case WHvRunVpExitReasonX64InterruptWindow: {
			/* Never requested (the hypervisor's LAPIC injects), but
			 * if one comes, clear the request or every STI exits. */
			WHV_REGISTER_NAME name = WHvX64RegisterDeliverabilityNotifications;
			WHV_REGISTER_VALUE none;
			memset(&none, 0, sizeof(none));
			set_regs(e, cpu, &name, &none, 1);
			break;
		}
		case WHvRunVpExitReasonCanceled:
			/* stop() (the loop head looks) or the halt watcher */
			if (cpu != 0 || atomic_load(&e->stop_reason) >= 0 || !final_halt(e, cpu, &rip))
				break;
			stopped(stop, VCPU_STOP_HALT, rip);
			snprintf(stop->diag, sizeof(stop->diag),
				 "HLT with interrupts disabled on vCPU %d at RIP %#llx", cpu,
				 (unsigned long long)rip);
			return;
		case WHvRunVpExitReasonX64Halt:
			/* With interrupts on, the hypervisor's LAPIC wakes it:
			 * running it again waits in the hypervisor. */
			if (x.VpContext.Rflags & RFLAGS_IF)
				break;
			stopped(stop, VCPU_STOP_HALT, rip);
			snprintf(stop->diag, sizeof(stop->diag),
				 "HLT with interrupts disabled on vCPU %d at RIP %#llx", cpu,
				 (unsigned long long)rip);
			return;
		case WHvRunVpExitReasonUnrecoverableException:
			stopped(stop, VCPU_STOP_SHUTDOWN, rip);
			snprintf(stop->diag, sizeof(stop->diag),
				 "triple fault (WHvRunVpExitReasonUnrecoverableException) on vCPU %d at "
				 "RIP %#llx",
				 cpu, (unsigned long long)rip);
			return;
		case WHvRunVpExitReasonInvalidVpRegisterValue:
			snprintf(diag, sizeof(diag), "the hypervisor found an invalid register value "
				 "(WHvRunVpExitReasonInvalidVpRegisterValue)");
			rc = -1;
			break;
		case WHvRunVpExitReasonUnsupportedFeature:
			snprintf(diag, sizeof(diag), "the guest used a feature WHP does not support "
				 "(code %u, parameter %#llx)",
				 (unsigned)x.UnsupportedFeature.FeatureCode,
				 (unsigned long long)x.UnsupportedFeature.FeatureParameter);
			rc = -1;
			break;
		default:
			snprintf(diag, sizeof(diag), "unexpected WHP exit reason %#x",
				 (unsigned)x.ExitReason);
			rc = -1;
			break;
		}
		if (rc) {
			stopped(stop, VCPU_STOP_ERROR, rip);
			snprintf(stop->diag, sizeof(stop->diag), "%s on vCPU %d at RIP %#llx",
				 diag[0] ? diag : "cannot update the registers after an exit", cpu,
				 (unsigned long long)rip);
			return;
		}
	}
}

/* The IOAPIC's message (or an MSI) as the hypervisor's interrupt request:
 * address 0xFEE[dest]xxx with bit 2 = logical destination; data with the
 * vector, the delivery mode (bits 8-10) and the trigger mode (bit 15). */
static void whp_signal_msi(struct engine *e, uint64_t address, uint32_t data)
{
	WHV_INTERRUPT_CONTROL irq;
	memset(&irq, 0, sizeof(irq));
	irq.Type = data >> 8 & 7; /* fixed 0, lowest priority 1, NMI 4, INIT 5: WHP's numbers */
	irq.DestinationMode = address >> 2 & 1 ? WHvX64InterruptDestinationModeLogical
					       : WHvX64InterruptDestinationModePhysical;
	irq.TriggerMode = data >> 15 & 1 ? WHvX64InterruptTriggerModeLevel
					 : WHvX64InterruptTriggerModeEdge;
	irq.Destination = (UINT32)(address >> 12 & 0xff);
	irq.Vector = data & 0xff;
	HRESULT hr = whp.WHvRequestInterrupt(e->partition, &irq, sizeof(irq));
	if (FAILED(hr))
		log_once("WHvRequestInterrupt (address %#llx, data %#x) failed (HRESULT 0x%08lx); "
			 "interrupt dropped",
			 (unsigned long long)address, data, (unsigned long)hr);
}

static void whp_stop(struct engine *e, enum vcpu_stop reason)
{
	int none = -1;
	atomic_compare_exchange_strong(&e->stop_reason, &none, (int)reason);
	for (int i = 0; i < e->ncpus; i++)
		if (e->vcpus[i].created)
			whp.WHvCancelRunVirtualProcessor(e->partition, (UINT32)i, 0);
}

const struct engine_ops engine_whpx = {
	.name = "whpx",
	.available = whp_available,
	.create = whp_create,
	.vcpu_init = whp_vcpu_init,
	.vcpu_run = whp_vcpu_run,
	.signal_msi = whp_signal_msi,
	.stop = whp_stop,
	.destroy = whp_destroy,
	.describe = whp_describe,
};
