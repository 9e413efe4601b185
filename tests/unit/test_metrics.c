/*
 * test_metrics.c - unit tests of sync/metrics.c (include/vsync/metrics.h).
 *
 * Covers:
 *  - a fresh registry renders every metric family with # HELP and # TYPE
 *    (gauge/counter/histogram as documented), every sample 0, ready 0
 *    and the time to ready NaN; *len equals strlen(*out);
 *  - the exposition is well formed: every sample line is NAME{LABELS}
 *    VALUE of the family the preceding # TYPE declared, the output ends
 *    in a newline;
 *  - vs_metrics_fetch: files, bytes, _sum and _count per source, sources
 *    kept apart; bucket edges (a duration equal to a bound is in that
 *    bucket, one microsecond more is in the next, above 10 s only in
 *    +Inf); buckets cumulative and +Inf equal to _count;
 *  - cache hits/misses, backend errors by backend, changes applied with
 *    the last seq, prefetch pending (set, not added), write-back outcomes
 *    by label (an unknown outcome ignored), journal pending (set);
 *  - vs_metrics_ready: is_ready, the first call's time wins, rendered in
 *    seconds with milliseconds;
 *  - vs_metrics_reset zeroes everything, ready included;
 *  - 4 threads recording at once lose no count (atomics).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/metrics.h"

#include "unit_check.h"

/* ------------------------------------------------------------ helpers */

static char *render_or_fail(void)
{
	char *out = NULL;
	size_t len = 12345;

	check_ret(0, vs_metrics_render(&out, &len), "vs_metrics_render");
	assert_non_null(out);
	check_int(strlen(out), len, "vs_metrics_render: *len vs strlen(*out)");
	return out;
}

/* The value text of the sample line "KEY VALUE" (KEY is the metric name
 * with its labels), copied into @val; fails the test if absent. */
static const char *sample(const char *text, const char *key, char *val,
			  size_t size)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t llen = eol ? (size_t)(eol - line) : strlen(line);

		if (llen > klen && !strncmp(line, key, klen) &&
		    line[klen] == ' ') {
			size_t vlen = llen - klen - 1;

			if (vlen >= size)
				vlen = size - 1;
			memcpy(val, line + klen + 1, vlen);
			val[vlen] = '\0';
			return val;
		}
		line = eol ? eol + 1 : NULL;
	}
	fail_msg("no sample line \"%s ...\" in the rendering:\n%s", key, text);
	return NULL;
}

static void check_sample(const char *text, const char *key, const char *want)
{
	char val[64];

	check_str(want, sample(text, key, val, sizeof(val)), "sample %s", key);
}

static const char *const sources[] = {"local", "redis", "postgres"};
static const char *const les[] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
    "0.01",   "0.025",	 "0.05",   "0.1",   "0.25",   "0.5",
    "1",      "2.5",	 "5",	   "10",    "+Inf",
};
#define N_LES (sizeof(les) / sizeof(les[0]))

static void check_bucket(const char *text, const char *src, const char *le,
			 unsigned long long want)
{
	char key[160], w[32];

	snprintf(key, sizeof(key),
		 "vsync_fetch_duration_seconds_bucket{source=\"%s\",le=\"%s\"}",
		 src, le);
	snprintf(w, sizeof(w), "%llu", want);
	check_sample(text, key, w);
}

static void check_labelled(const char *text, const char *name,
			   const char *label, const char *lval,
			   const char *want)
{
	char key[160];

	snprintf(key, sizeof(key), "%s{%s=\"%s\"}", name, label, lval);
	check_sample(text, key, want);
}

/* ------------------------------------------------------------ fixtures */

static int reset_setup(void **state)
{
	(void)state;
	vs_metrics_reset();
	return 0;
}

/* ------------------------------------------------------------ tests */

static const struct {
	const char *name, *type;
} families[] = {
    {"vsync_ready", "gauge"},
    {"vsync_time_to_ready_seconds", "gauge"},
    {"vsync_fetch_files_total", "counter"},
    {"vsync_fetch_bytes_total", "counter"},
    {"vsync_fetch_duration_seconds", "histogram"},
    {"vsync_cache_hits_total", "counter"},
    {"vsync_cache_misses_total", "counter"},
    {"vsync_backend_errors_total", "counter"},
    {"vsync_changes_applied_total", "counter"},
    {"vsync_applied_seq", "gauge"},
    {"vsync_prefetch_pending", "gauge"},
    {"vsync_writeback_total", "counter"},
    {"vsync_journal_pending", "gauge"},
};
#define N_FAMILIES (sizeof(families) / sizeof(families[0]))

static void test_fresh_registry(void **state)
{
	char *out = render_or_fail();

	(void)state;
	for (size_t i = 0; i < N_FAMILIES; i++) {
		char want[128];

		snprintf(want, sizeof(want), "\n# HELP %s ", families[i].name);
		if (!strstr(out, want) &&
		    strncmp(out, want + 1, strlen(want) - 1))
			fail_msg("no \"# HELP %s\" line in:\n%s",
				 families[i].name, out);
		snprintf(want, sizeof(want), "# TYPE %s %s\n", families[i].name,
			 families[i].type);
		if (!strstr(out, want))
			fail_msg("no \"# TYPE %s %s\" line in:\n%s",
				 families[i].name, families[i].type, out);
	}
	check_sample(out, "vsync_ready", "0");
	check_sample(out, "vsync_time_to_ready_seconds", "NaN");
	for (size_t s = 0; s < 3; s++) {
		check_labelled(out, "vsync_fetch_files_total", "source",
			       sources[s], "0");
		check_labelled(out, "vsync_fetch_bytes_total", "source",
			       sources[s], "0");
		for (size_t b = 0; b < N_LES; b++)
			check_bucket(out, sources[s], les[b], 0);
		check_labelled(out, "vsync_fetch_duration_seconds_sum",
			       "source", sources[s], "0.000000");
		check_labelled(out, "vsync_fetch_duration_seconds_count",
			       "source", sources[s], "0");
	}
	check_sample(out, "vsync_cache_hits_total", "0");
	check_sample(out, "vsync_cache_misses_total", "0");
	check_labelled(out, "vsync_backend_errors_total", "backend", "redis",
		       "0");
	check_labelled(out, "vsync_backend_errors_total", "backend", "postgres",
		       "0");
	check_sample(out, "vsync_changes_applied_total", "0");
	check_sample(out, "vsync_applied_seq", "0");
	check_sample(out, "vsync_prefetch_pending", "0");
	free(out);
}

/* Every line is a comment or "NAME[{...}] VALUE" where NAME is the family
 * of the last # TYPE line (plus _bucket/_sum/_count for a histogram). */
static void test_well_formed(void **state)
{
	char family[128] = "", type[32] = "";
	char *out, *line, *save = NULL;
	size_t len;

	(void)state;
	vs_metrics_fetch(VS_SRC_PG, 1, 1);
	vs_metrics_ready(5);
	out = render_or_fail();
	len = strlen(out);
	check_bool(true, len > 0 && out[len - 1] == '\n',
		   "rendering ends in a newline");
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t n = strcspn(line, "{ ");
		const char *rest = line + n;
		const char *suffix;

		if (!strncmp(line, "# HELP ", 7))
			continue;
		if (sscanf(line, "# TYPE %127s %31s", family, type) == 2)
			continue;
		if (line[0] == '#')
			fail_msg("unexpected comment line \"%s\"", line);
		if (strncmp(line, family, strlen(family)))
			fail_msg("sample \"%s\" after # TYPE %s", line, family);
		suffix = line + strlen(family);
		if ((size_t)(suffix - line) != n &&
		    !(!strcmp(type, "histogram") &&
		      (!strncmp(suffix, "_bucket", 7) ||
		       !strncmp(suffix, "_sum", 4) ||
		       !strncmp(suffix, "_count", 6))))
			fail_msg("sample \"%s\" is not of family %s (%s)", line,
				 family, type);
		if (*rest == '{') {
			rest = strchr(rest, '}');
			if (!rest)
				fail_msg("unterminated labels in \"%s\"", line);
			rest++;
		}
		if (rest[0] != ' ' || rest[1] == '\0' || strchr(rest + 1, ' '))
			fail_msg("sample \"%s\": want one space then a value",
				 line);
	}
	free(out);
}

static void test_fetch_buckets(void **state)
{
	char *out;

	(void)state;
	vs_metrics_fetch(VS_SRC_REDIS, 10, 100);      /* le 0.0001, the edge */
	vs_metrics_fetch(VS_SRC_REDIS, 20, 101);      /* le 0.00025 */
	vs_metrics_fetch(VS_SRC_REDIS, 30, 0);	      /* le 0.0001 */
	vs_metrics_fetch(VS_SRC_REDIS, 40, 1000000);  /* le 1 */
	vs_metrics_fetch(VS_SRC_REDIS, 50, 10000000); /* le 10 */
	vs_metrics_fetch(VS_SRC_REDIS, 60, 10000001); /* +Inf only */
	vs_metrics_fetch(VS_SRC_PG, 7, 2600);	      /* le 0.005 */
	out = render_or_fail();

	check_labelled(out, "vsync_fetch_files_total", "source", "redis", "6");
	check_labelled(out, "vsync_fetch_bytes_total", "source", "redis",
		       "210");
	check_labelled(out, "vsync_fetch_files_total", "source", "postgres",
		       "1");
	check_labelled(out, "vsync_fetch_bytes_total", "source", "postgres",
		       "7");
	check_labelled(out, "vsync_fetch_files_total", "source", "local", "0");

	/* redis: cumulative counts at each bound */
	{
		static const unsigned long long want[N_LES] = {
		    2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 5, 6};

		for (size_t b = 0; b < N_LES; b++)
			check_bucket(out, "redis", les[b], want[b]);
	}
	check_labelled(out, "vsync_fetch_duration_seconds_count", "source",
		       "redis", "6");
	/* 100 + 101 + 0 + 1e6 + 1e7 + 1e7+1 us */
	check_labelled(out, "vsync_fetch_duration_seconds_sum", "source",
		       "redis", "21.000202");

	/* postgres: 2.6 ms from le 0.005 on */
	for (size_t b = 0; b < N_LES; b++)
		check_bucket(out, "postgres", les[b], b >= 5 ? 1 : 0);
	check_labelled(out, "vsync_fetch_duration_seconds_sum", "source",
		       "postgres", "0.002600");
	check_labelled(out, "vsync_fetch_duration_seconds_count", "source",
		       "postgres", "1");
	for (size_t b = 0; b < N_LES; b++)
		check_bucket(out, "local", les[b], 0);
	free(out);
}

static void test_counters_and_gauges(void **state)
{
	char *out;

	(void)state;
	vs_metrics_cache(1);
	vs_metrics_cache(1);
	vs_metrics_cache(0);
	vs_metrics_backend_error(VS_BACKEND_PG);
	vs_metrics_backend_error(VS_BACKEND_REDIS);
	vs_metrics_backend_error(VS_BACKEND_REDIS);
	vs_metrics_backend_error(VS_BACKEND_REDIS);
	vs_metrics_change_applied(41);
	vs_metrics_change_applied(42);
	vs_metrics_prefetch_pending(900);
	vs_metrics_prefetch_pending(12); /* a gauge: set, not added */
	vs_metrics_writeback(VS_WB_COMMITTED);
	vs_metrics_writeback(VS_WB_COMMITTED);
	vs_metrics_writeback(VS_WB_CONFLICT);
	vs_metrics_writeback(VS_WB_COALESCED);
	vs_metrics_writeback(VS_WB_REVERTED);
	vs_metrics_writeback(VS_WB_OUTCOME_COUNT); /* ignored */
	vs_metrics_journal_pending(7);
	vs_metrics_journal_pending(3);
	out = render_or_fail();
	check_sample(out, "vsync_cache_hits_total", "2");
	check_sample(out, "vsync_cache_misses_total", "1");
	check_labelled(out, "vsync_backend_errors_total", "backend", "redis",
		       "3");
	check_labelled(out, "vsync_backend_errors_total", "backend", "postgres",
		       "1");
	check_sample(out, "vsync_changes_applied_total", "2");
	check_sample(out, "vsync_applied_seq", "42");
	check_sample(out, "vsync_prefetch_pending", "12");
	check_labelled(out, "vsync_writeback_total", "outcome", "committed",
		       "2");
	check_labelled(out, "vsync_writeback_total", "outcome", "conflict",
		       "1");
	check_labelled(out, "vsync_writeback_total", "outcome", "coalesced",
		       "1");
	check_labelled(out, "vsync_writeback_total", "outcome", "merged", "0");
	check_labelled(out, "vsync_writeback_total", "outcome", "refused", "0");
	check_labelled(out, "vsync_writeback_total", "outcome", "reverted",
		       "1");
	check_sample(out, "vsync_journal_pending", "3");
	free(out);
}

static void test_ready(void **state)
{
	char *out;

	(void)state;
	check_bool(false, vs_metrics_is_ready(), "ready after reset");
	vs_metrics_ready(1234);
	check_bool(true, vs_metrics_is_ready(), "ready after vs_metrics_ready");
	vs_metrics_ready(99999); /* later calls do not move the time */
	out = render_or_fail();
	check_sample(out, "vsync_ready", "1");
	check_sample(out, "vsync_time_to_ready_seconds", "1.234");
	free(out);

	vs_metrics_reset();
	vs_metrics_ready(7);
	out = render_or_fail();
	check_sample(out, "vsync_time_to_ready_seconds", "0.007");
	free(out);
}

static void test_reset(void **state)
{
	char *out;

	(void)state;
	vs_metrics_fetch(VS_SRC_LOCAL, 100, 5);
	vs_metrics_cache(1);
	vs_metrics_cache(0);
	vs_metrics_backend_error(VS_BACKEND_PG);
	vs_metrics_change_applied(9);
	vs_metrics_prefetch_pending(3);
	vs_metrics_ready(10);
	vs_metrics_reset();
	check_bool(false, vs_metrics_is_ready(), "ready after reset");
	out = render_or_fail();
	check_sample(out, "vsync_ready", "0");
	check_sample(out, "vsync_time_to_ready_seconds", "NaN");
	check_labelled(out, "vsync_fetch_files_total", "source", "local", "0");
	check_labelled(out, "vsync_fetch_bytes_total", "source", "local", "0");
	check_bucket(out, "local", "+Inf", 0);
	check_labelled(out, "vsync_fetch_duration_seconds_sum", "source",
		       "local", "0.000000");
	check_sample(out, "vsync_cache_hits_total", "0");
	check_sample(out, "vsync_cache_misses_total", "0");
	check_labelled(out, "vsync_backend_errors_total", "backend", "postgres",
		       "0");
	check_sample(out, "vsync_changes_applied_total", "0");
	check_sample(out, "vsync_applied_seq", "0");
	check_sample(out, "vsync_prefetch_pending", "0");
	free(out);
	/* ready can be set again after a reset */
	vs_metrics_ready(20);
	out = render_or_fail();
	check_sample(out, "vsync_time_to_ready_seconds", "0.020");
	free(out);
}

#define THREADS	   4
#define PER_THREAD 100000

static void *record_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		vs_metrics_fetch(VS_SRC_LOCAL, 3, (uint64_t)(i % 3) * 200);
		vs_metrics_cache(i & 1);
	}
	return NULL;
}

static void test_concurrent_recording(void **state)
{
	pthread_t t[THREADS];
	char want[32], *out;

	(void)state;
	for (int i = 0; i < THREADS; i++)
		check_int(0, pthread_create(&t[i], NULL, record_many, NULL),
			  "pthread_create %d", i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	out = render_or_fail();
	snprintf(want, sizeof(want), "%d", THREADS * PER_THREAD);
	check_labelled(out, "vsync_fetch_files_total", "source", "local", want);
	check_bucket(out, "local", "+Inf", THREADS * PER_THREAD);
	check_labelled(out, "vsync_fetch_duration_seconds_count", "source",
		       "local", want);
	snprintf(want, sizeof(want), "%d", 3 * THREADS * PER_THREAD);
	check_labelled(out, "vsync_fetch_bytes_total", "source", "local", want);
	snprintf(want, sizeof(want), "%d", THREADS * PER_THREAD / 2);
	check_sample(out, "vsync_cache_hits_total", want);
	check_sample(out, "vsync_cache_misses_total", want);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_fresh_registry, reset_setup),
	    cmocka_unit_test_setup(test_well_formed, reset_setup),
	    cmocka_unit_test_setup(test_fetch_buckets, reset_setup),
	    cmocka_unit_test_setup(test_counters_and_gauges, reset_setup),
	    cmocka_unit_test_setup(test_ready, reset_setup),
	    cmocka_unit_test_setup(test_reset, reset_setup),
	    cmocka_unit_test_setup(test_concurrent_recording, reset_setup),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
