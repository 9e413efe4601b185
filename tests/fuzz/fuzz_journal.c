/*
 * fuzz_journal.c - the journal entry parser (vs_jentry_parse(), sync/
 * journal.c), which reads entry files back after a crash.
 *
 * Input: the bytes of one entry file. Properties, for what parses:
 *  - the format is canonical (journal.c: "the parser accepts nothing
 *    else"), so vs_jentry_format() of the entry gives the input back byte
 *    for byte;
 *  - after_op is empty or a UUID (the format's "after_op=<uuid>|(empty)";
 *    the committer hands it to PostgreSQL as a uuid).
 */
#include "vsync/journal.h"

#include <errno.h>

#include "fuzz.h"

static int uuid_ok(const char *s)
{
	for (int i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-'
			 : !((s[i] >= '0' && s[i] <= '9') ||
			     (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return s[36] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[VS_JENTRY_MAX];
	struct vs_jentry *e = malloc(sizeof(*e));
	int n;

	if (!e)
		abort();
	if (vs_jentry_parse(e, (const char *)data, size) == 0) {
		FUZZ_CHECK(!e->after_op[0] || uuid_ok(e->after_op));
		FUZZ_CHECK(uuid_ok(e->op_id));
		n = vs_jentry_format(out, sizeof(out), e);
		FUZZ_CHECK(n >= 0);
		FUZZ_CHECK((size_t)n == size);
		FUZZ_CHECK(memcmp(out, data, size) == 0);
	}
	free(e);
	return 0;
}
