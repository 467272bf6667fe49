/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libphysmem internals shared by the library's files, physmemctl and the unit
 * tests. Nothing here is exported from the shared library.
 */
#pragma once

#include <stddef.h>

#include <json-c/json.h>

#include "physmem.h"

/* How long one call may wait for the daemon. */
#define PHYSMEM_CALL_TIMEOUT_MS 30000
/* Largest reply accepted (the daemon's message limit is the real bound). */
#define PHYSMEM_MAX_REPLY (16u << 20)

/*
 * physmem-reply.c: turn reply parameters into C structs, strictly: every
 * field the interface marks non-nullable must be there with the right type
 * and range. Fields this client does not know are ignored (interfaces grow by
 * adding nullable fields). On failure *ret_field names the offending field,
 * nothing is allocated, and -EPROTO is returned.
 */
int physmem_reply_buffer(struct json_object *obj, struct physmem_info *ret, const char **ret_field);
int physmem_reply_buffer_list(struct json_object *params, struct physmem_info **ret, size_t *ret_n,
			      const char **ret_field);
int physmem_reply_status(struct json_object *params, struct physmem_status *ret, const char **ret_field);
/* The negative errno for a Varlink error name (see physmem.h). */
int physmem_reply_error_errno(const char *name);
/* A one-line, printable description of a Varlink error and its parameters. */
void physmem_reply_error_message(const char *name, struct json_object *params, char *buf, size_t size);
/* Copy s into buf as one printable line (control characters become '?'). */
void physmem_reply_sanitize(char *buf, size_t size, const char *s);

/* libphysmem.c: physmem_connect, and on failure one line for people in err. */
int physmem_connect_explained(const char *path, struct physmem **ret, char *err, size_t errsize);
