/* test_softcpu_system.c - what user-mode differential tests cannot show:
 * paging faults and their error codes, exception frames (privilege change,
 * IST, double and triple faults), IRETQ, SYSCALL/SYSRET, the STI interrupt
 * shadow with an external interrupt, the real -> protected -> long mode
 * switch, self-modifying code, code rewritten by a device process, MMIO routing, HLT and stop requests.
 * Every test runs twice: interpreted, then translated by the JIT (jit.h),
 * which adds faults in the middle of a translated block and of a block
 * looping to itself, interrupts breaking into loops (a block chained to
 * itself, a CALL/RET loop through the indirect-branch cache), and code
 * rewritten inside the looping block, by itself and by a device.
 *
 * The machine code below was assembled with GNU as from the source shown in
 * the comment above each array. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cpu.h"
#include "jit.h"

#define RAM_SIZE (4u << 20)
#define KCODE 0x10000u
#define UCODE 0x20000u
#define UDATA 0x30000u   /* user RW */
#define URO 0x31000u     /* user read-only */
#define UNX 0x32000u     /* user, no-execute */
#define UNOTP 0x33000u   /* not present */
#define KONLY 0x34000u   /* supervisor only */
#define URSVD 0x35000u   /* reserved bit set in its PTE */
#define USTACK_TOP 0x41000u
#define KSTACK_TOP 0x9000u
#define IST1_TOP 0xb000u
#define HANDLERS 0xa000u
#define MMIO_BASE 0x80000000u

struct fixture {
	uint8_t *ram;
	struct guest_mem mem; /* ram with its dirty log, as the core maps it */
	struct softcpu_machine m;
	struct softcpu c;
	/* MMIO log */
	uint64_t mmio_addr[4];
	unsigned mmio_size[4];
	uint64_t mmio_value[4];
	unsigned mmio_count;
	int intr_vector; /* what intr_ack answers */
};

/* The group being run: the vCPUs translate (jit.h) or interpret. */
static bool use_jit;

static void engine_for(struct softcpu *c)
{
	if (use_jit)
		assert_int_equal(softcpu_set_jit(c, true), 0);
}

static uint64_t pio_read(void *o, uint16_t port, unsigned size) { (void)o; (void)port; (void)size; return 0; }
static void pio_write(void *o, uint16_t port, unsigned size, uint64_t v) { (void)o; (void)port; (void)size; (void)v; }

static uint64_t mmio_read(void *o, uint64_t gpa, unsigned size)
{
	struct fixture *f = o;
	if (f->mmio_count < 4) {
		f->mmio_addr[f->mmio_count] = gpa;
		f->mmio_size[f->mmio_count++] = size;
	}
	return 0xdeadbeef;
}

static void mmio_write(void *o, uint64_t gpa, unsigned size, uint64_t v)
{
	struct fixture *f = o;
	if (f->mmio_count < 4) {
		f->mmio_addr[f->mmio_count] = gpa;
		f->mmio_value[f->mmio_count] = v;
		f->mmio_size[f->mmio_count++] = size;
	}
}

static int intr_ack(void *o)
{
	struct fixture *f = o;
	atomic_store(&f->c.intr_line, 0);
	return f->intr_vector;
}

static void put64(struct fixture *f, uint64_t pa, uint64_t v)
{
	memcpy(f->ram + pa, &v, 8);
}

static uint64_t get64(struct fixture *f, uint64_t pa)
{
	uint64_t v;
	memcpy(&v, f->ram + pa, 8);
	return v;
}

static void load(struct fixture *f, uint64_t pa, const uint8_t *code, size_t n)
{
	memcpy(f->ram + pa, code, n);
	softcpu_machine_ram_written(&f->m, pa, n);
}

static void set_pte(struct fixture *f, uint64_t page, uint64_t flags)
{
	put64(f, 0x4000 + (page >> 12) * 8, page | flags);
}

/* 64-bit kernel (CPL 0) at KCODE with page tables, GDT, TSS and an IDT
 * whose vector v handler is a HLT at HANDLERS + v. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, guest_mem_shm_size(RAM_SIZE));
	guest_mem_attach(&f->mem, f->ram, RAM_SIZE);
	softcpu_machine_init(&f->m, f->ram, RAM_SIZE);
	softcpu_machine_set_dirty_log(&f->m, &f->mem);
	f->m.bus_opaque = f;
	f->m.pio_read = pio_read;
	f->m.pio_write = pio_write;
	f->m.mmio_read = mmio_read;
	f->m.mmio_write = mmio_write;
	softcpu_init(&f->c, &f->m);
	engine_for(&f->c);

	put64(f, 0x1000, 0x2007);                     /* PML4[0] */
	put64(f, 0x2000, 0x3007);                     /* PDPT[0]: user allowed below */
	put64(f, 0x2000 + 2 * 8, MMIO_BASE | 0x83);   /* PDPT[2]: 1 GiB page at 2 GiB (MMIO) */
	put64(f, 0x3000, 0x4007);                     /* PD[0] -> PT: 4 KiB pages */
	put64(f, 0x3008, 0x200000 | 0x83);            /* PD[1]: 2 MiB supervisor page */
	for (uint64_t page = 0; page < 0x200000; page += 4096)
		set_pte(f, page, 0x3); /* supervisor RW */
	set_pte(f, UCODE, 0x5);   /* user, read-only code */
	set_pte(f, UDATA, 0x7);
	set_pte(f, URO, 0x5);
	set_pte(f, UNX, 0x7 | (1ull << 63));
	set_pte(f, UNOTP, 0x6);
	set_pte(f, KONLY, 0x3);
	set_pte(f, URSVD, 0x7 | (1ull << 51));
	set_pte(f, USTACK_TOP - 4096, 0x7);

	static const uint64_t gdt[] = {
		0,
		0x00af9b000000ffffull, /* 0x08 kernel code */
		0x00cf93000000ffffull, /* 0x10 kernel data */
		0x00cff3000000ffffull, /* 0x18 user data */
		0x00affb000000ffffull, /* 0x20 user code */
		0x00008b6000000067ull, /* 0x28 TSS at 0x6000 (busy) */
		0,
	};
	memcpy(f->ram + 0x5000, gdt, sizeof(gdt));
	put64(f, 0x6000 + 4, KSTACK_TOP); /* rsp0 */
	put64(f, 0x6000 + 36, IST1_TOP);  /* ist1 */
	for (unsigned v = 0; v < 256; v++) {
		uint64_t off = HANDLERS + v;
		put64(f, 0x7000 + 16 * v, (off & 0xffff) | (0x08ull << 16) | (0xee00ull << 32) | ((off >> 16) << 48));
		f->ram[HANDLERS + v] = 0xf4;
	}

	struct softcpu *c = &f->c;
	c->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	c->cr4 = CR4_PAE | CR4_OSFXSR;
	c->cr3 = 0x1000;
	c->efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	c->gdtr = (struct softcpu_dtr){0x5000, sizeof(gdt) - 1};
	c->idtr = (struct softcpu_dtr){0x7000, 0xfff};
	c->tr = (struct softcpu_seg){.base = 0x6000, .limit = 0x67, .sel = 0x28, .attr = 0x8b};
	softcpu_set_seg(c, S_CS, 0x08, 0, 0xffffffffu, 0xa09b);
	for (int s = 0; s < S_NSEG; s++)
		if (s != S_CS)
			softcpu_set_seg(c, s, 0x10, 0, 0xffffffffu, 0xc093);
	softcpu_tlb_flush(c, true);
	c->rip = KCODE;
	c->r[R_SP] = KSTACK_TOP;
	softcpu_set_rflags(c, 0x2);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	softcpu_destroy(&f->c);
	softcpu_machine_destroy(&f->m);
	free(f->ram);
	free(f);
	return 0;
}

static void enter_user(struct fixture *f, uint64_t rip)
{
	softcpu_set_seg(&f->c, S_SS, 0x1b, 0, 0xffffffffu, 0xc0f3);
	softcpu_set_seg(&f->c, S_CS, 0x23, 0, 0xffffffffu, 0xa0fb);
	f->c.rip = rip;
	f->c.r[R_SP] = USTACK_TOP;
}

/* Run until an exception handler's HLT; returns the vector. */
static int run_to_handler(struct fixture *f)
{
	assert_int_equal(softcpu_run(&f->c, 10000), SOFTCPU_EXIT_HALT);
	assert_in_range(f->c.rip, HANDLERS + 1, HANDLERS + 256);
	return (int)(f->c.rip - HANDLERS - 1);
}

struct frame {
	uint64_t rip, cs, rflags, rsp, ss;
};

static struct frame frame_at(struct fixture *f, uint64_t sp)
{
	return (struct frame){get64(f, sp), get64(f, sp + 8), get64(f, sp + 16), get64(f, sp + 24), get64(f, sp + 32)};
}

/* mov (%rax),%rbx; int3  /  movq $1,(%rax); int3  /  jmp *%rax */
static const uint8_t user_read[] = {0x48, 0x8b, 0x18, 0xcc};
static const uint8_t user_write[] = {0x48, 0xc7, 0x00, 0x01, 0x00, 0x00, 0x00, 0xcc};
static const uint8_t user_jump[] = {0xff, 0xe0};

static void expect_user_pf(void **state, const uint8_t *code, size_t n, uint64_t addr, uint32_t err,
			   uint64_t fault_rip)
{
	struct fixture *f = *state;
	load(f, UCODE, code, n);
	enter_user(f, UCODE);
	f->c.r[R_AX] = addr;
	assert_int_equal(run_to_handler(f), 14);
	/* CPL 3 -> 0: the frame is on rsp0 with the error code first */
	assert_int_equal(f->c.r[R_SP], KSTACK_TOP - 48);
	assert_int_equal(get64(f, KSTACK_TOP - 48), err);
	struct frame fr = frame_at(f, KSTACK_TOP - 40);
	assert_int_equal(fr.rip, fault_rip);
	assert_int_equal(fr.cs, 0x23);
	assert_int_equal(fr.ss, 0x1b);
	assert_int_equal(fr.rsp, USTACK_TOP);
	assert_int_equal(f->c.cr2, addr);
	assert_int_equal(f->c.cpl, 0);
}

static void test_pf_user_reads_supervisor_page(void **state)
{
	expect_user_pf(state, user_read, sizeof(user_read), KONLY + 8, 0x5, UCODE); /* P | U */
}

static void test_pf_user_writes_read_only_page(void **state)
{
	expect_user_pf(state, user_write, sizeof(user_write), URO + 16, 0x7, UCODE); /* P | W | U */
}

static void test_pf_not_present(void **state)
{
	expect_user_pf(state, user_write, sizeof(user_write), UNOTP, 0x6, UCODE); /* W | U */
}

static void test_pf_fetch_from_nx_page(void **state)
{
	expect_user_pf(state, user_jump, sizeof(user_jump), UNX, 0x15, UNX); /* P | U | I */
}

static void test_pf_reserved_bit(void **state)
{
	expect_user_pf(state, user_read, sizeof(user_read), URSVD, 0xd, UCODE); /* P | U | RSVD */
}

static void test_user_access_allowed_sets_accessed_dirty(void **state)
{
	struct fixture *f = *state;
	load(f, UCODE, user_write, sizeof(user_write));
	enter_user(f, UCODE);
	f->c.r[R_AX] = UDATA + 8;
	assert_int_equal(run_to_handler(f), 3);
	assert_int_equal(get64(f, UDATA + 8), 1);
	assert_int_equal(get64(f, 0x4000 + (UDATA >> 12) * 8) & 0x60, 0x60); /* A and D */
}

/* mov $0x12345,%ecx; wrmsr  -> #GP(0) through an IST stack */
static void test_gp_on_ist_stack(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xb9, 0x45, 0x23, 0x01, 0x00, 0x0f, 0x30};
	load(f, KCODE, code, sizeof(code));
	f->ram[0x7000 + 16 * 13 + 4] = 1; /* gate 13: IST 1 */
	f->c.r[R_SP] = KSTACK_TOP - 0x100 + 8; /* misaligned on purpose: IST ignores it */
	assert_int_equal(run_to_handler(f), 13);
	assert_int_equal(f->c.r[R_SP], IST1_TOP - 48);
	assert_int_equal(get64(f, IST1_TOP - 48), 0);
	struct frame fr = frame_at(f, IST1_TOP - 40);
	assert_int_equal(fr.rip, KCODE + 5);
	assert_int_equal(fr.cs, 0x08);
	assert_int_equal(fr.rsp, KSTACK_TOP - 0x100 + 8);
	assert_int_equal(fr.ss, 0x10);
}

/* push $0x1b; push $0x41000; push $0x202; push $0x23; push $0x20000; iretq */
static void test_iretq_to_user_and_back(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x6a, 0x1b, 0x68, 0x00, 0x10, 0x04, 0x00, 0x68, 0x02, 0x02, 0x00,
				       0x00, 0x6a, 0x23, 0x68, 0x00, 0x00, 0x02, 0x00, 0x48, 0xcf};
	static const uint8_t user[] = {0xcc}; /* int3 */
	load(f, KCODE, code, sizeof(code));
	load(f, UCODE, user, sizeof(user));
	assert_int_equal(run_to_handler(f), 3);
	struct frame fr = frame_at(f, KSTACK_TOP - 40);
	assert_int_equal(fr.rip, UCODE + 1);
	assert_int_equal(fr.cs, 0x23);
	assert_int_equal(fr.rflags & 0x202, 0x202);
	assert_int_equal(fr.rsp, USTACK_TOP);
	assert_int_equal(fr.ss, 0x1b);
}

/* user: syscall; int3    kernel at LSTAR: hlt; sysretq */
static void test_syscall_sysret(void **state)
{
	struct fixture *f = *state;
	static const uint8_t user[] = {0x0f, 0x05, 0xcc};
	static const uint8_t kernel[] = {0xf4, 0x48, 0x0f, 0x07};
	struct softcpu *c = &f->c;
	load(f, UCODE, user, sizeof(user));
	load(f, KCODE, kernel, sizeof(kernel));
	c->star = (0x10ull << 48) | (0x08ull << 32);
	c->lstar = KCODE;
	c->sfmask = F_IF | F_DF;
	enter_user(f, UCODE);
	softcpu_set_rflags(c, 0x2 | F_IF | F_DF | F_CF);

	assert_int_equal(softcpu_run(c, 1000), SOFTCPU_EXIT_HALT); /* the kernel's HLT */
	assert_int_equal(c->rip, KCODE + 1);
	assert_int_equal(c->cpl, 0);
	assert_int_equal(c->seg[S_CS].sel, 0x08);
	assert_int_equal(c->seg[S_SS].sel, 0x10);
	assert_int_equal(c->r[R_CX], UCODE + 2);
	assert_int_equal(c->r[R_R11] & (F_IF | F_DF | F_CF), F_IF | F_DF | F_CF);
	assert_int_equal(softcpu_get_rflags(c) & (F_IF | F_DF | F_CF), F_CF);

	c->halted = false;
	assert_int_equal(run_to_handler(f), 3);
	struct frame fr = frame_at(f, KSTACK_TOP - 40);
	assert_int_equal(fr.rip, UCODE + 3);
	assert_int_equal(fr.cs, 0x23);
	assert_int_equal(fr.ss, 0x1b);
	assert_int_equal(fr.rflags & (F_IF | F_DF | F_CF), F_IF | F_DF | F_CF);
}

/* sti; nop; nop; hlt with an interrupt pending: it arrives after the first NOP */
static void test_sti_interrupt_shadow(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xfb, 0x90, 0x90, 0xf4};
	load(f, KCODE, code, sizeof(code));
	f->c.intr_opaque = f;
	f->c.intr_ack = intr_ack;
	f->intr_vector = 0x20;
	softcpu_set_intr(&f->c, 1);
	assert_int_equal(run_to_handler(f), 0x20);
	struct frame fr = frame_at(f, KSTACK_TOP - 40);
	assert_int_equal(fr.rip, KCODE + 2);
	assert_int_equal(fr.rflags & F_IF, F_IF);
}

/* A #PF whose delivery faults again (no stack) is a double fault, which
 * arrives on its IST stack with error code 0. */
static void test_double_fault(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x48, 0x8b, 0x18}; /* mov (%rax),%rbx */
	load(f, KCODE, code, sizeof(code));
	f->ram[0x7000 + 16 * 8 + 4] = 1; /* #DF on IST 1 */
	f->c.r[R_AX] = UNOTP;
	f->c.r[R_SP] = UNOTP + 0x800; /* pushing the #PF frame faults too */
	assert_int_equal(run_to_handler(f), 8);
	assert_int_equal(get64(f, IST1_TOP - 48), 0);
	assert_int_equal(frame_at(f, IST1_TOP - 40).rip, KCODE);
}

static void test_triple_fault(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xcc};
	load(f, KCODE, code, sizeof(code));
	f->c.idtr.limit = 0;
	assert_int_equal(softcpu_run(&f->c, 1000), SOFTCPU_EXIT_SHUTDOWN);
}

/* aesenc (AES-NI, not implemented) -> #UD at its address, no crash */
static void test_unimplemented_is_ud(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x66, 0x0f, 0x38, 0xdc, 0xc0};
	load(f, KCODE, code, sizeof(code));
	assert_int_equal(run_to_handler(f), 6);
	assert_int_equal(frame_at(f, KSTACK_TOP - 40).rip, KCODE);
}

/* fldz; fldz; fdiv %st(1),%st (0/0 with the invalid-operation exception
 * unmasked); fnstsw %ax (does not wait); fwait: #MF at FWAIT, not before */
static void test_x87_unmasked_exception_is_mf_at_next_waiting_insn(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xd9, 0xee, 0xd9, 0xee, 0xd8, 0xf1, 0xdf, 0xe0, 0x9b, 0xf4};
	struct softcpu_fxstate x87 = {.fcw = 0x37e}; /* IM clear, all tags empty */
	softcpu_set_x87(&f->c, &x87);
	load(f, KCODE, code, sizeof(code));
	assert_int_equal(run_to_handler(f), 16);
	assert_int_equal(frame_at(f, KSTACK_TOP - 40).rip, KCODE + 8);
	assert_int_equal(f->c.r[R_AX] & 0x81, 0x81); /* FNSTSW saw ES and IE */
	softcpu_get_x87(&f->c, &x87);
	assert_int_equal(x87.fsw & 0x3881, 0x3081); /* TOP 6: two loads; ES, IE */
	assert_int_equal(x87.ftw, 0xc0);
}

/* Run again from rip, on a fresh kernel stack. */
static void rerun_from(struct fixture *f, uint64_t rip)
{
	f->c.halted = false;
	f->c.rip = rip;
	f->c.r[R_SP] = KSTACK_TOP;
}

/* SIMD floating-point exceptions (SDM vol. 1, 11.5): an unmasked one
 * raises #XM with CR4.OSXMMEXCPT (#UD without), the destination unchanged
 * and the flags set; a masked one writes the result and sets its flag. */
static const double one = 1.0, zero = 0.0;

static void set_xmm_double(struct fixture *f, unsigned i, double lo, double hi)
{
	memcpy(&f->c.xmm[i].q[0], &lo, 8);
	memcpy(&f->c.xmm[i].q[1], &hi, 8);
}

/* divsd %xmm1,%xmm0: 1/0 */
static void test_sse_unmasked_divide_by_zero_is_xm(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xf2, 0x0f, 0x5e, 0xc1, 0xf4};
	load(f, KCODE, code, sizeof(code));
	set_xmm_double(f, 0, one, 2.0);
	set_xmm_double(f, 1, zero, zero);
	f->c.cr4 |= CR4_OSXMMEXCPT;
	f->c.mxcsr = 0x1f80 & ~0x200u; /* ZM clear */
	assert_int_equal(run_to_handler(f), 19);
	assert_int_equal(frame_at(f, KSTACK_TOP - 40).rip, KCODE);
	uint64_t one_bits;
	memcpy(&one_bits, &one, 8);
	assert_int_equal(f->c.xmm[0].q[0], one_bits); /* unchanged */
	assert_int_equal(f->c.mxcsr, (0x1f80 & ~0x200u) | 0x4);

	f->c.cr4 &= ~(uint64_t)CR4_OSXMMEXCPT; /* the OS does not handle #XM: #UD */
	f->c.mxcsr = 0x1f80 & ~0x200u;
	rerun_from(f, KCODE);
	assert_int_equal(run_to_handler(f), 6);
	assert_int_equal(frame_at(f, KSTACK_TOP - 40).rip, KCODE);
	assert_int_equal(f->c.xmm[0].q[0], one_bits);

	f->c.mxcsr = 0x1f80; /* masked: +inf, ZE sticky, no exception */
	rerun_from(f, KCODE);
	assert_int_equal(softcpu_run(&f->c, 100), SOFTCPU_EXIT_HALT);
	assert_int_equal(f->c.xmm[0].q[0], 0x7ff0000000000000ull);
	assert_int_equal(f->c.mxcsr, 0x1f84);
}

/* addpd %xmm1,%xmm0 with lane 0 raising a masked invalid (SNaN) and lane 1
 * an inexact sum with PM clear: #XM after the computation, IE and PE set.
 * With DM clear too and a denormal in lane 1 instead, the unmasked
 * pre-computation exception stops it first: DE (and IE) only. */
static void test_sse_packed_exception_flags(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x66, 0x0f, 0x58, 0xc1, 0xf4};
	const uint64_t snan = 0x7ff0000000000001ull;
	load(f, KCODE, code, sizeof(code));
	f->c.cr4 |= CR4_OSXMMEXCPT;
	set_xmm_double(f, 0, one, one);
	f->c.xmm[0].q[0] = snan;
	set_xmm_double(f, 1, one, 1e-30);
	f->c.mxcsr = 0x1f80 & ~0x1000u; /* PM clear */
	assert_int_equal(run_to_handler(f), 19);
	assert_int_equal(f->c.mxcsr & 0x3f, 0x21);
	assert_int_equal(f->c.xmm[0].q[0], snan);

	f->c.xmm[1].q[1] = 1; /* a denormal */
	f->c.mxcsr = 0x1f80 & ~0x1100u; /* PM and DM clear */
	rerun_from(f, KCODE);
	assert_int_equal(run_to_handler(f), 19);
	assert_int_equal(f->c.mxcsr & 0x3f, 0x03);
	assert_int_equal(f->c.xmm[0].q[0], snan);
}

/* comisd %xmm1,%xmm0 signals invalid for a QNaN, ucomisd does not */
static void test_sse_comisd_qnan(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x66, 0x0f, 0x2e, 0xc1, 0x66, 0x0f, 0x2f, 0xc1, 0xf4};
	load(f, KCODE, code, sizeof(code));
	f->c.cr4 |= CR4_OSXMMEXCPT;
	f->c.xmm[0].q[0] = 0x7ff8000000000000ull;
	set_xmm_double(f, 1, one, one);
	f->c.mxcsr = 0x1f80 & ~0x80u; /* IM clear */
	assert_int_equal(run_to_handler(f), 19);
	assert_int_equal(frame_at(f, KSTACK_TOP - 40).rip, KCODE + 4);
	assert_int_equal(f->c.mxcsr & 0x3f, 0x01);
}

/* CR0.TS: the first x87 instruction raises #NM (lazy FPU switching) */
static void test_x87_with_cr0_ts_is_nm(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xd9, 0xe8, 0xf4}; /* fld1 */
	f->c.cr0 |= CR0_TS;
	load(f, KCODE, code, sizeof(code));
	assert_int_equal(run_to_handler(f), 7);
	assert_int_equal(frame_at(f, KSTACK_TOP - 40).rip, KCODE);
}

/* MMX follows the x87's state checks, but CR0.EM gives #UD (not #NM):
 * paddw %mm1,%mm0 with EM, then with TS, then with an unmasked x87
 * exception pending (#MF); then it runs and leaves TOP 0, all tags valid. */
static void test_mmx_state_checks(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x0f, 0xfd, 0xc1, 0xf4};
	load(f, KCODE, code, sizeof(code));
	f->c.cr0 |= CR0_EM;
	assert_int_equal(run_to_handler(f), 6);
	f->c.cr0 &= ~(uint64_t)CR0_EM;
	f->c.cr0 |= CR0_TS;
	rerun_from(f, KCODE);
	assert_int_equal(run_to_handler(f), 7);
	f->c.cr0 &= ~(uint64_t)CR0_TS;
	struct softcpu_fxstate x87 = {.fcw = 0x37e, .fsw = 0x3881, .ftw = 0}; /* TOP 7, IE pending, unmasked */
	softcpu_set_x87(&f->c, &x87);
	rerun_from(f, KCODE);
	assert_int_equal(run_to_handler(f), 16);
	x87 = (struct softcpu_fxstate){.fcw = 0x37f, .fsw = 0x3800, .ftw = 0};
	memset(x87.st[1], 0x11, 8); /* ST(1) at TOP 7 is physical register 0: MM0 */
	memset(x87.st[2], 0x22, 8); /* MM1 */
	softcpu_set_x87(&f->c, &x87);
	rerun_from(f, KCODE);
	assert_int_equal(softcpu_run(&f->c, 100), SOFTCPU_EXIT_HALT);
	assert_int_equal(f->c.rip, KCODE + 4);
	softcpu_get_x87(&f->c, &x87);
	assert_int_equal(x87.fsw & 0x3800, 0);
	assert_int_equal(x87.ftw, 0xff);
	uint64_t mm0;
	memcpy(&mm0, x87.st[0], 8);
	assert_int_equal(mm0, 0x3333333333333333ull);
	assert_int_equal(x87.st[0][8] | x87.st[0][9] << 8, 0xffff);
}

/* The SSE forms the JIT runs inline keep the interpreter's checks, made
 * at run time (the block is translated once, in its first state):
 *	add $1,%ecx; pxor %xmm1,%xmm0; movdqa (%rax),%xmm2; pcmpeqb %xmm2,%xmm0
 *	pmovmskb %xmm0,%edx; movdqu (%rbx),%xmm3; movd %xmm2,%esi
 *	add %eax,%edi; add %ebx,%edi; add %ecx,%edi; add %edx,%edi; add %esi,%edi; hlt
 * CR0.EM or a clear CR4.OSFXSR give #UD, CR0.TS #NM, at the PXOR with the
 * ADD done (ECX, its flags); a misaligned MOVDQA #GP(0); a MOVDQU reaching
 * into a page not present #PF; then it runs, with a cold TLB: the loads go
 * out of line to the interpreter and come back to registers the JIT keeps
 * in host registers (the ADDs use them twice). */
static void expect_sse_fault(struct fixture *f, int vector, uint64_t rip)
{
	f->c.r[R_CX] = 0xffffffffu;
	f->c.xmm[0] = f->c.xmm[1];
	rerun_from(f, KCODE);
	assert_int_equal(run_to_handler(f), vector);
	struct frame fr = frame_at(f, KSTACK_TOP - 40);
	assert_int_equal(fr.rip, rip);
	assert_int_equal(fr.rflags & (F_CF | F_ZF | F_SF | F_OF), F_CF | F_ZF);
	assert_int_equal(f->c.r[R_CX], 0);
}

static void test_sse_state_checks(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x83, 0xc1, 0x01, 0x66, 0x0f, 0xef, 0xc1, 0x66, 0x0f, 0x6f, 0x10,
				       0x66, 0x0f, 0x74, 0xc2, 0x66, 0x0f, 0xd7, 0xd0, 0xf3, 0x0f, 0x6f,
				       0x1b, 0x66, 0x0f, 0x7e, 0xd6, 0x01, 0xc7, 0x01, 0xdf, 0x01, 0xcf,
				       0x01, 0xd7, 0x01, 0xf7, 0xf4};
	static const uint8_t data[16] = {0, 1, 2, 3, 0, 5, 6, 7, 8, 9, 0, 0, 12, 13, 14, 0};
	load(f, KCODE, code, sizeof(code));
	memcpy(f->ram + UDATA, data, sizeof(data));
	memcpy(f->ram + URO, data, sizeof(data));
	f->c.r[R_AX] = UDATA;
	f->c.r[R_BX] = UNOTP - 8;
	f->c.xmm[1] = (struct xmm_reg){{0x1122334455667788ull, 0x99aabbccddeeff00ull}};
	f->c.cr0 |= CR0_EM;
	expect_sse_fault(f, 6, KCODE + 3);
	f->c.cr0 &= ~(uint64_t)CR0_EM;
	f->c.cr4 &= ~(uint64_t)CR4_OSFXSR;
	expect_sse_fault(f, 6, KCODE + 3);
	f->c.cr4 |= CR4_OSFXSR;
	f->c.cr0 |= CR0_TS;
	expect_sse_fault(f, 7, KCODE + 3);
	f->c.cr0 &= ~(uint64_t)CR0_TS;
	f->c.r[R_AX] = UDATA + 8;
	expect_sse_fault(f, 13, KCODE + 7);
	assert_int_equal(get64(f, KSTACK_TOP - 48), 0);
	f->c.r[R_AX] = UDATA;
	expect_sse_fault(f, 14, KCODE + 19);
	assert_int_equal(f->c.cr2, UNOTP);
	assert_int_equal(f->c.xmm[0].q[0], 0x000000ff000000ffull); /* the PCMPEQB ran */
	assert_int_equal(f->c.r[R_DX], 0x8c11);
	f->c.r[R_BX] = URO;
	f->c.r[R_CX] = 0xffffffffu;
	f->c.r[R_DI] = 0;
	f->c.xmm[0] = f->c.xmm[1];
	softcpu_tlb_flush(&f->c, true);
	rerun_from(f, KCODE);
	assert_int_equal(softcpu_run(&f->c, 100), SOFTCPU_EXIT_HALT);
	assert_int_equal(f->c.rip, KCODE + sizeof(code));
	assert_int_equal(f->c.r[R_SI], 0x03020100);
	assert_int_equal(f->c.r[R_DI], UDATA + URO + 0x8c11 + 0x03020100);
	assert_int_equal(f->c.xmm[3].q[1], 0x000e0d0c00000908ull);
	assert_int_equal(f->c.xmm[2].q[0], 0x0706050003020100ull);
}

/* Indirect JMP through memory and a register (the JIT runs both inline):
 *	KCODE: jmp *(%rax);  KCODE + 0x20: jmp *%rdx;  KCODE + 0x40: mov $7,%ecx; hlt
 * then a non-canonical target (#GP at the JMP, RIP unchanged) and a table
 * in a page not present (#PF). */
static void test_jmp_indirect(void **state)
{
	struct fixture *f = *state;
	static const uint8_t jmp_mem[] = {0xff, 0x20}, jmp_reg[] = {0xff, 0xe2};
	static const uint8_t target[] = {0xb9, 0x07, 0x00, 0x00, 0x00, 0xf4};
	load(f, KCODE, jmp_mem, sizeof(jmp_mem));
	load(f, KCODE + 0x20, jmp_reg, sizeof(jmp_reg));
	load(f, KCODE + 0x40, target, sizeof(target));
	put64(f, UDATA, KCODE + 0x20);
	f->c.r[R_AX] = UDATA;
	f->c.r[R_DX] = KCODE + 0x40;
	for (int round = 0; round < 2; round++) {
		f->c.r[R_CX] = 0;
		rerun_from(f, KCODE);
		assert_int_equal(softcpu_run(&f->c, 100), SOFTCPU_EXIT_HALT);
		assert_int_equal(f->c.rip, KCODE + 0x40 + sizeof(target));
		assert_int_equal(f->c.r[R_CX], 7);
	}
	put64(f, UDATA, 0x0000800000000000ull);
	rerun_from(f, KCODE);
	assert_int_equal(run_to_handler(f), 13);
	assert_int_equal(frame_at(f, KSTACK_TOP - 40).rip, KCODE);
	f->c.r[R_DX] = 0xffff7fffffffffffull;
	rerun_from(f, KCODE + 0x20);
	assert_int_equal(run_to_handler(f), 13);
	assert_int_equal(frame_at(f, KSTACK_TOP - 40).rip, KCODE + 0x20);
	f->c.r[R_AX] = UNOTP + 8;
	rerun_from(f, KCODE);
	assert_int_equal(run_to_handler(f), 14);
	assert_int_equal(frame_at(f, KSTACK_TOP - 40).rip, KCODE);
	assert_int_equal(f->c.cr2, UNOTP + 8);
}

/* movb $0xcc, 1f(%rip); 1: nop; hlt  -- the patched INT3 runs */
static void test_self_modifying_code(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xc6, 0x05, 0x00, 0x00, 0x00, 0x00, 0xcc, 0x90, 0xf4};
	load(f, KCODE, code, sizeof(code));
	assert_int_equal(run_to_handler(f), 3);
	assert_int_equal(frame_at(f, KSTACK_TOP - 40).rip, KCODE + 8);
}

/* PUSH and CALL whose stack is the code's own page: their stores write a
 * page of code, which ends the block (translated) after the instruction -
 * all of it: RSP moved, CALL at its target.
 *	KCODE: push %rax; call 1f; hlt;  KCODE + 0x40: 1: mov $7,%ecx; hlt */
static void test_push_and_call_onto_the_code_page(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x50, 0xe8, 0x3a, 0x00, 0x00, 0x00, 0xf4};
	static const uint8_t target[] = {0xb9, 0x07, 0x00, 0x00, 0x00, 0xf4};
	load(f, KCODE, code, sizeof(code));
	load(f, KCODE + 0x40, target, sizeof(target));
	f->c.r[R_SP] = KCODE + 0x800;
	f->c.r[R_AX] = 0x1122334455667788ull;
	assert_int_equal(softcpu_run(&f->c, 100), SOFTCPU_EXIT_HALT);
	assert_int_equal(f->c.rip, KCODE + 0x40 + sizeof(target));
	assert_int_equal(f->c.r[R_CX], 7);
	assert_int_equal(f->c.r[R_SP], KCODE + 0x800 - 16);
	assert_int_equal(get64(f, KCODE + 0x7f8), 0x1122334455667788ull);
	assert_int_equal(get64(f, KCODE + 0x7f0), KCODE + 6);
}

/* Self-modifying code in a block that loops to itself (translated: one
 * block, its registers kept in host registers across the back edge): each
 * pass rewrites the immediate of its own next instruction, so EAX equals
 * ECX in every pass and the loop ends at 5.  Running the pass's old code
 * ends it at ECX = 6 (one pass late); never seeing the rewrite, never.
 *	1: add $1,%ecx; movb %cl,2f+1(%rip); 2: mov $0,%eax; cmp $5,%eax; jne 1b; hlt */
static void test_self_modifying_code_in_a_loop(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x83, 0xc1, 0x01, 0x88, 0x0d, 0x01, 0x00, 0x00, 0x00, 0xb8,
				       0x00, 0x00, 0x00, 0x00, 0x83, 0xf8, 0x05, 0x75, 0xed, 0xf4};
	load(f, KCODE, code, sizeof(code));
	f->c.r[R_CX] = 0;
	assert_int_equal(softcpu_run(&f->c, 100000), SOFTCPU_EXIT_HALT);
	assert_int_equal(f->c.r[R_AX], 5);
	assert_int_equal(f->c.r[R_CX], 5);
	assert_int_equal(f->ram[KCODE + 10], 5);
}

/* A device process rewrites a page of code the CPU has run (through its
 * own view of the shared memory); the guest calling it again runs the new
 * code.  KCODE: mov $DEVPAGE,%ebx; call *%rbx; hlt.  DEVPAGE: mov $N,%eax;
 * ret, N = 1, then 2. */
#define DEVPAGE 0x50000u
static void test_device_rewrites_code_page(void **state)
{
	struct fixture *f = *state;
	static const uint8_t caller[] = {0xbb, 0x00, 0x00, 0x05, 0x00, 0xff, 0xd3, 0xf4};
	static const uint8_t first[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};
	static const uint8_t second[] = {0xb8, 0x02, 0x00, 0x00, 0x00, 0xc3};
	load(f, KCODE, caller, sizeof(caller));
	load(f, DEVPAGE, first, sizeof(first));
	assert_int_equal(softcpu_run(&f->c, 1000), SOFTCPU_EXIT_HALT);
	assert_int_equal(f->c.r[R_AX], 1);

	struct guest_mem device;
	guest_mem_attach(&device, f->ram, RAM_SIZE);
	assert_true(guest_mem_write(&device, DEVPAGE, second, sizeof(second)));
	f->c.rip = KCODE;
	f->c.r[R_SP] = KSTACK_TOP;
	f->c.halted = false;
	assert_int_equal(softcpu_run(&f->c, 1000), SOFTCPU_EXIT_HALT);
	assert_int_equal(f->c.r[R_AX], 2);
}

struct device_thread {
	struct fixture *f;
	const uint8_t *code;
	size_t len;
};

static void *device_rewrites(void *arg)
{
	struct device_thread *d = arg;
	struct guest_mem device;
	guest_mem_attach(&device, d->f->ram, RAM_SIZE);
	struct timespec pause = {0, 20 * 1000 * 1000}; /* the vCPU is looping by then */
	nanosleep(&pause, NULL);
	guest_mem_write(&device, DEVPAGE, d->code, d->len);
	return NULL;
}

/* Run the vCPU while a device thread writes code (device_rewrites): it
 * must halt with EAX = 2.  Without the dirty log the loop never ends: the
 * instruction limit (seconds of running) stops it. */
static void run_while_device_rewrites(struct fixture *f, const uint8_t *code, size_t len)
{
	struct device_thread d = {f, code, len};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, device_rewrites, &d), 0);
	enum softcpu_exit why = softcpu_run(&f->c, 1000000000);
	pthread_join(t, NULL);
	assert_int_equal(why, SOFTCPU_EXIT_HALT);
	assert_int_equal(f->c.r[R_AX], 2);
}

/* The same while the vCPU runs: it calls DEVPAGE until it returns 2.
 * KCODE: mov $DEVPAGE,%ebx; 1: call *%rbx; cmp $2,%eax; jne 1b; hlt */
static void test_device_rewrites_code_page_while_running(void **state)
{
	struct fixture *f = *state;
	static const uint8_t caller[] = {0xbb, 0x00, 0x00, 0x05, 0x00, 0xff, 0xd3, 0x83, 0xf8, 0x02, 0x75, 0xf9, 0xf4};
	static const uint8_t first[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};
	static const uint8_t second[] = {0xb8, 0x02, 0x00, 0x00, 0x00, 0xc3};
	load(f, KCODE, caller, sizeof(caller));
	load(f, DEVPAGE, first, sizeof(first));
	run_while_device_rewrites(f, second, sizeof(second));
}

/* A device process rewrites the code of the loop the vCPU is in (one
 * block chained to itself): the loop must see it and end.
 * DEVPAGE: 1: mov $N,%eax; add $1,%rcx; cmp $2,%eax; jne 1b; hlt, N = 1, then 2. */
static void test_device_rewrites_the_running_loop(void **state)
{
	struct fixture *f = *state;
	static const uint8_t first[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0x48, 0x83, 0xc1,
					0x01, 0x83, 0xf8, 0x02, 0x75, 0xf2, 0xf4};
	uint8_t second[sizeof(first)];
	memcpy(second, first, sizeof(first));
	second[1] = 0x02;
	load(f, DEVPAGE, first, sizeof(first));
	f->c.rip = DEVPAGE;
	f->c.r[R_CX] = 0;
	run_while_device_rewrites(f, second, sizeof(second));
	assert_int_equal(f->c.rip, DEVPAGE + sizeof(first));
}

/* mov (%rax),%ebx; movl $0x11223344,(%rcx); hlt  -- outside RAM: the board */
static void test_mmio_routing(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x8b, 0x18, 0xc7, 0x01, 0x44, 0x33, 0x22, 0x11, 0xf4};
	load(f, KCODE, code, sizeof(code));
	f->c.r[R_AX] = MMIO_BASE + 0x1000;
	f->c.r[R_CX] = MMIO_BASE + 0x2ffe; /* crosses a page: two accesses */
	assert_int_equal(softcpu_run(&f->c, 1000), SOFTCPU_EXIT_HALT);
	assert_int_equal(f->c.r[R_BX], 0xdeadbeef);
	assert_int_equal(f->mmio_count, 3);
	assert_int_equal(f->mmio_addr[0], MMIO_BASE + 0x1000);
	assert_int_equal(f->mmio_size[0], 4);
	assert_int_equal(f->mmio_addr[1], MMIO_BASE + 0x2ffe);
	assert_int_equal(f->mmio_size[1], 2);
	assert_int_equal(f->mmio_value[1], 0x3344);
	assert_int_equal(f->mmio_addr[2], MMIO_BASE + 0x3000);
	assert_int_equal(f->mmio_value[2], 0x1122);
}

static void *stop_later(void *arg)
{
	struct softcpu *c = arg;
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	softcpu_request(c, REQ_STOP);
	return NULL;
}

/* 1: jmp 1b  -- only a stop request ends it */
static void test_stop_request_from_another_thread(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xeb, 0xfe};
	load(f, KCODE, code, sizeof(code));
	pthread_t t;
	pthread_create(&t, NULL, stop_later, &f->c);
	assert_int_equal(softcpu_run(&f->c, 0), SOFTCPU_EXIT_STOP);
	pthread_join(t, NULL);
	assert_int_equal(f->c.rip, KCODE);
}

struct cpu_thread {
	struct softcpu c;
	enum softcpu_exit result;
};

static void *run_cpu(void *arg)
{
	struct cpu_thread *t = arg;
	t->result = softcpu_run(&t->c, 0);
	return NULL;
}

/* Two vCPUs on two threads run, 200000 times each:
 *	1: lock incq (%rax); mov $1,%edx; lock xaddq %rdx,8(%rax); dec %ecx; jnz 1b; hlt
 * on the same counters: LOCKed instructions must be atomic between them. */
static void test_lock_atomic_across_threads(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xb9, 0x40, 0x0d, 0x03, 0x00, 0xf0, 0x48, 0xff, 0x00, 0xba, 0x01, 0x00, 0x00,
				       0x00, 0xf0, 0x48, 0x0f, 0xc1, 0x50, 0x08, 0xff, 0xc9, 0x75, 0xed, 0xf4};
	load(f, KCODE, code, sizeof(code));
	static struct cpu_thread threads[2];
	pthread_t tid[2];
	for (int i = 0; i < 2; i++) {
		struct softcpu *c = &threads[i].c;
		softcpu_init(c, &f->m);
		engine_for(c);
		c->cr0 = f->c.cr0;
		c->cr4 = f->c.cr4;
		c->cr3 = f->c.cr3;
		c->efer = f->c.efer;
		c->gdtr = f->c.gdtr;
		c->idtr = f->c.idtr;
		for (int s = 0; s < S_NSEG; s++)
			c->seg[s] = f->c.seg[s];
		softcpu_update_mode(c);
		softcpu_tlb_flush(c, true);
		c->rip = KCODE;
		c->r[R_AX] = UDATA;
		c->r[R_DX] = 1;
		c->r[R_SP] = KSTACK_TOP - 0x400 * (uint64_t)i;
		softcpu_set_rflags(c, 0x2);
		pthread_create(&tid[i], NULL, run_cpu, &threads[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(tid[i], NULL);
		assert_int_equal(threads[i].result, SOFTCPU_EXIT_HALT);
		softcpu_destroy(&threads[i].c);
	}
	assert_int_equal(get64(f, UDATA), 400000);
	assert_int_equal(get64(f, UDATA + 8), 400000);
}

/* A fault in the middle of a block leaves the state of the instruction
 * that faulted: the registers and flags of the ones before it, RIP its own.
 *	mov $-1,%ecx; add $1,%ecx; mov (%rax),%rbx; mov $5,%ecx; int3 */
static void test_pf_mid_block_state(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xb9, 0xff, 0xff, 0xff, 0xff, 0x83, 0xc1, 0x01, 0x48,
				       0x8b, 0x18, 0xb9, 0x05, 0x00, 0x00, 0x00, 0xcc};
	load(f, UCODE, code, sizeof(code));
	enter_user(f, UCODE);
	f->c.r[R_AX] = UNOTP + 16;
	f->c.r[R_BX] = 7;
	assert_int_equal(run_to_handler(f), 14);
	struct frame fr = frame_at(f, KSTACK_TOP - 40);
	assert_int_equal(fr.rip, UCODE + 8);
	assert_int_equal(fr.rflags & (F_CF | F_ZF | F_SF | F_OF), F_CF | F_ZF);
	assert_int_equal(f->c.r[R_CX], 0);
	assert_int_equal(f->c.r[R_BX], 7);
	assert_int_equal(f->c.cr2, UNOTP + 16);
}

static void *interrupt_later(void *arg)
{
	struct fixture *f = arg;
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	softcpu_set_intr(&f->c, 1);
	return NULL;
}

/* An interrupt arriving while the CPU runs a loop (translated: one block
 * chained to itself) is delivered with the loop's address as return RIP.
 *	1: add $1,%rax; jmp 1b */
/* Run the loaded code with IF set while raiser, on a thread, raises vector
 * 0x20: the vCPU must end in that vector's handler (its HLT). */
static void run_until_interrupted(struct fixture *f, void *(*raiser)(void *))
{
	f->c.intr_opaque = f;
	f->c.intr_ack = intr_ack;
	f->intr_vector = 0x20;
	softcpu_set_rflags(&f->c, 0x2 | F_IF);
	pthread_t t;
	pthread_create(&t, NULL, raiser, f);
	assert_int_equal(softcpu_run(&f->c, 0), SOFTCPU_EXIT_HALT);
	pthread_join(t, NULL);
	assert_int_equal(f->c.rip, HANDLERS + 0x20 + 1);
}

static void test_interrupt_breaks_into_loop(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x48, 0x83, 0xc0, 0x01, 0xeb, 0xfa};
	load(f, KCODE, code, sizeof(code));
	run_until_interrupted(f, interrupt_later);
	struct frame fr = frame_at(f, KSTACK_TOP - 40);
	assert_true(fr.rip == KCODE || fr.rip == KCODE + 4);
	assert_true(f->c.r[R_AX] > 1000);
}

/* A fault in a block looping to itself, on its 513th pass: the loop's
 * registers (in host registers while it runs) and flags are those of the
 * faulting pass.  User mode, RAX walking UDATA's page into URO (read-only):
 *	1: add $1,%rcx; mov %rcx,(%rax); add $8,%rax; jmp 1b */
static void test_pf_in_a_loop_state(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x48, 0x83, 0xc1, 0x01, 0x48, 0x89, 0x08, 0x48, 0x83, 0xc0, 0x08, 0xeb, 0xf3};
	load(f, UCODE, code, sizeof(code));
	enter_user(f, UCODE);
	f->c.r[R_AX] = UDATA;
	f->c.r[R_CX] = (uint64_t)-513;
	assert_int_equal(run_to_handler(f), 14);
	assert_int_equal(get64(f, KSTACK_TOP - 48), 0x7); /* P | W | U */
	struct frame fr = frame_at(f, KSTACK_TOP - 40);
	assert_int_equal(fr.rip, UCODE + 4);
	/* 0xffff...ffff + 1: CF and ZF */
	assert_int_equal(fr.rflags & (F_CF | F_ZF | F_SF | F_OF), F_CF | F_ZF);
	assert_int_equal(f->c.r[R_CX], 0);
	assert_int_equal(f->c.r[R_AX], URO);
	assert_int_equal(f->c.cr2, URO);
	assert_int_equal(get64(f, URO - 8), (uint64_t)-1);
	assert_int_equal(get64(f, UDATA), (uint64_t)-512);
}

/* Raises the interrupt once the guest's counter at UDATA passed 1000 (or
 * after a minute, for the test to fail rather than hang). */
static void *interrupt_after_count(void *arg)
{
	struct fixture *f = arg;
	struct timespec ms = {0, 1000 * 1000};
	for (int i = 0; i < 60000; i++) {
		uint64_t count;
		__atomic_load(&((uint64_t *)f->ram)[UDATA / 8], &count, __ATOMIC_RELAXED);
		if (count > 1000)
			break;
		nanosleep(&ms, NULL);
	}
	softcpu_set_intr(&f->c, 1);
	return NULL;
}

/* An interrupt arriving while the CPU runs a loop through CALL and RET
 * (translated: the return goes through the indirect-branch cache) is taken
 * at one of the loop's instructions.
 *	1: incq (%rbx); call 2f; jmp 1b; 2: ret */
static void test_interrupt_breaks_into_call_ret_loop(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0x48, 0xff, 0x03, 0xe8, 0x02, 0x00, 0x00, 0x00, 0xeb, 0xf6, 0xc3};
	load(f, KCODE, code, sizeof(code));
	f->c.r[R_BX] = UDATA;
	run_until_interrupted(f, interrupt_after_count);
	assert_true(get64(f, UDATA) > 1000);
	/* The frame is where the handler's RSP is (aligned down to 16 from
	 * the interrupted RSP: KSTACK_TOP, or 8 below it inside the call). */
	struct frame fr = frame_at(f, f->c.r[R_SP]);
	assert_true(fr.rip == KCODE || fr.rip == KCODE + 3 || fr.rip == KCODE + 8 || fr.rip == KCODE + 10);
	assert_int_equal(fr.cs, 0x08);
	assert_true(fr.rflags & F_IF);
	assert_int_equal(fr.rsp, fr.rip == KCODE + 10 ? KSTACK_TOP - 8 : KSTACK_TOP);
}

/* Real mode at 0 -> protected mode -> long mode (the benchmark guests'
 * start-up), then mov $0x123456789,%rax; hlt.  Source:
 *   cli; xor %ax,%ax; mov %ax,%ds; lgdtl gdt_desc; cr0.PE; ljmpl $8,$pm32
 *   pm32: data segments 0x10; zero 0x1000-0x3fff; PML4/PDPT/PD with one
 *   2 MiB page; CR4.PAE; CR3 = 0x1000; EFER.LME; CR0.PG; ljmp $0x18,$lm64 */
static const uint8_t real_to_long[] = {
	0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x66, 0x0f, 0x01, 0x16, 0xb0, 0x00, 0x0f, 0x20, 0xc0, 0x66, 0x83, 0xc8, 0x01,
	0x0f, 0x22, 0xc0, 0x66, 0xea, 0x1d, 0x00, 0x00, 0x00, 0x08, 0x00, 0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e,
	0xd0, 0xbf, 0x00, 0x10, 0x00, 0x00, 0x31, 0xc0, 0xb9, 0x00, 0x0c, 0x00, 0x00, 0xf3, 0xab, 0xc7, 0x05, 0x00,
	0x10, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x20, 0x00, 0x00, 0x03, 0x30, 0x00, 0x00, 0xc7,
	0x05, 0x00, 0x30, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0,
	0xb8, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01,
	0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xea, 0x82, 0x00,
	0x00, 0x00, 0x18, 0x00, 0x48, 0xb8, 0x89, 0x67, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00, 0xf4, 0x0f, 0x1f, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00, 0xff, 0xff,
	0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00, 0x1f, 0x00, 0x90, 0x00,
	0x00, 0x00,
};

static void test_real_to_protected_to_long(void **state)
{
	struct fixture *f = *state;
	struct softcpu *c = &f->c;
	softcpu_reset(c);
	memset(f->ram, 0, 0x10000);
	load(f, 0, real_to_long, sizeof(real_to_long));
	softcpu_set_seg(c, S_CS, 0, 0, 0xffff, 0x9b);
	c->rip = 0;
	assert_int_equal(c->code_bits, 16);
	assert_int_equal(softcpu_run(c, 10000), SOFTCPU_EXIT_HALT);
	assert_int_equal(c->r[R_AX], 0x123456789ull);
	assert_true(c->long64);
	assert_int_equal(c->code_bits, 64);
	assert_int_equal(c->efer & EFER_LMA, EFER_LMA);
	assert_int_equal(c->seg[S_CS].sel, 0x18);
}

static int group_interpreted(void **state)
{
	(void)state;
	use_jit = false;
	return 0;
}

static int group_jit(void **state)
{
	(void)state;
	use_jit = true;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pf_user_reads_supervisor_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pf_user_writes_read_only_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pf_not_present, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pf_fetch_from_nx_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pf_reserved_bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_access_allowed_sets_accessed_dirty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gp_on_ist_stack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iretq_to_user_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syscall_sysret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sti_interrupt_shadow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_double_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_triple_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unimplemented_is_ud, setup, teardown),
		cmocka_unit_test_setup_teardown(test_x87_unmasked_exception_is_mf_at_next_waiting_insn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_x87_with_cr0_ts_is_nm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_unmasked_divide_by_zero_is_xm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_packed_exception_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_comisd_qnan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmx_state_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_state_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jmp_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_push_and_call_onto_the_code_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_modifying_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_rewrites_code_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_rewrites_code_page_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmio_routing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_request_from_another_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_to_protected_to_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_atomic_across_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pf_mid_block_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_breaks_into_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pf_in_a_loop_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_breaks_into_call_ret_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_modifying_code_in_a_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_rewrites_the_running_loop, setup, teardown),
	};
	int failed = cmocka_run_group_tests_name("interpreter", tests, group_interpreted, NULL);
	if (!softcpu_jit_supported()) {
		print_message("the JIT group is not run: this host has no JIT (not x86-64)\n");
		return failed;
	}
	return failed + cmocka_run_group_tests_name("jit", tests, group_jit, NULL);
}
