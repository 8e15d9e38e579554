/* badinput64 - 64-bit long mode, interrupts off: a guest that asks for what
 * the board does not have.  Each must end in a guest-visible fault or a
 * logged drop, never a hang:
 *   rdmsr/wrmsr of an MSR no CPU has      -> #GP (the handler skips it)
 *   IOAPIC pin 4 sent to APIC 127, which does not exist, then the UART's
 *   THR-empty interrupt raised on it       -> the message is dropped
 * Prints "rdmsr: #GP", "wrmsr: #GP", "irq to APIC 127: raised" and halts. */
#include "uart_regs.h"

	.code64
	.globl _start

#define BOGUS_MSR 0x4b564dff /* past KVM's and everyone's MSRs */
#define IOAPIC 0xfec00000
#define COM1_IER 0x3f9
#define COM1_IIR 0x3fa
#define COM1_MCR 0x3fc

_start:
	cli
	/* An IDT whose vector 13 (#GP) is gp_handler: a 64-bit interrupt gate. */
	lea	gp_handler(%rip), %rax
	lea	idt(%rip), %rdi
	mov	%ax, 13*16(%rdi)		/* offset 15..0 */
	movw	$0x08, 13*16+2(%rdi)		/* code selector */
	movw	$0x8e00, 13*16+4(%rdi)		/* present, DPL 0, interrupt gate */
	shr	$16, %rax
	mov	%ax, 13*16+6(%rdi)		/* offset 31..16 */
	lea	idtr(%rip), %rsi
	mov	%rdi, 2(%rsi)
	lidt	(%rsi)

	movb	$0, faulted(%rip)
	mov	$BOGUS_MSR, %ecx
	rdmsr
	lea	rdmsr_ok(%rip), %rsi
	lea	rdmsr_gp(%rip), %rbx
	call	report
	movb	$0, faulted(%rip)
	mov	$BOGUS_MSR, %ecx
	xor	%eax, %eax
	xor	%edx, %edx
	wrmsr
	lea	wrmsr_ok(%rip), %rsi
	lea	wrmsr_gp(%rip), %rbx
	call	report

	/* IOAPIC entry 4: vector 0x41, fixed, edge, unmasked, to APIC 127. */
	mov	$IOAPIC, %rdi
	movl	$0x19, (%rdi)			/* IOREGSEL: entry 4, high half */
	movl	$0x7f000000, 0x10(%rdi)
	movl	$0x18, (%rdi)			/* low half */
	movl	$0x41, 0x10(%rdi)
	/* The UART raises its line when THR is empty and the THRE interrupt is
	 * enabled (OUT2 gates the line on a PC). */
	mov	$COM1_MCR, %dx
	mov	$0x08, %al
	out	%al, %dx
	mov	$COM1_IER, %dx
	mov	$0x02, %al
	out	%al, %dx
	mov	$COM1_IIR, %dx
1:	in	%dx, %al			/* until the UART says it interrupts */
	and	$0x0f, %al
	cmp	$0x02, %al
	jne	1b
	lea	irq_message(%rip), %rsi
	call	puts_3f8
	hlt

/* Print %rbx if the last instruction faulted, else %rsi. */
report:
	cmpb	$0, faulted(%rip)
	cmovne	%rbx, %rsi
	jmp	puts_3f8

/* #GP: note it and step over the 2-byte rdmsr/wrmsr. */
gp_handler:
	movb	$1, faulted(%rip)
	add	$8, %rsp			/* the error code */
	addq	$2, (%rsp)
	iretq

#include "serial64.inc"

rdmsr_ok:
	.asciz	"rdmsr: no fault\n"
rdmsr_gp:
	.asciz	"rdmsr: #GP\n"
wrmsr_ok:
	.asciz	"wrmsr: no fault\n"
wrmsr_gp:
	.asciz	"wrmsr: #GP\n"
irq_message:
	.asciz	"irq to APIC 127: raised\n"
faulted:
	.byte	0
	.balign	8
idtr:
	.word	14*16 - 1
	.quad	0
	.balign	16
idt:
	.fill	14*16, 1, 0
