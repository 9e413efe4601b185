/*
 * prefetch.h - critical files first, the rest of the tree behind them
 * (sync/prefetch.c).
 *
 * The plan (pure): which files to fetch and in which order. Critical, in
 * this order: the files first read by the last cold mount (the learned
 * list), then those matching the default globs (the seed's: package.json,
 * tsconfig*, index.*, app.*, main.*, plus vite/next configs, at the root
 * and in src/) or a --critical glob. Then the rest: files in the
 * directories of critical files first, then smaller before larger.
 *
 * The runner: one thread fetches the critical set in one batch (one Redis
 * round trip, one PostgreSQL query for what Redis lacks), calls ready(), then N
 * workers fetch the rest with their own backend connections, so a read
 * through the mount (which uses the mount's own connections) never queues
 * behind them.
 */
#ifndef VSYNC_PREFETCH_H
#define VSYNC_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "vsync/hash.h"
#include "vsync/manifest.h"
#include "vsync/path.h"

struct vs_cache;

/* One file of the plan: 48 bytes, its path in the plan's one buffer (a
 * plan of 50,000 files is held while they are fetched, beside the tree) */
struct vs_prefetch_item {
	uint8_t sha[VS_HASH_LEN]; /* the content's SHA-256 */
	uint64_t size;
	uint32_t path; /* offset in the plan's paths */
};

struct vs_prefetch_plan {
	struct vs_prefetch_item *items; /* critical first, then the rest */
	char *paths;			/* every item's path, NUL-terminated */
	size_t n, ncritical;
};

/* The path of @it, an item of @p. */
static inline const char *
vs_prefetch_item_path(const struct vs_prefetch_plan *p,
		      const struct vs_prefetch_item *it)
{
	return p->paths + it->path;
}

/* The default critical globs (fnmatch, case-insensitive). */
extern const char *const vs_critical_default_globs[];

/*
 * The learned list (learned:{id} in Redis, "learned" in the cache dir):
 * the paths a mount read first, one a line ending in '\n', as
 * fuse/synced.c records them: at most VS_LEARN_MAX paths. Any container of the
 * project can write it, so a reader takes at most VS_LEARN_BYTES_MAX bytes of
 * it (a mount's list fits unless its paths average over 255 bytes; a longer
 * value is cut after its last complete line within the bound) and at most
 * VS_LEARN_MAX valid paths; the writer (vs_redis_learned_put) stores no more.
 */
#define VS_LEARN_MAX	   4096
#define VS_LEARN_BYTES_MAX ((size_t)1 << 20)

/* How much of @len bytes of learned text to keep: all of it up to
 * VS_LEARN_BYTES_MAX, else up to its last '\n' within that bound (0 if
 * there is none). Pure. */
size_t vs_learned_cut(const char *text, size_t len);

/* Parse learned text: its first VS_LEARN_MAX lines that are valid,
 * non-empty paths (vs_path_check), in order, from what vs_learned_cut()
 * keeps. A malloc'd array of malloc'd strings in *@paths (NULL, 0 if
 * none); 0 or -ENOMEM (then none). Free with vs_learned_free(). */
int vs_learned_parse(const char *text, size_t len, char ***paths, size_t *n);
void vs_learned_free(char **paths, size_t n);

/* The position of each path in a learned list, for lookups in O(log n):
 * the first VS_LEARN_MAX entries of @paths (not copied: they must outlive
 * the index), a repeated path at its first position. */
struct vs_learned_index {
	const char *const *paths;
	size_t *sorted; /* positions, sorted by path */
	size_t n;
};
int vs_learned_index_build(struct vs_learned_index *x, const char *const *paths,
			   size_t n);
/* @path's position in the list, or -1 if it is not in it. */
long vs_learned_index_find(const struct vs_learned_index *x, const char *path);
void vs_learned_index_release(struct vs_learned_index *x);

/*
 * Build the plan from @m: files only, local-only paths skipped. @globs
 * (NULL-terminated, may be NULL) add to the defaults; @learned lists paths
 * in first-read order (unknown ones are ignored; only the first
 * VS_LEARN_MAX count, so at most that many files are critical for being
 * learned). 0 or -ENOMEM (then @p is
 * empty).
 */
int vs_prefetch_plan_build(struct vs_prefetch_plan *p,
			   const struct vs_manifest *m,
			   const char *const *globs, const char *const *learned,
			   size_t nlearned, const struct vs_local_rules *local);
void vs_prefetch_plan_release(struct vs_prefetch_plan *p);

struct vs_prefetch_config {
	struct vs_cache *cache;
	const char *pg, *redis, *project_id;
	int timeout_ms;
	int workers; /* background fetchers after ready; 0: none */
	/* called once, on the prefetch thread, when the critical set is
	 * local (@missing: how many critical files could not be had) */
	void (*ready)(void *arg, size_t missing);
	void *arg;
	/* the tree's bundles (tree.h), copied: the workers take them first,
	 * then the plan (what a bundle had is skipped) */
	const struct vs_bundle_ref *bundles;
	size_t nbundles;
	/* --verify-key (vs_content_set_verify); NULL: none */
	const struct vs_sign_key *verify;
};

struct vs_prefetch;
struct vs_bundle_ref;
struct vs_sign_key;

/* Take over @plan (left empty) and start. 0 or -errno. */
int vs_prefetch_start(struct vs_prefetch **out,
		      const struct vs_prefetch_config *cfg,
		      struct vs_prefetch_plan *plan);
/* Stop the workers (within one fetch) and free. NULL is fine. */
void vs_prefetch_stop(struct vs_prefetch *p);

#endif
