/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * varlink-message: what Varlink messages mean, independent of any transport.
 * Parse calls, build replies and errors, and check a call's parameters
 * against a table of typed fields.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#define VL_ERROR_INTERFACE_NOT_FOUND "org.varlink.service.InterfaceNotFound"
#define VL_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define VL_ERROR_METHOD_NOT_IMPLEMENTED "org.varlink.service.MethodNotImplemented"
#define VL_ERROR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define VL_ERROR_PERMISSION_DENIED "org.varlink.service.PermissionDenied"
#define VL_ERROR_EXPECTED_MORE "org.varlink.service.ExpectedMore"

#define VL_SERVICE_INTERFACE "org.varlink.service"
/* The text of org.varlink.service.varlink, the standard interface. */
extern const char varlink_service_interface_description[];

/* A parsed call. `method` and `parameters` point into the JSON object. */
struct vl_call {
	const char *method;
	struct json_object *parameters;	/* NULL when absent */
	bool oneway;
	bool more;
	bool upgrade;
};

/*
 * Check that msg is a Varlink call. Returns 0, or -EBADMSG when it is not an
 * object, has no string "method", or a field has the wrong type (*ret_field
 * then names it).
 */
int vl_call_parse(struct json_object *msg, struct vl_call *ret, const char **ret_field);

/* Split "a.b.C" into interface "a.b" (copied into iface) and method "C". */
int vl_method_split(const char *method, char *iface, size_t iface_size, const char **ret_name);

/* {"parameters": params}; takes ownership of params (NULL means {}). */
struct json_object *vl_reply_new(struct json_object *params);
/* {"error": name, "parameters": params}; takes ownership of params. */
struct json_object *vl_error_new(const char *name, struct json_object *params);
/* org.varlink.service.InvalidParameter naming one parameter. */
struct json_object *vl_error_invalid_parameter(const char *parameter);
/* {"method": method, "parameters": params}; takes ownership of params. */
struct json_object *vl_call_new(const char *method, struct json_object *params);

enum vl_field_type {
	VL_FIELD_INT,		/* int64_t */
	VL_FIELD_BOOL,		/* bool */
	VL_FIELD_STRING,	/* const char *, valid while the message lives */
	VL_FIELD_ENUM,		/* int: index into enum_values */
	VL_FIELD_INT_ARRAY,	/* struct vl_int_array */
	VL_FIELD_FD_INDEX,	/* int: index of an fd attached to the message */
};

#define VL_FIELD_REQUIRED	(1u << 0)
#define VL_FIELD_NULLABLE	(1u << 1)	/* JSON null is the same as absent */

struct vl_int_array {
	unsigned n;
	int64_t v[64];
};

struct vl_field {
	const char *name;
	enum vl_field_type type;
	size_t offset;			/* where in the target struct */
	unsigned flags;
	const char *const *enum_values;	/* NULL-terminated, for VL_FIELD_ENUM */
};

/*
 * Fill target from params (NULL: no parameters) according to fields (terminated by a field with a
 * NULL name). Unknown fields, wrong types, missing required fields, enum
 * values not in the list, arrays longer than 64 and fd indices >= nfds fail
 * with -EINVAL and *ret_field naming the offending parameter. Fields that are
 * absent (or null) leave target untouched: set defaults before calling.
 */
int vl_dispatch(struct json_object *params, const struct vl_field *fields, void *target,
		unsigned nfds, const char **ret_field);
