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
 *    also behind leading white space;
 *  - the NOTIFY payload a relay or a PostgreSQL-mode mount acts on
 *    (vs_pg_notify_parse(), sync/pg.c): exactly PostgreSQL's
 *    json_build_object('project_id', P, 'seq', N)::text; anything else any
 *    role can send on the channel (junk, a member more, an upper-case or
 *    short id, seq 0, a seq over int64) is not a hint.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/path.h"
#include "vsync/pg.h"
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

#define PID "0b6f3a1c-2d4e-4f5a-8b9c-0d1e2f3a4b5c"

static void test_notify_payload(void **state)
{
	static const char *const junk[] = {
	    "",
	    "x",
	    "junk1",
	    "null",
	    "42",
	    "\"" PID "\"",
	    "[\"" PID "\", 1]",
	    "{}",
	    "{\"seq\" : 3}",
	    "{\"project_id\" : null, \"seq\" : 3}",
	    "{\"project_id\" : 7, \"seq\" : 3}",
	    "{\"project_id\" : \"0B6F3A1C-2D4E-4F5A-8B9C-0D1E2F3A4B5C\"}",
	    "{\"project_id\" : \"0b6f3a1c2d4e4f5a8b9c0d1e2f3a4b5c\"}",
	    "{\"project_id\" : \"0b6f3a1c-2d4e-4f5a-8b9c-0d1e2f3a4b5\"}",
	    "{\"project_id\" : \"" PID "x\"}",
	    "{\"project_id\" : \"0b6f3a1c-2d4e-4f5a-8b9c-0d1e2f3a4b5\\u0000\"}",
	    "{\"project_id\" : \"" PID "\", \"seq\" : 0}",
	    "{\"project_id\" : \"" PID "\", \"seq\" : -1}",
	    "{\"project_id\" : \"" PID "\", \"seq\" : \"3\"}",
	    "{\"project_id\" : \"" PID "\", \"seq\" : 3.5}",
	    "{\"project_id\" : \"" PID "\", \"seq\" : 99999999999999999999}",
	    "{\"project_id\" : \"" PID "\", \"seq\" : 3, \"x\" : 1}",
	    "{\"project_id\" : \"" PID "\", \"project_id\" : \"" PID "\"}",
	    "{\"project_id\" : \"" PID "\", \"seq\" : 3} junk",
	    "{\"project_id\" : \"" PID "\", \"seq\" : 3",
	    "junk {\"project_id\" : \"" PID "\", \"seq\" : 3}",
	};
	char id[VS_UUID_BUFSZ];
	int64_t seq;

	(void)state;
	/* PostgreSQL's json_build_object(...)::text, as sql/functions.sql */
	check_ret(0,
		  vs_pg_notify_parse(
		      "{\"project_id\" : \"" PID "\", \"seq\" : 42}", id, &seq),
		  "parse of the payload vsync__record sends");
	check_str(PID, id, "its project id");
	check_int(42, seq, "its seq");
	check_ret(0,
		  vs_pg_notify_parse("{\"seq\":9223372036854775807,"
				     "\"project_id\":\"" PID "\"}",
				     id, &seq),
		  "parse of a compact payload, seq first");
	check_int(INT64_MAX, seq, "seq INT64_MAX");
	check_ret(0,
		  vs_pg_notify_parse("{\"project_id\":\"" PID "\"}", id, &seq),
		  "parse of a payload without seq");
	check_int(0, seq, "no seq: 0");
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		seq = 5;
		check_ret(-EBADMSG, vs_pg_notify_parse(junk[i], id, &seq),
			  "parse of junk payload '%s'", junk[i]);
		check_int(0, seq, "seq of junk payload '%s'", junk[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_symlink_target),
	    cmocka_unit_test(test_size),
	    cmocka_unit_test(test_notify_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
