/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * physmemctl: look at and use physmemd from the command line, on libphysmem.
 *
 * Output: human-readable by default, JSON (json-c) on stdout with --json.
 * Errors: one line on stderr, "physmemctl: <what>: <message>", and an exit
 * code from physmemctl-util.h (also listed in --help).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "libphysmem-private.h"
#include "physmem-proto.h"
#include "physmem.h"
#include "physmemctl-util.h"
#include "varlink-writer.h"

#ifndef PHYSMEM_VERSION
#define PHYSMEM_VERSION "unknown"
#endif

#define MAX_IDS 64
#define SHOW_SEGMENTS 16

struct ctl {
	const char *socket;	/* NULL: libphysmem's default */
	bool json;
	const char *verb;	/* for error messages */
	struct physmem *pm;
};

/* Options of the subcommands; the global ones are accepted everywhere too. */
enum {
	OPT_SOCKET = 0x100,
	OPT_JSON,
	OPT_VERSION,
	OPT_CONTIGUOUS,
	OPT_CACHE,
	OPT_NAME,
	OPT_ALLOW_UID,
	OPT_ALLOW_GID,
	OPT_HOLD,
	OPT_ALL,
	OPT_OWNER,
	OPT_DEVICE,
	OPT_ACCESS,
	OPT_POOL,
};

static const char usage_text[] =
	"Usage: physmemctl [--socket PATH] [--json] COMMAND [ARGS...]\n"
	"\n"
	"Look at and use physmemd, the broker of pinned, DMA-able memory buffers.\n"
	"\n"
	"Commands:\n"
	"  status                      backend, totals, limits, your quota and usage\n"
	"  alloc SIZE [--contiguous] [--pool POOL] [--cache MODE] [--name NAME]\n"
	"        [--allow-uid UID]... [--allow-gid GID]... [--hold]\n"
	"                              allocate a buffer; without --name it is freed when\n"
	"                              physmemctl exits, so use --hold to keep it (until\n"
	"                              SIGINT/SIGTERM), or --name to keep it until freed;\n"
	"                              --pool: one contiguous run from that pool (see\n"
	"                              status), or an error, never other memory\n"
	"        [--device BDF [--access ACCESS]]\n"
	"                              and bind it to that PCI device (or fail)\n"
	"  list [--all]                your buffers (--all: every buffer, root only)\n"
	"  show ID                     describe one buffer\n"
	"  free ID                     free a buffer (a named one, or any as root)\n"
	"  bind ID BDF [--access ACCESS]\n"
	"                              map a buffer for a PCI device (if policy allows)\n"
	"                              and print its addresses for that device\n"
	"  unbind ID BDF               remove that binding\n"
	"  import NAME [--owner UID] [--hold]\n"
	"                              map a shared buffer and describe it; names are\n"
	"                              per owner, so --owner says whose buffer you expect\n"
	"                              (without it, a name several owners share is refused)\n"
	"  selftest [SIZE] [--contiguous] [--cache MODE]\n"
	"                              allocate, map twice, write, read back, check, free\n"
	"\n"
	"SIZE is a number of bytes with an optional unit K, M, G or T (powers of 1024),\n"
	"optionally followed by B or iB, e.g. 4096, 64K, 16M, 1GiB. MODE is cached (the fast default),\n"
	"writecombine or uncached (every CPU read goes to memory: very slow).\n"
	"UID and GID are numbers or names. BDF is a PCI address, DDDD:BB:DD.F or BB:DD.F;\n"
	"ACCESS is bidirectional (the default), to-device or from-device.\n"
	"\n"
	"Options:\n"
	"      --socket PATH  daemon socket (default: $PHYSMEM_SOCKET, else\n"
	"                     " PHYSMEM_SYSTEM_SOCKET " if it exists, else your own\n"
	"                     daemon's socket; a default one must belong to root or you)\n"
	"      --json         print JSON on stdout (with --hold: one line, which is the\n"
	"                     ready signal)\n"
	"  -h, --help         show this help\n"
	"      --version      show the version\n"
	"\n"
	"With --hold, a line \"ready\" is printed once the buffer exists.\n"
	"\n"
	"Exit status:\n"
	"  0  success\n"
	"  1  the operation failed (the daemon refused it, or a self-test failed)\n"
	"  2  usage error\n"
	"  3  the daemon is not reachable, or the connection broke\n"
	"  4  permission denied\n"
	"  5  quota exceeded\n"
	"  6  no such buffer\n";

static void ctl_error(const struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ctl_error(const struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "physmemctl: %s: ", ctl->verb ? ctl->verb : "error");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A usage error: one line, and exit code 2. */
static int ctl_usage(const struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl_usage(const struct ctl *ctl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_error(ctl, "%s (try 'physmemctl --help')", msg);
	return PHYSMEMCTL_EXIT_USAGE;
}

/* Report a failed library call; returns the exit code. */
static int ctl_fail(const struct ctl *ctl, int r)
{
	const char *msg = ctl->pm ? physmem_error_message(ctl->pm) : NULL;

	if (!msg || strcmp(msg, "no error") == 0)
		msg = strerror(-r);
	ctl_error(ctl, "%s", msg);
	return physmemctl_exit_code(r);
}

static int ctl_connect(struct ctl *ctl)
{
	char err[512];
	int r;

	r = physmem_connect_explained(ctl->socket, &ctl->pm, err, sizeof(err));
	if (r == 0)
		return 0;
	ctl->pm = NULL;
	ctl_error(ctl, "%s", err);
	return r == -EACCES || r == -EPERM ? PHYSMEMCTL_EXIT_DENIED : PHYSMEMCTL_EXIT_UNREACHABLE;
}

static void ctl_done(struct ctl *ctl)
{
	physmem_disconnect(ctl->pm);
	ctl->pm = NULL;
}

/*
 * Print a JSON value on stdout and free it; indented unless one_line. The
 * text is written whole by vl_writer (json-c's printer can leave text out
 * when an allocation fails, without saying so); when it could not be built
 * (out of memory) or written, say so in one line and exit
 * PHYSMEMCTL_EXIT_FAILED.
 */
static void print_json(struct json_object *o, bool one_line)
{
	struct vl_writer w;
	const char *text;
	size_t len;
	int r = -ENOMEM;

	vl_writer_init(&w);
	if (o && !vl_build_failed()) {
		vl_writer_json(&w, o);
		r = vl_writer_finish(&w, &text, &len);
	}
	json_object_put(o);
	if (r >= 0) {
		len--;	/* the NUL the framing would send */
		if (one_line) {
			fwrite(text, 1, len, stdout);
			putchar('\n');
		} else {
			physmemctl_write_indented(stdout, text, len);
		}
	}
	vl_writer_done(&w);
	if (r < 0) {
		if (r == -ENOMEM)
			fprintf(stderr, "physmemctl: out of memory\n");
		else
			fprintf(stderr, "physmemctl: cannot print the reply as JSON: %s\n", strerror(-r));
		exit(PHYSMEMCTL_EXIT_FAILED);
	}
}

static const char *cache_name(enum physmem_cache c)
{
	return (unsigned)c < 3 ? physmem_cache_mode_names[c] : "?";
}

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

static struct json_object *json_u64(uint64_t v)
{
	return v > INT64_MAX ? json_object_new_uint64(v) : json_object_new_int64((int64_t)v);
}

/* o's member key: v, or null when it is not known. */
static void nullable_u64(struct json_object *o, const char *key, bool known, uint64_t v)
{
	if (known)
		vl_add(o, key, json_u64(v));
	else
		vl_add_null(o, key);
}

/* A segment list as the interface's []Segment (info's, or binding b's). */
static struct json_object *segments_json(unsigned n, const struct physmem_info *info, const struct physmem_binding *b)
{
	struct json_object *a = json_object_new_array_ext((int)n);

	for (unsigned i = 0; i < n; i++) {
		const struct physmem_segment *seg = info ? physmem_info_segment(info, i) : physmem_binding_segment(b, i);
		struct json_object *s = json_object_new_object();

		vl_add(s, "address", json_u64(seg->address));
		vl_add(s, "length", json_u64(seg->length));
		vl_append(a, s);
	}
	return a;
}

/* A buffer's bindings as the interface's []DeviceBinding (the caller adds null when it has none). */
static struct json_object *bindings_json(const struct physmem_info *info)
{
	unsigned n = physmem_info_n_bindings(info);
	struct json_object *a;

	a = json_object_new_array_ext((int)n);
	for (unsigned i = 0; i < n; i++) {
		const struct physmem_binding *b = physmem_info_binding(info, i);
		struct json_object *o = json_object_new_object();

		vl_add(o, "device", json_object_new_string(physmem_binding_device(b)));
		vl_add(o, "translation", json_object_new_string(physmem_binding_translation(b)));
		vl_add(o, "access",
		       json_object_new_string(physmem_device_access_names[physmem_binding_access(b)]));
		vl_add(o, "revoked", json_object_new_boolean(physmem_binding_revoked(b)));
		if (physmem_binding_segments_known(b))
			vl_add(o, "segments", segments_json(physmem_binding_n_segments(b), NULL, b));
		else
			vl_add_null(o, "segments");
		vl_append(a, o);
	}
	return a;
}

/* A buffer as JSON, with the interface's field names: every field of the reply. */
static struct json_object *info_json(const struct physmem_info *info)
{
	struct json_object *o = json_object_new_object(), *a;
	const char *name = physmem_info_name(info);
	const uid_t *uids;
	const gid_t *gids;
	unsigned n;

	vl_add(o, "id", json_u64(physmem_info_id(info)));
	if (name[0])
		vl_add(o, "name", json_object_new_string(name));
	else
		vl_add_null(o, "name");
	vl_add(o, "size", json_u64(physmem_info_size(info)));
	vl_add(o, "contiguous", json_object_new_boolean(physmem_info_contiguous(info)));
	vl_add(o, "cache", json_object_new_string(cache_name(physmem_info_cache(info))));
	vl_add(o, "backend", json_object_new_string(physmem_info_backend(info)));
	vl_add(o, "ownerUid", json_object_new_int64(physmem_info_owner_uid(info)));
	vl_add(o, "ownerPid", json_object_new_int64(physmem_info_owner_pid(info)));
	a = json_object_new_array();
	uids = physmem_info_allow_uids(info, &n);
	for (unsigned i = 0; i < n; i++)
		vl_append(a, json_object_new_int64(uids[i]));
	vl_add(o, "allowUids", a);
	a = json_object_new_array();
	gids = physmem_info_allow_gids(info, &n);
	for (unsigned i = 0; i < n; i++)
		vl_append(a, json_object_new_int64(gids[i]));
	vl_add(o, "allowGids", a);
	vl_add(o, "locked", json_object_new_boolean(physmem_info_locked(info)));
	vl_add(o, "dmaSafe", json_object_new_boolean(physmem_info_dma_safe(info)));
	if (physmem_info_pool(info)[0])
		vl_add(o, "pool", json_object_new_string(physmem_info_pool(info)));
	else
		vl_add_null(o, "pool");
	if (physmem_info_segments_known(info)) {
		n = physmem_info_n_segments(info);
		a = json_object_new_array_ext((int)n);
		for (unsigned i = 0; i < n; i++) {
			const struct physmem_segment *seg = physmem_info_segment(info, i);
			struct json_object *s = json_object_new_object();

			vl_add(s, "address", json_u64(seg->address));
			vl_add(s, "length", json_u64(seg->length));
			vl_append(a, s);
		}
		vl_add(o, "segments", a);
	} else {
		vl_add_null(o, "segments");
	}
	if (physmem_info_n_bindings(info))
		vl_add(o, "devices", bindings_json(info));
	else
		vl_add_null(o, "devices");
	/* And whatever else the reply had (a newer daemon's fields). */
	physmem_reply_add_unknown(o, info->json);
	return o;
}

static void print_ids(const char *label, const uint32_t *ids, unsigned n)
{
	printf("%-13s", label);
	if (n == 0)
		fputs(" -", stdout);
	for (unsigned i = 0; i < n; i++)
		printf(" %" PRIu32, ids[i]);
	putchar('\n');
}

/* The first SHOW_SEGMENTS of n segments of info (or of binding b) for people. */
static void print_segments(unsigned n, const struct physmem_info *info, const struct physmem_binding *b)
{
	char sz[32];

	for (unsigned i = 0; i < n && i < SHOW_SEGMENTS; i++) {
		const struct physmem_segment *seg = info ? physmem_info_segment(info, i) : physmem_binding_segment(b, i);

		printf("  0x%016" PRIx64 "  %s\n", seg->address, physmemctl_format_size(seg->length, sz, sizeof(sz)));
	}
	if (n > SHOW_SEGMENTS)
		printf("  ... and %u more (--json lists all)\n", n - SHOW_SEGMENTS);
}

/* A buffer for people. */
static void info_print(const struct physmem_info *info)
{
	const char *name = physmem_info_name(info);
	unsigned n, n_segments = physmem_info_n_segments(info);
	const uid_t *uids;
	const gid_t *gids;
	char sz[32];

	printf("id:           %" PRIu64 "\n", physmem_info_id(info));
	printf("name:         %s\n", name[0] ? name : "- (not shared)");
	printf("size:         %s (%" PRIu64 " bytes)\n",
	       physmemctl_format_size(physmem_info_size(info), sz, sizeof(sz)), physmem_info_size(info));
	printf("contiguous:   %s\n", yes_no(physmem_info_contiguous(info)));
	if (physmem_info_pool(info)[0])
		printf("pool:         %s\n", physmem_info_pool(info));
	printf("cache:        %s\n", cache_name(physmem_info_cache(info)));
	printf("backend:      %s\n", physmem_info_backend(info));
	printf("dma-safe:     %s\n",
	       physmem_info_dma_safe(info) ? "yes" : "no (addresses must not be given to a device)");
	printf("locked:       %s\n", yes_no(physmem_info_locked(info)));
	printf("owner:        uid %u, pid %d\n", (unsigned)physmem_info_owner_uid(info),
	       (int)physmem_info_owner_pid(info));
	uids = physmem_info_allow_uids(info, &n);
	print_ids("allow uids:", (const uint32_t *)uids, n);
	gids = physmem_info_allow_gids(info, &n);
	print_ids("allow gids:", (const uint32_t *)gids, n);
	if (!physmem_info_segments_known(info)) {
		if (strcmp(physmem_info_backend(info), "memfd") == 0)
			printf("segments:     not available on the memfd backend (its pages are never pinned)\n");
		else
			printf("segments:     hidden by policy or unknown to the backend\n");
	} else {
		printf("segments:     %u\n", n_segments);
		print_segments(n_segments, info, NULL);
	}
	for (unsigned k = 0; k < physmem_info_n_bindings(info); k++) {
		const struct physmem_binding *b = physmem_info_binding(info, k);
		static const char *const access[] = { "bidirectional", "to-device", "from-device" };
		unsigned a = (unsigned)physmem_binding_access(b);

		printf("device:       %s, %s, %s%s\n", physmem_binding_device(b), physmem_binding_translation(b),
		       a < 3 ? access[a] : "?", physmem_binding_revoked(b) ? ", REVOKED (unbind it)" : "");
		if (physmem_binding_segments_known(b)) {
			printf("  segments:   %u\n", physmem_binding_n_segments(b));
			print_segments(physmem_binding_n_segments(b), NULL, b);
		} else if (!physmem_binding_revoked(b)) {
			printf("  segments:   hidden by policy\n");
		}
	}
}

/* A buffer on stdout: as JSON with --json, else for people. */
static void info_output(const struct ctl *ctl, const struct physmem_info *info)
{
	if (ctl->json)
		print_json(info_json(info), false);
	else
		info_print(info);
}

/* Handle an option every subcommand accepts; 1 if it was one, -1 on a usage error. */
static int parse_common(struct ctl *ctl, int c, char **argv)
{
	switch (c) {
	case OPT_SOCKET:
		ctl->socket = optarg;
		return 1;
	case OPT_JSON:
		ctl->json = true;
		return 1;
	case 'h':
		fputs(usage_text, stdout);
		exit(PHYSMEMCTL_EXIT_OK);
	case OPT_VERSION:
		printf("physmemctl %s\n", PHYSMEM_VERSION);
		exit(PHYSMEMCTL_EXIT_OK);
	case ':':
		ctl_usage(ctl, "option '%s' needs an argument", argv[optind - 1]);
		return -1;
	case '?':
		if (optopt)
			ctl_usage(ctl, "unknown option '-%c'", optopt);
		else
			ctl_usage(ctl, "unknown option '%s'", argv[optind - 1]);
		return -1;
	}
	return 0;
}

#define COMMON_OPTIONS \
	{ "socket", required_argument, NULL, OPT_SOCKET }, \
	{ "json", no_argument, NULL, OPT_JSON }, \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, OPT_VERSION }

/* Options of one subcommand; what a subcommand does not take is a usage error. */
struct opts {
	bool contiguous, hold, all, has_owner;
	const char *device;
	enum physmem_device_access access;
	uid_t owner;
	const char *pool;
	enum physmem_cache cache;
	const char *name;
	uid_t uids[MAX_IDS];
	unsigned n_uids;
	gid_t gids[MAX_IDS];
	unsigned n_gids;
};

static int parse_cache(struct ctl *ctl, const char *s, enum physmem_cache *ret)
{
	for (int i = 0; physmem_cache_mode_names[i]; i++)
		if (strcmp(physmem_cache_mode_names[i], s) == 0) {
			*ret = (enum physmem_cache)i;
			return 0;
		}
	ctl_usage(ctl, "invalid cache mode '%s': expected cached, writecombine or uncached", s);
	return -1;
}

/* A uid or gid: a number, or a name in the passwd or group database. */
static int parse_id(struct ctl *ctl, const char *s, bool group, uint32_t *ret)
{
	uint64_t v;

	if (physmemctl_parse_uint(s, UINT32_MAX - 1, &v) == 0) {
		*ret = (uint32_t)v;
		return 0;
	}
	if (!group) {
		struct passwd *pw = getpwnam(s);

		if (pw) {
			*ret = pw->pw_uid;
			return 0;
		}
	} else {
		struct group *gr = getgrnam(s);

		if (gr) {
			*ret = gr->gr_gid;
			return 0;
		}
	}
	ctl_usage(ctl, "invalid %s '%s': not a number or a known %s name", group ? "gid" : "uid", s,
		  group ? "group" : "user");
	return -1;
}

/* A PCI address as the daemon takes it; a usage error otherwise. */
static int parse_device(struct ctl *ctl, const char *s)
{
	struct physmem_pci_address a;

	if (physmem_pci_address_parse(s, &a) < 0)
		return ctl_usage(ctl, "invalid device '%s': expected a PCI address DDDD:BB:DD.F or BB:DD.F", s), -1;
	return 0;
}

static int parse_access(struct ctl *ctl, const char *s, enum physmem_device_access *ret)
{
	if (strcmp(s, "bidirectional") == 0)
		*ret = PHYSMEM_ACCESS_BIDIRECTIONAL;
	else if (strcmp(s, "to-device") == 0)
		*ret = PHYSMEM_ACCESS_TO_DEVICE;
	else if (strcmp(s, "from-device") == 0)
		*ret = PHYSMEM_ACCESS_FROM_DEVICE;
	else
		return ctl_usage(ctl, "invalid access '%s': expected bidirectional, to-device or from-device", s), -1;
	return 0;
}

/* Parse a subcommand's options (allowed: a getopt-style list of OPT_* it takes). */
static int parse_opts(struct ctl *ctl, int argc, char **argv, const int *allowed, struct opts *o)
{
	static const struct option options[] = {
		COMMON_OPTIONS,
		{ "contiguous", no_argument, NULL, OPT_CONTIGUOUS },
		{ "cache", required_argument, NULL, OPT_CACHE },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "allow-uid", required_argument, NULL, OPT_ALLOW_UID },
		{ "allow-gid", required_argument, NULL, OPT_ALLOW_GID },
		{ "hold", no_argument, NULL, OPT_HOLD },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "owner", required_argument, NULL, OPT_OWNER },
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "access", required_argument, NULL, OPT_ACCESS },
		{ "pool", required_argument, NULL, OPT_POOL },
		{ 0 }
	};
	int c, r;

	memset(o, 0, sizeof(*o));
	o->cache = PHYSMEM_CACHE_CACHED;
	optind = 0;	/* glibc: full reinitialisation */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		bool ok = false;

		r = parse_common(ctl, c, argv);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		for (const int *a = allowed; *a; a++)
			ok = ok || *a == c;
		if (!ok)
			return ctl_usage(ctl, "option '%s' does not apply to %s", argv[optind - 1], ctl->verb), -1;
		switch (c) {
		case OPT_CONTIGUOUS:
			o->contiguous = true;
			break;
		case OPT_CACHE:
			if (parse_cache(ctl, optarg, &o->cache) < 0)
				return -1;
			break;
		case OPT_NAME:
			if (!physmem_name_valid(optarg))
				return ctl_usage(ctl, "invalid name '%s': 1-%d of A-Z a-z 0-9 . _ -, not starting with '.'",
						 optarg, PHYSMEM_NAME_MAX), -1;
			o->name = optarg;
			break;
		case OPT_ALLOW_UID:
		case OPT_ALLOW_GID: {
			bool group = c == OPT_ALLOW_GID;
			unsigned *n = group ? &o->n_gids : &o->n_uids;

			if (*n >= MAX_IDS)
				return ctl_usage(ctl, "at most %d --allow-%s options", MAX_IDS, group ? "gid" : "uid"), -1;
			if (parse_id(ctl, optarg, group, group ? (uint32_t *)&o->gids[*n] : (uint32_t *)&o->uids[*n]) < 0)
				return -1;
			(*n)++;
			break;
		}
		case OPT_HOLD:
			o->hold = true;
			break;
		case OPT_ALL:
			o->all = true;
			break;
		case OPT_OWNER:
			if (parse_id(ctl, optarg, false, (uint32_t *)&o->owner) < 0)
				return -1;
			o->has_owner = true;
			break;
		case OPT_DEVICE:
			if (parse_device(ctl, optarg) < 0)
				return -1;
			o->device = optarg;
			break;
		case OPT_ACCESS:
			if (parse_access(ctl, optarg, &o->access) < 0)
				return -1;
			break;
		case OPT_POOL:
			if (!physmem_name_valid(optarg) || strlen(optarg) > PHYSMEM_POOL_NAME_MAX)
				return ctl_usage(ctl, "invalid pool name '%s': 1-%d of A-Z a-z 0-9 . _ -, not starting "
						 "with '.'", optarg, PHYSMEM_POOL_NAME_MAX), -1;
			o->pool = optarg;
			break;
		}
	}
	return optind;
}

static int parse_size_arg(struct ctl *ctl, const char *s, uint64_t *ret)
{
	int r = physmemctl_parse_size(s, ret);

	if (r == -ERANGE)
		return ctl_usage(ctl, "invalid size '%s': must be at least 1 byte and below 8 EiB", s), -1;
	if (r < 0)
		return ctl_usage(ctl, "invalid size '%s': expected a number with an optional unit K, M, G, T "
				 "(or KiB, MiB, GiB, TiB)", s), -1;
	return 0;
}

static int parse_buffer_id(struct ctl *ctl, const char *s, uint64_t *ret)
{
	if (physmemctl_parse_uint(s, INT64_MAX, ret) < 0)
		return ctl_usage(ctl, "invalid buffer id '%s': expected a non-negative number", s), -1;
	return 0;
}

/* Exactly n positional arguments (n_opt more may follow). */
static int want_args(struct ctl *ctl, int argc, int first, int n, int n_opt)
{
	int have = argc - first;

	if (have < n)
		return ctl_usage(ctl, "missing argument"), -1;
	if (have > n + n_opt)
		return ctl_usage(ctl, "unexpected argument"), -1;
	return 0;
}

/* A string member of o, or NULL. */
static const char *json_string_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
		       json_object_get_string(v) : NULL;
}

/* Status's bindableDevices for people (from the reply: libphysmem keeps it as sent). */
static void print_bindable_devices(const struct physmem_status *st)
{
	struct json_object *a, *v;
	size_t n;

	if (!st->json || !json_object_object_get_ex(st->json, "bindableDevices", &a) ||
	    !json_object_is_type(a, json_type_array) || (n = json_object_array_length(a)) == 0) {
		printf("devices:         - (you may bind buffers to no PCI device)\n");
		return;
	}
	printf("devices:         %zu you may bind buffers to\n", n);
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(a, i);
		char dev[32], driver[64], trans[32], reason[128], ids[32] = "?";
		int64_t vendor = -1, product = -1;

		if (!json_object_is_type(d, json_type_object))
			continue;
		physmem_reply_sanitize(dev, sizeof(dev), json_string_of(d, "device") ?: "?");
		physmem_reply_sanitize(driver, sizeof(driver), json_string_of(d, "driver") ?: "no driver");
		physmem_reply_sanitize(trans, sizeof(trans), json_string_of(d, "translation") ?: "translation unknown");
		physmem_reply_sanitize(reason, sizeof(reason), json_string_of(d, "reason") ?: "?");
		if (json_object_object_get_ex(d, "vendor", &v))
			vendor = json_object_get_int64(v);
		if (json_object_object_get_ex(d, "product", &v))
			product = json_object_get_int64(v);
		if (vendor >= 0 && vendor <= 0xffff && product >= 0 && product <= 0xffff)
			snprintf(ids, sizeof(ids), "%04" PRIx64 ":%04" PRIx64, vendor, product);
		printf("  %s  %s  %s  %s", dev, ids, driver, trans);
		if (json_object_object_get_ex(d, "iommuGroup", &v) && json_object_is_type(v, json_type_int))
			printf("  group %" PRId64, json_object_get_int64(v));
		if (json_object_object_get_ex(d, "bindable", &v) && json_object_get_boolean(v))
			printf("  bindable\n");
		else
			printf("  not bindable: %s\n", reason);
	}
}

/* A figure of pool i as o's member key: null when the daemon does not know it. */
static void pool_figure_add(struct json_object *o, const char *key,
			    int (*get)(const struct physmem_status *, unsigned, uint64_t *),
			    const struct physmem_status *st, unsigned i)
{
	uint64_t v = 0;
	bool known = get(st, i, &v) >= 0;

	nullable_u64(o, key, known, v);
}

/* Status's pools as j's member "pools", the interface's []Pool; null when the daemon reported none (memfd). */
static void pools_add(struct json_object *j, const struct physmem_status *st)
{
	struct json_object *a, *rp = NULL;
	unsigned n = physmem_status_n_pools(st);

	if (st->json && json_object_object_get_ex(st->json, "pools", &rp) && !json_object_is_type(rp, json_type_array))
		rp = NULL;
	if (n == 0 && !rp) {
		vl_add_null(j, "pools");
		return;
	}
	a = json_object_new_array();
	for (unsigned i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object(), *r;

		vl_add(o, "name", json_object_new_string(physmem_status_pool_name(st, i)));
		vl_add(o, "kind", json_object_new_string(physmem_status_pool_kind(st, i)));
		pool_figure_add(o, "size", physmem_status_pool_size, st, i);
		pool_figure_add(o, "free", physmem_status_pool_free, st, i);
		pool_figure_add(o, "largestFree", physmem_status_pool_largest_free, st, i);
		vl_add(o, "buffers", json_u64(physmem_status_pool_buffers(st, i)));
		r = rp && i < json_object_array_length(rp) ? json_object_array_get_idx(rp, i) : NULL;
		physmem_reply_add_unknown(o, r);
		vl_append(a, o);
	}
	vl_add(j, "pools", a);
}

/* Status's pools for people: one line each. */
static void pools_print(const struct physmem_status *st)
{
	unsigned n = physmem_status_n_pools(st);

	if (n == 0) {
		printf("pools:           none\n");
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t size, free, largest;
		char a[32], b[32], c[32];

		printf("pool %-10s  %s, ", physmem_status_pool_name(st, i), physmem_status_pool_kind(st, i));
		if (physmem_status_pool_size(st, i, &size) >= 0 && physmem_status_pool_free(st, i, &free) >= 0 &&
		    physmem_status_pool_largest_free(st, i, &largest) >= 0)
			printf("size %s, free %s, largest free run %s, ", physmemctl_format_size(size, a, sizeof(a)),
			       physmemctl_format_size(free, b, sizeof(b)),
			       physmemctl_format_size(largest, c, sizeof(c)));
		else
			printf("size and free unknown (shared with the kernel), ");
		printf("%" PRIu64 " buffers\n", physmem_status_pool_buffers(st, i));
	}
}

static int cmd_status(struct ctl *ctl, int argc, char **argv)
{
	static const int allowed[] = { 0 };
	struct physmem_status *st;
	uint64_t held, pool_bytes, max_pool_bytes;
	bool held_known, pool_bytes_known, max_pool_bytes_known;
	struct opts o;
	char a[32], b[32], c[32];
	int i, r;

	i = parse_opts(ctl, argc, argv, allowed, &o);
	if (i < 0 || want_args(ctl, argc, i, 0, 0) < 0)
		return PHYSMEMCTL_EXIT_USAGE;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = physmem_status(ctl->pm, &st);
	if (r < 0)
		return ctl_fail(ctl, r);
	held_known = physmem_status_quota_held_bytes(st, &held) >= 0;
	pool_bytes_known = physmem_status_quota_pool_bytes(st, &pool_bytes) >= 0;
	max_pool_bytes_known = physmem_status_quota_max_pool_bytes(st, &max_pool_bytes) >= 0;

	if (ctl->json) {
		struct json_object *j = json_object_new_object(), *q = json_object_new_object();

		vl_add(j, "version", json_object_new_string(physmem_status_version(st)));
		vl_add(j, "backend", json_object_new_string(physmem_status_backend(st)));
		vl_add(j, "dmaSafe", json_object_new_boolean(physmem_status_dma_safe(st)));
		vl_add(j, "buffers", json_u64(physmem_status_buffers(st)));
		vl_add(j, "bytes", json_u64(physmem_status_bytes(st)));
		vl_add(j, "connections", json_u64(physmem_status_connections(st)));
		vl_add(j, "maxBufferSize", json_u64(physmem_status_max_buffer_size(st)));
		vl_add(j, "maxMessageSize", json_u64(physmem_status_max_message_size(st)));
		vl_add(j, "maxConnections", json_u64(physmem_status_max_connections(st)));
		vl_add(j, "maxConnectionsPerUid",
		       json_u64(physmem_status_max_connections_per_uid(st)));
		vl_add(j, "addressPolicy",
		       json_object_new_string(physmem_status_address_policy(st)));
		vl_add(q, "uid", json_object_new_int64(physmem_status_quota_uid(st)));
		vl_add(q, "maxBuffers", json_u64(physmem_status_quota_max_buffers(st)));
		vl_add(q, "maxBytes", json_u64(physmem_status_quota_max_bytes(st)));
		vl_add(q, "buffers", json_u64(physmem_status_quota_buffers(st)));
		vl_add(q, "bytes", json_u64(physmem_status_quota_bytes(st)));
		/* Nullable in the interface: null when the daemon did not report it. */
		nullable_u64(q, "heldBytes", held_known, held);
		nullable_u64(q, "poolBytes", pool_bytes_known, pool_bytes);
		nullable_u64(q, "maxPoolBytes", max_pool_bytes_known, max_pool_bytes);
		if (st->json) {
			struct json_object *rq;

			if (json_object_object_get_ex(st->json, "quota", &rq))
				physmem_reply_add_unknown(q, rq);
		}
		vl_add(j, "quota", q);
		pools_add(j, st);
		physmem_reply_add_unknown(j, st->json);
		print_json(j, false);
		physmem_status_free(st);
		return PHYSMEMCTL_EXIT_OK;
	}
	printf("daemon:          physmemd %s\n", physmem_status_version(st));
	printf("backend:         %s (%s)\n", physmem_status_backend(st),
	       physmem_status_dma_safe(st) ? "DMA-safe" : "addresses are NOT DMA-safe");
	printf("address policy:  %s\n", physmem_status_address_policy(st));
	printf("in use:          %" PRIu64 " buffers, %s, %" PRIu64 " connections\n", physmem_status_buffers(st),
	       physmemctl_format_size(physmem_status_bytes(st), a, sizeof(a)), physmem_status_connections(st));
	printf("limits:          buffer %s, message %s, %" PRIu64 " connections (%" PRIu64 " per uid)\n",
	       physmemctl_format_size(physmem_status_max_buffer_size(st), b, sizeof(b)),
	       physmemctl_format_size(physmem_status_max_message_size(st), c, sizeof(c)),
	       physmem_status_max_connections(st), physmem_status_max_connections_per_uid(st));
	snprintf(c, sizeof(c), "quota (uid %u):", (unsigned)physmem_status_quota_uid(st));
	printf("%-16s %" PRIu64 " of %" PRIu64 " buffers, %s of %s\n", c, physmem_status_quota_buffers(st),
	       physmem_status_quota_max_buffers(st),
	       physmemctl_format_size(physmem_status_quota_bytes(st), a, sizeof(a)),
	       physmemctl_format_size(physmem_status_quota_max_bytes(st), b, sizeof(b)));
	if (held_known)
		printf("held:            %s (freed, still held by an fd, a mapping or an importer)\n",
		       physmemctl_format_size(held, a, sizeof(a)));
	else
		printf("held:            - (not reported by this daemon)\n");
	print_bindable_devices(st);
	if (pool_bytes_known && max_pool_bytes_known)
		printf("pool quota:      %s of %s\n", physmemctl_format_size(pool_bytes, a, sizeof(a)),
		       physmemctl_format_size(max_pool_bytes, b, sizeof(b)));
	pools_print(st);
	physmem_status_free(st);
	return PHYSMEMCTL_EXIT_OK;
}

/*
 * With --hold, SIGINT and SIGTERM are blocked before the buffer exists and
 * taken from a signalfd afterwards, so that none is lost in between and the
 * buffer is always freed.
 */
static void block_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
}

/*
 * Keep the connection (and so the buffer) until SIGINT or SIGTERM. Returns 0
 * on a signal, or an exit code when the daemon went away.
 */
static int hold_until_signal(struct ctl *ctl)
{
	struct pollfd p[2];
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		ctl_error(ctl, "signalfd: %s", strerror(errno));
		return PHYSMEMCTL_EXIT_FAILED;
	}
	p[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = physmem_fd(ctl->pm), .events = POLLIN };
	for (;;) {
		char byte;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ctl_error(ctl, "poll: %s", strerror(errno));
			close(sfd);
			return PHYSMEMCTL_EXIT_FAILED;
		}
		if (p[0].revents) {
			close(sfd);
			return 0;
		}
		if (p[1].revents) {
			/* Nothing is asked, so anything readable is the end or a protocol error. */
			ssize_t n = recv(p[1].fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

			close(sfd);
			if (n <= 0) {
				ctl_error(ctl, "the daemon closed the connection; the buffer is gone");
				return PHYSMEMCTL_EXIT_UNREACHABLE;
			}
			ctl_error(ctl, "unexpected message from the daemon");
			return PHYSMEMCTL_EXIT_FAILED;
		}
	}
}

/* Print the ready line (or the JSON line that stands for it). */
static void print_ready(const struct ctl *ctl, const struct physmem_info *info)
{
	if (ctl->json) {
		print_json(info_json(info), true);
	} else {
		char sz[32];

		const char *name = physmem_info_name(info);

		printf("buffer %" PRIu64 "%s%s: %s\n", physmem_info_id(info), name[0] ? ", name " : "", name,
		       physmemctl_format_size(physmem_info_size(info), sz, sizeof(sz)));
		puts("ready");
	}
	fflush(stdout);
}

static int cmd_alloc(struct ctl *ctl, int argc, char **argv)
{
	static const int allowed[] = { OPT_CONTIGUOUS, OPT_CACHE, OPT_NAME, OPT_ALLOW_UID, OPT_ALLOW_GID,
				       OPT_HOLD, OPT_DEVICE, OPT_ACCESS, OPT_POOL, 0 };
	struct physmem_buffer *buf;
	struct opts o;
	uint64_t size;
	int i, r;

	i = parse_opts(ctl, argc, argv, allowed, &o);
	if (i < 0 || want_args(ctl, argc, i, 1, 0) < 0 || parse_size_arg(ctl, argv[i], &size) < 0)
		return PHYSMEMCTL_EXIT_USAGE;
	if ((o.n_uids || o.n_gids) && !o.name)
		return ctl_usage(ctl, "--allow-uid and --allow-gid need --name");
	if (o.access != PHYSMEM_ACCESS_BIDIRECTIONAL && !o.device)
		return ctl_usage(ctl, "--access needs --device");
	if (o.device && (o.n_uids || o.n_gids))
		return ctl_usage(ctl, "--device does not go with --allow-uid or --allow-gid: share it afterwards");
	if (o.hold)
		block_signals();
	r = ctl_connect(ctl);
	if (r)
		return r;
	if (o.pool && o.device) {
		/* A pool buffer bound to the device, in one call (--device does not go with sharing). */
		r = physmem_alloc_pool_bound(ctl->pm, size, o.pool, o.cache, o.name, o.device, o.access, &buf);
	} else if (o.pool) {
		/* A pool buffer, then shared as asked (a failed share frees it with the connection). */
		r = physmem_alloc_pool(ctl->pm, size, o.pool, o.cache, o.name, &buf);
		if (r >= 0 && (o.n_uids || o.n_gids)) {
			r = physmem_share(buf, o.name, o.uids, o.n_uids, o.gids, o.n_gids);
			if (r < 0) {
				r = ctl_fail(ctl, r);
				physmem_buffer_free(buf);
				return r;
			}
		}
	} else if (o.device) {
		r = physmem_alloc_bound(ctl->pm, size, o.contiguous ? PHYSMEM_CONTIGUOUS : 0, o.cache, o.name,
					o.device, o.access, &buf);
	} else {
		r = physmem_alloc_shared(ctl->pm, size, o.contiguous ? PHYSMEM_CONTIGUOUS : 0, o.cache, o.name,
					 o.uids, o.n_uids, o.gids, o.n_gids, &buf);
	}
	if (r < 0)
		return ctl_fail(ctl, r);

	if (o.hold) {
		print_ready(ctl, physmem_buffer_info(buf));
		r = hold_until_signal(ctl);
		if (r) {
			physmem_buffer_close(buf);
			return r;
		}
		r = physmem_buffer_free(buf);
		if (r < 0)
			return ctl_fail(ctl, r);
		return PHYSMEMCTL_EXIT_OK;
	}

	info_output(ctl, physmem_buffer_info(buf));
	if (!o.name && !ctl->json)
		fprintf(stderr, "physmemctl: note: buffer %" PRIu64 " is freed now that physmemctl exits; "
			"use --hold to keep it, or --name to keep it until freed\n", physmem_buffer_id(buf));
	physmem_buffer_close(buf);
	return PHYSMEMCTL_EXIT_OK;
}

static int cmd_list(struct ctl *ctl, int argc, char **argv)
{
	static const int allowed[] = { OPT_ALL, 0 };
	struct physmem_info **list;
	struct opts o;
	size_t n;
	int i, r;

	i = parse_opts(ctl, argc, argv, allowed, &o);
	if (i < 0 || want_args(ctl, argc, i, 0, 0) < 0)
		return PHYSMEMCTL_EXIT_USAGE;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = physmem_list(ctl->pm, o.all, &list, &n);
	if (r < 0)
		return ctl_fail(ctl, r);

	if (ctl->json) {
		struct json_object *j = json_object_new_object(), *a = json_object_new_array();

		for (size_t k = 0; k < n; k++)
			vl_append(a, info_json(list[k]));
		vl_add(j, "buffers", a);
		print_json(j, false);
	} else if (n == 0) {
		puts("no buffers");
	} else {
		printf("%6s  %-10s  %-12s  %-6s  %-7s  %6s  %-15s  %s\n", "ID", "SIZE", "CACHE", "CONTIG", "BACKEND",
		       "SEGS", "OWNER UID/PID", "NAME");
		for (size_t k = 0; k < n; k++) {
			const struct physmem_info *b = list[k];
			const char *name = physmem_info_name(b);
			char sz[32], segs[16], owner[32];

			if (physmem_info_segments_known(b))
				snprintf(segs, sizeof(segs), "%u", physmem_info_n_segments(b));
			else
				snprintf(segs, sizeof(segs), "-");
			snprintf(owner, sizeof(owner), "%u/%d", (unsigned)physmem_info_owner_uid(b),
				 (int)physmem_info_owner_pid(b));
			printf("%6" PRIu64 "  %-10s  %-12s  %-6s  %-7s  %6s  %-15s  %s\n", physmem_info_id(b),
			       physmemctl_format_size(physmem_info_size(b), sz, sizeof(sz)),
			       cache_name(physmem_info_cache(b)), yes_no(physmem_info_contiguous(b)),
			       physmem_info_backend(b), segs, owner, name[0] ? name : "-");
		}
	}
	physmem_info_list_free(list, n);
	return PHYSMEMCTL_EXIT_OK;
}

static int cmd_show(struct ctl *ctl, int argc, char **argv)
{
	static const int allowed[] = { 0 };
	struct physmem_info *info;
	struct opts o;
	uint64_t id;
	int i, r;

	i = parse_opts(ctl, argc, argv, allowed, &o);
	if (i < 0 || want_args(ctl, argc, i, 1, 0) < 0 || parse_buffer_id(ctl, argv[i], &id) < 0)
		return PHYSMEMCTL_EXIT_USAGE;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = physmem_describe(ctl->pm, id, &info);
	if (r < 0)
		return ctl_fail(ctl, r);
	info_output(ctl, info);
	physmem_info_free(info);
	return PHYSMEMCTL_EXIT_OK;
}

static int cmd_free(struct ctl *ctl, int argc, char **argv)
{
	static const int allowed[] = { 0 };
	struct opts o;
	uint64_t id;
	int i, r;

	i = parse_opts(ctl, argc, argv, allowed, &o);
	if (i < 0 || want_args(ctl, argc, i, 1, 0) < 0 || parse_buffer_id(ctl, argv[i], &id) < 0)
		return PHYSMEMCTL_EXIT_USAGE;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = physmem_free_id(ctl->pm, id);
	if (r < 0)
		return ctl_fail(ctl, r);
	if (ctl->json) {
		struct json_object *j = json_object_new_object();

		vl_add(j, "id", json_u64(id));
		vl_add(j, "freed", json_object_new_boolean(1));
		print_json(j, false);
	} else {
		printf("freed buffer %" PRIu64 "\n", id);
	}
	return PHYSMEMCTL_EXIT_OK;
}

static int cmd_bind(struct ctl *ctl, int argc, char **argv)
{
	static const int allowed[] = { OPT_ACCESS, 0 };
	struct physmem_info *info;
	struct opts o;
	uint64_t id;
	int i, r;

	i = parse_opts(ctl, argc, argv, allowed, &o);
	if (i < 0 || want_args(ctl, argc, i, 2, 0) < 0 || parse_buffer_id(ctl, argv[i], &id) < 0 ||
	    parse_device(ctl, argv[i + 1]) < 0)
		return PHYSMEMCTL_EXIT_USAGE;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = physmem_bind(ctl->pm, id, argv[i + 1], o.access, &info);
	if (r < 0)
		return ctl_fail(ctl, r);
	info_output(ctl, info);
	physmem_info_free(info);
	return PHYSMEMCTL_EXIT_OK;
}

static int cmd_unbind(struct ctl *ctl, int argc, char **argv)
{
	static const int allowed[] = { 0 };
	struct opts o;
	uint64_t id;
	int i, r;

	i = parse_opts(ctl, argc, argv, allowed, &o);
	if (i < 0 || want_args(ctl, argc, i, 2, 0) < 0 || parse_buffer_id(ctl, argv[i], &id) < 0 ||
	    parse_device(ctl, argv[i + 1]) < 0)
		return PHYSMEMCTL_EXIT_USAGE;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = physmem_unbind(ctl->pm, id, argv[i + 1]);
	if (r < 0)
		return ctl_fail(ctl, r);
	if (ctl->json) {
		struct json_object *j = json_object_new_object();

		vl_add(j, "id", json_u64(id));
		vl_add(j, "device", json_object_new_string(argv[i + 1]));
		vl_add(j, "unbound", json_object_new_boolean(1));
		print_json(j, false);
	} else {
		printf("unbound buffer %" PRIu64 " from %s\n", id, argv[i + 1]);
	}
	return PHYSMEMCTL_EXIT_OK;
}

static int cmd_import(struct ctl *ctl, int argc, char **argv)
{
	static const int allowed[] = { OPT_HOLD, OPT_OWNER, 0 };
	struct physmem_buffer *buf;
	struct opts o;
	int i, r;

	i = parse_opts(ctl, argc, argv, allowed, &o);
	if (i < 0 || want_args(ctl, argc, i, 1, 0) < 0)
		return PHYSMEMCTL_EXIT_USAGE;
	if (!physmem_name_valid(argv[i]))
		return ctl_usage(ctl, "invalid name '%s'", argv[i]);
	if (o.hold)
		block_signals();
	r = ctl_connect(ctl);
	if (r)
		return r;
	if (o.has_owner)
		r = physmem_import_owned(ctl->pm, argv[i], o.owner, &buf);
	else
		r = physmem_import(ctl->pm, argv[i], &buf);
	if (r < 0)
		return ctl_fail(ctl, r);
	if (!physmem_buffer_map(buf)) {
		r = -errno;
		ctl_error(ctl, "cannot map buffer %" PRIu64 ": %s", physmem_buffer_id(buf), strerror(-r));
		physmem_buffer_close(buf);
		return PHYSMEMCTL_EXIT_FAILED;
	}
	if (o.hold) {
		print_ready(ctl, physmem_buffer_info(buf));
		r = hold_until_signal(ctl);
	} else {
		info_output(ctl, physmem_buffer_info(buf));
	}
	physmem_buffer_close(buf);
	return r;
}

/* The test pattern: a word per 8 bytes that depends on its offset and a seed. */
static uint64_t pattern(uint64_t i, uint64_t seed)
{
	uint64_t z = (i + seed) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static const char hello[] = "hello from physmemctl selftest";

/* The word at index i of the test pattern, with the greeting over the first bytes. */
static uint64_t selftest_word(size_t i, uint64_t seed)
{
	uint64_t v = pattern(i, seed);
	unsigned char b[8];

	memcpy(b, &v, 8);
	for (size_t k = 0; k < 8; k++)
		if (i * 8 + k < sizeof(hello))
			b[k] = (unsigned char)hello[i * 8 + k];
	memcpy(&v, b, 8);
	return v;
}

/*
 * Write the pattern through w, check every byte through rd. Returns the first
 * bad offset (its expected byte in *ret_want), or size when all is well.
 */
static size_t selftest_pattern(unsigned char *w, const unsigned char *rd, size_t size, uint64_t seed,
			       unsigned char *ret_want, double *ret_write_s, double *ret_read_s)
{
	struct timespec t0;
	size_t words = size / 8;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < words; i++) {
		uint64_t v = selftest_word(i, seed);

		memcpy(w + i * 8, &v, 8);
	}
	for (size_t i = words * 8; i < size; i++)
		w[i] = (unsigned char)i;
	*ret_write_s = seconds_since(&t0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < words; i++) {
		uint64_t v = selftest_word(i, seed), got;

		memcpy(&got, rd + i * 8, 8);
		if (got != v)
			for (size_t k = 0; k < 8; k++)
				if (rd[i * 8 + k] != ((unsigned char *)&v)[k]) {
					*ret_want = ((unsigned char *)&v)[k];
					return i * 8 + k;
				}
	}
	for (size_t i = words * 8; i < size; i++)
		if (rd[i] != (unsigned char)i) {
			*ret_want = (unsigned char)i;
			return i;
		}
	*ret_read_s = seconds_since(&t0);
	return size;
}

static int cmd_selftest(struct ctl *ctl, int argc, char **argv)
{
	static const int allowed[] = { OPT_CONTIGUOUS, OPT_CACHE, 0 };
	const struct physmem_info *info;
	struct physmem_buffer *buf;
	unsigned char *m1, *m2;
	uint64_t want = 4u << 20, sum = 0;
	long page = sysconf(_SC_PAGESIZE);
	double ws = 0, rs = 0;
	struct opts o;
	char sz[32], wr[32], rr[32];
	size_t size = 0, bad;
	unsigned char expect = 0;
	int i, r;

	i = parse_opts(ctl, argc, argv, allowed, &o);
	if (i < 0 || want_args(ctl, argc, i, 0, 1) < 0)
		return PHYSMEMCTL_EXIT_USAGE;
	if (argc > i && parse_size_arg(ctl, argv[i], &want) < 0)
		return PHYSMEMCTL_EXIT_USAGE;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = physmem_alloc(ctl->pm, want, o.contiguous ? PHYSMEM_CONTIGUOUS : 0, o.cache, NULL, &buf);
	if (r < 0)
		return ctl_fail(ctl, r);
	info = physmem_buffer_info(buf);

#define FAIL(...) do { ctl_error(ctl, __VA_ARGS__); r = PHYSMEMCTL_EXIT_FAILED; goto out; } while (0)
	m2 = MAP_FAILED;
	if (physmem_info_size(info) < want || physmem_info_size(info) % (uint64_t)page != 0)
		FAIL("daemon gave %" PRIu64 " bytes for %" PRIu64 " requested (page size %ld)",
		     physmem_info_size(info), want, page);
	if (physmem_info_cache(info) != o.cache || (o.contiguous && !physmem_info_contiguous(info)))
		FAIL("daemon gave a %s%s buffer for a %s%s request", cache_name(physmem_info_cache(info)),
		     physmem_info_contiguous(info) ? " contiguous" : "", cache_name(o.cache),
		     o.contiguous ? " contiguous" : "");
	if (physmem_info_segments_known(info)) {
		for (unsigned k = 0; k < physmem_info_n_segments(info); k++)
			sum += physmem_info_segment(info, k)->length;
		if (sum != physmem_info_size(info))
			FAIL("segments add up to %" PRIu64 " bytes, buffer has %" PRIu64, sum, physmem_info_size(info));
		if (physmem_info_contiguous(info) && physmem_info_n_segments(info) != 1)
			FAIL("contiguous buffer reported in %u segments", physmem_info_n_segments(info));
	}
	size = (size_t)physmem_info_size(info);

	m1 = physmem_buffer_map(buf);
	if (!m1)
		FAIL("first mmap of buffer %" PRIu64 ": %s", physmem_info_id(info), strerror(errno));
	m2 = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, physmem_buffer_fd(buf), 0);
	if (m2 == MAP_FAILED)
		FAIL("second mmap of buffer %" PRIu64 ": %s", physmem_info_id(info), strerror(errno));

	/* Fresh memory must not show anybody's old data. */
	r = physmem_buffer_begin_cpu(buf, PHYSMEM_SYNC_READ);
	if (r < 0)
		FAIL("begin CPU access: %s", strerror(-r));
	for (size_t k = 0; k < size; k++)
		if (m2[k] != 0)
			FAIL("new buffer is not zeroed: byte 0x%02x at offset %zu", m2[k], k);
	r = physmem_buffer_end_cpu(buf, PHYSMEM_SYNC_READ);
	if (r < 0)
		FAIL("end CPU access: %s", strerror(-r));

	r = physmem_buffer_begin_cpu(buf, PHYSMEM_SYNC_RW);
	if (r < 0)
		FAIL("begin CPU access: %s", strerror(-r));
	bad = selftest_pattern(m1, m2, size, physmem_info_id(info), &expect, &ws, &rs);
	if (bad < size)
		FAIL("mismatch at offset %zu: wrote 0x%02x through the first mapping, read 0x%02x through the second",
		     bad, expect, m2[bad]);
	r = physmem_buffer_end_cpu(buf, PHYSMEM_SYNC_RW);
	if (r < 0)
		FAIL("end CPU access: %s", strerror(-r));

	if (ctl->json) {
		struct json_object *j = json_object_new_object();

		vl_add(j, "ok", json_object_new_boolean(1));
		vl_add(j, "buffer", info_json(info));
		vl_add(j, "writeSeconds", json_object_new_double(ws));
		vl_add(j, "readSeconds", json_object_new_double(rs));
		print_json(j, false);
	} else {
		char segs[32];

		if (physmem_info_segments_known(info))
			snprintf(segs, sizeof(segs), "%u segments", physmem_info_n_segments(info));
		else if (strcmp(physmem_info_backend(info), "memfd") == 0)
			snprintf(segs, sizeof(segs), "no addresses on memfd");
		else
			snprintf(segs, sizeof(segs), "segments hidden");
		printf("selftest: ok (%s, %s, %s%s, %s, %s; write %s/s, read %s/s)\n",
		       physmemctl_format_size(physmem_info_size(info), sz, sizeof(sz)), physmem_info_backend(info), cache_name(physmem_info_cache(info)),
		       physmem_info_contiguous(info) ? " contiguous" : "", segs, physmem_info_dma_safe(info) ? "DMA-safe" : "not DMA-safe",
		       physmemctl_format_size(ws > 0 ? (uint64_t)((double)size / ws) : 0, wr, sizeof(wr)),
		       physmemctl_format_size(rs > 0 ? (uint64_t)((double)size / rs) : 0, rr, sizeof(rr)));
	}
	r = PHYSMEMCTL_EXIT_OK;
#undef FAIL
out:
	if (m2 != MAP_FAILED)
		munmap(m2, size);
	{
		int f = physmem_buffer_free(buf);

		if (f < 0 && r == PHYSMEMCTL_EXIT_OK)
			r = ctl_fail(ctl, f);
	}
	return r;
}

static const struct verb {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
} verbs[] = {
	{ "status", cmd_status },
	{ "alloc", cmd_alloc },
	{ "list", cmd_list },
	{ "show", cmd_show },
	{ "free", cmd_free },
	{ "bind", cmd_bind },
	{ "unbind", cmd_unbind },
	{ "import", cmd_import },
	{ "selftest", cmd_selftest },
};

int main(int argc, char **argv)
{
	static const struct option options[] = { COMMON_OPTIONS, { 0 } };
	struct ctl ctl = { 0 };
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1)
		if (parse_common(&ctl, c, argv) <= 0)
			return PHYSMEMCTL_EXIT_USAGE;
	if (optind >= argc)
		return ctl_usage(&ctl, "no command given");

	for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++) {
		if (strcmp(verbs[k].name, argv[optind]) != 0)
			continue;
		ctl.verb = verbs[k].name;
		r = verbs[k].run(&ctl, argc - optind, argv + optind);
		ctl_done(&ctl);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			ctl_error(&ctl, "writing output: %s", strerror(errno));
			if (r == 0)
				r = PHYSMEMCTL_EXIT_FAILED;
		}
		return r;
	}
	return ctl_usage(&ctl, "unknown command '%s'", argv[optind]);
}
