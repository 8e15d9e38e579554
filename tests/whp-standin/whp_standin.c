/* whp_standin.c - a test double of WinHvPlatform.dll (the Windows Hypervisor
 * Platform API), so minivm's WHP engine can run guests where no Windows
 * hypervisor exists: under Wine, in CI.  Built as WinHvPlatform.dll and put
 * in the Wine prefix's system32, where the engine's
 * LoadLibraryExW(..., LOAD_LIBRARY_SEARCH_SYSTEM32) finds it.
 *
 * Written from Microsoft's documentation of the API (learn.microsoft.com,
 * "Windows Hypervisor Platform": WHvGetCapability, WHvSetPartitionProperty,
 * WHvRunVirtualProcessor and the exit-context data types, the register
 * names) and the definitions in mingw-w64's winhvplatformdefs.h -- not from
 * what minivm's engine expects.  The guest runs on minivm's software CPU
 * (vmm-core/soft); this file turns what that CPU does into what a
 * hypervisor would report:
 *   - WHvRunVirtualProcessor runs the vCPU on the calling thread and returns
 *     only at an exit.  Port I/O and accesses to unmapped GPAs exit BEFORE
 *     the instruction has any effect: RIP points at it, the exit context
 *     carries its bytes and length, and the caller emulates it and advances
 *     RIP (the soft CPU abandons the instruction: softcpu_abandon).
 *   - CPUID exits for the leaves in CpuidExitList (with the default results),
 *     MSR exits for MSRs the processor does not implement, both only when
 *     enabled in ExtendedVmExits; RIP at the instruction.
 *   - LocalApicEmulationMode xAPIC: a LAPIC per VP (vmm-core/board/lapic.c
 *     stands in for the hypervisor's) at its APIC base, handling INIT/SIPI
 *     and its timer; a VP in HLT with interrupts enabled waits inside
 *     WHvRunVirtualProcessor until an interrupt; HLT with interrupts off
 *     exits (X64Halt).  Whether the real hypervisor exits on HLT while it
 *     emulates the LAPIC is not documented: with WHP_STANDIN_HALT_EXITS=0 in
 *     the environment the VP stays suspended in HLT instead (HaltSuspend)
 *     until a cancel, so a caller can be tested against both readings.
 *   - WHP_STANDIN_FAIL=no-hypervisor reports HypervisorPresent FALSE (the
 *     feature on, virtualization off in the firmware); =create-partition
 *     makes WHvCreatePartition fail with WHV_E_UNSUPPORTED_HYPERVISOR_CONFIG:
 *     the caller's error paths.  WHvRequestInterrupt delivers to these LAPICs; the
 *     EOI of a level-triggered vector exits (X64ApicEoi) after the write.
 *   - WHvCancelRunVirtualProcessor makes a running WHvRunVirtualProcessor
 *     return WHvRunVpExitReasonCanceled; a cancel while the VP is not
 *     running is kept for its next run (the documentation does not say;
 *     this is the safe reading for a caller).
 *   - A triple fault exits with WHvRunVpExitReasonUnrecoverableException.
 *   - WHvRegisterInternalActivityState.StartupSuspend parks a VP until a
 *     Startup IPI; HaltSuspend reads as set while the VP is in HLT.
 *
 * What it does NOT model (a caller relying on these would pass here and fail
 * on Windows, or the reverse):
 *   - only the functions exported in whp_standin.def; one GPA range, at GPA 0,
 *     mapped before the first VP is created; every VP created before any
 *     runs or takes an interrupt; no WHvUnmapGpaRange, no dirty tracking, no
 *     WinHvEmulation.dll;
 *   - guest RAM written by other processes (device DMA) is not seen by the
 *     soft CPU's decoded-code cache (real hardware is coherent);
 *   - interrupt-window and deliverability notifications (the register is
 *     stored, no X64InterruptWindow exit is ever produced); pending
 *     interruption injection of anything but exceptions (the soft CPU
 *     raises those when the VP next runs); exception exits; RDTSC exits;
 *     x2APIC mode;
 *   - WHvTranslateGva without paging and with 4-level long-mode paging only,
 *     checking present and writable bits but not privilege;
 *   - registers: general, RIP, RFLAGS, segment, descriptor-table, control
 *     registers, EFER, APIC base, InternalActivityState, Deliverability-
 *     Notifications, PendingInterruption; any other name fails with WHV_E_INVALID_VP_REGISTER_NAME;
 *   - capabilities: what a partition here can do (hypervisor present, xAPIC
 *     emulation, CPUID/MSR exits, Intel, 1 GHz processor and APIC clocks);
 *   - the timing of a real hypervisor: everything is interpreted.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <winhvplatform.h>

#include "cpu.h"
/* winnt.h's REG_NONE is a registry value type, unused here; decode.h's
 * means "no register". */
#undef REG_NONE
#include "decode.h"
#include "host.h"
#include "lapic.h"

/* HRESULTs of the API (winerror.h on Windows; not in mingw-w64's). */
#define WHV_E_UNKNOWN_CAPABILITY ((HRESULT)0x80370300L)
#define WHV_E_INSUFFICIENT_BUFFER ((HRESULT)0x80370301L)
#define WHV_E_UNKNOWN_PROPERTY ((HRESULT)0x80370302L)
#define WHV_E_UNSUPPORTED_HYPERVISOR_CONFIG ((HRESULT)0x80370303L)
#define WHV_E_INVALID_PARTITION_CONFIG ((HRESULT)0x80370304L)
#define WHV_E_GPA_RANGE_NOT_FOUND ((HRESULT)0x80370305L)
#define WHV_E_VP_ALREADY_EXISTS ((HRESULT)0x80370306L)
#define WHV_E_VP_DOES_NOT_EXIST ((HRESULT)0x80370307L)
#define WHV_E_INVALID_VP_STATE ((HRESULT)0x80370308L)
#define WHV_E_INVALID_VP_REGISTER_NAME ((HRESULT)0x80370309L)

#define MAX_VPS 64
#define MAX_CPUID_EXITS 64
#define MAX_PENDING_EOIS 16
#define CLOCK_HZ 1000000000ull /* the soft CPU's TSC and lapic.c's timer count nanoseconds */
#define APIC_BASE_ENABLE 0x800ull
#define APIC_BASE_BSP 0x100ull
#define APIC_BASE_ADDR 0xffffff000ull

struct partition;

struct vp {
	struct partition *p;
	UINT32 index;
	bool created;
	struct softcpu cpu;
	struct lapic lapic;
	WHV_RUN_VP_EXIT_CONTEXT *exit; /* the caller's, while it runs */
	pthread_mutex_t lock;          /* what follows, across threads */
	pthread_cond_t cond;
	bool running;
	bool cancel;          /* WHvCancelRunVirtualProcessor, not yet reported */
	bool startup_suspend; /* waiting for a Startup IPI */
	int sipi_vector;      /* received while suspended, or -1 */
	uint8_t eois[MAX_PENDING_EOIS];
	unsigned neois;
	UINT64 deliverability; /* stored only (see the top of this file) */
};

struct partition {
	bool setup;
	bool halt_exits; /* HLT with IF = 0 exits (else: suspended until a cancel) */
	UINT32 processor_count;
	WHV_X64_LOCAL_APIC_EMULATION_MODE apic_mode;
	WHV_EXTENDED_VM_EXITS exits;
	UINT32 cpuid_exits[MAX_CPUID_EXITS];
	unsigned ncpuid_exits;
	bool mapped;
	uint8_t *ram;
	uint64_t ram_size;
	struct softcpu_machine machine;
	struct lapic *lapics[MAX_VPS];
	struct vp vps[MAX_VPS];
};

/* Is the failure `what` asked for (WHP_STANDIN_FAIL, at the top)? */
static bool fail_requested(const char *what)
{
	const char *fail = getenv("WHP_STANDIN_FAIL");
	return fail && strcmp(fail, what) == 0;
}

/* The VP running on this thread (bus callbacks and hooks find it here). */
static __thread struct vp *current_vp;

/* ---- capabilities ---- */

HRESULT WINAPI WHvGetCapability(WHV_CAPABILITY_CODE code, VOID *buffer, UINT32 size,
				UINT32 *written)
{
	WHV_CAPABILITY cap;
	memset(&cap, 0, sizeof(cap));
	UINT32 len = sizeof(UINT64);
	switch (code) {
	case WHvCapabilityCodeHypervisorPresent:
		cap.HypervisorPresent = !fail_requested("no-hypervisor");
		len = sizeof(BOOL);
		break;
	case WHvCapabilityCodeFeatures:
		cap.Features.LocalApicEmulation = 1;
		break;
	case WHvCapabilityCodeExtendedVmExits:
		cap.ExtendedVmExits.X64CpuidExit = 1;
		cap.ExtendedVmExits.X64MsrExit = 1;
		break;
	case WHvCapabilityCodeProcessorVendor:
		cap.ProcessorVendor = WHvProcessorVendorIntel; /* the soft CPU says GenuineIntel */
		len = sizeof(WHV_PROCESSOR_VENDOR);
		break;
	case WHvCapabilityCodeProcessorClockFrequency:
		cap.ProcessorClockFrequency = CLOCK_HZ;
		break;
	case WHvCapabilityCodeInterruptClockFrequency:
		cap.InterruptClockFrequency = CLOCK_HZ;
		break;
	default:
		return WHV_E_UNKNOWN_CAPABILITY;
	}
	if (!buffer || size < len)
		return WHV_E_INSUFFICIENT_BUFFER;
	memcpy(buffer, &cap, len);
	if (written)
		*written = len;
	return S_OK;
}

/* ---- partitions ---- */

HRESULT WINAPI WHvCreatePartition(WHV_PARTITION_HANDLE *handle)
{
	if (!handle)
		return E_INVALIDARG;
	if (fail_requested("create-partition"))
		return WHV_E_UNSUPPORTED_HYPERVISOR_CONFIG;
	struct partition *p = calloc(1, sizeof(*p));
	if (!p)
		return E_OUTOFMEMORY;
	const char *halt_exits = getenv("WHP_STANDIN_HALT_EXITS");
	p->halt_exits = !halt_exits || strcmp(halt_exits, "0") != 0;
	*handle = p;
	return S_OK;
}

HRESULT WINAPI WHvSetPartitionProperty(WHV_PARTITION_HANDLE handle,
				       WHV_PARTITION_PROPERTY_CODE code, const VOID *buffer,
				       UINT32 size)
{
	struct partition *p = handle;
	if (!p || !buffer)
		return E_INVALIDARG;
	if (p->setup) /* these properties are set before WHvSetupPartition */
		return WHV_E_INVALID_PARTITION_CONFIG;
	switch (code) {
	case WHvPartitionPropertyCodeProcessorCount: {
		UINT32 count;
		if (size < sizeof(count))
			return WHV_E_INSUFFICIENT_BUFFER;
		memcpy(&count, buffer, sizeof(count));
		if (count < 1 || count > MAX_VPS)
			return E_INVALIDARG;
		p->processor_count = count;
		return S_OK;
	}
	case WHvPartitionPropertyCodeLocalApicEmulationMode: {
		WHV_X64_LOCAL_APIC_EMULATION_MODE mode;
		if (size < sizeof(mode))
			return WHV_E_INSUFFICIENT_BUFFER;
		memcpy(&mode, buffer, sizeof(mode));
		if (mode == WHvX64LocalApicEmulationModeX2Apic)
			return E_NOTIMPL; /* not modelled (see the top of this file) */
		p->apic_mode = mode;
		return S_OK;
	}
	case WHvPartitionPropertyCodeExtendedVmExits:
		if (size < sizeof(p->exits))
			return WHV_E_INSUFFICIENT_BUFFER;
		memcpy(&p->exits, buffer, sizeof(p->exits));
		if (p->exits.ExceptionExit || p->exits.X64RdtscExit || p->exits.X64ApicSmiExitTrap ||
		    p->exits.HypercallExit || p->exits.X64ApicInitSipiExitTrap)
			return E_NOTIMPL;
		return S_OK;
	case WHvPartitionPropertyCodeCpuidExitList:
		if (size % sizeof(UINT32) || size / sizeof(UINT32) > MAX_CPUID_EXITS)
			return E_INVALIDARG;
		memcpy(p->cpuid_exits, buffer, size);
		p->ncpuid_exits = size / sizeof(UINT32);
		return S_OK;
	default:
		return WHV_E_UNKNOWN_PROPERTY;
	}
}

HRESULT WINAPI WHvSetupPartition(WHV_PARTITION_HANDLE handle)
{
	struct partition *p = handle;
	if (!p)
		return E_INVALIDARG;
	if (p->setup || p->processor_count == 0) /* the count is required */
		return WHV_E_INVALID_PARTITION_CONFIG;
	p->setup = true;
	return S_OK;
}

static void vp_destroy(struct vp *v)
{
	if (!v->created)
		return;
	if (v->p->apic_mode == WHvX64LocalApicEmulationModeXApic)
		lapic_destroy(&v->lapic);
	softcpu_destroy(&v->cpu);
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cond);
	v->created = false;
	v->p->lapics[v->index] = NULL;
}

HRESULT WINAPI WHvDeletePartition(WHV_PARTITION_HANDLE handle)
{
	struct partition *p = handle;
	if (!p)
		return E_INVALIDARG;
	for (UINT32 i = 0; i < MAX_VPS; i++)
		vp_destroy(&p->vps[i]);
	if (p->mapped)
		softcpu_machine_destroy(&p->machine);
	free(p);
	return S_OK;
}

/* ---- the soft CPU's buses, hooks and LAPIC callbacks ---- */

/* Guest page tables: read a PTE from mapped RAM; false if outside it. */
static bool read_pte(const struct partition *p, uint64_t addr, uint64_t *pte)
{
	if (addr > p->ram_size || p->ram_size - addr < 8)
		return false;
	memcpy(pte, p->ram + addr, 8);
	return true;
}

/* The guest's own translation of gva, as the hypervisor walks it: a
 * WHvTranslateGvaResult* code, or -1 for a paging mode not modelled (see
 * the top of this file). */
static int walk_gva(const struct partition *p, const struct softcpu *c, uint64_t gva, bool write,
		    uint64_t *gpa)
{
	if (!(c->cr0 & CR0_PG)) {
		*gpa = gva;
		return WHvTranslateGvaResultSuccess;
	}
	if (!(c->efer & EFER_LMA))
		return -1;
	uint64_t table = c->cr3 & 0x000ffffffffff000ull;
	for (int level = 3; level >= 0; level--) {
		uint64_t pte;
		if (!read_pte(p, table + ((gva >> (12 + 9 * level)) & 0x1ff) * 8, &pte))
			return WHvTranslateGvaResultGpaUnmapped;
		if (!(pte & 1))
			return WHvTranslateGvaResultPageNotPresent;
		if (write && !(pte & 2))
			return WHvTranslateGvaResultPrivilegeViolation;
		uint64_t frame = pte & 0x000ffffffffff000ull;
		if (level == 0 || (level <= 2 && (pte & 0x80))) { /* a 4 KiB, 2 MiB or 1 GiB page */
			uint64_t offset_mask = (1ull << (12 + 9 * level)) - 1;
			*gpa = (frame & ~offset_mask) | (gva & offset_mask);
			return WHvTranslateGvaResultSuccess;
		}
		table = frame;
	}
	return -1; /* not reached: level 0 always ends the walk */
}

/* Up to n bytes of the instruction at CS:RIP, read as the hypervisor reads
 * them: through the guest's page tables.  Not through the soft CPU's TLB:
 * its translated blocks run without looking there, so the code's entry
 * may have been replaced (an exit without the instruction's length made
 * the caller run an OUT again for ever).  The TLB only where the walk is
 * not modelled. */
static unsigned read_code(struct vp *v, uint8_t *buf, unsigned n)
{
	struct softcpu *c = &v->cpu;
	const struct partition *p = v->p;
	uint64_t lin = c->segbase[S_CS] + c->rip;
	unsigned got = 0;
	while (got < n) {
		uint64_t gpa;
		int rc = walk_gva(p, c, lin + got, false, &gpa);
		if (rc < 0 && got == 0)
			return softcpu_peek_code(c, buf, n);
		if (rc != WHvTranslateGvaResultSuccess)
			break;
		unsigned chunk = 4096 - (unsigned)((lin + got) & 0xfff);
		if (chunk > n - got)
			chunk = n - got;
		if (gpa >= p->ram_size || p->ram_size - gpa < chunk)
			break;
		memcpy(buf + got, p->ram + gpa, chunk);
		got += chunk;
	}
	return got;
}

/* The part of every exit context that describes the VP and its instruction;
 * bytes (16) and *count receive the instruction's bytes when asked. */
static void fill_vp_context(struct vp *v, WHV_RUN_VP_EXIT_REASON reason, UINT8 *bytes,
			    UINT8 *count)
{
	struct softcpu *c = &v->cpu;
	WHV_RUN_VP_EXIT_CONTEXT *x = v->exit;
	x->ExitReason = reason;
	WHV_VP_EXIT_CONTEXT *vp = &x->VpContext;
	vp->ExecutionState.Cpl = c->cpl & 3;
	vp->ExecutionState.Cr0Pe = c->cr0 & CR0_PE ? 1 : 0;
	vp->ExecutionState.Cr0Am = c->cr0 & CR0_AM ? 1 : 0;
	vp->ExecutionState.EferLma = c->efer & EFER_LMA ? 1 : 0;
	vp->ExecutionState.InterruptShadow = c->intr_shadow;
	vp->Cr8 = c->cr8 & 0xf;
	const struct softcpu_seg *cs = &c->seg[S_CS];
	vp->Cs.Base = cs->base;
	vp->Cs.Limit = cs->limit;
	vp->Cs.Selector = cs->sel;
	vp->Cs.Attributes = cs->attr;
	vp->Rip = c->rip;
	vp->Rflags = softcpu_get_rflags(c);
	uint8_t code[16];
	unsigned got = read_code(v, code, sizeof(code));
	struct insn in;
	int len = got ? decode_insn(&in, code, got, c->code_bits) : 0;
	vp->InstructionLength = len > 0 ? (UINT8)len : 0;
	if (bytes) {
		memcpy(bytes, code, got);
		*count = (UINT8)got;
	}
}

static _Noreturn void io_exit(struct vp *v, uint16_t port, unsigned size, bool write)
{
	struct softcpu *c = &v->cpu;
	WHV_X64_IO_PORT_ACCESS_CONTEXT *io = &v->exit->IoPortAccess;
	fill_vp_context(v, WHvRunVpExitReasonX64IoPortAccess, io->InstructionBytes,
			&io->InstructionByteCount);
	struct insn in;
	bool string = decode_insn(&in, io->InstructionBytes, io->InstructionByteCount,
				  c->code_bits) > 0 &&
		      in.op >= 0x6c && in.op <= 0x6f; /* INS, OUTS */
	io->AccessInfo.IsWrite = write;
	io->AccessInfo.AccessSize = size;
	io->AccessInfo.StringOp = string;
	io->AccessInfo.RepPrefix = string && (in.pfx & (PFX_REP | PFX_REPNE)) ? 1 : 0;
	io->PortNumber = port;
	io->Rax = c->r[R_AX];
	io->Rcx = c->r[R_CX];
	io->Rsi = c->r[R_SI];
	io->Rdi = c->r[R_DI];
	const struct softcpu_seg *segs[2] = {&c->seg[S_DS], &c->seg[S_ES]};
	WHV_X64_SEGMENT_REGISTER *out[2] = {&io->Ds, &io->Es};
	for (int i = 0; i < 2; i++) {
		out[i]->Base = segs[i]->base;
		out[i]->Limit = segs[i]->limit;
		out[i]->Selector = segs[i]->sel;
		out[i]->Attributes = segs[i]->attr;
	}
	softcpu_abandon(c);
}

static uint64_t standin_pio_read(void *opaque, uint16_t port, unsigned size)
{
	io_exit(current_vp, port, size, false);
}

static void standin_pio_write(void *opaque, uint16_t port, unsigned size, uint64_t value)
{
	io_exit(current_vp, port, size, true);
}

static bool in_apic_page(const struct vp *v, uint64_t gpa)
{
	uint64_t base = v->cpu.apic_base;
	return v->p->apic_mode == WHvX64LocalApicEmulationModeXApic && (base & APIC_BASE_ENABLE) &&
	       (gpa & ~0xfffull) == (base & APIC_BASE_ADDR);
}

static _Noreturn void memory_exit(struct vp *v, uint64_t gpa, bool write)
{
	WHV_MEMORY_ACCESS_CONTEXT *m = &v->exit->MemoryAccess;
	fill_vp_context(v, WHvRunVpExitReasonMemoryAccess, m->InstructionBytes,
			&m->InstructionByteCount);
	m->AccessInfo.AccessType = write ? WHvMemoryAccessWrite : WHvMemoryAccessRead;
	m->AccessInfo.GpaUnmapped = 1;
	m->AccessInfo.GvaValid = 0; /* the soft CPU's bus sees physical addresses only */
	m->Gpa = gpa;
	softcpu_abandon(&v->cpu);
}

static uint64_t standin_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
	struct vp *v = current_vp;
	if (in_apic_page(v, gpa))
		return lapic_read(&v->lapic, (uint32_t)(gpa & 0xfff), size);
	memory_exit(v, gpa, false);
}

static void standin_mmio_write(void *opaque, uint64_t gpa, unsigned size, uint64_t value)
{
	struct vp *v = current_vp;
	if (in_apic_page(v, gpa))
		lapic_write(&v->lapic, (uint32_t)(gpa & 0xfff), size, (uint32_t)value);
	else
		memory_exit(v, gpa, true);
}

static void standin_cpuid_hook(struct softcpu *c, uint32_t leaf)
{
	struct vp *v = current_vp;
	struct partition *p = v->p;
	if (!p->exits.X64CpuidExit)
		return;
	bool listed = false;
	for (unsigned i = 0; i < p->ncpuid_exits; i++)
		listed |= p->cpuid_exits[i] == leaf;
	if (!listed)
		return;
	WHV_X64_CPUID_ACCESS_CONTEXT *x = &v->exit->CpuidAccess;
	fill_vp_context(v, WHvRunVpExitReasonX64Cpuid, NULL, NULL);
	uint32_t r[4];
	softcpu_cpuid(c, leaf, (uint32_t)c->r[R_CX], r);
	x->Rax = c->r[R_AX];
	x->Rbx = c->r[R_BX];
	x->Rcx = c->r[R_CX];
	x->Rdx = c->r[R_DX];
	x->DefaultResultRax = r[0];
	x->DefaultResultRbx = r[1];
	x->DefaultResultRcx = r[2];
	x->DefaultResultRdx = r[3];
	softcpu_abandon(c);
}

static void standin_msr_hook(struct softcpu *c, uint32_t msr, bool write)
{
	struct vp *v = current_vp;
	if (!v->p->exits.X64MsrExit)
		return; /* the processor's #GP */
	WHV_X64_MSR_ACCESS_CONTEXT *x = &v->exit->MsrAccess;
	fill_vp_context(v, WHvRunVpExitReasonX64MsrAccess, NULL, NULL);
	x->AccessInfo.IsWrite = write;
	x->MsrNumber = msr;
	x->Rax = c->r[R_AX];
	x->Rdx = c->r[R_DX];
	softcpu_abandon(c);
}

static void apic_intr(void *opaque, int level)
{
	struct vp *v = opaque;
	softcpu_set_intr(&v->cpu, level);
}

/* The EOI exit comes after the EOI write: the run stops at the end of the
 * current block and reports it. */
static void apic_eoi(void *opaque, uint8_t vector)
{
	struct vp *v = opaque;
	pthread_mutex_lock(&v->lock);
	if (v->neois < MAX_PENDING_EOIS)
		v->eois[v->neois++] = vector;
	pthread_mutex_unlock(&v->lock);
	softcpu_request(&v->cpu, REQ_STOP);
}

static void apic_startup(void *opaque, bool sipi, uint8_t vector)
{
	struct vp *v = opaque;
	pthread_mutex_lock(&v->lock);
	if (sipi && v->startup_suspend && v->sipi_vector < 0) {
		v->sipi_vector = vector;
		pthread_cond_broadcast(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
}

static int apic_ack(void *opaque)
{
	return lapic_ack(opaque);
}

/* ---- memory ---- */

HRESULT WINAPI WHvMapGpaRange(WHV_PARTITION_HANDLE handle, VOID *source,
			      WHV_GUEST_PHYSICAL_ADDRESS gpa, UINT64 size, WHV_MAP_GPA_RANGE_FLAGS flags)
{
	struct partition *p = handle;
	if (!p || !source || size == 0 || size % 4096 || (uintptr_t)source % 4096)
		return E_INVALIDARG;
	if (!p->setup)
		return WHV_E_INVALID_PARTITION_CONFIG;
	if (p->mapped || gpa != 0) /* one range at GPA 0 (see the top of this file) */
		return E_NOTIMPL;
	if (softcpu_machine_init(&p->machine, source, size) < 0)
		return E_OUTOFMEMORY;
	struct softcpu_machine *m = &p->machine;
	m->bus_opaque = p;
	m->pio_read = standin_pio_read;
	m->pio_write = standin_pio_write;
	m->mmio_read = standin_mmio_read;
	m->mmio_write = standin_mmio_write;
	m->clock_ns = host_now_ns;
	m->cpuid_hook = standin_cpuid_hook;
	m->unknown_msr_hook = standin_msr_hook;
	p->ram = source;
	p->ram_size = size;
	p->mapped = true;
	return S_OK;
}

HRESULT WINAPI WHvTranslateGva(WHV_PARTITION_HANDLE handle, UINT32 index,
			       WHV_GUEST_VIRTUAL_ADDRESS gva, WHV_TRANSLATE_GVA_FLAGS flags,
			       WHV_TRANSLATE_GVA_RESULT *result, WHV_GUEST_PHYSICAL_ADDRESS *gpa)
{
	struct partition *p = handle;
	if (!p || index >= MAX_VPS || !p->vps[index].created || !result || !gpa)
		return E_INVALIDARG;
	memset(result, 0, sizeof(*result));
	uint64_t out;
	int rc = walk_gva(p, &p->vps[index].cpu, gva, flags & WHvTranslateGvaFlagValidateWrite, &out);
	if (rc < 0)
		return E_NOTIMPL; /* 32-bit paging (see the top of this file) */
	result->ResultCode = (WHV_TRANSLATE_GVA_RESULT_CODE)rc;
	if (rc == WHvTranslateGvaResultSuccess)
		*gpa = out;
	return S_OK;
}

/* ---- virtual processors ---- */

HRESULT WINAPI WHvCreateVirtualProcessor(WHV_PARTITION_HANDLE handle, UINT32 index, UINT32 flags)
{
	struct partition *p = handle;
	if (!p || flags)
		return E_INVALIDARG;
	if (!p->setup || !p->mapped) /* RAM first (see the top of this file) */
		return WHV_E_INVALID_PARTITION_CONFIG;
	if (index >= p->processor_count)
		return E_INVALIDARG;
	struct vp *v = &p->vps[index];
	if (v->created)
		return WHV_E_VP_ALREADY_EXISTS;
	memset(v, 0, sizeof(*v));
	v->p = p;
	v->index = index;
	v->sipi_vector = -1;
	if (softcpu_init(&v->cpu, &p->machine) < 0)
		return E_OUTOFMEMORY;
	softcpu_reset(&v->cpu);
	if (index > 0)
		v->cpu.apic_base &= ~APIC_BASE_BSP;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	if (p->apic_mode == WHvX64LocalApicEmulationModeXApic) {
		p->lapics[index] = &v->lapic;
		struct lapic_ops ops = {.opaque = v, .intr = apic_intr, .eoi = apic_eoi,
					.startup = apic_startup};
		lapic_init(&v->lapic, index, &ops, host_now_ns, p->lapics, (int)p->processor_count);
		v->cpu.intr_opaque = &v->lapic;
		v->cpu.intr_ack = apic_ack;
		v->cpu.lapic_present = true;
		v->cpu.apic_id = (uint8_t)index;
		if (lapic_start_timer(&v->lapic) < 0) {
			lapic_destroy(&v->lapic);
			softcpu_destroy(&v->cpu);
			p->lapics[index] = NULL;
			return E_OUTOFMEMORY;
		}
	}
	v->created = true;
	return S_OK;
}

static struct vp *find_vp(WHV_PARTITION_HANDLE handle, UINT32 index)
{
	struct partition *p = handle;
	if (!p || index >= MAX_VPS || !p->vps[index].created)
		return NULL;
	return &p->vps[index];
}

HRESULT WINAPI WHvDeleteVirtualProcessor(WHV_PARTITION_HANDLE handle, UINT32 index)
{
	struct vp *v = find_vp(handle, index);
	if (!v)
		return WHV_E_VP_DOES_NOT_EXIST;
	vp_destroy(v);
	return S_OK;
}

/* ---- registers ---- */

static int segment_index(WHV_REGISTER_NAME name)
{
	switch (name) {
	case WHvX64RegisterEs: return S_ES;
	case WHvX64RegisterCs: return S_CS;
	case WHvX64RegisterSs: return S_SS;
	case WHvX64RegisterDs: return S_DS;
	case WHvX64RegisterFs: return S_FS;
	case WHvX64RegisterGs: return S_GS;
	default: return -1;
	}
}

static WHV_X64_SEGMENT_REGISTER whv_segment(const struct softcpu_seg *s)
{
	WHV_X64_SEGMENT_REGISTER r;
	memset(&r, 0, sizeof(r));
	r.Base = s->base;
	r.Limit = s->limit;
	r.Selector = s->sel;
	r.Attributes = s->attr; /* the soft CPU keeps the same (VMX) layout */
	return r;
}

static HRESULT get_register(struct vp *v, WHV_REGISTER_NAME name, WHV_REGISTER_VALUE *out)
{
	struct softcpu *c = &v->cpu;
	memset(out, 0, sizeof(*out));
	if (name >= WHvX64RegisterRax && name <= WHvX64RegisterR15) {
		out->Reg64 = c->r[name - WHvX64RegisterRax];
		return S_OK;
	}
	int seg = segment_index(name);
	if (seg >= 0) {
		out->Segment = whv_segment(&c->seg[seg]);
		return S_OK;
	}
	switch (name) {
	case WHvX64RegisterRip: out->Reg64 = c->rip; break;
	case WHvX64RegisterRflags: out->Reg64 = softcpu_get_rflags(c); break;
	case WHvX64RegisterLdtr: out->Segment = whv_segment(&c->ldtr); break;
	case WHvX64RegisterTr: out->Segment = whv_segment(&c->tr); break;
	case WHvX64RegisterIdtr: out->Table.Base = c->idtr.base; out->Table.Limit = c->idtr.limit; break;
	case WHvX64RegisterGdtr: out->Table.Base = c->gdtr.base; out->Table.Limit = c->gdtr.limit; break;
	case WHvX64RegisterCr0: out->Reg64 = c->cr0; break;
	case WHvX64RegisterCr2: out->Reg64 = c->cr2; break;
	case WHvX64RegisterCr3: out->Reg64 = c->cr3; break;
	case WHvX64RegisterCr4: out->Reg64 = c->cr4; break;
	case WHvX64RegisterCr8: out->Reg64 = c->cr8; break;
	case WHvX64RegisterEfer: out->Reg64 = c->efer; break;
	case WHvX64RegisterApicBase: out->Reg64 = c->apic_base; break;
	case WHvX64RegisterDeliverabilityNotifications: out->Reg64 = v->deliverability; break;
	case WHvRegisterPendingInterruption:
		if (c->inject_vector >= 0) {
			out->PendingInterruption.InterruptionPending = 1;
			out->PendingInterruption.InterruptionType = WHvX64PendingException;
			out->PendingInterruption.DeliverErrorCode = c->inject_has_error;
			out->PendingInterruption.InterruptionVector = (UINT32)c->inject_vector;
			out->PendingInterruption.ErrorCode = c->inject_error;
		}
		break;
	case WHvRegisterInternalActivityState:
		pthread_mutex_lock(&v->lock);
		out->InternalActivity.StartupSuspend = v->startup_suspend;
		out->InternalActivity.HaltSuspend = c->halted;
		pthread_mutex_unlock(&v->lock);
		break;
	default: return WHV_E_INVALID_VP_REGISTER_NAME;
	}
	return S_OK;
}

/* Set one register; *mode_changed when the CPU's mode must be recomputed. */
static HRESULT set_register(struct vp *v, WHV_REGISTER_NAME name, const WHV_REGISTER_VALUE *in,
			    bool *mode_changed)
{
	struct softcpu *c = &v->cpu;
	if (name >= WHvX64RegisterRax && name <= WHvX64RegisterR15) {
		c->r[name - WHvX64RegisterRax] = in->Reg64;
		return S_OK;
	}
	int seg = segment_index(name);
	if (seg >= 0) {
		const WHV_X64_SEGMENT_REGISTER *s = &in->Segment;
		softcpu_set_seg(c, seg, s->Selector, s->Base, s->Limit, s->Attributes);
		*mode_changed = true;
		return S_OK;
	}
	switch (name) {
	case WHvX64RegisterRip: c->rip = in->Reg64; break;
	case WHvX64RegisterRflags: softcpu_set_rflags(c, in->Reg64); break;
	case WHvX64RegisterLdtr:
	case WHvX64RegisterTr: {
		struct softcpu_seg *s = name == WHvX64RegisterTr ? &c->tr : &c->ldtr;
		*s = (struct softcpu_seg){.base = in->Segment.Base, .limit = in->Segment.Limit,
					  .sel = in->Segment.Selector, .attr = in->Segment.Attributes};
		break;
	}
	case WHvX64RegisterIdtr: c->idtr = (struct softcpu_dtr){in->Table.Base, in->Table.Limit}; break;
	case WHvX64RegisterGdtr: c->gdtr = (struct softcpu_dtr){in->Table.Base, in->Table.Limit}; break;
	case WHvX64RegisterCr0: c->cr0 = in->Reg64; *mode_changed = true; break;
	case WHvX64RegisterCr2: c->cr2 = in->Reg64; break;
	case WHvX64RegisterCr3: c->cr3 = in->Reg64; *mode_changed = true; break;
	case WHvX64RegisterCr4: c->cr4 = in->Reg64; *mode_changed = true; break;
	case WHvX64RegisterCr8: c->cr8 = in->Reg64 & 0xf; break;
	case WHvX64RegisterEfer: c->efer = in->Reg64; *mode_changed = true; break;
	case WHvX64RegisterApicBase: c->apic_base = in->Reg64; break;
	case WHvX64RegisterDeliverabilityNotifications: v->deliverability = in->Reg64; break;
	case WHvRegisterPendingInterruption: {
		const WHV_X64_PENDING_INTERRUPTION_REGISTER *pi = &in->PendingInterruption;
		if (!pi->InterruptionPending)
			break;
		if (pi->InterruptionType != WHvX64PendingException || pi->InterruptionVector > 31)
			return E_NOTIMPL; /* see the top of this file */
		softcpu_inject_exception(c, (int)pi->InterruptionVector, pi->ErrorCode,
					 pi->DeliverErrorCode);
		break;
	}
	case WHvRegisterInternalActivityState:
		pthread_mutex_lock(&v->lock);
		v->startup_suspend = in->InternalActivity.StartupSuspend;
		v->sipi_vector = -1;
		pthread_mutex_unlock(&v->lock);
		break;
	default: return WHV_E_INVALID_VP_REGISTER_NAME;
	}
	return S_OK;
}

HRESULT WINAPI WHvGetVirtualProcessorRegisters(WHV_PARTITION_HANDLE handle, UINT32 index,
					       const WHV_REGISTER_NAME *names, UINT32 count,
					       WHV_REGISTER_VALUE *values)
{
	struct vp *v = find_vp(handle, index);
	if (!v)
		return WHV_E_VP_DOES_NOT_EXIST;
	if (v->running) /* only while the VP is not running (the caller's own thread) */
		return WHV_E_INVALID_VP_STATE;
	for (UINT32 i = 0; i < count; i++) {
		HRESULT hr = get_register(v, names[i], &values[i]);
		if (FAILED(hr))
			return hr;
	}
	return S_OK;
}

HRESULT WINAPI WHvSetVirtualProcessorRegisters(WHV_PARTITION_HANDLE handle, UINT32 index,
					       const WHV_REGISTER_NAME *names, UINT32 count,
					       const WHV_REGISTER_VALUE *values)
{
	struct vp *v = find_vp(handle, index);
	if (!v)
		return WHV_E_VP_DOES_NOT_EXIST;
	if (v->running)
		return WHV_E_INVALID_VP_STATE;
	bool mode_changed = false;
	HRESULT hr = S_OK;
	for (UINT32 i = 0; i < count && SUCCEEDED(hr); i++)
		hr = set_register(v, names[i], &values[i], &mode_changed);
	if (mode_changed) {
		softcpu_update_mode(&v->cpu);
		softcpu_tlb_flush(&v->cpu, true);
	}
	return hr;
}

/* ---- running ---- */

/* An EOI or a cancel waiting to be reported: fill the exit and say so. */
static bool pending_exit(struct vp *v)
{
	bool found = true;
	pthread_mutex_lock(&v->lock);
	if (v->cancel) {
		v->cancel = false;
		v->exit->ExitReason = WHvRunVpExitReasonCanceled;
		v->exit->CancelReason.CancelReason = WhvRunVpCancelReasonUser;
	} else if (v->neois) {
		v->exit->ExitReason = WHvRunVpExitReasonX64ApicEoi;
		v->exit->ApicEoi.InterruptVector = v->eois[0];
		memmove(v->eois, v->eois + 1, --v->neois);
	} else {
		found = false;
	}
	pthread_mutex_unlock(&v->lock);
	if (found && v->exit->ExitReason == WHvRunVpExitReasonX64ApicEoi)
		fill_vp_context(v, WHvRunVpExitReasonX64ApicEoi, NULL, NULL);
	return found;
}

/* A VP in StartupSuspend waits for its Startup IPI (then starts in real mode
 * at vector * 0x1000) or a cancel; false: canceled first. */
static bool wait_for_startup(struct vp *v)
{
	pthread_mutex_lock(&v->lock);
	while (v->startup_suspend && v->sipi_vector < 0 && !v->cancel)
		pthread_cond_wait(&v->cond, &v->lock);
	bool started = !v->startup_suspend || v->sipi_vector >= 0;
	if (v->startup_suspend && v->sipi_vector >= 0) {
		softcpu_set_seg(&v->cpu, S_CS, (uint16_t)(v->sipi_vector << 8),
				(uint64_t)v->sipi_vector << 12, 0xffff, 0x9b);
		v->cpu.rip = 0;
		v->startup_suspend = false;
	}
	pthread_mutex_unlock(&v->lock);
	return started;
}

/* HLT with interrupts off, suspended without an exit: only a cancel ends it. */
static void wait_for_cancel(struct vp *v)
{
	pthread_mutex_lock(&v->lock);
	while (!v->cancel)
		pthread_cond_wait(&v->cond, &v->lock);
	pthread_mutex_unlock(&v->lock);
}

HRESULT WINAPI WHvRunVirtualProcessor(WHV_PARTITION_HANDLE handle, UINT32 index, VOID *context,
				      UINT32 size)
{
	struct vp *v = find_vp(handle, index);
	if (!v)
		return WHV_E_VP_DOES_NOT_EXIST;
	if (!context || size < sizeof(WHV_RUN_VP_EXIT_CONTEXT))
		return WHV_E_INSUFFICIENT_BUFFER;
	v->exit = context;
	memset(v->exit, 0, sizeof(*v->exit));
	pthread_mutex_lock(&v->lock);
	v->running = true;
	pthread_mutex_unlock(&v->lock);
	current_vp = v;
	for (;;) {
		if (pending_exit(v) || !wait_for_startup(v))
			break;
		enum softcpu_exit why = softcpu_run(&v->cpu, 0);
		if (why == SOFTCPU_EXIT_ABANDONED)
			break; /* a bus callback or hook filled the exit */
		if (why == SOFTCPU_EXIT_HALT && !v->p->halt_exits) {
			wait_for_cancel(v); /* reported at the loop head */
			continue;
		}
		if (why == SOFTCPU_EXIT_HALT) {
			fill_vp_context(v, WHvRunVpExitReasonX64Halt, NULL, NULL);
			break;
		}
		if (why == SOFTCPU_EXIT_SHUTDOWN) {
			fill_vp_context(v, WHvRunVpExitReasonUnrecoverableException, NULL, NULL);
			break;
		}
		/* SOFTCPU_EXIT_STOP: a cancel or an EOI (the loop head reports it). */
	}
	pthread_mutex_lock(&v->lock);
	v->running = false;
	pthread_mutex_unlock(&v->lock);
	current_vp = NULL;
	return S_OK;
}

HRESULT WINAPI WHvCancelRunVirtualProcessor(WHV_PARTITION_HANDLE handle, UINT32 index, UINT32 flags)
{
	struct vp *v = find_vp(handle, index);
	if (!v)
		return WHV_E_VP_DOES_NOT_EXIST;
	pthread_mutex_lock(&v->lock);
	v->cancel = true;
	pthread_cond_broadcast(&v->cond); /* a VP waiting for its Startup IPI, or suspended in HLT */
	pthread_mutex_unlock(&v->lock);
	softcpu_request(&v->cpu, REQ_STOP); /* wakes it from HLT too */
	return S_OK;
}

/* ---- interrupts ---- */

HRESULT WINAPI WHvRequestInterrupt(WHV_PARTITION_HANDLE handle, const WHV_INTERRUPT_CONTROL *irq,
				   UINT32 size)
{
	struct partition *p = handle;
	if (!p || !irq || size < sizeof(*irq))
		return E_INVALIDARG;
	if (p->apic_mode != WHvX64LocalApicEmulationModeXApic)
		return WHV_E_INVALID_PARTITION_CONFIG; /* the hypervisor's LAPIC is needed */
	switch (irq->Type) {
	case WHvX64InterruptTypeFixed:
	case WHvX64InterruptTypeLowestPriority:
	case WHvX64InterruptTypeNmi:
	case WHvX64InterruptTypeInit:
	case WHvX64InterruptTypeSipi:
		break;
	default:
		return E_INVALIDARG;
	}
	struct lapic_msg m = {
		.vector = (uint8_t)irq->Vector,
		.delivery = (uint8_t)irq->Type, /* WHP's types are the APIC delivery modes */
		.dest = (uint8_t)irq->Destination,
		.logical = irq->DestinationMode == WHvX64InterruptDestinationModeLogical,
		.level = irq->TriggerMode == WHvX64InterruptTriggerModeLevel,
	};
	lapic_route(p->lapics, (int)p->processor_count, &m);
	return S_OK;
}
