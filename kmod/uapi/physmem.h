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
#define PHYSMEM_ALLOC_FLAGS	(PHYSMEM_ALLOC_CONTIG)

/* Buffer kind flags reported by PHYSMEM_IOC_SEGMENTS. */
#define PHYSMEM_BUF_CONTIG	(1U << 0)	/* allocated with PHYSMEM_ALLOC_CONTIG */
#define PHYSMEM_BUF_PINNED	(1U << 1)	/* pages of a memfd, PHYSMEM_IOC_PIN */

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
};
#define PHYSMEM_ALLOC_SIZE_VER0	48
#define PHYSMEM_ALLOC_SIZE_VER1	64

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
 * sees them.  A device behind a translating IOMMU must import the dma-buf
 * through its own driver instead.
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
};
#define PHYSMEM_SEGMENTS_SIZE_VER0	48

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

/*
 * mmap of /dev/physmem itself: the offset is a physical address.  Only for
 * CAP_SYS_RAWIO, MAP_SHARED, and only for a range lying inside one physically
 * contiguous run of a live physmem buffer (else -EPERM).  The mapping keeps
 * the buffer alive.  Module parameter allow_any_ram=1 (dangerous) also
 * allows any page of ordinary System RAM.
 */

#endif /* _UAPI_LINUX_PHYSMEM_H */
