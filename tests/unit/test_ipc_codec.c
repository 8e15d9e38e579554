/* test_ipc_codec.c - the ipc message codec with valid and hostile input,
 * guest-memory bounds, and the nng channel over a real ipc:// socket. */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <dirent.h>
#endif

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>

#include "guest_mem.h"
#include "host.h"
#include "ipc.h"
#include "le.h"

/* ---- helpers ---- */

static struct ipc_msg hello_msg(void)
{
	struct ipc_msg m = { .type = IPC_HELLO, .seq = 1 };
	struct ipc_hello *h = &m.u.hello;
	h->version = IPC_PROTO_VERSION;
	strcpy(h->name, "serial");
	h->nranges = 3;
	h->ranges[0] = (struct ipc_range){ .space = IPC_SPACE_PIO, .base = 0x3f8, .size = 8,
					   .kind = IPC_RANGE_UART16550, .has_irq = true, .irq = 0 };
	h->ranges[1] = (struct ipc_range){ .space = IPC_SPACE_MMIO, .base = 0xfe000000, .size = 0x1000 };
	/* A virtio-mmio transport asking for a slot, with its ANY line. */
	h->ranges[2] = (struct ipc_range){ .space = IPC_SPACE_MMIO, .base = 0, .size = IPC_VIRTIO_MMIO_SIZE,
					   .kind = IPC_RANGE_VIRTIO_MMIO, .has_irq = true, .irq = 1 };
	h->nirqs = 2;
	h->irqs[0] = (struct ipc_irq_line){ .gsi = 4, .trigger = IPC_TRIGGER_EDGE };
	h->irqs[1] = (struct ipc_irq_line){ .gsi = IPC_IRQ_ANY, .trigger = IPC_TRIGGER_LEVEL };
	h->nregs = 2;
	h->regs[0] = (struct ipc_reg){ .space = IPC_SPACE_PIO, .size = 1, .flags = IPC_REG_SHADOW, .slot = 0, .addr = 0x3fd };
	h->regs[1] = (struct ipc_reg){ .space = IPC_SPACE_PIO, .size = 1, .flags = IPC_REG_STREAM, .slot = 0, .addr = 0x3f8 };
	return m;
}

static struct ipc_msg welcome_msg(void)
{
	struct ipc_msg m = { .type = IPC_WELCOME, .seq = 2 };
	m.u.welcome.flags = IPC_WELCOME_RESUMED;
	m.u.welcome.ram_size = 256u << 20;
	m.u.welcome.state_size = IPC_STATE_SIZE;
	strcpy(m.u.welcome.ram_name, "/proc/1234/fd/5");
	strcpy(m.u.welcome.state_name, "/proc/1234/fd/6");
	m.u.welcome.nranges = 3;
	m.u.welcome.nirqs = 2;
	m.u.welcome.range_base[0] = 0x3f8;
	m.u.welcome.range_base[1] = 0xfe000000;
	m.u.welcome.range_base[2] = 0xd0001000;
	m.u.welcome.irq_gsi[0] = 4;
	m.u.welcome.irq_gsi[1] = 16;
	m.u.welcome.nregions = 2;
	m.u.welcome.ram_regions[0] = (struct guest_mem_region){0, 192u << 20};
	m.u.welcome.ram_regions[1] = (struct guest_mem_region){1ull << 32, 64u << 20};
	m.u.welcome.irqs_applied = 0xfffffffe;
	return m;
}

static struct ipc_msg io_msg(uint8_t type, uint8_t space, uint8_t size, uint64_t addr, uint64_t data)
{
	struct ipc_msg m = { .type = type, .seq = 77 };
	m.u.io = (struct ipc_io){ .space = space, .size = size, .addr = addr, .data = data };
	return m;
}

/* Field by field: struct padding is not guaranteed to be zero. */
static void assert_msg_equal(const struct ipc_msg *a, const struct ipc_msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->seq, b->seq);
	switch (a->type) {
	case IPC_HELLO: {
		const struct ipc_hello *x = &a->u.hello, *y = &b->u.hello;
		assert_int_equal(x->version, y->version);
		assert_string_equal(x->name, y->name);
		assert_int_equal(x->nranges, y->nranges);
		assert_int_equal(x->nirqs, y->nirqs);
		assert_int_equal(x->nregs, y->nregs);
		for (unsigned i = 0; i < x->nranges; i++) {
			assert_int_equal(x->ranges[i].space, y->ranges[i].space);
			assert_int_equal(x->ranges[i].base, y->ranges[i].base);
			assert_int_equal(x->ranges[i].size, y->ranges[i].size);
			assert_int_equal(x->ranges[i].kind, y->ranges[i].kind);
			assert_int_equal(x->ranges[i].has_irq, y->ranges[i].has_irq);
			assert_int_equal(x->ranges[i].irq, y->ranges[i].irq);
		}
		for (unsigned i = 0; i < x->nirqs; i++) {
			assert_int_equal(x->irqs[i].gsi, y->irqs[i].gsi);
			assert_int_equal(x->irqs[i].trigger, y->irqs[i].trigger);
		}
		for (unsigned i = 0; i < x->nregs; i++) {
			assert_int_equal(x->regs[i].space, y->regs[i].space);
			assert_int_equal(x->regs[i].size, y->regs[i].size);
			assert_int_equal(x->regs[i].flags, y->regs[i].flags);
			assert_int_equal(x->regs[i].slot, y->regs[i].slot);
			assert_int_equal(x->regs[i].changes, y->regs[i].changes);
			assert_int_equal(x->regs[i].addr, y->regs[i].addr);
		}
		break;
	}
	case IPC_WELCOME:
		assert_int_equal(a->u.welcome.flags, b->u.welcome.flags);
		assert_int_equal(a->u.welcome.ram_size, b->u.welcome.ram_size);
		assert_int_equal(a->u.welcome.state_size, b->u.welcome.state_size);
		assert_string_equal(a->u.welcome.ram_name, b->u.welcome.ram_name);
		assert_string_equal(a->u.welcome.state_name, b->u.welcome.state_name);
		assert_int_equal(a->u.welcome.nranges, b->u.welcome.nranges);
		assert_int_equal(a->u.welcome.nirqs, b->u.welcome.nirqs);
		for (unsigned i = 0; i < IPC_MAX_RANGES; i++)
			assert_int_equal(a->u.welcome.range_base[i], b->u.welcome.range_base[i]);
		for (unsigned i = 0; i < IPC_MAX_IRQS; i++)
			assert_int_equal(a->u.welcome.irq_gsi[i], b->u.welcome.irq_gsi[i]);
		assert_int_equal(a->u.welcome.nregions, b->u.welcome.nregions);
		for (unsigned i = 0; i < a->u.welcome.nregions; i++) {
			assert_int_equal(a->u.welcome.ram_regions[i].gpa, b->u.welcome.ram_regions[i].gpa);
			assert_int_equal(a->u.welcome.ram_regions[i].size, b->u.welcome.ram_regions[i].size);
		}
		assert_int_equal(a->u.welcome.irqs_applied, b->u.welcome.irqs_applied);
		break;
	case IPC_REJECT:
		assert_string_equal(a->u.reason, b->u.reason);
		break;
	case IPC_IO_WRITE_RUN:
		assert_int_equal(a->u.run.space, b->u.run.space);
		assert_int_equal(a->u.run.addr, b->u.run.addr);
		assert_int_equal(a->u.run.count, b->u.run.count);
		assert_memory_equal(a->u.run.data, b->u.run.data, a->u.run.count);
		assert_int_equal(a->u.run.line.action, b->u.run.line.action);
		assert_int_equal(a->u.run.line.irqs_applied, b->u.run.line.irqs_applied);
		assert_int_equal(a->u.run.then_read_done, b->u.run.then_read_done);
		if (a->u.run.then_read_done) {
			assert_int_equal(a->u.run.read_done_seq, b->u.run.read_done_seq);
			assert_int_equal(a->u.run.read_done.addr, b->u.run.read_done.addr);
			assert_int_equal(a->u.run.read_done.size, b->u.run.read_done.size);
			assert_int_equal(a->u.run.read_done.data, b->u.run.read_done.data);
			assert_int_equal(a->u.run.read_done.line.action, b->u.run.read_done.line.action);
			assert_int_equal(a->u.run.read_done.line.irqs_applied,
					 b->u.run.read_done.line.irqs_applied);
		}
		break;
	case IPC_IO_READ:
	case IPC_IO_WRITE:
	case IPC_IO_READ_DONE:
		assert_int_equal(a->u.io.space, b->u.io.space);
		assert_int_equal(a->u.io.size, b->u.io.size);
		assert_int_equal(a->u.io.addr, b->u.io.addr);
		assert_int_equal(a->u.io.data, b->u.io.data);
		assert_int_equal(a->u.io.line.action, b->u.io.line.action);
		assert_int_equal(a->u.io.line.irqs_applied, b->u.io.line.irqs_applied);
		break;
	case IPC_IO_REPLY:
		assert_int_equal(a->u.io.data, b->u.io.data);
		break;
	case IPC_IRQ:
		assert_int_equal(a->u.irq.line, b->u.irq.line);
		assert_int_equal(a->u.irq.level, b->u.irq.level);
		break;
	default:
		break;
	}
}

/* Encodes m and returns the length; the test fails if encoding does. */
static size_t encode_ok(const struct ipc_msg *m, uint8_t *buf)
{
	int len = ipc_encode(m, buf, IPC_MAX_MSG);
	if (len < IPC_HDR_SIZE)
		fail_msg("encoding %s failed: %d", ipc_type_name(m->type), len);
	return (size_t)len;
}

/* Encodes m, decodes it back and checks the result equals m. */
static void assert_round_trip(const struct ipc_msg *m)
{
	uint8_t buf[IPC_MAX_MSG];
	size_t len = encode_ok(m, buf);
	struct ipc_msg out;
	char err[128] = "";
	if (ipc_decode(buf, len, &out, err, sizeof(err)) != IPC_OK)
		fail_msg("%s: %s", ipc_type_name(m->type), err);
	assert_msg_equal(&out, m);
}

/* Decoding buf must fail. */
static void assert_refused(const uint8_t *buf, size_t len)
{
	struct ipc_msg out;
	char err[128] = "";
	assert_int_equal(ipc_decode(buf, len, &out, err, sizeof(err)), IPC_EBADMSG);
	assert_true(err[0] != '\0');
}

/* ---- round trips ---- */

static void test_round_trip_every_type(void **state)
{
	(void)state;
	struct ipc_msg m = hello_msg();
	assert_round_trip(&m);
	m = welcome_msg();
	assert_round_trip(&m);

	m = (struct ipc_msg){ .type = IPC_REJECT, .seq = 3 };
	strcpy(m.u.reason, "name taken");
	assert_round_trip(&m);

	m = io_msg(IPC_IO_READ, IPC_SPACE_PIO, 1, 0x3fd, 0);
	assert_round_trip(&m);
	m = io_msg(IPC_IO_WRITE, IPC_SPACE_MMIO, 8, 0xfe000008, 0xfedcba9876543210ull);
	assert_round_trip(&m);
	m = io_msg(IPC_IO_WRITE, IPC_SPACE_PIO, 2, 0xfffe, 0xbeef);
	assert_round_trip(&m);
	m = io_msg(IPC_IO_READ_DONE, IPC_SPACE_PIO, 1, 0x3fa, 0xc2);
	assert_round_trip(&m);
	/* Line notes (what the core did to the line before sending). */
	m.u.io.line = (struct ipc_line_note){ .action = IPC_LINE_LOWERED, .irqs_applied = 0x89abcdef };
	assert_round_trip(&m);
	m = io_msg(IPC_IO_WRITE, IPC_SPACE_PIO, 1, 0x3f8, 0x41);
	m.u.io.line = (struct ipc_line_note){ .action = IPC_LINE_RAISED, .irqs_applied = 0 };
	assert_round_trip(&m);
	m = (struct ipc_msg){ .type = IPC_IO_WRITE_RUN, .seq = 78 };
	m.u.run = (struct ipc_io_run){ .space = IPC_SPACE_PIO, .addr = 0x3f8, .count = 1 };
	m.u.run.data[0] = 'A';
	assert_round_trip(&m);
	m.u.run.line = (struct ipc_line_note){ .action = IPC_LINE_RAISED, .irqs_applied = 12345 };
	assert_round_trip(&m);
	m.u.run.count = IPC_IO_RUN_MAX;
	for (unsigned i = 0; i < IPC_IO_RUN_MAX; i++)
		m.u.run.data[i] = (uint8_t)i;
	assert_round_trip(&m);
	/* With the READ_DONE posted after it (an IIR acknowledge). */
	m.u.run.then_read_done = true;
	m.u.run.read_done_seq = 79;
	m.u.run.read_done = (struct ipc_io){ .space = IPC_SPACE_PIO, .size = 1, .addr = 0x3fa, .data = 0xc2,
					     .line = { .action = IPC_LINE_LOWERED, .irqs_applied = 7 } };
	assert_round_trip(&m);
	m.u.run.count = 1;
	assert_round_trip(&m);
	m = (struct ipc_msg){ .type = IPC_IO_REPLY, .seq = 77 };
	m.u.io.data = 0x60;
	assert_round_trip(&m);

	m = (struct ipc_msg){ .type = IPC_IRQ, .seq = 9 };
	m.u.irq.line = 4;
	m.u.irq.level = 1;
	assert_round_trip(&m);

	const uint8_t empty[] = { IPC_RESET, IPC_SHUTDOWN, IPC_QUIT, IPC_PING, IPC_PONG };
	for (size_t i = 0; i < sizeof(empty); i++) {
		m = (struct ipc_msg){ .type = empty[i], .seq = UINT64_MAX - i };
		assert_round_trip(&m);
	}
}

/* ---- hostile input ---- */

static void test_truncated_at_every_length(void **state)
{
	(void)state;
	struct ipc_msg msgs[] = { hello_msg(), welcome_msg(), io_msg(IPC_IO_WRITE, IPC_SPACE_PIO, 1, 0x3f8, 0x41),
				  io_msg(IPC_IO_READ, IPC_SPACE_PIO, 1, 0x3fd, 0) };
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		uint8_t buf[IPC_MAX_MSG];
		size_t len = encode_ok(&msgs[i], buf);
		for (size_t cut = 0; cut < len; cut++) {
			assert_refused(buf, cut); /* length field no longer matches */
			if (cut >= IPC_HDR_SIZE) {
				/* A consistent header but a short body. */
				uint8_t copy[IPC_MAX_MSG];
				memcpy(copy, buf, cut);
				copy[4] = (uint8_t)cut;
				copy[5] = (uint8_t)(cut >> 8);
				assert_refused(copy, cut);
			}
		}
	}
}

static void test_bad_header(void **state)
{
	(void)state;
	struct ipc_msg m = { .type = IPC_PING, .seq = 1 };
	uint8_t buf[IPC_MAX_MSG];
	size_t len = encode_ok(&m, buf);
	assert_int_equal(len, IPC_HDR_SIZE);

	buf[0] ^= 1; /* magic */
	assert_refused(buf, len);
	buf[0] ^= 1;
	buf[2] = IPC_PROTO_VERSION + 1;
	assert_refused(buf, len);
	buf[2] = IPC_PROTO_VERSION;
	const uint8_t bad_types[] = { 0, IPC_MSG_TYPE_MAX, 0xff };
	for (size_t i = 0; i < sizeof(bad_types); i++) {
		buf[3] = bad_types[i];
		assert_refused(buf, len);
	}
	buf[3] = IPC_PING;

	/* Trailing garbage, with and without a length field that admits it. */
	buf[len] = 0;
	assert_refused(buf, len + 1);
	buf[4] = (uint8_t)(len + 1);
	assert_refused(buf, len + 1);

	/* Longer than any valid message, even with a matching length field. */
	uint8_t big[IPC_MAX_MSG + 8] = { 0 };
	memcpy(big, buf, IPC_HDR_SIZE);
	big[4] = (uint8_t)sizeof(big);
	big[5] = (uint8_t)(sizeof(big) >> 8);
	assert_refused(big, sizeof(big));

	/* Each fixed-size body one byte too long. */
	struct ipc_msg fixed[] = { welcome_msg(), io_msg(IPC_IO_READ, IPC_SPACE_PIO, 1, 0x3fd, 0),
				   { .type = IPC_IRQ }, { .type = IPC_IO_REPLY } };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		uint8_t b[IPC_MAX_MSG] = { 0 };
		size_t n = encode_ok(&fixed[i], b);
		b[4] = (uint8_t)(n + 1);
		b[5] = (uint8_t)((n + 1) >> 8);
		assert_refused(b, n + 1);
	}
}

/* Offsets into an encoded HELLO (see the layout in ipc.c). */
#define HELLO_NAME (IPC_HDR_SIZE + 4)
#define HELLO_COUNTS (IPC_HDR_SIZE + 20)
#define HELLO_RANGES (IPC_HDR_SIZE + 24)

static void test_hello_hostile(void **state)
{
	(void)state;
	struct ipc_msg good = hello_msg();
	uint8_t buf[IPC_MAX_MSG];
	size_t len = encode_ok(&good, buf);
	uint8_t b[IPC_MAX_MSG];

	/* Counts beyond the limits, body grown to match them. */
	for (int which = 0; which < 3; which++) {
		struct ipc_msg m = good;
		m.u.hello.nranges = which == 0 ? IPC_MAX_RANGES + 1 : 0;
		m.u.hello.nirqs = which == 1 ? IPC_MAX_IRQS + 1 : 0;
		m.u.hello.nregs = which == 2 ? IPC_MAX_REGS + 1 : 0;
		assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
		m.u.hello.nranges = m.u.hello.nirqs = m.u.hello.nregs = 0;
		size_t n = encode_ok(&m, b);
		size_t extra = which == 0 ? 24 * (IPC_MAX_RANGES + 1) : which == 1 ? 8 * (IPC_MAX_IRQS + 1) : 16 * (IPC_MAX_REGS + 1);
		memset(b + n, 0, extra);
		n += extra;
		b[HELLO_COUNTS + which] = (uint8_t)(which == 0 ? IPC_MAX_RANGES + 1 : which == 1 ? IPC_MAX_IRQS + 1 : IPC_MAX_REGS + 1);
		b[4] = (uint8_t)n;
		b[5] = (uint8_t)(n >> 8);
		assert_refused(b, n);
	}
	/* A count that disagrees with the body length. */
	memcpy(b, buf, len);
	b[HELLO_COUNTS + 1] = 3; /* hello_msg has 2 lines */
	assert_refused(b, len);

	/* Unterminated and empty names. */
	memcpy(b, buf, len);
	memset(b + HELLO_NAME, 'x', IPC_MAX_NAME);
	assert_refused(b, len);
	memcpy(b, buf, len);
	memset(b + HELLO_NAME, 0, IPC_MAX_NAME);
	assert_refused(b, len);
	struct ipc_msg m = good;
	memset(m.u.hello.name, 'x', IPC_MAX_NAME);
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);

	/* Reserved bytes. */
	memcpy(b, buf, len);
	b[HELLO_COUNTS + 3] = 1;
	assert_refused(b, len);
	memcpy(b, buf, len);
	b[HELLO_RANGES + 3] = 1;
	assert_refused(b, len);

	/* Bad ranges: empty, wrapping, outside the port space, unknown space. */
	const struct ipc_range bad_ranges[] = {
		{ .space = IPC_SPACE_MMIO, .base = 0x1000, .size = 0 },
		{ .space = IPC_SPACE_MMIO, .base = UINT64_MAX - 0xfff, .size = 0x2000 },
		{ .space = IPC_SPACE_PIO, .base = 0xfff0, .size = 0x20 },
		{ .space = IPC_SPACE_PIO, .base = 0x10000, .size = 1 },
		{ .space = 2, .base = 0, .size = 1 },
	};
	for (size_t i = 0; i < sizeof(bad_ranges) / sizeof(bad_ranges[0]); i++) {
		m = good;
		m.u.hello.ranges[1] = bad_ranges[i];
		assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	}
	m = good; /* up to the end of the port space, and high MMIO, are fine */
	m.u.hello.ranges[0] = (struct ipc_range){ .space = IPC_SPACE_PIO, .base = 0xfff0, .size = 0x10 };
	m.u.hello.ranges[1] = (struct ipc_range){ .space = IPC_SPACE_MMIO, .base = UINT64_MAX - 0x1fff, .size = 0x1000 };
	assert_round_trip(&m);

	/* Bad regs: access size, slot, flags, wrapping, duplicates. */
	const struct ipc_reg bad_regs[] = {
		{ .space = IPC_SPACE_PIO, .size = 3, .addr = 0x3f9 },
		{ .space = IPC_SPACE_PIO, .size = 0, .addr = 0x3f9 },
		{ .space = IPC_SPACE_PIO, .size = 16, .addr = 0x3f9 },
		{ .space = IPC_SPACE_PIO, .size = 1, .slot = IPC_MAX_REGS, .addr = 0x3f9 },
		{ .space = IPC_SPACE_PIO, .size = 1, .flags = IPC_REG_DOORBELL_WAIT << 1, .addr = 0x3f9 },
		{ .space = IPC_SPACE_PIO, .size = 2, .addr = 0xffff },
		{ .space = IPC_SPACE_MMIO, .size = 8, .addr = UINT64_MAX - 3 },
		{ .space = IPC_SPACE_PIO, .size = 1, .flags = IPC_REG_SHADOW, .slot = 0, .addr = 0x3f9 },
		{ .space = IPC_SPACE_PIO, .size = 1, .addr = 0x3fd },
	};
	for (size_t i = 0; i < sizeof(bad_regs) / sizeof(bad_regs[0]); i++) {
		m = good;
		m.u.hello.regs[1] = bad_regs[i];
		assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	}
	/* The same slot number on a non-shadow reg is fine. */
	m = good;
	m.u.hello.regs[1] = (struct ipc_reg){ .space = IPC_SPACE_PIO, .size = 1, .slot = 0, .addr = 0x3f9 };
	assert_round_trip(&m);
}

/* Protocol 2's fields: range kind and line, line gsi and trigger, and the
 * slot rules; refused by the encoder (which runs the decoder's checks) and,
 * for bytes no encoder writes, on the wire. */
#define HELLO_LINES (HELLO_RANGES + 3 * 24) /* hello_msg has 3 ranges */

static void refused_by_encoder(const struct ipc_msg *m)
{
	uint8_t b[IPC_MAX_MSG];
	assert_int_equal(ipc_encode(m, b, sizeof(b)), IPC_EBADMSG);
}

static void test_hello_v2_hostile(void **state)
{
	(void)state;
	struct ipc_msg good = hello_msg(), m;
	uint8_t buf[IPC_MAX_MSG], b[IPC_MAX_MSG];
	size_t len = encode_ok(&good, buf);
	const uint8_t *range0 = buf + HELLO_RANGES, *line1 = buf + HELLO_LINES + 8;
	assert_int_equal(range0[1], IPC_RANGE_UART16550);
	assert_int_equal(range0[2], 0);
	assert_int_equal(buf[HELLO_RANGES + 24 + 2], 0xff); /* range 1: no line */
	assert_int_equal(line1[4], IPC_TRIGGER_LEVEL);

	/* On the wire: unknown kind, line index past the lines, unknown
	 * trigger, reserved bytes of a line. */
	memcpy(b, buf, len);
	b[HELLO_RANGES + 1] = IPC_RANGE_KIND_MAX;
	assert_refused(b, len);
	memcpy(b, buf, len);
	b[HELLO_RANGES + 2] = 2;
	assert_refused(b, len);
	memcpy(b, buf, len);
	b[HELLO_LINES + 4] = 2;
	assert_refused(b, len);
	memcpy(b, buf, len);
	b[HELLO_LINES + 6] = 1;
	assert_refused(b, len);
	/* Line flags (protocol 3): unknown ones, and a published edge line. */
	memcpy(b, buf, len);
	b[HELLO_LINES + 8 + 5] = 0x2;
	assert_refused(b, len);
	m = good;
	m.u.hello.irqs[0].flags = IPC_IRQ_PUBLISHED; /* IRQ 4, edge */
	refused_by_encoder(&m);
	m = good;
	m.u.hello.irqs[1].flags = IPC_IRQ_PUBLISHED; /* the slot's level line */
	size_t published_len = encode_ok(&m, b);
	assert_int_equal(b[HELLO_LINES + 8 + 5], IPC_IRQ_PUBLISHED);
	struct ipc_msg back;
	char err[128];
	assert_int_equal(ipc_decode(b, published_len, &back, err, sizeof(err)), IPC_OK);
	assert_int_equal(back.u.hello.irqs[1].flags, IPC_IRQ_PUBLISHED);
	assert_int_equal(back.u.hello.irqs[0].flags, 0);

	/* A uart16550 is 8 bytes. */
	m = good;
	m.u.hello.ranges[0].size = 16;
	refused_by_encoder(&m);
	/* A virtio-mmio range: MMIO, 0x200 bytes, with a line. */
	m = good;
	m.u.hello.ranges[2].size = 0x1000;
	refused_by_encoder(&m);
	m = good;
	m.u.hello.ranges[2].has_irq = false;
	refused_by_encoder(&m);
	m = good;
	m.u.hello.ranges[2].space = IPC_SPACE_PIO;
	refused_by_encoder(&m);
	/* A line index beyond the lines (the encoder would write "none"). */
	m = good;
	m.u.hello.ranges[0].irq = 5;
	refused_by_encoder(&m);
	/* A slot needs an ANY line of its own... */
	m = good;
	m.u.hello.irqs[1].gsi = 5;
	refused_by_encoder(&m);
	m = good;
	m.u.hello.ranges[0].irq = 1; /* the uart shares the slot's line */
	refused_by_encoder(&m);
	/* ...and an ANY line belongs to a slot. */
	m = good;
	m.u.hello.ranges[2].base = 0xd0000000; /* explicit now */
	refused_by_encoder(&m);
	m.u.hello.irqs[1].gsi = 17;
	encode_ok(&m, b); /* explicit base, explicit line: fine */
}

/* The receive ring's registers: size 1; the receive register (stream for
 * its writes) once; shadows and read-acknowledges describing it; no flag
 * that means something else of the same slot. */
static void test_hello_rx_ring_hostile(void **state)
{
	(void)state;
	struct ipc_msg good = hello_msg(), m;
	uint8_t b[IPC_MAX_MSG];
	good.u.hello.regs[0].flags = IPC_REG_SHADOW | IPC_REG_RX_RING;
	good.u.hello.regs[1].flags = IPC_REG_STREAM | IPC_REG_RX_RING;
	good.u.hello.regs[1].slot = 1;
	good.u.hello.regs[2] = (struct ipc_reg){.space = IPC_SPACE_PIO, .size = 1, .slot = 2, .addr = 0x3fa,
						.flags = IPC_REG_READ_ACK | IPC_REG_RX_RING};
	good.u.hello.nregs = 3;
	encode_ok(&good, b);
	/* Two receive registers. */
	m = good;
	m.u.hello.regs[2].flags = IPC_REG_RX_RING;
	refused_by_encoder(&m);
	/* The receive register's slot is its word: not shared. */
	m = good;
	m.u.hello.regs[1].slot = 0;
	refused_by_encoder(&m);
	m = good;
	m.u.hello.regs[1].size = 2;
	refused_by_encoder(&m);
	m = good;
	m.u.hello.regs[0].flags = IPC_REG_SHADOW | IPC_REG_READ_ACK | IPC_REG_RX_RING;
	refused_by_encoder(&m);
	const uint8_t others[] = {IPC_REG_ACK_LOWERS, IPC_REG_CHANGES_ONLY, IPC_REG_DOORBELL,
				  IPC_REG_DOORBELL_WAIT};
	for (size_t i = 0; i < sizeof(others); i++) {
		m = good;
		m.u.hello.regs[0].flags |= others[i];
		refused_by_encoder(&m);
	}
}

static void test_welcome_placement_hostile(void **state)
{
	(void)state;
	struct ipc_msg m = welcome_msg();
	m.u.welcome.nranges = IPC_MAX_RANGES + 1;
	refused_by_encoder(&m);
	m = welcome_msg();
	m.u.welcome.nirqs = IPC_MAX_IRQS + 1;
	refused_by_encoder(&m);
	m = welcome_msg();
	m.u.welcome.range_base[3] = 0x1000; /* beyond nranges */
	refused_by_encoder(&m);
	m = welcome_msg();
	m.u.welcome.irq_gsi[2] = 7; /* beyond nirqs */
	refused_by_encoder(&m);
	m = welcome_msg();
	m.u.welcome.irq_gsi[1] = IPC_IRQ_ANY; /* the core must assign it */
	refused_by_encoder(&m);
	/* Reserved bytes after the counts. */
	uint8_t b[IPC_MAX_MSG];
	m = welcome_msg();
	size_t len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 282] = 1;
	assert_refused(b, len);
	/* The RAM regions: a count out of range, a layout guest_mem refuses. */
	m = welcome_msg();
	m.u.welcome.nregions = 0;
	refused_by_encoder(&m);
	m.u.welcome.nregions = GUEST_MEM_MAX_REGIONS + 1;
	refused_by_encoder(&m);
	m = welcome_msg();
	m.u.welcome.ram_regions[1].size += 4096; /* more than ram_size */
	refused_by_encoder(&m);
	m = welcome_msg();
	m.u.welcome.ram_regions[1].gpa = 4096; /* overlaps region 0 */
	refused_by_encoder(&m);
	m = welcome_msg();
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 385] = 1; /* reserved after the count */
	assert_refused(b, len);
	m = welcome_msg();
	m.u.welcome.nregions = 1;
	m.u.welcome.ram_regions[0].size = m.u.welcome.ram_size;
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 392 + 16] = 1; /* a region beyond the count */
	assert_refused(b, len);
}

static void test_other_hostile(void **state)
{
	(void)state;
	uint8_t b[IPC_MAX_MSG];
	struct ipc_msg m = welcome_msg();
	memset(m.u.welcome.state_name, 'a', IPC_MAX_SHM_NAME);
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	m = welcome_msg();
	m.u.welcome.flags = 0x2;
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);

	m = (struct ipc_msg){ .type = IPC_REJECT };
	memset(m.u.reason, 'r', IPC_MAX_REASON);
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);

	m = (struct ipc_msg){ .type = IPC_IRQ };
	m.u.irq.level = 2;
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);

	const struct ipc_msg bad_io[] = {
		io_msg(IPC_IO_READ, IPC_SPACE_PIO, 3, 0x3f8, 0),
		io_msg(IPC_IO_READ, IPC_SPACE_PIO, 0, 0x3f8, 0),
		io_msg(IPC_IO_READ, 2, 1, 0x3f8, 0),
		io_msg(IPC_IO_READ, IPC_SPACE_PIO, 4, 0xfffe, 0),
		io_msg(IPC_IO_READ, IPC_SPACE_MMIO, 2, UINT64_MAX, 0),
		io_msg(IPC_IO_WRITE, IPC_SPACE_PIO, 1, 0x3f8, 0x100),
		io_msg(IPC_IO_WRITE, IPC_SPACE_MMIO, 4, 0x1000, 0x100000000ull),
	};
	for (size_t i = 0; i < sizeof(bad_io) / sizeof(bad_io[0]); i++)
		assert_int_equal(ipc_encode(&bad_io[i], b, sizeof(b)), IPC_EBADMSG);

	/* Runs: no bytes, too many, not a 1-byte access, a count the body
	 * does not match. */
	m = (struct ipc_msg){ .type = IPC_IO_WRITE_RUN };
	m.u.run = (struct ipc_io_run){ .space = IPC_SPACE_PIO, .addr = 0x3f8, .count = 0 };
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	m.u.run.count = IPC_IO_RUN_MAX + 1;
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	m.u.run.count = 2;
	m.u.run.addr = 0x10000;
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	m.u.run.addr = 0x3f8;
	size_t len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 1] = 2; /* size */
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 2] = 3; /* count 3, 2 bytes follow */
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 5] = 1; /* reserved */
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 22] = 1; /* reserved after the line action */
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 20] = IPC_LINE_LOWERED + 1; /* no such action */
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 16] = 1; /* a count without an action */
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 4] = IPC_RUN_THEN_READ_DONE; /* a read done the body lacks */
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 4] = 0x2; /* no such flag */
	assert_refused(b, len);

	/* A run's read done: a seq above the run's, data that fits, a valid
	 * access and line note, and a body of exactly its size. */
	m.seq = 100;
	m.u.run.then_read_done = true;
	m.u.run.read_done_seq = 100;
	m.u.run.read_done = (struct ipc_io){ .space = IPC_SPACE_PIO, .size = 1, .addr = 0x3fa, .data = 0xc2 };
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG); /* applied_seq would not grow */
	m.u.run.read_done_seq = 101;
	m.u.run.read_done.data = 0x100;
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	m.u.run.read_done.data = 0xc2;
	m.u.run.read_done.addr = 0x10000;
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	m.u.run.read_done.addr = 0x3fa;
	len = encode_ok(&m, b);
	const size_t done_at = IPC_HDR_SIZE + 24 + m.u.run.count + 8; /* the read done's body */
	b[done_at + 2] = IPC_LINE_LOWERED + 1; /* no such action */
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[done_at + 3] = 1; /* reserved after the action */
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 4] = 0; /* the read done's bytes without the flag */
	assert_refused(b, len);
	len = encode_ok(&m, b);
	assert_refused(b, len - 1); /* cut short */

	/* A register's changes need their flag, stay below the slots, and a
	 * stream register has none. */
	m = hello_msg();
	m.u.hello.regs[0].changes = 1;
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	m.u.hello.regs[0].flags |= IPC_REG_CHANGES_ONLY;
	m.u.hello.regs[0].changes = 1u << IPC_MAX_REGS;
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	m.u.hello.regs[0].changes = 1;
	assert_round_trip(&m);

	/* IO reserved bytes: IO_READ has no line note; IO_WRITE's note has
	 * three actions, a zero byte after it and no count without one. */
	m = io_msg(IPC_IO_READ, IPC_SPACE_PIO, 1, 0x3f8, 0);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 2] = IPC_LINE_RAISED;
	assert_refused(b, len);
	m = io_msg(IPC_IO_WRITE, IPC_SPACE_PIO, 1, 0x3f8, 0x41);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 3] = 1;
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 2] = IPC_LINE_LOWERED + 1;
	assert_refused(b, len);
	len = encode_ok(&m, b);
	b[IPC_HDR_SIZE + 4] = 1;
	assert_refused(b, len);
	m.u.io.line.irqs_applied = 7; /* the encoder refuses it too */
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);

	/* Unknown type and a short buffer are refused by the encoder. */
	m = (struct ipc_msg){ .type = 0 };
	assert_int_equal(ipc_encode(&m, b, sizeof(b)), IPC_EBADMSG);
	m = hello_msg();
	assert_int_equal(ipc_encode(&m, b, 20), IPC_ENOSPC);

	/* A failed decode leaves nothing behind. */
	struct ipc_msg out;
	memset(&out, 0xaa, sizeof(out));
	uint8_t junk[3] = { 1, 2, 3 };
	assert_int_equal(ipc_decode(junk, sizeof(junk), &out, NULL, 0), IPC_EBADMSG);
	assert_int_equal(out.type, 0);

	assert_string_equal(ipc_type_name(IPC_IO_WRITE), "IO_WRITE");
	assert_string_equal(ipc_type_name(0), "UNKNOWN");
	assert_string_equal(ipc_type_name(200), "UNKNOWN");
}

/* ---- guest memory ---- */

/* Posted messages batch into one frame and come back out in order; a
 * frame of several refuses any other type, a length field that points past
 * the frame or below a header, and everything after a bad message. */
static void test_batch_frames(void **state)
{
	(void)state;
	struct ipc_msg w = io_msg(IPC_IO_WRITE, IPC_SPACE_PIO, 1, 0x3f9, 0x02);
	w.seq = 7;
	struct ipc_msg run = { .type = IPC_IO_WRITE_RUN, .seq = 8 };
	run.u.run = (struct ipc_io_run){ .space = IPC_SPACE_PIO, .addr = 0x3f8, .count = 3,
					 .then_read_done = true, .read_done_seq = 9 };
	memcpy(run.u.run.data, "abc", 3);
	run.u.run.read_done = io_msg(IPC_IO_READ_DONE, IPC_SPACE_PIO, 1, 0x3fa, 0x02).u.io;
	struct ipc_msg done = io_msg(IPC_IO_READ_DONE, IPC_SPACE_PIO, 1, 0x3fa, 0x01);
	done.seq = 10;
	const struct ipc_msg *sent[] = { &w, &run, &done };

	struct ipc_batch b = { 0 };
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(ipc_batch_add(&b, sent[i]), IPC_OK);
	assert_int_equal(b.count, 3);
	struct ipc_msg ping = { .type = IPC_PING, .seq = 11 };
	assert_int_equal(ipc_batch_add(&b, &ping), IPC_EBADMSG); /* not posted */
	assert_int_equal(b.count, 3);
	size_t off = 0;
	struct ipc_msg got;
	char err[160];
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(ipc_decode_next(b.buf, b.len, &off, &got, err, sizeof(err)), IPC_OK);
		assert_msg_equal(&got, sent[i]);
	}
	assert_int_equal(off, b.len);

	/* A PING is a frame of its own, never one of several. */
	uint8_t one[IPC_MAX_MSG], frame[IPC_MAX_FRAME];
	size_t n = encode_ok(&ping, one);
	off = 0;
	assert_int_equal(ipc_decode_next(one, n, &off, &got, err, sizeof(err)), IPC_OK);
	assert_int_equal(off, n);
	memcpy(frame, b.buf, b.len);
	memcpy(frame + b.len, one, n);
	off = 0;
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(ipc_decode_next(frame, b.len + n, &off, &got, err, sizeof(err)), IPC_OK);
	assert_int_equal(ipc_decode_next(frame, b.len + n, &off, &got, err, sizeof(err)), IPC_EBADMSG);
	assert_non_null(strstr(err, "PING"));
	assert_int_equal(off, b.len + n);
	memcpy(frame, one, n);
	memcpy(frame + n, b.buf, b.len);
	off = 0;
	assert_int_equal(ipc_decode_next(frame, b.len + n, &off, &got, err, sizeof(err)), IPC_EBADMSG);
	assert_int_equal(off, b.len + n); /* the rest is dropped */

	/* The last message cut short: the first two still come. */
	off = 0;
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(ipc_decode_next(b.buf, b.len - 1, &off, &got, err, sizeof(err)), IPC_OK);
	assert_int_equal(ipc_decode_next(b.buf, b.len - 1, &off, &got, err, sizeof(err)), IPC_EBADMSG);
	assert_int_equal(off, b.len - 1);
	/* A length field below a header, or past the frame. */
	memcpy(frame, b.buf, b.len);
	for (uint32_t bad_len = 0; bad_len < 2; bad_len++) {
		put_le32(frame + 4, bad_len ? (uint32_t)b.len + 1 : IPC_HDR_SIZE - 1);
		off = 0;
		assert_int_equal(ipc_decode_next(frame, b.len, &off, &got, err, sizeof(err)), IPC_EBADMSG);
		assert_int_equal(got.type, 0); /* nothing half-validated */
		assert_int_equal(off, b.len);
	}

	/* Full: the message that does not fit is refused, the batch unchanged. */
	struct ipc_batch full = { 0 };
	while (ipc_batch_add(&full, &run) == IPC_OK)
		;
	size_t len = full.len;
	unsigned count = full.count;
	assert_int_equal(ipc_batch_add(&full, &run), IPC_ENOSPC);
	assert_true(len <= IPC_MAX_FRAME && len + 16 + 24 + 3 + 32 > IPC_MAX_FRAME);
	assert_int_equal(full.len, len);
	assert_int_equal(full.count, count);
}

static void test_guest_mem_bounds(void **state)
{
	(void)state;
	uint8_t ram[64];
	memset(ram, 0, sizeof(ram));
	struct guest_mem gm = { .base = ram, .size = sizeof(ram) };
	uint8_t v[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, r[8];

	assert_true(guest_mem_write(&gm, 56, v, 8));
	assert_true(guest_mem_read(&gm, 56, r, 8));
	assert_memory_equal(v, r, 8);
	assert_true(guest_mem_read(&gm, 64, r, 0));
	assert_false(guest_mem_write(&gm, 57, v, 8));
	assert_false(guest_mem_read(&gm, 65, r, 0));
	assert_false(guest_mem_read(&gm, UINT64_MAX, r, 2));
	assert_null(guest_mem_ptr(&gm, 8, UINT64_MAX - 4)); /* gpa + len wraps */
	assert_null(guest_mem_ptr(&gm, UINT64_MAX - 4, 8));
	struct guest_mem none = { 0 };
	assert_null(guest_mem_ptr(&none, 0, 0));
}

struct taken {
	uint64_t gpa[8];
	unsigned n;
};

static void record_page(void *opaque, uint64_t gpa);

/* RAM split around a hole: 3 pages at 0, 2 pages at 4 GiB, one after the
 * other in the object; the hole and the end are outside, a range across
 * the hole is refused; the dirty log speaks guest-physical addresses. */
static void test_guest_mem_regions(void **state)
{
	(void)state;
	const uint64_t ram_size = 5 * 4096, high = 1ull << 32;
	uint8_t *shm = calloc(1, guest_mem_shm_size(ram_size));
	assert_non_null(shm);
	struct guest_mem gm;
	guest_mem_attach(&gm, shm, ram_size);
	struct guest_mem_region split[2] = {{0, 3 * 4096}, {high, 2 * 4096}};
	assert_true(guest_mem_set_regions(&gm, split, 2));
	assert_ptr_equal(guest_mem_ptr(&gm, 0, 3 * 4096), shm);
	assert_ptr_equal(guest_mem_ptr(&gm, high, 8), shm + 3 * 4096);
	assert_ptr_equal(guest_mem_ptr(&gm, high + 2 * 4096 - 8, 8), shm + 5 * 4096 - 8);
	assert_null(guest_mem_ptr(&gm, 3 * 4096 - 4, 8));   /* runs into the hole */
	assert_null(guest_mem_ptr(&gm, 3 * 4096, 1));       /* the hole */
	assert_null(guest_mem_ptr(&gm, high - 4, 8));       /* from the hole into RAM */
	assert_null(guest_mem_ptr(&gm, high + 2 * 4096, 1)); /* past the end */
	assert_null(guest_mem_ptr(&gm, high, UINT64_MAX));   /* wraps */

	uint8_t v[4] = {1, 2, 3, 4};
	assert_true(guest_mem_write(&gm, high + 4096, v, 4));
	assert_memory_equal(shm + 4 * 4096, v, 4);
	struct taken t = {0};
	guest_mem_take_dirty(&gm, record_page, &t);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.gpa[0], high + 4096);

	/* Layouts another process might send: each refused, gm unchanged. */
	const struct guest_mem_region bad[][2] = {
		{{0, 3 * 4096}, {high, 3 * 4096}},    /* more than the object holds */
		{{0, 3 * 4096}, {4096, 2 * 4096}},    /* overlapping */
		{{high, 2 * 4096}, {0, 3 * 4096}},    /* descending */
		{{0, 3 * 4096}, {high + 1, 2 * 4096}}, /* unaligned */
		{{0, 0}, {high, 5 * 4096}},           /* empty */
		{{0, 3 * 4096}, {UINT64_MAX - 4095, 2 * 4096}}, /* wraps */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(guest_mem_set_regions(&gm, bad[i], 2));
	assert_false(guest_mem_set_regions(&gm, split, 3));
	assert_false(guest_mem_set_regions(&gm, split, 0));
	assert_ptr_equal(guest_mem_ptr(&gm, high, 8), shm + 3 * 4096);
	free(shm);
}

static void record_page(void *opaque, uint64_t gpa)
{
	struct taken *t = opaque;
	if (t->n < 8)
		t->gpa[t->n] = gpa;
	t->n++;
}

/* The dirty log: after RAM at a page boundary, bits set by writes through
 * one view, generation bumped, taken and cleared through another. */
static void test_guest_mem_dirty_log(void **state)
{
	(void)state;
	const uint64_t ram_size = 70 * 4096 + 100; /* a partial last page, two bitmap words */
	uint64_t shm_size = guest_mem_shm_size(ram_size);
	assert_int_equal(shm_size % 4096, 0);
	assert_true(shm_size >= 71 * 4096 + sizeof(struct guest_dirty_log) + 2 * sizeof(uint64_t));
	uint8_t *shm = calloc(1, shm_size);
	assert_non_null(shm);
	struct guest_mem core, device;
	guest_mem_attach(&core, shm, ram_size);
	guest_mem_attach(&device, shm, ram_size);
	assert_ptr_equal(core.base, shm);
	assert_int_equal(core.size, ram_size);
	assert_ptr_equal((uint8_t *)core.dirty, shm + 71 * 4096);

	uint8_t bytes[8] = {0};
	assert_true(guest_mem_write(&device, 2 * 4096 - 4, bytes, 8)); /* pages 1 and 2 */
	assert_true(guest_mem_write(&device, 69 * 4096, bytes, 8));   /* page 69: second word */
	assert_false(guest_mem_write(&device, ram_size - 4, bytes, 8)); /* refused: marks nothing */
	guest_mem_written(&device, ram_size, 4096);                    /* outside RAM: ignored */
	assert_int_equal(atomic_load(&core.dirty->generation), 2);

	struct taken t = {0};
	guest_mem_take_dirty(&core, record_page, &t);
	assert_int_equal(t.n, 3);
	assert_int_equal(t.gpa[0], 1 * 4096);
	assert_int_equal(t.gpa[1], 2 * 4096);
	assert_int_equal(t.gpa[2], 69 * 4096);
	t.n = 0;
	guest_mem_take_dirty(&core, record_page, &t); /* taken: cleared */
	assert_int_equal(t.n, 0);

	struct guest_mem no_log = {.base = shm, .size = ram_size};
	assert_true(guest_mem_write(&no_log, 0, bytes, 8));
	guest_mem_take_dirty(&no_log, record_page, &t);
	assert_int_equal(t.n, 0);
	assert_int_equal(atomic_load(&core.dirty->generation), 2);
	free(shm);
}

/* ---- the channel over a real socket ---- */

struct peer_events {
	atomic_int up, down;
};

static void count_peer(void *opaque, bool up)
{
	struct peer_events *ev = opaque;
	atomic_fetch_add(up ? &ev->up : &ev->down, 1);
}

/* Waits up to 2 s for *counter to reach at least want; returns it. */
static int wait_at_least(atomic_int *counter, int want)
{
	for (int i = 0; i < 200 && atomic_load(counter) < want; i++)
		host_sleep_ms(10);
	return atomic_load(counter);
}

/* Waits up to 2 s for *counter to reach want. */
static void wait_count(atomic_int *counter, int want)
{
	assert_int_equal(wait_at_least(counter, want), want);
}

static void recv_ok(ipc_chan *c, struct ipc_msg *m, uint8_t type)
{
	char err[128] = "";
	int rc = ipc_recv(c, m, 2000, err, sizeof(err));
	if (rc != IPC_OK)
		fail_msg("ipc_recv: %d %s", rc, err);
	assert_int_equal(m->type, type);
}

static void test_channel(void **state)
{
	(void)state;
	char dir[256], url[300], err[256] = "";
	assert_int_equal(host_runtime_dir_create(dir, sizeof(dir), err, sizeof(err)), 0);
	assert_int_equal(host_ipc_url(dir, "test", url, sizeof(url)), 0);

	struct peer_events ev = { 0 };
	ipc_chan *core, *dev;
	assert_int_equal(ipc_listen(url, count_peer, &ev, &core, err, sizeof(err)), IPC_OK);
	assert_int_equal(ipc_dial(url, 2000, &dev, err, sizeof(err)), IPC_OK);
	wait_count(&ev.up, 1);

	/* HELLO, then a forwarded read and its reply. */
	struct ipc_msg m = hello_msg(), got;
	assert_int_equal(ipc_send(dev, &m), IPC_OK);
	recv_ok(core, &got, IPC_HELLO);
	assert_msg_equal(&got, &m);
	m = io_msg(IPC_IO_READ, IPC_SPACE_PIO, 1, 0x3fd, 0);
	m.seq = 5;
	assert_int_equal(ipc_send(core, &m), IPC_OK);
	recv_ok(dev, &got, IPC_IO_READ);
	assert_int_equal(got.u.io.addr, 0x3fd);
	m = (struct ipc_msg){ .type = IPC_IO_REPLY, .seq = got.seq };
	m.u.io.data = 0x60;
	assert_int_equal(ipc_send(dev, &m), IPC_OK);
	recv_ok(core, &got, IPC_IO_REPLY);
	assert_int_equal(got.seq, 5);
	assert_int_equal(got.u.io.data, 0x60);

	assert_int_equal(ipc_recv(core, &got, 20, err, sizeof(err)), IPC_ETIMEDOUT);
	assert_int_equal(ipc_recv(core, &got, 0, err, sizeof(err)), IPC_ETIMEDOUT);

	/* A frame of posted messages: one per receive, in order, then nothing. */
	struct ipc_batch b = { 0 };
	for (uint64_t i = 0; i < 3; i++) {
		m = io_msg(IPC_IO_WRITE, IPC_SPACE_PIO, 1, 0x3f8, 'a' + i);
		m.seq = 6 + i;
		assert_int_equal(ipc_batch_add(&b, &m), IPC_OK);
	}
	assert_int_equal(ipc_send_batch_timeout(core, &b, 1000), IPC_OK);
	for (uint64_t i = 0; i < 3; i++) {
		recv_ok(dev, &got, IPC_IO_WRITE);
		assert_int_equal(got.seq, 6 + i);
		assert_int_equal(got.u.io.data, 'a' + i);
	}
	assert_int_equal(ipc_recv(dev, &got, 0, err, sizeof(err)), IPC_ETIMEDOUT);

	/* The device goes away: the core hears of it and keeps listening. */
	ipc_close(dev);
	wait_count(&ev.down, 1);

	/* Garbage from a raw peer is consumed and reported. */
	nng_socket raw;
	assert_int_equal(nng_pair0_open(&raw), 0);
	assert_int_equal(nng_dial(raw, url, NULL, 0), 0);
	wait_count(&ev.up, 2);
	assert_int_equal(nng_send(raw, "junk", 4, 0), 0);
	err[0] = '\0';
	assert_int_equal(ipc_recv(core, &got, 2000, err, sizeof(err)), IPC_EBADMSG);
	assert_true(err[0] != '\0');
	nng_close(raw);
	wait_count(&ev.down, 2);

	/* A restarted device attaches again; when the core goes, the device's
	 * receive and send report the channel closed. */
	assert_int_equal(ipc_dial(url, 2000, &dev, err, sizeof(err)), IPC_OK);
	wait_count(&ev.up, 3);
	ipc_close(core);
	assert_int_equal(ipc_recv(dev, &got, -1, err, sizeof(err)), IPC_ECLOSED);
	m = (struct ipc_msg){ .type = IPC_QUIT };
	assert_int_equal(ipc_send(dev, &m), IPC_ECLOSED);
	ipc_close(dev);

	/* Nobody listening: the dial gives up at its deadline. */
	uint64_t t0 = host_now_ns();
	assert_int_equal(ipc_dial(url, 100, &dev, err, sizeof(err)), IPC_ETIMEDOUT);
	assert_true(host_now_ns() - t0 >= 100 * 1000000ull);
	host_runtime_dir_remove(dir);
}

/* A device refused because the core still had a peer (a restarted device
 * dialing before the core noticed its previous incarnation go) has a
 * channel closed for good, and must not come back by itself.  nng's dialer
 * did, after a random delay below its reconnect time (NNG_OPT_RECONNMINT,
 * 1 s): the core took that connection as its peer, though the device never
 * used it, and refused the device's next dial; under Wine such a connection
 * could even outlive ipc_close (chan.c, on_pipe_event).  The 2 s wait can
 * miss a redial on a very slow host, never fail a right channel. */
static void test_channel_refused_device_stays_away(void **state)
{
	(void)state;
	char dir[256], url[300], err[256] = "";
	assert_int_equal(host_runtime_dir_create(dir, sizeof(dir), err, sizeof(err)), 0);
	assert_int_equal(host_ipc_url(dir, "test", url, sizeof(url)), 0);
	struct peer_events ev = { 0 };
	ipc_chan *core, *first, *refused, *restarted;
	assert_int_equal(ipc_listen(url, count_peer, &ev, &core, err, sizeof(err)), IPC_OK);
	assert_int_equal(ipc_dial(url, 2000, &first, err, sizeof(err)), IPC_OK);
	wait_count(&ev.up, 1);

	assert_int_equal(ipc_dial(url, 2000, &refused, err, sizeof(err)), IPC_OK);
	struct ipc_msg m = hello_msg(), got;
	assert_int_equal(ipc_recv(refused, &got, 2000, err, sizeof(err)), IPC_ECLOSED);
	assert_int_equal(ipc_send(refused, &m), IPC_ECLOSED);

	ipc_close(first);
	wait_count(&ev.down, 1);
	host_sleep_ms(2000);
	assert_int_equal(atomic_load(&ev.up), 1);

	/* The device's next dial gets the core at once. */
	assert_int_equal(ipc_dial(url, 2000, &restarted, err, sizeof(err)), IPC_OK);
	wait_count(&ev.up, 2);
	assert_int_equal(ipc_send(restarted, &m), IPC_OK);
	recv_ok(core, &got, IPC_HELLO);
	ipc_close(refused);
	ipc_close(restarted);
	wait_count(&ev.down, 2);
	assert_int_equal(atomic_load(&ev.up), 2);
	ipc_close(core);
	host_runtime_dir_remove(dir);
}

/* Devices replaced at once, again and again (a device killed and
 * restarted): nng may report the new pipe before the old one's removal.
 * Every peer that came must be reported gone, the last one included. */
static void test_channel_peers_replaced_at_once(void **state)
{
	(void)state;
	char dir[256], url[300], err[256] = "";
	assert_int_equal(host_runtime_dir_create(dir, sizeof(dir), err, sizeof(err)), 0);
	assert_int_equal(host_ipc_url(dir, "test", url, sizeof(url)), 0);
	struct peer_events ev = { 0 };
	ipc_chan *core;
	assert_int_equal(ipc_listen(url, count_peer, &ev, &core, err, sizeof(err)), IPC_OK);
	enum { ROUNDS = 100 };
	ipc_chan *dev = NULL;
	for (int i = 0; i < ROUNDS; i++) {
		ipc_chan *next;
		int rc = ipc_dial(url, 2000, &next, err, sizeof(err));
		if (rc != IPC_OK)
			fail_msg("round %d: dial %d: %s", i, rc, err);
		if (dev)
			ipc_close(dev);
		dev = next;
		/* A dial refused because the old peer was still there is
		 * closed by nng: dial again, as devices do when their HELLO
		 * goes unanswered. */
		for (int attempt = 0;; attempt++) {
			if (attempt >= 50) fail_msg("round %d: up %d down %d", i, atomic_load(&ev.up), atomic_load(&ev.down));
			struct ipc_msg m = hello_msg(), got;
			m.seq = (uint64_t)i * 100 + (uint64_t)attempt;
			ipc_send_timeout(dev, &m, 200);
			bool heard = false;
			while (!heard && ipc_recv(core, &got, 300, err, sizeof(err)) == IPC_OK)
				heard = got.seq == m.seq;
			if (heard)
				break;
			ipc_close(dev);
			assert_int_equal(ipc_dial(url, 2000, &dev, err, sizeof(err)), IPC_OK);
		}
	}
	ipc_close(dev);
	/* pair0 hands a pipe its messages before nng runs the pipe's
	 * ADD_POST, so the last peer's "up" may still be to come (CI, under
	 * load: up 99, down 99). */
	int up = wait_at_least(&ev.up, ROUNDS);
	assert_true(up >= ROUNDS);
	wait_count(&ev.down, up);
	assert_int_equal(atomic_load(&ev.up), up);
	ipc_close(core);
	host_runtime_dir_remove(dir);
}

#ifndef _WIN32 /* the limit is that of a Unix socket path */
static void test_channel_long_path(void **state)
{
	(void)state;
	char url[400] = "ipc:///tmp/", err[256] = "";
	memset(url + strlen(url), 'p', 200);
	ipc_chan *c;
	assert_int_equal(ipc_listen(url, NULL, NULL, &c, err, sizeof(err)), IPC_EIO);
	assert_non_null(strstr(err, "limit"));
}
#endif

#ifndef _WIN32
static const char *seed_dir; /* argv[1]: dev-serial's fuzz seeds */

/* Every seed of fuzz_dev_serial decodes, after its board byte, as a frame
 * of messages: one the decoder refuses only reaches the terminal-input path
 * (after protocol version 3, dev-net's two message seeds still said 1). */
static void test_fuzz_seeds_decode(void **state)
{
	(void)state;
	assert_non_null(seed_dir);
	DIR *dir = opendir(seed_dir);
	assert_non_null(dir);
	unsigned seeds = 0;
	for (struct dirent *e; (e = readdir(dir));) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "README") == 0)
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", seed_dir, e->d_name);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		uint8_t buf[IPC_MAX_FRAME + 2];
		size_t len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		if (len < 2 || len > IPC_MAX_FRAME + 1)
			fail_msg("%s: %zu bytes", e->d_name, len);
		struct ipc_msg m;
		char err[160] = "";
		for (size_t off = 0; off < len - 1;)
			if (ipc_decode_next(buf + 1, len - 1, &off, &m, err, sizeof(err)) != IPC_OK)
				fail_msg("%s: %s", e->d_name, err);
		seeds++;
	}
	closedir(dir);
	assert_true(seeds >= 20);
}
#endif

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_type),
		cmocka_unit_test(test_truncated_at_every_length),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_hello_hostile),
		cmocka_unit_test(test_hello_v2_hostile),
		cmocka_unit_test(test_hello_rx_ring_hostile),
		cmocka_unit_test(test_welcome_placement_hostile),
		cmocka_unit_test(test_other_hostile),
		cmocka_unit_test(test_batch_frames),
		cmocka_unit_test(test_guest_mem_bounds),
		cmocka_unit_test(test_guest_mem_dirty_log),
		cmocka_unit_test(test_guest_mem_regions),
		cmocka_unit_test(test_channel),
		cmocka_unit_test(test_channel_refused_device_stays_away),
		cmocka_unit_test(test_channel_peers_replaced_at_once),
#ifndef _WIN32
		cmocka_unit_test(test_channel_long_path),
		cmocka_unit_test(test_fuzz_seeds_decode),
#endif
	};
#ifndef _WIN32
	seed_dir = argc > 1 ? argv[1] : NULL;
#else
	(void)argc;
	(void)argv;
#endif
	return cmocka_run_group_tests(tests, NULL, NULL);
}
