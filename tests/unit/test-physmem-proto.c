/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* physmem_parse_size() and physmem_name_valid(). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "physmem-proto.h"

static void expect_size(const char *s, unsigned long long want)
{
	unsigned long long v = 12345;

	assert_int_equal(physmem_parse_size(s, &v), 0);
	assert_true(v == want);
}

static void expect_size_error(const char *s, int err)
{
	unsigned long long v = 12345;

	assert_int_equal(physmem_parse_size(s, &v), err);
	assert_true(v == 12345);	/* untouched on error */
}

static void test_parse_size_plain(void **state)
{
	(void)state;
	expect_size("0", 0);
	expect_size("1", 1);
	expect_size("4096", 4096);
	expect_size("18446744073709551615", ~0ULL);
}

static void test_parse_size_units(void **state)
{
	(void)state;
	expect_size("64K", 64ULL << 10);
	expect_size("64k", 64ULL << 10);
	expect_size("16M", 16ULL << 20);
	expect_size("16m", 16ULL << 20);
	expect_size("1G", 1ULL << 30);
	expect_size("1T", 1ULL << 40);
	expect_size("2MiB", 2ULL << 20);
	expect_size("2MB", 2ULL << 20);
	expect_size("3KiB", 3ULL << 10);
	expect_size("0K", 0);
	expect_size("16777215T", 16777215ULL << 40);
}

static void test_parse_size_garbage(void **state)
{
	(void)state;
	expect_size_error(NULL, -EINVAL);
	expect_size_error("", -EINVAL);
	expect_size_error("-1", -EINVAL);
	expect_size_error("+1", -EINVAL);
	expect_size_error(" 1", -EINVAL);
	expect_size_error("abc", -EINVAL);
	expect_size_error("K", -EINVAL);
	expect_size_error("1X", -EINVAL);
	expect_size_error("1P", -EINVAL);
	expect_size_error("1 K", -EINVAL);
	expect_size_error("1K ", -EINVAL);
	expect_size_error("1KiBx", -EINVAL);
	expect_size_error("1Ki", -EINVAL);
	expect_size_error("1KK", -EINVAL);
	expect_size_error("1b", -EINVAL);
	expect_size_error("1e3", -EINVAL);
	expect_size_error("0x10", -EINVAL);
	expect_size_error("1.5M", -EINVAL);
}

static void test_parse_size_range(void **state)
{
	(void)state;
	expect_size_error("18446744073709551616", -ERANGE);
	expect_size_error("99999999999999999999999", -ERANGE);
	expect_size_error("16777216T", -ERANGE);
	expect_size_error("17179869184G", -ERANGE);
	expect_size_error("18014398509481984K", -ERANGE);
}

static void test_name_valid(void **state)
{
	char name[PHYSMEM_NAME_MAX + 2];

	(void)state;
	assert_true(physmem_name_valid("a"));
	assert_true(physmem_name_valid("camera-0"));
	assert_true(physmem_name_valid("frame_buffer.1"));
	assert_true(physmem_name_valid("A.b-C_9"));
	assert_true(physmem_name_valid("a.."));

	assert_false(physmem_name_valid(""));
	assert_false(physmem_name_valid("."));
	assert_false(physmem_name_valid(".."));
	assert_false(physmem_name_valid(".hidden"));
	assert_false(physmem_name_valid("a/b"));
	assert_false(physmem_name_valid("/"));
	assert_false(physmem_name_valid("../etc"));
	assert_false(physmem_name_valid("a b"));
	assert_false(physmem_name_valid("a\nb"));
	assert_false(physmem_name_valid("caf\xc3\xa9"));
	assert_false(physmem_name_valid("a:b"));
	assert_false(physmem_name_valid("a*"));

	memset(name, 'x', sizeof(name));
	name[PHYSMEM_NAME_MAX] = '\0';
	assert_true(physmem_name_valid(name));		/* exactly 64 */
	name[PHYSMEM_NAME_MAX] = 'x';
	name[PHYSMEM_NAME_MAX + 1] = '\0';
	assert_false(physmem_name_valid(name));		/* 65 */
}

static void test_cache_mode_names(void **state)
{
	(void)state;
	assert_string_equal(physmem_cache_mode_names[PHYSMEM_CACHE_MODE_CACHED], "cached");
	assert_string_equal(physmem_cache_mode_names[PHYSMEM_CACHE_MODE_WRITECOMBINE], "writecombine");
	assert_string_equal(physmem_cache_mode_names[PHYSMEM_CACHE_MODE_UNCACHED], "uncached");
	assert_null(physmem_cache_mode_names[3]);
	assert_non_null(strstr(physmem_interface_description, "interface io.physmem.Manager"));
}

/* PCI addresses: both spellings, exact digit counts, ranges, canonical output. */
static void test_pci_address(void **state)
{
	static const char *const bad[] = {
		"", "0", "00:03", "0000:00:03", "0000:00:03.", "0000:00:03.00", "00000:00:03.0", "0000:000:03.0",
		"0000:00:003.0", "0000-00:03.0", "0000:00-03.0", "0000:00:03-0", "0000:00:20.0", "0000:00:03.8",
		"0000:0g:03.0", "g0:03.0", " 00:03.0", "00:03.0 ", "+0:03.0", "0000:00:03.0\n", "0:00:03.0",
	};
	struct physmem_pci_address a, b;
	char buf[PHYSMEM_PCI_ADDRESS_MAX + 1];

	(void)state;
	assert_int_equal(physmem_pci_address_parse("0000:00:03.0", &a), 0);
	assert_int_equal(a.domain, 0);
	assert_int_equal(a.bus, 0);
	assert_int_equal(a.slot, 3);
	assert_int_equal(a.function, 0);
	assert_int_equal(physmem_pci_address_parse("ABcd:eF:1f.7", &a), 0);
	assert_int_equal(a.domain, 0xabcd);
	assert_int_equal(a.bus, 0xef);
	assert_int_equal(a.slot, 0x1f);
	assert_int_equal(a.function, 7);
	physmem_pci_address_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "abcd:ef:1f.7");
	assert_int_equal(physmem_pci_address_parse("0a:1E.3", &a), 0);
	assert_int_equal(a.domain, 0);
	physmem_pci_address_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "0000:0a:1e.3");
	/* Equal: every part counts, however it was spelled. */
	b = a;
	assert_true(physmem_pci_address_equal(&a, &b));
	assert_int_equal(physmem_pci_address_parse("0000:0A:1e.3", &b), 0);
	assert_true(physmem_pci_address_equal(&a, &b));
	b.domain = 1;
	assert_false(physmem_pci_address_equal(&a, &b));
	b = a;
	b.bus = 0x0b;
	assert_false(physmem_pci_address_equal(&a, &b));
	b = a;
	b.slot = 0x1f;
	assert_false(physmem_pci_address_equal(&a, &b));
	b = a;
	b.function = 2;
	assert_false(physmem_pci_address_equal(&a, &b));
	assert_int_equal(physmem_pci_address_parse(NULL, &a), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (physmem_pci_address_parse(bad[i], &a) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	assert_string_equal(physmem_device_access_names[PHYSMEM_DEVICE_ACCESS_TO_DEVICE], "toDevice");
	assert_null(physmem_device_access_names[3]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_plain),
		cmocka_unit_test(test_parse_size_units),
		cmocka_unit_test(test_parse_size_garbage),
		cmocka_unit_test(test_parse_size_range),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_cache_mode_names),
		cmocka_unit_test(test_pci_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
