/*
 * prefetch.c - the critical-first plan and the background fetchers
 * (prefetch.h).
 *
 * DESIGN
 * vs_prefetch_start() starts one thread. It fetches the critical set in
 * batches of PF_BATCH (one Redis round trip, then one PostgreSQL query for the
 * rest: vs_content_fetch_many), calls cfg->ready, then starts the other
 * workers; every worker takes the next batch of the plan from a shared
 * atomic cursor. Each worker owns a struct vs_content (its own Redis and
 * PostgreSQL connections), so reads through the mount never wait behind
 * prefetching. Files already local are skipped without a round trip.
 * With bundles (the tree's index, tree.h), the workers first take one
 * bundle each at a time (one GET for up to VS_BUNDLE_RAW_MAX bytes of
 * small files), then the plan, where the files the bundles had are
 * skipped by the cache check; a bundle that is gone, tampered or corrupt
 * leaves its files to the plan (one round trip per batch, as without
 * bundles).
 * @stop is checked between batches, and so is the cache: the workers stop
 * (logged once) when it is nearly full (vs_cache_nearly_full), so that a
 * tree bigger than --cache-max is not fetched only to be evicted; the
 * critical set is always fetched.
 */
#include "vsync/clock.h"
#include "vsync/prefetch.h"

#include <errno.h>
#include <fnmatch.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vsync/cache.h"
#include "vsync/content.h"
#include "vsync/log.h"
#include "vsync/metrics.h"
#include "vsync/tree.h"
#include "vsync/banned.h"

#define PF_BATCH       64
#define PF_MAX_WORKERS 64

const char *const vs_critical_default_globs[] = {
    "package.json",
    "tsconfig*",
    "index.*",
    "app.*",
    "main.*",
    "vite.config.*",
    "next.config.*",
    "src/package.json",
    "src/tsconfig*",
    "src/index.*",
    "src/app.*",
    "src/main.*",
    NULL,
};

/* ---- the plan (pure) --------------------------------------------------- */

static bool glob_match(const char *const *globs, const char *path)
{
	for (; globs && *globs; globs++)
		if (fnmatch(*globs, path, FNM_PATHNAME | FNM_CASEFOLD) == 0)
			return true;
	return false;
}

struct ranked {
	const struct vs_manifest_entry *e;
	int tier;     /* 0 learned, 1 critical glob, 2 near, 3 rest */
	size_t order; /* learned position */
};

static int ranked_cmp(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->tier != y->tier)
		return x->tier - y->tier;
	if (x->tier == 0)
		return x->order < y->order ? -1 : x->order > y->order;
	if (x->e->size != y->e->size)
		return x->e->size < y->e->size ? -1 : 1;
	return strcmp(x->e->path, y->e->path);
}

/* ---- the learned list (pure) ------------------------------------------ */

size_t vs_learned_cut(const char *text, size_t len)
{
	const char *nl;

	if (len <= VS_LEARN_BYTES_MAX)
		return len;
	nl = memrchr(text, '\n', VS_LEARN_BYTES_MAX);
	return nl ? (size_t)(nl - text) + 1 : 0;
}

void vs_learned_free(char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

int vs_learned_parse(const char *text, size_t len, char ***paths, size_t *n)
{
	const char *end, *line, *nl;
	char **v = NULL;
	size_t k = 0, cap = 0;

	*paths = NULL;
	*n = 0;
	if (!text)
		return 0;
	end = text + vs_learned_cut(text, len);
	for (line = text; line < end && k < VS_LEARN_MAX; line = nl + 1) {
		size_t l;

		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			nl = end;
		l = (size_t)(nl - line);
		if (!l || vs_path_check(line, l) < 0)
			continue;
		if (k == cap) {
			char **g;

			cap = cap ? 2 * cap : 64;
			g = realloc(v, cap * sizeof(*g));
			if (!g)
				goto nomem;
			v = g;
		}
		if (!(v[k] = strndup(line, l)))
			goto nomem;
		k++;
	}
	*paths = v;
	*n = k;
	return 0;
nomem:
	vs_learned_free(v, k);
	return -ENOMEM;
}

/* qsort_r/bsearch need the array: positions compare by path, then by
 * position (so the first of equal paths sorts first). */
static int learned_pos_cmp(const void *a, const void *b, void *arg)
{
	const char *const *paths = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(paths[x], paths[y]);

	return c ? c : (x < y ? -1 : x > y);
}

int vs_learned_index_build(struct vs_learned_index *x, const char *const *paths,
			   size_t n)
{
	size_t w = 0;

	memset(x, 0, sizeof(*x));
	if (n > VS_LEARN_MAX)
		n = VS_LEARN_MAX;
	if (!n)
		return 0;
	x->sorted = malloc(n * sizeof(*x->sorted));
	if (!x->sorted)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		x->sorted[i] = i;
	qsort_r(x->sorted, n, sizeof(*x->sorted), learned_pos_cmp,
		(void *)paths);
	/* keep the first position of each path */
	for (size_t i = 0; i < n; i++)
		if (!w || strcmp(paths[x->sorted[w - 1]], paths[x->sorted[i]]))
			x->sorted[w++] = x->sorted[i];
	x->paths = paths;
	x->n = w;
	return 0;
}

long vs_learned_index_find(const struct vs_learned_index *x, const char *path)
{
	size_t lo = 0, hi = x->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(path, x->paths[x->sorted[mid]]);

		if (!c)
			return (long)x->sorted[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

void vs_learned_index_release(struct vs_learned_index *x)
{
	free(x->sorted);
	memset(x, 0, sizeof(*x));
}

/* ---- the plan (pure), continued ---------------------------------------- */

/* The directory part of @path (what precedes its last '/'): its length. */
static size_t dir_len(const char *path)
{
	size_t blen;

	vs_path_basename(path, &blen);
	return blen;
}

/* Directories of critical files, sorted, for near_critical(). */
static int dir_cmp(const void *a, const void *b)
{
	const struct vs_manifest_entry
	    *x = *(const struct vs_manifest_entry *const *)a,
	    *y = *(const struct vs_manifest_entry *const *)b;
	size_t xl = dir_len(x->path), yl = dir_len(y->path);
	int c = memcmp(x->path, y->path, xl < yl ? xl : yl);

	return c ? c : (xl < yl ? -1 : xl > yl);
}

/* Is @path in a directory that holds a critical file? @dirs: one
 * critical entry per directory, sorted by dir_cmp. */
static bool near_critical(const struct vs_manifest_entry *const *dirs, size_t n,
			  const struct vs_manifest_entry *e)
{
	return n && bsearch(&e, dirs, n, sizeof(*dirs), dir_cmp);
}

int vs_prefetch_plan_build(struct vs_prefetch_plan *p,
			   const struct vs_manifest *m,
			   const char *const *globs, const char *const *learned,
			   size_t nlearned, const struct vs_local_rules *local)
{
	struct ranked *r = calloc(m->n ? m->n : 1, sizeof(*r));
	const struct vs_manifest_entry **dirs = NULL;
	struct vs_learned_index lx;
	size_t n = 0, ncrit = 0, ndirs = 0, total = 0;

	memset(p, 0, sizeof(*p));
	if (!r || vs_learned_index_build(&lx, learned, nlearned) < 0) {
		free(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct vs_manifest_entry *e = &m->entries[i];
		long k;

		if (e->kind != VS_KIND_FILE || vs_path_is_local(local, e->path))
			continue;
		r[n].e = e;
		r[n].tier = 3;
		k = vs_learned_index_find(&lx, e->path);
		if (k >= 0) {
			r[n].tier = 0;
			r[n].order = (size_t)k;
		}
		if (r[n].tier == 3 &&
		    (glob_match(vs_critical_default_globs, e->path) ||
		     glob_match(globs, e->path)))
			r[n].tier = 1;
		n++;
	}
	vs_learned_index_release(&lx);
	/* critical first, then one of them per directory, sorted */
	qsort(r, n, sizeof(*r), ranked_cmp);
	while (ncrit < n && r[ncrit].tier <= 1)
		ncrit++;
	dirs = malloc((ncrit ? ncrit : 1) * sizeof(*dirs));
	if (!dirs) {
		free(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ncrit; i++)
		dirs[i] = r[i].e;
	qsort(dirs, ncrit, sizeof(*dirs), dir_cmp);
	for (size_t i = 0; i < ncrit; i++)
		if (!ndirs || dir_cmp(&dirs[ndirs - 1], &dirs[i]))
			dirs[ndirs++] = dirs[i];
	for (size_t i = ncrit; i < n; i++)
		if (near_critical(dirs, ndirs, r[i].e))
			r[i].tier = 2;
	free(dirs);
	qsort(r + ncrit, n - ncrit, sizeof(*r), ranked_cmp);

	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(r[i].e->path) + 1;

		if (len > UINT32_MAX - total) { /* offsets are 32-bit */
			free(r);
			return -ENOMEM;
		}
		total += len;
	}
	p->items = calloc(n ? n : 1, sizeof(*p->items));
	p->paths = malloc(total ? total : 1);
	if (!p->items || !p->paths) {
		vs_prefetch_plan_release(p);
		free(r);
		return -ENOMEM;
	}
	total = 0;
	for (size_t i = 0; i < n; i++) {
		struct vs_prefetch_item *it = &p->items[p->n];
		size_t len;

		/* (the manifest's producer checks hashes; a file left out
		 * is fetched at its first read) */
		if (vs_hex_decode(it->sha, sizeof(it->sha), r[i].e->hash) < 0)
			continue;
		len = strlen(r[i].e->path) + 1;
		it->size = r[i].e->size;
		it->path = (uint32_t)total;
		memcpy(p->paths + total, r[i].e->path, len);
		total += len;
		if (i < ncrit)
			p->ncritical++;
		p->n++;
	}
	free(r);
	return 0;
}

void vs_prefetch_plan_release(struct vs_prefetch_plan *p)
{
	free(p->items);
	free(p->paths);
	memset(p, 0, sizeof(*p));
}

/* ---- the runner -------------------------------------------------------- */

struct vs_prefetch {
	struct vs_prefetch_config cfg;
	char *pg, *redis;
	char project_id[VS_UUID_BUFSZ];
	struct vs_prefetch_plan plan;

	pthread_t lead;
	pthread_t workers[PF_MAX_WORKERS];
	int nworkers; /* started, besides the lead */
	atomic_size_t next;
	atomic_size_t done;
	atomic_ullong bytes;
	atomic_bool stop;
	atomic_bool full; /* stopped: the cache is nearly full (logged) */
	struct vs_bundle_ref *bundles; /* owned copy of cfg's */
	size_t nbundles;
	atomic_size_t next_bundle;
	atomic_size_t bundle_files; /* stored from bundles */
	atomic_size_t bundles_used; /* bundles that were read */
	atomic_size_t bundles_left; /* not finished yet */
};

/* Fetch items [from, to) of the plan; returns how many are still missing. */
static int fetch_range(struct vs_prefetch *p, struct vs_content *c, size_t from,
		       size_t to)
{
	char hex[PF_BATCH][VS_HASH_HEX_LEN + 1];
	const char *hashes[PF_BATCH], *paths[PF_BATCH];
	uint64_t sizes[PF_BATCH];
	size_t n = 0;
	int missing = 0;

	for (size_t i = from; i < to; i++) {
		struct vs_prefetch_item *it = &p->plan.items[i];

		vs_hex_encode(hex[n], it->sha, sizeof(it->sha));
		hashes[n] = hex[n];
		paths[n] = vs_prefetch_item_path(&p->plan, it);
		sizes[n] = it->size;
		atomic_fetch_add(&p->bytes, it->size);
		if (++n == PF_BATCH || i + 1 == to) {
			int r =
			    vs_content_fetch_many(c, hashes, sizes, paths, n);

			missing += r < 0 ? (int)n : r;
			n = 0;
		}
	}
	return missing;
}

static void progress(struct vs_prefetch *p, int64_t *last)
{
	int64_t now = vs_mono_ms();
	size_t done = atomic_load(&p->done), total = p->plan.n;

	vs_metrics_prefetch_pending((int64_t)(total - done));
	if (!isatty(STDERR_FILENO) || (now - *last < 250 && done < total))
		return;
	*last = now;
	fprintf(stderr, "\rvsync: fetched %zu/%zu files, %.1f MiB%s", done,
		total, (double)atomic_load(&p->bytes) / (1024 * 1024),
		done == total ? "\n" : "");
}

/* Take the bundles one at a time until none is left; the last worker
 * to finish one logs what they gave. */
static void fetch_bundles(struct vs_prefetch *p, struct vs_content *c)
{
	for (;;) {
		size_t i = atomic_fetch_add(&p->next_bundle, 1);
		int r;

		if (i >= p->nbundles)
			return;
		if (!atomic_load(&p->stop) &&
		    !vs_cache_nearly_full(p->cfg.cache)) {
			r = vs_content_fetch_bundle(c, &p->bundles[i]);
			if (r >= 0) {
				atomic_fetch_add(&p->bundle_files, (size_t)r);
				atomic_fetch_add(&p->bundles_used, 1);
			}
		}
		if (atomic_fetch_sub(&p->bundles_left, 1) == 1)
			vs_info("prefetch: %zu files from %zu of %zu bundles",
				atomic_load(&p->bundle_files),
				atomic_load(&p->bundles_used), p->nbundles);
	}
}

static void *worker_main(void *arg)
{
	struct vs_prefetch *p = arg;
	struct vs_content *c = NULL;
	int64_t last = 0;

	pthread_setname_np(pthread_self(), "vs-prefetch");
	if (vs_content_new(&c, p->cfg.cache, p->pg, p->redis, p->project_id,
			   p->cfg.timeout_ms) < 0)
		return NULL;
	vs_content_set_verify(c, p->cfg.verify);
	fetch_bundles(p, c);
	while (!atomic_load(&p->stop)) {
		size_t from = atomic_fetch_add(&p->next, PF_BATCH);
		size_t to = from + PF_BATCH;

		if (from >= p->plan.n)
			break;
		if (to > p->plan.n)
			to = p->plan.n;
		if (vs_cache_nearly_full(p->cfg.cache)) {
			/* more would only evict what was fetched before */
			if (!atomic_exchange(&p->full, true))
				vs_info("prefetch stopped at %zu of %zu files: "
					"the cache is at --cache-max; the rest "
					"is fetched on first read",
					from, p->plan.n);
			break;
		}
		fetch_range(p, c, from, to);
		atomic_fetch_add(&p->done, to - from);
		progress(p, &last);
	}
	vs_content_free(c);
	return NULL;
}

/* The plan of @p, fetched (or left to first reads): its items (the
 * paths and hashes of the whole tree, about 90 bytes a file) are freed,
 * and the heap's free pages given back. No worker runs. */
static void plan_done(struct vs_prefetch *p)
{
	vs_prefetch_plan_release(&p->plan);
	malloc_trim(0);
}

static void *lead_main(void *arg)
{
	struct vs_prefetch *p = arg;
	struct vs_content *c = NULL;
	int missing = 0, r;

	pthread_setname_np(pthread_self(), "vs-prefetch-ld");
	r = vs_content_new(&c, p->cfg.cache, p->pg, p->redis, p->project_id,
			   p->cfg.timeout_ms);
	if (r == 0) {
		vs_content_set_verify(c, p->cfg.verify);
		missing = fetch_range(p, c, 0, p->plan.ncritical);
		vs_content_free(c);
	} else {
		missing = (int)p->plan.ncritical;
	}
	atomic_store(&p->done, p->plan.ncritical);
	if (missing)
		vs_warn("%d of %zu critical files could not be fetched; they "
			"will be fetched on first read",
			missing, p->plan.ncritical);
	p->cfg.ready(p->cfg.arg, (size_t)missing);
	if (p->cfg.workers <= 0 || atomic_load(&p->stop)) {
		vs_metrics_prefetch_pending(0);
		plan_done(p);
		return NULL;
	}
	for (int i = 1; i < p->cfg.workers && i < PF_MAX_WORKERS; i++) {
		if (pthread_create(&p->workers[p->nworkers], NULL, worker_main,
				   p) != 0)
			break;
		p->nworkers++;
	}
	worker_main(p);
	/* every batch taken: the plan is done with once they are */
	for (int i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i], NULL);
	p->nworkers = 0; /* (vs_prefetch_stop joins the lead first) */
	plan_done(p);
	return NULL;
}

int vs_prefetch_start(struct vs_prefetch **out,
		      const struct vs_prefetch_config *cfg,
		      struct vs_prefetch_plan *plan)
{
	struct vs_prefetch *p = calloc(1, sizeof(*p));
	int r = -ENOMEM;

	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->pg = cfg->pg ? strdup(cfg->pg) : NULL;
	p->redis = cfg->redis ? strdup(cfg->redis) : NULL;
	if ((cfg->pg && !p->pg) || (cfg->redis && !p->redis))
		goto fail;
	snprintf(p->project_id, sizeof(p->project_id), "%s", cfg->project_id);
	if (cfg->nbundles) {
		p->bundles = malloc(cfg->nbundles * sizeof(*p->bundles));
		if (!p->bundles)
			goto fail;
		memcpy(p->bundles, cfg->bundles,
		       cfg->nbundles * sizeof(*p->bundles));
		p->nbundles = cfg->nbundles;
	}
	p->cfg.bundles = NULL;
	p->cfg.nbundles = 0;
	atomic_init(&p->next_bundle, 0);
	atomic_init(&p->bundle_files, 0);
	atomic_init(&p->bundles_used, 0);
	atomic_init(&p->bundles_left, p->nbundles);
	p->plan = *plan;
	memset(plan, 0, sizeof(*plan));
	atomic_init(&p->next, p->plan.ncritical);
	atomic_init(&p->done, 0);
	atomic_init(&p->bytes, 0);
	atomic_init(&p->stop, false);
	atomic_init(&p->full, false);
	vs_metrics_prefetch_pending((int64_t)p->plan.n);
	r = -pthread_create(&p->lead, NULL, lead_main, p);
	if (r < 0) {
		*plan = p->plan;
		goto fail;
	}
	*out = p;
	return 0;
fail:
	free(p->bundles);
	free(p->pg);
	free(p->redis);
	free(p);
	return r;
}

void vs_prefetch_stop(struct vs_prefetch *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->lead, NULL);
	for (int i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i], NULL);
	vs_prefetch_plan_release(&p->plan);
	free(p->bundles);
	free(p->pg);
	free(p->redis);
	free(p);
}
