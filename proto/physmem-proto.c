/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "physmem-proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const physmem_cache_mode_names[] = { "cached", "writecombine", "uncached", NULL };

int physmem_user_socket_path(char *buf, size_t size)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	int n;

	if (geteuid() == 0)
		n = snprintf(buf, size, "%s", PHYSMEM_SYSTEM_SOCKET);
	else if (rt && rt[0] == '/')
		n = snprintf(buf, size, "%s/physmem/physmemd.sock", rt);
	else
		n = snprintf(buf, size, "/tmp/physmem-%u/physmemd.sock", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

int physmem_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > PHYSMEM_NAME_MAX || name[0] == '.')
		return 0;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

int physmem_parse_size(const char *s, unsigned long long *ret)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *u;
	char *end;
	int shift = 0;

	if (!s || !(*s >= '0' && *s <= '9'))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end) {
		u = strchr(units, end[0] >= 'a' ? end[0] - 'a' + 'A' : end[0]);
		if (!u || !*u)
			return -EINVAL;
		shift = 10 * (int)(u - units + 1);
		end++;
		if (strcmp(end, "") != 0 && strcmp(end, "B") != 0 && strcmp(end, "iB") != 0)
			return -EINVAL;
	}
	if (shift && v > (~0ULL >> shift))
		return -ERANGE;
	*ret = v << shift;
	return 0;
}
