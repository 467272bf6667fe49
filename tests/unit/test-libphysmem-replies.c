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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(share_reply_with_other_size_is_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(share_reply_with_other_id_is_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(share_reply_with_same_buffer_is_taken, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
