/*
 * pg.h - the PostgreSQL backend: one connection with deadlines.
 *
 * Every call has a deadline (the timeout given at open, per call): the
 * connection is made with PQconnectStart/PQconnectPoll and queries are sent
 * asynchronously and waited for with poll(2); on expiry the query is
 * cancelled from a detached thread (PQcancel has no deadline of its own),
 * waited for 1 s at most, then the connection is reset and -ETIMEDOUT
 * returned. A struct vs_pg
 * belongs to one thread at a time (callers serialise).
 *
 * Errors: 0 or -errno. PostgreSQL errors are turned into errno in exactly
 * one place (vs_pg_errno()):
 *   -ECONNREFUSED  server unreachable or not accepting connections
 *   -EACCES        authentication or permission refused (28, 42501)
 *   -ETIMEDOUT     deadline passed (or SQLSTATE 57014, cancelled)
 *   -EAGAIN        serialization failure, deadlock (class 40), out of
 *                  resources (53), lock not available (55P03)
 *   -ENOENT        unknown project, path or version (SQLSTATE P0002)
 *   -EEXIST        target exists            (SQLSTATE 23505 / P0003)
 *   -ESTALE        base version is not current: a conflict (P0004 only)
 *   -EINVAL        invalid path or argument (22023; classes 22 and 23)
 *   -ENOTDIR, -EISDIR, -ENOTEMPTY           (SQLSTATE P0005, P0006, P0007)
 *   -ENAMETOOLONG  path or name too long     (SQLSTATE P0008)
 *   -E2BIG         a server limit exceeded   (class 54)
 *   -EIO           anything else
 * What the caller should do about a failure is not guessed from the errno:
 * the SQLSTATE of the last call is kept (vs_pg_last_state(), "" when the
 * server did not answer) and vs_pg_verdict() judges it: retry later,
 * refused for good, or a conflict to resolve.
 * A connection lost inside a transaction loses it: every call then fails
 * with -EIO until the caller calls vs_pg_rollback().
 * The server's message for the last failure is kept: vs_pg_last_error().
 */
#ifndef VSYNC_PG_H
#define VSYNC_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "vsync/manifest.h"
#include "vsync/util.h"

struct vs_pg;

/*
 * Connect to @conninfo (a libpq URL or key=value string; NULL or "" means
 * libpq's defaults / PG* environment). @timeout_ms bounds the connect and
 * every later call. On failure *out is NULL and the reason is logged.
 */
int vs_pg_open(struct vs_pg **out, const char *conninfo, int timeout_ms);
void vs_pg_free(struct vs_pg *pg);

/* Like vs_pg_open() but without connecting: the first call (or
 * vs_pg_ensure()) connects, and a failure to connect is left to the caller
 * to report (vs_pg_last_error()), not logged. 0 or -ENOMEM. */
int vs_pg_new(struct vs_pg **out, const char *conninfo, int timeout_ms);

/*
 * The connect under vs_pg_open(), for a caller that needs a bare PGconn
 * (e.g. a LISTEN connection, whose socket struct vs_pg does not expose):
 * connect to @conninfo (as in vs_pg_open()) as application @app_name
 * within @timeout_ms, without blocking past it, and make the connection
 * non-blocking. On success *out is the caller's (PQfinish()). On failure
 * *out is NULL, @err (@errlen bytes, one line) says why, and the result is
 * -ENOMEM, -ETIMEDOUT, -errno of poll(2), or the vs_pg_errno() of SQLSTATE
 * 28000 (authentication refused) or 08001 (cannot connect).
 */
int vs_pg_connect_conn(PGconn **out, const char *conninfo, const char *app_name,
		       int timeout_ms, char *err, size_t errlen);

/* Change the per-call deadline (e.g. longer for a large blob). */
void vs_pg_set_timeout(struct vs_pg *pg, int timeout_ms);
int vs_pg_get_timeout(const struct vs_pg *pg);

/* Last server or client error text (never NULL; "" if none). */
const char *vs_pg_last_error(const struct vs_pg *pg);

/* Reconnect if the connection was lost. 0 or -errno. */
int vs_pg_ensure(struct vs_pg *pg);

/*
 * Run one statement with text parameters (NULL for SQL NULL) and optional
 * binary parameters: @lengths/@formats as in PQexecParams (may be NULL).
 * @binary_result asks for binary result columns. On success *res_out owns
 * the result (PQclear it); returns 0 or -errno (then *res_out is NULL).
 */
int vs_pg_exec(struct vs_pg *pg, PGresult **res_out, const char *sql,
	       int nparams, const char *const *values, const int *lengths,
	       const int *formats, int binary_result);

/* Content up to this size comes with the change feed (vs_pg_feed): a batch
 * of 500 changes brings at most 8 MiB of it. */
#define VS_FEED_CONTENT_MAX (16 * 1024)

/*
 * Read up to @limit changes of project @id after seq @after from
 * vsync_change_feed, in seq order, into *@res_out (PQclear it): its 13
 * columns, read by name (seq op path old_path kind mode size hash version
 * mtime_ns target author conflict), then column VS_FEED_CONTENT: the
 * content of a change that is no delete or directory and of at most
 * @content_max bytes (vsync_blob in the same query: no round trip of its
 * own), bytea as text, else NULL - unchecked: the caller checks it
 * against the hash. 0 or -errno.
 */
#define VS_FEED_CONTENT 13
int vs_pg_feed(struct vs_pg *pg, const char *id, int64_t after, int limit,
	       uint64_t content_max, PGresult **res_out);

/* Simple statements without parameters or results (BEGIN, COMMIT ...);
 * @sql may hold several statements (a migration file). 0 or the first
 * error as -errno. */
int vs_pg_cmd(struct vs_pg *pg, const char *sql);

/* Transactions. @mode is appended to BEGIN ("ISOLATION LEVEL ...", or
 * NULL). vs_pg_rollback() never fails: it rolls back what is open, drops
 * the connection if even that fails, and clears a lost-transaction state. */
int vs_pg_begin(struct vs_pg *pg, const char *mode);
int vs_pg_commit(struct vs_pg *pg);
void vs_pg_rollback(struct vs_pg *pg);
/* The open transaction has failed (a statement in it was refused, even one
 * whose error the caller chose to ignore): COMMIT would roll it back. */
bool vs_pg_txn_failed(const struct vs_pg *pg);

/* The errno (positive) for a SQLSTATE or SQLSTATE class (table above);
 * EIO for NULL or anything unknown. The one place errors are mapped. */
int vs_pg_errno(const char *sqlstate);

/* What a failed call means for its caller. */
enum vs_pg_verdict {
	/* may succeed later, sent again unchanged: no answer (connection,
	 * deadline), the server's state or resources, a serialization
	 * failure or deadlock, credentials, a schema not initialised */
	VS_PG_RETRY = 1,
	/* never succeeds as sent: invalid data, a constraint, a server
	 * limit, a refusal of vsync's own functions (classes 21, 22, 23, 2F,
	 * 0A, 54, P0 but P0004) */
	VS_PG_REFUSED,
	/* a write's base version is not current (P0004): resolve */
	VS_PG_CONFLICT,
};
/* The verdict on @sqlstate (NULL or "": no answer, so VS_PG_RETRY). */
enum vs_pg_verdict vs_pg_verdict(const char *sqlstate);
/* The SQLSTATE of the last call, if it failed with an answer from the
 * server; "" otherwise (success, or no answer). Never NULL. */
const char *vs_pg_last_state(const struct vs_pg *pg);

/*
 * Notifications. vs_pg_listen() LISTENs on @channel (a plain identifier).
 * A LISTEN does not survive a reconnect: vs_pg_wait_notify() returns
 * -ECONNRESET when the connection was lost, and the caller listens again.
 * vs_pg_wait_notify() waits up to @timeout_ms and returns the number of
 * notifications drained that are for @project_id (vs_pg_notify_parse();
 * every one if @project_id is NULL): 0 on timeout, or -errno. Any role
 * may NOTIFY on any channel, so the others - another project's, or junk -
 * are dropped without ending the wait early. Payloads are only hints and
 * are not returned.
 */
int vs_pg_listen(struct vs_pg *pg, const char *channel);
int vs_pg_wait_notify(struct vs_pg *pg, const char *project_id, int timeout_ms);
/*
 * The project id and seq of a payload on file_changes, exactly
 * {"project_id": "<uuid>", "seq": N} (docs/protocol.md, "NOTIFY"; "seq"
 * may be missing: *@seq is then 0). 0, or -EBADMSG for anything else
 * (another member, a malformed id, a seq below 1, not JSON): any role can
 * send one, so such a payload is junk and names nothing.
 */
int vs_pg_notify_parse(const char *payload, char id[VS_UUID_BUFSZ],
		       int64_t *seq);

/* Resolve a project name or UUID to its UUID. -ENOENT if unknown. */
/*
 * A conninfo (key='value' pairs) that reaches the same server and database
 * as @pg's open connection, with the same TLS settings, as @user with
 * @password: what a container is given (vsyncctl grant). The client
 * certificate and key, the passfile and the service file of @pg's own
 * login are left out. On success *out is malloc'd (the caller frees it).
 * 0, -ENOTCONN, or -ENOMEM.
 */
int vs_pg_conninfo_as(struct vs_pg *pg, const char *user, const char *password,
		      char **out);

int vs_pg_project_resolve(struct vs_pg *pg, const char *name_or_id,
			  char id_out[VS_UUID_BUFSZ]);

/*
 * Load the current tree of project @id (one query, one snapshot) into @m
 * (initialised, empty). Rows whose path fails validation are skipped with a
 * warning naming the path. Sets m->seq to the change sequence the tree
 * reflects. On failure @m is left empty.
 */
int vs_pg_manifest_load(struct vs_pg *pg, const char *id,
			struct vs_manifest *m);

/*
 * The tree of project @id as it was right after change @seq, into @m as
 * vs_pg_manifest_load() does; m->seq is @seq. -ERANGE (and the reason in
 * vs_pg_error) if the project has no change @seq yet.
 */
int vs_pg_manifest_load_at(struct vs_pg *pg, const char *id, int64_t seq,
			   struct vs_manifest *m);

/*
 * The change of project @id that "@when" names into *@seq: a seq (digits),
 * or a time PostgreSQL reads as timestamptz (ISO 8601, "2026-12-03
 * 10:00:00+00", "yesterday") for the last change stamped at or before it
 * (0: none yet). -ERANGE for a seq past the project's last change, -EINVAL
 * for a time PostgreSQL cannot read (the reason in vs_pg_error).
 */
int vs_pg_seq_at(struct vs_pg *pg, const char *id, const char *when,
		 int64_t *seq);

/*
 * Fetch the bytes of content @hash of project @id into a malloc'd buffer.
 * Does not verify the hash (the caller does). -ENOENT if no such content.
 */
int vs_pg_blob_fetch(struct vs_pg *pg, const char *id, const char *hash,
		     uint8_t **buf, size_t *len);

/*
 * Content larger than VS_CHUNK_SIZE is stored in PostgreSQL as chunks of
 * that size, the last one shorter (sql/006_chunks.sql; the server takes
 * chunks of up to 8 MiB). Such a file never travels, nor sits in memory,
 * whole.
 */
#define VS_CHUNK_SIZE ((size_t)8 << 20)

/* The length of chunk @i of content of @size bytes (i < the count). */
static inline uint64_t vs_chunk_len(uint64_t size, uint64_t i)
{
	uint64_t rest = size - i * VS_CHUNK_SIZE;

	return rest < VS_CHUNK_SIZE ? rest : VS_CHUNK_SIZE;
}

/*
 * Store the @size bytes of @fd (read with pread from offset 0, chunk by
 * chunk) as content @hash of project @id, in the caller's transaction:
 * each chunk is hashed, the server is asked which it lacks
 * (vsync_chunks_missing) and sent those alone (vsync_chunk_put, each with
 * the deadline its bytes take from @timeout_ms). *@shas_out (malloc'd) is
 * then the chunks' names as a PostgreSQL array literal, for
 * vsync_write_chunked. -EBADMSG if the bytes are not @hash (the file
 * changed, or is not what its name says), -EIO if @fd ends early before
 * it is hashed or a read of it fails (this machine's failure, not the
 * content's: the committer retries it), -ENOMEM; else 0 or the backend's
 * -errno.
 */
int vs_pg_chunks_put(struct vs_pg *pg, const char *id, const char *hash, int fd,
		     uint64_t size, int timeout_ms, char **shas_out);

/*
 * The names of the chunks of content @hash (@size bytes) of project @id,
 * without their bytes: into @shas, ceil(@size / VS_CHUNK_SIZE) SHA-256s in
 * hex, back to back (no NULs). -ENOENT if the content is stored whole,
 * -EIO if the server's list does not cut @size at VS_CHUNK_SIZE, else 0
 * or the backend's -errno.
 */
int vs_pg_chunks_list(struct vs_pg *pg, const char *id, const char *hash,
		      uint64_t size, char *shas);

/*
 * Read the chunks of content @hash (@size bytes) of project @id in order,
 * each checked against the SHA-256 the server stored with it, and hand
 * each to @sink (a non-zero return stops and is returned): all of them,
 * or those whose @want[i] is true (@want: one per chunk). -ENOENT if the
 * content has no chunks (it is stored whole: vs_pg_blob_fetch), -EIO if a
 * chunk is missing, corrupt or the sizes disagree, else 0 or the
 * backend's -errno. Does not check the whole against @hash (the caller
 * does).
 */
int vs_pg_chunks_fetch(struct vs_pg *pg, const char *id, const char *hash,
		       uint64_t size, const bool *want, int timeout_ms,
		       int (*sink)(void *arg, const uint8_t *buf, size_t len),
		       void *arg);

#endif
