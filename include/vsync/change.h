/*
 * change.h - one committed change of a project, as carried by the Redis
 * stream (events:{<project>}, entry id "<seq>-0") and by the PostgreSQL
 * change feed (vsync_change_feed()). Pure: parsing and validation only.
 *
 * Fields (stream field names; the SQL feed has the same columns):
 *   seq       change sequence number, >= 1          (required)
 *   op        create|update|rollback|mkdir|delete|rename   (required)
 *   path      the path the change is about          (required, validated)
 *   old_path  rename: where it came from            (required for rename)
 *   kind      file|dir|symlink: what is at path after the change
 *             (for delete: what was removed)        (required)
 *   mode      permission bits, octal text           (required unless delete)
 *   size      bytes                                 (files, symlinks)
 *   hash      SHA-256 hex of the content            (files, symlinks)
 *   version   the path's version after the change   (required)
 *   mtime_ns  ns since the epoch                    (required unless delete)
 *   target    symlink target                        (symlinks)
 *   author    who made it                           (optional)
 *   conflict  the version this change overwrote in a conflict: the
 *             concurrent edit it did not merge with, which stays in
 *             history as the previous version (optional; "0" or absent:
 *             none; otherwise 1 .. version-1)
 *   delta_base SHA-256 hex of the previous version's content: Redis
 *             holds delta:{<project>}:<delta_base>:<hash>, a librsync
 *             delta from it to this content (optional; absent: none;
 *             an optimisation only: the full content stays available)
 *
 * Semantics for a consumer: create/update/rollback put the state at path
 * (creating missing parent directories with mode 0755); mkdir creates a
 * directory; delete removes path and everything under it; rename moves
 * old_path (and its subtree) to path, replacing a file there, and then
 * path has the given state.
 */
#ifndef VSYNC_CHANGE_H
#define VSYNC_CHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "vsync/hash.h"
#include "vsync/manifest.h"
#include "vsync/path.h"

enum vs_change_op {
	VS_OP_CREATE,
	VS_OP_UPDATE,
	VS_OP_ROLLBACK,
	VS_OP_MKDIR,
	VS_OP_DELETE,
	VS_OP_RENAME,
};

struct vs_change {
	int64_t seq;
	enum vs_change_op op;
	char path[VS_PATH_MAX + 1];
	char old_path[VS_PATH_MAX + 1]; /* "" unless rename */
	struct vs_manifest_entry state; /* .path and .target point into this
					   struct (path, target below) */
	char target[VS_PATH_MAX + 1];
	char author[128];
	int64_t conflict; /* the version overwritten in a conflict, 0: none */
	char delta_base[VS_HASH_HEX_LEN + 1]; /* "" unless a delta exists */
	/* the content itself when the stream entry carries it (field
	 * "data", small files): not validated nor signed - check it against
	 * state.hash before use. Points into the entry it came from: valid
	 * only while the change is being applied. NULL: absent. */
	const uint8_t *data;
	size_t data_len;
};

/* Size limit of a stream entry's field value (VS_PATH_MAX + some). */
#define VS_CHANGE_FIELD_MAX (VS_PATH_MAX + 1)

/*
 * Build @c from @n field/value pairs (as in a Redis stream entry or a SQL
 * row: names as listed above; a NULL value is an absent field). Unknown
 * fields are ignored. Returns 0, or -EBADMSG with a reason in @why (for
 * the log line) on a missing or malformed field, an unknown op or kind, an
 * invalid path, a bad hash or delta_base, a conflict that is not a strict
 * decimal below the version, or a value over VS_CHANGE_FIELD_MAX.
 */
int vs_change_parse(struct vs_change *c, const char *const *names,
		    const char *const *values, const size_t *lengths, size_t n,
		    char *why, size_t whylen);

const char *vs_change_op_name(enum vs_change_op op);

/* Parse a stream entry id "<seq>-0"; -EBADMSG if it is anything else. */
int vs_change_parse_id(const char *id, int64_t *seq);

#endif
