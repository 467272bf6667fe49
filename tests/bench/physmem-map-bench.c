/* SPDX-License-Identifier: GPL-2.0 */
/*
 * physmem-map-bench: what allocating, mapping, fully touching and freeing a
 * buffer costs with physmem, against the kernel's own system dma-buf heap
 * and anonymous memory, in the same machine and the same run.  Run as root
 * inside the test VM (tests/bench/vm/90-map-bench.sh), static, no libraries.
 *
 *   physmem-map-bench [--size MIB]... [--reps N] [--warmup N]
 *
 * Methods, interleaved per repetition (the order rotates each repetition)
 * so that drift hits all of them equally:
 *   physmem-sg  PHYSMEM_IOC_ALLOC on /dev/physmem, cached, scatter-gather
 *   heap        DMA_HEAP_IOCTL_ALLOC on /dev/dma_heap/system (skipped when
 *               the kernel has no system heap)
 *   anon-thp    anonymous mmap, 2 MiB aligned, MADV_HUGEPAGE
 *   anon-4k     anonymous mmap, MADV_NOHUGEPAGE
 * Each repetition: allocate, mmap, write one byte per 4 KiB page, read a
 * sample back, munmap and close.  Timed with CLOCK_MONOTONIC per phase
 * (alloc, map, touch, teardown); the touch's minor faults come from
 * getrusage().  Default sizes 1024 and 64 MiB, 3 repetitions, 1 untimed
 * warm-up round per size.
 *
 * Prints a table (min/median/max per phase, in ms) and per size one line
 *   PHYSMEM-BENCH map <size>MiB physmem/heap=R physmem/anon-thp=R ...
 * with the ratios of the median totals.  Nothing is asserted on timings:
 * the exit status is 0 when every method that is not skipped ran and read
 * back what it wrote, 1 otherwise, 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <linux/dma-heap.h>

#include "uapi/physmem.h"

#define PAGE_4K		4096UL
#define HUGE_2M		(2UL << 20)
#define MAX_SIZES	8
#define MAX_REPS	32

enum phase { PH_ALLOC, PH_MAP, PH_TOUCH, PH_TEARDOWN, PH_TOTAL, PH_COUNT };
static const char *const phase_name[PH_COUNT] = { "alloc", "map", "touch", "teardown", "total" };

/* One repetition of one method. */
struct sample {
	double t[PH_COUNT];	/* seconds */
	long faults;		/* minor faults during the touch */
	long thp_kb;		/* AnonHugePages after the touch (anon only) */
};

enum { M_PHYSMEM, M_HEAP, M_THP, M_4K, M_COUNT };
static const char *const method_name[M_COUNT] = { "physmem-sg", "heap", "anon-thp", "anon-4k" };

/* Per method: skipped (with the reason), failed, and its samples. */
struct method_state {
	char skip[128];
	int failed;
	int n;
	struct sample s[MAX_REPS];
};

static char errmsg[256];

/* Seconds on CLOCK_MONOTONIC. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Minor faults of this process so far. */
static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* AnonHugePages of this process in kB (from smaps_rollup), or -1. */
static long anon_huge_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * Write one byte into every 4 KiB page (a value derived from the page
 * index, never 0), so that the whole buffer is faulted in.
 */
static void touch_all(volatile unsigned char *p, size_t size)
{
	for (size_t off = 0; off < size; off += PAGE_4K)
		p[off] = (unsigned char)((off / PAGE_4K) % 251 + 1);
}

/*
 * Read back the written byte of a sample of pages (first, last and 62
 * spread between) and one byte of each that was never written (must be
 * zero: every method hands out zeroed memory).  0 if all match.
 */
static int verify(const volatile unsigned char *p, size_t size)
{
	size_t pages = size / PAGE_4K;

	for (size_t i = 0; i < 64; i++) {
		size_t pg = i == 63 ? pages - 1 : i * (pages / 63);
		size_t off = pg * PAGE_4K;
		unsigned char want = (unsigned char)(pg % 251 + 1);

		if (p[off] != want || p[off + 1 + (i * 37) % (PAGE_4K - 1)] != 0) {
			snprintf(errmsg, sizeof(errmsg), "page %zu reads %u/%u, wrote %u/0", pg, p[off],
				 p[off + 1 + (i * 37) % (PAGE_4K - 1)], want);
			return -1;
		}
	}
	return 0;
}

/*
 * Touch and verify a mapping, filling the touch time and fault count;
 * with_thp also records AnonHugePages.  0 or -1 (errmsg set).
 */
static int touch_phase(unsigned char *p, size_t size, struct sample *s, int with_thp)
{
	long f0 = minflt();
	double t0 = now();

	touch_all(p, size);
	s->t[PH_TOUCH] = now() - t0;
	s->faults = minflt() - f0;
	s->thp_kb = with_thp ? anon_huge_kb() : -1;
	return verify(p, size);
}

/* One repetition with a dma-buf from an allocating ioctl (physmem or heap). */
static int run_dmabuf(int method, size_t size, struct sample *s)
{
	double t0 = now();
	unsigned char *p;
	int dev, fd, ret;

	if (method == M_PHYSMEM) {
		struct physmem_alloc a = { .size = sizeof(a), .length = size, .cache = PHYSMEM_MODE_CACHED };

		dev = open(PHYSMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		if (dev < 0) {
			snprintf(errmsg, sizeof(errmsg), "open %s: %s", PHYSMEM_DEVICE_PATH, strerror(errno));
			return -1;
		}
		ret = ioctl(dev, PHYSMEM_IOC_ALLOC, &a);
		fd = a.fd;
		if (ret == 0 && a.actual_length < size) {
			snprintf(errmsg, sizeof(errmsg), "actual_length %llu < %zu",
				 (unsigned long long)a.actual_length, size);
			close(fd);
			close(dev);
			return -1;
		}
	} else {
		struct dma_heap_allocation_data d = { .len = size, .fd_flags = O_RDWR | O_CLOEXEC };

		dev = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
		if (dev < 0) {
			snprintf(errmsg, sizeof(errmsg), "open /dev/dma_heap/system: %s", strerror(errno));
			return -1;
		}
		ret = ioctl(dev, DMA_HEAP_IOCTL_ALLOC, &d);
		fd = (int)d.fd;
	}
	if (ret < 0) {
		snprintf(errmsg, sizeof(errmsg), "alloc ioctl: %s", strerror(errno));
		close(dev);
		return -1;
	}
	close(dev);
	s->t[PH_ALLOC] = now() - t0;

	t0 = now();
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	s->t[PH_MAP] = now() - t0;
	if (p == MAP_FAILED) {
		snprintf(errmsg, sizeof(errmsg), "mmap: %s", strerror(errno));
		close(fd);
		return -1;
	}

	ret = touch_phase(p, size, s, 0);

	t0 = now();
	munmap(p, size);
	close(fd);
	s->t[PH_TEARDOWN] = now() - t0;
	return ret;
}

/* One repetition with anonymous memory, with or without THP. */
static int run_anon(int thp, size_t size, struct sample *s)
{
	double t0 = now();
	size_t len = thp ? size + HUGE_2M : size;
	unsigned char *raw, *p;
	int ret;

	s->t[PH_ALLOC] = 0;	/* nothing to allocate before the mapping */
	raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		snprintf(errmsg, sizeof(errmsg), "mmap: %s", strerror(errno));
		return -1;
	}
	p = raw;
	if (thp) {
		/* Align to 2 MiB (a huge page can back only an aligned 2 MiB). */
		uintptr_t a = ((uintptr_t)raw + HUGE_2M - 1) & ~(HUGE_2M - 1);
		size_t head = a - (uintptr_t)raw;

		p = (unsigned char *)a;
		if (head)
			munmap(raw, head);
		if (HUGE_2M - head)
			munmap(p + size, HUGE_2M - head);
	}
	if (madvise(p, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) < 0) {
		snprintf(errmsg, sizeof(errmsg), "madvise: %s", strerror(errno));
		munmap(p, size);
		return -1;
	}
	s->t[PH_MAP] = now() - t0;

	ret = touch_phase(p, size, s, 1);

	t0 = now();
	munmap(p, size);
	s->t[PH_TEARDOWN] = now() - t0;
	return ret;
}

/* Run one repetition of a method; fills s->t[PH_TOTAL]. */
static int run_method(int m, size_t size, struct sample *s)
{
	int ret;

	memset(s, 0, sizeof(*s));
	errmsg[0] = 0;
	if (m == M_PHYSMEM || m == M_HEAP)
		ret = run_dmabuf(m, size, s);
	else
		ret = run_anon(m == M_THP, size, s);
	s->t[PH_TOTAL] = s->t[PH_ALLOC] + s->t[PH_MAP] + s->t[PH_TOUCH] + s->t[PH_TEARDOWN];
	return ret;
}

/* qsort comparison of doubles. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Min, median and max of one phase over a method's samples. */
static void stats(const struct method_state *ms, int ph, double out[3])
{
	double v[MAX_REPS];

	for (int i = 0; i < ms->n; i++)
		v[i] = ms->s[i].t[ph];
	qsort(v, (size_t)ms->n, sizeof(v[0]), cmp_double);
	out[0] = v[0];
	out[1] = ms->n % 2 ? v[ms->n / 2] : (v[ms->n / 2 - 1] + v[ms->n / 2]) / 2;
	out[2] = v[ms->n - 1];
}

/* Median of a long field (faults or thp_kb) over a method's samples. */
static long median_long(const struct method_state *ms, int thp)
{
	long v[MAX_REPS];

	for (int i = 0; i < ms->n; i++)
		v[i] = thp ? ms->s[i].thp_kb : ms->s[i].faults;
	for (int i = 1; i < ms->n; i++)		/* insertion sort: n is tiny */
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			long t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[ms->n / 2];
}

/* The ratio of two methods' median totals as text, or why there is none. */
static void ratio(char *buf, size_t len, const struct method_state *a, const struct method_state *b)
{
	double x[3], y[3];

	if (a->skip[0] || b->skip[0])
		snprintf(buf, len, "skipped");
	else if (a->failed || b->failed || !a->n || !b->n)
		snprintf(buf, len, "failed");
	else {
		stats(a, PH_TOTAL, x);
		stats(b, PH_TOTAL, y);
		snprintf(buf, len, "%.2f", x[1] / y[1]);
	}
}

/* Print one size's table and its PHYSMEM-BENCH line. */
static void report(size_t mib, int reps, const struct method_state ms[M_COUNT])
{
	char rh[32], rt[32], r4[32];

	printf("\n%zu MiB: ms min/median/max over %d reps\n", mib, reps);
	printf("%-11s", "method");
	for (int ph = 0; ph < PH_COUNT; ph++)
		printf(" %22s", phase_name[ph]);
	printf(" %9s %9s\n", "faults", "thp-MiB");
	for (int m = 0; m < M_COUNT; m++) {
		printf("%-11s", method_name[m]);
		if (ms[m].skip[0]) {
			printf(" skipped: %s\n", ms[m].skip);
			continue;
		}
		if (ms[m].failed || !ms[m].n) {
			printf(" FAILED\n");
			continue;
		}
		for (int ph = 0; ph < PH_COUNT; ph++) {
			double v[3];
			char cell[64];

			stats(&ms[m], ph, v);
			snprintf(cell, sizeof(cell), "%.1f/%.1f/%.1f", v[0] * 1e3, v[1] * 1e3, v[2] * 1e3);
			printf(" %22s", cell);
		}
		printf(" %9ld", median_long(&ms[m], 0));
		if (m == M_THP || m == M_4K)
			printf(" %9ld\n", median_long(&ms[m], 1) / 1024);
		else
			printf(" %9s\n", "-");
	}
	ratio(rh, sizeof(rh), &ms[M_PHYSMEM], &ms[M_HEAP]);
	ratio(rt, sizeof(rt), &ms[M_PHYSMEM], &ms[M_THP]);
	ratio(r4, sizeof(r4), &ms[M_PHYSMEM], &ms[M_4K]);
	printf("PHYSMEM-BENCH map %zuMiB physmem/heap=%s physmem/anon-thp=%s physmem/anon-4k=%s "
	       "faults/touch=%ld anon-thp-huge=%ldMiB reps=%d\n",
	       mib, rh, rt, r4, ms[M_PHYSMEM].n ? median_long(&ms[M_PHYSMEM], 0) : -1L,
	       ms[M_THP].n ? median_long(&ms[M_THP], 1) / 1024 : -1L, reps);
}

/* Print how to call this program and exit 2. */
static void usage(void)
{
	fprintf(stderr, "usage: physmem-map-bench [--size MIB]... [--reps N] [--warmup N]\n");
	exit(2);
}

/* Parse a positive integer argument no larger than max, or exit via usage(). */
static long arg_num(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	static struct method_state ms[M_COUNT];
	size_t sizes[MAX_SIZES];
	int nsizes = 0, reps = 3, warmup = 1, bad = 0;
	char thp_mode[128] = "?";
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc && nsizes < MAX_SIZES)
			sizes[nsizes++] = (size_t)arg_num(argv[++i], 1, 1 << 20);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = (int)arg_num(argv[++i], 1, MAX_REPS);
		else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
			warmup = (int)arg_num(argv[++i], 0, 10);
		else
			usage();
	}
	if (!nsizes) {
		sizes[nsizes++] = 1024;
		sizes[nsizes++] = 64;
	}
	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
	if (f) {
		if (!fgets(thp_mode, sizeof(thp_mode), f))
			strcpy(thp_mode, "?");
		thp_mode[strcspn(thp_mode, "\n")] = 0;
		fclose(f);
	}
	printf("physmem-map-bench: reps %d, warm-up %d, THP %s\n", reps, warmup, thp_mode);

	for (int z = 0; z < nsizes; z++) {
		size_t size = sizes[z] << 20;

		memset(ms, 0, sizeof(ms));
		if (access("/dev/dma_heap/system", F_OK) < 0)
			snprintf(ms[M_HEAP].skip, sizeof(ms[M_HEAP].skip), "no /dev/dma_heap/system");
		for (int r = -warmup; r < reps; r++) {
			for (int k = 0; k < M_COUNT; k++) {
				/* rotate the order each repetition */
				int m = (k + (r < 0 ? 0 : r)) % M_COUNT;
				struct sample s;

				if (ms[m].skip[0] || ms[m].failed)
					continue;
				if (run_method(m, size, &s) < 0) {
					fprintf(stderr, "physmem-map-bench: %s %zu MiB: %s\n", method_name[m],
						sizes[z], errmsg);
					ms[m].failed = 1;
					bad = 1;
					continue;
				}
				if (r >= 0)
					ms[m].s[ms[m].n++] = s;
			}
		}
		report(sizes[z], reps, ms);
	}
	fflush(stdout);
	return bad;
}
