// SPDX-License-Identifier: GPL-2.0
/*
 * physmem-vmtest.c: ioctl-level tests of physmem.ko, run inside the test VM.
 *
 * "physmem-vmtest CASE [ARGS]" runs one case and prints one line
 *   PHYSMEM-TEST <case> PASS|FAIL|SKIP <detail>
 * and exits 0, 1 or 77.  A few subcommands are tools for the case scripts
 * (mkdisk, hold-run, edu-copy, frag-hold, pool-list) and print no such line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>
#include <linux/dma-buf.h>

#include "../../kmod/uapi/physmem.h"
#include "edu-dma.h"
#include "vmtest-note.h"

#define KIB		1024ULL
#define MIB		(1024ULL * 1024)
#define PAGE		4096ULL
#define DISK_SEED	0xd15cULL
#define PARAM_DIR	"/sys/module/physmem/parameters"
#define STATS_DIR	"/sys/class/misc/physmem/stats"


/* ---- thin ioctl wrappers: 0 or -errno ---- */

static int px_open(void)
{
	return open(PHYSMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
}

static int px_alloc(int dev, uint64_t len, uint32_t flags, uint32_t cache,
		    struct physmem_alloc *ret)
{
	struct physmem_alloc a = { .size = sizeof(a), .flags = flags,
				   .length = len, .cache = cache };

	if (ioctl(dev, PHYSMEM_IOC_ALLOC, &a))
		return -errno;
	if (ret)
		*ret = a;
	return 0;
}

/* Allocate and return the dma-buf fd, or -errno. */
static int px_alloc_fd(int dev, uint64_t len, uint32_t flags, uint32_t cache)
{
	struct physmem_alloc a = { 0 };
	int r = px_alloc(dev, len, flags, cache, &a);

	return r ? r : a.fd;
}

struct px_segs {
	struct physmem_segments info;
	struct physmem_dma_segment *seg;
	uint32_t n;
};

/* SEGMENTS of binding @id of @fd (0: its own pages; count, then fetch) into @s. */
static int px_bind_segments(int dev, int fd, uint64_t id, struct px_segs *s)
{
	struct physmem_segments q = { .size = sizeof(q), .fd = fd,
				      .binding_id = id };

	memset(s, 0, sizeof(*s));
	if (ioctl(dev, PHYSMEM_IOC_SEGMENTS, &q))
		return -errno;
	s->seg = calloc(q.count ? q.count : 1, sizeof(*s->seg));
	if (!s->seg)
		return -ENOMEM;
	q.segments = (uintptr_t)s->seg;
	q.capacity = q.count;
	if (ioctl(dev, PHYSMEM_IOC_SEGMENTS, &q))
		return -errno;
	s->info = q;
	s->n = q.count;
	return 0;
}

/* SEGMENTS of @buf_fd's own pages into @s. */
static int px_segments(int dev, int buf_fd, struct px_segs *s)
{
	return px_bind_segments(dev, buf_fd, 0, s);
}

static int px_info(int dev, struct physmem_dev_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return ioctl(dev, PHYSMEM_IOC_INFO, info) ? -errno : 0;
}

static void *px_map(int fd, size_t len, off_t off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);

	return p == MAP_FAILED ? NULL : p;
}

static int px_sync(int fd, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };

	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) ? -errno : 0;
}

/* Bus address of byte @off of a buffer, and the bytes contiguous from it. */
static uint64_t px_addr(const struct px_segs *s, uint64_t off, uint64_t *left)
{
	uint32_t i;

	for (i = 0; i < s->n; i++) {
		if (off < s->seg[i].len) {
			if (left)
				*left = s->seg[i].len - off;
			return s->seg[i].addr + off;
		}
		off -= s->seg[i].len;
	}
	return UINT64_MAX;
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

/* ---- data patterns ---- */

static void fill(uint8_t *p, uint64_t len, uint64_t seed, uint64_t base)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = pat(seed, base + i);
}

/* Offset of the first byte that differs from the pattern, or -1. */
static long long verify(const uint8_t *p, uint64_t len, uint64_t seed,
			uint64_t base)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != pat(seed, base + i))
			return (long long)i;
	return -1;
}

static long long first_nonzero(const uint8_t *p, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return (long long)i;
	return -1;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* ---- DMA proof with the edu device ---- */

/* Copy [off, off + len) of buffer a into buffer b at the same offset. */
static int dma_copy(struct edu_dma *edu, const struct px_segs *a,
		    const struct px_segs *b, uint64_t off, uint32_t len)
{
	uint64_t la = 0, lb = 0, sa = px_addr(a, off, &la), sb = px_addr(b, off, &lb);
	int r;

	if (sa == UINT64_MAX || sb == UINT64_MAX || la < len || lb < len)
		return -EINVAL;
	r = edu_dma_to_device(edu, sa, 0, len);
	if (!r)
		r = edu_dma_to_ram(edu, 0, sb, len);
	return r;
}

struct dma_pair {
	int fa, fb;
	uint8_t *ma, *mb;
	uint64_t size;
	struct px_segs sa, sb;
};

static void dma_pair_close(struct dma_pair *p)
{
	if (p->ma)
		munmap(p->ma, p->size);
	if (p->mb)
		munmap(p->mb, p->size);
	if (p->fa >= 0)
		close(p->fa);
	if (p->fb >= 0)
		close(p->fb);
	free(p->sa.seg);
	free(p->sb.seg);
	memset(p, 0, sizeof(*p));
	p->fa = p->fb = -1;
}

/*
 * Buffer a gets a pattern, the device copies the 2 KiB chunks at @offs from
 * a to b; then b must hold the pattern exactly there and zeroes elsewhere.
 */
static int dma_check(struct edu_dma *edu, struct dma_pair *p,
		     const uint64_t *offs, int noffs, const char *what)
{
	uint8_t *copied = calloc(p->size / EDU_DMA_MAX, 1);
	long long bad;
	int i, r;

	if (!copied)
		FAIL("%s: no memory", what);
	bad = first_nonzero(p->ma, p->size);
	if (bad >= 0 || (bad = first_nonzero(p->mb, p->size)) >= 0) {
		free(copied);
		FAIL("%s: new buffer not zeroed at %lld", what, bad);
	}
	px_sync(p->fa, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	fill(p->ma, p->size, 0xA5, 0);
	px_sync(p->fa, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);

	for (i = 0; i < noffs; i++) {
		r = dma_copy(edu, &p->sa, &p->sb, offs[i], EDU_DMA_MAX);
		if (r) {
			free(copied);
			FAIL("%s: dma at %#llx: %s", what, (unsigned long long)offs[i],
			     strerror(-r));
		}
		copied[offs[i] / EDU_DMA_MAX] = 1;
	}

	px_sync(p->fb, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	for (uint64_t c = 0; c < p->size / EDU_DMA_MAX; c++) {
		const uint8_t *q = p->mb + c * EDU_DMA_MAX;

		bad = copied[c] ? verify(q, EDU_DMA_MAX, 0xA5, c * EDU_DMA_MAX)
				: first_nonzero(q, EDU_DMA_MAX);
		if (bad >= 0) {
			const char *kind = copied[c] ? "copied" : "untouched";

			free(copied);
			FAIL("%s: B wrong at %#llx (%s chunk)", what,
			     (unsigned long long)(c * EDU_DMA_MAX + bad), kind);
		}
	}
	px_sync(p->fb, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	free(copied);
	return 0;
}

static int dma_pair_alloc(int dev, struct dma_pair *p, uint64_t size,
			  uint32_t flags, uint32_t cache)
{
	int r;

	memset(p, 0, sizeof(*p));
	p->fa = p->fb = -1;
	p->size = size;
	p->fa = px_alloc_fd(dev, size, flags, cache);
	p->fb = px_alloc_fd(dev, size, flags, cache);
	if (p->fa < 0 || p->fb < 0)
		FAIL("alloc %llu flags %u cache %u: %s", (unsigned long long)size, flags,
		     cache, strerror(-(p->fa < 0 ? p->fa : p->fb)));
	r = px_segments(dev, p->fa, &p->sa);
	if (!r)
		r = px_segments(dev, p->fb, &p->sb);
	if (r)
		FAIL("segments: %s", strerror(-r));
	p->ma = px_map(p->fa, size, 0);
	p->mb = px_map(p->fb, size, 0);
	if (!p->ma || !p->mb)
		FAIL("mmap buffer: %s", strerror(errno));
	return 0;
}

/*
 * A pair of s/g buffers of @size, A of several segments. On a fresh machine
 * consecutive 4 MiB blocks are often adjacent and merge into one segment:
 * every other one of a row of 4 MiB blocks is freed first, so that A and B
 * are built from separate holes. The holes' pages may still sit in per-CPU
 * lists, not yet merged back into 4 MiB blocks (seen on 7.3: A in one
 * segment): a pair whose A is one run is held, so that the next pair comes
 * from elsewhere, up to 4 times.
 */
static int dma_pair_alloc_sg(int dev, struct dma_pair *p, uint64_t size, uint32_t cache)
{
	struct dma_pair held[4];
	int spacer[16], nheld = 0, r;

	for (;;) {
		for (int i = 0; i < 16; i++)
			spacer[i] = px_alloc_fd(dev, 4 * MIB, PHYSMEM_ALLOC_CONTIG, 0);
		for (int i = 0; i < 16; i += 2)
			if (spacer[i] >= 0)
				close(spacer[i]);
		r = dma_pair_alloc(dev, p, size, 0, cache);
		for (int i = 1; i < 16; i += 2)
			if (spacer[i] >= 0)
				close(spacer[i]);
		if (r || p->sa.n >= 2 || nheld == 4)
			break;
		held[nheld++] = *p;
	}
	for (int i = 0; i < nheld; i++)
		dma_pair_close(&held[i]);
	if (r)
		return 1;
	CHECK(p->sa.n >= 2, "%lluMiB s/g buffer A has only %u segment(s), %d more tries held",
	      (unsigned long long)(size / MIB), p->sa.n, nheld);
	return 0;
}

static int open_edu_dev(struct edu_dma *edu, int *dev)
{
	int r = edu_dma_open(edu);

	if (r)
		FAIL("edu device: %s", strerror(-r));
	*dev = px_open();
	if (*dev < 0)
		FAIL("open %s: %s", PHYSMEM_DEVICE_PATH, strerror(errno));
	return 0;
}

static int case_dma_contig(void)
{
	static const uint32_t caches[] = { PHYSMEM_MODE_CACHED,
		PHYSMEM_MODE_WC, PHYSMEM_MODE_UNCACHED };
	static const char *const names[] = { "cached", "wc", "uncached" };
	struct edu_dma edu;
	struct dma_pair p;
	int dev, i;

	if (open_edu_dev(&edu, &dev))
		return 1;
	for (i = 0; i < 3; i++) {
		uint64_t size = i ? 64 * KIB : 4 * MIB;
		uint64_t offs[] = { 0, size / 2 + EDU_DMA_MAX, size - EDU_DMA_MAX };

		if (dma_pair_alloc(dev, &p, size, PHYSMEM_ALLOC_CONTIG, caches[i]))
			return 1;
		CHECK(p.sa.n == 1 && p.sb.n == 1 && p.sa.seg[0].len == size,
		      "%s: contiguous buffer has %u segments", names[i], p.sa.n);
		CHECK(p.sa.info.cache == caches[i] &&
		      (p.sa.info.flags & PHYSMEM_BUF_CONTIG),
		      "%s: wrong cache/flags reported", names[i]);
		if (dma_check(&edu, &p, offs, 3, names[i]))
			return 1;
		note("%s %lluKiB A@%#llx B@%#llx; ",
		     names[i], size / KIB, p.sa.seg[0].addr, p.sb.seg[0].addr);
		dma_pair_close(&p);
	}
	edu_dma_close(&edu);
	close(dev);
	return 0;
}

static int case_dma_sg(void)
{
	uint64_t size = 12 * MIB, offs[64], big = 128 * MIB;
	struct edu_dma edu;
	struct dma_pair p;
	struct px_segs s;
	int dev, n = 0, fd, r;
	uint64_t pos = 0, total = 0;

	if (open_edu_dev(&edu, &dev))
		return 1;
	if (dma_pair_alloc_sg(dev, &p, size, PHYSMEM_MODE_CACHED))
		return 1;
	CHECK(p.sa.n <= 32 && p.sb.n <= 32,
	      "segment list not short: %u/%u for 12MiB", p.sa.n, p.sb.n);
	for (uint32_t i = 0; i < p.sa.n; i++) {
		CHECK(!(p.sa.seg[i].addr % PAGE) && !(p.sa.seg[i].len % PAGE),
		      "segment %u not page aligned", i);
		total += p.sa.seg[i].len;
	}
	CHECK(total == size, "segments add up to %llu", (unsigned long long)total);

	/* first and last chunk of every segment of A and of B */
	for (int which = 0; which < 2; which++) {
		const struct px_segs *s2 = which ? &p.sb : &p.sa;

		pos = 0;
		for (uint32_t i = 0; i < s2->n && n < 60; i++) {
			offs[n++] = pos;
			offs[n++] = pos + s2->seg[i].len - EDU_DMA_MAX;
			pos += s2->seg[i].len;
		}
	}
	/* drop duplicates */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (offs[j] == offs[i])
				offs[j--] = offs[--n];
	if (dma_check(&edu, &p, offs, n, "sg"))
		return 1;
	note("12MiB: A %u segs, B %u segs, %d chunks by DMA; ", p.sa.n,
	     p.sb.n, n);
	dma_pair_close(&p);

	/* ALLOC fills the caller's array itself (size 64): the first 4 */
	{
		struct physmem_dma_segment first[4];
		struct physmem_alloc a = { .size = sizeof(a), .length = big,
			.segments = (uintptr_t)first, .capacity = 4 };

		memset(first, 0xff, sizeof(first));
		CHECK(!ioctl(dev, PHYSMEM_IOC_ALLOC, &a), "alloc 128MiB: %s",
		      strerror(errno));
		fd = a.fd;
		r = px_segments(dev, fd, &s);
		CHECK(!r, "segments: %s", strerror(-r));
		CHECK(a.nr_segments == s.n && s.n >= 1,
		      "ALLOC says %u segments, SEGMENTS %u", a.nr_segments, s.n);
		for (uint32_t i = 0; i < 4; i++)
			CHECK(i < s.n ? !memcmp(&first[i], &s.seg[i], sizeof(first[i]))
				      : first[i].addr == UINT64_MAX,
			      "ALLOC's segment %u differs from SEGMENTS'", i);
	}
	CHECK(s.n <= big / PAGE / 64,
	      "128MiB s/g buffer has %u segments (too fragmented)", s.n);
	note("128MiB: %u segs (ALLOC's own list equal)", s.n);
	free(s.seg);
	close(fd);
	edu_dma_close(&edu);
	close(dev);
	return 0;
}

static int case_dma_pin(void)
{
	uint64_t size = 1 * MIB, off = 2 * PAGE, fsize = size + 4 * PAGE;
	uint64_t offs[] = { 0, 6 * PAGE + EDU_DMA_MAX, size - EDU_DMA_MAX };
	static struct physmem_dma_segment pinseg[256];
	struct physmem_pin pin = { .size = sizeof(pin) };
	struct edu_dma edu;
	struct px_segs sp, sb;
	uint8_t *mf, *mp, *mb;
	int dev, mfd, fb, r, i;
	long long bad;

	if (open_edu_dev(&edu, &dev))
		return 1;
	mfd = memfd_create("physmem-vmtest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(mfd >= 0, "memfd_create: %s", strerror(errno));
	CHECK(!ftruncate(mfd, (off_t)fsize), "ftruncate: %s", strerror(errno));
	mf = mmap(NULL, fsize, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	CHECK(mf != MAP_FAILED, "mmap memfd: %s", strerror(errno));
	fill(mf + off, size, 0x77, 0);
	CHECK(!fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK), "seal: %s",
	      strerror(errno));

	pin.memfd = mfd;
	pin.offset = off;
	pin.length = size;
	pin.segments = (uintptr_t)pinseg;
	pin.capacity = 256;
	CHECK(!ioctl(dev, PHYSMEM_IOC_PIN, &pin), "PIN: %s", strerror(errno));
	r = px_segments(dev, pin.fd, &sp);
	CHECK(!r, "segments: %s", strerror(-r));
	CHECK(sp.info.flags & PHYSMEM_BUF_PINNED, "pinned flag missing");
	CHECK(sp.n == pin.nr_segments, "nr_segments %u != %u", pin.nr_segments,
	      sp.n);
	CHECK(sp.n <= 256 && !memcmp(pinseg, sp.seg, sp.n * sizeof(*pinseg)),
	      "PIN's own segment list differs from SEGMENTS'");

	fb = px_alloc_fd(dev, size, PHYSMEM_ALLOC_CONTIG, PHYSMEM_MODE_CACHED);
	CHECK(fb >= 0, "alloc B: %s", strerror(-fb));
	r = px_segments(dev, fb, &sb);
	CHECK(!r, "segments B: %s", strerror(-r));
	mb = px_map(fb, size, 0);
	mp = px_map(pin.fd, size, 0);
	CHECK(mb && mp, "mmap: %s", strerror(errno));

	/* the pinned dma-buf shows the file's bytes */
	bad = verify(mp, size, 0x77, 0);
	CHECK(bad < 0, "pinned mapping differs from memfd at %lld", bad);

	/* memfd pages -> device -> B */
	for (i = 0; i < 3; i++) {
		r = dma_copy(&edu, &sp, &sb, offs[i], EDU_DMA_MAX);
		CHECK(!r, "dma memfd->B at %#llx: %s", (unsigned long long)offs[i], strerror(-r));
		bad = verify(mb + offs[i], EDU_DMA_MAX, 0x77, offs[i]);
		CHECK(bad < 0, "B wrong at %#llx", (unsigned long long)offs[i] + bad);
	}
	/* B -> device -> memfd pages, seen through the memfd itself */
	fill(mb, size, 0x99, 0);
	for (i = 0; i < 3; i++) {
		r = dma_copy(&edu, &sb, &sp, offs[i], EDU_DMA_MAX);
		CHECK(!r, "dma B->memfd: %s", strerror(-r));
		bad = verify(mf + off + offs[i], EDU_DMA_MAX, 0x99, offs[i]);
		CHECK(bad < 0, "memfd wrong at %#llx after DMA",
		      (unsigned long long)offs[i] + bad);
	}
	note("1MiB memfd range, %u segs, first @%#llx, 12 transfers",
	     sp.n, sp.seg[0].addr);
	munmap(mb, size);
	munmap(mp, size);
	munmap(mf, fsize);
	close(fb);
	close(pin.fd);
	close(mfd);
	free(sp.seg);
	free(sb.seg);
	edu_dma_close(&edu);
	close(dev);
	return 0;
}

/* ---- isolation ---- */

static int case_unpriv_open(void)
{
	int fd;

	CHECK(getuid() != 0 && geteuid() != 0, "running as root");
	fd = px_open();
	CHECK(fd < 0, "uid %u opened %s", getuid(), PHYSMEM_DEVICE_PATH);
	CHECK(errno == EACCES || errno == EPERM, "open: unexpected %s",
	      strerror(errno));
	note("uid %u: %s", getuid(), strerror(errno));
	return 0;
}

/* Expect mmap to fail with one of two errnos. */
static int expect_map_fail(int fd, size_t len, off_t off, int flags, int e1,
			   int e2, const char *what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, off);

	if (p != MAP_FAILED) {
		munmap(p, len);
		FAIL("%s: mmap succeeded", what);
	}
	if (errno != e1 && errno != e2)
		FAIL("%s: %s", what, strerror(errno));
	return 0;
}

/* Physical address of a locked page of ours, from /proc/self/pagemap. */
static uint64_t pagemap_phys(void *va)
{
	uint64_t ent = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	off_t o = (off_t)((uintptr_t)va / PAGE * 8);

	if (fd < 0)
		return 0;
	if (pread(fd, &ent, 8, o) != 8)
		ent = 0;
	close(fd);
	if (!(ent & (1ULL << 63)))
		return 0;
	return (ent & ((1ULL << 55) - 1)) * PAGE + (uintptr_t)va % PAGE;
}

static int case_isolation_mmap(void)
{
	uint64_t size = 64 * KIB, phys, mine;
	struct px_segs s;
	void *p, *own;
	int dev, fd, r;

	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));
	CHECK(write_file(PARAM_DIR "/allow_any_ram", "0") == 0,
	      "cannot set allow_any_ram");
	fd = px_alloc_fd(dev, size, PHYSMEM_ALLOC_CONTIG, PHYSMEM_MODE_CACHED);
	CHECK(fd >= 0, "alloc: %s", strerror(-fd));
	r = px_segments(dev, fd, &s);
	CHECK(!r, "segments: %s", strerror(-r));
	phys = s.seg[0].addr;

	/* dma-buf mapping limits */
	if (expect_map_fail(fd, size + PAGE, 0, MAP_SHARED, EINVAL, EINVAL,
			    "dmabuf map beyond size") ||
	    expect_map_fail(fd, PAGE, (off_t)size, MAP_SHARED, EINVAL, EINVAL,
			    "dmabuf map at offset=size") ||
	    expect_map_fail(fd, 2 * PAGE, (off_t)(size - PAGE), MAP_SHARED,
			    EINVAL, EINVAL, "dmabuf map straddling end") ||
	    expect_map_fail(fd, PAGE, 0, MAP_PRIVATE, EINVAL, EINVAL,
			    "dmabuf MAP_PRIVATE"))
		return 1;
	p = px_map(fd, size, 0);
	CHECK(p, "in-range map failed: %s", strerror(errno));
	munmap(p, size);

	/* physical mappings outside our buffers, as root */
	CHECK(posix_memalign(&own, PAGE, PAGE) == 0, "posix_memalign");
	memset(own, 1, PAGE);
	mlock(own, PAGE);
	mine = pagemap_phys(own);
	CHECK(mine, "pagemap gave no address");
	if (expect_map_fail(dev, PAGE, 0, MAP_SHARED, EPERM, EINVAL, "phys 0") ||
	    expect_map_fail(dev, PAGE, (off_t)(mine & ~(PAGE - 1)), MAP_SHARED,
			    EPERM, EINVAL, "phys of own heap page") ||
	    expect_map_fail(dev, PAGE, (off_t)(phys + size), MAP_SHARED, EPERM,
			    EINVAL, "phys just after buffer") ||
	    expect_map_fail(dev, 2 * PAGE, (off_t)(phys - PAGE), MAP_SHARED,
			    EPERM, EINVAL, "phys straddling start") ||
	    expect_map_fail(dev, size + PAGE, (off_t)phys, MAP_SHARED, EPERM,
			    EINVAL, "phys straddling end") ||
	    expect_map_fail(dev, PAGE, (off_t)(1ULL << 46), MAP_SHARED, EPERM,
			    EINVAL, "phys 64TiB") ||
	    expect_map_fail(dev, PAGE, (off_t)phys, MAP_PRIVATE, EINVAL, EPERM,
			    "phys MAP_PRIVATE"))
		return 1;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dev, (off_t)phys);
	CHECK(p != MAP_FAILED, "phys map of own buffer failed: %s",
	      strerror(errno));
	munmap(p, size);
	note("dmabuf bounds, MAP_PRIVATE, 7 phys ranges refused");
	free(s.seg);
	close(fd);
	close(dev);
	free(own);
	return 0;
}

static int case_phys_nocap(void)
{
	struct px_segs s;
	char line[256];
	unsigned long long capeff = ~0ULL;
	FILE *f = fopen("/proc/self/status", "re");
	int dev, fd, r;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &capeff) == 1)
			break;
	if (f)
		fclose(f);
	CHECK(!(capeff & (1ULL << 17)), "CAP_SYS_RAWIO still effective");
	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));
	fd = px_alloc_fd(dev, 64 * KIB, PHYSMEM_ALLOC_CONTIG, 0);
	CHECK(fd >= 0, "alloc: %s", strerror(-fd));
	r = px_segments(dev, fd, &s);
	CHECK(!r, "segments: %s", strerror(-r));
	if (expect_map_fail(dev, 64 * KIB, (off_t)s.seg[0].addr, MAP_SHARED,
			    EPERM, EPERM, "phys map without CAP_SYS_RAWIO"))
		return 1;
	note("root without CAP_SYS_RAWIO: EPERM for its own buffer");
	free(s.seg);
	close(fd);
	close(dev);
	return 0;
}

/* ---- classic physical-address mmap ---- */

static int phys_roundtrip(int dev, uint64_t len, uint32_t flags,
			  uint32_t cache, const char *what)
{
	struct physmem_dev_info info;
	struct px_segs s;
	uint8_t *pb, *pp;
	uint64_t off, plen;
	int fd, r, status;
	pid_t pid;

	fd = px_alloc_fd(dev, len, flags, cache);
	CHECK(fd >= 0, "%s alloc: %s", what, strerror(-fd));
	r = px_segments(dev, fd, &s);
	CHECK(!r, "segments: %s", strerror(-r));
	/* map the last segment, and in it a page in the middle */
	off = s.seg[s.n - 1].len / 2 & ~(PAGE - 1);
	plen = s.seg[s.n - 1].len - off;
	pp = mmap(NULL, plen, PROT_READ | PROT_WRITE, MAP_SHARED, dev,
		  (off_t)(s.seg[s.n - 1].addr + off));
	CHECK(pp != MAP_FAILED, "%s phys mmap: %s", what, strerror(errno));
	pb = px_map(fd, len, 0);
	CHECK(pb, "%s dmabuf mmap: %s", what, strerror(errno));
	off += len - s.seg[s.n - 1].len;	/* buffer offset of pp[0] */

	memcpy(pp, "hello", 6);
	CHECK(!memcmp(pb + off, "hello", 6), "%s: phys write not seen", what);
	memcpy(pb + off + 100, "world", 6);
	CHECK(!memcmp(pp + 100, "world", 6), "%s: dmabuf write not seen", what);

	/* the phys mapping alone keeps the buffer alive */
	munmap(pb, len);
	close(fd);
	r = px_info(dev, &info);
	CHECK(!r && info.buffers == 1, "%s: buffer gone while phys-mapped",
	      what);
	CHECK(!memcmp(pp, "hello", 6), "%s: data lost after close", what);

	/* a forked copy and a split of the mapping each hold the buffer */
	pid = fork();
	if (pid == 0)
		_exit(memcmp(pp, "hello", 6) ? 1 : 0);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
	      WIFEXITED(status) && !WEXITSTATUS(status),
	      "%s: forked child could not read the phys mapping", what);
	if (plen >= 3 * PAGE) {
		CHECK(!munmap(pp + PAGE, PAGE), "%s: split munmap", what);
		CHECK(!memcmp(pp, "hello", 6), "%s: data lost after split", what);
		munmap(pp + 2 * PAGE, plen - 2 * PAGE);
		r = px_info(dev, &info);
		CHECK(!r && info.buffers == 1, "%s: buffer gone while a split "
		      "part is mapped", what);
		plen = PAGE;
	}
	munmap(pp, plen);
	r = px_info(dev, &info);
	CHECK(!r && info.buffers == 0, "%s: buffer not freed after munmap",
	      what);
	note("%s @%#llx ok (fork, split); ", what, s.seg[s.n - 1].addr + off -
	     (len - s.seg[s.n - 1].len));
	free(s.seg);
	return 0;
}

static int case_phys_demo(void)
{
	int dev = px_open();

	CHECK(dev >= 0, "open: %s", strerror(errno));
	if (phys_roundtrip(dev, 64 * KIB, PHYSMEM_ALLOC_CONTIG,
			   PHYSMEM_MODE_CACHED, "contig") ||
	    phys_roundtrip(dev, 9 * MIB, 0, PHYSMEM_MODE_CACHED, "sg") ||
	    phys_roundtrip(dev, 64 * KIB, PHYSMEM_ALLOC_CONTIG,
			   PHYSMEM_MODE_WC, "wc"))
		return 1;
	close(dev);
	return 0;
}

/* First memory BAR of the edu device, as device memory to refuse. */
static uint64_t edu_bar_phys(void)
{
	struct edu_dma edu;
	unsigned long long start = 0;
	char path[400];
	FILE *f;

	if (edu_dma_open(&edu))
		return 0;
	snprintf(path, sizeof(path), "%s/resource", edu.path);
	edu_dma_close(&edu);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llx", &start) != 1)
		start = 0;
	fclose(f);
	return start;
}

static int case_phys_anyram(void)
{
	uint64_t phys, bar = edu_bar_phys();
	uint8_t *own, *pp;
	int dev, r;

	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));
	CHECK(posix_memalign((void **)&own, PAGE, PAGE) == 0, "posix_memalign");
	memset(own, 0, PAGE);
	CHECK(!mlock(own, PAGE), "mlock: %s", strerror(errno));
	phys = pagemap_phys(own);
	CHECK(phys, "no pagemap address");

	CHECK(!write_file(PARAM_DIR "/allow_any_ram", "0"), "set param");
	if (expect_map_fail(dev, PAGE, (off_t)phys, MAP_SHARED, EPERM, EPERM,
			    "heap page with allow_any_ram=0"))
		return 1;
	CHECK(!write_file(PARAM_DIR "/allow_any_ram", "1"), "set param");
	pp = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, dev,
		  (off_t)phys);
	r = pp == MAP_FAILED ? errno : 0;
	if (!r) {
		memcpy(pp, "hello", 6);
		if (memcmp(own, "hello", 6))
			r = -1;
		memcpy(own + 64, "world", 6);
		if (memcmp(pp + 64, "world", 6))
			r = -1;
		munmap(pp, PAGE);
	}
	if (!r && bar &&
	    expect_map_fail(dev, PAGE, (off_t)bar, MAP_SHARED, EPERM, EPERM,
			    "device BAR with allow_any_ram=1"))
		r = -1;
	if (!r && expect_map_fail(dev, PAGE, 0xfee00000, MAP_SHARED, EPERM,
				  EPERM, "LAPIC with allow_any_ram=1"))
		r = -1;
	write_file(PARAM_DIR "/allow_any_ram", "0");
	CHECK(r >= 0, "allow_any_ram=1 map of heap page: %s", strerror(r));
	CHECK(!r, "allow_any_ram=1 round trip failed");
	note("posix_memalign page @%#llx hello/world both ways; BAR %#llx and LAPIC refused",
	     (unsigned long long)phys, (unsigned long long)bar);
	close(dev);
	return 0;
}

/* ---- O_DIRECT into a mapped buffer ---- */

static int case_odirect(const char *disk, uint64_t size)
{
	static const uint32_t flags[] = { 0, PHYSMEM_ALLOC_CONTIG };
	int dev, dfd;

	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));
	dfd = open(disk, O_RDONLY | O_DIRECT | O_CLOEXEC);
	CHECK(dfd >= 0, "open %s O_DIRECT: %s", disk, strerror(errno));
	for (int i = 0; i < 2; i++) {
		uint64_t len = i ? 4 * MIB : size, at = i ? size - len : 0;
		long long bad;
		uint8_t *m;
		ssize_t n;
		int fd;

		fd = px_alloc_fd(dev, len, flags[i], PHYSMEM_MODE_CACHED);
		CHECK(fd >= 0, "alloc: %s", strerror(-fd));
		m = px_map(fd, len, 0);
		CHECK(m, "mmap: %s", strerror(errno));
		px_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
		n = pread(dfd, m, len, (off_t)at);
		CHECK(n == (ssize_t)len, "O_DIRECT pread into %s buffer: %zd (%s)",
		      i ? "contig" : "sg", n, n < 0 ? strerror(errno) : "short");
		px_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
		bad = verify(m, len, DISK_SEED, at);
		CHECK(bad < 0, "data wrong at %lld", bad);
		note("%s %lluMiB ok; ", i ? "contig" : "sg", len / MIB);
		munmap(m, len);
		close(fd);
	}
	close(dfd);
	close(dev);
	return 0;
}

/* Host side: write the pattern the O_DIRECT case expects. */
static int tool_mkdisk(const char *path, uint64_t size)
{
	uint8_t *buf = malloc(MIB);
	FILE *f = fopen(path, "we");

	if (!buf || !f)
		return 1;
	for (uint64_t off = 0; off < size; off += MIB) {
		fill(buf, MIB, DISK_SEED, off);
		if (fwrite(buf, 1, MIB, f) != MIB)
			return 1;
	}
	free(buf);
	return fclose(f) ? 1 : 0;
}

/* ---- lifecycle ---- */

static int check_zero(int dev, const char *when)
{
	struct physmem_dev_info info;
	int r = px_info(dev, &info);

	CHECK(!r, "INFO: %s", strerror(-r));
	CHECK(!info.buffers && !info.bytes && !info.pinned_buffers &&
	      !info.cache_bytes[0] && !info.cache_bytes[1] &&
	      !info.cache_bytes[2], "%s: counters not zero (%llu"
	      " buffers, %llu bytes)", when, info.buffers, info.bytes);
	CHECK(read_num(STATS_DIR "/buffers") == 0 &&
	      read_num(STATS_DIR "/bytes") == 0, "%s: sysfs stats not zero",
	      when);
	return 0;
}

static int case_cycles(int cycles)
{
	static const uint64_t sizes[] = { 4096, 12288, 65536, 1 * MIB, 5 * MIB,
					  4 * MIB, 100, 3 * MIB + 1 };
	struct physmem_dev_info info;
	int dev, fds0 = count_fds();

	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));
	if (check_zero(dev, "before"))
		return 1;
	for (int i = 0; i < cycles; i++) {
		uint64_t len = sizes[i % 8];
		uint32_t flags = (i % 8 == 5 || i % 3 == 0) && len <= 4 * MIB ?
				 PHYSMEM_ALLOC_CONTIG : 0;
		uint32_t cache = (i / 8) % 3;
		struct physmem_alloc a = { 0 };
		struct px_segs s;
		int r = px_alloc(dev, len, flags, cache, &a);

		CHECK(!r, "cycle %d: alloc %llu: %s", i, (unsigned long long)len, strerror(-r));
		CHECK(a.actual_length == ((len + PAGE - 1) & ~(PAGE - 1)),
		      "cycle %d: actual_length %llu", i, a.actual_length);
		if (i % 50 == 0) {
			uint8_t *m = px_map(a.fd, a.actual_length, 0);

			CHECK(m, "cycle %d: mmap: %s", i, strerror(errno));
			CHECK(first_nonzero(m, a.actual_length) < 0,
			      "cycle %d: not zeroed", i);
			memset(m, 0xff, a.actual_length);
			munmap(m, a.actual_length);
			r = px_info(dev, &info);
			CHECK(!r && info.buffers == 1 &&
			      info.bytes == a.actual_length &&
			      info.cache_bytes[cache] == a.actual_length,
			      "cycle %d: INFO wrong", i);
			CHECK(read_num(STATS_DIR "/buffers") == 1,
			      "cycle %d: sysfs buffers wrong", i);
		}
		if (i % 10 == 0) {
			r = px_segments(dev, a.fd, &s);
			CHECK(!r && s.n == a.nr_segments && s.info.id == a.id,
			      "cycle %d: segments mismatch", i);
			free(s.seg);
		}
		close(a.fd);
	}
	if (check_zero(dev, "after"))
		return 1;
	close(dev);
	CHECK(count_fds() == fds0, "fd leak: %d -> %d", fds0, count_fds());
	note("%d alloc/free cycles, counters zero", cycles);
	return 0;
}

struct bad_call {
	const char *what;
	int err, err2;
	int (*fn)(int dev, void *ctx);
};

struct bad_ctx {
	int memfd_unsealed, memfd_wseal, memfd_ok, memfd_written, tmpfile, devnull, buf;
	const void *ro;
};

/* Later designated initialisers override the defaults on purpose. */
#pragma GCC diagnostic ignored "-Woverride-init"
#define ALLOC_REQ(...) ((struct physmem_alloc){ .size = sizeof(struct physmem_alloc), \
	.length = 4096, __VA_ARGS__ })

static int bad_alloc(int dev, struct physmem_alloc a)
{
	int r = ioctl(dev, PHYSMEM_IOC_ALLOC, &a) ? -errno : 0;

	if (!r)
		close(a.fd);
	return r;
}

static int b_size0(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.size = 0)); }
static int b_size8(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.size = 8)); }
static int b_sizehuge(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.size = 0xffffffff)); }
static int b_len0(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.length = 0)); }
static int b_lenmax(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.length = UINT64_MAX)); }
static int b_lenwrap(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.length = UINT64_MAX - 4000)); }
static int b_len1t(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.length = 1ULL << 40)); }
static int b_contig8m(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.length = 8 * MIB, .flags = PHYSMEM_ALLOC_CONTIG)); }
static int b_flags(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.flags = 0x80)); }
static int b_cache3(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.cache = 3)); }
static int b_cachemax(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.cache = 0xffffffff)); }
static int b_reserved(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.reserved = 1)); }
static int b_outfd(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.fd = 5)); }
static int b_reserved2(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.reserved2 = 1)); }
static int b_segnull(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.capacity = 4)); }
static int b_segptr1(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.segments = 1, .capacity = 4)); }
static int b_segro(int d, void *c) { struct bad_ctx *x = c; return bad_alloc(d, ALLOC_REQ(.segments = (uintptr_t)x->ro, .capacity = 4)); }
static int b_null(int d, void *c) { (void)c; return ioctl(d, PHYSMEM_IOC_ALLOC, NULL) ? -errno : 0; }
static int b_ptr1(int d, void *c) { (void)c; return ioctl(d, PHYSMEM_IOC_ALLOC, (void *)1) ? -errno : 0; }
static int b_kptr(int d, void *c) { (void)c; return ioctl(d, PHYSMEM_IOC_ALLOC, (void *)0xffff888000000000ULL) ? -errno : 0; }

/* A valid request in read-only memory: the reply cannot be written. */
static int b_readonly(int d, void *c)
{
	struct bad_ctx *x = c;

	return ioctl(d, PHYSMEM_IOC_ALLOC, x->ro) ? -errno : 0;
}

static int b_bigtail(int d, void *c)
{
	struct { struct physmem_alloc a; uint64_t extra; } big = {
		.a = ALLOC_REQ(.size = sizeof(big)), .extra = 1 };

	(void)c;
	return ioctl(d, PHYSMEM_IOC_ALLOC, &big) ? -errno : 0;
}

static int b_badnr(int d, void *c) { (void)c; return ioctl(d, _IOWR(PHYSMEM_IOC_MAGIC, 0x7f, struct physmem_alloc), NULL) ? -errno : 0; }
static int b_badtype(int d, void *c) { (void)c; return ioctl(d, _IOWR('x', 1, struct physmem_alloc), NULL) ? -errno : 0; }
static int b_baddir(int d, void *c) { (void)c; return ioctl(d, _IO(PHYSMEM_IOC_MAGIC, 1)) ? -errno : 0; }
static int b_tcgets(int d, void *c) { (void)c; return ioctl(d, 0x5401, NULL) ? -errno : 0; }

static int seg_call(int d, int fd, uint64_t ptr, uint32_t cap, uint32_t size)
{
	struct physmem_segments q = { .size = size, .fd = fd, .segments = ptr,
				      .capacity = cap };

	return ioctl(d, PHYSMEM_IOC_SEGMENTS, &q) ? -errno : 0;
}

static int b_seg_badfd(int d, void *c) { (void)c; return seg_call(d, -1, 0, 0, sizeof(struct physmem_segments)); }
static int b_seg_closedfd(int d, void *c) { (void)c; return seg_call(d, 999, 0, 0, sizeof(struct physmem_segments)); }
static int b_seg_devnull(int d, void *c) { struct bad_ctx *x = c; return seg_call(d, x->devnull, 0, 0, sizeof(struct physmem_segments)); }
static int b_seg_memfd(int d, void *c) { struct bad_ctx *x = c; return seg_call(d, x->memfd_ok, 0, 0, sizeof(struct physmem_segments)); }
static int b_seg_self(int d, void *c) { (void)c; return seg_call(d, d, 0, 0, sizeof(struct physmem_segments)); }
static int b_seg_nullarr(int d, void *c) { struct bad_ctx *x = c; return seg_call(d, x->buf, 0, 4, sizeof(struct physmem_segments)); }
static int b_seg_ptr1(int d, void *c) { struct bad_ctx *x = c; return seg_call(d, x->buf, 1, 4, sizeof(struct physmem_segments)); }
static int b_seg_wrap(int d, void *c) { struct bad_ctx *x = c; return seg_call(d, x->buf, UINT64_MAX - 15, 0xffffffff, sizeof(struct physmem_segments)); }
static int b_seg_ro(int d, void *c) { struct bad_ctx *x = c; return seg_call(d, x->buf, (uintptr_t)x->ro, 4, sizeof(struct physmem_segments)); }
static int b_seg_size(int d, void *c) { struct bad_ctx *x = c; return seg_call(d, x->buf, 0, 0, 4); }

static int pin_call(int d, int memfd, uint64_t off, uint64_t len, uint32_t flags)
{
	struct physmem_pin p = { .size = sizeof(p), .memfd = memfd,
				 .offset = off, .length = len, .flags = flags };
	int r = ioctl(d, PHYSMEM_IOC_PIN, &p) ? -errno : 0;

	if (!r)
		close(p.fd);
	return r;
}

static int b_pin_badfd(int d, void *c) { (void)c; return pin_call(d, -1, 0, 4096, 0); }
static int b_pin_devnull(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->devnull, 0, 4096, 0); }
static int b_pin_tmpfile(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->tmpfile, 0, 4096, 0); }
static int b_pin_unsealed(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->memfd_unsealed, 0, 4096, 0); }
static int b_pin_wseal(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->memfd_wseal, 0, 4096, 0); }
static int b_pin_unaligned(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->memfd_ok, 100, 4096, 0); }
static int b_pin_len0(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->memfd_ok, 0, 0, 0); }
static int b_pin_lenodd(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->memfd_ok, 0, 100, 0); }
static int b_pin_beyond(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->memfd_ok, 4096, 64 * 1024, 0); }
static int b_pin_wrap(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->memfd_ok, UINT64_MAX - 4095, 8192, 0); }
static int b_pin_flags(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->memfd_ok, 0, 4096, 1); }
static int b_pin_dmabuf(int d, void *c) { struct bad_ctx *x = c; return pin_call(d, x->buf, 0, 4096, 0); }

/* PIN with its own segment array (size 64) that cannot be written. */
static int b_pin_segs(int d, void *c)
{
	struct bad_ctx *x = c;
	struct physmem_pin p = { .size = sizeof(p), .memfd = x->memfd_written,
				 .length = 4096, .segments = 1, .capacity = 1 };
	int r = ioctl(d, PHYSMEM_IOC_PIN, &p) ? -errno : 0;

	if (!r)
		close(p.fd);
	return r;
}

static int b_pin_reserved2(int d, void *c)
{
	struct bad_ctx *x = c;
	struct physmem_pin p = { .size = sizeof(p), .memfd = x->memfd_ok,
				 .length = 4096, .reserved2 = 1 };
	int r = ioctl(d, PHYSMEM_IOC_PIN, &p) ? -errno : 0;

	if (!r)
		close(p.fd);
	return r;
}

static int b_info_small(int d, void *c)
{
	struct physmem_dev_info i = { .size = 16 };

	(void)c;
	return ioctl(d, PHYSMEM_IOC_INFO, &i) ? -errno : 0;
}

static int query_call(int d, __u64 id, __u32 flags, __u64 length)
{
	struct physmem_query q = { .size = sizeof(q), .flags = flags, .id = id, .length = length };

	return ioctl(d, PHYSMEM_IOC_QUERY, &q) ? -errno : 0;
}

static int b_query_unknown(int d, void *c) { (void)c; return query_call(d, UINT64_MAX, 0, 0); }
static int b_query_id0(int d, void *c) { (void)c; return query_call(d, 0, 0, 0); }
static int b_query_flags(int d, void *c) { (void)c; return query_call(d, 1, 1, 0); }
static int b_query_length(int d, void *c) { (void)c; return query_call(d, 1, 0, 4096); }

static int bind_call(int d, int fd, uint32_t flags, uint16_t dir, uint8_t bus)
{
	struct physmem_bind b = { .size = sizeof(b), .fd = fd, .flags = flags,
				  .dir = dir, .pci_bus = bus, .pci_devfn = 0xff };

	return ioctl(d, PHYSMEM_IOC_BIND, &b) ? -errno : 0;
}

static int b_bind_nodev(int d, void *c) { struct bad_ctx *x = c; return bind_call(d, x->buf, 0, 0, 0xfe); }
static int b_bind_flags(int d, void *c) { struct bad_ctx *x = c; return bind_call(d, x->buf, 1, 0, 0xfe); }
static int b_bind_dir(int d, void *c) { struct bad_ctx *x = c; return bind_call(d, x->buf, 0, 3, 0xfe); }
static int b_bind_devnull(int d, void *c) { struct bad_ctx *x = c; return bind_call(d, x->devnull, 0, 0, 0xfe); }

static int b_unbind_unknown(int d, void *c)
{
	struct bad_ctx *x = c;
	struct physmem_unbind u = { .size = sizeof(u), .fd = x->buf, .binding_id = 12345 };

	return ioctl(d, PHYSMEM_IOC_UNBIND, &u) ? -errno : 0;
}

static int b_seg_binding(int d, void *c)
{
	struct bad_ctx *x = c;
	struct physmem_segments q = { .size = sizeof(q), .fd = x->buf, .binding_id = 12345 };

	return ioctl(d, PHYSMEM_IOC_SEGMENTS, &q) ? -errno : 0;
}
/* The first pool index that does not exist (0 without pools): -ENODEV. */
static int b_pool_none(int d, void *c)
{
	struct physmem_pool_info i = { .size = sizeof(i) };

	(void)c;
	while (!ioctl(d, PHYSMEM_IOC_POOL_INFO, &i))
		i.index++;
	return bad_alloc(d, ALLOC_REQ(.flags = PHYSMEM_ALLOC_POOL, .pool = i.index));
}

static int b_pool_status(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.pool_status = 1)); }
static int b_pool_noflag(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.pool = 1)); }
static int b_pool_ver1(int d, void *c) { (void)c; return bad_alloc(d, ALLOC_REQ(.size = PHYSMEM_ALLOC_SIZE_VER1, .flags = PHYSMEM_ALLOC_POOL)); }

static int pool_info_call(int d, uint32_t size, uint32_t index)
{
	struct physmem_pool_info i = { .size = size, .index = index };

	return ioctl(d, PHYSMEM_IOC_POOL_INFO, &i) ? -errno : 0;
}

static int b_pinfo_none(int d, void *c) { (void)c; return pool_info_call(d, sizeof(struct physmem_pool_info), UINT32_MAX); }
static int b_pinfo_small(int d, void *c) { (void)c; return pool_info_call(d, 16, 0); }
static int b_pinfo_null(int d, void *c) { (void)c; return ioctl(d, PHYSMEM_IOC_POOL_INFO, NULL) ? -errno : 0; }

static const struct bad_call bad_calls[] = {
	{ "alloc size=0", EINVAL, 0, b_size0 },
	{ "alloc size=8", EINVAL, 0, b_size8 },
	{ "alloc size=4G", E2BIG, 0, b_sizehuge },
	{ "alloc nonzero tail", E2BIG, 0, b_bigtail },
	{ "alloc length=0", EINVAL, 0, b_len0 },
	{ "alloc length=max", EINVAL, 0, b_lenmax },
	{ "alloc length wraps", EINVAL, 0, b_lenwrap },
	{ "alloc length=1TiB", EINVAL, 0, b_len1t },
	{ "alloc contig 8MiB", EINVAL, 0, b_contig8m },
	{ "alloc bad flags", EINVAL, 0, b_flags },
	{ "alloc cache=3", EINVAL, 0, b_cache3 },
	{ "alloc cache=max", EINVAL, 0, b_cachemax },
	{ "alloc reserved", EINVAL, 0, b_reserved },
	{ "alloc out fd set", EINVAL, 0, b_outfd },
	{ "alloc reserved2", EINVAL, 0, b_reserved2 },
	{ "alloc segments NULL, capacity 4", EFAULT, 0, b_segnull },
	{ "alloc segments ptr 1", EFAULT, 0, b_segptr1 },
	{ "alloc read-only segments", EFAULT, 0, b_segro },
	{ "alloc NULL", EFAULT, 0, b_null },
	{ "alloc ptr 1", EFAULT, 0, b_ptr1 },
	{ "alloc kernel ptr", EFAULT, 0, b_kptr },
	{ "alloc read-only reply", EFAULT, 0, b_readonly },
	{ "bad nr", ENOTTY, 0, b_badnr },
	{ "bad type", ENOTTY, 0, b_badtype },
	{ "bad dir", ENOTTY, 0, b_baddir },
	{ "TCGETS", ENOTTY, 0, b_tcgets },
	{ "segments fd -1", EBADF, 0, b_seg_badfd },
	{ "segments closed fd", EBADF, 0, b_seg_closedfd },
	{ "segments /dev/null", EINVAL, 0, b_seg_devnull },
	{ "segments memfd", EINVAL, 0, b_seg_memfd },
	{ "segments /dev/physmem", EINVAL, 0, b_seg_self },
	{ "segments NULL array", EFAULT, 0, b_seg_nullarr },
	{ "segments array 1", EFAULT, 0, b_seg_ptr1 },
	{ "segments array wraps", EFAULT, 0, b_seg_wrap },
	{ "segments read-only array", EFAULT, 0, b_seg_ro },
	{ "segments size=4", EINVAL, 0, b_seg_size },
	{ "pin fd -1", EBADF, 0, b_pin_badfd },
	{ "pin /dev/null", EINVAL, 0, b_pin_devnull },
	{ "pin tmpfs file", EINVAL, 0, b_pin_tmpfile },
	{ "pin unsealed memfd", EINVAL, 0, b_pin_unsealed },
	{ "pin F_SEAL_WRITE memfd", EINVAL, 0, b_pin_wseal },
	{ "pin unaligned offset", EINVAL, 0, b_pin_unaligned },
	{ "pin length 0", EINVAL, 0, b_pin_len0 },
	{ "pin unaligned length", EINVAL, 0, b_pin_lenodd },
	{ "pin beyond file", EINVAL, 0, b_pin_beyond },
	{ "pin offset wraps", EINVAL, 0, b_pin_wrap },
	{ "pin flags", EINVAL, 0, b_pin_flags },
	{ "pin a dma-buf", EINVAL, 0, b_pin_dmabuf },
	{ "pin segments ptr 1", EFAULT, 0, b_pin_segs },
	{ "pin reserved2", EINVAL, 0, b_pin_reserved2 },
	{ "info size=16", EINVAL, 0, b_info_small },
	{ "query unknown id", ENOENT, 0, b_query_unknown },
	{ "query id 0", ENOENT, 0, b_query_id0 },
	{ "query flags", EINVAL, 0, b_query_flags },
	{ "query length set", EINVAL, 0, b_query_length },
	{ "bind no such device", ENODEV, 0, b_bind_nodev },
	{ "bind flags", EINVAL, 0, b_bind_flags },
	{ "bind dir 3", EINVAL, 0, b_bind_dir },
	{ "bind /dev/null", EINVAL, 0, b_bind_devnull },
	{ "unbind unknown id", ENOENT, 0, b_unbind_unknown },
	{ "segments unknown binding", ENOENT, 0, b_seg_binding },
	{ "alloc from a pool that does not exist", ENODEV, 0, b_pool_none },
	{ "alloc pool_status set", EINVAL, 0, b_pool_status },
	{ "alloc pool without PHYSMEM_ALLOC_POOL", EINVAL, 0, b_pool_noflag },
	{ "alloc PHYSMEM_ALLOC_POOL in a VER1 struct", EINVAL, 0, b_pool_ver1 },
	{ "pool info index max", ENOENT, 0, b_pinfo_none },
	{ "pool info size=16", EINVAL, 0, b_pinfo_small },
	{ "pool info NULL", EFAULT, 0, b_pinfo_null },
};

static int sealed_memfd(unsigned seals)
{
	int fd = memfd_create("bad", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, 16384) ||
	    (seals && fcntl(fd, F_ADD_SEALS, seals)))
		return -1;
	return fd;
}

static int case_bad_ioctls(int rounds)
{
	const int n = (int)(sizeof(bad_calls) / sizeof(bad_calls[0]));
	static const struct physmem_alloc ro_req = ALLOC_REQ(.length = 8192);
	struct bad_ctx x;
	int dev, fds0, calls = 0, r;
	char tmpl[] = "/tmp/physmem-badXXXXXX";

	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));
	if (check_zero(dev, "before"))
		return 1;
	x.memfd_unsealed = sealed_memfd(0);
	x.memfd_wseal = sealed_memfd(F_SEAL_SHRINK | F_SEAL_WRITE);
	x.memfd_ok = sealed_memfd(F_SEAL_SHRINK);
	x.memfd_written = sealed_memfd(F_SEAL_SHRINK);
	CHECK(x.memfd_written >= 0 && pwrite(x.memfd_written, tmpl, 16, 0) == 16,
	      "setup: written memfd");
	x.tmpfile = mkostemp(tmpl, O_CLOEXEC);
	x.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	x.buf = px_alloc_fd(dev, 4096, 0, 0);
	x.ro = &ro_req;
	CHECK(x.memfd_unsealed >= 0 && x.memfd_wseal >= 0 && x.memfd_ok >= 0 &&
	      x.tmpfile >= 0 && x.devnull >= 0 && x.buf >= 0, "setup failed");
	CHECK(!ftruncate(x.tmpfile, 16384), "ftruncate tmp");
	unlink(tmpl);
	fds0 = count_fds();

	for (int round = 0; round < rounds; round++) {
		for (int i = 0; i < n; i++) {
			const struct bad_call *b = &bad_calls[i];

			r = b->fn(dev, &x);
			calls++;
			CHECK(r == -b->err || (b->err2 && r == -b->err2),
			      "%s: got %s, want %s", b->what,
			      r ? strerror(-r) : "success", strerror(b->err));
		}
	}
	CHECK(count_fds() == fds0, "fd leak: %d -> %d", fds0, count_fds());

	/* the limits: max_total_mb, then max_buffer_mb */
	CHECK(!write_file(PARAM_DIR "/max_total_mb", "16"), "set max_total_mb");
	{
		int f1 = px_alloc_fd(dev, 8 * MIB, 0, 0);
		int f2 = px_alloc_fd(dev, 8 * MIB, 0, 0);

		r = f1 >= 0 && f2 == -ENOMEM;
		if (f1 >= 0)
			close(f1);
		if (f2 >= 0)
			close(f2);
	}
	write_file(PARAM_DIR "/max_total_mb", "0");
	CHECK(r, "max_total_mb=16 did not refuse a second 8MiB buffer");
	CHECK(!write_file(PARAM_DIR "/max_buffer_mb", "1"), "set max_buffer_mb");
	r = px_alloc_fd(dev, 2 * MIB, 0, 0);
	write_file(PARAM_DIR "/max_buffer_mb", "4096");
	if (r >= 0)
		close(r);
	CHECK(r == -EINVAL, "max_buffer_mb=1 allowed 2MiB: %d", r);

	close(x.buf);
	close(x.memfd_unsealed);
	close(x.memfd_wseal);
	close(x.memfd_ok);
	close(x.memfd_written);
	close(x.tmpfile);
	close(x.devnull);
	if (check_zero(dev, "after"))
		return 1;
	close(dev);
	note("%d bad calls (%d kinds) refused as expected, limits enforced, no fd leak",
	     calls, n);
	return 0;
}

/*
 * One process allocates and frees buffers as fast as it can and publishes
 * each one's address; another keeps mapping that address through
 * /dev/physmem.  Each mapping either fails (buffer gone) or works and
 * keeps the buffer alive until munmap.
 */
static int case_race(int iters)
{
	volatile uint64_t *shared;
	int dev, status, mapped = 0, refused = 0, settled, r;
	pid_t pid;

	shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED, "mmap shared");
	shared[0] = 0;
	shared[1] = 0;
	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));

	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		for (int i = 0; i < iters; i++) {
			struct px_segs sg;
			int fd = px_alloc_fd(dev, 64 * KIB, PHYSMEM_ALLOC_CONTIG, 0);

			if (fd < 0 || px_segments(dev, fd, &sg))
				_exit(1);
			__atomic_store_n(&shared[0], sg.seg[0].addr, __ATOMIC_RELEASE);
			free(sg.seg);
			close(fd);
		}
		__atomic_store_n(&shared[1], 1, __ATOMIC_RELEASE);
		_exit(0);
	}
	while (!__atomic_load_n(&shared[1], __ATOMIC_ACQUIRE)) {
		uint64_t a = __atomic_load_n(&shared[0], __ATOMIC_ACQUIRE);
		volatile uint8_t *p;

		if (!a)
			continue;
		p = mmap(NULL, 64 * KIB, PROT_READ | PROT_WRITE, MAP_SHARED,
			 dev, (off_t)a);
		if (p == MAP_FAILED) {
			refused++;
			continue;
		}
		p[0] = 1;
		p[64 * KIB - 1] = 2;
		munmap((void *)p, 64 * KIB);
		mapped++;
	}
	r = waitpid(pid, &status, 0);
	CHECK(r == pid && WIFEXITED(status) && !WEXITSTATUS(status),
	      "allocator child failed");
	/*
	 * The last phys mapping's pages can still be referenced for a moment
	 * after its munmap (seen once on 7.3): that buffer then drains, and
	 * the module looks again after 100 ms, backing off to 2 s. Wait for
	 * that, up to 8 s; a buffer that never comes back still fails.
	 */
	for (settled = 0; settled < 8000; settled += 100) {
		struct physmem_dev_info info;

		if (px_info(dev, &info) == 0 && !info.buffers && !info.bytes)
			break;
		usleep(100 * 1000);
	}
	if (check_zero(dev, "after"))
		return 1;
	close(dev);
	munmap((void *)shared, PAGE);
	note("%d alloc/free vs %d phys maps (%d refused), counters zero (after %d ms)",
	     iters, mapped, refused, settled);
	return 0;
}

/*
 * edu-copy: for the daemon cases.  Read "xfer SRC DST LEN [OFF]" lines (bus
 * addresses an unprivileged client got from physmemd) from stdin and copy
 * each range SRC -> edu -> DST.  Prints "edu-copy N transfers" or the first
 * error; exit 0 or 1.
 */
static int tool_edu_copy(void)
{
	struct edu_dma edu;
	char line[256];
	int r, n = 0;

	r = edu_dma_open(&edu);
	if (r) {
		printf("edu-copy: edu device: %s\n", strerror(-r));
		return 1;
	}
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long long src, dst, len;

		if (sscanf(line, "xfer %llx %llx %llu", &src, &dst, &len) != 3)
			continue;
		if (!len || len > EDU_DMA_MAX) {
			printf("edu-copy: bad length %llu\n", len);
			return 1;
		}
		r = edu_dma_to_device(&edu, src, 0, (uint32_t)len);
		if (!r)
			r = edu_dma_to_ram(&edu, 0, dst, (uint32_t)len);
		if (r) {
			printf("edu-copy: %#llx -> %#llx: %s\n", src, dst, strerror(-r));
			return 1;
		}
		n++;
	}
	edu_dma_close(&edu);
	printf("edu-copy %d transfers\n", n);
	return 0;
}

/*
 * frag-hold: fragment the free 4 MiB blocks (as case_dma_sg does): allocate
 * 16 contiguous 4 MiB buffers, free every other one, print "ready N" (the
 * number held), hold the rest until SIGTERM or SIGINT.
 */
static int tool_frag_hold(void)
{
	int dev, spacer[16], held = 0, sig;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	dev = px_open();
	if (dev < 0) {
		printf("frag-hold: open: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < 16; i++)
		spacer[i] = px_alloc_fd(dev, 4 * MIB, PHYSMEM_ALLOC_CONTIG, 0);
	for (int i = 0; i < 16; i++) {
		if (spacer[i] >= 0 && i % 2 == 0)
			close(spacer[i]);
		else if (spacer[i] >= 0)
			held++;
	}
	close(dev);
	printf("ready %d\n", held);
	sigwait(&set, &sig);
	for (int i = 1; i < 16; i += 2)
		if (spacer[i] >= 0)
			close(spacer[i]);
	return 0;
}

/* ---- page lifetime: pinned memfds, pages referenced after release ---- */

/* /dev/kmsg positioned after the last record so far, or -1. */
static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Kernel log records since kmsg_open() that report memory corruption;
 * closes @fd.
 */
static int kmsg_bad(int fd)
{
	static const char *const bad[] = {
		"BUG:", "Bad page", "list_del corruption", "list_add corruption",
		"Bad rss-counter", "page dumped because", "Poison overwritten",
	};
	char rec[4096];
	int n = 0;
	ssize_t r;

	for (;;) {
		r = read(fd, rec, sizeof(rec) - 1);
		if (r < 0 && errno == EPIPE)	/* overwritten records: go on */
			continue;
		if (r <= 0)
			break;
		rec[r] = '\0';
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (strstr(rec, bad[i])) {
				n++;
				break;
			}
	}
	close(fd);
	return n;
}

/* A memfd of @size bytes whose first @written bytes hold pattern @seed, sealed. */
static int lt_memfd(uint64_t size, uint64_t written, uint64_t seed)
{
	int fd = memfd_create("physmem-lifetime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint8_t *m;

	if (fd < 0 || ftruncate(fd, (off_t)size))
		return -1;
	if (written) {
		m = mmap(NULL, written, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			return -1;
		fill(m, written, seed, 0);
		munmap(m, written);
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK))
		return -1;
	return fd;
}

/* PHYSMEM_IOC_PIN: the dma-buf fd, or -errno. */
static int lt_pin(int dev, int memfd, uint64_t off, uint64_t len)
{
	struct physmem_pin p = { .size = sizeof(p), .memfd = memfd,
				 .offset = off, .length = len };

	return ioctl(dev, PHYSMEM_IOC_PIN, &p) ? -errno : p.fd;
}

/*
 * Pin part of a memfd, write a pattern through the dma-buf mapping, then
 * close the memfd (@punch false: its last reference, the inode goes) or
 * punch a hole over the pinned range: the dma-buf keeps the pages and the
 * pattern, the file no longer sees them, the kernel reports nothing, and
 * closing the dma-buf brings every counter back to zero.
 */
static int case_pin_keeps(bool punch)
{
	const uint64_t fsize = 1 * MIB, off = 4 * PAGE, len = 512 * KIB;
	int dev, mfd, fd, kmsg, nbad;
	uint8_t *mf, *mp;
	long long bad;

	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));
	if (check_zero(dev, "before"))
		return 1;
	kmsg = kmsg_open();
	CHECK(kmsg >= 0, "/dev/kmsg: %s", strerror(errno));
	mfd = lt_memfd(fsize, fsize, 0x51);
	CHECK(mfd >= 0, "memfd: %s", strerror(errno));
	fd = lt_pin(dev, mfd, off, len);
	CHECK(fd >= 0, "PIN: %s", strerror(-fd));
	mf = px_map(mfd, fsize, 0);
	mp = px_map(fd, len, 0);
	CHECK(mf && mp, "mmap: %s", strerror(errno));
	bad = verify(mp, len, 0x51, off);
	CHECK(bad < 0, "pinned mapping differs from the memfd at %lld", bad);
	fill(mp, len, 0x52, 0);		/* every page faulted in, written */
	bad = verify(mf + off, len, 0x52, 0);
	CHECK(bad < 0, "memfd does not see the dma-buf's write at %lld", bad);

	if (punch) {
		CHECK(!fallocate(mfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 (off_t)off, (off_t)len), "punch: %s", strerror(errno));
		bad = first_nonzero(mf + off, len);
		CHECK(bad < 0, "memfd still shows data at %lld after the punch", bad);
		fill(mf + off, PAGE, 0x53, 0);	/* the file's new page */
	}
	munmap(mf, fsize);
	if (!punch)
		close(mfd);

	bad = verify(mp, len, 0x52, 0);
	CHECK(bad < 0, "dma-buf mapping lost the pattern at %lld after the %s",
	      bad, punch ? "punch" : "close");
	munmap(mp, len);
	mp = px_map(fd, len, 0);
	CHECK(mp, "mmap again: %s", strerror(errno));
	bad = verify(mp, len, 0x52, 0);
	CHECK(bad < 0, "new dma-buf mapping differs at %lld", bad);
	munmap(mp, len);
	close(fd);
	if (punch)
		close(mfd);
	nbad = kmsg_bad(kmsg);
	CHECK(!nbad, "the kernel reported %d memory error(s): see dmesg", nbad);
	if (check_zero(dev, "after"))
		return 1;
	note("512KiB pinned, written through the dma-buf; after the %s the dma-buf still holds it (remapped too)%s; no kernel error; counters 0",
	     punch ? "hole punch" : "memfd's last close",
	     punch ? ", the file reads zeros there" : "");
	close(dev);
	return 0;
}

/*
 * A pin must never allocate: a range with a hole (@unwritten false) or
 * with fallocate()d pages never written is refused with ENODATA, and the
 * file is left as it was.
 */
static int case_pin_unpopulated(bool unwritten)
{
	const uint64_t fsize = 256 * KIB;
	struct stat st0, st1;
	int dev, mfd, fd;
	off_t hole;

	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));
	if (unwritten) {
		mfd = lt_memfd(fsize, 0, 0);
		CHECK(mfd >= 0, "memfd: %s", strerror(errno));
		CHECK(!fallocate(mfd, 0, 0, (off_t)fsize), "fallocate: %s",
		      strerror(errno));
	} else {
		/* written: [0, 64K) and [128K, 256K); a hole in between */
		mfd = lt_memfd(fsize, fsize, 0x61);
		CHECK(mfd >= 0, "memfd: %s", strerror(errno));
		CHECK(!fallocate(mfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 64 * KIB, 64 * KIB), "punch: %s", strerror(errno));
	}
	CHECK(!fstat(mfd, &st0), "fstat: %s", strerror(errno));
	fd = lt_pin(dev, mfd, 0, fsize);
	CHECK(fd == -ENODATA, "PIN of a %s range: %s, want ENODATA",
	      unwritten ? "fallocated, never written" : "sparse",
	      fd >= 0 ? "success" : strerror(-fd));
	CHECK(!fstat(mfd, &st1), "fstat: %s", strerror(errno));
	CHECK(st1.st_blocks == st0.st_blocks,
	      "the refused pin changed st_blocks %lld -> %lld",
	      (long long)st0.st_blocks, (long long)st1.st_blocks);
	if (!unwritten) {
		hole = lseek(mfd, 0, SEEK_HOLE);
		CHECK(hole == 64 * KIB, "SEEK_HOLE after the pin: %lld, want %llu",
		      (long long)hole, 64 * KIB);
		/* the written part alone pins */
		fd = lt_pin(dev, mfd, 128 * KIB, 128 * KIB);
		CHECK(fd >= 0, "PIN of the written part: %s", strerror(-fd));
		close(fd);
	}
	close(mfd);
	if (check_zero(dev, "after"))
		return 1;
	note("%s range refused with ENODATA, st_blocks %lld unchanged%s",
	     unwritten ? "fallocated, never written" : "sparse",
	     (long long)st1.st_blocks,
	     unwritten ? "" : ", hole still a hole (SEEK_HOLE), written part pins");
	close(dev);
	return 0;
}

/*
 * A pinned buffer's mapping is VM_PFNMAP: get_user_pages() on it fails, so
 * an O_DIRECT read into it fails with EFAULT instead of taking references
 * to page-cache pages through a VMA the file does not know.
 */
static int case_pin_refuses_gup(const char *disk)
{
	const uint64_t len = 64 * KIB;
	int dev, mfd, fd, dfd;
	uint8_t *mp;
	ssize_t n;

	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));
	dfd = open(disk, O_RDONLY | O_DIRECT | O_CLOEXEC);
	CHECK(dfd >= 0, "open %s O_DIRECT: %s", disk, strerror(errno));
	mfd = lt_memfd(len, len, 0x71);
	CHECK(mfd >= 0, "memfd: %s", strerror(errno));
	fd = lt_pin(dev, mfd, 0, len);
	CHECK(fd >= 0, "PIN: %s", strerror(-fd));
	mp = px_map(fd, len, 0);
	CHECK(mp, "mmap: %s", strerror(errno));
	CHECK(verify(mp, len, 0x71, 0) < 0, "pinned mapping differs");
	n = pread(dfd, mp, len, 0);
	CHECK(n < 0 && errno == EFAULT, "O_DIRECT pread into the pinned mapping: %zd (%s), want EFAULT",
	      n, n < 0 ? strerror(errno) : "data read");
	CHECK(verify(mp, len, 0x71, 0) < 0, "pinned mapping changed by the failed read");
	munmap(mp, len);
	close(fd);
	close(mfd);
	close(dfd);
	if (check_zero(dev, "after"))
		return 1;
	note("O_DIRECT read into a pinned dma-buf mapping: EFAULT, contents unchanged");
	close(dev);
	return 0;
}

/* PHYSMEM_IOC_QUERY: 0 with length and out_flags, or -errno. */
static int lt_query(int dev, uint64_t id, struct physmem_query *ret)
{
	struct physmem_query q = { .size = sizeof(q), .id = id };

	if (ioctl(dev, PHYSMEM_IOC_QUERY, &q))
		return -errno;
	*ret = q;
	return 0;
}

/*
 * Pages vmspliced into a pipe outlive the dma-buf: the released buffer must
 * stay alive for QUERY (flagged released), charged against max_total_mb and
 * counted as draining until the pipe lets go, then go away by itself.
 */
static int lt_vmsplice(int dev)
{
	const unsigned long long size = 1 * MIB, spliced = 64 * KIB;
	struct physmem_alloc a = { 0 };
	struct physmem_query q;
	int r, p[2], fd, tries;
	uint8_t *m, *back;
	struct iovec iov;
	ssize_t n;

	if (check_zero(dev, "before"))
		return 1;
	r = px_alloc(dev, size, 0, PHYSMEM_MODE_CACHED, &a);
	CHECK(!r, "alloc: %s", strerror(-r));
	m = px_map(a.fd, size, 0);
	CHECK(m, "mmap: %s", strerror(errno));
	fill(m, size, 0x81, 0);
	CHECK(!pipe2(p, O_CLOEXEC), "pipe: %s", strerror(errno));
	iov.iov_base = m;
	iov.iov_len = spliced;
	n = vmsplice(p[1], &iov, 1, 0);
	CHECK(n == (ssize_t)spliced, "vmsplice: %zd (%s)", n,
	      n < 0 ? strerror(errno) : "short");
	munmap(m, size);
	close(a.fd);

	r = lt_query(dev, a.id, &q);
	CHECK(!r, "QUERY after release, pages in a pipe: %s, want alive",
	      strerror(-r));
	CHECK(q.length == size && q.out_flags == PHYSMEM_QUERY_RELEASED,
	      "QUERY: length %llu out_flags %#x, want %llu and RELEASED",
	      (unsigned long long)q.length, q.out_flags, size);
	CHECK(read_num(STATS_DIR "/draining_bytes") == (long long)size &&
	      read_num(STATS_DIR "/draining_buffers") == 1,
	      "draining_bytes %lld buffers %lld, want %llu and 1",
	      read_num(STATS_DIR "/draining_bytes"),
	      read_num(STATS_DIR "/draining_buffers"), size);
	CHECK(read_num(STATS_DIR "/bytes") == (long long)size,
	      "stats/bytes %lld while draining, want %llu",
	      read_num(STATS_DIR "/bytes"), size);
	/* max_total_mb is 2: 1 MiB draining + 2 MiB does not fit */
	fd = px_alloc_fd(dev, 2 * MIB, 0, PHYSMEM_MODE_CACHED);
	CHECK(fd == -ENOMEM, "2 MiB alloc with 1 of 2 MiB draining: %s, want ENOMEM",
	      fd >= 0 ? "success" : strerror(-fd));

	/* the pipe still reads the buffer's bytes */
	back = malloc(spliced);
	CHECK(back, "malloc");
	n = read(p[0], back, spliced);
	CHECK(n == (ssize_t)spliced && verify(back, spliced, 0x81, 0) < 0,
	      "pipe read %zd, data %s", n, n > 0 ? "wrong" : "missing");
	free(back);
	close(p[0]);
	close(p[1]);

	for (tries = 0; tries < 200; tries++) {	/* up to 10 s */
		if (lt_query(dev, a.id, &q) == -ENOENT &&
		    read_num(STATS_DIR "/draining_bytes") == 0)
			break;
		usleep(50 * 1000);
	}
	r = lt_query(dev, a.id, &q);
	CHECK(r == -ENOENT, "QUERY 10 s after the pipe closed: %s, want ENOENT",
	      r ? strerror(-r) : "alive");
	CHECK(read_num(STATS_DIR "/draining_bytes") == 0 &&
	      read_num(STATS_DIR "/draining_buffers") == 0,
	      "draining counters not zero after the pipe closed");
	if (check_zero(dev, "after"))
		return 1;
	fd = px_alloc_fd(dev, 2 * MIB, 0, PHYSMEM_MODE_CACHED);
	CHECK(fd >= 0, "2 MiB alloc after draining: %s", strerror(-fd));
	close(fd);
	note("1 MiB buffer, 64 KiB vmspliced, released: QUERY alive+RELEASED, draining_bytes %llu, a 2 MiB alloc under max_total_mb=2 refused; pipe closed: ENOENT after ~%d ms, counters 0",
	     size, tries * 50);
	return 0;
}

/*
 * QUERY among many buffers (the module finds ids in a tree): 512 buffers of
 * 1 to 4 pages, closed in a scrambled order in three passes; after each
 * pass every id answers alive with its own length or ENOENT exactly as its
 * fd says, and ids around them that were never given out answer ENOENT.
 */
#define QM_N 512
static int case_query_many(void)
{
	static struct physmem_alloc a[QM_N];
	struct physmem_query q;
	int dev = px_open(), r, pass, open_left = QM_N;
	uint64_t lo = UINT64_MAX, hi = 0;
	unsigned int i, j;

	CHECK(dev >= 0, "open: %s", strerror(errno));
	if (check_zero(dev, "before"))
		return 1;
	for (i = 0; i < QM_N; i++) {
		r = px_alloc(dev, (1 + i % 4) * 4096ULL, 0, PHYSMEM_MODE_CACHED,
			     &a[i]);
		CHECK(!r, "alloc %u: %s", i, strerror(-r));
		lo = a[i].id < lo ? a[i].id : lo;
		hi = a[i].id > hi ? a[i].id : hi;
	}
	for (pass = 0; pass <= 3; pass++) {
		for (i = 0; i < QM_N; i++) {
			r = lt_query(dev, a[i].id, &q);
			if (a[i].fd >= 0) {
				CHECK(!r && q.length == (1 + i % 4) * 4096ULL &&
				      !q.out_flags,
				      "pass %d: QUERY of open buffer %u (id %llu): %s, length %llu, flags %#x",
				      pass, i, (unsigned long long)a[i].id,
				      r ? strerror(-r) : "alive",
				      (unsigned long long)q.length, q.out_flags);
			} else {
				CHECK(r == -ENOENT,
				      "pass %d: QUERY of closed buffer %u (id %llu): %s, want ENOENT",
				      pass, i, (unsigned long long)a[i].id,
				      r ? strerror(-r) : "alive");
			}
		}
		for (r = 0, j = 1; j <= 8; j++)
			r |= lt_query(dev, hi + j, &q) != -ENOENT ||
			     (lo > j && lt_query(dev, lo - j, &q) != -ENOENT);
		CHECK(!r, "pass %d: an id never given out answered", pass);
		if (pass == 3)
			break;
		/* pass 0: every 3rd from the middle out; 1: odd ones; 2: the rest */
		for (i = 0; i < QM_N; i++) {
			j = (i * 197 + 31) % QM_N;	/* 197 is prime to 512 */
			if (a[j].fd < 0 ||
			    (pass == 0 && j % 3) || (pass == 1 && !(j & 1)))
				continue;
			close(a[j].fd);
			a[j].fd = -1;
			open_left--;
		}
	}
	CHECK(open_left == 0, "%d buffers left open", open_left);
	if (check_zero(dev, "after"))
		return 1;
	close(dev);
	note("%d buffers (ids %llu..%llu), closed in 3 scrambled passes: QUERY alive with its length or ENOENT as each fd says, ids around them ENOENT",
	     QM_N, (unsigned long long)lo, (unsigned long long)hi);
	return 0;
}

/* lt_vmsplice() with max_total_mb=2, restored afterwards. */
static int case_vmsplice_charged(void)
{
	long long old = read_num(PARAM_DIR "/max_total_mb");
	char val[32];
	int dev, rc;

	dev = px_open();
	CHECK(dev >= 0, "open: %s", strerror(errno));
	CHECK(old >= 0, "read max_total_mb");
	CHECK(!write_file(PARAM_DIR "/max_total_mb", "2"), "set max_total_mb");
	rc = lt_vmsplice(dev);
	snprintf(val, sizeof(val), "%lld", old);
	if (write_file(PARAM_DIR "/max_total_mb", val) && !rc)
		FAIL("restore max_total_mb");
	close(dev);
	return rc;
}

/* ---- device bindings (PHYSMEM_IOC_BIND) with the edu device ---- */

struct px_bdf {
	uint32_t domain;
	uint8_t bus, devfn;
	char name[32];		/* "bb:dd.f", as DMAR fault lines print it */
};

/* The edu device's PCI address, from its sysfs directory name. */
static int edu_bdf(const struct edu_dma *edu, struct px_bdf *ret)
{
	const char *base = strrchr(edu->path, '/');
	unsigned dom, bus, slot, fn;

	if (!base || sscanf(base + 1, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4)
		return -EINVAL;
	ret->domain = dom;
	ret->bus = (uint8_t)bus;
	ret->devfn = (uint8_t)((slot << 3) | fn);
	snprintf(ret->name, sizeof(ret->name), "%02x:%02x.%x]", bus, slot, fn);
	return 0;
}

/* open_edu_dev() plus edu's PCI address, and /dev/kmsg unless @kmsg is NULL. */
static int open_edu_bind(struct edu_dma *edu, int *dev, struct px_bdf *bdf, int *kmsg)
{
	if (open_edu_dev(edu, dev))
		return 1;
	CHECK(!edu_bdf(edu, bdf), "edu address from %s", edu->path);
	if (kmsg) {
		*kmsg = kmsg_open();
		CHECK(*kmsg >= 0, "/dev/kmsg: %s", strerror(errno));
	}
	return 0;
}

/* BIND @fd to @b in direction @dir; segments (capacity @cap) into @segs. */
static int px_bind_raw(int dev, int fd, const struct px_bdf *b, uint16_t dir,
		       struct physmem_dma_segment *segs, uint32_t cap,
		       struct physmem_bind *ret)
{
	struct physmem_bind q = { .size = sizeof(q), .fd = fd,
		.pci_domain = b->domain, .pci_bus = b->bus,
		.pci_devfn = b->devfn, .dir = dir,
		.segments = (uintptr_t)segs, .capacity = cap };

	if (ioctl(dev, PHYSMEM_IOC_BIND, &q))
		return -errno;
	if (ret)
		*ret = q;
	return 0;
}

/* BIND and fetch the binding's segments with SEGMENTS. */
static int px_bind(int dev, int fd, const struct px_bdf *b, uint16_t dir,
		   struct physmem_bind *ret, struct px_segs *s)
{
	struct physmem_bind q;
	int r = px_bind_raw(dev, fd, b, dir, NULL, 0, &q);

	if (r)
		return r;
	if (ret)
		*ret = q;
	r = px_bind_segments(dev, fd, q.binding_id, s);
	if (!r && (s->n != q.nr_segments || s->info.bind_flags != q.out_flags))
		r = -EPROTO;
	return r;
}

static int px_unbind(int dev, int fd, uint64_t id, uint32_t flags)
{
	struct physmem_unbind u = { .size = sizeof(u), .fd = fd,
				    .binding_id = id, .flags = flags };

	return ioctl(dev, PHYSMEM_IOC_UNBIND, &u) ? -errno : 0;
}

/*
 * Wait (up to 10 s, a liveness limit) for a kernel log record containing
 * both @a and @b; copies it (text only) to @line.  True if one came.
 */
static bool kmsg_wait(int fd, const char *a, const char *b, char *line,
		      size_t len)
{
	char rec[1024];

	for (int i = 0; i < 1000; i++) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);

		if (n < 0 && errno == EPIPE)
			continue;
		if (n < 0) {
			usleep(10000);
			continue;
		}
		rec[n] = 0;
		if (strstr(rec, a) && strstr(rec, b)) {
			char *t = strchr(rec, ';'), *nl;

			t = t ? t + 1 : rec;
			nl = strchr(t, '\n');
			if (nl)
				*nl = 0;
			if (strlen(t) >= len)
				t[len - 1] = 0;
			memcpy(line, t, strlen(t) + 1);
			return true;
		}
	}
	return false;
}

/*
 * The kernel rate-limits DMAR fault reports (10 in 5 s; each fault takes
 * two).  Before a copy whose fault line a case waits for, let the window
 * pass so the line is printed, not suppressed.
 */
static void dmar_ratelimit_wait(void)
{
	sleep(6);
}

static const char *bind_mode_name(uint32_t f)
{
	return f & PHYSMEM_BIND_IOMMU ? "iommu" : f & PHYSMEM_BIND_IDENTITY ?
	       "identity" : f & PHYSMEM_BIND_DIRECT ? "direct" : "none";
}

static bool segs_equal(const struct px_segs *a, const struct px_segs *b)
{
	return a->n == b->n && !memcmp(a->seg, b->seg, a->n * sizeof(*a->seg));
}

/* Copy one chunk by DMA from @sa to @sb and check what @mb holds after. */
static int bind_copy(struct edu_dma *edu, const struct px_segs *sa,
		     const struct px_segs *sb, uint8_t *mb, int fb,
		     uint64_t off, bool want_copied, const char *what)
{
	long long bad;
	int r = dma_copy(edu, sa, sb, off, EDU_DMA_MAX);

	if (r)
		FAIL("%s: dma at %#llx: %s", what, (unsigned long long)off, strerror(-r));
	px_sync(fb, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	bad = want_copied ? verify(mb + off, EDU_DMA_MAX, 0xA5, off)
			  : first_nonzero(mb + off, EDU_DMA_MAX);
	px_sync(fb, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	if (bad >= 0)
		FAIL("%s: B at %#llx %s", what, (unsigned long long)(off + bad),
		     want_copied ? "not copied" : "changed");
	return 0;
}

/*
 * bind-dma MODE: A and B (contiguous, then scatter-gather) bound to edu;
 * MODE (iommu, identity, direct) is the translation the boot must give.
 * The device copies A -> edu -> B with the bound addresses: B must get the
 * data.  Under an IOMMU the same copy with the physical addresses must
 * leave B unchanged and the kernel must log a DMAR fault for edu; without
 * translation the bound addresses must be the physical ones.
 */
static int bind_dma_one(struct edu_dma *edu, int dev, const struct px_bdf *bdf,
			struct dma_pair *p, const char *mode, const char *what,
			int kmsg)
{
	struct physmem_bind ba, bb;
	struct px_segs xa, xb;
	uint64_t offs[3] = { 0, p->size / 2 + EDU_DMA_MAX, p->size - EDU_DMA_MAX };
	char line[300];
	int r, i;

	r = px_bind(dev, p->fa, bdf, PHYSMEM_BIND_BIDIRECTIONAL, &ba, &xa);
	if (!r)
		r = px_bind(dev, p->fb, bdf, PHYSMEM_BIND_BIDIRECTIONAL, &bb, &xb);
	if (r)
		FAIL("%s: bind: %s", what, strerror(-r));
	CHECK(!strcmp(bind_mode_name(ba.out_flags), mode) && ba.out_flags == bb.out_flags,
	      "%s: out_flags %#x (%s), want %s", what, ba.out_flags,
	      bind_mode_name(ba.out_flags), mode);
	CHECK(xa.n >= 1 && xb.n >= 1, "%s: no bound segments", what);

	px_sync(p->fa, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	fill(p->ma, p->size, 0xA5, 0);
	px_sync(p->fa, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);

	if (ba.out_flags & PHYSMEM_BIND_IOMMU) {
		dmar_ratelimit_wait();
		if (bind_copy(edu, &p->sa, &p->sb, p->mb, p->fb, offs[0], false,
			      "physical-address copy"))
			return 1;
		CHECK(kmsg_wait(kmsg, "DMAR: [DMA Read", bdf->name, line, sizeof(line)),
		      "%s: no DMAR read fault for edu %s logged", what, bdf->name);
		note("%s: phys copy blocked (\"%s\"); ", what, line);
	} else {
		CHECK(segs_equal(&xa, &p->sa) && segs_equal(&xb, &p->sb),
		      "%s: bound segments differ from the physical ones", what);
		if (bind_copy(edu, &p->sa, &p->sb, p->mb, p->fb, offs[0], true,
			      "physical-address copy"))
			return 1;
	}
	for (i = 0; i < 3; i++)
		if (bind_copy(edu, &xa, &xb, p->mb, p->fb, offs[i], true, what))
			return 1;
	note("%s %lluKiB %s: A %u phys/%u bound segs @%#llx, B @%#llx; ", what,
	     (unsigned long long)(p->size / KIB), mode, p->sa.n, xa.n,
	     (unsigned long long)xa.seg[0].addr, (unsigned long long)xb.seg[0].addr);
	CHECK(!px_unbind(dev, p->fa, ba.binding_id, 0) &&
	      !px_unbind(dev, p->fb, bb.binding_id, 0), "%s: unbind failed", what);
	free(xa.seg);
	free(xb.seg);
	return 0;
}

static int case_bind_dma(const char *mode)
{
	struct edu_dma edu;
	struct px_bdf bdf;
	struct dma_pair p;
	int dev, kmsg;

	if (open_edu_bind(&edu, &dev, &bdf, &kmsg))
		return 1;

	if (dma_pair_alloc(dev, &p, 1 * MIB, PHYSMEM_ALLOC_CONTIG, 0))
		return 1;
	if (bind_dma_one(&edu, dev, &bdf, &p, mode, "contig", kmsg))
		return 1;
	dma_pair_close(&p);

	/* as dma-sg: A and B several physical runs */
	if (dma_pair_alloc_sg(dev, &p, 12 * MIB, 0))
		return 1;
	if (bind_dma_one(&edu, dev, &bdf, &p, mode, "sg", kmsg))
		return 1;
	dma_pair_close(&p);
	CHECK(read_num(STATS_DIR "/bindings") == 0 &&
	      read_num(STATS_DIR "/bound_bytes") == 0, "binding counters not zero");
	close(kmsg);
	edu_dma_close(&edu);
	close(dev);
	return 0;
}

/*
 * bind-access: B bound TO_DEVICE only.  Under an IOMMU edu cannot write it
 * through its binding (DMAR write fault, B unchanged); A's bidirectional
 * binding still works as the source.
 */
static int case_bind_access(void)
{
	struct physmem_bind ba, bb;
	struct px_segs xa, xb;
	struct edu_dma edu;
	struct px_bdf bdf;
	struct dma_pair p;
	char line[300];
	int dev, kmsg, r;

	if (open_edu_bind(&edu, &dev, &bdf, &kmsg))
		return 1;
	if (dma_pair_alloc(dev, &p, 64 * KIB, PHYSMEM_ALLOC_CONTIG, 0))
		return 1;
	r = px_bind(dev, p.fa, &bdf, PHYSMEM_BIND_BIDIRECTIONAL, &ba, &xa);
	if (!r)
		r = px_bind(dev, p.fb, &bdf, PHYSMEM_BIND_TO_DEVICE, &bb, &xb);
	CHECK(!r, "bind: %s", strerror(-r));
	if (!(bb.out_flags & PHYSMEM_BIND_IOMMU)) {
		note("%s binding: no IOMMU to enforce the direction",
		     bind_mode_name(bb.out_flags));
		dma_pair_close(&p);
		return 77;
	}
	px_sync(p.fa, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	fill(p.ma, p.size, 0xA5, 0);
	px_sync(p.fa, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	dmar_ratelimit_wait();
	if (bind_copy(&edu, &xa, &xb, p.mb, p.fb, 0, false, "write to TO_DEVICE binding"))
		return 1;
	CHECK(kmsg_wait(kmsg, "DMAR: [DMA Write", bdf.name, line, sizeof(line)),
	      "no DMAR write fault for edu %s logged", bdf.name);
	/* the other way round, B is a good source: edu reads it */
	if (bind_copy(&edu, &xb, &xa, p.ma, p.fa, EDU_DMA_MAX, false, "read B into A"))
		return 1;
	note("edu writing its TO_DEVICE binding: B unchanged, \"%s\"; reading it works", line);
	dma_pair_close(&p);
	free(xa.seg);
	free(xb.seg);
	close(kmsg);
	edu_dma_close(&edu);
	close(dev);
	return 0;
}

/* Restore a module parameter; true if that worked. */
static bool param_set(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), PARAM_DIR "/%s", name);
	return !write_file(path, val);
}

/* bind-errors: every bad BIND/UNBIND/SEGMENTS gets its errno, no leak. */
static int case_bind_errors(void)
{
	struct physmem_dma_segment segs[4], one;
	struct physmem_bind b, b2;
	struct px_segs x;
	struct edu_dma edu;
	struct px_bdf bdf, none = { .domain = 0, .bus = 0xfe, .devfn = 0xff };
	struct px_bdf bigdom;
	int dev, fa, fb, fbig, devnull, r;

	if (open_edu_bind(&edu, &dev, &bdf, NULL))
		return 1;
	bigdom = bdf;
	bigdom.domain = 0x80000000u;
	fa = px_alloc_fd(dev, 64 * KIB, 0, 0);
	fb = px_alloc_fd(dev, 2 * MIB, 0, 0);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(fa >= 0 && fb >= 0 && devnull >= 0, "setup");

	r = px_bind_raw(dev, fa, &none, 0, NULL, 0, NULL);
	CHECK(r == -ENODEV, "no such device: %s", strerror(-r));
	r = px_bind_raw(dev, fa, &bigdom, 0, NULL, 0, NULL);
	CHECK(r == -ENODEV, "domain 0x80000000: %s", strerror(-r));
	r = px_bind_raw(dev, devnull, &bdf, 0, NULL, 0, NULL);
	CHECK(r == -EINVAL, "/dev/null as buffer: %s", strerror(-r));
	r = px_bind_raw(dev, -1, &bdf, 0, NULL, 0, NULL);
	CHECK(r == -EBADF, "fd -1: %s", strerror(-r));
	r = px_bind_raw(dev, fa, &bdf, 3, NULL, 0, NULL);
	CHECK(r == -EINVAL, "dir 3: %s", strerror(-r));
	r = px_bind_raw(dev, fa, &bdf, 0, NULL, 4, NULL);
	CHECK(r == -EFAULT, "capacity without array: %s", strerror(-r));
	{
		struct physmem_bind q = { .size = sizeof(q), .fd = fa,
			.pci_domain = bdf.domain, .pci_bus = bdf.bus,
			.pci_devfn = bdf.devfn };

		q.flags = 1;
		CHECK(ioctl(dev, PHYSMEM_IOC_BIND, &q) && errno == EINVAL, "flags 1: %m");
		q.flags = 0;
		q.reserved = 1;
		CHECK(ioctl(dev, PHYSMEM_IOC_BIND, &q) && errno == EINVAL, "reserved: %m");
		q.reserved = 0;
		q.reserved2 = 1;
		CHECK(ioctl(dev, PHYSMEM_IOC_BIND, &q) && errno == EINVAL, "reserved2: %m");
		q.reserved2 = 0;
		q.size = 48;
		CHECK(ioctl(dev, PHYSMEM_IOC_BIND, &q) && errno == EINVAL, "size 48: %m");
		/* a reply that cannot be written leaves no binding behind */
		q.size = sizeof(q);
		q.segments = 1;
		q.capacity = 1;
		CHECK(ioctl(dev, PHYSMEM_IOC_BIND, &q) && errno == EFAULT,
		      "unwritable segments: %m");
		CHECK(read_num(STATS_DIR "/bindings") == 0,
		      "failed BIND left a binding");
	}

	/* BIND's own list equals SEGMENTS by binding id */
	memset(segs, 0xff, sizeof(segs));
	r = px_bind_raw(dev, fa, &bdf, 0, segs, 4, &b);
	CHECK(!r, "bind: %s", strerror(-r));
	CHECK(b.binding_id && b.nr_segments >= 1 && b.out_flags, "bind reply empty");
	r = px_bind_segments(dev, fa, b.binding_id, &x);
	CHECK(!r, "SEGMENTS by binding id: %s", strerror(-r));
	CHECK(x.n == b.nr_segments && x.info.bind_flags == b.out_flags &&
	      x.info.length == 64 * KIB, "SEGMENTS by id: %u segs flags %#x",
	      x.n, x.info.bind_flags);
	for (uint32_t i = 0; i < 4; i++)
		CHECK(i < x.n ? !memcmp(&segs[i], &x.seg[i], sizeof(segs[i]))
			      : segs[i].addr == UINT64_MAX,
		      "BIND's segment %u differs from SEGMENTS'", i);
	free(x.seg);
	r = px_bind_segments(dev, fa, b.binding_id + 1000, &x);
	CHECK(r == -ENOENT, "SEGMENTS unknown binding id: %s", strerror(-r));
	r = px_bind_segments(dev, fb, b.binding_id, &x);
	CHECK(r == -ENOENT, "SEGMENTS with another buffer's binding: %s", strerror(-r));
	r = px_bind_raw(dev, fa, &bdf, PHYSMEM_BIND_TO_DEVICE, NULL, 0, NULL);
	CHECK(r == -EEXIST, "second binding to the same device: %s", strerror(-r));
	CHECK(read_num(STATS_DIR "/bindings") == 1 &&
	      read_num(STATS_DIR "/bound_bytes") == (long long)(64 * KIB),
	      "stats: bindings %lld bound_bytes %lld",
	      read_num(STATS_DIR "/bindings"), read_num(STATS_DIR "/bound_bytes"));

	/* bytes per device: 1 MiB; 64 KiB bound, so 2 MiB more is refused */
	CHECK(param_set("max_bind_mb_per_device", "1"), "set max_bind_mb_per_device");
	r = px_bind_raw(dev, fb, &bdf, 0, NULL, 0, NULL);
	param_set("max_bind_mb_per_device", "4096");
	CHECK(r == -ENOSPC, "2MiB over max_bind_mb_per_device=1: %s", strerror(-r));
	fbig = px_alloc_fd(dev, 960 * KIB, 0, 0);
	CHECK(fbig >= 0, "alloc 960KiB");
	CHECK(param_set("max_bind_mb_per_device", "1"), "set max_bind_mb_per_device");
	r = px_bind_raw(dev, fbig, &bdf, 0, NULL, 0, &b2);
	param_set("max_bind_mb_per_device", "4096");
	CHECK(!r, "64KiB + 960KiB within 1MiB refused: %s", strerror(-r));
	CHECK(!px_unbind(dev, fbig, b2.binding_id, 0), "unbind 960KiB");
	close(fbig);
	/* bindings per buffer */
	CHECK(param_set("max_bindings_per_buffer", "0"), "set max_bindings_per_buffer");
	r = px_bind_raw(dev, fb, &bdf, 0, NULL, 0, NULL);
	param_set("max_bindings_per_buffer", "8");
	CHECK(r == -ENOSPC, "max_bindings_per_buffer=0: %s", strerror(-r));

	/* UNBIND */
	r = px_unbind(dev, fb, b.binding_id, 0);
	CHECK(r == -ENOENT, "unbind through another buffer: %s", strerror(-r));
	r = px_unbind(dev, fa, b.binding_id, 1);
	CHECK(r == -EINVAL, "unbind flags 1: %s", strerror(-r));
	r = px_unbind(dev, devnull, b.binding_id, 0);
	CHECK(r == -EINVAL, "unbind /dev/null: %s", strerror(-r));
	r = px_unbind(dev, fa, b.binding_id, 0);
	CHECK(!r, "unbind: %s", strerror(-r));
	r = px_unbind(dev, fa, b.binding_id, 0);
	CHECK(r == -ENOENT, "second unbind: %s", strerror(-r));
	r = px_unbind(dev, fa, 0, 0);
	CHECK(!r, "unbind id 0 (all) with none left: %s", strerror(-r));
	{
		struct physmem_unbind u = { .size = 16, .fd = fa, .binding_id = 1 };

		CHECK(ioctl(dev, PHYSMEM_IOC_UNBIND, &u) && errno == EINVAL,
		      "unbind size 16: %m");
		/* UNBIND is _IOW: the _IOWR form is not it */
		u.size = sizeof(u);
		CHECK(ioctl(dev, _IOWR(PHYSMEM_IOC_MAGIC, 0x07, struct physmem_unbind), &u) &&
		      errno == ENOTTY, "_IOWR unbind: %m");
	}
	/* bound again after unbind: a new id */
	r = px_bind_raw(dev, fa, &bdf, 0, &one, 1, &b2);
	CHECK(!r && b2.binding_id != b.binding_id, "rebind: %s", strerror(-r));
	CHECK(read_num(STATS_DIR "/bindings") == 1, "stats after rebind");
	/* id 0 removes every binding of the buffer (a restarted daemon's sweep) */
	r = px_unbind(dev, fa, 0, 0);
	CHECK(!r && read_num(STATS_DIR "/bindings") == 0 &&
	      read_num(STATS_DIR "/bound_bytes") == 0, "unbind id 0 (all): %s", strerror(-r));
	r = px_unbind(dev, fa, b2.binding_id, 0);
	CHECK(r == -ENOENT, "unbind after unbind-all: %s", strerror(-r));
	r = px_bind_raw(dev, fa, &bdf, 0, &one, 1, &b2);
	CHECK(!r, "rebind after unbind-all: %s", strerror(-r));
	close(fa);	/* released with its binding */
	close(fb);
	close(devnull);
	CHECK(read_num(STATS_DIR "/bindings") == 0 &&
	      read_num(STATS_DIR "/bound_bytes") == 0 &&
	      read_num(STATS_DIR "/bindings_revoked") == 0,
	      "binding counters not zero at the end");
	edu_dma_close(&edu);
	close(dev);
	note("ENODEV/EBADF/EINVAL/EFAULT/EEXIST/ENOSPC/ENOENT as documented, SEGMENTS by id = BIND's list, counters back to zero");
	return 0;
}

/*
 * bind-release: closing a buffer with a live binding removes it (counters),
 * and under an IOMMU the old IOVA no longer reaches the pages: B is kept
 * alive by a physical-address mapping of /dev/physmem, its dma-buf closed,
 * then edu writes to B's old IOVA: B unchanged, DMAR write fault.
 */
static int case_bind_release(void)
{
	struct physmem_bind ba, bb;
	struct px_segs xa, xb;
	struct edu_dma edu;
	struct px_bdf bdf;
	struct dma_pair p;
	uint8_t *phys;
	char line[300];
	int dev, kmsg, r;

	if (open_edu_bind(&edu, &dev, &bdf, &kmsg))
		return 1;
	if (dma_pair_alloc(dev, &p, 64 * KIB, PHYSMEM_ALLOC_CONTIG, 0))
		return 1;
	r = px_bind(dev, p.fa, &bdf, 0, &ba, &xa);
	if (!r)
		r = px_bind(dev, p.fb, &bdf, 0, &bb, &xb);
	CHECK(!r, "bind: %s", strerror(-r));
	CHECK(read_num(STATS_DIR "/bindings") == 2 &&
	      read_num(STATS_DIR "/bound_bytes") == (long long)(128 * KIB),
	      "stats with two bindings");
	phys = mmap(NULL, p.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev,
		    (off_t)p.sb.seg[0].addr);
	CHECK(phys != MAP_FAILED, "phys mmap of B: %m");

	px_sync(p.fa, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	fill(p.ma, p.size, 0xA5, 0);
	px_sync(p.fa, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	/* control: through the binding the copy arrives */
	if (bind_copy(&edu, &xa, &xb, p.mb, p.fb, 0, true, "bound copy"))
		return 1;

	munmap(p.mb, p.size);
	p.mb = NULL;
	close(p.fb);
	p.fb = -1;
	CHECK(read_num(STATS_DIR "/bindings") == 1 &&
	      read_num(STATS_DIR "/bound_bytes") == (long long)(64 * KIB) &&
	      read_num(STATS_DIR "/buffers") == 2,
	      "after closing B: bindings %lld bound_bytes %lld buffers %lld",
	      read_num(STATS_DIR "/bindings"), read_num(STATS_DIR "/bound_bytes"),
	      read_num(STATS_DIR "/buffers"));
	if (ba.out_flags & PHYSMEM_BIND_IOMMU) {
		long long bad;

		dmar_ratelimit_wait();
		r = dma_copy(&edu, &xa, &xb, EDU_DMA_MAX, EDU_DMA_MAX);
		CHECK(!r, "dma to the old IOVA: %s", strerror(-r));
		bad = first_nonzero(phys + EDU_DMA_MAX, EDU_DMA_MAX);
		CHECK(bad < 0, "edu reached B through its released binding at %#llx",
		      (unsigned long long)(EDU_DMA_MAX + bad));
		CHECK(verify(phys, EDU_DMA_MAX, 0xA5, 0) < 0,
		      "B's earlier copy not seen through the phys mapping");
		CHECK(kmsg_wait(kmsg, "DMAR: [DMA Write", bdf.name, line, sizeof(line)),
		      "no DMAR write fault for edu after the release");
		note("released binding: old IOVA %#llx no longer reaches B (\"%s\"); ",
		     (unsigned long long)xb.seg[0].addr, line);
	} else {
		note("%s binding: old address is physical, not written; ",
		     bind_mode_name(ba.out_flags));
	}
	munmap(phys, p.size);
	dma_pair_close(&p);
	CHECK(read_num(STATS_DIR "/bindings") == 0 &&
	      read_num(STATS_DIR "/bound_bytes") == 0, "binding counters not zero");
	note("counters back to zero");
	free(xa.seg);
	free(xb.seg);
	close(kmsg);
	edu_dma_close(&edu);
	close(dev);
	return 0;
}

/* Write @val to the sysfs file @dir/@name. */
static int sysfs_write(const char *dir, const char *name, const char *val)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return write_file(path, val);
}

/*
 * bind-revoke: edu removed (sysfs remove) while two buffers are bound to
 * it: both bindings report count 0 and REVOKED, bound_bytes drops to 0,
 * UNBIND still works; after a rescan edu can be bound again.
 */
static int case_bind_revoke(void)
{
	struct physmem_bind ba, bb;
	struct px_segs xa, xb, x;
	struct edu_dma edu;
	struct px_bdf bdf;
	char path[320];
	int dev, fa, fb, r;

	if (open_edu_bind(&edu, &dev, &bdf, NULL))
		return 1;
	snprintf(path, sizeof(path), "%s", edu.path);
	edu_dma_close(&edu);
	fa = px_alloc_fd(dev, 64 * KIB, PHYSMEM_ALLOC_CONTIG, 0);
	fb = px_alloc_fd(dev, 4 * MIB, 0, 0);
	CHECK(fa >= 0 && fb >= 0, "alloc");
	r = px_bind(dev, fa, &bdf, 0, &ba, &xa);
	if (!r)
		r = px_bind(dev, fb, &bdf, PHYSMEM_BIND_FROM_DEVICE, &bb, &xb);
	CHECK(!r, "bind: %s", strerror(-r));

	CHECK(!sysfs_write(path, "remove", "1"), "remove %s", path);
	r = px_bind_segments(dev, fa, ba.binding_id, &x);
	CHECK(!r && x.n == 0 && x.info.bind_flags == (ba.out_flags | PHYSMEM_BIND_REVOKED),
	      "after remove: SEGMENTS %s, count %u, flags %#x", strerror(-r), x.n,
	      x.info.bind_flags);
	free(x.seg);
	r = px_bind_segments(dev, fb, bb.binding_id, &x);
	CHECK(!r && x.n == 0 && (x.info.bind_flags & PHYSMEM_BIND_REVOKED),
	      "B after remove: %s, flags %#x", strerror(-r), x.info.bind_flags);
	free(x.seg);
	CHECK(read_num(STATS_DIR "/bindings") == 2 &&
	      read_num(STATS_DIR "/bindings_revoked") == 2 &&
	      read_num(STATS_DIR "/bound_bytes") == 0,
	      "stats after remove: bindings %lld revoked %lld bound_bytes %lld",
	      read_num(STATS_DIR "/bindings"), read_num(STATS_DIR "/bindings_revoked"),
	      read_num(STATS_DIR "/bound_bytes"));
	r = px_bind_raw(dev, fa, &bdf, 0, NULL, 0, NULL);
	CHECK(r == -ENODEV, "bind to the removed device: %s", strerror(-r));
	CHECK(!px_unbind(dev, fa, ba.binding_id, 0), "unbind revoked binding");
	CHECK(read_num(STATS_DIR "/bindings_revoked") == 1, "revoked counter after unbind");

	CHECK(!write_file("/sys/bus/pci/rescan", "1"), "rescan");
	if (open_edu_dev(&edu, &dev))
		return 1;
	r = px_bind(dev, fa, &bdf, 0, &ba, &x);
	CHECK(!r, "bind after rescan: %s", strerror(-r));
	free(x.seg);
	close(fa);
	close(fb);	/* with its revoked binding */
	CHECK(read_num(STATS_DIR "/bindings") == 0 &&
	      read_num(STATS_DIR "/bindings_revoked") == 0 &&
	      read_num(STATS_DIR "/bound_bytes") == 0, "counters not zero at the end");
	edu_dma_close(&edu);
	free(xa.seg);
	free(xb.seg);
	close(dev);
	note("remove with 2 live bindings: REVOKED, count 0, bound_bytes 0; unbind ok; rebound after rescan");
	return 0;
}

/*
 * bind-remove-race ROUNDS: a child binds and unbinds a buffer to edu in a
 * loop while the parent removes edu and rescans the bus ROUNDS times.
 * Every BIND either works or fails with ENODEV/EBUSY (the device is gone or
 * going), every UNBIND of a binding made works (revoked or not), the kernel
 * log stays clean (judged by the run) and the counters end at zero.
 */
static int case_bind_remove_race(int rounds)
{
	struct race { volatile int stop; int ok, enodev, ebusy, other, err; } *st;
	struct edu_dma edu;
	struct px_bdf bdf;
	char path[320];
	int dev, fd, status;
	pid_t pid;

	if (open_edu_bind(&edu, &dev, &bdf, NULL))
		return 1;
	snprintf(path, sizeof(path), "%s", edu.path);
	edu_dma_close(&edu);
	fd = px_alloc_fd(dev, 256 * KIB, 0, 0);
	CHECK(fd >= 0, "alloc");
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(st != MAP_FAILED, "mmap: %m");
	memset(st, 0, sizeof(*st));
	pid = fork();
	CHECK(pid >= 0, "fork: %m");
	if (pid == 0) {
		while (!st->stop) {
			struct physmem_bind b;
			int r = px_bind_raw(dev, fd, &bdf, 0, NULL, 0, &b);

			if (!r) {
				st->ok++;
				r = px_unbind(dev, fd, b.binding_id, 0);
				if (r) {
					st->other++;
					st->err = r;
				}
			} else if (r == -ENODEV) {
				st->enodev++;
			} else if (r == -EBUSY) {
				st->ebusy++;
			} else {
				st->other++;
				st->err = r;
			}
		}
		_exit(0);
	}
	for (int i = 0; i < rounds; i++) {
		int w;

		usleep(20000);
		if (sysfs_write(path, "remove", "1") ||
		    write_file("/sys/bus/pci/rescan", "1"))
			break;
		for (w = 0; w < 1000 && access(path, F_OK); w++)	/* 10 s */
			usleep(10000);
	}
	usleep(20000);
	st->stop = 1;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status), "child");
	CHECK(!access(path, F_OK), "edu did not come back after rescan");
	CHECK(!st->other, "%d unexpected results, last %s", st->other, strerror(-st->err));
	CHECK(st->ok > 0, "no BIND succeeded");
	close(fd);
	CHECK(read_num(STATS_DIR "/bindings") == 0 &&
	      read_num(STATS_DIR "/bound_bytes") == 0 &&
	      read_num(STATS_DIR "/bindings_revoked") == 0, "counters not zero");
	note("%d removals: %d binds, %d ENODEV, %d EBUSY, nothing else; counters zero",
	     rounds, st->ok, st->enodev, st->ebusy);
	munmap(st, sizeof(*st));
	close(dev);
	return 0;
}

/*
 * bind-range: without translation, a buffer with a page the device cannot
 * reach at its physical address (above 4 GiB: a driverless PCI device has
 * the default 32-bit DMA mask) is refused with ERANGE and leaves no
 * binding, never bounced through swiotlb.  Run in the bounce layout (most
 * RAM above 4 GiB, swiotlb on), where a new buffer usually lies up there.
 */
static int case_bind_range(void)
{
	struct edu_dma edu;
	struct px_bdf bdf;
	struct px_segs s = { 0 };
	int dev, fds[16], n = 0, hi = -1, r;

	if (open_edu_bind(&edu, &dev, &bdf, NULL))
		return 1;
	edu_dma_close(&edu);
	while (n < 16 && hi < 0) {
		fds[n] = px_alloc_fd(dev, 4 * MIB, PHYSMEM_ALLOC_CONTIG, 0);
		CHECK(fds[n] >= 0, "alloc: %s", strerror(-fds[n]));
		r = px_segments(dev, fds[n], &s);
		CHECK(!r && s.n == 1, "segments: %s", strerror(-r));
		if (s.seg[0].addr + s.seg[0].len > 4096 * MIB)
			hi = n;
		free(s.seg);
		n++;
	}
	if (hi < 0) {
		note("no 4 MiB buffer above 4 GiB in %d tries", n);
		return 77;
	}
	r = px_bind_raw(dev, fds[hi], &bdf, 0, NULL, 0, NULL);
	CHECK(r == -ERANGE, "bind of a buffer above 4 GiB: %s",
	      r ? strerror(-r) : "success");
	CHECK(read_num(STATS_DIR "/bindings") == 0 &&
	      read_num(STATS_DIR "/bound_bytes") == 0, "refused BIND left a binding");
	note("buffer above 4 GiB, no IOMMU: BIND refused with ERANGE, no binding left");
	for (int i = 0; i < n; i++)
		close(fds[i]);
	close(dev);
	return 0;
}

/*
 * The vfio-pci takeover check shared by bind-vfio and bind-vfio-group: bind
 * a buffer to @bound (address @bdf), let vfio-pci take @taken (the same
 * device, or another of its IOMMU group), then the binding must be revoked
 * and BIND refused (-EBUSY) until vfio-pci lets go, and the counters return
 * to zero.  Consumes @dev.  77 when vfio-pci cannot be used here.
 */
static int bind_vfio_takeover(int dev, const struct px_bdf *bdf,
			      const char *bound, const char *taken)
{
	struct physmem_bind ba;
	struct px_segs xa, x;
	char path[320], link[400];
	int fa, r;

	if (system("modprobe vfio-pci >/dev/null 2>&1") != 0 ||
	    access("/sys/bus/pci/drivers/vfio-pci", F_OK)) {
		close(dev);
		note("vfio-pci cannot be loaded in this guest");
		return 77;
	}
	fa = px_alloc_fd(dev, 64 * KIB, 0, 0);
	CHECK(fa >= 0, "alloc");
	r = px_bind(dev, fa, bdf, 0, &ba, &xa);
	CHECK(!r, "bind to %s: %s", bound, strerror(-r));

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", taken);
	CHECK(!sysfs_write(path, "driver_override", "vfio-pci"), "driver_override");
	r = write_file("/sys/bus/pci/drivers_probe", taken);
	snprintf(link, sizeof(link), "%s/driver", path);
	if (r || access(link, F_OK)) {
		sysfs_write(path, "driver_override", "\n");
		close(fa);
		close(dev);
		note("vfio-pci did not bind to %s (%s)", taken, r ? strerror(-r) : "no driver link");
		return 77;
	}
	r = px_bind_segments(dev, fa, ba.binding_id, &x);
	CHECK(!r && x.n == 0 && (x.info.bind_flags & PHYSMEM_BIND_REVOKED),
	      "%s's binding not revoked when vfio-pci took %s: %s count %u flags %#x",
	      bound, taken, strerror(-r), x.n, x.info.bind_flags);
	free(x.seg);
	CHECK(!px_unbind(dev, fa, ba.binding_id, 0), "unbind revoked");
	r = px_bind_raw(dev, fa, bdf, 0, NULL, 0, NULL);
	CHECK(r == -EBUSY, "bind to %s while vfio-pci holds %s: %s", bound, taken,
	      r ? strerror(-r) : "success");

	CHECK(!write_file("/sys/bus/pci/drivers/vfio-pci/unbind", taken), "vfio-pci unbind");
	CHECK(!sysfs_write(path, "driver_override", "\n"), "clear driver_override");
	r = px_bind(dev, fa, bdf, 0, &ba, &x);
	CHECK(!r, "bind after vfio-pci let go: %s", strerror(-r));
	free(x.seg);
	close(fa);
	CHECK(read_num(STATS_DIR "/bindings") == 0 &&
	      read_num(STATS_DIR "/bindings_revoked") == 0, "counters not zero");
	free(xa.seg);
	close(dev);
	note("vfio-pci took %s: %s's binding revoked, BIND EBUSY; after vfio let go BIND works",
	     taken, bound);
	return 0;
}

/*
 * bind-vfio: vfio-pci takes edu (driver_override) while a buffer is bound
 * to it: the binding is revoked, and BIND is refused with EBUSY until
 * vfio-pci lets go.  SKIP when vfio-pci cannot be loaded or bound here.
 */
static int case_bind_vfio(void)
{
	struct edu_dma edu;
	struct px_bdf bdf;
	char name[64];
	int dev;

	if (open_edu_bind(&edu, &dev, &bdf, NULL))
		return 1;
	snprintf(name, sizeof(name), "%s", strrchr(edu.path, '/') + 1);
	edu_dma_close(&edu);
	return bind_vfio_takeover(dev, &bdf, name, name);
}

/*
 * bind-vfio-group: two edus in one IOMMU group (behind a PCIe-to-PCI bridge:
 * the vm-iommu boots add them).  vfio-pci taking one of them may give the
 * whole group user space's domain, so a binding to the OTHER one is revoked
 * (its mapping removed while the default domain still holds it), and BIND to
 * it is refused while vfio-pci holds a device of the group.  Before this was
 * enforced, the other device's binding stayed "mapped", its unmap was
 * skipped while vfio's domain was attached, and its stale IOVA reached the
 * freed pages again once vfio let go (issue-10 attack pass).
 */
static int case_bind_vfio_group(void)
{
	const char *base = "/sys/bus/pci/devices";
	char names[8][64], groups[8][64], path[400], link[420];
	struct px_bdf bdf;
	struct dirent *de;
	int n = 0, a = -1, b = -1, dev, r;
	unsigned dom, bus, slot, fn;
	DIR *d = opendir(base);

	CHECK(d, "opendir %s", base);
	while ((de = readdir(d)) && n < 8) {
		unsigned v = 0, dv = 0;
		ssize_t len;
		FILE *f;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(names[0]))
			continue;
		snprintf(path, sizeof(path), "%s/%s/vendor", base, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		r = fscanf(f, "%x", &v);
		fclose(f);
		snprintf(path, sizeof(path), "%s/%s/device", base, de->d_name);
		f = fopen(path, "r");
		if (!f || r != 1)
			goto next;
		r = fscanf(f, "%x", &dv);
		if (r != 1 || v != 0x1234 || dv != 0x11e8)
			goto next;
		snprintf(path, sizeof(path), "%s/%s/iommu_group", base, de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			goto next;
		link[len] = 0;
		snprintf(names[n], sizeof(names[n]), "%s", de->d_name);
		snprintf(groups[n], sizeof(groups[n]), "%s", strrchr(link, '/') + 1);
		n++;
next:
		if (f)
			fclose(f);
	}
	closedir(d);
	for (int i = 0; i < n && a < 0; i++)
		for (int j = i + 1; j < n; j++)
			if (!strcmp(groups[i], groups[j])) {
				a = i;
				b = j;
				break;
			}
	if (a < 0) {
		note("no two edu devices share an IOMMU group in this boot");
		return 77;
	}
	CHECK(sscanf(names[a], "%x:%x:%x.%x", &dom, &bus, &slot, &fn) == 4, "address %s", names[a]);
	bdf.domain = dom;
	bdf.bus = (uint8_t)bus;
	bdf.devfn = (uint8_t)((slot << 3) | fn);
	dev = px_open();
	CHECK(dev >= 0, "open /dev/physmem");
	note("group %s: ", groups[a]);
	return bind_vfio_takeover(dev, &bdf, names[a], names[b]);
}

/* Hold a buffer while running a command; exit status: the command's. */
static int tool_hold_run(char **argv)
{
	int dev = px_open(), fd, status;
	pid_t pid;

	if (dev < 0 || (fd = px_alloc_fd(dev, 64 * KIB, 0, 0)) < 0)
		return 125;
	close(dev);
	pid = fork();
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 125;
	close(fd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 126;
}

/* ---- contiguous pools (PHYSMEM_ALLOC_POOL, PHYSMEM_IOC_POOL_INFO) ---- */

#define POOLS_DIR	"/sys/class/misc/physmem/pools"

static int px_pool_info(int dev, uint32_t index, struct physmem_pool_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	info->index = index;
	return ioctl(dev, PHYSMEM_IOC_POOL_INFO, info) ? -errno : 0;
}

/* A pool allocation; *ret gets the reply (pool_status on -ENOSPC too). */
static int px_alloc_pool(int dev, uint64_t len, uint32_t pool, uint32_t cache,
			 struct physmem_alloc *ret)
{
	struct physmem_alloc a = { .size = sizeof(a), .flags = PHYSMEM_ALLOC_POOL,
				   .length = len, .cache = cache, .pool = pool };
	int r = ioctl(dev, PHYSMEM_IOC_ALLOC, &a) ? -errno : 0;

	if (ret)
		*ret = a;
	return r;
}

/* Number of pools: the first index POOL_INFO refuses. */
static uint32_t px_pool_count(int dev)
{
	struct physmem_pool_info info;
	uint32_t n = 0;

	while (!px_pool_info(dev, n, &info))
		n++;
	return n;
}

/* Pool @index's sysfs file @attr, or -1. */
static long long pool_sysfs(const struct physmem_pool_info *info, const char *attr)
{
	char path[256];

	snprintf(path, sizeof(path), POOLS_DIR "/%s/%s", info->name, attr);
	return read_num(path);
}

/* POOL_INFO and sysfs must tell the same figures. */
static int pool_sysfs_agrees(const struct physmem_pool_info *i)
{
	CHECK(pool_sysfs(i, "total") == (long long)i->total &&
	      pool_sysfs(i, "free") == (long long)i->free &&
	      pool_sysfs(i, "largest_free") == (long long)i->largest_free &&
	      pool_sysfs(i, "buffers") == (long long)i->buffers &&
	      pool_sysfs(i, "fail_exhausted") == (long long)i->fail_exhausted &&
	      pool_sysfs(i, "fail_fragmented") == (long long)i->fail_fragmented,
	      "sysfs of pool %s disagrees with POOL_INFO (free %lld vs %llu)",
	      i->name, pool_sysfs(i, "free"), (unsigned long long)i->free);
	return 0;
}

/* Open /dev/physmem and describe pool @index; SKIP (77) without it. */
static int pool_open(uint32_t index, int *dev, struct physmem_pool_info *info)
{
	int r;

	*dev = px_open();
	CHECK(*dev >= 0, "open: %s", strerror(errno));
	r = px_pool_info(*dev, index, info);
	if (r == -ENOENT) {
		note("no pool %u (module loaded without a pool parameter)", index);
		close(*dev);
		return 77;
	}
	CHECK(!r, "POOL_INFO %u: %s", index, strerror(-r));
	CHECK(info->name[0] && info->name[sizeof(info->name) - 1] == 0,
	      "pool %u: bad name", index);
	return 0;
}

/*
 * One pool buffer of @size: a single segment inside the pool, zeroed, then
 * a pattern written through its mmap; edu copies the last page's first
 * 2 KiB to the first page and the first page's first 2 KiB to the last
 * page's second half, through the reported bus addresses.  The mapping
 * must then show exactly those copies and the pattern everywhere else.
 */
static int pool_dma_one(int dev, struct edu_dma *edu, uint32_t index,
			const struct physmem_pool_info *before, uint64_t size)
{
	struct physmem_dma_segment seg[2] = { { 0, 0 }, { 0, 0 } };
	struct physmem_alloc a = { .size = sizeof(a), .flags = PHYSMEM_ALLOC_POOL,
				   .length = size, .pool = index,
				   .segments = (uintptr_t)seg, .capacity = 2 };
	struct physmem_pool_info info;
	struct px_segs s;
	uint64_t base, seed = size ^ 0x900;
	long long bad;
	uint8_t *m;
	int r;

	CHECK(!ioctl(dev, PHYSMEM_IOC_ALLOC, &a), "alloc %llu MiB from pool %u: %s",
	      (unsigned long long)(size / MIB), index, strerror(errno));
	CHECK(a.actual_length == size && a.nr_segments == 1 && seg[0].len == size,
	      "%llu MiB: %u segments, first %llu bytes", (unsigned long long)(size / MIB),
	      a.nr_segments, (unsigned long long)seg[0].len);
	base = seg[0].addr;
	if (before->base)
		CHECK(base >= before->base && base + size <= before->base + before->total,
		      "%llu MiB at %#llx: outside the pool [%#llx, +%llu MiB)",
		      (unsigned long long)(size / MIB), (unsigned long long)base,
		      (unsigned long long)before->base,
		      (unsigned long long)(before->total / MIB));
	if (size >= 2 * MIB)
		CHECK(!(base & (2 * MIB - 1)), "%#llx not 2 MiB aligned",
		      (unsigned long long)base);
	r = px_segments(dev, a.fd, &s);
	CHECK(!r, "segments: %s", strerror(-r));
	CHECK(s.n == 1 && s.seg[0].addr == base &&
	      (s.info.flags & (PHYSMEM_BUF_POOL | PHYSMEM_BUF_CONTIG)) ==
	      (PHYSMEM_BUF_POOL | PHYSMEM_BUF_CONTIG),
	      "SEGMENTS: %u segments, flags %#x", s.n, s.info.flags);
	free(s.seg);
	r = px_pool_info(dev, index, &info);
	CHECK(!r && info.buffers == before->buffers + 1 &&
	      (before->flags & PHYSMEM_POOL_INFO_SHARED ||
	       info.free == before->free - size),
	      "POOL_INFO after alloc: buffers %llu (was %llu), free %llu (was %llu)",
	      (unsigned long long)info.buffers, (unsigned long long)before->buffers,
	      (unsigned long long)info.free, (unsigned long long)before->free);
	if (pool_sysfs_agrees(&info))
		return 1;

	m = px_map(a.fd, size, 0);
	CHECK(m, "mmap: %s", strerror(errno));
	bad = first_nonzero(m, size);
	CHECK(bad < 0, "%llu MiB: not zeroed at %lld", (unsigned long long)(size / MIB), bad);
	px_sync(a.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	fill(m, size, seed, 0);
	px_sync(a.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	r = edu_dma_to_device(edu, base + size - PAGE, 0, EDU_DMA_MAX);
	if (!r)
		r = edu_dma_to_ram(edu, 0, base + EDU_DMA_MAX, EDU_DMA_MAX);
	if (!r)
		r = edu_dma_to_device(edu, base, 0, EDU_DMA_MAX);
	if (!r)
		r = edu_dma_to_ram(edu, 0, base + size - EDU_DMA_MAX, EDU_DMA_MAX);
	CHECK(!r, "edu dma: %s", strerror(-r));
	px_sync(a.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	bad = verify(m, EDU_DMA_MAX, seed, 0);
	CHECK(bad < 0, "first page first half changed at %lld", bad);
	bad = verify(m + EDU_DMA_MAX, EDU_DMA_MAX, seed, size - PAGE);
	CHECK(bad < 0, "first page: edu's copy of the last page wrong at %lld", bad);
	bad = verify(m + PAGE, size - 2 * PAGE, seed, PAGE);
	CHECK(bad < 0, "middle changed at %lld", bad + (long long)PAGE);
	bad = verify(m + size - PAGE, EDU_DMA_MAX, seed, size - PAGE);
	CHECK(bad < 0, "last page first half changed at %lld", bad);
	bad = verify(m + size - EDU_DMA_MAX, EDU_DMA_MAX, seed, 0);
	CHECK(bad < 0, "last page: edu's copy of the first page wrong at %lld", bad);
	px_sync(a.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	/* root's physical-address mapping of the last page sees the same bytes */
	{
		uint8_t *ph = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, dev,
				   (off_t)(base + size - PAGE));

		CHECK(ph != MAP_FAILED, "mmap /dev/physmem at %#llx: %s",
		      (unsigned long long)(base + size - PAGE), strerror(errno));
		r = memcmp(ph, m + size - PAGE, PAGE);
		munmap(ph, PAGE);
		CHECK(!r, "physical mapping of the last page differs");
	}
	/* VM_PFNMAP: no page reference can be taken through the mapping */
	{
		struct iovec iov = { .iov_base = m, .iov_len = PAGE };
		int p[2];
		ssize_t n;

		CHECK(!pipe2(p, O_CLOEXEC), "pipe: %s", strerror(errno));
		n = vmsplice(p[1], &iov, 1, 0);
		r = errno;
		close(p[0]);
		close(p[1]);
		CHECK(n < 0 && r == EFAULT, "vmsplice from the pool mapping: %zd (%s), want EFAULT",
		      n, n < 0 ? strerror(r) : "spliced");
	}
	munmap(m, size);
	close(a.fd);
	note("%llu MiB @%#llx 1 segment, edu first<->last page ok, phys mmap ok, vmsplice EFAULT; ",
	     (unsigned long long)(size / MIB), (unsigned long long)base);
	return 0;
}

/* pool-dma INDEX: 64 MiB and 256 MiB buffers, one segment each, real DMA. */
static int case_pool_dma(uint32_t index)
{
	static const uint64_t sizes[] = { 64 * MIB, 256 * MIB };
	struct physmem_pool_info info, after;
	struct edu_dma edu;
	int dev, r;

	r = pool_open(index, &dev, &info);
	if (r)
		return r;
	r = edu_dma_open(&edu);
	CHECK(!r, "edu device: %s", strerror(-r));
	for (unsigned int i = 0; i < 2; i++) {
		CHECK(!px_pool_info(dev, index, &info), "POOL_INFO");
		if (pool_dma_one(dev, &edu, index, &info, sizes[i]))
			return 1;
		CHECK(!px_pool_info(dev, index, &after) && after.buffers == info.buffers &&
		      after.free == info.free,
		      "after free: buffers %llu free %llu, want %llu %llu",
		      (unsigned long long)after.buffers, (unsigned long long)after.free,
		      (unsigned long long)info.buffers, (unsigned long long)info.free);
	}
	edu_dma_close(&edu);
	note("pool %s", info.name);
	close(dev);
	return 0;
}

/* pool-exhaust INDEX: asking more than is free is EXHAUSTED, counted. */
static int case_pool_exhaust(uint32_t index)
{
	struct physmem_pool_info info, now;
	struct physmem_alloc a;
	int dev, fds0, r, held;
	uint64_t half;

	r = pool_open(index, &dev, &info);
	if (r)
		return r;
	CHECK(!(info.flags & PHYSMEM_POOL_INFO_SHARED), "pool %s is shared: sizes unknown",
	      info.name);
	CHECK(info.free == info.total && info.buffers == 0,
	      "pool not empty at the start: free %llu of %llu",
	      (unsigned long long)info.free, (unsigned long long)info.total);
	fds0 = count_fds();
	r = px_alloc_pool(dev, info.free + 2 * MIB, index, 0, &a);
	CHECK(r == -ENOSPC && a.pool_status == PHYSMEM_POOL_EXHAUSTED && a.fd == 0,
	      "free+2MiB: %s, pool_status %u", r ? strerror(-r) : "success", a.pool_status);
	CHECK(!px_pool_info(dev, index, &now) &&
	      now.fail_exhausted == info.fail_exhausted + 1 &&
	      now.fail_fragmented == info.fail_fragmented && now.free == info.free,
	      "counters: exhausted %llu (was %llu)", (unsigned long long)now.fail_exhausted,
	      (unsigned long long)info.fail_exhausted);
	if (pool_sysfs_agrees(&now))
		return 1;

	/* hold half: now the other half plus one page is too much */
	half = (info.total / 2) & ~(2 * MIB - 1);
	r = px_alloc_pool(dev, half, index, 0, &a);
	CHECK(!r, "alloc half (%llu MiB): %s", (unsigned long long)(half / MIB), strerror(-r));
	held = a.fd;
	CHECK(!px_pool_info(dev, index, &now), "POOL_INFO");
	r = px_alloc_pool(dev, now.free + PAGE, index, 0, &a);
	CHECK(r == -ENOSPC && a.pool_status == PHYSMEM_POOL_EXHAUSTED,
	      "rest+4KiB with half held: %s, pool_status %u",
	      r ? strerror(-r) : "success", a.pool_status);
	r = px_alloc_pool(dev, now.free, index, 0, &a);
	CHECK(!r, "exactly the rest (%llu MiB): %s", (unsigned long long)(now.free / MIB),
	      strerror(-r));
	close(a.fd);
	close(held);
	CHECK(count_fds() == fds0, "fd leak: %d -> %d", fds0, count_fds());
	CHECK(!px_pool_info(dev, index, &now) && now.fail_exhausted == info.fail_exhausted + 2 &&
	      now.free == info.total && now.buffers == 0,
	      "end: exhausted %llu, free %llu, buffers %llu",
	      (unsigned long long)now.fail_exhausted, (unsigned long long)now.free,
	      (unsigned long long)now.buffers);
	note("pool %s (%llu MiB): free+2MiB and rest+4KiB EXHAUSTED, the exact rest fits",
	     info.name, (unsigned long long)(info.total / MIB));
	close(dev);
	return 0;
}

/*
 * pool-frag INDEX: six buffers fill the pool; with the 2nd and 4th freed,
 * their sum is free but in no one run: FRAGMENTED, counted.
 */
static int case_pool_frag(uint32_t index)
{
	struct physmem_pool_info info, now;
	struct physmem_alloc a;
	int dev, fd[6], r, i;
	uint64_t b;

	r = pool_open(index, &dev, &info);
	if (r)
		return r;
	CHECK(!(info.flags & PHYSMEM_POOL_INFO_SHARED), "pool %s is shared", info.name);
	CHECK(info.free == info.total, "pool not empty at the start");
	b = (info.free / 6) & ~(2 * MIB - 1);
	CHECK(b >= 16 * MIB, "pool too small: %llu MiB", (unsigned long long)(info.total / MIB));
	for (i = 0; i < 6; i++) {
		r = px_alloc_pool(dev, b, index, 0, &a);
		CHECK(!r, "buffer %d of %llu MiB: %s", i, (unsigned long long)(b / MIB),
		      strerror(-r));
		fd[i] = a.fd;
	}
	close(fd[1]);
	close(fd[3]);
	CHECK(!px_pool_info(dev, index, &now), "POOL_INFO");
	CHECK(now.free >= 2 * b && now.largest_free < 2 * b && now.buffers == 4,
	      "after freeing two: free %llu largest %llu buffers %llu",
	      (unsigned long long)now.free, (unsigned long long)now.largest_free,
	      (unsigned long long)now.buffers);
	r = px_alloc_pool(dev, 2 * b, index, 0, &a);
	CHECK(r == -ENOSPC && a.pool_status == PHYSMEM_POOL_FRAGMENTED,
	      "2 x %llu MiB: %s, pool_status %u", (unsigned long long)(b / MIB),
	      r ? strerror(-r) : "success", a.pool_status);
	CHECK(!px_pool_info(dev, index, &now) &&
	      now.fail_fragmented == info.fail_fragmented + 1 &&
	      now.fail_exhausted == info.fail_exhausted,
	      "counters: fragmented %llu (was %llu)", (unsigned long long)now.fail_fragmented,
	      (unsigned long long)info.fail_fragmented);
	if (pool_sysfs_agrees(&now))
		return 1;
	/* one of the holes still takes a buffer of its size */
	r = px_alloc_pool(dev, b, index, 0, &a);
	CHECK(!r, "refill a hole: %s", strerror(-r));
	close(a.fd);
	close(fd[0]);
	close(fd[2]);
	close(fd[4]);
	close(fd[5]);
	CHECK(!px_pool_info(dev, index, &now) && now.free == info.total &&
	      now.largest_free == info.total && now.buffers == 0,
	      "end: free %llu largest %llu of %llu", (unsigned long long)now.free,
	      (unsigned long long)now.largest_free, (unsigned long long)info.total);
	note("pool %s: 6 x %llu MiB, 2 freed, %llu MiB free in runs of at most %llu MiB: FRAGMENTED",
	     info.name, (unsigned long long)(b / MIB), (unsigned long long)(2 * b / MIB),
	     (unsigned long long)(b / MIB));
	close(dev);
	return 0;
}

/*
 * pool-free-back INDEX: a released buffer's run stays out of the pool for
 * its quarantine and comes back after it; in the end free == total.
 */
static int case_pool_free_back(uint32_t index)
{
	struct physmem_pool_info info, now;
	struct physmem_alloc a;
	int dev, r, i;

	r = pool_open(index, &dev, &info);
	if (r)
		return r;
	CHECK(!(info.flags & PHYSMEM_POOL_INFO_SHARED), "pool %s is shared", info.name);
	CHECK(!write_file(PARAM_DIR "/quarantine_ms", "1500"), "set quarantine_ms");
	r = px_alloc_pool(dev, 32 * MIB, index, 0, &a);
	if (r)
		write_file(PARAM_DIR "/quarantine_ms", "0");
	CHECK(!r, "alloc: %s", strerror(-r));
	close(a.fd);
	CHECK(!px_pool_info(dev, index, &now), "POOL_INFO");
	write_file(PARAM_DIR "/quarantine_ms", "0");
	CHECK(now.free == info.free - 32 * MIB && now.buffers == info.buffers + 1 &&
	      read_num(STATS_DIR "/quarantined_bytes") >= (long long)(32 * MIB),
	      "in quarantine: free %llu (was %llu), quarantined %lld",
	      (unsigned long long)now.free, (unsigned long long)info.free,
	      read_num(STATS_DIR "/quarantined_bytes"));
	for (i = 0; i < 200; i++) {
		CHECK(!px_pool_info(dev, index, &now), "POOL_INFO");
		if (now.free == info.free)
			break;
		usleep(50 * 1000);
	}
	CHECK(now.free == info.free && now.buffers == info.buffers &&
	      read_num(STATS_DIR "/quarantined_bytes") == 0,
	      "after quarantine: free %llu, want %llu", (unsigned long long)now.free,
	      (unsigned long long)info.free);
	CHECK(now.free == now.total && now.largest_free == now.total && now.buffers == 0,
	      "pool not whole: free %llu largest %llu total %llu buffers %llu",
	      (unsigned long long)now.free, (unsigned long long)now.largest_free,
	      (unsigned long long)now.total, (unsigned long long)now.buffers);
	if (pool_sysfs_agrees(&now))
		return 1;
	note("pool %s: run held through its quarantine, back after it; free == total == %llu MiB",
	     info.name, (unsigned long long)(now.total / MIB));
	close(dev);
	return 0;
}

/* A "Name: N kB" line of /proc/meminfo, in KiB, or -1. */
static long long meminfo_kib(const char *name)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	long long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, strlen(name))) {
			v = strtoll(line + strlen(name), NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Tool for the case scripts: one line "INDEX KIND NAME" per pool. */
static int tool_pool_list(void)
{
	static const char *const kinds[] = { "?", "memmap", "reserve_mem", "cma" };
	struct physmem_pool_info info;
	int dev = px_open();
	uint32_t i;

	if (dev < 0)
		return 1;
	for (i = 0; !px_pool_info(dev, i, &info); i++)
		printf("%u %s %s\n", i, info.kind < 4 ? kinds[info.kind] : "?", info.name);
	close(dev);
	return 0;
}

/* One ALLOC with @a; closes a returned fd; 0 or -errno. */
static int pool_call(int dev, struct physmem_alloc a)
{
	int r = ioctl(dev, PHYSMEM_IOC_ALLOC, &a) ? -errno : 0;

	if (!r)
		close(a.fd);
	return r;
}

#define POOL_REQ(...) ((struct physmem_alloc){ .size = sizeof(struct physmem_alloc), \
	.flags = PHYSMEM_ALLOC_POOL, .length = 4 * MIB, __VA_ARGS__ })

/* pool-errors INDEX: every bad pool request gets its named error. */
static int case_pool_errors(uint32_t index)
{
	struct physmem_pool_info info, now;
	struct physmem_pool_info big[2];
	static const char *const kinds[] = { "?", "memmap\n", "reserve_mem\n", "cma\n" };
	uint32_t n;
	int dev, r, fds0, kind;
	char path[256], kbuf[32];

	r = pool_open(index, &dev, &info);
	if (r)
		return r;
	fds0 = count_fds();
	n = px_pool_count(dev);
	CHECK(pool_call(dev, POOL_REQ(.pool = n)) == -ENODEV, "pool %u (none) not ENODEV", n);
	CHECK(pool_call(dev, POOL_REQ(.pool = UINT32_MAX)) == -ENODEV, "pool max not ENODEV");
	CHECK(pool_call(dev, POOL_REQ(.pool = index, .pool_status = 1)) == -EINVAL,
	      "pool_status set on input not EINVAL");
	CHECK(pool_call(dev, POOL_REQ(.flags = 0, .pool = index + 1)) == -EINVAL,
	      "pool index without PHYSMEM_ALLOC_POOL not EINVAL");
	CHECK(pool_call(dev, POOL_REQ(.size = PHYSMEM_ALLOC_SIZE_VER1, .pool = index)) == -EINVAL,
	      "PHYSMEM_ALLOC_POOL in a 64-byte struct not EINVAL");
	CHECK(pool_call(dev, POOL_REQ(.pool = index, .length = 0)) == -EINVAL, "length 0");
	CHECK(pool_call(dev, POOL_REQ(.pool = index, .length = UINT64_MAX)) == -EINVAL,
	      "length max");
	CHECK(pool_call(dev, POOL_REQ(.pool = index, .cache = 3)) == -EINVAL, "cache 3");
	CHECK(pool_call(dev, POOL_REQ(.pool = index, .flags = 0x80 | PHYSMEM_ALLOC_POOL)) == -EINVAL,
	      "unknown flag");
	CHECK(pool_call(dev, POOL_REQ(.pool = index, .reserved = 1)) == -EINVAL, "reserved");
	CHECK(pool_call(dev, POOL_REQ(.pool = index, .segments = 1, .capacity = 1)) == -EFAULT,
	      "bad segments pointer");
	/* max_buffer_mb applies to pool buffers */
	CHECK(!write_file(PARAM_DIR "/max_buffer_mb", "2"), "set max_buffer_mb");
	r = pool_call(dev, POOL_REQ(.pool = index));
	write_file(PARAM_DIR "/max_buffer_mb", "4096");
	CHECK(r == -EINVAL, "max_buffer_mb=2 allowed a 4 MiB pool buffer: %d", r);
	/* cache modes: a memmap pool is write-back only */
	for (uint32_t c = PHYSMEM_MODE_WC; c <= PHYSMEM_MODE_UNCACHED; c++) {
		r = pool_call(dev, POOL_REQ(.pool = index, .cache = c));
		if (info.kind == PHYSMEM_POOL_KIND_MEMMAP)
			CHECK(r == -EOPNOTSUPP, "memmap pool, cache %u: %d, want EOPNOTSUPP", c, r);
		else
			CHECK(r == 0, "cache %u from a %u pool: %s", c, info.kind, strerror(-r));
	}
	/* a CMA area cannot hand out more than it holds: EBUSY, no status */
	if (info.kind == PHYSMEM_POOL_KIND_CMA) {
		long long cma_kib = meminfo_kib("CmaTotal:");
		struct physmem_alloc a = POOL_REQ(.pool = index);

		CHECK(cma_kib > 0, "no CmaTotal in /proc/meminfo");
		a.length = (uint64_t)cma_kib * KIB + 64 * MIB;
		CHECK(!write_file(PARAM_DIR "/max_total_mb", "1048576"), "set max_total_mb");
		r = ioctl(dev, PHYSMEM_IOC_ALLOC, &a) ? -errno : 0;
		write_file(PARAM_DIR "/max_total_mb", "0");
		if (!r)
			close(a.fd);
		CHECK(r == -EBUSY && a.pool_status == 0,
		      "CmaTotal+64MiB from CMA: %d, pool_status %u, want EBUSY", r, a.pool_status);
	}
	/* POOL_INFO */
	CHECK(px_pool_info(dev, n, &now) == -ENOENT, "POOL_INFO %u not ENOENT", n);
	now.size = 16;
	CHECK(ioctl(dev, PHYSMEM_IOC_POOL_INFO, &now) && errno == EINVAL, "POOL_INFO size 16");
	memset(big, 0, sizeof(big));
	big[0].size = sizeof(big);
	big[0].index = index;
	((uint8_t *)big)[sizeof(big) - 1] = 1;
	CHECK(ioctl(dev, PHYSMEM_IOC_POOL_INFO, big) && errno == E2BIG,
	      "POOL_INFO nonzero tail not E2BIG");
	CHECK(ioctl(dev, PHYSMEM_IOC_POOL_INFO, NULL) && errno == EFAULT, "POOL_INFO NULL");
	snprintf(path, sizeof(path), POOLS_DIR "/%s/kind", info.name);
	kind = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(kind >= 0, "no %s", path);
	r = (int)read(kind, kbuf, sizeof(kbuf) - 1);
	close(kind);
	kbuf[r > 0 ? r : 0] = 0;
	CHECK(info.kind < 4 && !strcmp(kbuf, kinds[info.kind]), "sysfs kind '%s' for kind %u",
	      kbuf, info.kind);
	CHECK(count_fds() == fds0, "fd leak: %d -> %d", fds0, count_fds());
	CHECK(!px_pool_info(dev, index, &now) && now.buffers == 0 && now.free == info.free,
	      "pool changed: buffers %llu free %llu", (unsigned long long)now.buffers,
	      (unsigned long long)now.free);
	note("pool %s (kind %u): %u pools; bad index, flags, sizes, cache and POOL_INFO calls refused",
	     info.name, info.kind, n);
	close(dev);
	return 0;
}

static int report(const char *name, int rc)
{
	printf("PHYSMEM-TEST %s %s %s\n", name,
	       rc == 0 ? "PASS" : rc == 77 ? "SKIP" : "FAIL",
	       detail_len ? detail : "-");
	fflush(stdout);
	return rc == 0 ? 0 : rc == 77 ? 77 : 1;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(c, "mkdisk") && argc == 4)
		return tool_mkdisk(argv[2], strtoull(argv[3], NULL, 0) * MIB);
	if (!strcmp(c, "hold-run") && argc > 2)
		return tool_hold_run(argv + 2);
	if (!strcmp(c, "edu-copy"))
		return tool_edu_copy();
	if (!strcmp(c, "frag-hold"))
		return tool_frag_hold();
	if (!strcmp(c, "dma-contig"))
		return report(c, case_dma_contig());
	if (!strcmp(c, "dma-sg"))
		return report(c, case_dma_sg());
	if (!strcmp(c, "dma-pin"))
		return report(c, case_dma_pin());
	if (!strcmp(c, "isolation-unpriv-open"))
		return report(c, case_unpriv_open());
	if (!strcmp(c, "isolation-mmap"))
		return report(c, case_isolation_mmap());
	if (!strcmp(c, "isolation-phys-nocap"))
		return report(c, case_phys_nocap());
	if (!strcmp(c, "phys-demo"))
		return report(c, case_phys_demo());
	if (!strcmp(c, "phys-any-ram"))
		return report(c, case_phys_anyram());
	if (!strcmp(c, "odirect") && argc == 4)
		return report(c, case_odirect(argv[2],
					      strtoull(argv[3], NULL, 0) * MIB));
	if (!strcmp(c, "pin-memfd-close-keeps-pages"))
		return report(c, case_pin_keeps(false));
	if (!strcmp(c, "pin-memfd-punch-keeps-pages"))
		return report(c, case_pin_keeps(true));
	if (!strcmp(c, "pin-sparse-refused"))
		return report(c, case_pin_unpopulated(false));
	if (!strcmp(c, "pin-unwritten-refused"))
		return report(c, case_pin_unpopulated(true));
	if (!strcmp(c, "pin-mapping-refuses-gup") && argc == 3)
		return report(c, case_pin_refuses_gup(argv[2]));
	if (!strcmp(c, "vmsplice-after-free-stays-charged"))
		return report(c, case_vmsplice_charged());
	if (!strcmp(c, "query-many"))
		return report(c, case_query_many());
	if (!strcmp(c, "lifecycle-cycles"))
		return report(c, case_cycles(argc > 2 ? atoi(argv[2]) : 1000));
	if (!strcmp(c, "lifecycle-race"))
		return report(c, case_race(argc > 2 ? atoi(argv[2]) : 500));
	if (!strcmp(c, "bind-dma") && argc == 3)
		return report(c, case_bind_dma(argv[2]));
	if (!strcmp(c, "bind-direct"))
		return report(c, case_bind_dma("direct"));
	if (!strcmp(c, "bind-access"))
		return report(c, case_bind_access());
	if (!strcmp(c, "bind-errors"))
		return report(c, case_bind_errors());
	if (!strcmp(c, "bind-release"))
		return report(c, case_bind_release());
	if (!strcmp(c, "bind-revoke"))
		return report(c, case_bind_revoke());
	if (!strcmp(c, "bind-remove-race"))
		return report(c, case_bind_remove_race(argc > 2 ? atoi(argv[2]) : 5));
	if (!strcmp(c, "bind-range"))
		return report(c, case_bind_range());
	if (!strcmp(c, "bind-vfio-group"))
		return report(c, case_bind_vfio_group());
	if (!strcmp(c, "bind-vfio"))
		return report(c, case_bind_vfio());
	if (!strcmp(c, "pool-list"))
		return tool_pool_list();
	if (!strcmp(c, "pool-dma"))
		return report(c, case_pool_dma(argc > 2 ? atoi(argv[2]) : 0));
	if (!strcmp(c, "pool-exhaust"))
		return report(c, case_pool_exhaust(argc > 2 ? atoi(argv[2]) : 0));
	if (!strcmp(c, "pool-frag"))
		return report(c, case_pool_frag(argc > 2 ? atoi(argv[2]) : 0));
	if (!strcmp(c, "pool-free-back"))
		return report(c, case_pool_free_back(argc > 2 ? atoi(argv[2]) : 0));
	if (!strcmp(c, "pool-errors"))
		return report(c, case_pool_errors(argc > 2 ? atoi(argv[2]) : 0));
	if (!strcmp(c, "lifecycle-bad-ioctls"))
		return report(c, case_bad_ioctls(argc > 2 ? atoi(argv[2]) : 8));
	fprintf(stderr, "usage: %s CASE [ARGS]\n", argv[0]);
	return 2;
}
