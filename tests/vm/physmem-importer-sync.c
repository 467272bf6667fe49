// SPDX-License-Identifier: GPL-2.0
/*
 * physmem-importer-sync: CPU access syncs reach an importer's own mapping.
 *
 * The test importer (tests/vm/edu-importer, /dev/physmem-edu-importer)
 * attaches QEMU's edu device, with its 28-bit DMA mask, to a physmem buffer
 * through the DMA API; a buffer page above 256 MiB is then mapped through a
 * swiotlb bounce buffer for edu (the guest boots iommu=soft).  The device
 * reads and writes only the bounce buffer, so
 *   device -> CPU: edu writes P; before DMA_BUF_IOCTL_SYNC START|READ on the
 *   physmem fd the mapping does not show P, after it it must;
 *   CPU -> device: the CPU writes Q; before SYNC END|WRITE edu still reads
 *   P, after it it must read Q.
 * Cases: importer-dma-api-sync-contig, importer-dma-api-sync-sg (cached);
 * importer-dma-api-unmap-wc: a write-combined buffer's bounced mapping,
 * unmapped by the importer, brings the device's write back (no sync).
 * Prints "PHYSMEM-TEST NAME PASS|FAIL detail" (the VM case format).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/dma-buf.h>

#include "uapi/physmem.h"
#include "edu-importer/physmem_edu_importer.h"
#include "vmtest-note.h"

#define TRIES	8	/* allocations tried for a page that bounces */
#define XLEN	((int)PEI_XFER_MAX)

/* PHYSMEM_IOC_ALLOC in cache mode @cache: the dma-buf fd, or -errno. */
static int buf_alloc(int dev, uint64_t len, int contig, uint32_t cache)
{
	struct physmem_alloc a = {
		.size = sizeof(a), .length = len,
		.flags = contig ? PHYSMEM_ALLOC_CONTIG : 0,
		.cache = cache,
	};

	if (ioctl(dev, PHYSMEM_IOC_ALLOC, &a))
		return -errno;
	return a.fd;
}

/* DMA_BUF_IOCTL_SYNC on @fd with @flags; 0 or -errno. */
static int buf_sync(int fd, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };

	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) ? -errno : 0;
}

/* Have edu read (@write == 0) or write XLEN bytes of the buffer at @off. */
static int dev_xfer(int imp, uint64_t off, uint8_t *data, int write)
{
	static struct pei_xfer x;

	memset(&x, 0, sizeof(x));
	x.offset = off;
	x.len = XLEN;
	if (write)
		memcpy(x.data, data, XLEN);
	if (ioctl(imp, write ? PEI_IOC_DEV_WRITE : PEI_IOC_DEV_READ, &x))
		return -errno;
	if (!write)
		memcpy(data, x.data, XLEN);
	return 0;
}

/* The first index where @a and the pattern of @seed differ, or -1. */
static long mismatch(const uint8_t *a, uint64_t seed)
{
	long i;

	for (i = 0; i < XLEN; i++)
		if (a[i] != pat(seed, i))
			return i;
	return -1;
}

/*
 * One case: a contiguous or scatter-gather buffer of @len bytes in cache
 * mode @cache.  With @unmap, the device's write must instead become visible
 * when the importer unmaps (detaches) without any DMA_BUF_IOCTL_SYNC: the
 * DMA API's unmap copies a bounce buffer back, for every cache mode.
 */
static int run(int contig, uint64_t len, uint32_t cache, int unmap)
{
	const uint64_t off = len - 4096 + 512;	/* in the last page */
	const uint64_t seed_p = contig ? 0x5050 : 0x5151;
	const uint64_t seed_q = contig ? 0x7171 : 0x7272;
	int fds[TRIES], nfd = 0, fd = -1, dev, imp, r, rc, i, failed = 0;
	struct pei_import in = { 0 };
	uint8_t data[XLEN];
	volatile uint8_t *m;
	uint8_t *map;
	long bad;

	dev = open("/dev/physmem", O_RDWR | O_CLOEXEC);
	CHECK(dev >= 0, "open /dev/physmem: %s", strerror(errno));
	imp = open("/dev/physmem-edu-importer", O_RDWR | O_CLOEXEC);
	CHECK(imp >= 0, "open /dev/physmem-edu-importer: %s", strerror(errno));

	/* a buffer whose tested page edu reaches only through swiotlb */
	while (nfd < TRIES) {
		fds[nfd] = buf_alloc(dev, len, contig, cache);
		CHECK(fds[nfd] >= 0, "alloc: %s", strerror(-fds[nfd]));
		memset(&in, 0, sizeof(in));
		in.fd = fds[nfd];
		in.offset = off;
		CHECK(!ioctl(imp, PEI_IOC_IMPORT, &in), "import: %s", strerror(errno));
		nfd++;
		if (in.dma_addr != in.phys_addr) {
			fd = fds[nfd - 1];
			break;
		}
		CHECK(!ioctl(imp, PEI_IOC_DETACH), "detach: %s", strerror(errno));
	}
	CHECK(fd >= 0, "never bounced in %d buffers: phys 0x%" PRIx64 " == dma (mask 0x%" PRIx64 ")",
	      TRIES, (uint64_t)in.phys_addr, (uint64_t)in.dma_mask);
	CHECK(in.phys_addr > in.dma_mask && in.dma_addr <= in.dma_mask,
	      "phys 0x%" PRIx64 " dma 0x%" PRIx64 " mask 0x%" PRIx64 ": not a bounce",
	      (uint64_t)in.phys_addr, (uint64_t)in.dma_addr, (uint64_t)in.dma_mask);
	note("try %d: page 0x%" PRIx64 " bounced at dma 0x%" PRIx64 " (mask 0x%" PRIx64 ")",
	     nfd, (uint64_t)in.phys_addr, (uint64_t)in.dma_addr, (uint64_t)in.dma_mask);
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED, "; mmap: %s", strerror(errno));
	m = map + off;

	/* device -> CPU */
	for (i = 0; i < XLEN; i++)
		data[i] = pat(seed_p, i);
	r = dev_xfer(imp, off, data, 1);
	CHECK(!r, "; device write: %s", strerror(-r));
	bad = mismatch((const uint8_t *)m, seed_p);
	CHECK(bad >= 0, "; the CPU saw the device's write before any sync: not bounced");
	if (unmap) {
		CHECK(!ioctl(imp, PEI_IOC_DETACH), "; detach: %s", strerror(errno));
		bad = mismatch((const uint8_t *)m, seed_p);
		CHECK(bad < 0, "; after the importer's unmap byte %ld is 0x%02x, want 0x%02x (the device's write stayed in edu's bounce buffer)",
		      bad, m[bad], pat(seed_p, bad));
		note("; P seen after the importer's unmap, not before");
		munmap(map, len);
		for (i = 0; i < nfd; i++)
			close(fds[i]);
		close(imp);
		close(dev);
		return 0;
	}
	r = buf_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	CHECK(!r, "; SYNC START|READ: %s", strerror(-r));
	bad = mismatch((const uint8_t *)m, seed_p);
	if (bad >= 0) {
		/* go on: the other direction is checked on its own */
		note("; device->CPU FAILED: after SYNC START|READ byte %ld is 0x%02x, want 0x%02x (the device's write stayed in edu's bounce buffer)",
		     bad, m[bad], pat(seed_p, bad));
		failed = 1;
	} else {
		note("; device->CPU: P seen after START|READ, not before");
	}
	r = buf_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	CHECK(!r, "; SYNC END|READ: %s", strerror(-r));

	/* CPU -> device */
	r = buf_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	CHECK(!r, "; SYNC START|WRITE: %s", strerror(-r));
	for (i = 0; i < XLEN; i++)
		m[i] = pat(seed_q, i);
	r = dev_xfer(imp, off, data, 0);
	CHECK(!r, "; device read: %s", strerror(-r));
	CHECK(mismatch(data, seed_q) >= 0, "; the device read the CPU's write before SYNC END: not bounced");
	r = buf_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	CHECK(!r, "; SYNC END|WRITE: %s", strerror(-r));
	r = dev_xfer(imp, off, data, 0);
	CHECK(!r, "; device read: %s", strerror(-r));
	bad = mismatch(data, seed_q);
	if (bad >= 0) {
		note("; CPU->device FAILED: after SYNC END|WRITE the device read byte %ld as 0x%02x, want 0x%02x (%s)",
		     bad, data[bad], pat(seed_q, bad),
		     mismatch(data, seed_p) < 0 ? "still P: edu's bounce buffer was not updated" : "neither P nor Q");
		failed = 1;
	} else {
		note("; CPU->device: Q read after END|WRITE, not before");
	}

	munmap(map, len);
	CHECK(!ioctl(imp, PEI_IOC_DETACH), "; detach: %s", strerror(errno));
	rc = failed;
	for (i = 0; i < nfd; i++)
		close(fds[i]);
	close(imp);
	close(dev);
	return rc;
}

/* Print the result line of case @name. */
static int report(const char *name, int rc)
{
	printf("PHYSMEM-TEST %s %s %s\n", name, rc == 0 ? "PASS" : "FAIL",
	       detail_len ? detail : "-");
	fflush(stdout);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(c, "importer-dma-api-sync-contig"))
		return report(c, run(1, 64 << 10, PHYSMEM_MODE_CACHED, 0));
	if (!strcmp(c, "importer-dma-api-sync-sg"))
		return report(c, run(0, 256 << 10, PHYSMEM_MODE_CACHED, 0));
	if (!strcmp(c, "importer-dma-api-unmap-wc"))
		return report(c, run(0, 64 << 10, PHYSMEM_MODE_WC, 1));
	fprintf(stderr, "usage: %s importer-dma-api-sync-contig|importer-dma-api-sync-sg|importer-dma-api-unmap-wc\n",
		argv[0]);
	return 2;
}
