/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kmod backend: buffers come from /dev/physmem (kmod/) as dma-buf fds.
 * The module pins the memory and reports DMA addresses, so this backend's
 * segments are DMA-safe. It also pins memfds that clients pass in; the module
 * never allocates for a pin and answers -ENODATA for an unpopulated range.
 *
 * Freeing drops the daemon's fd; a client that still holds an fd or a mapping
 * keeps the pages alive in the kernel until it closes them (dma-buf lifetime
 * rules), and the module's counters show them until then.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "physmem-proto.h"
#include "physmemd.h"
#include "uapi/physmem.h"

/* The most pools the daemon looks at (the module sets up a few at load). */
#define KMOD_MAX_POOLS 16

struct kmod_state {
	int dev;
	struct physmem_dev_info info;
	char contig_feature[96];	/* written once: worker threads only read it */
	bool old_module;		/* refuses ALLOC/PIN with a segment array: atomic */
	unsigned n_pools;		/* pool names by index, read at start: the module */
	char pool_names[KMOD_MAX_POOLS][16];	/* sets its pools up at load only */
};

/* Segments an ALLOC or PIN reply brings along; more take a SEGMENTS query. */
#define KMOD_REPLY_SEGMENTS 128

static const char *kmod_pool_kind(uint32_t kind)
{
	switch (kind) {
	case PHYSMEM_POOL_KIND_MEMMAP:
		return "memmap";
	case PHYSMEM_POOL_KIND_RESERVE_MEM:
		return "reserve_mem";
	case PHYSMEM_POOL_KIND_CMA:
		return "cma";
	}
	return "unknown";
}

/* POOL_INFO for pool index into *ret: 0, -ENOENT past the last pool, or -errno. */
static int kmod_pool_info(struct kmod_state *st, uint32_t index, struct physmem_pool_info *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->size = sizeof(*ret);
	ret->index = index;
	if (ioctl(st->dev, PHYSMEM_IOC_POOL_INFO, ret) < 0)
		return -errno;
	ret->name[sizeof(ret->name) - 1] = '\0';
	return 0;
}

/*
 * Learn the pools' names and indexes (a module without POOL_INFO, or without
 * pools, has none: every pool allocation is then PoolUnavailable "none").
 */
static void kmod_pools_init(struct kmod_state *st)
{
	struct physmem_pool_info pi;
	int r;

	for (uint32_t i = 0; i < KMOD_MAX_POOLS; i++) {
		r = kmod_pool_info(st, i, &pi);
		if (r == -ENOENT)
			break;
		if (r == -ENOTTY) {
			log_info("the module predates contiguous pools (no POOL_INFO)");
			break;
		}
		if (r < 0) {
			log_warning("contiguous pools: POOL_INFO %u failed: %s; pools after it are not used", i,
				    strerror(-r));
			break;
		}
		memcpy(st->pool_names[i], pi.name, sizeof(st->pool_names[i]));
		st->n_pools = i + 1;
		log_info("contiguous pool %u '%s' (%s): %llu bytes, %llu free", i, pi.name, kmod_pool_kind(pi.kind),
			 (unsigned long long)pi.total, (unsigned long long)pi.free);
	}
}

/* The index of the pool named name, or -ENODEV. */
static int kmod_pool_index(const struct kmod_state *st, const char *name)
{
	for (unsigned i = 0; i < st->n_pools; i++)
		if (strcmp(st->pool_names[i], name) == 0)
			return (int)i;
	return -ENODEV;
}

static int kmod_pools(void *state, struct backend_pool **ret, unsigned *ret_n)
{
	struct kmod_state *st = state;
	struct backend_pool *pools = calloc(st->n_pools ? st->n_pools : 1, sizeof(*pools));
	struct physmem_pool_info pi;
	unsigned n = 0;

	if (!pools)
		return -ENOMEM;
	for (unsigned i = 0; i < st->n_pools; i++) {
		if (kmod_pool_info(st, i, &pi) < 0)
			continue;
		memcpy(pools[n].name, pi.name, sizeof(pools[n].name));
		pools[n].kind = kmod_pool_kind(pi.kind);
		pools[n].shared = pi.flags & PHYSMEM_POOL_INFO_SHARED;
		pools[n].size = pi.total;
		pools[n].free = pi.free;
		pools[n].largest_free = pi.largest_free;
		pools[n].buffers = pi.buffers;
		n++;
	}
	*ret = pools;
	*ret_n = n;
	return 0;
}

static int kmod_init(const struct conf *conf, void **ret_state)
{
	struct kmod_state *st;
	int r;

	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->dev = open(conf->device, O_RDWR | O_CLOEXEC);
	if (st->dev < 0) {
		r = errno == ENOENT ? -ENODEV : -errno;
		goto fail;
	}
	st->info.size = sizeof(st->info);
	if (ioctl(st->dev, PHYSMEM_IOC_INFO, &st->info) < 0) {
		r = -errno;
		goto fail;
	}
	if (st->info.version != PHYSMEM_ABI_VERSION) {
		log_error("%s speaks ABI %u, this daemon %u", conf->device, st->info.version, PHYSMEM_ABI_VERSION);
		r = -EPROTO;
		goto fail;
	}
	snprintf(st->contig_feature, sizeof(st->contig_feature), "contiguous buffers larger than %llu bytes",
		 (unsigned long long)st->info.max_contig_bytes);
	log_info("kmod backend on %s: largest buffer %llu bytes, largest contiguous %llu bytes", conf->device,
		 (unsigned long long)st->info.max_buffer_bytes, (unsigned long long)st->info.max_contig_bytes);
	kmod_pools_init(st);
	*ret_state = st;
	return 0;
fail:
	if (st->dev >= 0)
		close(st->dev);
	free(st);
	return r;
}

static void kmod_fini(void *state)
{
	struct kmod_state *st = state;

	close(st->dev);
	free(st);
}

/* Ask the module for a buffer's DMA segments. */
static int kmod_segments(struct kmod_state *st, struct backend_buffer *b)
{
	struct physmem_segments q = { .size = sizeof(q), .fd = b->fd };
	struct physmem_dma_segment *raw;
	struct segment *segs;

	if (ioctl(st->dev, PHYSMEM_IOC_SEGMENTS, &q) < 0)
		return -errno;
	raw = calloc(q.count ? q.count : 1, sizeof(*raw));
	segs = calloc(q.count ? q.count : 1, sizeof(*segs));
	if (!raw || !segs) {
		free(raw);
		free(segs);
		return -ENOMEM;
	}
	q.capacity = q.count;
	q.segments = (uintptr_t)raw;
	if (ioctl(st->dev, PHYSMEM_IOC_SEGMENTS, &q) < 0) {
		int r = -errno;

		free(raw);
		free(segs);
		return r;
	}
	for (unsigned i = 0; i < q.count && i < q.capacity; i++) {
		segs[i].address = raw[i].addr;
		segs[i].length = raw[i].len;
	}
	free(raw);
	b->segments = segs;
	b->n_segments = q.count < q.capacity ? q.count : q.capacity;
	b->kernel_id = q.id;
	b->size = q.length;
	b->contiguous = (q.flags & PHYSMEM_BUF_CONTIG) || b->n_segments == 1;
	b->from_pool = q.flags & PHYSMEM_BUF_POOL;
	b->locked = true;
	return 0;
}

static int kmod_finish(struct kmod_state *st, int fd, struct backend_buffer *ret)
{
	int r;

	ret->fd = fd;
	r = kmod_segments(st, ret);
	if (r < 0) {
		close(fd);
		memset(ret, 0, sizeof(*ret));
		ret->fd = -1;
	}
	return r;
}

/*
 * Fill @ret from a fresh buffer's ALLOC or PIN reply, which wrote up to
 * KMOD_REPLY_SEGMENTS of its @count segments to @raw (none from a module that
 * predates the segment array: @raw NULL). Takes @fd.
 */
static int kmod_from_reply(struct kmod_state *st, int fd, uint64_t id, uint64_t size, bool contiguous,
			   const struct physmem_dma_segment *raw, uint32_t count, struct backend_buffer *ret)
{
	struct segment *segs;

	if (!raw || count > KMOD_REPLY_SEGMENTS)
		return kmod_finish(st, fd, ret);
	segs = calloc(count ? count : 1, sizeof(*segs));
	if (!segs) {
		close(fd);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		segs[i].address = raw[i].addr;
		segs[i].length = raw[i].len;
	}
	ret->fd = fd;
	ret->segments = segs;
	ret->n_segments = count;
	ret->kernel_id = id;
	ret->size = size;
	ret->contiguous = contiguous || count == 1;
	ret->locked = true;
	return 0;
}

/*
 * ALLOC or PIN (@cmd, request @req whose first field is its size) in one
 * ioctl, the segments written to @raw. A module older than the segment array
 * refuses the larger struct with E2BIG before doing anything: then the old
 * size, and SEGMENTS afterwards (remembered). Returns 0 or -errno; *ret_raw
 * is @raw or NULL when the segments must be queried.
 */
static int kmod_ioctl_new(struct kmod_state *st, unsigned long cmd, void *req, uint32_t ver0,
			  struct physmem_dma_segment *raw, const struct physmem_dma_segment **ret_raw)
{
	uint32_t *size = req;

	*ret_raw = raw;
	if (!__atomic_load_n(&st->old_module, __ATOMIC_RELAXED)) {
		if (ioctl(st->dev, cmd, req) == 0)
			return 0;
		if (errno != E2BIG)
			return -errno;
		log_info("the module predates segment lists in ALLOC/PIN replies: querying them separately");
		__atomic_store_n(&st->old_module, true, __ATOMIC_RELAXED);
	}
	*size = ver0;
	*ret_raw = NULL;
	return ioctl(st->dev, cmd, req) < 0 ? -errno : 0;
}

static int kmod_allocate(void *state, uint64_t size, bool contiguous, int cache, struct backend_buffer *ret,
			 const char **ret_feature)
{
	struct kmod_state *st = state;
	struct physmem_dma_segment raw[KMOD_REPLY_SEGMENTS];
	const struct physmem_dma_segment *got;
	int r;
	struct physmem_alloc a = {
		.size = sizeof(a),
		.flags = contiguous ? PHYSMEM_ALLOC_CONTIG : 0,
		.length = size,
		.cache = (__u32)cache,
	};

	memset(ret, 0, sizeof(*ret));
	ret->fd = -1;
	if (contiguous && size > st->info.max_contig_bytes) {
		*ret_feature = st->contig_feature;
		return -EOPNOTSUPP;
	}
	a.segments = (uintptr_t)raw;
	a.capacity = KMOD_REPLY_SEGMENTS;
	r = kmod_ioctl_new(st, PHYSMEM_IOC_ALLOC, &a, PHYSMEM_ALLOC_SIZE_VER0, raw, &got);
	if (r < 0)
		return r;
	return kmod_from_reply(st, a.fd, a.id, a.actual_length, contiguous, got, a.nr_segments, ret);
}

/*
 * One run from a pool. Never a fallback: every failure names the pool's state.
 * An unknown name is answered without asking the module.
 */
static int kmod_allocate_pool(void *state, const char *pool, uint64_t size, int cache, struct backend_buffer *ret,
			      struct backend_pool_failure *ret_failure, const char **ret_feature)
{
	struct kmod_state *st = state;
	struct physmem_dma_segment raw[KMOD_REPLY_SEGMENTS];
	struct physmem_pool_info pi;
	int index = kmod_pool_index(st, pool), r;
	struct physmem_alloc a = {
		.size = sizeof(a),
		.flags = PHYSMEM_ALLOC_POOL | PHYSMEM_ALLOC_CONTIG,
		.length = size,
		.cache = (__u32)cache,
		.segments = (uintptr_t)raw,
		.capacity = KMOD_REPLY_SEGMENTS,
	};

	memset(ret, 0, sizeof(*ret));
	ret->fd = -1;
	*ret_failure = (struct backend_pool_failure) { .reason = "none" };
	if (index < 0)
		return -ENODEV;
	a.pool = (uint32_t)index;
	if (ioctl(st->dev, PHYSMEM_IOC_ALLOC, &a) < 0) {
		r = -errno;
		switch (r) {
		case -ENOSPC:
			ret_failure->reason = a.pool_status == PHYSMEM_POOL_FRAGMENTED ? "fragmented" : "exhausted";
			break;
		case -ENODEV:
			ret_failure->reason = "none";
			break;
		case -EBUSY:
			ret_failure->reason = "busy";
			break;
		case -EOPNOTSUPP:
			*ret_feature = "this cache mode for buffers from this pool";
			return r;
		case -E2BIG:
			/* A module older than pools refuses the v2 struct. */
			ret_failure->reason = "none";
			return -ENODEV;
		default:
			return r;
		}
		if (kmod_pool_info(st, a.pool, &pi) == 0 && !(pi.flags & PHYSMEM_POOL_INFO_SHARED)) {
			ret_failure->known = true;
			ret_failure->free = pi.free;
			ret_failure->largest_free = pi.largest_free;
		}
		return r;
	}
	r = kmod_from_reply(st, a.fd, a.id, a.actual_length, true, raw, a.nr_segments, ret);
	if (r < 0)
		return r;
	ret->from_pool = true;
	snprintf(ret->pool, sizeof(ret->pool), "%s", pool);
	return 0;
}

static int kmod_pin(void *state, int memfd, uint64_t offset, uint64_t size, struct backend_buffer *ret,
		    const char **ret_feature)
{
	struct kmod_state *st = state;
	struct physmem_dma_segment raw[KMOD_REPLY_SEGMENTS];
	const struct physmem_dma_segment *got;
	int r;
	struct physmem_pin p = {
		.size = sizeof(p),
		.memfd = memfd,
		.offset = offset,
		.length = size,
	};

	(void)ret_feature;
	memset(ret, 0, sizeof(*ret));
	ret->fd = -1;
	p.segments = (uintptr_t)raw;
	p.capacity = KMOD_REPLY_SEGMENTS;
	r = kmod_ioctl_new(st, PHYSMEM_IOC_PIN, &p, PHYSMEM_PIN_SIZE_VER0, raw, &got);
	if (r < 0)
		return r;
	return kmod_from_reply(st, p.fd, p.id, size, false, got, p.nr_segments, ret);
}

static int kmod_unbind(void *state, int fd, uint64_t binding_id);

static int kmod_adopt(void *state, int fd, struct backend_buffer *ret)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	/* The module refuses any fd that is not one of its buffers. */
	r = kmod_finish(state, fd, ret);
	if (r < 0)
		return r;
	/*
	 * The daemon that made its bindings is gone and they were not stored:
	 * remove them all (binding id 0), so that none outlives its charge.
	 * A module without bindings answers ENOTTY, one before id 0 ENOENT.
	 */
	r = kmod_unbind(state, fd, 0);
	if (r < 0 && r != -ENOTTY && r != -ENOENT)
		log_warning("kernel buffer %llu: removing its old bindings failed: %s",
			    (unsigned long long)ret->kernel_id, strerror(-r));
	return 0;
}

static int kmod_held(void *state, uint64_t kernel_id)
{
	struct kmod_state *st = state;
	struct physmem_query q = { .size = sizeof(q), .id = kernel_id };

	if (ioctl(st->dev, PHYSMEM_IOC_QUERY, &q) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

/* The access of the interface as the module's direction. */
static uint16_t kmod_bind_dir(int access)
{
	switch (access) {
	case PHYSMEM_DEVICE_ACCESS_TO_DEVICE:
		return PHYSMEM_BIND_TO_DEVICE;
	case PHYSMEM_DEVICE_ACCESS_FROM_DEVICE:
		return PHYSMEM_BIND_FROM_DEVICE;
	default:
		return PHYSMEM_BIND_BIDIRECTIONAL;
	}
}

static int kmod_unbind(void *state, int fd, uint64_t binding_id)
{
	struct kmod_state *st = state;
	struct physmem_unbind u = { .size = sizeof(u), .fd = fd, .binding_id = binding_id };

	return ioctl(st->dev, PHYSMEM_IOC_UNBIND, &u) < 0 ? -errno : 0;
}

static int kmod_bind(void *state, int fd, const struct physmem_pci_address *device, int access,
		     struct backend_binding *ret)
{
	struct kmod_state *st = state;
	struct physmem_dma_segment *raw = NULL;
	struct physmem_bind q = {
		.size = sizeof(q),
		.fd = fd,
		.pci_domain = device->domain,
		.pci_bus = (__u8)device->bus,
		.pci_devfn = (__u8)((device->slot << 3) | device->function),
		.dir = kmod_bind_dir(access),
	};
	struct physmem_segments sq = { .size = sizeof(sq), .fd = fd };
	struct segment *segs;
	int r;

	memset(ret, 0, sizeof(*ret));
	raw = calloc(KMOD_REPLY_SEGMENTS, sizeof(*raw));
	if (!raw)
		return -ENOMEM;
	q.segments = (uintptr_t)raw;
	q.capacity = KMOD_REPLY_SEGMENTS;
	if (ioctl(st->dev, PHYSMEM_IOC_BIND, &q) < 0) {
		r = -errno;
		free(raw);
		return r;
	}
	if (q.nr_segments > KMOD_REPLY_SEGMENTS) {
		/* More than fitted: ask for all of them. */
		free(raw);
		raw = calloc(q.nr_segments, sizeof(*raw));
		sq.binding_id = q.binding_id;
		sq.segments = (uintptr_t)raw;
		sq.capacity = q.nr_segments;
		if (!raw || ioctl(st->dev, PHYSMEM_IOC_SEGMENTS, &sq) < 0 || sq.count != q.nr_segments) {
			r = raw ? -EIO : -ENOMEM;
			free(raw);
			kmod_unbind(st, fd, q.binding_id);
			return r;
		}
	}
	segs = calloc(q.nr_segments ? q.nr_segments : 1, sizeof(*segs));
	if (!segs) {
		free(raw);
		kmod_unbind(st, fd, q.binding_id);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < q.nr_segments; i++) {
		segs[i].address = raw[i].addr;
		segs[i].length = raw[i].len;
	}
	free(raw);
	ret->id = q.binding_id;
	ret->device = *device;
	ret->access = access;
	ret->translation = (q.out_flags & PHYSMEM_BIND_IOMMU) ? TRANSLATION_IOMMU :
			   (q.out_flags & PHYSMEM_BIND_IDENTITY) ? TRANSLATION_PASSTHROUGH : TRANSLATION_DIRECT;
	ret->segments = segs;
	ret->n_segments = q.nr_segments;
	return 0;
}

static int kmod_binding_revoked(void *state, int fd, uint64_t binding_id)
{
	struct kmod_state *st = state;
	struct physmem_segments q = { .size = sizeof(q), .fd = fd, .binding_id = binding_id };

	if (ioctl(st->dev, PHYSMEM_IOC_SEGMENTS, &q) < 0)
		return -errno;
	return (q.bind_flags & PHYSMEM_BIND_REVOKED) ? 1 : 0;
}

static void kmod_release(void *state, struct backend_buffer *b, bool keep)
{
	/*
	 * The kernel frees the pages when the last reference goes, and a
	 * client may still hold one: remove the bindings now, so that no
	 * device can reach the pages after Free (a restart does not restore
	 * them either).
	 */
	(void)keep;
	for (unsigned i = 0; i < b->n_bindings; i++) {
		int r = kmod_unbind(state, b->fd, b->bindings[i].id);

		if (r < 0 && r != -ENOENT)
			log_warning("kernel buffer %llu: unbinding %llu failed: %s", (unsigned long long)b->kernel_id,
				    (unsigned long long)b->bindings[i].id, strerror(-r));
	}
	backend_bindings_free(b);
	close(b->fd);
	free(b->segments);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

const struct backend_ops backend_kmod_ops = {
	.name = "kmod",
	.dma_safe = true,
	.init = kmod_init,
	.fini = kmod_fini,
	.allocate = kmod_allocate,
	.allocate_pool = kmod_allocate_pool,
	.pools = kmod_pools,
	.pin = kmod_pin,
	.adopt = kmod_adopt,
	.held = kmod_held,
	.release = kmod_release,
	.bind = kmod_bind,
	.unbind = kmod_unbind,
	.binding_revoked = kmod_binding_revoked,
};
