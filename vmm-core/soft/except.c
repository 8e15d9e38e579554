/* except.c - raising exceptions and delivering interrupts/exceptions through
 * the real-mode IVT, 32-bit protected-mode IDT gates and 64-bit IDT gates
 * (IST stacks, stack switch on privilege change, error codes).  The run loop
 * (cpu.c) turns a fault during delivery into #DF and a fault while
 * delivering #DF into a shutdown (triple fault). */
#include <stdio.h>

#include "internal.h"
#include "log.h"

noreturn void softcpu_raise(struct softcpu *c, int vector, uint32_t error, bool has_error)
{
	c->exc_vector = vector;
	c->exc_error = error;
	c->exc_has_error = has_error;
	__builtin_longjmp(c->fault_jmp, 1);
}

noreturn void softcpu_abandon(struct softcpu *c)
{
	c->exc_vector = EXC_ABANDON;
	__builtin_longjmp(c->fault_jmp, 1);
}

unsigned softcpu_peek_code(struct softcpu *c, uint8_t *buf, unsigned n)
{
	uint64_t lin = c->segbase[S_CS] + c->rip;
	unsigned got = 0;
	for (; got < n; got++, lin++) {
		struct tlb_entry *e = tlb_slot(c, lin, c->cpl == 3);
		if (e->tag_read != lin >> 12 || !(e->phys & TLB_EXEC))
			break;
		buf[got] = *(const uint8_t *)(e->addend + (uintptr_t)lin);
	}
	return got;
}

noreturn void softcpu_unimplemented(struct softcpu *c, const struct insn *in)
{
	/* Once per opcode per process: enough to find what a guest needs. */
	static _Atomic uint8_t logged[RAW_OP_COUNT];
	if (in->raw_op < RAW_OP_COUNT && !atomic_exchange(&logged[in->raw_op], 1)) {
		uint8_t bytes[15];
		unsigned n = softcpu_peek_code(c, bytes, in->len ? in->len : 15);
		char hex[15 * 3 + 1] = "";
		for (unsigned i = 0; i < n; i++)
			snprintf(hex + 3 * i, 4, "%02x ", bytes[i]);
		log_msg("softcpu: unimplemented instruction at rip %#llx (%d-bit code): %s-> #UD",
			(unsigned long long)c->rip, c->code_bits, hex);
	}
	raise_ud(c);
}

/* ---- implicit supervisor accesses (descriptor tables, TSS, stacks of handlers) ---- */

static uint64_t sys_read(struct softcpu *c, uint64_t lin, unsigned size)
{
	return mmu_read_slow(c, lin, size, true);
}

static void sys_write(struct softcpu *c, uint64_t lin, unsigned size, uint64_t val)
{
	mmu_write_slow(c, lin, size, val, true);
}

/* Gate descriptor error code: IDT bit, external bit. */
static uint32_t idt_error(int vector, enum intr_kind kind)
{
	return (uint32_t)vector * 8 + 2 + (kind == INTR_EXTERNAL);
}

/* The code segment a gate points to: checks it and returns the new CPL. */
static unsigned gate_target_cs(struct softcpu *c, uint16_t sel, uint64_t *desc, bool want_long)
{
	if ((sel & ~3u) == 0)
		raise_gp(c, 0);
	uint64_t d = softcpu_read_descriptor(c, sel);
	unsigned attr = (unsigned)(d >> 40) & 0xf0ff;
	unsigned dpl = (attr >> 5) & 3;
	bool code = (attr & SEG_ATTR_S) && (attr & 0x8);
	if (!code || dpl > c->cpl || (want_long && (!(attr & SEG_ATTR_L) || (attr & SEG_ATTR_DB))))
		raise_gp(c, sel & ~3u);
	if (!(attr & SEG_ATTR_P))
		softcpu_raise(c, EXC_NP, sel & ~3u, true);
	*desc = d;
	return (attr & 0x4) ? c->cpl : dpl; /* conforming code keeps the CPL */
}

static void set_cs(struct softcpu *c, uint16_t sel, uint64_t desc, unsigned cpl)
{
	softcpu_seg_from_descriptor(&c->seg[S_CS], (uint16_t)((sel & ~3u) | cpl), desc);
	c->cpl = (uint8_t)cpl;
}

/* The checks every interrupt/trap gate passes, in the SDM's order (type,
 * DPL for software interrupts, present); returns the gate's type (0xe
 * interrupt gate, 0xf trap gate).  Task gates and 16-bit gates exist only
 * outside long mode, where they are not implemented here: #GP and a log. */
static unsigned checked_gate_type(struct softcpu *c, uint64_t gate, int vector, enum intr_kind kind, bool long_mode)
{
	unsigned type = (unsigned)(gate >> 40) & 0xf, dpl = (unsigned)(gate >> 45) & 3;
	if (type != 0xe && type != 0xf) {
		if (!long_mode && (type == 0x5 || type == 0x6 || type == 0x7))
			log_once("softcpu: task gates and 16-bit interrupt gates are not implemented");
		raise_gp(c, idt_error(vector, kind));
	}
	if (kind == INTR_SOFTWARE && dpl < c->cpl)
		raise_gp(c, idt_error(vector, kind));
	if (!((gate >> 47) & 1))
		softcpu_raise(c, EXC_NP, idt_error(vector, kind), true);
	return type;
}

static void deliver_real(struct softcpu *c, int vector, uint64_t return_rip)
{
	if ((uint32_t)vector * 4 + 3 > c->idtr.limit)
		raise_gp(c, idt_error(vector, INTR_EXCEPTION));
	uint32_t ent = (uint32_t)sys_read(c, c->idtr.base + (uint64_t)vector * 4, 4);
	uint64_t flags = softcpu_get_rflags(c);
	uint16_t sp = (uint16_t)c->r[R_SP];
	uint64_t ss = c->seg[S_SS].base;
	sys_write(c, ss + (uint16_t)(sp - 2), 2, flags);
	sys_write(c, ss + (uint16_t)(sp - 4), 2, c->seg[S_CS].sel);
	sys_write(c, ss + (uint16_t)(sp - 6), 2, return_rip);
	c->r[R_SP] = (c->r[R_SP] & ~0xffffull) | (uint16_t)(sp - 6);
	softcpu_set_rflags(c, flags & ~(uint64_t)(F_IF | F_TF | F_AC | F_RF));
	c->seg[S_CS].sel = (uint16_t)(ent >> 16);
	c->seg[S_CS].base = (uint64_t)(ent >> 16) << 4;
	c->rip = ent & 0xffff;
}

static void deliver_prot32(struct softcpu *c, int vector, uint32_t error, bool has_error, enum intr_kind kind,
			   uint64_t return_rip)
{
	if ((uint32_t)vector * 8 + 7 > c->idtr.limit)
		raise_gp(c, idt_error(vector, kind));
	uint64_t g = sys_read(c, c->idtr.base + (uint64_t)vector * 8, 8);
	unsigned type = checked_gate_type(c, g, vector, kind, false);
	uint16_t sel = (uint16_t)(g >> 16);
	uint32_t target = (uint32_t)((g & 0xffff) | ((g >> 32) & 0xffff0000u));
	uint64_t desc;
	unsigned new_cpl = gate_target_cs(c, sel, &desc, false);

	uint64_t flags = softcpu_get_rflags(c);
	uint32_t frame[6];
	unsigned n = 0;
	uint64_t ss_base, esp;
	struct softcpu_seg new_ss = c->seg[S_SS];
	if (new_cpl < c->cpl) {
		if (c->tr.limit < 11)
			softcpu_raise(c, EXC_TS, c->tr.sel & ~3u, true);
		esp = sys_read(c, c->tr.base + 4 + new_cpl * 8, 4);
		uint16_t ss_sel = (uint16_t)sys_read(c, c->tr.base + 8 + new_cpl * 8, 2);
		if ((ss_sel & ~3u) == 0)
			softcpu_raise(c, EXC_TS, 0, true);
		softcpu_seg_from_descriptor(&new_ss, ss_sel, softcpu_read_descriptor(c, ss_sel));
		frame[n++] = c->seg[S_SS].sel;
		frame[n++] = (uint32_t)c->r[R_SP];
	} else {
		esp = c->r[R_SP];
	}
	ss_base = new_ss.base;
	frame[n++] = (uint32_t)flags;
	frame[n++] = c->seg[S_CS].sel;
	frame[n++] = (uint32_t)return_rip;
	if (has_error)
		frame[n++] = error;
	for (unsigned i = 0; i < n; i++)
		sys_write(c, (uint32_t)(ss_base + (uint32_t)(esp - 4 * (i + 1))), 4, frame[i]);
	c->seg[S_SS] = new_ss;
	c->r[R_SP] = (uint32_t)(esp - 4 * n);
	set_cs(c, sel, desc, new_cpl);
	c->rip = target;
	flags &= ~(uint64_t)(F_TF | F_NT | F_RF | F_VM);
	if (type == 0xe)
		flags &= ~(uint64_t)F_IF;
	softcpu_set_rflags(c, flags);
}

static void deliver_long(struct softcpu *c, int vector, uint32_t error, bool has_error, enum intr_kind kind,
			 uint64_t return_rip)
{
	if ((uint32_t)vector * 16 + 15 > c->idtr.limit)
		raise_gp(c, idt_error(vector, kind));
	uint64_t lo = sys_read(c, c->idtr.base + (uint64_t)vector * 16, 8);
	uint64_t hi = sys_read(c, c->idtr.base + (uint64_t)vector * 16 + 8, 8);
	unsigned ist = (unsigned)(lo >> 32) & 7;
	unsigned type = checked_gate_type(c, lo, vector, kind, true);
	uint16_t sel = (uint16_t)(lo >> 16);
	uint64_t target = (lo & 0xffff) | ((lo >> 32) & 0xffff0000u) | (hi << 32);
	uint64_t desc;
	unsigned new_cpl = gate_target_cs(c, sel, &desc, true);

	uint64_t rsp = c->r[R_SP];
	if (ist)
		rsp = sys_read(c, c->tr.base + 36 + (ist - 1) * 8, 8);
	else if (new_cpl < c->cpl)
		rsp = sys_read(c, c->tr.base + 4 + new_cpl * 8, 8);
	rsp &= ~15ull;
	uint64_t flags = softcpu_get_rflags(c);
	uint64_t frame[6] = {c->seg[S_SS].sel, c->r[R_SP], flags, c->seg[S_CS].sel, return_rip, error};
	unsigned n = has_error ? 6 : 5;
	for (unsigned i = 0; i < n; i++)
		sys_write(c, rsp - 8 * (i + 1), 8, frame[i]);
	if (new_cpl != c->cpl) /* SS becomes a null selector with RPL = new CPL */
		softcpu_set_seg(c, S_SS, (uint16_t)new_cpl, 0, 0, 0);
	c->r[R_SP] = rsp - 8 * n;
	set_cs(c, sel, desc, new_cpl);
	c->rip = target;
	flags &= ~(uint64_t)(F_TF | F_NT | F_RF | F_VM);
	if (type == 0xe)
		flags &= ~(uint64_t)F_IF;
	softcpu_set_rflags(c, flags);
}

void softcpu_deliver(struct softcpu *c, int vector, uint32_t error, bool has_error, enum intr_kind kind,
		     uint64_t return_rip)
{
	if (!(c->cr0 & CR0_PE))
		deliver_real(c, vector, return_rip);
	else if (c->efer & EFER_LMA)
		deliver_long(c, vector, error, has_error, kind, return_rip);
	else
		deliver_prot32(c, vector, error, has_error, kind, return_rip);
	c->halted = false;
	softcpu_update_mode(c);
}
