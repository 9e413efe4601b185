/*
 * fuzz_path.c - project path validation (sync/path.c, path.h): the check
 * every path from outside goes through before it reaches a file system or
 * a query.
 *
 * Input: a path's bytes. Properties:
 *  - vs_path_check() agrees with a plain re-statement of the rule (split
 *    at '/', every component 1 .. VS_NAME_MAX bytes, not "." or "..", no
 *    NUL, the whole at most VS_PATH_MAX);
 *  - vs_path_syncable() agrees with the well-formed UTF-8 table of the
 *    Unicode standard (Table 3-7) minus control characters;
 *  - for a valid path, vs_path_basename() splits it into parent and name,
 *    and vs_path_is_local() agrees with checking each component.
 */
#include "vsync/path.h"

#include <errno.h>
#include <stdbool.h>

#include "fuzz.h"

static bool ref_path_valid(const uint8_t *p, size_t len)
{
	size_t start = 0;

	if (len == 0)
		return true;
	if (len > VS_PATH_MAX || memchr(p, '\0', len))
		return false;
	while (start <= len) {
		const uint8_t *slash = memchr(p + start, '/', len - start);
		size_t n = (slash ? (size_t)(slash - p) : len) - start;

		if (n == 0 || n > VS_NAME_MAX || (n == 1 && p[start] == '.') ||
		    (n == 2 && p[start] == '.' && p[start + 1] == '.'))
			return false;
		start += n + 1;
	}
	return true;
}

/* Unicode 15, Table 3-7: well-formed UTF-8 byte sequences. */
static bool ref_utf8_no_controls(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t b = p[i];
		uint8_t lo = 0x80, hi = 0xbf;
		size_t n;

		if (b < 0x80) {
			if (b < 0x20 || b == 0x7f)
				return false;
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf)
			n = 2;
		else if (b >= 0xe0 && b <= 0xef)
			n = 3;
		else if (b >= 0xf0 && b <= 0xf4)
			n = 4;
		else
			return false;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
		else if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
		if (len - i < n || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k < n; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return false;
		i += n;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = {"node_modules", "dist", ".git", NULL};
	struct vs_local_rules rules = {names};
	const char *path = (const char *)data;
	bool valid = ref_path_valid(data, size), local = false;
	size_t parent_len, start = 0;
	const char *base;
	char *s;
	int r;

	r = vs_path_check(path, size);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENAMETOOLONG);
	FUZZ_CHECK((r == 0) == valid);
	FUZZ_CHECK((vs_path_syncable(path, size) == 0) ==
		   ref_utf8_no_controls(data, size));
	if (!valid || size == 0)
		return 0;

	s = fuzz_cstr(data, size);
	base = vs_path_basename(s, &parent_len);
	FUZZ_CHECK(vs_name_check(base, strlen(base)) == 0);
	FUZZ_CHECK(base == s ? parent_len == 0
			     : parent_len + 1 + strlen(base) == size &&
				   s[parent_len] == '/');
	while (start < size) {
		const char *slash = memchr(s + start, '/', size - start);
		size_t n = (slash ? (size_t)(slash - s) : size) - start;

		for (int i = 0; names[i]; i++)
			if (strlen(names[i]) == n &&
			    !memcmp(names[i], s + start, n))
				local = true;
		start += n + 1;
	}
	FUZZ_CHECK(vs_path_is_local(&rules, s) == local);
	free(s);
	return 0;
}
