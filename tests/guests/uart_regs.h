/* uart_regs.h - the 16550 registers the test guests use. */
#define COM1_THR 0x3f8 /* transmit holding register */
#define COM1_RBR 0x3f8 /* receive buffer register (reads) */
#define COM1_LSR 0x3fd /* line status register */
#define LSR_DR 0x01    /* data ready: RBR holds a received byte */
#define LSR_THRE 0x20  /* THR empty: room for a byte */
#define MMIO_THR 0     /* the MMIO UART: 1-byte stride from its base */
#define MMIO_LSR 5
