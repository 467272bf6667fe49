/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the daemon's call handling end to end, through a real in-process
 * server: an event loop, the sink process, a worker pool, a registry on the
 * memfd backend with small limits, and server_init() listening on a Unix
 * socket in a private directory. Three clients are real sockets that send
 * the input's messages (fds with SCM_RIGHTS) and read the replies; once the
 * server accepted one, its peer is made uid 1000, uid 1001 or root, so that
 * sharing and policy are reached. The loop runs until every expected reply
 * arrived; a missing one is a bug (abort after a generous liveness timeout).
 *
 * Checks: every call gets exactly one reply (none when oneway), a JSON object
 * with "parameters" and, for errors, an "error" that an interface file names;
 * the server hangs up only after a message that is not JSON (having said so)
 * or one over max-message-size (the client then hangs up too, once every
 * reply owed arrived). Whenever no job is pending, the registry's
 * counters agree with its buffers. At the end of each input, after every
 * connection is gone, the workers are idle and the sink closed and
 * acknowledged every fd it was given, only named buffers remain and the
 * process has as many fds open as before: nothing leaks (ASan: no memory).
 *
 * Input: messages, each ended by a NUL. Bytes before a message's JSON:
 * 0x01-0x03 make client 1-3 the sender, 0x04 disconnects the sender at once
 * (its calls may still be with a worker) and connects it anew (at most
 * MAX_RECONNECTS times, counting hang-ups), 0x05 attaches
 * /dev/null to the message, 0x06 a sealed 64 KiB memfd (at most 4 fds), 0x07
 * sends the message without waiting for its reply (pipelining). The memfd
 * backend cannot pin, so the fuzzer gives it a pin() that takes the memfd as
 * the buffer, to reach Pin's checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "physmem-proto.h"
#include "physmemd.h"
#include "varlink-message.h"

#define N_CLIENTS 3
/* No progress for this long while a reply or a clean-up is due: a hang. */
#define LIVENESS_MS 10000
/*
 * New connections per input, past the first three: each costs a round trip
 * through the sink, and mutations make many messages that end a connection
 * (an empty one is not JSON). Past this, such messages and 0x04 are skipped.
 */
#define MAX_RECONNECTS 16
/* The last call before the end of an input, answered MethodNotFound. */
#define SENTINEL_METHOD "io.physmem.Manager.FuzzSentinel"

struct client {
	int fd;				/* -1: not connected */
	struct event *ev;
	struct vl_stream replies;
	unsigned expected;		/* replies owed since connecting */
	unsigned got;
	bool hangup;			/* the server will close after the owed replies */
	bool sentinel;			/* the last owed reply is the sentinel's */
};

struct fuzz_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	unsigned n_groups;
	gid_t groups[2];
};

static const struct fuzz_peer peers[N_CLIENTS] = {
	{ .uid = 1000, .gid = 1000, .pid = 100, .n_groups = 2, .groups = { 1000, 100 } },
	{ .uid = 1001, .gid = 1001, .pid = 101, .n_groups = 1, .groups = { 100 } },
	{ .uid = 0, .gid = 0, .pid = 1 },
};

static struct event_base *base;
static struct conf conf;
static struct server server;
static struct registry registry;
static struct backend_ops backend;
static void *backend_state;
static struct worker_pool *workers;
static char socket_dir[64];

/* A pin() for the memfd backend: the buffer is the client's memfd itself. */
static int fake_pin(void *state, int memfd, uint64_t offset, uint64_t size, struct backend_buffer *ret,
		    const char **ret_feature)
{
	(void)state;
	(void)offset;
	(void)ret_feature;
	memset(ret, 0, sizeof(*ret));
	ret->fd = fcntl(memfd, F_DUPFD_CLOEXEC, 3);
	if (ret->fd < 0)
		return -errno;
	ret->size = size;
	return 0;
}

/* Error names the interface files declare ("error Name (...)"). */
static char error_names[64][128];
static unsigned n_error_names;

static void collect_errors(const char *text)
{
	const char *iface = strstr(text, "interface ");
	size_t ilen;

	FUZZ_CHECK(iface);
	iface += strlen("interface ");
	ilen = strcspn(iface, " \n");
	for (const char *p = text; (p = strstr(p, "\nerror ")); p++) {
		const char *name = p + strlen("\nerror ");
		size_t len = strcspn(name, " (\n");

		FUZZ_CHECK(n_error_names < 64 && ilen + 1 + len < sizeof(error_names[0]));
		snprintf(error_names[n_error_names++], sizeof(error_names[0]), "%.*s.%.*s", (int)ilen, iface,
			 (int)len, name);
	}
}

static bool error_named(const char *name)
{
	for (unsigned i = 0; i < n_error_names; i++)
		if (strcmp(error_names[i], name) == 0)
			return true;
	return false;
}

/* CLOCK_MONOTONIC in milliseconds. */
static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop until done(arg) holds; abort if it does not within LIVENESS_MS. */
static void pump_until(bool (*done)(void *arg), void *arg, const char *what)
{
	uint64_t deadline = now_ms() + LIVENESS_MS;

	while (!done(arg)) {
		if (now_ms() > deadline) {
			fprintf(stderr, "no progress for %d ms while waiting for %s\n", LIVENESS_MS, what);
			abort();
		}
		/* The liveness tick (a persistent timer) bounds each wait. */
		FUZZ_CHECK(event_base_loop(base, EVLOOP_ONCE) >= 0);
	}
}

/* Wakes the loop now and then, so that pump_until() sees its deadline. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* One reply: well formed, owed, and the sentinel's where that is due. */
static void client_check_reply(struct client *cl, struct json_object *reply, const struct vl_fds *fds)
{
	struct json_object *v, *params;
	const char *error = NULL;

	FUZZ_CHECK(json_object_is_type(reply, json_type_object));
	FUZZ_CHECK(json_object_object_get_ex(reply, "parameters", &params) &&
		   json_object_is_type(params, json_type_object));
	if (json_object_object_get_ex(reply, "error", &v)) {
		FUZZ_CHECK(json_object_is_type(v, json_type_string));
		error = json_object_get_string(v);
		if (!error_named(error)) {
			fprintf(stderr, "error not in the interface: %s\n", error);
			abort();
		}
		FUZZ_CHECK(fds->n == 0);
	}
	cl->got++;
	if (cl->got > cl->expected) {
		fprintf(stderr, "a reply nobody asked for: %s\n", json_object_to_json_string(reply));
		abort();
	}
	if (cl->sentinel && cl->got == cl->expected) {
		/* Replies come in order: an extra reply before it would be taken for it. */
		FUZZ_CHECK(error && strcmp(error, "org.varlink.service.MethodNotFound") == 0);
		FUZZ_CHECK(json_object_object_get_ex(params, "method", &v) &&
			   strcmp(json_object_get_string(v), SENTINEL_METHOD) == 0);
	}
}

/* The client's socket is readable: take every complete reply, or the end. */
static void client_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct client *cl = arg;

	(void)fd;
	(void)what;
	for (;;) {
		struct json_object *reply;
		struct vl_fds fds;
		int r = vl_stream_next(&cl->replies, &reply, &fds);

		if (r == 1) {
			client_check_reply(cl, reply, &fds);
			json_object_put(reply);
			vl_fds_close(&fds);
			continue;
		}
		FUZZ_CHECK(r == 0);
		r = vl_stream_read(&cl->replies);
		if (r == -EAGAIN)
			return;
		if (r == 0 || r == -ECONNRESET) {
			/* The server hung up: only when it had a reason, after every owed reply. */
			if (!cl->hangup || cl->got != cl->expected || vl_stream_has_partial(&cl->replies)) {
				fprintf(stderr, "server hung up unasked (%u of %u replies)\n", cl->got, cl->expected);
				abort();
			}
			event_del(cl->ev);
			return;
		}
		FUZZ_CHECK(r > 0);
	}
}

/* Every reply owed arrived. */
static bool client_settled(void *arg)
{
	struct client *cl = arg;

	return cl->got == cl->expected;
}

static bool server_has_conn(void *arg)
{
	return server.next_conn_id == *(uint64_t *)arg + 1;
}

/* Connect a client, wait for the server to accept it, then make it peer i. */
static void client_connect(struct client *cl, unsigned i)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t before = server.next_conn_id;
	const struct fuzz_peer *p = &peers[i];
	struct conn *c;

	memset(cl, 0, sizeof(*cl));
	cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(cl->fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", conf.socket_path);
	FUZZ_CHECK(connect(cl->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	vl_stream_init(&cl->replies, cl->fd, 16 << 20);
	cl->ev = event_new(base, cl->fd, EV_READ | EV_PERSIST, client_on_read, cl);
	FUZZ_CHECK(cl->ev && event_add(cl->ev, NULL) == 0);
	pump_until(server_has_conn, &before, "the server to accept a client");

	/* It has read nothing yet: change who it is, as accept would have seen it. */
	TAILQ_FOREACH(c, &server.conns, entry)
		if (c->id == server.next_conn_id)
			break;
	FUZZ_CHECK(c);
	c->usage->connections--;
	registry_usage_put(&registry, c->usage);
	c->usage = registry_usage(&registry, p->uid, true);
	FUZZ_CHECK(c->usage);
	c->usage->connections++;
	policy_peer_done(&c->peer);
	c->peer = (struct peer){ .uid = p->uid, .gid = p->gid, .pid = p->pid, .n_groups = p->n_groups };
	if (p->n_groups > 0) {
		c->peer.groups = calloc(p->n_groups, sizeof(gid_t));
		FUZZ_CHECK(c->peer.groups);
		memcpy(c->peer.groups, p->groups, p->n_groups * sizeof(gid_t));
	}
}

/* Hang up at once, whatever is still owed or with a worker. */
static void client_disconnect(struct client *cl)
{
	if (cl->fd < 0)
		return;
	event_free(cl->ev);
	vl_stream_done(&cl->replies);
	close(cl->fd);
	cl->fd = -1;
}

/* Wakes the loop: a client's socket has room again (or its peer is gone). */
static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/*
 * Send one message and its fds (on its first byte), running the loop while
 * the socket is full. A connection the server is closing may refuse the rest.
 */
static void client_send(struct client *cl, const char *text, size_t len, const int *fds, unsigned nfds)
{
	uint64_t deadline = now_ms() + LIVENESS_MS;
	size_t off = 0;

	while (off < len) {
		struct event *ev;
		ssize_t n;

		n = vl_send_fds(cl->fd, text + off, len - off, fds, off == 0 ? nfds : 0);
		if ((n == -EPIPE || n == -ECONNRESET) && cl->hangup)
			return;
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		FUZZ_CHECK(n == -EAGAIN || n == -EINTR);
		if (now_ms() > deadline) {
			fprintf(stderr, "the server read nothing for %d ms\n", LIVENESS_MS);
			abort();
		}
		/* Full: the server reads on while we read its replies. */
		ev = event_new(base, cl->fd, EV_WRITE, on_writable, NULL);
		FUZZ_CHECK(ev && event_add(ev, NULL) == 0);
		FUZZ_CHECK(event_base_loop(base, EVLOOP_ONCE) >= 0);
		event_free(ev);
	}
}

/* How many replies the server owes for this message text, and whether it then hangs up. */
static unsigned expected_replies(const char *text, size_t len, bool *ret_hangup)
{
	struct vl_stream st;
	struct json_object *msg;
	struct vl_fds fds;
	struct vl_call call;
	const char *bad;
	unsigned n = 1;
	int r;

	*ret_hangup = false;
	if (len + 1 > conf.max_message_size) {
		*ret_hangup = true;	/* too large: dropped without a word */
		return 0;
	}
	/* The stream's own parser decides, as it does in the server. */
	vl_stream_init(&st, -1, conf.max_message_size);
	st.in = malloc(len + 1);
	FUZZ_CHECK(st.in);
	memcpy(st.in, text, len + 1);
	st.in_len = st.in_cap = len + 1;
	r = vl_stream_next(&st, &msg, &fds);
	FUZZ_CHECK(r == 1 || r == -EBADMSG);
	vl_stream_done(&st);
	if (r == -EBADMSG) {
		*ret_hangup = true;	/* InvalidParameter, then the end */
		return 1;
	}
	if (vl_call_parse(msg, &call, &bad) == 0 && call.oneway && !call.upgrade)
		n = 0;
	json_object_put(msg);
	return n;
}

/* The registry's counters agree with its buffers (the memfd backend never holds freed memory). */
static void check_accounting(struct registry *r)
{
	uint64_t n = 0, bytes = 0;
	struct buffer *b;
	struct usage *u;

	TAILQ_FOREACH(b, &r->buffers, entry) {
		n++;
		bytes += b->b.size;
		FUZZ_CHECK(registry_usage(r, b->owner_uid, false));
		/* The name index and the owner's named list agree with the buffer. */
		FUZZ_CHECK(b->on_named == (b->name[0] != '\0'));
		FUZZ_CHECK(!b->name[0] || registry_find_name(r, b->owner_uid, b->name) == b);
	}
	FUZZ_CHECK(r->n_buffers == n && r->bytes == bytes);
	FUZZ_CHECK(n <= r->conf->max_buffers_total);
	TAILQ_FOREACH(u, &r->usage, entry) {
		n = bytes = 0;
		TAILQ_FOREACH(b, &r->buffers, entry)
			if (b->owner_uid == u->uid) {
				n++;
				bytes += b->b.size;
			}
		FUZZ_CHECK(u->buffers == n && u->bytes == bytes && u->held_bytes == 0 && TAILQ_EMPTY(&u->held));
		FUZZ_CHECK(registry_usage(r, u->uid, false) == u);
		FUZZ_CHECK(n <= r->conf->max_buffers_per_uid && bytes <= r->conf->max_bytes_per_uid);
	}
}

static bool workers_idle(void *arg)
{
	(void)arg;
	return worker_pool_idle(workers);
}

static bool no_conns(void *arg)
{
	(void)arg;
	return server.n_conns == 0;
}

static bool sink_settled(void *arg)
{
	(void)arg;
	return sink_idle();
}

/*
 * Once per process: the loop, the sink, the backend, the worker pool, the
 * socket's directory, the error names. The pool's threads would cost more
 * than the rest of an input if each input started and joined its own.
 */
static void fuzz_init(void)
{
	static struct event *tick;
	struct timeval tv = { .tv_usec = 100000 };

	collect_errors(physmem_interface_description);
	collect_errors(varlink_service_interface_description);
	log_set_level(0);
	signal(SIGPIPE, SIG_IGN);

	conf_defaults(&conf);
	conf.max_message_size = 4096;
	conf.max_buffer_size = 64 << 10;
	conf.max_bytes_per_uid = 256 << 10;
	conf.max_buffers_per_uid = 8;
	conf.max_buffers_total = 12;
	conf.worker_threads = 1;
	conf.lock = LOCK_NO;
	conf.fdstore = LOCK_NO;
	snprintf(socket_dir, sizeof(socket_dir), "/tmp/fuzz-physmemd-XXXXXX");
	FUZZ_CHECK(mkdtemp(socket_dir));
	snprintf(conf.socket_path, sizeof(conf.socket_path), "%s/s", socket_dir);

	base = event_base_new();
	FUZZ_CHECK(base);
	/* The sink child dies with us (PR_SET_PDEATHSIG, and the end of its socket). */
	FUZZ_CHECK(sink_init(base, &conf) == 0);
	backend = backend_memfd_ops;
	backend.pin = fake_pin;
	FUZZ_CHECK(backend.init(&conf, &backend_state) == 0);
	FUZZ_CHECK(worker_pool_new(base, &conf, &backend, backend_state, &workers) == 0);
	tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	FUZZ_CHECK(tick && event_add(tick, &tv) == 0);
}

/* At exit: the pool's threads, the backend, the socket's directory (the socket went with each server). */
static void fuzz_cleanup(void)
{
	worker_pool_free(workers);
	backend.fini(backend_state);
	rmdir(socket_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool initialized;
	struct client clients[N_CLIENTS];
	unsigned cur = 0, reconnects = 0;
	int devnull, memfd, fds_before;
	size_t i = 0;

	if (!initialized) {
		fuzz_init();
		atexit(fuzz_cleanup);
		initialized = true;
	}
	if (size > 65536)
		return 0;
	fds_before = fuzz_count_fds();

	registry_init(&registry, &conf, &backend, backend_state);
	registry.workers = workers;
	FUZZ_CHECK(server_init(&server, base, &conf, &registry, -1) == 0);
	for (unsigned k = 0; k < N_CLIENTS; k++)
		client_connect(&clients[k], k);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(devnull >= 0);
	memfd = memfd_create("fuzz-pin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	FUZZ_CHECK(memfd >= 0 && ftruncate(memfd, 64 << 10) == 0);
	FUZZ_CHECK(fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);

	while (i < size) {
		const uint8_t *end = memchr(data + i, 0, size - i);
		struct client *cl;
		bool pipeline = false, hangup;
		unsigned nfds = 0, n;
		size_t len;
		int fds[4];

		if (!end)
			break;	/* a partial message stays unsent */
		for (; data + i < end && data[i] >= 0x01 && data[i] <= 0x07; i++) {
			if (data[i] <= 0x03) {
				cur = data[i] - 1u;
			} else if (data[i] == 0x04) {
				if (reconnects++ >= MAX_RECONNECTS)
					continue;
				client_disconnect(&clients[cur]);
				client_connect(&clients[cur], cur);
			} else if (data[i] == 0x07) {
				pipeline = true;
			} else if (nfds < 4) {
				fds[nfds++] = data[i] == 0x05 ? devnull : memfd;
			}
		}
		cl = &clients[cur];
		len = (size_t)(end - (data + i));
		n = expected_replies((const char *)data + i, len, &hangup);
		if (hangup && reconnects++ >= MAX_RECONNECTS) {
			i = (size_t)(end - data) + 1;
			continue;
		}
		cl->expected += n;
		cl->hangup = hangup;
		/* With its NUL: the server frames by it. */
		client_send(cl, (const char *)data + i, len + 1, fds, nfds);
		i = (size_t)(end - data) + 1;
		if (hangup) {
			/*
			 * Nothing more goes to a connection the server closes: a new
			 * one takes over once the owed replies are in. (Waiting for
			 * the end too would wait for the sink, at a third of the speed.)
			 */
			pump_until(client_settled, cl, "the replies before a hang-up");
			client_disconnect(cl);
			client_connect(cl, cur);
			continue;
		}
		if (pipeline)
			continue;
		pump_until(client_settled, cl, "a reply");
		pump_until(workers_idle, NULL, "the workers");
		check_accounting(&registry);
	}

	/* Every call still owed is answered before the sentinel is. */
	for (unsigned k = 0; k < N_CLIENTS; k++) {
		static const char sentinel[] = "{\"method\":\"" SENTINEL_METHOD "\"}";

		clients[k].expected++;
		clients[k].sentinel = true;
		client_send(&clients[k], sentinel, sizeof(sentinel), NULL, 0);
	}
	for (unsigned k = 0; k < N_CLIENTS; k++)
		pump_until(client_settled, &clients[k], "the replies before the sentinel");
	pump_until(workers_idle, NULL, "the workers");
	check_accounting(&registry);

	/* The server sees every client go and frees what they leave, on the workers. */
	for (unsigned k = 0; k < N_CLIENTS; k++)
		client_disconnect(&clients[k]);
	pump_until(no_conns, NULL, "the server to drop its connections");
	pump_until(workers_idle, NULL, "the workers");
	check_accounting(&registry);
	/* Only named buffers outlive their owners' connections. */
	{
		struct buffer *b;

		TAILQ_FOREACH(b, &registry.buffers, entry)
			FUZZ_CHECK(b->name[0] && !b->owner);
	}

	/* Shut down as physmemd's main() does (the pool is idle: as if it were gone). */
	server_done(&server);
	sink_on_drained(NULL, NULL);
	FUZZ_CHECK(worker_pool_idle(workers));
	registry.workers = NULL;
	registry_done(&registry);
	close(devnull);
	close(memfd);
	/* Connection sockets and client fds are closed by the sink's closer threads. */
	pump_until(sink_settled, NULL, "the sink");
	FUZZ_CHECK(fuzz_count_fds() == fds_before);
	return 0;
}
