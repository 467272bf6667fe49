/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The memfd backend: buffers are sealed memfds, populated and (per the lock
 * setting) locked by the daemon. It works on any Linux machine, but nothing
 * pins the pages for a device, so its addresses are never DMA-safe: the
 * physical segments come from /proc/self/pagemap, which shows frame numbers
 * only to a daemon with CAP_SYS_ADMIN, and are reported for diagnostics.
 *
 * Freeing punches the whole file out, so the memory goes back to the system
 * at once even if a client still maps the fd: its mapping then reads zeros,
 * and any page it writes afterwards is ordinary memory charged to the client
 * itself (its own cgroup), never to the daemon's quota accounting.
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

#define PAGEMAP_PFN_MASK ((1ULL << 55) - 1)
#define PAGEMAP_PRESENT (1ULL << 63)
/* Past this many runs the list is too long to be useful: report none. */
#define MAX_SEGMENTS 1024

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

/* Physical runs of a mapping, from pagemap; leaves *ret empty when hidden. */
static int memfd_segments(struct memfd_state *st, void *map, uint64_t size, struct backend_buffer *ret)
{
	uint64_t pages = size / (uint64_t)st->page_size, done = 0;
	uint64_t chunk[512];
	struct segment *segs = NULL;
	unsigned n = 0, cap = 0;
	int fd, r = 0;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while (done < pages) {
		uint64_t want = pages - done;
		off_t off = (off_t)(((uintptr_t)map / (uint64_t)st->page_size + done) * sizeof(uint64_t));
		ssize_t got;

		if (want > 512)
			want = 512;
		got = pread(fd, chunk, want * sizeof(uint64_t), off);
		if (got != (ssize_t)(want * sizeof(uint64_t))) {
			r = -EIO;
			break;
		}
		for (uint64_t i = 0; i < want; i++) {
			uint64_t pfn = chunk[i] & PAGEMAP_PFN_MASK;
			uint64_t addr = pfn * (uint64_t)st->page_size;

			if (!(chunk[i] & PAGEMAP_PRESENT) || pfn == 0) {
				r = -EPERM;	/* not present, or frame numbers hidden */
				goto out;
			}
			if (n && segs[n - 1].address + segs[n - 1].length == addr) {
				segs[n - 1].length += (uint64_t)st->page_size;
				continue;
			}
			if (n == MAX_SEGMENTS) {
				r = -E2BIG;
				goto out;
			}
			if (n == cap) {
				struct segment *p;

				cap = cap ? cap * 2 : 16;
				p = realloc(segs, cap * sizeof(*segs));
				if (!p) {
					r = -ENOMEM;
					goto out;
				}
				segs = p;
			}
			segs[n].address = addr;
			segs[n].length = (uint64_t)st->page_size;
			n++;
		}
		done += want;
	}
out:
	close(fd);
	if (r < 0) {
		free(segs);
		return r == -ENOMEM ? r : 0;
	}
	ret->segments = segs;
	ret->n_segments = n;
	return 0;
}

/* Map, lock and describe a sealed memfd; takes fd over on success. */
static int memfd_setup(struct memfd_state *st, int fd, uint64_t size, bool contiguous, struct backend_buffer *ret)
{
	void *map;
	int r;

	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	/* A sink forked later must not keep the buffer's memory mapped. */
	(void)madvise(map, size, MADV_DONTFORK);
	if (st->conf->lock != LOCK_NO) {
		if (mlock(map, size) == 0) {
			ret->locked = true;
		} else if (st->conf->lock == LOCK_YES) {
			r = -errno;
			munmap(map, size);
			return r;
		} else {
			log_debug("mlock of %llu bytes failed (%s); buffer stays unlocked",
				  (unsigned long long)size, strerror(errno));
		}
	}
	r = memfd_segments(st, map, size, ret);
	if (r < 0) {
		munmap(map, size);
		return r;
	}
	ret->fd = fd;
	ret->size = size;
	ret->map = map;
	ret->contiguous = contiguous || ret->n_segments == 1;
	return 0;
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
	/* Rounded up to the allocation unit by the caller's size check. */
	size = (size + unit - 1) / unit * unit;
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
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail_errno;
	/* Allocate every page now: a full system fails here, not with SIGBUS later. */
	r = fallocate(fd, 0, 0, (off_t)size);
	if (r < 0)
		goto fail_errno;
	/* Clients may write, but never resize or reseal. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail_errno;
	r = memfd_setup(st, fd, size, contiguous, ret);
	if (r < 0) {
		close(fd);
		return r;
	}
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
	return memfd_setup(st, fd, (uint64_t)s.st_size, false, ret);
}

static void memfd_release(void *state, struct backend_buffer *b, bool keep)
{
	(void)state;
	if (b->map)
		munmap(b->map, b->size);
	/* Give the pages back even while a client still maps the file. */
	if (!keep && fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)b->size) < 0)
		log_warning("cannot punch out freed buffer: %s", strerror(errno));
	close(b->fd);
	free(b->segments);
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
};
