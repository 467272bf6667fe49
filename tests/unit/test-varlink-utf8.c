/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Strict UTF-8 and JSON escape checks: vl_utf8_* of varlink-utf8.c. */
#include <setjmp.h>
#include <stdbool.h>
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

/*
 * The verdict does not depend on where a sequence sits: every sample above,
 * behind 0..17 bytes of ASCII and before 0..17 more (UTF-8), or behind them
 * only (escapes, whose end matters), as the checks skip ASCII in blocks and
 * jump from backslash to backslash.
 */
static void test_any_offset(void **state)
{
	static const struct {
		const char *s;
		bool valid;
	} utf8[] = {
		{ "\xc2\x80", true }, { "\xef\xbf\xbf", true }, { "\xf4\x8f\xbf\xbf", true },
		{ "\xe2\x82\xac\xc3\xa9", true }, { "\xff", false }, { "\x80", false }, { "\xc0\xaf", false },
		{ "\xed\xa0\x80", false }, { "\xf4\x90\x80\x80", false }, { "\xe2\x82", false },
		{ "\xc3\xa9\xff", false }, { "\xc3\xa9\x80", false },
	}, escapes[] = {
		{ "\\n", true }, { "\\ud83d\\ude00", true }, { "\\u00e9\\\\", true }, { "\\ud800", false },
		{ "\\udc00x", false }, { "\\u12", false }, { "\\", false }, { "\\n\\ud800", false },
	};
	char buf[64];

	(void)state;
	for (size_t k = 0; k < sizeof(utf8) / sizeof(utf8[0]); k++) {
		for (size_t pre = 0; pre < 18; pre++) {
			for (size_t post = 0; post < 18; post++) {
				size_t len = strlen(utf8[k].s);

				memset(buf, 'a', pre);
				memcpy(buf + pre, utf8[k].s, len);
				memset(buf + pre + len, 'b', post);
				if (vl_utf8_valid(buf, pre + len + post) != utf8[k].valid)
					fail_msg("UTF-8 sample %zu behind %zu and before %zu ASCII bytes", k, pre, post);
			}
		}
	}
	for (size_t k = 0; k < sizeof(escapes) / sizeof(escapes[0]); k++) {
		for (size_t pre = 0; pre < 18; pre++) {
			size_t len = strlen(escapes[k].s);

			memset(buf, 'a', pre);
			memcpy(buf + pre, escapes[k].s, len);
			if (vl_utf8_escapes_valid(buf, pre + len) != escapes[k].valid)
				fail_msg("escape sample %zu behind %zu bytes", k, pre);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_any_offset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
