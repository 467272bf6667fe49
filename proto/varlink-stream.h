/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * varlink-stream: the transport half of Varlink on a SOCK_STREAM Unix socket.
 *
 * Messages are JSON objects terminated by a NUL byte. File descriptors travel
 * with SCM_RIGHTS on the first byte of the message they belong to (systemd's
 * sd-varlink convention). This layer frames bytes and fds; it knows nothing
 * of what messages mean. It never blocks: callers poll (or use an event loop)
 * and call vl_stream_read()/vl_stream_flush() when the socket is ready.
 *
 * Not thread-safe: one stream belongs to one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct json_object;

/* The kernel's SCM_MAX_FD: at most this many fds travel with one message. */
#define VL_MAX_FDS 253

struct vl_out;

/*
 * Input buffers that streams give back between messages (vl_stream_trim),
 * for the next stream that reads to take again: set by an owner of many
 * streams on one thread, so that a message costs no malloc() and free() of
 * its buffer, while an idle stream still holds none. At most
 * VL_BUF_CACHE_MAX buffers of the first read's size.
 */
#define VL_BUF_CACHE_MAX 16
struct vl_buf_cache {
	unsigned n;
	char *bufs[VL_BUF_CACHE_MAX];
};

/* Frees the buffers a cache holds. */
void vl_buf_cache_done(struct vl_buf_cache *c);

struct vl_stream {
	int fd;
	size_t max_message;	/* largest message accepted, NUL included */
	/*
	 * Set by the owner: at most this many '{', '[' and ',' bytes in a
	 * message (about its number of values: each is an object json-c
	 * builds), or 0 for no limit.
	 */
	size_t max_values;
	/*
	 * Disposes of an fd the peer sent that this layer drops (a bad or
	 * misplaced message, the stream's end), and at the stream's end of the
	 * fds of unsent replies; takes ownership. NULL: close(). A daemon sets
	 * it so that no such close (which may block, or free a buffer) runs on
	 * its loop.
	 */
	void (*release_fd)(int fd);
	/*
	 * Set by the owner (after vl_stream_init), or NULL: does a message
	 * refer to fds sent with it (vl_message_refers_to_fds)? Without it,
	 * every read is peeked first and never crosses the end of a message,
	 * so fds always go to the message whose first byte they came with.
	 * With it, reads go straight to recvmsg() until the peer first sends
	 * fds (one system call per message, not two), and return one message
	 * at a time from what they took (in_stash). The kernel may glue
	 * messages without fds onto the front of one with fds in such a read;
	 * then the fds go to the first message of that read that refers to
	 * fds, or to none. A peer that sends fds with the message that refers
	 * to them, as the protocol says, gets exactly what the peeked read
	 * gives it. From then on its stream peeks again.
	 */
	bool (*refers_to_fds)(struct json_object *msg);
	/*
	 * Set by the owner: the peer sends a message only in answer to one of
	 * ours, and we never have more than one out (a synchronous client).
	 * No read can then take a second message, so none is peeked: one
	 * system call per read.
	 */
	bool one_at_a_time;
	/* Set by the owner, or NULL: where the input buffer goes between messages (see above). */
	struct vl_buf_cache *buf_cache;

	/* Input: bytes received but not yet returned as messages. */
	char *in;
	size_t in_len;
	size_t in_cap;
	size_t in_scanned;	/* bytes of in[] known to hold no NUL */
	size_t in_stash;	/* bytes after in[in_len] taken from the socket, not yet returned by a read */
	/*
	 * Fds that arrived with in[in_fds_at], the first byte of a buffered
	 * message. One such message at a time: a reader that lets two
	 * fd-carrying messages pile up unread gets -EPROTO. Allocated
	 * (VL_MAX_FDS entries) when fds arrive, freed when they are taken.
	 */
	int *in_fds;
	unsigned in_nfds;
	size_t in_fds_at;
	/*
	 * in_fds_guess: the read they came with started several messages (an
	 * unpeeked read): they belong to the first message from in[in_fds_at]
	 * up to the one starting at in[in_fds_last] that refers to fds.
	 */
	size_t in_fds_last;
	bool in_fds_guess;
	bool fds_seen;		/* the peer has sent fds: peek before each read */
	bool sock_empty;	/* the last recvmsg() took all the socket held */
	bool drained;		/* the last read took all the socket held */
	struct json_tokener *tok;	/* the stream's parser, reset per message */
	/*
	 * Set by the owner: a parser shared by all its streams on this thread
	 * (each message is parsed whole, so no state is left in it between
	 * messages); the stream never frees it, and has no tok of its own then.
	 */
	struct json_tokener *shared_tok;

	/* Output: queued messages, each with the fds for its first byte. */
	struct vl_out *out_head;
	struct vl_out *out_tail;
	size_t out_bytes;
	unsigned out_nfds;	/* fds held by queued messages */
};

/* A received message's fds; the receiver owns them and must close them. */
struct vl_fds {
	int fds[VL_MAX_FDS];
	unsigned n;
};

void vl_stream_init(struct vl_stream *s, int fd, size_t max_message);
/* Frees buffers and closes pending fds; does not close s->fd. */
void vl_stream_done(struct vl_stream *s);

/*
 * Receive once from the socket, or take the next message from what an
 * earlier read took (in_stash): never past the end of a message, so one
 * read completes at most one message. Returns bytes read (> 0), 0 on end of file,
 * -EAGAIN when nothing is there, -EPROTO when fds arrived truncated, with a
 * byte that does not start a message, or while another buffered message's
 * fds are still pending, -EMSGSIZE when a message grows past max_message, or another
 * negative errno. After any error but -EAGAIN the connection is unusable.
 */
int vl_stream_read(struct vl_stream *s);

/*
 * vl_stream_read(), but when nothing is there it waits in the read itself
 * (the socket must not be O_NONBLOCK): until data comes, the socket's
 * SO_RCVTIMEO passes (-EAGAIN) or a signal handler runs (-EINTR). One system
 * call instead of a read, a poll() and a read again.
 */
int vl_stream_read_wait(struct vl_stream *s);

/*
 * True when the last vl_stream_read() took everything the socket held then:
 * a caller woken by a level-triggered poll may wait for the next wake-up
 * instead of reading again only to get -EAGAIN.
 */
static inline bool vl_stream_drained(const struct vl_stream *s)
{
	return s->drained;
}

/*
 * True when bytes already taken from the socket wait for the next
 * vl_stream_read(): a caller that waits for the socket to become readable
 * must not wait for them (they are no longer in the socket).
 */
static inline bool vl_stream_stashed(const struct vl_stream *s)
{
	return s->in_stash > 0;
}

/*
 * Take the next complete message out of the input buffer. Returns 1 and sets
 * *ret (a JSON value, owned by the caller; may be any JSON type) and moves the
 * message's fds into *ret_fds; returns 0 when no complete message is buffered;
 * returns -EBADMSG when the message is not valid JSON in well-formed UTF-8, or
 * escapes a lone UTF-16 surrogate, and -E2BIG when it has more than
 * max_values of '{', '[' and ',' (not parsed); in both cases the message and
 * its fds are dropped, and the stream stays usable.
 */
int vl_stream_next(struct vl_stream *s, struct json_object **ret, struct vl_fds *ret_fds);

/*
 * Give back what an idle stream holds: the input buffer when no byte of a
 * message is buffered (the next read allocates it again). A server with many
 * idle connections calls it after each read, so that a connection costs its
 * buffer only while a message is arriving.
 */
void vl_stream_trim(struct vl_stream *s);

/* True when a partial message is buffered (or bytes wait in in_stash). */
bool vl_stream_has_partial(const struct vl_stream *s);

/*
 * Queue a message. The fds are duplicated (F_DUPFD_CLOEXEC), so the caller
 * keeps its own. Returns 0 or a negative errno (-EILSEQ: a string in msg is
 * not UTF-8, and nothing was queued).
 */
int vl_stream_queue(struct vl_stream *s, struct json_object *msg, const int *fds, unsigned nfds);

/*
 * Like vl_stream_queue(), but when nothing is queued yet it sends at once:
 * the fds are then passed without being duplicated. What the socket does not
 * take now is queued as above (its fds duplicated). Returns 0 or a negative
 * errno as vl_stream_queue(); a failed send queues the message, so that the
 * next vl_stream_flush() reports the error.
 */
int vl_stream_send(struct vl_stream *s, struct json_object *msg, const int *fds, unsigned nfds);

/*
 * vl_stream_send() of a message already in text form (a vl_writer's): len
 * bytes with the NUL that ends them. The caller vouches that it is one
 * JSON object in UTF-8.
 */
int vl_stream_send_text(struct vl_stream *s, const char *text, size_t len, const int *fds, unsigned nfds);

/*
 * Send what is queued. Returns 0 when the queue is empty, -EAGAIN when the
 * socket is full, another negative errno (e.g. -EPIPE) when the peer is gone.
 */
int vl_stream_flush(struct vl_stream *s);

/*
 * One non-blocking sendmsg() of data with nfds fds (at most VL_MAX_FDS) as
 * SCM_RIGHTS on its first byte, without SIGPIPE. Returns the bytes sent,
 * -EAGAIN when the socket is full, or another negative errno.
 */
ssize_t vl_send_fds(int fd, const void *data, size_t len, const int *fds, unsigned nfds);

static inline size_t vl_stream_pending(const struct vl_stream *s)
{
	return s->out_bytes;
}

/* Fds held open by queued messages (each a resource of the sender's). */
static inline unsigned vl_stream_pending_fds(const struct vl_stream *s)
{
	return s->out_nfds;
}

/* Close every fd in a set and empty it. */
void vl_fds_close(struct vl_fds *f);
/* Take fd number i out of the set (the caller owns it); -EBADF if none. */
int vl_fds_take(struct vl_fds *f, unsigned i);
