/*
 * test_status.c - unit tests of sync/status.c (include/vsync/status.h) and
 * the JSON helpers it uses (sync/json.c).
 *
 * Covers:
 *  - vs_status_state / vs_status_in_sync: in sync only with the head known,
 *    applied = head, nothing pending, nothing diverged; the order of the
 *    states (diverged > behind > saving > unknown);
 *  - vs_status_lag_ms: 0 when not behind; now - commit of applied+1 when
 *    known; since being behind was seen (estimated) otherwise;
 *  - the registry: applied with a commit time records the last lag; the
 *    head recorded and raised by an applied change; a refused save marks
 *    the path, a later commit clears it; a refused delete with ENOENT or
 *    EINVAL does not; a conflict mark survives a remote change of its path,
 *    a refused one does not (nor under a deleted directory);
 *  - vs_status_json then vs_status_line: the one line for each state;
 *    non-UTF-8 paths come out as valid JSON ('?');
 *  - vs_beat_format / vs_beat_parse round trip; hostile members refused:
 *    not JSON, too long, a missing or mistyped field, a control character,
 *    an unknown state, a negative seq, duplicate keys.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/clock.h"
#include "vsync/json.h"
#include "vsync/metrics.h"
#include "vsync/status.h"

#include "unit_check.h"

static int reset_setup(void **state)
{
	(void)state;
	vs_status_reset();
	vs_metrics_reset();
	return 0;
}

static struct vs_status_snap snap_of(int64_t applied, int64_t head,
				     size_t pending, size_t refused)
{
	struct vs_status_snap s;

	memset(&s, 0, sizeof(s));
	s.now_ms = 100000;
	s.applied_seq = applied;
	s.head_seq = head;
	s.pending = pending;
	s.div_count[VS_DIV_UNSAVED] = pending;
	s.div_count[VS_DIV_REFUSED] = refused;
	s.ndiverged = pending + refused;
	return s;
}

static void test_state(void **state)
{
	struct vs_status_snap s;

	(void)state;
	s = snap_of(5, 5, 0, 0);
	check_int(VS_STATE_IN_SYNC, vs_status_state(&s), "5 of 5");
	check_bool(true, vs_status_in_sync(&s), "in sync at 5 of 5");
	s = snap_of(5, -1, 0, 0);
	check_int(VS_STATE_UNKNOWN, vs_status_state(&s), "head unknown");
	check_bool(false, vs_status_in_sync(&s), "in sync, head unknown");
	s = snap_of(4, 5, 0, 0);
	check_int(VS_STATE_BEHIND, vs_status_state(&s), "4 of 5");
	check_bool(false, vs_status_in_sync(&s), "in sync at 4 of 5");
	s = snap_of(5, 5, 1, 0);
	check_int(VS_STATE_SAVING, vs_status_state(&s), "a save pending");
	check_bool(false, vs_status_in_sync(&s), "in sync with a save pending");
	s = snap_of(4, 5, 1, 1);
	check_int(VS_STATE_DIVERGED, vs_status_state(&s),
		  "behind, pending and refused");
	s = snap_of(5, 5, 0, 0);
	s.untracked = 1;
	s.ndiverged = 1;
	check_int(VS_STATE_DIVERGED, vs_status_state(&s), "an untracked mark");
	check_bool(false, vs_status_in_sync(&s), "in sync, untracked mark");
	check_str("in_sync", vs_sync_state_name(VS_STATE_IN_SYNC), "name");
	check_int(VS_STATE_BEHIND, vs_sync_state_parse("behind"), "parse");
	check_int(-1, vs_sync_state_parse("fine"), "parse of an unknown");
}

static void test_lag(void **state)
{
	struct vs_status_snap s = snap_of(5, 5, 0, 0);
	bool est = true;

	(void)state;
	check_int(0, vs_status_lag_ms(&s, &est), "lag in sync");
	check_bool(false, est, "estimated in sync");
	s = snap_of(4, 6, 0, 0);
	s.next_commit_ms = 99000;
	s.behind_since_ms = 99900;
	check_int(1000, vs_status_lag_ms(&s, &est), "lag from the commit");
	check_bool(false, est, "estimated with a commit time");
	s.next_commit_ms = 0;
	check_int(100, vs_status_lag_ms(&s, &est), "lag since seen behind");
	check_bool(true, est, "estimated without a commit time");
	s.next_commit_ms = 200000; /* a server clock ahead of ours */
	check_int(0, vs_status_lag_ms(&s, &est), "lag clamped at 0");
}

static void snapshot(struct vs_status_snap *s)
{
	check_ret(0, vs_status_snapshot(s, NULL, true), "vs_status_snapshot");
}

static void test_registry(void **state)
{
	struct vs_status_snap s;

	(void)state;
	vs_status_set_applied(3);
	snapshot(&s);
	check_int(VS_STATE_UNKNOWN, s.state, "no head read yet");
	check_int(-1, s.last_lag_ms, "no change applied yet");
	vs_status_snap_release(&s);

	vs_status_head(5, "postgres", 4, vs_wall_ms() - 50, vs_wall_ms());
	snapshot(&s);
	check_int(VS_STATE_BEHIND, s.state, "head 5, applied 3");
	check_bool(false, s.lag_estimated, "lag from the commit time");
	if (s.lag_ms < 50)
		fail_msg("lag: expected >= 50 ms, saw %lld",
			 (long long)s.lag_ms);
	vs_status_snap_release(&s);

	vs_status_applied(4, vs_wall_ms() - 20, vs_wall_ms());
	vs_status_applied(5, vs_wall_ms() - 10, vs_wall_ms());
	snapshot(&s);
	check_int(VS_STATE_IN_SYNC, s.state, "applied the head");
	check_bool(true, vs_status_in_sync(&s), "in sync");
	if (s.last_lag_ms < 10 || s.last_lag_ms > 5000)
		fail_msg("last lag: expected about 10 ms, saw %lld",
			 (long long)s.last_lag_ms);
	check_int(2, s.changes_applied, "changes applied");
	vs_status_snap_release(&s);
	vs_status_applied(6, 0, vs_wall_ms());
	snapshot(&s);
	check_int(6, s.head_seq, "head raised by an applied change");
	check_int(VS_STATE_IN_SYNC, s.state, "in sync at 6");
	vs_status_snap_release(&s);

	/* a refused save, then committed */
	vs_status_saved("src/a.js", NULL, -EINVAL, false);
	snapshot(&s);
	check_int(VS_STATE_DIVERGED, s.state, "a refused save");
	check_int(1, s.ndiverged, "diverged");
	check_int(1, s.ndiv, "listed");
	check_str("src/a.js", s.div[0].path, "path");
	check_int(VS_DIV_REFUSED, s.div[0].reason, "reason");
	check_int(-EINVAL, s.div[0].error, "error");
	vs_status_snap_release(&s);
	vs_status_saved("src/a.js", NULL, 0, false);
	snapshot(&s);
	check_int(0, s.ndiverged, "diverged after the commit");
	vs_status_snap_release(&s);

	/* deletes PostgreSQL has nothing for are no divergence */
	vs_status_saved("gone.js", NULL, -ENOENT, true);
	vs_status_saved("bad.js", NULL, -EINVAL, true);
	snapshot(&s);
	check_int(0, s.ndiverged, "diverged after refused deletes");
	vs_status_snap_release(&s);
	vs_status_saved("dir", NULL, -ENOTEMPTY, true);
	snapshot(&s);
	check_int(1, s.ndiverged, "a delete refused with ENOTEMPTY");
	vs_status_snap_release(&s);

	/* a remote change clears refused marks under it, not conflicts */
	vs_status_saved("dir/x.js", NULL, -EINVAL, false);
	vs_status_conflict("dir/y.js");
	vs_status_saved("dirx/z.js", NULL, -EINVAL, false);
	vs_status_remote("dir", NULL);
	snapshot(&s);
	check_int(2, s.ndiverged, "left after a remote delete of dir");
	check_int(1, s.div_count[VS_DIV_CONFLICT], "the conflict stays");
	check_int(1, s.div_count[VS_DIV_REFUSED], "dirx/z.js stays");
	vs_status_snap_release(&s);
	vs_status_saved("dir/y.js", NULL, 0, false);
	vs_status_remote("a", "dirx/z.js"); /* a rename away from it */
	snapshot(&s);
	check_int(0, s.ndiverged, "nothing left");
	check_int(VS_STATE_IN_SYNC, s.state, "in sync again");
	vs_status_snap_release(&s);

	/* a delete overtaken by a change there (ESTALE) is shown until the
	 * updater applies a change at the path or under it */
	vs_status_saved("od", NULL, -ESTALE, true);
	vs_status_saved("of.js", NULL, -ESTALE, true);
	vs_status_remote("odx/y.js", NULL);
	snapshot(&s);
	check_int(2, s.ndiverged, "overtaken deletes");
	vs_status_snap_release(&s);
	vs_status_remote("od/new.js", NULL);
	vs_status_remote("of.js", NULL);
	snapshot(&s);
	check_int(0, s.ndiverged, "their changes applied");
	vs_status_snap_release(&s);

	/* moved aside by the updater (update.c, keep_aside): the marks of
	 * the path and under it go with it, the saves there clear them */
	vs_status_conflict("k");
	vs_status_conflict("k/a/x.js");
	vs_status_conflict("kx.js");
	vs_status_saved("k.c/old.js", NULL, -EINVAL, false);
	vs_status_moved("k", "k.c");
	snapshot(&s);
	check_int(3, s.ndiverged, "moved, and what was at k.c dropped");
	vs_status_snap_release(&s);
	vs_status_saved("k.c", NULL, 0, false);
	vs_status_saved("k.c/a/x.js", NULL, 0, false);
	snapshot(&s);
	check_int(1, s.ndiverged, "the saves at the new paths clear them");
	check_str("kx.js", s.div[0].path, "a sibling's mark stays");
	vs_status_snap_release(&s);
	vs_status_saved("kx.js", NULL, 0, false);
}

/* The dirty walk of test_dirty: "f<i>.js" for i < DIRTY_N, every fifth
 * one's last write failed. */
#define DIRTY_N 3000
static int dirty_walk(void *arg, vs_status_dirty_cb cb, void *ctx)
{
	char path[32];

	(void)arg;
	for (int i = 0; i < DIRTY_N; i++) {
		snprintf(path, sizeof(path), "f%d.js", i);
		cb(ctx, path, i % 5 == 0);
	}
	return 0;
}

/* Each file counts once, with its most telling reason: a mark's over the
 * dirty walk's, among thousands of each. */
static void test_dirty(void **state)
{
	struct vs_status_snap s;
	char path[32];
	size_t marked = 0, failed = 0;

	(void)state;
	vs_status_head(1, "postgres", 0, 0, vs_wall_ms());
	vs_status_set_applied(1);
	for (int i = 0; i < DIRTY_N; i += 3) { /* every third: a conflict */
		snprintf(path, sizeof(path), "f%d.js", i);
		vs_status_conflict(path);
		marked++;
	}
	vs_status_conflict("elsewhere.js"); /* a mark the walk does not see */
	for (int i = 0; i < DIRTY_N; i++)
		failed += i % 3 != 0 && i % 5 == 0;
	vs_status_set_dirty_walk(dirty_walk, NULL);
	snapshot(&s);
	check_int(DIRTY_N + 1, s.ndiverged, "every file once");
	check_int(marked + 1, s.div_count[VS_DIV_CONFLICT], "conflicts");
	check_int(failed, s.div_count[VS_DIV_FAILED],
		  "failed writes with no mark");
	check_int(DIRTY_N - marked - failed, s.div_count[VS_DIV_UNSAVED],
		  "unsaved, with no mark");
	check_int(VS_STATE_DIVERGED, s.state, "diverged");
	vs_status_snap_release(&s);
	vs_status_set_dirty_walk(NULL, NULL);
}

static void line_of(const struct vs_status_snap *s, const char *want)
{
	char *json = NULL, line[512];
	size_t len = 0;

	check_ret(0, vs_status_json(s, "p", "id", "/mnt", &json, &len),
		  "vs_status_json");
	check_int(strlen(json), len, "length");
	check_ret(0, vs_status_line(json, len, line, sizeof(line)),
		  "vs_status_line(%s)", json);
	check_str(want, line, "line of %s", json);
	free(json);
}

static void test_json_line(void **state)
{
	struct vs_status_snap s = snap_of(7, 7, 0, 0);
	char line[64];

	(void)state;
	s.following = 1;
	s.state = vs_status_state(&s);
	line_of(&s, "in sync at change 7");
	s = snap_of(5, 7, 0, 0);
	s.following = 1;
	s.lag_ms = 1500;
	s.state = vs_status_state(&s);
	line_of(&s, "behind: change 5 of 7, lag 1.5 s");
	s = snap_of(7, 7, 2, 1);
	s.following = 0;
	s.oldest_save_ms = 3000;
	s.state = vs_status_state(&s);
	line_of(&s, "diverged: at change 7 (head); 2 saves pending (oldest "
		    "3.0 s); 3 files diverged (2 unsaved, 1 refused); not "
		    "following changes");
	s = snap_of(7, -1, 0, 0);
	s.following = 1;
	s.state = vs_status_state(&s);
	line_of(&s, "unknown: at change 7, head unknown");
	s.following = -1; /* connecting, or --no-follow: nothing said */
	line_of(&s, "unknown: at change 7, head unknown");

	check_ret(-EBADMSG, vs_status_line("[1]", 3, line, sizeof(line)),
		  "line of an array");
	check_ret(-EBADMSG,
		  vs_status_line("{\"state\":\"fine\",\"applied_seq\":1}", 32,
				 line, sizeof(line)),
		  "line of an unknown state");
}

static void test_json_text(void **state)
{
	json_t *v;

	(void)state;
	v = vs_json_text("a\xff\xfe"
			 "b\xc3\xa9",
			 6);
	assert_non_null(v);
	check_str("a??b\xc3\xa9", json_string_value(v), "invalid bytes");
	json_decref(v);
	v = vs_json_text("\xe2\x82", 2); /* a cut sequence */
	check_str("??", json_string_value(v), "a cut sequence");
	json_decref(v);
	v = vs_json_str(NULL);
	check_bool(true, json_is_null(v), "NULL is null");
	json_decref(v);
}

static void test_beat(void **state)
{
	struct vs_beat b = {.pid = 42,
			    .seq = 10,
			    .head = 12,
			    .state = VS_STATE_BEHIND,
			    .pending = 1,
			    .diverged = 2,
			    .lag_ms = 300};
	struct vs_beat got;
	char member[VS_BEAT_MAX + 1], big[VS_BEAT_MAX + 64];
	static const char *const bad[] = {
	    "not json",
	    "[]",
	    "{}",
	    "{\"v\":2,\"host\":\"h\",\"pid\":1,\"mount\":\"/m\",\"seq\":1,"
	    "\"head\":1,\"state\":\"in_sync\",\"pending\":0,\"diverged\":0,"
	    "\"lag_ms\":0}",
	    "{\"v\":1,\"host\":\"h\\u0007\",\"pid\":1,\"mount\":\"/m\","
	    "\"seq\":1,\"head\":1,\"state\":\"in_sync\",\"pending\":0,"
	    "\"diverged\":0,\"lag_ms\":0}",
	    "{\"v\":1,\"host\":\"h\",\"pid\":1,\"mount\":\"/m\",\"seq\":-1,"
	    "\"head\":1,\"state\":\"in_sync\",\"pending\":0,\"diverged\":0,"
	    "\"lag_ms\":0}",
	    "{\"v\":1,\"host\":\"h\",\"pid\":1,\"mount\":\"/m\",\"seq\":1,"
	    "\"head\":1,\"state\":\"great\",\"pending\":0,\"diverged\":0,"
	    "\"lag_ms\":0}",
	    "{\"v\":1,\"host\":\"h\",\"pid\":\"1\",\"mount\":\"/m\",\"seq\":1,"
	    "\"head\":1,\"state\":\"in_sync\",\"pending\":0,\"diverged\":0,"
	    "\"lag_ms\":0}",
	    "{\"v\":1,\"host\":\"h\",\"host\":\"i\",\"pid\":1,\"mount\":\"/m\","
	    "\"seq\":1,\"head\":1,\"state\":\"in_sync\",\"pending\":0,"
	    "\"diverged\":0,\"lag_ms\":0}",
	};

	(void)state;
	strcpy(b.host, "box");
	strcpy(b.mount, "/project");
	check_ret(0, vs_beat_format(&b, member, sizeof(member)),
		  "vs_beat_format");
	check_ret(0, vs_beat_parse(&got, member, strlen(member)),
		  "vs_beat_parse(%s)", member);
	check_str("box", got.host, "host");
	check_str("/project", got.mount, "mount");
	check_int(42, got.pid, "pid");
	check_int(10, got.seq, "seq");
	check_int(12, got.head, "head");
	check_int(VS_STATE_BEHIND, got.state, "state");
	check_int(1, got.pending, "pending");
	check_int(2, got.diverged, "diverged");
	check_int(300, got.lag_ms, "lag");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_ret(-EBADMSG, vs_beat_parse(&got, bad[i], strlen(bad[i])),
			  "vs_beat_parse(%s)", bad[i]);
	memset(big, ' ', sizeof(big));
	memcpy(big, member, strlen(member));
	check_ret(-EBADMSG, vs_beat_parse(&got, big, sizeof(big)),
		  "a member over VS_BEAT_MAX");
	check_ret(-ENOBUFS, vs_beat_format(&b, member, 8), "a small buffer");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state),
	    cmocka_unit_test(test_lag),
	    cmocka_unit_test_setup(test_registry, reset_setup),
	    cmocka_unit_test_setup(test_dirty, reset_setup),
	    cmocka_unit_test(test_json_line),
	    cmocka_unit_test(test_json_text),
	    cmocka_unit_test(test_beat),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
