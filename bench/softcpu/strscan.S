/* strscan - SSE2 scanning for a zero byte 16 bytes at a time, the inner
 * loop of glibc's strlen/memchr/strchr (SSE2 versions): MOVDQA, PCMPEQB,
 * PMOVMSKB, POR, over one 4 KiB page; eight instructions per iteration. */
#define INSNS_PER_ITERATION 8
#include "longmode.inc"

#define BUF 0x200000

bench:
	mov	%rcx, %r8
	mov	%cr4, %rax
	or	$0x200, %rax		/* OSFXSR: SSE on */
	mov	%rax, %cr4
	mov	$BUF, %rsi
	pxor	%xmm0, %xmm0
	xor	%ecx, %ecx
1:	movdqa	(%rsi,%rcx), %xmm1	/* 16 bytes */
	pcmpeqb	%xmm0, %xmm1		/* zero bytes -> 0xff */
	pmovmskb %xmm1, %eax		/* one bit per byte */
	por	%xmm1, %xmm2
	add	$16, %ecx
	and	$0xff0, %ecx		/* within the page */
	dec	%r8
	jnz	1b
	ret
