/* soft.c - run test cases in the software CPU, in 64-bit user mode (CPL 3)
 * like the native run.
 *
 * Guest physical layout (1 MiB of RAM):
 *   0x1000 PML4, 0x2000 PDPT, 0x3000 PD, 0x4000 PT of the test regions
 *   0x5000 GDT, 0x6000 TSS, 0x7000 IDT, 0x8000-0x8fff kernel stack,
 *   0xa000 256 HLT bytes: vector v's gate points at 0xa000 + v
 *   0x10000 code, 0x20000 data (8 KiB), 0x30000 stack
 * The low 2 MiB are mapped 1:1 for the supervisor; the test regions at the
 * same linear addresses as natively, as user pages.  A test ends with an
 * exception (the final INT3 or a fault); its handler's HLT stops the CPU and
 * the IRET frame on the kernel stack gives RIP, RFLAGS and RSP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "jit.h"
#include "difftest.h"

#define RAM_SIZE (1u << 20)
#define PHYS_CODE 0x10000u
#define PHYS_DATA 0x20000u
#define PHYS_STACK 0x30000u
#define HANDLERS 0xa000u
#define KSTACK_TOP 0x9000u

static uint8_t *ram;
static struct softcpu_machine machine;
static struct softcpu cpu, jit_cpu;

static uint64_t no_pio_read(void *o, uint16_t port, unsigned size) { (void)o; (void)port; (void)size; return ~0ull; }
static void no_pio_write(void *o, uint16_t port, unsigned size, uint64_t v) { (void)o; (void)port; (void)size; (void)v; }
static uint64_t no_mmio_read(void *o, uint64_t a, unsigned size) { (void)o; (void)a; (void)size; return ~0ull; }
static void no_mmio_write(void *o, uint64_t a, unsigned size, uint64_t v) { (void)o; (void)a; (void)size; (void)v; }

static void put64(uint64_t pa, uint64_t v)
{
	memcpy(ram + pa, &v, 8);
}

static void map_user(uint64_t lin, uint64_t phys, unsigned pages)
{
	for (unsigned i = 0; i < pages; i++)
		put64(0x4000 + (((lin >> 12) + i) & 511) * 8, (phys + 4096ull * i) | 0x7);
}

int soft_init(void)
{
	ram = calloc(1, RAM_SIZE);
	if (!ram || softcpu_machine_init(&machine, ram, RAM_SIZE) < 0)
		return -1;
	machine.pio_read = no_pio_read;
	machine.pio_write = no_pio_write;
	machine.mmio_read = no_mmio_read;
	machine.mmio_write = no_mmio_write;
	if (softcpu_init(&cpu, &machine) < 0 || softcpu_init(&jit_cpu, &machine) < 0)
		return -1;
	if (softcpu_set_jit(&jit_cpu, true) < 0) {
		fprintf(stderr, "difftest: the JIT cannot be turned on\n");
		return -1;
	}

	put64(0x1000, 0x2000 | 0x7);                  /* PML4[0] */
	put64(0x2000, 0x3000 | 0x7);                  /* PDPT[0] */
	put64(0x3000, 0x0 | 0x83);                    /* PD[0]: 2 MiB supervisor page at 0 */
	put64(0x3000 + (CODE_ADDR >> 21) * 8, 0x4000 | 0x7); /* PD[128] -> PT */
	map_user(CODE_ADDR, PHYS_CODE, 1);
	map_user(DATA_ADDR, PHYS_DATA, DATA_SIZE / 4096);
	map_user(STACK_ADDR, PHYS_STACK, STACK_SIZE / 4096);

	static const uint64_t gdt[] = {
		0,
		0x00af9b000000ffffull, /* 0x08 kernel code, 64-bit */
		0x00cf93000000ffffull, /* 0x10 kernel data */
		0x00cff3000000ffffull, /* 0x18 user data */
		0x00affb000000ffffull, /* 0x20 user code, 64-bit */
		0x0000896000000067ull, /* 0x28 TSS at 0x6000 (low half) */
		0,                     /* TSS high half */
	};
	memcpy(ram + 0x5000, gdt, sizeof(gdt));
	put64(0x6000 + 4, KSTACK_TOP); /* TSS.rsp0 */
	for (unsigned v = 0; v < 256; v++) {
		uint64_t off = HANDLERS + v;
		put64(0x7000 + 16 * v, (off & 0xffff) | (0x08ull << 16) | (0xee00ull << 32) | ((off >> 16) << 48));
		put64(0x7000 + 16 * v + 8, 0);
		ram[HANDLERS + v] = 0xf4; /* HLT */
	}
	return 0;
}

void soft_run(const struct dt_case *tc, struct dt_state *out, bool cold_tlb, bool jit)
{
	struct softcpu *c = jit ? &jit_cpu : &cpu;
	memcpy(ram + PHYS_CODE, tc->code, tc->code_len);
	memcpy(ram + PHYS_DATA, tc->init.data, DATA_SIZE);
	memcpy(ram + PHYS_STACK, tc->init.stack, STACK_SIZE);
	/* The code page was rewritten behind the CPU's back: stale its blocks. */
	softcpu_machine_ram_written(&machine, PHYS_CODE, tc->code_len);

	c->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
	c->cr4 = CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	c->cr3 = 0x1000;
	if (cold_tlb)
		softcpu_tlb_flush(c, true);
	c->efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	c->gdtr = (struct softcpu_dtr){0x5000, sizeof(uint64_t) * 7 - 1};
	c->idtr = (struct softcpu_dtr){0x7000, 0xfff};
	c->tr = (struct softcpu_seg){.base = 0x6000, .limit = 0x67, .sel = 0x28, .attr = 0x8b};
	for (int s = 0; s < S_NSEG; s++)
		softcpu_set_seg(c, s, 0, 0, 0, 0);
	softcpu_set_seg(c, S_SS, 0x1b, 0, 0xffffffffu, 0xc0f3);
	softcpu_set_seg(c, S_CS, 0x23, 0, 0xffffffffu, 0xa0fb);
	memcpy(c->r, tc->init.r, sizeof(c->r));
	memcpy(c->xmm, tc->init.xmm, sizeof(c->xmm));
	c->mxcsr = tc->init.mxcsr;
	struct softcpu_fxstate x87 = {.fcw = tc->init.fcw, .fsw = tc->init.fsw, .ftw = tc->init.ftw};
	memcpy(x87.st, tc->init.st, sizeof(x87.st));
	softcpu_set_x87(c, &x87);
	c->rip = CODE_ADDR;
	softcpu_set_rflags(c, (tc->init.rflags & DT_COMPARED) | F_IF | 0x2);
	c->halted = false;
	c->intr_shadow = false;

	enum softcpu_exit why = softcpu_run(c, 100000);
	memset(out, 0, sizeof(*out));
	if (why != SOFTCPU_EXIT_HALT || c->rip < HANDLERS + 1 || c->rip > HANDLERS + 256) {
		out->vector = -2; /* did not end in an exception handler */
		out->rip = c->rip;
		return;
	}
	out->vector = (int)(c->rip - HANDLERS - 1);
	bool has_error = out->vector == 8 || (out->vector >= 10 && out->vector <= 14) || out->vector == 17;
	uint64_t frame = c->r[R_SP] + (has_error ? 8 : 0);
	uint64_t f[5];
	memcpy(f, ram + frame, sizeof(f)); /* RIP, CS, RFLAGS, RSP, SS (kernel stack is identity-mapped) */
	memcpy(out->r, c->r, sizeof(out->r));
	out->r[R_SP] = f[3];
	out->rip = f[0];
	out->rflags = f[2];
	memcpy(out->xmm, c->xmm, sizeof(out->xmm));
	out->mxcsr = c->mxcsr;
	softcpu_get_x87(c, &x87);
	out->fcw = x87.fcw;
	out->fsw = x87.fsw;
	out->ftw = x87.ftw;
	memcpy(out->st, x87.st, sizeof(out->st));
	memcpy(out->data, ram + PHYS_DATA, DATA_SIZE);
	memcpy(out->stack, ram + PHYS_STACK, STACK_SIZE);
}
