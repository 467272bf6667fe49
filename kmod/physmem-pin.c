// SPDX-License-Identifier: GPL-2.0
/*
 * Export the pages of a memfd as a physmem buffer.
 *
 * The pages are looked up in the memfd's page cache without ever allocating
 * or reading anything in: a pin is made in the daemon's context, and any
 * page it allocated would be charged to the daemon's memory cgroup.  So the
 * whole pin is refused with -ENODATA when a page of the range is absent (a
 * hole), swapped out, or not uptodate (fallocate()d but never written: shmem
 * zeroes such a folio only on first use, so exposing it would leak old
 * memory and the first touch would zero it under the device).
 *
 * The buffer takes one page reference per page index and keeps it until it
 * is freed.  It never maps those page-cache pages as struct pages: its
 * mmap is VM_PFNMAP (see physmem_buf_mmap()), so no page of the file is
 * ever rmapped through a physmem VMA.  Closing the memfd, truncating it or
 * punching a hole (fallocate) into the pinned range therefore only detaches
 * the pages from the file: the file no longer sees them, the buffer keeps
 * its referenced pages (and their contents) until it is released, and
 * neither side can corrupt the other.  get_user_pages() (O_DIRECT,
 * io_uring, vmsplice) fails with EFAULT on a pinned buffer's mapping; such
 * I/O should go through the memfd's own mapping.
 *
 * F_SEAL_SHRINK guarantees the range stays inside the file.  F_SEAL_WRITE
 * and F_SEAL_FUTURE_WRITE are refused because a device may write the pages.
 * Pages are never dirty-tracked.
 */
#include <linux/err.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>

#include "physmem-internal.h"

#define PHYSMEM_PIN_SEALS_WANTED	(F_SEAL_SHRINK)
#define PHYSMEM_PIN_SEALS_DENIED	(F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)

/*
 * Is @file a shmem memfd with acceptable seals?  shmem_mapping() is not
 * exported, so a shmem inode is recognised by its superblock (the internal
 * shm mount is a tmpfs); hugetlbfs memfds are refused.
 */
static int physmem_pin_check_memfd(struct file *file)
{
	struct inode *inode = file_inode(file);
	unsigned int seals;

	if (!IS_ENABLED(CONFIG_SHMEM) || !S_ISREG(inode->i_mode) ||
	    inode->i_sb->s_magic != TMPFS_MAGIC)
		return -EINVAL;
	if (!(file->f_mode & FMODE_READ) || !(file->f_mode & FMODE_WRITE))
		return -EACCES;

	seals = READ_ONCE(SHMEM_I(inode)->seals);
	if ((seals & PHYSMEM_PIN_SEALS_WANTED) != PHYSMEM_PIN_SEALS_WANTED ||
	    (seals & PHYSMEM_PIN_SEALS_DENIED))
		return -EINVAL;
	return 0;
}

/*
 * The uptodate page at @index of @mapping with a new reference on it, or
 * NULL when there is none (hole, swap or shadow entry, not uptodate).
 * Never allocates.
 */
static struct page *physmem_pin_lookup(struct address_space *mapping,
				       pgoff_t index)
{
	struct folio *folio;

	/*
	 * NULL for "none" up to 6.3, ERR_PTR(-ENOENT) since the 6.4 merge
	 * window: accept both rather than guess the release it changed in.
	 */
	folio = filemap_get_folio(mapping, index);
	if (IS_ERR_OR_NULL(folio))
		return NULL;
	if (!folio_test_uptodate(folio)) {
		folio_put(folio);
		return NULL;
	}
	/* the folio reference is the page's: put_page() drops it */
	return folio_file_page(folio, index);
}

/* PHYSMEM_IOC_PIN: a published, cached buffer of the memfd's pages. */
struct physmem_buf *physmem_pin_memfd(int memfd, u64 offset, u64 length)
{
	u64 max = (u64)READ_ONCE(physmem_max_buffer_mb) << 20;
	struct physmem_buf *buf;
	struct file *file;
	pgoff_t first;
	unsigned long i;
	u64 end;
	int ret;

	if (!length || !PAGE_ALIGNED(offset) || !PAGE_ALIGNED(length) ||
	    length > max || check_add_overflow(offset, length, &end))
		return ERR_PTR(-EINVAL);

	file = fget(memfd);
	if (!file)
		return ERR_PTR(-EBADF);
	ret = physmem_pin_check_memfd(file);
	if (ret)
		goto err_fput;
	if (end > (u64)i_size_read(file_inode(file))) {
		ret = -EINVAL;
		goto err_fput;
	}

	buf = physmem_buf_new(length, PHYSMEM_BUF_PINNED, PHYSMEM_MODE_CACHED);
	if (IS_ERR(buf)) {
		ret = PTR_ERR(buf);
		goto err_fput;
	}

	first = offset >> PAGE_SHIFT;
	for (i = 0; i < buf->npages; i++) {
		struct page *page;

		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			goto err_buf;
		}
		page = physmem_pin_lookup(file->f_mapping, first + i);
		if (!page) {
			ret = -ENODATA;
			goto err_buf;
		}
		buf->pages[i] = page;
		cond_resched();
	}
	fput(file);

	ret = physmem_buf_publish(buf);
	if (ret)
		return ERR_PTR(ret);
	return buf;

err_buf:
	physmem_buf_free(buf);
err_fput:
	fput(file);
	return ERR_PTR(ret);
}
