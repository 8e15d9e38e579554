/* s003 - the classic first arm64 KVM program, as written: 12 instruction
 * words loaded at guest physical 0x10000 and entered there in EL1, printing
 * "Hello\n" by byte stores to the MMIO debug port 0x996.  It has no way to
 * stop: after the last store it runs off its end (into zeroed RAM, an
 * undefined instruction), and the VM must end with a diagnosis. */
	.globl _start
_start:
	mov	x0, #0x996
	mov	w1, #'H'
	strb	w1, [x0]
	mov	w1, #'e'
	strb	w1, [x0]
	mov	w1, #'l'
	strb	w1, [x0]
	strb	w1, [x0]
	mov	w1, #'o'
	strb	w1, [x0]
	mov	w1, #'\n'
	strb	w1, [x0]
