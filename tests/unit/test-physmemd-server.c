/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where connections live: the server's slot pool (max-connections plus
 * CONN_POOL_SPARE slots), and the heap past it or without it. The server's
 * source is compiled in here, so that the test sees the pool. An in-process
 * daemon (memfd backend whose large allocations wait until the test lets
 * them go) fills the pool with connections closed while their calls are
 * with a worker, then serves connections from the heap: calls, a worker
 * job, a heap connection closed while busy, and every slot and heap
 * connection given back (the ASan build poisons freed slots and checks
 * every free()).
 */
#include "../../daemon/physmemd-server.c"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test-daemon.h"

/* Large allocations wait for a byte on this pipe (the test's hold on the worker). */
static int hold[2] = { -1, -1 };

static int held_allocate(void *state, uint64_t size, bool contiguous, int cache, struct backend_buffer *ret,
			 const char **ret_feature)
{
	char x;

	if (size > WORKER_SMALL_JOB)
		assert_int_equal(read(hold[0], &x, 1), 1);
	return backend_memfd_ops.allocate(state, size, contiguous, cache, ret, ret_feature);
}

/* An in-process daemon for max_conns connections; no_pool: its pool reservation failed. */
static void daemon_start(struct test_daemon *d, uint64_t max_conns, bool no_pool)
{
	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	test_daemon_setup(d, "test-physmemd-server");
	d->conf.max_connections = max_conns;
	d->backend.allocate = held_allocate;
	test_daemon_serve(d);
	assert_non_null(d->server.pool);
	if (no_pool) {
		conn_pool_free(d->server.pool);
		d->server.pool = NULL;
	}
}

/* Run the loop once (a liveness deadline is the caller's). */
static void loop_once(struct test_daemon *d, uint64_t deadline)
{
	assert_true(test_loop_now_ms() < deadline);
	assert_true(event_base_loop(d->base, EVLOOP_ONCE) >= 0);
}

/* Let every held allocation go and run the loop until the workers are idle. */
static void release_hold(struct test_daemon *d)
{
	uint64_t deadline = test_loop_now_ms() + 20000;	/* liveness only */
	char go[256];

	memset(go, 'g', sizeof(go));
	assert_int_equal(write(hold[1], go, sizeof(go)), (ssize_t)sizeof(go));
	while (!worker_pool_idle(d->workers))
		loop_once(d, deadline);
}

/* Run the loop until no connection is left and no job pending, then shut down. */
static void daemon_stop(struct test_daemon *d)
{
	uint64_t deadline = test_loop_now_ms() + 20000;	/* liveness only */

	release_hold(d);
	while (d->server.n_conns > 0 || !worker_pool_idle(d->workers))
		loop_once(d, deadline);
	assert_true(!d->server.pool || d->server.pool->n_live == 0);
	assert_true(d->r.bytes == 0);
	test_daemon_teardown(d);
	assert_null(d->server.pool);
	close(hold[0]);
	close(hold[1]);
}

/* A client connection, accepted (the loop runs until the daemon has one more connection). */
static int client(struct test_daemon *d)
{
	uint64_t deadline = test_loop_now_ms() + 10000, n = d->server.n_conns;	/* liveness only */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->conf.socket_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	while (d->server.n_conns == n)
		loop_once(d, deadline);
	assert_int_equal(d->server.n_conns, n + 1);
	return fd;
}

/* The server's newest connection (the one client() just made). */
static struct conn *newest(struct test_daemon *d)
{
	struct conn *c, *last = NULL;

	TAILQ_FOREACH(c, &d->server.conns, entry)
		if (!last || c->id > last->id)
			last = c;
	assert_non_null(last);
	return last;
}

/* Is c one of the pool's slots? */
static bool in_pool(const struct server *s, const struct conn *c)
{
	const struct conn_pool *p = s->pool;

	return p && (const char *)c >= p->base && (const char *)c < p->base + p->cap * p->slot;
}

/* Send one call without waiting for its reply. */
static void send_call(int fd, const char *method, const char *params)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "{\"method\":\"io.physmem.Manager.%s\",\"parameters\":%s}", method, params);

	assert_true(n > 0 && (size_t)n < sizeof(msg));
	assert_int_equal(send(fd, msg, (size_t)n + 1, MSG_NOSIGNAL), n + 1);
}

/* Send one call and run the loop until its reply came; the reply, and the fds that came with it. */
static struct json_object *call(struct test_daemon *d, int fd, const char *method, const char *params, unsigned *ret_nfds)
{
	uint64_t deadline = test_loop_now_ms() + 10000;	/* liveness only */
	char buf[65536];
	size_t len = 0;

	*ret_nfds = 0;
	send_call(fd, method, params);
	while (len == 0 || buf[len - 1] != '\0') {
		char control[CMSG_SPACE(16 * sizeof(int))];
		struct iovec iov = { .iov_base = buf + len, .iov_len = sizeof(buf) - len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
				     .msg_controllen = sizeof(control) };
		ssize_t got;

		loop_once(d, deadline);
		got = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (got < 0 && errno == EAGAIN)
			continue;
		assert_true(got > 0);
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			unsigned n = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			assert_true(cm->cmsg_type == SCM_RIGHTS);
			for (unsigned i = 0; i < n; i++)
				close(((int *)CMSG_DATA(cm))[i]);
			*ret_nfds += n;
		}
		len += (size_t)got;
		assert_true(len < sizeof(buf));
	}
	return json_tokener_parse(buf);
}

/* Status's connection count, asked on fd (which must succeed). */
static int64_t status_connections(struct test_daemon *d, int fd)
{
	unsigned nfds;
	struct json_object *reply = call(d, fd, "Status", "{}", &nfds), *p, *v;
	int64_t n;

	assert_non_null(reply);
	assert_false(json_object_object_get_ex(reply, "error", &v));
	assert_true(json_object_object_get_ex(reply, "parameters", &p));
	assert_true(json_object_object_get_ex(p, "connections", &v));
	n = json_object_get_int64(v);

	json_object_put(reply);
	return n;
}

/* A 4 KiB Allocate on fd is answered with one fd. */
static void assert_small_allocate(struct test_daemon *d, int fd)
{
	unsigned nfds;
	struct json_object *reply = call(d, fd, "Allocate", "{\"size\":4096}", &nfds), *v;

	assert_non_null(reply);
	assert_false(json_object_object_get_ex(reply, "error", &v));
	assert_int_equal(nfds, 1);
	json_object_put(reply);
}

/* A large Allocate on a new connection, closed once its call is with a worker (held there or queued). */
static void close_while_busy(struct test_daemon *d)
{
	uint64_t deadline = test_loop_now_ms() + 10000, n;	/* liveness only */
	int fd = client(d);
	struct conn *c = newest(d);

	n = d->server.n_conns;
	send_call(fd, "Allocate", "{\"size\":8388608}");
	while (!c->busy)
		loop_once(d, deadline);
	close(fd);
	while (d->server.n_conns == n)
		loop_once(d, deadline);
	assert_true(c->gone && c->busy);
}

/*
 * The pool's functions alone: its slots are handed out lowest first; past
 * them connections come from the heap; each goes back where it came from.
 */
static void test_pool_full_then_heap(void **unused)
{
	struct server s = { .pool = conn_pool_new(1) };
	struct conn *c[CONN_POOL_SPARE + 3];
	size_t cap;

	(void)unused;
	assert_non_null(s.pool);
	cap = s.pool->cap;
	assert_int_equal(cap, 1 + CONN_POOL_SPARE);
	for (size_t i = 0; i < cap + 2; i++) {
		c[i] = conn_alloc(&s);
		assert_non_null(c[i]);
		c[i]->server = &s;
		/* Its events lie inside its own allocation. */
		assert_true((char *)c[i]->ev_stall + event_get_struct_event_size() <= (char *)c[i] + conn_size());
		memset(c[i]->ev_read, 0, conn_size() - conn_event_offset());
		if (i < cap)
			assert_ptr_equal(c[i], s.pool->base + i * s.pool->slot);
		else
			assert_false(in_pool(&s, c[i]));
	}
	assert_int_equal(s.pool->n_live, cap);
	/* A heap connection goes back to the heap: the pool's count does not move. */
	conn_release(c[cap]);
	assert_int_equal(s.pool->n_live, cap);
	/* A freed slot is the next one taken, before the heap. */
	conn_release(c[10]);
	assert_int_equal(s.pool->n_live, cap - 1);
	c[10] = conn_alloc(&s);
	c[10]->server = &s;
	assert_ptr_equal(c[10], s.pool->base + 10 * s.pool->slot);
	for (size_t i = 0; i < cap; i++)
		conn_release(c[i]);
	assert_int_equal(s.pool->n_live, 0);
	for (size_t w = 0; w < (cap + 63) / 64; w++)
		assert_int_equal(s.pool->used[w], 0);
	conn_release(c[cap + 1]);
	conn_pool_free(s.pool);
}

/*
 * server_done() while a worker still has calls of pool and heap
 * connections: the pool stays until its last slot is back, then goes;
 * a heap connection released after that is freed.
 */
static void test_pool_orphaned(void **unused)
{
	struct server s = { .listen_fd = -1, .pool = conn_pool_new(0) };
	struct conn *c[CONN_POOL_SPARE + 2];

	(void)unused;
	TAILQ_INIT(&s.conns);
	for (size_t i = 0; i < CONN_POOL_SPARE + 2; i++) {
		c[i] = conn_alloc(&s);
		assert_non_null(c[i]);
		c[i]->server = &s;
	}
	assert_true(in_pool(&s, c[0]) && !in_pool(&s, c[CONN_POOL_SPARE]));
	server_done(&s);
	assert_non_null(s.pool);
	assert_true(s.pool->orphaned);
	conn_release(c[CONN_POOL_SPARE]);
	for (size_t i = 0; i < CONN_POOL_SPARE; i++) {
		assert_non_null(s.pool);
		conn_release(c[i]);
	}
	assert_null(s.pool);
	conn_release(c[CONN_POOL_SPARE + 1]);
}

/*
 * Freeing the pool leaves no poisoned shadow behind (ASan build): the
 * address range is unmapped, and the next mapping there is new memory.
 */
static void test_pool_free_unpoisons(void **unused)
{
	struct server s = { .pool = conn_pool_new(4) };
	struct conn *c;
	size_t len;
	char *base, *again;

	(void)unused;
	assert_non_null(s.pool);
	base = s.pool->base;
	len = s.pool->cap * s.pool->slot;
	c = conn_alloc(&s);
	c->server = &s;
	conn_release(c);	/* its slot is poisoned now */
	conn_pool_free(s.pool);
	again = mmap(base, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	assert_ptr_equal(again, base);
	memset(again, 1, len);
	munmap(again, len);
}

/*
 * A full pool: 2 + CONN_POOL_SPARE connections closed while their calls
 * wait for the worker fill it; the next connections come from the heap
 * and are served (Status, a worker's Allocate with its fd), one of them
 * closed while busy; once the worker is let go every slot comes back, and
 * the next connection takes the pool's first slot again.
 */
static void test_daemon_heap_connections(void **unused)
{
	struct test_daemon d;
	struct conn *ca, *cb, *cc;
	int a, b, c;

	(void)unused;
	daemon_start(&d, 2, false);
	for (size_t i = 0; i < d.server.pool->cap; i++)
		close_while_busy(&d);
	assert_int_equal(d.server.n_conns, 0);
	assert_int_equal(d.server.pool->n_live, d.server.pool->cap);

	a = client(&d);
	ca = newest(&d);
	b = client(&d);
	cb = newest(&d);
	assert_false(in_pool(&d.server, ca));
	assert_false(in_pool(&d.server, cb));
	assert_int_equal(status_connections(&d, a), 2);
	assert_int_equal(status_connections(&d, b), 2);
	/* b closes while its call waits for the worker: a gone heap connection. */
	send_call(b, "Allocate", "{\"size\":8388608}");
	{
		uint64_t deadline = test_loop_now_ms() + 10000;	/* liveness only */

		while (!cb->busy)
			loop_once(&d, deadline);
		close(b);
		while (d.server.n_conns != 1)
			loop_once(&d, deadline);
	}
	assert_int_equal(status_connections(&d, a), 1);

	/* The worker goes on: the gone connections' calls end, their slots and b come back. */
	release_hold(&d);
	assert_int_equal(d.server.pool->n_live, 0);
	assert_small_allocate(&d, a);
	assert_int_equal(status_connections(&d, a), 1);

	c = client(&d);
	cc = newest(&d);
	assert_ptr_equal(cc, d.server.pool->base);
	assert_int_equal(status_connections(&d, c), 2);
	close(a);
	close(c);
	daemon_stop(&d);
}

/* Held memory the fake kernel keeps (kernel ids from HELD_BASE on), and how often it was asked. */
#define HELD_BASE 1000
static unsigned held_asked;
static bool block_release;

static int fake_held(void *state, uint64_t kernel_id)
{
	(void)state;
	held_asked++;
	return kernel_id >= HELD_BASE;
}

/* The memfd backend's release, waiting for a byte on hold while block_release is set. */
static void held_release(void *state, struct backend_buffer *b, bool keep)
{
	char x;

	if (block_release)
		assert_int_equal(read(hold[0], &x, 1), 1);
	backend_memfd_ops.release(state, b, keep);
}

/*
 * An in-process daemon whose uid (the test's) holds 200 freed buffers the
 * fake kernel keeps, with max_buffers for it; allocate and release replace
 * the memfd backend's when not NULL.
 */
static void held_daemon_start(struct test_daemon *d, uint64_t max_buffers,
			      int (*allocate)(void *, uint64_t, bool, int, struct backend_buffer *, const char **),
			      void (*release)(void *, struct backend_buffer *, bool))
{
	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	test_daemon_setup(d, "test-physmemd-held");
	d->conf.max_buffers_per_uid = max_buffers;
	d->backend.held = fake_held;
	if (allocate)
		d->backend.allocate = allocate;
	if (release)
		d->backend.release = release;
	test_daemon_serve(d);
	for (unsigned i = 0; i < 200; i++)
		assert_int_equal(registry_add_held(&d->r, getuid(), 4096, HELD_BASE + i, false), 0);
}

/* The id of the buffer an Allocate on fd got. */
static uint64_t allocate_id(struct test_daemon *d, int fd)
{
	unsigned nfds;
	struct json_object *reply = call(d, fd, "Allocate", "{\"size\":4096}", &nfds), *p, *b, *v;
	uint64_t id;

	assert_non_null(reply);
	assert_true(json_object_object_get_ex(reply, "parameters", &p));
	assert_true(json_object_object_get_ex(p, "buffer", &b));
	assert_true(json_object_object_get_ex(b, "id", &v));
	id = (uint64_t)json_object_get_int64(v);
	json_object_put(reply);
	return id;
}

/*
 * An Allocate that waits for its uid's pending release (it would not fit
 * the quota before it) is asked again whether it may start at every
 * hand-over and completion of any uid's job. That question must not ask
 * the kernel about the uid's held buffers (a QUERY each on the kmod
 * backend): else a uid holding many, with one such Allocate parked, made
 * every other uid's job cost that many. The start, after the release, does.
 */
static void test_admit_does_not_reap(void **unused)
{
	uint64_t deadline = test_loop_now_ms() + 20000;	/* liveness only */
	struct json_object *reply, *v;
	struct test_daemon d;
	char params[64], buf[4096], go[8] = { 0 };
	uint64_t id1, id2;
	unsigned nfds;
	ssize_t got;
	int a, b;

	(void)unused;
	held_daemon_start(&d, 202, NULL, held_release);
	a = client(&d);
	b = client(&d);
	id1 = allocate_id(&d, a);
	id2 = allocate_id(&d, a);	/* 202 buffers charged: the limit */

	/* Free one; its release waits on the worker, still charged. */
	block_release = true;
	snprintf(params, sizeof(params), "{\"id\":%llu}", (unsigned long long)id1);
	reply = call(&d, b, "Free", params, &nfds);
	assert_false(json_object_object_get_ex(reply, "error", &v));
	json_object_put(reply);
	/* An Allocate that does not fit before that release: it waits for it. */
	send_call(a, "Allocate", "{\"size\":4096}");
	while (!TAILQ_FIRST(&d.server.conns)->busy && !newest(&d)->busy)
		loop_once(&d, deadline);
	/* Another job's hand-over (the second Free's release) asks it again. */
	held_asked = 0;
	snprintf(params, sizeof(params), "{\"id\":%llu}", (unsigned long long)id2);
	reply = call(&d, b, "Free", params, &nfds);
	assert_false(json_object_object_get_ex(reply, "error", &v));
	json_object_put(reply);
	assert_int_equal(held_asked, 0);	/* 400 before: 200 per ask, asked twice */

	/* The releases go; the waiting Allocate starts, reaping first, and is served. */
	block_release = false;
	assert_int_equal(write(hold[1], go, sizeof(go)), (ssize_t)sizeof(go));
	while (!worker_pool_idle(d.workers) || TAILQ_FIRST(&d.server.conns)->busy || newest(&d)->busy)
		loop_once(&d, deadline);
	assert_true(held_asked >= 200);
	got = recv(a, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(got > 0);
	buf[got] = '\0';
	assert_non_null(strstr(buf, "\"buffer\""));
	close(a);
	close(b);
	daemon_stop(&d);
}

/*
 * Jobs of one uid that a dispatch starts and refuses in a row (over its
 * quota) ask the backend about the uid's held buffers once, not once each:
 * eight large Allocates queued behind the uid's running one are refused
 * in one pass when it is done, with one question per held buffer in all
 * (eight per buffer before: 1,600 for 200, uncharged to anybody).
 */
static void test_refused_starts_reap_once(void **unused)
{
	uint64_t deadline = test_loop_now_ms() + 20000;	/* liveness only */
	struct test_daemon d;
	char buf[4096], go = 'g';
	int first, fds[8];
	unsigned refused = 0;

	(void)unused;
	held_daemon_start(&d, 201, held_allocate, NULL);
	first = client(&d);
	for (unsigned i = 0; i < 8; i++)
		fds[i] = client(&d);
	/* The uid's first large Allocate fits (201 buffers) and waits at the worker ... */
	send_call(first, "Allocate", "{\"size\":8388608}");
	while (worker_pool_idle(d.workers))
		loop_once(&d, deadline);
	/* ... and eight more queue behind it. */
	for (unsigned i = 0; i < 8; i++)
		send_call(fds[i], "Allocate", "{\"size\":8388608}");
	/* All eight read and queued: their connections are busy. */
	for (;;) {
		unsigned busy = 0;
		struct conn *c;

		TAILQ_FOREACH(c, &d.server.conns, entry)
			busy += c->busy;
		if (busy == 9)
			break;
		loop_once(&d, deadline);
	}
	held_asked = 0;
	/* The first is let go: one pass starts the eight, and refuses each. */
	assert_int_equal(write(hold[1], &go, 1), 1);
	while (refused < 8) {
		loop_once(&d, deadline);
		refused = 0;
		for (unsigned i = 0; i < 8; i++) {
			ssize_t got = recv(fds[i], buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

			refused += got > 0 && memmem(buf, (size_t)got, "QuotaExceeded", 13);
		}
	}
	assert_int_equal(held_asked, 200);
	for (unsigned i = 0; i < 8; i++)
		close(fds[i]);
	close(first);
	daemon_stop(&d);
}

/* The fake kernel's answer about held memory taking 20 ms (of the monotonic clock, whatever signals come). */
static int slow_held(void *state, uint64_t kernel_id)
{
	struct timespec until, now;

	(void)state;
	(void)kernel_id;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += 20000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	do {
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < until.tv_sec || (now.tv_sec == until.tv_sec && now.tv_nsec < until.tv_nsec));
	return 1;
}

/*
 * One large Allocate by a uid holding one freed buffer, the backend's
 * answer about it being held; the loop time charged to the uid, as the
 * daemon counted it.
 */
static void charged_allocate(int (*held)(void *state, uint64_t kernel_id), uint64_t *ret_loop_ns)
{
	struct json_object *reply, *v;
	struct test_daemon d;
	unsigned nfds;
	int a;

	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	test_daemon_setup(&d, "test-physmemd-charge");
	d.conf.loop_budget_us = 10000000;	/* on, and far from reached */
	d.conf.loop_window_ms = 600000;		/* one window for the whole test */
	d.backend.held = held;
	test_daemon_serve(&d);
	assert_int_equal(registry_add_held(&d.r, getuid(), 4096, HELD_BASE, false), 0);
	a = client(&d);
	reply = call(&d, a, "Allocate", "{\"size\":8388608}", &nfds);
	assert_false(json_object_object_get_ex(reply, "error", &v));
	assert_int_equal(nfds, 1);
	json_object_put(reply);
	*ret_loop_ns = registry_usage(&d.r, getuid(), false)->loop_ns;
	close(a);
	daemon_stop(&d);
}

/*
 * A job's loop work is its uid's loop time: a large Allocate's start (its
 * quota check, which asks about the uid's held memory: 20 ms here) runs in
 * the worker pool's dispatch, not in the connection's read, and must be
 * charged to the caller's uid all the same. Before, nobody paid for a
 * job's start or completion (test fails with the pool's charge hook unset).
 */
static void test_job_loop_time_charged(void **unused)
{
	uint64_t loop_ns;

	(void)unused;
	charged_allocate(slow_held, &loop_ns);
	assert_true(loop_ns >= 20000000ULL);
}

/* The pool could not be reserved: every connection comes from the heap, and is served. */
static void test_daemon_no_pool(void **unused)
{
	struct test_daemon d;
	int a, b;

	(void)unused;
	daemon_start(&d, 4, true);
	a = client(&d);
	close_while_busy(&d);
	b = client(&d);
	assert_int_equal(status_connections(&d, a), 2);
	release_hold(&d);
	assert_small_allocate(&d, b);
	assert_int_equal(status_connections(&d, b), 2);
	close(a);
	close(b);
	daemon_stop(&d);
}

/* ---- runs of PRIO_LOW reads end after LOW_RUN_NS ---- */

#define LOW_SPIN_NS 300000ULL
#define LOW_EVENTS 20

struct low_batch {
	struct server s;	/* its base and low_run_start */
	struct event *low[LOW_EVENTS];
	struct event *normal;
	int pipe[2];
	unsigned ran;		/* PRIO_LOW callbacks so far */
	unsigned before_normal;	/* of them, before the PRIO_NORMAL one ran */
};

/*
 * A PRIO_LOW read as conn_on_read() runs one, taking LOW_SPIN_NS of wall
 * time. The first makes the PRIO_NORMAL event's pipe readable, as another
 * uid's call makes its socket: the loop sees it only when it polls again.
 */
static void low_spin(evutil_socket_t fd, short what, void *arg)
{
	struct low_batch *lb = arg;
	uint64_t end;

	(void)fd;
	(void)what;
	low_run_begin(&lb->s, true);
	end = monotonic_ns() + LOW_SPIN_NS;
	if (lb->ran++ == 0)
		assert_int_equal(write(lb->pipe[1], "x", 1), 1);
	while (monotonic_ns() < end)
		;
	low_run_end(&lb->s, true);
}

static void normal_once(evutil_socket_t fd, short what, void *arg)
{
	struct low_batch *lb = arg;
	char c;

	(void)what;
	assert_int_equal(read(fd, &c, 1), 1);
	lb->before_normal = lb->ran;
}

/*
 * A run of PRIO_LOW reads ends once LOW_RUN_NS has passed, so that
 * something of higher priority that became ready meanwhile (another uid's
 * call while a uid past its budget is served) waits for at most that and
 * the read running when it came. Until the twelfth session libevent timed
 * it (event_config_set_max_dispatch_interval) on its clock,
 * CLOCK_MONOTONIC_COARSE: one kernel tick (4 ms at HZ=250), so a run
 * lasted anything from one callback to a tick (9 to 14 of these 0.3 ms
 * callbacks as the most of ten tries, in five runs). Now at most
 * 1 ms / 0.3 ms rounded up = 4 run before the PRIO_NORMAL event, in each of
 * ten tries (a callback preempted for longer only makes it fewer); without
 * low_run_end() all 20 would.
 */
static void test_low_batch_ends_after_a_millisecond(void **unused)
{
	unsigned most = 0;

	(void)unused;
	for (unsigned try = 0; try < 10; try++) {
		struct event_base *base = server_event_base_new();
		struct low_batch lb = { .s.base = base };

		assert_non_null(base);
		assert_int_equal(pipe2(lb.pipe, O_CLOEXEC | O_NONBLOCK), 0);
		lb.normal = event_new(base, lb.pipe[0], EV_READ, normal_once, &lb);
		assert_non_null(lb.normal);
		assert_int_equal(event_priority_set(lb.normal, PRIO_NORMAL), 0);
		assert_int_equal(event_add(lb.normal, NULL), 0);
		for (unsigned i = 0; i < LOW_EVENTS; i++) {
			lb.low[i] = event_new(base, -1, 0, low_spin, &lb);
			assert_non_null(lb.low[i]);
			assert_int_equal(event_priority_set(lb.low[i], PRIO_LOW), 0);
			event_active(lb.low[i], EV_TIMEOUT, 0);
		}
		assert_int_equal(event_base_loop(base, 0), 1);	/* returns once nothing is left */
		assert_int_equal(lb.ran, LOW_EVENTS);
		if (lb.before_normal > most)
			most = lb.before_normal;
		for (unsigned i = 0; i < LOW_EVENTS; i++)
			event_free(lb.low[i]);
		event_free(lb.normal);
		close(lb.pipe[0]);
		close(lb.pipe[1]);
		event_base_free(base);
	}
	print_message("# the most PRIO_LOW callbacks of 0.3 ms run before the PRIO_NORMAL one, in 10 tries: %u\n",
		      most);
	assert_true(most >= 1 && most <= (LOW_RUN_NS + LOW_SPIN_NS - 1) / LOW_SPIN_NS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_low_batch_ends_after_a_millisecond),
		cmocka_unit_test(test_pool_full_then_heap),
		cmocka_unit_test(test_pool_orphaned),
		cmocka_unit_test(test_pool_free_unpoisons),
		cmocka_unit_test(test_daemon_heap_connections),
		cmocka_unit_test(test_daemon_no_pool),
		cmocka_unit_test(test_admit_does_not_reap),
		cmocka_unit_test(test_refused_starts_reap_once),
		cmocka_unit_test(test_job_loop_time_charged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
