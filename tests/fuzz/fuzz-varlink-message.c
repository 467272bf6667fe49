/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz call parsing and typed parameter dispatch of proto/varlink-message.c:
 * the input is one message (as vl_stream_next() would hand it over), run
 * through vl_call_parse(), vl_method_split() and vl_dispatch() against
 * tables with every field type (the call types strictly, the reply types
 * with unknown fields allowed), and the replies built from what was parsed.
 * What vl_dispatch() accepts must hold what its contract promises.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "varlink-message.h"

struct params {
	int64_t i;
	bool b;
	const char *s;
	int e;
	struct vl_int_array a;
	int fd;
};

static const char *const colours[] = { "red", "green", "blue", NULL };

static const struct vl_field optional_fields[] = {
	{ .name = "int", .type = VL_FIELD_INT, .offset = offsetof(struct params, i),
	  .flags = VL_FIELD_NULLABLE },
	{ .name = "bool", .type = VL_FIELD_BOOL, .offset = offsetof(struct params, b), .flags = 0 },
	{ .name = "string", .type = VL_FIELD_STRING, .offset = offsetof(struct params, s),
	  .flags = VL_FIELD_NULLABLE },
	{ .name = "enum", .type = VL_FIELD_ENUM, .offset = offsetof(struct params, e),
	  .flags = VL_FIELD_NULLABLE, .enum_values = colours },
	{ .name = "array", .type = VL_FIELD_INT_ARRAY, .offset = offsetof(struct params, a),
	  .flags = VL_FIELD_NULLABLE },
	{ .name = "fd", .type = VL_FIELD_FD_INDEX, .offset = offsetof(struct params, fd),
	  .flags = VL_FIELD_NULLABLE },
	{},
};

static const struct vl_field required_fields[] = {
	{ .name = "int", .type = VL_FIELD_INT, .offset = offsetof(struct params, i),
	  .flags = VL_FIELD_REQUIRED },
	{ .name = "string", .type = VL_FIELD_STRING, .offset = offsetof(struct params, s),
	  .flags = VL_FIELD_REQUIRED | VL_FIELD_NULLABLE },
	{ .name = "fd", .type = VL_FIELD_FD_INDEX, .offset = offsetof(struct params, fd),
	  .flags = VL_FIELD_REQUIRED },
	{},
};

/* The types replies and stored metadata use, in a reply's lenient mode. */
struct item {
	uint64_t a;
	uint32_t b;
};

struct reply {
	uint64_t u64;
	uint32_t u32;
	struct vl_id_array ids;
	char name[8];
	char cut[4];
	uint32_t inner;
	bool inner_known;
	struct item *items;
	unsigned n_items;
	bool items_known;
};

static const struct vl_field item_fields[] = {
	{ .name = "a", .type = VL_FIELD_U64, .offset = offsetof(struct item, a), .flags = VL_FIELD_REQUIRED },
	{ .name = "b", .type = VL_FIELD_U32, .offset = offsetof(struct item, b), .flags = VL_FIELD_NULLABLE,
	  .max = 9 },
	{},
};

static const struct vl_field inner_fields[] = {
	{ .name = "x", .type = VL_FIELD_U32, .offset = offsetof(struct reply, inner),
	  .flags = VL_FIELD_REQUIRED | VL_FIELD_MARK_PRESENT, .present_offset = offsetof(struct reply, inner_known),
	  .report = "quota.x" },
	{},
};

static const struct vl_field reply_fields[] = {
	{ .name = "u64", .type = VL_FIELD_U64, .offset = offsetof(struct reply, u64), .flags = VL_FIELD_NULLABLE },
	{ .name = "u32", .type = VL_FIELD_U32, .offset = offsetof(struct reply, u32), .flags = VL_FIELD_NULLABLE,
	  .max = 1000 },
	{ .name = "ids", .type = VL_FIELD_ID_ARRAY, .offset = offsetof(struct reply, ids),
	  .flags = VL_FIELD_NULLABLE },
	{ .name = "name", .type = VL_FIELD_STRING_COPY, .offset = offsetof(struct reply, name),
	  .flags = VL_FIELD_NULLABLE, .size = sizeof(((struct reply *)0)->name) },
	{ .name = "cut", .type = VL_FIELD_STRING_COPY, .offset = offsetof(struct reply, cut),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_TRUNCATE, .size = sizeof(((struct reply *)0)->cut) },
	{ .name = "quota", .type = VL_FIELD_OBJECT, .offset = 0, .flags = VL_FIELD_NULLABLE, .fields = inner_fields },
	{ .name = "items", .type = VL_FIELD_OBJECT_ARRAY, .offset = offsetof(struct reply, items),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_MARK_PRESENT, .size = sizeof(struct item), .fields = item_fields,
	  .count_offset = offsetof(struct reply, n_items), .present_offset = offsetof(struct reply, items_known) },
	{},
};

/* Dispatch a reply-style table (unknown fields allowed) and check what it promises. */
static void dispatch_reply(struct json_object *params)
{
	struct reply p = { 0 };
	const char *bad = "unset";
	int r;

	r = vl_dispatch_full(params, reply_fields, &p, 0, VL_DISPATCH_ALLOW_UNKNOWN, &bad);
	if (r < 0) {
		FUZZ_CHECK((r == -EINVAL || r == -ENOMEM) && bad);
		FUZZ_CHECK(!p.items && p.n_items == 0);
		return;
	}
	FUZZ_CHECK(r == 0 && bad == NULL);
	FUZZ_CHECK(p.u64 != UINT64_MAX && p.u32 <= 1000);
	FUZZ_CHECK(p.ids.n <= 64);
	for (unsigned i = 0; i < p.ids.n; i++)
		FUZZ_CHECK(p.ids.v[i] != UINT32_MAX);
	FUZZ_CHECK(memchr(p.name, 0, sizeof(p.name)) && memchr(p.cut, 0, sizeof(p.cut)));
	FUZZ_CHECK(p.inner_known || p.inner == 0);
	FUZZ_CHECK((p.n_items == 0) == (p.items == NULL));
	FUZZ_CHECK(p.items_known || p.n_items == 0);
	for (unsigned i = 0; i < p.n_items; i++)
		FUZZ_CHECK(p.items[i].a != UINT64_MAX && p.items[i].b <= 9);
	free(p.items);
}

/* Is name a key of params or the name of a field (what *ret_field may be)? */
static bool names_something(struct json_object *params, const struct vl_field *fields, const char *name)
{
	if (strcmp(name, "parameters") == 0)
		return true;
	for (; fields->name; fields++)
		if (strcmp(fields->name, name) == 0)
			return true;
	return params && json_object_object_get_ex(params, name, NULL);
}

/* Dispatch against one table and check the result against the contract. */
static void dispatch(struct json_object *params, const struct vl_field *fields, unsigned nfds)
{
	struct params p = { .i = -1, .e = -1, .fd = -1 };
	const char *bad = "unset";
	int r;

	r = vl_dispatch(params, fields, &p, nfds, &bad);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		FUZZ_CHECK(bad && names_something(params, fields, bad));
		return;
	}
	FUZZ_CHECK(r == 0 && bad == NULL);
	FUZZ_CHECK(p.fd == -1 || (p.fd >= 0 && (unsigned)p.fd < nfds));
	FUZZ_CHECK(p.e >= -1 && p.e < 3);
	FUZZ_CHECK(p.a.n <= 64);
	if (p.s)
		(void)strlen(p.s);
	if (fields == required_fields)
		FUZZ_CHECK(p.fd >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok;
	struct json_object *msg, *o;
	struct vl_call call;
	const char *bad, *name;
	char iface[32];
	unsigned nfds = (unsigned)(size % 4);
	int r;

	if (size > 65536)
		return 0;
	/* As vl_stream_next() parses a message: the bytes and their NUL, one value. */
	tok = json_tokener_new_ex(64);
	FUZZ_CHECK(tok);
	{
		char *text = malloc(size + 1);

		FUZZ_CHECK(text);
		memcpy(text, data, size);
		text[size] = '\0';
		msg = json_tokener_parse_ex(tok, text, (int)size + 1);
		if (json_tokener_get_error(tok) != json_tokener_success) {
			json_object_put(msg);
			msg = NULL;
		}
		free(text);
	}
	json_tokener_free(tok);

	r = vl_call_parse(msg, &call, &bad);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG && bad);
		json_object_put(msg);
		return 0;
	}
	FUZZ_CHECK(call.method && call.method[0]);
	FUZZ_CHECK(!call.parameters || json_object_is_type(call.parameters, json_type_object));

	r = vl_method_split(call.method, iface, sizeof(iface), &name);
	if (r == 0) {
		FUZZ_CHECK(strlen(iface) < sizeof(iface) && name[0] && !strchr(name, '.'));
		FUZZ_CHECK(strncmp(call.method, iface, strlen(iface)) == 0);
	} else {
		FUZZ_CHECK(r == -EINVAL || r == -ENAMETOOLONG);
	}

	dispatch(call.parameters, optional_fields, nfds);
	dispatch(call.parameters, required_fields, nfds);
	dispatch_reply(call.parameters);

	/* Replies built from client-supplied strings stay valid JSON. */
	o = vl_error_new(call.method, call.parameters ? json_object_get(call.parameters) : NULL);
	FUZZ_CHECK(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	o = vl_error_invalid_parameter(call.method);
	json_object_put(o);
	o = vl_reply_new(NULL);
	json_object_put(o);

	json_object_put(msg);
	return 0;
}
