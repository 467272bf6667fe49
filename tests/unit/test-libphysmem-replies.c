/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libphysmem against a fake daemon that sends replies a real one never
 * would (cases found by tests/fuzz/fuzz-physmem-reply.c). The replies are
 * written before each call; libphysmem then reads them as the answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "physmem.h"

struct fake {
	char dir[64];
	char path[108];
	int listen_fd;
	int daemon_fd;		/* the accepted connection: the daemon's end */
	struct physmem *pm;
};

static int setup(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-libphysmem-replies-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 1), 0);
	assert_int_equal(physmem_connect(f->path, &f->pm), 0);
	f->daemon_fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(f->daemon_fd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	physmem_disconnect(f->pm);
	close(f->daemon_fd);
	close(f->listen_fd);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Queue one reply (with its NUL) on the daemon's end, with fd attached if >= 0. */
static void send_reply(struct fake *f, const char *json, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = (void *)json, .iov_len = strlen(json) + 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	assert_int_equal(sendmsg(f->daemon_fd, &mh, MSG_NOSIGNAL), (ssize_t)iov.iov_len);
}

#define BUFFER(id, size)                                                                             \
	"{\"id\":" #id ",\"size\":" #size ",\"contiguous\":false,\"cache\":\"cached\",\"backend\":\"memfd\"," \
	"\"ownerUid\":1000,\"ownerPid\":1,\"allowUids\":[],\"allowGids\":[],\"locked\":false,\"dmaSafe\":false}"

/* A mapped 4 KiB buffer with id 1, as Allocate returns it. */
static struct physmem_buffer *allocate_mapped(struct fake *f)
{
	struct physmem_buffer *buf;
	int memfd = memfd_create("test", MFD_CLOEXEC);

	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, 4096), 0);
	send_reply(f, "{\"parameters\":{\"buffer\":" BUFFER(1, 4096) ",\"bufferFileDescriptor\":0}}", memfd);
	close(memfd);
	assert_int_equal(physmem_alloc(f->pm, 4096, 0, PHYSMEM_CACHE_CACHED, NULL, &buf), 0);
	assert_non_null(physmem_buffer_map(buf));
	return buf;
}

/*
 * A Share reply describing a bigger buffer must not change the size: the
 * mapping was made with the old one and is unmapped with what info says.
 */
static void share_reply_with_other_size_is_rejected(void **state)
{
	struct fake *f = *state;
	struct physmem_buffer *buf = allocate_mapped(f);

	send_reply(f, "{\"parameters\":{\"buffer\":" BUFFER(1, 1073741824) "}}", -1);
	assert_int_equal(physmem_share(buf, "name", NULL, 0, NULL, 0), -EPROTO);
	assert_non_null(strstr(physmem_error_message(f->pm), "'size'"));
	assert_int_equal(physmem_buffer_size(buf), 4096);
	assert_int_equal(physmem_buffer_unmap(buf), 0);
	physmem_buffer_close(buf);
}

/* Nor may it turn the buffer into another one. */
static void share_reply_with_other_id_is_rejected(void **state)
{
	struct fake *f = *state;
	struct physmem_buffer *buf = allocate_mapped(f);

	send_reply(f, "{\"parameters\":{\"buffer\":" BUFFER(2, 4096) "}}", -1);
	assert_int_equal(physmem_share(buf, "name", NULL, 0, NULL, 0), -EPROTO);
	assert_non_null(strstr(physmem_error_message(f->pm), "'id'"));
	assert_int_equal(physmem_buffer_id(buf), 1);
	physmem_buffer_close(buf);
}

/* The good case still works: the new name and lists are taken. */
static void share_reply_with_same_buffer_is_taken(void **state)
{
	struct fake *f = *state;
	struct physmem_buffer *buf = allocate_mapped(f);

	send_reply(f, "{\"parameters\":{\"buffer\":" BUFFER(1, 4096) "}}", -1);
	assert_int_equal(physmem_share(buf, "name", NULL, 0, NULL, 0), 0);
	assert_int_equal(physmem_buffer_size(buf), 4096);
	physmem_buffer_close(buf);
}

/* What libphysmem sent the fake daemon since the last read, NUL separators included. */
static size_t read_sent(struct fake *f, char *out, size_t size)
{
	ssize_t n = recv(f->daemon_fd, out, size - 1, MSG_DONTWAIT);

	if (n < 0) {
		assert_int_equal(errno, EAGAIN);
		n = 0;
	}
	out[n] = '\0';
	return (size_t)n;
}

/* Answer the next call with an error, so that it returns at once. */
#define REFUSE(f) send_reply(f, "{\"error\":\"io.physmem.Manager.NoSuchBuffer\",\"parameters\":{}}", -1)

/*
 * The calls' text, byte for byte: libphysmem writes it with the daemon's
 * writer (proto/varlink-writer.c), and every member, escape and array must
 * come out as a standard Varlink service expects it.
 */
static void calls_are_written_as_json(void **state)
{
	static const uid_t uids[] = { 1000, 4294967294u };
	static const gid_t gids[] = { 0 };
	struct fake *f = *state;
	struct physmem_buffer *buf;
	struct physmem_info *info;
	char sent[4096];
	size_t n;

	REFUSE(f);
	assert_true(physmem_alloc_shared(f->pm, 8192, PHYSMEM_CONTIGUOUS, PHYSMEM_CACHE_WRITECOMBINE,
					 "a\"b\\c/\n\xc3\xa9", uids, 2, gids, 1, &buf) < 0);
	n = read_sent(f, sent, sizeof(sent));
	assert_string_equal(sent, "{\"method\":\"io.physmem.Manager.Allocate\",\"parameters\":{\"size\":8192,"
				  "\"contiguous\":true,\"cache\":\"writecombine\",\"name\":\"a\\\"b\\\\c/\\n\xc3\xa9\","
				  "\"allowUids\":[1000,4294967294],\"allowGids\":[0]}}");
	assert_int_equal(n, strlen(sent) + 1);

	REFUSE(f);
	assert_true(physmem_alloc_pool_bound(f->pm, 4096, "cma", PHYSMEM_CACHE_UNCACHED, NULL, "0000:00:03.0",
					     PHYSMEM_ACCESS_FROM_DEVICE, &buf) < 0);
	read_sent(f, sent, sizeof(sent));
	assert_string_equal(sent, "{\"method\":\"io.physmem.Manager.Allocate\",\"parameters\":{\"size\":4096,"
				  "\"contiguous\":true,\"cache\":\"uncached\",\"pool\":\"cma\","
				  "\"device\":\"0000:00:03.0\",\"deviceAccess\":\"fromDevice\"}}");

	REFUSE(f);
	assert_true(physmem_free_id(f->pm, 9007199254740993ull) < 0);
	read_sent(f, sent, sizeof(sent));
	assert_string_equal(sent, "{\"method\":\"io.physmem.Manager.Free\",\"parameters\":{\"id\":9007199254740993}}");

	REFUSE(f);
	assert_true(physmem_import_owned(f->pm, "frames", 1000, &buf) < 0);
	read_sent(f, sent, sizeof(sent));
	assert_string_equal(sent,
			    "{\"method\":\"io.physmem.Manager.Import\",\"parameters\":{\"name\":\"frames\",\"owner\":1000}}");

	REFUSE(f);
	assert_true(physmem_describe(f->pm, 7, &info) < 0);
	read_sent(f, sent, sizeof(sent));
	assert_string_equal(sent, "{\"method\":\"io.physmem.Manager.Describe\",\"parameters\":{\"id\":7}}");

	REFUSE(f);
	assert_true(physmem_status(f->pm, &(struct physmem_status *){ NULL }) < 0);
	read_sent(f, sent, sizeof(sent));
	assert_string_equal(sent, "{\"method\":\"io.physmem.Manager.Status\",\"parameters\":{}}");
}

/* A name that is not UTF-8 is refused before anything is sent, and the connection stays usable. */
static void bad_utf8_is_refused_before_sending(void **state)
{
	struct fake *f = *state;
	struct physmem_buffer *buf = NULL;
	char sent[256];

	assert_int_equal(physmem_alloc(f->pm, 4096, 0, PHYSMEM_CACHE_CACHED, "bad\xff", &buf), -EILSEQ);
	assert_null(buf);
	assert_int_equal(read_sent(f, sent, sizeof(sent)), 0);

	send_reply(f, "{\"parameters\":{}}", -1);
	assert_int_equal(physmem_free_id(f->pm, 1), 0);
	read_sent(f, sent, sizeof(sent));
	assert_string_equal(sent, "{\"method\":\"io.physmem.Manager.Free\",\"parameters\":{\"id\":1}}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(share_reply_with_other_size_is_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(share_reply_with_other_id_is_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(share_reply_with_same_buffer_is_taken, setup, teardown),
		cmocka_unit_test_setup_teardown(calls_are_written_as_json, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_utf8_is_refused_before_sending, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
