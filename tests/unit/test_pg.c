/*
 * test_pg.c - unit tests of the pure parts of sync/pg.c (include/vsync/pg.h):
 * how a PostgreSQL failure is turned into an errno and judged.
 *
 * Covers:
 *  - vs_pg_errno: vsync's own SQLSTATEs (P0002..P0008), a unique violation,
 *    whole classes (22, 23, 40, 54, 08, 28, 53), a stale base (P0004) being
 *    the only ESTALE, and EIO for NULL, "" and anything unknown;
 *  - vs_pg_verdict: no answer is retried; connection, credentials, schema,
 *    resources, serialization failures and deadlocks are retried; data,
 *    constraint, limit and vsync's own refusals are for good (among them
 *    54000, an index entry too large, and 23514, a CHECK); P0004 alone is a
 *    conflict.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/pg.h"

#include "unit_check.h"

static void test_errno(void **state)
{
	static const struct {
		const char *state;
		int err;
	} cases[] = {
	    {"P0002", ENOENT},	     {"P0003", EEXIST},
	    {"23505", EEXIST},	     {"P0004", ESTALE},
	    {"P0005", ENOTDIR},	     {"P0006", EISDIR},
	    {"P0007", ENOTEMPTY},    {"P0008", ENAMETOOLONG},
	    {"22023", EINVAL},	     {"22021", EINVAL},
	    {"23514", EINVAL},	     {"40001", EAGAIN},
	    {"40P01", EAGAIN},	     {"54000", E2BIG},
	    {"57014", ETIMEDOUT},    {"08006", ECONNREFUSED},
	    {"57P01", ECONNREFUSED}, {"28P01", EACCES},
	    {"42501", EACCES},	     {"53100", EAGAIN},
	    {"55P03", EAGAIN},	     {"XX000", EIO},
	    {"42883", EIO},	     {"", EIO},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_int(cases[i].err, vs_pg_errno(cases[i].state),
			  "vs_pg_errno(\"%s\")", cases[i].state);
	check_int(EIO, vs_pg_errno(NULL), "vs_pg_errno(NULL)");
}

static void test_verdict(void **state)
{
	static const struct {
		const char *state;
		enum vs_pg_verdict v;
	} cases[] = {
	    /* no answer, or the server's side: later */
	    {"", VS_PG_RETRY},
	    {"08006", VS_PG_RETRY},
	    {"57P01", VS_PG_RETRY},
	    {"57014", VS_PG_RETRY},
	    {"28P01", VS_PG_RETRY},
	    {"42501", VS_PG_RETRY},
	    {"42883", VS_PG_RETRY}, /* a schema not initialised yet */
	    {"40001", VS_PG_RETRY},
	    {"40P01", VS_PG_RETRY},
	    {"53100", VS_PG_RETRY},
	    {"55P03", VS_PG_RETRY},
	    {"58030", VS_PG_RETRY},
	    {"XX000", VS_PG_RETRY},
	    /* what was sent: for good */
	    {"54000", VS_PG_REFUSED},
	    {"23514", VS_PG_REFUSED},
	    {"23505", VS_PG_REFUSED},
	    {"22023", VS_PG_REFUSED},
	    {"22P05", VS_PG_REFUSED},
	    {"21000", VS_PG_REFUSED},
	    {"0A000", VS_PG_REFUSED},
	    {"P0001", VS_PG_REFUSED},
	    {"P0002", VS_PG_REFUSED},
	    {"P0008", VS_PG_REFUSED},
	    /* a stale base: resolve */
	    {"P0004", VS_PG_CONFLICT},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_int(cases[i].v, vs_pg_verdict(cases[i].state),
			  "vs_pg_verdict(\"%s\")", cases[i].state);
	check_int(VS_PG_RETRY, vs_pg_verdict(NULL), "vs_pg_verdict(NULL)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_errno),
	    cmocka_unit_test(test_verdict),
	};

	return cmocka_run_group_tests_name("pg", tests, NULL, NULL);
}
