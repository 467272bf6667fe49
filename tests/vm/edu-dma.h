/* SPDX-License-Identifier: GPL-2.0 */
/* edu-dma.h: drive QEMU's "edu" PCI device's DMA engine from user space. */
#ifndef EDU_DMA_H
#define EDU_DMA_H

#include <stddef.h>
#include <stdint.h>

/* QEMU 7.2 rejects a transfer of the whole 4 KiB device buffer. */
#define EDU_DMA_MAX		2048u
#define EDU_DMA_DEV_BASE	0x40000u
#define EDU_DMA_DEV_SIZE	4096u

struct edu_dma {
	int bar_fd;
	volatile uint8_t *bar;
	size_t bar_len;
	char path[320];
};

/* Find the edu device, enable bus mastering, map BAR0. -errno on failure. */
int edu_dma_open(struct edu_dma *edu);
void edu_dma_close(struct edu_dma *edu);
/* Copy len bytes from bus address addr into the device at dev_off. */
int edu_dma_to_device(struct edu_dma *edu, uint64_t addr, uint32_t dev_off,
		      uint32_t len);
/* Copy len bytes from the device at dev_off to bus address addr. */
int edu_dma_to_ram(struct edu_dma *edu, uint32_t dev_off, uint64_t addr,
		   uint32_t len);

#endif
