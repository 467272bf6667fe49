/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of libphysmem's reply parsing, errno mapping and error messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "libphysmem-private.h"

static const char buffer_json[] =
	"{\"id\": 7, \"name\": \"cam0\", \"size\": 16777216, \"contiguous\": true,"
	" \"cache\": \"writecombine\", \"backend\": \"kmod\", \"ownerUid\": 1000, \"ownerPid\": 4242,"
	" \"allowUids\": [1001, 1002], \"allowGids\": [44], \"locked\": true, \"dmaSafe\": true,"
	" \"pageSize\": 2097152, \"transparentHugePages\": false,"
	" \"segments\": [{\"address\": 18446744073709547520, \"length\": 4096},"
	"                {\"address\": 268435456, \"length\": 16773120}],"
	" \"futureField\": {\"ignored\": true}}";

static const char status_json[] =
	"{\"version\": \"0.1.0\", \"backend\": \"memfd\", \"dmaSafe\": false, \"buffers\": 2,"
	" \"bytes\": 8192, \"connections\": 3, \"maxBufferSize\": 1073741824, \"maxMessageSize\": 16777216,"
	" \"maxConnections\": 4096, \"maxConnectionsPerUid\": 128, \"addressPolicy\": \"owner\","
	" \"quota\": {\"uid\": 1000, \"maxBuffers\": 64, \"maxBytes\": 1073741824, \"buffers\": 1, \"bytes\": 4096,"
	" \"heldBytes\": 2048}}";

/* Parse text with one field of the buffer replaced (value NULL: removed). */
static int parse_with(const char *key, struct json_object *value, struct physmem_info *info, const char **field)
{
	struct json_object *o = json_tokener_parse(buffer_json);
	int r;

	assert_non_null(o);
	if (value)
		json_object_object_add(o, key, value);
	else
		json_object_object_del(o, key);
	r = physmem_reply_buffer(o, info, field);
	json_object_put(o);
	return r;
}

static void buffer_reply_fills_info(void **state)
{
	struct json_object *o = json_tokener_parse(buffer_json);
	struct physmem_info info;
	const char *field = "x";
	const uid_t *uids;
	const gid_t *gids;
	unsigned n;

	(void)state;
	assert_int_equal(physmem_reply_buffer(o, &info, &field), 0);
	assert_null(field);
	/* Read back through the public accessors, as a caller does. */
	assert_int_equal(physmem_info_id(&info), 7);
	assert_string_equal(physmem_info_name(&info), "cam0");
	assert_int_equal(physmem_info_size(&info), 16777216);
	assert_true(physmem_info_contiguous(&info));
	assert_int_equal(physmem_info_cache(&info), PHYSMEM_CACHE_WRITECOMBINE);
	assert_string_equal(physmem_info_backend(&info), "kmod");
	assert_int_equal(physmem_info_owner_uid(&info), 1000);
	assert_int_equal(physmem_info_owner_pid(&info), 4242);
	uids = physmem_info_allow_uids(&info, &n);
	assert_int_equal(n, 2);
	assert_int_equal(uids[1], 1002);
	gids = physmem_info_allow_gids(&info, &n);
	assert_int_equal(n, 1);
	assert_int_equal(gids[0], 44);
	assert_true(physmem_info_locked(&info));
	assert_true(physmem_info_dma_safe(&info));
	assert_true(info.page_size == 2097152);
	assert_false(info.thp);
	assert_true(physmem_info_segments_known(&info));
	assert_int_equal(physmem_info_n_segments(&info), 2);
	assert_true(physmem_info_segment(&info, 0)->address == 18446744073709547520ull);
	assert_int_equal(physmem_info_segment(&info, 1)->length, 16773120);
	assert_null(physmem_info_segment(&info, 2));
	physmem_info_done(&info);
	assert_null(info.segments);
	json_object_put(o);
}

static void buffer_reply_null_name_and_segments(void **state)
{
	struct physmem_info info;
	const char *field;

	(void)state;
	assert_int_equal(parse_with("segments", json_object_new_null(), &info, &field), 0);
	assert_false(info.segments_known);
	assert_int_equal(info.n_segments, 0);
	assert_null(info.segments);
	physmem_info_done(&info);
	assert_int_equal(parse_with("name", NULL, &info, &field), 0);
	assert_string_equal(info.name, "");
	physmem_info_done(&info);
	assert_int_equal(parse_with("segments", json_object_new_array(), &info, &field), 0);
	assert_true(info.segments_known);
	assert_int_equal(info.n_segments, 0);
	physmem_info_done(&info);
}

static void buffer_reply_rejects_bad_fields(void **state)
{
	static const struct {
		const char *key;
		const char *value;	/* JSON text; NULL: remove the field */
	} bad[] = {
		{ "id", NULL }, { "id", "-1" }, { "id", "\"7\"" }, { "size", NULL }, { "size", "1.5" },
		{ "size", "18446744073709551616" }, { "size", "99999999999999999999999" },
		{ "id", "18446744073709551615" },
		{ "contiguous", "1" }, { "cache", "\"fast\"" }, { "cache", NULL }, { "backend", "3" },
		{ "ownerUid", "4294967295" }, { "ownerUid", "-2" }, { "ownerPid", "4294967296" },
		{ "allowUids", NULL }, { "allowUids", "[\"a\"]" }, { "allowGids", "{}" }, { "locked", NULL },
		{ "dmaSafe", "null" }, { "pageSize", "-4096" }, { "pageSize", "\"2M\"" },
		{ "transparentHugePages", "1" }, { "segments", "{}" }, { "segments", "[{\"address\": 1}]" },
		{ "segments", "[{\"address\": -1, \"length\": 4096}]" }, { "segments", "[1]" },
		{ "name", "7" },
		{ "name", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"" },
		/* A NUL inside a string was cut at silently before. */
		{ "name", "\"cam\\u0000x\"" }, { "backend", "\"kmod\\u0000x\"" },
		{ "ownerPid", "2147483648" }, { "segments", "[{\"address\": 1, \"length\": 18446744073709551615}]" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *v = bad[i].value ? json_tokener_parse(bad[i].value) : NULL;
		struct physmem_info info;
		const char *field = NULL;

		if (bad[i].value && strcmp(bad[i].value, "null") == 0)
			v = json_object_new_null();
		assert_int_equal(parse_with(bad[i].key, v, &info, &field), -EPROTO);
		assert_non_null(field);
		assert_string_equal(field, bad[i].key);
	}
}

static void buffer_reply_rejects_more_than_64_ids(void **state)
{
	struct json_object *a = json_object_new_array();
	struct physmem_info info;
	const char *field;

	(void)state;
	for (int i = 0; i < 65; i++)
		json_object_array_add(a, json_object_new_int(i));
	assert_int_equal(parse_with("allowGids", a, &info, &field), -EPROTO);
	assert_string_equal(field, "allowGids");
}

static void buffer_reply_rejects_non_object(void **state)
{
	struct json_object *o = json_object_new_array();
	struct physmem_info info;
	const char *field;

	(void)state;
	assert_int_equal(physmem_reply_buffer(o, &info, &field), -EPROTO);
	assert_int_equal(physmem_reply_buffer(NULL, &info, &field), -EPROTO);
	json_object_put(o);
}

static void buffer_list_reply_parses_each(void **state)
{
	struct json_object *p = json_object_new_object(), *a = json_object_new_array();
	struct physmem_info **list = NULL;
	const char *field;
	size_t n = 99;

	(void)state;
	json_object_array_add(a, json_tokener_parse(buffer_json));
	json_object_array_add(a, json_tokener_parse(buffer_json));
	json_object_object_add(p, "buffers", a);
	assert_int_equal(physmem_reply_buffer_list(p, &list, &n, &field), 0);
	assert_int_equal(n, 2);
	assert_int_equal(physmem_info_n_segments(list[1]), 2);
	assert_string_equal(physmem_info_name(list[0]), "cam0");
	physmem_info_list_free(list, n);

	/* One bad entry fails the whole list, and frees what was parsed. */
	json_object_array_add(a, json_object_new_int(3));
	assert_int_equal(physmem_reply_buffer_list(p, &list, &n, &field), -EPROTO);
	json_object_put(p);

	assert_int_equal(physmem_reply_buffer_list(NULL, &list, &n, &field), -EPROTO);
	assert_string_equal(field, "buffers");
}

/* The IDL's Buffer fields: physmemctl --json prints each, and any other the reply has. */
static const char *const idl_buffer_fields[] = {
	"id", "name", "size", "contiguous", "cache", "backend", "ownerUid", "ownerPid",
	"allowUids", "allowGids", "locked", "dmaSafe", "pageSize", "transparentHugePages", "segments", NULL,
};

/* A Buffer's devices: each binding through the accessors; null and absent mean none. */
static void buffer_reply_devices(void **state)
{
	struct json_object *v = json_tokener_parse(
		"[{\"device\": \"0000:00:03.0\", \"translation\": \"iommu\", \"access\": \"toDevice\","
		"  \"revoked\": false, \"segments\": [{\"address\": 4293918720, \"length\": 16777216}],"
		"  \"future\": 1},"
		" {\"device\": \"0000:00:04.0\", \"translation\": \"direct\", \"access\": \"bidirectional\","
		"  \"revoked\": true, \"segments\": null}]");
	const struct physmem_binding *b;
	struct physmem_info info;
	const char *field;

	(void)state;
	assert_int_equal(parse_with("devices", v, &info, &field), 0);
	assert_int_equal(physmem_info_n_bindings(&info), 2);
	b = physmem_info_binding(&info, 0);
	assert_string_equal(physmem_binding_device(b), "0000:00:03.0");
	assert_string_equal(physmem_binding_translation(b), "iommu");
	assert_int_equal(physmem_binding_access(b), PHYSMEM_ACCESS_TO_DEVICE);
	assert_false(physmem_binding_revoked(b));
	assert_true(physmem_binding_segments_known(b));
	assert_int_equal(physmem_binding_n_segments(b), 1);
	assert_true(physmem_binding_segment(b, 0)->address == 4293918720ULL);
	assert_true(physmem_binding_segment(b, 0)->length == 16777216ULL);
	assert_null(physmem_binding_segment(b, 1));
	b = physmem_info_binding(&info, 1);
	assert_string_equal(physmem_binding_device(b), "0000:00:04.0");
	assert_true(physmem_binding_revoked(b));
	assert_false(physmem_binding_segments_known(b));
	assert_int_equal(physmem_binding_n_segments(b), 0);
	assert_null(physmem_info_binding(&info, 2));
	physmem_info_done(&info);

	assert_int_equal(parse_with("devices", json_object_new_null(), &info, &field), 0);
	assert_int_equal(physmem_info_n_bindings(&info), 0);
	physmem_info_done(&info);
	assert_int_equal(parse_with("devices", NULL, &info, &field), 0);
	assert_int_equal(physmem_info_n_bindings(&info), 0);
	assert_null(physmem_info_binding(&info, 0));
	physmem_info_done(&info);
	assert_string_equal(physmem_binding_device(NULL), "");
	assert_int_equal(physmem_binding_n_segments(NULL), 0);
	assert_false(physmem_binding_revoked(NULL));
}

/* A malformed devices member fails the whole reply (-EPROTO, field "devices"), leaking nothing. */
static void buffer_reply_rejects_bad_devices(void **state)
{
	static const char *const bad[] = {
		"3", "{}", "[3]", "[{}]",
		"[{\"device\": \"0000:00:03.0\", \"translation\": \"iommu\", \"access\": \"sideways\", \"revoked\": false}]",
		"[{\"device\": \"0000:00:03.0\", \"translation\": \"iommu\", \"access\": \"toDevice\"}]",
		"[{\"device\": \"0000:00:03.0-much-too-long\", \"translation\": \"iommu\", \"access\": \"toDevice\","
		"  \"revoked\": false}]",
		"[{\"device\": \"0000:00:03.0\", \"translation\": \"iommu\", \"access\": \"toDevice\", \"revoked\": false,"
		"  \"segments\": [{\"address\": -1, \"length\": 1}]}]",
		"[{\"device\": \"0000:00:03.0\", \"translation\": \"iommu\", \"access\": \"toDevice\", \"revoked\": false},"
		" {\"device\": 5, \"translation\": \"iommu\", \"access\": \"toDevice\", \"revoked\": false}]",
		NULL,
	};
	struct physmem_info info;
	const char *field;

	(void)state;
	for (int i = 0; bad[i]; i++) {
		struct json_object *v = json_tokener_parse(bad[i]);

		assert_non_null(v);
		field = NULL;
		if (parse_with("devices", v, &info, &field) != -EPROTO)
			fail_msg("accepted devices %s", bad[i]);
		assert_non_null(field);
		assert_string_equal(field, "devices");
	}
	{
		/* More than PHYSMEM_MAX_BINDINGS. */
		struct json_object *a = json_object_new_array();

		for (int i = 0; i <= PHYSMEM_MAX_BINDINGS; i++)
			json_object_array_add(a, json_tokener_parse("{\"device\": \"0000:00:03.0\", \"translation\": \"iommu\","
								    " \"access\": \"toDevice\", \"revoked\": false}"));
		assert_int_equal(parse_with("devices", a, &info, &field), -EPROTO);
	}
}

/*
 * Fields of a newer daemon are kept with the description, and
 * physmem_reply_add_unknown() adds them (never over a field already there):
 * before, physmemctl --json dropped every field this client did not know.
 */
static void buffer_reply_keeps_every_field(void **state)
{
	struct json_object *o = json_tokener_parse(buffer_json), *out, *v;
	struct physmem_info info;
	const char *field;

	(void)state;
	assert_int_equal(physmem_reply_buffer(o, &info, &field), 0);
	json_object_put(o);		/* the description holds its own reference */
	assert_non_null(info.json);
	out = json_object_new_object();
	json_object_object_add(out, "id", json_object_new_int64(1));
	physmem_reply_add_unknown(out, info.json);
	for (int i = 0; idl_buffer_fields[i]; i++)
		assert_true(json_object_object_get_ex(out, idl_buffer_fields[i], NULL));
	assert_true(json_object_object_get_ex(out, "futureField", &v));
	assert_true(json_object_is_type(v, json_type_object));
	assert_int_equal(json_object_get_int64(json_object_object_get(out, "id")), 1);
	json_object_put(out);
	physmem_info_done(&info);
	assert_null(info.json);
}

/* The same for Status and its quota. */
static void status_reply_keeps_every_field(void **state)
{
	struct json_object *o = json_tokener_parse(status_json), *out, *q, *rq;
	struct physmem_status st;
	const char *field;

	(void)state;
	json_object_object_add(o, "futureStatus", json_object_new_string("x"));
	json_object_object_add(json_object_object_get(o, "quota"), "futureQuota", json_object_new_int(3));
	assert_int_equal(physmem_reply_status(o, &st, &field), 0);
	json_object_put(o);
	out = json_object_new_object();
	q = json_object_new_object();
	assert_true(json_object_object_get_ex(st.json, "quota", &rq));
	physmem_reply_add_unknown(q, rq);
	json_object_object_add(out, "quota", q);
	physmem_reply_add_unknown(out, st.json);
	assert_true(json_object_object_get_ex(out, "futureStatus", NULL));
	assert_true(json_object_object_get_ex(q, "futureQuota", NULL));
	assert_true(json_object_object_get_ex(out, "maxConnectionsPerUid", NULL));
	assert_ptr_equal(json_object_object_get(out, "quota"), q);
	json_object_put(out);
	json_object_put(st.json);
	physmem_reply_add_unknown(NULL, NULL);	/* nothing to do, no crash */
}

/* (buffer, bufferFileDescriptor) and (buffer) replies go through the same Buffer table. */
static void buffer_params_reply(void **state)
{
	struct json_object *p = json_object_new_object();
	struct physmem_info info;
	const char *field;
	int64_t index = 99;

	(void)state;
	assert_int_equal(physmem_reply_buffer_params(NULL, &info, &index, &field), -EPROTO);
	assert_string_equal(field, "buffer");
	assert_int_equal(physmem_reply_buffer_params(p, &info, NULL, &field), -EPROTO);
	assert_string_equal(field, "buffer");

	json_object_object_add(p, "buffer", json_tokener_parse(buffer_json));
	assert_int_equal(physmem_reply_buffer_params(p, &info, NULL, &field), 0);
	assert_int_equal(physmem_info_id(&info), 7);
	physmem_info_done(&info);
	assert_int_equal(physmem_reply_buffer_params(p, &info, &index, &field), -EPROTO);
	assert_string_equal(field, "bufferFileDescriptor");
	json_object_object_add(p, "bufferFileDescriptor", json_object_new_string("0"));
	assert_int_equal(physmem_reply_buffer_params(p, &info, &index, &field), -EPROTO);
	assert_string_equal(field, "bufferFileDescriptor");
	json_object_object_add(p, "bufferFileDescriptor", json_object_new_int(2));
	json_object_object_add(p, "futureParameter", json_object_new_int(2));
	assert_int_equal(physmem_reply_buffer_params(p, &info, &index, &field), 0);
	assert_int_equal(index, 2);
	assert_int_equal(physmem_info_n_segments(&info), 2);
	physmem_info_done(&info);

	/* An error inside the buffer names the Buffer field, as physmem_reply_buffer() does. */
	json_object_object_del(json_object_object_get(p, "buffer"), "size");
	assert_int_equal(physmem_reply_buffer_params(p, &info, &index, &field), -EPROTO);
	assert_string_equal(field, "size");
	json_object_object_add(p, "buffer", json_object_new_int(1));
	assert_int_equal(physmem_reply_buffer_params(p, &info, &index, &field), -EPROTO);
	assert_string_equal(field, "buffer");
	json_object_put(p);
}

static void status_reply_fills_status(void **state)
{
	struct json_object *o = json_tokener_parse(status_json);
	struct physmem_status st;
	const char *field;
	uint64_t held = 99;

	(void)state;
	assert_int_equal(physmem_reply_status(o, &st, &field), 0);
	/* Read back through the public accessors, as a caller does. */
	assert_string_equal(physmem_status_version(&st), "0.1.0");
	assert_string_equal(physmem_status_backend(&st), "memfd");
	assert_false(physmem_status_dma_safe(&st));
	assert_int_equal(physmem_status_buffers(&st), 2);
	assert_int_equal(physmem_status_bytes(&st), 8192);
	assert_int_equal(physmem_status_connections(&st), 3);
	assert_int_equal(physmem_status_max_buffer_size(&st), 1073741824);
	assert_int_equal(physmem_status_max_message_size(&st), 16777216);
	assert_int_equal(physmem_status_max_connections(&st), 4096);
	assert_int_equal(physmem_status_max_connections_per_uid(&st), 128);
	assert_string_equal(physmem_status_address_policy(&st), "owner");
	assert_int_equal(physmem_status_quota_uid(&st), 1000);
	assert_int_equal(physmem_status_quota_max_buffers(&st), 64);
	assert_int_equal(physmem_status_quota_max_bytes(&st), 1073741824);
	assert_int_equal(physmem_status_quota_buffers(&st), 1);
	assert_int_equal(physmem_status_quota_bytes(&st), 4096);
	assert_int_equal(physmem_status_quota_held_bytes(&st, &held), 0);
	assert_int_equal(held, 2048);
	json_object_put(st.json);

	json_object_object_del(o, "maxConnections");
	assert_int_equal(physmem_reply_status(o, &st, &field), -EPROTO);
	assert_string_equal(field, "maxConnections");
	json_object_put(o);

	o = json_tokener_parse(status_json);
	json_object_object_del(json_object_object_get(o, "quota"), "bytes");
	assert_int_equal(physmem_reply_status(o, &st, &field), -EPROTO);
	assert_string_equal(field, "quota.bytes");
	json_object_put(o);

	assert_int_equal(physmem_reply_status(NULL, &st, &field), -EPROTO);
}

/* quota.heldBytes is nullable: absent or null reads as not reported, a bad value fails. */
static void status_reply_held_bytes(void **state)
{
	struct json_object *o = json_tokener_parse(status_json), *q = json_object_object_get(o, "quota");
	struct physmem_status st;
	const char *field;
	uint64_t held = 99;

	(void)state;
	json_object_object_add(q, "heldBytes", json_object_new_int64(12288));
	assert_int_equal(physmem_reply_status(o, &st, &field), 0);
	assert_int_equal(physmem_status_quota_held_bytes(&st, &held), 0);
	assert_int_equal(held, 12288);
	json_object_put(st.json);

	json_object_object_add(q, "heldBytes", NULL);
	assert_int_equal(physmem_reply_status(o, &st, &field), 0);
	held = 99;
	assert_int_equal(physmem_status_quota_held_bytes(&st, &held), -ENODATA);
	assert_int_equal(held, 99);
	json_object_put(st.json);

	json_object_object_del(q, "heldBytes");
	assert_int_equal(physmem_reply_status(o, &st, &field), 0);
	assert_int_equal(physmem_status_quota_held_bytes(&st, &held), -ENODATA);
	json_object_put(st.json);

	json_object_object_add(q, "heldBytes", json_object_new_int64(-1));
	assert_int_equal(physmem_reply_status(o, &st, &field), -EPROTO);
	assert_string_equal(field, "quota.heldBytes");
	json_object_object_add(q, "heldBytes", json_object_new_string("1"));
	assert_int_equal(physmem_reply_status(o, &st, &field), -EPROTO);
	assert_string_equal(field, "quota.heldBytes");

	assert_int_equal(physmem_status_quota_held_bytes(NULL, &held), -EINVAL);
	json_object_put(o);
}

/* Status's pools and pool quota; a buffer's pool; a malformed pool is the daemon's fault. */
static void status_reply_pools(void **state)
{
	struct json_object *o = json_tokener_parse(status_json), *q = json_object_object_get(o, "quota");
	struct json_object *pools = json_tokener_parse(
		"[{\"name\": \"physmem\", \"kind\": \"reserve_mem\", \"size\": 369098752, \"free\": 301989888,"
		" \"largestFree\": 201326592, \"buffers\": 1},"
		" {\"name\": \"default\", \"kind\": \"cma\", \"size\": null, \"buffers\": 0}]");
	struct physmem_status st;
	struct physmem_info info;
	const char *field;
	uint64_t v = 99;

	(void)state;
	assert_int_equal(physmem_reply_status(o, &st, &field), 0);
	assert_int_equal(physmem_status_n_pools(&st), 0);
	assert_int_equal(physmem_status_quota_pool_bytes(&st, &v), -ENODATA);
	assert_null(physmem_status_pool_name(&st, 0));
	json_object_put(st.json);

	json_object_object_add(q, "poolBytes", json_object_new_int64(4096));
	json_object_object_add(q, "maxPoolBytes", json_object_new_int64(8192));
	json_object_object_add(o, "pools", pools);
	assert_int_equal(physmem_reply_status(o, &st, &field), 0);
	assert_int_equal(physmem_status_quota_pool_bytes(&st, &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(physmem_status_quota_max_pool_bytes(&st, &v), 0);
	assert_int_equal(v, 8192);
	assert_int_equal(physmem_status_n_pools(&st), 2);
	assert_string_equal(physmem_status_pool_name(&st, 0), "physmem");
	assert_string_equal(physmem_status_pool_kind(&st, 0), "reserve_mem");
	assert_int_equal(physmem_status_pool_size(&st, 0, &v), 0);
	assert_int_equal(v, 369098752);
	assert_int_equal(physmem_status_pool_free(&st, 0, &v), 0);
	assert_int_equal(v, 301989888);
	assert_int_equal(physmem_status_pool_largest_free(&st, 0, &v), 0);
	assert_int_equal(v, 201326592);
	assert_int_equal(physmem_status_pool_buffers(&st, 0), 1);
	assert_string_equal(physmem_status_pool_kind(&st, 1), "cma");
	assert_int_equal(physmem_status_pool_size(&st, 1, &v), -ENODATA);
	assert_int_equal(physmem_status_pool_free(&st, 1, &v), -ENODATA);
	assert_int_equal(physmem_status_pool_size(&st, 2, &v), -EINVAL);
	assert_null(physmem_status_pool_name(&st, 2));
	json_object_put(st.json);
	free(st.pools);

	/* A pool without its name, or a negative size: -EPROTO naming it. */
	json_object_object_del(json_object_array_get_idx(pools, 1), "name");
	assert_int_equal(physmem_reply_status(o, &st, &field), -EPROTO);
	assert_string_equal(field, "pools");
	json_object_object_add(json_object_array_get_idx(pools, 1), "name", json_object_new_string("x"));
	json_object_object_add(json_object_array_get_idx(pools, 0), "size", json_object_new_int64(-1));
	assert_int_equal(physmem_reply_status(o, &st, &field), -EPROTO);
	assert_string_equal(field, "pools");
	json_object_put(o);

	assert_int_equal(parse_with("pool", json_object_new_string("physmem"), &info, &field), 0);
	assert_string_equal(physmem_info_pool(&info), "physmem");
	physmem_info_done(&info);
	assert_int_equal(parse_with("pool", NULL, &info, &field), 0);
	assert_string_equal(physmem_info_pool(&info), "");
	physmem_info_done(&info);
	assert_int_equal(parse_with("pool", json_object_new_int(1), &info, &field), -EPROTO);
	assert_string_equal(field, "pool");
}

/* The accessors take NULL and read it as empty, so a caller's error path cannot crash. */
static void accessors_accept_null(void **state)
{
	unsigned n = 5;

	(void)state;
	assert_int_equal(physmem_info_id(NULL), 0);
	assert_string_equal(physmem_info_name(NULL), "");
	assert_string_equal(physmem_info_backend(NULL), "");
	assert_false(physmem_info_segments_known(NULL));
	assert_int_equal(physmem_info_n_segments(NULL), 0);
	assert_null(physmem_info_segment(NULL, 0));
	assert_null(physmem_info_allow_uids(NULL, &n));
	assert_int_equal(n, 0);
	assert_string_equal(physmem_status_version(NULL), "");
	assert_int_equal(physmem_status_quota_bytes(NULL), 0);
	physmem_info_free(NULL);
	physmem_info_list_free(NULL, 3);
	physmem_status_free(NULL);
}

static void error_names_map_to_errnos(void **state)
{
	(void)state;
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.NoSuchBuffer"), -ENOENT);
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.QuotaExceeded"), -EDQUOT);
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.PermissionDenied"), -EACCES);
	assert_int_equal(physmem_reply_error_errno("org.varlink.service.PermissionDenied"), -EACCES);
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.SizeOutOfRange"), -ERANGE);
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.NotSupported"), -EOPNOTSUPP);
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.AllocationFailed"), -ENOMEM);
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.NameInUse"), -EEXIST);
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.AmbiguousName"), -ENOTUNIQ);
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.NoSuchDevice"), -ENODEV);
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.DeviceBusy"), -EBUSY);
	assert_int_equal(physmem_reply_error_errno("io.physmem.Manager.PoolUnavailable"), -ENOSPC);
	assert_int_equal(physmem_reply_error_errno("org.varlink.service.InvalidParameter"), -EINVAL);
	assert_int_equal(physmem_reply_error_errno("org.varlink.service.MethodNotFound"), -EPROTO);
	assert_int_equal(physmem_reply_error_errno("NoSuchBuffer"), -EPROTO);
	assert_int_equal(physmem_reply_error_errno(NULL), -EPROTO);
}

static void check_message(const char *name, const char *params, const char *want)
{
	struct json_object *p = params ? json_tokener_parse(params) : NULL;
	char buf[512];

	physmem_reply_error_message(name, p, buf, sizeof(buf));
	assert_string_equal(buf, want);
	json_object_put(p);
}

static void error_messages_are_one_readable_line(void **state)
{
	(void)state;
	check_message("io.physmem.Manager.QuotaExceeded",
		      "{\"limit\": \"bytes\", \"max\": 1073741824, \"used\": 0, \"requested\": 2147483648}",
		      "quota exceeded: bytes limit 1073741824, used 0, requested 2147483648");
	check_message("io.physmem.Manager.NoSuchBuffer", "{\"id\": 5}", "no such buffer: id 5");
	check_message("io.physmem.Manager.NoSuchDevice", "{\"device\": \"0000:00:1f.7\"}",
		      "no such device: 0000:00:1f.7");
	check_message("io.physmem.Manager.DeviceBusy", "{\"device\": \"0000:00:03.0\", \"reason\": \"vfio\"}",
		      "device busy: 0000:00:03.0 (vfio)");
	check_message("io.physmem.Manager.NoSuchBuffer", "{\"name\": \"cam\"}", "no such buffer: name 'cam'");
	check_message("io.physmem.Manager.NoSuchBuffer", NULL, "no such buffer");
	check_message("io.physmem.Manager.PoolUnavailable",
		      "{\"pool\": \"physmem\", \"reason\": \"fragmented\", \"size\": 8192, \"free\": 12288,"
		      " \"largestFree\": 4096}",
		      "pool 'physmem' unavailable: fragmented (asked 8192 bytes, free 12288, largest free run 4096)");
	check_message("io.physmem.Manager.PoolUnavailable", "{\"pool\": \"x\", \"reason\": \"none\", \"size\": 1}",
		      "pool 'x' unavailable: none (asked 1 bytes)");
	check_message("io.physmem.Manager.AmbiguousName", "{\"name\": \"cam\", \"owners\": [1000, 65534]}",
		      "ambiguous name: 'cam' is shared by owners [1000,65534]; choose one");
	check_message("io.physmem.Manager.PermissionDenied", "{\"reason\": \"not the owner\"}",
		      "permission denied: not the owner");
	check_message("io.physmem.Manager.SizeOutOfRange", "{\"size\": 0, \"min\": 1, \"max\": 4096}",
		      "size out of range: 0 (allowed 1 to 4096 bytes)");
	check_message("io.physmem.Manager.NotSupported", "{\"feature\": \"pin\", \"backend\": \"memfd\"}",
		      "not supported: pin on the memfd backend");
	check_message("io.physmem.Manager.AllocationFailed", "{\"reason\": \"no memory\"}",
		      "allocation failed: no memory");
	check_message("io.physmem.Manager.NameInUse", "{\"name\": \"x\"}", "name in use: 'x'");
	check_message("org.varlink.service.InvalidParameter", "{\"parameter\": \"size\"}",
		      "invalid parameter: size");
	check_message("org.varlink.service.MethodNotFound", "{\"method\": \"a.B\"}",
		      "org.varlink.service.MethodNotFound {\"method\":\"a.B\"}");
	check_message("io.physmem.Manager.PermissionDenied", "{\"reason\": \"evil\\u001b[2J\\nline\"}",
		      "permission denied: evil?[2J?line");
	check_message("io.physmem.Manager.QuotaExceeded", "{}", "quota exceeded: ? limit ?, used ?, requested ?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buffer_reply_fills_info),
		cmocka_unit_test(buffer_reply_null_name_and_segments),
		cmocka_unit_test(buffer_reply_rejects_bad_fields),
		cmocka_unit_test(buffer_reply_rejects_more_than_64_ids),
		cmocka_unit_test(buffer_reply_rejects_non_object),
		cmocka_unit_test(buffer_list_reply_parses_each),
		cmocka_unit_test(buffer_reply_keeps_every_field),
		cmocka_unit_test(buffer_reply_devices),
		cmocka_unit_test(buffer_reply_rejects_bad_devices),
		cmocka_unit_test(status_reply_keeps_every_field),
		cmocka_unit_test(buffer_params_reply),
		cmocka_unit_test(status_reply_fills_status),
		cmocka_unit_test(status_reply_held_bytes),
		cmocka_unit_test(status_reply_pools),
		cmocka_unit_test(accessors_accept_null),
		cmocka_unit_test(error_names_map_to_errnos),
		cmocka_unit_test(error_messages_are_one_readable_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
