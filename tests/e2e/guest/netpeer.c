/* netpeer.c - a helper the network tests build statically on the host and
 * copy into the guest (busybox has no UDP listener, and httpd listens with a
 * backlog of 9, which a burst of 100 connections overflows into SYN cookies):
 *   netpeer udp-echo PORT    answer every datagram with itself
 *   netpeer tcp-reply PORT   for each connection: read the request (up to an
 *                            empty line), answer "netpeer-reply\n", close;
 *                            listen backlog 256, one child per connection */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int bound(int type, int port)
{
	int s = socket(AF_INET, type, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a))) {
		perror("netpeer: bind");
		exit(1);
	}
	return s;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int port = atoi(argv[2]);
	char buf[65536];
	if (!strcmp(argv[1], "udp-echo")) {
		int s = bound(SOCK_DGRAM, port);
		for (;;) {
			struct sockaddr_in peer;
			socklen_t len = sizeof(peer);
			ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &len);
			if (n >= 0)
				sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&peer, len);
		}
	}
	int s = bound(SOCK_STREAM, port);
	listen(s, 256);
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		if (fork() == 0) {
			size_t got = 0;
			ssize_t n;
			while (got < sizeof(buf) - 1 && (n = read(c, buf + got, sizeof(buf) - 1 - got)) > 0) {
				got += (size_t)n;
				buf[got] = '\0';
				if (strstr(buf, "\r\n\r\n"))
					break;
			}
			static const char reply[] = "netpeer-reply\n";
			write(c, reply, sizeof(reply) - 1);
			_exit(0);
		}
		close(c);
	}
}
