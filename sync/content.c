/*
 * content.c - file bytes: local cache, then PostgreSQL (content.h).
 *
 * DESIGN
 * FUSE threads call vs_content_open() concurrently. The cache is safe to
 * use from any thread; the PostgreSQL connection is not, so fetches take
 * @lock (one at a time; the cache is checked again under the lock so two
 * readers of one file fetch it once). After a failed connect, connecting
 * again is not tried for VS_CONTENT_RETRY_MS, so a dead database costs a
 * reader an immediate EIO, not a connect timeout each time; a failed query
 * only drops the connection (the next fetch reconnects). The deadline of a
 * fetch grows with the size of the file (VS_CONTENT_MIN_RATE).
 */
#include "vsync/content.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vsync/cache.h"
#include "vsync/hash.h"
#include "vsync/log.h"
#include "vsync/pg.h"

#define VS_CONTENT_RETRY_MS 1000
/* the slowest transfer a fetch deadline allows for, bytes per second */
#define VS_CONTENT_MIN_RATE (4 * 1024 * 1024)

struct vs_content {
	struct vs_cache *cache;
	char *conninfo; /* NULL: offline */
	char project_id[37];
	int timeout_ms;

	pthread_mutex_t lock; /* protects everything below */
	struct vs_pg *pg;
	int64_t retry_after_ms; /* monotonic; no connect attempt before it */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vs_content_new(struct vs_content **out, struct vs_cache *cache,
		   const char *pg_conninfo, const char *project_id,
		   int timeout_ms)
{
	struct vs_content *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->cache = cache;
	c->timeout_ms = timeout_ms;
	snprintf(c->project_id, sizeof(c->project_id), "%s", project_id);
	if (pg_conninfo) {
		c->conninfo = strdup(pg_conninfo);
		if (!c->conninfo) {
			free(c);
			return -ENOMEM;
		}
	}
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void vs_content_free(struct vs_content *c)
{
	if (!c)
		return;
	vs_pg_free(c->pg);
	pthread_mutex_destroy(&c->lock);
	free(c->conninfo);
	free(c);
}

/*
 * The deadline of one blob fetch: the base deadline, plus what the bytes
 * take at VS_CONTENT_MIN_RATE, so a 50 MB file is not cut off while a
 * stalled backend still is.
 */
static int fetch_timeout_ms(const struct vs_content *c, uint64_t size)
{
	uint64_t extra = size / (VS_CONTENT_MIN_RATE / 1000);

	return c->timeout_ms + (int)(extra > 600000 ? 600000 : extra);
}

/* Fetch @hash from PostgreSQL into the cache. Called with c->lock held. */
static int fetch_locked(struct vs_content *c, const char *hash,
			uint64_t size, const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if (!c->conninfo)
		return -EIO;
	if (!c->pg) {
		if (now_ms() < c->retry_after_ms)
			return -EIO;
		r = vs_pg_open(&c->pg, c->conninfo, c->timeout_ms);
		if (r < 0) {
			/* unreachable: fail fast for a while, then retry */
			c->retry_after_ms = now_ms() + VS_CONTENT_RETRY_MS;
			vs_warn("cannot fetch '%s': PostgreSQL unavailable: %s",
				path, strerror(-r));
			return -EIO;
		}
	}
	vs_pg_set_timeout(c->pg, fetch_timeout_ms(c, size));
	r = vs_pg_blob_fetch(c->pg, c->project_id, hash, &buf, &len);
	vs_pg_set_timeout(c->pg, c->timeout_ms);
	if (r < 0) {
		vs_warn("cannot fetch '%s' (%.12s): %s", path, hash,
			vs_pg_last_error(c->pg)[0] ? vs_pg_last_error(c->pg)
						   : strerror(-r));
		if (r != -ENOENT) {
			/* start over on a fresh connection next time */
			vs_pg_free(c->pg);
			c->pg = NULL;
		}
		return -EIO;
	}
	if (len != size)
		vs_warn("'%s': PostgreSQL sent %zu bytes, manifest says %llu",
			path, len, (unsigned long long)size);
	r = vs_cache_store(c->cache, hash, buf, len);
	if (r == -EBADMSG)
		vs_error("refusing content of '%s' from PostgreSQL: its bytes "
			 "do not match checksum %s",
			 path, hash);
	free(buf);
	return r == -EBADMSG ? -EIO : r;
}

int vs_content_open(struct vs_content *c, const char *hash, uint64_t size,
		    const char *path, int *fd_out)
{
	int r;

	r = vs_cache_open(c->cache, hash, fd_out);
	if (r == 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	r = vs_cache_open(c->cache, hash, fd_out);
	if (r < 0) {
		r = fetch_locked(c, hash, size, path);
		if (r == 0)
			r = vs_cache_open(c->cache, hash, fd_out);
	}
	pthread_mutex_unlock(&c->lock);
	if (r < 0 && r != -EIO) {
		vs_warn("cannot open content of '%s': %s", path, strerror(-r));
		r = r == -ENOMEM ? r : -EIO;
	}
	return r;
}
