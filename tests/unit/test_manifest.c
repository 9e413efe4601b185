/*
 * test_manifest.c - unit tests of sync/manifest.c (include/vsync/manifest.h).
 *
 * Covers:
 *  - vs_manifest_add copying the entry's strings (the caller's may go);
 *  - vs_manifest_serialize -> vs_manifest_parse round trip of files, dirs
 *    and symlinks with every field kept (kind, mode incl. setuid/sticky
 *    bits, size, negative and large version/mtime, hash, target), Unicode
 *    paths and paths/targets with spaces and newlines, the project id and
 *    seq; an empty manifest without a project id ("-" on disk);
 *  - the exact header line of the cache format;
 *  - vs_manifest_parse rejecting, with -EBADMSG and no entries left in the
 *    manifest: bad or missing header, every truncation of a valid file,
 *    bad hashes (uppercase, short, non-hex, missing on a file), invalid
 *    paths ("../x", "/abs", "a//b", "a/", empty), a symlink target on a
 *    file or a dir, a NUL in a target, trailing garbage, a count that does
 *    not match the entries, an unknown kind, a mode above 07777, a
 *    negative size or one above INT64_MAX (sscanf would wrap "-1"), a
 *    path length that does not match the bytes;
 *  - vs_kind_parse / vs_kind_name;
 *  - vs_manifest_diff: added, deleted, and changed (content, kind,
 *    symlink target, mode) paths in path order, a version or mtime alone
 *    not reported, both directions, a tree against itself, the callback
 *    stopping the walk, an unsorted tree refused.
 *
 * Each case gets a fresh manifest from setup (released in teardown).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/manifest.h"

#include "unit_check.h"

#define PROJECT "0f8fad5b-d9cb-469f-a165-70867728950e"
#define H_ABC	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define H_EMPTY                                                                \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ------------------------------------------------------------ fixtures */

struct fixture {
	struct vs_manifest in;	/* built by the test */
	struct vs_manifest out; /* filled by vs_manifest_parse */
	char *buf;		/* serialised form */
	size_t len;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	vs_manifest_init(&f->in);
	vs_manifest_init(&f->out);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	vs_manifest_release(&f->in);
	vs_manifest_release(&f->out);
	free(f->buf);
	free(f);
	return 0;
}

static void add(struct vs_manifest *m, enum vs_kind kind, const char *path,
		const char *target, uint32_t mode, uint64_t size,
		int64_t version, int64_t mtime_ns, const char *hash)
{
	struct vs_manifest_entry e = {
	    .path = (char *)path,
	    .target = (char *)target,
	    .kind = kind,
	    .mode = mode,
	    .size = size,
	    .version = version,
	    .mtime_ns = mtime_ns,
	};

	strcpy(e.hash, hash);
	check_ret(0, vs_manifest_add(m, &e), "vs_manifest_add(\"%s\")", path);
}

/* Compare every field of two entries; @i names the entry in messages. */
static void check_entry(const struct vs_manifest_entry *want,
			const struct vs_manifest_entry *got, size_t i)
{
	check_str(want->path, got->path, "entry %zu path", i);
	check_str(vs_kind_name(want->kind), vs_kind_name(got->kind),
		  "entry %zu (%s) kind", i, want->path);
	if (want->target)
		check_str(want->target, got->target, "entry %zu (%s) target", i,
			  want->path);
	else
		check_ptr(NULL, got->target, "entry %zu (%s) target", i,
			  want->path);
	check_int(want->mode, got->mode, "entry %zu (%s) mode", i, want->path);
	check_int(want->size, got->size, "entry %zu (%s) size", i, want->path);
	check_int(want->version, got->version, "entry %zu (%s) version", i,
		  want->path);
	check_int(want->mtime_ns, got->mtime_ns, "entry %zu (%s) mtime_ns", i,
		  want->path);
	check_str(want->hash, got->hash, "entry %zu (%s) hash", i, want->path);
}

static void round_trip(struct fixture *f)
{
	check_ret(0, vs_manifest_serialize(&f->in, &f->buf, &f->len),
		  "vs_manifest_serialize");
	check_int(strlen(f->buf), f->len,
		  "serialised length vs strlen (no NUL inside)");
	check_ret(0, vs_manifest_parse(&f->out, f->buf, f->len),
		  "vs_manifest_parse of serialised output:\n%.400s", f->buf);
	check_str(f->in.project_id, f->out.project_id, "project id");
	check_int(f->in.seq, f->out.seq, "seq");
	check_int(f->in.n, f->out.n, "number of entries");
	for (size_t i = 0; i < f->in.n; i++)
		check_entry(&f->in.entries[i], &f->out.entries[i], i);
}

/* Parse @len bytes of @buf into the fixture's empty manifest and expect
 * -EBADMSG with nothing left in it. */
static void check_reject_len(struct fixture *f, const char *why,
			     const char *buf, size_t len)
{
	int r;

	vs_manifest_release(&f->out);
	vs_manifest_init(&f->out);
	r = vs_manifest_parse(&f->out, buf, len);
	check_ret(-EBADMSG, r, "vs_manifest_parse of %s (%zu bytes):\n%.*s",
		  why, len, (int)(len < 300 ? len : 300), buf);
	check_int(0, f->out.n, "entries left after rejecting %s", why);
	check_ptr(NULL, f->out.entries, "entry array left after rejecting %s",
		  why);
}

static void check_reject(struct fixture *f, const char *why, const char *buf)
{
	check_reject_len(f, why, buf, strlen(buf));
}

/* ------------------------------------------------------------ add */

static void test_add_copies(void **state)
{
	struct fixture *f = *state;
	char path[] = "src/main.c", target[] = "elsewhere";

	add(&f->in, VS_KIND_FILE, path, NULL, 0644, 3, 1, 2, H_ABC);
	add(&f->in, VS_KIND_SYMLINK, "l", target, 0777, 9, 1, 2, H_ABC);
	memset(path, 'X', sizeof(path) - 1);
	memset(target, 'X', sizeof(target) - 1);
	check_int(2, f->in.n, "entries after two adds");
	check_str("src/main.c", f->in.entries[0].path,
		  "path copied by vs_manifest_add");
	check_str("elsewhere", f->in.entries[1].target,
		  "target copied by vs_manifest_add");
	check_ptr(NULL, f->in.entries[0].target, "target of a file");
}

static void test_add_many(void **state)
{
	struct fixture *f = *state;
	char path[32];

	/* past the first growth of the entry array */
	for (int i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "d/f%04d", i);
		add(&f->in, VS_KIND_FILE, path, NULL, 0644, (uint64_t)i, i, i,
		    H_ABC);
	}
	check_int(1000, f->in.n, "entries after 1000 adds");
	check_str("d/f0999", f->in.entries[999].path, "last entry path");
	round_trip(f);
}

/* ------------------------------------------------------------ round trip */

static void test_round_trip(void **state)
{
	struct fixture *f = *state;

	strcpy(f->in.project_id, PROJECT);
	f->in.seq = 9007199254740993LL;
	add(&f->in, VS_KIND_DIR, "src", NULL, 0755, 0, 1, 1700000000000000000LL,
	    "");
	add(&f->in, VS_KIND_FILE, "src/app.tsx", NULL, 0644, 3, 7,
	    1700000000123456789LL, H_ABC);
	add(&f->in, VS_KIND_FILE, "src/empty", NULL, 0600, 0, 1, 0, H_EMPTY);
	add(&f->in, VS_KIND_FILE, "bin/run", NULL, 04755, 1ULL << 40, INT64_MAX,
	    -1000000000LL, H_ABC);
	add(&f->in, VS_KIND_DIR, "tmp", NULL, 01777, 0, -1, INT64_MIN, "");
	add(&f->in, VS_KIND_FILE,
	    "caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
	    "\xf0\x9f\x98\x80.md",
	    NULL, 0644, 42, 3, 5, H_ABC);
	add(&f->in, VS_KIND_FILE, "with space/new\nline\n.txt", NULL, 0644, 1,
	    2, 3, H_ABC);
	add(&f->in, VS_KIND_FILE, "trailing space ", NULL, 0644, 1, 2, 3,
	    H_ABC);
	add(&f->in, VS_KIND_SYMLINK, "link", "src/app.tsx", 0777, 11, 4, 5,
	    H_ABC);
	add(&f->in, VS_KIND_SYMLINK, "odd link", "../a b\nc\td", 0777, 11, 4, 5,
	    H_ABC);
	add(&f->in, VS_KIND_FILE, "huge", NULL, 0644, INT64_MAX, 1, 1, H_ABC);
	add(&f->in, VS_KIND_SYMLINK, "abs", "/etc/hostname", 0777, 13, 4, 5,
	    H_ABC);
	add(&f->in, VS_KIND_SYMLINK, "empty-target", NULL, 0777, 0, 4, 5,
	    H_EMPTY);
	add(&f->in, VS_KIND_DIR, "dir-with-hash", NULL, 0700, 0, 1, 1, H_ABC);
	round_trip(f);
}

static void test_round_trip_empty(void **state)
{
	struct fixture *f = *state;

	round_trip(f);
	check_str("vsync-manifest 1 - 0 0\n", f->buf,
		  "serialised empty manifest without project id");
}

static void test_header_format(void **state)
{
	struct fixture *f = *state;

	strcpy(f->in.project_id, PROJECT);
	f->in.seq = 42;
	add(&f->in, VS_KIND_FILE, "a b", NULL, 0644, 3, 7, 99, H_ABC);
	add(&f->in, VS_KIND_SYMLINK, "l", "a b", 0777, 3, 8, 100, H_ABC);
	check_ret(0, vs_manifest_serialize(&f->in, &f->buf, &f->len),
		  "vs_manifest_serialize");
	check_str("vsync-manifest 1 " PROJECT " 42 2\n"
		  "file 644 3 7 99 " H_ABC " 3 0\na b\n"
		  "symlink 777 3 8 100 " H_ABC " 1 3\nla b\n",
		  f->buf, "serialised manifest");
}

/* ------------------------------------------------------------ rejects */

/* A header for @n entries followed by @body. */
static void with_header(char *out, size_t size, int n, const char *body)
{
	int w = snprintf(out, size, "vsync-manifest 1 " PROJECT " 5 %d\n%s", n,
			 body);

	if (w < 0 || (size_t)w >= size)
		fail_msg("test buffer of %zu bytes too small for %d", size, w);
}

static void test_reject_header(void **state)
{
	struct fixture *f = *state;

	check_reject(f, "an empty buffer", "");
	check_reject(f, "a header without newline",
		     "vsync-manifest 1 " PROJECT " 5 0");
	check_reject(f, "format version 2",
		     "vsync-manifest 2 " PROJECT " 5 0\n");
	check_reject(f, "a wrong magic", "vsync-manifesto 1 " PROJECT " 5 0\n");
	check_reject(f, "a missing count", "vsync-manifest 1 " PROJECT " 5\n");
	check_reject(f, "an extra header field",
		     "vsync-manifest 1 " PROJECT " 5 0 7\n");
	check_reject(f, "a non-numeric seq",
		     "vsync-manifest 1 " PROJECT " five 0\n");
	check_reject(f, "a 37-char project id",
		     "vsync-manifest 1 " PROJECT "x 5 0\n");
	check_reject(f, "garbage", "hello world\n");
}

static void test_reject_truncated(void **state)
{
	struct fixture *f = *state;

	strcpy(f->in.project_id, PROJECT);
	add(&f->in, VS_KIND_DIR, "d", NULL, 0755, 0, 1, 1, "");
	add(&f->in, VS_KIND_FILE, "d/file one", NULL, 0644, 3, 1, 1, H_ABC);
	add(&f->in, VS_KIND_SYMLINK, "d/l", "file one", 0777, 8, 1, 1, H_ABC);
	check_ret(0, vs_manifest_serialize(&f->in, &f->buf, &f->len),
		  "vs_manifest_serialize");
	/* every proper prefix is malformed */
	for (size_t len = 0; len < f->len; len++) {
		char why[64];

		snprintf(why, sizeof(why), "a prefix of %zu of %zu bytes", len,
			 f->len);
		check_reject_len(f, why, f->buf, len);
	}
	check_ret(0, vs_manifest_parse(&f->out, f->buf, f->len),
		  "vs_manifest_parse of the whole buffer");
	check_int(3, f->out.n, "entries parsed from the whole buffer");
}

static void test_reject_hash(void **state)
{
	struct fixture *f = *state;
	char buf[1024];

	with_header(
	    buf, sizeof(buf), 1,
	    "file 644 3 1 1 BA7816BF8F01CFEA414140DE5DAE2223B00361A39617"
	    "7A9CB410FF61F20015AD 1 0\na\n");
	check_reject(f, "an uppercase hash", buf);
	with_header(
	    buf, sizeof(buf), 1,
	    "file 644 3 1 1 a7816bf8f01cfea414140de5dae2223b00361a396177"
	    "a9cb410ff61f20015ad 1 0\na\n");
	check_reject(f, "a 63-digit hash", buf);
	with_header(buf, sizeof(buf), 1, "file 644 3 1 1 " H_ABC "0 1 0\na\n");
	check_reject(f, "a 65-digit hash", buf);
	with_header(
	    buf, sizeof(buf), 1,
	    "file 644 3 1 1 za7816bf8f01cfea414140de5dae2223b00361a39617"
	    "7a9cb410ff61f20015ad 1 0\na\n");
	check_reject(f, "a non-hex hash", buf);
	with_header(buf, sizeof(buf), 1, "file 644 3 1 1 - 1 0\na\n");
	check_reject(f, "a file without hash", buf);
	with_header(buf, sizeof(buf), 1, "symlink 777 3 1 1 - 1 1\nab\n");
	check_reject(f, "a symlink without hash", buf);
}

static void test_reject_path(void **state)
{
	static const struct {
		const char *why, *body;
	} cases[] = {
	    {"path \"../x\"", "file 644 3 1 1 " H_ABC " 4 0\n../x\n"},
	    {"path \"/abs\"", "file 644 3 1 1 " H_ABC " 4 0\n/abs\n"},
	    {"path \"a//b\"", "file 644 3 1 1 " H_ABC " 4 0\na//b\n"},
	    {"path \"a/\"", "dir 755 0 1 1 - 2 0\na/\n"},
	    {"path \"a/./b\"", "file 644 3 1 1 " H_ABC " 5 0\na/./b\n"},
	    {"an empty path", "dir 755 0 1 1 - 0 0\n\n"},
	    {"a path length past the bytes",
	     "file 644 3 1 1 " H_ABC " 9 0\nabc\n"},
	    {"a path length short of the newline",
	     "file 644 3 1 1 " H_ABC " 2 0\nabc\n"},
	    {"a path longer than VS_PATH_MAX",
	     "file 644 3 1 1 " H_ABC " 4097 0\nabc\n"},
	};
	struct fixture *f = *state;
	char buf[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		with_header(buf, sizeof(buf), 1, cases[i].body);
		check_reject(f, cases[i].why, buf);
	}
}

static void test_reject_path_with_nul(void **state)
{
	struct fixture *f = *state;
	char buf[1024];
	size_t len;

	with_header(buf, sizeof(buf), 1, "file 644 3 1 1 " H_ABC " 3 0\naXb\n");
	len = strlen(buf);
	buf[len - 3] = '\0'; /* "a\0b" */
	check_reject_len(f, "a NUL inside a path", buf, len);

	with_header(buf, sizeof(buf), 1,
		    "symlink 777 3 1 1 " H_ABC " 1 3\nlaXb\n");
	len = strlen(buf);
	buf[len - 3] = '\0'; /* target "a\0b" */
	check_reject_len(f, "a NUL inside a symlink target", buf, len);
}

static void test_reject_target_on_non_symlink(void **state)
{
	struct fixture *f = *state;
	char buf[1024];

	with_header(buf, sizeof(buf), 1,
		    "file 644 3 1 1 " H_ABC " 1 3\nabcd\n");
	check_reject(f, "a symlink target on a file", buf);
	with_header(buf, sizeof(buf), 1, "dir 755 0 1 1 - 1 3\nabcd\n");
	check_reject(f, "a symlink target on a dir", buf);
}

static void test_reject_fields(void **state)
{
	static const struct {
		const char *why, *body;
	} cases[] = {
	    {"an unknown kind", "fifo 644 3 1 1 " H_ABC " 1 0\na\n"},
	    {"a capitalised kind", "File 644 3 1 1 " H_ABC " 1 0\na\n"},
	    {"a mode above 07777", "file 10644 3 1 1 " H_ABC " 1 0\na\n"},
	    {"a non-octal mode", "file 648 3 1 1 " H_ABC " 1 0\na\n"},
	    {"a negative mode", "file -1 3 1 1 " H_ABC " 1 0\na\n"},
	    {"a negative size", "file 644 -1 1 1 " H_ABC " 1 0\na\n"},
	    {"a size above INT64_MAX",
	     "file 644 9223372036854775808 1 1 " H_ABC " 1 0\na\n"},
	    {"a non-numeric version", "file 644 3 v1 1 " H_ABC " 1 0\na\n"},
	    {"a missing field", "file 644 3 1 " H_ABC " 1 0\na\n"},
	    {"an extra field", "file 644 3 1 1 " H_ABC " 1 0 0\na\n"},
	    {"a negative path length", "file 644 3 1 1 " H_ABC " -1 0\na\n"},
	    {"a negative target length",
	     "symlink 777 3 1 1 " H_ABC " 1 -1\na\n"},
	};
	struct fixture *f = *state;
	char buf[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		with_header(buf, sizeof(buf), 1, cases[i].body);
		check_reject(f, cases[i].why, buf);
	}
}

static void test_reject_trailing_and_count(void **state)
{
	static const char entry[] = "file 644 3 1 1 " H_ABC " 1 0\na\n";
	struct fixture *f = *state;
	char buf[1024], two[512];

	with_header(buf, sizeof(buf), 1, entry);
	check_ret(0, vs_manifest_parse(&f->out, buf, strlen(buf)),
		  "vs_manifest_parse of a valid one-entry manifest");
	check_int(1, f->out.n, "entries of a valid one-entry manifest");

	with_header(buf, sizeof(buf), 1, "file 644 3 1 1 " H_ABC " 1 0\na\nx");
	check_reject(f, "trailing garbage", buf);
	with_header(buf, sizeof(buf), 1, "file 644 3 1 1 " H_ABC " 1 0\na\n\n");
	check_reject(f, "a trailing empty line", buf);
	with_header(buf, sizeof(buf), 0, entry);
	check_reject(f, "count 0 with one entry", buf);
	with_header(buf, sizeof(buf), 2, entry);
	check_reject(f, "count 2 with one entry", buf);
	snprintf(two, sizeof(two), "%s%s", entry, "dir 755 0 1 1 - 1 0\nb\n");
	with_header(buf, sizeof(buf), 1, two);
	check_reject(f, "count 1 with two entries", buf);
	with_header(buf, sizeof(buf), 3, two);
	check_reject(f, "count 3 with two entries", buf);
}

/* ------------------------------------------------------------ kinds */

static void test_kinds(void **state)
{
	static const char *const bad[] = {"",	  "File", "files",
					  "dir ", "link", "?"};
	enum vs_kind k = VS_KIND_DIR;

	(void)state;
	check_ret(0, vs_kind_parse("file", &k), "vs_kind_parse(\"file\")");
	check_int(VS_KIND_FILE, k, "kind of \"file\"");
	check_ret(0, vs_kind_parse("dir", &k), "vs_kind_parse(\"dir\")");
	check_int(VS_KIND_DIR, k, "kind of \"dir\"");
	check_ret(0, vs_kind_parse("symlink", &k),
		  "vs_kind_parse(\"symlink\")");
	check_int(VS_KIND_SYMLINK, k, "kind of \"symlink\"");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		k = VS_KIND_SYMLINK;
		check_ret(-EINVAL, vs_kind_parse(bad[i], &k),
			  "vs_kind_parse(\"%s\")", bad[i]);
		check_int(VS_KIND_SYMLINK, k,
			  "kind left by a failed vs_kind_parse(\"%s\")",
			  bad[i]);
	}
	check_str("file", vs_kind_name(VS_KIND_FILE), "vs_kind_name(FILE)");
	check_str("dir", vs_kind_name(VS_KIND_DIR), "vs_kind_name(DIR)");
	check_str("symlink", vs_kind_name(VS_KIND_SYMLINK),
		  "vs_kind_name(SYMLINK)");
	check_str("?", vs_kind_name((enum vs_kind)3), "vs_kind_name(3)");
	check_str("?", vs_kind_name((enum vs_kind) - 1), "vs_kind_name(-1)");
}

/* ------------------------------------------------------------ diff */

#define H_B "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"

struct seen {
	char lines[16][96];
	int n, stop_at;
};

static int record(void *arg, enum vs_diff what,
		  const struct vs_manifest_entry *old,
		  const struct vs_manifest_entry *new)
{
	static const char letter[] = {'A', 'D', 'M'};
	struct seen *s = arg;

	assert_true(s->n < 16);
	assert_true(what == VS_DIFF_ADDED     ? !old && new
		    : what == VS_DIFF_DELETED ? old && !new
					      : old &&new);
	snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%c %s", letter[what],
		 (old ? old : new)->path);
	return s->n == s->stop_at ? 7 : 0;
}

static void test_diff(void **state)
{
	struct fixture *f = *state;
	struct vs_manifest *a = &f->in, *b = &f->out;
	struct seen s = {.n = 0};
	static const char *const want[] = {
	    "D gone.js",  "M kind",	  "M link", "M mode.sh",
	    "M src/a.js", "A src/new.js", "A zz"};

	/* the same in both but for version and mtime: not reported */
	add(a, VS_KIND_DIR, "dir", NULL, 0755, 0, 1, 1, "");
	add(b, VS_KIND_DIR, "dir", NULL, 0755, 0, 2, 2, "");
	add(a, VS_KIND_FILE, "gone.js", NULL, 0644, 3, 1, 1, H_ABC);
	add(a, VS_KIND_FILE, "kind", NULL, 0644, 3, 1, 1, H_ABC);
	add(b, VS_KIND_DIR, "kind", NULL, 0644, 0, 2, 1, "");
	add(a, VS_KIND_SYMLINK, "link", "a", 0777, 1, 1, 1, H_ABC);
	add(b, VS_KIND_SYMLINK, "link", "b", 0777, 1, 2, 1, H_ABC);
	add(a, VS_KIND_FILE, "mode.sh", NULL, 0644, 3, 1, 1, H_ABC);
	add(b, VS_KIND_FILE, "mode.sh", NULL, 0755, 3, 2, 1, H_ABC);
	add(a, VS_KIND_FILE, "same.js", NULL, 0644, 3, 1, 1, H_ABC);
	add(b, VS_KIND_FILE, "same.js", NULL, 0644, 3, 9, 9, H_ABC);
	add(a, VS_KIND_FILE, "src/a.js", NULL, 0644, 3, 1, 1, H_ABC);
	add(b, VS_KIND_FILE, "src/a.js", NULL, 0644, 3, 2, 1, H_B);
	add(b, VS_KIND_FILE, "src/new.js", NULL, 0644, 3, 1, 1, H_B);
	add(b, VS_KIND_FILE, "zz", NULL, 0644, 3, 1, 1, H_B);
	check_ret(0, vs_manifest_diff(a, b, record, &s), "vs_manifest_diff");
	check_int(7, s.n, "differences");
	for (int i = 0; i < s.n && i < 7; i++)
		check_str(want[i], s.lines[i], "difference %d", i);

	/* the other way round: added and deleted swap */
	s.n = 0;
	check_ret(0, vs_manifest_diff(b, a, record, &s), "reversed diff");
	check_str("A gone.js", s.lines[0], "reversed: first");
	check_str("D zz", s.lines[6], "reversed: last");

	/* a tree against itself: nothing */
	s.n = 0;
	check_ret(0, vs_manifest_diff(a, a, record, &s), "diff with itself");
	check_int(0, s.n, "differences with itself");

	/* the callback's non-zero return stops the walk */
	s.n = 0;
	s.stop_at = 2;
	check_ret(7, vs_manifest_diff(a, b, record, &s), "stopped diff");
	check_int(2, s.n, "calls before the stop");

	/* an unsorted tree is refused */
	s.n = 0;
	s.stop_at = 0;
	add(b, VS_KIND_FILE, "aaa", NULL, 0644, 3, 1, 1, H_B);
	check_ret(-EINVAL, vs_manifest_diff(a, b, record, &s),
		  "diff of an unsorted tree");
}

#define T(fn)                                                                  \
	cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_add_copies),
	    T(test_add_many),
	    T(test_round_trip),
	    T(test_round_trip_empty),
	    T(test_header_format),
	    T(test_reject_header),
	    T(test_reject_truncated),
	    T(test_reject_hash),
	    T(test_reject_path),
	    T(test_reject_path_with_nul),
	    T(test_reject_target_on_non_symlink),
	    T(test_reject_fields),
	    T(test_reject_trailing_and_count),
	    cmocka_unit_test(test_kinds),
	    T(test_diff),
	};

	return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}
