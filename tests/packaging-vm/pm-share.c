/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pm-share: the two sides of the "named buffer survives systemctl restart
 * physmemd" check of the packaging VM test. Built inside the test image
 * with the image's gcc against the installed libphysmem-dev (pkg-config
 * physmem), so it also proves that the -dev package is usable.
 *
 *   pm-share produce NAME SIZE PEER_UID
 *	allocate SIZE bytes named NAME, shared with PEER_UID, map it, fill it
 *	with pattern A, print "ready ID" and then obey commands on stdin, one
 *	per line, answering one line each:
 *	  check-a / check-b   verify pattern A / B through the original mapping
 *	  quit                exit (the named buffer stays in the daemon)
 *   pm-share consume NAME SIZE
 *	import NAME, map it, verify pattern A, write pattern B, exit 0 when
 *	all went well.
 *
 * Every failure prints one line "error: ..." and exits 1.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <physmem.h>

#define SEED_A 0x5au
#define SEED_B 0xa5u

static uint8_t pattern(size_t i, unsigned seed)
{
	return (uint8_t)((i * 131u + (i >> 12) * 7u + seed) & 0xffu);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(i, seed);
}

/* Returns the index of the first wrong byte, or n. */
static size_t verify(const uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern(i, seed))
			return i;
	return n;
}

static int check(struct physmem_buffer *buf, const uint8_t *p, size_t n, unsigned seed, const char *what)
{
	size_t bad;
	int r;

	r = physmem_buffer_begin_cpu(buf, PHYSMEM_SYNC_READ);
	if (r < 0) {
		printf("error: begin_cpu(read): %s\n", strerror(-r));
		return -1;
	}
	bad = verify(p, n, seed);
	physmem_buffer_end_cpu(buf, PHYSMEM_SYNC_READ);
	if (bad != n) {
		printf("error: pattern %s wrong at byte %zu of %zu (0x%02x, expected 0x%02x)\n", what, bad, n,
		       p[bad], pattern(bad, seed));
		return -1;
	}
	return 0;
}

static int write_pattern(struct physmem_buffer *buf, uint8_t *p, size_t n, unsigned seed)
{
	int r = physmem_buffer_begin_cpu(buf, PHYSMEM_SYNC_WRITE);

	if (r < 0) {
		printf("error: begin_cpu(write): %s\n", strerror(-r));
		return -1;
	}
	fill(p, n, seed);
	r = physmem_buffer_end_cpu(buf, PHYSMEM_SYNC_WRITE);
	if (r < 0) {
		printf("error: end_cpu(write): %s\n", strerror(-r));
		return -1;
	}
	return 0;
}

static int produce(const char *name, size_t size, uid_t peer)
{
	struct physmem *pm;
	struct physmem_buffer *buf;
	char line[64];
	uint8_t *p;
	int r;

	r = physmem_connect(NULL, &pm);
	if (r < 0) {
		printf("error: connect: %s\n", strerror(-r));
		return 1;
	}
	r = physmem_alloc_shared(pm, size, 0, PHYSMEM_CACHE_CACHED, name, &peer, 1, NULL, 0, &buf);
	if (r < 0) {
		printf("error: alloc: %s\n", physmem_error_message(pm));
		return 1;
	}
	if (strcmp(physmem_info_backend(physmem_buffer_info(buf)), "kmod") != 0) {
		printf("error: buffer backend is %s, not kmod\n", physmem_info_backend(physmem_buffer_info(buf)));
		return 1;
	}
	p = physmem_buffer_map(buf);
	if (!p) {
		printf("error: map: %s\n", strerror(errno));
		return 1;
	}
	if (physmem_buffer_size(buf) < size) {
		printf("error: buffer has %llu bytes, asked for %zu\n",
		       (unsigned long long)physmem_buffer_size(buf), size);
		return 1;
	}
	if (write_pattern(buf, p, size, SEED_A) < 0 || check(buf, p, size, SEED_A, "A") < 0)
		return 1;
	printf("ready %llu\n", (unsigned long long)physmem_buffer_id(buf));
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "check-a") == 0 || strcmp(line, "check-b") == 0) {
			bool b = line[6] == 'b';

			if (check(buf, p, size, b ? SEED_B : SEED_A, b ? "B" : "A") == 0)
				printf("ok %s\n", line);
		} else if (strcmp(line, "quit") == 0) {
			printf("bye\n");
			fflush(stdout);
			return 0;
		} else {
			printf("error: unknown command '%s'\n", line);
		}
		fflush(stdout);
	}
	return 0;
}

static int consume(const char *name, size_t size)
{
	struct physmem *pm;
	struct physmem_buffer *buf;
	uint8_t *p;
	int r;

	r = physmem_connect(NULL, &pm);
	if (r < 0) {
		printf("error: connect: %s\n", strerror(-r));
		return 1;
	}
	r = physmem_import(pm, name, &buf);
	if (r < 0) {
		printf("error: import %s: %s\n", name, physmem_error_message(pm));
		return 1;
	}
	if (physmem_buffer_size(buf) < size) {
		printf("error: imported buffer has %llu bytes, expected %zu\n",
		       (unsigned long long)physmem_buffer_size(buf), size);
		return 1;
	}
	p = physmem_buffer_map(buf);
	if (!p) {
		printf("error: map: %s\n", strerror(errno));
		return 1;
	}
	if (check(buf, p, size, SEED_A, "A") < 0)
		return 1;
	if (write_pattern(buf, p, size, SEED_B) < 0)
		return 1;
	printf("ok imported id %llu backend %s, pattern A intact, wrote pattern B\n",
	       (unsigned long long)physmem_buffer_id(buf), physmem_info_backend(physmem_buffer_info(buf)));
	physmem_buffer_close(buf);
	physmem_disconnect(pm);
	return 0;
}

int main(int argc, char **argv)
{
	char *end;
	unsigned long long size;

	if (argc < 4)
		goto usage;
	size = strtoull(argv[3], &end, 0);
	if (*end || size == 0)
		goto usage;
	if (strcmp(argv[1], "produce") == 0 && argc == 5)
		return produce(argv[2], (size_t)size, (uid_t)strtoul(argv[4], NULL, 10));
	if (strcmp(argv[1], "consume") == 0 && argc == 4)
		return consume(argv[2], (size_t)size);
usage:
	fprintf(stderr, "usage: pm-share produce NAME SIZE PEER_UID | consume NAME SIZE\n");
	return 2;
}
