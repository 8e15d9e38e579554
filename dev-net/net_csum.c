/* net_csum.c - the Internet checksum (RFC 1071) over guest frames. */
#include "net_csum.h"

int net_csum_complete(uint8_t *frame, size_t len, size_t csum_start, size_t csum_offset)
{
	if (csum_start > len || csum_offset > len - csum_start || len - csum_start - csum_offset < 2)
		return -1;
	/* Big-endian 16-bit words; an odd last byte is padded with zero.  A
	 * 64-bit accumulator cannot overflow for any frame size. */
	uint64_t sum = 0;
	size_t i = csum_start;
	for (; i + 1 < len; i += 2)
		sum += (uint32_t)frame[i] << 8 | frame[i + 1];
	if (i < len)
		sum += (uint32_t)frame[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	uint16_t csum = (uint16_t)~sum;
	if (csum == 0)
		csum = 0xffff;
	uint8_t *field = frame + csum_start + csum_offset;
	field[0] = (uint8_t)(csum >> 8);
	field[1] = (uint8_t)csum;
	return 0;
}
