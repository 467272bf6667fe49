/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz the NUL-framed reader of proto/varlink-stream.c through a real
 * socketpair: arbitrary bytes in chunks of arbitrary sizes, some carrying fds
 * (SCM_RIGHTS), read with vl_stream_read() and split with vl_stream_next().
 * Every message taken out is queued back with its fds (vl_stream_queue,
 * vl_stream_flush) and must come back through a second reader as a JSON
 * value of the same type with as many fds. No fd may outlive the input.
 *
 * Input: byte 0 sets max_message (1 + 32 * its low 6 bits), with bit 6 a
 * stream that never peeks (one_at_a_time, as libphysmem's) and with its top
 * bit unpeeked reads until fds come (refers_to_fds: vl_message_refers_to_fds);
 * then chunks, each [length - 1] [flags: bits 0-1 fds to attach, bit 2 read
 * now] [bytes].
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "varlink-message.h"
#include "varlink-stream.h"

struct fuzz_state {
	int sock[2];		/* [0] is read by the stream under test, [1] writes to it */
	struct vl_stream in;	/* the reader under test, on sock[0] */
	struct vl_stream echo;	/* reads the echoes back, on sock[1] */
	bool broken;		/* the reader reported an error: the connection is over */
	int devnull;
};

/* Send one chunk with n fds on its first byte; false when the socket is full or gone. */
static bool send_chunk(struct fuzz_state *f, const uint8_t *data, size_t len, unsigned nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 3)];
	} control;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds > 0) {
		struct cmsghdr *c;
		int fds[3];

		memset(&control, 0, sizeof(control));
		for (unsigned i = 0; i < nfds; i++)
			fds[i] = f->devnull;
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(f->sock[1], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len;
}

/* Read what the echo reader has and check each message against what was sent. */
static void check_echo(struct fuzz_state *f, enum json_type type, unsigned nfds)
{
	struct json_object *back;
	struct vl_fds fds;
	int r;

	FUZZ_CHECK(vl_stream_flush(&f->in) == 0);
	do {
		r = vl_stream_read(&f->echo);
		FUZZ_CHECK(r > 0);
		r = vl_stream_next(&f->echo, &back, &fds);
		/* What the stream wrote, it must read back. */
		FUZZ_CHECK(r >= 0);
	} while (r == 0);
	/* json-c reads "1e" as the double 1 and writes it as the int 1: a number stays a number. */
	if (type == json_type_double)
		type = json_type_int;
	FUZZ_CHECK(json_object_get_type(back) == type ||
		   (type == json_type_int && json_object_is_type(back, json_type_double)));
	FUZZ_CHECK(fds.n == nfds);
	FUZZ_CHECK(!vl_stream_has_partial(&f->echo));
	json_object_put(back);
	vl_fds_close(&fds);
}

/* Take every complete message out of the reader under test. */
static void drain_messages(struct fuzz_state *f)
{
	for (;;) {
		struct json_object *msg;
		struct vl_fds fds;
		int r;

		r = vl_stream_next(&f->in, &msg, &fds);
		if (r == 0)
			return;
		if (r == -EBADMSG) {
			FUZZ_CHECK(fds.n == 0);
			continue;
		}
		FUZZ_CHECK(r == 1);
		FUZZ_CHECK(fds.n <= VL_MAX_FDS);
		for (unsigned i = 0; i < fds.n; i++)
			FUZZ_CHECK(fcntl(fds.fds[i], F_GETFD) >= 0);
		FUZZ_CHECK(vl_stream_queue(&f->in, msg, fds.fds, fds.n) == 0);
		check_echo(f, json_object_get_type(msg), fds.n);
		json_object_put(msg);
		vl_fds_close(&fds);
	}
}

/* Read until the socket is empty (or the reader gives up), taking messages out. */
static void read_all(struct fuzz_state *f)
{
	while (!f->broken) {
		int r = vl_stream_read(&f->in);

		if (r == -EAGAIN)
			return;
		if (r <= 0) {
			/* EOF or an error: the connection is over (vl_stream_done() cleans up). */
			FUZZ_CHECK(r == 0 || r == -EPROTO || r == -EMSGSIZE);
			f->broken = true;
			return;
		}
		FUZZ_CHECK(f->in.in_len + f->in.in_stash <= f->in.max_message);
		drain_messages(f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_state f = { 0 };
	int fds_before = fuzz_count_fds();
	size_t i = 1;

	if (size < 1)
		return 0;
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, f.sock) == 0);
	f.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(f.devnull >= 0);
	vl_stream_init(&f.in, f.sock[0], 1 + 32 * (size_t)(data[0] & 0x3f));
	f.in.one_at_a_time = data[0] & 0x40;
	if (data[0] & 0x80)
		f.in.refers_to_fds = vl_message_refers_to_fds;
	vl_stream_init(&f.echo, f.sock[1], 1 << 20);

	while (i + 2 <= size && !f.broken) {
		size_t len = (size_t)data[i] + 1;
		unsigned flags = data[i + 1];

		i += 2;
		if (len > size - i)
			len = size - i;
		if (len == 0)
			break;
		if (!send_chunk(&f, data + i, len, flags & 3)) {
			read_all(&f);
			break;
		}
		i += len;
		if (flags & 4)
			read_all(&f);
	}
	/* The end: everything sent is read, then end of file. */
	shutdown(f.sock[1], SHUT_WR);
	read_all(&f);
	FUZZ_CHECK(f.broken);

	vl_stream_done(&f.in);
	vl_stream_done(&f.echo);
	close(f.sock[0]);
	close(f.sock[1]);
	close(f.devnull);
	FUZZ_CHECK(fuzz_count_fds() == fds_before);
	return 0;
}
