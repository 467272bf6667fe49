// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libphysmem when one allocation fails (oom.py --lib, with failmalloc.so
 * preloaded): for n = 1, 2, ... the n-th allocation made inside one
 * physmem_alloc() fails (failmalloc_fail_nth()), until the call makes fewer
 * than n. Unnamed and named buffers, on a long-lived connection. After
 * each call:
 *  - it returned a buffer, or a negative errno with a message;
 *  - the daemon holds no buffer of ours that the program does not have:
 *    List (own buffers) is empty once the program has freed what it got. A
 *    buffer the daemon made but the library could not take must be given
 *    back, not left charged to the caller for the connection's life (or,
 *    named, for good). One exception, which the call's message must name:
 *    a named buffer whose reply was lost with the connection (the library
 *    cannot know its id); the program then frees it by its name;
 *  - the connection still works, or says it is unusable (ENOTCONN), and the
 *    program connects again.
 *
 *   physmem-oom-client --socket PATH
 * Exit 0: every check held; 1: one did not (a line says which); 77: the shim
 * is not preloaded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "physmem.h"

static long (*fail_nth)(long n);

static int reconnect(const char *path, struct physmem **pm)
{
	physmem_disconnect(*pm);
	*pm = NULL;
	return physmem_connect(path, pm);
}

/*
 * Buffers the daemon holds for us, named name if not NULL; -errno when
 * List itself failed. Waits up to 10 s for there to be none: a connection
 * given up just before may still be closing in the daemon (its unnamed
 * buffers go then), or an Allocate whose reply was lost not yet answered.
 */
static long held(struct physmem *pm, const char *name)
{
	long n = 0;

	for (int tries = 0; tries < 100; tries++) {
		struct physmem_info **list;
		size_t got;
		int r = physmem_list(pm, false, &list, &got);

		if (r < 0)
			return r;
		n = 0;
		for (size_t i = 0; i < got; i++)
			n += !name || strcmp(physmem_info_name(list[i]), name) == 0;
		physmem_info_list_free(list, got);
		if (n == 0)
			break;
		usleep(100 * 1000);
	}
	return n;
}

/*
 * The named buffer that a call whose reply was lost said it may have made:
 * wait up to 10 s for it (the daemon reads the call before the connection's
 * end) and free it. Returns how many were freed.
 */
static int free_lost(struct physmem *pm, const char *name)
{
	for (int tries = 0; tries < 100; tries++) {
		struct physmem_info **list;
		size_t got;
		int freed = 0;

		if (physmem_list(pm, false, &list, &got) < 0)
			return 0;
		for (size_t i = 0; i < got; i++)
			if (strcmp(physmem_info_name(list[i]), name) == 0 &&
			    physmem_free_id(pm, physmem_info_id(list[i])) == 0)
				freed++;
		physmem_info_list_free(list, got);
		if (freed)
			return freed;
		usleep(100 * 1000);
	}
	return 0;
}

static int made_unseen;	/* named buffers made although their call failed, as it said */

/* One sweep over n; named: each buffer gets a name of its own. Returns the failed calls, or -1 on a failed check. */
static int sweep(const char *path, struct physmem **pm, bool named)
{
	int failed = 0;

	for (long n = 1; n < 1000; n++) {
		struct physmem_buffer *buf = NULL;
		char why[512] = "ok", name[32];
		bool untouched;
		long left;
		int r;

		snprintf(name, sizeof(name), "oom-named-%ld", n);
		fail_nth(n);
		r = physmem_alloc(*pm, 4096, 0, PHYSMEM_CACHE_CACHED, named ? name : NULL, &buf);
		untouched = fail_nth(0) > 0;
		if (r == 0) {
			r = physmem_buffer_free(buf);
			if (r < 0) {
				printf("not ok - n=%ld: free after a good alloc: %s\n", n, physmem_error_message(*pm));
				return -1;
			}
			/* The call made fewer than n allocations: every one of them has failed once. */
			if (untouched) {
				left = held(*pm, NULL);
				if (left != 0)
					printf("not ok - the daemon holds %ld buffers of ours after the sweep\n", left);
				return left == 0 ? failed : -1;
			}
		} else {
			failed++;
			snprintf(why, sizeof(why), "%s", physmem_error_message(*pm));
			if (!why[0] || strcmp(why, "no error") == 0) {
				printf("not ok - n=%ld: alloc failed with %d and no message\n", n, r);
				return -1;
			}
			if (r != -ENOMEM) {
				printf("not ok - n=%ld: alloc failed with %d (%s), not ENOMEM, when only memory ran out\n",
				       n, r, why);
				return -1;
			}
		}
		left = held(*pm, NULL);
		if (left == -ENOTCONN) {
			if (reconnect(path, pm) < 0) {
				printf("not ok - n=%ld: cannot connect again\n", n);
				return -1;
			}
			/* A named buffer whose reply was lost stays in the daemon; the call said so. */
			if (named && r < 0 && strstr(why, "may have made the buffer all the same"))
				made_unseen += free_lost(*pm, name);
			left = held(*pm, NULL);
		}
		if (left != 0) {
			printf("not ok - n=%ld: alloc%s returned %d (%s), and the daemon holds %ld buffers of ours "
			       "(List: negative is its errno)\n", n, named ? " (named)" : "", r, why, left);
			return -1;
		}
	}
	printf("not ok - physmem_alloc() still allocated after 1000 failures\n");
	return -1;
}

int main(int argc, char **argv)
{
	struct physmem *pm = NULL;
	const char *path;
	int plain, named;

	if (argc != 3 || strcmp(argv[1], "--socket") != 0) {
		fprintf(stderr, "usage: physmem-oom-client --socket PATH\n");
		return 2;
	}
	path = argv[2];
	fail_nth = (long (*)(long))dlsym(RTLD_DEFAULT, "failmalloc_fail_nth");
	if (!fail_nth) {
		printf("SKIP: failmalloc.so is not preloaded\n");
		return 77;
	}
	if (physmem_connect(path, &pm) < 0) {
		printf("not ok - connect: %s\n", physmem_error_message(pm));
		return 1;
	}
	plain = sweep(path, &pm, false);
	named = plain < 0 ? -1 : sweep(path, &pm, true);
	physmem_disconnect(pm);
	if (plain < 0 || named < 0)
		return 1;	/* the failed check printed its line */
	printf("ok - every allocation of an Allocate failed once (%d unnamed, %d named calls failed): "
	       "each call said why, and the daemon kept no buffer of ours but %d named ones whose reply "
	       "was lost, as their calls said\n", plain, named, made_unseen);
	return 0;
}
