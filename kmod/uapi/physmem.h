/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * physmem: pinned, DMA-able buffers exported as dma-buf file descriptors.
 *
 * This header is the user-space ABI of /dev/physmem.  It is shared by the
 * kernel module (kmod/) and the daemon's kmod backend, and needs nothing but
 * <linux/types.h> and <linux/ioctl.h>.
 *
 * Extension rules: every struct starts with "__u32 size", which the caller
 * sets to sizeof() of the struct it was compiled with.  The kernel accepts
 * any size >= the PHYSMEM_*_SIZE_VER0 of that struct; a bigger struct from a
 * newer user space is accepted as long as the bytes the kernel does not know
 * are zero (otherwise -E2BIG), and output fields are copied back only up to
 * the caller's size.  The ioctl dispatcher matches the ioctl number without
 * its size bits, so a grown struct keeps working with an older module.
 * All reserved and padding fields must be zero.  ALLOC and PIN also require
 * their output fields to be zero on input (so that they can become inputs
 * later); SEGMENTS and INFO ignore the input value of output fields, so one
 * struct can be reused for the count-then-fetch pattern.
 */
#ifndef _UAPI_LINUX_PHYSMEM_H
#define _UAPI_LINUX_PHYSMEM_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define PHYSMEM_DEVICE_PATH	"/dev/physmem"
#define PHYSMEM_ABI_VERSION	1

/* Cache modes of a buffer (struct physmem_alloc.cache). */
#define PHYSMEM_MODE_CACHED	0	/* write-back, the fast default */
#define PHYSMEM_MODE_WC	1	/* write-combined */
#define PHYSMEM_MODE_UNCACHED	2	/* uncached: CPU reads are very slow */
#define PHYSMEM_MODE_COUNT	3

/* Allocation flags (struct physmem_alloc.flags). */
#define PHYSMEM_ALLOC_CONTIG	(1U << 0)	/* one physically contiguous run */
#define PHYSMEM_ALLOC_POOL	(1U << 1)	/* one run from contiguous pool .pool */
#define PHYSMEM_ALLOC_FLAGS	(PHYSMEM_ALLOC_CONTIG | PHYSMEM_ALLOC_POOL)

/* Buffer kind flags reported by PHYSMEM_IOC_SEGMENTS. */
#define PHYSMEM_BUF_CONTIG	(1U << 0)	/* allocated with PHYSMEM_ALLOC_CONTIG */
#define PHYSMEM_BUF_PINNED	(1U << 1)	/* pages of a memfd, PHYSMEM_IOC_PIN */
#define PHYSMEM_BUF_POOL	(1U << 2)	/* one run from a contiguous pool */

/*
 * PHYSMEM_IOC_ALLOC: allocate a zeroed buffer and export it as a dma-buf.
 *
 * length is rounded up to the page size (actual_length).  Without
 * PHYSMEM_ALLOC_CONTIG the buffer is built from the largest free page blocks
 * first, so even multi-GiB buffers are a short segment list.  With it, the
 * buffer is one physically contiguous run; the largest such run is
 * max_contig_bytes of struct physmem_dev_info (the buddy allocator's largest
 * block: 4 MiB on x86-64 with 4 KiB pages).
 *
 * The returned fd is a dma-buf opened O_RDWR | O_CLOEXEC: mmap it
 * (MAP_SHARED only), pass it to importers (V4L2, DRM, ...), synchronise CPU
 * access with DMA_BUF_IOCTL_SYNC.  Closing the last fd and unmapping frees
 * the buffer.
 *
 * Since size 64 (PHYSMEM_ALLOC_SIZE_VER1) the caller may pass an array of
 * capacity entries at segments: up to capacity of the buffer's segments
 * (as PHYSMEM_IOC_SEGMENTS reports them) are written there, and
 * nr_segments is the total, so one call does what ALLOC + SEGMENTS did.
 * A module older than that refuses the larger struct with -E2BIG.
 *
 * Since size 72 (PHYSMEM_ALLOC_SIZE_VER2), PHYSMEM_ALLOC_POOL takes the
 * buffer from the contiguous pool with index pool (PHYSMEM_IOC_POOL_INFO):
 * one physically contiguous run of any size the pool can hold, never a
 * fallback to other memory.  With PHYSMEM_ALLOC_POOL, PHYSMEM_ALLOC_CONTIG
 * is implied.  Errors: -ENODEV no pool with that index; -ENOSPC the pool
 * cannot hold it, and then (only then) the struct is copied back with
 * pool_status PHYSMEM_POOL_EXHAUSTED (less free memory than asked) or
 * PHYSMEM_POOL_FRAGMENTED (enough free memory, no free run that long);
 * -EBUSY a CMA pool could not hand out the run (pages in use by others).
 */
struct physmem_alloc {
	__u32 size;		/* in: sizeof(struct physmem_alloc) */
	__u32 flags;		/* in: PHYSMEM_ALLOC_* */
	__u64 length;		/* in: bytes wanted */
	__u32 cache;		/* in: PHYSMEM_CACHE_* */
	__s32 fd;		/* out: dma-buf fd */
	__u64 id;		/* out: buffer id, unique while the module is loaded */
	__u64 actual_length;	/* out: length rounded up to the page size */
	__u32 nr_segments;	/* out: number of DMA segments */
	__u32 reserved;		/* must be zero */
	__u64 segments;		/* in: user pointer to struct physmem_dma_segment[] */
	__u32 capacity;		/* in: entries available at segments (0: none) */
	__u32 reserved2;	/* must be zero */
	__u32 pool;		/* in: pool index, with PHYSMEM_ALLOC_POOL (else 0) */
	__u32 pool_status;	/* out: PHYSMEM_POOL_* on -ENOSPC; in: zero */
};
#define PHYSMEM_ALLOC_SIZE_VER0	48
#define PHYSMEM_ALLOC_SIZE_VER1	64
#define PHYSMEM_ALLOC_SIZE_VER2	72

/* struct physmem_alloc.pool_status */
#define PHYSMEM_POOL_OK		0
#define PHYSMEM_POOL_EXHAUSTED	1	/* less free memory than asked for */
#define PHYSMEM_POOL_FRAGMENTED	2	/* enough free memory, no run that long */

/*
 * PHYSMEM_IOC_PIN: pin [offset, offset + length) of a memfd and export those
 * pages as a dma-buf (cached).  offset and length must be page aligned and
 * inside the file; the memfd must be a shmem memfd sealed with F_SEAL_SHRINK
 * and must not carry F_SEAL_WRITE or F_SEAL_FUTURE_WRITE.  The pin never
 * allocates: every page of the range must be present and written (-ENODATA
 * for a hole, a swapped-out page or a fallocate()d page never written).
 * The buffer keeps its pages until it is freed, even if the memfd is
 * closed, truncated or has whole pages punched out of the range (the file
 * then no longer sees them).  A hole punched inside a huge (THP) shmem page
 * zeroes those bytes in place (the page stays in the file): the buffer
 * sees the zeroes.  Its mmap is a VM_PFNMAP mapping: get_user_pages()
 * on it (O_DIRECT, io_uring, vmsplice) fails with EFAULT; use the memfd's
 * own mapping for such I/O.
 *
 * Since size 64 (PHYSMEM_PIN_SIZE_VER1), segments and capacity work as for
 * PHYSMEM_IOC_ALLOC.
 */
struct physmem_pin {
	__u32 size;		/* in: sizeof(struct physmem_pin) */
	__u32 flags;		/* in: must be zero */
	__s32 memfd;		/* in: the memfd */
	__s32 fd;		/* out: dma-buf fd (O_RDWR | O_CLOEXEC) */
	__u64 offset;		/* in: byte offset in the memfd */
	__u64 length;		/* in: bytes to pin */
	__u64 id;		/* out: buffer id */
	__u32 nr_segments;	/* out: number of DMA segments */
	__u32 reserved;		/* must be zero */
	__u64 segments;		/* in: user pointer to struct physmem_dma_segment[] */
	__u32 capacity;		/* in: entries available at segments (0: none) */
	__u32 reserved2;	/* must be zero */
};
#define PHYSMEM_PIN_SIZE_VER0	48
#define PHYSMEM_PIN_SIZE_VER1	64

/* One DMA segment of a buffer. */
struct physmem_dma_segment {
	__u64 addr;		/* DMA (bus) address */
	__u64 len;		/* bytes */
};

/*
 * PHYSMEM_IOC_SEGMENTS: describe a buffer given its dma-buf fd.
 *
 * fd must be a dma-buf exported by this module (-EINVAL for any other file,
 * -EBADF when fd is not open).  Up to capacity entries are written to the
 * array at segments (may be 0 with capacity 0); count always receives the
 * total number of segments, so a caller can ask for the count first.
 *
 * Addresses are DMA addresses obtained with the DMA API for the physmem misc
 * device, which sits behind no IOMMU: they are the CPU physical addresses
 * as a device without IOMMU translation (or with the IOMMU in pass-through)
 * sees them.  A device behind a translating IOMMU needs the addresses of a
 * binding to it (PHYSMEM_IOC_BIND), or must import the dma-buf through its
 * own driver.
 *
 * Since size 64 (PHYSMEM_SEGMENTS_SIZE_VER1), a non-zero binding_id asks for
 * the segments of that binding of this buffer (its device's bus addresses)
 * instead; -ENOENT when the buffer has no such binding.  bind_flags then
 * says PHYSMEM_BIND_* of the binding; a revoked binding reports count 0 and
 * PHYSMEM_BIND_REVOKED.
 */
struct physmem_segments {
	__u32 size;		/* in: sizeof(struct physmem_segments) */
	__s32 fd;		/* in: buffer dma-buf fd */
	__u64 segments;		/* in: user pointer to struct physmem_dma_segment[] */
	__u32 capacity;		/* in: entries available at segments */
	__u32 count;		/* out: total number of segments */
	__u64 id;		/* out: buffer id */
	__u64 length;		/* out: buffer length in bytes */
	__u32 flags;		/* out: PHYSMEM_BUF_* */
	__u32 cache;		/* out: PHYSMEM_CACHE_* */
	__u64 binding_id;	/* in: 0, or a binding of this buffer */
	__u32 bind_flags;	/* out: PHYSMEM_BIND_* of that binding, else 0 */
	__u32 reserved;		/* must be zero */
};
#define PHYSMEM_SEGMENTS_SIZE_VER0	48
#define PHYSMEM_SEGMENTS_SIZE_VER1	64

/*
 * PHYSMEM_IOC_BIND: map a buffer for a PCI device through the DMA API (as an
 * importing driver of that device would) and report that device's bus
 * addresses of it.
 *
 * The device is named by PCI domain, bus and devfn (PCI_DEVFN(slot, fn)).
 * The mapping lives until PHYSMEM_IOC_UNBIND, until the buffer is released
 * (its dma-buf's last reference goes: the mapping is removed before any of
 * its pages can be freed), or until it is revoked: the device is removed,
 * or a driver that manages DMA itself (vfio-pci) binds to it.  After every
 * unmap the device's IOTLB is flushed, so it cannot reach the pages any more.
 *
 * out_flags says how the device sees memory: PHYSMEM_BIND_IOMMU (a
 * translating IOMMU domain: addresses are IOVAs valid only for this device's
 * IOMMU group), PHYSMEM_BIND_IDENTITY (IOMMU in pass-through) or
 * PHYSMEM_BIND_DIRECT (no IOMMU).  Without translation a page the device
 * cannot reach with its DMA mask is refused (-ERANGE), never bounced.
 *
 * Errors: -ENODEV no such PCI device; -EBUSY the device's DMA is managed by
 * its driver (vfio-pci) or it is going away, or its domain is neither a DMA
 * API domain nor pass-through; -EEXIST the buffer is bound to it already;
 * -ENOSPC a limit (bindings per buffer, bytes bound per device) is reached;
 * -ERANGE see above.  segments and capacity work as for PHYSMEM_IOC_ALLOC.
 */
#define PHYSMEM_BIND_BIDIRECTIONAL	0
#define PHYSMEM_BIND_TO_DEVICE		1	/* the device only reads */
#define PHYSMEM_BIND_FROM_DEVICE	2	/* the device only writes */

#define PHYSMEM_BIND_IOMMU	(1U << 0)	/* addresses are IOVAs */
#define PHYSMEM_BIND_IDENTITY	(1U << 1)	/* IOMMU pass-through */
#define PHYSMEM_BIND_DIRECT	(1U << 2)	/* no IOMMU */
#define PHYSMEM_BIND_REVOKED	(1U << 3)	/* device removed or taken over */

struct physmem_bind {
	__u32 size;		/* in: sizeof(struct physmem_bind) */
	__u32 flags;		/* in: must be zero */
	__s32 fd;		/* in: the buffer's dma-buf fd */
	__u32 pci_domain;	/* in */
	__u8 pci_bus;		/* in */
	__u8 pci_devfn;		/* in */
	__u16 dir;		/* in: PHYSMEM_BIND_BIDIRECTIONAL/TO/FROM_DEVICE */
	__u32 reserved;		/* must be zero */
	__u64 binding_id;	/* out: unique while the module is loaded */
	__u32 nr_segments;	/* out: number of the device's segments */
	__u32 out_flags;	/* out: PHYSMEM_BIND_* */
	__u64 segments;		/* in: user pointer to struct physmem_dma_segment[] */
	__u32 capacity;		/* in: entries available at segments (0: none) */
	__u32 reserved2;	/* must be zero */
};
#define PHYSMEM_BIND_SIZE_VER0	56

/*
 * PHYSMEM_IOC_UNBIND: remove a binding of the buffer (unmap it for its
 * device and flush the device's IOTLB).  -ENOENT when the buffer has no
 * such binding (a revoked binding can still be unbound).  binding_id 0
 * (never a binding's id) removes every binding of the buffer and succeeds
 * even when it has none: what a restarted physmemd does to the buffers it
 * takes back, whose bindings it no longer knows.
 */
struct physmem_unbind {
	__u32 size;		/* in: sizeof(struct physmem_unbind) */
	__u32 flags;		/* in: must be zero */
	__s32 fd;		/* in: the buffer's dma-buf fd */
	__u32 reserved;		/* must be zero */
	__u64 binding_id;	/* in */
};
#define PHYSMEM_UNBIND_SIZE_VER0	24

/*
 * PHYSMEM_IOC_POOL_INFO: describe contiguous pool number index (0, 1, ...;
 * -ENOENT past the last).  Pools are set up at module load from module
 * parameters; the same figures are in /sys/class/misc/physmem/pools/<name>/.
 * Sizes a pool cannot know (CMA areas shared with the kernel) are 0 with
 * PHYSMEM_POOL_INFO_SHARED set.
 */
#define PHYSMEM_POOL_KIND_MEMMAP	1	/* memmap=SIZE$ADDR region (x86) */
#define PHYSMEM_POOL_KIND_RESERVE_MEM	2	/* reserve_mem=SIZE:ALIGN:NAME */
#define PHYSMEM_POOL_KIND_CMA		3	/* a CMA area */

#define PHYSMEM_POOL_INFO_SHARED	(1U << 0)	/* others allocate from it too */

struct physmem_pool_info {
	__u32 size;		/* in: sizeof(struct physmem_pool_info) */
	__u32 index;		/* in */
	char name[16];		/* out: NUL-terminated */
	__u32 kind;		/* out: PHYSMEM_POOL_KIND_* */
	__u32 flags;		/* out: PHYSMEM_POOL_INFO_* */
	__u64 base;		/* out: first physical address (0: not one range) */
	__u64 total;		/* out: bytes */
	__u64 free;		/* out: bytes */
	__u64 largest_free;	/* out: bytes in the longest free run */
	__u64 buffers;		/* out: live buffers from this pool */
	__u64 fail_exhausted;	/* out: allocations refused, not enough free */
	__u64 fail_fragmented;	/* out: allocations refused, no run long enough */
};
#define PHYSMEM_POOL_INFO_SIZE_VER0	88

/*
 * PHYSMEM_IOC_INFO: module limits and live counters.  The same counters are
 * in /sys/class/misc/physmem/stats/.
 */
struct physmem_dev_info {
	__u32 size;		/* in: sizeof(struct physmem_dev_info) */
	__u32 version;		/* out: PHYSMEM_ABI_VERSION */
	__u64 buffers;		/* out: live buffers (allocated + pinned) */
	__u64 bytes;		/* out: bytes in live buffers */
	__u64 cache_bytes[PHYSMEM_MODE_COUNT]; /* out: bytes by cache mode */
	__u64 pinned_buffers;	/* out: live PHYSMEM_IOC_PIN buffers */
	__u64 pinned_bytes;	/* out: bytes in them */
	__u64 max_buffer_bytes;	/* out: limit for one buffer */
	__u64 max_total_bytes;	/* out: limit for all live buffers */
	__u64 max_contig_bytes;	/* out: largest PHYSMEM_ALLOC_CONTIG buffer */
	__u32 page_size;	/* out: PAGE_SIZE */
	__u32 reserved;		/* out: zero */
};
#define PHYSMEM_INFO_SIZE_VER0	96

/*
 * PHYSMEM_IOC_QUERY: is the buffer with this id still alive, i.e. held by
 * some fd, mapping or importer, or released while some of its pages are
 * still referenced elsewhere (a pipe after vmsplice, O_DIRECT or io_uring
 * I/O: the memory is still in use and stays charged)?  Returns 0 and its
 * length while it is, and -ENOENT once its memory has been freed.
 * out_flags has PHYSMEM_QUERY_RELEASED in the second case.  physmemd uses
 * it to keep a buffer charged to its owner until the memory is really gone.
 */
#define PHYSMEM_QUERY_RELEASED	(1U << 0)	/* no fd/mapping left, pages still referenced */

struct physmem_query {
	__u32 size;		/* in: sizeof(struct physmem_query) */
	__u32 flags;		/* in: must be zero */
	__u64 id;		/* in: buffer id */
	__u64 length;		/* out: buffer length in bytes; in: zero */
	__u32 out_flags;	/* out: PHYSMEM_QUERY_*; in: zero */
	__u32 reserved;		/* must be zero */
};

#define PHYSMEM_QUERY_SIZE_VER0	24	/* up to length */
#define PHYSMEM_QUERY_SIZE_VER1	32	/* with out_flags */

#define PHYSMEM_IOC_MAGIC	0xB9
#define PHYSMEM_IOC_ALLOC	_IOWR(PHYSMEM_IOC_MAGIC, 0x01, struct physmem_alloc)
#define PHYSMEM_IOC_PIN		_IOWR(PHYSMEM_IOC_MAGIC, 0x02, struct physmem_pin)
#define PHYSMEM_IOC_SEGMENTS	_IOWR(PHYSMEM_IOC_MAGIC, 0x03, struct physmem_segments)
#define PHYSMEM_IOC_INFO	_IOWR(PHYSMEM_IOC_MAGIC, 0x04, struct physmem_dev_info)
#define PHYSMEM_IOC_QUERY	_IOWR(PHYSMEM_IOC_MAGIC, 0x05, struct physmem_query)
#define PHYSMEM_IOC_BIND	_IOWR(PHYSMEM_IOC_MAGIC, 0x06, struct physmem_bind)
#define PHYSMEM_IOC_UNBIND	_IOW(PHYSMEM_IOC_MAGIC, 0x07, struct physmem_unbind)
#define PHYSMEM_IOC_POOL_INFO	_IOWR(PHYSMEM_IOC_MAGIC, 0x08, struct physmem_pool_info)

/*
 * mmap of /dev/physmem itself: the offset is a physical address.  Only for
 * CAP_SYS_RAWIO, MAP_SHARED, and only for a range lying inside one physically
 * contiguous run of a live physmem buffer (else -EPERM).  The mapping keeps
 * the buffer alive.  Module parameter allow_any_ram=1 (dangerous) also
 * allows any page of ordinary System RAM.
 */

#endif /* _UAPI_LINUX_PHYSMEM_H */
