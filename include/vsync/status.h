/*
 * status.h - how far a mount is in sync with PostgreSQL, from the data
 * itself (sync/status.c): served as JSON at GET /status, summed up in one
 * line by `vsync-mount --status`, carried by the heartbeat in
 * containers:{id}.
 *
 * "In sync" means exactly: the head seq is known, the change applied is
 * the head, no local save is pending and no file is diverged. Nothing
 * else is called in sync.
 *
 * A process-wide registry (like metrics.h): any thread records, under one
 * mutex; vs_status_snapshot() copies it out. Recording never fails (a
 * divergence mark that cannot be allocated is counted as "untracked" and
 * keeps the mount out of sync rather than in it).
 */
#ifndef VSYNC_STATUS_H
#define VSYNC_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vs_journal;

/* Why a file differs from PostgreSQL. */
enum vs_div_reason {
	VS_DIV_UNSAVED = 0,  /* a local edit not yet committed: written and
				not saved yet, or journaled */
	VS_DIV_CONFLICT = 1, /* changed remotely while a local edit is
				pending: the write-back merges or records a
				conflict when it commits */
	VS_DIV_REFUSED = 2,  /* a local save PostgreSQL refused for good */
	VS_DIV_FAILED = 3,   /* a local write failed (ENOSPC, EFBIG ...): the
				file is not saved until rewritten */
	VS_DIV_COUNT
};

const char *vs_div_reason_name(enum vs_div_reason r);

/* The states, most serious first; vs_status_state() picks the first that
 * holds. */
enum vs_sync_state {
	VS_STATE_DIVERGED = 0, /* a conflict or a refused save */
	VS_STATE_BEHIND,       /* applied < head */
	VS_STATE_SAVING,       /* local saves pending (nothing else) */
	VS_STATE_UNKNOWN,      /* the head could not be read yet */
	VS_STATE_IN_SYNC,
	VS_STATE_PINNED, /* vsync-mount --at: a past change, by choice (it
			    is picked before all the others) */
	VS_STATE_COUNT
};

const char *vs_sync_state_name(enum vs_sync_state s);
/* -1 for a name that is none of vs_sync_state_name()'s. */
int vs_sync_state_parse(const char *name);

/* At most this many diverged files are listed in a snapshot (all are
 * counted). */
#define VS_STATUS_LIST_MAX 32

struct vs_status_div {
	char *path; /* malloc'd */
	enum vs_div_reason reason;
	int error; /* VS_DIV_REFUSED: the refusal's -errno */
};

/* A copy of the registry plus what the journal says, at one moment. */
struct vs_status_snap {
	int64_t now_ms;		 /* wall clock of the snapshot */
	int64_t applied_seq;	 /* the change the tree reflects */
	int64_t head_seq;	 /* the project's last committed change; -1:
				    not known */
	const char *head_source; /* "postgres", "redis" or "stream"; static */
	int64_t head_age_ms;	 /* since the head was read; -1: never */
	char head_error[160];	 /* why the last read failed ("": it did not) */
	/* commit (wall clock, ms) of change applied+1 when known, else 0 */
	int64_t next_commit_ms;
	int64_t behind_since_ms; /* when applied < head was first seen */
	int64_t lag_ms;		 /* see vs_status_lag_ms() */
	bool lag_estimated;	 /* lag_ms is a lower bound (no commit time) */
	int64_t last_lag_ms;	 /* commit -> applied of the last change; -1 */
	uint64_t changes_applied;
	size_t pending;		/* local saves journaled, not committed */
	int64_t oldest_save_ms; /* age of the oldest one; -1: none */
	size_t ndiverged;	/* files diverged (all reasons) */
	size_t div_count[VS_DIV_COUNT];
	size_t untracked;	   /* marks lost to ENOMEM */
	struct vs_status_div *div; /* the first VS_STATUS_LIST_MAX */
	size_t ndiv;		   /* entries in div */
	int following; /* the change follower: 1 connected, 0 down, -1 not
			  started (or --no-follow) or still connecting */
	bool ready;    /* /readyz's answer (see control.h) */
	bool pinned;   /* vsync-mount --at (vs_status_set_pinned) */
	enum vs_sync_state state; /* vs_status_state() */
};

/* Free what a snapshot holds (its div list). */
void vs_status_snap_release(struct vs_status_snap *s);

/* ---- recording (any thread) ------------------------------------------- */

/* Change @seq, committed at @commit_ms (wall clock; 0: unknown), was
 * applied at @now_ms: the applied seq, the lag of the last change and
 * the lag histogram (metrics.h). */
void vs_status_applied(int64_t seq, int64_t commit_ms, int64_t now_ms);
/*
 * The files of the mount's tree with local changes that are in no journal
 * entry yet (written, not saved), or whose last write failed: a walk the
 * mount registers (fs.h, vs_fs_dirty_walk), called by every snapshot. It
 * calls @cb(@ctx, path, failed) for each such file, holding no lock of
 * the registry's, and returns 0 or -errno.
 */
typedef void (*vs_status_dirty_cb)(void *ctx, const char *path, bool failed);
typedef int (*vs_status_dirty_walk)(void *arg, vs_status_dirty_cb cb,
				    void *ctx);
void vs_status_set_dirty_walk(vs_status_dirty_walk walk, void *arg);

/* vsync-mount --at: the tree stays at a past change by choice; its state
 * is "pinned", never in sync. */
void vs_status_set_pinned(bool pinned);
/* The applied seq without a change (the mount's start). */
void vs_status_set_applied(int64_t seq);
/* The head was read: @seq from @source (static string), and the commit
 * time of change @next_seq when the reader had it (else 0): used for the
 * lag while @next_seq is the first change not applied. */
void vs_status_head(int64_t seq, const char *source, int64_t next_seq,
		    int64_t next_commit_ms, int64_t now_ms);
/* Reading the head failed: @why (copied, cut to fit). */
void vs_status_head_failed(const char *why);

/* A remote change about @path (and @old_path for a rename, else NULL)
 * was applied: marks of those paths and of what is under them are
 * cleared, except VS_DIV_CONFLICT (the local edit is still pending); so
 * are those of deletes overtaken by a change there (VS_DIV_REFUSED with
 * -ESTALE, writeback.h vs_wb_delete_overtaken) at directories above
 * @path. */
void vs_status_remote(const char *path, const char *old_path);
/* @path changed remotely while it has a local edit pending. */
void vs_status_conflict(const char *path);
/* What is at @path (a file, or a directory and what is under it) was
 * moved to @to by the updater itself (update.c, keep_aside): their marks
 * go with it (those at @to before are dropped). */
void vs_status_moved(const char *path, const char *to);
/* A journal entry about @path (@old_path: a rename's source, else NULL)
 * ended: committed (@error 0), or refused for good (-errno). Clears the
 * marks of both paths; a refusal marks @path VS_DIV_REFUSED (except a
 * delete of a path PostgreSQL does not have or cannot have, @error
 * -ENOENT or -EINVAL with @is_delete: both sides agree it is gone). */
void vs_status_saved(const char *path, const char *old_path, int error,
		     bool is_delete);
/* The change follower connected to @backend ("redis", "postgres") (true)
 * or lost it (false); a change is also a backend.up/down event
 * (events.h). */
void vs_status_following(bool on, const char *backend);
/* -1 before the follower said either (not started, or connecting), 0
 * down, 1 following. */
int vs_status_following_state(void);
/* The applied seq recorded last. */
int64_t vs_status_get_applied(void);

/* Forget everything (tests, and a mount at its start). */
void vs_status_reset(void);

/*
 * Copy the registry into @s, with the journal's pending saves (@j may be
 * NULL: read-only mount) listed as VS_DIV_UNSAVED, @ready as given, and
 * the derived fields (lag_ms, state). Also sets the gauges of metrics.h
 * (head seq, files diverged, save age). 0 or -ENOMEM (@s is then empty).
 */
int vs_status_snapshot(struct vs_status_snap *s, struct vs_journal *j,
		       bool ready);
/* The same without reading the journal's entries (the heartbeat, up to
 * once a second): each pending entry counts as one unsaved file, none is
 * listed, so files_diverged may count a file saved twice twice. */
int vs_status_snapshot_quick(struct vs_status_snap *s, struct vs_journal *j,
			     bool ready);

/* ---- pure ------------------------------------------------------------- */

/* The state of @s from its fields (head_seq, applied_seq, pending,
 * div_count, untracked). */
enum vs_sync_state vs_status_state(const struct vs_status_snap *s);
/* Is @s in sync (see the top of this file)? */
bool vs_status_in_sync(const struct vs_status_snap *s);
/*
 * The current lag in ms: 0 unless behind; when behind, @now_ms minus the
 * commit of change applied+1 if known, else minus when being behind was
 * first seen (then *estimated is set: a lower bound).
 */
int64_t vs_status_lag_ms(const struct vs_status_snap *s, bool *estimated);

/* @s as the JSON object of GET /status (docs/operations.md), with
 * @project (as the mount was given it), @project_id and @mountpoint;
 * malloc'd into *out, *len. 0 or -ENOMEM. */
int vs_status_json(const struct vs_status_snap *s, const char *project,
		   const char *project_id, const char *mountpoint, char **out,
		   size_t *len);
/*
 * One line for a person, from the JSON of GET /status (@json, @len):
 * "in sync at change 42" or "behind: change 40 of 42, lag 1.2 s; 1 save
 * pending (3 s); 2 files diverged (1 refused, 1 unsaved)". 0, or -EBADMSG
 * when @json is not such an object.
 */
int vs_status_line(const char *json, size_t len, char *out, size_t outlen);

/* ---- the heartbeat in containers:{id} ---------------------------------- */

/* One agent's entry, as a reader sees it after validation. */
struct vs_beat {
	char host[65];
	long pid;
	char mount[512];
	int64_t seq;  /* applied */
	int64_t head; /* as the agent last read it; -1: not known */
	enum vs_sync_state state;
	int64_t pending;
	int64_t diverged;
	int64_t lag_ms;
};

/* Longest member an agent writes, and a reader accepts. */
#define VS_BEAT_MAX 1024

/* The zset member for @b (JSON, compact) into @out. 0, or -ENOBUFS. */
int vs_beat_format(const struct vs_beat *b, char *out, size_t outlen);
/*
 * Parse and validate one member read from Redis - untrusted: any
 * container of the project may write it. 0, or -EBADMSG (too long, not
 * the JSON object of vs_beat_format(), a field missing or of the wrong
 * type or range, a control character in a string).
 */
int vs_beat_parse(struct vs_beat *b, const char *member, size_t len);

#endif
