/* checksum - a Fletcher-style checksum over a 64 KiB buffer, byte by byte:
 * six instructions per byte. */
#define INSNS_PER_ITERATION 6
#include "longmode.inc"

#define BUF 0x200000
#define SIZE 65536

bench:
	mov	%rcx, %r10		/* bytes left */
	xor	%r8, %r8
	xor	%r9, %r9
2:	mov	$BUF, %rsi
	mov	$SIZE, %rcx
	cmp	%rcx, %r10
	cmovb	%r10, %rcx
	sub	%rcx, %r10
1:	movzbl	(%rsi), %eax
	add	%rax, %r8
	add	%r8, %r9
	inc	%rsi
	dec	%rcx
	jnz	1b
	test	%r10, %r10
	jnz	2b
	ret
