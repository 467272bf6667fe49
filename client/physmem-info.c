/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libphysmem: struct physmem_info, a buffer's description, behind accessors
 * so that it can grow without breaking callers built against an older header.
 */
#include "libphysmem-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PHYSMEM_EXPORT __attribute__((visibility("default")))

/* Free what an info owns (its segments) and zero it; info itself stays. */
void physmem_info_done(struct physmem_info *info)
{
	if (!info)
		return;
	free(info->segments);
	for (unsigned i = 0; i < info->n_bindings; i++)
		free(info->bindings[i].segments);
	free(info->bindings);
	json_object_put(info->json);
	memset(info, 0, sizeof(*info));
}

/* Free a description returned by physmem_describe(). */
PHYSMEM_EXPORT void physmem_info_free(struct physmem_info *info)
{
	physmem_info_done(info);
	free(info);
}

/* Free the array of descriptions returned by physmem_list(). */
PHYSMEM_EXPORT void physmem_info_list_free(struct physmem_info **list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		physmem_info_free(list[i]);
	free(list);
}

/* The buffer's id. */
PHYSMEM_EXPORT uint64_t physmem_info_id(const struct physmem_info *info)
{
	return info ? info->id : 0;
}

/* The name it is shared under, "" when none. */
PHYSMEM_EXPORT const char *physmem_info_name(const struct physmem_info *info)
{
	return info ? info->name : "";
}

/* Its size in bytes. */
PHYSMEM_EXPORT uint64_t physmem_info_size(const struct physmem_info *info)
{
	return info ? info->size : 0;
}

/* Whether it is one physically contiguous run. */
PHYSMEM_EXPORT bool physmem_info_contiguous(const struct physmem_info *info)
{
	return info && info->contiguous;
}

/* Its CPU cache mode. */
PHYSMEM_EXPORT enum physmem_cache physmem_info_cache(const struct physmem_info *info)
{
	return info ? info->cache : PHYSMEM_CACHE_CACHED;
}

/* The daemon backend that made it. */
PHYSMEM_EXPORT const char *physmem_info_backend(const struct physmem_info *info)
{
	return info ? info->backend : "";
}

/* The owner's uid. */
PHYSMEM_EXPORT uid_t physmem_info_owner_uid(const struct physmem_info *info)
{
	return info ? info->owner_uid : 0;
}

/* The owner's pid (as the daemon saw it). */
PHYSMEM_EXPORT pid_t physmem_info_owner_pid(const struct physmem_info *info)
{
	return info ? info->owner_pid : 0;
}

/* Whether its pages are locked in memory. */
PHYSMEM_EXPORT bool physmem_info_locked(const struct physmem_info *info)
{
	return info && info->locked;
}

/* Whether its addresses may be given to a device. */
PHYSMEM_EXPORT bool physmem_info_dma_safe(const struct physmem_info *info)
{
	return info && info->dma_safe;
}

/* Whether the daemon told its segments. */
PHYSMEM_EXPORT bool physmem_info_segments_known(const struct physmem_info *info)
{
	return info && info->segments_known;
}

/* How many segments it has (0 when unknown). */
PHYSMEM_EXPORT unsigned physmem_info_n_segments(const struct physmem_info *info)
{
	return info ? info->n_segments : 0;
}

/* Segment i, NULL when out of range. */
PHYSMEM_EXPORT const struct physmem_segment *physmem_info_segment(const struct physmem_info *info, unsigned i)
{
	if (!info || i >= info->n_segments)
		return NULL;
	return &info->segments[i];
}

/* The uids that may import it. */
PHYSMEM_EXPORT const uid_t *physmem_info_allow_uids(const struct physmem_info *info, unsigned *ret_n)
{
	unsigned n = info ? info->allow_uids.n : 0;

	if (ret_n)
		*ret_n = n;
	return n > 0 ? (const uid_t *)info->allow_uids.v : NULL;
}

/* The gids that may import it. */
PHYSMEM_EXPORT const gid_t *physmem_info_allow_gids(const struct physmem_info *info, unsigned *ret_n)
{
	unsigned n = info ? info->allow_gids.n : 0;

	if (ret_n)
		*ret_n = n;
	return n > 0 ? (const gid_t *)info->allow_gids.v : NULL;
}

/* How many PCI devices the buffer is bound to. */
PHYSMEM_EXPORT unsigned physmem_info_n_bindings(const struct physmem_info *info)
{
	return info ? info->n_bindings : 0;
}

/* Binding i, or NULL past the last. */
PHYSMEM_EXPORT const struct physmem_binding *physmem_info_binding(const struct physmem_info *info, unsigned i)
{
	return info && i < info->n_bindings ? &info->bindings[i] : NULL;
}

/* The bound device's PCI address, "dddd:bb:dd.f". */
PHYSMEM_EXPORT const char *physmem_binding_device(const struct physmem_binding *b)
{
	return b ? b->device : "";
}

/* "iommu", "passthrough" or "direct". */
PHYSMEM_EXPORT const char *physmem_binding_translation(const struct physmem_binding *b)
{
	return b ? b->translation : "";
}

/* How the device may access the buffer. */
PHYSMEM_EXPORT enum physmem_device_access physmem_binding_access(const struct physmem_binding *b)
{
	return b ? (enum physmem_device_access)b->access : PHYSMEM_ACCESS_BIDIRECTIONAL;
}

/* Whether the device went away or was taken over (the mapping is gone). */
PHYSMEM_EXPORT bool physmem_binding_revoked(const struct physmem_binding *b)
{
	return b && b->revoked;
}

/* false: policy hid the device's addresses (or the binding is revoked). */
PHYSMEM_EXPORT bool physmem_binding_segments_known(const struct physmem_binding *b)
{
	return b && b->segments_known;
}

/* The number of the device's segments. */
PHYSMEM_EXPORT unsigned physmem_binding_n_segments(const struct physmem_binding *b)
{
	return b ? b->n_segments : 0;
}

/* The device's segment i (its bus addresses), or NULL past the last. */
PHYSMEM_EXPORT const struct physmem_segment *physmem_binding_segment(const struct physmem_binding *b, unsigned i)
{
	return b && i < b->n_segments ? &b->segments[i] : NULL;
}

/* The contiguous pool the buffer came from; "" when none. */
PHYSMEM_EXPORT const char *physmem_info_pool(const struct physmem_info *info)
{
	return info ? info->pool : "";
}
