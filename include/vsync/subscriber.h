/*
 * subscriber.h - follow a project's committed changes and hand them, in
 * sequence order with no gap, to an apply function (sync/subscriber.c).
 *
 * With a Redis URL it reads the project's stream (XREAD BLOCK from the last
 * applied seq), filling any gap - and re-reading any entry that fails
 * validation - from PostgreSQL's change feed. Without one it LISTENs on
 * file_changes and reads the change feed (the small-deployment mode).
 * Backends that are down are retried with backoff and jitter; nothing here
 * ever blocks a FUSE request.
 */
#ifndef VSYNC_SUBSCRIBER_H
#define VSYNC_SUBSCRIBER_H

#include <stdint.h>

struct vs_change;
struct vs_redis;
struct vs_sign_key;
struct vs_sub;

/*
 * Periodic work that needs Redis (the agent's heartbeat), run on the
 * follower's own connection between two XREADs, so that an idle agent
 * holds one Redis connection. Runs on the follower's thread; must not
 * keep @rd, and must bound its own calls (the connection's deadline).
 */
typedef void (*vs_sub_tick_fn)(void *arg, struct vs_redis *rd);

struct vs_sub_config {
	const char *pg;	   /* conninfo; NULL: no PostgreSQL (stream only) */
	const char *redis; /* URL; NULL: LISTEN/NOTIFY mode */
	const char *project_id;
	int timeout_ms;	   /* deadline of each backend call */
	int64_t start_seq; /* the change the tree already reflects */
	/* the relay's public key (sign.h): stream entries without its valid
	 * signature are ignored and read from PostgreSQL; NULL: trusted.
	 * Not copied: it must outlive the follower. */
	const struct vs_sign_key *verify;
	/* Redis mode: run tick(tick_arg, connection) every tick_ms (first
	 * after tick_ms); an idle XREAD blocks until the next tick. 0: no
	 * tick (XREAD blocks SUB_BLOCK_MAX_MS, a minute). */
	vs_sub_tick_fn tick;
	void *tick_arg;
	int tick_ms;
	/* and within tick_soon_ms after a change was applied, if that is
	 * sooner (0: only every tick_ms) */
	int tick_soon_ms;
};

/*
 * Apply one change. Return 0 once applied (or when there was nothing to
 * do), -EIO (or another -errno) to have it retried later, -ESTALE when the
 * change does not fit the tree (it is logged and skipped).
 */
typedef int (*vs_sub_apply_fn)(void *arg, const struct vs_change *c);

/* Start the follower thread. 0 or -errno (nothing started). Strings of
 * @cfg are copied. */
int vs_sub_start(struct vs_sub **out, const struct vs_sub_config *cfg,
		 vs_sub_apply_fn apply, void *arg);
/* Stop and join the thread (at once in Redis mode, within about a second
 * in PostgreSQL mode, plus a change being applied or one backend
 * deadline), then free. NULL is fine. */
void vs_sub_stop(struct vs_sub *s);
/* The last change applied. */
int64_t vs_sub_seq(struct vs_sub *s);

#endif
