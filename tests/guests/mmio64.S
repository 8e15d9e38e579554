/* mmio64 - 64-bit long mode: prints a line through the MMIO 16550 that
 * dev-serial maps with --mmio-uart 0xd0000000 (1-byte register stride), then
 * reads 4 bytes where no device lives and prints what came back through the
 * port UART: "unowned mmio read: ffffffff". */
#include "uart_regs.h"

	.code64
	.globl _start

#define MMIO_UART 0xd0000000
#define UNOWNED 0xd0100000

_start:
	cli
	mov	$MMIO_UART, %rdi
	lea	mmio_message(%rip), %rsi
next_mmio_byte:
	lodsb
	test	%al, %al
	jz	read_unowned
1:	testb	$LSR_THRE, MMIO_LSR(%rdi)
	jz	1b
	mov	%al, MMIO_THR(%rdi)
	jmp	next_mmio_byte

read_unowned:
	mov	$UNOWNED, %rax
	mov	(%rax), %ebx		/* a 4-byte read nobody owns */
	lea	prefix(%rip), %rsi
	call	puts_3f8
	mov	$8, %ecx		/* 8 hex digits, most significant first */
next_digit:
	rol	$4, %ebx
	mov	%bl, %al
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	1f
	add	$('a' - '0' - 10), %al
1:	call	putc_3f8
	dec	%ecx
	jnz	next_digit
	mov	$'\n', %al
	call	putc_3f8
	hlt

#include "serial64.inc"

mmio_message:
	.asciz	"Hello from the MMIO UART\n"
prefix:
	.asciz	"unowned mmio read: "
