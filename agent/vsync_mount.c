/*
 * vsync_mount.c - vsync-mount: show a vsync project as a directory.
 *
 * Lifecycle: parse options; check that /dev/fuse and the mountpoint are
 * usable; load the manifest from PostgreSQL (or, when the database cannot
 * be reached, the copy saved in the cache dir by the last mount); build the
 * inode table; mount and serve until unmounted or signalled. Every failure
 * before the mount is one line naming the cause, and leaves no mount.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <glob.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "mount_opts.h"
#include "vsync/clock.h"
#include "vsync/cache.h"
#include "vsync/content.h"
#include "vsync/fs.h"
#include "vsync/log.h"
#include "vsync/manifest.h"
#include "vsync/pg.h"
#include "vsync/subscriber.h"
#include "vsync/journal.h"
#include "vsync/writeback.h"
#include "vsync/control.h"
#include "vsync/metrics.h"
#include "vsync/prefetch.h"
#include "vsync/redis.h"
#include "vsync/change.h"
#include "vsync/sign.h"
#include "vsync/status.h"
#include "vsync/tree.h"
#include "vsync/util.h"
#include "vsync/events.h"
#include "vsync/evict.h"
#include "vsync/banned.h"

static const char *env_get(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] ? v : NULL;
}

static void fuse_log_to_vs(enum fuse_log_level level, const char *fmt,
			   va_list ap)
{
	enum vs_log_level l = VS_LOG_DEBUG;

	if (level <= FUSE_LOG_ERR)
		l = VS_LOG_ERROR;
	else if (level <= FUSE_LOG_WARNING)
		l = VS_LOG_WARN;
	else if (level <= FUSE_LOG_INFO)
		l = VS_LOG_INFO;
	vs_vlog(l, fmt, ap);
}

/* The mountpoint must be an existing, empty directory that is not already
 * a mount. */
static int check_mountpoint(const char *mnt)
{
	struct stat st, parent;
	char up[4096];
	int fd, n = 0;
	DIR *d;

	if (stat(mnt, &st) < 0) {
		vs_error("cannot mount on '%s': %s", mnt, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		vs_error("cannot mount on '%s': not a directory", mnt);
		return -ENOTDIR;
	}
	snprintf(up, sizeof(up), "%s/..", mnt);
	if (stat(up, &parent) == 0 &&
	    (parent.st_dev != st.st_dev || parent.st_ino == st.st_ino)) {
		vs_error("cannot mount on '%s': already a mount point (busy)",
			 mnt);
		return -EBUSY;
	}
	fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		vs_error("cannot mount on '%s': %s", mnt, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	if (n) {
		vs_error("cannot mount on '%s': directory not empty", mnt);
		return -ENOTEMPTY;
	}
	return 0;
}

/* One mount per cache dir: two would clobber each other's journal
 * entries and local-only files (@file "lock"). A mount --at locks its own
 * state dir's instead (@file "projects/<key>/lock"). 0, or -errno with
 * the reason logged. */
static int lock_cache_dir(struct vs_cache *cache, const char *file, int *fd_out)
{
	pid_t holder;
	int r = vs_cache_lock(cache, file, fd_out, &holder);

	if (r == -EWOULDBLOCK && holder > 0)
		vs_error("cache dir '%s' is in use by another vsync-mount "
			 "(pid %d)",
			 cache->dir, (int)holder);
	else if (r == -EWOULDBLOCK)
		vs_error("cache dir '%s' is in use by another vsync-mount",
			 cache->dir);
	else if (r < 0)
		vs_error("cannot lock cache dir '%s': %s", cache->dir,
			 strerror(-r));
	return r;
}

/* Is this error one where the saved manifest may stand in for the
 * database? */
static bool backend_unreachable(int r)
{
	return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EIO ||
	       r == -ECONNRESET || r == -EHOSTUNREACH;
}

/* Save @m in the cache dir so a mount works while the backends are down. */
static void save_manifest(const struct vs_mount_opts *o, struct vs_cache *cache,
			  const char *id, const struct vs_manifest *m)
{
	char *buf = NULL;
	size_t len = 0;

	vs_cache_project_link(cache, o->project, id);
	if (vs_manifest_serialize(m, &buf, &len) == 0)
		vs_cache_project_write(cache, id, "manifest", buf, len);
	free(buf);
}

/* A bad Redis URL (rediss:// among them) is a start-up error, not a
 * Redis that is down: say why and exit before mounting. */
static int check_redis_url(const char *url)
{
	struct vs_redis_url u;
	char why[256];

	if (vs_redis_url_parse(&u, url, why, sizeof(why)) < 0) {
		fprintf(stderr, "vsync-mount: invalid Redis URL: %s\n", why);
		return -EINVAL;
	}
	return 0;
}

/*
 * A cold start reads no database: when the project's UUID is known (given;
 * for a name, the relay's name:{<name>} in Redis, verified like the
 * manifest, else what this cache dir has seen) and Redis has the relay's
 * manifest, that is the tree. 0, or -errno (the caller goes on to
 * PostgreSQL).
 */
static int load_manifest_redis(const struct vs_mount_opts *o,
			       struct vs_cache *cache,
			       const struct vs_sign_key *verify,
			       struct vs_manifest *m, char id[VS_UUID_BUFSZ],
			       char **index, size_t *index_len)
{
	struct vs_redis *rd = NULL;
	const char *what = "one signature per entry";
	int r;

	if (!o->redis)
		return -ENOENT;
	r = vs_redis_open(&rd, o->redis, o->timeout_ms);
	if (r == 0 && vs_uuid_valid(o->project))
		memcpy(id, o->project, VS_UUID_BUFSZ);
	else if (r == 0 && vs_redis_name_get(rd, o->project, verify, id) < 0 &&
		 vs_cache_project_resolve(cache, o->project, id) < 0)
		r = -ENOENT;
	/* the tree snapshot (one value, one signature), else the
	 * manifest hash (a signature per entry) */
	if (r == 0 &&
	    vs_redis_tree_load(rd, id, verify, m, index, index_len) == 0)
		what = "the tree: one signature";
	else if (r == 0)
		r = vs_redis_manifest_load(rd, id, verify, m);
	vs_redis_free(rd);
	if (r == 0)
		vs_info("project '%s' (%s): %zu entries at change %lld from "
			"Redis (%s)",
			o->project, id, m->n, (long long)m->seq, what);
	return r;
}

/* Connect to PostgreSQL (*@pg, kept for the caller's error message even
 * on failure) and resolve o->project into @id. -ENOENT (logged) for an
 * unknown project; other -errno from the connection. */
static int pg_project(const struct vs_mount_opts *o, struct vs_pg **pg,
		      char id[VS_UUID_BUFSZ])
{
	/* not vs_pg_open(): the handle keeps libpq's reason for the errors
	 * (a refused certificate, a wrong password) */
	int r = vs_pg_new(pg, o->pg, o->timeout_ms);

	if (r == 0)
		r = vs_pg_ensure(*pg);
	if (r == -ENOENT) /* (a connection error, not the project) */
		r = -ECONNREFUSED;
	if (r == 0) {
		r = vs_pg_project_resolve(*pg, o->project, id);
		if (r == -ENOENT)
			vs_error("cannot mount: unknown project '%s'",
				 o->project);
	}
	return r;
}

/*
 * Load the manifest of @project into @m and its UUID into @id: from Redis
 * (a cold start), else PostgreSQL, else - when the database is unreachable
 * - the copy saved in the cache dir. The bundle index of Redis's tree, if
 * any, in *@index (malloc'd; NULL when none). 0 or -errno, with the
 * reason logged.
 */
static int load_manifest(const struct vs_mount_opts *o, struct vs_cache *cache,
			 const struct vs_sign_key *verify,
			 struct vs_manifest *m, char id[VS_UUID_BUFSZ],
			 char **index, size_t *index_len)
{
	struct vs_pg *pg = NULL;
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (load_manifest_redis(o, cache, verify, m, id, index, index_len) ==
	    0) {
		save_manifest(o, cache, id, m);
		return 0;
	}
	r = o->pg || env_get("PGHOST") || env_get("PGDATABASE")
		? pg_project(o, &pg, id)
		: -ECONNREFUSED;
	if (r == -ENOENT)
		goto out; /* logged */
	if (r == 0) {
		r = vs_pg_manifest_load(pg, id, m);
		if (r == 0) {
			save_manifest(o, cache, id, m);
			vs_info("project '%s' (%s): %zu entries at change %lld "
				"from PostgreSQL",
				o->project, id, m->n, (long long)m->seq);
			goto out;
		}
	}
	if (r == -EACCES) {
		vs_error("cannot mount: PostgreSQL refused the connection: %s",
			 pg && vs_pg_last_error(pg)[0]
			     ? vs_pg_last_error(pg)
			     : "authentication failed");
		goto out;
	}
	if (!backend_unreachable(r)) {
		vs_error("cannot mount '%s': %s", o->project,
			 pg && vs_pg_last_error(pg)[0] ? vs_pg_last_error(pg)
						       : strerror(-r));
		goto out;
	}
	/* the database is unreachable: serve the last manifest we saw */
	if (vs_cache_project_resolve(cache, o->project, id) < 0 ||
	    vs_cache_project_read(cache, id, "manifest", &buf, &len) < 0) {
		vs_error(
		    "cannot mount '%s': PostgreSQL unreachable (%s) and no "
		    "cached manifest in '%s'",
		    o->project,
		    pg && vs_pg_last_error(pg)[0] ? vs_pg_last_error(pg)
						  : strerror(-r),
		    o->cache_dir);
		goto out;
	}
	r = vs_manifest_parse(m, buf, len);
	free(buf);
	if (r < 0) {
		vs_error("cannot mount '%s': PostgreSQL unreachable and the "
			 "cached manifest is damaged",
			 o->project);
		goto out;
	}
	vs_warn("PostgreSQL unreachable (%s): mounting '%s' from the cached "
		"manifest (change %lld); files not cached will fail with EIO",
		pg && vs_pg_last_error(pg)[0] ? vs_pg_last_error(pg)
					      : strerror(-r),
		o->project, (long long)m->seq);
out:
	vs_pg_free(pg);
	return r;
}

/*
 * --at: the tree of @project right after the change o->at names (a seq, or
 * the last change at or before a time), from PostgreSQL (Redis keeps no
 * history); m->seq is that change. 0 or -errno, with the reason logged.
 */
static int load_manifest_at(const struct vs_mount_opts *o,
			    struct vs_manifest *m, char id[VS_UUID_BUFSZ])
{
	struct vs_pg *pg = NULL;
	int64_t seq = 0;
	int r;

	r = pg_project(o, &pg, id);
	if (r == -ENOENT)
		goto out; /* logged */
	if (r == 0)
		r = vs_pg_seq_at(pg, id, o->at, &seq);
	if (r == -EINVAL) {
		vs_error("cannot mount '%s' --at '%s': neither a change seq "
			 "nor a time",
			 o->project, o->at);
		goto out;
	}
	if (r == 0)
		r = vs_pg_manifest_load_at(pg, id, seq, m);
	if (r == 0)
		vs_info("project '%s' (%s) as at change %lld: %zu entries, "
			"read-only",
			o->project, id, (long long)seq, m->n);
	else
		vs_error("cannot mount '%s' --at '%s': %s", o->project, o->at,
			 pg && vs_pg_last_error(pg)[0] ? vs_pg_last_error(pg)
						       : strerror(-r));
out:
	vs_pg_free(pg);
	return r;
}

/*
 * The learned list of the project: from Redis (what any container learned
 * last), else the cache dir. Parsed by vs_learned_parse(): bounded (any
 * container of the project can write it), lines that are not valid paths
 * dropped. Returns a malloc'd array of malloc'd paths in *out (NULL, 0 if
 * none).
 */
static void load_learned(const struct vs_mount_opts *o, struct vs_cache *cache,
			 const char *id, char ***out, size_t *n)
{
	struct vs_redis *rd = NULL;
	char *text = NULL;
	size_t len = 0;

	*out = NULL;
	*n = 0;
	if (o->redis && vs_redis_open(&rd, o->redis, o->timeout_ms) == 0)
		vs_redis_learned_get(rd, id, &text, &len);
	vs_redis_free(rd);
	if (!text &&
	    vs_cache_project_read(cache, id, "learned", &text, &len) < 0)
		return;
	(void)vs_learned_parse(text, len, out, n);
	free(text);
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * Every inode the kernel keeps holds an fd here (a local-only one its own
 * O_PATH and read-write fds, a synced one read its content's): raise the
 * soft limit to the hard one, and say so when that is below
 * MOUNT_FD_LIMIT_LOW (the hard limit is the operator's: it is not raised
 * here; container/entrypoint.sh raises it as root). And load libgcc_s
 * now: glibc loads it at the first pthread_cancel or pthread_exit
 * (libfuse's worker threads, at the stop), and aborts the process if it
 * cannot - which it cannot once every fd is taken (seen: a mount out of
 * fds aborted at its unmount, with its journal still holding what it had
 * saved).
 */
#define MOUNT_FD_LIMIT_LOW 65536

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < MOUNT_FD_LIMIT_LOW)
		vs_warn("open files limited to %llu: every local-only file "
			"the kernel keeps cached (node_modules/ ...) holds an "
			"fd, about two once written, and a lookup past the "
			"limit fails with EMFILE; raise the hard RLIMIT_NOFILE "
			"(ulimit -Hn as root, docker run --ulimit nofile=, "
			"systemd LimitNOFILE=)",
			(unsigned long long)rl.rlim_cur);
	if (!dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NODELETE))
		vs_debug("cannot load libgcc_s.so.1: %s", dlerror());
}

/* What the mount's callbacks and threads need. */
struct mount_ctx {
	const struct vs_mount_opts *o;
	int log_fd;	  /* --log-file, kept open */
	int daemon_fd;	  /* write end of the pipe to the waiting parent */
	int64_t start_ms; /* when main() started (monotonic) */
	struct vs_cache *cache;
	struct vs_fs *fs;
	struct vs_sub *sub;
	struct vs_prefetch *prefetch;
	struct vs_prefetch_plan plan;  /* moved into the prefetcher at start */
	struct vs_bundle_ref *bundles; /* the tree's (tree.h); copied by it */
	size_t nbundles;
	size_t ncritical;
	struct vs_control *control;
	struct vs_journal *journal; /* --writable */
	int journal_fd;		    /* its directory */
	struct vs_writeback *wb;
	struct vs_sign_key *verify; /* --verify-key; NULL: Redis trusted */
	struct vs_content *content;
	/* the follower heartbeats on its own Redis connection (follower_tick):
	 * the keeper no longer does */
	atomic_bool follower_beats;
	/* the last heartbeat member sent (presence), by the keeper or the
	 * follower */
	pthread_mutex_t beat_lock;
	char beat_last[VS_BEAT_MAX + 1];
	char author[128];
	char id[VS_UUID_BUFSZ];
	int64_t seq;
	/* the control file, relative to the cache dir: "control", or
	 * "projects/<uuid>@<seq>/control" for a mount --at */
	char control_file[VS_UUID_BUFSZ + 48];

	/* housekeeping thread: saves the learned list, reads the head and
	 * heartbeats the container registration */
	pthread_t keeper;
	bool keeper_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;	/* protected by lock */
	bool beat_soon; /* protected by lock: a change was applied */
	bool following; /* the follower was started (set before it is) */
	/* the control endpoint's /status thread's own connections */
	struct head_reader *ctl_reader;
};

/*
 * --writable: the journal (projects/<id>/journal) and the directory of
 * working copies (projects/<id>/work) in the cache dir. 0 or -errno,
 * logged.
 */
static int open_writable(const struct vs_mount_opts *o, struct vs_cache *cache,
			 const char *id, struct mount_ctx *ctx,
			 struct vs_fs_config *cfg)
{
	char host[64] = "unknown";
	int jfd = -1, wfd = -1, r;

	r = vs_cache_project_dir(cache, id, "journal", &jfd);
	if (r == 0)
		r = vs_cache_project_dir(cache, id, "work", &wfd);
	if (r == 0)
		r = vs_journal_open(&ctx->journal, jfd, cache);
	if (r < 0) {
		if (jfd >= 0)
			close(jfd);
		if (wfd >= 0)
			close(wfd);
		vs_error("cannot open the journal of '%s' in '%s': %s",
			 o->project, o->cache_dir, strerror(-r));
		return r;
	}
	gethostname(host, sizeof(host) - 1);
	snprintf(ctx->author, sizeof(ctx->author), "%s",
		 o->author ? o->author : "");
	if (!o->author)
		snprintf(ctx->author, sizeof(ctx->author), "container:%s",
			 host);
	ctx->journal_fd = jfd; /* borrowed by the journal: kept open */
	cfg->journal = ctx->journal;
	cfg->cache = cache;
	cfg->work_fd = wfd;
	cfg->max_file_size = (uint64_t)o->max_file_size;
	cfg->save_quiet_ms = o->save_quiet_ms;
	return 0;
}

/*
 * The cache bound (evict.h): --cache-max, or by default
 * VS_MOUNT_CACHE_MAX_DEFAULT, lowered to a quarter of the cache dir's file
 * system when that is smaller (the rest is for working copies, the
 * journal, local-only files and whatever else shares the volume). Only
 * the mount that holds the cache dir's lock evicts (not a mount --at).
 * Logged; a failure leaves the cache unbounded.
 */
static void start_evictor(const struct vs_mount_opts *o, struct vs_cache *cache,
			  struct vs_evict **out)
{
	struct vs_evict_config ec = {.cache = cache};
	struct statvfs sv;
	int r;

	if (o->cache_max == 0) {
		vs_info("cache: unbounded (--cache-max 0)");
		return;
	}
	ec.max = o->cache_max > 0 ? (uint64_t)o->cache_max
				  : (uint64_t)VS_MOUNT_CACHE_MAX_DEFAULT;
	if (o->cache_max < 0 && fstatvfs(cache->dir_fd, &sv) == 0 &&
	    (uint64_t)sv.f_blocks * sv.f_frsize / 4 < ec.max)
		ec.max = (uint64_t)sv.f_blocks * sv.f_frsize / 4;
	if (ec.max == 0)
		ec.max = 1;
	r = vs_evict_start(out, &ec);
	if (r < 0)
		vs_error("cannot start the cache evictor: %s; the cache is "
			 "unbounded",
			 strerror(-r));
	else
		vs_info("cache: content objects kept under %llu bytes",
			(unsigned long long)ec.max);
}

/* Ask the keeper for a heartbeat soon (it sends at most one a second). */
static void beat_soon(struct mount_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	if (!ctx->beat_soon) {
		ctx->beat_soon = true;
		pthread_cond_signal(&ctx->cond);
	}
	pthread_mutex_unlock(&ctx->lock);
}

static int apply_change(void *arg, const struct vs_change *c)
{
	struct mount_ctx *ctx = arg;
	int r = vs_fs_apply(ctx->fs, c);

	if (r == 0) {
		int64_t now = vs_wall_ms(),
			commit = c->state.mtime_ns / 1000000;

		vs_metrics_change_applied(c->seq);
		/* mtime_ns is the change's time in PostgreSQL (status.c) */
		vs_status_applied(c->seq, commit, now);
		vs_events_change(c->seq, vs_change_op_name(c->op), c->path,
				 c->op == VS_OP_RENAME ? c->old_path : NULL,
				 commit <= 0	? -1
				 : now > commit ? now - commit
						: 0);
		/* a conflict this mount made is announced when its save is
		 * committed (on_committed), not again when it comes back */
		if (c->conflict &&
		    !(ctx->journal && !strcmp(c->author, ctx->author)))
			vs_events_conflict(c->path, c->seq, c->conflict, false);
		vs_status_remote(c->path,
				 c->op == VS_OP_RENAME ? c->old_path : NULL);
		beat_soon(ctx);
	}
	return r;
}

/*
 * The critical files are local (called once, on the prefetch thread):
 * tell whoever waits - the ready file, the notify fd, the parent of a
 * daemon, /readyz.
 */
static void on_critical_ready(void *arg, size_t missing)
{
	struct mount_ctx *ctx = arg;
	const struct vs_mount_opts *o = ctx->o;
	int64_t ms = vs_mono_ms() - ctx->start_ms;

	vs_metrics_ready((uint64_t)ms);
	vs_events_ready(ms);
	vs_info("ready in %lld ms (%zu critical files local%s)", (long long)ms,
		ctx->ncritical - missing, missing ? ", some missing" : "");
	if (o->ready_file) {
		int fd = open(o->ready_file,
			      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0)
			vs_warn("cannot create ready file '%s': %s",
				o->ready_file, strerror(errno));
		else
			close(fd);
	}
	if (o->notify_fd >= 0) {
		if (write(o->notify_fd, "READY=1\n", 8) != 8)
			vs_warn("cannot write to notify fd %d: %s",
				o->notify_fd, strerror(errno));
		close(o->notify_fd);
	}
	if (ctx->daemon_fd >= 0) {
		/* the parent exits 0 now; the daemon lets go of the
		 * terminal */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (write(ctx->daemon_fd, "R", 1) != 1)
			vs_warn("cannot signal readiness: %s", strerror(errno));
		close(ctx->daemon_fd);
		ctx->daemon_fd = -1;
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(ctx->log_fd >= 0 ? ctx->log_fd : null,
			     STDERR_FILENO);
			close(null);
		}
	}
}

/* Save the learned list (cache dir and Redis, for the next cold mount). */
static void save_learned(struct mount_ctx *ctx)
{
	struct vs_redis *rd = NULL;
	char **paths = NULL, *text = NULL;
	size_t n = 0, len = 0, size;

	vs_fs_learned(ctx->fs, &paths, &n);
	if (!n)
		goto out;
	for (size_t i = 0; i < n; i++)
		len += strlen(paths[i]) + 1;
	size = len + 1;
	text = malloc(size);
	if (!text)
		goto out;
	len = 0;
	for (size_t i = 0; i < n; i++)
		len +=
		    (size_t)snprintf(text + len, size - len, "%s\n", paths[i]);
	vs_cache_project_write(ctx->cache, ctx->id, "learned", text, len);
	if (ctx->o->redis &&
	    vs_redis_open(&rd, ctx->o->redis, ctx->o->timeout_ms) == 0 &&
	    vs_redis_learned_put(rd, ctx->id, text, len) < 0)
		vs_warn("cannot store the learned list in Redis: %s",
			vs_redis_last_error(rd));
	vs_redis_free(rd);
	vs_info("learned the first %zu files read", n);
out:
	free(text);
	free_strings(paths, n);
}

/* ---- sync state (status.h) ------------------------------------------ */

/* Connections one thread reads the head with (never shared). */
struct head_reader {
	struct vs_pg *pg;
	struct vs_redis *rd;
};

static void head_reader_release(struct head_reader *h)
{
	vs_pg_free(h->pg);
	vs_redis_free(h->rd);
	h->pg = NULL;
	h->rd = NULL;
}

/* The head from PostgreSQL, with the commit time of the first change not
 * applied. 0 or -errno, with the reason in @why. */
static int head_from_pg(struct mount_ctx *ctx, struct head_reader *h, char *why,
			size_t whylen)
{
	char after[24];
	const char *v[2] = {ctx->id, after};
	PGresult *res = NULL;
	int64_t head = 0, ns = 0, applied = vs_status_get_applied();
	int r;

	snprintf(after, sizeof(after), "%lld", (long long)applied);
	if (!h->pg) {
		r = vs_pg_open(&h->pg, ctx->o->pg, ctx->o->timeout_ms);
		if (r < 0) {
			snprintf(why, whylen, "postgres: %s", strerror(-r));
			return r;
		}
	}
	r = vs_pg_exec(h->pg, &res,
		       "SELECT vsync_project_seq($1::uuid), "
		       "(SELECT mtime_ns FROM vsync_change_feed($1::uuid, "
		       "$2::bigint, 1))",
		       2, v, NULL, NULL, 0);
	if (r == 0 &&
	    (PQntuples(res) != 1 ||
	     vs_parse_i64(&head, PQgetvalue(res, 0, 0), 10, 0, INT64_MAX) < 0))
		r = -EBADMSG;
	if (r == 0 && !PQgetisnull(res, 0, 1) &&
	    vs_parse_i64(&ns, PQgetvalue(res, 0, 1), 10, 0, INT64_MAX) < 0)
		ns = 0;
	if (r < 0) {
		snprintf(why, whylen, "postgres: %s",
			 vs_pg_last_error(h->pg)[0] ? vs_pg_last_error(h->pg)
						    : strerror(-r));
		vs_pg_free(h->pg);
		h->pg = NULL;
	} else {
		vs_status_head(head, "postgres", applied + 1, ns / 1000000,
			       vs_wall_ms());
	}
	if (res)
		PQclear(res);
	return r;
}

/* The head as the relay's cursor in Redis says (what the stream holds). */
/* The head from the relay's cursor in Redis, on h->rd (opened if NULL;
 * closed on a failure unless @borrowed: the follower's). */
static int head_from_redis(struct mount_ctx *ctx, struct head_reader *h,
			   char *why, size_t whylen, bool borrowed)
{
	char key[VS_REDIS_KEY_MAX];
	const char *argv[] = {"GET", key};
	redisReply *rep = NULL;
	int64_t head = 0;
	int r;

	if (!h->rd) {
		r = vs_redis_open(&h->rd, ctx->o->redis, ctx->o->timeout_ms);
		if (r < 0) {
			snprintf(why, whylen, "redis: %s", strerror(-r));
			vs_redis_free(h->rd);
			h->rd = NULL;
			return r;
		}
	}
	vs_redis_key_cursor(key, ctx->id);
	r = vs_redis_command(h->rd, &rep, 2, argv, NULL);
	if (r < 0) {
		snprintf(why, whylen, "redis: %s", vs_redis_last_error(h->rd));
		if (!borrowed) {
			vs_redis_free(h->rd);
			h->rd = NULL;
		}
		return r;
	}
	if (rep->type == REDIS_REPLY_NIL) {
		snprintf(why, whylen,
			 "redis: no relay cursor (has a relay "
			 "published this project?)");
		r = -ENOENT;
	} else if (rep->type != REDIS_REPLY_STRING ||
		   vs_parse_i64_n(&head, rep->str, rep->len, 10, 0, INT64_MAX) <
		       0) {
		snprintf(why, whylen, "redis: the relay cursor is not a seq");
		r = -EBADMSG;
	} else {
		vs_status_head(head, "redis", 0, 0, vs_wall_ms());
	}
	freeReplyObject(rep);
	return r;
}

/*
 * Read the project's head and record it (vs_status_head): from
 * PostgreSQL when @use_pg and there is one (the truth), else - or when it
 * fails - the relay's cursor in Redis. Why neither worked goes to
 * vs_status_head_failed().
 */
static void read_head(struct mount_ctx *ctx, struct head_reader *h, bool use_pg)
{
	char why[160] = "", why2[160] = "";

	if (use_pg && ctx->o->pg && head_from_pg(ctx, h, why, sizeof(why)) == 0)
		return;
	if (ctx->o->redis &&
	    head_from_redis(ctx, h, why2, sizeof(why2), false) == 0)
		return;
	if (!ctx->o->pg && !ctx->o->redis)
		snprintf(why, sizeof(why), "neither --pg nor --redis");
	vs_status_head_failed(why[0] && why2[0] ? why : why[0] ? why : why2);
}

/* Is the mount ready to serve (/readyz)? The critical files are local and
 * the change follower is not known to be down (or was not asked for). */
static bool mount_ready(void *arg, char *why, size_t whylen)
{
	struct mount_ctx *ctx = arg;

	if (!vs_metrics_is_ready()) {
		snprintf(why, whylen, "critical files not local yet");
		return false;
	}
	if (ctx->following && vs_status_following_state() == 0) {
		snprintf(why, whylen,
			 "not following changes (backends unreachable)");
		return false;
	}
	return true;
}

/* GET /status, on the control endpoint's /status thread: read the head now
 * (from PostgreSQL when there is one), then the snapshot. */
static int mount_status(void *arg, char **body, size_t *len)
{
	struct mount_ctx *ctx = arg;
	struct vs_status_snap s;
	char why[128];
	int r;

	read_head(ctx, ctx->ctl_reader, true);
	r = vs_status_snapshot(&s, ctx->journal,
			       mount_ready(ctx, why, sizeof(why)));
	if (r < 0)
		return r;
	r = vs_status_json(&s, ctx->o->project, ctx->id, ctx->o->mountpoint,
			   body, len);
	vs_status_snap_release(&s);
	return r;
}

/* Before a scrape: the gauges of the sync state (no backend call). */
static void mount_refresh(void *arg)
{
	struct mount_ctx *ctx = arg;
	struct vs_status_snap s;

	if (vs_status_snapshot(&s, ctx->journal, false) == 0)
		vs_status_snap_release(&s);
}

/*
 * Register this agent in containers:{id}: a sorted set scored by expiry,
 * one member per agent, the JSON of vs_beat_format() (its applied seq and
 * state). The member changes with the state, so the previous one (@last)
 * is removed once the new one is there (a reader never finds the agent
 * missing; it keeps the newest member of each host:pid:mount, and an
 * agent that died leaves one until its score passes). False if Redis
 * could not be told (the caller tries again soon). Only ZADD, ZREM
 * and EXPIRE on containers:{id}: what a container's Redis user may do
 * (docs/security.md).
 */
static bool presence(struct mount_ctx *ctx, struct vs_redis **rd, bool leave,
		     char last[VS_BEAT_MAX + 1], bool borrowed)
{
	char key[VS_REDIS_KEY_MAX], member[VS_BEAT_MAX + 1], score[32];
	const char *add[] = {"ZADD", key, score, member};
	const char *rem[] = {"ZREM", key, last};
	const char *expire[] = {"EXPIRE", key, "120"};
	struct vs_beat b = {.pid = (long)getpid()};
	struct vs_status_snap s;
	redisReply *rep = NULL;

	if (!ctx->o->redis || ctx->o->at) /* --at follows nothing */
		return true;
	if (!*rd && (borrowed || vs_redis_open(rd, ctx->o->redis,
					       ctx->o->timeout_ms) < 0)) {
		vs_redis_free(*rd);
		*rd = NULL;
		return false;
	}
	vs_redis_key_containers(key, ctx->id);
	if (leave) {
		if (last[0] && vs_redis_command(*rd, &rep, 3, rem, NULL) == 0)
			freeReplyObject(rep);
		return true;
	}
	gethostname(b.host, sizeof(b.host) - 1);
	snprintf(b.mount, sizeof(b.mount), "%s", ctx->o->mountpoint);
	if (vs_status_snapshot_quick(&s, ctx->journal, false) < 0)
		return false;
	b.seq = s.applied_seq;
	b.head = s.head_seq;
	b.state = s.state;
	b.pending = (int64_t)s.pending;
	b.diverged = (int64_t)s.ndiverged;
	b.lag_ms = s.lag_ms;
	vs_status_snap_release(&s);
	if (vs_beat_format(&b, member, sizeof(member)) < 0)
		return false;
	snprintf(score, sizeof(score), "%lld", (long long)time(NULL) + 60);
	if (vs_redis_command(*rd, &rep, 4, add, NULL) < 0)
		goto fail;
	freeReplyObject(rep);
	if (last[0] && strcmp(last, member)) {
		if (vs_redis_command(*rd, &rep, 3, rem, NULL) < 0)
			goto fail;
		freeReplyObject(rep);
	}
	memcpy(last, member, strlen(member) + 1);
	if (vs_redis_command(*rd, &rep, 3, expire, NULL) < 0)
		goto fail;
	freeReplyObject(rep);
	return true;
fail:
	vs_debug("cannot refresh this agent in %s: %s", key,
		 vs_redis_last_error(*rd));
	if (!borrowed) {
		vs_redis_free(*rd);
		*rd = NULL;
	}
	return false;
}

/* The heartbeat on the keeper's own connection @rd (opened if NULL), or -
 * while the follower runs - on its connection (beat_borrowed); the last
 * member sent is shared, under beat_lock. */
static bool beat(struct mount_ctx *ctx, struct vs_redis **rd, bool leave)
{
	bool ok;

	pthread_mutex_lock(&ctx->beat_lock);
	ok = presence(ctx, rd, leave, ctx->beat_last, false);
	pthread_mutex_unlock(&ctx->beat_lock);
	return ok;
}

static void beat_borrowed(struct mount_ctx *ctx, struct vs_redis *rd)
{
	pthread_mutex_lock(&ctx->beat_lock);
	(void)presence(ctx, &rd, false, ctx->beat_last, true); /* next tick */
	pthread_mutex_unlock(&ctx->beat_lock);
}

/* Heartbeats: every KEEPER_BEAT_MS, and KEEPER_BEAT_MIN_MS after a change
 * was applied or committed (not more often). */
#define KEEPER_BEAT_MS	   20000
#define KEEPER_BEAT_MIN_MS 1000

static void *keeper_main(void *arg)
{
	struct mount_ctx *ctx = arg;
	int64_t learn_at = vs_mono_ms() + (int64_t)ctx->o->learn_seconds * 1000;
	int64_t last_beat = 0;
	bool learned = ctx->o->learn_seconds == 0;
	struct head_reader hr = {0};
	struct vs_redis *rd = NULL;

	pthread_setname_np(pthread_self(), "vs-keeper");
	pthread_mutex_lock(&ctx->lock);
	while (!ctx->stopping) {
		int64_t now = vs_mono_ms(), due;
		bool failed = false;
		struct timespec ts;

		due = last_beat +
		      (ctx->beat_soon ? KEEPER_BEAT_MIN_MS : KEEPER_BEAT_MS);
		if (!learned && learn_at < due)
			due = learn_at;
		if (last_beat && now < due) {
			vs_mono_ts(&ts, due);
			pthread_cond_timedwait(&ctx->cond, &ctx->lock, &ts);
			continue;
		}
		ctx->beat_soon = false;
		pthread_mutex_unlock(&ctx->lock);
		if (!learned && vs_mono_ms() >= learn_at) {
			save_learned(ctx);
			learned = true;
		}
		if (!atomic_load(&ctx->follower_beats)) {
			/* the Redis cursor, or PostgreSQL in PostgreSQL-only
			 * mode (where the agent holds a connection anyway) */
			read_head(ctx, &hr, !ctx->o->redis);
			failed = !beat(ctx, &rd, false);
		} else {
			/* the follower reads the head and heartbeats on its
			 * own connection (follower_tick): one per agent */
			vs_redis_free(rd);
			rd = NULL;
			vs_redis_free(hr.rd);
			hr.rd = NULL;
		}
		last_beat = vs_mono_ms();
		pthread_mutex_lock(&ctx->lock);
		/* not told: again in KEEPER_BEAT_MIN_MS, not a period */
		ctx->beat_soon = ctx->beat_soon || failed;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (!learned)
		save_learned(ctx);
	(void)beat(ctx, &rd, true);
	vs_redis_free(rd);
	head_reader_release(&hr);
	return NULL;
}

/* The op of a journal entry as the events name it. */
static const char *jop_name(enum vs_jop op)
{
	switch (op) {
	case VS_JOP_WRITE:
		return "write";
	case VS_JOP_SYMLINK:
		return "symlink";
	case VS_JOP_MKDIR:
		return "mkdir";
	case VS_JOP_DELETE:
		return "delete";
	case VS_JOP_RENAME:
		return "rename";
	}
	return "?";
}

/* Every heartbeat period, and soon after a change was applied, on the
 * follower's thread and Redis connection (one connection per idle agent):
 * the head (the relay's cursor), the heartbeat, and the content source's
 * connection closed unless in use. */
static void follower_tick(void *arg, struct vs_redis *rd)
{
	struct mount_ctx *ctx = arg;
	struct head_reader hr = {.rd = rd};
	char why[160] = "";

	if (head_from_redis(ctx, &hr, why, sizeof(why), true) < 0)
		vs_status_head_failed(why);
	beat_borrowed(ctx, rd);
	vs_content_redis_idle(ctx->content);
}

static void on_committed(void *arg, const struct vs_jentry *e,
			 const struct vs_wb_result *res)
{
	struct mount_ctx *ctx = arg;
	/* refused where the file no longer is, saved again where it is: no
	 * divergence at the path refused (its save clears the aside's) */
	bool again = vs_fs_committed(ctx->fs, e, res);
	/* nor is a delete overtaken by someone else's change there once the
	 * mount has that change; until then the refusal is shown (cleared
	 * when the updater applies it: vs_status_remote) */
	bool overtaken = vs_wb_delete_overtaken(e, res->error) &&
			 vs_fs_has_path(ctx->fs, e->path);

	if (res->error)
		vs_events_refused(jop_name(e->op), e->path, res->error);
	else if (res->seq > 0)
		vs_events_saved(jop_name(e->op), e->path, res->seq,
				res->version, res->merged);
	if (!res->error && res->conflict)
		vs_events_conflict(e->path, res->seq, res->version - 1, true);
	vs_status_saved(e->path, e->op == VS_JOP_RENAME ? e->old_path : NULL,
			again || overtaken ? 0 : res->error,
			e->op == VS_JOP_DELETE);
	beat_soon(ctx);
}

/* --writable: start committing the journal (what is left from before a
 * restart first). */
static void start_writeback(struct mount_ctx *ctx)
{
	const struct vs_mount_opts *o = ctx->o;
	struct vs_wb_config wc = {
	    .pg = o->pg,
	    .project_id = ctx->id,
	    .author = ctx->author,
	    .timeout_ms = o->timeout_ms,
	    .cache = ctx->cache,
	    .journal = ctx->journal,
	    .committed = on_committed,
	    .arg = ctx,
	};
	int r;

	if (!ctx->journal)
		return;
	r = vs_wb_start(&ctx->wb, &wc);
	if (r < 0) {
		vs_error("cannot start the write-back: %s; local changes stay "
			 "journaled",
			 strerror(-r));
		return;
	}
	vs_fs_set_writeback(ctx->fs, ctx->wb);
	if (vs_journal_pending(ctx->journal))
		vs_info("%zu journaled local changes will be committed",
			vs_journal_pending(ctx->journal));
}

/*
 * "control" in the cache dir: where this mount's control endpoint listens
 * and its mountpoint, one per line, for `vsync-mount --status MOUNTPOINT`
 * (one mount per cache dir; a mount --at writes its own in its state dir,
 * projects/<uuid>@<seq>/control). Removed at the stop; a stale one from a
 * mount that died names a port nobody answers on, or another mountpoint.
 */
#define CONTROL_FILE "control"

static void write_control_file(struct mount_ctx *ctx)
{
	const char *spec = ctx->o->control, *colon = strrchr(spec, ':');
	char text[4096 + 128], host[80] = "127.0.0.1",
			       tmp[sizeof(ctx->control_file) + 8];
	int n, r;

	if (colon && colon > spec && (size_t)(colon - spec) < sizeof(host))
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	if (!strcmp(host, "0.0.0.0"))
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (!strcmp(host, "[::]"))
		snprintf(host, sizeof(host), "[::1]");
	n = snprintf(text, sizeof(text), "%s:%d\n%s\n", host,
		     vs_control_port(ctx->control), ctx->o->mountpoint);
	if (n < 0 || (size_t)n >= sizeof(text))
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", ctx->control_file);
	r = vs_write_file_at(ctx->cache->dir_fd, tmp, ctx->control_file, text,
			     (size_t)n, 0644);
	if (r < 0)
		vs_warn("cannot write '%s/%s' (vsync-mount --status will not "
			"find this mount): %s",
			ctx->cache->dir, ctx->control_file, strerror(-r));
}

static void remove_control_file(struct mount_ctx *ctx)
{
	unlinkat(ctx->cache->dir_fd, ctx->control_file, 0);
}

/* Mounted: serve the control endpoint, fetch the critical files, follow
 * the project's changes, learn what is read first. */
static void on_ready(void *arg)
{
	struct mount_ctx *ctx = arg;
	const struct vs_mount_opts *o = ctx->o;
	struct vs_sub_config sc = {
	    .pg = o->pg,
	    .redis = o->redis,
	    .project_id = ctx->id,
	    .timeout_ms = o->timeout_ms,
	    .start_seq = ctx->seq,
	    .verify = ctx->verify,
	    .tick = follower_tick,
	    .tick_arg = ctx,
	    .tick_ms = KEEPER_BEAT_MS,		/* the heartbeat period */
	    .tick_soon_ms = KEEPER_BEAT_MIN_MS, /* and soon after a change */
	};
	struct vs_prefetch_config pc = {
	    .cache = ctx->cache,
	    .pg = o->pg,
	    .redis = o->redis,
	    .project_id = ctx->id,
	    .timeout_ms = o->timeout_ms,
	    .workers = o->prefetch,
	    .ready = on_critical_ready,
	    .arg = ctx,
	    .bundles = ctx->bundles,
	    .nbundles = ctx->nbundles,
	    .verify = ctx->verify,
	};
	int r;

	struct vs_control_hooks hooks = {
	    .status = mount_status,
	    .ready = mount_ready,
	    .refresh = mount_refresh,
	    .arg = ctx,
	};

	vs_info("mounted on '%s'", o->mountpoint);
	ctx->following =
	    !o->no_follow && !o->single_thread && (sc.pg || sc.redis);
	if (o->control) {
		ctx->ctl_reader = calloc(1, sizeof(*ctx->ctl_reader));
		if (ctx->ctl_reader &&
		    vs_control_start_with(&ctx->control, o->control, &hooks) ==
			0)
			write_control_file(ctx);
	}
	vs_fs_learn_start(ctx->fs, o->learn_seconds);
	start_writeback(ctx);
	if (pthread_create(&ctx->keeper, NULL, keeper_main, ctx) == 0)
		ctx->keeper_started = true;
	r = vs_prefetch_start(&ctx->prefetch, &pc, &ctx->plan);
	if (r < 0) {
		vs_warn("cannot start fetching: %s", strerror(-r));
		on_critical_ready(ctx, 0);
	}
	if (o->no_follow)
		return;
	if (o->single_thread) {
		vs_warn("live updates need the multithreaded loop: not "
			"following changes (-s)");
		return;
	}
	if (!sc.pg && !sc.redis) {
		vs_warn("neither --pg nor --redis: not following changes");
		return;
	}
	r = vs_sub_start(&ctx->sub, &sc, apply_change, ctx);
	if (r < 0)
		vs_error("cannot follow changes: %s", strerror(-r));
	else if (sc.redis)
		atomic_store(&ctx->follower_beats, true);
	if (r == 0)
		vs_info("following changes after %lld via %s",
			(long long)ctx->seq,
			sc.redis ? "the Redis stream" : "PostgreSQL LISTEN");
}

/* The mount is gone: stop every thread before the session is destroyed. */
static void on_stop(void *arg)
{
	struct mount_ctx *ctx = arg;

	vs_sub_stop(ctx->sub);
	ctx->sub = NULL;
	atomic_store(&ctx->follower_beats, false);
	vs_wb_stop(ctx->wb); /* what is not committed stays journaled */
	ctx->wb = NULL;
	vs_fs_set_writeback(ctx->fs, NULL);
	vs_prefetch_stop(ctx->prefetch);
	ctx->prefetch = NULL;
	if (ctx->keeper_started) {
		pthread_mutex_lock(&ctx->lock);
		ctx->stopping = true;
		pthread_cond_signal(&ctx->cond);
		pthread_mutex_unlock(&ctx->lock);
		pthread_join(ctx->keeper, NULL);
		ctx->keeper_started = false;
	}
	vs_control_stop(ctx->control);
	if (ctx->control)
		remove_control_file(ctx);
	ctx->control = NULL;
	if (ctx->ctl_reader)
		head_reader_release(ctx->ctl_reader);
	free(ctx->ctl_reader);
	ctx->ctl_reader = NULL;
}

/*
 * Without -f: fork now (before any thread or connection). The parent waits
 * until the child is ready ("R" on the pipe: exit 0) or gone (its exit
 * status), so `vsync-mount ... && npm run dev` starts the dev server only
 * once the critical files are local. Returns in the child only, with the
 * pipe's write end in *fd_out.
 */
static void daemonize(int *fd_out)
{
	int p[2], status;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("vsync-mount: pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("vsync-mount: fork");
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &c, 1) == 1 && c == 'R')
			_exit(0);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			_exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
		_exit(1);
	}
	close(p[0]);
	setsid();
	*fd_out = p[1];
}

/* ---- vsync-mount --status ---------------------------------------------- */

static const char status_usage[] =
    "usage: vsync-mount --status [--json] [--cache-dir DIR] [--timeout MS]\n"
    "                   MOUNTPOINT | ADDR:PORT\n"
    "\n"
    "Ask a running mount how far it is in sync (GET /status on its control\n"
    "endpoint: the mount needs --control). MOUNTPOINT is looked up in the\n"
    "cache dir (--cache-dir, else $VSYNC_CACHE_DIR or /var/cache/vsync).\n"
    "Prints one line (--json: the whole answer). Exit status: 0 in sync,\n"
    "1 not in sync, 2 usage, 3 no answer.\n";

/* Does control file @path name mountpoint @real? Its address into @addr. */
static bool control_names(const char *path, const char *real, char *addr,
			  size_t addrlen)
{
	char *text = NULL, *nl;
	size_t len = 0;
	bool found = false;
	int fd = -1;

	/* (a FIFO there would hold --status for ever) */
	if (vs_open_regular(AT_FDCWD, path, O_RDONLY, &fd) == 0 &&
	    vs_read_fd_whole(&text, &len, fd, 8192) == 0 &&
	    (nl = strchr(text, '\n')) && (size_t)(nl - text) < addrlen) {
		char *mp = nl + 1, *end = strchr(mp, '\n');

		*nl = '\0';
		if (end)
			*end = '\0';
		if (!strcmp(mp, real)) {
			snprintf(addr, addrlen, "%s", text);
			found = true;
		}
	}
	if (fd >= 0)
		close(fd);
	free(text);
	return found;
}

/* The control address of the mount on @mnt, from @cache_dir's control
 * file (or a mount --at's, in its state dir), into @addr. 0 or -ENOENT
 * (logged on stderr). */
static int status_lookup(const char *cache_dir, const char *mnt, char *addr,
			 size_t addrlen)
{
	char path[4200], *real = realpath(mnt, NULL);
	glob_t g = {0};
	int r = -ENOENT;

	snprintf(path, sizeof(path), "%s/" CONTROL_FILE, cache_dir);
	if (real && control_names(path, real, addr, addrlen))
		r = 0;
	snprintf(path, sizeof(path), "%s/projects/*@*/" CONTROL_FILE,
		 cache_dir);
	if (r < 0 && real && glob(path, 0, NULL, &g) == 0) {
		for (size_t i = 0; r < 0 && i < g.gl_pathc; i++)
			if (control_names(g.gl_pathv[i], real, addr, addrlen))
				r = 0;
	}
	globfree(&g);
	if (r < 0)
		fprintf(stderr,
			"vsync-mount: no mount with a control endpoint on '%s' "
			"in cache dir '%s' (mount with --control, or give "
			"ADDR:PORT or --cache-dir)\n",
			mnt, cache_dir);
	free(real);
	return r;
}

static int status_main(int argc, char **argv)
{
	const char *cache_dir = env_get("VSYNC_CACHE_DIR"), *target = NULL;
	char addr[128], line[1024], *body = NULL;
	struct stat st;
	size_t len = 0;
	long timeout = 5000;
	bool json = false;
	int code = 0, r, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--cache-dir") && i + 1 < argc) {
			cache_dir = argv[++i];
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			if (vs_parse_long(&timeout, argv[++i], 10, 1, 600000) <
			    0)
				break;
		} else if (!strcmp(argv[i], "-h") ||
			   !strcmp(argv[i], "--help")) {
			fputs(status_usage, stdout);
			return 0;
		} else if (argv[i][0] != '-' && !target) {
			target = argv[i];
		} else {
			break;
		}
	}
	if (i < argc || !target) {
		fputs(status_usage, stderr);
		return 2;
	}
	if (!cache_dir)
		cache_dir = "/var/cache/vsync";
	if (stat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (status_lookup(cache_dir, target, addr, sizeof(addr)) < 0)
			return 3;
	} else {
		snprintf(addr, sizeof(addr), "%s", target);
	}
	r = vs_control_get(addr, "/status", (int)timeout, &code, &body, &len);
	if (r < 0 || code != 200) {
		fprintf(stderr, "vsync-mount: no status from %s: %s\n", addr,
			r < 0 ? strerror(-r) : "not a 200 answer");
		free(body);
		return 3;
	}
	if (vs_status_line(body, len, line, sizeof(line)) < 0) {
		fprintf(stderr,
			"vsync-mount: %s answered something that is "
			"not a status\n",
			addr);
		free(body);
		return 3;
	}
	if (json)
		printf("%s\n", body);
	else
		printf("%s\n", line);
	r = strncmp(line, "in sync", 7) == 0 ? 0 : 1;
	free(body);
	return r;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct vs_fs_config cfg = {
	    .work_fd = -1, .upper_fd = -1, .meta_fd = -1};
	struct vs_content *content = NULL;
	struct vs_cache cache = {.dir_fd = -1};
	struct vs_evict *evict = NULL;
	struct vs_mount_opts o;
	struct vs_manifest m;
	struct vs_fs *fs = NULL;
	struct mount_ctx ctx = {
	    .o = &o, .log_fd = -1, .daemon_fd = -1, .journal_fd = -1};
	char id[VS_UUID_BUFSZ] = "", err[256], *mountpoint = NULL,
	     **learned = NULL, key[VS_UUID_BUFSZ + 24],
	     lock[VS_UUID_BUFSZ + 40];
	char *index = NULL;
	size_t nlearned = 0, index_len = 0;
	int r, upper_fd = -1, lock_fd = -1, status = 1;

	vs_log_set_prog("vsync-mount");
	if (argc >= 2 && !strcmp(argv[1], "--status"))
		return status_main(argc - 1, argv + 1);
	/* A fixed threshold, not glibc's moving one: once the manifest's
	 * large arrays are freed, it would rise past libfuse's receive
	 * buffers (1 MiB and a page per worker) and put them in the workers'
	 * arenas, whose pages stay resident (about 4 MB for 4 workers).
	 * Mapped on their own, they hold only the pages requests touch.
	 * Just over 1 MiB: the daemon's own buffers of exactly 1 MiB (the
	 * cache's copy buffer, a chunk's) stay in the heap and are reused,
	 * not mapped and unmapped at every save or fetch. */
	mallopt(M_MMAP_THRESHOLD, (1 << 20) + 1);
	vs_manifest_init(&m);
	ctx.start_ms = vs_mono_ms();
	pthread_mutex_init(&ctx.lock, NULL);
	pthread_mutex_init(&ctx.beat_lock, NULL);
	vs_cond_init_mono(&ctx.cond);
	if (vs_mount_opts_parse(&o, argc, argv, env_get, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "vsync-mount: %s\n%s", err, vs_mount_usage);
		return 2;
	}
	if (o.help) {
		fputs(vs_mount_usage, stdout);
		return 0;
	}
	if (o.version) {
		printf("vsync-mount %s (libfuse %s)\n", VSYNC_VERSION,
		       fuse_pkgversion());
		return 0;
	}
	if (o.redis && check_redis_url(o.redis) < 0)
		return 2;
	if (o.log_file) {
		ctx.log_fd =
		    open(o.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			 0644);
		if (ctx.log_fd < 0 || dup2(ctx.log_fd, STDERR_FILENO) < 0) {
			fprintf(stderr,
				"vsync-mount: cannot open log file '%s': %s\n",
				o.log_file, strerror(errno));
			return 1;
		}
	}
	if (o.debug)
		vs_log_set_level(VS_LOG_DEBUG);
	if (o.log_format)
		vs_log_set_format(vs_log_format_parse(o.log_format));
	fuse_set_log_func(fuse_log_to_vs);
	raise_fd_limit();
	if (!o.foreground)
		daemonize(&ctx.daemon_fd);

	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		vs_error("cannot mount: /dev/fuse not available: %s",
			 strerror(errno));
		goto out;
	}
	if (check_mountpoint(o.mountpoint) < 0)
		goto out;
	/* the updater reaches files through the mountpoint by absolute path,
	 * and a daemon changes its directory to / */
	mountpoint = realpath(o.mountpoint, NULL);
	if (!mountpoint) {
		vs_error("cannot mount on '%s': %s", o.mountpoint,
			 strerror(errno));
		goto out;
	}
	o.mountpoint = mountpoint;
	if (vs_cache_init(&cache, o.cache_dir) < 0)
		goto out;
	cache.mem_max = o.cache_mem_max;
	if (!o.at && lock_cache_dir(&cache, "lock", &lock_fd) < 0)
		goto out;
	if (!o.at)
		start_evictor(&o, &cache, &evict);
	if (o.verify_key && *o.verify_key) {
		if (vs_sign_key_load_public(&ctx.verify, o.verify_key) < 0)
			goto out; /* logged */
	} else if (o.redis) {
		vs_warn("no --verify-key: stream entries and manifests read "
			"from Redis are not verified (anyone who can write "
			"the project's Redis keys can change this tree)");
	}
	if (o.at ? load_manifest_at(&o, &m, id) < 0
		 : load_manifest(&o, &cache, ctx.verify, &m, id, &index,
				 &index_len) < 0)
		goto out;
	if (index && vs_bundle_index_parse(&ctx.bundles, &ctx.nbundles, index,
					   index_len) < 0)
		vs_warn("the bundle index of '%s' is malformed: fetching its "
			"files one by one",
			o.project);
	free(index);
	index = NULL;
	/* local state (the local-only layer, owners) is keyed by version: a
	 * mount --at has its own, apart from the live mount's */
	snprintf(key, sizeof(key), "%s", id);
	if (o.at) {
		snprintf(key, sizeof(key), "%s@%lld", id, (long long)m.seq);
		snprintf(lock, sizeof(lock), "projects/%s/lock", key);
		r = vs_cache_project_dir(&cache, key, "", &upper_fd);
		if (r < 0) {
			vs_error("cannot make the state dir of '%s' in '%s': "
				 "%s",
				 key, o.cache_dir, strerror(-r));
			goto out;
		}
		close(upper_fd);
		upper_fd = -1;
		if (lock_cache_dir(&cache, lock, &lock_fd) < 0)
			goto out;
	}
	r = vs_cache_project_dir(&cache, key, "local", &upper_fd);
	if (r < 0) {
		vs_error("cannot open local layer of '%s' in '%s': %s",
			 o.project, o.cache_dir, strerror(-r));
		goto out;
	}
	r = vs_content_new(&content, &cache, o.pg, o.redis, id, o.timeout_ms);
	if (r < 0)
		goto out;
	vs_content_set_verify(content, ctx.verify);

	cfg.mountpoint = o.mountpoint;
	cfg.local.names = o.local;
	cfg.upper_fd = upper_fd;
	cfg.content = content;
	cfg.entry_timeout = o.cache_timeout;
	cfg.attr_timeout = o.cache_timeout;
	cfg.foreground = true; /* daemonize() did the forking */
	cfg.single_thread = o.single_thread;
	cfg.no_open = o.no_open;
	cfg.uid = getuid();
	cfg.gid = getgid();
	/* owners of synced paths: local metadata, never synced */
	if (vs_cache_project_dir(&cache, key, "meta", &cfg.meta_fd) < 0)
		vs_warn("no meta directory in '%s': chown of synced paths "
			"will not be kept across remounts",
			o.cache_dir);
	if (o.writable) {
		r = open_writable(&o, &cache, id, &ctx, &cfg);
		if (r < 0)
			goto out;
	}
	r = vs_fs_new(&fs, &cfg, &m);
	if (r < 0) {
		vs_error("cannot build the tree of '%s': %s", o.project,
			 strerror(-r));
		goto out;
	}
	ctx.fs = fs;
	ctx.cache = &cache;
	ctx.content = content;
	ctx.seq = m.seq;
	if (o.at)
		snprintf(ctx.control_file, sizeof(ctx.control_file),
			 "projects/%s/" CONTROL_FILE, key);
	else
		snprintf(ctx.control_file, sizeof(ctx.control_file),
			 CONTROL_FILE);
	vs_status_set_applied(m.seq);
	vs_status_set_pinned(o.at != NULL);
	if (o.writable) /* files written, not saved yet: diverged */
		vs_status_set_dirty_walk(vs_fs_dirty_walk, fs);
	memcpy(ctx.id, id, sizeof(ctx.id));
	load_learned(&o, &cache, id, &learned, &nlearned);
	r = vs_prefetch_plan_build(&ctx.plan, &m, o.critical,
				   (const char *const *)learned, nlearned,
				   &cfg.local);
	free_strings(learned, nlearned);
	if (r < 0)
		goto out;
	ctx.ncritical = ctx.plan.ncritical;
	vs_manifest_release(&m); /* the inode table has what it needs */
	malloc_trim(0); /* the heap pages the manifest held, given back */

	if (fuse_opt_add_arg(&args, argv[0]) != 0 ||
	    fuse_opt_add_arg(&args, "-o") != 0 ||
	    fuse_opt_add_arg(&args, "fsname=vsync,subtype=vsync") != 0)
		goto out;
	for (size_t i = 0; i < o.n_fuse_opts; i++)
		if (fuse_opt_add_arg(&args, "-o") != 0 ||
		    fuse_opt_add_arg(&args, o.fuse_opts[i]) != 0)
			goto out;
	if (o.debug && fuse_opt_add_arg(&args, "-d") != 0)
		goto out;
	/* The kernel has applied the caller's umask to every mode it sends;
	 * the daemon's own must not take more bits away from what it creates
	 * for callers (a local-only file made 0666 would be 0644). Its own
	 * files are all created with explicit modes (0600, 0644, 0700). */
	umask(0);
	r = vs_fs_run(fs, &args, on_ready, on_stop, &ctx);
	status = r < 0 ? 1 : 0;
	if (r == 0)
		vs_info("unmounted '%s'", o.mountpoint);
out:
	fuse_opt_free_args(&args);
	vs_status_set_dirty_walk(NULL, NULL);
	vs_fs_free(fs);
	vs_content_free(content);
	if (upper_fd >= 0)
		close(upper_fd);
	vs_evict_stop(evict);
	vs_cache_release(&cache);
	if (lock_fd >= 0)
		close(lock_fd); /* after everything that used the cache dir */
	vs_manifest_release(&m);
	vs_prefetch_plan_release(&ctx.plan);
	free(ctx.bundles);
	vs_journal_free(ctx.journal);
	vs_sign_key_free(ctx.verify);
	if (ctx.journal_fd >= 0)
		close(ctx.journal_fd);
	if (cfg.work_fd >= 0)
		close(cfg.work_fd);
	if (cfg.meta_fd >= 0)
		close(cfg.meta_fd);
	if (ctx.log_fd >= 0)
		close(ctx.log_fd);
	if (ctx.daemon_fd >= 0)
		close(ctx.daemon_fd); /* not ready: the parent exits non-zero */
	free(mountpoint);
	return status;
}
