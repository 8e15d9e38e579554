/* ssefp - packed double SSE2/SSE3 arithmetic: x = hadd(addsub(x / 2, 1))
 * keeps x bounded; four SSE instructions and the loop's two per
 * iteration. */
#define INSNS_PER_ITERATION 6
#include "longmode.inc"

bench:
	mov	%cr4, %rax
	or	$0x200, %rax		/* OSFXSR: SSE on */
	mov	%rax, %cr4
	mov	$0x3ff0000000000000, %rax	/* 1.0 */
	movq	%rax, %xmm0
	movddup	%xmm0, %xmm0
	mov	$0x3fe0000000000000, %rax	/* 0.5 */
	movq	%rax, %xmm2
	movddup	%xmm2, %xmm2
	movapd	%xmm0, %xmm1
1:	mulpd	%xmm2, %xmm1
	addsubpd %xmm0, %xmm1
	haddpd	%xmm0, %xmm1
	movddup	%xmm1, %xmm1
	dec	%rcx
	jnz	1b
	ret
