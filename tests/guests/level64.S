/* level64 - 64-bit long mode: a level-triggered interrupt line must fire
 * again after each EOI while the device keeps it asserted (the IOAPIC's
 * remote IRR, cleared by the LAPIC's EOI broadcast; on KVM the EOI exit).
 * The UART's THR-empty interrupt holds IRQ 4 high until IIR is read or
 * IER cleared; IOAPIC pin 4 is programmed level-triggered to vector 0x41 on
 * APIC 0.  The handler only counts and EOIs, five times, then clears IER.
 * Prints "level irq: 5 deliveries" or, if the line stalled after an EOI,
 * "level irq: stalled after N". */
#include "uart_regs.h"

	.code64
	.globl _start

#define VECTOR 0x41
#define IOAPIC 0xfec00000
#define LAPIC 0xfee00000
#define LAPIC_SVR 0xf0
#define LAPIC_EOI 0xb0
#define COM1_IER 0x3f9
#define COM1_MCR 0x3fc
#define WANTED 5

_start:
	cli
	lea	irq_handler(%rip), %rax
	lea	idt(%rip), %rdi
	mov	%ax, VECTOR*16(%rdi)
	movw	$0x08, VECTOR*16+2(%rdi)
	movw	$0x8e00, VECTOR*16+4(%rdi)
	shr	$16, %rax
	mov	%ax, VECTOR*16+6(%rdi)
	lea	idtr(%rip), %rsi
	mov	%rdi, 2(%rsi)
	lidt	(%rsi)

	mov	$LAPIC, %rdi
	movl	$0x1ff, LAPIC_SVR(%rdi)		/* software-enable the LAPIC */
	mov	$IOAPIC, %rdi
	movl	$0x19, (%rdi)			/* entry 4, high half: APIC 0 */
	movl	$0, 0x10(%rdi)
	movl	$0x18, (%rdi)			/* low half: level, fixed, unmasked */
	movl	$(0x8000 | VECTOR), 0x10(%rdi)
	mov	$COM1_MCR, %dx			/* OUT2 */
	mov	$0x08, %al
	out	%al, %dx
	mov	$COM1_IER, %dx			/* THR empty: the line goes high */
	mov	$0x02, %al
	out	%al, %dx

	rdtsc					/* bounded by time: a stalled line must not hang */
	shl	$32, %rdx
	or	%rax, %rdx
	mov	%rdx, %rsi
	mov	$5000000000, %rcx		/* TSC ticks: seconds at any likely rate */
	add	%rcx, %rsi
	sti
1:	cmpl	$WANTED, count(%rip)
	jae	2f
	rdtsc
	shl	$32, %rdx
	or	%rax, %rdx
	cmp	%rsi, %rdx
	jb	1b
2:	cli
	mov	count(%rip), %ebx
	cmp	$WANTED, %ebx
	jb	stalled
	lea	done_message(%rip), %rsi
	call	puts_3f8
	hlt
stalled:
	lea	stalled_message(%rip), %rsi
	call	puts_3f8
	lea	'0'(%rbx), %eax
	call	putc_3f8
	mov	$'\n', %al
	call	putc_3f8
	hlt

/* Counts; at WANTED turns the UART's interrupt off.  Never reads IIR, so
 * the line stays asserted across the EOI until then. */
irq_handler:
	push	%rax
	push	%rdx
	incl	count(%rip)
	cmpl	$WANTED, count(%rip)
	jb	1f
	mov	$COM1_IER, %dx
	xor	%eax, %eax
	out	%al, %dx
1:	mov	$LAPIC, %rax
	movl	$0, LAPIC_EOI(%rax)
	pop	%rdx
	pop	%rax
	iretq

#include "serial64.inc"

done_message:
	.asciz	"level irq: 5 deliveries\n"
stalled_message:
	.asciz	"level irq: stalled after "
count:
	.long	0
	.balign	8
idtr:
	.word	(VECTOR+1)*16 - 1
	.quad	0
	.balign	16
idt:
	.fill	(VECTOR+1)*16, 1, 0
