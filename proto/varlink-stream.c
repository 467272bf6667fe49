/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "varlink-stream.h"
#include "varlink-utf8.h"
#include "varlink-writer.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#define VL_READ_CHUNK 4096

struct vl_out {
	struct vl_out *next;
	char *data;
	size_t len;
	size_t off;
	unsigned nfds;
	int fds[];
};

void vl_stream_init(struct vl_stream *s, int fd, size_t max_message)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->max_message = max_message;
}

static void close_fds(int *fds, unsigned *n)
{
	for (unsigned i = 0; i < *n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	*n = 0;
}

/* Dispose of fds the peer sent (or unsent ones): through the stream's release_fd, if any. */
static void release_fds(struct vl_stream *s, int *fds, unsigned *n)
{
	if (!s->release_fd) {
		close_fds(fds, n);
		return;
	}
	for (unsigned i = 0; i < *n; i++)
		if (fds[i] >= 0)
			s->release_fd(fds[i]);
	*n = 0;
}

/* Dispose of the fds pending for a buffered message, and of their array. */
static void release_in_fds(struct vl_stream *s)
{
	if (s->in_fds)
		release_fds(s, s->in_fds, &s->in_nfds);
	free(s->in_fds);
	s->in_fds = NULL;
	s->in_nfds = 0;
	s->in_fds_guess = false;
}

static void vl_out_free(struct vl_out *o)
{
	close_fds(o->fds, &o->nfds);
	free(o->data);
	free(o);
}

void vl_stream_done(struct vl_stream *s)
{
	struct vl_out *o, *next;

	release_in_fds(s);
	free(s->in);
	s->in = NULL;
	s->in_len = s->in_cap = s->in_scanned = s->in_stash = 0;
	/*
	 * Unsent replies' fds go the same way: one of them may be the last
	 * reference to a buffer, and its release must not run here.
	 */
	for (o = s->out_head; o; o = next) {
		next = o->next;
		release_fds(s, o->fds, &o->nfds);
		vl_out_free(o);
	}
	s->out_head = s->out_tail = NULL;
	s->out_bytes = 0;
	s->out_nfds = 0;
	if (s->tok)
		json_tokener_free(s->tok);
	s->tok = NULL;
}

void vl_fds_close(struct vl_fds *f)
{
	close_fds(f->fds, &f->n);
}

int vl_fds_take(struct vl_fds *f, unsigned i)
{
	int fd;

	if (i >= f->n || f->fds[i] < 0)
		return -EBADF;
	fd = f->fds[i];
	f->fds[i] = -1;
	return fd;
}

void vl_buf_cache_done(struct vl_buf_cache *c)
{
	while (c->n > 0)
		free(c->bufs[--c->n]);
}

void vl_stream_trim(struct vl_stream *s)
{
	struct vl_buf_cache *c = s->buf_cache;

	if (s->in_len > 0 || s->in_stash > 0 || !s->in)
		return;
	if (c && c->n < VL_BUF_CACHE_MAX && s->in_cap == VL_READ_CHUNK)
		c->bufs[c->n++] = s->in;
	else
		free(s->in);
	s->in = NULL;
	s->in_cap = s->in_scanned = 0;
}

bool vl_stream_has_partial(const struct vl_stream *s)
{
	return s->in_len > 0 || s->in_stash > 0;
}

/* Make room for one more chunk, never past max_message. */
static int grow_input(struct vl_stream *s, size_t *ret_room)
{
	size_t want, room;

	if (s->in_len >= s->max_message)
		return -EMSGSIZE;
	room = s->max_message - s->in_len;
	if (room > VL_READ_CHUNK)
		room = VL_READ_CHUNK;
	want = s->in_len + room;
	if (!s->in && want <= VL_READ_CHUNK && s->buf_cache && s->buf_cache->n > 0) {
		s->in = s->buf_cache->bufs[--s->buf_cache->n];
		s->in_cap = VL_READ_CHUNK;
	}
	if (want > s->in_cap) {
		size_t cap = s->in_cap ? s->in_cap : VL_READ_CHUNK;
		char *p;

		while (cap < want)
			cap *= 2;
		if (cap > s->max_message)
			cap = s->max_message;
		p = realloc(s->in, cap);
		if (!p)
			return -ENOMEM;
		s->in = p;
		s->in_cap = cap;
	}
	*ret_room = room;
	return 0;
}

/*
 * How much to read so that one read never crosses the end of a message: the
 * kernel may glue a later message's bytes (and its fds) onto a read, and fds
 * are only attributable when they come with a message's first byte. Sets
 * *ret_drained when the read will take all there is. A peek that waited
 * (flags without MSG_DONTWAIT) and found nothing returns -errno.
 */
static ssize_t read_limit(struct vl_stream *s, size_t room, bool *ret_drained, int flags)
{
	ssize_t n;
	char *nul;

	*ret_drained = false;
	n = recv(s->fd, s->in + s->in_len, room, MSG_PEEK | flags);
	if (n < 0 && !(flags & MSG_DONTWAIT) && (errno == EAGAIN || errno == EINTR))
		return -errno;
	if (n <= 0)
		return (ssize_t)room;	/* let recvmsg() report it */
	nul = memchr(s->in + s->in_len, 0, (size_t)n);
	if (nul && nul + 1 < s->in + s->in_len + n)
		return nul - (s->in + s->in_len) + 1;
	*ret_drained = (size_t)n < room;
	return n;
}

/* One read's worth of what an unpeeked read took: up to the next message's end. */
static int read_stash(struct vl_stream *s)
{
	char *p = s->in + s->in_len;
	char *nul = memchr(p, 0, s->in_stash);
	size_t n = nul ? (size_t)(nul - p) + 1 : s->in_stash;

	s->in_len += n;
	s->in_stash -= n;
	s->drained = s->in_stash == 0 && s->sock_empty;
	return (int)n;
}

/* The next byte read starts a message: nothing is buffered, or all of it ends in a NUL. */
static bool at_message_start(const struct vl_stream *s)
{
	return s->in_len == 0 || s->in[s->in_len - 1] == '\0';
}

/*
 * Fds came with the n bytes read into in[in_len]: note which buffered
 * message they belong to. They came with the first byte of the kernel's last
 * chunk in that read, which the protocol wants to be a message's first byte:
 * one of the messages starting in the read. Returns -EPROTO when none does,
 * or when another message's fds are still pending.
 */
static int place_fds(struct vl_stream *s, size_t n)
{
	size_t first = SIZE_MAX, last = 0;
	const char *nul;

	if (n == 0 || s->in_nfds > 0)
		return -EPROTO;
	if (at_message_start(s))
		first = last = s->in_len;
	/* Messages start after the NULs in the read, but for a last byte's. */
	nul = memchr(s->in + s->in_len, '\0', n - 1);
	if (nul) {
		if (first == SIZE_MAX)
			first = (size_t)(nul - s->in) + 1;
		last = (size_t)((const char *)memrchr(s->in + s->in_len, '\0', n - 1) - s->in) + 1;
	}
	if (first == SIZE_MAX)
		return -EPROTO;
	s->in_fds_at = first;
	s->in_fds_last = last;
	s->in_fds_guess = first != last;
	return 0;
}

/* One read; flags is MSG_DONTWAIT, or 0 to wait in it. */
static int stream_read(struct vl_stream *s, int flags)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * VL_MAX_FDS)];
	} control;
	struct msghdr mh = { 0 };
	struct iovec iov;
	struct cmsghdr *c;
	/*
	 * A read that continues a partial message is peeked as well: unpeeked,
	 * it could also take the next message's start, and fds on a middle
	 * byte of the first would pass for the next one's.
	 */
	bool peek = !s->one_at_a_time && (!s->refers_to_fds || s->fds_seen || !at_message_start(s));
	bool drained = false, got_fds = false;
	size_t room;
	ssize_t n;
	int r;

	if (s->in_stash > 0)
		return read_stash(s);
	r = grow_input(s, &room);
	if (r < 0)
		return r;

	iov.iov_base = s->in + s->in_len;
	iov.iov_len = room;
	if (peek) {
		n = read_limit(s, room, &drained, flags);
		if (n < 0)
			return (int)n;
		iov.iov_len = (size_t)n;
	}
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = control.buf;
	mh.msg_controllen = sizeof(control.buf);

	/* After a peek that found bytes, this read does not wait. */
	n = recvmsg(s->fd, &mh, flags | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;

	r = 0;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		int *fds = (int *)CMSG_DATA(c);
		unsigned nfds;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (unsigned i = 0; i < nfds; i++) {
			/* Fds belong to the first byte of a message (see place_fds). */
			if (!got_fds) {
				got_fds = true;
				s->fds_seen = true;
				r = place_fds(s, (size_t)n);
			}
			if (r == 0 && !s->in_fds) {
				s->in_fds = malloc(sizeof(int) * VL_MAX_FDS);
				if (!s->in_fds)
					r = -ENOMEM;
			}
			if (r == 0)
				s->in_fds[s->in_nfds++] = fds[i];
			else if (s->release_fd)
				s->release_fd(fds[i]);
			else
				close(fds[i]);
		}
	}
	if (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))
		r = -EPROTO;
	if (r < 0) {
		release_in_fds(s);
		return r;
	}

	if (!peek) {
		/* What follows the first message's end waits in in_stash for the next reads. */
		s->in_stash = (size_t)n;
		/* The kernel ends a read after a chunk with fds: more may wait. */
		s->sock_empty = (size_t)n < iov.iov_len && !got_fds;
		return read_stash(s);
	}
	s->in_len += (size_t)n;
	/* A short read that ended where the peek did took all there was. */
	s->drained = drained && (size_t)n == iov.iov_len;
	return (int)n;
}

int vl_stream_read(struct vl_stream *s)
{
	return stream_read(s, MSG_DONTWAIT);
}

int vl_stream_read_wait(struct vl_stream *s)
{
	return stream_read(s, 0);
}

/* The pending fds go to the message just taken out. */
static void take_in_fds(struct vl_stream *s, struct vl_fds *ret_fds)
{
	memcpy(ret_fds->fds, s->in_fds, sizeof(int) * s->in_nfds);
	ret_fds->n = s->in_nfds;
	s->in_nfds = 0;
	s->in_fds_guess = false;
	free(s->in_fds);
	s->in_fds = NULL;
}

/*
 * The message of len bytes just taken out was one the guessed fds may have
 * belonged to, and does not refer to fds: the next message is the next
 * candidate, if it started in their read; else nobody takes them.
 */
static void pass_in_fds(struct vl_stream *s, size_t len)
{
	if (s->in_fds_last > len) {
		s->in_fds_last -= len + 1;
		return;
	}
	release_in_fds(s);
}

/*
 * The C locale, made once. json-c 0.16 switches a thread's LC_NUMERIC to "C"
 * around every parse: duplocale, newlocale (which reads LOCPATH and compares
 * locale names), uselocale and freelocale. On a thread already on glibc's C
 * locale object each of those returns that object as it is, without
 * allocating, so messages are parsed on it and the thread's own locale is
 * given back after. Parsing is the same either way: json-c parses in "C".
 */
static locale_t c_locale(void)
{
	static locale_t made;
	locale_t c = __atomic_load_n(&made, __ATOMIC_ACQUIRE), none = (locale_t)0;

	if (c)
		return c;
	c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (c && !__atomic_compare_exchange_n(&made, &none, c, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		freelocale(c);
		c = none;
	}
	return c;
}

/* The characters that open a container or separate values: an upper bound on the values a text builds, less one. */
static const unsigned char starts_value[256] = { ['{'] = 1, ['['] = 1, [','] = 1 };

int vl_stream_next(struct vl_stream *s, struct json_object **ret, struct vl_fds *ret_fds)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	char *nul;
	size_t len;
	bool guess;

	ret_fds->n = 0;
	*ret = NULL;
	if (s->in_len == 0)
		return 0;
	nul = memchr(s->in + s->in_scanned, 0, s->in_len - s->in_scanned);
	if (!nul) {
		s->in_scanned = s->in_len;
		return 0;
	}
	len = (size_t)(nul - s->in);

	/* The message's fds, if any, arrived with in[0]; a guess is decided once it is parsed. */
	guess = s->in_nfds > 0 && s->in_fds_at == 0 && s->in_fds_guess;
	if (s->in_nfds > 0 && s->in_fds_at == 0 && !guess) {
		take_in_fds(s, ret_fds);
	} else if (s->in_nfds > 0 && !guess) {
		s->in_fds_at -= len + 1;
		s->in_fds_last -= len + 1;
	}

	/* Too many values to build: refused before json-c spends its time on them. */
	if (s->max_values > 0) {
		size_t n = 0;

		for (size_t i = 0; i < len && n <= s->max_values; i++)
			n += starts_value[(unsigned char)s->in[i]];
		if (n > s->max_values) {
			memmove(s->in, nul + 1, s->in_len - len - 1 + s->in_stash);
			s->in_len -= len + 1;
			s->in_scanned = 0;
			if (guess)
				pass_in_fds(s, len);
			release_fds(s, ret_fds->fds, &ret_fds->n);
			return -E2BIG;
		}
	}

	obj = NULL;
	jerr = json_tokener_error_parse_eof;
	/* One parser per stream (or the owner's shared one), reset for each message. */
	tok = s->shared_tok;
	if (!tok) {
		if (!s->tok)
			s->tok = json_tokener_new_ex(64);
		tok = s->tok;
	}
	if (tok)
		json_tokener_reset(tok);
	/* JSON text is UTF-8 and its escapes name characters (RFC 8259): else it is refused as bad JSON. */
	if (!vl_utf8_valid(s->in, len) || !vl_utf8_escapes_valid(s->in, len))
		tok = NULL;
	if (tok) {
		locale_t c = c_locale(), own = c ? uselocale(c) : (locale_t)0;

		/* With its NUL, so that a bare number or literal ends too. */
		obj = json_tokener_parse_ex(tok, s->in, (int)len + 1);
		jerr = json_tokener_get_error(tok);
		if (c)
			uselocale(own);
		/* The whole message must be exactly one JSON value. */
		if (jerr == json_tokener_success) {
			for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
				if (!strchr(" \t\r\n", s->in[i]))
					jerr = json_tokener_error_parse_unexpected;
		}
		if (jerr != json_tokener_success) {
			json_object_put(obj);
			obj = NULL;
		}
	}

	memmove(s->in, nul + 1, s->in_len - len - 1 + s->in_stash);
	s->in_len -= len + 1;
	s->in_scanned = 0;

	if (guess) {
		if (jerr == json_tokener_success && s->refers_to_fds && s->refers_to_fds(obj))
			take_in_fds(s, ret_fds);
		else
			pass_in_fds(s, len);
	}
	if (jerr != json_tokener_success) {
		release_fds(s, ret_fds->fds, &ret_fds->n);
		return -EBADMSG;
	}
	/* NULL here is JSON's null, a valid value (json-c has no object for it). */
	*ret = obj;
	return 1;
}

/*
 * The message's text, written by w (the caller's, initialised; its text is
 * valid until vl_writer_done()): at most VL_MAX_FDS fds, valid UTF-8, which a
 * standard client can decode, and all of it (json-c's printer may leave text
 * out when an allocation fails; the writer fails instead).
 */
static int message_text(struct json_object *msg, unsigned nfds, struct vl_writer *w, const char **ret_text,
			size_t *ret_len)
{
	if (nfds > VL_MAX_FDS)
		return -EINVAL;
	vl_writer_json(w, msg);
	return vl_writer_finish(w, ret_text, ret_len);
}

/* Queue len bytes of text (NUL included), with duplicates of the fds for its first byte. */
static int queue_text(struct vl_stream *s, const char *text, size_t len, const int *fds, unsigned nfds)
{
	struct vl_out *o;

	o = calloc(1, sizeof(*o) + sizeof(int) * nfds);
	if (!o)
		return -ENOMEM;
	o->data = malloc(len);
	if (!o->data) {
		free(o);
		return -ENOMEM;
	}
	memcpy(o->data, text, len);
	o->len = len;
	for (unsigned i = 0; i < nfds; i++) {
		int fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);

		if (fd < 0) {
			int r = -errno;

			vl_out_free(o);
			return r;
		}
		o->fds[o->nfds++] = fd;
	}

	if (s->out_tail)
		s->out_tail->next = o;
	else
		s->out_head = o;
	s->out_tail = o;
	s->out_bytes += len;
	s->out_nfds += o->nfds;
	return 0;
}

/* msg written (see message_text()), then sent at once where it can be, or queued. */
static int message_out(struct vl_stream *s, struct json_object *msg, const int *fds, unsigned nfds, bool now)
{
	struct vl_writer w;
	const char *text;
	size_t len;
	int r;

	vl_writer_init(&w);
	r = message_text(msg, nfds, &w, &text, &len);
	if (r == 0)
		r = now ? vl_stream_send_text(s, text, len, fds, nfds) : queue_text(s, text, len, fds, nfds);
	vl_writer_done(&w);
	return r;
}

int vl_stream_queue(struct vl_stream *s, struct json_object *msg, const int *fds, unsigned nfds)
{
	return message_out(s, msg, fds, nfds, false);
}

int vl_stream_send(struct vl_stream *s, struct json_object *msg, const int *fds, unsigned nfds)
{
	return message_out(s, msg, fds, nfds, true);
}

int vl_stream_send_text(struct vl_stream *s, const char *text, size_t len, const int *fds, unsigned nfds)
{
	ssize_t n;

	if (nfds > VL_MAX_FDS || len == 0 || text[len - 1] != '\0')
		return -EINVAL;
	if (s->out_head)
		return queue_text(s, text, len, fds, nfds);
	n = vl_send_fds(s->fd, text, len, fds, nfds);
	if (n <= 0)
		return queue_text(s, text, len, fds, nfds);	/* the flush sends it, or reports why not */
	/* The fds went with the first byte: the rest goes without them. */
	return (size_t)n < len ? queue_text(s, text + n, len - (size_t)n, NULL, 0) : 0;
}

ssize_t vl_send_fds(int fd, const void *data, size_t len, const int *fds, unsigned nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * VL_MAX_FDS)];
	} control;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > VL_MAX_FDS)
		return -EINVAL;
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

int vl_stream_flush(struct vl_stream *s)
{
	while (s->out_head) {
		struct vl_out *o = s->out_head;
		ssize_t n;

		/* The fds travel with the message's first byte only. */
		n = vl_send_fds(s->fd, o->data + o->off, o->len - o->off, o->fds, o->off == 0 ? o->nfds : 0);
		if (n < 0)
			return (int)n;
		/* The fds went with the first byte; ours can go now. */
		s->out_nfds -= o->nfds;
		close_fds(o->fds, &o->nfds);
		o->off += (size_t)n;
		s->out_bytes -= (size_t)n;
		if (o->off < o->len)
			continue;
		s->out_head = o->next;
		if (!s->out_head)
			s->out_tail = NULL;
		vl_out_free(o);
	}
	return 0;
}
