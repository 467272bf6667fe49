/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * varlink-writer: a message's JSON text written straight into one growing
 * buffer, for the replies a daemon sends most (a Buffer with its segment
 * list is hundreds of values). Building a json-c object tree for them costs
 * an allocation and a hash table per object, then a second pass to print it;
 * this writes each value once.
 *
 * The text is what json_object_to_json_string_ext(JSON_C_TO_STRING_PLAIN |
 * JSON_C_TO_STRING_NOSLASHESCAPE) prints for the same values: no spaces,
 * strings escaped the same way. Strings that are not UTF-8 make the writer
 * fail (-EILSEQ) rather than send what a standard client cannot decode.
 *
 * Errors are sticky: calls after the first failure do nothing, and
 * vl_writer_finish() reports it, so a caller checks once at the end.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Nesting deeper than this fails with -E2BIG. */
#define VL_WRITER_MAX_DEPTH 16

struct vl_writer {
	char *buf;
	size_t len;		/* bytes written, not counting the NUL kept after them */
	size_t cap;
	int error;		/* the first failure (negative errno), or 0 */
	unsigned depth;
	/* Bit d: the container at depth d has a value already (a comma comes next). */
	uint32_t has_value;
	bool after_key;		/* a key was written: its value comes next, no comma */
	char inline_buf[512];	/* the first bytes, without a malloc */
};

void vl_writer_init(struct vl_writer *w);
void vl_writer_done(struct vl_writer *w);	/* frees what the writer holds */

void vl_writer_object_begin(struct vl_writer *w);
void vl_writer_object_end(struct vl_writer *w);
void vl_writer_array_begin(struct vl_writer *w);
void vl_writer_array_end(struct vl_writer *w);

/* An object member's name; its value is the next call. */
void vl_writer_key(struct vl_writer *w, const char *key);

void vl_writer_string(struct vl_writer *w, const char *s);
void vl_writer_int(struct vl_writer *w, int64_t v);
void vl_writer_bool(struct vl_writer *w, bool v);
void vl_writer_null(struct vl_writer *w);
/* A json-c value written in place (NULL: JSON null); does not take it. */
void vl_writer_json(struct vl_writer *w, struct json_object *o);

/*
 * The finished text, NUL-terminated (the NUL counted in *ret_len, as the
 * Varlink framing sends it). The text stays the writer's. Fails with the
 * first error, or -EINVAL if a container is still open.
 */
int vl_writer_finish(struct vl_writer *w, const char **ret_text, size_t *ret_len);
