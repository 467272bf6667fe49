/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared buffers that survive a daemon restart, through systemd's file
 * descriptor store (FDSTORE=1, FileDescriptorStoreMax= in the unit).
 *
 * Every named buffer's fd is stored as "buf-ID". The metadata is JSON in
 * sealed memfds, each replaced when what it describes changes: "meta-UID"
 * lists one uid's named buffers, made in that uid's call and sized by its
 * buffers alone (at most max-buffers-per-uid), never by everyone's;
 * "held" lists the memory still charged for freed buffers the kernel holds
 * (every uid's, stored from a timer), and "registry" a mark above every id
 * given out. "held" and "registry" are always there, so they never wait for
 * a place in a full store. (Before, "registry" held every uid's buffers
 * and held lists and was rewritten whole on every change; such a store is
 * still read, and written again as this daemon writes it.) A freed buffer
 * is taken out with FDSTOREREMOVE=1. On start, systemd
 * passes the stored fds back beside the listening socket, and fdstore_collect()
 * sorts them out and adopts the buffers again: their memory never went away,
 * so clients' mappings keep their data throughout.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>
#include <systemd/sd-daemon.h>

#include "physmem-proto.h"
#include "physmemd.h"
#include "varlink-message.h"

#define META_NAME "registry"
/* Each uid's named buffers: "meta-UID". */
#define UID_META_PREFIX "meta-"
/* Every uid's held buffers: "held". */
#define HELD_NAME "held"
#define META_MAX (16u << 20)
/* Ids reserved at a time: the metadata is rewritten once per this many new ids. */
#define ID_RESERVE 1024
/* Bounds on what is read back. */
#define ID_MAX (UINT64_C(1) << 62)
#define HELD_MAX 65536

static int notify_fd(const char *state, int fd)
{
	int r = sd_pid_notify_with_fds(0, 0, state, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);

	if (r < 0)
		log_warning("fd store: %s", strerror(-r));
	return r;
}

/* One named buffer's entry in its owner's metadata. */
static struct json_object *buffer_entry(const struct buffer *b)
{
	struct json_object *e = json_object_new_object();
	struct json_object *uids = json_object_new_array();
	struct json_object *gids = json_object_new_array();

	for (unsigned i = 0; i < b->n_allow_uids; i++)
		vl_append(uids, json_object_new_int64(b->allow_uids[i]));
	for (unsigned i = 0; i < b->n_allow_gids; i++)
		vl_append(gids, json_object_new_int64(b->allow_gids[i]));
	vl_add(e, "id", json_object_new_int64((int64_t)b->id));
	vl_add(e, "name", json_object_new_string(b->name));
	vl_add(e, "cache", json_object_new_int(b->cache));
	vl_add(e, "ownerUid", json_object_new_int64(b->owner_uid));
	vl_add(e, "ownerPid", json_object_new_int64(b->owner_pid));
	vl_add(e, "allowUids", uids);
	vl_add(e, "allowGids", gids);
	if (b->b.pool[0])
		vl_add(e, "pool", json_object_new_string(b->b.pool));
	return e;
}

/* One held buffer's entry: memory charged to its uid until the kernel frees it. */
static struct json_object *held_entry(const struct held *h)
{
	struct json_object *e = json_object_new_object();

	vl_add(e, "uid", json_object_new_int64(h->uid));
	vl_add(e, "bytes", json_object_new_int64((int64_t)h->bytes));
	vl_add(e, "kernelId", json_object_new_int64((int64_t)h->kernel_id));
	if (h->pool)
		vl_add(e, "pool", json_object_new_boolean(1));
	return e;
}

/*
 * A json-c object's text, malloc()ed, and the object put; NULL: out of memory
 * (also when a part of it could not be built: see vl_add()).
 */
static char *json_text(struct json_object *o)
{
	const char *t = vl_build_failed() || !o ? NULL : json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	char *text = t ? strdup(t) : NULL;

	json_object_put(o);
	return text;
}

/* "registry": the id mark (no id at or past it was given out). */
char *fdstore_meta_mark(struct registry *r)
{
	struct json_object *o = json_object_new_object();

	vl_add(o, "nextId",
	       json_object_new_int64((int64_t)(r->id_mark > r->next_id ? r->id_mark : r->next_id)));
	return json_text(o);
}

/* "held": every uid's freed buffers whose memory the kernel still holds. */
char *fdstore_meta_held(struct registry *r)
{
	struct json_object *o = json_object_new_object();
	struct json_object *list = json_object_new_array();
	struct usage *u;
	struct held *h;

	TAILQ_FOREACH(u, &r->usage, entry)
		TAILQ_FOREACH(h, &u->held, uid_entry)
			vl_append(list, held_entry(h));
	vl_add(o, "held", list);
	return json_text(o);
}

/*
 * b's entry, made again whenever its name or access lists change: a uid's
 * store copies its buffers' entries, it does not build them (building 100
 * entries of 64 uids each with json-c took 0.7 ms a store). NULL when out
 * of memory: the buffer is left out of its uid's metadata (logged).
 */
static void buffer_entry_update(struct buffer *b)
{
	free(b->meta_text);
	b->meta_text = json_text(buffer_entry(b));
	if (!b->meta_text)
		log_warning("fd store: buffer %" PRIu64 " cannot be described, it will not survive a restart", b->id);
}

/* "meta-UID": one uid's named buffers, and nobody else's. */
char *fdstore_meta_uid(struct usage *u)
{
	struct printbuf *pb = printbuf_new();
	bool first = true, failed = !pb;
	struct buffer *b;
	char *text;

	if (failed)
		return NULL;
	failed |= printbuf_strappend(pb, "{\"buffers\":[") < 0;
	if (u)
		TAILQ_FOREACH(b, &u->named, named_entry) {
			if (!b->meta_text)
				continue;
			failed |= (!first && printbuf_strappend(pb, ",") < 0) ||
				  printbuf_memappend(pb, b->meta_text, (int)strlen(b->meta_text)) < 0;
			first = false;
		}
	failed |= printbuf_strappend(pb, "]}") < 0;
	text = failed ? NULL : strdup(pb->buf);
	printbuf_free(pb);
	return text;
}

/* Replace the store's entry name with text; NULL: only take it out. */
static int store_blob(const char *name, const char *text)
{
	char state[64];
	size_t len;
	int fd = -1, ret = -EIO;

	/* The new one is made first: one that cannot be leaves the stored one (and its place). */
	if (text) {
		len = strlen(text);
		fd = memfd_create("physmemd-registry", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0 || write(fd, text, len) != (ssize_t)len ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
			log_warning("fd store: cannot write %s: %s", name, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -EIO;
		}
	}
	snprintf(state, sizeof(state), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	notify_fd(state, -1);
	if (!text)
		return 0;
	snprintf(state, sizeof(state), "FDSTORE=1\nFDNAME=%s", name);
	ret = notify_fd(state, fd) < 0 ? -EIO : 0;
	close(fd);
	return ret;
}

/* Store text (malloc()ed, freed here) as name; <0 if that failed, text NULL (out of memory) too. */
static int store_text(struct registry *r, const char *name, char *text)
{
	int ret = text ? store_blob(name, text) : -ENOMEM;	/* (NULL would take it out) */

	if (!text)
		log_warning("fd store: cannot describe %s: out of memory", name);
	free(text);
	r->meta_saves++;
	return ret;
}

/*
 * Store uid's named buffers as they are now (u: its record, or NULL), or
 * take its entry out when it has none. Sized by that uid's named buffers
 * alone (at most max-buffers-per-uid), so the uid whose call makes it pays
 * for it.
 */
static void fdstore_save_uid(struct registry *r, uid_t uid, struct usage *u)
{
	char name[32];

	snprintf(name, sizeof(name), UID_META_PREFIX "%u", (unsigned)uid);
	if (!u || TAILQ_EMPTY(&u->named)) {
		store_blob(name, NULL);
		r->meta_saves++;
	} else {
		/* On failure the stored one stays (a restart checks it against the stored fds). */
		store_text(r, name, fdstore_meta_uid(u));
	}
}

/* The least time between two deferred stores of the held lists. */
#define META_MIN_GAP_NS (10 * 1000000ULL)

static void fdstore_arm_held(struct registry *r);

/*
 * Store every uid's held list now, and set when the next deferred store may
 * run: nine times its cost later, so that these stores, which every uid's
 * held buffers size and no uid's loop budget pays for, take at most a tenth
 * of the loop. One that fails is tried again then.
 */
static void fdstore_save_held(struct registry *r)
{
	uint64_t start = monotonic_ns(), cost;
	int ret;

	r->meta_dirty = false;
	ret = store_text(r, HELD_NAME, fdstore_meta_held(r));
	cost = monotonic_ns() - start;
	r->meta_next = start + cost + (9 * cost > META_MIN_GAP_NS ? 9 * cost : META_MIN_GAP_NS);
	if (ret < 0 && r->ev_meta)
		fdstore_arm_held(r);
}

/* A held-list change waits for the timer (which is set for meta_next). */
static void fdstore_arm_held(struct registry *r)
{
	struct timeval tv;
	uint64_t now;

	if (r->meta_dirty)
		return;		/* the timer is set */
	r->meta_dirty = true;
	now = monotonic_ns();
	tv = timeval_from_ns(r->meta_next > now ? r->meta_next - now : 0);
	if (evtimer_add(r->ev_meta, &tv) < 0) {
		r->meta_dirty = false;
		log_warning("fd store: cannot set the held lists' timer");
	}
}

void fdstore_named(struct registry *r, struct buffer *b)
{
	char state[64];

	if (!r->fdstore)
		return;
	if (!b->stored) {
		snprintf(state, sizeof(state), "FDSTORE=1\nFDNAME=buf-%" PRIu64, b->id);
		b->stored = notify_fd(state, b->b.fd) > 0;
	}
	buffer_entry_update(b);
	fdstore_save_uid(r, b->owner_uid, registry_usage(r, b->owner_uid, false));
}

void fdstore_reserve_ids(struct registry *r)
{
	uint64_t old = r->id_mark;

	if (!r->fdstore)
		return;
	r->id_mark = r->next_id + ID_RESERVE;
	/* Not stored: try again with the next id. */
	if (store_text(r, META_NAME, fdstore_meta_mark(r)) < 0)
		r->id_mark = old;
}

/*
 * A held buffer came or went. Stored at once without a timer (startup,
 * shutdown, the tests); else coalesced: these changes come from releases
 * and reaps, and a client that holds and lets go of memory could make many.
 */
void fdstore_held_changed(struct registry *r)
{
	if (!r->fdstore)
		return;
	if (r->ev_meta)
		fdstore_arm_held(r);
	else if (r->meta_batch)
		r->meta_dirty = true;
	else
		fdstore_save_held(r);
}

void fdstore_batch(struct registry *r, bool on)
{
	r->meta_batch = on;
	if (!on && r->meta_dirty && !r->ev_meta)
		fdstore_save_held(r);
}

static void on_meta_timer(evutil_socket_t fd, short what, void *arg)
{
	struct registry *r = arg;

	(void)fd;
	(void)what;
	if (r->meta_dirty)
		fdstore_save_held(r);
}

int fdstore_start(struct registry *r, struct event_base *base)
{
	if (!r->fdstore || r->ev_meta)
		return 0;
	r->ev_meta = evtimer_new(base, on_meta_timer, r);
	return r->ev_meta ? 0 : -ENOMEM;
}

void fdstore_stop(struct registry *r)
{
	if (!r->ev_meta)
		return;
	event_free(r->ev_meta);
	r->ev_meta = NULL;
	if (r->meta_dirty)
		fdstore_save_held(r);
}

/* Take buffer id's fd out of the store: freed, or not restored (else systemd keeps its memory). */
static void unstore_buffer(uint64_t id)
{
	char state[64];

	snprintf(state, sizeof(state), "FDSTOREREMOVE=1\nFDNAME=buf-%" PRIu64, id);
	notify_fd(state, -1);
}

void fdstore_freed(struct registry *r, struct buffer *b)
{
	if (!r->fdstore || !b->stored)
		return;
	unstore_buffer(b->id);
	b->stored = false;
	fdstore_save_uid(r, b->owner_uid, registry_usage(r, b->owner_uid, false));
}

static int read_meta(int fd, struct json_object **ret)
{
	struct stat st;
	char *text;
	ssize_t n;

	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > META_MAX)
		return -EINVAL;
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		return -ENOMEM;
	n = pread(fd, text, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		free(text);
		return -EIO;
	}
	text[n] = '\0';
	*ret = json_tokener_parse(text);
	free(text);
	return *ret ? 0 : -EINVAL;
}

/* One stored buffer's metadata, as buffer_entry() writes it. */
struct stored_buffer {
	uint64_t id;
	char name[65];
	uint32_t cache;			/* enum physmem_cache_mode, as a number */
	uint32_t owner_uid;
	uint32_t owner_pid;
	struct vl_id_array allow_uids;
	struct vl_id_array allow_gids;
	char pool[16];			/* "" when not from a pool, or not known */
};

#define SB(member) offsetof(struct stored_buffer, member)
/* Members a newer daemon may add are ignored (VL_DISPATCH_ALLOW_UNKNOWN). */
static const struct vl_field stored_buffer_fields[] = {
	{ .name = "id", .type = VL_FIELD_U64, .offset = SB(id), .flags = VL_FIELD_REQUIRED, .max = ID_MAX },
	{ .name = "name", .type = VL_FIELD_STRING_COPY, .offset = SB(name), .flags = VL_FIELD_REQUIRED,
	  .size = sizeof(((struct stored_buffer *)0)->name) },
	{ .name = "cache", .type = VL_FIELD_U32, .offset = SB(cache), .flags = VL_FIELD_REQUIRED,
	  .max = PHYSMEM_CACHE_MODE_UNCACHED },
	{ .name = "ownerUid", .type = VL_FIELD_U32, .offset = SB(owner_uid), .flags = VL_FIELD_REQUIRED },
	{ .name = "ownerPid", .type = VL_FIELD_U32, .offset = SB(owner_pid), .flags = VL_FIELD_NULLABLE,
	  .max = INT32_MAX },
	{ .name = "allowUids", .type = VL_FIELD_ID_ARRAY, .offset = SB(allow_uids), .flags = VL_FIELD_NULLABLE },
	{ .name = "allowGids", .type = VL_FIELD_ID_ARRAY, .offset = SB(allow_gids), .flags = VL_FIELD_NULLABLE },
	{ .name = "pool", .type = VL_FIELD_STRING_COPY, .offset = SB(pool), .flags = VL_FIELD_NULLABLE,
	  .size = sizeof(((struct stored_buffer *)0)->pool) },
	{},
};
#undef SB

/* One held entry: memory a freed buffer still holds, charged to uid. */
struct stored_held {
	uint32_t uid;
	uint64_t bytes;
	uint64_t kernel_id;
	bool pool;
};

static const struct vl_field stored_held_fields[] = {
	{ .name = "uid", .type = VL_FIELD_U32, .offset = offsetof(struct stored_held, uid),
	  .flags = VL_FIELD_REQUIRED },
	{ .name = "bytes", .type = VL_FIELD_U64, .offset = offsetof(struct stored_held, bytes),
	  .flags = VL_FIELD_REQUIRED, .max = INT64_MAX },
	{ .name = "kernelId", .type = VL_FIELD_U64, .offset = offsetof(struct stored_held, kernel_id),
	  .flags = VL_FIELD_REQUIRED, .max = INT64_MAX },
	{ .name = "pool", .type = VL_FIELD_BOOL, .offset = offsetof(struct stored_held, pool),
	  .flags = VL_FIELD_NULLABLE },
	{},
};

/* The id mark: nextId, when present and valid. */
struct stored_mark {
	uint64_t next_id;
	bool known;
};

static const struct vl_field stored_mark_fields[] = {
	{ .name = "nextId", .type = VL_FIELD_U64, .offset = offsetof(struct stored_mark, next_id),
	  .flags = VL_FIELD_REQUIRED | VL_FIELD_MARK_PRESENT, .max = ID_MAX,
	  .present_offset = offsetof(struct stored_mark, known) },
	{},
};

/* A stored buffer entry, checked: 0, or -EINVAL (logged) when it cannot be restored. */
static int stored_buffer_parse(struct json_object *e, struct stored_buffer *ret)
{
	const char *bad;

	*ret = (struct stored_buffer) { 0 };
	if (vl_dispatch_full(e, stored_buffer_fields, ret, 0, VL_DISPATCH_ALLOW_UNKNOWN, &bad) < 0 ||
	    ret->id == 0 || !physmem_name_valid(ret->name)) {
		log_warning("fd store: bad entry (%s), dropped", bad ? bad : ret->id == 0 ? "id" : "name");
		return -EINVAL;
	}
	return 0;
}

/* Adopt one stored buffer described by sb, whose fd is fd (taken over). */
static void restore_one(struct registry *r, const struct stored_buffer *sb, int fd)
{
	struct backend_buffer bb;
	struct buffer *b;
	int ret;

	if (registry_find(r, sb->id)) {
		log_warning("fd store: buffer %" PRIu64 " is there twice, dropped", sb->id);
		close(fd);
		return;
	}
	ret = r->backend->adopt(r->backend_state, fd, &bb);
	if (ret < 0) {
		log_warning("fd store: cannot adopt buffer %" PRIu64 ": %s", sb->id, strerror(-ret));
		close(fd);
		unstore_buffer(sb->id);
		return;
	}
	/* The module tells a pool buffer (SEGMENTS), the metadata its pool's name. */
	if (bb.from_pool)
		memcpy(bb.pool, sb->pool, sizeof(bb.pool));
	/* Keep the id clients know it by. */
	b = registry_add(r, NULL, (uid_t)sb->owner_uid, (pid_t)sb->owner_pid, &bb, (int)sb->cache, sb->id);
	if (!b) {
		r->backend->release(r->backend_state, &bb, false);
		unstore_buffer(sb->id);
		return;
	}
	if (registry_set_name(r, b, sb->name) < 0) {
		log_warning("fd store: cannot index buffer %" PRIu64 "'s name, dropped", sb->id);
		registry_free(r, b);
		unstore_buffer(sb->id);
		return;
	}
	b->n_allow_uids = sb->allow_uids.n;
	for (unsigned i = 0; i < sb->allow_uids.n; i++)
		b->allow_uids[i] = (uid_t)sb->allow_uids.v[i];
	b->n_allow_gids = sb->allow_gids.n;
	for (unsigned i = 0; i < sb->allow_gids.n; i++)
		b->allow_gids[i] = (gid_t)sb->allow_gids.v[i];
	b->stored = true;
	buffer_entry_update(b);
	log_info("fd store: buffer %" PRIu64 " '%s' (%" PRIu64 " bytes, uid %u) restored", b->id, b->name,
		 b->b.size, (unsigned)b->owner_uid);
}

/* The id mark in meta, if it has one; true: it had a valid one. */
static bool restore_mark(struct registry *r, struct json_object *meta)
{
	struct stored_mark mark = { 0 };
	bool marked = false;
	const char *bad;

	/* Every id below the mark may be in a client's hands: start past it. */
	if (json_object_object_get_ex(meta, "nextId", NULL)) {
		if (vl_dispatch_full(meta, stored_mark_fields, &mark, 0, VL_DISPATCH_ALLOW_UNKNOWN, &bad) < 0 ||
		    !mark.known || mark.next_id == 0) {
			log_warning("fd store: bad id mark");
		} else {
			marked = true;
			if (mark.next_id > r->next_id)
				r->next_id = mark.next_id;
		}
	}
	if (r->id_mark < r->next_id)
		r->id_mark = r->next_id;
	return marked;
}

/* The held list in meta, if it has one: charged to its uids again. */
static void restore_held(struct registry *r, struct json_object *meta)
{
	struct json_object *list;
	size_t n, kept = 0;
	const char *bad;

	if (!json_object_object_get_ex(meta, "held", &list))
		return;
	if (!json_object_is_type(list, json_type_array) || json_object_array_length(list) > HELD_MAX) {
		log_warning("fd store: bad held list, dropped");
		return;
	}
	n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		struct stored_held h = { 0 };

		if (vl_dispatch_full(json_object_array_get_idx(list, i), stored_held_fields, &h, 0,
				     VL_DISPATCH_ALLOW_UNKNOWN, &bad) < 0 || h.bytes == 0 || h.kernel_id == 0) {
			log_warning("fd store: bad held entry %zu, dropped", i);
			continue;
		}
		/* Memory the kernel freed while no daemon ran is nobody's any more. */
		if (!r->backend->held || r->backend->held(r->backend_state, h.kernel_id) <= 0)
			continue;
		if (registry_add_held(r, (uid_t)h.uid, h.bytes, h.kernel_id, h.pool) < 0) {
			log_warning("fd store: cannot charge held memory of uid %u, dropped", (unsigned)h.uid);
			continue;
		}
		kept++;
	}
	if (kept)
		log_info("fd store: %zu freed buffers still held, charged to their owners again", kept);
}

bool fdstore_restore_accounting(struct registry *r, struct json_object *meta)
{
	bool marked = restore_mark(r, meta);

	restore_held(r, meta);
	return marked;
}

/* The uid of a stored "meta-UID" name, or (uid_t)-1. */
static uid_t meta_name_uid(const char *name)
{
	unsigned long v;
	char *end;

	if (strncmp(name, UID_META_PREFIX, strlen(UID_META_PREFIX)) != 0)
		return (uid_t)-1;
	name += strlen(UID_META_PREFIX);
	if (name[0] < '0' || name[0] > '9')
		return (uid_t)-1;
	errno = 0;
	v = strtoul(name, &end, 10);
	if (errno || *end || v >= (uid_t)-1)
		return (uid_t)-1;
	return (uid_t)v;
}

/* A metadata object systemd passed back: one uid's named buffers, or (uid -1) "registry" or "held". */
struct stored_meta {
	struct json_object *o;
	uid_t uid;
};

/* Adopt the buffers meta lists (uid's alone, unless -1) whose fds are among fds. */
static void restore_buffers(struct registry *r, struct json_object *meta, uid_t uid, int *fds, char **names, int n)
{
	struct json_object *list;

	if (!json_object_object_get_ex(meta, "buffers", &list) || !json_object_is_type(list, json_type_array))
		return;
	for (size_t j = 0; j < json_object_array_length(list); j++) {
		struct stored_buffer sb;
		char want[32];

		/* A bad entry restores nothing: its fd is dropped afterwards. */
		if (stored_buffer_parse(json_object_array_get_idx(list, j), &sb) < 0)
			continue;
		if (uid != (uid_t)-1 && (uid_t)sb.owner_uid != uid) {
			log_warning("fd store: buffer %" PRIu64 " listed with uid %u's, dropped", sb.id, (unsigned)uid);
			continue;
		}
		snprintf(want, sizeof(want), "buf-%" PRIu64, sb.id);
		for (int i = 0; i < n; i++)
			if (fds[i] >= 0 && strcmp(names[i], want) == 0) {
				restore_one(r, &sb, fds[i]);
				fds[i] = -1;
				break;
			}
	}
}

/*
 * After a restore, store everything again as this daemon writes it:
 * "held", then a "meta-UID" for each uid with named buffers and none for a
 * uid without, then the id mark alone as "registry" (an older daemon kept
 * every uid's buffers and held lists there), last: until it is replaced,
 * a restart after a crash in between still finds them all. "held" and
 * "registry" are stored even when empty: they keep their places in the
 * store, whatever named buffers come to fill it; "held" first, as the one
 * a full store must not refuse.
 */
static void fdstore_rewrite(struct registry *r, const struct stored_meta *metas, size_t n_metas)
{
	struct usage *u;

	fdstore_save_held(r);
	for (size_t i = 0; i < n_metas; i++)
		if (metas[i].uid != (uid_t)-1)
			fdstore_save_uid(r, metas[i].uid, registry_usage(r, metas[i].uid, false));
	TAILQ_FOREACH(u, &r->usage, entry)
		if (!TAILQ_EMPTY(&u->named))
			fdstore_save_uid(r, u->uid, u);
	store_text(r, META_NAME, fdstore_meta_mark(r));
}

int fdstore_collect(struct registry *r, bool enable, int *ret_listen_fd)
{
	struct json_object *mark = NULL, *held = NULL;
	struct stored_meta *metas;
	size_t n_metas = 0;
	char **names = NULL;
	int n, listen_fd = -1;
	bool marked = false;
	int *fds;

	n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		log_error("cannot take the fds passed by systemd: %s", strerror(-n));
		return n;
	}
	fds = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
	metas = calloc((size_t)(n > 0 ? n : 1), sizeof(*metas));
	if (!fds || !metas) {
		free(fds);
		free(metas);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *name = names && names[i] ? names[i] : "";
		struct json_object **slot = NULL;
		uid_t uid = meta_name_uid(name);

		fds[i] = -1;
		/* Each once: a uid's buffers, the held list or the mark twice would count twice. */
		for (size_t j = 0; uid != (uid_t)-1 && j < n_metas; j++)
			if (metas[j].uid == uid)
				uid = (uid_t)-1;
		if (strcmp(name, META_NAME) == 0 && !mark)
			slot = &mark;
		else if (strcmp(name, HELD_NAME) == 0 && !held)
			slot = &held;
		else if (uid != (uid_t)-1)
			slot = &metas[n_metas].o;
		if (slot) {
			if (read_meta(fd, slot) < 0)
				log_warning("fd store: unreadable %s, what it lists is dropped", name);
			else if (uid != (uid_t)-1)
				metas[n_metas++].uid = uid;
			close(fd);
		} else if (strncmp(name, "buf-", 4) == 0) {
			fds[i] = fd;
		} else if (listen_fd < 0 && sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0) {
			listen_fd = fd;
		} else {
			log_warning("ignoring fd %d ('%s') passed by systemd", fd, name);
			close(fd);
		}
	}

	/*
	 * Ids and held memory first: restored buffers must not move the mark.
	 * The held lists are "held"'s; an older daemon's were in "registry"
	 * (read only when there is no "held": after an upgrade's rewrite,
	 * both may be there).
	 */
	if (mark)
		marked = restore_mark(r, mark);
	if (held || mark)
		restore_held(r, held ? held : mark);
	if ((mark || held || n_metas) && !marked)
		log_warning("fd store: no valid id mark, ids may repeat");
	/* A uid's own entry first: an older daemon's list may be older than it. */
	for (size_t i = 0; i < n_metas; i++)
		restore_buffers(r, metas[i].o, metas[i].uid, fds, names, n);
	if (mark)
		restore_buffers(r, mark, (uid_t)-1, fds, names, n);
	/* Stored fds without metadata: drop them from the store too. */
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			char state[96];

			log_warning("fd store: %s has no metadata, dropped", names[i]);
			snprintf(state, sizeof(state), "FDSTOREREMOVE=1\nFDNAME=%s", names[i]);
			notify_fd(state, -1);
			close(fds[i]);
		}
	/* Only now: nothing above may store metadata that lists half the buffers. */
	r->fdstore = enable;
	if (enable)
		fdstore_rewrite(r, metas, n_metas);
	json_object_put(mark);
	json_object_put(held);
	for (size_t i = 0; i < n_metas; i++)
		json_object_put(metas[i].o);
	free(metas);
	free(fds);
	if (names)
		for (int i = 0; i < n; i++)
			free(names[i]);
	free(names);
	if (listen_fd >= 0)
		fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	*ret_listen_fd = listen_fd;
	return 0;
}
