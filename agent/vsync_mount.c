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
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mount_opts.h"
#include "vsync/cache.h"
#include "vsync/content.h"
#include "vsync/fs.h"
#include "vsync/log.h"
#include "vsync/manifest.h"
#include "vsync/pg.h"
#include "vsync/subscriber.h"

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

/* Is this error one where the saved manifest may stand in for the
 * database? */
static bool backend_unreachable(int r)
{
	return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EIO ||
	       r == -ECONNRESET || r == -EHOSTUNREACH;
}

/*
 * Load the manifest of @project into @m and its UUID into @id: from
 * PostgreSQL (then saved to the cache), or from the cache when the database
 * is unreachable. 0 or -errno, with the reason logged.
 */
static int load_manifest(const struct vs_mount_opts *o, struct vs_cache *cache,
			 struct vs_manifest *m, char id[37])
{
	struct vs_pg *pg = NULL;
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = o->pg || env_get("PGHOST") || env_get("PGDATABASE")
		? vs_pg_open(&pg, o->pg, o->timeout_ms)
		: -ECONNREFUSED;
	if (r == 0) {
		r = vs_pg_project_resolve(pg, o->project, id);
		if (r == -ENOENT) {
			vs_error("cannot mount: unknown project '%s'",
				 o->project);
			goto out;
		}
		if (r == 0)
			r = vs_pg_manifest_load(pg, id, m);
		if (r == 0) {
			vs_cache_project_link(cache, o->project, id);
			if (vs_manifest_serialize(m, &buf, &len) == 0)
				vs_cache_project_write(cache, id, "manifest",
						       buf, len);
			free(buf);
			vs_info("project '%s' (%s): %zu entries at change %lld "
				"from PostgreSQL",
				o->project, id, m->n, (long long)m->seq);
			goto out;
		}
	}
	if (r == -EACCES) {
		vs_error("cannot mount: PostgreSQL refused the connection: %s",
			 pg ? vs_pg_last_error(pg) : "authentication failed");
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
		    o->project, strerror(-r), o->cache_dir);
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
	vs_warn("PostgreSQL unreachable: mounting '%s' from the cached "
		"manifest (change %lld); files not cached will fail with EIO",
		o->project, (long long)m->seq);
out:
	vs_pg_free(pg);
	return r;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* What the mount's callbacks need. */
struct mount_ctx {
	const struct vs_mount_opts *o;
	int log_fd; /* --log-file, kept open: daemonising redirects stderr */
	struct vs_fs *fs;
	struct vs_sub *sub;
	char id[37];
	int64_t seq;
};

static int apply_change(void *arg, const struct vs_change *c)
{
	struct mount_ctx *ctx = arg;

	return vs_fs_apply(ctx->fs, c);
}

/* Mounted (and daemonised): start following the project's changes. */
static void on_ready(void *arg)
{
	struct mount_ctx *ctx = arg;
	struct vs_sub_config sc = {
	    .pg = ctx->o->pg,
	    .redis = ctx->o->redis,
	    .project_id = ctx->id,
	    .timeout_ms = ctx->o->timeout_ms,
	    .start_seq = ctx->seq,
	};
	int r;

	if (ctx->log_fd >= 0)
		dup2(ctx->log_fd, STDERR_FILENO);
	vs_info("mounted on '%s'", ctx->o->mountpoint);
	if (ctx->o->no_follow)
		return;
	if (ctx->o->single_thread) {
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
	else
		vs_info("following changes after %lld via %s",
			(long long)ctx->seq,
			sc.redis ? "the Redis stream" : "PostgreSQL LISTEN");
}

/* The mount is gone: stop the updater before the session is destroyed. */
static void on_stop(void *arg)
{
	struct mount_ctx *ctx = arg;

	vs_sub_stop(ctx->sub);
	ctx->sub = NULL;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct vs_fs_config cfg = {0};
	struct vs_content *content = NULL;
	struct vs_cache cache = {.dir_fd = -1};
	struct vs_mount_opts o;
	struct vs_manifest m;
	struct vs_fs *fs = NULL;
	struct mount_ctx ctx = {.o = &o, .log_fd = -1};
	char id[37] = "", err[256], *mountpoint = NULL;
	int r, upper_fd = -1, status = 1;

	vs_log_set_prog("vsync-mount");
	vs_manifest_init(&m);
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
	fuse_set_log_func(fuse_log_to_vs);
	raise_fd_limit();

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
	if (load_manifest(&o, &cache, &m, id) < 0)
		goto out;
	r = vs_cache_project_dir(&cache, id, "local", &upper_fd);
	if (r < 0) {
		vs_error("cannot open local layer of '%s' in '%s': %s",
			 o.project, o.cache_dir, strerror(-r));
		goto out;
	}
	r = vs_content_new(&content, &cache, o.pg, o.redis, id, o.timeout_ms);
	if (r < 0)
		goto out;

	cfg.mountpoint = o.mountpoint;
	cfg.local.names = o.local;
	cfg.upper_fd = upper_fd;
	cfg.content = content;
	cfg.entry_timeout = o.cache_timeout;
	cfg.attr_timeout = o.cache_timeout;
	cfg.foreground = o.foreground;
	cfg.single_thread = o.single_thread;
	cfg.uid = getuid();
	cfg.gid = getgid();
	r = vs_fs_new(&fs, &cfg, &m);
	if (r < 0) {
		vs_error("cannot build the tree of '%s': %s", o.project,
			 strerror(-r));
		goto out;
	}
	ctx.fs = fs;
	ctx.seq = m.seq;
	memcpy(ctx.id, id, sizeof(ctx.id));
	vs_manifest_release(&m); /* the inode table has what it needs */

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
	r = vs_fs_run(fs, &args, on_ready, on_stop, &ctx);
	status = r < 0 ? 1 : 0;
	if (r == 0)
		vs_info("unmounted '%s'", o.mountpoint);
out:
	fuse_opt_free_args(&args);
	vs_fs_free(fs);
	vs_content_free(content);
	if (upper_fd >= 0)
		close(upper_fd);
	vs_cache_release(&cache);
	vs_manifest_release(&m);
	if (ctx.log_fd >= 0)
		close(ctx.log_fd);
	free(mountpoint);
	return status;
}
