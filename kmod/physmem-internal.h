/* SPDX-License-Identifier: GPL-2.0 */
/*
 * physmem: internal declarations shared by the module's source files.
 *
 * physmem-main.c   misc device /dev/physmem, ioctls, sysfs stats, parameters
 * physmem-buf.c    buffer allocation, accounting, dma-buf exporter
 * physmem-pin.c    pinning the pages of a memfd
 * physmem-phys.c   mmap of /dev/physmem by physical address
 * physmem-bind.c   device bindings (PHYSMEM_IOC_BIND/UNBIND)
 * physmem-pool.c   contiguous pools reserved at boot
 */
#ifndef PHYSMEM_INTERNAL_H
#define PHYSMEM_INTERNAL_H

#include <linux/dma-direction.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/types.h>
#include <linux/version.h>

#include "uapi/physmem.h"

struct dma_buf;
struct device;
struct physmem_pool;

/* Largest order the buddy allocator hands out (inclusive). */
#if defined(MAX_PAGE_ORDER)
#define PHYSMEM_MAX_ORDER	MAX_PAGE_ORDER
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define PHYSMEM_MAX_ORDER	MAX_ORDER
#else
#define PHYSMEM_MAX_ORDER	(MAX_ORDER - 1)
#endif

/*
 * kzalloc_obj() (7.0) allocates one zeroed object of P's type and returns a
 * pointer of that type; newer checkpatch asks for it.  Older kernels get the
 * untyped equivalent.
 */
#ifndef kzalloc_obj
#define kzalloc_obj(P, gfp) kzalloc(sizeof(P), (gfp))
#endif

/*
 * One buffer: allocated pages or the pinned pages of a memfd.
 *
 * Its lifetime is counted by @ref: the dma-buf holds one reference (dropped
 * by the dma-buf release callback) and every VMA of a physical-address
 * mapping of /dev/physmem holds one, so pages are never freed while any
 * mapping of them exists.  The final decrement happens under
 * physmem_buf_lock, which also guards physmem_buf_list.  An allocated buffer
 * released while its pages are referenced from outside is draining: see the
 * comment at the top of physmem-buf.c.
 */
struct physmem_buf {
	struct kref ref;
	struct list_head node;		/* on physmem_buf_list once published */
	struct rb_node id_node;		/* in physmem_buf_ids while on the list */
	struct dma_buf *dmabuf;		/* the exported dma-buf */
	u64 id;
	u64 size;			/* bytes, a multiple of PAGE_SIZE */
	unsigned long npages;
	struct page **pages;		/* npages pages; see physmem-buf.c on references */
	struct sg_table sgt;		/* physically contiguous runs, mapped for physmem_dev */
	unsigned int cache_runs;	/* sgt entries whose kernel mapping was re-typed */
	bool dma_mapped;
	bool listed;
	bool draining;			/* released, pages still referenced elsewhere */
	bool drain_busy;		/* physmem_buf_drain_fn() only */
	unsigned long phys_gen;		/* phys mappings made, under physmem_buf_lock */
	struct list_head drain_node;	/* physmem_buf_drain_fn() only */
	unsigned long expires;		/* jiffies: end of its quarantine */
	u32 flags;			/* PHYSMEM_BUF_* */
	u32 cache;			/* PHYSMEM_CACHE_* */
	struct mutex vmap_lock;		/* guards vaddr and vmap_count */
	void *vaddr;			/* kernel mapping for dma_buf_vmap() */
	unsigned int vmap_count;	/* importers holding vaddr */
	struct mutex attach_lock;	/* guards attachments and their state */
	struct list_head attachments;	/* struct physmem_attach, attach order */
	struct list_head bindings;	/* device bindings, physmem-bind.c */
	struct physmem_pool *pool;	/* PHYSMEM_BUF_POOL: owner of the pages */
};

/*
 * One importer's attachment: its device's own table of the buffer's pages,
 * and whether (and in which direction) it is mapped for that device.  CPU
 * access syncs (begin/end_cpu_access) sync every mapped one.
 */
struct physmem_attach {
	struct list_head node;		/* on physmem_buf.attachments */
	struct device *dev;
	struct sg_table sgt;
	bool mapped;
	enum dma_data_direction dir;	/* of the mapping, while mapped */
};

/* physmem-main.c */
extern struct device *physmem_dev;
extern unsigned int physmem_max_buffer_mb;
extern unsigned int physmem_max_total_mb;
extern bool physmem_allow_any_ram;
extern unsigned int physmem_quarantine_ms;
long physmem_main_copy_in(void *karg, size_t ksize, size_t ver0,
			  void __user *uarg);

/* physmem-buf.c */
struct physmem_buf *physmem_buf_new(u64 size, u32 flags, u32 cache);
void physmem_buf_free(struct physmem_buf *buf);
int physmem_buf_publish(struct physmem_buf *buf);
struct physmem_buf *physmem_buf_alloc(u64 length, u32 flags, u32 cache);
struct physmem_buf *physmem_buf_from_dmabuf(struct dma_buf *dmabuf);
struct physmem_buf *physmem_buf_find_phys(phys_addr_t start, u64 len);
int physmem_buf_query(u64 id, u64 *ret_size, u32 *ret_flags);
void physmem_buf_get(struct physmem_buf *buf);
void physmem_buf_put(struct physmem_buf *buf);
pgprot_t physmem_buf_pgprot(u32 cache, pgprot_t prot);
long physmem_buf_segments(struct physmem_buf *buf,
			  struct physmem_dma_segment __user *out, u32 capacity);
void physmem_buf_info(struct physmem_dev_info *info);
u64 physmem_buf_max_total_bytes(void);
u64 physmem_buf_quarantined_bytes(void);
void physmem_buf_quarantine_flush(void);
void physmem_buf_draining(u64 *ret_count, u64 *ret_bytes);
void physmem_buf_drain_stop(void);
struct physmem_buf *physmem_buf_alloc_pool(u64 length, u32 flags, u32 index,
					   u32 cache, u32 *ret_status);

/* physmem-pin.c */
struct physmem_buf *physmem_pin_memfd(int memfd, u64 offset, u64 length);

/* physmem-pool.c */
int physmem_pool_init(struct device *dev);
void physmem_pool_exit(void);
struct physmem_pool *physmem_pool_get(u32 index);
int physmem_pool_check_cache(struct physmem_pool *pool, u32 cache);
int physmem_pool_take(struct physmem_pool *pool, struct physmem_buf *buf,
		      u32 *ret_status);
void physmem_pool_give_back(struct physmem_buf *buf);
int physmem_pool_info(struct physmem_pool_info *info);

/* physmem-phys.c */
int physmem_phys_mmap(struct file *file, struct vm_area_struct *vma);

/* physmem-bind.c */
struct physmem_bind_stats {
	u64 bindings;			/* live bindings, revoked ones included */
	u64 bound_bytes;		/* bytes mapped for devices by them */
	u64 revoked;			/* revoked bindings not yet removed */
};

int physmem_bind_init(void);
void physmem_bind_exit(void);
void physmem_bind_release(struct physmem_buf *buf);
void physmem_bind_stats(struct physmem_bind_stats *ret);
long physmem_bind_ioctl_bind(void __user *uarg);
long physmem_bind_ioctl_unbind(void __user *uarg);
long physmem_bind_segments(struct physmem_buf *buf, u64 id,
			   struct physmem_dma_segment __user *out,
			   u32 capacity, u32 *ret_flags);

/* vm_flags became read-only with accessors in 6.3. */
static inline void physmem_vm_flags_set(struct vm_area_struct *vma,
					vm_flags_t flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

#endif /* PHYSMEM_INTERNAL_H */
