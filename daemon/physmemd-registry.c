/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The buffer registry: every live buffer, who owns it, and what each uid is
 * charged. Memory stays charged to its owner until the backend really gives
 * it back, including after the owner disconnected from a named buffer.
 */
#include <errno.h>
#include <search.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "physmemd.h"

void registry_init(struct registry *r, const struct conf *conf, const struct backend_ops *backend,
		   void *backend_state)
{
	memset(r, 0, sizeof(*r));
	r->conf = conf;
	r->backend = backend;
	r->backend_state = backend_state;
	r->next_id = 1;
	TAILQ_INIT(&r->buffers);
	TAILQ_INIT(&r->usage);
}

/* Order of registry.by_uid, whose keys point at usage.uid. */
static int uid_cmp(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;

	return (x > y) - (x < y);
}

struct usage *registry_usage(struct registry *r, uid_t uid, bool create)
{
	void **node = tfind(&uid, &r->by_uid, uid_cmp);
	struct usage *u;

	if (node)
		return (struct usage *)((char *)*node - offsetof(struct usage, uid));
	if (!create)
		return NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = uid;
	TAILQ_INIT(&u->held);
	TAILQ_INIT(&u->owned);
	TAILQ_INIT(&u->named);
	if (!tsearch(&u->uid, &r->by_uid, uid_cmp)) {
		free(u);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&r->usage, u, entry);
	return u;
}

static void usage_free(struct registry *r, struct usage *u)
{
	TAILQ_REMOVE(&r->usage, u, entry);
	tdelete(&u->uid, &r->by_uid, uid_cmp);
	free(u);
}

/*
 * Drop a usage record that no longer counts anything: also no loop time in
 * a window that has not ended (else a uid that closed all its connections
 * would come back with a clean slate; the server drops it when it ends).
 */
void registry_usage_put(struct registry *r, struct usage *u)
{
	if (u && u->buffers == 0 && u->bytes == 0 && u->connections == 0 && u->bindings == 0 && u->loop_refs == 0 &&
	    u->loop_ns == 0 && !u->loop_over)
		usage_free(r, u);
}

/* Order of registry.by_id, whose keys point at buffer.id. */
static int id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

struct buffer *registry_find(struct registry *r, uint64_t id)
{
	void **node = tfind(&id, &r->by_id, id_cmp);

	return node ? (struct buffer *)((char *)*node - offsetof(struct buffer, id)) : NULL;
}

/* Every owner's buffers of one name (registry.by_name, keyed by name). */
struct name_bucket {
	char name[65];
	TAILQ_HEAD(, buffer) buffers;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static struct name_bucket *name_bucket(struct registry *r, const char *name)
{
	void **node = tfind(name, &r->by_name, name_cmp);

	return node ? (struct name_bucket *)((char *)*node - offsetof(struct name_bucket, name)) : NULL;
}

/* Take b out of its name's bucket, and the bucket away when it was the last. */
static void name_remove(struct registry *r, struct buffer *b)
{
	struct name_bucket *nb = name_bucket(r, b->name);

	TAILQ_REMOVE(&nb->buffers, b, name_entry);
	if (TAILQ_EMPTY(&nb->buffers)) {
		tdelete(nb->name, &r->by_name, name_cmp);
		free(nb);
	}
}

int registry_set_name(struct registry *r, struct buffer *b, const char *name)
{
	struct usage *u = registry_usage(r, b->owner_uid, false);
	struct name_bucket *nb;

	if (b->name[0] && strcmp(b->name, name) == 0)
		return 0;
	/* (Never NULL: registry_add() made sure of a record that counts b.) */
	if (!u)
		return -ENOMEM;
	nb = name_bucket(r, name);
	if (!nb) {
		nb = calloc(1, sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		snprintf(nb->name, sizeof(nb->name), "%s", name);
		TAILQ_INIT(&nb->buffers);
		if (!tsearch(nb->name, &r->by_name, name_cmp)) {
			free(nb);
			return -ENOMEM;
		}
	}
	if (b->name[0])
		name_remove(r, b);
	snprintf(b->name, sizeof(b->name), "%s", name);
	TAILQ_INSERT_TAIL(&nb->buffers, b, name_entry);
	if (!b->on_named) {
		TAILQ_INSERT_TAIL(&u->named, b, named_entry);
		b->on_named = true;
	}
	return 0;
}

/* Take b off the registry's list, out of its trees and off its owner's lists. */
static void registry_unlist(struct registry *r, struct buffer *b)
{
	/* b is counted in its owner's usage until its release is done: it is there. */
	struct usage *u = registry_usage(r, b->owner_uid, false);

	TAILQ_REMOVE(&r->buffers, b, entry);
	TAILQ_REMOVE(&u->owned, b, uid_entry);
	tdelete(&b->id, &r->by_id, id_cmp);
	if (b->owner) {
		TAILQ_REMOVE(&b->owner->owned, b, owner_entry);
		b->owner = NULL;
	}
	if (b->on_named) {
		TAILQ_REMOVE(&u->named, b, named_entry);
		b->on_named = false;
		name_remove(r, b);
	}
	free(b->meta_text);
	b->meta_text = NULL;
}

struct buffer *registry_find_name(struct registry *r, uid_t owner_uid, const char *name)
{
	struct buffer *b = NULL;

	while ((b = registry_next_name(r, b, name)))
		if (b->owner_uid == owner_uid)
			return b;
	return NULL;
}

/* From name's bucket: a lookup, then the buffers of that name only. */
struct buffer *registry_next_name(struct registry *r, struct buffer *after, const char *name)
{
	struct name_bucket *nb;

	if (after)
		return TAILQ_NEXT(after, name_entry);
	nb = name_bucket(r, name);
	return nb ? TAILQ_FIRST(&nb->buffers) : NULL;
}

struct buffer *registry_add(struct registry *r, struct conn *owner, uid_t uid, pid_t pid,
			    const struct backend_buffer *bb, int cache, uint64_t id)
{
	/* Its uid's record counts it from here on: without one, no buffer. */
	struct usage *u = registry_usage(r, uid, true);
	struct buffer *b = u ? calloc(1, sizeof(*b)) : NULL;
	void **node;

	if (!b) {
		registry_usage_put(r, u);
		return NULL;
	}
	b->id = id ? id : r->next_id++;
	/* An id in use (a restored buffer listed twice) is refused. */
	node = tsearch(&b->id, &r->by_id, id_cmp);
	if (!node || *node != &b->id) {
		free(b);
		registry_usage_put(r, u);
		return NULL;
	}
	if (b->id >= r->next_id)
		r->next_id = b->id + 1;
	/* No id may come back after a restart: the stored mark must pass it first. */
	if (r->next_id > r->id_mark)
		fdstore_reserve_ids(r);
	b->cache = cache;
	b->owner_uid = uid;
	b->owner_pid = pid;
	b->owner = owner;
	b->b = *bb;
	TAILQ_INSERT_TAIL(&r->buffers, b, entry);
	TAILQ_INSERT_TAIL(&u->owned, b, uid_entry);
	if (owner)
		TAILQ_INSERT_TAIL(&owner->owned, b, owner_entry);
	registry_charge(r, uid, bb->size);
	if (bb->from_pool)
		registry_charge_pool(r, uid, bb->size);
	/*
	 * At debug, as Free's line: a client makes one per call, and at info
	 * they would spend journald's rate limit for the daemon (10,000 lines
	 * in 30 s by default), after which its warnings are dropped too.
	 */
	log_debug("buffer %llu: %llu bytes for uid %u pid %d%s%s", (unsigned long long)b->id,
		 (unsigned long long)bb->size, (unsigned)uid, (int)pid, bb->from_pool ? " from pool " : "",
		 bb->from_pool ? (bb->pool[0] ? bb->pool : "?") : "");
	return b;
}

int registry_alloc_size(const struct registry *r, uint64_t size, uint64_t *ret)
{
	uint64_t unit = r->backend->granule ? r->backend->granule(r->backend_state) : (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t max = r->conf->max_buffer_size;

	if (size == 0 || size > max || unit == 0)
		return -ERANGE;
	/* size <= max, so no overflow unless max is within a unit of 2^64. */
	if (size > UINT64_MAX - (unit - 1))
		return -ERANGE;
	size = (size + unit - 1) / unit * unit;
	if (size > max)
		return -ERANGE;
	*ret = size;
	return 0;
}

/* Uncharge one buffer of bytes from a uid's usage, keeping the record. */
static void uncharge_keep(struct usage *u, uint64_t bytes)
{
	u->buffers--;
	u->bytes -= bytes;
}

/* The same, and drop the record if it counts nothing any more. */
static void uncharge(struct registry *r, struct usage *u, uint64_t bytes)
{
	uncharge_keep(u, bytes);
	registry_usage_put(r, u);
}

void registry_charge(struct registry *r, uid_t uid, uint64_t size)
{
	struct usage *u = registry_usage(r, uid, true);

	if (u) {
		u->buffers++;
		u->bytes += size;
	}
	r->n_buffers++;
	r->bytes += size;
}

void registry_uncharge(struct registry *r, uid_t uid, uint64_t size)
{
	struct usage *u = registry_usage(r, uid, false);

	if (u)
		uncharge(r, u, size);
	r->n_buffers--;
	r->bytes -= size;
}

void registry_charge_pool(struct registry *r, uid_t uid, uint64_t size)
{
	struct usage *u = registry_usage(r, uid, false);

	if (u)
		u->pool_bytes += size;
}

void registry_uncharge_pool(struct registry *r, uid_t uid, uint64_t size)
{
	struct usage *u = registry_usage(r, uid, false);

	if (u)
		u->pool_bytes -= size;
}

/* A release job: what to uncharge once the backend has let the buffer go. */
struct release_job {
	struct job job;
	struct registry *r;
	uint64_t charged;
	uint64_t kernel_id;
	bool pool;
};

/*
 * The buffer is released: uncharge it (and its pool bytes, for a pool
 * buffer), unless someone still holds its memory.
 */
static void registry_released(struct registry *r, uid_t uid, uint64_t kernel_id, uint64_t charged, bool pool)
{
	struct usage *u = registry_usage(r, uid, false);
	struct held *h;

	/*
	 * A client that kept the fd keeps the memory: it stays charged to
	 * the owner until the kernel really frees it (registry_reap).
	 */
	if (u && r->backend->held && r->backend->held(r->backend_state, kernel_id) > 0 &&
	    (h = calloc(1, sizeof(*h)))) {
		h->uid = uid;
		h->bytes = charged;
		h->kernel_id = kernel_id;
		h->pool = pool;
		u->held_bytes += charged;
		TAILQ_INSERT_TAIL(&u->held, h, uid_entry);
		r->n_buffers--;
		r->bytes -= charged;
		log_client_info("kernel buffer %llu: memory still held elsewhere, stays charged to uid %u",
				(unsigned long long)kernel_id, (unsigned)uid);
		fdstore_held_changed(r);
		return;
	}
	if (pool)
		registry_uncharge_pool(r, uid, charged);
	registry_uncharge(r, uid, charged);
}

static void release_done(struct job *j)
{
	struct release_job *rj = (struct release_job *)j;

	registry_released(rj->r, j->uid, rj->kernel_id, rj->charged, rj->pool);
	free(rj);
}

void registry_release(struct registry *r, uid_t uid, struct backend_buffer *bb, uint64_t charged)
{
	struct release_job *rj = r->workers ? calloc(1, sizeof(*rj)) : NULL;
	uint64_t kernel_id = bb->kernel_id;
	bool pool = bb->from_pool;

	if (!rj) {
		/* Startup, shutdown (or no memory for the job): here and now. */
		r->backend->release(r->backend_state, bb, false);
		registry_released(r, uid, kernel_id, charged, pool);
		return;
	}
	rj->r = r;
	rj->pool = pool;
	rj->charged = charged;
	rj->kernel_id = kernel_id;
	rj->job.kind = JOB_RELEASE;
	rj->job.uid = uid;
	rj->job.size = bb->size;
	rj->job.b = *bb;
	rj->job.done = release_done;
	worker_submit(r->workers, &rj->job);
}

int registry_binding_charge(struct registry *r, uid_t uid)
{
	struct usage *u = registry_usage(r, uid, true);

	if (!u)
		return -ENOMEM;
	if (u->bindings >= r->conf->max_bindings_per_uid) {
		registry_usage_put(r, u);
		return -EDQUOT;
	}
	u->bindings++;
	return 0;
}

void registry_binding_uncharge(struct registry *r, uid_t uid)
{
	struct usage *u = registry_usage(r, uid, false);

	if (u && u->bindings) {
		u->bindings--;
		registry_usage_put(r, u);
	}
}

void registry_free(struct registry *r, struct buffer *b)
{
	/* The release removes the bindings (on a worker); they count no more. */
	for (unsigned i = 0; i < b->b.n_bindings; i++)
		registry_binding_uncharge(r, b->b.bindings[i].uid);
	log_debug("buffer %llu: freed (%llu bytes, uid %u)", (unsigned long long)b->id,
		 (unsigned long long)b->b.size, (unsigned)b->owner_uid);
	registry_unlist(r, b);
	fdstore_freed(r, b);
	/* Charged to its owner until the release is done. */
	registry_release(r, b->owner_uid, &b->b, b->b.size);
	free(b);
}

int registry_add_held(struct registry *r, uid_t uid, uint64_t bytes, uint64_t kernel_id, bool pool)
{
	struct usage *u = registry_usage(r, uid, true);
	struct held *h;

	if (!u)
		return -ENOMEM;
	if (u->bytes + bytes < u->bytes) {
		registry_usage_put(r, u);
		return -EOVERFLOW;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		registry_usage_put(r, u);
		return -ENOMEM;
	}
	h->uid = uid;
	h->bytes = bytes;
	h->kernel_id = kernel_id;
	h->pool = pool;
	u->buffers++;
	u->bytes += bytes;
	u->held_bytes += bytes;
	if (pool)
		u->pool_bytes += bytes;
	TAILQ_INSERT_TAIL(&u->held, h, uid_entry);
	return 0;
}

void registry_reap(struct registry *r, uid_t uid)
{
	struct usage *u = registry_usage(r, uid, false);
	struct held *h, *next;
	bool changed = false;

	if (!u)
		return;
	/* Each held buffer counts in u->buffers: u stays until the put below. */
	for (h = TAILQ_FIRST(&u->held); h; h = next) {
		next = TAILQ_NEXT(h, uid_entry);
		if (r->backend->held(r->backend_state, h->kernel_id) > 0)
			continue;
		u->held_bytes -= h->bytes;
		if (h->pool)
			u->pool_bytes -= h->bytes;
		uncharge_keep(u, h->bytes);
		TAILQ_REMOVE(&u->held, h, uid_entry);
		free(h);
		changed = true;
	}
	registry_usage_put(r, u);
	if (changed)
		fdstore_held_changed(r);
}

void registry_reap_once(struct registry *r, uid_t uid, uint64_t pass)
{
	struct usage *u = registry_usage(r, uid, false);

	if (!u || (pass && u->reaped_pass == pass))
		return;
	u->reaped_pass = pass;
	registry_reap(r, uid);
}

void registry_owner_gone(struct registry *r, struct conn *owner)
{
	struct buffer *b;

	/* Its own list: a close costs the buffers it made, not everyone's. */
	while ((b = TAILQ_FIRST(&owner->owned))) {
		if (b->name[0]) {
			TAILQ_REMOVE(&owner->owned, b, owner_entry);
			b->owner = NULL;	/* shared: lives until freed by its owner's uid */
		} else {
			registry_free(r, b);	/* (takes it off the list) */
		}
	}
}

void registry_done(struct registry *r)
{
	struct buffer *b, *next;
	struct usage *u;
	struct held *h;

	/*
	 * The others first: what they leave held is stored (once, after them
	 * all) while the metadata still lists every stored buffer.
	 */
	fdstore_batch(r, true);
	for (b = TAILQ_FIRST(&r->buffers); b; b = next) {
		next = TAILQ_NEXT(b, entry);
		if (!b->stored)
			registry_free(r, b);
	}
	fdstore_batch(r, false);
	/* Stored buffers outlive the daemon: close, keep the memory. */
	while ((b = TAILQ_FIRST(&r->buffers))) {
		registry_unlist(r, b);
		r->backend->release(r->backend_state, &b->b, true);
		free(b);
	}
	while ((u = TAILQ_FIRST(&r->usage))) {
		while ((h = TAILQ_FIRST(&u->held))) {
			TAILQ_REMOVE(&u->held, h, uid_entry);
			free(h);
		}
		usage_free(r, u);
	}
}
