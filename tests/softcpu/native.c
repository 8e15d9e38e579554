/* native.c - run test cases on the host CPU, in a child process.
 *
 * Loading a state: raise(SIGUSR1); its handler rewrites the saved user
 * context (all GPRs, RFLAGS, XMM, RIP = the test code) and the kernel's
 * sigreturn loads it.  Collecting: the test ends in INT3 (SIGTRAP), or
 * faults (SIGSEGV/SIGFPE/SIGILL/SIGBUS); that handler copies the context and
 * siglongjmps out.  Handlers run on an alternate stack so the test's stack
 * region stays exactly as the test left it. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "difftest.h"

static const struct dt_case *current;
static struct dt_state *result;
static sigjmp_buf back;

/* gregs index of each GPR in encoding order */
static const int greg_of[16] = {
	REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
	REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
};

static void on_load(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	(void)si;
	ucontext_t *uc = ucv;
	const struct dt_state *s = &current->init;
	for (int i = 0; i < 16; i++)
		uc->uc_mcontext.gregs[greg_of[i]] = (greg_t)s->r[i];
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)CODE_ADDR;
	uc->uc_mcontext.gregs[REG_EFL] = (greg_t)((uc->uc_mcontext.gregs[REG_EFL] & ~(greg_t)DT_COMPARED) |
						  (greg_t)(s->rflags & DT_COMPARED));
	memcpy(uc->uc_mcontext.fpregs->_xmm, s->xmm, sizeof(s->xmm));
	uc->uc_mcontext.fpregs->mxcsr = s->mxcsr;
	struct _libc_fpstate *fp = uc->uc_mcontext.fpregs;
	fp->cwd = s->fcw;
	fp->swd = s->fsw;
	fp->ftw = s->ftw;
	for (int i = 0; i < 8; i++)
		memcpy(&fp->_st[i], s->st[i], 10);
	/* In the XSAVE layout sigreturn loads only the components marked in
	 * the header's XSTATE_BV: mark x87 and SSE, or their values are ignored. */
	uint32_t *sw = (uint32_t *)((uint8_t *)uc->uc_mcontext.fpregs + 464);
	if (sw[0] == 0x46505853u) /* FP_XSTATE_MAGIC1 */
		*(uint64_t *)((uint8_t *)uc->uc_mcontext.fpregs + 512) |= 3;
}

static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	(void)si;
	ucontext_t *uc = ucv;
	for (int i = 0; i < 16; i++)
		result->r[i] = (uint64_t)uc->uc_mcontext.gregs[greg_of[i]];
	result->rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
	result->rflags = (uint64_t)uc->uc_mcontext.gregs[REG_EFL];
	result->vector = (int)uc->uc_mcontext.gregs[REG_TRAPNO];
	memcpy(result->xmm, uc->uc_mcontext.fpregs->_xmm, sizeof(result->xmm));
	result->mxcsr = uc->uc_mcontext.fpregs->mxcsr;
	result->fcw = uc->uc_mcontext.fpregs->cwd;
	result->fsw = uc->uc_mcontext.fpregs->swd;
	result->ftw = (uint8_t)uc->uc_mcontext.fpregs->ftw;
	for (int i = 0; i < 8; i++)
		memcpy(result->st[i], &uc->uc_mcontext.fpregs->_st[i], 10);
	memcpy(result->data, (void *)DATA_ADDR, DATA_SIZE);
	memcpy(result->stack, (void *)STACK_ADDR, STACK_SIZE);
	siglongjmp(back, 1);
}

static void *map_fixed(uint64_t addr, size_t len, int prot)
{
	void *p = mmap((void *)addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)addr) {
		perror("difftest: mmap of a test region");
		_exit(3);
	}
	return p;
}

static void child(const struct dt_case *cases, struct dt_state *out, unsigned n, volatile unsigned *progress)
{
	static uint8_t altstack[1 << 16];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
	sigaltstack(&ss, NULL);
	struct sigaction sa = {.sa_sigaction = on_load, .sa_flags = SA_SIGINFO | SA_ONSTACK};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_sigaction = on_trap;
	int traps[] = {SIGTRAP, SIGSEGV, SIGFPE, SIGILL, SIGBUS};
	for (unsigned i = 0; i < sizeof(traps) / sizeof(traps[0]); i++)
		sigaction(traps[i], &sa, NULL);

	uint8_t *code = map_fixed(CODE_ADDR, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
	uint8_t *data = map_fixed(DATA_ADDR, DATA_SIZE, PROT_READ | PROT_WRITE);
	uint8_t *stack = map_fixed(STACK_ADDR, STACK_SIZE, PROT_READ | PROT_WRITE);
	for (unsigned i = 0; i < n; i++) {
		*progress = i;
		current = &cases[i];
		result = &out[i];
		memcpy(code, cases[i].code, cases[i].code_len);
		memcpy(data, cases[i].init.data, DATA_SIZE);
		memcpy(stack, cases[i].init.stack, STACK_SIZE);
		__builtin___clear_cache((char *)code, (char *)code + cases[i].code_len);
		if (!sigsetjmp(back, 1)) {
			raise(SIGUSR1);
			_exit(4); /* not reached: the test ends in a signal */
		}
	}
	*progress = n;
	_exit(0);
}

int native_run(const struct dt_case *cases, struct dt_state *out, unsigned n)
{
	size_t len = sizeof(*out) * n + 4096;
	uint8_t *shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return -1;
	volatile unsigned *progress = (volatile unsigned *)shared;
	struct dt_state *res = (struct dt_state *)(shared + 4096);
	*progress = 0;
	pid_t pid = fork();
	if (pid < 0) {
		munmap(shared, len);
		return -1;
	}
	if (pid == 0)
		child(cases, res, n, progress);
	int status;
	waitpid(pid, &status, 0);
	memcpy(out, res, sizeof(*out) * n);
	unsigned done = *progress;
	for (unsigned i = done; i < n; i++)
		out[i].vector = -1;
	munmap(shared, len);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "difftest: native child died at case %u (status %#x)\n", done, status);
		return -1;
	}
	return 0;
}
