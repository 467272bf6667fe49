/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sockets and connections: accept with limits and EMFILE back-off, read and
 * frame messages, hand each to physmemd-varlink.c, write replies with their
 * fds, and drop clients that stall. What messages mean is not decided here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <malloc.h>
/* ASan cannot see a freed pool slot (the pool is mmap'd): mark it by hand. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define CONN_SLOT_POISON(c, n) ASAN_POISON_MEMORY_REGION(c, n)
#define CONN_SLOT_UNPOISON(c, n) ASAN_UNPOISON_MEMORY_REGION(c, n)
#else
#define CONN_SLOT_POISON(c, n) ((void)(c), (void)(n))
#define CONN_SLOT_UNPOISON(c, n) ((void)(c), (void)(n))
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <systemd/sd-daemon.h>

#include "physmemd.h"
#include "varlink-message.h"
#include "varlink-writer.h"

/* Reads per wake-up, so that one busy client cannot starve the others. */
#define READS_PER_WAKEUP 16

/* Fewest closes between two malloc_trim() calls (see server_closed). */
#define TRIM_MIN_CLOSES 64

static void conn_free(struct conn *c);
static void server_on_status(evutil_socket_t fd, short what, void *arg);
static void conn_update_events(struct conn *c);

/*
 * The loop's time is shared by uid. Every callback that accepts a
 * connection or reads or handles its messages charges the wall time it took
 * (reads, parsing, the method, the small jobs run inline, the close the
 * callback may end in) to the connection's uid. A uid that spent more than
 * loop-budget-us in its current window of loop-window-ms is "over": its
 * connections are read at PRIO_LOW, so while any other uid has something
 * ready it waits, and one of its callbacks stops after the read that took it
 * over. The loop runs PRIO_LOW callbacks for about LOW_RUN_NS before it
 * polls again (low_run_end()). When nobody else is ready the uid is served
 * at once (the budget costs a lone busy client nothing). When its window
 * ends (ev_budget) it is back at PRIO_NORMAL, so it is never starved: every
 * window it gets its budget. So a caller that is not over waits for the
 * message of an over uid being parsed and a millisecond, not for every
 * connection that uid has.
 */
static bool loop_budget_on(const struct server *s)
{
	return s->conf->loop_budget_us > 0 && s->ev_budget;
}

/* Make ev_budget fire at the monotonic time at (ns) at the latest. */
static void budget_timer_arm(struct server *s, uint64_t at, uint64_t now)
{
	struct timeval tv = timeval_from_ns(at > now ? at - now : 0);

	if (evtimer_pending(s->ev_budget, NULL) && s->budget_at <= at)
		return;
	s->budget_at = at;
	/* Out of memory: now, early (it arms itself again). */
	if (evtimer_add(s->ev_budget, &tv) < 0)
		event_active(s->ev_budget, EV_TIMEOUT, 0);
}

/*
 * Charge the loop time since *t to u (and restart *t); is u over its budget
 * now? A uid's record stays while its window has time charged, even when
 * it has no connection left (registry_usage_put); ev_budget, armed for the
 * window's end, clears it then.
 */
static bool usage_charge(struct server *s, struct usage *u, uint64_t *t)
{
	uint64_t now, window = s->conf->loop_window_ms * 1000000ULL;
	bool was;

	if (!u || !loop_budget_on(s))
		return false;
	now = monotonic_ns();
	was = u->loop_ns > 0 || u->loop_over;
	/* A new window; one that was over stays so until ev_budget has put its connections back. */
	if (now - u->loop_window >= window && !u->loop_over) {
		u->loop_window = now;
		u->loop_ns = 0;
	}
	if (now > *t)
		u->loop_ns += now - *t;
	*t = now;
	s->loop_uids += (u->loop_ns > 0 || u->loop_over) - was;
	/* Past its budget, and some other uid wants the loop too (alone, nobody would gain). */
	if (!u->loop_over && u->loop_ns > s->conf->loop_budget_us * 1000ULL && s->loop_uids > 1) {
		u->loop_over = true;
		log_debug("uid %u: %llu us of loop time in this window, past its budget: its reads wait for "
			  "others' for %llu ms", (unsigned)u->uid, (unsigned long long)(u->loop_ns / 1000),
			  (unsigned long long)((u->loop_window + window - now) / 1000000));
	}
	budget_timer_arm(s, u->loop_window + window, now);
	return u->loop_over;
}

static bool conn_charge(struct conn *c, uint64_t *t)
{
	return usage_charge(c->server, c->usage, t);
}

/* Keep u (may be NULL) while the loop works for it: what it does may free the connection that held it. */
static struct usage *usage_hold(struct usage *u)
{
	if (u)
		u->loop_refs++;
	return u;
}

/* Charge u for the time since *t and let it go. */
static void usage_release(struct server *s, struct usage *u, uint64_t *t)
{
	if (!u)
		return;
	usage_charge(s, u, t);
	u->loop_refs--;
	registry_usage_put(s->registry, u);
}

/* The worker pool's charge hook (worker_pool_set_charge): a job's loop work is its uid's. */
static void server_charge_job(void *ctx, uid_t uid, uint64_t since)
{
	struct server *s = ctx;
	uint64_t t = since;

	usage_release(s, usage_hold(registry_usage(s->registry, uid, false)), &t);
}

/* The worker pool's hold check: no release is held back near max-buffers (worker_pool_set_hold_check). */
static bool server_may_hold(void *ctx)
{
	const struct server *s = ctx;

	return s->registry->n_buffers + RELEASE_HOLD_TOTAL < s->registry->conf->max_buffers_total;
}

/* Should c's reads wait behind other uids'? (loop_over is only ever set with the budget on.) */
static bool conn_read_behind(const struct conn *c)
{
	return c->usage && c->usage->loop_over;
}

/*
 * Put c's read event at the priority its uid's budget says. Moving it down
 * from inside its own callback also makes it active again there, and the
 * callback returns: it runs once nothing of higher priority is ready.
 * Returns true when the caller must return.
 */
static bool conn_read_yield(struct conn *c)
{
	bool low = conn_read_behind(c);

	if (low == c->read_low)
		return false;
	if (event_priority_set(c->ev_read, low ? PRIO_LOW : PRIO_NORMAL) < 0)
		return false;	/* active: it keeps its priority this time */
	c->read_low = low;
	if (!low)
		return false;
	event_active(c->ev_read, EV_READ, 0);
	return true;
}

/*
 * A window ended: uids whose window is over start afresh (those past their
 * budget are back at PRIO_NORMAL), and a record that counts nothing else goes.
 */
static void server_on_budget(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	uint64_t now = monotonic_ns(), window = s->conf->loop_window_ms * 1000000ULL, next = UINT64_MAX;
	unsigned moved = 0, waiting = 0;
	struct usage *u, *u_next;
	struct conn *c;

	(void)fd;
	(void)what;
	for (u = TAILQ_FIRST(&s->registry->usage); u; u = u_next) {
		u_next = TAILQ_NEXT(u, entry);
		if (!u->loop_over && u->loop_ns == 0)
			continue;
		if (now - u->loop_window < window) {
			if (u->loop_window + window - now < next)
				next = u->loop_window + window - now;
			continue;
		}
		if (u->loop_over)
			log_debug("uid %u: a new loop budget window", (unsigned)u->uid);
		u->loop_over = false;
		u->loop_ns = 0;
		s->loop_uids--;
		registry_usage_put(s->registry, u);
	}
	TAILQ_FOREACH(c, &s->conns, entry) {
		if (!c->read_low || conn_read_behind(c))
			continue;
		moved++;
		/* An event already waiting at PRIO_LOW is taken out and put back at PRIO_NORMAL. */
		if (event_priority_set(c->ev_read, PRIO_NORMAL) == 0) {
			c->read_low = false;
			continue;
		}
		waiting++;
		event_del(c->ev_read);
		event_priority_set(c->ev_read, PRIO_NORMAL);
		c->read_low = false;
		conn_update_events(c);
	}
	if (moved)
		log_debug("loop budget: %u connections read at normal priority again, %u of them ready", moved, waiting);
	if (next != UINT64_MAX)
		budget_timer_arm(s, now + next, now);
}

/*
 * Connections (each with its three events) live in a pool of their own, not
 * on the heap. On the heap they would lie between allocations that outlive
 * them (libevent's per-fd entries, made when an fd number is first used), so
 * after many connections closed hardly a heap page would be free to give
 * back. The pool is one reservation of address space, touched as slots are
 * used; the lowest free slot is taken, so live ones stay packed, and a page
 * that no live slot touches any more goes back to the kernel at once. Past
 * its capacity (max-connections, plus connections that went away while a
 * worker still runs their call) connections come from the heap.
 */
struct conn_pool {
	char *base;		/* cap slots of slot bytes */
	size_t slot;
	size_t cap;
	size_t page;
	uint64_t *used;		/* a bit per slot */
	uint16_t *live;		/* per page: slots in use that touch it */
	size_t hint;		/* used[] words below this one are full */
	size_t n_live;
	bool orphaned;		/* server_done() ran: the last slot's release frees the pool */
};

/* Room for slots this many past max-connections, for calls that outlive their connections. */
#define CONN_POOL_SPARE 64
#define CONN_POOL_MAX (1U << 20)

/* Where a connection's first event starts, and the size of the connection with its events. */
static size_t conn_event_offset(void)
{
	return (sizeof(struct conn) + 15) & ~(size_t)15;
}

static size_t conn_size(void)
{
	return conn_event_offset() + 3 * ((event_get_struct_event_size() + 15) & ~(size_t)15);
}

/* Unmap the pool and free its bookkeeping. */
static void conn_pool_free(struct conn_pool *p)
{
	if (!p)
		return;
	if (p->base) {
		/* ASan keeps the marks of freed slots past munmap(): clear them for the next mapping there. */
		CONN_SLOT_UNPOISON(p->base, p->cap * p->slot);
		munmap(p->base, p->cap * p->slot);
	}
	free(p->used);
	free(p->live);
	free(p);
}

/* Reserve a pool for max_conns connections; NULL (the heap serves) if that cannot be done. */
static struct conn_pool *conn_pool_new(uint64_t max_conns)
{
	struct conn_pool *p = calloc(1, sizeof(*p));
	size_t pages;

	if (!p)
		return NULL;
	p->slot = (conn_size() + 63) & ~(size_t)63;
	p->cap = max_conns < CONN_POOL_MAX - CONN_POOL_SPARE ? (size_t)max_conns + CONN_POOL_SPARE : CONN_POOL_MAX;
	p->page = (size_t)sysconf(_SC_PAGESIZE);
	pages = (p->cap * p->slot + p->page - 1) / p->page;
	p->used = calloc((p->cap + 63) / 64, sizeof(uint64_t));
	p->live = calloc(pages, sizeof(uint16_t));
	p->base = mmap(NULL, p->cap * p->slot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (p->base == MAP_FAILED)
		p->base = NULL;
	if (!p->used || !p->live || !p->base) {
		conn_pool_free(p);
		return NULL;
	}
	return p;
}

/* Count slot i in (+1) or out (-1) of the pages it touches; a page no slot touches goes back. */
static void conn_pool_touch(struct conn_pool *p, size_t i, int delta)
{
	size_t first = i * p->slot / p->page, last = (i * p->slot + p->slot - 1) / p->page;

	for (size_t pg = first; pg <= last; pg++) {
		p->live[pg] = (uint16_t)(p->live[pg] + delta);
		if (delta < 0 && p->live[pg] == 0)
			madvise(p->base + pg * p->page, p->page, MADV_DONTNEED);
	}
}

/* A zeroed connection: the pool's lowest free slot, else from the heap. */
static struct conn *conn_alloc(struct server *s)
{
	struct conn_pool *p = s->pool;
	struct conn *c = NULL;

	for (size_t w = p ? p->hint : 0; p && w < (p->cap + 63) / 64; w++) {
		size_t i;

		if (p->used[w] == UINT64_MAX)
			continue;
		i = w * 64 + (size_t)__builtin_ctzll(~p->used[w]);
		if (i >= p->cap)
			break;
		p->used[w] |= 1ULL << (i % 64);
		p->hint = w;
		p->n_live++;
		conn_pool_touch(p, i, 1);
		c = (struct conn *)(p->base + i * p->slot);
		CONN_SLOT_UNPOISON(c, p->slot);
		memset(c, 0, p->slot);
		break;
	}
	if (!c)
		c = calloc(1, conn_size());
	if (!c)
		return NULL;
	TAILQ_INIT(&c->owned);
	c->ev_read = (struct event *)((char *)c + conn_event_offset());
	c->ev_write = (struct event *)((char *)c->ev_read + ((event_get_struct_event_size() + 15) & ~(size_t)15));
	c->ev_stall = (struct event *)((char *)c->ev_write + ((event_get_struct_event_size() + 15) & ~(size_t)15));
	return c;
}

/* Give a connection's memory back (its events are no longer pending). */
static void conn_release(struct conn *c)
{
	struct server *s = c->server;
	struct conn_pool *p = s->pool;
	size_t i;

	policy_peer_done(&c->peer);
	if (!p || (char *)c < p->base || (char *)c >= p->base + p->cap * p->slot) {
		free(c);
		return;
	}
	i = (size_t)((char *)c - p->base) / p->slot;
	p->used[i / 64] &= ~(1ULL << (i % 64));
	if (i / 64 < p->hint)
		p->hint = i / 64;
	p->n_live--;
	conn_pool_touch(p, i, -1);
	CONN_SLOT_POISON(c, p->slot);
	if (p->orphaned && p->n_live == 0) {
		conn_pool_free(p);
		s->pool = NULL;
	}
}

/* Has this client's unread output reached a limit (bytes, or fds kept open)? */
static bool conn_backlogged(const struct conn *c)
{
	const struct conf *conf = c->server->conf;

	return vl_stream_pending(&c->stream) >= conf->max_output_per_connection ||
	       vl_stream_pending_fds(&c->stream) >= conf->max_queued_fds_per_connection;
}

static const struct timeval zero_tv;

static void conn_update_events(struct conn *c)
{
	const struct conf *conf = c->server->conf;
	struct timeval tv = {
		.tv_sec = (time_t)(conf->stall_timeout_ms / 1000),
		.tv_usec = (suseconds_t)(conf->stall_timeout_ms % 1000) * 1000,
	};
	bool out = vl_stream_pending(&c->stream) > 0;
	bool armed = true;

	if (c->unarmed)
		goto unarmed;
	/* Between messages a connection holds no input buffer. */
	vl_stream_trim(&c->stream);
	/*
	 * Stop reading while replies pile up unread (memory stays bounded), while
	 * a call is with a worker (replies go out in order), and from a client
	 * that sends fds while too many of its uid's wait to be closed (fds do too).
	 * A busy connection's read event stays armed until input actually comes
	 * (most calls are done before the loop polls again): no epoll_ctl pair
	 * per call.
	 */
	if (!c->closing && !(c->busy && c->busy_woken) && !conn_backlogged(c) &&
	    !(c->sends_fds && sink_uid_congested(c->peer.uid))) {
		bool low = conn_read_behind(c);

		/* Its uid's budget decides when it is read (not active here: no priority change fails but ours). */
		if (low != c->read_low && event_priority_set(c->ev_read, low ? PRIO_LOW : PRIO_NORMAL) == 0)
			c->read_low = low;
		/*
		 * Messages an earlier read took from the socket wait in its stash,
		 * where no poll reports them: a timeout of zero runs the callback
		 * again after the loop's next poll, beside the sockets that poll
		 * found ready. (Made active from its own callback, it would run
		 * again before the loop polls; refilled by each read, never ending.)
		 */
		armed = event_add(c->ev_read, vl_stream_stashed(&c->stream) && !c->busy ? &zero_tv : NULL) == 0;
	} else {
		event_del(c->ev_read);
	}
	if (out)
		armed = event_add(c->ev_write, NULL) == 0 && armed;
	else
		event_del(c->ev_write);
	/*
	 * A half-sent message or unread replies must make progress in time;
	 * while we are busy, the half-sent rest waits for us, not the client,
	 * and so do messages an earlier read took (the read event is active).
	 */
	if (out || (vl_stream_has_partial(&c->stream) && !vl_stream_stashed(&c->stream) && !c->busy)) {
		if (!evtimer_pending(c->ev_stall, NULL))
			armed = evtimer_add(c->ev_stall, &tv) == 0 && armed;
	} else {
		evtimer_del(c->ev_stall);
	}
	if (armed)
		return;
	/*
	 * libevent could not arm an event (out of memory): nothing might ever
	 * run this connection again, and its client would wait for good. It is
	 * closed instead, from ev_write made active (which allocates nothing).
	 */
	log_client_warning("connection %llu: cannot arm its events: %s, disconnecting", (unsigned long long)c->id,
			   strerror(ENOMEM));
	c->unarmed = true;
unarmed:
	event_active(c->ev_write, EV_WRITE, 0);
}

/* Flush what can be flushed; returns <0 if the connection is gone. */
static int conn_flush(struct conn *c)
{
	int r = vl_stream_flush(&c->stream);

	if (r < 0 && r != -EAGAIN) {
		log_debug("connection %llu: write failed: %s", (unsigned long long)c->id, strerror(-r));
		return r;
	}
	if (r == 0 && c->closing)
		return -ECONNRESET;
	return 0;
}

void server_reply(struct conn *c, struct json_object *msg, const int *fds, unsigned nfds)
{
	/* Static, so that it can be sent when the reply could not be built. */
	static const char out_of_memory[] = "{\"error\":\"" PHYSMEM_ERROR_ALLOCATION_FAILED "\","
					    "\"parameters\":{\"reason\":\"the daemon is out of memory\"}}";
	bool built = !vl_build_failed() && msg;
	struct vl_writer w;
	const char *text;
	size_t len;
	int r;

	vl_writer_init(&w);
	if (built)
		vl_writer_json(&w, msg);
	json_object_put(msg);
	r = built ? vl_writer_finish(&w, &text, &len) : -ENOMEM;
	if (r == -ENOMEM) {
		server_reply_text(c, out_of_memory, sizeof(out_of_memory), NULL, 0);
	} else if (r < 0) {
		log_client_warning("connection %llu: cannot write reply: %s", (unsigned long long)c->id, strerror(-r));
		c->closing = true;
	} else {
		server_reply_text(c, text, len, fds, nfds);
	}
	vl_writer_done(&w);
}

/* Send (or queue) a reply already in text form: len bytes, its NUL included. */
void server_reply_text(struct conn *c, const char *text, size_t len, const int *fds, unsigned nfds)
{
	int r = vl_stream_send_text(&c->stream, text, len, fds, nfds);

	if (r < 0) {
		log_client_warning("connection %llu: cannot queue reply: %s", (unsigned long long)c->id, strerror(-r));
		c->closing = true;
	}
}

/* Send (or queue) the reply a vl_writer holds; the writer stays the caller's. */
void server_reply_writer(struct conn *c, struct vl_writer *w, const int *fds, unsigned nfds)
{
	const char *text;
	size_t len;
	int r = vl_writer_finish(w, &text, &len);

	if (r < 0) {
		log_client_warning("connection %llu: cannot write reply: %s", (unsigned long long)c->id, strerror(-r));
		c->closing = true;
		return;
	}
	server_reply_text(c, text, len, fds, nfds);
}

/* Run every complete message through the method layer. */
static void conn_process(struct conn *c)
{
	while (!c->closing && !c->busy && !conn_backlogged(c)) {
		struct json_object *msg;
		struct vl_fds fds;
		int r;

		r = vl_stream_next(&c->stream, &msg, &fds);
		if (r == 0)
			break;
		if (r == -EBADMSG || r == -E2BIG) {
			/* Not JSON, or more values than any call has: say why and hang up. */
			if (r == -EBADMSG)
				log_debug("connection %llu: message is not valid JSON", (unsigned long long)c->id);
			else
				log_client_notice("connection %llu (uid %u): message with more than %llu values, disconnecting",
						  (unsigned long long)c->id, (unsigned)c->peer.uid,
						  (unsigned long long)c->server->conf->max_message_values);
			server_reply(c, vl_error_invalid_parameter("message"), NULL, 0);
			c->closing = true;
			break;
		}
		varlink_handle(c, msg, &fds);
		sink_close_fds(&fds, c->peer.uid);
		json_object_put(msg);
	}
}

/*
 * Has the peer closed its socket (not only its writing half: a client that
 * shut down writing still reads its replies)? Never blocks.
 */
static bool conn_peer_closed(const struct conn *c)
{
	struct pollfd p = { .fd = c->stream.fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

/*
 * A uid past its loop budget has its reads at PRIO_LOW, also the read that
 * would find that a client of its closed its connection, while accepting
 * runs at PRIO_NORMAL: the uid can reach max-connections-per-uid with
 * connections that are already gone. Before refusing it one more, drop one
 * of its connections whose peer closed with nothing left unread (a message
 * still queued is read and answered the usual way): one, the room this
 * accept needs, so that the accept costs what one close read would (the
 * others are found by their reads, each its own callback). Charged to the
 * uid, like the accept.
 */
static void server_reap_closed(struct server *s, struct usage *u)
{
	struct conn *c;
	char byte;

	TAILQ_FOREACH(c, &s->conns, entry) {
		if (c->usage != u || !c->read_low || c->busy || vl_stream_has_partial(&c->stream) ||
		    !conn_peer_closed(c) || recv(c->stream.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0)
			continue;
		log_debug("connection %llu: closed by peer", (unsigned long long)c->id);
		conn_free(c);
		return;
	}
}

/*
 * How long a run of PRIO_LOW callbacks (the reads of uids past their
 * budget) lasts before the loop polls again, so that another uid's call
 * that came meanwhile waits for about this and the callback running when it
 * came. Timed here, on CLOCK_MONOTONIC: libevent's own limit
 * (event_config_set_max_dispatch_interval) reads its clock, which is
 * CLOCK_MONOTONIC_COARSE and moves once a kernel tick (4 ms at HZ=250), so
 * its runs lasted anything up to a tick; asking libevent for a precise
 * clock makes it program a timerfd before every poll (two more system
 * calls and an hrtimer per 4 KiB pair). A time, not a count, so that a uid
 * over its budget pays for a poll per millisecond, not per message.
 */
#define LOW_RUN_NS 1000000ULL

/* A read callback starts; low: it runs at PRIO_LOW. A PRIO_NORMAL one means no run of PRIO_LOW ones is going on. */
static void low_run_begin(struct server *s, bool low)
{
	if (!low)
		s->low_run_start = 0;
	else if (s->low_run_start == 0)
		s->low_run_start = monotonic_ns();
}

/*
 * A read callback ended: past LOW_RUN_NS of PRIO_LOW callbacks, the loop
 * polls before it runs the next (libevent's event_base_loopcontinue()).
 * A run that ended on its own leaves its start behind; the next run then
 * polls after its first callback, once.
 */
static void low_run_end(struct server *s, bool low)
{
	if (low && monotonic_ns() - s->low_run_start >= LOW_RUN_NS) {
		s->low_run_start = 0;
		event_base_loopcontinue(s->base);
	}
}

static void conn_read(struct conn *c)
{
	struct server *s = c->server;
	struct worker_pool *workers = s->registry->workers;
	struct usage *u;
	uint64_t t = monotonic_ns();
	int r = 0;

	/* Input while a call runs: it waits, and so does the read event (see conn_update_events). */
	if (c->busy) {
		c->busy_woken = true;
		/*
		 * Unless the client closed its socket: then its call, queued or
		 * running, is for nobody (a job not yet started is skipped), and
		 * its uid's next calls need not wait for it.
		 */
		if (conn_peer_closed(c)) {
			log_debug("connection %llu: closed by peer during its call", (unsigned long long)c->id);
			goto drop;
		}
	}
	/* Its uid past its loop budget: after everyone else (see usage_charge). */
	if (conn_read_yield(c))
		return;
	for (int i = 0; i < READS_PER_WAKEUP && !c->closing && !c->busy; i++) {
		if (conn_backlogged(c) || (c->sends_fds && sink_uid_congested(c->peer.uid)))
			break;
		/* The message that took its uid past its budget is the last one now. */
		if (i > 0 && conn_charge(c, &t))
			break;
		r = vl_stream_read(&c->stream);
		if (r == -EAGAIN) {
			r = 0;
			break;
		}
		if (r == 0) {
			log_debug("connection %llu: closed by peer", (unsigned long long)c->id);
			goto drop;
		}
		if (r < 0) {
			log_client_notice("connection %llu (uid %u): %s, disconnecting", (unsigned long long)c->id,
					  (unsigned)c->peer.uid,
					  r == -EMSGSIZE ? "message too large" :
					  r == -EPROTO ? "file descriptors out of place" : strerror(-r));
			goto drop;
		}
		if (c->stream.in_nfds > 0)
			c->sends_fds = true;
		/* Progress: the stall clock starts again. */
		evtimer_del(c->ev_stall);
		conn_process(c);
		/* All there was is read: the next wake-up says when more comes, no read that finds nothing. */
		if (vl_stream_drained(&c->stream))
			break;
	}
	if (conn_flush(c) < 0)
		goto drop;
	conn_charge(c, &t);
	conn_update_events(c);
	/*
	 * A small Allocate just read is answered now, not after every other
	 * ready client's read; on the loop, each job paid for by its own uid
	 * (the pool's charge hook), not by this connection's.
	 */
	worker_pool_run_inline(workers);
	return;
drop:
	/* A connection that sent its messages and left pays for them too, and for its end. */
	u = usage_hold(c->usage);
	conn_free(c);
	usage_release(s, u, &t);
	worker_pool_run_inline(workers);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct server *s = c->server;
	bool low = c->read_low;

	(void)fd;
	(void)what;
	low_run_begin(s, low);
	conn_read(c);	/* may free c */
	low_run_end(s, low);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct server *s = c->server;
	size_t before = vl_stream_pending(&c->stream);
	uint64_t t = monotonic_ns();
	struct usage *u = usage_hold(c->usage);

	(void)fd;
	(void)what;
	if (c->unarmed || conn_flush(c) < 0)
		goto drop;
	if (vl_stream_pending(&c->stream) < before)
		evtimer_del(c->ev_stall);
	/* Room again: handle requests that waited behind the backlog. */
	conn_process(c);
	if (conn_flush(c) < 0)
		goto drop;
	usage_release(s, u, &t);
	conn_update_events(c);
	return;
drop:
	conn_free(c);
	usage_release(s, u, &t);
}

static void conn_on_stall(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	log_client_notice("connection %llu (uid %u): stalled for %llu ms, disconnecting", (unsigned long long)c->id,
			  (unsigned)c->peer.uid, (unsigned long long)c->server->conf->stall_timeout_ms);
	conn_free(c);
}

/*
 * A connection closed. glibc keeps freed heap (the pieces of many closed
 * connections lie between live allocations, so the heap's top rarely
 * shrinks): give free pages back with malloc_trim() once at least as many
 * connections closed since the last trim as are still open (and at least
 * TRIM_MIN_CLOSES), so that its cost, which grows with the heap, is paid
 * once per that many closes and never per close.
 */
static void server_closed(struct server *s)
{
	if (++s->closes_since_trim < TRIM_MIN_CLOSES || s->closes_since_trim < s->n_conns)
		return;
	s->closes_since_trim = 0;
	malloc_trim(0);
}

/*
 * Drop a connection. One whose call is with a worker is only detached (gone):
 * the job's completion frees it, through server_conn_resume().
 */
static void conn_free(struct conn *c)
{
	struct server *s = c->server;

	/*
	 * Unsent replies' fds first, while the registry still holds its own
	 * reference: the last close of a buffer is then a worker's.
	 */
	vl_stream_done(&c->stream);
	registry_owner_gone(s->registry, c);
	TAILQ_REMOVE(&s->conns, c, entry);
	s->n_conns--;
	if (c->usage) {
		c->usage->connections--;
		registry_usage_put(s->registry, c->usage);
		c->usage = NULL;
	}
	if (c->events_assigned) {
		event_del(c->ev_read);
		event_del(c->ev_write);
		event_del(c->ev_stall);
	}
	/* Its receive queue may hold fds a client sent: the sink closes it. */
	sink_close_uid(c->stream.fd, c->peer.uid);
	if (c->busy)
		c->gone = true;
	else
		conn_release(c);
	server_closed(s);
	server_notify_status(s);
}

/*
 * Called from its job's completion, whose loop time the worker pool charges
 * to the job's uid (server_charge_job()): nothing is charged here.
 */
void server_conn_resume(struct conn *c)
{
	struct server *s = c->server;
	struct usage *u;

	c->busy = false;
	c->busy_woken = false;
	if (c->gone) {
		conn_release(c);
		return;
	}
	/* Its reply is queued: send it, then the requests that waited. */
	u = usage_hold(c->usage);
	conn_process(c);
	if (conn_flush(c) < 0)
		conn_free(c);
	else
		conn_update_events(c);
	if (u) {
		u->loop_refs--;
		registry_usage_put(s->registry, u);
	}
}

/*
 * Who is on the other end, read once at accept time. All of its groups: a
 * user in many groups must not lose the gid-based allows (policy_peer_done
 * frees them).
 */
static int peer_read(int fd, struct peer *p)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t stack[64], *groups = stack;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	p->uid = cred.uid;
	p->gid = cred.gid;
	p->pid = cred.pid;
	p->n_groups = 0;
	p->groups = NULL;
	len = sizeof(stack);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, stack, &len) < 0) {
		int r = -errno;

		if (r == -ENOPROTOOPT || r == -ENODATA)
			return 0;	/* a kernel before 4.13: the primary group only */
		/* More than fit: the kernel said how much room they need. */
		if (r != -ERANGE || len <= sizeof(stack) || len > NGROUPS_MAX * sizeof(gid_t))
			return r == -ERANGE ? -E2BIG : r;
		groups = malloc(len);
		if (!groups)
			return -ENOMEM;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
			r = -errno;
			free(groups);
			return r;
		}
	}
	if (len == 0) {
		if (groups != stack)
			free(groups);
		return 0;
	}
	if (groups == stack) {
		groups = malloc(len);
		if (!groups)
			return -ENOMEM;
		memcpy(groups, stack, len);
	}
	p->groups = groups;
	p->n_groups = len / sizeof(gid_t);
	return 0;
}

/*
 * Accept again. When libevent cannot arm the event (out of memory), try
 * again in a second, or at the next turn of the loop if even that timer
 * cannot be armed: the daemon must not stop accepting for good.
 */
static void server_accept_arm(struct server *s)
{
	struct timeval tv = { .tv_sec = 1 };

	if (event_add(s->ev_accept, NULL) == 0)
		return;
	log_warning("cannot arm the listening socket's event: %s; trying again", strerror(ENOMEM));
	if (evtimer_add(s->ev_accept_resume, &tv) < 0)
		event_active(s->ev_accept_resume, EV_TIMEOUT, 0);
}

static void server_on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	server_accept_arm(s);
}

/* The sink caught up: accept again and read from clients that send fds. */
static void server_on_sink_drained(void *userdata)
{
	struct server *s = userdata;
	struct conn *c;

	if (!evtimer_pending(s->ev_accept_resume, NULL))
		server_accept_arm(s);
	TAILQ_FOREACH(c, &s->conns, entry)
		conn_update_events(c);
}

static void server_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct server *s = arg;
	struct peer peer = { 0 };
	uint64_t t = monotonic_ns();
	struct usage *u;
	struct conn *c;
	int fd;

	(void)what;
	/* A new connection may bring fds too; it waits until the sink caught up. */
	if (sink_congested()) {
		event_del(s->ev_accept);
		return;
	}
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			struct timeval tv = { .tv_sec = 1 };

			/* Out of fds: pause accepting for a second instead of spinning. */
			log_warning("accept: %s; pausing for a second", strerror(errno));
			event_del(s->ev_accept);
			if (evtimer_add(s->ev_accept_resume, &tv) < 0)
				event_active(s->ev_accept_resume, EV_TIMEOUT, 0);
		}
		return;
	}
	if (peer_read(fd, &peer) < 0) {
		sink_close(fd);
		return;
	}
	if (s->n_conns >= s->conf->max_connections) {
		log_client_notice("refusing connection from uid %u: %llu connections open", (unsigned)peer.uid,
				  (unsigned long long)s->n_conns);
		policy_peer_done(&peer);
		sink_close(fd);
		return;
	}
	/* Its uid pays the loop's time for the connection (refused or not), like for its messages. */
	u = usage_hold(registry_usage(s->registry, peer.uid, true));
	if (!u) {
		policy_peer_done(&peer);
		sink_close(fd);
		return;
	}
	if (u->connections >= s->conf->max_connections_per_uid && u->loop_over)
		server_reap_closed(s, u);
	if (u->connections >= s->conf->max_connections_per_uid) {
		log_client_notice("refusing connection from uid %u: per-uid limit of %llu reached", (unsigned)peer.uid,
				  (unsigned long long)s->conf->max_connections_per_uid);
		policy_peer_done(&peer);
		sink_close(fd);
		usage_release(s, u, &t);
		return;
	}
	c = conn_alloc(s);
	if (!c) {
		policy_peer_done(&peer);
		sink_close(fd);
		usage_release(s, u, &t);
		return;
	}
	c->server = s;
	c->id = ++s->next_conn_id;
	c->peer = peer;
	c->usage = u;
	u->connections++;
	vl_stream_init(&c->stream, fd, s->conf->max_message_size);
	c->stream.max_values = s->conf->max_message_values;
	c->stream.release_fd = sink_close;
	c->stream.shared_tok = s->tok;
	c->stream.buf_cache = &s->in_bufs;
	/* Reads without a peek until the client sends fds (see varlink-stream.h). */
	c->stream.refers_to_fds = vl_message_refers_to_fds;
	c->events_assigned = event_assign(c->ev_read, s->base, fd, EV_READ | EV_PERSIST, conn_on_read, c) == 0 &&
			     event_assign(c->ev_write, s->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c) == 0 &&
			     evtimer_assign(c->ev_stall, s->base, conn_on_stall, c) == 0 &&
			     event_priority_set(c->ev_read, PRIO_NORMAL) == 0 &&
			     event_priority_set(c->ev_write, PRIO_NORMAL) == 0 &&
			     event_priority_set(c->ev_stall, PRIO_NORMAL) == 0;
	TAILQ_INSERT_TAIL(&s->conns, c, entry);
	s->n_conns++;
	if (!c->events_assigned) {
		conn_free(c);
		usage_release(s, u, &t);
		return;
	}
	log_debug("connection %llu: uid %u gid %u pid %d", (unsigned long long)c->id, (unsigned)peer.uid,
		  (unsigned)peer.gid, (int)peer.pid);
	usage_release(s, u, &t);
	conn_update_events(c);
}

/* Create and bind our own socket (not under systemd). */
static int server_listen(struct server *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)];
	char *slash;
	int fd;

	if (strlen(s->conf->socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, s->conf->socket_path, strlen(s->conf->socket_path) + 1);

	/* The runtime directory: created private if missing, never loosened. */
	snprintf(dir, sizeof(dir), "%s", sa.sun_path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		struct stat st;

		if (mkdir(dir, geteuid() == 0 ? 0755 : 0700) < 0 && errno != EEXIST) {
			log_error("cannot create %s: %s", dir, strerror(errno));
			return -errno;
		}
		/* A directory someone else controls could swap our socket. */
		if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    (st.st_uid != geteuid() && st.st_uid != 0) || ((st.st_mode & 0022) && !(st.st_mode & S_ISVTX))) {
			log_error("%s must be a directory owned by this user or root, and writable by no one else "
				  "unless sticky", dir);
			return -EPERM;
		}
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Replace a stale socket left by a daemon that died, but never a live one. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		log_error("%s: another daemon is already listening", sa.sun_path);
		close(fd);
		return -EADDRINUSE;
	}
	unlink(sa.sun_path);
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, s->conf->socket_mode) < 0 ||
	    listen(fd, SOMAXCONN) < 0) {
		int r = -errno;

		log_error("cannot listen on %s: %s", sa.sun_path, strerror(errno));
		close(fd);
		return r;
	}
	s->listen_fd = fd;
	s->listen_owned = true;
	return 0;
}

struct event_base *server_event_base_new(void)
{
	struct event_base *base = event_base_new();

	if (base && event_base_priority_init(base, PRIO_COUNT) < 0) {
		event_base_free(base);
		base = NULL;
	}
	return base;
}

int server_init(struct server *s, struct event_base *base, const struct conf *conf, struct registry *registry,
		int listen_fd)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->base = base;
	s->conf = conf;
	s->registry = registry;
	s->listen_fd = -1;
	TAILQ_INIT(&s->conns);
	/* Priorities for the loop budget, unless main() set them up before creating any event. */
	if (event_base_get_npriorities(base) < PRIO_COUNT && event_base_priority_init(base, PRIO_COUNT) < 0)
		return -EINVAL;
	/* One parser for every connection: 2 KiB each would add up. */
	s->tok = json_tokener_new_ex(64);
	if (!s->tok)
		return -ENOMEM;
	s->pool = conn_pool_new(conf->max_connections);
	if (!s->pool)
		log_warning("cannot reserve memory for %llu connections: they come from the heap",
			    (unsigned long long)conf->max_connections);

	if (listen_fd >= 0) {
		s->listen_fd = listen_fd;
		log_info("listening on the socket passed by systemd");
	} else {
		r = server_listen(s);
		if (r < 0)
			return r;
		log_info("listening on %s", conf->socket_path);
	}
	s->ev_accept = event_new(base, s->listen_fd, EV_READ | EV_PERSIST, server_on_accept, s);
	s->ev_accept_resume = evtimer_new(base, server_on_accept_resume, s);
	s->ev_status = evtimer_new(base, server_on_status, s);
	s->ev_budget = evtimer_new(base, server_on_budget, s);
	if (!s->ev_accept || !s->ev_accept_resume || !s->ev_status || !s->ev_budget)
		return -ENOMEM;
	if (event_add(s->ev_accept, NULL) < 0)
		return -ENOMEM;
	sink_on_drained(server_on_sink_drained, s);
	if (registry->workers) {
		worker_pool_set_charge(registry->workers, server_charge_job, s);
		worker_pool_set_hold_check(registry->workers, server_may_hold, s);
	}
	return 0;
}

void server_done(struct server *s)
{
	if (s->registry && s->registry->workers) {
		worker_pool_set_charge(s->registry->workers, NULL, NULL);
		worker_pool_set_hold_check(s->registry->workers, NULL, NULL);
	}
	while (!TAILQ_EMPTY(&s->conns))
		conn_free(TAILQ_FIRST(&s->conns));
	if (s->ev_status)
		event_free(s->ev_status);
	s->ev_status = NULL;
	if (s->ev_budget)
		event_free(s->ev_budget);
	s->ev_budget = NULL;
	if (s->ev_accept)
		event_free(s->ev_accept);
	if (s->ev_accept_resume)
		event_free(s->ev_accept_resume);
	if (s->tok)
		json_tokener_free(s->tok);
	s->tok = NULL;
	/* Streams give buffers back only in vl_stream_trim(), which a connection gone with its call never runs. */
	vl_buf_cache_done(&s->in_bufs);
	/* Connections whose calls a worker still runs go when their job is done. */
	if (s->pool && s->pool->n_live > 0) {
		s->pool->orphaned = true;
	} else {
		conn_pool_free(s->pool);
		s->pool = NULL;
	}
	if (s->listen_fd >= 0) {
		if (s->listen_owned)
			unlink(s->conf->socket_path);
		close(s->listen_fd);
	}
}

static void server_on_status(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	sd_notifyf(0, "STATUS=Serving %llu buffers (%llu bytes) to %llu clients on the %s backend",
		   (unsigned long long)s->registry->n_buffers, (unsigned long long)s->registry->bytes,
		   (unsigned long long)s->n_conns, s->registry->backend->name);
}

/*
 * Tell systemd how things stand, at most five times a second: sd_notify()
 * blocks when systemd's queue is full, and a client can make changes (connect,
 * disconnect, allocate) as fast as it likes.
 */
void server_notify_status(struct server *s)
{
	struct timeval tv = { .tv_usec = 200000 };

	if (s->ev_status && !evtimer_pending(s->ev_status, NULL))
		evtimer_add(s->ev_status, &tv);
}
