// SPDX-License-Identifier: GPL-2.0
/*
 * Contiguous pools: physically contiguous buffers of any size the pool can
 * hold, from memory set aside at boot.
 *
 * Providers, each chosen by a module parameter at load (a bad one fails the
 * load with a message):
 *
 *  - pool_memmap=SIZE@ADDR: a memmap=SIZE$ADDR boot reservation (x86).  The
 *    range is not System RAM, so it has neither a kernel mapping nor
 *    (wholly) struct pages; memremap_pages(MEMORY_DEVICE_GENERIC) gives it
 *    both.  Its memory type is fixed to write-back by that mapping, so only
 *    cached buffers come from it.
 *  - pool_reserve_mem=NAME: a reserve_mem=SIZE:ALIGN:NAME region (6.11+):
 *    ordinary, direct-mapped System RAM that memblock keeps reserved.
 *  - pool_cma=NAME|default: a CMA area (kernels exporting cma_alloc: 7.x),
 *    shared with the rest of the kernel; its size and free space are not
 *    known to a module.
 *
 * The memmap and reserve_mem pools are managed by a genalloc pool of page
 * granularity (buffers of 2 MiB and more are 2 MiB aligned); the pool owns
 * its pages' base reference, a buffer takes none.  Pool buffers are mapped
 * VM_PFNMAP (physmem-buf.c), so no PTE or get_user_pages() reference can
 * keep a pool page; the run goes back to the pool in physmem_buf_free(),
 * after the buffer's release, draining and quarantine.
 *
 * Pools are made before /dev/physmem is usable and torn down after every
 * buffer is gone (each one holds the module), so the pool table needs no
 * lock; genalloc and the counters are safe for concurrent use.
 */
#include <linux/device.h>
#include <linux/err.h>
#include <linux/genalloc.h>
#include <linux/ioport.h>
#include <linux/kobject.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "physmem-internal.h"

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
#define PHYSMEM_POOL_RESERVE_MEM 1
#endif
#if IS_ENABLED(CONFIG_CMA) && LINUX_VERSION_CODE >= KERNEL_VERSION(7, 0, 0)
#define PHYSMEM_POOL_CMA 1
#include <linux/cma.h>
#include <linux/dma-map-ops.h>
#endif

static char *physmem_pool_memmap_arg;
module_param_named(pool_memmap, physmem_pool_memmap_arg, charp, 0444);
MODULE_PARM_DESC(pool_memmap,
		 "Contiguous pool on the memmap=SIZE$ADDR boot reservation, given as SIZE@ADDR (x86)");

static char *physmem_pool_reserve_mem_arg;
module_param_named(pool_reserve_mem, physmem_pool_reserve_mem_arg, charp, 0444);
MODULE_PARM_DESC(pool_reserve_mem,
		 "Contiguous pool on the reserve_mem=SIZE:ALIGN:NAME boot reservation NAME (6.11+)");

static char *physmem_pool_cma_arg;
module_param_named(pool_cma, physmem_pool_cma_arg, charp, 0444);
MODULE_PARM_DESC(pool_cma,
		 "Contiguous pool on the CMA area NAME, or \"default\" (kernels exporting cma_alloc: 7.x)");

#define PHYSMEM_POOL_MAX	3
/* Buffers of at least this size start on a multiple of it. */
#define PHYSMEM_POOL_BIG_ALIGN	SZ_2M

struct physmem_pool {
	struct kobject kobj;		/* pools/<name> in sysfs */
	char name[16];
	u32 kind;			/* PHYSMEM_POOL_KIND_* */
	u32 flags;			/* PHYSMEM_POOL_INFO_* */
	phys_addr_t base;		/* 0 for CMA */
	u64 total;			/* bytes, 0 for CMA */
	struct gen_pool *gen;		/* memmap, reserve_mem */
	struct resource *res;		/* memmap: the claimed range */
	struct dev_pagemap pgmap;	/* memmap: its struct pages */
	bool pgmap_live;
	void *cma;			/* CMA: struct cma */
	atomic64_t buffers;
	atomic64_t fail_exhausted;
	atomic64_t fail_fragmented;
};

static struct physmem_pool *physmem_pools[PHYSMEM_POOL_MAX];
static unsigned int physmem_pool_count;
static struct kobject *physmem_pool_dir;

static const char * const physmem_pool_kind_names[] = {
	[PHYSMEM_POOL_KIND_MEMMAP] = "memmap",
	[PHYSMEM_POOL_KIND_RESERVE_MEM] = "reserve_mem",
	[PHYSMEM_POOL_KIND_CMA] = "cma",
};

/* Longest run of clear bits in one genalloc chunk, in bytes. */
static void physmem_pool_chunk_largest(struct gen_pool *gen,
				       struct gen_pool_chunk *chunk, void *data)
{
	unsigned long nbits = (chunk->end_addr - chunk->start_addr + 1) >>
			      gen->min_alloc_order;
	u64 *largest = data;
	unsigned long start, end;

	for (start = find_first_zero_bit(chunk->bits, nbits); start < nbits;
	     start = find_next_zero_bit(chunk->bits, nbits, end)) {
		end = find_next_bit(chunk->bits, nbits, start);
		if ((u64)(end - start) << gen->min_alloc_order > *largest)
			*largest = (u64)(end - start) << gen->min_alloc_order;
	}
}

/* Bytes in the pool's longest free run (0 where it cannot be known). */
static u64 physmem_pool_largest_free(struct physmem_pool *pool)
{
	u64 largest = 0;

	if (pool->gen)
		gen_pool_for_each_chunk(pool->gen, physmem_pool_chunk_largest,
					&largest);
	return largest;
}

static u64 physmem_pool_free_bytes(struct physmem_pool *pool)
{
	return pool->gen ? gen_pool_avail(pool->gen) : 0;
}

/* The pool with index @index, or NULL. */
struct physmem_pool *physmem_pool_get(u32 index)
{
	return index < physmem_pool_count ? physmem_pools[index] : NULL;
}

/*
 * Can a buffer of cache mode @cache come from @pool?  A memmap pool's range
 * is mapped write-back by memremap_pages(), and x86 PAT refuses another type
 * for any alias of it.
 */
int physmem_pool_check_cache(struct physmem_pool *pool, u32 cache)
{
	if (pool->kind == PHYSMEM_POOL_KIND_MEMMAP &&
	    cache != PHYSMEM_MODE_CACHED)
		return -EOPNOTSUPP;
	return 0;
}

/* Zero @npages pages from @pfn through the kernel mapping, 2 MiB at a time. */
static int physmem_pool_zero(unsigned long pfn, unsigned long npages)
{
	unsigned long done, n;

	for (done = 0; done < npages; done += n) {
		if (fatal_signal_pending(current))
			return -EINTR;
		n = min_t(unsigned long, npages - done, SZ_2M >> PAGE_SHIFT);
		memset(page_address(pfn_to_page(pfn + done)), 0, n << PAGE_SHIFT);
		cond_resched();
	}
	return 0;
}

/* Take one run of buf->npages pages from a genalloc pool. */
static int physmem_pool_take_gen(struct physmem_pool *pool,
				 struct physmem_buf *buf, u32 *ret_status,
				 unsigned long *ret_pfn)
{
	struct genpool_data_align align = {
		.align = buf->size >= PHYSMEM_POOL_BIG_ALIGN ?
			 PHYSMEM_POOL_BIG_ALIGN : PAGE_SIZE,
	};
	unsigned long addr;

	addr = gen_pool_alloc_algo(pool->gen, buf->size,
				   gen_pool_first_fit_align, &align);
	if (!addr) {
		if (gen_pool_avail(pool->gen) < buf->size) {
			atomic64_inc(&pool->fail_exhausted);
			*ret_status = PHYSMEM_POOL_EXHAUSTED;
		} else {
			atomic64_inc(&pool->fail_fragmented);
			*ret_status = PHYSMEM_POOL_FRAGMENTED;
		}
		return -ENOSPC;
	}
	*ret_pfn = PHYS_PFN(addr);
	return 0;
}

#ifdef PHYSMEM_POOL_CMA
/* Take one run of buf->npages pages from a CMA area. */
static int physmem_pool_take_cma(struct physmem_pool *pool,
				 struct physmem_buf *buf, unsigned long *ret_pfn)
{
	unsigned int align = buf->size >= PHYSMEM_POOL_BIG_ALIGN ?
			     get_order(PHYSMEM_POOL_BIG_ALIGN) : 0;
	struct page *page;

	page = cma_alloc(pool->cma, buf->npages, align, true);
	if (!page)
		return -EBUSY;
	*ret_pfn = page_to_pfn(page);
	return 0;
}
#endif

/* Hand the run at @pfn back to its pool. */
static void physmem_pool_put_run(struct physmem_pool *pool, unsigned long pfn,
				 unsigned long npages)
{
#ifdef PHYSMEM_POOL_CMA
	if (pool->cma) {
		cma_release(pool->cma, pfn_to_page(pfn), npages);
		return;
	}
#endif
	gen_pool_free(pool->gen, PFN_PHYS(pfn), (size_t)npages << PAGE_SHIFT);
}

/*
 * Fill an unpublished buffer's page array with one zeroed run from @pool
 * and make the buffer its pool's.  -ENOSPC with *@ret_status set when the
 * pool cannot hold it; on any failure the page array stays empty.
 */
int physmem_pool_take(struct physmem_pool *pool, struct physmem_buf *buf,
		      u32 *ret_status)
{
	unsigned long pfn, i;
	int ret;

#ifdef PHYSMEM_POOL_CMA
	if (pool->cma)
		ret = physmem_pool_take_cma(pool, buf, &pfn);
	else
#endif
		ret = physmem_pool_take_gen(pool, buf, ret_status, &pfn);
	if (ret)
		return ret;

	ret = physmem_pool_zero(pfn, buf->npages);
	if (ret) {
		physmem_pool_put_run(pool, pfn, buf->npages);
		return ret;
	}
	for (i = 0; i < buf->npages; i++)
		buf->pages[i] = pfn_to_page(pfn + i);
	buf->pool = pool;
	atomic64_inc(&pool->buffers);
	return 0;
}

/* physmem_buf_free(): the buffer's run goes back to its pool. */
void physmem_pool_give_back(struct physmem_buf *buf)
{
	struct physmem_pool *pool = buf->pool;

	physmem_pool_put_run(pool, page_to_pfn(buf->pages[0]), buf->npages);
	atomic64_dec(&pool->buffers);
}

/* PHYSMEM_IOC_POOL_INFO: describe pool info->index; -ENOENT past the last. */
int physmem_pool_info(struct physmem_pool_info *info)
{
	struct physmem_pool *pool = physmem_pool_get(info->index);

	if (!pool)
		return -ENOENT;
	memset(info->name, 0, sizeof(info->name));
	strscpy(info->name, pool->name, sizeof(info->name));
	info->kind = pool->kind;
	info->flags = pool->flags;
	info->base = pool->base;
	info->total = pool->total;
	info->free = physmem_pool_free_bytes(pool);
	info->largest_free = physmem_pool_largest_free(pool);
	info->buffers = atomic64_read(&pool->buffers);
	info->fail_exhausted = atomic64_read(&pool->fail_exhausted);
	info->fail_fragmented = atomic64_read(&pool->fail_fragmented);
	return 0;
}

/* /sys/class/misc/physmem/pools/<name>/<attr>: one figure per file. */
static ssize_t physmem_pool_attr_show(struct kobject *kobj,
				      struct kobj_attribute *attr, char *page)
{
	struct physmem_pool *pool = container_of(kobj, struct physmem_pool, kobj);
	const char *n = attr->attr.name;
	u64 v;

	if (!strcmp(n, "kind"))
		return sysfs_emit(page, "%s\n", physmem_pool_kind_names[pool->kind]);
	if (!strcmp(n, "total"))
		v = pool->total;
	else if (!strcmp(n, "free"))
		v = physmem_pool_free_bytes(pool);
	else if (!strcmp(n, "largest_free"))
		v = physmem_pool_largest_free(pool);
	else if (!strcmp(n, "buffers"))
		v = atomic64_read(&pool->buffers);
	else if (!strcmp(n, "fail_exhausted"))
		v = atomic64_read(&pool->fail_exhausted);
	else
		v = atomic64_read(&pool->fail_fragmented);
	return sysfs_emit(page, "%llu\n", (unsigned long long)v);
}

#define PHYSMEM_POOL_ATTR(_name)					\
	static struct kobj_attribute physmem_pool_attr_##_name =	\
		__ATTR(_name, 0444, physmem_pool_attr_show, NULL)

PHYSMEM_POOL_ATTR(kind);
PHYSMEM_POOL_ATTR(total);
PHYSMEM_POOL_ATTR(free);
PHYSMEM_POOL_ATTR(largest_free);
PHYSMEM_POOL_ATTR(buffers);
PHYSMEM_POOL_ATTR(fail_exhausted);
PHYSMEM_POOL_ATTR(fail_fragmented);

static struct attribute *physmem_pool_attrs[] = {
	&physmem_pool_attr_kind.attr,
	&physmem_pool_attr_total.attr,
	&physmem_pool_attr_free.attr,
	&physmem_pool_attr_largest_free.attr,
	&physmem_pool_attr_buffers.attr,
	&physmem_pool_attr_fail_exhausted.attr,
	&physmem_pool_attr_fail_fragmented.attr,
	NULL,
};
ATTRIBUTE_GROUPS(physmem_pool);

/* The last sysfs reference is gone: undo the provider and free the pool. */
static void physmem_pool_release(struct kobject *kobj)
{
	struct physmem_pool *pool = container_of(kobj, struct physmem_pool, kobj);

	if (pool->gen)
		gen_pool_destroy(pool->gen);
	if (pool->pgmap_live)
		memunmap_pages(&pool->pgmap);
	if (pool->res)
		release_mem_region(pool->base, pool->total);
	kfree(pool);
}

static const struct kobj_type physmem_pool_ktype = {
	.release = physmem_pool_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = physmem_pool_groups,
};

/* A genalloc pool of page granularity over [base, base + total). */
static int physmem_pool_make_gen(struct physmem_pool *pool)
{
	pool->gen = gen_pool_create(PAGE_SHIFT, NUMA_NO_NODE);
	if (!pool->gen)
		return -ENOMEM;
	return gen_pool_add(pool->gen, pool->base, pool->total, NUMA_NO_NODE);
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 19, 0)
/* Pool pages are never freed to the kernel: their pool owns them. */
static void physmem_pool_folio_free(struct folio *folio)
{
}

static const struct dev_pagemap_ops physmem_pool_pgmap_ops = {
	.folio_free = physmem_pool_folio_free,
};
#else
/* Pool pages are never freed to the kernel: their pool owns them. */
static void physmem_pool_page_free(struct page *page)
{
}

static const struct dev_pagemap_ops physmem_pool_pgmap_ops = {
	.page_free = physmem_pool_page_free,
};
#endif

/* pool_memmap=SIZE@ADDR: claim the range and give it struct pages. */
static int physmem_pool_setup_memmap(struct physmem_pool *pool, char *arg)
{
	u64 size, addr, last;
	char *end;
	void *vaddr;

	size = memparse(arg, &end);
	if (*end != '@') {
		pr_err("physmem: pool_memmap=%s: want SIZE@ADDR\n", arg);
		return -EINVAL;
	}
	addr = memparse(end + 1, &end);
	if (*end || !size || !addr || !IS_ALIGNED(size, SZ_2M) ||
	    !IS_ALIGNED(addr, SZ_2M) || check_add_overflow(addr, size - 1, &last) ||
	    last > PHYS_ADDR_MAX) {
		pr_err("physmem: pool_memmap=%s: SIZE and ADDR must be non-zero multiples of 2 MiB\n",
		       arg);
		return -EINVAL;
	}
	if (region_intersects(addr, size, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("physmem: pool_memmap=%s: the range overlaps System RAM (boot with memmap=SIZE$ADDR)\n",
		       arg);
		return -EINVAL;
	}
	strscpy(pool->name, "memmap", sizeof(pool->name));
	pool->kind = PHYSMEM_POOL_KIND_MEMMAP;
	pool->base = addr;
	pool->total = size;
	pool->res = request_mem_region(addr, size, "physmem pool");
	if (!pool->res) {
		pr_err("physmem: pool_memmap=%s: the range is in use\n", arg);
		return -EBUSY;
	}

	pool->pgmap.type = MEMORY_DEVICE_GENERIC;
	pool->pgmap.range.start = addr;
	pool->pgmap.range.end = last;
	pool->pgmap.nr_range = 1;
	pool->pgmap.ops = &physmem_pool_pgmap_ops;
	vaddr = memremap_pages(&pool->pgmap, NUMA_NO_NODE);
	if (IS_ERR(vaddr)) {
		pr_err("physmem: pool_memmap=%s: memremap_pages failed: %ld\n",
		       arg, PTR_ERR(vaddr));
		return PTR_ERR(vaddr);
	}
	pool->pgmap_live = true;
	return physmem_pool_make_gen(pool);
}

/* pool_reserve_mem=NAME: the reserve_mem region of that name. */
static int physmem_pool_setup_reserve_mem(struct physmem_pool *pool, char *arg)
{
#ifdef PHYSMEM_POOL_RESERVE_MEM
	phys_addr_t start, size, first, last;

	if (!*arg || strlen(arg) >= sizeof(pool->name)) {
		pr_err("physmem: pool_reserve_mem=%s: want a name of 1 to %zu characters\n",
		       arg, sizeof(pool->name) - 1);
		return -EINVAL;
	}
	if (!reserve_mem_find_by_name(arg, &start, &size)) {
		pr_err("physmem: pool_reserve_mem=%s: no such region (boot with reserve_mem=SIZE:ALIGN:%s)\n",
		       arg, arg);
		return -EINVAL;
	}
	first = PAGE_ALIGN(start);
	last = (start + size) & PAGE_MASK;
	if (!first || last <= first) {
		pr_err("physmem: pool_reserve_mem=%s: the region holds no whole page\n",
		       arg);
		return -EINVAL;
	}
	strscpy(pool->name, arg, sizeof(pool->name));
	pool->kind = PHYSMEM_POOL_KIND_RESERVE_MEM;
	pool->base = first;
	pool->total = last - first;
	return physmem_pool_make_gen(pool);
#else
	pr_err("physmem: pool_reserve_mem=%s: this kernel has no reserve_mem\n",
	       arg);
	return -EINVAL;
#endif
}

/* pool_cma=NAME|default: a CMA area, shared with the rest of the kernel. */
static int physmem_pool_setup_cma(struct physmem_pool *pool, char *arg)
{
#ifdef PHYSMEM_POOL_CMA
	struct cma *cma = NULL;
	unsigned int i;

	if (!strcmp(arg, "default")) {
		cma = dev_get_cma_area(NULL);
	} else {
		for (i = 0; i < 64; i++) {
			cma = dma_contiguous_get_area_by_idx(i);
			if (!cma || !strcmp(cma_get_name(cma), arg))
				break;
		}
		if (i == 64)
			cma = NULL;
	}
	if (!cma) {
		pr_err("physmem: pool_cma=%s: no such CMA area (boot with cma=SIZE)\n",
		       arg);
		return -EINVAL;
	}
	strscpy(pool->name, cma_get_name(cma), sizeof(pool->name));
	pool->kind = PHYSMEM_POOL_KIND_CMA;
	pool->flags = PHYSMEM_POOL_INFO_SHARED;
	pool->cma = cma;
	return 0;
#else
	pr_err("physmem: pool_cma=%s: this kernel exports no CMA allocator to modules\n",
	       arg);
	return -EINVAL;
#endif
}

/* Make one pool with @setup and list it under pools/ in sysfs. */
static int physmem_pool_add(int (*setup)(struct physmem_pool *, char *),
			    char *arg)
{
	struct physmem_pool *pool;
	int ret;

	pool = kzalloc_obj(*pool, GFP_KERNEL);
	if (!pool)
		return -ENOMEM;
	kobject_init(&pool->kobj, &physmem_pool_ktype);
	ret = setup(pool, arg);
	if (ret)
		goto err_put;
	ret = kobject_add(&pool->kobj, physmem_pool_dir, "%s", pool->name);
	if (ret) {
		pr_err("physmem: cannot list pool %s in sysfs: %d\n",
		       pool->name, ret);
		goto err_put;
	}
	physmem_pools[physmem_pool_count++] = pool;
	pr_info("physmem: pool %s (%s): %llu MiB at %pa\n", pool->name,
		physmem_pool_kind_names[pool->kind], pool->total >> 20,
		&pool->base);
	return 0;

err_put:
	kobject_put(&pool->kobj);
	return ret;
}

/* Module load: make the pools the parameters ask for, under @dev in sysfs. */
int physmem_pool_init(struct device *dev)
{
	int ret = 0;

	physmem_pool_dir = kobject_create_and_add("pools", &dev->kobj);
	if (!physmem_pool_dir)
		return -ENOMEM;
	if (physmem_pool_memmap_arg && *physmem_pool_memmap_arg)
		ret = physmem_pool_add(physmem_pool_setup_memmap,
				       physmem_pool_memmap_arg);
	if (!ret && physmem_pool_reserve_mem_arg && *physmem_pool_reserve_mem_arg)
		ret = physmem_pool_add(physmem_pool_setup_reserve_mem,
				       physmem_pool_reserve_mem_arg);
	if (!ret && physmem_pool_cma_arg && *physmem_pool_cma_arg)
		ret = physmem_pool_add(physmem_pool_setup_cma,
				       physmem_pool_cma_arg);
	if (ret)
		physmem_pool_exit();
	return ret;
}

/* Module unload, after every buffer is freed: tear the pools down. */
void physmem_pool_exit(void)
{
	while (physmem_pool_count) {
		struct physmem_pool *pool = physmem_pools[--physmem_pool_count];

		physmem_pools[physmem_pool_count] = NULL;
		kobject_put(&pool->kobj);
	}
	kobject_put(physmem_pool_dir);
	physmem_pool_dir = NULL;
}
