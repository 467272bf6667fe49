/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Strict UTF-8 and JSON escape checks: vl_utf8_* of varlink-utf8.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "varlink-utf8.h"

#define VALID(s) vl_utf8_valid(s, sizeof(s) - 1)
#define ESCAPES(s) vl_utf8_escapes_valid(s, sizeof(s) - 1)

static void test_valid(void **state)
{
	(void)state;
	assert_true(VALID(""));
	assert_true(VALID("plain ascii \x7f"));
	assert_true(VALID("a\0b"));				/* NUL is UTF-8; callers refuse it */
	assert_true(VALID("\xc2\x80 \xdf\xbf"));		/* U+0080, U+07FF */
	assert_true(VALID("\xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf"));
	assert_true(VALID("\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf"));	/* U+10000, U+10FFFF */
}

static void test_invalid(void **state)
{
	(void)state;
	assert_false(VALID("\xff"));
	assert_false(VALID("\x80"));				/* a lone continuation byte */
	assert_false(VALID("\xc0\xaf"));			/* overlong '/' */
	assert_false(VALID("\xc1\xbf"));
	assert_false(VALID("\xc0\x80"));			/* overlong NUL */
	assert_false(VALID("\xe0\x9f\xbf"));			/* overlong U+07FF */
	assert_false(VALID("\xf0\x8f\xbf\xbf"));		/* overlong U+FFFF */
	assert_false(VALID("\xed\xa0\x80"));			/* U+D800 */
	assert_false(VALID("\xed\xbf\xbf"));			/* U+DFFF */
	assert_false(VALID("\xf4\x90\x80\x80"));		/* U+110000 */
	assert_false(VALID("\xf5\x80\x80\x80"));
	assert_false(VALID("\xf8\x88\x80\x80\x80"));		/* five bytes */
	assert_false(VALID("\xe2\x82"));			/* truncated at the end */
	assert_false(VALID("\xe2\x82x"));			/* truncated in the middle */
	assert_false(VALID("\xc2\xc2\x80"));
}

static void test_escapes(void **state)
{
	(void)state;
	assert_true(ESCAPES("\"plain\""));
	assert_true(ESCAPES("\"\\u00e9 \\n \\\\ud800 \\\" \\/\""));	/* \\ud800 is no escape */
	assert_true(ESCAPES("\"\\ud83d\\ude00\""));			/* a pair */
	assert_true(ESCAPES("\"\\uD83D\\uDE00 \\uffff \\u0000\""));
	assert_false(ESCAPES("\"\\ud800\""));				/* high alone */
	assert_false(ESCAPES("\"\\ud800x\""));
	assert_false(ESCAPES("\"\\ud800\\u0041\""));			/* high, then no low */
	assert_false(ESCAPES("\"\\udc00\""));				/* low alone */
	assert_false(ESCAPES("\"\\ude00\\ud83d\""));			/* reversed */
	assert_false(ESCAPES("\"\\ud83d\\ud83d\\ude00\""));
	assert_false(ESCAPES("\"\\ud83d\\ude0"));			/* cut short */
	assert_false(ESCAPES("\"\\u12\""));
	assert_false(ESCAPES("\\"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
