/* test_serial_device.c - dev-serial's message handling and state page
 * (dev-serial/serial_device.h): the HELLO, reads and writes by address,
 * shadows and applied_seq, withdrawing shadows in loopback, resuming or
 * resetting a state page, hostile accesses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipc.h"
#include "serial_device.h"

#define COM1 SERIAL_COM1_BASE
#define DEBUGCON 0xe9
#define MMIO_BASE 0xd0000000ull

struct harness {
	struct serial_device d;
	struct ipc_msg sent[64];
	size_t nsent;
	uint8_t out[256];
	size_t nout;
	_Alignas(8) uint8_t page[IPC_STATE_SIZE];
};

static void record_send(void *opaque, const struct ipc_msg *m)
{
	struct harness *h = opaque;
	assert_true(h->nsent < 64);
	h->sent[h->nsent++] = *m;
}

static void record_output(void *opaque, uint8_t byte)
{
	struct harness *h = opaque;
	h->out[h->nout++] = byte;
}

static struct ipc_state_page *page_of(struct harness *h)
{
	return (struct ipc_state_page *)h->page;
}

static struct serial_state *state_of(struct harness *h)
{
	return (struct serial_state *)(h->page + IPC_STATE_DEV_OFFSET);
}

static void configure(struct harness *h)
{
	h->d = (struct serial_device){
		.cfg = {.stdio = true, .debugcon = true, .debugcon_port = DEBUGCON,
			.mmio_uart = true, .mmio_base = MMIO_BASE},
		.sink = {.opaque = h, .send = record_send, .output = record_output},
	};
}

static int setup(void **state)
{
	struct harness *h = test_calloc(1, sizeof(*h));
	configure(h);
	serial_attach(&h->d, h->page, false);
	h->nsent = 0;
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	test_free(*state);
	return 0;
}

static uint64_t seq = 100;

static uint64_t read_reg(struct harness *h, uint8_t space, uint64_t addr, uint8_t size)
{
	struct ipc_msg m = {.type = IPC_IO_READ, .seq = ++seq};
	m.u.io = (struct ipc_io){.space = space, .size = size, .addr = addr};
	size_t before = h->nsent;
	assert_int_equal(serial_handle(&h->d, &m), SERIAL_CONTINUE);
	/* Exactly one reply with the request's seq (IRQ messages may precede it). */
	assert_true(h->nsent > before);
	const struct ipc_msg *r = &h->sent[h->nsent - 1];
	assert_int_equal(r->type, IPC_IO_REPLY);
	assert_int_equal(r->seq, seq);
	return r->u.io.data;
}

static void write_reg(struct harness *h, uint8_t space, uint64_t addr, uint8_t value)
{
	struct ipc_msg m = {.type = IPC_IO_WRITE, .seq = ++seq};
	m.u.io = (struct ipc_io){.space = space, .size = 1, .addr = addr, .data = value};
	assert_int_equal(serial_handle(&h->d, &m), SERIAL_CONTINUE);
	assert_int_equal(atomic_load(&page_of(h)->applied_seq), seq);
}

static uint64_t shadow(struct harness *h, unsigned slot)
{
	return atomic_load(&page_of(h)->shadow[slot]);
}

/* The shadow slot the HELLO declares for a register. */
static unsigned slot_for(struct harness *h, uint8_t space, uint64_t addr)
{
	struct ipc_msg m;
	serial_hello(&h->d.cfg, &m);
	for (uint32_t i = 0; i < m.u.hello.nregs; i++) {
		const struct ipc_reg *r = &m.u.hello.regs[i];
		if (r->space == space && r->addr == addr) {
			assert_true(r->flags & IPC_REG_SHADOW);
			return r->slot;
		}
	}
	fail_msg("register %#llx is not declared", (unsigned long long)addr);
	return 0;
}

static bool shadows_valid(struct harness *h)
{
	return __atomic_load_n(&page_of(h)->magic, __ATOMIC_ACQUIRE) == IPC_STATE_MAGIC;
}

static void test_hello_encodes_and_decodes(void **state)
{
	struct harness *h = *state;
	struct ipc_msg m, back;
	serial_hello(&h->d.cfg, &m);
	uint8_t buf[IPC_MAX_MSG];
	int len = ipc_encode(&m, buf, sizeof(buf));
	assert_true(len > 0);
	char err[128] = "";
	assert_int_equal(ipc_decode(buf, (size_t)len, &back, err, sizeof(err)), IPC_OK);
	const struct ipc_hello *hello = &back.u.hello;
	assert_string_equal(hello->name, "serial");
	assert_int_equal(hello->nirqs, 1);
	assert_int_equal(hello->irqs[0], 4);
	assert_int_equal(hello->nranges, 3);
	assert_int_equal(hello->ranges[0].base, COM1);
	assert_int_equal(hello->ranges[0].size, 8);
	/* THR is a stream register; LSR and MSR are shadowed. */
	bool thr_stream = false;
	for (uint32_t i = 0; i < hello->nregs; i++)
		if (hello->regs[i].addr == COM1 && hello->regs[i].space == IPC_SPACE_PIO)
			thr_stream = hello->regs[i].flags == IPC_REG_STREAM;
	assert_true(thr_stream);
	slot_for(h, IPC_SPACE_PIO, COM1 + UART_LSR);
	slot_for(h, IPC_SPACE_PIO, COM1 + UART_MSR);
	slot_for(h, IPC_SPACE_MMIO, MMIO_BASE + UART_LSR);

	/* Without options: only the UART at 0x3f8. */
	struct serial_config plain = {.stdio = true};
	serial_hello(&plain, &m);
	assert_int_equal(m.u.hello.nranges, 1);
	assert_true(ipc_encode(&m, buf, sizeof(buf)) > 0);
}

static void test_fresh_attach_publishes(void **state)
{
	struct harness *h = test_calloc(1, sizeof(*h));
	configure(h);
	memset(h->page, 0xa5, sizeof(h->page)); /* a fresh page is not trusted either */
	assert_true(serial_attach(&h->d, h->page, false));
	assert_true(shadows_valid(h));
	assert_int_equal(page_of(h)->version, IPC_PROTO_VERSION);
	assert_int_equal(shadow(h, slot_for(h, IPC_SPACE_PIO, COM1 + UART_LSR)), 0x60);
	assert_int_equal(shadow(h, slot_for(h, IPC_SPACE_PIO, COM1 + UART_MSR)), 0xb0);
	assert_int_equal(shadow(h, slot_for(h, IPC_SPACE_PIO, DEBUGCON)), 0xe9);
	assert_int_equal(shadow(h, slot_for(h, IPC_SPACE_MMIO, MMIO_BASE + UART_LSR)), 0x60);
	/* The core's line is told the model's level. */
	assert_int_equal(h->nsent, 1);
	assert_int_equal(h->sent[0].type, IPC_IRQ);
	assert_int_equal(h->sent[0].u.irq.line, 4);
	assert_int_equal(h->sent[0].u.irq.level, 0);
	test_free(h);
}

static void test_write_and_read(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1, 'H');
	write_reg(h, IPC_SPACE_PIO, DEBUGCON, 'e');
	write_reg(h, IPC_SPACE_MMIO, MMIO_BASE, 'y');
	assert_int_equal(h->nout, 3);
	assert_memory_equal(h->out, "Hey", 3);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 0x42);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 1), 0x42);
	assert_int_equal(read_reg(h, IPC_SPACE_MMIO, MMIO_BASE + UART_SCR, 1), 0);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, DEBUGCON, 1), 0xe9);
}

static void test_stdio_off_drops_uart_output(void **state)
{
	struct harness *h = *state;
	h->d.cfg.stdio = false;
	write_reg(h, IPC_SPACE_PIO, COM1, 'u');
	write_reg(h, IPC_SPACE_PIO, DEBUGCON, 'd'); /* the debug port always prints */
	assert_int_equal(h->nout, 1);
	assert_int_equal(h->out[0], 'd');
}

static void test_input_and_interrupts(void **state)
{
	struct harness *h = *state;
	unsigned lsr_slot = slot_for(h, IPC_SPACE_PIO, COM1 + UART_LSR);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_RDI);
	assert_int_equal(h->nsent, 0);
	assert_int_equal(serial_input(&h->d, (const uint8_t *)"hi", 2), 2);
	/* The line rose and the LSR shadow shows data ready. */
	assert_int_equal(h->nsent, 1);
	assert_int_equal(h->sent[0].type, IPC_IRQ);
	assert_int_equal(h->sent[0].u.irq.level, 1);
	assert_int_equal(shadow(h, lsr_slot), 0x61);
	assert_int_equal(serial_input_space(&h->d), UART_INPUT_SIZE - 1);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'h');
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'i');
	assert_int_equal(shadow(h, lsr_slot), 0x60);
	/* The IRQ went down before the reply to the read that drained it. */
	assert_int_equal(h->sent[h->nsent - 2].type, IPC_IRQ);
	assert_int_equal(h->sent[h->nsent - 2].u.irq.level, 0);
	assert_int_equal(serial_input_space(&h->d), UART_INPUT_SIZE);
}

static void test_loopback_withdraws_shadows(void **state)
{
	struct harness *h = *state;
	assert_true(shadows_valid(h));
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_MCR, UART_MCR_LOOP | 0x0a);
	/* Withdrawn before applied_seq moved (write_reg checked applied_seq). */
	assert_false(shadows_valid(h));
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_MSR, 1) & 0xf0, 0x90);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_MCR, 0);
	assert_false(shadows_valid(h)); /* modem deltas still unread */
	read_reg(h, IPC_SPACE_PIO, COM1 + UART_MSR, 1);
	assert_true(shadows_valid(h));
	/* The MMIO UART counts too. */
	write_reg(h, IPC_SPACE_MMIO, MMIO_BASE + UART_MCR, UART_MCR_LOOP);
	assert_false(shadows_valid(h));
}

static void test_hostile_accesses(void **state)
{
	struct harness *h = *state;
	/* Not ours: all-ones of the access size, nothing changes. */
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, 0x2f8, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_MMIO, COM1, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, 0x3f7, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, 0x400, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_MMIO, MMIO_BASE - 1, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_MMIO, MMIO_BASE + 8, 1), 0xff);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, UINT64_MAX, 1), 0xff);
	/* Wrong sizes on our registers. */
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_LSR, 2), 0xffff);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 8), UINT64_MAX);
	struct ipc_msg m = {.type = IPC_IO_WRITE, .seq = ++seq};
	m.u.io = (struct ipc_io){.space = IPC_SPACE_PIO, .size = 4, .addr = COM1, .data = 'x'};
	serial_handle(&h->d, &m);
	assert_int_equal(h->nout, 0);
	/* Messages a device never gets are ignored. */
	static const uint8_t odd_types[] = {IPC_HELLO, IPC_WELCOME, IPC_REJECT, IPC_IO_REPLY,
					    IPC_IRQ, IPC_QUIT, IPC_PONG};
	for (size_t i = 0; i < sizeof(odd_types); i++) {
		struct ipc_msg o = {.type = odd_types[i], .seq = ++seq};
		assert_int_equal(serial_handle(&h->d, &o), SERIAL_CONTINUE);
	}
	assert_int_equal(h->nout, 0);
}

static void test_ping_reset_shutdown(void **state)
{
	struct harness *h = *state;
	struct ipc_msg m = {.type = IPC_PING, .seq = 77};
	serial_handle(&h->d, &m);
	assert_int_equal(h->sent[h->nsent - 1].type, IPC_PONG);
	assert_int_equal(h->sent[h->nsent - 1].seq, 77);

	write_reg(h, IPC_SPACE_PIO, COM1 + UART_LCR, 0x03);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_THRI);
	assert_int_equal(h->sent[h->nsent - 1].u.irq.level, 1);
	m = (struct ipc_msg){.type = IPC_RESET, .seq = ++seq};
	serial_handle(&h->d, &m);
	assert_int_equal(h->sent[h->nsent - 1].u.irq.level, 0);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_LCR, 1), 0);

	m = (struct ipc_msg){.type = IPC_SHUTDOWN, .seq = ++seq};
	assert_int_equal(serial_handle(&h->d, &m), SERIAL_EXIT);
}

static void test_resume(void **state)
{
	struct harness *h = *state;
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 0x77);
	write_reg(h, IPC_SPACE_PIO, COM1 + UART_IER, UART_IER_RDI);
	serial_input(&h->d, (const uint8_t *)"abc", 3);

	/* A new incarnation on the same page carries on, and re-reports the
	 * interrupt level to the core. */
	configure(h);
	h->nsent = 0;
	assert_true(serial_attach(&h->d, h->page, true));
	assert_int_equal(h->nsent, 1);
	assert_int_equal(h->sent[0].u.irq.level, 1);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 1), 0x77);
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'a');
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1, 1), 'b');

	/* A damaged page is reset, never trusted. */
	state_of(h)->com1.rx_tail += 5;
	configure(h);
	assert_false(serial_attach(&h->d, h->page, true));
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_SCR, 1), 0);
	assert_true(shadows_valid(h));

	memset(h->page + IPC_STATE_DEV_OFFSET, 0xff, sizeof(struct serial_state));
	configure(h);
	assert_false(serial_attach(&h->d, h->page, true));
	assert_int_equal(read_reg(h, IPC_SPACE_PIO, COM1 + UART_LSR, 1), 0x60);

	/* A page from a different layout is not resumed. */
	state_of(h)->size--;
	configure(h);
	assert_false(serial_attach(&h->d, h->page, true));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello_encodes_and_decodes, setup, teardown),
		cmocka_unit_test(test_fresh_attach_publishes),
		cmocka_unit_test_setup_teardown(test_write_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdio_off_drops_uart_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_and_interrupts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_withdraws_shadows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ping_reset_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
