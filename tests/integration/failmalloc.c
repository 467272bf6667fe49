// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * LD_PRELOAD shim for oom.py: malloc(), calloc() and realloc() fail (ENOMEM)
 * once in PHYSMEM_FAILMALLOC_EVERY calls, from PHYSMEM_FAILMALLOC_FROM_MS to
 * PHYSMEM_FAILMALLOC_TO_MS after the process's first allocation, whoever
 * calls them: physmemd, json-c, libevent, glibc.
 *
 * Except inside json-c's parser: json-c 0.16's json_tokener_parse_ex() passes
 * a key it failed to copy to strlen() (a crash in the library, not in the
 * daemon), so allocations under it never fail here.
 *
 * A test program may instead fail exactly one chosen allocation: it calls
 * failmalloc_fail_nth(n) (found with dlsym()), and the n-th allocation of
 * that thread from then on fails, outside json-c's parser as above.
 * failmalloc_fail_nth(0) disarms it and returns how many allocations were
 * still to go (0: the armed one failed). The time window applies as well,
 * so such a program sets PHYSMEM_FAILMALLOC_EVERY=0.
 *
 * At exit it writes "failmalloc: N failures" to stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct json_tokener;
struct json_object;

/* Interposed, with json-c's prototype. */
struct json_object *json_tokener_parse_ex(struct json_tokener *tok, const char *str, int len);
void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static struct json_object *(*real_parse)(struct json_tokener *, const char *, int);
static long start_ms = -1, from_ms, to_ms, every;
static unsigned long failures;
static __thread uint64_t rng;
static __thread int in_parser;
static __thread long nth;	/* failmalloc_fail_nth(): allocations left until the one that fails; 0: none */

/* Fail this thread's n-th allocation from now on (once); 0 disarms. Returns the count left before. */
long failmalloc_fail_nth(long n);
long failmalloc_fail_nth(long n)
{
	long left = nth;

	nth = n > 0 ? n : 0;
	return left;
}

static long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static long env_long(const char *name, long def)
{
	const char *e = getenv(name);

	return e ? atol(e) : def;
}

__attribute__((constructor)) static void setup(void)
{
	real_parse = (struct json_object * (*)(struct json_tokener *, const char *, int))
		dlsym(RTLD_NEXT, "json_tokener_parse_ex");
	from_ms = env_long("PHYSMEM_FAILMALLOC_FROM_MS", 1000);
	to_ms = env_long("PHYSMEM_FAILMALLOC_TO_MS", 5000);
	every = env_long("PHYSMEM_FAILMALLOC_EVERY", 20);
	start_ms = now_ms();
}

__attribute__((destructor)) static void report(void)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "failmalloc: %lu failures\n", failures);

	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

static int fail(void)
{
	long t;

	if (nth > 0 && !in_parser && --nth == 0) {
		__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
		errno = ENOMEM;
		return 1;
	}
	if (start_ms < 0 || in_parser || every <= 0)
		return 0;
	t = now_ms() - start_ms;
	if (t < from_ms || t >= to_ms)
		return 0;
	if (!rng)
		rng = ((uint64_t)(uintptr_t)&rng) ^ ((uint64_t)t * 2654435761u) ^ 0x9e3779b97f4a7c15ULL;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	if (rng % (uint64_t)every)
		return 0;
	__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
	errno = ENOMEM;
	return 1;
}

void *malloc(size_t n)
{
	return fail() ? NULL : __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	return fail() ? NULL : __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	return n && fail() ? NULL : __libc_realloc(p, n);
}

struct json_object *json_tokener_parse_ex(struct json_tokener *tok, const char *str, int len)
{
	struct json_object *o;

	in_parser++;
	o = real_parse(tok, str, len);
	in_parser--;
	return o;
}
