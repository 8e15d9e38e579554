/* x87check - long double arithmetic through the x87 FPU, printed exactly.
 *
 * tests/e2e/test_guest_isa.py runs it on the host and in the guest on the
 * soft CPU: the outputs must be equal byte for byte.  It exercises what
 * compiled C uses the x87 for: long double arithmetic in every rounding
 * mode, conversions to and from integers and doubles, libm's long double
 * functions (which use FSQRT, FPREM, FSCALE, FYL2X, F2XM1, FPATAN, FSIN...),
 * and printf's %Lf / %La formatting. */
#include <fenv.h>
#include <math.h>
#include <stdio.h>

/* volatile: computed at run time, not folded by the compiler */
static volatile long double seeds[] = {1.0L / 3, -2.5L, 1e300L * 1e300L, 7.0L, 1e-4000L, 0.1L, 123456789.123456789L};

int main(void)
{
	static const int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
	long double sum = 0;
	for (unsigned m = 0; m < 4; m++) {
		fesetround(modes[m]);
		for (unsigned i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
			long double a = seeds[i], b = seeds[(i + 1) % 7];
			long double q = a / b, p = a * b + q, r = sqrtl(fabsl(a));
			long long n = llrintl(q * 1000);
			double d = (double)p;
			printf("m%u i%u %La %La %La %lld %a %.21Lg %.21Lf\n", m, i, q, p, r, n, d, q, fmodl(q, 1e6L));
			sum += q - r;
		}
	}
	fesetround(FE_TONEAREST);
	for (int k = -3; k <= 3; k++) {
		long double x = k * 0.7L + 0.05L;
		printf("f%d %La %La %La %La %La %La %La\n", k, sinl(x), cosl(x), tanl(x), atan2l(x, 1.5L),
		       expl(x), log1pl(fabsl(x)), fmodl(x * 1e6L, 0.3L));
		printf("g%d %La %La %La %.30Lg\n", k, log2l(fabsl(x) + 1), exp2l(x), ldexpl(x, k * 100), powl(fabsl(x), 2.5L));
	}
	printf("sum %Lf %.25Le %La\n", sum, sum, sum);
	printf("rint %La %La\n", rintl(2.5L), nearbyintl(-3.5L));
	int e;
	long double f = frexpl(seeds[6], &e);
	printf("frexp %La %d logb %La\n", f, e, logbl(seeds[4]));
	return 0;
}
