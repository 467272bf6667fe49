/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the configuration parser of daemon/physmemd-conf.c: the input is a
 * physmemd.conf, read by conf_load() from a memfd and checked by
 * conf_check(); its first line is also given to conf_set() as --set
 * KEY=VALUE would, and to physmem_parse_size().
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "physmem-proto.h"
#include "physmemd.h"

/* What any successfully loaded configuration must look like. */
static void check_conf(const struct conf *c)
{
	FUZZ_CHECK(memchr(c->socket_path, 0, sizeof(c->socket_path)));
	FUZZ_CHECK(memchr(c->backend, 0, sizeof(c->backend)));
	FUZZ_CHECK(memchr(c->device, 0, sizeof(c->device)));
	FUZZ_CHECK(c->socket_mode <= 0777);
	FUZZ_CHECK(c->address_policy <= ADDRESS_POLICY_NONE);
	FUZZ_CHECK(c->lock <= LOCK_YES && c->fdstore <= LOCK_YES);
	FUZZ_CHECK(c->log_level >= LOG_LEVEL_ERR && c->log_level <= LOG_LEVEL_DEBUG);
	FUZZ_CHECK(memchr(c->pci_sysfs, 0, sizeof(c->pci_sysfs)));
	FUZZ_CHECK(c->n_bind_rules <= CONF_MAX_BIND_RULES);
	for (unsigned i = 0; i < c->n_bind_rules; i++) {
		const struct bind_rule *b = &c->bind_rules[i];

		FUZZ_CHECK(b->who.n_uids <= CONF_MAX_PRINCIPALS && b->who.n_gids <= CONF_MAX_PRINCIPALS);
		FUZZ_CHECK(b->who.n_uids + b->who.n_gids > 0);
		FUZZ_CHECK(b->by_id ? b->vendor <= 0xffff && b->product <= 0xffff :
				      b->addr.domain <= 0xffff && b->addr.bus <= 0xff && b->addr.slot <= 0x1f &&
				      b->addr.function <= 7);
	}
}

/*
 * What conf_load() and conf_set() may return: a bad value, a too long one,
 * an unknown key, and for bind-device an unknown user or group name
 * (-ESRCH) or one rule or principal too many (-E2BIG).
 */
static bool conf_error_ok(int r)
{
	return r == 0 || r == -EINVAL || r == -ENAMETOOLONG || r == -ENOENT || r == -ESRCH || r == -E2BIG;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned long long n;
	char path[64], *line, *eq;
	struct conf c;
	int fd, r;

	if (size > 65536)
		return 0;
	log_set_level(0);	/* quiet: a bad line is logged, and that is expected */

	fd = memfd_create("fuzz-physmemd-conf", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	conf_defaults(&c);
	r = conf_load(&c, path);
	close(fd);
	FUZZ_CHECK(conf_error_ok(r));
	check_conf(&c);
	if (r == 0)
		(void)conf_check(&c);

	/* The first line, as --set KEY=VALUE and as a size. */
	line = strndup((const char *)data, size);
	FUZZ_CHECK(line);
	line[strcspn(line, "\n")] = '\0';
	if (physmem_parse_size(line, &n) == 0 && strspn(line, "0123456789") == strlen(line))
		FUZZ_CHECK(n == strtoull(line, NULL, 10));
	eq = strchr(line, '=');
	if (eq) {
		*eq = '\0';
		conf_defaults(&c);
		r = conf_set(&c, line, eq + 1);
		FUZZ_CHECK(conf_error_ok(r));
		check_conf(&c);
		/* A mode is octal digits: nothing else (not even nothing) may pass for one. */
		if (r == 0 && strcmp(line, "socket-mode") == 0)
			FUZZ_CHECK(eq[1] && strspn(eq + 1, "01234567") == strlen(eq + 1));
	}
	free(line);
	return 0;
}
