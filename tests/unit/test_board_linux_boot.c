/* test_board_linux_boot.c - the bzImage / ELF loader (vmm-core/board/linux_boot.h).
 *
 * Every test builds its own inputs (a synthetic bzImage, an ELF vmlinux, an
 * xz payload made with liblzma), so all of them always run.  When
 * MINIVM_GUEST_DIR names a directory holding guest/build-guest.sh's output,
 * test_real_bzimage also loads Debian's kernel and initrd from it (both the
 * bzImage path and host-side decompression); otherwise it says so and loads
 * the synthetic image instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#ifdef MINIVM_HAVE_LZMA
#include <lzma.h>
#endif

#include "le.h"
#include "boot.h"
#include "linux_boot.h"

#define MiB (1ull << 20)
#define RAM_SIZE (64 * MiB)
#define SETUP_SECTS 4
#define SETUP_SIZE ((SETUP_SECTS + 1) * 512)
#define PM_SIZE 8192 /* synthetic protected-mode part */
#define PAYLOAD_OFFSET 0x100
#define PREF_ADDRESS (16 * MiB)
#define INIT_SIZE (4 * MiB)
#define ELF_PADDR (16 * MiB)
#define ELF_VADDR 0xffffffff81000000ull

static uint8_t *ram;

static int setup_ram(void **state)
{
	ram = calloc(1, RAM_SIZE);
	return ram ? 0 : -1;
}

static int free_ram(void **state)
{
	free(ram);
	return 0;
}

/* A setup header as Debian's kernel has it (protocol 2.15), with a
 * protected-mode part of PM_SIZE bytes whose payload is `payload`. */
static size_t make_bzimage(uint8_t *img, const uint8_t *payload, size_t payload_len)
{
	size_t size = SETUP_SIZE + PM_SIZE;
	memset(img, 0, size);
	img[0x1f1] = SETUP_SECTS;
	put_le16(img + 0x1fe, 0xaa55);
	img[0x200] = 0xeb;
	img[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	put_le16(img + 0x206, 0x020f);
	img[0x211] = 0x01; /* LOADED_HIGH */
	put_le32(img + 0x22c, 0x7fffffff);
	put_le32(img + 0x230, 0x200000);
	img[0x234] = 1;
	put_le16(img + 0x236, 0x01); /* XLF_KERNEL_64 */
	put_le32(img + 0x238, 2047);
	put_le32(img + 0x248, PAYLOAD_OFFSET);
	put_le32(img + 0x24c, (uint32_t)payload_len);
	put_le64(img + 0x258, PREF_ADDRESS);
	put_le32(img + 0x260, INIT_SIZE);
	for (size_t i = 0; i < PM_SIZE; i++)
		img[SETUP_SIZE + i] = (uint8_t)(i * 7 + 1);
	if (payload)
		memcpy(img + SETUP_SIZE + PAYLOAD_OFFSET, payload, payload_len);
	return size;
}

/* A minimal ELF vmlinux: one PT_LOAD of 4 KiB in the file and 8 KiB in
 * memory (the rest is bss) at ELF_PADDR, entry given by the caller. */
#define ELF_FILESZ 4096
#define ELF_MEMSZ 8192
#define ELF_SIZE (64 + 56 + ELF_FILESZ)
static size_t make_elf(uint8_t *img, uint64_t entry)
{
	memset(img, 0, ELF_SIZE);
	memcpy(img, "\x7f" "ELF", 4);
	img[4] = 2;
	img[5] = 1;
	img[6] = 1;
	put_le16(img + 16, 2); /* ET_EXEC */
	put_le16(img + 18, 62);
	put_le64(img + 24, entry);
	put_le64(img + 32, 64); /* phoff */
	put_le16(img + 52, 64);
	put_le16(img + 54, 56);
	put_le16(img + 56, 1);
	uint8_t *ph = img + 64;
	put_le32(ph, 1); /* PT_LOAD */
	put_le64(ph + 8, 64 + 56);
	put_le64(ph + 16, ELF_VADDR);
	put_le64(ph + 24, ELF_PADDR);
	put_le64(ph + 32, ELF_FILESZ);
	put_le64(ph + 40, ELF_MEMSZ);
	for (size_t i = 0; i < ELF_FILESZ; i++)
		img[64 + 56 + i] = (uint8_t)(i * 13 + 5);
	return ELF_SIZE;
}

static struct e820_entry e820[3];
static const char cmdline[] = "console=ttyS0 panic=-1";

static struct linux_load_args default_args(const uint8_t *kernel, size_t kernel_size,
					   const uint8_t *initrd, size_t initrd_size)
{
	int n = linux_e820_pc(RAM_SIZE, e820, 3);
	assert_int_equal(n, 3);
	return (struct linux_load_args){
		.kernel = kernel,
		.kernel_size = kernel_size,
		.initrd = initrd,
		.initrd_size = initrd_size,
		.cmdline = cmdline,
		.e820 = e820,
		.e820_count = 3,
		.boot_params_addr = LINUX_BOOT_PARAMS_ADDR,
		.cmdline_addr = LINUX_CMDLINE_ADDR,
		.acpi_rsdp_addr = 0xe0000,
	};
}

/* The zero page fields every load must fill. */
static void check_zero_page(const struct linux_loaded *out, size_t initrd_size)
{
	const uint8_t *bp = ram + out->boot_params;
	assert_int_equal(out->boot_params, LINUX_BOOT_PARAMS_ADDR);
	assert_memory_equal(bp + 0x202, "HdrS", 4);
	assert_int_equal(le16(bp + 0x1fe), 0xaa55);
	assert_int_equal(bp[0x1ef], 0); /* sentinel */
	assert_int_equal(bp[0x210], 0xff);
	assert_true(bp[0x211] & 0x01);
	assert_int_equal(le32(bp + 0x228), LINUX_CMDLINE_ADDR);
	assert_string_equal((const char *)ram + LINUX_CMDLINE_ADDR, cmdline);
	assert_int_equal(le64(bp + 0x070), 0xe0000);
	assert_int_equal(le32(bp + 0x218) | (uint64_t)le32(bp + 0x0c0) << 32, out->initrd_start);
	assert_int_equal(le32(bp + 0x21c), initrd_size);
	assert_int_equal(bp[0x1e8], 3);
	for (int i = 0; i < 3; i++) {
		const uint8_t *e = bp + 0x2d0 + 20 * i;
		assert_int_equal(le64(e), e820[i].addr);
		assert_int_equal(le64(e + 8), e820[i].size);
		assert_int_equal(le32(e + 16), e820[i].type);
	}
}

static void test_e820_pc(void **state)
{
	struct e820_entry m[3];
	assert_int_equal(linux_e820_pc(256 * MiB, m, 3), 3);
	assert_int_equal(m[0].addr, 0);
	assert_int_equal(m[0].size, 0xa0000);
	assert_int_equal(m[0].type, E820_RAM);
	assert_int_equal(m[1].addr, 0xe0000);
	assert_int_equal(m[1].addr + m[1].size, 0x100000);
	assert_int_equal(m[1].type, E820_RESERVED);
	assert_int_equal(m[2].addr, MiB);
	assert_int_equal(m[2].addr + m[2].size, 256 * MiB);
	assert_int_equal(linux_e820_pc(256 * MiB, m, 2), -1);
	assert_int_equal(linux_e820_pc(MiB, m, 3), -1);
}

static void test_bzimage_placement(void **state)
{
	static uint8_t img[SETUP_SIZE + PM_SIZE];
	size_t size = make_bzimage(img, NULL, 0);
	static uint8_t initrd[10000];
	memset(initrd, 0xa5, sizeof(initrd));
	struct linux_load_args args = default_args(img, size, initrd, sizeof(initrd));
	struct linux_loaded out;
	char err[160] = "";
	assert_int_equal(linux_load(ram, RAM_SIZE, &args, &out, err, sizeof(err)), 0);
	assert_int_equal(out.entry, PREF_ADDRESS + 0x200);
	assert_int_equal(out.kernel_start, PREF_ADDRESS);
	assert_int_equal(out.kernel_end, PREF_ADDRESS + INIT_SIZE);
	assert_memory_equal(ram + PREF_ADDRESS, img + SETUP_SIZE, PM_SIZE);
	assert_false(out.decompressed_on_host);
	/* Initrd: page-aligned, as high as RAM allows. */
	assert_int_equal(out.initrd_start % 4096, 0);
	assert_true(out.initrd_end <= RAM_SIZE);
	assert_true(RAM_SIZE - out.initrd_end < 4096);
	assert_true(out.initrd_start >= out.kernel_end);
	assert_memory_equal(ram + out.initrd_start, initrd, sizeof(initrd));
	check_zero_page(&out, sizeof(initrd));
	/* The kernel's setup header is carried over: its protocol version. */
	assert_int_equal(le16(ram + out.boot_params + 0x206), 0x020f);
	assert_int_equal(le32(ram + out.boot_params + 0x214), PREF_ADDRESS);
}

/* initrd_addr_max bounds the initrd even when RAM goes higher. */
static void test_initrd_addr_max(void **state)
{
	static uint8_t img[SETUP_SIZE + PM_SIZE];
	size_t size = make_bzimage(img, NULL, 0);
	put_le32(img + 0x22c, 48 * MiB - 1);
	static uint8_t initrd[5000];
	struct linux_load_args args = default_args(img, size, initrd, sizeof(initrd));
	struct linux_loaded out;
	char err[160] = "";
	assert_int_equal(linux_load(ram, RAM_SIZE, &args, &out, err, sizeof(err)), 0);
	assert_true(out.initrd_end <= 48 * MiB);
	assert_true(48 * MiB - out.initrd_end < 4096);
}

static void expect_error(const uint8_t *img, size_t size, size_t initrd_size, uint64_t ram_size,
			 const char *needle)
{
	static uint8_t initrd_data[1];
	struct linux_load_args args = default_args(img, size, initrd_size ? initrd_data : NULL,
						   initrd_size);
	struct linux_loaded out;
	char err[160] = "";
	assert_int_equal(linux_load(ram, ram_size, &args, &out, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void test_hostile_bzimages(void **state)
{
	static uint8_t img[SETUP_SIZE + PM_SIZE];
	size_t size = make_bzimage(img, NULL, 0);

	expect_error(img, 0x100, 0, RAM_SIZE, "not a bzImage or ELF kernel");
	expect_error(img, SETUP_SIZE, 0, RAM_SIZE, "truncated");
	memcpy(img + 0x202, "HdrX", 4);
	expect_error(img, size, 0, RAM_SIZE, "not a bzImage or ELF kernel");
	make_bzimage(img, NULL, 0);
	put_le16(img + 0x206, 0x0206);
	expect_error(img, size, 0, RAM_SIZE, "boot protocol too old (2.06");
	make_bzimage(img, NULL, 0);
	put_le16(img + 0x1fe, 0);
	expect_error(img, size, 0, RAM_SIZE, "boot flag");
	make_bzimage(img, NULL, 0);
	img[0x1f1] = 255; /* setup beyond the end of the file */
	expect_error(img, size, 0, RAM_SIZE, "truncated");
	make_bzimage(img, NULL, 0);
	img[0x201] = 0xff; /* header longer than the zero page has room for */
	expect_error(img, size, 0, RAM_SIZE, "setup header");
	make_bzimage(img, NULL, 0);
	img[0x211] = 0;
	expect_error(img, size, 0, RAM_SIZE, "zImage");
	make_bzimage(img, NULL, 0);
	put_le16(img + 0x236, 0);
	expect_error(img, size, 0, RAM_SIZE, "64-bit");
	make_bzimage(img, NULL, 0);
	put_le32(img + 0x260, 0xffffffff); /* init_size beyond RAM */
	expect_error(img, size, 0, RAM_SIZE, "give the VM more memory");
	make_bzimage(img, NULL, 0);
	expect_error(img, size, 0, 8 * MiB, "give the VM more memory");
	put_le64(img + 0x258, UINT64_MAX - 0x1000); /* pref_address wraps */
	expect_error(img, size, 0, RAM_SIZE, "give the VM more memory");
	make_bzimage(img, NULL, 0);
	put_le32(img + 0x238, 4); /* cmdline_size smaller than our command line */
	expect_error(img, size, 0, RAM_SIZE, "command line too long");
	make_bzimage(img, NULL, 0);
	/* An initrd larger than the RAM above the kernel. */
	expect_error(img, size, RAM_SIZE - PREF_ADDRESS - INIT_SIZE + 1, RAM_SIZE,
		     "initrd (");
}

static void test_bad_args(void **state)
{
	static uint8_t img[SETUP_SIZE + PM_SIZE];
	size_t size = make_bzimage(img, NULL, 0);
	struct linux_load_args args = default_args(img, size, NULL, 0);
	struct linux_loaded out;
	char err[160];
	args.boot_params_addr = RAM_SIZE - 100;
	assert_int_equal(linux_load(ram, RAM_SIZE, &args, &out, err, sizeof(err)), -1);
	args = default_args(img, size, NULL, 0);
	args.cmdline_addr = LINUX_BOOT_PARAMS_ADDR + 8;
	assert_int_equal(linux_load(ram, RAM_SIZE, &args, &out, err, sizeof(err)), -1);
	args = default_args(img, size, NULL, 0);
	args.e820_count = 0;
	assert_int_equal(linux_load(ram, RAM_SIZE, &args, &out, err, sizeof(err)), -1);
	/* The zero page inside the kernel's memory. */
	args = default_args(img, size, NULL, 0);
	args.boot_params_addr = PREF_ADDRESS + 4096;
	assert_int_equal(linux_load(ram, RAM_SIZE, &args, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "overlaps"));
}

static void test_elf_vmlinux(void **state)
{
	static uint8_t img[ELF_SIZE];
	/* Entry given as a virtual address: translated through the segment. */
	size_t size = make_elf(img, ELF_VADDR + 0x40);
	memset(ram + ELF_PADDR, 0xee, ELF_MEMSZ); /* the bss must come out zeroed */
	struct linux_load_args args = default_args(img, size, NULL, 0);
	struct linux_loaded out;
	char err[160] = "";
	assert_int_equal(linux_load(ram, RAM_SIZE, &args, &out, err, sizeof(err)), 0);
	assert_int_equal(out.entry, ELF_PADDR + 0x40);
	assert_int_equal(out.kernel_start, ELF_PADDR);
	assert_int_equal(out.kernel_end, ELF_PADDR + ELF_MEMSZ);
	assert_memory_equal(ram + ELF_PADDR, img + 64 + 56, ELF_FILESZ);
	for (size_t i = ELF_FILESZ; i < ELF_MEMSZ; i++)
		assert_int_equal(ram[ELF_PADDR + i], 0);
	check_zero_page(&out, 0);

	/* Entry as a physical address, as Linux links vmlinux. */
	make_elf(img, ELF_PADDR);
	assert_int_equal(linux_load(ram, RAM_SIZE, &args, &out, err, sizeof(err)), 0);
	assert_int_equal(out.entry, ELF_PADDR);
}

static void test_hostile_elf(void **state)
{
	static uint8_t img[ELF_SIZE];
	size_t size = make_elf(img, ELF_PADDR);
	expect_error(img, 40, 0, RAM_SIZE, "not a 64-bit x86-64");
	img[18] = 3; /* EM_386 */
	expect_error(img, size, 0, RAM_SIZE, "not a 64-bit x86-64");
	make_elf(img, ELF_PADDR);
	put_le16(img + 56, 1000);
	expect_error(img, size, 0, RAM_SIZE, "program header");
	make_elf(img, ELF_PADDR);
	put_le64(img + 32, UINT64_MAX - 10);
	expect_error(img, size, 0, RAM_SIZE, "program header");
	make_elf(img, ELF_PADDR);
	put_le64(img + 64 + 32, ELF_FILESZ + 1); /* filesz beyond the file */
	expect_error(img, size, 0, RAM_SIZE, "outside the file");
	make_elf(img, ELF_PADDR);
	put_le64(img + 64 + 24, RAM_SIZE - 100); /* paddr past the end of RAM */
	expect_error(img, size, 0, RAM_SIZE, "not in guest RAM");
	put_le64(img + 64 + 24, UINT64_MAX - 100); /* paddr + memsz wraps */
	expect_error(img, size, 0, RAM_SIZE, "not in guest RAM");
	put_le64(img + 64 + 24, 0xa0000); /* in the reserved BIOS hole */
	expect_error(img, size, 0, RAM_SIZE, "not in guest RAM");
	make_elf(img, 0x1234);
	expect_error(img, size, 0, RAM_SIZE, "entry point");
	make_elf(img, ELF_PADDR);
	put_le32(img + 64, 4); /* PT_NOTE only */
	expect_error(img, size, 0, RAM_SIZE, "no loadable segment");
}

#ifdef MINIVM_HAVE_LZMA
/* xz stream of `in` with the kernel's 4-byte size trailer; returns its length. */
static size_t make_xz(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t pos = 0;
	assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, len, out, &pos, cap),
			 LZMA_OK);
	assert_true(pos + 4 <= cap);
	put_le32(out + pos, (uint32_t)len);
	return pos + 4;
}
#endif

/* linux_unpack_bzimage, then linux_load with what it unpacked (if anything). */
static int unpack_and_load(const uint8_t *img, size_t size, struct linux_load_args *args,
			   struct linux_loaded *out, char *err, size_t errlen)
{
	uint8_t *vmlinux;
	size_t vmlinux_size;
	if (linux_unpack_bzimage(img, size, RAM_SIZE, &vmlinux, &vmlinux_size, err, errlen))
		return -1;
	args->vmlinux = vmlinux;
	args->vmlinux_size = vmlinux_size;
	int rc = linux_load(ram, RAM_SIZE, args, out, err, errlen);
	args->vmlinux = NULL;
	free(vmlinux);
	return rc;
}

static void test_host_decompress(void **state)
{
	static uint8_t img[SETUP_SIZE + PM_SIZE];
	static uint8_t elf[ELF_SIZE];
	struct linux_loaded out;
	char err[160] = "";
	uint8_t *vmlinux;
	size_t vmlinux_size;
	make_elf(elf, ELF_PADDR);
#ifdef MINIVM_HAVE_LZMA
	assert_true(linux_host_decompress_available());
	static uint8_t xz[PM_SIZE - PAYLOAD_OFFSET];
	size_t xz_len = make_xz(elf, sizeof(elf), xz, sizeof(xz));
	size_t size = make_bzimage(img, xz, xz_len);
	assert_int_equal(linux_unpack_bzimage(img, size, RAM_SIZE, &vmlinux, &vmlinux_size, err,
					      sizeof(err)), 0);
	assert_non_null(vmlinux);
	assert_int_equal(vmlinux_size, sizeof(elf));
	assert_memory_equal(vmlinux, elf, sizeof(elf));
	free(vmlinux);
	static uint8_t initrd[3000];
	struct linux_load_args args = default_args(img, size, initrd, sizeof(initrd));
	assert_int_equal(unpack_and_load(img, size, &args, &out, err, sizeof(err)), 0);
	assert_true(out.decompressed_on_host);
	assert_int_equal(out.entry, ELF_PADDR);
	assert_memory_equal(ram + ELF_PADDR, elf + 64 + 56, ELF_FILESZ);
	check_zero_page(&out, sizeof(initrd));
	assert_int_equal(le16(ram + out.boot_params + 0x206), 0x020f); /* the bzImage's header */

	/* A lying size trailer only changes the first allocation. */
	put_le32(img + SETUP_SIZE + PAYLOAD_OFFSET + xz_len - 4, 1);
	assert_int_equal(unpack_and_load(img, size, &args, &out, err, sizeof(err)), 0);
	put_le32(img + SETUP_SIZE + PAYLOAD_OFFSET + xz_len - 4, 0xffffffff);
	assert_int_equal(unpack_and_load(img, size, &args, &out, err, sizeof(err)), 0);
	/* Nothing larger than the caller's bound is unpacked. */
	assert_int_equal(linux_unpack_bzimage(img, size, sizeof(elf) - 1, &vmlinux, &vmlinux_size, err,
					      sizeof(err)), -1);
	assert_null(vmlinux);
	assert_non_null(strstr(err, "more than"));

	/* Corrupt stream, payload outside the file, payload that is not ELF. */
	img[SETUP_SIZE + PAYLOAD_OFFSET + xz_len / 2] ^= 0x55;
	assert_int_equal(linux_unpack_bzimage(img, size, RAM_SIZE, &vmlinux, &vmlinux_size, err,
					      sizeof(err)), -1);
	assert_non_null(strstr(err, "corrupt"));
	make_bzimage(img, xz, xz_len);
	put_le32(img + 0x248, PM_SIZE - 2);
	assert_int_equal(linux_unpack_bzimage(img, size, RAM_SIZE, &vmlinux, &vmlinux_size, err,
					      sizeof(err)), -1);
	assert_non_null(strstr(err, "outside the file"));
	static const uint8_t not_elf[100] = "just text, not a kernel";
	xz_len = make_xz(not_elf, sizeof(not_elf), xz, sizeof(xz));
	make_bzimage(img, xz, xz_len);
	assert_int_equal(unpack_and_load(img, size, &args, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not unpack to an ELF"));

	/* A payload that is not xz is refused with a clear error. */
	static const uint8_t gzip_payload[8] = {0x1f, 0x8b, 8, 0};
	size = make_bzimage(img, gzip_payload, sizeof(gzip_payload));
	assert_int_equal(linux_unpack_bzimage(img, size, RAM_SIZE, &vmlinux, &vmlinux_size, err,
					      sizeof(err)), -1);
	assert_non_null(strstr(err, "not xz"));
#else
	/* Nothing is unpacked: the guest's decompressor runs. */
	assert_false(linux_host_decompress_available());
	static const uint8_t xz_magic[8] = {0xfd, '7', 'z', 'X', 'Z', 0};
	size_t size = make_bzimage(img, xz_magic, sizeof(xz_magic));
	struct linux_load_args args = default_args(img, size, NULL, 0);
	assert_int_equal(unpack_and_load(img, size, &args, &out, err, sizeof(err)), 0);
	assert_false(out.decompressed_on_host);
	assert_int_equal(out.entry, PREF_ADDRESS + 0x200);
#endif
	/* Either way: an ELF kernel, or what is no bzImage, has nothing to
	 * unpack (linux_load judges it). */
	assert_int_equal(linux_unpack_bzimage(elf, sizeof(elf), RAM_SIZE, &vmlinux, &vmlinux_size, err,
					      sizeof(err)), 0);
	assert_null(vmlinux);
	static const uint8_t text[600] = "neither bzImage nor ELF";
	assert_int_equal(linux_unpack_bzimage(text, sizeof(text), RAM_SIZE, &vmlinux, &vmlinux_size, err,
					      sizeof(err)), 0);
	assert_null(vmlinux);
}

/* Random corruption of the header and payload: loads fail or succeed, but
 * never crash or write outside the RAM buffer (run under ASan to see). */
static void test_mutated_bzimages(void **state)
{
	static uint8_t img[SETUP_SIZE + PM_SIZE], pristine[SETUP_SIZE + PM_SIZE];
	size_t size = make_bzimage(pristine, NULL, 0);
	static uint8_t initrd[4096];
	srand(1234);
	for (int iter = 0; iter < 3000; iter++) {
		memcpy(img, pristine, size);
		for (int k = 0; k < 4; k++)
			img[0x1f1 + rand() % (0x270 - 0x1f1)] = (uint8_t)rand();
		struct linux_load_args args =
			default_args(img, (size_t)rand() % (size + 1), initrd, (size_t)rand() % 4096);
		struct linux_loaded out;
		char err[160];
		int rc = iter & 1 ? unpack_and_load(img, args.kernel_size, &args, &out, err, sizeof(err))
				  : linux_load(ram, RAM_SIZE, &args, &out, err, sizeof(err));
		if (rc == 0) {
			assert_true(out.kernel_end <= RAM_SIZE);
			assert_true(out.initrd_end <= RAM_SIZE);
		}
	}
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Debian's kernel, when the guest has been built; else the synthetic one. */
static void test_real_bzimage(void **state)
{
	const char *dir = getenv("MINIVM_GUEST_DIR");
	char path[4096], err[256] = "";
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t kernel_size = 0, initrd_size = 0;
	if (dir) {
		snprintf(path, sizeof(path), "%s/bzImage", dir);
		if (boot_read_file(path, &kernel, &kernel_size, err, sizeof(err)) == 0) {
			snprintf(path, sizeof(path), "%s/initrd.img", dir);
			assert_int_equal(boot_read_file(path, &initrd, &initrd_size, err, sizeof(err)),
					 0);
		}
	}
	if (!kernel) {
		print_message("MINIVM_GUEST_DIR has no bzImage (%s): loading the synthetic one\n",
			      dir ? err : "not set");
		kernel = malloc(SETUP_SIZE + PM_SIZE);
		kernel_size = make_bzimage(kernel, NULL, 0);
	}
	const uint64_t big_ram = 256 * MiB;
	uint8_t *big = calloc(1, big_ram);
	assert_non_null(big);
	struct e820_entry map[3];
	assert_int_equal(linux_e820_pc(big_ram, map, 3), 3);
	struct linux_load_args args = {
		.kernel = kernel, .kernel_size = kernel_size,
		.initrd = initrd, .initrd_size = initrd_size,
		.cmdline = cmdline, .e820 = map, .e820_count = 3,
		.boot_params_addr = LINUX_BOOT_PARAMS_ADDR, .cmdline_addr = LINUX_CMDLINE_ADDR,
	};
	struct linux_loaded out;
	if (linux_load(big, big_ram, &args, &out, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(out.entry, out.kernel_start + 0x200);
	assert_true(le16(big + out.boot_params + 0x206) >= 0x020c);
	assert_true(out.initrd_end <= big_ram);
	if (initrd) {
		assert_true(out.initrd_start >= out.kernel_end);
		assert_memory_equal(big + out.initrd_start, initrd, initrd_size);
	}
	if (initrd && linux_host_decompress_available()) {
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		uint8_t *vmlinux;
		size_t vmlinux_size;
		if (linux_unpack_bzimage(kernel, kernel_size, big_ram, &vmlinux, &vmlinux_size, err,
					 sizeof(err)) != 0)
			fail_msg("%s", err);
		assert_non_null(vmlinux);
		args.vmlinux = vmlinux;
		args.vmlinux_size = vmlinux_size;
		if (linux_load(big, big_ram, &args, &out, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		free(vmlinux);
		print_message("host-side xz decompression + ELF load of %s/bzImage: %.2f s; "
			      "vmlinux at %#llx..%#llx, entry %#llx\n",
			      dir, seconds_since(&t0), (unsigned long long)out.kernel_start,
			      (unsigned long long)out.kernel_end, (unsigned long long)out.entry);
		assert_true(out.decompressed_on_host);
		assert_int_equal(out.entry, 0x1000000); /* phys_startup_64 */
		assert_true(out.initrd_start >= out.kernel_end);
	}
	free(big);
	free(kernel);
	free(initrd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e820_pc),
		cmocka_unit_test(test_bzimage_placement),
		cmocka_unit_test(test_initrd_addr_max),
		cmocka_unit_test(test_hostile_bzimages),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_elf_vmlinux),
		cmocka_unit_test(test_hostile_elf),
		cmocka_unit_test(test_host_decompress),
		cmocka_unit_test(test_mutated_bzimages),
		cmocka_unit_test(test_real_bzimage),
	};
	return cmocka_run_group_tests(tests, setup_ram, free_ram);
}
