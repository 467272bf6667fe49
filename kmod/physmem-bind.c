// SPDX-License-Identifier: GPL-2.0
/*
 * Device bindings (PHYSMEM_IOC_BIND/UNBIND): a buffer mapped through the
 * DMA API for a named PCI device, as an importing driver of that device
 * would map it, so that a device behind a translating IOMMU gets IOVAs
 * for the buffer and can be programmed from user space.
 *
 * A binding is a struct physmem_attach on the buffer's attachment list
 * (so the buffer's CPU-access syncs reach its mapping, like an importer's)
 * plus its place on two lists: the buffer's bindings and, while mapped, its
 * device's (struct physmem_bind_dev, one per bound PCI device, holding a
 * pci_dev reference).
 *
 * Page lifetime.  A binding holds no page or buffer reference: it is
 * unmapped, and the device's IOTLB flushed, in the dma-buf's release
 * callback before the buffer's own reference is dropped, i.e. before any
 * page can be quarantined, drained or freed.  No binding can be created
 * after that: BIND holds the dma-buf file.  The mapping also goes on
 * UNBIND and on revocation (below); a revoked binding keeps only its id
 * and flags until it is unbound or the buffer released.
 *
 * Revocation, by a notifier on pci_bus_type:
 *  - BUS_NOTIFY_DEL_DEVICE: device_del() sends it before it unbinds the
 *    driver and before the IOMMU core lets go of the device (on
 *    BUS_NOTIFY_REMOVED_DEVICE), so the unmap still finds the IOMMU group.
 *    The device is also marked dying (a physmem_bind_dev is made for it if
 *    needed): a BIND racing the removal sees the mark and is refused.
 *    The mark goes once the device is unregistered (kobject_del(), after
 *    REMOVED_DEVICE), when no lookup can return it any more.
 *    A device being added is refused until device_add() has run the bus
 *    notifiers (the IOMMU core's probe of it) and sent its ADD uevent.
 *  - BUS_NOTIFY_BIND_DRIVER of a driver with driver_managed_dma (vfio-pci):
 *    sent before that driver probes, so before user space can attach its
 *    own IOMMU domain.  That domain would be the whole IOMMU group's, so
 *    the bindings of every device in the group are revoked; while such a
 *    driver is bound to any device of a group, BIND to the group is
 *    refused.
 *
 * Locking.  physmem_bind_lock (mutex) guards physmem_bind_devs, every
 * physmem_bind_dev, every buffer's bindings list, the bindings' bdev and
 * out_flags and the counters.  The mapped state of a binding's attachment
 * is also guarded by its buffer's attach_lock, which CPU-access syncs take.
 * Order: device_lock(pci device) -> physmem_bind_lock -> buf->attach_lock.
 * BIND takes the device lock first because the driver core calls the
 * BIND_DRIVER notifier with the device lock held.  Nothing under these
 * locks calls into the dma-buf core or touches user memory: segments are
 * copied into a kernel array under the lock and out after it.
 */
#include <linux/device.h>
#include <linux/dma-buf.h>
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/iommu.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "physmem-internal.h"

static unsigned int physmem_bind_max_per_buffer = 8;
module_param_named(max_bindings_per_buffer, physmem_bind_max_per_buffer,
		   uint, 0644);
MODULE_PARM_DESC(max_bindings_per_buffer,
		 "Device bindings one buffer may have, revoked ones included (default 8)");

static unsigned int physmem_bind_max_mb_per_device = 4096;
module_param_named(max_bind_mb_per_device, physmem_bind_max_mb_per_device,
		   uint, 0644);
MODULE_PARM_DESC(max_bind_mb_per_device,
		 "MiB of buffers mapped for one device by bindings (default 4096)");

/* One PCI device with live bindings, or marked dying. */
struct physmem_bind_dev {
	struct list_head node;		/* on physmem_bind_devs */
	struct pci_dev *pdev;		/* referenced */
	struct list_head bindings;	/* mapped struct physmem_binding */
	u64 bound_bytes;
	bool dying;			/* BUS_NOTIFY_DEL_DEVICE was sent */
};

/* One buffer mapped for one device. */
struct physmem_binding {
	struct physmem_attach pa;	/* on buf->attachments */
	struct list_head buf_node;	/* on buf->bindings */
	struct list_head dev_node;	/* on bdev->bindings while mapped */
	struct physmem_buf *buf;
	struct physmem_bind_dev *bdev;	/* NULL once unmapped (revoked) */
	struct iommu_domain *domain;	/* the device's domain when bound */
	u64 id;
	u32 out_flags;			/* PHYSMEM_BIND_* */
};

static DEFINE_MUTEX(physmem_bind_lock);
static LIST_HEAD(physmem_bind_devs);
static u64 physmem_bind_next_id;
static struct physmem_bind_stats physmem_bind_counters;

/* The counters for sysfs. */
void physmem_bind_stats(struct physmem_bind_stats *ret)
{
	mutex_lock(&physmem_bind_lock);
	*ret = physmem_bind_counters;
	mutex_unlock(&physmem_bind_lock);
}

/* The physmem_bind_dev of @pdev, or NULL. */
static struct physmem_bind_dev *physmem_bind_dev_find(struct pci_dev *pdev)
{
	struct physmem_bind_dev *bdev;

	lockdep_assert_held(&physmem_bind_lock);
	list_for_each_entry(bdev, &physmem_bind_devs, node)
		if (bdev->pdev == pdev)
			return bdev;
	return NULL;
}

/* Make the physmem_bind_dev of @pdev, taking a reference on it. */
static struct physmem_bind_dev *physmem_bind_dev_new(struct pci_dev *pdev,
						     gfp_t gfp)
{
	struct physmem_bind_dev *bdev;

	lockdep_assert_held(&physmem_bind_lock);
	bdev = kzalloc_obj(*bdev, gfp);
	if (!bdev)
		return NULL;
	bdev->pdev = pci_dev_get(pdev);
	INIT_LIST_HEAD(&bdev->bindings);
	list_add_tail(&bdev->node, &physmem_bind_devs);
	return bdev;
}

/* Forget @bdev if nothing needs it: no mapping, no dying mark to keep. */
static void physmem_bind_dev_put(struct physmem_bind_dev *bdev, bool force)
{
	lockdep_assert_held(&physmem_bind_lock);
	if (!list_empty(&bdev->bindings))
		return;
	if (bdev->dying && !force && device_is_registered(&bdev->pdev->dev))
		return;
	list_del(&bdev->node);
	pci_dev_put(bdev->pdev);
	kfree(bdev);
}

/* Drop the dying marks of devices that are gone for good. */
static void physmem_bind_dev_reap(void)
{
	struct physmem_bind_dev *bdev, *next;

	lockdep_assert_held(&physmem_bind_lock);
	list_for_each_entry_safe(bdev, next, &physmem_bind_devs, node)
		if (bdev->dying)
			physmem_bind_dev_put(bdev, false);
}

/*
 * Unmap a mapped binding for its device and flush the device's IOTLB, so
 * that the device can no longer reach the pages.  If root changed the
 * IOMMU group's default domain meanwhile (only possible with no driver
 * bound), the old domain and its IOVAs are gone already: nothing to unmap.
 */
static void physmem_bind_unmap(struct physmem_binding *b)
{
	struct physmem_bind_dev *bdev = b->bdev;
	struct device *dev = &bdev->pdev->dev;
	struct physmem_buf *buf = b->buf;

	lockdep_assert_held(&physmem_bind_lock);
	mutex_lock(&buf->attach_lock);
	if (iommu_get_domain_for_dev(dev) == b->domain) {
		dma_unmap_sgtable(dev, &b->pa.sgt, b->pa.dir, 0);
		if (b->domain && iommu_is_dma_domain(b->domain))
			iommu_flush_iotlb_all(b->domain);
	}
	b->pa.mapped = false;
	mutex_unlock(&buf->attach_lock);

	list_del(&b->dev_node);
	bdev->bound_bytes -= buf->size;
	physmem_bind_counters.bound_bytes -= buf->size;
	b->bdev = NULL;
}

/* Unmap and free a binding, mapped or revoked. */
static void physmem_bind_free(struct physmem_binding *b)
{
	struct physmem_bind_dev *bdev = b->bdev;
	struct physmem_buf *buf = b->buf;

	lockdep_assert_held(&physmem_bind_lock);
	if (bdev) {
		physmem_bind_unmap(b);
		physmem_bind_dev_put(bdev, false);
	} else {
		physmem_bind_counters.revoked--;
	}
	mutex_lock(&buf->attach_lock);
	list_del(&b->pa.node);
	mutex_unlock(&buf->attach_lock);
	list_del(&b->buf_node);
	physmem_bind_counters.bindings--;
	sg_free_table(&b->pa.sgt);
	kfree(b);
}

/* Revoke every mapped binding of @bdev: unmapped, reported REVOKED. */
static void physmem_bind_revoke(struct physmem_bind_dev *bdev)
{
	struct physmem_binding *b, *next;

	lockdep_assert_held(&physmem_bind_lock);
	list_for_each_entry_safe(b, next, &bdev->bindings, dev_node) {
		physmem_bind_unmap(b);
		b->out_flags |= PHYSMEM_BIND_REVOKED;
		physmem_bind_counters.revoked++;
	}
}

/*
 * The buffer's dma-buf is being released: unmap and free all its bindings
 * before the buffer drops its reference (and with it, maybe, its pages).
 */
void physmem_bind_release(struct physmem_buf *buf)
{
	struct physmem_binding *b, *next;

	mutex_lock(&physmem_bind_lock);
	list_for_each_entry_safe(b, next, &buf->bindings, buf_node)
		physmem_bind_free(b);
	mutex_unlock(&physmem_bind_lock);
}

/*
 * Merge the DMA runs of @sgt into segments: write up to @capacity of them
 * to @out and return how many there are.
 */
static u32 physmem_bind_collect(struct sg_table *sgt,
				struct physmem_dma_segment *out, u32 capacity)
{
	struct physmem_dma_segment seg = { 0, 0 };
	struct scatterlist *sg;
	unsigned int i;
	u32 count = 0;

	for_each_sgtable_dma_sg(sgt, sg, i) {
		dma_addr_t addr = sg_dma_address(sg);
		u64 len = sg_dma_len(sg);

		if (count && seg.addr + seg.len == addr) {
			seg.len += len;
			continue;
		}
		if (count && count <= capacity)
			out[count - 1] = seg;
		seg.addr = addr;
		seg.len = len;
		count++;
	}
	if (count && count <= capacity)
		out[count - 1] = seg;
	return count;
}

/*
 * Snapshot the segments of a mapped binding into a new kernel array of at
 * most @capacity entries (*@ret_segs, NULL for none; kvfree() it).
 * Returns the total count or -ENOMEM.
 */
static long physmem_bind_snapshot(struct physmem_binding *b, u32 capacity,
				  struct physmem_dma_segment **ret_segs)
{
	struct physmem_dma_segment *segs = NULL;
	u32 n = min_t(u32, capacity, b->pa.sgt.nents);

	if (n) {
		segs = kvmalloc_array(n, sizeof(*segs), GFP_KERNEL);
		if (!segs)
			return -ENOMEM;
	}
	*ret_segs = segs;
	return physmem_bind_collect(&b->pa.sgt, segs, n);
}

/*
 * Without translation, can the device reach every page of @sgt at its
 * physical address (its DMA mask and bus limit)?  Checked before mapping:
 * without swiotlb, dma-direct would warn about such a page.
 */
static bool physmem_bind_reachable(struct device *dev, struct sg_table *sgt)
{
	u64 limit = dev->dma_mask ?
		    min_not_zero(*dev->dma_mask, dev->bus_dma_limit) : 0;
	struct scatterlist *sg;
	unsigned int i;

	for_each_sgtable_sg(sgt, sg, i)
		if (phys_to_dma(dev, sg_phys(sg)) + sg->length - 1 > limit)
			return false;
	return true;
}

/*
 * A mapping made in a translating @domain: its first address translates to
 * the buffer's first page and every segment's start is mapped.  False for a
 * device found while the IOMMU core was still setting it up: it may have its
 * domain already but not yet the DMA ops that use it, and then dma-direct
 * hands out physical addresses, which the device cannot use and which must
 * never be unmapped through the IOMMU later.
 */
static bool physmem_bind_in_domain(struct iommu_domain *domain,
				   struct sg_table *sgt)
{
	struct scatterlist *sg;
	unsigned int i;

	if (iommu_iova_to_phys(domain, sg_dma_address(sgt->sgl)) !=
	    sg_phys(sgt->sgl))
		return false;
	for_each_sgtable_dma_sg(sgt, sg, i)
		if (!iommu_iova_to_phys(domain, sg_dma_address(sg)))
			return false;
	return true;
}

/* iommu_group_for_each_dev() callback: does @dev's driver manage its DMA? */
static int physmem_bind_dev_managed(struct device *dev, void *data)
{
	struct device_driver *drv = READ_ONCE(dev->driver);

	return dev_is_pci(dev) && drv && to_pci_driver(drv)->driver_managed_dma;
}

/*
 * Does a driver that manages DMA itself (vfio-pci) own a device of
 * @pdev's IOMMU group?  It may give the whole group a domain of its own
 * (user space's), so no device of that group can be bound meanwhile.
 */
static bool physmem_bind_group_managed(struct pci_dev *pdev)
{
	struct iommu_group *group = iommu_group_get(&pdev->dev);
	int managed;

	if (!group)
		return false;
	managed = iommu_group_for_each_dev(group, NULL,
					   physmem_bind_dev_managed);
	iommu_group_put(group);
	return managed != 0;
}

/* Are @a and @b in the same IOMMU group (@group is @a's, maybe NULL)? */
static bool physmem_bind_same_group(struct iommu_group *group,
				    struct pci_dev *b)
{
	struct iommu_group *other;

	if (!group)
		return false;
	other = iommu_group_get(&b->dev);
	if (other)
		iommu_group_put(other);
	return other == group;
}

/*
 * Without translation the DMA API may still have bounced pages through
 * swiotlb (swiotlb=force, memory encryption): useless to a device
 * programmed from user space.  True if every entry is the page's own
 * physical address.
 */
static bool physmem_bind_untranslated_ok(struct device *dev,
					 struct sg_table *sgt)
{
	struct scatterlist *sg;
	unsigned int i;

	for_each_sgtable_dma_sg(sgt, sg, i)
		if (sg_dma_address(sg) != phys_to_dma(dev, sg_phys(sg)))
			return false;
	return true;
}

/*
 * How the device sees memory now: PHYSMEM_BIND_* in *@ret_flags and its
 * domain (NULL without IOMMU), or -EBUSY when its DMA is not the DMA API's:
 * a driver that manages it (vfio-pci), or a domain neither a DMA-API nor an
 * identity one.  Called with the device lock held.
 */
static int physmem_bind_dev_mode(struct pci_dev *pdev,
				 struct iommu_domain **ret_domain, u32 *ret_flags)
{
	struct device_driver *drv = pdev->dev.driver;
	struct iommu_domain *domain;

	if (drv && to_pci_driver(drv)->driver_managed_dma)
		return -EBUSY;
	if (physmem_bind_group_managed(pdev))
		return -EBUSY;
	domain = iommu_get_domain_for_dev(&pdev->dev);
	if (!domain && device_iommu_mapped(&pdev->dev))
		return -EBUSY;	/* in an IOMMU group, but no domain (yet) */
	if (!domain)
		*ret_flags = PHYSMEM_BIND_DIRECT;
	else if (domain->type == IOMMU_DOMAIN_IDENTITY)
		*ret_flags = PHYSMEM_BIND_IDENTITY;
	else if (iommu_is_dma_domain(domain))
		*ret_flags = PHYSMEM_BIND_IOMMU;
	else
		return -EBUSY;
	*ret_domain = domain;
	return 0;
}

/*
 * Refuse a binding of @buf to @pdev that a rule forbids: the device is
 * gone or going, the buffer is bound to it already, or a limit is reached.
 */
static int physmem_bind_check(struct physmem_buf *buf, struct pci_dev *pdev,
			      struct physmem_bind_dev *bdev)
{
	u64 limit = (u64)READ_ONCE(physmem_bind_max_mb_per_device) << 20;
	struct physmem_binding *b;
	unsigned int n = 0;

	if (!device_is_registered(&pdev->dev))
		return -ENODEV;
	/*
	 * A device being added can be found before the bus notifiers (the
	 * IOMMU core's among them) have run: it would look as if it had no
	 * IOMMU.  device_add() sends the ADD uevent after them.
	 */
	if (!pdev->dev.kobj.state_add_uevent_sent)
		return -EBUSY;
	if (bdev && bdev->dying)
		return -EBUSY;
	list_for_each_entry(b, &buf->bindings, buf_node) {
		if (b->bdev && b->bdev == bdev)
			return -EEXIST;
		n++;
	}
	if (n >= READ_ONCE(physmem_bind_max_per_buffer))
		return -ENOSPC;
	if (buf->size > limit || (bdev && bdev->bound_bytes > limit - buf->size))
		return -ENOSPC;
	return 0;
}

/*
 * Map @buf for @pdev in direction @dir and publish the binding: its id and
 * flags go to @req, up to @capacity of its segments to a new array
 * *@ret_segs, their count to req->nr_segments.
 */
static int physmem_bind_add(struct physmem_buf *buf, struct pci_dev *pdev,
			    enum dma_data_direction dir, u32 capacity,
			    struct physmem_bind *req,
			    struct physmem_dma_segment **ret_segs)
{
	struct device *dev = &pdev->dev;
	struct physmem_bind_dev *bdev;
	struct physmem_binding *b;
	long count;
	int ret;

	b = kzalloc_obj(*b, GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->buf = buf;
	b->pa.dev = dev;
	b->pa.dir = dir;
	ret = sg_alloc_table_from_pages_segment(&b->pa.sgt, buf->pages,
						buf->npages, 0, buf->size,
						dma_get_max_seg_size(dev),
						GFP_KERNEL);
	if (ret)
		goto err_free;

	/* a driver's probe may hold it long: let a signal end the wait */
	ret = device_lock_interruptible(dev);
	if (ret)
		goto err_free_sgt;
	mutex_lock(&physmem_bind_lock);
	physmem_bind_dev_reap();
	bdev = physmem_bind_dev_find(pdev);
	ret = physmem_bind_check(buf, pdev, bdev);
	if (ret)
		goto err_unlock;
	ret = physmem_bind_dev_mode(pdev, &b->domain, &b->out_flags);
	if (ret)
		goto err_unlock;
	if (!bdev) {
		bdev = physmem_bind_dev_new(pdev, GFP_KERNEL);
		if (!bdev) {
			ret = -ENOMEM;
			goto err_unlock;
		}
	}

	if (!(b->out_flags & PHYSMEM_BIND_IOMMU) &&
	    !physmem_bind_reachable(dev, &b->pa.sgt)) {
		ret = -ERANGE;
		goto err_put_dev;
	}
	ret = dma_map_sgtable(dev, &b->pa.sgt, dir, 0);
	if (ret)
		goto err_put_dev;
	if ((b->out_flags & PHYSMEM_BIND_IOMMU) &&
	    !physmem_bind_in_domain(b->domain, &b->pa.sgt)) {
		/*
		 * dma-direct made it (see physmem_bind_in_domain()): nothing
		 * to undo without swiotlb, and an unmap now could go through
		 * the IOMMU's ops, which never mapped it.
		 */
		ret = -EBUSY;
		goto err_put_dev;
	}
	if (!(b->out_flags & PHYSMEM_BIND_IOMMU) &&
	    !physmem_bind_untranslated_ok(dev, &b->pa.sgt)) {
		dma_unmap_sgtable(dev, &b->pa.sgt, dir, DMA_ATTR_SKIP_CPU_SYNC);
		ret = -ERANGE;
		goto err_put_dev;
	}
	count = physmem_bind_snapshot(b, capacity, ret_segs);
	if (count < 0) {
		dma_unmap_sgtable(dev, &b->pa.sgt, dir, DMA_ATTR_SKIP_CPU_SYNC);
		ret = count;
		goto err_put_dev;
	}

	b->id = ++physmem_bind_next_id;
	b->bdev = bdev;
	list_add_tail(&b->dev_node, &bdev->bindings);
	list_add_tail(&b->buf_node, &buf->bindings);
	bdev->bound_bytes += buf->size;
	physmem_bind_counters.bindings++;
	physmem_bind_counters.bound_bytes += buf->size;
	mutex_lock(&buf->attach_lock);
	b->pa.mapped = true;
	list_add_tail(&b->pa.node, &buf->attachments);
	mutex_unlock(&buf->attach_lock);
	req->binding_id = b->id;
	req->out_flags = b->out_flags;
	req->nr_segments = count;
	mutex_unlock(&physmem_bind_lock);
	device_unlock(dev);
	return 0;

err_put_dev:
	physmem_bind_dev_put(bdev, false);
err_unlock:
	mutex_unlock(&physmem_bind_lock);
	device_unlock(dev);
err_free_sgt:
	sg_free_table(&b->pa.sgt);
err_free:
	kfree(b);
	return ret;
}

/* Remove the binding @id of @buf; -ENOENT if it has none such. */
static int physmem_bind_remove(struct physmem_buf *buf, u64 id)
{
	struct physmem_binding *b, *next;
	int ret = id ? -ENOENT : 0;

	mutex_lock(&physmem_bind_lock);
	list_for_each_entry_safe(b, next, &buf->bindings, buf_node) {
		if (!id) {
			physmem_bind_free(b);	/* 0: every binding */
		} else if (b->id == id) {
			physmem_bind_free(b);
			ret = 0;
			break;
		}
	}
	mutex_unlock(&physmem_bind_lock);
	return ret;
}

/* The dma-buf behind user fd @fd and its physmem buffer, or an error. */
static struct dma_buf *physmem_bind_get_buf(int fd,
					    struct physmem_buf **ret_buf)
{
	struct dma_buf *dmabuf = dma_buf_get(fd);

	if (IS_ERR(dmabuf))
		return dmabuf;
	*ret_buf = physmem_buf_from_dmabuf(dmabuf);
	if (!*ret_buf) {
		dma_buf_put(dmabuf);
		return ERR_PTR(-EINVAL);
	}
	return dmabuf;
}

static const enum dma_data_direction physmem_bind_dirs[] = {
	[PHYSMEM_BIND_BIDIRECTIONAL] = DMA_BIDIRECTIONAL,
	[PHYSMEM_BIND_TO_DEVICE] = DMA_TO_DEVICE,
	[PHYSMEM_BIND_FROM_DEVICE] = DMA_FROM_DEVICE,
};

/* PHYSMEM_IOC_BIND */
long physmem_bind_ioctl_bind(void __user *uarg)
{
	struct physmem_dma_segment *segs = NULL;
	struct physmem_bind req;
	struct physmem_buf *buf;
	struct dma_buf *dmabuf;
	struct pci_dev *pdev;
	long usize, ret;
	u32 n;

	usize = physmem_main_copy_in(&req, sizeof(req),
				     PHYSMEM_BIND_SIZE_VER0, uarg);
	if (usize < 0)
		return usize;
	if (req.flags || req.reserved || req.reserved2 ||
	    req.dir >= ARRAY_SIZE(physmem_bind_dirs))
		return -EINVAL;
	if (req.capacity && !req.segments)
		return -EFAULT;
	if (req.pci_domain > INT_MAX)
		return -ENODEV;

	dmabuf = physmem_bind_get_buf(req.fd, &buf);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	pdev = pci_get_domain_bus_and_slot(req.pci_domain, req.pci_bus,
					   req.pci_devfn);
	if (!pdev) {
		ret = -ENODEV;
		goto out;
	}
	ret = physmem_bind_add(buf, pdev, physmem_bind_dirs[req.dir],
			       req.capacity, &req, &segs);
	pci_dev_put(pdev);
	if (ret)
		goto out;

	n = min(req.nr_segments, req.capacity);
	if ((n && copy_to_user(u64_to_user_ptr(req.segments), segs,
			       array_size(n, sizeof(*segs)))) ||
	    copy_to_user(uarg, &req, usize)) {
		physmem_bind_remove(buf, req.binding_id);
		ret = -EFAULT;
	}
out:
	kvfree(segs);
	dma_buf_put(dmabuf);
	return ret;
}

/* PHYSMEM_IOC_UNBIND */
long physmem_bind_ioctl_unbind(void __user *uarg)
{
	struct physmem_unbind req;
	struct physmem_buf *buf;
	struct dma_buf *dmabuf;
	long usize, ret;

	usize = physmem_main_copy_in(&req, sizeof(req),
				     PHYSMEM_UNBIND_SIZE_VER0, uarg);
	if (usize < 0)
		return usize;
	if (req.flags || req.reserved)
		return -EINVAL;
	dmabuf = physmem_bind_get_buf(req.fd, &buf);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	ret = physmem_bind_remove(buf, req.binding_id);
	dma_buf_put(dmabuf);
	return ret;
}

/*
 * PHYSMEM_IOC_SEGMENTS with a binding id: write up to @capacity of the
 * binding's segments to @out, its PHYSMEM_BIND_* to @ret_flags, and return
 * the count (0 when revoked) or -ENOENT.
 */
long physmem_bind_segments(struct physmem_buf *buf, u64 id,
			   struct physmem_dma_segment __user *out,
			   u32 capacity, u32 *ret_flags)
{
	struct physmem_dma_segment *segs = NULL;
	struct physmem_binding *b;
	long count = -ENOENT;

	mutex_lock(&physmem_bind_lock);
	list_for_each_entry(b, &buf->bindings, buf_node) {
		if (b->id != id)
			continue;
		*ret_flags = b->out_flags;
		count = b->bdev ? physmem_bind_snapshot(b, capacity, &segs) : 0;
		break;
	}
	mutex_unlock(&physmem_bind_lock);

	if (count > 0 && segs &&
	    copy_to_user(out, segs,
			 array_size(min_t(u32, count, capacity), sizeof(*segs))))
		count = -EFAULT;
	kvfree(segs);
	return count;
}

/* Revoke bindings of a PCI device that goes away or is taken over. */
static int physmem_bind_notify(struct notifier_block *nb,
			       unsigned long action, void *data)
{
	struct device *dev = data;
	struct pci_dev *pdev = to_pci_dev(dev);
	struct physmem_bind_dev *bdev, *next;
	struct iommu_group *group;

	switch (action) {
	case BUS_NOTIFY_DEL_DEVICE:
		mutex_lock(&physmem_bind_lock);
		physmem_bind_dev_reap();
		bdev = physmem_bind_dev_find(pdev);
		/* a few bytes; the mark must exist to refuse a racing BIND */
		if (!bdev)
			bdev = physmem_bind_dev_new(pdev,
						    GFP_KERNEL | __GFP_NOFAIL);
		bdev->dying = true;
		physmem_bind_revoke(bdev);
		mutex_unlock(&physmem_bind_lock);
		break;
	case BUS_NOTIFY_BIND_DRIVER:
		/*
		 * Called with the device lock held; dev->driver is set.  Such
		 * a driver may give the device's whole IOMMU group a domain of
		 * user space's: revoke the bindings of every device in the
		 * group now, while the default domain (which holds their
		 * mappings) is still attached.
		 */
		if (!dev->driver || !to_pci_driver(dev->driver)->driver_managed_dma)
			break;
		group = iommu_group_get(dev);
		mutex_lock(&physmem_bind_lock);
		list_for_each_entry_safe(bdev, next, &physmem_bind_devs, node) {
			if (bdev->pdev != pdev &&
			    !physmem_bind_same_group(group, bdev->pdev))
				continue;
			physmem_bind_revoke(bdev);
			physmem_bind_dev_put(bdev, false);
		}
		mutex_unlock(&physmem_bind_lock);
		if (group)
			iommu_group_put(group);
		break;
	}
	return NOTIFY_DONE;
}

static struct notifier_block physmem_bind_nb = {
	.notifier_call = physmem_bind_notify,
};

/* Module load: watch PCI devices for revocation. */
int physmem_bind_init(void)
{
	return bus_register_notifier(&pci_bus_type, &physmem_bind_nb);
}

/*
 * Module unload: every buffer pins the module, so no binding is left;
 * only dying marks may be.  Drop them after the notifier is gone.
 */
void physmem_bind_exit(void)
{
	struct physmem_bind_dev *bdev, *next;

	bus_unregister_notifier(&pci_bus_type, &physmem_bind_nb);
	mutex_lock(&physmem_bind_lock);
	list_for_each_entry_safe(bdev, next, &physmem_bind_devs, node) {
		WARN_ON(!list_empty(&bdev->bindings));
		physmem_bind_dev_put(bdev, true);
	}
	mutex_unlock(&physmem_bind_lock);
}
