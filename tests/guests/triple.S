/* triple - real mode: an interrupt table of limit 0 makes int3 undeliverable,
 * and so are the #GP and the #DF that follow: a triple fault, which the core
 * reports as one diagnosis line and exit status 2.
 *
 * KVM's instruction emulator (which runs real mode on PVM hosts such as ours)
 * ignores the IDT limit in real mode and vectors int3 through the IVT at
 * 0000:000c.  That entry leads to `fallback`, which faults again in 32-bit
 * protected mode, where the emulator does honour the limit: a triple fault
 * on every engine. */
	.code16
	.globl _start
_start:
	jmp	start
	.org	3 * 4			/* real-mode IVT entry of vector 3 (int3) */
	.word	fallback, 0		/* offset, segment */
start:
	lidtw	empty_idt		/* DS = 0 and the image is at 0 */
	int3

fallback:
	cli
	lgdtw	gdt_descriptor
	mov	%cr0, %eax
	or	$1, %eax		/* CR0.PE */
	mov	%eax, %cr0
	ljmpw	$8, $protected
	.code32
protected:
	ud2				/* #UD -> #GP -> #DF -> shutdown: IDT limit is still 0 */

	.p2align 3
gdt:
	.quad	0
	.quad	0x00cf9b000000ffff	/* 0x08: flat 32-bit code */
gdt_descriptor:
	.word	2 * 8 - 1
	.long	gdt
empty_idt:
	.word	0			/* limit */
	.long	0			/* base */
