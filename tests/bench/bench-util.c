/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-util: what the benchmarks in tests/bench/ share (see bench-util.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "varlink-stream.h"

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

_Noreturn void bench_die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
	exit(1);
}

ssize_t bench_send_fd(int sock, const void *data, size_t len, int fd)
{
	ssize_t n = vl_send_fds(sock, data, len, &fd, fd >= 0 ? 1 : 0);

	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return n;
}

int bench_recv_fd(int sock, size_t len)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	char data[4096];
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	size_t got = 0;
	int fd = -1;

	if (len > sizeof(data)) {
		errno = EMSGSIZE;
		bench_die("floor: recvmsg");
	}
	while (got < len) {
		struct cmsghdr *c;
		ssize_t n;

		iov.iov_base = data + got;
		iov.iov_len = len - got;
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n == 0)
			return -2;
		if (n < 0)
			bench_die("floor: recvmsg");
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				memcpy(&fd, CMSG_DATA(c), sizeof(int));
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		got += (size_t)n;
	}
	return fd;
}

int bench_peer_start(void (*peer)(int sock), pid_t *ret_pid)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		bench_die("socketpair");
	pid = fork();
	if (pid < 0)
		bench_die("fork");
	if (pid == 0) {
		close(sv[0]);
		peer(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	*ret_pid = pid;
	return sv[0];
}

int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_quantile(double *v, unsigned n, double q)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return v[(unsigned)(q * (n - 1) + 0.5)];
}

void bench_spread(const double *v, unsigned n, double ret[3])
{
	double *s = malloc(n * sizeof(*s));

	if (!s)
		bench_die("malloc");
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), bench_cmp_double);
	ret[0] = s[0];
	ret[1] = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	ret[2] = s[n - 1];
	free(s);
}
