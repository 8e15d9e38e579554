/* high64 - started in 64-bit long mode (--flat-mode long) with the first
 * 4 GiB identity-mapped: maps guest physical 4 GiB, where the board puts the
 * RAM beyond 3 GiB, with one 2 MiB page, writes a pattern there and reads
 * it back, and checks that it did not land in low RAM.  Prints "high ram:
 * ok" when the pattern came back, else "high ram: not there" (with no RAM
 * above 4 GiB the address is unowned MMIO: writes vanish, reads are all
 * ones). */
	.code64
	.globl _start
_start:
	cli
	mov	%cr3, %rax
	and	$~0xfff, %rax
	mov	(%rax), %rbx		/* PML4[0]: the PDPT of the first 512 GiB */
	and	$~0xfff, %rbx
	lea	high_pd(%rip), %rcx	/* the image is at 0: virtual = physical */
	movabs	$0x1000000e3, %rdx	/* 4 GiB: present, writable, accessed, dirty, 2 MiB */
	mov	%rdx, (%rcx)
	or	$0x23, %rcx		/* present, writable, accessed */
	mov	%rcx, 4*8(%rbx)		/* PDPT[4]: 4 GiB .. 5 GiB */
	mov	%cr3, %rax
	mov	%rax, %cr3		/* drop cached translations */

	movabs	$0x100000000, %rdi
	movabs	$0x0123456789abcdef, %rax
	mov	%rax, 0x10008(%rdi)
	lea	absent(%rip), %rsi
	cmp	0x10008(%rdi), %rax
	jne	1f
	cmp	0x10008, %rax		/* low RAM at the same offset: untouched */
	je	1f
	lea	present(%rip), %rsi
1:	call	puts_3f8
	hlt

#include "serial64.inc"

present:
	.asciz	"high ram: ok\n"
absent:
	.asciz	"high ram: not there\n"

	.balign	4096
high_pd:
	.fill	512, 8, 0
