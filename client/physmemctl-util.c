/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "physmemctl-util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "physmem-proto.h"

int physmemctl_parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > max || v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (*s)
		return -EINVAL;
	*ret = v;
	return 0;
}

int physmemctl_parse_size(const char *s, uint64_t *ret)
{
	unsigned long long v;
	int r;

	/* The syntax has one home, shared with physmemd's configuration. */
	r = physmem_parse_size(s, &v);
	if (r < 0)
		return r;
	/* The protocol's int is 64-bit signed; a zero-sized buffer is no buffer. */
	if (v == 0 || v > INT64_MAX)
		return -ERANGE;
	*ret = v;
	return 0;
}

const char *physmemctl_format_size(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	unsigned i = 0;

	if (bytes < 1024) {
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && i + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		i++;
	}
	snprintf(buf, size, "%.1f %s", v, units[i]);
	return buf;
}

int physmemctl_exit_code(int error)
{
	switch (error) {
	case 0:
		return PHYSMEMCTL_EXIT_OK;
	case -EACCES:
	case -EPERM:
		return PHYSMEMCTL_EXIT_DENIED;
	case -EDQUOT:
		return PHYSMEMCTL_EXIT_QUOTA;
	case -ENOENT:
		return PHYSMEMCTL_EXIT_NOT_FOUND;
	case -ECONNRESET:
	case -ECONNREFUSED:
	case -ENOTCONN:
	case -EPIPE:
	case -ETIMEDOUT:
		return PHYSMEMCTL_EXIT_UNREACHABLE;
	default:
		return PHYSMEMCTL_EXIT_FAILED;
	}
}

static void write_newline(FILE *f, unsigned depth)
{
	fputc('\n', f);
	for (unsigned i = 0; i < depth; i++)
		fputs("  ", f);
}

int physmemctl_write_indented(FILE *f, const char *text, size_t len)
{
	bool in_string = false, escaped = false;
	unsigned depth = 0;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			fputc(c, f);
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '"':
			in_string = true;
			fputc(c, f);
			break;
		case '{':
		case '[':
			fputc(c, f);
			if (i + 1 < len && (text[i + 1] == '}' || text[i + 1] == ']')) {
				fputc(text[++i], f);
				break;
			}
			write_newline(f, ++depth);
			break;
		case '}':
		case ']':
			write_newline(f, depth ? --depth : 0);
			fputc(c, f);
			break;
		case ',':
			fputc(c, f);
			write_newline(f, depth);
			break;
		case ':':
			fputs(": ", f);
			break;
		default:
			fputc(c, f);
			break;
		}
	}
	fputc('\n', f);
	return ferror(f) ? -EIO : 0;
}
