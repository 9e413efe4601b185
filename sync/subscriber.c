/*
 * subscriber.c - the change follower (subscriber.h).
 *
 * DESIGN
 * One thread owns its own PostgreSQL and Redis connections (never shared
 * with the FUSE threads). Its state: @applied, the last change handed to
 * apply() successfully; everything is read "after @applied", so a restart
 * of any backend (or of this thread) resumes where it stopped and a change
 * is never applied twice or skipped:
 *  - Redis mode: one connection, XREAD COUNT 256 BLOCK <long> from
 *    "<applied>-0": the block lasts until the next tick (cfg->tick_ms,
 *    the agent's heartbeat, run on this connection between two XREADs),
 *    at most SUB_BLOCK_MAX_MS, so an idle follower costs Redis one
 *    command per tick, not one a second. vs_sub_stop() does not touch
 *    the connection (which reconnects inside calls, so its descriptor
 *    may be reused at any time): it writes to @wake_fd, an eventfd that
 *    the XREAD's reply is awaited on together with the socket
 *    (vs_redis_command_wake()), and that the backoff sleeps wait on.
 *    An entry beyond applied+1 means a gap (trimmed stream, relay
 *    restarted, entry rejected): the missing changes are read from
 *    PostgreSQL's change feed first. An entry that fails validation
 *    is re-read from PostgreSQL; one that PostgreSQL does not know (a
 *    forged id beyond the database's sequence) is ignored, and the
 *    follower then polls the database for new changes once a second
 *    until the stream moves past it.
 *    With a verify key (cfg->verify, sign.h) every entry, the one at
 *    applied+1 included, must carry the relay's valid signature; one that
 *    does not is treated as absent: that change is read from PostgreSQL,
 *    and while PostgreSQL does not have it (a forged entry ahead of the
 *    database) @applied stays where it is, so the real change that later
 *    takes that seq is applied (from the feed, or from the stream once
 *    the relay has replaced the forged entry).
 *  - PostgreSQL mode: LISTEN file_changes; on each wake-up (or every
 *    second) read the change feed after @applied. NOTIFY payloads are only
 *    wake-ups: the feed is the data. Only a payload naming this project
 *    wakes the follower (vs_pg_wait_notify()): any role may NOTIFY on
 *    the channel, and a flood of other projects' or junk payloads must
 *    not cost a feed query each, on every mount.
 * A failing backend is retried with exponential backoff (100 ms .. 5 s)
 * and jitter; a Redis connection that was up and dropped is retried
 * after a random delay of 0..SUB_RECONNECT_SPREAD_MS first, so that
 * thousands of agents losing one Redis server do not all reconnect in
 * the same 100 ms. @stop is checked whenever @wake_fd is readable, and
 * at least once a second in PostgreSQL mode.
 */
#include "vsync/subscriber.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vsync/change.h"
#include "vsync/clock.h"
#include "vsync/log.h"
#include "vsync/metrics.h"
#include "vsync/pg.h"
#include "vsync/redis.h"
#include "vsync/util.h"
#include "vsync/sign.h"
#include "vsync/status.h"
#include "vsync/banned.h"

#define SUB_BLOCK_MS 1000 /* PostgreSQL mode: wait for a NOTIFY */
/* Redis mode: the longest XREAD BLOCK (a dead peer that sent no RST is
 * noticed after this plus the deadline) */
#define SUB_BLOCK_MAX_MS	60000
#define SUB_RECONNECT_SPREAD_MS 1000
#define SUB_BATCH		256
#define SUB_BACKOFF_MIN_MS	100
#define SUB_BACKOFF_MAX_MS	5000

struct vs_sub {
	char *pg_url, *redis_url;
	char project_id[VS_UUID_BUFSZ];
	int timeout_ms;
	vs_sub_apply_fn apply;
	void *arg;
	const struct vs_sign_key *verify; /* NULL: entries are trusted */
	vs_sub_tick_fn tick;
	void *tick_arg;
	int tick_ms, tick_soon_ms;

	pthread_t thread;
	atomic_bool stop;
	int wake_fd; /* eventfd: readable once vs_sub_stop() was called */
	atomic_llong applied;

	/* owned by the thread */
	struct vs_pg *pg;
	struct vs_redis *redis;
	bool listening;
	int64_t next_tick_ms; /* vs_mono_ms() of the next tick */
	int64_t ignored_seq;  /* last forged stream id logged */
	/* the last unverified stream id logged and counted */
	int64_t unverified_seq;
};

/* Sleep @ms, or until vs_sub_stop(). */
static void sleep_ms(struct vs_sub *s, int ms)
{
	int64_t until = vs_mono_ms() + ms;

	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = {.fd = s->wake_fd, .events = POLLIN};
		int64_t left = until - vs_mono_ms();

		if (left <= 0 || poll(&pfd, 1, (int)left) > 0)
			break;
	}
}

static int pg_ensure(struct vs_sub *s)
{
	int r;

	if (!s->pg_url)
		return -ENOTCONN;
	if (s->pg)
		return 0;
	r = vs_pg_open(&s->pg, s->pg_url, s->timeout_ms);
	s->listening = false;
	return r;
}

static void pg_reset(struct vs_sub *s)
{
	vs_pg_free(s->pg);
	s->pg = NULL;
	s->listening = false;
}

/* Hand @c to apply(); on success it is the new @applied. */
static int deliver(struct vs_sub *s, const struct vs_change *c)
{
	int r = s->apply(s->arg, c);

	if (r == -ESTALE) {
		vs_error("change %" PRId64 " (%s '%s') does not fit the tree: "
			 "skipped",
			 c->seq, vs_change_op_name(c->op), c->path);
		r = 0;
	}
	if (r == 0 && s->tick && s->tick_soon_ms > 0) {
		int64_t soon = vs_mono_ms() + s->tick_soon_ms;

		if (soon < s->next_tick_ms)
			s->next_tick_ms =
			    soon; /* (the follower's own thread) */
	}
	if (r < 0) {
		vs_warn("cannot apply change %" PRId64 " (%s '%s'): %s; will "
			"retry",
			c->seq, vs_change_op_name(c->op), c->path,
			strerror(-r));
		return r;
	}
	if (c->conflict)
		vs_warn("conflict on '%s': change %" PRId64
			" (by %s) overwrote "
			"v%lld, which stays in history",
			c->path, c->seq, c->author[0] ? c->author : "?",
			(long long)c->conflict);
	atomic_store(&s->applied, c->seq);
	return 0;
}

/* One row of vsync_change_feed() -> @c. */
static int row_to_change(PGresult *res, int row, struct vs_change *c, char *why,
			 size_t whylen)
{
	const char *names[13];
	const char *values[13];
	size_t lengths[13];
	char mode[16];
	int n = PQnfields(res);

	if (n > 13)
		n = 13;
	for (int i = 0; i < n; i++) {
		names[i] = PQfname(res, i);
		values[i] =
		    PQgetisnull(res, row, i) ? NULL : PQgetvalue(res, row, i);
		lengths[i] = (size_t)PQgetlength(res, row, i);
		if (values[i] && strcmp(names[i], "mode") == 0) {
			/* SQL gives decimal; the change format is octal */
			snprintf(mode, sizeof(mode), "%lo",
				 strtoul(values[i], NULL, 10));
			values[i] = mode;
			lengths[i] = strlen(mode);
		}
	}
	return vs_change_parse(c, names, values, lengths, (size_t)n, why,
			       whylen);
}

/*
 * Deliver change @c of feed row @row of @res, with the content the row
 * carries in its column VS_FEED_CONTENT (vs_pg_feed) as @c's data:
 * like a stream entry's, checked against the hash before use.
 */
static int deliver_with_content(struct vs_sub *s, struct vs_change *c,
				const PGresult *res, int row)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	if (PQnfields(res) > VS_FEED_CONTENT &&
	    !PQgetisnull(res, row, VS_FEED_CONTENT)) {
		buf = PQunescapeBytea((const unsigned char *)PQgetvalue(
					  res, row, VS_FEED_CONTENT),
				      &len);
		if (buf) {
			c->data = buf;
			c->data_len = len;
		}
	}
	r = deliver(s, c);
	c->data = NULL;
	c->data_len = 0;
	PQfreemem(buf);
	return r;
}

/*
 * Apply the changes after @applied up to @upto (INT64_MAX: all) from
 * PostgreSQL's change feed. 0 when done (even if the feed ended before
 * @upto), -errno on a backend failure or a failed apply.
 */
static int feed_fill(struct vs_sub *s, int64_t upto)
{
	struct vs_change *c = malloc(sizeof(*c));
	char why[256];
	PGresult *res = NULL;
	int r = 0;

	if (!c)
		return -ENOMEM;
	while (!atomic_load(&s->stop)) {
		int64_t applied = atomic_load(&s->applied);
		int64_t want = upto - applied;
		int limit = want > SUB_BATCH ? SUB_BATCH : (int)want;
		int rows;

		if (want <= 0)
			break;
		r = pg_ensure(s);
		if (r < 0)
			break;
		/* small content comes along: no vsync_blob() round trip per
		 * change for it */
		r = vs_pg_feed(s->pg, s->project_id, applied, limit,
			       VS_FEED_CONTENT_MAX, &res);
		if (r < 0) {
			vs_warn("cannot read changes of project %s after "
				"%" PRId64 ": %s",
				s->project_id, applied,
				vs_pg_last_error(s->pg));
			pg_reset(s);
			break;
		}
		rows = PQntuples(res);
		for (int i = 0; i < rows && r == 0; i++) {
			if (row_to_change(res, i, c, why, sizeof(why)) < 0) {
				/* the database itself holds a bad change:
				 * nothing better will come; skip it */
				vs_error("skipping invalid change from "
					 "PostgreSQL: %s",
					 why);
				atomic_store(&s->applied,
					     atomic_load(&s->applied) + 1);
				continue;
			}
			if (c->seq != atomic_load(&s->applied) + 1)
				vs_warn(
				    "change feed jumps from %lld to %" PRId64,
				    (long long)atomic_load(&s->applied),
				    c->seq);
			r = deliver_with_content(s, c, res, i);
		}
		PQclear(res);
		res = NULL;
		if (r < 0 || rows < limit)
			break;
	}
	free(c);
	return r;
}

/* ---- Redis mode -------------------------------------------------------- */

static void redis_reset(struct vs_sub *s)
{
	vs_redis_free(s->redis);
	s->redis = NULL;
}

/* Handle one stream entry. Returns 0, or -errno to stop the batch. */
static int stream_entry(struct vs_sub *s, const redisReply *e,
			struct vs_change *c, bool *progress)
{
	const char *names[32], *values[32];
	size_t lengths[32], n = 0;
	const redisReply *f;
	int64_t seq, applied = atomic_load(&s->applied);
	char why[256];
	int r;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    vs_change_parse_id(e->element[0]->str, &seq) < 0) {
		vs_warn("ignoring stream entry with a malformed id in project "
			"%s",
			s->project_id);
		return 0;
	}
	if (seq <= applied)
		return 0;
	if (seq > applied + 1) {
		r = feed_fill(s, seq - 1);
		if (r == -ENOTCONN) {
			/* no database configured: nothing can fill it */
			vs_warn("changes %" PRId64 "..%" PRId64
				" are missing from the stream of project %s",
				applied + 1, seq - 1, s->project_id);
		} else if (r < 0) {
			return r;
		} else if (atomic_load(&s->applied) < seq - 1) {
			if (s->ignored_seq != seq)
				vs_warn("ignoring stream entry %" PRId64
					": the database has no such change",
					seq);
			s->ignored_seq = seq;
			return 0;
		} else {
			*progress = true;
		}
	}
	f = e->element[1];
	if (f->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i + 1 < f->elements && n < 32; i += 2) {
			if (f->element[i]->type != REDIS_REPLY_STRING ||
			    f->element[i + 1]->type != REDIS_REPLY_STRING)
				continue;
			names[n] = f->element[i]->str;
			values[n] = f->element[i + 1]->str;
			lengths[n] = f->element[i + 1]->len;
			n++;
		}
	}
	r = vs_change_parse(c, names, values, lengths, n, why, sizeof(why));
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (strcmp(names[i], "data") == 0) {
			c->data = (const uint8_t *)values[i];
			c->data_len = lengths[i];
		}
	}
	if (r == 0 && c->seq != seq) {
		snprintf(why, sizeof(why),
			 "entry %" PRId64 " says seq %" PRId64, seq, c->seq);
		r = -EBADMSG;
	}
	if (r == 0 && s->verify) {
		size_t siglen;
		const char *sig =
		    vs_sign_field(names, values, lengths, n, &siglen);

		if (vs_sign_change_verify(s->verify, s->project_id, c, sig,
					  siglen) < 0) {
			if (s->unverified_seq != seq) {
				vs_metrics_redis_unverified();
				vs_warn("unverified stream entry %" PRId64
					" of project %s (%s '%.200s'): %s; "
					"reading change %" PRId64
					" from PostgreSQL",
					seq, s->project_id,
					vs_change_op_name(c->op), c->path,
					sig ? "bad signature" : "unsigned",
					seq);
			}
			s->unverified_seq = seq;
			r = feed_fill(s, seq);
			if (r == 0 && atomic_load(&s->applied) >= seq)
				*progress = true;
			return r == -ENOTCONN ? 0 : r;
		}
	}
	if (r < 0) {
		vs_warn("rejected stream entry %" PRId64 " of project %s: %s; "
			"reading it from PostgreSQL",
			seq, s->project_id, why);
		r = feed_fill(s, seq);
		if (r == 0 && atomic_load(&s->applied) >= seq)
			*progress = true;
		return r;
	}
	r = deliver(s, c);
	if (r == 0)
		*progress = true;
	return r;
}

static int redis_step(struct vs_sub *s)
{
	char key[VS_REDIS_KEY_MAX], from[32], count[16], block[16];
	const char *argv[8];
	redisReply *reply = NULL;
	struct vs_change *c = NULL;
	bool progress = false, any = false;
	int64_t block_ms = SUB_BLOCK_MAX_MS;
	int r;

	if (!s->redis) {
		/* no catch-up from PostgreSQL here: the stream holds what
		 * happened while we were away, and 100,000 agents
		 * reconnecting after a Redis restart must not all query the
		 * database; gaps are filled entry by entry below */
		r = vs_redis_open(&s->redis, s->redis_url, s->timeout_ms);
		if (r < 0)
			return r;
		vs_status_following(true, "redis"); /* before XREAD blocks */
	}
	if (s->tick) {
		int64_t now = vs_mono_ms();

		if (now >= s->next_tick_ms) {
			s->tick(s->tick_arg, s->redis);
			s->next_tick_ms = now + s->tick_ms;
		}
		block_ms = s->next_tick_ms - now;
		if (block_ms > SUB_BLOCK_MAX_MS)
			block_ms = SUB_BLOCK_MAX_MS;
		if (block_ms < 1)
			block_ms = 1;
	}
	vs_redis_key_events(key, s->project_id);
	snprintf(from, sizeof(from), "%lld-0",
		 (long long)atomic_load(&s->applied));
	snprintf(count, sizeof(count), "%d", SUB_BATCH);
	snprintf(block, sizeof(block), "%lld", (long long)block_ms);
	argv[0] = "XREAD";
	argv[1] = "COUNT";
	argv[2] = count;
	argv[3] = "BLOCK";
	argv[4] = block;
	argv[5] = "STREAMS";
	argv[6] = key;
	argv[7] = from;
	r = vs_redis_command_wake(s->redis, &reply, 8, argv, NULL, s->wake_fd,
				  (int)block_ms + s->timeout_ms);
	if (r == -ECANCELED) /* vs_sub_stop() */
		return 0;
	if (r < 0) {
		vs_warn("cannot read events of project %s from Redis: %s",
			s->project_id, vs_redis_last_error(s->redis));
		redis_reset(s);
		return r;
	}
	c = malloc(sizeof(*c));
	if (!c) {
		freeReplyObject(reply);
		return -ENOMEM;
	}
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
	    reply->element[0]->type == REDIS_REPLY_ARRAY &&
	    reply->element[0]->elements == 2) {
		const redisReply *entries = reply->element[0]->element[1];

		for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY &&
				   i < entries->elements;
		     i++) {
			any = true;
			r = stream_entry(s, entries->element[i], c, &progress);
			if (r < 0)
				break;
		}
	}
	free(c);
	freeReplyObject(reply);
	if (r < 0)
		return r;
	if (any && !progress) {
		/* only forged entries past our position: poll the database
		 * (the source of truth) and do not spin on the stream */
		r = feed_fill(s, INT64_MAX);
		sleep_ms(s, 1000);
		return r == -ENOTCONN ? 0 : r;
	}
	return 0;
}

/* ---- PostgreSQL mode --------------------------------------------------- */

static int pg_step(struct vs_sub *s)
{
	int r;

	r = pg_ensure(s);
	if (r < 0)
		return r;
	if (!s->listening) {
		r = vs_pg_listen(s->pg, "file_changes");
		if (r < 0) {
			pg_reset(s);
			return r;
		}
		s->listening = true;
		vs_status_following(true, "postgres");
	}
	r = feed_fill(s, INT64_MAX);
	if (r < 0)
		return r;
	if (!s->pg)
		return -ECONNRESET;
	/* another project's NOTIFY, or junk (any role may send one), is
	 * no reason to query: only this project's ends the wait early */
	r = vs_pg_wait_notify(s->pg, s->project_id, SUB_BLOCK_MS);
	if (r < 0) {
		pg_reset(s);
		return r;
	}
	return 0;
}

/* What this follower reads changes from, for the sync state. */
static const char *sub_backend(const struct vs_sub *s)
{
	return s->redis_url ? "redis" : "postgres";
}

static void *sub_main(void *arg)
{
	struct vs_sub *s = arg;
	struct vs_backoff backoff;
	bool down = false, up = false;

	pthread_setname_np(pthread_self(), "vs-follow");
	vs_backoff_init(&backoff, SUB_BACKOFF_MIN_MS, SUB_BACKOFF_MAX_MS);
	/* the first tick at once: the agent's heartbeat (it may be the
	 * first one: the keeper leaves them to the follower) */
	s->next_tick_ms = vs_mono_ms();

	while (!atomic_load(&s->stop)) {
		int r = s->redis_url ? redis_step(s) : pg_step(s);

		if (r == 0) {
			if (!up)
				vs_status_following(true, sub_backend(s));
			up = true;
			if (down)
				vs_info("following project %s again (at change "
					"%lld)",
					s->project_id,
					(long long)atomic_load(&s->applied));
			down = false;
			vs_backoff_reset(&backoff);
			continue;
		}
		if (up || !down)
			vs_status_following(false, sub_backend(s));
		if (!down) {
			vs_warn("cannot follow project %s: %s; retrying with "
				"backoff",
				s->project_id, strerror(-r));
			/* spread the reconnects of every agent that lost
			 * this server at the same moment */
			if (s->redis_url)
				sleep_ms(s,
					 (int)(vs_jitter_rand(&backoff.rng) %
					       (SUB_RECONNECT_SPREAD_MS + 1)));
		}
		down = true;
		up = false;
		sleep_ms(s, vs_backoff_next(&backoff));
	}
	vs_pg_free(s->pg);
	s->pg = NULL;
	redis_reset(s);
	return NULL;
}

int vs_sub_start(struct vs_sub **out, const struct vs_sub_config *cfg,
		 vs_sub_apply_fn apply, void *arg)
{
	struct vs_sub *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->wake_fd = -1;
	s->pg_url = cfg->pg ? strdup(cfg->pg) : NULL;
	s->redis_url = cfg->redis ? strdup(cfg->redis) : NULL;
	if ((cfg->pg && !s->pg_url) || (cfg->redis && !s->redis_url)) {
		r = -ENOMEM;
		goto fail;
	}
	snprintf(s->project_id, sizeof(s->project_id), "%s", cfg->project_id);
	s->timeout_ms = cfg->timeout_ms;
	s->apply = apply;
	s->arg = arg;
	s->verify = cfg->verify;
	s->tick = cfg->tick_ms > 0 ? cfg->tick : NULL;
	s->tick_arg = cfg->tick_arg;
	s->tick_ms = cfg->tick_ms;
	s->tick_soon_ms = cfg->tick_soon_ms;
	atomic_init(&s->applied, cfg->start_seq);
	atomic_init(&s->stop, false);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&s->thread, NULL, sub_main, s);
	if (r < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	free(s->pg_url);
	free(s->redis_url);
	free(s);
	return r;
}

void vs_sub_stop(struct vs_sub *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	atomic_store(&s->stop, true);
	if (write(s->wake_fd, &one, sizeof(one)) != sizeof(one))
		vs_warn("cannot wake the follower: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	close(s->wake_fd);
	free(s->pg_url);
	free(s->redis_url);
	free(s);
}

int64_t vs_sub_seq(struct vs_sub *s)
{
	return atomic_load(&s->applied);
}
