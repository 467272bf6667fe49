/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "varlink-message.h"
#include "varlink-utf8.h"

#include <errno.h>
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

static int get_bool(struct json_object *msg, const char *key, bool *ret, const char **ret_field)
{
	struct json_object *v;

	*ret = false;
	if (!json_object_object_get_ex(msg, key, &v) || json_object_is_type(v, json_type_null))
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
	struct json_object *v;
	int r;

	*ret_field = NULL;
	memset(ret, 0, sizeof(*ret));
	if (!json_object_is_type(msg, json_type_object)) {
		*ret_field = "";
		return -EBADMSG;
	}
	if (!json_object_object_get_ex(msg, "method", &v) || !vl_string_valid(v) ||
	    json_object_get_string_len(v) == 0) {
		*ret_field = "method";
		return -EBADMSG;
	}
	ret->method = json_object_get_string(v);

	if (json_object_object_get_ex(msg, "parameters", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_object)) {
			*ret_field = "parameters";
			return -EBADMSG;
		}
		ret->parameters = v;
	}

	r = get_bool(msg, "oneway", &ret->oneway, ret_field);
	if (r == 0)
		r = get_bool(msg, "more", &ret->more, ret_field);
	if (r == 0)
		r = get_bool(msg, "upgrade", &ret->upgrade, ret_field);
	return r;
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

struct json_object *vl_reply_new(struct json_object *params)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "parameters", params ? params : json_object_new_object());
	return o;
}

struct json_object *vl_error_new(const char *name, struct json_object *params)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(name));
	json_object_object_add(o, "parameters", params ? params : json_object_new_object());
	return o;
}

struct json_object *vl_error_invalid_parameter(const char *parameter)
{
	struct json_object *p = json_object_new_object();

	json_object_object_add(p, "parameter", json_object_new_string(parameter));
	return vl_error_new(VL_ERROR_INVALID_PARAMETER, p);
}

struct json_object *vl_call_new(const char *method, struct json_object *params)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "method", json_object_new_string(method));
	json_object_object_add(o, "parameters", params ? params : json_object_new_object());
	return o;
}

static const struct vl_field *find_field(const struct vl_field *fields, const char *name)
{
	for (; fields->name; fields++)
		if (strcmp(fields->name, name) == 0)
			return fields;
	return NULL;
}

static int dispatch_one(struct json_object *v, const struct vl_field *f, char *target, unsigned nfds)
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
	}
	return -EINVAL;
}

static int dispatch_present(struct json_object *params, const struct vl_field *fields, void *target,
			    unsigned nfds, const char **ret_field)
{
	const struct vl_field *f;

	json_object_object_foreach(params, key, val) {
		f = find_field(fields, key);
		if (!f) {
			/* The reply names it: only if that is text. */
			*ret_field = vl_utf8_valid(key, strlen(key)) ? key : "parameters";
			return -EINVAL;
		}
		if (json_object_is_type(val, json_type_null)) {
			if (!(f->flags & VL_FIELD_NULLABLE)) {
				*ret_field = f->name;
				return -EINVAL;
			}
			continue;
		}
		if (dispatch_one(val, f, target, nfds) < 0) {
			*ret_field = f->name;
			return -EINVAL;
		}
	}
	return 0;
}

int vl_dispatch(struct json_object *params, const struct vl_field *fields, void *target,
		unsigned nfds, const char **ret_field)
{
	const struct vl_field *f;

	*ret_field = NULL;
	if (params && !json_object_is_type(params, json_type_object)) {
		*ret_field = "parameters";
		return -EINVAL;
	}

	if (params) {
		int r = dispatch_present(params, fields, target, nfds, ret_field);

		if (r < 0)
			return r;
	}

	for (f = fields; f->name; f++) {
		struct json_object *v;

		if (!(f->flags & VL_FIELD_REQUIRED))
			continue;
		if (!params || !json_object_object_get_ex(params, f->name, &v) ||
		    json_object_is_type(v, json_type_null)) {
			*ret_field = f->name;
			return -EINVAL;
		}
	}
	return 0;
}
