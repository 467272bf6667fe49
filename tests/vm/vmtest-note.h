/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmtest-note.h: the detail text of a VM test's result line, shared by the
 * test programs (each includes it once; it defines static state).
 */
#ifndef VMTEST_NOTE_H
#define VMTEST_NOTE_H

#include <stdarg.h>
#include <stdio.h>

static char detail[2048];
static size_t detail_len;

/* Append to the detail text of the result line. */
static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (detail_len >= sizeof(detail) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(detail + detail_len, sizeof(detail) - detail_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		detail_len += (size_t)n;
	if (detail_len > sizeof(detail) - 1)
		detail_len = sizeof(detail) - 1;
}

#define FAIL(...) do { note(__VA_ARGS__); return 1; } while (0)
#define CHECK(cond, ...) do { if (!(cond)) FAIL(__VA_ARGS__); } while (0)

#endif
