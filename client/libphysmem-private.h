/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libphysmem internals shared by the library's files, physmemctl and the unit
 * tests. Nothing here is exported from the shared library.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "physmem.h"
#include "varlink-message.h"

/* How long one call may wait for the daemon. */
#define PHYSMEM_CALL_TIMEOUT_MS 30000
/* Largest reply accepted (the daemon's message limit is the real bound). */
#define PHYSMEM_MAX_REPLY (16u << 20)

/* The opaque structs of physmem.h. Fields may be added anywhere: no caller sees them. */
struct physmem_binding {
	char device[16];		/* "dddd:bb:dd.f" */
	char translation[16];		/* "iommu", "passthrough", "direct" */
	int access;			/* enum physmem_device_access */
	bool revoked;
	bool segments_known;
	unsigned n_segments;
	struct physmem_segment *segments;	/* the device's addresses */
};

/* At most this many bindings of a buffer are read from a reply. */
#define PHYSMEM_MAX_BINDINGS 64

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
	bool dma_safe;
	uint64_t page_size;		/* 0: not reported */
	bool thp;			/* map with MADV_HUGEPAGE */
	bool segments_known;
	unsigned n_segments;
	struct physmem_segment *segments;	/* n_segments entries */
	struct vl_id_array allow_uids;
	struct vl_id_array allow_gids;
	unsigned n_bindings;
	struct physmem_binding *bindings;	/* n_bindings entries */
	char pool[32];			/* "" when not from a contiguous pool */
	struct json_object *json;	/* the reply's Buffer object (a reference), or NULL */
};

/* One entry of Status's pools. */
struct physmem_pool_entry {
	char name[32];
	char kind[16];
	uint64_t size, free, largest_free, buffers;
	bool size_known, free_known, largest_free_known;
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
	bool quota_held_bytes_known;	/* heldBytes is nullable: older daemons omit it */
	uint64_t quota_held_bytes;
	bool quota_pool_bytes_known, quota_max_pool_bytes_known;
	uint64_t quota_pool_bytes, quota_max_pool_bytes;
	unsigned n_pools;
	struct physmem_pool_entry *pools;	/* n_pools entries (NULL: none, or not reported) */
	struct json_object *json;	/* the reply's parameters (a reference), or NULL */
};

/* physmem-info.c: free what an info owns (not info itself) and zero it. */
void physmem_info_done(struct physmem_info *info);

/*
 * physmem-reply.c: turn reply parameters into C structs, strictly: every
 * field the interface marks non-nullable must be there with the right type
 * and range (vl_dispatch() with one field table per interface type). Fields
 * this client does not know are kept in the struct's json, not parsed
 * (interfaces grow by adding nullable fields). On failure *ret_field names the
 * offending field, nothing is allocated, and -EPROTO (or -ENOMEM) is returned.
 */
int physmem_reply_buffer(struct json_object *obj, struct physmem_info *ret, const char **ret_field);
/* *ret: an array of *ret_n allocated descriptions (physmem_info_list_free()). */
/*
 * The parameters of a reply carrying one Buffer as "buffer": with
 * ret_fd_index, also its "bufferFileDescriptor" (Allocate, Pin, Import: not
 * checked against the fds that came); without, Share and Describe.
 */
int physmem_reply_buffer_params(struct json_object *params, struct physmem_info *ret, int64_t *ret_fd_index,
				const char **ret_field);
int physmem_reply_buffer_list(struct json_object *params, struct physmem_info ***ret, size_t *ret_n,
			      const char **ret_field);
int physmem_reply_status(struct json_object *params, struct physmem_status *ret, const char **ret_field);
/*
 * Add to o every member of reply that o lacks: fields of a newer interface
 * this client does not know, so that physmemctl --json prints all the reply has.
 */
void physmem_reply_add_unknown(struct json_object *o, struct json_object *reply);
/* The negative errno for a Varlink error name (see physmem.h). */
int physmem_reply_error_errno(const char *name);
/* A one-line, printable description of a Varlink error and its parameters. */
void physmem_reply_error_message(const char *name, struct json_object *params, char *buf, size_t size);
/* Copy s into buf as one printable line (control characters become '?'). */
void physmem_reply_sanitize(char *buf, size_t size, const char *s);

/* libphysmem.c: physmem_connect, and on failure one line for people in err. */
int physmem_connect_explained(const char *path, struct physmem **ret, char *err, size_t errsize);
