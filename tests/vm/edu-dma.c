// SPDX-License-Identifier: GPL-2.0
/*
 * edu-dma.c: drive QEMU's "edu" PCI device (1234:11e8) from user space as
 * root: bus mastering through the config file, registers through resource0.
 * Each transfer takes about 100 ms of virtual time (QEMU's edu timer).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "edu-dma.h"

#define EDU_REG_SRC	0x80
#define EDU_REG_DST	0x88
#define EDU_REG_COUNT	0x90
#define EDU_REG_CMD	0x98
#define EDU_CMD_RUN	0x1
#define EDU_CMD_TO_RAM	0x2

static int edu_dma_read_hex(const char *dir, const char *name, unsigned *ret)
{
	char path[512], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	return sscanf(buf, "%x", ret) == 1 ? 0 : -EIO;
}

/* The edu device with the lowest PCI address (a boot may have several). */
static int edu_dma_find(struct edu_dma *edu)
{
	const char *base = "/sys/bus/pci/devices";
	char best[64] = "";
	struct dirent *de;
	DIR *d = opendir(base);

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char dir[300];
		unsigned v, dv;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(best))
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", base, de->d_name);
		if (edu_dma_read_hex(dir, "vendor", &v) ||
		    edu_dma_read_hex(dir, "device", &dv))
			continue;
		if (v == 0x1234 && dv == 0x11e8 &&
		    (!best[0] || strcmp(de->d_name, best) < 0))
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	closedir(d);
	if (!best[0])
		return -ENODEV;
	snprintf(edu->path, sizeof(edu->path), "%s/%s", base, best);
	return 0;
}

static int edu_dma_enable_master(struct edu_dma *edu)
{
	char path[400];
	uint16_t cmd;
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/config", edu->path);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, &cmd, 2, 4) != 2) {
		ret = -EIO;
		goto out;
	}
	cmd |= 0x6;	/* memory space + bus master */
	if (pwrite(fd, &cmd, 2, 4) != 2)
		ret = -EIO;
out:
	close(fd);
	return ret;
}

int edu_dma_open(struct edu_dma *edu)
{
	char path[400];
	int ret;

	memset(edu, 0, sizeof(*edu));
	edu->bar_fd = -1;
	ret = edu_dma_find(edu);
	if (ret)
		return ret;
	ret = edu_dma_enable_master(edu);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/resource0", edu->path);
	edu->bar_fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (edu->bar_fd < 0)
		return -errno;
	edu->bar_len = 4096;
	edu->bar = mmap(NULL, edu->bar_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			edu->bar_fd, 0);
	if (edu->bar == MAP_FAILED) {
		ret = -errno;
		close(edu->bar_fd);
		edu->bar_fd = -1;
		edu->bar = NULL;
		return ret;
	}
	return 0;
}

void edu_dma_close(struct edu_dma *edu)
{
	if (edu->bar)
		munmap((void *)edu->bar, edu->bar_len);
	if (edu->bar_fd >= 0)
		close(edu->bar_fd);
	edu->bar = NULL;
	edu->bar_fd = -1;
}

static void edu_dma_write(struct edu_dma *edu, unsigned reg, uint64_t val)
{
	*(volatile uint64_t *)(edu->bar + reg) = val;
}

static uint64_t edu_dma_read(struct edu_dma *edu, unsigned reg)
{
	return *(volatile uint64_t *)(edu->bar + reg);
}

static int edu_dma_run(struct edu_dma *edu, uint64_t src, uint64_t dst,
		       uint32_t len, uint64_t cmd)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	int i;

	if (!len || len > EDU_DMA_MAX)
		return -EINVAL;
	edu_dma_write(edu, EDU_REG_SRC, src);
	edu_dma_write(edu, EDU_REG_DST, dst);
	edu_dma_write(edu, EDU_REG_COUNT, len);
	edu_dma_write(edu, EDU_REG_CMD, cmd | EDU_CMD_RUN);
	for (i = 0; i < 2000; i++) {	/* 10 s */
		if (!(edu_dma_read(edu, EDU_REG_CMD) & EDU_CMD_RUN))
			return 0;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

int edu_dma_to_device(struct edu_dma *edu, uint64_t addr, uint32_t dev_off,
		      uint32_t len)
{
	if (dev_off + (uint64_t)len > EDU_DMA_DEV_SIZE)
		return -EINVAL;
	return edu_dma_run(edu, addr, EDU_DMA_DEV_BASE + dev_off, len, 0);
}

int edu_dma_to_ram(struct edu_dma *edu, uint32_t dev_off, uint64_t addr,
		   uint32_t len)
{
	if (dev_off + (uint64_t)len > EDU_DMA_DEV_SIZE)
		return -EINVAL;
	return edu_dma_run(edu, EDU_DMA_DEV_BASE + dev_off, addr, len,
			   EDU_CMD_TO_RAM);
}
