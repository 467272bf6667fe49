// SPDX-License-Identifier: GPL-2.0
/*
 * Buffer allocation, accounting and the dma-buf exporter.
 *
 * Every buffer is kept as an array of its pages, so one code path builds
 * the scatter-gather table (physically adjacent pages merged into runs) for
 * every kind.  A scatter-gather allocation is made of whole compound blocks
 * (up to the buddy allocator's largest order), each held by one reference
 * on its head and freed with one put_page(); a contiguous one is a split
 * block (its tail beyond the size goes back at once), held per page; a
 * pinned buffer holds one reference per page index, even within a large
 * folio of the memfd; a pool buffer (physmem-pool.c) holds none: its pool
 * owns the pages, and the run goes back to the pool in physmem_buf_free().
 *
 * Page lifetime.  Who holds a reference to a buffer's page:
 *
 *  - the buffer itself, one reference per block (see above), from
 *    allocation or pin until physmem_buf_free();
 *  - allocated buffers only: the PTEs of dma-buf mappings.  Their fault
 *    handler hands out the page itself (so get_user_pages(), O_DIRECT,
 *    vmsplice work on the mapping), and each PTE holds a reference until
 *    it is unmapped;
 *  - allocated buffers only: whoever got the page from such a mapping with
 *    get_user_pages(): pipe buffers (vmsplice), O_DIRECT I/O in flight,
 *    io_uring fixed buffers, skb frags.  These references can outlive
 *    every mapping and the dma-buf itself;
 *  - pinned buffers: the memfd's page cache, for as long as the page is in
 *    the file.  Pinned buffers are mapped VM_PFNMAP (PTEs without page
 *    references or rmap), so the file's truncation never meets a physmem
 *    VMA and no get_user_pages() reference can be taken through one;
 *  - pool buffers: their pool.  They are mapped VM_PFNMAP too, so nothing
 *    outside can take a reference through a mapping; should some kernel
 *    user hold one anyway when the buffer is released, it drains like an
 *    allocated buffer, and its run goes back only after that;
 *  - importers (dma_buf_attach/map) and physical-address mappings of
 *    /dev/physmem hold no page reference but keep the buffer's kref: an
 *    attachment through the dma-buf file, a phys VMA directly.
 *
 * The buffer's kref is held by the dma-buf (its file lives as long as any
 * fd, dma-buf mapping or importer) and by each phys VMA.  When the last one
 * goes (physmem_buf_release()):
 *
 *  - a pinned buffer, or an allocated one whose every page has a count of
 *    1 (only the buffer's own reference), is taken off physmem_buf_list,
 *    counted out of the live counters and goes to the quarantine (or is
 *    freed at once); only the final physmem_buf_free() uncharges it from
 *    max_total_mb, restores the pages' cache type and drops the pages;
 *  - an allocated buffer with a page referenced from outside (count > 1)
 *    is *draining*: it stays on physmem_buf_list (PHYSMEM_IOC_QUERY reports
 *    it alive, with PHYSMEM_QUERY_RELEASED), stays charged and counted, and
 *    keeps a module reference.  A delayed work re-checks draining buffers
 *    (after 100 ms, backing off to 2 s) and sends each on to the
 *    quarantine once all its pages are back to a count of 1.  No new
 *    reference can appear meanwhile: no mapping of it is left, and
 *    physmem_buf_find_phys() skips draining buffers.
 *
 * Locking: physmem_buf_lock (a spinlock) guards physmem_buf_list and
 * physmem_buf_ids (the same buffers by id, so that PHYSMEM_IOC_QUERY is a
 * tree lookup, not a walk of every buffer), the listed and draining
 * fields; physmem_buf_stats_lock guards the counters and the quarantine
 * list and may be taken under it.  physmem_buf_lock is held for list
 * and tree work (and root's lookup of a physical address in every
 * buffer's segments), never for a look at a buffer's pages: the last
 * put of a buffer can run in any process (whoever closes the last fd or
 * unmaps the last mapping, at whatever priority), and the daemon's
 * PHYSMEM_IOC_QUERY takes the lock on its event loop.  The holder of a
 * spinlock is not preempted (except on PREEMPT_RT, where the sections are
 * still short and of bounded length), so no such process can keep the daemon
 * waiting, and the page scans (a whole array for a pool buffer, or for one
 * allocated from fragmented memory) run outside it (physmem_buf_put(),
 * physmem_buf_drain_fn()).
 *
 * Per buffer, attach_lock guards the attachment list and each attachment's
 * mapped state, vmap_lock the kernel mapping.  The dma-buf core calls
 * map/unmap_dma_buf and vmap/vunmap with the dma-buf's reservation lock
 * held (since 6.2; on 6.1 importers may hold it), and begin/end_cpu_access
 * without it, after waiting for fences unlocked.  The order is therefore
 * reservation lock -> attach_lock, reservation lock -> vmap_lock; the two
 * buffer mutexes are never held together (begin/end_cpu_access drop
 * attach_lock before taking vmap_lock), and neither is held across a call
 * back into the dma-buf core, so no path takes the reservation lock under
 * either.
 */
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/fcntl.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#ifdef CONFIG_X86
#include <asm/set_memory.h>
#endif

#include "physmem-internal.h"

/* Largest scatterlist entry of the module's own table. */
#define PHYSMEM_BUF_MAX_SEG	SZ_1G

static DEFINE_SPINLOCK(physmem_buf_lock);
static LIST_HEAD(physmem_buf_list);
static struct rb_root physmem_buf_ids = RB_ROOT;
static atomic64_t physmem_buf_next_id = ATOMIC64_INIT(0);

/* Live counters, guarded by physmem_buf_stats_lock. */
static DEFINE_SPINLOCK(physmem_buf_stats_lock);
static u64 physmem_buf_charged;		/* bytes charged, published or not */
static u64 physmem_buf_count;
static u64 physmem_buf_bytes;
static u64 physmem_buf_cache_bytes[PHYSMEM_MODE_COUNT];
static u64 physmem_buf_pinned_count;
static u64 physmem_buf_pinned_bytes;
static u64 physmem_buf_draining_count;
static u64 physmem_buf_draining_bytes;

static const struct dma_buf_ops physmem_buf_ops;

/*
 * Late DMA: a device still writing into a buffer after its last user let go
 * would write into memory the kernel already reused.  With quarantine_ms
 * set, released buffers keep their pages that long first (still charged
 * against max_total_mb); the list is guarded by physmem_buf_stats_lock.
 */
static LIST_HEAD(physmem_buf_quarantine);
static u64 physmem_buf_quarantine_bytes;
static void physmem_buf_quarantine_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(physmem_buf_quarantine_work,
			    physmem_buf_quarantine_fn);

/*
 * Released allocated buffers whose pages are still referenced from outside
 * (pipes, get_user_pages) stay on physmem_buf_list with ->draining set; this
 * work checks them again every physmem_buf_drain_delay jiffies.
 */
#define PHYSMEM_BUF_DRAIN_FIRST	msecs_to_jiffies(100)
#define PHYSMEM_BUF_DRAIN_MAX	msecs_to_jiffies(2000)
static unsigned long physmem_buf_drain_delay;	/* under physmem_buf_lock */
static unsigned long physmem_buf_drain_due;	/* jiffies; under physmem_buf_lock */
static void physmem_buf_drain_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(physmem_buf_drain_work, physmem_buf_drain_fn);

/* The limit on all live buffers together, in bytes. */
u64 physmem_buf_max_total_bytes(void)
{
	unsigned int mb = READ_ONCE(physmem_max_total_mb);

	if (!mb)
		return ((u64)totalram_pages() << PAGE_SHIFT) / 2;
	return (u64)mb << 20;
}

/* Charge @size bytes against max_total_mb. */
static int physmem_buf_charge(u64 size)
{
	u64 limit = physmem_buf_max_total_bytes();
	int ret = 0;

	spin_lock(&physmem_buf_stats_lock);
	if (size > limit || physmem_buf_charged > limit - size)
		ret = -ENOMEM;
	else
		physmem_buf_charged += size;
	spin_unlock(&physmem_buf_stats_lock);
	return ret;
}

/* Count a published buffer in, or (@sign < 0) out of, the live counters. */
static void physmem_buf_count_live(struct physmem_buf *buf, int sign)
{
	u64 n = sign > 0 ? 1 : -1ULL;
	u64 bytes = sign > 0 ? buf->size : -buf->size;

	spin_lock(&physmem_buf_stats_lock);
	physmem_buf_count += n;
	physmem_buf_bytes += bytes;
	physmem_buf_cache_bytes[buf->cache] += bytes;
	if (buf->flags & PHYSMEM_BUF_PINNED) {
		physmem_buf_pinned_count += n;
		physmem_buf_pinned_bytes += bytes;
	}
	spin_unlock(&physmem_buf_stats_lock);
}

/* Fill the counter and limit fields of @info. */
void physmem_buf_info(struct physmem_dev_info *info)
{
	unsigned int i;

	spin_lock(&physmem_buf_stats_lock);
	info->buffers = physmem_buf_count;
	info->bytes = physmem_buf_bytes;
	for (i = 0; i < PHYSMEM_MODE_COUNT; i++)
		info->cache_bytes[i] = physmem_buf_cache_bytes[i];
	info->pinned_buffers = physmem_buf_pinned_count;
	info->pinned_bytes = physmem_buf_pinned_bytes;
	spin_unlock(&physmem_buf_stats_lock);

	info->version = PHYSMEM_ABI_VERSION;
	info->max_buffer_bytes = (u64)READ_ONCE(physmem_max_buffer_mb) << 20;
	info->max_total_bytes = physmem_buf_max_total_bytes();
	info->max_contig_bytes = PAGE_SIZE << PHYSMEM_MAX_ORDER;
	info->page_size = PAGE_SIZE;
	info->reserved = 0;
}

/* The user page protection for a buffer of cache mode @cache. */
pgprot_t physmem_buf_pgprot(u32 cache, pgprot_t prot)
{
	switch (cache) {
	case PHYSMEM_MODE_WC:
		return pgprot_writecombine(prot);
	case PHYSMEM_MODE_UNCACHED:
		return pgprot_noncached(prot);
	default:
		return prot;
	}
}

/*
 * Give the kernel's linear mapping of the buffer the buffer's cache type, so
 * that no page is mapped cached and uncached at once (x86 PAT forbids such
 * aliases), or back to write-back when @cache is PHYSMEM_MODE_CACHED.
 */
static int physmem_buf_set_cache(struct physmem_buf *buf, u32 cache)
{
#ifdef CONFIG_X86
	struct scatterlist *sg;
	unsigned int i;
	int ret = 0;

	if (cache == PHYSMEM_MODE_CACHED) {
		for_each_sgtable_sg(&buf->sgt, sg, i) {
			if (i >= buf->cache_runs)
				break;
			set_memory_wb((unsigned long)sg_virt(sg),
				      sg->length >> PAGE_SHIFT);
		}
		buf->cache_runs = 0;
		return 0;
	}

	for_each_sgtable_sg(&buf->sgt, sg, i) {
		unsigned long addr = (unsigned long)sg_virt(sg);
		int n = sg->length >> PAGE_SHIFT;

		if (cache == PHYSMEM_MODE_WC)
			ret = set_memory_wc(addr, n);
		else
			ret = set_memory_uc(addr, n);
		if (ret)
			break;
		buf->cache_runs++;
	}
	if (ret)
		physmem_buf_set_cache(buf, PHYSMEM_MODE_CACHED);
	return ret;
#else
	return 0;
#endif
}

/*
 * How many page-array entries the block starting at index @i spans: a whole
 * compound block of an allocated buffer is held by one reference on its head
 * and freed at once; a pinned buffer holds one reference per index.
 */
static unsigned long physmem_buf_block_pages(struct physmem_buf *buf,
					     unsigned long i)
{
	if ((buf->flags & PHYSMEM_BUF_PINNED) || !buf->pages[i])
		return 1;
	return 1UL << compound_order(buf->pages[i]);
}

/*
 * Make an unpublished buffer of @size bytes (a multiple of PAGE_SIZE):
 * charge it and allocate its page array.  The pages are the caller's job.
 */
struct physmem_buf *physmem_buf_new(u64 size, u32 flags, u32 cache)
{
	struct physmem_buf *buf;
	int ret;

	ret = physmem_buf_charge(size);
	if (ret)
		return ERR_PTR(ret);

	buf = kzalloc_obj(*buf, GFP_KERNEL);
	if (!buf) {
		ret = -ENOMEM;
		goto err_uncharge;
	}
	buf->size = size;
	buf->npages = size >> PAGE_SHIFT;
	buf->flags = flags;
	buf->cache = cache;
	kref_init(&buf->ref);
	INIT_LIST_HEAD(&buf->node);
	mutex_init(&buf->vmap_lock);
	mutex_init(&buf->attach_lock);
	INIT_LIST_HEAD(&buf->attachments);
	INIT_LIST_HEAD(&buf->bindings);

	buf->pages = kvcalloc(buf->npages, sizeof(*buf->pages),
			      GFP_KERNEL | __GFP_NOWARN);
	if (!buf->pages) {
		ret = -ENOMEM;
		goto err_free;
	}
	return buf;

err_free:
	kfree(buf);
err_uncharge:
	spin_lock(&physmem_buf_stats_lock);
	physmem_buf_charged -= size;
	spin_unlock(&physmem_buf_stats_lock);
	return ERR_PTR(ret);
}

/* Undo physmem_buf_new() and whatever of physmem_buf_publish() was done. */
void physmem_buf_free(struct physmem_buf *buf)
{
	unsigned long i, n;

	/*
	 * Importers vmap through the dma-buf, whose file they hold: no mapping
	 * can be left by now.  Drop one anyway rather than leak it.
	 */
	if (buf->vaddr)
		vunmap(buf->vaddr);
	mutex_destroy(&buf->vmap_lock);
	if (buf->dma_mapped)
		dma_unmap_sgtable(physmem_dev, &buf->sgt, DMA_BIDIRECTIONAL, 0);
	if (buf->cache_runs)
		physmem_buf_set_cache(buf, PHYSMEM_MODE_CACHED);
	sg_free_table(&buf->sgt);
	if (buf->pool)
		physmem_pool_give_back(buf);
	for (i = 0; i < buf->npages && !buf->pool; i += n) {
		/* the block's size before its last reference goes */
		n = physmem_buf_block_pages(buf, i);
		if (buf->pages[i])
			put_page(buf->pages[i]);
	}
	kvfree(buf->pages);

	spin_lock(&physmem_buf_stats_lock);
	physmem_buf_charged -= buf->size;
	spin_unlock(&physmem_buf_stats_lock);
	kfree(buf);
}

/* Free quarantined buffers whose time is up; come back for the rest. */
static void physmem_buf_quarantine_fn(struct work_struct *work)
{
	struct physmem_buf *buf, *tmp;
	unsigned long next = 0;
	bool more = false;
	LIST_HEAD(expired);

	spin_lock(&physmem_buf_stats_lock);
	list_for_each_entry_safe(buf, tmp, &physmem_buf_quarantine, node) {
		if (time_before(jiffies, buf->expires)) {
			if (!more || time_before(buf->expires, next))
				next = buf->expires;
			more = true;
			continue;
		}
		list_move_tail(&buf->node, &expired);
		physmem_buf_quarantine_bytes -= buf->size;
	}
	spin_unlock(&physmem_buf_stats_lock);

	list_for_each_entry_safe(buf, tmp, &expired, node)
		physmem_buf_free(buf);
	if (more)
		schedule_delayed_work(&physmem_buf_quarantine_work,
				      time_after(next, jiffies) ? next - jiffies : 0);
}

/* A released buffer: free it now, or after quarantine_ms. */
static void physmem_buf_quarantine_add(struct physmem_buf *buf)
{
	unsigned int ms = READ_ONCE(physmem_quarantine_ms);

	if (!ms) {
		physmem_buf_free(buf);
		return;
	}
	buf->expires = jiffies + msecs_to_jiffies(ms);
	spin_lock(&physmem_buf_stats_lock);
	list_add_tail(&buf->node, &physmem_buf_quarantine);
	physmem_buf_quarantine_bytes += buf->size;
	spin_unlock(&physmem_buf_stats_lock);
	schedule_delayed_work(&physmem_buf_quarantine_work,
			      msecs_to_jiffies(ms));
}

u64 physmem_buf_quarantined_bytes(void)
{
	u64 bytes;

	spin_lock(&physmem_buf_stats_lock);
	bytes = physmem_buf_quarantine_bytes;
	spin_unlock(&physmem_buf_stats_lock);
	return bytes;
}

/* Module exit: no buffer can be released any more; free the quarantine. */
void physmem_buf_quarantine_flush(void)
{
	struct physmem_buf *buf, *tmp;
	LIST_HEAD(all);

	cancel_delayed_work_sync(&physmem_buf_quarantine_work);
	spin_lock(&physmem_buf_stats_lock);
	list_splice_init(&physmem_buf_quarantine, &all);
	physmem_buf_quarantine_bytes = 0;
	spin_unlock(&physmem_buf_stats_lock);
	list_for_each_entry_safe(buf, tmp, &all, node)
		physmem_buf_free(buf);
}

/*
 * Does a page of an allocated buffer have a reference besides the buffer's
 * own (a pipe buffer, a get_user_pages() pin, an skb frag)?  A compound
 * block's pages share their head's count, so one look per block suffices.
 * Called without physmem_buf_lock, from process context; it may sleep.
 * Not inlined: the VM tests probe it (a kprobe reads physmem_buf_lock).
 */
static noinline bool physmem_buf_pages_busy(struct physmem_buf *buf)
{
	unsigned long i, n = 0;

	if (buf->flags & PHYSMEM_BUF_PINNED)
		return false;
	for (i = 0; i < buf->npages; i += physmem_buf_block_pages(buf, i)) {
		if (page_count(buf->pages[i]) > 1)
			return true;
		if (!(++n % 4096))
			cond_resched();
	}
	return false;
}

/* Order of physmem_buf_ids: by id (ids are unique, never reused). */
static bool physmem_buf_id_less(struct rb_node *a, const struct rb_node *b)
{
	return rb_entry(a, struct physmem_buf, id_node)->id <
	       rb_entry(b, struct physmem_buf, id_node)->id;
}

static int physmem_buf_id_cmp(const void *key, const struct rb_node *node)
{
	u64 id = *(const u64 *)key;
	u64 other = rb_entry(node, struct physmem_buf, id_node)->id;

	if (id < other)
		return -1;
	return id > other;
}

/* Take a listed buffer off physmem_buf_list and physmem_buf_ids; lock held. */
static void physmem_buf_unlist(struct physmem_buf *buf)
{
	lockdep_assert_held(&physmem_buf_lock);
	list_del(&buf->node);
	rb_erase(&buf->id_node, &physmem_buf_ids);
	buf->listed = false;
}

/* Count a buffer into (@sign > 0) or out of the draining counters. */
static void physmem_buf_count_draining(struct physmem_buf *buf, int sign)
{
	spin_lock(&physmem_buf_stats_lock);
	if (sign > 0) {
		physmem_buf_draining_count++;
		physmem_buf_draining_bytes += buf->size;
	} else {
		physmem_buf_draining_count--;
		physmem_buf_draining_bytes -= buf->size;
	}
	spin_unlock(&physmem_buf_stats_lock);
}

/* Report the draining counters. */
void physmem_buf_draining(u64 *ret_count, u64 *ret_bytes)
{
	spin_lock(&physmem_buf_stats_lock);
	*ret_count = physmem_buf_draining_count;
	*ret_bytes = physmem_buf_draining_bytes;
	spin_unlock(&physmem_buf_stats_lock);
}

/* A released buffer none of whose pages is busy: on to the quarantine. */
static void physmem_buf_retire(struct physmem_buf *buf)
{
	physmem_buf_count_live(buf, -1);
	physmem_buf_quarantine_add(buf);
}

/*
 * Check the draining buffers again: retire those whose pages are all back,
 * come back later (backing off) for the rest.
 */
static void physmem_buf_drain_fn(struct work_struct *work)
{
	struct physmem_buf *buf, *tmp;
	unsigned int done = 0;
	bool more = false;
	LIST_HEAD(check);
	LIST_HEAD(ready);

	/*
	 * Only this work takes a buffer off draining, and module exit
	 * cancels it first, so the buffers gathered here stay listed and
	 * allocated while their pages are looked at without the lock.
	 */
	spin_lock(&physmem_buf_lock);
	list_for_each_entry(buf, &physmem_buf_list, node)
		if (buf->draining)
			list_add_tail(&buf->drain_node, &check);
	spin_unlock(&physmem_buf_lock);

	list_for_each_entry(buf, &check, drain_node)
		buf->drain_busy = physmem_buf_pages_busy(buf);

	spin_lock(&physmem_buf_lock);
	list_for_each_entry_safe(buf, tmp, &check, drain_node) {
		list_del(&buf->drain_node);
		if (buf->drain_busy) {
			more = true;
			continue;
		}
		buf->draining = false;
		physmem_buf_unlist(buf);
		list_add_tail(&buf->node, &ready);
	}
	/* A release that made a buffer draining meanwhile queued it again. */
	if (more && !delayed_work_pending(&physmem_buf_drain_work)) {
		physmem_buf_drain_delay = min(physmem_buf_drain_delay * 2,
					      PHYSMEM_BUF_DRAIN_MAX);
		physmem_buf_drain_due = jiffies + physmem_buf_drain_delay;
		schedule_delayed_work(&physmem_buf_drain_work,
				      physmem_buf_drain_delay);
	}
	spin_unlock(&physmem_buf_lock);

	list_for_each_entry_safe(buf, tmp, &ready, node) {
		list_del_init(&buf->node);
		physmem_buf_count_draining(buf, -1);
		physmem_buf_retire(buf);
		done++;
	}
	/*
	 * Each draining buffer held the module; module exit cancels this
	 * work synchronously, so returning after the last put is safe.
	 */
	while (done--)
		module_put(THIS_MODULE);
}

/* Module exit: no buffer can be draining any more (each holds the module). */
void physmem_buf_drain_stop(void)
{
	cancel_delayed_work_sync(&physmem_buf_drain_work);
}

/*
 * The last reference is gone; physmem_buf_lock is held, and dropped here.
 * @busy: a page had a reference from outside when physmem_buf_put() looked.
 */
static void physmem_buf_release(struct physmem_buf *buf, bool busy)
	__releases(&physmem_buf_lock)
{
	if (buf->listed && busy) {
		/*
		 * Pages still referenced from outside: keep the buffer listed,
		 * charged and counted until they come back.  The dma-buf or
		 * phys VMA whose release got us here still holds the module.
		 */
		__module_get(THIS_MODULE);
		buf->draining = true;
		physmem_buf_count_draining(buf, 1);
		physmem_buf_drain_delay = PHYSMEM_BUF_DRAIN_FIRST;
		/*
		 * Look within PHYSMEM_BUF_DRAIN_FIRST, but never later than a
		 * look already due: releases coming faster than that must not
		 * keep pushing every draining buffer's look back.
		 */
		if (!delayed_work_pending(&physmem_buf_drain_work) ||
		    time_after(physmem_buf_drain_due,
			       jiffies + PHYSMEM_BUF_DRAIN_FIRST)) {
			physmem_buf_drain_due = jiffies + PHYSMEM_BUF_DRAIN_FIRST;
			mod_delayed_work(system_wq, &physmem_buf_drain_work,
					 PHYSMEM_BUF_DRAIN_FIRST);
		}
		spin_unlock(&physmem_buf_lock);
		return;
	}
	if (buf->listed)
		physmem_buf_unlist(buf);
	spin_unlock(&physmem_buf_lock);

	physmem_buf_retire(buf);
}

/* Take a reference on a buffer the caller already holds one on. */
void physmem_buf_get(struct physmem_buf *buf)
{
	kref_get(&buf->ref);
}

/*
 * Drop a reference; the last one releases the buffer.  Its pages are looked
 * at before physmem_buf_lock is taken (see the locking comment at the top).
 * The look can be taken early because, once the dma-buf is released (which
 * it is by the time a count of one can fall to zero), only a phys mapping
 * can reach the pages, and only root makes one: get_user_pages() refuses
 * its VM_PFNMAP, but a kernel user such as KVM may still take a page
 * reference through it.  So a phys mapping made after the look began
 * (phys_gen moved) counts as busy: the buffer drains and is looked at again
 * later.  Otherwise the pages' outside references can only have gone away
 * since the look: a page seen free stays free.  When the count was not the
 * last after all (a phys mapping holds a reference), nothing else happens.
 */
void physmem_buf_put(struct physmem_buf *buf)
{
	unsigned long gen;
	bool busy;

	/* Before the decrement; pairs with physmem_buf_find_phys()'s release. */
	gen = smp_load_acquire(&buf->phys_gen);
	if (refcount_dec_not_one(&buf->ref.refcount))
		return;
	/* Order the look after whatever dropped the other references. */
	smp_mb();
	busy = physmem_buf_pages_busy(buf);
	spin_lock(&physmem_buf_lock);
	if (!refcount_dec_and_test(&buf->ref.refcount)) {
		spin_unlock(&physmem_buf_lock);
		return;
	}
	if (buf->phys_gen != gen)
		busy = true;
	physmem_buf_release(buf, busy);
}

/* The buffer behind @dmabuf, or NULL if another exporter made it. */
struct physmem_buf *physmem_buf_from_dmabuf(struct dma_buf *dmabuf)
{
	if (dmabuf->ops != &physmem_buf_ops)
		return NULL;
	return dmabuf->priv;
}

/*
 * Find the live buffer one of whose physically contiguous runs holds all of
 * [start, start + len), and take a reference on it.
 */
struct physmem_buf *physmem_buf_find_phys(phys_addr_t start, u64 len)
{
	struct physmem_buf *buf, *found = NULL;
	struct scatterlist *sg;
	unsigned int i;

	spin_lock(&physmem_buf_lock);
	list_for_each_entry(buf, &physmem_buf_list, node) {
		/* released memory gets no new mapping */
		if (buf->draining)
			continue;
		for_each_sgtable_sg(&buf->sgt, sg, i) {
			phys_addr_t run = sg_phys(sg);

			if (start >= run && start - run <= sg->length &&
			    len <= sg->length - (start - run)) {
				found = buf;
				break;
			}
		}
		if (found) {
			/* listed, not draining: a non-zero count under the lock */
			kref_get(&found->ref);
			/* for a last put's look at the pages taken meanwhile */
			smp_store_release(&found->phys_gen, found->phys_gen + 1);
			break;
		}
	}
	spin_unlock(&physmem_buf_lock);
	return found;
}

/*
 * Is the buffer with this id still alive (held by an fd, a mapping or an
 * importer, or released but with pages still referenced from outside)?
 * Returns 0, its size in @ret_size and PHYSMEM_QUERY_* in @ret_flags, or
 * -ENOENT once its memory is no longer held.
 */
int physmem_buf_query(u64 id, u64 *ret_size, u32 *ret_flags)
{
	struct physmem_buf *buf;
	struct rb_node *node;
	int ret = -ENOENT;

	spin_lock(&physmem_buf_lock);
	node = rb_find(&id, &physmem_buf_ids, physmem_buf_id_cmp);
	if (node) {
		buf = rb_entry(node, struct physmem_buf, id_node);
		*ret_size = buf->size;
		*ret_flags = buf->draining ? PHYSMEM_QUERY_RELEASED : 0;
		ret = 0;
	}
	spin_unlock(&physmem_buf_lock);
	return ret;
}

/*
 * Report the buffer's DMA segments (adjacent runs merged): write up to
 * @capacity of them to @out and return how many there are in all.
 */
long physmem_buf_segments(struct physmem_buf *buf,
			  struct physmem_dma_segment __user *out, u32 capacity)
{
	struct physmem_dma_segment seg = { 0, 0 };
	struct scatterlist *sg;
	unsigned int i;
	long count = 0;

	for_each_sgtable_dma_sg(&buf->sgt, sg, i) {
		dma_addr_t addr = sg_dma_address(sg);
		u64 len = sg_dma_len(sg);

		if (count && seg.addr + seg.len == addr) {
			seg.len += len;
			continue;
		}
		if (count && count <= capacity &&
		    copy_to_user(&out[count - 1], &seg, sizeof(seg)))
			return -EFAULT;
		seg.addr = addr;
		seg.len = len;
		count++;
	}
	if (count && count <= capacity &&
	    copy_to_user(&out[count - 1], &seg, sizeof(seg)))
		return -EFAULT;
	return count;
}

/*
 * Map @n pages of the buffer from page index @pgoff at user address @addr
 * in one batch.  Stops early (and says so only by its return value) at a
 * PTE that is already present, e.g. one a racing fault put there.
 */
static int physmem_buf_insert(struct vm_area_struct *vma, unsigned long addr,
			      unsigned long pgoff, unsigned long n)
{
	struct physmem_buf *buf = vma->vm_private_data;

	return vm_insert_pages(vma, addr, &buf->pages[pgoff], &n);
}

/*
 * Fault handler of a buffer mapping.
 *
 * An allocated buffer's pages are handed out themselves (each PTE takes a
 * reference), so get_user_pages() and O_DIRECT work on the mapping.  One
 * fault maps the whole PMD-sized window of the mapping around the faulting
 * address with vm_insert_pages() (one page-table lock per batch), so a
 * full touch of a buffer takes one fault per 2 MiB, not one per page: the
 * faulting page and the rest of its window first, then the window's
 * beginning.
 *
 * A pinned buffer's page belongs to a memfd's page cache and must never be
 * rmapped through a VMA that is not in the file's i_mmap (truncation could
 * neither unmap nor account it): its PFN is inserted into the VM_PFNMAP
 * mapping instead, one page per fault.  So is a pool buffer's, whose pages
 * belong to its pool (ZONE_DEVICE or CMA pages must not be rmapped or
 * pinned through a mapping either).
 */
static vm_fault_t physmem_buf_vm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct physmem_buf *buf = vma->vm_private_data;
	unsigned long addr = vmf->address & PAGE_MASK;
	unsigned long start, end, n;
	int ret;

	if (vmf->pgoff >= buf->npages)
		return VM_FAULT_SIGBUS;
	if (buf->flags & (PHYSMEM_BUF_PINNED | PHYSMEM_BUF_POOL))
		return vmf_insert_pfn_prot(vma, addr,
					   page_to_pfn(buf->pages[vmf->pgoff]),
					   vma->vm_page_prot);

	/* mmap() checked that the VMA lies within the buffer */
	start = max(ALIGN_DOWN(addr, PMD_SIZE), vma->vm_start);
	end = min(ALIGN_DOWN(addr, PMD_SIZE) + PMD_SIZE, vma->vm_end);
	n = (end - addr) >> PAGE_SHIFT;
	if (n > buf->npages - vmf->pgoff)
		n = buf->npages - vmf->pgoff;

	/*
	 * -EBUSY: a racing fault mapped a page of the window first.  -EFAULT:
	 * the page table went away between two of vm_insert_pages()' batches
	 * (7.x frees an emptied one on MADV_DONTNEED, CONFIG_PT_RECLAIM), or a
	 * table above it could not be allocated.  Both leave the faulting page
	 * possibly unmapped; returning without it makes the access fault again,
	 * and the fault path allocates the tables itself (or reports OOM).
	 */
	ret = physmem_buf_insert(vma, addr, vmf->pgoff, n);
	if (ret == -ENOMEM)
		return VM_FAULT_OOM;
	if (ret && ret != -EBUSY && ret != -EFAULT)
		return VM_FAULT_SIGBUS;
	/* the faulting page is in (or a racing fault's); fill in behind it */
	n = (addr - start) >> PAGE_SHIFT;
	if (n)
		physmem_buf_insert(vma, start, vmf->pgoff - n, n);
	return VM_FAULT_NOPAGE;
}

static const struct vm_operations_struct physmem_buf_vm_ops = {
	.fault = physmem_buf_vm_fault,
};

/*
 * mmap of the dma-buf fd.  Pages are inserted on fault, so mapping a huge
 * buffer costs nothing up front.  An allocated buffer's mapping is
 * VM_MIXEDMAP of real struct pages (vm_insert_pages() requires the flag
 * before the first fault, under the mmap lock held for writing), so
 * get_user_pages() and O_DIRECT work on cached mappings; a pinned or pool
 * buffer's mapping is VM_PFNMAP, where get_user_pages() fails (EFAULT).
 */
static int physmem_buf_mmap(struct dma_buf *dmabuf, struct vm_area_struct *vma)
{
	struct physmem_buf *buf = dmabuf->priv;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff > buf->npages ||
	    vma_pages(vma) > buf->npages - vma->vm_pgoff)
		return -EINVAL;

	vma->vm_page_prot = physmem_buf_pgprot(buf->cache, vma->vm_page_prot);
	if (buf->flags & (PHYSMEM_BUF_PINNED | PHYSMEM_BUF_POOL))
		physmem_vm_flags_set(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND |
				     VM_DONTDUMP);
	else
		physmem_vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND |
				     VM_DONTDUMP);
	vma->vm_ops = &physmem_buf_vm_ops;
	vma->vm_private_data = buf;
	return 0;
}

/*
 * The direction to sync a mapping made in @map_dir for a CPU access in @dir:
 * a bidirectional mapping may be synced in any direction, any other only in
 * its own (the DMA API's rule; a device that only reads the buffer through a
 * DMA_TO_DEVICE mapping has nothing to copy back).
 */
static enum dma_data_direction physmem_buf_sync_dir(enum dma_data_direction map_dir,
						    enum dma_data_direction dir)
{
	return map_dir == DMA_BIDIRECTIONAL ? dir : map_dir;
}

/*
 * Run @fn over the buffer's kernel mapping (dma_buf_vmap()), if it has one,
 * in pieces the int size of the *_kernel_vmap_range() helpers can hold.
 */
static void physmem_buf_vmap_range(struct physmem_buf *buf,
				   void (*fn)(void *vaddr, int size))
{
	u64 off, len;

	mutex_lock(&buf->vmap_lock);
	if (buf->vaddr) {
		for (off = 0; off < buf->size; off += len) {
			len = min_t(u64, buf->size - off, SZ_1G);
			fn(buf->vaddr + off, len);
		}
	}
	mutex_unlock(&buf->vmap_lock);
}

/*
 * DMA_BUF_IOCTL_SYNC start: make device writes visible to the CPU.
 *
 * Every mapping a device may have written through is synced: physmem_dev's
 * (its addresses are the ones user space is told) and each importer's
 * mapped attachment, with that importer's device.  An importer's device DMAs
 * through its own mapping, which may be a swiotlb bounce buffer or a
 * non-coherent IOMMU mapping; only a sync of that mapping copies or
 * invalidates what the CPU would otherwise read stale.  Then the kernel
 * mapping of dma_buf_vmap(), whose lines an aliasing cache keeps apart from
 * the linear mapping.
 *
 * The pages end up holding the last copy: physmem_dev's mapping first, then
 * the attachments in the order they attached.  When two of them bounce, the
 * later one's bounce buffer overwrites, whole, what the earlier one brought
 * back, whichever device wrote.  So only one device may write a buffer
 * between two syncs, and an importer whose device only reads maps it
 * DMA_TO_DEVICE (never copied back).  docs/COHERENCY.md says the same.
 */
static int physmem_buf_begin_cpu_access(struct dma_buf *dmabuf,
					enum dma_data_direction dir)
{
	struct physmem_buf *buf = dmabuf->priv;
	struct physmem_attach *pa;

	dma_sync_sgtable_for_cpu(physmem_dev, &buf->sgt, dir);
	mutex_lock(&buf->attach_lock);
	list_for_each_entry(pa, &buf->attachments, node)
		if (pa->mapped)
			dma_sync_sgtable_for_cpu(pa->dev, &pa->sgt,
						 physmem_buf_sync_dir(pa->dir, dir));
	mutex_unlock(&buf->attach_lock);
	physmem_buf_vmap_range(buf, invalidate_kernel_vmap_range);
	return 0;
}

/*
 * DMA_BUF_IOCTL_SYNC end: make CPU writes visible to every device, in the
 * reverse order of begin: the kernel mapping is written back first, then
 * each mapping is synced for its device (a bounce buffer gets a fresh copy
 * of the pages).
 */
static int physmem_buf_end_cpu_access(struct dma_buf *dmabuf,
				      enum dma_data_direction dir)
{
	struct physmem_buf *buf = dmabuf->priv;
	struct physmem_attach *pa;

	physmem_buf_vmap_range(buf, flush_kernel_vmap_range);
	mutex_lock(&buf->attach_lock);
	list_for_each_entry_reverse(pa, &buf->attachments, node)
		if (pa->mapped)
			dma_sync_sgtable_for_device(pa->dev, &pa->sgt,
						    physmem_buf_sync_dir(pa->dir, dir));
	mutex_unlock(&buf->attach_lock);
	dma_sync_sgtable_for_device(physmem_dev, &buf->sgt, dir);
	return 0;
}

/*
 * An importer attaches: give it its own table, split to its segment limit,
 * and list it so CPU access syncs reach its mapping.
 */
static int physmem_buf_attach(struct dma_buf *dmabuf,
			      struct dma_buf_attachment *attach)
{
	struct physmem_buf *buf = dmabuf->priv;
	struct physmem_attach *pa;
	int ret;

	pa = kzalloc_obj(*pa, GFP_KERNEL);
	if (!pa)
		return -ENOMEM;
	ret = sg_alloc_table_from_pages_segment(&pa->sgt, buf->pages,
						buf->npages, 0, buf->size,
						dma_get_max_seg_size(attach->dev),
						GFP_KERNEL);
	if (ret) {
		kfree(pa);
		return ret;
	}
	pa->dev = attach->dev;
	attach->priv = pa;
	mutex_lock(&buf->attach_lock);
	list_add_tail(&pa->node, &buf->attachments);
	mutex_unlock(&buf->attach_lock);
	return 0;
}

static void physmem_buf_detach(struct dma_buf *dmabuf,
			       struct dma_buf_attachment *attach)
{
	struct physmem_buf *buf = dmabuf->priv;
	struct physmem_attach *pa = attach->priv;

	mutex_lock(&buf->attach_lock);
	list_del(&pa->node);
	mutex_unlock(&buf->attach_lock);
	sg_free_table(&pa->sgt);
	kfree(pa);
}

/*
 * Importers' mappings are made and torn down with CPU syncs, whatever the
 * buffer's cache mode.  DMA_ATTR_SKIP_CPU_SYNC would save nothing on x86
 * (dma-direct does no cache maintenance for its coherent devices) but would
 * lose data wherever the mapping bounces: dma_direct_unmap_page() passes it
 * on to swiotlb_tbl_unmap_single(), which then does not copy the device's
 * last writes back from the bounce buffer.  On a non-coherent architecture
 * the linear mapping of a write-combined or uncached buffer stays cacheable
 * (its cache type is only changed on x86), so the maintenance is needed
 * there too.  physmem_dev's own mapping is made the same way.
 */
static struct sg_table *physmem_buf_map_dma_buf(struct dma_buf_attachment *attach,
						enum dma_data_direction dir)
{
	struct physmem_buf *buf = attach->dmabuf->priv;
	struct physmem_attach *pa = attach->priv;
	int ret;

	mutex_lock(&buf->attach_lock);
	if (pa->mapped) {
		ret = -EBUSY;
		goto out;
	}
	ret = dma_map_sgtable(attach->dev, &pa->sgt, dir, 0);
	if (ret)
		goto out;
	pa->mapped = true;
	pa->dir = dir;
out:
	mutex_unlock(&buf->attach_lock);
	return ret ? ERR_PTR(ret) : &pa->sgt;
}

static void physmem_buf_unmap_dma_buf(struct dma_buf_attachment *attach,
				      struct sg_table *sgt,
				      enum dma_data_direction dir)
{
	struct physmem_buf *buf = attach->dmabuf->priv;
	struct physmem_attach *pa = attach->priv;

	mutex_lock(&buf->attach_lock);
	if (pa->mapped) {
		dma_unmap_sgtable(attach->dev, &pa->sgt, pa->dir, 0);
		pa->mapped = false;
	}
	mutex_unlock(&buf->attach_lock);
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 18, 0)
/*
 * A kernel mapping of the whole buffer for importers that touch it with the
 * CPU (vb2 vaddr, fbdev emulation).  One vmap() per buffer, with the
 * buffer's cache type, shared and counted; since 6.2 the caller holds the
 * dma-buf's reservation lock, so only our own mutex is taken here.
 */
static int physmem_buf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct physmem_buf *buf = dmabuf->priv;
	void *vaddr;
	int ret = 0;

	if (buf->npages > UINT_MAX)
		return -E2BIG;

	mutex_lock(&buf->vmap_lock);
	if (buf->vmap_count == UINT_MAX) {
		ret = -EOVERFLOW;
		goto out;
	}
	if (!buf->vaddr) {
		vaddr = vmap(buf->pages, buf->npages, VM_MAP,
			     physmem_buf_pgprot(buf->cache, PAGE_KERNEL));
		if (!vaddr) {
			ret = -ENOMEM;
			goto out;
		}
		buf->vaddr = vaddr;
	}
	buf->vmap_count++;
	iosys_map_set_vaddr(map, buf->vaddr);
out:
	mutex_unlock(&buf->vmap_lock);
	return ret;
}

/* Drop one importer's kernel mapping; the last one unmaps it. */
static void physmem_buf_vunmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct physmem_buf *buf = dmabuf->priv;

	mutex_lock(&buf->vmap_lock);
	if (buf->vmap_count && !--buf->vmap_count) {
		vunmap(buf->vaddr);
		buf->vaddr = NULL;
	}
	mutex_unlock(&buf->vmap_lock);
	iosys_map_clear(map);
}
#endif

/*
 * The last dma-buf file reference is gone.  Device bindings are unmapped
 * first: no device may reach a page once the buffer can be freed.
 */
static void physmem_buf_dmabuf_release(struct dma_buf *dmabuf)
{
	physmem_bind_release(dmabuf->priv);
	physmem_buf_put(dmabuf->priv);
}

static const struct dma_buf_ops physmem_buf_ops = {
	.attach = physmem_buf_attach,
	.detach = physmem_buf_detach,
	.map_dma_buf = physmem_buf_map_dma_buf,
	.unmap_dma_buf = physmem_buf_unmap_dma_buf,
	.release = physmem_buf_dmabuf_release,
	.begin_cpu_access = physmem_buf_begin_cpu_access,
	.end_cpu_access = physmem_buf_end_cpu_access,
	.mmap = physmem_buf_mmap,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 18, 0)
	.vmap = physmem_buf_vmap,
	.vunmap = physmem_buf_vunmap,
#endif
};

/*
 * Turn a buffer whose pages are all present into a live dma-buf: build the
 * run table, set the kernel mapping's cache type, map it for physmem_dev and
 * export it.  On failure the buffer is freed.
 */
int physmem_buf_publish(struct physmem_buf *buf)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp_info);
	struct dma_buf *dmabuf;
	int ret;

	ret = sg_alloc_table_from_pages_segment(&buf->sgt, buf->pages,
						buf->npages, 0, buf->size,
						PHYSMEM_BUF_MAX_SEG, GFP_KERNEL);
	if (ret)
		goto err_free;

	if (buf->cache != PHYSMEM_MODE_CACHED) {
		ret = physmem_buf_set_cache(buf, buf->cache);
		if (ret)
			goto err_free;
	}

	ret = dma_map_sgtable(physmem_dev, &buf->sgt, DMA_BIDIRECTIONAL, 0);
	if (ret)
		goto err_free;
	buf->dma_mapped = true;

	buf->id = atomic64_inc_return(&physmem_buf_next_id);
	exp_info.ops = &physmem_buf_ops;
	exp_info.size = buf->size;
	exp_info.flags = O_RDWR;
	exp_info.priv = buf;
	dmabuf = dma_buf_export(&exp_info);
	if (IS_ERR(dmabuf)) {
		ret = PTR_ERR(dmabuf);
		goto err_free;
	}
	buf->dmabuf = dmabuf;

	/* From here on the dma-buf owns the buffer's first reference. */
	physmem_buf_count_live(buf, 1);
	spin_lock(&physmem_buf_lock);
	list_add_tail(&buf->node, &physmem_buf_list);
	rb_add(&buf->id_node, &physmem_buf_ids, physmem_buf_id_less);
	buf->listed = true;
	spin_unlock(&physmem_buf_lock);
	return 0;

err_free:
	physmem_buf_free(buf);
	return ret;
}

/* Fill the page array with one contiguous, zeroed block. */
static int physmem_buf_alloc_contig(struct physmem_buf *buf)
{
	unsigned int order = get_order(buf->size);
	struct page *page;
	unsigned long i;

	page = alloc_pages(GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN, order);
	if (!page)
		return -ENOMEM;
	split_page(page, order);
	for (i = 0; i < (1UL << order); i++) {
		if (i < buf->npages)
			buf->pages[i] = page + i;
		else
			__free_page(page + i);
	}
	return 0;
}

/*
 * Fill the page array with zeroed blocks, largest orders first.  Big orders
 * are tried without direct reclaim (take what is free now); once an order
 * fails, only smaller ones are tried, down to single pages with reclaim.
 *
 * Blocks stay whole, as compound pages (vm_insert_pages() maps their pages
 * one by one, and a reference to any of them is a reference to the block):
 * the buffer holds one reference per block and frees each with one
 * put_page().  Order 1 is skipped: the kernel keeps some large-folio state
 * only for orders >= 2.
 */
static int physmem_buf_alloc_sg(struct physmem_buf *buf)
{
	const gfp_t big = (GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN |
			   __GFP_NORETRY | __GFP_COMP) & ~__GFP_DIRECT_RECLAIM;
	unsigned int order = PHYSMEM_MAX_ORDER;
	unsigned long done = 0, i;
	struct page *page;

	while (done < buf->npages) {
		unsigned long left = buf->npages - done;

		if (fatal_signal_pending(current))
			return -EINTR;
		while (order && (1UL << order) > left)
			order--;
		if (order == 1)
			order = 0;
		page = alloc_pages(order ? big : GFP_KERNEL | __GFP_ZERO |
				   __GFP_NOWARN, order);
		if (!page) {
			if (!order)
				return -ENOMEM;
			order--;
			continue;
		}
		for (i = 0; i < (1UL << order); i++)
			buf->pages[done + i] = page + i;
		done += 1UL << order;
		cond_resched();
	}
	return 0;
}

/* PHYSMEM_IOC_ALLOC: a new, zeroed, published buffer of at least @length. */
struct physmem_buf *physmem_buf_alloc(u64 length, u32 flags, u32 cache)
{
	u64 max = (u64)READ_ONCE(physmem_max_buffer_mb) << 20;
	struct physmem_buf *buf;
	u64 size;
	int ret;

	if (flags & ~PHYSMEM_ALLOC_FLAGS || cache >= PHYSMEM_MODE_COUNT)
		return ERR_PTR(-EINVAL);
	if (!length || check_add_overflow(length, (u64)PAGE_SIZE - 1, &size))
		return ERR_PTR(-EINVAL);
	size &= PAGE_MASK;
	if (size > max)
		return ERR_PTR(-EINVAL);
	if ((flags & PHYSMEM_ALLOC_CONTIG) &&
	    size > (PAGE_SIZE << PHYSMEM_MAX_ORDER))
		return ERR_PTR(-EINVAL);

	buf = physmem_buf_new(size, flags & PHYSMEM_ALLOC_CONTIG ?
			      PHYSMEM_BUF_CONTIG : 0, cache);
	if (IS_ERR(buf))
		return buf;

	if (flags & PHYSMEM_ALLOC_CONTIG)
		ret = physmem_buf_alloc_contig(buf);
	else
		ret = physmem_buf_alloc_sg(buf);
	if (ret) {
		physmem_buf_free(buf);
		return ERR_PTR(ret);
	}

	ret = physmem_buf_publish(buf);
	if (ret)
		return ERR_PTR(ret);
	return buf;
}

/*
 * PHYSMEM_IOC_ALLOC with PHYSMEM_ALLOC_POOL: a new, zeroed, published buffer
 * of at least @length, one run from pool @index.  Pool buffers are charged
 * against max_buffer_mb and max_total_mb like any other.  -ENOSPC with
 * *@ret_status set when the pool cannot hold it.
 */
struct physmem_buf *physmem_buf_alloc_pool(u64 length, u32 flags, u32 index,
					   u32 cache, u32 *ret_status)
{
	u64 max = (u64)READ_ONCE(physmem_max_buffer_mb) << 20;
	struct physmem_pool *pool;
	struct physmem_buf *buf;
	u64 size;
	int ret;

	if (flags & ~PHYSMEM_ALLOC_FLAGS || cache >= PHYSMEM_MODE_COUNT)
		return ERR_PTR(-EINVAL);
	if (!length || check_add_overflow(length, (u64)PAGE_SIZE - 1, &size))
		return ERR_PTR(-EINVAL);
	size &= PAGE_MASK;
	if (size > max)
		return ERR_PTR(-EINVAL);
	pool = physmem_pool_get(index);
	if (!pool)
		return ERR_PTR(-ENODEV);
	ret = physmem_pool_check_cache(pool, cache);
	if (ret)
		return ERR_PTR(ret);

	buf = physmem_buf_new(size, PHYSMEM_BUF_CONTIG | PHYSMEM_BUF_POOL, cache);
	if (IS_ERR(buf))
		return buf;
	ret = physmem_pool_take(pool, buf, ret_status);
	if (ret) {
		physmem_buf_free(buf);
		return ERR_PTR(ret);
	}

	ret = physmem_buf_publish(buf);
	if (ret)
		return ERR_PTR(ret);
	return buf;
}
