/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * physmem_edu_importer.h: the ioctl interface of the test importer module
 * (tests/vm/edu-importer), shared with the user-space test helper.
 *
 * /dev/physmem-edu-importer: each open file imports at most one dma-buf,
 * attaches QEMU's edu device to it through the DMA API and moves data
 * between the buffer and user space with edu's DMA engine.
 */
#ifndef PHYSMEM_EDU_IMPORTER_H
#define PHYSMEM_EDU_IMPORTER_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Largest transfer: QEMU 7.2's edu rejects the whole 4 KiB device buffer. */
#define PEI_XFER_MAX	2048u

/*
 * PEI_IOC_IMPORT: dma_buf_get(fd), dma_buf_attach() with edu's device,
 * dma_buf_map_attachment(DMA_BIDIRECTIONAL).  Reports, for byte @offset of
 * the buffer, the DMA address edu uses and the physical address of the page
 * behind it (they differ when the mapping bounces through swiotlb).
 */
struct pei_import {
	__s32 fd;		/* in: dma-buf fd */
	__u32 reserved;		/* must be zero */
	__u64 offset;		/* in: byte of the buffer to report */
	__u64 size;		/* out: dma-buf size */
	__u64 dma_addr;		/* out: edu's DMA address of @offset */
	__u64 phys_addr;	/* out: physical address of @offset */
	__u64 dma_mask;		/* out: edu's DMA mask */
};

/*
 * PEI_IOC_DEV_WRITE: the device writes @data[0..len) into the buffer at
 * @offset (edu DMA: coherent source -> edu -> the attachment's DMA address).
 * PEI_IOC_DEV_READ: the device reads the buffer at @offset into @data (edu
 * DMA: the attachment's DMA address -> edu -> coherent buffer).  The range
 * must lie in one DMA segment of the mapping.
 */
struct pei_xfer {
	__u64 offset;
	__u32 len;		/* 1..PEI_XFER_MAX */
	__u32 reserved;		/* must be zero */
	__u8 data[PEI_XFER_MAX];
};

#define PEI_IOC_MAGIC		'E'
#define PEI_IOC_IMPORT		_IOWR(PEI_IOC_MAGIC, 0x01, struct pei_import)
#define PEI_IOC_DEV_WRITE	_IOW(PEI_IOC_MAGIC, 0x02, struct pei_xfer)
#define PEI_IOC_DEV_READ	_IOWR(PEI_IOC_MAGIC, 0x03, struct pei_xfer)
#define PEI_IOC_DETACH		_IO(PEI_IOC_MAGIC, 0x04)

#endif /* PHYSMEM_EDU_IMPORTER_H */
