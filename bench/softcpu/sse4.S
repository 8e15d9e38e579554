/* sse4 - SSE4.2/SSSE3/SSE4.1 integer work, the kind glibc's string
 * functions and checksums do: PCMPISTRI, CRC32, PSHUFB, PMINUD, POPCNT,
 * PTEST; six of them and the loop's two per iteration. */
#define INSNS_PER_ITERATION 8
#include "longmode.inc"

bench:
	mov	%rcx, %r8		/* PCMPISTRI writes ECX */
	mov	%cr4, %rax
	or	$0x200, %rax		/* OSFXSR: SSE on */
	mov	%rax, %cr4
	mov	$0x0706050403020100, %rax
	movq	%rax, %xmm0
	mov	$0x0f0e0d0c0b0a0908, %rax
	pinsrq	$1, %rax, %xmm0		/* xmm0: bytes 0..15 */
	movdqa	%xmm0, %xmm1
	mov	$0x1234, %eax
	xor	%edx, %edx
1:	pcmpistri $0x0c, %xmm0, %xmm1	/* equal ordered, unsigned bytes: index in ECX */
	crc32q	%rax, %rdx
	pshufb	%xmm0, %xmm1
	pminud	%xmm0, %xmm1
	popcnt	%rdx, %rax
	ptest	%xmm1, %xmm0
	dec	%r8
	jnz	1b
	ret
