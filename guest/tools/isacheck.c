/* isacheck - x86-64-v2 and MMX instructions, printed exactly.
 *
 * Built for -march=x86-64-v2, statically (isacheck) and dynamically linked
 * against Debian's glibc (isacheck-dyn, whose ld.so refuses to start on a
 * CPU without the baseline's MMX and whose string functions glibc picks at
 * run time by CPUID: the SSE4.2/SSSE3 variants on the soft CPU).
 * tests/e2e/test_guest_isa.py runs both on the host and in the guest on the
 * soft CPU: the outputs must be equal byte for byte.  It covers the SSE4.2
 * string compares in all their modes, CRC32, POPCNT, CMPXCHG16B, LAHF/SAHF,
 * SSSE3, SSE4.1 and MMX through compiler intrinsics, and glibc's string
 * functions over every alignment. */
#include <immintrin.h>
#include <mmintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* volatile: computed at run time, not folded by the compiler */
static volatile uint64_t seeds[] = {0x0123456789abcdefull, 0xfedcba9876543210ull, 0x8000000000000001ull,
				    0x00ff00ff7f80817eull, 0, ~0ull, 0x5555aaaa3333ccccull, 0x1122334455667788ull};

static __m128i vec(unsigned i)
{
	return _mm_set_epi64x((long long)seeds[i % 8], (long long)seeds[(i + 3) % 8]);
}

static void print128(const char *name, __m128i v)
{
	uint64_t q[2];
	memcpy(q, &v, 16);
	printf("%s %016llx%016llx\n", name, (unsigned long long)q[1], (unsigned long long)q[0]);
}

static void string_compares(void)
{
	static const char *const texts[] = {"hello, world", "Hello", "abcdefghijklmnopqrstuvwxyz", "", "a-z0-9 range",
					    "the quick brown fox jumps"};
	static const char *const sets[] = {"lo", "az", "world", "h", "09AZ", "fox"};
	for (unsigned t = 0; t < 6; t++)
		for (unsigned s = 0; s < 6; s++) {
			char a[16] = {0}, b[16] = {0};
			strncpy(a, sets[s], 15);
			strncpy(b, texts[t], 15);
			__m128i va = _mm_loadu_si128((const __m128i *)a), vb = _mm_loadu_si128((const __m128i *)b);
			int la = (int)strlen(a), lb = (int)strlen(b);
#define MODES(X) \
	X(_SIDD_UBYTE_OPS | _SIDD_CMP_EQUAL_ANY) \
	X(_SIDD_UBYTE_OPS | _SIDD_CMP_RANGES) \
	X(_SIDD_UBYTE_OPS | _SIDD_CMP_EQUAL_EACH | _SIDD_NEGATIVE_POLARITY) \
	X(_SIDD_UBYTE_OPS | _SIDD_CMP_EQUAL_ORDERED) \
	X(_SIDD_SBYTE_OPS | _SIDD_CMP_RANGES | _SIDD_MASKED_NEGATIVE_POLARITY | _SIDD_MOST_SIGNIFICANT) \
	X(_SIDD_UWORD_OPS | _SIDD_CMP_EQUAL_ANY | _SIDD_UNIT_MASK)
#define ONE(m) \
	printf("t%u s%u %02x istri %d estri %d z%d c%d ", t, s, (unsigned)(m), _mm_cmpistri(va, vb, (m)), \
	       _mm_cmpestri(va, la, vb, lb, (m)), _mm_cmpistrz(va, vb, (m)), _mm_cmpestrc(va, la, vb, lb, (m))); \
	print128("istrm", _mm_cmpistrm(va, vb, (m)));
			MODES(ONE)
		}
}

static void crc_popcnt_cx16_lahf(void)
{
	uint32_t crc = ~0u;
	for (unsigned i = 0; i < 8; i++) {
		crc = _mm_crc32_u8(crc, (uint8_t)seeds[i]);
		crc = _mm_crc32_u16(crc, (uint16_t)seeds[i]);
		crc = _mm_crc32_u32(crc, (uint32_t)seeds[i]);
		crc = (uint32_t)_mm_crc32_u64(crc, seeds[i]);
		printf("crc32c %08x popcnt %d %d\n", crc, __builtin_popcountll(seeds[i]), __builtin_popcount((unsigned)seeds[i]));
	}
	static unsigned __int128 cell __attribute__((aligned(16)));
	cell = ((unsigned __int128)seeds[0] << 64) | seeds[1];
	unsigned __int128 expect = cell, next = ((unsigned __int128)seeds[2] << 64) | seeds[3];
	int ok1 = __sync_bool_compare_and_swap(&cell, expect, next);
	int ok2 = __sync_bool_compare_and_swap(&cell, expect, expect);
	printf("cmpxchg16b %d %d %016llx%016llx\n", ok1, ok2, (unsigned long long)(cell >> 64), (unsigned long long)cell);
	unsigned long ah_flags;
	__asm__ volatile("xor %%eax, %%eax\n\tmov $0xd5, %%ah\n\tsahf\n\tlahf\n\tmovzbl %%ah, %%eax" : "=a"(ah_flags) : : "cc");
	printf("sahf/lahf %02lx\n", ah_flags);
}

static void ssse3_sse41(void)
{
	for (unsigned i = 0; i < 8; i++) {
		__m128i a = vec(i), b = vec(i + 1), m = vec(i + 2);
		printf("i%u\n", i);
		print128("pshufb", _mm_shuffle_epi8(a, b));
		print128("palignr", _mm_alignr_epi8(a, b, 5));
		print128("phaddw", _mm_hadd_epi16(a, b));
		print128("phsubsw", _mm_hsubs_epi16(a, b));
		print128("pmaddubsw", _mm_maddubs_epi16(a, b));
		print128("pmulhrsw", _mm_mulhrs_epi16(a, b));
		print128("pabsb", _mm_abs_epi8(a));
		print128("psignw", _mm_sign_epi16(a, b));
		print128("pminsd", _mm_min_epi32(a, b));
		print128("pmaxuw", _mm_max_epu16(a, b));
		print128("pmovzxbw", _mm_cvtepu8_epi16(a));
		print128("pmovsxwd", _mm_cvtepi16_epi32(a));
		print128("pblendvb", _mm_blendv_epi8(a, b, m));
		print128("pblendw", _mm_blend_epi16(a, b, 0xa5));
		print128("pmulld", _mm_mullo_epi32(a, b));
		print128("pmuldq", _mm_mul_epi32(a, b));
		print128("packusdw", _mm_packus_epi32(a, b));
		print128("pcmpeqq", _mm_cmpeq_epi64(a, b));
		print128("pcmpgtq", _mm_cmpgt_epi64(a, b));
		print128("mpsadbw", _mm_mpsadbw_epu8(a, b, 5));
		print128("phminposuw", _mm_minpos_epu16(a));
		print128("pinsrb", _mm_insert_epi8(a, (int)i, 9));
		printf("pextrq %llx ptest %d %d\n", (unsigned long long)_mm_extract_epi64(a, 1), _mm_testz_si128(a, b),
		       _mm_testc_si128(a, b));
		__m128 fa = _mm_set_ps((float)i * 1.25f, -2.5f, 3.75f, (float)seeds[i]);
		__m128 fb = _mm_set_ps(0.5f, (float)i, -1.5f, 1e-3f);
		print128("dpps", _mm_castps_si128(_mm_dp_ps(fa, fb, 0xf3)));
		print128("roundps", _mm_castps_si128(_mm_round_ps(fa, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)));
		print128("insertps", _mm_castps_si128(_mm_insert_ps(fa, fb, 0x9c)));
		__m128d da = _mm_set_pd((double)seeds[i] / 3, -2.5 * i), db = _mm_set_pd(1.5, 0.1);
		print128("dppd", _mm_castpd_si128(_mm_dp_pd(da, db, 0x31)));
		print128("roundsd", _mm_castpd_si128(_mm_round_sd(da, da, _MM_FROUND_TO_NEAREST_INT)));
		printf("extractps %x\n", (unsigned)_mm_extract_ps(fa, 2));
	}
}

static void mmx(void)
{
	for (unsigned i = 0; i < 8; i++) {
		__m64 a = _mm_cvtsi64_m64((long long)seeds[i]), b = _mm_cvtsi64_m64((long long)seeds[(i + 1) % 8]);
		long long r[8] = {
			_mm_cvtm64_si64(_mm_add_pi16(a, b)),   _mm_cvtm64_si64(_mm_subs_pu8(a, b)),
			_mm_cvtm64_si64(_mm_mullo_pi16(a, b)), _mm_cvtm64_si64(_mm_madd_pi16(a, b)),
			_mm_cvtm64_si64(_mm_unpackhi_pi8(a, b)), _mm_cvtm64_si64(_mm_packs_pi16(a, b)),
			_mm_cvtm64_si64(_mm_srai_pi16(a, 3)),  _mm_cvtm64_si64(_mm_cmpgt_pi32(a, b)),
		};
		_mm_empty();
		printf("mmx%u", i);
		for (unsigned k = 0; k < 8; k++)
			printf(" %016llx", (unsigned long long)r[k]);
		printf("\n");
	}
	/* an x87 computation right after MMX: EMMS left the stack usable */
	volatile long double x = 2.0L;
	printf("x87 after emms %.10Lf\n", x / 3);
}

/* glibc's string functions (the SSE4.2/SSSE3 variants where CPUID allows),
 * over every alignment of the source and both ends of a page of text */
static void libc_strings(void)
{
	static char buf[4096 + 64];
	for (unsigned i = 0; i < sizeof(buf) - 1; i++)
		buf[i] = (char)('a' + (i * 7 + i / 13) % 26);
	buf[sizeof(buf) - 1] = 0;
	unsigned long acc = 0;
	for (unsigned off = 0; off < 64; off++) {
		char *s = buf + off;
		acc = acc * 31 + strlen(s);
		acc = acc * 31 + strspn(s, "abcdefghijklm");
		acc = acc * 31 + strcspn(s, "xyz");
		acc = acc * 31 + (unsigned long)(strpbrk(s, "qz") - s);
		acc = acc * 31 + (unsigned long)(strstr(s, "zhov") ? strstr(s, "zhov") - s : 0);
		acc = acc * 31 + (unsigned long)(strchr(s, 'q') - s);
		acc = acc * 31 + (unsigned long)(strrchr(s, 'q') - s);
		acc = acc * 31 + (unsigned long)(memchr(s, 'z', 4000) ? (char *)memchr(s, 'z', 4000) - s : 0);
		acc = acc * 31 + (unsigned long)(strcasecmp(s, buf + 1) + 1000);
		acc = acc * 31 + (unsigned long)(strncasecmp(s, s + 26 * 13, 200) + 1000);
		acc = acc * 31 + (unsigned long)(memcmp(s, buf + (off ^ 1), 100) > 0);
		char copy[200];
		memcpy(copy, s, 199);
		copy[199] = 0;
		memmove(copy + 3, copy, 100);
		acc = acc * 31 + strlen(copy) + (unsigned char)copy[50];
	}
	printf("libc strings %016lx\n", acc);
}

int main(void)
{
	string_compares();
	crc_popcnt_cx16_lahf();
	ssse3_sse41();
	mmx();
	libc_strings();
	return 0;
}
