/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * physmem-huge-bench: a large Allocate as the client sees it (the call, then
 * libphysmem's map, which populates every page), against the same memory
 * work done in-process, measured interleaved in the same run.
 *
 *   physmem-huge-bench [--socket PATH] [--size MIB]... [--runs N]
 *
 * Per size (64 MiB unless --size is given; 1024 for 1 GiB) and run, in an
 * order that rotates each run:
 *   physmem        physmem_alloc() + physmem_buffer_map() (the daemon picks
 *                  the pages: hugepages = auto), then Free, timed apart
 *   huge-populate  memfd_create(MFD_HUGETLB) + ftruncate + mmap +
 *                  MADV_POPULATE_WRITE (skipped when the 2 MiB pool has too
 *                  few free pages; the reason is printed)
 *   huge-fallocate memfd_create(MFD_HUGETLB) + ftruncate + fallocate + mmap +
 *                  MADV_POPULATE_WRITE (mapping the allocated pages)
 *   4k-fallocate   memfd_create + ftruncate + fallocate + mmap + MADV_POPULATE_WRITE
 *   4k-map-populate memfd_create + ftruncate + mmap(MAP_POPULATE)
 *   4k-madv-populate memfd_create + ftruncate + mmap + MADV_POPULATE_WRITE
 * The huge floor is the faster huge method by median, the 4 KiB floor the
 * fastest 4k method by median. The ratios are taken per run against that
 * floor's time in the same run, and printed min/median/max:
 *   PHYSMEM-BENCH huge size=64MiB pages=2048kB physmem/huge-floor=a/b/c physmem/4k-floor=a/b/c ...
 * Free: its reply is timed alone; right after it another connection's
 * Status is timed and compared with a Status on an idle daemon in the same
 * run; then the bench waits until the daemon uncharged the buffer (its
 * release, the punch, is done) before the next method runs. The count of
 * runs whose Status still showed the buffer charged is how often the daemon
 * answered another client while that release was still running:
 *   PHYSMEM-BENCH huge-free size=64MiB free_reply_ms=a/b/c status_after_free/idle=a/b/c teardown_ms=a/b/c
 *     status_served_during_teardown=k/n
 * Nothing is asserted on timings: exit 0 when every method that was not
 * skipped worked, 1 otherwise, 2 on bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/memfd.h>

#include "bench-util.h"
#include "physmem.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define MAX_SIZES 4
#define MAX_RUNS 64
#define HUGE_2M (2UL << 20)

enum method { M_PHYSMEM, M_HUGE_POP, M_HUGE_FALLOC, M_4K_FALLOC, M_4K_MAP_POP, M_4K_MADV_POP, M_COUNT };
static const char *const method_name[M_COUNT] = { "physmem", "huge-populate", "huge-fallocate", "4k-fallocate",
						   "4k-map-populate", "4k-madv-populate" };

/* One size's samples: seconds per run and method (< 0: not measured). */
struct result {
	double t[M_COUNT][MAX_RUNS];
	double free_reply[MAX_RUNS], status_idle[MAX_RUNS], status_after[MAX_RUNS], teardown[MAX_RUNS];
	bool during[MAX_RUNS];	/* that Status still saw the buffer charged: its release was not done */
	char skip_huge[160];
	unsigned long physmem_page_kb;
};

/* 2 MiB hugetlb pages free and not reserved. */
static long huge_available(void)
{
	static const char *const files[2] = { "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
					      "/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages" };
	long v[2];

	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");

		if (!f)
			return -1;
		if (fscanf(f, "%ld", &v[i]) != 1)
			v[i] = -1;
		fclose(f);
		if (v[i] < 0)
			return -1;
	}
	return v[0] - v[1];
}

/* One in-process method: make the memory usable, time it, tear it down; < 0 on failure. */
static double local_once(enum method m, size_t size)
{
	bool huge = m == M_HUGE_POP || m == M_HUGE_FALLOC;
	bool falloc = m == M_HUGE_FALLOC || m == M_4K_FALLOC;
	double t0 = bench_now(), t;
	void *p;
	int fd;

	fd = memfd_create("floor", MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 || (falloc && fallocate(fd, 0, 0, (off_t)size) < 0)) {
		fprintf(stderr, "physmem-huge-bench: %s: %s\n", method_name[m], strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (m == M_4K_MAP_POP ? MAP_POPULATE : 0), fd, 0);
	if (p == MAP_FAILED || (m != M_4K_MAP_POP && madvise(p, size, MADV_POPULATE_WRITE) < 0)) {
		fprintf(stderr, "physmem-huge-bench: %s: map/populate: %s\n", method_name[m], strerror(errno));
		if (p != MAP_FAILED)
			munmap(p, size);
		close(fd);
		return -1;
	}
	t = bench_now() - t0;
	((volatile char *)p)[size - 1] = 1;
	munmap(p, size);
	close(fd);
	return t;
}

/* Status on a connection of its own: seconds, < 0 on failure; *ret_bytes: the caller's charged bytes. */
static double status_once(struct physmem *pm, uint64_t *ret_bytes)
{
	struct physmem_status *st;
	double t0 = bench_now(), t;

	if (physmem_status(pm, &st) < 0) {
		fprintf(stderr, "physmem-huge-bench: status: %s\n", physmem_error_message(pm));
		return -1;
	}
	t = bench_now() - t0;
	if (ret_bytes)
		*ret_bytes = physmem_status_quota_bytes(st);
	physmem_status_free(st);
	return t;
}

/* One physmem Allocate + map, then Free with a Status from pm2 right after; < 0 on failure. */
static int physmem_once(struct physmem *pm, struct physmem *pm2, size_t size, struct result *res, unsigned run)
{
	struct physmem_buffer *buf;
	uint64_t bytes = 1, after = 0;
	double t0, t1, t2, t3, deadline;
	struct stat s;

	res->status_idle[run] = status_once(pm2, NULL);
	t0 = bench_now();
	if (physmem_alloc(pm, size, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
		fprintf(stderr, "physmem-huge-bench: alloc: %s\n", physmem_error_message(pm));
		return -1;
	}
	if (!physmem_buffer_map(buf)) {
		fprintf(stderr, "physmem-huge-bench: map: %s\n", strerror(errno));
		physmem_buffer_free(buf);
		return -1;
	}
	t1 = bench_now();
	res->t[M_PHYSMEM][run] = t1 - t0;
	if (fstat(physmem_buffer_fd(buf), &s) == 0)
		res->physmem_page_kb = (unsigned long)s.st_blksize / 1024;
	((volatile char *)physmem_buffer_map(buf))[size - 1] = 1;
	/* Free as libphysmem does it (the call while mapped), its reply alone, then another client's call. */
	t2 = bench_now();
	if (physmem_free_id(pm, physmem_buffer_id(buf)) < 0) {
		fprintf(stderr, "physmem-huge-bench: free: %s\n", physmem_error_message(pm));
		physmem_buffer_close(buf);
		return -1;
	}
	t3 = bench_now();
	res->free_reply[run] = t3 - t2;
	res->status_after[run] = status_once(pm2, &after);
	res->during[run] = after >= size;
	physmem_buffer_close(buf);
	/* The release is done when the buffer is no longer charged. */
	deadline = bench_now() + 30;
	while (bytes && bench_now() < deadline)
		if (status_once(pm, &bytes) < 0)
			return -1;
	res->teardown[run] = bench_now() - t2;
	if (bytes) {
		fprintf(stderr, "physmem-huge-bench: the daemon still charges a freed buffer after 30 s\n");
		return -1;
	}
	return res->status_idle[run] < 0 || res->status_after[run] < 0 ? -1 : 0;
}

/* The method with the lowest median among [from, to]; -1 if none was measured. */
static int fastest(const struct result *res, unsigned runs, int from, int to)
{
	double best = 0, st[3];
	int m, which = -1;

	for (m = from; m <= to; m++) {
		if (res->t[m][0] < 0)
			continue;
		bench_spread(res->t[m], runs, st);
		if (which < 0 || st[1] < best) {
			best = st[1];
			which = m;
		}
	}
	return which;
}

/* Print " key=min/median/max" of v scaled, with digits decimals. */
static void print_triple(const char *key, const double *v, unsigned runs, double scale, int digits)
{
	double st[3];

	bench_spread(v, runs, st);
	printf(" %s=%.*f/%.*f/%.*f", key, digits, st[0] * scale, digits, st[1] * scale, digits, st[2] * scale);
}

static void report(const struct result *res, size_t size, unsigned runs)
{
	int hf = fastest(res, runs, M_HUGE_POP, M_HUGE_FALLOC), kf = fastest(res, runs, M_4K_FALLOC, M_4K_MADV_POP);
	double ratio[MAX_RUNS], st[3];
	unsigned n_during, mib = (unsigned)(size >> 20);

	printf("\n%u MiB, %u runs: ms min/median/max\n", mib, runs);
	for (int m = 0; m < M_COUNT; m++) {
		if (res->t[m][0] < 0) {
			printf("  %-17s skipped%s%s\n", method_name[m], m <= M_HUGE_FALLOC && res->skip_huge[0] ? ": " : "",
			       m <= M_HUGE_FALLOC ? res->skip_huge : "");
			continue;
		}
		bench_spread(res->t[m], runs, st);
		printf("  %-17s %9.2f %9.2f %9.2f%s\n", method_name[m], st[0] * 1e3, st[1] * 1e3, st[2] * 1e3,
		       m == hf ? "  (huge floor)" : m == kf ? "  (4k floor)" : "");
	}
	printf("PHYSMEM-BENCH huge size=%uMiB pages=%lukB runs=%u", mib, res->physmem_page_kb, runs);
	print_triple("physmem_ms", res->t[M_PHYSMEM], runs, 1e3, 2);
	if (hf >= 0) {
		for (unsigned i = 0; i < runs; i++)
			ratio[i] = res->t[M_PHYSMEM][i] / res->t[hf][i];
		print_triple("huge_floor_ms", res->t[hf], runs, 1e3, 2);
		printf(" huge_floor=%s", method_name[hf]);
		print_triple("physmem/huge-floor", ratio, runs, 1, 2);
	} else {
		printf(" physmem/huge-floor=skipped");
	}
	for (unsigned i = 0; i < runs; i++)
		ratio[i] = res->t[M_PHYSMEM][i] / res->t[kf][i];
	print_triple("4k_floor_ms", res->t[kf], runs, 1e3, 2);
	printf(" 4k_floor=%s", method_name[kf]);
	print_triple("physmem/4k-floor", ratio, runs, 1, 2);
	putchar('\n');
	for (unsigned i = 0; i < runs; i++)
		ratio[i] = res->status_after[i] / res->status_idle[i];
	printf("PHYSMEM-BENCH huge-free size=%uMiB runs=%u", mib, runs);
	print_triple("free_reply_ms", res->free_reply, runs, 1e3, 3);
	print_triple("status_idle_us", res->status_idle, runs, 1e6, 0);
	print_triple("status_after_free_us", res->status_after, runs, 1e6, 0);
	print_triple("status_after_free/idle", ratio, runs, 1, 2);
	print_triple("teardown_ms", res->teardown, runs, 1e3, 2);
	n_during = 0;
	for (unsigned i = 0; i < runs; i++)
		n_during += res->during[i];
	printf(" status_served_during_teardown=%u/%u\n", n_during, runs);
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: physmem-huge-bench [--socket PATH] [--size MIB]... [--runs N]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "size", required_argument, NULL, 'z' },
		{ "runs", required_argument, NULL, 'r' },   { "help", no_argument, NULL, 'h' },
		{},
	};
	const char *socket_path = NULL;
	size_t sizes[MAX_SIZES];
	unsigned n_sizes = 0, runs = 5;
	struct physmem *pm = NULL, *pm2 = NULL;
	struct result *res;
	int c, failed = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		unsigned long v;

		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'z':
		case 'r':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v == 0 || (c == 'z' && (v % 2 || v > 65536 || n_sizes == MAX_SIZES)) ||
			    (c == 'r' && v > MAX_RUNS)) {
				fprintf(stderr, "physmem-huge-bench: bad --%s '%s' (sizes: even MiB, at most %d of them; "
						"runs: 1..%d)\n", c == 'z' ? "size" : "runs", optarg, MAX_SIZES, MAX_RUNS);
				return 2;
			}
			if (c == 'z')
				sizes[n_sizes++] = (size_t)v << 20;
			else
				runs = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (n_sizes == 0)
		sizes[n_sizes++] = 64UL << 20;
	c = physmem_connect(socket_path, &pm);
	if (c >= 0)
		c = physmem_connect(socket_path, &pm2);
	if (c < 0) {
		fprintf(stderr, "physmem-huge-bench: cannot connect to physmemd: %s\n", strerror(-c));
		physmem_disconnect(pm);
		return 1;
	}
	res = calloc(1, sizeof(*res));
	if (!res)
		return 1;
	printf("physmem-huge-bench: 2 MiB pages free and unreserved: %ld\n", huge_available());
	for (unsigned z = 0; z < n_sizes; z++) {
		size_t size = sizes[z];
		long avail = huge_available();

		memset(res, 0, sizeof(*res));
		for (int m = 0; m < M_COUNT; m++)
			res->t[m][0] = -1;
		if (avail < (long)(size / HUGE_2M))
			snprintf(res->skip_huge, sizeof(res->skip_huge), "%ld free 2 MiB pages, %zu needed (set "
				 "/proc/sys/vm/nr_hugepages)", avail < 0 ? 0 : avail, size / HUGE_2M);
		/* One untimed round warms every path, then runs rounds in a rotating order. */
		for (unsigned run = 0; run <= runs && !failed; run++) {
			struct result warm;

			for (int k = 0; k < M_COUNT && !failed; k++) {
				int m = (int)((k + run) % M_COUNT);
				struct result *r = run ? res : &warm;
				unsigned i = run ? run - 1 : 0;

				if ((m == M_HUGE_POP || m == M_HUGE_FALLOC) && res->skip_huge[0])
					continue;
				if (m == M_PHYSMEM) {
					failed = physmem_once(pm, pm2, size, r, i) < 0;
				} else {
					r->t[m][i] = local_once((enum method)m, size);
					failed = r->t[m][i] < 0;
				}
			}
		}
		if (failed)
			break;
		report(res, size, runs);
	}
	free(res);
	physmem_disconnect(pm2);
	physmem_disconnect(pm);
	return failed ? 1 : 0;
}
