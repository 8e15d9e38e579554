/* counter64 - 64-bit long mode: prints 0, 1, 2, ... in decimal, one per
 * line, forever, through the 16550 at 0x3f8.  The supervision test kills and
 * restarts dev-serial while it runs: the numbers show whether the guest kept
 * going (no reset) and what was lost in flight. */
	.code64
	.globl _start
_start:
	cli
	xor	%r12, %r12		/* the counter */
forever:
	mov	%r12, %rax
	call	print_decimal
	mov	$'\n', %al
	call	putc_3f8
	inc	%r12
	jmp	forever

/* print_decimal: print %rax in decimal.  Digits come out least significant
 * first, so they are pushed and printed as they are popped. */
print_decimal:
	mov	$10, %r8
	xor	%ecx, %ecx		/* digits on the stack */
1:	xor	%edx, %edx
	div	%r8
	add	$'0', %dl
	push	%rdx
	inc	%ecx
	test	%rax, %rax
	jnz	1b
2:	pop	%rax
	call	putc_3f8		/* keeps %rcx */
	dec	%ecx
	jnz	2b
	ret

#include "serial64.inc"
