/*
 * fsx.c - a file system exerciser in the spirit of the classic fsx
 * (Avadis Tevanian's, as kept in xfstests): random operations on one file,
 * checked against an in-memory model of what the file must hold.
 *
 *   fsx [-N ops] [-S seed] [-l maxlen] [-o maxoplen] [-f fsync_every]
 *       [-c check_cmd] [-g good_file] [-R] [-W] [-v] FILE
 *
 *   -N ops          number of operations (default 1000)
 *   -S seed         PRNG seed (default: from the clock); always printed, so
 *                   a failing run is repeated with -S and the same options
 *   -l maxlen       the file never grows past maxlen bytes (default 256 KiB)
 *   -o maxoplen     largest read/write (default 64 KiB)
 *   -f k            fsync (or fdatasync) after every k-th operation;
 *                   0: never (default); at the end the file is always
 *                   fsync'd, read back whole and checked
 *   -c CMD          after each fsync point and at the end: write the model
 *                   to the good file and run `/bin/sh -c 'CMD "$1"'` with
 *                   the good file's path as $1; a non-zero exit fails
 *   -g PATH         the good file: the model, written (temp file + rename)
 *                   at every fsync point, at a failure and at the end;
 *                   default a temporary file, removed at exit
 *   -R / -W         no mmap reads / no mmap writes (MAP_SHARED, msync)
 *   -v              print every operation
 *
 * Operations: read at a random offset (sometimes past EOF), write at a
 * random offset (possibly past EOF: a hole of zeros), mmap read, mmap
 * write (extending with ftruncate first, then msync), truncate up or down
 * (ftruncate on the descriptor or truncate(2) on the path), close and
 * reopen (a third of the time with O_TRUNC and the whole new content
 * written again, as an editor saves; the reopened file is read back whole),
 * fsync/fdatasync every k operations. After every operation the size
 * (fstat, sometimes stat(2) on the path) must equal the model's.
 *
 * The file is created or truncated at start. Its content is random bytes
 * from the seeded PRNG (xorshift64*, so a seed means the same run on every
 * platform), now and then a run of zeros, so a written zero is told apart
 * from a hole.
 *
 * On a mismatch: the operation, the first differing byte (offset, expected,
 * seen), how many bytes differ, and the last operations; the model is left
 * in the good file and what was read in GOOD.bad. Exit: 0 all passed,
 * 1 a check or a system call failed, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FSX_LOG_SIZE 32	  /* operations shown on failure */
#define FSX_CMD_MAX  4000 /* longest -c command */

enum fsx_op {
	OP_READ,
	OP_WRITE,
	OP_MAPREAD,
	OP_MAPWRITE,
	OP_FTRUNCATE,
	OP_TRUNCATE,
	OP_REOPEN,
	OP_REWRITE,
	OP_FSYNC,
	OP_FDATASYNC,
};

static const char *const op_names[] = {
    "read",	"write",  "mapread", "mapwrite", "ftruncate",
    "truncate", "reopen", "rewrite", "fsync",	 "fdatasync",
};

struct fsx_logent {
	unsigned long opno;
	enum fsx_op op;
	uint64_t off, len; /* truncate, rewrite: len is the new size */
	uint64_t size;	   /* the model's size before the operation */
};

struct fsx {
	const char *path;
	int fd;
	unsigned char *model; /* maxlen bytes; zero past size */
	unsigned char *buf;   /* scratch, maxlen bytes */
	uint64_t size;
	uint64_t maxlen, maxoplen;
	unsigned long numops, fsync_every, opno;
	const char *check_cmd;
	char *good;
	bool good_tmp;
	bool mapread, mapwrite;
	int verbose;
	uint64_t seed, rng;
	long pagesize;
	struct fsx_logent log[FSX_LOG_SIZE];
	unsigned long nlog;
	unsigned long count[OP_FDATASYNC + 1];
	unsigned long checks;
};

/* ---- PRNG: xorshift64*, seeded through splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct fsx *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545f4914f6cdd1dULL;
}

/* A number in [0, n) (n > 0). */
static uint64_t rnd_below(struct fsx *f, uint64_t n)
{
	return rnd(f) % n;
}

/* ---- reporting ---- */

static void log_op(struct fsx *f, enum fsx_op op, uint64_t off, uint64_t len)
{
	struct fsx_logent *e = &f->log[f->nlog++ % FSX_LOG_SIZE];

	e->opno = f->opno;
	e->op = op;
	e->off = off;
	e->len = len;
	e->size = f->size;
	f->count[op]++;
	if (f->verbose)
		printf("%lu %s 0x%" PRIx64 " len 0x%" PRIx64 " (size 0x%" PRIx64
		       ")\n",
		       f->opno, op_names[op], off, len, f->size);
}

static void dump_log(const struct fsx *f)
{
	unsigned long i = f->nlog > FSX_LOG_SIZE ? f->nlog - FSX_LOG_SIZE : 0;

	fprintf(stderr,
		"fsx: the last %lu operations (offsets, lengths and "
		"sizes in hex; size is before the operation):\n",
		f->nlog - i);
	for (; i < f->nlog; i++) {
		const struct fsx_logent *e = &f->log[i % FSX_LOG_SIZE];

		fprintf(stderr, "  %6lu %-9s ", e->opno, op_names[e->op]);
		switch (e->op) {
		case OP_FTRUNCATE:
		case OP_TRUNCATE:
		case OP_REWRITE:
			fprintf(stderr, "to 0x%" PRIx64, e->len);
			break;
		case OP_REOPEN:
		case OP_FSYNC:
		case OP_FDATASYNC:
			break;
		default:
			fprintf(stderr,
				"0x%" PRIx64 "..0x%" PRIx64 " (0x%" PRIx64
				" bytes)",
				e->off, e->off + e->len, e->len);
		}
		fprintf(stderr, "  size 0x%" PRIx64 "\n", e->size);
	}
}

static int write_file(const char *path, const unsigned char *p, size_t len);
static int save_good(struct fsx *f);

static void finish(struct fsx *f)
{
	if (f->good_tmp) {
		unlink(f->good);
		free(f->good);
		f->good = NULL;
	}
}

/* Report a failure of operation f->opno, dump the log and exit 1. */
static void __attribute__((format(printf, 2, 3), noreturn))
fail(struct fsx *f, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr,
		"fsx: FAILED at operation %lu (seed %" PRIu64 "): ", f->opno,
		f->seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	dump_log(f);
	if (save_good(f) == 0 && !f->good_tmp)
		fprintf(stderr, "fsx: the model is in %s\n", f->good);
	finish(f);
	exit(1);
}

#define fail_errno(f, what, ...)                                               \
	fail(f, what ": %s", ##__VA_ARGS__, strerror(errno))

/*
 * Compare @got (@len bytes read at @off) with the model; on a difference
 * report the first differing byte and fail.
 */
static void check_bytes(struct fsx *f, const char *what,
			const unsigned char *got, uint64_t off, uint64_t len)
{
	uint64_t i, first = UINT64_MAX, ndiff = 0;
	char bad[PATH_MAX];

	for (i = 0; i < len; i++) {
		if (got[i] != f->model[off + i]) {
			if (first == UINT64_MAX)
				first = i;
			ndiff++;
		}
	}
	if (!ndiff)
		return;
	if (snprintf(bad, sizeof(bad), "%s.bad", f->good) < (int)sizeof(bad) &&
	    !f->good_tmp && write_file(bad, got, len) == 0)
		fprintf(stderr,
			"fsx: the 0x%" PRIx64 " bytes read at 0x%" PRIx64
			" are in %s\n",
			len, off, bad);
	fprintf(stderr, "fsx: %s 0x%" PRIx64 "..0x%" PRIx64 ":", what, off,
		off + len);
	for (i = first; i < len && i < first + 16; i++)
		fprintf(stderr, " %02x/%02x", f->model[off + i], got[i]);
	fprintf(stderr, " (expected/seen from the first difference)\n");
	fail(f,
	     "%s: first differing byte at file offset 0x%" PRIx64 " (%" PRIu64
	     "): expected 0x%02x, saw 0x%02x; %" PRIu64 " of 0x%" PRIx64
	     " bytes differ; file size 0x%" PRIx64,
	     what, off + first, off + first, f->model[off + first], got[first],
	     ndiff, len, f->size);
}

static void check_size(struct fsx *f)
{
	struct stat st;
	bool by_path = rnd_below(f, 16) == 0;

	if ((by_path ? stat(f->path, &st) : fstat(f->fd, &st)) < 0)
		fail_errno(f, "%s", by_path ? "stat" : "fstat");
	if ((uint64_t)st.st_size != f->size)
		fail(f,
		     "%s: size is 0x%llx (%lld), the model's 0x%" PRIx64
		     " (%" PRIu64 ")",
		     by_path ? "stat" : "fstat", (long long)st.st_size,
		     (long long)st.st_size, f->size, f->size);
}

/* ---- I/O helpers ---- */

static int write_file(const char *path, const unsigned char *p, size_t len)
{
	char tmp[PATH_MAX];
	size_t done = 0;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);

		if (n < 0) {
			int r = -errno;

			close(fd);
			unlink(tmp);
			return r;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int r = -errno;

		unlink(tmp);
		return r;
	}
	return 0;
}

/* Write the model to the good file (atomically: temp file + rename). */
static int save_good(struct fsx *f)
{
	int r = write_file(f->good, f->model, f->size);

	if (r < 0)
		fprintf(stderr, "fsx: cannot write the good file %s: %s\n",
			f->good, strerror(-r));
	return r;
}

static void pread_all(struct fsx *f, unsigned char *p, uint64_t len,
		      uint64_t off, uint64_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = pread(f->fd, p + *got, len - *got, off + *got);

		if (n < 0)
			fail_errno(f, "pread 0x%" PRIx64 " bytes at 0x%" PRIx64,
				   len, off);
		if (n == 0)
			break;
		*got += (uint64_t)n;
	}
}

static void pwrite_all(struct fsx *f, const unsigned char *p, uint64_t len,
		       uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(f->fd, p + done, len - done, off + done);

		if (n < 0)
			fail_errno(f,
				   "pwrite 0x%" PRIx64 " bytes at 0x%" PRIx64,
				   len, off);
		done += (uint64_t)n;
	}
}

/* Random content; one time in 16 all zeros (a written zero is not a hole).
 */
static void gen_data(struct fsx *f, unsigned char *p, uint64_t len)
{
	uint64_t i, v = 0;

	if (rnd_below(f, 16) == 0) {
		memset(p, 0, len);
		return;
	}
	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = rnd(f);
		p[i] = (unsigned char)(v >> (8 * (i % 8)));
	}
}

/* The model after writing @len bytes of f->buf at @off. */
static void model_write(struct fsx *f, uint64_t off, uint64_t len)
{
	memcpy(f->model + off, f->buf, len);
	if (off + len > f->size)
		f->size = off + len;
}

/* The model after a truncation to @size. */
static void model_truncate(struct fsx *f, uint64_t size)
{
	if (size < f->size)
		memset(f->model + size, 0, f->size - size);
	f->size = size;
}

/* A random [off, off + len) inside [0, limit), len >= 1 (limit >= 1). */
static void pick_range(struct fsx *f, uint64_t limit, uint64_t *off,
		       uint64_t *len)
{
	*off = rnd_below(f, limit);
	*len = 1 + rnd_below(f, f->maxoplen);
	if (*off + *len > limit)
		*len = limit - *off;
}

/* ---- operations ---- */

static void do_read(struct fsx *f)
{
	uint64_t off, len, want, got;

	if (f->size == 0 || rnd_below(f, 8) == 0) {
		/* at or past EOF: nothing comes back */
		off = f->size + rnd_below(f, f->maxoplen);
		len = 1 + rnd_below(f, f->maxoplen);
		if (len > f->maxlen)
			len = f->maxlen;
	} else {
		pick_range(f, f->size, &off, &len);
		/* sometimes across EOF */
		if (rnd_below(f, 4) == 0)
			len = len + rnd_below(f, f->maxoplen) > f->maxlen
				  ? f->maxlen
				  : len + rnd_below(f, f->maxoplen);
	}
	log_op(f, OP_READ, off, len);
	want = off >= f->size ? 0 : (len < f->size - off ? len : f->size - off);
	pread_all(f, f->buf, len, off, &got);
	if (got != want)
		fail(f,
		     "read of 0x%" PRIx64 " bytes at 0x%" PRIx64
		     " returned 0x%" PRIx64 " bytes, expected 0x%" PRIx64
		     " (size 0x%" PRIx64 ")",
		     len, off, got, want, f->size);
	check_bytes(f, "read", f->buf, off, got);
}

static void do_write(struct fsx *f)
{
	uint64_t off, len;

	pick_range(f, f->maxlen, &off, &len);
	log_op(f, OP_WRITE, off, len);
	gen_data(f, f->buf, len);
	if (rnd_below(f, 4) == 0) {
		/* lseek + write instead of pwrite */
		if (lseek(f->fd, (off_t)off, SEEK_SET) < 0)
			fail_errno(f, "lseek to 0x%" PRIx64, off);
		for (uint64_t done = 0; done < len;) {
			ssize_t n = write(f->fd, f->buf + done, len - done);

			if (n < 0)
				fail_errno(f, "write 0x%" PRIx64 " bytes", len);
			done += (uint64_t)n;
		}
	} else {
		pwrite_all(f, f->buf, len, off);
	}
	model_write(f, off, len);
}

/* mmap [off, off + len) of the file; *base gets the page-aligned start. */
static unsigned char *map_range(struct fsx *f, uint64_t off, uint64_t len,
				int prot, void **base, size_t *maplen)
{
	uint64_t pg = off & ~(uint64_t)(f->pagesize - 1);

	*maplen = (size_t)(off - pg + len);
	*base = mmap(NULL, *maplen, prot, MAP_SHARED, f->fd, (off_t)pg);
	if (*base == MAP_FAILED)
		fail_errno(f,
			   "mmap of 0x%zx bytes at 0x%" PRIx64 " (prot %d, "
			   "MAP_SHARED)",
			   *maplen, pg, prot);
	return (unsigned char *)*base + (off - pg);
}

static void do_mapread(struct fsx *f)
{
	uint64_t off, len;
	unsigned char *p;
	size_t maplen;
	void *base;

	if (f->size == 0) {
		do_read(f);
		return;
	}
	pick_range(f, f->size, &off, &len);
	log_op(f, OP_MAPREAD, off, len);
	p = map_range(f, off, len, PROT_READ, &base, &maplen);
	memcpy(f->buf, p, len);
	if (munmap(base, maplen) < 0)
		fail_errno(f, "munmap");
	check_bytes(f, "mapread", f->buf, off, len);
}

static void do_mapwrite(struct fsx *f)
{
	uint64_t off, len;
	unsigned char *p;
	size_t maplen;
	void *base;

	pick_range(f, f->maxlen, &off, &len);
	log_op(f, OP_MAPWRITE, off, len);
	gen_data(f, f->buf, len);
	if (off + len > f->size) {
		/* a mapping cannot extend the file */
		if (ftruncate(f->fd, (off_t)(off + len)) < 0)
			fail_errno(f, "ftruncate to 0x%" PRIx64 " (mapwrite)",
				   off + len);
		model_truncate(f, off + len);
	}
	p = map_range(f, off, len, PROT_READ | PROT_WRITE, &base, &maplen);
	memcpy(p, f->buf, len);
	if (msync(base, maplen, MS_SYNC) < 0)
		fail_errno(f, "msync");
	if (munmap(base, maplen) < 0)
		fail_errno(f, "munmap");
	model_write(f, off, len);
}

static void do_truncate(struct fsx *f)
{
	bool by_path = rnd_below(f, 2) == 0;
	uint64_t size;

	/* a third shrink below a small size: files get short now and then */
	size = rnd_below(f, 3) == 0 ? rnd_below(f, f->maxoplen + 1)
				    : rnd_below(f, f->maxlen + 1);
	if (size > f->maxlen)
		size = f->maxlen;
	log_op(f, by_path ? OP_TRUNCATE : OP_FTRUNCATE, 0, size);
	if (by_path ? truncate(f->path, (off_t)size) < 0
		    : ftruncate(f->fd, (off_t)size) < 0)
		fail_errno(f, "%s to 0x%" PRIx64,
			   by_path ? "truncate" : "ftruncate", size);
	model_truncate(f, size);
}

static void open_file(struct fsx *f, int flags)
{
	f->fd = open(f->path, O_RDWR | O_CLOEXEC | flags, 0644);
	if (f->fd < 0)
		fail_errno(f, "open %s", f->path);
}

/* Read the whole file back and compare it with the model. */
static void check_whole(struct fsx *f, const char *what)
{
	uint64_t got;

	pread_all(f, f->buf, f->maxlen, 0, &got);
	if (got != f->size)
		fail(f,
		     "%s: the whole file read back is 0x%" PRIx64
		     " bytes, the model 0x%" PRIx64,
		     what, got, f->size);
	check_bytes(f, what, f->buf, 0, got);
}

/*
 * Close and open again; a third of the time with O_TRUNC and the new
 * content (the old one with a random range rewritten, a random size)
 * written from the start in random-sized pieces, as an editor saves.
 */
static void do_reopen(struct fsx *f)
{
	bool rewrite = rnd_below(f, 3) == 0;
	uint64_t size = 0, a, b;

	if (rewrite) {
		size = rnd_below(f, f->maxlen + 1);
		/* new bytes in [a, b), the old ones elsewhere (zero past the
		 * old size) */
		a = rnd_below(f, size + 1);
		b = a + rnd_below(f, size - a + 1);
		memcpy(f->buf, f->model, size);
		gen_data(f, f->buf + a, b - a);
	}
	log_op(f, rewrite ? OP_REWRITE : OP_REOPEN, 0, size);
	if (close(f->fd) < 0)
		fail_errno(f, "close");
	f->fd = -1;
	open_file(f, rewrite ? O_TRUNC : 0);
	if (rewrite) {
		for (uint64_t done = 0; done < size;) {
			uint64_t n = 1 + rnd_below(f, f->maxoplen);
			ssize_t w;

			if (n > size - done)
				n = size - done;
			w = write(f->fd, f->buf + done, n);
			if (w < 0)
				fail_errno(f,
					   "write 0x%" PRIx64
					   " bytes at 0x%" PRIx64 " (rewrite)",
					   n, done);
			done += (uint64_t)w;
		}
		model_truncate(f, 0);
		model_write(f, 0, size);
	}
	check_whole(f, rewrite ? "read back after rewrite"
			       : "read back after reopen");
}

/* Write the good file, then run the check command on it (if any); fail
 * if either fails. */
static void run_check(struct fsx *f, const char *when)
{
	pid_t pid;
	int st;

	if (save_good(f) < 0)
		fail(f, "cannot write the good file %s", f->good);
	if (!f->check_cmd)
		return;
	pid = fork();
	if (pid < 0)
		fail_errno(f, "fork");
	if (pid == 0) {
		char script[FSX_CMD_MAX + 8];

		snprintf(script, sizeof(script), "%s \"$1\"", f->check_cmd);
		execl("/bin/sh", "sh", "-c", script, "fsx-check", f->good,
		      (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			fail_errno(f, "waitpid");
	f->checks++;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail(f, "check '%s %s' %s failed (%s %d); size 0x%" PRIx64,
		     f->check_cmd, f->good, when,
		     WIFEXITED(st) ? "exit" : "signal",
		     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), f->size);
}

static void do_fsync(struct fsx *f)
{
	bool data = rnd_below(f, 2) == 0;

	log_op(f, data ? OP_FDATASYNC : OP_FSYNC, 0, 0);
	if ((data ? fdatasync(f->fd) : fsync(f->fd)) < 0)
		fail_errno(f, "%s", data ? "fdatasync" : "fsync");
	if (f->check_cmd || !f->good_tmp)
		run_check(f, "after fsync");
}

static void do_op(struct fsx *f)
{
	unsigned r = (unsigned)rnd_below(f, 100);

	if (r < 28)
		do_read(f);
	else if (r < 56)
		do_write(f);
	else if (r < 64 && f->mapread)
		do_mapread(f);
	else if (r < 64)
		do_read(f);
	else if (r < 72 && f->mapwrite)
		do_mapwrite(f);
	else if (r < 72)
		do_write(f);
	else if (r < 80)
		do_truncate(f);
	else if (r < 86)
		do_reopen(f);
	else
		do_read(f);
	check_size(f);
}

/* ---- main ---- */

static int usage(void)
{
	fprintf(stderr,
		"usage: fsx [-N ops] [-S seed] [-l maxlen] [-o maxoplen] "
		"[-f fsync_every]\n"
		"           [-c check_cmd] [-g good_file] [-R] [-W] [-v] "
		"FILE\n");
	return 2;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || end == s)
		return false;
	if (*end == 'k' || *end == 'K') {
		*v <<= 10;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		*v <<= 20;
		end++;
	}
	return *end == '\0';
}

int main(int argc, char **argv)
{
	struct fsx f = {.fd = -1,
			.numops = 1000,
			.maxlen = 256 << 10,
			.maxoplen = 64 << 10,
			.mapread = true,
			.mapwrite = true};
	struct timespec t0, t1;
	bool seeded = false;
	uint64_t v;
	int o;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((o = getopt(argc, argv, "N:S:l:o:f:c:g:RWv")) != -1) {
		switch (o) {
		case 'N':
		case 'f':
		case 'S':
		case 'l':
		case 'o':
			if (!parse_u64(optarg, &v))
				return usage();
			seeded |= o == 'S';
			if (o == 'N')
				f.numops = (unsigned long)v;
			else if (o == 'f')
				f.fsync_every = (unsigned long)v;
			else if (o == 'S')
				f.seed = v;
			else if (o == 'l')
				f.maxlen = v;
			else
				f.maxoplen = v;
			break;
		case 'c':
			f.check_cmd = optarg;
			break;
		case 'g':
			f.good = optarg;
			break;
		case 'R':
			f.mapread = false;
			break;
		case 'W':
			f.mapwrite = false;
			break;
		case 'v':
			f.verbose++;
			break;
		default:
			return usage();
		}
	}
	if (argc - optind != 1 || f.maxlen == 0 || f.maxoplen == 0 ||
	    f.maxlen > (1ULL << 30) ||
	    (f.check_cmd && strlen(f.check_cmd) > FSX_CMD_MAX))
		return usage();
	f.path = argv[optind];
	if (f.maxoplen > f.maxlen)
		f.maxoplen = f.maxlen;
	if (!seeded) {
		clock_gettime(CLOCK_REALTIME, &t0);
		f.seed = ((uint64_t)t0.tv_sec << 20) ^ (uint64_t)t0.tv_nsec ^
			 ((uint64_t)getpid() << 40);
	}
	v = f.seed;
	f.rng = splitmix64(&v) | 1; /* xorshift state: never zero */
	f.pagesize = sysconf(_SC_PAGESIZE);
	f.model = calloc(1, f.maxlen);
	f.buf = malloc(f.maxlen);
	if (!f.model || !f.buf) {
		fprintf(stderr, "fsx: out of memory\n");
		return 1;
	}
	if (!f.good) {
		const char *tmp = getenv("TMPDIR");
		int fd;

		if (asprintf(&f.good, "%s/fsx.good.XXXXXX",
			     tmp && *tmp ? tmp : "/tmp") < 0 ||
		    (fd = mkstemp(f.good)) < 0) {
			perror("fsx: cannot make a temporary good file");
			return 1;
		}
		close(fd);
		f.good_tmp = true;
	}
	printf("fsx: %s seed %" PRIu64 " ops %lu maxlen %" PRIu64
	       " maxoplen %" PRIu64 " fsync every %lu%s%s\n",
	       f.path, f.seed, f.numops, f.maxlen, f.maxoplen, f.fsync_every,
	       f.mapread ? "" : " no-mapread",
	       f.mapwrite ? "" : " no-mapwrite");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	open_file(&f, O_CREAT | O_TRUNC);
	check_size(&f);
	for (f.opno = 1; f.opno <= f.numops; f.opno++) {
		do_op(&f);
		if (f.fsync_every && f.opno % f.fsync_every == 0)
			do_fsync(&f);
	}
	f.opno = f.numops;
	/* the end: everything durable, read back whole, checked */
	if (fsync(f.fd) < 0)
		fail_errno(&f, "final fsync");
	check_whole(&f, "final read back");
	if (f.check_cmd)
		run_check(&f, "at the end");
	else if (save_good(&f) < 0)
		fail(&f, "cannot write the good file %s", f.good);
	if (close(f.fd) < 0)
		fail_errno(&f, "final close");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("fsx: %lu operations passed in %.1f s (seed %" PRIu64
	       "): read %lu write %lu mapread %lu mapwrite %lu ftruncate %lu "
	       "truncate %lu reopen %lu rewrite %lu fsync %lu fdatasync %lu; "
	       "%lu checks; final size %" PRIu64 "\n",
	       f.numops,
	       (double)(t1.tv_sec - t0.tv_sec) +
		   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       f.seed, f.count[OP_READ], f.count[OP_WRITE], f.count[OP_MAPREAD],
	       f.count[OP_MAPWRITE], f.count[OP_FTRUNCATE],
	       f.count[OP_TRUNCATE], f.count[OP_REOPEN], f.count[OP_REWRITE],
	       f.count[OP_FSYNC], f.count[OP_FDATASYNC], f.checks, f.size);
	finish(&f);
	free(f.model);
	free(f.buf);
	return 0;
}
