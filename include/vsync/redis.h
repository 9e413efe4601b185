/*
 * redis.h - the Redis backend: one hiredis connection with deadlines, and
 * the key layout (docs/protocol.md, "Redis").
 *
 * Keys carry the project UUID as a {hash tag}, so one project lives in one
 * Redis Cluster slot:
 *   manifest:{<id>}        hash: path -> manifest entry (see vs_redis_entry_*)
 *   blob:{<id>}:<sha256>   content, vs_blob_encode()d (raw or lz4)
 *   events:{<id>}          stream, one entry per change, id "<seq>-0",
 *                          fields as in change.h
 *   relay:{<id>}:cursor    the last seq the relay published (the manifest
 *                          hash reflects exactly this change)
 *   containers:{<id>}      (cold-start issue) registered agents
 *   name:{<name>}          the id of project <name>: "[sig1:<sig> ]<id>"
 *                          (the one key without the id as its tag: a
 *                          mount reads it to learn the id)
 * Pub/sub channel: project.<id>.files (the seed's event, JSON).
 *
 * A struct vs_redis belongs to one thread at a time. Every call has a
 * deadline (the timeout given at open, changeable per call for blocking
 * reads); on a timeout or I/O error the connection is dropped and the next
 * call reconnects. Errors: 0 or -errno (-ECONNREFUSED unreachable,
 * -ETIMEDOUT, -EACCES auth refused, -EIO a Redis error reply or protocol
 * error; the message is kept: vs_redis_last_error()).
 */
#ifndef VSYNC_REDIS_H
#define VSYNC_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "vsync/manifest.h"
#include "vsync/util.h"

struct vs_redis;

/* @url: redis://[[user]:password@]host[:port][/db] (only loopback or the
 * configured server; rediss:// is refused: no TLS in hiredis 0.14, see
 * docs/operations.md). Connects at once; on failure *out is
 * NULL and the reason logged. */
int vs_redis_open(struct vs_redis **out, const char *url, int timeout_ms);

/* Like vs_redis_open() but without connecting: the URL is checked (-EINVAL
 * and a log line naming what is wrong with it), the first command (or
 * vs_redis_ensure()) connects, and a failure to connect is left to the
 * caller to report (vs_redis_last_error()). 0, -EINVAL or -ENOMEM. */
int vs_redis_new(struct vs_redis **out, const char *url, int timeout_ms);
/* Connect (AUTH, SELECT) unless connected. 0 or -errno as above. */
int vs_redis_ensure(struct vs_redis *r);
/* Drop the connection (the next call reconnects). */
void vs_redis_disconnect(struct vs_redis *r);
/* "host:port/db" for log lines (never the password). */
const char *vs_redis_describe(const struct vs_redis *r);

/* A parsed redis:// URL. Pure; user/password are %XX-decoded. */
struct vs_redis_url {
	char host[256]; /* name or address; IPv6 without the brackets */
	int port;	/* default 6379 */
	int db;		/* default 0 */
	char user[128]; /* "" = none (AUTH password) */
	char password[512];
	int has_password;
};
/* 0, or -EINVAL with the reason in @why. */
int vs_redis_url_parse(struct vs_redis_url *u, const char *url, char *why,
		       size_t whylen);
void vs_redis_free(struct vs_redis *r);
const char *vs_redis_last_error(const struct vs_redis *r);
void vs_redis_set_timeout(struct vs_redis *r, int timeout_ms);
int vs_redis_get_timeout(const struct vs_redis *r);

/*
 * Run one command (argv form, binary-safe). On success *reply owns the
 * reply (freeReplyObject it); an error reply is returned as -EIO with its
 * text in vs_redis_last_error() and *reply NULL.
 */
int vs_redis_command(struct vs_redis *r, redisReply **reply, int argc,
		     const char **argv, const size_t *argvlen);

/*
 * Like vs_redis_command(), but the reply is awaited in poll(2) together
 * with @wake_fd (-1: none) for at most @wait_ms (not the socket
 * timeout): for a long blocking command (XREAD BLOCK) that another thread
 * must be able to interrupt without touching the connection. -ECANCELED
 * when @wake_fd became readable first, -ETIMEDOUT after @wait_ms; both
 * drop the connection (a reply is still owed), as does any I/O error.
 */
int vs_redis_command_wake(struct vs_redis *r, redisReply **reply, int argc,
			  const char **argv, const size_t *argvlen, int wake_fd,
			  int wait_ms);

/* Key names; @out must hold VS_REDIS_KEY_MAX bytes. */
#define VS_REDIS_KEY_MAX 200
void vs_redis_key_manifest(char *out, const char *id);
void vs_redis_key_blob(char *out, const char *id, const char *hash);
/* Content larger than a PostgreSQL chunk (VS_CHUNK_SIZE, pg.h) is put in
 * pieces of VS_REDIS_CHUNK_SIZE bytes (the last shorter), each named by
 * its own SHA-256: piece:{id}:<sha>, so that versions of a file share the
 * pieces they have in common (an edit puts only the ones it changed);
 * chunks:{id}:<hash>: the index of content @hash, its pieces' SHA-256s in
 * order, signed by the relay (docs/protocol.md, "Chunks"). Smaller than
 * PostgreSQL's chunks: Redis sends a large value in 16 KiB blocks, 64 KiB
 * an event-loop turn, and an 8 MiB value took it 50-80 ms on the
 * development VM, 8 values of 1 MiB 35-45 ms. */
#define VS_REDIS_CHUNK_SIZE ((size_t)1 << 20)
void vs_redis_key_piece(char *out, const char *id, const char *sha);
void vs_redis_key_chunks(char *out, const char *id, const char *hash);
/* delta:{id}:<base>:<hash>: a librsync delta from content @base to @hash */
void vs_redis_key_delta(char *out, const char *id, const char *base,
			const char *hash);
void vs_redis_key_events(char *out, const char *id);
void vs_redis_key_cursor(char *out, const char *id);
void vs_redis_key_containers(char *out, const char *id);

/* SET @key to @len bytes of @val with a TTL of @ttl_s seconds (none if
 * <= 0). 0 or -errno. */
int vs_redis_set_ex(struct vs_redis *r, const char *key, const void *val,
		    size_t len, int ttl_s);
/* EXPIRE @key in @ttl_s seconds: 1 if it is there (its TTL refreshed), 0
 * if not, or -errno. */
int vs_redis_expire(struct vs_redis *r, const char *key, int ttl_s);

/* Content: blob:{id}:<hash>, decoded (not verified: the caller checks
 * the hash). Any container of the project can write it, so only as much
 * of the value is read (GETRANGE) as an encoding of @max_len bytes takes,
 * and one byte more: a longer value costs no more than that. -ENOENT when
 * absent, -EFBIG when longer, -EBADMSG when it does not decode. */
int vs_redis_blob_get(struct vs_redis *r, const char *id, const char *hash,
		      size_t max_len, uint8_t **buf, size_t *len);
/* vs_redis_blob_get() of @n blobs (@hashes[i], at most @max_lens[i]
 * bytes) in one round trip (pipelined GETRANGEs, each bounded the same
 * way): @res[i] is its result (-EIO for an error reply, e.g. NOPERM), with
 * @bufs[i] (malloc'd) and @lens[i] when 0. Returns 0, or the connection's
 * -errno (then every @res[i] is that, and no buffer is set). */
int vs_redis_blob_get_many(struct vs_redis *r, const char *id,
			   const char *const *hashes, const size_t *max_lens,
			   size_t n, uint8_t **bufs, size_t *lens, int *res);
/* SET blob:{id}:<hash> (encoded, lz4 above the threshold) with a TTL. */
int vs_redis_blob_put(struct vs_redis *r, const char *id, const char *hash,
		      const void *buf, size_t len, int ttl_s);

/* A piece (piece:{id}:<sha>), decoded into the caller's @buf of @cap
 * bytes (-EFBIG if larger; not verified: the caller checks @sha); read
 * bounded like a blob. */
int vs_redis_piece_get(struct vs_redis *r, const char *id, const char *sha,
		       uint8_t *buf, size_t cap, size_t *len);
/* SET it (encoded like a blob) with a TTL. */
int vs_redis_piece_put(struct vs_redis *r, const char *id, const char *sha,
		       const void *buf, size_t len, int ttl_s);
/* Refresh its TTL: 1 if it is there, 0 if not, or -errno. */
int vs_redis_piece_touch(struct vs_redis *r, const char *id, const char *sha,
			 int ttl_s);

/* The index of chunked content @hash (chunks:{id}:<hash>, signed by the
 * relay: vs_sign_chunks_encode), as stored: 0 and the string reply in
 * *@rep (reply_free/freeReplyObject it; the caller decodes and checks it
 * with vs_sign_chunks_decode), -ENOENT when absent, -EIO for another
 * type, or the command's -errno. */
int vs_redis_chunks_index_get(struct vs_redis *r, const char *id,
			      const char *hash, redisReply **rep);
/* SET it to @len bytes of @val with a TTL (none if @ttl_s <= 0). */
int vs_redis_chunks_index_put(struct vs_redis *r, const char *id,
			      const char *hash, const void *val, size_t len,
			      int ttl_s);
/* Refresh the TTL of the index of @hash and of its @n pieces (@shas: n
 * SHA-256s in hex, one after the other, as the index lists them), in one
 * round trip (a script): 1 if they are all there, 0 if one is missing
 * (those before it are refreshed), or -errno. */
int vs_redis_chunks_touch(struct vs_redis *r, const char *id, const char *hash,
			  const char *shas, size_t n, int ttl_s);

/* A delta (raw bytes, see delta.h): delta:{id}:<base>:<hash>, of which
 * at most @max_len + 1 bytes are read (GETRANGE: containers write
 * deltas). -ENOENT when absent, -EFBIG when over @max_len bytes, -EIO. */
int vs_redis_delta_get(struct vs_redis *r, const char *id, const char *base,
		       const char *hash, size_t max_len, uint8_t **buf,
		       size_t *len);
/* SET delta:{id}:<base>:<hash> with a TTL (none if @ttl_s <= 0). */
int vs_redis_delta_put(struct vs_redis *r, const char *id, const char *base,
		       const char *hash, const void *buf, size_t len,
		       int ttl_s);

/*
 * The project's manifest as the relay keeps it (manifest:{id} read with
 * relay:{id}:cursor in one MULTI, so the tree and its seq agree). Paths
 * and values are validated like any input; -ENOENT when Redis has no
 * manifest for the project (never relayed, or evicted); 0 with @m filled
 * (m->seq the cursor) otherwise.
 *
 * With @verify (the relay's public key, sign.h) the snapshot is used only
 * if every value carries a valid signature bound to the project and its
 * path, and the stream's last entry, read in the same MULTI, is a validly
 * signed entry at the cursor's seq (which authenticates the seq). Else
 * -EKEYREJECTED (logged, counted in vsync_redis_unverified_total; the
 * caller reads PostgreSQL): an extra, altered, unsigned or malformed
 * field rejects the whole snapshot. Without @verify, signatures are
 * ignored and invalid entries skipped (the unverified mode).
 */
struct vs_sign_key;
int vs_redis_manifest_load(struct vs_redis *r, const char *id,
			   const struct vs_sign_key *verify,
			   struct vs_manifest *m);

/*
 * tree:{id}, the tree snapshot (tree.h): the whole manifest at one seq,
 * signed once, with the bundle index. load: GET and vs_tree_decode();
 * -ENOENT when absent, -EBADMSG when malformed or corrupt (logged), and
 * with @verify -EKEYREJECTED (logged, counted in
 * vsync_redis_unverified_total); the caller goes on to the manifest:{id}
 * path. @index as in vs_tree_decode(). put: SET @val (vs_tree_encode()'s)
 * unless the tree there is at @seq or later (another relay's): 1 set, 0
 * kept, or -errno.
 */
void vs_redis_key_tree(char *out, const char *id);
/* bundle:{id}:<bundle id>, a bundle of small files (tree.h) */
void vs_redis_key_bundle(char *out, const char *id, const char *bundle);
int vs_redis_tree_load(struct vs_redis *r, const char *id,
		       const struct vs_sign_key *verify, struct vs_manifest *m,
		       char **index, size_t *index_len);
int vs_redis_tree_put(struct vs_redis *r, const char *id, int64_t seq,
		      const void *val, size_t len);

/*
 * name:{<name>}, the relay's mapping of a project name to its id, which a
 * mount by name reads instead of asking PostgreSQL. put: SET it, signed
 * with @sign (sign.h, "vsync-name-v1") unless NULL. get: the id into @id;
 * -ENOENT when absent, -EINVAL for a name that is not a project name,
 * -EBADMSG when malformed, and with @verify -EKEYREJECTED (logged, counted
 * in vsync_redis_unverified_total) unless validly signed for exactly this
 * name and id.
 */
void vs_redis_key_name(char *out, const char *name);
int vs_redis_name_put(struct vs_redis *r, const char *name, const char *id,
		      const struct vs_sign_key *sign);
int vs_redis_name_get(struct vs_redis *r, const char *name,
		      const struct vs_sign_key *verify, char id[VS_UUID_BUFSZ]);
/* A project name as sql/001_schema.sql allows: [A-Za-z0-9][A-Za-z0-9._-]
 * up to 64 characters (so safe in a key and in an ACL key pattern). */
bool vs_redis_project_name_valid(const char *name);

/* learned:{id}: the paths the last cold mount read first, newline-
 * separated (prefetch.h, "The learned list"). get: at most
 * VS_LEARN_BYTES_MAX + 1 bytes of it (GETRANGE: a longer value costs no
 * more; vs_learned_parse() keeps its complete lines within the bound) as
 * malloc'd NUL-terminated text of *@len bytes, -ENOENT if none. put:
 * stores what vs_learned_cut() keeps. */
void vs_redis_key_learned(char *out, const char *id);
int vs_redis_learned_get(struct vs_redis *r, const char *id, char **text,
			 size_t *len);
int vs_redis_learned_put(struct vs_redis *r, const char *id, const char *text,
			 size_t len);

#endif
