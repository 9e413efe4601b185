/*
 * test_delta.c - unit tests of sync/delta.c (include/vsync/delta.h).
 *
 * Covers:
 *  - round trip of 1 MiB of text with one line changed: the result is the
 *    target, and the delta is much smaller than the target;
 *  - an empty base (the delta carries the whole target) and an empty
 *    target;
 *  - corrupt deltas: empty, garbage, truncated -> -EBADMSG, nothing
 *    returned;
 *  - max_len: a result over it is -EFBIG, at it is fine.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vsync/delta.h"

#include "unit_check.h"

#define MIB (1024 * 1024)

/* Text lines that differ from each other (so blocks match in one place). */
static void fill_lines(uint8_t *p, size_t len)
{
	size_t i = 0;
	unsigned n = 0;
	char line[80];

	while (i < len) {
		int k = snprintf(line, sizeof(line),
				 "export const value%u = %u; // line %u\n", n,
				 n * 7919u, n);
		size_t c = (size_t)k < len - i ? (size_t)k : len - i;

		memcpy(p + i, line, c);
		i += c;
		n++;
	}
}

/* An fd holding @len bytes of @buf (unlinked temporary file). */
static int base_fd(const void *buf, size_t len)
{
	FILE *f = tmpfile();
	int fd;

	assert_non_null(f);
	if (len)
		assert_int_equal(fwrite(buf, 1, len, f), len);
	fflush(f);
	fd = dup(fileno(f));
	fclose(f);
	assert_true(fd >= 0);
	return fd;
}

static void round_trip(const uint8_t *base, size_t blen, const uint8_t *tgt,
		       size_t tlen, size_t *dlen_out)
{
	uint8_t *delta = NULL, *out = NULL;
	size_t dlen = 0, olen = 0;
	int fd = base_fd(base, blen);

	check_ret(0, vs_delta_make(base, blen, tgt, tlen, &delta, &dlen),
		  "make %zu -> %zu bytes", blen, tlen);
	check_ret(0, vs_delta_apply(fd, delta, dlen, tlen, &out, &olen),
		  "apply %zu-byte delta", dlen);
	assert_non_null(out);
	check_int((long long)tlen, (long long)olen, "result length");
	assert_true(tlen == 0 || memcmp(out, tgt, tlen) == 0);
	*dlen_out = dlen;
	free(delta);
	free(out);
	close(fd);
}

static void test_one_line_1mib(void **state)
{
	uint8_t *base = malloc(MIB), *tgt = malloc(MIB + 64);
	const char *edit = "export const value5000 = 42; // EDITED\n";
	size_t dlen = 0, at = MIB / 2, tlen;
	char *nl;

	(void)state;
	assert_non_null(base);
	assert_non_null(tgt);
	fill_lines(base, MIB);
	/* replace the line that starts after the middle */
	nl = memchr(base + at, '\n', MIB - at);
	assert_non_null(nl);
	at = (size_t)(nl - (char *)base) + 1;
	nl = memchr(base + at, '\n', MIB - at);
	assert_non_null(nl);
	memcpy(tgt, base, at);
	memcpy(tgt + at, edit, strlen(edit));
	tlen = at + strlen(edit);
	memcpy(tgt + tlen, nl + 1, MIB - (size_t)(nl + 1 - (char *)base));
	tlen += MIB - (size_t)(nl + 1 - (char *)base);

	round_trip(base, MIB, tgt, tlen, &dlen);
	if (dlen * 50 > tlen)
		fail_msg("delta of a one-line edit is %zu bytes for %zu", dlen,
			 tlen);

	/* identical content: a tiny delta too */
	round_trip(base, MIB, base, MIB, &dlen);
	assert_true(dlen * 100 < MIB);
	free(base);
	free(tgt);
}

static void test_empty(void **state)
{
	uint8_t tgt[5000];
	size_t dlen = 0;

	(void)state;
	fill_lines(tgt, sizeof(tgt));
	round_trip(NULL, 0, tgt, sizeof(tgt), &dlen);
	assert_true(dlen >= sizeof(tgt)); /* all literal */
	round_trip(tgt, sizeof(tgt), NULL, 0, &dlen);
	round_trip(NULL, 0, NULL, 0, &dlen);
}

static void expect_apply(int want, int fd, const void *d, size_t dlen,
			 size_t max, const char *what)
{
	uint8_t *out = (uint8_t *)"x";
	size_t olen = 7;

	check_ret(want, vs_delta_apply(fd, d, dlen, max, &out, &olen), "%s",
		  what);
	if (want < 0) {
		check_ptr(NULL, out, "%s: out", what);
		check_int(0, (long long)olen, "%s: olen", what);
	}
	free(want < 0 ? NULL : out);
}

static void test_corrupt(void **state)
{
	uint8_t base[20000], tgt[20000], *delta = NULL, garbage[256];
	size_t dlen = 0, i;
	int fd;

	(void)state;
	fill_lines(base, sizeof(base));
	memcpy(tgt, base, sizeof(tgt));
	memcpy(tgt + 10000, "CHANGED", 7);
	fd = base_fd(base, sizeof(base));
	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)(i * 37 + 11);

	expect_apply(-EBADMSG, fd, "", 0, sizeof(tgt), "empty delta");
	expect_apply(-EBADMSG, fd, garbage, sizeof(garbage), sizeof(tgt),
		     "garbage delta");
	check_ret(
	    0,
	    vs_delta_make(base, sizeof(base), tgt, sizeof(tgt), &delta, &dlen),
	    "make");
	assert_true(dlen > 8);
	expect_apply(-EBADMSG, fd, delta, 4, sizeof(tgt), "magic only");
	expect_apply(-EBADMSG, fd, delta, dlen - 1, sizeof(tgt),
		     "truncated by one byte");
	/* the good one still works */
	expect_apply(0, fd, delta, dlen, sizeof(tgt), "intact delta");
	free(delta);
	close(fd);
}

static void test_max_len(void **state)
{
	uint8_t base[30000], *delta = NULL;
	size_t dlen = 0;
	int fd;

	(void)state;
	fill_lines(base, sizeof(base));
	fd = base_fd(base, sizeof(base));
	check_ret(0,
		  vs_delta_make(base, sizeof(base), base, sizeof(base), &delta,
				&dlen),
		  "make");
	expect_apply(-EFBIG, fd, delta, dlen, sizeof(base) - 1,
		     "30000 bytes, max 29999");
	expect_apply(-EFBIG, fd, delta, dlen, 0, "30000 bytes, max 0");
	expect_apply(0, fd, delta, dlen, sizeof(base),
		     "30000 bytes, max 30000");
	free(delta);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_line_1mib),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_corrupt),
	    cmocka_unit_test(test_max_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
