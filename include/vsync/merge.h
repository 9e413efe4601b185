/*
 * merge.h - three-way merge of text content (sync/merge.c, on libgit2's
 * git_merge_file). Pure: no I/O.
 *
 * Used by write-back when a local change was based on a version that is no
 * longer current: @base is the version the local edit started from,
 * @ours the local content, @theirs the current one in PostgreSQL.
 */
#ifndef VSYNC_MERGE_H
#define VSYNC_MERGE_H

#include <stddef.h>

enum vs_merge_result {
	VS_MERGE_CLEAN = 0,    /* *out holds the merged bytes */
	VS_MERGE_CONFLICT = 1, /* the edits touch the same lines; no output */
};

/*
 * Merge line by line. Binary content (a NUL in any input) is never merged:
 * VS_MERGE_CONFLICT. Returns VS_MERGE_CLEAN with a malloc'd *out (the
 * caller frees), VS_MERGE_CONFLICT, or -errno (-ENOMEM, -EIO if libgit2
 * fails).
 */
int vs_merge3(const char *base, size_t base_len, const char *ours,
	      size_t ours_len, const char *theirs, size_t theirs_len,
	      char **out, size_t *out_len);

#endif
