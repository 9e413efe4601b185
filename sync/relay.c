/*
 * relay.c - vsync-relay's logic (relay.h): committed changes in PostgreSQL
 * become Redis blobs, manifest updates, stream entries and pub/sub events.
 *
 * DESIGN
 *
 * One thread, three connections: a vs_pg for queries, a raw libpq
 * connection that only LISTENs on 'file_changes' (its socket is what the
 * relay sleeps on), and a vs_redis. NOTIFY payloads are hints ("project X
 * changed"), never data: the relay reads vsync_change_feed() from the
 * project's cursor, which lives in Redis (relay:{id}:cursor; a hinted
 * round starts from the cursor this relay last read or set, without a
 * GET: the script refuses a change above the cursor + 1). Every
 * project is scanned at start, after the LISTEN connection is (re)made
 * (notifications may have been lost meanwhile) and every poll interval;
 * a notification scans its project at once. Any role may NOTIFY on the
 * channel, so a payload that is not a hint (vs_pg_notify_parse()) is
 * ignored, a project this relay has not relayed is asked for before
 * anything is read or kept for it, and hints beyond RELAY_PENDING_MAX
 * projects at once cost at most one extra full scan per poll interval:
 * a flood of NOTIFYs never makes the relay rescan every tenant's project
 * in a loop.
 *
 * Publishing change N of project P (publish_change()):
 *  1. its content goes to blob:{P}:<hash>, the bytes checked against the
 *     hash first: content of VS_FEED_CONTENT_MAX bytes or less came
 *     with the change feed and is SET by the script of step 2 (no round
 *     trip of its own); larger content is put unless it is there (EXPIRE
 *     answers that and refreshes the TTL in one round trip) or over
 *     --blob-max;
 *  2. ONE Lua script (RELAY_SCRIPT) does, atomically:
 *       SET blob:{P}:<hash> (small content, step 1)
 *       XADD events:{P} MAXLEN ~ M N-0 <fields>
 *     and if Redis refuses the id (not above the stream's last one:
 *     another relay published N already, with the same script, and the
 *     cursor is at N or past it) it returns 0; with the cursor below N
 *     (its key lost) an entry with our fields is taken as published, and
 *     anything else at N or above was written by no relay and replaced.
 *     Otherwise it
 *     applies the change's rows to manifest:{P} (HSET / HDEL), SETs the
 *     cursor to N and PUBLISHes the JSON event on project.P.files.
 *     Publishing inside the script means exactly the relay whose XADD
 *     won announces the change, and a relay killed half-way leaves
 *     nothing half-done.
 *  Induction gives exactly-once, in-order, gap-free streams with any
 *  number of relays: a relay starts at the cursor (everything up to it is
 *  in the stream, as the script moves both together) and goes up one
 *  change at a time; its XADD of N succeeds only if the stream ends
 *  below N, i.e. at N-1. A remembered cursor (hinted rounds) is at most
 *  the one in Redis - other relays only move it up - unless Redis lost
 *  it, and then the script refuses the change (cursor below N-1) and the
 *  relay reads the cursor.
 *
 * With a signing key (cfg->sign_key, sign.h) the entry carries a "sig"
 * field and each manifest value a "sig1:<base64> " prefix. Relays that
 * share the key may still sign different entries for one change (the
 * signature covers delta_base, which one relay may put and another not):
 * whichever comes second keeps the first's, as the cursor says it was
 * published. An entry above the cursor was written by no relay, and is
 * replaced.
 *
 * The manifest delta of a change is every project_files row stamped with
 * its seq (vsync_change_rows()): live rows are HSET, tombstones HDEL. That
 * covers what one path per change does not: parent directories created on
 * the way, a recursive delete, a directory rename (the moved subtree's new
 * rows and the old paths' tombstones). So manifest:{P} always reflects
 * exactly the change in relay:{P}:cursor, with no snapshot rebuild and no
 * window where a newer manifest sits under an older cursor. A batch of
 * pure updates (in-place edits of files and symlinks: one row each, the
 * one the feed row is read from) takes its rows from the feed itself and
 * skips that query (feed_rows_only()).
 *
 * A change that fails validation (vs_change_parse(): bad path, kind, hash
 * ...) is logged and skipped: the script is run without the XADD, so its
 * valid manifest rows are applied and the cursor moves on (guarded by
 * "cursor is below N"), and the stream has a gap at N which agents fill
 * from PostgreSQL, where they validate again. One bad row never blocks a
 * project's stream. Manifest rows with an invalid path are left out.
 *
 * Failures: any backend error ends the current round; the relay backs off
 * (100 ms doubling to 5 s, with jitter) and starts over from the cursors
 * in Redis, so nothing is lost or repeated. Each backend's state change
 * is logged once ("redis unreachable: ...; retrying", "redis back").
 *
 * Names: after relaying a project (every project on a full scan, a
 * hinted one after its changes) the relay SETs name:{<name>} to the
 * project's id, signed like the rest ("vsync-name-v1", sign.h), so a
 * mount by name finds the id in Redis (docs/protocol.md, "Redis").
 *
 * Trees and bundles: after a project's changes the relay rebuilds its
 * tree:{id} (the whole manifest, signed once) and the bundles of its
 * small files behind them, at most once a second and every 10 s
 * respectively (relay_trees(), "tree snapshots" and "bundles" below).
 *
 * Signals: the caller keeps the stop signals blocked; they are unblocked
 * only inside ppoll() (so a wait ends at once) and looked for with
 * sigpending() between changes, so a change is always finished.
 */
#include "vsync/clock.h"
#include "vsync/relay.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vsync/blob.h"
#include "vsync/delta.h"
#include "vsync/hash.h"
#include "vsync/log.h"
#include "vsync/path.h"
#include "vsync/pg.h"
#include "vsync/prefetch.h"
#include "vsync/redis.h"
#include "vsync/util.h"
#include "vsync/sign.h"
#include "vsync/tree.h"
#include "vsync/banned.h"

#define RELAY_CHANNEL	     "file_changes"
#define RELAY_PENDING_MAX    256 /* hinted projects kept; more: full scan */
#define RELAY_BACKOFF_MIN_MS 100
#define RELAY_BACKOFF_MAX_MS 5000
/* content up to this size travels in the stream entry too (field "data"),
 * so agents apply a small edit without a GET: one round trip less per
 * agent and change, and one command less per agent for Redis */
#define RELAY_INLINE_MAX 1024
/* files from this size on carry a delta against their previous version */
#define RELAY_DELTA_MIN (64 * 1024)

/*
 * KEYS: events, manifest, cursor [, blob].
 * ARGV: seq, maxlen, channel, json, publish (1/0), nfields, fields...,
 *       nops, then per op "S" path value | "D" path; with the blob key,
 *       then its TTL (s, 0: none) and its value (encoded, blob.h), SET
 *       before anything else but the cursor check below, whatever the
 *       script does next (the content is checked against its hash
 *       already, so a second relay's SET is the same).
 * Returns 1 (published), 0 (already published by another relay: the
 * cursor is at <seq> or past it, and only this script moves it, with its
 * XADD; the entry is not compared with ours, which may differ in what
 * each relay could compute - delta_base, data - and so in the signature.
 * Or, with the cursor below <seq> - a cursor key lost, say evicted - the
 * entry at <seq>-0 has exactly our fields but those two and the
 * signature over them: the cursor is raised to <seq>), 2 (skipped change
 * applied to the manifest), 3 (published after removing forged entries: the
 * stream held other entries at or above <seq>-0 with the cursor below <seq>, so
 * no relay wrote them; they are deleted and the stream's last id moved back, so
 * one forged entry cannot block a project's stream) or 4 (nothing done: the
 * cursor is below <seq> - 1, so the relay's idea of it was wrong - Redis lost
 * data, or someone reset it - and it must read the cursor again).
 */
static const char RELAY_SCRIPT[] =
    "local function core(t, from, to)\n"
    "  local o = {}\n"
    "  for k = from, to, 2 do\n"
    "    if t[k] ~= 'delta_base' and t[k] ~= 'data' and t[k] ~= 'sig' "
    "then\n"
    "      o[#o + 1] = t[k]\n"
    "      o[#o + 1] = t[k + 1]\n"
    "    end\n"
    "  end\n"
    "  return o\n"
    "end\n"
    "local seq = tonumber(ARGV[1])\n"
    "local nf = tonumber(ARGV[6])\n"
    "local cur = tonumber(redis.call('GET', KEYS[3]) or '0') or 0\n"
    "if cur < seq - 1 then return 4 end\n"
    "if KEYS[4] then\n"
    "  if tonumber(ARGV[#ARGV - 1]) > 0 then\n"
    "    redis.call('SET', KEYS[4], ARGV[#ARGV], 'EX', ARGV[#ARGV - 1])\n"
    "  else\n"
    "    redis.call('SET', KEYS[4], ARGV[#ARGV])\n"
    "  end\n"
    "end\n"
    "local ret = 2\n"
    "if ARGV[5] == '1' then\n"
    "  local x = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], ARGV[1] .. '-0'}\n"
    "  for i = 7, 6 + nf do x[#x + 1] = ARGV[i] end\n"
    "  local r = redis.pcall(unpack(x))\n"
    "  if type(r) == 'table' and r.err then\n"
    "    if not string.find(r.err, 'equal or smaller', 1, true) then\n"
    "      return r\n"
    "    end\n"
    "    if cur >= seq then return 0 end\n"
    "    local id = ARGV[1] .. '-0'\n"
    "    local e = redis.call('XRANGE', KEYS[1], id, id)\n"
    "    local same = #e == 1\n"
    "    if same then\n"
    "      local a = core(e[1][2], 1, #e[1][2])\n"
    "      local b = core(ARGV, 7, 6 + nf)\n"
    "      same = #a == #b\n"
    "      for k = 1, #a do\n"
    "        if not same then break end\n"
    "        same = a[k] == b[k]\n"
    "      end\n"
    "    end\n"
    "    if same then\n"
    "      redis.call('SET', KEYS[3], ARGV[1])\n"
    "      return 0\n"
    "    end\n"
    "    local bad = redis.call('XRANGE', KEYS[1], id, '+')\n"
    "    for _, it in ipairs(bad) do redis.call('XDEL', KEYS[1], it[1]) end\n"
    "    redis.pcall('XSETID', KEYS[1], (seq - 1) .. '-0')\n"
    "    r = redis.pcall(unpack(x))\n"
    "    if type(r) == 'table' and r.err then return r end\n"
    "    ret = 3\n"
    "  else\n"
    "    ret = 1\n"
    "  end\n"
    "elseif cur >= seq then\n"
    "  return 0\n"
    "end\n"
    "local i = 7 + nf\n"
    "local nops = tonumber(ARGV[i])\n"
    "i = i + 1\n"
    "for k = 1, nops do\n"
    "  if ARGV[i] == 'S' then\n"
    "    redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 2])\n"
    "    i = i + 3\n"
    "  else\n"
    "    redis.call('HDEL', KEYS[2], ARGV[i + 1])\n"
    "    i = i + 2\n"
    "  end\n"
    "end\n"
    "redis.call('SET', KEYS[3], ARGV[1])\n"
    "if ret ~= 2 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end\n"
    "return ret\n";

/* ---- pure helpers ------------------------------------------------------ */

int vs_relay_entry_format(char *out, size_t size,
			  const struct vs_manifest_entry *e)
{
	int n;

	n = snprintf(out, size, "%s %o %" PRIu64 " %" PRId64 " %" PRId64 " %s",
		     vs_kind_name(e->kind), (unsigned)(e->mode & 07777),
		     e->size, e->version, e->mtime_ns,
		     e->kind == VS_KIND_DIR || !e->hash[0] ? "-" : e->hash);
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	if (e->kind == VS_KIND_SYMLINK && e->target) {
		size_t tl = strlen(e->target);

		if ((size_t)n + 1 + tl >= size)
			return -ENOSPC;
		out[n++] = ' ';
		memcpy(out + n, e->target, tl + 1);
		n += (int)tl;
	}
	return n;
}

/* Next space-separated token of [*p, end) as a NUL-terminated copy. */
static int entry_token(char *tok, size_t size, const char **p, const char *end)
{
	const char *s = *p, *sp = memchr(s, ' ', (size_t)(end - s));
	size_t n = (size_t)((sp ? sp : end) - s);

	if (n == 0 || n >= size)
		return -EBADMSG;
	memcpy(tok, s, n);
	tok[n] = '\0';
	*p = sp ? sp + 1 : end;
	return 0;
}

int vs_relay_entry_parse(struct vs_manifest_entry *e, const char *value,
			 size_t len)
{
	const char *p = value, *end = value + len;
	char tok[VS_HASH_HEX_LEN + 1];
	uint64_t u;
	int64_t v;
	int i;

	e->target = NULL;
	e->hash[0] = '\0';
	for (i = 0; i < 6; i++) {
		if (p >= end || entry_token(tok, sizeof(tok), &p, end) < 0)
			return -EBADMSG;
		switch (i) {
		case 0:
			if (vs_kind_parse(tok, &e->kind) < 0)
				return -EBADMSG;
			break;
		case 1:
			if (vs_parse_u64(&u, tok, 8, 0, 07777) < 0)
				return -EBADMSG;
			e->mode = (uint32_t)u;
			break;
		case 2:
			/* as manifest.c: a size must fit in an off_t */
			if (vs_parse_u64(&u, tok, 10, 0, (uint64_t)INT64_MAX) <
			    0)
				return -EBADMSG;
			e->size = u;
			break;
		case 3:
		case 4:
			if (vs_parse_i64(&v, tok, 10, 0, INT64_MAX) < 0)
				return -EBADMSG;
			if (i == 3)
				e->version = v;
			else
				e->mtime_ns = v;
			break;
		case 5:
			if (e->kind == VS_KIND_DIR) {
				if (strcmp(tok, "-") != 0)
					return -EBADMSG;
			} else {
				if (!vs_hash_hex_valid(tok))
					return -EBADMSG;
				memcpy(e->hash, tok, sizeof(e->hash));
			}
			break;
		}
	}
	if (e->kind == VS_KIND_SYMLINK) {
		/* the rest is the target: value is NUL-terminated by Redis
		 * replies and by the formatter */
		if (p >= end || p[-1] != ' ' ||
		    (size_t)(end - p) > VS_PATH_MAX ||
		    memchr(p, '\0', (size_t)(end - p)))
			return -EBADMSG;
		e->target = (char *)p;
	} else if (p != end || end[-1] == ' ') {
		return -EBADMSG;
	}
	return 0;
}

/* Append @s as a JSON string (quoted, escaped). */
static int json_str(char *out, size_t size, size_t *n, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;

	if (*n + 2 >= size)
		return -ENOSPC;
	out[(*n)++] = '"';
	for (; *p; p++) {
		if (*n + 7 >= size)
			return -ENOSPC;
		if (*p == '"' || *p == '\\') {
			out[(*n)++] = '\\';
			out[(*n)++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			memcpy(out + *n, "\\u00", 4);
			out[*n + 4] = hex[*p >> 4];
			out[*n + 5] = hex[*p & 15];
			*n += 6;
		} else {
			out[(*n)++] = (char)*p;
		}
	}
	out[(*n)++] = '"';
	out[*n] = '\0';
	return 0;
}

static int json_raw(char *out, size_t size, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int json_raw(char *out, size_t size, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(out + *n, size - *n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= size - *n)
		return -ENOSPC;
	*n += (size_t)k;
	return 0;
}

static const char *event_type(enum vs_change_op op)
{
	switch (op) {
	case VS_OP_CREATE:
	case VS_OP_MKDIR:
		return "file.created";
	case VS_OP_UPDATE:
	case VS_OP_ROLLBACK:
		return "file.updated";
	case VS_OP_DELETE:
		return "file.deleted";
	case VS_OP_RENAME:
		return "file.renamed";
	}
	return "file.updated";
}

int vs_relay_event_json(char *out, size_t size, const struct vs_change *c,
			const char *project_id)
{
	time_t secs = (time_t)(c->state.mtime_ns / 1000000000);
	long ms = (long)((c->state.mtime_ns % 1000000000) / 1000000);
	struct tm tm;
	char ts[64];
	size_t n = 0;
	int r = 0;

	if (size < 2)
		return -ENOSPC;
	gmtime_r(&secs, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ms);
	r = r
		?: json_raw(out, size, &n, "{\"type\":\"%s\",\"project_id\":",
			    event_type(c->op));
	r = r ?: json_str(out, size, &n, project_id);
	r = r ?: json_raw(out, size, &n, ",\"path\":");
	r = r ?: json_str(out, size, &n, c->path);
	r = r ?: json_raw(out, size, &n, ",\"old_path\":");
	if (c->op == VS_OP_RENAME)
		r = r ?: json_str(out, size, &n, c->old_path);
	else
		r = r ?: json_raw(out, size, &n, "null");
	r = r
		?: json_raw(out, size, &n,
			    ",\"kind\":\"%s\",\"version\":%" PRId64
			    ",\"checksum\":",
			    vs_kind_name(c->state.kind), c->state.version);
	if (c->op != VS_OP_DELETE && c->state.hash[0])
		r = r ?: json_str(out, size, &n, c->state.hash);
	else
		r = r ?: json_raw(out, size, &n, "null");
	r = r ?: json_raw(out, size, &n, ",\"author\":");
	r = r ?: json_str(out, size, &n, c->author);
	if (c->conflict > 0) /* only then; "seq" stays the last key */
		r = r
			?: json_raw(out, size, &n, ",\"conflict\":%" PRId64,
				    c->conflict);
	r = r
		?: json_raw(out, size, &n,
			    ",\"timestamp\":\"%s\",\"seq\":%" PRId64 "}", ts,
			    c->seq);
	return r < 0 ? r : (int)n;
}

/* ---- state ------------------------------------------------------------- */

struct relay {
	const struct vs_relay_config *cfg;
	struct vs_pg *pg; /* queries */
	PGconn *listen;	  /* LISTEN only; NULL while down */
	struct vs_redis *redis;
	char script_sha[41]; /* "" until loaded */
	bool pg_down, redis_down;
	bool full_scan; /* scan every project next */
	int64_t next_poll_ms;
	/* hints were lost (more than RELAY_PENDING_MAX projects at once):
	 * a full scan finds their changes, but at most one such scan per
	 * poll interval (any role may NOTIFY, so a flood is cheap), the last
	 * one at @overflow_ms */
	bool overflow;
	int64_t overflow_ms;
	uint64_t full_scans;	/* logged at debug, "full scan N" */
	uint64_t junk_notifies; /* payloads ignored: not a hint */
	char pending[RELAY_PENDING_MAX][VS_UUID_BUFSZ];
	int64_t pending_seq[RELAY_PENDING_MAX]; /* the highest seq hinted */
	int npending;
	bool pending_known_only; /* every pending project is known */
	sigset_t wait_mask; /* the caller's mask without the stop signals */
	struct vs_backoff backoff; /* between failed rounds */
	/* per change scratch, reused */
	char *buf; /* manifest entry values */
	size_t buf_len, buf_alloc;
	struct relay_value {
		size_t off, len; /* in buf */
	} * vals;
	size_t nvals, vals_alloc;
	const char **argv; /* of the EVALSHA */
	size_t *argvlen;
	size_t argv_alloc;
	char *json;   /* VS_RELAY_EVENT_MAX */
	uint8_t *inl; /* the change's content when small (field "data") */
	size_t inl_len;
	uint8_t *blob; /* encoded content the script SETs, or NULL */
	size_t blob_len;
	/* name:{<name>} written since Redis was last (re)connected: the
	 * project id and a hash of the name, open addressing */
	struct relay_name {
		char id[VS_UUID_BUFSZ]; /* "": free slot */
		uint64_t name_hash;
	} * names;
	size_t names_used, names_size; /* size: 0 or a power of two */
	/* tree:{id} of each project seen (tree_note), rebuilt behind the
	 * changes (relay_trees), and the project's cursor */
	struct relay_tree {
		char id[VS_UUID_BUFSZ];
		/* relay:{id}:cursor as this relay last read or set it, -1
		 * unknown: a hinted round starts from it without a GET (the
		 * script refuses a change above cursor + 1) */
		int64_t cursor;
		int64_t built;	 /* seq of the tree in Redis; -1 unknown */
		int64_t want;	 /* the cursor: build at this seq */
		int64_t last_ms; /* when this relay last built it */
		char *index;	 /* its bundle index (tree.h), or NULL */
		size_t index_len;
		int64_t bundles_ms; /* when the bundles were last built */
	} * trees;
	size_t ntrees, trees_alloc;
};

static bool relay_stopping(const struct relay *rl)
{
	sigset_t pend;
	int s;

	if (*rl->cfg->stop)
		return true;
	if (!rl->cfg->stop_signals || sigpending(&pend) < 0)
		return false;
	for (s = 1; s < NSIG; s++)
		if (sigismember(rl->cfg->stop_signals, s) == 1 &&
		    sigismember(&pend, s) == 1)
			return true;
	return false;
}

/* Sleep @ms, or less if a stop signal or (with @fd >= 0) input comes. */
static void relay_wait(struct relay *rl, int fd, int64_t ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct timespec ts;

	if (ms < 0)
		ms = 0;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	ppoll(fd >= 0 ? &p : NULL, fd >= 0 ? 1 : 0, &ts, &rl->wait_mask);
}

/* Log a backend's state change once. */
static void relay_backend_down(struct relay *rl, bool redis, const char *why)
{
	bool *down = redis ? &rl->redis_down : &rl->pg_down;

	if (!*down)
		vs_warn("%s unreachable: %s; retrying",
			redis ? "redis" : "postgres", why);
	*down = true;
}

/* Forget which names were published: a Redis that was away may have
 * lost them (a restart without persistence, a failover). */
static void names_forget(struct relay *rl)
{
	if (rl->names_used)
		memset(rl->names, 0, rl->names_size * sizeof(*rl->names));
	rl->names_used = 0;
}

/* Forget which trees are in Redis, for the same reason. */
static void trees_forget(struct relay *rl)
{
	for (size_t i = 0; i < rl->ntrees; i++) {
		rl->trees[i].built = -1;
		rl->trees[i].cursor = -1;
	}
}

static void relay_backend_up(struct relay *rl, bool redis)
{
	bool *down = redis ? &rl->redis_down : &rl->pg_down;

	if (*down)
		vs_info("%s back", redis ? "redis" : "postgres");
	if (*down && redis) {
		names_forget(rl);
		trees_forget(rl);
	}
	*down = false;
}

static bool conn_error(int r)
{
	return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EACCES;
}

/* Report a Redis failure @r; a connection-level one marks Redis down. */
static int redis_failed(struct relay *rl, int r, const char *what)
{
	if (conn_error(r))
		relay_backend_down(rl, true, vs_redis_last_error(rl->redis));
	else
		vs_error("redis: %s: %s", what, vs_redis_last_error(rl->redis));
	return r;
}

static int pg_failed(struct relay *rl, int r, const char *what)
{
	if (conn_error(r))
		relay_backend_down(rl, false, vs_pg_last_error(rl->pg));
	else
		vs_error("postgres: %s: %s", what, vs_pg_last_error(rl->pg));
	return r;
}

/* ---- LISTEN connection --------------------------------------------------- */

/*
 * libpq's notification API needs the connection's socket, which struct
 * vs_pg does not expose, so the LISTEN connection is a bare PGconn made
 * by vs_pg_connect_conn() (pg.c's connect: non-blocking, with a deadline).
 */
static int listen_wait(PGconn *c, bool wr, int64_t deadline)
{
	struct pollfd p = {.fd = PQsocket(c), .events = wr ? POLLOUT : POLLIN};
	int64_t left = deadline - vs_mono_ms();

	if (p.fd < 0)
		return -EBADF;
	if (left <= 0)
		return -ETIMEDOUT;
	if (poll(&p, 1, (int)left) == 0)
		return -ETIMEDOUT;
	return 0;
}

static void listen_drop(struct relay *rl)
{
	if (rl->listen) {
		PQfinish(rl->listen);
		rl->listen = NULL;
	}
}

static int listen_connect(struct relay *rl)
{
	int64_t deadline = vs_mono_ms() + rl->cfg->timeout_ms;
	char err[512];
	PGresult *res;
	int r;

	r = vs_pg_connect_conn(&rl->listen, rl->cfg->pg_conninfo, "vsync-relay",
			       rl->cfg->timeout_ms, err, sizeof(err));
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		relay_backend_down(
		    rl, false,
		    r == -ETIMEDOUT ? "LISTEN connection timed out" : err);
		return r == -ETIMEDOUT ? r : -ECONNREFUSED;
	}
	r = -ECONNREFUSED;
	if (!PQsendQuery(rl->listen, "LISTEN " RELAY_CHANNEL))
		goto fail;
	while ((r = PQflush(rl->listen)) > 0)
		if ((r = listen_wait(rl->listen, true, deadline)) < 0)
			goto fail;
	if (r < 0) {
		r = -ECONNREFUSED;
		goto fail;
	}
	for (;;) {
		while (PQisBusy(rl->listen)) {
			r = listen_wait(rl->listen, false, deadline);
			if (r < 0)
				goto fail;
			if (!PQconsumeInput(rl->listen)) {
				r = -ECONNREFUSED;
				goto fail;
			}
		}
		res = PQgetResult(rl->listen);
		if (!res)
			break;
		r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -EIO;
		PQclear(res);
		if (r < 0)
			goto fail;
	}
	return 0;
fail:
	relay_backend_down(rl, false,
			   r == -ETIMEDOUT ? "LISTEN connection timed out"
					   : PQerrorMessage(rl->listen));
	listen_drop(rl);
	return r < 0 ? r : -ECONNREFUSED;
}

static bool project_known(struct relay *rl, const char *id);

static void pending_add(struct relay *rl, const char *id, int64_t seq)
{
	int i;

	for (i = 0; i < rl->npending; i++) {
		if (!strcmp(rl->pending[i], id)) {
			if (seq > rl->pending_seq[i])
				rl->pending_seq[i] = seq;
			return;
		}
	}
	if (rl->npending == RELAY_PENDING_MAX) {
		/* the scan comes with the poll, or sooner if none came
		 * because of an overflow within the last poll interval */
		int64_t at = rl->overflow_ms + rl->cfg->poll_interval_ms;

		if (at < rl->next_poll_ms)
			rl->next_poll_ms = at;
		if (!rl->overflow)
			vs_debug("hints of more than %d projects at once: "
				 "a full scan in %" PRId64 " ms at most",
				 RELAY_PENDING_MAX,
				 rl->next_poll_ms - vs_mono_ms());
		rl->overflow = true;
		/* a project this relay has relayed goes before one it has
		 * not (an id anyone could have made up): a flood of such ids
		 * does not hold a real change back until that scan */
		if (rl->pending_known_only || !project_known(rl, id))
			return;
		for (i = 0; i < rl->npending; i++) {
			if (!project_known(rl, rl->pending[i])) {
				rl->pending_seq[i] = seq;
				memcpy(rl->pending[i], id, VS_UUID_BUFSZ);
				return;
			}
		}
		rl->pending_known_only = true;
		return;
	}
	rl->pending_known_only = false;
	rl->pending_seq[rl->npending] = seq;
	memcpy(rl->pending[rl->npending++], id, VS_UUID_BUFSZ);
}

/* Read what arrived on the LISTEN connection. 0 or -ECONNREFUSED. */
static int listen_drain(struct relay *rl)
{
	PGnotify *n;
	char id[VS_UUID_BUFSZ];
	int64_t seq;

	if (!PQconsumeInput(rl->listen)) {
		relay_backend_down(rl, false, PQerrorMessage(rl->listen));
		listen_drop(rl);
		return -ECONNREFUSED;
	}
	while ((n = PQnotifies(rl->listen))) {
		/* any role may NOTIFY: junk names no change (and the poll
		 * would find one it meant), so it costs nothing */
		if (vs_pg_notify_parse(n->extra, id, &seq) == 0) {
			pending_add(rl, id, seq);
		} else {
			rl->junk_notifies++;
			vs_debug("NOTIFY ignored: its payload is not a hint "
				 "(%zu bytes; %" PRIu64 " so far)",
				 strlen(n->extra), rl->junk_notifies);
		}
		PQfreemem(n);
	}
	return 0;
}

/* ---- Redis helpers ------------------------------------------------------- */

static int redis_cursor(struct relay *rl, const char *id, int64_t *cursor)
{
	char key[VS_REDIS_KEY_MAX], *end;
	const char *argv[2] = {"GET", key};
	redisReply *rep = NULL;
	int r;

	*cursor = 0;
	vs_redis_key_cursor(key, id);
	r = vs_redis_command(rl->redis, &rep, 2, argv, NULL);
	if (r < 0)
		return redis_failed(rl, r, "GET cursor");
	if (rep->type == REDIS_REPLY_STRING) {
		errno = 0;
		*cursor = strtoll(rep->str, &end, 10);
		if (errno || *end || *cursor < 0) {
			vs_error("bad cursor '%.40s' in %s: starting from 0",
				 rep->str, key);
			*cursor = 0;
		}
	}
	freeReplyObject(rep);
	return 0;
}

static int script_load(struct relay *rl)
{
	const char *argv[3] = {"SCRIPT", "LOAD", RELAY_SCRIPT};
	redisReply *rep = NULL;
	int r;

	r = vs_redis_command(rl->redis, &rep, 3, argv, NULL);
	if (r < 0)
		return redis_failed(rl, r, "SCRIPT LOAD");
	if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
		freeReplyObject(rep);
		vs_error("redis: unexpected answer to SCRIPT LOAD");
		return -EIO;
	}
	memcpy(rl->script_sha, rep->str, 40);
	rl->script_sha[40] = '\0';
	freeReplyObject(rep);
	return 0;
}

/* Is blob @hash of @id in Redis? (EXPIRE refreshes its TTL too.) */
static int blob_present(struct relay *rl, const char *id, const char *hash)
{
	char key[VS_REDIS_KEY_MAX];
	int r;

	vs_redis_key_blob(key, id, hash);
	r = vs_redis_expire(rl->redis, key, rl->cfg->blob_ttl_s);
	return r < 0 ? redis_failed(rl, r, "EXPIRE blob") : r;
}

/* Does the content of change @c, @buf (@len bytes), match its hash? 1
 * yes; 0 no (logged: it is left out of Redis); -errno. */
static int content_matches(const char *id, const struct vs_change *c,
			   const uint8_t *buf, size_t len)
{
	char got[VS_HASH_HEX_LEN + 1];
	int r = vs_sha256_hex(got, buf, len);

	if (r < 0)
		return r;
	if (strcmp(got, c->state.hash) == 0)
		return 1;
	vs_error("change %" PRId64 " of %s: content of '%s' does not "
		 "match its checksum %s; not cached",
		 c->seq, id, c->path, c->state.hash);
	return 0;
}

/*
 * The content of change @c came with the feed (@hex: its bytea column as
 * text, "\\x..."): check it against the hash and keep it, encoded, in
 * rl->blob for the publish script to SET (and in rl->inl when small
 * enough for the entry). Content that does not match is logged and left
 * out. 0 or -errno (-ENOMEM).
 */
static int blob_from_feed(struct relay *rl, const char *id,
			  const struct vs_change *c, const char *hex)
{
	uint8_t *buf;
	size_t len = 0;
	int r;

	buf = PQunescapeBytea((const unsigned char *)hex, &len);
	if (!buf)
		return -ENOMEM;
	r = content_matches(id, c, buf, len);
	if (r <= 0)
		goto out;
	r = vs_blob_encode(&rl->blob, &rl->blob_len, buf, len,
			   VS_BLOB_LZ4_THRESHOLD);
	if (r < 0)
		goto out;
	if (len <= RELAY_INLINE_MAX) {
		rl->inl = malloc(len ? len : 1);
		if (!rl->inl) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(rl->inl, buf, len);
		rl->inl_len = len;
	}
out:
	PQfreemem(buf);
	return r;
}

/* Pieces of VS_REDIS_CHUNK_SIZE in a chunk of PostgreSQL's. */
#define CHUNK_PIECES (VS_CHUNK_SIZE / VS_REDIS_CHUNK_SIZE)

/* Chunked content being put into Redis: vs_pg_chunks_fetch's sink. */
struct chunk_pub {
	struct relay *rl;
	const char *id;
	uint64_t size;
	const char *names; /* the chunks' names, from PostgreSQL */
	const bool *want;  /* the chunks fetched (the others are known) */
	size_t k;	   /* the next chunk fetched */
	char *shas;	   /* the index: each piece's SHA-256 in hex */
	size_t n;	   /* its length in pieces */
	struct vs_sha256 whole;
	int redis_r; /* a failed SET (reported) */
};

/* Is the index of chunked content @hash (@size bytes, @n pieces) in
 * Redis, with its pieces? Their TTLs are refreshed if so (two round
 * trips: the index, then one script), and the index is in @shas if not
 * NULL. 1, 0 or -errno. The index is believed only with this relay's own
 * signature (a signing relay's; an unsigned one trusts Redis, as its
 * mounts do): a chunk's index goes into the index the relay signs for a
 * new version, so what Redis holds must not be able to choose it. An
 * index it cannot verify (another key's, altered) is put again. */
static int chunks_present(struct relay *rl, const char *id, const char *hash,
			  uint64_t size, size_t n, char *shas)
{
	redisReply *rep = NULL;
	char *own = NULL;
	int r;

	r = vs_redis_chunks_index_get(rl->redis, id, hash, &rep);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return redis_failed(rl, r, "GET chunk index");
	if (!shas && !(shas = own = malloc(n * VS_HASH_HEX_LEN))) {
		freeReplyObject(rep);
		return -ENOMEM;
	}
	r = vs_sign_chunks_decode(rep->str, rep->len, rl->cfg->sign_key, id,
				  hash, size, shas, n) < 0
		? 0
		: vs_redis_chunks_touch(rl->redis, id, hash, shas, n,
					rl->cfg->blob_ttl_s);
	freeReplyObject(rep);
	free(own);
	return r < 0 ? redis_failed(rl, r, "EXPIRE chunks") : r;
}

/* Sign and SET the index of content @hash (@size bytes): @n pieces. */
static int chunks_index_publish(struct relay *rl, const char *id,
				const char *hash, uint64_t size,
				const char *shas, size_t n)
{
	uint8_t *val = NULL;
	size_t vlen = 0;
	int r;

	r = vs_sign_chunks_encode(&val, &vlen, rl->cfg->sign_key, id, hash,
				  size, shas, n);
	if (r < 0)
		return r;
	r = vs_redis_chunks_index_put(rl->redis, id, hash, val, vlen,
				      rl->cfg->blob_ttl_s);
	free(val);
	return r < 0 ? redis_failed(rl, r, "SET chunk index") : 0;
}

/* A chunk from PostgreSQL (checked against its name): SET as its pieces
 * of VS_REDIS_CHUNK_SIZE, then its own index (chunks:{id}:<its name>),
 * so that the next version that has it finds its pieces without reading
 * it again. */
static int chunk_pub_sink(void *arg, const uint8_t *buf, size_t len)
{
	struct chunk_pub *cp = arg;
	struct relay *rl = cp->rl;
	char hex[VS_HASH_HEX_LEN + 1], name[VS_HASH_HEX_LEN + 1];
	size_t first, i;
	int r = 0;

	while (cp->want && !cp->want[cp->k])
		cp->k++;
	first = cp->k * CHUNK_PIECES;
	vs_sha256_update(&cp->whole, buf, len);
	vs_redis_set_timeout(
	    rl->redis,
	    vs_size_timeout_ms(rl->cfg->timeout_ms, VS_REDIS_CHUNK_SIZE));
	i = first;
	for (size_t off = 0; r == 0 && off < len; off += VS_REDIS_CHUNK_SIZE) {
		size_t n = len - off < VS_REDIS_CHUNK_SIZE
			       ? len - off
			       : VS_REDIS_CHUNK_SIZE;

		if (i == cp->n) {
			r = -EIO; /* more bytes than the change's size */
			break;
		}
		r = vs_sha256_hex(hex, buf + off, n);
		if (r < 0)
			break;
		memcpy(cp->shas + i++ * VS_HASH_HEX_LEN, hex, VS_HASH_HEX_LEN);
		/* a piece another version has put already is kept */
		r = vs_redis_piece_touch(rl->redis, cp->id, hex,
					 rl->cfg->blob_ttl_s);
		if (r == 0)
			r = vs_redis_piece_put(rl->redis, cp->id, hex,
					       buf + off, n,
					       rl->cfg->blob_ttl_s);
		else if (r > 0)
			r = 0;
		if (r < 0)
			cp->redis_r = redis_failed(rl, r, "SET piece");
	}
	vs_redis_set_timeout(rl->redis, rl->cfg->timeout_ms);
	if (r == 0) {
		memcpy(name, cp->names + cp->k * VS_HASH_HEX_LEN,
		       VS_HASH_HEX_LEN);
		name[VS_HASH_HEX_LEN] = '\0';
		r = chunks_index_publish(rl, cp->id, name, len,
					 cp->shas + first * VS_HASH_HEX_LEN,
					 i - first);
		if (r < 0)
			cp->redis_r = r;
	}
	cp->k++;
	return r;
}

/* Which chunks of @cp must be read from PostgreSQL: those whose pieces
 * are not in Redis with the chunk's own index (their pieces are then in
 * the index, their TTLs refreshed). The number to read, or -errno. */
static long chunks_wanted(struct chunk_pub *cp, bool *want, size_t nc)
{
	char name[VS_HASH_HEX_LEN + 1];
	long fetch = 0;

	for (size_t k = 0; k < nc; k++) {
		uint64_t len = vs_chunk_len(cp->size, k);
		size_t np = (size_t)((len + VS_REDIS_CHUNK_SIZE - 1) /
				     VS_REDIS_CHUNK_SIZE);
		int r;

		memcpy(name, cp->names + k * VS_HASH_HEX_LEN, VS_HASH_HEX_LEN);
		name[VS_HASH_HEX_LEN] = '\0';
		r = chunks_present(cp->rl, cp->id, name, len, np,
				   cp->shas +
				       k * CHUNK_PIECES * VS_HASH_HEX_LEN);
		if (r < 0)
			return r;
		want[k] = r == 0;
		fetch += r == 0;
	}
	return fetch;
}

/*
 * Put content @hash (@size bytes, over a chunk) of change @c into Redis
 * as pieces, then its index, signed, last: a mount that finds the index
 * finds every piece. The chunks are listed from PostgreSQL first, and
 * only those not cut into pieces before (each chunk's own index) are
 * read: an edit of a few bytes of a large file reads one chunk. When
 * every chunk is read, content whose chunks do not make up @hash gets no
 * index; else the relay has not seen the whole, and the mounts' check
 * of the whole (which they always make) stands alone.
 */
static int chunks_publish(struct relay *rl, const char *id,
			  const struct vs_change *c)
{
	const char *hash = c->state.hash;
	uint64_t size = c->state.size;
	size_t n =
	    (size_t)((size + VS_REDIS_CHUNK_SIZE - 1) / VS_REDIS_CHUNK_SIZE);
	size_t nc = (size_t)((size + VS_CHUNK_SIZE - 1) / VS_CHUNK_SIZE);
	struct chunk_pub cp = {.rl = rl, .id = id, .size = size, .n = n};
	char got[VS_HASH_HEX_LEN + 1], *names = NULL;
	bool *want = NULL;
	long fetch = 0;
	int r;

	r = chunks_present(rl, id, hash, size, n, NULL);
	if (r != 0)
		return r < 0 ? r : 0;
	cp.shas = malloc(n * VS_HASH_HEX_LEN);
	names = malloc(nc * VS_HASH_HEX_LEN);
	want = calloc(nc, sizeof(*want));
	if (!cp.shas || !names || !want || vs_sha256_init(&cp.whole) < 0) {
		r = -ENOMEM;
		goto out;
	}
	cp.names = names;
	r = vs_pg_chunks_list(rl->pg, id, hash, size, names);
	if (r == -ENOENT) { /* stored whole: mounts read PostgreSQL */
		r = 0;
		goto out;
	}
	if (r < 0) {
		r = pg_failed(rl, r, "list chunks");
		goto out;
	}
	fetch = chunks_wanted(&cp, want, nc);
	if (fetch < 0) {
		r = (int)fetch;
		goto out;
	}
	if (fetch > 0) {
		cp.want = (size_t)fetch < nc ? want : NULL;
		r = vs_pg_chunks_fetch(rl->pg, id, hash, size, cp.want,
				       vs_pg_get_timeout(rl->pg),
				       chunk_pub_sink, &cp);
	}
	vs_sha256_final_hex(&cp.whole, got);
	if (r < 0 && !cp.redis_r)
		r = pg_failed(rl, r, "fetch chunks");
	if (r < 0)
		goto out;
	if ((size_t)fetch == nc && strcmp(got, hash) != 0) {
		vs_error("change %" PRId64 " of %s: the chunks of '%s' do not "
			 "make up its checksum %s; not cached",
			 c->seq, id, c->path, hash);
		goto out;
	}
	vs_info("change %" PRId64 " of %s: '%s': %ld of %zu chunks read "
		"from PostgreSQL, the others' pieces already in Redis",
		c->seq, id, c->path, fetch, nc);
	r = chunks_index_publish(rl, id, hash, size, cp.shas, n);
out:
	free(want);
	free(names);
	free(cp.shas);
	return r;
}

/* Put the content of change @c into Redis unless there or too big.
 * Content PostgreSQL no longer has, or whose bytes do not match, is
 * logged and left out (agents then read PostgreSQL). Content put now of
 * RELAY_INLINE_MAX bytes or less is handed to the caller in *@inl (free
 * it), for the stream entry; else *@inl stays NULL. */
static int blob_publish(struct relay *rl, const char *id,
			const struct vs_change *c, uint8_t **inl,
			size_t *inl_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r, tmo;

	if (c->op == VS_OP_DELETE || c->state.kind == VS_KIND_DIR ||
	    !c->state.hash[0] || c->state.size > rl->cfg->blob_max)
		return 0;
	if (c->state.size > VS_CHUNK_SIZE)
		return chunks_publish(rl, id, c);
	r = blob_present(rl, id, c->state.hash);
	if (r != 0)
		return r < 0 ? r : 0;
	tmo = vs_pg_get_timeout(rl->pg);
	vs_pg_set_timeout(rl->pg, vs_size_timeout_ms(tmo, c->state.size));
	r = vs_pg_blob_fetch(rl->pg, id, c->state.hash, &buf, &len);
	vs_pg_set_timeout(rl->pg, tmo);
	if (r == -ENOENT) {
		vs_warn("change %" PRId64 " of %s: no content %.12s in "
			"PostgreSQL; not cached",
			c->seq, id, c->state.hash);
		return 0;
	}
	if (r < 0)
		return pg_failed(rl, r, "fetch blob");
	r = content_matches(id, c, buf, len);
	if (r <= 0)
		goto out;
	vs_redis_set_timeout(rl->redis,
			     vs_size_timeout_ms(rl->cfg->timeout_ms, len));
	r = vs_redis_blob_put(rl->redis, id, c->state.hash, buf, len,
			      rl->cfg->blob_ttl_s);
	vs_redis_set_timeout(rl->redis, rl->cfg->timeout_ms);
	if (r < 0)
		r = redis_failed(rl, r, "SET blob");
	if (r == 0 && len <= RELAY_INLINE_MAX) {
		*inl = buf;
		*inl_len = len;
		buf = NULL;
	}
out:
	free(buf);
	return r;
}

/* Fetch content @hash of @id from PostgreSQL and check it. 0 or -errno. */
static int delta_fetch(struct relay *rl, const char *id, const char *hash,
		       uint64_t size, uint8_t **buf, size_t *len)
{
	char got[VS_HASH_HEX_LEN + 1];
	int r, tmo = vs_pg_get_timeout(rl->pg);

	vs_pg_set_timeout(rl->pg, vs_size_timeout_ms(tmo, size));
	r = vs_pg_blob_fetch(rl->pg, id, hash, buf, len);
	vs_pg_set_timeout(rl->pg, tmo);
	if (r < 0)
		return r;
	r = vs_sha256_hex(got, *buf, *len);
	if (r == 0 && strcmp(got, hash) != 0)
		r = -EBADMSG;
	if (r < 0) {
		free(*buf);
		*buf = NULL;
	}
	return r;
}

/*
 * "Small edits travel small": for a file of RELAY_DELTA_MIN bytes or more
 * whose path had a live version with content just before this one, put
 * delta:{P}:<base>:<hash> (a librsync delta from that content) and set
 * c->delta_base, when the delta is under half the file. Best effort: any
 * failure leaves c->delta_base empty (a debug line) and the change is
 * published as usual; the full blob is there either way.
 */
static void delta_publish(struct relay *rl, const char *id, struct vs_change *c)
{
	char ver[24], base[VS_HASH_HEX_LEN + 1];
	const char *v[3] = {id, c->path, ver};
	uint8_t *old = NULL, *cur = NULL, *delta = NULL;
	size_t olen = 0, clen = 0, dlen = 0;
	PGresult *res = NULL;
	const char *why = NULL;
	int r;

	c->delta_base[0] = '\0';
	if ((c->op != VS_OP_CREATE && c->op != VS_OP_UPDATE &&
	     c->op != VS_OP_ROLLBACK) ||
	    c->state.kind != VS_KIND_FILE || c->state.size < RELAY_DELTA_MIN ||
	    c->state.size > rl->cfg->blob_max || c->state.version < 2 ||
	    c->state.size > VS_CHUNK_SIZE) /* (both sides whole in memory) */
		return;
	snprintf(ver, sizeof(ver), "%" PRId64, c->state.version - 1);
	r = vs_pg_exec(rl->pg, &res,
		       "SELECT h.content_hash FROM vsync_history($1, $2) h"
		       " WHERE h.version = $3 AND NOT h.is_deleted"
		       " AND h.kind = 'file' AND h.content_hash IS NOT NULL",
		       3, v, NULL, NULL, 0);
	if (r < 0) {
		why = "cannot read the previous version";
		goto out;
	}
	if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != VS_HASH_HEX_LEN) {
		why = "no previous version with content";
		goto out;
	}
	memcpy(base, PQgetvalue(res, 0, 0), sizeof(base));
	if (!vs_hash_hex_valid(base) || !strcmp(base, c->state.hash)) {
		why = "previous content is the same";
		goto out;
	}
	r = delta_fetch(rl, id, base, c->state.size, &old, &olen);
	r = r ?: delta_fetch(rl, id, c->state.hash, c->state.size, &cur, &clen);
	if (r < 0) {
		why = "cannot read the contents";
		goto out;
	}
	r = vs_delta_make(old, olen, cur, clen, &delta, &dlen);
	if (r < 0) {
		why = "cannot compute the delta";
		goto out;
	}
	if (dlen >= clen / 2) {
		why = "delta not small enough";
		goto out;
	}
	r = vs_redis_delta_put(rl->redis, id, base, c->state.hash, delta, dlen,
			       rl->cfg->blob_ttl_s);
	if (r < 0) {
		why = "cannot SET the delta";
		goto out;
	}
	memcpy(c->delta_base, base, sizeof(base));
	vs_debug("project %s change %" PRId64 ": delta for '%s' is %zu bytes "
		 "(file %zu)",
		 id, c->seq, c->path, dlen, clen);
out:
	if (why)
		vs_debug("project %s change %" PRId64 ": no delta for '%s': %s",
			 id, c->seq, c->path, why);
	PQclear(res);
	free(old);
	free(cur);
	free(delta);
}

/* ---- one change ---------------------------------------------------------- */

static int argv_reserve(struct relay *rl, size_t n)
{
	const char **a;
	size_t *l, want = rl->argv_alloc ? rl->argv_alloc : 64;

	if (n <= rl->argv_alloc)
		return 0;
	while (want < n)
		want *= 2;
	a = realloc(rl->argv, want * sizeof(*a));
	if (!a)
		return -ENOMEM;
	rl->argv = a;
	l = realloc(rl->argvlen, want * sizeof(*l));
	if (!l)
		return -ENOMEM;
	rl->argvlen = l;
	rl->argv_alloc = want;
	return 0;
}

/* Append @len bytes (+NUL) to the value buffer; their offset or -ENOMEM. */
static long buf_append(struct relay *rl, const char *s, size_t len)
{
	size_t want = rl->buf_alloc ? rl->buf_alloc : 65536;
	char *b;
	long off;

	while (rl->buf_len + len + 1 > want)
		want *= 2;
	if (want != rl->buf_alloc) {
		b = realloc(rl->buf, want);
		if (!b)
			return -ENOMEM;
		rl->buf = b;
		rl->buf_alloc = want;
	}
	off = (long)rl->buf_len;
	memcpy(rl->buf + rl->buf_len, s, len);
	rl->buf[rl->buf_len + len] = '\0';
	rl->buf_len += len + 1;
	return off;
}

/* Columns of vsync_change_feed(), in the order relay_project() asks. */
enum {
	FEED_SEQ,
	FEED_OP,
	FEED_PATH,
	FEED_OLD_PATH,
	FEED_KIND,
	FEED_MODE,
	FEED_SIZE,
	FEED_HASH,
	FEED_VERSION,
	FEED_MTIME,
	FEED_TARGET,
	FEED_AUTHOR,
	FEED_CONFLICT,
	FEED_NCOLS,		  /* the change's fields; then: */
	FEED_CONTENT = FEED_NCOLS /* small content (bytea) or NULL */
};
_Static_assert(FEED_CONTENT == VS_FEED_CONTENT, "vs_pg_feed's columns");
static const char *const feed_names[FEED_NCOLS] = {
    "seq",  "op",      "path",	   "old_path", "kind",	 "mode",     "size",
    "hash", "version", "mtime_ns", "target",   "author", "conflict",
};
enum {
	ROW_SEQ,
	ROW_PATH,
	ROW_DELETED,
	ROW_KIND,
	ROW_MODE,
	ROW_SIZE,
	ROW_HASH,
	ROW_VERSION,
	ROW_MTIME,
	ROW_TARGET,
	ROW_NCOLS
};

/*
 * Where the columns of a manifest row are in a result: a
 * vsync_change_rows() result, or a vsync_change_feed() one whose rows are
 * each the one live row its change produced (feed_rows_only()). The same
 * values either way (the feed takes them from that very row), so the
 * manifest value and its signature are the same bytes.
 */
struct row_cols {
	int seq, path, deleted, kind, mode, size, hash, version, mtime, target;
};
static const struct row_cols rows_cols = {
    ROW_SEQ,  ROW_PATH, ROW_DELETED, ROW_KIND,	ROW_MODE,
    ROW_SIZE, ROW_HASH, ROW_VERSION, ROW_MTIME, ROW_TARGET,
};
static const struct row_cols feed_cols = {
    FEED_SEQ,	 FEED_PATH,    -1 /* never a tombstone */,
    FEED_KIND,	 FEED_MODE,    FEED_SIZE,
    FEED_HASH,	 FEED_VERSION, FEED_MTIME,
    FEED_TARGET,
};

/* The manifest delta of one change: rows [from, to) of @res. */
struct change_rows {
	PGresult *res;
	const struct row_cols *col;
	int from, to;
};

/* Append one argument. @len is the byte count; for a manifest value
 * (@s NULL) it is the index of the value in rl->vals, resolved to a
 * pointer into rl->buf once the buffer no longer moves. */
static int push(struct relay *rl, size_t *n, const char *s, size_t len)
{
	if (argv_reserve(rl, *n + 1) < 0)
		return -ENOMEM;
	rl->argv[*n] = s;
	rl->argvlen[*n] = len;
	(*n)++;
	return 0;
}

/* Keep @len bytes of @s in rl->buf; the index of the value, or -ENOMEM. */
static long value_add(struct relay *rl, const char *s, size_t len)
{
	struct relay_value *v;
	size_t want;
	long off;

	if (rl->nvals == rl->vals_alloc) {
		want = rl->vals_alloc ? rl->vals_alloc * 2 : 256;
		v = realloc(rl->vals, want * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rl->vals = v;
		rl->vals_alloc = want;
	}
	off = buf_append(rl, s, len);
	if (off < 0)
		return off;
	rl->vals[rl->nvals].off = (size_t)off;
	rl->vals[rl->nvals].len = len;
	return (long)rl->nvals++;
}

/* Fill @e from live row @i of @rows (columns @col). 0, or -EBADMSG for a
 * row to leave out. */
static int delta_entry(struct vs_manifest_entry *e, PGresult *rows, int i,
		       const struct row_cols *col)
{
	const char *hash = PQgetvalue(rows, i, col->hash);
	const char *target = PQgetvalue(rows, i, col->target);
	int tlen = PQgetlength(rows, i, col->target);

	memset(e, 0, sizeof(*e));
	if (vs_kind_parse(PQgetvalue(rows, i, col->kind), &e->kind) < 0)
		return -EBADMSG;
	e->mode =
	    (uint32_t)strtoul(PQgetvalue(rows, i, col->mode), NULL, 10) & 07777;
	e->size = strtoull(PQgetvalue(rows, i, col->size), NULL, 10);
	e->version = strtoll(PQgetvalue(rows, i, col->version), NULL, 10);
	e->mtime_ns = strtoll(PQgetvalue(rows, i, col->mtime), NULL, 10);
	if (e->kind == VS_KIND_DIR)
		return 0;
	if (!vs_hash_hex_valid(hash))
		return -EBADMSG;
	memcpy(e->hash, hash, VS_HASH_HEX_LEN + 1);
	if (e->kind == VS_KIND_SYMLINK) {
		if (PQgetisnull(rows, i, col->target) || tlen == 0 ||
		    tlen > VS_PATH_MAX || memchr(target, '\0', (size_t)tlen))
			return -EBADMSG;
		e->target = (char *)target;
	}
	return 0;
}

/*
 * Prefix the manifest value @val (@len bytes, of entry @e at @path) with
 * its signature (sign.h): "sig1:<base64> <value>". The new length, or
 * -ENOSPC / -EIO (the row is then left out, as a row that does not
 * validate).
 */
static int entry_sign(struct relay *rl, const char *id, const char *path,
		      struct vs_manifest_entry *e, char *val, size_t size,
		      int len)
{
	char sig[VS_SIGN_B64_LEN + 1];
	size_t head = VS_SIGN_PREFIX_LEN + VS_SIGN_B64_LEN + 1;

	e->path = (char *)path;
	if ((size_t)len + head >= size ||
	    vs_sign_manifest(rl->cfg->sign_key, id, e, sig) < 0)
		return -EIO;
	memmove(val + head, val, (size_t)len + 1);
	memcpy(val, VS_SIGN_PREFIX, VS_SIGN_PREFIX_LEN);
	memcpy(val + VS_SIGN_PREFIX_LEN, sig, VS_SIGN_B64_LEN);
	val[head - 1] = ' ';
	return len + (int)head;
}

/*
 * Turn the rows of @d (all of one change) into manifest ops ("S" path
 * value | "D" path) appended to the arguments. A row that does not
 * validate is logged and left out. 0 or -ENOMEM.
 */
static int delta_ops(struct relay *rl, const char *id,
		     const struct change_rows *d, size_t *n, size_t *nops)
{
	char val[VS_RELAY_ENTRY_MAX + VS_SIGN_PREFIX_LEN + VS_SIGN_B64_LEN + 1];
	const struct row_cols *col = d->col;
	PGresult *rows = d->res;
	struct vs_manifest_entry e;
	const char *path;
	long v;
	int i, len, plen, r;

	for (i = d->from; i < d->to; i++) {
		path = PQgetvalue(rows, i, col->path);
		plen = PQgetlength(rows, i, col->path);
		if (plen == 0 || vs_path_check(path, (size_t)plen) < 0) {
			vs_error("project %s change %s: leaving out manifest "
				 "row with invalid path '%.200s'",
				 id, PQgetvalue(rows, i, col->seq), path);
			continue;
		}
		if (col->deleted >= 0 &&
		    PQgetvalue(rows, i, col->deleted)[0] == 't') {
			r = push(rl, n, "D", 1);
			r = r ?: push(rl, n, path, (size_t)plen);
			if (r < 0)
				return r;
			(*nops)++;
			continue;
		}
		len = delta_entry(&e, rows, i, col) < 0
			  ? -1
			  : vs_relay_entry_format(val, sizeof(val), &e);
		if (len >= 0 && rl->cfg->sign_key)
			len =
			    entry_sign(rl, id, path, &e, val, sizeof(val), len);
		if (len < 0) {
			vs_error("project %s change %s: leaving out manifest "
				 "row of '%.200s': bad kind, hash or target",
				 id, PQgetvalue(rows, i, col->seq), path);
			continue;
		}
		v = value_add(rl, val, (size_t)len);
		if (v < 0)
			return -ENOMEM;
		r = push(rl, n, "S", 1);
		r = r ?: push(rl, n, path, (size_t)plen);
		r = r ?: push(rl, n, NULL, (size_t)v);
		if (r < 0)
			return r;
		(*nops)++;
	}
	return 0;
}

/*
 * Publish change row @i of @feed (@d is its manifest delta). 0, -ESTALE
 * (nothing done: the cursor in Redis is below the change before it; read
 * it again) or -errno (the round ends; nothing half-done stays: the
 * script is atomic and the cursor only moves with it).
 */
static int publish_change(struct relay *rl, const char *id, PGresult *feed,
			  int i, const struct change_rows *d)
{
	char keys[4][VS_REDIS_KEY_MAX], seq[24], maxlen[24], nf[16], nops_s[24],
	    channel[64], why[256], mode[8], sig[VS_SIGN_B64_LEN + 1], ttl[16];
	const char *names[FEED_NCOLS], *vals[FEED_NCOLS];
	size_t lens[FEED_NCOLS], n, nops = 0, nops_at, k;
	struct vs_change c;
	redisReply *rep = NULL;
	bool valid;
	int r, f, nfields = 0, tries;
	size_t nkeys;

	rl->buf_len = 0;
	free(rl->inl);
	rl->inl = NULL;
	free(rl->blob);
	rl->blob = NULL;
	for (f = 0; f < FEED_NCOLS; f++) {
		names[f] = feed_names[f];
		vals[f] =
		    PQgetisnull(feed, i, f) ? NULL : PQgetvalue(feed, i, f);
		lens[f] = (size_t)PQgetlength(feed, i, f);
	}
	if (vals[FEED_MODE]) { /* mode: decimal from SQL, octal in the stream */
		snprintf(mode, sizeof(mode), "%lo",
			 strtoul(vals[FEED_MODE], NULL, 10) & 07777);
		vals[FEED_MODE] = mode;
		lens[FEED_MODE] = strlen(mode);
	}
	valid = vs_change_parse(&c, names, vals, lens, FEED_NCOLS, why,
				sizeof(why)) == 0;
	if (!valid) {
		vs_error("project %s: skipping change %s: %s", id,
			 PQgetvalue(feed, i, FEED_SEQ), why);
		memset(&c, 0, sizeof(c));
		c.seq = strtoll(PQgetvalue(feed, i, FEED_SEQ), NULL, 10);
		if (c.seq <= 0)
			return -EBADMSG; /* cannot even advance past it */
	} else {
		/* content that came with the feed is SET by the script */
		if (!PQgetisnull(feed, i, FEED_CONTENT))
			r = blob_from_feed(rl, id, &c,
					   PQgetvalue(feed, i, FEED_CONTENT));
		else
			r = blob_publish(rl, id, &c, &rl->inl, &rl->inl_len);
		if (r < 0)
			return r;
		delta_publish(rl, id, &c);
		/* signed as a mount parses the entry: with delta_base, and
		 * before the author fix below, which the entry does not
		 * carry */
		if (rl->cfg->sign_key &&
		    vs_sign_change(rl->cfg->sign_key, id, &c, sig) < 0) {
			vs_error("project %s change %" PRId64
				 ": cannot sign it",
				 id, c.seq);
			return -EIO;
		}
		/* change.h keeps the author of deletes out; the event has it */
		if (vals[FEED_AUTHOR] && !c.author[0])
			snprintf(c.author, sizeof(c.author), "%.*s",
				 (int)lens[FEED_AUTHOR], vals[FEED_AUTHOR]);
		r = vs_relay_event_json(rl->json, VS_RELAY_EVENT_MAX, &c, id);
		if (r < 0) {
			vs_error("project %s change %" PRId64
				 ": event too large; not announced",
				 id, c.seq);
			rl->json[0] = '\0';
		}
	}

	vs_redis_key_events(keys[0], id);
	vs_redis_key_manifest(keys[1], id);
	vs_redis_key_cursor(keys[2], id);
	nkeys = rl->blob ? 4 : 3;
	if (rl->blob)
		vs_redis_key_blob(keys[3], id, c.state.hash);
	snprintf(ttl, sizeof(ttl), "%d",
		 rl->cfg->blob_ttl_s > 0 ? rl->cfg->blob_ttl_s : 0);
	snprintf(seq, sizeof(seq), "%" PRId64, c.seq);
	snprintf(maxlen, sizeof(maxlen), "%ld", rl->cfg->stream_maxlen);
	snprintf(channel, sizeof(channel), "project.%s.files", id);
	for (f = 0; valid && f < FEED_NCOLS; f++)
		nfields += vals[f] ? 2 : 0;
	if (valid && c.delta_base[0])
		nfields += 2;
	if (valid && rl->inl)
		nfields += 2;
	if (valid && rl->cfg->sign_key)
		nfields += 2;
	snprintf(nf, sizeof(nf), "%d", nfields);

	rl->nvals = 0;
	n = 0;
	r = push(rl, &n, "EVALSHA", 7);
	r = r ?: push(rl, &n, "", 0); /* the script's sha, set below */
	r = r ?: push(rl, &n, nkeys == 4 ? "4" : "3", 1);
	for (k = 0; k < nkeys; k++)
		r = r ?: push(rl, &n, keys[k], strlen(keys[k]));
	r = r ?: push(rl, &n, seq, strlen(seq));
	r = r ?: push(rl, &n, maxlen, strlen(maxlen));
	r = r ?: push(rl, &n, channel, strlen(channel));
	r = r
		?: push(rl, &n, valid ? rl->json : "",
			valid ? strlen(rl->json) : 0);
	r = r ?: push(rl, &n, valid ? "1" : "0", 1);
	r = r ?: push(rl, &n, nf, strlen(nf));
	for (f = 0; valid && f < FEED_NCOLS; f++) {
		if (!vals[f])
			continue;
		r = r ?: push(rl, &n, names[f], strlen(names[f]));
		r = r ?: push(rl, &n, vals[f], lens[f]);
	}
	if (valid && c.delta_base[0]) {
		r = r ?: push(rl, &n, "delta_base", 10);
		r = r ?: push(rl, &n, c.delta_base, VS_HASH_HEX_LEN);
	}
	if (valid && rl->inl) { /* not signed: checked against the hash */
		r = r ?: push(rl, &n, "data", 4);
		r = r ?: push(rl, &n, (const char *)rl->inl, rl->inl_len);
	}
	if (valid && rl->cfg->sign_key) {
		r = r ?: push(rl, &n, VS_SIGN_FIELD, strlen(VS_SIGN_FIELD));
		r = r ?: push(rl, &n, sig, VS_SIGN_B64_LEN);
	}
	nops_at = n;
	r = r ?: push(rl, &n, "", 0); /* the op count, set below */
	r = r ?: delta_ops(rl, id, d, &n, &nops);
	if (rl->blob) {
		r = r ?: push(rl, &n, ttl, strlen(ttl));
		r = r ?: push(rl, &n, (const char *)rl->blob, rl->blob_len);
	}
	if (r < 0)
		return r;
	snprintf(nops_s, sizeof(nops_s), "%zu", nops);
	rl->argv[nops_at] = nops_s;
	rl->argvlen[nops_at] = strlen(nops_s);
	for (k = nops_at + 1; k < n; k++) {
		if (rl->argv[k])
			continue;
		rl->argv[k] = rl->buf + rl->vals[rl->argvlen[k]].off;
		rl->argvlen[k] = rl->vals[rl->argvlen[k]].len;
	}
	for (tries = 0;; tries++) {
		if (!rl->script_sha[0]) {
			r = script_load(rl);
			if (r < 0)
				return r;
		}
		rl->argv[1] = rl->script_sha;
		rl->argvlen[1] = 40;
		r = vs_redis_command(rl->redis, &rep, (int)n, rl->argv,
				     rl->argvlen);
		if (r == -EIO && tries == 0 &&
		    !strncmp(vs_redis_last_error(rl->redis), "NOSCRIPT", 8)) {
			rl->script_sha[0] = '\0';
			continue;
		}
		break;
	}
	if (r < 0) {
		if (conn_error(r))
			rl->script_sha[0] = '\0'; /* may be a new server */
		return redis_failed(rl, r, "publish script");
	}
	if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
		vs_debug("project %s: published change %" PRId64 " (%s '%s')",
			 id, c.seq, vs_change_op_name(c.op), c.path);
	else if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 0)
		vs_debug("project %s: change %" PRId64
			 " already published by another relay",
			 id, c.seq);
	else if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 3)
		vs_error(
		    "project %s: the stream held entries at or above %" PRId64
		    " that no relay wrote (forged?); removed them and "
		    "published change %" PRId64,
		    id, c.seq, c.seq);
	else if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 4) {
		vs_info("project %s: the cursor in Redis is below change "
			"%" PRId64 " - 1 (Redis lost data?); reading it again",
			id, c.seq);
		r = -ESTALE;
	}
	freeReplyObject(rep);
	return r;
}

/* ---- one project -----------------------------------------------------------
 */

/* ---- tree snapshots ------------------------------------------------------ */

/*
 * tree:{id} (tree.h) holds the project's whole manifest at one seq,
 * signed once, so a cold mount checks one signature instead of one per
 * entry. It is rebuilt behind the changes: once a project's cursor moved,
 * at most once per RELAY_TREE_MIN_MS (a burst of edits costs one rebuild,
 * and mounts catch up from the stream meanwhile), from PostgreSQL's tree
 * at exactly the cursor (vsync_manifest_at), so it agrees with the
 * stream. With --once, at the end of the run.
 */
#define RELAY_TREE_MIN_MS 1000

static uint64_t fnv1a(const char *s);

/* The entry of project @id in rl->trees, or NULL and in *@at where it
 * goes. rl->trees is kept sorted by id (a binary search per change; an
 * insertion per new project). */
static struct relay_tree *tree_find(struct relay *rl, const char *id,
				    size_t *at)
{
	size_t lo = 0, hi = rl->ntrees;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rl->trees[mid].id, id);

		if (c == 0)
			return &rl->trees[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return NULL;
}

/* The entry of project @id in rl->trees, added if new; NULL out of
 * memory. */
static struct relay_tree *tree_slot(struct relay *rl, const char *id)
{
	struct relay_tree *t;
	size_t lo = 0;

	t = tree_find(rl, id, &lo);
	if (t)
		return t;
	if (rl->ntrees == rl->trees_alloc) {
		size_t na = rl->trees_alloc ? 2 * rl->trees_alloc : 64;
		struct relay_tree *g = realloc(rl->trees, na * sizeof(*g));

		if (!g)
			return NULL;
		rl->trees = g;
		rl->trees_alloc = na;
	}
	memmove(&rl->trees[lo + 1], &rl->trees[lo],
		(rl->ntrees - lo) * sizeof(*rl->trees));
	rl->ntrees++;
	t = &rl->trees[lo];
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", id);
	t->built = -1;
	t->cursor = -1;
	return t;
}

/* Note that project @id's stream is at @cursor. Best effort: out of
 * memory, its tree is only not rebuilt. */
static void tree_note(struct relay *rl, const char *id, int64_t cursor)
{
	struct relay_tree *t = tree_slot(rl, id);

	if (t && cursor > t->want)
		t->want = cursor;
}

/* Has this relay relayed project @id (since it started)? */
static bool project_known(struct relay *rl, const char *id)
{
	size_t at;

	return tree_find(rl, id, &at) != NULL;
}

/* relay:{@id}:cursor as this relay last read or set it; -1 unknown. */
static int64_t cursor_known(struct relay *rl, const char *id)
{
	size_t at;
	struct relay_tree *t = tree_find(rl, id, &at);

	return t ? t->cursor : -1;
}

/* Remember relay:{@id}:cursor as @cursor (-1: unknown). Best effort. */
static void cursor_note(struct relay *rl, const char *id, int64_t cursor)
{
	struct relay_tree *t = tree_slot(rl, id);

	if (t)
		t->cursor = cursor;
}

static int tree_built(struct relay *rl, struct relay_tree *t)
{
	char key[VS_REDIS_KEY_MAX];
	const char *argv[] = {"GETRANGE", key, "0", "40"};
	redisReply *rep = NULL;
	int64_t seq = 0;
	int r;

	vs_redis_key_tree(key, t->id);
	r = vs_redis_command(rl->redis, &rep, 4, argv, NULL);
	if (r < 0)
		return redis_failed(rl, r, "read tree");
	if (rep->type == REDIS_REPLY_STRING && rep->len > 13 &&
	    !memcmp(rep->str, "vsync-tree 1 ", 13))
		seq = strtoll(rep->str + 13, NULL, 10);
	freeReplyObject(rep);
	t->built = seq;
	return 0;
}

/* ---- bundles -------------------------------------------------------------
 *
 * The tree's small files (up to VS_BUNDLE_FILE_MAX) packed in a few values
 * (tree.h), in the order a cold mount wants them: the learned list
 * (learned:{id}) first, then the critical globs, each in bundles of their
 * own, then the rest by path. A bundle ends at VS_BUNDLE_RAW_MAX, or after
 * a path whose hash is 0 modulo RELAY_BUNDLE_CUT: cut points that depend
 * on the paths, not on sizes, so an edit changes the one bundle that holds
 * the file and the others keep their ids (bundle:{id}:<SHA-256 of the
 * files' hashes>) and are only given a fresh TTL. Rebuilt with the tree,
 * at most every RELAY_BUNDLE_MIN_MS (meanwhile the tree keeps the last
 * index: a bundle with an older version of a file is harmless, the mount
 * keeps only what its tree names and fetches the rest). Bundles the new
 * index no longer names expire after RELAY_BUNDLE_GONE_S (a mount that
 * read the old tree may still want them). Content comes from PostgreSQL
 * and is checked against its hash before it is packed.
 */
#define RELAY_BUNDLE_CUT    512
#define RELAY_BUNDLE_MIN_MS 10000
#define RELAY_BUNDLE_GONE_S 120

struct bcand {
	const struct vs_manifest_entry *e;
	int tier;     /* 0 learned, 1 critical glob, 2 the rest */
	size_t order; /* position in the learned list */
	size_t pos;   /* in the manifest (dedup keeps the first) */
};

static int bcand_cmp(const void *a, const void *b)
{
	const struct bcand *x = a, *y = b;

	if (x->tier != y->tier)
		return x->tier - y->tier;
	if (x->tier == 0 && x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return strcmp(x->e->path, y->e->path);
}

static int bcand_hash_cmp(const void *a, const void *b)
{
	const struct bcand *x = a, *y = b;
	int c = strcmp(x->e->hash, y->e->hash);

	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static bool critical_glob(const char *path)
{
	for (const char *const *g = vs_critical_default_globs; *g; g++)
		if (fnmatch(*g, path, FNM_PATHNAME | FNM_CASEFOLD) == 0)
			return true;
	return false;
}

/* The bundle candidates of @m in bundle order (*out, malloc'd), one per
 * content. 0 or -ENOMEM. */
static int bundle_order(struct relay *rl, const char *id,
			const struct vs_manifest *m, struct bcand **out,
			size_t *n)
{
	char *text = NULL, **lines = NULL;
	size_t tlen = 0, nl = 0, k = 0;
	struct vs_learned_index lx;
	struct bcand *c;

	*out = NULL;
	*n = 0;
	/* none, or unreadable: fine. Bounded (any container of the project
	 * writes it), and matched in O(log lines) per file: this thread
	 * serves every project. */
	if (vs_redis_learned_get(rl->redis, id, &text, &tlen) == 0)
		(void)vs_learned_parse(text, tlen, &lines, &nl);
	free(text);
	c = calloc(m->n ? m->n : 1, sizeof(*c));
	if (!c ||
	    vs_learned_index_build(&lx, (const char *const *)lines, nl) < 0) {
		free(c);
		vs_learned_free(lines, nl);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct vs_manifest_entry *e = &m->entries[i];
		long j;

		if (e->kind != VS_KIND_FILE || e->size > VS_BUNDLE_FILE_MAX ||
		    !vs_hash_hex_valid(e->hash))
			continue;
		c[k] = (struct bcand){.e = e, .tier = 2, .pos = i};
		j = vs_learned_index_find(&lx, e->path);
		if (j >= 0) {
			c[k].tier = 0;
			c[k].order = (size_t)j;
		}
		if (c[k].tier == 2 && critical_glob(e->path))
			c[k].tier = 1;
		k++;
	}
	vs_learned_index_release(&lx);
	vs_learned_free(lines, nl);
	/* one per content: the first in bundle order */
	qsort(c, k, sizeof(*c), bcand_cmp);
	for (size_t i = 0; i < k; i++)
		c[i].pos = i;
	qsort(c, k, sizeof(*c), bcand_hash_cmp);
	{
		size_t w = 0;

		for (size_t i = 0; i < k; i++)
			if (!w || strcmp(c[w - 1].e->hash, c[i].e->hash))
				c[w++] = c[i];
		k = w;
	}
	qsort(c, k, sizeof(*c), bcand_cmp);
	*out = c;
	*n = k;
	return 0;
}

/* The bundle id of candidates [from, to): SHA-256 of their hashes. */
static void bundle_id(char out[VS_HASH_HEX_LEN + 1], const struct bcand *c,
		      size_t from, size_t to)
{
	struct vs_sha256 h;

	if (vs_sha256_init(&h) < 0) {
		out[0] = '\0';
		return;
	}
	for (size_t i = from; i < to; i++)
		vs_sha256_update(&h, c[i].e->hash, VS_HASH_HEX_LEN);
	vs_sha256_final_hex(&h, out);
}

/* Is bundle @bid in @old, and still in Redis (its TTL refreshed)? Its ref
 * into @ref. */
static bool bundle_reuse(struct relay *rl, const char *id,
			 const struct vs_bundle_ref *old, size_t nold,
			 const char *bid, struct vs_bundle_ref *ref)
{
	char key[VS_REDIS_KEY_MAX];
	bool ok = false;

	for (size_t i = 0; i < nold && !ok; i++)
		if (!strcmp(old[i].id, bid)) {
			*ref = old[i];
			ok = true;
		}
	if (!ok)
		return false;
	vs_redis_key_bundle(key, id, bid);
	return vs_redis_expire(rl->redis, key, rl->cfg->blob_ttl_s) == 1;
}

/* Build and SET the bundle of candidates [from, to) into @ref: content
 * from PostgreSQL, each checked against its hash (a missing or wrong one
 * is left out). 0, 1 (nothing to bundle) or -errno. */
static int bundle_make(struct relay *rl, const char *id, const struct bcand *c,
		       size_t from, size_t to, struct vs_bundle_ref *ref)
{
	char *arr = malloc((to - from) * (VS_HASH_HEX_LEN + 1) + 3);
	const char *v[2] = {id, arr};
	char key[VS_REDIS_KEY_MAX], got[VS_HASH_HEX_LEN + 1];
	size_t pos = 0, raw_len = 0, elen = 0, files = 0;
	uint8_t *raw = NULL, *enc = NULL;
	struct vs_sha256 h;
	PGresult *res = NULL;
	int r;

	if (!arr)
		return -ENOMEM;
	arr[pos++] = '{';
	for (size_t i = from; i < to; i++) {
		memcpy(arr + pos, c[i].e->hash, VS_HASH_HEX_LEN);
		pos += VS_HASH_HEX_LEN;
		arr[pos++] = i + 1 < to ? ',' : '}';
	}
	arr[pos] = '\0';
	r = vs_pg_exec(rl->pg, &res,
		       "SELECT h, vsync_blob($1, h) FROM unnest($2::text[]) h",
		       2, v, NULL, NULL, 1);
	if (r < 0) {
		free(arr);
		return pg_failed(rl, r, "read bundle content");
	}
	raw = malloc(VS_BUNDLE_RAW_MAX);
	if (!raw || vs_sha256_init(&h) < 0) {
		r = -ENOMEM;
		goto out;
	}
	/* the rows in the order asked (unnest keeps it); each checked */
	for (int j = 0; j < PQntuples(res); j++) {
		const char *hash = PQgetvalue(res, j, 0), *data;
		size_t n = (size_t)PQgetlength(res, j, 1);
		char rec[VS_BUNDLE_REC_MAX];
		int rl_;

		if (PQgetlength(res, j, 0) != VS_HASH_HEX_LEN ||
		    PQgetisnull(res, j, 1))
			continue;
		data = PQgetvalue(res, j, 1);
		if (vs_sha256_hex(got, data, n) < 0 ||
		    memcmp(got, hash, VS_HASH_HEX_LEN))
			continue; /* never pack what does not match */
		rl_ = vs_bundle_record(rec, got, n);
		if (raw_len + (size_t)rl_ + n > VS_BUNDLE_RAW_MAX)
			break; /* (the cut rule keeps under it) */
		memcpy(raw + raw_len, rec, (size_t)rl_);
		memcpy(raw + raw_len + rl_, data, n);
		raw_len += (size_t)rl_ + n;
		vs_sha256_update(&h, got, VS_HASH_HEX_LEN);
		files++;
	}
	vs_sha256_final_hex(&h, ref->id);
	if (!files)
		r = 1;
	if (r == 0)
		r = vs_blob_encode(&enc, &elen, raw, raw_len,
				   VS_BLOB_LZ4_THRESHOLD);
	if (r == 0)
		r = vs_sha256_hex(ref->sha, enc, elen);
	if (r == 0) {
		ref->files = (uint32_t)files;
		ref->raw_len = raw_len;
		vs_redis_key_bundle(key, id, ref->id);
		r = vs_redis_set_ex(rl->redis, key, enc, elen,
				    rl->cfg->blob_ttl_s);
		if (r < 0)
			r = redis_failed(rl, r, "write bundle");
	}
out:
	PQclear(res);
	free(arr);
	free(raw);
	free(enc);
	return r;
}

/* Let the bundles of @old that @ref does not name expire soon. */
static void bundles_retire(struct relay *rl, const char *id,
			   const struct vs_bundle_ref *old, size_t nold,
			   const struct vs_bundle_ref *ref, size_t nref)
{
	char key[VS_REDIS_KEY_MAX];

	for (size_t i = 0; i < nold; i++) {
		bool kept = false;

		for (size_t j = 0; j < nref && !kept; j++)
			kept = !strcmp(old[i].id, ref[j].id);
		if (kept)
			continue;
		vs_redis_key_bundle(key, id, old[i].id);
		(void)vs_redis_expire(rl->redis, key, RELAY_BUNDLE_GONE_S);
	}
}

/*
 * The bundles of @t's tree @m: rebuilt into t->index when due (see
 * above), else t->index is kept. 0, or a backend failure (-errno;
 * t->index unchanged). What cannot be bundled is only left out.
 */
static int bundles_build(struct relay *rl, struct relay_tree *t,
			 const struct vs_manifest *m)
{
	struct vs_bundle_ref *old = NULL, *ref = NULL;
	struct bcand *c = NULL;
	size_t nold = 0, nref = 0, nc = 0, from = 0, raw = 0, reused = 0;
	char *index = NULL;
	int r;

	if (t->index && vs_mono_ms() - t->bundles_ms < RELAY_BUNDLE_MIN_MS)
		return 0;
	if (t->index)
		vs_bundle_index_parse(&old, &nold, t->index, t->index_len);
	r = bundle_order(rl, t->id, m, &c, &nc);
	if (r == 0 && nc) {
		ref = calloc(nc, sizeof(*ref)); /* at most one per file */
		if (!ref)
			r = -ENOMEM;
	}
	for (size_t i = 0; r == 0 && i < nc; i++) {
		char bid[VS_HASH_HEX_LEN + 1];
		size_t add = VS_BUNDLE_REC_MAX + c[i].e->size;
		bool cut;

		raw += add;
		cut = i + 1 == nc || (c[i + 1].tier == 2) != (c[i].tier == 2) ||
		      raw + VS_BUNDLE_REC_MAX + c[i + 1].e->size >
			  VS_BUNDLE_RAW_MAX ||
		      (c[i].tier == 2 &&
		       fnv1a(c[i].e->path) % RELAY_BUNDLE_CUT == 0);
		if (!cut)
			continue;
		bundle_id(bid, c, from, i + 1);
		if (bundle_reuse(rl, t->id, old, nold, bid, &ref[nref])) {
			nref++;
			reused++;
		} else {
			r = bundle_make(rl, t->id, c, from, i + 1, &ref[nref]);
			if (r == 0)
				nref++;
			if (r == 1)
				r = 0;
		}
		from = i + 1;
		raw = 0;
	}
	if (r == 0) {
		size_t len = 0;

		index = malloc(nref * VS_BUNDLE_LINE_MAX + 1);
		if (!index && nref)
			r = -ENOMEM;
		for (size_t i = 0; r == 0 && i < nref; i++)
			len +=
			    (size_t)vs_bundle_index_line(index + len, &ref[i]);
		if (r == 0) {
			bundles_retire(rl, t->id, old, nold, ref, nref);
			free(t->index);
			t->index = nref ? index : NULL;
			t->index_len = nref ? len : 0;
			if (!nref)
				free(index);
			index = NULL;
			t->bundles_ms = vs_mono_ms();
			vs_debug("project %s: %zu bundles (%zu kept)", t->id,
				 nref, reused);
		}
	}
	free(index);
	free(ref);
	free(old);
	free(c);
	return r;
}

/* Build and store the tree of @t at t->want. 0 or -errno (logged). */
static int tree_build(struct relay *rl, struct relay_tree *t)
{
	struct vs_manifest m;
	uint8_t *val = NULL;
	size_t len = 0;
	int r;

	vs_manifest_init(&m);
	r = vs_pg_manifest_load_at(rl->pg, t->id, t->want, &m);
	if (r < 0) {
		vs_manifest_release(&m);
		return pg_failed(rl, r, "read tree");
	}
	snprintf(m.project_id, sizeof(m.project_id), "%s", t->id);
	m.seq = t->want;
	r = bundles_build(rl, t, &m);
	if (r < 0) {
		vs_manifest_release(&m);
		return r;
	}
	r = vs_tree_encode(&val, &len, t->id, &m, t->index, t->index_len,
			   rl->cfg->sign_key);
	if (r < 0) {
		vs_error("project %s: cannot encode its tree at %" PRId64
			 ": %s",
			 t->id, t->want, strerror(-r));
	} else {
		r = vs_redis_tree_put(rl->redis, t->id, t->want, val, len);
		if (r < 0)
			r = redis_failed(rl, r, "write tree");
		else
			vs_debug("project %s: tree at %" PRId64
				 " (%zu entries, %zu bytes)%s",
				 t->id, t->want, m.n, len,
				 r ? "" : ": a newer one was there");
	}
	if (r >= 0) {
		t->built = t->want;
		t->last_ms = vs_mono_ms();
		r = 0;
	}
	free(val);
	vs_manifest_release(&m);
	return r;
}

/*
 * Rebuild the trees that are behind their cursor and due (all of them
 * with @all). *next_ms: when the next one is due (INT64_MAX if none).
 * 0 or the first backend failure (a failed encoding is only logged).
 */
static int relay_trees(struct relay *rl, bool all, int64_t *next_ms)
{
	int r = 0;

	*next_ms = INT64_MAX;
	for (size_t i = 0; i < rl->ntrees && r == 0; i++) {
		struct relay_tree *t = &rl->trees[i];
		int64_t due;

		if (relay_stopping(rl))
			break;
		if (t->built < 0 && (r = tree_built(rl, t)) < 0)
			break;
		if (t->built >= t->want)
			continue;
		due = t->last_ms + RELAY_TREE_MIN_MS;
		if (!all && vs_mono_ms() < due) {
			if (due < *next_ms)
				*next_ms = due;
			continue;
		}
		r = tree_build(rl, t);
		if (r < 0 && !conn_error(r) && r != -EIO) {
			/* this project's tree only (logged): not again
			 * before its next change */
			t->built = t->want;
			r = 0;
		}
	}
	return r;
}

/*
 * Is every change of @feed a pure update: an edit of a live file or
 * symlink in place (op "update", a kind of file or symlink, a hash)? Such
 * a change stamps exactly one project_files row, the live one at its path
 * (vsync__write_file() and vsync_import_batch() make an "update" only of
 * a live file or symlink, whose parents are live directories already),
 * and the feed row is read from that row: so the feed alone is the
 * batch's manifest delta (feed_cols), and vsync_change_rows() - one
 * round trip to PostgreSQL per batch - is not needed. Any other op
 * (create, mkdir, delete, rename, rollback) may stamp more rows.
 */
static bool feed_rows_only(PGresult *feed)
{
	int i, n = PQntuples(feed);
	const char *kind;

	for (i = 0; i < n; i++) {
		kind = PQgetvalue(feed, i, FEED_KIND);
		if (strcmp(PQgetvalue(feed, i, FEED_OP), "update") != 0 ||
		    (strcmp(kind, "file") != 0 &&
		     strcmp(kind, "symlink") != 0) ||
		    PQgetisnull(feed, i, FEED_HASH))
			return false;
	}
	return true;
}

/* Publish the changes of project @id after *@cursor up to @change_seq
 * (with @hinted, a NOTIFY's word: the feed ending before it is no error),
 * moving *@cursor along. 0, -ESTALE (the cursor in Redis is not
 * *@cursor: read it again) or -errno. */
static int relay_batches(struct relay *rl, const char *id, int64_t change_seq,
			 bool hinted, int64_t *cursor_io)
{
	char after[24], upto[24];
	uint64_t cmax = rl->cfg->blob_max < VS_FEED_CONTENT_MAX
			    ? (uint64_t)rl->cfg->blob_max
			    : (uint64_t)VS_FEED_CONTENT_MAX;
	PGresult *feed = NULL, *rows = NULL;
	struct change_rows d;
	int64_t cursor = *cursor_io, last, s;
	bool rows_only;
	int r, i, j, nfeed, nrows;

	while (cursor < change_seq) {
		if (relay_stopping(rl))
			return 0;
		snprintf(after, sizeof(after), "%" PRId64, cursor);
		/* small content comes along (column content): no EXPIRE and
		 * no vsync_blob() query per change for it */
		r = vs_pg_feed(rl->pg, id, cursor, rl->cfg->batch, cmax, &feed);
		if (r < 0)
			return pg_failed(rl, r, "read change feed");
		nfeed = PQntuples(feed);
		if (nfeed == 0 && hinted) {
			r = 0;
			goto out;
		}
		if (nfeed == 0 || PQnfields(feed) != FEED_NCOLS + 1) {
			vs_error("project %s: change feed after %" PRId64
				 " is empty, but the project is at %" PRId64,
				 id, cursor, change_seq);
			r = -EIO;
			goto out;
		}
		last = strtoll(PQgetvalue(feed, nfeed - 1, FEED_SEQ), NULL, 10);
		snprintf(upto, sizeof(upto), "%" PRId64, last);
		rows_only = feed_rows_only(feed);
		if (!rows_only) {
			const char *rv[3] = {id, after, upto};

			r = vs_pg_exec(rl->pg, &rows,
				       "SELECT seq, path, deleted, kind, mode,"
				       " size, hash, version, mtime_ns, target"
				       " FROM vsync_change_rows($1, $2, $3)",
				       3, rv, NULL, NULL, 0);
			if (r < 0) {
				r = pg_failed(rl, r, "read change rows");
				goto out;
			}
			if (PQnfields(rows) != ROW_NCOLS) {
				vs_error("unexpected columns from "
					 "vsync_change_rows");
				r = -EIO;
				goto out;
			}
		}
		nrows = rows_only ? 0 : PQntuples(rows);
		for (i = 0, j = 0; i < nfeed; i++) {
			s = strtoll(PQgetvalue(feed, i, FEED_SEQ), NULL, 10);
			if (s != cursor + 1) {
				/* file_operations is gap-free: never */
				vs_error("project %s: change feed jumps from "
					 "%" PRId64 " to %" PRId64,
					 id, cursor, s);
				r = -EIO;
				goto out;
			}
			if (rows_only) {
				d = (struct change_rows){feed, &feed_cols, i,
							 i + 1};
			} else {
				while (j < nrows &&
				       strtoll(PQgetvalue(rows, j, ROW_SEQ),
					       NULL, 10) < s)
					j++;
				d = (struct change_rows){rows, &rows_cols, j,
							 j};
				while (j < nrows &&
				       strtoll(PQgetvalue(rows, j, ROW_SEQ),
					       NULL, 10) == s)
					j++;
				d.to = j;
			}
			r = publish_change(rl, id, feed, i, &d);
			if (r < 0)
				goto out;
			relay_backend_up(rl, true);
			cursor = *cursor_io = s;
			if (i + 1 < nfeed && relay_stopping(rl))
				break;
		}
		PQclear(feed);
		PQclear(rows);
		feed = rows = NULL;
	}
	r = 0;
out:
	PQclear(feed);
	PQclear(rows);
	return r;
}

/* Publish the changes of project @id after its cursor up to @change_seq
 * (with @hinted, a NOTIFY's word: the feed ending before it is no error,
 * and the cursor this relay last saw is taken without a GET - the
 * publish script refuses a change above the cursor + 1, and the cursor is
 * read then); *@fresh says whether Redis had nothing of it (no cursor:
 * never relayed, or a Redis that lost its data). 0 or -errno. */
static int relay_project(struct relay *rl, const char *id, int64_t change_seq,
			 bool hinted, bool *fresh)
{
	int64_t cursor = hinted ? cursor_known(rl, id) : -1;
	int r, tries;

	*fresh = false;
	for (tries = 0;; tries++) {
		if (cursor < 0) {
			r = redis_cursor(rl, id, &cursor);
			if (r < 0)
				return r;
			*fresh = cursor == 0 && change_seq > 0;
		}
		r = relay_batches(rl, id, change_seq, hinted, &cursor);
		if (r != -ESTALE || tries > 0)
			break;
		cursor = -1;
	}
	if (r == -ESTALE)
		r = -EIO; /* twice in a row: start over (logged) */
	cursor_note(rl, id, r == 0 ? cursor : -1);
	if (r == 0)
		tree_note(rl, id, cursor);
	return r;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
	return h;
}

/* The slot of @id in rl->names (its entry, or the free slot where it
 * goes); the table must have one free slot at least. */
static struct relay_name *names_slot(struct relay *rl, const char *id)
{
	size_t mask = rl->names_size - 1, i = fnv1a(id) & mask;

	while (rl->names[i].id[0] && strcmp(rl->names[i].id, id) != 0)
		i = (i + 1) & mask;
	return &rl->names[i];
}

/* Was a name of @id published since Redis was (re)connected? */
static bool names_known(struct relay *rl, const char *id)
{
	return rl->names_size && names_slot(rl, id)->id[0];
}

/* Remember that @id's name hashes to @h. Best effort: out of memory, the
 * name is only written again next time. */
static void names_remember(struct relay *rl, const char *id, uint64_t h)
{
	struct relay_name *e;

	if ((rl->names_used + 1) * 2 > rl->names_size) {
		size_t size = rl->names_size ? rl->names_size * 2 : 256;
		struct relay_name *old = rl->names, *grown;
		size_t old_size = rl->names_size;

		grown = calloc(size, sizeof(*grown));
		if (!grown)
			return;
		rl->names = grown;
		rl->names_size = size;
		for (size_t i = 0; i < old_size; i++)
			if (old[i].id[0])
				*names_slot(rl, old[i].id) = old[i];
		free(old);
	}
	e = names_slot(rl, id);
	if (!e->id[0]) {
		snprintf(e->id, sizeof(e->id), "%s", id);
		rl->names_used++;
	}
	e->name_hash = h;
}

/*
 * Publish name:{<name>} -> @id (signed with the relay's key, if any), so
 * that a mount by name needs no database: only when it is news - the
 * first time since Redis was (re)connected, a new name, or @force (Redis
 * had nothing of the project: new, or a Redis that lost its data) - not
 * once per project per poll. An invalid name (none passes the schema's
 * CHECK) is logged and skipped. 0 or the Redis failure.
 */
static int name_publish(struct relay *rl, const char *id, const char *name,
			bool force)
{
	uint64_t h = fnv1a(name);
	int r;

	if (!force && rl->names_size) {
		const struct relay_name *e = names_slot(rl, id);

		if (e->id[0] && e->name_hash == h)
			return 0;
	}
	r = vs_redis_name_put(rl->redis, name, id, rl->cfg->sign_key);
	if (r == 0)
		names_remember(rl, id, h);
	if (r == -EINVAL) {
		vs_warn("project %s: name '%.64s' not published: not a "
			"project name",
			id, name);
		return 0;
	}
	return r < 0 ? redis_failed(rl, r, "publish project name") : 0;
}

/* The project's last committed change and its name (@name holds 65
 * bytes); -ENOENT if it is gone. */
static int project_seq(struct relay *rl, const char *id, int64_t *seq,
		       char *name)
{
	const char *v[1] = {id};
	PGresult *res = NULL;
	int r;

	r = vs_pg_exec(rl->pg, &res,
		       "SELECT change_seq, name FROM vsync_projects($1::uuid)",
		       1, v, NULL, NULL, 0);
	if (r < 0)
		return pg_failed(rl, r, "read project seq");
	if (PQntuples(res) != 1) {
		r = -ENOENT; /* deleted since it was hinted */
	} else {
		*seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		snprintf(name, 65, "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return r;
}

/* Every project. 0 or the first failure. */
static int relay_scan_all(struct relay *rl)
{
	PGresult *res = NULL;
	char id[VS_UUID_BUFSZ];
	bool fresh = false;
	int r, i;

	r = vs_pg_exec(rl->pg, &res,
		       "SELECT id, change_seq, name FROM vsync_projects()", 0,
		       NULL, NULL, NULL, 0);
	if (r < 0)
		return pg_failed(rl, r, "list projects");
	relay_backend_up(rl, false);
	for (i = 0; i < PQntuples(res) && !relay_stopping(rl); i++) {
		snprintf(id, sizeof(id), "%s", PQgetvalue(res, i, 0));
		r = relay_project(rl, id,
				  strtoll(PQgetvalue(res, i, 1), NULL, 10),
				  false, &fresh);
		if (r == 0)
			r = name_publish(rl, id, PQgetvalue(res, i, 2), fresh);
		if (r < 0)
			break;
	}
	PQclear(res);
	return r;
}

/* The hinted projects. 0 or the first failure (the rest stay pending). */
static int relay_scan_pending(struct relay *rl)
{
	char name[65];
	int64_t seq = 0;
	bool fresh = false;
	int r;

	while (rl->npending > 0 && !relay_stopping(rl)) {
		const char *id = rl->pending[rl->npending - 1];
		int64_t hint = rl->pending_seq[rl->npending - 1];

		/* the NOTIFY's seq spares a query per change; the name is
		 * asked for only when it may be news. A project this relay
		 * has not relayed yet is asked for first: new, or a name
		 * anyone could have sent (no GET, no state kept for it) */
		if (hint > 0 && project_known(rl, id)) {
			r = relay_project(rl, id, hint, true, &fresh);
			if (r == 0 && (fresh || !names_known(rl, id))) {
				r = project_seq(rl, id, &seq, name);
				if (r == 0)
					r = name_publish(rl, id, name, fresh);
			}
		} else {
			r = project_seq(rl, id, &seq, name);
			if (r == 0)
				r = relay_project(rl, id, seq, false, &fresh);
			if (r == 0)
				r = name_publish(rl, id, name, fresh);
		}
		if (r < 0 && r != -ENOENT)
			return r;
		rl->npending--;
	}
	return 0;
}

/* ---- the loop --------------------------------------------------------------
 */

static int relay_init(struct relay *rl, const struct vs_relay_config *cfg)
{
	sigset_t cur;
	int r, s;

	memset(rl, 0, sizeof(*rl));
	rl->cfg = cfg;
	rl->overflow_ms = INT64_MIN / 2; /* no overflow yet: a scan at once */
	vs_backoff_init(&rl->backoff, RELAY_BACKOFF_MIN_MS,
			RELAY_BACKOFF_MAX_MS);
	sigprocmask(SIG_SETMASK, NULL, &cur);
	rl->wait_mask = cur;
	for (s = 1; cfg->stop_signals && s < NSIG; s++)
		if (sigismember(cfg->stop_signals, s) == 1)
			sigdelset(&rl->wait_mask, s);
	rl->json = malloc(VS_RELAY_EVENT_MAX);
	if (!rl->json)
		return -ENOMEM;
	r = vs_pg_new(&rl->pg, cfg->pg_conninfo, cfg->timeout_ms);
	if (r < 0)
		return r;
	return vs_redis_new(&rl->redis, cfg->redis_url, cfg->timeout_ms);
}

static void relay_release(struct relay *rl)
{
	listen_drop(rl);
	vs_pg_free(rl->pg);
	vs_redis_free(rl->redis);
	free(rl->json);
	free(rl->inl);
	free(rl->blob);
	free(rl->names);
	for (size_t i = 0; i < rl->ntrees; i++)
		free(rl->trees[i].index);
	free(rl->trees);
	free(rl->buf);
	free(rl->vals);
	free(rl->argv);
	free(rl->argvlen);
}

/* (Re)connect what is down. 0 or -errno (logged once per state change). */
static int relay_connect(struct relay *rl)
{
	int r;

	r = vs_redis_ensure(rl->redis);
	if (r < 0) {
		relay_backend_down(rl, true, vs_redis_last_error(rl->redis));
		return r;
	}
	relay_backend_up(rl, true);
	r = vs_pg_ensure(rl->pg);
	if (r < 0) {
		relay_backend_down(rl, false, vs_pg_last_error(rl->pg));
		return r;
	}
	if (!rl->cfg->once && !rl->listen) {
		r = listen_connect(rl);
		if (r < 0)
			return r;
		/* whatever was notified while we were not listening */
		rl->full_scan = true;
	}
	relay_backend_up(rl, false);
	return 0;
}

int vs_relay_run(const struct vs_relay_config *cfg)
{
	struct relay rl;
	int64_t now, tree_ms = INT64_MAX;
	int r;

	r = relay_init(&rl, cfg);
	if (r < 0)
		goto out;
	rl.full_scan = true;
	vs_info("relay started: %s, poll every %d ms, batch %d",
		vs_redis_describe(rl.redis), cfg->poll_interval_ms, cfg->batch);
	while (!relay_stopping(&rl)) {
		r = relay_connect(&rl);
		if (r == 0 && rl.listen)
			r = listen_drain(&rl);
		now = vs_mono_ms();
		if (r == 0 && (rl.full_scan || now >= rl.next_poll_ms)) {
			vs_debug("full scan %" PRIu64 " (%s)", ++rl.full_scans,
				 rl.full_scan  ? "start, reconnect or retry"
				 : rl.overflow ? "hints overflowed"
					       : "poll");
			if (rl.overflow)
				rl.overflow_ms = now;
			rl.full_scan = rl.overflow = false;
			r = relay_scan_all(&rl);
			if (r < 0)
				rl.full_scan = true;
			else
				rl.next_poll_ms =
				    vs_mono_ms() + cfg->poll_interval_ms;
		}
		if (r == 0)
			r = relay_scan_pending(&rl);
		if (r == 0)
			r = relay_trees(&rl, cfg->once, &tree_ms);
		if (r == 0 && cfg->once)
			break;
		if (r < 0) {
			if (cfg->once)
				goto out;
			if (conn_error(r) || r == -EIO) {
				/* start over on fresh connections */
				vs_redis_disconnect(rl.redis);
				names_forget(&rl);
				trees_forget(&rl);
				listen_drop(&rl);
			}
			relay_wait(&rl, -1, vs_backoff_next(&rl.backoff));
			continue;
		}
		vs_backoff_reset(&rl.backoff);
		if (rl.npending == 0 && !rl.full_scan)
			relay_wait(&rl, rl.listen ? PQsocket(rl.listen) : -1,
				   (tree_ms < rl.next_poll_ms
					? tree_ms
					: rl.next_poll_ms) -
				       vs_mono_ms());
	}
	r = 0;
out:
	if (r < 0 && cfg->once)
		vs_error("relay stopped: %s", strerror(-r));
	relay_release(&rl);
	return r;
}
