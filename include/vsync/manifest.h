/*
 * manifest.h - the project tree's metadata as one flat list, as loaded from
 * PostgreSQL at mount and saved in the cache dir so a remount works while
 * the database is down. Pure: parsing and serialising do no I/O.
 *
 * Ownership: a struct vs_manifest owns every string of its entries.
 */
#ifndef VSYNC_MANIFEST_H
#define VSYNC_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "vsync/hash.h"
#include "vsync/util.h"

enum vs_kind {
	VS_KIND_FILE = 0,
	VS_KIND_DIR = 1,
	VS_KIND_SYMLINK = 2,
};

struct vs_manifest_entry {
	char *path;   /* project-relative, validated by the producer */
	char *target; /* symlink target, NULL otherwise */
	enum vs_kind kind;
	uint32_t mode; /* permission bits only (07777) */
	uint64_t size;
	int64_t version;
	int64_t mtime_ns;		/* ns since the epoch */
	char hash[VS_HASH_HEX_LEN + 1]; /* content SHA-256; "" for dirs */
};

struct vs_manifest {
	char project_id[VS_UUID_BUFSZ]; /* UUID text */
	int64_t seq; /* the change sequence this manifest reflects */
	struct vs_manifest_entry *entries;
	size_t n, alloc;
};

void vs_manifest_init(struct vs_manifest *m);
void vs_manifest_release(struct vs_manifest *m);

/* Append a copy of @e (its strings are duplicated). 0 or -ENOMEM. */
int vs_manifest_add(struct vs_manifest *m, const struct vs_manifest_entry *e);

/* Parse "file"/"dir"/"symlink" -> kind; -EINVAL for anything else. */
int vs_kind_parse(const char *s, enum vs_kind *out);
const char *vs_kind_name(enum vs_kind k);

/*
 * Serialise to a malloc'd buffer (*out, *out_len) in the cache format:
 *   "vsync-manifest 1 <project> <seq> <n>\n" then per entry
 *   "<kind> <mode-octal> <size> <version> <mtime_ns> <hash|-> <pathlen>
 * <targetlen>\n<path><target>\n" Returns 0 or -ENOMEM.
 */
int vs_manifest_serialize(const struct vs_manifest *m, char **out,
			  size_t *out_len);

/*
 * Parse @len bytes of the cache format into @m (initialised by the caller,
 * empty). Rejects, with -EBADMSG, any malformed line, a path that fails
 * vs_path_check() or a hash that is not 64 hex digits; on failure @m holds
 * no entries.
 */
int vs_manifest_parse(struct vs_manifest *m, const char *buf, size_t len);

/* What differs at one path between two trees (vs_manifest_diff). */
enum vs_diff {
	VS_DIFF_ADDED,	 /* only in the second */
	VS_DIFF_DELETED, /* only in the first */
	VS_DIFF_CHANGED, /* in both: kind, content, target or mode differ */
};

/*
 * Walk trees @a and @b, both sorted by path in strcmp() order (as
 * vs_pg_manifest_load() gives them), and call @fn for each path that
 * differs, in path order: @old is @a's entry (NULL when added), @new @b's
 * (NULL when deleted). A path whose kind, hash, target and mode are the
 * same in both is not reported, whatever its version or mtime (a rollback
 * to the same bytes changes nothing). Stops at the first non-zero return
 * of @fn and returns it; -EINVAL if a tree is not sorted; else 0.
 */
typedef int (*vs_diff_fn)(void *arg, enum vs_diff what,
			  const struct vs_manifest_entry *old,
			  const struct vs_manifest_entry *new);
int vs_manifest_diff(const struct vs_manifest *a, const struct vs_manifest *b,
		     vs_diff_fn fn, void *arg);

#endif
