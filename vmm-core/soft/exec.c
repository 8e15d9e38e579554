/* exec.c - the interpreter: executes decoded instructions (struct insn).
 *
 * Threaded dispatch: softcpu_exec_prepare() gives the common instruction
 * forms a handler when their block is decoded, and handlers jump straight
 * to the next one; everything else goes through exec_one()'s switch on the
 * opcode.  Operands are read and written through small inline helpers.
 * Rules every case follows:
 *  - c->rip is the instruction's address until it completes; the case sets
 *    the next RIP last, so a fault (softcpu_raise) leaves a precise state.
 *  - all memory accesses that may fault come before register updates;
 *    read-modify-write operands are probed as writes first.
 *  - arithmetic flags are lazy (internal.h): set_flags() records the
 *    operation; instructions with irregular flags fold them eagerly. */
#include "internal.h"
#include "log.h"

/* Iterations of a REP string instruction done in one go before the run loop
 * gets to check for interrupts and requests. */
#define REP_CHUNK 65536

/* Registers used as addresses by string instructions, LOOP, XLAT: the
 * address size decides the width (a 32-bit write zero-extends). */
ALWAYS_INLINE void set_areg(struct softcpu *c, unsigned r, unsigned asz, uint64_t v)
{
	set_reg(c, NULL, r, asz, v);
}

ALWAYS_INLINE uint64_t next_rip(const struct softcpu *c, const struct insn *in)
{
	return (c->rip + in->len) & c->rip_mask;
}

/* The ModRM r/m operand. */
ALWAYS_INLINE uint64_t read_rm(struct softcpu *c, const struct insn *in, unsigned size)
{
	if (in->mod == 3)
		return get_reg(c, in, in->rm, size);
	return mem_read(c, mem_addr(c, in), size);
}

ALWAYS_INLINE void write_rm(struct softcpu *c, const struct insn *in, unsigned size, uint64_t v)
{
	if (in->mod == 3)
		set_reg(c, in, in->rm, size, v);
	else
		mem_write(c, mem_addr(c, in), size, v);
}

/* ---- control transfer helpers ---- */

/* Near branch to target with operand size osz. */
ALWAYS_INLINE void jump_to(struct softcpu *c, uint64_t target, unsigned osz)
{
	target &= size_mask(osz);
	if (c->code_bits == 64 && !canonical(target))
		raise_gp(c, 0);
	c->rip = target;
}

ALWAYS_INLINE uint64_t sp_mask(const struct softcpu *c)
{
	return size_mask(c->stack_bits / 8);
}

ALWAYS_INLINE void push(struct softcpu *c, unsigned size, uint64_t v)
{
	uint64_t m = sp_mask(c);
	uint64_t sp = (c->r[R_SP] - size) & m;
	mem_write(c, linear(c, S_SS, sp), size, v);
	c->r[R_SP] = (c->r[R_SP] & ~m) | sp;
}

/* Read the value at stack offset `off` from the top, without popping. */
ALWAYS_INLINE uint64_t stack_peek(struct softcpu *c, unsigned size, uint64_t off)
{
	uint64_t m = sp_mask(c);
	return mem_read(c, linear(c, S_SS, (c->r[R_SP] + off) & m), size);
}

ALWAYS_INLINE void sp_add(struct softcpu *c, uint64_t n)
{
	uint64_t m = sp_mask(c);
	c->r[R_SP] = (c->r[R_SP] & ~m) | ((c->r[R_SP] + n) & m);
}

ALWAYS_INLINE uint64_t pop(struct softcpu *c, unsigned size)
{
	uint64_t v = stack_peek(c, size, 0);
	sp_add(c, size);
	return v;
}

/* Near branches, shared by exec_one and the threaded handlers. */
ALWAYS_INLINE void exec_jcc(struct softcpu *c, const struct insn *in)
{
	uint64_t next = next_rip(c, in);
	if (cond_true(c, in->op & 15))
		jump_to(c, next + in->imm, in->osz);
	else
		c->rip = next;
}

ALWAYS_INLINE void exec_call_rel(struct softcpu *c, const struct insn *in)
{
	uint64_t ret = next_rip(c, in), target = (ret + in->imm) & size_mask(in->osz);
	if (c->code_bits == 64 && !canonical(target))
		raise_gp(c, 0);
	push(c, in->osz, ret);
	c->rip = target;
}

/* RET, RET imm16 (C2) */
ALWAYS_INLINE void exec_ret_near(struct softcpu *c, const struct insn *in)
{
	uint64_t target = pop(c, in->osz);
	if (in->op == 0xc2)
		sp_add(c, in->imm);
	jump_to(c, target, in->osz);
}

/* ---- arithmetic ---- */

/* The eight classic ALU operations (ADD OR ADC SBB AND SUB XOR CMP); operands
 * truncated to size.  Returns the result (CMP: unused). */
ALWAYS_INLINE uint64_t alu(struct softcpu *c, unsigned op, unsigned size, uint64_t a, uint64_t b)
{
	uint64_t m = size_mask(size), r;
	unsigned cin;
	switch (op) {
	case 0: r = (a + b) & m; set_flags(c, LF_ADD, size, r, a, b); return r;
	case 1: r = a | b; set_flags(c, LF_LOGIC, size, r, a, b); return r;
	case 2:
		cin = flag_cf(c);
		r = (a + b + cin) & m;
		set_flags(c, LF_ADC, size, r, a, b);
		c->lf.cin = (uint8_t)cin;
		return r;
	case 3:
		cin = flag_cf(c);
		r = (a - b - cin) & m;
		set_flags(c, LF_SBB, size, r, a, b);
		c->lf.cin = (uint8_t)cin;
		return r;
	case 4: r = a & b; set_flags(c, LF_LOGIC, size, r, a, b); return r;
	case 5: case 7: r = (a - b) & m; set_flags(c, LF_SUB, size, r, a, b); return r;
	default: r = a ^ b; set_flags(c, LF_LOGIC, size, r, a, b); return r;
	}
}

ALWAYS_INLINE uint64_t inc_dec(struct softcpu *c, bool dec, unsigned size, uint64_t a)
{
	unsigned cf = flag_cf(c);
	uint64_t r = (dec ? a - 1 : a + 1) & size_mask(size);
	c->lf.op = dec ? LF_DEC : LF_INC; /* src1 and src2 are not read */
	c->lf.size = (uint8_t)size;
	c->lf.res = r;
	c->lf.cin = (uint8_t)cf;
	return r;
}

/* ---- read-modify-write of memory operands ----
 * With LOCK (and always for XCHG) an operand in RAM is updated by a host
 * compare-and-swap, so vCPUs on other threads see the instruction atomic;
 * a failed swap restores the flags and recomputes.  Without LOCK, or where
 * the slow paths must see the write (MMIO, page-crossing, a page holding
 * decoded code), it is a read then a write.  Usage:
 *	struct rmw r;
 *	uint64_t old = rmw_begin(c, &r, lin, size, locked), new;
 *	do new = f(old); while (!rmw_commit(c, &r, &old, new));
 */
struct rmw {
	uint8_t *host; /* NULL: plain read then write */
	uint64_t lin;
	unsigned size;
	struct lazy_flags lf; /* flags before the instruction, for a retry */
	uint64_t rflags;
};

ALWAYS_INLINE uint64_t rmw_begin(struct softcpu *c, struct rmw *r, uint64_t lin, unsigned size, bool locked)
{
	uint64_t v = mem_read_rmw(c, lin, size); /* faults as a write, fills the TLB */
	r->lin = lin;
	r->size = size;
	r->host = NULL;
	if (unlikely(locked)) {
		r->host = tlb_host(c, lin, size, true);
		r->lf = c->lf;
		r->rflags = c->rflags;
	}
	return v;
}

static bool host_cas(uint8_t *p, unsigned size, uint64_t *old, uint64_t new)
{
	switch (size) {
	case 1: {
		uint8_t e = (uint8_t)*old;
		bool ok = __atomic_compare_exchange_n(p, &e, (uint8_t)new, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*old = e;
		return ok;
	}
	case 2: {
		uint16_t e = (uint16_t)*old;
		bool ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)new, false, __ATOMIC_SEQ_CST,
						      __ATOMIC_SEQ_CST);
		*old = e;
		return ok;
	}
	case 4: {
		uint32_t e = (uint32_t)*old;
		bool ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)new, false, __ATOMIC_SEQ_CST,
						      __ATOMIC_SEQ_CST);
		*old = e;
		return ok;
	}
	default:
		return __atomic_compare_exchange_n((uint64_t *)p, old, new, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
}

/* Another vCPU changed the operand: start over from its new value with the
 * flags as they were before (ADC/SBB/INC/DEC read the old CF).  Out of line:
 * rare, and r->lf is only set when r->host is. */
static __attribute__((noinline)) void rmw_retry(struct softcpu *c, const struct rmw *r)
{
	c->lf = r->lf;
	c->rflags = r->rflags;
}

ALWAYS_INLINE bool rmw_commit(struct softcpu *c, struct rmw *r, uint64_t *old, uint64_t new)
{
	if (!r->host) {
		mem_write(c, r->lin, r->size, new);
		return true;
	}
	if (host_cas(r->host, r->size, old, new))
		return true;
	rmw_retry(c, r);
	return false;
}

ALWAYS_INLINE bool is_locked(const struct insn *in)
{
	return in->pfx & PFX_LOCK;
}

/* ---- the ALU instruction forms ---- */

/* op r/m, reg */
ALWAYS_INLINE void alu_rm_reg(struct softcpu *c, const struct insn *in, unsigned aop, unsigned size)
{
	uint64_t src = get_reg(c, in, in->reg, size);
	if (in->mod == 3) {
		uint64_t v = alu(c, aop, size, get_reg(c, in, in->rm, size), src);
		if (aop != 7)
			set_reg(c, in, in->rm, size, v);
		return;
	}
	uint64_t lin = mem_addr(c, in);
	if (aop == 7) {
		alu(c, aop, size, mem_read(c, lin, size), src);
	} else {
		struct rmw r;
		uint64_t old = rmw_begin(c, &r, lin, size, is_locked(in)), v;
		do
			v = alu(c, aop, size, old, src);
		while (!rmw_commit(c, &r, &old, v));
	}
}

/* op reg, r/m */
ALWAYS_INLINE void alu_reg_rm(struct softcpu *c, const struct insn *in, unsigned aop, unsigned size)
{
	uint64_t v = alu(c, aop, size, get_reg(c, in, in->reg, size), read_rm(c, in, size));
	if (aop != 7)
		set_reg(c, in, in->reg, size, v);
}

/* op AL/eAX, imm */
ALWAYS_INLINE void alu_acc_imm(struct softcpu *c, const struct insn *in, unsigned aop, unsigned size)
{
	uint64_t v = alu(c, aop, size, c->r[R_AX] & size_mask(size), in->imm & size_mask(size));
	if (aop != 7)
		set_reg(c, in, R_AX, size, v);
}

/* Fold flags eagerly: SF/ZF/PF from res, the given CF/OF, AF = 0.  For
 * instructions whose SF/ZF/PF/AF are architecturally undefined this is our
 * (documented, test-masked) choice. */
static void set_flags_result(struct softcpu *c, unsigned size, uint64_t res, unsigned cf, unsigned of)
{
	set_flags(c, LF_LOGIC, size, res & size_mask(size), 0, 0);
	flags_materialize(c);
	c->rflags |= (cf ? F_CF : 0) | (of ? F_OF : 0);
}

/* Replace only some arithmetic flags, keeping the others. */
/* SHL/SAL (op 4, 6), SHR (5), SAR (7) with flags left lazy; count already
 * masked and not 0. */
ALWAYS_INLINE uint64_t shift_lazy(struct softcpu *c, unsigned op, unsigned size, uint64_t v, unsigned count)
{
	uint64_t r;
	switch (op) {
	case 5:
		r = v >> count;
		set_flags(c, LF_SHR, size, r, v, count);
		return r;
	case 7: {
		unsigned bits = 8 * size;
		int64_t sv = (int64_t)(v << (64 - bits)) >> (64 - bits);
		r = (uint64_t)(sv >> count) & size_mask(size);
		set_flags(c, LF_SAR, size, r, v, count);
		return r;
	}
	default:
		r = (v << count) & size_mask(size);
		set_flags(c, LF_SHL, size, r, v, count);
		return r;
	}
}

/* Group 2: ROL ROR RCL RCR SHL SHR SAL SAR. */
static uint64_t shift_op(struct softcpu *c, unsigned op, unsigned size, uint64_t v, unsigned count)
{
	unsigned bits = 8 * size;
	uint64_t m = size_mask(size), r;
	unsigned cf, of;
	count &= size == 8 ? 63 : 31;
	if (count == 0)
		return v;
	switch (op) {
	case 0: { /* ROL */
		unsigned n = count % bits;
		r = n ? ((v << n) | (v >> (bits - n))) & m : v;
		cf = r & 1;
		of = (unsigned)(r >> (bits - 1) & 1) ^ cf;
		update_flags(c, F_CF | F_OF, (cf ? F_CF : 0) | (of ? F_OF : 0));
		return r;
	}
	case 1: { /* ROR */
		unsigned n = count % bits;
		r = n ? ((v >> n) | (v << (bits - n))) & m : v;
		cf = (unsigned)(r >> (bits - 1)) & 1;
		of = cf ^ ((unsigned)(r >> (bits - 2)) & 1);
		update_flags(c, F_CF | F_OF, (cf ? F_CF : 0) | (of ? F_OF : 0));
		return r;
	}
	case 2: case 3: { /* RCL, RCR: rotate through CF, a (bits+1)-bit rotation */
		unsigned n = count % (bits + 1);
		cf = flag_cf(c);
		r = v;
		if (op == 2) {
			for (unsigned i = 0; i < n; i++) {
				unsigned out = (unsigned)(r >> (bits - 1)) & 1;
				r = ((r << 1) | cf) & m;
				cf = out;
			}
			of = (unsigned)(r >> (bits - 1) & 1) ^ cf;
		} else {
			of = (unsigned)(v >> (bits - 1) & 1) ^ cf;
			for (unsigned i = 0; i < n; i++) {
				unsigned out = r & 1;
				r = (r >> 1) | ((uint64_t)cf << (bits - 1));
				cf = out;
			}
		}
		update_flags(c, F_CF | F_OF, (cf ? F_CF : 0) | (of ? F_OF : 0));
		return r;
	}
	default: /* SHL SHR SAL SAR */
		return shift_lazy(c, op, size, v, count);
	}
}

/* SHLD (left) / SHRD: shift dst, filling from src. */
static uint64_t double_shift(struct softcpu *c, bool left, unsigned size, uint64_t dst, uint64_t src, unsigned count)
{
	unsigned bits = 8 * size;
	uint64_t m = size_mask(size), r;
	unsigned cf;
	count &= size == 8 ? 63 : 31;
	if (count == 0)
		return dst;
	if (size == 2) {
		/* Counts above 16 are undefined; like Intel CPUs, keep shifting
		 * through dst:src:dst (48 bits). */
		uint64_t wide = (dst << 32) | (src << 16) | dst;
		if (left) {
			r = ((wide << count) >> 32) & m;
			cf = (unsigned)(wide >> (48 - count)) & 1;
		} else {
			r = (wide >> count) & m;
			cf = (unsigned)(wide >> (count - 1)) & 1;
		}
	} else if (left) {
		r = ((dst << count) | (src >> (bits - count))) & m;
		cf = (unsigned)(dst >> (bits - count)) & 1;
	} else {
		r = ((dst >> count) | (src << (bits - count))) & m;
		cf = (unsigned)(dst >> (count - 1)) & 1;
	}
	unsigned of = (unsigned)((r ^ dst) >> (bits - 1)) & 1;
	set_flags_result(c, size, r, cf, of);
	return r;
}

ALWAYS_INLINE int64_t sign_extend(uint64_t v, unsigned size)
{
	unsigned s = 64 - 8 * size;
	return (int64_t)(v << s) >> s;
}

/* IMUL r, r/m (0F AF), IMUL r, r/m, imm (69, 6B) */
ALWAYS_INLINE void exec_imul(struct softcpu *c, const struct insn *in, unsigned size)
{
	int64_t a = sign_extend(read_rm(c, in, size), size);
	int64_t b = in->op == (OP_0F | 0xaf) ? sign_extend(get_reg(c, in, in->reg, size), size) : (int64_t)in->imm;
	__int128 p = (__int128)a * b;
	uint64_t r = (uint64_t)p & size_mask(size);
	set_reg(c, in, in->reg, size, r);
	set_flags(c, LF_MUL, size, r, p != (__int128)sign_extend(r, size), 0);
}

/* CMOVcc r, r/m */
ALWAYS_INLINE void exec_cmov(struct softcpu *c, const struct insn *in, unsigned size)
{
	uint64_t v = read_rm(c, in, size); /* read (and fault) even when false */
	if (cond_true(c, in->op & 15))
		set_reg(c, in, in->reg, size, v);
	else if (size == 4)
		set_reg(c, in, in->reg, 4, get_reg(c, in, in->reg, 4)); /* zero-extends */
}

/* Group 3 MUL/IMUL/DIV/IDIV on the accumulator. */
static void muldiv(struct softcpu *c, const struct insn *in, unsigned op, unsigned size, uint64_t src)
{
	unsigned bits = 8 * size;
	uint64_t m = size_mask(size);
	uint64_t a = get_reg(c, in, R_AX, size == 1 ? 2 : size); /* AX for byte division */
	uint64_t d = size == 1 ? 0 : c->r[R_DX] & m;
	unsigned __int128 lo_hi;
	switch (op) {
	case 4: { /* MUL */
		lo_hi = (unsigned __int128)(a & m) * src;
		uint64_t lo = (uint64_t)lo_hi & m, hi = (uint64_t)(lo_hi >> bits) & m;
		if (size == 1)
			set_reg(c, in, R_AX, 2, (uint64_t)lo_hi & 0xffff);
		else {
			set_reg(c, in, R_AX, size, lo);
			set_reg(c, in, R_DX, size, hi);
		}
		set_flags(c, LF_MUL, size, lo, hi != 0, 0);
		return;
	}
	case 5: { /* IMUL */
		__int128 p = (__int128)sign_extend(a, size) * sign_extend(src, size);
		uint64_t lo = (uint64_t)p & m, hi = (uint64_t)(p >> bits) & m;
		bool overflow = p != (__int128)sign_extend(lo, size);
		if (size == 1)
			set_reg(c, in, R_AX, 2, (uint64_t)p & 0xffff);
		else {
			set_reg(c, in, R_AX, size, lo);
			set_reg(c, in, R_DX, size, hi);
		}
		set_flags(c, LF_MUL, size, lo, overflow, 0);
		return;
	}
	case 6: { /* DIV */
		if (src == 0)
			softcpu_raise(c, EXC_DE, 0, false);
		unsigned __int128 num = size == 1 ? a : ((unsigned __int128)d << bits) | (a & m);
		unsigned __int128 q = num / src, rem = num % src;
		if (q > m)
			softcpu_raise(c, EXC_DE, 0, false);
		if (size == 1)
			set_reg(c, in, R_AX, 2, ((uint64_t)rem << 8) | (uint64_t)q);
		else {
			set_reg(c, in, R_AX, size, (uint64_t)q);
			set_reg(c, in, R_DX, size, (uint64_t)rem);
		}
		return;
	}
	default: { /* IDIV */
		if (src == 0)
			softcpu_raise(c, EXC_DE, 0, false);
		__int128 num;
		if (size == 1)
			num = sign_extend(a, 2);
		else if (size < 8)
			num = sign_extend((d << bits) | (a & m), 2 * size);
		else
			num = (__int128)(((unsigned __int128)d << 64) | a); /* GCC: modulo conversion */
		__int128 div = sign_extend(src, size);
		if (size == 8 && (unsigned __int128)num == (unsigned __int128)1 << 127 && div == -1)
			softcpu_raise(c, EXC_DE, 0, false); /* the quotient would overflow __int128 too */
		__int128 q = num / div, rem = num % div;
		__int128 lim = (__int128)1 << (bits - 1);
		if (q >= lim || q < -lim)
			softcpu_raise(c, EXC_DE, 0, false);
		if (size == 1)
			set_reg(c, in, R_AX, 2, (((uint64_t)rem & 0xff) << 8) | ((uint64_t)q & 0xff));
		else {
			set_reg(c, in, R_AX, size, (uint64_t)q);
			set_reg(c, in, R_DX, size, (uint64_t)rem);
		}
		return;
	}
	}
}

/* ---- privilege checks ---- */

ALWAYS_INLINE void require_cpl0(struct softcpu *c)
{
	if (c->cpl != 0)
		raise_gp(c, 0);
}

ALWAYS_INLINE unsigned iopl(const struct softcpu *c)
{
	return (unsigned)(c->rflags >> 12) & 3;
}

/* IN/OUT/INS/OUTS: the TSS I/O permission bitmap is not implemented, so
 * port access needs CPL <= IOPL in protected mode. */
ALWAYS_INLINE void check_io(struct softcpu *c)
{
	if ((c->cr0 & CR0_PE) && c->cpl > iopl(c)) {
		log_once("softcpu: port I/O with CPL > IOPL (no TSS I/O bitmap support) -> #GP");
		raise_gp(c, 0);
	}
}

/* ---- string instructions ---- */

ALWAYS_INLINE int64_t str_step(const struct softcpu *c, unsigned size)
{
	return (c->rflags & F_DF) ? -(int64_t)size : (int64_t)size;
}

/* Bulk REP MOVS/STOS forward: as many whole elements as fit in the current
 * source and destination pages, with memcpy/memset.  Returns elements done. */
static uint64_t bulk_forward(struct softcpu *c, bool movs, unsigned size, uint64_t src_lin, uint64_t dst_lin,
			     uint64_t count)
{
	uint64_t room = (4096 - (dst_lin & 0xfff)) / size;
	if (movs)
		room = (4096 - (src_lin & 0xfff)) / size < room ? (4096 - (src_lin & 0xfff)) / size : room;
	uint64_t n = count < room ? count : room;
	if (n == 0)
		return 0;
	uint8_t *dst = tlb_host(c, dst_lin, n * size, true);
	if (!dst)
		return 0;
	if (movs) {
		const uint8_t *src = tlb_host(c, src_lin, n * size, false);
		/* A forward copy onto itself a few bytes ahead replicates bytes:
		 * memmove would not, so leave overlaps to the element loop. */
		if (!src || (dst > src && dst < src + n * size))
			return 0;
		memmove(dst, src, n * size);
	} else {
		uint64_t v = c->r[R_AX];
		if (size == 1)
			memset(dst, (int)(v & 0xff), n);
		else
			for (uint64_t i = 0; i < n; i++)
				store_le(dst + i * size, size, v);
	}
	return n;
}

static void string_op(struct softcpu *c, const struct insn *in)
{
	unsigned op = in->op;
	unsigned size = (op & 1) ? in->osz : 1;
	unsigned asz = in->asz;
	uint64_t am = size_mask(asz);
	bool rep = in->pfx & (PFX_REP | PFX_REPNE);
	bool cmp = op == 0xa6 || op == 0xa7 || op == 0xae || op == 0xaf;
	int64_t step = str_step(c, size);
	uint64_t count = rep ? c->r[R_CX] & am : 1;
	uint64_t done = 0;

	if (op >= 0x6c && op <= 0x6f)
		check_io(c);
	while (done < count && done < REP_CHUNK) {
		uint64_t si = c->r[R_SI] & am, di = c->r[R_DI] & am;
		uint64_t n = 1;
		switch (op) {
		case 0xa4: case 0xa5: /* MOVS */
			n = rep && step > 0 ? bulk_forward(c, true, size, linear(c, in->seg, si), linear(c, S_ES, di),
							   count - done)
					    : 0;
			/* Only when the bulk copy did nothing: redoing an element it
			 * copied would read a source it may have overwritten. */
			if (n == 0) {
				n = 1;
				mem_write(c, linear(c, S_ES, di), size, mem_read(c, linear(c, in->seg, si), size));
			}
			set_areg(c, R_SI, asz, si + (uint64_t)step * n);
			set_areg(c, R_DI, asz, di + (uint64_t)step * n);
			break;
		case 0xaa: case 0xab: /* STOS */
			n = rep && step > 0 ? bulk_forward(c, false, size, 0, linear(c, S_ES, di), count - done) : 0;
			if (n == 0) {
				n = 1;
				mem_write(c, linear(c, S_ES, di), size, c->r[R_AX]);
			}
			set_areg(c, R_DI, asz, di + (uint64_t)step * n);
			break;
		case 0xac: case 0xad: /* LODS */
			set_reg(c, in, R_AX, size, mem_read(c, linear(c, in->seg, si), size));
			set_areg(c, R_SI, asz, si + (uint64_t)step);
			break;
		case 0xa6: case 0xa7: { /* CMPS */
			uint64_t a = mem_read(c, linear(c, in->seg, si), size);
			uint64_t b = mem_read(c, linear(c, S_ES, di), size);
			alu(c, 7, size, a, b);
			set_areg(c, R_SI, asz, si + (uint64_t)step);
			set_areg(c, R_DI, asz, di + (uint64_t)step);
			break;
		}
		case 0xae: case 0xaf: /* SCAS */
			alu(c, 7, size, c->r[R_AX] & size_mask(size), mem_read(c, linear(c, S_ES, di), size));
			set_areg(c, R_DI, asz, di + (uint64_t)step);
			break;
		case 0x6c: case 0x6d: { /* INS */
			uint64_t lin = linear(c, S_ES, di);
			mmu_probe_write(c, lin, size); /* fault before the port read */
			mem_write(c, lin, size, c->m->pio_read(c->m->bus_opaque, (uint16_t)c->r[R_DX], size));
			set_areg(c, R_DI, asz, di + (uint64_t)step);
			break;
		}
		default: /* OUTS */
			c->m->pio_write(c->m->bus_opaque, (uint16_t)c->r[R_DX], size,
					mem_read(c, linear(c, in->seg, si), size));
			set_areg(c, R_SI, asz, si + (uint64_t)step);
			break;
		}
		done += n;
		if (rep)
			set_areg(c, R_CX, asz, count - done);
		if (cmp && rep && (flag_zf(c) != !!(in->pfx & PFX_REP)))
			break; /* REPE stops on ZF = 0, REPNE on ZF = 1 */
		if (c->block_end)
			break; /* wrote into a code page */
	}
	bool finished = !rep || done == count || (cmp && flag_zf(c) != !!(in->pfx & PFX_REP));
	if (finished)
		c->rip = next_rip(c, in);
	else
		c->block_end = true; /* resume the same instruction after checking for events */
}

/* ---- far transfers, IRET, segment loads ---- */

/* Load CS for a far JMP/CALL/RET/IRET to sel:offset at privilege new_cpl
 * (protected mode; real mode just sets the base).  Only direct code
 * segments: call gates and task switches are not implemented. */
static void load_cs(struct softcpu *c, uint16_t sel, unsigned new_cpl)
{
	if (!(c->cr0 & CR0_PE)) {
		c->seg[S_CS].sel = sel;
		c->seg[S_CS].base = (uint64_t)sel << 4;
		softcpu_update_mode(c);
		return;
	}
	if ((sel & ~3u) == 0)
		raise_gp(c, 0);
	uint64_t d = softcpu_read_descriptor(c, sel);
	unsigned attr = (unsigned)(d >> 40) & 0xf0ff, dpl = (attr >> 5) & 3;
	if (!(attr & SEG_ATTR_S)) {
		log_once("softcpu: far transfer through a gate or TSS (not implemented) -> #GP");
		raise_gp(c, sel & ~3u);
	}
	bool code = attr & 0x8, conforming = attr & 0x4;
	if (!code || (conforming ? dpl > new_cpl : dpl != new_cpl))
		raise_gp(c, sel & ~3u);
	if (!(attr & SEG_ATTR_P))
		softcpu_raise(c, EXC_NP, sel & ~3u, true);
	softcpu_seg_from_descriptor(&c->seg[S_CS], (uint16_t)((sel & ~3u) | new_cpl), d);
	c->cpl = (uint8_t)new_cpl;
	softcpu_update_mode(c);
}

static void far_jump(struct softcpu *c, uint16_t sel, uint64_t offset, unsigned osz)
{
	load_cs(c, sel, c->cpl);
	jump_to(c, offset, osz);
}

/* Data segment registers the new (outer) privilege may not use become null. */
static void null_inaccessible_segs(struct softcpu *c)
{
	static const int segs[] = {S_ES, S_DS, S_FS, S_GS};
	for (unsigned i = 0; i < 4; i++) {
		struct softcpu_seg *s = &c->seg[segs[i]];
		unsigned dpl = (s->attr >> 5) & 3;
		bool conforming_code = (s->attr & 0x8) && (s->attr & 0x4);
		if ((s->attr & SEG_ATTR_S) && !conforming_code && dpl < c->cpl) {
			s->sel = 0;
			s->attr = 0;
		}
	}
	softcpu_update_mode(c);
}

/* RET far (imm = bytes to release) and the stack part of IRET. */
static void far_return(struct softcpu *c, unsigned osz, uint64_t imm, bool iret)
{
	uint64_t ip = stack_peek(c, osz, 0);
	uint16_t sel = (uint16_t)stack_peek(c, osz, osz);
	uint64_t flags = iret ? stack_peek(c, osz, 2 * osz) : 0;
	unsigned frame = (iret ? 3 : 2) * osz;

	if (!(c->cr0 & CR0_PE)) {
		sp_add(c, frame + imm);
		load_cs(c, sel, 0);
		c->rip = ip & size_mask(osz);
		if (iret)
			softcpu_set_rflags(c, osz == 2 ? (c->rflags & ~0xffffull) | flags : flags);
		return;
	}
	if (iret && (c->rflags & F_NT)) {
		log_once("softcpu: IRET with NT (task return) is not implemented -> #GP");
		raise_gp(c, 0);
	}
	if (iret && (flags & F_VM) && c->cpl == 0 && osz != 2) {
		log_once("softcpu: IRET to virtual-8086 mode is not implemented -> #GP");
		raise_gp(c, 0);
	}
	unsigned rpl = sel & 3;
	if (rpl < c->cpl)
		raise_gp(c, sel & ~3u);
	/* 64-bit IRET always pops SS:RSP; otherwise only on a return outward. */
	bool pop_stack = rpl > c->cpl || (iret && c->long64);
	uint64_t new_sp = 0;
	uint16_t new_ss = 0;
	if (pop_stack) {
		new_sp = stack_peek(c, osz, frame + imm);
		new_ss = (uint16_t)stack_peek(c, osz, frame + imm + osz);
	}
	unsigned old_cpl = c->cpl;
	load_cs(c, sel, rpl);
	uint64_t target = ip & size_mask(osz);
	if (c->code_bits == 64 && !canonical(target))
		raise_gp(c, 0);
	if (iret) {
		/* IOPL changes only at CPL 0, IF only at CPL <= IOPL (old CPL). */
		uint64_t keep = F_VM | F_RF;
		if (old_cpl > 0)
			keep |= F_IOPL;
		if (old_cpl > iopl(c))
			keep |= F_IF;
		if (osz == 2)
			keep |= ~0xffffull;
		softcpu_set_rflags(c, (flags & ~keep) | (c->rflags & keep));
	}
	if (pop_stack) {
		if ((new_ss & ~3u) == 0 && c->long64 && rpl < 3) {
			softcpu_set_seg(c, S_SS, new_ss, 0, 0, 0);
		} else {
			unsigned saved = c->cpl;
			c->cpl = (uint8_t)rpl;
			softcpu_load_seg(c, S_SS, new_ss);
			c->cpl = (uint8_t)saved;
		}
		c->r[R_SP] = new_sp & size_mask(c->stack_bits / 8 > osz ? c->stack_bits / 8 : osz);
		if (c->stack_bits == 64)
			c->r[R_SP] = new_sp;
		if (rpl > old_cpl)
			null_inaccessible_segs(c);
	} else {
		sp_add(c, frame + imm);
	}
	c->rip = target;
}

/* LGDT/LIDT/SGDT/SIDT operand: limit (2 bytes) then base. */
static void load_dtr(struct softcpu *c, const struct insn *in, struct softcpu_dtr *dtr)
{
	uint64_t lin = mem_addr(c, in);
	uint16_t limit = (uint16_t)mem_read(c, lin, 2);
	uint64_t base = c->code_bits == 64 ? mem_read(c, lin + 2, 8) : mem_read(c, lin + 2, 4);
	if (c->code_bits != 64 && in->osz == 2)
		base &= 0xffffff;
	if (c->code_bits == 64 && !canonical(base))
		raise_gp(c, 0);
	dtr->limit = limit;
	dtr->base = base;
}

static void store_dtr(struct softcpu *c, const struct insn *in, const struct softcpu_dtr *dtr)
{
	uint64_t lin = mem_addr(c, in);
	mem_write(c, lin, 2, dtr->limit);
	if (c->code_bits == 64)
		mem_write(c, lin + 2, 8, dtr->base);
	else
		mem_write(c, lin + 2, 4, dtr->base);
}

/* LLDT / LTR: system descriptors, 16 bytes in long mode. */
static void load_system_seg(struct softcpu *c, bool tr, uint16_t sel)
{
	require_cpl0(c);
	if ((sel & ~3u) == 0) {
		if (tr)
			raise_gp(c, 0);
		c->ldtr = (struct softcpu_seg){.sel = sel};
		return;
	}
	if (sel & 4)
		raise_gp(c, sel & ~3u);
	uint64_t d = softcpu_read_descriptor(c, sel);
	unsigned type = (unsigned)(d >> 40) & 0x1f;
	bool ok = tr ? (type == 0x9 || type == 0x1) : type == 0x2;
	if (!ok)
		raise_gp(c, sel & ~3u);
	if (!((d >> 47) & 1))
		softcpu_raise(c, EXC_NP, sel & ~3u, true);
	struct softcpu_seg s;
	softcpu_seg_from_descriptor(&s, sel, d);
	if (c->efer & EFER_LMA)
		s.base |= mmu_read_slow(c, c->gdtr.base + (sel & ~7u) + 8, 4, true) << 32;
	if (tr) { /* mark busy */
		mmu_write_slow(c, c->gdtr.base + (sel & ~7u) + 5, 1, (d >> 40) | 2, true);
		s.attr |= 2;
		c->tr = s;
	} else {
		c->ldtr = s;
	}
}

static void exec_syscall(struct softcpu *c, const struct insn *in)
{
	if (!(c->efer & EFER_SCE) || !(c->efer & EFER_LMA)) {
		log_once("softcpu: SYSCALL outside long mode is not implemented -> #UD");
		raise_ud(c);
	}
	uint64_t flags = softcpu_get_rflags(c);
	c->r[R_CX] = next_rip(c, in);
	c->r[R_R11] = flags & ~(uint64_t)F_RF;
	uint64_t target = c->long64 ? c->lstar : c->cstar;
	uint16_t sel = (uint16_t)(c->star >> 32) & ~3u;
	softcpu_set_seg(c, S_CS, sel, 0, 0xffffffffu, 0xa09b);
	softcpu_set_seg(c, S_SS, (uint16_t)(sel + 8), 0, 0xffffffffu, 0xc093);
	c->cpl = 0;
	softcpu_set_rflags(c, flags & ~(c->sfmask | F_RF));
	softcpu_update_mode(c);
	c->rip = target;
}

static void exec_sysret(struct softcpu *c, const struct insn *in)
{
	if (!(c->efer & EFER_SCE) || !(c->efer & EFER_LMA))
		raise_ud(c);
	require_cpl0(c);
	uint16_t base = (uint16_t)(c->star >> 48);
	uint64_t target;
	if (in->rex & 8) {
		target = c->r[R_CX];
		if (!canonical(target))
			raise_gp(c, 0);
		softcpu_set_seg(c, S_CS, (uint16_t)((base + 16) | 3), 0, 0xffffffffu, 0xa0fb);
	} else {
		target = (uint32_t)c->r[R_CX];
		softcpu_set_seg(c, S_CS, (uint16_t)(base | 3), 0, 0xffffffffu, 0xc0fb);
	}
	softcpu_set_seg(c, S_SS, (uint16_t)((base + 8) | 3), 0, 0xffffffffu, 0xc0f3);
	c->cpl = 3;
	softcpu_set_rflags(c, c->r[R_R11]);
	softcpu_update_mode(c);
	c->rip = target;
}

/* A software interrupt: INT n, INT3, INTO, INT1. */
static void soft_int(struct softcpu *c, const struct insn *in, int vector, enum intr_kind kind)
{
	softcpu_deliver(c, vector, 0, false, kind, next_rip(c, in));
}

static void exec_grp7(struct softcpu *c, const struct insn *in)
{
	unsigned r = in->reg & 7;
	if (in->mod == 3) {
		unsigned rm = in->rm & 7;
		if (r == 7 && rm == 0) { /* SWAPGS */
			if (!c->long64)
				raise_ud(c);
			require_cpl0(c);
			uint64_t t = c->seg[S_GS].base;
			c->seg[S_GS].base = c->kernel_gs_base;
			c->kernel_gs_base = t;
			softcpu_update_mode(c);
		} else if (r == 7 && rm == 1) { /* RDTSCP */
			uint64_t t = softcpu_rdtsc(c);
			c->r[R_AX] = (uint32_t)t;
			c->r[R_DX] = t >> 32;
			c->r[R_CX] = (uint32_t)c->tsc_aux;
		} else if (r == 4) { /* SMSW reg */
			set_reg(c, in, in->rm, in->osz, c->cr0 & size_mask(in->osz));
		} else if (r == 6) { /* LMSW reg */
			require_cpl0(c);
			uint64_t v = get_reg(c, in, in->rm, 2);
			/* LMSW can set PE but never clear it */
			softcpu_write_cr(c, 0, (c->cr0 & ~0xeull) | (v & 0xf) | (c->cr0 & CR0_PE));
		} else {
			softcpu_unimplemented(c, in);
		}
		c->rip = next_rip(c, in);
		return;
	}
	switch (r) {
	case 0: store_dtr(c, in, &c->gdtr); break;
	case 1: store_dtr(c, in, &c->idtr); break;
	case 2: require_cpl0(c); load_dtr(c, in, &c->gdtr); break;
	case 3: require_cpl0(c); load_dtr(c, in, &c->idtr); break;
	case 4: mem_write(c, mem_addr(c, in), 2, c->cr0); break;
	case 6: {
		require_cpl0(c);
		uint64_t v = mem_read(c, mem_addr(c, in), 2);
		softcpu_write_cr(c, 0, (c->cr0 & ~0xeull) | (v & 0xf) | (c->cr0 & CR0_PE));
		break;
	}
	case 7: require_cpl0(c); mmu_invlpg(c, mem_addr(c, in)); break;
	default: softcpu_unimplemented(c, in);
	}
	c->rip = next_rip(c, in);
}

/* VERR / VERW: ZF = may this selector's segment be read / written at the
 * current privilege?  A selector past its table's limit answers ZF = 0
 * rather than faulting.  (Linux runs VERW as its MDS buffer clear.) */
static void verify_seg(struct softcpu *c, const struct insn *in, bool write)
{
	uint16_t sel = (uint16_t)read_rm(c, in, 2);
	uint64_t limit = (sel & 4) ? c->ldtr.limit : c->gdtr.limit;
	bool ok = false;
	if ((sel & ~3u) && (uint64_t)(sel & ~7u) + 7 <= limit && (!(sel & 4) || (c->ldtr.attr & SEG_ATTR_P))) {
		unsigned attr = (unsigned)(softcpu_read_descriptor(c, sel) >> 40) & 0xff;
		unsigned dpl = (attr >> 5) & 3, rpl = sel & 3;
		bool code = attr & 0x8, conforming = code && (attr & 0x4);
		bool allowed = write ? !code && (attr & 0x2) : !code || (attr & 0x2);
		bool privileged = conforming || (dpl >= c->cpl && dpl >= rpl);
		ok = (attr & SEG_ATTR_S) && allowed && privileged;
	}
	update_flags(c, F_ZF, ok ? F_ZF : 0);
}

static void exec_grp6(struct softcpu *c, const struct insn *in)
{
	if (!(c->cr0 & CR0_PE))
		raise_ud(c);
	switch (in->reg & 7) {
	case 0: write_rm(c, in, in->mod == 3 ? in->osz : 2, c->ldtr.sel); break;
	case 1: write_rm(c, in, in->mod == 3 ? in->osz : 2, c->tr.sel); break;
	case 2: load_system_seg(c, false, (uint16_t)read_rm(c, in, 2)); break;
	case 3: load_system_seg(c, true, (uint16_t)read_rm(c, in, 2)); break;
	case 4: verify_seg(c, in, false); break;
	case 5: verify_seg(c, in, true); break;
	default: softcpu_unimplemented(c, in);
	}
	c->rip = next_rip(c, in);
}

/* CMPXCHG8B / CMPXCHG16B */
static void cmpxchg_wide(struct softcpu *c, const struct insn *in)
{
	if (in->mod == 3)
		raise_ud(c);
	uint64_t lin = mem_addr(c, in);
	if (in->rex & 8) {
		if (lin & 15)
			raise_gp(c, 0);
		mmu_probe_write(c, lin, 16);
		uint8_t *host = is_locked(in) ? tlb_host(c, lin, 16, true) : NULL;
		if (host) { /* LOCK CMPXCHG16B on the host (built with -mcx16) */
			unsigned __int128 expect = ((unsigned __int128)c->r[R_DX] << 64) | c->r[R_AX];
			unsigned __int128 desired = ((unsigned __int128)c->r[R_CX] << 64) | c->r[R_BX];
			unsigned __int128 seen = __sync_val_compare_and_swap((unsigned __int128 *)host, expect, desired);
			if (seen != expect) {
				c->r[R_AX] = (uint64_t)seen;
				c->r[R_DX] = (uint64_t)(seen >> 64);
			}
			update_flags(c, F_ZF, seen == expect ? F_ZF : 0);
			return;
		}
		uint64_t lo = mem_read(c, lin, 8), hi = mem_read(c, lin + 8, 8);
		bool eq = lo == c->r[R_AX] && hi == c->r[R_DX];
		if (eq) {
			mem_write(c, lin, 8, c->r[R_BX]);
			mem_write(c, lin + 8, 8, c->r[R_CX]);
		} else {
			mem_write(c, lin, 8, lo); /* the locked cycle always writes */
			mem_write(c, lin + 8, 8, hi);
			c->r[R_AX] = lo;
			c->r[R_DX] = hi;
		}
		update_flags(c, F_ZF, eq ? F_ZF : 0);
	} else {
		struct rmw r;
		uint64_t expect = (c->r[R_AX] & 0xffffffffu) | (c->r[R_DX] << 32);
		uint64_t v = rmw_begin(c, &r, lin, 8, is_locked(in));
		bool eq;
		do
			eq = v == expect;
		while (!rmw_commit(c, &r, &v, eq ? (c->r[R_BX] & 0xffffffffu) | (c->r[R_CX] << 32) : v));
		if (!eq) {
			c->r[R_AX] = (uint32_t)v;
			c->r[R_DX] = v >> 32;
		}
		update_flags(c, F_ZF, eq ? F_ZF : 0);
	}
}

/* BT/BTS/BTR/BTC: op 0 test, 1 set, 2 reset, 3 complement. */
static void bit_op(struct softcpu *c, const struct insn *in, unsigned op, uint64_t offset, bool imm)
{
	unsigned size = in->osz, bits = 8 * size;
	if (in->mod == 3 || imm) {
		offset &= bits - 1;
	}
	uint64_t v;
	if (in->mod == 3) {
		v = get_reg(c, in, in->rm, size);
		if (op) {
			uint64_t bit = 1ull << offset;
			set_reg(c, in, in->rm, size, op == 1 ? v | bit : op == 2 ? v & ~bit : v ^ bit);
		}
	} else {
		int64_t word = imm ? 0 : sign_extend(offset, size) >> (size == 2 ? 4 : size == 4 ? 5 : 6);
		uint64_t lin = linear(c, in->seg, (ea_offset(c, in) + (uint64_t)word * size) & size_mask(in->asz));
		offset &= bits - 1;
		uint64_t bit = 1ull << offset;
		if (op) {
			struct rmw r;
			v = rmw_begin(c, &r, lin, size, is_locked(in));
			while (!rmw_commit(c, &r, &v, op == 1 ? v | bit : op == 2 ? v & ~bit : v ^ bit))
				;
		} else {
			v = mem_read(c, lin, size);
		}
	}
	update_flags(c, F_CF, (v >> offset) & 1 ? F_CF : 0);
}

/* ---- the interpreter ---- */

ALWAYS_INLINE void exec_one(struct softcpu *c, const struct insn *in)
{
	unsigned op = in->op;
	unsigned osz = in->osz;
	uint64_t v, lin;

	switch (op) {
	/* ALU 00-3F: op*8 + {Eb,Gb  Ev,Gv  Gb,Eb  Gv,Ev  AL,Ib  eAX,Iz}, one case
	 * each so that alu() is inlined with a constant operation. */
#define ALU_CASES(aop)                                                         \
	case (aop) * 8 + 0: alu_rm_reg(c, in, aop, 1); break;                  \
	case (aop) * 8 + 1: alu_rm_reg(c, in, aop, osz); break;                \
	case (aop) * 8 + 2: alu_reg_rm(c, in, aop, 1); break;                  \
	case (aop) * 8 + 3: alu_reg_rm(c, in, aop, osz); break;                \
	case (aop) * 8 + 4: alu_acc_imm(c, in, aop, 1); break;                 \
	case (aop) * 8 + 5: alu_acc_imm(c, in, aop, osz); break;
	ALU_CASES(0) ALU_CASES(1) ALU_CASES(2) ALU_CASES(3)
	ALU_CASES(4) ALU_CASES(5) ALU_CASES(6) ALU_CASES(7)
#undef ALU_CASES
	case 0x80: case 0x81: case 0x82: case 0x83: {
		unsigned size = (op & 1) ? osz : 1, aop = in->reg & 7;
		uint64_t imm = in->imm & size_mask(size);
		if (in->mod == 3) {
			v = alu(c, aop, size, get_reg(c, in, in->rm, size), imm);
			if (aop != 7)
				set_reg(c, in, in->rm, size, v);
		} else {
			lin = mem_addr(c, in);
			if (aop == 7) {
				alu(c, aop, size, mem_read(c, lin, size), imm);
			} else {
				struct rmw r;
				uint64_t old = rmw_begin(c, &r, lin, size, is_locked(in));
				do
					v = alu(c, aop, size, old, imm);
				while (!rmw_commit(c, &r, &old, v));
			}
		}
		break;
	}
	case 0x84: case 0x85: {
		unsigned size = (op & 1) ? osz : 1;
		alu(c, 4, size, read_rm(c, in, size), get_reg(c, in, in->reg, size));
		break;
	}
	case 0xa8: case 0xa9: {
		unsigned size = (op & 1) ? osz : 1;
		alu(c, 4, size, c->r[R_AX] & size_mask(size), in->imm & size_mask(size));
		break;
	}
	case 0x86: case 0x87: { /* XCHG (implicitly locked) */
		unsigned size = (op & 1) ? osz : 1;
		uint64_t r = get_reg(c, in, in->reg, size);
		if (in->mod == 3) {
			v = get_reg(c, in, in->rm, size);
			set_reg(c, in, in->rm, size, r);
		} else {
			struct rmw rw;
			v = rmw_begin(c, &rw, mem_addr(c, in), size, true);
			while (!rmw_commit(c, &rw, &v, r))
				;
		}
		set_reg(c, in, in->reg, size, v);
		break;
	}
	case 0x88: case 0x89: {
		unsigned size = (op & 1) ? osz : 1;
		write_rm(c, in, size, get_reg(c, in, in->reg, size));
		break;
	}
	case 0x8a: case 0x8b: {
		unsigned size = (op & 1) ? osz : 1;
		set_reg(c, in, in->reg, size, read_rm(c, in, size));
		break;
	}
	case 0x8c: { /* MOV r/m, Sreg */
		unsigned s = in->reg & 7;
		if (s >= S_NSEG)
			raise_ud(c);
		if (in->mod == 3)
			set_reg(c, in, in->rm, osz, c->seg[s].sel);
		else
			mem_write(c, mem_addr(c, in), 2, c->seg[s].sel);
		break;
	}
	case 0x8d:
		if (in->mod == 3)
			raise_ud(c);
		set_reg(c, in, in->reg, osz, ea_offset(c, in));
		break;
	case 0x8e: { /* MOV Sreg, r/m */
		unsigned s = in->reg & 7;
		if (s == S_CS || s >= S_NSEG)
			raise_ud(c);
		softcpu_load_seg(c, (int)s, (uint16_t)read_rm(c, in, 2));
		if (s == S_SS) {
			c->intr_shadow = true;
			c->block_end = true;
		}
		break;
	}
	case 0x8f: /* POP r/m: RSP is incremented before the address is computed */
		if (in->mod == 3) {
			v = pop(c, osz);
			set_reg(c, in, in->rm, osz, v);
		} else {
			uint64_t saved_sp = c->r[R_SP];
			v = stack_peek(c, osz, 0);
			sp_add(c, osz);
			lin = mem_addr(c, in);
			uint64_t popped_sp = c->r[R_SP];
			c->r[R_SP] = saved_sp; /* precise if the store faults */
			mem_write(c, lin, osz, v);
			c->r[R_SP] = popped_sp;
		}
		break;

	case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
	case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
		set_reg(c, in, in->reg, osz, inc_dec(c, op >= 0x48, osz, get_reg(c, in, in->reg, osz)));
		break;
	case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
		push(c, osz, get_reg(c, in, in->reg, osz));
		break;
	case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
		v = pop(c, osz);
		set_reg(c, in, in->reg, osz, v);
		break;
	case 0x06: case 0x0e: case 0x16: case 0x1e:
		push(c, osz, c->seg[op >> 3].sel);
		break;
	case 0x07: case 0x17: case 0x1f: {
		uint16_t sel = (uint16_t)stack_peek(c, osz, 0);
		softcpu_load_seg(c, (int)(op >> 3), sel);
		sp_add(c, osz);
		if (op == 0x17) {
			c->intr_shadow = true;
			c->block_end = true;
		}
		break;
	}
	case OP_0F | 0xa0: case OP_0F | 0xa8:
		push(c, osz, c->seg[op == (OP_0F | 0xa0) ? S_FS : S_GS].sel);
		break;
	case OP_0F | 0xa1: case OP_0F | 0xa9: {
		uint16_t sel = (uint16_t)stack_peek(c, osz, 0);
		softcpu_load_seg(c, op == (OP_0F | 0xa1) ? S_FS : S_GS, sel);
		sp_add(c, osz);
		break;
	}
	case 0x60: { /* PUSHA */
		uint64_t sp = c->r[R_SP];
		for (unsigned r = 0; r < 8; r++)
			push(c, osz, r == R_SP ? sp : c->r[r]);
		break;
	}
	case 0x61: /* POPA */
		for (int r = 7; r >= 0; r--) {
			v = pop(c, osz);
			if (r != R_SP)
				set_reg(c, in, (unsigned)r, osz, v);
		}
		break;
	case 0x63: /* MOVSXD */
		v = read_rm(c, in, 4);
		set_reg(c, in, in->reg, osz, osz == 8 ? (uint64_t)(int64_t)(int32_t)v : v);
		break;
	case 0x68: case 0x6a:
		push(c, osz, in->imm);
		break;
	case 0x69: case 0x6b: case OP_0F | 0xaf:
		exec_imul(c, in, osz);
		break;
	case 0x6c: case 0x6d: case 0x6e: case 0x6f:
	case 0xa4: case 0xa5: case 0xa6: case 0xa7: case 0xaa: case 0xab: case 0xac: case 0xad: case 0xae: case 0xaf:
		string_op(c, in);
		return;

	case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
	case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
	case OP_0F | 0x80: case OP_0F | 0x81: case OP_0F | 0x82: case OP_0F | 0x83:
	case OP_0F | 0x84: case OP_0F | 0x85: case OP_0F | 0x86: case OP_0F | 0x87:
	case OP_0F | 0x88: case OP_0F | 0x89: case OP_0F | 0x8a: case OP_0F | 0x8b:
	case OP_0F | 0x8c: case OP_0F | 0x8d: case OP_0F | 0x8e: case OP_0F | 0x8f:
		exec_jcc(c, in);
		return;
	case OP_0F | 0x40: case OP_0F | 0x41: case OP_0F | 0x42: case OP_0F | 0x43:
	case OP_0F | 0x44: case OP_0F | 0x45: case OP_0F | 0x46: case OP_0F | 0x47:
	case OP_0F | 0x48: case OP_0F | 0x49: case OP_0F | 0x4a: case OP_0F | 0x4b:
	case OP_0F | 0x4c: case OP_0F | 0x4d: case OP_0F | 0x4e: case OP_0F | 0x4f:
		exec_cmov(c, in, osz);
		break;
	case OP_0F | 0x90: case OP_0F | 0x91: case OP_0F | 0x92: case OP_0F | 0x93:
	case OP_0F | 0x94: case OP_0F | 0x95: case OP_0F | 0x96: case OP_0F | 0x97:
	case OP_0F | 0x98: case OP_0F | 0x99: case OP_0F | 0x9a: case OP_0F | 0x9b:
	case OP_0F | 0x9c: case OP_0F | 0x9d: case OP_0F | 0x9e: case OP_0F | 0x9f:
		write_rm(c, in, 1, cond_true(c, op & 15));
		break;

	case 0x90:
		if (in->rex & 1) { /* XCHG r8, rAX */
			v = get_reg(c, in, in->reg, osz);
			set_reg(c, in, in->reg, osz, get_reg(c, in, R_AX, osz));
			set_reg(c, in, R_AX, osz, v);
		}
		break; /* NOP, PAUSE */
	case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
		v = get_reg(c, in, in->reg, osz);
		set_reg(c, in, in->reg, osz, get_reg(c, in, R_AX, osz));
		set_reg(c, in, R_AX, osz, v);
		break;
	case 0x98: /* CBW CWDE CDQE */
		set_reg(c, in, R_AX, osz, (uint64_t)sign_extend(c->r[R_AX], osz / 2));
		break;
	case 0x99: /* CWD CDQ CQO */
		set_reg(c, in, R_DX, osz, sign_extend(c->r[R_AX], osz) < 0 ? ~0ull : 0);
		break;
	case 0x9b: /* FWAIT */
		if ((c->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
			softcpu_raise(c, EXC_NM, 0, false);
		softcpu_x87_wait(c);
		break;
	case 0x9c: /* PUSHF: VM and RF read as 0 */
		push(c, osz, softcpu_get_rflags(c) & ~(uint64_t)(F_VM | F_RF));
		break;
	case 0x9d: { /* POPF */
		v = pop(c, osz);
		uint64_t keep = F_VM | F_RF;
		if (c->cpl > 0)
			keep |= F_IOPL;
		if ((c->cr0 & CR0_PE) && c->cpl > iopl(c))
			keep |= F_IF;
		if (osz == 2)
			keep |= ~0xffffull;
		flags_materialize(c);
		bool was_if = c->rflags & F_IF;
		softcpu_set_rflags(c, (v & ~keep) | (c->rflags & keep));
		if (!was_if && (c->rflags & F_IF))
			c->block_end = true; /* interrupts may be deliverable now */
		break;
	}
	case 0x9e: /* SAHF */
		update_flags(c, F_SF | F_ZF | F_AF | F_PF | F_CF, (c->r[R_AX] >> 8) & 0xd5);
		break;
	case 0x9f: /* LAHF */
		c->r[R_AX] = (c->r[R_AX] & ~0xff00ull) | (((softcpu_get_rflags(c) & 0xd7) | 0x02) << 8);
		break;
	case 0xa0: case 0xa1:
		set_reg(c, in, R_AX, (op & 1) ? osz : 1, mem_read(c, linear(c, in->seg, in->imm), (op & 1) ? osz : 1));
		break;
	case 0xa2: case 0xa3:
		mem_write(c, linear(c, in->seg, in->imm), (op & 1) ? osz : 1, c->r[R_AX]);
		break;
	case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
		set_reg(c, in, in->reg, 1, in->imm);
		break;
	case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
		set_reg(c, in, in->reg, osz, in->imm);
		break;
	case 0xc6: case 0xc7:
		if ((in->reg & 7) != 0)
			raise_ud(c);
		write_rm(c, in, (op & 1) ? osz : 1, in->imm);
		break;

	case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
		unsigned size = (op & 1) ? osz : 1;
		unsigned count = op <= 0xc1 ? (unsigned)in->imm : op <= 0xd1 ? 1 : (unsigned)c->r[R_CX];
		count &= 0xff;
		if (in->mod == 3) {
			set_reg(c, in, in->rm, size, shift_op(c, in->reg & 7, size, get_reg(c, in, in->rm, size), count));
		} else {
			lin = mem_addr(c, in);
			v = shift_op(c, in->reg & 7, size, mem_read_rmw(c, lin, size), count);
			mem_write(c, lin, size, v);
		}
		break;
	}
	case OP_0F | 0xa4: case OP_0F | 0xa5: case OP_0F | 0xac: case OP_0F | 0xad: {
		unsigned count = (op & 1) ? (unsigned)c->r[R_CX] : (unsigned)in->imm;
		bool left = op <= (OP_0F | 0xa5);
		uint64_t src = get_reg(c, in, in->reg, osz);
		if (in->mod == 3) {
			v = double_shift(c, left, osz, get_reg(c, in, in->rm, osz), src, count & 0xff);
			set_reg(c, in, in->rm, osz, v);
		} else {
			lin = mem_addr(c, in);
			v = double_shift(c, left, osz, mem_read_rmw(c, lin, osz), src, count & 0xff);
			mem_write(c, lin, osz, v);
		}
		break;
	}

	case 0xc2: case 0xc3: /* RET near */
		exec_ret_near(c, in);
		return;
	case 0xca: case 0xcb: /* RET far */
		far_return(c, osz, op == 0xca ? in->imm : 0, false);
		return;
	case 0xcf: /* IRET */
		far_return(c, osz, 0, true);
		return;
	case 0xc8: { /* ENTER */
		unsigned level = in->imm2 & 31;
		uint64_t frame_size = in->imm & 0xffff;
		push(c, osz, c->r[R_BP]);
		uint64_t frame = c->r[R_SP] & sp_mask(c);
		for (unsigned i = 1; i < level; i++) {
			uint64_t bp = (c->r[R_BP] - (uint64_t)i * osz) & sp_mask(c);
			push(c, osz, mem_read(c, linear(c, S_SS, bp), osz));
		}
		if (level)
			push(c, osz, frame);
		set_reg(c, in, R_BP, osz, frame);
		c->r[R_SP] = (c->r[R_SP] & ~sp_mask(c)) | ((c->r[R_SP] - frame_size) & sp_mask(c));
		break;
	}
	case 0xc9: { /* LEAVE */
		uint64_t m = sp_mask(c);
		v = mem_read(c, linear(c, S_SS, c->r[R_BP] & m), osz);
		c->r[R_SP] = (c->r[R_SP] & ~m) | ((c->r[R_BP] + osz) & m);
		set_reg(c, in, R_BP, osz, v);
		break;
	}
	case 0xcc:
		soft_int(c, in, EXC_BP, INTR_SOFTWARE);
		return;
	case 0xcd:
		soft_int(c, in, (int)(in->imm & 0xff), INTR_SOFTWARE);
		return;
	case 0xce:
		if (flag_of(c)) {
			soft_int(c, in, EXC_OF, INTR_SOFTWARE);
			return;
		}
		break;
	case 0xf1:
		soft_int(c, in, EXC_DB, INTR_EXCEPTION);
		return;

	case 0xd7: /* XLAT */
		set_reg(c, in, R_AX, 1,
			mem_read(c, linear(c, in->seg, (c->r[R_BX] + (c->r[R_AX] & 0xff)) & size_mask(in->asz)), 1));
		break;
	case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
		softcpu_exec_x87(c, in);
		break;

	case 0xe0: case 0xe1: case 0xe2: { /* LOOPNE LOOPE LOOP */
		uint64_t cnt = (c->r[R_CX] - 1) & size_mask(in->asz);
		set_areg(c, R_CX, in->asz, cnt);
		bool take = cnt != 0 && (op == 0xe2 || (flag_zf(c) == (op == 0xe1)));
		if (take) {
			jump_to(c, next_rip(c, in) + in->imm, osz);
			return;
		}
		break;
	}
	case 0xe3: /* JCXZ */
		if ((c->r[R_CX] & size_mask(in->asz)) == 0) {
			jump_to(c, next_rip(c, in) + in->imm, osz);
			return;
		}
		break;
	case 0xe4: case 0xe5: case 0xec: case 0xed: {
		unsigned size = (op & 1) ? (osz == 8 ? 4 : osz) : 1;
		uint16_t port = op <= 0xe5 ? (uint8_t)in->imm : (uint16_t)c->r[R_DX];
		check_io(c);
		set_reg(c, in, R_AX, size, c->m->pio_read(c->m->bus_opaque, port, size));
		break;
	}
	case 0xe6: case 0xe7: case 0xee: case 0xef: {
		unsigned size = (op & 1) ? (osz == 8 ? 4 : osz) : 1;
		uint16_t port = op <= 0xe7 ? (uint8_t)in->imm : (uint16_t)c->r[R_DX];
		check_io(c);
		c->m->pio_write(c->m->bus_opaque, port, size, c->r[R_AX] & size_mask(size));
		break;
	}
	case 0xe8: /* CALL near */
		exec_call_rel(c, in);
		return;
	case 0xe9: case 0xeb:
		jump_to(c, next_rip(c, in) + in->imm, osz);
		return;
	case 0xea: /* JMP ptr16:16/32 */
		far_jump(c, in->imm2, in->imm, osz);
		return;
	case 0x9a: { /* CALL ptr16:16/32 */
		uint16_t cs = c->seg[S_CS].sel;
		v = next_rip(c, in);
		push(c, osz, cs);
		push(c, osz, v);
		far_jump(c, in->imm2, in->imm, osz);
		return;
	}

	case 0xf4: /* HLT */
		require_cpl0(c);
		c->halted = true;
		c->block_end = true;
		break;
	case 0xf5:
		update_flags(c, F_CF, flag_cf(c) ? 0 : F_CF);
		break;
	case 0xf8: update_flags(c, F_CF, 0); break;
	case 0xf9: update_flags(c, F_CF, F_CF); break;
	case 0xfc: c->rflags &= ~(uint64_t)F_DF; break;
	case 0xfd: c->rflags |= F_DF; break;
	case 0xfa: /* CLI */
		if ((c->cr0 & CR0_PE) && c->cpl > iopl(c))
			raise_gp(c, 0);
		c->rflags &= ~(uint64_t)F_IF;
		break;
	case 0xfb: /* STI: interrupts wait until after the next instruction */
		if ((c->cr0 & CR0_PE) && c->cpl > iopl(c))
			raise_gp(c, 0);
		if (!(c->rflags & F_IF)) {
			c->rflags |= F_IF;
			c->intr_shadow = true;
			c->block_end = true;
		}
		break;

	case 0xf6: case 0xf7: {
		unsigned size = (op & 1) ? osz : 1, r = in->reg & 7;
		if (r < 2) { /* TEST */
			alu(c, 4, size, read_rm(c, in, size), in->imm & size_mask(size));
		} else if (r == 2 || r == 3) { /* NOT, NEG */
			if (in->mod == 3) {
				v = get_reg(c, in, in->rm, size);
				set_reg(c, in, in->rm, size, r == 2 ? ~v & size_mask(size) : alu(c, 5, size, 0, v));
			} else {
				struct rmw rw;
				uint64_t res;
				v = rmw_begin(c, &rw, mem_addr(c, in), size, is_locked(in));
				do
					res = r == 2 ? ~v & size_mask(size) : alu(c, 5, size, 0, v);
				while (!rmw_commit(c, &rw, &v, res));
			}
		} else {
			muldiv(c, in, r, size, read_rm(c, in, size));
		}
		break;
	}
	case 0xfe: case 0xff: {
		unsigned size = op == 0xfe ? 1 : osz, r = in->reg & 7;
		if (r < 2) { /* INC, DEC */
			if (in->mod == 3) {
				set_reg(c, in, in->rm, size, inc_dec(c, r, size, get_reg(c, in, in->rm, size)));
			} else {
				struct rmw rw;
				uint64_t old = rmw_begin(c, &rw, mem_addr(c, in), size, is_locked(in));
				do
					v = inc_dec(c, r, size, old);
				while (!rmw_commit(c, &rw, &old, v));
			}
			break;
		}
		if (op == 0xfe)
			raise_ud(c);
		switch (r) {
		case 2: /* CALL near indirect */
			v = read_rm(c, in, osz) & size_mask(osz);
			if (c->code_bits == 64 && !canonical(v))
				raise_gp(c, 0);
			push(c, osz, next_rip(c, in));
			c->rip = v;
			return;
		case 4: /* JMP near indirect */
			jump_to(c, read_rm(c, in, osz), osz);
			return;
		case 3: case 5: { /* CALL/JMP far indirect: m16:16/32/64 */
			if (in->mod == 3)
				raise_ud(c);
			lin = mem_addr(c, in);
			uint64_t off = mem_read(c, lin, osz);
			uint16_t sel = (uint16_t)mem_read(c, lin + osz, 2);
			if (r == 3) {
				uint16_t cs = c->seg[S_CS].sel;
				uint64_t ret = next_rip(c, in);
				push(c, osz, cs);
				push(c, osz, ret);
			}
			far_jump(c, sel, off, osz);
			return;
		}
		case 6:
			push(c, osz, read_rm(c, in, osz));
			break;
		default:
			raise_ud(c);
		}
		break;
	}

	/* ---- 0F map ---- */
	case OP_0F | 0x00: exec_grp6(c, in); return;
	case OP_0F | 0x01: exec_grp7(c, in); return;
	case OP_0F | 0x05: exec_syscall(c, in); return;
	case OP_0F | 0x07: exec_sysret(c, in); return;
	case OP_0F | 0x06: require_cpl0(c); c->cr0 &= ~(uint64_t)CR0_TS; break;
	case OP_0F | 0x08: case OP_0F | 0x09: require_cpl0(c); break; /* INVD, WBINVD: no caches */
	case OP_0F | 0x0b: raise_ud(c); /* UD2: the guest asked for it, no log */
	case OP_0F | 0x0d: case OP_0F | 0x18: case OP_0F | 0x19: case OP_0F | 0x1a: case OP_0F | 0x1b:
	case OP_0F | 0x1c: case OP_0F | 0x1d: case OP_0F | 0x1e: case OP_0F | 0x1f:
		break; /* prefetch hints and multi-byte NOP */
	case OP_0F | 0x20: case OP_0F | 0x22: { /* MOV r, CRn / MOV CRn, r */
		unsigned cr = in->reg;
		require_cpl0(c);
		if (cr != 0 && cr != 2 && cr != 3 && cr != 4 && cr != 8)
			raise_ud(c);
		unsigned size = c->long64 ? 8 : 4;
		if (op == (OP_0F | 0x20)) {
			uint64_t val = cr == 0 ? c->cr0 : cr == 2 ? c->cr2 : cr == 3 ? c->cr3 : cr == 4 ? c->cr4 : c->cr8;
			set_reg(c, in, in->rm, size, val);
		} else {
			softcpu_write_cr(c, (int)cr, get_reg(c, in, in->rm, size));
		}
		break;
	}
	case OP_0F | 0x21: case OP_0F | 0x23: { /* MOV r, DRn / MOV DRn, r: stored, no breakpoints */
		unsigned dr = in->reg;
		require_cpl0(c);
		if (dr > 7 || ((dr == 4 || dr == 5) && (c->cr4 & 0x8)))
			raise_ud(c);
		if (dr == 4 || dr == 5)
			dr += 2;
		unsigned size = c->long64 ? 8 : 4;
		if (op == (OP_0F | 0x21))
			set_reg(c, in, in->rm, size, c->dr[dr]);
		else
			c->dr[dr] = get_reg(c, in, in->rm, size);
		break;
	}
	case OP_0F | 0x30: /* WRMSR */
		require_cpl0(c);
		if (!softcpu_wrmsr(c, (uint32_t)c->r[R_CX], (c->r[R_AX] & 0xffffffffu) | (c->r[R_DX] << 32))) {
			if (c->m->unknown_msr_hook)
				c->m->unknown_msr_hook(c, (uint32_t)c->r[R_CX], true);
			raise_gp(c, 0);
		}
		break;
	case OP_0F | 0x32: { /* RDMSR */
		uint64_t val;
		require_cpl0(c);
		if (!softcpu_rdmsr(c, (uint32_t)c->r[R_CX], &val)) {
			if (c->m->unknown_msr_hook)
				c->m->unknown_msr_hook(c, (uint32_t)c->r[R_CX], false);
			raise_gp(c, 0);
		}
		c->r[R_AX] = (uint32_t)val;
		c->r[R_DX] = val >> 32;
		break;
	}
	case OP_0F | 0x31: { /* RDTSC */
		if ((c->cr4 & 0x4) && c->cpl > 0)
			raise_gp(c, 0);
		uint64_t t = softcpu_rdtsc(c);
		c->r[R_AX] = (uint32_t)t;
		c->r[R_DX] = t >> 32;
		break;
	}
	case OP_0F | 0xa2: { /* CPUID */
		uint32_t out[4];
		if (c->m->cpuid_hook)
			c->m->cpuid_hook(c, (uint32_t)c->r[R_AX]);
		softcpu_cpuid(c, (uint32_t)c->r[R_AX], (uint32_t)c->r[R_CX], out);
		c->r[R_AX] = out[0];
		c->r[R_BX] = out[1];
		c->r[R_CX] = out[2];
		c->r[R_DX] = out[3];
		break;
	}
	case OP_0F | 0xa3: bit_op(c, in, 0, get_reg(c, in, in->reg, osz), false); break;
	case OP_0F | 0xab: bit_op(c, in, 1, get_reg(c, in, in->reg, osz), false); break;
	case OP_0F | 0xb3: bit_op(c, in, 2, get_reg(c, in, in->reg, osz), false); break;
	case OP_0F | 0xbb: bit_op(c, in, 3, get_reg(c, in, in->reg, osz), false); break;
	case OP_0F | 0xba:
		if ((in->reg & 7) < 4)
			raise_ud(c);
		bit_op(c, in, (in->reg & 7) - 4, in->imm & 0xff, true);
		break;
	case OP_0F | 0xb0: case OP_0F | 0xb1: { /* CMPXCHG */
		unsigned size = (op & 1) ? osz : 1;
		uint64_t acc = get_reg(c, in, R_AX, size), src = get_reg(c, in, in->reg, size);
		if (in->mod == 3) {
			v = get_reg(c, in, in->rm, size);
			alu(c, 7, size, acc, v);
			if (acc == v)
				set_reg(c, in, in->rm, size, src);
			else
				set_reg(c, in, R_AX, size, v);
		} else {
			struct rmw rw; /* the locked cycle writes the old value back when they differ */
			v = rmw_begin(c, &rw, mem_addr(c, in), size, is_locked(in));
			while (!rmw_commit(c, &rw, &v, acc == v ? src : v))
				;
			alu(c, 7, size, acc, v);
			if (acc != v)
				set_reg(c, in, R_AX, size, v);
		}
		break;
	}
	case OP_0F | 0xc0: case OP_0F | 0xc1: { /* XADD */
		unsigned size = (op & 1) ? osz : 1;
		uint64_t src = get_reg(c, in, in->reg, size);
		if (in->mod == 3) {
			v = get_reg(c, in, in->rm, size);
			uint64_t sum = alu(c, 0, size, v, src);
			set_reg(c, in, in->reg, size, v);
			set_reg(c, in, in->rm, size, sum);
		} else {
			struct rmw rw;
			v = rmw_begin(c, &rw, mem_addr(c, in), size, is_locked(in));
			while (!rmw_commit(c, &rw, &v, (v + src) & size_mask(size)))
				;
			alu(c, 0, size, v, src);
			set_reg(c, in, in->reg, size, v);
		}
		break;
	}
	case OP_0F | 0xc7:
		if ((in->reg & 7) != 1)
			softcpu_unimplemented(c, in);
		cmpxchg_wide(c, in);
		break;
	case OP_0F | 0xb2: case OP_0F | 0xb4: case OP_0F | 0xb5: { /* LSS LFS LGS */
		if (in->mod == 3)
			raise_ud(c);
		lin = mem_addr(c, in);
		v = mem_read(c, lin, osz);
		uint16_t sel = (uint16_t)mem_read(c, lin + osz, 2);
		int s = op == (OP_0F | 0xb2) ? S_SS : op == (OP_0F | 0xb4) ? S_FS : S_GS;
		softcpu_load_seg(c, s, sel);
		set_reg(c, in, in->reg, osz, v);
		break;
	}
	case OP_0F | 0xb6: case OP_0F | 0xb7:
		set_reg(c, in, in->reg, osz, read_rm(c, in, op == (OP_0F | 0xb6) ? 1 : 2));
		break;
	case OP_0F | 0xbe: case OP_0F | 0xbf: {
		unsigned from = op == (OP_0F | 0xbe) ? 1 : 2;
		set_reg(c, in, in->reg, osz, (uint64_t)sign_extend(read_rm(c, in, from), from));
		break;
	}
	case OP_0F | 0xb8: /* POPCNT (F3 only) */
		if (!(in->pfx & PFX_REP))
			raise_ud(c);
		v = read_rm(c, in, osz);
		set_reg(c, in, in->reg, osz, (uint64_t)__builtin_popcountll(v));
		set_flags_result(c, 8, v == 0 ? 0 : 1, 0, 0);
		update_flags(c, F_SF | F_PF | F_AF, 0);
		break;
	case OP_0F | 0xbc: case OP_0F | 0xbd: { /* BSF, BSR; F3 BD is LZCNT (F3 BC would be TZCNT: BMI1, not advertised) */
		v = read_rm(c, in, osz);
		if (op == (OP_0F | 0xbd) && (in->pfx & PFX_REP)) {
			uint64_t count = v == 0 ? 8u * osz : (uint64_t)(__builtin_clzll(v) - (64 - 8 * (int)osz));
			set_reg(c, in, in->reg, osz, count);
			update_flags(c, F_CF | F_ZF, (v == 0 ? F_CF : 0) | (count == 0 ? F_ZF : 0));
			break;
		}
		if (v == 0) {
			update_flags(c, F_ZF, F_ZF);
		} else {
			set_reg(c, in, in->reg, osz,
				op == (OP_0F | 0xbc) ? (uint64_t)__builtin_ctzll(v) : (uint64_t)(63 - __builtin_clzll(v)));
			update_flags(c, F_ZF, 0);
		}
		break;
	}
	case OP_0F | 0xc8: case OP_0F | 0xc9: case OP_0F | 0xca: case OP_0F | 0xcb:
	case OP_0F | 0xcc: case OP_0F | 0xcd: case OP_0F | 0xce: case OP_0F | 0xcf: /* BSWAP */
		if (osz == 8)
			c->r[in->reg] = __builtin_bswap64(c->r[in->reg]);
		else if (osz == 4)
			c->r[in->reg] = __builtin_bswap32((uint32_t)c->r[in->reg]);
		else
			set_reg(c, in, in->reg, 2, 0); /* undefined; zero, as Intel CPUs do */
		break;
	case OP_0F | 0xae: {
		unsigned r = in->reg & 7;
		if (in->mod == 3) {
			if (r < 5)
				softcpu_unimplemented(c, in);
			/* The host is x86 too: its TSO already orders what LFENCE and
			 * SFENCE order; MFENCE also orders stores before loads. */
			if (r == 6)
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
			else
				__atomic_signal_fence(__ATOMIC_SEQ_CST);
			break;
		}
		switch (r) {
		case 0: softcpu_fxsave(c, in, mem_addr(c, in)); break;
		case 1: softcpu_fxrstor(c, in, mem_addr(c, in)); break;
		case 2: case 3:
			softcpu_exec_sse(c, in);
			break;
		case 7: break; /* CLFLUSH */
		default: softcpu_unimplemented(c, in);
		}
		break;
	}

	case OP_TOOLONG:
		raise_gp(c, 0);
	case OP_UD:
		softcpu_unimplemented(c, in);
	default:
		if (op >= OP_0F && op < OP_UD) {
			softcpu_exec_sse(c, in);
			break;
		}
		softcpu_unimplemented(c, in);
	}
	c->rip = next_rip(c, in);
}

/* ---- threaded dispatch ----
 * softcpu_exec_prepare() picks, once per decoded instruction, a handler for
 * the forms that dominate compiled code: ALU operations, moves, loads and
 * stores at operand size 32/64, near branches.  Everything else (byte and
 * 16-bit forms, memory destinations of ALU operations, system instructions)
 * takes exec_one's switch.  Each handler ends by jumping straight to the
 * next instruction's handler (GCC's computed goto): the host's branch
 * predictor then learns one indirect jump per handler, where the single
 * jump of a shared switch mispredicts on most instructions. */
enum handler {
	H_GENERIC,          /* exec_one */
	H_ALU,              /* ALU forms: alu_handler() */
	/* Handlers that access memory or set flags come in pairs, for operand
	 * size 4 and 8 (sized()): a constant size spares the memory and flag
	 * helpers' size switches and shifts. */
	H_MOV_LOAD = H_ALU + 8 * 3 * 2, /* MOV reg, r/m (8B) */
	H_MOV_STORE = H_MOV_LOAD + 2,   /* MOV r/m, reg (89) */
	H_TEST = H_MOV_STORE + 2,       /* TEST r/m, reg (85) */
	H_IMUL = H_TEST + 2,            /* IMUL reg, r/m(, imm) */
	H_CMOV = H_IMUL + 2,            /* CMOVcc reg, r/m */
	H_TEST_IMM = H_CMOV + 2,        /* TEST r/m, imm (F7 /0) */
	H_CMP_MEM_REG = H_TEST_IMM + 2, /* CMP mem, reg (39) */
	H_CMP_MEM_IMM = H_CMP_MEM_REG + 2, /* CMP mem, imm (81 /7, 83 /7) */
	H_INC = H_CMP_MEM_IMM + 2,      /* INC reg (FF /0 with a register) */
	H_DEC = H_INC + 2,              /* DEC reg (FF /1 with a register) */
	H_SHIFT_IMM = H_DEC + 2,        /* SHL/SHR/SAR register, imm8 (C1 /4-/7) */
	H_MOV_IMM = H_SHIFT_IMM + 2,    /* MOV reg, imm (B8+r) */
	H_MOV_IMM_RM,       /* MOV reg, imm (C7 /0 with a register) */
	H_LEA,
	H_MOVZX,            /* MOVZX reg, r/m8 or r/m16 */
	H_MOVSXD,           /* MOVSXD reg64, r/m32 */
	H_SETCC,            /* SETcc r/m8 (any operand size) */
	H_NOP,              /* NOP, PAUSE, multi-byte NOP, prefetch hints */
	H_BYTE_TEST,        /* TEST r/m8, reg8 (84) */
	H_BYTE_TEST_IMM,    /* TEST r/m8, imm8 (F6 /0) */
	H_BYTE_STORE,       /* MOV r/m8, reg8 (88) */
	H_BYTE_LOAD,        /* MOV reg8, r/m8 (8A) */
	H_PUSH, H_POP,      /* 50+r, 58+r */
	H_JCC, H_JMP, H_CALL, H_RET,
	H_COUNT
};
_Static_assert(H_COUNT <= 256, "struct insn stores the handler in a byte");

/* The ALU forms with a handler each per operation and size (4 or 8). */
enum {
	ALU_FORM_RM_REG, /* op r/m, reg with a register r/m (01, 09, ... 39) */
	ALU_FORM_REG_RM, /* op reg, r/m (03, 0B, ... 3B) */
	ALU_FORM_RM_IMM, /* op r/m, imm with a register r/m (81, 83) */
};

static uint8_t sized(enum handler h, unsigned osz)
{
	return (uint8_t)(h + (osz == 8));
}

static uint8_t alu_handler(unsigned aop, unsigned form, unsigned osz)
{
	return sized(H_ALU + (aop * 3 + form) * 2, osz);
}

void softcpu_exec_prepare(struct insn *in)
{
	unsigned op = in->op, reg_op = in->reg & 7;
	bool reg_form = in->mod == 3;
	in->handler = H_GENERIC;
	switch (op) { /* any operand size */
	case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
		if (in->osz == 8)
			in->handler = H_PUSH;
		return;
	case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
		if (in->osz == 8)
			in->handler = H_POP;
		return;
	case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
	case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
	case OP_0F | 0x80: case OP_0F | 0x81: case OP_0F | 0x82: case OP_0F | 0x83:
	case OP_0F | 0x84: case OP_0F | 0x85: case OP_0F | 0x86: case OP_0F | 0x87:
	case OP_0F | 0x88: case OP_0F | 0x89: case OP_0F | 0x8a: case OP_0F | 0x8b:
	case OP_0F | 0x8c: case OP_0F | 0x8d: case OP_0F | 0x8e: case OP_0F | 0x8f:
		in->handler = H_JCC;
		return;
	case 0xe9: case 0xeb: in->handler = H_JMP; return;
	case 0xe8: in->handler = H_CALL; return;
	case 0xc2: case 0xc3: in->handler = H_RET; return;
	case OP_0F | 0x90: case OP_0F | 0x91: case OP_0F | 0x92: case OP_0F | 0x93:
	case OP_0F | 0x94: case OP_0F | 0x95: case OP_0F | 0x96: case OP_0F | 0x97:
	case OP_0F | 0x98: case OP_0F | 0x99: case OP_0F | 0x9a: case OP_0F | 0x9b:
	case OP_0F | 0x9c: case OP_0F | 0x9d: case OP_0F | 0x9e: case OP_0F | 0x9f:
		in->handler = H_SETCC;
		return;
	case 0x84: in->handler = H_BYTE_TEST; return;
	case 0x88: in->handler = H_BYTE_STORE; return;
	case 0x8a: in->handler = H_BYTE_LOAD; return;
	case 0xf6:
		if (reg_op < 2)
			in->handler = H_BYTE_TEST_IMM;
		return;
	case 0x90: /* with REX.B it is XCHG r8, rAX */
		if (!(in->rex & 1))
			in->handler = H_NOP;
		return;
	case OP_0F | 0x0d: case OP_0F | 0x18: case OP_0F | 0x19: case OP_0F | 0x1a: case OP_0F | 0x1b:
	case OP_0F | 0x1c: case OP_0F | 0x1d: case OP_0F | 0x1e: case OP_0F | 0x1f:
		in->handler = H_NOP;
		return;
	default: break;
	}
	if (in->osz == 2)
		return;
	if (op < 0x40 && ((op & 7) == 1 || (op & 7) == 3)) {
		if ((op & 7) == 3)
			in->handler = alu_handler(op >> 3, ALU_FORM_REG_RM, in->osz);
		else if (reg_form)
			in->handler = alu_handler(op >> 3, ALU_FORM_RM_REG, in->osz);
		else if (op == 0x39)
			in->handler = sized(H_CMP_MEM_REG, in->osz);
		return;
	}
	switch (op) { /* operand size 4 or 8 */
	case 0x81: case 0x83:
		if (reg_form)
			in->handler = alu_handler(reg_op, ALU_FORM_RM_IMM, in->osz);
		else if (reg_op == 7)
			in->handler = sized(H_CMP_MEM_IMM, in->osz);
		break;
	case 0xf7:
		if (reg_op < 2)
			in->handler = sized(H_TEST_IMM, in->osz);
		break;
	case 0x85: in->handler = sized(H_TEST, in->osz); break;
	case 0x89: in->handler = sized(H_MOV_STORE, in->osz); break;
	case 0x8b: in->handler = sized(H_MOV_LOAD, in->osz); break;
	case 0x8d:
		if (!reg_form)
			in->handler = H_LEA;
		break;
	case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
		in->handler = H_MOV_IMM;
		break;
	case 0xc7:
		if (reg_form && reg_op == 0)
			in->handler = H_MOV_IMM_RM;
		break;
	case 0xc1:
		if (reg_form && reg_op >= 4)
			in->handler = sized(H_SHIFT_IMM, in->osz);
		break;
	case 0xff:
		if (reg_form && reg_op < 2)
			in->handler = sized(reg_op ? H_DEC : H_INC, in->osz);
		break;
	case OP_0F | 0xb6: case OP_0F | 0xb7:
		in->handler = H_MOVZX;
		break;
	case 0x63:
		if (in->osz == 8)
			in->handler = H_MOVSXD;
		break;
	case 0x69: case 0x6b: case OP_0F | 0xaf:
		in->handler = sized(H_IMUL, in->osz);
		break;
	case OP_0F | 0x40: case OP_0F | 0x41: case OP_0F | 0x42: case OP_0F | 0x43:
	case OP_0F | 0x44: case OP_0F | 0x45: case OP_0F | 0x46: case OP_0F | 0x47:
	case OP_0F | 0x48: case OP_0F | 0x49: case OP_0F | 0x4a: case OP_0F | 0x4b:
	case OP_0F | 0x4c: case OP_0F | 0x4d: case OP_0F | 0x4e: case OP_0F | 0x4f:
		in->handler = sized(H_CMOV, in->osz);
		break;
	default:
		break;
	}
}

/* Execute up to n instructions: see softcpu_exec_prepare.  icount is
 * advanced per block: an instruction that faults mid-block leaves it
 * counting the instructions after it too (icount is for run limits and
 * statistics, not architectural). */
void softcpu_exec(struct softcpu *c, const struct insn *in, unsigned n)
{
#define ALU_LABELS(aop)                                                                        \
	[H_ALU + (aop * 3 + ALU_FORM_RM_REG) * 2] = &&alu_rm_reg_##aop##_4,                    \
	[H_ALU + (aop * 3 + ALU_FORM_RM_REG) * 2 + 1] = &&alu_rm_reg_##aop##_8,                \
	[H_ALU + (aop * 3 + ALU_FORM_REG_RM) * 2] = &&alu_reg_rm_##aop##_4,                    \
	[H_ALU + (aop * 3 + ALU_FORM_REG_RM) * 2 + 1] = &&alu_reg_rm_##aop##_8,                \
	[H_ALU + (aop * 3 + ALU_FORM_RM_IMM) * 2] = &&alu_rm_imm_##aop##_4,                    \
	[H_ALU + (aop * 3 + ALU_FORM_RM_IMM) * 2 + 1] = &&alu_rm_imm_##aop##_8,
	static const void *const handlers[H_COUNT] = {
		[H_GENERIC] = &&generic,
		ALU_LABELS(0) ALU_LABELS(1) ALU_LABELS(2) ALU_LABELS(3)
		ALU_LABELS(4) ALU_LABELS(5) ALU_LABELS(6) ALU_LABELS(7)
		[H_MOV_LOAD] = &&mov_load_4, [H_MOV_LOAD + 1] = &&mov_load_8,
		[H_MOV_STORE] = &&mov_store_4, [H_MOV_STORE + 1] = &&mov_store_8,
		[H_TEST] = &&test_4, [H_TEST + 1] = &&test_8,
		[H_IMUL] = &&imul_4, [H_IMUL + 1] = &&imul_8,
		[H_CMOV] = &&cmov_4, [H_CMOV + 1] = &&cmov_8,
		[H_TEST_IMM] = &&test_imm_4, [H_TEST_IMM + 1] = &&test_imm_8,
		[H_CMP_MEM_REG] = &&cmp_mem_reg_4, [H_CMP_MEM_REG + 1] = &&cmp_mem_reg_8,
		[H_CMP_MEM_IMM] = &&cmp_mem_imm_4, [H_CMP_MEM_IMM + 1] = &&cmp_mem_imm_8,
		[H_MOV_IMM] = &&mov_imm, [H_MOV_IMM_RM] = &&mov_imm_rm,
		[H_INC] = &&inc_4, [H_INC + 1] = &&inc_8, [H_DEC] = &&dec_4, [H_DEC + 1] = &&dec_8,
		[H_SHIFT_IMM] = &&shift_imm_4, [H_SHIFT_IMM + 1] = &&shift_imm_8, [H_LEA] = &&lea,
		[H_MOVZX] = &&movzx, [H_MOVSXD] = &&movsxd, [H_SETCC] = &&setcc, [H_NOP] = &&nop,
		[H_BYTE_TEST] = &&byte_test, [H_BYTE_TEST_IMM] = &&byte_test_imm,
		[H_BYTE_STORE] = &&byte_store, [H_BYTE_LOAD] = &&byte_load,
		[H_PUSH] = &&push, [H_POP] = &&pop,
		[H_JCC] = &&jcc, [H_JMP] = &&jmp, [H_CALL] = &&call, [H_RET] = &&ret,
	};
#undef ALU_LABELS
	const struct insn *end = in + n;
	uint64_t v;
	c->block_end = false;
	c->icount += n;

/* To the next instruction's handler, or out at the end of the block. */
#define DISPATCH()                               \
	do {                                     \
		if (unlikely(in == end))         \
			goto done;               \
		goto *handlers[in->handler];     \
	} while (0)
/* The instruction completed without changing control flow. */
#define NEXT()                                   \
	do {                                     \
		c->rip = next_rip(c, in);        \
		in++;                            \
		DISPATCH();                      \
	} while (0)
/* Same after a memory write, which may have hit this block's code page. */
#define NEXT_AFTER_WRITE()                       \
	do {                                     \
		c->rip = next_rip(c, in);        \
		in++;                            \
		if (unlikely(c->block_end))      \
			goto done;               \
		DISPATCH();                      \
	} while (0)

	DISPATCH();

generic:
	exec_one(c, in++);
	if (unlikely(c->block_end))
		goto done;
	DISPATCH();

/* The ALU handlers per operation and size; results are already truncated
 * to the size, so storing them whole zero-extends 32-bit ones. */
#define ALU_HANDLERS(aop, size)                                                                        \
	alu_rm_reg_##aop##_##size:                                                                     \
	v = alu(c, aop, size, c->r[in->rm] & size_mask(size), c->r[in->reg] & size_mask(size));       \
	if (aop != 7)                                                                                  \
		c->r[in->rm] = v;                                                                      \
	NEXT();                                                                                        \
	alu_reg_rm_##aop##_##size:                                                                     \
	v = alu(c, aop, size, c->r[in->reg] & size_mask(size), read_rm(c, in, size));                 \
	if (aop != 7)                                                                                  \
		c->r[in->reg] = v;                                                                     \
	NEXT();                                                                                        \
	alu_rm_imm_##aop##_##size:                                                                     \
	v = alu(c, aop, size, c->r[in->rm] & size_mask(size), in->imm & size_mask(size));             \
	if (aop != 7)                                                                                  \
		c->r[in->rm] = v;                                                                      \
	NEXT();
	ALU_HANDLERS(0, 4) ALU_HANDLERS(1, 4) ALU_HANDLERS(2, 4) ALU_HANDLERS(3, 4)
	ALU_HANDLERS(4, 4) ALU_HANDLERS(5, 4) ALU_HANDLERS(6, 4) ALU_HANDLERS(7, 4)
	ALU_HANDLERS(0, 8) ALU_HANDLERS(1, 8) ALU_HANDLERS(2, 8) ALU_HANDLERS(3, 8)
	ALU_HANDLERS(4, 8) ALU_HANDLERS(5, 8) ALU_HANDLERS(6, 8) ALU_HANDLERS(7, 8)
#undef ALU_HANDLERS

/* The memory handlers per size (read_rm zero-extends a 32-bit value). */
#define SIZED_HANDLERS(size)                                                   \
	mov_load_##size:                                                       \
	c->r[in->reg] = read_rm(c, in, size);                                  \
	NEXT();                                                                \
	mov_store_##size:                                                      \
	v = c->r[in->reg];                                                     \
	if (in->mod == 3) {                                                    \
		c->r[in->rm] = v & size_mask(size);                            \
		NEXT();                                                        \
	}                                                                      \
	mem_write(c, mem_addr(c, in), size, v);                                \
	NEXT_AFTER_WRITE();                                                    \
	test_##size:                                                           \
	alu(c, 4, size, read_rm(c, in, size), c->r[in->reg] & size_mask(size)); \
	NEXT();                                                                \
	imul_##size:                                                           \
	exec_imul(c, in, size);                                                \
	NEXT();                                                                \
	cmov_##size:                                                           \
	exec_cmov(c, in, size);                                                \
	NEXT();                                                                \
	test_imm_##size:                                                       \
	alu(c, 4, size, read_rm(c, in, size), in->imm & size_mask(size));     \
	NEXT();                                                                \
	cmp_mem_reg_##size:                                                    \
	alu(c, 7, size, mem_read(c, mem_addr(c, in), size), c->r[in->reg] & size_mask(size)); \
	NEXT();                                                                \
	cmp_mem_imm_##size:                                                    \
	alu(c, 7, size, mem_read(c, mem_addr(c, in), size), in->imm & size_mask(size)); \
	NEXT();                                                                \
	inc_##size:                                                            \
	c->r[in->rm] = inc_dec(c, false, size, c->r[in->rm] & size_mask(size)); \
	NEXT();                                                                \
	dec_##size:                                                            \
	c->r[in->rm] = inc_dec(c, true, size, c->r[in->rm] & size_mask(size)); \
	NEXT();                                                                \
	shift_imm_##size: { /* a zero count changes no flag but zero-extends */ \
		unsigned count = (unsigned)in->imm & (8 * size - 1);           \
		v = c->r[in->rm] & size_mask(size);                            \
		c->r[in->rm] = count ? shift_lazy(c, in->reg & 7, size, v, count) : v; \
		NEXT();                                                        \
	}
	SIZED_HANDLERS(4) SIZED_HANDLERS(8)
#undef SIZED_HANDLERS
mov_imm:
	c->r[in->reg] = in->imm & size_mask(in->osz);
	NEXT();
mov_imm_rm:
	c->r[in->rm] = in->imm & size_mask(in->osz);
	NEXT();
lea:
	c->r[in->reg] = ea_offset(c, in) & size_mask(in->osz);
	NEXT();
movzx:
	c->r[in->reg] = in->op == (OP_0F | 0xb6) ? read_rm(c, in, 1) : read_rm(c, in, 2);
	NEXT();
movsxd:
	c->r[in->reg] = (uint64_t)(int64_t)(int32_t)read_rm(c, in, 4);
	NEXT();
setcc:
	write_rm(c, in, 1, cond_true(c, in->op & 15));
	NEXT_AFTER_WRITE();
nop:
	NEXT();
byte_test:
	alu(c, 4, 1, read_rm(c, in, 1), get_reg(c, in, in->reg, 1));
	NEXT();
byte_test_imm:
	alu(c, 4, 1, read_rm(c, in, 1), in->imm & 0xff);
	NEXT();
byte_store:
	write_rm(c, in, 1, get_reg(c, in, in->reg, 1));
	NEXT_AFTER_WRITE();
byte_load:
	set_reg(c, in, in->reg, 1, read_rm(c, in, 1));
	NEXT();
push: /* 64-bit only (prepare): other sizes take exec_one's general case */
	push(c, 8, c->r[in->reg]);
	NEXT_AFTER_WRITE();
pop:
	c->r[in->reg] = pop(c, 8);
	NEXT();
/* Branches end their block (cpu.c), so after them DISPATCH leaves. */
jcc:
	exec_jcc(c, in++);
	DISPATCH();
jmp:
	jump_to(c, next_rip(c, in) + in->imm, in->osz);
	in++;
	DISPATCH();
call:
	exec_call_rel(c, in++);
	DISPATCH();
ret:
	exec_ret_near(c, in++);
	DISPATCH();

#undef DISPATCH
#undef NEXT
#undef NEXT_AFTER_WRITE
done:
	c->icount -= (uint64_t)(end - in);
}
