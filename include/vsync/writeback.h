/*
 * writeback.h - the committer: journal entries to PostgreSQL, in order
 * (sync/writeback.c).
 *
 * One thread with its own PostgreSQL connection takes the oldest journal
 * entry and commits it through the SQL write functions with its operation
 * id and base version. A stale base (a conflict) is merged three-way
 * (merge.h) when the two edits touch different lines, and the merge is
 * committed; otherwise the local version is committed over the current
 * one, which stays in history, and the conflict is recorded in
 * file_operations and announced (p_conflict_with). An entry that the
 * database refuses for good (invalid path, a parent that is a file ...)
 * is logged, reported and dropped; a backend that is down is retried with
 * backoff, the entry staying journaled.
 */
#ifndef VSYNC_WRITEBACK_H
#define VSYNC_WRITEBACK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "vsync/journal.h"

struct vs_cache;
struct vs_writeback;

struct vs_wb_result {
	uint64_t lseq;
	int error;	 /* 0 committed; -errno refused for good */
	int64_t seq;	 /* the change it became (0 if none) */
	int64_t version; /* the path's new version */
	/* what is now current (merges!) */
	char hash[VS_HASH_HEX_LEN + 1];
	int merged;   /* 1: a three-way merge was committed */
	int conflict; /* 1: committed over a concurrent edit */
};

/* Was DELETE @e refused with @error (vs_wb_result) because someone else
 * changed the path there after what the mount had when it was deleted
 * here (seen_seq)? That change stays, and comes to the mount as any
 * remote change: both sides end with it, no divergence. */
static inline bool vs_wb_delete_overtaken(const struct vs_jentry *e, int error)
{
	return e->op == VS_JOP_DELETE && e->seen_seq > 0 && error == -ESTALE;
}

struct vs_wb_config {
	const char *pg;
	const char *project_id;
	const char *author; /* e.g. "container:<hostname>" */
	int timeout_ms;
	struct vs_cache *cache; /* content objects named by entries */
	struct vs_journal *journal;
	/* called on the committer thread after each entry is done */
	void (*committed)(void *arg, const struct vs_jentry *e,
			  const struct vs_wb_result *res);
	void *arg;
};

int vs_wb_start(struct vs_writeback **out, const struct vs_wb_config *cfg);
/* Wake the committer (an entry was appended). */
void vs_wb_kick(struct vs_writeback *wb);
/*
 * Wait until entry @lseq is done (committed or refused) or @timeout_ms
 * passes. 0 if committed, the refusal's -errno, or -ETIMEDOUT.
 */
int vs_wb_wait(struct vs_writeback *wb, uint64_t lseq, int timeout_ms);
/* Stop (after the entry in flight) and free; pending entries stay in the
 * journal for the next start. */
void vs_wb_stop(struct vs_writeback *wb);

#endif
