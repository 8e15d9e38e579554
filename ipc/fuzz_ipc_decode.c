/* fuzz_ipc_decode.c - libFuzzer target for the codec (MINIVM_FUZZ, clang).
 * Arbitrary bytes must never crash the decoder, and whatever it accepts
 * must encode again into a message it accepts, byte for byte stable; a
 * batch of what it accepted decodes again. */
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The input as a frame: each message it holds re-encodes stably, and
	 * the posted ones, batched again, decode to the same bytes. */
	struct ipc_batch batch = {0};
	size_t off = 0;
	while (off < size) {
		struct ipc_msg m, again;
		char err[128];
		if (ipc_decode_next(data, size, &off, &m, err, sizeof(err)) != IPC_OK)
			break;
		uint8_t buf[IPC_MAX_MSG], buf2[IPC_MAX_MSG];
		int len = ipc_encode(&m, buf, sizeof(buf));
		if (len < 0 || ipc_decode(buf, (size_t)len, &again, err, sizeof(err)) != IPC_OK)
			abort();
		int len2 = ipc_encode(&again, buf2, sizeof(buf2));
		if (len2 != len || memcmp(buf, buf2, (size_t)len) != 0)
			abort();
		if (ipc_is_posted(m.type) && ipc_batch_add(&batch, &m) == IPC_OK) {
			size_t at = batch.len - (size_t)len;
			if (memcmp(batch.buf + at, buf, (size_t)len) != 0)
				abort();
		}
	}
	for (size_t at = 0; at < batch.len;) {
		struct ipc_msg m;
		if (ipc_decode_next(batch.buf, batch.len, &at, &m, NULL, 0) != IPC_OK)
			abort();
	}
	return 0;
}
