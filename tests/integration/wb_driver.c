/*
 * wb_driver.c - a small CLI over the journal and the committer
 * (journal.h, writeback.h), for tests/integration/test_writeback.sh.
 *
 *   wb_driver CACHE_DIR JOURNAL_DIR PROJECT_UUID COMMAND ...
 *     write PATH FILE [BASE [AFTER]]   FILE into the cache, a WRITE entry
 *                                      (based on version BASE, -1: none;
 *                                      chained after op id AFTER, a save
 *                                      made before that one committed),
 *                                      commit it and wait for the result
 *     symlink PATH TARGET [BASE]       a SYMLINK entry, committed
 *     mkdir PATH | delete PATH         MKDIR / DELETE entry, committed
 *     rename OLD NEW                   RENAME entry, committed
 *     append-only COMMAND ...          any of the above, journaled only
 *                                      (a crash before the commit);
 *                                      prints "lseq=N op_id=..."
 *     replay                           commit what the journal holds and
 *                                      wait until it is empty
 *
 * PostgreSQL from $VSYNC_PG_URL. $WB_WAIT_MS bounds the wait (default
 * 10000), $WB_TIMEOUT_MS each backend call (default 2000). $WB_SPARE_FDS=N
 * sets RLIMIT_NOFILE, before the committer starts, to N more than the
 * file descriptors open then: the process runs out of them as a busy
 * agent does (EMFILE).
 *
 * Output (stdout): for a committed entry
 *   "seq=S version=V merged=0|1 conflict=0|1 hash=H"; for a refusal or a
 * timeout "error=-N (ENAME)". replay prints one "committed lseq=..." line
 * per entry and then "pending=N".
 * Exit: 0 committed, 1 refused, 2 usage, 5 timed out (still journaled).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsync/cache.h"
#include "vsync/clock.h"
#include "vsync/journal.h"
#include "vsync/log.h"
#include "vsync/util.h"
#include "vsync/writeback.h"

static const char *const op_names[] = {"write", "symlink", "mkdir", "delete",
				       "rename"};

static int usage(void)
{
	fprintf(stderr,
		"usage: wb_driver CACHE_DIR JOURNAL_DIR PROJECT_UUID COMMAND\n"
		"  write PATH FILE [BASE [AFTER_OP]] | symlink PATH TARGET "
		"[BASE] |\n"
		"  mkdir PATH | delete PATH | rename OLD NEW |\n"
		"  append-only COMMAND ... | replay\n");
	return 2;
}

static int env_int(const char *name, int def)
{
	const char *s = getenv(name);

	return s && *s ? atoi(s) : def;
}

static const char *errname(int r)
{
	const char *n = r < 0 ? strerrorname_np(-r) : NULL;

	return n ? n : "?";
}

static void on_committed(void *arg, const struct vs_jentry *e,
			 const struct vs_wb_result *res)
{
	(void)arg;
	printf("committed lseq=%" PRIu64 " op=%s path=%s seq=%" PRId64
	       " version=%" PRId64 " merged=%d conflict=%d error=%d\n",
	       e->lseq, op_names[e->op], e->path, res->seq, res->version,
	       res->merged, res->conflict, res->error);
	fflush(stdout);
}

/* The last result seen by the callback, for the single-entry commands. */
static struct vs_wb_result last_res;

static void on_committed_keep(void *arg, const struct vs_jentry *e,
			      const struct vs_wb_result *res)
{
	(void)arg;
	(void)e;
	last_res = *res; /* read after vs_wb_wait(): ordered by its mutex */
}

static int read_file(const char *file, char **buf, size_t *len)
{
	int fd, r;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = vs_read_fd_whole(buf, len, fd, SIZE_MAX);
	close(fd);
	return r;
}

static int copy_path(char *dst, const char *src)
{
	if (strlen(src) > VS_PATH_MAX)
		return -ENAMETOOLONG;
	strcpy(dst, src);
	return 0;
}

/* Build the entry of COMMAND args (after the three dirs); 0, or 2 for a
 * usage error, or -errno. */
static int make_entry(struct vs_cache *cache, struct vs_jentry *e, int argc,
		      char **argv)
{
	const char *cmd = argv[0];
	char *buf = NULL;
	size_t len = 0;
	int r;

	memset(e, 0, sizeof(*e));
	e->base_version = -1;
	if (!strcmp(cmd, "write") && argc >= 3 && argc <= 5) {
		struct stat st;

		e->op = VS_JOP_WRITE;
		if (stat(argv[2], &st) < 0)
			return -errno;
		r = read_file(argv[2], &buf, &len);
		if (r == 0)
			r = vs_journal_put_content(cache, buf, len, -1,
						   e->hash);
		free(buf);
		if (r < 0)
			return r;
		e->size = len;
		e->mode = st.st_mode & 07777;
		if (argc >= 4)
			e->base_version = strtoll(argv[3], NULL, 10);
		if (argc == 5) {
			if (!vs_uuid_valid(argv[4]))
				return 2;
			memcpy(e->after_op, argv[4], VS_UUID_BUFSZ);
		}
		return copy_path(e->path, argv[1]);
	}
	if (!strcmp(cmd, "symlink") && (argc == 3 || argc == 4)) {
		e->op = VS_JOP_SYMLINK;
		e->mode = 0777;
		if (argc == 4)
			e->base_version = strtoll(argv[3], NULL, 10);
		if ((r = copy_path(e->target, argv[2])) < 0)
			return r;
		return copy_path(e->path, argv[1]);
	}
	if ((!strcmp(cmd, "mkdir") || !strcmp(cmd, "delete")) && argc == 2) {
		e->op = cmd[0] == 'm' ? VS_JOP_MKDIR : VS_JOP_DELETE;
		e->mode = e->op == VS_JOP_MKDIR ? 0755 : 0;
		return copy_path(e->path, argv[1]);
	}
	if (!strcmp(cmd, "rename") && argc == 3) {
		e->op = VS_JOP_RENAME;
		if ((r = copy_path(e->old_path, argv[1])) < 0)
			return r;
		return copy_path(e->path, argv[2]);
	}
	return 2;
}

/* RLIMIT_NOFILE such that exactly @spare descriptors are free below it
 * (the kernel hands out the lowest free one). 0 or -errno. */
static int limit_fds(int spare)
{
	struct rlimit rl;
	int fd, nfree = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	for (fd = 0; (rlim_t)fd < rl.rlim_cur; fd++)
		if (fcntl(fd, F_GETFD) < 0 && nfree++ == spare)
			break;
	rl.rlim_cur = (rlim_t)fd;
	return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	struct vs_cache cache = {.dir_fd = -1};
	struct vs_journal *journal = NULL;
	struct vs_writeback *wb = NULL;
	struct vs_jentry *e = NULL;
	struct vs_wb_config cfg = {0};
	char author[300], host[256] = "?";
	int wait_ms = env_int("WB_WAIT_MS", 10000);
	int dir_fd = -1, status = 1, r;
	bool append_only = false, replay = false;

	vs_log_set_prog("wb_driver");
	if (argc < 5)
		return usage();
	if (!strcmp(argv[4], "append-only")) {
		append_only = true;
		memmove(&argv[4], &argv[5], (size_t)(argc - 4) * sizeof(*argv));
		argc--;
		if (argc < 5 || !strcmp(argv[4], "replay"))
			return usage();
	}
	replay = !strcmp(argv[4], "replay");
	if (replay && argc != 5)
		return usage();
	if (vs_cache_init(&cache, argv[1]) < 0)
		return 1;
	if ((mkdir(argv[2], 0700) < 0 && errno != EEXIST) ||
	    (dir_fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "wb_driver: %s: %s\n", argv[2],
			strerror(errno));
		goto out;
	}
	r = vs_journal_open(&journal, dir_fd, &cache);
	if (r < 0) {
		fprintf(stderr, "wb_driver: journal: %s\n", strerror(-r));
		goto out;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		goto out;
	if (!replay) {
		r = make_entry(&cache, e, argc - 4, argv + 4);
		if (r == 2) {
			status = usage();
			goto out;
		}
		if (r == 0)
			r = vs_journal_append(journal, e);
		if (e->op == VS_JOP_WRITE) /* pinned by put_content */
			vs_cache_unpin(&cache, e->hash);
		if (r == 0)
			r = vs_journal_sync(journal, e->lseq);
		if (r < 0) {
			printf("error=%d (%s)\n", r, errname(r));
			goto out;
		}
		if (append_only) {
			printf("lseq=%" PRIu64 " op_id=%s\n", e->lseq,
			       e->op_id);
			status = 0;
			goto out;
		}
	}
	gethostname(host, sizeof(host) - 1);
	snprintf(author, sizeof(author), "container:%s", host);
	cfg.pg = getenv("VSYNC_PG_URL");
	cfg.project_id = argv[3];
	cfg.author = author;
	cfg.timeout_ms = env_int("WB_TIMEOUT_MS", 2000);
	cfg.cache = &cache;
	cfg.journal = journal;
	cfg.committed = replay ? on_committed : on_committed_keep;
	if (getenv("WB_SPARE_FDS") &&
	    (r = limit_fds(env_int("WB_SPARE_FDS", 0))) < 0) {
		fprintf(stderr, "wb_driver: setrlimit: %s\n", strerror(-r));
		goto out;
	}
	r = vs_wb_start(&wb, &cfg);
	if (r < 0) {
		fprintf(stderr, "wb_driver: cannot start: %s\n", strerror(-r));
		goto out;
	}
	vs_wb_kick(wb);
	if (replay) {
		int64_t until = vs_mono_ms() + wait_ms;

		while (vs_journal_pending(journal) > 0 && vs_mono_ms() < until)
			usleep(20000);
		vs_wb_stop(wb);
		wb = NULL;
		printf("pending=%zu\n", vs_journal_pending(journal));
		status = vs_journal_pending(journal) ? 5 : 0;
		goto out;
	}
	r = vs_wb_wait(wb, e->lseq, wait_ms);
	if (r < 0) {
		printf("error=%d (%s) pending=%zu\n", r, errname(r),
		       vs_journal_pending(journal));
		status = r == -ETIMEDOUT ? 5 : 1;
		goto out;
	}
	printf("seq=%" PRId64 " version=%" PRId64 " merged=%d conflict=%d "
	       "hash=%s\n",
	       last_res.seq, last_res.version, last_res.merged,
	       last_res.conflict, last_res.hash);
	status = 0;
out:
	fflush(stdout);
	vs_wb_stop(wb);
	vs_journal_free(journal);
	if (dir_fd >= 0)
		close(dir_fd);
	vs_cache_release(&cache);
	free(e);
	return status;
}
