/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The buffer registry: every live buffer, who owns it, and what each uid is
 * charged. Memory stays charged to its owner until the backend really gives
 * it back, including after the owner disconnected from a named buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	TAILQ_INIT(&r->held);
}

struct usage *registry_usage(struct registry *r, uid_t uid, bool create)
{
	struct usage *u;

	TAILQ_FOREACH(u, &r->usage, entry)
		if (u->uid == uid)
			return u;
	if (!create)
		return NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = uid;
	TAILQ_INSERT_TAIL(&r->usage, u, entry);
	return u;
}

/* Drop a usage record that no longer counts anything. */
void registry_usage_put(struct registry *r, struct usage *u)
{
	if (u && u->buffers == 0 && u->bytes == 0 && u->connections == 0) {
		TAILQ_REMOVE(&r->usage, u, entry);
		free(u);
	}
}

struct buffer *registry_find(struct registry *r, uint64_t id)
{
	struct buffer *b;

	TAILQ_FOREACH(b, &r->buffers, entry)
		if (b->id == id)
			return b;
	return NULL;
}

struct buffer *registry_find_name(struct registry *r, const char *name)
{
	struct buffer *b;

	TAILQ_FOREACH(b, &r->buffers, entry)
		if (b->name[0] && strcmp(b->name, name) == 0)
			return b;
	return NULL;
}

struct buffer *registry_add(struct registry *r, struct conn *owner, uid_t uid, pid_t pid,
			    const struct backend_buffer *bb, int cache, uint64_t id)
{
	struct usage *u = registry_usage(r, uid, true);
	struct buffer *b;

	if (!u)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b) {
		registry_usage_put(r, u);
		return NULL;
	}
	b->id = id ? id : r->next_id++;
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
	u->buffers++;
	u->bytes += bb->size;
	r->n_buffers++;
	r->bytes += bb->size;
	log_info("buffer %llu: %llu bytes for uid %u pid %d", (unsigned long long)b->id,
		 (unsigned long long)bb->size, (unsigned)uid, (int)pid);
	return b;
}

/* Uncharge one buffer of bytes from a uid's usage. */
static void uncharge(struct registry *r, struct usage *u, uint64_t bytes)
{
	u->buffers--;
	u->bytes -= bytes;
	registry_usage_put(r, u);
}

void registry_free(struct registry *r, struct buffer *b)
{
	struct usage *u = registry_usage(r, b->owner_uid, false);
	uint64_t size = b->b.size, kernel_id = b->b.kernel_id;
	struct held *h;

	log_info("buffer %llu: freed (%llu bytes, uid %u)", (unsigned long long)b->id,
		 (unsigned long long)size, (unsigned)b->owner_uid);
	TAILQ_REMOVE(&r->buffers, b, entry);
	fdstore_freed(r, b);
	r->backend->release(r->backend_state, &b->b, false);
	r->n_buffers--;
	r->bytes -= size;
	/*
	 * A client that kept the fd keeps the memory: it stays charged to
	 * the owner until the kernel really frees it (registry_reap).
	 */
	if (u && r->backend->held && r->backend->held(r->backend_state, kernel_id) > 0 &&
	    (h = calloc(1, sizeof(*h)))) {
		h->uid = b->owner_uid;
		h->bytes = size;
		h->kernel_id = kernel_id;
		u->held_bytes += size;
		TAILQ_INSERT_TAIL(&r->held, h, entry);
		log_info("buffer %llu: memory still held elsewhere, stays charged to uid %u",
			 (unsigned long long)b->id, (unsigned)b->owner_uid);
		free(b);
		fdstore_held_changed(r);
		return;
	}
	free(b);
	if (u)
		uncharge(r, u, size);
}

int registry_add_held(struct registry *r, uid_t uid, uint64_t bytes, uint64_t kernel_id)
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
	u->buffers++;
	u->bytes += bytes;
	u->held_bytes += bytes;
	TAILQ_INSERT_TAIL(&r->held, h, entry);
	return 0;
}

void registry_reap(struct registry *r)
{
	struct held *h, *next;
	bool changed = false;

	for (h = TAILQ_FIRST(&r->held); h; h = next) {
		struct usage *u = registry_usage(r, h->uid, false);

		next = TAILQ_NEXT(h, entry);
		if (r->backend->held(r->backend_state, h->kernel_id) > 0)
			continue;
		if (u) {
			u->held_bytes -= h->bytes;
			uncharge(r, u, h->bytes);
		}
		TAILQ_REMOVE(&r->held, h, entry);
		free(h);
		changed = true;
	}
	if (changed)
		fdstore_held_changed(r);
}

void registry_owner_gone(struct registry *r, struct conn *owner)
{
	struct buffer *b, *next;

	for (b = TAILQ_FIRST(&r->buffers); b; b = next) {
		next = TAILQ_NEXT(b, entry);
		if (b->owner != owner)
			continue;
		if (b->name[0])
			b->owner = NULL;	/* shared: lives until freed by its owner's uid */
		else
			registry_free(r, b);
	}
}

void registry_done(struct registry *r)
{
	struct buffer *b, *next;
	struct usage *u;
	struct held *h;

	/*
	 * The others first: what they leave held is stored with the metadata,
	 * which must still list every stored buffer.
	 */
	for (b = TAILQ_FIRST(&r->buffers); b; b = next) {
		next = TAILQ_NEXT(b, entry);
		if (!b->stored)
			registry_free(r, b);
	}
	/* Stored buffers outlive the daemon: close, keep the memory. */
	while ((b = TAILQ_FIRST(&r->buffers))) {
		TAILQ_REMOVE(&r->buffers, b, entry);
		r->backend->release(r->backend_state, &b->b, true);
		free(b);
	}
	while ((h = TAILQ_FIRST(&r->held))) {
		TAILQ_REMOVE(&r->held, h, entry);
		free(h);
	}
	while ((u = TAILQ_FIRST(&r->usage))) {
		TAILQ_REMOVE(&r->usage, u, entry);
		free(u);
	}
}
