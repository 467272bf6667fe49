/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libphysmem: pinned, DMA-able memory buffers from physmemd.
 *
 *	struct physmem *pm;
 *	struct physmem_buffer *buf;
 *	const struct physmem_info *info;
 *	const struct physmem_segment *seg;
 *	void *p;
 *
 *	if (physmem_connect(NULL, &pm) < 0)
 *		return 1;
 *	if (physmem_alloc(pm, 16 << 20, PHYSMEM_CONTIGUOUS, PHYSMEM_CACHE_WRITECOMBINE, NULL, &buf) < 0) {
 *		fprintf(stderr, "%s\n", physmem_error_message(pm));
 *		return 1;
 *	}
 *	p = physmem_buffer_map(buf);
 *	physmem_buffer_begin_cpu(buf, PHYSMEM_SYNC_WRITE);
 *	memset(p, 0, physmem_buffer_size(buf));
 *	physmem_buffer_end_cpu(buf, PHYSMEM_SYNC_WRITE);
 *	info = physmem_buffer_info(buf);
 *	seg = physmem_info_segment(info, 0);		// NULL: none, or hidden by policy
 *	if (seg && physmem_info_dma_safe(info))
 *		program_device(seg->address, seg->length);
 *	physmem_buffer_free(buf);
 *	physmem_disconnect(pm);
 *
 * Every function returning int returns 0 (or a count) on success and a negative
 * errno on failure. When the daemon answered with a Varlink error,
 * physmem_error_name() and physmem_error_message() describe it until the next
 * call on the same connection. Error names map to errnos as follows:
 * NoSuchBuffer -ENOENT, QuotaExceeded -EDQUOT, PermissionDenied -EACCES,
 * SizeOutOfRange -ERANGE, NotSupported -EOPNOTSUPP, AllocationFailed -ENOMEM,
 * NameInUse -EEXIST, AmbiguousName -ENOTUNIQ, NotPopulated -ENODATA,
 * NoSuchDevice -ENODEV, DeviceBusy -EBUSY, PoolUnavailable -ENOSPC,
 * org.varlink.service.InvalidParameter -EINVAL, anything else -EPROTO.
 *
 * ABI: struct physmem, physmem_buffer, physmem_info and physmem_status are
 * opaque; read them with the accessors below, so that they can gain fields
 * without breaking programs built against an older header. Only struct
 * physmem_segment is a plain struct, and it never grows.
 *
 * There is no global state. A connection (struct physmem) and the buffers
 * made through it may be used by one thread at a time; use one connection per
 * thread, or a lock of your own. Buffer mappings and fds are ordinary memory
 * and fds and can be used from any thread.
 */
#ifndef PHYSMEM_H
#define PHYSMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct physmem;
struct physmem_buffer;

enum physmem_cache {
	PHYSMEM_CACHE_CACHED = 0,	/* the fast default */
	PHYSMEM_CACHE_WRITECOMBINE = 1,	/* streaming writes to a device */
	PHYSMEM_CACHE_UNCACHED = 2,	/* every CPU read goes to memory: very slow */
};

/* Allocation flags. */
#define PHYSMEM_CONTIGUOUS	(1u << 0)	/* one physically contiguous run */

/* Directions for physmem_buffer_begin_cpu()/end_cpu(). */
#define PHYSMEM_SYNC_READ	(1u << 0)
#define PHYSMEM_SYNC_WRITE	(1u << 1)
#define PHYSMEM_SYNC_RW		(PHYSMEM_SYNC_READ | PHYSMEM_SYNC_WRITE)

/* One physically contiguous run of a buffer: fixed forever, never grows. */
struct physmem_segment {
	uint64_t address;
	uint64_t length;
};

/* How a bound PCI device may access a buffer. */
enum physmem_device_access {
	PHYSMEM_ACCESS_BIDIRECTIONAL = 0,	/* reads and writes (the default) */
	PHYSMEM_ACCESS_TO_DEVICE = 1,		/* the device only reads the buffer */
	PHYSMEM_ACCESS_FROM_DEVICE = 2,		/* the device only writes it */
};

/* One binding of a buffer to a PCI device, in a description (opaque; accessors below). */
struct physmem_binding;

/* A buffer's description, as physmemd reports it (opaque; accessors below). */
struct physmem_info;
/* The daemon's state and the caller's quota (opaque; accessors below). */
struct physmem_status;

/*
 * Connect to physmemd. path NULL means: $PHYSMEM_SOCKET if set, else
 * /run/physmem/physmemd.sock if it exists, else this user's own daemon socket
 * ($XDG_RUNTIME_DIR/physmem/physmemd.sock or /tmp/physmem-$UID/physmemd.sock).
 * A socket chosen this way (not path, not $PHYSMEM_SOCKET) must sit in a
 * directory owned by root or the caller and writable by nobody else, and be
 * owned by one of them (no symlinks); any socket must be served by root or
 * the caller (SO_PEERCRED). Otherwise nothing is sent and -EPERM is returned.
 */
int physmem_connect(const char *path, struct physmem **ret);
/* Close the connection. Buffers not shared by name are freed by the daemon;
 * struct physmem_buffer objects stay valid for unmap/close. NULL is allowed. */
void physmem_disconnect(struct physmem *pm);
/* The socket's fd, e.g. to poll for the daemon going away. Its flags and
 * options (O_NONBLOCK, SO_RCVTIMEO) are the library's: leave them as they are. */
int physmem_fd(const struct physmem *pm);

/* The last Varlink error's name (NULL if the last failure was not one). */
const char *physmem_error_name(const struct physmem *pm);
/* A one-line description of the last failure, for people. */
const char *physmem_error_message(const struct physmem *pm);

/*
 * Allocate a buffer of size bytes (rounded up to the page size by the daemon).
 * On failure no buffer of the call stays charged to the caller, except as
 * physmem_error_message() then says: when the reply was lost (the connection
 * became unusable while reading it: out of memory, a timeout) the buffer may
 * have been made all the same, an unnamed one until the connection is closed
 * (physmem_disconnect()), a named one until it is freed (physmem_list() shows
 * it); and when the library could not take a buffer for want of memory it
 * frees it again, which can fail too.
 */
int physmem_alloc(struct physmem *pm, uint64_t size, unsigned flags, enum physmem_cache cache,
		  const char *name, struct physmem_buffer **ret);
/*
 * Allocate one physically contiguous run of size bytes from the kernel
 * module's contiguous pool named pool (see physmem_status_pool_name()): far
 * larger than PHYSMEM_CONTIGUOUS allows. Never a fallback: -ENOSPC
 * (PoolUnavailable) when the pool is exhausted, fragmented, busy or absent,
 * -EACCES when physmemd.conf's pool-users does not name the caller,
 * -EOPNOTSUPP on the memfd backend.
 */
int physmem_alloc_pool(struct physmem *pm, uint64_t size, const char *pool, enum physmem_cache cache,
		       const char *name, struct physmem_buffer **ret);
/* Like physmem_alloc, and share it under name with these users and groups. */
int physmem_alloc_shared(struct physmem *pm, uint64_t size, unsigned flags, enum physmem_cache cache,
			 const char *name, const uid_t *uids, unsigned n_uids,
			 const gid_t *gids, unsigned n_gids, struct physmem_buffer **ret);
/*
 * Like physmem_alloc, and bind the buffer to the PCI device named "DDDD:BB:DD.F"
 * (see physmem_bind()): the description then carries the device's addresses.
 * If the bind fails, no buffer is left and its error is returned.
 */
int physmem_alloc_bound(struct physmem *pm, uint64_t size, unsigned flags, enum physmem_cache cache,
			const char *name, const char *device, enum physmem_device_access access,
			struct physmem_buffer **ret);
/*
 * Both: one contiguous run from the pool named pool (as physmem_alloc_pool),
 * then bound to device (as physmem_alloc_bound). If either fails, no buffer
 * is left and its error is returned.
 */
int physmem_alloc_pool_bound(struct physmem *pm, uint64_t size, const char *pool, enum physmem_cache cache,
			     const char *name, const char *device, enum physmem_device_access access,
			     struct physmem_buffer **ret);
/*
 * Bind a buffer the caller owns or may import (by id) to a PCI device, if
 * the daemon's policy lets the caller (kmod backend only). ret (may be NULL)
 * receives the updated description; free it with physmem_info_free(). The
 * binding lasts until physmem_unbind() or until the buffer is freed.
 */
int physmem_bind(struct physmem *pm, uint64_t id, const char *device, enum physmem_device_access access,
		 struct physmem_info **ret);
/* Remove a binding (made by the caller, or of a buffer it owns). */
int physmem_unbind(struct physmem *pm, uint64_t id, const char *device);
/* Give an own buffer a name and the users and groups that may import it. */
int physmem_share(struct physmem_buffer *buf, const char *name, const uid_t *uids, unsigned n_uids,
		  const gid_t *gids, unsigned n_gids);
/*
 * Import a buffer shared by name. Names are unique per owner: this takes the
 * one buffer of that name the caller may import, and fails with -ENOTUNIQ
 * (AmbiguousName) when several owners share one.
 */
int physmem_import(struct physmem *pm, const char *name, struct physmem_buffer **ret);
/* Import owner's buffer of that name, and no one else's: the safe way to import. */
int physmem_import_owned(struct physmem *pm, const char *name, uid_t owner, struct physmem_buffer **ret);
/* Pin the pages of a sealed memfd (kmod backend only). */
int physmem_pin(struct physmem *pm, int memfd, uint64_t offset, uint64_t size, const char *name,
		struct physmem_buffer **ret);

/* Ask the daemon to free the buffer, unmap it, close its fd, free the object. */
int physmem_buffer_free(struct physmem_buffer *buf);
/* Unmap and close without asking the daemon (e.g. for an imported buffer). */
void physmem_buffer_close(struct physmem_buffer *buf);

/*
 * Map the whole buffer read/write (once; later calls return the same address). NULL + errno on failure.
 * A memfd buffer's pages are allocated here, charged to the calling process: ENOMEM when they cannot be.
 */
void *physmem_buffer_map(struct physmem_buffer *buf);
int physmem_buffer_unmap(struct physmem_buffer *buf);
/* The buffer's fd (owned by the buffer; dup it to keep it). */
int physmem_buffer_fd(const struct physmem_buffer *buf);
uint64_t physmem_buffer_id(const struct physmem_buffer *buf);
uint64_t physmem_buffer_size(const struct physmem_buffer *buf);
/* The description received with the buffer (segments per policy). */
const struct physmem_info *physmem_buffer_info(const struct physmem_buffer *buf);

/* Bracket CPU access for DMA coherency (DMA_BUF_IOCTL_SYNC on kmod buffers; memfd buffers are coherent). */
int physmem_buffer_begin_cpu(struct physmem_buffer *buf, unsigned directions);
int physmem_buffer_end_cpu(struct physmem_buffer *buf, unsigned directions);

/* Describe a buffer by id; free it with physmem_info_free(). */
int physmem_describe(struct physmem *pm, uint64_t id, struct physmem_info **ret);
/* List own buffers (all=true: every buffer, root only): *ret is an array of
 * *ret_n descriptions; free it with physmem_info_list_free(). */
int physmem_list(struct physmem *pm, bool all, struct physmem_info ***ret, size_t *ret_n);
/* The daemon's state and the caller's quota; free it with physmem_status_free(). */
int physmem_status(struct physmem *pm, struct physmem_status **ret);
/* Free a buffer by id (root may free any). */
int physmem_free_id(struct physmem *pm, uint64_t id);

/* Free what physmem_describe() returned (not physmem_buffer_info()'s). NULL is allowed. */
void physmem_info_free(struct physmem_info *info);
/* Free what physmem_list() returned. NULL is allowed. */
void physmem_info_list_free(struct physmem_info **list, size_t n);

/*
 * A description's fields. Strings and arrays live as long as the description.
 * A NULL info reads as zero, "" or NULL.
 */
uint64_t physmem_info_id(const struct physmem_info *info);
/* The name it is shared under; "" when not shared. */
const char *physmem_info_name(const struct physmem_info *info);
uint64_t physmem_info_size(const struct physmem_info *info);
bool physmem_info_contiguous(const struct physmem_info *info);
enum physmem_cache physmem_info_cache(const struct physmem_info *info);
/* "memfd" or "kmod". */
const char *physmem_info_backend(const struct physmem_info *info);
uid_t physmem_info_owner_uid(const struct physmem_info *info);
pid_t physmem_info_owner_pid(const struct physmem_info *info);
bool physmem_info_locked(const struct physmem_info *info);
/* Whether its addresses may be given to a device. */
bool physmem_info_dma_safe(const struct physmem_info *info);
/* false: policy hid the segments or the backend cannot tell (then there are none). */
bool physmem_info_segments_known(const struct physmem_info *info);
unsigned physmem_info_n_segments(const struct physmem_info *info);
/* Segment i, or NULL when i >= physmem_info_n_segments(). */
const struct physmem_segment *physmem_info_segment(const struct physmem_info *info, unsigned i);
/* The users and groups that may import it: *ret_n entries (NULL when none). */
const uid_t *physmem_info_allow_uids(const struct physmem_info *info, unsigned *ret_n);
const gid_t *physmem_info_allow_gids(const struct physmem_info *info, unsigned *ret_n);
/* The PCI devices the buffer is bound to, and binding i (NULL past the last). */
unsigned physmem_info_n_bindings(const struct physmem_info *info);
const struct physmem_binding *physmem_info_binding(const struct physmem_info *info, unsigned i);

/* A binding's fields (a NULL binding reads as zero, "" or false); they live as long as the description. */
/* The device, "dddd:bb:dd.f". */
const char *physmem_binding_device(const struct physmem_binding *b);
/* "iommu" (the segments are IOVAs for this device only), "passthrough" or "direct". */
const char *physmem_binding_translation(const struct physmem_binding *b);
enum physmem_device_access physmem_binding_access(const struct physmem_binding *b);
/* The device went away or vfio took it over: the mapping is gone; unbind it. */
bool physmem_binding_revoked(const struct physmem_binding *b);
/* false: policy hid the device's addresses, or the binding is revoked (then there are none). */
bool physmem_binding_segments_known(const struct physmem_binding *b);
unsigned physmem_binding_n_segments(const struct physmem_binding *b);
/* The device's segment i (bus addresses to program into it), or NULL past the last. */
const struct physmem_segment *physmem_binding_segment(const struct physmem_binding *b, unsigned i);
/* The contiguous pool it came from; "" when none. */
const char *physmem_info_pool(const struct physmem_info *info);

/* Free what physmem_status() returned. NULL is allowed. */
void physmem_status_free(struct physmem_status *st);
/* The daemon's fields. Strings live as long as st. A NULL st reads as zero or "". */
const char *physmem_status_version(const struct physmem_status *st);
const char *physmem_status_backend(const struct physmem_status *st);
bool physmem_status_dma_safe(const struct physmem_status *st);
/* Live buffers, their bytes and the open connections, daemon-wide. */
uint64_t physmem_status_buffers(const struct physmem_status *st);
uint64_t physmem_status_bytes(const struct physmem_status *st);
uint64_t physmem_status_connections(const struct physmem_status *st);
uint64_t physmem_status_max_buffer_size(const struct physmem_status *st);
uint64_t physmem_status_max_message_size(const struct physmem_status *st);
uint64_t physmem_status_max_connections(const struct physmem_status *st);
uint64_t physmem_status_max_connections_per_uid(const struct physmem_status *st);
/* Who may see segment addresses: "owner", "root" or "none". */
const char *physmem_status_address_policy(const struct physmem_status *st);
/* The caller's quota: its uid, its limits and what is charged to it. */
uid_t physmem_status_quota_uid(const struct physmem_status *st);
uint64_t physmem_status_quota_max_buffers(const struct physmem_status *st);
uint64_t physmem_status_quota_max_bytes(const struct physmem_status *st);
/* Charged buffers and bytes, including freed ones still held. */
uint64_t physmem_status_quota_buffers(const struct physmem_status *st);
uint64_t physmem_status_quota_bytes(const struct physmem_status *st);
/*
 * Of the charged bytes, those of buffers already freed whose memory an fd, a
 * mapping or an importer still holds. -ENODATA when the daemon does not report
 * it (an older daemon), -EINVAL when st is NULL.
 */
int physmem_status_quota_held_bytes(const struct physmem_status *st, uint64_t *ret);
/* Of the charged bytes, those from contiguous pools, and their limit (-ENODATA: not reported). */
int physmem_status_quota_pool_bytes(const struct physmem_status *st, uint64_t *ret);
int physmem_status_quota_max_pool_bytes(const struct physmem_status *st, uint64_t *ret);
/*
 * The kernel module's contiguous pools: physmem_status_n_pools() of them
 * (0 on the memfd backend). Name and kind ("memmap", "reserve_mem", "cma")
 * are NULL past the last pool; size, free and largest free run return
 * -ENODATA when the module cannot tell (a CMA area shared with the kernel),
 * -EINVAL past the last pool.
 */
unsigned physmem_status_n_pools(const struct physmem_status *st);
const char *physmem_status_pool_name(const struct physmem_status *st, unsigned i);
const char *physmem_status_pool_kind(const struct physmem_status *st, unsigned i);
int physmem_status_pool_size(const struct physmem_status *st, unsigned i, uint64_t *ret);
int physmem_status_pool_free(const struct physmem_status *st, unsigned i, uint64_t *ret);
int physmem_status_pool_largest_free(const struct physmem_status *st, unsigned i, uint64_t *ret);
uint64_t physmem_status_pool_buffers(const struct physmem_status *st, unsigned i);

#ifdef __cplusplus
}
#endif

#endif
