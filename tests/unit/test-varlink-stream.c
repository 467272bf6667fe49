/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* varlink-stream: framing and fd passing over a real socketpair. */
#include <errno.h>
#include <locale.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "varlink-message.h"
#include "varlink-stream.h"

struct pair {
	int a;			/* the test's end: raw writes */
	int b;			/* the stream's end */
	struct vl_stream s;
};

static int setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	int sv[2];

	assert_non_null(p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	p->a = sv[0];
	p->b = sv[1];
	vl_stream_init(&p->s, p->b, 256);
	*state = p;
	return 0;
}

/* The same, with the stream told which messages refer to fds: reads without a peek until fds come. */
static int setup_unpeeked(void **state)
{
	struct pair *p;

	setup(state);
	p = *state;
	p->s.refers_to_fds = vl_message_refers_to_fds;
	return 0;
}

/* The same, for a synchronous client: the peer only answers, one call at a time; no read is peeked. */
static int setup_one_at_a_time(void **state)
{
	struct pair *p;

	setup(state);
	p = *state;
	p->s.one_at_a_time = true;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;

	vl_stream_done(&p->s);
	close(p->a);
	close(p->b);
	free(p);
	return 0;
}

static void send_fds(int sock, const void *data, size_t len, const int *fds, unsigned nfds)
{
	assert_int_equal(vl_send_fds(sock, data, len, fds, nfds), (ssize_t)len);
}

static void send_str(int sock, const char *s, size_t len)
{
	assert_int_equal(write(sock, s, len), (ssize_t)len);
}

/* Read until the socket is empty; returns the last result (-EAGAIN when drained). */
static int drain(struct vl_stream *s)
{
	int r;

	do
		r = vl_stream_read(s);
	while (r > 0);
	return r;
}

static struct json_object *next_ok(struct vl_stream *s, struct vl_fds *fds)
{
	struct json_object *o = NULL;

	assert_int_equal(vl_stream_next(s, &o, fds), 1);
	return o;
}

static void expect_int_member(struct json_object *o, const char *key, int v)
{
	struct json_object *m;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, key, &m));
	assert_int_equal(json_object_get_int(m), v);
}

/* True when the pipe's every write end is closed. */
static bool pipe_write_ends_closed(int r)
{
	struct pollfd pfd = { .fd = r, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, 1000) != 1)
		return false;
	return read(r, &c, 1) == 0;
}

static void test_several_messages_one_write(void **state)
{
	struct pair *p = *state;
	static const char msgs[] = "{\"n\":1}\0{\"n\":2}\0  {\"n\":3}\n\0{\"n\":4";
	struct vl_fds fds;
	struct json_object *o = NULL;

	send_str(p->a, msgs, sizeof(msgs) - 1);
	assert_int_equal(drain(&p->s), -EAGAIN);
	for (int i = 1; i <= 3; i++) {
		o = next_ok(&p->s, &fds);
		assert_int_equal(fds.n, 0);
		expect_int_member(o, "n", i);
		json_object_put(o);
	}
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), 0);
	assert_null(o);
	assert_true(vl_stream_has_partial(&p->s));
	send_str(p->a, "}", 2);		/* "}" and its NUL */
	assert_int_equal(drain(&p->s), -EAGAIN);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 4);
	json_object_put(o);
	assert_false(vl_stream_has_partial(&p->s));
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), 0);
}

static void test_one_message_many_writes(void **state)
{
	struct pair *p = *state;
	static const char msg[] = "{\"method\":\"a.b.C\",\"parameters\":{\"n\":42}}";
	struct vl_fds fds;
	struct json_object *o = NULL;

	for (size_t i = 0; i < sizeof(msg); i++) {	/* including the NUL */
		send_str(p->a, msg + i, 1);
		assert_int_equal(vl_stream_read(&p->s), 1);
		if (i + 1 < sizeof(msg)) {
			assert_int_equal(vl_stream_next(&p->s, &o, &fds), 0);
			assert_true(vl_stream_has_partial(&p->s));
		}
	}
	o = next_ok(&p->s, &fds);
	assert_true(json_object_is_type(o, json_type_object));
	json_object_put(o);
	assert_false(vl_stream_has_partial(&p->s));
}

static void test_fds_with_first_byte(void **state)
{
	struct pair *p = *state;
	struct vl_fds fds;
	struct json_object *o;
	struct stat st1, st2;
	int pfd[2], mfd;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	mfd = memfd_create("t", MFD_CLOEXEC);
	assert_true(mfd >= 0);
	{
		int two[2] = { pfd[1], mfd };

		send_fds(p->a, "{\"n\":1}", 8, two, 2);
	}
	assert_int_equal(drain(&p->s), -EAGAIN);
	send_str(p->a, "{\"n\":2}", 8);
	assert_int_equal(drain(&p->s), -EAGAIN);

	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 1);
	json_object_put(o);
	assert_int_equal(fds.n, 2);
	assert_int_equal(fstat(fds.fds[1], &st1), 0);
	assert_int_equal(fstat(mfd, &st2), 0);
	assert_true(st1.st_ino == st2.st_ino && st1.st_dev == st2.st_dev);
	assert_true(fcntl(fds.fds[0], F_GETFD) & FD_CLOEXEC);	/* MSG_CMSG_CLOEXEC */

	/* take / close */
	{
		int fd = vl_fds_take(&fds, 1);

		assert_true(fd >= 0);
		assert_int_equal(vl_fds_take(&fds, 1), -EBADF);
		assert_int_equal(vl_fds_take(&fds, 2), -EBADF);
		close(fd);
	}
	vl_fds_close(&fds);
	assert_int_equal(fds.n, 0);
	close(pfd[1]);
	assert_true(pipe_write_ends_closed(pfd[0]));

	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 2);
	assert_int_equal(fds.n, 0);
	json_object_put(o);
	close(pfd[0]);
	close(mfd);
}

static void test_fds_on_middle_byte(void **state)
{
	struct pair *p = *state;
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	send_str(p->a, "{\"n\":", 5);
	assert_int_equal(drain(&p->s), -EAGAIN);
	send_fds(p->a, "1}", 3, &pfd[1], 1);
	assert_int_equal(vl_stream_read(&p->s), -EPROTO);
	close(pfd[1]);
	assert_true(pipe_write_ends_closed(pfd[0]));	/* the stray fd was closed */
	close(pfd[0]);
}

static void test_fds_while_previous_fds_pending(void **state)
{
	struct pair *p = *state;
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	/* One message's fds on a byte that is not followed by its NUL yet... */
	send_fds(p->a, "{", 1, &pfd[1], 1);
	assert_int_equal(drain(&p->s), -EAGAIN);
	/* ...then more fds: a protocol error, and every fd is closed. */
	send_fds(p->a, "}", 2, &pfd[1], 1);
	assert_int_equal(vl_stream_read(&p->s), -EPROTO);
	close(pfd[1]);
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);
}

/*
 * Two messages queued before the reader wakes up: the kernel hands both over
 * in one recvmsg(), with the second message's fds. They must not be taken
 * for the first message's fds.
 */
static void test_fds_with_second_message_of_one_read(void **state)
{
	struct pair *p = *state;
	struct vl_fds fds;
	struct json_object *o;
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	send_str(p->a, "{\"n\":1}", 8);
	send_fds(p->a, "{\"n\":2}", 8, &pfd[1], 1);
	close(pfd[1]);
	close(pfd[0]);
	assert_int_equal(drain(&p->s), -EAGAIN);	/* -EPROTO would also be honest, but not silence */
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 1);
	json_object_put(o);
	assert_int_equal(fds.n, 0);
	vl_fds_close(&fds);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 2);
	json_object_put(o);
	assert_int_equal(fds.n, 1);
	vl_fds_close(&fds);
}

static void test_oversize(void **state)
{
	struct pair *p = *state;
	char big[1024];
	int r;

	memset(big, 'x', sizeof(big));
	send_str(p->a, big, sizeof(big));
	r = drain(&p->s);
	assert_int_equal(r, -EMSGSIZE);
	assert_true(p->s.in_len <= p->s.max_message);
}

static void test_exact_max_size(void **state)
{
	struct pair *p = *state;
	char msg[256];
	struct vl_fds fds;
	struct json_object *o;

	/* 255 bytes of JSON plus the NUL: exactly max_message. */
	memset(msg, ' ', sizeof(msg));
	msg[0] = '[';
	msg[253] = ']';
	msg[255] = '\0';
	send_str(p->a, msg, sizeof(msg));
	/* Read and take the message out, as the daemon does after every read. */
	assert_int_equal(vl_stream_read(&p->s), 256);
	o = next_ok(&p->s, &fds);
	assert_true(json_object_is_type(o, json_type_array));
	json_object_put(o);
}

static void test_invalid_json_continues(void **state)
{
	struct pair *p = *state;
	static const char msgs[] = "{bad\0{\"n\":1} trailing\0\0{\"n\":2}\0";
	struct vl_fds fds;
	struct json_object *o = (struct json_object *)1;
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	send_fds(p->a, msgs, sizeof(msgs) - 1, &pfd[1], 1);
	close(pfd[1]);
	assert_int_equal(drain(&p->s), -EAGAIN);
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), -EBADMSG);
	assert_null(o);
	assert_int_equal(fds.n, 0);
	assert_true(pipe_write_ends_closed(pfd[0]));	/* the bad message's fds are closed */
	close(pfd[0]);
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), -EBADMSG);	/* trailing garbage */
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), -EBADMSG);	/* empty */
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 2);
	json_object_put(o);
}

/*
 * max_values: a message with more '{', '[' and ',' than that is -E2BIG
 * (not parsed), its fds closed; one with exactly that many, and the next
 * messages, are parsed.
 */
static void test_max_values(void **state)
{
	struct pair *p = *state;
	static const char m1[] = "{\"a\":[1,2]}", m2[] = "{\"a\":[1,2],\"b\":{}}";
	static const char rest[] = "{\"s\":\"{[,{[,\"}\0{\"n\":3}\0";
	struct json_object *o = (struct json_object *)1;
	struct vl_fds fds;
	int pfd[2];

	p->s.max_values = 3;
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(write(p->a, m1, sizeof(m1)), (ssize_t)sizeof(m1));
	send_fds(p->a, m2, sizeof(m2), &pfd[1], 1);
	close(pfd[1]);
	assert_int_equal(write(p->a, rest, sizeof(rest) - 1), (ssize_t)sizeof(rest) - 1);
	assert_int_equal(drain(&p->s), -EAGAIN);
	o = next_ok(&p->s, &fds);	/* '{', '[', ',': three */
	json_object_put(o);
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), -E2BIG);	/* five */
	assert_null(o);
	assert_int_equal(fds.n, 0);
	assert_true(pipe_write_ends_closed(pfd[0]));	/* the refused message's fds are closed */
	close(pfd[0]);
	/* Inside a string they count too: a call never needs that many. */
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), -E2BIG);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 3);
	json_object_put(o);
	p->s.max_values = 0;
}

/* Text that is not UTF-8, or escapes a lone surrogate, is bad JSON; the stream goes on. */
static void test_invalid_utf8(void **state)
{
	struct pair *p = *state;
	static const char msgs[] = "{\"m\":\"\xff\"}\0{\"m\":\"\xc0\xaf\"}\0{\"m\":\"\\ud800\"}\0"
				   "{\"m\":\"\xc3\xa9\\ud83d\\ude00\"}\0";
	struct json_object *o, *m;
	struct vl_fds fds;

	assert_int_equal(write(p->a, msgs, sizeof(msgs) - 1), (ssize_t)sizeof(msgs) - 1);
	assert_int_equal(drain(&p->s), -EAGAIN);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vl_stream_next(&p->s, &o, &fds), -EBADMSG);
	o = next_ok(&p->s, &fds);
	assert_true(json_object_object_get_ex(o, "m", &m));
	assert_string_equal(json_object_get_string(m), "\xc3\xa9\xf0\x9f\x98\x80");
	json_object_put(o);
}

/*
 * Messages are parsed on the C locale (json-c parses in "C" anyway); the
 * thread's own locale is given back after each, whatever it was.
 */
static void test_parse_keeps_thread_locale(void **state)
{
	struct pair *p = *state;
	static const char msgs[] = "{\"n\":1.5}\0{\"n\":}\0";
	locale_t own = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0), before;
	struct json_object *o, *n;
	struct vl_fds fds;

	assert_non_null(own);
	assert_int_equal(write(p->a, msgs, sizeof(msgs) - 1), (ssize_t)sizeof(msgs) - 1);
	assert_int_equal(drain(&p->s), -EAGAIN);
	before = uselocale(own);
	o = next_ok(&p->s, &fds);
	assert_ptr_equal(uselocale((locale_t)0), own);
	assert_true(json_object_object_get_ex(o, "n", &n));
	assert_true(json_object_get_double(n) == 1.5);
	json_object_put(o);
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), -EBADMSG);
	assert_ptr_equal(uselocale((locale_t)0), own);
	uselocale(before);
	assert_ptr_equal(uselocale((locale_t)0), before);
	freelocale(own);
}

/* A message that would not be UTF-8 on the wire is refused, not sent. */
static void test_queue_refuses_invalid_utf8(void **state)
{
	struct pair *p = *state;
	struct json_object *m = json_object_new_object();

	json_object_object_add(m, "m", json_object_new_string("io.\xff"));
	assert_int_equal(vl_stream_queue(&p->s, m, NULL, 0), -EILSEQ);
	assert_int_equal(vl_stream_pending(&p->s), 0);
	json_object_put(m);
}

/* Any JSON value is a message; a bare number or null is not a framing error. */
static void test_scalar_messages(void **state)
{
	struct pair *p = *state;
	static const char msgs[] = "[1]\0\"s\"\0true\0" "42\0null\0";
	struct vl_fds fds;
	struct json_object *o;

	send_str(p->a, msgs, sizeof(msgs) - 1);
	assert_int_equal(drain(&p->s), -EAGAIN);
	for (int i = 0; i < 3; i++) {
		o = next_ok(&p->s, &fds);
		assert_non_null(o);
		json_object_put(o);
	}
	o = next_ok(&p->s, &fds);	/* 42 */
	assert_true(json_object_is_type(o, json_type_int));
	json_object_put(o);
	o = next_ok(&p->s, &fds);	/* null */
	json_object_put(o);
}

static void test_eof(void **state)
{
	struct pair *p = *state;

	shutdown(p->a, SHUT_WR);
	assert_int_equal(vl_stream_read(&p->s), 0);
}

/* Receive everything the stream sent, with the fds of each recvmsg. */
/*
 * Receive what is there, never reading across `boundary` in one recvmsg():
 * the kernel glues separately sent chunks into one read, so only reads that
 * start at a message boundary tell which byte the fds came with.
 */
static size_t recv_all(int sock, char *buf, size_t size, int *fds, unsigned *nfds, size_t *fd_offset,
		       size_t start, size_t boundary)
{
	size_t got = 0;

	*nfds = 0;
	for (;;) {
		size_t len = size - got;

		if (start + got < boundary && boundary - (start + got) < len)
			len = boundary - (start + got);
		{
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * VL_MAX_FDS)];
		} control;
		struct iovec iov = { .iov_base = buf + got, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf) };
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n <= 0)
			break;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			memcpy(fds + *nfds, CMSG_DATA(c), k * sizeof(int));
			*nfds += k;
			*fd_offset = got;
		}
		got += (size_t)n;
		}
	}
	return got;
}

static void test_queue_flush_with_fds(void **state)
{
	struct pair *p = *state;
	struct json_object *m1 = json_tokener_parse("{\"parameters\":{\"n\":1}}");
	struct json_object *m2 = json_tokener_parse("{\"parameters\":{\"n\":2}}");
	char buf[512];
	int fds[VL_MAX_FDS], pfd[2];
	unsigned nfds;
	size_t off = 99, got;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(vl_stream_queue(&p->s, m1, NULL, 0), 0);
	assert_int_equal(vl_stream_queue(&p->s, m2, &pfd[1], 1), 0);
	assert_true(vl_stream_pending(&p->s) == 2 * strlen("{\"parameters\":{\"n\":1}}") + 2);
	/* The stream holds its own duplicate: closing ours keeps the pipe open. */
	close(pfd[1]);
	assert_int_equal(vl_stream_flush(&p->s), 0);
	assert_true(vl_stream_pending(&p->s) == 0);

	got = recv_all(p->a, buf, sizeof(buf), fds, &nfds, &off, 0, strlen("{\"parameters\":{\"n\":1}}") + 1);
	assert_true(got == 2 * (strlen("{\"parameters\":{\"n\":1}}") + 1));
	assert_memory_equal(buf, "{\"parameters\":{\"n\":1}}\0{\"parameters\":{\"n\":2}}\0", got);
	assert_int_equal(nfds, 1);
	assert_true(off == strlen("{\"parameters\":{\"n\":1}}") + 1);	/* with message 2's first byte */
	/* Sent: the stream's copy is closed, ours is the only write end. */
	close(fds[0]);
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);

	assert_int_equal(vl_stream_queue(&p->s, m1, NULL, VL_MAX_FDS + 1), -EINVAL);
	{
		int bad = 12345;

		assert_int_equal(vl_stream_queue(&p->s, m1, &bad, 1), -EBADF);
		assert_true(vl_stream_pending(&p->s) == 0);
	}
	json_object_put(m1);
	json_object_put(m2);
}

/* vl_stream_send() with nothing queued: out at once, the fd passed without a copy kept. */
static void test_send_at_once(void **state)
{
	struct pair *p = *state;
	struct json_object *m = json_tokener_parse("{\"parameters\":{\"n\":1}}");
	char buf[512];
	int fds[VL_MAX_FDS], pfd[2];
	unsigned nfds;
	size_t off = 99, got;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(vl_stream_send(&p->s, m, &pfd[1], 1), 0);
	/* Nothing queued: the stream holds neither bytes nor an fd of its own. */
	assert_true(vl_stream_pending(&p->s) == 0);
	assert_int_equal(vl_stream_pending_fds(&p->s), 0);
	got = recv_all(p->a, buf, sizeof(buf), fds, &nfds, &off, 0, sizeof(buf));
	assert_true(got == strlen("{\"parameters\":{\"n\":1}}") + 1);
	assert_int_equal(nfds, 1);
	assert_true(off == 0);
	close(fds[0]);
	close(pfd[1]);
	/* No duplicate was made: with ours and the received one closed, the pipe has no writer. */
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);
	json_object_put(m);
}

/* vl_stream_send() behind a queued message queues too: order and fd placement kept. */
static void test_send_behind_queue(void **state)
{
	struct pair *p = *state;
	struct json_object *m1 = json_tokener_parse("{\"parameters\":{\"n\":1}}");
	struct json_object *m2 = json_tokener_parse("{\"parameters\":{\"n\":2}}");
	size_t len = strlen("{\"parameters\":{\"n\":1}}") + 1, off = 99, got;
	char buf[512];
	int fds[VL_MAX_FDS], pfd[2];
	unsigned nfds;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(vl_stream_queue(&p->s, m1, NULL, 0), 0);
	assert_int_equal(vl_stream_send(&p->s, m2, &pfd[1], 1), 0);
	assert_true(vl_stream_pending(&p->s) == 2 * len);
	assert_int_equal(vl_stream_pending_fds(&p->s), 1);
	close(pfd[1]);
	assert_int_equal(vl_stream_flush(&p->s), 0);
	got = recv_all(p->a, buf, sizeof(buf), fds, &nfds, &off, 0, len);
	assert_true(got == 2 * len);
	assert_memory_equal(buf, "{\"parameters\":{\"n\":1}}\0{\"parameters\":{\"n\":2}}\0", got);
	assert_int_equal(nfds, 1);
	assert_true(off == len);
	close(fds[0]);
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);
	json_object_put(m1);
	json_object_put(m2);
}

/* vl_stream_drained(): set by a read that took all there was, not by one that left a message. */
/* True when the socket holds nothing (the stream took everything). */
static bool socket_empty(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

/*
 * Unpeeked: one recvmsg() takes both messages; reads return them one at a
 * time, the second from the stream's stash, with no system call.
 */
static void test_unpeeked_one_recvmsg(void **state)
{
	struct pair *p = *state;
	struct vl_fds fds;
	struct json_object *o;

	send_str(p->a, "{\"n\":1}\0{\"n\":2}\0{\"n\"", 20);
	assert_int_equal(vl_stream_read(&p->s), 8);
	assert_true(socket_empty(p->b));
	assert_true(vl_stream_stashed(&p->s));
	assert_false(vl_stream_drained(&p->s));
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 1);
	json_object_put(o);
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), 0);	/* one message per read */
	assert_int_equal(vl_stream_read(&p->s), 8);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 2);
	json_object_put(o);
	assert_int_equal(vl_stream_read(&p->s), 4);	/* the partial rest */
	assert_false(vl_stream_stashed(&p->s));
	assert_true(vl_stream_drained(&p->s));
	assert_true(vl_stream_has_partial(&p->s));
	send_str(p->a, ":3}", 4);
	assert_int_equal(vl_stream_read(&p->s), 4);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 3);
	assert_int_equal(fds.n, 0);
	json_object_put(o);
	assert_false(vl_stream_has_partial(&p->s));
	assert_int_equal(vl_stream_read(&p->s), -EAGAIN);
}

/*
 * Unpeeked: a message without fds glued in front of one with fds by the
 * kernel (one recvmsg). The fds go to the message that refers to them, and
 * the stream peeks from then on.
 */
static void test_unpeeked_fds_glued(void **state)
{
	static const char with[] = "{\"parameters\":{\"memfdFileDescriptor\":0}}";
	struct pair *p = *state;
	struct vl_fds fds;
	struct json_object *o;
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	send_str(p->a, "{\"n\":1}", 8);
	send_fds(p->a, with, sizeof(with), &pfd[1], 1);
	close(pfd[1]);
	assert_int_equal(vl_stream_read(&p->s), 8);
	assert_true(socket_empty(p->b));
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 1);
	assert_int_equal(fds.n, 0);
	json_object_put(o);
	assert_int_equal(drain(&p->s), -EAGAIN);
	o = next_ok(&p->s, &fds);
	assert_true(vl_message_refers_to_fds(o));
	assert_int_equal(fds.n, 1);
	json_object_put(o);
	vl_fds_close(&fds);
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);

	/* Peeked now: a read stops at the end of a message, the rest stays in the socket. */
	send_str(p->a, "{\"n\":2}\0{\"n\":3}", 16);
	assert_int_equal(vl_stream_read(&p->s), 8);
	assert_false(vl_stream_stashed(&p->s));
	assert_false(socket_empty(p->b));
}

/* Unpeeked, glued, and no message of the read refers to fds: nobody gets them, and they are closed. */
static void test_unpeeked_fds_unreferenced(void **state)
{
	struct pair *p = *state;
	struct vl_fds fds;
	struct json_object *o;
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	send_str(p->a, "{\"n\":1}", 8);
	send_fds(p->a, "{bad\0{\"n\":3}", 13, &pfd[1], 1);
	close(pfd[1]);
	assert_int_equal(drain(&p->s), -EAGAIN);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 1);
	assert_int_equal(fds.n, 0);
	json_object_put(o);
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), -EBADMSG);
	assert_int_equal(fds.n, 0);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 3);
	assert_int_equal(fds.n, 0);
	json_object_put(o);
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);
}

/*
 * Unpeeked, glued: the message that refers to the fds is the last one the
 * read started, and its rest comes later; a message of the same read after
 * the one that took them gets none.
 */
static void test_unpeeked_fds_partial_candidate(void **state)
{
	struct pair *p = *state;
	struct vl_fds fds;
	struct json_object *o;
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	send_str(p->a, "{\"n\":1}", 8);
	send_fds(p->a, "{\"n\":2,\"parameters\":{\"aFileDescriptor\":0}", 41, &pfd[1], 1);
	close(pfd[1]);
	assert_int_equal(drain(&p->s), -EAGAIN);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 1);
	assert_int_equal(fds.n, 0);
	json_object_put(o);
	assert_int_equal(vl_stream_next(&p->s, &o, &fds), 0);
	send_str(p->a, "}\0{\"n\":3,\"parameters\":{\"bFileDescriptor\":0}}", 45);
	assert_int_equal(drain(&p->s), -EAGAIN);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 2);
	assert_int_equal(fds.n, 1);
	json_object_put(o);
	vl_fds_close(&fds);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 3);
	assert_int_equal(fds.n, 0);
	json_object_put(o);
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);
}

/*
 * The rest of a partial message and the next message in one chunk with fds:
 * the fds came on a middle byte of the first, not with the second (whose
 * start is in the same read if it is not peeked): refused.
 */
static void test_unpeeked_fds_mid_message(void **state)
{
	struct pair *p = *state;
	static const char rest[] = "\"x\":0}\0{\"n\":2,\"parameters\":{\"aFileDescriptor\":0}}";
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	send_str(p->a, "{\"n\":1,", 7);
	assert_int_equal(drain(&p->s), -EAGAIN);
	send_fds(p->a, rest, sizeof(rest), &pfd[1], 1);
	close(pfd[1]);
	assert_int_equal(drain(&p->s), -EPROTO);
	assert_int_equal(vl_stream_pending_fds(&p->s), 0);
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);
}

/* Input buffers go to the owner's cache between messages and come back from it for the next read. */
static void test_buf_cache(void **state)
{
	struct pair *p = *state;
	struct vl_buf_cache cache = { 0 };
	struct vl_fds fds;
	struct json_object *o;
	char *buf;

	p->s.buf_cache = &cache;
	p->s.max_message = 1 << 16;	/* buffers of the first read's 4 KiB */
	send_str(p->a, "{\"n\":1}", 8);
	assert_int_equal(vl_stream_read(&p->s), 8);
	buf = p->s.in;
	vl_stream_trim(&p->s);	/* a message is buffered: kept */
	assert_ptr_equal(p->s.in, buf);
	o = next_ok(&p->s, &fds);
	json_object_put(o);
	vl_stream_trim(&p->s);
	assert_null(p->s.in);
	assert_int_equal(cache.n, 1);
	assert_ptr_equal(cache.bufs[0], buf);

	send_str(p->a, "{\"n\":2}", 8);
	assert_int_equal(vl_stream_read(&p->s), 8);
	assert_ptr_equal(p->s.in, buf);
	assert_int_equal(cache.n, 0);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 2);
	json_object_put(o);

	/* A full cache takes no more. */
	cache.n = VL_BUF_CACHE_MAX;
	for (unsigned i = 0; i < VL_BUF_CACHE_MAX; i++)
		cache.bufs[i] = malloc(1);
	vl_stream_trim(&p->s);
	assert_null(p->s.in);
	assert_int_equal(cache.n, VL_BUF_CACHE_MAX);
	vl_buf_cache_done(&cache);
	assert_int_equal(cache.n, 0);
	p->s.buf_cache = NULL;
}

static void test_drained(void **state)
{
	struct pair *p = *state;

	send_str(p->a, "{\"n\":1}", 8);
	assert_int_equal(vl_stream_read(&p->s), 8);
	assert_true(vl_stream_drained(&p->s));
	send_str(p->a, "{\"n\":2}\0{\"n\":3}", 16);
	assert_int_equal(vl_stream_read(&p->s), 8);	/* one message per read */
	assert_false(vl_stream_drained(&p->s));
	assert_int_equal(vl_stream_read(&p->s), 8);
	assert_true(vl_stream_drained(&p->s));
	assert_int_equal(vl_stream_read(&p->s), -EAGAIN);
}

static void test_partial_writes_small_sndbuf(void **state)
{
	struct pair *p = *state;
	size_t big = 300 * 1024, total = 0, want;
	char *text = malloc(big + 64), *rx = malloc(2 * big + 256);
	struct json_object *m;
	int sndbuf = 4096, pfd[2], fds[VL_MAX_FDS], flushes = 0, r;
	unsigned nfds_total = 0;
	size_t fd_at = 0;

	assert_non_null(text);
	assert_non_null(rx);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(setsockopt(p->b, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	memset(text, 'q', big);
	text[big] = '\0';
	m = json_object_new_object();
	json_object_object_add(m, "s", json_object_new_string(text));
	assert_int_equal(vl_stream_queue(&p->s, m, &pfd[1], 1), 0);
	assert_int_equal(vl_stream_queue(&p->s, m, &pfd[1], 1), 0);
	want = vl_stream_pending(&p->s);
	assert_true(want == 2 * (big + strlen("{\"s\":\"\"}") + 1));
	close(pfd[1]);

	for (;;) {
		unsigned n;
		size_t off = 0, got;

		r = vl_stream_flush(&p->s);
		flushes++;
		assert_true(r == 0 || r == -EAGAIN);
		got = recv_all(p->a, rx + total, 2 * big + 256 - total, fds + nfds_total, &n, &off, total, want / 2);
		if (n) {
			if (nfds_total == 0)
				assert_true(total + off == 0);
			else
				fd_at = total + off;
			nfds_total += n;
		}
		total += got;
		if (r == 0 && vl_stream_pending(&p->s) == 0)
			break;
		assert_true(flushes < 100000);
	}
	total += recv_all(p->a, rx + total, 2 * big + 256 - total, fds + nfds_total, &(unsigned){ 0 }, &fd_at, total,
			  want / 2);
	assert_true(flushes > 2);		/* it really went in pieces */
	assert_true(total == want);
	assert_int_equal(nfds_total, 2);
	assert_true(fd_at == want / 2);		/* second fd with the second message's first byte */
	assert_int_equal(rx[want / 2 - 1], '\0');
	assert_int_equal(rx[want - 1], '\0');
	assert_memory_equal(rx, rx + want / 2, want / 2);
	close(fds[0]);
	close(fds[1]);
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);
	json_object_put(m);
	free(text);
	free(rx);
}

static void test_done_closes_pending(void **state)
{
	struct pair *p = *state;
	struct json_object *m = json_object_new_object();
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	/* Input fds of an unfinished message, and output never flushed. */
	send_fds(p->a, "{", 1, &pfd[1], 1);
	assert_int_equal(drain(&p->s), -EAGAIN);
	assert_int_equal(vl_stream_queue(&p->s, m, &pfd[1], 1), 0);
	close(pfd[1]);
	vl_stream_done(&p->s);
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);
	json_object_put(m);
}

/*
 * One call at a time: reads are not peeked even after the peer has sent fds
 * (a stream told only which messages refer to fds peeks from then on): one
 * recvmsg() takes what there is, and the reads hand it out one message at a
 * time, each with its own fds.
 */
static void test_one_at_a_time_never_peeks(void **state)
{
	static const char with[] = "{\"parameters\":{\"fileDescriptor\":0}}";
	struct pair *p = *state;
	struct vl_fds fds;
	struct json_object *o;
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	send_fds(p->a, with, sizeof(with), &pfd[1], 1);
	close(pfd[1]);
	assert_int_equal(vl_stream_read(&p->s), (int)sizeof(with));
	o = next_ok(&p->s, &fds);
	assert_int_equal(fds.n, 1);
	json_object_put(o);
	vl_fds_close(&fds);
	assert_true(pipe_write_ends_closed(pfd[0]));
	close(pfd[0]);

	send_str(p->a, "{\"n\":2}\0{\"n\":3}", 16);
	assert_int_equal(vl_stream_read(&p->s), 8);
	assert_true(vl_stream_stashed(&p->s));	/* taken by the one recvmsg() */
	assert_true(socket_empty(p->b));
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 2);
	json_object_put(o);
	assert_int_equal(vl_stream_read(&p->s), 8);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 3);
	assert_int_equal(fds.n, 0);
	json_object_put(o);
	assert_int_equal(vl_stream_read(&p->s), -EAGAIN);
}

/* A child that writes msg to sock after delay_ms; returns its pid. */
static pid_t write_later(int sock, const char *msg, size_t len, unsigned delay_ms)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(delay_ms * 1000);
		_exit(write(sock, msg, len) == (ssize_t)len ? 0 : 1);
	}
	return pid;
}

static void reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * vl_stream_read_wait() waits in the read for the message that is not there
 * yet (peeked or not), and gives up with -EAGAIN after SO_RCVTIMEO; the
 * non-waiting read returns -EAGAIN at once.
 */
static void test_read_wait(void **state)
{
	struct pair *p = *state;
	struct timeval tv = { .tv_usec = 50 * 1000 };
	struct vl_fds fds;
	struct json_object *o;
	pid_t pid;

	assert_int_equal(vl_stream_read(&p->s), -EAGAIN);
	pid = write_later(p->a, "{\"n\":1}", 8, 100);
	assert_int_equal(vl_stream_read_wait(&p->s), 8);
	reap(pid);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 1);
	json_object_put(o);

	assert_int_equal(setsockopt(p->b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(vl_stream_read_wait(&p->s), -EAGAIN);
	/* Bytes already taken from the socket are returned without waiting. */
	send_str(p->a, "{\"n\":2}\0{\"n\":3}", 16);
	assert_int_equal(vl_stream_read_wait(&p->s), 8);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 2);
	json_object_put(o);
	assert_int_equal(vl_stream_read_wait(&p->s), 8);
	o = next_ok(&p->s, &fds);
	expect_int_member(o, "n", 3);
	json_object_put(o);
	assert_int_equal(vl_stream_read_wait(&p->s), -EAGAIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_several_messages_one_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_message_many_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_with_first_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_on_middle_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_while_previous_fds_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_with_second_message_of_one_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exact_max_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_json_continues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scalar_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_flush_with_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_behind_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_writes_small_sndbuf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_done_closes_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_keeps_thread_locale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_refuses_invalid_utf8, setup, teardown),
		/* Unpeeked reads: what holds for peeked ones... */
		cmocka_unit_test_setup_teardown(test_several_messages_one_write, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_one_message_many_writes, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_fds_with_first_byte, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_fds_on_middle_byte, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_fds_while_previous_fds_pending, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_oversize, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_exact_max_size, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_done_closes_pending, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_max_values, setup_unpeeked, teardown),
		/* ...and what is theirs. */
		cmocka_unit_test_setup_teardown(test_buf_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpeeked_one_recvmsg, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_unpeeked_fds_glued, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_unpeeked_fds_unreferenced, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_unpeeked_fds_partial_candidate, setup_unpeeked, teardown),
		cmocka_unit_test_setup_teardown(test_unpeeked_fds_mid_message, setup_unpeeked, teardown),
		/* One call at a time: what holds for any stream, and what is its own. */
		cmocka_unit_test_setup_teardown(test_several_messages_one_write, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_one_message_many_writes, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_fds_with_first_byte, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_fds_on_middle_byte, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_fds_while_previous_fds_pending, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_oversize, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_exact_max_size, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_done_closes_pending, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_max_values, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_one_at_a_time_never_peeks, setup_one_at_a_time, teardown),
		cmocka_unit_test_setup_teardown(test_read_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_wait, setup_one_at_a_time, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
