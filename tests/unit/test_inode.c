/*
 * test_inode.c - unit tests of fuse/inode.c (the inode table of the FUSE
 * layer, fuse/inode_i.h). Pure: no FUSE session, no kernel; the table is
 * driven the way the request handlers drive it (lookup counts are bumped
 * by hand where a handler would reply with an entry).
 *
 * Covers:
 *  - inode_table_build from a manifest: nested paths whose parents are not
 *    listed (the implied dirs are created with mode 0755, an explicit dir
 *    entry listed later sets its own mode), file/dir/symlink metadata
 *    copied (a dir's size is 0, a symlink's size is its target length),
 *    the root's mtime the newest entry's, a later duplicate updating the
 *    metadata;
 *  - children kept sorted (strcmp order) and found by inode_child_find,
 *    misses returning NULL; a table large enough to grow the ino hash,
 *    every inode found again by inode_table_get;
 *  - inode_path giving back each manifest path ("" for the root), and
 *    -ENAMETOOLONG when the buffer is one byte short;
 *  - entries under local-only names (default rules: node_modules at any
 *    depth, dist, ...) skipped while near misses are kept; no rules keeps
 *    everything;
 *  - invalid paths ("../x", "/abs", "a//b", "a/", "", ".") skipped;
 *  - a path listed under a file ("a.txt/b") skipped, and a file listed
 *    where an implied dir already is skipped;
 *  - inode_local_get creating a local inode (it takes the O_PATH fd given)
 *    and finding it again by upper dev/ino (the fd given then stays the
 *    caller's), one lookup counted each time; the same ino on another
 *    device is another inode; the local hash growing past its initial
 *    size with every inode still found;
 *  - inode_forget: a local inode freed at 0 with its fd closed, nothing
 *    else freed; the upper file looked up again gets a fresh inode;
 *    synced inodes never freed;
 *  - inode_content_set: content the cache keeps in memory (a sealed memfd)
 *    counted in vs_cache_mem_bytes() by its pages and one more, once,
 *    until the inode has another fd or is freed (its fd closed); any
 *    other fd not counted;
 *  - inode_pending_set / inode_pending_find: the inode whose pending op
 *    is the one asked is found whatever its path has become (its
 *    directory moved), a cleared, replaced or unknown op finds nothing,
 *    and an inode freed with its op set leaves the list;
 *  - inode_moved_find: a file renamed and then saved (the save its pending
 *    op) is found by the rename's lseq, not by another entry's, and not
 *    once its last op is cleared (which clears pending_moved);
 *  - fd_locks: taken and let go one after the other, fine; a second
 *    inode's taken while one is held aborts (builds without NDEBUG: the
 *    sanitizer build), as two inodes may share one lock.
 *
 * Each case gets a fresh table and manifest from setup (teardown releases
 * both).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inode_i.h"
#include "vsync/cache.h"
#include "vsync/log.h"
#include "vsync/manifest.h"
#include "vsync/path.h"

#include "unit_check.h"

#define H_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static const struct vs_local_rules default_rules = {
    .names = (const char **)vs_local_default_names,
};

/* ------------------------------------------------------------ fixtures */

struct fixture {
	struct vs_inode_table t;
	struct vs_manifest m;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (inode_table_init(&f->t) < 0) {
		free(f);
		return -1;
	}
	vs_manifest_init(&f->m);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	inode_table_release(&f->t);
	vs_manifest_release(&f->m);
	free(f);
	return 0;
}

/* ------------------------------------------------------------ helpers */

static void add(struct fixture *f, enum vs_kind kind, const char *path,
		uint32_t mode, int64_t mtime_ns, const char *target)
{
	struct vs_manifest_entry e = {
	    .path = (char *)path,
	    .target = (char *)target,
	    .kind = kind,
	    .mode = mode,
	    .size = kind == VS_KIND_DIR ? 4096 : 3,
	    .version = 7,
	    .mtime_ns = mtime_ns,
	};

	if (kind != VS_KIND_DIR)
		strcpy(e.hash, H_ABC);
	check_ret(0, vs_manifest_add(&f->m, &e), "vs_manifest_add(\"%s\")",
		  path);
}

static void build(struct fixture *f, const struct vs_local_rules *rules)
{
	check_ret(0, inode_table_build(&f->t, &f->m, rules),
		  "inode_table_build of %zu entries", f->m.n);
}

/* Walk @path from the root with inode_child_find; NULL if any part is
 * missing. */
static struct vs_inode *walk(struct fixture *f, const char *path)
{
	struct vs_inode *in = f->t.root;
	char buf[VS_PATH_MAX + 1], *p, *slash;

	if (!path[0])
		return in;
	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf; in; p = slash + 1) {
		slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		in = inode_child_find(in, p);
		if (!slash)
			break;
	}
	return in;
}

static struct vs_inode *must_walk(struct fixture *f, const char *path)
{
	struct vs_inode *in = walk(f, path);

	if (!in)
		fail_msg("'%s': expected in the tree, not found", path);
	return in;
}

static void check_absent(struct fixture *f, const char *path)
{
	struct vs_inode *in = walk(f, path);

	if (in)
		fail_msg("'%s': expected absent from the tree, found inode "
			 "%llu",
			 path, (unsigned long long)in->ino);
}

static void check_path_of(const struct vs_inode *in, const char *want)
{
	char buf[VS_PATH_MAX + 1];

	check_ret(0, inode_path(in, buf, sizeof(buf)), "inode_path(\"%s\")",
		  want);
	check_str(want, buf, "inode_path of inode %llu",
		  (unsigned long long)in->ino);
}

static void check_dir(struct fixture *f, const char *path, uint32_t mode)
{
	struct vs_inode *in = must_walk(f, path);

	check_str("dir", vs_kind_name(in->kind), "kind of '%s'", path);
	check_int(mode, in->mode, "mode of '%s' (octal %o)", path, mode);
	check_int(0, in->size, "size of dir '%s'", path);
	check_bool(false, in->local, "'%s' is synced", path);
}

/* Children of @dir strictly increasing in strcmp order, with @dir as
 * parent. */
static void check_sorted(const struct vs_inode *dir)
{
	char path[VS_PATH_MAX + 1];

	inode_path(dir, path, sizeof(path));
	for (size_t i = 0; i < dir->nchildren; i++) {
		check_ptr(dir, dir->children[i]->parent,
			  "parent of '%s' in '%s'", dir->children[i]->name,
			  path);
		if (i > 0 && strcmp(dir->children[i - 1]->name,
				    dir->children[i]->name) >= 0)
			fail_msg("children of '%s': expected sorted, got "
				 "'%s' at %zu before '%s'",
				 path, dir->children[i - 1]->name, i - 1,
				 dir->children[i]->name);
		check_sorted(dir->children[i]);
	}
}

/* A descriptor standing for a local inode's O_PATH fd */
static int some_fd(void)
{
	int fd = open("/dev/null", O_PATH | O_CLOEXEC);

	if (fd < 0)
		fail_msg("open /dev/null: %s", strerror(errno));
	return fd;
}

/* A memfd the cache makes for content it keeps in memory (sealed). */
static int memory_fd(void)
{
	int fd = -1,
	    r = vs_cache_memory_open("e3b0c44298fc1c149afbf4c8996fb92427ae41e46"
				     "49b934ca495991b7852b855",
				     "", 0, &fd);

	if (r < 0)
		fail_msg("vs_cache_memory_open: %s", strerror(-r));
	return fd;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* A "kernel lookup" of upper file @dev/@ino: the inode, one lookup more */
static struct vs_inode *local_lookup(struct fixture *f, dev_t dev, ino_t ino,
				     enum vs_kind kind)
{
	int fd = some_fd();
	struct vs_inode *in = inode_local_get(&f->t, dev, ino, kind, &fd);

	if (!in)
		fail_msg("inode_local_get(upper %lu): expected an inode, got "
			 "NULL",
			 (unsigned long)ino);
	if (fd >= 0)
		close(fd);
	return in;
}

/* ------------------------------------------------------------ build */

static void test_build_implied_dirs(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *in;

	add(f, VS_KIND_FILE, "src/lib/util.c", 0600, 100, NULL);
	add(f, VS_KIND_FILE, "a/b/c/d/e.txt", 0644, 300, NULL);
	add(f, VS_KIND_DIR, "src", 0700, 200, NULL); /* after its child */
	add(f, VS_KIND_SYMLINK, "src/link", 0777, 50, "lib/util.c");
	add(f, VS_KIND_FILE, "README.md", 0644, 10, NULL);
	build(f, &default_rules);

	check_dir(f, "", 0755);
	check_dir(f, "src", 0700);
	check_dir(f, "src/lib", 0755);
	check_dir(f, "a", 0755);
	check_dir(f, "a/b", 0755);
	check_dir(f, "a/b/c", 0755);
	check_dir(f, "a/b/c/d", 0755);
	check_int(300, f->t.root->mtime_ns, "root mtime (newest entry)");

	in = must_walk(f, "src/lib/util.c");
	check_str("file", vs_kind_name(in->kind), "kind of src/lib/util.c");
	check_int(0600, in->mode, "mode of src/lib/util.c");
	check_int(3, in->size, "size of src/lib/util.c");
	check_int(7, in->version, "version of src/lib/util.c");
	check_int(100, in->mtime_ns, "mtime of src/lib/util.c");
	check_str(H_ABC, in->hash, "hash of src/lib/util.c");
	check_int(-1, in->fd, "fd of src/lib/util.c before open");
	check_int(200, must_walk(f, "src")->mtime_ns, "mtime of src");

	in = must_walk(f, "src/link");
	check_str("symlink", vs_kind_name(in->kind), "kind of src/link");
	check_str("lib/util.c", in->target, "target of src/link");
	check_int(strlen("lib/util.c"), in->size, "size of src/link");

	/* root + src lib util.c link + a b c d e.txt + README.md */
	check_int(11, f->t.count, "inodes in the table");
	check_int(3, f->t.root->nchildren,
		  "entries in the root (src a README.md)");
	check_sorted(f->t.root);
}

static void test_build_duplicate_updates(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *in;

	add(f, VS_KIND_FILE, "x", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "x", 0755, 2, NULL);
	build(f, NULL);
	in = must_walk(f, "x");
	check_int(0755, in->mode, "mode of 'x' listed twice (last wins)");
	check_int(2, in->mtime_ns, "mtime of 'x' listed twice (last wins)");
	check_int(1, f->t.root->nchildren, "entries in the root");
}

static void test_children_sorted_and_found(void **state)
{
	static const char *const names[] = {
	    "zeta", "alpha", "Beta", "a.b",	"aa", "a", "\xc3\xa9t\xc3\xa9",
	    "_x",   "0",     "a b",  "alpha-2", "~",
	};
	const size_t n = sizeof(names) / sizeof(names[0]);
	struct fixture *f = *state;
	char path[64];

	for (size_t i = 0; i < n; i++) {
		add(f, VS_KIND_FILE, names[i], 0644, 1, NULL);
		snprintf(path, sizeof(path), "dir/%s", names[n - 1 - i]);
		add(f, VS_KIND_FILE, path, 0644, 1, NULL);
	}
	build(f, NULL);
	check_int(n + 1, f->t.root->nchildren, "entries in the root");
	check_sorted(f->t.root);
	for (size_t i = 0; i < n; i++) {
		struct vs_inode *in = inode_child_find(f->t.root, names[i]);

		if (!in)
			fail_msg("inode_child_find(root, '%s'): expected an "
				 "inode, got NULL",
				 names[i]);
		check_str(names[i], in->name, "name of the inode found");
		check_ptr(in, inode_table_get(&f->t, in->ino),
			  "inode_table_get(%llu) for '%s'",
			  (unsigned long long)in->ino, names[i]);
	}
	check_ptr(NULL, inode_child_find(f->t.root, "alph"),
		  "inode_child_find(root, 'alph')");
	check_ptr(NULL, inode_child_find(f->t.root, "zz"),
		  "inode_child_find(root, 'zz')");
	check_ptr(NULL, inode_child_find(f->t.root, ""),
		  "inode_child_find(root, '')");
	check_ptr(NULL, inode_child_find(must_walk(f, "zeta"), "x"),
		  "inode_child_find(file 'zeta', 'x')");
	check_ptr(NULL, inode_table_get(&f->t, 0), "inode_table_get(0)");
	check_ptr(NULL, inode_table_get(&f->t, f->t.next_ino),
		  "inode_table_get(next_ino)");
}

static void test_large_tree(void **state)
{
	struct fixture *f = *state;
	char path[64];

	/* 3000 files in 30 dirs: past the initial 1024-bucket hash */
	for (int i = 2999; i >= 0; i--) {
		snprintf(path, sizeof(path), "d%02d/f%04d", i % 30, i);
		add(f, VS_KIND_FILE, path, 0644, i, NULL);
	}
	build(f, NULL);
	check_int(1 + 30 + 3000, f->t.count, "inodes in the table");
	check_sorted(f->t.root);
	for (int i = 0; i < 3000; i++) {
		struct vs_inode *in;

		snprintf(path, sizeof(path), "d%02d/f%04d", i % 30, i);
		in = must_walk(f, path);
		check_ptr(in, inode_table_get(&f->t, in->ino),
			  "inode_table_get(%llu) for '%s'",
			  (unsigned long long)in->ino, path);
		check_int(i, in->mtime_ns, "mtime of '%s'", path);
	}
	for (uint64_t ino = 1; ino < f->t.next_ino; ino++) {
		struct vs_inode *in = inode_table_get(&f->t, ino);

		if (!in || in->ino != ino)
			fail_msg("inode_table_get(%llu): expected that inode, "
				 "got %p",
				 (unsigned long long)ino, (void *)in);
	}
}

static void test_inode_path(void **state)
{
	static const char *const paths[] = {
	    "README.md",
	    "src/app.tsx",
	    "src/components/ui/button.tsx",
	    "caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt",
	    "with space/and\nnewline",
	};
	struct fixture *f = *state;
	char buf[64];

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		add(f, VS_KIND_FILE, paths[i], 0644, 1, NULL);
	build(f, NULL);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		check_path_of(must_walk(f, paths[i]), paths[i]);
	check_path_of(must_walk(f, "src/components"), "src/components");
	check_path_of(f->t.root, "");

	/* exactly strlen + 1 fits, one less does not */
	memset(buf, 'X', sizeof(buf));
	check_ret(0, inode_path(must_walk(f, "src/app.tsx"), buf, 12),
		  "inode_path(\"src/app.tsx\") into 12 bytes");
	check_str("src/app.tsx", buf, "inode_path into an exact buffer");
	check_ret(-ENAMETOOLONG,
		  inode_path(must_walk(f, "src/app.tsx"), buf, 11),
		  "inode_path(\"src/app.tsx\") into 11 bytes");
	check_ret(-ENAMETOOLONG, inode_path(f->t.root, buf, 0),
		  "inode_path(root) into 0 bytes");
	check_ret(0, inode_path(f->t.root, buf, 1),
		  "inode_path(root) into 1 byte");
}

static void test_local_only_skipped(void **state)
{
	struct fixture *f = *state;

	add(f, VS_KIND_DIR, "node_modules", 0755, 1, NULL);
	add(f, VS_KIND_FILE, "node_modules/react/index.js", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "packages/web/node_modules/x/y.js", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "packages/web/package.json", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "a/dist/x", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "app/.next/cache/z", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "src/dist.js", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "node_modules2/keep.js", 0644, 1, NULL);
	build(f, &default_rules);

	check_absent(f, "node_modules");
	check_absent(f, "packages/web/node_modules");
	check_absent(f, "a");
	check_absent(f, "app");
	must_walk(f, "packages/web/package.json");
	must_walk(f, "src/dist.js");
	must_walk(f, "node_modules2/keep.js");
	check_int(1 + 3 + 2 + 2, f->t.count,
		  "inodes in the table (root, packages/web/package.json, "
		  "src/dist.js, node_modules2/keep.js)");
}

static void test_no_rules_keeps_everything(void **state)
{
	struct fixture *f = *state;

	add(f, VS_KIND_FILE, "node_modules/react/index.js", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "dist/out.js", 0644, 1, NULL);
	build(f, NULL);
	must_walk(f, "node_modules/react/index.js");
	must_walk(f, "dist/out.js");
}

static void test_invalid_paths_skipped(void **state)
{
	static const char *const bad[] = {"../x", "/abs", "a//b",   "a/",
					  "",	  ".",	  "x/../y", "./z"};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		add(f, VS_KIND_FILE, bad[i], 0644, 999, NULL);
	add(f, VS_KIND_FILE, "ok.txt", 0644, 5, NULL);
	build(f, NULL);
	check_int(1, f->t.root->nchildren, "entries in the root");
	check_int(2, f->t.count, "inodes in the table (root, ok.txt)");
	must_walk(f, "ok.txt");
	check_int(5, f->t.root->mtime_ns,
		  "root mtime (skipped entries do not count)");
}

static void test_path_under_file_skipped(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *in;

	add(f, VS_KIND_FILE, "a.txt", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "a.txt/b", 0644, 1, NULL);
	add(f, VS_KIND_DIR, "a.txt/c/d", 0755, 1, NULL);
	add(f, VS_KIND_SYMLINK, "l", 0777, 1, "a.txt");
	add(f, VS_KIND_FILE, "l/x", 0644, 1, NULL);
	/* an implied dir, then the same name listed as a file */
	add(f, VS_KIND_FILE, "d/inner", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "d", 0644, 1, NULL);
	build(f, NULL);

	in = must_walk(f, "a.txt");
	check_str("file", vs_kind_name(in->kind), "kind of a.txt");
	check_int(0, in->nchildren, "children of the file a.txt");
	check_int(0, must_walk(f, "l")->nchildren, "children of the link l");
	check_dir(f, "d", 0755);
	must_walk(f, "d/inner");
	/* root a.txt l d d/inner */
	check_int(5, f->t.count, "inodes in the table");
}

/* ------------------------------------------------------------ local */

static void test_local_get_reuse(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *nm, *again, *other;
	size_t count = f->t.count;
	int fd = some_fd(), fd2 = some_fd();

	nm = inode_local_get(&f->t, 5, 100, VS_KIND_DIR, &fd);
	check_bool(true, nm != NULL, "inode_local_get of a new upper file");
	check_bool(true, nm->local, "a local inode");
	check_int(-1, fd, "the fd given, taken by the new inode");
	check_bool(true, nm->fd >= 0 && fd_open(nm->fd),
		   "the inode holds an open fd (%d)", nm->fd);
	check_int(5, inode_local(nm)->upper_dev, "upper dev");
	check_int(100, inode_local(nm)->upper_ino, "upper ino");
	check_ptr(NULL, nm->parent, "a local inode has no parent");
	check_int(1, nm->nlookup, "lookups of a new inode");
	check_ptr(nm, inode_table_get(&f->t, nm->ino), "inode_table_get");
	check_ptr(nm, inode_local_find(&f->t, 5, 100), "inode_local_find");
	check_int(count + 1, f->t.count, "inodes after one local lookup");

	/* the same upper file again (another name, a hard link, after a
	 * rename): the same inode, one lookup more, the fd stays ours */
	again = inode_local_get(&f->t, 5, 100, VS_KIND_DIR, &fd2);
	check_ptr(nm, again, "inode_local_get of upper 5/100 again");
	check_bool(true, fd2 >= 0 && fd_open(fd2),
		   "the fd given stays the caller's");
	check_int(2, nm->nlookup, "lookups after a repeat lookup");
	check_int(count + 1, f->t.count, "inodes after a repeat lookup");

	/* the same ino on another device, another ino: other inodes */
	other = inode_local_get(&f->t, 6, 100, VS_KIND_FILE, &fd2);
	check_bool(true, other && other != nm, "upper 6/100: its own inode");
	check_int(-1, fd2, "the fd given, taken by the new inode");
	other = local_lookup(f, 5, 101, VS_KIND_FILE);
	check_bool(true, other != nm && other->ino != nm->ino,
		   "upper 5/101: its own inode and ino");
	check_ptr(NULL, inode_local_find(&f->t, 5, 102),
		  "inode_local_find of an upper file never looked up");
}

static void test_local_hash_grows(void **state)
{
	struct fixture *f = *state;
	size_t count = f->t.count, n = 3000;
	struct vs_inode **ins = calloc(n, sizeof(*ins));

	check_bool(true, ins != NULL, "memory for the test");
	for (size_t i = 0; i < n; i++)
		ins[i] = local_lookup(f, 1, (ino_t)(1000 + i), VS_KIND_FILE);
	check_int(count + n, f->t.count, "inodes after %zu lookups", n);
	for (size_t i = 0; i < n; i++)
		check_ptr(ins[i], inode_local_find(&f->t, 1, (ino_t)(1000 + i)),
			  "inode_local_find of upper ino %zu", 1000 + i);
	for (size_t i = 0; i < n; i++)
		inode_forget(&f->t, ins[i], 1);
	check_int(count, f->t.count, "inodes after every one was forgotten");
	check_ptr(NULL, inode_local_find(&f->t, 1, 1000),
		  "inode_local_find after the forget");
	free(ins);
}

static void test_forget_local(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *dir, *file;
	uint64_t file_ino;
	size_t count = f->t.count;
	int fd;

	dir = local_lookup(f, 1, 100, VS_KIND_DIR);
	file = local_lookup(f, 1, 101, VS_KIND_FILE);
	local_lookup(f, 1, 101, VS_KIND_FILE); /* two kernel lookups */
	file_ino = file->ino;
	fd = file->fd;

	/* the kernel forgets the directory first: the file is unaffected */
	inode_forget(&f->t, dir, 1);
	check_ptr(NULL, inode_local_find(&f->t, 1, 100), "the dir freed");
	check_ptr(file, inode_table_get(&f->t, file_ino), "the file kept");
	check_bool(true, fd_open(fd), "the file's fd still open");

	inode_forget(&f->t, file, 1);
	check_ptr(file, inode_table_get(&f->t, file_ino),
		  "the file with one lookup left");
	check_int(1, file->nlookup, "lookups of the file");
	inode_forget(&f->t, file, 1);
	check_ptr(NULL, inode_table_get(&f->t, file_ino), "the file freed");
	check_bool(false, fd_open(fd), "the file's fd closed");
	check_int(count, f->t.count, "inodes after both were forgotten");

	/* the upper file looked up again: a fresh inode */
	file = local_lookup(f, 1, 101, VS_KIND_FILE);
	check_bool(true, file->ino != file_ino,
		   "a new ino after the old one was freed (got %llu twice)",
		   (unsigned long long)file_ino);
	check_int(1, file->nlookup, "lookups of the new inode");
}

static void test_forget_synced_kept(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *in;

	add(f, VS_KIND_FILE, "src/a.c", 0644, 1, NULL);
	build(f, NULL);
	in = must_walk(f, "src/a.c");
	in->nlookup = 2;
	inode_forget(&f->t, in, 2);
	check_ptr(in, inode_table_get(&f->t, in->ino),
		  "synced inode after its lookups were forgotten");
	check_int(0, in->nlookup, "lookups of the synced inode");
	check_ptr(in, must_walk(f, "src/a.c"), "synced inode still in its dir");
}

/* Content kept in memory is counted while an inode has it, once. */
static void test_content_in_memory(void **state)
{
	struct fixture *f = *state;
	uint64_t base = vs_cache_mem_bytes();
	struct vs_inode *in;
	int fd = memory_fd(), fd2 = some_fd();

	add(f, VS_KIND_FILE, "src/a.c", 0644, 1, NULL);
	build(f, NULL);
	in = must_walk(f, "src/a.c");
	in->size = 100;
	inode_content_set(in, fd);
	check_int(fd, in->fd, "the content fd set");
	check_int(base + 8192, vs_cache_mem_bytes(),
		  "counted: a page of bytes and one for the memfd");
	inode_content_set(in, fd);
	check_int(base + 8192, vs_cache_mem_bytes(), "the same memfd again");
	inode_content_set(in, fd2); /* not in memory: a cache object's, say */
	close(fd);
	check_int(base, vs_cache_mem_bytes(), "once the inode has another fd");
	fd = memory_fd();
	in->size = 5000;
	inode_content_set(in, fd);
	close(fd2);
	check_int(base + 3 * 4096, vs_cache_mem_bytes(), "two pages and one");
	inode_synced_remove(&f->t, in); /* the kernel never knew it: freed */
	check_int(base, vs_cache_mem_bytes(), "once the inode is freed");
	check_int(0, fd_open(fd), "its memfd closed with it");
}

/* The commit finds the inode of its op wherever it is (write.c,
 * vs_fs_committed). */
static void test_pending_index(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *a, *b, *c, *dir;

	add(f, VS_KIND_FILE, "d/a.c", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "d/b.c", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "c.c", 0644, 1, NULL);
	build(f, NULL);
	a = must_walk(f, "d/a.c");
	b = must_walk(f, "d/b.c");
	c = must_walk(f, "c.c");
	dir = must_walk(f, "d");
	check_ptr(NULL, inode_pending_find(&f->t, "op-a"), "none pending");
	inode_pending_set(&f->t, a, "op-a", 7);
	inode_pending_set(&f->t, b, "op-b", 8);
	inode_pending_set(&f->t, c, "op-c", 9);
	check_int(0, inode_synced_move(dir, f->t.root, "e"), "d moved to e");
	check_ptr(NULL, inode_lookup_path(&f->t, "d/a.c"), "d/a.c is gone");
	check_ptr(a, inode_pending_find(&f->t, "op-a"), "a found by its op");
	check_int(7, inode_save_r(a)->pending_lseq, "its lseq");
	check_ptr(b, inode_pending_find(&f->t, "op-b"), "b found by its op");
	check_ptr(c, inode_pending_find(&f->t, "op-c"), "c found by its op");
	inode_pending_set(&f->t, b, "op-b2", 10); /* a later save */
	check_ptr(NULL, inode_pending_find(&f->t, "op-b"), "b's old op");
	check_ptr(b, inode_pending_find(&f->t, "op-b2"), "b's new op");
	inode_pending_set(&f->t, a, NULL, 0); /* committed */
	check_ptr(NULL, inode_pending_find(&f->t, "op-a"), "a's op cleared");
	check_int(0, inode_save_r(a)->pending_op[0], "a has no pending op");
	inode_synced_remove(&f->t, c); /* the kernel never knew it: freed */
	check_ptr(NULL, inode_pending_find(&f->t, "op-c"), "c freed");
	check_ptr(b, inode_pending_find(&f->t, "op-b2"), "b still found");
	inode_pending_set(&f->t, b, "", 0);
	check_ptr(NULL, f->t.pending, "the list is empty");
	check_ptr(NULL, inode_pending_find(&f->t, "nope"), "an unknown op");
}

/* A rename committed while a save after it is the file's pending op
 * finds the file by the rename's lseq (write.c, vs_fs_committed). */
static void test_moved_index(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *a, *b;

	add(f, VS_KIND_FILE, "d/a.c", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "d/b.c", 0644, 1, NULL);
	build(f, NULL);
	a = must_walk(f, "d/a.c");
	b = must_walk(f, "d/b.c");
	check_ptr(NULL, inode_moved_find(&f->t, 0), "lseq 0: none");
	inode_pending_set(&f->t, a, "op-ra", 7); /* a renamed */
	inode_save(a)->pending_moved = 7;
	inode_pending_set(&f->t, b, "op-wb", 8);
	inode_pending_set(&f->t, a, "op-wa", 9); /* then saved */
	check_int(7, (long long)inode_save_r(a)->pending_moved,
		  "the save keeps it");
	check_ptr(NULL, inode_pending_find(&f->t, "op-ra"), "not by op");
	check_ptr(a, inode_moved_find(&f->t, 7), "a found by its rename");
	check_ptr(NULL, inode_moved_find(&f->t, 8), "b's save is no rename");
	check_ptr(NULL, inode_moved_find(&f->t, 9), "nor is a's");
	inode_pending_set(&f->t, a, NULL, 0); /* its last op committed */
	check_int(0, (long long)inode_save_r(a)->pending_moved,
		  "cleared with it");
	check_ptr(NULL, inode_moved_find(&f->t, 7), "none any more");
	inode_pending_set(&f->t, b, NULL, 0);
}

/* The remove and rename rules every writer of the tree uses. */
static void test_remove_and_rename_rules(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *file, *dir, *empty, *sub, *other;

	add(f, VS_KIND_FILE, "dir/file.js", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "dir/sub/deep.js", 0644, 1, NULL);
	add(f, VS_KIND_DIR, "empty", 0755, 1, NULL);
	add(f, VS_KIND_FILE, "other.js", 0644, 1, NULL);
	build(f, NULL);
	file = must_walk(f, "dir/file.js");
	dir = must_walk(f, "dir");
	sub = must_walk(f, "dir/sub");
	empty = must_walk(f, "empty");
	other = must_walk(f, "other.js");

	check_ret(0, inode_remove_check(file, false), "unlink a file");
	check_ret(-EISDIR, inode_remove_check(empty, false), "unlink a dir");
	check_ret(-ENOTDIR, inode_remove_check(file, true), "rmdir a file");
	check_ret(0, inode_remove_check(empty, true), "rmdir an empty dir");
	check_ret(-ENOTEMPTY, inode_remove_check(dir, true),
		  "rmdir a non-empty dir");
	check_ret(-ENOENT, inode_remove_check(NULL, false), "unlink nothing");

	check_ret(0, inode_rename_check(file, f->t.root, NULL, false),
		  "file to a free name");
	check_ret(0, inode_rename_check(file, f->t.root, other, false),
		  "file over a file");
	check_ret(-EEXIST, inode_rename_check(file, f->t.root, other, true),
		  "file over a file, RENAME_NOREPLACE");
	check_ret(-EISDIR, inode_rename_check(file, f->t.root, empty, false),
		  "file over a dir");
	check_ret(-ENOTDIR, inode_rename_check(sub, f->t.root, other, false),
		  "dir over a file");
	check_ret(0, inode_rename_check(sub, f->t.root, empty, false),
		  "dir over an empty dir");
	check_ret(-ENOTEMPTY, inode_rename_check(empty, f->t.root, dir, false),
		  "dir over a non-empty dir");
	check_ret(-EINVAL, inode_rename_check(dir, sub, NULL, false),
		  "dir into its own subdir");
	check_ret(-EINVAL, inode_rename_check(dir, dir, NULL, false),
		  "dir into itself");
	check_ret(-ENOENT, inode_rename_check(NULL, dir, NULL, false),
		  "nothing to move");
}

/* fd_locks: one held by a thread at a time (inode_i.h, LOCKING); a build
 * without NDEBUG aborts where a second is taken, as two inodes may share
 * one lock (a deadlock then). */
static void test_fd_lock_one_held(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *a, *b;
	int status = 0;
	pid_t pid;

	add(f, VS_KIND_FILE, "a.txt", 0644, 1, NULL);
	add(f, VS_KIND_FILE, "b.txt", 0644, 1, NULL);
	build(f, NULL);
	a = must_walk(f, "a.txt");
	b = must_walk(f, "b.txt");
	/* one after the other: fine */
	inode_fd_rdlock(&f->t, a);
	inode_fd_unlock(&f->t, a);
	inode_fd_wrlock(&f->t, b);
	inode_fd_unlock(&f->t, b);
	inode_fd_rdlock(&f->t, a);
	inode_fd_unlock(&f->t, a);
#ifdef NDEBUG
	skip(); /* (not checked in this build) */
#endif
	pid = fork();
	check_bool(true, pid >= 0, "fork");
	if (pid == 0) {
		inode_fd_rdlock(&f->t, a);
		inode_fd_rdlock(&f->t, b); /* aborts */
		_exit(0);
	}
	check_int(pid, waitpid(pid, &status, 0), "waitpid");
	check_bool(true, WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		   "a second inode's fd_lock taken while one is held aborts "
		   "(status %#x)",
		   status);
}

#define T(fn)                                                                  \
	cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_build_implied_dirs),
	    T(test_build_duplicate_updates),
	    T(test_children_sorted_and_found),
	    T(test_large_tree),
	    T(test_inode_path),
	    T(test_local_only_skipped),
	    T(test_no_rules_keeps_everything),
	    T(test_invalid_paths_skipped),
	    T(test_path_under_file_skipped),
	    T(test_local_get_reuse),
	    T(test_local_hash_grows),
	    T(test_forget_local),
	    T(test_forget_synced_kept),
	    T(test_content_in_memory),
	    T(test_remove_and_rename_rules),
	    T(test_pending_index),
	    T(test_moved_index),
	    T(test_fd_lock_one_held),
	};

	/* the build logs one line per skipped entry: keep the output short */
	vs_log_set_level(VS_LOG_ERROR);
	return cmocka_run_group_tests_name("inode", tests, NULL, NULL);
}
