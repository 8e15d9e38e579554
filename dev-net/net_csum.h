/* net_csum.h - the Internet checksum over guest frames. */
#ifndef MINIVM_NET_CSUM_H
#define MINIVM_NET_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* Finish a checksum the guest left partial (virtio-net's
 * VIRTIO_NET_HDR_F_NEEDS_CSUM): the 16-bit field at csum_start + csum_offset
 * holds the pseudo-header sum; sum from csum_start to the end of the frame and
 * store the complement there (0xffff for a zero result, which UDP needs and
 * TCP accepts).  Offsets count from the frame's first byte, as in the
 * virtio-net header.  Returns -1, leaving the frame alone, if the field is
 * not inside the frame (the offsets come from the guest). */
int net_csum_complete(uint8_t *frame, size_t len, size_t csum_start, size_t csum_offset);

#endif
