/* ipc.c - the wire format of the messages between vmm-core and the devices.
 *
 * ipc_decode() is the security boundary between processes: everything that
 * arrives from another process passes through it before any other code looks
 * at it.  ipc_encode() runs the same checks on what it produced, so a message
 * that would be refused is never sent.
 *
 * Wire layout.  All integers little-endian, no padding, offsets in bytes.
 * Fields marked "zero" are reserved: a sender writes 0, a receiver refuses
 * anything else (so a later version can give them a meaning).
 *
 * Header, 16 bytes, in front of every message:
 *   0  u16  magic    0x564d ("MV")
 *   2  u8   version  IPC_PROTO_VERSION (the wire format's version)
 *   3  u8   type     enum ipc_msg_type
 *   4  u32  length   of the whole message, header included; must equal the
 *                    number of bytes received
 *   8  u64  seq      IO_READ/IO_REPLY and PING/PONG pairs share it; IO_WRITE
 *                    carries the sender's running count (state->applied_seq)
 *
 * Frames: a channel message is one message, or up to IPC_MAX_FRAME bytes of
 * posted messages (IO_WRITE, IO_WRITE_RUN, IO_READ_DONE) back to back, each
 * with its header, the length field delimiting it (ipc_decode_next).
 *
 * Body, by type (offsets from the start of the body; the body length must be
 * exactly the one given here):
 *
 * IPC_HELLO, 24 + 24*nranges + 8*nirqs + 16*nregs bytes:
 *   0  u32       version   the device's protocol version (the core compares)
 *   4  char[16]  name      NUL-terminated, not empty
 *  20  u8        nranges   <= IPC_MAX_RANGES
 *  21  u8        nirqs     <= IPC_MAX_IRQS
 *  22  u8        nregs     <= IPC_MAX_REGS
 *  23  u8        zero
 *  24  nranges x range, 24 bytes each:
 *        0 u8 space (0 PIO, 1 MMIO), 1 u8 kind (enum ipc_range_kind),
 *        2 u8 irq (index of its line below, or 0xff: none), 3 u8[5] zero,
 *        8 u64 base, 16 u64 size
 *        size > 0, base + size does not wrap, PIO ranges end at or below 0x10000;
 *        a uart16550 is 8 bytes; a virtio-mmio is 0x200 bytes of MMIO with a
 *        line, and base 0 asks for a slot, which needs a line of gsi ANY
 *  ..  nirqs x line, 8 bytes each:
 *        0 u32 gsi (0xffffffff: ANY, the core assigns it with a slot, for
 *        exactly one slot-asking range), 4 u8 trigger (0 edge, 1 level),
 *        5 u8 flags (IPC_IRQ_*; IPC_IRQ_PUBLISHED only with level), 6 u8[2] zero
 *  ..  nregs x reg, 16 bytes each:
 *        0 u8 space, 1 u8 size (1, 2, 4, 8), 2 u8 flags (IPC_REG_*),
 *        3 u8 slot (< IPC_MAX_REGS), 4 u32 changes (slots below
 *        IPC_MAX_REGS, with IPC_REG_CHANGES_ONLY, not with IPC_REG_STREAM;
 *        else zero), 8 u64 addr
 *        the access lies in its space as a range would; no two regs share an
 *        address; no two regs with a shadow slot (IPC_REG_SHADOW,
 *        IPC_REG_READ_ACK, IPC_REG_RX_RING) share one; an IPC_REG_READ_ACK
 *        reg has size 1; an IPC_REG_RX_RING reg has size 1, neither
 *        ACK_LOWERS, CHANGES_ONLY nor a doorbell, not both SHADOW and
 *        READ_ACK, and at most one has neither (the receive register)
 *
 * IPC_WELCOME, 424 bytes:
 *   0  u32       flags       IPC_WELCOME_* only
 *   4  u32       zero
 *   8  u64       ram_size
 *  16  u64       state_size
 *  24  char[128] ram_name    NUL-terminated (host_shm_open names)
 * 152  char[128] state_name  NUL-terminated
 * 280  u8        nranges     <= IPC_MAX_RANGES (the HELLO's)
 * 281  u8        nirqs       <= IPC_MAX_IRQS (the HELLO's)
 * 282  u8[2]     zero
 * 284  u32       irqs_applied (struct ipc_line_note)
 * 288  u64[8]    range_base  where each range is (assigned or declared);
 *                            entries from nranges on are zero
 * 352  u32[8]    irq_gsi     each line's GSI, never ANY; zero from nirqs on
 * 384  u8        nregions    1..GUEST_MEM_MAX_REGIONS (2)
 * 385  u8[7]     zero
 * 392  {u64 gpa, u64 size}[2]  ram_regions: guest RAM's bytes in order,
 *                            laid out as guest_mem_set_regions accepts;
 *                            zero from nregions on
 *
 * IPC_REJECT, 128 bytes:
 *   0  char[128] reason      NUL-terminated
 *
 * IPC_IO_READ, 16 bytes:
 *   0 u8 space, 1 u8 size (1, 2, 4, 8), 2 u8[6] zero, 8 u64 addr
 *   the access lies in its space as a range would
 * IPC_IO_WRITE, 24 bytes: as IO_READ, but
 *   2  u8   line action (enum ipc_line_action), 3 u8 zero,
 *   4  u32  line irqs_applied (struct ipc_line_note; zero without an action),
 *  16  u64  data   fits in `size` bytes
 * IPC_IO_READ_DONE, 24 bytes: as IO_WRITE (data: the value the core returned)
 * IPC_IO_WRITE_RUN, 24 + count bytes, + 32 with a read done:
 *   0 u8 space, 1 u8 size (1), 2 u16 count (1..IPC_IO_RUN_MAX), 4 u8 flags
 *   (IPC_RUN_*), 5 u8[3] zero, 8 u64 addr (a 1-byte access), 16 u32 line
 *   irqs_applied, 20 u8 line action, 21 u8[3] zero, 24 u8[count] data:
 *   count writes, in order; with IPC_RUN_THEN_READ_DONE, then
 *   24+count u64 seq (above the header's), 32+count an IO_READ_DONE's
 *   24-byte body: the read done applied after the writes
 * IPC_IO_REPLY, 8 bytes:
 *   0  u64  data   (the reader knows the size it asked for and masks)
 *
 * IPC_IRQ, 8 bytes:
 *   0  u32  line
 *   4  u32  level  0 or 1
 *
 * IPC_RESET, IPC_SHUTDOWN, IPC_QUIT, IPC_PING, IPC_PONG: no body.
 */
#include "ipc.h"
#include "le.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HELLO_FIXED 24
#define RANGE_WIRE 24
#define IRQ_WIRE 8
#define REG_WIRE 16
#define WELCOME_NAMES_END 280
#define WELCOME_BASES 288
#define WELCOME_GSIS (WELCOME_BASES + 8 * IPC_MAX_RANGES)
#define WELCOME_REGIONS_COUNT (WELCOME_GSIS + 4 * IPC_MAX_IRQS)
#define WELCOME_REGIONS (WELCOME_REGIONS_COUNT + 8)
#define WELCOME_WIRE (WELCOME_REGIONS + 16 * GUEST_MEM_MAX_REGIONS)
#define IO_READ_WIRE 16
#define IO_WRITE_WIRE 24
#define IO_REPLY_WIRE 8
#define IO_RUN_FIXED 24
#define IO_RUN_READ_DONE_WIRE (8 + IO_WRITE_WIRE) /* seq, then an IO_READ_DONE's body */
#define IRQ_MSG_WIRE 8
#define PIO_SPACE_END 0x10000u
#define RANGE_NO_IRQ 0xff

_Static_assert(IPC_HDR_SIZE + HELLO_FIXED + IPC_MAX_RANGES * RANGE_WIRE + IPC_MAX_IRQS * IRQ_WIRE +
			       IPC_MAX_REGS * REG_WIRE <=
		       IPC_MAX_MSG,
	       "the largest HELLO must fit in IPC_MAX_MSG");
_Static_assert(24 + 2 * IPC_MAX_SHM_NAME == WELCOME_NAMES_END && WELCOME_WIRE == 424,
	       "WELCOME layout");
_Static_assert(IPC_HDR_SIZE + IO_RUN_FIXED + IPC_IO_RUN_MAX <= IPC_MAX_MSG,
	       "the longest IO_WRITE_RUN must fit in IPC_MAX_MSG");

/* A string field: the bytes up to the NUL, zeros after it (nothing of the
 * sender's memory beyond the string leaves the process).  A string that
 * fills the field has no NUL and the decoder refuses it. */
static void put_str(uint8_t *p, const char *s, size_t field)
{
	size_t n = strnlen(s, field);
	memcpy(p, s, n);
	memset(p + n, 0, field - n);
}

/* ---- validation ---- */

static int bad(char *err, size_t errlen, const char *fmt, ...) MINIVM_PRINTF(3, 4);

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return IPC_EBADMSG;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool valid_access_size(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

/* [base, base+size) is non-empty, does not wrap and lies in its space. */
static bool valid_span(unsigned space, uint64_t base, uint64_t size)
{
	if (space != IPC_SPACE_PIO && space != IPC_SPACE_MMIO)
		return false;
	if (size == 0 || base + size < base)
		return false;
	return space == IPC_SPACE_MMIO || base + size <= PIO_SPACE_END;
}

/* Copies a NUL-terminated string field; false if the field has no NUL. */
static bool get_str(char *dst, const uint8_t *p, size_t field)
{
	if (!memchr(p, 0, field))
		return false;
	memcpy(dst, p, field);
	return true;
}

/* The register reads a shadow slot of the state page. */
static bool uses_slot(const struct ipc_reg *g)
{
	return g->flags & (IPC_REG_SHADOW | IPC_REG_READ_ACK | IPC_REG_RX_RING);
}

/* The register pops the receive ring (IPC_REG_RX_RING, neither a shadow nor a read-acknowledge). */
static bool pops_rx_ring(const struct ipc_reg *g)
{
	return (g->flags & IPC_REG_RX_RING) && !(g->flags & (IPC_REG_SHADOW | IPC_REG_READ_ACK));
}

static int decode_hello(const uint8_t *b, size_t blen, struct ipc_hello *h, char *err, size_t errlen)
{
	if (blen < HELLO_FIXED)
		return bad(err, errlen, "HELLO: body of %zu bytes, need at least %d", blen, HELLO_FIXED);
	h->version = le32(b);
	if (!get_str(h->name, b + 4, IPC_MAX_NAME))
		return bad(err, errlen, "HELLO: device name not NUL-terminated");
	if (!h->name[0])
		return bad(err, errlen, "HELLO: empty device name");
	h->nranges = b[20];
	h->nirqs = b[21];
	h->nregs = b[22];
	if (b[23])
		return bad(err, errlen, "HELLO: reserved byte not zero");
	if (h->nranges > IPC_MAX_RANGES || h->nirqs > IPC_MAX_IRQS || h->nregs > IPC_MAX_REGS)
		return bad(err, errlen, "HELLO: %u ranges, %u irqs, %u regs exceed the limits %d, %d, %d",
			   h->nranges, h->nirqs, h->nregs, IPC_MAX_RANGES, IPC_MAX_IRQS, IPC_MAX_REGS);
	size_t want = HELLO_FIXED + h->nranges * RANGE_WIRE + h->nirqs * IRQ_WIRE + h->nregs * REG_WIRE;
	if (blen != want)
		return bad(err, errlen, "HELLO: body of %zu bytes, its counts need %zu", blen, want);

	const uint8_t *p = b + HELLO_FIXED;
	for (unsigned i = 0; i < h->nranges; i++, p += RANGE_WIRE) {
		struct ipc_range *r = &h->ranges[i];
		r->space = p[0];
		r->kind = p[1];
		r->has_irq = p[2] != RANGE_NO_IRQ;
		r->irq = r->has_irq ? p[2] : 0;
		r->base = le64(p + 8);
		r->size = le64(p + 16);
		if (!all_zero(p + 3, 5))
			return bad(err, errlen, "HELLO: range %u: reserved bytes not zero", i);
		if (!valid_span(r->space, r->base, r->size))
			return bad(err, errlen, "HELLO: range %u: space %u base 0x%llx size 0x%llx is empty, wraps or is outside its space",
				   i, r->space, (unsigned long long)r->base, (unsigned long long)r->size);
		if (r->kind >= IPC_RANGE_KIND_MAX)
			return bad(err, errlen, "HELLO: range %u: unknown kind %u", i, r->kind);
		if (r->has_irq && r->irq >= h->nirqs)
			return bad(err, errlen, "HELLO: range %u: line %u, the device has %u", i, r->irq,
				   h->nirqs);
		if (r->kind == IPC_RANGE_UART16550 && r->size != IPC_UART16550_SIZE)
			return bad(err, errlen, "HELLO: range %u: a uart16550 is %d bytes, not %llu", i,
				   IPC_UART16550_SIZE, (unsigned long long)r->size);
		if (r->kind == IPC_RANGE_PL011 &&
		    (r->space != IPC_SPACE_MMIO || r->size != IPC_PL011_SIZE || !r->has_irq))
			return bad(err, errlen, "HELLO: range %u: a pl011 range is 0x%x bytes of MMIO with a line",
				   i, IPC_PL011_SIZE);
		if (r->kind == IPC_RANGE_DEBUGCON && r->size != 1)
			return bad(err, errlen, "HELLO: range %u: a debug port is 1 byte, not %llu", i,
				   (unsigned long long)r->size);
		if (r->kind == IPC_RANGE_VIRTIO_MMIO &&
		    (r->space != IPC_SPACE_MMIO || r->size != IPC_VIRTIO_MMIO_SIZE || !r->has_irq))
			return bad(err, errlen, "HELLO: range %u: a virtio-mmio range is 0x%x bytes of MMIO with a line",
				   i, IPC_VIRTIO_MMIO_SIZE);
	}
	for (unsigned i = 0; i < h->nirqs; i++, p += IRQ_WIRE) {
		struct ipc_irq_line *l = &h->irqs[i];
		l->gsi = le32(p);
		l->trigger = p[4];
		l->flags = p[5];
		if (!all_zero(p + 6, 2))
			return bad(err, errlen, "HELLO: line %u: reserved bytes not zero", i);
		if (l->trigger != IPC_TRIGGER_EDGE && l->trigger != IPC_TRIGGER_LEVEL)
			return bad(err, errlen, "HELLO: line %u: trigger %u is neither edge nor level", i,
				   l->trigger);
		if (l->flags & ~IPC_IRQ_FLAGS)
			return bad(err, errlen, "HELLO: line %u: unknown flags %#x", i, l->flags);
		if ((l->flags & IPC_IRQ_PUBLISHED) && l->trigger != IPC_TRIGGER_LEVEL)
			return bad(err, errlen, "HELLO: line %u: only a level-triggered line is published", i);
	}
	/* A slot comes with its line: a slot-asking range has a line of its
	 * own marked ANY, and an ANY line belongs to exactly one such range. */
	for (unsigned i = 0; i < h->nirqs; i++) {
		unsigned users = 0, slot_users = 0;
		for (unsigned j = 0; j < h->nranges; j++) {
			const struct ipc_range *r = &h->ranges[j];
			if (!r->has_irq || r->irq != i)
				continue;
			users++;
			slot_users += r->kind == IPC_RANGE_VIRTIO_MMIO && r->base == 0;
		}
		bool any = h->irqs[i].gsi == IPC_IRQ_ANY;
		if (slot_users && !(any && users == 1))
			return bad(err, errlen, "HELLO: line %u: a range asking for a slot needs a line of gsi ANY of its own", i);
		if (any && !slot_users)
			return bad(err, errlen, "HELLO: line %u: gsi ANY but no range asks for a slot", i);
	}
	for (unsigned i = 0; i < h->nregs; i++, p += REG_WIRE) {
		struct ipc_reg *g = &h->regs[i];
		g->space = p[0];
		g->size = p[1];
		g->flags = p[2];
		g->slot = p[3];
		g->changes = le32(p + 4);
		g->addr = le64(p + 8);
		if (g->changes && (!(g->flags & IPC_REG_CHANGES_ONLY) || g->changes >> IPC_MAX_REGS))
			return bad(err, errlen, "HELLO: reg %u: changes 0x%x without its flag or beyond the slots",
				   i, g->changes);
		if ((g->flags & IPC_REG_CHANGES_ONLY) && (g->flags & IPC_REG_STREAM))
			return bad(err, errlen, "HELLO: reg %u: a stream register changes no shadow", i);
		if (!valid_access_size(g->size) || !valid_span(g->space, g->addr, g->size))
			return bad(err, errlen, "HELLO: reg %u: space %u addr 0x%llx size %u is not a valid access",
				   i, g->space, (unsigned long long)g->addr, g->size);
		if (g->flags & ~IPC_REG_FLAGS)
			return bad(err, errlen, "HELLO: reg %u: unknown flags 0x%x", i, g->flags);
		if (g->slot >= IPC_MAX_REGS)
			return bad(err, errlen, "HELLO: reg %u: slot %u >= %d", i, g->slot, IPC_MAX_REGS);
		if ((g->flags & IPC_REG_READ_ACK) && g->size != 1)
			return bad(err, errlen, "HELLO: reg %u: a read-acknowledge register has size 1", i);
		if ((g->flags & IPC_REG_RX_RING) &&
		    (g->size != 1 || (g->flags & (IPC_REG_ACK_LOWERS | IPC_REG_CHANGES_ONLY |
						  IPC_REG_DOORBELL | IPC_REG_DOORBELL_WAIT)) ||
		     (g->flags & (IPC_REG_SHADOW | IPC_REG_READ_ACK)) == (IPC_REG_SHADOW | IPC_REG_READ_ACK)))
			return bad(err, errlen, "HELLO: reg %u: a receive-ring register has size 1 and is the receive register, a shadow or a read-acknowledge", i);
		for (unsigned j = 0; j < i; j++) {
			const struct ipc_reg *o = &h->regs[j];
			if (pops_rx_ring(o) && pops_rx_ring(g))
				return bad(err, errlen, "HELLO: regs %u and %u both pop the receive ring", j, i);
			if (o->space == g->space && o->addr == g->addr)
				return bad(err, errlen, "HELLO: regs %u and %u have the same address", j, i);
			if (uses_slot(o) && uses_slot(g) && o->slot == g->slot)
				return bad(err, errlen, "HELLO: regs %u and %u share shadow slot %u", j, i, g->slot);
		}
	}
	return IPC_OK;
}

static int decode_welcome(const uint8_t *b, struct ipc_welcome *w, char *err, size_t errlen)
{
	w->flags = le32(b);
	if (w->flags & ~IPC_WELCOME_RESUMED)
		return bad(err, errlen, "WELCOME: unknown flags 0x%x", w->flags);
	if (le32(b + 4))
		return bad(err, errlen, "WELCOME: reserved field not zero");
	w->ram_size = le64(b + 8);
	w->state_size = le64(b + 16);
	if (!get_str(w->ram_name, b + 24, IPC_MAX_SHM_NAME) ||
	    !get_str(w->state_name, b + 24 + IPC_MAX_SHM_NAME, IPC_MAX_SHM_NAME))
		return bad(err, errlen, "WELCOME: shared-memory name not NUL-terminated");
	w->nranges = b[WELCOME_NAMES_END];
	w->nirqs = b[WELCOME_NAMES_END + 1];
	if (!all_zero(b + WELCOME_NAMES_END + 2, 2))
		return bad(err, errlen, "WELCOME: reserved bytes not zero");
	w->irqs_applied = le32(b + WELCOME_NAMES_END + 4);
	if (w->nranges > IPC_MAX_RANGES || w->nirqs > IPC_MAX_IRQS)
		return bad(err, errlen, "WELCOME: %u ranges, %u irqs exceed the limits %d, %d", w->nranges,
			   w->nirqs, IPC_MAX_RANGES, IPC_MAX_IRQS);
	for (unsigned i = 0; i < IPC_MAX_RANGES; i++) {
		w->range_base[i] = le64(b + WELCOME_BASES + 8 * i);
		if (i >= w->nranges && w->range_base[i])
			return bad(err, errlen, "WELCOME: base of range %u, beyond the %u ranges", i, w->nranges);
	}
	for (unsigned i = 0; i < IPC_MAX_IRQS; i++) {
		w->irq_gsi[i] = le32(b + WELCOME_GSIS + 4 * i);
		if (i >= w->nirqs && w->irq_gsi[i])
			return bad(err, errlen, "WELCOME: gsi of line %u, beyond the %u lines", i, w->nirqs);
		if (w->irq_gsi[i] == IPC_IRQ_ANY)
			return bad(err, errlen, "WELCOME: line %u left unassigned", i);
	}
	w->nregions = b[WELCOME_REGIONS_COUNT];
	if (!all_zero(b + WELCOME_REGIONS_COUNT + 1, 7))
		return bad(err, errlen, "WELCOME: reserved bytes not zero");
	if (w->nregions < 1 || w->nregions > GUEST_MEM_MAX_REGIONS)
		return bad(err, errlen, "WELCOME: %u RAM regions, want 1 to %d", w->nregions,
			   GUEST_MEM_MAX_REGIONS);
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++) {
		w->ram_regions[i].gpa = le64(b + WELCOME_REGIONS + 16 * i);
		w->ram_regions[i].size = le64(b + WELCOME_REGIONS + 16 * i + 8);
		if (i >= w->nregions && (w->ram_regions[i].gpa || w->ram_regions[i].size))
			return bad(err, errlen, "WELCOME: RAM region %u, beyond the %u regions", i,
				   w->nregions);
	}
	struct guest_mem probe = {.size = w->ram_size};
	if (!guest_mem_set_regions(&probe, w->ram_regions, w->nregions))
		return bad(err, errlen, "WELCOME: RAM regions that are not %llu bytes in ascending, "
			   "page-aligned, separate pieces", (unsigned long long)w->ram_size);
	return IPC_OK;
}

/* A line note's action and count (zero without an action). */
static int decode_line_note(uint8_t action, uint32_t irqs_applied, struct ipc_line_note *n,
			    char *err, size_t errlen)
{
	if (action > IPC_LINE_LOWERED || (action == IPC_LINE_UNTOUCHED && irqs_applied))
		return bad(err, errlen, "IO: line action %u with count %u", action, irqs_applied);
	*n = (struct ipc_line_note){.action = action, .irqs_applied = irqs_applied};
	return IPC_OK;
}

/* IO_READ, IO_WRITE and IO_READ_DONE: space, size, addr; the last two
 * carry a line note where IO_READ has zeros. */
static int decode_io_access(const uint8_t *b, bool noted, struct ipc_io *io, char *err, size_t errlen)
{
	io->space = b[0];
	io->size = b[1];
	io->addr = le64(b + 8);
	if (!noted && !all_zero(b + 2, 6))
		return bad(err, errlen, "IO: reserved bytes not zero");
	if (noted && (b[3] || decode_line_note(b[2], le32(b + 4), &io->line, err, errlen)))
		return bad(err, errlen, "IO: reserved bytes not zero or a bad line note");
	if (!valid_access_size(io->size) || !valid_span(io->space, io->addr, io->size))
		return bad(err, errlen, "IO: space %u addr 0x%llx size %u is not a valid access", io->space,
			   (unsigned long long)io->addr, io->size);
	return IPC_OK;
}

/* The body of an IO_WRITE or IO_READ_DONE (IO_WRITE_WIRE bytes): the
 * access, its line note and its data, which must fit in its size. */
static int decode_io_written(const uint8_t *b, const char *what, struct ipc_io *io, char *err,
			     size_t errlen)
{
	int rc = decode_io_access(b, true, io, err, errlen);
	io->data = le64(b + 16);
	if (rc == IPC_OK && io->size < 8 && io->data >> (8 * io->size))
		rc = bad(err, errlen, "%s: data 0x%llx does not fit in %u bytes", what,
			 (unsigned long long)io->data, io->size);
	return rc;
}

static int decode_io_run(const uint8_t *b, size_t blen, uint64_t seq, struct ipc_io_run *r,
			 char *err, size_t errlen)
{
	if (blen < IO_RUN_FIXED)
		return bad(err, errlen, "IO_WRITE_RUN: body of %zu bytes is too short", blen);
	r->space = b[0];
	r->count = le16(b + 2);
	r->addr = le64(b + 8);
	r->then_read_done = b[4] & IPC_RUN_THEN_READ_DONE;
	if (b[1] != 1 || (b[4] & ~IPC_RUN_THEN_READ_DONE) || !all_zero(b + 5, 3) || !all_zero(b + 21, 3))
		return bad(err, errlen, "IO_WRITE_RUN: size %u (not 1), flags 0x%x or reserved bytes not zero",
			   b[1], b[4]);
	if (decode_line_note(b[20], le32(b + 16), &r->line, err, errlen))
		return IPC_EBADMSG;
	size_t want = IO_RUN_FIXED + (size_t)r->count + (r->then_read_done ? IO_RUN_READ_DONE_WIRE : 0);
	if (r->count < 1 || r->count > IPC_IO_RUN_MAX || blen != want)
		return bad(err, errlen, "IO_WRITE_RUN: %u bytes%s in a body of %zu", r->count,
			   r->then_read_done ? " and a read done" : "", blen);
	if (!valid_span(r->space, r->addr, 1))
		return bad(err, errlen, "IO_WRITE_RUN: space %u addr 0x%llx is not a valid access",
			   r->space, (unsigned long long)r->addr);
	memcpy(r->data, b + IO_RUN_FIXED, r->count);
	if (!r->then_read_done)
		return IPC_OK;
	const uint8_t *t = b + IO_RUN_FIXED + r->count;
	r->read_done_seq = le64(t);
	/* Applied after the writes, so it comes after them in seq order too:
	 * the device's applied_seq never goes back. */
	if (r->read_done_seq <= seq)
		return bad(err, errlen, "IO_WRITE_RUN: read done's seq %llu not above the run's %llu",
			   (unsigned long long)r->read_done_seq, (unsigned long long)seq);
	return decode_io_written(t + 8, "IO_WRITE_RUN's read done", &r->read_done, err, errlen);
}

/* The exact body length of each fixed-size type; -1 for HELLO and
 * IO_WRITE_RUN, whose counts say. */
static long body_size(unsigned type)
{
	switch (type) {
	case IPC_HELLO:
	case IPC_IO_WRITE_RUN:
		return -1;
	case IPC_WELCOME:
		return WELCOME_WIRE;
	case IPC_REJECT:
		return IPC_MAX_REASON;
	case IPC_IO_READ:
		return IO_READ_WIRE;
	case IPC_IO_REPLY:
		return IO_REPLY_WIRE;
	case IPC_IO_WRITE:
	case IPC_IO_READ_DONE:
		return IO_WRITE_WIRE;
	case IPC_IRQ:
		return IRQ_MSG_WIRE;
	default: /* RESET, SHUTDOWN, QUIT, PING, PONG */
		return 0;
	}
}

int ipc_decode(const uint8_t *buf, size_t len, struct ipc_msg *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	if (len < IPC_HDR_SIZE)
		return bad(err, errlen, "message of %zu bytes is shorter than the header", len);
	if (len > IPC_MAX_MSG)
		return bad(err, errlen, "message of %zu bytes exceeds %d", len, IPC_MAX_MSG);
	if (le16(buf) != IPC_MAGIC)
		return bad(err, errlen, "bad magic 0x%04x", le16(buf));
	if (buf[2] != IPC_PROTO_VERSION)
		return bad(err, errlen, "protocol version %u, expected %d", buf[2], IPC_PROTO_VERSION);
	unsigned type = buf[3];
	if (type < IPC_HELLO || type >= IPC_MSG_TYPE_MAX)
		return bad(err, errlen, "unknown message type %u", type);
	if (le32(buf + 4) != len)
		return bad(err, errlen, "%s: length field %u but %zu bytes received", ipc_type_name(type),
			   le32(buf + 4), len);
	m->type = (uint8_t)type;
	m->seq = le64(buf + 8);

	const uint8_t *b = buf + IPC_HDR_SIZE;
	size_t blen = len - IPC_HDR_SIZE;
	long want = body_size(type);
	if (want >= 0 && blen != (size_t)want)
		return bad(err, errlen, "%s: body of %zu bytes, expected %ld", ipc_type_name(type), blen, want);

	int rc = IPC_OK;
	switch (type) {
	case IPC_HELLO:
		rc = decode_hello(b, blen, &m->u.hello, err, errlen);
		break;
	case IPC_WELCOME:
		rc = decode_welcome(b, &m->u.welcome, err, errlen);
		break;
	case IPC_REJECT:
		if (!get_str(m->u.reason, b, IPC_MAX_REASON))
			rc = bad(err, errlen, "REJECT: reason not NUL-terminated");
		break;
	case IPC_IO_READ:
		rc = decode_io_access(b, false, &m->u.io, err, errlen);
		break;
	case IPC_IO_WRITE:
	case IPC_IO_READ_DONE:
		rc = decode_io_written(b, ipc_type_name(type), &m->u.io, err, errlen);
		break;
	case IPC_IO_WRITE_RUN:
		rc = decode_io_run(b, blen, m->seq, &m->u.run, err, errlen);
		break;
	case IPC_IO_REPLY:
		m->u.io.data = le64(b);
		break;
	case IPC_IRQ:
		m->u.irq.line = le32(b);
		m->u.irq.level = le32(b + 4);
		if (m->u.irq.level > 1)
			rc = bad(err, errlen, "IRQ: level %u is neither 0 nor 1", m->u.irq.level);
		break;
	default:
		break;
	}
	if (rc != IPC_OK)
		memset(m, 0, sizeof(*m)); /* nothing half-validated leaks out */
	return rc;
}

int ipc_decode_next(const uint8_t *frame, size_t len, size_t *off, struct ipc_msg *m, char *err,
		    size_t errlen)
{
	size_t at = *off;
	*off = len;
	memset(m, 0, sizeof(*m));
	if (at >= len || len - at < IPC_HDR_SIZE)
		return bad(err, errlen, "%zu bytes left in a frame, shorter than a header", len - at);
	/* Read once: the message is decoded from exactly the bytes it names. */
	uint32_t mlen = le32(frame + at + 4);
	if (mlen < IPC_HDR_SIZE || mlen > len - at)
		return bad(err, errlen, "a message's length field %u, %zu bytes left in its frame", mlen,
			   len - at);
	int rc = ipc_decode(frame + at, mlen, m, err, errlen);
	if (rc != IPC_OK)
		return rc;
	if ((at || mlen != len) && !ipc_is_posted(m->type)) {
		unsigned type = m->type;
		memset(m, 0, sizeof(*m));
		return bad(err, errlen, "%s in a frame of several messages (only posted ones batch)",
			   ipc_type_name(type));
	}
	*off = at + mlen;
	return IPC_OK;
}

/* ---- encoding ---- */

static void encode_hello(const struct ipc_hello *h, uint8_t *b)
{
	put_le32(b, h->version);
	put_str(b + 4, h->name, IPC_MAX_NAME);
	b[20] = (uint8_t)h->nranges;
	b[21] = (uint8_t)h->nirqs;
	b[22] = (uint8_t)h->nregs;
	b[23] = 0;
	uint8_t *p = b + HELLO_FIXED;
	for (unsigned i = 0; i < h->nranges; i++, p += RANGE_WIRE) {
		memset(p, 0, RANGE_WIRE);
		p[0] = h->ranges[i].space;
		p[1] = h->ranges[i].kind;
		p[2] = h->ranges[i].has_irq ? h->ranges[i].irq : RANGE_NO_IRQ;
		put_le64(p + 8, h->ranges[i].base);
		put_le64(p + 16, h->ranges[i].size);
	}
	for (unsigned i = 0; i < h->nirqs; i++, p += IRQ_WIRE) {
		memset(p, 0, IRQ_WIRE);
		put_le32(p, h->irqs[i].gsi);
		p[4] = h->irqs[i].trigger;
		p[5] = h->irqs[i].flags;
	}
	for (unsigned i = 0; i < h->nregs; i++, p += REG_WIRE) {
		memset(p, 0, REG_WIRE);
		p[0] = h->regs[i].space;
		p[1] = h->regs[i].size;
		p[2] = h->regs[i].flags;
		p[3] = h->regs[i].slot;
		put_le32(p + 4, h->regs[i].changes);
		put_le64(p + 8, h->regs[i].addr);
	}
}

static void encode_welcome(const struct ipc_welcome *w, uint8_t *b)
{
	memset(b, 0, WELCOME_WIRE);
	put_le32(b, w->flags);
	put_le64(b + 8, w->ram_size);
	put_le64(b + 16, w->state_size);
	put_str(b + 24, w->ram_name, IPC_MAX_SHM_NAME);
	put_str(b + 24 + IPC_MAX_SHM_NAME, w->state_name, IPC_MAX_SHM_NAME);
	b[WELCOME_NAMES_END] = (uint8_t)w->nranges;
	b[WELCOME_NAMES_END + 1] = (uint8_t)w->nirqs;
	put_le32(b + WELCOME_NAMES_END + 4, w->irqs_applied);
	for (unsigned i = 0; i < IPC_MAX_RANGES; i++)
		put_le64(b + WELCOME_BASES + 8 * i, w->range_base[i]);
	for (unsigned i = 0; i < IPC_MAX_IRQS; i++)
		put_le32(b + WELCOME_GSIS + 4 * i, w->irq_gsi[i]);
	b[WELCOME_REGIONS_COUNT] = (uint8_t)w->nregions;
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS && i < w->nregions; i++) {
		put_le64(b + WELCOME_REGIONS + 16 * i, w->ram_regions[i].gpa);
		put_le64(b + WELCOME_REGIONS + 16 * i + 8, w->ram_regions[i].size);
	}
}

static void encode_io_access(const struct ipc_io *io, uint8_t *b)
{
	memset(b, 0, IO_READ_WIRE);
	b[0] = io->space;
	b[1] = io->size;
	put_le64(b + 8, io->addr);
}

static void encode_line_note(const struct ipc_line_note *n, uint8_t *action, uint8_t *count)
{
	*action = n->action;
	put_le32(count, n->irqs_applied);
}

static void encode_io_written(const struct ipc_io *io, uint8_t *b)
{
	encode_io_access(io, b);
	encode_line_note(&io->line, b + 2, b + 4);
	put_le64(b + 16, io->data);
}

int ipc_encode(const struct ipc_msg *m, uint8_t *buf, size_t cap)
{
	unsigned type = m->type;
	if (type < IPC_HELLO || type >= IPC_MSG_TYPE_MAX)
		return IPC_EBADMSG;
	size_t blen;
	if (type == IPC_HELLO) {
		const struct ipc_hello *h = &m->u.hello;
		/* Checked before writing: the counts index the struct's arrays. */
		if (h->nranges > IPC_MAX_RANGES || h->nirqs > IPC_MAX_IRQS || h->nregs > IPC_MAX_REGS)
			return IPC_EBADMSG;
		for (unsigned i = 0; i < h->nranges; i++)
			if (h->ranges[i].has_irq && h->ranges[i].irq >= h->nirqs)
				return IPC_EBADMSG; /* would read as "no line" */
		blen = HELLO_FIXED + h->nranges * RANGE_WIRE + h->nirqs * IRQ_WIRE + h->nregs * REG_WIRE;
	} else if (type == IPC_IO_WRITE_RUN) {
		if (m->u.run.count < 1 || m->u.run.count > IPC_IO_RUN_MAX)
			return IPC_EBADMSG;
		blen = IO_RUN_FIXED + m->u.run.count + (m->u.run.then_read_done ? IO_RUN_READ_DONE_WIRE : 0);
	} else {
		blen = (size_t)body_size(type);
	}
	size_t len = IPC_HDR_SIZE + blen;
	if (cap < len)
		return IPC_ENOSPC;

	put_le16(buf, IPC_MAGIC);
	buf[2] = IPC_PROTO_VERSION;
	buf[3] = (uint8_t)type;
	put_le32(buf + 4, (uint32_t)len);
	put_le64(buf + 8, m->seq);
	uint8_t *b = buf + IPC_HDR_SIZE;
	switch (type) {
	case IPC_HELLO:
		encode_hello(&m->u.hello, b);
		break;
	case IPC_WELCOME:
		encode_welcome(&m->u.welcome, b);
		break;
	case IPC_REJECT:
		put_str(b, m->u.reason, IPC_MAX_REASON);
		break;
	case IPC_IO_READ:
		encode_io_access(&m->u.io, b);
		break;
	case IPC_IO_WRITE:
	case IPC_IO_READ_DONE:
		encode_io_written(&m->u.io, b);
		break;
	case IPC_IO_WRITE_RUN:
		memset(b, 0, IO_RUN_FIXED);
		b[0] = m->u.run.space;
		b[1] = 1;
		put_le16(b + 2, m->u.run.count);
		b[4] = m->u.run.then_read_done ? IPC_RUN_THEN_READ_DONE : 0;
		put_le64(b + 8, m->u.run.addr);
		encode_line_note(&m->u.run.line, b + 20, b + 16);
		memcpy(b + IO_RUN_FIXED, m->u.run.data, m->u.run.count);
		if (m->u.run.then_read_done) {
			put_le64(b + IO_RUN_FIXED + m->u.run.count, m->u.run.read_done_seq);
			encode_io_written(&m->u.run.read_done, b + IO_RUN_FIXED + m->u.run.count + 8);
		}
		break;
	case IPC_IO_REPLY:
		put_le64(b, m->u.io.data);
		break;
	case IPC_IRQ:
		put_le32(b, m->u.irq.line);
		put_le32(b + 4, m->u.irq.level);
		break;
	default:
		break;
	}

	/* One set of rules: what the peer would refuse is not sent. */
	struct ipc_msg check;
	if (ipc_decode(buf, len, &check, NULL, 0) != IPC_OK)
		return IPC_EBADMSG;
	return (int)len;
}

const char *ipc_type_name(unsigned type)
{
	static const char *const names[IPC_MSG_TYPE_MAX] = {
		[IPC_HELLO] = "HELLO",       [IPC_WELCOME] = "WELCOME",   [IPC_REJECT] = "REJECT",
		[IPC_IO_READ] = "IO_READ",   [IPC_IO_REPLY] = "IO_REPLY", [IPC_IO_WRITE] = "IO_WRITE",
		[IPC_IRQ] = "IRQ",           [IPC_RESET] = "RESET",       [IPC_SHUTDOWN] = "SHUTDOWN",
		[IPC_QUIT] = "QUIT",         [IPC_PING] = "PING",         [IPC_PONG] = "PONG",
		[IPC_IO_READ_DONE] = "IO_READ_DONE", [IPC_IO_WRITE_RUN] = "IO_WRITE_RUN",
	};
	if (type >= IPC_MSG_TYPE_MAX || !names[type])
		return "UNKNOWN";
	return names[type];
}

int ipc_batch_add(struct ipc_batch *b, const struct ipc_msg *m)
{
	if (!ipc_is_posted(m->type) || b->len > sizeof(b->buf))
		return IPC_EBADMSG;
	int len = ipc_encode(m, b->buf + b->len, sizeof(b->buf) - b->len);
	if (len < 0)
		return len;
	b->len += (size_t)len;
	b->count++;
	return IPC_OK;
}
