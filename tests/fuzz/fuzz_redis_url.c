/*
 * fuzz_redis_url.c - the redis:// URL parser (vs_redis_url_parse(),
 * sync/redis.c), fed from the command line and the environment.
 *
 * Input: the URL (a NUL-terminated copy; an embedded NUL ends it).
 * Properties, for what parses:
 *  - the result is sane: a non-empty host of name characters (or an IPv6
 *    address), port 1 .. 65535, db >= 0, credentials without a NUL;
 *  - written back as a URL (credentials %XX-escaped, an IPv6 host in
 *    brackets) and parsed again, it gives the same result.
 * A rejected URL always comes with a reason.
 */
#include "vsync/redis.h"

#include <ctype.h>
#include <errno.h>

#include "fuzz.h"

static void escape(char *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		*out++ = '%';
		*out++ = hex[c >> 4];
		*out++ = hex[c & 15];
	}
	*out = '\0';
}

static void check_same(const struct vs_redis_url *a,
		       const struct vs_redis_url *b)
{
	FUZZ_CHECK(strcmp(a->host, b->host) == 0);
	FUZZ_CHECK(a->port == b->port && a->db == b->db);
	FUZZ_CHECK(strcmp(a->user, b->user) == 0);
	FUZZ_CHECK(strcmp(a->password, b->password) == 0);
	FUZZ_CHECK(a->has_password == b->has_password);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char user[3 * 128], password[3 * 512], url[4096];
	struct vs_redis_url u, again;
	char *s = fuzz_cstr(data, size), why[256] = "";
	int v6;

	if (vs_redis_url_parse(&u, s, why, sizeof(why)) < 0) {
		FUZZ_CHECK(why[0] != '\0');
		goto out;
	}
	FUZZ_CHECK(u.host[0] != '\0');
	v6 = strchr(u.host, ':') != NULL;
	for (size_t i = 0; u.host[i]; i++)
		FUZZ_CHECK(isalnum((unsigned char)u.host[i]) ||
			   strchr(v6 ? ":." : ".-_", u.host[i]));
	FUZZ_CHECK(u.port >= 1 && u.port <= 65535 && u.db >= 0);
	FUZZ_CHECK(!u.user[0] || u.has_password);
	escape(user, u.user);
	escape(password, u.password);
	snprintf(url, sizeof(url), "redis://%s%s%s%s%s%s%s:%d/%d",
		 u.has_password ? user : "", u.has_password ? ":" : "",
		 u.has_password ? password : "", u.has_password ? "@" : "",
		 v6 ? "[" : "", u.host, v6 ? "]" : "", u.port, u.db);
	FUZZ_CHECK(vs_redis_url_parse(&again, url, why, sizeof(why)) == 0);
	check_same(&u, &again);
out:
	free(s);
	return 0;
}
