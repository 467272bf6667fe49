/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Limits and policy: the defaults, and the "key = value" configuration file
 * (physmemd.conf(5)). Every client-controlled resource has a limit here.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "physmem-proto.h"
#include "physmemd.h"

const char *const address_policy_names[] = { "owner", "root", "none", NULL };

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	c->socket_mode = 0666;
	snprintf(c->backend, sizeof(c->backend), "auto");
	snprintf(c->device, sizeof(c->device), "/dev/physmem");
	c->max_message_size = 64 * 1024;
	c->max_message_values = 1024;
	c->max_output_per_connection = 1024 * 1024;
	c->max_queued_fds_per_connection = 16;
	c->max_connections = 1024;
	c->max_connections_per_uid = 64;
	c->max_buffers_per_uid = 256;
	c->max_bytes_per_uid = 1ULL << 30;
	c->max_buffer_size = 1ULL << 30;
	c->max_buffers_total = 16384;
	c->stall_timeout_ms = 10000;
	c->sink_timeout_ms = 2000;
	c->loop_budget_us = 2000;
	c->loop_window_ms = 50;
	c->address_policy = ADDRESS_POLICY_OWNER;
	c->lock = LOCK_TRY;
	c->fdstore = LOCK_TRY;
	c->hugepages_auto = true;
	c->worker_threads = 2;
	c->release_hold_us = 10000;
	c->log_level = LOG_LEVEL_INFO;
	c->max_bindings_per_uid = 64;
	snprintf(c->pci_sysfs, sizeof(c->pci_sysfs), "/sys/bus/pci/devices");
	c->max_pool_bytes_per_uid = 1ULL << 30;
}

enum key_type { KEY_SIZE, KEY_COUNT, KEY_STRING, KEY_MODE, KEY_POLICY, KEY_LOCK, KEY_LOG, KEY_HUGEPAGES, KEY_PRINCIPALS };

static const struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	size_t len;
} keys[] = {
#define K(n, t, f) { n, t, offsetof(struct conf, f), sizeof(((struct conf *)0)->f) }
	K("socket", KEY_STRING, socket_path),
	K("socket-mode", KEY_MODE, socket_mode),
	K("backend", KEY_STRING, backend),
	K("device", KEY_STRING, device),
	K("max-message-size", KEY_SIZE, max_message_size),
	K("max-message-values", KEY_COUNT, max_message_values),
	K("max-output-per-connection", KEY_SIZE, max_output_per_connection),
	K("max-queued-fds-per-connection", KEY_COUNT, max_queued_fds_per_connection),
	K("max-connections", KEY_COUNT, max_connections),
	K("max-connections-per-uid", KEY_COUNT, max_connections_per_uid),
	K("max-buffers-per-uid", KEY_COUNT, max_buffers_per_uid),
	K("max-bytes-per-uid", KEY_SIZE, max_bytes_per_uid),
	K("max-buffer-size", KEY_SIZE, max_buffer_size),
	K("max-buffers", KEY_COUNT, max_buffers_total),
	K("stall-timeout-ms", KEY_COUNT, stall_timeout_ms),
	K("sink-timeout-ms", KEY_COUNT, sink_timeout_ms),
	K("loop-budget-us", KEY_COUNT, loop_budget_us),
	K("loop-window-ms", KEY_COUNT, loop_window_ms),
	K("address-policy", KEY_POLICY, address_policy),
	K("lock", KEY_LOCK, lock),
	K("fdstore", KEY_LOCK, fdstore),
	K("hugepages", KEY_HUGEPAGES, hugepage_size),
	K("worker-threads", KEY_COUNT, worker_threads),
	K("release-hold-us", KEY_COUNT, release_hold_us),
	K("debug-job-delay-ms", KEY_COUNT, debug_job_delay_ms),
	K("log-level", KEY_LOG, log_level),
	K("max-bindings-per-uid", KEY_COUNT, max_bindings_per_uid),
	K("pci-sysfs", KEY_STRING, pci_sysfs),
	K("pool-users", KEY_PRINCIPALS, pool_users),
	K("max-pool-bytes-per-uid", KEY_SIZE, max_pool_bytes_per_uid),
#undef K
};

static char *strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* A uid or gid written as a decimal number that fits in 32 bits (never (uid_t)-1). */
static int parse_id(const char *s, uint32_t *ret)
{
	unsigned long long n;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || *end || n >= UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)n;
	return 0;
}

/* How a principal list is read: pool-users and bind-device differ in these. */
struct principals_syntax {
	bool star;		/* "*" names everyone */
	bool bare_uid;		/* a bare number is a uid */
	unsigned max;		/* at most this many users, and this many groups */
};

static const struct principals_syntax pool_users_syntax = { .star = true, .max = PRINCIPALS_MAX };
static const struct principals_syntax bind_device_syntax = { .bare_uid = true, .max = CONF_MAX_PRINCIPALS };

/*
 * Add one principal to pr: "*" (everyone, where syn allows it), "uid:N",
 * "gid:N", "@group", a bare number (a uid, where syn allows it) or a user
 * name; names are resolved now, an unknown one is -ESRCH.
 */
static int principal_add(struct principals *pr, const struct principals_syntax *syn, const char *t)
{
	uint32_t id;

	if (syn->star && strcmp(t, "*") == 0) {
		pr->all = true;
		return 0;
	}
	if (strncmp(t, "uid:", 4) == 0 || strncmp(t, "gid:", 4) == 0) {
		if (parse_id(t + 4, &id) < 0)
			return -EINVAL;
		if (t[0] == 'g')
			goto add_gid;
		goto add_uid;
	}
	if (t[0] == '@') {
		struct group *g = getgrnam(t + 1);

		if (!g) {
			log_error("no such group '%s'", t + 1);
			return -ESRCH;
		}
		id = g->gr_gid;
		goto add_gid;
	}
	if (!syn->bare_uid || parse_id(t, &id) < 0) {
		struct passwd *pw = getpwnam(t);

		if (!pw) {
			log_error("no such user '%s'", t);
			return -ESRCH;
		}
		id = pw->pw_uid;
	}
add_uid:
	if (pr->n_uids >= syn->max)
		return -E2BIG;
	pr->uids[pr->n_uids++] = id;
	return 0;
add_gid:
	if (pr->n_gids >= syn->max)
		return -E2BIG;
	pr->gids[pr->n_gids++] = id;
	return 0;
}

/* A list of principals separated by commas or blanks, added to pr (the key may repeat). */
static int principals_parse(struct principals *pr, const struct principals_syntax *syn, const char *v)
{
	char buf[512], *save = NULL, *t;
	int r;

	if (strlen(v) >= sizeof(buf) || !v[0])
		return -EINVAL;
	memcpy(buf, v, strlen(v) + 1);
	for (t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		r = principal_add(pr, syn, t);
		if (r < 0)
			return r;
	}
	return 0;
}

static int set_key(struct conf *c, const struct key *k, const char *v)
{
	char *p = (char *)c + k->offset;
	unsigned long long n;
	char *end;
	int i;

	switch (k->type) {
	case KEY_SIZE:
		if (physmem_parse_size(v, &n) < 0)
			return -EINVAL;
		*(uint64_t *)p = n;
		return 0;
	case KEY_COUNT:
		errno = 0;
		n = strtoull(v, &end, 10);
		if (errno || *end || !isdigit((unsigned char)v[0]))
			return -EINVAL;
		*(uint64_t *)p = n;
		return 0;
	case KEY_STRING:
		if (strlen(v) >= k->len)
			return -ENAMETOOLONG;
		memcpy(p, v, strlen(v) + 1);
		return 0;
	case KEY_MODE:
		if (v[0] < '0' || v[0] > '7')
			return -EINVAL;	/* strtoull() takes "", signs and spaces */
		errno = 0;
		n = strtoull(v, &end, 8);
		if (errno || *end || n > 0777)
			return -EINVAL;
		*(unsigned *)p = (unsigned)n;
		return 0;
	case KEY_POLICY:
		for (i = 0; address_policy_names[i]; i++)
			if (strcmp(v, address_policy_names[i]) == 0) {
				*(enum address_policy *)p = i;
				return 0;
			}
		return -EINVAL;
	case KEY_LOCK:
		if (strcmp(v, "no") == 0)
			*(enum lock_mode *)p = LOCK_NO;
		else if (strcmp(v, "try") == 0)
			*(enum lock_mode *)p = LOCK_TRY;
		else if (strcmp(v, "yes") == 0)
			*(enum lock_mode *)p = LOCK_YES;
		else
			return -EINVAL;
		return 0;
	case KEY_HUGEPAGES:
		/* auto; or 0 (never) or a size (always): conf_check() takes 2M and 1G. */
		if (strcmp(v, "auto") == 0) {
			c->hugepage_size = 0;
			c->hugepages_auto = true;
			return 0;
		}
		if (physmem_parse_size(v, &n) < 0)
			return -EINVAL;
		c->hugepage_size = n;
		c->hugepages_auto = false;
		return 0;
	case KEY_PRINCIPALS: {
		/* pool-users: an unknown name is a bad value like any other. */
		int r = principals_parse((struct principals *)p, &pool_users_syntax, v);

		return r == -ESRCH ? -EINVAL : r;
	}
	case KEY_LOG:
		i = log_parse_level(v);
		if (i < 0)
			return -EINVAL;
		*(int *)p = i;
		return 0;
	}
	return -EINVAL;
}

/* Parse exactly 4 hex digits of s into *ret. */
static int parse_hex16(const char *s, size_t len, unsigned *ret)
{
	unsigned v = 0;

	if (len != 4)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0' : tolower((unsigned char)s[i]) - 'a' + 10);
	}
	*ret = v;
	return 0;
}

/*
 * "bind-device = DEVICE PRINCIPALS": DEVICE is a PCI address (DDDD:BB:DD.F
 * or BB:DD.F) or vendor:device (4 hex digits each); PRINCIPALS a list of
 * users and groups separated by commas or blanks. Each line adds a rule.
 */
static int conf_add_bind_rule(struct conf *c, const char *value)
{
	struct bind_rule rule = { 0 };
	char buf[512], *dev, *rest;
	const char *colon;
	int r;

	if (strlen(value) >= sizeof(buf))
		return -ENAMETOOLONG;
	if (c->n_bind_rules >= CONF_MAX_BIND_RULES)
		return -E2BIG;
	snprintf(buf, sizeof(buf), "%s", value);
	dev = buf + strspn(buf, " \t");
	rest = dev + strcspn(dev, " \t");
	if (*rest)
		*rest++ = '\0';
	colon = strchr(dev, ':');
	if (colon && !strchr(colon + 1, ':') && !strchr(dev, '.')) {
		rule.by_id = true;
		if (parse_hex16(dev, (size_t)(colon - dev), &rule.vendor) < 0 ||
		    parse_hex16(colon + 1, strlen(colon + 1), &rule.product) < 0)
			return -EINVAL;
	} else if (physmem_pci_address_parse(dev, &rule.addr) < 0) {
		return -EINVAL;
	}
	r = principals_parse(&rule.who, &bind_device_syntax, rest);
	if (r < 0)
		return r;
	if (rule.who.n_uids + rule.who.n_gids == 0)
		return -EINVAL;		/* a rule must name someone */
	c->bind_rules[c->n_bind_rules++] = rule;
	return 0;
}

/* Set one "key=value" (also used for --set on the command line). */
int conf_set(struct conf *c, const char *key, const char *value)
{
	if (strcmp(key, "bind-device") == 0)
		return conf_add_bind_rule(c, value);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, key) == 0)
			return set_key(c, &keys[i], value);
	return -ENOENT;
}

int conf_load(struct conf *c, const char *path)
{
	char line[512];
	unsigned lineno = 0;
	FILE *f;
	int r = 0;

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		log_error("cannot open configuration %s: %s", path, strerror(errno));
		return r;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s, *eq, *key, *value;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			log_error("%s:%u: line too long", path, lineno);
			r = -EINVAL;
			break;
		}
		s = strip(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			log_error("%s:%u: expected key = value", path, lineno);
			r = -EINVAL;
			break;
		}
		*eq = '\0';
		key = strip(s);
		value = strip(eq + 1);
		r = conf_set(c, key, value);
		if (r == -ENOENT)
			log_error("%s:%u: unknown key '%s'", path, lineno, key);
		else if (r < 0)
			log_error("%s:%u: bad value '%s' for %s", path, lineno, value, key);
		if (r < 0)
			break;
	}
	fclose(f);
	return r;
}

/* Reject combinations that cannot work. */
int conf_check(const struct conf *c)
{
	if (c->max_message_size < 1024 || c->max_message_size > (64ULL << 20)) {
		log_error("max-message-size must be between 1K and 64M");
		return -EINVAL;
	}
	if (c->max_message_values < 64 || c->max_message_values > (64ULL << 20)) {
		log_error("max-message-values must be between 64 and 64M");
		return -EINVAL;
	}
	if (c->hugepage_size && c->hugepage_size != (2ULL << 20) && c->hugepage_size != (1ULL << 30)) {
		log_error("hugepages must be auto, 0, 2M or 1G");
		return -EINVAL;
	}
	if (c->max_queued_fds_per_connection == 0) {
		log_error("max-queued-fds-per-connection must be at least 1");
		return -EINVAL;
	}
	if (c->worker_threads == 0 || c->worker_threads > 64) {
		log_error("worker-threads must be between 1 and 64");
		return -EINVAL;
	}
	if (c->release_hold_us > 1000000) {
		log_error("release-hold-us must be at most 1000000");
		return -EINVAL;
	}
	if (c->debug_job_delay_ms > 600000) {
		log_error("debug-job-delay-ms must be at most 600000");
		return -EINVAL;
	}
	if (c->sink_timeout_ms < 10 || c->sink_timeout_ms > 3600000) {
		log_error("sink-timeout-ms must be between 10 and 3600000");
		return -EINVAL;
	}
	if (c->loop_window_ms < 1 || c->loop_window_ms > 60000 || c->loop_budget_us > c->loop_window_ms * 1000) {
		log_error("loop-window-ms must be between 1 and 60000, and loop-budget-us at most the window");
		return -EINVAL;
	}
	if (c->max_connections == 0 || c->max_connections_per_uid == 0) {
		log_error("connection limits must be at least 1");
		return -EINVAL;
	}
	return 0;
}
