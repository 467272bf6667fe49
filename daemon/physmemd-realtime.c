/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * loop-realtime: the event-loop thread under SCHED_RR (priority 1), off by
 * default. Every call passes through that one thread and its work per call
 * is small and bounded (the heavy work is the workers'); on CPUs that client
 * processes keep busy, a call otherwise waits for whatever time slice the
 * loop is preempted for (tests/bench/fair-bench.sh: a victim's Status p99
 * about twice a plain round trip's with 64 busy uids on 2 CPUs; about equal
 * to it with the loop real-time; raising only its nice did not help).
 *
 * SCHED_RESET_ON_FORK: every thread and process the loop starts later (the
 * sink's closer threads, a respawned sink) starts as an ordinary one, so no
 * client's allocation, teardown or fd close runs real-time; the workers
 * exist before the loop is raised. The kernel's RT throttling
 * (sched_rt_runtime_us) still bounds the loop if something made it spin.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "physmemd.h"

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

int realtime_loop(enum lock_mode mode)
{
	struct sched_param sp = { .sched_priority = 1 };
	int r;

	if (mode == LOCK_NO)
		return 0;
	/* pid 0: the calling thread only (Linux schedules threads, not processes). */
	if (sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &sp) == 0) {
		log_info("the event loop runs under SCHED_RR, priority 1 (loop-realtime)");
		return 0;
	}
	r = -errno;
	if (mode == LOCK_YES) {
		log_error("loop-realtime = yes: cannot make the event loop real-time: %s", strerror(-r));
		return r;
	}
	log_info("loop-realtime = try: the event loop stays an ordinary thread (%s)", strerror(-r));
	return 0;
}
