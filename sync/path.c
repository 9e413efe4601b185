/*
 * path.c - project path validation and the local-only rule (path.h).
 * Pure: no I/O, no allocation.
 */
#include "vsync/path.h"

#include <errno.h>
#include <string.h>
#include "vsync/banned.h"

const char *const vs_local_default_names[] = {
    "node_modules", ".vite", ".next", "dist", "build", ".cache", ".git", NULL,
};

int vs_name_check(const char *name, size_t len)
{
	if (len == 0)
		return -EINVAL;
	if (len > VS_NAME_MAX)
		return -ENAMETOOLONG;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	if (memchr(name, '/', len) || memchr(name, '\0', len))
		return -EINVAL;
	return 0;
}

int vs_path_check(const char *path, size_t len)
{
	size_t start = 0;

	if (len == 0)
		return 0;
	if (len > VS_PATH_MAX)
		return -ENAMETOOLONG;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && path[i] == '\0')
			return -EINVAL;
		if (i == len || path[i] == '/') {
			int r = vs_name_check(path + start, i - start);

			if (r < 0)
				return r;
			start = i + 1;
		}
	}
	return 0;
}

int vs_path_syncable(const char *path, size_t len)
{
	const unsigned char *p = (const unsigned char *)path;
	size_t i = 0;

	while (i < len) {
		unsigned c = p[i];
		size_t n;
		unsigned min, cp;

		if (c < 0x20 || c == 0x7f)
			return -EINVAL;
		if (c < 0x80) {
			i++;
			continue;
		}
		/* a multi-byte sequence: its length, the smallest code point
		 * it may encode (no overlong forms) */
		if ((c & 0xe0) == 0xc0)
			n = 2, min = 0x80, cp = c & 0x1f;
		else if ((c & 0xf0) == 0xe0)
			n = 3, min = 0x800, cp = c & 0x0f;
		else if ((c & 0xf8) == 0xf0)
			n = 4, min = 0x10000, cp = c & 0x07;
		else
			return -EINVAL;
		if (len - i < n)
			return -EINVAL;
		for (size_t k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return -EINVAL;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -EINVAL;
		i += n;
	}
	return 0;
}

bool vs_name_is_local(const struct vs_local_rules *rules, const char *name,
		      size_t len)
{
	if (!rules || !rules->names)
		return false;
	for (const char **n = rules->names; *n; n++) {
		if (strlen(*n) == len && memcmp(*n, name, len) == 0)
			return true;
	}
	return false;
}

bool vs_path_is_local(const struct vs_local_rules *rules, const char *path)
{
	const char *p = path;

	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (vs_name_is_local(rules, p, len))
			return true;
		if (!slash)
			break;
		p = slash + 1;
	}
	return false;
}

const char *vs_path_basename(const char *path, size_t *parent_len)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		*parent_len = 0;
		return path;
	}
	*parent_len = (size_t)(slash - path);
	return slash + 1;
}
