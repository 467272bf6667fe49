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

/*
 * Does msg (a call or a reply) refer to fds sent with it: a member of its
 * "parameters" named *FileDescriptor, the fd convention of systemd's Varlink
 * interfaces? A stream told so (vl_stream.refers_to_fds) can read without
 * peeking first (see varlink-stream.h).
 */
bool vl_message_refers_to_fds(struct json_object *msg);

/* Split "a.b.C" into interface "a.b" (copied into iface) and method "C". */
int vl_method_split(const char *method, char *iface, size_t iface_size, const char **ret_name);

/*
 * Building messages with json-c when an allocation may fail: json-c's own
 * json_object_object_add() and json_object_array_add() abort on a NULL
 * container and leave the value to the caller when they fail. These take
 * ownership of v whatever happens; a container or value that is NULL (its
 * json_object_new_*() failed) or an add that fails marks the calling thread's
 * build as failed, which vl_build_failed() reports once and clears. So a
 * message is built without a check per line, and checked once before it is
 * used. (JSON null has no json-c object: these never add it.)
 */
void vl_add(struct json_object *o, const char *key, struct json_object *v);
void vl_append(struct json_object *a, struct json_object *v);
/* key: null, where null is meant (o NULL or a failed add: the build failed). */
void vl_add_null(struct json_object *o, const char *key);
bool vl_build_failed(void);

/* {"parameters": params}; takes ownership of params (NULL means {}). */
struct json_object *vl_reply_new(struct json_object *params);
/* {"error": name, "parameters": params}; takes ownership of params. */
struct json_object *vl_error_new(const char *name, struct json_object *params);
/* org.varlink.service.InvalidParameter naming one parameter. */
struct json_object *vl_error_invalid_parameter(const char *parameter);

enum vl_field_type {
	VL_FIELD_INT,		/* int64_t */
	VL_FIELD_BOOL,		/* bool */
	VL_FIELD_STRING,	/* const char *, valid while the message lives */
	VL_FIELD_ENUM,		/* int: index into enum_values */
	VL_FIELD_INT_ARRAY,	/* struct vl_int_array */
	VL_FIELD_FD_INDEX,	/* int: index of an fd attached to the message */
	VL_FIELD_U64,		/* uint64_t in 0 .. max (0: UINT64_MAX - 1, see below) */
	VL_FIELD_U32,		/* uint32_t in 0 .. max (0: UINT32_MAX - 1, never a real uid) */
	VL_FIELD_ID_ARRAY,	/* struct vl_id_array: at most 64 uids or gids, each a VL_FIELD_U32 */
	VL_FIELD_STRING_COPY,	/* char[size]: copied; longer strings fail, or are cut with VL_FIELD_TRUNCATE */
	VL_FIELD_OBJECT,	/* an object dispatched with fields into the same target at offset */
	VL_FIELD_OBJECT_ARRAY,	/* an array of objects: calloc()ed elements of size bytes, each
				 * dispatched with fields; the pointer at offset, the count
				 * (unsigned) at count_offset */
};

#define VL_FIELD_REQUIRED	(1u << 0)
#define VL_FIELD_NULLABLE	(1u << 1)	/* JSON null is the same as absent */
#define VL_FIELD_TRUNCATE	(1u << 2)	/* VL_FIELD_STRING_COPY: cut at size - 1 bytes */
#define VL_FIELD_MARK_PRESENT	(1u << 3)	/* set the bool at present_offset when present, not null */

struct vl_int_array {
	unsigned n;
	int64_t v[64];
};

struct vl_id_array {
	unsigned n;
	uint32_t v[64];
};

struct vl_field {
	const char *name;
	enum vl_field_type type;
	size_t offset;			/* where in the target struct */
	unsigned flags;
	const char *const *enum_values;	/* NULL-terminated, for VL_FIELD_ENUM */
	/* The members below are zero for the types that do not use them. */
	uint64_t max;			/* VL_FIELD_U64, VL_FIELD_U32: the largest value (0: the default) */
	size_t size;			/* VL_FIELD_STRING_COPY: the buffer; VL_FIELD_OBJECT_ARRAY: one element */
	const struct vl_field *fields;	/* VL_FIELD_OBJECT, VL_FIELD_OBJECT_ARRAY: the members' table */
	size_t count_offset;		/* VL_FIELD_OBJECT_ARRAY: where the count goes */
	size_t present_offset;		/* VL_FIELD_MARK_PRESENT: where the bool goes */
	const char *report;		/* the name *ret_field gives for it (NULL: name) */
};

/* vl_dispatch_full() flags. */
#define VL_DISPATCH_ALLOW_UNKNOWN (1u << 0)	/* ignore fields not in the table (replies: interfaces grow) */

/*
 * Fill target from params (NULL: no parameters) according to fields (terminated by a field with a
 * NULL name). Unknown fields, wrong types, missing required fields, enum
 * values not in the list, arrays longer than 64 and fd indices >= nfds fail
 * with -EINVAL and *ret_field naming the offending parameter. Fields that are
 * absent (or null) leave target untouched: set defaults before calling.
 *
 * Unsigned integers (VL_FIELD_U64, VL_FIELD_U32, VL_FIELD_ID_ARRAY) are
 * refused when negative, fractional or above their max; json-c turns every
 * number above UINT64_MAX into UINT64_MAX, so that value is refused too.
 * Inside a VL_FIELD_OBJECT the members' own names (or reports) are given;
 * any error inside a VL_FIELD_OBJECT_ARRAY's elements names the array.
 * VL_FIELD_OBJECT_ARRAY pointers must be NULL on entry; on failure they are
 * freed again, and -ENOMEM is returned when an allocation failed. Elements of
 * an object array must not contain object arrays themselves.
 */
int vl_dispatch(struct json_object *params, const struct vl_field *fields, void *target,
		unsigned nfds, const char **ret_field);
/* vl_dispatch() with VL_DISPATCH_* flags. */
int vl_dispatch_full(struct json_object *params, const struct vl_field *fields, void *target,
		     unsigned nfds, unsigned flags, const char **ret_field);
