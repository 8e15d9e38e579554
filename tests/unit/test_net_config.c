/* test_net_config.c - dev-net's [net] keys and -nic options: QEMU's
 * defaults, every key good and bad, hostfwd syntax, the cross-key checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "net_config.h"

#define ADDR(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static struct net_config cfg;
static char err[NET_ERR_MAX];

static int setup(void **state)
{
	net_config_init(&cfg);
	err[0] = '\0';
	return 0;
}

static void set_ok(const char *key, const char *value)
{
	if (net_config_set(&cfg, key, value, err, sizeof(err)))
		fail_msg("%s = %s: %s", key, value, err);
}

static void set_fails(const char *key, const char *value, const char *expected_err)
{
	assert_int_equal(net_config_set(&cfg, key, value, err, sizeof(err)), -1);
	assert_string_equal(err, expected_err);
}

static void check_ok(void)
{
	if (net_config_check(&cfg, err, sizeof(err)))
		fail_msg("check: %s", err);
}

static void check_fails(const char *expected_err)
{
	assert_int_equal(net_config_check(&cfg, err, sizeof(err)), -1);
	assert_string_equal(err, expected_err);
}

static void test_defaults_are_qemus(void **state)
{
	check_ok();
	assert_true(cfg.user);
	assert_int_equal(cfg.net, ADDR(10, 0, 2, 0));
	assert_int_equal(cfg.mask, 0xffffff00u);
	assert_int_equal(cfg.host, ADDR(10, 0, 2, 2));
	assert_int_equal(cfg.dhcpstart, ADDR(10, 0, 2, 15));
	assert_int_equal(cfg.dns, ADDR(10, 0, 2, 3));
	assert_false(cfg.restricted);
	assert_true(cfg.ipv6);
	assert_int_equal(cfg.mtu, 65520);
	static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	assert_memory_equal(cfg.mac, mac, 6);
	assert_string_equal(cfg.hostname, "");
	assert_string_equal(cfg.domainname, "");
	assert_int_equal(cfg.n_dnssearch, 0);
	assert_int_equal(cfg.n_hostfwd, 0);
}

static void test_bools(void **state)
{
	set_ok("user", "off");
	assert_false(cfg.user);
	set_ok("user", "on");
	assert_true(cfg.user);
	set_ok("restrict", "yes");
	assert_true(cfg.restricted);
	set_ok("restrict", "false");
	assert_false(cfg.restricted);
	set_ok("ipv6", "0");
	assert_false(cfg.ipv6);
	set_fails("user", "maybe", "user: \"maybe\" is not on or off");
	set_fails("restrict", "", "restrict: \"\" is not on or off");
	set_fails("ipv6", "ON", "ipv6: \"ON\" is not on or off");
}

static void test_net(void **state)
{
	set_ok("net", "192.168.76.0/24");
	assert_int_equal(cfg.net, ADDR(192, 168, 76, 0));
	assert_int_equal(cfg.mask, 0xffffff00u);
	set_ok("net", "10.0.0.0/255.255.0.0");
	assert_int_equal(cfg.mask, 0xffff0000u);
	set_ok("net", "172.16.0.0/12");
	assert_int_equal(cfg.mask, 0xfff00000u);
	set_ok("net", "10.0.2.0/27");
	set_fails("net", "10.0.2.0", "net: \"10.0.2.0\" is not a network (a.b.c.d/prefix, e.g. 10.0.2.0/24)");
	set_fails("net", "10.0.2/24", "net: \"10.0.2/24\" is not a network (a.b.c.d/prefix, e.g. 10.0.2.0/24)");
	set_fails("net", "10.0.2.0/33", "net: \"10.0.2.0/33\" has no valid prefix length");
	set_fails("net", "10.0.2.0/x", "net: \"10.0.2.0/x\" has no valid prefix length");
	set_fails("net", "10.0.2.0/28", "net: \"10.0.2.0/28\": the prefix must be 1..27");
	set_fails("net", "0.0.0.0/0", "net: \"0.0.0.0/0\": the prefix must be 1..27");
	set_fails("net", "10.0.2.0/255.0.255.0", "net: \"10.0.2.0/255.0.255.0\" has no valid netmask");
	set_fails("net", "10.0.2.1/24", "net: \"10.0.2.1/24\" has host bits set");
	set_fails("net", "256.0.2.0/24", "net: \"256.0.2.0/24\" is not a network (a.b.c.d/prefix, e.g. 10.0.2.0/24)");
	set_fails("net", "010.0.2.0/24", "net: \"010.0.2.0/24\" is not a network (a.b.c.d/prefix, e.g. 10.0.2.0/24)");
}

static void test_addresses(void **state)
{
	set_ok("host", "10.0.2.1");
	set_ok("dns", "10.0.2.4");
	set_ok("dhcpstart", "10.0.2.100");
	check_ok();
	assert_int_equal(cfg.host, ADDR(10, 0, 2, 1));
	assert_int_equal(cfg.dns, ADDR(10, 0, 2, 4));
	assert_int_equal(cfg.dhcpstart, ADDR(10, 0, 2, 100));
	set_fails("host", "10.0.2", "host: \"10.0.2\" is not an IPv4 address (a.b.c.d)");
	set_fails("dns", "10.0.2.3 ", "dns: \"10.0.2.3 \" is not an IPv4 address (a.b.c.d)");
	set_fails("dhcpstart", "-10.0.2.15", "dhcpstart: \"-10.0.2.15\" is not an IPv4 address (a.b.c.d)");
	set_fails("dhcpstart", "10.0.2.1.5", "dhcpstart: \"10.0.2.1.5\" is not an IPv4 address (a.b.c.d)");
	set_fails("host", "", "host: \"\" is not an IPv4 address (a.b.c.d)");
}

/* As QEMU: a new net keeps the host part of 10.0.2.2/.3/.15. */
static void test_addresses_derived_from_net(void **state)
{
	set_ok("net", "192.168.76.0/24");
	set_ok("hostfwd", "tcp::2222-:22");
	check_ok();
	assert_int_equal(cfg.host, ADDR(192, 168, 76, 2));
	assert_int_equal(cfg.dns, ADDR(192, 168, 76, 3));
	assert_int_equal(cfg.dhcpstart, ADDR(192, 168, 76, 15));
	assert_int_equal(cfg.hostfwd[0].guest_addr, ADDR(192, 168, 76, 15));
}

static void test_cross_key_checks(void **state)
{
	set_ok("host", "10.0.3.2");
	check_fails("host: 10.0.3.2 is not a host address inside net 10.0.2.0/24");
	setup(state);
	set_ok("net", "192.168.0.0/16");
	set_ok("dns", "10.0.2.3");
	check_fails("dns: 10.0.2.3 is not a host address inside net 192.168.0.0/16");
	setup(state);
	set_ok("dhcpstart", "10.0.2.255");
	check_fails("dhcpstart: 10.0.2.255 is not a host address inside net 10.0.2.0/24");
	setup(state);
	set_ok("host", "10.0.2.0");
	check_fails("host: 10.0.2.0 is not a host address inside net 10.0.2.0/24");
	setup(state);
	set_ok("net", "10.0.2.0/27");
	set_ok("dhcpstart", "10.0.2.20");
	check_fails("dhcpstart: 10.0.2.20 leaves no room for the 16 DHCP leases inside net");
	setup(state);
	set_ok("dns", "10.0.2.2");
	check_fails("dns: 10.0.2.2 is also the host address");
	setup(state);
	set_ok("dhcpstart", "10.0.2.2");
	check_fails("dhcpstart: 10.0.2.2: the DHCP leases up to 10.0.2.17 overlap the host address");
	setup(state);
	set_ok("dns", "10.0.2.30");
	check_fails("dhcpstart: 10.0.2.15: the DHCP leases up to 10.0.2.30 overlap the dns address");
	setup(state);
	set_ok("hostfwd", "tcp::2222-10.0.3.15:22");
	check_fails("hostfwd: guest address 10.0.3.15 is not a guest address inside net");
	setup(state);
	set_ok("hostfwd", "udp::5353-10.0.2.3:53");
	check_fails("hostfwd: guest address 10.0.2.3 is not a guest address inside net");
	/* A derived default outside a new net says so. */
	setup(state);
	set_ok("net", "10.0.2.0/27");
	set_ok("dhcpstart", "10.0.2.4");
	set_ok("dns", "10.0.2.30");
	check_ok();
	set_ok("host", "10.0.2.29");
	check_ok();
	setup(state);
	set_ok("net", "10.9.0.0/16");
	set_ok("dhcpstart", "10.9.1.0");
	check_ok();
}

static void test_mtu(void **state)
{
	set_ok("mtu", "1500");
	assert_int_equal(cfg.mtu, 1500);
	set_ok("mtu", "68");
	set_ok("mtu", "65520");
	assert_int_equal(cfg.mtu, 65520);
	set_fails("mtu", "67", "mtu: \"67\" is out of range (68..65520)");
	set_fails("mtu", "65521", "mtu: \"65521\" is out of range (68..65520)");
	set_fails("mtu", "99999999999", "mtu: \"99999999999\" is out of range (68..65520)");
	set_fails("mtu", "1500k", "mtu: \"1500k\" is out of range (68..65520)");
	set_fails("mtu", "+1500", "mtu: \"+1500\" is out of range (68..65520)");
	set_fails("mtu", "", "mtu: \"\" is out of range (68..65520)");
}

static void test_mac(void **state)
{
	set_ok("mac", "02:AB:cd:00:00:01");
	static const uint8_t mac[6] = {0x02, 0xab, 0xcd, 0x00, 0x00, 0x01};
	assert_memory_equal(cfg.mac, mac, 6);
	set_fails("mac", "02:ab:cd:00:00", "mac: \"02:ab:cd:00:00\" is not a MAC address (xx:xx:xx:xx:xx:xx)");
	set_fails("mac", "02:ab:cd:00:00:01:02",
		  "mac: \"02:ab:cd:00:00:01:02\" is not a MAC address (xx:xx:xx:xx:xx:xx)");
	set_fails("mac", "02-ab-cd-00-00-01", "mac: \"02-ab-cd-00-00-01\" is not a MAC address (xx:xx:xx:xx:xx:xx)");
	set_fails("mac", "0g:ab:cd:00:00:01", "mac: \"0g:ab:cd:00:00:01\" is not a MAC address (xx:xx:xx:xx:xx:xx)");
	set_fails("mac", "01:00:5e:00:00:01",
		  "mac: \"01:00:5e:00:00:01\" is a multicast address (the first byte must be even)");
	set_fails("mac", "00:00:00:00:00:00", "mac: \"00:00:00:00:00:00\" is all zeros");
	assert_memory_equal(cfg.mac, mac, 6);
}

static void test_names(void **state)
{
	set_ok("hostname", "minivm");
	assert_string_equal(cfg.hostname, "minivm");
	set_ok("domainname", "example.test");
	assert_string_equal(cfg.domainname, "example.test");
	set_ok("dnssearch", "a.test");
	set_ok("dnssearch", "b-2.example.test");
	assert_int_equal(cfg.n_dnssearch, 2);
	assert_string_equal(cfg.dnssearch[1], "b-2.example.test");
	set_ok("hostname", "");
	assert_string_equal(cfg.hostname, "");
	set_fails("hostname", "a.b", "hostname: \"a.b\" is not a host name (1..63 letters, digits, inner '-')");
	set_fails("hostname", "-vm", "hostname: \"-vm\" is not a host name (1..63 letters, digits, inner '-')");
	char long_label[70];
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	assert_int_equal(net_config_set(&cfg, "hostname", long_label, err, sizeof(err)), -1);
	set_fails("domainname", "example..test", "domainname: \"example..test\" is not a domain name");
	set_fails("domainname", "example.test.", "domainname: \"example.test.\" is not a domain name");
	set_fails("dnssearch", "", "dnssearch: \"\" is not a domain name");
	set_fails("dnssearch", "a_b.test", "dnssearch: \"a_b.test\" is not a domain name");
	for (int i = 2; i < NET_DNSSEARCH_MAX; i++)
		set_ok("dnssearch", "more.test");
	set_fails("dnssearch", "one.too.many", "dnssearch: \"one.too.many\": at most 8 search domains");
}

static void test_hostfwd(void **state)
{
	set_ok("hostfwd", "tcp:127.0.0.1:2222-:22");
	set_ok("hostfwd", "udp::5353-:53");
	set_ok("hostfwd", "tcp:0.0.0.0:8080-10.0.2.16:80");
	set_ok("hostfwd", ":127.0.0.2:9000-:9000"); /* QEMU: no protocol is tcp */
	check_ok();
	assert_int_equal(cfg.n_hostfwd, 4);
	const struct net_hostfwd *f = cfg.hostfwd;
	assert_false(f[0].udp);
	assert_int_equal(f[0].host_addr, ADDR(127, 0, 0, 1));
	assert_int_equal(f[0].host_port, 2222);
	assert_int_equal(f[0].guest_addr, ADDR(10, 0, 2, 15));
	assert_int_equal(f[0].guest_port, 22);
	assert_true(f[1].udp);
	assert_int_equal(f[1].host_addr, ADDR(127, 0, 0, 1)); /* not all addresses */
	assert_int_equal(f[1].host_port, 5353);
	assert_int_equal(f[1].guest_port, 53);
	assert_int_equal(f[2].host_addr, 0);
	assert_int_equal(f[2].guest_addr, ADDR(10, 0, 2, 16));
	assert_false(f[3].udp);
	assert_int_equal(f[3].host_addr, ADDR(127, 0, 0, 2));
}

static void test_hostfwd_bad(void **state)
{
	static const char syntax[] = "is not tcp|udp:[hostaddr]:hostport-[guestaddr]:guestport";
	static const struct {
		const char *value, *why;
	} bad[] = {
		{"tcp", syntax},
		{"tcp:2222-:22", syntax},
		{"tcp::2222:22", syntax},
		{"tcp::2222-22", syntax},
		{"sctp::2222-:22", ": the protocol must be tcp or udp"},
		{"TCP::2222-:22", ": the protocol must be tcp or udp"},
		{"tcp:localhost:2222-:22", ": the host address is not an IPv4 address"},
		{"tcp:[::1]:2222-:22", ": the host address is not an IPv4 address"},
		{"tcp::0-:22", ": the host port must be 1..65535"},
		{"tcp::65536-:22", ": the host port must be 1..65535"},
		{"tcp::-:22", ": the host port must be 1..65535"},
		{"tcp::22a-:22", ": the host port must be 1..65535"},
		{"tcp::2222-10.0.2:22", ": the guest address is not an IPv4 address"},
		{"tcp::2222-:0", ": the guest port must be 1..65535"},
		{"tcp::2222-:", ": the guest port must be 1..65535"},
		{"tcp::2222-:22-", ": the guest port must be 1..65535"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char expected[NET_ERR_MAX];
		snprintf(expected, sizeof(expected), "hostfwd: \"%s\"%s%s", bad[i].value,
			 bad[i].why == syntax ? " " : "", bad[i].why);
		set_fails("hostfwd", bad[i].value, expected);
	}
	assert_int_equal(cfg.n_hostfwd, 0);
}

static void test_hostfwd_duplicates_and_limit(void **state)
{
	set_ok("hostfwd", "tcp::2222-:22");
	set_ok("hostfwd", "udp::2222-:22"); /* another protocol */
	set_ok("hostfwd", "tcp:127.0.0.2:2222-:22"); /* another address */
	set_fails("hostfwd", "tcp:127.0.0.1:2222-:23",
		  "hostfwd: \"tcp:127.0.0.1:2222-:23\": host port tcp:2222 is already forwarded");
	set_fails("hostfwd", "tcp:0.0.0.0:2222-:23",
		  "hostfwd: \"tcp:0.0.0.0:2222-:23\": host port tcp:2222 is already forwarded");
	for (unsigned port = 3000; cfg.n_hostfwd < NET_HOSTFWD_MAX; port++) {
		char v[32];
		snprintf(v, sizeof(v), "tcp::%u-:22", port);
		set_ok("hostfwd", v);
	}
	set_fails("hostfwd", "tcp::4000-:22", "hostfwd: \"tcp::4000-:22\": at most 32 forwards");
}

static void test_unknown_key(void **state)
{
	set_fails("model", "virtio",
		  "model: unknown key (user, hostfwd, net, host, dhcpstart, dns, restrict, ipv6, mtu, mac, "
		  "hostname, domainname, dnssearch)");
}

static void test_set_arg(void **state)
{
	assert_int_equal(net_config_set_arg(&cfg, "mtu=1500", err, sizeof(err)), 0);
	assert_int_equal(cfg.mtu, 1500);
	assert_int_equal(net_config_set_arg(&cfg, "domainname=a=b", err, sizeof(err)), -1);
	assert_string_equal(err, "domainname: \"a=b\" is not a domain name");
	assert_int_equal(net_config_set_arg(&cfg, "mtu", err, sizeof(err)), -1);
	assert_string_equal(err, "\"mtu\" is not key=value");
	assert_int_equal(net_config_set_arg(&cfg, "=1", err, sizeof(err)), -1);
	assert_string_equal(err, "\"=1\" is not key=value");
}

static char pairs[512];

static void collect_pair(void *opaque, const char *key_value)
{
	snprintf(pairs + strlen(pairs), sizeof(pairs) - strlen(pairs), "%s;", key_value);
}

static void test_nic(void **state)
{
	pairs[0] = '\0';
	assert_int_equal(net_config_parse_nic(&cfg,
					      "user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-:53,mtu=1500,"
					      "restrict=on,dnssearch=a.test,dnssearch=b.test",
					      collect_pair, NULL, err, sizeof(err)),
			 0);
	/* what the launcher passes on, one --net per key, in order */
	assert_string_equal(pairs, "user=on;hostfwd=tcp:127.0.0.1:2222-:22;hostfwd=udp::5353-:53;mtu=1500;"
				   "restrict=on;dnssearch=a.test;dnssearch=b.test;");
	check_ok();
	assert_true(cfg.user);
	assert_int_equal(cfg.n_hostfwd, 2);
	assert_true(cfg.hostfwd[1].udp);
	assert_int_equal(cfg.hostfwd[1].host_port, 5353);
	assert_int_equal(cfg.mtu, 1500);
	assert_true(cfg.restricted);
	assert_int_equal(cfg.n_dnssearch, 2);

	assert_int_equal(net_config_parse_nic(&cfg, "none", NULL, NULL, err, sizeof(err)), 0);
	assert_false(cfg.user);
	assert_int_equal(net_config_parse_nic(&cfg, "user", NULL, NULL, err, sizeof(err)), 0);
	assert_true(cfg.user);

	static const struct {
		const char *opt, *err;
	} bad[] = {
		{"tap,ifname=tap0", "\"tap,ifname=tap0\": only \"user[,option...]\" and \"none\" are supported"},
		{"none,mtu=1500", "\"none,mtu=1500\": only \"user[,option...]\" and \"none\" are supported"},
		{"username", "\"username\": only \"user[,option...]\" and \"none\" are supported"},
		{"user,mtu=9", "mtu: \"9\" is out of range (68..65520)"},
		{"user,,mtu=1500", "\"\" is not key=value"},
		{"user,mtu=1500,", "\"\" is not key=value"},
		{"user,hostfwd", "\"hostfwd\" is not key=value"},
		{"user,model=virtio-net-pci", "model: unknown key (user, hostfwd, net, host, dhcpstart, dns, "
					      "restrict, ipv6, mtu, mac, hostname, domainname, dnssearch)"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(net_config_parse_nic(&cfg, bad[i].opt, NULL, NULL, err, sizeof(err)), -1);
		assert_string_equal(err, bad[i].err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults_are_qemus, setup),
		cmocka_unit_test_setup(test_bools, setup),
		cmocka_unit_test_setup(test_net, setup),
		cmocka_unit_test_setup(test_addresses, setup),
		cmocka_unit_test_setup(test_addresses_derived_from_net, setup),
		cmocka_unit_test_setup(test_cross_key_checks, setup),
		cmocka_unit_test_setup(test_mtu, setup),
		cmocka_unit_test_setup(test_mac, setup),
		cmocka_unit_test_setup(test_names, setup),
		cmocka_unit_test_setup(test_hostfwd, setup),
		cmocka_unit_test_setup(test_hostfwd_bad, setup),
		cmocka_unit_test_setup(test_hostfwd_duplicates_and_limit, setup),
		cmocka_unit_test_setup(test_unknown_key, setup),
		cmocka_unit_test_setup(test_set_arg, setup),
		cmocka_unit_test_setup(test_nic, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
