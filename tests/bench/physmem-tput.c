/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * physmem-tput: 4 KiB Allocate + Free pairs per second with many concurrent
 * clients, physmemd against a minimal broker doing the same work, measured
 * in the same run (issue 11).
 *
 *   physmem-tput --socket PATH [--clients N[,N...]] [--seconds T] [--rounds R] [--client raw|lib]
 *
 * Each round measures, for each client count, three servers in turn (the
 * order alternates between rounds):
 *  - physmem: the daemon at PATH (tests/bench/tput-bench.sh starts one);
 *  - broker:  a forked single-threaded epoll broker that, per Allocate,
 *             creates a memfd, sizes it and applies the daemon's seals, keeps
 *             it and passes it back with SCM_RIGHTS, and per Free punches it
 *             out with fallocate and closes it: the memfd backend's work;
 *  - fdpass:  the same broker passing one pre-made fd per Allocate, no memory work.
 * Every client is a process of its own that loops Allocate + Free until told
 * to stop. With --client raw (the default) all three get the same client: raw
 * Varlink messages of libphysmem's exact bytes, the buffer id taken from the
 * reply, the fd closed; with --client lib the physmem side uses libphysmem's
 * physmem_alloc() + physmem_buffer_free() (which also parse the whole reply).
 * The broker's replies have the daemon's bytes. Nothing is asserted: rates
 * depend on the machine; the ratio physmem/broker is taken per round.
 * Beside the rates: CPU time per pair of each server (all its threads, from
 * /proc; the daemon's pid from SO_PEERCRED) and of the clients together, which
 * the share of the CPUs each got does not change.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "physmem.h"

#define MAX_CLIENTS 1024
#define MAX_COUNTS 8
#define MAX_ROUNDS 100
#define BUF_SIZE 4096
#define MSG_MAX 4096

/* libphysmem's bytes for a 4 KiB cached Allocate (checked with strace). */
static const char alloc_call[] = "{\"method\":\"io.physmem.Manager.Allocate\",\"parameters\":{\"size\":4096,"
				 "\"cache\":\"cached\"}}";

enum server { SERVER_PHYSMEM, SERVER_BROKER, SERVER_FDPASS, N_SERVERS };
static const char *const server_names[N_SERVERS] = { "physmem", "broker", "fdpass" };

/* Shared with the client processes. */
struct shared {
	volatile int stop;
	uint64_t pairs[MAX_CLIENTS];
};

static struct shared *shared;
static bool client_lib;

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the client ---- */

/* Receive one NUL-terminated reply (the client has one call out) and its fd, if any. */
static void client_recv(int sock, char *msg, int *ret_fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	size_t got = 0;

	*ret_fd = -1;
	for (;;) {
		struct iovec iov = { .iov_base = msg + got, .iov_len = MSG_MAX - 1 - got };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf) };
		struct cmsghdr *c;
		ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			bench_die("client: recvmsg");
		}
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && *ret_fd < 0)
				memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
		got += (size_t)n;
		if (msg[got - 1] == '\0')
			return;
		if (got >= MSG_MAX - 1) {
			errno = EMSGSIZE;
			bench_die("client: reply");
		}
	}
}

/* One raw Allocate + Free: the exact bytes libphysmem sends. */
static void client_pair_raw(int sock)
{
	char msg[MSG_MAX], call[128];
	const char *id;
	int fd, len;

	if (send(sock, alloc_call, sizeof(alloc_call), MSG_NOSIGNAL) != (ssize_t)sizeof(alloc_call))
		bench_die("client: send");
	client_recv(sock, msg, &fd);
	id = strstr(msg, "\"id\":");
	if (fd < 0 || !id || strncmp(msg, "{\"parameters\":", 14) != 0) {
		fprintf(stderr, "physmem-tput: Allocate failed: %s\n", msg);
		exit(1);
	}
	close(fd);
	len = snprintf(call, sizeof(call), "{\"method\":\"io.physmem.Manager.Free\",\"parameters\":{\"id\":%" PRIu64 "}}",
		       (uint64_t)strtoull(id + 5, NULL, 10));
	if (send(sock, call, (size_t)len + 1, MSG_NOSIGNAL) != len + 1)
		bench_die("client: send");
	client_recv(sock, msg, &fd);
	if (fd >= 0 || strcmp(msg, "{\"parameters\":{}}") != 0) {
		fprintf(stderr, "physmem-tput: Free failed: %s\n", msg);
		exit(1);
	}
}

/* One Allocate + Free through libphysmem. */
static void client_pair_lib(struct physmem *pm)
{
	struct physmem_buffer *buf;

	if (physmem_alloc(pm, BUF_SIZE, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
		fprintf(stderr, "physmem-tput: alloc: %s\n", physmem_error_message(pm));
		exit(1);
	}
	if (physmem_buffer_free(buf) < 0) {
		fprintf(stderr, "physmem-tput: free: %s\n", physmem_error_message(pm));
		exit(1);
	}
}

/*
 * A client process: connect, say so on ready, wait until go closes, loop
 * pairs until stop; only pairs finished before stop count.
 */
static void client_main(const char *path, bool lib, unsigned index, int ready, int go)
{
	struct physmem *pm = NULL;
	int sock = -1, r;
	char c = 1;

	if (lib) {
		r = physmem_connect(path, &pm);
		if (r < 0) {
			errno = -r;
			bench_die("client: connect");
		}
	} else {
		sock = connect_to(path);
		if (sock < 0)
			bench_die("client: connect");
	}
	if (write(ready, &c, 1) != 1)
		bench_die("client: ready");
	close(ready);
	if (read(go, &c, 1) < 0)
		bench_die("client: go");
	while (!shared->stop) {
		if (lib)
			client_pair_lib(pm);
		else
			client_pair_raw(sock);
		if (!shared->stop)
			shared->pairs[index]++;
	}
	if (pm)
		physmem_disconnect(pm);
	_exit(0);
}

/* CPU seconds used so far by process pid, all its threads (0 if unreadable). */
static double process_cpu(pid_t pid)
{
	unsigned long long utime = 0, stime = 0;
	char path[64], buf[1024], *p;
	FILE *f;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	/* After the command's closing parenthesis: state is field 3, utime and stime 14 and 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
		return 0;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of the children reaped so far. */
static double children_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_CHILDREN, &ru) < 0)
		bench_die("getrusage");
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

/* The pid of the process listening on path. */
static pid_t server_pid(const char *path)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = connect_to(path);

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		bench_die("server pid");
	close(fd);
	return cred.pid;
}

/* What one measurement found. */
struct result {
	double rate;			/* pairs per second, all clients together */
	double server_us;		/* the server's CPU per pair */
	double clients_us;		/* the clients' CPU per pair */
};

/* n clients against the server (pid) at path for seconds. */
static struct result measure(const char *path, pid_t server, bool lib, unsigned n, double seconds)
{
	struct result res;
	double server_cpu, client_cpu;
	int ready[2], go[2];
	pid_t pids[MAX_CLIENTS];
	struct timespec ts = { .tv_sec = (time_t)seconds,
			       .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };
	uint64_t total = 0;
	double t0, t1;
	bool failed = false;

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		bench_die("pipe");
	memset(shared, 0, sizeof(*shared));
	for (unsigned i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			bench_die("fork");
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(ready[0]);
			close(go[1]);
			client_main(path, lib, i, ready[1], go[0]);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (unsigned i = 0; i < n; i++) {
		char c;

		if (read(ready[0], &c, 1) != 1) {
			fprintf(stderr, "physmem-tput: a client could not connect to %s\n", path);
			exit(1);
		}
	}
	close(ready[0]);
	server_cpu = process_cpu(server);
	client_cpu = children_cpu();
	t0 = bench_now();
	close(go[1]);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	shared->stop = 1;
	t1 = bench_now();
	server_cpu = process_cpu(server) - server_cpu;
	for (unsigned i = 0; i < n; i++) {
		int status;

		if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = true;
		total += shared->pairs[i];
	}
	if (failed || total == 0) {
		fprintf(stderr, "physmem-tput: clients against %s failed (%" PRIu64 " pairs)\n", path, total);
		exit(1);
	}
	res.rate = (double)total / (t1 - t0);
	res.server_us = server_cpu / (double)total * 1e6;
	res.clients_us = (children_cpu() - client_cpu) / (double)total * 1e6;
	return res;
}

/* ---- the broker ---- */

struct bconn {
	int fd;
	int buf_fd;		/* the buffer handed out last (memory mode) */
	uint64_t next_id;
	pid_t pid;
	uid_t uid;
	size_t have;
	char in[MSG_MAX];
};

/* Answer one message: an Allocate with a new sealed memfd (or the shared fd), a Free with a punch. */
static int broker_message(struct bconn *b, const char *msg, int shared_fd)
{
	char out[512];
	int len, fd;

	if (strncmp(msg, "{\"method\":\"io.physmem.Manager.Free\"", 35) == 0) {
		if (shared_fd < 0 && b->buf_fd >= 0) {
			if (fallocate(b->buf_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, BUF_SIZE) < 0)
				return -errno;
			close(b->buf_fd);
			b->buf_fd = -1;
		}
		return bench_send_fd(b->fd, "{\"parameters\":{}}", 18, -1) == 18 ? 0 : -errno;
	}
	if (shared_fd >= 0) {
		fd = shared_fd;
	} else {
		fd = memfd_create("physmem", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0 || ftruncate(fd, BUF_SIZE) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
			return -errno;
		if (b->buf_fd >= 0)
			close(b->buf_fd);
		b->buf_fd = fd;
	}
	len = snprintf(out, sizeof(out),
		       "{\"parameters\":{\"buffer\":{\"id\":%" PRIu64 ",\"size\":4096,\"contiguous\":false,"
		       "\"cache\":\"cached\",\"backend\":\"memfd\",\"ownerUid\":%u,\"ownerPid\":%d,\"allowUids\":[],"
		       "\"allowGids\":[],\"locked\":false,\"dmaSafe\":false,\"segments\":null},"
		       "\"bufferFileDescriptor\":0}}",
		       ++b->next_id, (unsigned)b->uid, (int)b->pid);
	return bench_send_fd(b->fd, out, (size_t)len + 1, fd) == len + 1 ? 0 : -errno;
}

/* Read what is there and answer every complete message; <0 when the connection is done. */
static int broker_read(struct bconn *b, int shared_fd)
{
	ssize_t n = recv(b->fd, b->in + b->have, sizeof(b->in) - b->have, 0);
	size_t start = 0;

	if (n <= 0)
		return -1;
	b->have += (size_t)n;
	for (size_t i = 0; i < b->have; i++) {
		if (b->in[i] != '\0')
			continue;
		if (broker_message(b, b->in + start, shared_fd) < 0)
			return -1;
		start = i + 1;
	}
	memmove(b->in, b->in + start, b->have - start);
	b->have -= start;
	return b->have < sizeof(b->in) ? 0 : -1;
}

/* The broker process: one thread, level-triggered epoll, until it is killed. */
static void broker_main(int lfd, bool fdpass)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), shared_fd = -1;

	if (ep < 0)
		bench_die("broker: epoll");
	if (fdpass) {
		shared_fd = memfd_create("physmem", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (shared_fd < 0 || ftruncate(shared_fd, BUF_SIZE) < 0 ||
		    fcntl(shared_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
			bench_die("broker: memfd");
	}
	ev.data.ptr = NULL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		bench_die("broker: epoll_ctl");
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		if (n < 0 && errno != EINTR)
			bench_die("broker: epoll_wait");
		for (int i = 0; i < n; i++) {
			struct bconn *b = evs[i].data.ptr;

			if (!b) {
				struct ucred cred;
				socklen_t len = sizeof(cred);
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd < 0)
					continue;
				b = calloc(1, sizeof(*b));
				if (!b || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
					bench_die("broker: accept");
				b->fd = fd;
				b->buf_fd = -1;
				b->pid = cred.pid;
				b->uid = cred.uid;
				ev.data.ptr = b;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
					bench_die("broker: epoll_ctl");
				continue;
			}
			if (broker_read(b, shared_fd) < 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, b->fd, NULL);
				close(b->fd);
				if (b->buf_fd >= 0)
					close(b->buf_fd);
				free(b);
			}
		}
	}
}

/* Fork a broker listening on path; its pid (it dies with us). */
static pid_t broker_start(const char *path, bool fdpass)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	pid_t pid;
	int lfd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		bench_die("broker: socket path");
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, SOMAXCONN) < 0)
		bench_die("broker: listen");
	pid = fork();
	if (pid < 0)
		bench_die("fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		broker_main(lfd, fdpass);
	}
	close(lfd);
	return pid;
}

/* ---- the report ---- */

/* "min/median/max" of n values with that many decimals into buf (sorts a copy). */
static const char *spread(const double *v, unsigned n, int decimals, char *buf, size_t size)
{
	double s[3];

	bench_spread(v, n, s);
	snprintf(buf, size, "%.*f/%.*f/%.*f", decimals, s[0], decimals, s[1], decimals, s[2]);
	return buf;
}

static void loadavg(char *buf, size_t size)
{
	FILE *f = fopen("/proc/loadavg", "re");

	snprintf(buf, size, "?");
	if (f) {
		if (fscanf(f, "%31s", buf) != 1)
			snprintf(buf, size, "?");
		fclose(f);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: physmem-tput --socket PATH [--clients N[,N...]] [--seconds T] [--rounds R] "
			"[--client raw|lib]\n"
			"  clients 1..%d (at most %d counts), seconds > 0, rounds 1..%d\n",
		MAX_CLIENTS, MAX_COUNTS, MAX_ROUNDS);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "clients", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 't' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "client", required_argument, NULL, 'k' },
		{},
	};
	unsigned counts[MAX_COUNTS] = { 64, 8 }, n_counts = 2, rounds = 3;
	static double rate[MAX_COUNTS][N_SERVERS][MAX_ROUNDS], cpu[MAX_COUNTS][N_SERVERS][MAX_ROUNDS];
	static double ccpu[MAX_COUNTS][N_SERVERS][MAX_ROUNDS];
	const char *socket_path = NULL, *paths[N_SERVERS];
	char dir[] = "/tmp/physmem-tput-XXXXXX", bpath[N_SERVERS][128];
	double seconds = 2;
	pid_t bpid[N_SERVERS], spid[N_SERVERS];
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		char *end;

		if (opt == 's') {
			socket_path = optarg;
		} else if (opt == 'c') {
			n_counts = 0;
			for (char *p = optarg; *p; p = end + (*end == ',')) {
				unsigned long v = strtoul(p, &end, 10);

				if (end == p || v < 1 || v > MAX_CLIENTS || n_counts == MAX_COUNTS || (*end && *end != ','))
					usage();
				counts[n_counts++] = (unsigned)v;
			}
			if (n_counts == 0)
				usage();
		} else if (opt == 't') {
			seconds = strtod(optarg, &end);
			if (*end || !(seconds > 0 && seconds <= 3600))
				usage();
		} else if (opt == 'r') {
			rounds = (unsigned)strtoul(optarg, &end, 10);
			if (*end || rounds < 1 || rounds > MAX_ROUNDS)
				usage();
		} else if (opt == 'k') {
			if (strcmp(optarg, "lib") == 0)
				client_lib = true;
			else if (strcmp(optarg, "raw") != 0)
				usage();
		} else {
			usage();
		}
	}
	if (!socket_path || optind != argc)
		usage();

	signal(SIGPIPE, SIG_IGN);
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		bench_die("mmap");
	if (!mkdtemp(dir))
		bench_die("mkdtemp");
	paths[SERVER_PHYSMEM] = socket_path;
	for (int s = SERVER_BROKER; s < N_SERVERS; s++) {
		snprintf(bpath[s], sizeof(bpath[s]), "%s/%s.sock", dir, server_names[s]);
		paths[s] = bpath[s];
		bpid[s] = broker_start(bpath[s], s == SERVER_FDPASS);
		spid[s] = bpid[s];
	}
	spid[SERVER_PHYSMEM] = server_pid(socket_path);

	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned k = 0; k < n_counts; k++) {
			char load[32];

			/* physmem, broker, fdpass; the other way round every second round. */
			for (int i = 0; i < N_SERVERS; i++) {
				int s = r % 2 ? N_SERVERS - 1 - i : i;

				struct result res = measure(paths[s], spid[s], s == SERVER_PHYSMEM && client_lib, counts[k],
							    seconds);

				rate[k][s][r] = res.rate;
				cpu[k][s][r] = res.server_us;
				ccpu[k][s][r] = res.clients_us;
			}
			loadavg(load, sizeof(load));
			printf("round %u clients=%u physmem-pairs/s=%.0f broker-pairs/s=%.0f ratio=%.2f fdpass/s=%.0f "
			       "cpu-us/pair: physmem=%.1f broker=%.1f fdpass=%.1f, their clients=%.1f/%.1f/%.1f load=%s\n",
			       r + 1, counts[k], rate[k][SERVER_PHYSMEM][r], rate[k][SERVER_BROKER][r],
			       rate[k][SERVER_PHYSMEM][r] / rate[k][SERVER_BROKER][r], rate[k][SERVER_FDPASS][r],
			       cpu[k][SERVER_PHYSMEM][r], cpu[k][SERVER_BROKER][r], cpu[k][SERVER_FDPASS][r],
			       ccpu[k][SERVER_PHYSMEM][r], ccpu[k][SERVER_BROKER][r], ccpu[k][SERVER_FDPASS][r], load);
			fflush(stdout);
		}
	}
	for (unsigned k = 0; k < n_counts; k++) {
		double ratio[MAX_ROUNDS];
		char a[96], b[96], c[96], d[96], e[96], f[96], g[96], h[96], load[32];

		for (unsigned r = 0; r < rounds; r++)
			ratio[r] = rate[k][SERVER_PHYSMEM][r] / rate[k][SERVER_BROKER][r];
		loadavg(load, sizeof(load));
		printf("PHYSMEM-BENCH tput clients=%u physmem-pairs/s=%s broker-pairs/s=%s ratio=%s fdpass/s=%s "
		       "physmem-cpu-us/pair=%s broker-cpu-us/pair=%s physmem-clients-cpu-us/pair=%s "
		       "broker-clients-cpu-us/pair=%s "
		       "(min/median/max of %u rounds of %gs, client=%s, load=%s)\n",
		       counts[k], spread(rate[k][SERVER_PHYSMEM], rounds, 0, a, sizeof(a)),
		       spread(rate[k][SERVER_BROKER], rounds, 0, b, sizeof(b)),
		       spread(ratio, rounds, 2, c, sizeof(c)),
		       spread(rate[k][SERVER_FDPASS], rounds, 0, d, sizeof(d)),
		       spread(cpu[k][SERVER_PHYSMEM], rounds, 1, e, sizeof(e)),
		       spread(cpu[k][SERVER_BROKER], rounds, 1, f, sizeof(f)),
		       spread(ccpu[k][SERVER_PHYSMEM], rounds, 1, g, sizeof(g)),
		       spread(ccpu[k][SERVER_BROKER], rounds, 1, h, sizeof(h)), rounds, seconds,
		       client_lib ? "libphysmem" : "raw", load);
	}

	for (int s = SERVER_BROKER; s < N_SERVERS; s++) {
		kill(bpid[s], SIGTERM);
		waitpid(bpid[s], NULL, 0);
		unlink(bpath[s]);
	}
	rmdir(dir);
	return 0;
}
