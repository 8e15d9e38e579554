/* fuzz_serial.c - libFuzzer target for dev-serial: each input is what a
 * hostile core could send.  Its first byte picks the board (odd: arm64's
 * PL011 and MMIO debug port; even: x86's 16550s and debug port), the rest
 * is decoded as a frame (ipc_decode_next) and each message goes through
 * dev_handle with
 * dev-serial's ops, as in the process; an input that does not decode is
 * typed on the host keyboard instead, so that the receive path fills up
 * too.  Each board's device state lives on across inputs, so sequences of
 * messages reach deep states.  Checked after every input: the state is
 * still valid, and everything the device sends still encodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_sink.h"
#include "ipc.h"
#include "log.h"
#include "serial_device.h"

static void discard_output(void *opaque, uint8_t byte)
{
}

static struct serial_device *device(bool arm64)
{
	static const struct serial_config boards[2] = {
		{.stdio = true, .debugcon = true, .debugcon_port = 0xe9, .mmio_uart = true,
		 .mmio_base = 0xd0000000},
		{.stdio = true, .pl011 = true, .debugcon_mmio = true, .debugcon_mmio_addr = 0x996},
	};
	static struct serial_device devices[2];
	static _Alignas(8) uint8_t pages[2][IPC_STATE_SIZE];
	struct serial_device *d = &devices[arm64];
	if (!d->page) {
		log_init("fuzz_serial");
		d->cfg = boards[arm64];
		d->sink = (struct serial_sink){.send = fuzz_check_originated, .output = discard_output};
		serial_attach(d, pages[arm64], false);
	}
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct serial_device *d = device(data[0] & 1);
	data++;
	size--;
	struct ipc_msg m;
	struct dev_port port = {.ops = &serial_dev_ops, .dev = d, .page = d->page,
				.send = fuzz_check_sendable};
	/* A frame of messages (ipc_decode_next), or else terminal input. */
	size_t off = 0;
	bool decoded = false;
	while (off < size && ipc_decode_next(data, size, &off, &m, NULL, 0) == IPC_OK) {
		decoded = true;
		dev_handle(&port, &m);
	}
	if (!decoded)
		serial_input(d, data, size);
	if (!serial_state_valid(d->state))
		abort();
	return 0;
}
