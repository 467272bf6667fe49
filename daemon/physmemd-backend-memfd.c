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
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/memfd.h>

#include "physmem-proto.h"
#include "physmemd.h"

#define HUGE_2M (2ULL << 20)
#define HUGETLB_2M_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define SHMEM_THP_FILE "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

/*
 * Empty files made ahead of time: memfd_create() is most of what a small
 * Allocate costs the event loop (a new inode, file and dentry), so a thread
 * of this backend keeps up to SPARE_MAX of them ready and the loop only
 * sizes and seals one. Each is handed out once, as memfd_create() returns
 * it: no other process has seen it, and nothing is reused.
 *
 * The store gives way when fds run short. It holds at most SPARE_MAX, and
 * at the first sign that the table is nearly full (a file it makes lands
 * within SPARE_HEADROOM of the fd limit, an Allocate's own memfd_create()
 * fails, or the daemon's accept() does) it closes what it holds and stops;
 * it starts again only when a count of the open fds (at most once a
 * second, on its own thread) finds the table less than half full. With a
 * soft fd limit below 4 * SPARE_HEADROOM there is no store.
 */
#define SPARE_MAX 64
#define SPARE_LOW 32
#define SPARE_HEADROOM (4 * SPARE_MAX)
#define SPARE_RECHECK_NS 1000000000ULL

struct memfd_spares {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fds[SPARE_MAX];		/* under lock */
	ino_t inos[SPARE_MAX];		/* under lock: what fds[] were when made */
	unsigned n;			/* under lock */
	bool wanted;			/* under lock: fill up to SPARE_MAX */
	bool off;			/* under lock: the fd table was nearly full */
	bool stopping;			/* under lock */
	uint64_t off_checked_ns;	/* spare thread only: when the table was last counted */
	long fd_limit;			/* the soft RLIMIT_NOFILE when it started */
	bool started;			/* the thread runs (set after it started, cleared after it stopped) */
	pthread_t thread;
};

struct memfd_state {
	const struct conf *conf;
	long page_size;
	/* hugepages = auto: the 2 MiB pool's counters and shmem THP's setting (-1: none). */
	int free_fd;
	int resv_fd;
	int thp_fd;
	struct memfd_spares spares;
};

/* The files every small-page buffer starts as. */
static int memfd_new_file(unsigned huge_flags)
{
	return memfd_create("physmem", MFD_CLOEXEC | MFD_ALLOW_SEALING | huge_flags);
}

static uint64_t spare_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Open fds of this process (-1 if /proc cannot tell). */
static long count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own */
}

/* Close every spare file and stop filling (under sp->lock). */
static void spares_give_back(struct memfd_spares *sp, const char *why)
{
	if (!sp->off)
		log_notice("memfd: %s: giving back %u spare files; Allocates make their own until the fd table is "
			   "less than half full", why, sp->n);
	while (sp->n > 0)
		close(sp->fds[--sp->n]);
	sp->off = true;
	sp->wanted = false;
}

/*
 * Off after fd pressure: on again when fewer than half the table's fds are
 * open, counted at most once a second (a walk over the table). Called and
 * returns with sp->lock held; the count runs without it.
 */
static bool spares_may_refill(struct memfd_spares *sp)
{
	uint64_t now;
	long open;

	if (!sp->off)
		return true;
	now = spare_now_ns();
	if (sp->off_checked_ns && now - sp->off_checked_ns < SPARE_RECHECK_NS)
		return false;
	sp->off_checked_ns = now;
	pthread_mutex_unlock(&sp->lock);
	open = count_open_fds();
	pthread_mutex_lock(&sp->lock);
	if (open < 0 || open >= sp->fd_limit / 2)
		return false;
	log_notice("memfd: %ld of %ld fds open: making spare files again", open, sp->fd_limit);
	sp->off = false;
	return true;
}

/*
 * The spare-file thread: fills the store when asked and sleeps otherwise.
 * A failure ends the fill, so it never spins; a take from an empty store
 * makes its file itself.
 */
static void *memfd_spare_main(void *arg)
{
	struct memfd_spares *sp = arg;

	pthread_mutex_lock(&sp->lock);
	for (;;) {
		while (!sp->wanted && !sp->stopping)
			pthread_cond_wait(&sp->cond, &sp->lock);
		if (sp->stopping)
			break;
		if (!spares_may_refill(sp)) {
			sp->wanted = false;
			continue;
		}
		while (!sp->off && sp->n < SPARE_MAX && !sp->stopping) {
			struct stat s;
			int fd;

			pthread_mutex_unlock(&sp->lock);
			fd = memfd_new_file(0);
			if (fd < 0) {
				fd = -errno;
			} else if (fd >= sp->fd_limit - SPARE_HEADROOM || fstat(fd, &s) < 0) {
				close(fd);
				fd = -EMFILE;
			}
			pthread_mutex_lock(&sp->lock);
			if (fd == -EMFILE || fd == -ENFILE) {
				spares_give_back(sp, "the fd table is nearly full");
				break;
			}
			if (fd < 0)
				break;	/* ENOMEM: again at the next take below SPARE_LOW */
			sp->inos[sp->n] = s.st_ino;
			sp->fds[sp->n++] = fd;
		}
		sp->wanted = false;
	}
	pthread_mutex_unlock(&sp->lock);
	return NULL;
}

static void memfd_spares_start(struct memfd_spares *sp)
{
	struct rlimit rl;
	sigset_t all, old;
	int r;

	/* The daemon raised its soft limit before the backend started. */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	sp->fd_limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1U << 30) ? (1L << 30) : (long)rl.rlim_cur;
	if (sp->fd_limit < 4 * SPARE_HEADROOM) {
		log_info("memfd: an fd limit of %ld is too low for spare files", sp->fd_limit);
		return;
	}
	pthread_mutex_init(&sp->lock, NULL);
	pthread_cond_init(&sp->cond, NULL);
	sp->wanted = true;
	/* Signals are the main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&sp->thread, NULL, memfd_spare_main, sp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		log_warning("memfd: no thread for spare files (%s): each Allocate makes its own", strerror(r));
		pthread_cond_destroy(&sp->cond);
		pthread_mutex_destroy(&sp->lock);
		return;
	}
	sp->started = true;
}

static void memfd_spares_stop(struct memfd_spares *sp)
{
	if (!sp->started)
		return;
	pthread_mutex_lock(&sp->lock);
	sp->stopping = true;
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
	pthread_join(sp->thread, NULL);
	while (sp->n > 0)
		close(sp->fds[--sp->n]);
	pthread_cond_destroy(&sp->cond);
	pthread_mutex_destroy(&sp->lock);
	sp->started = false;
}

/*
 * A spare file, or -1. One whose fd no longer is the file made (something
 * closed it by mistake and the number was reused) is dropped, not closed,
 * and never handed out.
 */
static int spares_pop(struct memfd_spares *sp)
{
	while (sp->n > 0) {
		struct stat s;
		int fd = sp->fds[--sp->n];

		if (fstat(fd, &s) == 0 && s.st_ino == sp->inos[sp->n] && s.st_size == 0)
			return fd;
		log_error("memfd: spare file fd %d was closed or replaced behind the store's back; dropped", fd);
	}
	return -1;
}

/* A new empty file of small pages: a spare one if there is one (any thread). */
static int memfd_take_file(struct memfd_state *st)
{
	struct memfd_spares *sp = &st->spares;
	int fd = -1;

	if (!sp->started)
		return memfd_new_file(0);
	pthread_mutex_lock(&sp->lock);
	fd = spares_pop(sp);
	if (fd >= 0 && sp->n < SPARE_LOW && !sp->wanted) {
		sp->wanted = true;
		pthread_cond_signal(&sp->cond);
	}
	pthread_mutex_unlock(&sp->lock);
	if (fd >= 0)
		return fd;
	fd = memfd_new_file(0);
	if (fd < 0 && errno != EMFILE && errno != ENFILE)
		return fd;
	{
		int e = errno;

		pthread_mutex_lock(&sp->lock);
		if (fd < 0) {
			spares_give_back(sp, "an Allocate ran out of fds");
		} else if (!sp->wanted) {
			/* Empty: fill it (when off, once a count of the table allows). */
			sp->wanted = true;
			pthread_cond_signal(&sp->cond);
		}
		pthread_mutex_unlock(&sp->lock);
		errno = e;
	}
	return fd;
}

/* accept() found the fd table full: the spare files go back. */
static void memfd_fd_pressure(void *state)
{
	struct memfd_spares *sp = &((struct memfd_state *)state)->spares;

	if (!sp->started)
		return;
	pthread_mutex_lock(&sp->lock);
	spares_give_back(sp, "the daemon cannot accept connections for want of fds");
	pthread_mutex_unlock(&sp->lock);
}

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
	/* With a fixed huge page size every file is a hugetlb one, made when asked for. */
	if (!conf->hugepage_size)
		memfd_spares_start(&st->spares);
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

	memfd_spares_stop(&st->spares);
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
static int memfd_make(struct memfd_state *st, uint64_t size, unsigned huge_flags, int *ret_fd)
{
	int fd, r;

	fd = huge_flags ? memfd_new_file(huge_flags) : memfd_take_file(st);
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
	r = memfd_make(st, size, MFD_HUGETLB | MFD_HUGE_2MB, &fd);
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
		r = memfd_make(st, size, MFD_HUGETLB | (huge == (1ULL << 30) ? MFD_HUGE_1GB : MFD_HUGE_2MB), &fd);
		if (r < 0)
			return r;
		memfd_setup(fd, size, contiguous, huge, ret);
		return 0;
	}
	if (st->conf->hugepages_auto && memfd_try_hugetlb(st, size, ret))
		return 0;
	r = memfd_make(st, size, 0, &fd);
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
	.fd_pressure = memfd_fd_pressure,
};
