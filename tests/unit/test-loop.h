/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-loop: what the unit tests that run the daemon's libevent loop share:
 * a monotonic clock for their liveness deadlines and a timer callback that
 * only wakes the loop, so that a deadline is seen even when nothing happens.
 */
#pragma once

#include <stdint.h>
#include <time.h>

#include <event2/event.h>

/* CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t test_loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wakes the loop now and then (an EV_PERSIST timer's callback that does nothing). */
static inline void test_loop_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}
