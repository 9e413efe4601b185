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

#endif
