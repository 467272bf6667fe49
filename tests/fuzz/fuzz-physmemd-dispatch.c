/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the daemon's call handling end to end, without the event loop:
 * messages go through a connection's vl_stream_next() into varlink_handle()
 * (daemon/physmemd-varlink.c) with a registry on the memfd backend, and the
 * replies go out through a socketpair and are read back. Three clients share
 * the registry (uid 1000, uid 1001, root), so sharing and policy are reached.
 * Limits are small, so that no input allocates much.
 *
 * Every call must get exactly one reply (none when oneway), a JSON object
 * with "parameters" and, for errors, an "error" that an interface file names.
 * Nothing may leak: memory (ASan) or fds (counted).
 *
 * Input: messages, each ended by a NUL. Bytes before a message's JSON:
 * 0x01-0x03 make client 1-3 the sender, 0x04 disconnects the sender (and
 * connects it anew), 0x05 attaches /dev/null to the message, 0x06 a sealed
 * 64 KiB memfd (at most 4 fds). The memfd backend cannot pin, so the fuzzer
 * gives it a pin() that takes the memfd as the buffer, to reach Pin's checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "physmem-proto.h"
#include "physmemd.h"
#include "varlink-message.h"

#define N_CLIENTS 3

struct client {
	struct conn conn;
	int peer_fd;		/* the client's end of the socketpair */
	struct vl_stream replies;
};

static const struct peer peers[N_CLIENTS] = {
	{ .uid = 1000, .gid = 1000, .pid = 100, .n_groups = 2, .groups = { 1000, 100 } },
	{ .uid = 1001, .gid = 1001, .pid = 101, .n_groups = 1, .groups = { 100 } },
	{ .uid = 0, .gid = 0, .pid = 1 },
};

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

static void client_connect(struct client *cl, struct server *s, unsigned i)
{
	int sv[2];

	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
	memset(cl, 0, sizeof(*cl));
	cl->conn.server = s;
	cl->conn.id = ++s->next_conn_id;
	cl->conn.peer = peers[i];
	cl->conn.usage = registry_usage(s->registry, peers[i].uid, true);
	FUZZ_CHECK(cl->conn.usage);
	cl->conn.usage->connections++;
	s->n_conns++;
	vl_stream_init(&cl->conn.stream, sv[0], s->conf->max_message_size);
	cl->peer_fd = sv[1];
	vl_stream_init(&cl->replies, sv[1], 16 << 20);
}

/* What server.c's conn_free() does to the registry, and close the sockets. */
static void client_disconnect(struct client *cl, struct server *s)
{
	registry_owner_gone(s->registry, &cl->conn);
	s->n_conns--;
	cl->conn.usage->connections--;
	registry_usage_put(s->registry, cl->conn.usage);
	vl_stream_done(&cl->conn.stream);
	vl_stream_done(&cl->replies);
	close(cl->conn.stream.fd);
	close(cl->peer_fd);
}

/* Read back what the daemon queued: exactly `expect` replies, each well formed. */
static void check_replies(struct client *cl, unsigned expect)
{
	unsigned got = 0;

	FUZZ_CHECK(vl_stream_flush(&cl->conn.stream) == 0);
	for (;;) {
		struct json_object *reply, *v;
		struct vl_fds fds;
		int r = vl_stream_next(&cl->replies, &reply, &fds);

		if (r == 0) {
			r = vl_stream_read(&cl->replies);
			if (r == -EAGAIN)
				break;
			FUZZ_CHECK(r > 0);
			continue;
		}
		FUZZ_CHECK(r == 1);
		got++;
		FUZZ_CHECK(json_object_is_type(reply, json_type_object));
		FUZZ_CHECK(json_object_object_get_ex(reply, "parameters", &v) &&
			   json_object_is_type(v, json_type_object));
		if (json_object_object_get_ex(reply, "error", &v)) {
			FUZZ_CHECK(json_object_is_type(v, json_type_string));
			if (!error_named(json_object_get_string(v))) {
				fprintf(stderr, "error not in the interface: %s\n", json_object_get_string(v));
				abort();
			}
			FUZZ_CHECK(fds.n == 0);
		}
		json_object_put(reply);
		vl_fds_close(&fds);
	}
	FUZZ_CHECK(got == expect);
	FUZZ_CHECK(!vl_stream_has_partial(&cl->replies));
}

/* The registry's counters agree with its buffers (the memfd backend never holds freed memory). */
static void check_accounting(struct registry *r)
{
	uint64_t n = 0, bytes = 0;
	struct buffer *b;
	struct usage *u;

	FUZZ_CHECK(TAILQ_EMPTY(&r->held));
	TAILQ_FOREACH(b, &r->buffers, entry) {
		n++;
		bytes += b->b.size;
		FUZZ_CHECK(registry_usage(r, b->owner_uid, false));
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
		FUZZ_CHECK(u->buffers == n && u->bytes == bytes && u->held_bytes == 0);
		FUZZ_CHECK(n <= r->conf->max_buffers_per_uid && bytes <= r->conf->max_bytes_per_uid);
	}
}

/* One message from one client, as server.c's conn_process() handles it. */
static void handle(struct client *cl, const uint8_t *text, size_t len, unsigned nfds, const int *fds_in)
{
	struct vl_stream *st = &cl->conn.stream;
	struct json_object *msg;
	struct vl_call call;
	const char *bad;
	struct vl_fds fds;
	unsigned expect = 1;
	int r;

	/* Put the message into the stream's input as a read would, fds on its first byte. */
	st->in = malloc(len + 1);
	FUZZ_CHECK(st->in);
	memcpy(st->in, text, len);
	st->in[len] = '\0';
	st->in_len = st->in_cap = len + 1;
	for (unsigned i = 0; i < nfds; i++) {
		st->in_fds[i] = fcntl(fds_in[i], F_DUPFD_CLOEXEC, 3);
		FUZZ_CHECK(st->in_fds[i] >= 0);
	}
	st->in_nfds = nfds;
	st->in_fds_at = 0;

	r = vl_stream_next(st, &msg, &fds);
	FUZZ_CHECK(r == 1 || r == -EBADMSG);
	FUZZ_CHECK(!vl_stream_has_partial(st) && st->in_nfds == 0);
	free(st->in);
	st->in = NULL;
	st->in_cap = 0;
	if (r == -EBADMSG) {
		/* server.c replies InvalidParameter and hangs up; the hang-up is the caller's. */
		server_reply(&cl->conn, vl_error_invalid_parameter("message"), NULL, 0);
		check_replies(cl, 1);
		cl->conn.closing = true;
		return;
	}
	FUZZ_CHECK(fds.n == nfds);
	/* A well-formed oneway call gets no reply, not even an error. */
	if (vl_call_parse(msg, &call, &bad) == 0 && call.oneway && !call.upgrade)
		expect = 0;
	r = varlink_handle(&cl->conn, msg, &fds);
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(!cl->conn.oneway);
	vl_fds_close(&fds);
	json_object_put(msg);
	check_replies(cl, expect);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool initialized;
	struct client clients[N_CLIENTS];
	struct backend_ops backend = backend_memfd_ops;
	struct registry registry;
	struct server server = { 0 };
	struct conf conf;
	void *backend_state;
	unsigned cur = 0;
	int devnull, memfd, fds_before;
	size_t i = 0;

	if (!initialized) {
		collect_errors(physmem_interface_description);
		collect_errors(varlink_service_interface_description);
		log_set_level(0);
		initialized = true;
	}
	if (size > 65536)
		return 0;
	fds_before = fuzz_count_fds();

	conf_defaults(&conf);
	conf.max_message_size = 4096;
	conf.max_buffer_size = 64 << 10;
	conf.max_bytes_per_uid = 256 << 10;
	conf.max_buffers_per_uid = 8;
	conf.max_buffers_total = 12;
	conf.lock = LOCK_NO;
	conf.fdstore = LOCK_NO;
	backend.pin = fake_pin;
	FUZZ_CHECK(backend.init(&conf, &backend_state) == 0);
	registry_init(&registry, &conf, &backend, backend_state);
	server.conf = &conf;
	server.registry = &registry;
	server.listen_fd = -1;
	TAILQ_INIT(&server.conns);
	for (unsigned k = 0; k < N_CLIENTS; k++)
		client_connect(&clients[k], &server, k);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(devnull >= 0);
	memfd = memfd_create("fuzz-pin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	FUZZ_CHECK(memfd >= 0 && ftruncate(memfd, 64 << 10) == 0);
	FUZZ_CHECK(fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);

	while (i < size) {
		const uint8_t *end = memchr(data + i, 0, size - i);
		unsigned nfds = 0;
		int fds[4];

		if (!end)
			break;	/* a partial message stays unread */
		for (; data + i < end && data[i] >= 0x01 && data[i] <= 0x06; i++) {
			if (data[i] <= 0x03) {
				cur = data[i] - 1u;
			} else if (data[i] == 0x04) {
				client_disconnect(&clients[cur], &server);
				client_connect(&clients[cur], &server, cur);
			} else if (nfds < 4) {
				fds[nfds++] = data[i] == 0x05 ? devnull : memfd;
			}
		}
		handle(&clients[cur], data + i, (size_t)(end - (data + i)), nfds, fds);
		if (clients[cur].conn.closing) {
			client_disconnect(&clients[cur], &server);
			client_connect(&clients[cur], &server, cur);
		}
		i = (size_t)(end - data) + 1;
		check_accounting(&registry);
	}

	for (unsigned k = 0; k < N_CLIENTS; k++)
		client_disconnect(&clients[k], &server);
	/* Only named buffers outlive their owners' connections. */
	{
		struct buffer *b;

		TAILQ_FOREACH(b, &registry.buffers, entry)
			FUZZ_CHECK(b->name[0] && !b->owner);
	}
	registry_done(&registry);
	backend.fini(backend_state);
	close(devnull);
	close(memfd);
	FUZZ_CHECK(fuzz_count_fds() == fds_before);
	return 0;
}
