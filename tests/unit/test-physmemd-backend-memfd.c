/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The memfd backend's page choice (hugepages = auto, 0, 2M): the backend's
 * source is compiled in here so that its pool and THP files can be replaced
 * by files the test writes. No root needed: the real hugetlb pool is only
 * read, and a reservation the real pool cannot give is the "pages taken
 * between the check and the reservation" race, made certain.
 */
#include "../../daemon/physmemd-backend-memfd.c"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test-daemon.h"


/* A file holding text, open for reading at fd; -1 for text NULL. */
static int text_fd(const char *text)
{
	char path[] = "/tmp/test-physmemd-memfd-XXXXXX";
	int fd, rfd;

	if (!text)
		return -1;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	rfd = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	assert_true(rfd >= 0);
	return rfd;
}

/* 2 MiB pages the real pool has free and unreserved (0 without hugetlb). */
static uint64_t real_available(void)
{
	struct memfd_state st = { .free_fd = open(HUGETLB_2M_DIR "free_hugepages", O_RDONLY | O_CLOEXEC),
				  .resv_fd = open(HUGETLB_2M_DIR "resv_hugepages", O_RDONLY | O_CLOEXEC) };
	uint64_t n = memfd_hugetlb_available(&st);

	if (st.free_fd >= 0)
		close(st.free_fd);
	if (st.resv_fd >= 0)
		close(st.resv_fd);
	return n;
}

/* A backend with hugepages = mode whose pool and THP files say free/resv/thp (NULL: unreadable). */
static struct memfd_state *backend(struct conf *conf, const char *mode, const char *free_text,
				   const char *resv_text, const char *thp_text)
{
	void *state;
	struct memfd_state *st;

	conf_defaults(conf);
	assert_int_equal(conf_set(conf, "hugepages", mode), 0);
	assert_int_equal(memfd_init(conf, &state), 0);
	st = state;
	if (st->free_fd >= 0)
		close(st->free_fd);
	if (st->resv_fd >= 0)
		close(st->resv_fd);
	if (st->thp_fd >= 0)
		close(st->thp_fd);
	st->free_fd = text_fd(free_text);
	st->resv_fd = text_fd(resv_text);
	st->thp_fd = text_fd(thp_text);
	return st;
}

/* Allocate size bytes; the page size and THP advice it got; the buffer is released. */
static uint64_t alloc_pages(struct memfd_state *st, uint64_t size, bool *ret_thp)
{
	struct backend_buffer b;
	const char *feature = NULL;
	struct stat s;
	uint64_t page;

	assert_int_equal(memfd_allocate(st, size, false, PHYSMEM_CACHE_MODE_CACHED, &b, &feature), 0);
	assert_true(b.size == size);
	assert_int_equal(fstat(b.fd, &s), 0);
	assert_true((uint64_t)s.st_size == size);
	/* What the reply says is what the file is. */
	assert_true(b.page_size == (uint64_t)s.st_blksize);
	assert_int_equal(fcntl(b.fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	page = b.page_size;
	if (ret_thp)
		*ret_thp = b.thp;
	memfd_release(st, &b, false);
	return page;
}

/* The pool looks full but the reservation fails: small pages, success, no fd left behind. */
static void test_reservation_fails_falls_back(void **state)
{
	uint64_t pages = real_available() + 1;	/* one more than the real pool can give */
	struct conf conf;
	struct memfd_state *st = backend(&conf, "auto", "1000000\n", "0\n", "always within_size advise [never] deny\n");
	int fds = test_count_fds();
	bool thp = true;

	(void)state;
	assert_true(alloc_pages(st, pages * HUGE_2M, &thp) == (uint64_t)st->page_size);
	assert_false(thp);
	assert_int_equal(test_count_fds(), fds);
	memfd_fini(st);
}

/* Pool counters: free minus reserved must cover the request, else no attempt at all. */
static void test_pool_check(void **state)
{
	struct memfd_state st = { 0 };

	(void)state;
	st.free_fd = text_fd("8\n");
	st.resv_fd = text_fd("3\n");
	assert_true(memfd_hugetlb_available(&st) == 5);
	close(st.free_fd);
	close(st.resv_fd);
	st.free_fd = text_fd("3\n");
	st.resv_fd = text_fd("3\n");
	assert_true(memfd_hugetlb_available(&st) == 0);
	close(st.free_fd);
	close(st.resv_fd);
	st.free_fd = text_fd("junk");
	st.resv_fd = text_fd("0\n");
	assert_true(memfd_hugetlb_available(&st) == 0);
	close(st.free_fd);
	close(st.resv_fd);
	st.free_fd = -1;
	st.resv_fd = -1;
	assert_true(memfd_hugetlb_available(&st) == 0);
}

/* With the real pool: hugetlb pages exactly when it has enough; small pages otherwise. */
static void test_auto_real_pool(void **state)
{
	struct conf conf;
	struct memfd_state *st = backend(&conf, "auto", NULL, NULL, NULL);
	int fds;

	(void)state;
	st->free_fd = open(HUGETLB_2M_DIR "free_hugepages", O_RDONLY | O_CLOEXEC);
	st->resv_fd = open(HUGETLB_2M_DIR "resv_hugepages", O_RDONLY | O_CLOEXEC);
	fds = test_count_fds();
	if (real_available() >= 2)
		assert_true(alloc_pages(st, 4 << 20, NULL) == HUGE_2M);
	else
		assert_true(alloc_pages(st, 4 << 20, NULL) == (uint64_t)st->page_size);
	/* Never for a size that is not whole 2 MiB pages, however full the pool. */
	assert_true(alloc_pages(st, (4 << 20) + 4096, NULL) == (uint64_t)st->page_size);
	assert_int_equal(test_count_fds(), fds);
	memfd_fini(st);
}

/* THP advice: only with auto, 2 MiB or more, and a shmem_enabled that allows it. */
static void test_thp_advice(void **state)
{
	static const struct {
		const char *mode, *thp;
		uint64_t size;
		bool advice;
	} cases[] = {
		{ "auto", "always within_size [advise] never deny force\n", 2 << 20, true },
		{ "auto", "[always] within_size advise never deny force\n", 8 << 20, true },
		{ "auto", "always [within_size] advise never deny force\n", 2 << 20, true },
		{ "auto", "always within_size advise [never] deny force\n", 2 << 20, false },
		{ "auto", "always within_size advise never [deny] force\n", 2 << 20, false },
		{ "auto", "always within_size [advise] never deny force\n", (2 << 20) - 4096, false },
		{ "auto", NULL, 2 << 20, false },
		{ "0", "always within_size [advise] never deny force\n", 2 << 20, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf conf;
		struct memfd_state *st = backend(&conf, cases[i].mode, "0\n", "0\n", cases[i].thp);
		bool thp = !cases[i].advice;

		assert_true(alloc_pages(st, cases[i].size, &thp) == (uint64_t)st->page_size);
		assert_int_equal(thp, cases[i].advice);
		memfd_fini(st);
	}
}

/* hugepages = 0 never opens the pool's files nor takes a huge page. */
static void test_never(void **state)
{
	struct conf conf;
	void *s;
	struct memfd_state *st;

	(void)state;
	conf_defaults(&conf);
	assert_int_equal(conf_set(&conf, "hugepages", "0"), 0);
	assert_int_equal(memfd_init(&conf, &s), 0);
	st = s;
	assert_int_equal(st->free_fd, -1);
	assert_int_equal(st->thp_fd, -1);
	assert_true(alloc_pages(st, 4 << 20, NULL) == (uint64_t)st->page_size);
	memfd_fini(st);
}

/* hugepages = 2M: a pool too small is an error at Allocate (not at the client's map), and leaks nothing. */
static void test_fixed_short_pool_fails(void **state)
{
	uint64_t pages = real_available() + 1;
	struct backend_buffer b;
	const char *feature = NULL;
	struct conf conf;
	void *s;
	int fds;

	(void)state;
	if (access(HUGETLB_2M_DIR "nr_hugepages", F_OK) < 0)
		skip();		/* no 2 MiB hugetlb pages in this kernel */
	conf_defaults(&conf);
	assert_int_equal(conf_set(&conf, "hugepages", "2M"), 0);
	assert_int_equal(memfd_init(&conf, &s), 0);
	fds = test_count_fds();
	assert_int_equal(memfd_allocate(s, pages * HUGE_2M, false, PHYSMEM_CACHE_MODE_CACHED, &b, &feature), -ENOMEM);
	assert_int_equal(b.fd, -1);
	assert_int_equal(test_count_fds(), fds);
	memfd_fini(s);
}

/*
 * Which allocations the loop may run itself: small pages only, never a size
 * that reserves huge pages (a reservation may compact or reclaim memory).
 */
static void test_inline_only_small_pages(void **state)
{
	static const struct {
		const char *mode;
		uint64_t size;
		bool inline_ok;
	} cases[] = {
		{ "0", 4096, true },       { "0", 2 << 20, true },     { "0", 4 << 20, true },
		{ "auto", 4096, true },    { "auto", 1 << 20, true },  { "auto", 3 << 20, true },
		{ "auto", 2 << 20, false }, { "auto", 4 << 20, false }, { "2M", 4096, false },
		{ "2M", 2 << 20, false },  { "1G", 4096, false },
	};
	struct conf conf;
	void *s;

	(void)state;
	assert_non_null(backend_memfd_ops.inline_ok);
	assert_true(backend_memfd_ops.inline_max >= (4 << 20));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf_defaults(&conf);
		assert_int_equal(conf_set(&conf, "hugepages", cases[i].mode), 0);
		assert_int_equal(memfd_init(&conf, &s), 0);
		if (backend_memfd_ops.inline_ok(s, cases[i].size) != cases[i].inline_ok)
			fail_msg("hugepages = %s, %llu bytes: inline_ok should be %d", cases[i].mode,
				 (unsigned long long)cases[i].size, cases[i].inline_ok);
		memfd_fini(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_check),
		cmocka_unit_test(test_reservation_fails_falls_back),
		cmocka_unit_test(test_auto_real_pool),
		cmocka_unit_test(test_thp_advice),
		cmocka_unit_test(test_never),
		cmocka_unit_test(test_fixed_short_pool_fails),
		cmocka_unit_test(test_inline_only_small_pages),
	};

	log_set_level(LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
