/*
 * evict.c - the cache bound: least recently used content objects are
 * removed to keep objects/ under --cache-max (evict.h).
 *
 * DESIGN
 * One thread (vs_evict_start) owns the passes; FUSE requests never scan.
 * The cache keeps a running estimate of the bytes of objects/ (added to
 * by every store and link, cache.c); the store that takes it over the max
 * kicks the thread (vs_cache_watch: a signal, no I/O), which runs a pass
 * at once. So a pass runs per tenth of the max written (it evicts down to
 * 90%), not per store. The thread also wakes every check_ms (the gauge)
 * and measures objects/ every rescan_ms (other processes sharing the
 * cache dir, a mount --at, store objects the estimate does not see). A
 * pass that could not get under the max (too much kept or young) is
 * repeated after EVICT_RETRY_MS while it makes progress, then after
 * twice as long each time (up to rescan_ms), or as soon as the estimate
 * grew by a tenth of the max (the watch is moved there, so that store
 * kicks the thread); staying over for a minute is logged once
 * (a burst of saves stays over for a second or so: not worth a line).
 *
 * A pass: fstatat every object (st_blocks, st_atim), then take the
 * cache's pins (saves between making their object and journaling it,
 * vs_journal_put_content) and read the WRITE entries of every
 * projects/<id>/journal (the objects they name are unsaved data: kept),
 * then choose the oldest by atime (vs_evict_select) and remove each with
 * vs_cache_evict_object, which re-checks the pins and the atime under the
 * cache's evict_lock. That order leaves no gap: a save whose entry the
 * journal scan does not see was still pinned when the pins were taken,
 * or made (or touched) its object after the object scan - a new file
 * the pass does not know, or a moved atime. The grace period
 * (VS_EVICT_GRACE_MS) is for everything else: content just stored by a
 * fetch and about to be opened is not taken from under it (that would
 * cost a second fetch, not data).
 *
 * Removing a name is all eviction does: an fd open on an object (an
 * inode's content, a frozen working copy) keeps its bytes and stays
 * valid, and the next vs_content_open of an evicted object fetches it
 * again. Threads: the evictor's own state is under @lock (stopping,
 * kicked), a leaf: the kick takes it on a storing thread after the
 * cache's evict_lock is released, and the thread never holds it across a
 * pass.
 */
#include "vsync/evict.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vsync/cache.h"
#include "vsync/clock.h"
#include "vsync/journal.h"
#include "vsync/log.h"
#include "vsync/metrics.h"
#include "vsync/util.h"
#include "vsync/banned.h"

static int cmp_atime(const void *a, const void *b)
{
	const struct vs_evict_item *x = a, *y = b;

	if (x->atime_ns != y->atime_ns)
		return x->atime_ns < y->atime_ns ? -1 : 1;
	return strcmp(x->hash, y->hash);
}

uint64_t vs_evict_select(struct vs_evict_item *items, size_t n, uint64_t total,
			 uint64_t target, int64_t young_ns)
{
	uint64_t chosen = 0;

	if (n)
		qsort(items, n, sizeof(*items), cmp_atime);
	for (size_t i = 0; i < n; i++)
		items[i].evict = false;
	for (size_t i = 0; i < n && total - chosen > target; i++) {
		if (items[i].atime_ns >= young_ns)
			break; /* sorted: the rest are younger still */
		if (items[i].keep)
			continue;
		items[i].evict = true;
		chosen += items[i].bytes;
		if (chosen > total)
			chosen = total; /* a stale total: never wrap */
	}
	return chosen;
}

uint64_t vs_evict_low(uint64_t max, unsigned pct)
{
	uint64_t low;

	if (pct > 100)
		pct = 100;
	low = max / 100 * pct + max % 100 * pct / 100;
	return max && low >= max ? max - 1 : low;
}

/* ---------------------------------------------------------------- a pass */

struct scan {
	struct vs_evict_item *items;
	size_t n, alloc;
	uint64_t total;
	char (*keep)[VS_HASH_HEX_LEN + 1]; /* journaled hashes */
	size_t nkeep, akeep;
};

static int scan_push(struct scan *s, const char *hash, const struct stat *st)
{
	struct vs_evict_item *it;

	if (s->n == s->alloc) {
		size_t na = s->alloc ? 2 * s->alloc : 1024;

		it = realloc(s->items, na * sizeof(*it));
		if (!it)
			return -ENOMEM;
		s->items = it;
		s->alloc = na;
	}
	it = &s->items[s->n++];
	memcpy(it->hash, hash, VS_HASH_HEX_LEN + 1);
	it->atime_ns =
	    (int64_t)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec;
	it->bytes = (uint64_t)st->st_blocks * 512;
	it->keep = it->evict = false;
	s->total += it->bytes;
	return 0;
}

/* Every object of fan-out directory objects/<i>. */
static int scan_dir(struct vs_cache *c, unsigned i, struct scan *s)
{
	char sub[12];
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int fd, r = 0;

	snprintf(sub, sizeof(sub), "objects/%02x", i);
	r = vs_opendirat(c->dir_fd, sub, false, &dir);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	fd = dirfd(dir);
	while (r == 0 && (d = readdir(dir))) {
		if (strncmp(d->d_name, sub + 8, 2) != 0 ||
		    !vs_hash_hex_valid(d->d_name))
			continue; /* not an object: never ours to remove */
		if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue; /* gone since readdir, or not a file */
		r = scan_push(s, d->d_name, &st);
	}
	closedir(dir);
	return r;
}

static int keep_add(void *arg, const char *hash)
{
	struct scan *s = arg;

	if (!vs_hash_hex_valid(hash))
		return 0;
	if (s->nkeep == s->akeep) {
		size_t na = s->akeep ? 2 * s->akeep : 256;
		void *p = realloc(s->keep, na * sizeof(*s->keep));

		if (!p)
			return -ENOMEM;
		s->keep = p;
		s->akeep = na;
	}
	memcpy(s->keep[s->nkeep++], hash, VS_HASH_HEX_LEN + 1);
	return 0;
}

/* The objects every journal of the cache dir names (projects/<x>/journal
 * of each project directory; the name links are symlinks: skipped). */
static int scan_journals(struct vs_cache *c, struct scan *s)
{
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int fd, r = 0;

	r = vs_opendirat(c->dir_fd, "projects", false, &dir);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	fd = dirfd(dir);
	while (r == 0 && (d = readdir(dir))) {
		char jname[300];
		int jfd;

		if (d->d_name[0] == '.' ||
		    fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		snprintf(jname, sizeof(jname), "%s/journal", d->d_name);
		jfd = openat(fd, jname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (jfd < 0) {
			if (errno != ENOENT)
				r = -errno;
			continue;
		}
		r = vs_journal_dir_hashes(jfd, keep_add, s);
		close(jfd);
	}
	closedir(dir);
	return r;
}

static int cmp_hash(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void scan_release(struct scan *s)
{
	free(s->items);
	free(s->keep);
}

/* vs_evict_run, for any @max: 0 is a bound too (a reclaim's, with the
 * objects under a tenth of the max: whatever is evictable goes). */
static int evict_run(struct vs_cache *c, uint64_t max, uint64_t low,
		     int grace_ms, struct vs_evict_stats *st)
{
	struct scan s = {0};
	uint64_t seen;
	int64_t young_ns;
	int r = 0;

	memset(st, 0, sizeof(*st));
	seen = vs_cache_bytes(c);
	for (unsigned i = 0; i < 256 && r == 0; i++)
		r = scan_dir(c, i, &s);
	if (r < 0) {
		vs_warn("cache: cannot measure '%s/objects': %s", c->dir,
			strerror(-r));
		goto out;
	}
	/* stores during the scan stay counted: the next pass is kicked */
	vs_cache_bytes_measured(c, seen, s.total);
	st->before = st->after = s.total;
	st->objects = s.n;
	if (s.total <= max)
		goto out;
	/* pinned now (saves between their object and their entry), then
	 * the journals: a save whose entry the journal scan misses was
	 * pinned before it began, or made its object after the scan above
	 * (a new name, or a moved atime: vs_cache_evict_object keeps it) */
	r = vs_cache_pins_each(c, keep_add, &s);
	if (r == 0)
		r = scan_journals(c, &s);
	if (r < 0) {
		/* an unread journal may name anything: remove nothing */
		vs_warn("cache: cannot read the journals in '%s/projects': "
			"%s; nothing evicted",
			c->dir, strerror(-r));
		goto out;
	}
	if (s.nkeep)
		qsort(s.keep, s.nkeep, sizeof(*s.keep), cmp_hash);
	for (size_t i = 0; i < s.n; i++) {
		s.items[i].keep =
		    s.nkeep && bsearch(s.items[i].hash, s.keep, s.nkeep,
				       sizeof(*s.keep), cmp_hash) != NULL;
		st->kept += s.items[i].keep;
	}
	young_ns = vs_wall_ns() - (int64_t)grace_ms * 1000000;
	for (size_t i = 0; i < s.n; i++)
		st->young += s.items[i].atime_ns >= young_ns;
	vs_evict_select(s.items, s.n, s.total, low, young_ns);
	for (size_t i = 0; i < s.n; i++) {
		uint64_t freed;

		if (!s.items[i].evict ||
		    vs_cache_evict_object(c, s.items[i].hash,
					  s.items[i].atime_ns, &freed) < 0)
			continue; /* used since the scan, or gone */
		st->evicted++;
		st->evicted_bytes += freed;
		st->after -= freed < st->after ? freed : st->after;
	}
	if (st->evicted)
		vs_info("cache: evicted %zu object%s (%llu bytes, least "
			"recently used): objects/ %llu -> %llu bytes, max %llu",
			st->evicted, st->evicted == 1 ? "" : "s",
			(unsigned long long)st->evicted_bytes,
			(unsigned long long)st->before,
			(unsigned long long)st->after, (unsigned long long)max);
out:
	scan_release(&s);
	return r;
}

int vs_evict_run(struct vs_cache *c, uint64_t max, uint64_t low, int grace_ms,
		 struct vs_evict_stats *st)
{
	return evict_run(c, max ? max : UINT64_MAX, low, grace_ms, st);
}

/* ---------------------------------------------------------------- thread */

struct vs_evict {
	struct vs_evict_config cfg;
	uint64_t low;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping; /* under lock */
	bool kicked;   /* under lock: the estimate went over the max */
	/* reclaims (evict_reclaim), under lock: asked by writers, done by the
	 * thread, which broadcasts @reclaimed after each */
	pthread_cond_t reclaimed;
	uint64_t reclaim_asked, reclaim_done;
	bool reclaim_freed;	    /* by the last one done */
	int64_t reclaim_idle_until; /* monotonic ms: none asked before */
	uint64_t reclaim_idle_gen;  /* ... unless the room_gen moved on */
	int64_t reclaim_until;	    /* monotonic ms: the last writer waits */
	/* the thread waits for vs_cache_room_changed (evict_room) */
	atomic_bool room_waited;
};

/* @ts (CLOCK_MONOTONIC, the conds' clock) @ms from now. */
static void evict_deadline(struct timespec *ts, int ms)
{
	vs_mono_ts(ts, vs_mono_ms() + ms);
}

/* The cache's watch (vs_cache_watch): on a FUSE or fetch thread, quick. */
static void evict_kick(void *arg)
{
	struct vs_evict *ev = arg;

	pthread_mutex_lock(&ev->lock);
	ev->kicked = true;
	pthread_cond_signal(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

/* A reclaim that freed nothing is not asked again for this long, unless
 * something that may free room happened since (vs_cache_room_changed: a
 * file removed, an entry committed): a volume filled by something else
 * than objects would have every write wait for a scan. */
#define EVICT_RECLAIM_IDLE_MS 1000
/* A writer waits this long at most for its reclaim. */
#define EVICT_RECLAIM_WAIT_MS 5000

/*
 * The cache's reclaim (vs_cache_on_full), called by a writer: a write
 * to the volume found no room. Asks the evictor's thread for a pass
 * (reclaim_pass) and waits for it, at most EVICT_RECLAIM_WAIT_MS; writers
 * that ask during one pass share the next. true if it freed anything.
 */
static bool evict_reclaim(void *arg)
{
	struct vs_evict *ev = arg;
	struct timespec ts;
	uint64_t mine;
	bool freed = false;

	evict_deadline(&ts, EVICT_RECLAIM_WAIT_MS);
	pthread_mutex_lock(&ev->lock);
	if (ev->stopping ||
	    (vs_mono_ms() < ev->reclaim_idle_until &&
	     vs_cache_room_gen(ev->cfg.cache) == ev->reclaim_idle_gen))
		goto out;
	mine = ++ev->reclaim_asked;
	ev->reclaim_until = vs_mono_ms() + EVICT_RECLAIM_WAIT_MS;
	pthread_cond_signal(&ev->cond);
	while (ev->reclaim_done < mine && !ev->stopping)
		if (pthread_cond_timedwait(&ev->reclaimed, &ev->lock, &ts) ==
		    ETIMEDOUT)
			break;
	freed = ev->reclaim_done >= mine && ev->reclaim_freed;
out:
	pthread_mutex_unlock(&ev->lock);
	return freed;
}

/* The cache's room hook (vs_cache_on_full), on the thread of an unlink
 * or a commit: quick, and a lock only while a reclaim waits for it. */
static void evict_room(void *arg)
{
	struct vs_evict *ev = arg;

	if (!atomic_load(&ev->room_waited))
		return;
	pthread_mutex_lock(&ev->lock);
	pthread_cond_signal(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

/* A reclaim's pass, on the thread: down to the low watermark, or by a
 * tenth of the max when the objects are under it already, and all of
 * them when they are under a tenth of the max (what is journaled,
 * pinned or young stays, as always). true if it freed
 * anything; *@held: it stayed over its target with objects kept as
 * unsaved data (journaled or pinned), which their commits will free, or
 * young ones, which the grace period will. Called without ev->lock. */
static bool reclaim_pass(struct vs_evict *ev, bool again, bool *held)
{
	struct vs_evict_stats st;
	uint64_t est = vs_cache_bytes(ev->cfg.cache), target = ev->low;

	if (est <= ev->cfg.max)
		target = est > ev->cfg.max / 10 ? est - ev->cfg.max / 10 : 0;
	if (target > ev->low)
		target = ev->low;
	if (!again)
		vs_warn("cache: no room on the cache dir's volume; evicting "
			"now");
	*held = false;
	/* a target of 0 is one (not vs_evict_run's "no bound"): the
	 * volume is full of something else (local-only files), and every
	 * object evicted is room for the write that waits */
	if (evict_run(ev->cfg.cache, target, target, ev->cfg.grace_ms, &st) < 0)
		return false;
	*held = st.after > target && (st.kept > 0 || st.young > 0);
	vs_metrics_cache_evicted(st.evicted);
	vs_metrics_cache_bytes(st.after);
	return st.evicted > 0;
}

/* A pass that stayed over the max is tried again after this (then after
 * twice as long each time it frees nothing): a scan of a big cache costs
 * CPU, and a tenth of the max stored meanwhile kicks one sooner. */
#define EVICT_RETRY_MS 1000
/* ... and at least this often: what a journal kept is evictable once it
 * is committed, which no store announces */
#define EVICT_RETRY_MAX_MS 10000
/* Warn when a pass has stayed over the max this long. */
#define EVICT_STUCK_WARN_MS 60000

/* What the thread keeps between passes. */
struct evict_state {
	int64_t next_scan;   /* monotonic ms: measure then at the latest */
	uint64_t stuck_at;   /* bytes left by a pass that stayed over, or 0 */
	int64_t stuck_since; /* monotonic ms */
	int64_t stuck_wait;  /* ms until the next try while stuck */
	bool warned;	     /* the stuck warning was logged */
};

/* One pass and what follows from it. Called without ev->lock. */
static void evict_pass(struct vs_evict *ev, struct evict_state *s)
{
	struct vs_evict_stats st;
	int64_t now;
	int r;

	r = vs_evict_run(ev->cfg.cache, ev->cfg.max, ev->low, ev->cfg.grace_ms,
			 &st); /* logged */
	now = vs_mono_ms();
	if (r == 0) {
		vs_metrics_cache_evicted(st.evicted);
		vs_metrics_cache_bytes(st.after);
	}
	if (r == 0 && st.after <= ev->cfg.max) {
		if (s->warned)
			vs_info("cache: objects/ back under --cache-max (%llu "
				"bytes)",
				(unsigned long long)st.after);
		memset(s, 0, sizeof(*s));
		s->next_scan = now + ev->cfg.rescan_ms;
		vs_cache_watch_at(ev->cfg.cache, ev->cfg.max);
		return;
	}
	/* stuck (or failed): again once the young ones are old while that
	 * frees something, then less and less often */
	if (!s->stuck_at)
		s->stuck_since = now;
	s->stuck_at = r == 0 ? st.after : ev->cfg.max + 1;
	/* kicked again once a tenth of the max more is stored */
	vs_cache_watch_at(ev->cfg.cache, s->stuck_at + ev->cfg.max / 10);
	s->stuck_wait =
	    s->stuck_wait && !st.evicted ? 2 * s->stuck_wait : EVICT_RETRY_MS;
	if (s->stuck_wait > EVICT_RETRY_MAX_MS)
		s->stuck_wait = EVICT_RETRY_MAX_MS;
	if (s->stuck_wait > ev->cfg.rescan_ms)
		s->stuck_wait = ev->cfg.rescan_ms;
	s->next_scan = now + s->stuck_wait;
	if (r == 0 && !s->warned &&
	    now - s->stuck_since >= EVICT_STUCK_WARN_MS) {
		vs_warn("cache: objects/ stays over --cache-max (%llu > %llu "
			"bytes): %zu objects are named by unsaved changes "
			"(PostgreSQL unreachable?) or being saved",
			(unsigned long long)st.after,
			(unsigned long long)ev->cfg.max, st.kept);
		s->warned = true;
	}
}

/* Wait (ev->lock held) until the cache's room_gen moves on from @gen,
 * the grace period has passed (young objects are evictable then), @left
 * ms are up, or the evictor stops. */
static void wait_room(struct vs_evict *ev, uint64_t gen, int64_t left)
{
	struct timespec ts;

	evict_deadline(
	    &ts, (int)(left < ev->cfg.grace_ms ? left : ev->cfg.grace_ms));
	atomic_store(&ev->room_waited, true);
	while (!ev->stopping && vs_cache_room_gen(ev->cfg.cache) == gen &&
	       pthread_cond_timedwait(&ev->cond, &ev->lock, &ts) != ETIMEDOUT)
		;
	atomic_store(&ev->room_waited, false);
}

bool vs_evict_waiting_room(struct vs_evict *ev)
{
	return atomic_load(&ev->room_waited);
}

static void *evict_main(void *arg)
{
	struct vs_evict *ev = arg;
	struct evict_state s = {0};
	bool again = false; /* the reclaim under way passes again */

	pthread_setname_np(pthread_self(), "vs-evict");
	pthread_mutex_lock(&ev->lock);
	while (!ev->stopping) {
		int64_t now = vs_mono_ms();
		uint64_t est = vs_cache_bytes(ev->cfg.cache);
		struct timespec ts;

		vs_metrics_cache_bytes(est);
		if (ev->reclaim_asked > ev->reclaim_done) {
			uint64_t asked = ev->reclaim_asked;
			uint64_t gen = vs_cache_room_gen(ev->cfg.cache);
			bool freed, held;
			int64_t left;

			pthread_mutex_unlock(&ev->lock);
			freed = reclaim_pass(ev, again, &held);
			pthread_mutex_lock(&ev->lock);
			left = ev->reclaim_until - vs_mono_ms();
			again = !freed && held && left > 0 && !ev->stopping;
			if (again) {
				/* what it kept is freed by its commit (of
				 * files removed since, say): the pass again
				 * then, while a writer waits */
				wait_room(ev, gen, left);
				continue;
			}
			ev->reclaim_done = asked;
			ev->reclaim_freed = freed;
			ev->reclaim_idle_until =
			    freed ? 0 : vs_mono_ms() + EVICT_RECLAIM_IDLE_MS;
			ev->reclaim_idle_gen = gen;
			pthread_cond_broadcast(&ev->reclaimed);
			continue;
		}
		ev->kicked = false;
		if (now >= s.next_scan ||
		    (est > ev->cfg.max &&
		     (!s.stuck_at || est > s.stuck_at + ev->cfg.max / 10))) {
			pthread_mutex_unlock(&ev->lock);
			evict_pass(ev, &s);
			pthread_mutex_lock(&ev->lock);
			continue;
		}
		evict_deadline(&ts, ev->cfg.check_ms);
		if (!ev->kicked && !ev->stopping &&
		    ev->reclaim_asked == ev->reclaim_done)
			pthread_cond_timedwait(&ev->cond, &ev->lock, &ts);
	}
	pthread_mutex_unlock(&ev->lock);
	return NULL;
}

int vs_evict_start(struct vs_evict **out, const struct vs_evict_config *cfg)
{
	struct vs_evict *ev;
	int r;

	*out = NULL;
	if (!cfg->cache || !cfg->max)
		return -EINVAL;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->cfg = *cfg;
	if (!ev->cfg.low_pct)
		ev->cfg.low_pct = 90;
	if (ev->cfg.grace_ms <= 0)
		ev->cfg.grace_ms = VS_EVICT_GRACE_MS;
	if (ev->cfg.check_ms <= 0)
		ev->cfg.check_ms = 1000;
	if (ev->cfg.rescan_ms <= 0)
		ev->cfg.rescan_ms = 60000;
	ev->low = vs_evict_low(ev->cfg.max, ev->cfg.low_pct);
	pthread_mutex_init(&ev->lock, NULL);
	vs_cond_init_mono(&ev->cond);
	vs_cond_init_mono(&ev->reclaimed);
	vs_cache_watch(ev->cfg.cache, ev->cfg.max, evict_kick, ev);
	vs_cache_on_full(ev->cfg.cache, evict_reclaim, evict_room, ev);
	r = -pthread_create(&ev->thread, NULL, evict_main, ev);
	if (r < 0) {
		vs_cache_watch(ev->cfg.cache, 0, NULL, NULL);
		vs_cache_on_full(ev->cfg.cache, NULL, NULL, NULL);
		pthread_cond_destroy(&ev->reclaimed);
		pthread_cond_destroy(&ev->cond);
		pthread_mutex_destroy(&ev->lock);
		free(ev);
		return r;
	}
	*out = ev;
	return 0;
}

void vs_evict_stop(struct vs_evict *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->lock);
	ev->stopping = true;
	pthread_cond_signal(&ev->cond);
	pthread_cond_broadcast(&ev->reclaimed);
	pthread_mutex_unlock(&ev->lock);
	pthread_join(ev->thread, NULL);
	vs_cache_watch(ev->cfg.cache, 0, NULL, NULL);
	vs_cache_on_full(ev->cfg.cache, NULL, NULL, NULL);
	pthread_cond_destroy(&ev->reclaimed);
	pthread_cond_destroy(&ev->cond);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}
