/* SPDX-License-Identifier: GPL-2.0-or-later */
/* conf_load(), conf_set() and conf_check() of physmemd-conf.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "physmemd.h"

/* Write text to a fresh temporary file and load it into *c (after defaults). */
static int load(struct conf *c, const char *text)
{
	char path[] = "/tmp/test-physmemd-conf-XXXXXX";
	int fd = mkstemp(path), r;
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	conf_defaults(c);
	r = conf_load(c, path);
	unlink(path);
	return r;
}

static void test_defaults(void **state)
{
	struct conf c;

	(void)state;
	conf_defaults(&c);
	assert_int_equal(conf_check(&c), 0);
	assert_string_equal(c.backend, "auto");
	assert_string_equal(c.device, "/dev/physmem");
	assert_int_equal(c.socket_mode, 0666);
	assert_true(c.max_message_size == 64 * 1024);
	assert_int_equal(c.address_policy, ADDRESS_POLICY_OWNER);
	assert_int_equal(c.lock, LOCK_TRY);
	assert_true(c.hugepage_size == 0);
	assert_true(c.hugepages_auto);
	assert_true(c.worker_threads == 2);
	assert_true(c.debug_job_delay_ms == 0);
	assert_true(c.sink_timeout_ms == 2000);
}

static void test_every_key(void **state)
{
	struct conf c;

	(void)state;
	assert_int_equal(load(&c,
		"# a comment\n"
		"; another comment\n"
		"\n"
		"   \t\n"
		"socket = /run/test/physmemd.sock\n"
		"socket-mode = 0660\n"
		"backend = memfd\n"
		"device = /dev/physmem1\n"
		"max-message-size = 16K\n"
		"max-output-per-connection = 2M\n"
		"max-connections = 100\n"
		"max-connections-per-uid = 7\n"
		"max-buffers-per-uid = 9\n"
		"max-bytes-per-uid = 1GiB\n"
		"max-buffer-size = 256MB\n"
		"max-buffers = 77\n"
		"stall-timeout-ms = 1500\n"
		"sink-timeout-ms = 500\n"
		"max-message-values = 300\n"
		"loop-budget-us = 2500\n"
		"loop-window-ms = 20\n"
		"address-policy = root\n"
		"lock = yes\n"
		"hugepages = 2M\n"
		"worker-threads = 5\n"
		"debug-job-delay-ms = 250\n"
		"log-level = debug\n"), 0);
	assert_string_equal(c.socket_path, "/run/test/physmemd.sock");
	assert_int_equal(c.socket_mode, 0660);
	assert_string_equal(c.backend, "memfd");
	assert_string_equal(c.device, "/dev/physmem1");
	assert_true(c.max_message_size == 16 << 10);
	assert_true(c.max_output_per_connection == 2 << 20);
	assert_true(c.max_connections == 100);
	assert_true(c.max_connections_per_uid == 7);
	assert_true(c.max_buffers_per_uid == 9);
	assert_true(c.max_bytes_per_uid == 1ULL << 30);
	assert_true(c.max_buffer_size == 256ULL << 20);
	assert_true(c.max_buffers_total == 77);
	assert_true(c.stall_timeout_ms == 1500);
	assert_true(c.sink_timeout_ms == 500);
	assert_true(c.max_message_values == 300);
	assert_true(c.loop_budget_us == 2500);
	assert_true(c.loop_window_ms == 20);
	assert_int_equal(c.address_policy, ADDRESS_POLICY_ROOT);
	assert_int_equal(c.lock, LOCK_YES);
	assert_true(c.hugepage_size == 2ULL << 20);
	assert_false(c.hugepages_auto);
	assert_true(c.worker_threads == 5);
	assert_true(c.debug_job_delay_ms == 250);
	assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(conf_check(&c), 0);
}

static void test_enum_values(void **state)
{
	struct conf c;

	(void)state;
	assert_int_equal(load(&c, "address-policy=none\nlock=no\nlog-level=WARNING\n"), 0);
	assert_int_equal(c.address_policy, ADDRESS_POLICY_NONE);
	assert_int_equal(c.lock, LOCK_NO);
	assert_int_equal(c.log_level, LOG_LEVEL_WARNING);
	assert_int_equal(load(&c, "address-policy=owner\nlock=try\nlog-level=error\n"), 0);
	assert_int_equal(c.address_policy, ADDRESS_POLICY_OWNER);
	assert_int_equal(c.lock, LOCK_TRY);
	assert_int_equal(c.log_level, LOG_LEVEL_ERR);
	/* No trailing newline on the last line. */
	assert_int_equal(load(&c, "max-buffers = 5"), 0);
	assert_true(c.max_buffers_total == 5);
}

static void test_bad_values(void **state)
{
	static const char *const bad[] = {
		"max-message-size = lots\n",
		"max-message-size = -1\n",
		"max-message-size = 1X\n",
		"max-message-size = 99999999999999999999\n",
		"max-message-size =\n",
		"max-connections = 10K\n",
		"max-connections = -5\n",
		"max-connections = 1.5\n",
		"max-connections = \n",
		"max-buffers = 18446744073709551616\n",
		"stall-timeout-ms = soon\n",
		"socket-mode = 0999\n",
		"socket-mode = 01777\n",
		"socket-mode = rw\n",
		"socket-mode =\n",	/* was mode 0000 (found by fuzz-physmemd-conf) */
		"socket-mode = -0\n",
		"socket-mode = +660\n",
		"address-policy = everyone\n",
		"address-policy = Owner\n",
		"lock = maybe\n",
		"log-level = loud\n",
		"hugepages = huge\n",
		"backend = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		"socket = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		"this line has no equals sign\n",
		"max-buffers = 5\nlock = sometimes\n",
	};
	struct conf c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = load(&c, bad[i]);

		if (r >= 0)
			fail_msg("accepted: %s", bad[i]);
	}
}

static void test_unknown_key(void **state)
{
	struct conf c;

	(void)state;
	assert_int_equal(load(&c, "max-bufers = 5\n"), -ENOENT);
	assert_int_equal(load(&c, "= 5\n"), -ENOENT);
	assert_int_equal(conf_set(&c, "nope", "1"), -ENOENT);
	assert_int_equal(conf_set(&c, "max-buffers", "3"), 0);
	assert_true(c.max_buffers_total == 3);
}

static void test_long_line(void **state)
{
	struct conf c;
	char text[2048];

	(void)state;
	memset(text, '#', sizeof(text) - 2);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(load(&c, text), -EINVAL);
}

static void test_missing_file(void **state)
{
	struct conf c;

	(void)state;
	conf_defaults(&c);
	assert_int_equal(conf_load(&c, "/nonexistent/physmemd.conf"), -ENOENT);
}

static void test_sizes_with_units(void **state)
{
	struct conf c;

	(void)state;
	assert_int_equal(load(&c, "max-bytes-per-uid = 4096\nmax-buffer-size = 64k\nhugepages = 1G\n"), 0);
	assert_true(c.max_bytes_per_uid == 4096);
	assert_true(c.max_buffer_size == 64 << 10);
	assert_true(c.hugepage_size == 1ULL << 30);
	assert_int_equal(load(&c, "max-bytes-per-uid = 2TiB\nhugepages = 0\n"), 0);
	assert_true(c.max_bytes_per_uid == 2ULL << 40);
	assert_true(c.hugepage_size == 0);
}

/* hugepages: auto (the default), 0 (never) or a fixed size (always); the last line wins. */
static void test_hugepages(void **state)
{
	struct conf c;

	(void)state;
	assert_int_equal(load(&c, "hugepages = 0\n"), 0);
	assert_true(c.hugepage_size == 0);
	assert_false(c.hugepages_auto);
	assert_int_equal(conf_check(&c), 0);
	assert_int_equal(load(&c, "hugepages = 1G\n"), 0);
	assert_true(c.hugepage_size == 1ULL << 30);
	assert_false(c.hugepages_auto);
	assert_int_equal(conf_check(&c), 0);
	assert_int_equal(load(&c, "hugepages = 2M\nhugepages = auto\n"), 0);
	assert_true(c.hugepage_size == 0);
	assert_true(c.hugepages_auto);
	assert_int_equal(conf_check(&c), 0);
	assert_int_equal(load(&c, "hugepages = auto\nhugepages = 0\n"), 0);
	assert_false(c.hugepages_auto);
	/* Bad values change nothing and fail the load. */
	conf_defaults(&c);
	assert_int_equal(conf_set(&c, "hugepages", "Auto"), -EINVAL);
	assert_int_equal(conf_set(&c, "hugepages", "auto2M"), -EINVAL);
	assert_int_equal(conf_set(&c, "hugepages", ""), -EINVAL);
	assert_int_equal(conf_set(&c, "hugepages", "-2M"), -EINVAL);
	assert_true(c.hugepages_auto && c.hugepage_size == 0);
	assert_int_equal(load(&c, "hugepages = never\n"), -EINVAL);
	/* Only the kernel's two x86 huge page sizes. */
	assert_int_equal(load(&c, "hugepages = 4M\n"), 0);
	assert_int_equal(conf_check(&c), -EINVAL);
	assert_int_equal(load(&c, "hugepages = 4K\n"), 0);
	assert_int_equal(conf_check(&c), -EINVAL);
}

/* pool-users: principals resolved at load, the key repeats and adds; bad ones fail the load. */
static void test_pool_keys(void **state)
{
	char text[2048];
	size_t len = 0;
	struct conf c;

	(void)state;
	conf_defaults(&c);
	assert_false(c.pool_users.all);
	assert_int_equal(c.pool_users.n_uids + c.pool_users.n_gids, 0);
	assert_true(c.max_pool_bytes_per_uid == 1ULL << 30);

	assert_int_equal(load(&c, "pool-users = uid:1000, gid:27 root\npool-users = @root\n"
				 "max-pool-bytes-per-uid = 256M\n"), 0);
	assert_false(c.pool_users.all);
	assert_int_equal(c.pool_users.n_uids, 2);
	assert_int_equal(c.pool_users.uids[0], 1000);
	assert_int_equal(c.pool_users.uids[1], 0);
	assert_int_equal(c.pool_users.n_gids, 2);
	assert_int_equal(c.pool_users.gids[0], 27);
	assert_int_equal(c.pool_users.gids[1], 0);
	assert_true(c.max_pool_bytes_per_uid == 256ULL << 20);

	assert_int_equal(load(&c, "pool-users = *\n"), 0);
	assert_true(c.pool_users.all);

	assert_int_equal(load(&c, "pool-users = uid:abc\n"), -EINVAL);
	assert_int_equal(load(&c, "pool-users = uid:4294967295\n"), -EINVAL);
	assert_int_equal(load(&c, "pool-users = gid:\n"), -EINVAL);
	assert_int_equal(load(&c, "pool-users =\n"), -EINVAL);
	assert_int_equal(load(&c, "pool-users = no-such-user-physmem\n"), -EINVAL);
	assert_int_equal(load(&c, "pool-users = @no-such-group-physmem\n"), -EINVAL);
	assert_int_equal(load(&c, "pool-users = 1000\n"), -EINVAL);	/* a bare number is a user name here */
	assert_int_equal(load(&c, "max-pool-bytes-per-uid = lots\n"), -EINVAL);

	/* At most PRINCIPALS_MAX users: one more is refused, not dropped. */
	for (unsigned i = 0; i <= PRINCIPALS_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "pool-users = uid:%u\n", 100 + i);
	assert_int_equal(load(&c, text), -E2BIG);
}

static void test_check(void **state)
{
	struct conf c;

	(void)state;
	conf_defaults(&c);
	c.max_message_size = 1023;
	assert_int_equal(conf_check(&c), -EINVAL);
	c.max_message_size = 1024;
	assert_int_equal(conf_check(&c), 0);
	c.max_message_size = 64ULL << 20;
	assert_int_equal(conf_check(&c), 0);
	c.max_message_size = (64ULL << 20) + 1;
	assert_int_equal(conf_check(&c), -EINVAL);

	conf_defaults(&c);
	c.hugepage_size = 4096;
	assert_int_equal(conf_check(&c), -EINVAL);
	c.hugepage_size = 2ULL << 20;
	assert_int_equal(conf_check(&c), 0);
	c.hugepage_size = 1ULL << 30;
	assert_int_equal(conf_check(&c), 0);

	conf_defaults(&c);
	c.max_connections = 0;
	assert_int_equal(conf_check(&c), -EINVAL);
	conf_defaults(&c);
	c.max_connections_per_uid = 0;
	assert_int_equal(conf_check(&c), -EINVAL);

	conf_defaults(&c);
	c.max_message_values = 63;
	assert_int_equal(conf_check(&c), -EINVAL);
	c.max_message_values = 64;
	assert_int_equal(conf_check(&c), 0);
	c.max_message_values = (64ULL << 20) + 1;
	assert_int_equal(conf_check(&c), -EINVAL);

	/* The loop budget: a window of 1 ms to 60 s, a budget of at most the window (0: off). */
	conf_defaults(&c);
	c.loop_window_ms = 0;
	assert_int_equal(conf_check(&c), -EINVAL);
	c.loop_window_ms = 60001;
	assert_int_equal(conf_check(&c), -EINVAL);
	c.loop_window_ms = 10;
	c.loop_budget_us = 10001;
	assert_int_equal(conf_check(&c), -EINVAL);
	c.loop_budget_us = 10000;
	assert_int_equal(conf_check(&c), 0);
	c.loop_budget_us = 0;
	assert_int_equal(conf_check(&c), 0);

	conf_defaults(&c);
	c.sink_timeout_ms = 9;
	assert_int_equal(conf_check(&c), -EINVAL);
	c.sink_timeout_ms = 10;
	assert_int_equal(conf_check(&c), 0);
	c.sink_timeout_ms = 3600000;
	assert_int_equal(conf_check(&c), 0);
	c.sink_timeout_ms = 3600001;
	assert_int_equal(conf_check(&c), -EINVAL);
	c.sink_timeout_ms = 2000;
	c.worker_threads = 0;
	assert_int_equal(conf_check(&c), -EINVAL);
	c.worker_threads = 64;
	assert_int_equal(conf_check(&c), 0);
	c.worker_threads = 65;
	assert_int_equal(conf_check(&c), -EINVAL);

	/* The release hold: 0 (off) to one second. */
	conf_defaults(&c);
	c.release_hold_us = 0;
	assert_int_equal(conf_check(&c), 0);
	c.release_hold_us = 1000000;
	assert_int_equal(conf_check(&c), 0);
	c.release_hold_us = 1000001;
	assert_int_equal(conf_check(&c), -EINVAL);
}

/* bind-device lines: each adds a rule; devices and principals are checked. */
static void test_bind_device(void **state)
{
	struct conf c;
	const struct bind_rule *r;

	(void)state;
	conf_defaults(&c);
	assert_true(c.max_bindings_per_uid == 64);
	assert_int_equal(c.n_bind_rules, 0);
	assert_string_equal(c.pci_sysfs, "/sys/bus/pci/devices");
	assert_int_equal(load(&c, "bind-device = 0000:00:03.0 uid:65534, 1000 @root gid:44\n"
				  "bind-device = 1234:11E8 root\n"
				  "bind-device = 0a:1f.7 uid:5\n"
				  "max-bindings-per-uid = 3\n"),
			 0);
	assert_true(c.max_bindings_per_uid == 3);
	assert_int_equal(c.n_bind_rules, 3);
	r = &c.bind_rules[0];
	assert_false(r->by_id);
	assert_int_equal(r->addr.domain, 0);
	assert_int_equal(r->addr.bus, 0);
	assert_int_equal(r->addr.slot, 3);
	assert_int_equal(r->addr.function, 0);
	assert_int_equal(r->who.n_uids, 2);
	assert_int_equal(r->who.uids[0], 65534);
	assert_int_equal(r->who.uids[1], 1000);
	assert_int_equal(r->who.n_gids, 2);
	assert_int_equal(r->who.gids[0], 0);	/* @root */
	assert_int_equal(r->who.gids[1], 44);
	r = &c.bind_rules[1];
	assert_true(r->by_id);
	assert_int_equal(r->vendor, 0x1234);
	assert_int_equal(r->product, 0x11e8);
	assert_int_equal(r->who.n_uids, 1);
	assert_int_equal(r->who.uids[0], 0);	/* root by name */
	r = &c.bind_rules[2];
	assert_int_equal(r->addr.bus, 0x0a);
	assert_int_equal(r->addr.slot, 0x1f);
	assert_int_equal(r->addr.function, 7);

	/* Bad lines: the load fails on them. */
	assert_int_equal(load(&c, "bind-device = 0000:00:03.0\n"), -EINVAL);		/* nobody named */
	assert_int_equal(load(&c, "bind-device =\n"), -EINVAL);
	assert_int_equal(load(&c, "bind-device = 0000:00:20.0 uid:1\n"), -EINVAL);	/* slot > 1f */
	assert_int_equal(load(&c, "bind-device = 0000:00:03.8 uid:1\n"), -EINVAL);	/* function > 7 */
	assert_int_equal(load(&c, "bind-device = 00000:00:03.0 uid:1\n"), -EINVAL);
	assert_int_equal(load(&c, "bind-device = 0:0:3.0 uid:1\n"), -EINVAL);
	assert_int_equal(load(&c, "bind-device = 12345:11e8 uid:1\n"), -EINVAL);
	assert_int_equal(load(&c, "bind-device = 1234:11g8 uid:1\n"), -EINVAL);
	assert_int_equal(load(&c, "bind-device = edu uid:1\n"), -EINVAL);
	assert_int_equal(load(&c, "bind-device = 00:03.0 uid:-1\n"), -EINVAL);
	assert_int_equal(load(&c, "bind-device = 00:03.0 uid:4294967295\n"), -EINVAL);
	assert_int_equal(load(&c, "bind-device = 00:03.0 gid:x\n"), -EINVAL);
	assert_int_equal(load(&c, "bind-device = 00:03.0 no-such-user-physmem\n"), -ESRCH);
	assert_int_equal(load(&c, "bind-device = 00:03.0 @no-such-group-physmem\n"), -ESRCH);
	assert_int_equal(load(&c, "bind-device = 00:03.0 *\n"), -ESRCH);		/* no "*" in bind rules */
	assert_int_equal(load(&c, "max-bindings-per-uid = -1\n"), -EINVAL);
}

/* At most CONF_MAX_BIND_RULES rules, CONF_MAX_PRINCIPALS users per rule. */
static void test_bind_device_limits(void **state)
{
	struct conf c;
	char line[512];
	int n = 0;

	(void)state;
	conf_defaults(&c);
	for (unsigned i = 0; i < CONF_MAX_BIND_RULES; i++)
		assert_int_equal(conf_set(&c, "bind-device", "00:03.0 uid:1"), 0);
	assert_int_equal(conf_set(&c, "bind-device", "00:03.0 uid:1"), -E2BIG);

	conf_defaults(&c);
	n = snprintf(line, sizeof(line), "00:03.0");
	for (unsigned i = 0; i <= CONF_MAX_PRINCIPALS; i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %u", i + 1);
	assert_int_equal(conf_set(&c, "bind-device", line), -E2BIG);
	assert_int_equal(c.n_bind_rules, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_enum_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_sizes_with_units),
		cmocka_unit_test(test_hugepages),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_bind_device),
		cmocka_unit_test(test_bind_device_limits),
		cmocka_unit_test(test_pool_keys),
	};

	log_set_level(LOG_LEVEL_ERR - 1);	/* keep the expected errors quiet */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
