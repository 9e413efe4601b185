/*
 * metrics.h - the agent's counters, for /metrics (Prometheus text format).
 *
 * One process-wide registry of lock-free atomics: any thread records, the
 * control endpoint renders. Recording never fails and never blocks.
 */
#ifndef VSYNC_METRICS_H
#define VSYNC_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum vs_source {
	VS_SRC_LOCAL = 0, /* the content cache in --cache-dir */
	VS_SRC_REDIS = 1,
	VS_SRC_PG = 2,
	VS_SRC_COUNT
};

enum vs_backend { VS_BACKEND_REDIS = 0, VS_BACKEND_PG = 1, VS_BACKEND_COUNT };

/* A file's content was had from @src: @bytes long, in @usec microseconds
 * (fetch latency histogram, per source). */
void vs_metrics_fetch(enum vs_source src, uint64_t bytes, uint64_t usec);
/* A content lookup in the local cache hit or missed. */
void vs_metrics_cache(int hit);
/* The bytes of the cache's content objects (vsync_cache_bytes), and
 * @n more objects evicted (vsync_cache_evictions_total). */
void vs_metrics_cache_bytes(uint64_t bytes);
void vs_metrics_cache_evicted(uint64_t n);
/* A backend call failed (timeout, unreachable, error reply). */
void vs_metrics_backend_error(enum vs_backend b);
/* A stream entry or a manifest snapshot from Redis failed the relay's
 * signature check (sign.h) and was ignored. */
void vs_metrics_redis_unverified(void);
/* The critical set is local: @ms since the mount started. Sets ready. */
void vs_metrics_ready(uint64_t ms);
int vs_metrics_is_ready(void);
/* A remote change was applied; @seq is now the tree's change. */
void vs_metrics_change_applied(int64_t seq);
/* A change was applied @usec after its commit (vsync_sync_lag_seconds). */
void vs_metrics_sync_lag(uint64_t usec);
/* The gauges of the sync state (status.h sets them on each snapshot):
 * the head seq (-1: not known), the files diverged and the age of the
 * oldest pending save in ms (0: none). */
void vs_metrics_sync_state(int64_t head_seq, int64_t diverged,
			   int64_t save_age_ms);
/* Files still queued for background prefetch. */
void vs_metrics_prefetch_pending(int64_t n);

/* How a journal entry of local changes ended (write-back). */
enum vs_wb_outcome {
	VS_WB_COMMITTED = 0, /* as it was */
	VS_WB_MERGED = 1,    /* merged three-way with a concurrent edit */
	VS_WB_CONFLICT = 2,  /* committed over a concurrent edit (recorded) */
	VS_WB_REFUSED = 3,   /* refused for good by PostgreSQL (logged) */
	VS_WB_COALESCED = 4, /* a save superseded by a newer one of a burst */
	VS_WB_REVERTED = 5,  /* a failed write's file put back to its saved
				version, never journaled (write.c) */
	VS_WB_OUTCOME_COUNT
};
/* A journal entry ended with @outcome. */
void vs_metrics_writeback(enum vs_wb_outcome outcome);
/* Local changes journaled and not yet committed. */
void vs_metrics_journal_pending(int64_t n);

/*
 * Render every metric in Prometheus text exposition format into a
 * malloc'd buffer (*out, *len). 0 or -ENOMEM. Metric names: see
 * docs/operations.md.
 */
int vs_metrics_render(char **out, size_t *len);

/* Reset everything (tests). */
void vs_metrics_reset(void);

#endif
