/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * physmem-conns-bench: what many open connections cost the daemon's memory,
 * and whether it comes back once they close.
 *
 *   physmem-conns-bench (--daemon PHYSMEMD | --socket PATH --pid PID) [--conns N] [--runs N]
 *                       [--call status|alloc|both|partial] [--max-per-conn BYTES] [--max-closed-kib KIB]
 *
 * With --daemon each run starts a fresh daemon of its own (memfd backend,
 * connection limits above N, the fd limit raised to the hard one); else it
 * measures the daemon given, whose idle figure is then what earlier runs left.
 *
 * Per run: the daemon's RSS while idle; then N connections that each made one
 * call (Status, or Allocate + Free of 4 KiB, whose reply carries an fd; with
 * --call partial instead 30,000 bytes of a message they never finish) and
 * stay open; then, after all of them closed and the daemon counts only this
 * program's probe connection again, the RSS once more. Prints
 *
 *   PHYSMEM-BENCH conns call=C n=N idle-rss-kib=MIN/MED/MAX open-rss-kib=...
 *       closed-rss-kib=... per-conn-bytes=... closed-over-idle-kib=...
 *
 * The RSS is the daemon's VmRSS (its RssAnon beside it). Nothing is asserted
 * unless --max-per-conn / --max-closed-kib are given (memory bounds, never
 * timings): then it exits 1 when a run's growth per connection, or its RSS
 * after the close over the idle figure, passes them, and 77 (skipped) when
 * $PHYSMEM_SANITIZED is set or the fd limit cannot be raised far enough.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define IFACE "io.physmem.Manager."

struct rss {
	long vm_kib;
	long anon_kib;
};

static const char *opt_socket;
static pid_t opt_pid;
static const char *opt_daemon;
static char daemon_dir[64];
static char daemon_socket[96];

/* A daemon started with --daemon goes when this program exits before stopping it. */
static void daemon_kill(void)
{
	if (opt_daemon && opt_pid > 0)
		kill(opt_pid, SIGTERM);
}

static void die(const char *what)
{
	fprintf(stderr, "physmem-conns-bench: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* The daemon's VmRSS and RssAnon, in KiB. */
static struct rss rss_read(void)
{
	struct rss r = { -1, -1 };
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)opt_pid);
	f = fopen(path, "re");
	if (!f)
		die(path);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "VmRSS:", 6))
			r.vm_kib = strtol(line + 6, NULL, 10);
		else if (!strncmp(line, "RssAnon:", 8))
			r.anon_kib = strtol(line + 8, NULL, 10);
	}
	fclose(f);
	if (r.vm_kib < 0)
		die("no VmRSS in the daemon's status");
	return r;
}

static int conn_open(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", opt_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	return fd;
}

/* One call and its reply (NUL-terminated, into buf); fds that come with it are closed. */
static void conn_call(int fd, const char *call, char *buf, size_t size)
{
	size_t len = strlen(call) + 1, got = 0;

	if (send(fd, call, len, MSG_NOSIGNAL) != (ssize_t)len)
		die("send");
	for (;;) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * 4)];
		} control;
		struct iovec iov = { buf + got, size - 1 - got };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
		ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			die("receive a reply");
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
					close(((int *)CMSG_DATA(c))[i]);
		got += (size_t)n;
		if (memchr(buf, 0, got))
			break;
		if (got >= size - 1) {
			errno = EMSGSIZE;
			die("reply too long");
		}
	}
	if (strstr(buf, "\"error\"")) {
		fprintf(stderr, "physmem-conns-bench: %s -> %s\n", call, buf);
		exit(2);
	}
}

/* The daemon's connection count (Status over the probe connection). */
static long daemon_connections(int probe)
{
	char buf[4096];
	const char *p;

	conn_call(probe, "{\"method\":\"" IFACE "Status\",\"parameters\":{}}", buf, sizeof(buf));
	p = strstr(buf, "\"connections\":");
	if (!p) {
		fprintf(stderr, "physmem-conns-bench: no connection count in %s\n", buf);
		exit(2);
	}
	return strtol(p + strlen("\"connections\":"), NULL, 10);
}

/* Wait (a liveness bound, not a measurement) until the daemon has seen every close. */
static void wait_idle(int probe)
{
	for (int i = 0; i < 6000; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (daemon_connections(probe) == 1)
			return;
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "physmem-conns-bench: the daemon still counts connections after 60 s\n");
	exit(2);
}

/* With --daemon: start a fresh physmemd for n connections on a socket of its own. */
static void daemon_start(unsigned n)
{
	char limit[3][64];
	pid_t pid;

	snprintf(daemon_dir, sizeof(daemon_dir), "/tmp/physmem-conns-XXXXXX");
	if (!mkdtemp(daemon_dir))
		die("mkdtemp");
	snprintf(daemon_socket, sizeof(daemon_socket), "%s/s", daemon_dir);
	snprintf(limit[0], sizeof(limit[0]), "max-connections=%u", n + 16);
	snprintf(limit[1], sizeof(limit[1]), "max-connections-per-uid=%u", n + 16);
	snprintf(limit[2], sizeof(limit[2]), "log-level=warning");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execl(opt_daemon, opt_daemon, "--socket", daemon_socket, "--backend", "memfd", "--set", limit[0],
		      "--set", limit[1], "--set", limit[2], (char *)NULL);
		fprintf(stderr, "physmem-conns-bench: %s: %s\n", opt_daemon, strerror(errno));
		_exit(127);
	}
	opt_pid = pid;
	opt_socket = daemon_socket;
	for (int i = 0; i < 1000; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		/* Listening, not only bound. */
		if (fd < 0)
			die("socket");
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", daemon_socket);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return;
		}
		close(fd);
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			fprintf(stderr, "physmem-conns-bench: the daemon exited at start\n");
			exit(2);
		}
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "physmem-conns-bench: no daemon socket after 10 s\n");
	exit(2);
}

/* Stop the daemon daemon_start() started. */
static void daemon_stop(void)
{
	int status;

	kill(opt_pid, SIGTERM);
	if (waitpid(opt_pid, &status, 0) != opt_pid)
		die("waitpid");
	opt_pid = 0;
	rmdir(daemon_dir);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "physmem-conns-bench: the daemon did not exit cleanly (status %#x)\n", status);
		exit(2);
	}
}

enum kind { KIND_STATUS, KIND_ALLOC, KIND_PARTIAL };

/*
 * One connection's call: Status, or Allocate + Free of 4 KiB (a reply with an
 * fd), or 30,000 bytes of a message that never ends (the daemon buffers them).
 */
static void conn_work(int fd, enum kind kind)
{
	char buf[4096], call[128];
	const char *p;

	if (kind == KIND_PARTIAL) {
		static char part[30000];

		if (!part[0]) {
			memset(part, 'a', sizeof(part));
			memcpy(part, "{\"method\":\"" IFACE "Status\",\"parameters\":{\"x\":\"", 57);
		}
		if (send(fd, part, sizeof(part), MSG_NOSIGNAL) != (ssize_t)sizeof(part))
			die("send");
		return;
	}
	if (kind == KIND_STATUS) {
		conn_call(fd, "{\"method\":\"" IFACE "Status\",\"parameters\":{}}", buf, sizeof(buf));
		return;
	}
	conn_call(fd, "{\"method\":\"" IFACE "Allocate\",\"parameters\":{\"size\":4096}}", buf, sizeof(buf));
	p = strstr(buf, "\"id\":");
	if (!p) {
		fprintf(stderr, "physmem-conns-bench: no id in %s\n", buf);
		exit(2);
	}
	snprintf(call, sizeof(call), "{\"method\":\"" IFACE "Free\",\"parameters\":{\"id\":%lld}}",
		 strtoll(p + 5, NULL, 10));
	conn_call(fd, call, buf, sizeof(buf));
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

/* "min/median/max" of n values (sorted in place). */
static const char *mmm(long *v, unsigned n, char *out, size_t size)
{
	qsort(v, n, sizeof(*v), cmp_long);
	snprintf(out, size, "%ld/%ld/%ld", v[0], v[n / 2], v[n - 1]);
	return out;
}

/* All runs of one kind of call; returns false when a run passed a bound. */
static bool bench(const char *name, enum kind kind, unsigned n, unsigned runs, long max_per_conn, long max_closed_kib)
{
	long idle[runs], open_[runs], open_anon[runs], closed[runs], per_conn[runs], over[runs];
	int *fds = calloc(n, sizeof(int));
	char s[6][64];
	bool ok = true;
	int probe;

	if (!fds)
		die("calloc");
	for (unsigned r = 0; r < runs; r++) {
		struct rss a, b, c;

		if (opt_daemon)
			daemon_start(n);
		probe = conn_open();
		wait_idle(probe);
		a = rss_read();
		for (unsigned i = 0; i < n; i++) {
			fds[i] = conn_open();
			conn_work(fds[i], kind);
		}
		/* Unanswered bytes: wait until the daemon took them all (SIOCOUTQ: what it has not read). */
		for (unsigned i = 0; kind == KIND_PARTIAL && i < n; i++) {
			for (int t = 0;; t++) {
				struct timespec ts = { 0, 1000 * 1000 };
				int unread;

				if (ioctl(fds[i], SIOCOUTQ, &unread) < 0)
					die("SIOCOUTQ");
				if (unread == 0)
					break;
				if (t == 60000) {
					fprintf(stderr, "physmem-conns-bench: the daemon did not read a message in 60 s\n");
					exit(2);
				}
				nanosleep(&ts, NULL);
			}
		}
		b = rss_read();
		for (unsigned i = 0; i < n; i++)
			close(fds[i]);
		wait_idle(probe);
		c = rss_read();
		close(probe);
		if (opt_daemon)
			daemon_stop();
		idle[r] = a.vm_kib;
		open_[r] = b.vm_kib;
		open_anon[r] = b.anon_kib;
		closed[r] = c.vm_kib;
		per_conn[r] = (b.vm_kib - a.vm_kib) * 1024 / (long)n;
		over[r] = c.vm_kib - a.vm_kib;
		printf("run %u call=%s n=%u: idle %ld KiB, open %ld KiB (anon %ld), closed %ld KiB (anon %ld), "
		       "%ld bytes per connection\n", r + 1, name, n, a.vm_kib, b.vm_kib, b.anon_kib, c.vm_kib,
		       c.anon_kib, per_conn[r]);
		if (max_per_conn >= 0 && per_conn[r] > max_per_conn) {
			printf("FAIL: run %u grew %ld bytes per connection, more than %ld\n", r + 1, per_conn[r],
			       max_per_conn);
			ok = false;
		}
		if (max_closed_kib >= 0 && over[r] > max_closed_kib) {
			printf("FAIL: run %u kept %ld KiB over idle after every connection closed, more than %ld\n",
			       r + 1, over[r], max_closed_kib);
			ok = false;
		}
	}
	printf("PHYSMEM-BENCH conns call=%s n=%u idle-rss-kib=%s open-rss-kib=%s open-anon-kib=%s closed-rss-kib=%s "
	       "per-conn-bytes=%s closed-over-idle-kib=%s\n", name, n, mmm(idle, runs, s[0], 64),
	       mmm(open_, runs, s[1], 64), mmm(open_anon, runs, s[2], 64), mmm(closed, runs, s[3], 64),
	       mmm(per_conn, runs, s[4], 64), mmm(over, runs, s[5], 64));
	fflush(stdout);
	free(fds);
	return ok;
}

/* The fds for n connections: raise the soft limit as far as the hard one allows. */
static void raise_fd_limit(unsigned n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit");
	if (rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			die("setrlimit");
	}
	if (rl.rlim_cur < (rlim_t)n + 64) {
		printf("physmem-conns-bench: cannot run: %u connections need %u fds; the hard limit is %llu\n", n, n + 64,
		       (unsigned long long)rl.rlim_cur);
		exit(77);
	}
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "pid", required_argument, NULL, 'p' },
		{ "daemon", required_argument, NULL, 'd' },
		{ "conns", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "call", required_argument, NULL, 'c' },
		{ "max-per-conn", required_argument, NULL, 'M' },
		{ "max-closed-kib", required_argument, NULL, 'C' },
		{}
	};
	const char *call = "both";
	unsigned n = 10000, runs = 3;
	long max_per_conn = -1, max_closed_kib = -1;
	bool ok = true;
	int opt;

	while ((opt = getopt_long(argc, argv, "s:p:d:n:r:c:M:C:", options, NULL)) != -1) {
		switch (opt) {
		case 'd': opt_daemon = optarg; break;
		case 's': opt_socket = optarg; break;
		case 'p': opt_pid = (pid_t)atoi(optarg); break;
		case 'n': n = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'r': runs = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'c': call = optarg; break;
		case 'M': max_per_conn = strtol(optarg, NULL, 0); break;
		case 'C': max_closed_kib = strtol(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: %s (--daemon PHYSMEMD | --socket PATH --pid PID) [--conns N] [--runs N] "
				"[--call status|alloc|both|partial] [--max-per-conn BYTES] [--max-closed-kib KIB]\n", argv[0]);
			return 2;
		}
	}
	if ((!opt_daemon && (!opt_socket || opt_pid <= 0)) || n == 0 || runs == 0 ||
	    (strcmp(call, "status") && strcmp(call, "alloc") && strcmp(call, "both") && strcmp(call, "partial"))) {
		fprintf(stderr, "physmem-conns-bench: needs --daemon, or --socket and --pid; N and runs above 0; "
			"--call status|alloc|both|partial\n");
		return 2;
	}
	/* Under AddressSanitizer (the build sets this) the RSS says nothing about the daemon's own memory. */
	if ((max_per_conn >= 0 || max_closed_kib >= 0) && getenv("PHYSMEM_SANITIZED")) {
		printf("physmem-conns-bench: skipped: a sanitizer build's RSS is the sanitizer's, not the daemon's\n");
		return 77;
	}
	raise_fd_limit(n);
	atexit(daemon_kill);
	if (!strcmp(call, "status") || !strcmp(call, "both"))
		ok &= bench("status", KIND_STATUS, n, runs, max_per_conn, max_closed_kib);
	if (!strcmp(call, "alloc") || !strcmp(call, "both"))
		ok &= bench("alloc", KIND_ALLOC, n, runs, max_per_conn, max_closed_kib);
	if (!strcmp(call, "partial"))
		ok &= bench("partial", KIND_PARTIAL, n, runs, max_per_conn, max_closed_kib);
	return ok ? 0 : 1;
}
