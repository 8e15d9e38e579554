/* vmconf.c - vm.conf parsing, value checking, cross-key checks. */
#include "vmconf.h"
#include "child_argv.h" /* the devices' sections */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
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
	[VMCONF_FLAT_ADDR] = {"vm", "flat-addr"},
	[VMCONF_INITRD] = {"vm", "initrd"},
	[VMCONF_CMDLINE] = {"vm", "cmdline"},
	[VMCONF_STDIO] = {"serial", "stdio"},
	[VMCONF_DEBUGCON] = {"serial", "debugcon"},
	[VMCONF_MMIO_UART] = {"serial", "mmio-uart"},
	[VMCONF_HVC0] = {"serial", "hvc0"},
	[VMCONF_CONSOLE] = {"serial", "console"},
	[VMCONF_DEBUGCON_MMIO] = {"serial", "debugcon-mmio"},
	[VMCONF_REBOOT] = {"vm", "reboot"},
	[VMCONF_SANDBOX] = {"vm", "sandbox"},
	[VMCONF_JIT] = {"vm", "jit"},
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
	net_config_init(&c->net);
	c->hvc0 = true;
	c->sandbox = true;
	c->jit = true; /* where the host has a JIT: vmm-core knows (an x86-64 host) */
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

/* ---- the network: net_config's keys, remembered for dev-net ---- */

static int net_arg_add(struct vmconf *c, const char *key_value, struct vmconf_origin origin)
{
	if (c->n_net_args >= VMCONF_NET_ARGS_MAX || strlen(key_value) >= NET_PAIR_MAX)
		return -1;
	snprintf(c->net_args[c->n_net_args].text, NET_PAIR_MAX, "%s", key_value);
	c->net_args[c->n_net_args++].origin = origin;
	return 0;
}

struct nic_parse {
	struct vmconf *conf;
	const char *flag;
	bool overflow;
};

static void nic_pair(void *opaque, const char *key_value)
{
	struct nic_parse *p = opaque;
	if (net_arg_add(p->conf, key_value, (struct vmconf_origin){.flag = p->flag}))
		p->overflow = true;
}

int vmconf_set_nic(struct vmconf *c, const char *flag, const char *optstr, char *why, size_t whylen)
{
	net_config_init(&c->net);
	c->n_net_args = 0;
	c->net_listed = true;
	struct nic_parse p = {.conf = c, .flag = flag};
	if (net_config_parse_nic(&c->net, optstr, nic_pair, &p, why, whylen))
		return -1;
	if (p.overflow) {
		snprintf(why, whylen, "more than %d options", VMCONF_NET_ARGS_MAX);
		return -1;
	}
	return 0;
}

/* Where the last key_value starting with "key:" or "key=" came from, for
 * net_config_check's errors (which begin with the key's name). */
static void net_where(const struct vmconf *c, const char *err, char *buf, size_t n)
{
	size_t klen = strcspn(err, ":");
	for (unsigned i = c->n_net_args; i-- > 0;) {
		const char *t = c->net_args[i].text;
		if (strncmp(t, err, klen) || t[klen] != '=')
			continue;
		const struct vmconf_origin *o = &c->net_args[i].origin;
		if (o->flag)
			snprintf(buf, n, "%s", o->flag);
		else
			snprintf(buf, n, "%s:%d: [net]", c->conf_path, o->line);
		return;
	}
	snprintf(buf, n, "[net]");
}

static int net_check(const struct vmconf *c, char *err, size_t errlen)
{
	if (!c->net_listed || !c->net.user)
		return 0;
	struct net_config checked = c->net;
	char why[NET_ERR_MAX], where[VMCONF_PATH_MAX + 32];
	if (!net_config_check(&checked, why, sizeof(why)))
		return 0;
	net_where(c, why, where, sizeof(where));
	snprintf(err, errlen, "%s %s", where, why);
	return -1;
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
	case VMCONF_FLAT_ADDR: c->flat_addr = 0; break;
	case VMCONF_INITRD: c->initrd[0] = '\0'; break;
	case VMCONF_CMDLINE: c->cmdline[0] = '\0'; break;
	default: return; /* not a guest file: nothing replaces it */
	}
	c->origin[key] = (struct vmconf_origin){0};
}

/* ---- values ---- */

/* A number with an optional K, M or G; a bare number means MiB, as in QEMU.
 * A value too large for 64 bits comes out as UINT64_MAX: out of range. */
static bool parse_size(const char *s, uint64_t *out)
{
	uint64_t v;
	enum parse_status st = parse_u64_prefix(&s, UINT64_MAX, &v);
	if (st == PARSE_SYNTAX)
		return false;
	unsigned shift = 20;
	char suffix = (char)toupper((unsigned char)*s);
	if (suffix == 'K' || suffix == 'M' || suffix == 'G') {
		shift = suffix == 'K' ? 10 : suffix == 'M' ? 20 : 30;
		s++;
	}
	if (*s)
		return false;
	*out = (st == PARSE_RANGE || v > (UINT64_MAX >> shift)) ? UINT64_MAX : v << shift;
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
		snprintf(why, n, "\"%s\" is out of range (2M .. 512G)", value);
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
	if (!parse_u64(value, VMCONF_CPUS_MAX, &v) || v < 1) {
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
	if (!parse_u64(value, 0xffff, &port)) {
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
	if (!parse_u64(value, UINT64_MAX, &addr)) {
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

/* A guest physical address below the 3 GiB the board's RAM may reach. */
static int set_address(uint64_t *to, const char *value, char *why, size_t n)
{
	if (!parse_u64(value, VMCONF_MEMORY_MAX - 1, to)) {
		snprintf(why, n, "\"%s\" is not an address below 3 GiB (e.g. 0x10000)", value);
		return -1;
	}
	return 0;
}

static int set_debugcon_mmio(struct vmconf *c, const char *value, char *why, size_t n)
{
	if (!strcmp(value, "off")) {
		c->has_debugcon_mmio = false;
		return 0;
	}
	if (set_address(&c->debugcon_mmio, value, why, n))
		return -1;
	c->has_debugcon_mmio = true;
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
	case VMCONF_FLAT_ADDR:
		return set_address(&c->flat_addr, value, why, n);
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
	case VMCONF_HVC0:
		return set_bool(&c->hvc0, value, why, n);
	case VMCONF_CONSOLE:
		if (strcmp(value, "ttyS0") && strcmp(value, "hvc0")) {
			snprintf(why, n, "\"%s\" is not a console (use ttyS0 or hvc0)", value);
			return -1;
		}
		c->console_hvc0 = !strcmp(value, "hvc0");
		return 0;
	case VMCONF_DEBUGCON_MMIO:
		return set_debugcon_mmio(c, value, why, n);
	case VMCONF_REBOOT:
		if (strcmp(value, "exit") && strcmp(value, "restart")) {
			snprintf(why, n, "\"%s\" is not a reboot action (use restart or exit)", value);
			return -1;
		}
		c->reboot_exits = !strcmp(value, "exit");
		return 0;
	case VMCONF_SANDBOX:
		return set_bool(&c->sandbox, value, why, n);
	case VMCONF_JIT:
		return set_bool(&c->jit, value, why, n);
	case VMCONF_KEY_COUNT:
		break;
	}
	snprintf(why, n, "no such key");
	return -1;
}

/* ---- vm.conf ----
 * The INI dialect of vm.conf, parsed here rather than with libinih: Debian's
 * archive has no source of libinih for the Windows build, and one parser for
 * both platforms beats two.  The grammar, line by line:
 *   blank, or a comment starting with ';' or '#'
 *   [section]                     (vm, or a device's: child_argv.c)
 *   key = value [ ;comment]       (an inline comment needs a blank before ';')
 * Leading and trailing blanks are ignored; there are no continuation lines. */

struct conf_parser {
	struct vmconf *conf;
	char base_dir[VMCONF_PATH_MAX];
	char section[16]; /* "" before the first [section] */
	int line;
	char *err;
	size_t errlen;
};

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* [start, *end) without blanks at either end. */
static char *trim(char *start, char **end)
{
	while (start < *end && is_blank(*start))
		start++;
	while (*end > start && is_blank((*end)[-1]))
		(*end)--;
	return start;
}

static int conf_section(struct conf_parser *p, char *text, char *end)
{
	struct vmconf *c = p->conf;
	char *close = memchr(text, ']', (size_t)(end - text));
	char *after = close ? close + 1 : end;
	after = trim(after, &end);
	if (!close || (after < end && *after != ';' && *after != '#')) {
		snprintf(p->err, p->errlen, "%s:%d: not a [section] or a key = value line",
			 c->conf_path, p->line);
		return -1;
	}
	char *name_end = close;
	char *name = trim(text + 1, &name_end);
	size_t len = (size_t)(name_end - name);
	if (!(len == 2 && !memcmp(name, "vm", 2)) && !device_program_for_section(name, len)) {
		char known[128] = "[vm]";
		for (unsigned i = 0; i < ndevice_programs; i++)
			snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s[%s]",
				 i + 1 == ndevice_programs ? " and " : ", ", device_programs[i].section);
		snprintf(p->err, p->errlen, "%s:%d: unknown section [%.*s] (vm.conf has %s)",
			 c->conf_path, p->line, (int)len, name, known);
		return -1;
	}
	if (len >= sizeof(p->section)) {
		snprintf(p->err, p->errlen, "%s:%d: section name [%.*s] is too long", c->conf_path,
			 p->line, (int)len, name);
		return -1;
	}
	memcpy(p->section, name, len);
	p->section[len] = '\0';
	if (!strcmp(p->section, "net"))
		c->net_listed = true;
	return 0;
}

static int conf_key(struct conf_parser *p, char *text, char *end)
{
	struct vmconf *c = p->conf;
	char *equals = memchr(text, '=', (size_t)(end - text));
	if (!equals) {
		snprintf(p->err, p->errlen, "%s:%d: not a [section] or a key = value line",
			 c->conf_path, p->line);
		return -1;
	}
	char *name_end = equals;
	char *name = trim(text, &name_end);
	*name_end = '\0';
	char *value = equals + 1;
	for (char *q = value; q < end; q++) {
		if (*q == ';' && (q == value || is_blank(q[-1]))) {
			end = q; /* an inline comment */
			break;
		}
	}
	value = trim(value, &end);
	*end = '\0';

	if (!p->section[0]) {
		snprintf(p->err, p->errlen, "%s:%d: %s: outside a section (put it under [vm] or [serial])",
			 c->conf_path, p->line, name);
		return -1;
	}
	if (!strcmp(p->section, "net")) {
		/* net_config's keys; its errors begin with the key's name */
		char why[NET_ERR_MAX], pair[NET_PAIR_MAX];
		if (net_config_set(&c->net, name, value, why, sizeof(why))) {
			snprintf(p->err, p->errlen, "%s:%d: [net] %s", c->conf_path, p->line, why);
			return -1;
		}
		snprintf(pair, sizeof(pair), "%s=%s", name, value);
		if (net_arg_add(c, pair, (struct vmconf_origin){.line = p->line})) {
			snprintf(p->err, p->errlen, "%s:%d: [net] %s: too many or too long [net] keys",
				 c->conf_path, p->line, name);
			return -1;
		}
		return 0;
	}
	int key = -1;
	for (int k = 0; k < VMCONF_KEY_COUNT; k++) {
		if (!strcmp(p->section, key_names[k].section) && !strcmp(name, key_names[k].name))
			key = k;
	}
	if (key < 0) {
		char known[256] = "";
		for (int k = 0; k < VMCONF_KEY_COUNT; k++) {
			if (!strcmp(p->section, key_names[k].section))
				snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
					 known[0] ? ", " : "", key_names[k].name);
		}
		snprintf(p->err, p->errlen, "%s:%d: [%s] %s: unknown key (the [%s] keys are %s)",
			 c->conf_path, p->line, p->section, name, p->section, known);
		return -1;
	}
	if (c->origin[key].line > 0) {
		snprintf(p->err, p->errlen, "%s:%d: [%s] %s: already set on line %d", c->conf_path,
			 p->line, p->section, name, c->origin[key].line);
		return -1;
	}
	char why[VMCONF_ERR_MAX];
	if (vmconf_set(c, (enum vmconf_key)key, value, p->base_dir, why, sizeof(why))) {
		snprintf(p->err, p->errlen, "%s:%d: [%s] %s: %s", c->conf_path, p->line, p->section,
			 name, why);
		return -1;
	}
	c->origin[key].line = p->line;
	return 0;
}

/* Parse the NUL-terminated text line by line; stop at the first error. */
static int conf_parse_text(struct conf_parser *p, char *text)
{
	/* A UTF-8 byte order mark, as some Windows editors write. */
	if (!strncmp(text, "\xEF\xBB\xBF", 3))
		text += 3;
	while (*text) {
		char *newline = strchr(text, '\n');
		char *end = newline ? newline : text + strlen(text);
		char *next = newline ? newline + 1 : end;
		p->line++;
		if (end > text && end[-1] == '\r')
			end--;
		char *start = trim(text, &end);
		int rc = 0;
		if (start == end || *start == ';' || *start == '#')
			rc = 0;
		else if (*start == '[')
			rc = conf_section(p, start, end);
		else
			rc = conf_key(p, start, end);
		if (rc)
			return -1;
		text = next;
	}
	return 0;
}

/* The whole file in memory (NUL-terminated), or NULL with the reason in err. */
static char *read_conf_file(const char *path, char *err, size_t errlen)
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
	return text;
}

int vmconf_parse_file(struct vmconf *c, const char *path, char *err, size_t errlen)
{
	if (strlen(path) >= sizeof(c->conf_path)) {
		snprintf(err, errlen, "vm.conf path is too long");
		return -1;
	}
	strcpy(c->conf_path, path);

	char *text = read_conf_file(path, err, errlen);
	if (!text)
		return -1;

	struct conf_parser p = {.conf = c, .err = err, .errlen = errlen};
	/* Relative paths in the file are relative to the file's directory:
	 * everything up to and including the last separator. */
	const char *slash = strrchr(path, '/');
	const char *backslash = strrchr(path, '\\');
	const char *sep = slash > backslash ? slash : backslash;
	if (sep)
		snprintf(p.base_dir, sizeof(p.base_dir), "%.*s", (int)(sep - path + 1), path);

	int rc = conf_parse_text(&p, text);
	free(text);
	return rc;
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
	if (c->console_hvc0 && !c->hvc0) {
		vmconf_where(c, VMCONF_CONSOLE, where, sizeof(where));
		snprintf(err, errlen, "%s: hvc0 is the console but [serial] hvc0 is off", where);
		return -1;
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
	return net_check(c, err, errlen);
}
