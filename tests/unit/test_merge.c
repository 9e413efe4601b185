/*
 * test_merge.c - unit tests of sync/merge.c (include/vsync/merge.h).
 *
 * Covers vs_merge3:
 *  - edits of different lines merge cleanly (exact output), as do an
 *    insertion at the top and an append at the end;
 *  - edits of the same line, and of adjacent lines (git's rule: one hunk),
 *    are a conflict with no output;
 *  - one side unchanged gives the other side, both ways; both sides making
 *    the same change is clean; nothing changed at all gives the base;
 *  - an empty base (a file created on both sides): identical content is
 *    clean, different content a conflict, one side empty the other side;
 *    all three empty is clean with an empty, freeable result;
 *  - a NUL byte in any input is a conflict, even when the merge would be
 *    trivial (ours == base);
 *  - CRLF text keeps its line endings; a last line without newline merges;
 *  - 10,000-line inputs: far-apart edits merge exactly, the same line
 *    conflicts;
 *  - NULL with a non-zero length is -EINVAL;
 *  - 8 threads merging at once (libgit2 initialised once) all get the
 *    exact result.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/merge.h"

#include "unit_check.h"

/* Merge NUL-terminated texts; returns the result code, *out as given. */
static int merge_s(const char *base, const char *ours, const char *theirs,
		   char **out, size_t *out_len)
{
	return vs_merge3(base, strlen(base), ours, strlen(ours), theirs,
			 strlen(theirs), out, out_len);
}

/* A clean merge whose output must be exactly @want. */
static void expect_clean(const char *base, const char *ours, const char *theirs,
			 const char *want, const char *what)
{
	char *out = (char *)"unset";
	size_t len = 12345;
	int r = merge_s(base, ours, theirs, &out, &len);

	check_ret(VS_MERGE_CLEAN, r, "%s: result", what);
	if (!out)
		fail_msg("%s: clean merge without output", what);
	check_int(strlen(want), len, "%s: merged length", what);
	if (memcmp(want, out, len) != 0)
		fail_msg("%s: expected \"%s\", got \"%.*s\"", what, want,
			 (int)len, out);
	free(out);
}

static void expect_conflict(const char *base, const char *ours,
			    const char *theirs, const char *what)
{
	char *out = (char *)"unset";
	size_t len = 12345;
	int r = merge_s(base, ours, theirs, &out, &len);

	check_ret(VS_MERGE_CONFLICT, r, "%s: result", what);
	check_ptr(NULL, out, "%s: no output on conflict", what);
	check_int(0, len, "%s: no output length on conflict", what);
}

/* ------------------------------------------------------------ tests */

#define BASE5 "a\nb\nc\nd\ne\n"

static void test_different_lines(void **state)
{
	(void)state;
	expect_clean(BASE5, "A\nb\nc\nd\ne\n", "a\nb\nc\nd\nE\n",
		     "A\nb\nc\nd\nE\n", "first and last line");
	expect_clean(BASE5, "a\nb\nc\nd\nE\n", "A\nb\nc\nd\ne\n",
		     "A\nb\nc\nd\nE\n", "sides swapped");
	expect_clean(BASE5, "top\na\nb\nc\nd\ne\n", "a\nb\nc\nd\ne\nend\n",
		     "top\na\nb\nc\nd\ne\nend\n", "insert at top, append");
	expect_clean(BASE5, "a\nc\nd\ne\n", "a\nb\nc\nd\ne\nf\n",
		     "a\nc\nd\ne\nf\n", "delete a line, append");
}

static void test_same_line(void **state)
{
	(void)state;
	expect_conflict(BASE5, "a\nb\nX\nd\ne\n", "a\nb\nY\nd\ne\n",
			"same line changed differently");
	expect_conflict(BASE5, "a\nb\nd\ne\n", "a\nb\nY\nd\ne\n",
			"deleted on one side, changed on the other");
	/* git's rule: changes to adjacent lines form one hunk */
	expect_conflict(BASE5, "a\nB\nc\nd\ne\n", "a\nb\nC\nd\ne\n",
			"adjacent lines");
}

static void test_one_side_unchanged(void **state)
{
	(void)state;
	expect_clean(BASE5, BASE5, "x\ny\n", "x\ny\n", "ours unchanged");
	expect_clean(BASE5, "x\ny\n", BASE5, "x\ny\n", "theirs unchanged");
	expect_clean(BASE5, BASE5, "", "", "theirs emptied the file");
	expect_clean(BASE5, BASE5, BASE5, BASE5, "nothing changed");
}

static void test_identical_change(void **state)
{
	(void)state;
	expect_clean(BASE5, "a\nb\nSAME\nd\ne\n", "a\nb\nSAME\nd\ne\n",
		     "a\nb\nSAME\nd\ne\n", "both made the same change");
	expect_clean(BASE5, "a\nb\nSAME\nd\nE\n", "A\nb\nSAME\nd\ne\n",
		     "A\nb\nSAME\nd\nE\n", "same change plus different ones");
}

static void test_empty_base(void **state)
{
	char *out = (char *)"unset";
	size_t len = 1;

	(void)state;
	expect_clean("", "x\n", "x\n", "x\n", "created identically");
	expect_conflict("", "x\n", "y\n", "created differently");
	expect_clean("", "x\ny\n", "", "x\ny\n", "created on one side");
	check_ret(VS_MERGE_CLEAN,
		  vs_merge3(NULL, 0, NULL, 0, NULL, 0, &out, &len),
		  "all empty (NULL, 0)");
	if (!out)
		fail_msg("all empty: clean merge without a buffer");
	check_int(0, len, "all empty: length");
	free(out);
}

static void test_binary(void **state)
{
	static const char bin[] = "a\nb\0c\nd\n";
	static const char txt[] = "a\nb\nc\nd\n";
	char *out = (char *)"unset";
	size_t len = 1;

	(void)state;
	check_ret(VS_MERGE_CONFLICT,
		  vs_merge3(txt, sizeof(txt) - 1, bin, sizeof(bin) - 1, txt,
			    sizeof(txt) - 1, &out, &len),
		  "NUL in ours");
	check_ptr(NULL, out, "NUL in ours: no output");
	check_int(0, len, "NUL in ours: no length");
	check_ret(VS_MERGE_CONFLICT,
		  vs_merge3(txt, sizeof(txt) - 1, txt, sizeof(txt) - 1, bin,
			    sizeof(bin) - 1, &out, &len),
		  "NUL in theirs");
	check_ret(VS_MERGE_CONFLICT,
		  vs_merge3(bin, sizeof(bin) - 1, bin, sizeof(bin) - 1, txt,
			    sizeof(txt) - 1, &out, &len),
		  "NUL in base (ours unchanged)");
	check_ret(VS_MERGE_CONFLICT,
		  vs_merge3(bin, sizeof(bin) - 1, bin, sizeof(bin) - 1, bin,
			    sizeof(bin) - 1, &out, &len),
		  "all three the same binary");
	check_ret(VS_MERGE_CONFLICT,
		  vs_merge3("", 0, "\0", 1, "", 0, &out, &len),
		  "a lone NUL byte");
}

static void test_crlf(void **state)
{
	(void)state;
	expect_clean("a\r\nb\r\nc\r\nd\r\ne\r\n", "A\r\nb\r\nc\r\nd\r\ne\r\n",
		     "a\r\nb\r\nc\r\nd\r\nE\r\n", "A\r\nb\r\nc\r\nd\r\nE\r\n",
		     "CRLF, different lines");
	expect_conflict("a\r\nb\r\nc\r\n", "a\r\nX\r\nc\r\n", "a\r\nY\r\nc\r\n",
			"CRLF, same line");
	expect_clean(BASE5 "f", "A\nb\nc\nd\ne\nf", BASE5 "F",
		     "A\nb\nc\nd\ne\nF", "last line without newline");
}

/* @n numbered lines, line @k1 (1-based) replaced by @s1 and @k2 by @s2
 * (0: none). */
static char *lines(int n, int k1, const char *s1, int k2, const char *s2)
{
	size_t size = (size_t)n * 32 + 64, used = 0;
	char *buf = malloc(size);

	if (!buf)
		fail_msg("out of memory");
	for (int i = 1; i <= n; i++) {
		const char *s = i == k1 ? s1 : i == k2 ? s2 : NULL;
		int k = s ? snprintf(buf + used, size - used, "%s\n", s)
			  : snprintf(buf + used, size - used,
				     "line %d of the file\n", i);

		used += (size_t)k;
	}
	return buf;
}

static void test_large(void **state)
{
	char *base = lines(10000, 0, NULL, 0, NULL);
	char *ours = lines(10000, 100, "ours at 100", 0, NULL);
	char *theirs = lines(10000, 9000, "theirs at 9000", 0, NULL);
	char *both = lines(10000, 100, "ours at 100", 9000, "theirs at 9000");
	char *other = lines(10000, 100, "theirs at 100", 0, NULL);

	(void)state;
	expect_clean(base, ours, theirs, both, "10k lines, far apart");
	expect_conflict(base, ours, other, "10k lines, same line");
	free(base);
	free(ours);
	free(theirs);
	free(both);
	free(other);
}

static void test_invalid(void **state)
{
	char *out = (char *)"unset";
	size_t len = 1;

	(void)state;
	check_ret(-EINVAL, vs_merge3(NULL, 1, "a", 1, "a", 1, &out, &len),
		  "NULL base with length 1");
	check_ptr(NULL, out, "no output on error");
	check_ret(-EINVAL, vs_merge3("a", 1, NULL, 1, "a", 1, &out, &len),
		  "NULL ours with length 1");
	check_ret(-EINVAL, vs_merge3("a", 1, "a", 1, NULL, 1, &out, &len),
		  "NULL theirs with length 1");
}

static void *merge_thread(void *arg)
{
	int *ok = arg;

	*ok = 1;
	for (int i = 0; i < 50; i++) {
		char *out = NULL;
		size_t len = 0;
		int r = merge_s(BASE5, "A\nb\nc\nd\ne\n", "a\nb\nc\nd\nE\n",
				&out, &len);

		if (r != VS_MERGE_CLEAN || len != 10 ||
		    memcmp(out, "A\nb\nc\nd\nE\n", 10) != 0)
			*ok = 0;
		free(out);
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t t[8];
	int ok[8];

	(void)state;
	for (int i = 0; i < 8; i++)
		check_int(0, pthread_create(&t[i], NULL, merge_thread, &ok[i]),
			  "pthread_create %d", i);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		check_bool(true, ok[i], "thread %d merged exactly", i);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_threads), /* first: races the one init */
	    cmocka_unit_test(test_different_lines),
	    cmocka_unit_test(test_same_line),
	    cmocka_unit_test(test_one_side_unchanged),
	    cmocka_unit_test(test_identical_change),
	    cmocka_unit_test(test_empty_base),
	    cmocka_unit_test(test_binary),
	    cmocka_unit_test(test_crlf),
	    cmocka_unit_test(test_large),
	    cmocka_unit_test(test_invalid),
	};

	return cmocka_run_group_tests_name("merge", tests, NULL, NULL);
}
