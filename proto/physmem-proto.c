/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "physmem-proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const physmem_cache_mode_names[] = { "cached", "writecombine", "uncached", NULL };
const char *const physmem_device_access_names[] = { "bidirectional", "toDevice", "fromDevice", NULL };

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

/* Read exactly n hex digits at *s (advancing it) into *ret; -EINVAL otherwise. */
static int hex_field(const char **s, unsigned n, unsigned *ret)
{
	unsigned v = 0;

	for (unsigned i = 0; i < n; i++) {
		char c = (*s)[i];

		if (c >= '0' && c <= '9')
			v = v * 16 + (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v * 16 + (unsigned)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*s += n;
	*ret = v;
	return 0;
}

int physmem_pci_address_parse(const char *s, struct physmem_pci_address *ret)
{
	struct physmem_pci_address a = { 0 };
	size_t len = s ? strlen(s) : 0;

	if (len == PHYSMEM_PCI_ADDRESS_MAX) {
		if (hex_field(&s, 4, &a.domain) < 0 || *s++ != ':')
			return -EINVAL;
	} else if (len != PHYSMEM_PCI_ADDRESS_MAX - 5) {
		return -EINVAL;
	}
	if (hex_field(&s, 2, &a.bus) < 0 || *s++ != ':' || hex_field(&s, 2, &a.slot) < 0 || *s++ != '.' ||
	    hex_field(&s, 1, &a.function) < 0 || *s)
		return -EINVAL;
	if (a.slot > 0x1f || a.function > 7)
		return -EINVAL;
	*ret = a;
	return 0;
}

void physmem_pci_address_format(const struct physmem_pci_address *a, char *buf, size_t size)
{
	snprintf(buf, size, "%04x:%02x:%02x.%x", a->domain & 0xffff, a->bus & 0xff, a->slot & 0x1f,
		 a->function & 7);
}

bool physmem_pci_address_equal(const struct physmem_pci_address *a, const struct physmem_pci_address *b)
{
	return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot && a->function == b->function;
}
