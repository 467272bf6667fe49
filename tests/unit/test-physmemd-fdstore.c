/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fd store's metadata round trip: the id mark and the held list
 * (fdstore_meta_*, fdstore_restore_accounting) with a fake backend whose
 * kernel holds what the test says. The kmod backend's held memory cannot be
 * made in the integration tests (memfd frees at once), so this is its test.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "physmemd.h"

/* Kernel ids the fake kernel still holds. */
static uint64_t live[8];
/* How often the daemon asked the fake kernel. */
static unsigned held_calls;

static int fake_held(void *state, uint64_t kernel_id)
{
	(void)state;
	held_calls++;
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] && live[i] == kernel_id)
			return 1;
	return 0;
}

static void fake_release(void *state, struct backend_buffer *b, bool keep)
{
	(void)state;
	(void)b;
	(void)keep;
}

static void kernel_frees(uint64_t kernel_id)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == kernel_id)
			live[i] = 0;
}

static const struct backend_ops fake_ops = {
	.name = "fake",
	.held = fake_held,
	.release = fake_release,
};

static struct conf conf;

static struct buffer *add(struct registry *r, uid_t uid, uint64_t size, uint64_t kernel_id)
{
	struct backend_buffer bb = { .fd = -1, .size = size, .kernel_id = kernel_id };
	struct buffer *b = registry_add(r, NULL, uid, 1, &bb, 0, 0);

	assert_non_null(b);
	return b;
}

/* Stored text (malloc()ed) as it comes back from systemd. */
static struct json_object *parsed(char *text)
{
	struct json_object *o;

	assert_non_null(text);
	o = json_tokener_parse(text);
	assert_non_null(o);
	free(text);
	return o;
}

/* uid's stored metadata ("meta-UID"). */
static struct json_object *stored_uid(struct registry *r, uid_t uid)
{
	return parsed(fdstore_meta_uid(registry_usage(r, uid, false)));
}

/* Restore into to the accounting from would have stored: its id mark, then the held lists. */
static void restore(struct registry *to, struct registry *from)
{
	struct json_object *m = parsed(fdstore_meta_mark(from));

	assert_true(fdstore_restore_accounting(to, m));
	json_object_put(m);
	m = parsed(fdstore_meta_held(from));
	assert_false(fdstore_restore_accounting(to, m));	/* no mark there */
	json_object_put(m);
}

static void expect_usage(struct registry *r, uid_t uid, uint64_t buffers, uint64_t bytes, uint64_t held)
{
	struct usage *u = registry_usage(r, uid, false);

	assert_non_null(u);
	assert_int_equal(u->buffers, buffers);
	assert_int_equal(u->bytes, bytes);
	assert_int_equal(u->held_bytes, held);
}

static int setup(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");	/* the metadata is written, and goes nowhere */
	conf_defaults(&conf);
	memset(live, 0, sizeof(live));
	return 0;
}

static void test_round_trip(void **state)
{
	struct registry r1, r2;
	struct buffer *b1, *b2;
	uint64_t top;

	(void)state;
	registry_init(&r1, &conf, &fake_ops, NULL);
	r1.fdstore = true;
	live[0] = 11;
	live[1] = 12;
	live[2] = 13;
	b1 = add(&r1, 1000, 4096, 11);
	b2 = add(&r1, 1000, 8192, 12);
	top = add(&r1, 1001, 16384, 13)->id;
	registry_free(&r1, b1);
	registry_free(&r1, b2);
	expect_usage(&r1, 1000, 2, 12288, 12288);

	registry_init(&r2, &conf, &fake_ops, NULL);
	restore(&r2, &r1);
	/* New ids start past the reserved range, never at a used one. */
	assert_true(r2.next_id > top);
	assert_int_equal(r2.next_id, r1.id_mark);
	/* The freed but held buffers are charged to their owner again. */
	expect_usage(&r2, 1000, 2, 12288, 12288);
	assert_null(registry_usage(&r2, 1001, false));	/* a live buffer is no held memory */
	/* ... until the kernel frees them. */
	kernel_frees(11);
	registry_reap(&r2, 1000);
	expect_usage(&r2, 1000, 1, 8192, 8192);
	kernel_frees(12);
	registry_reap(&r2, 1000);
	assert_null(registry_usage(&r2, 1000, false));

	registry_done(&r2);
	registry_done(&r1);
}

/*
 * A pool buffer: its pool's name goes into the metadata; its pool bytes stay
 * charged while the kernel holds the freed memory, also across a restart
 * (the held list says which held memory is pool memory), and go with it.
 */
static void test_pool_buffer(void **state)
{
	struct backend_buffer bb = { .fd = -1, .size = 8192, .kernel_id = 21, .from_pool = true, .pool = "physmem" };
	struct json_object *meta, *list, *e, *v;
	struct registry r, r2;
	struct buffer *b;

	(void)state;
	registry_init(&r, &conf, &fake_ops, NULL);
	live[0] = 21;
	b = registry_add(&r, NULL, 1000, 1, &bb, 0, 0);
	assert_non_null(b);
	assert_int_equal(registry_set_name(&r, b, "frames"), 0);
	r.fdstore = true;		/* (stored nowhere: NOTIFY_SOCKET is not set) */
	fdstore_named(&r, b);
	assert_int_equal(registry_usage(&r, 1000, false)->pool_bytes, 8192);
	meta = stored_uid(&r, 1000);
	assert_true(json_object_object_get_ex(meta, "buffers", &list));
	e = json_object_array_get_idx(list, 0);
	assert_true(json_object_object_get_ex(e, "pool", &v));
	assert_string_equal(json_object_get_string(v), "physmem");
	json_object_put(meta);

	registry_free(&r, b);
	expect_usage(&r, 1000, 1, 8192, 8192);
	assert_int_equal(registry_usage(&r, 1000, false)->pool_bytes, 8192);

	/* Across a restart the held memory stays charged as pool bytes too. */
	registry_init(&r2, &conf, &fake_ops, NULL);
	restore(&r2, &r);
	expect_usage(&r2, 1000, 1, 8192, 8192);
	assert_int_equal(registry_usage(&r2, 1000, false)->pool_bytes, 8192);

	kernel_frees(21);
	registry_reap(&r, 1000);
	assert_null(registry_usage(&r, 1000, false));
	registry_reap(&r2, 1000);
	assert_null(registry_usage(&r2, 1000, false));
	registry_done(&r2);
	registry_done(&r);
}

/*
 * A reap asks the kernel about the calling uid's held buffers only: one
 * uid's held buffers (up to max-buffers-per-uid of them for each uid it
 * controls) must not make another uid's every Allocate and Status cost a
 * query per held buffer on the loop.
 */
static void test_reap_per_uid(void **state)
{
	struct registry r;

	(void)state;
	registry_init(&r, &conf, &fake_ops, NULL);
	for (unsigned i = 0; i < 6; i++) {
		live[i] = 40 + i;
		registry_free(&r, add(&r, 1000, 4096, 40 + i));
	}
	live[6] = 50;
	registry_free(&r, add(&r, 2000, 4096, 50));
	expect_usage(&r, 1000, 6, 6 * 4096, 6 * 4096);
	expect_usage(&r, 2000, 1, 4096, 4096);
	add(&r, 3000, 4096, 60);

	/* uid 3000 holds nothing: its reap asks nothing. */
	held_calls = 0;
	registry_reap(&r, 3000);
	assert_int_equal(held_calls, 0);
	/* uid 2000's reap asks about its one held buffer, not uid 1000's six. */
	kernel_frees(40);
	registry_reap(&r, 2000);
	assert_int_equal(held_calls, 1);
	expect_usage(&r, 2000, 1, 4096, 4096);
	expect_usage(&r, 1000, 6, 6 * 4096, 6 * 4096);	/* freed, but uid 1000 did not ask yet */
	/* uid 1000's reap finds its freed one and keeps the others. */
	held_calls = 0;
	registry_reap(&r, 1000);
	assert_int_equal(held_calls, 6);
	expect_usage(&r, 1000, 5, 5 * 4096, 5 * 4096);
	/* Once the kernel frees the rest, the usage goes (reaping it last is safe). */
	for (unsigned i = 1; i < 6; i++)
		kernel_frees(40 + i);
	registry_reap(&r, 1000);
	assert_null(registry_usage(&r, 1000, false));
	kernel_frees(50);
	registry_reap(&r, 2000);
	assert_null(registry_usage(&r, 2000, false));
	registry_reap(&r, 4242);	/* no usage at all */
	registry_done(&r);
}

/*
 * With the loop's timer (fdstore_start), held-list changes are stored
 * coalesced: any number of them, of any uids, before the loop runs cost one
 * store of the held lists, not one each; a name is stored at once, in its
 * uid's entry, and leaves the held change to the timer; fdstore_stop
 * stores what is pending and makes every later change a store of its own.
 */
static void test_held_changes_coalesced(void **state)
{
	struct event_base *base = event_base_new();
	struct json_object *meta, *list;
	struct registry r;
	struct buffer *named, *b[6], *other;
	uint64_t base_saves;

	(void)state;
	assert_non_null(base);
	registry_init(&r, &conf, &fake_ops, NULL);
	r.fdstore = true;
	assert_int_equal(fdstore_start(&r, base), 0);
	for (unsigned i = 0; i < 6; i++) {
		live[i] = 70 + i;
		b[i] = add(&r, 1000, 4096, 70 + i);
	}
	live[6] = 90;
	other = add(&r, 2000, 4096, 90);
	base_saves = r.meta_saves;	/* the id mark's, stored at once */
	for (unsigned i = 0; i < 6; i++)
		registry_free(&r, b[i]);
	registry_free(&r, other);
	assert_int_equal(r.meta_saves, base_saves);
	assert_true(r.meta_dirty);
	/* One store for uid 1000's six changes and uid 2000's one. */
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(r.meta_saves, base_saves + 1);
	assert_false(r.meta_dirty);
	meta = parsed(fdstore_meta_held(&r));
	assert_true(json_object_object_get_ex(meta, "held", &list));
	assert_int_equal(json_object_array_length(list), 7);
	json_object_put(meta);

	/* The next change waits for the timer (the least gap), then is stored. */
	kernel_frees(70);
	kernel_frees(71);
	kernel_frees(90);
	registry_reap(&r, 1000);
	registry_reap(&r, 2000);
	assert_null(registry_usage(&r, 2000, false));
	assert_int_equal(r.meta_saves, base_saves + 1);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(r.meta_saves, base_saves + 2);

	/* A name is stored at once, in uid 1000's entry; the held change still waits. */
	kernel_frees(72);
	registry_reap(&r, 1000);
	assert_true(r.meta_dirty);
	named = add(&r, 1000, 4096, 80);
	assert_int_equal(registry_set_name(&r, named, "n"), 0);
	fdstore_named(&r, named);
	assert_int_equal(r.meta_saves, base_saves + 3);
	assert_true(r.meta_dirty);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(r.meta_saves, base_saves + 4);
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);	/* 1: no timer left set */

	/* fdstore_stop stores what is pending; later changes are stored at once. */
	kernel_frees(73);
	registry_reap(&r, 1000);
	assert_int_equal(r.meta_saves, base_saves + 4);
	fdstore_stop(&r);
	assert_int_equal(r.meta_saves, base_saves + 5);
	kernel_frees(74);
	registry_reap(&r, 1000);
	assert_int_equal(r.meta_saves, base_saves + 6);

	registry_done(&r);
	event_base_free(base);
}

/*
 * registry_find() looks ids up in a tree: every listed buffer is found,
 * a freed one and one never given out are not, and an id already in use
 * (a restored buffer listed twice) is refused without being charged.
 */
static void test_registry_find(void **state)
{
	struct backend_buffer bb = { .fd = -1, .size = 4096, .kernel_id = 0 };
	struct buffer *b[300];
	uint64_t ids[300];
	struct registry r;

	(void)state;
	registry_init(&r, &conf, &fake_ops, NULL);
	for (unsigned i = 0; i < 300; i++) {
		b[i] = add(&r, 1000 + i % 3, 4096, 0);
		ids[i] = b[i]->id;
	}
	for (unsigned i = 0; i < 300; i += 2)
		registry_free(&r, b[i]);
	for (unsigned i = 0; i < 300; i++)
		assert_ptr_equal(registry_find(&r, ids[i]), i % 2 ? b[i] : NULL);
	assert_null(registry_find(&r, 0));
	assert_null(registry_find(&r, r.next_id));
	assert_null(registry_find(&r, UINT64_MAX));
	assert_null(registry_add(&r, NULL, 2000, 1, &bb, 0, ids[1]));
	assert_null(registry_usage(&r, 2000, false));
	assert_ptr_equal(registry_find(&r, ids[1]), b[1]);
	/* A restored id that is free is taken, and found. */
	assert_non_null(registry_add(&r, NULL, 2000, 1, &bb, 0, ids[0]));
	assert_int_equal(registry_find(&r, ids[0])->owner_uid, 2000);
	registry_done(&r);
	assert_null(r.by_id);
}

/*
 * A connection's close frees the buffers it made and orphans its named
 * ones, from its own list: another connection's buffers are not on it, a
 * buffer freed earlier is off it, and an orphan stays until its uid frees it.
 */
static void test_owner_gone(void **state)
{
	struct backend_buffer bb = { .fd = -1, .size = 4096 };
	struct conn *c1 = calloc(1, sizeof(*c1)), *c2 = calloc(1, sizeof(*c2));
	struct buffer *b[8], *named, *early;
	struct registry r;
	uint64_t named_id;

	(void)state;
	assert_non_null(c1);
	assert_non_null(c2);
	TAILQ_INIT(&c1->owned);
	TAILQ_INIT(&c2->owned);
	registry_init(&r, &conf, &fake_ops, NULL);
	for (unsigned i = 0; i < 8; i++)
		b[i] = registry_add(&r, c1, 1000, 1, &bb, 0, 0);
	early = registry_add(&r, c2, 1000, 1, &bb, 0, 0);
	named = registry_add(&r, c2, 1000, 1, &bb, 0, 0);
	registry_add(&r, c2, 1000, 1, &bb, 0, 0);
	assert_non_null(early);
	assert_non_null(named);
	assert_int_equal(registry_set_name(&r, named, "kept"), 0);
	named_id = named->id;
	registry_free(&r, early);
	expect_usage(&r, 1000, 10, 10 * 4096, 0);

	registry_owner_gone(&r, c2);
	assert_true(TAILQ_EMPTY(&c2->owned));
	expect_usage(&r, 1000, 9, 9 * 4096, 0);		/* c1's eight and the orphan */
	assert_ptr_equal(registry_find(&r, named_id), named);
	assert_null(named->owner);
	for (unsigned i = 0; i < 8; i++)
		assert_ptr_equal(b[i]->owner, c1);
	free(c2);

	registry_free(&r, b[3]);
	registry_owner_gone(&r, c1);
	assert_true(TAILQ_EMPTY(&c1->owned));
	expect_usage(&r, 1000, 1, 4096, 0);
	free(c1);
	registry_done(&r);
}

/*
 * Names are looked up in an index: each name's buffers of every owner, and
 * only those, in the order they got the name; a rename moves a buffer, a
 * free takes it out, and an empty name leaves the index.
 */
static void test_find_name(void **state)
{
	struct buffer *a1, *a2, *b1, *c1, *found[4];
	struct registry r;
	unsigned n = 0;

	(void)state;
	registry_init(&r, &conf, &fake_ops, NULL);
	for (unsigned i = 0; i < 50; i++)	/* unnamed: never looked at */
		add(&r, 3000, 4096, 0);
	a1 = add(&r, 1000, 4096, 0);
	a2 = add(&r, 1000, 4096, 0);
	b1 = add(&r, 2000, 4096, 0);
	c1 = add(&r, 2500, 4096, 0);
	assert_int_equal(registry_set_name(&r, a1, "cam"), 0);
	assert_int_equal(registry_set_name(&r, a2, "mic"), 0);
	assert_int_equal(registry_set_name(&r, b1, "cam"), 0);
	assert_int_equal(registry_set_name(&r, c1, "cam"), 0);

	for (struct buffer *b = NULL; (b = registry_next_name(&r, b, "cam"));)
		found[n++] = b;
	assert_int_equal(n, 3);
	assert_ptr_equal(found[0], a1);
	assert_ptr_equal(found[1], b1);
	assert_ptr_equal(found[2], c1);
	assert_ptr_equal(registry_find_name(&r, 2000, "cam"), b1);
	assert_ptr_equal(registry_find_name(&r, 1000, "mic"), a2);
	assert_null(registry_find_name(&r, 2000, "mic"));
	assert_null(registry_next_name(&r, NULL, "ca"));

	/* A rename moves it; a free takes it out; the last of a name takes the name away. */
	assert_int_equal(registry_set_name(&r, b1, "mic"), 0);
	assert_string_equal(b1->name, "mic");
	assert_null(registry_find_name(&r, 2000, "cam"));
	assert_ptr_equal(registry_find_name(&r, 2000, "mic"), b1);
	registry_free(&r, c1);
	assert_ptr_equal(registry_next_name(&r, NULL, "cam"), a1);
	assert_null(registry_next_name(&r, a1, "cam"));
	registry_free(&r, a1);
	assert_null(registry_next_name(&r, NULL, "cam"));
	assert_ptr_equal(registry_next_name(&r, NULL, "mic"), a2);
	assert_ptr_equal(registry_next_name(&r, a2, "mic"), b1);

	registry_done(&r);
	assert_null(r.by_name);
	assert_null(r.by_uid);
}

/* Memory the kernel freed while no daemon ran is charged to nobody. */
static void test_freed_meanwhile(void **state)
{
	struct registry r1, r2;

	(void)state;
	registry_init(&r1, &conf, &fake_ops, NULL);
	live[0] = 21;
	live[1] = 22;
	registry_free(&r1, add(&r1, 1000, 4096, 21));
	registry_free(&r1, add(&r1, 1000, 8192, 22));
	kernel_frees(21);
	registry_init(&r2, &conf, &fake_ops, NULL);
	restore(&r2, &r1);
	expect_usage(&r2, 1000, 1, 8192, 8192);
	registry_done(&r2);
	registry_done(&r1);
}

/* Bad metadata is dropped entry by entry, and nothing overflows. */
static void test_strict(void **state)
{
	static const char *const texts[] = {
		"{\"nextId\":-5,\"held\":[{\"uid\":-1,\"bytes\":4096,\"kernelId\":31},"
		"{\"uid\":1000,\"bytes\":\"4096\",\"kernelId\":31},{\"uid\":1000,\"bytes\":0,\"kernelId\":31},"
		"{\"uid\":4294967295,\"bytes\":1,\"kernelId\":31},{\"uid\":1000,\"bytes\":4096},"
		"{\"uid\":1000,\"bytes\":4096,\"kernelId\":0},7,null,[],"
		"{\"uid\":1000,\"bytes\":4096,\"kernelId\":31}]}",
		"{\"nextId\":9223372036854775807,\"held\":{\"uid\":1000,\"bytes\":4096,\"kernelId\":31}}",
		"{\"nextId\":\"77\",\"held\":[{\"uid\":1000,\"bytes\":9223372036854775807,\"kernelId\":31},"
		"{\"uid\":1000,\"bytes\":9223372036854775807,\"kernelId\":31},"
		"{\"uid\":1000,\"bytes\":9223372036854775807,\"kernelId\":31}]}",
	};
	struct registry r;
	struct json_object *meta;

	(void)state;
	live[0] = 31;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		meta = json_tokener_parse(texts[i]);
		assert_non_null(meta);
		registry_init(&r, &conf, &fake_ops, NULL);
		assert_false(fdstore_restore_accounting(&r, meta));
		assert_int_equal(r.next_id, 1);		/* no valid mark: as on a first start */
		if (i == 0)
			expect_usage(&r, 1000, 1, 4096, 4096);
		else if (i == 1)
			assert_null(registry_usage(&r, 1000, false));
		else
			expect_usage(&r, 1000, 2, 2 * (uint64_t)INT64_MAX, 2 * (uint64_t)INT64_MAX);
		json_object_put(meta);
		registry_done(&r);
	}
}

/* A held list past the bound is dropped whole. */
static void test_held_bound(void **state)
{
	struct json_object *meta = json_object_new_object(), *held = json_object_new_array();
	struct registry r;

	(void)state;
	live[0] = 41;
	for (int i = 0; i < 65537; i++) {
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "uid", json_object_new_int64(1000));
		json_object_object_add(e, "bytes", json_object_new_int64(4096));
		json_object_object_add(e, "kernelId", json_object_new_int64(41));
		json_object_array_add(held, e);
	}
	json_object_object_add(meta, "held", held);
	registry_init(&r, &conf, &fake_ops, NULL);
	fdstore_restore_accounting(&r, meta);
	assert_null(registry_usage(&r, 1000, false));
	json_object_put(meta);
	registry_done(&r);
}

/*
 * systemd's side of the fd store, for the tests that look at what is
 * stored: a datagram socket as NOTIFY_SOCKET, and a thread that takes each
 * message as it comes (a datagram socket queues only a few: the sender
 * would wait), for notify_read() to look at.
 */
struct notify_msg {
	char state[256];
	int fd;
};

static int notify_sock = -1;
static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static pthread_t notify_thread;
static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notify_synced = PTHREAD_COND_INITIALIZER;
static struct notify_msg notify_msgs[1024];
static unsigned notify_n, notify_seq, notify_syncs;

/* Send text to the notify socket ourselves (after everything sent before it). */
static void notify_send(const char *text)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify_path);
	assert_int_equal(sendto(s, text, strlen(text), 0, (struct sockaddr *)&sa, sizeof(sa)), (ssize_t)strlen(text));
	close(s);
}

static void *notify_pump(void *arg)
{
	(void)arg;
	for (;;) {
		char buf[256], cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t len = recvmsg(notify_sock, &mh, 0);
		struct cmsghdr *cm;
		int fd = -1;

		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			return NULL;
		buf[len] = '\0';
		if (strcmp(buf, "STOP") == 0)
			return NULL;
		if (strcmp(buf, "SYNC") == 0) {
			pthread_mutex_lock(&notify_lock);
			notify_syncs++;
			pthread_cond_signal(&notify_synced);
			pthread_mutex_unlock(&notify_lock);
			continue;
		}
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
				memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		pthread_mutex_lock(&notify_lock);
		if (notify_n < sizeof(notify_msgs) / sizeof(notify_msgs[0])) {
			snprintf(notify_msgs[notify_n].state, sizeof(notify_msgs[0].state), "%s", buf);
			notify_msgs[notify_n++].fd = fd;
		} else if (fd >= 0) {
			close(fd);
		}
		pthread_mutex_unlock(&notify_lock);
	}
}

static void notify_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(notify_path, sizeof(notify_path), "/tmp/test-fdstore-notify-%d", (int)getpid());
	unlink(notify_path);
	notify_sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(notify_sock >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify_path);
	assert_int_equal(bind(notify_sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", notify_path, 1);
	notify_n = 0;
	assert_int_equal(pthread_create(&notify_thread, NULL, notify_pump, NULL), 0);
}

static void notify_close(void)
{
	notify_send("STOP");
	pthread_join(notify_thread, NULL);
	unsetenv("NOTIFY_SOCKET");
	close(notify_sock);
	notify_sock = -1;
	unlink(notify_path);
	for (unsigned i = 0; i < notify_n; i++)
		if (notify_msgs[i].fd >= 0)
			close(notify_msgs[i].fd);
	notify_n = 0;
}

/* What the store holds for one name, after the messages read so far. */
struct stored_entry {
	char name[32];
	char *text;		/* the stored memfd's contents; NULL: taken out (or never stored) */
	unsigned stores, removes;
	unsigned seq;		/* when it was last stored (counting every message) */
};

/*
 * Every message sent so far, applied to entries[n] (names not listed are
 * counted in *other): a marker sent now comes to the pump after them all.
 */
static void notify_read(struct stored_entry *entries, size_t n, unsigned *other)
{
	unsigned want;

	pthread_mutex_lock(&notify_lock);
	want = notify_syncs + 1;
	pthread_mutex_unlock(&notify_lock);
	notify_send("SYNC");
	pthread_mutex_lock(&notify_lock);
	while (notify_syncs < want)
		pthread_cond_wait(&notify_synced, &notify_lock);
	for (unsigned k = 0; k < notify_n; k++) {
		const char *buf = notify_msgs[k].state, *name;
		int fd = notify_msgs[k].fd;
		bool store, found = false;

		notify_seq++;
		store = strncmp(buf, "FDSTORE=1\n", 10) == 0;
		assert_true(store || strncmp(buf, "FDSTOREREMOVE=1\n", 16) == 0);
		name = strstr(buf, "FDNAME=");
		assert_non_null(name);
		name += 7;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(entries[i].name, name) != 0)
				continue;
			found = true;
			free(entries[i].text);
			entries[i].text = NULL;
			if (store) {
				struct stat st;

				entries[i].stores++;
				entries[i].seq = notify_seq;
				assert_true(fd >= 0);
				assert_int_equal(fstat(fd, &st), 0);
				entries[i].text = calloc(1, (size_t)st.st_size + 1);
				assert_non_null(entries[i].text);
				assert_int_equal(pread(fd, entries[i].text, (size_t)st.st_size, 0), st.st_size);
			} else {
				entries[i].removes++;
			}
		}
		if (!found)
			(*other)++;
		if (fd >= 0)
			close(fd);
	}
	notify_n = 0;
	pthread_mutex_unlock(&notify_lock);
}

static void entries_free(struct stored_entry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(entries[i].text);
}

/* The number of elements of member key in the stored text. */
static size_t stored_count(const char *text, const char *key)
{
	struct json_object *o = json_tokener_parse(text), *v;
	size_t n;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, key, &v));
	n = json_object_array_length(v);
	json_object_put(o);
	return n;
}

/*
 * A uid's store is sized by its own buffers: naming one buffer of uid 2000
 * stores uid 2000's metadata (that one buffer), not uid 1000's 40 named
 * buffers with their access lists, and neither the id mark nor anybody
 * else's. Before, every name, free and held change stored one blob of every
 * uid's named and held buffers, which one uid's loop paid for and every
 * uid's calls waited behind.
 */
static void test_store_per_uid(void **state)
{
	struct stored_entry e[4] = { { .name = "meta-1000" }, { .name = "meta-2000" }, { .name = "registry" },
				     { .name = "held" } };
	struct registry r;
	struct buffer *b, *mine;
	unsigned other = 0;
	char name[32];

	(void)state;
	notify_listen();
	registry_init(&r, &conf, &fake_ops, NULL);
	r.fdstore = true;
	for (unsigned i = 0; i < 40; i++) {
		b = add(&r, 1000, 4096, 0);
		snprintf(name, sizeof(name), "frames-%u", i);
		assert_int_equal(registry_set_name(&r, b, name), 0);
		b->n_allow_uids = 64;
		for (unsigned j = 0; j < 64; j++)
			b->allow_uids[j] = 5000 + j;
		fdstore_named(&r, b);
	}
	mine = add(&r, 2000, 4096, 0);
	notify_read(e, 4, &other);
	assert_int_equal(e[0].stores, 40);
	assert_int_equal(stored_count(e[0].text, "buffers"), 40);
	assert_int_equal(e[2].stores, 1);	/* the first id reserved the mark */
	e[0].stores = 0;
	e[2].stores = 0;

	assert_int_equal(registry_set_name(&r, mine, "mine"), 0);
	fdstore_named(&r, mine);
	other = 0;
	notify_read(e, 4, &other);
	assert_int_equal(other, 1);		/* buf-ID, the buffer's fd */
	assert_int_equal(e[1].stores, 1);
	assert_int_equal(stored_count(e[1].text, "buffers"), 1);
	assert_int_equal(e[0].stores, 0);
	assert_int_equal(e[2].stores, 0);
	assert_int_equal(e[3].stores, 0);
	assert_non_null(e[0].text);		/* uid 1000's, as stored before */

	/* New access lists (Share) are stored: the entry is made again, not copied stale. */
	mine->n_allow_uids = 1;
	mine->allow_uids[0] = 4242;
	fdstore_named(&r, mine);
	notify_read(e, 4, &other);
	assert_int_equal(e[1].stores, 2);
	assert_non_null(strstr(e[1].text, "\"allowUids\":[4242]"));

	/* Its free stores uid 2000's again: empty, so taken out. */
	e[1].removes = 0;
	registry_free(&r, mine);
	notify_read(e, 4, &other);
	assert_null(e[1].text);
	assert_int_equal(e[1].removes, 1);
	assert_int_equal(e[0].stores, 0);

	registry_done(&r);
	notify_close();
	entries_free(e, 4);
}

/* As systemd passes n fds from 3 on, with their names (sd_listen_fds_with_names()). */
static void pass_fds(const char *n, const char *names)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", n, 1);
	setenv("LISTEN_FDNAMES", names, 1);
}

/* A registry on the memfd backend (its state returned), as fdstore_collect() needs one. */
static void *memfd_registry(struct registry *r)
{
	void *st;

	assert_int_equal(backend_memfd_ops.init(&conf, &st), 0);
	registry_init(r, &conf, &backend_memfd_ops, st);
	return st;
}

/* A sealed memfd of size bytes, as memfd_allocate() makes them, at fd number at. */
static void memfd_at(int at, size_t size, const char *text)
{
	int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	if (text)
		assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	else
		assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL), 0);
	if (fd != at) {
		assert_int_equal(dup2(fd, at), at);
		close(fd);
	}
}

/*
 * Stored buffers as systemd passes them back (LISTEN_FDS), read with the
 * metadata's field table: a good entry is adopted with its name, owner and
 * access lists; entries with a bad member (or a member a newer daemon
 * added, which is ignored) are judged each on its own. The metadata is as
 * an older daemon stored it, every uid's buffers in "registry": it is
 * stored again as this one writes it, the mark alone in "registry" and the
 * buffer in "meta-1000".
 */
static void test_collect_entries(void **state)
{
	static const char meta[] =
		"{\"nextId\":100,\"held\":[],\"buffers\":["
		"{\"id\":5,\"name\":\"cam0\",\"cache\":1,\"ownerUid\":1000,\"ownerPid\":77,\"allowUids\":[1001],"
		"\"allowGids\":[44,45],\"future\":true},"
		"{\"id\":6,\"name\":\"bad-cache\",\"cache\":3,\"ownerUid\":1000,\"allowUids\":[],\"allowGids\":[]},"
		"{\"id\":7,\"name\":\"bad uid\",\"cache\":0,\"ownerUid\":4294967295,\"allowUids\":[],\"allowGids\":[]},"
		"{\"id\":8,\"name\":\"no owner\",\"cache\":0,\"allowUids\":[],\"allowGids\":[]},"
		"{\"id\":9,\"name\":\"ids\",\"cache\":0,\"ownerUid\":1,\"allowUids\":[-1],\"allowGids\":[]}]}";
	struct stored_entry e[3] = { { .name = "registry" }, { .name = "meta-1000" }, { .name = "held" } };
	struct registry r;
	struct buffer *b;
	unsigned other = 0;
	void *st;
	int listen_fd = -2;

	(void)state;
	st = memfd_registry(&r);
	memfd_at(3, 0, meta);
	for (int i = 0; i < 5; i++)
		memfd_at(4 + i, 4096, NULL);
	notify_listen();	/* (after the fds systemd would pass) */
	pass_fds("6", "registry:buf-5:buf-6:buf-7:buf-8:buf-9");
	assert_int_equal(fdstore_collect(&r, true, &listen_fd), 0);
	assert_int_equal(listen_fd, -1);
	notify_read(e, 3, &other);
	assert_int_equal(other, 4);		/* the four dropped entries' fds taken out */
	assert_non_null(e[0].text);
	assert_null(strstr(e[0].text, "buffers"));
	assert_null(strstr(e[0].text, "held"));
	assert_non_null(strstr(e[0].text, "\"nextId\":100"));
	assert_non_null(e[1].text);
	assert_int_equal(stored_count(e[1].text, "buffers"), 1);
	assert_non_null(strstr(e[1].text, "cam0"));
	assert_int_equal(stored_count(e[2].text, "held"), 0);
	/*
	 * "held" first (a full store must not refuse it), the old "registry"
	 * replaced last: a crash before leaves it for the next start.
	 */
	assert_true(e[2].seq < e[1].seq && e[0].seq > e[1].seq);
	notify_close();
	entries_free(e, 3);

	assert_int_equal(r.n_buffers, 1);
	b = registry_find(&r, 5);
	assert_non_null(b);
	assert_string_equal(b->name, "cam0");
	assert_int_equal(b->cache, 1);
	assert_int_equal(b->owner_uid, 1000);
	assert_int_equal(b->owner_pid, 77);
	assert_int_equal(b->n_allow_uids, 1);
	assert_int_equal(b->allow_uids[0], 1001);
	assert_int_equal(b->n_allow_gids, 2);
	assert_int_equal(b->allow_gids[1], 45);
	assert_true(b->stored);
	assert_int_equal(r.next_id, 100);
	/* The dropped entries' fds were closed. */
	for (int fd = 4 + 1; fd < 4 + 5; fd++)
		assert_int_equal(fcntl(fd, F_GETFD), -1);

	registry_done(&r);
	backend_memfd_ops.fini(st);
}

/*
 * The store as this daemon writes it: the id mark in "registry", each
 * uid's named buffers in "meta-UID". A buffer listed in another uid's
 * entry is dropped, and so is a uid's entry given twice; the entry of a
 * uid left with no named buffer is taken out of the store.
 */
static void test_collect_per_uid(void **state)
{
	static const char mark[] = "{\"nextId\":100}";
	static const char mine[] =
		"{\"buffers\":[{\"id\":5,\"name\":\"cam0\",\"cache\":0,\"ownerUid\":1000,\"allowUids\":[1001],"
		"\"allowGids\":[]}]}";
	static const char theirs[] =
		"{\"buffers\":[{\"id\":6,\"name\":\"cam1\",\"cache\":0,\"ownerUid\":1000,\"allowUids\":[],"
		"\"allowGids\":[]}]}";
	static const char again[] =
		"{\"buffers\":[{\"id\":7,\"name\":\"cam2\",\"cache\":0,\"ownerUid\":1000,\"allowUids\":[],"
		"\"allowGids\":[]}]}";
	struct stored_entry e[3] = { { .name = "registry" }, { .name = "meta-1000" }, { .name = "meta-1001" } };
	struct registry r;
	struct buffer *b;
	unsigned other = 0;
	void *st;
	int listen_fd = -2;

	(void)state;
	st = memfd_registry(&r);
	memfd_at(3, 0, mark);
	memfd_at(4, 0, mine);
	memfd_at(5, 0, theirs);
	memfd_at(6, 0, again);
	for (int i = 0; i < 3; i++)
		memfd_at(7 + i, 4096, NULL);
	notify_listen();
	pass_fds("7", "registry:meta-1000:meta-1001:meta-1000:buf-5:buf-6:buf-7");
	assert_int_equal(fdstore_collect(&r, true, &listen_fd), 0);
	assert_int_equal(listen_fd, -1);

	assert_int_equal(r.next_id, 100);
	assert_int_equal(r.n_buffers, 1);
	b = registry_find(&r, 5);
	assert_non_null(b);
	assert_string_equal(b->name, "cam0");
	assert_int_equal(b->allow_uids[0], 1001);
	assert_true(b->stored && b->on_named);

	notify_read(e, 3, &other);
	assert_int_equal(other, 4);		/* buf-6 and buf-7 taken out, "held" replaced */
	assert_non_null(strstr(e[0].text, "\"nextId\":100"));
	assert_int_equal(stored_count(e[1].text, "buffers"), 1);
	assert_null(e[2].text);			/* uid 1001 has nothing: taken out */
	assert_int_equal(e[2].removes, 1);
	assert_int_equal(e[2].stores, 0);
	notify_close();
	entries_free(e, 3);
	/* buf-6 and buf-7 were dropped (checked once the fds systemd got are closed again). */
	for (int fd = 8; fd < 10; fd++)
		assert_int_equal(fcntl(fd, F_GETFD), -1);
	registry_done(&r);
	backend_memfd_ops.fini(st);
}

/*
 * The held lists are "held"'s. An older daemon kept them in "registry", which
 * is read when there is no "held"; after an upgrade's rewrite was cut short,
 * both are there, and the memory is charged once, as "held" says.
 */
static void test_collect_held_once(void **state)
{
	static const char legacy[] =
		"{\"nextId\":50,\"buffers\":[],\"held\":[{\"uid\":1000,\"bytes\":4096,\"kernelId\":61},"
		"{\"uid\":1000,\"bytes\":8192,\"kernelId\":62}]}";
	static const char held[] = "{\"held\":[{\"uid\":1000,\"bytes\":4096,\"kernelId\":61}]}";
	struct registry r;
	int listen_fd = -2;

	(void)state;
	live[0] = 61;
	live[1] = 62;
	/* Only "registry", as an older daemon left it: its held lists count. */
	registry_init(&r, &conf, &fake_ops, NULL);
	memfd_at(3, 0, legacy);
	pass_fds("1", "registry");
	assert_int_equal(fdstore_collect(&r, false, &listen_fd), 0);
	assert_int_equal(r.next_id, 50);
	expect_usage(&r, 1000, 2, 12288, 12288);
	registry_done(&r);

	/* Both: "held" counts, and the old list is not added to it. */
	registry_init(&r, &conf, &fake_ops, NULL);
	memfd_at(3, 0, legacy);
	memfd_at(4, 0, held);
	pass_fds("2", "registry:held");
	assert_int_equal(fdstore_collect(&r, false, &listen_fd), 0);
	assert_int_equal(r.next_id, 50);
	expect_usage(&r, 1000, 1, 4096, 4096);
	registry_done(&r);
}

/*
 * At shutdown (no timer), freeing every remaining buffer stores the held
 * lists once, not once per buffer left held (which made a shutdown with
 * thousands of held buffers quadratic: review helper-58).
 */
static void test_shutdown_stores_once(void **state)
{
	struct registry r;
	uint64_t saves;

	(void)state;
	registry_init(&r, &conf, &fake_ops, NULL);
	r.fdstore = true;
	for (unsigned i = 0; i < 6; i++) {
		live[i] = 100 + i;
		add(&r, 1000, 4096, 100 + i);
	}
	saves = r.meta_saves;
	registry_done(&r);
	assert_int_equal(r.meta_saves, saves + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_round_trip, setup),
		cmocka_unit_test_setup(test_pool_buffer, setup),
		cmocka_unit_test_setup(test_freed_meanwhile, setup),
		cmocka_unit_test_setup(test_reap_per_uid, setup),
		cmocka_unit_test_setup(test_registry_find, setup),
		cmocka_unit_test_setup(test_owner_gone, setup),
		cmocka_unit_test_setup(test_find_name, setup),
		cmocka_unit_test_setup(test_held_changes_coalesced, setup),
		cmocka_unit_test_setup(test_strict, setup),
		cmocka_unit_test_setup(test_held_bound, setup),
		cmocka_unit_test_setup(test_collect_entries, setup),
		cmocka_unit_test_setup(test_store_per_uid, setup),
		cmocka_unit_test_setup(test_collect_per_uid, setup),
		cmocka_unit_test_setup(test_collect_held_once, setup),
		cmocka_unit_test_setup(test_shutdown_stores_once, setup),
	};

	log_set_level(LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
