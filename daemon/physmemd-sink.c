/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sink: a child process that closes the fds clients send us.
 *
 * The last close of a file runs its release in the closing thread, and a
 * client chooses what that release does: a TCP socket with unsent data and
 * SO_LINGER waits for as long as the client likes, a file on a FUSE mount
 * the client serves waits for a FLUSH answer that never comes. The event
 * loop serves everybody, so it never closes a client's fd (nor a connection
 * socket, whose receive queue may hold more of them). sink_close() passes
 * the fd to the sink over a socketpair and then closes the daemon's copy,
 * which is not the last reference while the fd is in flight or held there.
 *
 * Protocol on the SOCK_SEQPACKET pair: 'F' carries up to VL_MAX_FDS fds,
 * which the sink only holds; once the daemon has closed its own copies it
 * sends 'C', and the sink closes what it holds and answers with the count
 * (a uint64_t). Closing before 'C' could leave the daemon's copy as the last
 * reference. A sink that acknowledges nothing for sink-timeout-ms while fds
 * are out is killed: a dying process finishes such closes without blocking
 * (lingering is skipped on exit, killable waits end), and the fds still
 * queued to it go with it. A new sink replaces it, at most one per
 * SINK_RESPAWN_MS. Until then fds wait in a list here; while that list is
 * long, the server stops reading from clients that send fds and stops
 * accepting (sink_congested()).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "physmemd.h"

#define SINK_RESPAWN_MS 100
/* Queued fds at which fd-sending clients and accepting pause; they resume at half. */
#define SINK_HIGH_WATER 1024
#define SINK_KILL_LOG_INTERVAL_MS 1000

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
	int *queue;			/* fds waiting to be sent */
	size_t n_queue;
	size_t queue_cap;
	size_t queue_max;		/* RLIMIT_NOFILE: never more fds than that */
	unsigned n_uncommitted;		/* sent in an 'F', no 'C' sent yet */
	uint64_t outstanding;		/* sent, not acknowledged */
	uint64_t kills;
	uint64_t kills_unlogged;
	uint64_t last_spawn_ms;
	uint64_t last_kill_log_ms;
	bool congested;
	void (*on_drained)(void *userdata);
	void *userdata;
};

static struct sink sink = { .fd = -1 };

static void sink_flush(void);
static void sink_spawn_later(void);
static int sink_spawn(void);

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval ms_to_tv(uint64_t ms)
{
	return (struct timeval){ .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
}

/*
 * The child: hold what arrives with 'F', close it on 'C', say how many.
 * Only async-signal-safe calls: the daemon may have other threads.
 */
static _Noreturn void sink_child(int fd, pid_t parent, int max_fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * VL_MAX_FDS)];
	} control;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int held[VL_MAX_FDS];
	unsigned n_held = 0;
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
		struct msghdr mh = { 0 };
		struct iovec iov;
		struct cmsghdr *c;
		char op = 0;
		ssize_t n;

		iov.iov_base = &op;
		iov.iov_len = 1;
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
			unsigned nfds;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			nfds = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (unsigned i = 0; i < nfds; i++) {
				if (n_held < VL_MAX_FDS)
					held[n_held++] = fds[i];
				else
					(void)close(fds[i]);	/* cannot happen; never keep one */
			}
		}
		if (op == 'C') {
			uint64_t count = n_held;

			for (unsigned i = 0; i < n_held; i++)
				(void)close(held[i]);
			n_held = 0;
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
	sink.outstanding = 0;	/* released by the dying process */
	sink.n_uncommitted = 0;
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
			    (int)sink.pid, why, (unsigned long long)(sink.outstanding + sink.n_queue),
			    (unsigned long long)sink.kills, (unsigned long long)sink.kills_unlogged);
		sink.last_kill_log_ms = now;
		sink.kills_unlogged = 0;
	} else {
		sink.kills_unlogged++;
	}
	if (sink.pid > 0)
		kill(sink.pid, SIGKILL);
	sink_lost();
}

/* Keep the progress clock running exactly while work is out or waiting. */
static void sink_update_timer(bool progress)
{
	struct timeval tv = ms_to_tv(sink.timeout_ms);

	if (sink.fd < 0 || (sink.outstanding == 0 && sink.n_queue == 0)) {
		evtimer_del(sink.ev_timeout);
		return;
	}
	if (progress || !evtimer_pending(sink.ev_timeout, NULL))
		evtimer_add(sink.ev_timeout, &tv);
}

/* Resume paused clients once the queue is down to half the high-water mark. */
static void sink_update_congestion(void)
{
	if (!sink.congested && sink.n_queue >= SINK_HIGH_WATER) {
		sink.congested = true;
		log_notice("sink: %zu fds waiting to be closed; pausing clients that send fds", sink.n_queue);
	} else if (sink.congested && sink.n_queue <= SINK_HIGH_WATER / 2) {
		sink.congested = false;
		/* Not from here: the caller may be in the middle of freeing a connection. */
		event_active(sink.ev_drained, EV_TIMEOUT, 0);
	}
}

/* Send one byte (and fds); returns 0, -EAGAIN or another negative errno. */
static int sink_send(char op, const int *fds, unsigned nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * VL_MAX_FDS)];
	} control;
	struct msghdr mh = { 0 };
	struct iovec iov = { .iov_base = &op, .iov_len = 1 };

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
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
	if (sendmsg(sink.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return errno == EWOULDBLOCK || errno == ETOOMANYREFS || errno == ENOBUFS ? -EAGAIN : -errno;
	return 0;
}

/* Hand queued fds to the sink, as far as it takes them. */
static void sink_flush(void)
{
	while (sink.fd >= 0) {
		unsigned n;
		int r;

		if (sink.n_uncommitted > 0) {
			r = sink_send('C', NULL, 0);
			if (r == -EAGAIN) {
				event_add(sink.ev_write, NULL);
				break;
			}
			if (r < 0) {
				sink_kill("cannot be written to");
				break;
			}
			sink.n_uncommitted = 0;
		}
		if (sink.n_queue == 0)
			break;
		n = sink.n_queue < VL_MAX_FDS ? (unsigned)sink.n_queue : VL_MAX_FDS;
		r = sink_send('F', sink.queue + sink.n_queue - n, n);
		if (r == -EAGAIN) {
			event_add(sink.ev_write, NULL);
			break;
		}
		if (r < 0) {
			sink_kill("cannot be written to");
			break;
		}
		/* In flight, so ours are not the last references. */
		for (unsigned i = 0; i < n; i++)
			close(sink.queue[sink.n_queue - n + i]);
		sink.n_queue -= n;
		sink.outstanding += n;
		sink.n_uncommitted = n;
	}
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
		if (n != sizeof(count) || count > sink.outstanding) {
			sink_kill("sent a bad acknowledgement");
			return;
		}
		sink.outstanding -= count;
		progress = true;
	}
	sink_update_timer(progress);
	sink_flush();
}

static void sink_on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_del(sink.ev_write);
	sink_flush();
}

static void sink_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	static char why[64];

	(void)fd;
	(void)what;
	(void)arg;
	snprintf(why, sizeof(why), "made no progress for %llu ms", (unsigned long long)sink.timeout_ms);
	sink_kill(why);
}

static void sink_on_respawn(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sink_spawn();
}

static void sink_on_caught_up(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_notice("sink: caught up; resuming clients");
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
	}
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
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1U << 20))
		max_fd = (int)rl.rlim_cur;
	sink.last_spawn_ms = now_ms();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		r = -errno;
		log_error("sink: socketpair: %s", strerror(errno));
		sink_spawn_later();
		return r;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		log_error("sink: fork: %s", strerror(errno));
		close(pair[0]);
		close(pair[1]);
		sink_spawn_later();
		return r;
	}
	if (pid == 0)
		sink_child(pair[1], parent, max_fd);
	close(pair[1]);
	sink.ev_read = event_new(sink.base, pair[0], EV_READ | EV_PERSIST, sink_on_read, NULL);
	sink.ev_write = event_new(sink.base, pair[0], EV_WRITE, sink_on_write, NULL);
	sink.pid = pid;
	sink.fd = pair[0];
	if (!sink.ev_read || !sink.ev_write) {
		log_error("sink: out of memory");
		kill(pid, SIGKILL);
		sink_lost();
		return -ENOMEM;
	}
	event_add(sink.ev_read, NULL);
	log_debug("sink: started process %d", (int)pid);
	sink_flush();
	return 0;
}

int sink_init(struct event_base *base, const struct conf *conf)
{
	struct rlimit rl;
	int r;

	sink.base = base;
	sink.timeout_ms = conf->sink_timeout_ms;
	/* The daemon cannot hold more fds than its limit, so the queue never overflows. */
	sink.queue_max = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		sink.queue_max = rl.rlim_cur < (1U << 20) ? (size_t)rl.rlim_cur : (1U << 20);
	sink.queue = calloc(sink.queue_max, sizeof(int));
	sink.queue_cap = sink.queue_max;
	sink.ev_timeout = evtimer_new(base, sink_on_timeout, NULL);
	sink.ev_respawn = evtimer_new(base, sink_on_respawn, NULL);
	sink.ev_drained = event_new(base, -1, 0, sink_on_caught_up, NULL);
	sink.ev_child = evsignal_new(base, SIGCHLD, sink_on_child, NULL);
	if (!sink.queue || !sink.ev_timeout || !sink.ev_respawn || !sink.ev_drained || !sink.ev_child) {
		sink_done();
		return -ENOMEM;
	}
	event_add(sink.ev_child, NULL);
	r = sink_spawn();
	if (r < 0)
		sink_done();
	return r;
}

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
	free(sink.queue);
	sink = (struct sink){ .fd = -1 };
}

void sink_on_drained(void (*fn)(void *userdata), void *userdata)
{
	sink.on_drained = fn;
	sink.userdata = userdata;
}

bool sink_congested(void)
{
	return sink.congested;
}

/* Queue one fd; false when it had to be closed here (no sink set up). */
static bool sink_push(int fd)
{
	if (!sink.base || sink.n_queue >= sink.queue_cap) {
		/* Not a daemon (unit tests), or more fds than the limit allows. */
		close(fd);
		return false;
	}
	sink.queue[sink.n_queue++] = fd;
	return true;
}

void sink_close(int fd)
{
	if (fd < 0)
		return;
	if (sink_push(fd))
		sink_flush();
}

void sink_close_fds(struct vl_fds *f)
{
	bool queued = false;

	for (unsigned i = 0; i < f->n; i++)
		if (f->fds[i] >= 0)
			queued |= sink_push(f->fds[i]);
	f->n = 0;
	if (queued)
		sink_flush();
}
