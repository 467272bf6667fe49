/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * physmem-fair-bench: is one uid served while others load the daemon
 * (issue 11's fairness target)? Run as root (it switches uids):
 *
 *   physmem-fair-bench --socket PATH [--seconds S] [--runs N] [--hog-size BYTES]
 *                      [--busy N] [--busy-size BYTES] [--flood N] [--flood-size BYTES]
 *                      [--gap-us US] [--named N] [--named-keep K]
 *
 * A victim uid measures, one call after the other with a short pause, the
 * latency of Status and of a 4 KiB Allocate + map + touch + Free, in three
 * scenarios, each run once per round (rounds interleave the scenarios):
 *   alone  nothing else runs;
 *   hog    one other uid loops Allocate (--hog-size, 1 GiB) + map (populated)
 *          + touch + Free, as a real client would;
 *   busy   --busy uids (60000, 60001, ...) loop the same with --busy-size;
 *   flood  one uid keeps --flood connections (63) each sending, one after
 *          the other, a Status call whose parameter is a string of
 *          --flood-size bytes (60000) of \u escapes: cheap to send, the
 *          most expensive call to check and parse within max-message-values
 *          that we know of (the daemon refuses each, after json-c built it);
 *   named  --named uids (default 16) each keep --named-keep (100) named 4 KiB
 *          buffers shared with 64 uids, and loop a named Allocate (shared the
 *          same way) + Free: with the daemon's fd store on (fair-bench.sh sets
 *          fdstore=yes), each named Allocate stores metadata before its reply.
 * Beside each call the victim measures a floor: the same number of round
 * trips with the same message sizes to a trivial peer process of its own
 * (the Allocate floor also brings back an fd and does the 4 KiB memfd work
 * in-process). A floor that grows under load shows CPU contention on the
 * machine; what the daemon's figure grows beyond it is the daemon's own.
 * Nobody is niced: the load runs at the victim's priority.
 *
 * Prints one PHYSMEM-BENCH line per scenario: p50/p99/max of each figure as
 * min/median/max over the rounds, and ratios to the same round's "alone"
 * figure and to the floor; before them one "# round" line per round, with
 * the 4 KiB p99 split into its parts. Nothing is asserted.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#include "bench-util.h"
#include "physmem.h"

#define VICTIM_UID 59999
#define HOG_UID 59998
#define BUSY_UID_BASE 60000
#define FLOOD_UID 59997
#define MAX_FLOOD 256
#define MAX_BUSY 256
#define MAX_SAMPLES 200000

/*
 * Message sizes through libphysmem on the memfd backend, NUL included
 * (strace of this tree): Status call and reply, Allocate call and reply
 * (with the fd), Free call and reply. The floor needs the same order only.
 */
#define MSG_STATUS_CALL 55
#define MSG_STATUS_REPLY 322
#define MSG_ALLOC_CALL 85
#define MSG_ALLOC_REPLY 233
#define MSG_FREE_CALL 59
#define MSG_FREE_REPLY 18

enum { SC_ALONE, SC_HOG, SC_BUSY, SC_FLOOD, SC_NAMED, N_SCENARIOS };
static const char *const scenario_names[] = { "alone", "hog", "busy", "flood", "named" };

/* The four figures the victim measures. */
enum { F_STATUS, F_ALLOC, F_FLOOR_STATUS, F_FLOOR_ALLOC, N_FIGURES };
static const char *const figure_names[] = { "status", "alloc4k", "floor-status", "floor-alloc4k" };

/* The parts of the 4 KiB figure: the Allocate call, map (populate), the Free call, unmap + close. */
enum { P_ALLOCATE, P_MAP, P_FREE, P_CLOSE, N_PARTS };

/* One round of one scenario: p50, p99, max of each figure (seconds), samples, load cycles. */
struct result {
	double q[N_FIGURES][3];
	double part_q[N_PARTS][3];
	unsigned n;
	unsigned cycles;
};

static volatile sig_atomic_t stop;

/* SIGTERM in a load process: finish the cycle, report, leave. */
static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/*
 * Become uid (and gid) for good, with no supplementary groups, in a child
 * that gets sig when the benchmark dies (set after the uid change, which
 * clears it), so that no load process outlives a failed run.
 */
static void become(uid_t uid, pid_t parent, int sig)
{
	if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
		bench_die("setuid");
	if (prctl(PR_SET_PDEATHSIG, sig) < 0)
		bench_die("prctl");
	if (getppid() != parent)
		_exit(1);
}

/* Connect to the daemon, retrying a few times (64 connects may race the backlog). */
static struct physmem *connect_daemon(const char *path)
{
	struct physmem *pm;
	int r = -1;

	for (int i = 0; i < 50; i++) {
		r = physmem_connect(path, &pm);
		if (r >= 0)
			return pm;
		usleep(20000);
	}
	fprintf(stderr, "physmem-fair-bench: connect %s: %s\n", path, strerror(-r));
	exit(1);
}

/*
 * A load process: as uid, loop Allocate + map (libphysmem populates it) +
 * touch + Free until SIGTERM. It writes one byte to ready after its first
 * cycle ('r', or 'e' when that failed), and when it stops the number of
 * cycles it completed: the parent always gets both.
 */
/* A load process's end: say it never got going (no cycle), then wait for SIGTERM. */
static void load_wait_stop(int ready, unsigned cycles)
{
	if (cycles == 0 && write(ready, "e", 1) != 1)
		_exit(1);
	while (!stop)
		pause();
}

/* Report the cycles made, disconnect, exit. */
static void load_exit(int ready, unsigned cycles, struct physmem *pm, bool failed)
{
	if (write(ready, &cycles, sizeof(cycles)) != sizeof(cycles))
		_exit(1);
	physmem_disconnect(pm);
	_exit(failed);
}

static void load_main(const char *path, uid_t uid, uint64_t size, int ready, pid_t parent)
{
	struct physmem *pm;
	unsigned cycles = 0;
	bool failed = false;

	signal(SIGTERM, on_term);
	become(uid, parent, SIGTERM);
	pm = connect_daemon(path);
	while (!stop && !failed) {
		struct physmem_buffer *buf;
		volatile char *p;

		if (physmem_alloc(pm, size, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
			fprintf(stderr, "physmem-fair-bench: load uid %u: allocate: %s\n", (unsigned)uid,
				physmem_error_message(pm));
			failed = true;
			break;
		}
		p = physmem_buffer_map(buf);
		if (p)
			for (uint64_t off = 0; off < size; off += 1 << 20)
				p[off] = 1;
		if (!p || physmem_buffer_free(buf) < 0) {
			fprintf(stderr, "physmem-fair-bench: load uid %u: map or free failed\n", (unsigned)uid);
			failed = true;
			break;
		}
		if (cycles++ == 0 && write(ready, "r", 1) != 1)
			_exit(1);
	}
	load_wait_stop(ready, cycles);
	load_exit(ready, cycles, pm, failed);
}

/* The uids a named load buffer is shared with (as many as the daemon allows). */
#define NAMED_ALLOW 64
#define NAMED_ALLOW_BASE 70000
#define MAX_NAMED_KEEP 256

/*
 * One named load process: as uid, keep `keep` named buffers shared with
 * NAMED_ALLOW uids, then loop a named, shared 4 KiB Allocate + Free until
 * SIGTERM. Reports like load_main(); frees what it kept before it goes
 * (named buffers outlive their connection).
 */
static void named_main(const char *path, uid_t uid, unsigned keep, int ready, pid_t parent)
{
	struct physmem_buffer *kept[MAX_NAMED_KEEP];
	uid_t allow[NAMED_ALLOW];
	struct physmem *pm;
	unsigned cycles = 0, n_kept = 0;
	bool failed = false;
	char name[32];

	signal(SIGTERM, on_term);
	become(uid, parent, SIGTERM);
	pm = connect_daemon(path);
	for (unsigned i = 0; i < NAMED_ALLOW; i++)
		allow[i] = NAMED_ALLOW_BASE + i;
	for (; n_kept < keep; n_kept++) {
		snprintf(name, sizeof(name), "keep-%u", n_kept);
		if (physmem_alloc_shared(pm, 4096, 0, PHYSMEM_CACHE_CACHED, name, allow, NAMED_ALLOW, NULL, 0,
					 &kept[n_kept]) < 0) {
			fprintf(stderr, "physmem-fair-bench: named uid %u: keep %u: %s\n", (unsigned)uid, n_kept,
				physmem_error_message(pm));
			failed = true;
			break;
		}
	}
	while (!stop && !failed) {
		struct physmem_buffer *buf;

		if (physmem_alloc_shared(pm, 4096, 0, PHYSMEM_CACHE_CACHED, "loop", allow, NAMED_ALLOW, NULL, 0,
					 &buf) < 0 || physmem_buffer_free(buf) < 0) {
			fprintf(stderr, "physmem-fair-bench: named uid %u: %s\n", (unsigned)uid,
				physmem_error_message(pm));
			failed = true;
			break;
		}
		if (cycles++ == 0 && write(ready, "r", 1) != 1)
			_exit(1);
	}
	load_wait_stop(ready, cycles);
	for (unsigned i = 0; i < n_kept; i++)
		physmem_buffer_free(kept[i]);
	load_exit(ready, cycles, pm, failed);
}

/*
 * The flood: as FLOOD_UID, n connections that each send the same expensive
 * call again as soon as its reply came, until SIGTERM. Reports like a load
 * process, its cycles being the replies it got.
 */
static void flood_main(const char *path, unsigned n, size_t size, int ready, pid_t parent)
{
	static const char head[] = "{\"method\":\"io.physmem.Manager.Status\",\"parameters\":{\"pad\":\"";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd[MAX_FLOOD];
	size_t sent[MAX_FLOOD] = { 0 }, len;
	unsigned cycles = 0, first = 0;
	bool got[MAX_FLOOD] = { false };
	char *msg, buf[4096];

	signal(SIGTERM, on_term);
	become(FLOOD_UID, parent, SIGTERM);
	/* {"method":...,"parameters":{"pad":"\u00e9\u00e9..."}} and its NUL: about size bytes. */
	msg = malloc(size + sizeof(head) + 8);
	if (!msg)
		bench_die("malloc");
	len = sizeof(head) - 1;
	memcpy(msg, head, len);
	while (len + 6 + 4 <= size) {
		memcpy(msg + len, "\\u00e9", 6);
		len += 6;
	}
	memcpy(msg + len, "\"}}", 4);
	len += 4;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (unsigned i = 0; i < n; i++) {
		int r = -1;

		/* Raw sockets (a few tries: 63 connects may race the backlog). */
		pfd[i].fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (pfd[i].fd < 0)
			bench_die("socket");
		for (int t = 0; t < 50 && r < 0; t++) {
			r = connect(pfd[i].fd, (struct sockaddr *)&sa, sizeof(sa));
			if (r < 0 && errno != EAGAIN)
				bench_die("connect");
			if (r < 0)
				usleep(20000);
		}
		if (r < 0)
			bench_die("connect");
	}
	while (!stop) {
		for (unsigned i = 0; i < n; i++)
			pfd[i].events = sent[i] < len ? POLLOUT | POLLIN : POLLIN;
		if (poll(pfd, n, 100) < 0)
			continue;
		for (unsigned i = 0; i < n; i++) {
			if ((pfd[i].revents & POLLOUT) && sent[i] < len) {
				ssize_t w = send(pfd[i].fd, msg + sent[i], len - sent[i], MSG_NOSIGNAL);

				if (w > 0)
					sent[i] += (size_t)w;
			}
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = recv(pfd[i].fd, buf, sizeof(buf), 0);

				if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
					fprintf(stderr, "physmem-fair-bench: flood connection %u closed\n", i);
					_exit(1);
				}
				for (ssize_t k = 0; k < r; k++)
					if (buf[k] == '\0') {
						/* One reply per call: the next call goes now. */
						cycles++;
						sent[i] = 0;
						if (!got[i]) {
							got[i] = true;
							if (++first == n && write(ready, "r", 1) != 1)
								_exit(1);
						}
					}
			}
		}
	}
	if (first < n && write(ready, "e", 1) != 1)
		_exit(1);
	if (write(ready, &cycles, sizeof(cycles)) != sizeof(cycles))
		_exit(1);
	_exit(0);
}

/* One sendmsg() of len zero bytes, with fd as SCM_RIGHTS unless it is -1; dies on a failure. */
static void send_msg(int sock, size_t len, int fd)
{
	static const char data[4096];

	if (bench_send_fd(sock, data, len, fd) != (ssize_t)len)
		bench_die("floor: sendmsg");
}

/*
 * The floor's peer: reads a one-byte kind, then answers a Status-sized call
 * with a Status-sized reply, or an Allocate/Free pair with replies of their
 * sizes, the first with an fd.
 */
static void echo_main(int sock)
{
	int fd = memfd_create("floor", MFD_CLOEXEC);

	for (;;) {
		char kind;

		if (recv(sock, &kind, 1, 0) != 1)
			_exit(0);
		if (kind == 's') {
			if (bench_recv_fd(sock, MSG_STATUS_CALL) == -2)
				_exit(0);
			send_msg(sock, MSG_STATUS_REPLY, -1);
		} else {
			if (bench_recv_fd(sock, MSG_ALLOC_CALL) == -2)
				_exit(0);
			send_msg(sock, MSG_ALLOC_REPLY, fd);
			if (bench_recv_fd(sock, MSG_FREE_CALL) == -2)
				_exit(0);
			send_msg(sock, MSG_FREE_REPLY, -1);
		}
	}
}

/* The floor of a Status: one round trip of its sizes. */
static void floor_status(int sock)
{
	char msg[1 + MSG_STATUS_CALL] = { 's' };

	if (send(sock, msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t)sizeof(msg))
		bench_die("floor: send");
	bench_recv_fd(sock, MSG_STATUS_REPLY);
}

/* The floor of a 4 KiB Allocate + map + Free: two round trips (one brings an fd) and the memfd work. */
static void floor_alloc(int sock)
{
	char msg[1 + MSG_ALLOC_CALL] = { 'a' };
	volatile char *p;
	int fd;

	if (send(sock, msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t)sizeof(msg))
		bench_die("floor: send");
	fd = bench_recv_fd(sock, MSG_ALLOC_REPLY);
	if (fd < 0)
		bench_die("floor: no fd");
	close(fd);
	fd = memfd_create("floor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, 4096) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		bench_die("floor: memfd");
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		bench_die("floor: mmap");
	madvise((void *)p, 4096, MADV_POPULATE_WRITE);
	p[0] = 1;
	munmap((void *)p, 4096);
	close(fd);
	if (send(sock, msg + 1, MSG_FREE_CALL, MSG_NOSIGNAL) != MSG_FREE_CALL)
		bench_die("floor: send");
	bench_recv_fd(sock, MSG_FREE_REPLY);
}

/* The daemon's Status. */
static void physmem_status_once(struct physmem *pm)
{
	struct physmem_status *st;

	if (physmem_status(pm, &st) < 0) {
		fprintf(stderr, "physmem-fair-bench: status: %s\n", physmem_error_message(pm));
		exit(1);
	}
	physmem_status_free(st);
}

/*
 * The daemon's 4 KiB Allocate + map + touch + Free (what physmem_buffer_free()
 * does: the call, then unmap and close), with the time of each part (or NULL).
 */
static void physmem_alloc_once(struct physmem *pm, double ret_parts[N_PARTS])
{
	struct physmem_buffer *buf;
	volatile char *p;
	double t[N_PARTS + 1];

	t[0] = bench_now();
	if (physmem_alloc(pm, 4096, 0, PHYSMEM_CACHE_CACHED, NULL, &buf) < 0) {
		fprintf(stderr, "physmem-fair-bench: allocate: %s\n", physmem_error_message(pm));
		exit(1);
	}
	t[1] = bench_now();
	p = physmem_buffer_map(buf);
	if (!p)
		bench_die("map");
	p[0] = 1;
	t[2] = bench_now();
	if (physmem_free_id(pm, physmem_buffer_id(buf)) < 0)
		bench_die("free");
	t[3] = bench_now();
	physmem_buffer_close(buf);
	t[4] = bench_now();
	for (unsigned i = 0; ret_parts && i < N_PARTS; i++)
		ret_parts[i] = t[i + 1] - t[i];
}

/* p50, p99 and max of n samples (sorts them). */
static void quantiles(double *v, unsigned n, double ret[3])
{
	ret[0] = bench_quantile(v, n, 0.50);
	ret[1] = bench_quantile(v, n, 0.99);
	ret[2] = v[n - 1];
}

/*
 * The victim, in a child process of its own uid: for seconds, each figure in
 * turn, gap_us apart; writes its struct result to out.
 */
static void victim_main(const char *path, double seconds, unsigned gap_us, int out, pid_t parent)
{
	double *s[N_FIGURES], *ps[N_PARTS];
	struct result res = { 0 };
	struct physmem *pm;
	int sock;
	pid_t echo;
	double end;
	unsigned n = 0;

	become(VICTIM_UID, parent, SIGKILL);
	sock = bench_peer_start(echo_main, &echo);
	for (unsigned f = 0; f < N_FIGURES; f++)
		if (!(s[f] = calloc(MAX_SAMPLES, sizeof(double))))
			bench_die("calloc");
	for (unsigned i = 0; i < N_PARTS; i++)
		if (!(ps[i] = calloc(MAX_SAMPLES, sizeof(double))))
			bench_die("calloc");
	pm = connect_daemon(path);
	/* Warm-up: first faults, the daemon's first buffers for this uid. */
	for (unsigned i = 0; i < 20; i++) {
		physmem_status_once(pm);
		physmem_alloc_once(pm, NULL);
		floor_status(sock);
		floor_alloc(sock);
	}
	end = bench_now() + seconds;
	while (n < MAX_SAMPLES && bench_now() < end) {
		double t[N_FIGURES + 1], parts[N_PARTS];

		t[0] = bench_now();
		physmem_status_once(pm);
		t[1] = bench_now();
		physmem_alloc_once(pm, parts);
		t[2] = bench_now();
		floor_status(sock);
		t[3] = bench_now();
		floor_alloc(sock);
		t[4] = bench_now();
		for (unsigned f = 0; f < N_FIGURES; f++)
			s[f][n] = t[f + 1] - t[f];
		for (unsigned i = 0; i < N_PARTS; i++)
			ps[i][n] = parts[i];
		n++;
		if (gap_us)
			usleep(gap_us);
	}
	for (unsigned f = 0; f < N_FIGURES; f++)
		quantiles(s[f], n, res.q[f]);
	for (unsigned i = 0; i < N_PARTS; i++)
		quantiles(ps[i], n, res.part_q[i]);
	res.n = n;
	if (write(out, &res, sizeof(res)) != sizeof(res))
		bench_die("victim: report");
	physmem_disconnect(pm);
	close(sock);
	waitpid(echo, NULL, 0);
	_exit(0);
}

struct options {
	const char *path;
	double seconds;
	unsigned runs, busy, flood, gap_us, named, named_keep;
	uint64_t hog_size, busy_size, flood_size;
};

/* Read exactly len bytes from fd (a pipe of several writers), or die. */
static void read_all(int fd, void *buf, size_t len, const char *what)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n <= 0) {
			fprintf(stderr, "physmem-fair-bench: %s: %s\n", what, n < 0 ? strerror(errno) : "a child died");
			exit(1);
		}
		got += (size_t)n;
	}
}

/* Wait until the daemon holds no buffer (the last scenario's teardown is done). */
static void wait_settled(const char *path)
{
	struct physmem *pm = connect_daemon(path);

	for (int i = 0; i < 600; i++) {
		struct physmem_status *st;
		bool empty;

		if (physmem_status(pm, &st) < 0)
			break;
		empty = physmem_status_buffers(st) == 0;
		physmem_status_free(st);
		if (empty)
			break;
		usleep(50000);
	}
	physmem_disconnect(pm);
}

/* One round of one scenario: start its load, let the victim measure, stop the load. */
static void run_scenario(const struct options *o, int sc, struct result *ret)
{
	unsigned n_load = sc == SC_HOG || sc == SC_FLOOD ? 1 : sc == SC_BUSY ? o->busy : sc == SC_NAMED ? o->named : 0;
	pid_t load[MAX_BUSY], victim;
	int ready[2], out[2];
	char buf[MAX_BUSY];
	pid_t self = getpid();
	bool failed;

	if (pipe(ready) < 0)
		bench_die("pipe");
	for (unsigned i = 0; i < n_load; i++) {
		load[i] = fork();
		if (load[i] < 0)
			bench_die("fork");
		if (load[i] == 0) {
			close(ready[0]);
			if (sc == SC_FLOOD)
				flood_main(o->path, o->flood, o->flood_size, ready[1], self);
			if (sc == SC_NAMED)
				named_main(o->path, BUSY_UID_BASE + i, o->named_keep, ready[1], self);
			load_main(o->path, sc == SC_HOG ? HOG_UID : BUSY_UID_BASE + i,
				  sc == SC_HOG ? o->hog_size : o->busy_size, ready[1], self);
		}
	}
	close(ready[1]);
	/* Every load process has finished one cycle: the load is on. */
	read_all(ready[0], buf, n_load, "waiting for the load");
	failed = memchr(buf, 'e', n_load) != NULL;
	if (pipe(out) < 0)
		bench_die("pipe");
	victim = failed ? -1 : fork();
	if (victim == 0) {
		close(out[0]);
		close(ready[0]);
		victim_main(o->path, o->seconds, o->gap_us, out[1], self);
	}
	close(out[1]);
	if (victim > 0) {
		read_all(out[0], ret, sizeof(*ret), "victim");
		waitpid(victim, NULL, 0);
	}
	close(out[0]);
	for (unsigned i = 0; i < n_load; i++)
		kill(load[i], SIGTERM);
	ret->cycles = 0;
	for (unsigned i = 0; i < n_load; i++) {
		unsigned c;

		read_all(ready[0], &c, sizeof(c), "load report");
		ret->cycles += c;
	}
	for (unsigned i = 0; i < n_load; i++)
		waitpid(load[i], NULL, 0);
	close(ready[0]);
	if (failed || victim < 0) {
		fprintf(stderr, "physmem-fair-bench: the %s load could not run\n", scenario_names[sc]);
		exit(1);
	}
	wait_settled(o->path);
}

/* key=min/median/max of n values, scaled. */
static void print_key(const char *key, const double *v, unsigned n, double scale)
{
	double s[3];

	bench_spread(v, n, s);
	printf(" %s=%.3f/%.3f/%.3f", key, s[0] * scale, s[1] * scale, s[2] * scale);
}

/* The scenario's line: its figures over the rounds, and its ratios to alone and to the floor. */
static void print_scenario(const struct options *o, int sc, struct result res[][N_SCENARIOS])
{
	static const char *const qn[] = { "p50", "p99", "max" };
	unsigned runs = o->runs;
	double v[runs];
	char key[64];

	printf("PHYSMEM-BENCH fair scenario=%s", scenario_names[sc]);
	if (sc == SC_HOG)
		printf(" load=1x%lluMiB", (unsigned long long)(o->hog_size >> 20));
	else if (sc == SC_BUSY)
		printf(" load=%ux%lluMiB", o->busy, (unsigned long long)(o->busy_size >> 20));
	else if (sc == SC_FLOOD)
		printf(" load=%ux%lluB-calls", o->flood, (unsigned long long)o->flood_size);
	else if (sc == SC_NAMED)
		printf(" load=%ux%u-named", o->named, o->named_keep);
	for (unsigned f = 0; f < N_FIGURES; f++)
		for (unsigned q = 0; q < 3; q++) {
			for (unsigned r = 0; r < runs; r++)
				v[r] = res[r][sc].q[f][q];
			snprintf(key, sizeof(key), "%s-%s-ms", figure_names[f], qn[q]);
			print_key(key, v, runs, 1e3);
		}
	/* The daemon's p99 against its floor's, and each p99 against the same round's alone. */
	for (unsigned f = 0; f < 2; f++) {
		for (unsigned r = 0; r < runs; r++)
			v[r] = res[r][sc].q[f][1] / res[r][sc].q[f + 2][1];
		snprintf(key, sizeof(key), "%s-p99-vs-floor", figure_names[f]);
		print_key(key, v, runs, 1);
	}
	if (sc != SC_ALONE)
		for (unsigned f = 0; f < N_FIGURES; f++) {
			for (unsigned r = 0; r < runs; r++)
				v[r] = res[r][sc].q[f][1] / res[r][SC_ALONE].q[f][1];
			snprintf(key, sizeof(key), "%s-p99-vs-alone", figure_names[f]);
			print_key(key, v, runs, 1);
		}
	for (unsigned r = 0; r < runs; r++)
		v[r] = res[r][sc].n;
	print_key("n", v, runs, 1);
	if (sc != SC_ALONE) {
		for (unsigned r = 0; r < runs; r++)
			v[r] = res[r][sc].cycles;
		print_key("load-cycles", v, runs, 1);
	}
	printf(" runs=%u seconds=%.1f\n", runs, o->seconds);
}

/* BYTES with an optional K, M or G suffix; exits on anything else. */
static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	if (*end == 'K')
		v <<= 10;
	else if (*end == 'M')
		v <<= 20;
	else if (*end == 'G')
		v <<= 30;
	else if (*end)
		v = 0;
	if (!v) {
		fprintf(stderr, "physmem-fair-bench: bad size: %s\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "runs", required_argument, NULL, 'R' },
		{ "hog-size", required_argument, NULL, 'H' },
		{ "busy", required_argument, NULL, 'b' },
		{ "busy-size", required_argument, NULL, 'B' },
		{ "gap-us", required_argument, NULL, 'g' },
		{ "flood", required_argument, NULL, 'f' },
		{ "flood-size", required_argument, NULL, 'F' },
		{ "named", required_argument, NULL, 'n' },
		{ "named-keep", required_argument, NULL, 'k' },
		{},
	};
	struct options o = { .seconds = 5, .runs = 3, .busy = 64, .gap_us = 1000, .hog_size = 1ULL << 30,
			     .busy_size = 16ULL << 20, .flood = 63, .flood_size = 60000, .named = 16,
			     .named_keep = 100 };
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 's')
			o.path = optarg;
		else if (opt == 't')
			o.seconds = strtod(optarg, NULL);
		else if (opt == 'R')
			o.runs = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'H')
			o.hog_size = parse_size(optarg);
		else if (opt == 'b')
			o.busy = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'B')
			o.busy_size = parse_size(optarg);
		else if (opt == 'g')
			o.gap_us = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'f')
			o.flood = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'F')
			o.flood_size = parse_size(optarg);
		else if (opt == 'n')
			o.named = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'k')
			o.named_keep = (unsigned)strtoul(optarg, NULL, 0);
		else
			return 2;
	}
	if (!o.path || o.runs == 0 || o.runs > 100 || o.busy == 0 || o.busy > MAX_BUSY || o.flood == 0 ||
	    o.flood > MAX_FLOOD || o.flood_size < 64 || o.flood_size > (16U << 20) || !(o.seconds > 0) ||
	    o.named == 0 || o.named > MAX_BUSY || o.named_keep > MAX_NAMED_KEEP) {
		fprintf(stderr, "usage: physmem-fair-bench --socket PATH [--seconds S] [--runs 1..100] "
				"[--hog-size BYTES] [--busy 1..%d] [--busy-size BYTES] [--flood 1..%d] "
				"[--flood-size 64..16M] [--gap-us US] [--named 1..%d] [--named-keep 0..%d]\n",
			MAX_BUSY, MAX_FLOOD, MAX_BUSY, MAX_NAMED_KEEP);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "physmem-fair-bench: SKIP: needs root to run the victim and the load as other uids\n");
		return 77;
	}
	/* Our children's output must not interleave with buffered lines. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct result (*res)[N_SCENARIOS] = calloc(o.runs, sizeof(*res));

	if (!res)
		bench_die("calloc");
	for (unsigned r = 0; r < o.runs; r++)
		for (int sc = 0; sc < N_SCENARIOS; sc++) {
			run_scenario(&o, sc, &res[r][sc]);
			printf("# round %u %-5s status p99 %.3f ms (floor %.3f), alloc4k p99 %.3f ms (floor %.3f),"
			       " n %u, load cycles %u; alloc4k parts' p99: allocate %.3f, map %.3f, free %.3f,"
			       " unmap+close %.3f ms\n",
			       r + 1, scenario_names[sc], res[r][sc].q[F_STATUS][1] * 1e3,
			       res[r][sc].q[F_FLOOR_STATUS][1] * 1e3, res[r][sc].q[F_ALLOC][1] * 1e3,
			       res[r][sc].q[F_FLOOR_ALLOC][1] * 1e3, res[r][sc].n, res[r][sc].cycles,
			       res[r][sc].part_q[P_ALLOCATE][1] * 1e3, res[r][sc].part_q[P_MAP][1] * 1e3,
			       res[r][sc].part_q[P_FREE][1] * 1e3, res[r][sc].part_q[P_CLOSE][1] * 1e3);
		}
	for (int sc = 0; sc < N_SCENARIOS; sc++)
		print_scenario(&o, sc, res);
	free(res);
	return 0;
}
