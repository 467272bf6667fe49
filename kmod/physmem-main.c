// SPDX-License-Identifier: GPL-2.0
/*
 * The /dev/physmem misc device, its ioctls, the sysfs
 * counters and the module parameters.
 *
 * /dev/physmem is root-only (mode 0600); in the physmem design its one user
 * is the physmemd daemon, which hands the buffers' dma-buf fds to clients.
 */
#include <linux/compat.h>
#include <linux/device.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "physmem-internal.h"

unsigned int physmem_max_buffer_mb = 4096;
module_param_named(max_buffer_mb, physmem_max_buffer_mb, uint, 0644);
MODULE_PARM_DESC(max_buffer_mb, "Largest buffer in MiB (default 4096)");

unsigned int physmem_max_total_mb;
module_param_named(max_total_mb, physmem_max_total_mb, uint, 0644);
MODULE_PARM_DESC(max_total_mb,
		 "Limit for all live buffers in MiB (default 0: half of RAM)");

bool physmem_allow_any_ram;
module_param_named(allow_any_ram, physmem_allow_any_ram, bool, 0644);
MODULE_PARM_DESC(allow_any_ram,
		 "DANGEROUS: let CAP_SYS_RAWIO mmap any unreserved System RAM page through /dev/physmem, not only physmem buffers (default off)");

unsigned int physmem_quarantine_ms;
module_param_named(quarantine_ms, physmem_quarantine_ms, uint, 0644);
MODULE_PARM_DESC(quarantine_ms,
		 "Keep a released buffer's pages this long before reuse, against late DMA from a device (default 0: off)");

/* The device the module's own DMA mappings are made for. */
struct device *physmem_dev;

/*
 * Copy an extensible ioctl struct in: its first __u32 is its size as the
 * caller knows it.  Returns that size (clamped to @ksize, for copying back)
 * or a negative errno.
 */
static long physmem_main_copy_in(void *karg, size_t ksize, size_t ver0,
				 void __user *uarg)
{
	u32 usize;
	int ret;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	if (usize < ver0)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;
	ret = copy_struct_from_user(karg, ksize, uarg, usize);
	if (ret)
		return ret;
	return min_t(size_t, usize, ksize);
}

/*
 * Hand a published buffer's dma-buf to user space: reserve an fd, let
 * @copy_out write the reply (with that fd) to user memory, and install the
 * fd only if that worked.  On failure the buffer is dropped.
 */
static int physmem_main_install(struct physmem_buf *buf, s32 *ret_fd,
				void __user *uarg, const void *karg,
				size_t len)
{
	int fd;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(buf->dmabuf);
		return fd;
	}
	*ret_fd = fd;
	if (copy_to_user(uarg, karg, len)) {
		put_unused_fd(fd);
		dma_buf_put(buf->dmabuf);
		return -EFAULT;
	}
	fd_install(fd, buf->dmabuf->file);
	return 0;
}

/*
 * A fresh buffer's DMA segments for the ALLOC and PIN replies: the count,
 * and up to @capacity entries written to @segments.  On failure the buffer
 * is dropped.
 */
static long physmem_main_new_segments(struct physmem_buf *buf, u64 segments,
				      u32 capacity, u32 *ret_count)
{
	long count;

	if (capacity && !segments)
		count = -EFAULT;
	else
		count = physmem_buf_segments(buf, u64_to_user_ptr(segments),
					     capacity);
	if (count < 0) {
		dma_buf_put(buf->dmabuf);
		return count;
	}
	*ret_count = count;
	return 0;
}

static long physmem_main_ioctl_alloc(void __user *uarg)
{
	struct physmem_alloc req;
	struct physmem_buf *buf;
	long usize, ret;

	usize = physmem_main_copy_in(&req, sizeof(req),
				     PHYSMEM_ALLOC_SIZE_VER0, uarg);
	if (usize < 0)
		return usize;
	if (req.reserved || req.reserved2 || req.fd || req.id ||
	    req.actual_length || req.nr_segments || req.pool_status)
		return -EINVAL;
	if (!(req.flags & PHYSMEM_ALLOC_POOL) && req.pool)
		return -EINVAL;

	if (req.flags & PHYSMEM_ALLOC_POOL) {
		/* the pool fields came with VER2 */
		if (usize < PHYSMEM_ALLOC_SIZE_VER2)
			return -EINVAL;
		buf = physmem_buf_alloc_pool(req.length, req.flags, req.pool,
					     req.cache, &req.pool_status);
		/* the caller learns why the pool could not hold it */
		if (buf == ERR_PTR(-ENOSPC) && copy_to_user(uarg, &req, usize))
			return -EFAULT;
	} else {
		buf = physmem_buf_alloc(req.length, req.flags, req.cache);
	}
	if (IS_ERR(buf))
		return PTR_ERR(buf);

	req.id = buf->id;
	req.actual_length = buf->size;
	ret = physmem_main_new_segments(buf, req.segments, req.capacity,
					&req.nr_segments);
	if (ret)
		return ret;
	return physmem_main_install(buf, &req.fd, uarg, &req, usize);
}

static long physmem_main_ioctl_pin(void __user *uarg)
{
	struct physmem_pin req;
	struct physmem_buf *buf;
	long usize, ret;

	usize = physmem_main_copy_in(&req, sizeof(req),
				     PHYSMEM_PIN_SIZE_VER0, uarg);
	if (usize < 0)
		return usize;
	if (req.flags || req.reserved || req.reserved2 || req.fd || req.id ||
	    req.nr_segments)
		return -EINVAL;

	buf = physmem_pin_memfd(req.memfd, req.offset, req.length);
	if (IS_ERR(buf))
		return PTR_ERR(buf);

	req.id = buf->id;
	ret = physmem_main_new_segments(buf, req.segments, req.capacity,
					&req.nr_segments);
	if (ret)
		return ret;
	return physmem_main_install(buf, &req.fd, uarg, &req, usize);
}

static long physmem_main_ioctl_segments(void __user *uarg)
{
	struct physmem_segments req;
	struct physmem_buf *buf;
	struct dma_buf *dmabuf;
	long usize, count;

	usize = physmem_main_copy_in(&req, sizeof(req),
				     PHYSMEM_SEGMENTS_SIZE_VER0, uarg);
	if (usize < 0)
		return usize;
	if (req.capacity && !req.segments)
		return -EFAULT;
	if (req.reserved)
		return -EINVAL;
	/* No bindings yet: every binding id is unknown. */
	if (req.binding_id)
		return -ENOENT;

	dmabuf = dma_buf_get(req.fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	buf = physmem_buf_from_dmabuf(dmabuf);
	if (!buf) {
		count = -EINVAL;
		goto out;
	}

	count = physmem_buf_segments(buf, u64_to_user_ptr(req.segments),
				     req.capacity);
	if (count < 0)
		goto out;
	req.count = count;
	req.id = buf->id;
	req.length = buf->size;
	req.flags = buf->flags;
	req.cache = buf->cache;
	req.bind_flags = 0;
	count = copy_to_user(uarg, &req, usize) ? -EFAULT : 0;
out:
	dma_buf_put(dmabuf);
	return count;
}

static long physmem_main_ioctl_info(void __user *uarg)
{
	struct physmem_dev_info info;
	long usize;

	usize = physmem_main_copy_in(&info, sizeof(info),
				     PHYSMEM_INFO_SIZE_VER0, uarg);
	if (usize < 0)
		return usize;
	physmem_buf_info(&info);
	if (copy_to_user(uarg, &info, usize))
		return -EFAULT;
	return 0;
}

static long physmem_main_ioctl_pool_info(void __user *uarg)
{
	struct physmem_pool_info info;
	long usize;
	int ret;

	usize = physmem_main_copy_in(&info, sizeof(info),
				     PHYSMEM_POOL_INFO_SIZE_VER0, uarg);
	if (usize < 0)
		return usize;
	ret = physmem_pool_info(&info);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &info, usize))
		return -EFAULT;
	return 0;
}

static long physmem_main_ioctl_query(void __user *uarg)
{
	struct physmem_query req;
	long usize;
	int ret;

	usize = physmem_main_copy_in(&req, sizeof(req),
				     PHYSMEM_QUERY_SIZE_VER0, uarg);
	if (usize < 0)
		return usize;
	if (req.flags || req.length || req.out_flags || req.reserved)
		return -EINVAL;
	ret = physmem_buf_query(req.id, &req.length, &req.out_flags);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &req, usize))
		return -EFAULT;
	return 0;
}

/*
 * The ioctl number is matched without its size bits: the size of the
 * struct travels in its first field, so grown structs keep working.
 */
static long physmem_main_ioctl(struct file *file, unsigned int cmd,
			       unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	/* misc_register() makes the node before init has set physmem_dev */
	if (!smp_load_acquire(&physmem_dev))
		return -ENODEV;
	if (_IOC_TYPE(cmd) != PHYSMEM_IOC_MAGIC ||
	    _IOC_DIR(cmd) != (_IOC_READ | _IOC_WRITE))
		return -ENOTTY;

	switch (_IOC_NR(cmd)) {
	case _IOC_NR(PHYSMEM_IOC_ALLOC):
		return physmem_main_ioctl_alloc(uarg);
	case _IOC_NR(PHYSMEM_IOC_PIN):
		return physmem_main_ioctl_pin(uarg);
	case _IOC_NR(PHYSMEM_IOC_SEGMENTS):
		return physmem_main_ioctl_segments(uarg);
	case _IOC_NR(PHYSMEM_IOC_INFO):
		return physmem_main_ioctl_info(uarg);
	case _IOC_NR(PHYSMEM_IOC_QUERY):
		return physmem_main_ioctl_query(uarg);
	case _IOC_NR(PHYSMEM_IOC_POOL_INFO):
		return physmem_main_ioctl_pool_info(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations physmem_main_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = physmem_main_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = physmem_phys_mmap,
	.llseek = noop_llseek,
};

/* /sys/class/misc/physmem/stats/<name>: one counter per file. */
#define PHYSMEM_MAIN_STAT(_name, _expr)					\
static ssize_t _name##_show(struct device *dev,				\
			    struct device_attribute *attr, char *page)	\
{									\
	struct physmem_dev_info info;					\
									\
	physmem_buf_info(&info);					\
	return sysfs_emit(page, "%llu\n", (unsigned long long)(_expr));	\
}									\
static DEVICE_ATTR_RO(_name)

PHYSMEM_MAIN_STAT(buffers, info.buffers);
PHYSMEM_MAIN_STAT(bytes, info.bytes);
PHYSMEM_MAIN_STAT(cached_bytes, info.cache_bytes[PHYSMEM_MODE_CACHED]);
PHYSMEM_MAIN_STAT(wc_bytes, info.cache_bytes[PHYSMEM_MODE_WC]);
PHYSMEM_MAIN_STAT(uncached_bytes, info.cache_bytes[PHYSMEM_MODE_UNCACHED]);
PHYSMEM_MAIN_STAT(pinned_buffers, info.pinned_buffers);
PHYSMEM_MAIN_STAT(pinned_bytes, info.pinned_bytes);
PHYSMEM_MAIN_STAT(max_buffer_bytes, info.max_buffer_bytes);
PHYSMEM_MAIN_STAT(max_total_bytes, info.max_total_bytes);
PHYSMEM_MAIN_STAT(max_contig_bytes, info.max_contig_bytes);

static ssize_t quarantined_bytes_show(struct device *dev,
				      struct device_attribute *attr, char *page)
{
	return sysfs_emit(page, "%llu\n",
			  (unsigned long long)physmem_buf_quarantined_bytes());
}
static DEVICE_ATTR_RO(quarantined_bytes);

/* Released buffers whose pages are still referenced (still charged). */
static ssize_t draining_buffers_show(struct device *dev,
				     struct device_attribute *attr, char *page)
{
	u64 count, bytes;

	physmem_buf_draining(&count, &bytes);
	return sysfs_emit(page, "%llu\n", (unsigned long long)count);
}
static DEVICE_ATTR_RO(draining_buffers);

static ssize_t draining_bytes_show(struct device *dev,
				   struct device_attribute *attr, char *page)
{
	u64 count, bytes;

	physmem_buf_draining(&count, &bytes);
	return sysfs_emit(page, "%llu\n", (unsigned long long)bytes);
}
static DEVICE_ATTR_RO(draining_bytes);

static struct attribute *physmem_main_stats_attrs[] = {
	&dev_attr_buffers.attr,
	&dev_attr_bytes.attr,
	&dev_attr_cached_bytes.attr,
	&dev_attr_wc_bytes.attr,
	&dev_attr_uncached_bytes.attr,
	&dev_attr_pinned_buffers.attr,
	&dev_attr_pinned_bytes.attr,
	&dev_attr_max_buffer_bytes.attr,
	&dev_attr_max_total_bytes.attr,
	&dev_attr_max_contig_bytes.attr,
	&dev_attr_quarantined_bytes.attr,
	&dev_attr_draining_buffers.attr,
	&dev_attr_draining_bytes.attr,
	NULL,
};

static const struct attribute_group physmem_main_stats_group = {
	.name = "stats",
	.attrs = physmem_main_stats_attrs,
};

static const struct attribute_group *physmem_main_groups[] = {
	&physmem_main_stats_group,
	NULL,
};

static struct miscdevice physmem_main_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "physmem",
	.fops = &physmem_main_fops,
	.groups = physmem_main_groups,
	.mode = 0600,
};

static int __init physmem_main_init(void)
{
	int ret;

	ret = misc_register(&physmem_main_misc);
	if (ret)
		return ret;

	/*
	 * The misc device is behind no IOMMU, so DMA addresses made for it
	 * are the physical addresses a device without translation uses.
	 */
	ret = dma_coerce_mask_and_coherent(physmem_main_misc.this_device,
					   DMA_BIT_MASK(64));
	if (ret)
		goto err_deregister;
	ret = physmem_pool_init(physmem_main_misc.this_device);
	if (ret)
		goto err_deregister;
	/* Pairs with the acquire in the ioctl handler: it sees the DMA mask set. */
	smp_store_release(&physmem_dev, physmem_main_misc.this_device);
	return 0;

err_deregister:
	misc_deregister(&physmem_main_misc);
	return ret;
}

static void __exit physmem_main_exit(void)
{
	/*
	 * Every live or draining buffer holds a module reference, so none is
	 * left here; the drain work may still be running its last round.
	 */
	physmem_buf_drain_stop();
	/*
	 * Released ones may still sit out their quarantine: free them now,
	 * before the misc device (physmem_dev, which their DMA mappings were
	 * made for) goes away.  No one can open the device any more.
	 */
	physmem_buf_quarantine_flush();
	/* every pool buffer is freed now: the pools can go */
	physmem_pool_exit();
	misc_deregister(&physmem_main_misc);
}

module_init(physmem_main_init);
module_exit(physmem_main_exit);

MODULE_DESCRIPTION("Pinned, DMA-able buffers exported as dma-bufs");
MODULE_LICENSE("GPL");
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
MODULE_IMPORT_NS("DMA_BUF");
#else
MODULE_IMPORT_NS(DMA_BUF);
#endif
