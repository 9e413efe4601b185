/*
 * redis.c - the Redis backend (redis.h): one hiredis connection with
 * deadlines, the key layout, and blob get/put.
 *
 * DESIGN
 * hiredis 0.14 (Debian 12) is used in blocking mode: the connect is bounded
 * by redisConnectWithTimeout() and every later read and write by the
 * socket timeouts redisSetTimeout() sets (SO_RCVTIMEO/SO_SNDTIMEO), so no
 * call outlives the deadline given at open (or set per call with
 * vs_redis_set_timeout(), e.g. for a blocking XREAD or a large blob).
 * hiredis retries a read interrupted by a signal, so a signal never cuts a
 * reply in half.
 *
 * A hiredis context that saw an I/O error, EOF, a timeout or a protocol
 * error is unusable: it is freed at once and the next call reconnects
 * (AUTH, SELECT). An error *reply* leaves the connection as it is.
 * Failures become errno in exactly one place, redis_errno(); the message
 * is kept for vs_redis_last_error(). Passwords never reach a log line or
 * the error text.
 *
 * Not thread-safe: a struct vs_redis belongs to one thread at a time.
 */
#include "vsync/redis.h"
#include "vsync/path.h"
#include "vsync/prefetch.h"
#include "vsync/relay.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/time.h>

#include "vsync/blob.h"
#include "vsync/clock.h"
#include "vsync/log.h"
#include "vsync/metrics.h"
#include "vsync/sign.h"
#include "vsync/tree.h"
#include "vsync/banned.h"

#define REDIS_DEFAULT_PORT 6379
#define REDIS_MAX_DB	   1000000

struct vs_redis {
	redisContext *ctx; /* NULL while disconnected */
	struct vs_redis_url url;
	int timeout_ms;
	char desc[300]; /* host:port/db */
	char err[512];	/* last failure, one line */
};

/* ---- errors ------------------------------------------------------------ */

/*
 * The errno for a failure: a hiredis context error @ctx_err (REDIS_ERR_*,
 * with the system errno @sys_err seen right after the call), or, when
 * @ctx_err is 0, an error reply whose text is @reply. The one place Redis
 * failures are mapped.
 */
static int redis_errno(int ctx_err, int sys_err, const char *reply)
{
	static const struct {
		const char *prefix;
		int err;
	} replies[] = {
	    {"NOAUTH", EACCES},	    {"WRONGPASS", EACCES}, {"NOPERM", EACCES},
	    {"LOADING", EAGAIN},    {"BUSY", EAGAIN},	   {"TRYAGAIN", EAGAIN},
	    {"MASTERDOWN", EAGAIN}, {"OOM", ENOMEM},
	};
	size_t i;

	switch (ctx_err) {
	case 0:
		break;
	case REDIS_ERR_IO:
		if (sys_err == EAGAIN || sys_err == EWOULDBLOCK ||
		    sys_err == ETIMEDOUT || sys_err == EINPROGRESS)
			return ETIMEDOUT;
		return ECONNREFUSED;
	case REDIS_ERR_EOF:
	case REDIS_ERR_OTHER: /* e.g. the name does not resolve */
		return ECONNREFUSED;
	case REDIS_ERR_OOM:
		return ENOMEM;
	default: /* REDIS_ERR_PROTOCOL */
		return EIO;
	}
	for (i = 0; reply && i < sizeof(replies) / sizeof(replies[0]); i++)
		if (!strncmp(reply, replies[i].prefix,
			     strlen(replies[i].prefix)))
			return replies[i].err;
	return EIO;
}

static void redis_set_error(struct vs_redis *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void redis_set_error(struct vs_redis *r, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	for (p = r->err; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

/* ---- URL --------------------------------------------------------------- */

static int url_bad(char *why, size_t whylen, const char *what)
{
	snprintf(why, whylen, "%s", what);
	return -EINVAL;
}

/* Copy @len bytes of @s into @out (size @size), %XX-decoded. */
static int url_decode(char *out, size_t size, const char *s, size_t len)
{
	size_t i, n = 0;
	unsigned int c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= len)
				return -EINVAL;
			if (!isxdigit((unsigned char)s[i + 1]) ||
			    !isxdigit((unsigned char)s[i + 2]))
				return -EINVAL;
			sscanf(s + i + 1, "%2x", &c);
			i += 2;
		}
		if (c == 0 || n + 1 >= size)
			return -EINVAL;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/* Strict decimal in [min, max] from @len bytes of @s. */
static int url_number(const char *s, size_t len, long min, long max, int *out)
{
	long v = 0;
	size_t i;

	if (len == 0 || len > 9)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int vs_redis_url_parse(struct vs_redis_url *u, const char *url, char *why,
		       size_t whylen)
{
	const char *p, *at, *end, *colon, *slash, *host_end;
	size_t i;

	memset(u, 0, sizeof(*u));
	u->port = REDIS_DEFAULT_PORT;
	if (!url || !*url)
		return url_bad(why, whylen, "empty URL");
	if (!strncmp(url, "rediss://", 9))
		return url_bad(
		    why, whylen,
		    "rediss:// is not supported (hiredis 0.14 has no "
		    "TLS): run a stunnel client on loopback and use "
		    "redis://127.0.0.1:PORT (docs/operations.md, "
		    "Redis over TLS)");
	if (strncmp(url, "redis://", 8) != 0)
		return url_bad(why, whylen,
			       "not a redis:// URL "
			       "(redis://[[user]:password@]host[:port][/db])");
	p = url + 8;
	end = p + strlen(p);
	if (strpbrk(p, "?#"))
		return url_bad(why, whylen,
			       "query or fragment in URL not supported");
	for (i = 0; p[i]; i++)
		if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f)
			return url_bad(why, whylen,
				       "space or control character in URL");
	/* userinfo: up to the last '@' before the path */
	slash = strchr(p, '/');
	at = memrchr(p, '@', (size_t)((slash ? slash : end) - p));
	if (at) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (!colon)
			return url_bad(why, whylen,
				       "credentials without ':' (use "
				       "redis://:password@host or "
				       "redis://user:password@host)");
		if (url_decode(u->user, sizeof(u->user), p,
			       (size_t)(colon - p)) < 0 ||
		    url_decode(u->password, sizeof(u->password), colon + 1,
			       (size_t)(at - colon - 1)) < 0)
			return url_bad(why, whylen,
				       "bad %-escape or over-long user or "
				       "password in URL");
		u->has_password = 1;
		p = at + 1;
	}
	/* host: [v6] or name/v4 */
	if (*p == '[') {
		host_end = strchr(p, ']');
		if (!host_end || host_end == p + 1)
			return url_bad(why, whylen, "bad [IPv6] host in URL");
		if ((size_t)(host_end - p - 1) >= sizeof(u->host))
			return url_bad(why, whylen, "host name too long");
		memcpy(u->host, p + 1, (size_t)(host_end - p - 1));
		for (i = 0; u->host[i]; i++)
			if (!isxdigit((unsigned char)u->host[i]) &&
			    u->host[i] != ':' && u->host[i] != '.')
				return url_bad(why, whylen,
					       "bad [IPv6] host in URL");
		p = host_end + 1;
		if (*p && *p != ':' && *p != '/')
			return url_bad(why, whylen, "bad [IPv6] host in URL");
	} else {
		host_end = p + strcspn(p, ":/");
		if (host_end == p)
			return url_bad(why, whylen, "no host in URL");
		if ((size_t)(host_end - p) >= sizeof(u->host))
			return url_bad(why, whylen, "host name too long");
		for (i = 0; p + i < host_end; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '.' &&
			    p[i] != '-' && p[i] != '_')
				return url_bad(why, whylen,
					       "bad character in host name");
		memcpy(u->host, p, (size_t)(host_end - p));
		p = host_end;
	}
	if (*p == ':') {
		slash = strchr(p, '/');
		if (url_number(p + 1, (size_t)((slash ? slash : end) - p - 1),
			       1, 65535, &u->port) < 0)
			return url_bad(why, whylen,
				       "bad port in URL (1..65535)");
		p = slash ? slash : end;
	}
	if (*p == '/') {
		p++;
		if (*p && url_number(p, strlen(p), 0, REDIS_MAX_DB, &u->db) < 0)
			return url_bad(why, whylen,
				       "bad database number in URL");
	}
	return 0;
}

/* ---- connection -------------------------------------------------------- */

static void reply_free(redisReply *rep)
{
	if (rep)
		freeReplyObject(rep);
}

static struct timeval ms_to_tv(int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000,
			     .tv_usec = (ms % 1000) * 1000};

	return tv;
}

void vs_redis_disconnect(struct vs_redis *r)
{
	if (r && r->ctx) {
		redisFree(r->ctx);
		r->ctx = NULL;
	}
}

/* The connection failed (@sys_err: errno then): keep the reason, drop
 * it, and return the -errno. */
static int redis_conn_failed(struct vs_redis *r, int sys_err)
{
	int e = redis_errno(r->ctx->err ? r->ctx->err : REDIS_ERR_IO, sys_err,
			    NULL);

	if (e == ETIMEDOUT)
		redis_set_error(r, "%s: timed out after %d ms", r->desc,
				r->timeout_ms);
	else
		redis_set_error(r, "%s: %s", r->desc,
				r->ctx->errstr[0] ? r->ctx->errstr
						  : "connection lost");
	vs_redis_disconnect(r);
	return -e;
}

/* Run a command on the connected context; the reply or -errno. Drops the
 * context on any connection-level failure. */
static int redis_run(struct vs_redis *r, redisReply **reply, int argc,
		     const char **argv, const size_t *argvlen)
{
	redisReply *rep;
	int e;

	*reply = NULL;
	errno = 0;
	rep = redisCommandArgv(r->ctx, argc, argv, argvlen);
	if (!rep)
		return redis_conn_failed(r, errno);
	if (rep->type == REDIS_REPLY_ERROR) {
		e = redis_errno(0, 0, rep->str);
		redis_set_error(r, "%.*s", (int)rep->len, rep->str);
		freeReplyObject(rep);
		return -e;
	}
	*reply = rep;
	return 0;
}

static int redis_connect(struct vs_redis *r)
{
	const char *argv[3];
	redisReply *rep = NULL;
	char db[16];
	int sys_err, e, n = 0;

	errno = 0;
	r->ctx = redisConnectWithTimeout(r->url.host, r->url.port,
					 ms_to_tv(r->timeout_ms));
	sys_err = errno;
	if (!r->ctx) {
		redis_set_error(r, "%s: out of memory", r->desc);
		return -ENOMEM;
	}
	if (r->ctx->err) {
		e = redis_errno(r->ctx->err, sys_err, NULL);
		redis_set_error(r, "%s: %s", r->desc,
				e == ETIMEDOUT ? "connect timed out"
					       : r->ctx->errstr);
		vs_redis_disconnect(r);
		return -e;
	}
	if (redisSetTimeout(r->ctx, ms_to_tv(r->timeout_ms)) != REDIS_OK) {
		redis_set_error(r, "%s: cannot set timeout", r->desc);
		vs_redis_disconnect(r);
		return -EIO;
	}
	if (r->url.has_password) {
		argv[n++] = "AUTH";
		if (r->url.user[0])
			argv[n++] = r->url.user;
		argv[n++] = r->url.password;
		e = redis_run(r, &rep, n, argv, NULL);
		reply_free(rep);
		rep = NULL;
		if (e < 0) {
			/* never echo the reply: it may quote the password */
			redis_set_error(r, "%s: authentication refused",
					r->desc);
			vs_redis_disconnect(r);
			return e == -EIO ? -EACCES : e;
		}
	}
	if (r->url.db != 0) {
		snprintf(db, sizeof(db), "%d", r->url.db);
		argv[0] = "SELECT";
		argv[1] = db;
		e = redis_run(r, &rep, 2, argv, NULL);
		reply_free(rep);
		if (e < 0) {
			vs_redis_disconnect(r);
			return e;
		}
	}
	r->err[0] = '\0';
	return 0;
}

int vs_redis_ensure(struct vs_redis *r)
{
	if (r->ctx)
		return 0;
	return redis_connect(r);
}

int vs_redis_new(struct vs_redis **out, const char *url, int timeout_ms)
{
	struct vs_redis *r;
	char why[256];
	int e;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	e = vs_redis_url_parse(&r->url, url, why, sizeof(why));
	if (e < 0) {
		vs_error("invalid Redis URL: %s", why);
		free(r);
		return e;
	}
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
	snprintf(r->desc, sizeof(r->desc),
		 strchr(r->url.host, ':') ? "redis [%s]:%d/%d"
					  : "redis %s:%d/%d",
		 r->url.host, r->url.port, r->url.db);
	*out = r;
	return 0;
}

int vs_redis_open(struct vs_redis **out, const char *url, int timeout_ms)
{
	struct vs_redis *r;
	int e;

	e = vs_redis_new(&r, url, timeout_ms);
	if (e < 0)
		return e;
	e = redis_connect(r);
	if (e < 0) {
		vs_warn("cannot connect to Redis: %s", r->err);
		vs_redis_free(r);
		return e;
	}
	*out = r;
	return 0;
}

void vs_redis_free(struct vs_redis *r)
{
	if (!r)
		return;
	vs_redis_disconnect(r);
	/* the password lived here */
	memset(&r->url, 0, sizeof(r->url));
	free(r);
}

const char *vs_redis_last_error(const struct vs_redis *r)
{
	return r ? r->err : "";
}

const char *vs_redis_describe(const struct vs_redis *r)
{
	return r->desc;
}

void vs_redis_set_timeout(struct vs_redis *r, int timeout_ms)
{
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
	if (r->ctx &&
	    redisSetTimeout(r->ctx, ms_to_tv(r->timeout_ms)) != REDIS_OK)
		vs_redis_disconnect(r);
}

int vs_redis_get_timeout(const struct vs_redis *r)
{
	return r->timeout_ms;
}

int vs_redis_command(struct vs_redis *r, redisReply **reply, int argc,
		     const char **argv, const size_t *argvlen)
{
	int e;

	*reply = NULL;
	e = vs_redis_ensure(r);
	if (e < 0)
		return e;
	return redis_run(r, reply, argc, argv, argvlen);
}

/* Milliseconds left until @deadline (vs_mono_ms()), at least 0. */
static int ms_left(int64_t deadline)
{
	int64_t left = deadline - vs_mono_ms();

	return left <= 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/*
 * Send one command and wait for its reply in poll(2) on the socket and
 * @wake_fd together, so that a long blocking command (XREAD BLOCK) can be
 * given up from another thread without touching this connection: that
 * thread only makes @wake_fd readable. The socket is read only once
 * poll() says it has data (hiredis' blocking read then returns at once),
 * so the deadline is @wait_ms, not the socket timeout. A reply still
 * owed when the wait ends leaves the connection out of step: it is
 * dropped (the next call reconnects).
 */
int vs_redis_command_wake(struct vs_redis *r, redisReply **reply, int argc,
			  const char **argv, const size_t *argvlen, int wake_fd,
			  int wait_ms)
{
	int64_t deadline;
	void *rep = NULL;
	int done = 0, sys_err, e;

	*reply = NULL;
	e = vs_redis_ensure(r);
	if (e < 0)
		return e;
	deadline = vs_mono_ms() + wait_ms;
	if (redisAppendCommandArgv(r->ctx, argc, argv, argvlen) != REDIS_OK)
		goto io_error;
	while (!done) {
		errno = 0;
		if (redisBufferWrite(r->ctx, &done) != REDIS_OK)
			goto io_error;
	}
	for (;;) {
		struct pollfd pfd[2] = {{.fd = r->ctx->fd, .events = POLLIN},
					{.fd = wake_fd, .events = POLLIN}};
		int n;

		if (redisGetReplyFromReader(r->ctx, &rep) != REDIS_OK)
			goto io_error;
		if (rep)
			break;
		n = poll(pfd, wake_fd >= 0 ? 2 : 1, ms_left(deadline));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto io_error;
		if (wake_fd >= 0 && (pfd[1].revents & POLLIN)) {
			redis_set_error(r, "%s: woken up", r->desc);
			vs_redis_disconnect(r);
			return -ECANCELED;
		}
		if (n == 0) {
			redis_set_error(r, "%s: timed out after %d ms", r->desc,
					wait_ms);
			vs_redis_disconnect(r);
			return -ETIMEDOUT;
		}
		errno = 0;
		if (redisBufferRead(r->ctx) != REDIS_OK)
			goto io_error;
	}
	*reply = rep;
	if ((*reply)->type == REDIS_REPLY_ERROR) {
		e = redis_errno(0, 0, (*reply)->str);
		redis_set_error(r, "%.*s", (int)(*reply)->len, (*reply)->str);
		freeReplyObject(*reply);
		*reply = NULL;
		return -e;
	}
	return 0;
io_error:
	sys_err = errno;
	e = redis_errno(r->ctx->err ? r->ctx->err : REDIS_ERR_IO, sys_err,
			NULL);
	redis_set_error(r, "%s: %s", r->desc,
			r->ctx->errstr[0] ? r->ctx->errstr : "connection lost");
	vs_redis_disconnect(r);
	return -e;
}

/* ---- keys -------------------------------------------------------------- */

void vs_redis_key_manifest(char *out, const char *id)
{
	snprintf(out, VS_REDIS_KEY_MAX, "manifest:{%s}", id);
}

void vs_redis_key_blob(char *out, const char *id, const char *hash)
{
	snprintf(out, VS_REDIS_KEY_MAX, "blob:{%s}:%s", id, hash);
}

void vs_redis_key_piece(char *out, const char *id, const char *sha)
{
	snprintf(out, VS_REDIS_KEY_MAX, "piece:{%s}:%s", id, sha);
}

void vs_redis_key_chunks(char *out, const char *id, const char *hash)
{
	snprintf(out, VS_REDIS_KEY_MAX, "chunks:{%s}:%s", id, hash);
}

void vs_redis_key_delta(char *out, const char *id, const char *base,
			const char *hash)
{
	snprintf(out, VS_REDIS_KEY_MAX, "delta:{%s}:%s:%s", id, base, hash);
}

void vs_redis_key_events(char *out, const char *id)
{
	snprintf(out, VS_REDIS_KEY_MAX, "events:{%s}", id);
}

void vs_redis_key_cursor(char *out, const char *id)
{
	snprintf(out, VS_REDIS_KEY_MAX, "relay:{%s}:cursor", id);
}

void vs_redis_key_containers(char *out, const char *id)
{
	snprintf(out, VS_REDIS_KEY_MAX, "containers:{%s}", id);
}

/* ---- blobs ------------------------------------------------------------- */

void vs_redis_key_name(char *out, const char *name)
{
	snprintf(out, VS_REDIS_KEY_MAX, "name:{%s}", name);
}

bool vs_redis_project_name_valid(const char *name)
{
	size_t i;

	if (!isalnum((unsigned char)name[0]))
		return false;
	for (i = 1; name[i]; i++)
		if (i >= 64 ||
		    !(isalnum((unsigned char)name[i]) || name[i] == '.' ||
		      name[i] == '_' || name[i] == '-'))
			return false;
	return true;
}

/* GET @key: 0 and the string reply in *@rep (the caller frees it),
 * -ENOENT when absent, -EIO (logged in the error) for another type, or
 * the command's -errno. */
static int get_string(struct vs_redis *r, const char *key, redisReply **rep)
{
	const char *argv[2] = {"GET", key};
	int e;

	*rep = NULL;
	e = vs_redis_command(r, rep, 2, argv, NULL);
	if (e < 0)
		return e;
	if ((*rep)->type == REDIS_REPLY_STRING)
		return 0;
	if ((*rep)->type == REDIS_REPLY_NIL) {
		e = -ENOENT;
	} else {
		redis_set_error(r, "unexpected reply type %d to GET %s",
				(*rep)->type, key);
		e = -EIO;
	}
	freeReplyObject(*rep);
	*rep = NULL;
	return e;
}

/* GETRANGE @key 0 @max-1: at most @max bytes of the value (Redis cuts
 * it, so a value of any size costs no more), in a string reply *@rep
 * (the caller frees it; "" when the key is absent), or the command's
 * -errno (-EIO for another type). */
/* GETRANGE's end argument for the first @max (> 0) bytes: "-1" (to the
 * end) past what Redis takes as a number. */
static void range_end(char end[24], size_t max)
{
	if (max - 1 > (size_t)INT64_MAX)
		snprintf(end, 24, "-1");
	else
		snprintf(end, 24, "%zu", max - 1);
}

static int get_prefix(struct vs_redis *r, const char *key, size_t max,
		      redisReply **rep)
{
	char end[24];
	const char *argv[4] = {"GETRANGE", key, "0", end};
	int e;

	*rep = NULL;
	if (!max)
		return -EINVAL;
	range_end(end, max);
	e = vs_redis_command(r, rep, 4, argv, NULL);
	if (e < 0)
		return e;
	if ((*rep)->type == REDIS_REPLY_STRING)
		return 0;
	redis_set_error(r, "unexpected reply type %d to GETRANGE %s",
			(*rep)->type, key);
	freeReplyObject(*rep);
	*rep = NULL;
	return -EIO;
}

/* How much of an encoded value (blob.h) of content of at most @max_len
 * bytes to read: its largest encoding (1 + @max_len: lz4 is used only
 * when smaller than raw), and one byte more to tell a longer value. */
static size_t encoded_read_max(size_t max_len)
{
	return max_len > SIZE_MAX - 2 ? SIZE_MAX : max_len + 2;
}

/* Decode what get_prefix() read of @key into *@buf (malloc'd): -ENOENT
 * for "" (absent), -EFBIG when longer than any encoding of @max_len
 * bytes (it was cut), -EBADMSG when it does not decode; the reason kept
 * in @r's error. */
static int encoded_decode(struct vs_redis *r, const char *key,
			  const redisReply *rep, size_t max_len, uint8_t **buf,
			  size_t *len)
{
	int e;

	*buf = NULL;
	*len = 0;
	if (!rep->len)
		return -ENOENT;
	if (rep->len >= encoded_read_max(max_len) && max_len < SIZE_MAX - 2)
		e = -EFBIG;
	else
		e = vs_blob_decode(buf, len, rep->str, rep->len, max_len);
	if (e == -EBADMSG)
		redis_set_error(r, "%s does not decode", key);
	else if (e == -EFBIG)
		redis_set_error(r, "%s is larger than %zu bytes", key, max_len);
	return e;
}

/* GETRANGE @key, bounded for content of at most @max_len bytes, decoded
 * (blob.h): the body of vs_redis_blob_get. A value of any size costs no
 * more than the largest encoding of @max_len bytes. */
static int encoded_get(struct vs_redis *r, const char *key, size_t max_len,
		       uint8_t **buf, size_t *len)
{
	redisReply *rep = NULL;
	int e;

	*buf = NULL;
	*len = 0;
	e = get_prefix(r, key, encoded_read_max(max_len), &rep);
	if (e < 0)
		return e;
	e = encoded_decode(r, key, rep, max_len, buf, len);
	freeReplyObject(rep);
	return e;
}

int vs_redis_blob_get_many(struct vs_redis *r, const char *id,
			   const char *const *hashes, const size_t *max_lens,
			   size_t n, uint8_t **bufs, size_t *lens, int *res)
{
	char *keys = malloc((n ? n : 1) * VS_REDIS_KEY_MAX), end[24];
	const char *argv[4] = {"GETRANGE", NULL, "0", end};
	redisReply *rep;
	size_t got = 0;
	int e;

	for (size_t i = 0; i < n; i++) {
		bufs[i] = NULL;
		lens[i] = 0;
		res[i] = -EIO;
	}
	if (!keys)
		return -ENOMEM;
	e = vs_redis_ensure(r);
	if (e < 0)
		goto out;
	/* pipelined: every GETRANGE sent, then their replies read in turn */
	for (size_t i = 0; i < n; i++) {
		vs_redis_key_blob(keys + i * VS_REDIS_KEY_MAX, id, hashes[i]);
		argv[1] = keys + i * VS_REDIS_KEY_MAX;
		range_end(end, encoded_read_max(max_lens[i]));
		if (redisAppendCommandArgv(r->ctx, 4, argv, NULL) != REDIS_OK)
			goto io_error;
	}
	for (got = 0; got < n; got++) {
		const char *key = keys + got * VS_REDIS_KEY_MAX;
		void *v = NULL;

		errno = 0;
		if (redisGetReply(r->ctx, &v) != REDIS_OK || !v)
			goto io_error;
		rep = v;
		if (rep->type == REDIS_REPLY_STRING) {
			res[got] = encoded_decode(r, key, rep, max_lens[got],
						  &bufs[got], &lens[got]);
		} else {
			if (rep->type == REDIS_REPLY_ERROR)
				redis_set_error(r, "%.*s", (int)rep->len,
						rep->str);
			else
				redis_set_error(r,
						"unexpected reply type %d to "
						"GETRANGE %s",
						rep->type, key);
			res[got] = -EIO;
		}
		freeReplyObject(rep);
	}
	e = 0;
	goto out;
io_error:
	e = redis_conn_failed(r, errno);
	for (size_t i = 0; i < got; i++) {
		free(bufs[i]);
		bufs[i] = NULL;
		lens[i] = 0;
	}
out:
	for (size_t i = 0; i < n && e < 0; i++)
		res[i] = e;
	free(keys);
	return e;
}

int vs_redis_set_ex(struct vs_redis *r, const char *key, const void *val,
		    size_t len, int ttl_s)
{
	char ttl[16];
	const char *argv[5] = {"SET", key, val, "EX", ttl};
	size_t lens[5];
	redisReply *rep = NULL;
	int e;

	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	for (int i = 0; i < 5; i++)
		lens[i] = i == 2 ? len : strlen(argv[i]);
	e = vs_redis_command(r, &rep, ttl_s > 0 ? 5 : 3, argv, lens);
	reply_free(rep);
	return e;
}

int vs_redis_expire(struct vs_redis *r, const char *key, int ttl_s)
{
	char ttl[16];
	const char *argv[3] = {"EXPIRE", key, ttl};
	redisReply *rep = NULL;
	int e;

	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	e = vs_redis_command(r, &rep, 3, argv, NULL);
	if (e == 0)
		e = rep->type == REDIS_REPLY_INTEGER ? rep->integer == 1
						     : -EBADMSG;
	reply_free(rep);
	return e;
}

/* SET @key to @len bytes encoded (blob.h), with a TTL: the body of
 * vs_redis_blob_put and vs_redis_piece_put. */
static int encoded_put(struct vs_redis *r, const char *key, const void *buf,
		       size_t len, int ttl_s)
{
	uint8_t *enc = NULL;
	size_t enc_len = 0;
	int e;

	e = vs_blob_encode(&enc, &enc_len, buf, len, VS_BLOB_LZ4_THRESHOLD);
	if (e < 0)
		return e;
	e = vs_redis_set_ex(r, key, enc, enc_len, ttl_s);
	free(enc);
	return e;
}

int vs_redis_blob_get(struct vs_redis *r, const char *id, const char *hash,
		      size_t max_len, uint8_t **buf, size_t *len)
{
	char key[VS_REDIS_KEY_MAX];

	vs_redis_key_blob(key, id, hash);
	return encoded_get(r, key, max_len, buf, len);
}

int vs_redis_blob_put(struct vs_redis *r, const char *id, const char *hash,
		      const void *buf, size_t len, int ttl_s)
{
	char key[VS_REDIS_KEY_MAX];

	vs_redis_key_blob(key, id, hash);
	return encoded_put(r, key, buf, len, ttl_s);
}

/* ---- large content: pieces and their index ---------------------------- */

int vs_redis_piece_get(struct vs_redis *r, const char *id, const char *sha,
		       uint8_t *buf, size_t cap, size_t *len)
{
	char key[VS_REDIS_KEY_MAX];
	redisReply *rep = NULL;
	int e;

	*len = 0;
	vs_redis_key_piece(key, id, sha);
	e = get_prefix(r, key, encoded_read_max(cap), &rep);
	if (e < 0)
		return e;
	if (!rep->len) {
		freeReplyObject(rep);
		return -ENOENT;
	}
	e = vs_blob_decode_into(buf, cap, len, rep->str, rep->len);
	if (e < 0)
		redis_set_error(r, "%s does not decode into %zu bytes", key,
				cap);
	freeReplyObject(rep);
	return e;
}

int vs_redis_piece_put(struct vs_redis *r, const char *id, const char *sha,
		       const void *buf, size_t len, int ttl_s)
{
	char key[VS_REDIS_KEY_MAX];

	vs_redis_key_piece(key, id, sha);
	return encoded_put(r, key, buf, len, ttl_s);
}

int vs_redis_piece_touch(struct vs_redis *r, const char *id, const char *sha,
			 int ttl_s)
{
	char key[VS_REDIS_KEY_MAX];

	vs_redis_key_piece(key, id, sha);
	return vs_redis_expire(r, key, ttl_s);
}

int vs_redis_chunks_index_get(struct vs_redis *r, const char *id,
			      const char *hash, redisReply **rep)
{
	char key[VS_REDIS_KEY_MAX];

	vs_redis_key_chunks(key, id, hash);
	return get_string(r, key, rep);
}

int vs_redis_chunks_index_put(struct vs_redis *r, const char *id,
			      const char *hash, const void *val, size_t len,
			      int ttl_s)
{
	char key[VS_REDIS_KEY_MAX];

	vs_redis_key_chunks(key, id, hash);
	return vs_redis_set_ex(r, key, val, len, ttl_s);
}

/* EXPIRE each key in turn; 0 at the first one that is not there */
#define CHUNKS_TOUCH_SCRIPT                                                    \
	"for _, k in ipairs(KEYS) do "                                         \
	"if redis.call('EXPIRE', k, ARGV[1]) == 0 then return 0 end end "      \
	"return 1"

int vs_redis_chunks_touch(struct vs_redis *r, const char *id, const char *hash,
			  const char *shas, size_t n, int ttl_s)
{
	char sha[VS_HASH_HEX_LEN + 1];
	char nkeys[24], ttl[16], (*keys)[VS_REDIS_KEY_MAX] = NULL;
	const char **argv = NULL;
	redisReply *rep = NULL;
	size_t argc = n + 5;
	int e = -ENOMEM;

	if (n > (1u << 20))
		return -EINVAL;
	keys = malloc((n + 1) * sizeof(*keys));
	argv = malloc(argc * sizeof(*argv));
	if (!keys || !argv)
		goto out;
	snprintf(nkeys, sizeof(nkeys), "%zu", n + 1);
	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	argv[0] = "EVAL";
	argv[1] = CHUNKS_TOUCH_SCRIPT;
	argv[2] = nkeys;
	vs_redis_key_chunks(keys[0], id, hash);
	argv[3] = keys[0];
	for (size_t i = 0; i < n; i++) {
		memcpy(sha, shas + i * VS_HASH_HEX_LEN, VS_HASH_HEX_LEN);
		sha[VS_HASH_HEX_LEN] = '\0';
		vs_redis_key_piece(keys[i + 1], id, sha);
		argv[4 + i] = keys[i + 1];
	}
	argv[argc - 1] = ttl;
	e = vs_redis_command(r, &rep, (int)argc, argv, NULL);
	if (e == 0)
		e = rep->type == REDIS_REPLY_INTEGER ? rep->integer == 1
						     : -EBADMSG;
	reply_free(rep);
out:
	free(argv);
	free(keys);
	return e;
}

/* ---- deltas ------------------------------------------------------------ */

int vs_redis_delta_get(struct vs_redis *r, const char *id, const char *base,
		       const char *hash, size_t max_len, uint8_t **buf,
		       size_t *len)
{
	char key[VS_REDIS_KEY_MAX];
	redisReply *rep = NULL;
	int e;

	*buf = NULL;
	*len = 0;
	vs_redis_key_delta(key, id, base, hash);
	/* one byte over @max_len: enough to tell a longer value */
	e = get_prefix(r, key, max_len < SIZE_MAX ? max_len + 1 : max_len,
		       &rep);
	if (e < 0)
		return e;
	if (!rep->len) {
		e = -ENOENT;
	} else if (rep->len > max_len) {
		redis_set_error(r, "%s is larger than %zu bytes", key, max_len);
		e = -EFBIG;
	} else {
		*buf = malloc(rep->len);
		if (!*buf) {
			e = -ENOMEM;
		} else {
			memcpy(*buf, rep->str, rep->len);
			*len = rep->len;
		}
	}
	freeReplyObject(rep);
	return e;
}

int vs_redis_delta_put(struct vs_redis *r, const char *id, const char *base,
		       const char *hash, const void *buf, size_t len, int ttl_s)
{
	char key[VS_REDIS_KEY_MAX];

	vs_redis_key_delta(key, id, base, hash);
	return vs_redis_set_ex(r, key, buf, len, ttl_s);
}

/* ---- manifest and learned list ----------------------------------------- */

void vs_redis_key_learned(char *out, const char *id)
{
	snprintf(out, VS_REDIS_KEY_MAX, "learned:{%s}", id);
}

/* Run a command whose reply does not matter beyond success. */
static int command_discard(struct vs_redis *r, int argc, const char **argv)
{
	redisReply *rep = NULL;
	int e = vs_redis_command(r, &rep, argc, argv, NULL);

	reply_free(rep);
	return e;
}

/*
 * Check the stream entry @last (XREVRANGE's reply: the stream's last
 * entry) against the manifest's cursor @seq: it must be entry <seq>-0,
 * valid and signed by @key. This is what authenticates the snapshot's
 * seq: a forged cursor would make a mount skip or replay changes.
 */
static int manifest_anchor_check(const redisReply *last, const char *id,
				 int64_t seq, const struct vs_sign_key *key)
{
	const char *names[32], *values[32], *sig;
	size_t lengths[32], n = 0, siglen;
	const redisReply *e, *f;
	struct vs_change *c;
	char why[256];
	int64_t id_seq;
	int r;

	if (last->type != REDIS_REPLY_ARRAY || last->elements != 1)
		return -EBADMSG;
	e = last->element[0];
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    vs_change_parse_id(e->element[0]->str, &id_seq) < 0 ||
	    id_seq != seq || e->element[1]->type != REDIS_REPLY_ARRAY)
		return -EBADMSG;
	f = e->element[1];
	for (size_t i = 0; i + 1 < f->elements && n < 32; i += 2) {
		if (f->element[i]->type != REDIS_REPLY_STRING ||
		    f->element[i + 1]->type != REDIS_REPLY_STRING)
			return -EBADMSG;
		names[n] = f->element[i]->str;
		values[n] = f->element[i + 1]->str;
		lengths[n] = f->element[i + 1]->len;
		n++;
	}
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	sig = vs_sign_field(names, values, lengths, n, &siglen);
	r = vs_change_parse(c, names, values, lengths, n, why, sizeof(why));
	if (r == 0 && c->seq != seq)
		r = -EBADMSG;
	if (r == 0)
		r = vs_sign_change_verify(key, id, c, sig, siglen);
	free(c);
	return r < 0 ? -EBADMSG : 0;
}

int vs_redis_manifest_load(struct vs_redis *r, const char *id,
			   const struct vs_sign_key *verify,
			   struct vs_manifest *m)
{
	char mkey[VS_REDIS_KEY_MAX], ckey[VS_REDIS_KEY_MAX],
	    ekey[VS_REDIS_KEY_MAX];
	const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
	const char *hgetall[] = {"HGETALL", mkey}, *get[] = {"GET", ckey};
	const char *last[] = {"XREVRANGE", ekey, "+", "-", "COUNT", "1"};
	redisReply *rep = NULL, *fields, *cursor;
	const char *why = NULL;
	char *end;
	int e;

	vs_redis_key_manifest(mkey, id);
	vs_redis_key_cursor(ckey, id);
	vs_redis_key_events(ekey, id);
	if ((e = command_discard(r, 1, multi)) < 0)
		return e;
	if ((e = command_discard(r, 2, hgetall)) < 0 ||
	    (e = command_discard(r, 2, get)) < 0 ||
	    (verify && (e = command_discard(r, 6, last)) < 0) ||
	    (e = vs_redis_command(r, &rep, 1, exec, NULL)) < 0) {
		const char *discard[] = {"DISCARD"};

		command_discard(r, 1, discard);
		return e;
	}
	e = -EBADMSG;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != (verify ? 3 : 2))
		goto out;
	fields = rep->element[0];
	cursor = rep->element[1];
	if (cursor->type == REDIS_REPLY_NIL ||
	    fields->type != REDIS_REPLY_ARRAY || fields->elements == 0) {
		e = -ENOENT;
		goto out;
	}
	if (cursor->type != REDIS_REPLY_STRING)
		goto out;
	errno = 0;
	m->seq = strtoll(cursor->str, &end, 10);
	if (errno || *end || m->seq < 0)
		goto out;
	if (verify &&
	    manifest_anchor_check(rep->element[2], id, m->seq, verify) < 0) {
		why = "the stream's last entry is not a signed entry at the "
		      "cursor";
		goto out;
	}
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i],
				 *v = fields->element[i + 1];
		struct vs_manifest_entry ent = {0};
		char path[VS_PATH_MAX + 1];
		const char *sig = NULL, *plain = NULL;
		size_t plain_len = 0;

		if (k->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING || k->len > VS_PATH_MAX ||
		    vs_path_check(k->str, k->len) < 0 || k->len == 0 ||
		    vs_sign_value_split(v->str, v->len, &sig, &plain,
					&plain_len) < 0 ||
		    vs_relay_entry_parse(&ent, plain, plain_len) < 0) {
			if (verify) {
				why = "an invalid entry";
				goto out;
			}
			vs_warn("redis: skipping invalid manifest entry '%.*s' "
				"of project %s",
				(int)(k->len > 200 ? 200 : k->len), k->str, id);
			continue;
		}
		memcpy(path, k->str, k->len);
		path[k->len] = '\0';
		ent.path = path;
		if (verify &&
		    vs_sign_manifest_verify(verify, id, &ent, sig,
					    sig ? VS_SIGN_B64_LEN : 0) < 0) {
			vs_warn("redis: manifest entry '%.*s' of project %s is "
				"%s",
				(int)(k->len > 200 ? 200 : k->len), k->str, id,
				sig ? "badly signed" : "unsigned");
			why = "an entry without a valid signature";
			goto out;
		}
		if ((e = vs_manifest_add(m, &ent)) < 0)
			goto out;
	}
	snprintf(m->project_id, sizeof(m->project_id), "%s", id);
	e = 0;
out:
	reply_free(rep);
	if (e < 0 && e != -ENOENT)
		vs_manifest_release(m);
	if (why) {
		vs_metrics_redis_unverified();
		vs_warn("redis: not using the manifest of project %s: %s "
			"(reading PostgreSQL instead)",
			id, why);
		e = -EKEYREJECTED;
	} else if (e == -EBADMSG) {
		vs_warn("redis: the manifest of project %s is malformed", id);
	}
	return e;
}

void vs_redis_key_tree(char *out, const char *id)
{
	snprintf(out, VS_REDIS_KEY_MAX, "tree:{%s}", id);
}

void vs_redis_key_bundle(char *out, const char *id, const char *bundle)
{
	snprintf(out, VS_REDIS_KEY_MAX, "bundle:{%s}:%.64s", id, bundle);
}

int vs_redis_tree_load(struct vs_redis *r, const char *id,
		       const struct vs_sign_key *verify, struct vs_manifest *m,
		       char **index, size_t *index_len)
{
	char key[VS_REDIS_KEY_MAX];
	redisReply *rep = NULL;
	int e;

	vs_redis_key_tree(key, id);
	e = get_string(r, key, &rep);
	if (e < 0)
		return e;
	e = vs_tree_decode(m, index, index_len, id, rep->str, rep->len, verify);
	reply_free(rep);
	if (e == -EKEYREJECTED) {
		vs_metrics_redis_unverified();
		vs_warn("redis: not using the tree of project %s: it is not "
			"signed by the relay's key (reading the manifest "
			"instead)",
			id);
	} else if (e == -EBADMSG) {
		vs_warn("redis: the tree of project %s is malformed or "
			"corrupt (reading the manifest instead)",
			id);
	}
	return e;
}

/* KEYS: tree. ARGV: seq, value. The tree there is kept when it is at
 * @seq or later: two relays racing never move it back. */
#define TREE_PUT_SCRIPT                                                        \
	"local h = redis.call('GETRANGE', KEYS[1], 0, 40) "                    \
	"local s = tonumber(string.match(h, '^vsync%-tree 1 (%d+) ')) "        \
	"if s and s >= tonumber(ARGV[1]) then return 0 end "                   \
	"redis.call('SET', KEYS[1], ARGV[2]) return 1"

int vs_redis_tree_put(struct vs_redis *r, const char *id, int64_t seq,
		      const void *val, size_t len)
{
	char key[VS_REDIS_KEY_MAX], s[24];
	const char *argv[] = {"EVAL", TREE_PUT_SCRIPT, "1", key, s, val};
	size_t lens[6];
	redisReply *rep = NULL;
	int e;

	vs_redis_key_tree(key, id);
	snprintf(s, sizeof(s), "%" PRId64, seq);
	for (int i = 0; i < 5; i++)
		lens[i] = strlen(argv[i]);
	lens[5] = len;
	e = vs_redis_command(r, &rep, 6, argv, lens);
	if (e == 0)
		e = rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer
						     : -EBADMSG;
	reply_free(rep);
	return e;
}

int vs_redis_learned_get(struct vs_redis *r, const char *id, char **text,
			 size_t *len)
{
	char key[VS_REDIS_KEY_MAX];
	redisReply *rep = NULL;
	int e;

	*text = NULL;
	*len = 0;
	vs_redis_key_learned(key, id);
	/* one byte over the bound: vs_learned_cut() then sees that the
	 * value is longer and keeps its complete lines only */
	e = get_prefix(r, key, VS_LEARN_BYTES_MAX + 1, &rep);
	if (e < 0)
		return e;
	if (!rep->len) {
		e = -ENOENT;
	} else if (!(*text = malloc(rep->len + 1))) {
		e = -ENOMEM;
	} else {
		memcpy(*text, rep->str, rep->len);
		(*text)[rep->len] = '\0';
		*len = rep->len;
	}
	reply_free(rep);
	return e;
}

int vs_redis_learned_put(struct vs_redis *r, const char *id, const char *text,
			 size_t len)
{
	char key[VS_REDIS_KEY_MAX];

	vs_redis_key_learned(key, id);
	return vs_redis_set_ex(r, key, text, vs_learned_cut(text, len), 0);
}

int vs_redis_name_put(struct vs_redis *r, const char *name, const char *id,
		      const struct vs_sign_key *sign)
{
	char key[VS_REDIS_KEY_MAX], sig[VS_SIGN_B64_LEN + 1];
	char val[VS_SIGN_PREFIX_LEN + VS_SIGN_B64_LEN + 1 + VS_UUID_BUFSZ];
	int e;

	if (!vs_redis_project_name_valid(name) || !vs_uuid_valid(id))
		return -EINVAL;
	if (sign) {
		e = vs_sign_name(sign, name, id, sig);
		if (e < 0)
			return e;
		snprintf(val, sizeof(val), "%s%s %s", VS_SIGN_PREFIX, sig, id);
	} else {
		snprintf(val, sizeof(val), "%s", id);
	}
	vs_redis_key_name(key, name);
	return vs_redis_set_ex(r, key, val, strlen(val), 0);
}

int vs_redis_name_get(struct vs_redis *r, const char *name,
		      const struct vs_sign_key *verify, char id[VS_UUID_BUFSZ])
{
	char key[VS_REDIS_KEY_MAX];
	const char *argv[] = {"GET", key}, *sig = NULL, *plain = NULL;
	redisReply *rep = NULL;
	size_t plen = 0;
	int e;

	if (!vs_redis_project_name_valid(name))
		return -EINVAL;
	vs_redis_key_name(key, name);
	e = vs_redis_command(r, &rep, 2, argv, NULL);
	if (e < 0)
		return e;
	if (rep->type != REDIS_REPLY_STRING) {
		e = -ENOENT;
		goto out;
	}
	e = vs_sign_value_split(rep->str, rep->len, &sig, &plain, &plen);
	if (e < 0 || plen != VS_UUID_LEN) {
		vs_warn("redis: the id of project '%s' is malformed", name);
		e = -EBADMSG;
		goto out;
	}
	memcpy(id, plain, VS_UUID_LEN);
	id[VS_UUID_LEN] = '\0';
	if (!vs_uuid_valid(id)) {
		vs_warn("redis: the id of project '%s' is malformed", name);
		e = -EBADMSG;
		goto out;
	}
	if (verify && vs_sign_name_verify(verify, name, id, sig,
					  sig ? VS_SIGN_B64_LEN : 0) < 0) {
		vs_metrics_redis_unverified();
		vs_warn("redis: not using the id of project '%s': %s "
			"(reading PostgreSQL instead)",
			name, sig ? "badly signed" : "unsigned");
		e = -EKEYREJECTED;
		goto out;
	}
	e = 0;
out:
	reply_free(rep);
	return e;
}
