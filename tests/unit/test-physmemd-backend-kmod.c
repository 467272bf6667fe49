/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kmod backend against a fake /dev/physmem: the backend's source is
 * compiled in here, its device is /dev/null, and every physmem ioctl is
 * answered by __wrap_ioctl (linked with -Wl,--wrap=ioctl) as a module of a
 * chosen age would answer it, following the extension rules of
 * kmod/uapi/physmem.h: a struct larger than the module knows is accepted
 * only when the bytes it does not know are zero, else -E2BIG. Buffer fds are
 * memfds, so the backend's own fd handling runs. No root, no module.
 */
#include "../../daemon/physmemd-backend-kmod.c"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "test-daemon.h"

int __real_ioctl(int fd, unsigned long request, ...);
int __wrap_ioctl(int fd, unsigned long request, ...);
void __wrap_log_msg(int level, const char *fmt, ...);

#define FAKE_MAX_FDS 1024
#define FAKE_NR_MAX 16

/* The module the fake plays, and what it was asked. */
static struct {
	uint32_t alloc_size;		/* the struct sizes this module knows */
	uint32_t pin_size;
	uint32_t segments_size;
	bool pool_info;			/* has POOL_INFO (pools "low" and "high") */
	uint32_t n_segments;		/* segments of each new buffer */
	int fail_errno;			/* ALLOC and PIN fail with this, if set */
	int dev;			/* the device fd INFO came on */
	uint64_t next_id;
	unsigned calls[FAKE_NR_MAX];	/* ioctls by number */
	unsigned e2big[FAKE_NR_MAX];	/* of them refused with E2BIG */
	struct {
		uint64_t id, length;
		uint32_t flags, n_segments;
	} bufs[FAKE_MAX_FDS];		/* by buffer fd */
	unsigned predates_logged;	/* log lines about an old module */
} fake;

/* Segment i of buffer id, as the fake reports it: 4 KiB each, none adjacent. */
static struct physmem_dma_segment fake_segment(uint64_t id, uint32_t i)
{
	return (struct physmem_dma_segment) { .addr = (id << 32) + (uint64_t)i * 0x10000, .len = 4096 };
}

/* A module as old as the sizes say. */
static void fake_reset(uint32_t alloc_size, uint32_t pin_size, uint32_t segments_size, uint32_t n_segments)
{
	memset(&fake, 0, sizeof(fake));
	fake.alloc_size = alloc_size;
	fake.pin_size = pin_size;
	fake.segments_size = segments_size;
	fake.n_segments = n_segments;
	fake.dev = -1;
	fake.next_id = 1;
}

/* The extension rules: -EINVAL below ver0, -E2BIG for non-zero bytes past what the module knows. */
static int fake_check_size(const void *req, uint32_t ver0, uint32_t known)
{
	uint32_t size = *(const uint32_t *)req;

	if (size < ver0)
		return -EINVAL;
	for (uint32_t i = known; i < size; i++)
		if (((const uint8_t *)req)[i])
			return -E2BIG;
	return 0;
}

/* Output fields must be zero on input (ALLOC, PIN). */
static bool fake_zero(const void *field, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((const uint8_t *)field)[i])
			return false;
	return true;
}

/* A new buffer: a memfd as its fd, remembered for SEGMENTS. */
static int fake_new_buffer(uint64_t length, uint32_t flags, __u64 *ret_id)
{
	int fd = memfd_create("fake-physmem-buffer", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	assert_true(fd < FAKE_MAX_FDS);
	fake.bufs[fd].id = fake.next_id++;
	fake.bufs[fd].length = length;
	fake.bufs[fd].flags = flags;
	fake.bufs[fd].n_segments = fake.n_segments;
	*ret_id = fake.bufs[fd].id;
	return fd;
}

/* Write up to capacity of buffer fd's segments to the caller's array (a module that knows the array). */
static void fake_fill(int fd, uint64_t segments, uint32_t capacity)
{
	struct physmem_dma_segment *out = (struct physmem_dma_segment *)(uintptr_t)segments;

	for (uint32_t i = 0; i < capacity && i < fake.bufs[fd].n_segments; i++)
		out[i] = fake_segment(fake.bufs[fd].id, i);
}

static int fake_alloc(struct physmem_alloc *a)
{
	int r = fake_check_size(a, PHYSMEM_ALLOC_SIZE_VER0, fake.alloc_size), fd;

	if (r < 0)
		return r;
	if (!fake_zero(&a->fd, sizeof(a->fd)) || a->id || a->actual_length || a->nr_segments)
		return -EINVAL;
	if (fake.fail_errno)
		return -fake.fail_errno;
	if ((a->flags & PHYSMEM_ALLOC_POOL) && fake.alloc_size < PHYSMEM_ALLOC_SIZE_VER2)
		return -EINVAL;	/* a flag it does not know */
	if ((a->flags & PHYSMEM_ALLOC_POOL) && a->pool > 1)
		return -ENODEV;
	fd = fake_new_buffer(a->length, a->flags & PHYSMEM_ALLOC_CONTIG ? PHYSMEM_BUF_CONTIG : 0, &a->id);
	if (fd < 0)
		return fd;
	a->fd = fd;
	a->actual_length = a->length;
	a->nr_segments = fake.n_segments;
	if (a->size >= PHYSMEM_ALLOC_SIZE_VER1 && fake.alloc_size >= PHYSMEM_ALLOC_SIZE_VER1)
		fake_fill(fd, a->segments, a->capacity);
	return 0;
}

static int fake_pin(struct physmem_pin *p)
{
	int r = fake_check_size(p, PHYSMEM_PIN_SIZE_VER0, fake.pin_size), fd;

	if (r < 0)
		return r;
	if (!fake_zero(&p->fd, sizeof(p->fd)) || p->id || p->nr_segments)
		return -EINVAL;
	if (fake.fail_errno)
		return -fake.fail_errno;
	fd = fake_new_buffer(p->length, PHYSMEM_BUF_PINNED, &p->id);
	if (fd < 0)
		return fd;
	p->fd = fd;
	p->nr_segments = fake.n_segments;
	if (p->size >= PHYSMEM_PIN_SIZE_VER1 && fake.pin_size >= PHYSMEM_PIN_SIZE_VER1)
		fake_fill(fd, p->segments, p->capacity);
	return 0;
}

static int fake_segments(struct physmem_segments *q)
{
	int r = fake_check_size(q, PHYSMEM_SEGMENTS_SIZE_VER0, fake.segments_size);

	if (r < 0)
		return r;
	if (q->fd < 0 || q->fd >= FAKE_MAX_FDS || !fake.bufs[q->fd].id)
		return -EINVAL;
	q->count = fake.bufs[q->fd].n_segments;
	q->id = fake.bufs[q->fd].id;
	q->length = fake.bufs[q->fd].length;
	q->flags = fake.bufs[q->fd].flags;
	q->cache = 0;
	fake_fill(q->fd, q->segments, q->capacity);
	return 0;
}

static int fake_pool_info(struct physmem_pool_info *pi)
{
	if (!fake.pool_info)
		return -ENOTTY;
	if (pi->index > 1)
		return -ENOENT;
	snprintf(pi->name, sizeof(pi->name), pi->index ? "high" : "low");
	pi->kind = PHYSMEM_POOL_KIND_CMA;
	pi->total = pi->free = pi->largest_free = 1 << 20;
	return 0;
}

/* The fake module; any other ioctl goes to the kernel. */
int __wrap_ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;
	int r;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (_IOC_TYPE(request) != PHYSMEM_IOC_MAGIC)
		return __real_ioctl(fd, request, arg);
	assert_true(_IOC_NR(request) < FAKE_NR_MAX);
	fake.calls[_IOC_NR(request)]++;
	if (request == PHYSMEM_IOC_INFO && fake.dev < 0)
		fake.dev = fd;
	if (fd != fake.dev) {
		r = -EBADF;
	} else if (request == PHYSMEM_IOC_INFO) {
		struct physmem_dev_info *info = arg;

		info->version = PHYSMEM_ABI_VERSION;
		info->max_buffer_bytes = 1ULL << 30;
		info->max_contig_bytes = 4ULL << 20;
		info->page_size = 4096;
		r = 0;
	} else if (request == PHYSMEM_IOC_ALLOC) {
		r = fake_alloc(arg);
	} else if (request == PHYSMEM_IOC_PIN) {
		r = fake_pin(arg);
	} else if (request == PHYSMEM_IOC_SEGMENTS) {
		r = fake_segments(arg);
	} else if (request == PHYSMEM_IOC_POOL_INFO) {
		r = fake_pool_info(arg);
	} else {
		r = -ENOTTY;
	}
	if (r == -E2BIG)
		fake.e2big[_IOC_NR(request)]++;
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

/* The daemon's log, to count what the backend says about the module's age. */
void __wrap_log_msg(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (strstr(line, "predates segment lists"))
		fake.predates_logged++;
	fprintf(stderr, "physmemd: <%d> %s\n", level, line);
}


/* The backend on the fake device. */
static struct kmod_state *backend(void)
{
	struct conf conf;
	void *state;

	conf_defaults(&conf);
	snprintf(conf.device, sizeof(conf.device), "/dev/null");
	assert_int_equal(kmod_init(&conf, &state), 0);
	assert_true(fake.dev >= 0);
	return state;
}

/* b has exactly the segments the fake reported for its buffer, and its id and size. */
static void assert_buffer(const struct backend_buffer *b, uint64_t size)
{
	assert_true(b->fd >= 0 && b->fd < FAKE_MAX_FDS);
	assert_int_equal(b->kernel_id, fake.bufs[b->fd].id);
	assert_int_equal(b->size, size);
	assert_true(b->locked);
	assert_int_equal(b->n_segments, fake.n_segments);
	assert_non_null(b->segments);
	for (uint32_t i = 0; i < fake.n_segments; i++) {
		struct physmem_dma_segment s = fake_segment(b->kernel_id, i);

		assert_int_equal(b->segments[i].address, s.addr);
		assert_int_equal(b->segments[i].length, s.len);
	}
}

/* One allocation of size bytes, checked. */
static void allocate(struct kmod_state *st, uint64_t size, struct backend_buffer *b)
{
	const char *feature = NULL;

	assert_int_equal(kmod_allocate(st, size, false, PHYSMEM_MODE_CACHED, b, &feature), 0);
	assert_buffer(b, size);
}

/* One pin of the first size bytes of a fresh memfd, checked. */
static void pin(struct kmod_state *st, uint64_t size, struct backend_buffer *b)
{
	const char *feature = NULL;
	int memfd = memfd_create("pinned", MFD_CLOEXEC);

	assert_true(memfd >= 0);
	assert_int_equal(kmod_pin(st, memfd, 0, size, b, &feature), 0);
	close(memfd);
	assert_buffer(b, size);
	assert_int_equal(fake.bufs[b->fd].flags, PHYSMEM_BUF_PINNED);
}

/* A current module: one ALLOC or PIN per buffer, its segments in the reply, no SEGMENTS. */
static void test_current_module(void **unused)
{
	int fds = test_count_fds();
	struct kmod_state *st;
	struct backend_buffer b[3];

	(void)unused;
	fake_reset(sizeof(struct physmem_alloc), sizeof(struct physmem_pin), sizeof(struct physmem_segments), 3);
	st = backend();
	allocate(st, 3 * 4096, &b[0]);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_ALLOC)], 1);
	allocate(st, 3 * 4096, &b[1]);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_ALLOC)], 2);
	pin(st, 3 * 4096, &b[2]);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_PIN)], 1);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_SEGMENTS)], 0);
	assert_int_equal(fake.e2big[_IOC_NR(PHYSMEM_IOC_ALLOC)] + fake.e2big[_IOC_NR(PHYSMEM_IOC_PIN)], 0);
	assert_false(st->old_module);
	assert_int_equal(fake.predates_logged, 0);
	for (int i = 0; i < 3; i++)
		kmod_release(st, &b[i], false);
	kmod_fini(st);
	assert_int_equal(test_count_fds(), fds);
}

/* More segments than a reply carries: SEGMENTS for the count, then for all of them. */
static void test_current_module_many_segments(void **unused)
{
	int fds = test_count_fds();
	struct kmod_state *st;
	struct backend_buffer b[2];

	(void)unused;
	fake_reset(sizeof(struct physmem_alloc), sizeof(struct physmem_pin), sizeof(struct physmem_segments),
		   KMOD_REPLY_SEGMENTS + 72);
	st = backend();
	allocate(st, (KMOD_REPLY_SEGMENTS + 72) * 4096, &b[0]);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_ALLOC)], 1);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_SEGMENTS)], 2);
	pin(st, (KMOD_REPLY_SEGMENTS + 72) * 4096, &b[1]);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_PIN)], 1);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_SEGMENTS)], 4);
	assert_false(st->old_module);
	for (int i = 0; i < 2; i++)
		kmod_release(st, &b[i], false);
	kmod_fini(st);
	assert_int_equal(test_count_fds(), fds);
}

/*
 * A module older than the segment array (every struct at its first size):
 * the first ALLOC is refused with E2BIG, retried at the old size, and the
 * segments are queried; from then on ALLOC and PIN go straight to the old
 * size. Said once in the log.
 */
static void test_old_module_alloc_first(void **unused)
{
	int fds = test_count_fds();
	struct kmod_state *st;
	struct backend_buffer b[4];

	(void)unused;
	fake_reset(PHYSMEM_ALLOC_SIZE_VER0, PHYSMEM_PIN_SIZE_VER0, PHYSMEM_SEGMENTS_SIZE_VER0, 5);
	st = backend();
	allocate(st, 5 * 4096, &b[0]);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_ALLOC)], 2);
	assert_int_equal(fake.e2big[_IOC_NR(PHYSMEM_IOC_ALLOC)], 1);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_SEGMENTS)], 2);
	assert_true(st->old_module);
	assert_int_equal(fake.predates_logged, 1);

	allocate(st, 5 * 4096, &b[1]);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_ALLOC)], 3);
	assert_int_equal(fake.e2big[_IOC_NR(PHYSMEM_IOC_ALLOC)], 1);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_SEGMENTS)], 4);

	pin(st, 5 * 4096, &b[2]);
	pin(st, 5 * 4096, &b[3]);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_PIN)], 2);
	assert_int_equal(fake.e2big[_IOC_NR(PHYSMEM_IOC_PIN)], 0);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_SEGMENTS)], 8);
	assert_int_equal(fake.predates_logged, 1);
	for (int i = 0; i < 4; i++)
		kmod_release(st, &b[i], false);
	kmod_fini(st);
	assert_int_equal(test_count_fds(), fds);
}

/* The same learnt from a PIN; the old module's buffers may have more than a reply's worth of segments. */
static void test_old_module_pin_first(void **unused)
{
	int fds = test_count_fds();
	struct kmod_state *st;
	struct backend_buffer b[3];

	(void)unused;
	fake_reset(PHYSMEM_ALLOC_SIZE_VER0, PHYSMEM_PIN_SIZE_VER0, PHYSMEM_SEGMENTS_SIZE_VER0,
		   KMOD_REPLY_SEGMENTS + 1);
	st = backend();
	pin(st, (KMOD_REPLY_SEGMENTS + 1) * 4096, &b[0]);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_PIN)], 2);
	assert_int_equal(fake.e2big[_IOC_NR(PHYSMEM_IOC_PIN)], 1);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_SEGMENTS)], 2);
	assert_true(st->old_module);
	pin(st, (KMOD_REPLY_SEGMENTS + 1) * 4096, &b[1]);
	allocate(st, (KMOD_REPLY_SEGMENTS + 1) * 4096, &b[2]);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_PIN)], 3);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_ALLOC)], 1);
	assert_int_equal(fake.e2big[_IOC_NR(PHYSMEM_IOC_PIN)] + fake.e2big[_IOC_NR(PHYSMEM_IOC_ALLOC)], 1);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_SEGMENTS)], 6);
	assert_int_equal(fake.predates_logged, 1);
	for (int i = 0; i < 3; i++)
		kmod_release(st, &b[i], false);
	kmod_fini(st);
	assert_int_equal(test_count_fds(), fds);
}

/* Any other error is the answer: no retry, and the module is not taken for an old one. */
static void test_other_error_no_fallback(void **unused)
{
	int fds = test_count_fds();
	struct kmod_state *st;
	struct backend_buffer b;
	const char *feature = NULL;

	(void)unused;
	fake_reset(sizeof(struct physmem_alloc), sizeof(struct physmem_pin), sizeof(struct physmem_segments), 1);
	st = backend();
	fake.fail_errno = ENOMEM;
	assert_int_equal(kmod_allocate(st, 4096, false, PHYSMEM_MODE_CACHED, &b, &feature), -ENOMEM);
	assert_int_equal(b.fd, -1);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_ALLOC)], 1);
	assert_false(st->old_module);
	assert_int_equal(fake.predates_logged, 0);
	kmod_fini(st);
	assert_int_equal(test_count_fds(), fds);
}

/*
 * Pools: a module that knows the segment array (size 64) but not pool
 * indexes refuses an allocation from pool 1 (a non-zero byte past what it
 * knows) with E2BIG: PoolUnavailable "none"
 * (-ENODEV), with no fallback to other memory. A module without POOL_INFO
 * has no pools: the backend answers without asking it.
 */
static void test_pool_e2big(void **unused)
{
	int fds = test_count_fds();
	struct backend_pool_failure failure;
	struct kmod_state *st;
	struct backend_buffer b;
	const char *feature = NULL;

	(void)unused;
	fake_reset(PHYSMEM_ALLOC_SIZE_VER1, PHYSMEM_PIN_SIZE_VER1, PHYSMEM_SEGMENTS_SIZE_VER0, 1);
	st = backend();
	assert_int_equal(st->n_pools, 0);
	assert_int_equal(kmod_allocate_pool(st, "low", 4096, PHYSMEM_MODE_CACHED, &b, &failure, &feature), -ENODEV);
	assert_string_equal(failure.reason, "none");
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_ALLOC)], 0);
	kmod_fini(st);

	/* This module knows the segment array: a plain allocation is one ioctl (the pool bytes are zero). */
	fake_reset(PHYSMEM_ALLOC_SIZE_VER1, PHYSMEM_PIN_SIZE_VER1, PHYSMEM_SEGMENTS_SIZE_VER0, 1);
	fake.pool_info = true;
	st = backend();
	assert_int_equal(st->n_pools, 2);
	assert_int_equal(kmod_allocate_pool(st, "high", 4096, PHYSMEM_MODE_CACHED, &b, &failure, &feature), -ENODEV);
	assert_string_equal(failure.reason, "none");
	assert_false(failure.known);
	assert_int_equal(b.fd, -1);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_ALLOC)], 1);
	assert_int_equal(fake.e2big[_IOC_NR(PHYSMEM_IOC_ALLOC)], 1);
	allocate(st, 4096, &b);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_ALLOC)], 2);
	assert_int_equal(fake.e2big[_IOC_NR(PHYSMEM_IOC_ALLOC)], 1);
	assert_int_equal(fake.calls[_IOC_NR(PHYSMEM_IOC_SEGMENTS)], 0);
	assert_false(st->old_module);
	kmod_release(st, &b, false);
	kmod_fini(st);
	assert_int_equal(test_count_fds(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_current_module),
		cmocka_unit_test(test_current_module_many_segments),
		cmocka_unit_test(test_old_module_alloc_first),
		cmocka_unit_test(test_old_module_pin_first),
		cmocka_unit_test(test_other_error_no_fallback),
		cmocka_unit_test(test_pool_e2big),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
