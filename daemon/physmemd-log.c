/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging to stderr. Under systemd (JOURNAL_STREAM naming stderr) each line
 * starts with a syslog priority prefix "<N>" that journald understands;
 * otherwise with "physmemd: level: ".
 *
 * A log line must never block the loop: clients make the daemon log
 * (refusals and disconnects; at debug a line per call), and a reader that
 * stops reading (a stalled journald, a pipe nobody drains) would otherwise
 * stop every client with it. So stderr is written without blocking: with
 * MSG_DONTWAIT when it is a socket (journald's stream), through a
 * non-blocking open file description of its own when it is a pipe, FIFO or
 * terminal, after poll() when that cannot be had (see log_setup()). A line
 * that does not fit is counted, not written, and the next line that does fit
 * is preceded by a warning with the count. A line written in part is
 * finished, before anything else, by the next log call that can; lines are
 * never interleaved or cut. Regular files are written as before.
 *
 * Lines a client causes at will go through log_client(): see below.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "physmemd.h"

#define LOG_LINE_MAX 1024

static int max_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {
	[LOG_LEVEL_ERR] = "error", [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug",
};

/* All below under log_lock: the loop and the workers log. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool log_ready;
static bool log_journal;	/* JOURNAL_STREAM: "<N>" prefixes */
static bool log_socket;		/* stderr is a socket: send() with MSG_DONTWAIT */
static bool log_poll;		/* stderr is a blocking pipe: write() only after poll() finds room */
static bool log_mute;		/* stderr is a blocking terminal: nothing is written */
static char log_setup_note[200];	/* what log_setup() has to say, said before the first line */
static unsigned long log_dropped;	/* lines not written since the last one that was */
/* The unwritten tail of the last line written in part. */
static char log_pending[2 * (LOG_LINE_MAX + 64)];
static size_t log_pending_len, log_pending_off;

void log_set_level(int level)
{
	max_level = level;
}

int log_parse_level(const char *s)
{
	for (int i = LOG_LEVEL_ERR; i <= LOG_LEVEL_DEBUG; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

static int log_prefix(char *buf, size_t size, int level)
{
	if (log_journal)
		return snprintf(buf, size, "<%d>", level);
	return snprintf(buf, size, "physmemd: %s: ", level_names[level]);
}

/*
 * Learn what stderr is: log_open() at start, before any client, else at the
 * first line. A pipe, FIFO or terminal is opened again, non-blocking, and put
 * on fd 2: a new open file description, so the O_NONBLOCK reaches neither the
 * process that shares the old one (a shell, systemd) nor anything else. A
 * FIFO is opened read-write, which never fails for want of a reader. What was
 * opened must be what fd 2 was (the same inode); /dev/ptmx is not opened
 * again (that would make a new terminal).
 *
 * When it cannot be opened (a pipe or terminal of another user, no /proc):
 * a pipe's lines are written only after poll() finds room (a line is under
 * PIPE_BUF: a pipe takes it whole or poll() says no); a terminal's poll()
 * promises room for one byte, not a line, so it gets no line at all after a
 * note that says so, written at start, when no client can have filled it.
 */
static void log_setup(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st, again;
	int fd = -1, r, n;

	log_ready = true;
	if (fstat(STDERR_FILENO, &st) < 0)
		return;
	/* JOURNAL_STREAM names the stream it applies to: only that one takes "<N>" prefixes. */
	log_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && dev == (unsigned long long)st.st_dev &&
		      ino == (unsigned long long)st.st_ino;
	if (S_ISSOCK(st.st_mode)) {
		log_socket = true;
		return;
	}
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		return;
	if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 && minor(st.st_rdev) == 2)
		errno = EPERM;	/* /dev/ptmx */
	else
		fd = open("/proc/self/fd/2", (S_ISFIFO(st.st_mode) ? O_RDWR : O_WRONLY) | O_NONBLOCK | O_NOCTTY |
			  O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &again) == 0 && again.st_dev == st.st_dev && again.st_ino == st.st_ino &&
	    again.st_rdev == st.st_rdev && dup2(fd, STDERR_FILENO) == STDERR_FILENO) {
		/* dup2 left FD_CLOEXEC off fd 2, as it was. */
		close(fd);
		return;
	}
	r = fd < 0 ? errno : EBADF;
	if (fd >= 0)
		close(fd);
	if (S_ISFIFO(st.st_mode)) {
		log_poll = true;
		snprintf(log_setup_note, sizeof(log_setup_note),
			 "stderr (a pipe) cannot be opened again non-blocking (%s): lines are written when poll() "
			 "finds room", strerror(r));
		return;
	}
	log_mute = true;
	/* Said now, blocking: the caller is log_open() at start (a line's first caller only in tests). */
	n = log_prefix(log_setup_note, sizeof(log_setup_note), LOG_LEVEL_WARNING);
	n += snprintf(log_setup_note + n, sizeof(log_setup_note) - (size_t)n,
		      "stderr (a terminal or device) cannot be opened again non-blocking (%s): no further line is "
		      "written to it\n", strerror(r));
	/* snprintf() returns what it would have written: never past the buffer. */
	if (n >= (int)sizeof(log_setup_note))
		n = sizeof(log_setup_note) - 1;
	if (write(STDERR_FILENO, log_setup_note, (size_t)n) < 0) {
		/* Nowhere else to say it: the terminal stays muted either way. */
	}
	log_setup_note[0] = '\0';
}

void log_open(void)
{
	pthread_mutex_lock(&log_lock);
	if (!log_ready)
		log_setup();
	pthread_mutex_unlock(&log_lock);
}

/* Bytes written, or -1 when none could be (full, or an error: either way dropped). */
static ssize_t log_out(const char *p, size_t len)
{
	ssize_t n;

	if (log_mute)
		return -1;
	if (log_poll) {
		struct pollfd pfd = { .fd = STDERR_FILENO, .events = POLLOUT };

		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
			return -1;
	}
	do {
		if (log_socket)
			n = send(STDERR_FILENO, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			n = write(STDERR_FILENO, p, len);
	} while (n < 0 && errno == EINTR);
	return n;
}

/* Write what is left of a line written in part; true when nothing is left. */
static bool log_flush_pending(void)
{
	while (log_pending_off < log_pending_len) {
		ssize_t n = log_out(log_pending + log_pending_off, log_pending_len - log_pending_off);

		if (n <= 0)
			return false;
		log_pending_off += (size_t)n;
	}
	log_pending_len = log_pending_off = 0;
	return true;
}

/*
 * Lines a client causes at will (a refusal, a disconnect, a binding): at most
 * LOG_CLIENT_PER_SEC in each second of the coarse monotonic clock; the rest
 * are counted, and the next line logged after that second says how many.
 * Journald drops every line of a service past its rate limit (10,000 in 30 s
 * by default), the daemon's own warnings included: clients get 600 of them.
 */
#define LOG_CLIENT_PER_SEC 20
static time_t log_client_sec;		/* the second log_client_lines counts in */
static unsigned log_client_lines;
static unsigned long log_client_suppressed;	/* not yet reported */
static time_t log_suppressed_sec;	/* of the last line suppressed */

/* Write the line: after the notes on lines dropped and suppressed, if any. */
static void log_emit(int level, const char *line, bool client)
{
	char out[sizeof(log_pending)];
	unsigned long suppressed = 0;
	struct timespec now;
	size_t len = 0;
	ssize_t n;

	if (client || log_client_suppressed) {
		clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
		if (now.tv_sec != log_client_sec) {
			log_client_sec = now.tv_sec;
			log_client_lines = 0;
		}
		if (client && log_client_lines >= LOG_CLIENT_PER_SEC) {
			log_client_suppressed++;
			log_suppressed_sec = now.tv_sec;
			return;
		}
		log_client_lines += client;
		/* Said once the second they were suppressed in is over. */
		if (now.tv_sec != log_suppressed_sec)
			suppressed = log_client_suppressed;
	}
	if (!log_flush_pending()) {
		log_dropped++;
		return;
	}
	/* All parts fit: each prefix is under 64 bytes, each note under 100, the text under LOG_LINE_MAX. */
	if (log_dropped) {
		len += (size_t)log_prefix(out + len, sizeof(out) - len, LOG_LEVEL_WARNING);
		len += (size_t)snprintf(out + len, sizeof(out) - len,
					"%lu log lines dropped: stderr was not being read\n", log_dropped);
	}
	if (suppressed) {
		len += (size_t)log_prefix(out + len, sizeof(out) - len, LOG_LEVEL_NOTICE);
		len += (size_t)snprintf(out + len, sizeof(out) - len,
					"%lu log lines about clients not logged (at most %d a second)\n", suppressed,
					LOG_CLIENT_PER_SEC);
	}
	len += (size_t)log_prefix(out + len, sizeof(out) - len, level);
	len += (size_t)snprintf(out + len, sizeof(out) - len, "%s\n", line);
	n = log_out(out, len);
	if (n <= 0) {
		log_dropped++;	/* the note on suppressed lines waits for a later line */
		return;
	}
	log_dropped = 0;
	log_client_suppressed -= suppressed;
	if ((size_t)n < len) {
		memcpy(log_pending, out + n, len - (size_t)n);
		log_pending_len = len - (size_t)n;
		log_pending_off = 0;
	}
}

static void log_vmsg(int level, bool client, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];

	if (level > max_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* One line per message: never let a client-supplied newline split it. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	pthread_mutex_lock(&log_lock);
	if (!log_ready)
		log_setup();
	if (log_setup_note[0]) {
		log_emit(LOG_LEVEL_WARNING, log_setup_note, false);
		log_setup_note[0] = '\0';
	}
	log_emit(level, line, client);
	pthread_mutex_unlock(&log_lock);
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, false, fmt, ap);
	va_end(ap);
}

void log_client(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, true, fmt, ap);
	va_end(ap);
}
