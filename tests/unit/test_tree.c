/*
 * test_tree.c - unit tests of sync/tree.c (include/vsync/tree.h): the
 * tree snapshot a cold mount reads in one GET.
 *
 * Covers: a signed tree round-trips (entries, seq, project, index); an
 * unsigned one decodes without a key and is refused with one; a wrong
 * key, another project's id, a changed byte of the body, a changed seq
 * in the header and a truncated value are refused; an empty index gives
 * no index.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_unsigned),
	    cmocka_unit_test(test_tampered),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
