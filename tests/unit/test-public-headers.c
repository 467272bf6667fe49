/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The two public headers, libphysmem's and the module's uapi, in one program:
 * an application that uses both must not meet clashing names. Building this
 * file is most of the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "uapi/physmem.h"
#include "physmem.h"

static void test_cache_modes_agree(void **state)
{
	(void)state;
	/* libphysmem's cache modes are the module's, one for one. */
	assert_int_equal(PHYSMEM_CACHE_CACHED, PHYSMEM_MODE_CACHED);
	assert_int_equal(PHYSMEM_CACHE_WRITECOMBINE, PHYSMEM_MODE_WC);
	assert_int_equal(PHYSMEM_CACHE_UNCACHED, PHYSMEM_MODE_UNCACHED);
	assert_int_equal(offsetof(struct physmem_alloc, segments), PHYSMEM_ALLOC_SIZE_VER0);
	assert_int_equal(offsetof(struct physmem_alloc, pool), PHYSMEM_ALLOC_SIZE_VER1);
	assert_int_equal(sizeof(struct physmem_alloc), PHYSMEM_ALLOC_SIZE_VER2);
	assert_int_equal(offsetof(struct physmem_pin, segments), PHYSMEM_PIN_SIZE_VER0);
	assert_int_equal(sizeof(struct physmem_pin), PHYSMEM_PIN_SIZE_VER1);
	assert_int_equal(offsetof(struct physmem_segments, binding_id), PHYSMEM_SEGMENTS_SIZE_VER0);
	assert_int_equal(sizeof(struct physmem_segments), PHYSMEM_SEGMENTS_SIZE_VER1);
	assert_int_equal(sizeof(struct physmem_bind), PHYSMEM_BIND_SIZE_VER0);
	assert_int_equal(sizeof(struct physmem_unbind), PHYSMEM_UNBIND_SIZE_VER0);
	assert_int_equal(sizeof(struct physmem_pool_info), PHYSMEM_POOL_INFO_SIZE_VER0);
	assert_int_equal(sizeof(struct physmem_dev_info), PHYSMEM_INFO_SIZE_VER0);
	assert_int_equal(offsetof(struct physmem_query, out_flags), PHYSMEM_QUERY_SIZE_VER0);
	assert_int_equal(sizeof(struct physmem_query), PHYSMEM_QUERY_SIZE_VER1);
}

static void test_segment_layout_is_fixed(void **state)
{
	(void)state;
	/* The one plain struct of physmem.h: documented never to grow. */
	assert_int_equal(sizeof(struct physmem_segment), 16);
	assert_int_equal(offsetof(struct physmem_segment, address), 0);
	assert_int_equal(offsetof(struct physmem_segment, length), 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_modes_agree),
		cmocka_unit_test(test_segment_layout_is_fixed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
