/* fuzz_ipc_decode.c - libFuzzer target for the codec (MINIVM_FUZZ, clang).
 * Arbitrary bytes must never crash the decoder, and whatever it accepts
 * must encode again into a message it accepts, byte for byte stable. */
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_msg m, again;
	char err[128];
	if (ipc_decode(data, size, &m, err, sizeof(err)) != IPC_OK)
		return 0;
	uint8_t buf[IPC_MAX_MSG], buf2[IPC_MAX_MSG];
	int len = ipc_encode(&m, buf, sizeof(buf));
	if (len < 0 || ipc_decode(buf, (size_t)len, &again, err, sizeof(err)) != IPC_OK)
		abort();
	int len2 = ipc_encode(&again, buf2, sizeof(buf2));
	if (len2 != len || memcmp(buf, buf2, (size_t)len) != 0)
		abort();
	return 0;
}
