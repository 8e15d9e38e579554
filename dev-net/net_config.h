/* net_config.h - dev-net's user-mode network configuration: vm.conf's [net]
 * keys and QEMU's `-nic user,opt=...` options, with QEMU's spellings and
 * defaults, checked before anything is started.
 *
 * Both front ends go through net_config_set(), one key=value at a time, so a
 * value means the same thing wherever it comes from:
 *   - vm.conf `[net] key = value`: the launcher calls net_config_set();
 *   - `-nic user,key=value,...` / `-nic none`: net_config_parse_nic();
 *   - the launcher hands the result to dev-net as one `--net key=value`
 *     argument per key it was given (repeatable keys repeated, in order);
 *     dev-net applies each with net_config_set_arg() and ends with
 *     net_config_check(), exactly like the launcher did.
 * After the last key, net_config_check() does the checks that involve
 * several keys and fills in the addresses the user left to their defaults.
 *
 * Errors are one line naming the key and the bad value, e.g.
 *   mtu: "70000" is out of range (68..65520)
 * the caller adds where it came from (file:line, or the flag).
 *
 * Addresses and masks are IPv4 in host byte order.  This file is plain C: no
 * sockets, no OS calls, so the launcher can link it on every platform. */
#ifndef MINIVM_NET_CONFIG_H
#define MINIVM_NET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_ERR_MAX 256
#define NET_HOSTFWD_MAX 32
#define NET_DNSSEARCH_MAX 8
#define NET_HOSTNAME_MAX 63  /* one DNS label */
#define NET_DOMAIN_MAX 253   /* a DNS name */
/* libslirp's if_mtu range is 68..65521; 65520 is what passt and slirp4netns
 * recommend, and the largest IPv4 packet libslirp builds fits it. */
#define NET_MTU_MIN 68
#define NET_MTU_MAX 65520
#define NET_MTU_DEFAULT 65520
/* libslirp hands out this many DHCP leases from dhcpstart on
 * (NB_BOOTP_CLIENTS); the whole pool must lie inside the network. */
#define NET_DHCP_POOL 16
/* The longest key=value (a dnssearch domain and its key) */
#define NET_PAIR_MAX (NET_DOMAIN_MAX + 64)

struct net_hostfwd {
	bool udp;
	uint32_t host_addr; /* 127.0.0.1 unless the user names one */
	uint16_t host_port;
	uint32_t guest_addr; /* 0 until net_config_check(): dhcpstart */
	uint16_t guest_port;
};

struct net_config {
	bool user; /* false: no network device at all */
	uint32_t net, mask;
	uint32_t host, dhcpstart, dns;
	bool host_set, dhcpstart_set, dns_set; /* else derived from net */
	bool restricted; /* restrict=on: only the forwards reach the guest */
	bool ipv6;
	unsigned mtu;
	uint8_t mac[6];
	char hostname[NET_HOSTNAME_MAX + 1]; /* "" : no DHCP host name */
	char domainname[NET_DOMAIN_MAX + 1];
	char dnssearch[NET_DNSSEARCH_MAX][NET_DOMAIN_MAX + 1];
	unsigned n_dnssearch;
	struct net_hostfwd hostfwd[NET_HOSTFWD_MAX];
	unsigned n_hostfwd;
};

/* QEMU's `-nic user` defaults: on, 10.0.2.0/24, host 10.0.2.2, dhcpstart
 * 10.0.2.15, dns 10.0.2.3, restrict off, ipv6 on, mac 52:54:00:12:34:56, no
 * forwards, no host name; and our MTU default of 65520. */
void net_config_init(struct net_config *c);

/* Apply one key (vm.conf's [net] spelling) and its value.  Repeatable keys
 * (hostfwd, dnssearch) add one entry per call.  Returns 0, or -1 with one
 * line in err. */
int net_config_set(struct net_config *c, const char *key, const char *value, char *err, size_t n);

/* "key=value" (dev-net's --net argument) through net_config_set(). */
int net_config_set_arg(struct net_config *c, const char *key_value, char *err, size_t n);

/* One key=value as applied (NUL-terminated, valid during the call). */
typedef void net_pair_fn(void *opaque, const char *key_value);

/* QEMU's -nic option string: "none", or "user" followed by ",key=value"
 * options.  each (may be NULL) gets every key=value applied, "user=on" or
 * "user=off" first: what the launcher hands to dev-net.  Returns 0, or -1
 * with one line in err. */
int net_config_parse_nic(struct net_config *c, const char *optstr, net_pair_fn *each, void *opaque,
			 char *err, size_t n);

/* After the last key: derive host/dhcpstart/dns from net where they were
 * not set (keeping the host part of QEMU's defaults, as QEMU does), point
 * forwards without a guest address at dhcpstart, and check what involves
 * several keys (addresses inside net, all distinct, no duplicate forward).
 * Returns 0, or -1 with one line in err naming the key. */
int net_config_check(struct net_config *c, char *err, size_t n);

/* "a.b.c.d" of a host-order address into buf (at least 16 bytes). */
const char *net_addr_str(uint32_t addr, char *buf, size_t n);

#endif
