// SPDX-License-Identifier: GPL-2.0
/*
 * physmem-vivid: queue physmem dma-bufs as V4L2_MEMORY_DMABUF capture
 * buffers of a vivid node, stream, and check through the physmem mapping
 * that vivid's test pattern landed.  vivid writes frames with the CPU
 * through vb2_plane_vaddr(), i.e. dma_buf_vmap() of our buffer.
 *
 *   physmem-vivid NAME /dev/videoN contig|sg|pin
 *
 * Prints "PHYSMEM-TEST NAME PASS|FAIL|SKIP detail" (the VM case format).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/videodev2.h>

#include "uapi/physmem.h"

#define NBUF		3
#define SENTINEL	0xa5

static const char *name;

/* Print the result line and exit. */
static void finish(const char *verdict, const char *detail)
{
	printf("PHYSMEM-TEST %s %s %s\n", name, verdict, detail);
	exit(strcmp(verdict, "FAIL") ? 0 : 1);
}

static void failf(const char *what, int err)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
	finish("FAIL", msg);
}

/* One counter from /sys/class/misc/physmem/stats, or -1. */
static long long stat_read(const char *counter)
{
	char path[128], val[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/class/misc/physmem/stats/%s", counter);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, val, sizeof(val) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	val[n] = 0;
	return atoll(val);
}

/* A dma-buf of @len bytes: allocated (contig or not) or a pinned memfd. */
static int buf_make(int dev, const char *kind, size_t len)
{
	if (!strcmp(kind, "pin")) {
		struct physmem_pin p = { .size = sizeof(p), .length = len };
		char *m;
		int memfd;

		memfd = memfd_create("vivid", MFD_ALLOW_SEALING);
		if (memfd < 0 || ftruncate(memfd, len) < 0)
			return -errno;
		m = mmap(NULL, len, PROT_WRITE, MAP_SHARED, memfd, 0);
		if (m == MAP_FAILED)
			return -errno;
		memset(m, 1, len);	/* populate: a pin never allocates */
		munmap(m, len);
		if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
			return -errno;
		p.memfd = memfd;
		if (ioctl(dev, PHYSMEM_IOC_PIN, &p) < 0)
			return -errno;
		close(memfd);
		return p.fd;
	} else {
		struct physmem_alloc a = { .size = sizeof(a), .length = len };

		if (!strcmp(kind, "contig"))
			a.flags = PHYSMEM_ALLOC_CONTIG;
		if (ioctl(dev, PHYSMEM_IOC_ALLOC, &a) < 0)
			return -errno;
		return a.fd;
	}
}

int main(int argc, char **argv)
{
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	unsigned char *map[NBUF];
	int fds[NBUF], dev, v, i, frames = 0, landed = 0;
	char detail[256];
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	struct v4l2_requestbuffers rb = {
		.count = NBUF, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
		.memory = V4L2_MEMORY_DMABUF,
	};
	size_t sz, len;
	long long left = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 4) {
		fprintf(stderr, "usage: physmem-vivid NAME /dev/videoN contig|sg|pin\n");
		return 2;
	}
	name = argv[1];
	dev = open("/dev/physmem", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		failf("open /dev/physmem", errno);
	v = open(argv[2], O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (v < 0)
		failf(argv[2], errno);
	if (ioctl(v, VIDIOC_G_FMT, &fmt) < 0)
		failf("VIDIOC_G_FMT", errno);
	sz = fmt.fmt.pix.sizeimage;
	len = (sz + 4095) & ~(size_t)4095;
	if (ioctl(v, VIDIOC_REQBUFS, &rb) < 0)
		failf("VIDIOC_REQBUFS", errno);

	for (i = 0; i < NBUF; i++) {
		struct v4l2_buffer b = {
			.index = i, .type = type, .memory = V4L2_MEMORY_DMABUF,
		};

		fds[i] = buf_make(dev, argv[3], len);
		if (fds[i] < 0)
			failf("physmem buffer", -fds[i]);
		map[i] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		if (map[i] == MAP_FAILED)
			failf("mmap physmem buffer", errno);
		memset(map[i], SENTINEL, len);
		b.m.fd = fds[i];
		b.length = len;
		if (ioctl(v, VIDIOC_QBUF, &b) < 0)
			failf("VIDIOC_QBUF", errno);
	}
	if (ioctl(v, VIDIOC_STREAMON, &type) < 0)
		failf("VIDIOC_STREAMON", errno);

	/* At least two frames; each must carry the pattern, not our fill. */
	while (frames < 4) {
		struct pollfd pf = { .fd = v, .events = POLLIN };
		struct v4l2_buffer b = { .type = type, .memory = V4L2_MEMORY_DMABUF };
		size_t k, changed = 0, nonzero = 0;

		if (poll(&pf, 1, 10000) <= 0)
			break;			/* liveness timeout, not a timing check */
		if (ioctl(v, VIDIOC_DQBUF, &b) < 0)
			failf("VIDIOC_DQBUF", errno);
		frames++;
		for (k = 0; k < sz; k++) {
			changed += map[b.index][k] != SENTINEL;
			nonzero += map[b.index][k] != 0;
		}
		if (changed > sz / 2 && nonzero > sz / 2)
			landed++;
		memset(map[b.index], SENTINEL, len);
		if (ioctl(v, VIDIOC_QBUF, &b) < 0)
			failf("VIDIOC_QBUF again", errno);
	}
	if (ioctl(v, VIDIOC_STREAMOFF, &type) < 0)
		failf("VIDIOC_STREAMOFF", errno);
	for (i = 0; i < NBUF; i++) {
		munmap(map[i], len);
		close(fds[i]);
	}
	close(v);

	/* Every buffer released: vivid drops its references on close. */
	for (i = 0; i < 100; i++) {
		left = stat_read("buffers");
		if (left == 0)
			break;
		usleep(50000);
	}
	close(dev);

	snprintf(detail, sizeof(detail),
		 "%s %s: %d frames, %d with the test pattern, %lld buffers left",
		 argv[2], argv[3], frames, landed, left);
	if (frames < 2 || landed != frames || left != 0)
		finish("FAIL", detail);
	finish("PASS", detail);
	return 0;
}
