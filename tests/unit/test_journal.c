/*
 * test_journal.c - unit tests of sync/journal.c (include/vsync/journal.h).
 *
 * Each case runs in a fresh temp dir (mkdtemp in /tmp) holding the journal
 * dir "<tmp>/journal" (opened as dir_fd) and a cache dir "<tmp>/cache";
 * teardown frees the journal and removes the whole tree with nftw.
 *
 * Covers:
 *  - vs_jentry_format / vs_jentry_parse round trips of every op, with
 *    paths holding spaces, newlines, tabs and Unicode, base -1/0/N, modes;
 *    the exact text of one entry (the format is a contract with the files
 *    of a previous run);
 *  - format refusing invalid entries (-EINVAL: bad op_id, path, hash on a
 *    mkdir, old_path on a write, rename onto itself ...) and short buffers
 *    (-ENOBUFS);
 *  - the parser's strictness: a missing, extra, reordered or duplicated
 *    line, trailing bytes, a length that does not match, leading zeros,
 *    signs, overflow, a bad hash or UUID (op_id or after_op), a NUL in a
 *    path, a ".." path;
 *    every truncation of a valid entry;
 *  - append / peek / done in order, across a reopen (a simulated restart:
 *    lseqs continue after the highest one on disk, also after a ".bad");
 *  - a malformed entry on disk moved to <name>.bad at open and at peek,
 *    a stale "*.tmp" removed at open, an entry whose lseq line does not
 *    match its name quarantined;
 *  - failed appends leave nothing half-written and change nothing: the
 *    directory removed under the journal, a file size limit hit mid-write
 *    (RLIMIT_FSIZE, as ENOSPC would), a read-only directory (not as
 *    root); the next append then gets the same lseq;
 *  - two handles on one directory: an entry is never renamed over
 *    another, a taken lseq (entry or temp file) moves to the next, and
 *    a reopen finds every entry of both;
 *  - the group commit: vs_journal_sync covers every entry renamed before
 *    it, peek returns an entry not synced yet, four threads appending and
 *    syncing;
 *  - reservations: a rename waits for the entries reserved before it, an
 *    append that gives up leaves a gap and lets the next one go on;
 *  - a reopen counts the entries it finds as not durable until a sync;
 *  - the pool: a done entry's file ("free.<k>") is reused by the next
 *    append (written over and cut to the entry's length), survives a
 *    reopen, is never replayed; vs_journal_keep_room makes
 *    VS_JOURNAL_ROOM_ENTRIES of them with room allocated (what a full
 *    disk leaves for entries);
 *  - with a cache: put_content links an O_TMPFILE as the object (1) or
 *    finds it there (0), the sync covers entries and objects and skips an
 *    object gone;
 *  - vs_journal_low_water, vs_journal_put_content, vs_uuid_random (v4).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "vsync/cache.h"
#include "vsync/hash.h"
#include "vsync/journal.h"

#include "unit_check.h"

#define OPID  "0f8fad5b-d9cb-469f-a165-70867728950e"
#define H_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* ------------------------------------------------------------ fixtures */

struct fixture {
	char tmp[64];		 /* the mkdtemp dir */
	char dir[PATH_MAX];	 /* <tmp>/journal */
	int dir_fd;		 /* open on dir */
	struct vs_journal *j;	 /* opened on dir_fd (NULL between reopens) */
	struct vs_jentry e, got; /* scratch */
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int r;

	if (!f)
		return -1;
	strcpy(f->tmp, "/tmp/vsync-test-journal.XXXXXX");
	if (!mkdtemp(f->tmp)) {
		print_error("mkdtemp(%s): %s\n", f->tmp, strerror(errno));
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/journal", f->tmp);
	if (mkdir(f->dir, 0700) < 0 ||
	    (f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY)) < 0) {
		print_error("%s: %s\n", f->dir, strerror(errno));
		rmdir(f->tmp);
		free(f);
		return -1;
	}
	r = vs_journal_open(&f->j, f->dir_fd, NULL);
	if (r < 0) {
		print_error("vs_journal_open(%s): %s\n", f->dir, strerror(-r));
		return -1;
	}
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0)
		print_error("cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	vs_journal_free(f->j);
	if (f->dir_fd >= 0)
		close(f->dir_fd);
	chmod(f->dir, 0700);
	if (nftw(f->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		print_error("nftw(%s): %s\n", f->tmp, strerror(errno));
	free(f);
	return 0;
}

/* ------------------------------------------------------------ helpers */

static void set_str(char *dst, const char *src)
{
	strcpy(dst, src);
}

static void make_write(struct vs_jentry *e, const char *path, int64_t base)
{
	memset(e, 0, sizeof(*e));
	e->op = VS_JOP_WRITE;
	set_str(e->path, path);
	set_str(e->hash, H_ABC);
	e->size = 3;
	e->mode = 0644;
	e->base_version = base;
}

static void check_same(const struct vs_jentry *want,
		       const struct vs_jentry *got, const char *what)
{
	check_int(want->lseq, got->lseq, "%s: lseq", what);
	check_int(want->op, got->op, "%s: op", what);
	check_str(want->op_id, got->op_id, "%s: op_id", what);
	check_str(want->path, got->path, "%s: path", what);
	check_str(want->old_path, got->old_path, "%s: old_path", what);
	check_str(want->target, got->target, "%s: target", what);
	check_int(want->mode, got->mode, "%s: mode", what);
	check_int(want->base_version, got->base_version, "%s: base", what);
	check_str(want->hash, got->hash, "%s: hash", what);
	check_int(want->size, got->size, "%s: size", what);
}

/* Format @e, parse it back, compare. */
static void round_trip(const struct vs_jentry *e, const char *what)
{
	static char buf[VS_JENTRY_MAX];
	static struct vs_jentry got;
	int n = vs_jentry_format(buf, sizeof(buf), e);

	if (n < 0)
		fail_msg("%s: vs_jentry_format: %d", what, n);
	check_int(strlen(buf), n, "%s: formatted length", what);
	check_ret(0, vs_jentry_parse(&got, buf, (size_t)n), "%s: parse", what);
	check_same(e, &got, what);
}

static int count_files(struct fixture *f, const char *suffix)
{
	int fd = openat(f->dir_fd, ".", O_RDONLY | O_DIRECTORY);
	size_t sl = strlen(suffix);
	struct dirent *de;
	DIR *d;
	int n = 0;

	assert_true(fd >= 0);
	d = fdopendir(fd);
	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		/* "": entries (all digits; not "free.<k>") */
		if (!*suffix ? strspn(de->d_name, "0123456789") == l
			     : (l > sl && !strcmp(de->d_name + l - sl, suffix)))
			n++;
	}
	closedir(d);
	return n;
}

static int count_all(struct fixture *f)
{
	return count_files(f, "") + count_files(f, ".tmp") +
	       count_files(f, ".bad");
}

static void write_raw(struct fixture *f, const char *name, const char *text)
{
	int fd = openat(f->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal((ssize_t)strlen(text), write(fd, text, strlen(text)));
	close(fd);
}

static void reopen(struct fixture *f)
{
	vs_journal_free(f->j);
	f->j = NULL;
	check_ret(0, vs_journal_open(&f->j, f->dir_fd, NULL),
		  "vs_journal_open");
}

/* ------------------------------------------------------------ format */

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct vs_jentry *e = &f->e;
	static const char *const paths[] = {
	    "a",
	    "src/a b.js",
	    "dir with spaces/and\nnewline\tand tab",
	    "Ünïcödé ✓/日本語.tsx",
	    "x\r\n=:9:",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		make_write(e, paths[i], (int64_t)i - 1);
		set_str(e->op_id, OPID);
		e->lseq = 1 + i * 1000;
		round_trip(e, "write");
	}
	make_write(e, "big", INT32_MAX);
	set_str(e->op_id, OPID);
	e->size = (uint64_t)INT64_MAX;
	e->mode = 07777;
	e->lseq = UINT64_MAX;
	round_trip(e, "write with the largest numbers");

	memset(e, 0, sizeof(*e));
	set_str(e->op_id, OPID);
	e->op = VS_JOP_SYMLINK;
	e->mode = 0777;
	e->base_version = -1;
	set_str(e->path, "link to\nsomewhere");
	set_str(e->target, "../target with spaces\n/é");
	round_trip(e, "symlink");

	e->op = VS_JOP_MKDIR;
	e->target[0] = '\0';
	e->mode = 0755;
	round_trip(e, "mkdir");

	e->op = VS_JOP_DELETE;
	e->mode = 0;
	e->base_version = 7;
	round_trip(e, "delete");
	e->base_version = -1;
	e->seen_seq = INT64_MAX;
	round_trip(e, "delete with the newest change seen");
	e->seen_seq = 0;

	e->op = VS_JOP_RENAME;
	e->base_version = -1;
	set_str(e->old_path, "old name\n✓");
	round_trip(e, "rename");

	/* the longest paths fit in VS_JENTRY_MAX */
	memset(e->path, 'p', VS_PATH_MAX);
	e->path[VS_PATH_MAX] = '\0';
	for (int i = 200; i < VS_PATH_MAX; i += 200)
		e->path[i] = '/';
	memcpy(e->old_path, e->path, sizeof(e->path));
	e->old_path[0] = 'q';
	round_trip(e, "rename with 4096-byte paths");
}

static void test_exact_text(void **state)
{
	struct fixture *f = *state;
	char buf[VS_JENTRY_MAX];

	make_write(&f->e, "src/a b.js", 3);
	set_str(f->e.op_id, OPID);
	f->e.lseq = 42;
	check_int(0 < vs_jentry_format(buf, sizeof(buf), &f->e), 1, "format");
	check_str("vsync-journal 1\n"
		  "lseq=42\n"
		  "op=write\n"
		  "op_id=" OPID "\n"
		  "mode=0644\n"
		  "base=3\n"
		  "after_op=\n"
		  "size=3\n"
		  "hash=" H_ABC "\n"
		  "path=10:src/a b.js\n"
		  "old_path=0:\n"
		  "target=0:\n",
		  buf, "formatted entry");

	/* a delete's seen line comes after after_op, only when set */
	memset(&f->e, 0, sizeof(f->e));
	set_str(f->e.op_id, OPID);
	f->e.op = VS_JOP_DELETE;
	f->e.base_version = -1;
	f->e.seen_seq = 1234;
	f->e.lseq = 43;
	set_str(f->e.path, "src");
	check_int(0 < vs_jentry_format(buf, sizeof(buf), &f->e), 1,
		  "format of a delete");
	check_str("vsync-journal 1\n"
		  "lseq=43\n"
		  "op=delete\n"
		  "op_id=" OPID "\n"
		  "mode=0000\n"
		  "base=-1\n"
		  "after_op=\n"
		  "seen=1234\n"
		  "size=0\n"
		  "hash=\n"
		  "path=3:src\n"
		  "old_path=0:\n"
		  "target=0:\n",
		  buf, "formatted delete");
}

static void test_format_rejects(void **state)
{
	struct fixture *f = *state;
	struct vs_jentry *e = &f->e;
	char buf[VS_JENTRY_MAX];

#define REJECT(what, mutate)                                                   \
	do {                                                                   \
		make_write(e, "src/a.js", -1);                                 \
		set_str(e->op_id, OPID);                                       \
		mutate;                                                        \
		check_ret(-EINVAL, vs_jentry_format(buf, sizeof(buf), e),      \
			  "format of %s", what);                               \
	} while (0)

	REJECT("an empty op_id", e->op_id[0] = '\0');
	REJECT("an upper-case op_id", e->op_id[0] = 'F');
	REJECT("a malformed op_id", e->op_id[8] = 'x');
	/* found by tests/fuzz/fuzz_journal: any 36 bytes were taken */
	REJECT("a malformed after_op",
	       set_str(e->after_op, "0f8fad5b-d9cb-469?-a165-70867728950e"));
	REJECT("an upper-case after_op",
	       set_str(e->after_op, "0F8FAD5B-D9CB-469F-A165-70867728950E"));
	REJECT("an empty path", e->path[0] = '\0');
	REJECT("a '..' path", set_str(e->path, "a/../b"));
	REJECT("an absolute path", set_str(e->path, "/etc/passwd"));
	REJECT("a trailing '/'", set_str(e->path, "a/"));
	REJECT("a write without a hash", e->hash[0] = '\0');
	REJECT("a write with a bad hash", e->hash[3] = 'X');
	REJECT("a write with an old_path", set_str(e->old_path, "b"));
	REJECT("a write with a target", set_str(e->target, "b"));
	REJECT("base -2", e->base_version = -2);
	REJECT("base above INT32_MAX",
	       e->base_version = (int64_t)INT32_MAX + 1);
	REJECT("mode 010000", e->mode = 010000);
	REJECT("size above INT64_MAX", e->size = (uint64_t)INT64_MAX + 1);
	REJECT("an unknown op", e->op = (enum vs_jop)5);
	REJECT("a mkdir with a hash", e->op = VS_JOP_MKDIR);
	REJECT("a delete with a size", (e->op = VS_JOP_DELETE, e->hash[0] = 0));
	REJECT("a write with a seen change", e->seen_seq = 5);
	REJECT("a delete with a negative seen change",
	       (e->op = VS_JOP_DELETE, e->hash[0] = 0, e->size = 0,
		e->seen_seq = -1));
	REJECT("a symlink without a target",
	       (e->op = VS_JOP_SYMLINK, e->hash[0] = 0, e->size = 0));
	REJECT("a rename without old_path",
	       (e->op = VS_JOP_RENAME, e->hash[0] = 0, e->size = 0));
	REJECT("a rename onto itself",
	       (e->op = VS_JOP_RENAME, e->hash[0] = 0, e->size = 0,
		set_str(e->old_path, e->path)));
#undef REJECT

	make_write(e, "src/a.js", -1);
	set_str(e->op_id, OPID);
	check_ret(-ENOBUFS, vs_jentry_format(buf, 40, e), "format into 40");
	check_ret(-ENOBUFS, vs_jentry_format(buf, 0, e), "format into 0");
}

/* A valid entry text with @from replaced by @to (first occurrence). */
static int parse_variant(const char *from, const char *to, size_t extra)
{
	static char base[VS_JENTRY_MAX], out[VS_JENTRY_MAX];
	static struct vs_jentry e;
	char *p;
	size_t n;

	make_write(&e, "src/a b.js", 3);
	set_str(e.op_id, OPID);
	e.lseq = 42;
	if (vs_jentry_format(base, sizeof(base), &e) < 0)
		fail_msg("format of the base entry failed");
	p = strstr(base, from);
	if (!p)
		fail_msg("'%s' is not in the base entry", from);
	n = (size_t)(p - base);
	memcpy(out, base, n);
	strcpy(out + n, to);
	strcat(out, p + strlen(from));
	return vs_jentry_parse(&e, out, strlen(out) + extra);
}

static void test_parse_rejects(void **state)
{
	static const struct {
		const char *from, *to, *what;
	} cases[] = {
	    {"vsync-journal 1\n", "vsync-journal 2\n", "another version"},
	    {"vsync-journal 1\n", "", "no header"},
	    {"lseq=42\n", "", "a missing line"},
	    {"lseq=42\n", "lseq=042\n", "a leading zero"},
	    {"lseq=42\n", "lseq=+42\n", "a sign"},
	    {"lseq=42\n", "lseq=18446744073709551616\n", "an overflow"},
	    {"lseq=42\n", "lseq=\n", "an empty number"},
	    {"lseq=42\n", "lseq =42\n", "a space before '='"},
	    {"op=write\n", "op=WRITE\n", "an unknown op"},
	    {"op=write\nop_id", "op_id", "no op line"},
	    {"op=write\n", "op=write\nop=write\n", "a duplicated line"},
	    {"op=write\nop_id=" OPID "\n", "op_id=" OPID "\nop=write\n",
	     "reordered lines"},
	    {"op_id=0f8fad5b", "op_id=0F8FAD5B", "an upper-case UUID"},
	    {"op_id=0f8fad5b-", "op_id=0f8fad5b_", "a malformed UUID"},
	    /* found by tests/fuzz/fuzz_journal: any 36 bytes were taken, and
	       the committer's "$1::uuid" then failed on every retry */
	    {"after_op=\n", "after_op=0f8fad5b-d9cb-469?-a165-70867728950e\n",
	     "a malformed after_op"},
	    {"after_op=\n", "after_op=" OPID "x\n", "a long after_op"},
	    {"after_op=\n", "after_op=\nseen=5\n", "a seen change on a write"},
	    {"after_op=\n", "after_op=\nseen=0\n", "a seen change of 0"},
	    {"size=3\n", "size=3\nseen=5\n", "a seen change after size"},
	    {"mode=0644\n", "mode=644\n", "a 3-digit mode"},
	    {"mode=0644\n", "mode=0648\n", "a non-octal mode"},
	    {"mode=0644\n", "mode=10644\n", "a 5-digit mode"},
	    {"base=3\n", "base=-2\n", "base -2"},
	    {"base=3\n", "base=2147483648\n", "base above INT32_MAX"},
	    {"base=3\n", "base=03\n", "base with a leading zero"},
	    {"base=3\n", "base=\n", "an empty base"},
	    {"size=3\n", "size=-1\n", "a negative size"},
	    {"size=3\n", "size=9223372036854775808\n", "size above INT64_MAX"},
	    {"hash=ba78", "hash=BA78", "an upper-case hash"},
	    {"hash=ba7816bf", "hash=ba7816b", "a short hash"},
	    {"hash=" H_ABC "\n", "hash=\n", "a write without a hash"},
	    {"path=10:src/a b.js\n", "path=11:src/a b.js\n",
	     "a path length too long"},
	    {"path=10:src/a b.js\n", "path=9:src/a b.js\n",
	     "a path length too short"},
	    {"path=10:src/a b.js\n", "path=10:src/../bb.\n", "a '..' path"},
	    {"path=10:src/a b.js\n", "path=0:\n", "an empty path"},
	    {"path=10:", "path=010:", "a length with a leading zero"},
	    {"path=10:", "path=10", "a length without ':'"},
	    {"path=10:src/a b.js\n", "path=4097:src/a b.js\n",
	     "a path length above VS_PATH_MAX"},
	    {"old_path=0:\n", "old_path=1:x\n", "an old_path on a write"},
	    {"target=0:\n", "target=1:x\n", "a target on a write"},
	    {"target=0:\n", "target=0:\nextra=1\n", "an extra line"},
	    {"target=0:\n", "target=0:\n\n", "a trailing newline"},
	    {"target=0:\n", "target=0:", "no final newline"},
	};
	static const char nul_path[] = "path=10:src/a\0b.js\n";

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_ret(-EBADMSG,
			  parse_variant(cases[i].from, cases[i].to, 0),
			  "parse of an entry with %s", cases[i].what);
	check_ret(0, parse_variant("lseq=42", "lseq=42", 0),
		  "parse of the unchanged entry");

	/* a NUL inside a path, and bytes after the end */
	{
		static char buf[VS_JENTRY_MAX];
		static struct vs_jentry e;
		char *p;
		int n;

		make_write(&e, "src/a b.js", 3);
		set_str(e.op_id, OPID);
		n = vs_jentry_format(buf, sizeof(buf), &e);
		assert_true(n > 0);
		p = strstr(buf, "path=10:");
		memcpy(p, nul_path, sizeof(nul_path) - 1);
		check_ret(-EBADMSG, vs_jentry_parse(&e, buf, (size_t)n),
			  "parse of a path with a NUL");
		/* a failed parse leaves @e unspecified: make it again */
		make_write(&e, "src/a b.js", 3);
		set_str(e.op_id, OPID);
		n = vs_jentry_format(buf, sizeof(buf), &e);
		assert_true(n > 0);
		buf[n] = 'x';
		check_ret(-EBADMSG, vs_jentry_parse(&e, buf, (size_t)n + 1),
			  "parse with a trailing byte");
		/* every truncation */
		make_write(&e, "src/a b.js", 3);
		set_str(e.op_id, OPID);
		n = vs_jentry_format(buf, sizeof(buf), &e);
		assert_true(n > 0);
		for (int len = 0; len < n; len++)
			check_ret(-EBADMSG,
				  vs_jentry_parse(&e, buf, (size_t)len),
				  "parse of the first %d of %d bytes", len, n);
	}
}

/* ------------------------------------------------------------ journal */

static void append_write(struct fixture *f, const char *path, uint64_t lseq)
{
	make_write(&f->e, path, -1);
	check_ret(0, vs_journal_append(f->j, &f->e), "append '%s'", path);
	check_int(lseq, f->e.lseq, "lseq of '%s'", path);
}

static void check_peek(struct fixture *f, uint64_t lseq, const char *path)
{
	check_ret(0, vs_journal_peek(f->j, &f->got), "peek (want '%s')", path);
	check_int(lseq, f->got.lseq, "peeked lseq");
	check_str(path, f->got.path, "peeked path");
}

#define SYNC_THREADS 4
#define SYNC_EACH    50

struct sync_arg {
	struct vs_journal *j;
	int t, failed;
};

/* Append and sync SYNC_EACH entries; every sync must cover its entry. */
static void *sync_thread(void *p)
{
	struct sync_arg *a = p;
	struct vs_jentry *e = calloc(1, sizeof(*e));

	for (int i = 0; e && i < SYNC_EACH && !a->failed; i++) {
		char path[32];

		memset(e, 0, sizeof(*e));
		snprintf(path, sizeof(path), "t%d/f%d", a->t, i);
		make_write(e, path, -1);
		if (vs_journal_append(a->j, e) < 0 ||
		    vs_journal_sync(a->j, e->lseq) < 0 ||
		    vs_journal_synced(a->j) < e->lseq)
			a->failed = 1;
	}
	if (!e)
		a->failed = 1;
	free(e);
	return NULL;
}

/* The sync is a group commit: appended entries are durable
 * once a sync covers them (peek does not sync); concurrent appenders. */
static void test_group_sync(void **state)
{
	struct fixture *f = *state;
	struct sync_arg args[SYNC_THREADS];
	pthread_t th[SYNC_THREADS];

	check_int(0, vs_journal_synced(f->j), "synced of empty");
	check_ret(0, vs_journal_sync(f->j, 0), "sync of nothing");
	append_write(f, "a", 1);
	append_write(f, "b", 2);
	check_int(0, vs_journal_synced(f->j), "appended, not synced");
	check_ret(0, vs_journal_sync(f->j, 1), "sync 1");
	check_int(2, vs_journal_synced(f->j), "one fsync covers both");
	append_write(f, "c", 3);
	check_ret(0, vs_journal_done(f->j, 1), "done 1");
	check_ret(0, vs_journal_done(f->j, 2), "done 2");
	check_peek(f, 3, "c"); /* not synced: peek does not wait for it */
	check_int(2, vs_journal_synced(f->j), "not synced by peek");
	check_ret(0, vs_journal_sync(f->j, 3), "sync 3");
	check_int(3, vs_journal_synced(f->j), "synced");
	check_ret(0, vs_journal_done(f->j, 3), "done 3");

	for (int t = 0; t < SYNC_THREADS; t++) {
		args[t] = (struct sync_arg){f->j, t, 0};
		check_int(0,
			  pthread_create(&th[t], NULL, sync_thread, &args[t]),
			  "pthread_create");
	}
	for (int t = 0; t < SYNC_THREADS; t++) {
		pthread_join(th[t], NULL);
		check_int(0, args[t].failed, "thread %d: append and sync", t);
	}
	check_int(SYNC_THREADS * SYNC_EACH, vs_journal_pending(f->j),
		  "pending after the threads");
	check_int(3 + SYNC_THREADS * SYNC_EACH, vs_journal_synced(f->j),
		  "every entry synced");
	check_int(0, count_files(f, ".tmp"), "temp files");
	reopen(f);
	check_int(SYNC_THREADS * SYNC_EACH, vs_journal_pending(f->j),
		  "pending after reopen");
	/* what a reopen finds may be in the page cache only (a SIGKILL):
	 * not counted as durable until a sync covers it */
	check_int(3, vs_journal_synced(f->j), "synced after reopen");
	check_ret(0, vs_journal_sync(f->j, 0), "sync after reopen");
	check_int(3 + SYNC_THREADS * SYNC_EACH, vs_journal_synced(f->j),
		  "synced after reopen and sync");
}

/* Files "free.<k>" in the journal dir with @room bytes allocated at
 * least. */
static int count_pooled(struct fixture *f, off_t room)
{
	int fd = openat(f->dir_fd, ".", O_RDONLY | O_DIRECTORY);
	struct dirent *de;
	struct stat st;
	DIR *d;
	int n = 0;

	assert_true(fd >= 0);
	d = fdopendir(fd);
	assert_non_null(d);
	while ((de = readdir(d)))
		n += !strncmp(de->d_name, "free.", 5) &&
		     fstatat(f->dir_fd, de->d_name, &st, 0) == 0 &&
		     (off_t)st.st_blocks * 512 >= room;
	closedir(d);
	return n;
}

/* vs_journal_keep_room makes VS_JOURNAL_ROOM_ENTRIES files with room
 * allocated; a done
 * entry's file is kept and reused by the next append (no inode freed and
 * made again), written over and cut to the new entry's length; the pool
 * survives a reopen and is never replayed; past it, appends make new
 * files. */
static void test_pool(void **state)
{
	struct fixture *f = *state;
	static const char long_path[] = "a/very/long/path/name/that/is/long.js";
	const int room = VS_JOURNAL_ROOM_ENTRIES;

	check_int(0, count_pooled(f, 0), "none made by open");
	vs_journal_keep_room(f->j);
	check_int(room, count_pooled(f, 0), "files with room made");
	check_int(room, count_pooled(f, 4096), "each with 4 KiB allocated");
	append_write(f, long_path, 1);
	append_write(f, long_path, 2);
	append_write(f, long_path, 3);
	check_int(room - 3, count_pooled(f, 0), "pooled files taken");
	check_int(0, count_files(f, ".tmp"), "temp files");
	for (uint64_t l = 1; l <= 3; l++)
		check_ret(0, vs_journal_done(f->j, l), "done %" PRIu64, l);
	check_int(0, count_files(f, ""), "entries after done");
	check_int(room, count_pooled(f, 0), "files kept for reuse");
	append_write(f, "b", 4);
	append_write(f, "c", 5);
	check_int(room - 2, count_pooled(f, 0), "pooled files left");
	check_int(2, count_files(f, ""), "entries");
	check_int(0, count_files(f, ".tmp"), "temp files");
	reopen(f);
	check_int(2, vs_journal_pending(f->j), "pending after reopen");
	check_int(room - 2, count_pooled(f, 0), "pool after reopen");
	vs_journal_keep_room(f->j); /* (a reopen cannot tell the 2 are
				       pool files: they come back on top) */
	check_int(room, count_pooled(f, 0), "topped up after reopen");
	check_peek(f, 4, "b"); /* shorter than what the file held */
	check_ret(0, vs_journal_done(f->j, 4), "done 4");
	check_peek(f, 5, "c");
	check_ret(0, vs_journal_done(f->j, 5), "done 5");
	check_int(room + 2, count_pooled(f, 0), "pool after done");
	for (int i = 0; i < room + 4; i++)
		append_write(f, "d", 6 + (uint64_t)i);
	check_int(0, count_pooled(f, 0), "pool used up, and 2 new files");
	check_int(0, count_files(f, ".tmp"), "temp files");
	check_int(room + 4, count_files(f, ""), "entries");
	check_int(0, count_files(f, ".bad"), "malformed");
	reopen(f);
	check_int(room + 4, vs_journal_pending(f->j), "every entry replayed");
	check_int(0, count_files(f, ".bad"), "malformed after reopen");
}

/* With a cache: the content object is linked or stored without an fsync,
 * and vs_journal_sync makes entries and objects durable (an object gone
 * meanwhile is skipped: the committer refuses its entry). */
static void test_sync_objects(void **state)
{
	struct fixture *f = *state;
	char cdir[PATH_MAX], hash[VS_HASH_HEX_LEN + 1];
	struct vs_cache c;
	int fd;

	snprintf(cdir, sizeof(cdir), "%s/cache", f->tmp);
	check_ret(0, vs_cache_init(&c, cdir), "vs_cache_init");
	vs_journal_free(f->j);
	check_ret(0, vs_journal_open(&f->j, f->dir_fd, &c), "open with cache");
	fd = openat(c.dir_fd, "tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		check_int(3, write(fd, "abc", 3), "write");
		check_ret(1, vs_journal_put_content(&c, "abc", 3, fd, hash),
			  "put_content links the file");
		check_str(H_ABC, hash, "hash");
		check_ret(0, vs_journal_put_content(&c, "abc", 3, fd, hash),
			  "put_content of an object there already");
		close(fd);
	} else {
		check_ret(0, vs_journal_put_content(&c, "abc", 3, -1, hash),
			  "put_content stores");
	}
	append_write(f, "a", 1);
	check_int(0, vs_journal_synced(f->j), "not synced by the append");
	check_ret(0, vs_journal_sync(f->j, 0), "sync");
	check_int(1, vs_journal_synced(f->j), "synced");
	append_write(f, "b", 2);
	check_int(0, unlinkat(c.dir_fd, "objects/ba/" H_ABC, 0),
		  "remove the object");
	check_ret(0, vs_journal_sync(f->j, 0), "sync with an object gone");
	check_int(2, vs_journal_synced(f->j), "synced");
	vs_journal_free(f->j);
	f->j = NULL;
	vs_cache_release(&c);
	reopen(f);
}

struct reserved_arg {
	struct vs_journal *j;
	struct vs_jentry *e;
	int r;
};

static void *append_reserved_thread(void *p)
{
	struct reserved_arg *a = p;

	a->r = vs_journal_append_reserved(a->j, a->e);
	return NULL;
}

/* Renames wait for their turn: an entry reserved later is renamed only
 * once the earlier one is renamed or given up (a gap then). */
static void test_reserved_turn(void **state)
{
	struct fixture *f = *state;
	struct vs_jentry *b = calloc(1, sizeof(*b));
	struct reserved_arg arg = {f->j, b, 1};
	pthread_t th;

	assert_non_null(b);
	make_write(&f->e, "a", -1);
	make_write(b, "b", -1);
	check_ret(0, vs_journal_reserve(f->j, &f->e), "reserve a");
	check_ret(0, vs_journal_reserve(f->j, b), "reserve b");
	check_int(1, f->e.lseq, "lseq of a");
	check_int(2, b->lseq, "lseq of b");
	check_int(1, vs_journal_low_water(f->j), "low water: a in flight");
	check_int(0, pthread_create(&th, NULL, append_reserved_thread, &arg),
		  "pthread_create");
	/* b waits for a; a fails (an invalid entry): b goes on */
	f->e.path[0] = '\0';
	check_ret(-EINVAL, vs_journal_append_reserved(f->j, &f->e),
		  "append of an invalid a");
	pthread_join(th, NULL);
	check_ret(0, arg.r, "append of b after a gave up");
	check_int(1, vs_journal_pending(f->j), "pending");
	check_int(2, vs_journal_low_water(f->j), "low water: the gap");
	check_peek(f, 2, "b");
	append_write(f, "c", 3); /* 2 is taken: no reuse */
	check_int(0, count_files(f, ".tmp"), "temp files");
	free(b);
}

static void test_append_peek_done(void **state)
{
	struct fixture *f = *state;
	char opid[VS_UUID_BUFSZ];

	check_ret(-ENOENT, vs_journal_peek(f->j, &f->got), "peek of empty");
	check_int(1, vs_journal_low_water(f->j), "low water of empty");
	append_write(f, "a", 1);
	strcpy(opid, f->e.op_id);
	check_int(36, strlen(opid), "a fresh op_id");
	append_write(f, "b\nwith newline", 2);
	append_write(f, "c ✓", 3);
	check_bool(0 != strcmp(opid, f->e.op_id), true, "op_ids differ");
	check_int(3, vs_journal_pending(f->j), "pending");
	check_int(3, count_files(f, ""), "entry files");
	check_int(0, count_files(f, ".tmp"), "temp files");

	check_peek(f, 1, "a");
	check_str(opid, f->got.op_id, "op_id kept");
	check_peek(f, 1, "a"); /* peek does not consume */
	check_ret(0, vs_journal_done(f->j, 1), "done 1");
	check_ret(-ENOENT, vs_journal_done(f->j, 1), "done 1 again");
	check_int(2, vs_journal_low_water(f->j), "low water");

	/* a restart: the rest is replayed in order with the same op_ids */
	reopen(f);
	check_int(2, vs_journal_pending(f->j), "pending after reopen");
	check_peek(f, 2, "b\nwith newline");
	check_ret(0, vs_journal_done(f->j, 2), "done 2");
	append_write(f, "d", 4); /* continues after the highest */
	check_peek(f, 3, "c ✓");
	check_ret(0, vs_journal_done(f->j, 3), "done 3");
	check_peek(f, 4, "d");
	check_ret(0, vs_journal_done(f->j, 4), "done 4");
	check_ret(-ENOENT, vs_journal_peek(f->j, &f->got), "peek when empty");
	check_int(0, count_all(f), "files left");
	check_int(5, vs_journal_low_water(f->j), "low water when empty");

	/* an op_id given by the caller is kept */
	make_write(&f->e, "e", 2);
	set_str(f->e.op_id, OPID);
	check_ret(0, vs_journal_append(f->j, &f->e), "append with op_id");
	reopen(f);
	check_peek(f, 5, "e");
	check_str(OPID, f->got.op_id, "the caller's op_id");
	check_int(2, f->got.base_version, "base kept");
}

static void test_malformed_moved_aside(void **state)
{
	struct fixture *f = *state;
	char buf[VS_JENTRY_MAX];

	append_write(f, "a", 1);
	append_write(f, "b", 2);
	append_write(f, "c", 3);
	vs_journal_free(f->j);
	f->j = NULL;
	/* damage entry 2, leave a stale temp file, misname entry 3 */
	write_raw(f, "00000000000000000002", "vsync-journal 1\nlseq=2\nop=wr");
	write_raw(f, "00000000000000000009.tmp", "half");
	make_write(&f->e, "c", -1);
	set_str(f->e.op_id, OPID);
	f->e.lseq = 3;
	assert_true(vs_jentry_format(buf, sizeof(buf), &f->e) > 0);
	write_raw(f, "00000000000000000007", buf); /* lseq line says 3 */
	check_ret(0, vs_journal_open(&f->j, f->dir_fd, NULL), "open");
	check_int(2, vs_journal_pending(f->j), "pending (1 and 3)");
	check_int(2, count_files(f, ".bad"), ".bad files");
	check_ret(0, faccessat(f->dir_fd, "00000000000000000002.bad", F_OK, 0),
		  "entry 2 moved to .bad");
	check_ret(0, faccessat(f->dir_fd, "00000000000000000007.bad", F_OK, 0),
		  "misnamed entry moved to .bad");
	check_int(0, count_files(f, ".tmp"), "temp files left");
	check_peek(f, 1, "a");
	check_ret(0, vs_journal_done(f->j, 1), "done 1");
	/* damaged after open: quarantined at peek, the next one returned */
	write_raw(f, "00000000000000000003", "garbage");
	check_ret(-ENOENT, vs_journal_peek(f->j, &f->got), "peek");
	check_int(3, count_files(f, ".bad"), ".bad files after peek");
	check_int(0, vs_journal_pending(f->j), "pending");
	/* lseqs continue above the .bad ones */
	append_write(f, "d", 8);
}

struct fifo_call {
	struct fixture *f;
	int step, r;
};

/* One step of test_not_a_file, run where it may hang. */
static void *fifo_step(void *arg)
{
	struct fifo_call *c = arg;
	struct fixture *f = c->f;

	if (c->step == 0) {
		c->r = vs_journal_open(&f->j, f->dir_fd, NULL);
	} else if (c->step == 1) {
		make_write(&f->e, "c", -1);
		c->r = vs_journal_append(f->j, &f->e);
	} else {
		c->r = vs_journal_sync(f->j, 0);
	}
	return NULL;
}

static int fifo_within(struct fixture *f, int step, const char *what)
{
	struct fifo_call c = {f, step, 1};

	run_within(fifo_step, &c, what);
	return c.r;
}

/* Whatever runs in the container can write the journal directory: a
 * FIFO put at an entry's name, a pooled file's or an entry not synced
 * yet never holds the journal (no open waits for the FIFO's other end).
 * The entry is moved aside as malformed, the pooled file replaced, the
 * sync skips it. */
static void test_not_a_file(void **state)
{
	struct fixture *f = *state;
	char name[NAME_MAX + 1];
	DIR *d;
	struct dirent *de;

	append_write(f, "a", 1);
	append_write(f, "b", 2);
	vs_journal_free(f->j);
	f->j = NULL;
	check_int(0, unlinkat(f->dir_fd, "00000000000000000002", 0), "unlink");
	check_int(0, mkfifoat(f->dir_fd, "00000000000000000002", 0600),
		  "mkfifo at entry 2");
	check_ret(0, fifo_within(f, 0, "vs_journal_open"),
		  "open with a FIFO at an entry's name");
	check_int(1, vs_journal_pending(f->j), "pending (1)");
	check_ret(0, faccessat(f->dir_fd, "00000000000000000002.bad", F_OK, 0),
		  "the FIFO moved to .bad");
	/* every pooled file a FIFO (none has a reader) */
	vs_journal_keep_room(f->j);
	d = fdopendir(dup(f->dir_fd));
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "free.", 5) != 0)
			continue;
		snprintf(name, sizeof(name), "%s", de->d_name);
		check_int(0, unlinkat(f->dir_fd, name, 0), "unlink %s", name);
		check_int(0, mkfifoat(f->dir_fd, name, 0600), "mkfifo %s",
			  name);
	}
	closedir(d);
	check_ret(0, fifo_within(f, 1, "vs_journal_append"),
		  "append with FIFOs in the pool");
	check_int(3, f->e.lseq, "lseq of the append");
	check_peek(f, 1, "a");
	/* an entry not synced yet, then a FIFO in its place */
	check_int(0, unlinkat(f->dir_fd, "00000000000000000003", 0), "unlink");
	check_int(0, mkfifoat(f->dir_fd, "00000000000000000003", 0600),
		  "mkfifo at entry 3");
	check_ret(0, fifo_within(f, 2, "vs_journal_sync"),
		  "sync with a FIFO at an entry's name");
}

struct collected {
	char paths[8][16];
	uint64_t lseqs[8];
	size_t n;
};

static int collect(void *arg, const struct vs_jentry *e)
{
	struct collected *c = arg;

	if (c->n == 8)
		return -E2BIG;
	snprintf(c->paths[c->n], sizeof(c->paths[0]), "%.15s", e->path);
	c->lseqs[c->n++] = e->lseq;
	return 0;
}

/* Two handles on one directory (two agents sharing a cache dir, which
 * vsync-mount's lock prevents): both start at lseq 1, and neither may
 * rename over the other's entries; a taken lseq moves to the next. */
static void test_two_handles_lose_nothing(void **state)
{
	static const char *const want[] = {"a1", "b1", "a2", "b2", "a3"};
	struct fixture *f = *state;
	struct vs_journal *j2 = NULL;
	struct collected c = {0};

	check_ret(0, vs_journal_open(&j2, f->dir_fd, NULL),
		  "open a second handle");
	append_write(f, "a1", 1);
	make_write(&f->e, "b1", -1);
	check_ret(0, vs_journal_append(j2, &f->e), "append 'b1' to handle 2");
	check_int(2, f->e.lseq, "lseq of 'b1' (1 was taken)");
	append_write(f, "a2", 3);
	make_write(&f->e, "b2", -1);
	check_ret(0, vs_journal_append(j2, &f->e), "append 'b2' to handle 2");
	check_int(4, f->e.lseq, "lseq of 'b2'");
	/* a temp file of the other handle's lseq in flight is skipped too */
	write_raw(f, "00000000000000000005.tmp", "in flight");
	append_write(f, "a3", 6);
	assert_int_equal(0, unlinkat(f->dir_fd, "00000000000000000005.tmp", 0));
	check_int(3, vs_journal_pending(f->j), "pending in handle 1");
	check_int(2, vs_journal_pending(j2), "pending in handle 2");
	vs_journal_free(j2);
	check_int(5, count_files(f, ""), "entry files");
	reopen(f);
	check_ret(0, vs_journal_each(f->j, collect, &c), "each");
	check_int(5, c.n, "entries after a reopen");
	for (size_t i = 0; i < 5 && i < c.n; i++) {
		check_str(want[i], c.paths[i], "entry %zu", i);
		check_int(i + 1 + (i == 4), c.lseqs[i], "lseq of '%s'",
			  want[i]);
	}
}

/* Nothing but the previous entries in the dir, the pending count and the
 * next lseq unchanged. */
static void check_unchanged(struct fixture *f, const char *what)
{
	check_int(1, vs_journal_pending(f->j), "%s: pending", what);
	check_int(1, count_files(f, ""), "%s: entry files", what);
	check_int(0, count_files(f, ".tmp"), "%s: temp files", what);
	append_write(f, "after", 2);
	check_ret(0, vs_journal_done(f->j, 2), "%s: done", what);
}

static void test_failed_append_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct rlimit old, small;
	int r;

	append_write(f, "first", 1);

	/* a file size limit hit in the middle of the write */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(0, getrlimit(RLIMIT_FSIZE, &old));
	small = old;
	small.rlim_cur = 20;
	assert_int_equal(0, setrlimit(RLIMIT_FSIZE, &small));
	make_write(&f->e, "too big", -1);
	r = vs_journal_append(f->j, &f->e);
	setrlimit(RLIMIT_FSIZE, &old);
	check_ret(-EFBIG, r, "append over RLIMIT_FSIZE");
	check_unchanged(f, "after EFBIG");

	/* a read-only dir (root writes anyway: skipped as root) */
	if (geteuid() != 0) {
		chmod(f->dir, 0500);
		make_write(&f->e, "ro", -1);
		r = vs_journal_append(f->j, &f->e);
		chmod(f->dir, 0700);
		check_ret(-EACCES, r, "append in a read-only dir");
		check_unchanged(f, "after EACCES");
	}

	/* a dir removed under the journal */
	{
		struct vs_journal *j = NULL;
		char gone[PATH_MAX + 8];
		int fd;

		snprintf(gone, sizeof(gone), "%s/gone", f->tmp);
		assert_int_equal(0, mkdir(gone, 0700));
		fd = open(gone, O_RDONLY | O_DIRECTORY);
		assert_true(fd >= 0);
		check_ret(0, vs_journal_open(&j, fd, NULL), "open on 'gone'");
		assert_int_equal(
		    0, nftw(gone, rm_entry, 16, FTW_DEPTH | FTW_PHYS));
		make_write(&f->e, "x", -1);
		check_ret(-ENOENT, vs_journal_append(j, &f->e),
			  "append in a removed dir");
		check_int(0, vs_journal_pending(j), "pending in a removed dir");
		check_int(1, vs_journal_low_water(j), "low water unchanged");
		vs_journal_free(j);
		close(fd);
	}
	reopen(f);
	check_int(1, vs_journal_pending(f->j), "pending after all");
}

static void test_put_content(void **state)
{
	struct fixture *f = *state;
	struct vs_cache c;
	char cdir[PATH_MAX], hash[VS_HASH_HEX_LEN + 1];

	snprintf(cdir, sizeof(cdir), "%s/cache", f->tmp);
	check_ret(0, vs_cache_init(&c, cdir), "vs_cache_init");
	check_ret(0, vs_journal_put_content(&c, "abc", 3, -1, hash),
		  "vs_journal_put_content");
	check_ret(0, vs_journal_put_content(&c, "abc", 3, -1, hash),
		  "vs_journal_put_content again");
	check_str(H_ABC, hash, "hash of abc");
	check_bool(true, vs_cache_has(&c, H_ABC), "object stored");
	vs_cache_release(&c);
}

static void test_uuid(void **state)
{
	char a[VS_UUID_BUFSZ], b[VS_UUID_BUFSZ];

	(void)state;
	check_ret(0, vs_uuid_random(a), "vs_uuid_random");
	check_ret(0, vs_uuid_random(b), "vs_uuid_random");
	check_int(36, strlen(a), "length");
	check_bool(true, strcmp(a, b) != 0, "two differ");
	check_int('4', a[14], "version nibble");
	check_bool(true, strchr("89ab", a[19]) != NULL, "variant nibble");
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			check_int('-', a[i], "dash at %d", i);
		else
			check_bool(true, strchr("0123456789abcdef", a[i]),
				   "hex digit at %d", i);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_exact_text, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_format_rejects, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test_setup_teardown(test_group_sync, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_reserved_turn, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_append_peek_done,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_moved_aside,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_failed_append_leaves_nothing,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_two_handles_lose_nothing,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_put_content, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_pool, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_file, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_sync_objects, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test(test_uuid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
