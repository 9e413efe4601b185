/*
 * test_sign.c - unit tests of sync/sign.c (include/vsync/sign.h): the
 * canonical encoding of stream entries and manifest values, and Ed25519
 * sign/verify.
 *
 * Covers: the exact bytes of a manifest message; the encoding is
 * injective where text concatenation would not be (path "ab"+target "c"
 * vs "a"+"bc"); every field of a change and of a manifest entry changes
 * the message; the project id is bound; a good signature verifies; a
 * tampered field (size 99 TB, a symlink target, a path, the seq), a wrong
 * key, a truncated, empty or garbled signature are refused; public keys
 * load from base64 and from a PEM file; a name -> id mapping's message
 * and signature are bound to the name and the id; a manifest value's signature
 * prefix is split, and a malformed prefix rejected.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vsync/sign.h"

#include "unit_check.h"

/* got first, then what was expected, reading like the call */
#define CHK(got, want, ...) check_ret(want, got, __VA_ARGS__)

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PROJ "11111111-2222-3333-4444-555555555555"

struct keys {
	struct vs_sign_key *priv, *pub, *other_pub;
	char pub_b64[45];
};

static int setup(void **state)
{
	struct keys *k = calloc(1, sizeof(*k));
	char *pem = NULL, other[45], path[] = "/tmp/vsync-test-sign-XXXXXX";
	int fd;

	assert_non_null(k);
	assert_int_equal(vs_sign_keygen(&pem, k->pub_b64), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_true(write(fd, pem, strlen(pem)) == (ssize_t)strlen(pem));
	close(fd);
	assert_int_equal(vs_sign_key_load_private(&k->priv, path), 0);
	unlink(path);
	free(pem);
	assert_int_equal(vs_sign_key_load_public(&k->pub, k->pub_b64), 0);
	assert_int_equal(vs_sign_keygen(&pem, other), 0);
	free(pem);
	assert_int_equal(vs_sign_key_load_public(&k->other_pub, other), 0);
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

static void sample_change(struct vs_change *c)
{
	memset(c, 0, sizeof(*c));
	c->seq = 42;
	c->op = VS_OP_UPDATE;
	snprintf(c->path, sizeof(c->path), "src/a.js");
	c->state.path = c->path;
	c->state.kind = VS_KIND_FILE;
	c->state.mode = 0644;
	c->state.size = 1532;
	c->state.version = 7;
	c->state.mtime_ns = 1764125138123456000LL;
	memcpy(c->state.hash, HASH, sizeof(c->state.hash));
	snprintf(c->author, sizeof(c->author), "alice");
}

static void test_manifest_bytes(void **state)
{
	static const char want[] = "\0\0\0\x11vsync-manifest-v1"
				   "\0\0\0\x24" PROJ "\0\0\0\x03"
				   "a/l"
				   "\0\0\0\x07symlink"
				   "\0\0\0\x03"
				   "777"
				   "\0\0\0\x01"
				   "3"
				   "\0\0\0\x01"
				   "1"
				   "\0\0\0\x01"
				   "5"
				   "\0\0\0\x40" HASH "\0\0\0\x03"
				   "a/b";
	struct vs_manifest_entry e = {.path = "a/l",
				      .target = "a/b",
				      .kind = VS_KIND_SYMLINK,
				      .mode = 0777,
				      .size = 3,
				      .version = 1,
				      .mtime_ns = 5};
	uint8_t buf[512];
	long n;

	(void)state;
	memcpy(e.hash, HASH, sizeof(e.hash));
	n = vs_sign_manifest_msg(buf, sizeof(buf), PROJ, &e);
	CHK(n, (long)sizeof(want) - 1, "manifest message length");
	assert_memory_equal(buf, want, sizeof(want) - 1);
	CHK(vs_sign_manifest_msg(buf, 20, PROJ, &e), -ENOSPC,
	    "manifest message into 20 bytes");
}

static void test_injective(void **state)
{
	struct vs_manifest_entry a = {.path = "ab",
				      .target = "c",
				      .kind = VS_KIND_SYMLINK},
				 b = {.path = "a",
				      .target = "bc",
				      .kind = VS_KIND_SYMLINK};
	uint8_t x[256], y[256];
	long nx, ny;

	(void)state;
	nx = vs_sign_manifest_msg(x, sizeof(x), PROJ, &a);
	ny = vs_sign_manifest_msg(y, sizeof(y), PROJ, &b);
	assert_true(nx > 0 && nx == ny);
	assert_true(memcmp(x, y, (size_t)nx) != 0);
}

/* Every field of a change is in its message. */
static void test_change_fields(void **state)
{
	struct vs_change *c = malloc(sizeof(*c)), *d = malloc(sizeof(*d));
	uint8_t *x = malloc(VS_SIGN_MSG_MAX), *y = malloc(VS_SIGN_MSG_MAX);
	long nx, ny;

	(void)state;
	sample_change(c);
	nx = vs_sign_change_msg(x, VS_SIGN_MSG_MAX, PROJ, c);
	assert_true(nx > 0);
	for (int f = 0; f < 15; f++) {
		*d = *c;
		switch (f) {
		case 0:
			d->seq++;
			break;
		case 1:
			d->op = VS_OP_CREATE;
			break;
		case 2:
			d->path[0] = 'x';
			break;
		case 3:
			snprintf(d->old_path, sizeof(d->old_path), "o");
			break;
		case 4:
			d->state.kind = VS_KIND_SYMLINK;
			break;
		case 5:
			d->state.mode = 0755;
			break;
		case 6:
			d->state.size = 99ULL << 40;
			break;
		case 7:
			d->state.hash[0] = 'f';
			break;
		case 8:
			d->state.version++;
			break;
		case 9:
			d->state.mtime_ns++;
			break;
		case 10:
			d->state.target = "/etc/shadow";
			break;
		case 11:
			d->author[0] = 'b';
			break;
		case 12:
			d->conflict = 3;
			break;
		case 13:
			memcpy(d->delta_base, HASH, sizeof(d->delta_base));
			break;
		case 14:
			break; /* the project, below */
		}
		ny = vs_sign_change_msg(y, VS_SIGN_MSG_MAX,
					f == 14 ? "other" : PROJ, d);
		assert_true(ny > 0);
		if (nx == ny && memcmp(x, y, (size_t)nx) == 0)
			fail_msg("field %d of the change is not in its message",
				 f);
	}
	free(c);
	free(d);
	free(x);
	free(y);
}

static void test_change_sign(void **state)
{
	struct keys *k = *state;
	struct vs_change *c = malloc(sizeof(*c));
	char sig[VS_SIGN_B64_LEN + 1], bad[VS_SIGN_B64_LEN + 1];

	sample_change(c);
	CHK(vs_sign_change(k->priv, PROJ, c, sig), 0, "sign");
	CHK((long)strlen(sig), VS_SIGN_B64_LEN, "signature length");
	CHK(vs_sign_change_verify(k->pub, PROJ, c, sig, strlen(sig)), 0,
	    "verify a good signature");
	/* wrong key, other project */
	CHK(vs_sign_change_verify(k->other_pub, PROJ, c, sig, strlen(sig)),
	    -EBADMSG, "verify with another key");
	CHK(vs_sign_change_verify(k->pub, "other", c, sig, strlen(sig)),
	    -EBADMSG, "verify for another project");
	/* truncated, empty, NULL, one character changed */
	CHK(vs_sign_change_verify(k->pub, PROJ, c, sig, 87), -EBADMSG,
	    "verify a truncated signature");
	CHK(vs_sign_change_verify(k->pub, PROJ, c, sig, 0), -EBADMSG,
	    "verify an empty signature");
	CHK(vs_sign_change_verify(k->pub, PROJ, c, NULL, 0), -EBADMSG,
	    "verify no signature");
	memcpy(bad, sig, sizeof(bad));
	bad[10] = bad[10] == 'A' ? 'B' : 'A';
	CHK(vs_sign_change_verify(k->pub, PROJ, c, bad, strlen(bad)), -EBADMSG,
	    "verify an altered signature");
	memset(bad, '!', VS_SIGN_B64_LEN);
	CHK(vs_sign_change_verify(k->pub, PROJ, c, bad, strlen(bad)), -EBADMSG,
	    "verify a signature that is not base64");
	/* tampered fields */
	c->state.size = 99ULL << 40;
	CHK(vs_sign_change_verify(k->pub, PROJ, c, sig, strlen(sig)), -EBADMSG,
	    "verify with a 99 TB size");
	sample_change(c);
	c->seq = 43;
	CHK(vs_sign_change_verify(k->pub, PROJ, c, sig, strlen(sig)), -EBADMSG,
	    "verify with another seq");
	/* a public key cannot sign */
	CHK(vs_sign_change(k->pub, PROJ, c, sig), -EIO,
	    "sign with a public key");
	free(c);
}

static void test_manifest_sign(void **state)
{
	struct keys *k = *state;
	struct vs_manifest_entry e = {.path = "link",
				      .target = "src/main.js",
				      .kind = VS_KIND_SYMLINK,
				      .mode = 0777,
				      .size = 11,
				      .version = 1,
				      .mtime_ns = 1};
	char sig[VS_SIGN_B64_LEN + 1];

	memcpy(e.hash, HASH, sizeof(e.hash));
	CHK(vs_sign_manifest(k->priv, PROJ, &e, sig), 0, "sign entry");
	CHK(vs_sign_manifest_verify(k->pub, PROJ, &e, sig, strlen(sig)), 0,
	    "verify a good entry");
	e.target = "/etc/shadow";
	CHK(vs_sign_manifest_verify(k->pub, PROJ, &e, sig, strlen(sig)),
	    -EBADMSG, "verify with the target changed");
	e.target = "src/main.js";
	e.path = "other";
	CHK(vs_sign_manifest_verify(k->pub, PROJ, &e, sig, strlen(sig)),
	    -EBADMSG, "verify under another path");
}

/* The name -> id mapping: bound to the name and the id, and its own
 * kind of message (a manifest's signature does not pass for it). */
static void test_name_sign(void **state)
{
	static const uint8_t want[] = "\0\0\0\x0d"
				      "vsync-name-v1"
				      "\0\0\0\x03"
				      "app"
				      "\0\0\0\x24" PROJ;
	struct keys *k = *state;
	char sig[VS_SIGN_B64_LEN + 1];
	uint8_t buf[256];

	CHK(vs_sign_name_msg(buf, sizeof(buf), "app", PROJ),
	    (long)sizeof(want) - 1, "name message length");
	assert_memory_equal(buf, want, sizeof(want) - 1);
	CHK(vs_sign_name_msg(buf, 10, "app", PROJ), -ENOSPC,
	    "name message into 10 bytes");
	CHK(vs_sign_name(k->priv, "app", PROJ, sig), 0, "sign a name");
	CHK(vs_sign_name_verify(k->pub, "app", PROJ, sig, strlen(sig)), 0,
	    "verify a good name");
	CHK(vs_sign_name_verify(k->pub, "app2", PROJ, sig, strlen(sig)),
	    -EBADMSG, "verify under another name");
	CHK(vs_sign_name_verify(k->pub, "app",
				"11111111-2222-3333-4444-555555555556", sig,
				strlen(sig)),
	    -EBADMSG, "verify with another id");
	CHK(vs_sign_name_verify(k->other_pub, "app", PROJ, sig, strlen(sig)),
	    -EBADMSG, "verify with another key");
	CHK(vs_sign_name_verify(k->pub, "app", PROJ, NULL, 0), -EBADMSG,
	    "verify without a signature");
}

static void test_public_pem(void **state)
{
	struct vs_sign_key *key = NULL;
	char path[] = "/tmp/vsync-test-pub-XXXXXX";
	const char *pem =
	    "-----BEGIN PUBLIC KEY-----\n"
	    "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
	    "-----END PUBLIC KEY-----\n";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_true(write(fd, pem, strlen(pem)) == (ssize_t)strlen(pem));
	close(fd);
	CHK(vs_sign_key_load_public(&key, path), 0, "PEM public key");
	vs_sign_key_free(key);
	CHK(vs_sign_key_load_public(&key, "/nonexistent/key"), -ENOENT,
	    "missing key file");
	CHK(vs_sign_key_load_private(&key, path), -EINVAL,
	    "a public key as the private one");
	unlink(path);
	CHK(vs_sign_key_load_public(&key, "not-a-key"), -ENOENT,
	    "neither a file nor base64");
}

static void test_split(void **state)
{
	char v[256];
	const char *sig, *plain;
	size_t len;

	(void)state;
	CHK(vs_sign_value_split("dir 755 0 1 5 -", 15, &sig, &plain, &len), 0,
	    "unsigned value");
	assert_null(sig);
	CHK((long)len, 15, "unsigned length");
	snprintf(v, sizeof(v), "sig1:%088d dir 755 0 1 5 -", 0);
	CHK(vs_sign_value_split(v, strlen(v), &sig, &plain, &len), 0,
	    "signed value");
	assert_true(sig == v + 5);
	assert_string_equal(plain, "dir 755 0 1 5 -");
	CHK(vs_sign_value_split("sig1:abc dir", 12, &sig, &plain, &len),
	    -EBADMSG, "short signature prefix");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_manifest_bytes),
	    cmocka_unit_test(test_injective),
	    cmocka_unit_test(test_change_fields),
	    cmocka_unit_test(test_change_sign),
	    cmocka_unit_test(test_manifest_sign),
	    cmocka_unit_test(test_name_sign),
	    cmocka_unit_test(test_public_pem),
	    cmocka_unit_test(test_split),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
