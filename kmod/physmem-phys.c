// SPDX-License-Identifier: GPL-2.0
/*
 * The classic interface, mmap of /dev/physmem with the
 * physical address as the file offset.
 *
 * Only callers with CAP_SYS_RAWIO may use it, only with MAP_SHARED, and only
 * for a range that lies inside one physically contiguous run of a live
 * physmem buffer; the mapping holds a reference on that buffer, so the pages
 * cannot be freed and reused while they are mapped.  The module parameter
 * allow_any_ram widens this to any page of ordinary System RAM that is not
 * reserved; such mappings hold nothing, so the page may be freed and reused
 * under the mapping: a debugging aid for trusted root only.
 */
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/ioport.h>
#include <linux/mm.h>
#include <linux/overflow.h>

#include "physmem-internal.h"

static void physmem_phys_vm_open(struct vm_area_struct *vma)
{
	physmem_buf_get(vma->vm_private_data);
}

static void physmem_phys_vm_close(struct vm_area_struct *vma)
{
	physmem_buf_put(vma->vm_private_data);
}

static const struct vm_operations_struct physmem_phys_vm_ops = {
	.open = physmem_phys_vm_open,
	.close = physmem_phys_vm_close,
};

/* Is every page of [start, end) ordinary, unreserved System RAM? */
static bool physmem_phys_is_plain_ram(phys_addr_t start, phys_addr_t end)
{
	unsigned long pfn;

	for (pfn = PHYS_PFN(start); pfn < PHYS_PFN(end); pfn++) {
		if (!pfn_valid(pfn) || !page_is_ram(pfn) ||
		    PageReserved(pfn_to_page(pfn)))
			return false;
	}
	return true;
}

/* mmap of /dev/physmem: vm_pgoff is the physical page frame number. */
int physmem_phys_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	struct physmem_buf *buf;
	phys_addr_t start, end;
	u64 addr;
	int ret;

	if (!capable(CAP_SYS_RAWIO))
		return -EPERM;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (check_shl_overflow((u64)vma->vm_pgoff, PAGE_SHIFT, &addr) ||
	    addr > PHYS_ADDR_MAX)
		return -EINVAL;
	start = addr;
	if (check_add_overflow(start, (phys_addr_t)len, &end))
		return -EINVAL;

	buf = physmem_buf_find_phys(start, len);
	if (!buf) {
		if (!READ_ONCE(physmem_allow_any_ram) ||
		    !physmem_phys_is_plain_ram(start, end))
			return -EPERM;
		return remap_pfn_range(vma, vma->vm_start, vma->vm_pgoff, len,
				       vma->vm_page_prot);
	}

	vma->vm_page_prot = physmem_buf_pgprot(buf->cache, vma->vm_page_prot);
	ret = remap_pfn_range(vma, vma->vm_start, vma->vm_pgoff, len,
			      vma->vm_page_prot);
	if (ret) {
		physmem_buf_put(buf);
		return ret;
	}
	vma->vm_private_data = buf;
	vma->vm_ops = &physmem_phys_vm_ops;
	return 0;
}
