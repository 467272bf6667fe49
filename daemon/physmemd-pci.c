/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What sysfs says about PCI devices: whether one exists, its ids, its driver
 * and its IOMMU group. Sysfs attributes answer at once (no client controls
 * them), so the event loop may read them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "physmemd.h"

const char *const translation_names[] = { "iommu", "passthrough", "direct", NULL };

/* Read a small sysfs attribute dir/name into buf without its newline; -errno. */
static int read_attr(int dir, const char *name, char *buf, size_t size)
{
	ssize_t n;
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* A hex attribute such as "0x1234", or -1. */
static int read_hex_attr(int dir, const char *name)
{
	char buf[32], *end;
	unsigned long v;

	if (read_attr(dir, name, buf, sizeof(buf)) < 0)
		return -1;
	errno = 0;
	v = strtoul(buf, &end, 16);
	if (errno || *end || end == buf || v > 0xffff)
		return -1;
	return (int)v;
}

/* The last path component of the symbolic link dir/name into buf, or "". */
static void read_link_base(int dir, const char *name, char *buf, size_t size)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(dir, name, target, sizeof(target) - 1);
	const char *base;

	buf[0] = '\0';
	if (n <= 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/');
	/* A driver's name is short; a longer link target is cut, never overrun. */
	snprintf(buf, size, "%.*s", (int)(size - 1), base ? base + 1 : target);
}

int pci_device_read(const struct conf *conf, const struct physmem_pci_address *a, struct pci_device *ret)
{
	char path[PATH_MAX], name[PHYSMEM_PCI_ADDRESS_MAX + 1], group[32];
	int dir;

	physmem_pci_address_format(a, name, sizeof(name));
	if (snprintf(path, sizeof(path), "%s/%s", conf->pci_sysfs, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return errno == ENOENT || errno == ENOTDIR ? -ENODEV : -errno;
	memset(ret, 0, sizeof(*ret));
	ret->address = *a;
	ret->vendor = read_hex_attr(dir, "vendor");
	ret->product = read_hex_attr(dir, "device");
	read_link_base(dir, "driver", ret->driver, sizeof(ret->driver));
	read_link_base(dir, "iommu_group", group, sizeof(group));
	ret->iommu_group = -1;
	if (group[0]) {
		char *end;
		long g = strtol(group, &end, 10);

		if (!*end && g >= 0 && g < INT32_MAX)
			ret->iommu_group = (int)g;
		if (read_attr(dir, "iommu_group/type", ret->group_type, sizeof(ret->group_type)) < 0)
			ret->group_type[0] = '\0';
	}
	close(dir);
	return 0;
}

int pci_device_translation(const struct pci_device *d)
{
	if (d->iommu_group < 0)
		return TRANSLATION_DIRECT;
	if (strcmp(d->group_type, "identity") == 0)
		return TRANSLATION_PASSTHROUGH;
	if (strcmp(d->group_type, "DMA") == 0 || strcmp(d->group_type, "DMA-FQ") == 0)
		return TRANSLATION_IOMMU;
	return -1;
}

const char *pci_device_unbindable(const struct pci_device *d)
{
	if (strncmp(d->driver, "vfio", 4) == 0)
		return "vfio";
	if (d->iommu_group >= 0 && pci_device_translation(d) < 0)
		return "the IOMMU domain is not the DMA API's";
	return NULL;
}

void pci_device_foreach(const struct conf *conf, unsigned max, bool (*fn)(const struct pci_device *d, void *userdata),
			void *userdata)
{
	DIR *dir = opendir(conf->pci_sysfs);
	struct dirent *de;
	unsigned n = 0;

	if (!dir)
		return;
	while (n < max && (de = readdir(dir))) {
		struct physmem_pci_address a;
		struct pci_device d;

		if (physmem_pci_address_parse(de->d_name, &a) < 0 || pci_device_read(conf, &a, &d) < 0)
			continue;
		n++;
		if (!fn(&d, userdata))
			break;
	}
	closedir(dir);
}
