/* devproxy_policy.c - what a device may declare and how accesses are served
 * (devproxy_policy.h). */
#include "devproxy_policy.h"

#include <stdio.h>

static bool range_holds(const struct ipc_range *r, uint8_t space, uint64_t addr, uint64_t size)
{
	return r->space == space && addr >= r->base && addr - r->base < r->size &&
	       size <= r->size - (addr - r->base);
}

static int check_reg(const struct ipc_hello *h, unsigned i, char *why, size_t n)
{
	const struct ipc_reg *reg = &h->regs[i];
	if (reg->space != IPC_SPACE_PIO && reg->space != IPC_SPACE_MMIO) {
		snprintf(why, n, "register %u: unknown space %u", i, reg->space);
		return -1;
	}
	if (reg->size != 1 && reg->size != 2 && reg->size != 4 && reg->size != 8) {
		snprintf(why, n, "register %u: size %u is not 1, 2, 4 or 8", i, reg->size);
		return -1;
	}
	if (reg->flags & ~(IPC_REG_SHADOW | IPC_REG_STREAM)) {
		snprintf(why, n, "register %u: unknown flags %#x", i, reg->flags);
		return -1;
	}
	if ((reg->flags & IPC_REG_SHADOW) && reg->slot >= IPC_MAX_REGS) {
		snprintf(why, n, "register %u: shadow slot %u out of range", i, reg->slot);
		return -1;
	}
	bool inside = false;
	for (uint32_t r = 0; r < h->nranges && !inside; r++)
		inside = range_holds(&h->ranges[r], reg->space, reg->addr, reg->size);
	if (!inside) {
		snprintf(why, n, "register %u at %#llx is outside the device's ranges", i,
			 (unsigned long long)reg->addr);
		return -1;
	}
	for (unsigned j = 0; j < i; j++) {
		if (h->regs[j].space == reg->space && h->regs[j].addr == reg->addr) {
			snprintf(why, n, "register %u at %#llx is declared twice", i,
				 (unsigned long long)reg->addr);
			return -1;
		}
	}
	return 0;
}

int policy_check_hello(const struct ipc_hello *h, char *why, size_t n)
{
	if (h->version != IPC_PROTO_VERSION) {
		snprintf(why, n, "protocol version %u, the core speaks %u", h->version,
			 IPC_PROTO_VERSION);
		return -1;
	}
	if (h->nranges > IPC_MAX_RANGES || h->nirqs > IPC_MAX_IRQS || h->nregs > IPC_MAX_REGS) {
		snprintf(why, n, "too many ranges, irqs or registers");
		return -1;
	}
	for (uint32_t i = 0; i < h->nirqs; i++) {
		if (h->irqs[i] >= BOARD_IRQ_LINES) {
			snprintf(why, n, "irq %u is not a board line (0..%d)", h->irqs[i],
				 BOARD_IRQ_LINES - 1);
			return -1;
		}
	}
	for (uint32_t i = 0; i < h->nregs; i++)
		if (check_reg(h, i, why, n))
			return -1;
	return 0;
}

bool policy_same_device(const struct ipc_hello *a, const struct ipc_hello *b)
{
	if (a->nranges != b->nranges || a->nirqs != b->nirqs || a->nregs != b->nregs)
		return false;
	for (uint32_t i = 0; i < a->nranges && i < IPC_MAX_RANGES; i++) {
		const struct ipc_range *x = &a->ranges[i], *y = &b->ranges[i];
		if (x->space != y->space || x->base != y->base || x->size != y->size)
			return false;
	}
	for (uint32_t i = 0; i < a->nirqs && i < IPC_MAX_IRQS; i++)
		if (a->irqs[i] != b->irqs[i])
			return false;
	for (uint32_t i = 0; i < a->nregs && i < IPC_MAX_REGS; i++) {
		const struct ipc_reg *x = &a->regs[i], *y = &b->regs[i];
		if (x->space != y->space || x->size != y->size || x->flags != y->flags ||
		    x->slot != y->slot || x->addr != y->addr)
			return false;
	}
	return true;
}

const struct ipc_reg *policy_find_reg(const struct ipc_hello *h, enum ipc_space space,
				      uint64_t addr, unsigned size)
{
	for (uint32_t i = 0; i < h->nregs && i < IPC_MAX_REGS; i++) {
		const struct ipc_reg *reg = &h->regs[i];
		if (reg->space == space && reg->addr == addr && size <= reg->size)
			return reg;
	}
	return NULL;
}

bool policy_shadow_read(const struct ipc_reg *reg, const struct ipc_state_page *state,
			uint64_t ordered_mark, unsigned size, uint64_t *value)
{
	if (!reg || !(reg->flags & IPC_REG_SHADOW) || reg->slot >= IPC_MAX_REGS || !state)
		return false;
	if (__atomic_load_n(&state->magic, __ATOMIC_ACQUIRE) != IPC_STATE_MAGIC)
		return false;
	/* Acquire: the shadow values the device stored before publishing
	 * applied_seq are the ones we read next. */
	if (atomic_load_explicit(&state->applied_seq, memory_order_acquire) < ordered_mark)
		return false;
	uint64_t v = atomic_load_explicit(&state->shadow[reg->slot], memory_order_relaxed);
	*value = size >= 8 ? v : v & ((1ull << (8 * size)) - 1);
	return true;
}

bool policy_write_is_ordered(const struct ipc_reg *reg)
{
	return !(reg && (reg->flags & IPC_REG_STREAM));
}
