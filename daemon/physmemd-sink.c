/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sink: a child process that closes the fds clients send us.
 *
 * Closing a file can block for as long as the client that made it likes: the
 * last close of a TCP socket with unsent data and SO_LINGER waits, and every
 * close of a file on a FUSE mount the client serves waits for its FLUSH
 * answer (even after SIGKILL). The event loop serves everybody, so it never
 * closes a client's fd, nor a connection socket (its receive queue may hold
 * more of them). sink_close() sends the fd to the sink in a numbered batch
 * ('F'); a closer thread closes the daemon's copy (not the last reference:
 * the sink holds one); once every copy of a batch is closed the loop tells
 * the sink ('C'), which closes its copies and answers with how many. Closing
 * in the sink first could leave a daemon copy as the last reference.
 *
 * A sink that acknowledges nothing for sink-timeout-ms while it has been
 * told to close fds is killed: a dying process finishes such closes without
 * blocking the daemon (lingering is skipped on exit), and what it holds goes
 * with it. A new sink replaces it, at most one per SINK_RESPAWN_MS, on a
 * socketpair made in advance (the fd table may be full by then). Until then
 * fds wait here. Each fd counts against the uid that sent it until our copy
 * is closed: a uid with many pending has its fd-sending connections paused
 * (sink_uid_congested()) and one uid gets at most CLOSER_MAX_PER_UID closer
 * threads; only with half the fd table pending does the server stop reading
 * fds from everybody and stop accepting (sink_congested()).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "physmemd.h"

#define SINK_RESPAWN_MS 100
/*
 * Fds of one uid held for closing (queued, or a closer thread's) at which
 * that uid's fd-sending connections pause; they resume at half. Well below
 * what a paused uid could pin in closer threads.
 */
#define SINK_UID_HIGH_WATER 64
/* Closer threads one uid may occupy (its closes may block for good on FUSE). */
#define CLOSER_MAX_PER_UID 8
/* Uids tracked at once; more share the last slot. */
#define SINK_MAX_UIDS 256
#define SINK_KILL_LOG_INTERVAL_MS 1000
/* Killed sinks not yet gone (a FUSE FLUSH is waited out even after SIGKILL). */
#define SINK_MAX_DYING 64
/* Threads closing the daemon's own copies; each may block for good on FUSE. */
#define CLOSER_MAX_THREADS 64
/* Batches whose daemon copies are not all closed yet. */
#define SINK_MAX_BATCHES 256
/* Fds one sink holds until told to close them (stuck batches included). */
#define SINK_MAX_HELD (2 * SINK_MAX_BATCHES * VL_MAX_FDS)

struct batch {
	uint64_t seq;
	unsigned left;			/* daemon copies not closed yet */
	unsigned n;
};

struct sink {
	struct event_base *base;
	uint64_t timeout_ms;
	pid_t pid;			/* 0: no sink running */
	int fd;				/* our end of the socketpair, -1: none */
	struct event *ev_read;		/* acknowledgements, or the sink's end */
	struct event *ev_write;		/* room again after EAGAIN */
	struct event *ev_timeout;	/* no progress while fds are out */
	struct event *ev_respawn;
	struct event *ev_child;		/* SIGCHLD */
	struct event *ev_drained;	/* tells the server to resume clients */
	struct event *ev_closed;	/* a closer thread finished a batch */
	int *queue;			/* fds waiting to be sent */
	uid_t *queue_uid;		/* who sent each */
	size_t n_queue;
	size_t queue_cap;
	uint64_t next_seq;
	uint64_t first_seq;		/* the first batch sent to the current sink */
	struct batch commits[SINK_MAX_BATCHES];	/* batches ready for a 'C' */
	unsigned n_commits;
	uint64_t told;			/* fds the sink was told to close, not acknowledged */
	bool blocked;			/* the socket was full */
	uint64_t kills;
	uint64_t kills_unlogged;
	unsigned dying;			/* killed, not reaped yet */
	uint64_t last_spawn_ms;
	uint64_t last_kill_log_ms;
	bool congested;
	size_t high_water;		/* half the fd limit: an emergency stop for everybody */
	int spare[2];			/* the next sink's socketpair, made while fds are free */
	void (*on_drained)(void *userdata);
	void *userdata;
};

static struct sink sink = { .fd = -1, .spare = { -1, -1 } };

struct closer_item {
	int fd;
	uid_t uid;
	uint64_t seq;
};

/* Per uid: its fds this process still holds, and closer threads it occupies. */
struct uid_slot {
	uid_t uid;
	size_t held;
	unsigned closing;
	bool paused;			/* its connections were paused */
};

/*
 * Closer threads close the daemon's own copies of sent fds. One that blocks
 * (FUSE calls flush on every close) does not hold up the loop, and a new
 * thread takes the next fds while none is idle (up to CLOSER_MAX_THREADS).
 */
static struct closer {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct closer_item *items;
	size_t n;
	size_t cap;
	unsigned threads;
	unsigned idle;
	size_t open;			/* daemon copies pushed, not closed yet */
	struct uid_slot uids[SINK_MAX_UIDS];
	unsigned n_uids;
	struct batch batches[SINK_MAX_BATCHES];	/* in progress */
	unsigned n_batches;
	struct batch done[SINK_MAX_BATCHES];	/* all copies closed */
	unsigned n_done;
	int notify_fd;
} closer = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .notify_fd = -1 };

static void sink_flush(void);

/* The slot of a uid (made if need be); call with closer.lock held. */
static struct uid_slot *uid_slot(uid_t uid)
{
	for (unsigned i = 0; i < closer.n_uids; i++)
		if (closer.uids[i].uid == uid)
			return &closer.uids[i];
	if (closer.n_uids == SINK_MAX_UIDS)
		return &closer.uids[SINK_MAX_UIDS - 1];	/* shared by the rest */
	closer.uids[closer.n_uids] = (struct uid_slot){ .uid = uid };
	return &closer.uids[closer.n_uids++];
}

/* Forget a uid that holds nothing; call with closer.lock held. */
static void uid_slot_put(struct uid_slot *u)
{
	if (u->held == 0 && u->closing == 0 && !u->paused)
		*u = closer.uids[--closer.n_uids];
}

/* An item a closer thread may take (its uid under its share), or -1. */
static ssize_t closer_pick(void)
{
	for (size_t i = closer.n; i-- > 0;)
		if (uid_slot(closer.items[i].uid)->closing < CLOSER_MAX_PER_UID)
			return (ssize_t)i;
	return -1;
}
static void sink_spawn_later(void);
static int sink_spawn(void);
static int sink_make_spare(void);

/* A closer thread: close what is queued, report finished batches, forever. */
static void *closer_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&closer.lock);
	for (;;) {
		struct closer_item it;
		struct uid_slot *u;
		ssize_t pick;

		while ((pick = closer_pick()) < 0) {
			closer.idle++;
			pthread_cond_wait(&closer.wake, &closer.lock);
			closer.idle--;
		}
		it = closer.items[pick];
		closer.items[pick] = closer.items[--closer.n];
		uid_slot(it.uid)->closing++;
		pthread_mutex_unlock(&closer.lock);
		close(it.fd);
		pthread_mutex_lock(&closer.lock);
		closer.open--;
		u = uid_slot(it.uid);
		u->closing--;
		u->held--;
		uid_slot_put(u);
		/* Items of this uid may wait for its share. */
		if (closer.n > 0)
			pthread_cond_broadcast(&closer.wake);
		/* The loop recounts what is held (congestion may be over). */
		(void)eventfd_write(closer.notify_fd, 1);
		for (unsigned i = 0; i < closer.n_batches; i++) {
			struct batch *b = &closer.batches[i];

			if (b->seq != it.seq)
				continue;
			if (--b->left == 0) {
				closer.done[closer.n_done++] = *b;
				*b = closer.batches[--closer.n_batches];
				(void)eventfd_write(closer.notify_fd, 1);
			}
			break;
		}
	}
	return NULL;
}

/* Close the daemon's copies of one batch off the loop. */
static void closer_push(const int *fds, const uid_t *uids, unsigned n, uint64_t seq)
{
	bool start;

	pthread_mutex_lock(&closer.lock);
	closer.batches[closer.n_batches++] = (struct batch){ .seq = seq, .left = n, .n = n };
	closer.open += n;
	/* closer.cap is the fd limit: the daemon cannot hold more fds than that. */
	for (unsigned i = 0; i < n; i++)
		closer.items[closer.n++] = (struct closer_item){ .fd = fds[i], .uid = uids[i], .seq = seq };
	start = closer.idle < closer.n && closer.threads < CLOSER_MAX_THREADS;
	if (start)
		closer.threads++;
	/* Idle threads may be waiting for other uids' items. */
	pthread_cond_broadcast(&closer.wake);
	pthread_mutex_unlock(&closer.lock);

	if (start) {
		pthread_attr_t attr;
		sigset_t all, old;
		pthread_t t;
		int r;

		/* Signals stay with the loop thread (libevent handles them there). */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		r = pthread_create(&t, &attr, closer_thread, NULL);
		pthread_attr_destroy(&attr);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r != 0) {
			log_warning("sink: cannot start a closer thread: %s", strerror(r));
			pthread_mutex_lock(&closer.lock);
			closer.threads--;
			pthread_mutex_unlock(&closer.lock);
		}
	}
}

/* Room for another batch (besides extra ones waiting for their 'C')? */
static bool closer_has_room(size_t n, unsigned extra)
{
	bool room;

	pthread_mutex_lock(&closer.lock);
	room = closer.n_batches + closer.n_done + extra < SINK_MAX_BATCHES && closer.n + n <= closer.cap;
	pthread_mutex_unlock(&closer.lock);
	return room;
}

/* CLOCK_MONOTONIC in milliseconds. */
static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Milliseconds as a libevent timeout. */
static struct timeval ms_to_tv(uint64_t ms)
{
	return (struct timeval){ .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
}

/* What travels on the socketpair: an op and a batch number. */
struct sink_msg {
	char op;			/* 'F': fds of a batch, 'C': close that batch */
	uint64_t seq;
} __attribute__((packed));

/*
 * The child: hold each batch's fds until the daemon says its own copies are
 * closed, then close them and say how many. Only async-signal-safe calls:
 * the daemon has other threads.
 */
static _Noreturn void sink_child(int fd, pid_t parent, int max_fd)
{
	static struct closer_item held[SINK_MAX_HELD];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * VL_MAX_FDS)];
	} control;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	size_t n_held = 0;
	sigset_t none;

	(void)prctl(PR_SET_NAME, "physmemd-sink", 0, 0, 0);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(0);
	for (int sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	/* Keep nothing of the daemon's but stdio and our end of the pair. */
	if (close_range(3, (unsigned)fd - 1, 0) < 0 || close_range((unsigned)fd + 1, ~0U, 0) < 0)
		for (int i = 3; i < max_fd; i++)
			if (i != fd)
				(void)close(i);

	for (;;) {
		struct sink_msg m = { 0 };
		struct msghdr mh = { 0 };
		struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
		struct cmsghdr *c;
		ssize_t n;

		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);	/* the daemon is gone: exiting closes what is held */
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			int *fds = (int *)CMSG_DATA(c);
			size_t nfds;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfds; i++) {
				if (n_held < SINK_MAX_HELD)
					held[n_held++] = (struct closer_item){ .fd = fds[i], .seq = m.seq };
				else
					(void)close(fds[i]);	/* cannot happen: the daemon counts */
			}
		}
		if (n == (ssize_t)sizeof(m) && m.op == 'C') {
			uint64_t count = 0;

			for (size_t i = 0; i < n_held;) {
				if (held[i].seq != m.seq) {
					i++;
					continue;
				}
				(void)close(held[i].fd);
				held[i] = held[--n_held];
				count++;
			}
			if (send(fd, &count, sizeof(count), MSG_NOSIGNAL) < 0 && errno != EINTR)
				_exit(0);
		}
	}
}

/* Forget the current sink (killed or gone) and schedule its successor. */
static void sink_lost(void)
{
	if (sink.ev_read)
		event_free(sink.ev_read);
	if (sink.ev_write)
		event_free(sink.ev_write);
	sink.ev_read = sink.ev_write = NULL;
	/* Only acknowledgements wait on our end: closing it cannot block. */
	if (sink.fd >= 0)
		close(sink.fd);
	sink.fd = -1;
	sink.pid = 0;		/* reaped on SIGCHLD */
	sink.told = 0;		/* what it held goes with it */
	sink.n_commits = 0;
	sink.blocked = false;
	evtimer_del(sink.ev_timeout);
	sink_spawn_later();
}

/* Kill a sink that stopped making progress; its fds die with it. */
static void sink_kill(const char *why)
{
	uint64_t now = now_ms();

	sink.kills++;
	if (now - sink.last_kill_log_ms >= SINK_KILL_LOG_INTERVAL_MS || sink.last_kill_log_ms == 0) {
		log_warning("sink: process %d %s with %llu fds pending; killed it (%llu kills, %llu not logged)",
			    (int)sink.pid, why, (unsigned long long)(sink.told + sink.n_queue),
			    (unsigned long long)sink.kills, (unsigned long long)sink.kills_unlogged);
		sink.last_kill_log_ms = now;
		sink.kills_unlogged = 0;
	} else {
		sink.kills_unlogged++;
	}
	if (sink.pid > 0) {
		kill(sink.pid, SIGKILL);
		sink.dying++;
	}
	sink_lost();
}

/* The progress clock runs while the sink owes us work or its socket is full. */
static void sink_update_timer(bool progress)
{
	struct timeval tv = ms_to_tv(sink.timeout_ms);

	if (sink.fd < 0 || (sink.told == 0 && !sink.blocked)) {
		evtimer_del(sink.ev_timeout);
		return;
	}
	if (progress || !evtimer_pending(sink.ev_timeout, NULL))
		evtimer_add(sink.ev_timeout, &tv);
}

/* Client fds this process still holds: queued, or with a closer thread. */
static size_t sink_held(void)
{
	size_t open;

	pthread_mutex_lock(&closer.lock);
	open = closer.open;
	pthread_mutex_unlock(&closer.lock);
	return sink.n_queue + open;
}

/* Resume paused clients once what is held is down to half the high-water mark. */
static void sink_update_congestion(void)
{
	size_t held = sink_held();

	if (!sink.congested && held >= sink.high_water) {
		sink.congested = true;
		log_notice("sink: %zu fds waiting to be closed; pausing clients that send fds", held);
	} else if (sink.congested && held <= sink.high_water / 2) {
		sink.congested = false;
		log_notice("sink: caught up; resuming clients");
		/* Not from here: the caller may be in the middle of freeing a connection. */
		event_active(sink.ev_drained, EV_TIMEOUT, 0);
	}
	/* Uids whose connections were paused and that are down to half. */
	pthread_mutex_lock(&closer.lock);
	for (unsigned i = 0; i < closer.n_uids;) {
		struct uid_slot *u = &closer.uids[i];

		if (u->paused && u->held <= SINK_UID_HIGH_WATER / 2) {
			u->paused = false;
			event_active(sink.ev_drained, EV_TIMEOUT, 0);
			if (u->held == 0 && u->closing == 0) {
				uid_slot_put(u);
				continue;	/* another slot moved here */
			}
		}
		i++;
	}
	pthread_mutex_unlock(&closer.lock);
}

/*
 * Send one message (and fds); returns 0, -EAGAIN (socket full), -ENOBUFS
 * (too many fds in flight, or no memory: wait for the sink to take some) or
 * another negative errno.
 */
static int sink_send(char op, uint64_t seq, const int *fds, unsigned nfds)
{
	struct sink_msg m = { .op = op, .seq = seq };
	ssize_t n = vl_send_fds(sink.fd, &m, sizeof(m), fds, nfds);

	if (n == -ETOOMANYREFS)
		return -ENOBUFS;
	return n < 0 ? (int)n : 0;
}

/* Send what is ready: 'C' for finished batches, then queued fds in batches. */
static void sink_flush(void)
{
	int r = 0;

	sink.blocked = false;
	while (sink.fd >= 0) {
		unsigned n;

		if (sink.n_commits > 0) {
			struct batch *b = &sink.commits[sink.n_commits - 1];

			r = sink_send('C', b->seq, NULL, 0);
			if (r == -EAGAIN || r == -ENOBUFS)
				goto blocked;
			if (r < 0) {
				sink_kill("cannot be written to");
				break;
			}
			sink.told += b->n;
			sink.n_commits--;
			continue;
		}
		if (sink.n_queue == 0)
			break;
		n = sink.n_queue < VL_MAX_FDS ? (unsigned)sink.n_queue : VL_MAX_FDS;
		if (!closer_has_room(n, sink.n_commits))
			break;		/* closer threads are behind; they wake us */
		r = sink_send('F', sink.next_seq, sink.queue + sink.n_queue - n, n);
		if (r == -EAGAIN || r == -ENOBUFS)
			goto blocked;
		if (r < 0) {
			sink_kill("cannot be written to");
			break;
		}
		/* The sink holds them now, so ours are not the last references. */
		closer_push(sink.queue + sink.n_queue - n, sink.queue_uid + sink.n_queue - n, n, sink.next_seq++);
		sink.n_queue -= n;
	}
	sink_update_timer(false);
	sink_update_congestion();
	return;
blocked:
	/* Writable says nothing about fds in flight: acknowledgements retry that. */
	sink.blocked = true;
	/* Out of memory: try again at the loop's next turn. */
	if (r == -EAGAIN && event_add(sink.ev_write, NULL) < 0)
		event_active(sink.ev_write, EV_WRITE, 0);
	sink_update_timer(false);
	sink_update_congestion();
}

/* Acknowledgements: progress. End of file: the sink died. */
static void sink_on_read(evutil_socket_t fd, short what, void *arg)
{
	bool progress = false;

	(void)what;
	(void)arg;
	for (;;) {
		uint64_t count;
		ssize_t n = recv(fd, &count, sizeof(count), MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			log_warning("sink: process %d exited", (int)sink.pid);
			sink_lost();
			return;
		}
		if (n != sizeof(count) || count > sink.told) {
			sink_kill("sent a bad acknowledgement");
			return;
		}
		sink.told -= count;
		progress = true;
	}
	sink_update_timer(progress);
	(void)sink_make_spare();	/* if it could not be made earlier */
	sink_flush();
}

/* Closer threads finished batches: the sink may close its copies now. */
static void sink_on_closed(evutil_socket_t fd, short what, void *arg)
{
	eventfd_t v;

	(void)what;
	(void)arg;
	(void)eventfd_read(fd, &v);
	pthread_mutex_lock(&closer.lock);
	for (unsigned i = 0; i < closer.n_done; i++)
		/* Batches of a sink that is gone went with it. */
		if (sink.fd >= 0 && closer.done[i].seq >= sink.first_seq)
			sink.commits[sink.n_commits++] = closer.done[i];
	closer.n_done = 0;
	pthread_mutex_unlock(&closer.lock);
	sink_flush();
}

/* Room on the socket again. */
static void sink_on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sink_flush();
}

/* No acknowledgement for sink-timeout-ms while the sink owed one. */
static void sink_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	char why[64];

	(void)fd;
	(void)what;
	(void)arg;
	snprintf(why, sizeof(why), "made no progress for %llu ms", (unsigned long long)sink.timeout_ms);
	sink_kill(why);
}

/* The rate limit allows a new sink now. */
static void sink_on_respawn(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sink_spawn();
}

/* The queue drained: let the server resume the clients it paused. */
static void sink_on_caught_up(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (sink.on_drained && !sink.congested)
		sink.on_drained(sink.userdata);
}

/* Reap sinks that died (killed ones, or one that exited on its own). */
static void sink_on_child(evutil_socket_t fd, short what, void *arg)
{
	int status;
	pid_t pid;

	(void)fd;
	(void)what;
	(void)arg;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		log_debug("sink: process %d reaped (%s %d)", (int)pid,
			  WIFSIGNALED(status) ? "signal" : "exit status",
			  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		/* Never signal a pid that is gone: it may be reused. */
		if (pid == sink.pid)
			sink.pid = 0;
		else if (sink.dying > 0)
			sink.dying--;
	}
	if (sink.fd < 0)
		sink_spawn_later();
}

/*
 * Make the next sink's socketpair now, while fds are free: when the fd table
 * is full of fds waiting for a stuck sink, its successor must still start.
 */
static int sink_make_spare(void)
{
	int r;

	if (sink.spare[0] >= 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sink.spare) < 0) {
		r = -errno;
		sink.spare[0] = sink.spare[1] = -1;
		log_debug("sink: cannot make a spare socketpair yet: %s", strerror(-r));
		return r;
	}
	return 0;
}

/* A new sink, but at most one per SINK_RESPAWN_MS. */
static void sink_spawn_later(void)
{
	uint64_t now = now_ms(), due = sink.last_spawn_ms + SINK_RESPAWN_MS;
	struct timeval tv = ms_to_tv(due > now ? due - now : 0);

	if (!evtimer_pending(sink.ev_respawn, NULL))
		evtimer_add(sink.ev_respawn, &tv);
}

/* Start a sink; on failure a retry is scheduled. */
static int sink_spawn(void)
{
	struct rlimit rl;
	int pair[2], max_fd = 65536, r;
	pid_t parent = getpid(), pid;

	if (sink.fd >= 0)
		return 0;
	if (sink.dying >= SINK_MAX_DYING) {
		/* Retried when one is reaped; fds wait meanwhile (and clients pause). */
		log_warning("sink: %u killed sinks are still stuck; not starting another", sink.dying);
		return -EBUSY;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1U << 20))
		max_fd = (int)rl.rlim_cur;
	sink.last_spawn_ms = now_ms();
	r = sink_make_spare();
	if (r < 0) {
		log_error("sink: socketpair: %s", strerror(-r));
		sink_spawn_later();
		return r;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		log_error("sink: fork: %s", strerror(errno));
		sink_spawn_later();	/* the spare stays for the retry */
		return r;
	}
	if (pid == 0)
		sink_child(sink.spare[1], parent, max_fd);
	pair[0] = sink.spare[0];
	pair[1] = sink.spare[1];
	sink.spare[0] = sink.spare[1] = -1;
	close(pair[1]);
	(void)sink_make_spare();
	sink.ev_read = event_new(sink.base, pair[0], EV_READ | EV_PERSIST, sink_on_read, NULL);
	sink.ev_write = event_new(sink.base, pair[0], EV_WRITE, sink_on_write, NULL);
	sink.pid = pid;
	sink.fd = pair[0];
	sink.first_seq = sink.next_seq;
	if (!sink.ev_read || !sink.ev_write) {
		log_error("sink: out of memory");
		kill(pid, SIGKILL);
		sink.dying++;
		sink_lost();
		return -ENOMEM;
	}
	event_add(sink.ev_read, NULL);
	log_debug("sink: started process %d", (int)pid);
	sink_flush();
	return 0;
}

/* Set up the queues and events, and start the first sink. */
int sink_init(struct event_base *base, const struct conf *conf)
{
	size_t max = 65536;
	struct rlimit rl;
	int r;

	sink.base = base;
	sink.timeout_ms = conf->sink_timeout_ms;
	/* The daemon cannot hold more fds than its limit, so the queues never overflow. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = rl.rlim_cur < (1U << 20) ? (size_t)rl.rlim_cur : (1U << 20);
	/* A reserve of half the table: fds one read brings in always fit. */
	sink.high_water = max / 2 > 2 ? max / 2 : 2;
	sink.queue = calloc(max, sizeof(int));
	sink.queue_uid = calloc(max, sizeof(uid_t));
	sink.queue_cap = sink.queue && sink.queue_uid ? max : 0;
	/* Closer threads may still use these at exit: made once, never freed. */
	if (!closer.items) {
		closer.items = calloc(max, sizeof(*closer.items));
		closer.cap = closer.items ? max : 0;
	}
	if (closer.notify_fd < 0)
		closer.notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	sink.ev_timeout = evtimer_new(base, sink_on_timeout, NULL);
	sink.ev_respawn = evtimer_new(base, sink_on_respawn, NULL);
	sink.ev_drained = event_new(base, -1, 0, sink_on_caught_up, NULL);
	sink.ev_child = evsignal_new(base, SIGCHLD, sink_on_child, NULL);
	sink.ev_closed = closer.notify_fd >= 0 ?
		event_new(base, closer.notify_fd, EV_READ | EV_PERSIST, sink_on_closed, NULL) : NULL;
	if (!sink.queue_cap || !closer.items || !sink.ev_timeout || !sink.ev_respawn || !sink.ev_drained ||
	    !sink.ev_child || !sink.ev_closed) {
		sink_done();
		return -ENOMEM;
	}
	event_add(sink.ev_child, NULL);
	event_add(sink.ev_closed, NULL);
	r = sink_spawn();
	if (r < 0)
		sink_done();
	return r;
}

/* At exit: hand over what we can, let the sink see the end, free our part. */
void sink_done(void)
{
	/* Best effort; what stays queued is released when this process exits. */
	if (sink.fd >= 0)
		sink_flush();
	if (sink.ev_read)
		event_free(sink.ev_read);
	if (sink.ev_write)
		event_free(sink.ev_write);
	if (sink.fd >= 0)
		close(sink.fd);	/* the sink sees the end and exits */
	if (sink.ev_timeout)
		event_free(sink.ev_timeout);
	if (sink.ev_respawn)
		event_free(sink.ev_respawn);
	if (sink.ev_drained)
		event_free(sink.ev_drained);
	if (sink.ev_child)
		event_free(sink.ev_child);
	if (sink.ev_closed)
		event_free(sink.ev_closed);
	if (sink.spare[0] >= 0) {
		close(sink.spare[0]);
		close(sink.spare[1]);
	}
	free(sink.queue);
	free(sink.queue_uid);
	sink = (struct sink){ .fd = -1, .spare = { -1, -1 } };
}

/* Who to tell when a congestion is over (the server). */
void sink_on_drained(void (*fn)(void *userdata), void *userdata)
{
	sink.on_drained = fn;
	sink.userdata = userdata;
}

/* Should the server stop taking in fds from everybody (and accepting)? */
bool sink_congested(void)
{
	return sink.congested;
}

/* Should the server stop reading fds from this uid? */
bool sink_uid_congested(uid_t uid)
{
	bool over = false;

	if (sink.congested)
		return true;
	pthread_mutex_lock(&closer.lock);
	for (unsigned i = 0; i < closer.n_uids; i++)
		if (closer.uids[i].uid == uid) {
			struct uid_slot *u = &closer.uids[i];

			if (u->held >= SINK_UID_HIGH_WATER && !u->paused) {
				u->paused = true;
				/* Debug only: the uid itself chooses how often. */
				log_debug("sink: uid %u has %zu fds waiting to be closed; pausing its connections",
					   (unsigned)uid, u->held);
			}
			over = u->paused;
			break;
		}
	pthread_mutex_unlock(&closer.lock);
	return over;
}

/* Queue one fd; false when it had to be closed here (no sink set up). */
static bool sink_push(int fd, uid_t uid)
{
	if (!sink.base || sink.n_queue >= sink.queue_cap) {
		/* Not a daemon (unit tests), or more fds than the limit allows. */
		close(fd);
		return false;
	}
	pthread_mutex_lock(&closer.lock);
	uid_slot(uid)->held++;
	pthread_mutex_unlock(&closer.lock);
	sink.queue_uid[sink.n_queue] = uid;
	sink.queue[sink.n_queue++] = fd;
	return true;
}

/* Get rid of one fd, counted against uid, without ever blocking the loop. */
void sink_close_uid(int fd, uid_t uid)
{
	if (fd < 0)
		return;
	if (sink_push(fd, uid))
		sink_flush();
}

/* Get rid of one fd nobody in particular sent. */
void sink_close(int fd)
{
	sink_close_uid(fd, (uid_t)-1);
}

/* Get rid of every fd of a set uid sent (one flush for all). */
void sink_close_fds(struct vl_fds *f, uid_t uid)
{
	bool queued = false;

	for (unsigned i = 0; i < f->n; i++)
		if (f->fds[i] >= 0)
			queued |= sink_push(f->fds[i], uid);
	f->n = 0;
	if (queued)
		sink_flush();
}

/* Nothing queued, with a closer thread, waiting for its 'C', or unacknowledged by the sink? */
bool sink_idle(void)
{
	bool idle;

	pthread_mutex_lock(&closer.lock);
	idle = closer.n == 0 && closer.n_batches == 0 && closer.n_done == 0;
	pthread_mutex_unlock(&closer.lock);
	return idle && sink.n_queue == 0 && sink.n_commits == 0 && sink.told == 0;
}
