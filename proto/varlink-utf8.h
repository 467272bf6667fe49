/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * varlink-utf8: Varlink messages are JSON, and JSON text is UTF-8 (RFC 8259).
 * Strict checks, so that nothing a client sends can make a reply that a
 * standard client cannot decode.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Is s[0..n) well-formed UTF-8 (RFC 3629)? Overlong forms, UTF-16
 * surrogates (U+D800..U+DFFF) and code points past U+10FFFF are not.
 */
bool vl_utf8_valid(const char *s, size_t n);

/*
 * Do the \uXXXX escapes of the JSON text s[0..n) name only Unicode scalar
 * values, that is every surrogate escape is a high one followed at once by a
 * low one? (A decoder would otherwise have to invent a character.)
 */
bool vl_utf8_escapes_valid(const char *s, size_t n);
