/*
 * change.c - parsing and validation of one change (change.h). Pure.
 * Everything here comes from outside (a Redis stream entry or a database
 * row): every field is bounded, every path checked, every number parsed
 * strictly.
 */
#include "vsync/change.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/util.h"
#include "vsync/banned.h"

static const char *const op_names[] = {
    [VS_OP_CREATE] = "create",	   [VS_OP_UPDATE] = "update",
    [VS_OP_ROLLBACK] = "rollback", [VS_OP_MKDIR] = "mkdir",
    [VS_OP_DELETE] = "delete",	   [VS_OP_RENAME] = "rename",
};

const char *vs_change_op_name(enum vs_change_op op)
{
	return (unsigned)op < sizeof(op_names) / sizeof(op_names[0])
		   ? op_names[op]
		   : "?";
}

static int __attribute__((format(printf, 3, 4)))
bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* Canonical decimal in [0, INT32_MAX]: digits only, no leading zero. */
static bool parse_version_num(const char *s, size_t len, int64_t *out)
{
	if (len == 0 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return vs_parse_i64_n(out, s, len, 10, 0, INT32_MAX) == 0;
}

int vs_change_parse_id(const char *id, int64_t *seq)
{
	const char *dash = strchr(id, '-');

	if (!dash || strcmp(dash, "-0") != 0 ||
	    vs_parse_i64_n(seq, id, (size_t)(dash - id), 10, 1, INT64_MAX) < 0)
		return -EBADMSG;
	return 0;
}

enum field {
	F_SEQ,
	F_OP,
	F_PATH,
	F_OLD_PATH,
	F_KIND,
	F_MODE,
	F_SIZE,
	F_HASH,
	F_VERSION,
	F_MTIME,
	F_TARGET,
	F_AUTHOR,
	F_CONFLICT,
	F_DELTA_BASE,
	F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "seq",    "op",	"path",	    "old_path",	  "kind",
    "mode",   "size",	"hash",	    "version",	  "mtime_ns",
    "target", "author", "conflict", "delta_base",
};

/* Copy a path field into @out after checking it. */
static int take_path(char *out, const char *v, size_t len, const char *name,
		     char *why, size_t whylen)
{
	int r = vs_path_check(v, len);

	if (r < 0 || len == 0)
		return bad(why, whylen, "invalid %s '%.*s'%s", name,
			   (int)(len > 200 ? 200 : len), v,
			   r == -ENAMETOOLONG ? " (too long)" : "");
	memcpy(out, v, len);
	out[len] = '\0';
	return 0;
}

int vs_change_parse(struct vs_change *c, const char *const *names,
		    const char *const *values, const size_t *lengths, size_t n,
		    char *why, size_t whylen)
{
	const char *v[F_COUNT] = {0};
	size_t l[F_COUNT] = {0};
	int64_t num;
	int r;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		for (int f = 0; f < F_COUNT; f++) {
			if (!names[i] || strcmp(names[i], field_names[f]) != 0)
				continue;
			if (!values[i])
				break;
			if (lengths[i] > VS_CHANGE_FIELD_MAX)
				return bad(why, whylen,
					   "field %s too long (%zu bytes)",
					   field_names[f], lengths[i]);
			if (memchr(values[i], '\0', lengths[i]))
				return bad(why, whylen, "NUL in field %s",
					   field_names[f]);
			v[f] = values[i];
			l[f] = lengths[i];
		}
	}
	if (!v[F_SEQ] ||
	    vs_parse_i64_n(&c->seq, v[F_SEQ], l[F_SEQ], 10, 1, INT64_MAX) < 0)
		return bad(why, whylen, "missing or bad seq");
	if (!v[F_OP])
		return bad(why, whylen, "change %" PRId64 ": no op", c->seq);
	for (r = 0; r < (int)(sizeof(op_names) / sizeof(op_names[0])); r++)
		if (strlen(op_names[r]) == l[F_OP] &&
		    memcmp(op_names[r], v[F_OP], l[F_OP]) == 0)
			break;
	if (r == (int)(sizeof(op_names) / sizeof(op_names[0])))
		return bad(why, whylen, "change %" PRId64 ": unknown op '%.*s'",
			   c->seq, (int)(l[F_OP] > 32 ? 32 : l[F_OP]), v[F_OP]);
	c->op = (enum vs_change_op)r;
	if (!v[F_PATH])
		return bad(why, whylen, "change %" PRId64 ": no path", c->seq);
	r = take_path(c->path, v[F_PATH], l[F_PATH], "path", why, whylen);
	if (r < 0)
		return r;
	if (c->op == VS_OP_RENAME) {
		if (!v[F_OLD_PATH])
			return bad(why, whylen,
				   "change %" PRId64
				   ": rename without old_path",
				   c->seq);
		r = take_path(c->old_path, v[F_OLD_PATH], l[F_OLD_PATH],
			      "old_path", why, whylen);
		if (r < 0)
			return r;
	}
	c->state.path = c->path;
	{
		char kind[16];

		if (!v[F_KIND] || l[F_KIND] >= sizeof(kind))
			return bad(why, whylen, "change %" PRId64 ": no kind",
				   c->seq);
		memcpy(kind, v[F_KIND], l[F_KIND]);
		kind[l[F_KIND]] = '\0';
		if (vs_kind_parse(kind, &c->state.kind) < 0)
			return bad(why, whylen,
				   "change %" PRId64 ": unknown kind '%s'",
				   c->seq, kind);
	}
	if (!v[F_VERSION] || vs_parse_i64_n(&c->state.version, v[F_VERSION],
					    l[F_VERSION], 10, 1, INT32_MAX) < 0)
		return bad(why, whylen, "change %" PRId64 ": bad version",
			   c->seq);
	/* an overwritten version is older than the one that replaced it */
	if (v[F_CONFLICT] &&
	    (!parse_version_num(v[F_CONFLICT], l[F_CONFLICT], &c->conflict) ||
	     c->conflict >= c->state.version))
		return bad(why, whylen,
			   "change %" PRId64 ": bad conflict '%.*s'", c->seq,
			   (int)(l[F_CONFLICT] > 24 ? 24 : l[F_CONFLICT]),
			   v[F_CONFLICT]);
	/* a delta's base: the SHA-256 of the previous content */
	if (v[F_DELTA_BASE]) {
		if (l[F_DELTA_BASE] != VS_HASH_HEX_LEN)
			return bad(why, whylen,
				   "change %" PRId64 ": bad delta_base",
				   c->seq);
		memcpy(c->delta_base, v[F_DELTA_BASE], VS_HASH_HEX_LEN);
		c->delta_base[VS_HASH_HEX_LEN] = '\0';
		if (!vs_hash_hex_valid(c->delta_base))
			return bad(why, whylen,
				   "change %" PRId64 ": bad delta_base",
				   c->seq);
	}
	if (c->op == VS_OP_DELETE)
		return 0;

	if (!v[F_MODE] || l[F_MODE] > 5)
		return bad(why, whylen, "change %" PRId64 ": bad mode", c->seq);
	{
		char mode[8];
		uint64_t m;

		memcpy(mode, v[F_MODE], l[F_MODE]);
		mode[l[F_MODE]] = '\0';
		if (vs_parse_u64_n(&m, v[F_MODE], l[F_MODE], 8, 0, 07777) < 0)
			return bad(why, whylen,
				   "change %" PRId64 ": bad mode '%s'", c->seq,
				   mode);
		c->state.mode = (uint32_t)m;
	}
	if (!v[F_MTIME] || vs_parse_i64_n(&c->state.mtime_ns, v[F_MTIME],
					  l[F_MTIME], 10, 0, INT64_MAX) < 0)
		return bad(why, whylen, "change %" PRId64 ": bad mtime_ns",
			   c->seq);
	if (c->state.kind == VS_KIND_DIR) {
		if (c->op != VS_OP_MKDIR && c->op != VS_OP_RENAME)
			return bad(why, whylen,
				   "change %" PRId64 ": %s of a directory",
				   c->seq, op_names[c->op]);
		return 0;
	}
	if (c->op == VS_OP_MKDIR)
		return bad(why, whylen, "change %" PRId64 ": mkdir of a %s",
			   c->seq, vs_kind_name(c->state.kind));
	if (!v[F_SIZE] ||
	    vs_parse_i64_n(&num, v[F_SIZE], l[F_SIZE], 10, 0, INT64_MAX) < 0)
		return bad(why, whylen, "change %" PRId64 ": bad size", c->seq);
	c->state.size = (uint64_t)num;
	if (!v[F_HASH] || l[F_HASH] != VS_HASH_HEX_LEN)
		return bad(why, whylen, "change %" PRId64 ": bad hash", c->seq);
	memcpy(c->state.hash, v[F_HASH], VS_HASH_HEX_LEN);
	c->state.hash[VS_HASH_HEX_LEN] = '\0';
	if (!vs_hash_hex_valid(c->state.hash))
		return bad(why, whylen, "change %" PRId64 ": bad hash", c->seq);
	if (c->state.kind == VS_KIND_SYMLINK) {
		if (!v[F_TARGET] || l[F_TARGET] == 0 ||
		    l[F_TARGET] > VS_PATH_MAX)
			return bad(why, whylen,
				   "change %" PRId64 ": bad symlink target",
				   c->seq);
		memcpy(c->target, v[F_TARGET], l[F_TARGET]);
		c->target[l[F_TARGET]] = '\0';
		c->state.target = c->target;
		c->state.size = l[F_TARGET];
	}
	if (v[F_AUTHOR]) {
		size_t al = l[F_AUTHOR] < sizeof(c->author) - 1
				? l[F_AUTHOR]
				: sizeof(c->author) - 1;

		memcpy(c->author, v[F_AUTHOR], al);
		c->author[al] = '\0';
	}
	return 0;
}
