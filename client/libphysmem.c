/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libphysmem: the public API of physmem.h on top of proto/'s Varlink framing.
 *
 * Every call is synchronous: queue the call, flush it (polling for POLLOUT),
 * read until one complete reply (the first read waits in recvmsg() itself,
 * later ones poll for POLLIN), all within PHYSMEM_CALL_TIMEOUT_MS. With one
 * call out at a time, the stream reads without peeking (one_at_a_time).
 * After a timeout or any transport error the connection is out of step with
 * the daemon and is marked broken: later calls fail with -ENOTCONN.
 */
#include "libphysmem-private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/dma-buf.h>

#include "physmem-proto.h"
#include "varlink-message.h"
#include "varlink-stream.h"
#include "varlink-writer.h"

#define PHYSMEM_EXPORT __attribute__((visibility("default")))

_Static_assert(sizeof(uid_t) == sizeof(uint32_t) && sizeof(gid_t) == sizeof(uint32_t),
	       "uid_t and gid_t are 32-bit");

struct physmem {
	struct vl_stream stream;
	bool broken;
	bool sent;			/* the last call reached the socket whole */
	bool rcvtimeo;			/* SO_RCVTIMEO is the call timeout: a read may wait */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char error_name[128];		/* "" when the last failure was not a Varlink error */
	char error_message[512];
	struct physmem_buffer *buffers;	/* made through this connection, still open */
};

struct physmem_buffer {
	struct physmem *pm;		/* NULL once the connection is gone */
	struct physmem_buffer *prev, *next;
	int fd;
	void *map;
	struct physmem_info info;
};

static void pm_clear_error(struct physmem *pm)
{
	pm->error_name[0] = '\0';
	pm->error_message[0] = '\0';
}

/* Record a failure that is not a Varlink error; returns r. */
static int pm_fail(struct physmem *pm, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pm_fail(struct physmem *pm, int r, const char *fmt, ...)
{
	va_list ap;

	pm->error_name[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(pm->error_message, sizeof(pm->error_message), fmt, ap);
	va_end(ap);
	return r;
}

/* The connection is no longer in step with the daemon; returns r. */
static int pm_break(struct physmem *pm, int r, const char *what)
{
	pm->broken = true;
	if (r == -ETIMEDOUT)
		return pm_fail(pm, r, "%s: no answer within %d s", what, PHYSMEM_CALL_TIMEOUT_MS / 1000);
	if (r == -ECONNRESET || r == -EPROTO)
		return pm_fail(pm, r, "%s", what);
	return pm_fail(pm, r, "%s: %s", what, strerror(-r));
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until the socket is ready for events, or the deadline passes. */
static int pm_wait(struct physmem *pm, short events, int64_t deadline)
{
	struct pollfd p = { .fd = pm->stream.fd, .events = events };

	for (;;) {
		int64_t left = deadline - now_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 0;	/* POLLHUP/POLLERR: the next read or write tells */
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * A call's text is written straight into a vl_writer: call_begin() opens it
 * and its parameters, the caller writes their members, and pm_call() closes
 * both and sends it.
 */
static void call_begin(struct vl_writer *w, const char *method)
{
	vl_writer_init(w);
	vl_writer_object_begin(w);
	vl_writer_key(w, "method");
	vl_writer_string(w, method);
	vl_writer_key(w, "parameters");
	vl_writer_object_begin(w);
}

/*
 * Send one call (call_begin()'s writer with the parameters written, or NULL
 * for a call without parameters; always released) and wait for its reply.
 * On success *ret_reply is the reply (owned by the caller), *ret_params its
 * parameters (NULL when absent) and *ret_fds the fds that came with it. A
 * Varlink error reply is returned as its errno, with
 * error_name/error_message set and its fds closed.
 */
static int pm_call(struct physmem *pm, const char *method, struct vl_writer *call, const int *fds,
		   unsigned nfds, struct json_object **ret_reply, struct json_object **ret_params,
		   struct vl_fds *ret_fds)
{
	struct json_object *reply = NULL, *v, *p = NULL;
	int64_t deadline = now_ms() + PHYSMEM_CALL_TIMEOUT_MS;
	bool read_wait = pm->rcvtimeo;
	struct vl_writer bare;
	const char *text;
	size_t len;
	int r;

	ret_fds->n = 0;
	pm_clear_error(pm);
	pm->sent = false;
	if (!call) {
		call = &bare;
		call_begin(call, method);
	}
	if (pm->broken) {
		vl_writer_done(call);
		return pm_fail(pm, -ENOTCONN, "connection to %s is unusable after an earlier error", pm->path);
	}

	vl_writer_object_end(call);
	vl_writer_object_end(call);
	r = vl_writer_finish(call, &text, &len);
	/* Sent at once when the socket takes it, its fds without copies; else queued and flushed below. */
	if (r == 0)
		r = vl_stream_send_text(&pm->stream, text, len, fds, nfds);
	vl_writer_done(call);
	if (r < 0)
		return pm_fail(pm, r, "cannot queue %s: %s", method, strerror(-r));

	while ((r = vl_stream_flush(&pm->stream)) == -EAGAIN) {
		read_wait = false;
		r = pm_wait(pm, POLLOUT, deadline);
		if (r < 0)
			return pm_break(pm, r, "sending to the daemon");
	}
	if (r < 0)
		return pm_break(pm, r, "sending to the daemon");
	pm->sent = true;

	for (;; read_wait = false) {
		if (vl_stream_has_partial(&pm->stream)) {
			r = vl_stream_next(&pm->stream, &reply, ret_fds);
			if (r == 1)
				break;
			if (r < 0)
				return pm_break(pm, -EPROTO, "the daemon sent a reply that is not JSON");
		}
		/*
		 * The call's first read waits in recvmsg() itself, for at most
		 * SO_RCVTIMEO: the call's timeout, which began only just now
		 * unless the send had to wait. Any other read (after such a
		 * send, or for a reply in pieces) polls up to the deadline.
		 */
		r = read_wait ? vl_stream_read_wait(&pm->stream) : vl_stream_read(&pm->stream);
		if (r == -EAGAIN || r == -EINTR) {
			r = pm_wait(pm, POLLIN, deadline);
			if (r < 0)
				return pm_break(pm, r, "waiting for the daemon");
			continue;
		}
		if (r == 0)
			return pm_break(pm, -ECONNRESET, "the daemon closed the connection");
		if (r < 0)
			return pm_break(pm, r, "receiving from the daemon");
	}

	/* A reply: an object with optional "parameters" object and optional "error" string. */
	if (!json_object_is_type(reply, json_type_object))
		goto bad;
	if (json_object_object_get_ex(reply, "parameters", &p) && !json_object_is_type(p, json_type_null)) {
		if (!json_object_is_type(p, json_type_object))
			goto bad;
	} else {
		p = NULL;
	}
	if (json_object_object_get_ex(reply, "continues", &v) && json_object_get_boolean(v))
		goto bad;	/* we never ask for more */
	if (json_object_object_get_ex(reply, "error", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_string))
			goto bad;
		physmem_reply_sanitize(pm->error_name, sizeof(pm->error_name), json_object_get_string(v));
		physmem_reply_error_message(json_object_get_string(v), p, pm->error_message,
					    sizeof(pm->error_message));
		r = physmem_reply_error_errno(json_object_get_string(v));
		vl_fds_close(ret_fds);
		json_object_put(reply);
		return r;
	}
	*ret_reply = reply;
	*ret_params = p;
	return 0;

bad:
	vl_fds_close(ret_fds);
	json_object_put(reply);
	return pm_break(pm, -EPROTO, "the daemon sent a malformed reply");
}

/* Record a reply that did not match the interface. */
static int pm_bad_reply(struct physmem *pm, int r, const char *method, const char *field)
{
	if (r == -ENOMEM)
		return pm_fail(pm, r, "out of memory");
	return pm_fail(pm, -EPROTO, "the daemon's reply to %s is invalid (field '%s')", method,
		       field ? field : "?");
}

/* The system socket; a test may point it elsewhere (secure_getenv: never in setuid programs). */
static const char *pm_system_socket(void)
{
	const char *e = secure_getenv("PHYSMEM_TEST_SYSTEM_SOCKET");

	return e && e[0] == '/' ? e : PHYSMEM_SYSTEM_SOCKET;
}

/* What this process's user namespace shows of its own euid and of host root. */
struct pm_uid_view {
	bool self_mapped;	  /* our euid is ours here, not the overflow uid */
	bool root_mapped;	  /* host root has a uid here: root_uid */
	uid_t root_uid;
	bool overflow_may_be_root; /* the overflow uid may stand for host root */
	uid_t overflow;
};

/* Whether uid lies inside the "inside" side of an extent of uid_map. */
static bool pm_uid_map_has(unsigned long start, unsigned long count, unsigned long uid)
{
	return uid >= start && uid - start < count;
}

/*
 * Read /proc/self/uid_map and /proc/sys/kernel/overflowuid. Every uid the
 * map leaves out, host root included, appears here as the overflow uid; so
 * that uid may stand for host root only where root is not mapped and the
 * overflow uid is not itself a mapped user; and an euid outside the map is
 * the overflow uid too, which is nobody's in particular. Without /proc,
 * assume the initial namespace.
 */
static void pm_uid_view_read(struct pm_uid_view *v)
{
	unsigned long inside, outside, count, overflow = 65534;
	unsigned long euid = geteuid();
	bool overflow_mapped = false;
	FILE *f;

	*v = (struct pm_uid_view){ .self_mapped = true, .root_mapped = true, .root_uid = 0 };
	f = fopen("/proc/sys/kernel/overflowuid", "re");
	if (f) {
		if (fscanf(f, "%lu", &overflow) != 1)
			overflow = 65534;
		fclose(f);
	}
	v->overflow = (uid_t)overflow;
	f = fopen("/proc/self/uid_map", "re");
	if (!f)
		return;
	v->self_mapped = v->root_mapped = false;
	while (fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3) {
		if (pm_uid_map_has(inside, count, euid))
			v->self_mapped = true;
		if (pm_uid_map_has(inside, count, overflow))
			overflow_mapped = true;
		if (!v->root_mapped && pm_uid_map_has(outside, count, 0)) {
			v->root_mapped = true;
			v->root_uid = (uid_t)inside;
		}
	}
	fclose(f);
	v->overflow_may_be_root = !v->root_mapped && !overflow_mapped;
}

/*
 * Whether uid is root (of this namespace) or the caller (when the caller's
 * euid is mapped here). With outside_ok, also host root as it appears here:
 * its mapped uid, or the overflow uid where that can only be host root or
 * another unmapped user (never where it is a mapped user).
 */
static bool pm_trusted_uid(uid_t uid, bool outside_ok)
{
	struct pm_uid_view v;

	pm_uid_view_read(&v);
	if (uid == 0 || (v.self_mapped && uid == geteuid()))
		return true;
	if (!outside_ok)
		return false;
	return v.root_mapped ? uid == v.root_uid : v.overflow_may_be_root && uid == v.overflow;
}

/* Whether our euid is a uid of our own here (not the overflow uid of an unmapped caller). */
static bool pm_self_mapped(void)
{
	struct pm_uid_view v;

	pm_uid_view_read(&v);
	return v.self_mapped;
}

/*
 * The socket physmem_connect(NULL, ...) uses, in this order: $PHYSMEM_SOCKET,
 * the system socket if it exists, this user's own socket if it exists, else
 * the system socket. *ret_implicit is false for $PHYSMEM_SOCKET, which the
 * caller chose as much as a path argument.
 */
static int pm_socket_default(char *buf, size_t size, bool *ret_implicit)
{
	const char *env = secure_getenv("PHYSMEM_SOCKET");
	struct stat st;
	int n;

	*ret_implicit = !(env && env[0]);
	if (env && env[0])
		n = snprintf(buf, size, "%s", env);
	else if (lstat(pm_system_socket(), &st) == 0)
		n = snprintf(buf, size, "%s", pm_system_socket());
	else if (physmem_user_socket_path(buf, size) == 0 && lstat(buf, &st) == 0)
		return 0;
	else	/* nothing there: say so about the system socket */
		n = snprintf(buf, size, "%s", pm_system_socket());
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * May we trust the socket at an implicitly chosen path? Nobody but root and
 * the caller may have made it or be able to replace it: the socket and its
 * directory must be owned by one of them, neither may be a symlink, and the
 * directory must be writable by its owner only. Who may connect (the
 * socket's own mode) does not matter here. Only the system socket may belong
 * to host root seen from a user namespace (outside_ok). Fills err on refusal.
 */
static int pm_socket_check(const char *path, bool outside_ok, char *err, size_t errsize)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	struct stat st;
	int r;

	if (!slash || slash == path)
		snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);

	if (lstat(dir, &st) < 0) {
		r = -errno;
		snprintf(err, errsize, "daemon not reachable at %s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode))
		goto refuse_dir_type;
	if (!outside_ok && !pm_self_mapped()) {
		snprintf(err, errsize, "refusing socket %s: your uid is not mapped in this user namespace, "
			 "so a socket of yours cannot be told from anyone else's", path);
		return -EPERM;
	}
	if (!pm_trusted_uid(st.st_uid, outside_ok)) {
		snprintf(err, errsize, "refusing socket %s: its directory is owned by uid %u, not by root or you",
			 path, (unsigned)st.st_uid);
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errsize, "refusing socket %s: its directory is writable by others (mode %04o)", path,
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	if (lstat(path, &st) < 0) {
		r = -errno;
		snprintf(err, errsize, "daemon not reachable at %s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errsize, "refusing socket %s: it is not a socket%s", path,
			 S_ISLNK(st.st_mode) ? " but a symlink" : "");
		return -EPERM;
	}
	if (!pm_trusted_uid(st.st_uid, outside_ok)) {
		snprintf(err, errsize, "refusing socket %s: it is owned by uid %u, not by root or you", path,
			 (unsigned)st.st_uid);
		return -EPERM;
	}
	return 0;

refuse_dir_type:
	snprintf(err, errsize, "refusing socket %s: %s is not a directory%s", path, dir,
		 S_ISLNK(st.st_mode) ? " but a symlink" : "");
	return -EPERM;
}

int physmem_connect_explained(const char *path, struct physmem **ret, char *err, size_t errsize)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = PHYSMEM_CALL_TIMEOUT_MS / 1000,
			      .tv_usec = PHYSMEM_CALL_TIMEOUT_MS % 1000 * 1000 };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct physmem *pm;
	bool implicit = false, rcvtimeo;
	int fd, r;

	err[0] = '\0';
	if (!ret)
		return -EINVAL;
	if (path) {
		if (strlen(path) >= sizeof(sa.sun_path)) {
			snprintf(err, errsize, "socket path too long");
			return -ENAMETOOLONG;
		}
		strcpy(sa.sun_path, path);
	} else {
		r = pm_socket_default(sa.sun_path, sizeof(sa.sun_path), &implicit);
		if (r < 0) {
			snprintf(err, errsize, "socket path too long");
			return r;
		}
	}
	if (implicit) {
		r = pm_socket_check(sa.sun_path, strcmp(sa.sun_path, pm_system_socket()) == 0, err, errsize);
		if (r < 0)
			return r;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errsize, "cannot make a socket: %s", strerror(-r));
		return r;
	}
	/*
	 * A daemon whose backlog is full must not block us forever; nor one
	 * that does not answer: without SO_RCVTIMEO no read waits (pm_call).
	 */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	rcvtimeo = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0;
	while ((r = connect(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 && errno == EINTR)
		;
	if (r < 0) {
		r = errno == EAGAIN ? -ETIMEDOUT : -errno;
		snprintf(err, errsize, "daemon not reachable at %s: %s", sa.sun_path, strerror(-r));
		close(fd);
		return r;
	}
	/*
	 * Whatever the path, only root or the caller may serve it: nothing is
	 * sent to anyone else.  The overflow uid may stand for host root only
	 * behind an explicit path or the system socket: the per-user socket is
	 * the caller's own, and a path component swapped between the checks
	 * above and connect() must not bring in another user's daemon.
	 */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		r = -errno;
		snprintf(err, errsize, "cannot learn who serves %s: %s", sa.sun_path, strerror(-r));
		close(fd);
		return r;
	}
	if (!pm_trusted_uid(cred.uid, !implicit || strcmp(sa.sun_path, pm_system_socket()) == 0)) {
		snprintf(err, errsize, "socket %s is served by uid %u, not by root or you", sa.sun_path,
			 (unsigned)cred.uid);
		close(fd);
		return -EPERM;
	}

	pm = calloc(1, sizeof(*pm));
	if (!pm) {
		close(fd);
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	memcpy(pm->path, sa.sun_path, sizeof(pm->path));
	vl_stream_init(&pm->stream, fd, PHYSMEM_MAX_REPLY);
	/* One call out at a time, and the daemon speaks only to answer it. */
	pm->stream.one_at_a_time = true;
	pm->rcvtimeo = rcvtimeo;
	*ret = pm;
	return 0;
}

PHYSMEM_EXPORT int physmem_connect(const char *path, struct physmem **ret)
{
	char err[256];

	return physmem_connect_explained(path, ret, err, sizeof(err));
}

static void buffer_unlink(struct physmem_buffer *buf)
{
	if (buf->pm) {
		if (buf->prev)
			buf->prev->next = buf->next;
		else
			buf->pm->buffers = buf->next;
		if (buf->next)
			buf->next->prev = buf->prev;
	}
	buf->pm = NULL;
	buf->prev = buf->next = NULL;
}

PHYSMEM_EXPORT void physmem_disconnect(struct physmem *pm)
{
	if (!pm)
		return;
	while (pm->buffers)
		buffer_unlink(pm->buffers);
	vl_stream_done(&pm->stream);
	if (pm->stream.fd >= 0)
		close(pm->stream.fd);
	free(pm);
}

PHYSMEM_EXPORT int physmem_fd(const struct physmem *pm)
{
	return pm ? pm->stream.fd : -EBADF;
}

PHYSMEM_EXPORT const char *physmem_error_name(const struct physmem *pm)
{
	return pm && pm->error_name[0] ? pm->error_name : NULL;
}

PHYSMEM_EXPORT const char *physmem_error_message(const struct physmem *pm)
{
	if (!pm)
		return "no connection";
	return pm->error_message[0] ? pm->error_message : "no error";
}

/* Turn a reply carrying (buffer, bufferFileDescriptor) into a buffer object. */
static int pm_take_buffer(struct physmem *pm, const char *method, struct json_object *params,
			  struct vl_fds *fds, struct physmem_buffer **ret)
{
	struct physmem_buffer *buf;
	const char *field = NULL;
	int64_t index;
	int fd, r;

	buf = calloc(1, sizeof(*buf));
	if (!buf)
		return pm_fail(pm, -ENOMEM, "out of memory");
	r = physmem_reply_buffer_params(params, &buf->info, &index, &field);
	if (r < 0) {
		free(buf);
		return pm_bad_reply(pm, r, method, field);
	}
	if (index < 0 || index >= (int64_t)fds->n) {
		physmem_info_done(&buf->info);
		free(buf);
		return pm_fail(pm, -EPROTO, "the daemon's reply to %s names fd %lld but carries %u fds",
			       method, (long long)index, fds->n);
	}
	fd = vl_fds_take(fds, (unsigned)index);
	if (fd < 0) {
		physmem_info_done(&buf->info);
		free(buf);
		return pm_fail(pm, -EPROTO, "the daemon's reply to %s has no fd at index %lld", method,
			       (long long)index);
	}
	buf->fd = fd;
	buf->pm = pm;
	buf->next = pm->buffers;
	if (pm->buffers)
		pm->buffers->prev = buf;
	pm->buffers = buf;
	*ret = buf;
	return 0;
}

static int pm_call_id(struct physmem *pm, const char *method, uint64_t id, struct json_object **ret_reply,
		      struct json_object **ret_params);

/*
 * A buffer the daemon made for this call (Allocate, Pin) that could not be
 * taken for want of memory: ask the daemon to free it, so that it is not
 * left charged to the caller, unseen, for the connection's life (or, named,
 * until freed by id). Best effort; the message says whether it went back.
 * Returns r.
 */
static int pm_give_back(struct physmem *pm, struct json_object *params, int r)
{
	struct json_object *b, *v, *reply;
	uint64_t id;

	if (!json_object_object_get_ex(params, "buffer", &b) || !json_object_object_get_ex(b, "id", &v) ||
	    !json_object_is_type(v, json_type_int))
		return r;
	/* The id as the library reads ids (VL_FIELD_U64); json-c gives 0 for a negative one. */
	id = json_object_get_uint64(v);
	if (id == 0)
		return r;
	if (pm_call_id(pm, PHYSMEM_INTERFACE ".Free", id, &reply, &v) == 0) {
		json_object_put(reply);
		return pm_fail(pm, r, "out of memory taking buffer %llu; it was given back", (unsigned long long)id);
	}
	return pm_fail(pm, r, "out of memory taking buffer %llu, which may not have been given back: "
		       "List shows it", (unsigned long long)id);
}

/* Call a method that answers with a new buffer and its fd; created: one made for this call. */
static int pm_call_buffer(struct physmem *pm, const char *method, struct vl_writer *params, const int *fds,
			  unsigned nfds, bool created, struct physmem_buffer **ret)
{
	struct json_object *reply, *p;
	struct vl_fds rfds;
	int r;

	r = pm_call(pm, method, params, fds, nfds, &reply, &p, &rfds);
	/*
	 * The call went out but its reply was lost (the connection is
	 * unusable): the daemon may have made the buffer all the same. An
	 * unnamed one goes when the connection is closed; a named one stays,
	 * and only List can tell.
	 */
	if (r < 0 && created && pm->broken && pm->sent) {
		char what[sizeof(pm->error_message)];

		snprintf(what, sizeof(what), "%s", pm->error_message);
		return pm_fail(pm, r, "%s; the daemon may have made the buffer all the same (unnamed: until "
			       "this connection is closed; named: List shows it)", what);
	}
	if (r < 0)
		return r;
	r = pm_take_buffer(pm, method, p, &rfds, ret);
	vl_fds_close(&rfds);	/* any fd the reply does not name */
	if (r == -ENOMEM && created)
		r = pm_give_back(pm, p, r);
	json_object_put(reply);
	return r;
}

/* Call a method whose reply carries no fds; *ret_reply owns *ret_params. */
static int pm_call_simple(struct physmem *pm, const char *method, struct vl_writer *params,
			  struct json_object **ret_reply, struct json_object **ret_params)
{
	struct vl_fds rfds;
	int r;

	r = pm_call(pm, method, params, NULL, 0, ret_reply, ret_params, &rfds);
	if (r == 0)
		vl_fds_close(&rfds);
	return r;
}

/* A string member of a call's parameters, when value is not NULL. */
static void write_string(struct vl_writer *w, const char *key, const char *value)
{
	if (!value)
		return;
	vl_writer_key(w, key);
	vl_writer_string(w, value);
}

static void write_ids(struct vl_writer *w, const char *key, const uint32_t *ids, unsigned n)
{
	vl_writer_key(w, key);
	vl_writer_array_begin(w);
	for (unsigned i = 0; i < n; i++)
		vl_writer_int(w, ids[i]);
	vl_writer_array_end(w);
}

static const char *cache_name(enum physmem_cache cache)
{
	switch (cache) {
	case PHYSMEM_CACHE_CACHED:
		return physmem_cache_mode_names[PHYSMEM_CACHE_MODE_CACHED];
	case PHYSMEM_CACHE_WRITECOMBINE:
		return physmem_cache_mode_names[PHYSMEM_CACHE_MODE_WRITECOMBINE];
	case PHYSMEM_CACHE_UNCACHED:
		return physmem_cache_mode_names[PHYSMEM_CACHE_MODE_UNCACHED];
	}
	return NULL;
}

/* Write name and the allow lists into a call's parameters. */
static void write_sharing(struct vl_writer *w, const char *name, const uid_t *uids, unsigned n_uids,
			  const gid_t *gids, unsigned n_gids)
{
	write_string(w, "name", name);
	if (n_uids > 0)
		write_ids(w, "allowUids", (const uint32_t *)uids, n_uids);
	if (n_gids > 0)
		write_ids(w, "allowGids", (const uint32_t *)gids, n_gids);
}

static int check_sharing(struct physmem *pm, const uid_t *uids, unsigned n_uids, const gid_t *gids,
			 unsigned n_gids)
{
	if ((n_uids > 0 && !uids) || (n_gids > 0 && !gids))
		return pm_fail(pm, -EINVAL, "invalid argument: allow list is NULL");
	if (n_uids > 64 || n_gids > 64)
		return pm_fail(pm, -E2BIG, "invalid argument: more than 64 users or groups");
	return 0;
}

/* The interface's name of a device access, or NULL for an unknown value. */
static const char *access_name(enum physmem_device_access access)
{
	switch (access) {
	case PHYSMEM_ACCESS_BIDIRECTIONAL:
		return physmem_device_access_names[PHYSMEM_DEVICE_ACCESS_BIDIRECTIONAL];
	case PHYSMEM_ACCESS_TO_DEVICE:
		return physmem_device_access_names[PHYSMEM_DEVICE_ACCESS_TO_DEVICE];
	case PHYSMEM_ACCESS_FROM_DEVICE:
		return physmem_device_access_names[PHYSMEM_DEVICE_ACCESS_FROM_DEVICE];
	}
	return NULL;
}

/*
 * Allocate, shared or not, from the contiguous pool named pool (NULL: not
 * from a pool), and bound to device (NULL: not bound).
 */
static int pm_alloc(struct physmem *pm, uint64_t size, unsigned flags, enum physmem_cache cache, const char *name,
		    const uid_t *uids, unsigned n_uids, const gid_t *gids, unsigned n_gids, const char *pool,
		    const char *device, enum physmem_device_access access, struct physmem_buffer **ret)
{
	struct vl_writer w;
	int r;

	if (!pm || !ret)
		return -EINVAL;
	pm_clear_error(pm);
	if (flags & ~PHYSMEM_CONTIGUOUS)
		return pm_fail(pm, -EINVAL, "invalid argument: unknown flags 0x%x", flags & ~PHYSMEM_CONTIGUOUS);
	if (!cache_name(cache))
		return pm_fail(pm, -EINVAL, "invalid argument: unknown cache mode %d", (int)cache);
	if (size > INT64_MAX)
		return pm_fail(pm, -ERANGE, "size out of range: %llu", (unsigned long long)size);
	r = check_sharing(pm, uids, n_uids, gids, n_gids);
	if (r < 0)
		return r;

	call_begin(&w, PHYSMEM_INTERFACE ".Allocate");
	vl_writer_key(&w, "size");
	vl_writer_int(&w, (int64_t)size);
	if (flags & PHYSMEM_CONTIGUOUS) {
		vl_writer_key(&w, "contiguous");
		vl_writer_bool(&w, true);
	}
	write_string(&w, "cache", cache_name(cache));
	write_sharing(&w, name, uids, n_uids, gids, n_gids);
	write_string(&w, "pool", pool);
	write_string(&w, "device", device);
	write_string(&w, "deviceAccess", device ? access_name(access) : NULL);
	return pm_call_buffer(pm, PHYSMEM_INTERFACE ".Allocate", &w, NULL, 0, true, ret);
}

PHYSMEM_EXPORT int physmem_alloc_shared(struct physmem *pm, uint64_t size, unsigned flags,
					enum physmem_cache cache, const char *name, const uid_t *uids,
					unsigned n_uids, const gid_t *gids, unsigned n_gids,
					struct physmem_buffer **ret)
{
	return pm_alloc(pm, size, flags, cache, name, uids, n_uids, gids, n_gids, NULL, NULL,
			PHYSMEM_ACCESS_BIDIRECTIONAL, ret);
}

PHYSMEM_EXPORT int physmem_alloc_pool(struct physmem *pm, uint64_t size, const char *pool, enum physmem_cache cache,
				      const char *name, struct physmem_buffer **ret)
{
	if (!pm || !ret)
		return -EINVAL;
	pm_clear_error(pm);
	if (!pool || !pool[0])
		return pm_fail(pm, -EINVAL, "invalid argument: no pool name");
	return pm_alloc(pm, size, PHYSMEM_CONTIGUOUS, cache, name, NULL, 0, NULL, 0, pool, NULL,
			PHYSMEM_ACCESS_BIDIRECTIONAL, ret);
}

PHYSMEM_EXPORT int physmem_alloc_pool_bound(struct physmem *pm, uint64_t size, const char *pool,
					    enum physmem_cache cache, const char *name, const char *device,
					    enum physmem_device_access access, struct physmem_buffer **ret)
{
	if (!pm || !ret || !device)
		return -EINVAL;
	pm_clear_error(pm);
	if (!pool || !pool[0])
		return pm_fail(pm, -EINVAL, "invalid argument: no pool name");
	if (!access_name(access))
		return pm_fail(pm, -EINVAL, "invalid argument: unknown device access %d", (int)access);
	return pm_alloc(pm, size, PHYSMEM_CONTIGUOUS, cache, name, NULL, 0, NULL, 0, pool, device, access, ret);
}
PHYSMEM_EXPORT int physmem_alloc(struct physmem *pm, uint64_t size, unsigned flags, enum physmem_cache cache,
				 const char *name, struct physmem_buffer **ret)
{
	return physmem_alloc_shared(pm, size, flags, cache, name, NULL, 0, NULL, 0, ret);
}

PHYSMEM_EXPORT int physmem_alloc_bound(struct physmem *pm, uint64_t size, unsigned flags, enum physmem_cache cache,
				       const char *name, const char *device, enum physmem_device_access access,
				       struct physmem_buffer **ret)
{
	if (!pm || !ret || !device)
		return -EINVAL;
	pm_clear_error(pm);
	if (!access_name(access))
		return pm_fail(pm, -EINVAL, "invalid argument: unknown device access %d", (int)access);
	return pm_alloc(pm, size, flags, cache, name, NULL, 0, NULL, 0, NULL, device, access, ret);
}

/*
 * Call a method with the parameters id and, where not NULL, device and
 * deviceAccess. An id the interface cannot carry is no such buffer.
 */
static int pm_call_id_device(struct physmem *pm, const char *method, uint64_t id, const char *device,
			     const char *access, struct json_object **ret_reply, struct json_object **ret_params)
{
	struct vl_writer w;

	pm_clear_error(pm);
	if (id > INT64_MAX)
		return pm_fail(pm, -ENOENT, "no such buffer: id %llu", (unsigned long long)id);
	call_begin(&w, method);
	vl_writer_key(&w, "id");
	vl_writer_int(&w, (int64_t)id);
	write_string(&w, "device", device);
	write_string(&w, "deviceAccess", access);
	return pm_call_simple(pm, method, &w, ret_reply, ret_params);
}

/* Call a method whose only parameter is a buffer id. */
static int pm_call_id(struct physmem *pm, const char *method, uint64_t id, struct json_object **ret_reply,
		      struct json_object **ret_params)
{
	return pm_call_id_device(pm, method, id, NULL, NULL, ret_reply, ret_params);
}

/* The buffer a method's reply describes, in a new *ret (ret NULL: dropped); puts reply. */
static int pm_reply_info(struct physmem *pm, const char *method, struct json_object *reply,
			 struct json_object *params, struct physmem_info **ret)
{
	struct physmem_info *info = calloc(1, sizeof(*info));
	const char *field = NULL;
	int r;

	if (!info)
		r = pm_fail(pm, -ENOMEM, "out of memory");
	else if ((r = physmem_reply_buffer_params(params, info, NULL, &field)) < 0) {
		r = pm_bad_reply(pm, r, method, field);
		free(info);
	} else if (ret)
		*ret = info;
	else
		physmem_info_free(info);
	json_object_put(reply);
	return r;
}

PHYSMEM_EXPORT int physmem_bind(struct physmem *pm, uint64_t id, const char *device,
				enum physmem_device_access access, struct physmem_info **ret)
{
	struct json_object *reply, *params;
	int r;

	if (!pm || !device)
		return -EINVAL;
	pm_clear_error(pm);
	if (!access_name(access))
		return pm_fail(pm, -EINVAL, "invalid argument: unknown device access %d", (int)access);
	r = pm_call_id_device(pm, PHYSMEM_INTERFACE ".Bind", id, device, access_name(access), &reply, &params);
	if (r < 0)
		return r;
	return pm_reply_info(pm, PHYSMEM_INTERFACE ".Bind", reply, params, ret);
}

PHYSMEM_EXPORT int physmem_unbind(struct physmem *pm, uint64_t id, const char *device)
{
	struct json_object *reply, *params;
	int r;

	if (!pm || !device)
		return -EINVAL;
	r = pm_call_id_device(pm, PHYSMEM_INTERFACE ".Unbind", id, device, NULL, &reply, &params);
	if (r == 0)
		json_object_put(reply);
	return r;
}

PHYSMEM_EXPORT int physmem_share(struct physmem_buffer *buf, const char *name, const uid_t *uids,
				 unsigned n_uids, const gid_t *gids, unsigned n_gids)
{
	struct json_object *reply, *params;
	struct vl_writer w;
	struct physmem_info info;
	const char *field = NULL;
	struct physmem *pm;
	int r;

	if (!buf || !name)
		return -EINVAL;
	pm = buf->pm;
	if (!pm)
		return -ENOTCONN;
	pm_clear_error(pm);
	r = check_sharing(pm, uids, n_uids, gids, n_gids);
	if (r < 0)
		return r;

	call_begin(&w, PHYSMEM_INTERFACE ".Share");
	vl_writer_key(&w, "id");
	vl_writer_int(&w, (int64_t)buf->info.id);
	write_sharing(&w, name, uids, n_uids, gids, n_gids);
	r = pm_call_simple(pm, PHYSMEM_INTERFACE ".Share", &w, &reply, &params);
	if (r < 0)
		return r;
	if ((r = physmem_reply_buffer_params(params, &info, NULL, &field)) < 0)
		r = pm_bad_reply(pm, r, PHYSMEM_INTERFACE ".Share", field);
	else if (info.id != buf->info.id || info.size != buf->info.size) {
		/* Sharing changes neither: buf->map was mapped with the size we have. */
		field = info.id != buf->info.id ? "id" : "size";
		physmem_info_done(&info);
		r = pm_bad_reply(pm, -EPROTO, PHYSMEM_INTERFACE ".Share", field);
	} else {
		physmem_info_done(&buf->info);
		buf->info = info;
	}
	json_object_put(reply);
	return r;
}

/* Import name: only owner's buffer of that name, or (owner < 0) the one the caller may import. */
static int pm_import(struct physmem *pm, const char *name, int64_t owner, struct physmem_buffer **ret)
{
	struct vl_writer w;

	if (!pm || !name || !ret)
		return -EINVAL;
	call_begin(&w, PHYSMEM_INTERFACE ".Import");
	write_string(&w, "name", name);
	if (owner >= 0) {
		vl_writer_key(&w, "owner");
		vl_writer_int(&w, owner);
	}
	return pm_call_buffer(pm, PHYSMEM_INTERFACE ".Import", &w, NULL, 0, false, ret);
}

PHYSMEM_EXPORT int physmem_import(struct physmem *pm, const char *name, struct physmem_buffer **ret)
{
	return pm_import(pm, name, -1, ret);
}

PHYSMEM_EXPORT int physmem_import_owned(struct physmem *pm, const char *name, uid_t owner,
					struct physmem_buffer **ret)
{
	if (owner == (uid_t)-1)
		return -EINVAL;
	return pm_import(pm, name, owner, ret);
}

PHYSMEM_EXPORT int physmem_pin(struct physmem *pm, int memfd, uint64_t offset, uint64_t size, const char *name,
			       struct physmem_buffer **ret)
{
	struct vl_writer w;

	if (!pm || memfd < 0 || !ret)
		return -EINVAL;
	pm_clear_error(pm);
	if (offset > INT64_MAX || size > INT64_MAX)
		return pm_fail(pm, -ERANGE, "offset or size out of range");
	call_begin(&w, PHYSMEM_INTERFACE ".Pin");
	vl_writer_key(&w, "memfdFileDescriptor");
	vl_writer_int(&w, 0);
	vl_writer_key(&w, "offset");
	vl_writer_int(&w, (int64_t)offset);
	if (size > 0) {	/* 0: from offset to the end of the memfd */
		vl_writer_key(&w, "size");
		vl_writer_int(&w, (int64_t)size);
	}
	write_string(&w, "name", name);
	return pm_call_buffer(pm, PHYSMEM_INTERFACE ".Pin", &w, &memfd, 1, true, ret);
}

PHYSMEM_EXPORT int physmem_free_id(struct physmem *pm, uint64_t id)
{
	struct json_object *reply, *params;
	int r;

	if (!pm)
		return -EINVAL;
	r = pm_call_id(pm, PHYSMEM_INTERFACE ".Free", id, &reply, &params);
	if (r == 0)
		json_object_put(reply);
	return r;
}

/*
 * Local resources are released whatever the daemon answers, so that a buffer
 * can always be got rid of; the return value says whether the daemon freed it.
 */
PHYSMEM_EXPORT int physmem_buffer_free(struct physmem_buffer *buf)
{
	int r;

	if (!buf)
		return 0;
	r = buf->pm ? physmem_free_id(buf->pm, buf->info.id) : -ENOTCONN;
	physmem_buffer_close(buf);
	return r;
}

PHYSMEM_EXPORT void physmem_buffer_close(struct physmem_buffer *buf)
{
	if (!buf)
		return;
	buffer_unlink(buf);
	(void)physmem_buffer_unmap(buf);
	if (buf->fd >= 0)
		close(buf->fd);
	physmem_info_done(&buf->info);
	free(buf);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/*
 * The memfd backend allocates no page itself: fault them all in now, charged
 * to this process, so that a shortage is an error from map and not a SIGBUS
 * later. Kernels before 5.14 lack MADV_POPULATE_WRITE: read one byte of each
 * page instead (a read fault allocates a shmem page too).
 */
static int buffer_populate(void *p, size_t size)
{
	long page = sysconf(_SC_PAGESIZE);

	if (madvise(p, size, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL)
		return errno == EFAULT || errno == EHWPOISON ? -ENOMEM : -errno;
	for (size_t off = 0; off < size; off += (size_t)page)
		(void)*(volatile const char *)((const char *)p + off);
	return 0;
}

/*
 * Allocate a memfd buffer's pages before mapping it: fallocate() fills the
 * file in one pass, and populating the mapping then only maps them, which
 * together cost less than faulting each page in (docs/PERFORMANCE.md). Not
 * for transparent huge pages: shmem_enabled "advise" gives those only to a
 * fault in a mapping that asked. Never past the file's end: the size is the
 * reply's, and a reply from something that is not physmemd (an unsealed
 * file) must not make this client grow it. -ENOMEM when memory runs out; any
 * other failure leaves it to the populate.
 */
static int buffer_allocate(int fd, size_t size)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size < size)
		return 0;
	if (fallocate(fd, 0, 0, (off_t)size) == 0)
		return 0;
	return errno == ENOSPC || errno == ENOMEM ? -ENOMEM : 0;
}

PHYSMEM_EXPORT void *physmem_buffer_map(struct physmem_buffer *buf)
{
	void *p;

	if (!buf) {
		errno = EINVAL;
		return NULL;
	}
	if (buf->map)
		return buf->map;
	if (buf->info.size == 0) {
		errno = EINVAL;
		return NULL;
	}
	if (buf->info.size > SIZE_MAX) {
		errno = EOVERFLOW;
		return NULL;
	}
	if (strcmp(buf->info.backend, "memfd") == 0 && !buf->info.thp) {
		int r = buffer_allocate(buf->fd, (size_t)buf->info.size);

		if (r < 0) {
			errno = -r;
			return NULL;
		}
	}
	p = mmap(NULL, (size_t)buf->info.size, PROT_READ | PROT_WRITE, MAP_SHARED, buf->fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (strcmp(buf->info.backend, "memfd") == 0) {
		int r;

		/* Only advice: shmem_enabled "advise" gives huge pages to mappings that ask. */
		if (buf->info.thp)
			(void)madvise(p, (size_t)buf->info.size, MADV_HUGEPAGE);
		r = buffer_populate(p, (size_t)buf->info.size);
		if (r < 0) {
			munmap(p, (size_t)buf->info.size);
			errno = -r;
			return NULL;
		}
	}
	buf->map = p;
	return p;
}

PHYSMEM_EXPORT int physmem_buffer_unmap(struct physmem_buffer *buf)
{
	if (!buf)
		return -EINVAL;
	if (!buf->map)
		return 0;
	if (munmap(buf->map, (size_t)buf->info.size) < 0)
		return -errno;
	buf->map = NULL;
	return 0;
}

PHYSMEM_EXPORT int physmem_buffer_fd(const struct physmem_buffer *buf)
{
	return buf ? buf->fd : -EBADF;
}

PHYSMEM_EXPORT uint64_t physmem_buffer_id(const struct physmem_buffer *buf)
{
	return buf ? buf->info.id : 0;
}

PHYSMEM_EXPORT uint64_t physmem_buffer_size(const struct physmem_buffer *buf)
{
	return buf ? buf->info.size : 0;
}

PHYSMEM_EXPORT const struct physmem_info *physmem_buffer_info(const struct physmem_buffer *buf)
{
	return buf ? &buf->info : NULL;
}

/* DMA_BUF_IOCTL_SYNC; memfd buffers answer ENOTTY and need nothing (they are coherent). */
static int buffer_sync(struct physmem_buffer *buf, unsigned directions, uint64_t end_flag)
{
	struct dma_buf_sync sync = { .flags = end_flag };

	if (!buf || directions == 0 || (directions & ~PHYSMEM_SYNC_RW))
		return -EINVAL;
	if (directions & PHYSMEM_SYNC_READ)
		sync.flags |= DMA_BUF_SYNC_READ;
	if (directions & PHYSMEM_SYNC_WRITE)
		sync.flags |= DMA_BUF_SYNC_WRITE;
	for (;;) {
		if (ioctl(buf->fd, DMA_BUF_IOCTL_SYNC, &sync) == 0)
			return 0;
		if (errno == ENOTTY)
			return 0;
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

PHYSMEM_EXPORT int physmem_buffer_begin_cpu(struct physmem_buffer *buf, unsigned directions)
{
	return buffer_sync(buf, directions, DMA_BUF_SYNC_START);
}

PHYSMEM_EXPORT int physmem_buffer_end_cpu(struct physmem_buffer *buf, unsigned directions)
{
	return buffer_sync(buf, directions, DMA_BUF_SYNC_END);
}

PHYSMEM_EXPORT int physmem_describe(struct physmem *pm, uint64_t id, struct physmem_info **ret)
{
	struct json_object *reply, *params;
	int r;

	if (!pm || !ret)
		return -EINVAL;
	r = pm_call_id(pm, PHYSMEM_INTERFACE ".Describe", id, &reply, &params);
	if (r < 0)
		return r;
	return pm_reply_info(pm, PHYSMEM_INTERFACE ".Describe", reply, params, ret);
}

PHYSMEM_EXPORT int physmem_list(struct physmem *pm, bool all, struct physmem_info ***ret, size_t *ret_n)
{
	struct json_object *reply, *params;
	struct vl_writer w;
	const char *field = NULL;
	int r;

	if (!pm || !ret || !ret_n)
		return -EINVAL;
	call_begin(&w, PHYSMEM_INTERFACE ".List");
	if (all) {
		vl_writer_key(&w, "all");
		vl_writer_bool(&w, true);
	}
	r = pm_call_simple(pm, PHYSMEM_INTERFACE ".List", &w, &reply, &params);
	if (r < 0)
		return r;
	r = physmem_reply_buffer_list(params, ret, ret_n, &field);
	if (r < 0)
		r = pm_bad_reply(pm, r, PHYSMEM_INTERFACE ".List", field);
	json_object_put(reply);
	return r;
}

PHYSMEM_EXPORT int physmem_status(struct physmem *pm, struct physmem_status **ret)
{
	struct json_object *reply, *params;
	struct physmem_status *st;
	const char *field = NULL;
	int r;

	if (!pm || !ret)
		return -EINVAL;
	r = pm_call_simple(pm, PHYSMEM_INTERFACE ".Status", NULL, &reply, &params);
	if (r < 0)
		return r;
	st = calloc(1, sizeof(*st));
	if (!st)
		r = pm_fail(pm, -ENOMEM, "out of memory");
	else if ((r = physmem_reply_status(params, st, &field)) < 0)
		r = pm_bad_reply(pm, r, PHYSMEM_INTERFACE ".Status", field);
	else {
		*ret = st;
		st = NULL;
	}
	free(st);
	json_object_put(reply);
	return r;
}
