/*
 * test_prefetch.c - unit tests of the pure parts of sync/prefetch.c
 * (include/vsync/prefetch.h): the learned list and the plan.
 *
 * Covers:
 *  - vs_learned_cut(): text up to VS_LEARN_BYTES_MAX kept whole, longer
 *    text cut after its last complete line within the bound;
 *  - vs_learned_parse(): invalid and empty lines dropped, order kept, at
 *    most VS_LEARN_MAX paths, nothing read past the byte bound (a value
 *    of a million lines, as any container of the project can store in
 *    learned:{P});
 *  - vs_learned_index_*: positions found, a repeated path at its first
 *    position, unknown paths -1, only the first VS_LEARN_MAX indexed;
 *  - vs_prefetch_plan_build(): learned files first in learned order, then
 *    critical globs, then files next to critical ones, then the rest; no
 *    more than VS_LEARN_MAX files critical for being learned, and a plan
 *    over a long hostile list of a large tree is built at once (it was
 *    lines x files, and files x critical files).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vsync/clock.h"
#include "vsync/manifest.h"
#include "vsync/prefetch.h"

#include "unit_check.h"

static void test_cut(void **state)
{
	size_t len = VS_LEARN_BYTES_MAX + 100;
	char *t = malloc(len);

	(void)state;
	check_int(5, vs_learned_cut("a\nb\nc", 5), "short text kept whole");
	memset(t, 'x', len);
	check_int(0, vs_learned_cut(t, len), "no newline within the bound");
	t[10] = '\n';
	t[VS_LEARN_BYTES_MAX - 2] = '\n';
	t[VS_LEARN_BYTES_MAX + 5] = '\n'; /* past the bound */
	check_int(VS_LEARN_BYTES_MAX - 1, vs_learned_cut(t, len),
		  "cut after the last newline within the bound");
	check_int(VS_LEARN_BYTES_MAX, vs_learned_cut(t, VS_LEARN_BYTES_MAX),
		  "text of exactly the bound kept whole");
	free(t);
}

static void test_parse(void **state)
{
	const char *text = "src/a.ts\n\n../up\n/abs\nb//c\nsrc/b.ts\nlast";
	char **p = NULL;
	size_t n = 0;

	(void)state;
	check_ret(0, vs_learned_parse(text, strlen(text), &p, &n), "parse");
	check_int(3, n, "valid lines");
	check_str("src/a.ts", p[0], "first");
	check_str("src/b.ts", p[1], "second");
	check_str("last", p[2], "unterminated last line of a whole value");
	vs_learned_free(p, n);

	check_ret(0, vs_learned_parse(NULL, 0, &p, &n), "parse of nothing");
	check_int(0, n, "nothing");
	check_ptr(NULL, p, "no array");
}

/* @nlines lines "d/<i>\n": a list as long as a container may store. */
static char *many_lines(size_t nlines, size_t *len)
{
	char *t = malloc(nlines * 16 + 1);
	size_t l = 0;

	for (size_t i = 0; i < nlines; i++)
		l += (size_t)snprintf(t + l, 16, "d/%zu\n", i);
	*len = l;
	return t;
}

static void test_parse_bounds(void **state)
{
	size_t len, n = 0;
	char *t = many_lines(1000000, &len), **p = NULL;

	(void)state;
	check_bool(true, len > 4 * VS_LEARN_BYTES_MAX, "a value of %zu bytes",
		   len);
	check_ret(0, vs_learned_parse(t, len, &p, &n), "parse 1M lines");
	check_int(VS_LEARN_MAX, n, "at most VS_LEARN_MAX paths");
	check_str("d/0", p[0], "first");
	check_str("d/4095", p[VS_LEARN_MAX - 1], "last kept");
	vs_learned_free(p, n);

	/* invalid lines fill the byte bound: nothing past it is read */
	memset(t, '\n', VS_LEARN_BYTES_MAX);
	check_ret(0, vs_learned_parse(t, len, &p, &n), "parse of blank lines");
	check_int(0, n, "no path within the byte bound");
	free(t);
}

static void test_index(void **state)
{
	const char *paths[] = {"b", "a", "c", "a", "d"};
	struct vs_learned_index x;

	(void)state;
	check_ret(0, vs_learned_index_build(&x, paths, 5), "build");
	check_int(1, vs_learned_index_find(&x, "a"), "a: first position");
	check_int(0, vs_learned_index_find(&x, "b"), "b");
	check_int(2, vs_learned_index_find(&x, "c"), "c");
	check_int(4, vs_learned_index_find(&x, "d"), "d");
	check_int(-1, vs_learned_index_find(&x, "e"), "e: not learned");
	check_int(-1, vs_learned_index_find(&x, ""), "empty");
	vs_learned_index_release(&x);

	check_ret(0, vs_learned_index_build(&x, NULL, 0), "empty index");
	check_int(-1, vs_learned_index_find(&x, "a"), "nothing in it");
	vs_learned_index_release(&x);
}

static void add_file(struct vs_manifest *m, const char *path, uint64_t size)
{
	struct vs_manifest_entry e = {0};

	e.path = (char *)path;
	e.kind = VS_KIND_FILE;
	e.size = size;
	memset(e.hash, 'a', VS_HASH_HEX_LEN);
	assert_int_equal(0, vs_manifest_add(m, &e));
}

static void test_plan_order(void **state)
{
	const char *learned[] = {"lib/z.js", "nope", "lib/y.js"};
	const char *names[] = {NULL};
	struct vs_local_rules local = {.names = names};
	struct vs_prefetch_plan p;
	struct vs_manifest m;

	(void)state;
	vs_manifest_init(&m);
	add_file(&m, "other/big.js", 50);
	add_file(&m, "other/small.js", 5);
	add_file(&m, "src/near.js", 90);
	add_file(&m, "src/index.ts", 10);
	add_file(&m, "lib/y.js", 1);
	add_file(&m, "lib/z.js", 1);
	check_ret(0, vs_prefetch_plan_build(&p, &m, NULL, learned, 3, &local),
		  "plan");
	check_int(6, p.n, "files");
	check_int(3, p.ncritical, "critical: 2 learned, 1 glob");
	check_str("lib/z.js", vs_prefetch_item_path(&p, &p.items[0]),
		  "learned first, in order");
	check_str("lib/y.js", vs_prefetch_item_path(&p, &p.items[1]),
		  "second learned");
	check_str("src/index.ts", vs_prefetch_item_path(&p, &p.items[2]),
		  "critical glob");
	check_str("src/near.js", vs_prefetch_item_path(&p, &p.items[3]),
		  "next to a critical file");
	check_str("other/small.js", vs_prefetch_item_path(&p, &p.items[4]),
		  "then smaller first");
	check_str("other/big.js", vs_prefetch_item_path(&p, &p.items[5]),
		  "larger last");
	check_int(50, p.items[5].size, "its size");
	for (size_t i = 0; i < sizeof(p.items[5].sha); i++)
		check_int(0xaa, p.items[5].sha[i], "its hash, in bytes");
	vs_prefetch_plan_release(&p);
	vs_manifest_release(&m);
}

static void test_plan_bounds(void **state)
{
	const size_t nfiles = 50000, nl = 1000000;
	const char *names[] = {NULL};
	struct vs_local_rules local = {.names = names};
	struct vs_prefetch_plan p;
	struct vs_manifest m;
	char **learned = malloc(nl * sizeof(*learned)), path[32];
	uint64_t t0;

	(void)state;
	vs_manifest_init(&m);
	for (size_t i = 0; i < nfiles; i++) {
		snprintf(path, sizeof(path), "d%zu/f%zu.ts", i % 5000, i);
		add_file(&m, path, i);
	}
	/* every file learned, then paths not in the tree */
	for (size_t i = 0; i < nl; i++) {
		if (i < nfiles)
			snprintf(path, sizeof(path), "d%zu/f%zu.ts", i % 5000,
				 i);
		else
			snprintf(path, sizeof(path), "x/%zu", i);
		learned[i] = strdup(path);
	}
	t0 = vs_mono_ms();
	check_ret(0,
		  vs_prefetch_plan_build(
		      &p, &m, NULL, (const char *const *)learned, nl, &local),
		  "plan of %zu files, %zu learned", nfiles, nl);
	check_bool(true, vs_mono_ms() - t0 < 5000,
		   "plan built in %llu ms (not lines x files)",
		   (unsigned long long)(vs_mono_ms() - t0));
	check_int(VS_LEARN_MAX, p.ncritical,
		  "at most VS_LEARN_MAX files critical for being learned");
	check_str("d0/f0.ts", vs_prefetch_item_path(&p, &p.items[0]),
		  "learned order");
	check_str("d4095/f4095.ts",
		  vs_prefetch_item_path(&p, &p.items[VS_LEARN_MAX - 1]),
		  "the last critical one");
	vs_prefetch_plan_release(&p);
	vs_manifest_release(&m);
	for (size_t i = 0; i < nl; i++)
		free(learned[i]);
	free(learned);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cut),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_bounds),
	    cmocka_unit_test(test_index),
	    cmocka_unit_test(test_plan_order),
	    cmocka_unit_test(test_plan_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
