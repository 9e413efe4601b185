/*
 * manifest.c - the flat tree list and its cache-file format (manifest.h).
 * Pure: no I/O. The parser trusts nothing: every number, hash and path of
 * the file is checked, since the cache dir may be damaged.
 */
#include "vsync/manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/path.h"
#include "vsync/banned.h"

static const char *const kind_names[] = {"file", "dir", "symlink"};

void vs_manifest_init(struct vs_manifest *m)
{
	memset(m, 0, sizeof(*m));
}

static void entry_release(struct vs_manifest_entry *e)
{
	free(e->path);
	free(e->target);
}

void vs_manifest_release(struct vs_manifest *m)
{
	for (size_t i = 0; i < m->n; i++)
		entry_release(&m->entries[i]);
	free(m->entries);
	m->entries = NULL;
	m->n = m->alloc = 0;
}

int vs_manifest_add(struct vs_manifest *m, const struct vs_manifest_entry *e)
{
	struct vs_manifest_entry copy = *e;

	if (m->n == m->alloc) {
		size_t alloc = m->alloc ? m->alloc * 2 : 64;
		struct vs_manifest_entry *p =
		    realloc(m->entries, alloc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		m->entries = p;
		m->alloc = alloc;
	}
	copy.path = strdup(e->path);
	copy.target = e->target ? strdup(e->target) : NULL;
	if (!copy.path || (e->target && !copy.target)) {
		entry_release(&copy);
		return -ENOMEM;
	}
	m->entries[m->n++] = copy;
	return 0;
}

int vs_kind_parse(const char *s, enum vs_kind *out)
{
	for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]);
	     i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum vs_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *vs_kind_name(enum vs_kind k)
{
	return (unsigned)k < 3 ? kind_names[k] : "?";
}

/* A growable output buffer; @err sticks once an allocation failed. */
struct outbuf {
	char *p;
	size_t len, alloc;
	int err;
};

static void out_append(struct outbuf *o, const char *s, size_t n)
{
	if (o->err)
		return;
	if (o->len + n + 1 > o->alloc) {
		size_t alloc = o->alloc ? o->alloc : 4096;
		char *p;

		while (o->len + n + 1 > alloc)
			alloc *= 2;
		p = realloc(o->p, alloc);
		if (!p) {
			o->err = -ENOMEM;
			return;
		}
		o->p = p;
		o->alloc = alloc;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

int vs_manifest_serialize(const struct vs_manifest *m, char **out,
			  size_t *out_len)
{
	struct outbuf o = {0};
	char line[256];
	int n;

	n = snprintf(line, sizeof(line),
		     "vsync-manifest 1 %s %" PRId64 " %zu\n",
		     m->project_id[0] ? m->project_id : "-", m->seq, m->n);
	out_append(&o, line, (size_t)n);
	for (size_t i = 0; i < m->n; i++) {
		const struct vs_manifest_entry *e = &m->entries[i];
		size_t tlen = e->target ? strlen(e->target) : 0;

		n = snprintf(line, sizeof(line),
			     "%s %o %" PRIu64 " %" PRId64 " %" PRId64
			     " %s %zu %zu\n",
			     vs_kind_name(e->kind), e->mode, e->size,
			     e->version, e->mtime_ns,
			     e->hash[0] ? e->hash : "-", strlen(e->path), tlen);
		out_append(&o, line, (size_t)n);
		out_append(&o, e->path, strlen(e->path));
		if (tlen)
			out_append(&o, e->target, tlen);
		out_append(&o, "\n", 1);
	}
	if (o.err) {
		free(o.p);
		return o.err;
	}
	*out = o.p;
	*out_len = o.len;
	return 0;
}

/* Take the next '\n'-terminated line from [*pos, end); NUL-terminate into
 * @line (at most @size-1 bytes). -EBADMSG if none or too long. */
static int take_line(const char **pos, const char *end, char *line, size_t size)
{
	const char *nl = memchr(*pos, '\n', (size_t)(end - *pos));
	size_t n;

	if (!nl)
		return -EBADMSG;
	n = (size_t)(nl - *pos);
	if (n >= size)
		return -EBADMSG;
	memcpy(line, *pos, n);
	line[n] = '\0';
	*pos = nl + 1;
	return 0;
}

static int parse_entry(const char **pos, const char *end,
		       struct vs_manifest_entry *e, char **path, char **target)
{
	char line[256], kind[16], hash[VS_HASH_HEX_LEN + 2];
	size_t plen, tlen;
	unsigned mode;
	int used = 0;

	if (take_line(pos, end, line, sizeof(line)) < 0)
		return -EBADMSG;
	if (sscanf(line,
		   "%15s %o %" SCNu64 " %" SCNd64 " %" SCNd64 " %65s %zu %zu%n",
		   kind, &mode, &e->size, &e->version, &e->mtime_ns, hash,
		   &plen, &tlen, &used) != 8 ||
	    line[used] != '\0')
		return -EBADMSG;
	/* SCNu64 takes "-1" as UINT64_MAX: a size must fit in an off_t */
	if (vs_kind_parse(kind, &e->kind) < 0 || mode > 07777 ||
	    e->size > (uint64_t)INT64_MAX)
		return -EBADMSG;
	e->mode = mode;
	if (strcmp(hash, "-") == 0)
		e->hash[0] = '\0';
	else if (vs_hash_hex_valid(hash))
		memcpy(e->hash, hash, sizeof(e->hash));
	else
		return -EBADMSG;
	if ((e->kind != VS_KIND_DIR && !e->hash[0]) ||
	    (e->kind != VS_KIND_SYMLINK && tlen) || plen == 0 ||
	    plen > VS_PATH_MAX || tlen > VS_PATH_MAX ||
	    (size_t)(end - *pos) < plen + tlen + 1 ||
	    (*pos)[plen + tlen] != '\n')
		return -EBADMSG;
	if (vs_path_check(*pos, plen) < 0 ||
	    (tlen && memchr(*pos + plen, '\0', tlen)))
		return -EBADMSG;
	*path = strndup(*pos, plen);
	*target = tlen ? strndup(*pos + plen, tlen) : NULL;
	*pos += plen + tlen + 1;
	if (!*path || (tlen && !*target))
		return -ENOMEM;
	return 0;
}

int vs_manifest_parse(struct vs_manifest *m, const char *buf, size_t len)
{
	const char *pos = buf, *end = buf + len;
	char line[256], project[64];
	size_t count;
	int used = 0, r = 0;

	if (take_line(&pos, end, line, sizeof(line)) < 0 ||
	    sscanf(line, "vsync-manifest 1 %63s %" SCNd64 " %zu%n", project,
		   &m->seq, &count, &used) != 3 ||
	    line[used] != '\0' || strlen(project) > VS_UUID_LEN)
		return -EBADMSG;
	/* at most 36 bytes and its NUL, checked above */
	memcpy(m->project_id, project, strlen(project) + 1);
	if (strcmp(project, "-") == 0)
		m->project_id[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		struct vs_manifest_entry e = {0};
		char *path = NULL, *target = NULL;

		r = parse_entry(&pos, end, &e, &path, &target);
		if (r == 0) {
			e.path = path;
			e.target = target;
			r = vs_manifest_add(m, &e);
		}
		free(path);
		free(target);
		if (r < 0)
			break;
	}
	if (r == 0 && pos != end)
		r = -EBADMSG;
	if (r < 0)
		vs_manifest_release(m);
	return r;
}

/* Are @x and @y the same entry, but for version and mtime? */
static bool entry_same(const struct vs_manifest_entry *x,
		       const struct vs_manifest_entry *y)
{
	return x->kind == y->kind && x->mode == y->mode &&
	       strcmp(x->hash, y->hash) == 0 &&
	       strcmp(x->target ? x->target : "", y->target ? y->target : "") ==
		   0;
}

static bool sorted_at(const struct vs_manifest *m, size_t i)
{
	return i == 0 || strcmp(m->entries[i - 1].path, m->entries[i].path) < 0;
}

int vs_manifest_diff(const struct vs_manifest *a, const struct vs_manifest *b,
		     vs_diff_fn fn, void *arg)
{
	size_t i = 0, j = 0;
	int r = 0;

	while (r == 0 && (i < a->n || j < b->n)) {
		const struct vs_manifest_entry *x =
		    i < a->n ? &a->entries[i] : NULL;
		const struct vs_manifest_entry *y =
		    j < b->n ? &b->entries[j] : NULL;
		int c = !x ? 1 : !y ? -1 : strcmp(x->path, y->path);

		if ((x && !sorted_at(a, i)) || (y && !sorted_at(b, j)))
			return -EINVAL;
		if (c < 0) {
			r = fn(arg, VS_DIFF_DELETED, x, NULL);
			i++;
		} else if (c > 0) {
			r = fn(arg, VS_DIFF_ADDED, NULL, y);
			j++;
		} else {
			if (!entry_same(x, y))
				r = fn(arg, VS_DIFF_CHANGED, x, y);
			i++;
			j++;
		}
	}
	return r;
}
