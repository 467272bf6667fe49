/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vl_writer (varlink-writer.c): the text it writes is what json-c prints for
 * the same values, strings are escaped and checked, and misuse fails
 * instead of writing broken JSON.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "varlink-utf8.h"
#include "varlink-writer.h"

/* json-c's text for o, as the daemon prints messages. */
static const char *jsonc_text(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void assert_writes(struct vl_writer *w, const char *expect)
{
	const char *text;
	size_t len;

	assert_int_equal(vl_writer_finish(w, &text, &len), 0);
	assert_string_equal(text, expect);
	assert_int_equal(len, strlen(expect) + 1);
}

/* Every kind of value, and the same object built with json-c prints the same. */
static void test_same_as_jsonc(void **state)
{
	static const char *const strings[] = {
		"", "plain", "quote \" backslash \\ slash /", "\b\f\n\r\t", "\x01\x1f\x7f",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	};
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct vl_writer w;

	(void)state;
	vl_writer_init(&w);
	vl_writer_object_begin(&w);
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		char key[16];

		snprintf(key, sizeof(key), "s%zu", i);
		vl_writer_key(&w, key);
		vl_writer_string(&w, strings[i]);
		json_object_object_add(o, key, json_object_new_string(strings[i]));
	}
	vl_writer_key(&w, "ints");
	vl_writer_array_begin(&w);
	{
		static const int64_t ints[] = { 0, 1, -1, 4096, INT64_MAX, INT64_MIN, 1234567890123 };

		for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
			vl_writer_int(&w, ints[i]);
			json_object_array_add(a, json_object_new_int64(ints[i]));
		}
	}
	vl_writer_array_end(&w);
	json_object_object_add(o, "ints", a);
	vl_writer_key(&w, "t");
	vl_writer_bool(&w, true);
	json_object_object_add(o, "t", json_object_new_boolean(true));
	vl_writer_key(&w, "f");
	vl_writer_bool(&w, false);
	json_object_object_add(o, "f", json_object_new_boolean(false));
	vl_writer_key(&w, "n");
	vl_writer_null(&w);
	json_object_object_add(o, "n", NULL);
	vl_writer_key(&w, "empty");
	vl_writer_object_begin(&w);
	vl_writer_object_end(&w);
	json_object_object_add(o, "empty", json_object_new_object());
	vl_writer_key(&w, "nested");
	vl_writer_array_begin(&w);
	vl_writer_array_begin(&w);
	vl_writer_array_end(&w);
	vl_writer_object_begin(&w);
	vl_writer_key(&w, "k");
	vl_writer_int(&w, 7);
	vl_writer_object_end(&w);
	vl_writer_array_end(&w);
	{
		struct json_object *n = json_object_new_array(), *k = json_object_new_object();

		json_object_array_add(n, json_object_new_array());
		json_object_object_add(k, "k", json_object_new_int(7));
		json_object_array_add(n, k);
		json_object_object_add(o, "nested", n);
	}
	vl_writer_object_end(&w);
	assert_writes(&w, jsonc_text(o));
	vl_writer_done(&w);
	json_object_put(o);
}

/* A json-c value in place, and a text longer than the inline buffer. */
static void test_embedded_and_long(void **state)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct vl_writer w;
	const char *text;
	size_t len;

	(void)state;
	json_object_object_add(o, "x", json_object_new_string("y"));
	vl_writer_init(&w);
	vl_writer_array_begin(&w);
	vl_writer_json(&w, o);
	vl_writer_json(&w, NULL);
	json_object_array_add(a, json_object_get(o));
	json_object_array_add(a, NULL);
	for (int i = 0; i < 5000; i++) {
		vl_writer_int(&w, i);
		json_object_array_add(a, json_object_new_int(i));
	}
	vl_writer_array_end(&w);
	assert_int_equal(vl_writer_finish(&w, &text, &len), 0);
	assert_true(len > sizeof(w.inline_buf));
	assert_string_equal(text, jsonc_text(a));
	vl_writer_done(&w);
	json_object_put(a);
	json_object_put(o);
}

/*
 * Random strings, as a key and as a value, print as json-c prints them, or
 * fail as invalid UTF-8: mostly plain ASCII (the one-copy path), with
 * characters that must be escaped, DEL, multi-byte characters and stray high
 * bytes mixed in, some longer than the inline buffer.
 */
static void test_random_strings_as_jsonc(void **state)
{
	static const char *const pieces[] = { "\"", "\\", "/", "\x01", "\x1f", "\n", "\x7f", "\xc3\xa9",
					      "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xc3", "\x80" };
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	unsigned valid = 0, invalid = 0;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		char s[1024];
		size_t len = 0, max;
		struct vl_writer w;
		const char *text;
		size_t text_len;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		max = x % 16 == 0 ? 900 : x % 40;
		while (len < max) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			if (x % 10 < 8) {
				s[len++] = (char)(0x20 + (x >> 8) % 0x5f);
			} else {
				const char *p = pieces[(x >> 8) % (sizeof(pieces) / sizeof(pieces[0]))];

				memcpy(s + len, p, strlen(p));
				len += strlen(p);
			}
		}
		s[len] = '\0';
		vl_writer_init(&w);
		vl_writer_object_begin(&w);
		vl_writer_key(&w, s);
		vl_writer_string(&w, s);
		vl_writer_object_end(&w);
		if (vl_utf8_valid(s, len)) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, s, json_object_new_string(s));
			assert_int_equal(vl_writer_finish(&w, &text, &text_len), 0);
			assert_string_equal(text, jsonc_text(o));
			assert_int_equal(text_len, strlen(text) + 1);
			json_object_put(o);
			valid++;
		} else {
			assert_int_equal(vl_writer_finish(&w, &text, &text_len), -EILSEQ);
			invalid++;
		}
		vl_writer_done(&w);
	}
	/* Both kinds came up often enough to mean something. */
	assert_true(valid > 5000 && invalid > 2000);
}

/* Never text a standard client cannot decode: bad UTF-8 fails the whole message. */
static void test_bad_utf8(void **state)
{
	struct vl_writer w;
	const char *text;
	size_t len;

	(void)state;
	vl_writer_init(&w);
	vl_writer_object_begin(&w);
	vl_writer_key(&w, "name");
	vl_writer_string(&w, "ok\xff");
	vl_writer_key(&w, "more");		/* ignored: the error sticks */
	vl_writer_int(&w, 1);
	vl_writer_object_end(&w);
	assert_int_equal(vl_writer_finish(&w, &text, &len), -EILSEQ);
	vl_writer_done(&w);

	vl_writer_init(&w);
	vl_writer_object_begin(&w);
	vl_writer_key(&w, "\xc0\xaf");		/* an overlong '/' as a key */
	vl_writer_int(&w, 1);
	vl_writer_object_end(&w);
	assert_int_equal(vl_writer_finish(&w, &text, &len), -EILSEQ);
	vl_writer_done(&w);
}

/* Misuse fails: nothing half-written is ever handed out. */
/*
 * json-c values that the daemon never builds but a stream may carry: doubles,
 * integers past INT64_MAX, a string holding a NUL, whole messages that are
 * not objects; each as json-c writes it, and parsed back the same.
 */
static void test_json_values(void **state)
{
	static const char *const texts[] = {
		"[1.5,2.0,-0.25,1e+300,18446744073709551614,-9223372036854775808,\"a\\u0000b\",null,true,{}]",
		"\"just a string\"", "12", "null", "[]",
	};
	struct json_object *o;
	struct vl_writer w;

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		o = json_tokener_parse(texts[i]);
		assert_non_null(o != NULL || strcmp(texts[i], "null") == 0 ? (void *)1 : NULL);
		vl_writer_init(&w);
		vl_writer_json(&w, o);
		assert_writes(&w, texts[i]);
		vl_writer_done(&w);
		json_object_put(o);
	}
	/* Built, not parsed: a double with no text of its own, and NaN as json-c names it. */
	o = json_object_new_array();
	json_object_array_add(o, json_object_new_double(3.0));
	json_object_array_add(o, json_object_new_double(NAN));
	vl_writer_init(&w);
	vl_writer_json(&w, o);
	assert_writes(&w, "[3.0,NaN]");
	vl_writer_done(&w);
	json_object_put(o);
}

static void test_misuse(void **state)
{
	struct vl_writer w;
	const char *text;
	size_t len;

	(void)state;
	vl_writer_init(&w);
	assert_int_equal(vl_writer_finish(&w, &text, &len), -EINVAL);		/* nothing written */
	vl_writer_object_begin(&w);
	assert_int_equal(vl_writer_finish(&w, &text, &len), -EINVAL);		/* still open */
	vl_writer_key(&w, "k");
	assert_int_equal(vl_writer_finish(&w, &text, &len), -EINVAL);		/* a key without value */
	vl_writer_object_end(&w);
	assert_int_equal(vl_writer_finish(&w, &text, &len), -EINVAL);
	vl_writer_done(&w);

	vl_writer_init(&w);
	vl_writer_array_end(&w);						/* nothing open */
	assert_int_equal(vl_writer_finish(&w, &text, &len), -EINVAL);
	vl_writer_done(&w);

	vl_writer_init(&w);
	vl_writer_key(&w, "k");							/* a key outside an object */
	assert_int_equal(vl_writer_finish(&w, &text, &len), -EINVAL);
	vl_writer_done(&w);

	vl_writer_init(&w);
	for (int i = 0; i < VL_WRITER_MAX_DEPTH + 2; i++)
		vl_writer_array_begin(&w);
	assert_int_equal(vl_writer_finish(&w, &text, &len), -E2BIG);
	vl_writer_done(&w);

	vl_writer_init(&w);
	vl_writer_object_begin(&w);
	vl_writer_object_end(&w);
	vl_writer_int(&w, 1);						/* a second top-level value */
	assert_int_equal(vl_writer_finish(&w, &text, &len), -EINVAL);
	vl_writer_done(&w);

	/* vl_writer_done() leaves a writer that can be used again. */
	vl_writer_object_begin(&w);
	vl_writer_object_end(&w);
	assert_writes(&w, "{}");
	vl_writer_done(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_as_jsonc),
		cmocka_unit_test(test_embedded_and_long),
		cmocka_unit_test(test_random_strings_as_jsonc),
		cmocka_unit_test(test_bad_utf8),
		cmocka_unit_test(test_json_values),
		cmocka_unit_test(test_misuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
