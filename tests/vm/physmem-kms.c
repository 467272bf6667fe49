// SPDX-License-Identifier: GPL-2.0
/*
 * physmem-kms: DRM KMS scanout of a physmem dma-buf, checked in the display
 * device's own memory.  Run as root inside the test VM with QEMU's Cirrus
 * card (tests/vm/cases/72-kms.sh).
 *
 *   physmem-kms NAME /dev/dri/cardN /sys/bus/pci/devices/D/resource0 KIND
 *
 * KIND: contig-cached, contig-wc, contig-uc, sg-cached, sg-wc, sg-uc (an
 * allocated buffer, PHYSMEM_ALLOC_CONTIG or not, in that cache mode) or pin
 * (a pinned memfd).  The buffer is filled with a per-pixel pattern through
 * its mmap, imported (PRIME_FD_TO_HANDLE), made an XRGB8888 framebuffer
 * (ADDFB2) and scanned out (SETCRTC).  The cirrus driver copies the
 * framebuffer into its VRAM (BAR0) with the CPU through dma_buf_vmap(),
 * byte for byte at offset 0 with the framebuffer's pitch (drm_fb_memcpy on
 * 6.1, 6.12 and 7.3 for an XRGB8888 framebuffer whose pitch fits the
 * hardware, as 640x480's 2560 bytes does).  Every pixel is compared in
 * VRAM, which is scrubbed first so that only the driver's copy can match.
 * Then the buffer gets new contents, DIRTYFB, and VRAM must show them.  At
 * the end (RMFB, GEM_CLOSE, fds closed, the DRM file still open) the physmem
 * counters must be back to zero: the importer let go.
 *
 * Prints "PHYSMEM-TEST NAME PASS|FAIL detail" (the VM case format).
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
#include <sys/stat.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <drm/drm.h>
#include <drm/drm_fourcc.h>
#include <drm/drm_mode.h>

#include "uapi/physmem.h"
#include "vmtest-note.h"

#define MAX_W	640
#define MAX_H	480

/* The display path the test drives. */
struct kms {
	int card;
	uint32_t conn_id, crtc_id, fb_id, handle;
	struct drm_mode_modeinfo mode;
};

/* The 32-bit pixel at (x, y) of the pattern for @seed. */
static uint32_t pixel(uint32_t seed, uint32_t x, uint32_t y)
{
	uint64_t v = ((uint64_t)y << 16 | x) * 0x9E3779B97F4A7C15ULL + seed;

	v ^= v >> 31;
	return (uint32_t)(v >> 16);
}

/* Write the pattern for @seed into the buffer through its mapping. */
static int fill(int fd, uint32_t *map, uint32_t pitch, uint32_t w, uint32_t h,
		uint32_t seed)
{
	struct dma_buf_sync s = { .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE };
	uint32_t x, y;

	if (ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) < 0)
		return -errno;
	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++)
			map[y * (pitch / 4) + x] = pixel(seed, x, y);
	s.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE;
	if (ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) < 0)
		return -errno;
	return 0;
}

/* Overwrite VRAM with the complement of the pattern, so a stale pixel shows. */
static void scrub(volatile uint32_t *vram, uint32_t pitch, uint32_t w,
		  uint32_t h, uint32_t seed)
{
	uint32_t x, y;

	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++)
			vram[y * (pitch / 4) + x] = ~pixel(seed, x, y);
}

/* Count the VRAM pixels that differ from the pattern; note the first. */
static unsigned long compare(const volatile uint32_t *vram, uint32_t pitch,
			     uint32_t w, uint32_t h, uint32_t seed, const char *what)
{
	unsigned long bad = 0;
	uint32_t x, y, got;

	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++) {
			got = vram[y * (pitch / 4) + x];
			if (got == pixel(seed, x, y))
				continue;
			if (!bad++)
				note("%s: first bad pixel (%u,%u) vram %08x want %08x; ",
				     what, x, y, got, pixel(seed, x, y));
		}
	return bad;
}

/* A dma-buf of @len bytes of @kind, or -errno. */
static int buf_make(int dev, const char *kind, size_t len)
{
	struct physmem_alloc a = { .size = sizeof(a), .length = len };
	char k[32];
	char *mode;

	if (!strcmp(kind, "pin")) {
		struct physmem_pin p = { .size = sizeof(p), .length = len };
		char *m;
		int memfd, err;

		memfd = memfd_create("kms", MFD_ALLOW_SEALING | MFD_CLOEXEC);
		if (memfd < 0)
			return -errno;
		if (ftruncate(memfd, len) < 0)
			goto fail;
		m = mmap(NULL, len, PROT_WRITE, MAP_SHARED, memfd, 0);
		if (m == MAP_FAILED)
			goto fail;
		memset(m, 1, len);	/* populate: a pin never allocates */
		munmap(m, len);
		if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
			goto fail;
		p.memfd = memfd;
		if (ioctl(dev, PHYSMEM_IOC_PIN, &p) < 0)
			goto fail;
		close(memfd);
		note("%u segment(s); ", p.nr_segments);
		return p.fd;
fail:
		err = errno;
		close(memfd);
		return -err;
	}
	snprintf(k, sizeof(k), "%s", kind);
	mode = strchr(k, '-');
	if (!mode)
		return -EINVAL;
	*mode++ = 0;
	if (!strcmp(k, "contig"))
		a.flags = PHYSMEM_ALLOC_CONTIG;
	else if (strcmp(k, "sg"))
		return -EINVAL;
	if (!strcmp(mode, "cached"))
		a.cache = PHYSMEM_MODE_CACHED;
	else if (!strcmp(mode, "wc"))
		a.cache = PHYSMEM_MODE_WC;
	else if (!strcmp(mode, "uc"))
		a.cache = PHYSMEM_MODE_UNCACHED;
	else
		return -EINVAL;
	if (ioctl(dev, PHYSMEM_IOC_ALLOC, &a) < 0)
		return -errno;
	note("%u segment(s); ", a.nr_segments);
	return a.fd;
}

/* Note a failed ioctl @what and return its -errno. */
static int ioctl_err(const char *what)
{
	int err = errno;

	note("%s: %s", what, strerror(err));
	return -err;
}

/*
 * Find a connected connector, a CRTC its encoder can drive and its mode
 * closest to 640x480 without exceeding it.  0 or -errno (with a note).
 */
static int find_output(struct kms *k)
{
	uint32_t crtcs[16], conns[16], encs[16];
	struct drm_mode_card_res res = { 0 };
	unsigned int i, j;

	if (ioctl(k->card, DRM_IOCTL_MODE_GETRESOURCES, &res) < 0)
		return ioctl_err("GETRESOURCES");
	if (res.count_crtcs > 16 || res.count_connectors > 16 ||
	    res.count_encoders > 16)
		return note("too many KMS objects"), -E2BIG;
	res.crtc_id_ptr = (uintptr_t)crtcs;
	res.connector_id_ptr = (uintptr_t)conns;
	res.encoder_id_ptr = (uintptr_t)encs;
	res.count_fbs = 0;
	if (ioctl(k->card, DRM_IOCTL_MODE_GETRESOURCES, &res) < 0)
		return ioctl_err("GETRESOURCES");

	for (i = 0; i < res.count_connectors; i++) {
		struct drm_mode_get_connector c = { .connector_id = conns[i] };
		struct drm_mode_modeinfo modes[64];
		uint32_t cencs[16];
		int best = -1;

		/* count_modes 0: the master's call probes the modes */
		if (ioctl(k->card, DRM_IOCTL_MODE_GETCONNECTOR, &c) < 0)
			return ioctl_err("GETCONNECTOR");
		if (c.connection != 1 || !c.count_modes)
			continue;
		if (c.count_modes > 64 || c.count_encoders > 16)
			return note("connector %u: too many modes", conns[i]), -E2BIG;
		c.modes_ptr = (uintptr_t)modes;
		c.encoders_ptr = (uintptr_t)cencs;
		c.count_props = 0;
		if (ioctl(k->card, DRM_IOCTL_MODE_GETCONNECTOR, &c) < 0)
			return ioctl_err("GETCONNECTOR");
		for (j = 0; j < c.count_modes && j < 64; j++) {
			if (modes[j].hdisplay > MAX_W || modes[j].vdisplay > MAX_H)
				continue;
			if (best < 0 || modes[j].hdisplay * modes[j].vdisplay >
			    modes[best].hdisplay * modes[best].vdisplay)
				best = j;
		}
		if (best < 0)
			continue;
		for (j = 0; j < c.count_encoders && j < 16; j++) {
			struct drm_mode_get_encoder e = { .encoder_id = cencs[j] };
			unsigned int n;

			if (ioctl(k->card, DRM_IOCTL_MODE_GETENCODER, &e) < 0)
				continue;
			for (n = 0; n < res.count_crtcs; n++) {
				if (!(e.possible_crtcs & (1U << n)))
					continue;
				k->conn_id = conns[i];
				k->crtc_id = crtcs[n];
				k->mode = modes[best];
				return 0;
			}
		}
	}
	note("no connected connector with a mode up to %ux%u and a CRTC",
	     MAX_W, MAX_H);
	return -ENODEV;
}

/* Map the first @len bytes of the display's VRAM (PCI BAR0), or NULL. */
static volatile uint32_t *vram_map(const char *res, size_t len)
{
	struct stat st;
	void *p;
	int fd;

	fd = open(res, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return note("%s: %s", res, strerror(errno)), NULL;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < len) {
		note("%s: BAR smaller than %zu bytes", res, len);
		close(fd);
		return NULL;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return note("mmap %s: %s", res, strerror(errno)), NULL;
	return p;
}

/* The scanout test for one buffer kind; 0 when every check held. */
static int run(const char *card_path, const char *res_path, const char *kind)
{
	struct kms k = { 0 };
	struct drm_prime_handle ph = { 0 };
	struct drm_mode_fb_cmd2 fb = { 0 };
	struct drm_mode_crtc crtc = { 0 };
	struct drm_mode_fb_dirty_cmd dirty = { 0 };
	struct drm_gem_close gc = { 0 };
	volatile uint32_t *vram;
	uint32_t w, h, pitch, seed1, seed2;
	unsigned long bad;
	long long left_b = -1, left_n = -1;
	uint32_t *map;
	size_t len;
	int dev, buf, i;

	dev = open("/dev/physmem", O_RDWR | O_CLOEXEC);
	CHECK(dev >= 0, "open /dev/physmem: %s", strerror(errno));
	k.card = open(card_path, O_RDWR | O_CLOEXEC);
	CHECK(k.card >= 0, "open %s: %s", card_path, strerror(errno));
	/* the first opener is master already; this only makes sure */
	if (ioctl(k.card, DRM_IOCTL_SET_MASTER, 0) < 0 && errno != EINVAL)
		note("SET_MASTER: %s; ", strerror(errno));
	if (find_output(&k) < 0)
		return 1;
	w = k.mode.hdisplay;
	h = k.mode.vdisplay;
	pitch = w * 4;
	len = ((size_t)pitch * h + 4095) & ~(size_t)4095;
	note("%ux%u pitch %u; ", w, h, pitch);
	vram = vram_map(res_path, (size_t)pitch * h);
	if (!vram)
		return 1;

	buf = buf_make(dev, kind, len);
	CHECK(buf >= 0, "physmem %s buffer: %s", kind, strerror(-buf));
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	CHECK(map != MAP_FAILED, "mmap buffer: %s", strerror(errno));
	seed1 = (uint32_t)getpid() * 2654435761U;
	seed2 = seed1 ^ 0x5a5a5a5aU;
	i = fill(buf, map, pitch, w, h, seed1);
	CHECK(!i, "fill: %s", strerror(-i));

	ph.fd = buf;
	CHECK(!ioctl(k.card, DRM_IOCTL_PRIME_FD_TO_HANDLE, &ph),
	      "PRIME_FD_TO_HANDLE: %s", strerror(errno));
	k.handle = ph.handle;
	fb.width = w;
	fb.height = h;
	fb.pixel_format = DRM_FORMAT_XRGB8888;
	fb.handles[0] = k.handle;
	fb.pitches[0] = pitch;
	CHECK(!ioctl(k.card, DRM_IOCTL_MODE_ADDFB2, &fb), "ADDFB2: %s",
	      strerror(errno));
	k.fb_id = fb.fb_id;

	/* scanout: the driver copies the framebuffer into VRAM */
	scrub(vram, pitch, w, h, seed1);
	crtc.crtc_id = k.crtc_id;
	crtc.fb_id = k.fb_id;
	crtc.set_connectors_ptr = (uintptr_t)&k.conn_id;
	crtc.count_connectors = 1;
	crtc.mode = k.mode;
	crtc.mode_valid = 1;
	CHECK(!ioctl(k.card, DRM_IOCTL_MODE_SETCRTC, &crtc), "SETCRTC: %s",
	      strerror(errno));
	bad = compare(vram, pitch, w, h, seed1, "setcrtc");
	note("setcrtc %lu/%u pixels differ; ", bad, w * h);

	/* new contents, damage, and VRAM must follow the buffer */
	i = fill(buf, map, pitch, w, h, seed2);
	CHECK(!i, "fill again: %s", strerror(-i));
	scrub(vram, pitch, w, h, seed2);
	dirty.fb_id = k.fb_id;
	CHECK(!ioctl(k.card, DRM_IOCTL_MODE_DIRTYFB, &dirty), "DIRTYFB: %s",
	      strerror(errno));
	i = compare(vram, pitch, w, h, seed2, "dirtyfb") != 0;
	note("dirtyfb %s; ", i ? "differs" : "all pixels match");
	bad += i;

	/* let go: the importer must drop every reference */
	CHECK(!ioctl(k.card, DRM_IOCTL_MODE_RMFB, &k.fb_id), "RMFB: %s",
	      strerror(errno));
	gc.handle = k.handle;
	CHECK(!ioctl(k.card, DRM_IOCTL_GEM_CLOSE, &gc), "GEM_CLOSE: %s",
	      strerror(errno));
	munmap(map, len);
	close(buf);
	munmap((void *)vram, (size_t)pitch * h);
	for (i = 0; i < 100; i++) {	/* liveness bound, not a timing check */
		left_b = read_num("/sys/class/misc/physmem/stats/buffers");
		left_n = read_num("/sys/class/misc/physmem/stats/bytes");
		if (!left_b && !left_n)
			break;
		usleep(50000);
	}
	note("after RMFB+GEM_CLOSE buffers=%lld bytes=%lld", left_b, left_n);
	close(k.card);
	close(dev);
	return bad || left_b || left_n;
}

int main(int argc, char **argv)
{
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 5) {
		fprintf(stderr, "usage: physmem-kms NAME /dev/dri/cardN RESOURCE0 KIND\n");
		return 2;
	}
	note("%s: ", argv[4]);
	rc = run(argv[2], argv[3], argv[4]);
	printf("PHYSMEM-TEST %s %s %s\n", argv[1], rc ? "FAIL" : "PASS", detail);
	return rc;
}
