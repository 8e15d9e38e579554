/* jit.h - the software CPU's translator to host x86-64 code (jit.c).
 *
 * A decoded block (cpu.c) is translated once per mode into host code that
 * runs the hot integer instructions inline and calls the interpreter
 * (softcpu_exec) for one instruction at a time for everything else, so the
 * two share every bit of guest state: registers, RIP and the lazy flags are
 * in struct softcpu whenever the interpreter runs, a fault is raised or
 * translated code returns (within a block, guest registers may be in host
 * registers).  Translations hang off the decoded block,
 * so the block cache's page generations (self-modifying code, device DMA)
 * invalidate them too.  Each vCPU has its own code cache, flushed whole
 * when full. */
#ifndef MINIVM_SOFTCPU_JIT_H
#define MINIVM_SOFTCPU_JIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct softcpu;
struct insn;

/* A block's translation: valid while flush_gen is its cache's and the CPU
 * is in the mode it was made for. */
struct jit_ref {
	const uint8_t *code;
	uint32_t flush_gen;
	uint8_t mode;
};

/* Whether this build can translate (an x86-64 host). */
bool softcpu_jit_supported(void);
/* Map the process's executable memory now (the sandbox forbids it later).
 * Optional outside sandboxes: the first softcpu_set_jit does it. */
int softcpu_jit_reserve(char *err, size_t errlen);
/* Turn the JIT on or off for a vCPU (off after softcpu_init).  -1: it
 * cannot be on (not supported, no executable memory); the CPU interprets. */
int softcpu_set_jit(struct softcpu *c, bool on);
/* Blocks this vCPU has translated, and times its code cache was full and
 * flushed (0 and 0 while it interprets): MINIVM_STATS shows them. */
void softcpu_jit_counts(const struct softcpu *c, uint64_t *translated, uint64_t *full_flushes);

/* ---- cpu.c's side ---- */
void jit_release(struct softcpu *c);
/* Drop every translation of this vCPU (its decoded blocks went away). */
void jit_flush(struct softcpu *c);
/* Run the n instructions of a decoded block through their translation,
 * made now if needed.  false: no translation (the caller interprets). */
bool jit_run(struct softcpu *c, struct jit_ref *ref, const struct insn *insn, unsigned n);
/* The translation a block already has for the CPU's mode, else NULL. */
const uint8_t *jit_code(const struct softcpu *c, const struct jit_ref *ref);
/* For translated code ending in a jump it cannot chain (RET, indirect or
 * out of the page): the next block's translation when the run loop has
 * nothing to do between the two, else NULL (cpu.c). */
const uint8_t *softcpu_jit_next(struct softcpu *c);

#endif
