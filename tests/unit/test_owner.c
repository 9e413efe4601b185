/*
 * test_owner.c - unit tests of fuse/owner.c (owners and directory modes of
 * synced paths, kept per mount in the meta directory, fuse/owner_i.h).
 * No FUSE session: the file system is built with vs_fs_new from a
 * manifest, its meta directory a fresh temporary directory.
 *
 * Covers:
 *  - loading the owners file at vs_fs_new: owner records and directory
 *    modes set on the inodes ("-" fields left alone), a path with spaces,
 *    a mode on a file ignored, records of paths that are gone ignored,
 *    bad lines (a number out of range, too few fields, not numbers)
 *    skipped without failing the mount; a file with another header
 *    ignored whole; no file at all is no records;
 *  - saving: a directory's chmod (owner_dir_chmod) writes the whole file
 *    at once, in tree order, "-" for what is not recorded, no temporary
 *    file left behind;
 *  - a rename within OWNER_FLUSH_MS of the last save is left pending and
 *    written by owner_flush under the new path; a removed entry's record
 *    goes with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_i.h"
#include "owner_i.h"
#include "vsync/fs.h"
#include "vsync/manifest.h"
#include "vsync/util.h"

#include "unit_check.h"

#define H_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

struct fixture {
	char dir[64];
	int meta_fd;
	struct vs_manifest m;
	struct vs_fs *fs;
};

static void add(struct fixture *f, enum vs_kind kind, const char *path)
{
	struct vs_manifest_entry e = {
	    .path = (char *)path,
	    .kind = kind,
	    .mode = kind == VS_KIND_DIR ? 0755 : 0644,
	    .size = kind == VS_KIND_DIR ? 0 : 3,
	    .version = 1,
	};

	if (kind != VS_KIND_DIR)
		snprintf(e.hash, sizeof(e.hash), "%s", H_ABC);
	check_ret(0, vs_manifest_add(&f->m, &e), "vs_manifest_add(\"%s\")",
		  path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/vsync-owner.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->meta_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->meta_fd < 0)
		return -1;
	vs_manifest_init(&f->m);
	add(f, VS_KIND_DIR, "src");
	add(f, VS_KIND_FILE, "src/a.txt");
	add(f, VS_KIND_FILE, "src/b c.txt");
	add(f, VS_KIND_DIR, "src/lib");
	add(f, VS_KIND_FILE, "README.md");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vs_fs_free(f->fs);
	vs_manifest_release(&f->m);
	unlinkat(f->meta_fd, "owners", 0);
	unlinkat(f->meta_fd, "owners.tmp", 0);
	close(f->meta_fd);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void put_owners(struct fixture *f, const char *text)
{
	int fd =
	    openat(f->meta_fd, "owners", O_WRONLY | O_CREAT | O_TRUNC, 0600);

	check_bool(true, fd >= 0, "create the owners file");
	check_ret(0, vs_write_in_full(fd, text, strlen(text)),
		  "write the owners file");
	close(fd);
}

static char *get_owners(struct fixture *f)
{
	char *buf = NULL;
	size_t len;
	int fd = openat(f->meta_fd, "owners", O_RDONLY);

	check_bool(true, fd >= 0, "open the owners file");
	check_ret(0, vs_read_fd_whole(&buf, &len, fd, 1 << 20),
		  "read the owners file");
	close(fd);
	return buf;
}

static void mount_fs(struct fixture *f)
{
	struct vs_fs_config cfg = {.upper_fd = -1,
				   .work_fd = -1,
				   .meta_fd = f->meta_fd,
				   .uid = 1000,
				   .gid = 1000};

	check_ret(0, vs_fs_new(&f->fs, &cfg, &f->m), "vs_fs_new");
}

static struct vs_inode *at(struct fixture *f, const char *path)
{
	struct vs_inode *in = inode_lookup_path(&f->fs->table, path);

	check_bool(true, in != NULL, "inode at '%s'", path);
	return in;
}

static void test_load(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *in;

	put_owners(f, "vsync-owners 1\n"
		      "1234 42 - src/a.txt\n"
		      "- - 700 src\n"
		      "7 8 755 src/b c.txt\n" /* a mode on a file: ignored */
		      "9 9 - gone/x\n"	      /* gone while unmounted */
		      "4294967295 1 - README.md\n" /* (uid_t)-1: bad */
		      "1 2 README.md\n"		   /* too few fields */
		      "x y - README.md\n"	   /* not numbers */
		      "- - 17777 src/lib\n"	   /* not a mode */
		      "5 6 - src/lib");		   /* no final newline */
	mount_fs(f);
	in = at(f, "src/a.txt");
	check_bool(true, in->owned, "src/a.txt has an owner");
	check_int(1234, in->uid, "uid of src/a.txt");
	check_int(42, in->gid, "gid of src/a.txt");
	in = at(f, "src");
	check_bool(false, in->owned, "src: no owner recorded");
	check_bool(true, in->dir_mode_local, "src: its mode recorded");
	check_int(0700, in->mode, "mode of src");
	in = at(f, "src/b c.txt");
	check_int(7, in->uid, "uid of 'src/b c.txt'");
	check_int(0644, in->mode, "mode of 'src/b c.txt' (a file: synced)");
	in = at(f, "README.md");
	check_bool(false, in->owned, "README.md: only bad lines");
	in = at(f, "src/lib");
	check_int(5, in->uid, "uid of src/lib (last line, no newline)");
	check_int(0755, in->mode, "mode of src/lib (bad line skipped)");
}

static void test_load_other_header(void **state)
{
	struct fixture *f = *state;

	put_owners(f, "vsync-owners 2\n1234 42 - src/a.txt\n");
	mount_fs(f);
	check_bool(false, at(f, "src/a.txt")->owned,
		   "a file of another version is ignored");
}

static void test_load_none(void **state)
{
	struct fixture *f = *state;

	mount_fs(f);
	check_bool(false, at(f, "src/a.txt")->owned, "no file: no records");
	check_bool(false, atomic_load(&f->fs->owner_any), "owner_any");
}

static void test_save(void **state)
{
	struct fixture *f = *state;
	struct vs_inode *in;
	char *text;

	mount_fs(f);
	in = at(f, "src/b c.txt");
	in->owned = true;
	in->uid = 3;
	in->gid = 4;
	in = at(f, "src/lib");
	in->mode = 0711;
	owner_dir_chmod(f->fs, in);
	text = get_owners(f);
	check_str("vsync-owners 1\n"
		  "3 4 - src/b c.txt\n"
		  "- - 711 src/lib\n",
		  text, "the owners file after a chmod of src/lib");
	free(text);
	check_int(-1, faccessat(f->meta_fd, "owners.tmp", F_OK, 0),
		  "no temporary file left");

	/* at once after: pending, written by owner_flush */
	pthread_mutex_lock(&f->fs->table.lock);
	check_ret(0, inode_synced_move(in, f->fs->table.root, "lib2"),
		  "move src/lib to lib2");
	inode_synced_remove(&f->fs->table, at(f, "src/b c.txt"));
	pthread_mutex_unlock(&f->fs->table.lock);
	owner_changed(f->fs);
	owner_flush(f->fs);
	text = get_owners(f);
	check_str("vsync-owners 1\n"
		  "- - 711 lib2\n",
		  text, "the owners file after a move and a removal");
	free(text);
}

struct owner_call {
	struct fixture *f;
	bool save;
};

static void *owner_thread(void *arg)
{
	struct owner_call *c = arg;

	if (c->save)
		owner_dir_chmod(c->f->fs, at(c->f, "src/lib"));
	else
		mount_fs(c->f);
	return NULL;
}

/* The meta dir is in the cache dir, which whatever runs in the
 * container can write: a FIFO at the owners file's name holds neither
 * the mount's start (it is ignored) nor a save (a new file is made). */
static void test_not_a_file(void **state)
{
	struct fixture *f = *state;
	struct owner_call c = {f, false};
	char *text;

	check_int(0, mkfifoat(f->meta_fd, "owners", 0600), "mkfifo owners");
	run_within(owner_thread, &c, "the load of the owners file");
	check_bool(false, atomic_load(&f->fs->owner_any), "nothing loaded");
	check_int(0, unlinkat(f->meta_fd, "owners", 0), "unlink");
	check_int(0, mkfifoat(f->meta_fd, "owners.tmp", 0600),
		  "mkfifo owners.tmp");
	at(f, "src/lib")->mode = 0711;
	c.save = true;
	run_within(owner_thread, &c, "a save of the owners file");
	text = get_owners(f);
	check_str("vsync-owners 1\n- - 711 src/lib\n", text,
		  "the owners file saved");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load_other_header, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_load_none, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
