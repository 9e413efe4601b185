/*
 * util.h - small helpers every module needs, kept in one place
 * (sync/util.c), in the manner of git's wrapper.c: full reads and writes
 * that survive EINTR and short counts, reading a whole file with a size
 * limit, strict integer parsing, a retry back-off with jitter, and the
 * fixed size of a UUID's text.
 *
 * Nothing here knows a vsync struct; nothing logs. Every function returns
 * 0 (or a count) on success and -errno on failure, and leaves its
 * out-parameters untouched on failure unless it says otherwise.
 */
#ifndef VSYNC_UTIL_H
#define VSYNC_UTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A UUID's canonical text, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx": 36
 * characters and the NUL. The size of every buffer that holds one. */
#define VS_UUID_LEN   36
#define VS_UUID_BUFSZ (VS_UUID_LEN + 1)

/* Whether @s is exactly a UUID's canonical text in lowercase (the form
 * PostgreSQL prints and vsync writes). */
bool vs_uuid_valid(const char *s);

/* ---- full reads and writes ---------------------------------------------- */

/*
 * Read up to @count bytes from @fd into @buf, retrying on EINTR and short
 * reads until @count bytes or end of file. Returns the number read
 * (less than @count only at end of file) or -errno; on -errno some bytes
 * may have been read and the file offset moved.
 */
ssize_t vs_read_in_full(int fd, void *buf, size_t count);

/* Like vs_read_in_full() but with pread(2) from offset @off; the file
 * offset does not move. */
ssize_t vs_pread_in_full(int fd, void *buf, size_t count, off_t off);

/*
 * Write all @count bytes of @buf to @fd, retrying on EINTR and short
 * writes. 0 or -errno (then an unknown prefix may have been written).
 */
int vs_write_in_full(int fd, const void *buf, size_t count);

/*
 * Read @fd from its current offset to end of file into a malloc'd buffer
 * (works on pipes). The buffer has a NUL after the last byte, so text can
 * be parsed in place; *len does not count it. More than @max bytes is
 * -EFBIG. On success the caller owns *buf (free()); on failure *buf is
 * NULL, *len 0, and nothing is left allocated. The fd is not closed.
 * 0, -EFBIG, -ENOMEM or -errno of read(2).
 */
int vs_read_fd_whole(char **buf, size_t *len, int fd, size_t max);

/* Like vs_read_fd_whole() but reads from offset 0 with pread(2), leaving
 * the file offset alone (for a file someone else may have read or
 * written through the same fd). Not for pipes (-ESPIPE). */
int vs_pread_fd_whole(char **buf, size_t *len, int fd, size_t max);

/* ---- integer parsing ---------------------------------------------------- */

/*
 * Parse the whole of @s (or of its first @len bytes for the _n forms, no
 * NUL needed) as an integer in @base (2..16, no "0x" prefix) within
 * [@min, @max]. Strict: no leading or trailing white space, no '+', a '-'
 * only for the signed forms; leading zeros are allowed.
 *
 *   0        *out set
 *   -EINVAL  empty, a character that is not a digit of @base, or a bad base
 *   -ERANGE  a number that overflows the type or is outside [@min, @max]
 *
 * *out is untouched on failure.
 */
int vs_parse_u64_n(uint64_t *out, const char *s, size_t len, int base,
		   uint64_t min, uint64_t max);
int vs_parse_i64_n(int64_t *out, const char *s, size_t len, int base,
		   int64_t min, int64_t max);
int vs_parse_u64(uint64_t *out, const char *s, int base, uint64_t min,
		 uint64_t max);
int vs_parse_i64(int64_t *out, const char *s, int base, int64_t min,
		 int64_t max);
int vs_parse_long(long *out, const char *s, int base, long min, long max);
/*
 * Parse a size: decimal digits and an optional binary suffix K, M, G or T
 * (either case, optionally followed by "iB" or "B": "64K", "2GiB"), within
 * [0, @max]. 0 and *out; -EINVAL for anything else (empty, a sign, space,
 * an unknown suffix); -ERANGE past @max or on overflow. *out untouched on
 * failure.
 */
int vs_parse_size(uint64_t *out, const char *s, uint64_t max);

/* ---- retry back-off ----------------------------------------------------- */

/*
 * A retry delay that doubles from min_ms to max_ms, each delay drawn at
 * random from [d/2, d] so that many clients failing together do not retry
 * together.
 *
 * The jitter generator is per object (xorshift64*, not for secrets),
 * seeded by vs_backoff_init() from getrandom(2), or, if that fails, from
 * the clock, the pid and the object's address. A struct vs_backoff is not
 * thread-safe: it belongs to the one thread that retries (or to the lock
 * that guards its owner).
 */
struct vs_backoff {
	int min_ms, max_ms;
	int next_ms;  /* the upper bound of the next delay */
	uint64_t rng; /* jitter state, never 0 */
};

/* Set @b to start at @min_ms (> 0) and stop doubling at @max_ms (>= min).
 * Cannot fail. */
void vs_backoff_init(struct vs_backoff *b, int min_ms, int max_ms);

/* After a success: the next delay starts over at min_ms. */
void vs_backoff_reset(struct vs_backoff *b);

/* The delay to wait before the next retry, in [d/2, d] where d is the
 * current bound; then doubles the bound (up to max_ms). */
int vs_backoff_next(struct vs_backoff *b);

/* The jitter of one step, pure: @bound_ms / 2 plus @rnd modulo
 * (@bound_ms / 2 + 1), so in [bound/2, bound]. */
int vs_backoff_jitter(int bound_ms, uint64_t rnd);

/* Open directory @path relative to @at as a stream in *@out, with
 * O_NOFOLLOW when @nofollow (the directory fd is the stream's: closedir
 * closes it). 0 or -errno (*@out NULL). */
int vs_opendirat(int at, const char *path, bool nofollow, DIR **out);

/*
 * Open @path relative to @at with access mode @mode (O_RDONLY, O_WRONLY
 * or O_RDWR: no other flag, no O_CREAT), only if it is a regular file:
 * never through a symlink (O_NOFOLLOW), and nothing else is ever opened
 * (a device's open has side effects, a FIFO's waits): an O_PATH fd is
 * checked with fstat, then that inode opened through /proc/self/fd
 * (O_NONBLOCK, cleared). For a directory that whatever runs in the
 * container can write. 0 and *@fd_out, 1 if it is not a regular file (a
 * symlink, a FIFO, a device, a directory), or -errno (-ENOENT if there
 * is nothing).
 */
int vs_open_regular(int at, const char *path, int mode, int *fd_out);

/*
 * Write @len bytes of @buf to @name in directory @at (mode @mode, less
 * the umask) through the temporary name @tmp beside it, renamed over
 * @name, so that a reader finds the old file or the new one whole. @tmp
 * is always a new file: whatever was there (a FIFO, a symlink someone
 * put there) is removed first, and nothing is opened through it. Not
 * synced. 0 or -errno (@tmp removed).
 */
int vs_write_file_at(int at, const char *tmp, const char *name, const void *buf,
		     size_t len, mode_t mode);

/*
 * Deadlines of calls that move content: a call that moves @bytes gets
 * @base_ms plus the time the bytes take at VS_MIN_RATE, so a big file is
 * not cut off on a slow or busy server while a stalled one still is.
 * VS_MIN_RATE is the slowest transfer counted as healthy: 1 MiB/s (a
 * 300 MiB import ran at 3.5 MB/s on a loaded 2-core VM).
 */
#define VS_MIN_RATE (1024 * 1024)

/* @base_ms + @bytes at VS_MIN_RATE, in ms, at most INT_MAX. */
int vs_size_timeout_ms(int base_ms, uint64_t bytes);

/* The next number of the xorshift64* generator at *@state (never 0). For
 * jitter only. */
uint64_t vs_jitter_rand(uint64_t *state);

#endif
