/* echo64 - 64-bit long mode: prints "echo ready", then echoes every byte it
 * receives on the 16550 at 0x3f8 (polling LSR.DR, no interrupts) until it
 * reads Ctrl-D (0x04): then prints "bye" and halts.  The input-path tests
 * send it bulk data through pipes and keystrokes through a pty. */
#include "uart_regs.h"

	.code64
	.globl _start
_start:
	cli
	lea	ready(%rip), %rsi
	call	puts_3f8
echo:
	mov	$COM1_LSR, %dx
1:	in	%dx, %al
	test	$LSR_DR, %al
	jz	1b
	mov	$COM1_RBR, %dx
	in	%dx, %al
	cmp	$0x04, %al
	je	done
	call	putc_3f8
	jmp	echo
done:
	lea	bye(%rip), %rsi
	call	puts_3f8
	hlt

#include "serial64.inc"

ready:
	.asciz	"echo ready\n"
bye:
	.asciz	"bye\n"
