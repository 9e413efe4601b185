/*
 * mount_opts.h - command line of vsync-mount. Pure parsing, no I/O, so the
 * unit tests can drive it directly.
 */
#ifndef VSYNC_AGENT_MOUNT_OPTS_H
#define VSYNC_AGENT_MOUNT_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_MOUNT_MAX_FUSE_OPTS 32
#define VS_MOUNT_MAX_LOCAL     32
#define VS_MOUNT_MAX_CRITICAL  32
/* --cache-max when not given, unless the cache dir's file system is
 * smaller than four times this */
#define VS_MOUNT_CACHE_MAX_DEFAULT (2LL << 30)
/* --save-quiet-ms when not given (docs/benchmarks.md, "Save policy") */
#define VS_MOUNT_SAVE_QUIET_MS_DEFAULT 20

struct vs_mount_opts {
	const char *project;
	const char *mountpoint;
	const char *pg;	   /* --pg, else VSYNC_PG_URL */
	const char *redis; /* --redis, else VSYNC_REDIS_URL (later issues) */
	const char *cache_dir;	/* --cache-dir, else VSYNC_CACHE_DIR */
	const char *log_file;	/* --log-file: where a daemon logs */
	const char *log_format; /* --log-format logfmt|json, VSYNC_LOG_FORMAT */
	bool foreground;	/* -f */
	bool single_thread;	/* -s */
	bool debug;		/* -d: FUSE debug + debug log level */
	bool help, version;
	bool no_follow; /* --no-follow: serve the manifest, apply no changes */
	const char *at; /* --at SEQ|TIME: the project as it was, read-only */
	const char *ready_file; /* --ready-file: created once ready */
	int notify_fd; /* --notify-fd: "READY=1\n" written once ready */
	const char
	    *control;	    /* --control ADDR:PORT: /healthz /readyz /metrics */
	int prefetch;	    /* --prefetch N: background fetchers (0: none) */
	int learn_seconds;  /* --learn-seconds: record first reads this long */
	bool writable;	    /* synced paths take writes (not --read-only) */
	const char *author; /* --author: recorded with local changes */
	const char *verify_key;	 /* --verify-key, else VSYNC_VERIFY_KEY */
	long long max_file_size; /* --max-file-size: bigger writes are EFBIG */
	/* --save-quiet-ms: a written synced file is saved once it has had no
	 * write for this long (fsync, rename, chmod, close save at once) */
	int save_quiet_ms;
	/* --open-mode none|kernel (default none): none answers OPEN/OPENDIR
	 * with ENOSYS (no-open mode, vsync/fs.h) */
	bool no_open;
	/* --cache-max: bytes of content objects kept in the cache dir; -1
	 * when not given (the agent picks: VS_MOUNT_CACHE_MAX_DEFAULT or a
	 * quarter of the cache dir's file system), 0 unbounded */
	long long cache_max;
	/* --cache-mem-max: content kept in memory on a full cache volume
	 * (struct vs_cache's mem_max) */
	uint64_t cache_mem_max;
	const char *critical[VS_MOUNT_MAX_CRITICAL + 1]; /* --critical GLOB */
	size_t n_critical;
	int timeout_ms;	      /* --timeout: every backend call's deadline */
	double cache_timeout; /* --cache-timeout: kernel entry/attr seconds */
	/* -o values; with allow_other, default_permissions is added */
	const char *fuse_opts[VS_MOUNT_MAX_FUSE_OPTS];
	size_t n_fuse_opts;
	/* local-only names: defaults unless --no-default-local, plus --local */
	const char *local[VS_MOUNT_MAX_LOCAL + 8];
	size_t n_local;
};

/*
 * Parse @argv (with @getenv_fn for the environment fallbacks; NULL means
 * none). Strings point into argv or the environment; argv is not reordered.
 * Returns 0, or -EINVAL with a one-line reason in @err (then @o holds what
 * was parsed so far and nothing to free). Uses getopt_long, so it resets
 * and leaves getopt's globals (optind, optarg, opterr): call it from one
 * thread, not while another getopt loop is under way.
 */
int vs_mount_opts_parse(struct vs_mount_opts *o, int argc, char **argv,
			const char *(*getenv_fn)(const char *name), char *err,
			size_t errlen);

extern const char vs_mount_usage[];

#endif
