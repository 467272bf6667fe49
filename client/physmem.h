/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libphysmem: pinned, DMA-able memory buffers from physmemd.
 *
 *	struct physmem *pm;
 *	struct physmem_buffer *buf;
 *	void *p;
 *
 *	if (physmem_connect(NULL, &pm) < 0) ...
 *	if (physmem_alloc(pm, 16 << 20, PHYSMEM_CONTIGUOUS, PHYSMEM_CACHE_WRITECOMBINE, NULL, &buf) < 0)
 *		fprintf(stderr, "%s\n", physmem_error_message(pm));
 *	p = physmem_buffer_map(buf);
 *	physmem_buffer_begin_cpu(buf, PHYSMEM_SYNC_WRITE);
 *	memset(p, 0, physmem_buffer_size(buf));
 *	physmem_buffer_end_cpu(buf, PHYSMEM_SYNC_WRITE);
 *	... program physmem_buffer_segment(buf, 0)->address into the device ...
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
 * org.varlink.service.InvalidParameter -EINVAL, anything else -EPROTO.
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

struct physmem_segment {
	uint64_t address;
	uint64_t length;
};

/* A buffer's description, as physmemd reports it. */
struct physmem_info {
	uint64_t id;
	char name[65];			/* "" when not shared */
	uint64_t size;
	bool contiguous;
	enum physmem_cache cache;
	char backend[16];		/* "memfd" or "kmod" */
	uid_t owner_uid;
	pid_t owner_pid;
	bool locked;
	bool dma_safe;			/* addresses may be given to a device */
	bool segments_known;		/* false: policy hid them or backend can't tell */
	unsigned n_segments;
	struct physmem_segment *segments;	/* n_segments entries */
	unsigned n_allow_uids;
	uid_t allow_uids[64];
	unsigned n_allow_gids;
	gid_t allow_gids[64];
};

struct physmem_status {
	char version[32];
	char backend[16];
	bool dma_safe;
	uint64_t buffers, bytes, connections;
	uint64_t max_buffer_size, max_message_size;
	uint64_t max_connections, max_connections_per_uid;
	char address_policy[16];
	uid_t quota_uid;
	uint64_t quota_max_buffers, quota_max_bytes;
	uint64_t quota_buffers, quota_bytes;
};

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
/* The socket's fd, e.g. to poll for the daemon going away. */
int physmem_fd(const struct physmem *pm);

/* The last Varlink error's name (NULL if the last failure was not one). */
const char *physmem_error_name(const struct physmem *pm);
/* A one-line description of the last failure, for people. */
const char *physmem_error_message(const struct physmem *pm);

/* Allocate a buffer of size bytes (rounded up to the page size by the daemon). */
int physmem_alloc(struct physmem *pm, uint64_t size, unsigned flags, enum physmem_cache cache,
		  const char *name, struct physmem_buffer **ret);
/* Like physmem_alloc, and share it under name with these users and groups. */
int physmem_alloc_shared(struct physmem *pm, uint64_t size, unsigned flags, enum physmem_cache cache,
			 const char *name, const uid_t *uids, unsigned n_uids,
			 const gid_t *gids, unsigned n_gids, struct physmem_buffer **ret);
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

/* Describe a buffer by id; free info with physmem_info_clear(). */
int physmem_describe(struct physmem *pm, uint64_t id, struct physmem_info *ret);
/* List own buffers (all=true: every buffer, root only); free with physmem_info_list_free(). */
int physmem_list(struct physmem *pm, bool all, struct physmem_info **ret, size_t *ret_n);
int physmem_status(struct physmem *pm, struct physmem_status *ret);
/* Free a buffer by id (root may free any). */
int physmem_free_id(struct physmem *pm, uint64_t id);

void physmem_info_clear(struct physmem_info *info);
void physmem_info_list_free(struct physmem_info *list, size_t n);

#ifdef __cplusplus
}
#endif

#endif
