/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Size rounding has one owner: registry_alloc_size() rounds a request up to
 * the backend's unit, and the backend then makes exactly that size (it never
 * rounds a second time), so that the number the quota is checked against, the
 * number charged and the buffer's size are one number. A backend that makes
 * another size anyway is refused, which an in-process daemon with a lying
 * backend shows.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "physmem-proto.h"
#include "physmemd.h"
#include "test-loop.h"

#define MIB (UINT64_C(1) << 20)

static uint64_t fake_unit;

static uint64_t fake_granule(void *state)
{
	(void)state;
	return fake_unit;
}

static const struct backend_ops fake_ops = {
	.name = "fake",
	.granule = fake_granule,
};

static void expect_size(const struct registry *r, uint64_t size, int want_r, uint64_t want)
{
	uint64_t got = 0;

	assert_int_equal(registry_alloc_size(r, size, &got), want_r);
	if (want_r == 0)
		assert_int_equal(got, want);
}

/* Rounded up to the backend's unit, and the limit applies to the rounded size. */
static void test_round_to_granule(void **state)
{
	struct registry r;
	struct conf conf;

	(void)state;
	conf_defaults(&conf);
	conf.max_buffer_size = 5 * MIB;		/* not a multiple of the unit */
	fake_unit = 2 * MIB;
	registry_init(&r, &conf, &fake_ops, NULL);
	expect_size(&r, 0, -ERANGE, 0);
	expect_size(&r, 1, 0, 2 * MIB);
	expect_size(&r, 2 * MIB, 0, 2 * MIB);
	expect_size(&r, 2 * MIB + 1, 0, 4 * MIB);
	expect_size(&r, 4 * MIB, 0, 4 * MIB);
	/* Within max-buffer-size as asked, over it once rounded. */
	expect_size(&r, 4 * MIB + 1, -ERANGE, 0);
	expect_size(&r, 5 * MIB, -ERANGE, 0);
	expect_size(&r, UINT64_MAX, -ERANGE, 0);
	conf.max_buffer_size = UINT64_MAX;
	expect_size(&r, UINT64_MAX - 1, -ERANGE, 0);	/* would wrap when rounded */
	registry_done(&r);
}

/* Without granule(): the page size. */
static void test_round_to_page(void **state)
{
	static const struct backend_ops no_granule = { .name = "fake" };
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct registry r;
	struct conf conf;

	(void)state;
	conf_defaults(&conf);
	registry_init(&r, &conf, &no_granule, NULL);
	expect_size(&r, 1, 0, page);
	expect_size(&r, page + 1, 0, 2 * page);
	registry_done(&r);
}

/*
 * The memfd backend makes exactly the size it is given, and refuses one that
 * is not a whole number of its units instead of rounding it again (before,
 * Allocate's size was rounded by the daemon and again here, and a buffer
 * larger than the charged size would have been made without a word).
 */
static void test_memfd_makes_what_is_charged(void **state)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	const char *feature = NULL;
	struct backend_buffer bb;
	struct registry r;
	struct conf conf;
	void *st;
	uint64_t size;

	(void)state;
	conf_defaults(&conf);
	assert_int_equal(backend_memfd_ops.init(&conf, &st), 0);
	registry_init(&r, &conf, &backend_memfd_ops, st);

	assert_int_equal(backend_memfd_ops.allocate(st, page + 1, false, PHYSMEM_CACHE_MODE_CACHED, &bb, &feature),
			 -EINVAL);
	assert_int_equal(bb.fd, -1);

	assert_int_equal(registry_alloc_size(&r, page + 1, &size), 0);
	assert_int_equal(size, 2 * page);
	assert_int_equal(backend_memfd_ops.allocate(st, size, false, PHYSMEM_CACHE_MODE_CACHED, &bb, &feature), 0);
	assert_int_equal(bb.size, size);
	assert_int_equal(lseek(bb.fd, 0, SEEK_END), (off_t)size);
	backend_memfd_ops.release(st, &bb, false);

	registry_done(&r);
	backend_memfd_ops.fini(st);
}

/* ---- A backend that makes another size than it was asked for: refused, never charged. */

static bool lie;

/* The memfd backend's allocate(), reporting one page more than it was asked for while lie is set. */
static int lying_allocate(void *state, uint64_t size, bool contiguous, int cache, struct backend_buffer *ret,
			  const char **ret_feature)
{
	int r = backend_memfd_ops.allocate(state, size, contiguous, cache, ret, ret_feature);

	if (r == 0 && lie)
		ret->size += (uint64_t)sysconf(_SC_PAGESIZE);
	return r;
}

/* Run the daemon's loop until the reply to the call sent on fd has come, and parse it. */
static struct json_object *call(struct event_base *base, int fd, const char *msg)
{
	uint64_t deadline = test_loop_now_ms() + 10000;	/* liveness only: a hang fails, never a slow machine */
	char buf[65536];
	size_t len = 0;

	assert_int_equal(send(fd, msg, strlen(msg) + 1, MSG_NOSIGNAL), (ssize_t)strlen(msg) + 1);
	while (len == 0 || buf[len - 1] != '\0') {
		ssize_t n;

		assert_true(test_loop_now_ms() < deadline);
		assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);
		n = recv(fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);	/* an fd that came is dropped */
		if (n < 0 && errno == EAGAIN)
			continue;
		assert_true(n > 0);
		len += (size_t)n;
		assert_true(len < sizeof(buf));
	}
	return json_tokener_parse(buf);
}

/* The loop runs until the registry's workers are idle (releases are done). */
static void settle(struct event_base *base, struct worker_pool *workers)
{
	uint64_t deadline = test_loop_now_ms() + 10000;

	while (!worker_pool_idle(workers)) {
		assert_true(test_loop_now_ms() < deadline);
		assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);
	}
}

static void test_other_size_is_refused(void **state)
{
	static const char allocate[] = "{\"method\":\"io.physmem.Manager.Allocate\",\"parameters\":{\"size\":4097}}";
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/test-physmemd-size-XXXXXX";
	struct json_object *reply, *v;
	struct worker_pool *workers;
	struct backend_ops backend;
	struct event_base *base;
	struct registry r;
	struct server server;
	struct event *tick;
	struct conf conf;
	void *st;
	int fd;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	conf_defaults(&conf);
	conf.worker_threads = 1;
	conf.lock = LOCK_NO;
	conf.fdstore = LOCK_NO;
	assert_non_null(mkdtemp(dir));
	snprintf(conf.socket_path, sizeof(conf.socket_path), "%s/s", dir);
	base = event_base_new();
	assert_non_null(base);
	tick = event_new(base, -1, EV_PERSIST, test_loop_on_tick, NULL);
	assert_true(tick && event_add(tick, &tv) == 0);
	assert_int_equal(sink_init(base, &conf), 0);
	backend = backend_memfd_ops;
	backend.allocate = lying_allocate;
	assert_int_equal(backend.init(&conf, &st), 0);
	assert_int_equal(worker_pool_new(base, &conf, &backend, st, &workers), 0);
	registry_init(&r, &conf, &backend, st);
	r.workers = workers;
	assert_int_equal(server_init(&server, base, &conf, &r, -1), 0);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", conf.socket_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	/* Asked and charged 2 pages, made 3: an internal error, and nothing stays charged. */
	lie = true;
	reply = call(base, fd, allocate);
	assert_non_null(reply);
	assert_true(json_object_object_get_ex(reply, "error", &v));
	assert_string_equal(json_object_get_string(v), PHYSMEM_ERROR_ALLOCATION_FAILED);
	json_object_put(reply);
	settle(base, workers);
	assert_int_equal(r.n_buffers, 0);
	assert_int_equal(r.bytes, 0);

	/* An honest backend: the buffer is the rounded size, charged as such. */
	lie = false;
	reply = call(base, fd, allocate);
	assert_non_null(reply);
	assert_false(json_object_object_get_ex(reply, "error", NULL));
	assert_true(json_object_object_get_ex(json_object_object_get(reply, "parameters"), "buffer", &v));
	assert_int_equal(json_object_get_int64(json_object_object_get(v, "size")), 2 * page);
	json_object_put(reply);
	assert_int_equal(r.n_buffers, 1);
	assert_int_equal(r.bytes, 2 * page);

	/* The connection goes, and its buffer with it. */
	close(fd);
	{
		uint64_t deadline = test_loop_now_ms() + 10000;

		while (server.n_conns > 0 || !worker_pool_idle(workers)) {
			assert_true(test_loop_now_ms() < deadline);
			assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);
		}
	}
	assert_int_equal(r.bytes, 0);
	server_done(&server);
	sink_on_drained(NULL, NULL);
	r.workers = NULL;
	registry_done(&r);
	worker_pool_free(workers);
	backend.fini(st);
	sink_done();
	event_free(tick);
	event_base_free(base);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_to_granule),
		cmocka_unit_test(test_round_to_page),
		cmocka_unit_test(test_memfd_makes_what_is_charged),
		cmocka_unit_test(test_other_size_is_refused),
	};

	log_set_level(LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
