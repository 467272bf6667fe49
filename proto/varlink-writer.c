/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "varlink-writer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "varlink-utf8.h"

void vl_writer_init(struct vl_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->buf = w->inline_buf;
	w->cap = sizeof(w->inline_buf);
	w->buf[0] = '\0';
}

void vl_writer_done(struct vl_writer *w)
{
	if (w->buf != w->inline_buf)
		free(w->buf);
	vl_writer_init(w);
}

/* Room for n more bytes and the NUL after them; false (error set) if none. */
static bool reserve(struct vl_writer *w, size_t n)
{
	size_t need, cap;
	char *p;

	if (w->error)
		return false;
	if (n >= SIZE_MAX / 2 - w->len) {
		w->error = -ENOMEM;
		return false;
	}
	need = w->len + n + 1;
	if (need <= w->cap)
		return true;
	for (cap = w->cap * 2; cap < need; cap *= 2)
		;
	p = w->buf == w->inline_buf ? malloc(cap) : realloc(w->buf, cap);
	if (!p) {
		w->error = -ENOMEM;
		return false;
	}
	if (w->buf == w->inline_buf)
		memcpy(p, w->inline_buf, w->len + 1);
	w->buf = p;
	w->cap = cap;
	return true;
}

static void put(struct vl_writer *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

/* Before a value: the comma that separates it from the one before it. */
static void value_begin(struct vl_writer *w)
{
	uint32_t bit = 1u << w->depth;

	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->has_value & bit) {
		/* A message is one value: a second one at the top is misuse. */
		if (w->depth == 0 && !w->error)
			w->error = -EINVAL;
		put(w, ",", 1);
	}
	w->has_value |= bit;
}

static void open_container(struct vl_writer *w, char c)
{
	value_begin(w);
	if (w->error)
		return;
	if (w->depth + 1 >= VL_WRITER_MAX_DEPTH) {
		w->error = -E2BIG;
		return;
	}
	put(w, &c, 1);
	w->depth++;
	w->has_value &= ~(1u << w->depth);
}

static void close_container(struct vl_writer *w, char c)
{
	if (w->error)
		return;
	if (w->depth == 0 || w->after_key) {
		w->error = -EINVAL;
		return;
	}
	w->depth--;
	put(w, &c, 1);
}

void vl_writer_object_begin(struct vl_writer *w)
{
	open_container(w, '{');
}

void vl_writer_object_end(struct vl_writer *w)
{
	close_container(w, '}');
}

void vl_writer_array_begin(struct vl_writer *w)
{
	open_container(w, '[');
}

void vl_writer_array_end(struct vl_writer *w)
{
	close_container(w, ']');
}

/* Printable ASCII other than '"' and '\\': valid UTF-8 that JSON takes as it is. */
static const bool plain_char[256] = { [0x20 ... 0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7e] = 1 };

/* put_string() for a string with a character to escape, or that is not ASCII: checked, escaped piece by piece. */
static void put_string_escaped(struct vl_writer *w, const char *s, size_t n, char tail)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	if (!vl_utf8_valid(s, n)) {
		if (!w->error)
			w->error = -EILSEQ;
		return;
	}
	put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char esc[6];
		size_t esc_len = 2;

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		put(w, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (ch) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 0xf];
			esc_len = 6;
			break;
		}
		put(w, esc, esc_len);
	}
	put(w, s + run, n - run);
	put(w, "\"", 1);
	if (tail)
		put(w, &tail, 1);
}

/*
 * s as a JSON string, then tail unless it is '\0': '"', '\\' and control
 * characters escaped as json-c does. A string of plain characters (every
 * key and nearly every value the daemon writes) is one copy.
 */
static inline void put_string(struct vl_writer *w, const char *s, char tail)
{
	size_t n = 0;

	while (plain_char[(unsigned char)s[n]])
		n++;
	if (s[n] != '\0') {
		put_string_escaped(w, s, n + strlen(s + n), tail);
		return;
	}
	if (!reserve(w, n + 3))
		return;
	w->buf[w->len++] = '"';
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len++] = '"';
	if (tail)
		w->buf[w->len++] = tail;
	w->buf[w->len] = '\0';
}

void vl_writer_key(struct vl_writer *w, const char *key)
{
	if (w->error)
		return;
	if (w->depth == 0 || w->after_key) {
		w->error = -EINVAL;
		return;
	}
	value_begin(w);
	put_string(w, key, ':');
	w->after_key = true;
}

void vl_writer_string(struct vl_writer *w, const char *s)
{
	value_begin(w);
	put_string(w, s, '\0');
}

/* A decimal integer of magnitude u, '-' before it when negative. */
static void put_decimal(struct vl_writer *w, uint64_t u, bool negative)
{
	char digits[21], *p = digits + sizeof(digits);

	value_begin(w);
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (negative)
		*--p = '-';
	put(w, p, (size_t)(digits + sizeof(digits) - p));
}

void vl_writer_int(struct vl_writer *w, int64_t v)
{
	/* The magnitude as unsigned, which INT64_MIN also has. */
	put_decimal(w, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0);
}

void vl_writer_bool(struct vl_writer *w, bool v)
{
	value_begin(w);
	if (v)
		put(w, "true", 4);
	else
		put(w, "false", 5);
}

void vl_writer_null(struct vl_writer *w)
{
	value_begin(w);
	put(w, "null", 4);
}

/*
 * A double: the fewest significant digits that read back as the same double
 * (json-c writes 17 for one it built and keeps a parsed one's own text; all
 * read back alike), ".0" after an integral value, NaN and the infinities by
 * name, as json-c does (its parser takes them back; no message of this
 * protocol has one). The decimal point is '.', whatever LC_NUMERIC says.
 */
static void put_double(struct vl_writer *w, double d)
{
	char buf[40];
	int n;

	value_begin(w);
	if (isnan(d)) {
		put(w, "NaN", 3);
		return;
	}
	if (isinf(d)) {
		if (d < 0)
			put(w, "-Infinity", 9);
		else
			put(w, "Infinity", 8);
		return;
	}
	/* The fewest digits that read back as d (17 always do). */
	for (int digits = 15; digits <= 17; digits++) {
		n = snprintf(buf, sizeof(buf), "%.*g", digits, d);
		if (n <= 0 || (size_t)n >= sizeof(buf) - 2) {
			w->error = -EINVAL;
			return;
		}
		if (strtod(buf, NULL) == d)
			break;
	}
	for (int i = 0; i < n; i++)
		if (buf[i] == ',')
			buf[i] = '.';
	if (!strpbrk(buf, ".eEn")) {
		memcpy(buf + n, ".0", 3);
		n += 2;
	}
	put(w, buf, (size_t)n);
}

/* How deep vl_writer_json() follows json-c values: deeper than any message. */
#define JSON_MAX_DEPTH 64

static void put_json(struct vl_writer *w, struct json_object *o, unsigned depth)
{
	const char *s;
	size_t n;

	if (w->error)
		return;
	if (depth > JSON_MAX_DEPTH) {
		w->error = -EINVAL;
		return;
	}
	switch (json_object_get_type(o)) {
	case json_type_null:
		vl_writer_null(w);
		break;
	case json_type_boolean:
		vl_writer_bool(w, json_object_get_boolean(o));
		break;
	case json_type_int:
		if (json_object_get_int64(o) == INT64_MAX && json_object_get_uint64(o) > INT64_MAX)
			put_decimal(w, json_object_get_uint64(o), false);	/* past INT64_MAX: json-c keeps those apart */
		else
			vl_writer_int(w, json_object_get_int64(o));
		break;
	case json_type_string:
		s = json_object_get_string(o);
		n = (size_t)json_object_get_string_len(o);
		value_begin(w);
		if (memchr(s, '\0', n))
			put_string_escaped(w, s, n, '\0');
		else
			put_string(w, s, '\0');
		break;
	case json_type_array:
		vl_writer_array_begin(w);
		n = json_object_array_length(o);
		for (size_t i = 0; i < n; i++)
			put_json(w, json_object_array_get_idx(o, i), depth + 1);
		vl_writer_array_end(w);
		break;
	case json_type_object:
		vl_writer_object_begin(w);
		json_object_object_foreach(o, key, v) {
			vl_writer_key(w, key);
			put_json(w, v, depth + 1);
		}
		vl_writer_object_end(w);
		break;
	case json_type_double:
		put_double(w, json_object_get_double(o));
		break;
	default:
		w->error = -EINVAL;
		break;
	}
}

/*
 * Walked with the writer's own output, not printed by json-c: json-c's
 * printer leaves text out without saying so when an allocation fails.
 */
void vl_writer_json(struct vl_writer *w, struct json_object *o)
{
	put_json(w, o, 0);
}

int vl_writer_finish(struct vl_writer *w, const char **ret_text, size_t *ret_len)
{
	if (w->error)
		return w->error;
	if (w->depth != 0 || w->after_key || w->len == 0)
		return -EINVAL;
	*ret_text = w->buf;
	*ret_len = w->len + 1;
	return 0;
}
