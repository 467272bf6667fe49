/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "varlink-utf8.h"

#include <stdint.h>
#include <string.h>

bool vl_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		unsigned char lo = 0x80, hi = 0xbf;	/* the second byte's range */
		size_t len;

		if (c < 0x80) {
			uint64_t w;

			/* ASCII, the usual text: eight bytes at a time while no high bit is set. */
			for (i++; n - i >= sizeof(w); i += sizeof(w)) {
				memcpy(&w, p + i, sizeof(w));
				if (w & 0x8080808080808080ULL)
					break;
			}
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			if (c == 0xe0)
				lo = 0xa0;		/* overlong */
			else if (c == 0xed)
				hi = 0x9f;		/* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			if (c == 0xf0)
				lo = 0x90;		/* overlong */
			else if (c == 0xf4)
				hi = 0x8f;		/* past U+10FFFF */
		} else {
			return false;			/* 80..c1, f5..ff */
		}
		if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k < len; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return false;
		i += len;
	}
	return true;
}

/* The value of the four hex digits at s, or -1. */
static int32_t hex4(const char *s)
{
	int32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

bool vl_utf8_escapes_valid(const char *s, size_t n)
{
	/*
	 * In JSON a backslash can only stand inside a string, where it starts
	 * an escape of two characters or of six (\uXXXX); elsewhere the text
	 * is not JSON at all and the parser refuses it anyway.
	 */
	for (size_t i = 0; i < n; i++) {
		const char *bs = memchr(s + i, '\\', n - i);
		int32_t v, low;

		if (!bs)
			break;
		i = (size_t)(bs - s);
		if (n - i < 2)
			return false;
		if (s[i + 1] != 'u') {
			i++;
			continue;
		}
		if (n - i < 6 || (v = hex4(s + i + 2)) < 0)
			return false;
		i += 5;
		if (v >= 0xdc00 && v <= 0xdfff)
			return false;			/* a low surrogate alone */
		if (v < 0xd800 || v > 0xdbff)
			continue;
		/* A high surrogate: a low one must follow at once. */
		if (n - i < 7 || s[i + 1] != '\\' || s[i + 2] != 'u' || (low = hex4(s + i + 3)) < 0 ||
		    low < 0xdc00 || low > 0xdfff)
			return false;
		i += 6;
	}
	return true;
}
