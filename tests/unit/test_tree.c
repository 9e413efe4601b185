/*
 * test_tree.c - unit tests of sync/tree.c (include/vsync/tree.h): the
 * tree snapshot a cold mount reads in one GET.
 *
 * Covers: a signed tree round-trips (entries, seq, project, index); an
 * unsigned one decodes without a key and is refused with one; a wrong
 * key, another project's id, a changed byte of the body, a changed seq
 * in the header and a truncated value are refused; an empty index gives
 * no index. Bundles: index lines round-trip and malformed ones are
 * refused; records are walked in order (an empty file among them) and a
 * record that runs past the end, or a bad hash, is refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vsync/sign.h"
#include "vsync/tree.h"

#include "unit_check.h"

#define CHK(got, want, ...) check_ret(want, got, __VA_ARGS__)

#define HASH  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PROJ  "11111111-2222-3333-4444-555555555555"
#define PROJ2 "11111111-2222-3333-4444-555555555556"

struct keys {
	struct vs_sign_key *priv, *pub, *other_pub;
};

static int setup(void **state)
{
	struct keys *k = calloc(1, sizeof(*k));
	char *pem = NULL, b64[45], path[] = "/tmp/vsync-test-tree-XXXXXX";
	int fd;

	assert_non_null(k);
	assert_int_equal(vs_sign_keygen(&pem, b64), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_true(write(fd, pem, strlen(pem)) == (ssize_t)strlen(pem));
	close(fd);
	assert_int_equal(vs_sign_key_load_private(&k->priv, path), 0);
	unlink(path);
	free(pem);
	assert_int_equal(vs_sign_key_load_public(&k->pub, b64), 0);
	assert_int_equal(vs_sign_keygen(&pem, b64), 0);
	free(pem);
	assert_int_equal(vs_sign_key_load_public(&k->other_pub, b64), 0);
	*state = k;
	return 0;
}

static int teardown(void **state)
{
	struct keys *k = *state;

	vs_sign_key_free(k->priv);
	vs_sign_key_free(k->pub);
	vs_sign_key_free(k->other_pub);
	free(k);
	return 0;
}

/* A tree of @n files (and a directory), at seq 42. */
static void tree_make(struct vs_manifest *m, size_t n)
{
	struct vs_manifest_entry e = {.kind = VS_KIND_DIR, .mode = 0755};
	char path[64];

	vs_manifest_init(m);
	snprintf(m->project_id, sizeof(m->project_id), "%s", PROJ);
	m->seq = 42;
	e.path = "src";
	assert_int_equal(vs_manifest_add(m, &e), 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "src/f%zu.js", i);
		e = (struct vs_manifest_entry){.path = path,
					       .kind = VS_KIND_FILE,
					       .mode = 0644,
					       .size = i,
					       .version = 1,
					       .mtime_ns = 7};
		memcpy(e.hash, HASH, sizeof(e.hash));
		assert_int_equal(vs_manifest_add(m, &e), 0);
	}
}

static void test_roundtrip(void **state)
{
	struct keys *k = *state;
	struct vs_manifest m, got;
	uint8_t *val = NULL;
	size_t len = 0, ilen = 0;
	char *index = NULL;

	tree_make(&m, 500);
	CHK(vs_tree_encode(&val, &len, PROJ, &m, "bundle x\n", 9, k->priv), 0,
	    "encode a signed tree");
	/* compressed: 500 near-identical lines */
	assert_true(len < 20000);
	vs_manifest_init(&got);
	CHK(vs_tree_decode(&got, &index, &ilen, PROJ, val, len, k->pub), 0,
	    "decode it with the key");
	assert_int_equal(got.n, m.n);
	assert_int_equal(got.seq, 42);
	assert_string_equal(got.project_id, PROJ);
	assert_string_equal(got.entries[500].path, "src/f499.js");
	assert_string_equal(got.entries[500].hash, HASH);
	assert_int_equal(got.entries[500].size, 499);
	assert_non_null(index);
	assert_int_equal(ilen, 9);
	assert_string_equal(index, "bundle x\n");
	free(index);
	vs_manifest_release(&got);

	/* another project's id is not this tree */
	vs_manifest_init(&got);
	CHK(vs_tree_decode(&got, NULL, NULL, PROJ2, val, len, NULL), -EBADMSG,
	    "decode as another project");
	assert_int_equal(got.n, 0);
	/* the wrong key */
	CHK(vs_tree_decode(&got, NULL, NULL, PROJ, val, len, k->other_pub),
	    -EKEYREJECTED, "decode with another key");
	assert_int_equal(got.n, 0);
	free(val);
	vs_manifest_release(&m);
}

static void test_unsigned(void **state)
{
	struct keys *k = *state;
	struct vs_manifest m, got;
	uint8_t *val = NULL;
	size_t len = 0;
	char *index = (char *)"x";

	tree_make(&m, 3);
	CHK(vs_tree_encode(&val, &len, PROJ, &m, NULL, 0, NULL), 0,
	    "encode an unsigned tree");
	vs_manifest_init(&got);
	CHK(vs_tree_decode(&got, &index, NULL, PROJ, val, len, NULL), 0,
	    "decode it without a key");
	assert_int_equal(got.n, 4);
	assert_null(index);
	vs_manifest_release(&got);
	vs_manifest_init(&got);
	CHK(vs_tree_decode(&got, NULL, NULL, PROJ, val, len, k->pub),
	    -EKEYREJECTED, "decode it with a key");
	assert_int_equal(got.n, 0);
	free(val);
	vs_manifest_release(&m);
}

static void test_tampered(void **state)
{
	struct keys *k = *state;
	struct vs_manifest m, got;
	uint8_t *val = NULL;
	size_t len = 0;
	char *nl, *seq;

	tree_make(&m, 3); /* small: the body stays raw, so bytes are text */
	CHK(vs_tree_encode(&val, &len, PROJ, &m, NULL, 0, k->priv), 0,
	    "encode a signed tree");
	vs_manifest_init(&got);

	/* one byte of the body (a size) */
	nl = memchr(val, '\n', len);
	assert_non_null(nl);
	val[len - 3] ^= 1;
	CHK(vs_tree_decode(&got, NULL, NULL, PROJ, val, len, k->pub), -EBADMSG,
	    "decode with a changed body byte");
	val[len - 3] ^= 1;
	CHK(vs_tree_decode(&got, NULL, NULL, PROJ, val, len, k->pub), 0,
	    "decode it restored");
	vs_manifest_release(&got);
	vs_manifest_init(&got);

	/* the seq of the header: the signature covers it, and so does the
	 * manifest's own header */
	seq = (char *)val + strlen("vsync-tree 1 ");
	assert_int_equal(seq[0], '4');
	seq[0] = '5';
	CHK(vs_tree_decode(&got, NULL, NULL, PROJ, val, len, k->pub),
	    -EKEYREJECTED, "decode with the header's seq changed");
	CHK(vs_tree_decode(&got, NULL, NULL, PROJ, val, len, NULL), -EBADMSG,
	    "decode it without a key (the manifest says 42)");
	seq[0] = '4';

	/* truncated */
	CHK(vs_tree_decode(&got, NULL, NULL, PROJ, val, len - 1, k->pub),
	    -EBADMSG, "decode a truncated value");
	CHK(vs_tree_decode(&got, NULL, NULL, PROJ, val,
			   (size_t)(nl - (char *)val), k->pub),
	    -EBADMSG, "decode a header without its newline");
	CHK(vs_tree_decode(&got, NULL, NULL, PROJ, "vsync-tree 2 x", 14, NULL),
	    -EBADMSG, "decode another version");
	assert_int_equal(got.n, 0);
	free(val);
	vs_manifest_release(&m);
}

static void test_bundle_index(void **state)
{
	struct vs_bundle_ref b = {.files = 3, .raw_len = 1234}, *got = NULL;
	char text[2 * VS_BUNDLE_LINE_MAX + 1];
	size_t n = 0, len;

	(void)state;
	memcpy(b.id, HASH, sizeof(b.id));
	memcpy(b.sha, HASH, sizeof(b.sha));
	b.sha[0] = 'f';
	len = (size_t)vs_bundle_index_line(text, &b);
	b.files = 1;
	len += (size_t)vs_bundle_index_line(text + len, &b);
	CHK(vs_bundle_index_parse(&got, &n, text, len), 0, "parse two lines");
	assert_int_equal(n, 2);
	assert_string_equal(got[0].id, HASH);
	assert_int_equal(got[0].sha[0], 'f');
	assert_int_equal(got[0].files, 3);
	assert_int_equal(got[1].files, 1);
	assert_int_equal(got[1].raw_len, 1234);
	free(got);
	CHK(vs_bundle_index_parse(&got, &n, "", 0), 0, "parse an empty index");
	assert_int_equal(n, 0);
	CHK(vs_bundle_index_parse(&got, &n, text, len - 1), -EBADMSG,
	    "parse a line without its newline");
	text[7] = 'X'; /* the id */
	CHK(vs_bundle_index_parse(&got, &n, text, len), -EBADMSG,
	    "parse a line with a bad id");
	CHK(vs_bundle_index_parse(&got, &n, "bundle x\n", 9), -EBADMSG,
	    "parse a short line");
}

struct walk {
	size_t n;
	char hashes[3][VS_HASH_HEX_LEN + 1];
	size_t lens[3];
};

static int walk_one(void *arg, const char *hash, const uint8_t *data, size_t n)
{
	struct walk *w = arg;

	(void)data;
	if (w->n == 3)
		return -E2BIG;
	memcpy(w->hashes[w->n], hash, VS_HASH_HEX_LEN + 1);
	w->lens[w->n++] = n;
	return 0;
}

static void test_bundle_records(void **state)
{
	uint8_t raw[512];
	size_t len = 0;
	struct walk w = {0};
	char rec[VS_BUNDLE_REC_MAX];
	int n;

	(void)state;
	n = vs_bundle_record(rec, HASH, 5);
	memcpy(raw + len, rec, (size_t)n);
	memcpy(raw + len + n, "hello", 5);
	len += (size_t)n + 5;
	n = vs_bundle_record(rec, HASH, 0); /* an empty file */
	memcpy(raw + len, rec, (size_t)n);
	len += (size_t)n;
	n = vs_bundle_record(rec, HASH, 2);
	memcpy(raw + len, rec, (size_t)n);
	memcpy(raw + len + n, "hi", 2);
	len += (size_t)n + 2;
	CHK(vs_bundle_each(raw, len, walk_one, &w), 0, "walk three records");
	assert_int_equal(w.n, 3);
	assert_int_equal(w.lens[0], 5);
	assert_int_equal(w.lens[1], 0);
	assert_int_equal(w.lens[2], 2);
	assert_string_equal(w.hashes[2], HASH);
	w.n = 0;
	CHK(vs_bundle_each(raw, len - 1, walk_one, &w), -EBADMSG,
	    "walk records whose last runs past the end");
	raw[3] = 'g'; /* not hex */
	w.n = 0;
	CHK(vs_bundle_each(raw, len, walk_one, &w), -EBADMSG,
	    "walk a record with a bad hash");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_unsigned),
	    cmocka_unit_test(test_tampered),
	    cmocka_unit_test(test_bundle_index),
	    cmocka_unit_test(test_bundle_records),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
