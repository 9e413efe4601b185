/*
 * test_path.c - unit tests of sync/path.c (include/vsync/path.h).
 *
 * Covers:
 *  - vs_path_check on valid paths: the root "", plain and nested paths,
 *    Unicode (UTF-8) names, names with spaces and dots, a 255-byte
 *    component, a path of exactly VS_PATH_MAX (4096) bytes, and a
 *    non-NUL-terminated buffer checked by explicit length;
 *  - vs_path_check on invalid paths: leading or trailing '/', "//", "."
 *    and ".." components anywhere, an embedded NUL reached through the
 *    explicit length (-EINVAL), a 256-byte component and a 4097-byte path
 *    (-ENAMETOOLONG);
 *  - vs_name_check: empty, ".", "..", '/', NUL, 255 vs 256 bytes;
 *  - vs_name_is_local / vs_path_is_local with the default names:
 *    node_modules at any depth, near misses ("node_modules2", "src/dist.js")
 *    not local, "a/dist/x" local, NULL rules and custom rules;
 *  - vs_path_basename on top-level and nested paths;
 *  - vs_path_syncable: ASCII, 2/3/4-byte UTF-8 (U+00E9, U+20AC, U+1F600)
 *    accepted; control characters (newline, tab, 0x1f, DEL), a lone
 *    continuation byte, a truncated sequence, overlong forms (C0 80,
 *    E0 80 AF), UTF-16 surrogates (ED A0 80), code points over U+10FFFF
 *    (F4 90 80 80) and 0xF8/0xFF lead bytes refused with -EINVAL.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/path.h"

#include "unit_check.h"

static const struct vs_local_rules default_rules = {
    .names = (const char **)vs_local_default_names,
};

/* vs_path_check on a NUL-terminated string */
static void check_path(const char *path, int want)
{
	check_ret(want, vs_path_check(path, strlen(path)),
		  "vs_path_check(\"%.80s\"%s, %zu)", path,
		  strlen(path) > 80 ? "..." : "", strlen(path));
}

/* A buffer of @len bytes of @c, NUL-terminated; freed by the caller. */
static char *filled(size_t len, char c)
{
	char *s = malloc(len + 1);

	assert_non_null(s);
	memset(s, c, len);
	s[len] = '\0';
	return s;
}

static void test_valid_paths(void **state)
{
	(void)state;
	check_path("", 0);
	check_path("a", 0);
	check_path("a/b/c", 0);
	check_path("src/app.tsx", 0);
	check_path(".gitignore", 0);
	check_path("...", 0);
	check_path("a/.b/..c/c..", 0);
	check_path("with space/and\ttab", 0);
	check_path("new\nline", 0);
	check_path("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt", 0);
	check_path("emoji/\xf0\x9f\x98\x80", 0);
}

static void test_long_component_and_path(void **state)
{
	char *name = filled(VS_NAME_MAX, 'n');
	char *path = filled(VS_PATH_MAX, 'p');
	char *nested = malloc(VS_NAME_MAX + 3);

	(void)state;
	assert_non_null(nested);
	check_path(name, 0);

	/* "x/" + 255 bytes: the long component need not be the first */
	nested[0] = 'x';
	nested[1] = '/';
	memcpy(nested + 2, name, VS_NAME_MAX + 1);
	check_path(nested, 0);

	/* exactly 4096 bytes: 40 components of 99 bytes and one of 96 */
	for (size_t i = 99; i < VS_PATH_MAX - 1; i += 100)
		path[i] = '/';
	check_path(path, 0);

	free(nested);
	free(name);
	free(path);
}

static void test_too_long(void **state)
{
	char *name = filled(VS_NAME_MAX + 1, 'n');
	char *nested = malloc(VS_NAME_MAX + 4);
	char *path = filled(VS_PATH_MAX + 1, 'p');

	(void)state;
	assert_non_null(nested);
	check_path(name, -ENAMETOOLONG);

	memcpy(nested, "a/", 2);
	memcpy(nested + 2, name, VS_NAME_MAX + 2);
	check_path(nested, -ENAMETOOLONG);

	/* 4097 bytes of short components: too long as a whole */
	for (size_t i = 1; i < VS_PATH_MAX + 1; i += 2)
		path[i] = '/';
	check_path(path, -ENAMETOOLONG);

	free(nested);
	free(name);
	free(path);
}

static void test_invalid_paths(void **state)
{
	static const char *const bad[] = {
	    "/",     "/a",   "a/",   "/a/",    "a//b",
	    "//",    ".",    "..",   "./a",    "a/.",
	    "a/./b", "../x", "a/..", "a/../b", "../../etc/passwd",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_path(bad[i], -EINVAL);
}

static void test_explicit_length(void **state)
{
	static const char nul_inside[] = "a\0b";
	static const char nul_component[] = "a/\0/b";
	static const char unterminated[4] = {'a', '/', 'b', 'c'};

	(void)state;
	check_ret(-EINVAL, vs_path_check(nul_inside, 3),
		  "vs_path_check(\"a\\0b\", 3)");
	check_ret(-EINVAL, vs_path_check(nul_component, 5),
		  "vs_path_check(\"a/\\0/b\", 5)");
	/* the length, not a NUL, ends the path */
	check_ret(0, vs_path_check(nul_inside, 1), "vs_path_check(\"a\", 1)");
	check_ret(0, vs_path_check(unterminated, 4),
		  "vs_path_check(unterminated \"a/bc\", 4)");
	check_ret(0, vs_path_check("a/b/c", 3), "vs_path_check(\"a/b\", 3)");
	check_ret(-EINVAL, vs_path_check("a/b/c", 2),
		  "vs_path_check(\"a/\", 2)");
}

static void test_name_check(void **state)
{
	char *ok = filled(VS_NAME_MAX, 'x');
	char *big = filled(VS_NAME_MAX + 1, 'x');

	(void)state;
	check_ret(0, vs_name_check("a", 1), "vs_name_check(\"a\")");
	check_ret(0, vs_name_check("...", 3), "vs_name_check(\"...\")");
	check_ret(0, vs_name_check(".env", 4), "vs_name_check(\".env\")");
	check_ret(0, vs_name_check("\xc3\xa9", 2),
		  "vs_name_check(\"\\xc3\\xa9\")");
	check_ret(0, vs_name_check(ok, VS_NAME_MAX),
		  "vs_name_check(255 bytes)");
	check_ret(-ENAMETOOLONG, vs_name_check(big, VS_NAME_MAX + 1),
		  "vs_name_check(256 bytes)");
	check_ret(-EINVAL, vs_name_check("", 0), "vs_name_check(\"\")");
	check_ret(-EINVAL, vs_name_check(".", 1), "vs_name_check(\".\")");
	check_ret(-EINVAL, vs_name_check("..", 2), "vs_name_check(\"..\")");
	check_ret(-EINVAL, vs_name_check("a/b", 3), "vs_name_check(\"a/b\")");
	check_ret(-EINVAL, vs_name_check("/", 1), "vs_name_check(\"/\")");
	check_ret(-EINVAL, vs_name_check("a\0b", 3),
		  "vs_name_check(\"a\\0b\")");
	free(ok);
	free(big);
}

static void check_local(const char *path, bool want)
{
	check_bool(want, vs_path_is_local(&default_rules, path),
		   "vs_path_is_local(defaults, \"%s\")", path);
}

static void test_default_local_paths(void **state)
{
	(void)state;
	check_local("node_modules", true);
	check_local("node_modules/react/index.js", true);
	check_local("packages/web/node_modules/react", true);
	check_local("a/b/c/d/node_modules", true);
	check_local("a/dist/x", true);
	check_local("dist", true);
	check_local(".vite/deps", true);
	check_local("app/.next/cache", true);
	check_local("build/out.o", true);
	check_local("x/.cache", true);

	check_local("", false);
	check_local("node_modules2", false);
	check_local("node_modules2/react", false);
	check_local("my_node_modules/x", false);
	check_local("src/dist.js", false);
	check_local("distribution/a", false);
	check_local("src/builder/x", false);
	check_local("Node_Modules/x", false);
	check_local("src/app.tsx", false);
}

static void test_name_is_local(void **state)
{
	static const char *custom_names[] = {"target", NULL};
	const struct vs_local_rules custom = {.names = custom_names};
	const struct vs_local_rules empty = {.names = NULL};

	(void)state;
	check_bool(true, vs_name_is_local(&default_rules, "node_modules", 12),
		   "vs_name_is_local(defaults, \"node_modules\")");
	/* the length decides: a prefix of a longer buffer */
	check_bool(true, vs_name_is_local(&default_rules, "distXYZ", 4),
		   "vs_name_is_local(defaults, \"dist\" of \"distXYZ\", 4)");
	check_bool(false, vs_name_is_local(&default_rules, "dist", 3),
		   "vs_name_is_local(defaults, \"dis\", 3)");
	check_bool(false, vs_name_is_local(&default_rules, "node_modules2", 13),
		   "vs_name_is_local(defaults, \"node_modules2\")");
	check_bool(false, vs_name_is_local(&default_rules, "", 0),
		   "vs_name_is_local(defaults, \"\")");
	check_bool(false, vs_name_is_local(NULL, "dist", 4),
		   "vs_name_is_local(NULL rules, \"dist\")");
	check_bool(false, vs_name_is_local(&empty, "dist", 4),
		   "vs_name_is_local(names=NULL, \"dist\")");
	check_bool(false, vs_path_is_local(NULL, "node_modules/x"),
		   "vs_path_is_local(NULL rules, \"node_modules/x\")");
	check_bool(true, vs_path_is_local(&custom, "crates/a/target/debug"),
		   "vs_path_is_local({target}, \"crates/a/target/debug\")");
	check_bool(false, vs_path_is_local(&custom, "node_modules/x"),
		   "vs_path_is_local({target}, \"node_modules/x\")");
}

static void check_basename(const char *path, const char *want_base,
			   size_t want_parent_len)
{
	size_t parent_len = 12345;
	const char *base = vs_path_basename(path, &parent_len);

	check_str(want_base, base, "vs_path_basename(\"%s\")", path);
	check_int(want_parent_len, parent_len,
		  "vs_path_basename(\"%s\") parent length", path);
	/* the result points into @path */
	check_ptr(path + strlen(path) - strlen(want_base), base,
		  "vs_path_basename(\"%s\") pointer into the path", path);
}

static void test_basename(void **state)
{
	(void)state;
	check_basename("a", "a", 0);
	check_basename("a/b", "b", 1);
	check_basename("src/lib/x.c", "x.c", 7);
	check_basename("\xc3\xa9/\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9", 2);
	check_basename("", "", 0);
}

static void check_syncable(const char *path, int want, const char *what)
{
	check_ret(want, vs_path_syncable(path, strlen(path)),
		  "vs_path_syncable(%s)", what);
}

static void test_syncable(void **state)
{
	(void)state;
	check_syncable("src/app.js", 0, "ASCII");
	check_syncable("caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80", 0,
		       "2-, 3- and 4-byte UTF-8");
	check_syncable("a\nb", -EINVAL, "a newline");
	check_syncable("a\tb", -EINVAL, "a tab");
	check_syncable("a\x1f", -EINVAL, "0x1f");
	check_syncable("a\x7f", -EINVAL, "DEL");
	check_syncable("\x80", -EINVAL, "a lone continuation byte");
	check_syncable("a\xc3", -EINVAL, "a truncated sequence");
	check_syncable("\xe2\x82", -EINVAL, "a truncated 3-byte sequence");
	check_syncable("\xc0\x80", -EINVAL, "overlong NUL");
	check_syncable("\xe0\x80\xaf", -EINVAL, "overlong '/'");
	check_syncable("\xed\xa0\x80", -EINVAL, "a UTF-16 surrogate");
	check_syncable("\xf4\x90\x80\x80", -EINVAL, "over U+10FFFF");
	check_syncable("\xf8\x88\x80\x80\x80", -EINVAL, "a 5-byte form");
	check_syncable("\xff", -EINVAL, "0xff");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_paths),
	    cmocka_unit_test(test_long_component_and_path),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_invalid_paths),
	    cmocka_unit_test(test_explicit_length),
	    cmocka_unit_test(test_name_check),
	    cmocka_unit_test(test_default_local_paths),
	    cmocka_unit_test(test_name_is_local),
	    cmocka_unit_test(test_basename),
	    cmocka_unit_test(test_syncable),
	};

	return cmocka_run_group_tests_name("path", tests, NULL, NULL);
}
