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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "physmem-proto.h"
#include "physmemd.h"
#include "varlink-message.h"
#include "varlink-writer.h"

#ifndef PHYSMEM_VERSION
#define PHYSMEM_VERSION "0"
#endif

/*
 * One call being handled: the connection it came on and what its reply
 * depends on. It lives for the handler (and, copied into a worker job, until
 * the job's reply); the connection itself holds no per-call state.
 */
struct call {
	struct conn *conn;
	bool oneway;		/* the caller wants no reply, not even an error */
	struct vl_fds *fds;	/* the fds that came with it; NULL once on a worker */
};

struct method {
	const char *name;
	/* Replies (or not, for oneway calls) and takes what it keeps of call->fds. */
	void (*handler)(struct call *call, struct json_object *params);
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

/* Queue a reply to call, unless it is oneway; takes ownership of msg. */
static void call_reply(struct call *call, struct json_object *msg, const int *fds, unsigned nfds)
{
	if (call->oneway) {
		(void)vl_build_failed();	/* nobody gets it, built or not */
		json_object_put(msg);
		return;
	}
	server_reply(call->conn, msg, fds, nfds);
}

static void reply(struct call *call, struct json_object *params)
{
	static const char empty[] = "{\"parameters\":{}}";

	if (!params && !call->oneway) {
		/* params NULL because its object could not be made: the static out-of-memory error. */
		if (vl_build_failed()) {
			server_reply(call->conn, NULL, NULL, 0);
			return;
		}
		/* The commonest reply (Free's), written once. */
		server_reply_text(call->conn, empty, sizeof(empty), NULL, 0);
		return;
	}
	call_reply(call, vl_reply_new(params), NULL, 0);
}

static void reply_error(struct call *call, const char *name, struct json_object *params)
{
	call_reply(call, vl_error_new(name, params), NULL, 0);
}

static void reply_invalid(struct call *call, const char *parameter)
{
	call_reply(call, vl_error_invalid_parameter(parameter), NULL, 0);
}

static void reply_permission_denied(struct call *call, const char *reason)
{
	struct json_object *p = json_object_new_object();

	vl_add(p, "reason", json_object_new_string(reason));
	reply_error(call, PHYSMEM_ERROR_PERMISSION_DENIED, p);
}

static void reply_no_such_buffer(struct call *call, int64_t id, const char *name)
{
	struct json_object *p = json_object_new_object();

	if (name)
		vl_add(p, "name", json_object_new_string(name));
	else
		vl_add(p, "id", json_object_new_int64(id));
	reply_error(call, PHYSMEM_ERROR_NO_SUCH_BUFFER, p);
}

static void reply_quota(struct call *call, const char *limit, uint64_t max, uint64_t used, uint64_t requested)
{
	struct json_object *p = json_object_new_object();

	vl_add(p, "limit", json_object_new_string(limit));
	vl_add(p, "max", json_object_new_int64((int64_t)max));
	vl_add(p, "used", json_object_new_int64((int64_t)used));
	vl_add(p, "requested", json_object_new_int64((int64_t)requested));
	reply_error(call, PHYSMEM_ERROR_QUOTA_EXCEEDED, p);
}

static void reply_size_out_of_range(struct call *call, int64_t size)
{
	struct conn *c = call->conn;
	struct json_object *p = json_object_new_object();

	vl_add(p, "size", json_object_new_int64(size));
	vl_add(p, "min", json_object_new_int64(1));
	vl_add(p, "max", json_object_new_int64((int64_t)conf_of(c)->max_buffer_size));
	reply_error(call, PHYSMEM_ERROR_SIZE_OUT_OF_RANGE, p);
}

static void reply_backend_error(struct call *call, int r, const char *feature)
{
	struct conn *c = call->conn;
	struct json_object *p = json_object_new_object();

	if (r == -EOPNOTSUPP) {
		vl_add(p, "feature", json_object_new_string(feature ? feature : "?"));
		vl_add(p, "backend", json_object_new_string(registry_of(c)->backend->name));
		reply_error(call, PHYSMEM_ERROR_NOT_SUPPORTED, p);
		return;
	}
	vl_add(p, "reason", json_object_new_string(strerror(-r)));
	reply_error(call, PHYSMEM_ERROR_ALLOCATION_FAILED, p);
}

/* At most this many bindings per buffer (the module's own limit is the same). */
#define BUFFER_MAX_BINDINGS 8

static void reply_no_such_device(struct call *call, const char *device)
{
	struct json_object *p = json_object_new_object();

	vl_add(p, "device", json_object_new_string(device));
	reply_error(call, PHYSMEM_ERROR_NO_SUCH_DEVICE, p);
}

static void reply_device_busy(struct call *call, const char *device, const char *reason)
{
	struct json_object *p = json_object_new_object();

	vl_add(p, "device", json_object_new_string(device));
	vl_add(p, "reason", json_object_new_string(reason));
	reply_error(call, PHYSMEM_ERROR_DEVICE_BUSY, p);
}

/* The reply to a bind of a buffer for the device at a that failed with r. */
static void reply_bind_error(struct call *call, const struct physmem_pci_address *a, int r)
{
	struct conn *c = call->conn;
	char dev[PHYSMEM_PCI_ADDRESS_MAX + 1];
	struct pci_device d;
	const char *why;

	physmem_pci_address_format(a, dev, sizeof(dev));
	switch (r) {
	case -ENODEV:
		reply_no_such_device(call, dev);
		return;
	case -EBUSY:
		/* The module does not say why: sysfs does. */
		if (pci_device_read(conf_of(c), a, &d) < 0)
			why = "removal";
		else
			why = pci_device_unbindable(&d);
		reply_device_busy(call, dev, why ? why : "busy");
		return;
	case -EEXIST:
		reply_device_busy(call, dev, "bound");
		return;
	case -ENOSPC:
		reply_device_busy(call, dev, "limit");
		return;
	case -ERANGE:
		reply_device_busy(call, dev, "the device cannot reach the buffer's pages");
		return;
	case -ENOTTY:
		/* A module older than bindings. */
		reply_backend_error(call, -EOPNOTSUPP, "device binding");
		return;
	default:
		reply_backend_error(call, r, "device binding");
		return;
	}
}

/*
 * Before binding one of the caller's buffers for device: the name is valid,
 * the device exists, policy lets the caller bind it, the backend can, and
 * the caller has a binding left, which is charged now. Replies and returns
 * false when one fails; else *ret is the device.
 */
static bool bind_prepare(struct call *call, const char *device, struct physmem_pci_address *ret)
{
	struct conn *c = call->conn;
	struct registry *r = registry_of(c);
	char dev[PHYSMEM_PCI_ADDRESS_MAX + 1];
	struct pci_device d;

	if (physmem_pci_address_parse(device, ret) < 0) {
		reply_invalid(call, "device");
		return false;
	}
	physmem_pci_address_format(ret, dev, sizeof(dev));
	if (pci_device_read(conf_of(c), ret, &d) < 0) {
		reply_no_such_device(call, dev);
		return false;
	}
	if (!policy_may_bind(conf_of(c), &c->peer, ret, d.vendor, d.product)) {
		log_client_notice("uid %u may not bind device %s", (unsigned)c->peer.uid, dev);
		reply_permission_denied(call, "policy does not let this user bind buffers to this device");
		return false;
	}
	if (!r->backend->bind) {
		reply_backend_error(call, -EOPNOTSUPP, "device binding");
		return false;
	}
	if (registry_binding_charge(r, c->peer.uid) < 0) {
		struct usage *u = registry_usage(r, c->peer.uid, false);

		reply_quota(call, "bindings", conf_of(c)->max_bindings_per_uid, u ? u->bindings : 0, 1);
		return false;
	}
	return true;
}

static void write_int_array(struct vl_writer *w, unsigned n, const uint32_t *v)
{
	vl_writer_array_begin(w);
	for (unsigned i = 0; i < n; i++)
		vl_writer_int(w, v[i]);
	vl_writer_array_end(w);
}

/* A segment list as the interface's []Segment. */
static void write_segments(struct vl_writer *w, unsigned n, const struct segment *segs)
{
	vl_writer_array_begin(w);
	for (unsigned i = 0; i < n; i++) {
		vl_writer_object_begin(w);
		vl_writer_key(w, "address");
		vl_writer_int(w, (int64_t)segs[i].address);
		vl_writer_key(w, "length");
		vl_writer_int(w, (int64_t)segs[i].length);
		vl_writer_object_end(w);
	}
	vl_writer_array_end(w);
}

/* A buffer's bindings as []DeviceBinding, with segments only where policy allows. */
static void write_bindings(struct vl_writer *w, struct conn *c, const struct buffer *b)
{
	const struct backend_ops *ops = registry_of(c)->backend;
	bool addresses = policy_may_see_addresses(conf_of(c), &c->peer, b);

	vl_writer_array_begin(w);
	for (unsigned i = 0; i < b->b.n_bindings; i++) {
		const struct backend_binding *bb = &b->b.bindings[i];
		char dev[PHYSMEM_PCI_ADDRESS_MAX + 1];
		bool revoked = ops->binding_revoked && ops->binding_revoked(registry_of(c)->backend_state,
									    b->b.fd, bb->id) == 1;

		physmem_pci_address_format(&bb->device, dev, sizeof(dev));
		vl_writer_object_begin(w);
		vl_writer_key(w, "device");
		vl_writer_string(w, dev);
		vl_writer_key(w, "translation");
		vl_writer_string(w, translation_names[bb->translation]);
		vl_writer_key(w, "access");
		vl_writer_string(w, physmem_device_access_names[bb->access]);
		vl_writer_key(w, "revoked");
		vl_writer_bool(w, revoked);
		vl_writer_key(w, "segments");
		if (addresses && !revoked)
			write_segments(w, bb->n_segments, bb->segments);
		else
			vl_writer_null(w);
		vl_writer_object_end(w);
	}
	vl_writer_array_end(w);
}

/* The interface's Buffer type, with segments only where policy allows. */
static void write_buffer(struct vl_writer *w, struct conn *c, const struct buffer *b)
{
	vl_writer_object_begin(w);
	vl_writer_key(w, "id");
	vl_writer_int(w, (int64_t)b->id);
	if (b->name[0]) {
		vl_writer_key(w, "name");
		vl_writer_string(w, b->name);
	}
	vl_writer_key(w, "size");
	vl_writer_int(w, (int64_t)b->b.size);
	vl_writer_key(w, "contiguous");
	vl_writer_bool(w, b->b.contiguous);
	vl_writer_key(w, "cache");
	vl_writer_string(w, physmem_cache_mode_names[b->cache]);
	vl_writer_key(w, "backend");
	vl_writer_string(w, registry_of(c)->backend->name);
	vl_writer_key(w, "ownerUid");
	vl_writer_int(w, b->owner_uid);
	vl_writer_key(w, "ownerPid");
	vl_writer_int(w, b->owner_pid);
	vl_writer_key(w, "allowUids");
	write_int_array(w, b->n_allow_uids, b->allow_uids);
	vl_writer_key(w, "allowGids");
	write_int_array(w, b->n_allow_gids, b->allow_gids);
	vl_writer_key(w, "locked");
	vl_writer_bool(w, b->b.locked);
	vl_writer_key(w, "dmaSafe");
	vl_writer_bool(w, registry_of(c)->backend->dma_safe);
	if (b->b.page_size) {
		vl_writer_key(w, "pageSize");
		vl_writer_int(w, (int64_t)b->b.page_size);
		vl_writer_key(w, "transparentHugePages");
		vl_writer_bool(w, b->b.thp);
	}
	vl_writer_key(w, "segments");
	if (b->b.n_segments && policy_may_see_addresses(conf_of(c), &c->peer, b))
		write_segments(w, b->b.n_segments, b->b.segments);
	else
		vl_writer_null(w);
	if (b->b.n_bindings) {
		vl_writer_key(w, "devices");
		write_bindings(w, c, b);
	}
	if (b->b.from_pool) {
		vl_writer_key(w, "pool");
		vl_writer_string(w, b->b.pool[0] ? b->b.pool : "?");
	}
	vl_writer_object_end(w);
}

/* Start a written reply: {"parameters":{"KEY": (its value is the caller's). */
static void written_reply_begin(struct vl_writer *w, const char *key)
{
	vl_writer_init(w);
	vl_writer_object_begin(w);
	vl_writer_key(w, "parameters");
	vl_writer_object_begin(w);
	vl_writer_key(w, key);
}

/* Close the reply written_reply_begin() started, send it with its fds and free the writer. */
static void written_reply_send(struct call *call, struct vl_writer *w, const int *fds, unsigned nfds)
{
	vl_writer_object_end(w);
	vl_writer_object_end(w);
	server_reply_writer(call->conn, w, fds, nfds);
	vl_writer_done(w);
}

/*
 * Reply {"buffer": b} (Allocate, Pin, Get, Share, Bind), with the buffer's
 * fd as bufferFileDescriptor when fd is set.
 */
static void reply_buffer(struct call *call, const struct buffer *b, bool fd)
{
	struct vl_writer w;

	if (call->oneway)
		return;
	written_reply_begin(&w, "buffer");
	write_buffer(&w, call->conn, b);
	if (fd) {
		vl_writer_key(&w, "bufferFileDescriptor");
		vl_writer_int(&w, 0);
	}
	written_reply_send(call, &w, fd ? &b->b.fd : NULL, fd ? 1 : 0);
}


/* ---- org.varlink.service ---- */

static void method_get_info(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = { {} };
	struct json_object *p, *ifaces;
	const char *bad;

	if (vl_dispatch(params, fields, NULL, 0, &bad) < 0) {
		reply_invalid(call, bad);
		return;
	}
	p = json_object_new_object();
	ifaces = json_object_new_array();
	vl_append(ifaces, json_object_new_string(VL_SERVICE_INTERFACE));
	vl_append(ifaces, json_object_new_string(PHYSMEM_INTERFACE));
	vl_add(p, "vendor", json_object_new_string(PHYSMEM_VENDOR));
	vl_add(p, "product", json_object_new_string("physmemd"));
	vl_add(p, "version", json_object_new_string(PHYSMEM_VERSION));
	vl_add(p, "url", json_object_new_string(PHYSMEM_URL));
	vl_add(p, "interfaces", ifaces);
	reply(call, p);
}

static void method_get_interface_description(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = {
		{ .name = "interface", .type = VL_FIELD_STRING, .offset = 0, .flags = VL_FIELD_REQUIRED },
		{},
	};
	const char *iface = NULL, *bad, *text;
	struct json_object *p;

	if (vl_dispatch(params, fields, &iface, 0, &bad) < 0) {
		reply_invalid(call, bad);
		return;
	}
	if (strcmp(iface, PHYSMEM_INTERFACE) == 0) {
		text = physmem_interface_description;
	} else if (strcmp(iface, VL_SERVICE_INTERFACE) == 0) {
		text = varlink_service_interface_description;
	} else {
		p = json_object_new_object();
		vl_add(p, "interface", json_object_new_string(iface));
		reply_error(call, VL_ERROR_INTERFACE_NOT_FOUND, p);
		return;
	}
	p = json_object_new_object();
	vl_add(p, "description", json_object_new_string(text));
	reply(call, p);
}

/* ---- io.physmem.Manager ---- */

struct alloc_params {
	int64_t size;
	bool contiguous;
	int cache;
	const char *name;
	struct vl_int_array allow_uids;
	struct vl_int_array allow_gids;
	int64_t id;		/* Share; Bind: the buffer (its JOB_BIND) */
	int memfd_index;	/* Pin */
	int64_t offset;		/* Pin */
	const char *device;	/* Allocate, Pin: bind to this PCI device */
	int device_access;	/* enum physmem_device_access_mode */
	const char *pool;	/* Allocate */
};

/*
 * Check the name and access lists shared by Allocate, Pin and Share. Names
 * are unique per owner: the buffer's owner (the caller, for a new buffer) must
 * not share another buffer under the same name; other owners' names do not
 * matter, so nobody can squat a name for someone else.
 */
static bool check_sharing(struct call *call, const struct alloc_params *a, const struct buffer *self)
{
	struct conn *c = call->conn;
	if (a->name) {
		struct buffer *other;

		if (!physmem_name_valid(a->name)) {
			reply_invalid(call, "name");
			return false;
		}
		other = registry_find_name(registry_of(c), self ? self->owner_uid : c->peer.uid, a->name);
		if (other && other != self) {
			struct json_object *p = json_object_new_object();

			vl_add(p, "name", json_object_new_string(a->name));
			reply_error(call, PHYSMEM_ERROR_NAME_IN_USE, p);
			return false;
		}
	}
	for (unsigned i = 0; i < a->allow_uids.n; i++)
		if (a->allow_uids.v[i] < 0 || a->allow_uids.v[i] >= UINT32_MAX) {
			reply_invalid(call, "allowUids");
			return false;
		}
	for (unsigned i = 0; i < a->allow_gids.n; i++)
		if (a->allow_gids.v[i] < 0 || a->allow_gids.v[i] >= UINT32_MAX) {
			reply_invalid(call, "allowGids");
			return false;
		}
	return true;
}

/* Apply what check_sharing() passed; -ENOMEM (the name's index): b is unchanged. */
static int apply_sharing(struct registry *r, struct buffer *b, const struct alloc_params *a)
{
	if (a->name && registry_set_name(r, b, a->name) < 0)
		return -ENOMEM;
	b->n_allow_uids = a->allow_uids.n;
	for (unsigned i = 0; i < a->allow_uids.n; i++)
		b->allow_uids[i] = (uid_t)a->allow_uids.v[i];
	b->n_allow_gids = a->allow_gids.n;
	for (unsigned i = 0; i < a->allow_gids.n; i++)
		b->allow_gids[i] = (gid_t)a->allow_gids.v[i];
	return 0;
}

/*
 * The limit one more buffer of size bytes would pass for c's uid ("buffers",
 * "bytes", "daemon-buffers"), or NULL. Held memory is counted as last
 * reaped: a stale charge only ever refuses, and check_quota() reaps first.
 */
static const char *quota_exceeded(struct conn *c, uint64_t size)
{
	const struct conf *conf = conf_of(c);
	struct registry *r = registry_of(c);
	struct usage *u = c->usage;

	if (u->buffers >= conf->max_buffers_per_uid)
		return "buffers";
	if (size > conf->max_bytes_per_uid || u->bytes > conf->max_bytes_per_uid - size)
		return "bytes";
	if (r->n_buffers >= conf->max_buffers_total)
		return "daemon-buffers";
	return NULL;
}

/* Would size more pool bytes pass c's uid's max-pool-bytes-per-uid? */
static bool pool_quota_exceeded(struct conn *c, uint64_t size)
{
	uint64_t max = conf_of(c)->max_pool_bytes_per_uid;

	return size > max || c->usage->pool_bytes > max - size;
}

/* Would size more bytes fit in the caller's quota and the daemon's limits? Replies QuotaExceeded if not. */
static bool check_quota(struct call *call, uint64_t size)
{
	struct conn *c = call->conn;
	const struct conf *conf = conf_of(c);
	struct registry *r = registry_of(c);
	const char *limit;

	/*
	 * At the start of the caller's own job (this runs only there): what its
	 * held buffers still hold, asked once per uid and dispatch pass.
	 */
	registry_reap_once(r, c->peer.uid, r->workers ? worker_pool_pass(r->workers) : 0);
	limit = quota_exceeded(c, size);
	if (!limit)
		return true;
	if (strcmp(limit, "buffers") == 0)
		reply_quota(call, limit, conf->max_buffers_per_uid, c->usage->buffers, 1);
	else if (strcmp(limit, "bytes") == 0)
		reply_quota(call, limit, conf->max_bytes_per_uid, c->usage->bytes, size);
	else
		reply_quota(call, limit, conf->max_buffers_total, r->n_buffers, 1);
	return false;
}

/*
 * The size the backend will allocate for a request of size bytes (see
 * registry_alloc_size()), or 0 after replying SizeOutOfRange. This one number
 * is checked against the quota, charged, passed to the backend, and compared
 * with what the backend made.
 */
static uint64_t checked_size(struct call *call, int64_t size)
{
	uint64_t rounded;

	if (size <= 0 || registry_alloc_size(registry_of(call->conn), (uint64_t)size, &rounded) < 0) {
		reply_size_out_of_range(call, size);
		return 0;
	}
	return rounded;
}

/* A call whose backend work runs on a worker: the job, and what the reply needs. */
struct call_job {
	struct job job;
	struct call call;	/* fds: NULL, the memfd travels in job */
	struct alloc_params a;
	char name[65];
	bool bind_kept;		/* the binding charged at the call went to a buffer */
};

/* At dispatch of a JOB_BIND: nothing to charge (the binding was), only a gone caller to skip. */
static int bind_start(struct job *j)
{
	struct call_job *cj = (struct call_job *)j;

	return cj->call.conn->gone ? -ECANCELED : 0;
}

/* At dispatch: the quota is checked and charged now, after the uid's earlier jobs. */
static int call_start(struct job *j)
{
	struct call_job *cj = (struct call_job *)j;

	if (cj->call.conn->gone) {
		log_debug("connection %llu: gone before its call started, not run", (unsigned long long)cj->call.conn->id);
		return -ECANCELED;
	}
	if (!check_quota(&cj->call, j->size))
		return -EDQUOT;
	if (j->pool[0] && pool_quota_exceeded(cj->call.conn, j->size)) {
		reply_quota(&cj->call, "pool-bytes", conf_of(cj->call.conn)->max_pool_bytes_per_uid,
			    cj->call.conn->usage->pool_bytes, j->size);
		return -EDQUOT;
	}
	registry_charge(registry_of(cj->call.conn), j->uid, j->size);
	if (j->pool[0])
		registry_charge_pool(registry_of(cj->call.conn), j->uid, j->size);
	return 0;
}

/*
 * May this allocation start before its uid's pending releases? Their bytes
 * and buffers are still charged, so fitting now means fitting after them. A
 * gone caller's job may: its start() only cancels it. Asked at every
 * dispatch of any uid's job, so it asks the backend nothing (no reap): one
 * that does not fit waits for the releases and is checked again at start.
 */
static bool call_admit(struct job *j)
{
	struct call_job *cj = (struct call_job *)j;

	return cj->call.conn->gone ||
	       (!quota_exceeded(cj->call.conn, j->size) && !(j->pool[0] && pool_quota_exceeded(cj->call.conn, j->size)));
}

/* PoolUnavailable for a pool allocation the backend could not serve. */
static void reply_pool_unavailable(struct call *call, const struct job *j)
{
	struct json_object *p = json_object_new_object();

	vl_add(p, "pool", json_object_new_string(j->pool));
	vl_add(p, "reason", json_object_new_string(j->pool_failure.reason ? j->pool_failure.reason
	       : "none"));
	vl_add(p, "size", json_object_new_int64((int64_t)j->size));
	if (j->pool_failure.known) {
		vl_add(p, "free", json_object_new_int64((int64_t)j->pool_failure.free));
		vl_add(p, "largestFree", json_object_new_int64((int64_t)j->pool_failure.largest_free));
	}
	reply_error(call, PHYSMEM_ERROR_POOL_UNAVAILABLE, p);
}

/* Undo call_start()'s reservation of a job that made nothing. */
static void call_unreserve(struct conn *c, const struct job *j)
{
	if (j->pool[0])
		registry_uncharge_pool(registry_of(c), j->uid, j->size);
	registry_uncharge(registry_of(c), j->uid, j->size);
}

/* The reply to a failed backend job (j->size is no longer charged). */
static void call_reply_job_error(struct call *call, const struct job *j)
{
	if (j->bind_failed || j->kind == JOB_BIND) {
		/* The buffer (pool or not) was made but could not be bound: a bind error. */
		reply_bind_error(call, &j->bind_device, j->result);
	} else if (j->kind == JOB_ALLOCATE && j->pool[0] &&
		   (j->result == -ENOSPC || j->result == -ENODEV || j->result == -EBUSY)) {
		reply_pool_unavailable(call, j);
	} else if (j->kind == JOB_PIN && (j->result == -EINVAL || j->result == -EBADF || j->result == -EPERM)) {
		reply_invalid(call, "memfdFileDescriptor");	/* the module refused the file */
	} else if (j->kind == JOB_PIN && j->result == -ENODATA) {
		/* A page of the range is missing: the module never allocates. */
		struct json_object *p = json_object_new_object();

		vl_add(p, "offset", json_object_new_int64(0));
		reply_error(call, PHYSMEM_ERROR_NOT_POPULATED, p);
	} else {
		reply_backend_error(call, j->result, j->feature);
	}
}

/* The new buffer goes into the registry, and its fd to the caller. */
static void call_finish(struct call_job *cj)
{
	struct call *call = &cj->call;
	struct conn *c = call->conn;
	struct registry *r = registry_of(c);
	struct job *j = &cj->job;
	struct buffer *b;

	if (j->result < 0) {
		call_unreserve(c, j);
		call_reply_job_error(call, j);
		return;
	}
	/* What was charged is what the backend made, or nobody gets the buffer. */
	if (j->b.size != j->size) {
		struct json_object *p = json_object_new_object();

		log_error("the %s backend made %llu bytes where %llu were asked for and charged: refused",
			  r->backend->name, (unsigned long long)j->b.size, (unsigned long long)j->size);
		registry_release(r, j->uid, &j->b, j->size);
		vl_add(p, "reason", json_object_new_string("internal error: the backend made "
		       "another size than was charged"));
		reply_error(call, PHYSMEM_ERROR_ALLOCATION_FAILED, p);
		return;
	}
	/* Another call may have taken the name while this one ran. */
	if (!check_sharing(call, &cj->a, NULL)) {
		registry_release(r, j->uid, &j->b, j->size);
		return;
	}
	b = registry_add(r, c, c->peer.uid, c->peer.pid, &j->b, cj->a.cache, 0);
	if (!b) {
		registry_release(r, j->uid, &j->b, j->size);
		reply_backend_error(call, -ENOMEM, NULL);
		return;
	}
	call_unreserve(c, j);		/* the reservation, now charged as b */
	cj->bind_kept = j->bind;	/* and the binding, if any, is b's */
	if (apply_sharing(r, b, &cj->a) < 0) {
		registry_free(r, b);	/* as a Free would: its charge and binding with it */
		reply_backend_error(call, -ENOMEM, NULL);
		return;
	}
	if (b->name[0])
		fdstore_named(r, b);
	reply_buffer(call, b, true);
	server_notify_status(c->server);
}

/* A JOB_BIND is done: the binding goes to its buffer, unless that is gone. */
static void bind_finish(struct call_job *cj)
{
	struct call *call = &cj->call;
	struct conn *c = call->conn;
	struct registry *r = registry_of(c);
	struct job *j = &cj->job;
	struct backend_binding *v;
	struct buffer *b;

	if (!j->started)
		return;
	if (j->result < 0) {
		if (!c->gone)
			call_reply_job_error(call, j);
		return;
	}
	b = registry_find(r, (uint64_t)cj->a.id);
	v = b && !c->gone ? realloc(b->b.bindings, (b->b.n_bindings + 1) * sizeof(*v)) : NULL;
	if (!v) {
		/* Freed meanwhile (or no memory, or nobody to tell): undo it. */
		r->backend->unbind(r->backend_state, j->memfd, j->bound.id);
		free(j->bound.segments);
		if (c->gone)
			return;
		if (b)
			reply_backend_error(call, -ENOMEM, NULL);
		else
			reply_no_such_buffer(call, cj->a.id, NULL);
		return;
	}
	b->b.bindings = v;
	v[b->b.n_bindings++] = j->bound;
	cj->bind_kept = true;
	{
		char dev[PHYSMEM_PCI_ADDRESS_MAX + 1];

		physmem_pci_address_format(&j->bound.device, dev, sizeof(dev));
		log_client_info("buffer %llu: bound to %s for uid %u (%s)", (unsigned long long)b->id, dev,
				(unsigned)j->uid, translation_names[j->bound.translation]);
		reply_buffer(call, b, false);
	}
}

static void call_done(struct job *j)
{
	struct call_job *cj = (struct call_job *)j;
	struct conn *c = cj->call.conn;

	/* What was reserved as pool bytes is released as pool bytes, whatever the backend said. */
	if (j->result >= 0)
		j->b.from_pool = j->pool[0] != '\0';
	if (j->kind == JOB_BIND) {
		bind_finish(cj);
	} else if (j->started) {
		if (!c->gone) {
			call_finish(cj);
		} else if (j->result < 0) {
			call_unreserve(c, j);
		} else {
			/* Nobody to give it to: release it, charged until that is done. */
			log_debug("connection %llu went away during its call: releasing the result",
				  (unsigned long long)c->id);
			registry_release(registry_of(c), j->uid, &j->b, j->size);
		}
	}
	if (j->bind && !cj->bind_kept)
		registry_binding_uncharge(registry_of(c), j->uid);
	if (j->kind == JOB_PIN || j->kind == JOB_BIND)
		sink_close(j->memfd);
	free(cj);
	server_conn_resume(c);
}

/*
 * Hand the backend work of this call to a worker; the connection waits for
 * it. With bind (a binding is charged already), the new buffer is also bound
 * for that device.
 */
static void call_submit(struct call *call, enum job_kind kind, uint64_t size, const struct alloc_params *a, int memfd,
			const struct physmem_pci_address *bind)
{
	struct conn *c = call->conn;
	struct call_job *cj = calloc(1, sizeof(*cj));

	if (!cj) {
		if (memfd >= 0)
			sink_close(memfd);
		if (bind)
			registry_binding_uncharge(registry_of(c), c->peer.uid);
		reply_backend_error(call, -ENOMEM, NULL);
		return;
	}
	if (bind) {
		cj->job.bind = true;
		cj->job.bind_device = *bind;
		cj->job.bind_access = a->device_access;
	}
	cj->call = (struct call) { .conn = c, .oneway = call->oneway };
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
	if (a->pool)
		snprintf(cj->job.pool, sizeof(cj->job.pool), "%s", a->pool);
	cj->job.memfd = memfd;
	cj->job.offset = (uint64_t)a->offset;
	cj->job.b.fd = -1;
	cj->job.start = kind == JOB_BIND ? bind_start : call_start;
	cj->job.admit = kind == JOB_ALLOCATE ? call_admit : NULL;
	cj->job.done = call_done;
	c->busy = true;
	worker_submit(c->server->registry->workers, &cj->job);
}

#define DEVICE_FIELDS \
	{ .name = "device", .type = VL_FIELD_STRING, .offset = offsetof(struct alloc_params, device), \
	  .flags = VL_FIELD_NULLABLE }, \
	{ .name = "deviceAccess", .type = VL_FIELD_ENUM, .offset = offsetof(struct alloc_params, device_access), \
	  .flags = VL_FIELD_NULLABLE, .enum_values = physmem_device_access_names }

#define SHARING_FIELDS \
	{ .name = "name", .type = VL_FIELD_STRING, .offset = offsetof(struct alloc_params, name), \
	  .flags = VL_FIELD_NULLABLE }, \
	{ .name = "allowUids", .type = VL_FIELD_INT_ARRAY, .offset = offsetof(struct alloc_params, allow_uids), \
	  .flags = VL_FIELD_NULLABLE }, \
	{ .name = "allowGids", .type = VL_FIELD_INT_ARRAY, .offset = offsetof(struct alloc_params, allow_gids), \
	  .flags = VL_FIELD_NULLABLE }

static void method_allocate(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = {
		{ .name = "size", .type = VL_FIELD_INT, .offset = offsetof(struct alloc_params, size),
		  .flags = VL_FIELD_REQUIRED },
		{ .name = "contiguous", .type = VL_FIELD_BOOL, .offset = offsetof(struct alloc_params, contiguous),
		  .flags = VL_FIELD_NULLABLE },
		{ .name = "cache", .type = VL_FIELD_ENUM, .offset = offsetof(struct alloc_params, cache),
		  .flags = VL_FIELD_NULLABLE, .enum_values = physmem_cache_mode_names },
		SHARING_FIELDS,
		DEVICE_FIELDS,
		{ .name = "pool", .type = VL_FIELD_STRING, .offset = offsetof(struct alloc_params, pool),
		  .flags = VL_FIELD_NULLABLE },
		{},
	};
	struct conn *c = call->conn;
	struct alloc_params a = { .cache = PHYSMEM_CACHE_MODE_CACHED };
	struct physmem_pci_address dev;
	const char *bad;
	uint64_t size;

	if (vl_dispatch(params, fields, &a, 0, &bad) < 0) {
		reply_invalid(call, bad);
		return;
	}
	if (a.pool) {
		/* Pool names are the module's: 1-15 characters of a buffer name. */
		if (!physmem_name_valid(a.pool) || strlen(a.pool) > PHYSMEM_POOL_NAME_MAX) {
			reply_invalid(call, "pool");
			return;
		}
		if (!policy_may_use_pools(conf_of(c), &c->peer)) {
			log_client_notice("uid %u may not allocate from pool '%s'", (unsigned)c->peer.uid, a.pool);
			reply_permission_denied(call, "pool-users does not name this user or group");
			return;
		}
		if (!registry_of(c)->backend->allocate_pool) {
			reply_backend_error(call, -EOPNOTSUPP, "contiguous pools");
			return;
		}
		a.contiguous = true;
	}
	size = checked_size(call, a.size);
	if (!size || !check_sharing(call, &a, NULL))
		return;
	if (a.device && !bind_prepare(call, a.device, &dev))
		return;
	/* The quota is checked when a worker is ready for it: see call_start(). */
	call_submit(call, JOB_ALLOCATE, size, &a, -1, a.device ? &dev : NULL);
}

static void method_pin(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = {
		{ .name = "memfdFileDescriptor", .type = VL_FIELD_FD_INDEX,
		  .offset = offsetof(struct alloc_params, memfd_index), .flags = VL_FIELD_REQUIRED },
		{ .name = "offset", .type = VL_FIELD_INT, .offset = offsetof(struct alloc_params, offset),
		  .flags = VL_FIELD_NULLABLE },
		{ .name = "size", .type = VL_FIELD_INT, .offset = offsetof(struct alloc_params, size),
		  .flags = VL_FIELD_NULLABLE },
		SHARING_FIELDS,
		DEVICE_FIELDS,
		{},
	};
	struct conn *c = call->conn;
	struct alloc_params a = { .cache = PHYSMEM_CACHE_MODE_CACHED, .size = -1 };
	struct physmem_pci_address dev;
	struct registry *r = registry_of(c);
	const char *bad;
	struct stat st;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t size;
	int memfd, seals;

	if (vl_dispatch(params, fields, &a, call->fds->n, &bad) < 0) {
		reply_invalid(call, bad);
		return;
	}
	if (!r->backend->pin) {
		reply_backend_error(call, -EOPNOTSUPP, "pinning memfds");
		return;
	}
	memfd = call->fds->fds[a.memfd_index];
	/*
	 * F_GET_SEALS first: it answers at once for any file and fails for
	 * everything but shmem, whereas fstat() of a file on a FUSE mount the
	 * client serves could block this whole daemon.
	 */
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(memfd, &st) < 0 || !S_ISREG(st.st_mode)) {
		reply_invalid(call, "memfdFileDescriptor");
		return;
	}
	if (a.offset < 0 || (uint64_t)a.offset % page || (uint64_t)a.offset > (uint64_t)st.st_size) {
		reply_invalid(call, "offset");
		return;
	}
	if (a.size == -1)
		a.size = st.st_size - a.offset;
	size = checked_size(call, a.size);
	if (!size)
		return;
	if ((uint64_t)a.size % page || size > (uint64_t)st.st_size - (uint64_t)a.offset) {
		reply_invalid(call, "size");
		return;
	}
	if (!check_sharing(call, &a, NULL))
		return;
	if (a.device && !bind_prepare(call, a.device, &dev))
		return;
	/* The memfd travels with the job and comes back to call_done(), which disposes of it. */
	call_submit(call, JOB_PIN, size, &a, vl_fds_take(call->fds, (unsigned)a.memfd_index), a.device ? &dev : NULL);
}

/* Look a buffer up by id as the caller sees it; replies NoSuchBuffer if hidden. */
static struct buffer *visible_buffer(struct call *call, int64_t id)
{
	struct conn *c = call->conn;
	struct buffer *b = id > 0 ? registry_find(registry_of(c), (uint64_t)id) : NULL;

	if (!b || !policy_may_describe(&c->peer, b)) {
		reply_no_such_buffer(call, id, NULL);
		return NULL;
	}
	return b;
}

static void method_share(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = {
		{ .name = "id", .type = VL_FIELD_INT, .offset = offsetof(struct alloc_params, id),
		  .flags = VL_FIELD_REQUIRED },
		SHARING_FIELDS,
		{},
	};
	struct conn *c = call->conn;
	struct alloc_params a = { 0 };
	struct buffer *b;
	const char *bad;

	if (vl_dispatch(params, fields, &a, 0, &bad) < 0) {
		reply_invalid(call, bad);
		return;
	}
	if (!a.name) {
		reply_invalid(call, "name");
		return;
	}
	b = visible_buffer(call, a.id);
	if (!b)
		return;
	if (!policy_may_free(&c->peer, b)) {
		reply_permission_denied(call, "only the owner may share a buffer");
		return;
	}
	if (!check_sharing(call, &a, b))
		return;
	if (apply_sharing(registry_of(c), b, &a) < 0) {
		reply_backend_error(call, -ENOMEM, NULL);
		return;
	}
	fdstore_named(registry_of(c), b);
	reply_buffer(call, b, false);
}

/* AmbiguousName: several owners share name with the caller; list them. */
static void reply_ambiguous_name(struct call *call, const char *name)
{
	struct conn *c = call->conn;
	struct json_object *p = json_object_new_object(), *owners = json_object_new_array();
	struct buffer *b = NULL;

	while ((b = registry_next_name(registry_of(c), b, name)))
		if (policy_may_import(&c->peer, b))
			vl_append(owners, json_object_new_int64(b->owner_uid));
	vl_add(p, "name", json_object_new_string(name));
	vl_add(p, "owners", owners);
	reply_error(call, PHYSMEM_ERROR_AMBIGUOUS_NAME, p);
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
static void method_import(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = {
		{ .name = "name", .type = VL_FIELD_STRING, .offset = offsetof(struct import_params, name),
		  .flags = VL_FIELD_REQUIRED },
		{ .name = "owner", .type = VL_FIELD_INT, .offset = offsetof(struct import_params, owner),
		  .flags = VL_FIELD_NULLABLE },
		{},
	};
	struct conn *c = call->conn;
	struct import_params a = { .owner = OWNER_ANY };
	struct buffer *b = NULL, *found = NULL, *denied = NULL;
	const char *bad;

	if (vl_dispatch(params, fields, &a, 0, &bad) < 0) {
		reply_invalid(call, bad);
		return;
	}
	if (!physmem_name_valid(a.name)) {
		reply_invalid(call, "name");
		return;
	}
	if (a.owner != OWNER_ANY && (a.owner < 0 || a.owner >= UINT32_MAX)) {
		reply_invalid(call, "owner");
		return;
	}
	while ((b = registry_next_name(registry_of(c), b, a.name))) {
		if (a.owner != OWNER_ANY && b->owner_uid != (uid_t)a.owner)
			continue;
		if (!policy_may_import(&c->peer, b)) {
			denied = b;
			continue;
		}
		if (found) {
			reply_ambiguous_name(call, a.name);
			return;
		}
		found = b;
	}
	if (!found && !denied) {
		reply_no_such_buffer(call, 0, a.name);
		return;
	}
	if (!found) {
		log_client_notice("uid %u may not import '%s'", (unsigned)c->peer.uid, a.name);
		reply_permission_denied(call, "the buffer's owner did not allow this user or group");
		return;
	}
	reply_buffer(call, found, true);
}

static void method_free(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = {
		{ .name = "id", .type = VL_FIELD_INT, .offset = 0, .flags = VL_FIELD_REQUIRED },
		{},
	};
	struct conn *c = call->conn;
	int64_t id = 0;
	struct buffer *b;
	const char *bad;

	if (vl_dispatch(params, fields, &id, 0, &bad) < 0) {
		reply_invalid(call, bad);
		return;
	}
	b = visible_buffer(call, id);
	if (!b)
		return;
	if (!policy_may_free(&c->peer, b)) {
		reply_permission_denied(call, "only the owner may free a buffer");
		return;
	}
	registry_free(registry_of(c), b);
	reply(call, NULL);
	server_notify_status(c->server);
}

static void method_describe(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = {
		{ .name = "id", .type = VL_FIELD_INT, .offset = 0, .flags = VL_FIELD_REQUIRED },
		{},
	};
	int64_t id = 0;
	struct buffer *b;
	const char *bad;

	if (vl_dispatch(params, fields, &id, 0, &bad) < 0) {
		reply_invalid(call, bad);
		return;
	}
	b = visible_buffer(call, id);
	if (!b)
		return;
	reply_buffer(call, b, false);
}

struct bind_params {
	int64_t id;
	const char *device;
	int access;
};

/* A buffer's binding to the device at a, or NULL. */
static struct backend_binding *buffer_binding(struct buffer *b, const struct physmem_pci_address *a)
{
	for (unsigned i = 0; i < b->b.n_bindings; i++) {
		struct backend_binding *bb = &b->b.bindings[i];

		if (physmem_pci_address_equal(&bb->device, a))
			return bb;
	}
	return NULL;
}

/*
 * What Bind and Unbind start with: their parameters into a (fields), the
 * device parsed into ret_dev and spelled canonically into ret_name, and the
 * buffer as the caller sees it. NULL when it replied with an error.
 */
static struct buffer *bind_call_buffer(struct call *call, struct json_object *params, const struct vl_field *fields,
				       struct bind_params *a, struct physmem_pci_address *ret_dev,
				       char ret_name[static PHYSMEM_PCI_ADDRESS_MAX + 1])
{
	const char *bad;

	if (vl_dispatch(params, fields, a, 0, &bad) < 0) {
		reply_invalid(call, bad);
		return NULL;
	}
	if (physmem_pci_address_parse(a->device, ret_dev) < 0) {
		reply_invalid(call, "device");
		return NULL;
	}
	physmem_pci_address_format(ret_dev, ret_name, PHYSMEM_PCI_ADDRESS_MAX + 1);
	return visible_buffer(call, a->id);
}

/*
 * Bind a buffer the caller owns or may import for a PCI device its policy
 * names. The mapping is made on a worker (a large buffer takes a while).
 */
static void method_bind(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = {
		{ .name = "id", .type = VL_FIELD_INT, .offset = offsetof(struct bind_params, id),
		  .flags = VL_FIELD_REQUIRED },
		{ .name = "device", .type = VL_FIELD_STRING, .offset = offsetof(struct bind_params, device),
		  .flags = VL_FIELD_REQUIRED },
		{ .name = "deviceAccess", .type = VL_FIELD_ENUM, .offset = offsetof(struct bind_params, access),
		  .flags = VL_FIELD_NULLABLE, .enum_values = physmem_device_access_names },
		{},
	};
	struct bind_params a = { .access = PHYSMEM_DEVICE_ACCESS_BIDIRECTIONAL };
	struct alloc_params ap = { 0 };
	struct physmem_pci_address dev;
	char name[PHYSMEM_PCI_ADDRESS_MAX + 1];
	struct buffer *b;
	int fd;

	b = bind_call_buffer(call, params, fields, &a, &dev, name);
	if (!b)
		return;
	if (buffer_binding(b, &dev)) {
		reply_device_busy(call, name, "bound");
		return;
	}
	if (b->b.n_bindings >= BUFFER_MAX_BINDINGS) {
		reply_device_busy(call, name, "limit");
		return;
	}
	if (!bind_prepare(call, a.device, &dev))
		return;
	/* The worker binds through its own fd: the buffer may be freed meanwhile. */
	fd = fcntl(b->b.fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		registry_binding_uncharge(registry_of(call->conn), call->conn->peer.uid);
		reply_backend_error(call, -errno, "device binding");
		return;
	}
	ap.id = (int64_t)b->id;
	ap.device_access = a.access;
	call_submit(call, JOB_BIND, b->b.size, &ap, fd, &dev);
}

/* Remove a binding: its maker or the buffer's owner (or root) may. */
static void method_unbind(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = {
		{ .name = "id", .type = VL_FIELD_INT, .offset = offsetof(struct bind_params, id),
		  .flags = VL_FIELD_REQUIRED },
		{ .name = "device", .type = VL_FIELD_STRING, .offset = offsetof(struct bind_params, device),
		  .flags = VL_FIELD_REQUIRED },
		{},
	};
	struct conn *c = call->conn;
	struct registry *r = registry_of(c);
	struct bind_params a = { 0 };
	struct physmem_pci_address dev;
	char name[PHYSMEM_PCI_ADDRESS_MAX + 1];
	struct backend_binding *bb;
	struct buffer *b;
	uid_t uid;
	int ret;

	b = bind_call_buffer(call, params, fields, &a, &dev, name);
	if (!b)
		return;
	bb = buffer_binding(b, &dev);
	if (!bb) {
		reply_no_such_device(call, name);
		return;
	}
	if (bb->uid != c->peer.uid && !policy_may_free(&c->peer, b)) {
		reply_permission_denied(call, "only the user that bound it or the buffer's owner may unbind");
		return;
	}
	/* One unmap and an IOTLB flush: quick. A revoked binding is gone already (-ENOENT). */
	ret = r->backend->unbind ? r->backend->unbind(r->backend_state, b->b.fd, bb->id) : 0;
	if (ret < 0 && ret != -ENOENT)
		log_warning("buffer %llu: unbinding %s failed: %s", (unsigned long long)b->id, name, strerror(-ret));
	uid = bb->uid;
	free(bb->segments);
	*bb = b->b.bindings[--b->b.n_bindings];
	if (b->b.n_bindings == 0)
		backend_bindings_free(&b->b);
	registry_binding_uncharge(r, uid);
	log_client_info("buffer %llu: unbound from %s by uid %u", (unsigned long long)b->id, name,
			(unsigned)c->peer.uid);
	reply(call, NULL);
}

static void method_list(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = {
		{ .name = "all", .type = VL_FIELD_BOOL, .offset = 0, .flags = VL_FIELD_NULLABLE },
		{},
	};
	struct conn *c = call->conn;
	struct vl_writer w;
	bool all = false;
	struct buffer *b;
	const char *bad;

	if (vl_dispatch(params, fields, &all, 0, &bad) < 0) {
		reply_invalid(call, bad);
		return;
	}
	if (all && c->peer.uid != 0) {
		reply_permission_denied(call, "only root may list every buffer");
		return;
	}
	if (call->oneway)
		return;
	written_reply_begin(&w, "buffers");
	vl_writer_array_begin(&w);
	if (all) {
		TAILQ_FOREACH(b, &registry_of(c)->buffers, entry)
			write_buffer(&w, c, b);
	} else {
		/* The caller's own, without a walk over everyone else's. */
		struct usage *u = registry_usage(registry_of(c), c->peer.uid, false);

		if (u)
			TAILQ_FOREACH(b, &u->owned, uid_entry)
				write_buffer(&w, c, b);
	}
	vl_writer_array_end(&w);
	written_reply_send(call, &w, NULL, 0);
}

/* Status's device list: the devices the caller may bind. */
struct bindable_list {
	struct conn *conn;
	struct json_object *array;
};

/* At most this many devices in Status (a bound on the reply). */
#define STATUS_MAX_DEVICES 256

static bool bindable_add(const struct pci_device *d, void *userdata)
{
	struct bindable_list *l = userdata;
	struct conn *c = l->conn;
	struct json_object *o;
	char name[PHYSMEM_PCI_ADDRESS_MAX + 1];
	const char *why;
	int t;

	if (!policy_may_bind(conf_of(c), &c->peer, &d->address, d->vendor, d->product))
		return true;
	physmem_pci_address_format(&d->address, name, sizeof(name));
	why = registry_of(c)->backend->bind ? pci_device_unbindable(d) : "the backend cannot bind devices";
	t = pci_device_translation(d);
	o = json_object_new_object();
	vl_add(o, "device", json_object_new_string(name));
	vl_add(o, "vendor", json_object_new_int(d->vendor));
	vl_add(o, "product", json_object_new_int(d->product));
	if (d->driver[0])
		vl_add(o, "driver", json_object_new_string(d->driver));
	if (d->iommu_group >= 0)
		vl_add(o, "iommuGroup", json_object_new_int(d->iommu_group));
	if (t >= 0)
		vl_add(o, "translation", json_object_new_string(translation_names[t]));
	vl_add(o, "bindable", json_object_new_boolean(!why));
	if (why)
		vl_add(o, "reason", json_object_new_string(why));
	vl_append(l->array, o);
	return l->array && json_object_array_length(l->array) < STATUS_MAX_DEVICES;
}

/* The backend's pools as the interface's []Pool (empty when it cannot tell). */
static struct json_object *pools_json(struct registry *r)
{
	struct json_object *a = json_object_new_array();
	struct backend_pool *pools = NULL;
	unsigned n = 0;

	if (r->backend->pools(r->backend_state, &pools, &n) < 0)
		return a;
	for (unsigned i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();

		vl_add(o, "name", json_object_new_string(pools[i].name));
		vl_add(o, "kind", json_object_new_string(pools[i].kind));
		if (!pools[i].shared) {
			vl_add(o, "size", json_object_new_int64((int64_t)pools[i].size));
			vl_add(o, "free", json_object_new_int64((int64_t)pools[i].free));
			vl_add(o, "largestFree", json_object_new_int64((int64_t)pools[i].largest_free));
		}
		vl_add(o, "buffers", json_object_new_int64((int64_t)pools[i].buffers));
		vl_append(a, o);
	}
	free(pools);
	return a;
}

static void method_status(struct call *call, struct json_object *params)
{
	static const struct vl_field fields[] = { {} };
	struct conn *c = call->conn;
	const struct conf *conf = conf_of(c);
	struct registry *r = registry_of(c);
	struct json_object *p, *q;
	const char *bad;

	if (vl_dispatch(params, fields, NULL, 0, &bad) < 0) {
		reply_invalid(call, bad);
		return;
	}
	registry_reap(r, c->peer.uid);
	q = json_object_new_object();
	vl_add(q, "uid", json_object_new_int64(c->peer.uid));
	vl_add(q, "maxBuffers", json_object_new_int64((int64_t)conf->max_buffers_per_uid));
	vl_add(q, "maxBytes", json_object_new_int64((int64_t)conf->max_bytes_per_uid));
	vl_add(q, "buffers", json_object_new_int64((int64_t)c->usage->buffers));
	vl_add(q, "bytes", json_object_new_int64((int64_t)c->usage->bytes));
	vl_add(q, "heldBytes", json_object_new_int64((int64_t)c->usage->held_bytes));
	vl_add(q, "poolBytes", json_object_new_int64((int64_t)c->usage->pool_bytes));
	vl_add(q, "maxPoolBytes", json_object_new_int64((int64_t)conf->max_pool_bytes_per_uid));

	p = json_object_new_object();
	vl_add(p, "version", json_object_new_string(PHYSMEM_VERSION));
	vl_add(p, "backend", json_object_new_string(r->backend->name));
	vl_add(p, "dmaSafe", json_object_new_boolean(r->backend->dma_safe));
	vl_add(p, "buffers", json_object_new_int64((int64_t)r->n_buffers));
	vl_add(p, "bytes", json_object_new_int64((int64_t)r->bytes));
	vl_add(p, "connections", json_object_new_int64((int64_t)c->server->n_conns));
	vl_add(p, "maxBufferSize", json_object_new_int64((int64_t)conf->max_buffer_size));
	vl_add(p, "maxMessageSize", json_object_new_int64((int64_t)conf->max_message_size));
	vl_add(p, "maxConnections", json_object_new_int64((int64_t)conf->max_connections));
	vl_add(p, "maxConnectionsPerUid",
	       json_object_new_int64((int64_t)conf->max_connections_per_uid));
	vl_add(p, "addressPolicy",
	       json_object_new_string(address_policy_names[conf->address_policy]));
	vl_add(p, "quota", q);
	{
		struct bindable_list l = { .conn = c, .array = json_object_new_array() };

		/* Nothing to list (the common case) without reading sysfs. */
		if (c->peer.uid == 0 || conf->n_bind_rules > 0)
			pci_device_foreach(conf, 4096, bindable_add, &l);
		if (l.array && json_object_array_length(l.array))
			vl_add(p, "bindableDevices", l.array);
		else
			json_object_put(l.array);
	}
	if (r->backend->pools)
		vl_add(p, "pools", pools_json(r));
	reply(call, p);
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
	{ "Bind", method_bind, false },
	{ "Unbind", method_unbind, false },
	{},
};

static const struct interface {
	const char *name;
	const struct method *methods;
} interfaces[] = {
	{ VL_SERVICE_INTERFACE, service_methods },
	{ PHYSMEM_INTERFACE, manager_methods },
};

static const struct method *find_method(struct call *call, const char *full)
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
			vl_add(p, "method", json_object_new_string(full));
			reply_error(call, VL_ERROR_METHOD_NOT_FOUND, p);
			return NULL;
		}
	p = json_object_new_object();
	vl_add(p, "interface", json_object_new_string(iface[0] ? iface : full));
	reply_error(call, VL_ERROR_INTERFACE_NOT_FOUND, p);
	return NULL;
}

void varlink_handle(struct conn *c, struct json_object *msg, struct vl_fds *fds)
{
	struct call call = { .conn = c, .fds = fds };
	const struct method *m;
	struct vl_call parsed;
	const char *bad;

	(void)vl_build_failed();	/* what an earlier, discarded build left */
	/* Until the call says it is oneway, errors are replied to. */
	if (vl_call_parse(msg, &parsed, &bad) < 0) {
		reply_invalid(&call, bad[0] ? bad : "message");
		return;
	}
	if (parsed.upgrade) {
		reply_invalid(&call, "upgrade");
		return;
	}
	/* A oneway call gets no reply, not even an error. */
	call.oneway = parsed.oneway;
	m = find_method(&call, parsed.method);
	if (m && fds->n > 0 && !m->takes_fds) {
		sink_close_fds(fds, c->peer.uid);
		reply_invalid(&call, "fileDescriptors");
		return;
	}
	if (m) {
		log_debug("connection %llu: %s", (unsigned long long)c->id, parsed.method);
		m->handler(&call, parsed.parameters);
	}
}
