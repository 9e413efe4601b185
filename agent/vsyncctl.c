/*
 * vsyncctl.c - the operator CLI: set up the schema, import a directory as a
 * project, put/rm/mv/mkdir/cat/ls a path, history, rollback, export, status.
 *
 * Every change goes through the SQL write functions of sql/ (see
 * docs/protocol.md), so vsyncctl has the same semantics as any other
 * writer: versions, idempotency keys (--op-id), conflicts (--base), the
 * change sequence and NOTIFY. Content travels as binary bytea parameters
 * and results, so any bytes round-trip exactly; what vsyncctl writes or
 * exports is checked against its SHA-256.
 *
 * Errors are one line on stderr, "vsyncctl: <what went wrong>", and the
 * exit status says what kind of failure it was (EXIT STATUS in --help).
 * The library logger is kept at "error" (or "debug" with -v); library
 * warnings would repeat what the one line says.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsync/hash.h"
#include "vsync/log.h"
#include "vsync/manifest.h"
#include "vsync/migrations.h"
#include "vsync/path.h"
#include "vsync/pg.h"
#include "vsync/redis.h"
#include "vsync/status.h"
#include "vsync/clock.h"
#include "vsync/util.h"
#include "vsync/sign.h"
#include "vsync/banned.h"

#ifndef VSYNC_VERSION
#define VSYNC_VERSION "unknown"
#endif

/* Exit statuses (documented in usage() and docs/protocol.md). */
enum {
	EXIT_OK = 0,
	EXIT_ERR = 1,
	EXIT_USAGE = 2,
	EXIT_NOTFOUND = 3,
	EXIT_CONFLICT = 4,
	EXIT_BACKEND = 5,
	EXIT_INVALID = 6,
};

/* Largest content accepted (PostgreSQL fields stop at 1 GiB; base64
 * storage adds a third). */
#define CTL_MAX_CONTENT (512u << 20)

/* Lock id taken by `init` so concurrent inits apply migrations in turn. */
#define CTL_MIGRATION_LOCK "7262817361"

struct ctl {
	const char *conninfo;
	const char *redis_url; /* --redis / $VSYNC_REDIS_URL: grant, revoke,
				  status */
	int timeout_ms;
	const char *author;
	const char *op_id; /* NULL: a fresh id per change */
	bool quiet;
	struct vs_pg *pg;
	char project_id[VS_UUID_BUFSZ];
};

static const char *const default_excludes[] = {"node_modules", ".git", "dist",
					       NULL};

/* ---- text a writer chose ---------------------------------------------- */

/* Room for a path or symlink target (4095 bytes) with every byte escaped. */
#define PRINTABLE_BUFSZ (4 * 4096 + 4)

/*
 * @s as plain text for a terminal, into @buf (@size bytes, at least 4):
 * each control character (C0, DEL, and C1 as UTF-8: U+0080..U+009F) as
 * \xNN per byte, so an author, path or symlink target that a writer
 * chose can neither move the cursor nor forge a line. Cut, ending in
 * "...", when it does not fit. Returns @buf.
 */
static const char *ctl_printable(char *buf, size_t size, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	for (; *p; p++) {
		bool c0 = *p < 0x20 || *p == 0x7f;
		bool c1 = p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
		size_t need = c0 ? 4 : c1 ? 8 : 1;

		if (n + need + 4 > size) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		if (c1) {
			snprintf(buf + n, 9, "\\x%02x\\x%02x", p[0], p[1]);
			p++;
		} else if (c0) {
			snprintf(buf + n, 5, "\\x%02x", p[0]);
		} else {
			buf[n] = (char)*p;
		}
		n += need;
	}
	buf[n] = '\0';
	return buf;
}

/* ---- errors ------------------------------------------------------------ */

static int ctl_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int ctl_fail(int code, const char *fmt, ...)
{
	char msg[1024], line[4 * sizeof(msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one line, whatever a path or server message holds */
	fprintf(stderr, "vsyncctl: %s\n",
		ctl_printable(line, sizeof(line), msg));
	return code;
}

/* The exit status for a -errno from the backend. */
static int exit_for(int err)
{
	switch (-err) {
	case 0:
		return EXIT_OK;
	case ENOENT:
		return EXIT_NOTFOUND;
	case ESTALE:
	case EEXIST:
		return EXIT_CONFLICT;
	case ECONNREFUSED:
	case ETIMEDOUT:
	case EACCES:
	case EAGAIN: /* serialization failure, deadlock, resources: again */
		return EXIT_BACKEND;
	case EINVAL:
	case ENAMETOOLONG:
	case E2BIG: /* a server limit */
		return EXIT_INVALID;
	default:
		return EXIT_ERR;
	}
}

/* Report backend failure @r (the server's own message) as one line. */
static int pg_failed(struct ctl *c, int r)
{
	return ctl_fail(exit_for(r), "%s", vs_pg_last_error(c->pg));
}

/* ---- argument helpers ---------------------------------------------------- */

static int check_path(const char *path)
{
	if (!*path || vs_path_check(path, strlen(path)) < 0)
		return ctl_fail(EXIT_INVALID, "invalid path '%s'", path);
	return 0;
}

static bool uuid_valid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;

	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == '-' && s[i] != '-')
			return false;
		if (shape[i] == 'x' && !isxdigit((unsigned char)s[i]))
			return false;
	}
	return s[i] == '\0';
}

/* The SQL side also refuses control characters in paths (docs/protocol.md). */
static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

/* Read all of @fd into a malloc'd buffer. 0 or -errno (-EFBIG over the
 * content limit). */
static int read_all(int fd, uint8_t **out, size_t *len)
{
	char *p = NULL;
	int r;

	r = vs_read_fd_whole(&p, len, fd, CTL_MAX_CONTENT);
	*out = (uint8_t *)p;
	return r;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	r = read_all(fd, out, len);
	close(fd);
	return r;
}

/* ---- connection and project --------------------------------------------- */

static int ctl_connect(struct ctl *c)
{
	int r;

	r = vs_pg_new(&c->pg, c->conninfo, c->timeout_ms);
	if (r < 0)
		return ctl_fail(EXIT_ERR, "out of memory");
	r = vs_pg_ensure(c->pg);
	if (r < 0)
		return ctl_fail(exit_for(r) == EXIT_ERR ? EXIT_BACKEND
							: exit_for(r),
				"cannot connect to PostgreSQL: %s",
				vs_pg_last_error(c->pg));
	return 0;
}

/* Connect and resolve project @name into c->project_id. */
static int ctl_project(struct ctl *c, const char *name)
{
	int r;

	r = ctl_connect(c);
	if (r)
		return r;
	r = vs_pg_project_resolve(c->pg, name, c->project_id);
	if (r == -ENOENT)
		return ctl_fail(EXIT_NOTFOUND, "unknown project '%s'", name);
	if (r < 0)
		return pg_failed(c, r);
	return 0;
}

/* The arguments "PROJECT PATH..." at @args: check the @npaths paths, then
 * resolve the project. 0, or an exit code with the reason printed. */
static int ctl_project_paths(struct ctl *c, char **args, int npaths)
{
	int r = 0;

	for (int i = 1; i <= npaths && !r; i++)
		r = check_path(args[i]);
	return r ? r : ctl_project(c, args[0]);
}

/* Run @sql with text parameters; *res owns the result on success. */
static int ctl_query(struct ctl *c, PGresult **res, const char *sql, int n,
		     const char *const *v)
{
	return vs_pg_exec(c->pg, res, sql, n, v, NULL, NULL, 0);
}

/* ---- init ------------------------------------------------------------- */

/* Apply migration @m in its own transaction, under the migration lock.
 * *applied says whether it ran (or was recorded already); @reapply runs
 * it even if recorded. functions.sql is applied every time and never
 * recorded. */
static int init_one(struct ctl *c, const struct vs_migration *m, bool reapply,
		    bool *applied)
{
	const char *v[1] = {m->name};
	PGresult *res = NULL;
	bool functions = m == &vs_sql_functions;
	int r;

	*applied = false;
	r = vs_pg_cmd(c->pg,
		      "BEGIN; SET LOCAL client_min_messages = warning;"
		      " SELECT pg_advisory_xact_lock(" CTL_MIGRATION_LOCK ");"
		      " CREATE TABLE IF NOT EXISTS vsync_schema_migrations ("
		      " name text PRIMARY KEY,"
		      " applied_at timestamptz NOT NULL DEFAULT now())");
	if (r < 0)
		goto out;
	r = ctl_query(c, &res,
		      "SELECT 1 FROM vsync_schema_migrations WHERE name = $1",
		      1, v);
	if (r < 0)
		goto out;
	*applied = PQntuples(res) == 0 || reapply || functions;
	PQclear(res);
	res = NULL;
	if (*applied) {
		r = vs_pg_cmd(c->pg, m->sql);
		if (r < 0)
			goto out;
	}
	if (*applied && !functions) {
		r = ctl_query(c, &res,
			      "INSERT INTO vsync_schema_migrations (name)"
			      " VALUES ($1) ON CONFLICT (name)"
			      " DO UPDATE SET applied_at = now()",
			      1, v);
		if (r < 0)
			goto out;
	}
	r = vs_pg_commit(c->pg);
out:
	PQclear(res);
	if (r < 0)
		vs_pg_rollback(c->pg);
	return r;
}

static int cmd_init(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"reapply", no_argument, NULL, 'R'}, {NULL, 0, NULL, 0}};
	const struct vs_migration *m;
	bool reapply = false, applied;
	int o, r, n = 0;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'R')
			return EXIT_USAGE;
		reapply = true;
	}
	if (optind != argc)
		return ctl_fail(EXIT_USAGE, "usage: vsyncctl init [--reapply]");
	r = ctl_connect(c);
	if (r)
		return r;
	for (m = vs_migrations; m->name; m++) {
		r = init_one(c, m, reapply, &applied);
		if (r < 0)
			return ctl_fail(exit_for(r), "cannot apply %s: %s",
					m->name, vs_pg_last_error(c->pg));
		if (applied) {
			n++;
			if (!c->quiet)
				printf("applied %s\n", m->name);
		}
	}
	/* the functions, every time: a function is changed in place */
	r = init_one(c, &vs_sql_functions, true, &applied);
	if (r < 0)
		return ctl_fail(exit_for(r), "cannot apply %s: %s",
				vs_sql_functions.name, vs_pg_last_error(c->pg));
	if (!c->quiet)
		printf("schema up to date (%d migration%s applied, "
		       "functions.sql applied)\n",
		       n, n == 1 ? "" : "s");
	return EXIT_OK;
}

/* ---- writes ---------------------------------------------------------- */

static int batch_timeout(const struct ctl *c, uint64_t bytes);

/*
 * vsync_write_file(project, path, bytes, mode, base, op, author, kind).
 * @mode/@base may be NULL (SQL NULL). On success the result row
 * (seq, version, content_hash) is in *res. The deadline grows with @len
 * (batch_timeout).
 */
static int ctl_write(struct ctl *c, PGresult **res, const char *path,
		     const uint8_t *buf, size_t len, const char *mode,
		     const char *base, const char *kind)
{
	const char *v[8] = {c->project_id, path,     (const char *)buf, mode,
			    base,	   c->op_id, c->author,		kind};
	const int lens[8] = {0, 0, (int)len, 0, 0, 0, 0, 0};
	const int fmts[8] = {0, 0, 1, 0, 0, 0, 0, 0};
	int r;

	vs_pg_set_timeout(c->pg, batch_timeout(c, len));
	r = vs_pg_exec(c->pg, res,
		       "SELECT seq, version, content_hash FROM"
		       " vsync_write_file($1::uuid, $2, $3::bytea, $4::int,"
		       " $5::int, $6::uuid, $7, $8)",
		       8, v, lens, fmts, 0);
	vs_pg_set_timeout(c->pg, c->timeout_ms);
	return r;
}

/* Check that the server stored what we sent: its hash is ours. A retry
 * (--op-id) with other content gets the first call's result: a conflict. */
static int check_stored(struct ctl *c, const char *path, PGresult *res,
			const uint8_t *buf, size_t len)
{
	char hex[VS_HASH_HEX_LEN + 1];

	if (vs_sha256_hex(hex, buf, len) < 0)
		return ctl_fail(EXIT_ERR, "out of memory");
	if (!strcmp(hex, PQgetvalue(res, 0, 2)))
		return 0;
	if (c->op_id)
		return ctl_fail(EXIT_CONFLICT,
				"operation %s was already applied to '%s' with"
				" other content (version %s, sha256 %.12s)",
				c->op_id, path, PQgetvalue(res, 0, 1),
				PQgetvalue(res, 0, 2));
	return ctl_fail(EXIT_ERR, "'%s': the server stored sha256 %s, not %s",
			path, PQgetvalue(res, 0, 2), hex);
}

static int cmd_put(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"base", required_argument, NULL, 'b'},
	    {"mode", required_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0}};
	const char *base = NULL, *src = "-", *path;
	char mode[16] = "", basebuf[16];
	uint8_t *buf = NULL;
	PGresult *res = NULL;
	struct stat st;
	size_t len = 0;
	long v;
	int o, r;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'b') {
			if (vs_parse_long(&v, optarg, 10, 0, INT_MAX) < 0)
				return ctl_fail(EXIT_INVALID,
						"invalid --base '%s'", optarg);
			snprintf(basebuf, sizeof(basebuf), "%ld", v);
			base = basebuf;
		} else if (o == 'm') {
			if (vs_parse_long(&v, optarg, 8, 0, 07777) < 0)
				return ctl_fail(EXIT_INVALID,
						"invalid --mode '%s'", optarg);
			snprintf(mode, sizeof(mode), "%ld", v);
		} else {
			return EXIT_USAGE;
		}
	}
	if (argc - optind < 2 || argc - optind > 3)
		return ctl_fail(EXIT_USAGE,
				"usage: vsyncctl put PROJECT PATH [FILE|-] "
				"[--base N] [--mode OCTAL]");
	path = argv[optind + 1];
	if (argc - optind == 3)
		src = argv[optind + 2];
	r = check_path(path);
	if (r)
		return r;
	if (!strcmp(src, "-")) {
		r = read_all(STDIN_FILENO, &buf, &len);
	} else {
		r = read_file(src, &buf, &len);
		if (!r && !*mode && !stat(src, &st) && (st.st_mode & S_IXUSR))
			snprintf(mode, sizeof(mode), "%d", 0755);
	}
	if (r < 0)
		return ctl_fail(r == -EFBIG ? EXIT_INVALID : EXIT_ERR,
				"cannot read '%s': %s", src, strerror(-r));
	r = ctl_project(c, argv[optind]);
	if (r)
		goto out;
	r = ctl_write(c, &res, path, buf, len, *mode ? mode : NULL, base,
		      "file");
	if (r < 0) {
		r = pg_failed(c, r);
		goto out;
	}
	r = check_stored(c, path, res, buf, len);
	if (!r && !c->quiet)
		printf("%s: version %s (seq %s) sha256 %.12s\n", path,
		       PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0),
		       PQgetvalue(res, 0, 2));
out:
	PQclear(res);
	free(buf);
	return r;
}

/* Shared by rm, mv, mkdir, rollback: run a write function and print
 * "<what> (seq N)". */
static int ctl_change(struct ctl *c, const char *sql, int n,
		      const char *const *v, const char *what)
{
	PGresult *res = NULL;
	int r;

	r = ctl_query(c, &res, sql, n, v);
	if (r < 0)
		return pg_failed(c, r);
	if (!c->quiet)
		printf("%s (seq %s)\n", what, PQgetvalue(res, 0, 0));
	PQclear(res);
	return EXIT_OK;
}

static int cmd_rm(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"recursive", no_argument, NULL, 'r'},
	    {"base", required_argument, NULL, 'b'},
	    {NULL, 0, NULL, 0}};
	const char *base = NULL, *rec = "false";
	const char *v[6];
	long n;
	int o, r;

	while ((o = getopt_long(argc, argv, "rR", opts, NULL)) != -1) {
		if (o == 'r' || o == 'R') {
			rec = "true";
		} else if (o == 'b') {
			if (vs_parse_long(&n, optarg, 10, 0, INT_MAX) < 0)
				return ctl_fail(EXIT_INVALID,
						"invalid --base '%s'", optarg);
			base = optarg;
		} else {
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2)
		return ctl_fail(EXIT_USAGE,
				"usage: vsyncctl rm [-r] PROJECT PATH");
	r = ctl_project_paths(c, argv + optind, 1);
	if (r)
		return r;
	v[0] = c->project_id;
	v[1] = argv[optind + 1];
	v[2] = base;
	v[3] = c->op_id;
	v[4] = c->author;
	v[5] = rec;
	return ctl_change(c,
			  "SELECT vsync_delete($1::uuid, $2, $3::int, $4::uuid,"
			  " $5, $6::boolean)",
			  6, v, "removed");
}

static int cmd_mv(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"base", required_argument, NULL, 'b'}, {NULL, 0, NULL, 0}};
	const char *base = NULL;
	const char *v[6];
	long n;
	int o, r;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'b' || vs_parse_long(&n, optarg, 10, 0, INT_MAX) < 0)
			return o == 'b'
				   ? ctl_fail(EXIT_INVALID,
					      "invalid --base '%s'", optarg)
				   : EXIT_USAGE;
		base = optarg;
	}
	if (argc - optind != 3)
		return ctl_fail(EXIT_USAGE,
				"usage: vsyncctl mv PROJECT FROM TO");
	r = ctl_project_paths(c, argv + optind, 2);
	if (r)
		return r;
	v[0] = c->project_id;
	v[1] = argv[optind + 1];
	v[2] = argv[optind + 2];
	v[3] = base;
	v[4] = c->op_id;
	v[5] = c->author;
	return ctl_change(c,
			  "SELECT vsync_rename($1::uuid, $2, $3, $4::int,"
			  " $5::uuid, $6)",
			  6, v, "renamed");
}

static int cmd_mkdir(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"mode", required_argument, NULL, 'm'}, {NULL, 0, NULL, 0}};
	char mode[16] = "";
	const char *v[5];
	long n;
	int o, r;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'm')
			return EXIT_USAGE;
		if (vs_parse_long(&n, optarg, 8, 0, 07777) < 0)
			return ctl_fail(EXIT_INVALID, "invalid --mode '%s'",
					optarg);
		snprintf(mode, sizeof(mode), "%ld", n);
	}
	if (argc - optind != 2)
		return ctl_fail(
		    EXIT_USAGE,
		    "usage: vsyncctl mkdir PROJECT PATH [--mode OCTAL]");
	r = ctl_project_paths(c, argv + optind, 1);
	if (r)
		return r;
	v[0] = c->project_id;
	v[1] = argv[optind + 1];
	v[2] = *mode ? mode : NULL;
	v[3] = c->op_id;
	v[4] = c->author;
	return ctl_change(c,
			  "SELECT seq FROM vsync_mkdir($1::uuid, $2, $3::int,"
			  " $4::uuid, $5)",
			  5, v, "created directory");
}

static int cmd_rollback(struct ctl *c, int argc, char **argv)
{
	const char *v[5];
	PGresult *res = NULL;
	long n;
	int r;

	if (argc != 4)
		return ctl_fail(
		    EXIT_USAGE,
		    "usage: vsyncctl rollback PROJECT PATH VERSION");
	if (vs_parse_long(&n, argv[3], 10, 1, INT_MAX) < 0)
		return ctl_fail(EXIT_INVALID, "invalid version '%s'", argv[3]);
	r = check_path(argv[2]);
	if (!r)
		r = ctl_project(c, argv[1]);
	if (r)
		return r;
	v[0] = c->project_id;
	v[1] = argv[2];
	v[2] = argv[3];
	v[3] = c->op_id;
	v[4] = c->author;
	r = ctl_query(c, &res,
		      "SELECT seq, version, content_hash FROM"
		      " vsync_rollback($1::uuid, $2, $3::int, $4::uuid, $5)",
		      5, v);
	if (r < 0)
		return pg_failed(c, r);
	if (!c->quiet)
		printf(
		    "%s: version %s has the content of version %s (seq %s)\n",
		    argv[2], PQgetvalue(res, 0, 1), argv[3],
		    PQgetvalue(res, 0, 0));
	PQclear(res);
	return EXIT_OK;
}

/* ---- import ----------------------------------------------------------- */

struct imp_entry {
	char *rel; /* project path */
	enum vs_kind kind;
	uint32_t mode;
	uint64_t size;
};

struct imp {
	const char *root;
	const char **excludes; /* NULL-terminated */
	struct imp_entry *v;
	size_t n, alloc;
	size_t nfiles, nexcluded, nskipped;
	uint64_t total_bytes;
};

static bool imp_excluded(const struct imp *im, const char *name,
			 const char *rel)
{
	const char **e;

	for (e = im->excludes; *e; e++)
		if (!strcmp(*e, name) || !strcmp(*e, rel))
			return true;
	return false;
}

static int imp_add(struct imp *im, char *rel, enum vs_kind kind, uint32_t mode,
		   uint64_t size)
{
	struct imp_entry *nv;
	size_t na;

	if (im->n == im->alloc) {
		na = im->alloc ? im->alloc * 2 : 256;
		nv = realloc(im->v, na * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		im->v = nv;
		im->alloc = na;
	}
	im->v[im->n++] = (struct imp_entry){rel, kind, mode, size};
	if (kind != VS_KIND_DIR) {
		im->nfiles++;
		im->total_bytes += size;
	}
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read the names of directory @dir, sorted bytewise. */
static int list_dir(const char *dir, char ***names_out, size_t *n_out)
{
	char **names = NULL, **nn;
	size_t n = 0, alloc = 0;
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 32;
			nn = realloc(names, alloc * sizeof(*names));
			if (!nn) {
				r = -ENOMEM;
				goto out;
			}
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (errno)
		r = -errno;
out:
	closedir(d);
	if (r < 0) {
		while (n)
			free(names[--n]);
		free(names);
		return r;
	}
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	*names_out = names;
	*n_out = n;
	return 0;
}

static char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);

	if (!p)
		return NULL;
	memcpy(p, a, la);
	p[la] = '/';
	memcpy(p + la + 1, b, lb + 1);
	return la ? p : memmove(p, p + 1, lb + 1);
}

static int imp_walk(struct imp *im, const char *rel);

static enum vs_kind imp_kind(mode_t m)
{
	return S_ISLNK(m) ? VS_KIND_SYMLINK : VS_KIND_FILE;
}

/* Files with their owner's exec bit become 0755, others 0644. */
static uint32_t imp_mode(mode_t m)
{
	if (S_ISLNK(m))
		return 0777;
	return (m & S_IXUSR) ? 0755 : 0644;
}

/* Classify one directory entry @name of @rel and add it. */
static int imp_entry(struct imp *im, const char *rel, const char *name)
{
	char *r_path = NULL, *full = NULL;
	struct stat st;
	int r = -ENOMEM;

	r_path = path_join(rel, name);
	full = r_path ? path_join(im->root, r_path) : NULL;
	if (!full)
		goto out;
	if (imp_excluded(im, name, r_path)) {
		im->nexcluded++;
		r = 0;
		goto out;
	}
	if (lstat(full, &st) < 0) {
		r = -errno;
		ctl_fail(EXIT_ERR, "cannot stat '%s': %s", full,
			 strerror(errno));
		goto out;
	}
	if (vs_path_check(r_path, strlen(r_path)) < 0 ||
	    vs_path_syncable(r_path, strlen(r_path)) < 0) {
		ctl_fail(0, "skipping '%s': invalid path", r_path);
		im->nskipped++;
		r = 0;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = imp_add(im, r_path, VS_KIND_DIR, st.st_mode & 07777, 0);
		if (!r) {
			r_path = NULL; /* owned by the entry now */
			r = imp_walk(im, im->v[im->n - 1].rel);
		}
	} else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
		r = imp_add(im, r_path, imp_kind(st.st_mode),
			    imp_mode(st.st_mode), (uint64_t)st.st_size);
		if (!r)
			r_path = NULL;
	} else {
		ctl_fail(0, "skipping '%s': not a file, directory or symlink",
			 r_path);
		im->nskipped++;
		r = 0;
	}
out:
	free(r_path);
	free(full);
	return r;
}

/* Add everything under project path @rel ("" = the root) in path order. */
static int imp_walk(struct imp *im, const char *rel)
{
	char **names = NULL, *dir;
	size_t n = 0, i;
	int r;

	dir = *rel ? path_join(im->root, rel) : strdup(im->root);
	if (!dir)
		return -ENOMEM;
	r = list_dir(dir, &names, &n);
	if (r < 0)
		ctl_fail(EXIT_ERR, "cannot read directory '%s': %s", dir,
			 strerror(-r));
	for (i = 0; i < n && r == 0; i++)
		r = imp_entry(im, rel, names[i]);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(dir);
	return r;
}

static void imp_release(struct imp *im)
{
	size_t i;

	for (i = 0; i < im->n; i++)
		free(im->v[i].rel);
	free(im->v);
}

/* The row of @res whose first column is @key, or -1: the rows are in
 * bytewise order of that column (vsync_manifest's paths, vsync_blobs's
 * hashes). */
static int row_find(PGresult *res, const char *key)
{
	int lo = 0, hi = PQntuples(res) - 1, mid, d;

	while (lo <= hi) {
		mid = lo + (hi - lo) / 2;
		d = strcmp(PQgetvalue(res, mid, 0), key);
		if (d == 0)
			return mid;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

struct imp_stats {
	size_t files, dirs, links, unchanged, done;
	uint64_t bytes, done_bytes;
};

static void imp_progress(const struct imp *im, const struct imp_stats *s,
			 bool final)
{
	static bool tty = false, checked = false;

	if (!checked) {
		tty = isatty(STDERR_FILENO);
		checked = true;
	}
	if (!tty)
		return;
	fprintf(stderr, "\rimported %zu/%zu files, %.1f MiB%s", s->done,
		im->nfiles, mib(s->done_bytes), final ? "\n" : "");
}

/*
 * A PostgreSQL array in binary format (what array_recv reads), built for
 * one binary parameter: one dimension of elements of type @oid, each an
 * int32 length (-1: NULL) and its bytes. The header is written by
 * pgarr_finish().
 */
#define PGARR_HEADER 20
#define PGOID_BYTEA  17
#define PGOID_INT4   23
#define PGOID_TEXT   25

struct pgarr {
	uint8_t *buf;
	size_t len, alloc;
	uint32_t oid, n;
	bool nulls;
};

static void pgarr_init(struct pgarr *a, uint32_t oid)
{
	*a = (struct pgarr){.oid = oid, .len = PGARR_HEADER};
}

static void pgarr_release(struct pgarr *a)
{
	free(a->buf);
	pgarr_init(a, a->oid);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Append element @p (@len bytes; NULL: SQL NULL). 0 or -ENOMEM, -E2BIG
 * past PostgreSQL's 1 GiB field limit. */
static int pgarr_add(struct pgarr *a, const void *p, size_t len)
{
	size_t need = a->len + 4 + (p ? len : 0), na;
	uint8_t *nb;

	if (need >= (1u << 30))
		return -E2BIG;
	if (need > a->alloc) {
		na = a->alloc ? a->alloc : 4096;
		while (na < need)
			na *= 2;
		nb = realloc(a->buf, na);
		if (!nb)
			return -ENOMEM;
		a->buf = nb;
		a->alloc = na;
	}
	put_be32(a->buf + a->len, p ? (uint32_t)len : UINT32_MAX);
	if (p && len)
		memcpy(a->buf + a->len + 4, p, len);
	a->len = need;
	a->nulls |= !p;
	a->n++;
	return 0;
}

static int pgarr_add_str(struct pgarr *a, const char *s)
{
	return pgarr_add(a, s, strlen(s));
}

static int pgarr_add_int(struct pgarr *a, uint32_t v)
{
	uint8_t b[4];

	put_be32(b, v);
	return pgarr_add(a, b, sizeof(b));
}

/* Write the header; the array is then a->buf, a->len bytes. */
static void pgarr_finish(struct pgarr *a)
{
	if (!a->buf && pgarr_add(a, NULL, 0) < 0)
		vs_bug("cannot finish an empty array");
	put_be32(a->buf, 1);
	put_be32(a->buf + 4, a->nulls);
	put_be32(a->buf + 8, a->oid);
	put_be32(a->buf + 12, a->n);
	put_be32(a->buf + 16, 1);
}

/*
 * The import goes in batches: up to IMP_BATCH_FILES entries or
 * IMP_BATCH_BYTES of content (a larger file alone), one
 * vsync_import_batch() call each, all in the import's one transaction.
 * Each call has the --timeout deadline plus what its content takes at
 * VS_MIN_RATE (vs_size_timeout_ms), so a deadline is sized to its batch,
 * not to the whole import.
 */
#define IMP_BATCH_FILES 2000
#define IMP_BATCH_BYTES (32u << 20)

/* The deadline of a call that moves @bytes of content, in ms. */
static int batch_timeout(const struct ctl *c, uint64_t bytes)
{
	return vs_size_timeout_ms(c->timeout_ms, bytes);
}

struct imp_batch {
	struct pgarr paths, kinds, modes, contents;
	/* per element: the entry of the import and, for a file or symlink,
	 * the SHA-256 the server must have stored */
	const struct imp_entry **entry;
	char (*hash)[VS_HASH_HEX_LEN + 1];
	size_t n, alloc;
	uint64_t bytes;
};

static void imp_batch_init(struct imp_batch *b)
{
	memset(b, 0, sizeof(*b));
	pgarr_init(&b->paths, PGOID_TEXT);
	pgarr_init(&b->kinds, PGOID_TEXT);
	pgarr_init(&b->modes, PGOID_INT4);
	pgarr_init(&b->contents, PGOID_BYTEA);
}

/* Empty @b for the next batch (keeps nothing). */
static void imp_batch_release(struct imp_batch *b)
{
	pgarr_release(&b->paths);
	pgarr_release(&b->kinds);
	pgarr_release(&b->modes);
	pgarr_release(&b->contents);
	free(b->entry);
	free(b->hash);
	imp_batch_init(b);
}

/* Add entry @e with content @buf (@len bytes; NULL for a dir) whose hash
 * is @hex. 0 or -ENOMEM / -E2BIG. */
static int imp_batch_add(struct imp_batch *b, const struct imp_entry *e,
			 const uint8_t *buf, size_t len, const char *hex)
{
	const struct imp_entry **ne;
	char(*nh)[VS_HASH_HEX_LEN + 1];
	size_t na;
	int r;

	if (b->n == b->alloc) {
		na = b->alloc ? b->alloc * 2 : 256;
		ne = realloc(b->entry, na * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		b->entry = ne;
		nh = realloc(b->hash, na * sizeof(*nh));
		if (!nh)
			return -ENOMEM;
		b->hash = nh;
		b->alloc = na;
	}
	r = pgarr_add_str(&b->paths, e->rel);
	if (!r)
		r = pgarr_add_str(&b->kinds, vs_kind_name(e->kind));
	if (!r)
		r = pgarr_add_int(&b->modes, e->mode);
	if (!r)
		r = pgarr_add(&b->contents, e->kind == VS_KIND_DIR ? NULL : buf,
			      len);
	if (r < 0)
		return r;
	b->entry[b->n] = e;
	snprintf(b->hash[b->n], sizeof(b->hash[b->n]), "%s", hex ? hex : "");
	b->n++;
	b->bytes += len;
	return 0;
}

/* Send batch @b as one vsync_import_batch() call and check what the
 * server stored; @b is empty afterwards. -ECANCELED for a content the
 * server hashed otherwise (reported), else 0 or the backend's -errno. */
static int imp_batch_flush(struct ctl *c, struct imp_batch *b,
			   struct imp_stats *s)
{
	const char *v[6];
	int lens[6] = {0}, fmts[6] = {0, 0, 1, 1, 1, 1};
	struct pgarr *arr[4] = {&b->paths, &b->kinds, &b->modes, &b->contents};
	const struct imp_entry *e;
	PGresult *res = NULL;
	long idx;
	int i, r;

	if (!b->n)
		return 0;
	v[0] = c->project_id;
	v[1] = c->author;
	for (i = 0; i < 4; i++) {
		pgarr_finish(arr[i]);
		v[i + 2] = (const char *)arr[i]->buf;
		lens[i + 2] = (int)arr[i]->len;
	}
	vs_pg_set_timeout(c->pg, batch_timeout(c, b->bytes));
	r = vs_pg_exec(c->pg, &res,
		       "SELECT idx, seq, version, coalesce(content_hash, '')"
		       " FROM vsync_import_batch($1::uuid, $2, $3::text[],"
		       " $4::text[], $5::int[], $6::bytea[])",
		       6, v, lens, fmts, 0);
	vs_pg_set_timeout(c->pg, c->timeout_ms);
	for (i = 0; r == 0 && i < PQntuples(res); i++) {
		if (vs_parse_long(&idx, PQgetvalue(res, i, 0), 10, 1,
				  (long)b->n) < 0)
			vs_bug("vsync_import_batch returned index '%s'",
			       PQgetvalue(res, i, 0));
		e = b->entry[idx - 1];
		if (e->kind == VS_KIND_DIR) {
			s->dirs++;
			continue;
		}
		if (strcmp(PQgetvalue(res, i, 3), b->hash[idx - 1])) {
			ctl_fail(0, "'%s': the server stored sha256 %s, not %s",
				 e->rel, PQgetvalue(res, i, 3),
				 b->hash[idx - 1]);
			r = -ECANCELED;
			break;
		}
		if (e->kind == VS_KIND_SYMLINK)
			s->links++;
		else
			s->files++;
		s->bytes += e->size;
	}
	if (r == 0)
		s->unchanged += b->n - (size_t)PQntuples(res);
	PQclear(res);
	imp_batch_release(b);
	return r;
}

/* Add directory @e to @b unless the project has it already. */
static int imp_dir(const struct imp_entry *e, PGresult *cur,
		   struct imp_batch *b, struct imp_stats *s)
{
	int row = row_find(cur, e->rel);

	if (row >= 0 && !strcmp(PQgetvalue(cur, row, 1), "dir")) {
		s->unchanged++;
		return 0;
	}
	return imp_batch_add(b, e, NULL, 0, NULL);
}

/* Read file or symlink @e of the import; *buf owns its bytes. */
static int imp_read(const struct imp *im, const struct imp_entry *e,
		    uint8_t **buf, size_t *len)
{
	char *full = path_join(im->root, e->rel);
	ssize_t n;
	int r;

	if (!full)
		return -ENOMEM;
	if (e->kind == VS_KIND_FILE) {
		r = read_file(full, buf, len);
	} else {
		*buf = malloc(VS_PATH_MAX);
		r = *buf ? 0 : -ENOMEM;
		n = *buf ? readlink(full, (char *)*buf, VS_PATH_MAX) : 0;
		if (!r && (n < 0 || n >= VS_PATH_MAX))
			r = n < 0 ? -errno : -ENAMETOOLONG;
		*len = n > 0 ? (size_t)n : 0;
	}
	if (r < 0) {
		ctl_fail(0, "cannot read '%s': %s", full, strerror(-r));
		free(*buf);
		*buf = NULL;
	}
	free(full);
	return r;
}

/* Read file or symlink @e and add it to @b unless the project has it
 * already, with the same kind, mode and content. */
static int imp_file(const struct imp *im, const struct imp_entry *e,
		    PGresult *cur, struct imp_batch *b, struct imp_stats *s)
{
	char hex[VS_HASH_HEX_LEN + 1], mode[16];
	uint8_t *buf = NULL;
	size_t len = 0;
	int row, r;

	r = imp_read(im, e, &buf, &len);
	if (r < 0)
		return r == -ENOMEM ? r : -ECANCELED;
	r = vs_sha256_hex(hex, buf, len);
	if (r < 0)
		goto out;
	snprintf(mode, sizeof(mode), "%u", e->mode);
	row = row_find(cur, e->rel);
	if (row >= 0 &&
	    !strcmp(PQgetvalue(cur, row, 1), vs_kind_name(e->kind)) &&
	    !strcmp(PQgetvalue(cur, row, 2), mode) &&
	    !strcmp(PQgetvalue(cur, row, 3), hex)) {
		s->unchanged++;
		goto out;
	}
	r = imp_batch_add(b, e, buf, len, hex);
out:
	s->done++;
	s->done_bytes += len;
	free(buf);
	return r;
}

/* File @e of the import, larger than a chunk (VS_CHUNK_SIZE): hashed,
 * then sent chunk by chunk and named by vsync_write_chunked, never whole
 * in memory, unless the project has it already. */
static int imp_large(struct ctl *c, const struct imp *im,
		     const struct imp_entry *e, PGresult *cur,
		     struct imp_stats *s)
{
	char hex[VS_HASH_HEX_LEN + 1], mode[16], size[24], *shas = NULL;
	const char *v[7] = {c->project_id, e->rel, hex,	     size,
			    NULL,	   mode,   c->author};
	char *full = path_join(im->root, e->rel);
	PGresult *res = NULL;
	struct stat st;
	int fd = -1, row, r;

	if (!full)
		return -ENOMEM;
	fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	r = fd < 0 || fstat(fd, &st) < 0 ? -errno : 0;
	if (r == 0)
		r = vs_sha256_fd_hex(hex, fd);
	if (r < 0) {
		ctl_fail(0, "cannot read '%s': %s", full, strerror(-r));
		r = r == -ENOMEM ? r : -ECANCELED;
		goto out;
	}
	snprintf(mode, sizeof(mode), "%u", e->mode);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)st.st_size);
	row = row_find(cur, e->rel);
	if (row >= 0 && !strcmp(PQgetvalue(cur, row, 1), "file") &&
	    !strcmp(PQgetvalue(cur, row, 2), mode) &&
	    !strcmp(PQgetvalue(cur, row, 3), hex)) {
		s->unchanged++;
		goto done;
	}
	r = vs_pg_chunks_put(c->pg, c->project_id, hex, fd,
			     (uint64_t)st.st_size, c->timeout_ms, &shas);
	v[4] = shas;
	if (r == -EBADMSG || r == -EIO) {
		ctl_fail(0, "'%s' changed while it was imported", full);
		r = -ECANCELED;
		goto out;
	}
	if (r == 0)
		r = ctl_query(c, &res,
			      "SELECT content_hash FROM vsync_write_chunked("
			      "$1::uuid, $2, $3, $4::bigint, $5::text[],"
			      " $6::int, NULL, NULL, NULL, $7)",
			      7, v);
	if (r < 0)
		goto out;
	if (strcmp(PQgetvalue(res, 0, 0), hex)) {
		ctl_fail(0, "'%s': the server stored sha256 %s, not %s", e->rel,
			 PQgetvalue(res, 0, 0), hex);
		r = -ECANCELED;
		goto out;
	}
	s->files++;
	s->bytes += (uint64_t)st.st_size;
done:
	s->done++;
	s->done_bytes += (uint64_t)st.st_size;
out:
	PQclear(res);
	if (fd >= 0)
		close(fd);
	free(shas);
	free(full);
	return r;
}

/* Write every entry of @im into the project, inside the caller's
 * transaction, batch by batch. -ECANCELED for a local failure (already
 * reported), else the backend's -errno. */
static int imp_apply(struct ctl *c, const struct imp *im, struct imp_stats *s)
{
	const char *v[1] = {c->project_id};
	struct imp_batch b;
	PGresult *cur = NULL;
	size_t i;
	int r;

	imp_batch_init(&b);
	r = ctl_query(c, &cur,
		      "SELECT path, kind, mode, coalesce(content_hash, '')"
		      " FROM vsync_manifest($1::uuid)",
		      1, v);
	if (r < 0)
		return r;
	for (i = 0; i < im->n && r == 0; i++) {
		if (im->v[i].kind == VS_KIND_DIR) {
			r = imp_dir(&im->v[i], cur, &b, s);
		} else if (im->v[i].kind == VS_KIND_FILE &&
			   im->v[i].size > VS_CHUNK_SIZE) {
			/* after the entries before it (its parents) */
			r = imp_batch_flush(c, &b, s);
			if (r == 0)
				r = imp_large(c, im, &im->v[i], cur, s);
		} else {
			r = imp_file(im, &im->v[i], cur, &b, s);
		}
		if (r == 0 && (b.n >= IMP_BATCH_FILES ||
			       b.bytes >= IMP_BATCH_BYTES || i + 1 == im->n))
			r = imp_batch_flush(c, &b, s);
		if (im->v[i].kind != VS_KIND_DIR && (s->done % 64 == 0))
			imp_progress(im, s, false);
	}
	if (r == 0)
		imp_progress(im, s, true);
	imp_batch_release(&b);
	PQclear(cur);
	return r;
}

static int imp_create_project(struct ctl *c, const char *name)
{
	const char *v[1] = {name};
	PGresult *res = NULL;
	int r;

	r = ctl_query(c, &res, "SELECT vsync_create_project($1)", 1, v);
	if (r < 0)
		return r;
	snprintf(c->project_id, sizeof(c->project_id), "%s",
		 PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

static int imp_run(struct ctl *c, const char *project, struct imp *im)
{
	struct imp_stats s = {0};
	const char *v[1];
	PGresult *res = NULL;
	int r;

	r = vs_pg_begin(c->pg, NULL);
	if (!r)
		r = imp_create_project(c, project);
	if (!r)
		r = imp_apply(c, im, &s);
	if (!r) {
		v[0] = c->project_id;
		r = ctl_query(c, &res, "SELECT vsync_project_seq($1::uuid)", 1,
			      v);
	}
	if (!r)
		r = vs_pg_commit(c->pg);
	if (r < 0) {
		if (r == -ECANCELED || r == -ENOMEM)
			r = ctl_fail(
			    EXIT_ERR,
			    "import into '%s' abandoned%s, nothing changed",
			    project, r == -ENOMEM ? " (out of memory)" : "");
		else
			r = ctl_fail(exit_for(r), "import into '%s' failed: %s",
				     project, vs_pg_last_error(c->pg));
		vs_pg_rollback(c->pg);
		goto out;
	}
	if (!c->quiet)
		printf(
		    "imported %zu files, %zu dirs, %zu symlinks (%.1f MiB) into"
		    " '%s' at seq %s; %zu unchanged, %zu excluded, %zu "
		    "skipped\n",
		    s.files, s.dirs, s.links, mib(s.bytes), project,
		    PQgetvalue(res, 0, 0), s.unchanged, im->nexcluded,
		    im->nskipped);
out:
	PQclear(res);
	return r;
}

static int cmd_import(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"exclude", required_argument, NULL, 'x'},
	    {"no-default-excludes", no_argument, NULL, 'N'},
	    {NULL, 0, NULL, 0}};
	const char **excl = calloc((size_t)argc + 4, sizeof(*excl));
	struct imp im = {0};
	size_t ne = 0, i;
	bool defaults = true;
	struct stat st;
	int o, r;

	if (!excl)
		return ctl_fail(EXIT_ERR, "out of memory");
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'x') {
			excl[ne++] = optarg;
		} else if (o == 'N') {
			defaults = false;
		} else {
			r = EXIT_USAGE;
			goto out;
		}
	}
	for (i = 0; defaults && default_excludes[i]; i++)
		excl[ne++] = default_excludes[i];
	if (argc - optind != 2) {
		r = ctl_fail(EXIT_USAGE,
			     "usage: vsyncctl import PROJECT DIR [--exclude "
			     "NAME]... [--no-default-excludes]");
		goto out;
	}
	im.root = argv[optind + 1];
	im.excludes = excl;
	if (stat(im.root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		r = ctl_fail(EXIT_NOTFOUND, "'%s' is not a directory", im.root);
		goto out;
	}
	r = imp_walk(&im, "");
	if (r < 0) {
		r = r == -ENOMEM ? ctl_fail(EXIT_ERR, "out of memory")
				 : EXIT_ERR;
		goto out;
	}
	r = ctl_connect(c);
	if (!r)
		r = imp_run(c, argv[optind], &im);
out:
	imp_release(&im);
	free(excl);
	return r;
}

/* ---- reads ------------------------------------------------------------ */

/* Where content read in chunks goes (out_chunks): an fd, and the SHA-256
 * of what went there. */
struct chunk_out {
	int fd;
	struct vs_sha256 sha;
	int werr; /* a failed write: -errno */
};

static int chunk_out_write(void *arg, const uint8_t *buf, size_t len)
{
	struct chunk_out *k = arg;

	vs_sha256_update(&k->sha, buf, len);
	k->werr = vs_write_in_full(k->fd, buf, len);
	return k->werr;
}

/*
 * Write content @hash (@size bytes, stored in chunks) to @fd chunk by
 * chunk (never whole in memory, nor in one value: no 1 GB limit), each
 * chunk checked against its SHA-256 and the whole against @hash; @what
 * names @fd in errors. -ENOENT if it is stored whole (nothing written),
 * else an exit status (reported).
 */
static int out_chunks(struct ctl *c, int fd, const char *what, const char *hash,
		      uint64_t size)
{
	struct chunk_out k = {.fd = fd, .werr = 0};
	char got[VS_HASH_HEX_LEN + 1];
	int r;

	if (vs_sha256_init(&k.sha) < 0)
		return ctl_fail(EXIT_ERR, "out of memory");
	r = vs_pg_chunks_fetch(c->pg, c->project_id, hash, size, NULL,
			       c->timeout_ms, chunk_out_write, &k);
	vs_sha256_final_hex(&k.sha, got);
	if (r == -ENOENT)
		return r;
	if (k.werr < 0)
		return ctl_fail(EXIT_ERR, "cannot write %s: %s", what,
				strerror(-k.werr));
	if (r < 0)
		return pg_failed(c, r);
	if (strcmp(got, hash) != 0)
		return ctl_fail(EXIT_ERR,
				"%s: the chunks of content %.12s do not make "
				"up its checksum",
				what, hash);
	return EXIT_OK;
}

static int cmd_cat(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"version", required_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
	const char *version = NULL, *v[3];
	char hash[VS_HASH_HEX_LEN + 1] = "";
	PGresult *res = NULL;
	uint64_t size, max = 0, want = 0;
	long n, vn = 0;
	int o, r;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'V')
			return EXIT_USAGE;
		if (vs_parse_long(&n, optarg, 10, 1, INT_MAX) < 0)
			return ctl_fail(EXIT_INVALID, "invalid version '%s'",
					optarg);
		version = optarg;
		vn = n;
	}
	if (argc - optind != 2)
		return ctl_fail(
		    EXIT_USAGE,
		    "usage: vsyncctl cat PROJECT PATH [--version N]");
	r = ctl_project_paths(c, argv + optind, 1);
	if (r)
		return r;
	v[0] = c->project_id;
	v[1] = argv[optind + 1];
	v[2] = version;
	/* the versions first (one cheap query): the deadline of the read is
	 * sized to the largest, and the one asked for (the last, without
	 * --version), when it is a file stored in chunks, is streamed */
	r = vs_pg_exec(c->pg, &res,
		       "SELECT version, kind, size, content_hash, is_deleted"
		       " FROM vsync_history($1::uuid, $2) ORDER BY version",
		       2, v, NULL, NULL, 0);
	if (r < 0)
		return pg_failed(c, r);
	for (int i = 0; i < PQntuples(res); i++) {
		long ver = 0;
		bool it = vn ? vs_parse_long(&ver, PQgetvalue(res, i, 0), 10, 1,
					     INT_MAX) == 0 &&
				   ver == vn
			     : i == PQntuples(res) - 1;

		if (vs_parse_u64(&size, PQgetvalue(res, i, 2), 10, 0,
				 UINT64_MAX) < 0)
			size = 0;
		if (size > max)
			max = size;
		if (it && !strcmp(PQgetvalue(res, i, 1), "file") &&
		    strcmp(PQgetvalue(res, i, 4), "t") != 0 &&
		    size > VS_CHUNK_SIZE &&
		    vs_hash_hex_valid(PQgetvalue(res, i, 3))) {
			snprintf(hash, sizeof(hash), "%s",
				 PQgetvalue(res, i, 3));
			want = size;
		}
	}
	PQclear(res);
	if (hash[0]) {
		r = out_chunks(c, STDOUT_FILENO, "to stdout", hash, want);
		if (r != -ENOENT)
			return r;
	}
	/* small, or stored whole; and every error (no such file or
	 * version, a directory ...) as the server words it */
	vs_pg_set_timeout(c->pg, batch_timeout(c, max));
	r = vs_pg_exec(c->pg, &res,
		       "SELECT vsync_read_file($1::uuid, $2, $3::int)", 3, v,
		       NULL, NULL, 1);
	vs_pg_set_timeout(c->pg, c->timeout_ms);
	if (r < 0)
		return pg_failed(c, r);
	r = vs_write_in_full(STDOUT_FILENO,
			     (const uint8_t *)PQgetvalue(res, 0, 0),
			     (size_t)PQgetlength(res, 0, 0));
	PQclear(res);
	if (r < 0)
		return ctl_fail(EXIT_ERR, "cannot write to stdout: %s",
				strerror(-r));
	return EXIT_OK;
}

static bool under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return !*prefix || (!strncmp(path, prefix, n) &&
			    (path[n] == '\0' || path[n] == '/'));
}

static int cmd_ls(struct ctl *c, int argc, char **argv)
{
	const char *prefix = argc == 3 ? argv[2] : "";
	struct vs_manifest m;
	size_t i, shown = 0;
	int r;

	if (argc != 2 && argc != 3)
		return ctl_fail(EXIT_USAGE,
				"usage: vsyncctl ls PROJECT [PATH]");
	if (*prefix && (r = check_path(prefix)))
		return r;
	r = ctl_project(c, argv[1]);
	if (r)
		return r;
	vs_manifest_init(&m);
	r = vs_pg_manifest_load(c->pg, c->project_id, &m);
	if (r < 0)
		return pg_failed(c, r);
	for (i = 0; i < m.n; i++) {
		const struct vs_manifest_entry *e = &m.entries[i];
		char path[PRINTABLE_BUFSZ], target[PRINTABLE_BUFSZ];

		if (!under(e->path, prefix))
			continue;
		printf("%-7s %04o %10" PRIu64 " v%-4" PRId64 " %s%s%s\n",
		       vs_kind_name(e->kind), (unsigned)e->mode, e->size,
		       e->version, ctl_printable(path, sizeof(path), e->path),
		       e->target ? " -> " : "",
		       ctl_printable(target, sizeof(target),
				     e->target ? e->target : ""));
		shown++;
	}
	vs_manifest_release(&m);
	if (*prefix && !shown)
		return ctl_fail(EXIT_NOTFOUND, "no such path '%s'", prefix);
	return EXIT_OK;
}

static int log_path(struct ctl *c, const char *path)
{
	const char *v[2] = {c->project_id, path};
	PGresult *res = NULL;
	int i, r;

	r = ctl_query(c, &res,
		      "SELECT version, author,"
		      " to_char(created_at AT TIME ZONE 'UTC',"
		      "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
		      " size, coalesce(content_hash, ''), kind, is_deleted, seq"
		      " FROM vsync_history($1::uuid, $2)",
		      2, v);
	if (r < 0)
		return pg_failed(c, r);
	if (PQntuples(res) == 0) {
		PQclear(res);
		return ctl_fail(EXIT_NOTFOUND, "no history for '%s'", path);
	}
	for (i = 0; i < PQntuples(res); i++) {
		const char *hash = PQgetvalue(res, i, 4);
		const char *kind = PQgetvalue(res, i, 5);
		bool deleted = !strcmp(PQgetvalue(res, i, 6), "t");
		char author[PRINTABLE_BUFSZ];

		printf("v%-4s %-16s %s %10s %-12.12s seq %s%s%s%s\n",
		       PQgetvalue(res, i, 0),
		       ctl_printable(author, sizeof(author),
				     PQgetvalue(res, i, 1)),
		       PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		       *hash ? hash : "-", PQgetvalue(res, i, 7),
		       strcmp(kind, "file") ? " " : "",
		       strcmp(kind, "file") ? kind : "",
		       deleted ? " (deleted)" : "");
	}
	PQclear(res);
	return EXIT_OK;
}

static int log_project(struct ctl *c, const char *limit)
{
	const char *v[2] = {c->project_id, limit};
	PGresult *res = NULL;
	int i, r;

	r = ctl_query(
	    c, &res,
	    "SELECT seq, operation_type, coalesce('v' || version, '-'),"
	    " author, to_char(created_at AT TIME ZONE 'UTC',"
	    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	    " path, coalesce(old_path, '')"
	    " FROM vsync_changes($1::uuid,"
	    "  greatest(vsync_project_seq($1::uuid) - $2::int, 0),"
	    "  $2::int)",
	    2, v);
	if (r < 0)
		return pg_failed(c, r);
	for (i = 0; i < PQntuples(res); i++) {
		char author[PRINTABLE_BUFSZ], from[PRINTABLE_BUFSZ],
		    path[PRINTABLE_BUFSZ];

		printf(
		    "seq %-6s %-8s %-5s %-16s %s %s%s%s\n",
		    PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2),
		    ctl_printable(author, sizeof(author),
				  PQgetvalue(res, i, 3)),
		    PQgetvalue(res, i, 4),
		    ctl_printable(from, sizeof(from), PQgetvalue(res, i, 6)),
		    *PQgetvalue(res, i, 6) ? " -> " : "",
		    ctl_printable(path, sizeof(path), PQgetvalue(res, i, 5)));
	}
	PQclear(res);
	return EXIT_OK;
}

static int cmd_log(struct ctl *c, int argc, char **argv)
{
	char limit[16] = "20";
	long n;
	int o, r;

	while ((o = getopt_long(argc, argv, "n:", NULL, NULL)) != -1) {
		if (o != 'n')
			return EXIT_USAGE;
		if (vs_parse_long(&n, optarg, 10, 1, 1000000) < 0)
			return ctl_fail(EXIT_INVALID, "invalid -n '%s'",
					optarg);
		snprintf(limit, sizeof(limit), "%ld", n);
	}
	if (argc - optind != 1 && argc - optind != 2)
		return ctl_fail(EXIT_USAGE,
				"usage: vsyncctl log [-n N] PROJECT [PATH]");
	if (argc - optind == 2 && (r = check_path(argv[optind + 1])))
		return r;
	r = ctl_project(c, argv[optind]);
	if (r)
		return r;
	if (argc - optind == 2)
		return log_path(c, argv[optind + 1]);
	return log_project(c, limit);
}

/* Counts of what vsyncctl diff found, by enum vs_diff. */
struct diff_counts {
	size_t n[3];
};

static int diff_print(void *arg, enum vs_diff what,
		      const struct vs_manifest_entry *old,
		      const struct vs_manifest_entry *new)
{
	struct diff_counts *dc = arg;
	const struct vs_manifest_entry *e = new ? new : old;
	char path[PRINTABLE_BUFSZ], t1[PRINTABLE_BUFSZ], t2[PRINTABLE_BUFSZ];

	dc->n[what]++;
	ctl_printable(path, sizeof(path), e->path);
	if (what == VS_DIFF_ADDED || what == VS_DIFF_DELETED) {
		printf("%c %s (%s", what == VS_DIFF_ADDED ? 'A' : 'D', path,
		       vs_kind_name(e->kind));
		if (e->kind == VS_KIND_FILE)
			printf(", %" PRIu64 " bytes", e->size);
		if (e->target)
			printf(" -> %s",
			       ctl_printable(t2, sizeof(t2), e->target));
		printf(")\n");
		return 0;
	}
	printf("M %s (", path);
	if (old->kind != new->kind)
		printf("%s -> %s", vs_kind_name(old->kind),
		       vs_kind_name(new->kind));
	else if (strcmp(old->hash, new->hash) != 0 && !new->target)
		printf("v%" PRId64 " -> v%" PRId64 ", %" PRIu64 " -> %" PRIu64
		       " bytes",
		       old->version, new->version, old->size, new->size);
	else if (new->target)
		printf("-> %s => -> %s",
		       ctl_printable(t1, sizeof(t1),
				     old->target ? old->target : ""),
		       ctl_printable(t2, sizeof(t2), new->target));
	if (old->kind == new->kind && old->mode != new->mode)
		printf("%smode %04o -> %04o",
		       strcmp(old->hash, new->hash) ? ", " : "",
		       (unsigned)old->mode, (unsigned)new->mode);
	printf(")\n");
	return 0;
}

/*
 * diff PROJECT FROM TO: what changed in the tree between two changes,
 * each a seq or a time (vs_pg_seq_at), one line per path in path order:
 * "A path (kind...)", "D path (kind...)", "M path (what changed)".
 */
static int cmd_diff(struct ctl *c, int argc, char **argv)
{
	struct vs_manifest a, b;
	struct diff_counts dc = {{0}};
	int64_t from, to;
	int r;

	if (argc != 4)
		return ctl_fail(EXIT_USAGE, "usage: vsyncctl diff PROJECT "
					    "FROM TO (each a seq or a time)");
	r = ctl_project(c, argv[1]);
	if (r)
		return r;
	if ((r = vs_pg_seq_at(c->pg, c->project_id, argv[2], &from)) < 0 ||
	    (r = vs_pg_seq_at(c->pg, c->project_id, argv[3], &to)) < 0)
		return r == -ERANGE ? ctl_fail(EXIT_NOTFOUND, "%s",
					       vs_pg_last_error(c->pg))
				    : pg_failed(c, r);
	vs_manifest_init(&a);
	vs_manifest_init(&b);
	r = vs_pg_manifest_load_at(c->pg, c->project_id, from, &a);
	if (r == 0)
		r = vs_pg_manifest_load_at(c->pg, c->project_id, to, &b);
	if (r < 0) {
		r = pg_failed(c, r);
		goto out;
	}
	if (!c->quiet)
		fprintf(stderr, "%s: seq %" PRId64 " -> seq %" PRId64 "\n",
			argv[1], from, to);
	r = vs_manifest_diff(&a, &b, diff_print, &dc);
	if (r < 0) {
		r = ctl_fail(EXIT_ERR, "the trees are not in path order");
		goto out;
	}
	if (!c->quiet)
		fprintf(stderr, "%zu added, %zu deleted, %zu changed\n",
			dc.n[VS_DIFF_ADDED], dc.n[VS_DIFF_DELETED],
			dc.n[VS_DIFF_CHANGED]);
	r = EXIT_OK;
out:
	vs_manifest_release(&a);
	vs_manifest_release(&b);
	return r;
}

/*
 * keygen FILE: a new Ed25519 key pair for the relay's signatures
 * (sign.h). The private key goes to FILE (PEM, mode 0600, never over an
 * existing file: that would strand every mount given the old public
 * key); the public key is printed as "VSYNC_VERIFY_KEY=<base64>", a line
 * a shell or an env file takes as it is.
 */
static int cmd_keygen(struct ctl *c, int argc, char **argv)
{
	char *pem = NULL, pub[45];
	size_t len;
	int fd, r;

	(void)c;
	if (argc != 2)
		return ctl_fail(EXIT_USAGE, "usage: keygen FILE");
	r = vs_sign_keygen(&pem, pub);
	if (r < 0)
		return ctl_fail(EXIT_ERR, "cannot make a key: %s",
				strerror(-r));
	fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = errno;
		free(pem);
		return ctl_fail(r == EEXIST ? EXIT_CONFLICT : EXIT_ERR,
				"cannot create '%s': %s", argv[1], strerror(r));
	}
	len = strlen(pem);
	r = write(fd, pem, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : errno;
	free(pem);
	if (close(fd) != 0 && !r)
		r = errno;
	if (r) {
		unlink(argv[1]);
		return ctl_fail(EXIT_ERR, "cannot write '%s': %s", argv[1],
				strerror(r));
	}
	printf("VSYNC_VERIFY_KEY=%s\n", pub);
	return EXIT_OK;
}

/* At most this many members of containers:{id} are read. */
#define CTL_CONTAINERS_MAX 1000

struct ctl_beat {
	struct vs_beat b;
	int64_t expires; /* the member's score */
};

/* The commit time (ms) of change @after+1 of the project, or 0. */
static int64_t ctl_commit_after(struct ctl *c, int64_t after)
{
	char a[24];
	const char *v[2] = {c->project_id, a};
	PGresult *res = NULL;
	int64_t ns = 0;

	snprintf(a, sizeof(a), "%lld", (long long)after);
	if (ctl_query(c, &res,
		      "SELECT mtime_ns FROM vsync_change_feed($1::uuid, "
		      "$2::bigint, 1)",
		      2, v) == 0 &&
	    PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
	    vs_parse_i64(&ns, PQgetvalue(res, 0, 0), 10, 0, INT64_MAX) < 0)
		ns = 0;
	if (res)
		PQclear(res);
	return ns / 1000000;
}

/*
 * The live containers of the project from containers:{id} (a sorted set
 * of heartbeats scored by expiry, written by the agents - untrusted: each
 * member is validated by vs_beat_parse(), the bad ones counted and
 * skipped), newest member per agent, against @head from PostgreSQL.
 */
static int ctl_containers(struct ctl *c, int64_t head)
{
	char key[VS_REDIS_KEY_MAX], now_s[24];
	const char *argv[] = {"ZRANGEBYSCORE", key,	now_s, "+inf",
			      "WITHSCORES",    "LIMIT", "0",   "1000"};
	struct ctl_beat *beats = NULL;
	struct vs_redis *r = NULL;
	redisReply *rep = NULL;
	size_t n = 0, bad = 0, behind = 0;
	int64_t now = (int64_t)time(NULL), now_ms = vs_wall_ms();
	int rc;

	rc = vs_redis_open(&r, c->redis_url, c->timeout_ms);
	if (rc < 0) {
		rc = ctl_fail(EXIT_BACKEND, "cannot connect to Redis: %s",
			      r ? vs_redis_last_error(r) : strerror(-rc));
		goto out;
	}
	vs_redis_key_containers(key, c->project_id);
	snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
	rc = vs_redis_command(r, &rep, 8, argv, NULL);
	if (rc < 0) {
		rc = ctl_fail(EXIT_BACKEND, "cannot read %s: %s", key,
			      vs_redis_last_error(r));
		goto out;
	}
	if (rep->type != REDIS_REPLY_ARRAY) {
		rc = ctl_fail(EXIT_ERR, "%s is not a sorted set", key);
		goto out;
	}
	beats = calloc(rep->elements / 2 + 1, sizeof(*beats));
	if (!beats) {
		rc = ctl_fail(EXIT_ERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i + 1 < rep->elements; i += 2) {
		const redisReply *m = rep->element[i],
				 *sc = rep->element[i + 1];
		struct ctl_beat cb;
		bool dup = false;

		if (m->type != REDIS_REPLY_STRING ||
		    sc->type != REDIS_REPLY_STRING ||
		    vs_parse_i64_n(&cb.expires, sc->str, sc->len, 10, 0,
				   INT64_MAX) < 0 ||
		    vs_beat_parse(&cb.b, m->str, m->len) < 0) {
			bad++;
			continue;
		}
		/* one agent, one line: its newest member (scores grow) */
		for (size_t k = 0; k < n && !dup; k++) {
			struct ctl_beat *o = &beats[k];

			if (o->b.pid == cb.b.pid &&
			    !strcmp(o->b.host, cb.b.host) &&
			    !strcmp(o->b.mount, cb.b.mount)) {
				dup = true;
				if (cb.expires >= o->expires)
					*o = cb;
			}
		}
		if (!dup)
			beats[n++] = cb;
	}
	for (size_t k = 0; k < n; k++)
		if (beats[k].b.seq < head)
			behind++;
	printf("containers %zu live, %zu behind\n", n, behind);
	for (size_t k = 0; k < n; k++) {
		const struct vs_beat *b = &beats[k].b;
		int64_t lag = 0, seen = now - (beats[k].expires - 60);

		if (b->seq < head) {
			int64_t t = ctl_commit_after(c, b->seq);

			lag = t > 0 && now_ms > t ? now_ms - t : 0;
		}
		printf("container %s:%ld:%s seq %lld behind %lld lag_ms %lld "
		       "state %s pending %lld diverged %lld seen %llds ago%s\n",
		       b->host, b->pid, b->mount, (long long)b->seq,
		       (long long)(b->seq < head ? head - b->seq : 0),
		       (long long)lag, vs_sync_state_name(b->state),
		       (long long)b->pending, (long long)b->diverged,
		       (long long)(seen > 0 ? seen : 0),
		       b->seq < head ? " BEHIND" : "");
	}
	if (bad)
		fprintf(stderr,
			"vsyncctl: ignored %zu malformed entr%s in %s\n", bad,
			bad == 1 ? "y" : "ies", key);
	if (rep->elements / 2 >= CTL_CONTAINERS_MAX)
		fprintf(stderr,
			"vsyncctl: only the first %d entries of %s "
			"were read\n",
			CTL_CONTAINERS_MAX, key);
	rc = EXIT_OK;
out:
	free(beats);
	if (rep)
		freeReplyObject(rep);
	vs_redis_free(r);
	return rc;
}

static int cmd_status(struct ctl *c, int argc, char **argv)
{
	const char *v[1];
	PGresult *res = NULL;
	int64_t head = 0;
	int r;

	if (argc != 2)
		return ctl_fail(EXIT_USAGE, "usage: vsyncctl status PROJECT");
	r = ctl_project(c, argv[1]);
	if (r)
		return r;
	v[0] = c->project_id;
	r = ctl_query(c, &res,
		      "SELECT id, name, seq, files, dirs, symlinks, bytes"
		      " FROM vsync_project_status($1::uuid)",
		      1, v);
	if (r < 0)
		return pg_failed(c, r);
	printf("project  %s\nid       %s\nseq      %s\nfiles    %s\n"
	       "dirs     %s\nsymlinks %s\nbytes    %s\n",
	       PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0),
	       PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
	       PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5),
	       PQgetvalue(res, 0, 6));
	if (vs_parse_i64(&head, PQgetvalue(res, 0, 2), 10, 0, INT64_MAX) < 0)
		head = 0;
	PQclear(res);
	if (c->redis_url && *c->redis_url)
		return ctl_containers(c, head);
	return EXIT_OK;
}

/* ---- export ----------------------------------------------------------- */

/* Create file @e under @dir_fd (it must not exist): its fd, or -1 and an
 * exit code in *@r (reported). */
static int exp_create(int dir_fd, const struct vs_manifest_entry *e, int *r)
{
	int fd =
	    openat(dir_fd, e->path,
		   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		*r = ctl_fail(EXIT_ERR, "cannot write '%s': %s", e->path,
			      strerror(errno));
	return fd;
}

/* The permission bits of @mode, without setuid, setgid and sticky: a
 * container chooses the modes it stores, and an export (often as root)
 * must not recreate a setuid binary it wrote. */
static mode_t exp_mode(uint32_t mode)
{
	return (mode_t)(mode & 0777);
}

/* Give @fd, written whole, @e's permission bits (exp_mode) and mtime,
 * and close it. 0 or an exit code (reported). */
static int exp_finish(int fd, const struct vs_manifest_entry *e)
{
	struct timespec ts[2];
	int r = 0;

	if (fchmod(fd, exp_mode(e->mode)) < 0)
		r = ctl_fail(EXIT_ERR, "cannot write '%s': %s", e->path,
			     strerror(errno));
	ts[0].tv_sec = ts[1].tv_sec = (time_t)(e->mtime_ns / 1000000000);
	ts[0].tv_nsec = ts[1].tv_nsec = (long)(e->mtime_ns % 1000000000);
	futimens(fd, ts);
	close(fd);
	return r;
}

/* Write file @e under @dir_fd with content @buf (@len bytes), verified
 * against its hash. 0 or an exit code (reported). */
static int exp_file(int dir_fd, const struct vs_manifest_entry *e,
		    const uint8_t *buf, size_t len)
{
	char hex[VS_HASH_HEX_LEN + 1];
	int fd, r;

	r = vs_sha256_hex(hex, buf, len);
	if (r == 0 && strcmp(hex, e->hash))
		return ctl_fail(EXIT_ERR,
				"'%s': content does not match sha256 %s",
				e->path, e->hash);
	fd = exp_create(dir_fd, e, &r);
	if (fd < 0)
		return r;
	if (vs_write_in_full(fd, buf, len) < 0) {
		r = ctl_fail(EXIT_ERR, "cannot write '%s': %s", e->path,
			     strerror(errno));
		close(fd);
		return r;
	}
	return exp_finish(fd, e);
}

/* Fetch the contents of the @n files @v (one vsync_blobs() call, with a
 * deadline sized to their bytes as the import's) and write them. 0 or an
 * exit code (reported). */
static int exp_files(struct ctl *c, int dir_fd,
		     const struct vs_manifest_entry *const *v, size_t n,
		     uint64_t bytes)
{
	const char *pv[2];
	int lens[2] = {0, 0}, fmts[2] = {0, 1};
	struct pgarr hashes;
	PGresult *res = NULL;
	size_t i;
	int row, r = 0;

	if (!n)
		return 0;
	pgarr_init(&hashes, PGOID_TEXT);
	for (i = 0; i < n && !r; i++)
		r = pgarr_add_str(&hashes, v[i]->hash);
	if (r < 0) {
		r = ctl_fail(EXIT_ERR, "out of memory");
		goto out;
	}
	pgarr_finish(&hashes);
	pv[0] = c->project_id;
	pv[1] = (const char *)hashes.buf;
	lens[1] = (int)hashes.len;
	vs_pg_set_timeout(c->pg, batch_timeout(c, bytes));
	r = vs_pg_exec(c->pg, &res,
		       "SELECT content_hash, content"
		       " FROM vsync_blobs($1::uuid, $2::text[])",
		       2, pv, lens, fmts, 1);
	vs_pg_set_timeout(c->pg, c->timeout_ms);
	if (r < 0) {
		r = ctl_fail(exit_for(r), "cannot fetch contents: %s",
			     vs_pg_last_error(c->pg));
		goto out;
	}
	for (i = 0; i < n && !r; i++) {
		row = row_find(res, v[i]->hash);
		if (row < 0 || PQgetisnull(res, row, 1)) {
			r = ctl_fail(EXIT_ERR,
				     "cannot fetch '%s': no content %s",
				     v[i]->path, v[i]->hash);
			break;
		}
		r = exp_file(dir_fd, v[i],
			     (const uint8_t *)PQgetvalue(res, row, 1),
			     (size_t)PQgetlength(res, row, 1));
	}
out:
	PQclear(res);
	pgarr_release(&hashes);
	return r;
}

/* Write file @e (stored in chunks) under @dir_fd chunk by chunk; one
 * stored whole goes as a batch of its own. 0 or an exit code. */
static int exp_large(struct ctl *c, int dir_fd,
		     const struct vs_manifest_entry *e)
{
	char what[VS_PATH_MAX + 3];
	int fd, r;

	fd = exp_create(dir_fd, e, &r);
	if (fd < 0)
		return r;
	snprintf(what, sizeof(what), "'%s'", e->path);
	r = out_chunks(c, fd, what, e->hash, e->size);
	if (r == -ENOENT) {
		close(fd);
		unlinkat(dir_fd, e->path, 0);
		return exp_files(c, dir_fd, &e, 1, e->size);
	}
	if (r) {
		close(fd);
		return r;
	}
	return exp_finish(fd, e);
}

/* Create dir or symlink @e under @dir_fd (files go in batches). */
static int exp_entry(int dir_fd, const struct vs_manifest_entry *e)
{
	switch (e->kind) {
	case VS_KIND_DIR:
		if (mkdirat(dir_fd, e->path, 0700) < 0)
			return ctl_fail(EXIT_ERR, "cannot create '%s': %s",
					e->path, strerror(errno));
		return 0;
	case VS_KIND_SYMLINK:
		if (symlinkat(e->target, dir_fd, e->path) < 0)
			return ctl_fail(EXIT_ERR, "cannot create '%s': %s",
					e->path, strerror(errno));
		return 0;
	case VS_KIND_FILE:
		vs_bug("file '%s' outside a batch", e->path);
	}
	vs_bug("unknown kind %d", (int)e->kind);
}

/* Open @dir for export: it must not exist, or be an empty directory. */
static int exp_open_dir(const char *dir, int *fd_out)
{
	char **names = NULL;
	size_t n = 0;
	int r;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return ctl_fail(EXIT_ERR, "cannot create '%s': %s", dir,
				strerror(errno));
	r = list_dir(dir, &names, &n);
	if (r < 0)
		return ctl_fail(EXIT_ERR, "cannot read '%s': %s", dir,
				strerror(-r));
	while (n)
		free(names[--n]);
	if (names) {
		free(names);
		return ctl_fail(EXIT_INVALID, "'%s' is not empty", dir);
	}
	*fd_out = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd_out < 0)
		return ctl_fail(EXIT_ERR, "cannot open '%s': %s", dir,
				strerror(errno));
	return 0;
}

static int cmd_export(struct ctl *c, int argc, char **argv)
{
	const struct vs_manifest_entry **batch = NULL, *e;
	struct vs_manifest m;
	size_t i, nf = 0, nd = 0, nl = 0, nb = 0;
	uint64_t bytes = 0, bbytes = 0;
	int fd = -1, r;

	if (argc != 3)
		return ctl_fail(EXIT_USAGE,
				"usage: vsyncctl export PROJECT DIR");
	r = ctl_project(c, argv[1]);
	if (r)
		return r;
	vs_manifest_init(&m);
	r = vs_pg_manifest_load(c->pg, c->project_id, &m);
	if (r < 0)
		return pg_failed(c, r);
	r = exp_open_dir(argv[2], &fd);
	batch = r ? NULL : calloc(IMP_BATCH_FILES, sizeof(*batch));
	if (!r && !batch)
		r = ctl_fail(EXIT_ERR, "out of memory");
	/* in path order, a dir comes before what it holds: dirs and
	 * symlinks at once, files in batches (written before the next dir
	 * could be needed: never, a file holds nothing) */
	for (i = 0; i < m.n && !r; i++) {
		e = &m.entries[i];
		nf += e->kind == VS_KIND_FILE;
		nd += e->kind == VS_KIND_DIR;
		nl += e->kind == VS_KIND_SYMLINK;
		if (e->kind != VS_KIND_FILE) {
			r = exp_entry(fd, e);
			continue;
		}
		bytes += e->size;
		if (e->size > VS_CHUNK_SIZE) {
			r = exp_large(c, fd, e);
			continue;
		}
		batch[nb++] = e;
		bbytes += e->size;
		if (nb == IMP_BATCH_FILES || bbytes >= IMP_BATCH_BYTES) {
			r = exp_files(c, fd, batch, nb, bbytes);
			nb = 0;
			bbytes = 0;
		}
	}
	if (!r)
		r = exp_files(c, fd, batch, nb, bbytes);
	free(batch);
	/* directory modes last: a read-only directory is filled first */
	for (i = m.n; i-- > 0 && !r;)
		if (m.entries[i].kind == VS_KIND_DIR &&
		    fchmodat(fd, m.entries[i].path, exp_mode(m.entries[i].mode),
			     0) < 0)
			r = ctl_fail(EXIT_ERR, "cannot chmod '%s': %s",
				     m.entries[i].path, strerror(errno));
	if (!r && !c->quiet)
		printf(
		    "exported %zu files, %zu dirs, %zu symlinks (%.1f MiB) of"
		    " '%s' at seq %" PRId64 " to %s\n",
		    nf, nd, nl, mib(bytes), argv[1], m.seq, argv[2]);
	if (fd >= 0)
		close(fd);
	vs_manifest_release(&m);
	return r;
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs(
	    "usage: vsyncctl [OPTIONS] COMMAND [ARGS]\n"
	    "\n"
	    "Operate on vsync projects stored in PostgreSQL.\n"
	    "\n"
	    "Options (before the command):\n"
	    "  --pg CONNINFO    PostgreSQL URL or key=value string\n"
	    "                   (default: $VSYNC_PG_URL, then libpq's PG* "
	    "defaults)\n"
	    "  --redis URL      Redis as its administrator, for grant, "
	    "revoke and\n"
	    "                   status\n"
	    "                   (default: $VSYNC_REDIS_URL)\n"
	    "  --timeout MS     deadline of each database call (default "
	    "10000)\n"
	    "  --author NAME    author recorded with changes (default "
	    "vsyncctl)\n"
	    "  --op-id UUID     idempotency key of the change: a retry with "
	    "the\n"
	    "                   same id returns the first result, changes "
	    "nothing\n"
	    "  -q, --quiet      print nothing on success (except "
	    "cat/ls/log/diff/status)\n"
	    "  -v, --verbose    log library messages (twice: debug)\n"
	    "  --help, --version\n"
	    "\n"
	    "Commands:\n"
	    "  init [--reapply]                  create or upgrade the schema\n"
	    "  import PROJECT DIR [--exclude NAME]... [--no-default-excludes]\n"
	    "                                    import a tree in one "
	    "transaction\n"
	    "                                    (creates PROJECT; excludes "
	    "node_modules,\n"
	    "                                    .git and dist unless told "
	    "otherwise)\n"
	    "  put PROJECT PATH [FILE|-] [--base N] [--mode OCTAL]\n"
	    "                                    write a file (stdin by "
	    "default);\n"
	    "                                    --base 0: create only; N: "
	    "only if at N\n"
	    "  rm [-r] [--base N] PROJECT PATH   delete a file or directory\n"
	    "  mv [--base N] PROJECT FROM TO     rename a file or directory\n"
	    "  mkdir [--mode OCTAL] PROJECT PATH create a directory\n"
	    "  cat [--version N] PROJECT PATH    print a file's bytes\n"
	    "  ls PROJECT [PATH]                 kind, mode, size, version, "
	    "path\n"
	    "  log [-n N] PROJECT [PATH]         a path's versions, or the "
	    "last N\n"
	    "                                    changes of the project\n"
	    "  diff PROJECT FROM TO              what changed between two "
	    "changes,\n"
	    "                                    each a seq or a time (A/D/M "
	    "per path)\n"
	    "  rollback PROJECT PATH VERSION     make an old version current "
	    "again\n"
	    "  export PROJECT DIR                write the tree into an empty "
	    "DIR\n"
	    "                                    (permission bits only: no "
	    "setuid,\n"
	    "                                    setgid or sticky bit)\n"
	    "  status PROJECT                    id, change seq, files, "
	    "bytes;\n"
	    "                                    with --redis its live "
	    "containers,\n"
	    "                                    their seq, lag and state\n"
	    "  grant PROJECT [--ttl DURATION]    make or rotate the "
	    "credentials of\n"
	    "                                    PROJECT's containers; prints\n"
	    "                                    VSYNC_PG_URL=..., and with "
	    "--redis\n"
	    "                                    VSYNC_REDIS_URL=..., as shell "
	    "lines\n"
	    "  grant --relay                     the same for vsync-relay "
	    "(every\n"
	    "                                    project)\n"
	    "  revoke PROJECT                    end them (roles, sessions, "
	    "Redis\n"
	    "                                    user)\n"
	    "  revoke --expired                  end every grant whose --ttl "
	    "has\n"
	    "                                    passed (run it from a "
	    "timer)\n"
	    "  keygen FILE                       a new signing key pair: the "
	    "private\n"
	    "                                    key to FILE (for vsync-relay "
	    "--sign-key),\n"
	    "                                    prints "
	    "VSYNC_VERIFY_KEY=<public "
	    "key>\n"
	    "\n"
	    "Exit status:\n"
	    "  0 ok, 1 other error, 2 usage, 3 not found (project or path),\n"
	    "  4 conflict (stale --base, target exists), 5 backend "
	    "unreachable,\n"
	    "  refused, timed out or busy (try again), 6 invalid path or "
	    "argument\n",
	    f);
}

/* ---- grants ------------------------------------------------------------ */

/* "90", "90s", "15m", "24h", "7d" into seconds (1 s .. 10 years). */
static int parse_duration(const char *s, long *secs)
{
	static const struct {
		char unit;
		long mult;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	size_t len = strlen(s);
	long mult = 1, v;
	int64_t n;

	if (len > 1 && !isdigit((unsigned char)s[len - 1])) {
		mult = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (s[len - 1] == units[i].unit)
				mult = units[i].mult;
		if (!mult)
			return -EINVAL;
		len--;
	}
	if (vs_parse_i64_n(&n, s, len, 10, 1, 10L * 365 * 86400) < 0)
		return -EINVAL;
	v = (long)n * mult;
	if (v > 10L * 365 * 86400)
		return -ERANGE;
	*secs = v;
	return 0;
}

/* Print NAME='VALUE' for a POSIX shell (a ' inside as '\''). */
static void print_shell_var(const char *name, const char *value)
{
	printf("%s='", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*p);
	}
	fputs("'\n", stdout);
}

/* The ACL user of @id's containers in Redis (@id NULL: vsync-relay's). */
static void redis_container_user(char *out, size_t size, const char *id)
{
	if (id)
		snprintf(out, size, "vsync-c-%s", id);
	else
		snprintf(out, size, "%s", "vsync-relay");
}

/*
 * Make (or rotate) @id's container user in the Redis of @admin_url with
 * @password, and write its URL to @url. It may read every key of the
 * project and its channels, and write only what a mount writes: content
 * and deltas it backfills, the learned order, its containers: entry. The
 * stream, the manifest and the relay's cursor are the relay's alone. It
 * may also read name:{<@name>}, the relay's mapping of the project's name
 * to its id (and no other project's), so a mount by name needs no
 * database.
 * @id NULL: the relay's user instead, every key and channel, every
 * command but the dangerous ones (KEYS, FLUSHALL, CONFIG, ...).
 * 0, or an exit code with the reason printed.
 */
static int grant_redis(const char *admin_url, int timeout_ms, const char *id,
		       const char *name, const char *password, char *url,
		       size_t urlsize)
{
	char user[64], pass[80], why[256], keys[6][VS_REDIS_KEY_MAX + 8];
	char chan[VS_REDIS_KEY_MAX];
	struct vs_redis *r = NULL;
	struct vs_redis_url u;
	redisReply *reply = NULL;
	const char *argv[40];
	int n = 0, rc;

	if (vs_redis_url_parse(&u, admin_url, why, sizeof(why)) < 0)
		return ctl_fail(EXIT_USAGE, "invalid Redis URL: %s", why);
	redis_container_user(user, sizeof(user), id);
	if (!id)
		id = ""; /* the relay's: the patterns below are not used */
	snprintf(pass, sizeof(pass), ">%s", password);
	snprintf(keys[0], sizeof(keys[0]), "%%R~*{%s}*", id);
	snprintf(keys[1], sizeof(keys[1]), "~blob:{%s}:*", id);
	snprintf(keys[2], sizeof(keys[2]), "~delta:{%s}:*", id);
	snprintf(keys[3], sizeof(keys[3]), "~learned:{%s}", id);
	snprintf(keys[4], sizeof(keys[4]), "~containers:{%s}", id);
	/* a name is [A-Za-z0-9._-]: nothing a key pattern would expand */
	if (name && !vs_redis_project_name_valid(name))
		return ctl_fail(EXIT_ERR, "invalid project name '%s'", name);
	snprintf(keys[5], sizeof(keys[5]), "%%R~name:{%s}", name ? name : "");
	snprintf(chan, sizeof(chan), "&project.%s.*", id);
	argv[n++] = "ACL";
	argv[n++] = "SETUSER";
	argv[n++] = user;
	argv[n++] = "reset";
	argv[n++] = "on";
	argv[n++] = pass;
	argv[n++] = "resetchannels";
	if (!*id) {
		argv[n++] = "&*";
		argv[n++] = "~*";
		argv[n++] = "+@all";
		argv[n++] = "-@dangerous";
	} else {
		/* what vsync-mount sends, nothing more (no KEYS or SCAN: they
		 * list every project's keys whatever the key patterns say) */
		static const char *const cmds[] = {
		    "+auth",  "+hello",	   "+ping",	"+select",  "+quit",
		    "+get",   "+getrange", "+mget",	"+set",	    "+hgetall",
		    "+xread", "+multi",	   "+exec",	"+discard", "+zadd",
		    "+zrem",  "+expire",   "+subscribe"};

		argv[n++] = chan;
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			argv[n++] = cmds[i];
		for (int i = 0; i < 6; i++)
			argv[n++] = keys[i];
	}
	rc = vs_redis_open(&r, admin_url, timeout_ms);
	if (rc < 0)
		return ctl_fail(EXIT_BACKEND, "cannot connect to Redis: %s",
				r ? vs_redis_last_error(r) : strerror(-rc));
	rc = vs_redis_command(r, &reply, n, argv, NULL);
	if (rc < 0) {
		rc = ctl_fail(EXIT_BACKEND, "cannot make Redis user %s: %s",
			      user, vs_redis_last_error(r));
		goto out;
	}
	if (strchr(u.host, ':'))
		snprintf(url, urlsize, "redis://%s:%s@[%s]:%d/%d", user,
			 password, u.host, u.port, u.db);
	else
		snprintf(url, urlsize, "redis://%s:%s@%s:%d/%d", user, password,
			 u.host, u.port, u.db);
	rc = 0;
out:
	if (reply)
		freeReplyObject(reply);
	vs_redis_free(r);
	return rc;
}

/* Drop @id's container user from the Redis of @admin_url and end its
 * connections. 0, or an exit code with the reason printed. */
static int revoke_redis(const char *admin_url, int timeout_ms, const char *id)
{
	char user[64];
	const char *del[] = {"ACL", "DELUSER", user};
	const char *kill[] = {"CLIENT", "KILL", "USER", user};
	struct vs_redis *r = NULL;
	redisReply *reply = NULL;
	int rc;

	redis_container_user(user, sizeof(user), id);
	rc = vs_redis_open(&r, admin_url, timeout_ms);
	if (rc < 0)
		return ctl_fail(EXIT_BACKEND, "cannot connect to Redis: %s",
				r ? vs_redis_last_error(r) : strerror(-rc));
	rc = vs_redis_command(r, &reply, 3, del, NULL);
	if (reply)
		freeReplyObject(reply);
	reply = NULL;
	if (rc == 0)
		vs_redis_command(r, &reply, 4, kill, NULL); /* none: fine */
	if (reply)
		freeReplyObject(reply);
	if (rc < 0)
		rc = ctl_fail(EXIT_BACKEND, "cannot drop Redis user %s: %s",
			      user, vs_redis_last_error(r));
	vs_redis_free(r);
	return rc;
}

/* Does ACL GETUSER reply @u list password hash @hash (NULL: any)? */
static bool acl_has_password(const redisReply *u, const char *hash)
{
	for (size_t i = 0;
	     u && u->type == REDIS_REPLY_ARRAY && i + 1 < u->elements; i += 2) {
		const redisReply *k = u->element[i], *v = u->element[i + 1];

		if (k->type != REDIS_REPLY_STRING ||
		    strcmp(k->str, "passwords") != 0 ||
		    v->type != REDIS_REPLY_ARRAY)
			continue;
		for (size_t j = 0; j < v->elements; j++)
			if (!hash ||
			    (v->element[j]->type == REDIS_REPLY_STRING &&
			     !strcmp(v->element[j]->str, hash)))
				return true;
	}
	return false;
}

/* End an expired grant of @id on the Redis of @admin_url: remove the
 * password whose SHA-256 is @hash from its user, and drop the user (and
 * so its connections) when no password is left. A grant made since has
 * another password and keeps its user. @hash "": a grant from before
 * hashes were kept, the user is dropped (revoke_redis). 0, or an exit
 * code with the reason printed. */
static int revoke_redis_expired(const char *admin_url, int timeout_ms,
				const char *id, const char *hash)
{
	char user[64], del_pass[VS_HASH_HEX_LEN + 2];
	const char *get[] = {"ACL", "GETUSER", user};
	const char *del[] = {"ACL", "SETUSER", user, del_pass};
	const char *drop[] = {"ACL", "DELUSER", user};
	struct vs_redis *r = NULL;
	redisReply *reply = NULL;
	int rc;

	if (!*hash)
		return revoke_redis(admin_url, timeout_ms, id);
	redis_container_user(user, sizeof(user), id);
	snprintf(del_pass, sizeof(del_pass), "!%s", hash);
	rc = vs_redis_open(&r, admin_url, timeout_ms);
	if (rc < 0)
		return ctl_fail(EXIT_BACKEND, "cannot connect to Redis: %s",
				r ? vs_redis_last_error(r) : strerror(-rc));
	rc = vs_redis_command(r, &reply, 3, get, NULL);
	if (rc == 0 && acl_has_password(reply, hash)) {
		freeReplyObject(reply);
		reply = NULL;
		rc = vs_redis_command(r, &reply, 4, del, NULL);
		if (rc == 0) {
			freeReplyObject(reply);
			reply = NULL;
			rc = vs_redis_command(r, &reply, 3, get, NULL);
		}
		/* (no password left: no grant of the project now) */
		if (rc == 0 && reply->type == REDIS_REPLY_ARRAY &&
		    !acl_has_password(reply, NULL)) {
			freeReplyObject(reply);
			reply = NULL;
			rc = vs_redis_command(r, &reply, 3, drop, NULL);
		}
	}
	if (reply)
		freeReplyObject(reply);
	if (rc < 0)
		rc = ctl_fail(EXIT_BACKEND,
			      "cannot end the expired password of Redis user "
			      "%s: %s",
			      user, vs_redis_last_error(r));
	vs_redis_free(r);
	return rc;
}

/* What a grant's conninfo sets for its sessions: connection options
 * override the role's own defaults, which the role itself can change
 * (ALTER ROLE CURRENT_USER SET ...) for every container of the project;
 * a read-only default would make every write fail. */
#define GRANT_PG_OPTIONS " options='-c default_transaction_read_only=off'"

/* Print the shell lines of a grant to @user with @password (Redis: the
 * URL made, or "" for none). 0 or an exit code. */
static int grant_print(struct ctl *c, const char *project, const char *user,
		       const char *password, const char *redis_url,
		       const char *expires)
{
	char *conninfo = NULL, *full = NULL;
	int r = vs_pg_conninfo_as(c->pg, user, password, &conninfo);
	size_t n;

	if (r < 0)
		return ctl_fail(EXIT_ERR, "cannot write the conninfo: %s",
				strerror(-r));
	n = strlen(conninfo) + sizeof(GRANT_PG_OPTIONS);
	full = malloc(n);
	if (!full) {
		free(conninfo);
		return ctl_fail(EXIT_ERR, "out of memory");
	}
	snprintf(full, n, "%s%s", conninfo, GRANT_PG_OPTIONS);
	if (project)
		print_shell_var("VSYNC_PROJECT", project);
	print_shell_var("VSYNC_PG_URL", full);
	if (redis_url[0])
		print_shell_var("VSYNC_REDIS_URL", redis_url);
	if (project && getenv("VSYNC_VERIFY_KEY"))
		print_shell_var("VSYNC_VERIFY_KEY", getenv("VSYNC_VERIFY_KEY"));
	if (expires)
		print_shell_var("VSYNC_GRANT_EXPIRES", expires);
	if (!redis_url[0] && !c->quiet)
		fprintf(stderr, "vsyncctl: no Redis given (--redis or "
				"$VSYNC_REDIS_URL): PostgreSQL credentials "
				"only\n");
	free(full);
	free(conninfo);
	return EXIT_OK;
}

/* grant --relay: the login role and Redis user of vsync-relay. */
static int grant_relay(struct ctl *c, const char *password)
{
	char redis_url[1024] = "";
	const char *v[1] = {password};
	PGresult *res = NULL;
	int r;

	r = ctl_connect(c);
	if (r)
		return r;
	r = ctl_query(c, &res, "SELECT vsync_grant_relay($1)", 1, v);
	if (r < 0)
		return pg_failed(c, r);
	PQclear(res);
	if (c->redis_url && *c->redis_url) {
		r = grant_redis(c->redis_url, c->timeout_ms, NULL, NULL,
				password, redis_url, sizeof(redis_url));
		if (r)
			return r;
	}
	return grant_print(c, NULL, "vsync_relay", password, redis_url, NULL);
}

static int cmd_grant(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"ttl", required_argument, NULL, 't'},
	    {"relay", no_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0}};
	char ttl[32], password[65], redis_url[1024] = "";
	bool relay = false;
	const char *v[3] = {NULL, password, NULL};
	uint8_t rnd[32];
	PGresult *res = NULL, *names = NULL;
	long secs = 0;
	int o, r;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'r')
			relay = true;
		else if (o != 't' || parse_duration(optarg, &secs) < 0)
			return ctl_fail(EXIT_USAGE,
					"usage: vsyncctl grant PROJECT "
					"[--ttl DURATION] (DURATION: 90s, "
					"15m, 24h, 7d) | grant --relay");
	}
	if (relay ? optind != argc || secs : optind + 1 != argc)
		return ctl_fail(EXIT_USAGE, "usage: vsyncctl grant PROJECT "
					    "[--ttl DURATION] | grant --relay");
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return ctl_fail(EXIT_ERR, "cannot make a password: %s",
				strerror(errno));
	vs_hex_encode(password, rnd, sizeof(rnd));
	if (relay)
		return grant_relay(c, password);
	r = ctl_project(c, argv[optind]);
	if (r)
		return r;
	v[0] = c->project_id;
	if (secs) {
		snprintf(ttl, sizeof(ttl), "%ld seconds", secs);
		v[2] = ttl;
	}
	r = ctl_query(c, &res,
		      "SELECT role, coalesce(expires_at::text, '') FROM"
		      " vsync_grant($1::uuid, $2, $3::interval)",
		      3, v);
	if (r < 0)
		return pg_failed(c, r);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return ctl_fail(EXIT_ERR, "unexpected answer to vsync_grant");
	}
	if (c->redis_url && *c->redis_url) {
		r = ctl_query(c, &names,
			      "SELECT name FROM vsync_projects($1::uuid)", 1,
			      v);
		if (r < 0) {
			PQclear(res);
			return pg_failed(c, r);
		}
		r = PQntuples(names) != 1
			? ctl_fail(EXIT_NOTFOUND, "unknown project '%s'",
				   argv[optind])
			: grant_redis(c->redis_url, c->timeout_ms,
				      c->project_id, PQgetvalue(names, 0, 0),
				      password, redis_url, sizeof(redis_url));
		PQclear(names);
		if (r) {
			PQclear(res);
			return r;
		}
	}
	r = grant_print(c, c->project_id, PQgetvalue(res, 0, 0), password,
			redis_url, PQgetvalue(res, 0, 1));
	PQclear(res);
	return r;
}

/* revoke --expired: every grant whose --ttl has passed. */
static int revoke_expired(struct ctl *c)
{
	PGresult *res = NULL;
	bool redis = c->redis_url && *c->redis_url;
	int r, n, rc = EXIT_OK;

	r = ctl_connect(c);
	if (r)
		return r;
	r = ctl_query(c, &res,
		      "SELECT project_id, coalesce(secret_sha256, '')"
		      " FROM vsync_revoke_expired()",
		      0, NULL);
	if (r < 0)
		return pg_failed(c, r);
	n = PQntuples(res);
	/* the rows are gone: every Redis user is tried, the first failure
	 * is the exit status (a re-run finds no row to retry it by, so it
	 * says which project: `revoke PROJECT` ends that one) */
	for (int i = 0; redis && i < n; i++) {
		const char *id = PQgetvalue(res, i, 0);

		r = revoke_redis_expired(c->redis_url, c->timeout_ms, id,
					 PQgetvalue(res, i, 1));
		if (r) {
			fprintf(stderr,
				"vsyncctl: the Redis user of %s is left on: "
				"`vsyncctl revoke %s` ends it\n",
				id, id);
			if (rc == EXIT_OK)
				rc = r;
		}
	}
	if (!c->quiet) {
		for (int i = 0; i < n; i++)
			printf("revoked the expired grant of %s\n",
			       PQgetvalue(res, i, 0));
		printf("%d expired grant%s revoked%s\n", n, n == 1 ? "" : "s",
		       redis ? "" : " (PostgreSQL only: no --redis)");
	}
	PQclear(res);
	return rc;
}

static int cmd_revoke(struct ctl *c, int argc, char **argv)
{
	const char *v[1];
	PGresult *res = NULL;
	int r, n;

	if (argc == 2 && !strcmp(argv[1], "--expired"))
		return revoke_expired(c);
	if (argc != 2 || argv[1][0] == '-')
		return ctl_fail(EXIT_USAGE, "usage: vsyncctl revoke PROJECT | "
					    "revoke --expired");
	r = ctl_project(c, argv[1]);
	if (r)
		return r;
	v[0] = c->project_id;
	r = ctl_query(c, &res, "SELECT vsync_revoke($1::uuid)", 1, v);
	if (r < 0)
		return pg_failed(c, r);
	n = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	if (c->redis_url && *c->redis_url) {
		r = revoke_redis(c->redis_url, c->timeout_ms, c->project_id);
		if (r)
			return r;
	}
	if (!c->quiet)
		printf("revoked %d PostgreSQL role%s%s of %s\n", n,
		       n == 1 ? "" : "s",
		       c->redis_url && *c->redis_url ? " and the Redis user"
						     : "",
		       c->project_id);
	return EXIT_OK;
}

struct command {
	const char *name;
	int (*run)(struct ctl *c, int argc, char **argv);
};

static const struct command commands[] = {{"init", cmd_init},
					  {"import", cmd_import},
					  {"put", cmd_put},
					  {"rm", cmd_rm},
					  {"mv", cmd_mv},
					  {"mkdir", cmd_mkdir},
					  {"cat", cmd_cat},
					  {"ls", cmd_ls},
					  {"log", cmd_log},
					  {"rollback", cmd_rollback},
					  {"export", cmd_export},
					  {"status", cmd_status},
					  {"grant", cmd_grant},
					  {"revoke", cmd_revoke},
					  {"keygen", cmd_keygen},
					  {"diff", cmd_diff},
					  {NULL, NULL}};

/* Parse the global options; returns the index of the command, or a
 * negative exit status to return. */
static int parse_globals(struct ctl *c, int argc, char **argv, int *verbose)
{
	static const struct option opts[] = {
	    {"pg", required_argument, NULL, 'p'},
	    {"redis", required_argument, NULL, 'r'},
	    {"timeout", required_argument, NULL, 't'},
	    {"author", required_argument, NULL, 'a'},
	    {"op-id", required_argument, NULL, 'o'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0}};
	long n;
	int o;

	while ((o = getopt_long(argc, argv, "+qvh", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			c->conninfo = optarg;
			break;
		case 'r':
			c->redis_url = optarg;
			break;
		case 't':
			if (vs_parse_long(&n, optarg, 10, 1, INT_MAX) < 0)
				return -ctl_fail(EXIT_USAGE,
						 "invalid --timeout '%s'",
						 optarg);
			c->timeout_ms = (int)n;
			break;
		case 'a':
			c->author = optarg;
			break;
		case 'o':
			if (!uuid_valid(optarg))
				return -ctl_fail(
				    EXIT_INVALID,
				    "invalid --op-id '%s' (a UUID)", optarg);
			c->op_id = optarg;
			break;
		case 'q':
			c->quiet = true;
			break;
		case 'v':
			(*verbose)++;
			break;
		case 'h':
			usage(stdout);
			return -EXIT_OK;
		case 'V':
			printf("vsyncctl %s\n", VSYNC_VERSION);
			return -EXIT_OK;
		default:
			usage(stderr);
			return -EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return -EXIT_USAGE;
	}
	return optind;
}

int main(int argc, char **argv)
{
	struct ctl c = {.timeout_ms = 10000, .author = "vsyncctl"};
	const struct command *cmd;
	int verbose = 0, i, r;

	vs_log_set_prog("vsyncctl");
	c.conninfo = getenv("VSYNC_PG_URL");
	c.redis_url = getenv("VSYNC_REDIS_URL");
	i = parse_globals(&c, argc, argv, &verbose);
	if (i <= 0)
		return -i;
	vs_log_set_level(verbose >= 2 ? VS_LOG_DEBUG
			 : verbose    ? VS_LOG_INFO
				      : VS_LOG_ERROR);
	for (cmd = commands; cmd->name; cmd++)
		if (!strcmp(cmd->name, argv[i]))
			break;
	if (!cmd->name) {
		ctl_fail(EXIT_USAGE, "unknown command '%s' (see --help)",
			 argv[i]);
		return EXIT_USAGE;
	}
	optind = 0; /* rescan: each command parses its own options */
	r = cmd->run(&c, argc - i, argv + i);
	vs_pg_free(c.pg);
	if (fflush(stdout) != 0 && r == EXIT_OK)
		r = ctl_fail(EXIT_ERR, "cannot write to stdout: %s",
			     strerror(errno));
	return r;
}
