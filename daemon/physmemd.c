/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * physmemd: hands out pinned, DMA-able buffers over Varlink.
 * Main: options, configuration, backend choice, the event loop, systemd.
 */
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "physmem-proto.h"
#include "physmemd.h"

#define DEFAULT_CONFIG "/etc/physmem/physmemd.conf"

/* In order of preference for backend=auto. */
static const struct backend_ops *const backends[] = {
	&backend_kmod_ops,
	&backend_memfd_ops,
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: physmemd [OPTIONS]\n"
		"Hand out pinned, DMA-able memory buffers over Varlink (io.physmem.Manager).\n\n"
		"  -s, --socket PATH      listen on PATH (default: %s for root,\n"
		"                         else $XDG_RUNTIME_DIR/physmem/physmemd.sock);\n"
		"                         a socket passed by systemd takes precedence\n"
		"  -c, --config FILE      read settings from FILE (default: %s if present)\n"
		"  -b, --backend NAME     auto, memfd or kmod (default: auto)\n"
		"  -o, --set KEY=VALUE    override one setting of physmemd.conf(5)\n"
		"  -v, --verbose          log debug messages\n"
		"  -h, --help             show this help\n"
		"      --version          show the version\n\n"
		"Settings (physmemd.conf): socket, socket-mode, backend, device, max-message-size,\n"
		"max-message-values (most '{', '[' and ',' in one request, default 1024),\n"
		"max-output-per-connection, max-queued-fds-per-connection, max-connections,\n"
		"max-connections-per-uid, max-buffers-per-uid, max-bytes-per-uid, max-buffer-size,\n"
		"max-buffers, stall-timeout-ms, sink-timeout-ms (a child process closes the fds\n"
		"clients send; one that makes no progress for this long is killed and replaced),\n"
		"loop-budget-us and loop-window-ms (default 2000 per 50: a uid past that much of\n"
		"the event loop's time in its window is served after every other uid; 0: off),\n"
		"address-policy (owner|root|none), lock (no|try|yes),\n"
		"fdstore (no|try|yes: keep named buffers in systemd's fd store across restarts),\n"
		"hugepages (auto|0|2M|1G, default auto: 2M pages where free), worker-threads\n"
		"(threads for allocations over 4M, default 2; one more serves the smaller ones),\n"
		"log-level (error|warning|notice|info|debug),\n"
		"bind-device (repeatable: DDDD:BB:DD.F or vendor:device, then uid:N/gid:N/@group/user\n"
		"principals that may bind buffers to it), max-bindings-per-uid (default 64),\n"
		"pool-users (who may allocate from contiguous pools: *, uid:N, gid:N, @group, user;\n"
		"default root only), max-pool-bytes-per-uid (default 1G).\n"
		"lock applies to no backend today: memfd pages belong to the client that maps them\n"
		"and are never locked by the daemon, kmod pages are pinned by the kernel.\n"
		"Test hook, never for production: debug-job-delay-ms (jobs over 4M sleep first).\n",
		PHYSMEM_SYSTEM_SOCKET, DEFAULT_CONFIG);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_info("received signal %d, shutting down", (int)sig);
	event_base_loopexit(arg, NULL);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

/* Pick the configured backend, or the best one that works here. */
static int backend_open(const struct conf *conf, const struct backend_ops **ret, void **ret_state)
{
	int r = -ENODEV;

	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strcmp(conf->backend, "auto") != 0 && strcmp(conf->backend, backends[i]->name) != 0)
			continue;
		r = backends[i]->init(conf, ret_state);
		if (r == 0) {
			*ret = backends[i];
			return 0;
		}
		log_info("backend %s not available: %s", backends[i]->name, strerror(-r));
	}
	log_error("no usable backend (asked for '%s')", conf->backend);
	return r;
}

/*
 * Client fds wait in this process until the sink takes them: a soft fd limit
 * below the hard one (a daemon started from a shell gets 1024) only makes the
 * table easier to fill. epoll has no FD_SETSIZE limit.
 */
/* libevent's own messages: through our log, which never blocks, not its fprintf(stderr). */
static void on_libevent_log(int severity, const char *msg)
{
	int level = severity == EVENT_LOG_ERR ? LOG_LEVEL_ERR : severity == EVENT_LOG_WARN ? LOG_LEVEL_WARNING :
		    severity == EVENT_LOG_MSG ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;

	log_msg(level, "libevent: %s", msg);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t old;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	old = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warning("cannot raise the fd limit from %llu: %s", (unsigned long long)old, strerror(errno));
		return;
	}
	log_info("raised the fd limit from %llu to %llu", (unsigned long long)old, (unsigned long long)rl.rlim_max);
}

/*
 * json-c puts the thread on a "C" LC_NUMERIC around every parse: duplocale,
 * newlocale (with a getenv of LOCPATH), uselocale and freelocale, two
 * allocations per message. On a thread already using glibc's static C
 * locale each of those returns that object at once. The daemon never calls
 * setlocale, so nothing it prints changes.
 */
static locale_t use_c_locale(void)
{
	locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);

	if (c)
		uselocale(c);
	return c;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "backend", required_argument, NULL, 'b' },
		{ "set", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	const char *config = NULL, *socket_arg = NULL, *backend_arg = NULL;
	char *sets[32];
	unsigned n_sets = 0;
	const struct backend_ops *backend = NULL;
	struct event *ev_term = NULL, *ev_int = NULL, *ev_watchdog = NULL;
	struct event_base *base = NULL;
	struct registry registry;
	struct worker_pool *workers = NULL;
	struct server server = { .listen_fd = -1 };
	void *backend_state = NULL;
	struct conf conf;
	locale_t c_locale;
	uint64_t watchdog_usec = 0;
	bool verbose = false;
	int opt, r, listen_fd = -1;

	while ((opt = getopt_long(argc, argv, "s:c:b:o:vh", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_arg = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'b':
			backend_arg = optarg;
			break;
		case 'o':
			if (n_sets == sizeof(sets) / sizeof(sets[0]) || !strchr(optarg, '=')) {
				fprintf(stderr, "physmemd: --set takes KEY=VALUE (at most 32 times)\n");
				return 2;
			}
			sets[n_sets++] = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("physmemd %s\n", PHYSMEM_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "physmemd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	c_locale = use_c_locale();
	/* Settings: defaults < config file < --set < dedicated options. */
	conf_defaults(&conf);
	if (physmem_user_socket_path(conf.socket_path, sizeof(conf.socket_path)) < 0)
		conf.socket_path[0] = '\0';
	if (!config && access(DEFAULT_CONFIG, F_OK) == 0)
		config = DEFAULT_CONFIG;
	if (config && conf_load(&conf, config) < 0)
		return 1;
	for (unsigned i = 0; i < n_sets; i++) {
		char *eq = strchr(sets[i], '=');

		*eq = '\0';
		r = conf_set(&conf, sets[i], eq + 1);
		if (r < 0) {
			fprintf(stderr, "physmemd: --set %s: %s\n", sets[i],
				r == -ENOENT ? "unknown setting" : "bad value");
			return 2;
		}
	}
	if (socket_arg && conf_set(&conf, "socket", socket_arg) < 0) {
		fprintf(stderr, "physmemd: socket path too long\n");
		return 2;
	}
	if (backend_arg && conf_set(&conf, "backend", backend_arg) < 0) {
		fprintf(stderr, "physmemd: bad backend name\n");
		return 2;
	}
	if (verbose)
		conf.log_level = LOG_LEVEL_DEBUG;
	log_set_level(conf.log_level);
	log_open();
	if (conf_check(&conf) < 0)
		return 1;

	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	r = backend_open(&conf, &backend, &backend_state);
	if (r < 0)
		return 1;
	registry_init(&registry, &conf, backend, backend_state);

	event_set_log_callback(on_libevent_log);
	base = server_event_base_new();
	if (!base) {
		log_error("cannot create the event loop");
		r = -ENOMEM;
		goto out;
	}
	/* Before the first client fd can arrive: they are all closed there. */
	r = sink_init(base, &conf);
	if (r < 0) {
		log_error("cannot start the sink process: %s", strerror(-r));
		goto out;
	}
	r = worker_pool_new(base, &conf, backend, backend_state, &workers);
	if (r < 0)
		goto out;
	/* With the fd store: buffers kept across a restart come back here. */
	r = fdstore_collect(&registry,
			    conf.fdstore == LOCK_YES || (conf.fdstore == LOCK_TRY && getenv("NOTIFY_SOCKET")),
			    &listen_fd);
	if (r < 0)
		goto out_server;
	registry.workers = workers;
	r = fdstore_start(&registry, base);
	if (r < 0)
		goto out_server;
	r = server_init(&server, base, &conf, &registry, listen_fd);
	if (r < 0) {
		log_error("cannot start serving: %s", strerror(-r));
		goto out_server;
	}
	ev_term = evsignal_new(base, SIGTERM, on_signal, base);
	ev_int = evsignal_new(base, SIGINT, on_signal, base);
	if (!ev_term || !ev_int) {
		r = -ENOMEM;
		goto out_server;
	}
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
		struct timeval tv = { .tv_sec = (time_t)(watchdog_usec / 2 / 1000000),
				      .tv_usec = (suseconds_t)(watchdog_usec / 2 % 1000000) };

		ev_watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
		if (ev_watchdog)
			event_add(ev_watchdog, &tv);
	}

	log_notice("physmemd %s ready: backend %s%s, max buffer %llu bytes, %llu bytes per uid", PHYSMEM_VERSION,
		   backend->name, backend->dma_safe ? " (DMA-safe)" : " (addresses not DMA-safe)",
		   (unsigned long long)conf.max_buffer_size, (unsigned long long)conf.max_bytes_per_uid);
	sd_notify(0, "READY=1");
	server_notify_status(&server);

	event_base_dispatch(base);

	sd_notify(0, "STOPPING=1\nSTATUS=Shutting down");
	r = 0;
out_server:
	/* Stop accepting and drop the clients, then let the workers finish. */
	server_done(&server);
	worker_pool_free(workers);
	registry.workers = NULL;
	sink_done();
	if (ev_watchdog)
		event_free(ev_watchdog);
	if (ev_term)
		event_free(ev_term);
	if (ev_int)
		event_free(ev_int);
out:
	/* What the releases above changed, and all that follows, is stored at once. */
	fdstore_stop(&registry);
	registry_done(&registry);
	backend->fini(backend_state);
	if (base)
		event_base_free(base);
	if (c_locale) {
		uselocale(LC_GLOBAL_LOCALE);
		freelocale(c_locale);
	}
	return r < 0 ? 1 : 0;
}
