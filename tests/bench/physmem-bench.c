/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * physmem-bench: what a buffer from physmemd costs, against the baseline of
 * doing the same thing locally, measured in the same run.
 *
 *   physmem-bench [--socket PATH] [--size BYTES] [--rounds N]
 *
 * Prints, for each figure, the physmem time, the baseline time and their
 * ratio. Nothing is asserted: timings depend on the machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "physmem.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *what, double physmem, double baseline, const char *unit, double scale)
{
	printf("%-38s physmem %10.2f %s   baseline %10.2f %s   ratio %6.2fx\n", what, physmem * scale, unit,
	       baseline * scale, unit, physmem / baseline);
}

/* Allocate, map, touch one byte per page, unmap and free: through the daemon. */
static double physmem_cycle(struct physmem *pm, size_t size, unsigned rounds)
{
	double t0 = now();

	for (unsigned i = 0; i < rounds; i++) {
		struct physmem_buffer *buf;
		volatile char *p;

		if (physmem_alloc(pm, size, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
			fprintf(stderr, "physmem-bench: alloc: %s\n", physmem_error_message(pm));
			exit(1);
		}
		p = physmem_buffer_map(buf);
		for (size_t off = 0; off < size; off += 4096)
			p[off] = 1;
		physmem_buffer_free(buf);
	}
	return (now() - t0) / rounds;
}

/* The same locally: a sealed, populated memfd of our own. */
static double local_cycle(size_t size, unsigned rounds)
{
	double t0 = now();

	for (unsigned i = 0; i < rounds; i++) {
		int fd = memfd_create("bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		volatile char *p;

		if (fd < 0 || ftruncate(fd, (off_t)size) < 0 || fallocate(fd, 0, 0, (off_t)size) < 0)
			exit(1);
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			exit(1);
		for (size_t off = 0; off < size; off += 4096)
			p[off] = 1;
		munmap((void *)p, size);
		close(fd);
	}
	return (now() - t0) / rounds;
}

/* Seconds per byte to fill a mapping, best of a few passes. */
static double fill_rate(void *p, size_t size)
{
	double best = 1e9;

	for (int pass = 0; pass < 5; pass++) {
		double t0 = now(), t;

		memset(p, pass, size);
		t = now() - t0;
		if (t < best)
			best = t;
	}
	return best / (double)size;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'z' },
		{ "rounds", required_argument, NULL, 'r' },
		{},
	};
	const char *socket_path = NULL;
	size_t size = 1 << 20, big = 64 << 20;
	unsigned rounds = 200;
	struct physmem_buffer *buf;
	struct physmem *pm;
	void *local;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 's')
			socket_path = optarg;
		else if (opt == 'z')
			size = strtoull(optarg, NULL, 0);
		else if (opt == 'r')
			rounds = (unsigned)strtoul(optarg, NULL, 0);
		else
			return 2;
	}
	r = physmem_connect(socket_path, &pm);
	if (r < 0) {
		fprintf(stderr, "physmem-bench: connect: %s\n", strerror(-r));
		return 1;
	}

	report("alloc+map+touch+free (per buffer)", physmem_cycle(pm, size, rounds), local_cycle(size, rounds),
	       "us", 1e6);

	if (physmem_alloc(pm, big, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
		fprintf(stderr, "physmem-bench: alloc: %s\n", physmem_error_message(pm));
		return 1;
	}
	local = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (local == MAP_FAILED || !physmem_buffer_map(buf))
		return 1;
	/* Bytes per second: the baseline is ordinary anonymous memory. */
	{
		double pr = fill_rate(physmem_buffer_map(buf), big), lr = fill_rate(local, big);

		printf("%-38s physmem %10.2f GiB/s  baseline %10.2f GiB/s  ratio %6.2fx\n",
		       "memset of a 64 MiB cached buffer", 1 / pr / (1 << 30), 1 / lr / (1 << 30), lr / pr);
	}
	physmem_buffer_free(buf);
	munmap(local, big);
	physmem_disconnect(pm);
	return 0;
}
