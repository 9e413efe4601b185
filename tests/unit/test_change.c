/*
 * test_change.c - unit tests of sync/change.c (include/vsync/change.h):
 * the validation of a change that comes from a Redis stream entry or a
 * database row.
 *
 * Covers: a valid update, create of a symlink, mkdir, delete (few fields)
 * and rename; stream ids; and rejection of each hostile or malformed
 * input: missing seq/op/path/kind/version, unknown op and kind, "../x",
 * "/abs", an empty path, a too-long component, rename without old_path,
 * bad mode, a hash of the wrong length or with uppercase, a NUL in a value,
 * a value over the field limit, mkdir of a file, update of a directory.
 * The optional conflict field: absent or "0" is 0, "2" below version 3 is
 * taken; a conflict not below the version, negative, signed, with a
 * leading zero, not a number or over INT32_MAX is rejected.
 * The optional delta_base field: absent is "", 64 lowercase hex is taken;
 * a wrong length, uppercase or a non-hex character is rejected.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/change.h"

#include "unit_check.h"

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fields {
	const char *names[16];
	const char *values[16];
	size_t lengths[16];
	size_t n;
};

static void set(struct fields *f, const char *name, const char *value)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->names[i], name) == 0) {
			f->values[i] = value;
			f->lengths[i] = value ? strlen(value) : 0;
			return;
		}
	}
	f->names[f->n] = name;
	f->values[f->n] = value;
	f->lengths[f->n] = value ? strlen(value) : 0;
	f->n++;
}

static struct fields update_fields(void)
{
	struct fields f = {0};

	set(&f, "seq", "42");
	set(&f, "op", "update");
	set(&f, "path", "src/App.jsx");
	set(&f, "kind", "file");
	set(&f, "mode", "644");
	set(&f, "size", "17");
	set(&f, "hash", HASH);
	set(&f, "version", "3");
	set(&f, "mtime_ns", "1795661464624454000");
	set(&f, "author", "editor");
	set(&f, "unknown_field", "ignored");
	return f;
}

static int parse(struct vs_change *c, const struct fields *f)
{
	char why[256];

	return vs_change_parse(c, f->names, f->values, f->lengths, f->n, why,
			       sizeof(why));
}

static void test_valid_update(void **state)
{
	struct fields f = update_fields();
	struct vs_change *c = malloc(sizeof(*c));

	(void)state;
	check_ret(0, parse(c, &f), "parse of a valid update");
	check_int(42, c->seq, "seq");
	check_int(VS_OP_UPDATE, c->op, "op");
	check_str("src/App.jsx", c->path, "path");
	check_str("src/App.jsx", c->state.path, "state.path");
	check_int(0644, c->state.mode, "mode");
	check_int(17, c->state.size, "size");
	check_int(3, c->state.version, "version");
	check_str(HASH, c->state.hash, "hash");
	check_str("editor", c->author, "author");
	free(c);
}

static void test_valid_other_ops(void **state)
{
	struct vs_change *c = malloc(sizeof(*c));
	struct fields f;

	(void)state;
	f = update_fields();
	set(&f, "op", "create");
	set(&f, "kind", "symlink");
	set(&f, "target", "../lib/x.js");
	check_ret(0, parse(c, &f), "parse of a symlink create");
	check_str("../lib/x.js", c->state.target, "symlink target");
	check_int(11, c->state.size, "symlink size is the target's length");

	f = (struct fields){0};
	set(&f, "seq", "7");
	set(&f, "op", "delete");
	set(&f, "path", "src/old");
	set(&f, "kind", "dir");
	set(&f, "version", "2");
	check_ret(0, parse(c, &f), "parse of a delete with few fields");
	check_int(VS_OP_DELETE, c->op, "op");

	f = update_fields();
	set(&f, "op", "mkdir");
	set(&f, "kind", "dir");
	set(&f, "size", NULL);
	set(&f, "hash", NULL);
	check_ret(0, parse(c, &f), "parse of a mkdir");

	f = update_fields();
	set(&f, "op", "rename");
	set(&f, "old_path", "src/Old.jsx");
	check_ret(0, parse(c, &f), "parse of a rename");
	check_str("src/Old.jsx", c->old_path, "old_path");
	free(c);
}

static void test_stream_id(void **state)
{
	int64_t seq = 0;

	(void)state;
	check_ret(0, vs_change_parse_id("42-0", &seq), "id 42-0");
	check_int(42, seq, "seq of 42-0");
	check_ret(-EBADMSG, vs_change_parse_id("42-1", &seq), "id 42-1");
	check_ret(-EBADMSG, vs_change_parse_id("0-0", &seq), "id 0-0");
	check_ret(-EBADMSG, vs_change_parse_id("-5-0", &seq), "id -5-0");
	check_ret(-EBADMSG, vs_change_parse_id("abc", &seq), "id abc");
	check_ret(-EBADMSG, vs_change_parse_id("99999999999999999999-0", &seq),
		  "id overflowing int64");
}

static void expect_reject(const char *what, const char *name, const char *value)
{
	struct vs_change *c = malloc(sizeof(*c));
	struct fields f = update_fields();

	set(&f, name, value);
	check_ret(-EBADMSG, parse(c, &f), "%s (%s=%.40s)", what, name,
		  value ? value : "(absent)");
	free(c);
}

static void test_rejects(void **state)
{
	char *long_name = malloc(300), *huge = malloc(VS_CHANGE_FIELD_MAX + 10);

	(void)state;
	memset(long_name, 'a', 299);
	long_name[299] = '\0';
	memset(huge, 'a', VS_CHANGE_FIELD_MAX + 9);
	huge[VS_CHANGE_FIELD_MAX + 9] = '\0';
	expect_reject("missing seq", "seq", NULL);
	expect_reject("seq 0", "seq", "0");
	expect_reject("seq with junk", "seq", "12x");
	expect_reject("missing op", "op", NULL);
	expect_reject("unknown op", "op", "chown");
	expect_reject("missing path", "path", NULL);
	expect_reject("dot-dot path", "path", "../../etc/passwd");
	expect_reject("absolute path", "path", "/etc/passwd");
	expect_reject("empty path", "path", "");
	expect_reject("too-long component", "path", long_name);
	expect_reject("value over the field limit", "path", huge);
	expect_reject("unknown kind", "kind", "fifo");
	expect_reject("missing version", "version", NULL);
	expect_reject("bad mode", "mode", "99");
	expect_reject("mode too big", "mode", "17777");
	expect_reject("short hash", "hash", "abc");
	expect_reject(
	    "uppercase hash", "hash",
	    "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef");
	expect_reject("negative size", "size", "-1");
	expect_reject("missing mtime", "mtime_ns", NULL);
	expect_reject("mkdir of a file", "op", "mkdir");
	expect_reject("update of a directory", "kind", "dir");
	expect_reject("rename without old_path", "op", "rename");
	free(long_name);
	free(huge);
}

static void test_nul_in_value(void **state)
{
	struct vs_change *c = malloc(sizeof(*c));
	struct fields f = update_fields();

	(void)state;
	set(&f, "path", "src/a");
	f.values[2] = "src/a\0b";
	f.lengths[2] = 7;
	check_ret(-EBADMSG, parse(c, &f), "path with an embedded NUL");
	free(c);
}

static void test_conflict(void **state)
{
	static const char *const bad[] = {
	    "3",
	    "4",
	    "-1",
	    "-0",
	    "+2",
	    "02",
	    "2x",
	    "",
	    " 2",
	    "2147483648",
	    "99999999999999999999",
	};
	struct vs_change *c = malloc(sizeof(*c));
	struct fields f;

	(void)state;
	f = update_fields();
	check_ret(0, parse(c, &f), "update without conflict");
	check_int(0, c->conflict, "no conflict field: 0");
	set(&f, "conflict", "0");
	check_ret(0, parse(c, &f), "conflict \"0\"");
	check_int(0, c->conflict, "conflict \"0\": 0");
	set(&f, "conflict", "2");
	check_ret(0, parse(c, &f), "conflict \"2\" at version 3");
	check_int(2, c->conflict, "conflict 2");
	set(&f, "conflict", NULL);
	check_ret(0, parse(c, &f), "conflict NULL (absent)");
	check_int(0, c->conflict, "conflict NULL: 0");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = update_fields();
		set(&f, "conflict", bad[i]);
		check_ret(-EBADMSG, parse(c, &f),
			  "conflict \"%s\" at version 3", bad[i]);
	}
	free(c);
}

static void test_delta_base(void **state)
{
	static const char *const bad[] = {
	    "",
	    "0123",
	    HASH "0",
	    "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	    "0123456789abcdeg0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	struct vs_change *c = malloc(sizeof(*c));
	struct fields f;

	(void)state;
	f = update_fields();
	check_ret(0, parse(c, &f), "update without delta_base");
	check_str("", c->delta_base, "no delta_base field: \"\"");
	set(&f, "delta_base", HASH);
	check_ret(0, parse(c, &f), "delta_base of 64 hex");
	check_str(HASH, c->delta_base, "delta_base taken");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = update_fields();
		set(&f, "delta_base", bad[i]);
		check_ret(-EBADMSG, parse(c, &f), "delta_base \"%s\"", bad[i]);
	}
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_update),
	    cmocka_unit_test(test_valid_other_ops),
	    cmocka_unit_test(test_stream_id),
	    cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_nul_in_value),
	    cmocka_unit_test(test_conflict),
	    cmocka_unit_test(test_delta_base),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
