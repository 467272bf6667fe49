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

/* An interface error in dispatched reply parameters is the daemon's fault: -EPROTO (or -ENOMEM). */
static int reply_errno(int r)
{
	return r == -ENOMEM ? -ENOMEM : -EPROTO;
}

/* The interface's Segment type. */
static const struct vl_field segment_fields[] = {
	{ .name = "address", .type = VL_FIELD_U64, .offset = offsetof(struct physmem_segment, address),
	  .flags = VL_FIELD_REQUIRED },
	{ .name = "length", .type = VL_FIELD_U64, .offset = offsetof(struct physmem_segment, length),
	  .flags = VL_FIELD_REQUIRED },
	{},
};

/*
 * The interface's Buffer type into struct physmem_info: the one table every
 * reply carrying a Buffer (Allocate, Pin, Import, Share, Describe, List) is
 * read with. Ids are below UINT64_MAX, uids and gids below 2^32 - 1, pids at
 * most INT_MAX; backend names are cut to fit, shared names are not.
 */
#define INFO(member) offsetof(struct physmem_info, member)
static const struct vl_field buffer_fields[] = {
	{ .name = "id", .type = VL_FIELD_U64, .offset = INFO(id), .flags = VL_FIELD_REQUIRED },
	{ .name = "name", .type = VL_FIELD_STRING_COPY, .offset = INFO(name), .flags = VL_FIELD_NULLABLE,
	  .size = sizeof(((struct physmem_info *)0)->name) },
	{ .name = "size", .type = VL_FIELD_U64, .offset = INFO(size), .flags = VL_FIELD_REQUIRED },
	{ .name = "contiguous", .type = VL_FIELD_BOOL, .offset = INFO(contiguous), .flags = VL_FIELD_REQUIRED },
	{ .name = "cache", .type = VL_FIELD_ENUM, .offset = INFO(cache), .flags = VL_FIELD_REQUIRED,
	  .enum_values = physmem_cache_mode_names },
	{ .name = "backend", .type = VL_FIELD_STRING_COPY, .offset = INFO(backend),
	  .flags = VL_FIELD_REQUIRED | VL_FIELD_TRUNCATE, .size = sizeof(((struct physmem_info *)0)->backend) },
	{ .name = "ownerUid", .type = VL_FIELD_U32, .offset = INFO(owner_uid), .flags = VL_FIELD_REQUIRED },
	{ .name = "ownerPid", .type = VL_FIELD_U32, .offset = INFO(owner_pid), .flags = VL_FIELD_REQUIRED,
	  .max = INT_MAX },
	{ .name = "allowUids", .type = VL_FIELD_ID_ARRAY, .offset = INFO(allow_uids), .flags = VL_FIELD_REQUIRED },
	{ .name = "allowGids", .type = VL_FIELD_ID_ARRAY, .offset = INFO(allow_gids), .flags = VL_FIELD_REQUIRED },
	{ .name = "locked", .type = VL_FIELD_BOOL, .offset = INFO(locked), .flags = VL_FIELD_REQUIRED },
	{ .name = "dmaSafe", .type = VL_FIELD_BOOL, .offset = INFO(dma_safe), .flags = VL_FIELD_REQUIRED },
	{ .name = "pageSize", .type = VL_FIELD_U64, .offset = INFO(page_size), .flags = VL_FIELD_NULLABLE },
	{ .name = "transparentHugePages", .type = VL_FIELD_BOOL, .offset = INFO(thp), .flags = VL_FIELD_NULLABLE },
	{ .name = "segments", .type = VL_FIELD_OBJECT_ARRAY, .offset = INFO(segments),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_MARK_PRESENT, .size = sizeof(struct physmem_segment),
	  .fields = segment_fields, .count_offset = INFO(n_segments), .present_offset = INFO(segments_known) },
	{ .name = "pool", .type = VL_FIELD_STRING_COPY, .offset = INFO(pool),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_TRUNCATE, .size = sizeof(((struct physmem_info *)0)->pool) },
	{},
};
#undef INFO

/* The interface's DeviceBinding type. */
#define BIND(member) offsetof(struct physmem_binding, member)
static const struct vl_field binding_fields[] = {
	{ .name = "device", .type = VL_FIELD_STRING_COPY, .offset = BIND(device), .flags = VL_FIELD_REQUIRED,
	  .size = sizeof(((struct physmem_binding *)0)->device) },
	{ .name = "translation", .type = VL_FIELD_STRING_COPY, .offset = BIND(translation),
	  .flags = VL_FIELD_REQUIRED | VL_FIELD_TRUNCATE, .size = sizeof(((struct physmem_binding *)0)->translation) },
	{ .name = "access", .type = VL_FIELD_ENUM, .offset = BIND(access), .flags = VL_FIELD_REQUIRED,
	  .enum_values = physmem_device_access_names },
	{ .name = "revoked", .type = VL_FIELD_BOOL, .offset = BIND(revoked), .flags = VL_FIELD_REQUIRED },
	{ .name = "segments", .type = VL_FIELD_OBJECT_ARRAY, .offset = BIND(segments),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_MARK_PRESENT, .size = sizeof(struct physmem_segment),
	  .fields = segment_fields, .count_offset = BIND(n_segments), .present_offset = BIND(segments_known) },
	{},
};
#undef BIND

/*
 * A Buffer's devices (nullable): an array of at most PHYSMEM_MAX_BINDINGS
 * DeviceBinding objects into info (object arrays cannot nest in a table, so
 * each element is dispatched here). On failure nothing stays allocated.
 */
static int buffer_bindings(struct json_object *obj, struct physmem_info *info, const char **ret_field)
{
	struct json_object *v;
	size_t n;
	int r;

	if (!json_object_object_get_ex(obj, "devices", &v) || json_object_is_type(v, json_type_null))
		return 0;
	*ret_field = "devices";
	if (!json_object_is_type(v, json_type_array))
		return -EPROTO;
	n = json_object_array_length(v);
	if (n > PHYSMEM_MAX_BINDINGS)
		return -EPROTO;
	if (n == 0)
		return *ret_field = NULL, 0;
	info->bindings = calloc(n, sizeof(*info->bindings));
	if (!info->bindings)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		struct physmem_binding *b = &info->bindings[i];
		const char *ignored;

		r = json_object_is_type(e, json_type_object) ?
			vl_dispatch_full(e, binding_fields, b, 0, VL_DISPATCH_ALLOW_UNKNOWN, &ignored) : -EINVAL;
		if (r < 0) {
			for (size_t j = 0; j < i; j++)
				free(info->bindings[j].segments);
			free(info->bindings);
			info->bindings = NULL;
			return reply_errno(r);
		}
		physmem_reply_sanitize(b->device, sizeof(b->device), b->device);
		physmem_reply_sanitize(b->translation, sizeof(b->translation), b->translation);
	}
	info->n_bindings = (unsigned)n;
	*ret_field = NULL;
	return 0;
}

/* Make the strings of a dispatched Buffer printable and keep the reply's object (for --json). */
static void buffer_finish(struct physmem_info *info, struct json_object *obj)
{
	physmem_reply_sanitize(info->name, sizeof(info->name), info->name);
	physmem_reply_sanitize(info->backend, sizeof(info->backend), info->backend);
	physmem_reply_sanitize(info->pool, sizeof(info->pool), info->pool);
	info->json = json_object_get(obj);
}

int physmem_reply_buffer(struct json_object *obj, struct physmem_info *ret, const char **ret_field)
{
	struct physmem_info info = { 0 };
	int r;

	*ret_field = NULL;
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		*ret_field = "buffer";
		return -EPROTO;
	}
	r = vl_dispatch_full(obj, buffer_fields, &info, 0, VL_DISPATCH_ALLOW_UNKNOWN, ret_field);
	if (r < 0)
		return reply_errno(r);
	r = buffer_bindings(obj, &info, ret_field);
	if (r < 0) {
		physmem_info_done(&info);
		return r;
	}
	buffer_finish(&info, obj);
	*ret = info;
	return 0;
}

/* The parameters (buffer: Buffer, bufferFileDescriptor: int) of Allocate, Pin and Import. */
struct buffer_params {
	struct physmem_info info;
	int64_t fd_index;
};

static const struct vl_field buffer_params_fields[] = {
	{ .name = "buffer", .type = VL_FIELD_OBJECT, .offset = offsetof(struct buffer_params, info),
	  .flags = VL_FIELD_REQUIRED, .fields = buffer_fields },
	{ .name = "bufferFileDescriptor", .type = VL_FIELD_INT, .offset = offsetof(struct buffer_params, fd_index),
	  .flags = VL_FIELD_REQUIRED },
	{},
};

/* The same without the fd (Share, Describe). */
static const struct vl_field buffer_only_params_fields[] = {
	{ .name = "buffer", .type = VL_FIELD_OBJECT, .offset = offsetof(struct buffer_params, info),
	  .flags = VL_FIELD_REQUIRED, .fields = buffer_fields },
	{},
};

int physmem_reply_buffer_params(struct json_object *params, struct physmem_info *ret, int64_t *ret_fd_index,
				const char **ret_field)
{
	struct buffer_params p = { .fd_index = -1 };
	struct json_object *obj = NULL;
	int r;

	*ret_field = NULL;
	if (!params) {
		*ret_field = "buffer";
		return -EPROTO;
	}
	r = vl_dispatch_full(params, ret_fd_index ? buffer_params_fields : buffer_only_params_fields, &p, 0,
			     VL_DISPATCH_ALLOW_UNKNOWN, ret_field);
	if (r < 0)
		return reply_errno(r);
	json_object_object_get_ex(params, "buffer", &obj);
	r = buffer_bindings(obj, &p.info, ret_field);
	if (r < 0) {
		physmem_info_done(&p.info);
		return r;
	}
	buffer_finish(&p.info, obj);
	*ret = p.info;
	if (ret_fd_index)
		*ret_fd_index = p.fd_index;
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
	if (!params || !json_object_object_get_ex(params, "buffers", &v) || !json_object_is_type(v, json_type_array))
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

/* The interface's Quota type, inside Status's parameters (errors name it "quota.NAME"). */
#define ST(member) offsetof(struct physmem_status, member)
static const struct vl_field quota_fields[] = {
	{ .name = "uid", .type = VL_FIELD_U32, .offset = ST(quota_uid), .flags = VL_FIELD_REQUIRED,
	  .report = "quota.uid" },
	{ .name = "maxBuffers", .type = VL_FIELD_U64, .offset = ST(quota_max_buffers), .flags = VL_FIELD_REQUIRED,
	  .report = "quota.maxBuffers" },
	{ .name = "maxBytes", .type = VL_FIELD_U64, .offset = ST(quota_max_bytes), .flags = VL_FIELD_REQUIRED,
	  .report = "quota.maxBytes" },
	{ .name = "buffers", .type = VL_FIELD_U64, .offset = ST(quota_buffers), .flags = VL_FIELD_REQUIRED,
	  .report = "quota.buffers" },
	{ .name = "bytes", .type = VL_FIELD_U64, .offset = ST(quota_bytes), .flags = VL_FIELD_REQUIRED,
	  .report = "quota.bytes" },
	{ .name = "heldBytes", .type = VL_FIELD_U64, .offset = ST(quota_held_bytes),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_MARK_PRESENT, .present_offset = ST(quota_held_bytes_known),
	  .report = "quota.heldBytes" },
	{ .name = "poolBytes", .type = VL_FIELD_U64, .offset = ST(quota_pool_bytes),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_MARK_PRESENT, .present_offset = ST(quota_pool_bytes_known),
	  .report = "quota.poolBytes" },
	{ .name = "maxPoolBytes", .type = VL_FIELD_U64, .offset = ST(quota_max_pool_bytes),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_MARK_PRESENT, .present_offset = ST(quota_max_pool_bytes_known),
	  .report = "quota.maxPoolBytes" },
	{},
};

/* The interface's Pool type, inside Status's pools (errors name the array, "pools"). */
#define PE(member) offsetof(struct physmem_pool_entry, member)
static const struct vl_field pool_fields[] = {
	{ .name = "name", .type = VL_FIELD_STRING_COPY, .offset = PE(name),
	  .flags = VL_FIELD_REQUIRED | VL_FIELD_TRUNCATE, .size = sizeof(((struct physmem_pool_entry *)0)->name) },
	{ .name = "kind", .type = VL_FIELD_STRING_COPY, .offset = PE(kind),
	  .flags = VL_FIELD_REQUIRED | VL_FIELD_TRUNCATE, .size = sizeof(((struct physmem_pool_entry *)0)->kind) },
	{ .name = "size", .type = VL_FIELD_U64, .offset = PE(size),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_MARK_PRESENT, .present_offset = PE(size_known) },
	{ .name = "free", .type = VL_FIELD_U64, .offset = PE(free),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_MARK_PRESENT, .present_offset = PE(free_known) },
	{ .name = "largestFree", .type = VL_FIELD_U64, .offset = PE(largest_free),
	  .flags = VL_FIELD_NULLABLE | VL_FIELD_MARK_PRESENT, .present_offset = PE(largest_free_known) },
	{ .name = "buffers", .type = VL_FIELD_U64, .offset = PE(buffers), .flags = VL_FIELD_REQUIRED },
	{},
};
#undef PE

#define STATUS_STRING(key, member) \
	{ .name = key, .type = VL_FIELD_STRING_COPY, .offset = ST(member), \
	  .flags = VL_FIELD_REQUIRED | VL_FIELD_TRUNCATE, .size = sizeof(((struct physmem_status *)0)->member) }
#define STATUS_U64(key, member) { .name = key, .type = VL_FIELD_U64, .offset = ST(member), .flags = VL_FIELD_REQUIRED }

/* Status's parameters. */
static const struct vl_field status_fields[] = {
	STATUS_STRING("version", version),
	STATUS_STRING("backend", backend),
	{ .name = "dmaSafe", .type = VL_FIELD_BOOL, .offset = ST(dma_safe), .flags = VL_FIELD_REQUIRED },
	STATUS_U64("buffers", buffers),
	STATUS_U64("bytes", bytes),
	STATUS_U64("connections", connections),
	STATUS_U64("maxBufferSize", max_buffer_size),
	STATUS_U64("maxMessageSize", max_message_size),
	STATUS_U64("maxConnections", max_connections),
	STATUS_U64("maxConnectionsPerUid", max_connections_per_uid),
	STATUS_STRING("addressPolicy", address_policy),
	{ .name = "quota", .type = VL_FIELD_OBJECT, .offset = 0, .flags = VL_FIELD_REQUIRED, .fields = quota_fields },
	{ .name = "pools", .type = VL_FIELD_OBJECT_ARRAY, .offset = ST(pools), .flags = VL_FIELD_NULLABLE,
	  .size = sizeof(struct physmem_pool_entry), .fields = pool_fields, .count_offset = ST(n_pools) },
	{},
};
#undef STATUS_STRING
#undef STATUS_U64
#undef ST

int physmem_reply_status(struct json_object *params, struct physmem_status *ret, const char **ret_field)
{
	struct physmem_status st = { 0 };
	int r;

	*ret_field = NULL;
	if (!params) {
		*ret_field = "parameters";
		return -EPROTO;
	}
	r = vl_dispatch_full(params, status_fields, &st, 0, VL_DISPATCH_ALLOW_UNKNOWN, ret_field);
	if (r < 0)
		return reply_errno(r);
	physmem_reply_sanitize(st.version, sizeof(st.version), st.version);
	physmem_reply_sanitize(st.backend, sizeof(st.backend), st.backend);
	physmem_reply_sanitize(st.address_policy, sizeof(st.address_policy), st.address_policy);
	for (unsigned i = 0; i < st.n_pools; i++) {
		physmem_reply_sanitize(st.pools[i].name, sizeof(st.pools[i].name), st.pools[i].name);
		physmem_reply_sanitize(st.pools[i].kind, sizeof(st.pools[i].kind), st.pools[i].kind);
	}
	st.json = json_object_get(params);
	*ret = st;
	return 0;
}

void physmem_reply_add_unknown(struct json_object *o, struct json_object *reply)
{
	if (!o || !reply || !json_object_is_type(reply, json_type_object))
		return;
	json_object_object_foreach(reply, key, val) {
		if (json_object_object_get_ex(o, key, NULL))
			continue;
		if (val)
			vl_add(o, key, json_object_get(val));
		else
			vl_add_null(o, key);
	}
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
		{ PHYSMEM_ERROR_NO_SUCH_DEVICE, ENODEV },
		{ PHYSMEM_ERROR_DEVICE_BUSY, EBUSY },
		{ PHYSMEM_ERROR_POOL_UNAVAILABLE, ENOSPC },
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

/* A member of obj: 1 when present and not null, 0 when absent or null. */
static int field(struct json_object *obj, const char *key, struct json_object **ret)
{
	if (!json_object_object_get_ex(obj, key, ret) || json_object_is_type(*ret, json_type_null)) {
		*ret = NULL;
		return 0;
	}
	return 1;
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
	} else if (strcmp(name, PHYSMEM_ERROR_NO_SUCH_DEVICE) == 0) {
		append(buf, size, "no such device: %s", param_text(params, "device", a, sizeof(a)));
	} else if (strcmp(name, PHYSMEM_ERROR_DEVICE_BUSY) == 0) {
		append(buf, size, "device busy: %s (%s)", param_text(params, "device", a, sizeof(a)),
		       param_text(params, "reason", b, sizeof(b)));
	} else if (strcmp(name, PHYSMEM_ERROR_POOL_UNAVAILABLE) == 0) {
		struct json_object *v;

		append(buf, size, "pool '%s' unavailable: %s (asked %s bytes",
		       param_text(params, "pool", a, sizeof(a)), param_text(params, "reason", b, sizeof(b)),
		       param_text(params, "size", c, sizeof(c)));
		if (params && field(params, "free", &v))
			append(buf, size, ", free %s", param_text(params, "free", d, sizeof(d)));
		if (params && field(params, "largestFree", &v))
			append(buf, size, ", largest free run %s", param_text(params, "largestFree", d, sizeof(d)));
		append(buf, size, ")");
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
