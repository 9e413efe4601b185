/*
 * writeback.c - the committer: journal entries to PostgreSQL, oldest first
 * (writeback.h).
 *
 * DESIGN
 *
 * Threads. One committer thread per struct vs_writeback, started by
 * vs_wb_start() and joined by vs_wb_stop(). It owns the PostgreSQL
 * connection (made lazily by the first call, with the config's deadline
 * per call) and is the only caller of vs_journal_peek/done on the journal;
 * any thread may append to the journal and call vs_wb_kick/vs_wb_wait.
 *
 * Locks. One mutex (lock) protects stop, kicked, done_upto and the ring of
 * recent refusals; two condition variables on the monotonic clock go with
 * it: wake (the committer sleeps on it while idle or backing off; kick and
 * stop signal it) and done (waiters sleep on it; the committer broadcasts
 * after each entry). No lock is held across a PostgreSQL call, a journal
 * call or the committed callback. The journal has its own mutex (never
 * taken with ours held).
 *
 * Loop. Peek the oldest entry, commit it with its operation id (so a
 * retry, or a replay after a crash, is a no-op returning the first
 * result), then vs_journal_done(), then the committed callback, then
 * advance done_upto (entries are finished in lseq order, so every lseq at
 * or below it is finished) and wake the waiters.
 *
 * Durability. An entry is committed whether or not the journal has made
 * it durable yet (journal.h): once committed it is durable in
 * PostgreSQL, and a replay after a crash is a no-op by its operation id.
 * So a commit - and fsync(2) on the mount, which waits for it - costs no
 * local fsync. What waits is made durable: the journal is synced before
 * every backoff (PostgreSQL unreachable, a failed batch) and at least
 * every WB_SYNC_MS while entries keep coming (a backlog behind a
 * `tar -x`), so what a crash of the machine can lose is about a second of
 * saves nobody fsync'd.
 *
 * Failure. An error is either for good or for now, and only the second
 * is retried (wb_retry): an answer of PostgreSQL's is judged by its
 * SQLSTATE (vs_pg_verdict), never by the errno it maps to.
 *  - for good (SQLSTATE classes 21, 22, 23, 54, P0 and the like: invalid
 *    path, a parent that is a file, is a directory, name too long, a server
 *    limit, mkdir over a file, rename of a missing source; or a content
 *    object missing from the cache, or whose bytes fail its hash): logged with
 * the reason and SQLSTATE before the path, counted
 * (vsync_writeback_total{outcome="refused"}), reported to the callback and to
 * vs_wb_wait() as -errno, and that entry dropped; the entries behind it go on;
 *  - for now (no answer: connection refused or lost, deadline passed; the
 *    server's own state: serialization failure, deadlock, resources,
 *    credentials, a schema not initialised; out of memory or of file
 *    descriptors, any local failure to read the content object or to
 *    store a merge's bytes, such as a full cache volume): the entry
 *    stays journaled and is retried after a backoff that doubles from
 *    100 ms to 5 s with jitter (the sleep ends early only for vs_wb_stop).
 *    The first failure is logged once as a warning (again if the cause
 *    moves between PostgreSQL and a local step: wb_failed), the return to
 *    service once as info.
 *  A stale base on a write (SQLSTATE P0004) is not a failure: the three
 *  versions are fetched and merged (merge.h); a clean merge is committed on
 *  top of the current version, otherwise the local content is committed
 *  over it with vsync_write_file_over (sql/functions.sql), which keeps the
 * current version in history and records the conflict. Both use the entry's
 *  operation id, so the resolution itself is committed at most once.
 *
 * Bursts. When the oldest entry is a save of a file and the entries right
 * behind it (consecutive lseqs) are saves of the same path, each chained
 * after the one before (an editor saving repeatedly while the committer
 * was behind, or while PostgreSQL was down), only the newest is committed,
 * based on what the first one was based on (its base version or
 * after_op). The older entries are finished with it (their fsync waiters
 * see its result). If an op of the burst is in PostgreSQL already (a
 * crash after a commit, before its entry left the journal), the burst
 * ends at the newest such op: it holds what the older saves changed (it
 * was their burst's newest, or they were committed one by one before it),
 * so they are finished with it as superseded, its commit is a no-op by
 * its op id, and the saves after it are chained after it. Committing the
 * older ones again would put them over it (a merge or a conflict), and
 * the version it made would no longer be the current one.
 * If the newest is refused (its content object lost, say) and no op of
 * the burst is in PostgreSQL, nothing was committed: the saves are then
 * committed one by one (wb->burst_off), so only the refused one is lost.
 *
 * Batches. When the oldest entry is not the start of a burst, it and up
 * to WB_BATCH_MAX - 1 entries right behind it (consecutive lseqs) that
 * touch paths none of the others touch (path, and old_path of a rename)
 * are committed in one transaction: each with its own operation id and
 * its own statement, in lseq order, so a replay is a no-op as before. A
 * batch takes only what commits plainly: the first statement that is
 * refused, stale (a merge to resolve), finds a directory there already or
 * a path gone, or leaves the transaction failed, rolls the whole batch
 * back, and those entries are then committed one by one (wb->solo), where
 * the failure is judged as above (retry or for good) and the others are
 * not lost. Only after COMMIT are the entries done, reported to the
 * callback and their waiters woken, in lseq order.
 *
 * Stop. vs_wb_stop() lets the entry in flight finish (its PostgreSQL calls
 * are bounded by the deadline), interrupts a backoff, joins the thread and
 * leaves every unfinished entry in the journal.
 */
#include "vsync/writeback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vsync/cache.h"
#include "vsync/clock.h"
#include "vsync/hash.h"
#include "vsync/log.h"
#include "vsync/merge.h"
#include "vsync/metrics.h"
#include "vsync/pg.h"
#include "vsync/util.h"
#include "vsync/banned.h"

#define WB_BACKOFF_MIN_MS 100
#define WB_BACKOFF_MAX_MS 5000
#define WB_IDLE_MS	  1000 /* re-peek while idle, in case of no kick */
#define WB_REFUSALS	  256  /* refusals remembered for vs_wb_wait() */
#define WB_RESOLVE_TRIES  5    /* merge/conflict rounds before backing off */
#define WB_BURST_MAX	  64   /* saves of one file committed as one */
#define WB_MERGED_MAX	  16   /* merged saves remembered (wb_merged_*) */
#define WB_BATCH_MAX	  64   /* entries committed in one transaction */
#define WB_SYNC_MS	  1000 /* the journal synced at least this often */

struct wb_refusal {
	uint64_t lseq;
	int error;
};

struct vs_writeback {
	/* set at start, read-only after */
	char *pg_conninfo, *project_id, *author;
	int timeout_ms;
	struct vs_cache *cache;
	struct vs_journal *journal;
	void (*committed)(void *arg, const struct vs_jentry *e,
			  const struct vs_wb_result *res);
	void *arg;
	pthread_t thread;

	/* committer thread only */
	struct vs_pg *pg;
	bool down;	 /* "cannot commit" logged, not yet recovered */
	bool down_local; /* what it logged was local_failed (wb_failed) */
	struct vs_backoff backoff;
	int64_t synced_ms;  /* when the journal was last synced */
	struct vs_jentry e; /* the entry in flight (large: not on the stack) */
	struct vs_jentry last; /* the newest save of a burst (wb_burst) */
	uint64_t burst[WB_BURST_MAX]; /* the lseqs of that burst */
	uint64_t burst_off; /* saves up to this lseq: one by one (wb_main) */
	char burst_ops[WB_BURST_MAX][VS_UUID_BUFSZ]; /* and their op ids */
	struct vs_jentry *batch; /* WB_BATCH_MAX entries (wb_batch) */
	struct vs_wb_result *batch_res;
	bool in_batch;	   /* committing a batch: no resolution, no logging */
	bool local_failed; /* what failed is a step here, not PostgreSQL */
	size_t solo;	   /* entries to commit one by one (a batch failed) */
	/* the newest saves committed as a merge, and the version their own
	 * bytes were based on (wb_merged_note); ring index = n % max */
	struct {
		char op[VS_UUID_BUFSZ];
		int64_t base;
	} merged[WB_MERGED_MAX];
	size_t nmerged;

	pthread_mutex_t lock;
	pthread_cond_t wake; /* committer: kicked, stop */
	pthread_cond_t done; /* waiters: done_upto moved */
	/* under lock */
	bool stop, kicked;
	uint64_t done_upto; /* every lseq <= this is finished */
	struct wb_refusal refused[WB_REFUSALS];
	size_t nrefused; /* total recorded; ring index = n % WB_REFUSALS */
};

static const char *const op_verbs[] = {"write", "symlink", "mkdir", "delete",
				       "rename"};

/* ------------------------------------------------------------ helpers */

/*
 * Is failure @r of the entry in flight for now (retry) or for good? An
 * answer of PostgreSQL's is judged by its SQLSTATE (vs_pg_verdict); with
 * no answer (a connection refused or lost, a deadline) it is for now, and
 * so is a lack of memory or file descriptors or an I/O error here. So is
 * any failure of a local step on the content (wb->local_failed: its read
 * from the cache, the store of a merge's bytes): a full or read-only
 * cache volume, an I/O error; the bytes are not PostgreSQL's to refuse,
 * and the SQLSTATE left on the connection, if any, is an earlier call's.
 * Any other local failure (such as content too large to send) is for
 * good.
 * -EAGAIN, -ENOMEM, -EMFILE and -ENFILE are judged first: the SQLSTATE
 * left on the connection is not theirs (an earlier call's). -EAGAIN is
 * wb_resolve's own verdict (the version kept moving under every round:
 * the SQLSTATE left is the P0004 it was resolving, not a refusal); the
 * only SQLSTATEs it stands for (40, 53, 55P03) are retried as well.
 */
static bool wb_retry(struct vs_writeback *wb, int r)
{
	const char *state = vs_pg_last_state(wb->pg);

	if (wb->local_failed || r == -EAGAIN || r == -ENOMEM || r == -EMFILE ||
	    r == -ENFILE)
		return true;
	if (*state)
		return vs_pg_verdict(state) == VS_PG_RETRY;
	switch (-r) {
	case ECONNREFUSED:
	case ECONNRESET:
	case ETIMEDOUT:
	case EIO:
	case EACCES:
		return true;
	default:
		return false;
	}
}

/*
 * Every lseq up to @upto is finished: entry @self with @self_error (0:
 * committed), any other lseq above the old watermark with @gap_error (an
 * entry the journal dropped as malformed or vanished: never committed).
 * Wakes the waiters.
 */
static void wb_advance(struct vs_writeback *wb, uint64_t upto, int gap_error,
		       uint64_t self, int self_error)
{
	uint64_t l;

	pthread_mutex_lock(&wb->lock);
	l = wb->done_upto + 1;
	if (upto >= WB_REFUSALS && l < upto - WB_REFUSALS + 1)
		l = upto - WB_REFUSALS + 1;
	for (; l <= upto && upto > wb->done_upto; l++) {
		int err = l == self ? self_error : gap_error;

		if (err)
			wb->refused[wb->nrefused++ % WB_REFUSALS] =
			    (struct wb_refusal){l, err};
	}
	if (upto > wb->done_upto)
		wb->done_upto = upto;
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);
}

/* Read cache object @hash whole into a malloc'd buffer; or, when it is
 * larger than a chunk (VS_CHUNK_SIZE), leave *buf NULL and hand out its
 * fd (*fd_out, the caller's) and size (wb_put_chunked). */
static int wb_read_object(struct vs_writeback *wb, const char *hash,
			  uint8_t **buf, size_t *len, int *fd_out,
			  uint64_t *size)
{
	struct stat st;
	char *p = NULL;
	int fd, r;

	*buf = NULL;
	*len = 0;
	r = vs_cache_open(wb->cache, hash, &fd);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if ((uint64_t)st.st_size > VS_CHUNK_SIZE) {
		*fd_out = fd;
		*size = (uint64_t)st.st_size;
		return 0;
	}
	r = vs_pread_fd_whole(&p, len, fd, VS_CHUNK_SIZE);
	close(fd);
	*buf = (uint8_t *)p;
	return r;
}

/* Deadline for a call that carries @len bytes (vs_size_timeout_ms). */
static void wb_timeout_for(struct vs_writeback *wb, size_t len)
{
	vs_pg_set_timeout(wb->pg, vs_size_timeout_ms(wb->timeout_ms, len));
}

static void fmt_int(char *buf, size_t size, int64_t v, bool null_if_neg,
		    const char **out)
{
	if (null_if_neg && v < 0) {
		*out = NULL;
		return;
	}
	snprintf(buf, size, "%" PRId64, v);
	*out = buf;
}

/* ------------------------------------------------------------ SQL calls */

/* Fill seq, version, hash of @res from write call result @pr (call result
 * @r), and free @pr. 0 or -errno. */
static int wb_put_result(int r, PGresult *pr, struct vs_wb_result *res)
{
	if (r == 0 && (PQntuples(pr) != 1 || PQnfields(pr) != 3 ||
		       !vs_hash_hex_valid(PQgetvalue(pr, 0, 2))))
		r = -EIO;
	if (r == 0) {
		res->seq = strtoll(PQgetvalue(pr, 0, 0), NULL, 10);
		res->version = strtoll(PQgetvalue(pr, 0, 1), NULL, 10);
		snprintf(res->hash, sizeof(res->hash), "%s",
			 PQgetvalue(pr, 0, 2));
	}
	PQclear(pr);
	return r;
}

/*
 * vsync_write_file (@current < 0) or vsync_write_file_over (@current >= 0:
 * the version the local content is committed over). Fills seq, version,
 * hash of @res. 0 or -errno.
 */
static int wb_put(struct vs_writeback *wb, const struct vs_jentry *e,
		  const uint8_t *buf, size_t len, int64_t base, int64_t current,
		  struct vs_wb_result *res)
{
	char mode[16], basebuf[24], curbuf[24];
	const char *kind = e->op == VS_JOP_SYMLINK ? "symlink" : "file";
	const char *v[9];
	int lens[9] = {0}, fmts[9] = {0};
	PGresult *pr = NULL;
	int n = 0, r;

	v[n++] = wb->project_id;
	v[n++] = e->path;
	v[n] = (const char *)buf;
	lens[n] = (int)len;
	fmts[n++] = 1;
	/* symlinks are 0777; mode 0 in a write entry keeps the current mode */
	fmt_int(mode, sizeof(mode), e->op == VS_JOP_SYMLINK ? 0777 : e->mode,
		false, &v[n]);
	if (e->op == VS_JOP_WRITE && e->mode == 0)
		v[n] = NULL;
	n++;
	fmt_int(basebuf, sizeof(basebuf), base, true, &v[n++]);
	if (current >= 0)
		fmt_int(curbuf, sizeof(curbuf), current, false, &v[n++]);
	v[n++] = e->op_id;
	v[n++] = wb->author;
	v[n++] = kind;
	if (len > INT32_MAX)
		return -EFBIG;
	wb_timeout_for(wb, len);
	if (current < 0)
		r = vs_pg_exec(wb->pg, &pr,
			       "SELECT seq, version, content_hash FROM"
			       " vsync_write_file($1::uuid, $2, $3::bytea,"
			       " $4::int, $5::int, $6::uuid, $7, $8)",
			       n, v, lens, fmts, 0);
	else
		r = vs_pg_exec(wb->pg, &pr,
			       "SELECT seq, version, content_hash FROM"
			       " vsync_write_file_over($1::uuid, $2, $3::bytea,"
			       " $4::int, $5::int, $6::int, $7::uuid, $8, $9)",
			       n, v, lens, fmts, 0);
	vs_pg_set_timeout(wb->pg, wb->timeout_ms);
	return wb_put_result(r, pr, res);
}

/*
 * wb_put for content too large to send whole: the @size bytes of cache
 * object @fd (e->hash) go as chunks (vs_pg_chunks_put), then
 * vsync_write_chunked names them, in one transaction (the batch's, or one
 * of its own). 0 or -errno, as wb_put.
 */
static int wb_put_chunked(struct vs_writeback *wb, const struct vs_jentry *e,
			  int fd, uint64_t size, int64_t base, int64_t current,
			  struct vs_wb_result *res)
{
	char mode[16], sizebuf[24], basebuf[24], curbuf[24], *shas = NULL;
	const char *v[10];
	PGresult *pr = NULL;
	bool own = !wb->in_batch;
	int r = 0;

	v[0] = wb->project_id;
	v[1] = e->path;
	v[2] = e->hash;
	fmt_int(sizebuf, sizeof(sizebuf), (int64_t)size, false, &v[3]);
	fmt_int(mode, sizeof(mode), e->mode, false, &v[5]);
	if (e->mode == 0)
		v[5] = NULL;
	fmt_int(basebuf, sizeof(basebuf), base, true, &v[6]);
	fmt_int(curbuf, sizeof(curbuf), current, true, &v[7]);
	v[8] = e->op_id;
	v[9] = wb->author;
	if (own)
		r = vs_pg_begin(wb->pg, NULL);
	if (r == 0)
		r = vs_pg_chunks_put(wb->pg, wb->project_id, e->hash, fd, size,
				     wb->timeout_ms, &shas);
	v[4] = shas;
	if (r == 0)
		r = vs_pg_exec(wb->pg, &pr,
			       "SELECT seq, version, content_hash FROM"
			       " vsync_write_chunked($1::uuid, $2, $3,"
			       " $4::bigint, $5::text[], $6::int, $7::int,"
			       " $8::int, $9::uuid, $10)",
			       10, v, NULL, NULL, 0);
	free(shas);
	r = wb_put_result(r, pr, res);
	if (own && r == 0)
		r = vs_pg_commit(wb->pg);
	if (own && r < 0)
		vs_pg_rollback(wb->pg);
	return r;
}

struct wb_current {
	int64_t version; /* 0: the path never existed */
	bool live;	 /* not a tombstone */
	char kind[16];
	char hash[VS_HASH_HEX_LEN + 1]; /* "" for dirs and tombstones */
	uint8_t *content;		/* with want_content, files/links */
	size_t len;
};

/*
 * The current row of @path and (if @want_content) its bytes, in one
 * statement, so version and content agree. 0 or -errno.
 */
static int wb_current(struct vs_writeback *wb, const char *path,
		      bool want_content, struct wb_current *cur)
{
	const char *v[3] = {wb->project_id, path, want_content ? "t" : "f"};
	PGresult *pr = NULL;
	uint32_t ver;
	int r;

	memset(cur, 0, sizeof(*cur));
	/* binary results: int4 (network order), bool (1 byte), text, bytea */
	r = vs_pg_exec(wb->pg, &pr,
		       "SELECT h.version, h.is_deleted, h.kind,"
		       " coalesce(h.content_hash, ''),"
		       " CASE WHEN $3::boolean AND NOT h.is_deleted"
		       " AND h.kind <> 'dir'"
		       " THEN vsync_read_file($1::uuid, $2, h.version) END"
		       " FROM vsync_history($1::uuid, $2) h"
		       " ORDER BY h.version DESC LIMIT 1",
		       3, v, NULL, NULL, 1);
	if (r < 0)
		return r;
	if (PQntuples(pr) == 0)
		goto out; /* never existed */
	if (PQgetlength(pr, 0, 0) != 4 || PQgetlength(pr, 0, 1) != 1 ||
	    PQgetlength(pr, 0, 2) >= (int)sizeof(cur->kind) ||
	    PQgetlength(pr, 0, 3) > VS_HASH_HEX_LEN) {
		r = -EIO;
		goto out;
	}
	memcpy(&ver, PQgetvalue(pr, 0, 0), 4);
	cur->version = ntohl(ver);
	cur->live = !PQgetvalue(pr, 0, 1)[0];
	memcpy(cur->kind, PQgetvalue(pr, 0, 2), (size_t)PQgetlength(pr, 0, 2));
	memcpy(cur->hash, PQgetvalue(pr, 0, 3), (size_t)PQgetlength(pr, 0, 3));
	if (want_content && !PQgetisnull(pr, 0, 4)) {
		cur->len = (size_t)PQgetlength(pr, 0, 4);
		cur->content = malloc(cur->len ? cur->len : 1);
		if (!cur->content) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(cur->content, PQgetvalue(pr, 0, 4), cur->len);
	}
out:
	PQclear(pr);
	return r;
}

/* The bytes of version @version of @path. 0 or -errno. */
static int wb_read_version(struct vs_writeback *wb, const char *path,
			   int64_t version, uint8_t **buf, size_t *len)
{
	char vbuf[24];
	const char *v[3] = {wb->project_id, path, vbuf};
	PGresult *pr = NULL;
	int r;

	*buf = NULL;
	*len = 0;
	snprintf(vbuf, sizeof(vbuf), "%" PRId64, version);
	r = vs_pg_exec(wb->pg, &pr,
		       "SELECT vsync_read_file($1::uuid, $2, $3::int)", 3, v,
		       NULL, NULL, 1);
	if (r < 0)
		return r;
	if (PQntuples(pr) != 1 || PQgetisnull(pr, 0, 0)) {
		r = -ENOENT;
		goto out;
	}
	*len = (size_t)PQgetlength(pr, 0, 0);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		r = -ENOMEM;
	else
		memcpy(*buf, PQgetvalue(pr, 0, 0), *len);
out:
	PQclear(pr);
	return r;
}

/* Make content @hash (now current) local, so the mount can serve it:
 * best effort, from PostgreSQL when the cache lacks it. */
static void wb_cache_fill(struct vs_writeback *wb, const char *hash)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (vs_cache_has(wb->cache, hash))
		return;
	if (vs_pg_blob_fetch(wb->pg, wb->project_id, hash, &buf, &len) == 0)
		vs_cache_store(wb->cache, hash, buf, len); /* checks the hash */
	free(buf);
}

/* ------------------------------------------------------------ conflicts */

/*
 * The local side of a write: in memory (@ours, @ours_len), or, NULL, too
 * large for that: cache object @fd of @size bytes (wb_put_chunked).
 */
static int wb_put_ours(struct vs_writeback *wb, const struct vs_jentry *e,
		       const uint8_t *ours, size_t ours_len, int fd,
		       uint64_t size, int64_t base, int64_t current,
		       struct vs_wb_result *res)
{
	if (!ours)
		return wb_put_chunked(wb, e, fd, size, base, current, res);
	return wb_put(wb, e, ours, ours_len, base, current, res);
}

/*
 * A write of @e (content @ours, or cache object @fd of @size bytes, as
 * wb_put_ours) was refused as stale: its base is no longer current. Merge
 * (content in memory only) or commit over, as the DESIGN says. 0 with @res
 * filled (res->error may be a refusal), or -errno to retry later.
 */
static int wb_resolve(struct vs_writeback *wb, const struct vs_jentry *e,
		      const uint8_t *ours, size_t ours_len, int fd,
		      uint64_t size, struct vs_wb_result *res)
{
	struct wb_current cur = {0};
	uint8_t *base = NULL;
	char *merged = NULL;
	size_t base_len = 0, merged_len = 0;
	int r = -ESTALE, m;

	for (int round = 0; round < WB_RESOLVE_TRIES && r == -ESTALE; round++) {
		free(cur.content);
		free(base);
		free(merged);
		base = NULL;
		merged = NULL;
		r = wb_current(wb, e->path, ours != NULL, &cur);
		if (r < 0)
			goto out;
		if (cur.live && !strcmp(cur.kind, "dir")) {
			r = 0;
			res->error = -EISDIR;
			vs_error(
			    "conflict on '%s': local edit based on v%" PRId64
			    " cannot be committed: it is a directory "
			    "now (v%" PRId64 "); local edit not committed "
			    "there",
			    e->path, e->base_version, cur.version);
			goto out;
		}
		m = VS_MERGE_CONFLICT;
		if (cur.live && e->op == VS_JOP_WRITE &&
		    !strcmp(cur.kind, "file") && cur.content) {
			if (e->base_version > 0)
				r = wb_read_version(wb, e->path,
						    e->base_version, &base,
						    &base_len);
			else
				r = 0; /* created on both sides: base empty */
			if (r < 0 && r != -ENOENT)
				goto out;
			if (r == 0)
				m = vs_merge3(
				    (const char *)(base ? base : ours),
				    base_len, (const char *)ours, ours_len,
				    (const char *)cur.content, cur.len, &merged,
				    &merged_len);
			if (m < 0) {
				vs_warn("cannot merge '%s' (%s): committing "
					"the local edit over v%" PRId64,
					e->path, strerror(-m), cur.version);
				m = VS_MERGE_CONFLICT;
			}
		}
		if (!cur.live) {
			/* deleted (or never there) on the other side: the
			 * local edit re-creates it; the deletion stays in
			 * history */
			r = wb_put_ours(wb, e, ours, ours_len, fd, size, 0, -1,
					res);
			if (r == 0) {
				res->conflict = 1;
				vs_warn("conflict on '%s': local edit based on "
					"v%" PRId64
					" re-created it as v%" PRId64
					" over its deletion (v%" PRId64
					", kept in history)",
					e->path, e->base_version, res->version,
					cur.version);
			}
		} else if (m == VS_MERGE_CLEAN) {
			char hash[VS_HASH_HEX_LEN + 1];

			/* stored first, so the mount can serve what it
			 * commits (vs_fs_committed): no room for it is this
			 * machine's failure, retried (wb_retry) */
			r = vs_sha256_hex(hash, merged, merged_len);
			if (r == 0)
				r = vs_cache_store(wb->cache, hash, merged,
						   merged_len);
			if (r < 0) {
				wb->local_failed = true;
				goto out;
			}
			r = wb_put(wb, e, (const uint8_t *)merged, merged_len,
				   cur.version, -1, res);
			if (r == 0) {
				res->merged = 1;
				vs_info("merged concurrent edits of '%s' "
					"(v%" PRId64 " + local) as v%" PRId64,
					e->path, cur.version, res->version);
			}
		} else {
			r = wb_put_ours(wb, e, ours, ours_len, fd, size,
					e->base_version, cur.version, res);
			if (r == 0) {
				res->conflict = 1;
				vs_warn("conflict on '%s': local edit based on "
					"v%" PRId64 " committed over v%" PRId64
					" (kept in history) as v%" PRId64,
					e->path, e->base_version, cur.version,
					res->version);
			}
		}
	}
	if (r == -ESTALE)
		r = -EAGAIN; /* moving under us: back off, then again */
out:
	free(cur.content);
	free(base);
	free(merged);
	return r;
}

/* ------------------------------------------------------------ ops */

/*
 * The version journal operation @op_id produced (a save of the same path
 * journaled before this one): -ENOENT if it made none (refused, or not a
 * write), else 0 or a backend -errno.
 */
static int wb_op_version(struct vs_writeback *wb, const char *op_id,
			 int64_t *version)
{
	const char *v[2] = {wb->project_id, op_id};
	PGresult *pr = NULL;
	int r;

	r = vs_pg_exec(wb->pg, &pr,
		       "SELECT (o.result->>'version')::int"
		       " FROM vsync_operations($1::uuid, ARRAY[$2::uuid]) o",
		       2, v, NULL, NULL, 0);
	if (r < 0)
		return r;
	r = -ENOENT;
	if (PQntuples(pr) == 1 && !PQgetisnull(pr, 0, 0)) {
		*version = strtoll(PQgetvalue(pr, 0, 0), NULL, 10);
		r = 0;
	}
	PQclear(pr);
	return r;
}

/*
 * A save committed as a merge (@op, whose own bytes were based on
 * @base): the version it made holds another writer's edit that the saves
 * chained after it (after_op) do not have in their bytes. Such a save is
 * based on @base, not on that version (wb_commit_put), so it is stale and
 * merged in turn; based on the merge, it would be committed over it and
 * the other edit lost. Remembered by this process only: a save chained
 * after a merge made before a restart is based on the merge.
 */
static void wb_merged_note(struct vs_writeback *wb, const char *op,
			   int64_t base)
{
	size_t i = wb->nmerged++ % WB_MERGED_MAX;

	memcpy(wb->merged[i].op, op, sizeof(wb->merged[i].op));
	wb->merged[i].base = base;
}

/* The version the bytes of merged save @op were based on: 0 and *@base,
 * or -ENOENT if it is not one this process merged (lately). */
static int wb_merged_base(const struct vs_writeback *wb, const char *op,
			  int64_t *base)
{
	size_t n = wb->nmerged < WB_MERGED_MAX ? wb->nmerged : WB_MERGED_MAX;

	for (size_t i = 0; i < n; i++)
		if (strcmp(wb->merged[i].op, op) == 0) {
			*base = wb->merged[i].base;
			return 0;
		}
	return -ENOENT;
}

static int wb_commit_put(struct vs_writeback *wb, const struct vs_jentry *e,
			 struct vs_wb_result *res)
{
	struct vs_jentry *chained = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t size = 0;
	int64_t after;
	int fd = -1, r;

	if (e->after_op[0]) {
		/* a save made before the previous one was committed: its
		 * base is what that one produced, not a conflict with it
		 * (unless that was a merge: then what its bytes were based
		 * on, and this one is merged too) */
		r = wb_merged_base(wb, e->after_op, &after);
		if (r == -ENOENT)
			r = wb_op_version(wb, e->after_op, &after);
		if (r < 0 && r != -ENOENT)
			return r;
		if (r == 0 && (chained = malloc(sizeof(*chained)))) {
			*chained = *e;
			chained->base_version = after;
			e = chained;
		}
	}

	if (e->op == VS_JOP_WRITE) {
		r = wb_read_object(wb, e->hash, &buf, &len, &fd, &size);
		if (r == -ENOENT || r == -EBADMSG) {
			/* missing, or bytes that are not its hash: lost */
			vs_error("cannot commit '%s': its content %.12s is "
				 "not in the cache (%s); local edit dropped",
				 e->path, e->hash, strerror(-r));
			res->error = -EIO;
			free(chained);
			return 0;
		}
		if (r < 0) {
			/* out of fds or memory, a read error: not the
			 * object's fault; retried (wb_retry) */
			wb->local_failed = true;
			free(chained);
			return r;
		}
	} else {
		len = strlen(e->target);
		buf = malloc(len);
		if (!buf) {
			free(chained);
			return -ENOMEM;
		}
		memcpy(buf, e->target, len);
	}
	r = wb_put_ours(wb, e, buf, len, fd, size, e->base_version, -1, res);
	if (r == -ESTALE && e->base_version >= 0 && !wb->in_batch)
		r = wb_resolve(wb, e, buf, len, fd, size, res);
	else if (r == 0 && e->op == VS_JOP_WRITE &&
		 strcmp(res->hash, e->hash)) {
		/* the first call of this op id committed other bytes:
		 * a merge, before a crash lost its result */
		res->merged = 1;
		wb_cache_fill(wb, res->hash);
	}
	if (r == 0 && res->merged && !res->error)
		wb_merged_note(wb, e->op_id, e->base_version);
	free(buf);
	if (fd >= 0)
		close(fd);
	free(chained);
	return r;
}

static int wb_commit_mkdir(struct vs_writeback *wb, const struct vs_jentry *e,
			   struct vs_wb_result *res)
{
	char mode[16];
	const char *v[5] = {wb->project_id, e->path, NULL, e->op_id,
			    wb->author};
	struct wb_current cur;
	PGresult *pr = NULL;
	int r;

	if (e->mode) {
		snprintf(mode, sizeof(mode), "%u", (unsigned)e->mode);
		v[2] = mode;
	}
	r = vs_pg_exec(wb->pg, &pr,
		       "SELECT seq, version FROM vsync_mkdir($1::uuid, $2,"
		       " $3::int, $4::uuid, $5)",
		       5, v, NULL, NULL, 0);
	if (r == 0) {
		if (PQntuples(pr) == 1 && PQnfields(pr) == 2) {
			res->seq = strtoll(PQgetvalue(pr, 0, 0), NULL, 10);
			res->version = strtoll(PQgetvalue(pr, 0, 1), NULL, 10);
		} else {
			r = -EIO;
		}
		PQclear(pr);
		return r;
	}
	if (r != -EEXIST || wb->in_batch)
		return r;
	r = wb_current(wb, e->path, false, &cur);
	if (r < 0)
		return r;
	if (cur.live && !strcmp(cur.kind, "dir")) {
		res->version = cur.version; /* already there: done */
		return 0;
	}
	return -EEXIST;
}

/*
 * A delete made in the mount carries the newest change it had taken up
 * then (seen_seq): PostgreSQL deletes the path and what is under it only
 * if nobody else changed any of it after that change (P0004 otherwise).
 * Such a refusal is not a failure: someone else's work is there, which
 * the mount did not have when the path was deleted here; it stays, and
 * comes to the mount as their change does. An entry without seen_seq
 * deletes whatever is there.
 */
static int wb_commit_delete(struct vs_writeback *wb, const struct vs_jentry *e,
			    struct vs_wb_result *res)
{
	char base[24], seen[24];
	const char *v[6] = {wb->project_id, e->path,	NULL,
			    e->op_id,	    wb->author, NULL};
	PGresult *pr = NULL;
	int r;

	fmt_int(base, sizeof(base), e->base_version, true, &v[2]);
	fmt_int(seen, sizeof(seen), e->seen_seq > 0 ? e->seen_seq : -1, true,
		&v[5]);
	r = vs_pg_exec(wb->pg, &pr,
		       "SELECT vsync_delete($1::uuid, $2, $3::int, $4::uuid,"
		       " $5, true, $6::bigint)",
		       6, v, NULL, NULL, 0);
	if (r == -ENOENT && !wb->in_batch)
		return 0; /* already gone */
	if (r == -ESTALE && e->seen_seq > 0 && !wb->in_batch) {
		vs_warn("write-back: delete not made: changed there since it "
			"was deleted here (%s); what PostgreSQL has stays: "
			"'%s'",
			vs_pg_last_error(wb->pg), e->path);
		res->error = r;
		return 0;
	}
	if (r < 0)
		return r;
	res->seq =
	    PQntuples(pr) == 1 ? strtoll(PQgetvalue(pr, 0, 0), NULL, 10) : 0;
	PQclear(pr);
	return 0;
}

static int wb_commit_rename(struct vs_writeback *wb, const struct vs_jentry *e,
			    struct vs_wb_result *res)
{
	const char *v[5] = {wb->project_id, e->old_path, e->path, e->op_id,
			    wb->author};
	struct wb_current cur;
	PGresult *pr = NULL;
	int r;

	r = vs_pg_exec(wb->pg, &pr,
		       "SELECT vsync_rename($1::uuid, $2, $3, NULL, $4::uuid,"
		       " $5)",
		       5, v, NULL, NULL, 0);
	if (r < 0)
		return r;
	res->seq =
	    PQntuples(pr) == 1 ? strtoll(PQgetvalue(pr, 0, 0), NULL, 10) : 0;
	PQclear(pr);
	/* what is at the target now (best effort: committed already) */
	if (wb_current(wb, e->path, false, &cur) == 0 && cur.live) {
		res->version = cur.version;
		snprintf(res->hash, sizeof(res->hash), "%s", cur.hash);
	}
	return 0;
}

/*
 * Commit @e. 0 when the entry is finished (res->error: 0 committed, or the
 * refusal), -errno when it must be retried later.
 */
static int wb_commit(struct vs_writeback *wb, const struct vs_jentry *e,
		     struct vs_wb_result *res)
{
	int r;

	memset(res, 0, sizeof(*res));
	res->lseq = e->lseq;
	wb->local_failed = false;
	switch (e->op) {
	case VS_JOP_WRITE:
	case VS_JOP_SYMLINK:
		r = wb_commit_put(wb, e, res);
		break;
	case VS_JOP_MKDIR:
		r = wb_commit_mkdir(wb, e, res);
		break;
	case VS_JOP_DELETE:
		r = wb_commit_delete(wb, e, res);
		break;
	case VS_JOP_RENAME:
		r = wb_commit_rename(wb, e, res);
		break;
	default:
		vs_bug("journal entry %" PRIu64 " has op %d", e->lseq, e->op);
	}
	if (r == 0 || wb_retry(wb, r) || wb->in_batch)
		return r; /* a batch's failure is judged one by one */
	/* refused for good, this entry only (a delete based on a version
	 * that is no longer current among them: the newer version is
	 * kept). The reason comes before the path, which may be 4 KB. */
	res->error = r;
	if (e->op == VS_JOP_RENAME)
		vs_error("write-back: rename refused for good: %s (%s%s); "
			 "dropped, the entries after it go on: '%s' -> '%s'",
			 *vs_pg_last_error(wb->pg) ? vs_pg_last_error(wb->pg)
						   : strerror(-r),
			 *vs_pg_last_state(wb->pg) ? "SQLSTATE " : "",
			 vs_pg_last_state(wb->pg), e->old_path, e->path);
	else
		vs_error("write-back: %s refused for good: %s (%s%s); "
			 "dropped, the entries after it go on: '%s'",
			 op_verbs[e->op],
			 *vs_pg_last_error(wb->pg) ? vs_pg_last_error(wb->pg)
						   : strerror(-r),
			 *vs_pg_last_state(wb->pg) ? "SQLSTATE " : "",
			 vs_pg_last_state(wb->pg), e->path);
	return 0;
}

/* ------------------------------------------------------------ the thread */

/* Sleep until @until_ms (monotonic), or until stop; with @kick, a kick
 * ends it too. */
static void wb_sleep(struct vs_writeback *wb, int64_t until_ms, bool kick)
{
	struct timespec ts;

	vs_mono_ts(&ts, until_ms);
	pthread_mutex_lock(&wb->lock);
	while (!wb->stop && !(kick && wb->kicked) && vs_mono_ms() < until_ms)
		pthread_cond_timedwait(&wb->wake, &wb->lock, &ts);
	if (kick)
		wb->kicked = false;
	pthread_mutex_unlock(&wb->lock);
}

static bool wb_stopping(struct vs_writeback *wb)
{
	bool stop;

	pthread_mutex_lock(&wb->lock);
	stop = wb->stop;
	pthread_mutex_unlock(&wb->lock);
	return stop;
}

/* Make what is journaled durable (see Durability). */
static void wb_sync(struct vs_writeback *wb)
{
	vs_journal_sync(wb->journal, 0); /* logged by the journal */
	wb->synced_ms = vs_mono_ms();
}

static void wb_backoff(struct vs_writeback *wb)
{
	/* the entries wait: durable first */
	wb_sync(wb);
	wb_sleep(wb, vs_mono_ms() + vs_backoff_next(&wb->backoff), false);
}

/* A failure to retry: logged as a warning when the write-back was
 * working, or failing on the other side (a local step, such as a full
 * cache volume, after PostgreSQL came back, or the other way round: an
 * operator sees both); each retry after that at debug. */
static void wb_failed(struct vs_writeback *wb, const struct vs_jentry *e, int r)
{
	if (!wb->down || wb->local_failed != wb->down_local) {
		size_t n = vs_journal_pending(wb->journal);

		/* (a local step's failure is not PostgreSQL's: whatever
		 * error the connection has is an earlier call's) */
		vs_warn("write-back: cannot commit %s now: %s (%s%s%s); "
			"%zu entr%s kept journaled, retrying: '%s'",
			op_verbs[e->op], strerror(-r),
			wb->local_failed ? "the content in the cache"
					 : vs_pg_last_error(wb->pg),
			!wb->local_failed && *vs_pg_last_state(wb->pg)
			    ? ", SQLSTATE "
			    : "",
			wb->local_failed ? "" : vs_pg_last_state(wb->pg), n,
			n == 1 ? "y" : "ies", e->path);
		wb->down = true;
		wb->down_local = wb->local_failed;
	} else {
		vs_debug("write-back: retry of '%s' failed: %s", e->path,
			 strerror(-r));
	}
}

struct wb_burst_ctx {
	struct vs_writeback *wb;
	const struct vs_jentry *first;
	const char *prev_op; /* op id the next save must be chained after */
	size_t n;	     /* entries in wb->burst */
};

static int wb_burst_next(void *arg, const struct vs_jentry *e)
{
	struct wb_burst_ctx *c = arg;
	struct vs_writeback *wb = c->wb;

	if (e->lseq == c->first->lseq)
		return 0; /* the oldest: where the burst starts */
	/* the very next entry (a gap is one the journal could not read),
	 * a save of the same path chained after the one before */
	if (c->n == WB_BURST_MAX || e->lseq != wb->burst[c->n - 1] + 1 ||
	    e->op != VS_JOP_WRITE || strcmp(e->path, c->first->path) ||
	    strcmp(e->after_op, c->prev_op))
		return 1;
	wb->last = *e;
	memcpy(wb->burst_ops[c->n], e->op_id, sizeof(wb->burst_ops[0]));
	wb->burst[c->n++] = e->lseq;
	c->prev_op = wb->last.op_id;
	return 0;
}

/* Which is the newest op of the burst (wb->burst_ops[0..n)) that is in
 * PostgreSQL already (a crash after a commit, before its entry left the
 * journal)? 1 with its index in *newest, 0 if none, or -errno. */
static int wb_burst_recorded(struct vs_writeback *wb, size_t n, size_t *newest)
{
	char ids[WB_BURST_MAX * VS_UUID_BUFSZ + 3], *p = ids;
	const char *v[2] = {wb->project_id, ids};
	PGresult *pr = NULL;
	int r;

	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		memcpy(p, wb->burst_ops[i], VS_UUID_LEN);
		p += VS_UUID_LEN;
		*p++ = i + 1 < n ? ',' : '}';
	}
	*p = '\0';
	r = vs_pg_exec(wb->pg, &pr,
		       "SELECT max(u.i) FROM unnest($2::uuid[])"
		       " WITH ORDINALITY AS u(id, i)"
		       " JOIN vsync_operations($1::uuid, $2::uuid[]) o"
		       " ON o.operation_id = u.id",
		       2, v, NULL, NULL, 0);
	if (r < 0)
		return r;
	r = PQntuples(pr) == 1 && !PQgetisnull(pr, 0, 0);
	if (r)
		*newest = (size_t)strtoull(PQgetvalue(pr, 0, 0), NULL, 10) - 1;
	PQclear(pr);
	return r;
}

struct wb_entry_ctx {
	uint64_t lseq;
	struct vs_jentry *out;
};

static int wb_entry_next(void *arg, const struct vs_jentry *e)
{
	struct wb_entry_ctx *c = arg;

	if (e->lseq != c->lseq)
		return 0;
	*c->out = *e;
	return 1;
}

/*
 * The saves of @e's path chained right behind @e (see Bursts): their
 * number (0: none), the lseqs from @e's on in wb->burst, the newest in
 * wb->last. When an op of them is in PostgreSQL already, the burst ends
 * at the newest such op (then in wb->last): it holds what the saves
 * before it changed (it was their burst's newest, or they were committed
 * one by one before it), so they are finished with it, whose commit is a
 * no-op by op id; the saves after it are chained after it. *@recorded:
 * whether it ends so. None from @e up to wb->burst_off (wb_main).
 */
static size_t wb_burst(struct vs_writeback *wb, const struct vs_jentry *e,
		       bool *recorded)
{
	struct wb_burst_ctx c = {wb, e, e->op_id, 1};
	struct wb_entry_ctx ec = {0, &wb->last};
	size_t newest = 0;
	int r;

	*recorded = false;
	if (e->op != VS_JOP_WRITE || e->lseq <= wb->burst_off)
		return 0;
	wb->burst[0] = e->lseq;
	memcpy(wb->burst_ops[0], e->op_id, sizeof(wb->burst_ops[0]));
	if (vs_journal_each(wb->journal, wb_burst_next, &c) < 0 || c.n < 2)
		return 0;
	r = wb_burst_recorded(wb, c.n, &newest);
	if (r == 0)
		return c.n - 1;
	if (r < 0 || newest == 0)
		return 0; /* one by one: the first, then the rest */
	*recorded = true;
	ec.lseq = wb->burst[newest];
	if (newest < c.n - 1 &&
	    vs_journal_each(wb->journal, wb_entry_next, &ec) != 1)
		return 0;
	return newest;
}

struct wb_batch_ctx {
	struct vs_writeback *wb;
	size_t n; /* entries in wb->batch */
};

/* Does @e touch a path that an entry of the batch touches? */
static bool wb_batch_clash(const struct wb_batch_ctx *c,
			   const struct vs_jentry *e)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct vs_jentry *b = &c->wb->batch[i];

		if (!strcmp(e->path, b->path) ||
		    (b->old_path[0] && !strcmp(e->path, b->old_path)) ||
		    (e->old_path[0] &&
		     (!strcmp(e->old_path, b->path) ||
		      (b->old_path[0] && !strcmp(e->old_path, b->old_path)))))
			return true;
	}
	return false;
}

static int wb_batch_next(void *arg, const struct vs_jentry *e)
{
	struct wb_batch_ctx *c = arg;

	if (e->lseq < c->wb->batch[0].lseq)
		return 0;
	if (e->lseq == c->wb->batch[0].lseq)
		return c->n == 1 ? 0 : 1;
	/* the very next entry (a gap is one the journal could not read) */
	if (c->n == WB_BATCH_MAX ||
	    e->lseq != c->wb->batch[c->n - 1].lseq + 1 || wb_batch_clash(c, e))
		return 1;
	c->wb->batch[c->n++] = *e;
	return 0;
}

/*
 * Commit @e and the independent entries right behind it in one
 * transaction (see Batches). Their number (>= 2) with wb->batch and
 * wb->batch_res filled, all committed; 0 when there is no batch to make
 * (nothing was committed: go on one by one); -errno when it failed and
 * was rolled back (wb->solo is set: one by one now).
 */
static int wb_batch(struct vs_writeback *wb, const struct vs_jentry *e)
{
	struct wb_batch_ctx c = {wb, 1};
	size_t i;
	int r;

	if (!wb->batch || wb->solo)
		return 0;
	wb->batch[0] = *e;
	if (vs_journal_each(wb->journal, wb_batch_next, &c) < 0 || c.n < 2)
		return 0;
	r = vs_pg_begin(wb->pg, NULL);
	wb->in_batch = true;
	for (i = 0; r == 0 && i < c.n; i++) {
		r = wb_commit(wb, &wb->batch[i], &wb->batch_res[i]);
		if (r == 0 &&
		    (wb->batch_res[i].error || vs_pg_txn_failed(wb->pg)))
			r = wb->batch_res[i].error ? wb->batch_res[i].error
						   : -EIO;
	}
	wb->in_batch = false;
	if (r == 0)
		r = vs_pg_commit(wb->pg);
	if (r == 0)
		return (int)c.n;
	vs_pg_rollback(wb->pg);
	vs_debug("write-back: a batch of %zu entries failed at '%s' (%s); "
		 "committing them one by one",
		 c.n, wb->batch[i ? i - 1 : 0].path, strerror(-r));
	wb->solo = c.n;
	return r;
}

/* Finish the committed batch of @n entries: done, callback, waiters, in
 * lseq order. 0, or -errno when an entry could not leave the journal (the
 * rest stay journaled: their retry is a no-op by op id). */
static int wb_batch_finish(struct vs_writeback *wb, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct vs_jentry *b = &wb->batch[i];
		const struct vs_wb_result *res = &wb->batch_res[i];
		int r = vs_journal_done(wb->journal, b->lseq);

		if (r < 0 && r != -ENOENT)
			return r;
		vs_debug("write-back: committed %s of '%s' as seq %" PRId64
			 " v%" PRId64 " (batch)",
			 op_verbs[b->op], b->path, res->seq, res->version);
		if (wb->committed)
			wb->committed(wb->arg, b, res);
		vs_metrics_writeback(res->conflict ? VS_WB_CONFLICT
				     : res->merged ? VS_WB_MERGED
						   : VS_WB_COMMITTED);
		wb_advance(wb, b->lseq, -EIO, b->lseq, 0);
	}
	return 0;
}

static void *wb_main(void *arg)
{
	struct vs_writeback *wb = arg;
	struct vs_jentry *e = &wb->e;
	struct vs_wb_result res;
	size_t nburst;
	bool recorded;
	int r;

	pthread_setname_np(pthread_self(), "vs-writeback");
	vs_journal_keep_room(wb->journal);
	while (!wb_stopping(wb)) {
		r = vs_journal_peek(wb->journal, e);
		if (r == -ENOENT) {
			/* entries that vanished or were quarantined are
			 * finished too (refused: their content is lost) */
			wb_advance(wb, vs_journal_low_water(wb->journal) - 1,
				   -EIO, 0, 0);
			wb_sleep(wb, vs_mono_ms() + WB_IDLE_MS, true);
			continue;
		}
		if (r < 0) {
			vs_error("write-back: cannot read the journal: %s",
				 strerror(-r));
			wb_backoff(wb);
			continue;
		}
		wb_advance(wb, e->lseq - 1, -EIO, 0, 0);
		if (vs_mono_ms() - wb->synced_ms >= WB_SYNC_MS)
			wb_sync(wb); /* a backlog: durable behind the commits */
		nburst = wb_burst(wb, e, &recorded);
		if (!nburst && (r = wb_batch(wb, e)) > 0) {
			r = wb_batch_finish(wb, (size_t)r);
			if (r < 0) {
				wb_backoff(wb);
				continue;
			}
			if (wb->down) {
				vs_info("write-back: committing again");
				wb->down = false;
			}
			vs_backoff_reset(&wb->backoff);
			continue;
		}
		if (nburst) {
			vs_debug("write-back: %zu saves of '%s' committed as "
				 "one",
				 nburst + 1, e->path);
			/* based on what the first one was based on */
			memcpy(wb->last.after_op, e->after_op,
			       sizeof(e->after_op));
			wb->last.base_version = e->base_version;
			*e = wb->last;
		}
		r = wb_commit(wb, e, &res);
		if (r < 0) {
			wb_failed(wb, e, r);
			wb_backoff(wb);
			continue;
		}
		if (nburst && res.error && !recorded) {
			/* the newest save was refused (its content lost, a
			 * path refused ...), nothing committed: the older
			 * ones, whose bytes may be fine, one by one */
			vs_debug("write-back: the %zu saves of '%s' are "
				 "committed one by one",
				 nburst + 1, e->path);
			wb->burst_off = e->lseq;
			continue;
		}
		for (size_t i = 0; i < nburst; i++) {
			r = vs_journal_done(wb->journal, wb->burst[i]);
			if (r < 0 && r != -ENOENT)
				break;
			r = 0;
		}
		if (r == 0)
			r = vs_journal_done(wb->journal, e->lseq);
		if (wb->solo)
			wb->solo -= wb->solo > nburst ? nburst + 1 : wb->solo;
		if (r < 0 && r != -ENOENT) {
			/* committed but still journaled: the retry, with the
			 * same op id, is a no-op that returns this result */
			wb_backoff(wb);
			continue;
		}
		if (wb->down) {
			vs_info("write-back: committing again (%zu entr%s "
				"journaled)",
				vs_journal_pending(wb->journal),
				vs_journal_pending(wb->journal) == 1 ? "y"
								     : "ies");
			wb->down = false;
		}
		vs_backoff_reset(&wb->backoff);
		if (res.error == 0)
			vs_debug("write-back: committed %s of '%s' as seq "
				 "%" PRId64 " v%" PRId64,
				 op_verbs[e->op], e->path, res.seq,
				 res.version);
		if (wb->committed)
			wb->committed(wb->arg, e, &res);
		for (size_t i = 0; i < nburst; i++) {
			vs_metrics_writeback(VS_WB_COALESCED);
			wb_advance(wb, wb->burst[i], -EIO, wb->burst[i],
				   res.error);
		}
		vs_metrics_writeback(res.error	    ? VS_WB_REFUSED
				     : res.conflict ? VS_WB_CONFLICT
				     : res.merged   ? VS_WB_MERGED
						    : VS_WB_COMMITTED);
		wb_advance(wb, e->lseq, -EIO, e->lseq, res.error);
	}
	return NULL;
}

/* ------------------------------------------------------------ API */

static void wb_free(struct vs_writeback *wb)
{
	vs_pg_free(wb->pg);
	free(wb->batch);
	free(wb->batch_res);
	free(wb->pg_conninfo);
	free(wb->project_id);
	free(wb->author);
	free(wb);
}

int vs_wb_start(struct vs_writeback **out, const struct vs_wb_config *cfg)
{
	struct vs_writeback *wb;
	int r;

	*out = NULL;
	if (!cfg->project_id || !cfg->cache || !cfg->journal)
		return -EINVAL;
	wb = calloc(1, sizeof(*wb));
	if (!wb)
		return -ENOMEM;
	wb->pg_conninfo = cfg->pg ? strdup(cfg->pg) : NULL;
	wb->project_id = strdup(cfg->project_id);
	wb->author = cfg->author ? strdup(cfg->author) : NULL;
	/* without room for a batch, every entry is committed alone */
	wb->batch = malloc(WB_BATCH_MAX * sizeof(*wb->batch));
	wb->batch_res = malloc(WB_BATCH_MAX * sizeof(*wb->batch_res));
	if (!wb->batch || !wb->batch_res) {
		free(wb->batch);
		free(wb->batch_res);
		wb->batch = NULL;
		wb->batch_res = NULL;
	}
	if ((cfg->pg && !wb->pg_conninfo) || !wb->project_id ||
	    (cfg->author && !wb->author)) {
		wb_free(wb);
		return -ENOMEM;
	}
	wb->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 2000;
	wb->cache = cfg->cache;
	wb->journal = cfg->journal;
	wb->committed = cfg->committed;
	wb->arg = cfg->arg;
	vs_backoff_init(&wb->backoff, WB_BACKOFF_MIN_MS, WB_BACKOFF_MAX_MS);
	/* connects on the first call, so a backend that is down now does not
	 * hold up the start */
	r = vs_pg_new(&wb->pg, wb->pg_conninfo, wb->timeout_ms);
	if (r < 0) {
		wb_free(wb);
		return r;
	}
	wb->done_upto = vs_journal_low_water(wb->journal) - 1;
	pthread_mutex_init(&wb->lock, NULL);
	vs_cond_init_mono(&wb->wake);
	vs_cond_init_mono(&wb->done);
	r = pthread_create(&wb->thread, NULL, wb_main, wb);
	if (r) {
		pthread_cond_destroy(&wb->wake);
		pthread_cond_destroy(&wb->done);
		pthread_mutex_destroy(&wb->lock);
		wb_free(wb);
		return -r;
	}
	*out = wb;
	return 0;
}

void vs_wb_kick(struct vs_writeback *wb)
{
	pthread_mutex_lock(&wb->lock);
	wb->kicked = true;
	pthread_cond_signal(&wb->wake);
	pthread_mutex_unlock(&wb->lock);
}

int vs_wb_wait(struct vs_writeback *wb, uint64_t lseq, int timeout_ms)
{
	int64_t until = vs_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct timespec ts;
	int r = 0;

	vs_mono_ts(&ts, until);
	pthread_mutex_lock(&wb->lock);
	while (lseq > wb->done_upto) {
		if (vs_mono_ms() >= until) {
			r = -ETIMEDOUT;
			goto out;
		}
		pthread_cond_timedwait(&wb->done, &wb->lock, &ts);
	}
	/* the newest record for @lseq, if it was refused */
	for (size_t i = wb->nrefused; i > 0 && wb->nrefused - i < WB_REFUSALS;
	     i--) {
		const struct wb_refusal *f =
		    &wb->refused[(i - 1) % WB_REFUSALS];

		if (f->lseq == lseq) {
			r = f->error;
			break;
		}
	}
out:
	pthread_mutex_unlock(&wb->lock);
	return r;
}

void vs_wb_stop(struct vs_writeback *wb)
{
	if (!wb)
		return;
	pthread_mutex_lock(&wb->lock);
	wb->stop = true;
	pthread_cond_broadcast(&wb->wake);
	pthread_mutex_unlock(&wb->lock);
	pthread_join(wb->thread, NULL);
	pthread_cond_destroy(&wb->wake);
	pthread_cond_destroy(&wb->done);
	pthread_mutex_destroy(&wb->lock);
	wb_free(wb);
}
