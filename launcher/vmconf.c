/* vmconf.c - vm.conf parsing (libinih), value checking, cross-key checks. */
#include "vmconf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A vm.conf is a few lines; anything this big is not one. */
#define CONF_FILE_MAX (1u << 20)

static const struct {
	const char *section;
	const char *name;
} key_names[VMCONF_KEY_COUNT] = {
	[VMCONF_ENGINE] = {"vm", "engine"},
	[VMCONF_MEMORY] = {"vm", "memory"},
	[VMCONF_CPUS] = {"vm", "cpus"},
	[VMCONF_KERNEL] = {"vm", "kernel"},
	[VMCONF_FLAT] = {"vm", "flat"},
	[VMCONF_FLAT_MODE] = {"vm", "flat-mode"},
	[VMCONF_INITRD] = {"vm", "initrd"},
	[VMCONF_CMDLINE] = {"vm", "cmdline"},
	[VMCONF_STDIO] = {"serial", "stdio"},
	[VMCONF_DEBUGCON] = {"serial", "debugcon"},
	[VMCONF_MMIO_UART] = {"serial", "mmio-uart"},
};

void vmconf_init(struct vmconf *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->engine, "auto");
	c->memory = 256ull << 20;
	c->cpus = 1;
	c->flat_mode = VMCONF_FLAT_REAL;
	c->stdio = true;
	c->debugcon = -1;
}

void vmconf_where(const struct vmconf *c, enum vmconf_key key, char *buf, size_t n)
{
	const struct vmconf_origin *o = &c->origin[key];
	if (o->flag)
		snprintf(buf, n, "%s", o->flag);
	else if (o->line > 0)
		snprintf(buf, n, "%s:%d: [%s] %s", c->conf_path, o->line, key_names[key].section,
			 key_names[key].name);
	else
		snprintf(buf, n, "[%s] %s", key_names[key].section, key_names[key].name);
}

bool vmconf_is_set(const struct vmconf *c, enum vmconf_key key)
{
	return c->origin[key].flag || c->origin[key].line > 0;
}

void vmconf_unset_guest_key(struct vmconf *c, enum vmconf_key key)
{
	switch (key) {
	case VMCONF_KERNEL: c->kernel[0] = '\0'; break;
	case VMCONF_FLAT: c->flat[0] = '\0'; break;
	case VMCONF_FLAT_MODE: c->flat_mode = VMCONF_FLAT_REAL; break;
	case VMCONF_INITRD: c->initrd[0] = '\0'; break;
	case VMCONF_CMDLINE: c->cmdline[0] = '\0'; break;
	default: return; /* not a guest file: nothing replaces it */
	}
	c->origin[key] = (struct vmconf_origin){0};
}

/* ---- values ---- */

/* A decimal number, or hexadecimal with 0x.  No sign, no blanks. */
static bool parse_u64(const char *s, uint64_t *out)
{
	bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	const char *digits = hex ? s + 2 : s;
	/* strtoull alone would also take blanks, a sign, or nothing at all. */
	if (hex ? !isxdigit((unsigned char)digits[0]) : !isdigit((unsigned char)digits[0]))
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(digits, &end, hex ? 16 : 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* Decimal with an optional K, M or G; a bare number means MiB, as in QEMU.
 * A value too large for 64 bits comes out as UINT64_MAX: out of range. */
static bool parse_size(const char *s, uint64_t *out)
{
	if (!isdigit((unsigned char)s[0]))
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 20;
	char suffix = (char)toupper((unsigned char)*end);
	if (suffix == 'K' || suffix == 'M' || suffix == 'G') {
		shift = suffix == 'K' ? 10 : suffix == 'M' ? 20 : 30;
		end++;
	}
	if (*end)
		return false;
	*out = (errno || v > (UINT64_MAX >> shift)) ? UINT64_MAX : (uint64_t)v << shift;
	return true;
}

static bool is_absolute(const char *p)
{
	return p[0] == '/' || p[0] == '\\' || (isalpha((unsigned char)p[0]) && p[1] == ':');
}

static int set_path(char *dst, const char *value, const char *base_dir, char *why, size_t n)
{
	if (!value[0]) {
		snprintf(why, n, "is empty (give a file name)");
		return -1;
	}
	const char *prefix = is_absolute(value) ? "" : base_dir;
	if (strlen(prefix) + strlen(value) >= VMCONF_PATH_MAX) {
		snprintf(why, n, "path is too long");
		return -1;
	}
	snprintf(dst, VMCONF_PATH_MAX, "%s%s", prefix, value);
	return 0;
}

static int set_bool(bool *dst, const char *value, char *why, size_t n)
{
	static const char *const yes[] = {"on", "yes", "true", "1"};
	static const char *const no[] = {"off", "no", "false", "0"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(value, yes[i]) || !strcmp(value, no[i])) {
			*dst = !strcmp(value, yes[i]);
			return 0;
		}
	}
	snprintf(why, n, "\"%s\" is not on or off", value);
	return -1;
}

static int set_engine(struct vmconf *c, const char *value, char *why, size_t n)
{
	static const char *const engines[] = {"auto", "kvm", "whpx", "soft"};
	/* QEMU users type tcg for the software CPU. */
	const char *name = strcmp(value, "tcg") ? value : "soft";
	for (size_t i = 0; i < sizeof(engines) / sizeof(engines[0]); i++) {
		if (!strcmp(name, engines[i])) {
			strcpy(c->engine, engines[i]);
			return 0;
		}
	}
	snprintf(why, n, "\"%s\" is not an engine (use auto, kvm, whpx or soft)", value);
	return -1;
}

static int set_memory(struct vmconf *c, const char *value, char *why, size_t n)
{
	uint64_t bytes;
	if (!parse_size(value, &bytes)) {
		snprintf(why, n, "\"%s\" is not a size (use e.g. 256M or 1G)", value);
		return -1;
	}
	if (bytes < VMCONF_MEMORY_MIN || bytes > VMCONF_MEMORY_MAX) {
		snprintf(why, n, "\"%s\" is out of range (2M .. 3G)", value);
		return -1;
	}
	if (bytes % 4096) {
		snprintf(why, n, "\"%s\" is not a multiple of 4K", value);
		return -1;
	}
	c->memory = bytes;
	return 0;
}

static int set_cpus(struct vmconf *c, const char *value, char *why, size_t n)
{
	uint64_t v;
	if (!parse_u64(value, &v) || v < 1 || v > VMCONF_CPUS_MAX) {
		snprintf(why, n, "\"%s\" is not a number of CPUs (1 .. %d)", value, VMCONF_CPUS_MAX);
		return -1;
	}
	c->cpus = (int)v;
	return 0;
}

static int set_flat_mode(struct vmconf *c, const char *value, char *why, size_t n)
{
	if (!strcmp(value, "real"))
		c->flat_mode = VMCONF_FLAT_REAL;
	else if (!strcmp(value, "long"))
		c->flat_mode = VMCONF_FLAT_LONG;
	else {
		snprintf(why, n, "\"%s\" is not a flat mode (use real or long)", value);
		return -1;
	}
	return 0;
}

static int set_debugcon(struct vmconf *c, const char *value, char *why, size_t n)
{
	uint64_t port;
	if (!strcmp(value, "off")) {
		c->debugcon = -1;
		return 0;
	}
	if (!parse_u64(value, &port) || port > 0xffff) {
		snprintf(why, n, "\"%s\" is not a port (0 .. 0xffff, or off)", value);
		return -1;
	}
	c->debugcon = (int)port;
	return 0;
}

static int set_mmio_uart(struct vmconf *c, const char *value, char *why, size_t n)
{
	uint64_t addr;
	if (!strcmp(value, "off")) {
		c->has_mmio_uart = false;
		return 0;
	}
	if (!parse_u64(value, &addr)) {
		snprintf(why, n, "\"%s\" is not an address (e.g. 0xd0000000, or off)", value);
		return -1;
	}
	/* Its eight byte-wide registers, in one naturally aligned block of the
	 * 32-bit MMIO hole (the board has no MMIO above 4 GiB yet). */
	if (addr % 8 || addr > (4ull << 30) - 8) {
		snprintf(why, n, "\"%s\" is not a multiple of 8 below 4 GiB", value);
		return -1;
	}
	c->has_mmio_uart = true;
	c->mmio_uart = addr;
	return 0;
}

/* kernel and flat are two ways to give the guest: one of them, never both. */
static int check_not_both(const struct vmconf *c, enum vmconf_key other, char *why, size_t n)
{
	if (!vmconf_is_set(c, other))
		return 0;
	char where[VMCONF_PATH_MAX + 64];
	vmconf_where(c, other, where, sizeof(where));
	snprintf(why, n, "cannot be combined with %s (give either kernel or flat)", where);
	return -1;
}

int vmconf_set(struct vmconf *c, enum vmconf_key key, const char *value, const char *base_dir,
	       char *why, size_t n)
{
	switch (key) {
	case VMCONF_ENGINE:
		return set_engine(c, value, why, n);
	case VMCONF_MEMORY:
		return set_memory(c, value, why, n);
	case VMCONF_CPUS:
		return set_cpus(c, value, why, n);
	case VMCONF_KERNEL:
		if (check_not_both(c, VMCONF_FLAT, why, n))
			return -1;
		return set_path(c->kernel, value, base_dir, why, n);
	case VMCONF_FLAT:
		if (check_not_both(c, VMCONF_KERNEL, why, n))
			return -1;
		return set_path(c->flat, value, base_dir, why, n);
	case VMCONF_FLAT_MODE:
		return set_flat_mode(c, value, why, n);
	case VMCONF_INITRD:
		return set_path(c->initrd, value, base_dir, why, n);
	case VMCONF_CMDLINE:
		if (strlen(value) >= VMCONF_CMDLINE_MAX) {
			snprintf(why, n, "is longer than %d characters", VMCONF_CMDLINE_MAX - 1);
			return -1;
		}
		strcpy(c->cmdline, value);
		return 0;
	case VMCONF_STDIO:
		return set_bool(&c->stdio, value, why, n);
	case VMCONF_DEBUGCON:
		return set_debugcon(c, value, why, n);
	case VMCONF_MMIO_UART:
		return set_mmio_uart(c, value, why, n);
	case VMCONF_KEY_COUNT:
		break;
	}
	snprintf(why, n, "no such key");
	return -1;
}

/* ---- vm.conf ---- */

/* inih reads lines through this reader (ini_parse_stream) rather than from
 * the file, so that:
 *  - the handler knows the line it is called for (Debian's libinih is built
 *    without INI_HANDLER_LINENO);
 *  - a line longer than inih's buffer is an error here instead of being
 *    split silently into two lines;
 *  - leading blanks are dropped: inih would take an indented line as the
 *    continuation of the previous value (its multi-line values);
 *  - a section we do not know is an error even when it holds no key.
 * Inline comments (" ; ...", after a blank) are stripped by inih itself: its
 * default build, which Debian's is, has INI_ALLOW_INLINE_COMMENTS on. */
struct conf_reader {
	struct vmconf *conf;
	const char *next, *end; /* the part of the file inih has not read */
	int line;               /* number of the line inih has last read */
	char base_dir[VMCONF_PATH_MAX];
	bool failed;  /* err holds the first error we found; stop */
	int err_line; /* its line: inih may have found a syntax error before */
	char *err;
	size_t errlen;
};

static bool known_section(const char *name, size_t len)
{
	return (len == 2 && !memcmp(name, "vm", 2)) || (len == 6 && !memcmp(name, "serial", 6));
}

static char *conf_read_line(char *str, int num, void *stream)
{
	struct conf_reader *r = stream;
	if (r->failed || r->next >= r->end)
		return NULL;
	const char *start = r->next;
	const char *newline = memchr(start, '\n', (size_t)(r->end - start));
	const char *stop = newline ? newline + 1 : r->end;
	r->next = stop;
	r->line++;

	while (start < stop && (*start == ' ' || *start == '\t'))
		start++;
	size_t len = (size_t)(stop - start);
	size_t text_len = len;
	while (text_len > 0 && (start[text_len - 1] == '\n' || start[text_len - 1] == '\r'))
		text_len--;
	/* inih's buffer holds num - 1 characters: the text, "\r\n" and room. */
	if (text_len + 3 > (size_t)num) {
		snprintf(r->err, r->errlen, "%s:%d: line is longer than %d characters",
			 r->conf->conf_path, r->line, num - 3);
		r->failed = true;
		r->err_line = r->line;
		return NULL;
	}
	if (start[0] == '[') {
		const char *close = memchr(start, ']', text_len);
		if (close && !known_section(start + 1, (size_t)(close - start - 1))) {
			snprintf(r->err, r->errlen,
				 "%s:%d: unknown section [%.*s] (vm.conf has [vm] and [serial])",
				 r->conf->conf_path, r->line, (int)(close - start - 1), start + 1);
			r->failed = true;
			return NULL;
		}
	}
	memcpy(str, start, len);
	str[len] = '\0';
	return str;
}

static int conf_on_key(void *user, const char *section, const char *name, const char *value)
{
	struct conf_reader *r = user;
	struct vmconf *c = r->conf;
	if (r->failed)
		return 0;
	r->failed = true; /* until the key is taken */
	r->err_line = r->line;

	if (!section[0]) {
		snprintf(r->err, r->errlen, "%s:%d: %s: outside a section (put it under [vm] or [serial])",
			 c->conf_path, r->line, name);
		return 0;
	}
	int key = -1;
	for (int k = 0; k < VMCONF_KEY_COUNT; k++) {
		if (!strcmp(section, key_names[k].section) && !strcmp(name, key_names[k].name))
			key = k;
	}
	if (key < 0) {
		char known[256] = "";
		for (int k = 0; k < VMCONF_KEY_COUNT; k++) {
			if (!strcmp(section, key_names[k].section))
				snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
					 known[0] ? ", " : "", key_names[k].name);
		}
		snprintf(r->err, r->errlen, "%s:%d: [%s] %s: unknown key (the [%s] keys are %s)",
			 c->conf_path, r->line, section, name, section, known);
		return 0;
	}
	if (c->origin[key].line > 0) {
		snprintf(r->err, r->errlen, "%s:%d: [%s] %s: already set on line %d", c->conf_path,
			 r->line, section, name, c->origin[key].line);
		return 0;
	}
	char why[VMCONF_ERR_MAX];
	if (vmconf_set(c, (enum vmconf_key)key, value, r->base_dir, why, sizeof(why))) {
		snprintf(r->err, r->errlen, "%s:%d: [%s] %s: %s", c->conf_path, r->line, section,
			 name, why);
		return 0;
	}
	c->origin[key].line = r->line;
	r->failed = false;
	return 1;
}

/* The whole file in memory (NUL-terminated), or NULL with the reason in err. */
static char *read_conf_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	char *text = malloc(CONF_FILE_MAX + 1);
	size_t n = text ? fread(text, 1, CONF_FILE_MAX + 1, f) : 0;
	bool read_error = ferror(f);
	fclose(f);
	if (!text || read_error) {
		snprintf(err, errlen, "%s: cannot read: %s", path, text ? "read error" : "out of memory");
		free(text);
		return NULL;
	}
	if (n > CONF_FILE_MAX || memchr(text, '\0', n)) {
		snprintf(err, errlen, "%s: not a vm.conf (%s)", path,
			 n > CONF_FILE_MAX ? "larger than 1 MiB" : "binary data");
		free(text);
		return NULL;
	}
	text[n] = '\0';
	*len = n;
	return text;
}

int vmconf_parse_file(struct vmconf *c, const char *path, char *err, size_t errlen)
{
	if (strlen(path) >= sizeof(c->conf_path)) {
		snprintf(err, errlen, "vm.conf path is too long");
		return -1;
	}
	strcpy(c->conf_path, path);

	size_t len;
	char *text = read_conf_file(path, &len, err, errlen);
	if (!text)
		return -1;

	struct conf_reader r = {.conf = c, .next = text, .end = text + len, .err = err, .errlen = errlen};
	/* inih would skip a UTF-8 byte order mark, but only if it came first:
	 * drop it here so the reader's own checks see the line as written. */
	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
		r.next += 3;
	/* Relative paths in the file are relative to the file's directory:
	 * everything up to and including the last separator. */
	const char *slash = strrchr(path, '/');
	const char *backslash = strrchr(path, '\\');
	const char *sep = slash > backslash ? slash : backslash;
	if (sep)
		snprintf(r.base_dir, sizeof(r.base_dir), "%.*s", (int)(sep - path + 1), path);

	int rc = ini_parse_stream(conf_read_line, &r, conf_on_key, &r);
	free(text);
	/* ini_parse_stream returns the line of the first error, ours or its own. */
	if (rc > 0 && (!r.failed || rc < r.err_line)) {
		snprintf(err, errlen, "%s:%d: not a [section] or a key = value line", path, rc);
		return -1;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot parse: out of memory", path);
		return -1;
	}
	return r.failed ? -1 : 0;
}

/* ---- checks across keys ---- */

static int check_file(const struct vmconf *c, enum vmconf_key key, const char *path,
		      uint64_t *size, char *err, size_t errlen)
{
	char where[VMCONF_PATH_MAX + 64];
	vmconf_where(c, key, where, sizeof(where));
	/* stat first: on Windows, opening a directory fails as "Permission
	 * denied", which would hide the real problem. */
	struct stat st;
	if (stat(path, &st)) {
		snprintf(err, errlen, "%s: cannot read \"%s\": %s", where, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: \"%s\" is not a regular file", where, path);
		return -1;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot read \"%s\": %s", where, path, strerror(errno));
		return -1;
	}
	fclose(f);
	if (st.st_size == 0) {
		snprintf(err, errlen, "%s: \"%s\" is empty", where, path);
		return -1;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

int vmconf_check(const struct vmconf *c, char *err, size_t errlen)
{
	char where[VMCONF_PATH_MAX + 64];
	uint64_t size;

	if (!c->kernel[0] && !c->flat[0]) {
		snprintf(err, errlen, "%s%sno guest to run: set kernel or flat in [vm], or give -kernel or --flat",
			 c->conf_path, c->conf_path[0] ? ": " : "");
		return -1;
	}
	if (c->kernel[0] && check_file(c, VMCONF_KERNEL, c->kernel, &size, err, errlen))
		return -1;
	if (c->flat[0]) {
		if (check_file(c, VMCONF_FLAT, c->flat, &size, err, errlen))
			return -1;
		if (size > c->memory) {
			vmconf_where(c, VMCONF_FLAT, where, sizeof(where));
			snprintf(err, errlen, "%s: \"%s\" (%llu bytes) does not fit in memory (%llu bytes)",
				 where, c->flat, (unsigned long long)size, (unsigned long long)c->memory);
			return -1;
		}
	}
	static const enum vmconf_key kernel_only[] = {VMCONF_INITRD, VMCONF_CMDLINE};
	for (size_t i = 0; i < sizeof(kernel_only) / sizeof(kernel_only[0]); i++) {
		if (!c->kernel[0] && vmconf_is_set(c, kernel_only[i])) {
			vmconf_where(c, kernel_only[i], where, sizeof(where));
			snprintf(err, errlen, "%s: only for a kernel, and the guest is a flat binary", where);
			return -1;
		}
	}
	if (!c->flat[0] && vmconf_is_set(c, VMCONF_FLAT_MODE)) {
		vmconf_where(c, VMCONF_FLAT_MODE, where, sizeof(where));
		snprintf(err, errlen, "%s: only for a flat binary, and the guest is a kernel", where);
		return -1;
	}
	if (c->initrd[0] && check_file(c, VMCONF_INITRD, c->initrd, &size, err, errlen))
		return -1;
	if (c->has_mmio_uart && c->mmio_uart < c->memory) {
		vmconf_where(c, VMCONF_MMIO_UART, where, sizeof(where));
		snprintf(err, errlen, "%s: 0x%llx is inside guest RAM (below 0x%llx)", where,
			 (unsigned long long)c->mmio_uart, (unsigned long long)c->memory);
		return -1;
	}
	return 0;
}
