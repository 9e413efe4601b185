/*
 * path.h - validation of project-relative paths (DESIGN.md §5.5) and the
 * local-only path rule. Pure functions: no I/O, no allocation.
 *
 * A project path is relative, '/'-separated, with no empty, "." or ".."
 * component, no NUL, no leading or trailing '/', each component at most
 * VS_NAME_MAX bytes, the whole at most VS_PATH_MAX bytes. The root of the
 * project is the empty string "".
 */
#ifndef VSYNC_PATH_H
#define VSYNC_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define VS_NAME_MAX 255
#define VS_PATH_MAX 4096

/*
 * Check @path of @len bytes (it need not be NUL-terminated; an embedded NUL
 * is an error). Returns 0 if valid, -ENAMETOOLONG if a component or the whole
 * is too long, -EINVAL otherwise. The empty path (the root) is valid.
 */
int vs_path_check(const char *path, size_t len);

/* Check one directory-entry name: 0, -ENAMETOOLONG or -EINVAL
 * (empty, ".", "..", contains '/' or NUL). */
int vs_name_check(const char *name, size_t len);

/*
 * Whether @path (of @len bytes, valid for vs_path_check) can be stored in
 * PostgreSQL as it is: valid UTF-8 without control characters (0x01-0x1f,
 * 0x7f), as vsync_check_path() and the database's encoding demand. 0 or
 * -EINVAL. A single name is a path too.
 */
int vs_path_syncable(const char *path, size_t len);

/*
 * The set of local-only names (node_modules, dist, ...). A path is
 * local-only when any of its components equals one of the names: such
 * paths live in the container only and are never synced.
 */
struct vs_local_rules {
	const char **names; /* borrowed; NULL-terminated */
};

/* The default names: node_modules .vite .next dist build .cache .git */
extern const char *const vs_local_default_names[];

bool vs_name_is_local(const struct vs_local_rules *rules, const char *name,
		      size_t len);
bool vs_path_is_local(const struct vs_local_rules *rules, const char *path);

/* Split: the last component of @path (pointer into @path) and the length of
 * its parent prefix (0 for a top-level entry). */
const char *vs_path_basename(const char *path, size_t *parent_len);

#endif
