/* regressions.c - every case the differential test ever found mismatching,
 * replayed by every run.  Append the initializer a mismatch report prints
 * (and the cause in a comment). */
#include "difftest.h"

const struct dt_regression dt_regressions[] = {
	/* REP MOVSQ of one element onto its own source 2 bytes lower, after a
	 * byte RMW had put a writable TLB entry for the page: the bulk copy
	 * did the element, then the element path did it again from the
	 * overwritten source (issue 14, seed 987654321, case 5056100). */
	{"rol Eb,1|sbb Ev,Gv|cmov10 Gv,Ev|rep movs",
	 "d0 05 89 04 01 00 4c 19 ee 45 0f 4a c1 48 c7 c6 19 13 01 10 48 c7 c7 17 13 01 10 48 c7 c1 01 00 00 00 "
	 "f3 48 a5 cc",
	 {0xb3d4e97a93490ef1, 0xff, 0xffffffffffffffa7, 0xffffffffffffffae, 0x10020800, 0x100207b6,
	  0xab9e5735699af177, 0x4e, 0x5d, 0x1a, 0x19, 0xffffffffffffff9d, 0x47, 0xffffffffffffffde, 0x25,
	  0x10011000},
	 0x11, 0, false, 0x4db594d6cb618f2d},
	/* EMMS left TOP alone; the CPU sets it to 0, as every MMX instruction
	 * does (found while adding MMX, seed 1). */
	{"fcom m32|emms|66 0f 38 33", "41 d8 17 0f 77 66 45 0f 38 33 67 00 cc",
	 {0x5db9941ba699b089, 0x8000000000000000, 0x3b, 0x80, 0x10020800, 0x10020793, 0xa83b571c1ffe18d6,
	  0xffffffffffffffff, 0xffffffffffffffff, 0x7b, 0x9b, 0xffffffffffffffc4, 0x8d, 0xd8, 0x2, 0x10011000},
	 0x895, 0, true, 0xe4dbc0d77245a5eb},
	/* DPPS with NaNs in both operands of a product: C's a * b let the
	 * compiler swap the operands, so the result kept the second NaN, not
	 * the first (issue 14, seed 7, case 4513). */
	{"set0 Eb|cmp AL,Ib|66 0f 3a 40 ib|fmul m32",
	 "41 0f 90 07 3c fe 66 41 0f 3a 40 8f b0 f5 ff ff ff d8 0d 91 02 01 00 cc",
	 {0x1d68d70e92992204, 0xffffffff, 0x65, 0x9, 0x10020800, 0x100207ad, 0xddaf7793099f2680,
	  0x7fffffffffffffff, 0xffffffffffffffff, 0x4c4715b858b90a3f, 0x50, 0x6c, 0xf0f0f0f0f0f0f0f,
	  0xffffffffffffffdd, 0xf, 0x10011000},
	 0x80, 0, false, 0x7a2c8ba896c43120},
	/* DPPD with underflow unmasked: the products raised UE (unmasked), so
	 * the CPU stopped before the sums; the software CPU added them too and
	 * set PE (CI's random seed 0x18ed491e65a3a49b, case 12031). */
	{"rep scasb|de /6 st(i),st pop|de /4 st(i),st pop|66 0f 3a 41 ib",
	 "48 c7 c6 33 04 01 10 48 c7 c7 97 0c 01 10 48 c7 c1 07 00 00 00 f3 ae de f4 de e3 66 0f 3a 41 e3 fa cc",
	 {0x31, 0xffffffffffffff8c, 0x7f, 0x7f, 0x10020800, 0x10020789, 0x7f, 0x39, 0x3b, 0xa2ee6dcc17a79cfe,
	  0x71, 0x23, 0x8000000000000000, 0xe751a04b19fbeae5, 0x1f, 0x10011000},
	 0x844, 0, true, 0x85d8673e292de7bc},
	/* SQRTSS of a negative denormal: IE alone.  __builtin_sqrtf called
	 * libm for errno, whose compares added DE (random seed
	 * 0x18ed72cfdc440547, case 292487). */
	{"f3 0f 51", "f3 41 0f 51 fc cc",
	 {0x6f, 0x29, 0x5b4b59ece9d75580, 0x9b4f9b57fa74446, 0x10020800, 0x1002078c, 0xddcbc9b1216125e0,
	  0x8000, 0xceed69611b4e6e05, 0x64, 0x2, 0xffffffffffffff93, 0xbf, 0x80000000, 0x19, 0x10011000},
	 0xd4, 0, true, 0x698d6919cc6c8eee},
};

const unsigned dt_nregressions = sizeof(dt_regressions) / sizeof(dt_regressions[0]);
