/*
 * mount_opts.c - vsync-mount's command line (mount_opts.h), read with
 * getopt_long like vsyncctl and vsync-relay; the messages are ours (opterr
 * is 0), so each names the option and the value it did not take.
 */
#include "mount_opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/cache.h"
#include "vsync/path.h"
#include "vsync/util.h"
#include "vsync/banned.h"

const char vs_mount_usage[] =
    "usage: vsync-mount [options] PROJECT MOUNTPOINT\n"
    "\n"
    "Show the vsync project PROJECT (name or UUID) as a directory.\n"
    "\n"
    "  --pg CONNINFO        PostgreSQL (libpq URL or key=value); default "
    "$VSYNC_PG_URL\n"
    "  --redis URL          Redis: follow changes on its stream and read "
    "content\n"
    "                       from it; default $VSYNC_REDIS_URL (without "
    "it, changes\n"
    "                       are followed with PostgreSQL LISTEN)\n"
    "  --verify-key KEY     the relay's Ed25519 public key (PEM file or "
    "base64,\n"
    "                       `vsyncctl keygen`); default $VSYNC_VERIFY_KEY. "
    "With it\n"
    "                       only signed stream entries and manifests "
    "from Redis\n"
    "                       are used, the rest is read from PostgreSQL\n"
    "  --no-follow          do not apply changes made after the mount\n"
    "  --at SEQ|TIME        the project as it was right after change SEQ, or "
    "at\n"
    "                       TIME (a timestamp PostgreSQL reads: ISO 8601,\n"
    "                       'yesterday'); read-only, follows nothing, and may\n"
    "                       share the cache dir with a live mount\n"
    "  --critical GLOB      also fetch files matching GLOB before ready "
    "(repeatable)\n"
    "  --ready-file PATH    create PATH once the critical files are local\n"
    "  --notify-fd N        write \"READY=1\" to fd N once ready\n"
    "  --control ADDR:PORT  serve /healthz /readyz /metrics /status "
    "/events\n"
    "                       (127.0.0.1 when only :PORT is given)\n"
    "  --prefetch N         fetch the rest of the tree with N workers "
    "(default 4;\n"
    "                       0: other files only on first read)\n"
    "  --learn-seconds S    record the order of first reads for S seconds "
    "(default 10)\n"
    "  --read-only          synced paths refuse writes (EROFS); by "
    "default they\n"
    "                       take them: journaled locally, committed to "
    "PostgreSQL\n"
    "                       behind (--writable says so explicitly)\n"
    "  --author NAME        author of local changes (default "
    "container:<hostname>)\n"
    "  --max-file-size N    largest synced file written here (default "
    "1 GiB)\n"
    "  --save-quiet-ms MS   save a written synced file once it has had no "
    "write\n"
    "                       for MS ms (default 20; fsync, rename, chmod "
    "and its\n"
    "                       last close when the kernel reports it save at "
    "once)\n"
    "  --open-mode MODE     none (default): the kernel sends no OPEN or "
    "RELEASE\n"
    "                       and keeps pages and listings itself (warm "
    "reads at\n"
    "                       local speed; files saved when quiet); kernel: "
    "it\n"
    "                       sends OPEN and RELEASE of every file and "
    "directory\n"
    "                       (saves at the last close too); default\n"
    "                       $VSYNC_OPEN_MODE or none\n"
    "  --cache-dir DIR      content cache and local-only files; default\n"
    "                       $VSYNC_CACHE_DIR or /var/cache/vsync; one running\n"
    "                       mount per cache dir (a second one exits 1)\n"
    "  --cache-max SIZE     keep the cached content under SIZE (K M G "
    "suffixes),\n"
    "                       least recently used evicted first; default 2G, "
    "or a\n"
    "                       quarter of the cache dir's file system if "
    "smaller;\n"
    "                       0: unbounded. Unsaved changes are never evicted\n"
    "  --cache-mem-max SIZE when the cache dir's volume is full, keep up to "
    "SIZE\n"
    "                       of the content read in memory (default 128M); "
    "past it\n"
    "                       such reads fail (EIO) until room returns\n"
    "  --local NAME         also keep paths with a component NAME local "
    "(repeatable)\n"
    "  --no-default-local   drop the default local-only names\n"
    "                       (node_modules .vite .next dist build .cache .git)\n"
    "  --timeout MS         deadline of every backend call (default 2000)\n"
    "  --cache-timeout S    kernel entry/attribute cache seconds (default "
    "86400)\n"
    "  --log-file FILE      append log lines to FILE (daemon mode "
    "otherwise loses them)\n"
    "  --log-format FMT     logfmt (default) or json: one object per line "
    "with\n"
    "                       ts prog pid level msg; default "
    "$VSYNC_LOG_FORMAT\n"
    "  -f                   stay in the foreground (without it, return once "
    "ready)\n"
    "  -s                   single-threaded\n"
    "  -d                   FUSE debug output, debug log level (implies "
    "-f)\n"
    "  -o OPT[,OPT...]      FUSE mount options (allow_other, ro, ...);\n"
    "                       allow_other adds default_permissions\n"
    "  -h, --help           this text\n"
    "  -V, --version        the version\n"
    "\n"
    "Short options may be bundled (-fs); long ones abbreviated while unique\n"
    "(--no-f); \"--\" ends the options.\n";

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Long-only options: values past any character. */
enum {
	OPT_PG = 256,
	OPT_VERIFY_KEY,
	OPT_REDIS,
	OPT_CACHE_DIR,
	OPT_LOG_FILE,
	OPT_LOG_FORMAT,
	OPT_READY_FILE,
	OPT_NOTIFY_FD,
	OPT_CONTROL,
	OPT_PREFETCH,
	OPT_LEARN_SECONDS,
	OPT_AUTHOR,
	OPT_MAX_FILE_SIZE,
	OPT_CRITICAL,
	OPT_LOCAL,
	OPT_NO_DEFAULT_LOCAL,
	OPT_TIMEOUT,
	OPT_CACHE_TIMEOUT,
	OPT_NO_FOLLOW,
	OPT_WRITABLE,
	OPT_READ_ONLY,
	OPT_AT,
	OPT_CACHE_MAX,
	OPT_CACHE_MEM_MAX,
	OPT_SAVE_QUIET_MS,
	OPT_OPEN_MODE,
};

static const struct option long_opts[] = {
    {"pg", required_argument, NULL, OPT_PG},
    {"verify-key", required_argument, NULL, OPT_VERIFY_KEY},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
    {"cache-max", required_argument, NULL, OPT_CACHE_MAX},
    {"cache-mem-max", required_argument, NULL, OPT_CACHE_MEM_MAX},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"notify-fd", required_argument, NULL, OPT_NOTIFY_FD},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"prefetch", required_argument, NULL, OPT_PREFETCH},
    {"learn-seconds", required_argument, NULL, OPT_LEARN_SECONDS},
    {"author", required_argument, NULL, OPT_AUTHOR},
    {"max-file-size", required_argument, NULL, OPT_MAX_FILE_SIZE},
    {"save-quiet-ms", required_argument, NULL, OPT_SAVE_QUIET_MS},
    {"open-mode", required_argument, NULL, OPT_OPEN_MODE},
    {"critical", required_argument, NULL, OPT_CRITICAL},
    {"local", required_argument, NULL, OPT_LOCAL},
    {"no-default-local", no_argument, NULL, OPT_NO_DEFAULT_LOCAL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"cache-timeout", required_argument, NULL, OPT_CACHE_TIMEOUT},
    {"no-follow", no_argument, NULL, OPT_NO_FOLLOW},
    {"writable", no_argument, NULL, OPT_WRITABLE},
    {"read-only", no_argument, NULL, OPT_READ_ONLY},
    {"at", required_argument, NULL, OPT_AT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/*
 * "-": hand back positionals in order (as 1), so an unexpected third one
 * is reported where it stands and POSIXLY_CORRECT changes nothing;
 * ":": no messages from getopt itself, ':' for a missing value.
 */
static const char short_opts[] = "-:fsdhVo:";

/* How many long options start with the name in @arg ("--name[=value]"). */
static int long_matches(const char *arg, bool *exact)
{
	size_t n = strcspn(arg + 2, "=");
	int count = 0;

	*exact = false;
	if (!n)
		return 0;
	for (const struct option *l = long_opts; l->name; l++) {
		if (strncmp(l->name, arg + 2, n) != 0)
			continue;
		if (!l->name[n]) {
			*exact = true;
			return 1;
		}
		count++;
	}
	return count;
}

/*
 * The message for getopt's '?' on the element @arg: an unknown or
 * ambiguous long option, a value given to a long flag, or an unknown short
 * option @opt (possibly inside a bundle such as "-fx").
 */
static int fail_unknown(char *err, size_t errlen, const char *arg, int opt)
{
	bool exact;
	int n;

	if (arg[0] != '-' || arg[1] != '-')
		return fail(err, errlen, "unknown option '-%c'", opt);
	n = long_matches(arg, &exact);
	if (exact)
		return fail(err, errlen,
			    "unknown option '%s' (--%.*s takes no value)", arg,
			    (int)strcspn(arg + 2, "="), arg + 2);
	if (n > 1)
		return fail(err, errlen, "ambiguous option '%s'", arg);
	return fail(err, errlen, "unknown option '%s'", arg);
}

/* The name of an option that needs a value, for getopt's ':'. */
static int fail_no_value(char *err, size_t errlen, int opt)
{
	for (const struct option *l = long_opts; l->name; l++)
		if (l->val == opt)
			return fail(err, errlen, "option '--%s' needs a value",
				    l->name);
	return fail(err, errlen, "option '-%c' needs a value", opt);
}

/* Is FUSE option @name among the -o values (each a comma list)? */
static bool fuse_opt_given(const struct vs_mount_opts *o, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < o->n_fuse_opts; i++)
		for (const char *p = o->fuse_opts[i]; p;) {
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p);

			if (n == len && !memcmp(p, name, len))
				return true;
			p = comma ? comma + 1 : NULL;
		}
	return false;
}

int vs_mount_opts_parse(struct vs_mount_opts *o, int argc, char **argv,
			const char *(*getenv_fn)(const char *name), char *err,
			size_t errlen)
{
	bool default_local = true, writable_given = false;
	const char *open_mode = NULL;
	const char *extra[VS_MOUNT_MAX_LOCAL];
	size_t n_extra = 0;
	int npos = 0, c;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = 2000;
	o->cache_timeout = 86400;
	o->notify_fd = -1;
	o->prefetch = 4;
	o->learn_seconds = 10;
	o->max_file_size = 1LL << 30;
	o->save_quiet_ms = VS_MOUNT_SAVE_QUIET_MS_DEFAULT;
	o->cache_max = -1;
	o->cache_mem_max = VS_CACHE_MEM_TOTAL_DEFAULT;
	o->writable = true;
	opterr = 0;
	optind = 0; /* glibc: start over (each call may see another argv) */
	for (;;) {
		/* the element getopt looks at (optind 0 means 1) */
		int at = optind ? optind : 1;
		const char *val;
		long v;

		c = getopt_long(argc, argv, short_opts, long_opts, NULL);
		if (c == -1)
			break;
		val = optarg;
		switch (c) {
		case OPT_PG:
			o->pg = val;
			break;
		case OPT_REDIS:
			o->redis = val;
			break;
		case OPT_VERIFY_KEY:
			o->verify_key = val;
			break;
		case OPT_CACHE_DIR:
			o->cache_dir = val;
			break;
		case OPT_LOG_FILE:
			o->log_file = val;
			break;
		case OPT_LOG_FORMAT:
			o->log_format = val;
			break;
		case OPT_READY_FILE:
			o->ready_file = val;
			break;
		case OPT_AUTHOR:
			o->author = val;
			break;
		case OPT_CONTROL:
			o->control = val;
			break;
		case OPT_MAX_FILE_SIZE:
			if (vs_parse_long(&v, val, 10, 1, 1L << 40) < 0)
				return fail(err, errlen,
					    "--max-file-size needs bytes, not "
					    "'%s'",
					    val);
			o->max_file_size = v;
			break;
		case OPT_SAVE_QUIET_MS:
			if (vs_parse_long(&v, val, 10, 1, 60000) < 0)
				return fail(err, errlen,
					    "--save-quiet-ms needs 1..60000 "
					    "milliseconds, not '%s'",
					    val);
			o->save_quiet_ms = (int)v;
			break;
		case OPT_OPEN_MODE:
			open_mode = val;
			break;
		case OPT_CACHE_MAX: {
			uint64_t size;

			if (vs_parse_size(&size, val, (uint64_t)1 << 60) < 0)
				return fail(err, errlen,
					    "--cache-max needs a size (bytes, "
					    "or with K M G T), not '%s'",
					    val);
			o->cache_max = (long long)size;
			break;
		}
		case OPT_CACHE_MEM_MAX:
			if (vs_parse_size(&o->cache_mem_max, val,
					  (uint64_t)1 << 50) < 0)
				return fail(
				    err, errlen,
				    "--cache-mem-max needs a size "
				    "(bytes, or with K M G T), not '%s'",
				    val);
			break;
		case OPT_CRITICAL:
			if (o->n_critical == VS_MOUNT_MAX_CRITICAL)
				return fail(err, errlen,
					    "too many --critical %s", "globs");
			o->critical[o->n_critical++] = val;
			break;
		case OPT_NOTIFY_FD:
			if (vs_parse_long(&v, val, 10, 0, 65535) < 0)
				return fail(err, errlen,
					    "--notify-fd needs a file "
					    "descriptor, not '%s'",
					    val);
			o->notify_fd = (int)v;
			break;
		case OPT_PREFETCH:
			if (vs_parse_long(&v, val, 10, 0, 64) < 0)
				return fail(err, errlen,
					    "--prefetch needs 0..64, not '%s'",
					    val);
			o->prefetch = (int)v;
			break;
		case OPT_LEARN_SECONDS:
			if (vs_parse_long(&v, val, 10, 0, 3600) < 0)
				return fail(err, errlen,
					    "--learn-seconds needs 0..3600, "
					    "not '%s'",
					    val);
			o->learn_seconds = (int)v;
			break;
		case OPT_LOCAL:
			if (vs_name_check(val, strlen(val)) < 0)
				return fail(err, errlen,
					    "--local needs a file name, not "
					    "'%s'",
					    val);
			if (n_extra == VS_MOUNT_MAX_LOCAL)
				return fail(err, errlen, "too many --local %s",
					    "names");
			extra[n_extra++] = val;
			break;
		case OPT_TIMEOUT:
			if (vs_parse_long(&v, val, 10, 1, 3600000) < 0)
				return fail(err, errlen,
					    "--timeout needs milliseconds, "
					    "not '%s'",
					    val);
			o->timeout_ms = (int)v;
			break;
		case OPT_CACHE_TIMEOUT:
			if (vs_parse_long(&v, val, 10, 0, 31536000) < 0)
				return fail(err, errlen,
					    "--cache-timeout needs seconds, "
					    "not '%s'",
					    val);
			o->cache_timeout = (double)v;
			break;
		case 'o':
			if (o->n_fuse_opts == VS_MOUNT_MAX_FUSE_OPTS)
				return fail(err, errlen, "too many -o %s",
					    "options");
			o->fuse_opts[o->n_fuse_opts++] = val;
			break;
		case OPT_NO_DEFAULT_LOCAL:
			default_local = false;
			break;
		case OPT_NO_FOLLOW:
			o->no_follow = true;
			break;
		case OPT_WRITABLE:
			o->writable = true;
			writable_given = true;
			break;
		case OPT_AT:
			if (!*val)
				return fail(err, errlen, "%s",
					    "--at needs a seq or a time");
			o->at = val;
			break;
		case OPT_READ_ONLY:
			o->writable = false;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 's':
			o->single_thread = true;
			break;
		case 'd':
			o->debug = o->foreground = true;
			break;
		case 'h':
			o->help = true;
			break;
		case 'V':
			o->version = true;
			break;
		case 1: /* a positional, in order */
			if (npos == 0)
				o->project = val;
			else if (npos == 1)
				o->mountpoint = val;
			else
				return fail(err, errlen,
					    "unexpected argument '%s'", val);
			npos++;
			break;
		case ':':
			return fail_no_value(err, errlen, optopt);
		default: /* '?' */
			return fail_unknown(err, errlen, argv[at], optopt);
		}
	}
	/* after "--", the rest are positionals */
	for (; optind < argc; optind++, npos++) {
		if (npos == 0)
			o->project = argv[optind];
		else if (npos == 1)
			o->mountpoint = argv[optind];
		else
			return fail(err, errlen, "unexpected argument '%s'",
				    argv[optind]);
	}
	if (o->help || o->version)
		return 0;
	if (!o->project || !o->mountpoint)
		return fail(err, errlen, "%s", "need PROJECT and MOUNTPOINT");
	if (o->at) {
		/* a past version: nothing to write, nothing to follow, and
		 * nothing learned for the live project */
		if (writable_given)
			return fail(err, errlen, "%s",
				    "--at mounts are read-only (--writable "
				    "given)");
		if (o->n_fuse_opts == VS_MOUNT_MAX_FUSE_OPTS)
			return fail(err, errlen, "too many -o %s", "options");
		o->fuse_opts[o->n_fuse_opts++] = "ro";
		o->writable = false;
		o->no_follow = true;
		o->learn_seconds = 0;
	}
	if (getenv_fn) {
		if (!o->pg)
			o->pg = getenv_fn("VSYNC_PG_URL");
		if (!o->redis)
			o->redis = getenv_fn("VSYNC_REDIS_URL");
		if (!o->verify_key)
			o->verify_key = getenv_fn("VSYNC_VERIFY_KEY");
		if (!o->cache_dir)
			o->cache_dir = getenv_fn("VSYNC_CACHE_DIR");
		if (!o->log_format)
			o->log_format = getenv_fn("VSYNC_LOG_FORMAT");
		if (!open_mode)
			open_mode = getenv_fn("VSYNC_OPEN_MODE");
	}
	if (open_mode && strcmp(open_mode, "none") &&
	    strcmp(open_mode, "kernel"))
		return fail(err, errlen,
			    "--open-mode needs none or kernel, not '%s'",
			    open_mode);
	o->no_open = !open_mode || strcmp(open_mode, "none") == 0;
	if (o->log_format && strcmp(o->log_format, "logfmt") &&
	    strcmp(o->log_format, "json"))
		return fail(err, errlen,
			    "--log-format takes logfmt or json, not '%s'",
			    o->log_format);
	if (!o->cache_dir)
		o->cache_dir = "/var/cache/vsync";
	/* other users reach the mount: the kernel checks their permissions
	 * as a local disk would (else every request acts as the daemon) */
	if (fuse_opt_given(o, "allow_other") &&
	    !fuse_opt_given(o, "default_permissions")) {
		if (o->n_fuse_opts == VS_MOUNT_MAX_FUSE_OPTS)
			return fail(err, errlen, "too many -o %s", "options");
		o->fuse_opts[o->n_fuse_opts++] = "default_permissions";
	}
	if (default_local)
		for (const char *const *n = vs_local_default_names; *n; n++)
			o->local[o->n_local++] = *n;
	for (size_t i = 0; i < n_extra; i++)
		o->local[o->n_local++] = extra[i];
	o->local[o->n_local] = NULL;
	return 0;
}
