/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * physmemctl-util: the parts of physmemctl that are pure functions (size
 * parsing and formatting, exit codes, JSON indentation), kept apart so they
 * can be unit tested.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* physmemctl's exit codes (documented in --help and client/README.md). */
enum {
	PHYSMEMCTL_EXIT_OK = 0,
	PHYSMEMCTL_EXIT_FAILED = 1,		/* the daemon refused or the operation failed */
	PHYSMEMCTL_EXIT_USAGE = 2,		/* bad command line */
	PHYSMEMCTL_EXIT_UNREACHABLE = 3,	/* no daemon, or the connection broke */
	PHYSMEMCTL_EXIT_DENIED = 4,		/* permission denied */
	PHYSMEMCTL_EXIT_QUOTA = 5,		/* quota exceeded */
	PHYSMEMCTL_EXIT_NOT_FOUND = 6,		/* no such buffer */
};

/*
 * Parse a size with physmem_parse_size() (proto/): decimal digits, then
 * optionally K, M, G or T (powers of 1024, either case), optionally followed
 * by "B" or "iB". Returns 0, -EINVAL for anything else (empty, signs, spaces,
 * fractions, unknown units), -ERANGE for zero or a value above INT64_MAX.
 */
int physmemctl_parse_size(const char *s, uint64_t *ret);

/* "512 B", "4.0 KiB", "16.0 MiB", "1.5 GiB" ... into buf; returns buf. */
const char *physmemctl_format_size(uint64_t bytes, char *buf, size_t size);

/* The exit code for a negative errno from libphysmem. */
int physmemctl_exit_code(int error);

/* Parse a uid/gid/id: decimal digits only, at most max. Returns 0 or -EINVAL/-ERANGE. */
int physmemctl_parse_uint(const char *s, uint64_t max, uint64_t *ret);

/*
 * Write compact JSON text (as vl_writer makes it: no whitespace outside
 * strings) to f indented by two spaces per level, one member or element a
 * line, a space after each key's colon, and empty objects and arrays as {}
 * and []. Allocates nothing. Returns 0, or -EIO when f reported an error.
 */
int physmemctl_write_indented(FILE *f, const char *text, size_t len);
