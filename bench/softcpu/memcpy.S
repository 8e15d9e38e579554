/* memcpy - copies a 64 KiB buffer 8 bytes at a time, in a loop of six
 * instructions (load, store, two pointer updates, count, branch). */
#define INSNS_PER_ITERATION 6
#include "longmode.inc"

#define SRC 0x200000
#define DST 0x300000
#define WORDS (65536 / 8)

bench:
	mov	%rcx, %r9		/* iterations left */
2:	mov	$SRC, %rsi
	mov	$DST, %rdi
	mov	$WORDS, %rcx
	cmp	%rcx, %r9
	cmovb	%r9, %rcx
	sub	%rcx, %r9
1:	mov	(%rsi), %rax
	mov	%rax, (%rdi)
	add	$8, %rsi
	add	$8, %rdi
	dec	%rcx
	jnz	1b
	test	%r9, %r9
	jnz	2b
	ret
