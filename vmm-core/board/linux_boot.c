/* linux_boot.c - bzImage / ELF vmlinux loader for the x86 64-bit boot
 * protocol (linux_boot.h).  Field offsets follow Documentation/x86/boot.rst
 * and Documentation/x86/zero-page.rst. */
#include "linux_boot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MINIVM_HAVE_LZMA
#include <lzma.h>
#endif

#include "le.h"

/* Setup header, at the same offsets in the bzImage file and the zero page. */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP_LEN 0x201 /* header end = 0x202 + this byte */
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_CODE32_START 0x214
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE 0x234
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PAYLOAD_OFFSET 0x248
#define HDR_PAYLOAD_LENGTH 0x24c
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define HDR_MIN_END 0x264 /* protocol 2.12 guarantees fields up to here */
#define HDR_MAX_END 0x290 /* the zero page's room for the header */

#define BOOT_FLAG_MAGIC 0xaa55
#define HDRS_MAGIC 0x53726448u /* "HdrS" */
#define MIN_PROTOCOL 0x020c    /* 2.12: xloadflags, the 64-bit entry flag */
#define SYNTH_PROTOCOL 0x020f  /* what we claim for a bare ELF vmlinux */
#define LOADFLAG_LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x02
#define STARTUP_64_OFFSET 0x200 /* from the start of the protected-mode code */
#define LOADER_TYPE_UNDEFINED 0xff
#define ELF_CMDLINE_SIZE 2047 /* COMMAND_LINE_SIZE - 1 on x86 */
#define ELF_INITRD_LIMIT (1ull << 32)

/* Zero page (struct boot_params). */
#define BP_SIZE 4096
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_ENTRY_SIZE 20

/* ELF64 (only what a vmlinux needs). */
#define EHDR_SIZE 64
#define PHDR_SIZE 56
#define ELF_MAX_PHDRS 64
#define EM_X86_64 62
#define PT_LOAD 1

#define PAGE_MASK 0xfffull
#define XZ_MAX_OUTPUT (1ull << 30) /* no vmlinux is larger */

/* What one linux_load() call works with. */
struct loader {
	uint8_t *ram;
	uint64_t ram_size;
	const struct linux_load_args *args;
	char *err;
	size_t errlen;
};

#define fail(l, ...) (snprintf((l)->err, (l)->errlen, __VA_ARGS__), -1)

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Is [addr, addr+len) inside one E820_RAM entry and inside the RAM buffer?
 * Callers have checked that addr + len does not wrap. */
static bool in_usable_ram(const struct loader *l, uint64_t addr, uint64_t len)
{
	if (addr > l->ram_size || len > l->ram_size - addr)
		return false;
	for (unsigned i = 0; i < l->args->e820_count; i++) {
		const struct e820_entry *e = &l->args->e820[i];
		if (e->type == E820_RAM && addr >= e->addr && addr - e->addr <= e->size &&
		    len <= e->size - (addr - e->addr))
			return true;
	}
	return false;
}

/* ---- ELF vmlinux ---- */

/* Load the PT_LOAD segments of an ELF vmlinux at their physical addresses. */
static int load_elf(struct loader *l, const uint8_t *img, size_t size, struct linux_loaded *out)
{
	if (size < EHDR_SIZE || img[4] != 2 /* ELFCLASS64 */ || img[5] != 1 /* little-endian */ ||
	    le16(img + 18) != EM_X86_64)
		return fail(l, "ELF kernel is not a 64-bit x86-64 image");
	uint64_t phoff = le64(img + 32);
	unsigned phentsize = le16(img + 54), phnum = le16(img + 56);
	if (phentsize != PHDR_SIZE || phnum == 0 || phnum > ELF_MAX_PHDRS || phoff > size ||
	    (uint64_t)phnum * PHDR_SIZE > size - phoff)
		return fail(l, "ELF kernel: bad program header table");

	uint64_t start = UINT64_MAX, end = 0, entry = le64(img + 24), entry_phys = UINT64_MAX;
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = img + phoff + (uint64_t)i * PHDR_SIZE;
		uint64_t offset = le64(ph + 8), vaddr = le64(ph + 16), paddr = le64(ph + 24);
		uint64_t filesz = le64(ph + 32), memsz = le64(ph + 40);
		if (le32(ph) != PT_LOAD || memsz == 0)
			continue;
		if (filesz > memsz || offset > size || filesz > size - offset)
			return fail(l, "ELF kernel: segment %u lies outside the file", i);
		if (paddr > UINT64_MAX - memsz || !in_usable_ram(l, paddr, memsz))
			return fail(l, "ELF kernel: segment %u (%#llx, %llu bytes) is not in guest RAM",
				    i, (unsigned long long)paddr, (unsigned long long)memsz);
		memcpy(l->ram + paddr, img + offset, filesz);
		memset(l->ram + paddr + filesz, 0, memsz - filesz);
		if (paddr < start)
			start = paddr;
		if (paddr + memsz > end)
			end = paddr + memsz;
		if (entry - paddr < memsz)
			entry_phys = entry;
		else if (entry - vaddr < memsz && entry_phys == UINT64_MAX)
			entry_phys = paddr + (entry - vaddr);
	}
	if (end == 0)
		return fail(l, "ELF kernel has no loadable segment");
	if (entry_phys == UINT64_MAX)
		return fail(l, "ELF kernel: entry point %#llx is in no segment", (unsigned long long)entry);
	out->entry = entry_phys;
	out->kernel_start = start;
	out->kernel_end = end;
	return 0;
}

/* ---- host-side decompression of a bzImage payload ---- */

#ifdef MINIVM_HAVE_LZMA
/* Unpack one xz stream into a malloc'd buffer of at most cap bytes.  The
 * kernel's build appends the unpacked size as 4 little-endian bytes after
 * the stream: a hint for the first allocation, never trusted beyond that. */
static int xz_unpack(const uint8_t *in, size_t in_len, uint64_t cap, uint8_t **out,
		     size_t *out_len, char *err, size_t errlen)
{
	if (cap > XZ_MAX_OUTPUT)
		cap = XZ_MAX_OUTPUT;
	uint64_t want = in_len >= 4 ? le32(in + in_len - 4) : 0;
	if (want == 0 || want > cap)
		want = cap < 64ull << 20 ? cap : 64ull << 20;

	lzma_stream s = LZMA_STREAM_INIT;
	if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK) {
		snprintf(err, errlen, "xz payload: cannot start the decoder");
		return -1;
	}
	uint8_t *buf = NULL;
	size_t have = 0;
	lzma_ret r = LZMA_OK;
	s.next_in = in;
	s.avail_in = in_len;
	while (r == LZMA_OK) {
		if (have == want) {
			if (want >= cap)
				break;
			want = want * 2 < cap ? want * 2 : cap;
		}
		if (s.avail_out == 0) {
			uint8_t *grown = realloc(buf, want);
			if (!grown) {
				r = LZMA_MEM_ERROR;
				break;
			}
			buf = grown;
			s.next_out = buf + have;
			s.avail_out = want - have;
		}
		r = lzma_code(&s, LZMA_FINISH);
		have = (size_t)(s.next_out - buf);
	}
	lzma_end(&s);
	if (r != LZMA_STREAM_END) {
		free(buf);
		if (r == LZMA_OK)
			snprintf(err, errlen, "xz payload unpacks to more than %llu bytes",
				 (unsigned long long)cap);
		else
			snprintf(err, errlen, "xz payload is corrupt (liblzma error %d)", (int)r);
		return -1;
	}
	*out = buf;
	*out_len = have;
	return 0;
}
#endif

bool linux_host_decompress_available(void)
{
#ifdef MINIVM_HAVE_LZMA
	return true;
#else
	return false;
#endif
}

/* Load the ELF vmlinux that linux_unpack_bzimage took out of the payload. */
static int load_unpacked(struct loader *l, struct linux_loaded *out)
{
	static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};
	const uint8_t *vmlinux = l->args->vmlinux;
	size_t size = l->args->vmlinux_size;
	if (size < sizeof(elf_magic) || memcmp(vmlinux, elf_magic, sizeof(elf_magic)) != 0)
		return fail(l, "bzImage payload does not unpack to an ELF vmlinux");
	int rc = load_elf(l, vmlinux, size, out);
	out->decompressed_on_host = rc == 0;
	return rc;
}

/* ---- bzImage ---- */

/* Validate the setup header; on success *hdr_end is where it ends. */
static int check_bzimage(struct loader *l, const uint8_t *img, size_t size, size_t *setup_size,
			 size_t *hdr_end)
{
	unsigned version = le16(img + HDR_VERSION);
	if (version < MIN_PROTOCOL)
		return fail(l, "boot protocol too old (%u.%02u, need 2.12 or later)", version >> 8,
			    version & 0xff);
	if (le16(img + HDR_BOOT_FLAG) != BOOT_FLAG_MAGIC)
		return fail(l, "not a bzImage or ELF kernel (no 0xAA55 boot flag)");
	*hdr_end = 0x202u + img[HDR_JUMP_LEN];
	if (*hdr_end < HDR_MIN_END || *hdr_end > HDR_MAX_END)
		return fail(l, "bzImage setup header has a bad length (%zu)", *hdr_end);
	unsigned sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	*setup_size = (sects + 1u) * 512u;
	if (*setup_size >= size || *setup_size < *hdr_end)
		return fail(l, "bzImage is truncated: %u setup sectors, %zu bytes in the file", sects,
			    size);
	if (!(img[HDR_LOADFLAGS] & LOADFLAG_LOADED_HIGH))
		return fail(l, "not a bzImage (a zImage loaded below 1 MiB)");
	if (!(le16(img + HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return fail(l, "kernel has no 64-bit entry point (xloadflags)");
	return 0;
}

/* Place the protected-mode code at pref_address (its link address; the
 * kernel relocates itself from there if it must). */
static int load_bzimage_code(struct loader *l, const uint8_t *pm, size_t pm_size,
			     const uint8_t *hdr, struct linux_loaded *out)
{
	uint64_t load = le64(hdr + HDR_PREF_ADDRESS);
	uint32_t align = le32(hdr + HDR_KERNEL_ALIGNMENT);
	uint64_t need = le32(hdr + HDR_INIT_SIZE);
	if (need < pm_size)
		need = pm_size;
	if (hdr[HDR_RELOCATABLE] && align && (align & (align - 1)) == 0)
		load = (load + align - 1) & ~(uint64_t)(align - 1);
	if (load > UINT64_MAX - need || !in_usable_ram(l, load, need))
		return fail(l, "kernel needs %llu bytes of RAM at %#llx: give the VM more memory",
			    (unsigned long long)need, (unsigned long long)load);
	memcpy(l->ram + load, pm, pm_size);
	out->entry = load + STARTUP_64_OFFSET;
	out->kernel_start = load;
	out->kernel_end = load + need;
	return 0;
}

int linux_unpack_bzimage(const uint8_t *img, size_t size, uint64_t max_size, uint8_t **vmlinux,
			 size_t *vmlinux_size, char *err, size_t errlen)
{
	*vmlinux = NULL;
	*vmlinux_size = 0;
#ifdef MINIVM_HAVE_LZMA
	struct loader l = {.err = err, .errlen = errlen};
	size_t setup_size, hdr_end;
	/* Anything but a well-formed bzImage is linux_load's to judge. */
	if (size < HDR_MIN_END || le32(img + HDR_MAGIC) != HDRS_MAGIC ||
	    check_bzimage(&l, img, size, &setup_size, &hdr_end) != 0)
		return 0;
	const uint8_t *pm = img + setup_size;
	size_t pm_size = size - setup_size;
	uint32_t offset = le32(img + HDR_PAYLOAD_OFFSET), len = le32(img + HDR_PAYLOAD_LENGTH);
	if (offset > pm_size || len > pm_size - offset || len < 6)
		return fail(&l, "bzImage payload lies outside the file");
	static const uint8_t xz_magic[6] = {0xfd, '7', 'z', 'X', 'Z', 0};
	if (memcmp(pm + offset, xz_magic, sizeof(xz_magic)) != 0)
		return fail(&l, "bzImage payload is not xz: cannot unpack it on the host");
	return xz_unpack(pm + offset, len, max_size, vmlinux, vmlinux_size, err, errlen);
#else
	/* Nothing to unpack with: the guest's own decompressor runs. */
	(void)img, (void)size, (void)max_size, (void)err, (void)errlen;
	return 0;
#endif
}

/* ---- initrd, command line, zero page ---- */

/* The highest page-aligned place for the initrd inside an E820_RAM entry,
 * above the kernel and ending at or below limit. */
static int place_initrd(struct loader *l, uint64_t above, uint64_t limit, uint64_t *addr)
{
	uint64_t size = l->args->initrd_size, best = 0;
	bool found = false;
	if (limit > l->ram_size)
		limit = l->ram_size;
	for (unsigned i = 0; i < l->args->e820_count; i++) {
		const struct e820_entry *e = &l->args->e820[i];
		if (e->type != E820_RAM)
			continue;
		uint64_t lo = e->addr > above ? e->addr : above;
		uint64_t hi = e->size > UINT64_MAX - e->addr ? UINT64_MAX : e->addr + e->size;
		if (hi > limit)
			hi = limit;
		if (hi <= lo || hi - lo < size)
			continue;
		uint64_t at = (hi - size) & ~PAGE_MASK;
		if (at >= lo && (!found || at > best)) {
			best = at;
			found = true;
		}
	}
	if (!found)
		return fail(l, "initrd (%llu bytes) does not fit in RAM between the kernel and %#llx",
			    (unsigned long long)size, (unsigned long long)limit);
	*addr = best;
	return 0;
}

static void put_e820(uint8_t *bp, const struct e820_entry *map, unsigned n)
{
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;
		put_le64(e, map[i].addr);
		put_le64(e + 8, map[i].size);
		put_le32(e + 16, map[i].type);
	}
}

/* Check the caller's arguments that do not depend on the kernel. */
static int check_args(struct loader *l, size_t cmdline_len)
{
	const struct linux_load_args *a = l->args;
	if (a->e820_count == 0 || a->e820_count > LINUX_E820_MAX || !a->e820)
		return fail(l, "e820 map must have 1 to %d entries", LINUX_E820_MAX);
	if (a->boot_params_addr > l->ram_size || l->ram_size - a->boot_params_addr < BP_SIZE)
		return fail(l, "zero page at %#llx is outside RAM",
			    (unsigned long long)a->boot_params_addr);
	if (a->cmdline_addr > l->ram_size || l->ram_size - a->cmdline_addr <= cmdline_len)
		return fail(l, "command line at %#llx is outside RAM",
			    (unsigned long long)a->cmdline_addr);
	if (ranges_overlap(a->boot_params_addr, BP_SIZE, a->cmdline_addr, cmdline_len + 1))
		return fail(l, "zero page and command line overlap");
	if (a->initrd_size && !a->initrd)
		return fail(l, "initrd size without data");
	return 0;
}

/* True if [start, end) covers the zero page or the command line. */
static bool hits_boot_data(const struct loader *l, uint64_t start, uint64_t end, size_t cmdline_len)
{
	return ranges_overlap(start, end - start, l->args->boot_params_addr, BP_SIZE) ||
	       ranges_overlap(start, end - start, l->args->cmdline_addr, cmdline_len + 1);
}

int linux_load(uint8_t *ram, uint64_t ram_size, const struct linux_load_args *args,
	       struct linux_loaded *out, char *err, size_t errlen)
{
	struct loader l = {ram, ram_size, args, err, errlen};
	const uint8_t *img = args->kernel;
	size_t size = args->kernel_size;
	const char *cmdline = args->cmdline ? args->cmdline : "";
	size_t cmdline_len = strlen(cmdline);
	memset(out, 0, sizeof(*out));
	if (check_args(&l, cmdline_len) != 0)
		return -1;

	/* The zero page starts from the kernel's own setup header (bzImage) or
	 * a minimal one (ELF: the kernel only checks the boot flag and magic). */
	uint8_t bp[BP_SIZE] = {0};
	uint64_t initrd_limit;
	uint32_t cmdline_max;
	if (size >= 4 && memcmp(img, "\x7f" "ELF", 4) == 0) {
		if (load_elf(&l, img, size, out) != 0)
			return -1;
		put_le16(bp + HDR_BOOT_FLAG, BOOT_FLAG_MAGIC);
		put_le32(bp + HDR_MAGIC, HDRS_MAGIC);
		put_le16(bp + HDR_VERSION, SYNTH_PROTOCOL);
		put_le16(bp + HDR_XLOADFLAGS, XLF_KERNEL_64);
		initrd_limit = ELF_INITRD_LIMIT;
		cmdline_max = ELF_CMDLINE_SIZE;
	} else if (size >= HDR_MIN_END && le32(img + HDR_MAGIC) == HDRS_MAGIC) {
		size_t setup_size, hdr_end;
		if (check_bzimage(&l, img, size, &setup_size, &hdr_end) != 0)
			return -1;
		const uint8_t *pm = img + setup_size;
		size_t pm_size = size - setup_size;
		int rc = args->vmlinux ? load_unpacked(&l, out) : load_bzimage_code(&l, pm, pm_size, img, out);
		if (rc != 0)
			return -1;
		memcpy(bp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
		put_le32(bp + HDR_CODE32_START, (uint32_t)out->kernel_start);
		initrd_limit = le16(img + HDR_XLOADFLAGS) & XLF_CAN_BE_LOADED_ABOVE_4G
				       ? UINT64_MAX
				       : (uint64_t)le32(img + HDR_INITRD_ADDR_MAX) + 1;
		cmdline_max = le32(img + HDR_CMDLINE_SIZE);
	} else {
		return fail(&l, "not a bzImage or ELF kernel");
	}
	if (hits_boot_data(&l, out->kernel_start, out->kernel_end, cmdline_len))
		return fail(&l, "kernel at %#llx..%#llx overlaps the zero page or command line",
			    (unsigned long long)out->kernel_start,
			    (unsigned long long)out->kernel_end);
	if (cmdline_len > cmdline_max)
		return fail(&l, "command line too long (%zu bytes, the kernel takes %u)",
			    cmdline_len, cmdline_max);

	out->initrd_start = out->initrd_end = 0;
	if (args->initrd_size) {
		uint64_t at;
		if (place_initrd(&l, out->kernel_end, initrd_limit, &at) != 0)
			return -1;
		if (hits_boot_data(&l, at, at + args->initrd_size, cmdline_len))
			return fail(&l, "initrd overlaps the zero page or command line");
		memcpy(ram + at, args->initrd, args->initrd_size);
		out->initrd_start = at;
		out->initrd_end = at + args->initrd_size;
	}
	memcpy(ram + args->cmdline_addr, cmdline, cmdline_len + 1);

	bp[HDR_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
	bp[HDR_LOADFLAGS] |= LOADFLAG_LOADED_HIGH;
	put_le32(bp + HDR_CMD_LINE_PTR, (uint32_t)args->cmdline_addr);
	put_le32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(args->cmdline_addr >> 32));
	put_le32(bp + HDR_CMDLINE_SIZE, cmdline_max);
	put_le32(bp + HDR_RAMDISK_IMAGE, (uint32_t)out->initrd_start);
	put_le32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(out->initrd_start >> 32));
	put_le32(bp + HDR_RAMDISK_SIZE, (uint32_t)args->initrd_size);
	put_le32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)args->initrd_size >> 32));
	put_le64(bp + BP_ACPI_RSDP_ADDR, args->acpi_rsdp_addr);
	put_e820(bp, args->e820, args->e820_count);
	memcpy(ram + args->boot_params_addr, bp, BP_SIZE);
	out->boot_params = args->boot_params_addr;
	return 0;
}

int linux_e820_pc(uint64_t ram_size, struct e820_entry *out, unsigned cap)
{
	if (cap < 3 || ram_size < (2ull << 20))
		return -1;
	out[0] = (struct e820_entry){0, 0xa0000, E820_RAM};
	out[1] = (struct e820_entry){0xe0000, 0x20000, E820_RESERVED};
	out[2] = (struct e820_entry){0x100000, ram_size - 0x100000, E820_RAM};
	return 3;
}
