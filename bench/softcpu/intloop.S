/* intloop - an integer loop: 20 ALU instructions, DEC and JNZ per iteration. */
#define INSNS_PER_ITERATION 22
#include "longmode.inc"

bench:
	mov	$1, %rax
	mov	$2, %rbx
	mov	$3, %rdx
	mov	$4, %rsi
1:	add	%rax, %rbx
	xor	%rbx, %rdx
	sub	%rdx, %rsi
	shl	$3, %rax
	or	%rsi, %rax
	add	$7, %rbx
	and	%rbx, %rdx
	ror	$5, %rsi
	lea	1(%rax,%rbx), %rdi
	add	%rdi, %rdx
	xor	%rax, %rsi
	sub	$3, %rbx
	adc	%rdx, %rax
	shr	$2, %rdx
	add	%rsi, %rdi
	inc	%rax
	cmp	%rdi, %rbx
	mov	%rdi, %rsi
	imul	%rbx, %rdx
	test	%rax, %rdx
	dec	%rcx
	jnz	1b
	ret
