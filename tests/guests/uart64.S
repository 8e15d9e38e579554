/* uart64 - started directly in 64-bit long mode (--flat-mode long): prints a
 * line through the 16550 at 0x3f8, polling LSR.THRE, then halts with
 * interrupts off. */
	.code64
	.globl _start
_start:
	cli
	lea	message(%rip), %rsi
	call	puts_3f8
	hlt

#include "serial64.inc"

message:
	.asciz	"Hello from long mode via the 16550\n"
