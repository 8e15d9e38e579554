/* x87 - the x87 FPU: x = sqrt(x * x) on the register stack, four x87
 * instructions and the loop's two per iteration. */
#define INSNS_PER_ITERATION 6
#include "longmode.inc"

bench:
	fninit
	fldpi
1:	fld	%st(0)
	fmul	%st(1), %st
	fsqrt
	fstp	%st(1)
	dec	%rcx
	jnz	1b
	fstp	%st(0)
	ret
