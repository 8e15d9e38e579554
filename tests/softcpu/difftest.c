/* difftest.c - the differential test driver: generates cases (gen.c), runs
 * them on the host CPU (native.c) and in the software CPU (soft.c), and
 * compares registers, RIP, the ending exception, flags (minus the undefined
 * ones), XMM registers and the data and stack regions.
 *
 *   softcpu_difftest [--seconds N] [--seed S] [--verbose]
 * Prints the number of cases, instructions and forms covered and every
 * mismatch (up to 20 in detail); exits 1 if there was any. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "difftest.h"

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
		if (a->xmm[i][0] != b->xmm[i][0] || a->xmm[i][1] != b->xmm[i][1])
			ADD(" xmm%d native %016" PRIx64 "%016" PRIx64 " soft %016" PRIx64 "%016" PRIx64 ";", i,
			    a->xmm[i][1], a->xmm[i][0], b->xmm[i][1], b->xmm[i][0]);
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

static void report(const struct dt_case *tc, const char *diff)
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
	fprintf(stderr, " flags=%#" PRIx64 "\n  diff:%s\n", tc->init.rflags, diff);
}

int main(int argc, char **argv)
{
	double seconds = 45;
	uint64_t seed = (uint64_t)time(NULL);
	bool verbose = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--verbose"))
			verbose = true;
		else {
			fprintf(stderr, "usage: %s [--seconds N] [--seed S] [--verbose]\n", argv[0]);
			return 2;
		}
	}
	gen_seed(seed);
	if (soft_init() < 0) {
		fprintf(stderr, "difftest: cannot set up the software CPU\n");
		return 2;
	}
	unsigned nforms = gen_form_count();
	bool *covered = calloc(nforms, sizeof(*covered));
	struct dt_case *cases = malloc(sizeof(*cases) * BATCH);
	struct dt_state *native = malloc(sizeof(*native) * BATCH);
	struct dt_state *soft = malloc(sizeof(*soft) * BATCH);
	if (!covered || !cases || !native || !soft)
		return 2;

	uint64_t ncases = 0, ninsns = 0, mismatches = 0, faulted = 0;
	double start = now_s();
	do {
		for (unsigned i = 0; i < BATCH; i++)
			gen_case(&cases[i], i % 4 == 3);
		if (native_run(cases, native, BATCH) < 0)
			fprintf(stderr, "difftest: native run failed (see above)\n");
		for (unsigned i = 0; i < BATCH; i++) {
			const struct dt_case *tc = &cases[i];
			char diff[2048];
			if (native[i].vector < 0) {
				mismatches++;
				if (mismatches <= MAX_REPORTS)
					report(tc, " native run crashed");
				continue;
			}
			soft_run(tc, &soft[i]);
			compare(tc, &native[i], &soft[i], diff, sizeof(diff));
			ncases++;
			ninsns += tc->ninsns;
			faulted += native[i].vector != 3;
			for (unsigned k = 0; k < tc->nforms; k++)
				covered[tc->forms[k]] = true;
			if (diff[0]) {
				mismatches++;
				if (mismatches <= MAX_REPORTS || verbose)
					report(tc, diff);
			}
		}
	} while (now_s() - start < seconds);

	unsigned ncovered = 0;
	for (unsigned i = 0; i < nforms; i++)
		ncovered += covered[i];
	printf("difftest: %" PRIu64 " cases (%" PRIu64 " ending in a fault), %" PRIu64 " instructions, %u of %u "
	       "instruction forms covered, %" PRIu64 " mismatches (seed %#" PRIx64 ", %.0f s)\n",
	       ncases, faulted, ninsns, ncovered, nforms, mismatches, seed, now_s() - start);
	return mismatches ? 1 : 0;
}
