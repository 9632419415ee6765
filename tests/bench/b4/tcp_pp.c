/* tests/bench/b4/tcp_pp.c: B4 peer: raw TCP ping-pong (blocking or busy-polling) and streaming. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int spin;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int xfer(int fd, char *b, size_t n, int rd)
{
	size_t d = 0;
	while (d < n) {
		ssize_t r = rd ? recv(fd, b + d, n - d, spin ? MSG_DONTWAIT : 0)
			       : send(fd, b + d, n - d, spin ? MSG_DONTWAIT : 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return -1;
		d += (size_t)r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	/* tcp_pp server PORT [spin] | tcp_pp client IP PORT SIZE ITERS block|spin [stream] */
	int one = 1, fd;
	struct sockaddr_in a = {.sin_family = AF_INET};

	if (argc < 3)
		return 2;
	if (!strcmp(argv[1], "server")) {
		int l = socket(AF_INET, SOCK_STREAM, 0);
		spin = argc > 3 && !strcmp(argv[3], "spin");
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		a.sin_port = htons((uint16_t)atoi(argv[2]));
		if (bind(l, (void *)&a, sizeof(a)) || listen(l, 1))
			return perror("bind"), 1;
		fd = accept(l, NULL, NULL);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		size_t hdr[3];
		while (xfer(fd, (char *)hdr, sizeof(hdr), 1) == 0) {
			/* ping-pong echoes the message; streaming answers one byte per message */
			char *b = malloc(hdr[0] ? hdr[0] : 1);
			for (size_t i = 0; i < hdr[1]; i++)
				if (xfer(fd, b, hdr[0], 1) || xfer(fd, b, hdr[2] ? 1 : hdr[0], 0))
					return 1;
			free(b);
		}
		return 0;
	}
	if (argc < 6)
		return 2;
	size_t size = strtoul(argv[4], NULL, 0), iters = strtoul(argv[5], NULL, 0);
	spin = argc > 6 && !strcmp(argv[6], "spin");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = htons((uint16_t)atoi(argv[3]));
	inet_pton(AF_INET, argv[2], &a.sin_addr);
	for (int i = 0; connect(fd, (void *)&a, sizeof(a)); i++) {
		if (i > 100)
			return perror("connect"), 1;
		usleep(50000);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int stream = argc > 7 && !strcmp(argv[7], "stream");
	size_t hdr[3] = {size, iters, (size_t)stream};
	char *b = calloc(1, size ? size : 1);
	xfer(fd, (char *)hdr, sizeof(hdr), 0);
	double t0 = now_s();
	size_t back = stream ? 1 : size;
	for (size_t i = 0; i < iters; i++)
		if (xfer(fd, b, size, 0) || xfer(fd, b, back, 1))
			return 1;
	double dt = now_s() - t0;
	if (!stream)
		printf("%.2f\n", dt / iters / 2 * 1e6); /* one-way latency, us */
	else
		printf("%.1f\n", size * (double)iters / dt / 1e6); /* MB/s, small ack per message */
	return 0;
}
