/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz libphysmem's reply handling through its public API: a fake daemon
 * (the accepted end of a real Unix socket) has the input's replies, with fds,
 * waiting before the client calls, then half-closes. The calls run in turn
 * (Status, List, Allocate, Share, Describe, Import, Free, Bind, Unbind), each taking the
 * next reply, so pm_call(), pm_take_buffer() and every parser of
 * client/physmem-reply.c see what a hostile or broken daemon could send.
 * Error messages must stay printable; nothing may leak.
 *
 * Input: byte 0 picks the first call, byte 1 the fds sent with each reply
 * (bits 0-1: how many; bit 2: a memfd instead of /dev/null); the rest is
 * the daemon's output (replies end with a NUL).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"
#include "libphysmem-private.h"
#include "physmem.h"
#include "varlink-stream.h"

#define N_CALLS 9

static char socket_path[108];
static int listen_fd = -1;

static void remove_socket(void)
{
	char dir[sizeof(socket_path)];

	unlink(socket_path);
	snprintf(dir, sizeof(dir), "%s", socket_path);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
}

/* A listening socket in a fresh directory, made once. */
static void listen_once(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/fuzz-physmem-reply-XXXXXX";

	if (listen_fd >= 0)
		return;
	FUZZ_CHECK(mkdtemp(dir));
	snprintf(socket_path, sizeof(socket_path), "%s/sock", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(listen_fd >= 0);
	FUZZ_CHECK(bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	FUZZ_CHECK(listen(listen_fd, 4) == 0);
	atexit(remove_socket);
}

/* Send the daemon's output: fds on the first byte of each reply. */
static void send_replies(int fd, const uint8_t *data, size_t size, unsigned nfds, bool memfd)
{
	unsigned replies = 0;
	size_t i = 0;
	ssize_t n;

	while (i < size) {
		const uint8_t *nul = memchr(data + i, 0, size - i);
		size_t len = nul ? (size_t)(nul - (data + i)) + 1 : size - i;
		int fds[3];

		for (unsigned k = 0; k < nfds; k++) {
			fds[k] = memfd ? memfd_create("fuzz", MFD_CLOEXEC) : open("/dev/null", O_RDWR | O_CLOEXEC);
			FUZZ_CHECK(fds[k] >= 0);
			if (memfd)
				FUZZ_CHECK(ftruncate(fds[k], 4096) == 0);
		}
		n = vl_send_fds(fd, data + i, len, fds, nfds);
		for (unsigned k = 0; k < nfds; k++)
			close(fds[k]);
		/* The client reads only after this: stop where the socket is full. */
		if (n == -EAGAIN)
			break;
		FUZZ_CHECK(n > 0);
		i += (size_t)n;
		if (++replies == 16)
			nfds = 0;	/* fds in flight count against RLIMIT_NOFILE */
	}
	FUZZ_CHECK(shutdown(fd, SHUT_WR) == 0);
}

/* An error message is one printable line; the error name too. */
static void check_error(struct physmem *pm)
{
	const char *m = physmem_error_message(pm), *n = physmem_error_name(pm);

	FUZZ_CHECK(m);
	for (; *m; m++)
		FUZZ_CHECK((unsigned char)*m >= 0x20 && *m != 0x7f);
	for (; n && *n; n++)
		FUZZ_CHECK((unsigned char)*n >= 0x20 && *n != 0x7f);
}

static void check_info(const struct physmem_info *info)
{
	FUZZ_CHECK(info->allow_uids.n <= 64 && info->allow_gids.n <= 64);
	FUZZ_CHECK(memchr(info->name, 0, sizeof(info->name)) && memchr(info->backend, 0, sizeof(info->backend)));
	FUZZ_CHECK(info->segments_known || info->n_segments == 0);
	FUZZ_CHECK(memchr(info->pool, 0, sizeof(info->pool)));
	for (unsigned i = 0; i < info->n_segments; i++)
		(void)info->segments[i].length;
	FUZZ_CHECK(info->n_bindings <= PHYSMEM_MAX_BINDINGS);
	for (unsigned i = 0; i < info->n_bindings; i++) {
		const struct physmem_binding *b = physmem_info_binding(info, i);

		FUZZ_CHECK(b && memchr(b->device, 0, sizeof(b->device)) && memchr(b->translation, 0, sizeof(b->translation)));
		FUZZ_CHECK(b->segments_known || b->n_segments == 0);
		for (unsigned k = 0; k < b->n_segments; k++)
			(void)physmem_binding_segment(b, k)->length;
	}
	FUZZ_CHECK(!info->json || json_object_is_type(info->json, json_type_object));
}

/* Call number op; a new buffer replaces *buf. */
static void call(struct physmem *pm, unsigned op, struct physmem_buffer **buf)
{
	struct physmem_buffer *nb = NULL;
	struct physmem_status *st;
	struct physmem_info *info, **list;
	size_t n;
	int r = 0;

	switch (op) {
	case 0:
		r = physmem_status(pm, &st);
		if (r == 0) {
			FUZZ_CHECK(memchr(st->version, 0, sizeof(st->version)) &&
				   memchr(st->address_policy, 0, sizeof(st->address_policy)));
			FUZZ_CHECK(st->pools || st->n_pools == 0);
			for (unsigned i = 0; i < physmem_status_n_pools(st); i++) {
				uint64_t v;

				FUZZ_CHECK(memchr(st->pools[i].name, 0, sizeof(st->pools[i].name)) &&
					   memchr(st->pools[i].kind, 0, sizeof(st->pools[i].kind)));
				FUZZ_CHECK(physmem_status_pool_size(st, i, &v) == (st->pools[i].size_known ? 0 : -ENODATA));
			}
			FUZZ_CHECK(physmem_status_pool_name(st, physmem_status_n_pools(st)) == NULL);
			physmem_status_free(st);
		}
		break;
	case 1:
		r = physmem_list(pm, true, &list, &n);
		if (r == 0) {
			for (size_t i = 0; i < n; i++)
				check_info(list[i]);
			physmem_info_list_free(list, n);
		}
		break;
	case 2:
		r = physmem_alloc(pm, 4096, 0, PHYSMEM_CACHE_CACHED, "fuzz", &nb);
		break;
	case 3:
		if (*buf) {
			uint64_t id = physmem_buffer_id(*buf), size = physmem_buffer_size(*buf);

			r = physmem_share(*buf, "fuzz", NULL, 0, NULL, 0);
			check_info(physmem_buffer_info(*buf));
			/* A buffer is what it was made as: its mapping is that size. */
			FUZZ_CHECK(physmem_buffer_id(*buf) == id && physmem_buffer_size(*buf) == size);
		}
		break;
	case 4:
		r = physmem_describe(pm, 1, &info);
		if (r == 0) {
			check_info(info);
			physmem_info_free(info);
		}
		break;
	case 5:
		r = physmem_import(pm, "fuzz", &nb);
		break;
	case 6:
		if (*buf) {
			r = physmem_buffer_free(*buf);
			*buf = NULL;
		}
		break;
	case 7:
		r = physmem_bind(pm, 1, "0000:00:03.0", PHYSMEM_ACCESS_TO_DEVICE, &info);
		if (r == 0) {
			check_info(info);
			physmem_info_free(info);
		}
		break;
	case 8:
		r = physmem_unbind(pm, 1, "0000:00:03.0");
		break;
	}
	if (r < 0)
		check_error(pm);
	if (nb) {
		FUZZ_CHECK(r == 0 && physmem_buffer_fd(nb) >= 0);
		check_info(physmem_buffer_info(nb));
		/* Map what the reply says (the size comes from the daemon) and keep it mapped. */
		(void)physmem_buffer_map(nb);
		physmem_buffer_close(*buf);
		*buf = nb;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct physmem_buffer *buf = NULL;
	struct physmem *pm;
	int fds_before, daemon_fd;

	if (size < 2 || size > 65536)
		return 0;
	listen_once();
	fds_before = fuzz_count_fds();

	FUZZ_CHECK(physmem_connect(socket_path, &pm) == 0);
	daemon_fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	FUZZ_CHECK(daemon_fd >= 0);
	send_replies(daemon_fd, data + 2, size - 2, data[1] & 3, data[1] & 4);

	for (unsigned k = 0; k < N_CALLS; k++)
		call(pm, (data[0] + k) % N_CALLS, &buf);
	physmem_buffer_close(buf);
	physmem_disconnect(pm);
	close(daemon_fd);
	FUZZ_CHECK(fuzz_count_fds() == fds_before);
	return 0;
}
