/*
 * fuzz_change.c - the change parser (vs_change_parse(), sync/change.c)
 * for Redis stream entries and change-feed rows, the stream id parser,
 * and the pub/sub event built from a parsed change
 * (vs_relay_event_json(), sync/relay.c).
 *
 * Input: fields, one per line, "name=value" (a line without '=' is a
 * field whose value is NULL, as a SQL NULL); the first line is also tried
 * as a stream id. Properties, for what parses:
 *  - the change is sane (valid non-empty paths, version 1 .. INT32_MAX, a
 *    conflict below it, mode <= 07777, a hash where content is named);
 *  - written back as fields (the stream's field format) and parsed again,
 *    it gives the same change;
 *  - its event JSON fits VS_RELAY_EVENT_MAX and holds no raw control
 *    character.
 */
#include "vsync/change.h"

#include <errno.h>
#include <inttypes.h>

#include "vsync/relay.h"

#include "fuzz.h"

#define MAX_FIELDS 32

struct fields {
	const char *names[MAX_FIELDS];
	const char *values[MAX_FIELDS];
	size_t lengths[MAX_FIELDS];
	size_t n;
};

static void add(struct fields *f, const char *name, const char *value,
		size_t len)
{
	if (f->n == MAX_FIELDS)
		abort();
	f->names[f->n] = name;
	f->values[f->n] = value;
	f->lengths[f->n] = len;
	f->n++;
}

static void add_str(struct fields *f, const char *name, const char *value)
{
	add(f, name, value, strlen(value));
}

/* The change as stream fields again; @nums holds the numbers' text. */
static void unparse(const struct vs_change *c, struct fields *f,
		    char nums[6][24])
{
	memset(f, 0, sizeof(*f));
	snprintf(nums[0], 24, "%" PRId64, c->seq);
	snprintf(nums[1], 24, "%o", (unsigned)c->state.mode);
	snprintf(nums[2], 24, "%" PRIu64, c->state.size);
	snprintf(nums[3], 24, "%" PRId64, c->state.version);
	snprintf(nums[4], 24, "%" PRId64, c->state.mtime_ns);
	snprintf(nums[5], 24, "%" PRId64, c->conflict);
	add_str(f, "seq", nums[0]);
	add_str(f, "op", vs_change_op_name(c->op));
	add_str(f, "path", c->path);
	if (c->op == VS_OP_RENAME)
		add_str(f, "old_path", c->old_path);
	add_str(f, "kind", vs_kind_name(c->state.kind));
	add_str(f, "mode", nums[1]);
	add_str(f, "size", nums[2]);
	add_str(f, "version", nums[3]);
	add_str(f, "mtime_ns", nums[4]);
	if (c->state.hash[0])
		add_str(f, "hash", c->state.hash);
	if (c->state.target)
		add_str(f, "target", c->state.target);
	if (c->author[0])
		add_str(f, "author", c->author);
	if (c->conflict)
		add_str(f, "conflict", nums[5]);
	if (c->delta_base[0])
		add_str(f, "delta_base", c->delta_base);
}

static void check_change(const struct vs_change *c)
{
	size_t plen = strlen(c->path);

	FUZZ_CHECK(c->seq >= 1);
	FUZZ_CHECK(plen > 0 && vs_path_check(c->path, plen) == 0);
	FUZZ_CHECK(c->op == VS_OP_RENAME ? c->old_path[0] != '\0'
					 : c->old_path[0] == '\0');
	FUZZ_CHECK(!c->old_path[0] ||
		   vs_path_check(c->old_path, strlen(c->old_path)) == 0);
	FUZZ_CHECK(c->state.path == c->path);
	FUZZ_CHECK(c->state.version >= 1 && c->state.version <= INT32_MAX);
	FUZZ_CHECK(c->conflict >= 0 && c->conflict < c->state.version);
	FUZZ_CHECK(c->state.mode <= 07777);
	FUZZ_CHECK(c->state.size <= (uint64_t)INT64_MAX);
	FUZZ_CHECK(!c->state.hash[0] || vs_hash_hex_valid(c->state.hash));
	FUZZ_CHECK(!c->delta_base[0] || vs_hash_hex_valid(c->delta_base));
	if (c->op != VS_OP_DELETE && c->state.kind != VS_KIND_DIR)
		FUZZ_CHECK(vs_hash_hex_valid(c->state.hash));
	FUZZ_CHECK(!c->state.target ||
		   (c->state.target == c->target &&
		    c->state.kind == VS_KIND_SYMLINK && c->target[0] != '\0'));
}

static void check_same(const struct vs_change *a, const struct vs_change *b)
{
	FUZZ_CHECK(a->seq == b->seq && a->op == b->op);
	FUZZ_CHECK(strcmp(a->path, b->path) == 0);
	FUZZ_CHECK(strcmp(a->old_path, b->old_path) == 0);
	FUZZ_CHECK(a->state.kind == b->state.kind);
	FUZZ_CHECK(a->state.mode == b->state.mode);
	FUZZ_CHECK(a->state.size == b->state.size);
	FUZZ_CHECK(a->state.version == b->state.version);
	FUZZ_CHECK(a->state.mtime_ns == b->state.mtime_ns);
	FUZZ_CHECK(strcmp(a->state.hash, b->state.hash) == 0);
	FUZZ_CHECK(!a->state.target == !b->state.target);
	FUZZ_CHECK(strcmp(a->target, b->target) == 0);
	FUZZ_CHECK(strcmp(a->author, b->author) == 0);
	FUZZ_CHECK(a->conflict == b->conflict);
	FUZZ_CHECK(strcmp(a->delta_base, b->delta_base) == 0);
}

static void check_event(const struct vs_change *c)
{
	static char json[VS_RELAY_EVENT_MAX];
	int n = vs_relay_event_json(json, sizeof(json), c,
				    "0f8fad5b-d9cb-469f-a165-70867728950e");

	FUZZ_CHECK(n > 0 && (size_t)n == strlen(json));
	FUZZ_CHECK(json[0] == '{' && json[n - 1] == '}');
	for (int i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)json[i] >= 0x20 && json[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_change *c = malloc(sizeof(*c)), *again = malloc(sizeof(*c));
	char *buf = fuzz_cstr(data, size), *p = buf, *end = buf + size;
	char why[256], nums[6][24];
	struct fields f = {0};
	int64_t seq;

	if (!c || !again)
		abort();
	/* split into lines, then name=value */
	while (p < end && f.n < MAX_FIELDS) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *line_end = nl ? nl : end;
		char *eq = memchr(p, '=', (size_t)(line_end - p));

		*line_end = '\0';
		if (eq) {
			*eq = '\0';
			add(&f, p, eq + 1, (size_t)(line_end - eq - 1));
		} else {
			add(&f, p, NULL, 0);
		}
		p = line_end + 1;
	}
	if (f.n > 0 && vs_change_parse_id(f.names[0], &seq) == 0)
		FUZZ_CHECK(seq >= 1);
	if (vs_change_parse(c, f.names, f.values, f.lengths, f.n, why,
			    sizeof(why)) == 0) {
		check_change(c);
		check_event(c);
		unparse(c, &f, nums);
		FUZZ_CHECK(vs_change_parse(again, f.names, f.values, f.lengths,
					   f.n, why, sizeof(why)) == 0);
		check_same(c, again);
	}
	free(buf);
	free(again);
	free(c);
	return 0;
}
