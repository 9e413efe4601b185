/*
 * fuzz_relay_entry.c - the relay's manifest entry parser
 * (vs_relay_entry_parse(), sync/relay.c): the values of the Redis hash
 * manifest:{<project>}, which vs_redis_manifest_load() reads at a cold
 * mount, so anything that can write to Redis can put them there.
 *
 * Input: one hash value (Redis replies are NUL-terminated; so is the copy
 * handed to the parser). Properties, for what parses:
 *  - the entry keeps the rules the other parsers of the same data keep
 *    (manifest.c, change.c): mode <= 07777, a size that fits an off_t, a
 *    hash unless a directory, and for a symlink a target of 1 ..
 *    VS_PATH_MAX bytes without a NUL;
 *  - format -> parse gives the same entry back.
 */
#include "vsync/relay.h"

#include <errno.h>

#include "vsync/path.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[VS_RELAY_ENTRY_MAX + 1];
	struct vs_manifest_entry e = {0}, again = {0};
	char *value = fuzz_cstr(data, size);
	int n;

	if (vs_relay_entry_parse(&e, value, size) < 0)
		goto out;
	FUZZ_CHECK(e.mode <= 07777);
	FUZZ_CHECK(e.size <= (uint64_t)INT64_MAX);
	FUZZ_CHECK(e.version >= 0 && e.mtime_ns >= 0);
	FUZZ_CHECK(e.kind == VS_KIND_DIR ? !e.hash[0]
					 : vs_hash_hex_valid(e.hash));
	FUZZ_CHECK((e.kind == VS_KIND_SYMLINK) == (e.target != NULL));
	if (e.target) {
		size_t tlen = strlen(e.target);

		FUZZ_CHECK(tlen >= 1 && tlen <= VS_PATH_MAX);
		FUZZ_CHECK(e.target + tlen == value + size);
	}
	n = vs_relay_entry_format(out, sizeof(out), &e);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(out));
	FUZZ_CHECK(vs_relay_entry_parse(&again, out, (size_t)n) == 0);
	FUZZ_CHECK(again.kind == e.kind && again.mode == e.mode);
	FUZZ_CHECK(again.size == e.size && again.version == e.version);
	FUZZ_CHECK(again.mtime_ns == e.mtime_ns);
	FUZZ_CHECK(strcmp(again.hash, e.hash) == 0);
	FUZZ_CHECK(!e.target || strcmp(again.target, e.target) == 0);
out:
	free(value);
	return 0;
}
