/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the calls mean: org.varlink.service and io.physmem.Manager. Each
 * handler reads like a contract: dispatch the parameters against a table,
 * check permission and quota, do the work, reply. Every error is one the
 * interface names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "physmem-proto.h"
#include "physmemd.h"
#include "varlink-message.h"

#ifndef PHYSMEM_VERSION
#define PHYSMEM_VERSION "0"
#endif

struct method {
	const char *name;
	int (*handler)(struct conn *c, struct json_object *params, struct vl_fds *fds);
	bool takes_fds;
};

static const struct conf *conf_of(struct conn *c)
{
	return c->server->conf;
}

static struct registry *registry_of(struct conn *c)
{
	return c->server->registry;
}

static void reply(struct conn *c, struct json_object *params)
{
	server_reply(c, vl_reply_new(params), NULL, 0);
}

static void reply_error(struct conn *c, const char *name, struct json_object *params)
{
	server_reply(c, vl_error_new(name, params), NULL, 0);
}

static void reply_invalid(struct conn *c, const char *parameter)
{
	server_reply(c, vl_error_invalid_parameter(parameter), NULL, 0);
}

static void reply_permission_denied(struct conn *c, const char *reason)
{
	struct json_object *p = json_object_new_object();

	json_object_object_add(p, "reason", json_object_new_string(reason));
	reply_error(c, PHYSMEM_ERROR_PERMISSION_DENIED, p);
}

static void reply_no_such_buffer(struct conn *c, int64_t id, const char *name)
{
	struct json_object *p = json_object_new_object();

	if (name)
		json_object_object_add(p, "name", json_object_new_string(name));
	else
		json_object_object_add(p, "id", json_object_new_int64(id));
	reply_error(c, PHYSMEM_ERROR_NO_SUCH_BUFFER, p);
}

static void reply_quota(struct conn *c, const char *limit, uint64_t max, uint64_t used, uint64_t requested)
{
	struct json_object *p = json_object_new_object();

	json_object_object_add(p, "limit", json_object_new_string(limit));
	json_object_object_add(p, "max", json_object_new_int64((int64_t)max));
	json_object_object_add(p, "used", json_object_new_int64((int64_t)used));
	json_object_object_add(p, "requested", json_object_new_int64((int64_t)requested));
	reply_error(c, PHYSMEM_ERROR_QUOTA_EXCEEDED, p);
}

static void reply_size_out_of_range(struct conn *c, int64_t size)
{
	struct json_object *p = json_object_new_object();

	json_object_object_add(p, "size", json_object_new_int64(size));
	json_object_object_add(p, "min", json_object_new_int64(1));
	json_object_object_add(p, "max", json_object_new_int64((int64_t)conf_of(c)->max_buffer_size));
	reply_error(c, PHYSMEM_ERROR_SIZE_OUT_OF_RANGE, p);
}

static void reply_backend_error(struct conn *c, int r, const char *feature)
{
	struct json_object *p = json_object_new_object();

	if (r == -EOPNOTSUPP) {
		json_object_object_add(p, "feature", json_object_new_string(feature ? feature : "?"));
		json_object_object_add(p, "backend", json_object_new_string(registry_of(c)->backend->name));
		reply_error(c, PHYSMEM_ERROR_NOT_SUPPORTED, p);
		return;
	}
	json_object_object_add(p, "reason", json_object_new_string(strerror(-r)));
	reply_error(c, PHYSMEM_ERROR_ALLOCATION_FAILED, p);
}

static struct json_object *int_array(unsigned n, const uint32_t *v)
{
	struct json_object *a = json_object_new_array();

	for (unsigned i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int64(v[i]));
	return a;
}

/* The interface's Buffer type, with segments only where policy allows. */
static struct json_object *buffer_json(struct conn *c, const struct buffer *b)
{
	struct json_object *o = json_object_new_object();
	struct json_object *segs;

	json_object_object_add(o, "id", json_object_new_int64((int64_t)b->id));
	if (b->name[0])
		json_object_object_add(o, "name", json_object_new_string(b->name));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)b->b.size));
	json_object_object_add(o, "contiguous", json_object_new_boolean(b->b.contiguous));
	json_object_object_add(o, "cache", json_object_new_string(physmem_cache_mode_names[b->cache]));
	json_object_object_add(o, "backend", json_object_new_string(registry_of(c)->backend->name));
	json_object_object_add(o, "ownerUid", json_object_new_int64(b->owner_uid));
	json_object_object_add(o, "ownerPid", json_object_new_int64(b->owner_pid));
	json_object_object_add(o, "allowUids", int_array(b->n_allow_uids, b->allow_uids));
	json_object_object_add(o, "allowGids", int_array(b->n_allow_gids, b->allow_gids));
	json_object_object_add(o, "locked", json_object_new_boolean(b->b.locked));
	json_object_object_add(o, "dmaSafe", json_object_new_boolean(registry_of(c)->backend->dma_safe));
	if (b->b.n_segments && policy_may_see_addresses(conf_of(c), &c->peer, b)) {
		segs = json_object_new_array();
		for (unsigned i = 0; i < b->b.n_segments; i++) {
			struct json_object *s = json_object_new_object();

			json_object_object_add(s, "address", json_object_new_int64((int64_t)b->b.segments[i].address));
			json_object_object_add(s, "length", json_object_new_int64((int64_t)b->b.segments[i].length));
			json_object_array_add(segs, s);
		}
		json_object_object_add(o, "segments", segs);
	} else {
		json_object_object_add(o, "segments", NULL);
	}
	return o;
}

/* Reply with a buffer's description and its fd. */
static void reply_buffer_fd(struct conn *c, const struct buffer *b)
{
	struct json_object *p = json_object_new_object();

	json_object_object_add(p, "buffer", buffer_json(c, b));
	json_object_object_add(p, "bufferFileDescriptor", json_object_new_int(0));
	server_reply(c, vl_reply_new(p), &b->b.fd, 1);
}

/* ---- org.varlink.service ---- */

static int method_get_info(struct conn *c, struct json_object *params, struct vl_fds *fds)
{
	static const struct vl_field fields[] = { {} };
	struct json_object *p, *ifaces;
	const char *bad;

	(void)fds;
	if (vl_dispatch(params, fields, NULL, 0, &bad) < 0) {
		reply_invalid(c, bad);
		return 0;
	}
	p = json_object_new_object();
	ifaces = json_object_new_array();
	json_object_array_add(ifaces, json_object_new_string(VL_SERVICE_INTERFACE));
	json_object_array_add(ifaces, json_object_new_string(PHYSMEM_INTERFACE));
	json_object_object_add(p, "vendor", json_object_new_string(PHYSMEM_VENDOR));
	json_object_object_add(p, "product", json_object_new_string("physmemd"));
	json_object_object_add(p, "version", json_object_new_string(PHYSMEM_VERSION));
	json_object_object_add(p, "url", json_object_new_string(PHYSMEM_URL));
	json_object_object_add(p, "interfaces", ifaces);
	reply(c, p);
	return 0;
}

static int method_get_interface_description(struct conn *c, struct json_object *params, struct vl_fds *fds)
{
	static const struct vl_field fields[] = {
		{ "interface", VL_FIELD_STRING, 0, VL_FIELD_REQUIRED, NULL },
		{},
	};
	const char *iface = NULL, *bad, *text;
	struct json_object *p;

	(void)fds;
	if (vl_dispatch(params, fields, &iface, 0, &bad) < 0) {
		reply_invalid(c, bad);
		return 0;
	}
	if (strcmp(iface, PHYSMEM_INTERFACE) == 0) {
		text = physmem_interface_description;
	} else if (strcmp(iface, VL_SERVICE_INTERFACE) == 0) {
		text = varlink_service_interface_description;
	} else {
		p = json_object_new_object();
		json_object_object_add(p, "interface", json_object_new_string(iface));
		reply_error(c, VL_ERROR_INTERFACE_NOT_FOUND, p);
		return 0;
	}
	p = json_object_new_object();
	json_object_object_add(p, "description", json_object_new_string(text));
	reply(c, p);
	return 0;
}

/* ---- io.physmem.Manager ---- */

struct alloc_params {
	int64_t size;
	bool contiguous;
	int cache;
	const char *name;
	struct vl_int_array allow_uids;
	struct vl_int_array allow_gids;
	int64_t id;		/* Share */
	int memfd_index;	/* Pin */
	int64_t offset;		/* Pin */
};

/*
 * Check the name and access lists shared by Allocate, Pin and Share. Names
 * are unique per owner: the buffer's owner (the caller, for a new buffer) must
 * not share another buffer under the same name; other owners' names do not
 * matter, so nobody can squat a name for someone else.
 */
static bool check_sharing(struct conn *c, const struct alloc_params *a, const struct buffer *self)
{
	if (a->name) {
		struct buffer *other;

		if (!physmem_name_valid(a->name)) {
			reply_invalid(c, "name");
			return false;
		}
		other = registry_find_name(registry_of(c), self ? self->owner_uid : c->peer.uid, a->name);
		if (other && other != self) {
			struct json_object *p = json_object_new_object();

			json_object_object_add(p, "name", json_object_new_string(a->name));
			reply_error(c, PHYSMEM_ERROR_NAME_IN_USE, p);
			return false;
		}
	}
	for (unsigned i = 0; i < a->allow_uids.n; i++)
		if (a->allow_uids.v[i] < 0 || a->allow_uids.v[i] >= UINT32_MAX) {
			reply_invalid(c, "allowUids");
			return false;
		}
	for (unsigned i = 0; i < a->allow_gids.n; i++)
		if (a->allow_gids.v[i] < 0 || a->allow_gids.v[i] >= UINT32_MAX) {
			reply_invalid(c, "allowGids");
			return false;
		}
	return true;
}

static void apply_sharing(struct buffer *b, const struct alloc_params *a)
{
	if (a->name)
		snprintf(b->name, sizeof(b->name), "%s", a->name);
	b->n_allow_uids = a->allow_uids.n;
	for (unsigned i = 0; i < a->allow_uids.n; i++)
		b->allow_uids[i] = (uid_t)a->allow_uids.v[i];
	b->n_allow_gids = a->allow_gids.n;
	for (unsigned i = 0; i < a->allow_gids.n; i++)
		b->allow_gids[i] = (gid_t)a->allow_gids.v[i];
}

/* Would size more bytes fit in the caller's quota and the daemon's limits? */
static bool check_quota(struct conn *c, uint64_t size)
{
	const struct conf *conf = conf_of(c);
	struct registry *r = registry_of(c);
	struct usage *u = c->usage;

	registry_reap(r);
	if (u->buffers >= conf->max_buffers_per_uid) {
		reply_quota(c, "buffers", conf->max_buffers_per_uid, u->buffers, 1);
		return false;
	}
	if (size > conf->max_bytes_per_uid || u->bytes > conf->max_bytes_per_uid - size) {
		reply_quota(c, "bytes", conf->max_bytes_per_uid, u->bytes, size);
		return false;
	}
	if (r->n_buffers >= conf->max_buffers_total) {
		reply_quota(c, "daemon-buffers", conf->max_buffers_total, r->n_buffers, 1);
		return false;
	}
	return true;
}

/*
 * The size the backend will really allocate (rounded up to its allocation
 * unit: a page, or a huge page), within the limits; or 0 after replying
 * SizeOutOfRange. Quotas are checked against this size.
 */
static uint64_t checked_size(struct conn *c, int64_t size)
{
	struct registry *r = registry_of(c);
	uint64_t unit = r->backend->granule ? r->backend->granule(r->backend_state)
					   : (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t rounded;

	if (size <= 0 || (uint64_t)size > conf_of(c)->max_buffer_size) {
		reply_size_out_of_range(c, size);
		return 0;
	}
	rounded = ((uint64_t)size + unit - 1) / unit * unit;
	if (rounded > conf_of(c)->max_buffer_size) {
		reply_size_out_of_range(c, size);
		return 0;
	}
	return rounded;
}

/* A call whose backend work runs on a worker: the job, and what the reply needs. */
struct call_job {
	struct job job;
	struct conn *c;
	bool oneway;
	struct alloc_params a;
	char name[65];
};

/* At dispatch: the quota is checked and charged now, after the uid's earlier jobs. */
static int call_start(struct job *j)
{
	struct call_job *cj = (struct call_job *)j;
	struct conn *c = cj->c;
	bool ok;

	if (c->gone)
		return -ECANCELED;
	c->oneway = cj->oneway;
	ok = check_quota(c, j->size);
	c->oneway = false;
	if (!ok)
		return -EDQUOT;
	registry_charge(registry_of(c), j->uid, j->size);
	return 0;
}

/* The new buffer goes into the registry, and its fd to the caller. */
static void call_finish(struct call_job *cj)
{
	struct conn *c = cj->c;
	struct registry *r = registry_of(c);
	struct job *j = &cj->job;
	struct buffer *b;

	if (j->result < 0) {
		registry_uncharge(r, j->uid, j->size);
		if (j->kind == JOB_PIN && (j->result == -EINVAL || j->result == -EBADF || j->result == -EPERM)) {
			reply_invalid(c, "memfdFileDescriptor");	/* the module refused the file */
		} else if (j->kind == JOB_PIN && j->result == -ENODATA) {
			/* A page of the range is missing: the module never allocates. */
			struct json_object *p = json_object_new_object();

			json_object_object_add(p, "offset", json_object_new_int64(0));
			reply_error(c, PHYSMEM_ERROR_NOT_POPULATED, p);
		} else {
			reply_backend_error(c, j->result, j->feature);
		}
		return;
	}
	/* Another call may have taken the name while this one ran. */
	if (!check_sharing(c, &cj->a, NULL)) {
		registry_release(r, j->uid, &j->b, j->size);
		return;
	}
	b = registry_add(r, c, c->peer.uid, c->peer.pid, &j->b, cj->a.cache, 0);
	if (!b) {
		registry_release(r, j->uid, &j->b, j->size);
		reply_backend_error(c, -ENOMEM, NULL);
		return;
	}
	registry_uncharge(r, j->uid, j->size);		/* the reservation, now charged as b */
	apply_sharing(b, &cj->a);
	if (b->name[0])
		fdstore_named(r, b);
	reply_buffer_fd(c, b);
	server_notify_status(c->server);
}

static void call_done(struct job *j)
{
	struct call_job *cj = (struct call_job *)j;
	struct conn *c = cj->c;

	if (j->started) {
		if (!c->gone) {
			c->oneway = cj->oneway;
			call_finish(cj);
			c->oneway = false;
		} else if (j->result < 0) {
			registry_uncharge(registry_of(c), j->uid, j->size);
		} else {
			/* Nobody to give it to: release it, charged until that is done. */
			log_debug("connection %llu went away during its call: releasing the result",
				  (unsigned long long)c->id);
			registry_release(registry_of(c), j->uid, &j->b, j->size);
		}
	}
	if (j->kind == JOB_PIN)
		sink_close(j->memfd);
	free(cj);
	server_conn_resume(c);
}

/* Hand the backend work of this call to a worker; the connection waits for it. */
static void call_submit(struct conn *c, enum job_kind kind, uint64_t size, const struct alloc_params *a, int memfd)
{
	struct call_job *cj = calloc(1, sizeof(*cj));

	if (!cj) {
		if (memfd >= 0)
			sink_close(memfd);
		reply_backend_error(c, -ENOMEM, NULL);
		return;
	}
	cj->c = c;
	cj->oneway = c->oneway;
	cj->a = *a;
	if (a->name) {
		snprintf(cj->name, sizeof(cj->name), "%s", a->name);
		cj->a.name = cj->name;
	}
	cj->job.kind = kind;
	cj->job.uid = c->peer.uid;
	cj->job.size = size;
	cj->job.contiguous = a->contiguous;
	cj->job.cache = a->cache;
	cj->job.memfd = memfd;
	cj->job.offset = (uint64_t)a->offset;
	cj->job.b.fd = -1;
	cj->job.start = call_start;
	cj->job.done = call_done;
	c->busy = true;
	worker_submit(c->server->registry->workers, &cj->job);
}

#define SHARING_FIELDS \
	{ "name", VL_FIELD_STRING, offsetof(struct alloc_params, name), VL_FIELD_NULLABLE, NULL }, \
	{ "allowUids", VL_FIELD_INT_ARRAY, offsetof(struct alloc_params, allow_uids), VL_FIELD_NULLABLE, NULL }, \
	{ "allowGids", VL_FIELD_INT_ARRAY, offsetof(struct alloc_params, allow_gids), VL_FIELD_NULLABLE, NULL }

static int method_allocate(struct conn *c, struct json_object *params, struct vl_fds *fds)
{
	static const struct vl_field fields[] = {
		{ "size", VL_FIELD_INT, offsetof(struct alloc_params, size), VL_FIELD_REQUIRED, NULL },
		{ "contiguous", VL_FIELD_BOOL, offsetof(struct alloc_params, contiguous), VL_FIELD_NULLABLE, NULL },
		{ "cache", VL_FIELD_ENUM, offsetof(struct alloc_params, cache), VL_FIELD_NULLABLE,
		  physmem_cache_mode_names },
		SHARING_FIELDS,
		{},
	};
	struct alloc_params a = { .cache = PHYSMEM_CACHE_MODE_CACHED };
	const char *bad;
	uint64_t size;

	(void)fds;
	if (vl_dispatch(params, fields, &a, 0, &bad) < 0) {
		reply_invalid(c, bad);
		return 0;
	}
	size = checked_size(c, a.size);
	if (!size || !check_sharing(c, &a, NULL))
		return 0;
	/* The quota is checked when a worker is ready for it: see call_start(). */
	call_submit(c, JOB_ALLOCATE, size, &a, -1);
	return 0;
}

static int method_pin(struct conn *c, struct json_object *params, struct vl_fds *fds)
{
	static const struct vl_field fields[] = {
		{ "memfdFileDescriptor", VL_FIELD_FD_INDEX, offsetof(struct alloc_params, memfd_index),
		  VL_FIELD_REQUIRED, NULL },
		{ "offset", VL_FIELD_INT, offsetof(struct alloc_params, offset), VL_FIELD_NULLABLE, NULL },
		{ "size", VL_FIELD_INT, offsetof(struct alloc_params, size), VL_FIELD_NULLABLE, NULL },
		SHARING_FIELDS,
		{},
	};
	struct alloc_params a = { .cache = PHYSMEM_CACHE_MODE_CACHED, .size = -1 };
	struct registry *r = registry_of(c);
	const char *bad;
	struct stat st;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t size;
	int memfd, seals;

	if (vl_dispatch(params, fields, &a, fds->n, &bad) < 0) {
		reply_invalid(c, bad);
		return 0;
	}
	if (!r->backend->pin) {
		reply_backend_error(c, -EOPNOTSUPP, "pinning memfds");
		return 0;
	}
	memfd = fds->fds[a.memfd_index];
	/*
	 * F_GET_SEALS first: it answers at once for any file and fails for
	 * everything but shmem, whereas fstat() of a file on a FUSE mount the
	 * client serves could block this whole daemon.
	 */
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(memfd, &st) < 0 || !S_ISREG(st.st_mode)) {
		reply_invalid(c, "memfdFileDescriptor");
		return 0;
	}
	if (a.offset < 0 || (uint64_t)a.offset % page || (uint64_t)a.offset > (uint64_t)st.st_size) {
		reply_invalid(c, "offset");
		return 0;
	}
	if (a.size == -1)
		a.size = st.st_size - a.offset;
	size = checked_size(c, a.size);
	if (!size)
		return 0;
	if ((uint64_t)a.size % page || size > (uint64_t)st.st_size - (uint64_t)a.offset) {
		reply_invalid(c, "size");
		return 0;
	}
	if (!check_sharing(c, &a, NULL))
		return 0;
	/* The memfd travels with the job and comes back to call_done(), which disposes of it. */
	call_submit(c, JOB_PIN, size, &a, vl_fds_take(fds, (unsigned)a.memfd_index));
	return 0;
}

/* Look a buffer up by id as the caller sees it; replies NoSuchBuffer if hidden. */
static struct buffer *visible_buffer(struct conn *c, int64_t id)
{
	struct buffer *b = id > 0 ? registry_find(registry_of(c), (uint64_t)id) : NULL;

	if (!b || !policy_may_describe(&c->peer, b)) {
		reply_no_such_buffer(c, id, NULL);
		return NULL;
	}
	return b;
}

static int method_share(struct conn *c, struct json_object *params, struct vl_fds *fds)
{
	static const struct vl_field fields[] = {
		{ "id", VL_FIELD_INT, offsetof(struct alloc_params, id), VL_FIELD_REQUIRED, NULL },
		SHARING_FIELDS,
		{},
	};
	struct alloc_params a = { 0 };
	struct buffer *b;
	const char *bad;

	(void)fds;
	if (vl_dispatch(params, fields, &a, 0, &bad) < 0) {
		reply_invalid(c, bad);
		return 0;
	}
	if (!a.name) {
		reply_invalid(c, "name");
		return 0;
	}
	b = visible_buffer(c, a.id);
	if (!b)
		return 0;
	if (!policy_may_free(&c->peer, b)) {
		reply_permission_denied(c, "only the owner may share a buffer");
		return 0;
	}
	if (!check_sharing(c, &a, b))
		return 0;
	apply_sharing(b, &a);
	fdstore_named(registry_of(c), b);
	{
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "buffer", buffer_json(c, b));
		reply(c, p);
	}
	return 0;
}

/* AmbiguousName: several owners share name with the caller; list them. */
static void reply_ambiguous_name(struct conn *c, const char *name)
{
	struct json_object *p = json_object_new_object(), *owners = json_object_new_array();
	struct buffer *b = NULL;

	while ((b = registry_next_name(registry_of(c), b, name)))
		if (policy_may_import(&c->peer, b))
			json_object_array_add(owners, json_object_new_int64(b->owner_uid));
	json_object_object_add(p, "name", json_object_new_string(name));
	json_object_object_add(p, "owners", owners);
	reply_error(c, PHYSMEM_ERROR_AMBIGUOUS_NAME, p);
}

struct import_params {
	const char *name;
	int64_t owner;		/* OWNER_ANY: not given */
};

#define OWNER_ANY INT64_MIN

/*
 * Names are per owner. With owner, only that owner's buffer of the name
 * counts; without, the buffers of the name the caller may import: one is
 * imported, several are AmbiguousName. Like before, a name the caller may not
 * import is PermissionDenied if it exists and NoSuchBuffer if not.
 */
static int method_import(struct conn *c, struct json_object *params, struct vl_fds *fds)
{
	static const struct vl_field fields[] = {
		{ "name", VL_FIELD_STRING, offsetof(struct import_params, name), VL_FIELD_REQUIRED, NULL },
		{ "owner", VL_FIELD_INT, offsetof(struct import_params, owner), VL_FIELD_NULLABLE, NULL },
		{},
	};
	struct import_params a = { .owner = OWNER_ANY };
	struct buffer *b = NULL, *found = NULL, *denied = NULL;
	const char *bad;

	(void)fds;
	if (vl_dispatch(params, fields, &a, 0, &bad) < 0) {
		reply_invalid(c, bad);
		return 0;
	}
	if (!physmem_name_valid(a.name)) {
		reply_invalid(c, "name");
		return 0;
	}
	if (a.owner != OWNER_ANY && (a.owner < 0 || a.owner >= UINT32_MAX)) {
		reply_invalid(c, "owner");
		return 0;
	}
	while ((b = registry_next_name(registry_of(c), b, a.name))) {
		if (a.owner != OWNER_ANY && b->owner_uid != (uid_t)a.owner)
			continue;
		if (!policy_may_import(&c->peer, b)) {
			denied = b;
			continue;
		}
		if (found) {
			reply_ambiguous_name(c, a.name);
			return 0;
		}
		found = b;
	}
	if (!found && !denied) {
		reply_no_such_buffer(c, 0, a.name);
		return 0;
	}
	if (!found) {
		log_notice("uid %u may not import '%s'", (unsigned)c->peer.uid, a.name);
		reply_permission_denied(c, "the buffer's owner did not allow this user or group");
		return 0;
	}
	reply_buffer_fd(c, found);
	return 0;
}

static int method_free(struct conn *c, struct json_object *params, struct vl_fds *fds)
{
	static const struct vl_field fields[] = {
		{ "id", VL_FIELD_INT, 0, VL_FIELD_REQUIRED, NULL },
		{},
	};
	int64_t id = 0;
	struct buffer *b;
	const char *bad;

	(void)fds;
	if (vl_dispatch(params, fields, &id, 0, &bad) < 0) {
		reply_invalid(c, bad);
		return 0;
	}
	b = visible_buffer(c, id);
	if (!b)
		return 0;
	if (!policy_may_free(&c->peer, b)) {
		reply_permission_denied(c, "only the owner may free a buffer");
		return 0;
	}
	registry_free(registry_of(c), b);
	reply(c, NULL);
	server_notify_status(c->server);
	return 0;
}

static int method_describe(struct conn *c, struct json_object *params, struct vl_fds *fds)
{
	static const struct vl_field fields[] = {
		{ "id", VL_FIELD_INT, 0, VL_FIELD_REQUIRED, NULL },
		{},
	};
	struct json_object *p;
	int64_t id = 0;
	struct buffer *b;
	const char *bad;

	(void)fds;
	if (vl_dispatch(params, fields, &id, 0, &bad) < 0) {
		reply_invalid(c, bad);
		return 0;
	}
	b = visible_buffer(c, id);
	if (!b)
		return 0;
	p = json_object_new_object();
	json_object_object_add(p, "buffer", buffer_json(c, b));
	reply(c, p);
	return 0;
}

static int method_list(struct conn *c, struct json_object *params, struct vl_fds *fds)
{
	static const struct vl_field fields[] = {
		{ "all", VL_FIELD_BOOL, 0, VL_FIELD_NULLABLE, NULL },
		{},
	};
	struct json_object *p, *list;
	bool all = false;
	struct buffer *b;
	const char *bad;

	(void)fds;
	if (vl_dispatch(params, fields, &all, 0, &bad) < 0) {
		reply_invalid(c, bad);
		return 0;
	}
	if (all && c->peer.uid != 0) {
		reply_permission_denied(c, "only root may list every buffer");
		return 0;
	}
	list = json_object_new_array();
	TAILQ_FOREACH(b, &registry_of(c)->buffers, entry)
		if (all || policy_is_owner(&c->peer, b))
			json_object_array_add(list, buffer_json(c, b));
	p = json_object_new_object();
	json_object_object_add(p, "buffers", list);
	reply(c, p);
	return 0;
}

static int method_status(struct conn *c, struct json_object *params, struct vl_fds *fds)
{
	static const struct vl_field fields[] = { {} };
	const struct conf *conf = conf_of(c);
	struct registry *r = registry_of(c);
	struct json_object *p, *q;
	const char *bad;

	(void)fds;
	if (vl_dispatch(params, fields, NULL, 0, &bad) < 0) {
		reply_invalid(c, bad);
		return 0;
	}
	registry_reap(r);
	q = json_object_new_object();
	json_object_object_add(q, "uid", json_object_new_int64(c->peer.uid));
	json_object_object_add(q, "maxBuffers", json_object_new_int64((int64_t)conf->max_buffers_per_uid));
	json_object_object_add(q, "maxBytes", json_object_new_int64((int64_t)conf->max_bytes_per_uid));
	json_object_object_add(q, "buffers", json_object_new_int64((int64_t)c->usage->buffers));
	json_object_object_add(q, "bytes", json_object_new_int64((int64_t)c->usage->bytes));
	json_object_object_add(q, "heldBytes", json_object_new_int64((int64_t)c->usage->held_bytes));

	p = json_object_new_object();
	json_object_object_add(p, "version", json_object_new_string(PHYSMEM_VERSION));
	json_object_object_add(p, "backend", json_object_new_string(r->backend->name));
	json_object_object_add(p, "dmaSafe", json_object_new_boolean(r->backend->dma_safe));
	json_object_object_add(p, "buffers", json_object_new_int64((int64_t)r->n_buffers));
	json_object_object_add(p, "bytes", json_object_new_int64((int64_t)r->bytes));
	json_object_object_add(p, "connections", json_object_new_int64((int64_t)c->server->n_conns));
	json_object_object_add(p, "maxBufferSize", json_object_new_int64((int64_t)conf->max_buffer_size));
	json_object_object_add(p, "maxMessageSize", json_object_new_int64((int64_t)conf->max_message_size));
	json_object_object_add(p, "maxConnections", json_object_new_int64((int64_t)conf->max_connections));
	json_object_object_add(p, "maxConnectionsPerUid",
			       json_object_new_int64((int64_t)conf->max_connections_per_uid));
	json_object_object_add(p, "addressPolicy",
			       json_object_new_string(address_policy_names[conf->address_policy]));
	json_object_object_add(p, "quota", q);
	reply(c, p);
	return 0;
}

static const struct method service_methods[] = {
	{ "GetInfo", method_get_info, false },
	{ "GetInterfaceDescription", method_get_interface_description, false },
	{},
};

static const struct method manager_methods[] = {
	{ "Allocate", method_allocate, false },
	{ "Pin", method_pin, true },
	{ "Share", method_share, false },
	{ "Import", method_import, false },
	{ "Free", method_free, false },
	{ "Describe", method_describe, false },
	{ "List", method_list, false },
	{ "Status", method_status, false },
	{},
};

static const struct interface {
	const char *name;
	const struct method *methods;
} interfaces[] = {
	{ VL_SERVICE_INTERFACE, service_methods },
	{ PHYSMEM_INTERFACE, manager_methods },
};

static const struct method *find_method(struct conn *c, const char *full)
{
	char iface[256] = "";
	const char *name;
	struct json_object *p;

	if (vl_method_split(full, iface, sizeof(iface), &name) == 0)
		for (size_t i = 0; i < sizeof(interfaces) / sizeof(interfaces[0]); i++) {
			if (strcmp(interfaces[i].name, iface) != 0)
				continue;
			for (const struct method *m = interfaces[i].methods; m->name; m++)
				if (strcmp(m->name, name) == 0)
					return m;
			p = json_object_new_object();
			json_object_object_add(p, "method", json_object_new_string(full));
			reply_error(c, VL_ERROR_METHOD_NOT_FOUND, p);
			return NULL;
		}
	p = json_object_new_object();
	json_object_object_add(p, "interface", json_object_new_string(iface[0] ? iface : full));
	reply_error(c, VL_ERROR_INTERFACE_NOT_FOUND, p);
	return NULL;
}

int varlink_handle(struct conn *c, struct json_object *msg, struct vl_fds *fds)
{
	const struct method *m;
	struct vl_call call;
	const char *bad;

	if (vl_call_parse(msg, &call, &bad) < 0) {
		reply_invalid(c, bad[0] ? bad : "message");
		return 0;
	}
	if (call.upgrade) {
		reply_invalid(c, "upgrade");
		return 0;
	}
	/* A oneway call gets no reply, not even an error. */
	c->oneway = call.oneway;
	m = find_method(c, call.method);
	if (m && fds->n > 0 && !m->takes_fds) {
		sink_close_fds(fds, c->peer.uid);
		reply_invalid(c, "fileDescriptors");
		m = NULL;
	}
	if (m) {
		log_debug("connection %llu: %s", (unsigned long long)c->id, call.method);
		m->handler(c, call.parameters, fds);
	}
	c->oneway = false;
	return 0;
}
