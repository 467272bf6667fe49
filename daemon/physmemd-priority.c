/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event-loop thread's CPU priority. Every call passes through that one
 * thread, and what it does per call is small and bounded (the heavy work is
 * the workers'), so when the CPUs are busy a client's latency is mostly the
 * time the loop waits to be scheduled. The loop thread therefore runs
 * conf->loop_priority nice levels above the daemon's own nice; the workers,
 * the sink's closer threads and the sink process, which do work a client can
 * make long (populating, zeroing, closing), stay at the daemon's own, so no
 * client gets the loop's priority for work it asks for.
 *
 * On Linux setpriority(PRIO_PROCESS, 0, ...) sets the calling thread's nice,
 * and a new thread starts with its creator's: every thread and process the
 * daemon starts calls priority_restore() first. priority_init() reads the
 * daemon's own nice before any of them exists.
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "physmemd.h"

static int base_nice;

void priority_init(void)
{
	errno = 0;
	base_nice = getpriority(PRIO_PROCESS, 0);
	if (base_nice == -1 && errno != 0)
		base_nice = 0;
}

int priority_raise_loop(uint64_t boost)
{
	int target = base_nice - (int)(boost > 40 ? 40 : boost);

	if (target < -20)
		target = -20;
	if (target >= base_nice)
		return 0;
	if (setpriority(PRIO_PROCESS, 0, target) < 0) {
		int r = -errno;

		log_info("the event loop keeps nice %d (cannot raise it to %d: %s)", base_nice, target, strerror(-r));
		return r;
	}
	log_debug("the event loop runs at nice %d, its workers at %d", target, base_nice);
	return 0;
}

void priority_restore(void)
{
	(void)setpriority(PRIO_PROCESS, 0, base_nice);
}
