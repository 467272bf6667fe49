/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "varlink-message.h"
#include "varlink-utf8.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/*
 * A JSON string in well-formed UTF-8 (safe to echo in a reply) without an
 * embedded NUL (which C would silently cut at).
 */
static bool vl_string_valid(struct json_object *v)
{
	return json_object_is_type(v, json_type_string) &&
	       strlen(json_object_get_string(v)) == (size_t)json_object_get_string_len(v) &&
	       vl_utf8_valid(json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

/* A flag: absent or null is false, anything else but a boolean is refused. */
static int get_bool(struct json_object *v, const char *key, bool *ret, const char **ret_field)
{
	*ret = false;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		*ret_field = key;
		return -EBADMSG;
	}
	*ret = json_object_get_boolean(v);
	return 0;
}

int vl_call_parse(struct json_object *msg, struct vl_call *ret, const char **ret_field)
{
	struct json_object *method = NULL, *params = NULL, *oneway = NULL, *more = NULL, *upgrade = NULL;
	int r;

	*ret_field = NULL;
	memset(ret, 0, sizeof(*ret));
	if (!json_object_is_type(msg, json_type_object)) {
		*ret_field = "";
		return -EBADMSG;
	}
	/* One walk over the members (JSON null stands as NULL, like an absent one); checked in a fixed order. */
	json_object_object_foreach(msg, key, v) {
		if (strcmp(key, "method") == 0)
			method = v;
		else if (strcmp(key, "parameters") == 0)
			params = v;
		else if (strcmp(key, "oneway") == 0)
			oneway = v;
		else if (strcmp(key, "more") == 0)
			more = v;
		else if (strcmp(key, "upgrade") == 0)
			upgrade = v;
	}
	if (!vl_string_valid(method) || json_object_get_string_len(method) == 0) {
		*ret_field = "method";
		return -EBADMSG;
	}
	ret->method = json_object_get_string(method);

	if (params) {
		if (!json_object_is_type(params, json_type_object)) {
			*ret_field = "parameters";
			return -EBADMSG;
		}
		ret->parameters = params;
	}

	r = get_bool(oneway, "oneway", &ret->oneway, ret_field);
	if (r == 0)
		r = get_bool(more, "more", &ret->more, ret_field);
	if (r == 0)
		r = get_bool(upgrade, "upgrade", &ret->upgrade, ret_field);
	return r;
}

bool vl_message_refers_to_fds(struct json_object *msg)
{
	static const char suffix[] = "FileDescriptor";
	struct json_object *params;

	if (!json_object_is_type(msg, json_type_object) || !json_object_object_get_ex(msg, "parameters", &params) ||
	    !json_object_is_type(params, json_type_object))
		return false;
	json_object_object_foreach(params, key, value) {
		size_t len = strlen(key);

		(void)value;
		if (len >= sizeof(suffix) - 1 && strcmp(key + len - (sizeof(suffix) - 1), suffix) == 0)
			return true;
	}
	return false;
}

int vl_method_split(const char *method, char *iface, size_t iface_size, const char **ret_name)
{
	const char *dot = strrchr(method, '.');
	size_t len;

	if (!dot || dot == method || dot[1] == '\0')
		return -EINVAL;
	len = (size_t)(dot - method);
	if (len >= iface_size)
		return -ENAMETOOLONG;
	memcpy(iface, method, len);
	iface[len] = '\0';
	*ret_name = dot + 1;
	return 0;
}

static __thread bool build_failed;

void vl_add(struct json_object *o, const char *key, struct json_object *v)
{
	if (!o || !v || json_object_object_add(o, key, v) < 0) {
		build_failed = true;
		json_object_put(v);
	}
}

void vl_append(struct json_object *a, struct json_object *v)
{
	if (!a || !v || json_object_array_add(a, v) < 0) {
		build_failed = true;
		json_object_put(v);
	}
}

void vl_add_null(struct json_object *o, const char *key)
{
	if (!o || json_object_object_add(o, key, NULL) < 0)
		build_failed = true;
}

bool vl_build_failed(void)
{
	bool failed = build_failed;

	build_failed = false;
	return failed;
}

struct json_object *vl_reply_new(struct json_object *params)
{
	struct json_object *o = json_object_new_object();

	vl_add(o, "parameters", params ? params : json_object_new_object());
	return o;
}

struct json_object *vl_error_new(const char *name, struct json_object *params)
{
	struct json_object *o = json_object_new_object();

	vl_add(o, "error", json_object_new_string(name));
	vl_add(o, "parameters", params ? params : json_object_new_object());
	return o;
}

struct json_object *vl_error_invalid_parameter(const char *parameter)
{
	struct json_object *p = json_object_new_object();

	vl_add(p, "parameter", json_object_new_string(parameter));
	return vl_error_new(VL_ERROR_INVALID_PARAMETER, p);
}

static const struct vl_field *find_field(const struct vl_field *fields, const char *name)
{
	for (; fields->name; fields++)
		if (strcmp(fields->name, name) == 0)
			return fields;
	return NULL;
}

/* The name an error in f is reported under. */
static const char *field_report(const struct vl_field *f)
{
	return f->report ? f->report : f->name;
}

/*
 * An unsigned integer in 0 .. max. json-c keeps numbers above INT64_MAX as
 * unsigned and saturates everything past UINT64_MAX to it, so UINT64_MAX is
 * never accepted.
 */
static int get_unsigned(struct json_object *v, uint64_t max, uint64_t *ret)
{
	uint64_t u;

	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return -EINVAL;
	u = json_object_get_uint64(v);
	if (u == UINT64_MAX || u > max)
		return -EINVAL;
	*ret = u;
	return 0;
}

static uint64_t field_max(const struct vl_field *f)
{
	if (f->max)
		return f->max;
	return f->type == VL_FIELD_U64 ? UINT64_MAX - 1 : UINT32_MAX - 1;
}

static int dispatch_fields(struct json_object *params, const struct vl_field *fields, char *target,
			   unsigned nfds, unsigned flags, const char **ret_field);

static int dispatch_object_array(struct json_object *v, const struct vl_field *f, char *target, unsigned nfds,
				 unsigned flags)
{
	const char *ignored;
	size_t n;
	char *items;

	if (!json_object_is_type(v, json_type_array))
		return -EINVAL;
	n = json_object_array_length(v);
	if (n > UINT_MAX / 2 || f->size == 0)
		return -EINVAL;
	/* A repeated key: the earlier value is replaced. */
	free(*(void **)(target + f->offset));
	*(void **)(target + f->offset) = NULL;
	*(unsigned *)(target + f->count_offset) = 0;
	if (n == 0)
		return 0;
	items = calloc(n, f->size);
	if (!items)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		int r;

		if (!json_object_is_type(e, json_type_object)) {
			free(items);
			return -EINVAL;
		}
		r = dispatch_fields(e, f->fields, items + i * f->size, nfds, flags, &ignored);
		if (r < 0) {
			free(items);
			return r;
		}
	}
	*(void **)(target + f->offset) = items;
	*(unsigned *)(target + f->count_offset) = (unsigned)n;
	return 0;
}

/* One present, non-null value: 0, -EINVAL, or -ENOMEM; *ret_field set only inside objects. */
static int dispatch_one(struct json_object *v, const struct vl_field *f, char *target, unsigned nfds,
			unsigned flags, const char **ret_field)
{
	switch (f->type) {
	case VL_FIELD_INT:
		if (!json_object_is_type(v, json_type_int))
			return -EINVAL;
		*(int64_t *)(target + f->offset) = json_object_get_int64(v);
		return 0;
	case VL_FIELD_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return -EINVAL;
		*(bool *)(target + f->offset) = json_object_get_boolean(v);
		return 0;
	case VL_FIELD_STRING:
		if (!vl_string_valid(v))
			return -EINVAL;
		*(const char **)(target + f->offset) = json_object_get_string(v);
		return 0;
	case VL_FIELD_STRING_COPY: {
		size_t len;

		if (!vl_string_valid(v) || f->size == 0)
			return -EINVAL;
		len = (size_t)json_object_get_string_len(v);
		if (len >= f->size) {
			if (!(f->flags & VL_FIELD_TRUNCATE))
				return -EINVAL;
			len = f->size - 1;
		}
		memcpy(target + f->offset, json_object_get_string(v), len);
		(target + f->offset)[len] = '\0';
		return 0;
	}
	case VL_FIELD_ENUM: {
		const char *s;

		if (!vl_string_valid(v))
			return -EINVAL;
		s = json_object_get_string(v);
		for (int i = 0; f->enum_values[i]; i++)
			if (strcmp(f->enum_values[i], s) == 0) {
				*(int *)(target + f->offset) = i;
				return 0;
			}
		return -EINVAL;
	}
	case VL_FIELD_U64:
	case VL_FIELD_U32: {
		uint64_t u;

		if (get_unsigned(v, field_max(f), &u) < 0)
			return -EINVAL;
		if (f->type == VL_FIELD_U64)
			*(uint64_t *)(target + f->offset) = u;
		else
			*(uint32_t *)(target + f->offset) = (uint32_t)u;
		return 0;
	}
	case VL_FIELD_INT_ARRAY: {
		struct vl_int_array *a = (struct vl_int_array *)(target + f->offset);
		size_t n;

		if (!json_object_is_type(v, json_type_array))
			return -EINVAL;
		n = json_object_array_length(v);
		if (n > sizeof(a->v) / sizeof(a->v[0]))
			return -EINVAL;
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);

			if (!json_object_is_type(e, json_type_int))
				return -EINVAL;
			a->v[i] = json_object_get_int64(e);
		}
		a->n = (unsigned)n;
		return 0;
	}
	case VL_FIELD_ID_ARRAY: {
		struct vl_id_array *a = (struct vl_id_array *)(target + f->offset);
		uint64_t u;
		size_t n;

		if (!json_object_is_type(v, json_type_array))
			return -EINVAL;
		n = json_object_array_length(v);
		if (n > sizeof(a->v) / sizeof(a->v[0]))
			return -EINVAL;
		for (size_t i = 0; i < n; i++) {
			if (get_unsigned(json_object_array_get_idx(v, i), field_max(f), &u) < 0)
				return -EINVAL;
			a->v[i] = (uint32_t)u;
		}
		a->n = (unsigned)n;
		return 0;
	}
	case VL_FIELD_FD_INDEX: {
		int64_t i;

		if (!json_object_is_type(v, json_type_int))
			return -EINVAL;
		i = json_object_get_int64(v);
		if (i < 0 || i >= (int64_t)nfds)
			return -EINVAL;
		*(int *)(target + f->offset) = (int)i;
		return 0;
	}
	case VL_FIELD_OBJECT:
		if (!json_object_is_type(v, json_type_object))
			return -EINVAL;
		return dispatch_fields(v, f->fields, target + f->offset, nfds, flags, ret_field);
	case VL_FIELD_OBJECT_ARRAY:
		return dispatch_object_array(v, f, target, nfds, flags);
	}
	return -EINVAL;
}

static int dispatch_present(struct json_object *params, const struct vl_field *fields, char *target,
			    unsigned nfds, unsigned flags, const char **ret_field)
{
	const struct vl_field *f, *next = fields;

	json_object_object_foreach(params, key, val) {
		const char *inner = NULL;
		int r;

		/* Members mostly come in the table's order: the field after the last one is tried first. */
		f = next->name && strcmp(next->name, key) == 0 ? next : find_field(fields, key);
		if (f)
			next = f + 1;
		if (!f) {
			if (flags & VL_DISPATCH_ALLOW_UNKNOWN)
				continue;
			/* The reply names it: only if that is text. */
			*ret_field = vl_utf8_valid(key, strlen(key)) ? key : "parameters";
			return -EINVAL;
		}
		if (json_object_is_type(val, json_type_null)) {
			if (!(f->flags & VL_FIELD_NULLABLE)) {
				*ret_field = field_report(f);
				return -EINVAL;
			}
			continue;
		}
		r = dispatch_one(val, f, target, nfds, flags, &inner);
		if (r < 0) {
			*ret_field = inner ? inner : field_report(f);
			return r;
		}
		if (f->flags & VL_FIELD_MARK_PRESENT)
			*(bool *)(target + f->present_offset) = true;
	}
	return 0;
}

static int dispatch_fields(struct json_object *params, const struct vl_field *fields, char *target,
			   unsigned nfds, unsigned flags, const char **ret_field)
{
	const struct vl_field *f;

	if (params) {
		int r = dispatch_present(params, fields, target, nfds, flags, ret_field);

		if (r < 0)
			return r;
	}

	for (f = fields; f->name; f++) {
		struct json_object *v;

		if (!(f->flags & VL_FIELD_REQUIRED))
			continue;
		if (!params || !json_object_object_get_ex(params, f->name, &v) ||
		    json_object_is_type(v, json_type_null)) {
			*ret_field = field_report(f);
			return -EINVAL;
		}
	}
	return 0;
}

/* After a failure: free the object arrays dispatch_fields() filled in. */
static void free_arrays(const struct vl_field *fields, char *target)
{
	for (const struct vl_field *f = fields; f->name; f++) {
		if (f->type == VL_FIELD_OBJECT) {
			free_arrays(f->fields, target + f->offset);
		} else if (f->type == VL_FIELD_OBJECT_ARRAY) {
			free(*(void **)(target + f->offset));
			*(void **)(target + f->offset) = NULL;
			*(unsigned *)(target + f->count_offset) = 0;
		}
	}
}

int vl_dispatch_full(struct json_object *params, const struct vl_field *fields, void *target,
		     unsigned nfds, unsigned flags, const char **ret_field)
{
	int r;

	*ret_field = NULL;
	if (params && !json_object_is_type(params, json_type_object)) {
		*ret_field = "parameters";
		return -EINVAL;
	}
	r = dispatch_fields(params, fields, target, nfds, flags, ret_field);
	if (r < 0 && target)
		free_arrays(fields, target);
	return r;
}

int vl_dispatch(struct json_object *params, const struct vl_field *fields, void *target,
		unsigned nfds, const char **ret_field)
{
	return vl_dispatch_full(params, fields, target, nfds, 0, ret_field);
}
