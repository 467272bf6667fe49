/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Contiguous pools in the daemon, without the kernel module: an in-process
 * physmemd whose backend is memfd plus a fake pool of 16 pages. Pool bytes
 * count in the uid's byte quota and in max-pool-bytes-per-uid, from the
 * reservation at dispatch until the release; a pool that cannot serve a
 * request answers PoolUnavailable with its figures and charges nothing;
 * Status shows the pool and the caller's pool bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "physmem-proto.h"
#include "physmemd.h"
#include "test-daemon.h"

#define POOL_PAGES 16

static uint64_t page;
static uint64_t pool_free;	/* bytes; workers and the main thread: atomics */
static uint64_t pool_buffers;

/* One run from the fake pool "fake": memfd memory, counted against the pool. */
static int fake_allocate_pool(void *state, const char *pool, uint64_t size, int cache, struct backend_buffer *ret,
			      struct backend_pool_failure *ret_failure, const char **ret_feature)
{
	uint64_t avail = __atomic_load_n(&pool_free, __ATOMIC_SEQ_CST);
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->fd = -1;
	*ret_failure = (struct backend_pool_failure) { .reason = "none" };
	if (strcmp(pool, "fake") != 0)
		return -ENODEV;
	if (size > avail) {
		*ret_failure = (struct backend_pool_failure) { .reason = "exhausted", .known = true, .free = avail,
								.largest_free = avail };
		return -ENOSPC;
	}
	r = backend_memfd_ops.allocate(state, size, false, cache, ret, ret_feature);
	if (r < 0)
		return r;
	__atomic_sub_fetch(&pool_free, size, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&pool_buffers, 1, __ATOMIC_SEQ_CST);
	ret->contiguous = true;		/* what the module reports for a pool run */
	ret->from_pool = true;
	snprintf(ret->pool, sizeof(ret->pool), "%s", pool);
	return 0;
}

/*
 * A fake bind: 0000:00:03.0 binds (one segment at a made-up bus address),
 * any other device is busy (-EBUSY) as if vfio owned it.
 */
static int fake_bind(void *state, int fd, const struct physmem_pci_address *device, int access,
		     struct backend_binding *ret)
{
	(void)state;
	(void)fd;
	memset(ret, 0, sizeof(*ret));
	if (device->domain != 0 || device->bus != 0 || device->slot != 3 || device->function != 0)
		return -EBUSY;
	ret->segments = calloc(1, sizeof(*ret->segments));
	if (!ret->segments)
		return -ENOMEM;
	ret->id = 7;
	ret->device = *device;
	ret->access = access;
	ret->translation = TRANSLATION_IOMMU;
	ret->n_segments = 1;
	return 0;
}

static int fake_unbind(void *state, int fd, uint64_t binding_id)
{
	(void)state;
	(void)fd;
	(void)binding_id;
	return 0;
}

static int fake_binding_revoked(void *state, int fd, uint64_t binding_id)
{
	(void)state;
	(void)fd;
	(void)binding_id;
	return 0;
}

/* The memfd release, giving a pool buffer's bytes back to the fake pool (and dropping its bindings). */
static void fake_release(void *state, struct backend_buffer *b, bool keep)
{
	backend_bindings_free(b);
	if (b->from_pool) {
		__atomic_add_fetch(&pool_free, b->size, __ATOMIC_SEQ_CST);
		__atomic_sub_fetch(&pool_buffers, 1, __ATOMIC_SEQ_CST);
	}
	backend_memfd_ops.release(state, b, keep);
}

static int fake_pools(void *state, struct backend_pool **ret, unsigned *ret_n)
{
	struct backend_pool *p = calloc(1, sizeof(*p));

	(void)state;
	if (!p)
		return -ENOMEM;
	snprintf(p->name, sizeof(p->name), "fake");
	p->kind = "reserve_mem";
	p->size = POOL_PAGES * page;
	p->free = p->largest_free = __atomic_load_n(&pool_free, __ATOMIC_SEQ_CST);
	p->buffers = __atomic_load_n(&pool_buffers, __ATOMIC_SEQ_CST);
	*ret = p;
	*ret_n = 1;
	return 0;
}

static void daemon_start(struct test_daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	test_daemon_setup(d, "test-physmemd-pool");
	d->backend.allocate_pool = fake_allocate_pool;
	d->backend.pools = fake_pools;
	d->backend.release = fake_release;
	d->backend.bind = fake_bind;
	d->backend.unbind = fake_unbind;
	d->backend.binding_revoked = fake_binding_revoked;
	test_daemon_serve(d);
	d->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->conf.socket_path);
	assert_int_equal(connect(d->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

/* Run the loop until it is idle: no connection left, no job pending. */
static void daemon_stop(struct test_daemon *d)
{
	uint64_t deadline = test_loop_now_ms() + 10000;	/* liveness only */

	close(d->fd);
	while (d->server.n_conns > 0 || !worker_pool_idle(d->workers)) {
		assert_true(test_loop_now_ms() < deadline);
		assert_true(event_base_loop(d->base, EVLOOP_ONCE) >= 0);
	}
	assert_true(d->r.bytes == 0);
	test_daemon_teardown(d);
}

/* A fake sysfs PCI tree under the daemon's directory with 0000:00:03.0 and 0000:00:04.0. */
static void fake_pci(struct test_daemon *d)
{
	static const char *const devs[] = { "0000:00:03.0", "0000:00:04.0" };
	char path[256];

	snprintf(d->conf.pci_sysfs, sizeof(d->conf.pci_sysfs), "%s/pci", d->dir);
	assert_int_equal(mkdir(d->conf.pci_sysfs, 0700), 0);
	for (unsigned i = 0; i < 2; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", d->conf.pci_sysfs, devs[i]);
		assert_int_equal(mkdir(path, 0700), 0);
		snprintf(path, sizeof(path), "%s/%s/vendor", d->conf.pci_sysfs, devs[i]);
		assert_non_null(f = fopen(path, "w"));
		fputs("0x1234\n", f);
		fclose(f);
		snprintf(path, sizeof(path), "%s/%s/device", d->conf.pci_sysfs, devs[i]);
		assert_non_null(f = fopen(path, "w"));
		fputs("0x11e8\n", f);
		fclose(f);
	}
}

/* Remove fake_pci()'s tree. */
static void fake_pci_remove(struct test_daemon *d)
{
	static const char *const devs[] = { "0000:00:03.0", "0000:00:04.0" };
	char path[256];

	for (unsigned i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s/vendor", d->conf.pci_sysfs, devs[i]);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s/device", d->conf.pci_sysfs, devs[i]);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s", d->conf.pci_sysfs, devs[i]);
		rmdir(path);
	}
	rmdir(d->conf.pci_sysfs);
}

/* Send one call and run the loop until its reply came; the reply (an fd that came is dropped). */
static struct json_object *call(struct test_daemon *d, const char *method, const char *params)
{
	uint64_t deadline = test_loop_now_ms() + 10000;	/* liveness only */
	char msg[512], buf[65536];
	size_t len = 0;
	int n = snprintf(msg, sizeof(msg), "{\"method\":\"io.physmem.Manager.%s\",\"parameters\":%s}", method, params);

	assert_true(n > 0 && (size_t)n < sizeof(msg));
	assert_int_equal(send(d->fd, msg, (size_t)n + 1, MSG_NOSIGNAL), n + 1);
	while (len == 0 || buf[len - 1] != '\0') {
		ssize_t got;

		assert_true(test_loop_now_ms() < deadline);
		assert_true(event_base_loop(d->base, EVLOOP_ONCE) >= 0);
		got = recv(d->fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
		if (got < 0 && errno == EAGAIN)
			continue;
		assert_true(got > 0);
		len += (size_t)got;
		assert_true(len < sizeof(buf));
	}
	return json_tokener_parse(buf);
}

/* The loop runs until the workers are idle (releases done). */
static void settle(struct test_daemon *d)
{
	uint64_t deadline = test_loop_now_ms() + 10000;

	while (!worker_pool_idle(d->workers)) {
		assert_true(test_loop_now_ms() < deadline);
		assert_true(event_base_loop(d->base, EVLOOP_ONCE) >= 0);
	}
}

static int64_t get_int(struct json_object *o, const char *path1, const char *path2)
{
	struct json_object *v = json_object_object_get(o, path1);

	if (path2)
		v = json_object_object_get(v, path2);
	assert_non_null(v);
	return json_object_get_int64(v);
}

static const char *get_str(struct json_object *o, const char *path1, const char *path2)
{
	struct json_object *v = json_object_object_get(o, path1);

	if (path2)
		v = json_object_object_get(v, path2);
	assert_non_null(v);
	return json_object_get_string(v);
}

/* An error reply's name; NULL for a success. */
static const char *error_of(struct json_object *reply)
{
	struct json_object *v;

	return json_object_object_get_ex(reply, "error", &v) ? json_object_get_string(v) : NULL;
}

/* A success reply (else the test fails, printing the error). */
static void assert_success(struct json_object *reply)
{
	if (error_of(reply))
		fprintf(stderr, "%s\n", json_object_to_json_string(reply));
	assert_null(error_of(reply));
}

static struct usage *usage0(struct test_daemon *d)
{
	struct usage *u = registry_usage(&d->r, 0, false);

	assert_non_null(u);
	return u;
}

static void test_pool_bytes_charged_and_limited(void **state)
{
	struct json_object *reply, *p;
	struct test_daemon d;
	char params[256];

	(void)state;
	daemon_start(&d);
	d.conf.max_pool_bytes_per_uid = 6 * page;

	/* A pool buffer: one run, the pool's name, charged as bytes and as pool bytes. */
	snprintf(params, sizeof(params), "{\"size\":%llu,\"pool\":\"fake\"}", (unsigned long long)(4 * page));
	reply = call(&d, "Allocate", params);
	assert_success(reply);
	p = json_object_object_get(reply, "parameters");
	assert_string_equal(get_str(p, "buffer", "pool"), "fake");
	assert_true(json_object_get_boolean(json_object_object_get(json_object_object_get(p, "buffer"), "contiguous")));
	assert_int_equal(get_int(p, "buffer", "id"), 1);
	json_object_put(reply);
	assert_true(usage0(&d)->pool_bytes == 4 * page);
	assert_true(usage0(&d)->bytes == 4 * page);
	assert_true(pool_free == (POOL_PAGES - 4) * page);

	/* 4 more pages of pool would pass max-pool-bytes-per-uid (6): refused, nothing taken. */
	reply = call(&d, "Allocate", params);
	assert_string_equal(error_of(reply), PHYSMEM_ERROR_QUOTA_EXCEEDED);
	p = json_object_object_get(reply, "parameters");
	assert_string_equal(get_str(p, "limit", NULL), "pool-bytes");
	assert_int_equal(get_int(p, "max", NULL), 6 * page);
	assert_int_equal(get_int(p, "used", NULL), 4 * page);
	assert_int_equal(get_int(p, "requested", NULL), 4 * page);
	json_object_put(reply);
	assert_true(usage0(&d)->pool_bytes == 4 * page && usage0(&d)->buffers == 1);
	assert_true(pool_free == (POOL_PAGES - 4) * page);

	/* Ordinary memory is not pool memory. */
	snprintf(params, sizeof(params), "{\"size\":%llu}", (unsigned long long)(4 * page));
	reply = call(&d, "Allocate", params);
	assert_success(reply);
	assert_false(json_object_object_get_ex(json_object_object_get(json_object_object_get(reply, "parameters"),
								      "buffer"), "pool", NULL));
	json_object_put(reply);
	assert_true(usage0(&d)->pool_bytes == 4 * page && usage0(&d)->bytes == 8 * page);

	/* Status: the pool as the backend sees it, the caller's pool bytes and limit. */
	reply = call(&d, "Status", "{}");
	assert_success(reply);
	p = json_object_object_get(reply, "parameters");
	assert_int_equal(get_int(p, "quota", "poolBytes"), 4 * page);
	assert_int_equal(get_int(p, "quota", "maxPoolBytes"), 6 * page);
	assert_int_equal(get_int(p, "quota", "bytes"), 8 * page);
	{
		struct json_object *pools = json_object_object_get(p, "pools"), *e;

		assert_int_equal(json_object_array_length(pools), 1);
		e = json_object_array_get_idx(pools, 0);
		assert_string_equal(get_str(e, "name", NULL), "fake");
		assert_string_equal(get_str(e, "kind", NULL), "reserve_mem");
		assert_int_equal(get_int(e, "size", NULL), POOL_PAGES * page);
		assert_int_equal(get_int(e, "free", NULL), (POOL_PAGES - 4) * page);
		assert_int_equal(get_int(e, "largestFree", NULL), (POOL_PAGES - 4) * page);
		assert_int_equal(get_int(e, "buffers", NULL), 1);
	}
	json_object_put(reply);

	/* More than the pool has: PoolUnavailable exhausted with its figures; nothing stays charged. */
	d.conf.max_pool_bytes_per_uid = 1ULL << 30;
	snprintf(params, sizeof(params), "{\"size\":%llu,\"pool\":\"fake\"}", (unsigned long long)(POOL_PAGES * page));
	reply = call(&d, "Allocate", params);
	assert_string_equal(error_of(reply), PHYSMEM_ERROR_POOL_UNAVAILABLE);
	p = json_object_object_get(reply, "parameters");
	assert_string_equal(get_str(p, "pool", NULL), "fake");
	assert_string_equal(get_str(p, "reason", NULL), "exhausted");
	assert_int_equal(get_int(p, "size", NULL), POOL_PAGES * page);
	assert_int_equal(get_int(p, "free", NULL), (POOL_PAGES - 4) * page);
	assert_int_equal(get_int(p, "largestFree", NULL), (POOL_PAGES - 4) * page);
	json_object_put(reply);
	assert_true(usage0(&d)->pool_bytes == 4 * page && usage0(&d)->bytes == 8 * page && usage0(&d)->buffers == 2);

	/* A pool nobody has: "none", without figures. */
	reply = call(&d, "Allocate", "{\"size\":4096,\"pool\":\"nope\"}");
	assert_string_equal(error_of(reply), PHYSMEM_ERROR_POOL_UNAVAILABLE);
	p = json_object_object_get(reply, "parameters");
	assert_string_equal(get_str(p, "reason", NULL), "none");
	assert_false(json_object_object_get_ex(p, "free", NULL));
	json_object_put(reply);

	/* Pool bytes also count in max-bytes-per-uid. */
	d.conf.max_bytes_per_uid = 10 * page;
	snprintf(params, sizeof(params), "{\"size\":%llu,\"pool\":\"fake\"}", (unsigned long long)(4 * page));
	reply = call(&d, "Allocate", params);
	assert_string_equal(error_of(reply), PHYSMEM_ERROR_QUOTA_EXCEEDED);
	assert_string_equal(get_str(json_object_object_get(reply, "parameters"), "limit", NULL), "bytes");
	json_object_put(reply);
	d.conf.max_bytes_per_uid = 1ULL << 30;

	/* Free gives the pool bytes back, to the uid and to the pool. */
	reply = call(&d, "Free", "{\"id\":1}");
	assert_success(reply);
	json_object_put(reply);
	settle(&d);
	assert_true(usage0(&d)->pool_bytes == 0 && usage0(&d)->bytes == 4 * page);
	assert_true(pool_free == POOL_PAGES * page && pool_buffers == 0);

	/* A pool buffer left to the disconnect goes back too (daemon_stop checks bytes). */
	reply = call(&d, "Allocate", params);
	assert_success(reply);
	json_object_put(reply);
	assert_true(usage0(&d)->pool_bytes == 4 * page);
	daemon_stop(&d);
	assert_true(pool_free == POOL_PAGES * page && pool_buffers == 0);
}

/*
 * Allocate with pool and device: the pool run is made, then bound. A bind
 * that fails frees the run and gives back its bytes, pool bytes and binding
 * exactly once (a DeviceBusy, not PoolUnavailable); a pool that cannot serve
 * charges no binding either.
 */
static void test_pool_and_bind(void **state)
{
	struct json_object *reply, *p, *devs;
	struct test_daemon d;
	char params[256];

	(void)state;
	daemon_start(&d);
	fake_pci(&d);

	/* Both: a pool buffer with one binding, charged as bytes, pool bytes and a binding. */
	snprintf(params, sizeof(params), "{\"size\":%llu,\"pool\":\"fake\",\"device\":\"0000:00:03.0\"}",
		 (unsigned long long)(4 * page));
	reply = call(&d, "Allocate", params);
	assert_success(reply);
	p = json_object_object_get(json_object_object_get(reply, "parameters"), "buffer");
	assert_string_equal(get_str(p, "pool", NULL), "fake");
	devs = json_object_object_get(p, "devices");
	assert_int_equal(json_object_array_length(devs), 1);
	assert_string_equal(get_str(json_object_array_get_idx(devs, 0), "device", NULL), "0000:00:03.0");
	json_object_put(reply);
	assert_true(usage0(&d)->pool_bytes == 4 * page && usage0(&d)->bytes == 4 * page);
	assert_true(usage0(&d)->bindings == 1 && usage0(&d)->buffers == 1);
	assert_true(pool_free == (POOL_PAGES - 4) * page && pool_buffers == 1);

	/* The bind fails after the pool run was made: the bind's error; the run and every charge go back. */
	snprintf(params, sizeof(params), "{\"size\":%llu,\"pool\":\"fake\",\"device\":\"0000:00:04.0\"}",
		 (unsigned long long)(4 * page));
	reply = call(&d, "Allocate", params);
	assert_string_equal(error_of(reply), PHYSMEM_ERROR_DEVICE_BUSY);
	json_object_put(reply);
	settle(&d);
	assert_true(usage0(&d)->pool_bytes == 4 * page && usage0(&d)->bytes == 4 * page);
	assert_true(usage0(&d)->bindings == 1 && usage0(&d)->buffers == 1);
	assert_true(pool_free == (POOL_PAGES - 4) * page && pool_buffers == 1);

	/* The pool cannot serve it: PoolUnavailable, and the binding charged at dispatch goes back. */
	snprintf(params, sizeof(params), "{\"size\":%llu,\"pool\":\"fake\",\"device\":\"0000:00:03.0\"}",
		 (unsigned long long)(POOL_PAGES * page));
	reply = call(&d, "Allocate", params);
	assert_string_equal(error_of(reply), PHYSMEM_ERROR_POOL_UNAVAILABLE);
	json_object_put(reply);
	assert_true(usage0(&d)->pool_bytes == 4 * page && usage0(&d)->bindings == 1 && usage0(&d)->buffers == 1);

	/* Free: the pool bytes and the binding go back with the buffer. */
	reply = call(&d, "Free", "{\"id\":1}");
	assert_success(reply);
	json_object_put(reply);
	settle(&d);
	assert_true(usage0(&d)->pool_bytes == 0 && usage0(&d)->bytes == 0 && usage0(&d)->bindings == 0);
	assert_true(pool_free == POOL_PAGES * page && pool_buffers == 0);
	fake_pci_remove(&d);
	daemon_stop(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_bytes_charged_and_limited),
		cmocka_unit_test(test_pool_and_bind),
	};

	page = (uint64_t)sysconf(_SC_PAGESIZE);
	pool_free = POOL_PAGES * page;
	log_set_level(LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
