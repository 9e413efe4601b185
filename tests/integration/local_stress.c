/*
 * local_stress.c - concurrent random namespace operations on one directory
 * tree, for integration/test_local_stress.sh.
 *
 *   local_stress [-p procs] [-n ops] [-S seed] [-v] DIR
 *
 *   -p procs   worker processes (default 4)
 *   -n ops     operations per worker (default 2000)
 *   -S seed    PRNG seed (default: from the clock); always printed, and
 *              worker i uses seed + i, so -S repeats a run's choices (not
 *              its interleaving)
 *   -v         print every operation and its result
 *
 * The workers share a small namespace under DIR - names "a" to "d" at
 * every level, three levels deep at most (renames make deeper ones) - so they
 * collide all the time: create (O_CREAT, a few bytes written), write (pwrite at
 * a random offset of an existing file), truncate(2), link, unlink, mkdir, rmdir
 * and rename (of files and directories, across directories, over existing
 * entries). Many calls fail as they would on any disk (ENOENT, EEXIST,
 * ENOTEMPTY, EISDIR, ENOTDIR, EINVAL for a directory into itself, EMLINK ...);
 * only errors no local file system gives for these calls are counted as
 * unexpected: EIO, ESTALE, ENAMETOOLONG, EBADF, EFAULT, ENOMEM, EOVERFLOW,
 * EXDEV, EACCES, EPERM (but for a link to a directory) ...
 *
 * Output: one line per worker, then "local_stress: N ops, N ok, N failed
 * as expected, N unexpected" and per errno counts. Exit: 0 no unexpected
 * error, 1 some (each is printed), 2 usage or setup.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 2	 /* directories above a leaf, at most */
#define NAMES	  "abcd" /* the names used at every level */
#define MAX_ERRNO 256

enum op {
	OP_CREATE,
	OP_WRITE,
	OP_TRUNCATE,
	OP_LINK,
	OP_UNLINK,
	OP_MKDIR,
	OP_RMDIR,
	OP_RENAME,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "create", "write", "truncate", "link", "unlink", "mkdir", "rmdir", "rename",
};

/* relative weights: mkdir often enough that there are directories to use */
static const unsigned op_weight[OP_COUNT] = {4, 2, 2, 2, 3, 4, 2, 5};

struct stats {
	unsigned long ops, ok, expected, unexpected;
	unsigned long err[MAX_ERRNO];
};

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static unsigned rnd(uint64_t *s, unsigned n)
{
	return (unsigned)(rng_next(s) % n);
}

/* A random path under @dir: 0 to MAX_DEPTH directories, then a name. */
static void rnd_path(uint64_t *s, const char *dir, char *buf, size_t size)
{
	unsigned depth = rnd(s, MAX_DEPTH + 1);
	size_t len = (size_t)snprintf(buf, size, "%s", dir);

	for (unsigned i = 0; i <= depth && len + 3 < size; i++) {
		buf[len++] = '/';
		buf[len++] = NAMES[rnd(s, sizeof(NAMES) - 1)];
		buf[len] = '\0';
	}
}

static enum op rnd_op(uint64_t *s)
{
	unsigned total = 0, r;

	for (int i = 0; i < OP_COUNT; i++)
		total += op_weight[i];
	r = rnd(s, total);
	for (int i = 0; i < OP_COUNT; i++) {
		if (r < op_weight[i])
			return (enum op)i;
		r -= op_weight[i];
	}
	return OP_CREATE;
}

static bool errno_expected(enum op op, int e)
{
	if (op == OP_LINK && e == EPERM)
		return true; /* a link to a directory */
	switch (e) {
	case ENOENT:
	case EEXIST:
	case ENOTEMPTY:
	case EISDIR:
	case ENOTDIR:
	case EINVAL: /* rename of a directory into itself */
	case EMLINK:
	case EBUSY: /* rename/rmdir of a directory in use, on some systems */
		return true;
	default:
		return false;
	}
}

/* Run one operation; 0 or an errno. */
static int do_op(uint64_t *s, enum op op, const char *a, const char *b)
{
	char data[512];
	int fd, r = 0;
	size_t n = 1 + rnd(s, sizeof(data));

	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + rnd(s, 26));
	switch (op) {
	case OP_CREATE:
		fd = open(a, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			return errno;
		if (write(fd, data, n) < 0)
			r = errno;
		if (close(fd) < 0 && !r)
			r = errno;
		return r;
	case OP_WRITE:
		fd = open(a, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return errno;
		if (pwrite(fd, data, n, (off_t)rnd(s, 8192)) < 0)
			r = errno;
		if (close(fd) < 0 && !r)
			r = errno;
		return r;
	case OP_TRUNCATE:
		return truncate(a, (off_t)rnd(s, 16384)) < 0 ? errno : 0;
	case OP_LINK:
		return link(a, b) < 0 ? errno : 0;
	case OP_UNLINK:
		return unlink(a) < 0 ? errno : 0;
	case OP_MKDIR:
		return mkdir(a, 0755) < 0 ? errno : 0;
	case OP_RMDIR:
		return rmdir(a) < 0 ? errno : 0;
	case OP_RENAME:
		return rename(a, b) < 0 ? errno : 0;
	default:
		return EINVAL;
	}
}

static void worker(int id, const char *dir, unsigned long nops, uint64_t seed,
		   bool verbose, int out)
{
	struct stats st;
	uint64_t s = seed + (uint64_t)id;
	char a[4096], b[4096];

	memset(&st, 0, sizeof(st));
	if (s == 0)
		s = 1;
	for (int i = 0; i < 16; i++)
		rng_next(&s);
	for (unsigned long i = 0; i < nops; i++) {
		enum op op = rnd_op(&s);
		int e;

		rnd_path(&s, dir, a, sizeof(a));
		rnd_path(&s, dir, b, sizeof(b));
		e = do_op(&s, op, a, b);
		st.ops++;
		if (e == 0)
			st.ok++;
		else if (errno_expected(op, e))
			st.expected++;
		else
			st.unexpected++;
		if (e > 0 && e < MAX_ERRNO)
			st.err[e]++;
		if (verbose || (e && !errno_expected(op, e)))
			printf("%s[%d] %lu %s %s%s%s: %s\n",
			       e && !errno_expected(op, e) ? "UNEXPECTED " : "",
			       id, i, op_names[op], a,
			       op == OP_LINK || op == OP_RENAME ? " -> " : "",
			       op == OP_LINK || op == OP_RENAME ? b : "",
			       e ? strerror(e) : "ok");
	}
	fflush(stdout);
	if (write(out, &st, sizeof(st)) != (ssize_t)sizeof(st))
		_exit(2);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: local_stress [-p procs] [-n ops] [-S seed] [-v] DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long nprocs = 4, nops = 2000;
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
	bool verbose = false;
	struct stats total;
	int c, pfd[2], status = 0;

	while ((c = getopt(argc, argv, "p:n:S:v")) != -1) {
		switch (c) {
		case 'p':
			nprocs = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			nops = strtoul(optarg, NULL, 0);
			break;
		case 'S':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || nprocs == 0 || nprocs > 64)
		usage();
	printf("local_stress: seed %" PRIu64 ", %lu processes x %lu ops\n",
	       seed, nprocs, nops);
	fflush(stdout);
	if (pipe(pfd) < 0) {
		perror("pipe");
		return 2;
	}
	for (unsigned long i = 0; i < nprocs; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			close(pfd[0]);
			worker((int)i, argv[optind], nops, seed, verbose,
			       pfd[1]);
			_exit(0);
		}
	}
	close(pfd[1]);
	memset(&total, 0, sizeof(total));
	for (unsigned long i = 0; i < nprocs; i++) {
		struct stats st;

		if (read(pfd[0], &st, sizeof(st)) != (ssize_t)sizeof(st)) {
			fprintf(stderr, "local_stress: a worker died\n");
			status = 2;
			break;
		}
		total.ops += st.ops;
		total.ok += st.ok;
		total.expected += st.expected;
		total.unexpected += st.unexpected;
		for (int e = 0; e < MAX_ERRNO; e++)
			total.err[e] += st.err[e];
	}
	while (wait(&c) > 0)
		if (!WIFEXITED(c) || WEXITSTATUS(c) != 0)
			status = 2;
	printf("local_stress: %lu ops, %lu ok, %lu failed as expected, "
	       "%lu unexpected\n",
	       total.ops, total.ok, total.expected, total.unexpected);
	for (int e = 1; e < MAX_ERRNO; e++)
		if (total.err[e])
			printf("local_stress:   %s: %lu\n", strerror(e),
			       total.err[e]);
	if (status)
		return status;
	return total.unexpected ? 1 : 0;
}
