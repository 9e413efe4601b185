/*
 * metrics.c - the agent's counters and their Prometheus rendering
 * (include/vsync/metrics.h; names and meanings in docs/operations.md).
 *
 * DESIGN
 *
 * One process-wide registry of C11 atomics, no locks: any thread records
 * (FUSE workers, the prefetcher, the change follower), the control
 * endpoint's thread renders. Recording is one or three relaxed atomic adds,
 * so it never blocks and never fails.
 *
 * A scrape is not a snapshot: each value is read on its own, so a render
 * racing with a recording may show, say, a fetch counted in
 * vsync_fetch_files_total but not yet in the histogram. Every value is
 * monotonic or a gauge, so the next scrape is right again. Within one
 * histogram the _count is the sum of the bucket counts read for that same
 * render, so the +Inf bucket always equals _count as Prometheus expects.
 *
 * vsync_ready is the one value published with ordering: the time to ready
 * is stored before ready is set (release), and read after ready is seen
 * (acquire), so a scrape that says ready=1 has the time too.
 *
 * Histogram buckets are kept non-cumulative (one counter per interval, the
 * last one above 10 s) and summed on rendering; durations are kept in
 * microseconds and rendered in seconds.
 */
#include "vsync/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/cache.h"
#include "vsync/log.h"
#include "vsync/banned.h"

/* Upper bounds of vsync_fetch_duration_seconds, in microseconds and as
 * rendered in the "le" label; the +Inf bucket follows them. */
static const struct {
	uint64_t usec;
	const char *le;
} fetch_buckets[] = {
    {100, "0.0001"},  {250, "0.00025"}, {500, "0.0005"},  {1000, "0.001"},
    {2500, "0.0025"}, {5000, "0.005"},	{10000, "0.01"},  {25000, "0.025"},
    {50000, "0.05"},  {100000, "0.1"},	{250000, "0.25"}, {500000, "0.5"},
    {1000000, "1"},   {2500000, "2.5"}, {5000000, "5"},	  {10000000, "10"},
};

#define N_BOUNDS  (sizeof(fetch_buckets) / sizeof(fetch_buckets[0]))
#define N_BUCKETS (N_BOUNDS + 1) /* the last one is (10 s, +Inf) */

/* Upper bounds of vsync_sync_lag_seconds (commit -> applied): from the
 * 2 ms target up to the minutes of a relay that is down. */
static const struct {
	uint64_t usec;
	const char *le;
} lag_buckets[] = {
    {1000, "0.001"},  {2000, "0.002"},	{5000, "0.005"},  {10000, "0.01"},
    {25000, "0.025"}, {50000, "0.05"},	{100000, "0.1"},  {250000, "0.25"},
    {500000, "0.5"},  {1000000, "1"},	{2500000, "2.5"}, {5000000, "5"},
    {10000000, "10"}, {30000000, "30"}, {60000000, "60"}, {300000000, "300"},
};

#define N_LAG_BOUNDS  (sizeof(lag_buckets) / sizeof(lag_buckets[0]))
#define N_LAG_BUCKETS (N_LAG_BOUNDS + 1)

static const char *const source_names[VS_SRC_COUNT] = {
    [VS_SRC_LOCAL] = "local",
    [VS_SRC_REDIS] = "redis",
    [VS_SRC_PG] = "postgres",
};

static const char *const outcome_names[VS_WB_OUTCOME_COUNT] = {
    [VS_WB_COMMITTED] = "committed", [VS_WB_MERGED] = "merged",
    [VS_WB_CONFLICT] = "conflict",   [VS_WB_REFUSED] = "refused",
    [VS_WB_COALESCED] = "coalesced", [VS_WB_REVERTED] = "reverted",
};

static const char *const backend_names[VS_BACKEND_COUNT] = {
    [VS_BACKEND_REDIS] = "redis",
    [VS_BACKEND_PG] = "postgres",
};

struct fetch_stats {
	atomic_uint_least64_t files;
	atomic_uint_least64_t bytes;
	atomic_uint_least64_t usec_sum;
	atomic_uint_least64_t bucket[N_BUCKETS]; /* not cumulative */
};

/* The registry: zero is the initial state (static storage), and
 * vs_metrics_reset() stores zeros again. */
static struct {
	atomic_int ready_claimed; /* set by the first vs_metrics_ready() */
	atomic_int ready;
	atomic_uint_least64_t ready_ms;
	struct fetch_stats fetch[VS_SRC_COUNT];
	atomic_uint_least64_t cache_hits;
	atomic_uint_least64_t cache_misses;
	atomic_uint_least64_t cache_bytes;
	atomic_uint_least64_t cache_evictions;
	atomic_uint_least64_t backend_errors[VS_BACKEND_COUNT];
	atomic_uint_least64_t redis_unverified;
	atomic_uint_least64_t changes_applied;
	atomic_int_least64_t applied_seq;
	atomic_int_least64_t prefetch_pending;
	atomic_uint_least64_t writeback[VS_WB_OUTCOME_COUNT];
	atomic_int_least64_t journal_pending;
	atomic_uint_least64_t lag_usec_sum;
	atomic_uint_least64_t lag_bucket[N_LAG_BUCKETS]; /* not cumulative */
	atomic_int_least64_t head_seq;
	atomic_int_least64_t files_diverged;
	atomic_int_least64_t save_age_ms;
} reg = {.head_seq = -1};

#define ADD(obj, n) atomic_fetch_add_explicit(&(obj), (n), memory_order_relaxed)
#define SET(obj, v) atomic_store_explicit(&(obj), (v), memory_order_relaxed)
#define GET(obj)    atomic_load_explicit(&(obj), memory_order_relaxed)

/* ------------------------------------------------------------ recording */

void vs_metrics_fetch(enum vs_source src, uint64_t bytes, uint64_t usec)
{
	struct fetch_stats *f;
	size_t b = 0;

	if ((unsigned)src >= VS_SRC_COUNT)
		vs_bug("vs_metrics_fetch: source %d out of range", (int)src);
	f = &reg.fetch[src];
	while (b < N_BOUNDS && usec > fetch_buckets[b].usec)
		b++;
	ADD(f->files, 1);
	ADD(f->bytes, bytes);
	ADD(f->usec_sum, usec);
	ADD(f->bucket[b], 1);
}

void vs_metrics_cache(int hit)
{
	if (hit)
		ADD(reg.cache_hits, 1);
	else
		ADD(reg.cache_misses, 1);
}

void vs_metrics_cache_bytes(uint64_t bytes)
{
	SET(reg.cache_bytes, bytes);
}

void vs_metrics_cache_evicted(uint64_t n)
{
	ADD(reg.cache_evictions, n);
}

void vs_metrics_redis_unverified(void)
{
	ADD(reg.redis_unverified, 1);
}

void vs_metrics_backend_error(enum vs_backend b)
{
	if ((unsigned)b >= VS_BACKEND_COUNT)
		vs_bug("vs_metrics_backend_error: backend %d out of range",
		       (int)b);
	ADD(reg.backend_errors[b], 1);
}

/* The first call wins: the mount becomes ready once, and a later call (a
 * second critical set, say) must not move the time to ready. */
void vs_metrics_ready(uint64_t ms)
{
	if (atomic_exchange_explicit(&reg.ready_claimed, 1,
				     memory_order_relaxed))
		return;
	SET(reg.ready_ms, ms);
	atomic_store_explicit(&reg.ready, 1, memory_order_release);
}

int vs_metrics_is_ready(void)
{
	return atomic_load_explicit(&reg.ready, memory_order_acquire);
}

void vs_metrics_change_applied(int64_t seq)
{
	ADD(reg.changes_applied, 1);
	SET(reg.applied_seq, seq);
}

void vs_metrics_prefetch_pending(int64_t n)
{
	SET(reg.prefetch_pending, n);
}

void vs_metrics_writeback(enum vs_wb_outcome outcome)
{
	if ((unsigned)outcome < VS_WB_OUTCOME_COUNT)
		ADD(reg.writeback[outcome], 1);
}

void vs_metrics_journal_pending(int64_t n)
{
	SET(reg.journal_pending, n);
}

void vs_metrics_sync_lag(uint64_t usec)
{
	size_t b = 0;

	while (b < N_LAG_BOUNDS && usec > lag_buckets[b].usec)
		b++;
	ADD(reg.lag_usec_sum, usec);
	ADD(reg.lag_bucket[b], 1);
}

void vs_metrics_sync_state(int64_t head_seq, int64_t diverged,
			   int64_t save_age_ms)
{
	SET(reg.head_seq, head_seq);
	SET(reg.files_diverged, diverged);
	SET(reg.save_age_ms, save_age_ms);
}

void vs_metrics_reset(void)
{
	SET(reg.ready, 0);
	SET(reg.ready_claimed, 0);
	SET(reg.ready_ms, 0);
	for (int s = 0; s < VS_SRC_COUNT; s++) {
		struct fetch_stats *f = &reg.fetch[s];

		SET(f->files, 0);
		SET(f->bytes, 0);
		SET(f->usec_sum, 0);
		for (size_t b = 0; b < N_BUCKETS; b++)
			SET(f->bucket[b], 0);
	}
	SET(reg.cache_hits, 0);
	SET(reg.cache_misses, 0);
	SET(reg.cache_bytes, 0);
	SET(reg.cache_evictions, 0);
	for (int b = 0; b < VS_BACKEND_COUNT; b++)
		SET(reg.backend_errors[b], 0);
	SET(reg.redis_unverified, 0);
	SET(reg.changes_applied, 0);
	SET(reg.applied_seq, 0);
	SET(reg.prefetch_pending, 0);
	for (int o = 0; o < VS_WB_OUTCOME_COUNT; o++)
		SET(reg.writeback[o], 0);
	SET(reg.journal_pending, 0);
	SET(reg.lag_usec_sum, 0);
	for (size_t b = 0; b < N_LAG_BUCKETS; b++)
		SET(reg.lag_bucket[b], 0);
	SET(reg.head_seq, -1);
	SET(reg.files_diverged, 0);
	SET(reg.save_age_ms, 0);
}

/* ------------------------------------------------------------ rendering */

/* The whole exposition is about 8 KiB; the cap only guards the growth
 * loop against a bug. */
#define RENDER_INITIAL 8192
#define RENDER_MAX     (1 << 20)

/* A growable text buffer; after a failed append, err is set and every
 * later append does nothing. */
struct mbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void __attribute__((format(printf, 2, 3)))
mbuf_printf(struct mbuf *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (m->err)
		return;
	for (;;) {
		size_t avail = m->cap - m->len;
		char *np;
		size_t ncap;

		va_start(ap, fmt);
		n = vsnprintf(m->p + m->len, avail, fmt, ap);
		va_end(ap);
		if (n < 0) /* only for a bad format or an int overflow */
			vs_bug("metrics: vsnprintf(\"%s\") failed", fmt);
		if ((size_t)n < avail) {
			m->len += (size_t)n;
			return;
		}
		ncap = m->cap * 2;
		while (ncap - m->len <= (size_t)n)
			ncap *= 2;
		if (ncap > RENDER_MAX || !(np = realloc(m->p, ncap))) {
			m->err = -ENOMEM;
			return;
		}
		m->p = np;
		m->cap = ncap;
	}
}

static void put_header(struct mbuf *m, const char *name, const char *type,
		       const char *help)
{
	mbuf_printf(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Seconds with microsecond precision, from integer microseconds (no
 * floating point: exact, and the same text on every platform). */
static void put_usec(struct mbuf *m, uint64_t usec)
{
	mbuf_printf(m, "%" PRIu64 ".%06" PRIu64, usec / 1000000,
		    usec % 1000000);
}

static void render_fetch(struct mbuf *m)
{
	put_header(m, "vsync_fetch_files_total", "counter",
		   "Files whose content was obtained, by source.");
	for (int s = 0; s < VS_SRC_COUNT; s++)
		mbuf_printf(
		    m, "vsync_fetch_files_total{source=\"%s\"} %" PRIu64 "\n",
		    source_names[s], (uint64_t)GET(reg.fetch[s].files));

	put_header(m, "vsync_fetch_bytes_total", "counter",
		   "Bytes of file content obtained, by source.");
	for (int s = 0; s < VS_SRC_COUNT; s++)
		mbuf_printf(
		    m, "vsync_fetch_bytes_total{source=\"%s\"} %" PRIu64 "\n",
		    source_names[s], (uint64_t)GET(reg.fetch[s].bytes));

	put_header(m, "vsync_fetch_duration_seconds", "histogram",
		   "Time to obtain one file's content, by source.");
	for (int s = 0; s < VS_SRC_COUNT; s++) {
		const struct fetch_stats *f = &reg.fetch[s];
		uint64_t cum = 0;

		for (size_t b = 0; b < N_BUCKETS; b++) {
			cum += GET(f->bucket[b]);
			mbuf_printf(
			    m,
			    "vsync_fetch_duration_seconds_bucket{source="
			    "\"%s\",le=\"%s\"} %" PRIu64 "\n",
			    source_names[s],
			    b < N_BOUNDS ? fetch_buckets[b].le : "+Inf", cum);
		}
		mbuf_printf(m,
			    "vsync_fetch_duration_seconds_sum{source=\"%s\"} ",
			    source_names[s]);
		put_usec(m, GET(f->usec_sum));
		mbuf_printf(
		    m,
		    "\nvsync_fetch_duration_seconds_count{source=\"%s\"} "
		    "%" PRIu64 "\n",
		    source_names[s], cum);
	}
}

static void render_sync(struct mbuf *m)
{
	uint64_t cum = 0;
	int64_t age = GET(reg.save_age_ms);

	put_header(m, "vsync_head_seq", "gauge",
		   "The project's last committed change as last read "
		   "(PostgreSQL or the Redis cursor); -1 until read.");
	mbuf_printf(m, "vsync_head_seq %" PRId64 "\n",
		    (int64_t)GET(reg.head_seq));
	put_header(m, "vsync_files_diverged", "gauge",
		   "Files that differ from PostgreSQL: unsaved local edits, "
		   "conflicts pending, refused saves.");
	mbuf_printf(m, "vsync_files_diverged %" PRId64 "\n",
		    (int64_t)GET(reg.files_diverged));
	put_header(m, "vsync_save_age_seconds", "gauge",
		   "Age of the oldest local save not yet committed; 0 when "
		   "none is pending.");
	mbuf_printf(m, "vsync_save_age_seconds %" PRId64 ".%03" PRId64 "\n",
		    age / 1000, age % 1000);
	put_header(m, "vsync_sync_lag_seconds", "histogram",
		   "Time from a change's commit in PostgreSQL to its being "
		   "applied to the mount.");
	for (size_t b = 0; b < N_LAG_BUCKETS; b++) {
		cum += GET(reg.lag_bucket[b]);
		mbuf_printf(
		    m, "vsync_sync_lag_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
		    b < N_LAG_BOUNDS ? lag_buckets[b].le : "+Inf", cum);
	}
	mbuf_printf(m, "vsync_sync_lag_seconds_sum ");
	put_usec(m, GET(reg.lag_usec_sum));
	mbuf_printf(m, "\nvsync_sync_lag_seconds_count %" PRIu64 "\n", cum);
}

int vs_metrics_render(char **out, size_t *len)
{
	struct mbuf m = {.cap = RENDER_INITIAL};
	int ready;

	*out = NULL;
	*len = 0;
	m.p = malloc(m.cap);
	if (!m.p)
		return -ENOMEM;

	ready = vs_metrics_is_ready();
	put_header(&m, "vsync_ready", "gauge",
		   "1 once the critical files are local and the mount is "
		   "ready, else 0.");
	mbuf_printf(&m, "vsync_ready %d\n", ready);
	put_header(&m, "vsync_time_to_ready_seconds", "gauge",
		   "Seconds from the start of the mount to ready; NaN until "
		   "ready.");
	if (ready)
		mbuf_printf(&m,
			    "vsync_time_to_ready_seconds %" PRIu64 ".%03" PRIu64
			    "\n",
			    (uint64_t)GET(reg.ready_ms) / 1000,
			    (uint64_t)GET(reg.ready_ms) % 1000);
	else
		mbuf_printf(&m, "vsync_time_to_ready_seconds NaN\n");

	render_fetch(&m);

	put_header(&m, "vsync_cache_hits_total", "counter",
		   "Content lookups answered by the local cache.");
	mbuf_printf(&m, "vsync_cache_hits_total %" PRIu64 "\n",
		    (uint64_t)GET(reg.cache_hits));
	put_header(&m, "vsync_cache_misses_total", "counter",
		   "Content lookups the local cache could not answer.");
	mbuf_printf(&m, "vsync_cache_misses_total %" PRIu64 "\n",
		    (uint64_t)GET(reg.cache_misses));
	put_header(&m, "vsync_cache_bytes", "gauge",
		   "Bytes allocated by the content objects of the cache dir "
		   "(objects/), as the evictor last measured or estimated "
		   "them; bounded by --cache-max.");
	mbuf_printf(&m, "vsync_cache_bytes %" PRIu64 "\n",
		    (uint64_t)GET(reg.cache_bytes));
	put_header(&m, "vsync_cache_memory_bytes", "gauge",
		   "Bytes of content kept in memory instead of the cache dir "
		   "(small content pushed changes carry, and what a full "
		   "volume could not store); bounded by --cache-mem-max.");
	mbuf_printf(&m, "vsync_cache_memory_bytes %" PRIu64 "\n",
		    vs_cache_mem_bytes());
	put_header(&m, "vsync_cache_evictions_total", "counter",
		   "Content objects removed from the cache to stay under "
		   "--cache-max (least recently used first).");
	mbuf_printf(&m, "vsync_cache_evictions_total %" PRIu64 "\n",
		    (uint64_t)GET(reg.cache_evictions));

	put_header(&m, "vsync_backend_errors_total", "counter",
		   "Failed backend calls (timeout, unreachable, error reply), "
		   "by backend.");
	for (int b = 0; b < VS_BACKEND_COUNT; b++)
		mbuf_printf(
		    &m,
		    "vsync_backend_errors_total{backend=\"%s\"} %" PRIu64 "\n",
		    backend_names[b], (uint64_t)GET(reg.backend_errors[b]));

	put_header(&m, "vsync_redis_unverified_total", "counter",
		   "Stream entries and manifest snapshots read from Redis "
		   "without a valid relay signature (ignored; read from "
		   "PostgreSQL instead).");
	mbuf_printf(&m, "vsync_redis_unverified_total %" PRIu64 "\n",
		    (uint64_t)GET(reg.redis_unverified));

	put_header(&m, "vsync_changes_applied_total", "counter",
		   "Remote changes applied to the mounted tree.");
	mbuf_printf(&m, "vsync_changes_applied_total %" PRIu64 "\n",
		    (uint64_t)GET(reg.changes_applied));
	put_header(&m, "vsync_applied_seq", "gauge",
		   "Change sequence number of the last change applied.");
	mbuf_printf(&m, "vsync_applied_seq %" PRId64 "\n",
		    (int64_t)GET(reg.applied_seq));
	put_header(&m, "vsync_prefetch_pending", "gauge",
		   "Files still queued for background prefetch.");
	mbuf_printf(&m, "vsync_prefetch_pending %" PRId64 "\n",
		    (int64_t)GET(reg.prefetch_pending));

	put_header(&m, "vsync_writeback_total", "counter",
		   "Journal entries of local changes finished, by outcome.");
	for (int o = 0; o < VS_WB_OUTCOME_COUNT; o++)
		mbuf_printf(
		    &m, "vsync_writeback_total{outcome=\"%s\"} %" PRIu64 "\n",
		    outcome_names[o], (uint64_t)GET(reg.writeback[o]));
	put_header(&m, "vsync_journal_pending", "gauge",
		   "Local changes journaled and not yet committed.");
	mbuf_printf(&m, "vsync_journal_pending %" PRId64 "\n",
		    (int64_t)GET(reg.journal_pending));

	render_sync(&m);

	if (m.err) {
		free(m.p);
		return m.err;
	}
	*out = m.p;
	*len = m.len;
	return 0;
}
