/*
 * content.c - file bytes: local cache, then Redis, then PostgreSQL
 * (content.h).
 *
 * DESIGN
 * FUSE threads call vs_content_open() concurrently. The cache is safe to
 * use from any thread; the backend connections are not: PostgreSQL
 * fetches take @lock (one at a time; the cache is checked again under the
 * lock so two readers of one file fetch it once from PostgreSQL), Redis
 * use takes @redis_lock. Redis reads happen before and outside @lock; the
 * backfill after a PostgreSQL fetch takes redis_lock under lock, so the
 * order is lock -> redis_lock.
 *
 * Sources in order: the local cache; Redis (blob:{id}:<hash>, decoded,
 * checked against the hash like everything else); PostgreSQL, after which
 * the bytes are put into Redis for the next container (best effort: a
 * failure is a debug line). Redis is an optimisation only: any Redis
 * failure (down, timeout, corrupt or mismatching blob) falls through to
 * PostgreSQL, so it never fails a read PostgreSQL can serve. On a Redis
 * connection error the connection is dropped and Redis is not tried again
 * for VS_CONTENT_RETRY_MS; the same holds for PostgreSQL connects, so a
 * dead backend costs a reader an immediate fallback or EIO, not a timeout
 * each time. A failed query only drops the connection (the next fetch
 * reconnects). The deadline of a fetch grows with the size of the file
 * (vs_size_timeout_ms).
 */
#include "vsync/clock.h"
#include "vsync/content.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vsync/cache.h"
#include "vsync/delta.h"
#include "vsync/hash.h"
#include "vsync/log.h"
#include "vsync/metrics.h"
#include "vsync/blob.h"
#include "vsync/pg.h"
#include "vsync/redis.h"
#include "vsync/sign.h"
#include "vsync/tree.h"
#include "vsync/util.h"
#include "vsync/banned.h"

#define VS_CONTENT_RETRY_MS 1000
/* content PostgreSQL served is put into Redis up to this size, this long */
#define VS_CONTENT_BACKFILL_MAX	  (64u << 20)
#define VS_CONTENT_BACKFILL_TTL_S 86400

struct vs_content {
	struct vs_cache *cache;
	char *conninfo; /* NULL: offline */
	char project_id[VS_UUID_BUFSZ];
	int timeout_ms;

	char *redis_url; /* NULL: no Redis tier */

	pthread_mutex_t lock; /* protects pg, retry_after_ms */
	struct vs_pg *pg;
	int64_t retry_after_ms; /* monotonic; no connect attempt before it */

	const struct vs_sign_key *verify; /* chunk indexes must be signed */

	pthread_mutex_t redis_lock; /* protects redis, redis_retry_after_ms */
	struct vs_redis *redis;
	int64_t redis_retry_after_ms; /* monotonic; Redis not used before */
};

int vs_content_new(struct vs_content **out, struct vs_cache *cache,
		   const char *pg_conninfo, const char *redis_url,
		   const char *project_id, int timeout_ms)
{
	struct vs_content *c = calloc(1, sizeof(*c));
	int r = -ENOMEM;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->cache = cache;
	c->timeout_ms = timeout_ms;
	snprintf(c->project_id, sizeof(c->project_id), "%s", project_id);
	if (pg_conninfo) {
		c->conninfo = strdup(pg_conninfo);
		if (!c->conninfo)
			goto fail;
	}
	if (redis_url && *redis_url) {
		c->redis_url = strdup(redis_url);
		if (!c->redis_url)
			goto fail;
		/* checks the URL now (a bad one is a start-up error);
		 * connects on first use */
		r = vs_redis_new(&c->redis, redis_url, timeout_ms);
		if (r < 0)
			goto fail;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->redis_lock, NULL);
	*out = c;
	return 0;
fail:
	free(c->redis_url);
	free(c->conninfo);
	free(c);
	return r;
}

void vs_content_set_verify(struct vs_content *c, const struct vs_sign_key *k)
{
	c->verify = k;
}

void vs_content_free(struct vs_content *c)
{
	if (!c)
		return;
	vs_pg_free(c->pg);
	vs_redis_free(c->redis);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->redis_lock);
	free(c->redis_url);
	free(c->conninfo);
	free(c);
}

int vs_content_put(struct vs_content *c, const char *hash, uint64_t size,
		   const void *buf, size_t len, const char *path, bool memory,
		   int *fd_out)
{
	int r;

	if (fd_out)
		*fd_out = -1;
	/* stored without asking first whether the cache has it: pushed
	 * content is new nearly always, and the store's rename finds out */
	if (len != size)
		r = -EBADMSG;
	else if (fd_out && memory)
		r = vs_cache_memory_open(hash, buf, len, fd_out);
	else
		r = vs_cache_store_open(c->cache, hash, buf, len, fd_out);
	if (r == -EBADMSG)
		vs_warn("content of '%s' given with its change does not match "
			"%s (%zu bytes): fetching it",
			path, hash, len);
	return r;
}

void vs_content_redis_idle(struct vs_content *c)
{
	if (!c || !c->redis || pthread_mutex_trylock(&c->redis_lock) != 0)
		return;
	vs_redis_disconnect(c->redis);
	pthread_mutex_unlock(&c->redis_lock);
}

/* The deadline of one blob fetch of @size bytes (vs_size_timeout_ms). */
static int fetch_timeout_ms(const struct vs_content *c, uint64_t size)
{
	return vs_size_timeout_ms(c->timeout_ms, size);
}

/* A Redis failure @r: connection-level ones drop the connection and keep
 * Redis out of the way for VS_CONTENT_RETRY_MS. Called with redis_lock. */
static void redis_failed_locked(struct vs_content *c, int r, const char *what,
				const char *path, const char *hash)
{
	if (r == -ENOENT)
		return;
	vs_warn("redis: cannot %s '%s' (%.12s): %s; using PostgreSQL", what,
		path, hash,
		vs_redis_last_error(c->redis)[0] ? vs_redis_last_error(c->redis)
						 : strerror(-r));
	if (r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EACCES ||
	    r == -EAGAIN || r == -ENOMEM) {
		vs_redis_disconnect(c->redis);
		c->redis_retry_after_ms = vs_mono_ms() + VS_CONTENT_RETRY_MS;
	}
}

/* GET the index of chunked content @hash (@n chunks): their SHA-256s into
 * @shas, believed only if signed for it when the mount verifies. */
static int redis_chunks_index(struct vs_content *c, const char *hash,
			      uint64_t size, char *shas, size_t n,
			      const char *path)
{
	redisReply *rep = NULL;
	int r;

	pthread_mutex_lock(&c->redis_lock);
	if (vs_mono_ms() < c->redis_retry_after_ms) {
		pthread_mutex_unlock(&c->redis_lock);
		return -EAGAIN;
	}
	r = vs_redis_chunks_index_get(c->redis, c->project_id, hash, &rep);
	if (r < 0)
		redis_failed_locked(c, r, "read the chunks of", path, hash);
	pthread_mutex_unlock(&c->redis_lock);
	if (r < 0)
		return r;
	if (vs_sign_chunks_decode(rep->str, rep->len, c->verify, c->project_id,
				  hash, size, shas, n) < 0) {
		vs_metrics_redis_unverified();
		vs_error("refusing the chunk index of '%s' (%.12s) from "
			 "Redis: %s; using PostgreSQL",
			 path, hash,
			 c->verify ? "not signed for it by the relay"
				   : "malformed");
		r = -EKEYREJECTED;
	}
	freeReplyObject(rep);
	return r;
}

/* The pieces of a content the cache has (an earlier version of a large
 * file): where each of them is in its object, by SHA-256. */
struct base_piece {
	char sha[VS_HASH_HEX_LEN + 1];
	uint64_t off;
	size_t len;
};
struct piece_base {
	int fd; /* the object, read-only */
	struct base_piece *v;
	size_t n;
	size_t reused;	  /* pieces taken from it (fetch_redis_chunks) */
	uint64_t fetched; /* bytes read from Redis meanwhile */
};

static int cmp_base_piece(const void *a, const void *b)
{
	return strcmp(((const struct base_piece *)a)->sha,
		      ((const struct base_piece *)b)->sha);
}

/* Hash the object on @fd (@size bytes) in pieces of VS_REDIS_CHUNK_SIZE
 * into @b (sorted by SHA-256), using @buf (that many bytes). 0 or
 * -errno. */
static int piece_base_build(struct piece_base *b, int fd, uint64_t size,
			    uint8_t *buf)
{
	size_t n =
	    (size_t)((size + VS_REDIS_CHUNK_SIZE - 1) / VS_REDIS_CHUNK_SIZE);
	uint64_t off = 0;

	b->fd = fd;
	b->n = 0;
	b->reused = 0;
	b->fetched = 0;
	b->v = calloc(n ? n : 1, sizeof(*b->v));
	if (!b->v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++, off += VS_REDIS_CHUNK_SIZE) {
		size_t len = size - off < VS_REDIS_CHUNK_SIZE
				 ? (size_t)(size - off)
				 : VS_REDIS_CHUNK_SIZE;
		ssize_t got = vs_pread_in_full(fd, buf, len, (off_t)off);

		if (got != (ssize_t)len ||
		    vs_sha256_hex(b->v[i].sha, buf, len) < 0)
			return got < 0 ? (int)got : -EIO;
		b->v[i].off = off;
		b->v[i].len = len;
		b->n++;
	}
	qsort(b->v, b->n, sizeof(*b->v), cmp_base_piece);
	return 0;
}

/* Fill @buf with the piece @sha (@len bytes) from @b (NULL: none) if it
 * has it: true, and the bytes still to be checked by the caller (the
 * object is read again, not trusted to be as it was when hashed). */
static bool piece_base_take(struct piece_base *b, const char *sha, size_t len,
			    uint8_t *buf)
{
	struct base_piece key, *p;

	if (!b || !b->n)
		return false;
	memcpy(key.sha, sha, sizeof(key.sha));
	p = bsearch(&key, b->v, b->n, sizeof(*b->v), cmp_base_piece);
	return p && p->len == len &&
	       vs_pread_in_full(b->fd, buf, len, (off_t)p->off) == (ssize_t)len;
}

/* Are @len bytes at @buf the @want_len bytes whose SHA-256 is @want? */
static bool piece_is(const uint8_t *buf, size_t len, size_t want_len,
		     const char *want)
{
	char got[VS_HASH_HEX_LEN + 1];

	return len == want_len && vs_sha256_hex(got, buf, len) == 0 &&
	       strcmp(got, want) == 0;
}

/* Fetch chunked content @hash (@size bytes) from Redis into the cache,
 * each chunk checked against the index as it comes, the whole against
 * @hash at the end; the pieces @base (NULL: none) has are taken from it
 * rather than from Redis (and checked the same way). 0 or -errno (then
 * PostgreSQL). */
static int fetch_redis_chunks(struct vs_content *c, const char *hash,
			      uint64_t size, const char *path, int *fd_out,
			      struct piece_base *base)
{
	size_t n =
	    (size_t)((size + VS_REDIS_CHUNK_SIZE - 1) / VS_REDIS_CHUNK_SIZE);
	char *shas = malloc(n * VS_HASH_HEX_LEN), want[VS_HASH_HEX_LEN + 1];
	uint8_t *buf = malloc(VS_REDIS_CHUNK_SIZE);
	struct vs_cache_writer w;
	uint64_t off = 0;
	size_t len = 0;
	int r;

	r = shas && buf ? redis_chunks_index(c, hash, size, shas, n, path)
			: -ENOMEM;
	if (r == 0)
		r = vs_cache_writer_open(c->cache, &w);
	if (r < 0) {
		free(shas);
		free(buf);
		return r;
	}
	for (size_t i = 0; r == 0 && i < n; i++) {
		size_t want_len = size - off < VS_REDIS_CHUNK_SIZE
				      ? (size_t)(size - off)
				      : VS_REDIS_CHUNK_SIZE;

		memcpy(want, shas + i * VS_HASH_HEX_LEN, VS_HASH_HEX_LEN);
		want[VS_HASH_HEX_LEN] = '\0';
		if (piece_base_take(base, want, want_len, buf)) {
			if (piece_is(buf, want_len, want_len, want)) {
				base->reused++;
				r = vs_cache_writer_add(&w, buf, want_len);
				off += want_len;
				continue;
			}
			/* the earlier version's object changed since it was
			 * hashed: this piece and the rest from Redis */
			base->n = 0;
		}
		pthread_mutex_lock(&c->redis_lock);
		vs_redis_set_timeout(c->redis,
				     fetch_timeout_ms(c, VS_REDIS_CHUNK_SIZE));
		r = vs_redis_piece_get(c->redis, c->project_id, want, buf,
				       VS_REDIS_CHUNK_SIZE, &len);
		vs_redis_set_timeout(c->redis, c->timeout_ms);
		if (r < 0)
			redis_failed_locked(c, r, "read a chunk of", path,
					    hash);
		pthread_mutex_unlock(&c->redis_lock);
		if (r < 0)
			break;
		if (base)
			base->fetched += len;
		if (!piece_is(buf, len, want_len, want)) {
			vs_metrics_redis_unverified();
			vs_error("refusing chunk %zu of '%s' (%.12s) from "
				 "Redis: its bytes do not match the index; "
				 "using PostgreSQL",
				 i, path, hash);
			r = -EBADMSG;
		} else {
			r = vs_cache_writer_add(&w, buf, len);
			off += len;
		}
	}
	free(shas);
	free(buf);
	if (r < 0) {
		vs_cache_writer_abort(&w);
		return r;
	}
	r = vs_cache_writer_commit_open(&w, hash, fd_out);
	if (r == -EBADMSG) {
		vs_metrics_redis_unverified();
		vs_error("refusing content of '%s' from Redis: its chunks do "
			 "not make up checksum %s; using PostgreSQL",
			 path, hash);
	}
	return r;
}

/* Fetch @hash from Redis into the cache. 0, or -errno (the caller goes on
 * to PostgreSQL whatever it is). Called without redis_lock. */
static int fetch_redis(struct vs_content *c, const char *hash, uint64_t size,
		       const char *path, int *fd_out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if (!c->redis)
		return -ENOENT;
	if (size > VS_CHUNK_SIZE)
		return fetch_redis_chunks(c, hash, size, path, fd_out, NULL);
	pthread_mutex_lock(&c->redis_lock);
	if (vs_mono_ms() < c->redis_retry_after_ms) {
		pthread_mutex_unlock(&c->redis_lock);
		return -EAGAIN;
	}
	vs_redis_set_timeout(c->redis, fetch_timeout_ms(c, size));
	r = vs_redis_blob_get(c->redis, c->project_id, hash,
			      size > SIZE_MAX ? SIZE_MAX : (size_t)size, &buf,
			      &len);
	vs_redis_set_timeout(c->redis, c->timeout_ms);
	if (r < 0)
		redis_failed_locked(c, r, "read", path, hash);
	pthread_mutex_unlock(&c->redis_lock);
	if (r < 0)
		return r;
	r = vs_cache_store_open(c->cache, hash, buf, len, fd_out);
	if (r == -EBADMSG)
		vs_error("refusing content of '%s' from Redis: its bytes do "
			 "not match checksum %s; using PostgreSQL",
			 path, hash);
	free(buf);
	return r;
}

/* Put @len bytes of @hash into Redis for the next reader (best effort).
 * Called with c->lock held (lock order: lock -> redis_lock). */
static void backfill_redis(struct vs_content *c, const char *hash,
			   const uint8_t *buf, size_t len, const char *path)
{
	int r;

	if (!c->redis || len > VS_CONTENT_BACKFILL_MAX)
		return;
	pthread_mutex_lock(&c->redis_lock);
	if (vs_mono_ms() >= c->redis_retry_after_ms) {
		vs_redis_set_timeout(c->redis, fetch_timeout_ms(c, len));
		r = vs_redis_blob_put(c->redis, c->project_id, hash, buf, len,
				      VS_CONTENT_BACKFILL_TTL_S);
		vs_redis_set_timeout(c->redis, c->timeout_ms);
		if (r < 0)
			redis_failed_locked(c, r, "cache", path, hash);
	}
	pthread_mutex_unlock(&c->redis_lock);
}

static int chunk_sink(void *arg, const uint8_t *buf, size_t len)
{
	return vs_cache_writer_add(arg, buf, len);
}

/* Fetch content @hash stored in chunks from PostgreSQL (@pg) into the
 * cache, chunk by chunk (never whole in memory). -ENOENT if it is stored
 * whole. */
static int fetch_chunks(struct vs_content *c, struct vs_pg *pg,
			const char *hash, uint64_t size, const char *path,
			int *fd_out)
{
	struct vs_cache_writer w;
	int r;

	r = vs_cache_writer_open(c->cache, &w);
	if (r < 0)
		return r;
	r = vs_pg_chunks_fetch(pg, c->project_id, hash, size, NULL,
			       c->timeout_ms, chunk_sink, &w);
	if (r < 0) {
		vs_cache_writer_abort(&w);
		return r;
	}
	r = vs_cache_writer_commit_open(&w, hash, fd_out);
	if (r == -EBADMSG)
		vs_error("refusing content of '%s' from PostgreSQL: its "
			 "chunks do not make up checksum %s",
			 path, hash);
	return r;
}

/* Fetch @hash from PostgreSQL on @pg (connected) into the cache: in
 * chunks when it is stored so, else whole (then put into Redis too when
 * @backfill). 0 or -EIO (logged); *@drop when @pg is not worth keeping
 * (a failure other than "no such content"). */
static int fetch_on(struct vs_content *c, struct vs_pg *pg, const char *hash,
		    uint64_t size, const char *path, int *fd_out, bool backfill,
		    bool *drop)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = -ENOENT;

	*drop = false;
	if (size > VS_CHUNK_SIZE) {
		r = fetch_chunks(c, pg, hash, size, path, fd_out);
		if (r == 0)
			return 0;
		if (r == -EBADMSG)
			return -EIO;
	}
	if (r == -ENOENT) {
		vs_pg_set_timeout(pg, fetch_timeout_ms(c, size));
		r = vs_pg_blob_fetch(pg, c->project_id, hash, &buf, &len);
		vs_pg_set_timeout(pg, c->timeout_ms);
	}
	if (r < 0) {
		vs_warn("cannot fetch '%s' (%.12s): %s", path, hash,
			vs_pg_last_error(pg)[0] ? vs_pg_last_error(pg)
						: strerror(-r));
		*drop = r != -ENOENT; /* start over on a fresh connection */
		return -EIO;
	}
	if (len != size)
		vs_warn("'%s': PostgreSQL sent %zu bytes, manifest says %llu",
			path, len, (unsigned long long)size);
	r = vs_cache_store_open(c->cache, hash, buf, len, fd_out);
	if (r == -EBADMSG)
		vs_error("refusing content of '%s' from PostgreSQL: its bytes "
			 "do not match checksum %s",
			 path, hash);
	else if (r == 0 && backfill)
		backfill_redis(c, hash, buf, len, path);
	free(buf);
	return r == -EBADMSG ? -EIO : r;
}

/* Fetch @hash from PostgreSQL into the cache on the instance's
 * connection. Called with c->lock held. */
static int fetch_locked(struct vs_content *c, const char *hash, uint64_t size,
			const char *path, int *fd_out)
{
	bool drop;
	int r;

	if (!c->conninfo)
		return -EIO;
	if (!c->pg) {
		if (vs_mono_ms() < c->retry_after_ms)
			return -EIO;
		r = vs_pg_open(&c->pg, c->conninfo, c->timeout_ms);
		if (r < 0) {
			/* unreachable: fail fast for a while, then retry */
			c->retry_after_ms = vs_mono_ms() + VS_CONTENT_RETRY_MS;
			vs_warn("cannot fetch '%s': PostgreSQL unavailable: %s",
				path, strerror(-r));
			return -EIO;
		}
	}
	r = fetch_on(c, c->pg, hash, size, path, fd_out, true, &drop);
	if (drop) {
		vs_pg_free(c->pg);
		c->pg = NULL;
	}
	return r;
}

/*
 * Fetch large content @hash (over a chunk) from PostgreSQL on a
 * connection of its own, opened for it and closed after: a transfer of
 * hundreds of MiB takes seconds, and on the instance's connection it
 * would hold up every other first read from PostgreSQL (c->lock) that
 * long. Called with the cache's fill_lock (one at a time per cache),
 * without c->lock.
 */
static int fetch_large(struct vs_content *c, const char *hash, uint64_t size,
		       const char *path, int *fd_out)
{
	struct vs_pg *pg = NULL;
	bool drop;
	int r;

	if (!c->conninfo)
		return -EIO;
	pthread_mutex_lock(&c->lock);
	r = vs_mono_ms() < c->retry_after_ms ? -EIO : 0;
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		return r;
	r = vs_pg_open(&pg, c->conninfo, c->timeout_ms);
	if (r < 0) {
		pthread_mutex_lock(&c->lock);
		c->retry_after_ms = vs_mono_ms() + VS_CONTENT_RETRY_MS;
		pthread_mutex_unlock(&c->lock);
		vs_warn("cannot fetch '%s': PostgreSQL unavailable: %s", path,
			strerror(-r));
		return -EIO;
	}
	r = fetch_on(c, pg, hash, size, path, fd_out, false, &drop);
	vs_pg_free(pg);
	return r;
}

static int open_missing(struct vs_content *c, const char *hash, uint64_t size,
			const char *path, int *fd_out, uint64_t t0);

int vs_content_open(struct vs_content *c, const char *hash, uint64_t size,
		    const char *path, int *fd_out)
{
	uint64_t t0 = vs_mono_us();
	int r;

	r = vs_cache_open(c->cache, hash, fd_out);
	vs_metrics_cache(r == 0);
	if (r == 0) {
		vs_metrics_fetch(VS_SRC_LOCAL, size, vs_mono_us() - t0);
		return 0;
	}
	if (size > VS_CHUNK_SIZE) {
		/* one fetch of a large file at a time (cache.h, fill_lock);
		 * whoever waited finds it made */
		pthread_mutex_lock(&c->cache->fill_lock);
		r = vs_cache_open(c->cache, hash, fd_out);
		if (r < 0)
			r = open_missing(c, hash, size, path, fd_out, t0);
		pthread_mutex_unlock(&c->cache->fill_lock);
		return r;
	}
	return open_missing(c, hash, size, path, fd_out, t0);
}

/* vs_content_open of content the cache does not have. */
static int open_missing(struct vs_content *c, const char *hash, uint64_t size,
			const char *path, int *fd_out, uint64_t t0)
{
	bool fetched = true;
	int r;

	/* Redis first, outside @lock: a PostgreSQL fetch of a big file
	 * does not hold up Redis reads of others */
	*fd_out = -1;
	if (fetch_redis(c, hash, size, path, fd_out) == 0 &&
	    (*fd_out >= 0 || vs_cache_open(c->cache, hash, fd_out) == 0)) {
		vs_metrics_fetch(VS_SRC_REDIS, size, vs_mono_us() - t0);
		return 0;
	}
	if (size > VS_CHUNK_SIZE) {
		/* (under fill_lock: vs_content_open) */
		r = fetch_large(c, hash, size, path, fd_out);
	} else {
		pthread_mutex_lock(&c->lock);
		/* fetched meanwhile by one this waited for? */
		r = vs_cache_open(c->cache, hash, fd_out);
		if (r < 0)
			r = fetch_locked(c, hash, size, path, fd_out);
		else
			fetched = false;
		pthread_mutex_unlock(&c->lock);
	}
	if (fetched) {
		if (r == 0 && *fd_out < 0)
			r = vs_cache_open(c->cache, hash, fd_out);
		if (r == 0)
			vs_metrics_fetch(VS_SRC_PG, size, vs_mono_us() - t0);
		else
			vs_metrics_backend_error(VS_BACKEND_PG);
	}
	if (r < 0 && r != -EIO) {
		vs_warn("cannot open content of '%s': %s", path, strerror(-r));
		/* out of memory or fds: the caller may make room */
		if (r != -ENOMEM && r != -EMFILE && r != -ENFILE)
			r = -EIO;
	}
	return r;
}

bool vs_content_in_pieces(uint64_t size)
{
	return size > VS_CHUNK_SIZE;
}

int vs_content_prepare_pieces(struct vs_content *c, const char *base_hash,
			      const char *hash, uint64_t size, const char *path)
{
	uint64_t t0 = vs_mono_us();
	struct piece_base b = {.fd = -1};
	uint8_t *buf = NULL;
	struct stat st;
	int r, fd = -1;

	if (!vs_content_in_pieces(size) || !c->redis ||
	    !vs_hash_hex_valid(base_hash) || !strcmp(base_hash, hash))
		return -ENOENT;
	/* one large fill at a time (cache.h, fill_lock) */
	pthread_mutex_lock(&c->cache->fill_lock);
	r = 0;
	if (vs_cache_has(c->cache, hash))
		goto out;
	/* not hashed whole here: each piece taken from it is checked
	 * against the index, and the result against @hash */
	r = vs_cache_open_unchecked(c->cache, base_hash, &fd);
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (r == 0 && (uint64_t)st.st_size <= VS_CHUNK_SIZE)
		r = -ENOENT; /* not in pieces: nothing to share */
	buf = r == 0 ? malloc(VS_REDIS_CHUNK_SIZE) : NULL;
	if (r == 0 && !buf)
		r = -ENOMEM;
	if (r == 0)
		r = piece_base_build(&b, fd, (uint64_t)st.st_size, buf);
	if (r < 0) {
		r = r == -ENOMEM ? r : -ENOENT;
		goto out;
	}
	r = fetch_redis_chunks(c, hash, size, path, NULL, &b);
	if (r == 0) {
		vs_info("'%s': %zu of %llu pieces taken from the previous "
			"version, %llu bytes from Redis",
			path, b.reused,
			(unsigned long long)((size + VS_REDIS_CHUNK_SIZE - 1) /
					     VS_REDIS_CHUNK_SIZE),
			(unsigned long long)b.fetched);
		vs_metrics_fetch(VS_SRC_REDIS, b.fetched, vs_mono_us() - t0);
	}
out:
	pthread_mutex_unlock(&c->cache->fill_lock);
	if (fd >= 0)
		close(fd);
	free(b.v);
	free(buf);
	return r;
}

int vs_content_prepare_delta(struct vs_content *c, const char *base_hash,
			     const char *hash, uint64_t size, const char *path)
{
	uint64_t t0 = vs_mono_us();
	uint8_t *delta = NULL, *out = NULL;
	size_t dlen = 0, olen = 0, max;
	int r, fd = -1;

	if (vs_cache_has(c->cache, hash))
		return 0;
	if (!c->redis || !vs_hash_hex_valid(base_hash))
		return -ENOENT;
	r = vs_cache_open(c->cache, base_hash, &fd);
	if (r < 0)
		return -ENOENT;
	max = size > SIZE_MAX ? SIZE_MAX : (size_t)size;
	pthread_mutex_lock(&c->redis_lock);
	if (vs_mono_ms() < c->redis_retry_after_ms) {
		pthread_mutex_unlock(&c->redis_lock);
		r = -ENOENT;
		goto out;
	}
	vs_redis_set_timeout(c->redis, fetch_timeout_ms(c, size / 2));
	/* a useful delta is under half the file (the relay's rule) */
	r = vs_redis_delta_get(c->redis, c->project_id, base_hash, hash,
			       max / 2 + 1, &delta, &dlen);
	vs_redis_set_timeout(c->redis, c->timeout_ms);
	if (r < 0 && r != -EFBIG)
		redis_failed_locked(c, r, "read delta", path, hash);
	pthread_mutex_unlock(&c->redis_lock);
	if (r < 0)
		goto out;
	r = vs_delta_apply(fd, delta, dlen, max, &out, &olen);
	if (r < 0) {
		vs_warn("cannot apply the delta for '%s' (%.12s): %s; fetching "
			"it in full",
			path, hash, strerror(-r));
		goto out;
	}
	r = vs_cache_store(c->cache, hash, out, olen);
	if (r == -EBADMSG) {
		vs_error("delta for '%s' gave content that does not match "
			 "checksum %s; fetching it in full",
			 path, hash);
		goto out;
	}
	if (r < 0)
		goto out;
	vs_info("applied delta for '%s' (%zu bytes instead of %zu)", path, dlen,
		olen);
	vs_metrics_fetch(VS_SRC_REDIS, dlen, vs_mono_us() - t0);
out:
	close(fd);
	free(delta);
	free(out);
	return r;
}

/* Store what Redis had for one item: @r its vs_redis_blob_get_many()
 * result, @buf of @len bytes. 0 if stored. */
static int store_redis_value(struct vs_content *c, int r, const uint8_t *buf,
			     size_t len, const char *hash, const char *path)
{
	if (r == -ENOENT || r == -EIO)
		return r;
	if (r < 0) {
		vs_warn("redis: corrupt blob of '%s' (%.12s): %s; using "
			"PostgreSQL",
			path, hash, strerror(-r));
		return r;
	}
	r = vs_cache_store(c->cache, hash, buf, len);
	if (r == -EBADMSG)
		vs_error("refusing content of '%s' from Redis: its bytes do "
			 "not match checksum %s; using PostgreSQL",
			 path, hash);
	return r;
}

/* One round trip for the items of @todo (indices into the arrays), each
 * value read only up to its item's size (a container can store a huge
 * value under a real file's key); clears the entries it stored. */
static void many_from_redis(struct vs_content *c, const char *const *hashes,
			    const uint64_t *sizes, const char *const *paths,
			    size_t *todo, size_t *ntodo)
{
	size_t n = *ntodo, kept = 0;
	const char **h = calloc(n + 1, sizeof(*h));
	size_t *max = calloc(n + 1, sizeof(*max)),
	       *lens = calloc(n + 1, sizeof(*lens));
	uint8_t **bufs = calloc(n + 1, sizeof(*bufs));
	int *res = calloc(n + 1, sizeof(*res));
	uint64_t t0 = vs_mono_us(), total = 0;
	int r = -ENOMEM;

	if (!h || !max || !lens || !bufs || !res)
		goto out;
	for (size_t i = 0; i < n; i++) {
		h[i] = hashes[todo[i]];
		max[i] = sizes[todo[i]] > SIZE_MAX ? SIZE_MAX
						   : (size_t)sizes[todo[i]];
		total += sizes[todo[i]];
	}
	pthread_mutex_lock(&c->redis_lock);
	if (vs_mono_ms() < c->redis_retry_after_ms) {
		pthread_mutex_unlock(&c->redis_lock);
		goto out;
	}
	vs_redis_set_timeout(c->redis, fetch_timeout_ms(c, total));
	r = vs_redis_blob_get_many(c->redis, c->project_id, h, max, n, bufs,
				   lens, res);
	vs_redis_set_timeout(c->redis, c->timeout_ms);
	if (r < 0) {
		redis_failed_locked(c, r, "read", "(critical set)", "");
		vs_metrics_backend_error(VS_BACKEND_REDIS);
	}
	for (size_t i = 0; r == 0 && i < n; i++)
		if (res[i] == -EIO) { /* an error reply: logged once */
			redis_failed_locked(c, -EIO, "read", "(critical set)",
					    "");
			break;
		}
	pthread_mutex_unlock(&c->redis_lock);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		size_t k = todo[i];

		if (store_redis_value(c, res[i], bufs[i], lens[i], hashes[k],
				      paths[k]) == 0)
			vs_metrics_fetch(VS_SRC_REDIS, sizes[k],
					 (vs_mono_us() - t0) / n);
		else
			todo[kept++] = k;
		free(bufs[i]);
	}
	*ntodo = kept;
out:
	free(h);
	free(max);
	free(lens);
	free(bufs);
	free(res);
}

/* One query for the items of @todo; clears the entries it stored. Called
 * with c->lock held. */
static void many_from_pg(struct vs_content *c, const char *const *hashes,
			 const uint64_t *sizes, const char *const *paths,
			 size_t *todo, size_t *ntodo)
{
	char *arr = malloc(*ntodo * (VS_HASH_HEX_LEN + 1) + 3);
	const char *v[2] = {c->project_id, arr};
	PGresult *res = NULL;
	uint64_t t0 = vs_mono_us(), total = 0;
	size_t pos = 0, kept = 0;
	int r;

	if (!arr || !c->conninfo)
		goto out;
	arr[pos++] = '{';
	for (size_t i = 0; i < *ntodo; i++) {
		memcpy(arr + pos, hashes[todo[i]], VS_HASH_HEX_LEN);
		pos += VS_HASH_HEX_LEN;
		arr[pos++] = i + 1 < *ntodo ? ',' : '}';
		total += sizes[todo[i]];
	}
	arr[pos] = '\0';
	if (!c->pg) {
		if (vs_mono_ms() < c->retry_after_ms ||
		    vs_pg_open(&c->pg, c->conninfo, c->timeout_ms) < 0) {
			c->retry_after_ms = vs_mono_ms() + VS_CONTENT_RETRY_MS;
			goto out;
		}
	}
	vs_pg_set_timeout(c->pg, fetch_timeout_ms(c, total));
	r = vs_pg_exec(c->pg, &res,
		       "SELECT h, vsync_blob($1, h) FROM unnest($2::text[]) h",
		       2, v, NULL, NULL, 1);
	vs_pg_set_timeout(c->pg, c->timeout_ms);
	if (r < 0) {
		vs_warn("cannot fetch %zu files from PostgreSQL: %s", *ntodo,
			vs_pg_last_error(c->pg));
		vs_metrics_backend_error(VS_BACKEND_PG);
		vs_pg_free(c->pg);
		c->pg = NULL;
		goto out;
	}
	for (size_t i = 0; i < *ntodo; i++) {
		size_t k = todo[i];
		int row = -1;

		for (int j = 0; j < PQntuples(res) && row < 0; j++)
			if (PQgetlength(res, j, 0) == VS_HASH_HEX_LEN &&
			    memcmp(PQgetvalue(res, j, 0), hashes[k],
				   VS_HASH_HEX_LEN) == 0 &&
			    !PQgetisnull(res, j, 1))
				row = j;
		if (row >= 0 &&
		    vs_cache_store(c->cache, hashes[k], PQgetvalue(res, row, 1),
				   (size_t)PQgetlength(res, row, 1)) == 0) {
			backfill_redis(c, hashes[k],
				       (const uint8_t *)PQgetvalue(res, row, 1),
				       (size_t)PQgetlength(res, row, 1),
				       paths[k]);
			vs_metrics_fetch(VS_SRC_PG, sizes[k],
					 (vs_mono_us() - t0) / *ntodo);
			continue;
		}
		vs_warn("cannot fetch '%s' (%.12s) from PostgreSQL", paths[k],
			hashes[k]);
		todo[kept++] = k;
	}
	*ntodo = kept;
out:
	PQclear(res);
	free(arr);
}

int vs_content_fetch_many(struct vs_content *c, const char *const *hashes,
			  const uint64_t *sizes, const char *const *paths,
			  size_t n)
{
	size_t *todo = malloc((n ? n : 1) * sizeof(*todo)), ntodo = 0;
	size_t failed = 0;

	if (!todo)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		bool has = vs_cache_has(c->cache, hashes[i]);

		vs_metrics_cache(has);
		if (has)
			continue;
		if (sizes[i] <= VS_CHUNK_SIZE) {
			todo[ntodo++] = i;
			continue;
		}
		/* large: on its own, chunk by chunk, once (fill_lock) */
		pthread_mutex_lock(&c->cache->fill_lock);
		if (!vs_cache_has(c->cache, hashes[i]) &&
		    fetch_redis(c, hashes[i], sizes[i], paths[i], NULL) < 0 &&
		    fetch_large(c, hashes[i], sizes[i], paths[i], NULL) < 0)
			failed++;
		pthread_mutex_unlock(&c->cache->fill_lock);
	}
	if (ntodo && c->redis)
		many_from_redis(c, hashes, sizes, paths, todo, &ntodo);
	if (ntodo) {
		pthread_mutex_lock(&c->lock);
		many_from_pg(c, hashes, sizes, paths, todo, &ntodo);
		pthread_mutex_unlock(&c->lock);
	}
	free(todo);
	return (int)(ntodo + failed);
}

/* One record of a bundle: store it unless the cache has it. */
static int bundle_store(void *arg, const char *hash, const uint8_t *data,
			size_t n)
{
	struct vs_content *c = ((void **)arg)[0];
	size_t *stored = ((void **)arg)[1];

	int r;

	if (vs_cache_has(c->cache, hash))
		return 0;
	r = vs_cache_store(c->cache, hash, data, n);
	if (r == 0) {
		(*stored)++;
		vs_metrics_fetch(VS_SRC_REDIS, n, 0);
	} else if (r == -EBADMSG) {
		/* (the relay checks what it packs: never from a relay) */
		vs_metrics_redis_unverified();
		vs_error("refusing content %.12s of a bundle of project %s: "
			 "its bytes do not match their name",
			 hash, c->project_id);
	}
	/* else cache.c logged why; either way its file is fetched on its
	 * own by the plan */
	return 0;
}

int vs_content_fetch_bundle(struct vs_content *c, const struct vs_bundle_ref *b)
{
	char key[VS_REDIS_KEY_MAX], sha[VS_HASH_HEX_LEN + 1];
	const char *argv[] = {"GET", key};
	redisReply *rep = NULL;
	uint8_t *raw = NULL;
	size_t raw_len = 0, stored = 0;
	void *arg[2] = {c, &stored};
	int r;

	if (!c->redis)
		return -ENOENT;
	vs_redis_key_bundle(key, c->project_id, b->id);
	pthread_mutex_lock(&c->redis_lock);
	if (vs_mono_ms() < c->redis_retry_after_ms) {
		pthread_mutex_unlock(&c->redis_lock);
		return -EIO;
	}
	vs_redis_set_timeout(c->redis, fetch_timeout_ms(c, b->raw_len));
	r = vs_redis_command(c->redis, &rep, 2, argv, NULL);
	vs_redis_set_timeout(c->redis, c->timeout_ms);
	if (r < 0) {
		redis_failed_locked(c, r, "read bundle", b->id, "");
		vs_metrics_backend_error(VS_BACKEND_REDIS);
	}
	pthread_mutex_unlock(&c->redis_lock);
	if (r < 0)
		return -EIO;
	if (rep->type != REDIS_REPLY_STRING) {
		r = -ENOENT;
		goto out;
	}
	r = vs_sha256_hex(sha, rep->str, rep->len);
	if (r == 0 && strcmp(sha, b->sha) != 0) {
		vs_metrics_redis_unverified();
		vs_error("refusing bundle %.12s of project %s from Redis: its "
			 "bytes do not match the signed index; fetching its %u "
			 "files one by one",
			 b->id, c->project_id, (unsigned)b->files);
		r = -EKEYREJECTED;
		goto out;
	}
	if (r == 0)
		r = vs_blob_decode(&raw, &raw_len, rep->str, rep->len,
				   (size_t)b->raw_len);
	if (r == 0 && raw_len != b->raw_len)
		r = -EBADMSG;
	if (r == 0)
		r = vs_bundle_each(raw, raw_len, bundle_store, arg);
	if (r < 0) {
		vs_warn("bundle %.12s of project %s is corrupt: %s; fetching "
			"its files one by one",
			b->id, c->project_id, strerror(-r));
		r = r == -ENOMEM ? r : -EBADMSG;
	}
out:
	freeReplyObject(rep);
	free(raw);
	return r < 0 ? r : (int)stored;
}
