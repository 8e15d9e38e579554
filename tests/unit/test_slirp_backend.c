/* test_slirp_backend.c - dev-net's NAT on the real libslirp, with this test
 * as the guest: ARP, DHCP, a host->guest forward, a busy host port, restrict,
 * and the checksum completion of guest frames.  All host traffic stays on
 * 127.0.0.1; no frame asks for DNS, so no resolver is ever queried (libslirp
 * only reads /etc/resolv.conf to decide on its router advertisement's RDNSS
 * option). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "host.h"
#include "net_csum.h"
#include "slirp_backend.h"

#define ADDR(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define GUEST_IP ADDR(10, 0, 2, 15)
#define HOST_IP ADDR(10, 0, 2, 2)
#define ETH_ARP 0x0806
#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86dd
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t broadcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* ---- network byte order on byte buffers (frames are big-endian) ---- */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)be16(p) << 16 | be16(p + 2);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

/* ---- frames the backend sends to the guest ---- */

#define FRAMES_MAX 64
#define FRAME_KEEP 2048 /* headers and DHCP options are all we look at */

static struct {
	uint8_t data[FRAME_KEEP];
	size_t len;
} frames[FRAMES_MAX];
static unsigned n_frames;

static void frame_out(const uint8_t *frame, size_t len, void *opaque)
{
	if (n_frames == FRAMES_MAX)
		return; /* the guest's queue is full: dropped */
	memcpy(frames[n_frames].data, frame, len < FRAME_KEEP ? len : FRAME_KEEP);
	frames[n_frames].len = len;
	n_frames++;
}

static int setup(void **state)
{
	n_frames = 0;
	return 0;
}

/* Frame i if it is IPv4 of this protocol: its IP header, else NULL. */
static const uint8_t *ipv4_of(unsigned i, uint8_t proto)
{
	const uint8_t *f = frames[i].data;
	if (frames[i].len < 34 || be16(f + 12) != ETH_IPV4 || f[14 + 9] != proto)
		return NULL;
	return f + 14;
}

/* The first TCP segment for the guest with all of these flags set. */
static const uint8_t *find_tcp(uint8_t flags)
{
	for (unsigned i = 0; i < n_frames; i++) {
		const uint8_t *ip = ipv4_of(i, 6);
		if (ip && (ip[20 + 13] & flags) == flags)
			return ip;
	}
	return NULL;
}

/* ---- the event loop, as dev-net will run it ---- */

static bool tcp_found(const void *flags)
{
	return find_tcp(*(const uint8_t *)flags) != NULL;
}

/* Turn the loop until done(arg) or ms have passed. */
static bool run_loop(struct slirp_backend *b, int ms, bool (*done)(const void *), const void *arg)
{
	uint64_t end = host_now_ns() + (uint64_t)ms * 1000000u;
	for (;;) {
		if (done && done(arg))
			return true;
		uint64_t now = host_now_ns();
		if (now >= end)
			return false;
		struct backend_pollfd *fds;
		size_t n = backend_fill_pollfds(b, &fds);
		struct pollfd pfd[256];
		assert_true(n <= 256);
		for (size_t i = 0; i < n; i++) {
			pfd[i].fd = fds[i].fd;
			pfd[i].events = (short)((fds[i].events & BACKEND_POLL_IN ? POLLIN : 0) |
						(fds[i].events & BACKEND_POLL_OUT ? POLLOUT : 0) |
						(fds[i].events & BACKEND_POLL_PRI ? POLLPRI : 0));
		}
		int timeout = backend_next_timeout_ms(b);
		assert_true(timeout >= 0 && timeout <= 1000);
		int left = (int)((end - now) / 1000000u) + 1;
		/* 10 ms turns: the host clients in these tests are outside the loop. */
		int rc = poll(pfd, n, timeout < left ? (timeout < 10 ? timeout : 10) : left);
		for (size_t i = 0; i < n; i++) {
			short r = rc > 0 ? pfd[i].revents : 0;
			fds[i].revents = (r & POLLIN ? BACKEND_POLL_IN : 0) | (r & POLLOUT ? BACKEND_POLL_OUT : 0) |
					 (r & POLLPRI ? BACKEND_POLL_PRI : 0) | (r & POLLERR ? BACKEND_POLL_ERR : 0) |
					 (r & POLLHUP ? BACKEND_POLL_HUP : 0);
		}
		backend_poll_done(b, rc < 0);
		backend_run_timers(b);
	}
}

/* ---- guest frames ---- */

static size_t eth_header(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, guest_mac, 6);
	put_be16(f + 12, type);
	return 14;
}

static void ip_header(uint8_t *ip, uint8_t proto, uint32_t src, uint32_t dst, size_t payload)
{
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put_be16(ip + 2, (uint16_t)(20 + payload));
	ip[8] = 64;
	ip[9] = proto;
	put_be32(ip + 12, src);
	put_be32(ip + 16, dst);
	/* The header checksum, complete: over the 20 bytes. */
	assert_int_equal(net_csum_complete(ip, 20, 0, 10), 0);
}

/* Leave the TCP/UDP checksum partial, as a Linux guest does with
 * VIRTIO_NET_F_CSUM: the pseudo-header sum, not complemented. */
static void pseudo_header_sum(uint8_t *field, uint8_t proto, uint32_t src, uint32_t dst, size_t len)
{
	uint32_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (uint32_t)len;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put_be16(field, (uint16_t)sum);
}

static void guest_arp_request(struct slirp_backend *b, uint32_t target)
{
	uint8_t f[42];
	size_t o = eth_header(f, broadcast_mac, ETH_ARP);
	put_be16(f + o, 1);          /* Ethernet */
	put_be16(f + o + 2, 0x0800); /* IPv4 */
	f[o + 4] = 6;
	f[o + 5] = 4;
	put_be16(f + o + 6, 1); /* request */
	memcpy(f + o + 8, guest_mac, 6);
	put_be32(f + o + 14, GUEST_IP);
	memset(f + o + 18, 0, 6);
	put_be32(f + o + 24, target);
	assert_int_equal(backend_input(b, f, sizeof(f), NULL), 0);
}

/* A TCP segment from the guest (no payload); complete_csum says whether
 * the backend is asked to finish its partial checksum. */
static void guest_tcp(struct slirp_backend *b, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags,
		      bool complete_csum)
{
	uint8_t f[14 + 20 + 20];
	size_t o = eth_header(f, broadcast_mac, ETH_IPV4); /* slirp ignores the MAC */
	ip_header(f + o, 6, GUEST_IP, dst, 20);
	uint8_t *tcp = f + o + 20;
	memset(tcp, 0, 20);
	put_be16(tcp, sport);
	put_be16(tcp + 2, dport);
	put_be32(tcp + 4, 0x12345678);
	put_be32(tcp + 8, flags & TCP_ACK ? 0x9abcdef0 : 0);
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	put_be16(tcp + 14, 65535);
	pseudo_header_sum(tcp + 16, 6, GUEST_IP, dst, 20);
	struct backend_tx_csum csum = {.needed = true, .start = 34, .offset = 16};
	assert_int_equal(backend_input(b, f, sizeof(f), complete_csum ? &csum : NULL), 0);
}

static struct slirp_backend *create(struct net_config *cfg)
{
	char err[NET_ERR_MAX];
	if (net_config_check(cfg, err, sizeof(err)))
		fail_msg("config: %s", err);
	struct slirp_backend *b = backend_create(cfg, frame_out, NULL, err, sizeof(err));
	if (!b)
		fail_msg("backend_create: %s", err);
	return b;
}

/* ---- host sockets (127.0.0.1 only) ---- */

static int loopback_socket(int type, uint16_t port, struct sockaddr_in *sa)
{
	*sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
	sa->sin_addr.s_addr = htonl(ADDR(127, 0, 0, 1));
	int s = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	return s;
}

/* A listening (TCP) or bound (UDP) socket on 127.0.0.1 at a port the kernel
 * picks; its port in *port. */
static int bound_loopback(int type, uint16_t *port)
{
	struct sockaddr_in sa;
	int s = loopback_socket(type, 0, &sa);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(s, 4), 0);
	socklen_t len = sizeof(sa);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return s;
}

/* A TCP port nobody listens on now. */
static uint16_t free_port(void)
{
	uint16_t port;
	close(bound_loopback(SOCK_STREAM, &port));
	return port;
}

static void add_fwd(struct net_config *cfg, const char *proto, uint16_t port)
{
	char v[64], err[NET_ERR_MAX];
	snprintf(v, sizeof(v), "%s::%u-:22", proto, port);
	if (net_config_set(cfg, "hostfwd", v, err, sizeof(err)))
		fail_msg("%s", err);
}

static void set(struct net_config *cfg, const char *key, const char *value)
{
	char err[NET_ERR_MAX];
	if (net_config_set(cfg, key, value, err, sizeof(err)))
		fail_msg("%s", err);
}

/* ---- the checksum helper ---- */

static void test_csum_complete(void **state)
{
	/* RFC 1071's example words sum to 0xddf2; the field (zero) is last. */
	uint8_t f[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 0x00, 0x00};
	assert_int_equal(net_csum_complete(f, sizeof(f), 0, 8), 0);
	assert_int_equal(be16(f + 8), 0x220d);
	/* The field's old content (a pseudo-header sum) counts; csum_start
	 * skips what is before it. */
	uint8_t g[] = {0xaa, 0xbb, 0x00, 0x01, 0x12, 0x34, 0xf2, 0x03};
	assert_int_equal(net_csum_complete(g, sizeof(g), 2, 2), 0);
	assert_int_equal(be16(g + 4), 0xfbc6); /* ~(0x0001 + 0x1234 + 0xf203 = 0x1_0438 -> 0x0439) */
	/* An odd length pads the last byte with zero. */
	uint8_t h[] = {0x00, 0x00, 0x12, 0x34, 0x56};
	assert_int_equal(net_csum_complete(h, sizeof(h), 0, 0), 0);
	assert_int_equal(be16(h), (uint16_t)~(0x1234 + 0x5600));
	/* A zero result is sent as 0xffff (UDP's "no checksum" is 0). */
	uint8_t z[] = {0xff, 0xff, 0x00, 0x00};
	assert_int_equal(net_csum_complete(z, sizeof(z), 0, 2), 0);
	assert_int_equal(be16(z + 2), 0xffff);
}

static void test_csum_offsets_outside_the_frame(void **state)
{
	uint8_t f[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	const uint8_t orig[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	assert_int_equal(net_csum_complete(f, 8, 0, 7), -1); /* field half outside */
	assert_int_equal(net_csum_complete(f, 8, 7, 0), -1);
	assert_int_equal(net_csum_complete(f, 8, 9, 0), -1);
	assert_int_equal(net_csum_complete(f, 8, 2, SIZE_MAX - 1), -1);
	assert_int_equal(net_csum_complete(f, 8, SIZE_MAX, 2), -1);
	assert_memory_equal(f, orig, 8);
	assert_int_equal(net_csum_complete(f, 8, 0, 6), 0); /* the last word */
}

/* ---- the NAT ---- */

static void test_arp_reply(void **state)
{
	struct net_config cfg;
	net_config_init(&cfg);
	set(&cfg, "ipv6", "off");
	struct slirp_backend *b = create(&cfg);
	guest_arp_request(b, HOST_IP); /* answered inside slirp_input */
	const uint8_t *f = NULL;
	for (unsigned i = 0; i < n_frames && !f; i++)
		if (frames[i].len >= 42 && be16(frames[i].data + 12) == ETH_ARP)
			f = frames[i].data;
	assert_non_null(f);
	assert_memory_equal(f, guest_mac, 6);       /* to the guest */
	assert_int_equal(be16(f + 14 + 6), 2);       /* reply */
	assert_int_equal(be32(f + 14 + 14), HOST_IP); /* 10.0.2.2 is at ... */
	assert_memory_equal(f + 14 + 8, f + 6, 6);   /* ... the sender's MAC */
	assert_memory_equal(f + 14 + 18, guest_mac, 6);
	assert_int_equal(be32(f + 14 + 24), GUEST_IP);
	backend_destroy(b);
}

/* The DHCP option `code` of a BOOTP reply, or NULL. */
static const uint8_t *dhcp_option(const uint8_t *bootp, size_t len, uint8_t code)
{
	const uint8_t *p = bootp + 240, *end = bootp + len;
	while (p < end && *p != 255) {
		if (*p == 0) {
			p++;
			continue;
		}
		if (p + 2 > end || p + 2 + p[1] > end)
			return NULL;
		if (*p == code)
			return p;
		p += 2 + p[1];
	}
	return NULL;
}

static void test_dhcp_offer(void **state)
{
	struct net_config cfg;
	net_config_init(&cfg);
	set(&cfg, "ipv6", "off");
	set(&cfg, "hostname", "minivm");
	struct slirp_backend *b = create(&cfg);

	uint8_t f[14 + 20 + 8 + 244] = {0};
	size_t o = eth_header(f, broadcast_mac, ETH_IPV4);
	ip_header(f + o, 17, 0, 0xffffffffu, 8 + 244);
	uint8_t *udp = f + o + 20;
	put_be16(udp, 68);
	put_be16(udp + 2, 67);
	put_be16(udp + 4, 8 + 244);
	/* checksum 0: none (UDP over IPv4) */
	uint8_t *bootp = udp + 8;
	bootp[0] = 1; /* BOOTREQUEST */
	bootp[1] = 1;
	bootp[2] = 6;
	put_be32(bootp + 4, 0xdecafbad); /* xid */
	memcpy(bootp + 28, guest_mac, 6);
	put_be32(bootp + 236, 0x63825363); /* magic cookie */
	bootp[240] = 53;                   /* DHCP message type */
	bootp[241] = 1;
	bootp[242] = 1; /* DISCOVER */
	bootp[243] = 255;
	assert_int_equal(backend_input(b, f, sizeof(f), NULL), 0);

	const uint8_t *ip = NULL;
	unsigned i;
	for (i = 0; i < n_frames && !ip; i++) {
		ip = ipv4_of(i, 17);
		if (ip && be16(ip + 20) != 67)
			ip = NULL;
	}
	assert_non_null(ip);
	size_t bootp_len = frames[i - 1].len - 14 - 20 - 8;
	const uint8_t *reply = ip + 28;
	assert_int_equal(reply[0], 2); /* BOOTREPLY */
	assert_int_equal(be32(reply + 4), 0xdecafbad);
	assert_int_equal(be32(reply + 16), GUEST_IP); /* yiaddr */
	const uint8_t *opt = dhcp_option(reply, bootp_len, 53);
	assert_non_null(opt);
	assert_int_equal(opt[2], 2); /* OFFER */
	opt = dhcp_option(reply, bootp_len, 1);
	assert_non_null(opt);
	assert_int_equal(be32(opt + 2), 0xffffff00u);
	opt = dhcp_option(reply, bootp_len, 3); /* router */
	assert_non_null(opt);
	assert_int_equal(be32(opt + 2), HOST_IP);
	opt = dhcp_option(reply, bootp_len, 6); /* DNS */
	assert_non_null(opt);
	assert_int_equal(be32(opt + 2), ADDR(10, 0, 2, 3));
	opt = dhcp_option(reply, bootp_len, 12); /* host name */
	assert_non_null(opt);
	assert_int_equal(opt[1], 6);
	assert_memory_equal(opt + 2, "minivm", 6);
	backend_destroy(b);
}

/* The guest asks for a router advertisement (ICMPv6 133 from its
 * link-local address to ff02::2); returns the RA's prefix option, or NULL. */
static const uint8_t *router_solicitation(struct slirp_backend *b)
{
	static const uint8_t all_routers_mac[6] = {0x33, 0x33, 0, 0, 0, 2};
	uint8_t f[14 + 40 + 8] = {0};
	size_t o = eth_header(f, all_routers_mac, ETH_IPV6);
	uint8_t *ip6 = f + o;
	ip6[0] = 0x60;
	put_be16(ip6 + 4, 8); /* payload */
	ip6[6] = 58;          /* ICMPv6 */
	ip6[7] = 255;
	static const uint8_t src[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0x00, 0xff, 0xfe, 0x12, 0x34, 0x56};
	static const uint8_t dst[16] = {0xff, 0x02, [15] = 2};
	memcpy(ip6 + 8, src, 16);
	memcpy(ip6 + 24, dst, 16);
	uint8_t *icmp = ip6 + 40;
	icmp[0] = 133;
	/* The pseudo-header (addresses, length 8, next header 58), partial. */
	uint32_t sum = 8 + 58;
	for (int i = 0; i < 16; i += 2)
		sum += be16(src + i) + be16(dst + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put_be16(icmp + 2, (uint16_t)sum);
	struct backend_tx_csum csum = {.needed = true, .start = 54, .offset = 2};
	n_frames = 0;
	assert_int_equal(backend_input(b, f, sizeof(f), &csum), 0);
	run_loop(b, 50, NULL, NULL);
	for (unsigned i = 0; i < n_frames; i++) {
		const uint8_t *r = frames[i].data;
		size_t len = frames[i].len < FRAME_KEEP ? frames[i].len : FRAME_KEEP;
		if (len < 14 + 40 + 16 || be16(r + 12) != ETH_IPV6 || r[14 + 6] != 58 || r[54] != 134)
			continue;
		for (const uint8_t *opt = r + 54 + 16; opt + 8 <= r + len && opt[1]; opt += 8 * opt[1])
			if (opt[0] == 3 && opt + 32 <= r + len)
				return opt;
	}
	return NULL;
}

/* ipv6=on answers with QEMU's prefix fec0::/64; ipv6=off does not answer. */
static void test_ipv6_switch(void **state)
{
	struct net_config cfg;
	net_config_init(&cfg);
	struct slirp_backend *b = create(&cfg);
	const uint8_t *prefix = router_solicitation(b);
	assert_non_null(prefix);
	assert_int_equal(prefix[2], 64);
	static const uint8_t fec0[16] = {0xfe, 0xc0};
	assert_memory_equal(prefix + 16, fec0, 16);
	backend_destroy(b);
	set(&cfg, "ipv6", "off");
	b = create(&cfg);
	assert_null(router_solicitation(b));
	backend_destroy(b);
}

/* A host client connects to a forward: a SYN for the guest's port 22, with
 * the MSS the MTU allows. */
static void check_hostfwd(const char *mtu, uint16_t mss)
{
	struct net_config cfg;
	net_config_init(&cfg);
	set(&cfg, "ipv6", "off");
	set(&cfg, "mtu", mtu);
	uint16_t port = free_port();
	add_fwd(&cfg, "tcp", port);
	struct slirp_backend *b = create(&cfg);
	guest_arp_request(b, HOST_IP); /* slirp learns the guest's MAC */

	struct sockaddr_in sa;
	int c = loopback_socket(SOCK_STREAM, port, &sa);
	assert_true(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS);
	uint8_t syn = TCP_SYN;
	assert_true(run_loop(b, 2000, tcp_found, &syn));
	const uint8_t *ip = find_tcp(TCP_SYN);
	const uint8_t *tcp = ip + 20;
	assert_int_equal(be32(ip + 16), GUEST_IP);
	assert_int_equal(be16(tcp + 2), 22);
	assert_int_equal(tcp[13], TCP_SYN);
	assert_int_equal(tcp[20], 2); /* MSS option */
	assert_int_equal(be16(tcp + 22), mss);
	close(c);
	backend_destroy(b);
}

static void test_hostfwd_syn(void **state)
{
	check_hostfwd("65520", 65520 - 40);
	n_frames = 0;
	check_hostfwd("1500", 1460);
}

static bool udp_to_guest_port(const void *port)
{
	for (unsigned i = 0; i < n_frames; i++) {
		const uint8_t *ip = ipv4_of(i, 17);
		if (ip && be16(ip + 22) == *(const uint16_t *)port)
			return true;
	}
	return false;
}

/* A datagram to a udp forward reaches the guest's port, payload intact. */
static void test_hostfwd_udp(void **state)
{
	struct net_config cfg;
	net_config_init(&cfg);
	set(&cfg, "ipv6", "off");
	uint16_t port;
	close(bound_loopback(SOCK_DGRAM, &port));
	add_fwd(&cfg, "udp", port);
	struct slirp_backend *b = create(&cfg);
	guest_arp_request(b, HOST_IP);
	struct sockaddr_in sa;
	int c = loopback_socket(SOCK_DGRAM, port, &sa);
	assert_int_equal(sendto(c, "ping", 4, 0, (struct sockaddr *)&sa, sizeof(sa)), 4);
	uint16_t guest_port = 22;
	assert_true(run_loop(b, 2000, udp_to_guest_port, &guest_port));
	for (unsigned i = 0; i < n_frames; i++) {
		const uint8_t *ip = ipv4_of(i, 17);
		if (ip && be16(ip + 22) == 22) {
			assert_int_equal(be32(ip + 16), GUEST_IP);
			assert_int_equal(be16(ip + 24), 8 + 4);
			assert_memory_equal(ip + 28, "ping", 4);
		}
	}
	close(c);
	backend_destroy(b);
}

static void check_busy(int type, const char *proto)
{
	uint16_t port;
	int s = bound_loopback(type, &port);
	struct net_config cfg;
	net_config_init(&cfg);
	add_fwd(&cfg, proto, port);
	char err[NET_ERR_MAX], expected[NET_ERR_MAX];
	assert_int_equal(net_config_check(&cfg, err, sizeof(err)), 0);
	assert_null(backend_create(&cfg, frame_out, NULL, err, sizeof(err)));
	snprintf(expected, sizeof(expected), "hostfwd: cannot listen on %s 127.0.0.1:%u: the port is in use", proto,
		 port);
	assert_string_equal(err, expected);
	close(s);
	/* Free again: the same configuration starts. */
	struct slirp_backend *b = backend_create(&cfg, frame_out, NULL, err, sizeof(err));
	assert_non_null(b);
	backend_destroy(b);
}

static void test_busy_port(void **state)
{
	check_busy(SOCK_STREAM, "tcp");
	check_busy(SOCK_DGRAM, "udp");
}

/* A guest SYN to 10.0.2.2:port reaches a host server on 127.0.0.1:port only
 * without restrict; with restrict=on the guest gets a RST and the server
 * nothing, while forwards still reach the guest. */
static int guest_connects_to_host(bool restricted, bool complete_csum, uint8_t *answer_flags)
{
	struct net_config cfg;
	net_config_init(&cfg);
	set(&cfg, "ipv6", "off");
	set(&cfg, "restrict", restricted ? "on" : "off");
	uint16_t fwd_port = free_port();
	add_fwd(&cfg, "tcp", fwd_port);
	uint16_t port;
	int server = bound_loopback(SOCK_STREAM, &port);
	struct slirp_backend *b = create(&cfg);
	guest_arp_request(b, HOST_IP);
	guest_tcp(b, 40000, HOST_IP, port, TCP_SYN, complete_csum);

	uint8_t syn_ack = TCP_SYN | TCP_ACK, rst = TCP_RST;
	int accepted = -1;
	uint64_t end = host_now_ns() + 500000000u;
	while (host_now_ns() < end && accepted < 0 && !find_tcp(syn_ack) && !find_tcp(rst)) {
		run_loop(b, 20, NULL, NULL);
		accepted = accept(server, NULL, NULL);
	}
	run_loop(b, 50, NULL, NULL); /* the answer to the guest, if any */
	if (accepted < 0)
		accepted = accept(server, NULL, NULL);
	*answer_flags = find_tcp(syn_ack) ? syn_ack : find_tcp(rst) ? rst : 0;

	/* Forwards work either way. */
	struct sockaddr_in sa;
	int c = loopback_socket(SOCK_STREAM, fwd_port, &sa);
	assert_true(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS);
	n_frames = 0;
	uint8_t syn = TCP_SYN;
	assert_true(run_loop(b, 2000, tcp_found, &syn));
	close(c);

	backend_destroy(b);
	close(server);
	if (accepted >= 0)
		close(accepted);
	n_frames = 0;
	return accepted >= 0;
}

static void test_restrict(void **state)
{
	uint8_t answer;
	assert_true(guest_connects_to_host(false, true, &answer));
	assert_int_equal(answer, TCP_SYN | TCP_ACK);
	assert_false(guest_connects_to_host(true, true, &answer));
	assert_int_equal(answer, TCP_RST);
}

/* A datagram from the guest to 10.0.2.2:port, its checksum left partial:
 * does it reach a host socket on 127.0.0.1:port? */
static bool guest_datagram_reaches_host(bool restricted)
{
	struct net_config cfg;
	net_config_init(&cfg);
	set(&cfg, "ipv6", "off");
	set(&cfg, "restrict", restricted ? "on" : "off");
	uint16_t port;
	int server = bound_loopback(SOCK_DGRAM, &port);
	struct slirp_backend *b = create(&cfg);
	guest_arp_request(b, HOST_IP);

	uint8_t f[14 + 20 + 8 + 4];
	size_t o = eth_header(f, broadcast_mac, ETH_IPV4);
	ip_header(f + o, 17, GUEST_IP, HOST_IP, 8 + 4);
	uint8_t *udp = f + o + 20;
	put_be16(udp, 40000);
	put_be16(udp + 2, port);
	put_be16(udp + 4, 8 + 4);
	memcpy(udp + 8, "pong", 4);
	pseudo_header_sum(udp + 6, 17, GUEST_IP, HOST_IP, 8 + 4);
	struct backend_tx_csum csum = {.needed = true, .start = 34, .offset = 6};
	assert_int_equal(backend_input(b, f, sizeof(f), &csum), 0);

	char buf[8];
	ssize_t got = -1;
	uint64_t end = host_now_ns() + 300000000u;
	while (got < 0 && host_now_ns() < end) {
		run_loop(b, 10, NULL, NULL);
		got = recv(server, buf, sizeof(buf), 0);
	}
	backend_destroy(b);
	close(server);
	if (got < 0)
		return false;
	assert_int_equal(got, 4);
	assert_memory_equal(buf, "pong", 4);
	return true;
}

static void test_restrict_udp(void **state)
{
	assert_true(guest_datagram_reaches_host(false));
	assert_false(guest_datagram_reaches_host(true));
}

/* libslirp drops a segment whose checksum the guest left partial unless the
 * backend completes it. */
static void test_partial_checksum_completed(void **state)
{
	uint8_t answer;
	assert_false(guest_connects_to_host(false, false, &answer));
	assert_int_equal(answer, 0);
}

static int connect_loopback(uint16_t port)
{
	struct sockaddr_in sa;
	int c = loopback_socket(SOCK_STREAM, port, &sa);
	assert_true(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS);
	return c;
}

/* What a dev-net restart does to a forwarded connection (slirp_backend.c's
 * top comment): the host side is closed, the forward listens again at once,
 * the guest's next segment of the old connection gets a RST, and a new
 * connection reaches the guest. */
static void test_restart(void **state)
{
	struct net_config cfg;
	net_config_init(&cfg);
	set(&cfg, "ipv6", "off");
	uint16_t port = free_port();
	add_fwd(&cfg, "tcp", port);
	struct slirp_backend *b = create(&cfg);
	guest_arp_request(b, HOST_IP);
	int c = connect_loopback(port);
	uint8_t syn = TCP_SYN, rst = TCP_RST;
	assert_true(run_loop(b, 2000, tcp_found, &syn));
	uint16_t slirp_port = be16(find_tcp(TCP_SYN) + 20); /* the connection, as the guest sees it */

	backend_destroy(b); /* what the kernel does to a killed process's sockets */
	char byte;
	struct pollfd pfd = {.fd = c, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	assert_true(recv(c, &byte, 1, 0) <= 0); /* EOF or reset, not silence */
	close(c);

	n_frames = 0;
	b = create(&cfg); /* the forward binds again over the old connection's TIME_WAIT */
	guest_arp_request(b, HOST_IP); /* the new instance's ARP table starts empty */
	guest_tcp(b, 22, HOST_IP, slirp_port, TCP_ACK, true);
	assert_true(run_loop(b, 1000, tcp_found, &rst));
	assert_int_equal(be16(find_tcp(TCP_RST) + 20), slirp_port);
	assert_int_equal(be16(find_tcp(TCP_RST) + 22), 22);
	n_frames = 0;
	c = connect_loopback(port);
	assert_true(run_loop(b, 1000, tcp_found, &syn));
	close(c);
	backend_destroy(b);
}

static void test_bad_frames(void **state)
{
	struct net_config cfg;
	net_config_init(&cfg);
	set(&cfg, "ipv6", "off");
	struct slirp_backend *b = create(&cfg);
	static uint8_t big[14 + 65536];
	assert_int_equal(backend_input(b, big, sizeof(big), NULL), -1);
	uint8_t f[60] = {0};
	struct backend_tx_csum csum = {.needed = true, .start = 50, .offset = 9};
	assert_int_equal(backend_input(b, f, sizeof(f), &csum), -1);
	assert_int_equal(backend_input(b, f, 3, NULL), 0); /* runt: libslirp ignores it */
	assert_int_equal(n_frames, 0);
	backend_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_complete),
		cmocka_unit_test(test_csum_offsets_outside_the_frame),
		cmocka_unit_test_setup(test_arp_reply, setup),
		cmocka_unit_test_setup(test_dhcp_offer, setup),
		cmocka_unit_test_setup(test_ipv6_switch, setup),
		cmocka_unit_test_setup(test_hostfwd_syn, setup),
		cmocka_unit_test_setup(test_hostfwd_udp, setup),
		cmocka_unit_test_setup(test_busy_port, setup),
		cmocka_unit_test_setup(test_restrict, setup),
		cmocka_unit_test_setup(test_restrict_udp, setup),
		cmocka_unit_test_setup(test_partial_checksum_completed, setup),
		cmocka_unit_test_setup(test_restart, setup),
		cmocka_unit_test_setup(test_bad_frames, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
