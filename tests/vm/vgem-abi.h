/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vgem-abi.h: the DRM and vgem ioctls the VM test programs use, and a way to
 * find vgem's card (shared by physmem-users.c and physmem-attack.c).
 */
#ifndef VGEM_ABI_H
#define VGEM_ABI_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/*
 * The DRM and vgem ioctls used here, from the kernel's uapi headers
 * include/uapi/drm/drm.h and include/uapi/drm/vgem_drm.h (stable ABI;
 * libdrm-dev, which installs them, is not needed for these helpers).
 */
struct drm_version_abi {
	int version_major, version_minor, version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};

struct drm_gem_close_abi {
	uint32_t handle, pad;
};

struct drm_prime_handle_abi {
	uint32_t handle, flags;
	int32_t fd;
};

struct drm_vgem_fence_attach_abi {
	uint32_t handle, flags, out_fence, pad;
};

struct drm_vgem_fence_signal_abi {
	uint32_t fence, flags;
};

#define DRM_IOCTL_BASE			'd'
#define DRM_COMMAND_BASE		0x40
#define DRM_IOCTL_VERSION		_IOWR(DRM_IOCTL_BASE, 0x00, struct drm_version_abi)
#define DRM_IOCTL_GEM_CLOSE		_IOW(DRM_IOCTL_BASE, 0x09, struct drm_gem_close_abi)
#define DRM_IOCTL_PRIME_FD_TO_HANDLE	_IOWR(DRM_IOCTL_BASE, 0x2e, struct drm_prime_handle_abi)
#define DRM_IOCTL_VGEM_FENCE_ATTACH	_IOWR(DRM_IOCTL_BASE, DRM_COMMAND_BASE + 0x1, struct drm_vgem_fence_attach_abi)
#define DRM_IOCTL_VGEM_FENCE_SIGNAL	_IOW(DRM_IOCTL_BASE, DRM_COMMAND_BASE + 0x2, struct drm_vgem_fence_signal_abi)
#define VGEM_FENCE_WRITE		0x1

/* The /dev/dri/card* whose DRM driver is vgem, opened, or -errno. */
static inline int vgem_open(void)
{
	char path[32], drv[32];

	for (int i = 0; i < 64; i++) {
		struct drm_version_abi v = { .name = drv, .name_len = sizeof(drv) - 1 };
		int fd;

		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		memset(drv, 0, sizeof(drv));
		if (!ioctl(fd, DRM_IOCTL_VERSION, &v) && !strcmp(drv, "vgem"))
			return fd;
		close(fd);
	}
	return -ENODEV;
}

#endif
