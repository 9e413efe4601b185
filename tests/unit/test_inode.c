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
 *  - inode_local_get creating a local inode and reusing it by upper ino
 *    (also from another parent/name: a hard link or a rename seen by
 *    lookup), each local child holding one reference on a local parent;
 *  - inode_forget: a local inode freed at 0 and the parent reference
 *    chain released up to the first inode still referenced; synced
 *    inodes never freed;
 *  - inode_rename within a dir, across local dirs (the reference moves,
 *    a parent left with none is freed) and to a synced dir.
 *
 * Each case gets a fresh table and manifest from setup (teardown releases
 * both).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inode_i.h"
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

/* A "kernel lookup" reply: the handler bumps nlookup. */
static struct vs_inode *local_lookup(struct fixture *f, struct vs_inode *parent,
				     const char *name, ino_t upper,
				     enum vs_kind kind)
{
	struct vs_inode *in = inode_local_get(&f->t, parent, name, upper, kind);

	if (!in)
		fail_msg("inode_local_get('%s', upper %lu): expected an "
			 "inode, got NULL",
			 name, (unsigned long)upper);
	in->nlookup++;
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
	struct vs_inode *nm, *react, *idx, *again;
	uint64_t root_lookups = f->t.root->nlookup;
	size_t count = f->t.count;

	nm = local_lookup(f, f->t.root, "node_modules", 100, VS_KIND_DIR);
	check_bool(true, nm->local, "node_modules is local");
	check_int(100, nm->upper_ino, "upper ino of node_modules");
	check_ptr(f->t.root, nm->parent, "parent of node_modules");
	check_int(1, nm->nlookup, "lookups of node_modules");
	check_int(root_lookups, f->t.root->nlookup,
		  "root lookups (a synced parent is not referenced)");
	check_ptr(nm, inode_table_get(&f->t, nm->ino),
		  "inode_table_get(node_modules)");

	react = local_lookup(f, nm, "react", 101, VS_KIND_DIR);
	check_int(2, nm->nlookup,
		  "lookups of node_modules (1 kernel + 1 from react)");
	idx = local_lookup(f, react, "index.js", 102, VS_KIND_FILE);
	check_int(2, react->nlookup, "lookups of react (1 kernel + 1 child)");
	check_int(1, idx->nlookup, "lookups of index.js");
	check_path_of(idx, "node_modules/react/index.js");
	check_int(count + 3, f->t.count, "inodes after three local lookups");

	/* the same upper file again: the same inode, no new reference */
	again = inode_local_get(&f->t, react, "index.js", 102, VS_KIND_FILE);
	check_ptr(idx, again, "inode_local_get of upper ino 102 again");
	check_int(2, react->nlookup, "lookups of react after a repeat lookup");
	check_int(count + 3, f->t.count, "inodes after a repeat lookup");

	/* the same upper file by another name in another dir (hard link):
	 * the inode moves and the reference moves with it */
	again = inode_local_get(&f->t, nm, "index-link.js", 102, VS_KIND_FILE);
	check_ptr(idx, again, "inode_local_get of upper ino 102 elsewhere");
	check_ptr(nm, idx->parent, "parent after the hard-link lookup");
	check_str("index-link.js", idx->name,
		  "name after the hard-link lookup");
	check_int(1, react->nlookup, "lookups of react after its child left");
	check_int(3, nm->nlookup,
		  "lookups of node_modules (kernel, react, index-link.js)");
	check_path_of(idx, "node_modules/index-link.js");

	/* a different upper ino is a different inode */
	again = local_lookup(f, react, "other.js", 103, VS_KIND_FILE);
	check_bool(true, again != idx, "upper ino 103 gets its own inode");
	check_bool(true, again->ino != idx->ino, "distinct ino numbers");
}

static void test_forget_chain(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *nm, *react, *idx;
	uint64_t nm_ino, react_ino, idx_ino;
	size_t count = f->t.count;

	nm = local_lookup(f, f->t.root, "node_modules", 100, VS_KIND_DIR);
	react = local_lookup(f, nm, "react", 101, VS_KIND_DIR);
	idx = local_lookup(f, react, "index.js", 102, VS_KIND_FILE);
	idx->nlookup += 2; /* three kernel lookups in all */
	nm_ino = nm->ino;
	react_ino = react->ino;
	idx_ino = idx->ino;

	/* the kernel forgets the dirs first: their children keep them */
	inode_forget(&f->t, nm, 1);
	inode_forget(&f->t, react, 1);
	check_ptr(nm, inode_table_get(&f->t, nm_ino),
		  "node_modules after its kernel lookups were forgotten");
	check_ptr(react, inode_table_get(&f->t, react_ino),
		  "react after its kernel lookups were forgotten");
	check_int(1, nm->nlookup, "node_modules references (react)");
	check_int(1, react->nlookup, "react references (index.js)");

	inode_forget(&f->t, idx, 2);
	check_ptr(idx, inode_table_get(&f->t, idx_ino),
		  "index.js with one lookup left");
	check_int(1, idx->nlookup, "lookups of index.js");

	/* the last forget frees the whole chain */
	inode_forget(&f->t, idx, 1);
	check_ptr(NULL, inode_table_get(&f->t, idx_ino), "index.js freed");
	check_ptr(NULL, inode_table_get(&f->t, react_ino), "react freed");
	check_ptr(NULL, inode_table_get(&f->t, nm_ino), "node_modules freed");
	check_int(count, f->t.count, "inodes after the chain was freed");

	/* the upper ino can be looked up again: a fresh inode */
	nm = local_lookup(f, f->t.root, "node_modules", 100, VS_KIND_DIR);
	check_bool(true, nm->ino != nm_ino,
		   "a new ino after the old one was freed (got %llu twice)",
		   (unsigned long long)nm_ino);
	check_int(1, nm->nlookup, "lookups of the new node_modules");
}

static void test_forget_stops_at_referenced_parent(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *nm, *a, *b;
	uint64_t a_ino;

	nm = local_lookup(f, f->t.root, "node_modules", 100, VS_KIND_DIR);
	a = local_lookup(f, nm, "a", 101, VS_KIND_FILE);
	b = local_lookup(f, nm, "b", 102, VS_KIND_FILE);
	a_ino = a->ino;
	check_int(3, nm->nlookup, "node_modules references (kernel, a, b)");
	inode_forget(&f->t, a, 1);
	check_ptr(NULL, inode_table_get(&f->t, a_ino), "a freed");
	check_int(2, nm->nlookup, "node_modules references (kernel, b)");
	inode_forget(&f->t, nm, 1);
	check_int(1, nm->nlookup, "node_modules references (b)");
	check_ptr(b, inode_table_get(&f->t, b->ino), "b still there");
	check_ptr(nm, b->parent, "parent of b");
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

static void test_rename(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *nm, *a, *b, *x;
	uint64_t a_ino;

	add(f, VS_KIND_DIR, "src", 0755, 1, NULL);
	build(f, NULL);
	nm = local_lookup(f, f->t.root, "node_modules", 100, VS_KIND_DIR);
	a = local_lookup(f, nm, "a", 101, VS_KIND_DIR);
	b = local_lookup(f, nm, "b", 102, VS_KIND_DIR);
	x = local_lookup(f, a, "x.js", 103, VS_KIND_FILE);
	a_ino = a->ino;
	check_int(2, a->nlookup, "a references (kernel, x.js)");

	/* same dir, new name: no reference moves */
	check_ret(0, inode_rename(&f->t, x, a, "y.js"),
		  "inode_rename(x.js -> a/y.js)");
	check_str("y.js", x->name, "name after the rename");
	check_int(2, a->nlookup, "a references after a rename within a");
	check_path_of(x, "node_modules/a/y.js");

	/* to another local dir: the reference moves from a to b */
	check_ret(0, inode_rename(&f->t, x, b, "z.js"),
		  "inode_rename(a/y.js -> b/z.js)");
	check_ptr(b, x->parent, "parent after the rename to b");
	check_int(1, a->nlookup, "a references after its child left");
	check_int(2, b->nlookup, "b references after the rename (kernel, x)");
	check_path_of(x, "node_modules/b/z.js");

	/* a parent whose last reference was the renamed child is freed */
	check_ret(0, inode_rename(&f->t, x, a, "back.js"),
		  "inode_rename(b/z.js -> a/back.js)");
	inode_forget(&f->t, a, 1); /* the kernel forgets a: x keeps it */
	check_ptr(a, inode_table_get(&f->t, a_ino), "a held by x");
	check_ret(0, inode_rename(&f->t, x, b, "z.js"),
		  "inode_rename(a/back.js -> b/z.js)");
	check_ptr(NULL, inode_table_get(&f->t, a_ino),
		  "a freed once its last child left");
	check_int(2, nm->nlookup,
		  "node_modules references (kernel, b; a is gone)");

	/* to a synced dir: the local parent's reference is dropped and the
	 * synced dir takes none */
	check_ret(0, inode_rename(&f->t, x, must_walk(f, "src"), "moved.js"),
		  "inode_rename(b/z.js -> src/moved.js)");
	check_int(1, b->nlookup, "b references after x moved to src");
	check_int(0, must_walk(f, "src")->nlookup,
		  "references on the synced src");
	check_path_of(x, "src/moved.js");
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
	    T(test_forget_chain),
	    T(test_forget_stops_at_referenced_parent),
	    T(test_forget_synced_kept),
	    T(test_rename),
	    T(test_remove_and_rename_rules),
	};

	/* the build logs one line per skipped entry: keep the output short */
	vs_log_set_level(VS_LOG_ERROR);
	return cmocka_run_group_tests_name("inode", tests, NULL, NULL);
}
