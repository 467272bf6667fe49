// SPDX-License-Identifier: GPL-2.0
/*
 * physmem-attack: hostile-user attacks on allocated (compound scatter-gather,
 * contiguous, WC/UC) buffer mappings.  Each case prints
 * "PHYSMEM-TEST atk-<name> PASS|FAIL|SKIP detail" and, after it, requires
 * the module's counters (buffers, bytes, draining) to return to zero.
 *
 * physmem-attack [--unpriv] CASE...   (CASE "all" runs every case)
 * --unpriv: /dev/physmem is opened as root, then the process drops to
 * uid/gid 65534 before allocating and attacking.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/aio_abi.h>
#include <linux/dma-buf.h>
#include <linux/io_uring.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uapi/physmem.h"

#define KIB 1024ULL
#define MIB (1024ULL * 1024)
#define PG 4096ULL
#define STATS "/sys/class/misc/physmem/stats"
#define DISK_SEED 0xd15cULL

#include "vmtest-note.h"
#include "vgem-abi.h"
#include "edu-importer/physmem_edu_importer.h"

static int dev = -1;
static int unpriv;

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* ---- buffers ---- */

struct buf {
	int fd;
	uint64_t id, len;
};

static int balloc(struct buf *b, uint64_t len, int contig, uint32_t cache)
{
	struct physmem_alloc a = { .size = sizeof(a), .length = len,
		.flags = contig ? PHYSMEM_ALLOC_CONTIG : 0, .cache = cache };

	if (ioctl(dev, PHYSMEM_IOC_ALLOC, &a))
		return -errno;
	b->fd = a.fd;
	b->id = a.id;
	b->len = a.actual_length;
	return 0;
}

/* 0 alive (flags in *fl), -ENOENT gone. */
static int bquery(uint64_t id, uint32_t *fl)
{
	struct physmem_query q = { .size = sizeof(q), .id = id };

	if (ioctl(dev, PHYSMEM_IOC_QUERY, &q))
		return -errno;
	if (fl)
		*fl = q.out_flags;
	return 0;
}

static inline uint32_t wpat(uint32_t seed, uint64_t word)
{
	uint32_t x = (uint32_t)word * 2654435761u + seed;

	return x ^ (x >> 15);
}

/* fill / verify the words of buffer bytes [off, off+len) seen at p */
static void fillp(void *p, uint64_t off, uint64_t len, uint32_t seed)
{
	uint32_t *w = p;

	for (uint64_t i = 0; i < len / 4; i++)
		w[i] = wpat(seed, off / 4 + i);
}

static long long checkp(const void *p, uint64_t off, uint64_t len, uint32_t seed)
{
	const uint32_t *w = p;

	for (uint64_t i = 0; i < len / 4; i++)
		if (w[i] != wpat(seed, off / 4 + i))
			return (long long)(off + i * 4);
	return -1;
}

/* one word per page only: fast */
static long long checkpages(const void *p, uint64_t off, uint64_t len, uint32_t seed)
{
	const uint32_t *w = p;

	for (uint64_t i = 0; i < len / 4; i += PG / 4 - 1)
		if (w[i] != wpat(seed, off / 4 + i))
			return (long long)(off + i * 4);
	return -1;
}

/* An address @mis pages past a 2 MiB boundary with @len (+slack) free. */
static void *odd_addr(uint64_t len, unsigned int mis)
{
	uint64_t span = len + 8 * MIB;
	char *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (r == MAP_FAILED)
		return NULL;
	munmap(r, span);
	return (void *)((((uintptr_t)r + 2 * MIB) & ~(uintptr_t)(2 * MIB - 1)) + mis * PG);
}

static void *bmap(struct buf *b, uint64_t off, uint64_t len, unsigned int mis)
{
	void *want = odd_addr(len, mis);
	void *m = mmap(want, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | (want ? MAP_FIXED_NOREPLACE : 0), b->fd, (off_t)off);

	return m == MAP_FAILED ? NULL : m;
}

static int wait_zero(const char *when)
{
	long long b = -1, n = -1, d = -1, db = -1;

	for (int i = 0; i < 300; i++) {
		b = read_num(STATS "/buffers");
		n = read_num(STATS "/bytes");
		d = read_num(STATS "/draining_buffers");
		db = read_num(STATS "/draining_bytes");
		if (!b && !n && !d && !db)
			return 0;
		usleep(50000);
	}
	FAIL("%s: counters stuck buffers=%lld bytes=%lld draining=%lld/%lld; ",
	     when, b, n, d, db);
}

/* SIGSEGV/SIGBUS catching for probes */
static sigjmp_buf jb;
static volatile sig_atomic_t probing;
static atomic_int stray_sig;
static atomic_int stray_bus;
static void on_sig(int sig)
{
	if (probing)
		siglongjmp(jb, sig);
	/*
	 * A stray fault (a race thread's access got SIGBUS/SIGSEGV although
	 * the mapping was there all along): count it and return, which
	 * retries the access; the case fails on a non-zero count.
	 */
	atomic_fetch_add(sig == SIGBUS ? &stray_bus : &stray_sig, 1);
	if (atomic_load(&stray_bus) + atomic_load(&stray_sig) > 100000) {
		static const char m[] = "PHYSMEM-ATK FAIL: endless SIGBUS/SIGSEGV on one access\n";

		write(1, m, sizeof(m) - 1);
		_exit(99);
	}
}

/* 0 ok, else the signal the access got */
static int probe_rw(volatile uint32_t *p, int write)
{
	int s;

	probing = 1;
	s = sigsetjmp(jb, 1);
	if (!s) {
		if (write)
			*p = *p;
		else
			(void)*p;
	}
	probing = 0;
	return s;
}

/* The size with blocks of orders 10,10,10,2,0 (12 MiB + 20 KiB). */
#define SG_ODD (12 * MIB + 5 * PG)

static const char *cname(int contig, uint32_t cache)
{
	static char s[32];

	snprintf(s, sizeof(s), "%s/%s", contig ? "contig" : "sg",
		 cache == 0 ? "wb" : cache == 1 ? "wc" : "uc");
	return s;
}

/* ---- cases ---- */

/* fork with the mapping, free in parent first or child first */
static int case_fork(void)
{
	static const struct { int contig; uint32_t cache; uint64_t len; } m[] = {
		{ 0, 0, SG_ODD }, { 1, 0, 4 * MIB }, { 0, 1, 4 * MIB + 3 * PG },
		{ 0, 2, 2 * MIB + 3 * PG }, { 1, 1, 1 * MIB + PG },
	};

	for (unsigned int k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
		for (int order = 0; order < 3; order++) {
			struct buf b;
			int pp[2], st, r;
			uint32_t seed = 0x1000 + k * 8 + order;
			char *p;
			pid_t pid;

			CHECK(!(r = balloc(&b, m[k].len, m[k].contig, m[k].cache)),
			      "alloc %s: %s", cname(m[k].contig, m[k].cache), strerror(-r));
			p = bmap(&b, 0, b.len, 7);
			CHECK(p, "mmap: %s", strerror(errno));
			fillp(p, 0, b.len, seed);
			CHECK(!pipe(pp), "pipe");
			pid = fork();
			CHECK(pid >= 0, "fork");
			if (pid == 0) {
				char c;

				close(pp[1]);
				if (checkp(p, 0, b.len, seed) >= 0)
					_exit(2);
				if (order == 0 && read(pp[0], &c, 1) != 0)
					_exit(3);
				/* parent gone from the buffer (order 0) */
				if (checkp(p, 0, b.len, seed) >= 0)
					_exit(4);
				((uint32_t *)p)[b.len / 8] ^= 0xffffffff;
				if (order == 2) {
					/* child unmaps half and faults the rest */
					madvise(p, b.len, MADV_DONTNEED);
					munmap(p + b.len / 2, b.len / 2 & ~(PG - 1));
					if (checkp(p, 0, PG * 4, seed) >= 0)
						_exit(5);
				}
				_exit(0);
			}
			close(pp[0]);
			if (order == 0) {
				munmap(p, b.len);
				close(b.fd);
				close(pp[1]);
				CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
				CHECK(WIFEXITED(st) && !WEXITSTATUS(st),
				      "%s order %d: child status %#x", cname(m[k].contig, m[k].cache), order, st);
			} else {
				close(pp[1]);
				CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
				CHECK(WIFEXITED(st) && !WEXITSTATUS(st),
				      "%s order %d: child status %#x", cname(m[k].contig, m[k].cache), order, st);
				((uint32_t *)p)[b.len / 8] ^= 0xffffffff;
				CHECK(checkp(p, 0, b.len, seed) < 0, "%s: child write not seen / data wrong",
				      cname(m[k].contig, m[k].cache));
				close(b.fd);
				munmap(p, b.len);
			}
			if (wait_zero("fork"))
				return 1;
		}
	}
	note("5 kinds x 3 orders ok");
	return 0;
}

/* mremap move / shrink / partial move; expansion and DONTUNMAP refused */
static int case_mremap(void)
{
	struct buf b;
	char *p, *q, *r2, *dst;
	uint64_t half;
	int r;

	CHECK(!(r = balloc(&b, SG_ODD, 0, 0)), "alloc: %s", strerror(-r));
	p = bmap(&b, 0, b.len, 3);
	CHECK(p, "mmap");
	fillp(p, 0, b.len, 7);
	dst = odd_addr(b.len, 11);
	q = mremap(p, b.len, b.len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	CHECK(q != MAP_FAILED, "mremap move: %s", strerror(errno));
	CHECK(checkp(q, 0, b.len, 7) < 0, "data after move");
	madvise(q, b.len, MADV_DONTNEED);
	CHECK(checkp(q, 0, b.len, 7) < 0, "data after move+dontneed");
	errno = 0;
	CHECK(mremap(q, b.len, b.len + PG, 0) == MAP_FAILED, "expand in place succeeded");
	note("expand:%s ", strerror(errno));
	errno = 0;
	CHECK(mremap(q, b.len, b.len + 4 * MIB, MREMAP_MAYMOVE) == MAP_FAILED, "expand+move succeeded");
	errno = 0;
	r2 = mremap(q, b.len, b.len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
	note("dontunmap:%s ", r2 == MAP_FAILED ? strerror(errno) : "OK");
	if (r2 != MAP_FAILED) {
		CHECK(checkp(r2, 0, b.len, 7) < 0, "data after DONTUNMAP move");
		munmap(r2, b.len);
		q = NULL;
	} else {
		errno = 0;
		r2 = mremap(q, 0, PG * 3, MREMAP_MAYMOVE);
		note("dup0:%s ", r2 == MAP_FAILED ? strerror(errno) : "OK");
		if (r2 != MAP_FAILED) {
			CHECK(checkp(r2, 0, 3 * PG, 7) < 0, "dup0 data");
			munmap(r2, 3 * PG);
		}
		/* move a middle piece crossing a block boundary elsewhere */
		dst = odd_addr(3 * MIB, 5);
		r2 = mremap(q + 3 * MIB, 2 * MIB + PG, 2 * MIB + PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		CHECK(r2 != MAP_FAILED, "piece move: %s", strerror(errno));
		madvise(r2, 2 * MIB + PG, MADV_DONTNEED);
		CHECK(checkp(r2, 3 * MIB, 2 * MIB + PG, 7) < 0, "piece data");
		CHECK(checkp(q, 0, 3 * MIB, 7) < 0, "head data");
		CHECK(checkp(q + 5 * MIB + PG, 5 * MIB + PG, b.len - 5 * MIB - PG, 7) < 0, "tail data");
		/* shrink the tail piece */
		half = (b.len - 5 * MIB - PG) / 2 & ~(PG - 1);
		CHECK(mremap(q + 5 * MIB + PG, b.len - 5 * MIB - PG, half, 0) != MAP_FAILED, "shrink: %s", strerror(errno));
		CHECK(checkp(q + 5 * MIB + PG, 5 * MIB + PG, half, 7) < 0, "shrunk data");
		munmap(r2, 2 * MIB + PG);
		munmap(q, b.len);
	}
	close(b.fd);
	return wait_zero("mremap");
}

/* partial munmap then fault the rest; mmap at offsets; bad ranges refused */
static int case_ranges(void)
{
	static const uint64_t pg[][2] = {	/* pgoff, pages */
		{ 1, 1 }, { 511, 3 }, { 513, 600 }, { 1022, 4 }, { 1023, 1 }, { 1031, 1500 },
		{ 3071, 6 }, { 3072, 5 }, { 3073, 3 }, { 3076, 1 }, { 0, 3077 }, { 2047, 1030 },
	};
	struct buf b;
	char *all, *p;
	int r;

	CHECK(!(r = balloc(&b, SG_ODD, 0, 0)), "alloc: %s", strerror(-r));
	all = bmap(&b, 0, b.len, 0);
	CHECK(all, "mmap");
	fillp(all, 0, b.len, 9);
	for (unsigned int i = 0; i < sizeof(pg) / sizeof(pg[0]); i++) {
		uint64_t off = pg[i][0] * PG, len = pg[i][1] * PG;

		for (unsigned int mis = 0; mis < 2; mis++) {
			p = bmap(&b, off, len, mis ? 509 : 0);
			CHECK(p, "mmap pgoff %" PRIu64 " len %" PRIu64 ": %s", pg[i][0], pg[i][1], strerror(errno));
			CHECK(checkp(p, off, len, 9) < 0, "data at pgoff %" PRIu64, pg[i][0]);
			((uint32_t *)p)[len / 4 - 1] = wpat(9, (off + len) / 4 - 1);
			if (len > 8 * PG) {
				/* partial munmap, then fault the rest */
				madvise(p, len, MADV_DONTNEED);
				munmap(p + PG, 3 * PG);
				munmap(p + len - 2 * PG, PG);
				CHECK(checkp(p, off, PG, 9) < 0 &&
				      checkp(p + 4 * PG, off + 4 * PG, len - 6 * PG, 9) < 0 &&
				      checkp(p + len - PG, off + len - PG, PG, 9) < 0,
				      "after partial munmap at pgoff %" PRIu64, pg[i][0]);
			}
			munmap(p, len);
		}
	}
	/* refused: past the end, overflow, private, zero */
	struct { uint64_t off, len; int flags; } bad[] = {
		{ b.len, PG, MAP_SHARED }, { b.len - PG, 2 * PG, MAP_SHARED },
		{ 0, b.len + PG, MAP_SHARED }, { 1ULL << 52, PG, MAP_SHARED },
		{ 0xfffffffffffff000ULL, PG, MAP_SHARED }, { 0, PG, MAP_PRIVATE },
		{ 0, 0, MAP_SHARED }, { 0x7ffffffffffff000ULL, 2 * PG, MAP_SHARED },
	};
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = mmap(NULL, bad[i].len, PROT_READ, bad[i].flags, b.fd, (off_t)bad[i].off);
		CHECK(p == MAP_FAILED, "bad mmap %u (off %#" PRIx64 " len %#" PRIx64 ") succeeded", i, bad[i].off, bad[i].len);
	}
	/* PROT_EXEC and PROT_NONE maps are fine */
	p = mmap(NULL, PG, PROT_READ | PROT_EXEC, MAP_SHARED, b.fd, 0);
	note("exec:%s ", p == MAP_FAILED ? strerror(errno) : "ok");
	if (p != MAP_FAILED)
		munmap(p, PG);
	munmap(all, b.len);
	close(b.fd);
	return wait_zero("ranges");
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

static int do_madv(char *p, uint64_t off, uint64_t len, uint32_t seed, int adv)
{
	int r = madvise(p, len, adv) ? errno : 0;

	note("%d:%s ", adv, r ? strerrorname_np(r) : "0");
	CHECK(checkp(p, off, len, seed) < 0, "data wrong after madvise %d", adv);
	/* write still works */
	((volatile uint32_t *)p)[1] = wpat(seed, off / 4 + 1);
	return 0;
}

static int case_madvise(void)
{
	static const int adv[] = { MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
		MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK,
		MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE,
		MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_COLD,
		MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_DONTNEED_LOCKED,
		MADV_COLLAPSE, 102, 103, MADV_COLD, MADV_PAGEOUT, MADV_DONTNEED, 999 };
	static const struct { int contig; uint32_t cache; uint64_t len; } m[] = {
		{ 0, 0, SG_ODD }, { 1, 0, 4 * MIB }, { 0, 1, 4 * MIB + 3 * PG },
	};

	for (unsigned int k = 0; k < 3; k++) {
		struct buf b;
		char *p;
		int r, pidfd;

		CHECK(!(r = balloc(&b, m[k].len, m[k].contig, m[k].cache)), "alloc: %s", strerror(-r));
		p = bmap(&b, 0, b.len, 5);
		CHECK(p, "mmap");
		fillp(p, 0, b.len, 21);
		note("[%s] ", cname(m[k].contig, m[k].cache));
		for (unsigned int i = 0; i < sizeof(adv) / sizeof(adv[0]); i++) {
			/* whole mapping, then an odd sub-range crossing a block boundary */
			if (do_madv(p, 0, b.len, 21, adv[i]))
				return 1;
			uint64_t sub = b.len / PG > 1030 ? 1021 : b.len / PG / 2 - 3;

			if (do_madv(p + sub * PG, sub * PG, 5 * PG, 21, adv[i]))
				return 1;
		}
		/* DONTFORK, then fork: the child has no mapping */
		madvise(p, b.len, MADV_DONTFORK);
		pid_t pid = fork();
		if (!pid) {
			signal(SIGSEGV, SIG_DFL);
			_exit(probe_rw((uint32_t *)p, 0) ? 0 : 9);
		}
		int st;
		waitpid(pid, &st, 0);
		note("dontfork-child:%#x ", st);
		madvise(p, b.len, MADV_DOFORK);
		/* process_madvise on ourselves */
		pidfd = syscall(SYS_pidfd_open, getpid(), 0);
		if (pidfd >= 0) {
			static const int padv[] = { MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED, MADV_COLLAPSE };
			struct iovec iov[2] = { { p + PG, 2 * MIB }, { p + 3 * MIB + 5 * PG, 7 * PG } };

			for (unsigned int i = 0; i < 4; i++) {
				long n = syscall(SYS_process_madvise, pidfd, iov, 2, padv[i], 0);
				note("pm%d:%ld/%s ", padv[i], n, n < 0 ? strerrorname_np(errno) : "");
			}
			close(pidfd);
		}
		CHECK(checkp(p, 0, b.len, 21) < 0, "data after process_madvise");
		if (!unpriv) {
			/* root only: soft-offline one tail page (must be refused or harmless) */
			int s = madvise(p + 1029 * PG, PG, 101) ? errno : 0;
			note("softoff:%s ", s ? strerrorname_np(s) : "0");
			CHECK(checkp(p, 0, b.len, 21) < 0, "data after soft-offline");
		}
		munmap(p, b.len);
		close(b.fd);
		if (wait_zero("madvise"))
			return 1;
	}
	return 0;
}

static int case_mlock(void)
{
	for (int contig = 0; contig < 2; contig++) {
		struct buf b;
		char *p, *q;
		int r;

		CHECK(!(r = balloc(&b, contig ? 2 * MIB + PG : SG_ODD, contig, 0)), "alloc: %s", strerror(-r));
		p = bmap(&b, 0, b.len, 1);
		CHECK(p, "mmap");
		fillp(p, 0, b.len, 5);
		r = mlock(p, b.len) ? errno : 0;
		note("mlock:%s ", r ? strerrorname_np(r) : "0");
		r = munlock(p + PG, b.len - 2 * PG) ? errno : 0;
		note("munlock:%s ", r ? strerrorname_np(r) : "0");
		r = syscall(SYS_mlock2, p, b.len, 1 /* MLOCK_ONFAULT */) ? errno : 0;
		note("mlock2:%s ", r ? strerrorname_np(r) : "0");
		r = mlockall(MCL_CURRENT | MCL_FUTURE) ? errno : 0;
		note("mlockall:%s ", r ? strerrorname_np(r) : "0");
		q = bmap(&b, PG, b.len - PG, 3);
		CHECK(q, "mmap under MCL_FUTURE: %s", strerror(errno));
		CHECK(checkp(q, PG, b.len - PG, 5) < 0, "data under mlockall");
		madvise(q, b.len - PG, MADV_DONTNEED);
		madvise(q, b.len - PG, MADV_DONTNEED_LOCKED);
		CHECK(checkp(q, PG, b.len - PG, 5) < 0, "data after dontneed");
		munlockall();
		munmap(q, b.len - PG);
		munmap(p, b.len);
		close(b.fd);
		if (wait_zero("mlock"))
			return 1;
	}
	return 0;
}

static int case_numa(void)
{
	struct buf b;
	char *p;
	int r;
	unsigned long node0 = 1, node1 = 2;
	void *pages[8];
	int status[8], nodes[8];

	CHECK(!(r = balloc(&b, SG_ODD, 0, 0)), "alloc: %s", strerror(-r));
	p = bmap(&b, 0, b.len, 9);
	CHECK(p, "mmap");
	fillp(p, 0, b.len, 33);
	/* MPOL_BIND=2, MPOL_PREFERRED=1; MPOL_MF_STRICT=1, MOVE=2, MOVE_ALL=4 */
	static const unsigned int fl[] = { 0, 1, 2, 3, 4, 6 };
	for (unsigned int i = 0; i < 6; i++) {
		long n = syscall(SYS_mbind, p + 5 * PG, 3 * MIB, 2, &node0, 64, fl[i]);
		note("mbind%u:%s ", fl[i], n ? strerrorname_np(errno) : "0");
		n = syscall(SYS_mbind, p, b.len, 1, &node1, 64, fl[i]);
		note("mbind1:%s ", n ? strerrorname_np(errno) : "0");
	}
	syscall(SYS_mbind, p, b.len, 0, NULL, 0, 0);
	for (int i = 0; i < 8; i++) {
		pages[i] = p + (uint64_t)(i * 511 + 1) * PG;
		nodes[i] = i & 1;
	}
	long n = syscall(SYS_move_pages, 0, 8, pages, NULL, status, 0);
	note("mp-query:%ld st0=%d st7=%d ", n, status[0], status[7]);
	n = syscall(SYS_move_pages, 0, 8, pages, nodes, status, unpriv ? 2 : 4);
	note("mp-move:%ld/%s st0=%d st1=%d ", n, n < 0 ? strerrorname_np(errno) : "", status[0], status[1]);
	n = syscall(SYS_migrate_pages, 0, 64, &node0, &node0);
	note("migrate:%ld ", n);
	CHECK(checkp(p, 0, b.len, 33) < 0, "data after numa calls");
	munmap(p, b.len);
	close(b.fd);
	return wait_zero("numa");
}

static int case_uffd(void)
{
	struct buf b;
	char *p;
	int r, u;

	CHECK(!(r = balloc(&b, SG_ODD, 0, 0)), "alloc: %s", strerror(-r));
	p = bmap(&b, 0, b.len, 2);
	CHECK(p, "mmap");
	fillp(p, 0, b.len, 3);
	u = syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */);
	if (u < 0)
		u = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (u < 0) {
		note("userfaultfd: %s", strerror(errno));
		munmap(p, b.len);
		close(b.fd);
		return wait_zero("uffd") ? 1 : 77;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	CHECK(!ioctl(u, UFFDIO_API, &api), "UFFDIO_API: %s", strerror(errno));
	static const unsigned long long modes[] = { 1, 2, 4, 3 };
	for (unsigned int i = 0; i < 4; i++) {
		struct uffdio_register reg = { .range = { (uintptr_t)p, b.len }, .mode = modes[i] };
		r = ioctl(u, UFFDIO_REGISTER, &reg) ? errno : 0;
		note("reg%llu:%s ", modes[i], r ? strerrorname_np(r) : "OK");
		if (!r) {
			struct uffdio_range rg = { (uintptr_t)p, b.len };
			ioctl(u, UFFDIO_UNREGISTER, &rg);
		}
	}
	close(u);
	CHECK(checkp(p, 0, b.len, 3) < 0, "data after uffd");
	munmap(p, b.len);
	close(b.fd);
	return wait_zero("uffd");
}

static int read_all(const char *path)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long tot = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		tot += n;
	close(fd);
	return (int)(tot > 0);
}

/* /proc: pagemap PFNs match SEGMENTS, smaps, numa_maps, clear_refs, /proc/self/mem */
static int case_procfs(void)
{
	struct buf b;
	char *p;
	int r;

	CHECK(!(r = balloc(&b, SG_ODD, 0, 0)), "alloc: %s", strerror(-r));
	p = bmap(&b, 0, b.len, 13);
	CHECK(p, "mmap");
	fillp(p, 0, b.len, 44);
	if (!unpriv) {
		struct physmem_dma_segment seg[64];
		struct physmem_segments s = { .size = sizeof(s), .fd = b.fd,
			.segments = (uintptr_t)seg, .capacity = 64 };
		uint64_t npg = b.len / PG, idx = 0, bad = 0;
		int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

		CHECK(!ioctl(dev, PHYSMEM_IOC_SEGMENTS, &s), "SEGMENTS: %s", strerror(errno));
		CHECK(pm >= 0, "pagemap");
		for (uint32_t i = 0; i < s.count && i < 64; i++)
			for (uint64_t o = 0; o < seg[i].len; o += PG, idx++) {
				uint64_t e = 0;

				if (pread(pm, &e, 8, ((uintptr_t)p / PG + idx) * 8) != 8)
					FAIL("pagemap read");
				if (!(e >> 63) || (e & ((1ULL << 55) - 1)) != (seg[i].addr + o) / PG)
					bad++;
			}
		close(pm);
		CHECK(idx == npg && !bad, "pagemap: %" PRIu64 "/%" PRIu64 " pages, %" PRIu64 " PFNs differ from SEGMENTS",
		      idx, npg, bad);
		note("pagemap=segments(%u) ", s.count);
	}
	CHECK(read_all("/proc/self/smaps") == 1 && read_all("/proc/self/smaps_rollup") == 1, "smaps");
	read_all("/proc/self/numa_maps");
	for (int t = 1; t <= 5; t++) {
		char v[2] = { (char)('0' + t), 0 };
		r = write_str("/proc/self/clear_refs", v);
		note("clear_refs%d:%d ", t, r);
		/* write through the (now maybe write-protected) PTEs */
		for (uint64_t o = 0; o < b.len; o += 64 * KIB)
			((volatile uint32_t *)(p + o))[3] = wpat(44, o / 4 + 3);
	}
	/* /proc/self/mem and process_vm_* (GUP with FOLL_FORCE) */
	int mf = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (mf < 0 && unpriv) {
		note("mem:%s ", strerrorname_np(errno));
		munmap(p, b.len);
		close(b.fd);
		return wait_zero("procfs");
	}
	CHECK(mf >= 0, "open mem");
	uint32_t w[1024];
	uint64_t off = 4 * MIB - 2 * KIB;
	CHECK(pread(mf, w, sizeof(w), (off_t)(uintptr_t)(p + off)) == sizeof(w), "mem pread: %s", strerror(errno));
	CHECK(checkp(w, off, sizeof(w), 44) < 0, "mem pread data");
	mprotect(p, b.len, PROT_READ);
	{
		ssize_t n = pwrite(mf, w, sizeof(w), (off_t)(uintptr_t)(p + off));
		note("mem-pwrite-ro:%zd/%s ", n, n < 0 ? strerrorname_np(errno) : "");
		n = pwrite(mf, w, sizeof(w), (off_t)(uintptr_t)(p + off + PG));
	}
	mprotect(p, b.len, PROT_READ | PROT_WRITE);
	close(mf);
	struct iovec l = { w, sizeof(w) }, rv = { p + off, sizeof(w) };
	CHECK(process_vm_readv(getpid(), &l, 1, &rv, 1, 0) == sizeof(w), "pvr");
	CHECK(process_vm_writev(getpid(), &l, 1, &rv, 1, 0) == sizeof(w), "pvw");
	CHECK(checkp(p, 0, b.len, 44) < 0, "data after procfs");
	munmap(p, b.len);
	close(b.fd);
	return wait_zero("procfs");
}

static int case_mprotect(void)
{
	struct buf b;
	char *p;
	int r;

	CHECK(!(r = balloc(&b, SG_ODD, 0, 0)), "alloc: %s", strerror(-r));
	p = bmap(&b, 0, b.len, 4);
	CHECK(p, "mmap");
	fillp(p, 0, b.len, 55);
	for (int it = 0; it < 4; it++) {
		char *s = p + (it & 1 ? 1023 * PG : 0);
		uint64_t l = it & 2 ? 5 * PG : b.len - (uint64_t)(s - p);

		CHECK(!mprotect(s, l, PROT_READ), "mprotect ro");
		CHECK(probe_rw((uint32_t *)s, 1) == SIGSEGV, "write to PROT_READ not refused");
		CHECK(!probe_rw((uint32_t *)s, 0), "read of PROT_READ failed");
		CHECK(!mprotect(s, l, PROT_NONE), "mprotect none");
		CHECK(probe_rw((uint32_t *)s, 0) == SIGSEGV, "read of PROT_NONE not refused");
		madvise(s, l, MADV_DONTNEED);
		CHECK(!mprotect(s, l, PROT_READ | PROT_WRITE), "mprotect rw");
		CHECK(!probe_rw((uint32_t *)s, 1), "write after rw failed");
		CHECK(!mprotect(s, l, PROT_WRITE), "mprotect wo");
		CHECK(!mprotect(s, l, PROT_READ | PROT_WRITE | PROT_EXEC) || errno == EACCES, "mprotect rwx: %s", strerror(errno));
		CHECK(!mprotect(s, l, PROT_READ | PROT_WRITE), "mprotect rw");
	}
	CHECK(checkp(p, 0, b.len, 55) < 0, "data after mprotect flips");
	munmap(p, b.len);
	close(b.fd);
	return wait_zero("mprotect");
}

/* O_DIRECT (sync and AIO) into and out of the mapping */
static uint8_t bpat(uint64_t seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9E3779B97F4A7C15ULL + seed;

	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (off & 7)));
}

static int case_odirect(const char *disk, const char *wdev)
{
	struct buf b;
	char *p;
	int r, fd;

	fd = open(disk, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		note("no %s: %s", disk, strerror(errno));
		return 77;
	}
	for (int contig = 0; contig < 2; contig++) {
		CHECK(!(r = balloc(&b, contig ? 4 * MIB : SG_ODD, contig, 0)), "alloc: %s", strerror(-r));
		p = bmap(&b, 0, b.len, 6);
		CHECK(p, "mmap");
		/* read 1 MiB + 8 KiB across a block boundary, starting in a tail page */
		uint64_t off = contig ? 3 * MIB - 12 * KIB : 4 * MIB - 516 * KIB, len = MIB + 8 * KIB;
		ssize_t n = pread(fd, p + off, len, 1 * MIB);
		CHECK(n == (ssize_t)len, "O_DIRECT read into mapping: %zd %s", n, strerror(errno));
		for (uint64_t i = 0; i < len; i++)
			CHECK((uint8_t)p[off + i] == bpat(DISK_SEED, MIB + i), "O_DIRECT data wrong at %" PRIu64, i);
		if (wdev) {
			int w = open(wdev, O_RDWR | O_DIRECT | O_CLOEXEC);

			if (w >= 0) {
				n = pwrite(w, p + off, len, 0);
				CHECK(n == (ssize_t)len, "O_DIRECT write from mapping: %zd %s", n, strerror(errno));
				memset(p + off, 0, len);
				n = pread(w, p + off, len, 0);
				CHECK(n == (ssize_t)len, "O_DIRECT readback: %zd", n);
				for (uint64_t i = 0; i < len; i++)
					CHECK((uint8_t)p[off + i] == bpat(DISK_SEED, MIB + i), "O_DIRECT write data wrong at %" PRIu64, i);
				close(w);
				if (!contig)
					note("odirect-write ok; ");
			}
		}
		/* AIO read into the mapping; unmap + close before reaping */
		aio_context_t ctx = 0;
		CHECK(!syscall(SYS_io_setup, 4, &ctx), "io_setup: %s", strerror(errno));
		/* many small reads, so that some are still in flight at the close */
		static struct iocb cb[64];
		struct iocb *cbs[64];
		for (int i = 0; i < 64; i++) {
			memset(&cb[i], 0, sizeof(cb[i]));
			cb[i].aio_fildes = (uint32_t)fd;
			cb[i].aio_lio_opcode = IOCB_CMD_PREAD;
			cb[i].aio_buf = (uintptr_t)(p + PG * 3 + (uint64_t)(i % 16) * 60 * KIB);
			cb[i].aio_nbytes = 60 * KIB;
			cb[i].aio_offset = (int64_t)((uint64_t)i * 240 * KIB);
			cbs[i] = &cb[i];
		}
		CHECK(syscall(SYS_io_submit, ctx, 64, cbs) == 64, "io_submit: %s", strerror(errno));
		munmap(p, b.len);
		close(b.fd);
		uint32_t fl = 0;
		int q = bquery(b.id, &fl);
		note("aio: query after close %d fl %u draining %lld; ", q, fl, read_num(STATS "/draining_buffers"));
		static struct io_event ev[64];
		for (int got = 0; got < 64;) {
			long n = syscall(SYS_io_getevents, ctx, 1, 64, ev, NULL);
			CHECK(n > 0, "io_getevents");
			for (long i = 0; i < n; i++)
				CHECK(ev[i].res == (int64_t)(60 * KIB), "aio res %lld", (long long)ev[i].res);
			got += (int)n;
		}
		syscall(SYS_io_destroy, ctx);
		if (wait_zero("odirect"))
			return 1;
	}
	close(fd);
	return 0;
}

/* vmsplice of single tail pages: the buffer stays draining until the pipe lets go */
static int case_vmsplice(void)
{
	static const struct { int contig; uint32_t cache; uint64_t len, page; int tee; } t[] = {
		{ 0, 0, SG_ODD, 1, 0 }, { 0, 0, SG_ODD, 1023, 0 }, { 0, 0, SG_ODD, 2047, 1 },
		{ 0, 0, SG_ODD, 3073, 0 }, { 0, 0, SG_ODD, 3076, 1 }, { 0, 0, SG_ODD, 3075, 0 },
		{ 1, 0, 64 * KIB, 9, 0 }, { 0, 1, 4 * MIB + PG, 700, 0 }, { 0, 2, 1 * MIB, 255, 1 },
	};

	for (unsigned int k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		struct buf b;
		char *p;
		int pp[2], p2[2] = { -1, -1 }, r;
		uint32_t fl = 0, seed = 0x77 + k;
		uint32_t got[1024];

		CHECK(!(r = balloc(&b, t[k].len, t[k].contig, t[k].cache)), "alloc: %s", strerror(-r));
		p = bmap(&b, 0, b.len, 1);
		CHECK(p, "mmap");
		fillp(p, 0, b.len, seed);
		CHECK(!pipe(pp), "pipe");
		struct iovec iov = { p + t[k].page * PG, PG };
		CHECK(vmsplice(pp[1], &iov, 1, k & 1 ? SPLICE_F_GIFT : 0) == PG, "vmsplice: %s", strerror(errno));
		if (t[k].tee) {
			CHECK(!pipe(p2), "pipe2");
			CHECK(tee(pp[0], p2[1], PG, 0) == PG, "tee: %s", strerror(errno));
			close(pp[0]);
			close(pp[1]);
		}
		uint64_t seg0 = 0;
		if (!unpriv) {
			struct physmem_dma_segment sg1[1];
			struct physmem_segments sq = { .size = sizeof(sq), .fd = b.fd, .segments = (uintptr_t)sg1, .capacity = 1 };
			CHECK(!ioctl(dev, PHYSMEM_IOC_SEGMENTS, &sq), "segments");
			seg0 = sg1[0].addr;
		}
		munmap(p, b.len);
		close(b.fd);
		usleep(400 * 1000);	/* past the first drain check */
		r = bquery(b.id, &fl);
		CHECK(!r && (fl & PHYSMEM_QUERY_RELEASED), "case %u page %" PRIu64 ": query %d flags %u after close (want alive, released)",
		      k, t[k].page, r, fl);
		CHECK(read_num(STATS "/draining_buffers") == 1 && read_num(STATS "/draining_bytes") == (long long)b.len &&
		      read_num(STATS "/bytes") >= (long long)b.len,
		      "case %u: draining counters %lld/%lld bytes %lld", k, read_num(STATS "/draining_buffers"),
		      read_num(STATS "/draining_bytes"), read_num(STATS "/bytes"));
		/* a physical mapping of a draining buffer is refused */
		if (!unpriv) {
			void *ph = mmap(NULL, PG, PROT_READ, MAP_SHARED, dev, (off_t)seg0);
			CHECK(ph == MAP_FAILED && errno == EPERM, "case %u: phys mmap of a draining buffer: %s", k,
			      ph == MAP_FAILED ? strerror(errno) : "succeeded");
		}
		int rd = t[k].tee ? p2[0] : pp[0];
		CHECK(read(rd, got, PG) == PG, "pipe read");
		CHECK(checkp(got, t[k].page * PG, PG, seed) < 0, "case %u: pipe data of page %" PRIu64 " wrong (freed/reused?)",
		      k, t[k].page);
		if (t[k].tee) {
			close(p2[0]);
			close(p2[1]);
		} else {
			close(pp[0]);
			close(pp[1]);
		}
		if (wait_zero("vmsplice"))
			return 1;
		CHECK(bquery(b.id, NULL) == -ENOENT, "query after drain");
	}
	note("9 tail-page splices held their buffers");
	return 0;
}

static int case_iouring(void)
{
	struct buf b;
	char *p;
	int r;
	struct io_uring_params par;

	CHECK(!(r = balloc(&b, SG_ODD, 0, 0)), "alloc: %s", strerror(-r));
	p = bmap(&b, 0, b.len, 8);
	CHECK(p, "mmap");
	fillp(p, 0, b.len, 66);
	memset(&par, 0, sizeof(par));
	int ring = syscall(SYS_io_uring_setup, 4, &par);
	if (ring < 0) {
		note("io_uring_setup: %s", strerror(errno));
		munmap(p, b.len);
		close(b.fd);
		return wait_zero("iouring") ? 1 : 77;
	}
	struct iovec iov[3] = { { p + 1000 * PG, 100 * PG }, { p + 2 * PG, 1 * MIB }, { p + 3072 * PG, 5 * PG } };
	r = syscall(SYS_io_uring_register, ring, IORING_REGISTER_BUFFERS, iov, 3);
	note("register:%s ", r ? strerrorname_np(errno) : "OK");
	munmap(p, b.len);
	close(b.fd);
	usleep(300 * 1000);
	uint32_t fl = 0;
	int q = bquery(b.id, &fl);
	if (!r)
		CHECK(!q && (fl & PHYSMEM_QUERY_RELEASED), "registered buffers: buffer not draining (query %d fl %u)", q, fl);
	note("after close: query %d fl %u; ", q, fl);
	close(ring);
	return wait_zero("iouring");
}

/* two threads fault, one zaps (MADV_DONTNEED), one re-maps MAP_FIXED */
struct race {
	char *p;
	uint64_t len;
	int fd;
	uint32_t seed;
	atomic_int stop;
	atomic_long n[4];
};

static void *race_touch(void *a)
{
	struct race *r = a;
	unsigned int s = (unsigned int)(uintptr_t)&s;

	while (!atomic_load(&r->stop)) {
		uint64_t pg = (uint64_t)rand_r(&s) % (r->len / PG);
		volatile uint32_t *w = (uint32_t *)(r->p + pg * PG);
		uint32_t want = wpat(r->seed, pg * PG / 4);

		if (*w != want) {
			atomic_fetch_add(&r->n[3], 1);
			atomic_store(&r->stop, 1);
		}
		*w = want;
		atomic_fetch_add(&r->n[0], 1);
	}
	return NULL;
}

static void *race_zap(void *a)
{
	struct race *r = a;
	unsigned int s = 77;

	while (!atomic_load(&r->stop)) {
		uint64_t pg = (uint64_t)rand_r(&s) % (r->len / PG);
		uint64_t n = 1 + (uint64_t)rand_r(&s) % 600;

		if (pg + n > r->len / PG)
			n = r->len / PG - pg;
		madvise(r->p + pg * PG, n * PG, MADV_DONTNEED);
		atomic_fetch_add(&r->n[1], 1);
	}
	return NULL;
}

static void *race_remap(void *a)
{
	struct race *r = a;

	while (!atomic_load(&r->stop)) {
		if (mmap(r->p, r->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r->fd, 0) == MAP_FAILED)
			atomic_fetch_add(&r->n[3], 1000);
		atomic_fetch_add(&r->n[2], 1);
		usleep(2000);
	}
	return NULL;
}

static int case_race(void)
{
	static const struct { int contig; uint64_t len; } m[] = { { 0, SG_ODD }, { 1, 4 * MIB } };

	for (unsigned int k = 0; k < 2; k++) {
		struct race r;
		struct buf b;
		pthread_t th[5];
		int e;

		memset(&r, 0, sizeof(r));
		CHECK(!(e = balloc(&b, m[k].len, m[k].contig, 0)), "alloc: %s", strerror(-e));
		r.p = bmap(&b, 0, b.len, 17);
		CHECK(r.p, "mmap");
		r.len = b.len;
		r.fd = b.fd;
		r.seed = 88 + k;
		fillp(r.p, 0, b.len, r.seed);
		madvise(r.p, b.len, MADV_DONTNEED);
		pthread_create(&th[0], NULL, race_touch, &r);
		pthread_create(&th[1], NULL, race_touch, &r);
		pthread_create(&th[2], NULL, race_zap, &r);
		pthread_create(&th[3], NULL, race_remap, &r);
		for (int i = 0; i < 30 && !atomic_load(&r.stop); i++) {
			/* fork now and then: the child touches the window and exits */
			pid_t pid = fork();
			if (!pid) {
				uint64_t mid = r.len / PG / 2 + 1;
				volatile uint32_t *w = (uint32_t *)(r.p + mid * PG);
				_exit(*w == wpat(r.seed, mid * PG / 4) ? 0 : 1);
			}
			int st;
			waitpid(pid, &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				atomic_fetch_add(&r.n[3], 100000);
			usleep(100 * 1000);
		}
		atomic_store(&r.stop, 1);
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		note("[%s touches %ld zaps %ld remaps %ld] ", m[k].contig ? "contig" : "sg",
		     atomic_load(&r.n[0]), atomic_load(&r.n[1]), atomic_load(&r.n[2]));
		long long bad = checkpages(r.p, 0, b.len, r.seed);
		munmap(r.p, b.len);
		close(b.fd);
		CHECK(!atomic_load(&stray_bus) && !atomic_load(&stray_sig), "race: stray SIGBUS %d SIGSEGV %d",
		      atomic_load(&stray_bus), atomic_load(&stray_sig));
		CHECK(!atomic_load(&r.n[3]), "race: %ld bad reads/remap failures/child failures", atomic_load(&r.n[3]));
		CHECK(bad < 0, "data after race");
		if (wait_zero("race"))
			return 1;
	}
	return 0;
}

/*
 * Faults racing MADV_DONTNEED of whole 2 MiB windows: where the kernel frees
 * emptied page tables (CONFIG_PT_RECLAIM), vm_insert_pages() can find the
 * table gone between its batches (-EFAULT); a fault must then be retried,
 * never turned into SIGBUS for a mapping that is there.
 */
static void *race_zap_all(void *a)
{
	struct race *r = a;

	while (!atomic_load(&r->stop)) {
		madvise(r->p, r->len, MADV_DONTNEED);
		atomic_fetch_add(&r->n[1], 1);
	}
	return NULL;
}

static int case_race_pt(void)
{
	struct race r;
	struct buf b;
	pthread_t th[3];
	int e;

	memset(&r, 0, sizeof(r));
	CHECK(!(e = balloc(&b, 16 * MIB, 0, 0)), "alloc: %s", strerror(-e));
	r.p = bmap(&b, 0, b.len, 0);
	CHECK(r.p, "mmap");
	r.len = b.len;
	r.fd = b.fd;
	r.seed = 123;
	fillp(r.p, 0, b.len, r.seed);
	atomic_store(&stray_bus, 0);
	atomic_store(&stray_sig, 0);
	pthread_create(&th[0], NULL, race_touch, &r);
	pthread_create(&th[1], NULL, race_touch, &r);
	pthread_create(&th[2], NULL, race_zap_all, &r);
	for (int i = 0; i < 60 && !atomic_load(&r.stop) && !atomic_load(&stray_bus); i++)
		usleep(100 * 1000);
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	note("touches %ld zaps %ld SIGBUS %d SIGSEGV %d; ", atomic_load(&r.n[0]), atomic_load(&r.n[1]),
	     atomic_load(&stray_bus), atomic_load(&stray_sig));
	munmap(r.p, b.len);
	close(b.fd);
	if (wait_zero("race-pt"))
		return 1;
	CHECK(!atomic_load(&stray_bus) && !atomic_load(&stray_sig),
	      "spurious SIGBUS/SIGSEGV on a mapped buffer while another thread zapped it");
	CHECK(!atomic_load(&r.n[3]), "bad data");
	return 0;
}

/* ---- sync vs attach/detach (vgem import + GEM close, edu importer) ---- */
struct srace {
	int buf_fd, vgem, edu;
	atomic_int stop;
	atomic_long imports, syncs, sync_err, edu_ok, edu_err, fences;
};

static void *sr_import(void *a)
{
	struct srace *s = a;

	while (!atomic_load(&s->stop)) {
		struct drm_prime_handle_abi ph = { .fd = s->buf_fd };

		if (ioctl(s->vgem, DRM_IOCTL_PRIME_FD_TO_HANDLE, &ph))
			continue;
		if (atomic_load(&s->imports) % 16 == 0) {
			/* an unsignalled write fence that a sync must wait for */
			struct drm_vgem_fence_attach_abi fa = { .handle = ph.handle, .flags = VGEM_FENCE_WRITE };
			if (!ioctl(s->vgem, DRM_IOCTL_VGEM_FENCE_ATTACH, &fa)) {
				usleep(1000);
				struct drm_vgem_fence_signal_abi fs = { .fence = fa.out_fence };
				ioctl(s->vgem, DRM_IOCTL_VGEM_FENCE_SIGNAL, &fs);
				atomic_fetch_add(&s->fences, 1);
			}
		}
		struct drm_gem_close_abi c = { .handle = ph.handle };
		ioctl(s->vgem, DRM_IOCTL_GEM_CLOSE, &c);
		atomic_fetch_add(&s->imports, 1);
	}
	return NULL;
}

static void *sr_sync(void *a)
{
	struct srace *s = a;
	static const uint64_t f[] = { DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW };
	unsigned int i = 0;

	while (!atomic_load(&s->stop)) {
		struct dma_buf_sync st = { .flags = DMA_BUF_SYNC_START | f[i % 3] };
		struct dma_buf_sync en = { .flags = DMA_BUF_SYNC_END | f[i % 3] };

		if (ioctl(s->buf_fd, DMA_BUF_IOCTL_SYNC, &st) || ioctl(s->buf_fd, DMA_BUF_IOCTL_SYNC, &en))
			atomic_fetch_add(&s->sync_err, 1);
		atomic_fetch_add(&s->syncs, 1);
		i++;
	}
	return NULL;
}

static void *sr_edu(void *a)
{
	struct srace *s = a;

	while (!atomic_load(&s->stop)) {
		int f = open("/dev/physmem-edu-importer", O_RDWR | O_CLOEXEC);
		struct pei_import im = { .fd = s->buf_fd };

		if (f < 0) {
			atomic_fetch_add(&s->edu_err, 1);
			usleep(1000);
			continue;
		}
		if (!ioctl(f, PEI_IOC_IMPORT, &im)) {
			atomic_fetch_add(&s->edu_ok, 1);
			if (atomic_load(&s->edu_ok) & 1)
				ioctl(f, PEI_IOC_DETACH);
		} else {
			atomic_fetch_add(&s->edu_err, 1);
		}
		close(f);
	}
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "PHYSMEM-TEST atk-sync-attach-race FAIL hang: no progress in 90 s\n";
	write(1, m, sizeof(m) - 1);
	_exit(1);
}

static int case_sync_race(void)
{
	static const struct { int contig; uint32_t cache; uint64_t len; } m[] = {
		{ 0, 0, SG_ODD }, { 1, 1, 2 * MIB }, { 0, 2, 1 * MIB + PG },
	};
	struct srace s;
	int have_edu = !access("/dev/physmem-edu-importer", R_OK);
	int vg = vgem_open();

	if (vg < 0 && !have_edu) {
		note("no vgem and no edu importer");
		return 77;
	}
	signal(SIGALRM, on_alarm);
	for (unsigned int k = 0; k < 3; k++) {
		struct buf b;
		pthread_t th[6];
		int nth = 0, r;

		memset(&s, 0, sizeof(s));
		CHECK(!(r = balloc(&b, m[k].len, m[k].contig, m[k].cache)), "alloc: %s", strerror(-r));
		s.buf_fd = b.fd;
		s.vgem = vg;
		alarm(90);
		if (vg >= 0) {
			pthread_create(&th[nth++], NULL, sr_import, &s);
			pthread_create(&th[nth++], NULL, sr_import, &s);
		}
		if (have_edu)
			pthread_create(&th[nth++], NULL, sr_edu, &s);
		pthread_create(&th[nth++], NULL, sr_sync, &s);
		pthread_create(&th[nth++], NULL, sr_sync, &s);
		sleep(3);
		atomic_store(&s.stop, 1);
		for (int i = 0; i < nth; i++)
			pthread_join(th[i], NULL);
		alarm(0);
		note("[%s imports %ld fences %ld syncs %ld errs %ld edu %ld/%ld] ", cname(m[k].contig, m[k].cache),
		     atomic_load(&s.imports), atomic_load(&s.fences), atomic_load(&s.syncs),
		     atomic_load(&s.sync_err), atomic_load(&s.edu_ok), atomic_load(&s.edu_err));
		CHECK(!atomic_load(&s.sync_err), "DMA_BUF_IOCTL_SYNC failed %ld times", atomic_load(&s.sync_err));
		CHECK(atomic_load(&s.syncs) > 10, "syncs made no progress");
		/* bad sync flags get EINVAL */
		struct dma_buf_sync bad = { .flags = 0x80 };
		CHECK(ioctl(b.fd, DMA_BUF_IOCTL_SYNC, &bad) && errno == EINVAL, "bad sync flags accepted");
		close(b.fd);
		if (wait_zero("sync-race"))
			return 1;
	}
	if (vg >= 0)
		close(vg);
	return 0;
}

/* root: a /dev/physmem physical mapping of a tail page range, forked, outliving the dma-buf */
static int case_phys(void)
{
	struct buf b;
	int r;

	if (unpriv)
		return 77;
	CHECK(!(r = balloc(&b, SG_ODD, 0, 0)), "alloc: %s", strerror(-r));
	struct physmem_dma_segment seg[16];
	struct physmem_segments s = { .size = sizeof(s), .fd = b.fd, .segments = (uintptr_t)seg, .capacity = 16 };
	CHECK(!ioctl(dev, PHYSMEM_IOC_SEGMENTS, &s), "segments");
	char *p = bmap(&b, 0, b.len, 2);
	CHECK(p, "mmap");
	fillp(p, 0, b.len, 99);
	/* a range inside the first run, starting at a tail page */
	uint64_t len = 3 * PG, at = seg[0].addr + 5 * PG;
	char *ph = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, dev, (off_t)at);
	CHECK(ph != MAP_FAILED, "phys mmap: %s", strerror(errno));
	/* this page has buffer offset 5*PG only if the first segment starts the buffer */
	munmap(p, b.len);
	close(b.fd);
	pid_t pid = fork();
	if (!pid)
		_exit(((volatile char *)ph)[0] == ((volatile char *)ph)[0] ? 0 : 1);
	int st;
	waitpid(pid, &st, 0);
	uint32_t fl = 0;
	CHECK(!bquery(b.id, &fl) && !(fl & PHYSMEM_QUERY_RELEASED), "phys mapping does not hold the buffer");
	char *ph2 = mremap(ph, len, PG, 0);
	CHECK(ph2 != MAP_FAILED, "phys mremap shrink: %s", strerror(errno));
	munmap(ph2, PG);
	return wait_zero("phys");
}

/* root: with quarantine_ms set, a draining buffer goes draining -> quarantine -> free */
#define PARAMS "/sys/module/physmem/parameters"
static int case_quarantine(void)
{
	long long old = read_num(PARAMS "/quarantine_ms");
	struct buf b;
	char *p, v[32];
	int pp[2], r, rc = 0;
	uint32_t fl = 0, got[1024];

	if (unpriv || old < 0)
		return 77;
	CHECK(!write_str(PARAMS "/quarantine_ms", "700"), "set quarantine_ms");
	CHECK(!(r = balloc(&b, SG_ODD, 0, 1)), "alloc: %s", strerror(-r));
	p = bmap(&b, 0, b.len, 3);
	CHECK(p, "mmap");
	fillp(p, 0, b.len, 0x51);
	CHECK(!pipe(pp), "pipe");
	struct iovec iov = { p + 2050 * PG, PG };
	CHECK(vmsplice(pp[1], &iov, 1, 0) == PG, "vmsplice");
	munmap(p, b.len);
	close(b.fd);
	usleep(300 * 1000);
	r = bquery(b.id, &fl);
	if (r || !(fl & PHYSMEM_QUERY_RELEASED) || read_num(STATS "/draining_buffers") != 1) {
		note("not draining (query %d fl %u); ", r, fl);
		rc = 1;
	}
	CHECK(read(pp[0], got, PG) == PG, "pipe read");
	if (checkp(got, 2050 * PG, PG, 0x51) >= 0) {
		note("pipe data wrong; ");
		rc = 1;
	}
	close(pp[0]);
	close(pp[1]);
	/* drained: off the live counters but still quarantined (charged) */
	for (int i = 0; i < 40 && read_num(STATS "/draining_buffers"); i++)
		usleep(50 * 1000);
	long long q = read_num(STATS "/quarantined_bytes");
	note("quarantined after drain: %lld; ", q);
	snprintf(v, sizeof(v), "%lld", old);
	write_str(PARAMS "/quarantine_ms", v);
	if (wait_zero("quarantine"))
		return 1;
	for (int i = 0; i < 60 && read_num(STATS "/quarantined_bytes"); i++)
		usleep(50 * 1000);
	CHECK(!read_num(STATS "/quarantined_bytes"), "quarantine never emptied");
	return rc;
}

/*
 * Busy releases every 40 ms (a page of each held by a pipe) must not keep
 * the drain work from running: a draining buffer whose pipe lets go is
 * retired while they go on.  Each release used to push the work's timer
 * 100 ms into the future.
 */
static int case_drain_not_starved(void)
{
	enum { N = 40 };
	int pa[2], pp[N][2], n = 0, r, rc = 1;
	struct buf a, b;
	char *p;

	CHECK(!(r = balloc(&a, 256 * KIB, 0, 0)), "alloc: %s", strerror(-r));
	p = bmap(&a, 0, a.len, 0);
	CHECK(p, "mmap");
	p[0] = 1;
	CHECK(!pipe(pa), "pipe");
	struct iovec iov = { p, PG };
	CHECK(vmsplice(pa[1], &iov, 1, 0) == PG, "vmsplice: %s", strerror(errno));
	munmap(p, a.len);
	close(a.fd);
	usleep(400 * 1000);	/* draining, looked at twice: the next look is 400 ms away */
	CHECK(!bquery(a.id, NULL), "the buffer is not draining");
	close(pa[0]);
	close(pa[1]);
	for (n = 0; n < N; n++) {
		uint32_t fl;

		if (bquery(a.id, &fl) == -ENOENT) {
			note("retired after %d busy releases 40 ms apart; ", n);
			rc = 0;
			break;
		}
		CHECK(!(r = balloc(&b, 64 * KIB, 0, 0)), "alloc: %s", strerror(-r));
		p = bmap(&b, 0, b.len, 0);
		CHECK(p, "mmap");
		p[0] = 1;
		CHECK(!pipe(pp[n]), "pipe");
		struct iovec v = { p, PG };
		CHECK(vmsplice(pp[n][1], &v, 1, 0) == PG, "vmsplice: %s", strerror(errno));
		munmap(p, b.len);
		close(b.fd);
		usleep(40 * 1000);
	}
	if (rc)
		note("still there after %d busy releases 40 ms apart (%.1f s); ", N, N * 0.04);
	for (int i = 0; i < n; i++) {
		close(pp[i][0]);
		close(pp[i][1]);
	}
	if (wait_zero("drain-not-starved"))
		return 1;
	return rc;
}

/*
 * root: a buffer's pages are looked at without physmem_buf_lock, the lock
 * PHYSMEM_IOC_QUERY takes on the daemon's event loop.  The last put of a
 * buffer runs in whichever process lets go last, at its own priority; a
 * scan under the lock (a whole page array for a pool buffer or fragmented
 * memory) let such a process hold the daemon up, for as long as it stayed
 * preempted on a preemptible kernel.  A kprobe on physmem_buf_pages_busy()
 * reads the lock's first word at each scan (zero when nobody holds it, a
 * mutex or a spinlock alike): the scans of eight releases and of the drain
 * work's looks at a draining buffer.
 */
#define TRACEFS "/sys/kernel/tracing"
#define SCAN_PROBE "p:physmem_atk/scan physmem:physmem_buf_pages_busy lock=@physmem_buf_lock:u32"
static int scan_probe_count(int *ret_held)
{
	FILE *f = fopen(TRACEFS "/trace", "r");
	char line[512];
	int n = 0;

	*ret_held = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		const char *l = strstr(line, " lock=");

		if (line[0] == '#' || !strstr(line, "scan:") || !l)
			continue;
		n++;
		if (strtoull(l + 6, NULL, 0) != 0)
			(*ret_held)++;
	}
	fclose(f);
	return n;
}

static int case_release_lock(void)
{
	int n, held, r, pp[2], fd;
	struct buf b;
	char *p;

	if (unpriv)
		return 77;
	if (access(TRACEFS "/kprobe_events", W_OK))
		(void)mount("tracefs", TRACEFS, "tracefs", 0, NULL);
	write_str(TRACEFS "/events/physmem_atk/scan/enable", "0");
	write_str(TRACEFS "/kprobe_events", "-:physmem_atk/scan");
	CHECK(!(r = write_str(TRACEFS "/kprobe_events", SCAN_PROBE)), "kprobe '%s': %s", SCAN_PROBE, strerror(-r));
	fd = open(TRACEFS "/trace", O_WRONLY | O_TRUNC | O_CLOEXEC);
	CHECK(fd >= 0, "clear the trace: %s", strerror(errno));
	close(fd);
	CHECK(!(r = write_str(TRACEFS "/events/physmem_atk/scan/enable", "1")), "enable the probe: %s", strerror(-r));

	for (int i = 0; i < 8; i++) {
		CHECK(!(r = balloc(&b, 4 * MIB + (uint64_t)i * PG, 0, 0)), "alloc: %s", strerror(-r));
		close(b.fd);
	}
	CHECK(!(r = balloc(&b, SG_ODD, 0, 0)), "alloc: %s", strerror(-r));
	p = bmap(&b, 0, b.len, 0);
	CHECK(p, "mmap");
	p[b.len - PG] = 1;
	CHECK(!pipe(pp), "pipe");
	struct iovec iov = { p + b.len - PG, PG };
	CHECK(vmsplice(pp[1], &iov, 1, 0) == PG, "vmsplice: %s", strerror(errno));
	munmap(p, b.len);
	close(b.fd);
	usleep(400 * 1000);	/* past the first drain check */
	close(pp[0]);
	close(pp[1]);
	r = wait_zero("release-lock");

	write_str(TRACEFS "/events/physmem_atk/scan/enable", "0");
	n = scan_probe_count(&held);
	write_str(TRACEFS "/kprobe_events", "-:physmem_atk/scan");
	if (r)
		return 1;
	CHECK(n >= 10, "%d page scans traced, want at least 10 (8 releases, the draining one's, a drain check)", n);
	/* A lock taken elsewhere at the same moment (nothing else runs here) is allowed once. */
	CHECK(held <= 1, "%d of %d page scans ran with physmem_buf_lock held", held, n);
	note("%d page scans, %d with the lock held", n, held);
	return 0;
}

static int report(const char *name, int rc)
{
	printf("PHYSMEM-TEST atk-%s%s %s %s\n", name, unpriv ? "-unpriv" : "",
	       rc == 0 ? "PASS" : rc == 77 ? "SKIP" : "FAIL", detail_len ? detail : "-");
	fflush(stdout);
	detail_len = 0;
	detail[0] = 0;
	return rc == 0 || rc == 77 ? 0 : 1;
}

int main(int argc, char **argv)
{
	int fails = 0, i = 1;
	const char *disk = getenv("ATK_DISK"), *wdev = getenv("ATK_WDEV");

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "--unpriv")) {
		unpriv = 1;
		i++;
	}
	dev = open(PHYSMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		printf("PHYSMEM-TEST atk-open FAIL %s\n", strerror(errno));
		return 1;
	}
	if (unpriv && (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		       setresuid(65534, 65534, 65534))) {
		printf("PHYSMEM-TEST atk-drop FAIL %s\n", strerror(errno));
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_sig, .sa_flags = SA_NODEFER };
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	for (; i < argc; i++) {
		const char *c = argv[i];
		int all = !strcmp(c, "all");
#define RUN(n, f) if (all || !strcmp(c, n)) { printf("PHYSMEM-ATK start %s\n", n); fails += report(n, f); }
		RUN("fork", case_fork());
		RUN("mremap", case_mremap());
		RUN("ranges", case_ranges());
		RUN("mprotect", case_mprotect());
		RUN("mlock", case_mlock());
		RUN("numa", case_numa());
		RUN("uffd", case_uffd());
		RUN("procfs", case_procfs());
		RUN("vmsplice-tail", case_vmsplice());
		RUN("iouring", case_iouring());
		RUN("odirect", disk ? case_odirect(disk, wdev) : 77);
		RUN("race", case_race());
		RUN("race-pt", case_race_pt());
		RUN("madvise", case_madvise());
		RUN("sync-attach-race", case_sync_race());
		RUN("phys", case_phys());
		RUN("quarantine", case_quarantine());
		RUN("release-lock", case_release_lock());
		RUN("drain-not-starved", case_drain_not_starved());
	}
	return fails ? 1 : 0;
}
