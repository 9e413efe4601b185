/*
 * test_mount_opts.c - unit tests of agent/mount_opts.c (vsync-mount's
 * command line, agent/mount_opts.h).
 *
 * Covers:
 *  - PROJECT and MOUNTPOINT as positionals, anywhere among the options,
 *    and the defaults (timeout 2000 ms, cache timeout 86400 s, cache dir
 *    /var/cache/vsync, the six default local names, no -o, flags off);
 *  - "--pg VAL" and "--pg=VAL" (also "--pg=" and "--pg=a=b"), the last one
 *    winning; --redis, --cache-dir, --log-file;
 *  - -o given twice, "-oX" glued, and more than VS_MOUNT_MAX_FUSE_OPTS;
 *  - --local (separate and "="), --no-default-local, a --local value that
 *    is not a file name, more than VS_MOUNT_MAX_LOCAL names;
 *  - environment fallbacks VSYNC_PG_URL, VSYNC_REDIS_URL, VSYNC_CACHE_DIR,
 *    VSYNC_VERIFY_KEY
 *    through a fake getenv function (options beat the environment; a NULL
 *    function means no environment);
 *  - --timeout / --cache-timeout values, invalid ones -> -EINVAL with a
 *    message naming the value;
 *  - -f, -s, -d (implies -f); writable by default, --read-only turns it
 *    off, the last of --read-only/--writable wins;
 *  - missing PROJECT/MOUNTPOINT, an unexpected third positional, an
 *    option without its value, unknown options (also "--x=1" and
 *    "--no-default-local=1") -> -EINVAL with a message naming them;
 *  - -h/--help and -V/--version accepted without positionals;
 *  - getopt_long forms: bundled short flags ("-fs", "-fo VAL"), unique
 *    abbreviations of long options ("--no-f"), "--" ending the options,
 *    POSIXLY_CORRECT changing nothing;
 *  - the values of --critical (and its limit), --ready-file, --notify-fd,
 *    --control, --prefetch, --learn-seconds, --author, --max-file-size,
 *    --cache-max (default -1: the agent picks; suffixes; 0 unbounded),
 *    --cache-mem-max (default VS_CACHE_MEM_TOTAL_DEFAULT; suffixes),
 *    --save-quiet-ms (default, range), --open-mode (none|kernel),
 *    --no-follow, and their invalid values;
 *  - a short error buffer stays NUL-terminated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mount_opts.h"
#include "vsync/cache.h"
#include "vsync/path.h"

#include "unit_check.h"

/* ------------------------------------------------------------ fake env */

struct fake_env {
	const char *pg, *redis, *cache_dir;
	const char *verify_key;
	const char *log_format;
	const char *open_mode;
	int calls;
};

/* How many default local-only names there are. */
static size_t n_defaults(void)
{
	size_t n = 0;

	while (vs_local_default_names[n])
		n++;
	return n;
}

static struct fake_env env;

static const char *fake_getenv(const char *name)
{
	env.calls++;
	if (strcmp(name, "VSYNC_PG_URL") == 0)
		return env.pg;
	if (strcmp(name, "VSYNC_REDIS_URL") == 0)
		return env.redis;
	if (strcmp(name, "VSYNC_CACHE_DIR") == 0)
		return env.cache_dir;
	if (strcmp(name, "VSYNC_VERIFY_KEY") == 0)
		return env.verify_key;
	if (strcmp(name, "VSYNC_LOG_FORMAT") == 0)
		return env.log_format;
	if (strcmp(name, "VSYNC_OPEN_MODE") == 0)
		return env.open_mode;
	return NULL;
}

static int env_setup(void **state)
{
	(void)state;
	memset(&env, 0, sizeof(env));
	return 0;
}

/* ------------------------------------------------------------ helpers */

struct parsed {
	struct vs_mount_opts o;
	char err[256];
	char cmdline[384]; /* for messages (cut when long) */
	int r;
};

/* Parse the NULL-terminated @args (argv[0] added) with @getenv_fn. */
static void parse_with(struct parsed *p, const char *(*getenv_fn)(const char *),
		       const char *const *args)
{
	char *argv[128];
	int argc = 0;
	size_t len = 0;

	argv[argc++] = (char *)"vsync-mount";
	p->cmdline[0] = '\0';
	for (; *args; args++) {
		if (argc == 127)
			fail_msg("too many test arguments");
		argv[argc++] = (char *)*args;
		len += (size_t)snprintf(
		    p->cmdline + len,
		    len < sizeof(p->cmdline) ? sizeof(p->cmdline) - len : 0,
		    " %s", *args);
		if (len >= sizeof(p->cmdline))
			len = sizeof(p->cmdline) - 1;
	}
	argv[argc] = NULL;
	memset(p->err, 0, sizeof(p->err));
	p->r = vs_mount_opts_parse(&p->o, argc, argv, getenv_fn, p->err,
				   sizeof(p->err));
}

#define PARSE(p, ...)                                                          \
	parse_with(p, fake_getenv, (const char *const[]){__VA_ARGS__, NULL})
#define PARSE_NOENV(p, ...)                                                    \
	parse_with(p, NULL, (const char *const[]){__VA_ARGS__, NULL})

static void check_ok(const struct parsed *p)
{
	if (p->r != 0)
		fail_msg("vsync-mount%s: expected success, got %d (%s): %s",
			 p->cmdline, p->r, unit_errname(p->r), p->err);
}

/* Expect -EINVAL and a message containing @want. */
static void check_fails(const struct parsed *p, const char *want)
{
	check_ret(-EINVAL, p->r, "vsync-mount%s", p->cmdline);
	if (!strstr(p->err, want))
		fail_msg("vsync-mount%s: expected a message containing "
			 "\"%s\", got \"%s\"",
			 p->cmdline, want, p->err);
}

/* The local names, joined by spaces. */
static const char *local_list(const struct vs_mount_opts *o, char *buf,
			      size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < o->n_local && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i ? " " : "", o->local[i]);
	return buf;
}

static void check_local(const struct parsed *p, const char *want)
{
	char buf[2048];

	check_str(want, local_list(&p->o, buf, sizeof(buf)),
		  "local names of vsync-mount%s", p->cmdline);
	check_ptr(NULL, p->o.local[p->o.n_local],
		  "NULL after the local names of vsync-mount%s", p->cmdline);
}

#define DEFAULT_LOCAL "node_modules .vite .next dist build .cache .git"

/* ------------------------------------------------------------ tests */

static void test_positionals_and_defaults(void **state)
{
	struct parsed p;

	(void)state;
	PARSE_NOENV(&p, "myapp", "/mnt/app");
	check_ok(&p);
	check_str("myapp", p.o.project, "project");
	check_str("/mnt/app", p.o.mountpoint, "mountpoint");
	check_ptr(NULL, p.o.pg, "pg without --pg or environment");
	check_ptr(NULL, p.o.redis, "redis without --redis or environment");
	check_ptr(NULL, p.o.log_file, "log file without --log-file");
	check_str("/var/cache/vsync", p.o.cache_dir, "default cache dir");
	check_int(2000, p.o.timeout_ms, "default timeout_ms");
	check_int(86400, (long long)p.o.cache_timeout, "default cache_timeout");
	check_int(0, p.o.n_fuse_opts, "number of -o options");
	check_bool(false, p.o.foreground, "foreground");
	check_bool(false, p.o.single_thread, "single_thread");
	check_bool(false, p.o.debug, "debug");
	check_bool(false, p.o.help, "help");
	check_bool(false, p.o.version, "version");
	check_bool(true, p.o.writable, "writable by default");
	check_local(&p, DEFAULT_LOCAL);

	/* positionals may come between and after options; "-" is one */
	PARSE_NOENV(&p, "-f", "myapp", "-s", "-", "-o", "ro");
	check_ok(&p);
	check_str("myapp", p.o.project, "project among options");
	check_str("-", p.o.mountpoint, "mountpoint \"-\"");
	check_bool(true, p.o.foreground, "foreground with -f");
	check_bool(true, p.o.single_thread, "single_thread with -s");
}

static void test_value_forms(void **state)
{
	struct parsed p;

	(void)state;
	PARSE(&p, "--pg", "postgres://a/b", "p", "m");
	check_ok(&p);
	check_str("postgres://a/b", p.o.pg, "--pg VAL");

	PARSE(&p, "p", "--pg=host=db port=5432", "m");
	check_ok(&p);
	check_str("host=db port=5432", p.o.pg, "--pg=VAL (value with '=')");

	PARSE(&p, "p", "m", "--pg=");
	check_ok(&p);
	check_str("", p.o.pg, "--pg= (empty value)");

	PARSE(&p, "--pg", "first", "--pg=second", "p", "m");
	check_ok(&p);
	check_str("second", p.o.pg, "the last --pg wins");

	/* a value that looks like an option is still the value */
	PARSE(&p, "--pg", "-f", "p", "m");
	check_ok(&p);
	check_str("-f", p.o.pg, "--pg -f");
	check_bool(false, p.o.foreground, "foreground after --pg -f");

	PARSE(&p, "--redis", "redis://r:6379", "--cache-dir=/c", "--log-file",
	      "/l.log", "p", "m");
	check_ok(&p);
	check_str("redis://r:6379", p.o.redis, "--redis");
	check_str("/c", p.o.cache_dir, "--cache-dir=");
	check_str("/l.log", p.o.log_file, "--log-file");
}

static void test_fuse_opts(void **state)
{
	struct parsed p;
	const char *args[VS_MOUNT_MAX_FUSE_OPTS + 4];
	size_t n = 0;

	(void)state;
	PARSE(&p, "-o", "allow_other", "p", "m", "-o",
	      "default_permissions,ro");
	check_ok(&p);
	check_int(2, p.o.n_fuse_opts, "number of -o options");
	check_str("allow_other", p.o.fuse_opts[0], "first -o");
	check_str("default_permissions,ro", p.o.fuse_opts[1], "second -o");

	PARSE(&p, "-oallow_other", "p", "m", "-o", "ro");
	check_ok(&p);
	check_int(3, p.o.n_fuse_opts, "number of -o options with -oX");
	check_str("allow_other", p.o.fuse_opts[0], "glued -oallow_other");
	check_str("ro", p.o.fuse_opts[1], "-o after -oX");
	check_str("default_permissions", p.o.fuse_opts[2],
		  "allow_other brings default_permissions");

	PARSE(&p, "-o", "ro,allow_other,noatime", "p", "m");
	check_ok(&p);
	check_int(2, p.o.n_fuse_opts, "allow_other inside a comma list");
	check_str("default_permissions", p.o.fuse_opts[1],
		  "default_permissions added for it");

	PARSE(&p, "-o", "allow_other_x,xallow_other", "p", "m");
	check_ok(&p);
	check_int(1, p.o.n_fuse_opts, "no allow_other: nothing added");

	PARSE(&p, "p", "m", "-o");
	check_fails(&p, "option '-o' needs a value");

	for (int i = 0; i < VS_MOUNT_MAX_FUSE_OPTS; i++)
		args[n++] = "-oro";
	args[n++] = "p";
	args[n++] = "m";
	args[n] = NULL;
	parse_with(&p, NULL, args);
	check_ok(&p);
	check_int(VS_MOUNT_MAX_FUSE_OPTS, p.o.n_fuse_opts,
		  "number of -o options at the limit");
	args[n++] = "-oro";
	args[n] = NULL;
	parse_with(&p, NULL, args);
	check_fails(&p, "too many -o options");
}

static void test_local_names(void **state)
{
	struct parsed p;
	const char *args[VS_MOUNT_MAX_LOCAL * 2 + 8];
	size_t n = 0;

	(void)state;
	PARSE(&p, "--local", "target", "p", "m", "--local=.turbo");
	check_ok(&p);
	check_local(&p, DEFAULT_LOCAL " target .turbo");

	PARSE(&p, "--no-default-local", "p", "m");
	check_ok(&p);
	check_local(&p, "");

	PARSE(&p, "--local", "vendor", "--no-default-local", "p", "m");
	check_ok(&p);
	check_local(&p, "vendor");

	PARSE(&p, "--local", "a/b", "p", "m");
	check_fails(&p, "--local needs a file name, not 'a/b'");
	PARSE(&p, "--local=", "p", "m");
	check_fails(&p, "--local needs a file name, not ''");
	PARSE(&p, "--local", "..", "p", "m");
	check_fails(&p, "not '..'");
	PARSE(&p, "p", "m", "--local");
	check_fails(&p, "option '--local' needs a value");

	/* VS_MOUNT_MAX_LOCAL extra names on top of the defaults fit */
	for (int i = 0; i < VS_MOUNT_MAX_LOCAL; i++) {
		args[n++] = "--local";
		args[n++] = "x";
	}
	args[n++] = "p";
	args[n++] = "m";
	args[n] = NULL;
	parse_with(&p, NULL, args);
	check_ok(&p);
	check_int((long long)n_defaults() + VS_MOUNT_MAX_LOCAL, p.o.n_local,
		  "local names with %d --local", VS_MOUNT_MAX_LOCAL);
	check_ptr(NULL, p.o.local[p.o.n_local], "NULL after the local names");
	args[n++] = "--local=y";
	args[n] = NULL;
	parse_with(&p, NULL, args);
	check_fails(&p, "too many --local names");
}

static void test_env_fallbacks(void **state)
{
	struct parsed p;

	(void)state;
	env.pg = "postgres://env/db";
	env.redis = "redis://env";
	env.cache_dir = "/env/cache";
	env.verify_key = "/env/key.pub";
	env.log_format = "json";
	PARSE(&p, "p", "m");
	check_ok(&p);
	check_str("json", p.o.log_format, "log format from VSYNC_LOG_FORMAT");
	check_str("/env/key.pub", p.o.verify_key,
		  "verify key from VSYNC_VERIFY_KEY");
	check_str("postgres://env/db", p.o.pg, "pg from VSYNC_PG_URL");
	check_str("redis://env", p.o.redis, "redis from VSYNC_REDIS_URL");
	check_str("/env/cache", p.o.cache_dir,
		  "cache dir from VSYNC_CACHE_DIR");
	check_int(6, env.calls, "getenv calls (VSYNC_OPEN_MODE too)");

	/* options beat the environment */
	env.calls = 0;
	PARSE(&p, "--pg", "cli", "--redis=cli-r", "--cache-dir", "/cli",
	      "--verify-key", "cli-k", "--log-format", "logfmt", "--open-mode",
	      "kernel", "p", "m");
	check_ok(&p);
	check_str("logfmt", p.o.log_format, "--log-format over the env");
	check_str("cli-k", p.o.verify_key, "--verify-key over the env");
	check_str("cli", p.o.pg, "--pg over VSYNC_PG_URL");
	check_str("cli-r", p.o.redis, "--redis over VSYNC_REDIS_URL");
	check_str("/cli", p.o.cache_dir, "--cache-dir over VSYNC_CACHE_DIR");
	check_int(0, env.calls, "getenv calls when every option is given");

	/* a format that is neither */
	PARSE(&p, "--log-format", "xml", "p", "m");
	check_fails(&p, "--log-format takes logfmt or json, not 'xml'");
	env.log_format = "yaml";
	PARSE(&p, "p", "m");
	check_fails(&p, "--log-format takes logfmt or json, not 'yaml'");
	env.log_format = NULL;

	/* only the cache dir unset in the environment: the default */
	env.cache_dir = NULL;
	PARSE(&p, "p", "m");
	check_ok(&p);
	check_str("/var/cache/vsync", p.o.cache_dir,
		  "cache dir with VSYNC_CACHE_DIR unset");

	/* no getenv function: no environment at all */
	env.cache_dir = "/env/cache";
	env.calls = 0;
	PARSE_NOENV(&p, "p", "m");
	check_ok(&p);
	check_ptr(NULL, p.o.pg, "pg without getenv function");
	check_str("/var/cache/vsync", p.o.cache_dir,
		  "cache dir without getenv function");
	check_int(0, env.calls, "getenv calls with a NULL function");
}

static void test_timeouts(void **state)
{
	static const char *const bad[] = {
	    "abc",  "0", "-5",	"3600001",
	    "12ms", "",	 "1e3", "99999999999999999999",
	};
	struct parsed p;

	(void)state;
	PARSE(&p, "--timeout", "500", "p", "m");
	check_ok(&p);
	check_int(500, p.o.timeout_ms, "--timeout 500");
	PARSE(&p, "--timeout=1", "p", "m");
	check_ok(&p);
	check_int(1, p.o.timeout_ms, "--timeout=1");
	PARSE(&p, "--timeout=3600000", "p", "m");
	check_ok(&p);
	check_int(3600000, p.o.timeout_ms, "--timeout=3600000");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];

		snprintf(want, sizeof(want),
			 "--timeout needs milliseconds, not '%s'", bad[i]);
		PARSE(&p, "p", "m", "--timeout", bad[i]);
		check_fails(&p, want);
	}

	PARSE(&p, "--cache-timeout", "0", "p", "m");
	check_ok(&p);
	check_int(0, (long long)p.o.cache_timeout, "--cache-timeout 0");
	PARSE(&p, "--cache-timeout=31536000", "p", "m");
	check_ok(&p);
	check_int(31536000, (long long)p.o.cache_timeout,
		  "--cache-timeout=31536000");
	PARSE(&p, "--cache-timeout", "-1", "p", "m");
	check_fails(&p, "--cache-timeout needs seconds, not '-1'");
	PARSE(&p, "--cache-timeout=1.5", "p", "m");
	check_fails(&p, "--cache-timeout needs seconds, not '1.5'");
	PARSE(&p, "p", "m", "--timeout");
	check_fails(&p, "option '--timeout' needs a value");
}

static void test_flags(void **state)
{
	struct parsed p;

	(void)state;
	PARSE(&p, "-d", "p", "m");
	check_ok(&p);
	check_bool(true, p.o.debug, "debug with -d");
	check_bool(true, p.o.foreground, "foreground implied by -d");
	check_bool(false, p.o.single_thread, "single_thread with only -d");

	PARSE(&p, "--read-only", "p", "m");
	check_ok(&p);
	check_bool(false, p.o.writable, "not writable with --read-only");
	PARSE(&p, "--read-only", "--writable", "p", "m");
	check_ok(&p);
	check_bool(true, p.o.writable, "--writable after --read-only");
}

/* --at: read-only (also for the kernel: -o ro), follows nothing, learns
 * nothing; --writable with it is refused, an empty value too. */
static void test_at(void **state)
{
	struct parsed p;

	(void)state;
	PARSE(&p, "--at", "42", "p", "m");
	check_ok(&p);
	check_str("42", p.o.at, "--at value");
	check_bool(false, p.o.writable, "--at is not writable");
	check_bool(true, p.o.no_follow, "--at follows nothing");
	check_int(0, p.o.learn_seconds, "--at learns nothing");
	check_int(1, (int)p.o.n_fuse_opts, "one -o with --at");
	check_str("ro", p.o.fuse_opts[0], "--at mounts ro");
	PARSE(&p, "--read-only", "--at=2026-12-03 10:00:00+00", "p", "m");
	check_ok(&p);
	check_str("2026-12-03 10:00:00+00", p.o.at, "--at TIME");
	PARSE(&p, "--at", "1", "--writable", "p", "m");
	check_fails(&p, "--at mounts are read-only");
	PARSE(&p, "--at=", "p", "m");
	check_fails(&p, "--at needs a seq or a time");
	PARSE(&p, "p", "m");
	check_ok(&p);
	check_ptr(NULL, p.o.at, "no --at by default");
}

static void test_getopt_forms(void **state)
{
	struct parsed p;

	(void)state;
	PARSE(&p, "-fs", "p", "m");
	check_ok(&p);
	check_bool(true, p.o.foreground, "foreground with -fs");
	check_bool(true, p.o.single_thread, "single_thread with -fs");

	PARSE(&p, "-fo", "allow_other", "p", "m", "-sdoro");
	check_ok(&p);
	check_int(3, p.o.n_fuse_opts,
		  "number of -o options in bundles (+ default_permissions)");
	check_str("allow_other", p.o.fuse_opts[0], "-fo VAL");
	check_str("ro", p.o.fuse_opts[1], "-sdoro");
	check_bool(true, p.o.debug, "debug with -sdoro");

	PARSE(&p, "p", "m", "-fo");
	check_fails(&p, "option '-o' needs a value");
	PARSE(&p, "p", "m", "--time");
	check_fails(&p, "option '--timeout' needs a value");

	/* unique abbreviations, as in vsyncctl */
	PARSE(&p, "--no-f", "--time=7", "--read-o", "p", "m");
	check_ok(&p);
	check_bool(true, p.o.no_follow, "no_follow with --no-f");
	check_int(7, p.o.timeout_ms, "--time=7");
	check_bool(false, p.o.writable, "writable with --read-o");

	/* "--" ends the options */
	PARSE(&p, "-f", "--", "-p", "--m");
	check_ok(&p);
	check_str("-p", p.o.project, "project after --");
	check_str("--m", p.o.mountpoint, "mountpoint after --");
	PARSE(&p, "p", "--", "m", "x");
	check_fails(&p, "unexpected argument 'x'");
	PARSE(&p, "p", "--");
	check_fails(&p, "need PROJECT and MOUNTPOINT");

	/* options after the positionals even under POSIXLY_CORRECT */
	setenv("POSIXLY_CORRECT", "1", 1);
	PARSE(&p, "p", "m", "-f");
	unsetenv("POSIXLY_CORRECT");
	check_ok(&p);
	check_bool(true, p.o.foreground,
		   "-f after positionals, POSIXLY_CORRECT");
}

static void test_other_values(void **state)
{
	struct parsed p;
	const char *args[VS_MOUNT_MAX_CRITICAL * 2 + 8];
	size_t n = 0;

	(void)state;
	PARSE_NOENV(&p, "p", "m");
	check_ok(&p);
	check_bool(false, p.o.no_follow, "no_follow by default");
	check_int(0, p.o.n_critical, "no --critical by default");
	check_ptr(NULL, p.o.ready_file, "no --ready-file by default");
	check_int(-1, p.o.notify_fd, "no --notify-fd by default");
	check_ptr(NULL, p.o.control, "no --control by default");
	check_int(4, p.o.prefetch, "default --prefetch");
	check_int(10, p.o.learn_seconds, "default --learn-seconds");
	check_ptr(NULL, p.o.author, "no --author by default");
	check_int(1LL << 30, p.o.max_file_size, "default --max-file-size");
	check_int(-1, p.o.cache_max, "default --cache-max: the agent picks");
	check_int(1, p.o.cache_mem_max == VS_CACHE_MEM_TOTAL_DEFAULT,
		  "default --cache-mem-max");

	PARSE(&p, "--no-follow", "--critical", "src/*.ts", "--critical=*.json",
	      "--ready-file", "/run/ready", "--notify-fd=3", "--control",
	      ":9100", "--prefetch", "0", "--learn-seconds=3600", "--author",
	      "me", "--max-file-size", "1", "p", "m");
	check_ok(&p);
	check_bool(true, p.o.no_follow, "--no-follow");
	check_int(2, p.o.n_critical, "number of --critical");
	check_str("src/*.ts", p.o.critical[0], "first --critical");
	check_str("*.json", p.o.critical[1], "second --critical");
	check_str("/run/ready", p.o.ready_file, "--ready-file");
	check_int(3, p.o.notify_fd, "--notify-fd=3");
	check_str(":9100", p.o.control, "--control");
	check_int(0, p.o.prefetch, "--prefetch 0");
	check_int(3600, p.o.learn_seconds, "--learn-seconds=3600");
	check_str("me", p.o.author, "--author");
	check_int(1, p.o.max_file_size, "--max-file-size 1");

	PARSE(&p, "--cache-max", "2M", "p", "m");
	check_ok(&p);
	check_int(2LL << 20, p.o.cache_max, "--cache-max 2M");
	PARSE(&p, "--cache-max=0", "p", "m");
	check_ok(&p);
	check_int(0, p.o.cache_max, "--cache-max=0: unbounded");
	PARSE(&p, "--cache-max=3GiB", "p", "m");
	check_ok(&p);
	check_int(3LL << 30, p.o.cache_max, "--cache-max=3GiB");
	PARSE(&p, "--cache-max", "lots", "p", "m");
	check_fails(&p,
		    "--cache-max needs a size (bytes, or with K M G T), not "
		    "'lots'");
	PARSE(&p, "--cache-mem-max", "96K", "p", "m");
	check_ok(&p);
	check_int(96 << 10, (long long)p.o.cache_mem_max,
		  "--cache-mem-max 96K");
	PARSE(&p, "--cache-mem-max=x", "p", "m");
	check_fails(&p, "--cache-mem-max needs a size (bytes, or with K M G "
			"T), not 'x'");
	PARSE(&p, "--cache-max=-1", "p", "m");
	check_fails(&p,
		    "--cache-max needs a size (bytes, or with K M G T), not "
		    "'-1'");

	PARSE(&p, "--notify-fd", "x", "p", "m");
	check_fails(&p, "--notify-fd needs a file descriptor, not 'x'");
	PARSE(&p, "--notify-fd=65536", "p", "m");
	check_fails(&p, "--notify-fd needs a file descriptor, not '65536'");
	PARSE(&p, "--prefetch", "65", "p", "m");
	check_fails(&p, "--prefetch needs 0..64, not '65'");
	PARSE(&p, "--learn-seconds=-1", "p", "m");
	check_fails(&p, "--learn-seconds needs 0..3600, not '-1'");
	PARSE(&p, "--max-file-size", "0", "p", "m");
	check_fails(&p, "--max-file-size needs bytes, not '0'");
	PARSE(&p, "--max-file-size=1099511627777", "p", "m");
	check_fails(&p, "--max-file-size needs bytes, not '1099511627777'");
	PARSE(&p, "p", "m", "--critical");
	check_fails(&p, "option '--critical' needs a value");

	for (int i = 0; i < VS_MOUNT_MAX_CRITICAL; i++) {
		args[n++] = "--critical";
		args[n++] = "*";
	}
	args[n++] = "p";
	args[n++] = "m";
	args[n] = NULL;
	parse_with(&p, NULL, args);
	check_ok(&p);
	check_int(VS_MOUNT_MAX_CRITICAL, p.o.n_critical,
		  "number of --critical at the limit");
	args[n++] = "--critical=*";
	args[n] = NULL;
	parse_with(&p, NULL, args);
	check_fails(&p, "too many --critical globs");
}

static void test_save_policy(void **state)
{
	struct parsed p;

	(void)state;
	PARSE_NOENV(&p, "p", "m");
	check_ok(&p);
	check_int(VS_MOUNT_SAVE_QUIET_MS_DEFAULT, p.o.save_quiet_ms,
		  "default --save-quiet-ms");
	PARSE(&p, "--save-quiet-ms", "250", "p", "m");
	check_ok(&p);
	check_int(250, p.o.save_quiet_ms, "--save-quiet-ms 250");
	PARSE(&p, "--save-quiet-ms=1", "p", "m");
	check_ok(&p);
	check_int(1, p.o.save_quiet_ms, "--save-quiet-ms=1");
	PARSE(&p, "--save-quiet-ms", "0", "p", "m");
	check_fails(&p, "--save-quiet-ms needs 1..60000 milliseconds, not "
			"'0'");
	PARSE(&p, "--save-quiet-ms=60001", "p", "m");
	check_fails(&p, "--save-quiet-ms needs 1..60000 milliseconds, not "
			"'60001'");
	PARSE(&p, "--save-quiet-ms=soon", "p", "m");
	check_fails(&p, "--save-quiet-ms needs 1..60000 milliseconds, not "
			"'soon'");
}

static void test_open_mode(void **state)
{
	struct parsed p;

	(void)state;
	PARSE_NOENV(&p, "p", "m");
	check_ok(&p);
	check_bool(true, p.o.no_open, "default --open-mode: none");
	PARSE(&p, "--open-mode", "kernel", "p", "m");
	check_ok(&p);
	check_bool(false, p.o.no_open, "--open-mode kernel");
	PARSE(&p, "--open-mode", "none", "p", "m");
	check_ok(&p);
	check_bool(true, p.o.no_open, "--open-mode none");
	PARSE(&p, "--open-mode=none", "--open-mode=kernel", "p", "m");
	check_ok(&p);
	check_bool(false, p.o.no_open, "the last --open-mode wins");
	PARSE(&p, "--open-mode=never", "p", "m");
	check_fails(&p, "--open-mode needs none or kernel, not 'never'");
	env.open_mode = "kernel";
	PARSE(&p, "p", "m");
	check_ok(&p);
	check_bool(false, p.o.no_open, "VSYNC_OPEN_MODE=kernel");
	PARSE(&p, "--open-mode", "none", "p", "m");
	check_ok(&p);
	check_bool(true, p.o.no_open, "--open-mode over VSYNC_OPEN_MODE");
	env.open_mode = "sometimes";
	PARSE(&p, "p", "m");
	check_fails(&p, "--open-mode needs none or kernel, not 'sometimes'");
	env.open_mode = NULL;
}

static void test_missing_positionals(void **state)
{
	struct parsed p;

	(void)state;
	PARSE(&p, "myapp");
	check_fails(&p, "need PROJECT and MOUNTPOINT");
	PARSE(&p, "-f", "--pg", "x");
	check_fails(&p, "need PROJECT and MOUNTPOINT");
	parse_with(&p, fake_getenv, (const char *const[]){NULL});
	check_fails(&p, "need PROJECT and MOUNTPOINT");
	PARSE(&p, "p", "m", "extra");
	check_fails(&p, "unexpected argument 'extra'");
}

static void test_unknown_options(void **state)
{
	static const struct {
		const char *arg, *want;
	} cases[] = {
	    {"--bogus", "unknown option '--bogus'"},
	    {"-x", "unknown option '-x'"},
	    {"--bogus=1", "unknown option '--bogus=1'"},
	    {"--no-default-local=1", "unknown option '--no-default-local=1'"},
	    {"--help=yes", "unknown option '--help=yes'"},
	    {"--a-very-long-option-name-past-the-buffer=1",
	     "unknown option '--a-very-long-option-name-past-the-buffer=1'"},
	    {"-fx", "unknown option '-x'"},
	    {"--help=yes", "(--help takes no value)"},
	    {"--read", "ambiguous option '--read'"},
	    {"--cache=/c", "ambiguous option '--cache=/c'"},
	    {"--=1", "unknown option '--=1'"},
	    {"---pg", "unknown option '---pg'"},
	};
	struct parsed p;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		PARSE(&p, "p", "m", cases[i].arg);
		check_fails(&p, cases[i].want);
	}
}

static void test_help_version(void **state)
{
	struct parsed p;

	(void)state;
	PARSE(&p, "--help");
	check_ok(&p);
	check_bool(true, p.o.help, "help with --help");
	PARSE(&p, "-h");
	check_ok(&p);
	check_bool(true, p.o.help, "help with -h");
	PARSE(&p, "--version");
	check_ok(&p);
	check_bool(true, p.o.version, "version with --version");
	PARSE(&p, "-V");
	check_ok(&p);
	check_bool(true, p.o.version, "version with -V");
	/* options before --help are still checked */
	PARSE(&p, "--timeout", "x", "--help");
	check_fails(&p, "not 'x'");
	check_bool(true, strstr(vs_mount_usage, "usage: vsync-mount") != NULL,
		   "vs_mount_usage starts with a usage line");
}

static void test_short_error_buffer(void **state)
{
	char *argv[] = {(char *)"vsync-mount", (char *)"--bogus", NULL};
	struct vs_mount_opts o;
	char err[8];
	int r;

	(void)state;
	memset(err, 'X', sizeof(err));
	r = vs_mount_opts_parse(&o, 2, argv, NULL, err, sizeof(err));
	check_ret(-EINVAL, r, "vsync-mount --bogus");
	check_str("unknown", err, "message cut to an 8-byte buffer");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, env_setup, NULL)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_positionals_and_defaults),
	    T(test_value_forms),
	    T(test_fuse_opts),
	    T(test_local_names),
	    T(test_env_fallbacks),
	    T(test_timeouts),
	    T(test_flags),
	    T(test_at),
	    T(test_getopt_forms),
	    T(test_other_values),
	    T(test_save_policy),
	    T(test_open_mode),
	    T(test_missing_positionals),
	    T(test_unknown_options),
	    T(test_help_version),
	    T(test_short_error_buffer),
	};

	return cmocka_run_group_tests_name("mount_opts", tests, NULL, NULL);
}
