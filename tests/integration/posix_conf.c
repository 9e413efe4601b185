/*
 * posix_conf.c - POSIX conformance cases for a directory, for
 * tests/integration/test_posix.sh: the same program runs on a plain local
 * directory (which proves the expectations are POSIX, not vsync's) and on
 * the synced and local-only directories of a --writable mount.
 *
 *   posix_conf DIR [CASE...]
 *       run every case (or the named ones), each in a fresh sub-directory
 *       DIR/CASE that must not exist yet; what a case leaves there is its
 *       documented final state (test_posix.sh compares it with PostgreSQL)
 *   posix_conf -x DIR_A DIR_B
 *       the cross cases: DIR_A and DIR_B are on different file systems (or
 *       on the two sides of vsync's local-only boundary), so every rename
 *       and hard link between them must be refused with EXDEV and leave
 *       both sides as they were
 *   posix_conf -l
 *       list the case names
 *
 * Output: one line per case, "ok NAME" (a note in parentheses when the
 * case took an allowed variant, e.g. "ok link (refused: EPERM)") or
 * "FAIL NAME: expected X got Y (CALL, line N)". Exit 0 when every case
 * passed, 1 otherwise, 2 on a usage error.
 *
 * Every case runs with umask 022 and its sub-directory as the working
 * directory, names paths relative to it and stops at its first failed
 * check. Nothing here depends on timing: time checks allow 2 s of slack.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- checks */

static char pc_why[1024];
static const char *pc_note; /* set by a case that took an allowed variant */

static const char *errname(int e)
{
	static char other[32];

	switch (e) {
	case 0:
		return "success";
	case EPERM:
		return "EPERM";
	case ENOENT:
		return "ENOENT";
	case EIO:
		return "EIO";
	case EBADF:
		return "EBADF";
	case EACCES:
		return "EACCES";
	case EBUSY:
		return "EBUSY";
	case EEXIST:
		return "EEXIST";
	case EXDEV:
		return "EXDEV";
	case ENOTDIR:
		return "ENOTDIR";
	case EISDIR:
		return "EISDIR";
	case EINVAL:
		return "EINVAL";
	case EFBIG:
		return "EFBIG";
	case ENOSPC:
		return "ENOSPC";
	case EROFS:
		return "EROFS";
	case EMLINK:
		return "EMLINK";
	case ENAMETOOLONG:
		return "ENAMETOOLONG";
	case ENOSYS:
		return "ENOSYS";
	case ENOTEMPTY:
		return "ENOTEMPTY";
	case ESTALE:
		return "ESTALE";
	case EOPNOTSUPP:
		return "EOPNOTSUPP";
	case EADDRINUSE:
		return "EADDRINUSE";
	default:
		snprintf(other, sizeof(other), "errno %d", e);
		return other;
	}
}

__attribute__((format(printf, 2, 3))) static int pc_fail(int line,
							 const char *fmt, ...)
{
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pc_why, sizeof(pc_why), fmt, ap);
	va_end(ap);
	n = strlen(pc_why);
	snprintf(pc_why + n, sizeof(pc_why) - n, ", line %d)", line);
	return -1;
}

/* Each check returns from the case with -1 on failure. */
#define FAIL(...) return pc_fail(__LINE__, __VA_ARGS__)

/* @call returns -1 and sets errno on failure */
#define OK(call)                                                               \
	do {                                                                   \
		if ((call) < 0)                                                \
			FAIL("expected success got %s (%s", errname(errno),    \
			     #call);                                           \
	} while (0)

/* @call must fail with @want */
#define ERR(want, call)                                                        \
	do {                                                                   \
		int got_ = (call) < 0 ? errno : 0;                             \
		if (got_ != (want))                                            \
			FAIL("expected %s got %s (%s", errname(want),          \
			     errname(got_), #call);                            \
	} while (0)

/* @call must fail with @w1 or @w2 (POSIX allows either) */
#define ERR2(w1, w2, call)                                                     \
	do {                                                                   \
		int got_ = (call) < 0 ? errno : 0;                             \
		if (got_ != (w1) && got_ != (w2))                              \
			FAIL("expected %s or %s got %s (%s", errname(w1),      \
			     errname(w2), errname(got_), #call);               \
	} while (0)

#define EQ(what, want, got)                                                    \
	do {                                                                   \
		long long w_ = (long long)(want), g_ = (long long)(got);       \
		if (w_ != g_)                                                  \
			FAIL("expected %lld got %lld (%s", w_, g_, what);      \
	} while (0)

#define MODE(path, want)                                                       \
	do {                                                                   \
		struct stat s_;                                                \
		OK(lstat(path, &s_));                                          \
		if ((s_.st_mode & 07777) != (mode_t)(want))                    \
			FAIL("expected mode %04o got %04o (%s", (want),        \
			     s_.st_mode & 07777, path);                        \
	} while (0)

#define CONTENT(path, want, len)                                               \
	do {                                                                   \
		if (expect_content(__LINE__, path, want, len) < 0)             \
			return -1;                                             \
	} while (0)

#define FD_CONTENT(fd, want, len)                                              \
	do {                                                                   \
		if (expect_fd_content(__LINE__, #fd, fd, want, len) < 0)       \
			return -1;                                             \
	} while (0)

#define ABSENT(path) ERR(ENOENT, access(path, F_OK))

#define KIND(path, type)                                                       \
	do {                                                                   \
		struct stat s_;                                                \
		OK(lstat(path, &s_));                                          \
		if ((s_.st_mode & S_IFMT) != (type))                           \
			FAIL("expected type %s got %06o (%s", #type,           \
			     s_.st_mode &S_IFMT, path);                        \
	} while (0)

/* Up to 40 bytes of @p, escaped, in a static buffer (@slot 0 or 1). */
static const char *shown(int slot, const char *p, size_t len)
{
	static char buf[2][200];
	size_t o = 0;

	buf[slot][o++] = '"';
	for (size_t i = 0; i < len && i < 40; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			buf[slot][o++] = (char)c;
		else
			o += (size_t)snprintf(
			    buf[slot] + o, sizeof(buf[slot]) - o, "\\x%02x", c);
	}
	buf[slot][o++] = '"';
	if (len > 40)
		o += (size_t)snprintf(buf[slot] + o, sizeof(buf[slot]) - o,
				      "...(%zu bytes)", len);
	buf[slot][o] = '\0';
	return buf[slot];
}

/* The whole content of @fd (read from offset 0) must be @want. */
static int expect_fd_content(int line, const char *what, int fd,
			     const char *want, size_t len)
{
	size_t cap = len + 4096, got = 0;
	char *buf = malloc(cap);
	ssize_t n;
	int r = 0;

	if (!buf)
		return pc_fail(line, "expected memory got ENOMEM (%s", what);
	while (got < cap && (n = pread(fd, buf + got, cap - got, got)) > 0)
		got += (size_t)n;
	if (got < cap && n < 0)
		r = pc_fail(line, "expected content got %s (read %s",
			    errname(errno), what);
	else if (got != len || memcmp(buf, want, len) != 0)
		r = pc_fail(line, "expected %s got %s (content of %s",
			    shown(0, want, len), shown(1, buf, got), what);
	free(buf);
	return r;
}

static int expect_content(int line, const char *path, const char *want,
			  size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return pc_fail(line, "expected success got %s (open %s",
			       errname(errno), path);
	r = expect_fd_content(line, path, fd, want, len);
	close(fd);
	return r;
}

/* ---------------------------------------------------------------- helpers */

/* Write @s (a string) to @path, created 0666 (0644 after the umask) or
 * truncated. 0, or -1 with errno. */
static int put(const char *path, const char *s)
{
	size_t len = strlen(s);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	int r = 0;

	if (fd < 0)
		return -1;
	if (write(fd, s, len) != (ssize_t)len)
		r = -1;
	if (close(fd) < 0)
		r = -1;
	return r;
}

/* put(), with an fsync(2) before the close. */
static int put_fsync(const char *path, const char *s)
{
	size_t len = strlen(s);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	int r = 0;

	if (fd < 0)
		return -1;
	if (write(fd, s, len) != (ssize_t)len || fsync(fd) < 0)
		r = -1;
	if (close(fd) < 0)
		r = -1;
	return r;
}

/* open(2) then close: 0, or -1 with errno. */
static int open_close(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0666);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* write(2) of a whole string: the count, or -1 with errno (a short write is
 * reported as EIO). */
static int write_str(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));

	if (n >= 0 && (size_t)n != strlen(s)) {
		errno = EIO;
		return -1;
	}
	return (int)n;
}

static int pwrite_str(int fd, const char *s, off_t off)
{
	ssize_t n = pwrite(fd, s, strlen(s), off);

	if (n >= 0 && (size_t)n != strlen(s)) {
		errno = EIO;
		return -1;
	}
	return (int)n;
}

static long long size_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) < 0 ? -1 : (long long)st.st_size;
}

static int64_t ts_ns(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_ns(ts);
}

/* Two fixed times with nanoseconds (file systems keep them exactly). */
#define T_A    1000000000LL
#define T_A_NS 250000000L
#define T_M    1100000000LL
#define T_M_NS 500000000L
#define T_X    1200000000LL
#define T_X_NS 125000000L

/* Set @path's times to T_A (atime) and T_M (mtime). */
static int set_known_times(const char *path)
{
	struct timespec tv[2] = {{.tv_sec = T_A, .tv_nsec = T_A_NS},
				 {.tv_sec = T_M, .tv_nsec = T_M_NS}};

	return utimensat(AT_FDCWD, path, tv, 0);
}

#define TIMES(path, want_a, want_m)                                            \
	do {                                                                   \
		struct stat s_;                                                \
		OK(lstat(path, &s_));                                          \
		EQ("atime of " path, (want_a), ts_ns(s_.st_atim));             \
		EQ("mtime of " path, (want_m), ts_ns(s_.st_mtim));             \
	} while (0)

#define NS(sec, nsec) ((int64_t)(sec)*1000000000 + (nsec))

/* ---------------------------------------------------------------- cases */

/* create: a new file exists, is empty, has the mode asked minus umask */
static int c_create(void)
{
	int fd;

	OK(fd = open("f", O_WRONLY | O_CREAT | O_CLOEXEC, 0666));
	OK(close(fd));
	KIND("f", S_IFREG);
	EQ("size of f", 0, size_of("f"));
	MODE("f", 0644);
	OK(fd = open("g", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
	OK(write_str(fd, "via create"));
	FD_CONTENT(fd, "via create", 10);
	OK(close(fd));
	MODE("g", 0600);
	CONTENT("g", "via create", 10);
	/* O_CREAT without O_EXCL opens an existing file as it is */
	OK(fd = open("g", O_RDWR | O_CREAT | O_CLOEXEC, 0666));
	FD_CONTENT(fd, "via create", 10);
	OK(close(fd));
	ERR(ENOENT, open_close("missing", O_RDONLY));
	ERR(ENOENT, open_close("nodir/f", O_WRONLY | O_CREAT));
	return 0;
}

/* O_EXCL: creating an existing name (file, directory, symlink) is EEXIST */
static int c_create_excl(void)
{
	OK(put("f", "keep"));
	OK(mkdir("d", 0755));
	OK(symlink("f", "l"));
	ERR(EEXIST, open_close("f", O_WRONLY | O_CREAT | O_EXCL));
	ERR(EEXIST, open_close("d", O_WRONLY | O_CREAT | O_EXCL));
	ERR(EEXIST, open_close("l", O_WRONLY | O_CREAT | O_EXCL));
	CONTENT("f", "keep", 4);
	OK(open_close("new", O_WRONLY | O_CREAT | O_EXCL));
	KIND("new", S_IFREG);
	return 0;
}

/* writes at any offset, overwriting in the middle and at the start */
static int c_write_offset(void)
{
	int fd;

	OK(fd = open("f", O_RDWR | O_CREAT | O_CLOEXEC, 0666));
	OK(write_str(fd, "0123456789"));
	OK(pwrite_str(fd, "XY", 4));
	FD_CONTENT(fd, "0123XY6789", 10);
	OK(pwrite_str(fd, "ab", 0));
	OK(lseek(fd, 9, SEEK_SET));
	OK(write_str(fd, "Z!"));
	FD_CONTENT(fd, "ab23XY678Z!", 11);
	OK(close(fd));
	CONTENT("f", "ab23XY678Z!", 11);
	EQ("size of f", 11, size_of("f"));
	return 0;
}

/* pwrite past EOF leaves a hole that reads as zeros */
static int c_pwrite_hole(void)
{
	static char want[10003];
	char buf[16];
	int fd;

	memcpy(want, "head", 4);
	memcpy(want + 10000, "end", 3);
	OK(put("f", "head"));
	OK(fd = open("f", O_WRONLY | O_CLOEXEC));
	OK(pwrite_str(fd, "end", 10000));
	OK(close(fd));
	EQ("size of f", 10003, size_of("f"));
	CONTENT("f", want, sizeof(want));
	/* a read at EOF returns 0 */
	OK(fd = open("f", O_RDONLY | O_CLOEXEC));
	EQ("pread at EOF", 0, pread(fd, buf, sizeof(buf), 10003));
	EQ("pread past EOF", 0, pread(fd, buf, sizeof(buf), 20000));
	EQ("lseek SEEK_END", 10003, lseek(fd, 0, SEEK_END));
	OK(close(fd));
	return 0;
}

/* O_APPEND: every write goes to the end, wherever the offset was */
static int c_append(void)
{
	int fd, fd2;

	OK(put("f", "one\n"));
	OK(fd = open("f", O_WRONLY | O_APPEND | O_CLOEXEC));
	OK(write_str(fd, "two\n"));
	OK(lseek(fd, 0, SEEK_SET));
	OK(write_str(fd, "three\n"));
	/* another descriptor appends after what the first one wrote */
	OK(fd2 = open("f", O_WRONLY | O_APPEND | O_CLOEXEC));
	OK(write_str(fd2, "four\n"));
	OK(close(fd2));
	OK(write_str(fd, "five\n"));
	OK(close(fd));
	CONTENT("f", "one\ntwo\nthree\nfour\nfive\n", 24);
	/* O_APPEND | O_CREAT makes the file */
	OK(fd = open("new", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666));
	OK(write_str(fd, "x"));
	OK(close(fd));
	CONTENT("new", "x", 1);
	return 0;
}

/* truncate(2): shrink, grow (zeros), to zero; refusals */
static int c_truncate(void)
{
	OK(put("f", "0123456789"));
	OK(truncate("f", 4));
	CONTENT("f", "0123", 4);
	OK(truncate("f", 8));
	CONTENT("f", "0123\0\0\0\0", 8);
	OK(put("z", "gone"));
	OK(truncate("z", 0));
	EQ("size of z", 0, size_of("z"));
	OK(mkdir("d", 0755));
	ERR(EISDIR, truncate("d", 0));
	ERR(ENOENT, truncate("missing", 0));
	ERR(EINVAL, truncate("f", -1));
	ERR(ENOTDIR, truncate("f/x", 0));
	return 0;
}

/* ftruncate(2) on an open descriptor */
static int c_ftruncate(void)
{
	struct stat st;
	int fd;

	OK(put("f", "abcdefgh"));
	OK(fd = open("f", O_RDWR | O_CLOEXEC));
	OK(ftruncate(fd, 3));
	OK(fstat(fd, &st));
	EQ("fstat size", 3, st.st_size);
	FD_CONTENT(fd, "abc", 3);
	OK(ftruncate(fd, 6));
	FD_CONTENT(fd, "abc\0\0\0", 6);
	OK(pwrite_str(fd, "Z", 5));
	OK(close(fd));
	CONTENT("f", "abc\0\0Z", 6);
	/* a descriptor not open for writing cannot truncate */
	OK(fd = open("f", O_RDONLY | O_CLOEXEC));
	ERR2(EINVAL, EBADF, ftruncate(fd, 0));
	OK(close(fd));
	EQ("size of f", 6, size_of("f"));
	return 0;
}

/* unlink, and its refusals */
static int c_unlink(void)
{
	OK(put("f", "x"));
	OK(mkdir("d", 0755));
	OK(unlink("f"));
	ABSENT("f");
	ERR(ENOENT, unlink("f"));
	ERR(ENOENT, unlink("missing"));
	ERR(EISDIR, unlink("d"));
	OK(put("g", "x"));
	ERR(ENOTDIR, unlink("g/x"));
	ERR(ENOENT, unlink("nodir/x"));
	/* a symlink is removed, not its target */
	OK(symlink("g", "l"));
	OK(unlink("l"));
	ABSENT("l");
	CONTENT("g", "x", 1);
	return 0;
}

/* an unlinked file stays usable through its open descriptor */
static int c_unlink_open(void)
{
	struct stat st;
	int fd;

	OK(put("f", "still here"));
	OK(fd = open("f", O_RDWR | O_CLOEXEC));
	OK(unlink("f"));
	ABSENT("f");
	FD_CONTENT(fd, "still here", 10);
	OK(fstat(fd, &st));
	EQ("st_nlink of an unlinked file", 0, st.st_nlink);
	OK(pwrite_str(fd, "!", 10));
	FD_CONTENT(fd, "still here!", 11);
	/* a new file of the same name is another file */
	OK(put("f", "new"));
	FD_CONTENT(fd, "still here!", 11);
	OK(close(fd));
	CONTENT("f", "new", 3);
	return 0;
}

/* mkdir and its refusals */
static int c_mkdir(void)
{
	OK(mkdir("d", 0755));
	KIND("d", S_IFDIR);
	MODE("d", 0755);
	OK(mkdir("d/e", 0777));
	MODE("d/e", 0755);
	ERR(EEXIST, mkdir("d", 0755));
	OK(put("f", "x"));
	ERR(EEXIST, mkdir("f", 0755));
	ERR(ENOTDIR, mkdir("f/sub", 0755));
	ERR(ENOENT, mkdir("nodir/sub", 0755));
	OK(symlink("d", "l"));
	ERR(EEXIST, mkdir("l", 0755));
	return 0;
}

/* rmdir and its refusals */
static int c_rmdir(void)
{
	OK(mkdir("empty", 0755));
	OK(rmdir("empty"));
	ABSENT("empty");
	OK(mkdir("full", 0755));
	OK(put("full/f", "x"));
	ERR2(ENOTEMPTY, EEXIST, rmdir("full"));
	CONTENT("full/f", "x", 1);
	OK(mkdir("full2", 0755));
	OK(mkdir("full2/sub", 0755));
	ERR2(ENOTEMPTY, EEXIST, rmdir("full2"));
	ERR(ENOENT, rmdir("missing"));
	OK(put("f", "x"));
	ERR(ENOTDIR, rmdir("f"));
	ERR(EINVAL, rmdir("full/."));
	/* emptied, it goes */
	OK(unlink("full/f"));
	OK(rmdir("full"));
	ABSENT("full");
	return 0;
}

/* rename of a file: to a new name, over an existing file, across dirs */
static int c_rename_file(void)
{
	struct stat st;
	int fd;

	OK(put("a", "A"));
	OK(rename("a", "b"));
	ABSENT("a");
	CONTENT("b", "A", 1);
	/* over an existing file: a descriptor open on it keeps its bytes */
	OK(put("c", "C"));
	OK(fd = open("c", O_RDONLY | O_CLOEXEC));
	OK(rename("b", "c"));
	ABSENT("b");
	CONTENT("c", "A", 1);
	FD_CONTENT(fd, "C", 1);
	OK(fstat(fd, &st));
	EQ("st_nlink of the replaced file", 0, st.st_nlink);
	OK(close(fd));
	/* across directories, onto a new and an existing name */
	OK(mkdir("d1", 0755));
	OK(mkdir("d2", 0755));
	OK(put("d1/x", "X"));
	OK(rename("d1/x", "d2/y"));
	ABSENT("d1/x");
	CONTENT("d2/y", "X", 1);
	OK(put("d1/z", "Z"));
	OK(rename("d1/z", "d2/y"));
	CONTENT("d2/y", "Z", 1);
	/* to itself: nothing happens */
	OK(rename("c", "c"));
	CONTENT("c", "A", 1);
	/* a symlink is renamed, not its target */
	OK(symlink("c", "l"));
	OK(rename("l", "d1/l2"));
	KIND("d1/l2", S_IFLNK);
	return 0;
}

/* rename of a directory with its contents */
static int c_rename_dir(void)
{
	OK(mkdir("d", 0755));
	OK(mkdir("d/sub", 0755));
	OK(put_fsync("d/sub/f", "first"));
	OK(put_fsync("d/sub/f", "deep"));
	OK(rename("d", "e"));
	ABSENT("d");
	CONTENT("e/sub/f", "deep", 4);
	/* a file moved with its directory takes new saves */
	OK(put_fsync("e/sub/f", "deeper"));
	CONTENT("e/sub/f", "deeper", 6);
	/* across directories */
	OK(mkdir("other", 0755));
	OK(rename("e/sub", "other/sub2"));
	ABSENT("e/sub");
	CONTENT("other/sub2/f", "deeper", 6);
	/* over an empty directory */
	OK(mkdir("empty", 0755));
	OK(rename("other/sub2", "empty"));
	CONTENT("empty/f", "deeper", 6);
	ABSENT("other/sub2");
	/* the renamed directory takes new entries */
	OK(put("empty/g", "new"));
	CONTENT("empty/g", "new", 3);
	return 0;
}

/* the refusals of rename */
static int c_rename_errors(void)
{
	OK(mkdir("d", 0755));
	OK(put("d/f", "x"));
	OK(mkdir("full", 0755));
	OK(put("full/g", "y"));
	OK(mkdir("empty", 0755));
	OK(put("file", "z"));
	ERR2(ENOTEMPTY, EEXIST, rename("d", "full"));
	ERR(EISDIR, rename("file", "empty"));
	ERR(ENOTDIR, rename("d", "file"));
	ERR(ENOENT, rename("missing", "x"));
	ERR(ENOENT, rename("file", "nodir/x"));
	ERR(ENOTDIR, rename("file", "file/x"));
	ERR(EINVAL, rename("d", "d/sub"));
	/* nothing moved */
	CONTENT("d/f", "x", 1);
	CONTENT("full/g", "y", 1);
	CONTENT("file", "z", 1);
	KIND("empty", S_IFDIR);
	return 0;
}

/* chmod and fchmod */
static int c_chmod(void)
{
	int fd;

	OK(put("f", "x"));
	OK(chmod("f", 0600));
	MODE("f", 0600);
	OK(chmod("f", 0755));
	MODE("f", 0755);
	OK(fd = open("f", O_RDONLY | O_CLOEXEC));
	OK(fchmod(fd, 0640));
	OK(close(fd));
	MODE("f", 0640);
	CONTENT("f", "x", 1);
	OK(mkdir("d", 0755));
	OK(chmod("d", 0700));
	MODE("d", 0700);
	ERR(ENOENT, chmod("missing", 0644));
	/* what stays: f 0640, g 0755 */
	OK(put("g", "#!/bin/sh\n"));
	OK(chmod("g", 0755));
	return 0;
}

/* utimensat: both times, and each alone */
static int c_utimens(void)
{
	struct timespec tv[2];
	int64_t t0, t1;
	struct stat st;
	int fd;

	OK(put("f", "x"));
	/* both */
	OK(set_known_times("f"));
	TIMES("f", NS(T_A, T_A_NS), NS(T_M, T_M_NS));
	/* atime only (mtime UTIME_OMIT) */
	tv[0] = (struct timespec){.tv_sec = T_X, .tv_nsec = T_X_NS};
	tv[1] = (struct timespec){.tv_nsec = UTIME_OMIT};
	OK(utimensat(AT_FDCWD, "f", tv, 0));
	TIMES("f", NS(T_X, T_X_NS), NS(T_M, T_M_NS));
	/* mtime only (atime UTIME_OMIT) */
	OK(set_known_times("f"));
	tv[0] = (struct timespec){.tv_nsec = UTIME_OMIT};
	tv[1] = (struct timespec){.tv_sec = T_X, .tv_nsec = T_X_NS};
	OK(utimensat(AT_FDCWD, "f", tv, 0));
	TIMES("f", NS(T_A, T_A_NS), NS(T_X, T_X_NS));
	/* both UTIME_OMIT: nothing changes */
	OK(set_known_times("f"));
	tv[0] = (struct timespec){.tv_nsec = UTIME_OMIT};
	tv[1] = (struct timespec){.tv_nsec = UTIME_OMIT};
	OK(utimensat(AT_FDCWD, "f", tv, 0));
	TIMES("f", NS(T_A, T_A_NS), NS(T_M, T_M_NS));
	/* UTIME_NOW for mtime only */
	OK(set_known_times("f"));
	tv[0] = (struct timespec){.tv_nsec = UTIME_OMIT};
	tv[1] = (struct timespec){.tv_nsec = UTIME_NOW};
	t0 = now_ns();
	OK(utimensat(AT_FDCWD, "f", tv, 0));
	t1 = now_ns();
	OK(lstat("f", &st));
	EQ("atime after mtime=UTIME_NOW", NS(T_A, T_A_NS), ts_ns(st.st_atim));
	if (ts_ns(st.st_mtim) < t0 - 2000000000LL ||
	    ts_ns(st.st_mtim) > t1 + 2000000000LL)
		FAIL("expected mtime now got %lld (UTIME_NOW",
		     (long long)ts_ns(st.st_mtim));
	/* UTIME_NOW for atime only */
	OK(set_known_times("f"));
	tv[0] = (struct timespec){.tv_nsec = UTIME_NOW};
	tv[1] = (struct timespec){.tv_nsec = UTIME_OMIT};
	t0 = now_ns();
	OK(utimensat(AT_FDCWD, "f", tv, 0));
	t1 = now_ns();
	OK(lstat("f", &st));
	EQ("mtime after atime=UTIME_NOW", NS(T_M, T_M_NS), ts_ns(st.st_mtim));
	if (ts_ns(st.st_atim) < t0 - 2000000000LL ||
	    ts_ns(st.st_atim) > t1 + 2000000000LL)
		FAIL("expected atime now got %lld (UTIME_NOW",
		     (long long)ts_ns(st.st_atim));
	/* NULL times: both now */
	OK(set_known_times("f"));
	t0 = now_ns();
	OK(utimensat(AT_FDCWD, "f", NULL, 0));
	t1 = now_ns();
	OK(lstat("f", &st));
	if (ts_ns(st.st_mtim) < t0 - 2000000000LL ||
	    ts_ns(st.st_mtim) > t1 + 2000000000LL ||
	    ts_ns(st.st_atim) < t0 - 2000000000LL ||
	    ts_ns(st.st_atim) > t1 + 2000000000LL)
		FAIL("expected both times now got atime %lld mtime %lld "
		     "(utimensat NULL",
		     (long long)ts_ns(st.st_atim),
		     (long long)ts_ns(st.st_mtim));
	/* futimens on a descriptor, and on a directory */
	OK(fd = open("f", O_RDONLY | O_CLOEXEC));
	tv[0] = (struct timespec){.tv_sec = T_X, .tv_nsec = T_X_NS};
	tv[1] = (struct timespec){.tv_sec = T_M, .tv_nsec = T_M_NS};
	OK(futimens(fd, tv));
	OK(close(fd));
	TIMES("f", NS(T_X, T_X_NS), NS(T_M, T_M_NS));
	OK(mkdir("d", 0755));
	OK(set_known_times("d"));
	TIMES("d", NS(T_A, T_A_NS), NS(T_M, T_M_NS));
	ERR(ENOENT, utimensat(AT_FDCWD, "missing", NULL, 0));
	CONTENT("f", "x", 1);
	return 0;
}

/* a write moves mtime to now */
static int c_write_mtime(void)
{
	struct stat st;
	int64_t t0;
	int fd;

	OK(put("f", "x"));
	OK(set_known_times("f"));
	t0 = now_ns();
	OK(fd = open("f", O_WRONLY | O_CLOEXEC));
	OK(pwrite_str(fd, "y", 1));
	OK(close(fd));
	OK(lstat("f", &st));
	if (ts_ns(st.st_mtim) < t0 - 2000000000LL)
		FAIL("expected mtime now got %lld (after a write",
		     (long long)ts_ns(st.st_mtim));
	OK(set_known_times("f"));
	t0 = now_ns();
	OK(truncate("f", 1));
	OK(lstat("f", &st));
	if (ts_ns(st.st_mtim) < t0 - 2000000000LL)
		FAIL("expected mtime now got %lld (after a truncate",
		     (long long)ts_ns(st.st_mtim));
	CONTENT("f", "x", 1);
	return 0;
}

/* symlink and readlink */
static int c_symlink(void)
{
	char buf[PATH_MAX];
	ssize_t n;

	OK(put("target", "through the link"));
	OK(symlink("target", "l"));
	KIND("l", S_IFLNK);
	EQ("size of l", 6, size_of("l"));
	OK(n = readlink("l", buf, sizeof(buf)));
	if (n != 6 || memcmp(buf, "target", 6) != 0)
		FAIL("expected \"target\" got %s (readlink l",
		     shown(0, buf, (size_t)n));
	CONTENT("l", "through the link", 16);
	/* a dangling one, and one with a path */
	OK(symlink("../nowhere/x", "dangling"));
	OK(n = readlink("dangling", buf, sizeof(buf)));
	EQ("readlink dangling length", 12, n);
	ERR(ENOENT, open_close("dangling", O_RDONLY));
	ERR(EEXIST, symlink("other", "l"));
	ERR(EEXIST, symlink("other", "target"));
	ERR(EINVAL, readlink("target", buf, sizeof(buf)));
	ERR(ENOENT, readlink("missing", buf, sizeof(buf)));
	/* a link to a directory resolves */
	OK(mkdir("d", 0755));
	OK(put("d/in", "in d"));
	OK(symlink("d", "dl"));
	CONTENT("dl/in", "in d", 4);
	return 0;
}

/* fsync and fdatasync of files and of a directory */
static int c_fsync(void)
{
	int fd;

	OK(fd = open("f", O_RDWR | O_CREAT | O_CLOEXEC, 0666));
	OK(write_str(fd, "synced"));
	OK(fsync(fd));
	OK(pwrite_str(fd, "!", 6));
	OK(fdatasync(fd));
	OK(fsync(fd)); /* nothing new: still fine */
	OK(close(fd));
	CONTENT("f", "synced!", 7);
	OK(fd = open("f", O_RDONLY | O_CLOEXEC));
	OK(fsync(fd));
	OK(fdatasync(fd));
	OK(close(fd));
	OK(fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	OK(fsync(fd));
	OK(close(fd));
	return 0;
}

/* statvfs */
static int c_statfs(void)
{
	struct statvfs sv;
	int fd;

	OK(statvfs(".", &sv));
	if (sv.f_bsize == 0 || sv.f_blocks < sv.f_bfree ||
	    sv.f_bfree < sv.f_bavail)
		FAIL("expected sane statvfs got bsize %lu blocks %llu bfree "
		     "%llu bavail %llu (statvfs .",
		     (unsigned long)sv.f_bsize, (unsigned long long)sv.f_blocks,
		     (unsigned long long)sv.f_bfree,
		     (unsigned long long)sv.f_bavail);
	if (sv.f_namemax < 255)
		FAIL("expected f_namemax >= 255 got %lu (statvfs .",
		     (unsigned long)sv.f_namemax);
	OK(put("f", "x"));
	OK(fd = open("f", O_RDONLY | O_CLOEXEC));
	OK(fstatvfs(fd, &sv));
	OK(close(fd));
	ERR(ENOENT, statvfs("missing", &sv));
	return 0;
}

/* hard links: POSIX semantics, or refused with EPERM (vsync's synced
 * paths); either way EEXIST and ENOENT come first */
static int c_link(void)
{
	struct stat sa, sb;
	int fd;

	OK(put("a", "shared"));
	OK(put("b", "other"));
	ERR(EEXIST, link("a", "b"));
	ERR(ENOENT, link("missing", "c"));
	if (link("a", "c") < 0) {
		if (errno != EPERM)
			FAIL("expected success or EPERM got %s (link a c",
			     errname(errno));
		ABSENT("c");
		pc_note = "refused: EPERM";
		return 0;
	}
	OK(lstat("a", &sa));
	OK(lstat("c", &sb));
	EQ("st_nlink of a", 2, sa.st_nlink);
	EQ("st_ino of c", sa.st_ino, sb.st_ino);
	OK(fd = open("c", O_WRONLY | O_APPEND | O_CLOEXEC));
	OK(write_str(fd, "+"));
	OK(close(fd));
	CONTENT("a", "shared+", 7);
	/* either name goes, the other stays */
	OK(unlink("c"));
	OK(lstat("a", &sa));
	EQ("st_nlink of a", 1, sa.st_nlink);
	CONTENT("a", "shared+", 7);
	OK(link("a", "c"));
	OK(unlink("a"));
	CONTENT("c", "shared+", 7);
	OK(mkdir("d", 0755));
	ERR(EPERM, link("d", "d2"));
	return 0;
}

/* names of 256 bytes are ENAMETOOLONG; 255 bytes are fine */
static int c_name_max(void)
{
	char n255[256], n256[257], p[300];

	memset(n255, 'n', 255);
	n255[255] = '\0';
	memset(n256, 'n', 256);
	n256[256] = '\0';
	OK(put(n255, "longest"));
	CONTENT(n255, "longest", 7);
	ERR(ENAMETOOLONG, open_close(n256, O_WRONLY | O_CREAT));
	ERR(ENAMETOOLONG, open_close(n256, O_RDONLY));
	ERR(ENAMETOOLONG, mkdir(n256, 0755));
	ERR(ENAMETOOLONG, symlink("x", n256));
	ERR(ENAMETOOLONG, rename(n255, n256));
	ERR(ENAMETOOLONG, unlink(n256));
	ERR(ENAMETOOLONG, access(n256, F_OK));
	snprintf(p, sizeof(p), "d/%s", n256);
	OK(mkdir("d", 0755));
	ERR(ENAMETOOLONG, open_close(p, O_WRONLY | O_CREAT));
	CONTENT(n255, "longest", 7);
	return 0;
}

#define OWNER(path, uid, gid)                                                  \
	do {                                                                   \
		struct stat o_;                                                \
		OK(lstat(path, &o_));                                          \
		EQ("st_uid of " path, uid, o_.st_uid);                         \
		EQ("st_gid of " path, gid, o_.st_gid);                         \
	} while (0)

/* what a user that is not root may do to files it owns, and to others'
 * (run as uid 1234, groups 42 only; "g" is 1234:42, "h" root's) */
static int chown_as_user(void)
{
	OK(chmod("g", 0600));
	MODE("g", 0600);
	ERR(EPERM, chown("g", 1235, (gid_t)-1));
	ERR(EPERM, chown("g", (uid_t)-1, 5678)); /* not in that group */
	OK(chown("g", (uid_t)-1, 42));		 /* its own group */
	OK(chown("g", 1234, (gid_t)-1));	 /* to itself: a no-op */
	ERR(EPERM, chmod("h", 0600));
	ERR(EPERM, chown("h", 1234, (gid_t)-1));
	ERR(EPERM, chown("h", (uid_t)-1, 42));
	return 0;
}

/*
 * chown, lchown and fchown as on a local disk: root gives files away; the
 * owner survives chmod, a rename and a save in place; a non-root owner
 * changes the mode and its group, and nothing of other users' (checked in
 * a child as uid 1234 where that user reaches the directory: a FUSE mount
 * without allow_other keeps other users out). Leaves g (1234:42; 0640,
 * or 0600 where the other user got in),
 * d (3456:3456) and l (2345:6789) for test_posix.sh to check after a
 * remount.
 */
static int c_chown(void)
{
	int fd, pfd[2], status;
	pid_t pid;
	ssize_t n;

	OK(put("f", "x"));
	OK(symlink("f", "l"));
	OK(mkdir("d", 0755));
	if (geteuid() != 0) {
		ERR(EPERM, chown("f", getuid() + 1, (gid_t)-1));
		pc_note = "not root: giving away not tried";
		return 0;
	}
	OK(chown("f", 1234, 5678));
	OWNER("f", 1234, 5678);
	OK(lchown("l", 2345, 6789));
	OWNER("l", 2345, 6789);
	OWNER("f", 1234, 5678);
	OK(chown("d", 3456, 3456));
	OWNER("d", 3456, 3456);
	/* a setgid directory gives its group, and to a directory its bit */
	OK(chmod("d", 02755));
	OK(mkdir("d/sub", 0755));
	OK(put("d/f", "x"));
	OWNER("d/sub", 0, 3456);
	MODE("d/sub", 02755);
	OWNER("d/f", 0, 3456);
	MODE("d/f", 0644);
	OK(chmod("d", 0755));
	OK(fd = open("f", O_RDONLY | O_CLOEXEC));
	OK(fchown(fd, (uid_t)-1, 42));
	OK(close(fd));
	OWNER("f", 1234, 42);
	OK(chown("f", (uid_t)-1, (gid_t)-1));
	OWNER("f", 1234, 42);
	OK(chmod("f", 0640));
	MODE("f", 0640);
	OWNER("f", 1234, 42);
	OK(rename("f", "g"));
	OWNER("g", 1234, 42);
	OK(put("g", "saved in place"));
	OWNER("g", 1234, 42);
	/* a chown clears a file's set-user-ID bit, even root's */
	OK(put("s", "#!/bin/sh\n"));
	OK(chmod("s", 04755));
	OK(chown("s", 1234, (gid_t)-1));
	MODE("s", 0755);
	OWNER("s", 1234, 0);
	OK(put("h", "root's"));
	OWNER("h", 0, 0);
	OK(chmod(".", 0755));
	OK(pipe(pfd));
	OK(pid = fork());
	if (pid == 0) {
		struct stat st;
		gid_t g = 42;
		int r = -1;

		close(pfd[0]);
		if (setgroups(1, &g) < 0 || setresgid(42, 42, 42) < 0 ||
		    setresuid(1234, 1234, 1234) < 0)
			pc_fail(__LINE__, "expected success got %s (setresuid",
				errname(errno));
		else if (lstat("g", &st) < 0 && errno == EACCES)
			_exit(77);
		else
			r = chown_as_user();
		if (r < 0 && write(pfd[1], pc_why, strlen(pc_why)) < 0)
			_exit(2);
		_exit(r < 0 ? 1 : 0);
	}
	close(pfd[1]);
	n = read(pfd[0], pc_why, sizeof(pc_why) - 1);
	close(pfd[0]);
	pc_why[n > 0 ? n : 0] = '\0';
	OK(waitpid(pid, &status, 0));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		pc_note = "other users do not reach this directory";
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1; /* pc_why from the child */
	OWNER("h", 0, 0);
	return 0;
}

/* Is @name listed in "." with d_type @type (or DT_UNKNOWN)? */
static bool listed(const char *name, unsigned char type)
{
	struct dirent *de;
	bool found = false;
	DIR *dp = opendir(".");

	while (dp && !found && (de = readdir(dp)))
		found = strcmp(de->d_name, name) == 0 &&
			(de->d_type == type || de->d_type == DT_UNKNOWN);
	if (dp)
		closedir(dp);
	return found;
}

#define LISTED(name, type)                                                     \
	do {                                                                   \
		if (!listed(name, type))                                       \
			FAIL("expected %s listed as %s got nothing (readdir",  \
			     name, #type);                                     \
	} while (0)

/*
 * FIFOs, unix sockets and device nodes as on a local disk (vsync keeps
 * them local to the mount on synced paths): made, listed, used, renamed
 * (also over a file, and a file over them), counted by rmdir, moved with
 * their directory, hard-linked, removed. Leaves the FIFO "keep" and the regular
 * file "p2" (test_posix.sh checks both after a remount, and that PostgreSQL has
 * only the file).
 */
static int c_special(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[8];
	int fd, s, c, a;

	OK(mkfifo("p", 0640));
	KIND("p", S_IFIFO);
	MODE("p", 0640);
	ERR(EEXIST, mkfifo("p", 0644));
	ERR(EEXIST, open_close("p", O_WRONLY | O_CREAT | O_EXCL));
	ERR(EEXIST, mkdir("p", 0755));
	ERR(EEXIST, symlink("x", "p"));
	OK(fd = open("p", O_RDWR | O_NONBLOCK | O_CLOEXEC));
	OK(write_str(fd, "hi"));
	EQ("bytes read from the FIFO", 2, read(fd, buf, sizeof(buf)));
	OK(close(fd));
	OK(mknod("q", S_IFIFO | 0600, 0));
	KIND("q", S_IFIFO);
	/* a unix socket: bind, connect, a byte each way */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "s");
	OK(s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	OK(bind(s, (struct sockaddr *)&sa, sizeof(sa)));
	OK(listen(s, 1));
	KIND("s", S_IFSOCK);
	OK(c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	OK(connect(c, (struct sockaddr *)&sa, sizeof(sa)));
	OK(a = accept(s, NULL, NULL));
	OK(write_str(c, "!"));
	EQ("bytes through the socket", 1, read(a, buf, 1));
	close(a);
	close(c);
	close(s);
	ERR(EADDRINUSE, (s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0),
			 bind(s, (struct sockaddr *)&sa, sizeof(sa))));
	close(s);
	/* a device node (a container may forbid making one) */
	if (mknod("null", S_IFCHR | 0644, makedev(1, 3)) == 0) {
		struct stat st;

		OK(lstat("null", &st));
		EQ("st_rdev of null", makedev(1, 3), st.st_rdev);
		KIND("null", S_IFCHR);
		LISTED("null", DT_CHR);
		OK(unlink("null"));
	} else if (errno == EPERM) {
		pc_note = "device nodes not permitted here";
	} else {
		FAIL("expected success or EPERM got %s (mknod null",
		     errname(errno));
	}
	LISTED("p", DT_FIFO);
	LISTED("q", DT_FIFO);
	LISTED("s", DT_SOCK);
	/* renames */
	OK(rename("p", "p2"));
	KIND("p2", S_IFIFO);
	ABSENT("p");
	OK(put("f", "file"));
	OK(rename("q", "f")); /* a FIFO over a file */
	KIND("f", S_IFIFO);
	OK(put("g", "regular"));
	OK(rename("g", "p2")); /* a file over a FIFO */
	KIND("p2", S_IFREG);
	CONTENT("p2", "regular", 7);
	OK(unlink("f"));
	OK(unlink("s"));
	ABSENT("f");
	ABSENT("s");
	/* directories */
	OK(mkdir("d", 0755));
	OK(mkfifo("d/p", 0644));
	ERR(ENOTEMPTY, rmdir("d"));
	OK(mkdir("e", 0755));
	ERR2(ENOTEMPTY, EEXIST, rename("e", "d"));
	OK(rename("d", "d2"));
	KIND("d2/p", S_IFIFO);
	ABSENT("d/p");
	OK(unlink("d2/p"));
	OK(rmdir("d2"));
	OK(rmdir("e"));
	OK(mkfifo("keep", 0600));
	/* a hard link of a FIFO (kept local with it) */
	OK(link("keep", "keep2"));
	KIND("keep2", S_IFIFO);
	{
		struct stat st;

		OK(lstat("keep", &st));
		EQ("st_nlink of a linked FIFO", 2, st.st_nlink);
	}
	OK(unlink("keep2"));
	return 0;
}

/*
 * Long names and paths: 15 levels of 243-byte names and a 255-byte file
 * at the bottom (a 3,915-byte path), written, fsync'd, read, listed,
 * renamed; a 4,096-byte path argument is ENAMETOOLONG (PATH_MAX counts
 * the NUL). Leaves the deep file for test_posix.sh to compare with
 * PostgreSQL.
 */
static int c_long_path(void)
{
	static char path[PATH_MAX + 16], to[PATH_MAX + 16];
	char name[256], file[256];
	size_t len = 0;
	int fd;

	for (int level = 0; level < 15; level++) {
		memset(name, 'a' + level, 243);
		name[243] = '\0';
		len += (size_t)snprintf(path + len, sizeof(path) - len, "%s%s",
					len ? "/" : "", name);
		OK(mkdir(path, 0755));
	}
	memset(file, 'f', 255);
	file[255] = '\0';
	snprintf(path + len, sizeof(path) - len, "/%s", file);
	EQ("length of the deep path", 3915, strlen(path));
	OK(fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
	OK(write_str(fd, "deep"));
	OK(fsync(fd));
	OK(close(fd));
	CONTENT(path, "deep", 4);
	memcpy(to, path, len + 1);
	memset(file, 'g', 255);
	snprintf(to + len, sizeof(to) - len, "/%s", file);
	OK(rename(path, to));
	ABSENT(path);
	CONTENT(to, "deep", 4);
	OK(put_fsync(path, "deeper"));
	CONTENT(path, "deeper", 6);
	OK(unlink(to));
	/* the kernel's limit: 4095 bytes and the NUL */
	memset(to, 'x', PATH_MAX);
	for (size_t i = 200; i < PATH_MAX; i += 200)
		to[i] = '/';
	to[PATH_MAX] = '\0';
	ERR(ENAMETOOLONG, open_close(to, O_RDONLY));
	ERR(ENAMETOOLONG, mkdir(to, 0755));
	return 0;
}

/*
 * The longest absolute path: directories made one at a time (relative to
 * a descriptor) until a file's absolute path is exactly 4,095 bytes; it
 * opens by that path, one byte more is ENAMETOOLONG, and a walk by
 * descriptors goes on below it. Leaves the files for test_posix.sh to
 * compare with PostgreSQL.
 */
static int c_path_max(void)
{
	static char abs[PATH_MAX + 16];
	char name[256];
	size_t len, left;
	int dfd, nfd, fd;

	if (!getcwd(abs, sizeof(abs)))
		FAIL("expected success got %s (getcwd", errname(errno));
	len = strlen(abs);
	OK(dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	for (int level = 0; (left = PATH_MAX - 1 - len - 1) > 255; level++) {
		memset(name, 'a' + level % 26, 200);
		name[200] = '\0';
		if (mkdirat(dfd, name, 0755) < 0 ||
		    (nfd = openat(dfd, name,
				  O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			close(dfd);
			FAIL("expected success got %s (mkdirat at %zu bytes",
			     errname(errno), len);
		}
		close(dfd);
		dfd = nfd;
		len +=
		    (size_t)snprintf(abs + len, sizeof(abs) - len, "/%s", name);
	}
	memset(name, 'z', left);
	name[left] = '\0';
	snprintf(abs + len, sizeof(abs) - len, "/%s", name);
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write_str(fd, "max") < 0 || fsync(fd) < 0) {
		int e = errno;

		close(dfd);
		FAIL("expected success got %s (create of a %zu-byte name at "
		     "%zu bytes",
		     errname(e), left, len);
	}
	close(fd);
	EQ("length of the absolute path", PATH_MAX - 1, strlen(abs));
	CONTENT(abs, "max", 3);
	snprintf(abs + strlen(abs), sizeof(abs) - strlen(abs), "x");
	ERR(ENAMETOOLONG, open_close(abs, O_RDONLY));
	/* deeper, by descriptors */
	if (mkdirat(dfd, "deeper", 0755) < 0 ||
	    (nfd = openat(dfd, "deeper", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) <
		0) {
		close(dfd);
		FAIL("expected success got %s (mkdirat deeper", errname(errno));
	}
	close(dfd);
	fd = openat(nfd, "z", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write_str(fd, "past PATH_MAX") < 0 || fsync(fd) < 0) {
		int e = errno;

		close(nfd);
		FAIL("expected success got %s (openat deeper/z", errname(e));
	}
	close(fd);
	close(nfd);
	return 0;
}

/* paths through a file, and a directory opened for writing */
static int c_notdir_isdir(void)
{
	char buf[4];
	struct stat st;
	int fd;

	OK(put("f", "x"));
	OK(mkdir("d", 0755));
	ERR(ENOTDIR, lstat("f/x", &st));
	ERR(ENOTDIR, open_close("f/x", O_RDONLY));
	ERR(ENOTDIR, open_close("f/x", O_WRONLY | O_CREAT));
	ERR(ENOTDIR, open_close("f", O_RDONLY | O_DIRECTORY));
	ERR(EISDIR, open_close("d", O_WRONLY));
	ERR(EISDIR, open_close("d", O_RDWR));
	ERR(EISDIR, open_close("d", O_WRONLY | O_CREAT));
	ERR(EISDIR, open_close("d", O_RDONLY | O_TRUNC));
	OK(fd = open("d", O_RDONLY | O_CLOEXEC));
	ERR(EISDIR, read(fd, buf, sizeof(buf)));
	OK(close(fd));
	return 0;
}

/* readdir lists exactly what is there, with the right types */
static int c_readdir(void)
{
	static const struct {
		const char *name;
		unsigned char type;
	} want[] = {{".", DT_DIR},   {"..", DT_DIR}, {"a", DT_REG},
		    {"b", DT_REG},   {"d", DT_DIR},  {"l", DT_LNK},
		    {"gone", 0}, /* removed before listing */};
	bool seen[sizeof(want) / sizeof(want[0])] = {false};
	struct dirent *de;
	DIR *dp;
	size_t i;

	OK(put("a", "a"));
	OK(put("b", "b"));
	OK(put("gone", "g"));
	OK(mkdir("d", 0755));
	OK(symlink("a", "l"));
	OK(unlink("gone"));
	dp = opendir(".");
	if (!dp)
		FAIL("expected success got %s (opendir .", errname(errno));
	while ((de = readdir(dp))) {
		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (strcmp(de->d_name, want[i].name) == 0)
				break;
		if (i == sizeof(want) / sizeof(want[0]) || !want[i].type ||
		    seen[i]) {
			closedir(dp);
			FAIL("expected a, b, d, l once got entry \"%s\" "
			     "(readdir",
			     de->d_name);
		}
		seen[i] = true;
		if (de->d_type != DT_UNKNOWN && de->d_type != want[i].type) {
			closedir(dp);
			FAIL("expected d_type %d got %d (readdir %s",
			     want[i].type, de->d_type, want[i].name);
		}
	}
	closedir(dp);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (want[i].type && !seen[i])
			FAIL("expected entry %s got nothing (readdir",
			     want[i].name);
	return 0;
}

/* an editor's atomic save: write a temp file, fsync, rename over */
static int c_save_atomic(void)
{
	int fd, old;

	OK(put("file.txt", "version 1\n"));
	OK(old = open("file.txt", O_RDONLY | O_CLOEXEC));
	OK(fd = open(".file.txt.tmp", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		     0644));
	OK(write_str(fd, "version 2\n"));
	OK(fsync(fd));
	OK(close(fd));
	OK(rename(".file.txt.tmp", "file.txt"));
	ABSENT(".file.txt.tmp");
	CONTENT("file.txt", "version 2\n", 10);
	FD_CONTENT(old, "version 1\n", 10);
	OK(close(old));
	/* the directory is fsync'ed too, as careful editors do */
	OK(fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	OK(fsync(fd));
	OK(close(fd));
	/* and a second save the same way */
	OK(put(".file.txt.tmp", "version 3\n"));
	OK(rename(".file.txt.tmp", "file.txt"));
	CONTENT("file.txt", "version 3\n", 10);
	return 0;
}

/* vim's save: rename the original to a backup~, write a new file, fsync,
 * unlink the backup */
static int c_save_vim(void)
{
	int fd;

	OK(put("main.c", "int main;\n"));
	OK(chmod("main.c", 0600));
	OK(rename("main.c", "main.c~"));
	ABSENT("main.c");
	OK(fd = open("main.c", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	OK(write_str(fd, "int main(void);\n"));
	OK(fsync(fd));
	OK(close(fd));
	OK(chmod("main.c", 0600)); /* the original's mode, as vim does */
	OK(unlink("main.c~"));
	ABSENT("main.c~");
	CONTENT("main.c", "int main(void);\n", 16);
	MODE("main.c", 0600);
	return 0;
}

/* write in place: O_TRUNC on the existing file, write, close */
static int c_save_inplace(void)
{
	struct stat st0, st1;
	int fd;

	OK(put("notes.md", "a long first version\n"));
	OK(lstat("notes.md", &st0));
	OK(fd = open("notes.md", O_WRONLY | O_TRUNC | O_CLOEXEC));
	EQ("size after O_TRUNC", 0, size_of("notes.md"));
	OK(write_str(fd, "short\n"));
	OK(close(fd));
	CONTENT("notes.md", "short\n", 6);
	OK(lstat("notes.md", &st1));
	EQ("st_ino after writing in place", st0.st_ino, st1.st_ino);
	/* O_TRUNC and nothing written: an empty file */
	OK(open_close("notes.md", O_WRONLY | O_TRUNC));
	EQ("size after O_TRUNC", 0, size_of("notes.md"));
	OK(put("notes.md", "final\n"));
	CONTENT("notes.md", "final\n", 6);
	return 0;
}

/* ------------------------------------------------------- named only */

/*
 * The cases below run only when named (test_posix.sh runs them on the
 * plain and the local-only directories; synced paths do not take long
 * paths and special files yet).
 */

#define LP_LEVELS 15 /* 255-byte names: 15 levels are 3,840 bytes */

/* The relative path of @levels 255-byte directory names (each one "L" and
 * its level in hex, then 'l's), then "/@leaf" if @leaf; in @buf. */
static const char *long_path(char *buf, size_t size, char top, int levels,
			     const char *leaf)
{
	size_t o = 0;

	for (int i = 0; i < levels && o + 257 < size; i++) {
		if (i)
			buf[o++] = '/';
		memset(buf + o, 'l', 255);
		buf[o] = i ? 'L' : top;
		buf[o + 1] = "0123456789abcdef"[i & 15];
		o += 255;
	}
	buf[o] = '\0';
	if (leaf)
		snprintf(buf + o, size - o, "%s%s", o ? "/" : "", leaf);
	return buf;
}

/* @dir/@leaf in @buf (PATH_MAX bytes; "" if longer) */
static const char *join(char *buf, const char *dir, const char *leaf)
{
	size_t d = strlen(dir), l = strlen(leaf);

	buf[0] = '\0';
	if (d + 1 + l < PATH_MAX) {
		memcpy(buf, dir, d);
		buf[d] = '/';
		memcpy(buf + d + 1, leaf, l + 1);
	}
	return buf;
}

/*
 * 255-byte names at every level and a path of about 4,000 bytes: made,
 * written, read, listed, linked and renamed through the whole path; the
 * top directory renamed (every path below it changes); then below that,
 * past PATH_MAX, with *at() calls from a descriptor, as on a disk. All
 * removed at the end.
 */
static int c_long_path_at(void)
{
	static char p[PATH_MAX], q[PATH_MAX], top[PATH_MAX];
	char name[256], shortname[121];
	struct dirent *de;
	struct stat st;
	int dfd, fd, deep = -1, found = 0;
	DIR *dir;

	memset(name, 'n', 255);
	name[255] = '\0';
	memset(shortname, 's', 120);
	shortname[120] = '\0';
	for (int i = 1; i <= LP_LEVELS; i++)
		OK(mkdir(long_path(p, sizeof(p), 'A', i, NULL), 0755));
	/* one more level of 120 bytes: 3,960 bytes, and the file's 3,962 */
	OK(mkdir(long_path(p, sizeof(p), 'A', LP_LEVELS, shortname), 0755));
	join(q, p, "f");
	EQ("length of the deep file's path", 3962, strlen(q));
	OK(put(q, "deep"));
	CONTENT(q, "deep", 4);
	OK(lstat(q, &st));
	EQ("size of the deep file", 4, st.st_size);
	join(q, long_path(top, sizeof(top), 'A', 2, NULL), name);
	OK(put(q, "a 255-byte name"));
	CONTENT(q, "a 255-byte name", 15);
	OK(unlink(q));

	/* rename, link, symlink and readdir at the bottom */
	join(q, p, "f");
	join(top, p, "g");
	OK(rename(q, top));
	ABSENT(q);
	CONTENT(top, "deep", 4);
	OK(link(top, q));
	join(top, p, "link");
	OK(symlink("g", top));
	CONTENT(top, "deep", 4);
	if (!(dir = opendir(p)))
		FAIL("expected success got %s (opendir of the deep dir",
		     errname(errno));
	while ((de = readdir(dir)))
		found += !strcmp(de->d_name, "f") || !strcmp(de->d_name, "g") ||
			 !strcmp(de->d_name, "link");
	closedir(dir);
	EQ("entries f, g and link listed in the deep dir", 3, found);

	/* the top renamed: every path below changes */
	OK(rename(long_path(q, sizeof(q), 'A', 1, NULL),
		  long_path(top, sizeof(top), 'B', 1, NULL)));
	p[0] = 'B';
	join(q, p, "g");
	CONTENT(q, "deep", 4);
	p[0] = 'A';
	join(q, p, "g");
	ABSENT(q);
	p[0] = 'B';

	/* past PATH_MAX: 8 more levels from a descriptor (about 6,000
	 * bytes from here) */
	OK(deep = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	dfd = dup(deep);
	for (int i = 0; i < 8; i++) {
		int next;

		OK(mkdirat(dfd, name, 0755));
		OK(next =
		       openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		close(dfd);
		dfd = next;
	}
	OK(fd = openat(dfd, "far", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		       0644));
	OK(write_str(fd, "far away"));
	OK(close(fd));
	OK(fstatat(dfd, "far", &st, AT_SYMLINK_NOFOLLOW));
	EQ("size of the far file", 8, st.st_size);
	OK(fd = openat(dfd, "far", O_RDONLY | O_CLOEXEC));
	FD_CONTENT(fd, "far away", 8);
	OK(close(fd));
	OK(renameat(dfd, "far", dfd, "far2"));
	OK(unlinkat(dfd, "far2", 0));
	close(dfd);
	/* remove the 8 levels from the bottom up */
	for (int i = 8; i > 0; i--) {
		OK(dfd = dup(deep));
		for (int k = 0; k < i - 1; k++) {
			int next;

			OK(next = openat(dfd, name,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC));
			close(dfd);
			dfd = next;
		}
		OK(unlinkat(dfd, name, AT_REMOVEDIR));
		close(dfd);
	}
	close(deep);

	/* and the rest, bottom up through the whole paths */
	join(q, p, "g");
	OK(unlink(q));
	join(q, p, "f");
	OK(unlink(q));
	join(q, p, "link");
	OK(unlink(q));
	OK(rmdir(p));
	for (int i = LP_LEVELS; i >= 1; i--)
		OK(rmdir(long_path(p, sizeof(p), 'B', i, NULL)));
	ABSENT(long_path(p, sizeof(p), 'B', 1, NULL));
	return 0;
}

/* FIFOs made by mkfifo and mknod: kind, mode, data through them, rename
 * and unlink */
static int c_fifo(void)
{
	char buf[16];
	int rfd, wfd;

	OK(mkfifo("p", 0640));
	KIND("p", S_IFIFO);
	MODE("p", 0640);
	ERR(EEXIST, mkfifo("p", 0640));
	OK(rfd = open("p", O_RDONLY | O_NONBLOCK | O_CLOEXEC));
	OK(wfd = open("p", O_WRONLY | O_NONBLOCK | O_CLOEXEC));
	OK(write_str(wfd, "through"));
	EQ("bytes read from the FIFO", 7, read(rfd, buf, sizeof(buf)));
	if (memcmp(buf, "through", 7) != 0)
		FAIL("expected \"through\" got %s (read of the FIFO",
		     shown(0, buf, 7));
	OK(close(wfd));
	OK(close(rfd));
	OK(mknod("q", S_IFIFO | 0600, 0));
	KIND("q", S_IFIFO);
	MODE("q", 0600);
	OK(rename("p", "p2"));
	ABSENT("p");
	KIND("p2", S_IFIFO);
	OK(unlink("p2"));
	OK(unlink("q"));
	ABSENT("q");
	return 0;
}

/* bind/listen/connect: 0 or -1 with errno */
static int sock_at(const char *path, bool listening, int *out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r, e;

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (listening)
		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
			    listen(fd, 4) < 0
			? -1
			: 0;
	else
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*out = fd;
	return 0;
}

/* a unix socket bound here: kind, connect and talk, EADDRINUSE, connect
 * after a rename of the socket file, ENOENT once unlinked */
static int c_socket(void)
{
	int lfd, cfd, afd, other;
	char buf[8];

	OK(sock_at("sock", true, &lfd));
	KIND("sock", S_IFSOCK);
	ERR(EADDRINUSE, sock_at("sock", true, &other));
	OK(sock_at("sock", false, &cfd));
	OK(afd = accept(lfd, NULL, NULL));
	OK(write_str(cfd, "ping"));
	EQ("bytes received", 4, read(afd, buf, sizeof(buf)));
	OK(close(afd));
	OK(close(cfd));
	/* the socket file renamed: connecting through its new name */
	OK(rename("sock", "sock2"));
	OK(sock_at("sock2", false, &cfd));
	OK(afd = accept(lfd, NULL, NULL));
	OK(close(afd));
	OK(close(cfd));
	OK(unlink("sock2"));
	ERR(ENOENT, sock_at("sock2", false, &cfd));
	OK(close(lfd));
	return 0;
}

/* a character device (mknod as root; else skipped): kind, rdev; opened
 * unless the file system is mounted nodev (then EACCES, as any nodev
 * mount gives) */
static int c_mknod_dev(void)
{
	struct statvfs sv;
	struct stat st;
	int fd;

	if (mknod("null", S_IFCHR | 0666, makedev(1, 3)) < 0) {
		if (errno == EPERM && geteuid() != 0) {
			pc_note = "skipped: not root";
			return 0;
		}
		FAIL("expected success got %s (mknod null", errname(errno));
	}
	OK(lstat("null", &st));
	KIND("null", S_IFCHR);
	EQ("st_rdev of null", makedev(1, 3), st.st_rdev);
	OK(statvfs(".", &sv));
	if (sv.f_flag & ST_NODEV) {
		ERR(EACCES, open_close("null", O_WRONLY));
		pc_note = "nodev: open refused";
	} else {
		OK(fd = open("null", O_WRONLY | O_CLOEXEC));
		OK(write_str(fd, "gone"));
		OK(close(fd));
	}
	OK(rename("null", "null2"));
	KIND("null2", S_IFCHR);
	OK(unlink("null2"));
	return 0;
}

/* The bytes of c_mmap_shared's file (10000 of them), built the way the
 * case writes them, so the expectation is computed, not read back. */
#define MAP_LEN	 10000
#define MAP_OLD	 6000 /* written with write(2) first */
#define MAP_PAGE 4096

static void mmap_expected(char *buf, int stage)
{
	for (size_t i = 0; i < MAP_LEN; i++)
		buf[i] = i < MAP_OLD ? (char)('a' + i % 26) : '\0';
	memset(buf + 100, 'M', 100);		/* inside the first page */
	memset(buf + MAP_PAGE - 10, 'X', 20);	/* across a page boundary */
	for (size_t i = 9000; i < MAP_LEN; i++) /* in the grown part */
		buf[i] = (char)('0' + i % 10);
	if (stage > 1)
		memset(buf + 5000, 'C', 100); /* through a mapping whose fd
						 was closed */
	if (stage > 2)
		memset(buf + 200, 'U', 50); /* unmapped without msync */
}

/* Shared writable mmap: stores through MAP_SHARED, msync and fsync reach
 * the file as write(2) does - also in the part grown by ftruncate, across
 * a page boundary, through a mapping that outlives its descriptor, and
 * (without msync) unmapped and closed, then fsync'd through a new
 * descriptor; as seen by read(2) and by a fresh mapping after reopen. (On a
 * synced path fsync returns once PostgreSQL has the bytes:
 * test_posix.sh reads them back with vsyncctl cat right after.) */
static int c_mmap_shared(void)
{
	static char want[MAP_LEN], old[MAP_OLD];
	char *p;
	int fd;

	for (size_t i = 0; i < MAP_OLD; i++)
		old[i] = (char)('a' + i % 26);
	OK(fd = open("mapped.bin", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		     0644));
	EQ("write of the first 6000 bytes", MAP_OLD, write(fd, old, MAP_OLD));
	OK(ftruncate(fd, MAP_LEN));
	p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		FAIL("expected a mapping got %s (mmap MAP_SHARED",
		     errname(errno));
	if (memcmp(p, old, MAP_OLD) != 0) {
		munmap(p, MAP_LEN);
		FAIL("expected the written bytes got others (the mapping");
	}
	memset(p + 100, 'M', 100);
	memset(p + MAP_PAGE - 10, 'X', 20);
	for (size_t i = 9000; i < MAP_LEN; i++)
		p[i] = (char)('0' + i % 10);
	if (msync(p, MAP_LEN, MS_SYNC) < 0) {
		int e = errno;

		munmap(p, MAP_LEN);
		FAIL("expected success got %s (msync MS_SYNC", errname(e));
	}
	OK(munmap(p, MAP_LEN));
	OK(fsync(fd));
	mmap_expected(want, 1);
	FD_CONTENT(fd, want, MAP_LEN); /* read(2) on the same descriptor */
	OK(close(fd));
	CONTENT("mapped.bin", want, MAP_LEN);

	/* a mapping kept after its descriptor is closed, then fsync'd
	 * through a new one */
	OK(fd = open("mapped.bin", O_RDWR | O_CLOEXEC));
	p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		FAIL("expected a mapping got %s (mmap after reopen",
		     errname(errno));
	OK(close(fd));
	if (memcmp(p, want, MAP_LEN) != 0) {
		munmap(p, MAP_LEN);
		FAIL("expected the first round's bytes got others (a fresh "
		     "mapping after reopen");
	}
	memset(p + 5000, 'C', 100);
	if (msync(p, MAP_LEN, MS_SYNC) < 0) {
		int e = errno;

		munmap(p, MAP_LEN);
		FAIL("expected success got %s (msync with the fd closed",
		     errname(e));
	}
	OK(munmap(p, MAP_LEN));
	OK(fd = open("mapped.bin", O_RDONLY | O_CLOEXEC));
	OK(fsync(fd));
	mmap_expected(want, 2);
	FD_CONTENT(fd, want, MAP_LEN);
	OK(close(fd));

	/* no msync: munmap and close, then fsync on a new descriptor
	 * writes the dirty pages (fsync covers a file's mapped stores) */
	OK(fd = open("mapped.bin", O_RDWR | O_CLOEXEC));
	p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		FAIL("expected a mapping got %s (mmap, third round",
		     errname(errno));
	memset(p + 200, 'U', 50);
	OK(munmap(p, MAP_LEN));
	OK(close(fd));
	OK(fd = open("mapped.bin", O_RDONLY | O_CLOEXEC));
	OK(fsync(fd));
	mmap_expected(want, 3);
	FD_CONTENT(fd, want, MAP_LEN);
	OK(close(fd));
	EQ("size of mapped.bin", MAP_LEN, size_of("mapped.bin"));
	return 0;
}

struct pc_case {
	const char *name;
	int (*run)(void);
};

static const struct pc_case pc_cases[] = {
    {"create", c_create},
    {"create_excl", c_create_excl},
    {"write_offset", c_write_offset},
    {"pwrite_hole", c_pwrite_hole},
    {"append", c_append},
    {"truncate", c_truncate},
    {"ftruncate", c_ftruncate},
    {"unlink", c_unlink},
    {"unlink_open", c_unlink_open},
    {"mkdir", c_mkdir},
    {"rmdir", c_rmdir},
    {"rename_file", c_rename_file},
    {"rename_dir", c_rename_dir},
    {"rename_errors", c_rename_errors},
    {"chmod", c_chmod},
    {"utimens", c_utimens},
    {"write_mtime", c_write_mtime},
    {"symlink", c_symlink},
    {"fsync", c_fsync},
    {"statfs", c_statfs},
    {"link", c_link},
    {"name_max", c_name_max},
    {"long_path", c_long_path},
    {"path_max", c_path_max},
    {"chown", c_chown},
    {"special", c_special},
    {"notdir_isdir", c_notdir_isdir},
    {"readdir", c_readdir},
    {"save_atomic", c_save_atomic},
    {"save_vim", c_save_vim},
    {"save_inplace", c_save_inplace},
    {"mmap_shared", c_mmap_shared},
};

/* run only when named (see above c_long_path_at) */
static const struct pc_case pc_named_cases[] = {
    {"long_path_at", c_long_path_at},
    {"fifo", c_fifo},
    {"socket", c_socket},
    {"mknod_dev", c_mknod_dev},
};

#define PC_NCASES (sizeof(pc_cases) / sizeof(pc_cases[0]))
#define PC_NNAMED (sizeof(pc_named_cases) / sizeof(pc_named_cases[0]))

/* ---------------------------------------------------------------- cross */

static char x_a[PATH_MAX], x_b[PATH_MAX]; /* the case's dirs in A and B */

/* "@dir/@name" in a static buffer (@slot 0..3) */
static const char *at(int slot, const char *dir, const char *name)
{
	static char buf[4][PATH_MAX + 64];

	snprintf(buf[slot], sizeof(buf[slot]), "%s/%s", dir, name);
	return buf[slot];
}

/* files and directories do not move between A and B; both stay intact */
static int x_rename(void)
{
	OK(put(at(0, x_a, "f"), "in A"));
	OK(put(at(0, x_b, "g"), "in B"));
	OK(mkdir(at(0, x_a, "da"), 0755));
	OK(put(at(0, x_a, "da/f"), "deep A"));
	OK(mkdir(at(0, x_b, "db"), 0755));
	ERR(EXDEV, rename(at(0, x_a, "f"), at(1, x_b, "f")));
	ERR(EXDEV, rename(at(0, x_b, "g"), at(1, x_a, "g")));
	ERR(EXDEV, rename(at(0, x_a, "f"), at(1, x_b, "g")));
	ERR(EXDEV, rename(at(0, x_a, "da"), at(1, x_b, "da")));
	ERR(EXDEV, rename(at(0, x_b, "db"), at(1, x_a, "db")));
	CONTENT(at(0, x_a, "f"), "in A", 4);
	CONTENT(at(0, x_b, "g"), "in B", 4);
	CONTENT(at(0, x_a, "da/f"), "deep A", 6);
	KIND(at(0, x_b, "db"), S_IFDIR);
	ABSENT(at(0, x_b, "f"));
	ABSENT(at(0, x_a, "g"));
	ABSENT(at(0, x_b, "da"));
	ABSENT(at(0, x_a, "db"));
	return 0;
}

/* hard links between A and B: EXDEV (EPERM allowed) */
static int x_link(void)
{
	OK(put(at(0, x_a, "f"), "in A"));
	OK(put(at(0, x_b, "g"), "in B"));
	ERR(EXDEV, link(at(0, x_a, "f"), at(1, x_b, "f")));
	ERR(EXDEV, link(at(0, x_b, "g"), at(1, x_a, "g")));
	ABSENT(at(0, x_b, "f"));
	ABSENT(at(0, x_a, "g"));
	CONTENT(at(0, x_a, "f"), "in A", 4);
	CONTENT(at(0, x_b, "g"), "in B", 4);
	return 0;
}

static const struct pc_case x_cases[] = {
    {"xdev_rename", x_rename},
    {"xdev_link", x_link},
};

/* ---------------------------------------------------------------- main */

static int report(const char *name, int r)
{
	if (r == 0 && pc_note)
		printf("ok %s (%s)\n", name, pc_note);
	else if (r == 0)
		printf("ok %s\n", name);
	else
		printf("FAIL %s: %s\n", name, pc_why);
	fflush(stdout);
	return r;
}

/* Run @c in a fresh @root/@c->name. 0 or -1 (reported). */
static int run_case(int rootfd, const struct pc_case *c)
{
	int dfd, r;

	pc_why[0] = '\0';
	pc_note = NULL;
	if (mkdirat(rootfd, c->name, 0755) < 0 ||
	    (dfd = openat(rootfd, c->name,
			  O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		pc_fail(__LINE__, "expected a fresh directory got %s (mkdir %s",
			errname(errno), c->name);
		return report(c->name, -1);
	}
	if (fchdir(dfd) < 0) {
		pc_fail(__LINE__, "expected success got %s (chdir %s",
			errname(errno), c->name);
		close(dfd);
		return report(c->name, -1);
	}
	close(dfd);
	r = c->run();
	if (fchdir(rootfd) < 0) {
		perror("posix_conf: cannot return to DIR");
		exit(2);
	}
	return report(c->name, r);
}

static int run_cross(const char *a, const char *b)
{
	int failed = 0;

	for (size_t i = 0; i < sizeof(x_cases) / sizeof(x_cases[0]); i++) {
		const struct pc_case *c = &x_cases[i];
		int r;

		pc_why[0] = '\0';
		pc_note = NULL;
		snprintf(x_a, sizeof(x_a), "%s/%s", a, c->name);
		snprintf(x_b, sizeof(x_b), "%s/%s", b, c->name);
		if (mkdir(x_a, 0755) < 0 || mkdir(x_b, 0755) < 0)
			r = pc_fail(__LINE__,
				    "expected fresh directories got %s "
				    "(mkdir %s",
				    errname(errno), c->name);
		else
			r = c->run();
		failed |= report(c->name, r) < 0;
	}
	return failed;
}

static int usage(void)
{
	fprintf(stderr, "usage: posix_conf DIR [CASE...]\n"
			"       posix_conf -x DIR_A DIR_B\n"
			"       posix_conf -l\n");
	return 2;
}

int main(int argc, char **argv)
{
	int rootfd, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	umask(022);
	if (argc == 2 && strcmp(argv[1], "-l") == 0) {
		for (size_t i = 0; i < PC_NCASES; i++)
			printf("%s\n", pc_cases[i].name);
		for (size_t i = 0; i < PC_NNAMED; i++)
			printf("%s (only when named)\n",
			       pc_named_cases[i].name);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "-x") == 0)
		return run_cross(argv[2], argv[3]) ? 1 : 0;
	if (argc < 2 || argv[1][0] == '-')
		return usage();
	rootfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		fprintf(stderr, "posix_conf: cannot open '%s': %s\n", argv[1],
			strerror(errno));
		return 2;
	}
	for (size_t i = 0; i < PC_NCASES; i++) {
		bool wanted = argc == 2;

		for (int k = 2; k < argc && !wanted; k++)
			wanted = strcmp(argv[k], pc_cases[i].name) == 0;
		if (wanted)
			failed |= run_case(rootfd, &pc_cases[i]) < 0;
	}
	for (int k = 2; k < argc; k++) {
		size_t i;

		for (i = 0; i < PC_NCASES; i++)
			if (strcmp(argv[k], pc_cases[i].name) == 0)
				break;
		if (i < PC_NCASES)
			continue;
		for (i = 0; i < PC_NNAMED; i++)
			if (strcmp(argv[k], pc_named_cases[i].name) == 0)
				break;
		if (i < PC_NNAMED) {
			failed |= run_case(rootfd, &pc_named_cases[i]) < 0;
			continue;
		}
		fprintf(stderr, "posix_conf: no case '%s'\n", argv[k]);
		failed = 1;
	}
	close(rootfd);
	return failed ? 1 : 0;
}
