/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libphysmem: struct physmem_status, the daemon's state and the caller's
 * quota, behind accessors so that it can grow without breaking callers.
 */
#include "libphysmem-private.h"

#include <errno.h>
#include <stdlib.h>

#define PHYSMEM_EXPORT __attribute__((visibility("default")))

/* Free what physmem_status() returned. */
PHYSMEM_EXPORT void physmem_status_free(struct physmem_status *st)
{
	if (st) {
		json_object_put(st->json);
		free(st->pools);
	}
	free(st);
}

/* The daemon's version. */
PHYSMEM_EXPORT const char *physmem_status_version(const struct physmem_status *st)
{
	return st ? st->version : "";
}

/* The daemon's backend. */
PHYSMEM_EXPORT const char *physmem_status_backend(const struct physmem_status *st)
{
	return st ? st->backend : "";
}

/* Whether the backend's buffers may be given to devices. */
PHYSMEM_EXPORT bool physmem_status_dma_safe(const struct physmem_status *st)
{
	return st && st->dma_safe;
}

/* Live buffers, daemon-wide. */
PHYSMEM_EXPORT uint64_t physmem_status_buffers(const struct physmem_status *st)
{
	return st ? st->buffers : 0;
}

/* Their bytes. */
PHYSMEM_EXPORT uint64_t physmem_status_bytes(const struct physmem_status *st)
{
	return st ? st->bytes : 0;
}

/* Open connections. */
PHYSMEM_EXPORT uint64_t physmem_status_connections(const struct physmem_status *st)
{
	return st ? st->connections : 0;
}

/* The largest buffer the daemon allocates. */
PHYSMEM_EXPORT uint64_t physmem_status_max_buffer_size(const struct physmem_status *st)
{
	return st ? st->max_buffer_size : 0;
}

/* The largest message the daemon accepts. */
PHYSMEM_EXPORT uint64_t physmem_status_max_message_size(const struct physmem_status *st)
{
	return st ? st->max_message_size : 0;
}

/* The daemon's connection limit. */
PHYSMEM_EXPORT uint64_t physmem_status_max_connections(const struct physmem_status *st)
{
	return st ? st->max_connections : 0;
}

/* The daemon's per-uid connection limit. */
PHYSMEM_EXPORT uint64_t physmem_status_max_connections_per_uid(const struct physmem_status *st)
{
	return st ? st->max_connections_per_uid : 0;
}

/* Who may see segment addresses. */
PHYSMEM_EXPORT const char *physmem_status_address_policy(const struct physmem_status *st)
{
	return st ? st->address_policy : "";
}

/* The uid the quota is the caller's as. */
PHYSMEM_EXPORT uid_t physmem_status_quota_uid(const struct physmem_status *st)
{
	return st ? st->quota_uid : 0;
}

/* The caller's buffer limit. */
PHYSMEM_EXPORT uint64_t physmem_status_quota_max_buffers(const struct physmem_status *st)
{
	return st ? st->quota_max_buffers : 0;
}

/* The caller's byte limit. */
PHYSMEM_EXPORT uint64_t physmem_status_quota_max_bytes(const struct physmem_status *st)
{
	return st ? st->quota_max_bytes : 0;
}

/* Buffers charged to the caller, held ones included. */
PHYSMEM_EXPORT uint64_t physmem_status_quota_buffers(const struct physmem_status *st)
{
	return st ? st->quota_buffers : 0;
}

/* Bytes charged to the caller, held ones included. */
PHYSMEM_EXPORT uint64_t physmem_status_quota_bytes(const struct physmem_status *st)
{
	return st ? st->quota_bytes : 0;
}

/* A figure the daemon may leave out: -ENODATA when it did, else the value in *ret. */
static int reported(bool known, uint64_t value, uint64_t *ret)
{
	if (!ret)
		return -EINVAL;
	if (!known)
		return -ENODATA;
	*ret = value;
	return 0;
}

/* Of those bytes, the ones of freed buffers still held; -ENODATA when not reported. */
PHYSMEM_EXPORT int physmem_status_quota_held_bytes(const struct physmem_status *st, uint64_t *ret)
{
	return st ? reported(st->quota_held_bytes_known, st->quota_held_bytes, ret) : -EINVAL;
}

/* Of the caller's bytes, those from contiguous pools; -ENODATA when not reported. */
PHYSMEM_EXPORT int physmem_status_quota_pool_bytes(const struct physmem_status *st, uint64_t *ret)
{
	return st ? reported(st->quota_pool_bytes_known, st->quota_pool_bytes, ret) : -EINVAL;
}

/* The caller's limit on pool bytes; -ENODATA when not reported. */
PHYSMEM_EXPORT int physmem_status_quota_max_pool_bytes(const struct physmem_status *st, uint64_t *ret)
{
	return st ? reported(st->quota_max_pool_bytes_known, st->quota_max_pool_bytes, ret) : -EINVAL;
}

/* The contiguous pools the daemon reported (0: none, or not a kmod daemon). */
PHYSMEM_EXPORT unsigned physmem_status_n_pools(const struct physmem_status *st)
{
	return st ? st->n_pools : 0;
}

/* Pool i, or NULL when there is no such pool. */
static const struct physmem_pool_entry *pool_at(const struct physmem_status *st, unsigned i)
{
	return st && i < st->n_pools ? &st->pools[i] : NULL;
}

/* Pool i's name (NULL past the last pool). */
PHYSMEM_EXPORT const char *physmem_status_pool_name(const struct physmem_status *st, unsigned i)
{
	const struct physmem_pool_entry *p = pool_at(st, i);

	return p ? p->name : NULL;
}

/* Pool i's kind: "memmap", "reserve_mem" or "cma" (NULL past the last pool). */
PHYSMEM_EXPORT const char *physmem_status_pool_kind(const struct physmem_status *st, unsigned i)
{
	const struct physmem_pool_entry *p = pool_at(st, i);

	return p ? p->kind : NULL;
}

/* Pool i's size in bytes. */
PHYSMEM_EXPORT int physmem_status_pool_size(const struct physmem_status *st, unsigned i, uint64_t *ret)
{
	const struct physmem_pool_entry *p = pool_at(st, i);

	return p ? reported(p->size_known, p->size, ret) : -EINVAL;
}

/* Pool i's free bytes. */
PHYSMEM_EXPORT int physmem_status_pool_free(const struct physmem_status *st, unsigned i, uint64_t *ret)
{
	const struct physmem_pool_entry *p = pool_at(st, i);

	return p ? reported(p->free_known, p->free, ret) : -EINVAL;
}

/* Pool i's longest free run in bytes. */
PHYSMEM_EXPORT int physmem_status_pool_largest_free(const struct physmem_status *st, unsigned i, uint64_t *ret)
{
	const struct physmem_pool_entry *p = pool_at(st, i);

	return p ? reported(p->largest_free_known, p->largest_free, ret) : -EINVAL;
}

/* Pool i's live buffers (0 past the last pool). */
PHYSMEM_EXPORT uint64_t physmem_status_pool_buffers(const struct physmem_status *st, unsigned i)
{
	const struct physmem_pool_entry *p = pool_at(st, i);

	return p ? p->buffers : 0;
}
