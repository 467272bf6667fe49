/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Size rounding has one owner: registry_alloc_size() rounds a request up to
 * the backend's unit, and the backend then makes exactly that size (it never
 * rounds a second time), so that the number the quota is checked against, the
 * number charged and the buffer's size are one number.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "physmem-proto.h"
#include "physmemd.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_to_granule),
		cmocka_unit_test(test_round_to_page),
		cmocka_unit_test(test_memfd_makes_what_is_charged),
	};

	log_set_level(LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
