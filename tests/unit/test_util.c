/*
 * test_util.c - unit tests of sync/util.c (include/vsync/util.h).
 *
 * Covers:
 *  - VS_UUID_BUFSZ; vs_uuid_valid on a good UUID, uppercase, one character
 *    more or less, a missing dash, the empty string;
 *  - vs_parse_u64/i64/long and the _n forms: plain and octal/hex
 *    numbers, the type's limits, one past them (-ERANGE), bounds
 *    (-ERANGE), empty strings, signs, white space, trailing junk and bad
 *    bases (-EINVAL), *out untouched on failure, a length that stops
 *    before the NUL;
 *  - vs_backoff: every delay within [bound/2, bound] and never above
 *    max_ms, the bound doubling from min to max and staying there, reset;
 *    vs_backoff_jitter at its extremes; vs_jitter_rand never stuck at 0;
 *  - vs_opendirat: a directory opened and listed, ENOENT, ENOTDIR on a
 *    file and on a symlink with nofollow (as O_DIRECTORY|O_NOFOLLOW
 *    answers), the symlink followed without it;
 *  - vs_size_timeout_ms: the base alone for no bytes, one second per
 *    VS_MIN_RATE bytes, a negative base as 0, INT_MAX at the top;
 *  - vs_write_in_full / vs_read_in_full / vs_pread_in_full on a pipe and
 *    a temp file; vs_read_fd_whole on a pipe (larger than the pipe buffer,
 *    from a writer thread) and a file (from the current offset, NUL
 *    appended, -EFBIG just over the limit, exactly the limit accepted);
 *    vs_pread_fd_whole from offset 0 whatever the file offset; -EBADF on a
 *    closed descriptor, with *buf NULL;
 *  - vs_log_due (log.h): due the first time, not again at once, due once
 *    the interval has passed since the last, and then not again;
 *  - vs_open_regular: a character device node (/dev/null's numbers,
 *    mknod: as root, else skipped) refused (1) without being opened (no
 *    IN_OPEN on it), read-only and write-only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vsync/clock.h"
#include "vsync/log.h"
#include "vsync/util.h"

#include "unit_check.h"

/* ------------------------------------------------------------ uuid */

static void test_uuid(void **state)
{
	char buf[VS_UUID_BUFSZ];

	(void)state;
	check_int(37, (long long)sizeof(buf), "VS_UUID_BUFSZ");
	check_bool(true, vs_uuid_valid("0123abcd-ef01-4567-89ab-cdef01234567"),
		   "a lowercase uuid");
	check_bool(false, vs_uuid_valid("0123ABCD-ef01-4567-89ab-cdef01234567"),
		   "uppercase");
	check_bool(false,
		   vs_uuid_valid("0123abcd-ef01-4567-89ab-cdef012345678"),
		   "37 characters");
	check_bool(false, vs_uuid_valid("0123abcd-ef01-4567-89ab-cdef0123456"),
		   "35 characters");
	check_bool(false, vs_uuid_valid("0123abcdef01-4567-89ab-cdef012345678"),
		   "a dash missing");
	check_bool(false, vs_uuid_valid(""), "empty");
}

/* ------------------------------------------------------------ parsing */

/* Strings vs_parse_u64 refuses, and with what. */
static const struct parse_case {
	const char *s;
	int base;
	uint64_t min, max;
	int want;
} u64_bad[] = {
    {"18446744073709551616", 10, 0, UINT64_MAX, -ERANGE}, /* max + 1 */
    {"99999999999999999999999", 10, 0, UINT64_MAX, -ERANGE},
    {"-1", 10, 0, UINT64_MAX, -EINVAL},
    {"+1", 10, 0, UINT64_MAX, -EINVAL},
    {" 1", 10, 0, UINT64_MAX, -EINVAL},
    {"1 ", 10, 0, UINT64_MAX, -EINVAL},
    {"12x", 10, 0, UINT64_MAX, -EINVAL},
    {"", 10, 0, UINT64_MAX, -EINVAL},
    {"0x10", 16, 0, UINT64_MAX, -EINVAL},
    {"1", 1, 0, UINT64_MAX, -EINVAL},  /* bad base */
    {"1", 17, 0, UINT64_MAX, -EINVAL}, /* bad base */
    {"4", 10, 5, 10, -ERANGE},	       /* under min */
    {"11", 10, 5, 10, -ERANGE},	       /* over max */
    {"0648", 8, 0, 07777, -EINVAL},    /* 8 is not octal */
    {"10000", 8, 0, 07777, -ERANGE},
};

static void test_parse_u64(void **state)
{
	uint64_t v = 7;

	(void)state;
	check_ret(0, vs_parse_u64(&v, "0", 10, 0, UINT64_MAX), "u64 0");
	check_bool(true, v == 0, "u64 0 value");
	check_ret(0,
		  vs_parse_u64(&v, "18446744073709551615", 10, 0, UINT64_MAX),
		  "u64 max");
	check_bool(true, v == UINT64_MAX, "u64 max value");
	v = 7;
	for (size_t i = 0; i < sizeof(u64_bad) / sizeof(u64_bad[0]); i++) {
		const struct parse_case *c = &u64_bad[i];

		check_ret(
		    c->want, vs_parse_u64(&v, c->s, c->base, c->min, c->max),
		    "vs_parse_u64(\"%s\", base %d, %llu..%llu)", c->s, c->base,
		    (unsigned long long)c->min, (unsigned long long)c->max);
	}
	check_bool(true, v == 7, "u64 *out untouched on failure (got %llu)",
		   (unsigned long long)v);
	check_ret(0, vs_parse_u64(&v, "0644", 8, 0, 07777), "octal mode");
	check_bool(true, v == 0644, "octal value");
	check_ret(0, vs_parse_u64(&v, "fFfF", 16, 0, UINT64_MAX), "hex");
	check_bool(true, v == 0xffff, "hex value");
	check_ret(0, vs_parse_u64_n(&v, "12345", 3, 10, 0, UINT64_MAX),
		  "_n stops at len");
	check_bool(true, v == 123, "_n value");
	check_ret(-EINVAL, vs_parse_u64_n(&v, "123", 0, 10, 0, UINT64_MAX),
		  "_n empty");
}

static void test_parse_i64(void **state)
{
	int64_t v = 7;

	(void)state;
	check_ret(
	    0,
	    vs_parse_i64(&v, "9223372036854775807", 10, INT64_MIN, INT64_MAX),
	    "i64 max");
	check_bool(true, v == INT64_MAX, "i64 max value");
	check_ret(
	    0,
	    vs_parse_i64(&v, "-9223372036854775808", 10, INT64_MIN, INT64_MAX),
	    "i64 min");
	check_bool(true, v == INT64_MIN, "i64 min value");
	check_ret(
	    -ERANGE,
	    vs_parse_i64(&v, "9223372036854775808", 10, INT64_MIN, INT64_MAX),
	    "i64 max + 1");
	check_ret(
	    -ERANGE,
	    vs_parse_i64(&v, "-9223372036854775809", 10, INT64_MIN, INT64_MAX),
	    "i64 min - 1");
	check_ret(0, vs_parse_i64(&v, "-0", 10, 0, 10), "minus zero");
	check_int(0, v, "minus zero value");
	check_ret(-EINVAL, vs_parse_i64(&v, "-", 10, INT64_MIN, INT64_MAX),
		  "a lone minus");
	check_ret(-EINVAL, vs_parse_i64(&v, "--1", 10, INT64_MIN, INT64_MAX),
		  "two minus signs");
	check_ret(-ERANGE, vs_parse_i64(&v, "-1", 10, 0, INT64_MAX),
		  "negative under min 0");
	check_int(0, v, "i64 *out untouched on failure");
	check_ret(0, vs_parse_i64_n(&v, "-42,7", 3, 10, -100, 100),
		  "_n negative");
	check_int(-42, v, "_n negative value");
}

static void test_parse_long(void **state)
{
	long l = 3;

	(void)state;
	check_ret(0, vs_parse_long(&l, "2147483647", 10, 0, INT_MAX),
		  "long INT_MAX");
	check_int(INT_MAX, l, "long INT_MAX value");
	check_ret(-ERANGE, vs_parse_long(&l, "2147483648", 10, 0, INT_MAX),
		  "long INT_MAX + 1");
	check_int(INT_MAX, l, "long untouched on failure");
	check_ret(0, vs_parse_long(&l, "-5", 10, -10, 10), "long");
	check_int(-5, l, "long value");
	check_ret(0, vs_parse_long(&l, "755", 8, 0, 07777), "long octal");
	check_int(0755, l, "long octal value");
}

static void test_parse_size(void **state)
{
	uint64_t v = 7;

	(void)state;
	check_ret(0, vs_parse_size(&v, "0", UINT64_MAX), "size 0");
	check_int(0, v, "size 0 value");
	check_ret(0, vs_parse_size(&v, "123", UINT64_MAX), "size bytes");
	check_int(123, v, "size bytes value");
	check_ret(0, vs_parse_size(&v, "64K", UINT64_MAX), "size 64K");
	check_int(64 << 10, v, "size 64K value");
	check_ret(0, vs_parse_size(&v, "2m", UINT64_MAX), "size 2m");
	check_int(2 << 20, v, "size 2m value");
	check_ret(0, vs_parse_size(&v, "2GiB", UINT64_MAX), "size 2GiB");
	check_bool(true, v == (uint64_t)2 << 30, "size 2GiB value");
	check_ret(0, vs_parse_size(&v, "1TB", UINT64_MAX), "size 1TB");
	check_bool(true, v == (uint64_t)1 << 40, "size 1TB value");
	v = 7;
	check_ret(-EINVAL, vs_parse_size(&v, "", UINT64_MAX), "empty");
	check_ret(-EINVAL, vs_parse_size(&v, "K", UINT64_MAX), "no digits");
	check_ret(-EINVAL, vs_parse_size(&v, "-1", UINT64_MAX), "a sign");
	check_ret(-EINVAL, vs_parse_size(&v, " 1", UINT64_MAX), "space");
	check_ret(-EINVAL, vs_parse_size(&v, "1 K", UINT64_MAX), "inner space");
	check_ret(-EINVAL, vs_parse_size(&v, "1X", UINT64_MAX), "suffix X");
	check_ret(-EINVAL, vs_parse_size(&v, "1KB2", UINT64_MAX), "trailing");
	check_ret(-EINVAL, vs_parse_size(&v, "1Ki", UINT64_MAX), "half iB");
	check_ret(-ERANGE, vs_parse_size(&v, "16777216T", UINT64_MAX),
		  "overflow by the suffix");
	check_ret(-ERANGE,
		  vs_parse_size(&v, "99999999999999999999", UINT64_MAX),
		  "overflow by the digits");
	check_ret(-ERANGE, vs_parse_size(&v, "2K", 2047), "past max");
	check_ret(0, vs_parse_size(&v, "2K", 2048), "at max");
	check_int(2048, v, "at max value");
	v = 7;
	check_ret(-EINVAL, vs_parse_size(&v, "x", 10), "untouched");
	check_int(7, v, "untouched on failure");
}

/* ------------------------------------------------------------ backoff */

static void test_backoff_bounds(void **state)
{
	struct vs_backoff b;
	int bound = 100;

	(void)state;
	vs_backoff_init(&b, 100, 5000);
	for (int i = 0; i < 40; i++) {
		int d = vs_backoff_next(&b);

		if (d < bound / 2 || d > bound)
			fail_msg("step %d: delay %d outside [%d, %d]", i, d,
				 bound / 2, bound);
		bound = bound * 2 > 5000 ? 5000 : bound * 2;
	}
	check_int(5000, b.next_ms, "bound after many steps");
	vs_backoff_reset(&b);
	check_int(100, b.next_ms, "bound after reset");
	for (int i = 0; i < 1000; i++) {
		int d = vs_backoff_next(&b);

		if (d < 50 || d > 5000)
			fail_msg("delay %d outside [50, 5000]", d);
	}
}

static void test_backoff_jitter(void **state)
{
	uint64_t s = 0;
	bool lo = false, hi = false;

	(void)state;
	check_int(50, vs_backoff_jitter(100, 0), "jitter, rnd 0");
	check_int(100, vs_backoff_jitter(100, 50), "jitter, rnd 50");
	check_int(50, vs_backoff_jitter(100, 51), "jitter, rnd 51 wraps");
	check_int(0, vs_backoff_jitter(0, 12345), "jitter of 0");
	check_int(2, vs_backoff_jitter(3, 12345),
		  "jitter of 3: 1 + 12345 %% 2");
	for (int i = 0; i < 10000; i++) {
		int d = vs_backoff_jitter(100, vs_jitter_rand(&s));

		lo |= d == 50;
		hi |= d == 100;
	}
	check_bool(true, lo && hi, "jitter reaches both ends");
	check_bool(true, s != 0, "generator state never 0");
}

/* ------------------------------------------------------------ I/O */

struct writer {
	int fd;
	const char *buf;
	size_t len;
	int r;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	w->r = vs_write_in_full(w->fd, w->buf, w->len);
	close(w->fd);
	return NULL;
}

static void test_pipe_whole(void **state)
{
	size_t n = 1u << 20, len = 99;
	char *src = malloc(n), *got = NULL;
	struct writer w;
	pthread_t t;
	int p[2];

	(void)state;
	assert_non_null(src);
	for (size_t i = 0; i < n; i++)
		src[i] = (char)(i * 7 + 3);
	assert_int_equal(pipe(p), 0);
	w = (struct writer){.fd = p[1], .buf = src, .len = n};
	assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
	check_ret(0, vs_read_fd_whole(&got, &len, p[0], n), "1 MiB pipe");
	pthread_join(t, NULL);
	check_ret(0, w.r, "vs_write_in_full into the pipe");
	check_int((long long)n, (long long)len, "length read from the pipe");
	check_bool(true, got && memcmp(got, src, n) == 0 && got[n] == '\0',
		   "pipe bytes and NUL");
	free(got);
	close(p[0]);

	/* a pipe one byte over the limit */
	assert_int_equal(pipe(p), 0);
	w = (struct writer){.fd = p[1], .buf = src, .len = 1001};
	assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
	got = (char *)1;
	check_ret(-EFBIG, vs_read_fd_whole(&got, &len, p[0], 1000),
		  "pipe over the limit");
	check_ptr(NULL, got, "*buf after -EFBIG");
	close(p[0]); /* the writer may see EPIPE; SIGPIPE is ignored below */
	pthread_join(t, NULL);
	free(src);
}

static void test_file_whole(void **state)
{
	char path[] = "/tmp/vsync-test-util.XXXXXX", *got = NULL, c[4];
	size_t len = 0;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	check_ret(0, vs_write_in_full(fd, "hello world", 11), "write file");
	check_int(4, vs_pread_in_full(fd, c, 4, 0), "pread 4 at 0");
	check_bool(true, memcmp(c, "hell", 4) == 0, "pread bytes");
	check_int(2, vs_pread_in_full(fd, c, 4, 9), "pread past the end");
	check_ret(0, vs_pread_fd_whole(&got, &len, fd, 11), "pread whole");
	check_str("hello world", got, "pread whole bytes");
	free(got);
	check_ret(-EFBIG, vs_pread_fd_whole(&got, &len, fd, 10),
		  "pread whole, one over the limit");
	check_ptr(NULL, got, "*buf after -EFBIG");
	/* from the current offset */
	assert_int_equal(lseek(fd, 6, SEEK_SET), 6);
	check_ret(0, vs_read_fd_whole(&got, &len, fd, 100), "read from 6");
	check_str("world", got, "read from the offset");
	free(got);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	check_int(4, vs_read_in_full(fd, c, 4), "read 4");
	check_int(0, vs_read_in_full(fd, c, 0), "read 0 bytes");
	/* empty file */
	assert_int_equal(ftruncate(fd, 0), 0);
	check_ret(0, vs_pread_fd_whole(&got, &len, fd, 0), "empty file");
	check_int(0, (long long)len, "empty length");
	check_str("", got, "empty file is \"\"");
	free(got);
	close(fd);
	got = (char *)1;
	check_ret(-EBADF, vs_read_fd_whole(&got, &len, fd, 10), "closed fd");
	check_ptr(NULL, got, "*buf on failure");
	check_ret(-EBADF, vs_write_in_full(fd, "x", 1), "write closed fd");
}

/* ------------------------------------------------------------ dirs */

static void test_opendirat(void **state)
{
	char tmpl[] = "/tmp/vsync-test-util.XXXXXX";
	char *root = mkdtemp(tmpl);
	struct dirent *de;
	bool seen = false;
	DIR *d = (DIR *)1;
	int at;

	(void)state;
	assert_non_null(root);
	at = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(at >= 0);
	assert_int_equal(mkdirat(at, "sub", 0700), 0);
	assert_int_equal(close(openat(at, "sub/f", O_CREAT | O_WRONLY, 0600)),
			 0);
	assert_int_equal(symlinkat("sub", at, "link"), 0);

	check_ret(0, vs_opendirat(at, "sub", true, &d), "open sub");
	while ((de = readdir(d)))
		seen |= strcmp(de->d_name, "f") == 0;
	check_bool(true, seen, "sub lists f");
	closedir(d);
	check_ret(-ENOENT, vs_opendirat(at, "none", false, &d), "missing");
	check_ptr(NULL, d, "*out on failure");
	check_ret(-ENOTDIR, vs_opendirat(at, "sub/f", false, &d), "a file");
	check_ret(-ENOTDIR, vs_opendirat(at, "link", true, &d),
		  "a symlink, nofollow");
	check_ret(0, vs_opendirat(at, "link", false, &d), "a symlink followed");
	closedir(d);

	unlinkat(at, "link", 0);
	unlinkat(at, "sub/f", 0);
	unlinkat(at, "sub", AT_REMOVEDIR);
	close(at);
	rmdir(root);
}

struct regular_call {
	int at, op, r, fd;
};

static void *regular_thread(void *arg)
{
	struct regular_call *c = arg;

	c->fd = -1;
	if (c->op == 0)
		c->r = vs_open_regular(c->at, "fifo", O_RDONLY, &c->fd);
	else if (c->op == 1)
		c->r = vs_open_regular(c->at, "fifo", O_WRONLY, &c->fd);
	else
		c->r = vs_write_file_at(c->at, "fifo", "out", "new\n", 4, 0600);
	return NULL;
}

static int regular_within(int at, int op, const char *what)
{
	struct regular_call c = {at, op, 99, -1};

	run_within(regular_thread, &c, what);
	if (c.fd >= 0)
		close(c.fd);
	return c.r;
}

/* vs_open_regular opens a regular file only, and never waits for the
 * other end of a FIFO; vs_write_file_at writes through a new temporary
 * file, whatever was at its name (a FIFO, a symlink to a file of
 * someone else's). */
static void test_regular(void **state)
{
	char tmpl[] = "/tmp/vsync-test-util.XXXXXX";
	char *root = mkdtemp(tmpl), *buf = NULL;
	struct stat st;
	size_t len = 0;
	int at, fd = -1;

	(void)state;
	assert_non_null(root);
	at = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(at >= 0);
	assert_int_equal(close(openat(at, "f", O_CREAT | O_WRONLY, 0600)), 0);
	assert_int_equal(symlinkat("f", at, "link"), 0);
	assert_int_equal(mkfifoat(at, "fifo", 0600), 0);

	check_ret(0, vs_open_regular(at, "f", O_RDONLY, &fd), "a file");
	check_bool(true, fd >= 0, "its fd");
	check_int(O_RDONLY, fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK),
		  "read-only, O_NONBLOCK cleared");
	close(fd);
	check_ret(1, vs_open_regular(at, "link", O_RDONLY, &fd), "a symlink");
	check_ret(-ENOENT, vs_open_regular(at, "none", O_RDONLY, &fd),
		  "nothing");
	check_ret(1, vs_open_regular(at, ".", O_RDONLY, &fd), "a directory");
	check_ret(1, regular_within(at, 0, "open of a FIFO"),
		  "a FIFO, read-only");
	check_ret(1, regular_within(at, 1, "open of a FIFO"),
		  "a FIFO, write-only (no reader)");

	check_ret(0, regular_within(at, 2, "vs_write_file_at"),
		  "write through a FIFO's name");
	check_ret(0, vs_open_regular(at, "out", O_RDONLY, &fd), "open out");
	check_ret(0, vs_read_fd_whole(&buf, &len, fd, 64), "read out");
	check_str("new\n", buf, "out");
	close(fd);
	free(buf);
	check_int(-1, faccessat(at, "fifo", F_OK, AT_SYMLINK_NOFOLLOW),
		  "no temporary file left");
	assert_int_equal(symlinkat("f", at, "fifo"), 0);
	check_ret(0, vs_write_file_at(at, "fifo", "out", "x", 1, 0600),
		  "write through a symlink's name");
	check_ret(0, fstatat(at, "f", &st, 0), "stat f");
	check_int(0, st.st_size, "the symlink's target untouched");

	unlinkat(at, "link", 0);
	unlinkat(at, "f", 0);
	unlinkat(at, "out", 0);
	close(at);
	rmdir(root);
}

/* vs_open_regular refuses a device node without opening it: an open of
 * one can do anything (a tape rewinds, a terminal becomes the process's
 * controlling one). inotify tells an open (IN_OPEN) from a look (O_PATH
 * and fstat: none). */
static void test_regular_device(void **state)
{
	char tmpl[] = "/tmp/vsync-test-util.XXXXXX";
	char *root = mkdtemp(tmpl), buf[4096];
	struct stat st;
	int at, in, fd = -1;
	ssize_t n;

	(void)state;
	assert_non_null(root);
	at = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(at >= 0);
	assert_int_equal(stat("/dev/null", &st), 0);
	if (mknodat(at, "dev", S_IFCHR | 0600, st.st_rdev) < 0) {
		close(at);
		rmdir(root);
		skip(); /* not root (CAP_MKNOD) */
	}
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(in >= 0);
	snprintf(buf, sizeof(buf), "%s/dev", root);
	assert_true(inotify_add_watch(in, buf, IN_OPEN) >= 0);

	check_ret(1, vs_open_regular(at, "dev", O_RDONLY, &fd),
		  "a character device, read-only");
	check_ret(1, vs_open_regular(at, "dev", O_WRONLY, &fd),
		  "a character device, write-only");
	check_int(-1, fd, "no fd given");
	n = read(in, buf, sizeof(buf));
	check_int(-1, (int)n, "IN_OPEN events on the device node (%zd bytes)",
		  n);
	/* and the watch does see an open */
	fd = openat(at, "dev", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	close(fd);
	check_bool(true, read(in, buf, sizeof(buf)) > 0,
		   "IN_OPEN of a real open seen");

	close(in);
	unlinkat(at, "dev", 0);
	close(at);
	rmdir(root);
}

/* ------------------------------------------------------------ deadlines */

static void test_size_timeout(void **state)
{
	(void)state;
	check_int(500, vs_size_timeout_ms(500, 0), "no bytes: the base");
	check_int(1500, vs_size_timeout_ms(500, VS_MIN_RATE),
		  "VS_MIN_RATE bytes: one second more");
	check_int(300000 + 10000,
		  vs_size_timeout_ms(10000, 300ULL * VS_MIN_RATE),
		  "300 MiB at 1 MiB/s");
	check_int(1000, vs_size_timeout_ms(-5, VS_MIN_RATE), "negative base");
	check_int(INT_MAX, vs_size_timeout_ms(10000, UINT64_MAX),
		  "capped at INT_MAX");
	check_int(INT_MAX, vs_size_timeout_ms(INT_MAX, 1ULL << 40),
		  "a base of INT_MAX stays there");
}

/* ------------------------------------------------------------ log lines */

static void test_log_due(void **state)
{
	atomic_int_least64_t last = 0;

	(void)state;
	check_bool(true, vs_log_due(&last, 60000), "the first time: due");
	check_bool(false, vs_log_due(&last, 60000), "at once again: not due");
	atomic_store(&last, vs_mono_ms() - 60000);
	check_bool(true, vs_log_due(&last, 60000),
		   "the interval passed since the last: due");
	check_bool(false, vs_log_due(&last, 60000), "and then not again");
}

/* ---------------------------------------------------------------- clocks */

/* A condition made by vs_cond_init_mono waits until a vs_mono_ts deadline:
 * on a wall-clock condition that deadline (the time since boot) is long
 * past, and the wait would end at once. */
static void test_cond_mono(void **state)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond;
	struct timespec ts;
	int64_t start, waited, before, ns, after;
	int r;

	(void)state;
	check_int(0, vs_cond_init_mono(&cond), "made");
	pthread_mutex_lock(&lock);
	start = vs_mono_ms();
	vs_mono_ts(&ts, start + 100);
	do
		r = pthread_cond_timedwait(&cond, &lock, &ts);
	while (r == 0); /* a spurious wake-up */
	waited = vs_mono_ms() - start;
	pthread_mutex_unlock(&lock);
	pthread_cond_destroy(&cond);
	check_int(ETIMEDOUT, r, "the wait timed out");
	check_bool(true, waited >= 99,
		   "it waited until the monotonic deadline (100 ms)");
	before = vs_wall_ms();
	ns = vs_wall_ns();
	after = vs_wall_ms();
	check_bool(true, before <= ns / 1000000 && ns / 1000000 <= after,
		   "vs_wall_ns is the wall clock");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uuid),
	    cmocka_unit_test(test_parse_u64),
	    cmocka_unit_test(test_parse_i64),
	    cmocka_unit_test(test_parse_long),
	    cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_backoff_bounds),
	    cmocka_unit_test(test_backoff_jitter),
	    cmocka_unit_test(test_size_timeout),
	    cmocka_unit_test(test_log_due),
	    cmocka_unit_test(test_cond_mono),
	    cmocka_unit_test(test_opendirat),
	    cmocka_unit_test(test_regular),
	    cmocka_unit_test(test_regular_device),
	    cmocka_unit_test(test_pipe_whole),
	    cmocka_unit_test(test_file_whole),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
