/*
 * test_relay.c - unit tests of the pure helpers of sync/relay.c
 * (include/vsync/relay.h): the manifest:{id} hash value of an entry,
 * which vs_redis_manifest_load() reads back at a cold mount and the mount
 * then saves in the cache dir (manifest.c's format).
 *
 * Covers:
 *  - format -> parse round trips of a file, a directory and a symlink
 *    whose target holds spaces;
 *  - parse rejecting what the cache format would not take back: a symlink
 *    target with a NUL, or longer than VS_PATH_MAX (found by
 *    tests/fuzz/fuzz_relay_entry), or a size over INT64_MAX (an off_t),
 *    also behind leading white space.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/path.h"
#include "vsync/relay.h"

#include "unit_check.h"

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void round_trip(const struct vs_manifest_entry *e, const char *want)
{
	char out[VS_RELAY_ENTRY_MAX];
	struct vs_manifest_entry got = {0};
	int n = vs_relay_entry_format(out, sizeof(out), e);

	check_int((long long)strlen(want), n, "format of '%s'", want);
	check_str(want, out, "formatted entry");
	check_ret(0, vs_relay_entry_parse(&got, out, (size_t)n), "parse '%s'",
		  out);
	check_int(e->kind, got.kind, "kind of '%s'", out);
	check_int(e->mode, got.mode, "mode of '%s'", out);
	check_int((long long)e->size, (long long)got.size, "size of '%s'", out);
	check_int(e->version, got.version, "version of '%s'", out);
	check_int(e->mtime_ns, got.mtime_ns, "mtime_ns of '%s'", out);
	check_str(e->kind == VS_KIND_DIR ? "" : e->hash, got.hash,
		  "hash of '%s'", out);
	if (e->kind == VS_KIND_SYMLINK)
		check_str(e->target, got.target, "target of '%s'", out);
	else
		check_ptr(NULL, got.target, "target of '%s'", out);
}

static void test_round_trip(void **state)
{
	struct vs_manifest_entry file = {.kind = VS_KIND_FILE,
					 .mode = 0644,
					 .size = 17,
					 .version = 3,
					 .mtime_ns = 1795661464624454000,
					 .hash = HASH};
	struct vs_manifest_entry dir = {
	    .kind = VS_KIND_DIR, .mode = 0755, .version = 1};
	struct vs_manifest_entry link = {.kind = VS_KIND_SYMLINK,
					 .target = "../a b",
					 .mode = 0777,
					 .size = 6,
					 .version = 2,
					 .hash = HASH};

	(void)state;
	round_trip(&file, "file 644 17 3 1795661464624454000 " HASH);
	round_trip(&dir, "dir 755 0 1 0 -");
	round_trip(&link, "symlink 777 6 2 0 " HASH " ../a b");
}

/* Parse @len bytes of @value (NUL-terminated after them, as Redis
 * replies are). */
static int parse(const char *value, size_t len)
{
	struct vs_manifest_entry e;
	char *copy = malloc(len + 1);
	int r;

	assert_non_null(copy);
	memcpy(copy, value, len);
	copy[len] = '\0';
	r = vs_relay_entry_parse(&e, copy, len);
	free(copy);
	return r;
}

static int parse_str(const char *value)
{
	return parse(value, strlen(value));
}

static void test_symlink_target(void **state)
{
	static const char nul[] = "symlink 777 6 2 0 " HASH " ../a\0b";
	const char *head = "symlink 777 4096 2 0 " HASH " ";
	size_t hl = strlen(head);
	char *buf = malloc(hl + VS_PATH_MAX + 2);

	(void)state;
	assert_non_null(buf);
	check_ret(-EBADMSG, parse(nul, sizeof(nul) - 1),
		  "parse of a target with a NUL");
	memcpy(buf, head, hl);
	memset(buf + hl, 'x', VS_PATH_MAX + 1);
	check_ret(0, parse(buf, hl + VS_PATH_MAX),
		  "parse of a VS_PATH_MAX-byte target");
	check_ret(-EBADMSG, parse(buf, hl + VS_PATH_MAX + 1),
		  "parse of a target over VS_PATH_MAX");
	check_ret(-EBADMSG, parse(head, hl), "parse of an empty target");
	free(buf);
}

static void test_size(void **state)
{
	(void)state;
	check_ret(0, parse_str("file 644 9223372036854775807 3 1 " HASH),
		  "parse of size INT64_MAX");
	check_ret(-EBADMSG, parse_str("file 644 9223372036854775808 3 1 " HASH),
		  "parse of size INT64_MAX + 1");
	check_ret(-EBADMSG,
		  parse_str("file 644 18446744073709551615 3 1 " HASH),
		  "parse of size UINT64_MAX");
	check_ret(-EBADMSG, parse_str("file 644 \t-1 3 1 " HASH),
		  "parse of size '\\t-1'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_symlink_target),
	    cmocka_unit_test(test_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
