/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The memfd backend: buffers are sealed memfds. It works on any Linux
 * machine, but nothing pins the pages for a device, so it never reports
 * addresses (they would not be DMA-safe, and they tell an attacker where
 * memory is).
 *
 * The daemon owns none of the memory: it creates, sizes and seals the file
 * and never maps, populates or locks it. The client's first touch of each
 * page allocates it, so the page is charged to the client's own memory
 * cgroup (the kernel charges shmem pages to the task that faults them in),
 * and the lock setting does not apply. Freeing punches the whole file out: a
 * client that still maps the fd then reads zeros, and pages it still
 * references otherwise (a pipe filled with vmsplice(), a pinned I/O) stay
 * its own memory, charged to its cgroup, until it lets them go.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/memfd.h>

#include "physmem-proto.h"
#include "physmemd.h"

struct memfd_state {
	const struct conf *conf;
	long page_size;
};

static int memfd_init(const struct conf *conf, void **ret_state)
{
	struct memfd_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->conf = conf;
	st->page_size = sysconf(_SC_PAGESIZE);
	*ret_state = st;
	return 0;
}

static uint64_t memfd_granule(void *state)
{
	struct memfd_state *st = state;

	return st->conf->hugepage_size ? st->conf->hugepage_size : (uint64_t)st->page_size;
}

static void memfd_fini(void *state)
{
	free(state);
}

/* Describe a sealed memfd of size bytes; takes fd over. */
static void memfd_setup(int fd, uint64_t size, bool contiguous, struct backend_buffer *ret)
{
	ret->fd = fd;
	ret->size = size;
	ret->contiguous = contiguous;
}

static int memfd_allocate(void *state, uint64_t size, bool contiguous, int cache,
			  struct backend_buffer *ret, const char **ret_feature)
{
	struct memfd_state *st = state;
	uint64_t unit = memfd_granule(st);
	unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
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
	if (contiguous && (!st->conf->hugepage_size || size > st->conf->hugepage_size)) {
		*ret_feature = st->conf->hugepage_size ? "contiguous buffers larger than one huge page"
						       : "contiguous buffers without huge pages";
		return -EOPNOTSUPP;
	}
	if (st->conf->hugepage_size)
		flags |= MFD_HUGETLB | (st->conf->hugepage_size == (1ULL << 30) ? MFD_HUGE_1GB : MFD_HUGE_2MB);

	fd = memfd_create("physmem", flags);
	if (fd < 0)
		return -errno;
	/*
	 * No page is allocated here: the client's first touch (libphysmem
	 * populates on map) allocates them, charged to the client's cgroup.
	 */
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail_errno;
	/* Clients may write, but never resize or reseal. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail_errno;
	memfd_setup(fd, size, contiguous, ret);
	return 0;

fail_errno:
	r = -errno;
	close(fd);
	return r;
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
	memfd_setup(fd, (uint64_t)s.st_size, false, ret);
	return 0;
}

static void memfd_release(void *state, struct backend_buffer *b, bool keep)
{
	(void)state;
	/* Give the pages back even while a client still maps the file. */
	if (!keep && fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)b->size) < 0)
		log_warning("cannot punch out freed buffer: %s", strerror(errno));
	close(b->fd);
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
	/* memfd_create + ftruncate + seals of a new file: microseconds, nothing to wait on. */
	.inline_max = 64 << 10,
};
