/*
 * status.c - the sync state of a mount (include/vsync/status.h).
 *
 * DESIGN
 *
 * One process-wide registry under one mutex (`st.lock`, a leaf: nothing
 * else is locked while it is held, and no I/O happens under it). Writers:
 * the change follower (vs_status_applied, vs_status_following), the FUSE
 * updater (vs_status_conflict, vs_status_remote), the write-back
 * (vs_status_saved), the threads that read the head (the keeper, the
 * control endpoint: vs_status_head). Readers take a copy with
 * vs_status_snapshot(), which adds what the journal holds (it has its own
 * lock, taken after st.lock is released).
 *
 * Divergence marks: at most one per path, a small array (refused saves
 * and conflicts are rare; unsaved edits are not marked here, they are
 * read from the journal on each snapshot, so they can never be forgotten
 * or left behind).
 *
 * Lag. A change carries mtime_ns, the time of the change in PostgreSQL:
 * clock_timestamp() inside the writer's transaction right after the
 * project lock (sql/functions.sql), i.e. just before its commit. The lag
 * of a change is (applied wall clock - that), clamped at 0: it includes
 * any clock skew between the database server and this machine. While the
 * mount is behind, the current lag is now minus the commit time of the
 * first change not applied, read with the head (from PostgreSQL); without
 * it (Redis only) it is the time since being behind was first seen, a
 * lower bound, flagged "lag_estimated".
 */
#include "vsync/status.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/clock.h"
#include "vsync/events.h"
#include "vsync/journal.h"
#include "vsync/json.h"
#include "vsync/metrics.h"
#include "vsync/banned.h"

static const char *const reason_names[VS_DIV_COUNT] = {
    [VS_DIV_UNSAVED] = "unsaved",
    [VS_DIV_CONFLICT] = "conflict",
    [VS_DIV_REFUSED] = "refused",
    [VS_DIV_FAILED] = "failed",
};

static const char *const state_names[VS_STATE_COUNT] = {
    [VS_STATE_DIVERGED] = "diverged", [VS_STATE_BEHIND] = "behind",
    [VS_STATE_SAVING] = "saving",     [VS_STATE_UNKNOWN] = "unknown",
    [VS_STATE_IN_SYNC] = "in_sync",   [VS_STATE_PINNED] = "pinned",
};

const char *vs_div_reason_name(enum vs_div_reason r)
{
	return (unsigned)r < VS_DIV_COUNT ? reason_names[r] : "?";
}

const char *vs_sync_state_name(enum vs_sync_state s)
{
	return (unsigned)s < VS_STATE_COUNT ? state_names[s] : "?";
}

int vs_sync_state_parse(const char *name)
{
	for (int i = 0; i < VS_STATE_COUNT; i++)
		if (!strcmp(name, state_names[i]))
			return i;
	return -1;
}

/* ------------------------------------------------------------ registry */

struct mark {
	char *path;
	enum vs_div_reason reason;
	int error;
};

static struct {
	pthread_mutex_t lock;
	int64_t applied;
	int64_t head; /* -1: not known */
	const char *head_source;
	int64_t head_read_ms; /* -1: never */
	char head_error[160];
	int64_t next_commit_seq, next_commit_ms;
	int64_t behind_since_ms;
	int64_t last_lag_ms; /* -1: none */
	uint64_t changes;
	struct mark *marks;
	size_t nmarks, cap;
	size_t untracked;
	int following; /* -1 not started or starting, 0 down, 1 up */
	bool pinned;   /* vsync-mount --at: a past change, by choice */
	vs_status_dirty_walk dirty_walk; /* vs_status_set_dirty_walk */
	void *dirty_arg;
} st = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .following = -1,
    .head = -1,
    .head_read_ms = -1,
    .last_lag_ms = -1,
};

/* Is @p @dir or under it? */
static bool path_under(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static void mark_drop(size_t i)
{
	free(st.marks[i].path);
	st.marks[i] = st.marks[--st.nmarks];
}

/* Under st.lock. */
static void mark_set(const char *path, enum vs_div_reason reason, int error)
{
	struct mark *m;

	for (size_t i = 0; i < st.nmarks; i++)
		if (!strcmp(st.marks[i].path, path)) {
			st.marks[i].reason = reason;
			st.marks[i].error = error;
			return;
		}
	if (st.nmarks == st.cap) {
		size_t cap = st.cap ? st.cap * 2 : 16;

		m = realloc(st.marks, cap * sizeof(*m));
		if (!m) {
			st.untracked++;
			return;
		}
		st.marks = m;
		st.cap = cap;
	}
	m = &st.marks[st.nmarks];
	m->path = strdup(path);
	if (!m->path) {
		st.untracked++;
		return;
	}
	m->reason = reason;
	m->error = error;
	st.nmarks++;
}

/* Under st.lock: drop the marks of @path (and under it, if @subtree)
 * except those of reason @keep (VS_DIV_COUNT: keep none). */
static void mark_clear(const char *path, bool subtree, enum vs_div_reason keep)
{
	for (size_t i = 0; i < st.nmarks;) {
		const struct mark *m = &st.marks[i];

		if (m->reason != keep && (subtree ? path_under(m->path, path)
						  : !strcmp(m->path, path)))
			mark_drop(i);
		else
			i++;
	}
}

/* Under st.lock: keep behind_since in step with applied and head. */
static void behind_update(int64_t now_ms)
{
	if (st.head > st.applied) {
		if (!st.behind_since_ms)
			st.behind_since_ms = now_ms;
	} else {
		st.behind_since_ms = 0;
	}
}

void vs_status_applied(int64_t seq, int64_t commit_ms, int64_t now_ms)
{
	int64_t lag = -1;

	if (commit_ms > 0) {
		lag = now_ms > commit_ms ? now_ms - commit_ms : 0;
		vs_metrics_sync_lag((uint64_t)lag * 1000);
	}
	pthread_mutex_lock(&st.lock);
	st.applied = seq;
	st.changes++;
	if (lag >= 0)
		st.last_lag_ms = lag;
	if (st.head >= 0 && st.head < seq)
		st.head = seq; /* the head is at least what was committed */
	behind_update(now_ms);
	pthread_mutex_unlock(&st.lock);
}

void vs_status_set_applied(int64_t seq)
{
	pthread_mutex_lock(&st.lock);
	st.applied = seq;
	pthread_mutex_unlock(&st.lock);
}

void vs_status_head(int64_t seq, const char *source, int64_t next_seq,
		    int64_t next_commit_ms, int64_t now_ms)
{
	pthread_mutex_lock(&st.lock);
	st.head = seq > st.applied ? seq : st.applied;
	st.head_source = source;
	st.head_read_ms = now_ms;
	st.head_error[0] = '\0';
	st.next_commit_seq = next_commit_ms > 0 ? next_seq : 0;
	st.next_commit_ms = next_commit_ms;
	behind_update(now_ms);
	pthread_mutex_unlock(&st.lock);
}

void vs_status_head_failed(const char *why)
{
	pthread_mutex_lock(&st.lock);
	snprintf(st.head_error, sizeof(st.head_error), "%s", why);
	pthread_mutex_unlock(&st.lock);
}

/* Under st.lock: drop the marks of deletes overtaken by a change there
 * (refused with -ESTALE) at directories above @path: a remote change under
 * one is what the mount was to get. */
static void overtaken_clear_above(const char *path)
{
	for (size_t i = 0; i < st.nmarks;) {
		const struct mark *m = &st.marks[i];

		if (m->reason == VS_DIV_REFUSED && m->error == -ESTALE &&
		    strcmp(m->path, path) && path_under(path, m->path))
			mark_drop(i);
		else
			i++;
	}
}

void vs_status_remote(const char *path, const char *old_path)
{
	pthread_mutex_lock(&st.lock);
	mark_clear(path, true, VS_DIV_CONFLICT);
	overtaken_clear_above(path);
	if (old_path && old_path[0])
		mark_clear(old_path, true, VS_DIV_CONFLICT);
	pthread_mutex_unlock(&st.lock);
}

void vs_status_conflict(const char *path)
{
	pthread_mutex_lock(&st.lock);
	mark_set(path, VS_DIV_CONFLICT, 0);
	pthread_mutex_unlock(&st.lock);
}

void vs_status_moved(const char *path, const char *to)
{
	size_t n = strlen(path), len;
	char *p;

	pthread_mutex_lock(&st.lock);
	mark_clear(to, true, VS_DIV_COUNT);
	for (size_t i = 0; i < st.nmarks; i++) {
		struct mark *m = &st.marks[i];

		if (!path_under(m->path, path))
			continue;
		len = strlen(to) + strlen(m->path + n) + 1;
		p = malloc(len);
		if (!p)
			continue; /* left at the old path (still shown) */
		snprintf(p, len, "%s%s", to, m->path + n);
		free(m->path);
		m->path = p;
	}
	pthread_mutex_unlock(&st.lock);
}

void vs_status_saved(const char *path, const char *old_path, int error,
		     bool is_delete)
{
	pthread_mutex_lock(&st.lock);
	mark_clear(path, false, VS_DIV_COUNT);
	if (old_path && old_path[0])
		mark_clear(old_path, false, VS_DIV_COUNT);
	/* a delete PostgreSQL has nothing for (ENOENT), or cannot have (a
	 * path it refuses, EINVAL): both sides agree the path is gone */
	if (error && !(is_delete && (error == -ENOENT || error == -EINVAL)))
		mark_set(path, VS_DIV_REFUSED, error);
	pthread_mutex_unlock(&st.lock);
}

void vs_status_following(bool on, const char *backend)
{
	int was;

	pthread_mutex_lock(&st.lock);
	was = st.following;
	st.following = on;
	pthread_mutex_unlock(&st.lock);
	if (was != (int)on && (on || was == 1))
		vs_events_backend(backend, on);
}

void vs_status_set_dirty_walk(vs_status_dirty_walk walk, void *arg)
{
	pthread_mutex_lock(&st.lock);
	st.dirty_walk = walk;
	st.dirty_arg = arg;
	pthread_mutex_unlock(&st.lock);
}

void vs_status_set_pinned(bool pinned)
{
	pthread_mutex_lock(&st.lock);
	st.pinned = pinned;
	pthread_mutex_unlock(&st.lock);
}

int vs_status_following_state(void)
{
	int v;

	pthread_mutex_lock(&st.lock);
	v = st.following;
	pthread_mutex_unlock(&st.lock);
	return v;
}

int64_t vs_status_get_applied(void)
{
	int64_t v;

	pthread_mutex_lock(&st.lock);
	v = st.applied;
	pthread_mutex_unlock(&st.lock);
	return v;
}

void vs_status_reset(void)
{
	pthread_mutex_lock(&st.lock);
	for (size_t i = 0; i < st.nmarks; i++)
		free(st.marks[i].path);
	free(st.marks);
	st.marks = NULL;
	st.nmarks = st.cap = st.untracked = 0;
	st.applied = 0;
	st.head = -1;
	st.head_source = NULL;
	st.head_read_ms = -1;
	st.head_error[0] = '\0';
	st.next_commit_seq = st.next_commit_ms = 0;
	st.behind_since_ms = 0;
	st.last_lag_ms = -1;
	st.changes = 0;
	st.following = -1;
	st.pinned = false;
	pthread_mutex_unlock(&st.lock);
}

/* ------------------------------------------------------------ snapshot */

void vs_status_snap_release(struct vs_status_snap *s)
{
	for (size_t i = 0; i < s->ndiv; i++)
		free(s->div[i].path);
	free(s->div);
	s->div = NULL;
	s->ndiv = 0;
}

/* The paths of the journal's pending entries (a rename: both). */
struct jpaths {
	char **v;
	size_t n, cap;
	int err;
};

static int jpaths_add(struct jpaths *p, const char *path)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		char **v = realloc(p->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	if (!(p->v[p->n] = strdup(path)))
		return -ENOMEM;
	p->n++;
	return 0;
}

static int jpaths_each(void *arg, const struct vs_jentry *e)
{
	struct jpaths *p = arg;
	int r = jpaths_add(p, e->path);

	if (r == 0 && e->op == VS_JOP_RENAME)
		r = jpaths_add(p, e->old_path);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is @p in @v, @n strings sorted by cmp_str? */
static bool sorted_has(char *const *v, size_t n, const char *p)
{
	return n && bsearch(&p, v, n, sizeof(*v), cmp_str) != NULL;
}

static int div_add(struct vs_status_snap *s, const char *path,
		   enum vs_div_reason reason, int error)
{
	s->ndiverged++;
	s->div_count[reason]++;
	if (s->ndiv == VS_STATUS_LIST_MAX)
		return 0;
	if (!(s->div[s->ndiv].path = strdup(path)))
		return -ENOMEM;
	s->div[s->ndiv].reason = reason;
	s->div[s->ndiv].error = error;
	s->ndiv++;
	return 0;
}

static int snapshot(struct vs_status_snap *s, struct vs_journal *j, bool ready,
		    bool list);

/* What the dirty walk reported (vs_status_set_dirty_walk). */
struct dirty {
	char **path;
	bool *failed;
	size_t n, cap;
	int err;
};

static void dirty_add(void *ctx, const char *path, bool failed)
{
	struct dirty *d = ctx;

	if (d->err)
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		char **p = realloc(d->path, cap * sizeof(*p));
		bool *f = p ? realloc(d->failed, cap * sizeof(*f)) : NULL;

		if (p)
			d->path = p;
		if (f)
			d->failed = f;
		if (!p || !f) {
			d->err = -ENOMEM;
			return;
		}
		d->cap = cap;
	}
	d->path[d->n] = strdup(path);
	if (!d->path[d->n]) {
		d->err = -ENOMEM;
		return;
	}
	d->failed[d->n++] = failed;
}

int vs_status_snapshot(struct vs_status_snap *s, struct vs_journal *j,
		       bool ready)
{
	return snapshot(s, j, ready, true);
}

int vs_status_snapshot_quick(struct vs_status_snap *s, struct vs_journal *j,
			     bool ready)
{
	return snapshot(s, j, ready, false);
}

static int snapshot(struct vs_status_snap *s, struct vs_journal *j, bool ready,
		    bool list)
{
	struct jpaths jp = {0};
	struct dirty dirty = {0};
	vs_status_dirty_walk walk;
	void *walk_arg;
	struct mark *marks = NULL;
	char **mpaths = NULL; /* the marks' paths, sorted */
	size_t nmarks = 0;
	int64_t oldest = 0;
	int r = 0;

	memset(s, 0, sizeof(*s));
	s->now_ms = vs_wall_ms();
	s->ready = ready;
	s->div = calloc(VS_STATUS_LIST_MAX, sizeof(*s->div));
	if (!s->div)
		return -ENOMEM;

	pthread_mutex_lock(&st.lock);
	s->applied_seq = st.applied;
	s->head_seq = st.head;
	s->head_source = st.head_source;
	s->head_age_ms = st.head_read_ms < 0 ? -1 : s->now_ms - st.head_read_ms;
	if (s->head_age_ms < -1)
		s->head_age_ms = 0;
	snprintf(s->head_error, sizeof(s->head_error), "%s", st.head_error);
	s->next_commit_ms =
	    st.next_commit_seq == st.applied + 1 ? st.next_commit_ms : 0;
	s->behind_since_ms = st.behind_since_ms;
	s->last_lag_ms = st.last_lag_ms;
	s->changes_applied = st.changes;
	s->untracked = st.untracked;
	s->following = st.following;
	s->pinned = st.pinned;
	walk = st.dirty_walk;
	walk_arg = st.dirty_arg;
	if (st.nmarks) {
		marks = calloc(st.nmarks, sizeof(*marks));
		for (size_t i = 0; marks && i < st.nmarks; i++) {
			marks[i] = st.marks[i];
			marks[i].path = strdup(st.marks[i].path);
			if (!marks[i].path) {
				r = -ENOMEM;
				break;
			}
			nmarks = i + 1;
		}
		if (!marks)
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&st.lock);
	if (r < 0)
		goto out;
	/* each path below is looked up in the marks and the journal's
	 * paths: sorted, so a snapshot of many unsaved files stays n log n */
	if (nmarks && !(mpaths = malloc(nmarks * sizeof(*mpaths)))) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nmarks; i++)
		mpaths[i] = marks[i].path;
	if (nmarks > 1)
		qsort(mpaths, nmarks, sizeof(*mpaths), cmp_str);

	if (j) {
		s->pending = vs_journal_pending(j);
		s->oldest_save_ms = -1;
		if (vs_journal_oldest_ms(j, &oldest) == 0) {
			s->oldest_save_ms = s->now_ms - oldest;
			if (s->oldest_save_ms < 0)
				s->oldest_save_ms = 0;
		}
		r = list ? vs_journal_each(j, jpaths_each, &jp) : 0;
		if (r < 0)
			goto out;
		if (jp.n > 1)
			qsort(jp.v, jp.n, sizeof(*jp.v), cmp_str);
	} else {
		s->oldest_save_ms = -1;
	}

	/* marks first (their reason is the more telling one), then each
	 * pending path without a mark, once */
	for (size_t i = 0; i < nmarks && r == 0; i++)
		r = div_add(s, marks[i].path, marks[i].reason, marks[i].error);
	for (size_t i = 0; i < jp.n && r == 0; i++) {
		if (i > 0 && !strcmp(jp.v[i], jp.v[i - 1]))
			continue;
		if (!sorted_has(mpaths, nmarks, jp.v[i]))
			r = div_add(s, jp.v[i], VS_DIV_UNSAVED, 0);
	}
	if (!list) { /* each pending entry counted as one file */
		s->ndiverged += s->pending;
		s->div_count[VS_DIV_UNSAVED] += s->pending;
	}
	/* written and not saved yet, or a failed write: from the tree */
	if (r == 0 && walk)
		r = walk(walk_arg, dirty_add, &dirty);
	if (r == 0)
		r = dirty.err;
	for (size_t i = 0; i < dirty.n && r == 0; i++) {
		if (sorted_has(mpaths, nmarks, dirty.path[i]) ||
		    sorted_has(jp.v, jp.n, dirty.path[i]))
			continue; /* counted above, with its telling reason */
		if (list) {
			r = div_add(s, dirty.path[i],
				    dirty.failed[i] ? VS_DIV_FAILED
						    : VS_DIV_UNSAVED,
				    0);
		} else {
			s->ndiverged++;
			s->div_count[dirty.failed[i] ? VS_DIV_FAILED
						     : VS_DIV_UNSAVED]++;
		}
	}
	s->ndiverged += s->untracked;
	s->lag_ms = vs_status_lag_ms(s, &s->lag_estimated);
	s->state = vs_status_state(s);
	vs_metrics_sync_state(s->head_seq, (int64_t)s->ndiverged,
			      s->oldest_save_ms > 0 ? s->oldest_save_ms : 0);
out:
	free(mpaths);
	for (size_t i = 0; i < nmarks; i++)
		free(marks[i].path);
	free(marks);
	for (size_t i = 0; i < jp.n; i++)
		free(jp.v[i]);
	free(jp.v);
	for (size_t i = 0; i < dirty.n; i++)
		free(dirty.path[i]);
	free(dirty.path);
	free(dirty.failed);
	if (r < 0)
		vs_status_snap_release(s);
	return r;
}

/* ------------------------------------------------------------ pure */

enum vs_sync_state vs_status_state(const struct vs_status_snap *s)
{
	if (s->pinned)
		return VS_STATE_PINNED;
	if (s->div_count[VS_DIV_CONFLICT] || s->div_count[VS_DIV_REFUSED] ||
	    s->div_count[VS_DIV_FAILED] || s->untracked)
		return VS_STATE_DIVERGED;
	if (s->head_seq > s->applied_seq)
		return VS_STATE_BEHIND;
	if (s->pending || s->div_count[VS_DIV_UNSAVED])
		return VS_STATE_SAVING;
	if (s->head_seq < 0)
		return VS_STATE_UNKNOWN;
	return VS_STATE_IN_SYNC;
}

bool vs_status_in_sync(const struct vs_status_snap *s)
{
	return !s->pinned && s->head_seq >= 0 &&
	       s->applied_seq == s->head_seq && s->pending == 0 &&
	       s->ndiverged == 0;
}

int64_t vs_status_lag_ms(const struct vs_status_snap *s, bool *estimated)
{
	int64_t since;

	*estimated = false;
	if (s->head_seq <= s->applied_seq)
		return 0;
	if (s->next_commit_ms > 0) {
		since = s->next_commit_ms;
	} else {
		*estimated = true;
		since = s->behind_since_ms ? s->behind_since_ms : s->now_ms;
	}
	return s->now_ms > since ? s->now_ms - since : 0;
}

/* ------------------------------------------------------------ JSON */

/* Set @key of @o to @v (consumed); a NULL @v (ENOMEM) fails the build. */
static int put(json_t *o, const char *key, json_t *v)
{
	return json_object_set_new(o, key, v) == 0 ? 0 : -ENOMEM;
}

static json_t *int_or_null(int64_t v)
{
	return v < 0 ? json_null() : json_integer(v);
}

int vs_status_json(const struct vs_status_snap *s, const char *project,
		   const char *project_id, const char *mountpoint, char **out,
		   size_t *len)
{
	json_t *o = json_object(), *div = json_array(), *counts = json_object();
	int r = -ENOMEM;

	*out = NULL;
	*len = 0;
	if (!o || !div || !counts)
		goto out;
	for (size_t i = 0; i < s->ndiv; i++) {
		json_t *d = json_object();

		if (!d || json_array_append_new(div, d) < 0)
			goto out;
		if (put(d, "path", vs_json_str(s->div[i].path)) ||
		    put(d, "reason",
			json_string(vs_div_reason_name(s->div[i].reason))))
			goto out;
		if (s->div[i].error &&
		    put(d, "error", json_string(strerror(-s->div[i].error))))
			goto out;
	}
	for (int k = 0; k < VS_DIV_COUNT; k++)
		if (put(counts, reason_names[k],
			json_integer((json_int_t)s->div_count[k])))
			goto out;
	if (put(o, "project", vs_json_str(project)) ||
	    put(o, "project_id", vs_json_str(project_id)) ||
	    put(o, "mountpoint", vs_json_str(mountpoint)) ||
	    put(o, "state", json_string(vs_sync_state_name(s->state))) ||
	    put(o, "in_sync", json_boolean(vs_status_in_sync(s))) ||
	    put(o, "ready", json_boolean(s->ready)) ||
	    put(o, "following",
		s->following < 0 ? json_null() : json_boolean(s->following)) ||
	    put(o, "applied_seq", json_integer(s->applied_seq)) ||
	    put(o, "head_seq", int_or_null(s->head_seq)) ||
	    put(o, "head_source",
		s->head_source ? json_string(s->head_source) : json_null()) ||
	    put(o, "head_age_ms", int_or_null(s->head_age_ms)) ||
	    put(o, "head_error",
		s->head_error[0] ? vs_json_str(s->head_error) : json_null()) ||
	    put(o, "behind",
		json_integer(s->head_seq > s->applied_seq
				 ? s->head_seq - s->applied_seq
				 : 0)) ||
	    put(o, "lag_ms", json_integer(s->lag_ms)) ||
	    put(o, "lag_estimated", json_boolean(s->lag_estimated)) ||
	    put(o, "last_change_lag_ms", int_or_null(s->last_lag_ms)) ||
	    put(o, "changes_applied",
		json_integer((json_int_t)s->changes_applied)) ||
	    put(o, "saves_pending", json_integer((json_int_t)s->pending)) ||
	    put(o, "oldest_save_age_ms", int_or_null(s->oldest_save_ms)) ||
	    put(o, "files_diverged", json_integer((json_int_t)s->ndiverged)) ||
	    json_object_set(o, "diverged_by_reason", counts) < 0 ||
	    json_object_set(o, "diverged", div) < 0 ||
	    put(o, "diverged_listed_max", json_integer(VS_STATUS_LIST_MAX)))
		goto out;
	r = vs_json_dump(o, out, len);
out:
	json_decref(counts);
	json_decref(div);
	json_decref(o);
	return r;
}

/* Milliseconds as "850 ms", "1.2 s" or "3 min". */
static void fmt_ms(char *out, size_t size, int64_t ms)
{
	if (ms < 1000)
		snprintf(out, size, "%" PRId64 " ms", ms);
	else if (ms < 120000)
		snprintf(out, size, "%" PRId64 ".%" PRId64 " s", ms / 1000,
			 (ms % 1000) / 100);
	else
		snprintf(out, size, "%" PRId64 " min", ms / 60000);
}

static int64_t get_int(const json_t *o, const char *key, int64_t dflt)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

int vs_status_line(const char *json, size_t len, char *out, size_t outlen)
{
	json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	const char *state;
	char a[32], b[32];
	int64_t applied, head, pending, ndiv, lag;
	size_t n = 0;
	int r = -EBADMSG;

#define ADDF(...)                                                              \
	do {                                                                   \
		int w_ = snprintf(out + n, outlen - n, __VA_ARGS__);           \
		if (w_ > 0)                                                    \
			n += (size_t)w_ < outlen - n ? (size_t)w_              \
						     : outlen - n - 1;         \
	} while (0)

	if (!outlen)
		goto out;
	out[0] = '\0';
	if (!json_is_object(o) ||
	    !json_is_string(json_object_get(o, "state")) ||
	    !json_is_integer(json_object_get(o, "applied_seq")))
		goto out;
	state = json_string_value(json_object_get(o, "state"));
	if (vs_sync_state_parse(state) < 0)
		goto out;
	applied = get_int(o, "applied_seq", 0);
	head = get_int(o, "head_seq", -1);
	pending = get_int(o, "saves_pending", 0);
	ndiv = get_int(o, "files_diverged", 0);
	lag = get_int(o, "lag_ms", 0);
	if (json_is_true(json_object_get(o, "in_sync"))) {
		ADDF("in sync at change %" PRId64, applied);
	} else {
		ADDF("%s:", state);
		if (head < 0)
			ADDF(" at change %" PRId64 ", head unknown", applied);
		else if (head > applied) {
			fmt_ms(a, sizeof(a), lag);
			ADDF(" change %" PRId64 " of %" PRId64 ", lag %s%s",
			     applied, head,
			     json_is_true(json_object_get(o, "lag_estimated"))
				 ? ">= "
				 : "",
			     a);
		} else
			ADDF(" at change %" PRId64 " (head)", applied);
		if (pending > 0) {
			fmt_ms(b, sizeof(b),
			       get_int(o, "oldest_save_age_ms", 0));
			ADDF("; %" PRId64 " save%s pending (oldest %s)",
			     pending, pending == 1 ? "" : "s", b);
		}
		if (ndiv > 0) {
			const json_t *c =
			    json_object_get(o, "diverged_by_reason");
			const char *sep = " (";

			ADDF("; %" PRId64 " file%s diverged", ndiv,
			     ndiv == 1 ? "" : "s");
			for (int k = 0; k < VS_DIV_COUNT && json_is_object(c);
			     k++) {
				int64_t v = get_int(c, reason_names[k], 0);

				if (v > 0) {
					ADDF("%s%" PRId64 " %s", sep, v,
					     reason_names[k]);
					sep = ", ";
				}
			}
			if (strcmp(sep, " ("))
				ADDF(")");
		}
	}
	if (json_is_false(json_object_get(o, "following")))
		ADDF("; not following changes");
#undef ADDF
	r = 0;
out:
	json_decref(o);
	return r;
}

/* ------------------------------------------------------------ heartbeat */

int vs_beat_format(const struct vs_beat *b, char *out, size_t outlen)
{
	json_t *o = json_object();
	char *text = NULL;
	size_t len = 0;
	int r = -ENOMEM;

	if (!o)
		return -ENOMEM;
	if (put(o, "v", json_integer(1)) ||
	    put(o, "host", vs_json_str(b->host)) ||
	    put(o, "pid", json_integer(b->pid)) ||
	    put(o, "mount", vs_json_str(b->mount)) ||
	    put(o, "seq", json_integer(b->seq)) ||
	    put(o, "head", json_integer(b->head < 0 ? -1 : b->head)) ||
	    put(o, "state", json_string(vs_sync_state_name(b->state))) ||
	    put(o, "pending", json_integer(b->pending)) ||
	    put(o, "diverged", json_integer(b->diverged)) ||
	    put(o, "lag_ms", json_integer(b->lag_ms)))
		goto out;
	r = vs_json_dump(o, &text, &len);
	if (r < 0)
		goto out;
	r = len < outlen && len <= VS_BEAT_MAX ? 0 : -ENOBUFS;
	if (r == 0)
		memcpy(out, text, len + 1);
out:
	free(text);
	json_decref(o);
	return r;
}

/* A string field of at most @max bytes, no control character. */
static int beat_str(const json_t *o, const char *key, char *out, size_t max)
{
	const json_t *v = json_object_get(o, key);
	const char *s;
	size_t n;

	if (!json_is_string(v))
		return -EBADMSG;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 || n >= max)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -EBADMSG;
	memcpy(out, s, n + 1);
	return 0;
}

static int beat_int(const json_t *o, const char *key, int64_t lo, int64_t hi,
		    int64_t *out)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return -EBADMSG;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

int vs_beat_parse(struct vs_beat *b, const char *member, size_t len)
{
	json_t *o = NULL, *st_v;
	int64_t v = 0, pid = 0;
	int state, r = -EBADMSG;

	memset(b, 0, sizeof(*b));
	if (len == 0 || len > VS_BEAT_MAX)
		return -EBADMSG;
	o = json_loadb(member, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o) || json_object_size(o) > 16)
		goto out;
	if (beat_int(o, "v", 1, 1, &v) ||
	    beat_str(o, "host", b->host, sizeof(b->host)) ||
	    beat_int(o, "pid", 1, 1 << 22, &pid) ||
	    beat_str(o, "mount", b->mount, sizeof(b->mount)) ||
	    beat_int(o, "seq", 0, INT64_MAX, &b->seq) ||
	    beat_int(o, "head", -1, INT64_MAX, &b->head) ||
	    beat_int(o, "pending", 0, INT64_MAX, &b->pending) ||
	    beat_int(o, "diverged", 0, INT64_MAX, &b->diverged) ||
	    beat_int(o, "lag_ms", 0, INT64_MAX, &b->lag_ms))
		goto out;
	st_v = json_object_get(o, "state");
	if (!json_is_string(st_v) ||
	    (state = vs_sync_state_parse(json_string_value(st_v))) < 0)
		goto out;
	b->state = (enum vs_sync_state)state;
	b->pid = (long)pid;
	r = 0;
out:
	json_decref(o);
	if (r < 0)
		memset(b, 0, sizeof(*b));
	return r;
}
