/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * physmem-reply: what the daemon's replies mean. Pure functions from JSON to
 * the structs of physmem.h, and from Varlink errors to errnos and messages.
 */
#include "libphysmem-private.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "physmem-proto.h"
#include "varlink-message.h"

/* A field of obj: 1 when present and not null, 0 when absent or null. */
static int field(struct json_object *obj, const char *key, struct json_object **ret)
{
	if (!json_object_object_get_ex(obj, key, ret) || json_object_is_type(*ret, json_type_null)) {
		*ret = NULL;
		return 0;
	}
	return 1;
}

/*
 * A non-negative integer below UINT64_MAX.  json-c turns every larger number
 * into UINT64_MAX, so that value cannot be told from an overflow and is
 * refused too (no size, id or address of physmem's comes near it).
 */
static int json_u64(struct json_object *v, uint64_t *ret)
{
	uint64_t u;

	if (!v || !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return -EPROTO;
	u = json_object_get_uint64(v);
	if (u == UINT64_MAX)
		return -EPROTO;
	*ret = u;
	return 0;
}

static int get_u64(struct json_object *obj, const char *key, uint64_t *ret)
{
	struct json_object *v;

	field(obj, key, &v);
	return json_u64(v, ret);
}

/* A uid or gid: 0 .. 2^32-2 ((uid_t)-1 is never a real id). */
static int json_id(struct json_object *v, uint32_t *ret)
{
	uint64_t u;

	if (json_u64(v, &u) < 0 || u >= UINT32_MAX)
		return -EPROTO;
	*ret = (uint32_t)u;
	return 0;
}

static int get_bool(struct json_object *obj, const char *key, bool *ret)
{
	struct json_object *v;

	if (!field(obj, key, &v) || !json_object_is_type(v, json_type_boolean))
		return -EPROTO;
	*ret = json_object_get_boolean(v);
	return 0;
}

/* A string copied into buf; longer strings are cut at size - 1 when truncate, else rejected. */
static int get_string(struct json_object *obj, const char *key, char *buf, size_t size, bool truncate)
{
	struct json_object *v;
	size_t len;

	if (!field(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return -EPROTO;
	len = (size_t)json_object_get_string_len(v);
	if (len >= size && !truncate)
		return -EPROTO;
	physmem_reply_sanitize(buf, size, json_object_get_string(v));
	return 0;
}

static int get_id_array(struct json_object *obj, const char *key, uint32_t *ids, unsigned max, unsigned *ret_n)
{
	struct json_object *v;
	size_t n;

	if (!field(obj, key, &v) || !json_object_is_type(v, json_type_array))
		return -EPROTO;
	n = json_object_array_length(v);
	if (n > max)
		return -EPROTO;
	for (size_t i = 0; i < n; i++)
		if (json_id(json_object_array_get_idx(v, i), &ids[i]) < 0)
			return -EPROTO;
	*ret_n = (unsigned)n;
	return 0;
}

static int get_segments(struct json_object *obj, struct physmem_info *info)
{
	struct json_object *v;
	size_t n;

	info->segments_known = false;
	info->n_segments = 0;
	info->segments = NULL;
	if (!field(obj, "segments", &v))
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return -EPROTO;
	n = json_object_array_length(v);
	if (n > UINT_MAX / 2)
		return -EPROTO;
	if (n > 0) {
		info->segments = calloc(n, sizeof(*info->segments));
		if (!info->segments)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(v, i);

		if (!json_object_is_type(s, json_type_object) ||
		    get_u64(s, "address", &info->segments[i].address) < 0 ||
		    get_u64(s, "length", &info->segments[i].length) < 0) {
			free(info->segments);
			info->segments = NULL;
			return -EPROTO;
		}
	}
	info->n_segments = (unsigned)n;
	info->segments_known = true;
	return 0;
}

int physmem_reply_buffer(struct json_object *obj, struct physmem_info *ret, const char **ret_field)
{
	struct physmem_info info = { 0 };
	struct json_object *v;
	uint64_t u;
	uint32_t id;
	int r;

#define CHECK(expr, name) do { if ((expr) < 0) { *ret_field = (name); return -EPROTO; } } while (0)
	*ret_field = NULL;
	CHECK(obj && json_object_is_type(obj, json_type_object) ? 0 : -1, "buffer");
	CHECK(get_u64(obj, "id", &info.id), "id");
	if (field(obj, "name", &v)) {
		CHECK(json_object_is_type(v, json_type_string) ? 0 : -1, "name");
		CHECK(get_string(obj, "name", info.name, sizeof(info.name), false), "name");
	}
	CHECK(get_u64(obj, "size", &info.size), "size");
	CHECK(get_bool(obj, "contiguous", &info.contiguous), "contiguous");
	CHECK(field(obj, "cache", &v) && json_object_is_type(v, json_type_string) ? 0 : -1, "cache");
	r = -1;
	for (int i = 0; physmem_cache_mode_names[i]; i++)
		if (strcmp(physmem_cache_mode_names[i], json_object_get_string(v)) == 0) {
			info.cache = (enum physmem_cache)i;
			r = 0;
		}
	CHECK(r, "cache");
	CHECK(get_string(obj, "backend", info.backend, sizeof(info.backend), true), "backend");
	CHECK(field(obj, "ownerUid", &v) ? json_id(v, &id) : -1, "ownerUid");
	info.owner_uid = (uid_t)id;
	CHECK(get_u64(obj, "ownerPid", &u) < 0 || u > INT_MAX ? -1 : 0, "ownerPid");
	info.owner_pid = (pid_t)u;
	CHECK(get_id_array(obj, "allowUids", (uint32_t *)info.allow_uids, 64, &info.n_allow_uids), "allowUids");
	CHECK(get_id_array(obj, "allowGids", (uint32_t *)info.allow_gids, 64, &info.n_allow_gids), "allowGids");
	CHECK(get_bool(obj, "locked", &info.locked), "locked");
	CHECK(get_bool(obj, "dmaSafe", &info.dma_safe), "dmaSafe");
	r = get_segments(obj, &info);
	if (r == -ENOMEM)
		return r;
	CHECK(r, "segments");
#undef CHECK
	*ret = info;
	return 0;
}

int physmem_reply_buffer_list(struct json_object *params, struct physmem_info ***ret, size_t *ret_n,
			      const char **ret_field)
{
	struct physmem_info **list = NULL;
	struct json_object *v;
	size_t n;
	int r;

	*ret_field = "buffers";
	if (!params || !field(params, "buffers", &v) || !json_object_is_type(v, json_type_array))
		return -EPROTO;
	n = json_object_array_length(v);
	if (n > 0) {
		list = calloc(n, sizeof(*list));
		if (!list)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		list[i] = calloc(1, sizeof(*list[i]));
		r = list[i] ? physmem_reply_buffer(json_object_array_get_idx(v, i), list[i], ret_field) : -ENOMEM;
		if (r < 0) {
			physmem_info_list_free(list, i + 1);
			return r;
		}
	}
	*ret_field = NULL;
	*ret = list;
	*ret_n = n;
	return 0;
}

int physmem_reply_status(struct json_object *params, struct physmem_status *ret, const char **ret_field)
{
	static const struct {
		const char *name;
		size_t offset;
	} ints[] = {
		{ "buffers", offsetof(struct physmem_status, buffers) },
		{ "bytes", offsetof(struct physmem_status, bytes) },
		{ "connections", offsetof(struct physmem_status, connections) },
		{ "maxBufferSize", offsetof(struct physmem_status, max_buffer_size) },
		{ "maxMessageSize", offsetof(struct physmem_status, max_message_size) },
		{ "maxConnections", offsetof(struct physmem_status, max_connections) },
		{ "maxConnectionsPerUid", offsetof(struct physmem_status, max_connections_per_uid) },
	};
	struct physmem_status st = { 0 };
	struct json_object *q, *v;
	uint32_t uid;

	*ret_field = NULL;
	if (!params) {
		*ret_field = "parameters";
		return -EPROTO;
	}
#define CHECK(expr, name) do { if ((expr) < 0) { *ret_field = (name); return -EPROTO; } } while (0)
	CHECK(get_string(params, "version", st.version, sizeof(st.version), true), "version");
	CHECK(get_string(params, "backend", st.backend, sizeof(st.backend), true), "backend");
	CHECK(get_bool(params, "dmaSafe", &st.dma_safe), "dmaSafe");
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		CHECK(get_u64(params, ints[i].name, (uint64_t *)((char *)&st + ints[i].offset)), ints[i].name);
	CHECK(get_string(params, "addressPolicy", st.address_policy, sizeof(st.address_policy), true),
	      "addressPolicy");
	CHECK(field(params, "quota", &q) && json_object_is_type(q, json_type_object) ? 0 : -1, "quota");
	CHECK(field(q, "uid", &v) ? json_id(v, &uid) : -1, "quota.uid");
	st.quota_uid = (uid_t)uid;
	CHECK(get_u64(q, "maxBuffers", &st.quota_max_buffers), "quota.maxBuffers");
	CHECK(get_u64(q, "maxBytes", &st.quota_max_bytes), "quota.maxBytes");
	CHECK(get_u64(q, "buffers", &st.quota_buffers), "quota.buffers");
	CHECK(get_u64(q, "bytes", &st.quota_bytes), "quota.bytes");
	if (field(q, "heldBytes", &v)) {
		CHECK(json_u64(v, &st.quota_held_bytes), "quota.heldBytes");
		st.quota_held_bytes_known = true;
	}
#undef CHECK
	*ret = st;
	return 0;
}

int physmem_reply_error_errno(const char *name)
{
	static const struct {
		const char *name;
		int error;
	} map[] = {
		{ PHYSMEM_ERROR_NO_SUCH_BUFFER, ENOENT },
		{ PHYSMEM_ERROR_QUOTA_EXCEEDED, EDQUOT },
		{ PHYSMEM_ERROR_PERMISSION_DENIED, EACCES },
		{ VL_ERROR_PERMISSION_DENIED, EACCES },
		{ PHYSMEM_ERROR_SIZE_OUT_OF_RANGE, ERANGE },
		{ PHYSMEM_ERROR_NOT_SUPPORTED, EOPNOTSUPP },
		{ PHYSMEM_ERROR_ALLOCATION_FAILED, ENOMEM },
		{ PHYSMEM_ERROR_NAME_IN_USE, EEXIST },
		{ PHYSMEM_ERROR_AMBIGUOUS_NAME, ENOTUNIQ },
		{ PHYSMEM_ERROR_NOT_POPULATED, ENODATA },
		{ VL_ERROR_INVALID_PARAMETER, EINVAL },
	};

	if (name)
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcmp(map[i].name, name) == 0)
				return -map[i].error;
	return -EPROTO;
}

void physmem_reply_sanitize(char *buf, size_t size, const char *s)
{
	size_t i;

	if (size == 0)
		return;
	for (i = 0; s[i] && i + 1 < size; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
}

/* A parameter as text for a message: strings sanitized, anything else as JSON; "?" when absent. */
static const char *param_text(struct json_object *params, const char *key, char *buf, size_t size)
{
	struct json_object *v = NULL;

	if (!params || !field(params, key, &v))
		physmem_reply_sanitize(buf, size, "?");
	else if (json_object_is_type(v, json_type_string))
		physmem_reply_sanitize(buf, size, json_object_get_string(v));
	else
		physmem_reply_sanitize(buf, size, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	return buf;
}

static void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strnlen(buf, size);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

void physmem_reply_error_message(const char *name, struct json_object *params, char *buf, size_t size)
{
	char a[128], b[128], c[128], d[128];

	if (size == 0)
		return;
	buf[0] = '\0';
	if (params && !json_object_is_type(params, json_type_object))
		params = NULL;

	if (!name) {
		append(buf, size, "unknown error");
	} else if (strcmp(name, PHYSMEM_ERROR_QUOTA_EXCEEDED) == 0) {
		append(buf, size, "quota exceeded: %s limit %s, used %s, requested %s",
		       param_text(params, "limit", a, sizeof(a)), param_text(params, "max", b, sizeof(b)),
		       param_text(params, "used", c, sizeof(c)), param_text(params, "requested", d, sizeof(d)));
	} else if (strcmp(name, PHYSMEM_ERROR_NO_SUCH_BUFFER) == 0) {
		struct json_object *v;

		append(buf, size, "no such buffer");
		if (params && field(params, "id", &v))
			append(buf, size, ": id %s", param_text(params, "id", a, sizeof(a)));
		else if (params && field(params, "name", &v))
			append(buf, size, ": name '%s'", param_text(params, "name", a, sizeof(a)));
	} else if (strcmp(name, PHYSMEM_ERROR_PERMISSION_DENIED) == 0) {
		append(buf, size, "permission denied: %s", param_text(params, "reason", a, sizeof(a)));
	} else if (strcmp(name, VL_ERROR_PERMISSION_DENIED) == 0) {
		append(buf, size, "permission denied");
	} else if (strcmp(name, PHYSMEM_ERROR_SIZE_OUT_OF_RANGE) == 0) {
		append(buf, size, "size out of range: %s (allowed %s to %s bytes)",
		       param_text(params, "size", a, sizeof(a)), param_text(params, "min", b, sizeof(b)),
		       param_text(params, "max", c, sizeof(c)));
	} else if (strcmp(name, PHYSMEM_ERROR_NOT_SUPPORTED) == 0) {
		append(buf, size, "not supported: %s on the %s backend",
		       param_text(params, "feature", a, sizeof(a)), param_text(params, "backend", b, sizeof(b)));
	} else if (strcmp(name, PHYSMEM_ERROR_ALLOCATION_FAILED) == 0) {
		append(buf, size, "allocation failed: %s", param_text(params, "reason", a, sizeof(a)));
	} else if (strcmp(name, PHYSMEM_ERROR_NAME_IN_USE) == 0) {
		append(buf, size, "name in use: '%s'", param_text(params, "name", a, sizeof(a)));
	} else if (strcmp(name, PHYSMEM_ERROR_AMBIGUOUS_NAME) == 0) {
		append(buf, size, "ambiguous name: '%s' is shared by owners %s; choose one",
		       param_text(params, "name", a, sizeof(a)), param_text(params, "owners", b, sizeof(b)));
	} else if (strcmp(name, PHYSMEM_ERROR_NOT_POPULATED) == 0) {
		append(buf, size, "memfd range not populated (write it before pinning)");
	} else if (strcmp(name, VL_ERROR_INVALID_PARAMETER) == 0) {
		append(buf, size, "invalid parameter: %s", param_text(params, "parameter", a, sizeof(a)));
	} else {
		char n[128];

		physmem_reply_sanitize(n, sizeof(n), name);
		append(buf, size, "%s", n);
		if (params && json_object_object_length(params) > 0) {
			char p[256];

			physmem_reply_sanitize(p, sizeof(p),
					       json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN));
			append(buf, size, " %s", p);
		}
	}
}
