/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The memfd backend: buffers are sealed memfds. It works on any Linux
 * machine, but nothing pins the pages for a device, so it never reports
 * addresses (they would not be DMA-safe, and they tell an attacker where
 * memory is).
 *
 * The daemon owns none of the memory: it creates, sizes and seals the file
 * and never populates or locks it. The client's first touch of each
 * page allocates it, so the page is charged to the client's own memory
 * cgroup (the kernel charges shmem pages to the task that faults them in),
 * and the lock setting does not apply. Freeing punches the whole file out: a
 * client that still maps the fd then reads zeros, and pages it still
 * references otherwise (a pipe filled with vmsplice(), a pinned I/O) stay
 * its own memory, charged to its cgroup, until it lets them go.
 *
 * Huge pages (physmemd.conf(5) hugepages): with a fixed size every buffer is
 * a hugetlb memfd; with auto (the default) a buffer whose size is a whole
 * number of 2 MiB pages is one when the kernel's pool has that many pages
 * free and unreserved, and otherwise a shmem memfd that the kernel may back
 * with transparent huge pages where shmem_enabled allows it. auto never
 * changes a size: what is charged is what was asked for (page-rounded). A
 * hugetlb file's pages are reserved here by mapping it once (the kernel keeps
 * a shared mapping's reservation with the file), without touching them, so
 * the client's populate cannot fail later; a pool emptied by someone else
 * between the check and the reservation makes this a shmem buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/memfd.h>

#include "physmem-proto.h"
#include "physmemd.h"

#define HUGE_2M (2ULL << 20)
#define HUGETLB_2M_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define SHMEM_THP_FILE "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

struct memfd_state {
	const struct conf *conf;
	long page_size;
	/* hugepages = auto: the 2 MiB pool's counters and shmem THP's setting (-1: none). */
	int free_fd;
	int resv_fd;
	int thp_fd;
};

static int memfd_init(const struct conf *conf, void **ret_state)
{
	struct memfd_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->conf = conf;
	st->page_size = sysconf(_SC_PAGESIZE);
	st->free_fd = st->resv_fd = st->thp_fd = -1;
	/* Opened once: a pread() per large Allocate is all the check costs. */
	if (conf->hugepages_auto && !conf->hugepage_size) {
		st->free_fd = open(HUGETLB_2M_DIR "free_hugepages", O_RDONLY | O_CLOEXEC);
		st->resv_fd = open(HUGETLB_2M_DIR "resv_hugepages", O_RDONLY | O_CLOEXEC);
		st->thp_fd = open(SHMEM_THP_FILE, O_RDONLY | O_CLOEXEC);
	}
	*ret_state = st;
	return 0;
}

/* Read a sysfs text file from its start; "" on any error. */
static void memfd_sysfs_read(int fd, char *buf, size_t size)
{
	ssize_t n = fd >= 0 ? pread(fd, buf, size - 1, 0) : -1;

	buf[n > 0 ? (size_t)n : 0] = '\0';
}

/* 2 MiB hugetlb pages free and not reserved for another file right now (0 if unknown). */
static uint64_t memfd_hugetlb_available(struct memfd_state *st)
{
	char f[32], r[32];
	unsigned long long nf, nr;

	memfd_sysfs_read(st->free_fd, f, sizeof(f));
	memfd_sysfs_read(st->resv_fd, r, sizeof(r));
	if (sscanf(f, "%llu", &nf) != 1 || sscanf(r, "%llu", &nr) != 1 || nr >= nf)
		return 0;
	return nf - nr;
}

/* Whether shmem_enabled lets a memfd have transparent huge pages (always, within_size, advise). */
static bool memfd_thp_allowed(struct memfd_state *st)
{
	char s[128];

	memfd_sysfs_read(st->thp_fd, s, sizeof(s));
	return strstr(s, "[always]") || strstr(s, "[within_size]") || strstr(s, "[advise]");
}

static uint64_t memfd_granule(void *state)
{
	struct memfd_state *st = state;

	return st->conf->hugepage_size ? st->conf->hugepage_size : (uint64_t)st->page_size;
}

static void memfd_fini(void *state)
{
	struct memfd_state *st = state;

	if (st->free_fd >= 0)
		close(st->free_fd);
	if (st->resv_fd >= 0)
		close(st->resv_fd);
	if (st->thp_fd >= 0)
		close(st->thp_fd);
	free(st);
}

/* Describe a sealed memfd of size bytes; takes fd over. */
static void memfd_setup(int fd, uint64_t size, bool contiguous, uint64_t page_size, struct backend_buffer *ret)
{
	ret->fd = fd;
	ret->size = size;
	ret->contiguous = contiguous;
	ret->page_size = page_size;
}

/*
 * A sealed memfd of size bytes in *ret_fd; huge_flags (MFD_HUGETLB and its
 * size) reserve its huge pages now: -ENOMEM when the pool has too few.
 */
static int memfd_make(uint64_t size, unsigned huge_flags, int *ret_fd)
{
	int fd, r;

	fd = memfd_create("physmem", MFD_CLOEXEC | MFD_ALLOW_SEALING | huge_flags);
	if (fd < 0)
		return -errno;
	/*
	 * No page is allocated here: the client's first touch (libphysmem
	 * populates on map) allocates them, charged to the client's cgroup.
	 */
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail_errno;
	if (huge_flags) {
		/* Mapping it shared reserves every huge page of the file until it is punched or closed. */
		void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (p == MAP_FAILED)
			goto fail_errno;
		(void)munmap(p, (size_t)size);
	}
	/* Clients may write, but never resize or reseal. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail_errno;
	*ret_fd = fd;
	return 0;

fail_errno:
	r = -errno;
	close(fd);
	return r;
}

/* hugepages = auto: a hugetlb memfd of 2 MiB pages if size is a whole number of them and the pool has them. */
static bool memfd_try_hugetlb(struct memfd_state *st, uint64_t size, struct backend_buffer *ret)
{
	int fd, r;

	if (size % HUGE_2M || size / HUGE_2M > memfd_hugetlb_available(st))
		return false;
	r = memfd_make(size, MFD_HUGETLB | MFD_HUGE_2MB, &fd);
	if (r < 0) {
		/* Taken between the check and the reservation (or no hugetlbfs): small pages. */
		log_debug("no 2 MiB pages for a %llu-byte buffer (%s): using small pages",
			  (unsigned long long)size, strerror(-r));
		return false;
	}
	memfd_setup(fd, size, false, HUGE_2M, ret);
	return true;
}

static int memfd_allocate(void *state, uint64_t size, bool contiguous, int cache,
			  struct backend_buffer *ret, const char **ret_feature)
{
	struct memfd_state *st = state;
	uint64_t unit = memfd_granule(st), huge = st->conf->hugepage_size;
	int fd, r;

	memset(ret, 0, sizeof(*ret));
	ret->fd = -1;
	if (cache != PHYSMEM_CACHE_MODE_CACHED) {
		*ret_feature = "cache mode other than cached";
		return -EOPNOTSUPP;
	}
	/* registry_alloc_size() rounds; this makes exactly what was charged. */
	if (size == 0 || size % unit)
		return -EINVAL;
	/* Only one huge page is guaranteed to be physically contiguous. */
	if (contiguous && (!huge || size > huge)) {
		*ret_feature = huge ? "contiguous buffers larger than one huge page" : "contiguous buffers without huge pages";
		return -EOPNOTSUPP;
	}
	if (huge) {
		r = memfd_make(size, MFD_HUGETLB | (huge == (1ULL << 30) ? MFD_HUGE_1GB : MFD_HUGE_2MB), &fd);
		if (r < 0)
			return r;
		memfd_setup(fd, size, contiguous, huge, ret);
		return 0;
	}
	if (st->conf->hugepages_auto && memfd_try_hugetlb(st, size, ret))
		return 0;
	r = memfd_make(size, 0, &fd);
	if (r < 0)
		return r;
	memfd_setup(fd, size, contiguous, (uint64_t)st->page_size, ret);
	/* A client's mapping asks for them (shmem_enabled "advise" gives them only then). */
	ret->thp = st->conf->hugepages_auto && size >= HUGE_2M && memfd_thp_allowed(st);
	return 0;
}

/*
 * Only small pages on the loop: a huge page reservation may have to find
 * free 2 MiB blocks (surplus pages: compaction, reclaim), so every size
 * that hugepages = 2M/1G gives huge pages, and every one that auto may, goes
 * to a worker (as memfd_try_hugetlb decides: whole 2 MiB pages).
 */
static bool memfd_inline_ok(void *state, uint64_t size)
{
	const struct memfd_state *st = state;

	if (st->conf->hugepage_size)
		return false;
	return !st->conf->hugepages_auto || size % HUGE_2M;
}

static int memfd_adopt(void *state, int fd, struct backend_buffer *ret)
{
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	struct memfd_state *st = state;
	struct stat s;

	memset(ret, 0, sizeof(*ret));
	ret->fd = -1;
	/* Only what memfd_allocate() made: a sealed memfd of whole pages. */
	if (fstat(fd, &s) < 0 || !S_ISREG(s.st_mode) || s.st_size <= 0 ||
	    (uint64_t)s.st_size % (uint64_t)st->page_size || (fcntl(fd, F_GET_SEALS) & seals) != seals)
		return -EINVAL;
	/* A hugetlb file's block size is its huge page size. */
	memfd_setup(fd, (uint64_t)s.st_size, false, s.st_blksize > st->page_size ? (uint64_t)s.st_blksize
									    : (uint64_t)st->page_size, ret);
	ret->thp = ret->page_size == (uint64_t)st->page_size && st->conf->hugepages_auto && ret->size >= HUGE_2M &&
		   memfd_thp_allowed(st);
	return 0;
}

static void memfd_release(void *state, struct backend_buffer *b, bool keep)
{
	(void)state;
	/* Give the pages back even while a client still maps the file. */
	if (!keep && fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)b->size) < 0)
		log_warning("cannot punch out freed buffer: %s", strerror(errno));
	close(b->fd);
	backend_bindings_free(b);	/* none: this backend cannot bind */
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

const struct backend_ops backend_memfd_ops = {
	.name = "memfd",
	.dma_safe = false,
	.init = memfd_init,
	.fini = memfd_fini,
	.granule = memfd_granule,
	.allocate = memfd_allocate,
	.pin = NULL,
	.adopt = memfd_adopt,
	.release = memfd_release,
	/*
	 * memfd_create + ftruncate + seals of a new file of small pages:
	 * microseconds whatever the size, nothing to wait on, as no page is
	 * allocated here. Up to the small lane's jobs: the larger ones keep
	 * their worker, where the test hook makes them slow.
	 */
	.inline_max = WORKER_SMALL_JOB,
	.inline_ok = memfd_inline_ok,
};
