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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <systemd/sd-daemon.h>

#include "physmem-proto.h"
#include "physmemd.h"

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
		json_object_array_add(list, e);
	}
	TAILQ_FOREACH(h, &r->held, entry) {
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "uid", json_object_new_int64(h->uid));
		json_object_object_add(e, "bytes", json_object_new_int64((int64_t)h->bytes));
		json_object_object_add(e, "kernelId", json_object_new_int64((int64_t)h->kernel_id));
		json_object_array_add(held, e);
	}
	json_object_object_add(o, "nextId",
			       json_object_new_int64((int64_t)(r->id_mark > r->next_id ? r->id_mark : r->next_id)));
	json_object_object_add(o, "buffers", list);
	json_object_object_add(o, "held", held);
	return o;
}

/* Replace the stored metadata with the registry as it is now; <0 if that failed. */
static int fdstore_save_meta(struct registry *r)
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

void fdstore_held_changed(struct registry *r)
{
	if (r->fdstore)
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

static int64_t get_int(struct json_object *o, const char *key, int64_t dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return dflt;
	return json_object_get_int64(v);
}

static void get_ids(struct json_object *o, const char *key, uint32_t *ids, unsigned *n)
{
	struct json_object *a;

	*n = 0;
	if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(a) && *n < 64; i++)
		ids[(*n)++] = (uint32_t)json_object_get_int64(json_object_array_get_idx(a, i));
}

/* Adopt one stored buffer described by e, whose fd is fd (taken over). */
static void restore_one(struct registry *r, struct json_object *e, int fd)
{
	struct backend_buffer bb;
	struct json_object *v;
	struct buffer *b;
	int64_t cache = get_int(e, "cache", -1);
	int64_t id = get_int(e, "id", 0);
	int ret;

	if (!json_object_object_get_ex(e, "name", &v) || !json_object_is_type(v, json_type_string) ||
	    !physmem_name_valid(json_object_get_string(v)) || cache < 0 || cache > PHYSMEM_CACHE_MODE_UNCACHED ||
	    id <= 0 || registry_find(r, (uint64_t)id)) {
		log_warning("fd store: bad entry for buffer %" PRId64 ", dropped", get_int(e, "id", 0));
		close(fd);
		return;
	}
	ret = r->backend->adopt(r->backend_state, fd, &bb);
	if (ret < 0) {
		log_warning("fd store: cannot adopt buffer %" PRId64 ": %s", get_int(e, "id", 0), strerror(-ret));
		close(fd);
		return;
	}
	/* Keep the id clients know it by. */
	b = registry_add(r, NULL, (uid_t)get_int(e, "ownerUid", 0), (pid_t)get_int(e, "ownerPid", 0), &bb, (int)cache,
			 id);
	if (!b) {
		r->backend->release(r->backend_state, &bb, false);
		return;
	}
	snprintf(b->name, sizeof(b->name), "%s", json_object_get_string(v));
	get_ids(e, "allowUids", b->allow_uids, &b->n_allow_uids);
	get_ids(e, "allowGids", b->allow_gids, &b->n_allow_gids);
	b->stored = true;
	log_info("fd store: buffer %" PRIu64 " '%s' (%" PRIu64 " bytes, uid %u) restored", b->id, b->name,
		 b->b.size, (unsigned)b->owner_uid);
}

/* An integer member in [min, max], or -1 when absent, mistyped or out of range. */
static int64_t get_bounded(struct json_object *o, const char *key, int64_t min, int64_t max)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	x = json_object_get_int64(v);
	if (x < min || x > max)
		return -1;
	return x;
}

void fdstore_restore_accounting(struct registry *r, struct json_object *meta)
{
	struct json_object *list;
	int64_t mark = get_bounded(meta, "nextId", 1, (int64_t)ID_MAX);
	size_t n, kept = 0;

	/* Every id below the mark may be in a client's hands: start past it. */
	if (mark < 0)
		log_warning("fd store: no valid id mark, ids may repeat");
	else if ((uint64_t)mark > r->next_id)
		r->next_id = (uint64_t)mark;
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
		struct json_object *e = json_object_array_get_idx(list, i);
		bool object = json_object_is_type(e, json_type_object);
		int64_t uid = object ? get_bounded(e, "uid", 0, (int64_t)UINT32_MAX - 1) : -1;
		int64_t bytes = object ? get_bounded(e, "bytes", 1, INT64_MAX) : -1;
		int64_t kid = object ? get_bounded(e, "kernelId", 1, INT64_MAX) : -1;

		if (uid < 0 || bytes < 0 || kid < 0) {
			log_warning("fd store: bad held entry %zu, dropped", i);
			continue;
		}
		/* Memory the kernel freed while no daemon ran is nobody's any more. */
		if (!r->backend->held || r->backend->held(r->backend_state, (uint64_t)kid) <= 0)
			continue;
		if (registry_add_held(r, (uid_t)uid, (uint64_t)bytes, (uint64_t)kid) < 0) {
			log_warning("fd store: cannot charge held memory of uid %" PRId64 ", dropped", uid);
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
			struct json_object *e = json_object_array_get_idx(list, j);
			char want[32];

			snprintf(want, sizeof(want), "buf-%" PRId64, get_int(e, "id", -1));
			for (int i = 0; i < n; i++)
				if (fds[i] >= 0 && strcmp(names[i], want) == 0) {
					restore_one(r, e, fds[i]);
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
