/* devproxy_policy.h - the decisions a device proxy makes about what a device
 * declares and how each access is served, as pure functions (no sockets, no
 * threads) so that unit tests can drive them with hostile input. */
#ifndef MINIVM_DEVPROXY_POLICY_H
#define MINIVM_DEVPROXY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

#define BOARD_IRQ_LINES 24 /* GSIs 0..23: the IOAPIC pins of the board */

/* A HELLO's declarations make sense on their own: protocol version, interrupt
 * lines in 0..23, registers of a valid size and flags lying wholly inside one
 * of the device's own ranges of the same space, no register declared twice,
 * shadow slots in range.  Range placement (RAM, other devices, each other) is
 * the bus's business (bus_attach).  Returns 0, or -1 with a reason in why. */
int policy_check_hello(const struct ipc_hello *h, char *why, size_t n);

/* A restarted device must declare exactly what its first incarnation did:
 * the bus and the state page were built from the first HELLO. */
bool policy_same_device(const struct ipc_hello *a, const struct ipc_hello *b);

/* The declared register an access of size bytes at addr hits, or NULL.  A
 * register serves accesses at its address no wider than itself. */
const struct ipc_reg *policy_find_reg(const struct ipc_hello *h, enum ipc_space space,
				      uint64_t addr, unsigned size);

/* Can a read of reg be answered from the state page?  Only for a shadowed
 * register, once the device has published valid shadows (magic) and applied
 * every ordered write sent before (applied_seq >= ordered_mark).  On true,
 * *value is shadow[slot] masked to the access size. */
bool policy_shadow_read(const struct ipc_reg *reg, const struct ipc_state_page *state,
			uint64_t ordered_mark, unsigned size, uint64_t *value);

/* Does a write to reg (NULL: an undeclared register) move the ordered mark?
 * Every write does except those to stream registers, which by declaration
 * never change a shadowed value. */
bool policy_write_is_ordered(const struct ipc_reg *reg);

#endif
