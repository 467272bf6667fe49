// SPDX-License-Identifier: GPL-2.0
/*
 * physmem-vm-client.c: an ordinary libphysmem client for the VM's daemon
 * cases (tests/vm/cases/60-daemon.sh).  It runs as an unprivileged user and
 * talks to physmemd (kmod backend) on $PHYSMEM_SOCKET; the DMA itself is
 * done by a root helper (physmem-vmtest edu-copy) with the addresses this
 * client got from the daemon.
 *
 *   physmem-vm-client dma contig|sg|pin
 *	Allocate (or pin) buffer A and allocate buffer B through the daemon,
 *	write a pattern into A, then print one line per 2 KiB chunk to copy,
 *	"xfer SRC DST LEN OFF" (bus addresses from the daemon's segments: a
 *	chunk at the start and at the end of every segment of A and of B), and
 *	"ready SEGS_A SEGS_B CHUNKS".  Wait for a line on stdin: "go" (the root
 *	helper copied every chunk A -> edu -> B), then check B: the copied
 *	chunks hold A's pattern, every other byte is zero.  Print
 *	"result PASS|FAIL DETAIL".
 *   physmem-vm-client bind BDF TRANSLATION
 *	Allocate A (64 KiB contiguous) and B (64 KiB) bound to the PCI device
 *	BDF through the daemon (Allocate with device); both must report that
 *	device with TRANSLATION and device segments covering the buffer, for
 *	"iommu" other than the physical ones. Then three rounds with the root
 *	helper, each a few "xfer SRC DST LEN OFF" lines, "ready-ROUND N", and
 *	a "go" line back once root copied them A -> edu -> B:
 *	  phys:    by physical addresses: under "iommu" B stays zero (the IOMMU
 *	           blocks them), else B gets A's bytes
 *	  bound:   by the device's addresses: B gets A's bytes
 *	  unbound: B unbound (Unbind), the copied chunks zeroed by the CPU, the
 *	           same transfer as "bound": under "iommu" B stays zero
 *	Then A is freed with its binding live while a dup of its fd keeps it
 *	alive (round "freed", no transfers: root checks that the daemon unbound
 *	it), and B.
 *	Prints "result PASS|FAIL DETAIL".
 *   physmem-vm-client hold
 *	Allocate a contiguous and a scatter-gather buffer and pin a memfd,
 *	map and touch them, print "ready BUFFERS BYTES", then sleep until
 *	killed.
 *   physmem-vm-client isolation NAME ID
 *	As an unprivileged user: /dev/physmem refused, no mapping beyond a
 *	daemon-given buffer, NAME (owned by root, not shared with us) cannot
 *	be imported, ID cannot be described or freed, and List(all) refused.
 *	Prints "result PASS|FAIL DETAIL".
 *
 * Exit status: 0 PASS, 1 FAIL, 2 usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "physmem.h"
#include "vmtest-note.h"

#define KIB		1024ULL
#define MIB		(1024ULL * 1024)
#define PAGE		4096ULL
#define CHUNK		2048ULL		/* edu-dma.h: EDU_DMA_MAX */
#define MAX_CHUNKS	192


static int result(int rc)
{
	printf("result %s %s\n", rc ? "FAIL" : "PASS", detail_len ? detail : "-");
	fflush(stdout);
	return rc ? 1 : 0;
}

/* "what: message (ErrorName)" of the last failed call. */
static const char *why(struct physmem *pm, int r)
{
	static char buf[256];
	const char *name = pm ? physmem_error_name(pm) : NULL;

	snprintf(buf, sizeof(buf), "%s (%s)",
		 pm && physmem_error_message(pm) ? physmem_error_message(pm) : strerror(-r),
		 name ? name : strerror(-r));
	return buf;
}

static long long verify(const uint8_t *p, uint64_t len, uint64_t seed, uint64_t base)
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

/* Bus address of byte @off of a buffer and the bytes contiguous from it. */
static uint64_t bus_addr(const struct physmem_info *in, uint64_t off, uint64_t *left)
{
	for (unsigned i = 0; i < physmem_info_n_segments(in); i++) {
		const struct physmem_segment *seg = physmem_info_segment(in, i);

		if (off < seg->length) {
			*left = seg->length - off;
			return seg->address + off;
		}
		off -= seg->length;
	}
	*left = 0;
	return UINT64_MAX;
}

/* The daemon's description of a kmod buffer must be complete and DMA-safe. */
static int check_info(const struct physmem_buffer *buf, const char *what, uint64_t size, bool contig)
{
	const struct physmem_info *in = physmem_buffer_info(buf);
	unsigned n_segments = physmem_info_n_segments(in);
	uint64_t total = 0;

	CHECK(in, "%s: no description", what);
	CHECK(!strcmp(physmem_info_backend(in), "kmod"), "%s: backend '%s'", what, physmem_info_backend(in));
	CHECK(physmem_info_dma_safe(in), "%s: dmaSafe false", what);
	CHECK(physmem_info_locked(in), "%s: not locked", what);
	CHECK(physmem_info_size(in) == size && physmem_buffer_size(buf) == size,
	      "%s: size %" PRIu64 " != %" PRIu64, what, physmem_info_size(in), size);
	CHECK(physmem_info_segments_known(in) && n_segments >= 1, "%s: no segments (known=%d n=%u)", what,
	      physmem_info_segments_known(in), n_segments);
	CHECK(physmem_info_owner_uid(in) == getuid(), "%s: owner uid %u", what,
	      (unsigned)physmem_info_owner_uid(in));
	for (unsigned i = 0; i < n_segments; i++) {
		const struct physmem_segment *seg = physmem_info_segment(in, i);

		CHECK(!(seg->address % PAGE) && !(seg->length % PAGE) && seg->length,
		      "%s: segment %u %#" PRIx64 "+%#" PRIx64 " not page aligned",
		      what, i, seg->address, seg->length);
		total += seg->length;
	}
	CHECK(total == size, "%s: segments add up to %" PRIu64 ", not %" PRIu64, what, total, size);
	if (contig)
		CHECK(physmem_info_contiguous(in) && n_segments == 1,
		      "%s: contiguous buffer: contiguous=%d, %u segments",
		      what, physmem_info_contiguous(in), n_segments);
	return 0;
}

static int add_off(uint64_t *offs, int *n, uint64_t off)
{
	for (int i = 0; i < *n; i++)
		if (offs[i] == off)
			return 0;
	if (*n >= MAX_CHUNKS)
		return -1;
	offs[(*n)++] = off;
	return 0;
}

/*
 * A chunk from every segment: its first and its last one while there are
 * few segments; with many (a pinned memfd: one per page), one chunk each,
 * alternately the first and the last, since every edu transfer takes about
 * 100 ms of virtual time.
 */
static void seg_offsets(const struct physmem_info *in, uint64_t *offs, int *n)
{
	uint64_t pos = 0;
	bool both = physmem_info_n_segments(in) <= 8;

	for (unsigned i = 0; i < physmem_info_n_segments(in); i++) {
		if (both || i % 2 == 0)
			add_off(offs, n, pos);
		if (both || i % 2 == 1)
			add_off(offs, n, pos + physmem_info_segment(in, i)->length - CHUNK);
		pos += physmem_info_segment(in, i)->length;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int do_dma(struct physmem *pm, const char *mode)
{
	uint64_t size, pin_off = 2 * PAGE, seed = 0x5eed0000ULL ^ (uint64_t)getpid();
	static uint64_t offs[MAX_CHUNKS];
	struct physmem_buffer *a = NULL, *b = NULL;
	const struct physmem_info *ia, *ib;
	uint8_t *ma, *mb, *mf = NULL, *copied;
	bool contig = false, pin = false;
	char line[64];
	long long bad;
	int r, n = 0, mfd = -1;

	if (!strcmp(mode, "contig")) {
		size = 64 * KIB;
		contig = true;
	} else if (!strcmp(mode, "sg")) {
		size = 12 * MIB;
	} else if (!strcmp(mode, "pin")) {
		size = 128 * KIB;
		pin = true;
	} else {
		FAIL("unknown mode %s", mode);
	}

	if (pin) {
		uint64_t fsize = size + 4 * PAGE;

		mfd = memfd_create("physmem-vm-client", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		CHECK(mfd >= 0, "memfd_create: %s", strerror(errno));
		CHECK(!ftruncate(mfd, (off_t)fsize), "ftruncate: %s", strerror(errno));
		mf = mmap(NULL, fsize, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		CHECK(mf != MAP_FAILED, "mmap memfd: %s", strerror(errno));
		for (uint64_t i = 0; i < size; i++)
			mf[pin_off + i] = pat(seed, i);
		CHECK(!fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), "seal: %s", strerror(errno));
		r = physmem_pin(pm, mfd, pin_off, size, NULL, &a);
		CHECK(r >= 0, "Pin: %s", why(pm, r));
	} else {
		r = physmem_alloc(pm, size, contig ? PHYSMEM_CONTIGUOUS : 0, PHYSMEM_CACHE_CACHED, NULL, &a);
		CHECK(r >= 0, "Allocate A: %s", why(pm, r));
	}
	r = physmem_alloc(pm, size, 0, PHYSMEM_CACHE_CACHED, NULL, &b);
	CHECK(r >= 0, "Allocate B: %s", why(pm, r));
	if (check_info(a, "A", size, contig) || check_info(b, "B", size, false))
		return 1;
	ia = physmem_buffer_info(a);
	ib = physmem_buffer_info(b);
	ma = physmem_buffer_map(a);
	mb = physmem_buffer_map(b);
	CHECK(ma && mb, "map: %s", strerror(errno));

	CHECK(!physmem_buffer_begin_cpu(b, PHYSMEM_SYNC_READ), "begin_cpu B: %s", strerror(errno));
	bad = first_nonzero(mb, size);
	physmem_buffer_end_cpu(b, PHYSMEM_SYNC_READ);
	CHECK(bad < 0, "new buffer B not zeroed at %#llx", bad);
	if (pin) {
		/* the pinned buffer's own mapping shows the file's bytes */
		physmem_buffer_begin_cpu(a, PHYSMEM_SYNC_READ);
		bad = verify(ma, size, seed, 0);
		physmem_buffer_end_cpu(a, PHYSMEM_SYNC_READ);
		CHECK(bad < 0, "pinned buffer's mapping differs from the memfd at %#llx", bad);
	} else {
		CHECK(!physmem_buffer_begin_cpu(a, PHYSMEM_SYNC_WRITE), "begin_cpu A: %s", strerror(errno));
		bad = first_nonzero(ma, size);
		for (uint64_t i = 0; i < size; i++)
			ma[i] = pat(seed, i);
		CHECK(!physmem_buffer_end_cpu(a, PHYSMEM_SYNC_WRITE), "end_cpu A: %s", strerror(errno));
		CHECK(bad < 0, "new buffer A not zeroed at %#llx", bad);
	}

	seg_offsets(ia, offs, &n);
	seg_offsets(ib, offs, &n);
	qsort(offs, (size_t)n, sizeof(offs[0]), cmp_u64);
	CHECK(physmem_info_n_segments(ia) <= MAX_CHUNKS, "A has %u segments, more than %d chunks", physmem_info_n_segments(ia),
	      MAX_CHUNKS);
	copied = calloc(size / CHUNK, 1);
	CHECK(copied, "no memory");
	for (int i = 0; i < n; i++) {
		uint64_t la, lb, sa = bus_addr(ia, offs[i], &la), sb = bus_addr(ib, offs[i], &lb);

		CHECK(la >= CHUNK && lb >= CHUNK, "chunk %#" PRIx64 " crosses a segment", offs[i]);
		printf("xfer %#" PRIx64 " %#" PRIx64 " %llu %#" PRIx64 "\n", sa, sb, CHUNK, offs[i]);
		copied[offs[i] / CHUNK] = 1;
	}
	printf("ready %u %u %d\n", physmem_info_n_segments(ia), physmem_info_n_segments(ib), n);
	fflush(stdout);

	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "go", 2))
		FAIL("no 'go' from the root helper (%s)", feof(stdin) ? "EOF" : line);

	CHECK(!physmem_buffer_begin_cpu(b, PHYSMEM_SYNC_READ), "begin_cpu B: %s", strerror(errno));
	for (uint64_t c = 0; c < size / CHUNK; c++) {
		const uint8_t *q = mb + c * CHUNK;

		bad = copied[c] ? verify(q, CHUNK, seed, c * CHUNK) : first_nonzero(q, CHUNK);
		if (bad >= 0) {
			physmem_buffer_end_cpu(b, PHYSMEM_SYNC_READ);
			FAIL("B wrong at %#llx (%s chunk; B seg addr %#" PRIx64 ")",
			     (unsigned long long)(c * CHUNK + (uint64_t)bad), copied[c] ? "copied" : "untouched",
			     physmem_info_segment(ib, 0)->address);
		}
	}
	physmem_buffer_end_cpu(b, PHYSMEM_SYNC_READ);
	/* A is unchanged (the device only read it) */
	physmem_buffer_begin_cpu(a, PHYSMEM_SYNC_READ);
	bad = verify(ma, size, seed, 0);
	physmem_buffer_end_cpu(a, PHYSMEM_SYNC_READ);
	CHECK(bad < 0, "A changed at %#llx", bad);

	note("%s %" PRIu64 "KiB: A %u seg(s) first @%#" PRIx64 ", B %u seg(s) first @%#" PRIx64
	     ", %d chunks by DMA checked", pin ? "pinned memfd" : mode, (uint64_t)(size / KIB), physmem_info_n_segments(ia),
	     physmem_info_segment(ia, 0)->address, physmem_info_n_segments(ib), physmem_info_segment(ib, 0)->address, n);
	free(copied);
	r = physmem_buffer_free(b);
	CHECK(r >= 0, "Free B: %s", why(pm, r));
	r = physmem_buffer_free(a);
	CHECK(r >= 0, "Free A: %s", why(pm, r));
	if (mf)
		munmap(mf, size + 4 * PAGE);
	if (mfd >= 0)
		close(mfd);
	return 0;
}

/* Bus address of byte off of a binding's device segments, and the bytes contiguous from it. */
static uint64_t bound_addr(const struct physmem_binding *b, uint64_t off, uint64_t *left)
{
	for (unsigned i = 0; i < physmem_binding_n_segments(b); i++) {
		const struct physmem_segment *seg = physmem_binding_segment(b, i);

		if (off < seg->length) {
			*left = seg->length - off;
			return seg->address + off;
		}
		off -= seg->length;
	}
	*left = 0;
	return UINT64_MAX;
}

/* A buffer's one binding must be to bdf, with translation, covering all of it. */
static int check_binding(const struct physmem_buffer *buf, const char *what, const char *bdf, const char *translation)
{
	const struct physmem_info *in = physmem_buffer_info(buf);
	const struct physmem_binding *b = physmem_info_binding(in, 0);
	uint64_t total = 0;
	bool differs = false;

	CHECK(physmem_info_n_bindings(in) == 1 && b, "%s: %u bindings, not 1", what, physmem_info_n_bindings(in));
	CHECK(!strcmp(physmem_binding_device(b), bdf), "%s: bound to '%s', not %s", what, physmem_binding_device(b), bdf);
	CHECK(!strcmp(physmem_binding_translation(b), translation), "%s: translation '%s', not %s", what,
	      physmem_binding_translation(b), translation);
	CHECK(!physmem_binding_revoked(b), "%s: revoked", what);
	CHECK(physmem_binding_access(b) == PHYSMEM_ACCESS_BIDIRECTIONAL, "%s: access %d", what,
	      (int)physmem_binding_access(b));
	CHECK(physmem_binding_segments_known(b) && physmem_binding_n_segments(b) >= 1, "%s: no device segments", what);
	for (unsigned i = 0; i < physmem_binding_n_segments(b); i++)
		total += physmem_binding_segment(b, i)->length;
	CHECK(total == physmem_info_size(in), "%s: device segments add up to %" PRIu64 ", not %" PRIu64, what, total,
	      physmem_info_size(in));
	for (uint64_t off = 0; off < physmem_info_size(in); off += PAGE) {
		uint64_t l1, l2;

		if (bound_addr(b, off, &l1) != bus_addr(in, off, &l2))
			differs = true;
	}
	if (!strcmp(translation, "iommu"))
		CHECK(differs, "%s: IOMMU translation, yet the device addresses are the physical ones", what);
	else
		CHECK(!differs, "%s: %s, yet the device addresses differ from the physical ones", what, translation);
	return 0;
}

/* Print one round of transfers A -> B at offs, by device (bound) or physical addresses; wait for "go". */
static int bind_round(const char *round, const struct physmem_buffer *a, const struct physmem_buffer *b,
		      const uint64_t *offs, int n, bool bound)
{
	const struct physmem_info *ia = physmem_buffer_info(a), *ib = physmem_buffer_info(b);
	char line[64];

	for (int i = 0; i < n; i++) {
		uint64_t la, lb, sa, sb;

		if (bound) {
			sa = bound_addr(physmem_info_binding(ia, 0), offs[i], &la);
			sb = bound_addr(physmem_info_binding(ib, 0), offs[i], &lb);
		} else {
			sa = bus_addr(ia, offs[i], &la);
			sb = bus_addr(ib, offs[i], &lb);
		}
		CHECK(la >= CHUNK && lb >= CHUNK, "%s: chunk %#" PRIx64 " crosses a segment", round, offs[i]);
		printf("xfer %#" PRIx64 " %#" PRIx64 " %llu %#" PRIx64 "\n", sa, sb, CHUNK, offs[i]);
	}
	printf("ready-%s %d\n", round, n);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "go", 2))
		FAIL("%s: no 'go' from the root helper (%s)", round, feof(stdin) ? "EOF" : line);
	return 0;
}

/* B's chunks at offs hold A's bytes (copied) or zeroes, and nothing else of B is touched. */
static int bind_check(const char *round, struct physmem_buffer *b, uint64_t size, const uint64_t *offs, int n,
		      uint64_t seed, bool copied)
{
	uint8_t *mb = physmem_buffer_map(b);
	long long bad;

	CHECK(mb, "map B: %s", strerror(errno));
	CHECK(!physmem_buffer_begin_cpu(b, PHYSMEM_SYNC_READ), "begin_cpu B: %s", strerror(errno));
	for (uint64_t c = 0; c < size / CHUNK; c++) {
		bool in = false;

		for (int i = 0; i < n; i++)
			in = in || offs[i] == c * CHUNK;
		bad = in && copied ? verify(mb + c * CHUNK, CHUNK, seed, c * CHUNK) : first_nonzero(mb + c * CHUNK, CHUNK);
		if (bad >= 0) {
			physmem_buffer_end_cpu(b, PHYSMEM_SYNC_READ);
			FAIL("%s: B wrong at %#llx (%s chunk)", round, (unsigned long long)(c * CHUNK + (uint64_t)bad),
			     in ? (copied ? "copied" : "blocked") : "untouched");
		}
	}
	physmem_buffer_end_cpu(b, PHYSMEM_SYNC_READ);
	return 0;
}

static int do_bind(struct physmem *pm, const char *bdf, const char *translation)
{
	const uint64_t size = 64 * KIB, offs[] = { 0, 32 * KIB, 64 * KIB - CHUNK };
	const int n = (int)(sizeof(offs) / sizeof(offs[0]));
	uint64_t seed = 0xb1dd0000ULL ^ (uint64_t)getpid();
	struct physmem_buffer *a = NULL, *b = NULL;
	bool iommu = !strcmp(translation, "iommu");
	uint8_t *ma, *mb;
	char line[64];
	int r, keep;

	r = physmem_alloc_bound(pm, size, PHYSMEM_CONTIGUOUS, PHYSMEM_CACHE_CACHED, NULL, bdf,
				PHYSMEM_ACCESS_BIDIRECTIONAL, &a);
	CHECK(r >= 0, "Allocate A with device %s: %s", bdf, why(pm, r));
	r = physmem_alloc_bound(pm, size, 0, PHYSMEM_CACHE_CACHED, NULL, bdf, PHYSMEM_ACCESS_BIDIRECTIONAL, &b);
	CHECK(r >= 0, "Allocate B with device %s: %s", bdf, why(pm, r));
	if (check_info(a, "A", size, true) || check_info(b, "B", size, false) ||
	    check_binding(a, "A", bdf, translation) || check_binding(b, "B", bdf, translation))
		return 1;
	ma = physmem_buffer_map(a);
	mb = physmem_buffer_map(b);
	CHECK(ma && mb, "map: %s", strerror(errno));
	CHECK(!physmem_buffer_begin_cpu(a, PHYSMEM_SYNC_WRITE), "begin_cpu A: %s", strerror(errno));
	for (uint64_t i = 0; i < size; i++)
		ma[i] = pat(seed, i);
	CHECK(!physmem_buffer_end_cpu(a, PHYSMEM_SYNC_WRITE), "end_cpu A: %s", strerror(errno));

	if (bind_round("phys", a, b, offs, n, false) || bind_check("phys", b, size, offs, n, seed, !iommu))
		return 1;
	if (!iommu) {
		/* The physical copy landed: clear it for the next round. */
		CHECK(!physmem_buffer_begin_cpu(b, PHYSMEM_SYNC_WRITE), "begin_cpu B: %s", strerror(errno));
		memset(mb, 0, size);
		CHECK(!physmem_buffer_end_cpu(b, PHYSMEM_SYNC_WRITE), "end_cpu B: %s", strerror(errno));
	}
	if (bind_round("bound", a, b, offs, n, true) || bind_check("bound", b, size, offs, n, seed, true))
		return 1;

	r = physmem_unbind(pm, physmem_buffer_id(b), bdf);
	CHECK(r >= 0, "Unbind B: %s", why(pm, r));
	r = physmem_unbind(pm, physmem_buffer_id(b), bdf);
	CHECK(r == -ENODEV, "Unbind B twice: %d, not -ENODEV (%s)", r, why(pm, r));
	CHECK(!physmem_buffer_begin_cpu(b, PHYSMEM_SYNC_WRITE), "begin_cpu B: %s", strerror(errno));
	memset(mb, 0, size);
	CHECK(!physmem_buffer_end_cpu(b, PHYSMEM_SYNC_WRITE), "end_cpu B: %s", strerror(errno));
	/* The old device addresses of B: with an IOMMU they no longer reach it. */
	if (bind_round("unbound", a, b, offs, n, true) || bind_check("unbound", b, size, offs, n, seed, !iommu))
		return 1;

	note("%s via %s: A @%#" PRIx64 " -> device @%#" PRIx64 "; physical copy %s, bound copy arrived, after Unbind %s",
	     bdf, translation, physmem_info_segment(physmem_buffer_info(a), 0)->address,
	     physmem_binding_segment(physmem_info_binding(physmem_buffer_info(a), 0), 0)->address,
	     iommu ? "blocked" : "arrived", iommu ? "blocked" : "arrived (no translation)");
	/*
	 * A still bound: Free must take the binding with it although this
	 * process keeps A alive in the kernel with a dup of its fd. Round
	 * "freed" has no transfers: root checks the module's binding counter.
	 */
	keep = dup(physmem_buffer_fd(a));
	CHECK(keep >= 0, "dup: %s", strerror(errno));
	r = physmem_buffer_free(a);
	CHECK(r >= 0, "Free A: %s", why(pm, r));
	printf("ready-freed 0\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "go", 2))
		FAIL("freed: no 'go' from the root helper (%s)", feof(stdin) ? "EOF" : line);
	close(keep);
	r = physmem_buffer_free(b);
	CHECK(r >= 0, "Free B: %s", why(pm, r));
	return 0;
}

static int do_hold(struct physmem *pm)
{
	static const struct { uint64_t size; unsigned flags; } allocs[] = {
		{ 1 * MIB, PHYSMEM_CONTIGUOUS }, { 4 * MIB, 0 },
	};
	struct physmem_buffer *buf;
	uint64_t bytes = 0, pin_size = 256 * KIB;
	unsigned n = 0;
	uint8_t *p;
	int r, mfd;

	for (size_t i = 0; i < sizeof(allocs) / sizeof(allocs[0]); i++) {
		r = physmem_alloc(pm, allocs[i].size, allocs[i].flags, PHYSMEM_CACHE_CACHED, NULL, &buf);
		CHECK(r >= 0, "Allocate %" PRIu64 ": %s", allocs[i].size, why(pm, r));
		p = physmem_buffer_map(buf);
		CHECK(p, "map: %s", strerror(errno));
		memset(p, 0x5a, allocs[i].size);
		bytes += allocs[i].size;
		n++;
	}
	mfd = memfd_create("physmem-vm-hold", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(mfd >= 0 && !ftruncate(mfd, (off_t)pin_size), "memfd: %s", strerror(errno));
	/* a pin never fills holes: write every page first */
	p = mmap(NULL, pin_size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	CHECK(p != MAP_FAILED, "mmap memfd: %s", strerror(errno));
	memset(p, 0x5a, pin_size);
	munmap(p, pin_size);
	CHECK(!fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), "seal: %s", strerror(errno));
	r = physmem_pin(pm, mfd, 0, pin_size, NULL, &buf);
	CHECK(r >= 0, "Pin: %s", why(pm, r));
	CHECK(physmem_buffer_map(buf), "map pinned: %s", strerror(errno));
	bytes += pin_size;
	n++;
	printf("ready %u %" PRIu64 "\n", n, bytes);
	fflush(stdout);
	for (;;)
		pause();
}

/* mmap must fail (EINVAL or ENXIO, whichever the exporter picks). */
static int expect_map_fail(int fd, size_t len, off_t off, const char *what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);

	if (p != MAP_FAILED) {
		munmap(p, len);
		FAIL("%s: mmap succeeded", what);
	}
	CHECK(errno == EINVAL || errno == ENXIO || errno == EACCES, "%s: %s", what, strerror(errno));
	return 0;
}

static int do_isolation(struct physmem *pm, const char *name, uint64_t id)
{
	uint64_t size = 64 * KIB;
	struct physmem_buffer *buf, *imp = NULL;
	struct physmem_info *info = NULL, **list = NULL;
	const char *en;
	size_t nlist = 0;
	uint8_t *p;
	int fd, r;

	CHECK(getuid() != 0 && geteuid() != 0, "running as root");
	fd = open("/dev/physmem", O_RDWR | O_CLOEXEC);
	CHECK(fd < 0, "uid %u opened /dev/physmem", (unsigned)getuid());
	CHECK(errno == EACCES, "open /dev/physmem: %s, want EACCES", strerror(errno));
	note("/dev/physmem: EACCES; ");

	r = physmem_alloc(pm, size, 0, PHYSMEM_CACHE_CACHED, NULL, &buf);
	CHECK(r >= 0, "Allocate: %s", why(pm, r));
	fd = physmem_buffer_fd(buf);
	if (expect_map_fail(fd, size + PAGE, 0, "map size+4K") ||
	    expect_map_fail(fd, PAGE, (off_t)size, "map at offset size") ||
	    expect_map_fail(fd, 2 * PAGE, (off_t)(size - PAGE), "map across the end"))
		return 1;
	p = physmem_buffer_map(buf);
	CHECK(p, "map whole buffer: %s", strerror(errno));
	p[0] = 1;
	p[size - 1] = 2;
	note("mmap beyond size refused; ");

	r = physmem_import(pm, name, &imp);
	CHECK(r < 0, "imported '%s' (root's, not shared with us)", name);
	en = physmem_error_name(pm);
	CHECK(r == -EACCES && en && strstr(en, "PermissionDenied"), "Import '%s': %d %s", name, r,
	      why(pm, r));
	note("Import(%s): %s; ", name, en);

	r = physmem_describe(pm, id, &info);
	if (r >= 0) {
		bool segs = physmem_info_segments_known(info);

		physmem_info_free(info);
		FAIL("Describe(%" PRIu64 ") of root's buffer succeeded (segments %s)", id,
		     segs ? "shown" : "hidden");
	}
	CHECK(r == -ENOENT || r == -EACCES, "Describe(%" PRIu64 "): %s", id, why(pm, r));
	r = physmem_free_id(pm, id);
	CHECK(r == -ENOENT || r == -EACCES, "Free(%" PRIu64 ") of root's buffer: %s", id,
	      r >= 0 ? "succeeded" : why(pm, r));
	note("Describe/Free(%" PRIu64 "): %s; ", id, physmem_error_name(pm));

	r = physmem_list(pm, true, &list, &nlist);
	if (r >= 0) {
		physmem_info_list_free(list, nlist);
		FAIL("List(all) succeeded (%zu buffers)", nlist);
	}
	CHECK(r == -EACCES, "List(all): %s", why(pm, r));
	note("List(all): %s", physmem_error_name(pm));
	r = physmem_buffer_free(buf);
	CHECK(r >= 0, "Free own: %s", why(pm, r));
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	struct physmem *pm = NULL;
	int r;

	if (!((!strcmp(mode, "dma") && argc == 3) || (!strcmp(mode, "hold") && argc == 2) ||
	      (!strcmp(mode, "isolation") && argc == 4) || (!strcmp(mode, "bind") && argc == 4))) {
		fprintf(stderr, "usage: physmem-vm-client dma contig|sg|pin | hold | isolation NAME ID | "
			"bind BDF TRANSLATION\n");
		return 2;
	}
	alarm(90);	/* never outlive the case script */
	r = physmem_connect(NULL, &pm);
	if (r < 0) {
		note("connect: %s", strerror(-r));
		return result(1);
	}
	if (!strcmp(mode, "dma"))
		r = do_dma(pm, argv[2]);
	else if (!strcmp(mode, "hold"))
		r = do_hold(pm);
	else if (!strcmp(mode, "bind"))
		r = do_bind(pm, argv[2], argv[3]);
	else
		r = do_isolation(pm, argv[2], strtoull(argv[3], NULL, 0));
	physmem_disconnect(pm);
	return result(r);
}
