// SPDX-License-Identifier: GPL-2.0
/*
 * physmem-users: kernel users of physmem buffers, run inside the test VM as
 * root (tests/vm/cases/75-kernel-users.sh).
 *
 *   physmem-users vgem-fence-poll           vgem imports a buffer and puts a
 *                                           write fence on it: poll() and
 *                                           DMA_BUF_IOCTL_SYNC wait for it
 *   physmem-users gup-af-xdp-umem           AF_XDP UMEM on buffer mappings
 *   physmem-users io-uring-fixed-buffers [DISK]  io_uring fixed buffers
 *
 * Prints "PHYSMEM-TEST NAME PASS|FAIL|SKIP detail" (the VM case format).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/if_xdp.h>
#include <linux/io_uring.h>

#include "uapi/physmem.h"
#include "vmtest-note.h"

#define KIB		1024ULL
#define MIB		(1024ULL * 1024)
#define DISK_SEED	0xd15cULL	/* physmem-vmtest mkdisk's pattern */
#define STATS_DIR	"/sys/class/misc/physmem/stats"

#include "vgem-abi.h"

/* ---- helpers ---- */

/* Offset of the first byte that differs from the pattern, or -1. */
static long long verify(const uint8_t *p, uint64_t len, uint64_t seed)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != pat(seed, i))
			return (long long)i;
	return -1;
}

/* Kernel version as major * 100 + minor (6.1 -> 601). */
static int kernel_version(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return 0;
	return major * 100 + minor;
}

/* 0 when every physmem buffer is gone (sysfs counters), else 1 with a note. */
static int check_zero(const char *when)
{
	long long b = read_num(STATS_DIR "/buffers"), n = read_num(STATS_DIR "/bytes");
	long long db = read_num(STATS_DIR "/draining_buffers");

	CHECK(b == 0 && n == 0 && db == 0,
	      "%s: counters not zero (buffers %lld bytes %lld draining %lld)",
	      when, b, n, db);
	return 0;
}

/* Wait up to 10 s for the counters to reach zero, then check_zero(). */
static int wait_zero(const char *when)
{
	for (int i = 0; i < 200; i++) {
		if (read_num(STATS_DIR "/buffers") == 0 &&
		    read_num(STATS_DIR "/draining_buffers") == 0)
			break;
		usleep(50 * 1000);
	}
	return check_zero(when);
}

/* PHYSMEM_IOC_ALLOC (scatter-gather, cached): the dma-buf fd, or -errno. */
static int buf_alloc(int dev, uint64_t len, uint64_t *ret_id)
{
	struct physmem_alloc a = { .size = sizeof(a), .length = len };

	if (ioctl(dev, PHYSMEM_IOC_ALLOC, &a))
		return -errno;
	if (ret_id)
		*ret_id = a.id;
	return a.fd;
}

/* A sealed, written memfd of @len bytes (pattern byte @fillc), or -errno. */
static int memfd_make(uint64_t len, int fillc)
{
	int fd = memfd_create("physmem-users", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *m;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len))
		return -errno;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	memset(m, fillc, len);	/* a pin never allocates */
	munmap(m, len);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK))
		return -errno;
	return fd;
}

/* PHYSMEM_IOC_PIN of the whole memfd: the dma-buf fd, or -errno. */
static int buf_pin(int dev, int memfd, uint64_t len)
{
	struct physmem_pin p = { .size = sizeof(p), .memfd = memfd, .length = len };

	return ioctl(dev, PHYSMEM_IOC_PIN, &p) ? -errno : p.fd;
}

/* PHYSMEM_IOC_QUERY: 0 with out_flags, or -errno. */
static int buf_query(int dev, uint64_t id, uint32_t *ret_flags)
{
	struct physmem_query q = { .size = sizeof(q), .id = id };

	if (ioctl(dev, PHYSMEM_IOC_QUERY, &q))
		return -errno;
	*ret_flags = q.out_flags;
	return 0;
}

static void *map_rw(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * A released buffer whose pages a kernel user still holds is draining:
 * QUERY says alive and RELEASED, the draining counters show it.
 */
static int check_draining(int dev, uint64_t id, uint64_t len, const char *who)
{
	uint32_t fl = 0;
	int r = buf_query(dev, id, &fl);

	CHECK(!r && fl == PHYSMEM_QUERY_RELEASED,
	      "QUERY after release while %s holds the pages: %s flags %#x, want alive+RELEASED",
	      who, r ? strerror(-r) : "alive", fl);
	CHECK(read_num(STATS_DIR "/draining_buffers") == 1 &&
	      read_num(STATS_DIR "/draining_bytes") == (long long)len,
	      "draining_buffers %lld draining_bytes %lld while %s holds the pages, want 1 and %llu",
	      read_num(STATS_DIR "/draining_buffers"),
	      read_num(STATS_DIR "/draining_bytes"), who,
	      (unsigned long long)len);
	return 0;
}

/* After the holder let go: QUERY says ENOENT within 10 s, counters zero. */
static int check_drained(int dev, uint64_t id, const char *who)
{
	uint32_t fl;
	int r = 0;

	for (int i = 0; i < 200; i++) {
		r = buf_query(dev, id, &fl);
		if (r == -ENOENT)
			break;
		usleep(50 * 1000);
	}
	CHECK(r == -ENOENT, "QUERY 10 s after %s let go: %s, want ENOENT",
	      who, r ? strerror(-r) : "alive");
	return wait_zero("after draining");
}

/* ---- vgem fences ---- */

/* Which of POLLIN/POLLOUT the dma-buf reports ready right now. */
static short poll_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents;
}

static const char *ev_str(short ev)
{
	static char s[4][24];
	static int k;
	char *b = s[k++ & 3];

	snprintf(b, sizeof(s[0]), "%s%s%s", ev & POLLIN ? "IN" : "",
		 ev & POLLOUT ? "|OUT" : "", ev ? "" : "none");
	return b;
}

/*
 * A child that waits on the dma-buf (@sync false: poll(POLLIN), 9 s;
 * @sync true: DMA_BUF_IOCTL_SYNC START|READ) and then writes one result
 * byte to @wfd: 'I' poll saw POLLIN, 'T' poll timed out, 'S' SYNC returned
 * 0, 'E' an error.
 */
static pid_t waiter_start(int fd, bool sync, int wfd)
{
	pid_t pid = fork();

	if (pid == 0) {
		char c;

		if (sync) {
			struct dma_buf_sync s = {
				.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ };

			c = ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) ? 'E' : 'S';
			s.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
			ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
		} else {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int n = poll(&p, 1, 9000);

			c = n < 0 ? 'E' : n == 0 ? 'T' : (p.revents & POLLIN) ? 'I' : 'E';
		}
		_exit(write(wfd, &c, 1) == 1 ? 0 : 1);
	}
	return pid;
}

/* Bytes available on @fd within @ms milliseconds (0: none). */
static int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

/* Attach a vgem fence to @handle: its id, or -errno. */
static int fence_attach(int card, uint32_t handle, bool write)
{
	struct drm_vgem_fence_attach_abi a = {
		.handle = handle, .flags = write ? VGEM_FENCE_WRITE : 0 };

	return ioctl(card, DRM_IOCTL_VGEM_FENCE_ATTACH, &a) ? -errno : (int)a.out_fence;
}

static int fence_signal(int card, uint32_t fence)
{
	struct drm_vgem_fence_signal_abi s = { .fence = fence };

	return ioctl(card, DRM_IOCTL_VGEM_FENCE_SIGNAL, &s) ? -errno : 0;
}

/*
 * One buffer through vgem: PRIME import, a read fence (blocks POLLOUT only),
 * a write fence (blocks POLLIN and POLLOUT; dma_buf_poll waits on write
 * fences for POLLIN and on all fences for POLLOUT, and DMA_BUF_IOCTL_SYNC
 * START waits in dma_buf_begin_cpu_access on the fences its direction
 * needs), waiters in two children that only return once we signal.
 */
static int vgem_one(int dev, int card, const char *kind)
{
	const uint64_t len = 256 * KIB;
	struct drm_prime_handle_abi ph = { 0 };
	struct drm_gem_close_abi gc = { 0 };
	int fd, memfd = -1, f, p[2], r, st;
	pid_t w[2];
	char res[2] = "";
	short ev;

	if (!strcmp(kind, "pin")) {
		memfd = memfd_make(len, 0x5a);
		CHECK(memfd >= 0, "memfd: %s", strerror(-memfd));
		fd = buf_pin(dev, memfd, len);
	} else if (!strncmp(kind, "pool", 4)) {
		struct physmem_alloc a = { .size = sizeof(a), .flags = PHYSMEM_ALLOC_POOL,
					   .length = len, .pool = (uint32_t)atoi(kind + 4) };

		fd = ioctl(dev, PHYSMEM_IOC_ALLOC, &a) ? -errno : a.fd;
	} else {
		fd = buf_alloc(dev, len, NULL);
	}
	CHECK(fd >= 0, "%s buffer: %s", kind, strerror(-fd));

	ph.fd = fd;
	CHECK(!ioctl(card, DRM_IOCTL_PRIME_FD_TO_HANDLE, &ph),
	      "%s: PRIME_FD_TO_HANDLE: %s", kind, strerror(errno));
	ev = poll_now(fd);
	CHECK(ev == (POLLIN | POLLOUT), "%s: poll without fences: %s, want IN|OUT",
	      kind, ev_str(ev));

	/* a read fence: readers may go on, a writer must wait */
	f = fence_attach(card, ph.handle, false);
	CHECK(f >= 0, "%s: FENCE_ATTACH read: %s", kind, strerror(-f));
	ev = poll_now(fd);
	CHECK(ev == POLLIN, "%s: poll with a read fence: %s, want IN", kind, ev_str(ev));
	r = fence_signal(card, (uint32_t)f);
	CHECK(!r, "%s: FENCE_SIGNAL read: %s", kind, strerror(-r));
	ev = poll_now(fd);
	CHECK(ev == (POLLIN | POLLOUT), "%s: poll after the read fence signalled: %s",
	      kind, ev_str(ev));

	/* a write fence: nobody may touch the buffer until it signals */
	f = fence_attach(card, ph.handle, true);
	CHECK(f >= 0, "%s: FENCE_ATTACH write: %s", kind, strerror(-f));
	ev = poll_now(fd);
	CHECK(ev == 0, "%s: poll right after a write fence: %s, want none", kind, ev_str(ev));
	CHECK(!pipe2(p, O_CLOEXEC), "pipe: %s", strerror(errno));
	w[0] = waiter_start(fd, false, p[1]);
	w[1] = waiter_start(fd, true, p[1]);
	CHECK(w[0] > 0 && w[1] > 0, "fork: %s", strerror(errno));
	/* both must still be waiting (the fence would time out only after 10 s) */
	CHECK(!readable(p[0], 500), "%s: a waiter returned before the write fence signalled",
	      kind);
	r = fence_signal(card, (uint32_t)f);
	CHECK(!r, "%s: FENCE_SIGNAL write: %s (ETIMEDOUT: vgem's 10 s timeout hit first)",
	      kind, strerror(-r));
	for (int i = 0; i < 2; i++) {
		CHECK(readable(p[0], 9000) && read(p[0], &res[i], 1) == 1,
		      "%s: waiter %d did not return after the signal", kind, i);
	}
	for (int i = 0; i < 2; i++)
		waitpid(w[i], &st, 0);
	close(p[0]);
	close(p[1]);
	CHECK((res[0] == 'I' && res[1] == 'S') || (res[0] == 'S' && res[1] == 'I'),
	      "%s: waiters returned '%c' '%c', want poll POLLIN and SYNC 0",
	      kind, res[0], res[1]);
	ev = poll_now(fd);
	CHECK(ev == (POLLIN | POLLOUT), "%s: poll after the write fence signalled: %s",
	      kind, ev_str(ev));

	gc.handle = ph.handle;
	CHECK(!ioctl(card, DRM_IOCTL_GEM_CLOSE, &gc), "%s: GEM_CLOSE: %s",
	      kind, strerror(errno));
	close(fd);
	if (memfd >= 0)
		close(memfd);
	note("%s: read fence: poll IN only; write fence: poll none, poll(POLLIN) and SYNC_START blocked until FENCE_SIGNAL, then IN|OUT; ",
	     kind);
	return 0;
}

/*
 * vgem imports a buffer of each of @kinds in turn (vgem_one()), NULL ends
 * the list; with handles and fds closed the counters go back to zero.
 */
static int vgem_kinds(const char *const *kinds)
{
	int dev, card, r = 0;

	card = vgem_open();
	if (card < 0) {
		note("no /dev/dri/card* with driver vgem (modprobe vgem failed?)");
		return 77;
	}
	dev = open("/dev/physmem", O_RDWR | O_CLOEXEC);
	CHECK(dev >= 0, "open /dev/physmem: %s", strerror(errno));
	for (unsigned i = 0; !r && kinds[i]; i++)
		r = vgem_one(dev, card, kinds[i]);
	close(card);
	close(dev);
	if (r)
		return r;
	if (wait_zero("after closing handles and fds"))
		return 1;
	note("handles and fds closed: counters zero");
	return 0;
}

static int case_vgem(void)
{
	static const char *const kinds[] = { "sg", "pin", NULL };

	if (check_zero("before"))
		return 1;
	return vgem_kinds(kinds);
}

/* pool-vgem-import INDEX: vgem imports a buffer of pool INDEX (PRIME). */
static int case_pool_vgem(const char *index)
{
	char kind[16];
	const char *const kinds[] = { kind, NULL };

	snprintf(kind, sizeof(kind), "pool%s", index);
	return vgem_kinds(kinds);
}

/* ---- AF_XDP UMEM ---- */

/* XDP_UMEM_REG of [addr, addr + len) on a new AF_XDP socket: fd or -errno. */
static int xdp_umem(void *addr, uint64_t len)
{
	struct xdp_umem_reg mr = {
		.addr = (uintptr_t)addr, .len = len, .chunk_size = 4096 };
	int s = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0), e;

	if (s < 0)
		return -errno;
	if (setsockopt(s, SOL_XDP, XDP_UMEM_REG, &mr, sizeof(mr))) {
		e = errno;
		close(s);
		return -e;
	}
	return s;
}

static int case_xdp(void)
{
	const uint64_t len = 1 * MIB, plen = 256 * KIB;
	int dev, fd, memfd, pfd, s, s2;
	uint8_t *m, *pm, *mm;
	uint64_t id = 0;

	if (check_zero("before"))
		return 1;
	s = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (s < 0) {
		note("socket(AF_XDP): %s (CONFIG_XDP_SOCKETS off?)", strerror(errno));
		return 77;
	}
	close(s);
	dev = open("/dev/physmem", O_RDWR | O_CLOEXEC);
	CHECK(dev >= 0, "open /dev/physmem: %s", strerror(errno));

	/* pinned buffer: its PFNMAP mapping refuses, the memfd's works */
	memfd = memfd_make(plen, 0x3c);
	CHECK(memfd >= 0, "memfd: %s", strerror(-memfd));
	pfd = buf_pin(dev, memfd, plen);
	CHECK(pfd >= 0, "PIN: %s", strerror(-pfd));
	pm = map_rw(pfd, plen);
	mm = map_rw(memfd, plen);
	CHECK(pm && mm, "mmap: %s", strerror(errno));
	s = xdp_umem(pm, plen);
	CHECK(s == -EFAULT, "XDP_UMEM_REG on the pinned buffer's mapping: %s, want EFAULT",
	      s >= 0 ? "success" : strerror(-s));
	s = xdp_umem(mm, plen);
	CHECK(s >= 0, "XDP_UMEM_REG on the memfd's mapping: %s", strerror(-s));
	close(s);
	munmap(pm, plen);
	munmap(mm, plen);
	close(pfd);
	close(memfd);
	if (wait_zero("after the pinned part"))
		return 1;

	/* allocated buffer: UMEM pins its pages; they outlive the dma-buf */
	fd = buf_alloc(dev, len, &id);
	CHECK(fd >= 0, "alloc: %s", strerror(-fd));
	m = map_rw(fd, len);
	CHECK(m, "mmap: %s", strerror(errno));
	memset(m, 0x42, len);
	s2 = xdp_umem(m, len);
	CHECK(s2 >= 0, "XDP_UMEM_REG on the allocated buffer's mapping: %s", strerror(-s2));
	munmap(m, len);
	close(fd);
	if (check_draining(dev, id, len, "the XDP socket"))
		return 1;
	close(s2);
	if (check_drained(dev, id, "the XDP socket"))
		return 1;
	close(dev);
	note("pinned: UMEM_REG on the physmem mapping EFAULT, on the memfd mapping ok; allocated 1 MiB: UMEM_REG ok, buffer freed while registered stays alive+RELEASED and draining, socket closed: ENOENT, counters zero");
	return 0;
}

/* ---- io_uring fixed buffers ---- */

struct ring {
	int fd;
	struct io_uring_params p;
	uint8_t *sq, *cq;
	struct io_uring_sqe *sqes;
	size_t sq_len, cq_len;
};

static int ring_setup(struct ring *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = (int)syscall(__NR_io_uring_setup, 4, &r->p);
	if (r->fd < 0)
		return -errno;
	r->sq_len = r->p.sq_off.array + r->p.sq_entries * sizeof(uint32_t);
	r->cq_len = r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe);
	r->sq = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		     r->fd, IORING_OFF_SQ_RING);
	r->cq = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		     r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, r->p.sq_entries * sizeof(struct io_uring_sqe),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		       IORING_OFF_SQES);
	if (r->sq == MAP_FAILED || r->cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -errno;
	return 0;
}

static void ring_free(struct ring *r)
{
	munmap(r->sq, r->sq_len);
	munmap(r->cq, r->cq_len);
	munmap(r->sqes, r->p.sq_entries * sizeof(struct io_uring_sqe));
	close(r->fd);
}

/* IORING_REGISTER_BUFFERS of one buffer: 0 or -errno. */
static int ring_register(struct ring *r, void *addr, size_t len)
{
	struct iovec iov = { .iov_base = addr, .iov_len = len };

	return syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_BUFFERS, &iov, 1) ?
		-errno : 0;
}

static int ring_unregister(struct ring *r)
{
	return syscall(__NR_io_uring_register, r->fd, IORING_UNREGISTER_BUFFERS, NULL, 0) ?
		-errno : 0;
}

/* IORING_OP_READ_FIXED of @len bytes at 0 of @fd into fixed buffer 0: res. */
static int ring_read_fixed(struct ring *r, int fd, void *addr, uint32_t len)
{
	uint32_t *tail = (uint32_t *)(r->sq + r->p.sq_off.tail);
	uint32_t mask = *(uint32_t *)(r->sq + r->p.sq_off.ring_mask);
	uint32_t *array = (uint32_t *)(r->sq + r->p.sq_off.array);
	uint32_t *chead = (uint32_t *)(r->cq + r->p.cq_off.head);
	uint32_t *ctail = (uint32_t *)(r->cq + r->p.cq_off.tail);
	uint32_t cmask = *(uint32_t *)(r->cq + r->p.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(r->cq + r->p.cq_off.cqes);
	uint32_t t = *tail, idx = t & mask, h;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_READ_FIXED;
	sqe->fd = fd;
	sqe->addr = (uintptr_t)addr;
	sqe->len = len;
	sqe->off = 0;
	sqe->buf_index = 0;
	array[idx] = idx;
	__atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -errno;
	h = *chead;
	if (h == __atomic_load_n(ctail, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	res = cqes[h & cmask].res;
	__atomic_store_n(chead, h + 1, __ATOMIC_RELEASE);
	return res;
}

static int case_uring(const char *disk)
{
	const uint64_t len = 1 * MIB, plen = 256 * KIB;
	int dev, fd, memfd, pfd, r, want, kv = kernel_version();
	uint8_t *m, *pm, *mm;
	struct ring ring;
	uint64_t id = 0;

	if (check_zero("before"))
		return 1;
	r = ring_setup(&ring);
	if (r < 0) {
		note("io_uring_setup: %s (kernel.io_uring_disabled=%lld)", strerror(-r),
		     read_num("/proc/sys/kernel/io_uring_disabled"));
		return 77;
	}
	dev = open("/dev/physmem", O_RDWR | O_CLOEXEC);
	CHECK(dev >= 0, "open /dev/physmem: %s", strerror(errno));

	/* pinned buffer: the memfd's (shmem) mapping registers, the PFNMAP one not */
	memfd = memfd_make(plen, 0x3c);
	CHECK(memfd >= 0, "memfd: %s", strerror(-memfd));
	pfd = buf_pin(dev, memfd, plen);
	CHECK(pfd >= 0, "PIN: %s", strerror(-pfd));
	pm = map_rw(pfd, plen);
	mm = map_rw(memfd, plen);
	CHECK(pm && mm, "mmap: %s", strerror(errno));
	r = ring_register(&ring, pm, plen);
	CHECK(r == -EFAULT, "REGISTER_BUFFERS of the pinned buffer's mapping: %s, want EFAULT",
	      r ? strerror(-r) : "success");
	note("pinned: physmem mapping refused (EFAULT), ");
	r = ring_register(&ring, mm, plen);
	CHECK(!r, "REGISTER_BUFFERS of the memfd's mapping: %s", strerror(-r));
	note("memfd mapping registered");
	if (disk) {
		int dfd = open(disk, O_RDONLY | O_DIRECT | O_CLOEXEC);
		long long bad;

		CHECK(dfd >= 0, "open %s O_DIRECT: %s", disk, strerror(errno));
		r = ring_read_fixed(&ring, dfd, mm, (uint32_t)plen);
		CHECK(r == (int)plen, "READ_FIXED O_DIRECT from %s: %d (%s)", disk, r,
		      r < 0 ? strerror(-r) : "short");
		close(dfd);
		/* the same pages, seen through the physmem buffer */
		bad = verify(pm, plen, DISK_SEED);
		CHECK(bad < 0, "READ_FIXED data seen through the physmem mapping wrong at %lld",
		      bad);
		note(", O_DIRECT READ_FIXED of 256 KiB into it: data right through the physmem mapping");
	}
	r = ring_unregister(&ring);
	CHECK(!r, "UNREGISTER_BUFFERS: %s", strerror(-r));
	munmap(pm, plen);
	munmap(mm, plen);
	close(pfd);
	close(memfd);
	if (wait_zero("after the pinned part"))
		return 1;

	/*
	 * Allocated buffer: up to 6.4, io_uring refused every file-backed VMA
	 * but shmem and hugetlbfs (EOPNOTSUPP) after pinning; from 6.5 it
	 * leaves that to GUP's FOLL_LONGTERM rule, which only refuses mappings
	 * that need dirty tracking, which a dma-buf mapping does not.
	 */
	want = kv < 605 ? -EOPNOTSUPP : 0;
	fd = buf_alloc(dev, len, &id);
	CHECK(fd >= 0, "alloc: %s", strerror(-fd));
	m = map_rw(fd, len);
	CHECK(m, "mmap: %s", strerror(errno));
	r = ring_register(&ring, m, len);
	CHECK(r == want, "REGISTER_BUFFERS of the allocated buffer's mapping on %d.%d: %s, want %s",
	      kv / 100, kv % 100, r ? strerror(-r) : "success",
	      want ? strerror(-want) : "success");
	munmap(m, len);
	close(fd);
	if (r) {
		note("; allocated: physmem mapping refused (%s)", strerror(-r));
		if (check_drained(dev, id, "io_uring"))
			return 1;
	} else {
		note("; allocated: physmem mapping registered, buffer freed while registered stays alive+RELEASED and draining");
		if (check_draining(dev, id, len, "io_uring"))
			return 1;
		r = ring_unregister(&ring);
		CHECK(!r, "UNREGISTER_BUFFERS: %s", strerror(-r));
		if (check_drained(dev, id, "io_uring"))
			return 1;
		note(", unregistered: ENOENT");
	}
	ring_free(&ring);
	close(dev);
	if (wait_zero("at the end"))
		return 1;
	note("; counters zero");
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
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(c, "vgem-fence-poll"))
		return report(c, case_vgem());
	if (!strcmp(c, "pool-vgem-import"))
		return report(c, case_pool_vgem(argc > 2 ? argv[2] : "0"));
	if (!strcmp(c, "gup-af-xdp-umem"))
		return report(c, case_xdp());
	if (!strcmp(c, "io-uring-fixed-buffers"))
		return report(c, case_uring(argc > 2 ? argv[2] : NULL));
	fprintf(stderr, "usage: %s vgem-fence-poll|pool-vgem-import|gup-af-xdp-umem|io-uring-fixed-buffers [ARG]\n",
		argv[0]);
	return 2;
}
