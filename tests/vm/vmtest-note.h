/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmtest-note.h: the detail text of a VM test's result line, and small
 * helpers, shared by the test programs (each includes it once; it defines
 * static state).
 */
#ifndef VMTEST_NOTE_H
#define VMTEST_NOTE_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

/* One number from a sysfs/procfs file, or -1. */
static inline long long read_num(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtoll(buf, NULL, 0) : -1;
}

/* The test data pattern byte at @off for @seed (physmem-vmtest mkdisk's too). */
static inline uint8_t pat(uint64_t seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9E3779B97F4A7C15ULL + seed;

	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (off & 7)));
}

#endif
