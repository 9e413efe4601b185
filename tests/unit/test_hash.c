/*
 * test_hash.c - unit tests of sync/hash.c (include/vsync/hash.h).
 *
 * Covers:
 *  - vs_sha256_hex on the FIPS 180-2 vectors: "", "abc", the 448-bit
 *    message, and 1,000,000 x 'a';
 *  - the incremental interface (init/update/final_hex) giving the same
 *    digest as one-shot for every split point of a short message and for
 *    1,000,000 x 'a' fed in uneven chunks; release without final;
 *  - vs_sha256_fd_hex on a temp file (mkstemp in /tmp, closed and removed
 *    in teardown): empty, "abc", 1,000,000 x 'a' (several 256 KiB read
 *    chunks), reading from offset 0 whatever the file position, and
 *    -EBADF on a closed descriptor;
 *  - vs_hash_hex_valid: lowercase accepted; uppercase, 63 and 65 chars,
 *    non-hex characters and the empty string rejected;
 *  - vs_hex_encode: known bytes, every byte value, zero length;
 *  - vs_hex_decode: the inverse of vs_hex_encode for every byte value;
 *    short, long, odd and non-hex text rejected with -EINVAL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vsync/hash.h"
#include "vsync/util.h"

#include "unit_check.h"

#define EMPTY_SHA                                                              \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA                                                                \
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define MSG448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define MSG448_SHA                                                             \
	"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define MILLION_A_SHA                                                          \
	"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
#define MILLION 1000000

/* ------------------------------------------------------------ fixtures */

struct tmpfile_state {
	char path[64];
	int fd;
};

static int tmpfile_setup(void **state)
{
	struct tmpfile_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -1;
	strcpy(s->path, "/tmp/vsync-test-hash.XXXXXX");
	s->fd = mkstemp(s->path);
	if (s->fd < 0) {
		print_error("mkstemp(%s): %s\n", s->path, strerror(errno));
		free(s);
		return -1;
	}
	*state = s;
	return 0;
}

static int tmpfile_teardown(void **state)
{
	struct tmpfile_state *s = *state;

	if (s->fd >= 0)
		close(s->fd);
	unlink(s->path);
	free(s);
	return 0;
}

static void write_all_or_fail(int fd, const void *buf, size_t len)
{
	int r = vs_write_in_full(fd, buf, len);

	if (r < 0)
		fail_msg("write of %zu bytes to the temp file: %s", len,
			 strerror(-r));
}

static char *million_a(void)
{
	char *buf = malloc(MILLION);

	assert_non_null(buf);
	memset(buf, 'a', MILLION);
	return buf;
}

/* ------------------------------------------------------------ one-shot */

static void check_oneshot(const char *what, const void *buf, size_t len,
			  const char *want)
{
	char out[VS_HASH_HEX_LEN + 1];

	memset(out, 'X', sizeof(out));
	check_ret(0, vs_sha256_hex(out, buf, len), "vs_sha256_hex(%s)", what);
	check_str(want, out, "sha256(%s)", what);
}

static void test_known_vectors(void **state)
{
	char *a = million_a();

	(void)state;
	check_oneshot("\"\"", "", 0, EMPTY_SHA);
	check_oneshot("\"abc\"", "abc", 3, ABC_SHA);
	check_oneshot("448-bit message", MSG448, strlen(MSG448), MSG448_SHA);
	check_oneshot("1,000,000 x 'a'", a, MILLION, MILLION_A_SHA);
	/* a NULL buffer of length 0 is the empty message */
	check_oneshot("NULL, 0", NULL, 0, EMPTY_SHA);
	free(a);
}

/* ------------------------------------------------------------ incremental */

static void test_incremental_splits(void **state)
{
	const size_t len = strlen(MSG448);

	(void)state;
	for (size_t cut = 0; cut <= len; cut++) {
		struct vs_sha256 s;
		char out[VS_HASH_HEX_LEN + 1];

		check_ret(0, vs_sha256_init(&s), "vs_sha256_init");
		vs_sha256_update(&s, MSG448, cut);
		vs_sha256_update(&s, "", 0);
		vs_sha256_update(&s, MSG448 + cut, len - cut);
		vs_sha256_final_hex(&s, out);
		check_str(MSG448_SHA, out, "448-bit message split at %zu", cut);
		check_ptr(NULL, s.ctx, "context after final_hex (released)");
	}
}

static void test_incremental_million(void **state)
{
	static const size_t steps[] = {1, 63, 64, 65, 4096, 99991};
	char *a = million_a();
	struct vs_sha256 s;
	char out[VS_HASH_HEX_LEN + 1];
	size_t off = 0, k = 0;

	(void)state;
	check_ret(0, vs_sha256_init(&s), "vs_sha256_init");
	while (off < MILLION) {
		size_t n = steps[k++ % (sizeof(steps) / sizeof(steps[0]))];

		if (n > MILLION - off)
			n = MILLION - off;
		vs_sha256_update(&s, a + off, n);
		off += n;
	}
	vs_sha256_final_hex(&s, out);
	check_str(MILLION_A_SHA, out, "1,000,000 x 'a' in uneven chunks");
	free(a);
}

static void test_release_without_final(void **state)
{
	struct vs_sha256 s;

	(void)state;
	check_ret(0, vs_sha256_init(&s), "vs_sha256_init");
	vs_sha256_update(&s, "abc", 3);
	vs_sha256_release(&s);
	check_ptr(NULL, s.ctx, "context after release");
	vs_sha256_release(&s); /* idempotent */
}

/* ------------------------------------------------------------ fd */

static void test_fd_empty(void **state)
{
	struct tmpfile_state *t = *state;
	char out[VS_HASH_HEX_LEN + 1];

	check_ret(0, vs_sha256_fd_hex(out, t->fd), "vs_sha256_fd_hex(empty)");
	check_str(EMPTY_SHA, out, "sha256 of an empty file");
}

static void test_fd_abc_from_offset_zero(void **state)
{
	struct tmpfile_state *t = *state;
	char out[VS_HASH_HEX_LEN + 1];

	/* the file position is at the end after the write: pread ignores it */
	write_all_or_fail(t->fd, "abc", 3);
	check_ret(0, vs_sha256_fd_hex(out, t->fd), "vs_sha256_fd_hex(\"abc\")");
	check_str(ABC_SHA, out, "sha256 of a file holding \"abc\"");
	check_int(3, lseek(t->fd, 0, SEEK_CUR),
		  "file position after vs_sha256_fd_hex (left alone)");
}

static void test_fd_million(void **state)
{
	struct tmpfile_state *t = *state;
	char out[VS_HASH_HEX_LEN + 1];
	char *a = million_a();

	write_all_or_fail(t->fd, a, MILLION);
	check_ret(0, vs_sha256_fd_hex(out, t->fd),
		  "vs_sha256_fd_hex(1,000,000 x 'a')");
	check_str(MILLION_A_SHA, out, "sha256 of a file of 1,000,000 x 'a'");
	free(a);
}

static void test_fd_bad(void **state)
{
	struct tmpfile_state *t = *state;
	char out[VS_HASH_HEX_LEN + 1];
	int fd = t->fd;

	close(t->fd);
	t->fd = -1;
	check_ret(-EBADF, vs_sha256_fd_hex(out, fd),
		  "vs_sha256_fd_hex(closed fd)");
}

/* ------------------------------------------------------------ hex */

static void check_valid(const char *s, bool want)
{
	check_bool(want, vs_hash_hex_valid(s), "vs_hash_hex_valid(\"%s\")", s);
}

static void test_hash_hex_valid(void **state)
{
	char buf[VS_HASH_HEX_LEN + 2];

	(void)state;
	check_valid(EMPTY_SHA, true);
	check_valid(ABC_SHA, true);
	check_valid(
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    true);

	strcpy(buf, ABC_SHA);
	buf[0] = 'B'; /* uppercase */
	check_valid(buf, false);
	check_valid(
	    "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
	    false);

	strcpy(buf, ABC_SHA);
	buf[63] = '\0'; /* 63 chars */
	check_valid(buf, false);

	strcpy(buf, ABC_SHA);
	buf[64] = 'a'; /* 65 chars */
	buf[65] = '\0';
	check_valid(buf, false);

	strcpy(buf, ABC_SHA);
	buf[10] = 'g';
	check_valid(buf, false);
	buf[10] = ' ';
	check_valid(buf, false);
	buf[10] = '-';
	check_valid(buf, false);

	check_valid("", false);
	check_valid("-", false);
}

static void test_hex_encode(void **state)
{
	static const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	uint8_t all[256];
	char out[2 * 256 + 1];

	(void)state;
	vs_hex_encode(out, bytes, sizeof(bytes));
	check_str("00017f80abff", out, "vs_hex_encode({00 01 7f 80 ab ff})");

	memset(out, 'X', sizeof(out));
	vs_hex_encode(out, bytes, 0);
	check_str("", out, "vs_hex_encode(0 bytes)");

	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	vs_hex_encode(out, all, sizeof(all));
	for (int i = 0; i < 256; i++) {
		char want[3];

		snprintf(want, sizeof(want), "%02x", i);
		if (memcmp(out + 2 * i, want, 2) != 0)
			fail_msg(
			    "vs_hex_encode of byte 0x%02x: expected \"%s\", "
			    "got \"%.2s\"",
			    i, want, out + 2 * i);
	}
	check_int(512, strlen(out), "length of 256 encoded bytes");
}

static void test_hex_decode(void **state)
{
	uint8_t all[256], back[256], two[2];
	char hex[2 * 256 + 1];

	(void)state;
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	vs_hex_encode(hex, all, sizeof(all));
	check_ret(0, vs_hex_decode(back, sizeof(back), hex),
		  "vs_hex_decode of every byte value");
	if (memcmp(all, back, sizeof(all)) != 0)
		fail_msg("vs_hex_decode is not the inverse of vs_hex_encode");
	check_ret(0, vs_hex_decode(two, 2, "abff"), "vs_hex_decode(\"abff\")");
	check_int(0xab, two[0], "first byte");
	check_int(0xff, two[1], "second byte");
	check_ret(-EINVAL, vs_hex_decode(two, 2, "abf"),
		  "3 digits for 2 bytes");
	check_ret(-EINVAL, vs_hex_decode(two, 2, "abfff"), "5 digits");
	check_ret(-EINVAL, vs_hex_decode(two, 2, "abcdef"), "6 digits");
	check_ret(-EINVAL, vs_hex_decode(two, 2, "abgf"), "not hex");
	check_ret(-EINVAL, vs_hex_decode(two, 2, ""), "empty");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_vectors),
	    cmocka_unit_test(test_hex_decode),
	    cmocka_unit_test(test_incremental_splits),
	    cmocka_unit_test(test_incremental_million),
	    cmocka_unit_test(test_release_without_final),
	    cmocka_unit_test_setup_teardown(test_fd_empty, tmpfile_setup,
					    tmpfile_teardown),
	    cmocka_unit_test_setup_teardown(test_fd_abc_from_offset_zero,
					    tmpfile_setup, tmpfile_teardown),
	    cmocka_unit_test_setup_teardown(test_fd_million, tmpfile_setup,
					    tmpfile_teardown),
	    cmocka_unit_test_setup_teardown(test_fd_bad, tmpfile_setup,
					    tmpfile_teardown),
	    cmocka_unit_test(test_hash_hex_valid),
	    cmocka_unit_test(test_hex_encode),
	};

	return cmocka_run_group_tests_name("hash", tests, NULL, NULL);
}
