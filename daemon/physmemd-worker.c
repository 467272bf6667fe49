/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Backend work off the event-loop thread. Allocating, pinning and releasing
 * memory can take seconds (populating, zeroing, freeing a gigabyte); it runs
 * on worker threads so that the thread serving every client never waits.
 *
 * Fairness: each uid has a FIFO queue, the queues are served round robin, and
 * at most one job per uid runs at a time. Jobs of at most WORKER_SMALL_JOB
 * bytes have a thread of their own (the small lane), so they never wait
 * behind large ones, which share conf->worker_threads threads. The smallest
 * allocations (backend->inline_max) run on the main thread when their turn
 * comes: a thread hand-over would cost more than the work. Releases never
 * do: punching a memfd the client maps can wait on its pages (page locks,
 * swap writeback), and nothing a client does may hold up the main thread.
 * A uid's small releases go to the worker together (up to RELEASE_BATCH of
 * them and WORKER_SMALL_JOB bytes in all: about what one small job
 * may take), ahead of that uid's own allocations, never of another uid's jobs: one
 * hand-over and one wake-up for all of them, and a release only ever gives
 * back quota, so the allocations behind it see no less than before. A small
 * allocation need not wait for its uid's releases either (queued or with a
 * worker): it passes them when it fits the quota with their bytes still
 * charged (job->admit), so a Free followed by a small Allocate never waits
 * for a worker, however many other uids' jobs the workers have queued; if
 * it does not fit, it waits for them, as every other job does.
 *
 * The smallest releases (RELEASE_HOLD_BYTES, bound to no device) are held
 * back for a moment before a worker is woken for them: until their uid has
 * RELEASE_HOLD of them queued, about release-hold-us have passed (the timer
 * may end a hold up to twice as late), or a job of that uid that may not
 * pass them waits behind them (any other release, an allocation its quota
 * does not admit, one not run on the loop). Waking a worker and being woken
 * by it costs more than such a release's work (on this project's VMs,
 * about 20 us against 5); held, eight of them cost one hand-over. A held
 * release stays charged to its uid, as it was while a worker ran it, and
 * its uid's allocations see it as they would a running release: one that
 * fits passes it, one that does not ends the hold. At most
 * RELEASE_HOLD_TOTAL releases are held in all, and none while the daemon
 * is that close to max-buffers (worker_pool_set_hold_check()).
 *
 * Threading: the queues, the callbacks and everything they touch belong to the
 * main thread. A worker sees only the jobs handed to its lane (under the
 * mutex), runs the backend with the job's plain inputs, puts the job on the
 * done list and wakes the main thread through an eventfd.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "physmemd.h"

TAILQ_HEAD(job_list, job);

/* At most this many of a uid's small releases are handed over at once. */
#define RELEASE_BATCH 64

/* Releases this small may be held back (see the top of this file) ... */
#define RELEASE_HOLD_BYTES (64ULL << 10)
/* ... until their uid has this many queued (or conf->release_hold_us passed), */
#define RELEASE_HOLD 8
/* ... while fewer than RELEASE_HOLD_TOTAL (physmemd.h) are queued in all. */

/* One uid's jobs, in the order they came (main thread only). */
struct uid_queue {
	TAILQ_ENTRY(uid_queue) entry;
	uid_t uid;
	unsigned running;		/* of its jobs with a worker: one, or one batch of releases */
	unsigned releasing;		/* of those, releases */
	struct job_list jobs;
	struct job *first_other;	/* the first of jobs that is not a release, or NULL */
	unsigned releases;		/* of jobs, releases */
	unsigned holdable;		/* of those, releases that may be held (job_holdable()) */
	uint64_t hold_until;		/* monotonic_ns() when the hold of its first job ends; 0: none */
};

struct lane {
	struct worker_pool *pool;
	/*
	 * One post per hand-over, n_started more to stop: a semaphore, not a
	 * condition variable, because glibc's pthread_cond_signal() (before
	 * 2.41) can wait for an earlier-woken waiter to run, and the main
	 * thread must never wait for a worker (least of all one at nice 10).
	 */
	sem_t sem;
	bool sem_ok;
	struct job_list ready;		/* under pool->lock */
	unsigned n_threads, n_started;
	unsigned busy;			/* jobs handed over and not done (main thread) */
	pthread_t *threads;
};

struct worker_pool {
	const struct conf *conf;
	const struct backend_ops *backend;
	void *backend_state;
	pthread_mutex_t lock;
	struct job_list done;		/* under lock */
	bool stopping;			/* under lock */
	bool inline_only;		/* shutting down: run jobs on this thread */
	bool dispatch_wanted;		/* ev_dispatch is active */
	bool holding;			/* this dispatch pass held a release back */
	unsigned holdable;		/* queued releases that may be held, every uid's */
	uint64_t pass;			/* counts the passes that start jobs (worker_pool_pass) */
	/* Who pays for a job's start and completion on the loop (worker_pool_set_charge). */
	void (*charge)(void *ctx, uid_t uid, uint64_t since);
	void *charge_ctx;
	/* May releases be held at all now (worker_pool_set_hold_check)? NULL: yes. */
	bool (*may_hold)(void *ctx);
	void *may_hold_ctx;
	int efd;
	struct event *ev_done;
	struct event *ev_dispatch;
	struct event *ev_hold;		/* ends the holds that have run their time */
	TAILQ_HEAD(, uid_queue) queues;	/* served in this order; a served queue goes last */
	struct uid_queue fallback;	/* for jobs whose uid queue could not be allocated */
	struct lane lanes[2];		/* small, large */
};

static struct lane *lane_of(struct worker_pool *p, const struct job *j)
{
	return &p->lanes[j->size <= WORKER_SMALL_JOB ? 0 : 1];
}

/* The clock for charging a job's loop work, or 0 with nobody to charge. */
static uint64_t pool_clock(const struct worker_pool *p)
{
	return p->charge ? monotonic_ns() : 0;
}

/* Charge the loop time since since (pool_clock()) to uid. */
static void pool_charge(const struct worker_pool *p, uid_t uid, uint64_t since)
{
	if (p->charge)
		p->charge(p->charge_ctx, uid, since);
}

/*
 * A new buffer that is to be bound: bind it, or release it and report the
 * bind's error (the caller gets both or neither).
 */
static void worker_bind_new(struct worker_pool *p, struct job *j)
{
	struct backend_binding *bb;
	int r;

	if (j->result < 0 || !j->bind)
		return;
	bb = calloc(1, sizeof(*bb));
	r = bb ? p->backend->bind(p->backend_state, j->b.fd, &j->bind_device, j->bind_access, bb) : -ENOMEM;
	if (r < 0) {
		free(bb);
		p->backend->release(p->backend_state, &j->b, false);
		j->result = r;
		j->bind_failed = true;
		return;
	}
	bb->uid = j->uid;
	j->b.bindings = bb;
	j->b.n_bindings = 1;
}

/* The backend work itself; the only part that runs on a worker thread. */
static void worker_run(struct worker_pool *p, struct job *j)
{
	/* The test hook makes large jobs slow, as populating a gigabyte would be. */
	if (p->conf->debug_job_delay_ms && j->size > WORKER_SMALL_JOB && !p->inline_only) {
		struct timespec ts = { .tv_sec = (time_t)(p->conf->debug_job_delay_ms / 1000),
				       .tv_nsec = (long)(p->conf->debug_job_delay_ms % 1000) * 1000000 };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	switch (j->kind) {
	case JOB_ALLOCATE:
		if (j->pool[0])
			j->result = p->backend->allocate_pool(p->backend_state, j->pool, j->size, j->cache, &j->b,
							      &j->pool_failure, &j->feature);
		else
			j->result = p->backend->allocate(p->backend_state, j->size, j->contiguous, j->cache, &j->b,
							 &j->feature);
		worker_bind_new(p, j);
		break;
	case JOB_PIN:
		j->result = p->backend->pin(p->backend_state, j->memfd, j->offset, j->size, &j->b, &j->feature);
		worker_bind_new(p, j);
		break;
	case JOB_RELEASE:
		p->backend->release(p->backend_state, &j->b, false);
		j->result = 0;
		break;
	case JOB_BIND:
		j->result = p->backend->bind(p->backend_state, j->memfd, &j->bind_device, j->bind_access, &j->bound);
		if (j->result == 0)
			j->bound.uid = j->uid;
		break;
	}
}

/*
 * A large-lane thread lowers its own priority by WORKER_NICE from the
 * daemon's (a thread's nice value is its own on Linux). The small lane's
 * releases give back the fds and quota that allocations run on the loop
 * wait for: it keeps the loop's priority, or under load it falls behind
 * them until the fd table is full.
 */
static void worker_lower_priority(void)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	int nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, tid);
	if (nice == -1 && errno)
		nice = 0;
	nice = nice + WORKER_NICE > 19 ? 19 : nice + WORKER_NICE;
	if (setpriority(PRIO_PROCESS, tid, nice) < 0)
		log_warning("worker: cannot lower its priority to nice %d (%s): large jobs compete with the "
			    "event loop at its priority", nice, strerror(errno));
}

static void *worker_main(void *arg)
{
	struct lane *l = arg;
	struct worker_pool *p = l->pool;
	const uint64_t one = 1;

	if (l == &p->lanes[1])
		worker_lower_priority();
	for (;;) {
		struct job_list mine = TAILQ_HEAD_INITIALIZER(mine);
		struct job *j;

		while (sem_wait(&l->sem) < 0 && errno == EINTR)
			;
		pthread_mutex_lock(&p->lock);
		j = TAILQ_FIRST(&l->ready);
		if (!j) {
			bool stop = p->stopping;

			pthread_mutex_unlock(&p->lock);
			if (stop)
				break;
			continue;
		}
		/* The job and the ones handed over with it (one post). */
		do {
			TAILQ_REMOVE(&l->ready, j, entry);
			TAILQ_INSERT_TAIL(&mine, j, entry);
			j = TAILQ_FIRST(&l->ready);
		} while (j && j->batched);
		pthread_mutex_unlock(&p->lock);
		TAILQ_FOREACH(j, &mine, entry)
			worker_run(p, j);
		pthread_mutex_lock(&p->lock);
		TAILQ_CONCAT(&p->done, &mine, entry);
		pthread_mutex_unlock(&p->lock);
		/*
		 * Wake the main thread without the lock: it wants the lock at
		 * once, and a worker preempted by that wake-up while holding
		 * it (a worker that just punched a gigabyte has used up its
		 * CPU share, so it waits long for its next turn) would hold
		 * up the event loop, and every client with it.
		 */
		if (write(p->efd, &one, sizeof(one)) < 0)
			log_warning("cannot wake the main thread: %s", strerror(errno));
	}
	return NULL;
}

static struct uid_queue *queue_get(struct worker_pool *p, uid_t uid)
{
	struct uid_queue *q;

	TAILQ_FOREACH(q, &p->queues, entry)
		if (q != &p->fallback && q->uid == uid)
			return q;
	q = calloc(1, sizeof(*q));
	if (!q)
		return &p->fallback;
	q->uid = uid;
	TAILQ_INIT(&q->jobs);
	TAILQ_INSERT_TAIL(&p->queues, q, entry);
	return q;
}

/*
 * A release small enough to be held back before a worker is woken for it,
 * and bound to no device: a binding's unmapping is not put off.
 */
static bool job_holdable(const struct job *j)
{
	return j->kind == JOB_RELEASE && j->size <= RELEASE_HOLD_BYTES && !j->start && j->b.n_bindings == 0;
}

/*
 * Take j off q. first_other only ever moves forward past releases, so each
 * release is stepped over at most once: finding the job an allocation may
 * run ahead of costs no walk over the releases queued before it.
 */
static void queue_remove(struct worker_pool *p, struct uid_queue *q, struct job *j)
{
	if (j == q->first_other) {
		struct job *k = TAILQ_NEXT(j, entry);

		while (k && k->kind == JOB_RELEASE)
			k = TAILQ_NEXT(k, entry);
		q->first_other = k;
	}
	if (j->kind == JOB_RELEASE)
		q->releases--;
	if (job_holdable(j)) {
		q->holdable--;
		p->holdable--;
	}
	if (j == TAILQ_FIRST(&q->jobs))
		q->hold_until = 0;
	TAILQ_REMOVE(&q->jobs, j, entry);
}

/* Drop a queue that has nothing left to do. */
static void queue_put(struct worker_pool *p, struct uid_queue *q)
{
	if (q == &p->fallback || q->running || !TAILQ_EMPTY(&q->jobs))
		return;
	TAILQ_REMOVE(&p->queues, q, entry);
	free(q);
}

/* Start and run a job here and now (shutdown only). */
static void pool_run_inline(struct worker_pool *p, struct job *j)
{
	uint64_t t = pool_clock(p);
	uid_t uid = j->uid;

	p->pass++;
	j->started = !j->start || j->start(j) >= 0;
	if (j->started)
		worker_run(p, j);
	j->done(j);
	pool_charge(p, uid, t);
}

/*
 * May this job run on the event loop's thread? Only a small allocation the
 * backend says cannot block (a new memfd nobody else has seen yet); never a
 * pin (its memfd is the client's) or a release (the client may map the
 * pages being punched). The test hook slows only jobs larger than any of
 * these, so a daemon under test chooses as it would in production.
 */
static bool job_inline(const struct worker_pool *p, const struct job *j)
{
	return j->kind == JOB_ALLOCATE && !j->pool[0] && p->backend->inline_max > 0 && j->size <= p->backend->inline_max &&
	       (!p->backend->inline_ok || p->backend->inline_ok(p->backend_state, j->size));
}

/* May an inline allocation that has only releases before it start now? */
static bool may_pass_releases(const struct worker_pool *p, struct job *j)
{
	return j && job_inline(p, j) && j->admit && j->admit(j);
}

/*
 * Hold q's first job, a small release, back for now? Only while nothing
 * that may not pass it waits behind it (see the top of this file): every
 * release queued is one that may be held (no release passes another), and
 * the first job that is not a release, if any, may pass them.
 */
static bool queue_hold(struct worker_pool *p, struct uid_queue *q, struct job *j)
{
	uint64_t now, hold_ns = p->conf->release_hold_us * 1000;

	if (p->inline_only || hold_ns == 0 || !job_holdable(j) || q->holdable >= RELEASE_HOLD ||
	    q->holdable != q->releases || p->holdable >= RELEASE_HOLD_TOTAL ||
	    (q->first_other && !may_pass_releases(p, q->first_other)) || (p->may_hold && !p->may_hold(p->may_hold_ctx)))
		return false;
	now = monotonic_ns();
	/*
	 * The timer may fire a little before the hold's end (libevent's
	 * clock is its loop's cached time): a hold in its last quarter ends
	 * then, rather than a whole period later.
	 */
	if (q->hold_until == 0)
		q->hold_until = now + hold_ns;
	else if (now + hold_ns / 4 >= q->hold_until)
		return false;
	p->holding = true;
	return true;
}

/*
 * The job of q to start now, or NULL: its first one when a worker (or the
 * main thread) can take it and it is not held back, else an inline
 * allocation that has only releases before it (queued, held, or the one
 * with a worker) and fits the quota with their bytes still charged.
 * Nothing else ever passes a uid's job.
 */
static struct job *queue_next(struct worker_pool *p, struct uid_queue *q)
{
	struct job *j = TAILQ_FIRST(&q->jobs);
	const struct lane *l;

	if (!j)
		return NULL;
	l = lane_of(p, j);
	if (!q->running && queue_hold(p, q, j))
		return q->first_other;	/* may_pass_releases() said yes, or NULL */
	if (!q->running && (l->busy < l->n_threads || job_inline(p, j)))
		return j;
	/* Something other than releases is out: everything waits for it. */
	if (q->running != q->releasing)
		return NULL;
	j = q->first_other;
	return may_pass_releases(p, j) ? j : NULL;
}

/* A small release: cheap, and it may go with the uid's other small releases. */
static bool job_batchable(const struct job *j)
{
	return j->kind == JOB_RELEASE && j->size <= WORKER_SMALL_JOB && !j->start;
}

/*
 * Hand j (taken from q, its start() run) to lane l, and with it, when it is
 * a small release, the uid's other small releases still queued; q runs
 * nothing else until all of them are done.
 */
static void pool_hand_over(struct worker_pool *p, struct uid_queue *q, struct lane *l, struct job *j)
{
	struct job_list batch = TAILQ_HEAD_INITIALIZER(batch);
	uint64_t bytes = j->size;
	struct job *k, *next;
	unsigned n = 1;

	j->batched = false;
	TAILQ_INSERT_TAIL(&batch, j, entry);
	if (job_batchable(j))
		for (k = TAILQ_FIRST(&q->jobs); k && n < RELEASE_BATCH; k = next) {
			next = TAILQ_NEXT(k, entry);
			if (!job_batchable(k) || k->uid != j->uid || k->size > WORKER_SMALL_JOB - bytes)
				continue;
			bytes += k->size;
			queue_remove(p, q, k);
			k->batched = true;
			k->started = true;
			TAILQ_INSERT_TAIL(&batch, k, entry);
			n++;
		}
	q->running += n;
	if (j->kind == JOB_RELEASE)
		q->releasing += n;
	l->busy += n;
	pthread_mutex_lock(&p->lock);
	TAILQ_CONCAT(&l->ready, &batch, entry);
	pthread_mutex_unlock(&p->lock);
	sem_post(&l->sem);
}

/* Hand out the next job of each uid in turn while a lane has a thread free (or run only the inline ones). */
static void pool_dispatch(struct worker_pool *p, bool only_inline)
{
	struct uid_queue *q;

	if (!only_inline)
		p->dispatch_wanted = false;
	p->pass++;
	p->holding = false;
again:
	TAILQ_FOREACH(q, &p->queues, entry) {
		struct job *j = queue_next(p, q);
		uint64_t t;
		struct lane *l;
		uid_t uid;

		if (!j || (only_inline && !job_inline(p, j)))
			continue;
		l = lane_of(p, j);
		queue_remove(p, q, j);
		TAILQ_REMOVE(&p->queues, q, entry);
		TAILQ_INSERT_TAIL(&p->queues, q, entry);
		/* Its start (and an inline job's run and completion) is its uid's loop time. */
		t = pool_clock(p);
		uid = j->uid;
		j->started = !j->start || j->start(j) >= 0;
		/*
		 * Finished here: refused at the door (quota, caller gone: the
		 * reply is queued already), or small enough that running it is
		 * cheaper than the two thread hand-overs (done at once, as
		 * pool_collect() would do it).
		 */
		if (!j->started || job_inline(p, j)) {
			if (j->started)
				worker_run(p, j);
			j->done(j);
			pool_charge(p, uid, t);
			queue_put(p, q);
			goto again;
		}
		pool_hand_over(p, q, l, j);
		pool_charge(p, uid, t);
		goto again;
	}
	/*
	 * A release held back: the timer ends its hold if nothing else comes
	 * first. Not a short one: on this project's VMs, a loop that sleeps
	 * with a timer due within a millisecond or so made each 4 KiB
	 * Allocate + Free pair about 20 us slower (docs/PERFORMANCE.md).
	 */
	if (p->holding && !evtimer_pending(p->ev_hold, NULL)) {
		struct timeval tv = { .tv_sec = (time_t)(p->conf->release_hold_us / 1000000),
				      .tv_usec = (suseconds_t)(p->conf->release_hold_us % 1000000) };

		/* From now, not from the start of a pass that may have been long. */
		event_base_update_cache_time(event_get_base(p->ev_hold));
		/* Out of memory: looked at again at the loop's next turn, until they end. */
		if (evtimer_add(p->ev_hold, &tv) < 0)
			event_active(p->ev_hold, EV_TIMEOUT, 0);
	}
}

/* ev_dispatch's callback, and ev_hold's: the holds whose time is up end, the others wait on. */
static void pool_on_dispatch(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pool_dispatch(arg, false);
}

/* Take the finished jobs from the workers and complete them here. */
static void pool_collect(struct worker_pool *p)
{
	struct job_list done = TAILQ_HEAD_INITIALIZER(done);
	struct job *j;

	pthread_mutex_lock(&p->lock);
	TAILQ_CONCAT(&done, &p->done, entry);
	pthread_mutex_unlock(&p->lock);
	while ((j = TAILQ_FIRST(&done))) {
		struct uid_queue *q = j->queue;
		uint64_t t = pool_clock(p);
		uid_t uid = j->uid;

		TAILQ_REMOVE(&done, j, entry);
		q->running--;
		if (j->kind == JOB_RELEASE)
			q->releasing--;
		lane_of(p, j)->busy--;
		j->done(j);
		pool_charge(p, uid, t);
		queue_put(p, q);
	}
}

static void pool_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct worker_pool *p = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warning("eventfd: %s", strerror(errno));
	pool_collect(p);
	pool_dispatch(p, false);
}

uint64_t worker_pool_pass(const struct worker_pool *p)
{
	return p->pass;
}

void worker_pool_set_hold_check(struct worker_pool *p, bool (*may_hold)(void *ctx), void *ctx)
{
	p->may_hold = may_hold;
	p->may_hold_ctx = ctx;
}

void worker_pool_set_charge(struct worker_pool *p, void (*charge)(void *ctx, uid_t uid, uint64_t since), void *ctx)
{
	p->charge = charge;
	p->charge_ctx = ctx;
}

void worker_submit(struct worker_pool *p, struct job *j)
{
	struct uid_queue *q;

	if (p->inline_only) {
		pool_run_inline(p, j);
		return;
	}
	q = queue_get(p, j->uid);
	j->queue = q;
	TAILQ_INSERT_TAIL(&q->jobs, j, entry);
	if (j->kind != JOB_RELEASE && !q->first_other)
		q->first_other = j;
	if (j->kind == JOB_RELEASE)
		q->releases++;
	if (job_holdable(j)) {
		q->holdable++;
		p->holdable++;
	}
	/* From the loop, never from inside the caller: its callbacks may call back in. */
	if (!p->dispatch_wanted)
		event_active(p->ev_dispatch, EV_TIMEOUT, 0);
	p->dispatch_wanted = true;
}

void worker_pool_run_inline(struct worker_pool *p)
{
	/* Releases keep waiting for the loop's dispatch: more of them then go in one batch. */
	if (p && p->dispatch_wanted)
		pool_dispatch(p, true);
}

static int lane_start(struct worker_pool *p, struct lane *l, unsigned n)
{
	sigset_t all, old;
	int r = 0;

	l->pool = p;
	l->n_threads = n;
	TAILQ_INIT(&l->ready);
	if (sem_init(&l->sem, 0, 0) < 0)
		return -errno;
	l->sem_ok = true;
	l->threads = calloc(n, sizeof(*l->threads));
	if (!l->threads)
		return -ENOMEM;
	/* Signals are the main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; l->n_started < n; l->n_started++) {
		r = -pthread_create(&l->threads[l->n_started], NULL, worker_main, l);
		if (r < 0)
			break;
		/* For top -H and ps -L. */
		(void)pthread_setname_np(l->threads[l->n_started], l == &p->lanes[0] ? "physmemd-small" : "physmemd-large");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

int worker_pool_new(struct event_base *base, const struct conf *conf, const struct backend_ops *backend,
		    void *backend_state, struct worker_pool **ret)
{
	struct worker_pool *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->conf = conf;
	p->backend = backend;
	p->backend_state = backend_state;
	pthread_mutex_init(&p->lock, NULL);
	TAILQ_INIT(&p->done);
	TAILQ_INIT(&p->queues);
	TAILQ_INIT(&p->fallback.jobs);
	TAILQ_INSERT_TAIL(&p->queues, &p->fallback, entry);
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		r = -errno;
		free(p);
		return r;
	}
	p->ev_done = event_new(base, p->efd, EV_READ | EV_PERSIST, pool_on_done, p);
	p->ev_dispatch = event_new(base, -1, 0, pool_on_dispatch, p);
	p->ev_hold = evtimer_new(base, pool_on_dispatch, p);
	if (!p->ev_done || !p->ev_dispatch || !p->ev_hold) {
		worker_pool_free(p);
		return -ENOMEM;
	}
	event_add(p->ev_done, NULL);
	r = lane_start(p, &p->lanes[0], 1);
	if (r == 0)
		r = lane_start(p, &p->lanes[1], (unsigned)conf->worker_threads);
	if (r < 0) {
		log_error("cannot start worker threads: %s", strerror(-r));
		worker_pool_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

void worker_pool_free(struct worker_pool *p)
{
	struct uid_queue *q;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < 2; i++)
		for (unsigned t = 0; t < p->lanes[i].n_started; t++)
			sem_post(&p->lanes[i].sem);
	/* Jobs already handed over finish; then the threads see stopping and leave. */
	for (unsigned i = 0; i < 2; i++) {
		for (unsigned t = 0; t < p->lanes[i].n_started; t++)
			pthread_join(p->lanes[i].threads[t], NULL);
		if (p->lanes[i].sem_ok)
			sem_destroy(&p->lanes[i].sem);
		free(p->lanes[i].threads);
	}
	p->inline_only = true;
	pool_collect(p);
	/* What never reached a worker runs here (releases must still close their fds). */
	while ((q = TAILQ_FIRST(&p->queues))) {
		struct job *j = TAILQ_FIRST(&q->jobs);

		if (!j) {
			TAILQ_REMOVE(&p->queues, q, entry);
			if (q != &p->fallback)
				free(q);
			continue;
		}
		queue_remove(p, q, j);
		pool_run_inline(p, j);
	}
	if (p->ev_done)
		event_free(p->ev_done);
	if (p->ev_dispatch)
		event_free(p->ev_dispatch);
	if (p->ev_hold)
		event_free(p->ev_hold);
	close(p->efd);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Is every job submitted so far done, its done() run too? */
bool worker_pool_idle(const struct worker_pool *p)
{
	const struct uid_queue *q;

	/* busy counts a job from its hand-over until its done() ran on this thread. */
	if (p->lanes[0].busy > 0 || p->lanes[1].busy > 0)
		return false;
	TAILQ_FOREACH(q, &p->queues, entry)
		if (!TAILQ_EMPTY(&q->jobs))
			return false;
	return true;
}
