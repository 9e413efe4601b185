/*
 * content.h - where file bytes come from: local cache first, then the
 * backends, always checked against their SHA-256 before they are served.
 *
 * Thread-safe: FUSE request threads call vs_content_open() concurrently.
 * Backend access is serialised inside (one PostgreSQL and one Redis
 * connection, each guarded by a mutex); a backend call never exceeds the
 * configured deadline.
 */
#ifndef VSYNC_CONTENT_H
#define VSYNC_CONTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vs_cache;
struct vs_content;

/*
 * @pg_conninfo: as for vs_pg_open (NULL = offline: cache only).
 * @redis_url: as for vs_redis_new (NULL or "": no Redis tier); checked
 * here (-EINVAL, logged), connected on first use.
 * @project_id: UUID text. The cache must outlive the content source.
 */
int vs_content_new(struct vs_content **out, struct vs_cache *cache,
		   const char *pg_conninfo, const char *redis_url,
		   const char *project_id, int timeout_ms);
void vs_content_free(struct vs_content *c);
/* Believe the index of content stored in chunks in Redis only when @k
 * (which must outlive @c) signed it; NULL (the default): any index, the
 * chunks and the whole are checked against it and the hash anyway. */
struct vs_sign_key;
void vs_content_set_verify(struct vs_content *c, const struct vs_sign_key *k);

/*
 * Store @len bytes that should be content @hash of @size bytes (a stream
 * entry's inline "data") in the cache, after checking them against
 * @hash: 0, or -EBADMSG (logged, nothing stored), -ENOSPC ...; the
 * caller then goes on with vs_content_open(), which finds them or
 * fetches the content. @path is for the log line. With @fd_out, what
 * was stored is also opened there, checked (as vs_cache_store_open(),
 * in memory when the volume has no room); -1 on an error. A copy the
 * cache had already is replaced by the checked bytes. With @memory and
 * @fd_out, the checked bytes are only put in a memfd there
 * (vs_cache_memory_open), not in the cache: what the creation and
 * rename of a cache object cost (a fifth of a pushed change's CPU) is
 * saved, and the cache fetches the content if it is ever asked for it.
 */
int vs_content_put(struct vs_content *c, const char *hash, uint64_t size,
		   const void *buf, size_t len, const char *path, bool memory,
		   int *fd_out);

/*
 * Drop the Redis connection unless a fetch is using it (the next fetch
 * reconnects): called now and then by the agent, so that an idle agent
 * holds no connection for content it fetched minutes ago. NULL is fine.
 */
void vs_content_redis_idle(struct vs_content *c);

/*
 * Return a read-only fd on verified content @hash (@size bytes expected).
 * Local cache first; else fetched from Redis, else from PostgreSQL (and
 * then put into Redis, best effort), verified, stored in the cache, then
 * opened. A Redis failure never fails the read: PostgreSQL is tried. Errors:
 * -EIO when the content cannot be had (backend down, timed out, or bytes that
 * do not match: logged), -ENOMEM, -EMFILE or -ENFILE (out of fds here: the
 * caller may close some and try again).
 * @path is only used in log lines.
 */
int vs_content_open(struct vs_content *c, const char *hash, uint64_t size,
		    const char *path, int *fd_out);

/*
 * Make content @hash (@size bytes) local from a delta against content
 * @base_hash, when that is cheap: 0 if the cache has @hash already, or
 * has @base_hash and Redis has delta:{id}:<base_hash>:<hash>, which is
 * applied, checked against @hash and stored ("applied delta" logged,
 * counted as a Redis fetch of the delta's bytes). Otherwise -ENOENT (no
 * base, no delta, no Redis), -EBADMSG (corrupt delta or a result that does
 * not match: logged), -ENOMEM or -EIO: the caller goes on with
 * vs_content_open(), which fetches the full content. @path is for logs.
 */
int vs_content_prepare_delta(struct vs_content *c, const char *base_hash,
			     const char *hash, uint64_t size, const char *path);

/* Does content of @size bytes travel in pieces (over a PostgreSQL chunk,
 * pg.h VS_CHUNK_SIZE), so that vs_content_prepare_pieces applies? */
bool vs_content_in_pieces(uint64_t size);

/*
 * Make large content @hash (@size bytes, over a chunk: it travels in
 * pieces) local from Redis, taking the pieces it shares with content
 * @base_hash (an earlier version of the file) from the cache rather than
 * from Redis: an edit of a few bytes of a large file then costs the
 * pieces it changed. Every piece is checked against the signed index and
 * the whole against @hash, as vs_content_open() does. 0 (made, "pieces
 * taken from the previous version" logged, the bytes from Redis counted
 * as a Redis fetch; or the cache had it), -ENOENT (not large, no base in
 * the cache, no Redis or no index there) or another -errno: the caller
 * goes on with vs_content_open(), which fetches the full content.
 */
int vs_content_prepare_pieces(struct vs_content *c, const char *base_hash,
			      const char *hash, uint64_t size,
			      const char *path);

/*
 * Make @n contents local in few round trips: what the cache lacks is read
 * in one Redis round trip (pipelined GETRANGEs, each value read only up to
 * its expected size: vs_redis_blob_get_many), and what Redis lacks with
 * one PostgreSQL query;
 * everything is verified before it is stored. Returns how many are still
 * missing (0: all local), or -ENOMEM. @paths are for log lines.
 */
int vs_content_fetch_many(struct vs_content *c, const char *const *hashes,
			  const uint64_t *sizes, const char *const *paths,
			  size_t n);

/*
 * Make the files of bundle @b (tree.h) local in one GET: the value must
 * hash to b->sha (the signed index's word) before it is decoded, and each
 * file to its own name before it is stored. Files the cache has are
 * skipped. Returns how many were stored, or -ENOENT (no Redis, or no such
 * bundle: gone since the index was written), -EKEYREJECTED (tampered:
 * logged, counted as unverified), -EBADMSG (corrupt), -EIO (Redis
 * failed). On any error the caller fetches the files one by one.
 */
struct vs_bundle_ref;
int vs_content_fetch_bundle(struct vs_content *c,
			    const struct vs_bundle_ref *b);

#endif
