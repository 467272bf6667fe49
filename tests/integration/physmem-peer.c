/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * physmem-peer: a libphysmem client for the integration tests, playing one
 * role per run so that tests can run several of them as different users.
 *
 *   physmem-peer produce NAME ALLOW_UID   allocate 1 MiB shared as NAME with
 *                                         ALLOW_UID, fill it with a pattern,
 *                                         print "ready ID", wait for stdin EOF
 *   physmem-peer consume NAME [OWNER]     import NAME (OWNER's only, if
 *                                         given), check the pattern, print "ok"
 *   physmem-peer hold N SIZE              allocate N unnamed buffers, print
 *                                         "ready", wait for stdin EOF
 *
 * Exit status: 0 ok, 1 error, 3 permission denied, 4 pattern mismatch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "physmem.h"

#define SHARE_SIZE (1u << 20)

static uint8_t pattern_byte(uint64_t i)
{
	return (uint8_t)((i * 2654435761u) >> 13);
}

static void wait_for_eof(void)
{
	char c;

	while (read(STDIN_FILENO, &c, 1) > 0)
		;
}

static int fail(struct physmem *pm, const char *what, int r)
{
	fprintf(stderr, "physmem-peer: %s: %s (%s)\n", what, pm ? physmem_error_message(pm) : strerror(-r),
		pm && physmem_error_name(pm) ? physmem_error_name(pm) : "-");
	return r == -EACCES ? 3 : 1;
}

static int produce(struct physmem *pm, const char *name, uid_t allow)
{
	struct physmem_buffer *buf;
	uint8_t *p;
	int r;

	r = physmem_alloc_shared(pm, SHARE_SIZE, 0, PHYSMEM_CACHE_CACHED, name, &allow, 1, NULL, 0, &buf);
	if (r < 0)
		return fail(pm, "alloc", r);
	p = physmem_buffer_map(buf);
	if (!p)
		return fail(NULL, "map", -errno);
	physmem_buffer_begin_cpu(buf, PHYSMEM_SYNC_WRITE);
	for (uint64_t i = 0; i < SHARE_SIZE; i++)
		p[i] = pattern_byte(i);
	physmem_buffer_end_cpu(buf, PHYSMEM_SYNC_WRITE);
	printf("ready %llu\n", (unsigned long long)physmem_buffer_id(buf));
	fflush(stdout);
	wait_for_eof();
	physmem_buffer_close(buf);
	return 0;
}

static int consume(struct physmem *pm, const char *name, const char *owner)
{
	struct physmem_buffer *buf;
	uint8_t *p;
	int r;

	if (owner)
		r = physmem_import_owned(pm, name, (uid_t)strtoul(owner, NULL, 10), &buf);
	else
		r = physmem_import(pm, name, &buf);
	if (r < 0)
		return fail(pm, "import", r);
	if (physmem_buffer_size(buf) != SHARE_SIZE) {
		fprintf(stderr, "physmem-peer: imported %llu bytes, expected %u\n",
			(unsigned long long)physmem_buffer_size(buf), SHARE_SIZE);
		return 4;
	}
	p = physmem_buffer_map(buf);
	if (!p)
		return fail(NULL, "map", -errno);
	physmem_buffer_begin_cpu(buf, PHYSMEM_SYNC_READ);
	for (uint64_t i = 0; i < SHARE_SIZE; i++)
		if (p[i] != pattern_byte(i)) {
			fprintf(stderr, "physmem-peer: byte %llu is %u, expected %u\n", (unsigned long long)i,
				p[i], pattern_byte(i));
			return 4;
		}
	physmem_buffer_end_cpu(buf, PHYSMEM_SYNC_READ);
	physmem_buffer_close(buf);
	printf("ok\n");
	return 0;
}

static int hold(struct physmem *pm, unsigned n, uint64_t size)
{
	struct physmem_buffer *buf;
	int r;

	for (unsigned i = 0; i < n; i++) {
		r = physmem_alloc(pm, size, 0, PHYSMEM_CACHE_CACHED, NULL, &buf);
		if (r < 0)
			return fail(pm, "alloc", r);
		/* Touch it through our own mapping, as a real client would. */
		memset(physmem_buffer_map(buf), 0x5a, size);
	}
	printf("ready\n");
	fflush(stdout);
	wait_for_eof();
	return 0;
}

int main(int argc, char **argv)
{
	struct physmem *pm;
	int r;

	if (argc < 3) {
		fprintf(stderr, "usage: physmem-peer produce NAME UID | consume NAME [OWNER] | hold N SIZE\n");
		return 2;
	}
	r = physmem_connect(NULL, &pm);
	if (r < 0) {
		fprintf(stderr, "physmem-peer: connect: %s\n", strerror(-r));
		return 1;
	}
	if (strcmp(argv[1], "produce") == 0 && argc == 4)
		r = produce(pm, argv[2], (uid_t)strtoul(argv[3], NULL, 10));
	else if (strcmp(argv[1], "consume") == 0 && (argc == 3 || argc == 4))
		r = consume(pm, argv[2], argc == 4 ? argv[3] : NULL);
	else if (strcmp(argv[1], "hold") == 0 && argc == 4)
		r = hold(pm, (unsigned)strtoul(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
	else
		r = 2;
	physmem_disconnect(pm);
	return r;
}
