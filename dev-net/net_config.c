/* net_config.c - parsing and checking of the user-mode network settings. */
#include "net_config.h"

#include "parse.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ADDR(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define LOOPBACK ADDR(127, 0, 0, 1)

static const uint8_t default_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

void net_config_init(struct net_config *c)
{
	memset(c, 0, sizeof(*c));
	c->user = true;
	c->net = ADDR(10, 0, 2, 0);
	c->mask = 0xffffff00u;
	c->host = ADDR(10, 0, 2, 2);
	c->dhcpstart = ADDR(10, 0, 2, 15);
	c->dns = ADDR(10, 0, 2, 3);
	c->ipv6 = true;
	c->mtu = NET_MTU_DEFAULT;
	memcpy(c->mac, default_mac, sizeof(c->mac));
}

const char *net_addr_str(uint32_t a, char *buf, size_t n)
{
	snprintf(buf, n, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
	return buf;
}

static int fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- values ----
 * A decimal number of exactly len characters, at most max, through the one
 * number parser; here digits only: no hex, and no leading zero that
 * inet_aton would read as octal. */
static bool parse_decimal(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	if (len == 0 || (len > 1 && s[0] == '0') || !isdigit((unsigned char)s[0]))
		return false;
	const char *p = s;
	uint64_t v;
	if (parse_u64_prefix(&p, max, &v) != PARSE_OK || p != s + len)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Strict dotted quad of exactly len characters. */
static bool parse_addr(const char *s, size_t len, uint32_t *out)
{
	uint32_t a = 0;
	const char *end = s + len;
	for (int i = 0; i < 4; i++) {
		const char *dot = memchr(s, '.', (size_t)(end - s));
		const char *part_end = i < 3 ? dot : end;
		uint32_t octet;
		if (!part_end || !parse_decimal(s, (size_t)(part_end - s), 255, &octet))
			return false;
		a = a << 8 | octet;
		s = part_end + 1;
	}
	*out = a;
	return true;
}

static bool parse_port(const char *s, size_t len, uint16_t *out)
{
	uint32_t v;
	if (!parse_decimal(s, len, 65535, &v) || v == 0)
		return false;
	*out = (uint16_t)v;
	return true;
}

static int set_bool(bool *dst, const char *key, const char *value, char *err, size_t n)
{
	static const char *const yes[] = {"on", "yes", "true", "1"};
	static const char *const no[] = {"off", "no", "false", "0"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(value, yes[i]) || !strcmp(value, no[i])) {
			*dst = !strcmp(value, yes[i]);
			return 0;
		}
	}
	return fail(err, n, "%s: \"%s\" is not on or off", key, value);
}

static int set_addr(uint32_t *dst, bool *set, const char *key, const char *value, char *err, size_t n)
{
	if (!parse_addr(value, strlen(value), dst))
		return fail(err, n, "%s: \"%s\" is not an IPv4 address (a.b.c.d)", key, value);
	*set = true;
	return 0;
}

/* net = a.b.c.d/prefix or a.b.c.d/m.m.m.m (QEMU takes both). */
static int set_net(struct net_config *c, const char *value, char *err, size_t n)
{
	const char *slash = strchr(value, '/');
	uint32_t addr, mask, prefix;
	if (!slash || !parse_addr(value, (size_t)(slash - value), &addr))
		return fail(err, n, "net: \"%s\" is not a network (a.b.c.d/prefix, e.g. 10.0.2.0/24)", value);
	const char *m = slash + 1;
	if (strchr(m, '.')) {
		if (!parse_addr(m, strlen(m), &mask) || (~mask & (~mask + 1)) != 0)
			return fail(err, n, "net: \"%s\" has no valid netmask", value);
		prefix = (uint32_t)__builtin_popcount(mask);
	} else if (!parse_decimal(m, strlen(m), 32, &prefix)) {
		return fail(err, n, "net: \"%s\" has no valid prefix length", value);
	}
	/* Room for the network and broadcast addresses, host, dns and the
	 * DHCP pool: a /27 at the smallest. */
	if (prefix < 1 || prefix > 27)
		return fail(err, n, "net: \"%s\": the prefix must be 1..27", value);
	mask = 0xffffffffu << (32 - prefix);
	if (addr & ~mask)
		return fail(err, n, "net: \"%s\" has host bits set", value);
	c->net = addr;
	c->mask = mask;
	return 0;
}

static int set_mtu(struct net_config *c, const char *value, char *err, size_t n)
{
	uint32_t v;
	if (!parse_decimal(value, strlen(value), UINT32_MAX, &v) || v < NET_MTU_MIN || v > NET_MTU_MAX)
		return fail(err, n, "mtu: \"%s\" is out of range (%u..%u)", value, NET_MTU_MIN, NET_MTU_MAX);
	c->mtu = v;
	return 0;
}

static int set_mac(struct net_config *c, const char *value, char *err, size_t n)
{
	uint8_t mac[6];
	const char *p = value;
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    p[2] != (i < 5 ? ':' : '\0'))
			return fail(err, n, "mac: \"%s\" is not a MAC address (xx:xx:xx:xx:xx:xx)", value);
		char byte[5] = {'0', 'x', p[0], p[1], '\0'};
		uint64_t v;
		if (!parse_u64(byte, 0xff, &v))
			return fail(err, n, "mac: \"%s\" is not a MAC address (xx:xx:xx:xx:xx:xx)", value);
		mac[i] = (uint8_t)v;
		p += 3;
	}
	if (mac[0] & 1)
		return fail(err, n, "mac: \"%s\" is a multicast address (the first byte must be even)", value);
	static const uint8_t zero[6];
	if (!memcmp(mac, zero, sizeof(mac)))
		return fail(err, n, "mac: \"%s\" is all zeros", value);
	memcpy(c->mac, mac, sizeof(mac));
	return 0;
}

/* Letters, digits and inner hyphens, 1..63 characters. */
static bool is_label(const char *s, size_t len)
{
	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* Labels separated by dots, at most NET_DOMAIN_MAX characters. */
static bool is_domain(const char *s)
{
	if (strlen(s) > NET_DOMAIN_MAX)
		return false;
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t len = dot ? (size_t)(dot - s) : strlen(s);
		if (!is_label(s, len))
			return false;
		if (!dot)
			return true;
		s = dot + 1;
	}
}

static int set_hostname(struct net_config *c, const char *value, char *err, size_t n)
{
	if (value[0] && !is_label(value, strlen(value)))
		return fail(err, n, "hostname: \"%s\" is not a host name (1..63 letters, digits, inner '-')",
			    value);
	snprintf(c->hostname, sizeof(c->hostname), "%s", value);
	return 0;
}

static int set_domainname(struct net_config *c, const char *value, char *err, size_t n)
{
	if (value[0] && !is_domain(value))
		return fail(err, n, "domainname: \"%s\" is not a domain name", value);
	snprintf(c->domainname, sizeof(c->domainname), "%s", value);
	return 0;
}

static int add_dnssearch(struct net_config *c, const char *value, char *err, size_t n)
{
	if (!is_domain(value))
		return fail(err, n, "dnssearch: \"%s\" is not a domain name", value);
	if (c->n_dnssearch == NET_DNSSEARCH_MAX)
		return fail(err, n, "dnssearch: \"%s\": at most %d search domains", value, NET_DNSSEARCH_MAX);
	snprintf(c->dnssearch[c->n_dnssearch++], sizeof(c->dnssearch[0]), "%s", value);
	return 0;
}

/* hostfwd = tcp|udp:[hostaddr]:hostport-[guestaddr]:guestport
 * An empty protocol means tcp, as in QEMU; an empty host address means
 * 127.0.0.1 (QEMU binds all addresses; we do not); an empty guest address
 * means dhcpstart, filled in by net_config_check(). */
static int add_hostfwd(struct net_config *c, const char *value, char *err, size_t n)
{
	struct net_hostfwd f = {.host_addr = LOOPBACK};
	const char *p = value;
	const char *colon = strchr(p, ':');
	if (!colon)
		goto syntax;
	size_t len = (size_t)(colon - p);
	if (len == 3 && !strncmp(p, "udp", 3))
		f.udp = true;
	else if (len != 0 && !(len == 3 && !strncmp(p, "tcp", 3)))
		return fail(err, n, "hostfwd: \"%s\": the protocol must be tcp or udp", value);

	p = colon + 1; /* [hostaddr]:hostport- */
	colon = strchr(p, ':');
	const char *dash = colon ? strchr(colon, '-') : NULL;
	if (!colon || !dash)
		goto syntax;
	if (colon > p && !parse_addr(p, (size_t)(colon - p), &f.host_addr))
		return fail(err, n, "hostfwd: \"%s\": the host address is not an IPv4 address", value);
	if (!parse_port(colon + 1, (size_t)(dash - colon - 1), &f.host_port))
		return fail(err, n, "hostfwd: \"%s\": the host port must be 1..65535", value);

	p = dash + 1; /* [guestaddr]:guestport */
	colon = strchr(p, ':');
	if (!colon)
		goto syntax;
	if (colon > p && !parse_addr(p, (size_t)(colon - p), &f.guest_addr))
		return fail(err, n, "hostfwd: \"%s\": the guest address is not an IPv4 address", value);
	if (!parse_port(colon + 1, strlen(colon + 1), &f.guest_port))
		return fail(err, n, "hostfwd: \"%s\": the guest port must be 1..65535", value);

	for (unsigned i = 0; i < c->n_hostfwd; i++) {
		const struct net_hostfwd *o = &c->hostfwd[i];
		bool same_addr = o->host_addr == f.host_addr || !o->host_addr || !f.host_addr;
		if (o->udp == f.udp && o->host_port == f.host_port && same_addr)
			return fail(err, n, "hostfwd: \"%s\": host port %s:%u is already forwarded", value,
				    f.udp ? "udp" : "tcp", f.host_port);
	}
	if (c->n_hostfwd == NET_HOSTFWD_MAX)
		return fail(err, n, "hostfwd: \"%s\": at most %d forwards", value, NET_HOSTFWD_MAX);
	c->hostfwd[c->n_hostfwd++] = f;
	return 0;
syntax:
	return fail(err, n, "hostfwd: \"%s\" is not tcp|udp:[hostaddr]:hostport-[guestaddr]:guestport", value);
}

int net_config_set(struct net_config *c, const char *key, const char *value, char *err, size_t n)
{
	if (!strcmp(key, "user"))
		return set_bool(&c->user, key, value, err, n);
	if (!strcmp(key, "hostfwd"))
		return add_hostfwd(c, value, err, n);
	if (!strcmp(key, "net"))
		return set_net(c, value, err, n);
	if (!strcmp(key, "host"))
		return set_addr(&c->host, &c->host_set, key, value, err, n);
	if (!strcmp(key, "dhcpstart"))
		return set_addr(&c->dhcpstart, &c->dhcpstart_set, key, value, err, n);
	if (!strcmp(key, "dns"))
		return set_addr(&c->dns, &c->dns_set, key, value, err, n);
	if (!strcmp(key, "restrict"))
		return set_bool(&c->restricted, key, value, err, n);
	if (!strcmp(key, "ipv6"))
		return set_bool(&c->ipv6, key, value, err, n);
	if (!strcmp(key, "mtu"))
		return set_mtu(c, value, err, n);
	if (!strcmp(key, "mac"))
		return set_mac(c, value, err, n);
	if (!strcmp(key, "hostname"))
		return set_hostname(c, value, err, n);
	if (!strcmp(key, "domainname"))
		return set_domainname(c, value, err, n);
	if (!strcmp(key, "dnssearch"))
		return add_dnssearch(c, value, err, n);
	return fail(err, n, "%s: unknown key (user, hostfwd, net, host, dhcpstart, dns, restrict, ipv6, "
			    "mtu, mac, hostname, domainname, dnssearch)", key);
}

/* Split "key=value" at the first '=' and apply it. */
static int set_pair(struct net_config *c, const char *pair, size_t len, char *err, size_t n)
{
	char buf[NET_PAIR_MAX];
	if (len >= sizeof(buf))
		return fail(err, n, "\"%.40s...\" is too long", pair);
	memcpy(buf, pair, len);
	buf[len] = '\0';
	char *eq = strchr(buf, '=');
	if (!eq || eq == buf)
		return fail(err, n, "\"%s\" is not key=value", buf);
	*eq = '\0';
	return net_config_set(c, buf, eq + 1, err, n);
}

int net_config_set_arg(struct net_config *c, const char *key_value, char *err, size_t n)
{
	return set_pair(c, key_value, strlen(key_value), err, n);
}

int net_config_parse_nic(struct net_config *c, const char *optstr, net_pair_fn *each, void *opaque,
			 char *err, size_t n)
{
	if (!strcmp(optstr, "none")) {
		c->user = false;
		if (each)
			each(opaque, "user=off");
		return 0;
	}
	if (strncmp(optstr, "user", 4) || (optstr[4] != ',' && optstr[4] != '\0'))
		return fail(err, n, "\"%s\": only \"user[,option...]\" and \"none\" are supported", optstr);
	c->user = true;
	if (each)
		each(opaque, "user=on");
	const char *p = optstr + 4;
	while (*p == ',') {
		p++;
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char pair[NET_PAIR_MAX];
		if (len >= sizeof(pair))
			return fail(err, n, "\"%.40s...\" is too long", p);
		memcpy(pair, p, len);
		pair[len] = '\0';
		if (net_config_set_arg(c, pair, err, n))
			return -1;
		if (each)
			each(opaque, pair);
		p += len;
	}
	return 0;
}

/* ---- cross-key checks ---- */

static bool in_net(const struct net_config *c, uint32_t a)
{
	/* Neither the network address nor its broadcast address. */
	return (a & c->mask) == c->net && a != c->net && a != (c->net | ~c->mask);
}

static int check_in_net(const struct net_config *c, const char *key, uint32_t a, char *err, size_t n)
{
	if (in_net(c, a))
		return 0;
	char addr[16], net[16];
	return fail(err, n, "%s: %s is not a host address inside net %s/%d", key, net_addr_str(a, addr, sizeof(addr)),
		    net_addr_str(c->net, net, sizeof(net)), __builtin_popcount(c->mask));
}

int net_config_check(struct net_config *c, char *err, size_t n)
{
	/* QEMU keeps the host part of the historic addresses in a new net;
	 * with a prefix of at most 27 they always fit. */
	if (!c->host_set)
		c->host = c->net | (ADDR(10, 0, 2, 2) & ~c->mask);
	if (!c->dhcpstart_set)
		c->dhcpstart = c->net | (ADDR(10, 0, 2, 15) & ~c->mask);
	if (!c->dns_set)
		c->dns = c->net | (ADDR(10, 0, 2, 3) & ~c->mask);
	if (check_in_net(c, "host", c->host, err, n) || check_in_net(c, "dns", c->dns, err, n) ||
	    check_in_net(c, "dhcpstart", c->dhcpstart, err, n))
		return -1;
	char a[16], b[16];
	if (c->dns == c->host)
		return fail(err, n, "dns: %s is also the host address", net_addr_str(c->dns, a, sizeof(a)));
	uint32_t pool_end = c->dhcpstart + NET_DHCP_POOL - 1;
	if (!in_net(c, pool_end))
		return fail(err, n, "dhcpstart: %s leaves no room for the %d DHCP leases inside net",
			    net_addr_str(c->dhcpstart, a, sizeof(a)), NET_DHCP_POOL);
	if (c->host - c->dhcpstart < NET_DHCP_POOL || c->dns - c->dhcpstart < NET_DHCP_POOL)
		return fail(err, n, "dhcpstart: %s: the DHCP leases up to %s overlap the %s address",
			    net_addr_str(c->dhcpstart, a, sizeof(a)),
			    net_addr_str(pool_end, b, sizeof(b)),
			    c->host - c->dhcpstart < NET_DHCP_POOL ? "host" : "dns");
	for (unsigned i = 0; i < c->n_hostfwd; i++) {
		struct net_hostfwd *f = &c->hostfwd[i];
		if (!f->guest_addr)
			f->guest_addr = c->dhcpstart;
		if (!in_net(c, f->guest_addr) || f->guest_addr == c->host || f->guest_addr == c->dns)
			return fail(err, n, "hostfwd: guest address %s is not a guest address inside net",
				    net_addr_str(f->guest_addr, a, sizeof(a)));
	}
	return 0;
}
