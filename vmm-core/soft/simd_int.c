/* simd_int.c - packed-integer SIMD and data movement: the MMX forms (0F
 * opcodes without a prefix, on MM0-MM7, which alias the x87 registers:
 * x87.c), their SSE2 forms on XMM (66 prefix), SSSE3, SSE4.1's integer,
 * blend, insert/extract and PMOVSX/ZX forms, and SSE4.2 (PCMPGTQ, the
 * PCMPxSTRx string compares, CRC32).
 *
 * One code path serves both register files: an MMX operand is held as a
 * 128-bit value whose upper half is zero, `vlen` (8 or 16) says how many
 * bytes are live, and lane-wise operations simply ignore the dead half. */
#include "simd.h"

/* ---- operands ---- */

struct vop {
	struct softcpu *c;
	const struct insn *in;
	bool mmx;
	unsigned vlen; /* 8 (MMX) or 16 (XMM) */
};

static struct xmm_reg mm_value(uint64_t v)
{
	return (struct xmm_reg){{v, 0}};
}

/* The r/m source: XMM reads of memory require 16-byte alignment unless
 * `unaligned`; MMX reads 8 bytes. */
static struct xmm_reg read_src(const struct vop *v, bool unaligned)
{
	if (!v->mmx)
		return read_x(v->c, v->in, !unaligned);
	if (v->in->mod == 3)
		return mm_value(softcpu_mmx_get(v->c, v->in->rm & 7));
	return mm_value(mem_read(v->c, mem_addr(v->c, v->in), 8));
}

static struct xmm_reg read_dst(const struct vop *v)
{
	if (v->mmx)
		return mm_value(softcpu_mmx_get(v->c, v->in->reg & 7));
	return *xreg(v->c, v->in->reg);
}

/* Every memory access is done: the MMX transition, then the register write. */
static void write_dst(const struct vop *v, struct xmm_reg r)
{
	if (v->mmx) {
		softcpu_mmx_enter(v->c);
		softcpu_mmx_set(v->c, v->in->reg & 7, r.q[0]);
	} else {
		*xreg(v->c, v->in->reg) = r;
	}
}

/* ---- lane operations ---- */

enum pint {
	PADD, PSUB, PADDUS, PSUBUS, PADDS, PSUBS, PCMPEQ, PCMPGT, PMINU, PMAXU, PMINS, PMAXS,
	PMULLO, PMULHS, PMULHU, PAVG, PSIGN, PMULHRS, PABS, PAND, PANDN, POR, PXOR,
	PMULUDQ, PMULDQ,
};

static uint64_t saturate(int64_t v, unsigned w, bool is_signed)
{
	int64_t hi = is_signed ? (int64_t)(size_mask(w) >> 1) : (int64_t)size_mask(w);
	int64_t lo = is_signed ? -hi - 1 : 0;
	return (uint64_t)(v > hi ? hi : v < lo ? lo : v) & size_mask(w);
}

static struct xmm_reg packed_int(enum pint op, unsigned w, struct xmm_reg a, struct xmm_reg b)
{
	struct xmm_reg r = {{0, 0}};
	uint64_t m = size_mask(w);
	for (unsigned i = 0; i < 16 / w; i++) {
		uint64_t x = lane(&a, w, i), y = lane(&b, w, i), v;
		int64_t sx = slane(&a, w, i), sy = slane(&b, w, i);
		switch (op) {
		case PADD: v = x + y; break;
		case PSUB: v = x - y; break;
		case PADDUS: v = saturate((int64_t)(x + y), w, false); break;
		case PSUBUS: v = x > y ? x - y : 0; break;
		case PADDS: v = saturate(sx + sy, w, true); break;
		case PSUBS: v = saturate(sx - sy, w, true); break;
		case PCMPEQ: v = x == y ? m : 0; break;
		case PCMPGT: v = sx > sy ? m : 0; break;
		case PMINU: v = x < y ? x : y; break;
		case PMAXU: v = x > y ? x : y; break;
		case PMINS: v = (uint64_t)(sx < sy ? sx : sy); break;
		case PMAXS: v = (uint64_t)(sx > sy ? sx : sy); break;
		case PMULLO: v = x * y; break;
		case PMULHS: v = (uint64_t)((sx * sy) >> (8 * w)); break;
		case PMULHU: v = (x * y) >> (8 * w); break;
		case PAVG: v = (x + y + 1) >> 1; break;
		case PSIGN: v = sy < 0 ? -x : sy == 0 ? 0 : x; break;
		case PMULHRS: v = (uint64_t)((((sx * sy) >> 14) + 1) >> 1); break;
		case PABS: v = sy < 0 ? -y : y; break;
		case PAND: v = x & y; break;
		case PANDN: v = ~x & y; break;
		case POR: v = x | y; break;
		case PXOR: v = x ^ y; break;
		case PMULUDQ: v = (x & 0xffffffffu) * (y & 0xffffffffu); break;
		default: v = (uint64_t)((int64_t)(int32_t)x * (int32_t)y); break; /* PMULDQ */
		}
		set_lane(&r, w, i, v & m);
	}
	return r;
}

/* Shifts by a count: 0 logical right, 1 arithmetic right, 2 left. */
static struct xmm_reg packed_shift(unsigned kind, unsigned w, struct xmm_reg a, uint64_t count)
{
	struct xmm_reg r;
	unsigned bits = 8 * w;
	for (unsigned i = 0; i < 16 / w; i++) {
		uint64_t x = lane(&a, w, i), v;
		if (kind == 1)
			v = (uint64_t)(slane(&a, w, i) >> (count >= bits ? bits - 1 : count));
		else if (count >= bits)
			v = 0;
		else
			v = kind == 0 ? x >> count : x << count;
		set_lane(&r, w, i, v & size_mask(w));
	}
	return r;
}

static struct xmm_reg from_bytes(const uint8_t b[16])
{
	struct xmm_reg r;
	memcpy(r.q, b, 16);
	return r;
}

/* Byte shift of the whole register (PSLLDQ / PSRLDQ). */
static struct xmm_reg byte_shift(struct xmm_reg a, unsigned n, bool left)
{
	uint8_t in[16], out[16] = {0};
	memcpy(in, a.q, 16);
	for (unsigned i = 0; n < 16 && i < 16 - n; i++) {
		if (left)
			out[i + n] = in[i];
		else
			out[i] = in[i + n];
	}
	return from_bytes(out);
}

/* PUNPCKL/H, UNPCKL/HPS/PD: interleave lanes of width w from the low (high)
 * halves of vlen-byte operands. */
static struct xmm_reg unpack(unsigned w, bool high, unsigned vlen, struct xmm_reg a, struct xmm_reg b)
{
	struct xmm_reg r = {{0, 0}};
	unsigned half = vlen / 2 / w, base = high ? half : 0;
	for (unsigned i = 0; i < half; i++) {
		set_lane(&r, w, 2 * i, lane(&a, w, base + i));
		set_lane(&r, w, 2 * i + 1, lane(&b, w, base + i));
	}
	return r;
}

/* PACKSS / PACKUS: lanes of width w narrowed with saturation, a's then b's. */
static struct xmm_reg pack(unsigned w, bool is_signed, unsigned vlen, struct xmm_reg a, struct xmm_reg b)
{
	struct xmm_reg r = {{0, 0}};
	unsigned n = vlen / w;
	for (unsigned i = 0; i < n; i++) {
		set_lane(&r, w / 2, i, saturate(slane(&a, w, i), w / 2, is_signed));
		set_lane(&r, w / 2, n + i, saturate(slane(&b, w, i), w / 2, is_signed));
	}
	return r;
}

/* PHADD/PHSUB(S)W/D: adjacent pairs of a, then of b. */
static struct xmm_reg horizontal(unsigned w, bool sub, bool sat, unsigned vlen, struct xmm_reg a, struct xmm_reg b)
{
	struct xmm_reg r = {{0, 0}};
	unsigned n = vlen / w;
	for (unsigned i = 0; i < n; i++) {
		const struct xmm_reg *from = i < n / 2 ? &a : &b;
		unsigned j = 2 * (i % (n / 2));
		int64_t x = slane(from, w, j), y = slane(from, w, j + 1), s = sub ? x - y : x + y;
		set_lane(&r, w, i, sat ? saturate(s, w, true) : (uint64_t)s & size_mask(w));
	}
	return r;
}

/* PMADDWD (signed words) and PMADDUBSW (unsigned bytes of a times signed bytes of b). */
static struct xmm_reg multiply_add(unsigned w, struct xmm_reg a, struct xmm_reg b)
{
	struct xmm_reg r;
	for (unsigned i = 0; i < 16 / (2 * w); i++) {
		int64_t s = 0;
		for (unsigned k = 2 * i; k < 2 * i + 2; k++)
			s += (w == 2 ? slane(&a, 2, k) : (int64_t)lane(&a, 1, k)) * slane(&b, w, k);
		set_lane(&r, 2 * w, i, w == 2 ? (uint64_t)s & 0xffffffffu : saturate(s, 2, true));
	}
	return r;
}

static struct xmm_reg sad(struct xmm_reg a, struct xmm_reg b)
{
	struct xmm_reg r = {{0, 0}};
	for (unsigned i = 0; i < 16; i++) {
		uint64_t x = lane(&a, 1, i), y = lane(&b, 1, i);
		r.q[i / 8] += x > y ? x - y : y - x;
	}
	return r;
}

static struct xmm_reg pshufb(unsigned vlen, struct xmm_reg a, struct xmm_reg b)
{
	struct xmm_reg r = {{0, 0}};
	for (unsigned i = 0; i < vlen; i++) {
		unsigned sel = (unsigned)lane(&b, 1, i);
		set_lane(&r, 1, i, sel & 0x80 ? 0 : lane(&a, 1, sel & (vlen - 1)));
	}
	return r;
}

/* PALIGNR: the 2*vlen bytes a:b shifted right by n bytes, low vlen kept. */
static struct xmm_reg palignr(unsigned vlen, struct xmm_reg a, struct xmm_reg b, unsigned n)
{
	uint8_t cat[32] = {0}, out[16] = {0};
	memcpy(cat, b.q, vlen);
	memcpy(cat + vlen, a.q, vlen);
	for (unsigned i = 0; i < vlen; i++)
		out[i] = n + i < 2 * vlen ? cat[n + i] : 0;
	return from_bytes(out);
}

static unsigned movemask(unsigned vlen, struct xmm_reg s)
{
	unsigned mask = 0;
	for (unsigned i = 0; i < vlen; i++)
		mask |= (unsigned)(lane(&s, 1, i) >> 7) << i;
	return mask;
}

/* ---- SSE4.1 / SSE4.2 helpers ---- */

static struct xmm_reg mpsadbw(struct xmm_reg a, struct xmm_reg b, unsigned imm)
{
	struct xmm_reg r;
	unsigned aoff = ((imm >> 2) & 1) * 4, boff = (imm & 3) * 4;
	for (unsigned i = 0; i < 8; i++) {
		uint64_t s = 0;
		for (unsigned j = 0; j < 4; j++) {
			uint64_t x = lane(&a, 1, aoff + i + j), y = lane(&b, 1, boff + j);
			s += x > y ? x - y : y - x;
		}
		set_lane(&r, 2, i, s);
	}
	return r;
}

static struct xmm_reg phminposuw(struct xmm_reg b)
{
	unsigned best = 0;
	for (unsigned i = 1; i < 8; i++)
		if (lane(&b, 2, i) < lane(&b, 2, best))
			best = i;
	return (struct xmm_reg){{lane(&b, 2, best) | (uint64_t)best << 16, 0}};
}

/* PMOVSX/PMOVZX: the low lanes of width `from` widened to `to`. */
static struct xmm_reg widen(struct xmm_reg s, unsigned from, unsigned to, bool is_signed)
{
	struct xmm_reg r;
	for (unsigned i = 0; i < 16 / to; i++)
		set_lane(&r, to, i, is_signed ? (uint64_t)slane(&s, from, i) : lane(&s, from, i));
	return r;
}

/* Blend: lane i from b where bit i of `sel` is set. */
static struct xmm_reg blend(unsigned w, unsigned sel, struct xmm_reg a, struct xmm_reg b)
{
	for (unsigned i = 0; i < 16 / w; i++)
		if ((sel >> i) & 1)
			set_lane(&a, w, i, lane(&b, w, i));
	return a;
}

/* The sign bits of XMM0's lanes of width w (PBLENDVB, BLENDVPS/PD). */
static unsigned xmm0_signs(struct softcpu *c, unsigned w)
{
	unsigned sel = 0;
	for (unsigned i = 0; i < 16 / w; i++)
		sel |= (unsigned)(lane(&c->xmm[0], w, i) >> (8 * w - 1)) << i;
	return sel;
}

/* CRC-32C (Castagnoli, reflected), `size` bytes of v into crc. */
static uint32_t crc32c(uint32_t crc, uint64_t v, unsigned size)
{
	for (unsigned i = 0; i < 8 * size; i++) {
		unsigned bit = (crc ^ (unsigned)(v >> i)) & 1;
		crc = (crc >> 1) ^ (bit ? 0x82f63b78u : 0);
	}
	return crc;
}

/* PCMPESTRI/ESTRM/ISTRI/ISTRM (0F 3A 60-63), following the SDM's
 * "Packed Compare String" steps: element compares, validity overrides,
 * aggregation, polarity, then the index or mask and the flags. */
static void string_compare(struct softcpu *c, const struct insn *in, unsigned op)
{
	struct xmm_reg a = *xreg(c, in->reg), b = read_x(c, in, false);
	unsigned imm = (unsigned)in->imm & 0xff, w = (imm & 1) ? 2 : 1, n = 16 / w;
	bool is_signed = imm & 2, explicit_len = op < 0x62;
	unsigned la = n, lb = n;
	if (explicit_len) {
		unsigned size = (in->rex & 8) ? 8 : 4;
		uint64_t lens[2] = {c->r[R_AX], c->r[R_DX]};
		unsigned *out[2] = {&la, &lb};
		for (unsigned k = 0; k < 2; k++) {
			int64_t l = (int64_t)(lens[k] << (64 - 8 * size)) >> (64 - 8 * size);
			uint64_t mag = l < 0 ? 0 - (uint64_t)l : (uint64_t)l;
			*out[k] = mag < n ? (unsigned)mag : n;
		}
	} else {
		for (unsigned i = 0; i < n; i++)
			if (lane(&a, w, i) == 0) {
				la = i;
				break;
			}
		for (unsigned i = 0; i < n; i++)
			if (lane(&b, w, i) == 0) {
				lb = i;
				break;
			}
	}
	unsigned agg = (imm >> 2) & 3, res = 0;
	for (unsigned j = 0; j < n; j++) {
		int64_t bj = is_signed ? slane(&b, w, j) : (int64_t)lane(&b, w, j);
		bool bit = false;
		switch (agg) {
		case 0: /* equal any */
			for (unsigned i = 0; i < la && j < lb; i++)
				bit |= lane(&a, w, i) == lane(&b, w, j);
			break;
		case 1: /* ranges: pairs a[i] <= b[j] <= a[i+1] */
			for (unsigned i = 0; i + 1 < la && j < lb; i += 2) {
				int64_t lo = is_signed ? slane(&a, w, i) : (int64_t)lane(&a, w, i);
				int64_t hi = is_signed ? slane(&a, w, i + 1) : (int64_t)lane(&a, w, i + 1);
				bit |= lo <= bj && bj <= hi;
			}
			break;
		case 2: /* equal each */
			bit = (j < la) != (j < lb) ? false : j >= la ? true : lane(&a, w, j) == lane(&b, w, j);
			break;
		default: /* equal ordered: a as a substring of b starting at j */
			bit = true;
			for (unsigned i = 0; i < n - j && bit; i++) {
				if (i >= la)
					break;
				bit = j + i < lb && lane(&a, w, i) == lane(&b, w, j + i);
			}
			break;
		}
		res |= (unsigned)bit << j;
	}
	unsigned all = (1u << n) - 1;
	switch ((imm >> 4) & 3) {
	case 1: res ^= all; break;
	case 3: res ^= ((1u << lb) - 1) & all; break;
	default: break;
	}
	if (op & 1) { /* index */
		unsigned idx = res == 0 ? n : (imm & 0x40) ? 31u - (unsigned)__builtin_clz(res) : (unsigned)__builtin_ctz(res);
		c->r[R_CX] = idx;
	} else if (imm & 0x40) { /* mask of elements */
		struct xmm_reg m;
		for (unsigned i = 0; i < n; i++)
			set_lane(&m, w, i, (res >> i) & 1 ? size_mask(w) : 0);
		c->xmm[0] = m;
	} else {
		c->xmm[0] = (struct xmm_reg){{res, 0}};
	}
	uint64_t f = (res ? F_CF : 0) | (lb < n ? F_ZF : 0) | (la < n ? F_SF : 0) | ((res & 1) ? F_OF : 0);
	flags_materialize(c);
	c->rflags = (c->rflags & ~(uint64_t)F_ARITH) | f;
}

/* ---- the 0F map ---- */

/* Lane operation of the 0F-map arithmetic opcodes that are the same on MMX
 * and XMM: returns false for others. */
static bool arith_0f(unsigned op, enum pint *k, unsigned *w)
{
	static const struct { uint8_t op, kind, w; } table[] = {
		{0xd4, PADD, 8}, {0xfc, PADD, 1}, {0xfd, PADD, 2}, {0xfe, PADD, 4}, {0xf8, PSUB, 1}, {0xf9, PSUB, 2},
		{0xfa, PSUB, 4}, {0xfb, PSUB, 8}, {0xdc, PADDUS, 1}, {0xdd, PADDUS, 2}, {0xd8, PSUBUS, 1},
		{0xd9, PSUBUS, 2}, {0xec, PADDS, 1}, {0xed, PADDS, 2}, {0xe8, PSUBS, 1}, {0xe9, PSUBS, 2},
		{0x74, PCMPEQ, 1}, {0x75, PCMPEQ, 2}, {0x76, PCMPEQ, 4}, {0x64, PCMPGT, 1}, {0x65, PCMPGT, 2},
		{0x66, PCMPGT, 4}, {0xda, PMINU, 1}, {0xde, PMAXU, 1}, {0xea, PMINS, 2}, {0xee, PMAXS, 2},
		{0xd5, PMULLO, 2}, {0xe5, PMULHS, 2}, {0xe4, PMULHU, 2}, {0xe0, PAVG, 1}, {0xe3, PAVG, 2},
		{0xdb, PAND, 8}, {0xdf, PANDN, 8}, {0xeb, POR, 8}, {0xef, PXOR, 8}, {0xf4, PMULUDQ, 8},
	};
	for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].op == op) {
			*k = (enum pint)table[i].kind;
			*w = table[i].w;
			return true;
		}
	return false;
}

/* MOVD/MOVQ between MMX/XMM and general registers or memory, MOVQ loads and
 * stores, MOVNTQ, MASKMOVQ/MASKMOVDQU, MOVQ2DQ/MOVDQ2Q, PINSRW/PEXTRW,
 * PMOVMSKB, PSHUFW.  Returns false for other opcodes. */
static bool moves_0f(const struct vop *v, unsigned op, unsigned p)
{
	struct softcpu *c = v->c;
	const struct insn *in = v->in;
	unsigned size = (in->rex & 8) ? 8 : 4;
	switch (op) {
	case 0x6e: { /* MOVD/MOVQ mm/xmm, r/m */
		uint64_t x = in->mod == 3 ? get_reg(c, in, in->rm, size) : mem_read(c, mem_addr(c, in), size);
		write_dst(v, mm_value(x));
		return true;
	}
	case 0x7e: /* MOVD/MOVQ r/m, mm/xmm */
		if (p == P_F3) { /* MOVQ xmm, xmm/m64 */
			*xreg(c, in->reg) = mm_value(read_scalar(c, in, 8));
			return true;
		}
		if (in->mod == 3)
			set_reg(c, in, in->rm, size, read_dst(v).q[0] & size_mask(size));
		else
			mem_write(c, mem_addr(c, in), size, read_dst(v).q[0]);
		if (v->mmx)
			softcpu_mmx_enter(c);
		return true;
	case 0x6f: /* MOVQ mm, mm/m64; MOVDQA; MOVDQU */
		write_dst(v, read_src(v, p == P_F3));
		return true;
	case 0x7f: case 0xe7: /* MOVQ mm/m64, mm; MOVDQA/U stores; MOVNTQ/MOVNTDQ */
		if (op == 0xe7 && in->mod == 3)
			raise_ud(c);
		if (!v->mmx) {
			write_x(c, in, p != P_F3, read_dst(v));
			return true;
		}
		if (in->mod == 3)
			softcpu_mmx_set(c, in->rm & 7, read_dst(v).q[0]);
		else
			mem_write(c, mem_addr(c, in), 8, read_dst(v).q[0]);
		softcpu_mmx_enter(c);
		return true;
	case 0xd6: /* MOVQ xmm/m64, xmm; MOVQ2DQ; MOVDQ2Q */
		if (p == P_66) {
			uint64_t x = xreg(c, in->reg)->q[0];
			if (in->mod == 3)
				*xreg(c, in->rm) = mm_value(x);
			else
				mem_write(c, mem_addr(c, in), 8, x);
			return true;
		}
		if (in->mod != 3)
			raise_ud(c);
		softcpu_mmx_check(c);
		if (p == P_F3) {
			*xreg(c, in->reg) = mm_value(softcpu_mmx_get(c, in->rm & 7));
			softcpu_mmx_enter(c);
		} else {
			uint64_t x = xreg(c, in->rm)->q[0];
			softcpu_mmx_enter(c);
			softcpu_mmx_set(c, in->reg & 7, x);
		}
		return true;
	case 0xf7: { /* MASKMOVQ / MASKMOVDQU: bytes to DS:rDI where the mask's sign bit is set */
		if (in->mod != 3)
			raise_ud(c);
		struct xmm_reg data = read_dst(v), mask = read_src(v, false);
		uint64_t base = linear(c, in->seg, c->r[R_DI] & size_mask(in->asz));
		if (movemask(v->vlen, mask))
			mmu_probe_write(c, base, v->vlen);
		for (unsigned i = 0; i < v->vlen; i++)
			if (lane(&mask, 1, i) & 0x80)
				mem_write(c, base + i, 1, lane(&data, 1, i));
		if (v->mmx)
			softcpu_mmx_enter(c);
		return true;
	}
	case 0xc4: { /* PINSRW mm/xmm, r32/m16, imm8 */
		uint64_t x = in->mod == 3 ? get_reg(c, in, in->rm, 2) : mem_read(c, mem_addr(c, in), 2);
		struct xmm_reg d = read_dst(v);
		set_lane(&d, 2, (unsigned)in->imm & (v->vlen / 2 - 1), x);
		write_dst(v, d);
		return true;
	}
	case 0xc5: { /* PEXTRW r32, mm/xmm, imm8 */
		if (in->mod != 3)
			raise_ud(c);
		struct xmm_reg s = read_src(v, false);
		if (v->mmx)
			softcpu_mmx_enter(c);
		set_reg(c, in, in->reg, 4, lane(&s, 2, (unsigned)in->imm & (v->vlen / 2 - 1)));
		return true;
	}
	case 0xd7: { /* PMOVMSKB r32, mm/xmm */
		if (in->mod != 3)
			raise_ud(c);
		struct xmm_reg s = read_src(v, false);
		if (v->mmx)
			softcpu_mmx_enter(c);
		set_reg(c, in, in->reg, 4, movemask(v->vlen, s));
		return true;
	}
	case 0x70: { /* PSHUFW (MMX), PSHUFD (66), PSHUFHW (F3), PSHUFLW (F2) */
		struct xmm_reg s = read_src(v, false), r = s;
		unsigned imm = (unsigned)in->imm & 0xff;
		if (!v->mmx && p == P_66)
			for (unsigned i = 0; i < 4; i++)
				set_lane(&r, 4, i, lane(&s, 4, (imm >> (2 * i)) & 3));
		else
			for (unsigned i = 0; i < 4; i++) {
				unsigned base = p == P_F3 ? 4 : 0;
				set_lane(&r, 2, base + i, lane(&s, 2, base + ((imm >> (2 * i)) & 3)));
			}
		write_dst(v, r);
		return true;
	}
	default:
		return false;
	}
}

/* Is (opcode, prefix) of the 0F map one of this file's?  MMX forms have no
 * prefix; XMM forms need 66, but for the moves listed. */
static bool handles_0f(unsigned op, unsigned p)
{
	if (p == P_F3)
		return op == 0x6f || op == 0x7f || op == 0x7e || op == 0x70 || op == 0xd6;
	if (p == P_F2)
		return op == 0x70 || op == 0xd6;
	if (op == 0x14 || op == 0x15) /* UNPCKL/HPS/PD */
		return true;
	if (p == P_NONE && (op == 0x6c || op == 0x6d || op == 0xd6))
		return false;
	return (op >= 0x60 && op <= 0x76) || op == 0x7e || op == 0x7f ||
	       op == 0xc4 || op == 0xc5 || (op >= 0xd1 && op <= 0xfe && op != 0xe6 && op != 0xf0);
}

static void exec_0f(const struct vop *v, unsigned op, unsigned p)
{
	struct softcpu *c = v->c;
	const struct insn *in = v->in;
	enum pint k;
	unsigned w;
	if (moves_0f(v, op, p))
		return;
	if (op >= 0x71 && op <= 0x73) { /* shifts by immediate: /2 SRL, /4 SRA, /6 SLL, 73 /3 SRLDQ /7 SLLDQ */
		unsigned r = in->reg & 7, count = (unsigned)in->imm & 0xff;
		w = op == 0x71 ? 2 : op == 0x72 ? 4 : 8;
		if (in->mod != 3)
			raise_ud(c);
		struct xmm_reg s = v->mmx ? mm_value(softcpu_mmx_get(c, in->rm & 7)) : *xreg(c, in->rm), res;
		if (op == 0x73 && (r == 3 || r == 7) && !v->mmx)
			res = byte_shift(s, count, r == 7);
		else if (r == 2 || (r == 4 && op != 0x73) || r == 6)
			res = packed_shift(r == 2 ? 0 : r == 4 ? 1 : 2, w, s, count);
		else
			raise_ud(c);
		if (v->mmx) {
			softcpu_mmx_enter(c);
			softcpu_mmx_set(c, in->rm & 7, res.q[0]);
		} else {
			*xreg(c, in->rm) = res;
		}
		return;
	}
	struct xmm_reg s = read_src(v, false), d = read_dst(v), r;
	if (arith_0f(op, &k, &w)) {
		r = packed_int(k, w, d, s);
	} else if ((op >= 0xd1 && op <= 0xd3) || (op >= 0xe1 && op <= 0xe2) || (op >= 0xf1 && op <= 0xf3)) {
		unsigned kind = op < 0xe0 ? 0 : op < 0xf0 ? 1 : 2;
		r = packed_shift(kind, (op & 3) == 1 ? 2 : (op & 3) == 2 ? 4 : 8, d, s.q[0]);
	} else if ((op >= 0x60 && op <= 0x62) || (op >= 0x68 && op <= 0x6a) || op == 0x6c || op == 0x6d) {
		w = op == 0x6c || op == 0x6d ? 8 : 1u << (op & 3);
		r = unpack(w, (op >= 0x68 && op <= 0x6a) || op == 0x6d, v->vlen, d, s);
	} else if (op == 0x14 || op == 0x15) {
		r = unpack(p == P_66 ? 8 : 4, op == 0x15, 16, d, s);
	} else if (op == 0x63 || op == 0x67 || op == 0x6b) {
		r = pack(op == 0x6b ? 4 : 2, op != 0x67, v->vlen, d, s);
	} else if (op == 0xf5) {
		r = multiply_add(2, d, s);
	} else if (op == 0xf6) {
		r = sad(d, s);
	} else {
		softcpu_unimplemented(c, in);
	}
	write_dst(v, r);
}

/* ---- the 0F 38 map ---- */

static void exec_0f38(const struct vop *v, unsigned op)
{
	struct softcpu *c = v->c;
	const struct insn *in = v->in;
	if (op >= 0x20 && op <= 0x35 && (op & 0xf) <= 5) { /* PMOVSX / PMOVZX: a narrower source */
		static const uint8_t from[6] = {1, 1, 1, 2, 2, 4}, to[6] = {2, 4, 8, 4, 8, 8};
		unsigned i = op & 0xf, bytes = 16 / to[i] * from[i];
		struct xmm_reg s = in->mod == 3 ? *xreg(c, in->rm) : mm_value(mem_read(c, mem_addr(c, in), bytes));
		write_dst(v, widen(s, from[i], to[i], op < 0x30));
		return;
	}
	if (op == 0x2a) { /* MOVNTDQA */
		if (in->mod == 3)
			raise_ud(c);
		write_dst(v, read_src(v, false));
		return;
	}
	struct xmm_reg s = read_src(v, false), d = read_dst(v), r;
	switch (op) {
	case 0x00: r = pshufb(v->vlen, d, s); break;
	case 0x01: r = horizontal(2, false, false, v->vlen, d, s); break;
	case 0x02: r = horizontal(4, false, false, v->vlen, d, s); break;
	case 0x03: r = horizontal(2, false, true, v->vlen, d, s); break;
	case 0x04: r = multiply_add(1, d, s); break;
	case 0x05: r = horizontal(2, true, false, v->vlen, d, s); break;
	case 0x06: r = horizontal(4, true, false, v->vlen, d, s); break;
	case 0x07: r = horizontal(2, true, true, v->vlen, d, s); break;
	case 0x08: case 0x09: case 0x0a: r = packed_int(PSIGN, 1u << (op - 0x08), d, s); break;
	case 0x0b: r = packed_int(PMULHRS, 2, d, s); break;
	case 0x1c: case 0x1d: case 0x1e: r = packed_int(PABS, 1u << (op - 0x1c), d, s); break;
	case 0x10: r = blend(1, xmm0_signs(c, 1), d, s); break;
	case 0x14: r = blend(4, xmm0_signs(c, 4), d, s); break;
	case 0x15: r = blend(8, xmm0_signs(c, 8), d, s); break;
	case 0x17: { /* PTEST */
		bool zf = !((d.q[0] & s.q[0]) | (d.q[1] & s.q[1]));
		bool cf = !((~d.q[0] & s.q[0]) | (~d.q[1] & s.q[1]));
		flags_materialize(c);
		c->rflags = (c->rflags & ~(uint64_t)F_ARITH) | (zf ? F_ZF : 0) | (cf ? F_CF : 0);
		return;
	}
	case 0x28: r = packed_int(PMULDQ, 8, d, s); break;
	case 0x29: r = packed_int(PCMPEQ, 8, d, s); break;
	case 0x2b: r = pack(4, false, 16, d, s); break;
	case 0x37: r = packed_int(PCMPGT, 8, d, s); break;
	case 0x38: r = packed_int(PMINS, 1, d, s); break;
	case 0x39: r = packed_int(PMINS, 4, d, s); break;
	case 0x3a: r = packed_int(PMINU, 2, d, s); break;
	case 0x3b: r = packed_int(PMINU, 4, d, s); break;
	case 0x3c: r = packed_int(PMAXS, 1, d, s); break;
	case 0x3d: r = packed_int(PMAXS, 4, d, s); break;
	case 0x3e: r = packed_int(PMAXU, 2, d, s); break;
	case 0x3f: r = packed_int(PMAXU, 4, d, s); break;
	case 0x40: r = packed_int(PMULLO, 4, d, s); break;
	case 0x41: r = phminposuw(s); break;
	default: softcpu_unimplemented(c, in);
	}
	write_dst(v, r);
}

/* CRC32 r32/r64, r/m8/16/32/64 (F2 0F 38 F0/F1). */
static void crc32_insn(struct softcpu *c, const struct insn *in, unsigned op)
{
	unsigned size = op == 0xf0 ? 1 : in->osz;
	uint64_t v = in->mod == 3 ? get_reg(c, in, in->rm, size) : mem_read(c, mem_addr(c, in), size);
	c->r[in->reg] = crc32c((uint32_t)c->r[in->reg], v, size);
}

/* ---- the 0F 3A map ---- */

static void exec_0f3a(const struct vop *v, unsigned op)
{
	struct softcpu *c = v->c;
	const struct insn *in = v->in;
	unsigned imm = (unsigned)in->imm & 0xff;
	if (op >= 0x14 && op <= 0x17) { /* PEXTRB/W/D/Q, EXTRACTPS r/m, xmm, imm8 */
		unsigned w = op == 0x14 ? 1 : op == 0x15 ? 2 : (op == 0x16 && (in->rex & 8)) ? 8 : 4;
		uint64_t x = lane(xreg(c, in->reg), w, imm & (16 / w - 1));
		if (in->mod == 3)
			set_reg(c, in, in->rm, (in->rex & 8) ? 8 : 4, x);
		else
			mem_write(c, mem_addr(c, in), w, x);
		return;
	}
	if (op >= 0x20 && op <= 0x22) { /* PINSRB, INSERTPS, PINSRD/Q */
		unsigned w = op == 0x20 ? 1 : (op == 0x22 && (in->rex & 8)) ? 8 : 4;
		struct xmm_reg d = *xreg(c, in->reg);
		if (op == 0x21) {
			uint64_t x = in->mod == 3 ? lane(xreg(c, in->rm), 4, imm >> 6) : mem_read(c, mem_addr(c, in), 4);
			set_lane(&d, 4, (imm >> 4) & 3, x);
			for (unsigned i = 0; i < 4; i++)
				if ((imm >> i) & 1)
					set_lane(&d, 4, i, 0);
		} else {
			/* a register source is r32/r64, never AH..BH */
			uint64_t x = in->mod == 3 ? c->r[in->rm] & size_mask(w) : mem_read(c, mem_addr(c, in), w);
			set_lane(&d, w, imm & (16 / w - 1), x);
		}
		*xreg(c, in->reg) = d;
		return;
	}
	if (op >= 0x60 && op <= 0x63) {
		string_compare(c, in, op);
		return;
	}
	struct xmm_reg s = read_src(v, false), d = read_dst(v), r;
	switch (op) {
	case 0x0c: r = blend(4, imm, d, s); break;
	case 0x0d: r = blend(8, imm, d, s); break;
	case 0x0e: r = blend(2, imm, d, s); break;
	case 0x0f: r = palignr(v->vlen, d, s, imm); break;
	case 0x42: r = mpsadbw(d, s, imm); break;
	default: softcpu_unimplemented(c, in);
	}
	write_dst(v, r);
}

/* ---- entry ---- */

bool softcpu_exec_simd_int(struct softcpu *c, const struct insn *in)
{
	unsigned p = sse_prefix(in), op = sse_opcode(in);
	struct vop v = {.c = c, .in = in, .mmx = p == P_NONE, .vlen = p == P_NONE ? 8 : 16};
	if (in->op == (OP_0F | 0x38)) {
		if (op == 0xf0 || op == 0xf1) { /* CRC32 (F2); MOVBE is not implemented */
			if (p != P_F2)
				return false;
			crc32_insn(c, in, op);
			return true;
		}
		bool ssse3 = op <= 0x0b || (op >= 0x1c && op <= 0x1e);
		if (p == P_F3 || p == P_F2 || (p == P_NONE && !ssse3))
			return false;
	} else if (in->op == (OP_0F | 0x3a)) {
		if (p != P_66 && !(p == P_NONE && op == 0x0f))
			return false;
		if ((op >= 0x08 && op <= 0x0b) || op == 0x40 || op == 0x41) /* ROUND*, DPPS/PD: sse.c */
			return false;
	} else {
		if (op == 0x77 && p == P_NONE) {
			softcpu_emms(c);
			return true;
		}
		if (!handles_0f(op, p))
			return false;
		if (op == 0x14 || op == 0x15) { /* UNPCKL/HPS/PD are XMM forms without a prefix too */
			v.mmx = false;
			v.vlen = 16;
		}
	}
	if (v.mmx)
		softcpu_mmx_check(c);
	else
		check_sse(c);
	if (in->op == (OP_0F | 0x38))
		exec_0f38(&v, op);
	else if (in->op == (OP_0F | 0x3a))
		exec_0f3a(&v, op);
	else
		exec_0f(&v, op, p);
	return true;
}
