/* tlbout64 - started in 64-bit long mode: "Helo\n" to the debug console
 * port 0xf1, each OUT right after a store 4 MiB above the code, whose page
 * takes the code page's slot in the soft CPU's TLB (SOFTCPU_TLB_SIZE
 * entries of 4 KiB, direct-mapped).  The WHP stand-in once read an exit's
 * instruction bytes from that TLB: the OUT exited without its length and
 * the engine ran it again for ever. */
	.code64
	.globl _start
_start:
	cli
	lea	message(%rip), %rsi
	lea	_start + 0x400000(%rip), %rdi
1:	lodsb
	test	%al, %al
	jz	2f
	movb	%al, (%rdi)
	outb	%al, $0xf1
	jmp	1b
2:	hlt

message:
	.asciz	"Helo\n"
