/* outs16 - string port output: real mode at 0000:0000, "Helo\n" to the
 * debug console port 0xf1 with one REP OUTSB, then halt.  (Engines that
 * emulate string I/O themselves, as WHP's does, go element by element.) */
	.code16
	.globl _start
_start:
	cld
	xor	%ax, %ax
	mov	%ax, %ds
	mov	$message, %si
	mov	$5, %cx
	mov	$0xf1, %dx
	rep outsb
	hlt
message:
	.ascii	"Helo\n"
