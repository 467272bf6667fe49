/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-daemon: what the unit tests that run the daemon's parts in process
 * share. Include after cmocka.h and physmemd.h (or the daemon source a test
 * compiles in).
 */
#pragma once

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "test-loop.h"

/* Open fds of this process. */
static inline int test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

/*
 * The start every in-process daemon shares: a directory /tmp/NAME-XXXXXX
 * for its socket, a conf with one large-job worker and nothing that needs
 * systemd, root or huge pages, a loop with a waking tick, and the sink.
 */
static inline void test_daemon_setup(char *dir, size_t dir_size, const char *name, struct conf *conf,
				     struct event_base **ret_base, struct event **ret_tick)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };

	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, dir_size, "/tmp/%s-XXXXXX", name);
	assert_non_null(mkdtemp(dir));
	conf_defaults(conf);
	conf->worker_threads = 1;
	conf->lock = LOCK_NO;
	conf->fdstore = LOCK_NO;
	conf->hugepages_auto = false;
	snprintf(conf->socket_path, sizeof(conf->socket_path), "%s/s", dir);
	*ret_base = event_base_new();
	assert_non_null(*ret_base);
	*ret_tick = event_new(*ret_base, -1, EV_PERSIST, test_loop_on_tick, NULL);
	assert_true(*ret_tick && event_add(*ret_tick, &tv) == 0);
	assert_int_equal(sink_init(*ret_base, conf), 0);
}
