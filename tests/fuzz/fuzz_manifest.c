/*
 * fuzz_manifest.c - the manifest cache-file parser (vs_manifest_parse(),
 * sync/manifest.c), which reads a cache dir that may be damaged.
 *
 * Input: the bytes of a manifest file. Properties, for what parses:
 *  - every entry is sane: a valid non-empty path, mode <= 07777, a size
 *    that fits an off_t, a hash unless a directory, a target only for a
 *    symlink;
 *  - serialize -> parse gives the same manifest, and serialising that
 *    again gives the same bytes.
 */
#include "vsync/manifest.h"

#include <errno.h>

#include "vsync/path.h"

#include "fuzz.h"

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_entry(const struct vs_manifest_entry *e)
{
	size_t plen = strlen(e->path);

	FUZZ_CHECK(plen > 0 && vs_path_check(e->path, plen) == 0);
	FUZZ_CHECK(e->mode <= 07777);
	FUZZ_CHECK(e->size <= (uint64_t)INT64_MAX);
	FUZZ_CHECK(e->kind == VS_KIND_DIR || vs_hash_hex_valid(e->hash));
	FUZZ_CHECK(e->kind == VS_KIND_SYMLINK || !e->target);
	FUZZ_CHECK(!e->target || strlen(e->target) <= VS_PATH_MAX);
}

static void check_same(const struct vs_manifest *a, const struct vs_manifest *b)
{
	FUZZ_CHECK(strcmp(a->project_id, b->project_id) == 0);
	FUZZ_CHECK(a->seq == b->seq && a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct vs_manifest_entry *x = &a->entries[i],
					       *y = &b->entries[i];

		FUZZ_CHECK(strcmp(x->path, y->path) == 0);
		FUZZ_CHECK(str_eq(x->target, y->target));
		FUZZ_CHECK(x->kind == y->kind && x->mode == y->mode);
		FUZZ_CHECK(x->size == y->size && x->version == y->version);
		FUZZ_CHECK(x->mtime_ns == y->mtime_ns);
		FUZZ_CHECK(strcmp(x->hash, y->hash) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_manifest m, again;
	char *out, *out2;
	size_t out_len, out2_len;
	int r;

	vs_manifest_init(&m);
	r = vs_manifest_parse(&m, (const char *)data, size);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG && m.n == 0 && !m.entries);
		return 0;
	}
	for (size_t i = 0; i < m.n; i++)
		check_entry(&m.entries[i]);
	FUZZ_CHECK(vs_manifest_serialize(&m, &out, &out_len) == 0);
	vs_manifest_init(&again);
	FUZZ_CHECK(vs_manifest_parse(&again, out, out_len) == 0);
	check_same(&m, &again);
	FUZZ_CHECK(vs_manifest_serialize(&again, &out2, &out2_len) == 0);
	FUZZ_CHECK(out2_len == out_len && memcmp(out, out2, out_len) == 0);
	free(out2);
	free(out);
	vs_manifest_release(&again);
	vs_manifest_release(&m);
	return 0;
}
