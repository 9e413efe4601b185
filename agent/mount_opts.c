/*
 * mount_opts.c - vsync-mount's command line (mount_opts.h).
 */
#include "mount_opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/path.h"

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
    "  --critical GLOB      also fetch files matching GLOB before ready "
    "(repeatable)\n"
    "  --ready-file PATH    create PATH once the critical files are local\n"
    "  --notify-fd N        write \"READY=1\" to fd N once ready\n"
    "  --control ADDR:PORT  serve /healthz /readyz /metrics (127.0.0.1 "
    "when\n"
    "                       only :PORT is given)\n"
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
    "64 MiB)\n"
    "  --cache-dir DIR      content cache and local-only files; default\n"
    "                       $VSYNC_CACHE_DIR or /var/cache/vsync\n"
    "  --local NAME         also keep paths with a component NAME local "
    "(repeatable)\n"
    "  --no-default-local   drop the default local-only names\n"
    "                       (node_modules .vite .next dist build .cache .git)\n"
    "  --timeout MS         deadline of every backend call (default 2000)\n"
    "  --cache-timeout S    kernel entry/attribute cache seconds (default "
    "86400)\n"
    "  --log-file FILE      append log lines to FILE (daemon mode "
    "otherwise loses them)\n"
    "  -f                   stay in the foreground (without it, return once "
    "ready)\n"
    "  -s                   single-threaded\n"
    "  -d                   FUSE debug output, debug log level (implies "
    "-f)\n"
    "  -o OPT[,OPT...]      FUSE mount options (allow_other, "
    "default_permissions, ...)\n"
    "  -h, --help           this text\n"
    "  -V, --version        the version\n";

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int vs_mount_opts_parse(struct vs_mount_opts *o, int argc, char **argv,
			const char *(*getenv_fn)(const char *name), char *err,
			size_t errlen)
{
	bool default_local = true;
	const char *extra[VS_MOUNT_MAX_LOCAL];
	size_t n_extra = 0;
	int npos = 0;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = 2000;
	o->cache_timeout = 86400;
	o->notify_fd = -1;
	o->prefetch = 4;
	o->learn_seconds = 10;
	o->max_file_size = 64LL << 20;
	o->writable = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		long v;

		/* options that take a value: "--opt VAL" or "--opt=VAL" */
		static const char *const with_value[] = {
		    "--pg",	    "--redis",
		    "--cache-dir",  "--local",
		    "--timeout",    "--cache-timeout",
		    "--log-file",   "-o",
		    "--critical",   "--ready-file",
		    "--notify-fd",  "--control",
		    "--prefetch",   "--learn-seconds",
		    "--author",	    "--max-file-size",
		    "--verify-key", NULL};
		const char *name = a;
		char namebuf[32];

		if (a[0] == '-' && a[1] == '-' && strchr(a, '=')) {
			size_t n = (size_t)(strchr(a, '=') - a);

			if (n >= sizeof(namebuf))
				return fail(err, errlen, "unknown option '%s'",
					    a);
			memcpy(namebuf, a, n);
			namebuf[n] = '\0';
			name = namebuf;
			val = a + n + 1;
		}
		for (const char *const *w = with_value; *w; w++) {
			if (strcmp(name, *w) == 0 && !val) {
				if (i + 1 >= argc)
					return fail(err, errlen,
						    "option '%s' needs a value",
						    a);
				val = argv[++i];
			}
		}
		if (strncmp(a, "-o", 2) == 0 && a[2]) {
			name = "-o";
			val = a + 2;
		}
		if (strcmp(name, "--pg") == 0)
			o->pg = val;
		else if (strcmp(name, "--redis") == 0)
			o->redis = val;
		else if (strcmp(name, "--verify-key") == 0)
			o->verify_key = val;
		else if (strcmp(name, "--cache-dir") == 0)
			o->cache_dir = val;
		else if (strcmp(name, "--log-file") == 0)
			o->log_file = val;
		else if (strcmp(name, "--ready-file") == 0)
			o->ready_file = val;
		else if (strcmp(name, "--author") == 0)
			o->author = val;
		else if (strcmp(name, "--max-file-size") == 0) {
			if (parse_int(val, 1, 1L << 40, &v) < 0)
				return fail(err, errlen,
					    "--max-file-size needs bytes, not "
					    "'%s'",
					    val);
			o->max_file_size = v;
		} else if (strcmp(name, "--control") == 0)
			o->control = val;
		else if (strcmp(name, "--critical") == 0) {
			if (o->n_critical == VS_MOUNT_MAX_CRITICAL)
				return fail(err, errlen,
					    "too many --critical "
					    "globs");
			o->critical[o->n_critical++] = val;
		} else if (strcmp(name, "--notify-fd") == 0) {
			if (parse_int(val, 0, 65535, &v) < 0)
				return fail(err, errlen,
					    "--notify-fd needs a file "
					    "descriptor, not '%s'",
					    val);
			o->notify_fd = (int)v;
		} else if (strcmp(name, "--prefetch") == 0) {
			if (parse_int(val, 0, 64, &v) < 0)
				return fail(err, errlen,
					    "--prefetch needs 0..64, not '%s'",
					    val);
			o->prefetch = (int)v;
		} else if (strcmp(name, "--learn-seconds") == 0) {
			if (parse_int(val, 0, 3600, &v) < 0)
				return fail(err, errlen,
					    "--learn-seconds needs 0..3600, "
					    "not '%s'",
					    val);
			o->learn_seconds = (int)v;
		} else if (strcmp(name, "--local") == 0) {
			if (vs_name_check(val, strlen(val)) < 0)
				return fail(err, errlen,
					    "--local needs a file name, not "
					    "'%s'",
					    val);
			if (n_extra == VS_MOUNT_MAX_LOCAL)
				return fail(err, errlen, "too many --local %s",
					    "names");
			extra[n_extra++] = val;
		} else if (strcmp(name, "--timeout") == 0) {
			if (parse_int(val, 1, 3600000, &v) < 0)
				return fail(err, errlen,
					    "--timeout needs milliseconds, "
					    "not '%s'",
					    val);
			o->timeout_ms = (int)v;
		} else if (strcmp(name, "--cache-timeout") == 0) {
			if (parse_int(val, 0, 31536000, &v) < 0)
				return fail(err, errlen,
					    "--cache-timeout needs seconds, "
					    "not '%s'",
					    val);
			o->cache_timeout = (double)v;
		} else if (strcmp(name, "-o") == 0) {
			if (o->n_fuse_opts == VS_MOUNT_MAX_FUSE_OPTS)
				return fail(err, errlen, "too many -o %s",
					    "options");
			o->fuse_opts[o->n_fuse_opts++] = val;
		} else if (strcmp(a, "--no-default-local") == 0)
			default_local = false;
		else if (strcmp(a, "--no-follow") == 0)
			o->no_follow = true;
		else if (strcmp(a, "--writable") == 0)
			o->writable = true;
		else if (strcmp(a, "--read-only") == 0)
			o->writable = false;
		else if (strcmp(a, "-f") == 0)
			o->foreground = true;
		else if (strcmp(a, "-s") == 0)
			o->single_thread = true;
		else if (strcmp(a, "-d") == 0)
			o->debug = o->foreground = true;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			o->help = true;
		else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
			o->version = true;
		else if (a[0] == '-' && a[1])
			return fail(err, errlen, "unknown option '%s'", a);
		else if (npos == 0 && ++npos)
			o->project = a;
		else if (npos == 1 && ++npos)
			o->mountpoint = a;
		else
			return fail(err, errlen, "unexpected argument '%s'", a);
	}
	if (o->help || o->version)
		return 0;
	if (!o->project || !o->mountpoint)
		return fail(err, errlen, "%s", "need PROJECT and MOUNTPOINT");
	if (getenv_fn) {
		if (!o->pg)
			o->pg = getenv_fn("VSYNC_PG_URL");
		if (!o->redis)
			o->redis = getenv_fn("VSYNC_REDIS_URL");
		if (!o->verify_key)
			o->verify_key = getenv_fn("VSYNC_VERIFY_KEY");
		if (!o->cache_dir)
			o->cache_dir = getenv_fn("VSYNC_CACHE_DIR");
	}
	if (!o->cache_dir)
		o->cache_dir = "/var/cache/vsync";
	if (default_local)
		for (const char *const *n = vs_local_default_names; *n; n++)
			o->local[o->n_local++] = *n;
	for (size_t i = 0; i < n_extra; i++)
		o->local[o->n_local++] = extra[i];
	o->local[o->n_local] = NULL;
	return 0;
}
