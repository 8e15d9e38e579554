/* difftest.c - the differential test driver: generates cases (gen.c), runs
 * them on the host CPU (native.c) and in the software CPU (soft.c), and
 * compares registers, RIP, the ending exception, flags (minus the undefined
 * ones), XMM registers and the data and stack regions.
 *
 *   softcpu_difftest [--seed S]... [--cases N | --seconds N] [--from I]
 *                    [--random-seconds N] [--verbose]
 * First replays every regression case (regressions.c).  Then runs each
 * --seed for N cases (--cases) or N seconds (--seconds, default 45), and one
 * random seed, printed before it starts, for --random-seconds (or for
 * --seconds when no --seed is given).  --from I skips a seed's first I cases
 * (generated, not run) and runs each case TLB-cold and warm like a
 * regression: a mismatch report gives this replay command.  Prints
 * one "difftest:" line per run (cases, instructions, forms covered,
 * mismatches) and every mismatch (up to 20 in detail); exits 1 if there was
 * any. */
#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "difftest.h"
#include "parse.h"

#define BATCH 400
#define MAX_REPORTS 20

static const char *reg_names[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
				    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Does the case's code hold the opcode bytes 0f 3a OP (perhaps only inside
 * an immediate: that only relaxes the NaN comparison below)? */
static bool has_0f3a(const struct dt_case *tc, uint8_t op)
{
	for (unsigned i = 0; i + 2 < tc->code_len; i++)
		if (tc->code[i] == 0x0f && tc->code[i + 1] == 0x3a && tc->code[i + 2] == op)
			return true;
	return false;
}

static bool nan32(uint32_t x)
{
	return (x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu);
}

static bool nan64(uint64_t x)
{
	return (x & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (x & 0xfffffffffffffull);
}

/* Which NaN DPPS and DPPD leave in each lane depends on the CPU model: the
 * SDM adds the products once and writes that sum to every selected lane
 * (the software CPU does, and so did the CPU these cases were first run
 * on); another CPU here added them pairwise per lane, keeping a different
 * operand's NaN in alternate lanes (fffffffa, ffffffff, fffffffa, ...).
 * In a case with either instruction, a NaN lane of its width matches any
 * NaN lane. */
static bool same_xmm(const struct dt_case *tc, const uint64_t a[2], const uint64_t b[2])
{
	if (a[0] == b[0] && a[1] == b[1])
		return true;
	bool dpps = has_0f3a(tc, 0x40), dppd = has_0f3a(tc, 0x41);
	for (int q = 0; q < 2; q++) {
		if (a[q] == b[q] || (dppd && nan64(a[q]) && nan64(b[q])))
			continue;
		for (int half = 0; half < 64; half += 32) {
			uint32_t x = (uint32_t)(a[q] >> half), y = (uint32_t)(b[q] >> half);
			if (x != y && !(dpps && nan32(x) && nan32(y)))
				return false;
		}
	}
	return true;
}

/* Describe the differences between two final states into buf; "" if equal. */
static void compare(const struct dt_case *tc, const struct dt_state *a, const struct dt_state *b, char *buf,
		    size_t n)
{
	size_t len = 0;
	buf[0] = 0;
#define ADD(...) (len += (size_t)snprintf(buf + len, len < n ? n - len : 0, __VA_ARGS__))
	if (a->vector != b->vector) {
		ADD(" vector native %d soft %d;", a->vector, b->vector);
		if (a->vector < 0 || b->vector < 0)
			return;
	}
	if (a->rip != b->rip)
		ADD(" rip native %#" PRIx64 " soft %#" PRIx64 ";", a->rip, b->rip);
	for (int i = 0; i < 16; i++)
		if (a->r[i] != b->r[i])
			ADD(" %s native %#" PRIx64 " soft %#" PRIx64 ";", reg_names[i], a->r[i], b->r[i]);
	/* A fault before the end leaves flags the generator thought later
	 * instructions would define: compare only DF then. */
	uint64_t mask = a->vector == 3 ? DT_COMPARED & ~(uint64_t)tc->undef_flags : DT_DF;
	if ((a->rflags ^ b->rflags) & mask)
		ADD(" rflags native %#" PRIx64 " soft %#" PRIx64 " (compared %#" PRIx64 ");", a->rflags & DT_COMPARED,
		    b->rflags & DT_COMPARED, mask);
	for (int i = 0; i < 16; i++)
		if (!same_xmm(tc, a->xmm[i], b->xmm[i]))
			ADD(" xmm%d native %016" PRIx64 "%016" PRIx64 " soft %016" PRIx64 "%016" PRIx64 ";", i,
			    a->xmm[i][1], a->xmm[i][0], b->xmm[i][1], b->xmm[i][0]);
	if (a->mxcsr != b->mxcsr)
		ADD(" mxcsr native %#x soft %#x;", a->mxcsr, b->mxcsr);
	if (a->fcw != b->fcw)
		ADD(" fcw native %#x soft %#x;", a->fcw, b->fcw);
	if (a->fsw != b->fsw)
		ADD(" fsw native %#x soft %#x;", a->fsw, b->fsw);
	if (a->ftw != b->ftw)
		ADD(" ftw native %#x soft %#x;", a->ftw, b->ftw);
	for (int i = 0; i < 8; i++)
		if (memcmp(a->st[i], b->st[i], 10)) {
			uint64_t am, bm;
			memcpy(&am, a->st[i], 8);
			memcpy(&bm, b->st[i], 8);
			ADD(" st%d native %02x%02x:%016" PRIx64 " soft %02x%02x:%016" PRIx64 ";", i, a->st[i][9],
			    a->st[i][8], am, b->st[i][9], b->st[i][8], bm);
		}
	for (unsigned i = 0; i < DATA_SIZE; i++)
		if (a->data[i] != b->data[i]) {
			ADD(" data[%#x] native %02x soft %02x;", i, a->data[i], b->data[i]);
			break;
		}
	for (unsigned i = 0; i < STACK_SIZE; i++)
		if (a->stack[i] != b->stack[i]) {
			ADD(" stack[%#x] native %02x soft %02x;", i, a->stack[i], b->stack[i]);
			break;
		}
#undef ADD
}

/* The mismatch, how to replay it, and its regressions.c initializer. */
static void report(const struct dt_case *tc, const char *diff, const char *where)
{
	fprintf(stderr, "MISMATCH:");
	for (unsigned i = 0; i < tc->nforms; i++)
		fprintf(stderr, " [%s]", gen_form_name(tc->forms[i]));
	fprintf(stderr, "\n  code:");
	for (unsigned i = 0; i < tc->code_len; i++)
		fprintf(stderr, " %02x", tc->code[i]);
	fprintf(stderr, "\n  init:");
	for (int i = 0; i < 16; i++)
		fprintf(stderr, " %s=%#" PRIx64, reg_names[i], tc->init.r[i]);
	fprintf(stderr, " flags=%#" PRIx64 "\n  diff:%s\n  %s\n  regression: {\"", tc->init.rflags, diff, where);
	for (unsigned i = 0; i < tc->nforms; i++)
		fprintf(stderr, "%s%s", i ? "|" : "", gen_form_name(tc->forms[i]));
	fprintf(stderr, "\", \"");
	for (unsigned i = 0; i < tc->code_len; i++)
		fprintf(stderr, "%s%02x", i ? " " : "", tc->code[i]);
	fprintf(stderr, "\", {");
	for (int i = 0; i < 16; i++)
		fprintf(stderr, "%s%#" PRIx64, i ? ", " : "", tc->init.r[i]);
	fprintf(stderr, "}, %#" PRIx64 ", %#x, %s, %#" PRIx64 "},\n", tc->init.rflags, tc->undef_flags,
		tc->sse ? "true" : "false", tc->fill_seed);
}

static bool verbose;
static bool *covered;
static struct dt_case cases[BATCH];
static struct dt_state native[BATCH], soft[BATCH];

struct tally {
	uint64_t ncases, ninsns, mismatches, faulted;
};

/* Run cases[0..n) on both CPUs and compare; where(i) names case i in a
 * report.  The software CPU keeps its TLB from case to case, and some bugs
 * need an entry an earlier case left: with cold_and_warm, each case runs
 * after a TLB flush and then again right after itself, so that a regression
 * replays without its original history. */
static void run_batch(unsigned n, bool cold_and_warm, struct tally *t,
		      void (*where)(unsigned i, char *buf, size_t len))
{
	if (native_run(cases, native, n) < 0)
		fprintf(stderr, "difftest: native run failed (see above)\n");
	for (unsigned i = 0; i < n; i++) {
		const struct dt_case *tc = &cases[i];
		char diff[2048], at[256];
		if (native[i].vector < 0) {
			snprintf(diff, sizeof(diff), " native run crashed");
		} else {
			/* the interpreter, then the JIT (whose report starts "jit:") */
			diff[0] = 0;
			for (int jit = 0; jit < 2 && !diff[0]; jit++) {
				soft_run(tc, &soft[i], cold_and_warm, jit);
				compare(tc, &native[i], &soft[i], diff, sizeof(diff));
				if (cold_and_warm && !diff[0]) {
					soft_run(tc, &soft[i], false, jit);
					compare(tc, &native[i], &soft[i], diff, sizeof(diff));
				}
				if (jit && diff[0]) {
					char jdiff[sizeof(diff)];
					snprintf(jdiff, sizeof(jdiff), " jit:%s", diff);
					memcpy(diff, jdiff, sizeof(diff));
				}
			}
			t->ncases++;
			t->ninsns += tc->ninsns;
			t->faulted += native[i].vector != 3;
			for (unsigned k = 0; k < tc->nforms; k++)
				covered[tc->forms[k]] = true;
		}
		if (diff[0]) {
			t->mismatches++;
			if (t->mismatches <= MAX_REPORTS || verbose) {
				where(i, at, sizeof(at));
				report(tc, diff, at);
			}
		}
	}
}

static unsigned hex_bytes(const char *s, uint8_t *out, unsigned max)
{
	unsigned n = 0;
	for (char *end; *s && n < max; s = end) {
		out[n++] = (uint8_t)strtoul(s, &end, 16);
		if (end == s)
			break;
	}
	return n;
}

static void regression_where(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "regression case %u (%s)", i, dt_regressions[i].forms);
}

static uint64_t replaying_from; /* the first case of cases[] in the current seed */
static uint64_t current_seed;

static void seed_where(unsigned i, char *buf, size_t len)
{
	uint64_t at = replaying_from + i;
	snprintf(buf, len, "seed %#" PRIx64 " case %" PRIu64 "; replay: softcpu_difftest --seed %#" PRIx64
		 " --from %" PRIu64 " --cases 1", current_seed, at, current_seed, at);
}

static bool replay_regressions(void)
{
	struct tally t = {0};
	for (unsigned base = 0; base < dt_nregressions; base += BATCH) {
		unsigned n = dt_nregressions - base < BATCH ? dt_nregressions - base : BATCH;
		for (unsigned i = 0; i < n; i++) {
			const struct dt_regression *r = &dt_regressions[base + i];
			struct dt_case *tc = &cases[i];
			memset(tc, 0, sizeof(*tc));
			tc->code_len = hex_bytes(r->code, tc->code, CODE_MAX);
			memcpy(tc->init.r, r->r, sizeof(tc->init.r));
			tc->init.rflags = r->rflags;
			tc->undef_flags = r->undef_flags;
			tc->sse = r->sse;
			tc->fill_seed = r->fill_seed;
			gen_fill(&tc->init, r->sse, r->fill_seed);
		}
		run_batch(n, true, &t, regression_where);
	}
	printf("difftest: %" PRIu64 " regression cases, %" PRIu64 " mismatches\n", t.ncases, t.mismatches);
	return t.mismatches == 0;
}

/* Cases of one seed from case number `from`, until max_cases (0: no limit)
 * or `seconds` have passed. */
static bool run_seed(uint64_t seed, uint64_t from, uint64_t max_cases, double seconds)
{
	struct tally t = {0};
	unsigned nforms = gen_form_count();
	memset(covered, 0, nforms * sizeof(*covered));
	gen_seed(seed);
	current_seed = seed;
	uint64_t next = 0; /* number of the next case generated */
	for (; next < from; next++)
		gen_case(&cases[0], next % 4 == 3);
	double start = now_s();
	do {
		uint64_t left = max_cases ? from + max_cases - next : BATCH;
		unsigned n = left < BATCH ? (unsigned)left : BATCH;
		replaying_from = next;
		for (unsigned i = 0; i < n; i++, next++)
			gen_case(&cases[i], next % 4 == 3);
		run_batch(n, from > 0, &t, seed_where); /* a replay: without the history before it */
	} while (max_cases ? next < from + max_cases : now_s() - start < seconds);

	unsigned ncovered = 0, nx87 = 0, x87_covered = 0;
	for (unsigned i = 0; i < nforms; i++) {
		ncovered += covered[i];
		if (gen_form_is_x87(i)) {
			nx87++;
			x87_covered += covered[i];
		}
	}
	printf("difftest: %" PRIu64 " cases (%" PRIu64 " ending in a fault), %" PRIu64 " instructions, %u of %u "
	       "instruction forms covered (x87: %u of %u), %" PRIu64 " mismatches (seed %#" PRIx64 ", %.0f s)\n",
	       t.ncases, t.faulted, t.ninsns, ncovered, nforms, x87_covered, nx87, t.mismatches, seed, now_s() - start);
	fflush(stdout);
	return t.mismatches == 0;
}

static uint64_t random_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
}

int main(int argc, char **argv)
{
	double seconds = 45, random_seconds = -1;
	uint64_t seeds[64], from = 0, max_cases = 0;
	unsigned nseeds = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--random-seconds") && i + 1 < argc)
			random_seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc && nseeds < 64 &&
			 parse_u64(argv[i + 1], UINT64_MAX, &seeds[nseeds]))
			nseeds++, i++;
		else if (!strcmp(argv[i], "--cases") && i + 1 < argc &&
			 parse_u64(argv[i + 1], UINT64_MAX, &max_cases))
			i++;
		else if (!strcmp(argv[i], "--from") && i + 1 < argc && parse_u64(argv[i + 1], UINT64_MAX, &from))
			i++;
		else if (!strcmp(argv[i], "--verbose"))
			verbose = true;
		else {
			fprintf(stderr,
				"usage: %s [--seed S]... [--cases N | --seconds N] [--from I] [--random-seconds N] "
				"[--verbose]\n",
				argv[0]);
			return 2;
		}
	}
	if (!nseeds && random_seconds < 0)
		random_seconds = seconds;
	if (soft_init() < 0) {
		fprintf(stderr, "difftest: cannot set up the software CPU\n");
		return 2;
	}
	covered = calloc(gen_form_count(), sizeof(*covered));
	if (!covered)
		return 2;

	bool ok = replay_regressions();
	for (unsigned i = 0; i < nseeds; i++)
		ok &= run_seed(seeds[i], from, max_cases, seconds);
	if (random_seconds > 0) {
		uint64_t seed = random_seed();
		printf("difftest: random seed %#" PRIx64 " for %.0f s\n", seed, random_seconds);
		fflush(stdout);
		ok &= run_seed(seed, 0, 0, random_seconds);
	}
	return ok ? 0 : 1;
}
