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
	" \"segments\": [{\"address\": 18446744073709547520, \"length\": 4096},"
	"                {\"address\": 268435456, \"length\": 16773120}],"
	" \"futureField\": {\"ignored\": true}}";

static const char status_json[] =
	"{\"version\": \"0.1.0\", \"backend\": \"memfd\", \"dmaSafe\": false, \"buffers\": 2,"
	" \"bytes\": 8192, \"connections\": 3, \"maxBufferSize\": 1073741824, \"maxMessageSize\": 16777216,"
	" \"maxConnections\": 4096, \"maxConnectionsPerUid\": 128, \"addressPolicy\": \"owner\","
	" \"quota\": {\"uid\": 1000, \"maxBuffers\": 64, \"maxBytes\": 1073741824, \"buffers\": 1, \"bytes\": 4096}}";

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

	(void)state;
	assert_int_equal(physmem_reply_buffer(o, &info, &field), 0);
	assert_null(field);
	assert_int_equal(info.id, 7);
	assert_string_equal(info.name, "cam0");
	assert_int_equal(info.size, 16777216);
	assert_true(info.contiguous);
	assert_int_equal(info.cache, PHYSMEM_CACHE_WRITECOMBINE);
	assert_string_equal(info.backend, "kmod");
	assert_int_equal(info.owner_uid, 1000);
	assert_int_equal(info.owner_pid, 4242);
	assert_int_equal(info.n_allow_uids, 2);
	assert_int_equal(info.allow_uids[1], 1002);
	assert_int_equal(info.n_allow_gids, 1);
	assert_int_equal(info.allow_gids[0], 44);
	assert_true(info.locked);
	assert_true(info.dma_safe);
	assert_true(info.segments_known);
	assert_int_equal(info.n_segments, 2);
	assert_true(info.segments[0].address == 18446744073709547520ull);
	assert_int_equal(info.segments[1].length, 16773120);
	physmem_info_clear(&info);
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
	physmem_info_clear(&info);
	assert_int_equal(parse_with("name", NULL, &info, &field), 0);
	assert_string_equal(info.name, "");
	physmem_info_clear(&info);
	assert_int_equal(parse_with("segments", json_object_new_array(), &info, &field), 0);
	assert_true(info.segments_known);
	assert_int_equal(info.n_segments, 0);
	physmem_info_clear(&info);
}

static void buffer_reply_rejects_bad_fields(void **state)
{
	static const struct {
		const char *key;
		const char *value;	/* JSON text; NULL: remove the field */
	} bad[] = {
		{ "id", NULL }, { "id", "-1" }, { "id", "\"7\"" }, { "size", NULL }, { "size", "1.5" },
		{ "contiguous", "1" }, { "cache", "\"fast\"" }, { "cache", NULL }, { "backend", "3" },
		{ "ownerUid", "4294967295" }, { "ownerUid", "-2" }, { "ownerPid", "4294967296" },
		{ "allowUids", NULL }, { "allowUids", "[\"a\"]" }, { "allowGids", "{}" }, { "locked", NULL },
		{ "dmaSafe", "null" }, { "segments", "{}" }, { "segments", "[{\"address\": 1}]" },
		{ "segments", "[{\"address\": -1, \"length\": 4096}]" }, { "segments", "[1]" },
		{ "name", "7" },
		{ "name", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"" },
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
	struct physmem_info *list = NULL;
	const char *field;
	size_t n = 99;

	(void)state;
	json_object_array_add(a, json_tokener_parse(buffer_json));
	json_object_array_add(a, json_tokener_parse(buffer_json));
	json_object_object_add(p, "buffers", a);
	assert_int_equal(physmem_reply_buffer_list(p, &list, &n, &field), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[1].n_segments, 2);
	physmem_info_list_free(list, n);

	/* One bad entry fails the whole list, and frees what was parsed. */
	json_object_array_add(a, json_object_new_int(3));
	assert_int_equal(physmem_reply_buffer_list(p, &list, &n, &field), -EPROTO);
	json_object_put(p);

	assert_int_equal(physmem_reply_buffer_list(NULL, &list, &n, &field), -EPROTO);
	assert_string_equal(field, "buffers");
}

static void status_reply_fills_status(void **state)
{
	struct json_object *o = json_tokener_parse(status_json);
	struct physmem_status st;
	const char *field;

	(void)state;
	assert_int_equal(physmem_reply_status(o, &st, &field), 0);
	assert_string_equal(st.version, "0.1.0");
	assert_string_equal(st.backend, "memfd");
	assert_false(st.dma_safe);
	assert_int_equal(st.buffers, 2);
	assert_int_equal(st.bytes, 8192);
	assert_int_equal(st.connections, 3);
	assert_int_equal(st.max_buffer_size, 1073741824);
	assert_int_equal(st.max_message_size, 16777216);
	assert_int_equal(st.max_connections, 4096);
	assert_int_equal(st.max_connections_per_uid, 128);
	assert_string_equal(st.address_policy, "owner");
	assert_int_equal(st.quota_uid, 1000);
	assert_int_equal(st.quota_max_buffers, 64);
	assert_int_equal(st.quota_max_bytes, 1073741824);
	assert_int_equal(st.quota_buffers, 1);
	assert_int_equal(st.quota_bytes, 4096);

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
	check_message("io.physmem.Manager.NoSuchBuffer", "{\"name\": \"cam\"}", "no such buffer: name 'cam'");
	check_message("io.physmem.Manager.NoSuchBuffer", NULL, "no such buffer");
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
		cmocka_unit_test(status_reply_fills_status),
		cmocka_unit_test(error_names_map_to_errnos),
		cmocka_unit_test(error_messages_are_one_readable_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
