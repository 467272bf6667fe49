/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * physmem-bench: what a buffer from physmemd costs, against the baseline of
 * doing the same thing locally, measured in the same run.
 *
 *   physmem-bench [--socket PATH] [--size BYTES] [--rounds N] [--runs N] [--iters N] [--live N]
 *   physmem-bench --pairs N     (only N 4 KiB Allocate + Free pairs, for counting syscalls)
 *
 * Prints, for each figure, the physmem time, the baseline time and their
 * ratio; the call path's quantiles up to p99.9 on both sides; json-c's own
 * time for the messages of one 4 KiB pair beside that pair's p50 gap; and
 * what a 4 KiB release costs in-process, punched and closed as the daemon
 * does it or closed alone as the floor does. Nothing is asserted: timings
 * depend on the machine.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#include <json-c/json.h>

#include "bench-util.h"
#include "physmem.h"

static void report(const char *what, double physmem, double baseline, const char *unit, double scale)
{
	printf("%-38s physmem %10.2f %s   baseline %10.2f %s   ratio %6.2fx\n", what, physmem * scale, unit,
	       baseline * scale, unit, physmem / baseline);
}

/* Allocate, map, touch one byte per page, unmap and free: through the daemon. */
static double physmem_cycle(struct physmem *pm, size_t size, unsigned rounds)
{
	double t0 = bench_now();

	for (unsigned i = 0; i < rounds; i++) {
		struct physmem_buffer *buf;
		volatile char *p;

		if (physmem_alloc(pm, size, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
			fprintf(stderr, "physmem-bench: alloc: %s\n", physmem_error_message(pm));
			exit(1);
		}
		p = physmem_buffer_map(buf);
		for (size_t off = 0; off < size; off += 4096)
			p[off] = 1;
		physmem_buffer_free(buf);
	}
	return (bench_now() - t0) / rounds;
}

/* The same locally: a sealed, populated memfd of our own. */
static double local_cycle(size_t size, unsigned rounds)
{
	double t0 = bench_now();

	for (unsigned i = 0; i < rounds; i++) {
		int fd = memfd_create("bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		volatile char *p;

		if (fd < 0 || ftruncate(fd, (off_t)size) < 0 || fallocate(fd, 0, 0, (off_t)size) < 0)
			exit(1);
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			exit(1);
		for (size_t off = 0; off < size; off += 4096)
			p[off] = 1;
		munmap((void *)p, size);
		close(fd);
	}
	return (bench_now() - t0) / rounds;
}

/* ---- the call path against its floor (issue 11) ---- */

/*
 * One 4 KiB Allocate + Free as libphysmem writes the calls (strace of this
 * tree), with the replies this daemon sends them (wire_capture()), NUL
 * included: the floor's message sizes, and the text json_cost() parses.
 */
enum { WIRE_ALLOC_CALL, WIRE_ALLOC_REPLY, WIRE_FREE_CALL, WIRE_FREE_REPLY, WIRE_N };
static struct {
	char text[WIRE_N][2048];
	size_t len[WIRE_N];
} wire;

/* Send wire.text[i] on sock, then read the reply into wire.text[i + 1] (an fd with it is closed). */
static void wire_exchange(int sock, unsigned i)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	char *out = wire.text[i + 1];
	size_t got = 0;

	wire.len[i] = strlen(wire.text[i]) + 1;
	if (send(sock, wire.text[i], wire.len[i], MSG_NOSIGNAL) != (ssize_t)wire.len[i])
		bench_die("capture: send");
	while (got == 0 || out[got - 1] != '\0') {
		struct iovec iov = { .iov_base = out + got, .iov_len = sizeof(wire.text[0]) - got };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf) };
		struct cmsghdr *c;
		ssize_t n;

		if (iov.iov_len == 0) {
			errno = EMSGSIZE;
			bench_die("capture: recvmsg");
		}
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n <= 0)
			bench_die("capture: recvmsg");
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
					int fd;

					memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
					close(fd);
				}
		got += (size_t)n;
	}
	if (memchr(out, '\0', got) != out + got - 1) {
		fprintf(stderr, "physmem-bench: capture: more than one reply\n");
		exit(1);
	}
	wire.len[i + 1] = got;
}

/*
 * One 4 KiB Allocate + Free, its four messages kept in wire: written here on
 * the socket of a connection libphysmem made (it chose and checked the
 * daemon), which then has no call of its own.
 */
static void wire_capture(const char *path)
{
	struct json_object *reply, *v;
	struct physmem *pm;
	long long id;
	int sock, r;

	r = physmem_connect(path, &pm);
	if (r < 0) {
		fprintf(stderr, "physmem-bench: connect: %s\n", strerror(-r));
		exit(1);
	}
	sock = physmem_fd(pm);
	snprintf(wire.text[WIRE_ALLOC_CALL], sizeof(wire.text[0]),
		 "{\"method\":\"io.physmem.Manager.Allocate\",\"parameters\":{\"size\":4096,\"cache\":\"cached\"}}");
	wire_exchange(sock, WIRE_ALLOC_CALL);
	reply = json_tokener_parse(wire.text[WIRE_ALLOC_REPLY]);
	if (!json_object_object_get_ex(reply, "parameters", &v) || !json_object_object_get_ex(v, "buffer", &v) ||
	    !json_object_object_get_ex(v, "id", &v)) {
		fprintf(stderr, "physmem-bench: capture: Allocate replied %s\n", wire.text[WIRE_ALLOC_REPLY]);
		exit(1);
	}
	id = json_object_get_int64(v);
	json_object_put(reply);
	snprintf(wire.text[WIRE_FREE_CALL], sizeof(wire.text[0]),
		 "{\"method\":\"io.physmem.Manager.Free\",\"parameters\":{\"id\":%lld}}", id);
	wire_exchange(sock, WIRE_FREE_CALL);
	physmem_disconnect(pm);
}

/*
 * json-c's part of one pair, in seconds: parsing each of its four messages
 * (the client the replies, the daemon the calls) into json-c objects and
 * freeing them, as varlink-stream.c does (one parser, reset per message,
 * on the C locale). Hot caches, so a lower bound of what it costs there.
 */
static double json_cost(void)
{
	struct json_tokener *tok = json_tokener_new_ex(64);
	locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0), own;
	double best = 1e9;

	if (!tok || !c)
		bench_die("json-c");
	own = uselocale(c);
	for (unsigned round = 0; round < 5; round++) {
		double t0 = bench_now(), t;

		for (unsigned n = 0; n < 400; n++)
			for (unsigned i = 0; i < WIRE_N; i++) {
				struct json_object *o;

				json_tokener_reset(tok);
				o = json_tokener_parse_ex(tok, wire.text[i], (int)wire.len[i]);
				if (!o)
					bench_die("json-c: parse");
				json_object_put(o);
			}
		t = (bench_now() - t0) / 400;
		if (t < best)
			best = t;
	}
	uselocale(own);
	freelocale(c);
	json_tokener_free(tok);
	return best;
}

/*
 * One 4 KiB buffer's release, in seconds, done in-process: the daemon's
 * (punch the file out, then close it; on a worker, eight at a time) and the
 * floor's (close alone, in its own iteration). The client's fd and mapping
 * are gone first in both, as in a pair. Best of 5 rounds of 400.
 */
static void release_cost(double *ret_punch_close, double *ret_close)
{
	double best[2] = { 1e9, 1e9 };

	for (unsigned round = 0; round < 10; round++) {
		bool punch = round % 2 == 0;
		double t = 0;

		for (unsigned n = 0; n < 400; n++) {
			int fd = memfd_create("release", MFD_CLOEXEC | MFD_ALLOW_SEALING), peer;
			volatile char *p;
			double t0;

			if (fd < 0 || ftruncate(fd, 4096) < 0 ||
			    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
				bench_die("release: memfd");
			peer = dup(fd);
			p = peer < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, peer, 0);
			if (p == MAP_FAILED)
				bench_die("release: map");
			p[0] = 1;
			munmap((void *)p, 4096);
			close(peer);
			t0 = bench_now();
			if (punch && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) < 0)
				bench_die("release: punch");
			close(fd);
			t += bench_now() - t0;
		}
		t /= 400;
		if (t < best[!punch])
			best[!punch] = t;
	}
	*ret_punch_close = best[0];
	*ret_close = best[1];
}

/* The floor's peer: answers each message with one of the reply's size, the first of a pair with an fd. */
static void floor_server(int sock)
{
	char in[4096], out[4096];
	int fd = memfd_create("floor", MFD_CLOEXEC);
	unsigned n = 0;

	memset(out, 'x', sizeof(out));
	for (;;) {
		ssize_t got = recv(sock, in, sizeof(in), 0);
		bool first = n++ % 2 == 0;
		size_t len = first ? wire.len[WIRE_ALLOC_REPLY] : wire.len[WIRE_FREE_REPLY];

		if (got <= 0)
			_exit(0);
		if (bench_send_fd(sock, out, len, first ? fd : -1) < 0)
			_exit(1);
	}
}

/* The memory work of one buffer done in-process: create, size, seal, allocate, map, populate, unmap, close. */
static void floor_memory(size_t size)
{
	int fd = memfd_create("floor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	volatile char *p;

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		bench_die("floor: memfd");
	/* What libphysmem's map does for a memfd buffer: allocate the file, map, populate. */
	if (fallocate(fd, 0, 0, (off_t)size) < 0)
		bench_die("floor: fallocate");
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		bench_die("floor: mmap");
	if (madvise((void *)p, size, MADV_POPULATE_WRITE) < 0)
		for (size_t off = 0; off < size; off += 4096)
			p[off] = 0;
	p[0] = 1;
	munmap((void *)p, size);
	close(fd);
}

/* One floor iteration: two bare round trips (the first brings an fd back) and the memory work. */
static void floor_once(int sock, size_t size)
{
	char msg[4096];
	int fd;

	memset(msg, 'x', sizeof(msg));
	if (send(sock, msg, wire.len[WIRE_ALLOC_CALL], MSG_NOSIGNAL) != (ssize_t)wire.len[WIRE_ALLOC_CALL])
		bench_die("floor: send");
	fd = bench_recv_fd(sock, wire.len[WIRE_ALLOC_REPLY]);
	if (fd < 0)
		bench_die("floor: no fd");
	close(fd);
	floor_memory(size);
	if (send(sock, msg, wire.len[WIRE_FREE_CALL], MSG_NOSIGNAL) != (ssize_t)wire.len[WIRE_FREE_CALL])
		bench_die("floor: send");
	if (bench_recv_fd(sock, wire.len[WIRE_FREE_REPLY]) == -2)
		bench_die("floor: recvmsg: end of file");
}

/* One physmem iteration: Allocate, map (populated), touch, Free. */
static void physmem_once(struct physmem *pm, size_t size)
{
	struct physmem_buffer *buf;
	volatile char *p;

	if (physmem_alloc(pm, size, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
		fprintf(stderr, "physmem-bench: alloc: %s\n", physmem_error_message(pm));
		exit(1);
	}
	p = physmem_buffer_map(buf);
	if (!p)
		bench_die("map");
	p[0] = 1;
	if (physmem_buffer_free(buf) < 0)
		bench_die("free");
}

/* The quantiles of one side's iterations in a run that the bench prints. */
static const double tail_q[] = { 0.5, 0.9, 0.95, 0.99, 0.999 };
#define N_TAIL (sizeof(tail_q) / sizeof(tail_q[0]))

struct lat {
	double p50, p99;
	double q[N_TAIL];	/* at tail_q */
};

static void lat_fill(struct lat *l, double *v, unsigned n)
{
	for (unsigned k = 0; k < N_TAIL; k++)
		l->q[k] = bench_quantile(v, n, tail_q[k]);
	l->p50 = l->q[0];
	l->p99 = l->q[3];
}

/*
 * Iterations of each side in a row before the other's. The daemon finishes
 * a Free's release after its reply, on a worker: with the two sides taking
 * turns at every iteration, that work landed in whichever iteration ran
 * next, the floor's or physmem's, depending on the scheduler (pinned to one
 * CPU, the p50 ratio of the same daemon measured 1.1 or 1.4 from one run to
 * the next). In blocks, a side's leftover work stays in its own block but
 * at the block's end.
 */
#define CALL_BLOCK 50

/*
 * One run: iters iterations of physmem and of the floor, taking turns in
 * blocks so that load from elsewhere hits both alike; their p50 and p99.
 */
static void call_run(struct physmem *pm, int floor_sock, size_t size, unsigned iters, struct lat *ret_pm,
		     struct lat *ret_floor)
{
	double *a = calloc(iters, sizeof(double)), *b = calloc(iters, sizeof(double));

	if (!a || !b)
		bench_die("calloc");
	for (unsigned start = 0; start < iters; start += CALL_BLOCK) {
		unsigned end = start + CALL_BLOCK < iters ? start + CALL_BLOCK : iters;

		for (unsigned i = start; i < end; i++) {
			double t0 = bench_now();

			physmem_once(pm, size);
			a[i] = bench_now() - t0;
		}
		for (unsigned i = start; i < end; i++) {
			double t0 = bench_now();

			floor_once(floor_sock, size);
			b[i] = bench_now() - t0;
		}
	}
	lat_fill(ret_pm, a, iters);
	lat_fill(ret_floor, b, iters);
	free(a);
	free(b);
}

static void print_spread(const char *what, double *ratio, double *pm, double *fl, unsigned runs)
{
	double r[3], p[3], f[3];

	bench_spread(ratio, runs, r);
	bench_spread(pm, runs, p);
	bench_spread(fl, runs, f);
	printf("PHYSMEM-BENCH %-26s ratio %.2f/%.2f/%.2fx  physmem %.1f/%.1f/%.1f us  floor %.1f/%.1f/%.1f us"
	       "  (min/median/max of %u runs)\n",
	       what, r[0], r[1], r[2], p[0] * 1e6, p[1] * 1e6, p[2] * 1e6, f[0] * 1e6, f[1] * 1e6, f[2] * 1e6, runs);
}

/*
 * The call-path ratios for one size: p50 and p99 of Allocate + map +
 * Free against the floor. Returns the median over the runs of physmem's p50
 * less the floor's, in seconds.
 */
static double call_bench(struct physmem *pm, int floor_sock, size_t size, unsigned iters, unsigned runs)
{
	double r50[runs], r99[runs], p50[runs], p99[runs], f50[runs], f99[runs], gap[runs], g[3];
	double pq[N_TAIL][runs], fq[N_TAIL][runs], pm_q[N_TAIL], floor_q[N_TAIL];
	char what[64];

	/* Warm-up: first faults, the daemon's first buffers. */
	for (unsigned i = 0; i < 20; i++) {
		physmem_once(pm, size);
		floor_once(floor_sock, size);
	}
	for (unsigned r = 0; r < runs; r++) {
		struct lat a, b;

		call_run(pm, floor_sock, size, iters, &a, &b);
		p50[r] = a.p50;
		p99[r] = a.p99;
		f50[r] = b.p50;
		f99[r] = b.p99;
		r50[r] = a.p50 / b.p50;
		r99[r] = a.p99 / b.p99;
		gap[r] = a.p50 - b.p50;
		for (unsigned k = 0; k < N_TAIL; k++) {
			pq[k][r] = a.q[k];
			fq[k][r] = b.q[k];
		}
	}
	snprintf(what, sizeof(what), "%zuKiB alloc+map+free p50", size / 1024);
	print_spread(what, r50, p50, f50, runs);
	snprintf(what, sizeof(what), "%zuKiB alloc+map+free p99", size / 1024);
	print_spread(what, r99, p99, f99, runs);
	/* Where the tail begins (docs/PERFORMANCE.md, "Where the 4 KiB tail begins"). */
	for (unsigned k = 0; k < N_TAIL; k++) {
		bench_spread(pq[k], runs, g);
		pm_q[k] = g[1];
		bench_spread(fq[k], runs, g);
		floor_q[k] = g[1];
	}
	printf("PHYSMEM-BENCH %zuKiB quantiles p50/p90/p95/p99/p99.9  physmem %.1f/%.1f/%.1f/%.1f/%.1f us"
	       "  floor %.1f/%.1f/%.1f/%.1f/%.1f us  (medians of %u runs)\n",
	       size / 1024, pm_q[0] * 1e6, pm_q[1] * 1e6, pm_q[2] * 1e6, pm_q[3] * 1e6, pm_q[4] * 1e6,
	       floor_q[0] * 1e6, floor_q[1] * 1e6, floor_q[2] * 1e6, floor_q[3] * 1e6, floor_q[4] * 1e6, runs);
	bench_spread(gap, runs, g);
	return g[1];
}

/* Seconds per byte to fill a mapping, best of a few passes. */
static double fill_rate(void *p, size_t size)
{
	double best = 1e9;

	for (int pass = 0; pass < 5; pass++) {
		double t0 = bench_now(), t;

		memset(p, pass, size);
		t = bench_now() - t0;
		if (t < best)
			best = t;
	}
	return best / (double)size;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'z' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'R' },
		{ "iters", required_argument, NULL, 'i' },
		{ "pairs", required_argument, NULL, 'p' },
		{ "live", required_argument, NULL, 'l' },
		{},
	};
	const char *socket_path = NULL;
	size_t size = 1 << 20, big = 64 << 20;
	unsigned rounds = 200, runs = 5, iters = 1000, pairs = 0, live = 0;
	struct physmem_buffer *buf;
	struct physmem *pm, *holder = NULL;
	double gap, json, punch_close, close_only;
	char share[32];
	pid_t floor_pid;
	int floor_sock;
	void *local;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 's')
			socket_path = optarg;
		else if (opt == 'z')
			size = strtoull(optarg, NULL, 0);
		else if (opt == 'r')
			rounds = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'R')
			runs = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'i')
			iters = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'p')
			pairs = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'l')
			live = (unsigned)strtoul(optarg, NULL, 0);
		else
			return 2;
	}
	if (runs < 1 || runs > 100 || iters < 10 || rounds < 1 || size == 0) {
		fprintf(stderr, "physmem-bench: --runs 1..100, --iters >= 10, --rounds >= 1, --size > 0\n");
		return 2;
	}
	r = physmem_connect(socket_path, &pm);
	if (r < 0) {
		fprintf(stderr, "physmem-bench: connect: %s\n", strerror(-r));
		return 1;
	}

	/* Only the calls, for counting the daemon's syscalls per Allocate + Free pair. */
	if (pairs > 0) {
		for (unsigned i = 0; i < pairs; i++) {
			if (physmem_alloc(pm, 4096, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
				fprintf(stderr, "physmem-bench: alloc: %s\n", physmem_error_message(pm));
				return 1;
			}
			if (physmem_buffer_free(buf) < 0)
				bench_die("free");
		}
		physmem_disconnect(pm);
		return 0;
	}

	/*
	 * --live N: another connection holds N 4 KiB buffers while the calls
	 * are measured (the daemon's per-call cost must not grow with them).
	 */
	if (live > 0) {
		r = physmem_connect(socket_path, &holder);
		if (r < 0) {
			fprintf(stderr, "physmem-bench: connect: %s\n", strerror(-r));
			return 1;
		}
		for (unsigned i = 0; i < live; i++) {
			if (physmem_alloc(holder, 4096, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
				fprintf(stderr, "physmem-bench: --live: buffer %u: %s\n", i,
					physmem_error_message(holder));
				return 1;
			}
			physmem_buffer_close(buf);
		}
		printf("PHYSMEM-BENCH live buffers: %u, held by another connection during the calls\n", live);
	}
	wire_capture(socket_path);
	floor_sock = bench_peer_start(floor_server, &floor_pid);
	gap = call_bench(pm, floor_sock, 4096, iters, runs);
	/*
	 * What of the 4 KiB gap is json-c's: parsing alone, hot, so at least
	 * this much of it (docs/PERFORMANCE.md).
	 */
	json = json_cost();
	snprintf(share, sizeof(share), gap > 0 ? "%.2f" : "none", json / gap);
	printf("PHYSMEM-BENCH 4KiB json-c parse+free of the pair's messages (%zu+%zu+%zu+%zu B) %.1f us, "
	       "%s of the p50 gap (%.1f us)\n",
	       wire.len[WIRE_ALLOC_CALL], wire.len[WIRE_ALLOC_REPLY], wire.len[WIRE_FREE_CALL],
	       wire.len[WIRE_FREE_REPLY], json * 1e6, share, gap * 1e6);
	release_cost(&punch_close, &close_only);
	printf("PHYSMEM-BENCH 4KiB release in-process: punch+close %.1f us (the daemon's, on a worker), "
	       "close alone %.1f us (the floor's, in each of its pairs)\n", punch_close * 1e6, close_only * 1e6);
	call_bench(pm, floor_sock, 1 << 20, iters / 5 < 10 ? 10 : iters / 5, runs);
	close(floor_sock);
	waitpid(floor_pid, NULL, 0);

	report("alloc+map+touch+free (per buffer)", physmem_cycle(pm, size, rounds), local_cycle(size, rounds),
	       "us", 1e6);

	if (physmem_alloc(pm, big, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
		fprintf(stderr, "physmem-bench: alloc: %s\n", physmem_error_message(pm));
		return 1;
	}
	local = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (local == MAP_FAILED || !physmem_buffer_map(buf))
		return 1;
	/* Bytes per second: the baseline is ordinary anonymous memory. */
	{
		double pr = fill_rate(physmem_buffer_map(buf), big), lr = fill_rate(local, big);

		printf("%-38s physmem %10.2f GiB/s  baseline %10.2f GiB/s  ratio %6.2fx\n",
		       "memset of a 64 MiB cached buffer", 1 / pr / (1 << 30), 1 / lr / (1 << 30), lr / pr);
	}
	physmem_buffer_free(buf);
	munmap(local, big);
	physmem_disconnect(holder);
	physmem_disconnect(pm);
	return 0;
}
