/* fuzz_sink.h - what the device fuzz targets put where a device's messages
 * would go to the core: every message a device sends, as a reply or on its
 * own, must still encode; anything else aborts the fuzzer with the input. */
#ifndef MINIVM_FUZZ_SINK_H
#define MINIVM_FUZZ_SINK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "ipc.h"

/* A dev_port's .send (replies). */
static inline void fuzz_check_sendable(void *opaque, const struct ipc_msg *m)
{
	uint8_t buf[IPC_MAX_MSG];
	if (ipc_encode(m, buf, sizeof(buf)) < 0)
		abort();
}

/* A device sink's .send (messages the device originates: IRQs, output). */
static inline bool fuzz_check_originated(void *opaque, struct ipc_msg *m)
{
	fuzz_check_sendable(opaque, m);
	return true;
}

#endif
