/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of physmemctl's pure helpers: sizes with units, formatting, exit codes, indented JSON. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "physmemctl-util.h"

/* Compact JSON indented: structure outside strings only, empty containers kept on one line. */
static void json_indented_outside_strings_only(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "{}", "{}\n" },
		{ "[]", "[]\n" },
		{ "1", "1\n" },
		{ "{\"a\":1,\"b\":[],\"c\":{}}", "{\n  \"a\": 1,\n  \"b\": [],\n  \"c\": {}\n}\n" },
		{ "[[1,2],{\"x\":null}]", "[\n  [\n    1,\n    2\n  ],\n  {\n    \"x\": null\n  }\n]\n" },
		/* Braces, commas, colons and escaped quotes inside strings are text. */
		{ "{\"k{,:\":\"v\\\"[],:}\\\\\"}", "{\n  \"k{,:\": \"v\\\"[],:}\\\\\"\n}\n" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *buf = NULL;
		size_t size = 0;
		FILE *f = open_memstream(&buf, &size);

		assert_non_null(f);
		assert_int_equal(physmemctl_write_indented(f, cases[i].in, strlen(cases[i].in)), 0);
		assert_int_equal(fclose(f), 0);
		assert_string_equal(buf, cases[i].out);
		free(buf);
	}
}

static void size_plain_and_units_parse(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{ "4096", 4096 }, { "1", 1 }, { "64K", 64u << 10 }, { "64k", 64u << 10 },
		{ "16M", 16u << 20 }, { "16m", 16u << 20 }, { "1G", 1u << 30 }, { "2T", 2ull << 40 },
		{ "4KiB", 4u << 10 }, { "2MiB", 2u << 20 }, { "3GiB", 3ull << 30 }, { "1TiB", 1ull << 40 },
		{ "1KB", 1u << 10 }, { "5MB", 5u << 20 }, { "007", 7 }, { "9223372036854775807", INT64_MAX }, { "8388607T", 8388607ull << 40 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 0;

		assert_int_equal(physmemctl_parse_size(ok[i].s, &v), 0);
		assert_int_equal(v, ok[i].v);
	}
}

static void size_garbage_is_rejected(void **state)
{
	static const char *const bad[] = {
		"", "abc", "K", "-1", "+1", " 1", "1 ", "1 K", "1.5M", "1e6", "0x10", "1Kb", "1Kib",
		"1kib", "1MiBx", "1P", "1B", "12abc", "1Ki",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 42;

		assert_int_equal(physmemctl_parse_size(bad[i], &v), -EINVAL);
		assert_int_equal(v, 42);
	}
	assert_int_equal(physmemctl_parse_size(NULL, NULL), -EINVAL);
}

static void size_zero_and_overflow_are_out_of_range(void **state)
{
	static const char *const bad[] = {
		"0", "0K", "000", "9223372036854775808", "18446744073709551616", "8388608T", "8589934592G",
		"99999999999999999999999999999999999999",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 42;

		assert_int_equal(physmemctl_parse_size(bad[i], &v), -ERANGE);
		assert_int_equal(v, 42);
	}
}

static void uint_parse_respects_max(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(physmemctl_parse_uint("4294967294", UINT32_MAX - 1, &v), 0);
	assert_int_equal(v, 4294967294u);
	assert_int_equal(physmemctl_parse_uint("4294967295", UINT32_MAX - 1, &v), -ERANGE);
	assert_int_equal(physmemctl_parse_uint("5", 4, &v), -ERANGE);
	assert_int_equal(physmemctl_parse_uint("-1", 100, &v), -EINVAL);
	assert_int_equal(physmemctl_parse_uint("", 100, &v), -EINVAL);
}

static void size_formats_human_readable(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(physmemctl_format_size(0, buf, sizeof(buf)), "0 B");
	assert_string_equal(physmemctl_format_size(512, buf, sizeof(buf)), "512 B");
	assert_string_equal(physmemctl_format_size(4096, buf, sizeof(buf)), "4.0 KiB");
	assert_string_equal(physmemctl_format_size(16u << 20, buf, sizeof(buf)), "16.0 MiB");
	assert_string_equal(physmemctl_format_size(3ull << 29, buf, sizeof(buf)), "1.5 GiB");
	assert_string_equal(physmemctl_format_size(UINT64_MAX, buf, sizeof(buf)), "16.0 EiB");
}

static void exit_codes_follow_errors(void **state)
{
	(void)state;
	assert_int_equal(physmemctl_exit_code(0), PHYSMEMCTL_EXIT_OK);
	assert_int_equal(physmemctl_exit_code(-EACCES), PHYSMEMCTL_EXIT_DENIED);
	assert_int_equal(physmemctl_exit_code(-EDQUOT), PHYSMEMCTL_EXIT_QUOTA);
	assert_int_equal(physmemctl_exit_code(-ENOENT), PHYSMEMCTL_EXIT_NOT_FOUND);
	assert_int_equal(physmemctl_exit_code(-ECONNRESET), PHYSMEMCTL_EXIT_UNREACHABLE);
	assert_int_equal(physmemctl_exit_code(-ETIMEDOUT), PHYSMEMCTL_EXIT_UNREACHABLE);
	assert_int_equal(physmemctl_exit_code(-ERANGE), PHYSMEMCTL_EXIT_FAILED);
	assert_int_equal(physmemctl_exit_code(-EPROTO), PHYSMEMCTL_EXIT_FAILED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(size_plain_and_units_parse),
		cmocka_unit_test(size_garbage_is_rejected),
		cmocka_unit_test(size_zero_and_overflow_are_out_of_range),
		cmocka_unit_test(uint_parse_respects_max),
		cmocka_unit_test(size_formats_human_readable),
		cmocka_unit_test(exit_codes_follow_errors),
		cmocka_unit_test(json_indented_outside_strings_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
