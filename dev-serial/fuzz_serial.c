/* fuzz_serial.c - libFuzzer target for dev-serial: each input is what a
 * hostile core could send.  It goes through ipc_decode and, when it decodes,
 * through dev_handle with dev-serial's ops, as in the process; an input
 * that does not decode is typed on the host keyboard instead, so that the
 * receive path fills up too.  The device state lives on across inputs, so
 * sequences of messages reach deep states.  Checked after every input: the
 * state is still valid, and everything the device sends still encodes. */
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

static struct serial_device *device(void)
{
	static struct serial_device d;
	static _Alignas(8) uint8_t page[IPC_STATE_SIZE];
	if (!d.page) {
		log_init("fuzz_serial");
		d.cfg = (struct serial_config){.stdio = true, .debugcon = true, .debugcon_port = 0xe9,
					       .mmio_uart = true, .mmio_base = 0xd0000000};
		d.sink = (struct serial_sink){.send = fuzz_check_originated, .output = discard_output};
		serial_attach(&d, page, false);
	}
	return &d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct serial_device *d = device();
	struct ipc_msg m;
	struct dev_port port = {.ops = &serial_dev_ops, .dev = d, .page = d->page,
				.send = fuzz_check_sendable};
	if (ipc_decode(data, size, &m, NULL, 0) == IPC_OK)
		dev_handle(&port, &m);
	else
		serial_input(d, data, size);
	if (!serial_state_valid(d->state))
		abort();
	return 0;
}
