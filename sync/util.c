/*
 * util.c - full reads and writes, whole-file reads with a limit, strict
 * integer parsing, retry back-off with jitter (include/vsync/util.h).
 *
 * Knows nothing of the rest of vsync and does not log: callers say what
 * failed.
 */
#include "vsync/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsync/clock.h"
#include "vsync/banned.h"

bool vs_uuid_valid(const char *s)
{
	for (int i = 0; i < VS_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!((s[i] >= '0' && s[i] <= '9') ||
			     (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return s[VS_UUID_LEN] == '\0';
}

/* ---- full reads and writes ---------------------------------------------- */

/* One loop for read and pread: @off < 0 means read(2). */
static ssize_t read_loop(int fd, char *p, size_t count, off_t off)
{
	size_t got = 0;

	while (got < count) {
		ssize_t n =
		    off < 0 ? read(fd, p + got, count - got)
			    : pread(fd, p + got, count - got, off + (off_t)got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

ssize_t vs_read_in_full(int fd, void *buf, size_t count)
{
	return read_loop(fd, buf, count, -1);
}

ssize_t vs_pread_in_full(int fd, void *buf, size_t count, off_t off)
{
	if (off < 0)
		return -EINVAL;
	return read_loop(fd, buf, count, off);
}

int vs_write_in_full(int fd, const void *buf, size_t count)
{
	const char *p = buf;

	while (count > 0) {
		ssize_t n = write(fd, p, count);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		count -= (size_t)n;
	}
	return 0;
}

/* Read to end of file (from @off, or the file offset if @off < 0). The
 * size of a regular file is the first guess; the buffer grows by doubling
 * past it, and reading one byte beyond @max tells "exactly max" from
 * "too big". */
static int read_whole(char **buf, size_t *len, int fd, size_t max, off_t off)
{
	struct stat st;
	size_t cap = 65536, got = 0;
	char *p = NULL, *np;
	int r;

	*buf = NULL;
	*len = 0;
	if (max > SIZE_MAX - 2)
		max = SIZE_MAX - 2;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0) {
		if ((uint64_t)st.st_size > max)
			return -EFBIG;
		cap = (size_t)st.st_size + 1; /* +1: room to see the end */
	}
	if (cap > max + 1)
		cap = max + 1;
	for (;;) {
		ssize_t n;

		if (!p || got == cap) {
			size_t ncap = p ? cap * 2 : cap;

			if (p && cap > max) {
				r = -EFBIG;
				goto out;
			}
			if (ncap > max + 1 || ncap < cap)
				ncap = max + 1;
			np = realloc(p, ncap + 1); /* + the NUL */
			if (!np) {
				r = -ENOMEM;
				goto out;
			}
			p = np;
			cap = ncap;
		}
		n = read_loop(fd, p + got, cap - got,
			      off < 0 ? -1 : off + (off_t)got);
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		got += (size_t)n;
		if (got < cap)
			break; /* end of file */
	}
	if (got > max) {
		r = -EFBIG;
		goto out;
	}
	p[got] = '\0';
	*buf = p;
	*len = got;
	p = NULL;
	r = 0;
out:
	free(p);
	return r;
}

int vs_read_fd_whole(char **buf, size_t *len, int fd, size_t max)
{
	return read_whole(buf, len, fd, max, -1);
}

int vs_pread_fd_whole(char **buf, size_t *len, int fd, size_t max)
{
	return read_whole(buf, len, fd, max, 0);
}

/* ---- integer parsing ---------------------------------------------------- */

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return 99;
}

/* The magnitude of the digits of @s[0..@len) in @base. 0, -EINVAL or
 * -ERANGE (over UINT64_MAX). */
static int parse_magnitude(uint64_t *out, const char *s, size_t len, int base)
{
	uint64_t v = 0;

	if (base < 2 || base > 16 || len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (digit_value(s[i]) >= base)
			return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)digit_value(s[i]);

		if (v > (UINT64_MAX - d) / (unsigned)base)
			return -ERANGE;
		v = v * (unsigned)base + d;
	}
	*out = v;
	return 0;
}

int vs_parse_u64_n(uint64_t *out, const char *s, size_t len, int base,
		   uint64_t min, uint64_t max)
{
	uint64_t v;
	int r;

	r = parse_magnitude(&v, s, len, base);
	if (r < 0)
		return r;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int vs_parse_i64_n(int64_t *out, const char *s, size_t len, int base,
		   int64_t min, int64_t max)
{
	bool neg = len > 0 && s[0] == '-';
	uint64_t m;
	int64_t v;
	int r;

	r = parse_magnitude(&m, s + neg, len - neg, base);
	if (r < 0)
		return r;
	if (neg) {
		if (m > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		v = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
	} else {
		if (m > (uint64_t)INT64_MAX)
			return -ERANGE;
		v = (int64_t)m;
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int vs_parse_u64(uint64_t *out, const char *s, int base, uint64_t min,
		 uint64_t max)
{
	return vs_parse_u64_n(out, s, strlen(s), base, min, max);
}

int vs_parse_i64(int64_t *out, const char *s, int base, int64_t min,
		 int64_t max)
{
	return vs_parse_i64_n(out, s, strlen(s), base, min, max);
}

int vs_parse_long(long *out, const char *s, int base, long min, long max)
{
	int64_t v;
	int r;

	r = vs_parse_i64(&v, s, base, min, max);
	if (r == 0)
		*out = (long)v;
	return r;
}

int vs_parse_size(uint64_t *out, const char *s, uint64_t max)
{
	static const char units[] = "KMGT";
	const char *u;
	size_t n = 0;
	uint64_t v;
	unsigned shift = 0;
	int r;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (n == 0)
		return -EINVAL;
	if (s[n]) {
		u = strchr(units, s[n] & ~0x20);
		if (!u || !*u)
			return -EINVAL;
		shift = 10 * (unsigned)(u - units + 1);
		if (s[n + 1] && strcmp(s + n + 1, "B") != 0 &&
		    strcmp(s + n + 1, "iB") != 0)
			return -EINVAL;
	}
	r = vs_parse_u64_n(&v, s, n, 10, 0, UINT64_MAX);
	if (r < 0)
		return r;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	v <<= shift;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* ---- retry back-off ----------------------------------------------------- */

uint64_t vs_jitter_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

int vs_opendirat(int at, const char *path, bool nofollow, DIR **out)
{
	int r, fd = openat(at, path,
			   O_RDONLY | O_DIRECTORY | O_CLOEXEC |
			       (nofollow ? O_NOFOLLOW : 0));

	*out = NULL;
	if (fd < 0)
		return -errno;
	*out = fdopendir(fd);
	if (!*out) {
		r = -errno;
		close(fd);
		return r;
	}
	return 0;
}

int vs_open_regular(int at, const char *path, int mode, int *fd_out)
{
	char proc[32];
	struct stat st;
	int pfd, fd, r = 0;

	/* O_PATH opens nothing: no device's open (a tape rewound, a
	 * terminal made controlling), no wait for a FIFO's other end */
	pfd = openat(at, path, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	if (pfd < 0)
		return errno == ELOOP ? 1 : -errno;
	if (fstat(pfd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = 1; /* a symlink (O_NOFOLLOW: itself), a device, ... */
	if (r != 0) {
		close(pfd);
		return r;
	}
	/* the same inode, a regular file, opened with @mode: whatever is
	 * at @path now does not matter. O_NONBLOCK as before (a lease
	 * held on it: EWOULDBLOCK, not a wait for its break), cleared. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, (mode & O_ACCMODE) | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		r = -errno;
	close(pfd);
	if (r == 0 && fcntl(fd, F_SETFL, 0) < 0) {
		r = -errno;
		close(fd);
	}
	if (r == 0)
		*fd_out = fd;
	return r;
}

int vs_write_file_at(int at, const char *tmp, const char *name, const void *buf,
		     size_t len, mode_t mode)
{
	int fd, r;

	if (unlinkat(at, tmp, 0) < 0 && errno != ENOENT)
		return -errno;
	fd = openat(at, tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	r = vs_write_in_full(fd, buf, len);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(at, tmp, at, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(at, tmp, 0);
	return r;
}

int vs_size_timeout_ms(int base_ms, uint64_t bytes)
{
	uint64_t ms = bytes / VS_MIN_RATE * 1000 +
		      bytes % VS_MIN_RATE * 1000 / VS_MIN_RATE;

	if (base_ms < 0)
		base_ms = 0;
	return ms > (uint64_t)(INT_MAX - base_ms) ? INT_MAX : base_ms + (int)ms;
}

int vs_backoff_jitter(int bound_ms, uint64_t rnd)
{
	if (bound_ms <= 0)
		return 0;
	return bound_ms / 2 + (int)(rnd % (uint64_t)(bound_ms / 2 + 1));
}

void vs_backoff_init(struct vs_backoff *b, int min_ms, int max_ms)
{
	uint64_t seed = 0;

	if (min_ms < 1)
		min_ms = 1;
	if (max_ms < min_ms)
		max_ms = min_ms;
	b->min_ms = min_ms;
	b->max_ms = max_ms;
	b->next_ms = min_ms;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = vs_mono_us() ^ ((uint64_t)getpid() << 32) ^
		       (uint64_t)(uintptr_t)b;
	b->rng = seed ? seed : 1;
}

void vs_backoff_reset(struct vs_backoff *b)
{
	b->next_ms = b->min_ms;
}

int vs_backoff_next(struct vs_backoff *b)
{
	int d = b->next_ms;

	b->next_ms = d > b->max_ms / 2 ? b->max_ms : d * 2;
	return vs_backoff_jitter(d, vs_jitter_rand(&b->rng));
}
