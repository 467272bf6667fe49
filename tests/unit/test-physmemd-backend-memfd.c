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
#include <sys/resource.h>
#include <time.h>
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

/* Wait until the spare-file thread has done what it was asked (10 s at most). */
static void spares_settle(struct memfd_state *st)
{
	struct memfd_spares *sp = &st->spares;

	for (int i = 0; i < 10000; i++) {
		bool busy;

		pthread_mutex_lock(&sp->lock);
		busy = sp->wanted;
		pthread_mutex_unlock(&sp->lock);
		if (!busy)
			return;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	fail_msg("the spare-file thread is still filling after 10 s");
}

static unsigned spares_held(struct memfd_state *st)
{
	unsigned n;

	pthread_mutex_lock(&st->spares.lock);
	n = st->spares.n;
	pthread_mutex_unlock(&st->spares.lock);
	return n;
}

/* This process's fds other than the spare files, once their thread has settled. */
static int fds_besides_spares(struct memfd_state *st)
{
	if (!st->spares.started)
		return test_count_fds();
	spares_settle(st);
	return test_count_fds() - (int)spares_held(st);
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
	int fds = fds_besides_spares(st);
	bool thp = true;

	(void)state;
	assert_true(alloc_pages(st, pages * HUGE_2M, &thp) == (uint64_t)st->page_size);
	assert_false(thp);
	assert_int_equal(fds_besides_spares(st), fds);
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
	fds = fds_besides_spares(st);
	if (real_available() >= 2)
		assert_true(alloc_pages(st, 4 << 20, NULL) == HUGE_2M);
	else
		assert_true(alloc_pages(st, 4 << 20, NULL) == (uint64_t)st->page_size);
	/* Never for a size that is not whole 2 MiB pages, however full the pool. */
	assert_true(alloc_pages(st, (4 << 20) + 4096, NULL) == (uint64_t)st->page_size);
	assert_int_equal(fds_besides_spares(st), fds);
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

/* A backend with hugepages = 0 (small pages only) and its spare files made. */
static struct memfd_state *small_page_backend(struct conf *conf)
{
	void *s;

	conf_defaults(conf);
	assert_int_equal(conf_set(conf, "hugepages", "0"), 0);
	assert_int_equal(memfd_init(conf, &s), 0);
	assert_true(((struct memfd_state *)s)->spares.started);
	spares_settle(s);
	return s;
}

/*
 * Every buffer is a file of its own that nothing else holds: 3 * SPARE_MAX
 * buffers held at once (the store empties, refills, and Allocate makes
 * files itself meanwhile) are all different inodes, each sized and sealed,
 * and none is a file still waiting in the store (which are empty and
 * unsealed). Everything is closed at the end, the store too.
 */
static void test_spare_files_fresh(void **state)
{
	enum { N = 3 * SPARE_MAX };
	static struct backend_buffer b[N];
	static ino_t ino[N];
	int before = test_count_fds();
	struct conf conf;
	struct memfd_state *st = small_page_backend(&conf);
	const char *feature = NULL;
	struct stat s;

	(void)state;
	assert_int_equal(spares_held(st), SPARE_MAX);
	for (int i = 0; i < N; i++) {
		assert_int_equal(memfd_allocate(st, 4096, false, PHYSMEM_CACHE_MODE_CACHED, &b[i], &feature), 0);
		assert_int_equal(fstat(b[i].fd, &s), 0);
		assert_true(s.st_size == 4096);
		assert_int_equal(fcntl(b[i].fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		ino[i] = s.st_ino;
		for (int j = 0; j < i; j++)
			if (ino[j] == ino[i])
				fail_msg("buffers %d and %d are the same file (inode %llu)", j, i,
					 (unsigned long long)ino[i]);
	}
	spares_settle(st);
	pthread_mutex_lock(&st->spares.lock);
	for (unsigned k = 0; k < st->spares.n; k++) {
		assert_int_equal(fstat(st->spares.fds[k], &s), 0);
		assert_true(s.st_size == 0);
		assert_int_equal(fcntl(st->spares.fds[k], F_GET_SEALS), 0);
		for (int i = 0; i < N; i++)
			if (ino[i] == s.st_ino)
				fail_msg("buffer %d's file is still in the store", i);
	}
	pthread_mutex_unlock(&st->spares.lock);
	for (int i = 0; i < N; i++)
		memfd_release(st, &b[i], false);
	memfd_fini(st);
	assert_int_equal(test_count_fds(), before);
}

/* Taking the store below SPARE_LOW has it filled again to SPARE_MAX; down to SPARE_LOW, nothing is made. */
static void test_spares_refill(void **state)
{
	static struct backend_buffer b[SPARE_MAX];
	struct conf conf;
	struct memfd_state *st = small_page_backend(&conf);
	const char *feature = NULL;
	int i;

	(void)state;
	for (i = 0; i < SPARE_MAX - SPARE_LOW; i++)
		assert_int_equal(memfd_allocate(st, 4096, false, PHYSMEM_CACHE_MODE_CACHED, &b[i], &feature), 0);
	spares_settle(st);
	assert_int_equal(spares_held(st), SPARE_LOW);
	assert_int_equal(memfd_allocate(st, 4096, false, PHYSMEM_CACHE_MODE_CACHED, &b[i++], &feature), 0);
	spares_settle(st);
	assert_int_equal(spares_held(st), SPARE_MAX);
	while (i-- > 0)
		memfd_release(st, &b[i], false);
	memfd_fini(st);
}

/* A soft fd limit of limit (restored by the caller from *old). */
static void set_fd_limit(rlim_t limit, struct rlimit *old)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, old), 0);
	rl = *old;
	assert_true(limit <= rl.rlim_max);
	rl.rlim_cur = limit;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* With a small fd limit there is no store: Allocate makes its files, and fails cleanly with EMFILE. */
static void test_no_spares_under_low_fd_limit(void **state)
{
	static struct backend_buffer b[16];
	struct backend_buffer extra;
	struct rlimit old;
	struct conf conf;
	const char *feature = NULL;
	int before = test_count_fds(), n = 0, r;
	void *s;

	(void)state;
	set_fd_limit((rlim_t)before + 8, &old);
	conf_defaults(&conf);
	assert_int_equal(conf_set(&conf, "hugepages", "0"), 0);
	assert_int_equal(memfd_init(&conf, &s), 0);
	assert_false(((struct memfd_state *)s)->spares.started);
	for (;;) {
		assert_true(n < 16);
		r = memfd_allocate(s, 4096, false, PHYSMEM_CACHE_MODE_CACHED, &b[n], &feature);
		if (r < 0)
			break;
		n++;
	}
	assert_int_equal(r, -EMFILE);
	assert_int_equal(b[n].fd, -1);
	assert_true(n > 0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(memfd_allocate(s, 4096, false, PHYSMEM_CACHE_MODE_CACHED, &extra, &feature), 0);
	memfd_release(s, &extra, false);
	while (n-- > 0)
		memfd_release(s, &b[n], false);
	memfd_fini(s);
	assert_int_equal(test_count_fds(), before);
}

/*
 * The fd table filled up (an attack pass's case): the store gives its
 * files back, and when some fds are free again they are for Allocate (and
 * accept), not for the store: with SPARE_MAX + 6 free, an Allocate
 * succeeds and the rest stay free. Once the table is less than half full
 * (counted at most once a second) the store fills again.
 */
static void test_spares_give_way_to_a_full_table(void **state)
{
	enum { LIMIT = 2048, MAX_BUFS = LIMIT, FREED = SPARE_MAX + 6 };
	static struct backend_buffer b[MAX_BUFS];
	static int filler[LIMIT];
	struct backend_buffer one;
	struct rlimit old;
	struct conf conf;
	struct memfd_state *st;
	const char *feature = NULL;
	int before = test_count_fds(), n_fill = 0, n = 0, r, fd;
	void *s;

	(void)state;
	set_fd_limit(LIMIT, &old);
	conf_defaults(&conf);
	assert_int_equal(conf_set(&conf, "hugepages", "0"), 0);
	assert_int_equal(memfd_init(&conf, &s), 0);
	st = s;
	assert_true(st->spares.started);
	spares_settle(st);
	assert_int_equal(spares_held(st), SPARE_MAX);
	/* Fill the table but for what the store holds, then allocate until EMFILE. */
	while ((fd = dup(0)) >= 0)
		filler[n_fill++] = fd;
	assert_int_equal(errno, EMFILE);
	for (;;) {
		assert_true(n < MAX_BUFS);
		r = memfd_allocate(st, 4096, false, PHYSMEM_CACHE_MODE_CACHED, &b[n], &feature);
		if (r < 0)
			break;
		n++;
	}
	assert_int_equal(r, -EMFILE);
	spares_settle(st);
	assert_int_equal(spares_held(st), 0);
	assert_true(st->spares.off);
	/*
	 * FREED fds free, more than the store holds, low in the table (far
	 * from the limit: only the count of open fds tells the store no): one
	 * Allocate, and all the others are still free for others.
	 */
	for (int i = 0; i < FREED; i++)
		close(filler[i]);
	assert_int_equal(memfd_allocate(st, 4096, false, PHYSMEM_CACHE_MODE_CACHED, &one, &feature), 0);
	spares_settle(st);
	assert_int_equal(spares_held(st), 0);
	for (int i = 0; i < FREED - 1; i++) {
		filler[i] = dup(0);
		if (filler[i] < 0)
			fail_msg("only %d of the %d fds left are free", i, FREED - 1);
	}
	filler[FREED - 1] = -1;
	memfd_release(st, &one, false);
	/* The table nearly empty again: after the once-a-second count the store is back. */
	while (n_fill > 0)
		if (filler[--n_fill] >= 0)
			close(filler[n_fill]);
	while (n-- > 0)
		memfd_release(st, &b[n], false);
	nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 100000000 }, NULL);
	assert_int_equal(memfd_allocate(st, 4096, false, PHYSMEM_CACHE_MODE_CACHED, &one, &feature), 0);
	memfd_release(st, &one, false);
	spares_settle(st);
	assert_false(st->spares.off);
	assert_int_equal(spares_held(st), SPARE_MAX);
	memfd_fini(st);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(test_count_fds(), before);
}

/* accept() out of fds: the store closes every file it holds at once. */
static void test_spares_fd_pressure(void **state)
{
	struct conf conf;
	struct memfd_state *st = small_page_backend(&conf);
	int fds = test_count_fds();

	(void)state;
	assert_int_equal(spares_held(st), SPARE_MAX);
	assert_non_null(backend_memfd_ops.fd_pressure);
	backend_memfd_ops.fd_pressure(st);
	assert_int_equal(spares_held(st), 0);
	assert_int_equal(test_count_fds(), fds - SPARE_MAX);
	memfd_fini(st);
}

/*
 * A stored fd closed behind the store's back and its number reused (a
 * double close elsewhere): never handed out as a buffer, and not closed.
 */
static void test_spare_replaced_is_dropped(void **state)
{
	struct backend_buffer b;
	struct conf conf;
	struct memfd_state *st = small_page_backend(&conf);
	const char *feature = NULL;
	int victim, other = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct stat s;

	(void)state;
	assert_true(other >= 0);
	pthread_mutex_lock(&st->spares.lock);
	victim = st->spares.fds[st->spares.n - 1];
	pthread_mutex_unlock(&st->spares.lock);
	assert_int_equal(dup2(other, victim), victim);	/* closes the spare, reuses its number */
	assert_int_equal(memfd_allocate(st, 4096, false, PHYSMEM_CACHE_MODE_CACHED, &b, &feature), 0);
	assert_int_not_equal(b.fd, victim);
	assert_int_equal(fstat(victim, &s), 0);
	assert_true(S_ISCHR(s.st_mode));	/* still /dev/null, still open */
	memfd_release(st, &b, false);
	close(victim);
	close(other);
	memfd_fini(st);
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
		cmocka_unit_test(test_spare_files_fresh),
		cmocka_unit_test(test_spares_refill),
		cmocka_unit_test(test_no_spares_under_low_fd_limit),
		cmocka_unit_test(test_spares_give_way_to_a_full_table),
		cmocka_unit_test(test_spares_fd_pressure),
		cmocka_unit_test(test_spare_replaced_is_dropped),
	};

	log_set_level(LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
