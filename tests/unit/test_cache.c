/*
 * test_cache.c - unit tests of sync/cache.c (include/vsync/cache.h).
 *
 * Each case runs in a fresh temp dir (mkdtemp in /tmp) holding the cache
 * dir "<tmp>/cache", which vs_cache_init creates; teardown releases the
 * cache and removes the whole tree with nftw.
 *
 * Covers:
 *  - vs_cache_object_name: "objects/<h0h1>/<64 hex>";
 *  - vs_cache_init creating objects/ (its fan-out dirs come with the
 *    first store into each), tmp/,
 *    projects/, reopening an existing dir, and failing on a path under a
 *    regular file with nothing held;
 *  - vs_cache_lock: a second lock refused with -EWOULDBLOCK naming the
 *    holder's pid, taken again once the first fd is closed;
 *  - store then open returns the stored bytes (also the empty object);
 *    storing twice (counted once in the bytes estimate); nothing left in
 *    tmp/; a fan-out dir removed since the
 *    init is made again;
 *  - the bytes estimate equals what the objects allocate (what the
 *    evictor's scan measures) after a store or a link over an object
 *    that is not those bytes (64 KiB of others: taken off) and after
 *    vs_cache_open removed a corrupt object;
 *  - vs_cache_link: an O_TMPFILE linked as the object (the same inode),
 *    -EEXIST when the object is there, a removed fan-out dir made again;
 *    an object there that is not those bytes (longer, truncated, the same
 *    size with other bytes, a FIFO) replaced by the file linked; one this
 *    process linked or hashed, unchanged, taken without an open (no
 *    IN_OPEN), one changed since (written in place, replaced at its
 *    name) hashed and replaced;
 *  - vs_cache_memory_open: a sealed memfd of the bytes, which
 *    vs_cache_fd_in_memory tells from an object's fd; the content held in
 *    memory counted by vs_cache_mem_hold, and its default bound;
 *  - store with bytes that do not match the hash -> -EBADMSG and nothing
 *    written (no object, nothing in tmp/); a
 *    malformed hash -> -EINVAL for store and open;
 *  - open of a missing object -> -ENOENT;
 *  - a corrupted object on disk (one byte overwritten, or truncated) ->
 *    -EBADMSG, the object is removed, the next open says -ENOENT and the
 *    object can be stored again;
 *  - a store or a streaming write on a full volume (a 256-KiB tmpfs in a
 *    mount namespace of the test's own, as root or in a user namespace,
 *    else skipped) asks for reclaims and writes again while one frees
 *    something: 48 KiB where each frees 32 KiB takes two; more than all
 *    of them free fails with -ENOSPC, nothing left in tmp/;
 *  - a FIFO or a symlink to /dev/zero at an object's name: vs_cache_open
 *    and vs_cache_open_unchecked return -EBADMSG at once (no wait for a
 *    writer, no endless hash), the name is removed, and a store then
 *    makes the object;
 *  - vs_cache_init removes the temp files tmp/<pid>.<n> of processes that
 *    are gone, and those older than the running process of their pid (a
 *    pid reused, this one's included); a running process's file of now
 *    and other names in tmp/ stay;
 *  - vs_cache_project_dir creating projects/<uuid> and a sub dir, and
 *    rejecting ids with '/', a leading '.', or empty;
 *  - vs_cache_project_link / vs_cache_project_resolve by name, relinking
 *    to another project, resolving a UUID that has a dir, unknown names;
 *  - vs_cache_project_write / vs_cache_project_read round trip (binary
 *    bytes with NULs, replace by shorter content, 1 MiB), missing file
 *    -> -ENOENT.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "vsync/cache.h"
#include "vsync/hash.h"

#include "unit_check.h"

#define PROJECT	 "0f8fad5b-d9cb-469f-a165-70867728950e"
#define PROJECT2 "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define H_ABC	 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define H_EMPTY                                                                \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ------------------------------------------------------------ fixtures */

struct fixture {
	char tmp[64];	       /* the mkdtemp dir */
	char dir[PATH_MAX];    /* <tmp>/cache */
	struct vs_cache cache; /* initialised on dir */
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int r;

	if (!f)
		return -1;
	strcpy(f->tmp, "/tmp/vsync-test-cache.XXXXXX");
	if (!mkdtemp(f->tmp)) {
		print_error("mkdtemp(%s): %s\n", f->tmp, strerror(errno));
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/cache", f->tmp);
	r = vs_cache_init(&f->cache, f->dir);
	if (r < 0) {
		print_error("vs_cache_init(%s): %s\n", f->dir, strerror(-r));
		rmdir(f->tmp);
		free(f);
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

	vs_cache_release(&f->cache);
	if (nftw(f->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		print_error("nftw(%s): %s\n", f->tmp, strerror(errno));
	free(f);
	return 0;
}

/* ------------------------------------------------------------ helpers */

/* lstat of "<cache dir>/<rel>": 0 or -errno */
static int cache_lstat(struct fixture *f, const char *rel, struct stat *st)
{
	struct stat dummy;

	if (fstatat(f->cache.dir_fd, rel, st ? st : &dummy,
		    AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static void check_is_dir(struct fixture *f, const char *rel)
{
	struct stat st;

	check_ret(0, cache_lstat(f, rel, &st), "lstat of '%s'", rel);
	check_bool(true, S_ISDIR(st.st_mode), "'%s' is a directory", rel);
}

static void check_absent(struct fixture *f, const char *rel)
{
	check_ret(-ENOENT, cache_lstat(f, rel, NULL), "lstat of '%s'", rel);
}

/* Entries of "<cache dir>/<rel>" besides "." and "..". */
static int count_entries(struct fixture *f, const char *rel)
{
	int fd = openat(f->cache.dir_fd, rel, O_RDONLY | O_DIRECTORY);
	DIR *d;
	struct dirent *de;
	int n = 0;

	if (fd < 0)
		fail_msg("cannot open '%s' in the cache: %s", rel,
			 strerror(errno));
	d = fdopendir(fd);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* What the evictor's scan measures: the bytes allocated (st_blocks) to
 * the regular files at objects/<h0h1>/<name>. */
static uint64_t objects_bytes(struct fixture *f)
{
	uint64_t sum = 0;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	for (unsigned i = 0; i < 256; i++) {
		char sub[16];

		snprintf(sub, sizeof(sub), "objects/%02x", i);
		fd = openat(f->cache.dir_fd, sub, O_RDONLY | O_DIRECTORY);
		if (fd < 0)
			continue;
		d = fdopendir(fd);
		assert_non_null(d);
		while ((de = readdir(d)))
			if (fstatat(dirfd(d), de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode))
				sum += (uint64_t)st.st_blocks * 512;
		closedir(d);
	}
	return sum;
}

/* The cache's estimate is what its objects allocate. */
static void check_bytes(struct fixture *f, const char *when)
{
	uint64_t want = objects_bytes(f), got = vs_cache_bytes(&f->cache);

	if (got != want)
		fail_msg("the cache's bytes %s: expected %llu (its objects), "
			 "got %llu",
			 when, (unsigned long long)want,
			 (unsigned long long)got);
}

/* Read the whole of @fd from offset 0 into @buf (at most @size bytes). */
static size_t read_fd(int fd, char *buf, size_t size)
{
	size_t got = 0;

	for (;;) {
		ssize_t n = pread(fd, buf + got, size - got, (off_t)got);

		if (n < 0)
			fail_msg("pread: %s", strerror(errno));
		if (n == 0 || got + (size_t)n == size)
			return got + (size_t)n;
		got += (size_t)n;
	}
}

static void check_object(struct fixture *f, const char *hash, const char *want,
			 size_t want_len)
{
	char buf[4096];
	int fd = -1;
	size_t n;

	check_ret(0, vs_cache_open(&f->cache, hash, &fd), "vs_cache_open(%.8s)",
		  hash);
	n = read_fd(fd, buf, sizeof(buf));
	close(fd);
	check_int(want_len, n, "size of object %.8s", hash);
	if (memcmp(buf, want, want_len) != 0)
		fail_msg("object %.8s: expected \"%.*s\", got \"%.*s\"", hash,
			 (int)want_len, want, (int)n, buf);
}

/* ------------------------------------------------------------ layout */

static void test_object_name(void **state)
{
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];

	(void)state;
	vs_cache_object_name(name, H_ABC);
	check_str("objects/ba/" H_ABC, name, "vs_cache_object_name(abc)");
	vs_cache_object_name(name, H_EMPTY);
	check_str("objects/e3/" H_EMPTY, name, "vs_cache_object_name(empty)");
	check_int(sizeof(name) - 1, strlen(name), "object name length");
}

static void test_init_layout(void **state)
{
	struct fixture *f = *state;
	struct vs_cache again;

	check_str(f->dir, f->cache.dir, "cache dir kept by vs_cache_init");
	check_is_dir(f, "objects");
	check_int(0, count_entries(f, "objects"),
		  "fan-out dirs (made by the first store into each)");
	check_is_dir(f, "tmp");
	check_is_dir(f, "projects");
	/* a second init on the existing layout works */
	check_ret(0, vs_cache_init(&again, f->dir),
		  "vs_cache_init on an existing cache dir");
	vs_cache_release(&again);
	check_int(-1, again.dir_fd, "dir_fd after release");
	check_ptr(NULL, again.dir, "dir after release");
}

static void test_init_failure(void **state)
{
	struct fixture *f = *state;
	struct vs_cache c;
	char file[PATH_MAX + 16], under[PATH_MAX + 32];
	int fd;

	snprintf(file, sizeof(file), "%s/plain", f->tmp);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		fail_msg("create %s: %s", file, strerror(errno));
	close(fd);
	snprintf(under, sizeof(under), "%s/sub", file);
	check_ret(-ENOTDIR, vs_cache_init(&c, under),
		  "vs_cache_init under a regular file");
	check_int(-1, c.dir_fd, "dir_fd after a failed init");
	check_ptr(NULL, c.dir, "dir after a failed init");
	vs_cache_release(&c); /* harmless after a failed init */
}

/* One holder at a time: a second open file description (another process,
 * or the same one) is refused with the holder's pid; released on close. */
static void test_lock(void **state)
{
	struct fixture *f = *state;
	int fd = -1, fd2 = -1;
	pid_t holder = -1;

	check_ret(0, vs_cache_lock(&f->cache, "lock", &fd, &holder),
		  "first lock");
	check_bool(true, fd >= 0, "lock fd");
	check_ret(-EWOULDBLOCK, vs_cache_lock(&f->cache, "lock", &fd2, &holder),
		  "second lock while held");
	check_int(-1, fd2, "no fd from a refused lock");
	check_int(getpid(), holder, "holder named");
	close(fd);
	check_ret(0, vs_cache_lock(&f->cache, "lock", &fd2, &holder),
		  "lock after the holder closed it");
	close(fd2);
}

/* ------------------------------------------------------------ objects */

static void test_store_open(void **state)
{
	struct fixture *f = *state;
	int fd;

	check_ret(0, vs_cache_store(&f->cache, H_ABC, "abc", 3),
		  "vs_cache_store(abc)");
	check_object(f, H_ABC, "abc", 3);
	check_is_dir(f, "objects/ba");
	check_ret(0, vs_cache_store(&f->cache, H_EMPTY, "", 0),
		  "vs_cache_store(empty)");
	check_object(f, H_EMPTY, "", 0);
	/* storing an object again replaces it with the same bytes, and
	 * the estimate of the cache's bytes counts it once */
	uint64_t bytes = atomic_load(&f->cache.bytes);

	check_int(1, bytes > 0, "stores counted in the estimate");
	check_ret(0, vs_cache_store(&f->cache, H_ABC, "abc", 3),
		  "vs_cache_store(abc) again");
	check_object(f, H_ABC, "abc", 3);
	check_int(1, bytes == atomic_load(&f->cache.bytes),
		  "the estimate after storing abc again (%llu, was %llu)",
		  (unsigned long long)atomic_load(&f->cache.bytes),
		  (unsigned long long)bytes);
	check_bytes(f, "after storing abc again");
	/* one that is not those bytes (64 KiB planted, counted as the
	 * evictor's scan counts it) is replaced and taken off */
	fd = openat(f->cache.dir_fd, "objects/ba/" H_ABC,
		    O_WRONLY | O_TRUNC | O_CLOEXEC);
	check_bool(true, fd >= 0, "open the object to plant");
	check_int(0, fallocate(fd, 0, 0, 64 * 1024), "plant 64 KiB");
	close(fd);
	vs_cache_bytes_set(&f->cache, objects_bytes(f));
	check_ret(0, vs_cache_store(&f->cache, H_ABC, "abc", 3),
		  "vs_cache_store(abc) over 64 KiB of other bytes");
	check_object(f, H_ABC, "abc", 3);
	check_bytes(f, "after a store over 64 KiB of other bytes");
	check_int(0, count_entries(f, "tmp"), "files left in tmp/");
	check_is_dir(f, "objects/ba"); /* made by the first store into it */
	/* a fan-out dir removed since the init is made again */
	check_int(0, unlinkat(f->cache.dir_fd, "objects/ba/" H_ABC, 0),
		  "unlink the object");
	check_int(0, unlinkat(f->cache.dir_fd, "objects/ba", AT_REMOVEDIR),
		  "rmdir objects/ba");
	check_ret(0, vs_cache_store(&f->cache, H_ABC, "abc", 3),
		  "vs_cache_store(abc) without its fan-out dir");
	check_object(f, H_ABC, "abc", 3);
	check_int(0, count_entries(f, "tmp"), "files left in tmp/");
}

static void test_memory(void **state)
{
	struct fixture *f = *state;
	uint64_t base = vs_cache_mem_bytes();
	char buf[4];
	int mfd = -1, ofd = -1;

	check_int(1, f->cache.mem_max == VS_CACHE_MEM_TOTAL_DEFAULT,
		  "mem_max defaults to VS_CACHE_MEM_TOTAL_DEFAULT");
	check_ret(0, vs_cache_memory_open(H_ABC, "abc", 3, &mfd),
		  "vs_cache_memory_open(abc)");
	check_int(3, (int)pread(mfd, buf, sizeof(buf), 0), "its bytes");
	check_int(0, memcmp(buf, "abc", 3), "abc");
	check_int(1, vs_cache_fd_in_memory(mfd), "a memfd is in memory");
	check_int(-1, (int)write(mfd, "x", 1), "and sealed against writes");
	check_int(0, count_entries(f, "tmp"), "nothing written to the dir");
	check_ret(-EBADMSG, vs_cache_memory_open(H_ABC, "abd", 3, &ofd),
		  "vs_cache_memory_open of bytes that do not match");
	check_ret(0, vs_cache_store_open(&f->cache, H_ABC, "abc", 3, &ofd),
		  "vs_cache_store_open(abc) with room");
	check_int(0, vs_cache_fd_in_memory(ofd), "an object is not in memory");
	vs_cache_mem_hold(8192);
	check_int(1, vs_cache_mem_bytes() == base + 8192, "8192 held");
	vs_cache_mem_hold(-8192);
	check_int(1, vs_cache_mem_bytes() == base, "and let go");
	close(mfd);
	close(ofd);
}

static void test_link(void **state)
{
	struct fixture *f = *state;
	struct stat a, b;
	int fd, fd2;

	fd = openat(f->cache.dir_fd, "tmp", O_TMPFILE | O_RDWR | O_CLOEXEC,
		    0600);
	if (fd < 0)
		skip(); /* a file system without O_TMPFILE */
	check_int(3, write(fd, "abc", 3), "write abc");
	check_ret(0, vs_cache_link(&f->cache, H_ABC, fd), "vs_cache_link");
	check_object(f, H_ABC, "abc", 3);
	check_int(0, fstat(fd, &a), "fstat");
	check_ret(0, cache_lstat(f, "objects/ba/" H_ABC, &b), "lstat object");
	check_bool(true, a.st_ino == b.st_ino, "the object is the file linked");
	check_int(1, (int)b.st_nlink, "one link");
	/* there already: -EEXIST, nothing changed */
	fd2 = openat(f->cache.dir_fd, "tmp", O_TMPFILE | O_RDWR | O_CLOEXEC,
		     0600);
	check_bool(true, fd2 >= 0, "second O_TMPFILE");
	check_int(3, write(fd2, "abc", 3), "write abc again");
	check_ret(-EEXIST, vs_cache_link(&f->cache, H_ABC, fd2),
		  "vs_cache_link of an object there already");
	check_ret(0, cache_lstat(f, "objects/ba/" H_ABC, &b), "lstat object");
	check_bool(true, a.st_ino == b.st_ino, "the first one stays");
	check_ret(-EINVAL, vs_cache_link(&f->cache, "abc", fd2),
		  "vs_cache_link with a malformed hash");
	/* a fan-out dir removed since the init is made again */
	check_int(0, unlinkat(f->cache.dir_fd, "objects/ba/" H_ABC, 0),
		  "unlink the object");
	check_int(0, unlinkat(f->cache.dir_fd, "objects/ba", AT_REMOVEDIR),
		  "rmdir objects/ba");
	check_ret(0, vs_cache_link(&f->cache, H_ABC, fd2),
		  "vs_cache_link without its fan-out dir");
	check_object(f, H_ABC, "abc", 3);
	check_int(0, count_entries(f, "tmp"), "files left in tmp/");
	close(fd);
	close(fd2);
}

/* An object at H_ABC's name that is not "abc" (a torn copy, or one
 * planted by whatever can write the cache dir): a link of "abc" as
 * H_ABC replaces it, and a read gets "abc". */
static void test_link_over_wrong(void **state)
{
	static const char *const what[] = {"a longer file", "a truncated one",
					   "the same size, other bytes",
					   "a FIFO"};
	struct fixture *f = *state;
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];
	struct stat a, b;
	int fd, planted, r;

	vs_cache_object_name(name, H_ABC);
	check_int(0, mkdirat(f->cache.dir_fd, "objects/ba", 0700),
		  "mkdir objects/ba");
	for (int kind = 0; kind < 4; kind++) {
		unlinkat(f->cache.dir_fd, name, 0);
		if (kind == 3) {
			check_int(0, mkfifoat(f->cache.dir_fd, name, 0600),
				  "mkfifo");
		} else {
			static const char *const bytes[] = {"abcX", "ab",
							    "abX"};

			planted = openat(f->cache.dir_fd, name,
					 O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			check_bool(true, planted >= 0, "plant %s", what[kind]);
			check_int(
			    (int)strlen(bytes[kind]),
			    write(planted, bytes[kind], strlen(bytes[kind])),
			    "write %s", what[kind]);
			/* the longer one, by 64 KiB: its blocks are not
			 * those of "abc" */
			if (kind == 0)
				check_int(0,
					  fallocate(planted, 0, 4, 64 * 1024),
					  "grow %s", what[kind]);
			close(planted);
		}
		/* counted, as the evictor's scan counts what it finds */
		vs_cache_bytes_set(&f->cache, objects_bytes(f));
		fd = openat(f->cache.dir_fd, "tmp",
			    O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0)
			skip(); /* a file system without O_TMPFILE */
		check_int(3, write(fd, "abc", 3), "write abc");
		r = vs_cache_link(&f->cache, H_ABC, fd);
		/* what a read gets first: before, the planted bytes */
		check_object(f, H_ABC, "abc", 3);
		check_ret(0, r, "vs_cache_link over %s at the object's name",
			  what[kind]);
		check_int(0, fstat(fd, &a), "fstat");
		check_ret(0, cache_lstat(f, name, &b), "lstat object");
		check_bool(true, a.st_ino == b.st_ino,
			   "the object is the file linked (over %s)",
			   what[kind]);
		check_bytes(f, what[kind]);
		check_int(0, count_entries(f, "tmp"), "files left in tmp/");
		close(fd);
	}
}

/* An O_TMPFILE in the cache's tmp/ holding @s, or -1 (none there). */
static int tmpfile_of(struct fixture *f, const char *s)
{
	int fd = openat(f->cache.dir_fd, "tmp", O_TMPFILE | O_RDWR | O_CLOEXEC,
			0600);

	if (fd >= 0)
		check_int((int)strlen(s), write(fd, s, strlen(s)), "write %s",
			  s);
	return fd;
}

/* A symlink planted at H_ABC's name, to a file outside the cache: a link
 * of "abc" finds it there (EEXIST), replaces it, and neither touches nor
 * opens what it points to. */
static void test_link_symlink(void **state)
{
	static const struct timespec old[2] = {{.tv_sec = 1000000},
					       {.tv_sec = 1000000}};
	struct fixture *f = *state;
	char name[8 + 3 + VS_HASH_HEX_LEN + 1], outside[PATH_MAX + 16];
	struct stat st;
	int fd, out;

	snprintf(outside, sizeof(outside), "%s/outside", f->tmp);
	out = open(outside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	check_bool(true, out >= 0, "create %s", outside);
	check_int(3, write(out, "xyz", 3), "write outside");
	check_int(0, futimens(out, old), "age outside");
	close(out);
	vs_cache_object_name(name, H_ABC);
	check_int(0, mkdirat(f->cache.dir_fd, "objects/ba", 0700),
		  "mkdir objects/ba");
	check_int(0, symlinkat(outside, f->cache.dir_fd, name),
		  "plant a symlink");
	fd = tmpfile_of(f, "abc");
	if (fd < 0)
		skip(); /* a file system without O_TMPFILE */
	check_ret(0, vs_cache_link(&f->cache, H_ABC, fd),
		  "vs_cache_link over a symlink");
	close(fd);
	check_object(f, H_ABC, "abc", 3);
	check_int(0, stat(outside, &st), "stat outside");
	check_int(1000000, st.st_atim.tv_sec, "its atime is untouched");
	check_int(1000000, st.st_mtim.tv_sec, "its mtime is untouched");
	check_int(3, st.st_size, "its size is untouched");
	unlink(outside);
}

/* Put @s at @name, a new file (what was there removed). */
static void plant(struct fixture *f, const char *name, const char *s)
{
	int fd;

	unlinkat(f->cache.dir_fd, name, 0);
	fd = openat(f->cache.dir_fd, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	check_bool(true, fd >= 0, "plant %s", s);
	check_int((int)strlen(s), write(fd, s, strlen(s)), "write %s", s);
	close(fd);
}

/* An inotify fd watching object @name for opens. */
static int watch_opens(struct fixture *f, const char *name)
{
	char path[PATH_MAX + 128]; /* the cache dir, '/', the name */
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	assert_true(in >= 0);
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	assert_true(inotify_add_watch(in, path, IN_OPEN) >= 0);
	return in;
}

/* The opens seen by watch_opens's @in since; closes it. */
static int opens_seen(int in)
{
	char buf[4096];
	ssize_t n = read(in, buf, sizeof(buf));
	int opens = 0;

	for (char *p = buf; n > 0 && p < buf + n;) {
		const struct inotify_event *e = (const void *)p;

		opens += (e->mask & IN_OPEN) != 0;
		p += sizeof(*e) + e->len;
	}
	close(in);
	return opens;
}

/* A link of "abc" as H_ABC: 0 or -errno; skipped without O_TMPFILE. */
static int link_abc(struct fixture *f)
{
	int fd = tmpfile_of(f, "abc"), r;

	if (fd < 0)
		skip(); /* a file system without O_TMPFILE */
	r = vs_cache_link(&f->cache, H_ABC, fd);
	close(fd);
	return r;
}

/* A link that finds an object this process linked or hashed, unchanged
 * since, takes it without reading it (a save of the same bytes twice
 * hashes them once: no open of the object); one changed in any way (its
 * bytes written in place, another file at its name) is hashed and, not
 * those bytes, replaced. */
static void test_link_known(void **state)
{
	struct fixture *f = *state;
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];
	struct timespec now, end;
	struct stat st;
	int in, w;

	vs_cache_object_name(name, H_ABC);
	check_ret(0, link_abc(f), "link abc");
	in = watch_opens(f, name);
	check_ret(-EEXIST, link_abc(f), "link abc again");
	check_int(0, opens_seen(in), "opens of the object it linked");
	check_ret(-EEXIST, link_abc(f), "link abc a third time");

	/* its bytes written in place, the same size: once the clock moved
	 * past its st_ctim (a kernel without multigrain timestamps keeps
	 * a tick's changes at one st_ctim) */
	check_ret(0, cache_lstat(f, name, &st), "lstat object");
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec++;
	do {
		clock_gettime(CLOCK_REALTIME_COARSE, &now);
		if (now.tv_sec > st.st_ctim.tv_sec ||
		    (now.tv_sec == st.st_ctim.tv_sec &&
		     now.tv_nsec > st.st_ctim.tv_nsec))
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec ||
		 (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	w = openat(f->cache.dir_fd, name, O_WRONLY | O_CLOEXEC);
	check_bool(true, w >= 0, "open the object for writing");
	check_int(1, pwrite(w, "X", 1, 1), "write X in place");
	close(w);
	check_ret(0, link_abc(f), "link over bytes written in place");
	check_object(f, H_ABC, "abc", 3);

	/* another file at its name, the same size */
	plant(f, name, "abX");
	check_ret(0, link_abc(f), "link over another file at the name");
	check_object(f, H_ABC, "abc", 3);

	/* one put there with the right bytes: hashed once, then known */
	plant(f, name, "abc");
	in = watch_opens(f, name);
	check_ret(-EEXIST, link_abc(f), "link over a planted abc");
	check_bool(true, opens_seen(in) > 0, "a planted object is hashed");
	in = watch_opens(f, name);
	check_ret(-EEXIST, link_abc(f), "link over it again");
	check_int(0, opens_seen(in), "opens of the object it hashed");
	check_int(0, count_entries(f, "tmp"), "files left in tmp/");
}

static void test_store_wrong_hash(void **state)
{
	struct fixture *f = *state;
	int fd = -1;

	check_ret(-EBADMSG, vs_cache_store(&f->cache, H_ABC, "abd", 3),
		  "vs_cache_store of \"abd\" as sha256(abc)");
	check_ret(-EBADMSG, vs_cache_store(&f->cache, H_EMPTY, "x", 1),
		  "vs_cache_store of \"x\" as sha256(\"\")");
	check_absent(f, "objects/ba/" H_ABC);
	check_absent(f, "objects/e3/" H_EMPTY);
	check_int(0, count_entries(f, "tmp"), "files left in tmp/");
	check_ret(-ENOENT, vs_cache_open(&f->cache, H_ABC, &fd),
		  "vs_cache_open after a rejected store");
}

static void test_bad_hash_string(void **state)
{
	static const char *const bad[] = {
	    "",
	    "abc",
	    "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
	    "../../../../etc/passwd",
	};
	struct fixture *f = *state;
	int fd = -1;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		check_ret(-EINVAL, vs_cache_store(&f->cache, bad[i], "abc", 3),
			  "vs_cache_store(hash \"%s\")", bad[i]);
		check_ret(-EINVAL, vs_cache_open(&f->cache, bad[i], &fd),
			  "vs_cache_open(hash \"%s\")", bad[i]);
	}
	check_int(0, count_entries(f, "objects"),
		  "entries in objects/ (no fan-out dir made)");
}

static void test_open_missing(void **state)
{
	struct fixture *f = *state;
	int fd = 12345;

	check_ret(-ENOENT, vs_cache_open(&f->cache, H_ABC, &fd),
		  "vs_cache_open of a missing object");
	check_int(12345, fd, "fd_out after a failed open (untouched)");
	/* the fan-out dir exists but not the object */
	check_ret(0, vs_cache_store(&f->cache, H_ABC, "abc", 3),
		  "vs_cache_store(abc)");
	check_ret(-ENOENT,
		  vs_cache_open(&f->cache,
				"ba00000000000000000000000000000000000000000000"
				"000000000000000000",
				&fd),
		  "vs_cache_open of a missing object in an existing fan-out "
		  "dir");
}

/* Damage the stored object @hash: overwrite byte 1, or truncate it. */
static void corrupt(struct fixture *f, const char *hash, bool truncate)
{
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];
	int fd;

	vs_cache_object_name(name, hash);
	fd = openat(f->cache.dir_fd, name, O_WRONLY);
	if (fd < 0)
		fail_msg("open '%s' for writing: %s", name, strerror(errno));
	if (truncate ? ftruncate(fd, 1) : (pwrite(fd, "X", 1, 1) == 1 ? 0 : -1))
		fail_msg("damage '%s': %s", name, strerror(errno));
	close(fd);
}

static void test_corrupt_object(void **state)
{
	struct fixture *f = *state;
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];
	int fd = -1;

	vs_cache_object_name(name, H_ABC);
	for (int truncate = 0; truncate <= 1; truncate++) {
		const char *how = truncate ? "truncated" : "overwritten";

		check_ret(0, vs_cache_store(&f->cache, H_ABC, "abc", 3),
			  "vs_cache_store(abc)");
		corrupt(f, H_ABC, truncate);
		check_ret(-EBADMSG, vs_cache_open(&f->cache, H_ABC, &fd),
			  "vs_cache_open of an object with a byte %s", how);
		check_absent(f, name);
		check_bytes(f, "after a corrupt object was removed");
		check_ret(-ENOENT, vs_cache_open(&f->cache, H_ABC, &fd),
			  "vs_cache_open after a %s object was removed", how);
	}
	/* and it can be fetched again */
	check_ret(0, vs_cache_store(&f->cache, H_ABC, "abc", 3),
		  "vs_cache_store(abc) after removal");
	check_object(f, H_ABC, "abc", 3);
}

/* ------------------------------------------------------------ no room */

/* the volume of test_reclaim_loop: 64 pages; a ballast file holds 8 of
 * them, an object needs 12 (more than one reclaim frees, less than two) */
#define ROOM_VOL      "size=256k,mode=0700"
#define ROOM_BALLAST  (32 * 1024)
#define ROOM_OBJECT   (48 * 1024)
#define ROOM_NBALLAST 4

/* The reclaim of test_reclaim_loop: removes the next ballast file of
 * @arg's volume; false (nothing freed) once there is none left. */
struct ballast {
	char dir[96]; /* the volume: "<the fixture's tmp>/vol" */
	int left, calls;
};

static bool drop_ballast(void *arg)
{
	struct ballast *b = arg;
	char path[128];

	b->calls++;
	if (!b->left)
		return false;
	snprintf(path, sizeof(path), "%s/ballast%d", b->dir, --b->left);
	return unlink(path) == 0;
}

#define CHILD_CHECK(cond, ...)                                                 \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			_exit(1);                                              \
		}                                                              \
	} while (0)

/* Fill @path with @len bytes of @byte, or until the volume is full
 * (@len 0): 0, or -errno. */
static int fill_file(const char *path, size_t len, char byte)
{
	char buf[4096];
	size_t done = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = 0;

	if (fd < 0)
		return -errno;
	memset(buf, byte, sizeof(buf));
	while (!len || done < len) {
		ssize_t n = write(fd, buf, sizeof(buf));

		if (n < 0) {
			r = len ? -errno : 0; /* full: what was asked */
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	return r;
}

/* Write @s to @path: 0 or -1. */
static int put_proc(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, s, strlen(s));

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* A mount namespace of this process's own: as root, or in a user
 * namespace of its own (mapped to this user). 0 or -1. */
static int own_mount_ns(void)
{
	char map[64];
	unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();

	if (unshare(CLONE_NEWNS) == 0)
		return 0;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return -1;
	snprintf(map, sizeof(map), "%u %u 1", uid, uid);
	if (put_proc("/proc/self/setgroups", "deny") < 0 ||
	    put_proc("/proc/self/uid_map", map) < 0)
		return -1;
	snprintf(map, sizeof(map), "%u %u 1", gid, gid);
	return put_proc("/proc/self/gid_map", map);
}

/* The body of test_reclaim_loop, in a child with a mount namespace of its
 * own (the tmpfs goes with it): exit 0, 77 (cannot mount), 1 (a failure,
 * on stderr). */
static void reclaim_loop_child(const char *tmp)
{
	static char obj[ROOM_OBJECT], big[4 * ROOM_BALLAST];
	char vol[96], dir[128], path[160];
	char hash[VS_HASH_HEX_LEN + 1];
	struct ballast b = {.left = ROOM_NBALLAST};
	struct vs_cache c;
	struct vs_cache_writer w;
	int fd, r;

	snprintf(vol, sizeof(vol), "%s/vol", tmp);
	if (mkdir(vol, 0700) < 0 || own_mount_ns() < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("vsync-test-cache", vol, "tmpfs", 0, ROOM_VOL) < 0)
		_exit(77);
	snprintf(b.dir, sizeof(b.dir), "%s", vol);
	snprintf(dir, sizeof(dir), "%s/cache", vol);
	CHILD_CHECK(vs_cache_init(&c, dir) == 0, "vs_cache_init");
	for (int i = 0; i < ROOM_NBALLAST; i++) {
		snprintf(path, sizeof(path), "%s/ballast%d", vol, i);
		CHILD_CHECK(fill_file(path, ROOM_BALLAST, 'b') == 0,
			    "ballast %d", i);
	}
	snprintf(path, sizeof(path), "%s/filler", vol);
	CHILD_CHECK(fill_file(path, 0, 'f') == 0, "filler");
	vs_cache_on_full(&c, drop_ballast, NULL, &b);

	/* a store that needs two reclaims */
	memset(obj, 'o', sizeof(obj));
	CHILD_CHECK(vs_sha256_hex(hash, obj, sizeof(obj)) == 0, "hash");
	r = vs_cache_store(&c, hash, obj, sizeof(obj));
	CHILD_CHECK(r == 0,
		    "vs_cache_store of %d KiB on a full volume, where a "
		    "reclaim frees %d KiB: %s after %d reclaim(s)",
		    ROOM_OBJECT / 1024, ROOM_BALLAST / 1024, strerror(-r),
		    b.calls);
	CHILD_CHECK(b.calls == 2, "reclaims asked: %d, not 2", b.calls);
	CHILD_CHECK(vs_cache_open(&c, hash, &fd) == 0, "open the object");
	close(fd);

	/* the streaming writer: the same (one reclaim is enough here) */
	memset(obj, 'w', sizeof(obj));
	CHILD_CHECK(vs_sha256_hex(hash, obj, sizeof(obj)) == 0, "hash");
	CHILD_CHECK(vs_cache_writer_open(&c, &w) == 0, "writer_open");
	r = vs_cache_writer_add(&w, obj, sizeof(obj));
	CHILD_CHECK(r == 0, "vs_cache_writer_add on a full volume: %s",
		    strerror(-r));
	CHILD_CHECK(vs_cache_writer_commit(&w, hash) == 0, "writer_commit");

	/* more than the reclaims can free: the volume's error, nothing
	 * left in tmp/ */
	memset(big, 'g', sizeof(big));
	CHILD_CHECK(vs_sha256_hex(hash, big, sizeof(big)) == 0, "hash");
	b.calls = 0;
	r = vs_cache_store(&c, hash, big, sizeof(big));
	CHILD_CHECK(r == -ENOSPC, "a store too big for the volume: %s",
		    strerror(-r));
	CHILD_CHECK(b.left == 0 && b.calls == 2,
		    "reclaims until one freed nothing: %d calls, %d left",
		    b.calls, b.left);
	CHILD_CHECK(vs_cache_open(&c, hash, &fd) == -ENOENT, "no object");
	snprintf(path, sizeof(path), "%s/tmp", dir);
	fd = open(path, O_RDONLY | O_DIRECTORY);
	CHILD_CHECK(fd >= 0, "open tmp/");
	{
		DIR *d = fdopendir(fd);
		struct dirent *de;

		while (d && (de = readdir(d)))
			CHILD_CHECK(de->d_name[0] == '.', "left in tmp/: %s",
				    de->d_name);
		if (d)
			closedir(d);
	}
	vs_cache_release(&c);
	_exit(0);
}

/* A write to a full volume asks for reclaims, and writes again, as long
 * as one frees something: a store of 48 KiB where each frees 32 KiB
 * needs two (before: one, then ENOSPC). A tmpfs of 256 KiB, mounted in a
 * child's own mount namespace (root, or an unprivileged user namespace;
 * else skipped). */
static void test_reclaim_loop(void **state)
{
	struct fixture *f = *state;
	int status;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		reclaim_loop_child(f->tmp);
	assert_int_equal(pid, waitpid(pid, &status, 0));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		skip(); /* no mount namespace, no tmpfs */
	check_bool(true, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		   "the store on a full volume (the child's stderr says "
		   "what failed)");
}

struct open_call {
	struct vs_cache *cache;
	bool unchecked;
	int r, fd;
};

static void *open_thread(void *arg)
{
	struct open_call *o = arg;

	o->r = o->unchecked ? vs_cache_open_unchecked(o->cache, H_ABC, &o->fd)
			    : vs_cache_open(o->cache, H_ABC, &o->fd);
	return NULL;
}

/* vs_cache_open (or _unchecked) of H_ABC, within 5 s: its result. */
static int open_within(struct fixture *f, bool unchecked)
{
	struct open_call o = {&f->cache, unchecked, 1, -1};

	run_within(open_thread, &o,
		   unchecked ? "vs_cache_open_unchecked" : "vs_cache_open");
	if (o.fd >= 0)
		close(o.fd);
	return o.r;
}

static void test_not_a_file(void **state)
{
	struct fixture *f = *state;
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];

	vs_cache_object_name(name, H_ABC);
	/* the fan-out dir, as a store would make it */
	check_ret(0, vs_cache_store(&f->cache, H_ABC, "abc", 3), "store");
	for (int kind = 0; kind < 4; kind++) {
		const char *what =
		    kind % 2 ? "a symlink to /dev/zero" : "a FIFO";
		bool unchecked = kind >= 2;

		check_int(0, unlinkat(f->cache.dir_fd, name, 0), "unlink");
		if (kind % 2)
			check_int(0,
				  symlinkat("/dev/zero", f->cache.dir_fd, name),
				  "symlink");
		else
			check_int(0, mkfifoat(f->cache.dir_fd, name, 0600),
				  "mkfifo");
		check_ret(-EBADMSG, open_within(f, unchecked),
			  "open%s of %s at an object's name",
			  unchecked ? "_unchecked" : "", what);
		check_absent(f, name);
		/* fetched again: stored and opened as any object */
		check_ret(0, vs_cache_store(&f->cache, H_ABC, "abc", 3),
			  "store after %s was removed", what);
		check_object(f, H_ABC, "abc", 3);
	}
}

#define TMP_FIFOS 4096

static void *store_thread(void *arg)
{
	struct open_call *o = arg;

	o->r = vs_cache_store(o->cache, H_ABC, "abc", 3);
	return NULL;
}

/* A FIFO at the name of the next temporary file (tmp/<pid>.<n>: a name
 * anyone can guess) never holds a store: the store makes a new file. */
static void test_tmp_not_a_file(void **state)
{
	struct fixture *f = *state;
	struct open_call o = {&f->cache, false, 1, -1};
	char rel[64];
	int left = 0;

	/* the counter is the process's: FIFOs at the next TMP_FIFOS */
	for (int n = 1; n <= TMP_FIFOS; n++) {
		snprintf(rel, sizeof(rel), "tmp/%d.%d", (int)f->cache.pid, n);
		if (mkfifoat(f->cache.dir_fd, rel, 0600) < 0)
			fail_msg("mkfifo %s: %s", rel, strerror(errno));
	}
	run_within(store_thread, &o, "vs_cache_store");
	check_ret(0, o.r, "store with FIFOs at temporary names");
	check_object(f, H_ABC, "abc", 3);
	for (int n = 1; n <= TMP_FIFOS; n++) {
		snprintf(rel, sizeof(rel), "tmp/%d.%d", (int)f->cache.pid, n);
		left += faccessat(f->cache.dir_fd, rel, F_OK, 0) == 0;
		unlinkat(f->cache.dir_fd, rel, 0);
	}
	/* else the store did not meet one: the check proves nothing */
	check_int(TMP_FIFOS - 1, left, "FIFOs left (one was replaced)");
}

/* tmp/<name> in @f's cache, modified @age_s seconds ago (-1: at the
 * epoch's first hour). */
static void tmp_file(struct fixture *f, const char *name, int age_s)
{
	struct timespec ts[2];
	char rel[64];
	int fd;

	snprintf(rel, sizeof(rel), "tmp/%s", name);
	fd = openat(f->cache.dir_fd, rel, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "partial", 7) != 7)
		fail_msg("make %s: %s", rel, strerror(errno));
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec = age_s < 0 ? 3600 : ts[0].tv_sec - age_s;
	ts[1] = ts[0];
	if (futimens(fd, ts) < 0)
		fail_msg("set the mtime of %s: %s", rel, strerror(errno));
	close(fd);
}

static bool tmp_present(struct fixture *f, const char *name)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "tmp/%s", name);
	return cache_lstat(f, rel, NULL) == 0;
}

static void test_tmp_sweep(void **state)
{
	struct fixture *f = *state;
	char dead[32], old_mine[32], mine[32], parent[32], parent_old[32];
	pid_t child;

	/* a pid that ran and is gone */
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	assert_int_equal(child, waitpid(child, NULL, 0));
	snprintf(dead, sizeof(dead), "%d.1", (int)child);
	tmp_file(f, dead, 0);
	/* this pid: one written before this process started (an earlier
	 * process with the same pid), one of now */
	snprintf(old_mine, sizeof(old_mine), "%d.7", (int)getpid());
	tmp_file(f, old_mine, -1);
	snprintf(mine, sizeof(mine), "%d.8", (int)getpid());
	tmp_file(f, mine, 0);
	/* a running process sharing the dir (a mount --at): its file of
	 * now stays, one older than the process goes */
	snprintf(parent, sizeof(parent), "%d.3", (int)getppid());
	tmp_file(f, parent, 0);
	snprintf(parent_old, sizeof(parent_old), "%d.4", (int)getppid());
	tmp_file(f, parent_old, -1);
	/* not a temp file of the cache: never touched */
	tmp_file(f, "partial", -1);
	tmp_file(f, "12.x", -1);

	/* the next start */
	vs_cache_release(&f->cache);
	check_ret(0, vs_cache_init(&f->cache, f->dir), "init again");
	check_bool(false, tmp_present(f, dead),
		   "a gone process's file removed");
	check_bool(false, tmp_present(f, old_mine),
		   "a file of this pid older than this process removed");
	check_bool(true, tmp_present(f, mine), "this process's file stays");
	check_bool(true, tmp_present(f, parent),
		   "a running process's file stays");
	check_bool(false, tmp_present(f, parent_old),
		   "a file older than the process of its pid removed");
	check_bool(true, tmp_present(f, "partial"), "other names stay");
	check_bool(true, tmp_present(f, "12.x"), "other names stay (12.x)");
}

/* ------------------------------------------------------------ projects */

static void test_project_dir(void **state)
{
	static const char *const bad[] = {"",  "a/b", "../x",
					  ".", "..",  ".hidden"};
	struct fixture *f = *state;
	struct stat st;
	int fd = -1;

	check_ret(0, vs_cache_project_dir(&f->cache, PROJECT, "", &fd),
		  "vs_cache_project_dir(PROJECT, \"\")");
	check_ret(0, fstat(fd, &st) < 0 ? -errno : 0,
		  "fstat of the project fd");
	check_bool(true, S_ISDIR(st.st_mode), "project fd is a directory");
	close(fd);
	check_is_dir(f, "projects/" PROJECT);

	check_ret(0, vs_cache_project_dir(&f->cache, PROJECT, "local", &fd),
		  "vs_cache_project_dir(PROJECT, \"local\")");
	close(fd);
	check_is_dir(f, "projects/" PROJECT "/local");

	/* the sub dir may be created together with the project dir */
	check_ret(0, vs_cache_project_dir(&f->cache, PROJECT2, "local", &fd),
		  "vs_cache_project_dir(PROJECT2, \"local\")");
	close(fd);
	check_is_dir(f, "projects/" PROJECT2 "/local");

	/* and again: they exist */
	check_ret(0, vs_cache_project_dir(&f->cache, PROJECT, "local", &fd),
		  "vs_cache_project_dir(PROJECT, \"local\") again");
	close(fd);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_ret(-EINVAL,
			  vs_cache_project_dir(&f->cache, bad[i], "", &fd),
			  "vs_cache_project_dir(\"%s\")", bad[i]);
	check_int(2, count_entries(f, "projects"), "entries in projects/");
}

static void test_project_link_resolve(void **state)
{
	struct fixture *f = *state;
	char out[VS_UUID_BUFSZ], target[64];
	ssize_t n;
	int fd;

	check_ret(-ENOENT, vs_cache_project_resolve(&f->cache, "myapp", out),
		  "vs_cache_project_resolve(\"myapp\") before any link");

	check_ret(0, vs_cache_project_link(&f->cache, "myapp", PROJECT),
		  "vs_cache_project_link(\"myapp\", PROJECT)");
	n = readlinkat(f->cache.dir_fd, "projects/myapp", target,
		       sizeof(target) - 1);
	check_int(36, n, "length of the projects/myapp link");
	target[n < 0 ? 0 : n] = '\0';
	check_str(PROJECT, target, "target of projects/myapp");
	memset(out, 'X', sizeof(out));
	check_ret(0, vs_cache_project_resolve(&f->cache, "myapp", out),
		  "vs_cache_project_resolve(\"myapp\")");
	check_str(PROJECT, out, "project resolved from \"myapp\"");

	/* relinking the name points it at the new project */
	check_ret(0, vs_cache_project_link(&f->cache, "myapp", PROJECT2),
		  "vs_cache_project_link(\"myapp\", PROJECT2)");
	check_ret(0, vs_cache_project_resolve(&f->cache, "myapp", out),
		  "vs_cache_project_resolve(\"myapp\") after relink");
	check_str(PROJECT2, out,
		  "project resolved from \"myapp\" after relink");
	check_int(0, count_entries(f, "tmp"), "files left in tmp/");
	check_int(1, count_entries(f, "projects"), "entries in projects/");

	/* a UUID resolves to itself once its dir exists */
	check_ret(-ENOENT, vs_cache_project_resolve(&f->cache, PROJECT, out),
		  "vs_cache_project_resolve(PROJECT) without its dir");
	check_ret(0, vs_cache_project_dir(&f->cache, PROJECT, "", &fd),
		  "vs_cache_project_dir(PROJECT)");
	close(fd);
	check_ret(0, vs_cache_project_resolve(&f->cache, PROJECT, out),
		  "vs_cache_project_resolve(PROJECT) with its dir");
	check_str(PROJECT, out, "project resolved from its own UUID");

	/* linking a UUID to itself does nothing */
	check_ret(0, vs_cache_project_link(&f->cache, PROJECT, PROJECT),
		  "vs_cache_project_link(PROJECT, PROJECT)");
	check_is_dir(f, "projects/" PROJECT);

	/* names that cannot be a link are ignored (best effort) */
	check_ret(0, vs_cache_project_link(&f->cache, "a/b", PROJECT),
		  "vs_cache_project_link(\"a/b\")");
	check_ret(0, vs_cache_project_link(&f->cache, "..", PROJECT),
		  "vs_cache_project_link(\"..\")");
	check_ret(-ENOENT, vs_cache_project_resolve(&f->cache, "a/b", out),
		  "vs_cache_project_resolve(\"a/b\")");
	check_ret(-ENOENT, vs_cache_project_resolve(&f->cache, "other", out),
		  "vs_cache_project_resolve(\"other\")");
	check_int(2, count_entries(f, "projects"), "entries in projects/");
}

static void check_read(struct fixture *f, const char *file, const char *want,
		       size_t want_len)
{
	char *buf = NULL;
	size_t len = 0;

	check_ret(0,
		  vs_cache_project_read(&f->cache, PROJECT, file, &buf, &len),
		  "vs_cache_project_read(\"%s\")", file);
	check_int(want_len, len, "length read back from \"%s\"", file);
	if (memcmp(buf, want, want_len) != 0)
		fail_msg("bytes read back from \"%s\" differ from those "
			 "written (%zu bytes)",
			 file, want_len);
	check_int(0, buf[len], "NUL after the bytes read from \"%s\"", file);
	free(buf);
}

struct project_read_call {
	struct vs_cache *cache;
	const char *file;
	int r;
};

static void *project_read_thread(void *arg)
{
	struct project_read_call *o = arg;
	char *buf = NULL;
	size_t len = 0;

	o->r = vs_cache_project_read(o->cache, PROJECT, o->file, &buf, &len);
	free(buf);
	return NULL;
}

/* vs_cache_project_read of @file, within 5 s: its result. */
static int project_read_within(struct fixture *f, const char *file)
{
	struct project_read_call o = {&f->cache, file, 1};

	run_within(project_read_thread, &o, "vs_cache_project_read");
	return o.r;
}

static void test_project_write_read(void **state)
{
	static const char bin[] = "vsync-manifest 1\n\0\x01\xff\n";
	struct fixture *f = *state;
	char *big = malloc(1 << 20);
	char *buf = NULL;
	size_t len = 0;

	assert_non_null(big);
	for (size_t i = 0; i < 1 << 20; i++)
		big[i] = (char)(i * 7 + i / 251);

	check_ret(
	    -ENOENT,
	    vs_cache_project_read(&f->cache, PROJECT, "manifest", &buf, &len),
	    "vs_cache_project_read of a missing file");
	check_ptr(NULL, buf, "buffer after a failed read");

	check_ret(0,
		  vs_cache_project_write(&f->cache, PROJECT, "manifest", bin,
					 sizeof(bin)),
		  "vs_cache_project_write(\"manifest\", %zu bytes)",
		  sizeof(bin));
	check_read(f, "manifest", bin, sizeof(bin));

	check_ret(
	    0, vs_cache_project_write(&f->cache, PROJECT, "manifest", "ab", 2),
	    "vs_cache_project_write(\"manifest\") with shorter content");
	check_read(f, "manifest", "ab", 2);

	check_ret(0, vs_cache_project_write(&f->cache, PROJECT, "empty", "", 0),
		  "vs_cache_project_write(\"empty\")");
	check_read(f, "empty", "", 0);

	check_ret(
	    0, vs_cache_project_write(&f->cache, PROJECT, "big", big, 1 << 20),
	    "vs_cache_project_write(\"big\", 1 MiB)");
	check_read(f, "big", big, 1 << 20);

	check_int(0, count_entries(f, "tmp"), "files left in tmp/");
	check_int(3, count_entries(f, "projects/" PROJECT),
		  "files in the project dir");
	check_ret(-EINVAL,
		  vs_cache_project_write(&f->cache, "../x", "manifest", "a", 1),
		  "vs_cache_project_write to project \"../x\"");
	free(big);
	/* a FIFO planted at a project file: refused at once, not waited on
	 * (a mount's start read it) */
	check_int(
	    0, mkfifoat(f->cache.dir_fd, "projects/" PROJECT "/learned", 0600),
	    "mkfifo projects/<id>/learned");
	check_ret(-EBADMSG, project_read_within(f, "learned"),
		  "vs_cache_project_read of a FIFO");
}

#define T(fn)                                                                  \
	cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_object_name),
	    T(test_init_layout),
	    T(test_init_failure),
	    T(test_lock),
	    T(test_store_open),
	    T(test_memory),
	    T(test_link),
	    T(test_link_over_wrong),
	    T(test_link_known),
	    T(test_link_symlink),
	    T(test_store_wrong_hash),
	    T(test_bad_hash_string),
	    T(test_open_missing),
	    T(test_corrupt_object),
	    T(test_reclaim_loop),
	    T(test_not_a_file),
	    T(test_tmp_not_a_file),
	    T(test_tmp_sweep),
	    T(test_project_dir),
	    T(test_project_link_resolve),
	    T(test_project_write_read),
	};

	return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
