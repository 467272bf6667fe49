/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vl_call_parse(), vl_method_split(), vl_dispatch() and the reply builders. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "varlink-message.h"

static struct json_object *J(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	if (!o && strcmp(text, "null") != 0)
		fail_msg("test bug: not JSON: %s", text);
	return o;
}

/* ---- vl_call_parse */

static void expect_call_error(const char *text, const char *field)
{
	struct json_object *o = J(text);
	struct vl_call call;
	const char *bad = "unset";
	char named[64];
	int r;

	/* Free before asserting, so that a failure does not also leak. */
	r = vl_call_parse(o, &call, &bad);
	snprintf(named, sizeof(named), "%s", bad ? bad : "(null)");
	json_object_put(o);
	if (r != -EBADMSG)
		fail_msg("accepted as a call: %s", text);
	assert_string_equal(named, field);
}

static void test_call_parse_valid(void **state)
{
	struct json_object *o;
	struct vl_call call;
	const char *bad = "unset";

	(void)state;
	o = J("{\"method\":\"a.b.C\"}");
	assert_int_equal(vl_call_parse(o, &call, &bad), 0);
	assert_null(bad);
	assert_string_equal(call.method, "a.b.C");
	assert_null(call.parameters);
	assert_false(call.oneway || call.more || call.upgrade);
	json_object_put(o);

	o = J("{\"method\":\"a.b.C\",\"parameters\":{\"x\":1},\"oneway\":true,\"more\":false,\"upgrade\":null}");
	assert_int_equal(vl_call_parse(o, &call, &bad), 0);
	assert_non_null(call.parameters);
	assert_true(json_object_is_type(call.parameters, json_type_object));
	assert_true(call.oneway);
	assert_false(call.more);
	assert_false(call.upgrade);
	json_object_put(o);

	o = J("{\"method\":\"a.b.C\",\"parameters\":null,\"more\":true,\"upgrade\":true,\"extra\":[1]}");
	assert_int_equal(vl_call_parse(o, &call, &bad), 0);
	assert_null(call.parameters);
	assert_true(call.more);
	assert_true(call.upgrade);
	json_object_put(o);
}

static void test_call_parse_errors(void **state)
{
	(void)state;
	expect_call_error("[1,2]", "");
	expect_call_error("\"a.b.C\"", "");
	expect_call_error("42", "");
	expect_call_error("true", "");
	expect_call_error("null", "");
	expect_call_error("{}", "method");
	expect_call_error("{\"method\":null}", "method");
	expect_call_error("{\"method\":\"\"}", "method");
	expect_call_error("{\"method\":42}", "method");
	expect_call_error("{\"method\":[\"a.b.C\"]}", "method");
	expect_call_error("{\"method\":\"a.b.C\",\"parameters\":[]}", "parameters");
	expect_call_error("{\"method\":\"a.b.C\",\"parameters\":\"x\"}", "parameters");
	expect_call_error("{\"method\":\"a.b.C\",\"parameters\":0}", "parameters");
	expect_call_error("{\"method\":\"a.b.C\",\"oneway\":\"yes\"}", "oneway");
	expect_call_error("{\"method\":\"a.b.C\",\"oneway\":1}", "oneway");
	expect_call_error("{\"method\":\"a.b.C\",\"more\":{}}", "more");
	expect_call_error("{\"method\":\"a.b.C\",\"upgrade\":0}", "upgrade");
}

/* A method name with an embedded NUL ("\u0000") must not pass as the part before it. */
static void test_call_parse_method_with_nul(void **state)
{
	(void)state;
	expect_call_error("{\"method\":\"a.b.C\\u0000evil\"}", "method");
}

/* ---- vl_method_split */

static void test_method_split(void **state)
{
	char iface[16];
	const char *name = NULL;

	(void)state;
	assert_int_equal(vl_method_split("io.physmem.Manager.Allocate", iface, sizeof(iface), &name), -ENAMETOOLONG);
	assert_int_equal(vl_method_split("a.b.C", iface, sizeof(iface), &name), 0);
	assert_string_equal(iface, "a.b");
	assert_string_equal(name, "C");
	assert_int_equal(vl_method_split("a.C", iface, sizeof(iface), &name), 0);
	assert_string_equal(iface, "a");
	assert_string_equal(name, "C");
	assert_int_equal(vl_method_split("C", iface, sizeof(iface), &name), -EINVAL);
	assert_int_equal(vl_method_split("", iface, sizeof(iface), &name), -EINVAL);
	assert_int_equal(vl_method_split(".C", iface, sizeof(iface), &name), -EINVAL);
	assert_int_equal(vl_method_split("a.", iface, sizeof(iface), &name), -EINVAL);
	assert_int_equal(vl_method_split(".", iface, sizeof(iface), &name), -EINVAL);
	/* 15 characters of interface fit in 16 bytes, 16 do not. */
	assert_int_equal(vl_method_split("aaaaaaaaaaaaaaa.M", iface, sizeof(iface), &name), 0);
	assert_int_equal(vl_method_split("aaaaaaaaaaaaaaaa.M", iface, sizeof(iface), &name), -ENAMETOOLONG);
}

/* ---- vl_dispatch */

static const char *const colours[] = { "red", "green", "blue", NULL };

struct target {
	int64_t i;
	bool b;
	const char *s;
	int e;
	struct vl_int_array a;
	int fd;
	int64_t req;
};

static const struct vl_field fields[] = {
	{ .name = "i", .type = VL_FIELD_INT, .offset = offsetof(struct target, i), .flags = 0 },
	{ .name = "b", .type = VL_FIELD_BOOL, .offset = offsetof(struct target, b),
	  .flags = VL_FIELD_NULLABLE },
	{ .name = "s", .type = VL_FIELD_STRING, .offset = offsetof(struct target, s),
	  .flags = VL_FIELD_NULLABLE },
	{ .name = "e", .type = VL_FIELD_ENUM, .offset = offsetof(struct target, e),
	  .flags = VL_FIELD_NULLABLE, .enum_values = colours },
	{ .name = "a", .type = VL_FIELD_INT_ARRAY, .offset = offsetof(struct target, a),
	  .flags = VL_FIELD_NULLABLE },
	{ .name = "fd", .type = VL_FIELD_FD_INDEX, .offset = offsetof(struct target, fd),
	  .flags = VL_FIELD_NULLABLE },
	{ .name = "req", .type = VL_FIELD_INT, .offset = offsetof(struct target, req),
	  .flags = VL_FIELD_REQUIRED },
	{},
};

static void init_target(struct target *t)
{
	memset(t, 0, sizeof(*t));
	t->i = -7;
	t->e = -1;
	t->fd = -1;
	t->s = "default";
}

static int dispatch(const char *text, struct target *t, unsigned nfds, const char **bad)
{
	struct json_object *o = J(text);
	int r;

	init_target(t);
	r = vl_dispatch(o, fields, t, nfds, bad);
	json_object_put(o);
	return r;
}

static void expect_dispatch_error(const char *text, unsigned nfds, const char *field)
{
	struct json_object *o = J(text);
	struct target t;
	const char *bad = NULL;

	char named[64];
	int r;

	init_target(&t);
	r = vl_dispatch(o, fields, &t, nfds, &bad);
	/* bad may point into o: copy it, and free o before any assertion. */
	snprintf(named, sizeof(named), "%s", bad ? bad : "(null)");
	json_object_put(o);
	if (r != -EINVAL)
		fail_msg("accepted: %s", text);
	assert_string_equal(named, field);
}

static void test_dispatch_all_types(void **state)
{
	struct json_object *o;
	struct target t;
	const char *bad = "unset";
	char text[256];

	(void)state;
	init_target(&t);
	o = J("{\"i\":-9223372036854775808,\"b\":true,\"s\":\"hello\",\"e\":\"blue\",\"a\":[1,-2,3],\"fd\":1,\"req\":5}");
	assert_int_equal(vl_dispatch(o, fields, &t, 2, &bad), 0);
	assert_null(bad);
	assert_true(t.i == INT64_MIN);
	assert_true(t.b);
	assert_string_equal(t.s, "hello");	/* points into o */
	assert_int_equal(t.e, 2);
	assert_int_equal(t.a.n, 3);
	assert_true(t.a.v[0] == 1 && t.a.v[1] == -2 && t.a.v[2] == 3);
	assert_int_equal(t.fd, 1);
	assert_true(t.req == 5);
	json_object_put(o);

	/* Absent and null (nullable) fields leave defaults alone. */
	assert_int_equal(dispatch("{\"req\":1,\"b\":null,\"s\":null,\"e\":null,\"a\":null,\"fd\":null}", &t, 0, &bad), 0);
	assert_true(t.i == -7);
	assert_false(t.b);
	assert_string_equal(t.s, "default");
	assert_int_equal(t.e, -1);
	assert_int_equal(t.a.n, 0);
	assert_int_equal(t.fd, -1);

	/* Every enum value maps to its index. */
	for (int i = 0; colours[i]; i++) {
		snprintf(text, sizeof(text), "{\"req\":1,\"e\":\"%s\"}", colours[i]);
		assert_int_equal(dispatch(text, &t, 0, &bad), 0);
		assert_int_equal(t.e, i);
	}
	/* An empty array is an array. */
	assert_int_equal(dispatch("{\"req\":1,\"a\":[]}", &t, 0, &bad), 0);
	assert_int_equal(t.a.n, 0);
}

static void test_dispatch_wrong_types(void **state)
{
	(void)state;
	expect_dispatch_error("{\"req\":1,\"i\":\"1\"}", 0, "i");
	expect_dispatch_error("{\"req\":1,\"i\":1.5}", 0, "i");
	expect_dispatch_error("{\"req\":1,\"i\":1e30}", 0, "i");
	expect_dispatch_error("{\"req\":1,\"i\":true}", 0, "i");
	expect_dispatch_error("{\"req\":1,\"i\":[1]}", 0, "i");
	expect_dispatch_error("{\"req\":1,\"i\":{}}", 0, "i");
	expect_dispatch_error("{\"req\":1,\"b\":1}", 0, "b");
	expect_dispatch_error("{\"req\":1,\"b\":\"true\"}", 0, "b");
	expect_dispatch_error("{\"req\":1,\"s\":1}", 0, "s");
	expect_dispatch_error("{\"req\":1,\"s\":[\"x\"]}", 0, "s");
	expect_dispatch_error("{\"req\":1,\"e\":\"purple\"}", 0, "e");
	expect_dispatch_error("{\"req\":1,\"e\":\"RED\"}", 0, "e");
	expect_dispatch_error("{\"req\":1,\"e\":\"\"}", 0, "e");
	expect_dispatch_error("{\"req\":1,\"e\":0}", 0, "e");
	expect_dispatch_error("{\"req\":1,\"a\":1}", 0, "a");
	expect_dispatch_error("{\"req\":1,\"a\":{}}", 0, "a");
	expect_dispatch_error("{\"req\":1,\"a\":[1,\"2\"]}", 0, "a");
	expect_dispatch_error("{\"req\":1,\"a\":[1.5]}", 0, "a");
	expect_dispatch_error("{\"req\":1,\"a\":[null]}", 0, "a");
	expect_dispatch_error("{\"req\":1,\"a\":[[1]]}", 0, "a");
	expect_dispatch_error("{\"req\":1,\"fd\":\"0\"}", 1, "fd");
	expect_dispatch_error("{\"req\":1,\"fd\":0.0}", 1, "fd");
}

static void test_dispatch_required_nullable_unknown(void **state)
{
	struct target t;
	const char *bad = NULL;

	(void)state;
	expect_dispatch_error("{}", 0, "req");
	expect_dispatch_error("{\"i\":1}", 0, "req");
	expect_dispatch_error("{\"req\":null}", 0, "req");
	/* Not nullable: null is a wrong type, not absence. */
	expect_dispatch_error("{\"req\":1,\"i\":null}", 0, "i");
	/* Unknown fields are named. */
	expect_dispatch_error("{\"req\":1,\"colour\":\"red\"}", 0, "colour");
	expect_dispatch_error("{\"req\":1,\"\":1}", 0, "");
	expect_dispatch_error("{\"req\":1,\"I\":1}", 0, "I");

	/* No parameters at all: only a required field is missing. */
	init_target(&t);
	assert_int_equal(vl_dispatch(NULL, fields, &t, 0, &bad), -EINVAL);
	assert_string_equal(bad, "req");
	{
		static const struct vl_field none[] = { {} };
		struct json_object *o = J("{}"), *arr = J("[]"), *x = J("{\"x\":1}");

		assert_int_equal(vl_dispatch(NULL, none, NULL, 0, &bad), 0);
		assert_int_equal(vl_dispatch(o, none, NULL, 0, &bad), 0);
		assert_int_equal(vl_dispatch(arr, none, NULL, 0, &bad), -EINVAL);
		assert_string_equal(bad, "parameters");
		assert_int_equal(vl_dispatch(x, none, NULL, 0, &bad), -EINVAL);
		assert_string_equal(bad, "x");
		json_object_put(o);
		json_object_put(arr);
		json_object_put(x);
	}
}

static void test_dispatch_int_array_limits(void **state)
{
	char text[1024];
	size_t n;
	struct target t;
	const char *bad = NULL;

	(void)state;
	for (unsigned len = 63; len <= 66; len++) {
		n = (size_t)snprintf(text, sizeof(text), "{\"req\":1,\"a\":[");
		for (unsigned i = 0; i < len; i++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%u", i ? "," : "", i * 1000);
		snprintf(text + n, sizeof(text) - n, "]}");
		if (len <= 64) {
			assert_int_equal(dispatch(text, &t, 0, &bad), 0);
			assert_int_equal(t.a.n, len);
			assert_true(t.a.v[len - 1] == (int64_t)(len - 1) * 1000);
		} else {
			expect_dispatch_error(text, 0, "a");
		}
	}
	/* Extreme values pass through; range checks are the caller's business. */
	assert_int_equal(dispatch("{\"req\":1,\"a\":[-9223372036854775808,9223372036854775807]}", &t, 0, &bad), 0);
	assert_true(t.a.v[0] == INT64_MIN && t.a.v[1] == INT64_MAX);
}

static void test_dispatch_fd_index(void **state)
{
	struct target t;
	const char *bad = NULL;

	(void)state;
	expect_dispatch_error("{\"req\":1,\"fd\":0}", 0, "fd");
	assert_int_equal(dispatch("{\"req\":1,\"fd\":0}", &t, 1, &bad), 0);
	assert_int_equal(t.fd, 0);
	expect_dispatch_error("{\"req\":1,\"fd\":1}", 1, "fd");
	assert_int_equal(dispatch("{\"req\":1,\"fd\":252}", &t, 253, &bad), 0);
	assert_int_equal(t.fd, 252);
	expect_dispatch_error("{\"req\":1,\"fd\":253}", 253, "fd");
	expect_dispatch_error("{\"req\":1,\"fd\":-1}", 253, "fd");
	expect_dispatch_error("{\"req\":1,\"fd\":4294967296}", 253, "fd");
	expect_dispatch_error("{\"req\":1,\"fd\":-9223372036854775808}", 253, "fd");
	expect_dispatch_error("{\"req\":1,\"fd\":18446744073709551615}", 253, "fd");
}

/* A string with an embedded NUL ("a\u0000b") must not be taken as "a". */
static void test_dispatch_string_with_nul(void **state)
{
	(void)state;
	expect_dispatch_error("{\"req\":1,\"s\":\"a\\u0000b\"}", 0, "s");
	expect_dispatch_error("{\"req\":1,\"e\":\"red\\u0000x\"}", 0, "e");
}

/* ---- builders */

/* ---- vl_dispatch: the types replies and stored metadata use */

struct item {
	uint64_t a;
	uint32_t b;
};

struct rich {
	uint64_t u64;
	uint32_t u32;
	struct vl_id_array ids;
	char name[8];
	char cut[4];
	uint32_t inner_u32;
	bool inner_known;
	struct item *items;
	unsigned n_items;
	bool items_known;
};

static const struct vl_field item_fields[] = {
	{ .name = "a", .type = VL_FIELD_U64, .offset = offsetof(struct item, a), .flags = VL_FIELD_REQUIRED },
	{ .name = "b", .type = VL_FIELD_U32, .offset = offsetof(struct item, b), .flags = VL_FIELD_NULLABLE, .max = 9 },
	{},
};

static const struct vl_field inner_fields[] = {
	{ .name = "x", .type = VL_FIELD_U32, .offset = offsetof(struct rich, inner_u32),
	  .flags = VL_FIELD_REQUIRED | VL_FIELD_MARK_PRESENT, .present_offset = offsetof(struct rich, inner_known),
	  .report = "inner.x" },
	{},
};

static const struct vl_field rich_fields[] = {
	{ .name = "u64", .type = VL_FIELD_U64, .offset = offsetof(struct rich, u64), .flags = VL_FIELD_NULLABLE },
	{ .name = "u32", .type = VL_FIELD_U32, .offset = offsetof(struct rich, u32), .flags = VL_FIELD_NULLABLE },
	{ .name = "ids", .type = VL_FIELD_ID_ARRAY, .offset = offsetof(struct rich, ids), .flags = VL_FIELD_NULLABLE },
	{ .name = "name", .type = VL_FIELD_STRING_COPY, .offset = offsetof(struct rich, name),
	  .flags = VL_FIELD_NULLABLE, .size = sizeof(((struct rich *)0)->name) },
	{ .name = "cut", .type = VL_FIELD_STRING_COPY, .offset = offsetof(struct rich, cut),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_TRUNCATE, .size = sizeof(((struct rich *)0)->cut) },
	{ .name = "inner", .type = VL_FIELD_OBJECT, .offset = 0, .flags = VL_FIELD_NULLABLE, .fields = inner_fields },
	{ .name = "items", .type = VL_FIELD_OBJECT_ARRAY, .offset = offsetof(struct rich, items),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_MARK_PRESENT, .size = sizeof(struct item), .fields = item_fields,
	  .count_offset = offsetof(struct rich, n_items), .present_offset = offsetof(struct rich, items_known) },
	{},
};

/* Dispatch text into a fresh struct rich; r and the named field. */
static int rich_dispatch(const char *text, unsigned flags, struct rich *t, char *named, size_t size)
{
	struct json_object *o = J(text);
	const char *bad = NULL;
	int r;

	memset(t, 0, sizeof(*t));
	r = vl_dispatch_full(o, rich_fields, t, 0, flags, &bad);
	snprintf(named, size, "%s", bad ? bad : "(null)");
	json_object_put(o);
	return r;
}

static void expect_rich_error(const char *text, const char *field)
{
	struct rich t;
	char named[64];

	if (rich_dispatch(text, 0, &t, named, sizeof(named)) != -EINVAL)
		fail_msg("accepted: %s", text);
	assert_string_equal(named, field);
	/* Nothing stays allocated after a failure. */
	assert_null(t.items);
	assert_int_equal(t.n_items, 0);
}

static void test_dispatch_unsigned_and_ids(void **state)
{
	struct rich t;
	char named[64];

	(void)state;
	assert_int_equal(rich_dispatch("{\"u64\":18446744073709551614,\"u32\":4294967294,\"ids\":[0,7,4294967294]}",
				       0, &t, named, sizeof(named)), 0);
	assert_true(t.u64 == UINT64_C(18446744073709551614));
	assert_int_equal(t.u32, UINT32_MAX - 1);
	assert_int_equal(t.ids.n, 3);
	assert_int_equal(t.ids.v[1], 7);
	assert_int_equal(t.ids.v[2], UINT32_MAX - 1);
	/* Negative, fractional, saturated (json-c turns every larger number into UINT64_MAX), over max. */
	expect_rich_error("{\"u64\":-1}", "u64");
	expect_rich_error("{\"u64\":1.5}", "u64");
	expect_rich_error("{\"u64\":\"1\"}", "u64");
	expect_rich_error("{\"u64\":18446744073709551615}", "u64");
	expect_rich_error("{\"u64\":99999999999999999999999}", "u64");
	expect_rich_error("{\"u32\":4294967295}", "u32");
	expect_rich_error("{\"u32\":-2}", "u32");
	expect_rich_error("{\"ids\":[1,4294967295]}", "ids");
	expect_rich_error("{\"ids\":[\"a\"]}", "ids");
	expect_rich_error("{\"ids\":{}}", "ids");
	expect_rich_error("{\"ids\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
			  "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}", "ids");
}

static void test_dispatch_string_copy(void **state)
{
	struct rich t;
	char named[64];

	(void)state;
	assert_int_equal(rich_dispatch("{\"name\":\"1234567\",\"cut\":\"abcdef\"}", 0, &t, named, sizeof(named)), 0);
	assert_string_equal(t.name, "1234567");
	assert_string_equal(t.cut, "abc");
	expect_rich_error("{\"name\":\"12345678\"}", "name");	/* does not fit, and may not be cut */
	expect_rich_error("{\"name\":\"a\\u0000b\"}", "name");
	expect_rich_error("{\"name\":7}", "name");
}

static void test_dispatch_nested(void **state)
{
	struct rich t;
	char named[64];

	(void)state;
	assert_int_equal(rich_dispatch("{\"inner\":{\"x\":5},\"items\":[{\"a\":1},{\"a\":2,\"b\":9}]}", 0, &t, named,
				       sizeof(named)), 0);
	assert_true(t.inner_known);
	assert_int_equal(t.inner_u32, 5);
	assert_true(t.items_known);
	assert_int_equal(t.n_items, 2);
	assert_int_equal(t.items[1].a, 2);
	assert_int_equal(t.items[1].b, 9);
	free(t.items);
	/* An empty array is known and empty; null is not known. */
	assert_int_equal(rich_dispatch("{\"items\":[],\"inner\":null}", 0, &t, named, sizeof(named)), 0);
	assert_true(t.items_known);
	assert_int_equal(t.n_items, 0);
	assert_false(t.inner_known);
	assert_int_equal(rich_dispatch("{\"items\":null}", 0, &t, named, sizeof(named)), 0);
	assert_false(t.items_known);
	/* Members name themselves (by their report); elements name their array. */
	expect_rich_error("{\"inner\":{}}", "inner.x");
	expect_rich_error("{\"inner\":{\"x\":-1}}", "inner.x");
	expect_rich_error("{\"inner\":{\"x\":1,\"y\":2}}", "y");
	expect_rich_error("{\"inner\":[]}", "inner");
	expect_rich_error("{\"items\":[{\"a\":1},{\"b\":1}]}", "items");
	expect_rich_error("{\"items\":[{\"a\":1},{\"a\":1,\"b\":10}]}", "items");
	expect_rich_error("{\"items\":[{\"a\":1},7]}", "items");
	expect_rich_error("{\"items\":{}}", "items");
	/* A later field's error frees the array an earlier one filled. */
	expect_rich_error("{\"items\":[{\"a\":1}],\"u32\":-1}", "u32");
}

/* Replies: fields this side does not know are skipped, everywhere, only with the flag. */
static void test_dispatch_allow_unknown(void **state)
{
	struct rich t;
	char named[64];

	(void)state;
	assert_int_equal(rich_dispatch("{\"future\":1,\"inner\":{\"x\":1,\"more\":[]},\"items\":[{\"a\":1,\"c\":2}]}",
				       VL_DISPATCH_ALLOW_UNKNOWN, &t, named, sizeof(named)), 0);
	assert_int_equal(t.inner_u32, 1);
	assert_int_equal(t.n_items, 1);
	free(t.items);
	expect_rich_error("{\"future\":1}", "future");
	/* Known fields are still checked. */
	assert_int_equal(rich_dispatch("{\"future\":1,\"u32\":-1}", VL_DISPATCH_ALLOW_UNKNOWN, &t, named,
				       sizeof(named)), -EINVAL);
	assert_string_equal(named, "u32");
}


static void test_builders(void **state)
{
	struct json_object *o, *v;

	(void)state;
	o = vl_error_invalid_parameter("size");
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"size\"}}");
	json_object_put(o);

	o = vl_reply_new(NULL);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), "{\"parameters\":{}}");
	json_object_put(o);

	o = vl_error_new(VL_ERROR_METHOD_NOT_FOUND, NULL);
	assert_true(json_object_object_get_ex(o, "error", &v));
	assert_string_equal(json_object_get_string(v), "org.varlink.service.MethodNotFound");
	assert_true(json_object_object_get_ex(o, "parameters", &v));
	assert_true(json_object_is_type(v, json_type_object));
	json_object_put(o);

	assert_non_null(strstr(varlink_service_interface_description, "interface org.varlink.service"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_parse_valid),
		cmocka_unit_test(test_call_parse_errors),
		cmocka_unit_test(test_call_parse_method_with_nul),
		cmocka_unit_test(test_method_split),
		cmocka_unit_test(test_dispatch_all_types),
		cmocka_unit_test(test_dispatch_wrong_types),
		cmocka_unit_test(test_dispatch_required_nullable_unknown),
		cmocka_unit_test(test_dispatch_int_array_limits),
		cmocka_unit_test(test_dispatch_fd_index),
		cmocka_unit_test(test_dispatch_string_with_nul),
		cmocka_unit_test(test_dispatch_unsigned_and_ids),
		cmocka_unit_test(test_dispatch_string_copy),
		cmocka_unit_test(test_dispatch_nested),
		cmocka_unit_test(test_dispatch_allow_unknown),
		cmocka_unit_test(test_builders),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
