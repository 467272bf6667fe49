/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A minimal libphysmem user: connect, print the daemon's status, allocate
 * and free one page. Exits 3 when the daemon cannot be reached, like
 * physmemctl.
 */
#include <stdio.h>
#include <string.h>

#include <physmem.h>

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : NULL;
	struct physmem_status *st;
	struct physmem_buffer *buf;
	struct physmem *pm;
	int r;

	r = physmem_connect(path, &pm);
	if (r < 0) {
		fprintf(stderr, "physmem-consumer: cannot connect to physmemd%s%s: %s\n",
			path ? " at " : "", path ? path : "", strerror(-r));
		return 3;
	}
	r = physmem_status(pm, &st);
	if (r < 0) {
		fprintf(stderr, "physmem-consumer: status: %s\n", physmem_error_message(pm));
		physmem_disconnect(pm);
		return 1;
	}
	printf("physmemd %s, backend %s\n", physmem_status_version(st), physmem_status_backend(st));
	physmem_status_free(st);
	r = physmem_alloc(pm, 4096, 0, PHYSMEM_CACHE_CACHED, NULL, &buf);
	if (r < 0) {
		fprintf(stderr, "physmem-consumer: alloc: %s\n", physmem_error_message(pm));
		physmem_disconnect(pm);
		return 1;
	}
	printf("buffer %llu, %llu bytes\n", (unsigned long long)physmem_buffer_id(buf),
	       (unsigned long long)physmem_buffer_size(buf));
	physmem_buffer_free(buf);
	physmem_disconnect(pm);
	return 0;
}
