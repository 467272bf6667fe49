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

/* An in-process daemon: its parts, in the order test_daemon_serve() starts them. */
struct test_daemon {
	char dir[64];
	struct conf conf;
	struct event_base *base;
	struct event *tick;
	struct backend_ops backend;	/* the memfd backend's, for the test to change before serving */
	void *st;
	struct worker_pool *workers;
	struct registry r;
	struct server server;
	int fd;				/* a client connection, for tests that keep one */
};

/*
 * The start every in-process daemon shares: a directory /tmp/NAME-XXXXXX
 * for its socket, a conf with one large-job worker and nothing that needs
 * systemd, root or huge pages, the daemon's own event loop with a waking
 * tick, the sink, and the memfd backend's functions. The test may change
 * conf and backend before test_daemon_serve().
 */
static inline void test_daemon_setup(struct test_daemon *d, const char *name)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };

	signal(SIGPIPE, SIG_IGN);
	memset(d, 0, sizeof(*d));
	d->fd = -1;
	snprintf(d->dir, sizeof(d->dir), "/tmp/%s-XXXXXX", name);
	assert_non_null(mkdtemp(d->dir));
	conf_defaults(&d->conf);
	d->conf.worker_threads = 1;
	d->conf.lock = LOCK_NO;
	d->conf.fdstore = LOCK_NO;
	d->conf.hugepages_auto = false;
	snprintf(d->conf.socket_path, sizeof(d->conf.socket_path), "%s/s", d->dir);
	d->base = server_event_base_new();
	assert_non_null(d->base);
	d->tick = event_new(d->base, -1, EV_PERSIST, test_loop_on_tick, NULL);
	assert_true(d->tick && event_add(d->tick, &tv) == 0);
	assert_int_equal(sink_init(d->base, &d->conf), 0);
	d->backend = backend_memfd_ops;
}

/* The backend, the workers, the registry and the server, listening. */
static inline void test_daemon_serve(struct test_daemon *d)
{
	assert_int_equal(d->backend.init(&d->conf, &d->st), 0);
	assert_int_equal(worker_pool_new(d->base, &d->conf, &d->backend, d->st, &d->workers), 0);
	registry_init(&d->r, &d->conf, &d->backend, d->st);
	d->r.workers = d->workers;
	assert_int_equal(server_init(&d->server, d->base, &d->conf, &d->r, -1), 0);
}

/* Shut everything down (the loop is idle: no connection, no job) and remove the directory. */
static inline void test_daemon_teardown(struct test_daemon *d)
{
	server_done(&d->server);
	sink_on_drained(NULL, NULL);
	d->r.workers = NULL;
	registry_done(&d->r);
	worker_pool_free(d->workers);
	d->backend.fini(d->st);
	sink_done();
	event_free(d->tick);
	event_base_free(d->base);
	rmdir(d->dir);
}
