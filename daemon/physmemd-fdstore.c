/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared buffers that survive a daemon restart, through systemd's file
 * descriptor store (FDSTORE=1, FileDescriptorStoreMax= in the unit).
 *
 * Every named buffer's fd is stored as "buf-ID"; the registry's metadata (JSON:
 * those buffers, a mark above every id given out, and the memory still charged
 * for freed buffers the kernel holds) is stored as a sealed memfd named
 * "registry", replaced on every change. A freed buffer is taken out with
 * FDSTOREREMOVE=1. On start, systemd
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
#include <systemd/sd-daemon.h>

#include "physmem-proto.h"
#include "physmemd.h"
#include "varlink-message.h"

#define META_NAME "registry"
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

/*
 * Serialise the metadata: the named buffers, the id mark (no id at or past
 * it was given out) and the held list (memory charged until the kernel frees
 * it).
 */
struct json_object *fdstore_meta(struct registry *r)
{
	struct json_object *o = json_object_new_object();
	struct json_object *list = json_object_new_array();
	struct json_object *held = json_object_new_array();
	struct buffer *b;
	struct held *h;

	TAILQ_FOREACH(b, &r->buffers, entry) {
		struct json_object *e, *uids, *gids;

		if (!b->name[0])
			continue;
		e = json_object_new_object();
		uids = json_object_new_array();
		gids = json_object_new_array();
		for (unsigned i = 0; i < b->n_allow_uids; i++)
			json_object_array_add(uids, json_object_new_int64(b->allow_uids[i]));
		for (unsigned i = 0; i < b->n_allow_gids; i++)
			json_object_array_add(gids, json_object_new_int64(b->allow_gids[i]));
		json_object_object_add(e, "id", json_object_new_int64((int64_t)b->id));
		json_object_object_add(e, "name", json_object_new_string(b->name));
		json_object_object_add(e, "cache", json_object_new_int(b->cache));
		json_object_object_add(e, "ownerUid", json_object_new_int64(b->owner_uid));
		json_object_object_add(e, "ownerPid", json_object_new_int64(b->owner_pid));
		json_object_object_add(e, "allowUids", uids);
		json_object_object_add(e, "allowGids", gids);
		if (b->b.pool[0])
			json_object_object_add(e, "pool", json_object_new_string(b->b.pool));
		json_object_array_add(list, e);
	}
	TAILQ_FOREACH(h, &r->held, entry) {
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "uid", json_object_new_int64(h->uid));
		json_object_object_add(e, "bytes", json_object_new_int64((int64_t)h->bytes));
		json_object_object_add(e, "kernelId", json_object_new_int64((int64_t)h->kernel_id));
		if (h->pool)
			json_object_object_add(e, "pool", json_object_new_boolean(1));
		json_object_array_add(held, e);
	}
	json_object_object_add(o, "nextId",
			       json_object_new_int64((int64_t)(r->id_mark > r->next_id ? r->id_mark : r->next_id)));
	json_object_object_add(o, "buffers", list);
	json_object_object_add(o, "held", held);
	return o;
}

/* The least time between two deferred stores of held-list changes. */
#define META_MIN_GAP_NS (10 * 1000000ULL)

static int fdstore_write_meta(struct registry *r)
{
	struct json_object *o = fdstore_meta(r);
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(text);
	int fd, ret = -EIO;

	fd = memfd_create("physmemd-registry", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		log_warning("fd store: cannot write the registry: %s", strerror(errno));
	} else {
		notify_fd("FDSTOREREMOVE=1\nFDNAME=" META_NAME, -1);
		ret = notify_fd("FDSTORE=1\nFDNAME=" META_NAME, fd) < 0 ? -EIO : 0;
	}
	if (fd >= 0)
		close(fd);
	json_object_put(o);
	return ret;
}

/*
 * Replace the stored metadata with the registry as it is now (a pending
 * held-list change with it); <0 if that failed. Its cost sets when the
 * next deferred store may run: nine times it later, so that stores take at
 * most a tenth of the loop.
 */
static int fdstore_save_meta(struct registry *r)
{
	uint64_t start = monotonic_ns(), cost;
	int ret;

	if (r->ev_meta)
		evtimer_del(r->ev_meta);
	r->meta_dirty = false;
	ret = fdstore_write_meta(r);
	r->meta_saves++;
	cost = monotonic_ns() - start;
	/* Sized by every uid's named and held buffers: whoever's call it is in does not pay. */
	r->meta_ns += cost;
	r->meta_next = start + cost + (9 * cost > META_MIN_GAP_NS ? 9 * cost : META_MIN_GAP_NS);
	return ret;
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
	fdstore_save_meta(r);
}

void fdstore_reserve_ids(struct registry *r)
{
	uint64_t old = r->id_mark;

	if (!r->fdstore)
		return;
	r->id_mark = r->next_id + ID_RESERVE;
	/* Not stored: try again with the next id. */
	if (fdstore_save_meta(r) < 0)
		r->id_mark = old;
}

/*
 * A held buffer came or went. Stored at once without a timer (startup,
 * shutdown, the tests); else coalesced: every uid's held buffers are
 * written each time, and these changes come from releases and reaps that
 * no uid's loop budget pays for.
 */
void fdstore_held_changed(struct registry *r)
{
	struct timeval tv;
	uint64_t now;

	if (!r->fdstore)
		return;
	if (!r->ev_meta) {
		fdstore_save_meta(r);
		return;
	}
	if (r->meta_dirty)
		return;		/* the timer is set */
	r->meta_dirty = true;
	now = monotonic_ns();
	tv = timeval_from_ns(r->meta_next > now ? r->meta_next - now : 0);
	if (evtimer_add(r->ev_meta, &tv) < 0)
		fdstore_save_meta(r);
}

static void on_meta_timer(evutil_socket_t fd, short what, void *arg)
{
	struct registry *r = arg;

	(void)fd;
	(void)what;
	if (r->meta_dirty)
		fdstore_save_meta(r);
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
		fdstore_save_meta(r);
}

void fdstore_freed(struct registry *r, struct buffer *b)
{
	char state[64];

	if (!r->fdstore || !b->stored)
		return;
	snprintf(state, sizeof(state), "FDSTOREREMOVE=1\nFDNAME=buf-%" PRIu64, b->id);
	notify_fd(state, -1);
	b->stored = false;
	fdstore_save_meta(r);
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

/* One stored buffer's metadata, as fdstore_meta() writes it. */
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
		return;
	}
	/* The module tells a pool buffer (SEGMENTS), the metadata its pool's name. */
	if (bb.from_pool)
		memcpy(bb.pool, sb->pool, sizeof(bb.pool));
	/* Keep the id clients know it by. */
	b = registry_add(r, NULL, (uid_t)sb->owner_uid, (pid_t)sb->owner_pid, &bb, (int)sb->cache, sb->id);
	if (!b) {
		r->backend->release(r->backend_state, &bb, false);
		return;
	}
	snprintf(b->name, sizeof(b->name), "%s", sb->name);
	b->n_allow_uids = sb->allow_uids.n;
	for (unsigned i = 0; i < sb->allow_uids.n; i++)
		b->allow_uids[i] = (uid_t)sb->allow_uids.v[i];
	b->n_allow_gids = sb->allow_gids.n;
	for (unsigned i = 0; i < sb->allow_gids.n; i++)
		b->allow_gids[i] = (gid_t)sb->allow_gids.v[i];
	b->stored = true;
	log_info("fd store: buffer %" PRIu64 " '%s' (%" PRIu64 " bytes, uid %u) restored", b->id, b->name,
		 b->b.size, (unsigned)b->owner_uid);
}

void fdstore_restore_accounting(struct registry *r, struct json_object *meta)
{
	struct stored_mark mark = { 0 };
	struct json_object *list;
	size_t n, kept = 0;
	const char *bad;

	/* Every id below the mark may be in a client's hands: start past it. */
	if (vl_dispatch_full(meta, stored_mark_fields, &mark, 0, VL_DISPATCH_ALLOW_UNKNOWN, &bad) < 0 ||
	    !mark.known || mark.next_id == 0)
		log_warning("fd store: no valid id mark, ids may repeat");
	else if (mark.next_id > r->next_id)
		r->next_id = mark.next_id;
	if (r->id_mark < r->next_id)
		r->id_mark = r->next_id;

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

int fdstore_collect(struct registry *r, bool enable, int *ret_listen_fd)
{
	struct json_object *meta = NULL, *list;
	char **names = NULL;
	int n, meta_fd = -1, listen_fd = -1;
	int *fds;

	n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		log_error("cannot take the fds passed by systemd: %s", strerror(-n));
		return n;
	}
	fds = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
	if (!fds)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *name = names && names[i] ? names[i] : "";

		fds[i] = -1;
		if (strcmp(name, META_NAME) == 0 && meta_fd < 0) {
			meta_fd = fd;
		} else if (strncmp(name, "buf-", 4) == 0) {
			fds[i] = fd;
		} else if (listen_fd < 0 && sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0) {
			listen_fd = fd;
		} else {
			log_warning("ignoring fd %d ('%s') passed by systemd", fd, name);
			close(fd);
		}
	}

	if (meta_fd >= 0 && read_meta(meta_fd, &meta) < 0)
		log_warning("fd store: unreadable registry, stored buffers are dropped");
	if (meta_fd >= 0)
		close(meta_fd);
	/* Ids and held memory first: restored buffers must not move the mark. */
	if (meta)
		fdstore_restore_accounting(r, meta);
	if (meta && json_object_object_get_ex(meta, "buffers", &list) && json_object_is_type(list, json_type_array)) {
		for (size_t j = 0; j < json_object_array_length(list); j++) {
			struct stored_buffer sb;
			char want[32];

			/* A bad entry restores nothing: its fd is dropped below. */
			if (stored_buffer_parse(json_object_array_get_idx(list, j), &sb) < 0)
				continue;
			snprintf(want, sizeof(want), "buf-%" PRIu64, sb.id);
			for (int i = 0; i < n; i++)
				if (fds[i] >= 0 && strcmp(names[i], want) == 0) {
					restore_one(r, &sb, fds[i]);
					fds[i] = -1;
					break;
				}
		}
	}
	/* Stored fds without metadata: drop them from the store too. */
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			char state[96];

			log_warning("fd store: %s has no metadata, dropped", names[i]);
			snprintf(state, sizeof(state), "FDSTOREREMOVE=1\nFDNAME=%s", names[i]);
			notify_fd(state, -1);
			close(fds[i]);
		}
	json_object_put(meta);
	free(fds);
	if (names)
		for (int i = 0; i < n; i++)
			free(names[i]);
	free(names);
	if (listen_fd >= 0)
		fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	/* Only now: nothing above may store metadata that lists half the buffers. */
	r->fdstore = enable;
	*ret_listen_fd = listen_fd;
	return 0;
}
