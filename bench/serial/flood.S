/* flood - ttyS0 output throughput: print COUNT bytes through the 16550 at
 * 0x3f8 the way Linux's 8250 console does (poll LSR.THRE before every byte),
 * then leave through QEMU's isa-debug-exit port 0xf4 (unowned under minivm:
 * logged once, then the HLT ends the run).  Real mode, so the same binary
 * runs under QEMU's reset-vector trick and minivm's --flat.
 * COUNT is a 32-bit value at offset 8; run.py patches it. */
	.code16
	.text
	.globl	_start
_start:
	jmp	main
	.org	8
count:	.long	65536

main:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	movl	count, %ecx
	xor	%bl, %bl		/* column: a newline every 64 bytes */
next:
	mov	$0x3fd, %dx		/* LSR */
1:	in	(%dx), %al
	test	$0x20, %al		/* THRE */
	jz	1b
	mov	$0x3f8, %dx		/* THR */
	mov	$'x', %al
	inc	%bl
	cmp	$64, %bl
	jne	2f
	mov	$'\n', %al
	xor	%bl, %bl
2:	out	%al, (%dx)
	dec	%ecx
	jnz	next

	mov	$0xf4, %dx		/* QEMU: isa-debug-exit */
	xor	%al, %al
	out	%al, (%dx)
	hlt
