/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The worker pool hands a uid's small releases to the worker as one batch,
 * ahead of that uid's own allocations (one hand-over, one wake-up), and
 * completes every job exactly once, with more releases queued than fit in
 * one batch or in 4 MiB; a small allocation that its quota admits does not wait for its
 * uid's releases, one that it does not admit does. The jobs' completions
 * (on the main thread) record the order. An admitted small allocation passes
 * only releases: never its uid's allocation that came before it.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "physmemd.h"
#include "test-loop.h"

#define MAX_JOBS 200

/* What completed, in order: 'R' a release, 'A' an allocation, 'L' one larger than inline_max, 'H' one inline_ok refuses. */
static char ran[MAX_JOBS + 1];
static unsigned n_done;
static bool admit;
/* Releases a worker (or the shutdown) ran: the backend's side, counted on the worker's thread. */
static unsigned releases_run;

static int fake_allocate(void *state, uint64_t size, bool contiguous, int cache, struct backend_buffer *ret,
			 const char **ret_feature)
{
	(void)state;
	(void)contiguous;
	(void)cache;
	(void)ret_feature;
	memset(ret, 0, sizeof(*ret));
	ret->fd = -1;
	ret->size = size;
	return 0;
}

static void fake_release(void *state, struct backend_buffer *b, bool keep)
{
	(void)state;
	(void)keep;
	b->fd = -1;
	__atomic_add_fetch(&releases_run, 1, __ATOMIC_SEQ_CST);
}

/* The backend keeps 8 KiB allocations off the loop (as memfd does those that reserve huge pages). */
#define OFF_LOOP_SIZE 8192

static bool fake_inline_ok(void *state, uint64_t size)
{
	(void)state;
	return size != OFF_LOOP_SIZE;
}

static const struct backend_ops fake_ops = {
	.name = "fake",
	.allocate = fake_allocate,
	.release = fake_release,
	.inline_max = 64 << 10,
	.inline_ok = fake_inline_ok,
};

static void job_done(struct job *j)
{
	char c = 'A';

	if (j->kind == JOB_RELEASE)
		c = 'R';
	else if (j->size == OFF_LOOP_SIZE)
		c = 'H';
	else if (j->size > fake_ops.inline_max)
		c = 'L';
	ran[n_done++] = c;
	free(j);
}

/* The quota's answer, as the test sets it. */
static bool job_admit(struct job *j)
{
	(void)j;
	return admit;
}

static void submit(struct worker_pool *p, enum job_kind kind, uid_t uid, uint64_t size)
{
	struct job *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	j->kind = kind;
	j->uid = uid;
	j->size = size;
	j->b.fd = -1;
	j->b.size = size;
	j->done = job_done;
	if (kind == JOB_ALLOCATE)
		j->admit = job_admit;
	worker_submit(p, j);
}

/* Run the loop until every submitted job is done (a hang fails after 10 s: liveness only). */
static void settle(struct event_base *base, struct worker_pool *p, unsigned want)
{
	uint64_t deadline = test_loop_now_ms() + 10000;

	while (n_done < want || !worker_pool_idle(p)) {
		assert_true(test_loop_now_ms() < deadline);
		/* Never blocked for good: a pass ends after 100 ms even with nothing due. */
		assert_int_equal(event_base_loopexit(base, &(struct timeval){ .tv_usec = 100000 }), 0);
		assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);
	}
}

/* One test's loop, its waking timer (unless none is wanted) and a worker pool; the fake jobs' state reset. */
struct fixture {
	struct event_base *base;
	struct event *tick;
	struct worker_pool *pool;
	struct conf conf;		/* the pool keeps a pointer to it */
};

/* The test hook's delay for every large job (ms) in the next fixture_start(). */
static uint64_t large_job_delay_ms;

static void fixture_start(struct fixture *f, bool admitted, bool tick)
{
	struct timeval tv = { .tv_usec = 100000 };

	conf_defaults(&f->conf);
	f->conf.debug_job_delay_ms = large_job_delay_ms;
	n_done = 0;
	releases_run = 0;
	admit = admitted;
	memset(ran, 0, sizeof(ran));
	f->base = event_base_new();
	assert_non_null(f->base);
	f->tick = NULL;
	if (tick) {
		f->tick = event_new(f->base, -1, EV_PERSIST, test_loop_on_tick, NULL);
		assert_non_null(f->tick);
		event_add(f->tick, &tv);
	}
	assert_int_equal(worker_pool_new(f->base, &f->conf, &fake_ops, NULL, &f->pool), 0);
}

static void fixture_stop(struct fixture *f)
{
	worker_pool_free(f->pool);
	if (f->tick)
		event_free(f->tick);
	event_base_free(f->base);
}

/*
 * Submit one uid's jobs as jobs spells them ('R' a 4 KiB release, 'M' a
 * 3 MiB one, 'A' a 4 KiB allocation, 'L' a 1 MiB one, 'H' an 8 KiB one that
 * the backend keeps off the loop), the quota admitting
 * allocations or not, and check the order they completed in.
 */
static void run_jobs(bool admitted, const char *jobs, const char *want)
{
	struct fixture f;
	unsigned n = 0;

	fixture_start(&f, admitted, true);
	for (const char *c = jobs; *c; c++, n++)
		submit(f.pool, *c == 'R' || *c == 'M' ? JOB_RELEASE : JOB_ALLOCATE, 1000,
		       *c == 'M' ? 3 << 20 : *c == 'L' ? 1 << 20 : *c == 'H' ? OFF_LOOP_SIZE : 4096);
	settle(f.base, f.pool, n);
	assert_string_equal(ran, want);
	assert_int_equal(n_done, n);
	fixture_stop(&f);
}

/* Not admitted: it waits, and the three releases went together (one at a time would give "RARR"). */
static void test_releases_batched_ahead_of_own_allocation(void **state)
{
	(void)state;
	run_jobs(false, "RARR", "RRRA");
}

/* Admitted: it completes on the main thread before the releases' batch comes back. */
static void test_admitted_allocation_does_not_wait_for_releases(void **state)
{
	(void)state;
	run_jobs(true, "RARR", "ARRR");
}

/* 150 releases and then an allocation: every job runs and completes once, the allocation last. */
static void test_more_releases_than_one_batch(void **state)
{
	char jobs[152];

	(void)state;
	memset(jobs, 'R', 150);
	jobs[150] = 'A';
	jobs[151] = '\0';
	run_jobs(false, jobs, jobs);
}

/* Two 3 MiB releases are more than one small job's 4 MiB: not one batch, the allocation runs between them. */
static void test_batch_bounded_in_bytes(void **state)
{
	(void)state;
	run_jobs(false, "MAM", "RAR");
}

/* Three releases and three admitted allocations, alternating: each allocation passes the releases, in order. */
static void test_admitted_allocations_pass_releases_in_order(void **state)
{
	(void)state;
	run_jobs(true, "RARARA", "AAARRR");
}

/*
 * Release, 1 MiB allocation (not inline), release, admitted 4 KiB
 * allocation: the small one passes the releases' batch, never the larger
 * allocation queued before it.
 */
static void test_admitted_allocation_does_not_pass_an_earlier_one(void **state)
{
	(void)state;
	run_jobs(true, "RLRA", "RRLA");
}

/* A size the backend keeps off the loop goes to a worker in its turn, like a large one. */
static void test_backend_keeps_allocation_off_loop(void **state)
{
	(void)state;
	run_jobs(true, "RHRA", "RRHA");
}

/* run_inline() runs a queued small allocation at once, without the loop, and leaves a release queued. */
static void test_run_inline_only_small_allocations(void **state)
{
	struct fixture f;

	(void)state;
	fixture_start(&f, false, false);
	submit(f.pool, JOB_ALLOCATE, 1000, 4096);
	submit(f.pool, JOB_RELEASE, 1001, 4096);
	worker_pool_run_inline(f.pool);
	assert_string_equal(ran, "A");
	assert_false(worker_pool_idle(f.pool));	/* the release waits for the loop's dispatch */
	worker_pool_run_inline(NULL);
	settle(f.base, f.pool, 2);
	assert_string_equal(ran, "AR");
	fixture_stop(&f);
}

#define HOLD_LONG_US 60000000ULL

/* A fixture whose releases are held for up to hold_us (the pool reads its conf as it goes). */
static void fixture_start_hold(struct fixture *f, bool admitted, uint64_t hold_us)
{
	fixture_start(f, admitted, false);
	f->conf.release_hold_us = hold_us;
}

/*
 * One pass of the loop (the dispatch of what was submitted), then no loop,
 * so that no hold timer can run: want releases must have run on the worker
 * (waited for up to 10 s), and none besides in the next 100 ms.
 */
static void dispatch_expect_run(struct fixture *f, unsigned want)
{
	uint64_t deadline = test_loop_now_ms() + (want ? 10000 : 100);

	assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
	while (test_loop_now_ms() < deadline && __atomic_load_n(&releases_run, __ATOMIC_SEQ_CST) < (want ? want : 1))
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	if (want)
		nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	assert_int_equal(__atomic_load_n(&releases_run, __ATOMIC_SEQ_CST), want);
}

/*
 * Small releases are held back until their uid has eight: seven wait (a
 * worker woken for each would have run them), the eighth sends all eight
 * to the worker, without the hold's timer. An admitted allocation passes
 * them meanwhile.
 */
static void test_small_releases_held_until_eight(void **state)
{
	struct fixture f;

	(void)state;
	fixture_start_hold(&f, true, HOLD_LONG_US);
	for (int i = 0; i < 7; i++)
		submit(f.pool, JOB_RELEASE, 1000, 4096);
	dispatch_expect_run(&f, 0);
	submit(f.pool, JOB_ALLOCATE, 1000, 4096);
	dispatch_expect_run(&f, 0);
	assert_string_equal(ran, "A");
	submit(f.pool, JOB_RELEASE, 1000, 4096);
	dispatch_expect_run(&f, 8);
	settle(f.base, f.pool, 9);
	assert_string_equal(ran, "ARRRRRRRR");
	fixture_stop(&f);
}

/*
 * A lone held release goes when its time is up: the timer ends the hold
 * (no tick here wakes the loop). With release-hold-us = 0 nothing is held.
 */
static void test_held_release_goes_by_time(void **state)
{
	struct fixture f;

	(void)state;
	fixture_start_hold(&f, true, 200000);
	submit(f.pool, JOB_RELEASE, 1000, 4096);
	dispatch_expect_run(&f, 0);
	settle(f.base, f.pool, 1);
	assert_string_equal(ran, "R");
	fixture_stop(&f);

	fixture_start_hold(&f, true, 0);
	submit(f.pool, JOB_RELEASE, 1000, 4096);
	dispatch_expect_run(&f, 1);
	fixture_stop(&f);
}

/* Submit a 4 KiB release bound to a device (the fake backend's release looks at no binding). */
static void submit_bound_release(struct worker_pool *p)
{
	struct job *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	j->kind = JOB_RELEASE;
	j->uid = 1000;
	j->size = j->b.size = 4096;
	j->b.fd = -1;
	j->b.n_bindings = 1;
	j->done = job_done;
	worker_submit(p, j);
}

static bool never_hold(void *ctx)
{
	(void)ctx;
	return false;
}

/*
 * Nothing waits for a hold: an allocation the quota does not admit, one
 * that is not run on the loop (1 MiB), and any release larger than 64 KiB
 * (8 MiB goes to the large lane) or bound to a device (its unmapping is
 * not put off), alone or behind a small release, each send the uid's
 * releases to the worker at once; so does the server's hold check saying
 * no (near max-buffers).
 */
static void test_hold_never_delays_a_job(void **state)
{
	static const struct {
		bool admitted;
		uint64_t size;
		const char *want;
	} allocations[] = {
		{ false, 4096, "RA" },
		{ true, 1 << 20, "RL" },
	};

	(void)state;
	for (int behind = 0; behind < 2; behind++) {
		static const uint64_t sizes[] = { 0, 128 << 10, 8 << 20 };

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			struct fixture f;

			fixture_start_hold(&f, true, HOLD_LONG_US);
			if (behind)
				submit(f.pool, JOB_RELEASE, 1000, 4096);
			if (sizes[i])
				submit(f.pool, JOB_RELEASE, 1000, sizes[i]);
			else
				submit_bound_release(f.pool);
			/*
			 * 8 MiB is not batched with the small one: it follows it
			 * (one job per uid at a time), when the loop has collected
			 * the first, which may be in the same pass. settle() shows
			 * that neither waits out the 60 s hold.
			 */
			if (!behind || sizes[i] != 8 << 20)
				dispatch_expect_run(&f, 1 + (unsigned)behind);
			settle(f.base, f.pool, 1 + (unsigned)behind);
			fixture_stop(&f);
		}
	}
	{
		struct fixture f;

		fixture_start_hold(&f, true, HOLD_LONG_US);
		worker_pool_set_hold_check(f.pool, never_hold, NULL);
		submit(f.pool, JOB_RELEASE, 1000, 4096);
		dispatch_expect_run(&f, 1);
		fixture_stop(&f);
	}
	for (size_t i = 0; i < sizeof(allocations) / sizeof(allocations[0]); i++) {
		struct fixture f;

		fixture_start_hold(&f, allocations[i].admitted, HOLD_LONG_US);
		submit(f.pool, JOB_RELEASE, 1000, 4096);
		submit(f.pool, JOB_ALLOCATE, 1000, allocations[i].size);
		dispatch_expect_run(&f, 1);
		fixture_stop(&f);
		assert_string_equal(ran, allocations[i].want);
	}
}

/* Held releases are run, not lost, when the pool stops. */
static void test_held_releases_run_at_shutdown(void **state)
{
	struct fixture f;

	(void)state;
	fixture_start_hold(&f, true, HOLD_LONG_US);
	for (int i = 0; i < 3; i++)
		submit(f.pool, JOB_RELEASE, 1000 + i, 4096);
	dispatch_expect_run(&f, 0);
	fixture_stop(&f);
	assert_int_equal(releases_run, 3);
	assert_string_equal(ran, "RRR");
}

/* The nice value of this process's thread tid (from /proc; fails the test if unreadable). */
static int thread_nice(const char *tid, char *comm, size_t size)
{
	char path[320], buf[512], *close_paren;
	int nice = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%s/comm", tid);
	f = fopen(path, "r");
	assert_non_null(f);
	if (!fgets(comm, (int)size, f))
		comm[0] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	fclose(f);
	snprintf(path, sizeof(path), "/proc/self/task/%s/stat", tid);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	/* Field 19 (nice) is the 17th after the ") " that ends the name. */
	close_paren = strrchr(buf, ')');
	assert_non_null(close_paren);
	{
		char *p = close_paren + 2;

		for (int i = 0; i < 16; i++) {
			p = strchr(p, ' ');
			assert_non_null(p);
			p++;
		}
		nice = atoi(p);
	}
	return nice;
}

/*
 * The large lane's threads (worker_threads of them) run WORKER_NICE below
 * this thread (at most nice 19); the small lane's one (releases the loop's
 * allocations wait for) and this thread keep this thread's nice value.
 */
static void test_large_workers_run_below_the_loop(void **state)
{
	struct fixture f;
	struct conf conf;
	unsigned large = 0, small = 0;
	int base, want;

	(void)state;
	conf_defaults(&conf);
	errno = 0;
	base = getpriority(PRIO_PROCESS, 0);
	assert_false(base == -1 && errno);
	want = base + WORKER_NICE > 19 ? 19 : base + WORKER_NICE;
	fixture_start(&f, true, false);
	for (int tries = 0; tries < 500 && (large < conf.worker_threads || small < 1); tries++) {
		DIR *d = opendir("/proc/self/task");
		struct dirent *e;
		char comm[32];

		assert_non_null(d);
		large = small = 0;
		while ((e = readdir(d))) {
			int nice;

			if (e->d_name[0] == '.')
				continue;
			nice = thread_nice(e->d_name, comm, sizeof(comm));
			large += strcmp(comm, "physmemd-large") == 0 && nice == want;
			small += strcmp(comm, "physmemd-small") == 0 && nice == base;
		}
		closedir(d);
		if (large < conf.worker_threads || small < 1)
			nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	if (large != conf.worker_threads || small != 1)
		fail_msg("%u of %u physmemd-large threads at nice %d, %u of 1 physmemd-small at %d", large,
			 (unsigned)conf.worker_threads, want, small, base);
	assert_int_equal(getpriority(PRIO_PROCESS, 0), base);
	fixture_stop(&f);
}

/*
 * Several uids at once: their hand-overs wait side by side in each lane
 * (batches of small releases, large jobs slowed by the test hook so that
 * both large threads are busy), none is stranded or run twice; then the
 * same again, stopped while jobs are still queued, handed over and running:
 * every job is done exactly once (a lost semaphore post hangs the first
 * half; a job run twice or freed twice shows in the count or under ASan).
 */
static void test_many_uids_and_shutdown_in_flight(void **state)
{
	enum { UIDS = 8, PER_UID = 7 };
	struct fixture f;
	unsigned n = 0;

	(void)state;
	large_job_delay_ms = 20;
	fixture_start(&f, true, true);
	for (int round = 0; round < 2; round++) {
		for (uid_t u = 1000; u < 1000 + UIDS; u++) {
			for (int i = 0; i < 5; i++)
				submit(f.pool, JOB_RELEASE, u, 4096);
			submit(f.pool, JOB_ALLOCATE, u, 8 << 20);
			submit(f.pool, JOB_RELEASE, u, 8 << 20);
			n += PER_UID;
		}
		if (round == 0) {
			settle(f.base, f.pool, n);
			assert_int_equal(n_done, n);
		} else {
			/* Hand some over, let the large threads start, and stop. */
			for (int i = 0; i < 3; i++)
				assert_true(event_base_loop(f.base, EVLOOP_NONBLOCK) >= 0);
			nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
			assert_true(n_done < n);
		}
	}
	fixture_stop(&f);
	large_job_delay_ms = 0;
	assert_int_equal(n_done, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_releases_batched_ahead_of_own_allocation),
		cmocka_unit_test(test_admitted_allocation_does_not_wait_for_releases),
		cmocka_unit_test(test_more_releases_than_one_batch),
		cmocka_unit_test(test_batch_bounded_in_bytes),
		cmocka_unit_test(test_admitted_allocations_pass_releases_in_order),
		cmocka_unit_test(test_admitted_allocation_does_not_pass_an_earlier_one),
		cmocka_unit_test(test_backend_keeps_allocation_off_loop),
		cmocka_unit_test(test_run_inline_only_small_allocations),
		cmocka_unit_test(test_large_workers_run_below_the_loop),
		cmocka_unit_test(test_many_uids_and_shutdown_in_flight),
		cmocka_unit_test(test_small_releases_held_until_eight),
		cmocka_unit_test(test_held_release_goes_by_time),
		cmocka_unit_test(test_hold_never_delays_a_job),
		cmocka_unit_test(test_held_releases_run_at_shutdown),
	};

	log_set_level(LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
