/* difftest.h - differential testing of the software CPU against the host CPU.
 *
 * A test case is a short user-mode instruction sequence ending in INT3, an
 * initial register/flag/XMM state and the contents of a data and a stack
 * region.  The same bytes run natively (native.c: loaded by a signal
 * handler's sigreturn, collected by the SIGTRAP/SIGSEGV/... handler) and in
 * the software CPU at CPL 3 with the regions mapped at the same linear
 * addresses (soft.c: the exception ends in a HLT handler whose IRET frame
 * gives the state).  Final states are compared, with architecturally
 * undefined flags masked per case (gen.c tracks them). */
#ifndef MINIVM_DIFFTEST_H
#define MINIVM_DIFFTEST_H

#include <stdbool.h>
#include <stdint.h>

#define CODE_ADDR 0x10000000ull
#define CODE_MAX 256
#define DATA_ADDR 0x10010000ull
#define DATA_SIZE 0x2000u
#define STACK_ADDR 0x10020000ull
#define STACK_SIZE 0x1000u
#define STACK_TOP (STACK_ADDR + 0x800) /* initial RSP */

/* x86 flags compared: the arithmetic ones and DF */
#define DT_CF 0x001u
#define DT_PF 0x004u
#define DT_AF 0x010u
#define DT_ZF 0x040u
#define DT_SF 0x080u
#define DT_DF 0x400u
#define DT_OF 0x800u
#define DT_ARITH (DT_CF | DT_PF | DT_AF | DT_ZF | DT_SF | DT_OF)
#define DT_COMPARED (DT_ARITH | DT_DF)

struct dt_state {
	uint64_t r[16]; /* RAX..R15 in encoding order */
	uint64_t rip, rflags;
	uint64_t xmm[16][2];
	/* x87 (compared in sse cases): FXSAVE's control/status words, abridged
	 * tags and ST(0)..ST(7) */
	uint16_t fcw, fsw;
	uint8_t ftw;
	uint32_t mxcsr; /* compared: random rounding, FTZ, DAZ, flags, some exceptions unmasked */
	uint8_t st[8][10];
	int vector;     /* exception that ended the run: 3 (the final INT3) or a fault */
	uint8_t data[DATA_SIZE];
	uint8_t stack[STACK_SIZE];
};

#define MAX_FORMS_PER_CASE 16

struct dt_case {
	uint8_t code[CODE_MAX];
	unsigned code_len;
	unsigned ninsns;                  /* instructions before the final INT3 */
	unsigned forms[MAX_FORMS_PER_CASE]; /* indexes into the generator's form table */
	unsigned nforms;
	uint32_t undef_flags;             /* flags whose final value is undefined */
	bool sse;                         /* XMM and x87 registers are part of the state */
	uint64_t fill_seed;               /* init's data, stack and XMM: gen_fill(sse, fill_seed) */
	struct dt_state init;
};

/* A case that once mismatched, replayed by every run (regressions.c).  The
 * report of a mismatch prints this initializer, ready to paste. */
struct dt_regression {
	const char *forms; /* the generator's names of its forms, for people */
	const char *code;  /* hex bytes, "d0 05 ..." */
	uint64_t r[16];
	uint64_t rflags;
	uint32_t undef_flags;
	bool sse;
	uint64_t fill_seed;
};

extern const struct dt_regression dt_regressions[];
extern const unsigned dt_nregressions;

/* gen.c */
void gen_seed(uint64_t seed);
void gen_case(struct dt_case *tc, bool sse);
void gen_fill(struct dt_state *s, bool sse, uint64_t fill_seed);
unsigned gen_form_count(void);
const char *gen_form_name(unsigned form);
bool gen_form_is_x87(unsigned form);

/* native.c: run n cases in a child process; out[i].vector = -1 if the child died. */
int native_run(const struct dt_case *cases, struct dt_state *out, unsigned n);

/* soft.c: two vCPUs on one machine, one interpreting, one translating
 * (jit.c); soft_init fails if the JIT cannot be turned on here. */
int soft_init(void);
/* cold_tlb: flush the TLB first, else keep what earlier cases left. */
void soft_run(const struct dt_case *tc, struct dt_state *out, bool cold_tlb, bool jit);

#endif
