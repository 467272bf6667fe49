/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * physmem-proto: names and constants of the io.physmem.Manager interface that
 * the daemon and the client share. The interface description itself lives in
 * io.physmem.Manager.varlink and is compiled in as physmem_interface_description.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define PHYSMEM_INTERFACE "io.physmem.Manager"
#define PHYSMEM_VENDOR "physmem"
#define PHYSMEM_URL "https://physmem.invalid/"

#define PHYSMEM_ERROR_NO_SUCH_BUFFER PHYSMEM_INTERFACE ".NoSuchBuffer"
#define PHYSMEM_ERROR_QUOTA_EXCEEDED PHYSMEM_INTERFACE ".QuotaExceeded"
#define PHYSMEM_ERROR_PERMISSION_DENIED PHYSMEM_INTERFACE ".PermissionDenied"
#define PHYSMEM_ERROR_SIZE_OUT_OF_RANGE PHYSMEM_INTERFACE ".SizeOutOfRange"
#define PHYSMEM_ERROR_NOT_SUPPORTED PHYSMEM_INTERFACE ".NotSupported"
#define PHYSMEM_ERROR_ALLOCATION_FAILED PHYSMEM_INTERFACE ".AllocationFailed"
#define PHYSMEM_ERROR_NAME_IN_USE PHYSMEM_INTERFACE ".NameInUse"
#define PHYSMEM_ERROR_AMBIGUOUS_NAME PHYSMEM_INTERFACE ".AmbiguousName"
#define PHYSMEM_ERROR_NOT_POPULATED PHYSMEM_INTERFACE ".NotPopulated"
#define PHYSMEM_ERROR_NO_SUCH_DEVICE PHYSMEM_INTERFACE ".NoSuchDevice"
#define PHYSMEM_ERROR_DEVICE_BUSY PHYSMEM_INTERFACE ".DeviceBusy"
#define PHYSMEM_ERROR_POOL_UNAVAILABLE PHYSMEM_INTERFACE ".PoolUnavailable"

/* Longest pool name, not counting the NUL (the module's name[16]). */
#define PHYSMEM_POOL_NAME_MAX 15

/* The system socket, as set up by packaging/physmemd.socket. */
#define PHYSMEM_SYSTEM_SOCKET "/run/physmem/physmemd.sock"

/* Longest buffer name, not counting the NUL. */
#define PHYSMEM_NAME_MAX 64

/* Cache modes, in the order of the interface's CacheMode enum. */
enum physmem_cache_mode {
	PHYSMEM_CACHE_MODE_CACHED,
	PHYSMEM_CACHE_MODE_WRITECOMBINE,
	PHYSMEM_CACHE_MODE_UNCACHED,
};
extern const char *const physmem_cache_mode_names[];

/* Device access of a binding, in the order of the interface's DeviceAccess enum. */
enum physmem_device_access_mode {
	PHYSMEM_DEVICE_ACCESS_BIDIRECTIONAL,
	PHYSMEM_DEVICE_ACCESS_TO_DEVICE,
	PHYSMEM_DEVICE_ACCESS_FROM_DEVICE,
};
extern const char *const physmem_device_access_names[];

/* A PCI device address, and its canonical spelling "dddd:bb:dd.f" (lower case). */
struct physmem_pci_address {
	unsigned domain;	/* 0 .. 0xffff */
	unsigned bus;		/* 0 .. 0xff */
	unsigned slot;		/* 0 .. 0x1f */
	unsigned function;	/* 0 .. 7 */
};
#define PHYSMEM_PCI_ADDRESS_MAX 12	/* strlen("dddd:bb:dd.f") */

/*
 * Parse "DDDD:BB:DD.F" or "BB:DD.F" (domain 0), hex digits of either case,
 * exactly that many of them. Returns 0 or -EINVAL.
 */
int physmem_pci_address_parse(const char *s, struct physmem_pci_address *ret);
/* Write the canonical spelling into buf (at least PHYSMEM_PCI_ADDRESS_MAX + 1 bytes). */
void physmem_pci_address_format(const struct physmem_pci_address *a, char *buf, size_t size);
/* Whether a and b name the same device. */
bool physmem_pci_address_equal(const struct physmem_pci_address *a, const struct physmem_pci_address *b);

/* The text of io.physmem.Manager.varlink. */
extern const char physmem_interface_description[];

/*
 * The socket a daemon started by this user listens on by default:
 * /run/physmem/physmemd.sock for root, else $XDG_RUNTIME_DIR/physmem/physmemd.sock,
 * else /tmp/physmem-$UID/physmemd.sock. Returns 0 or -ENAMETOOLONG.
 */
int physmem_user_socket_path(char *buf, size_t size);

/* Whether name is a valid buffer name: 1-64 of [A-Za-z0-9._-], not starting with '.'. */
int physmem_name_valid(const char *name);

/*
 * Parse a size such as "4096", "64K", "16M", "1G", "2MiB" (binary units, K/M/G/T,
 * optional "iB"/"B" suffix). Returns 0, -EINVAL for garbage or a negative
 * number, -ERANGE when it does not fit in 64 bits.
 */
int physmem_parse_size(const char *s, unsigned long long *ret);
