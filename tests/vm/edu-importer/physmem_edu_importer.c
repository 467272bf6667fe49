// SPDX-License-Identifier: GPL-2.0
/*
 * physmem_edu_importer: a test-only dma-buf importer that uses the DMA API
 * for real, with QEMU's "edu" PCI device (1234:11e8) as its DMA engine.
 *
 * It sets edu's real 28-bit DMA mask.  With the guest booted iommu=soft
 * (swiotlb set up below 256 MiB), a buffer page above 256 MiB is mapped
 * through a swiotlb bounce buffer for edu: the device reads and writes the
 * bounce buffer, and only the exporter's sync of edu's own mapping copies
 * between it and the pages.  That is what
 * tests/vm/cases-bounce/78-importer-sync.sh observes.  The VM's edu is
 * created with dma_mask=all ones, so the device itself would reach any
 * address; the mask here is the driver's choice.
 *
 * One misc device, /dev/physmem-edu-importer (root only); each open file
 * holds at most one import.  Transfers are serialised by one mutex and poll
 * edu's command register (about 100 ms of virtual time each).
 */
#include <linux/delay.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>

#include "physmem_edu_importer.h"

#define PEI_NAME		"physmem-edu-importer"
#define PEI_DMA_BITS		28		/* edu's own DMA mask */
#define EDU_REG_SRC		0x80
#define EDU_REG_DST		0x88
#define EDU_REG_COUNT		0x90
#define EDU_REG_CMD		0x98
#define EDU_CMD_RUN		0x1
#define EDU_CMD_TO_RAM		0x2
#define EDU_DEV_BUF		0x40000		/* edu's buffer, in its space */
#define EDU_TIMEOUT_MS		10000

/* The one bound edu device. */
struct pei_edu {
	struct pci_dev *pdev;
	void __iomem *bar;
	void *coh;			/* PEI_XFER_MAX coherent bytes */
	dma_addr_t coh_dma;
	struct mutex lock;		/* serialises transfers */
};

/* One open file: at most one imported, attached, mapped dma-buf. */
struct pei_file {
	struct mutex lock;		/* serialises this file's ioctls */
	struct dma_buf *dmabuf;
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;
};

static struct pei_edu *pei_edu;
static DEFINE_MUTEX(pei_edu_lock);	/* guards pei_edu against remove */

/* Run one edu DMA transfer and wait for it. */
static int pei_edu_dma(struct pei_edu *edu, u64 src, u64 dst, u32 len, u64 cmd)
{
	unsigned long end = jiffies + msecs_to_jiffies(EDU_TIMEOUT_MS);

	writeq(src, edu->bar + EDU_REG_SRC);
	writeq(dst, edu->bar + EDU_REG_DST);
	writeq(len, edu->bar + EDU_REG_COUNT);
	writeq(cmd | EDU_CMD_RUN, edu->bar + EDU_REG_CMD);
	while (readq(edu->bar + EDU_REG_CMD) & EDU_CMD_RUN) {
		if (time_after(jiffies, end))
			return -ETIMEDOUT;
		usleep_range(2000, 5000);
	}
	return 0;
}

/* Undo an import: unmap, detach, drop the dma-buf. */
static void pei_release_import(struct pei_file *pf)
{
	if (!pf->dmabuf)
		return;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	dma_buf_unmap_attachment_unlocked(pf->attach, pf->sgt, DMA_BIDIRECTIONAL);
#else
	dma_buf_unmap_attachment(pf->attach, pf->sgt, DMA_BIDIRECTIONAL);
#endif
	dma_buf_detach(pf->dmabuf, pf->attach);
	dma_buf_put(pf->dmabuf);
	pf->dmabuf = NULL;
	pf->attach = NULL;
	pf->sgt = NULL;
}

/*
 * Find byte @off of the mapping: its DMA address (the range [off, off+len)
 * must lie in one DMA segment) and the physical address of its page.
 */
static int pei_locate(struct sg_table *sgt, u64 off, u32 len,
		      dma_addr_t *ret_dma, phys_addr_t *ret_phys)
{
	struct scatterlist *sg;
	u64 pos = 0;
	unsigned int i;
	int found = 0;

	for_each_sgtable_dma_sg(sgt, sg, i) {
		u64 l = sg_dma_len(sg);

		if (off >= pos && off - pos < l) {
			if (len > l - (off - pos))
				return -EINVAL;
			*ret_dma = sg_dma_address(sg) + (off - pos);
			found = 1;
			break;
		}
		pos += l;
	}
	if (!found)
		return -EINVAL;
	if (!ret_phys)
		return 0;
	pos = 0;
	for_each_sgtable_sg(sgt, sg, i) {
		if (off >= pos && off - pos < sg->length) {
			*ret_phys = sg_phys(sg) + (off - pos);
			return 0;
		}
		pos += sg->length;
	}
	return -EINVAL;
}

/* PEI_IOC_IMPORT */
static long pei_import(struct pei_file *pf, struct pei_edu *edu,
		       struct pei_import __user *uarg)
{
	struct dma_buf_attachment *attach;
	struct pei_import imp;
	struct dma_buf *dmabuf;
	struct sg_table *sgt;
	dma_addr_t dma;
	phys_addr_t phys;
	long ret;

	if (copy_from_user(&imp, uarg, sizeof(imp)))
		return -EFAULT;
	if (imp.reserved)
		return -EINVAL;
	if (pf->dmabuf)
		return -EBUSY;

	dmabuf = dma_buf_get(imp.fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	attach = dma_buf_attach(dmabuf, &edu->pdev->dev);
	if (IS_ERR(attach)) {
		ret = PTR_ERR(attach);
		goto err_put;
	}
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
#else
	sgt = dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL);
#endif
	if (IS_ERR(sgt)) {
		ret = PTR_ERR(sgt);
		goto err_detach;
	}
	pf->dmabuf = dmabuf;
	pf->attach = attach;
	pf->sgt = sgt;

	ret = pei_locate(sgt, imp.offset, 1, &dma, &phys);
	if (ret)
		goto err_release;
	imp.size = dmabuf->size;
	imp.dma_addr = dma;
	imp.phys_addr = phys;
	imp.dma_mask = dma_get_mask(&edu->pdev->dev);
	if (copy_to_user(uarg, &imp, sizeof(imp))) {
		ret = -EFAULT;
		goto err_release;
	}
	return 0;

err_release:
	pei_release_import(pf);
	return ret;
err_detach:
	dma_buf_detach(dmabuf, attach);
err_put:
	dma_buf_put(dmabuf);
	return ret;
}

/* PEI_IOC_DEV_WRITE (@to_buf) and PEI_IOC_DEV_READ */
static long pei_xfer(struct pei_file *pf, struct pei_edu *edu,
		     struct pei_xfer __user *uarg, bool to_buf)
{
	struct pei_xfer *x;
	dma_addr_t dma;
	long ret;

	if (!pf->dmabuf)
		return -ENXIO;
	x = kmalloc(sizeof(*x), GFP_KERNEL);
	if (!x)
		return -ENOMEM;
	if (copy_from_user(x, uarg, sizeof(*x))) {
		ret = -EFAULT;
		goto out;
	}
	if (x->reserved || !x->len || x->len > PEI_XFER_MAX) {
		ret = -EINVAL;
		goto out;
	}
	ret = pei_locate(pf->sgt, x->offset, x->len, &dma, NULL);
	if (ret)
		goto out;

	mutex_lock(&edu->lock);
	if (to_buf) {
		memcpy(edu->coh, x->data, x->len);
		ret = pei_edu_dma(edu, edu->coh_dma, EDU_DEV_BUF, x->len, 0);
		if (!ret)
			ret = pei_edu_dma(edu, EDU_DEV_BUF, dma, x->len,
					  EDU_CMD_TO_RAM);
	} else {
		memset(edu->coh, 0, x->len);
		ret = pei_edu_dma(edu, dma, EDU_DEV_BUF, x->len, 0);
		if (!ret)
			ret = pei_edu_dma(edu, EDU_DEV_BUF, edu->coh_dma,
					  x->len, EDU_CMD_TO_RAM);
		if (!ret)
			memcpy(x->data, edu->coh, x->len);
	}
	mutex_unlock(&edu->lock);
	if (!ret && !to_buf && copy_to_user(uarg, x, sizeof(*x)))
		ret = -EFAULT;
out:
	kfree(x);
	return ret;
}

static long pei_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct pei_file *pf = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	mutex_lock(&pei_edu_lock);
	if (!pei_edu) {
		mutex_unlock(&pei_edu_lock);
		return -ENODEV;
	}
	mutex_lock(&pf->lock);
	switch (cmd) {
	case PEI_IOC_IMPORT:
		ret = pei_import(pf, pei_edu, uarg);
		break;
	case PEI_IOC_DEV_WRITE:
		ret = pei_xfer(pf, pei_edu, uarg, true);
		break;
	case PEI_IOC_DEV_READ:
		ret = pei_xfer(pf, pei_edu, uarg, false);
		break;
	case PEI_IOC_DETACH:
		ret = pf->dmabuf ? 0 : -ENXIO;
		pei_release_import(pf);
		break;
	default:
		ret = -ENOTTY;
	}
	mutex_unlock(&pf->lock);
	mutex_unlock(&pei_edu_lock);
	return ret;
}

static int pei_open(struct inode *inode, struct file *file)
{
	struct pei_file *pf = kzalloc(sizeof(*pf), GFP_KERNEL);

	if (!pf)
		return -ENOMEM;
	mutex_init(&pf->lock);
	file->private_data = pf;
	return 0;
}

static int pei_release(struct inode *inode, struct file *file)
{
	struct pei_file *pf = file->private_data;

	pei_release_import(pf);
	mutex_destroy(&pf->lock);
	kfree(pf);
	return 0;
}

static const struct file_operations pei_fops = {
	.owner = THIS_MODULE,
	.open = pei_open,
	.release = pei_release,
	.unlocked_ioctl = pei_ioctl,
};

static struct miscdevice pei_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = PEI_NAME,
	.fops = &pei_fops,
	.mode = 0600,
};

static int pei_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct pei_edu *edu;
	int ret;

	if (pei_edu)
		return -EBUSY;
	edu = devm_kzalloc(&pdev->dev, sizeof(*edu), GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	edu->pdev = pdev;
	mutex_init(&edu->lock);

	ret = pci_enable_device(pdev);
	if (ret)
		return ret;
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(PEI_DMA_BITS));
	if (ret)
		goto err_disable;
	ret = pci_request_region(pdev, 0, PEI_NAME);
	if (ret)
		goto err_disable;
	edu->bar = pci_iomap(pdev, 0, 0);
	if (!edu->bar) {
		ret = -ENOMEM;
		goto err_region;
	}
	edu->coh = dma_alloc_coherent(&pdev->dev, PEI_XFER_MAX, &edu->coh_dma,
				      GFP_KERNEL);
	if (!edu->coh) {
		ret = -ENOMEM;
		goto err_unmap;
	}
	pci_set_master(pdev);

	mutex_lock(&pei_edu_lock);
	pei_edu = edu;
	mutex_unlock(&pei_edu_lock);
	ret = misc_register(&pei_misc);
	if (ret)
		goto err_clear;
	pci_set_drvdata(pdev, edu);
	dev_info(&pdev->dev, "physmem test importer, DMA mask %d bits\n",
		 PEI_DMA_BITS);
	return 0;

err_clear:
	mutex_lock(&pei_edu_lock);
	pei_edu = NULL;
	mutex_unlock(&pei_edu_lock);
	pci_clear_master(pdev);
	dma_free_coherent(&pdev->dev, PEI_XFER_MAX, edu->coh, edu->coh_dma);
err_unmap:
	pci_iounmap(pdev, edu->bar);
err_region:
	pci_release_region(pdev, 0);
err_disable:
	pci_disable_device(pdev);
	return ret;
}

/* Open files keep the module (fops owner), so none is left when this runs. */
static void pei_remove(struct pci_dev *pdev)
{
	struct pei_edu *edu = pci_get_drvdata(pdev);

	misc_deregister(&pei_misc);
	mutex_lock(&pei_edu_lock);
	pei_edu = NULL;
	mutex_unlock(&pei_edu_lock);
	pci_clear_master(pdev);
	dma_free_coherent(&pdev->dev, PEI_XFER_MAX, edu->coh, edu->coh_dma);
	pci_iounmap(pdev, edu->bar);
	pci_release_region(pdev, 0);
	pci_disable_device(pdev);
}

static const struct pci_device_id pei_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, pei_ids);

static struct pci_driver pei_driver = {
	.name = PEI_NAME,
	.id_table = pei_ids,
	.probe = pei_probe,
	.remove = pei_remove,
};
module_pci_driver(pei_driver);

MODULE_DESCRIPTION("physmem test importer: dma-buf through the DMA API with QEMU's edu");
MODULE_LICENSE("GPL");
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
MODULE_IMPORT_NS("DMA_BUF");
#else
MODULE_IMPORT_NS(DMA_BUF);
#endif
