/*
 * evict.h - keep the content objects of the cache dir (objects/) under
 * --cache-max (sync/evict.c).
 *
 * Least recently used first (an object's atime, cache.h), down to a low
 * watermark, never an object a journal entry names (the unsaved data of
 * any project in the cache dir: vs_journal_dir_hashes), nor one a save
 * has pinned between making it and journaling it (vs_cache_pin), nor one
 * used in the last grace period. Nothing but objects/ is ever removed: working
 * copies (projects/<id>/work, memfds), journals, manifests and local-only files
 * are not counted and not touched. An evicted object is fetched again on
 * its next open, as on a cold start; an fd open on it keeps its bytes.
 */
#ifndef VSYNC_EVICT_H
#define VSYNC_EVICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsync/hash.h"

struct vs_cache;

/* One object found by a scan. */
struct vs_evict_item {
	char hash[VS_HASH_HEX_LEN + 1];
	int64_t atime_ns; /* st_atim: last use */
	uint64_t bytes;	  /* allocated (st_blocks * 512) */
	bool keep;	  /* named by a journal entry */
	bool evict;	  /* set by vs_evict_select() */
};

/*
 * Pure: choose what to evict so that @total (the bytes of all @n items)
 * comes down to @target or below: sorts @items by atime, oldest first,
 * and sets ->evict on the oldest ones that are neither ->keep nor used at
 * or after @young_ns (the grace period), until enough are chosen or none
 * is left. Returns the bytes chosen (the total minus them may still be
 * over @target when too much is kept or young).
 */
uint64_t vs_evict_select(struct vs_evict_item *items, size_t n, uint64_t total,
			 uint64_t target, int64_t young_ns);

/* The watermark a pass evicts down to: @pct percent of @max (at least 1
 * byte less than @max when @max > 0). Pure. */
uint64_t vs_evict_low(uint64_t max, unsigned pct);

/* What one pass did. */
struct vs_evict_stats {
	uint64_t before, after; /* bytes of objects/ (measured, then left) */
	size_t objects;		/* found */
	size_t kept;		/* named by a journal entry */
	size_t young; /* used within the grace period (none chosen then) */
	size_t evicted;
	uint64_t evicted_bytes;
};

/*
 * One pass: measure objects/ (sets the cache's estimate), and when it is
 * over @max, evict down to @low (LRU; what is kept or used within the
 * last @grace_ms stays); @max 0 is no bound: it only measures. 0 and @st;
 * -errno when objects/ or a journal cannot be read (then nothing is removed: a
 * journal that cannot be read might name anything). Logs one line when it
 * evicted something.
 */
int vs_evict_run(struct vs_cache *c, uint64_t max, uint64_t low, int grace_ms,
		 struct vs_evict_stats *st);

struct vs_evict_config {
	struct vs_cache *cache; /* borrowed; outlives the evictor */
	uint64_t max;		/* bytes of objects/ at most (> 0) */
	unsigned low_pct;	/* a pass evicts down to this % (0: 90) */
	int grace_ms;		/* 0: VS_EVICT_GRACE_MS */
	int check_ms;  /* the estimate is checked this often (0: 1000) */
	int rescan_ms; /* objects/ is measured at least this often (0:
			  60000) */
};

/* Used objects are kept at least this long (journaled ones and those a
 * save has pinned, whatever their age). */
#define VS_EVICT_GRACE_MS 250

struct vs_evict;

/*
 * Start the evictor's thread: a pass at once, then one whenever a store
 * takes the cache's estimate over the max (vs_cache_watch: the cache must
 * not be used by other threads yet), or rescan_ms has passed; and one a
 * writer asks for and waits for when a write to the volume finds no room
 * (vs_cache_on_full, vs_cache_reclaim). Sets the
 * vsync_cache_bytes and vsync_cache_evictions_total metrics. 0 or -errno
 * (nothing started).
 */
int vs_evict_start(struct vs_evict **out, const struct vs_evict_config *cfg);
/* Stop the thread (a pass under way finishes) and free. NULL is fine. */
void vs_evict_stop(struct vs_evict *ev);
/* true while a reclaim's pass found the room held by unsaved (journaled
 * or pinned) or young objects and waits for a commit or unlink to free
 * it (vs_cache_room_changed) */
bool vs_evict_waiting_room(struct vs_evict *ev);

#endif
