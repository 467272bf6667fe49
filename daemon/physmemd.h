/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * physmemd: the broker between unprivileged clients and a memory backend.
 * Shared declarations of the daemon's parts; each part lives in the file
 * whose name matches its function prefix.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#include "physmem-proto.h"
#include "varlink-stream.h"

struct event_base;
struct event;

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ns as a timeval, for a libevent timer. */
static inline struct timeval timeval_from_ns(uint64_t ns)
{
	return (struct timeval){ .tv_sec = (time_t)(ns / 1000000000ULL),
				 .tv_usec = (suseconds_t)(ns % 1000000000ULL / 1000) };
}
struct json_object;
struct json_tokener;
struct conn_pool;

/* ---- physmemd-log.c ---- */
enum log_level { LOG_LEVEL_ERR = 3, LOG_LEVEL_WARNING = 4, LOG_LEVEL_NOTICE = 5,
		 LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };
void log_set_level(int level);
/* Learn what stderr is and how to write it without blocking: at start, before any client. */
void log_open(void);
int log_parse_level(const char *s);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
/* A line a client causes at will (a refusal, a disconnect): at most 20 a second, the rest counted. */
void log_client(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_client_warning(...) log_client(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_client_notice(...) log_client(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_client_info(...) log_client(LOG_LEVEL_INFO, __VA_ARGS__)

/* ---- physmemd-conf.c: every limit and policy knob has its one home here ---- */
enum address_policy {
	ADDRESS_POLICY_OWNER,	/* owners and allowed importers see addresses */
	ADDRESS_POLICY_ROOT,	/* only uid 0 sees addresses */
	ADDRESS_POLICY_NONE,	/* nobody does */
};
extern const char *const address_policy_names[];

enum lock_mode { LOCK_NO, LOCK_TRY, LOCK_YES };

/* A list of users and groups a policy key names (names resolved at load). */
#define PRINCIPALS_MAX 64
struct principals {
	bool all;			/* "*": everyone (pool-users only) */
	unsigned n_uids, n_gids;
	uid_t uids[PRINCIPALS_MAX];
	gid_t gids[PRINCIPALS_MAX];
};

/* bind-device rules: at most this many, each naming at most CONF_MAX_PRINCIPALS users and groups. */
#define CONF_MAX_BIND_RULES 64
#define CONF_MAX_PRINCIPALS 32

/* One bind-device line: who may bind which PCI device(s). */
struct bind_rule {
	bool by_id;			/* vendor:product, else the PCI address addr */
	struct physmem_pci_address addr;
	unsigned vendor, product;
	struct principals who;		/* never "*" */
};

struct conf {
	char socket_path[108];
	unsigned socket_mode;
	char backend[16];		/* auto, memfd, kmod */
	char device[64];		/* the kmod backend's device node */
	uint64_t max_message_size;
	uint64_t max_message_values;	/* '{', '[' and ',' in one message: what json-c would build */
	uint64_t max_output_per_connection;
	uint64_t max_queued_fds_per_connection;
	uint64_t max_connections;
	uint64_t max_connections_per_uid;
	uint64_t max_buffers_per_uid;
	uint64_t max_bytes_per_uid;
	uint64_t max_buffer_size;
	uint64_t max_buffers_total;
	uint64_t stall_timeout_ms;	/* half a message, or replies unread */
	uint64_t sink_timeout_ms;	/* a sink closing client fds must progress */
	uint64_t loop_budget_us;	/* a uid's event-loop time per window before it yields; 0: no budget */
	uint64_t loop_window_ms;	/* the window that budget is for */
	enum address_policy address_policy;
	enum lock_mode lock;
	enum lock_mode fdstore;		/* no, try (auto: under systemd), yes */
	uint64_t hugepage_size;		/* every memfd buffer from huge pages of this size (2M or 1G); 0: see auto */
	bool hugepages_auto;		/* hugepage_size 0: 2 MiB pages where free and the size fits */
	uint64_t worker_threads;	/* threads for large jobs (plus one for small ones) */
	uint64_t release_hold_us;	/* about how long a release of at most 64 KiB may wait for others; 0: never */
	uint64_t debug_job_delay_ms;	/* test hook: every large worker job sleeps this long first */
	int log_level;
	uint64_t max_bindings_per_uid;	/* device bindings a uid may hold */
	char pci_sysfs[108];		/* where PCI devices are described (tests point it elsewhere) */
	unsigned n_bind_rules;
	struct bind_rule bind_rules[CONF_MAX_BIND_RULES];
	struct principals pool_users;	/* who may allocate from contiguous pools (besides root) */
	uint64_t max_pool_bytes_per_uid;	/* of max_bytes_per_uid, what may come from pools */
};

void conf_defaults(struct conf *c);
/* Read a key = value file; returns 0 or a negative errno after logging the bad line. */
int conf_load(struct conf *c, const char *path);

/* ---- backends: physmemd-backend-*.c ---- */
struct segment {
	uint64_t address;
	uint64_t length;
};

/* How a bound device sees memory (the interface's translation strings). */
enum translation { TRANSLATION_IOMMU, TRANSLATION_PASSTHROUGH, TRANSLATION_DIRECT };
extern const char *const translation_names[];

/* A buffer mapped for one PCI device. */
struct backend_binding {
	uint64_t id;			/* the module's binding id */
	struct physmem_pci_address device;
	int access;			/* enum physmem_device_access_mode */
	enum translation translation;
	uid_t uid;			/* who bound it (charged one binding) */
	unsigned n_segments;
	struct segment *segments;	/* the device's addresses */
};

/* One contiguous pool of the kmod backend, as Status reports it. */
struct backend_pool {
	char name[16];
	const char *kind;		/* "memmap", "reserve_mem", "cma" */
	bool shared;			/* size, free and largest_free unknown */
	uint64_t size, free, largest_free, buffers;
};

/* Why a pool allocation failed (-ENOSPC, -ENODEV, -EBUSY from allocate_pool). */
struct backend_pool_failure {
	const char *reason;		/* "exhausted", "fragmented", "none", "busy" */
	bool known;			/* free and largest_free are */
	uint64_t free, largest_free;
};

/* What a backend returns for one buffer. */
struct backend_buffer {
	int fd;				/* handed to clients */
	uint64_t size;
	bool contiguous;
	bool locked;
	unsigned n_segments;		/* 0: addresses unknown */
	struct segment *segments;
	uint64_t kernel_id;		/* the module's buffer id, if any */
	uint64_t page_size;		/* the pages behind it, where the backend knows (0: unknown) */
	bool thp;			/* shmem that the kernel may back with transparent huge pages */
	unsigned n_bindings;		/* release() removes them all first */
	struct backend_binding *bindings;
	bool from_pool;			/* one run from a contiguous pool */
	char pool[16];			/* its name, where known ("" after a restart) */
};

/* Free what a buffer's bindings own (not the mappings: see backend_ops.unbind). */
static inline void backend_bindings_free(struct backend_buffer *b)
{
	for (unsigned i = 0; i < b->n_bindings; i++)
		free(b->bindings[i].segments);
	free(b->bindings);
	b->bindings = NULL;
	b->n_bindings = 0;
}

struct backend_ops {
	const char *name;
	bool dma_safe;
	/* Probe and set up; -ENODEV when the backend cannot work here. */
	int (*init)(const struct conf *conf, void **ret_state);
	void (*fini)(void *state);
	/* -EOPNOTSUPP (feature in *ret_feature), -ENOMEM, ... */
	int (*allocate)(void *state, uint64_t size, bool contiguous, int cache,
			struct backend_buffer *ret, const char **ret_feature);
	/*
	 * The unit sizes are rounded up to (NULL: the page size), by
	 * registry_alloc_size() only: allocate() gets multiples of it and makes
	 * exactly that many bytes (-EINVAL for any other size).
	 */
	uint64_t (*granule)(void *state);
	/*
	 * NULL when the backend has no contiguous pools. One run of size
	 * bytes from the pool named pool: -ENODEV (no such pool), -ENOSPC
	 * (exhausted or fragmented), -EBUSY, with *ret_failure filled in;
	 * -EOPNOTSUPP (feature in *ret_feature), -ENOMEM, ... otherwise.
	 */
	int (*allocate_pool)(void *state, const char *pool, uint64_t size, int cache, struct backend_buffer *ret,
			     struct backend_pool_failure *ret_failure, const char **ret_feature);
	/* NULL when allocate_pool is: the pools now, *ret_n of them in *ret (free() it). */
	int (*pools)(void *state, struct backend_pool **ret, unsigned *ret_n);
	/* NULL when the backend cannot pin memfds. */
	int (*pin)(void *state, int memfd, uint64_t offset, uint64_t size, struct backend_buffer *ret,
		   const char **ret_feature);
	/*
	 * Take over a buffer this backend made earlier (an fd from systemd's
	 * fd store after a restart); -EINVAL if it is not one.
	 */
	int (*adopt)(void *state, int fd, struct backend_buffer *ret);
	/*
	 * After release: is the memory still held elsewhere (a client's fd or
	 * mapping, an importer)? 1 yes, 0 freed. NULL when release always
	 * frees the memory at once.
	 */
	int (*held)(void *state, uint64_t kernel_id);
	/*
	 * Map the buffer behind fd for a PCI device: NULL when the backend
	 * cannot. -ENODEV no such device, -EBUSY its DMA is not the DMA API's
	 * (vfio) or it is going away, -EEXIST bound already, -ENOSPC a kernel
	 * limit, -ERANGE the device cannot reach the pages.
	 */
	int (*bind)(void *state, int fd, const struct physmem_pci_address *device, int access,
		    struct backend_binding *ret);
	/* Remove a binding (quick: an unmap and an IOTLB flush); -ENOENT when there is none. */
	int (*unbind)(void *state, int fd, uint64_t binding_id);
	/* 1 when the binding was revoked (device gone or taken over), 0 when live, or -errno. */
	int (*binding_revoked)(void *state, int fd, uint64_t binding_id);
	/*
	 * Close the buffer; give its memory back unless keep (it lives on in
	 * the fd store). Its bindings are removed first either way: a restart
	 * does not restore them.
	 */
	void (*release)(void *state, struct backend_buffer *b, bool keep);
	/*
	 * Allocations of at most this many bytes cost less than handing them
	 * to a worker thread and cannot block: the event loop runs them itself
	 * when their uid's turn comes (0: never). Releases always go to a
	 * worker (a punch can wait on pages the client maps).
	 */
	uint64_t inline_max;
	/*
	 * Optional: may an allocation of size bytes (at most inline_max) run
	 * on the loop? A backend says no when this size would reserve huge
	 * pages, which can mean compaction or reclaim (NULL: always).
	 */
	bool (*inline_ok)(void *state, uint64_t size);
};

extern const struct backend_ops backend_memfd_ops;
extern const struct backend_ops backend_kmod_ops;

/* ---- physmemd-worker.c: backend work off the event-loop thread ---- */
struct conn;
struct worker_pool;

/* Jobs up to this size (and the release of such buffers) have their own thread. */
#define WORKER_SMALL_JOB (4ULL << 20)
/*
 * The large jobs' worker threads run this much above the daemon's nice
 * value (at most 19); the event loop and the small lane at the daemon's
 * own. When the CPUs are busy (many uids populating and freeing large
 * buffers), the loop that answers everybody gets the CPU before that
 * background work does (PERFORMANCE.md, "Workers woken by a semaphore,
 * large workers at nice 10"). It only lowers the daemon's own claim for
 * those threads.
 */
#define WORKER_NICE 10

/* At most this many small releases, every uid's, are held back before a worker runs them (physmemd-worker.c). */
#define RELEASE_HOLD_TOTAL 64

enum job_kind { JOB_ALLOCATE, JOB_PIN, JOB_RELEASE, JOB_BIND };

/*
 * One piece of backend work. The worker thread reads the inputs, runs the
 * backend and writes b, result and feature; everything else is the main
 * thread's, which the worker never touches.
 */
struct job {
	TAILQ_ENTRY(job) entry;
	enum job_kind kind;
	uid_t uid;			/* whose queue it waits in */
	uint64_t size;			/* picks the lane */
	bool contiguous;		/* JOB_ALLOCATE */
	int cache;			/* JOB_ALLOCATE */
	int memfd;			/* JOB_PIN: the client's memfd; JOB_BIND: the buffer's fd (a dup);
					 * the worker never closes it */
	char pool[16];			/* JOB_ALLOCATE: from this pool ("" none) */
	struct backend_pool_failure pool_failure;	/* JOB_ALLOCATE with pool: why it failed */
	uint64_t offset;		/* JOB_PIN */
	struct backend_buffer b;	/* JOB_RELEASE: the buffer; else the result */
	bool bind;			/* JOB_ALLOCATE, JOB_PIN: also bind the new buffer (JOB_BIND: always) */
	struct physmem_pci_address bind_device;
	int bind_access;
	bool bind_failed;		/* result is the bind's error (the new buffer was released) */
	struct backend_binding bound;	/* JOB_BIND: the result */
	int result;
	const char *feature;
	bool started;			/* start() let it run */
	bool batched;			/* handed over with the job before it: one wake-up for both */
	/* Main thread, when dispatched: check and charge quotas; <0 to skip the work. */
	int (*start)(struct job *j);
	/*
	 * Main thread, NULL for most jobs: may this small allocation start
	 * before its uid's earlier releases are done? Only when it fits the
	 * quota with their bytes still charged (a gone caller's job may: its
	 * start() only cancels it); false has no side effect (it waits its
	 * turn, and start() decides then). Replies nothing.
	 */
	bool (*admit)(struct job *j);
	/* Main thread, afterwards (also when skipped): use the result and free j. */
	void (*done)(struct job *j);
	void *userdata;
	struct uid_queue *queue;	/* the pool's */
};

int worker_pool_new(struct event_base *base, const struct conf *conf, const struct backend_ops *backend,
		    void *backend_state, struct worker_pool **ret);
/* Queue a job behind its uid's earlier ones; never runs it on the spot (except during shutdown). */
void worker_submit(struct worker_pool *p, struct job *j);
/* Let running jobs finish, run what is still queued on this thread, join the threads, free. */
void worker_pool_free(struct worker_pool *p);
/* No job is queued, with a worker, or waiting for its completion (tests wait for this). */
bool worker_pool_idle(const struct worker_pool *p);
/*
 * The pass that is starting jobs now: one number for all the jobs one
 * dispatch starts (and refuses) in a row, so that what each start asks the
 * backend can be asked once per uid and pass (registry_reap_once()).
 */
uint64_t worker_pool_pass(const struct worker_pool *p);
/*
 * Who pays for the loop time of each job's start, an inline job's run and
 * each completion (they run in the pool's own callbacks, not a connection's):
 * charge(ctx, uid, since) after each, since being monotonic_ns() when it
 * began. NULL: nobody (before the server is up, after it is gone).
 */
void worker_pool_set_charge(struct worker_pool *p, void (*charge)(void *ctx, uid_t uid, uint64_t since), void *ctx);
/*
 * may_hold(ctx) false: hold no release back now (every uid's go to the
 * worker at once). The server says so while the daemon is within
 * RELEASE_HOLD_TOTAL buffers of max-buffers, so that a held release never
 * makes another uid's Allocate fail. NULL: no such check.
 */
void worker_pool_set_hold_check(struct worker_pool *p, bool (*may_hold)(void *ctx), void *ctx);
/*
 * Run now, in their uids' turns, the queued jobs that run on this thread
 * (small allocations) instead of after the loop's other ready events; the
 * rest waits for the loop's dispatch as before. Only at the end of an event
 * callback, when the caller uses nothing of its own afterwards (p may be NULL).
 */
void worker_pool_run_inline(struct worker_pool *p);

/* ---- physmemd-registry.c: buffers, owners, quotas ---- */

struct buffer {
	TAILQ_ENTRY(buffer) entry;
	uint64_t id;
	char name[65];			/* "" when not shared */
	int cache;
	uid_t owner_uid;
	pid_t owner_pid;
	struct conn *owner;		/* NULL once the owner disconnected */
	TAILQ_ENTRY(buffer) owner_entry;	/* on owner->owned, while owner is set */
	TAILQ_ENTRY(buffer) uid_entry;	/* on its owner uid's usage.owned */
	unsigned n_allow_uids, n_allow_gids;
	uid_t allow_uids[64];
	gid_t allow_gids[64];
	bool stored;			/* its fd is in systemd's fd store */
	char *meta_text;		/* its entry in its owner's fd-store metadata (fdstore_named), or NULL */
	bool on_named;			/* on its owner's usage.named (it has a name) */
	TAILQ_ENTRY(buffer) named_entry;
	TAILQ_ENTRY(buffer) name_entry;	/* with every owner's buffers of its name (registry.by_name) */
	struct backend_buffer b;
};

TAILQ_HEAD(buffer_list, buffer);

struct usage {
	TAILQ_ENTRY(usage) entry;
	uid_t uid;
	uint64_t buffers;
	uint64_t bytes;
	uint64_t held_bytes;		/* of bytes: freed but still held by someone */
	TAILQ_HEAD(, held) held;	/* those buffers (each counted in buffers, so u outlives them) */
	/* Every buffer it owns, oldest first (List: no walk over other uids'); each counted in buffers. */
	TAILQ_HEAD(, buffer) owned;
	/* Its buffers with a name, as its fd-store metadata lists them (each counted in buffers). */
	TAILQ_HEAD(, buffer) named;
	uint64_t reaped_pass;		/* the worker pass that last reaped them (registry_reap_once) */
	uint64_t pool_bytes;		/* of bytes: from contiguous pools */
	uint64_t connections;
	uint64_t bindings;		/* device bindings made by this uid (and ones being made) */
	/* The event loop's time spent on this uid's messages (see loop-budget-us). */
	uint64_t loop_window;		/* when its current window began, CLOCK_MONOTONIC ns */
	uint64_t loop_ns;		/* loop time spent on it in that window */
	bool loop_over;			/* past its budget: its connections are read after everyone else's */
	unsigned loop_refs;		/* the loop holds it while charging it (kept even if it counts nothing) */
};

/* A freed buffer whose memory is still held: charged to its owner until it goes. */
struct held {
	TAILQ_ENTRY(held) uid_entry;	/* on its uid's usage.held */
	uid_t uid;
	uint64_t bytes;
	uint64_t kernel_id;
	bool pool;			/* the bytes are pool bytes too */
};

struct registry {
	const struct conf *conf;
	const struct backend_ops *backend;
	void *backend_state;
	struct buffer_list buffers;
	void *by_id;			/* the same buffers by id: a tsearch() tree of &buffer.id */
	void *by_name;			/* the named ones by name: a tsearch() tree of name_bucket.name */
	TAILQ_HEAD(, usage) usage;
	void *by_uid;			/* the same records by uid: a tsearch() tree of &usage.uid */
	uint64_t next_id;
	uint64_t id_mark;		/* ids below it may be in use: stored in the fd store */
	uint64_t n_buffers;
	uint64_t bytes;
	bool fdstore;			/* keep named buffers in systemd's fd store */
	struct worker_pool *workers;	/* NULL: release on this thread (startup, shutdown) */
	/* Held-list changes are stored from a timer (fdstore_start); NULL: at once. */
	struct event *ev_meta;
	bool meta_dirty;		/* a held-list change is not stored yet */
	bool meta_batch;		/* no timer: store held-list changes at fdstore_batch(r, false) */
	uint64_t meta_next;		/* CLOCK_MONOTONIC ns: no deferred store before */
	uint64_t meta_saves;		/* stores of metadata, the id mark's or a uid's (for the tests) */
};

void registry_init(struct registry *r, const struct conf *conf, const struct backend_ops *backend,
		   void *backend_state);
void registry_done(struct registry *r);
struct usage *registry_usage(struct registry *r, uid_t uid, bool create);
void registry_usage_put(struct registry *r, struct usage *u);
struct buffer *registry_find(struct registry *r, uint64_t id);
/* Names are unique per owner: the buffer owner_uid shares under name, or NULL. */
struct buffer *registry_find_name(struct registry *r, uid_t owner_uid, const char *name);
/* The next buffer after after (NULL: the first) shared under name by any owner. */
struct buffer *registry_next_name(struct registry *r, struct buffer *after, const char *name);
/* Account and insert a backend buffer (id 0: a new id); takes it over. */
struct buffer *registry_add(struct registry *r, struct conn *owner, uid_t uid, pid_t pid,
			    const struct backend_buffer *bb, int cache, uint64_t id);
/*
 * The one place a requested size is rounded: up to the backend's unit (its
 * granule(), else the page size). *ret is what the quota is checked against,
 * what is charged and what the backend must make; -ERANGE when size is 0 or
 * the rounded size is over max-buffer-size.
 */
int registry_alloc_size(const struct registry *r, uint64_t size, uint64_t *ret);
/* Charge or uncharge one buffer of size bytes to uid (and the daemon's totals). */
void registry_charge(struct registry *r, uid_t uid, uint64_t size);
void registry_uncharge(struct registry *r, uid_t uid, uint64_t size);
/* Count one more device binding for uid: -EDQUOT over max-bindings-per-uid. */
int registry_binding_charge(struct registry *r, uid_t uid);
void registry_binding_uncharge(struct registry *r, uid_t uid);
/* The same for the pool bytes of a uid (also charged with registry_charge()). */
void registry_charge_pool(struct registry *r, uid_t uid, uint64_t size);
void registry_uncharge_pool(struct registry *r, uid_t uid, uint64_t size);
/* Forget a buffer and release it (and its bindings) on a worker; it stays charged until that is done. */
void registry_free(struct registry *r, struct buffer *b);
/* Release a backend buffer (charged bytes to uid) on a worker, and uncharge it when done. */
void registry_release(struct registry *r, uid_t uid, struct backend_buffer *bb, uint64_t charged);
/* Charge memory the kernel still holds to uid until registry_reap sees it go. */
int registry_add_held(struct registry *r, uid_t uid, uint64_t bytes, uint64_t kernel_id, bool pool);
/*
 * Stop charging uid for its freed buffers whose memory the kernel has now
 * released. Only that uid's held buffers are looked at: one uid's held
 * buffers cost another uid's calls nothing.
 */
void registry_reap(struct registry *r, uid_t uid);
/*
 * The same, unless it already ran for uid in this pass of the worker pool
 * (pass 0: always): the jobs of one uid that one dispatch starts and refuses
 * in a row ask the backend about its held buffers once, not once each.
 */
void registry_reap_once(struct registry *r, uid_t uid, uint64_t pass);
/*
 * Give b the name name (its owner has no other buffer of that name): it is
 * found by name from now on, and listed with its owner's named buffers (for
 * the owner's fd-store metadata). -ENOMEM: b is unchanged.
 */
int registry_set_name(struct registry *r, struct buffer *b, const char *name);
/* The owner went away: free its unnamed buffers, orphan the named ones. */
void registry_owner_gone(struct registry *r, struct conn *owner);

/* ---- physmemd-fdstore.c: named buffers survive restarts ---- */
/* Take systemd's fds: adopt stored buffers, return the listening socket (or -1). */
int fdstore_collect(struct registry *r, bool enable, int *ret_listen_fd);
/* A buffer got a name (or new access lists): store it and its owner's metadata. */
void fdstore_named(struct registry *r, struct buffer *b);
/* A stored buffer is being freed (already off its owner's list): take it out of the store. */
void fdstore_freed(struct registry *r, struct buffer *b);
/* r->next_id passed r->id_mark: store a higher mark before the id goes out. */
void fdstore_reserve_ids(struct registry *r);
/* A held list changed: store them, so that a restart keeps charging them. */
void fdstore_held_changed(struct registry *r);
/*
 * Without the timer (shutdown): on, held-list changes wait; off, what
 * waited is stored, once (freeing every buffer at shutdown would store
 * every uid's held lists once per buffer).
 */
void fdstore_batch(struct registry *r, bool on);
/*
 * Store held-list changes from a timer of base's loop, coalesced: at most
 * one store of every uid's held lists ("held") per META_MIN_GAP and per nine
 * times the last one's cost. Names and frees (a uid's "meta-UID") and the id
 * mark are still stored at once.
 */
int fdstore_start(struct registry *r, struct event_base *base);
/* Store the pending changes now; from here on every change is stored at once. */
void fdstore_stop(struct registry *r);
/*
 * The metadata as stored, malloc()ed text (NULL: out of memory): the id
 * mark ("registry"), every uid's held buffers ("held"), and one uid's named
 * buffers ("meta-UID"; u may be NULL: none).
 */
char *fdstore_meta_mark(struct registry *r);
char *fdstore_meta_held(struct registry *r);
char *fdstore_meta_uid(struct usage *u);
/*
 * Take a stored metadata object's id mark and held list back, those it
 * has. true: it had a valid id mark.
 */
bool fdstore_restore_accounting(struct registry *r, struct json_object *meta);

/* ---- physmemd-policy.c: who may do what ---- */
struct peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	unsigned n_groups;
	gid_t *groups;			/* supplementary groups (allocated; NULL when none) */
};

/* Free what a peer holds. */
void policy_peer_done(struct peer *p);

bool policy_is_owner(const struct peer *p, const struct buffer *b);
bool policy_may_import(const struct peer *p, const struct buffer *b);
bool policy_may_describe(const struct peer *p, const struct buffer *b);
bool policy_may_free(const struct peer *p, const struct buffer *b);
bool policy_may_see_addresses(const struct conf *c, const struct peer *p, const struct buffer *b);
/*
 * May p bind buffers to the PCI device at a (vendor:product, or -1 each when
 * unknown)? Root may; others when a bind-device rule names the device and them.
 */
bool policy_may_bind(const struct conf *c, const struct peer *p, const struct physmem_pci_address *a,
		     int vendor, int product);

/* ---- physmemd-pci.c: what sysfs says about PCI devices ---- */
struct pci_device {
	struct physmem_pci_address address;
	int vendor, product;		/* -1: unknown */
	char driver[64];		/* "" when none */
	int iommu_group;		/* -1: none */
	char group_type[16];		/* the group's default domain type ("DMA", "identity", ...), or "" */
};

/* Read a device's description from conf->pci_sysfs: -ENODEV when it does not exist. */
int pci_device_read(const struct conf *conf, const struct physmem_pci_address *a, struct pci_device *ret);
/* The translation a binding would get, from the group type (-1: cannot tell). */
int pci_device_translation(const struct pci_device *d);
/* NULL when a bind can work, else why not ("vfio", or a short text). */
const char *pci_device_unbindable(const struct pci_device *d);
/*
 * Call fn for every PCI device under conf->pci_sysfs (at most max of them),
 * in directory order; stop when fn returns false.
 */
void pci_device_foreach(const struct conf *conf, unsigned max, bool (*fn)(const struct pci_device *d, void *userdata),
			void *userdata);
/* Whether the peer is root or one of the principals (its primary or a supplementary group counts). */
bool policy_principal_match(const struct principals *pr, const struct peer *p);
/* May this peer allocate from contiguous pools (pool-users)? */
bool policy_may_use_pools(const struct conf *c, const struct peer *p);

/* ---- physmemd-sink.c: client fds are closed in a child process, never here ---- */
/* Start the sink process (call before any client fd arrives). */
int sink_init(struct event_base *base, const struct conf *conf);
void sink_done(void);
/*
 * Get rid of an fd a client sent, or of a client's connection socket: it is
 * closed in the sink, never on the event loop. Takes ownership; cannot fail.
 */
void sink_close(int fd);
/* sink_close(), counted against the uid that sent it (or owns the connection). */
void sink_close_uid(int fd, uid_t uid);
/* sink_close_uid() every fd of a set and empty it. */
void sink_close_fds(struct vl_fds *f, uid_t uid);
/* The fd table is half full of fds for the sink: stop reading fds from anybody, stop accepting. */
bool sink_congested(void);
/* Too many fds of this uid wait to be closed (or sink_congested()): stop reading fds from it. */
bool sink_uid_congested(uid_t uid);
/* Called (from the event loop) once a congestion is over. */
void sink_on_drained(void (*fn)(void *userdata), void *userdata);
/* Every fd handed to sink_close() is closed in this process and acknowledged by the sink (tests). */
bool sink_idle(void);

/* ---- physmemd-server.c: sockets and connections ---- */
struct conn {
	TAILQ_ENTRY(conn) entry;
	struct server *server;
	uint64_t id;
	struct peer peer;
	struct usage *usage;
	struct buffer_list owned;	/* the buffers it made that die with it or are orphaned */
	struct vl_stream stream;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_stall;
	bool closing;			/* close once the output is flushed */
	bool unarmed;			/* libevent could not arm its events: closed from ev_write, made active */
	bool busy;			/* a call of ours is with a worker: read nothing more */
	bool busy_woken;		/* input came while busy: reading is paused until the call is done */
	bool gone;			/* disconnected while busy: freed when the job is done */
	bool sends_fds;			/* has sent fds: paused while the sink is congested */
	bool events_assigned;		/* ev_* (in the same allocation) are set up */
	bool read_low;			/* ev_read is at PRIO_LOW: its uid is past its loop budget */
};

/*
 * The event loop's priorities (libevent runs a lower one only when no higher
 * one has anything ready). Everything runs at PRIO_NORMAL but the reads of
 * a uid past its loop budget, at PRIO_LOW; PRIO_HIGH is what was created
 * before the loop had priorities. server_init() sets them up if main() did not.
 */
enum { PRIO_HIGH = 0, PRIO_NORMAL = 1, PRIO_LOW = 2, PRIO_COUNT = 3 };

struct server {
	struct event_base *base;
	const struct conf *conf;
	struct registry *registry;
	int listen_fd;
	bool listen_owned;		/* we created the socket file */
	struct event *ev_accept;
	struct event *ev_accept_resume;
	struct event *ev_status;		/* coalesces STATUS= updates */
	struct event *ev_budget;	/* the end of the earliest window of a uid past its loop budget */
	uint64_t budget_at;		/* when ev_budget fires, CLOCK_MONOTONIC ns */
	unsigned loop_uids;		/* uids with loop time charged in their window (or past their budget) */
	TAILQ_HEAD(, conn) conns;
	uint64_t n_conns;
	uint64_t next_conn_id;
	uint64_t closes_since_trim;	/* connections closed since the last malloc_trim() */
	struct json_tokener *tok;	/* the parser all connections share */
	uint64_t low_run_start;		/* when the current run of PRIO_LOW reads began (low_run_begin); 0: none */
	struct vl_buf_cache in_bufs;	/* input buffers between messages, for the next read */
	struct conn_pool *pool;		/* where connections live (NULL: the heap) */
};

/*
 * The daemon's event loop, with PRIO_COUNT priorities. (Its PRIO_LOW reads
 * run for about a millisecond before it polls again, timed by the
 * connections' read callbacks: so that a caller within its budget waits for
 * about that, plus the message of a uid past its own being parsed, not for
 * one message per connection of that uid.)
 */
struct event_base *server_event_base_new(void);
/* listen_fd: a socket from systemd, or -1 to bind conf->socket_path. */
int server_init(struct server *s, struct event_base *base, const struct conf *conf,
		struct registry *registry, int listen_fd);
void server_done(struct server *s);
/* Send (or queue) a reply in text form (len bytes, its NUL included), or a vl_writer's. */
struct vl_writer;
void server_reply_text(struct conn *c, const char *text, size_t len, const int *fds, unsigned nfds);
void server_reply_writer(struct conn *c, struct vl_writer *w, const int *fds, unsigned nfds);
/* Queue a reply on a connection; takes ownership of msg. */
void server_reply(struct conn *c, struct json_object *msg, const int *fds, unsigned nfds);
/* The worker job of c's current call is done (its reply queued): carry on, or free a gone c. */
void server_conn_resume(struct conn *c);
/* Tell systemd how things stand (STATUS=...). */
void server_notify_status(struct server *s);

/* ---- physmemd-varlink.c: what the calls mean ---- */
/* Handle one message: queues zero or one reply (or hands the call to a worker, which will). */
void varlink_handle(struct conn *c, struct json_object *msg, struct vl_fds *fds);

int conf_set(struct conf *c, const char *key, const char *value);
int conf_check(const struct conf *c);
