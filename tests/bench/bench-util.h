/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers the benchmarks in tests/bench/ share: the clock, failing, the fd
 * passing of their raw floors and min/median/max of a run's figures.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Seconds on the monotonic clock. */
double bench_now(void);

/* Report a failed system call ("<program>: what: strerror(errno)") and exit(1). */
_Noreturn void bench_die(const char *what);

/*
 * One sendmsg() of len bytes, with fd as SCM_RIGHTS unless it is -1: the
 * protocol library's vl_send_fds(), so MSG_DONTWAIT (the benchmarks have one
 * message out at a time, their sockets never fill). Returns the bytes sent,
 * or -1 with errno set.
 */
ssize_t bench_send_fd(int sock, const void *data, size_t len, int fd);

/*
 * Receive exactly len bytes (at most 4096) and up to one fd: returns the fd
 * (or -1 when none came), -2 on end of file; dies on an error.
 */
int bench_recv_fd(int sock, size_t len);

/*
 * Fork a peer for a floor's round trips: peer(sock) runs in the child (it
 * should _exit()) on one end of a socketpair. Returns the other end; the
 * child's pid goes to ret_pid. Dies on a failure.
 */
int bench_peer_start(void (*peer)(int sock), pid_t *ret_pid);

/* qsort() order of doubles. */
int bench_cmp_double(const void *a, const void *b);

/* The q-quantile (0..1) of n samples, nearest rank (sorts them in place). */
double bench_quantile(double *v, unsigned n, double q);

/* min, median (mean of the middle two for even n), max of n >= 1 values (sorts a copy). */
void bench_spread(const double *v, unsigned n, double ret[3]);
