/* s001 - the classic first KVM program, exactly as written: real mode at
 * 0000:0000, "Helo\n" to the debug console port 0xf1, then halt. */
	.code16
	.globl _start
_start:
start:
mov     $0x48,%al
outb    %al,$0xf1
mov     $0x65,%al
outb    %al,$0xf1
mov     $0x6c,%al
outb    %al,$0xf1
mov     $0x6f,%al
outb    %al,$0xf1
mov     $0x0a,%al
outb    %al,$0xf1
hlt
