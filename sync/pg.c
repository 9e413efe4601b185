/*
 * pg.c - the PostgreSQL backend: one libpq connection with deadlines
 * (see include/vsync/pg.h).
 *
 * DESIGN
 *
 * libpq is only used in its non-blocking form: the connection is made with
 * PQconnectStartParams/PQconnectPoll and every statement is sent with
 * PQsendQuery[Params] and waited for with poll(2), so no call outlives its
 * deadline (the timeout given at open, counted per call). When a deadline
 * passes in the middle of a query the query is cancelled (PQcancel) from a
 * detached thread, waited for PG_CANCEL_WAIT_MS at most (pg_abandon:
 * PQcancel itself has no deadline), the connection is dropped and
 * -ETIMEDOUT returned; the next call reconnects.
 *
 * A connection dropped while a transaction was open loses that
 * transaction. So that a caller cannot go on issuing the rest of its
 * transaction in autocommit mode on the new connection, such a loss is
 * remembered (txn_lost) and every call fails with -EIO until the caller
 * acknowledges it with vs_pg_rollback().
 *
 * Server errors become errno in exactly one place, vs_pg_errno(). The
 * primary message of the last failure is kept for vs_pg_last_error().
 *
 * Not thread-safe: a struct vs_pg belongs to one thread at a time (the
 * cancel thread owns only its PGcancel, never the struct vs_pg).
 */
#include "vsync/clock.h"
#include "vsync/pg.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "vsync/hash.h"
#include "vsync/log.h"
#include "vsync/path.h"
#include "vsync/util.h"
#include "vsync/banned.h"

struct vs_pg {
	PGconn *conn;	/* NULL while disconnected */
	char *conninfo; /* owned; NULL = libpq defaults */
	int timeout_ms; /* per call */
	bool in_txn;	/* server said a transaction is open */
	bool txn_lost;	/* the connection died inside a transaction */
	char err[512];	/* last failure, one line */
	char state[6];	/* its SQLSTATE; "" for a client-side failure */
};

/* ---- errors ---------------------------------------------------------- */

int vs_pg_errno(const char *sqlstate)
{
	static const struct {
		const char *state; /* a full SQLSTATE, or a 2-char class */
		int err;
	} map[] = {
	    {"P0002", ENOENT},	  {"P0003", EEXIST},	   {"23505", EEXIST},
	    {"P0004", ESTALE},	  {"40", EAGAIN},	   {"22", EINVAL},
	    {"23", EINVAL},	  {"P0005", ENOTDIR},	   {"P0006", EISDIR},
	    {"P0007", ENOTEMPTY}, {"P0008", ENAMETOOLONG}, {"54", E2BIG},
	    {"57014", ETIMEDOUT}, {"42501", EACCES},	   {"28", EACCES},
	    {"08", ECONNREFUSED}, {"57P", ECONNREFUSED},   {"53", EAGAIN},
	    {"55P03", EAGAIN},
	};
	size_t i;

	if (!sqlstate || !*sqlstate)
		return EIO;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strncmp(sqlstate, map[i].state, strlen(map[i].state)))
			return map[i].err;
	return EIO;
}

enum vs_pg_verdict vs_pg_verdict(const char *sqlstate)
{
	/* classes whose errors depend only on what was sent */
	static const char *const refused[] = {"21", "22", "23", "2F",
					      "0A", "54", "P0"};
	size_t i;

	if (!sqlstate || !*sqlstate)
		return VS_PG_RETRY; /* no answer: connection, deadline */
	if (!strcmp(sqlstate, "P0004"))
		return VS_PG_CONFLICT;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (!strncmp(sqlstate, refused[i], 2))
			return VS_PG_REFUSED;
	/* the server, the connection, the credentials, the schema (08, 28,
	 * 40, 42, 53, 55, 57, 58, XX ...): may work later, unchanged */
	return VS_PG_RETRY;
}

/* Format an error into @err (@size bytes), first line only. */
static void err_set(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_vset(char *err, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void err_vset(char *err, size_t size, const char *fmt, va_list ap)
{
	char *nl;

	if (!size)
		return;
	vsnprintf(err, size, fmt, ap);
	nl = strchr(err, '\n');
	if (nl)
		*nl = '\0';
}

static void err_set(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, size, fmt, ap);
	va_end(ap);
}

/* Keep @msg (first line only) as the last error, a client-side one. */
static void pg_set_error(struct vs_pg *pg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pg_set_error(struct vs_pg *pg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(pg->err, sizeof(pg->err), fmt, ap);
	va_end(ap);
	pg->state[0] = '\0';
}

/* Record the failure of @res (NULL: a client-side failure on the
 * connection) and return it as -errno. */
static int pg_fail_result(struct vs_pg *pg, const PGresult *res)
{
	const char *state = NULL, *msg = NULL;

	if (res) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		if (!msg)
			msg = PQresultErrorMessage(res);
	}
	if (!msg || !*msg)
		msg = pg->conn ? PQerrorMessage(pg->conn) : "not connected";
	pg_set_error(pg, "%s", msg);
	if (!state && (!pg->conn || PQstatus(pg->conn) == CONNECTION_BAD))
		state = "08006"; /* connection failure */
	if (state)
		snprintf(pg->state, sizeof(pg->state), "%s", state);
	return -vs_pg_errno(state);
}

/* ---- deadlines --------------------------------------------------------- */

/* Wait until the socket is readable (and writable if @want_write) or the
 * deadline passes. 0, -ETIMEDOUT or -errno. */
static int pg_wait(PGconn *conn, bool want_read, bool want_write,
		   int64_t deadline)
{
	struct pollfd p = {.fd = PQsocket(conn)};
	int64_t left;
	int r;

	if (p.fd < 0)
		return -EBADF;
	p.events =
	    (short)((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0));
	for (;;) {
		left = deadline - vs_mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* ---- connection -------------------------------------------------------- */

/* Close the connection; remember a transaction it takes with it. */
static void pg_drop(struct vs_pg *pg)
{
	if (!pg->conn)
		return;
	if (pg->in_txn)
		pg->txn_lost = true;
	pg->in_txn = false;
	PQfinish(pg->conn);
	pg->conn = NULL;
}

/* Server notices ("relation already exists, skipping" ...) are debug
 * lines, not stderr chatter. */
static void pg_notice(void *arg, const char *msg)
{
	(void)arg;
	vs_debug("postgres: %s", msg);
}

/*
 * libpq could not trust the server (sslmode=verify-ca/verify-full: an
 * unknown CA, another host name, no root certificate; or TLS required and
 * not offered): a configuration error, refused like bad credentials, not
 * "unreachable" (a mount must not fall back to its cached manifest).
 */
static bool pg_tls_refused(const char *err)
{
	return strstr(err, "certificate verify failed") ||
	       strstr(err, "does not match host name") ||
	       strstr(err, "root certificate file") ||
	       strstr(err, "server does not support SSL");
}

int vs_pg_connect_conn(PGconn **out, const char *conninfo, const char *app_name,
		       int timeout_ms, char *err, size_t errlen)
{
	/* application_name before dbname: a conninfo that names one wins */
	const char *keys[] = {"application_name", "dbname", NULL};
	const char *vals[] = {app_name, conninfo ? conninfo : "", NULL};
	int64_t deadline = vs_mono_ms() + timeout_ms;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *conn;
	int r = 0;

	*out = NULL;
	conn = PQconnectStartParams(keys, vals, 1);
	if (!conn) {
		err_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (PQstatus(conn) == CONNECTION_BAD)
		goto failed;
	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED)
			goto failed;
		r = pg_wait(conn, st == PGRES_POLLING_READING,
			    st == PGRES_POLLING_WRITING, deadline);
		if (r == -ETIMEDOUT) {
			err_set(err, errlen, "connect timed out after %d ms",
				timeout_ms);
			goto out;
		}
		if (r < 0) {
			err_set(err, errlen, "poll: %s", strerror(-r));
			goto out;
		}
		st = PQconnectPoll(conn);
	}
	if (PQsetnonblocking(conn, 1) != 0)
		goto failed;
	*out = conn;
	return 0;
failed:
	err_set(err, errlen, "%s", PQerrorMessage(conn));
	if (PQconnectionNeedsPassword(conn) ||
	    strstr(PQerrorMessage(conn), "authentication failed") ||
	    pg_tls_refused(PQerrorMessage(conn)))
		r = -vs_pg_errno("28000");
	else
		r = -vs_pg_errno("08001");
out:
	PQfinish(conn);
	return r;
}

static int pg_connect(struct vs_pg *pg)
{
	int r;

	r = vs_pg_connect_conn(&pg->conn, pg->conninfo, "vsync", pg->timeout_ms,
			       pg->err, sizeof(pg->err));
	if (r == 0)
		PQsetNoticeProcessor(pg->conn, pg_notice, NULL);
	return r;
}

int vs_pg_new(struct vs_pg **out, const char *conninfo, int timeout_ms)
{
	struct vs_pg *pg;

	*out = NULL;
	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	pg->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	if (conninfo && *conninfo) {
		pg->conninfo = strdup(conninfo);
		if (!pg->conninfo) {
			free(pg);
			return -ENOMEM;
		}
	}
	*out = pg;
	return 0;
}

int vs_pg_open(struct vs_pg **out, const char *conninfo, int timeout_ms)
{
	struct vs_pg *pg;
	int r;

	r = vs_pg_new(&pg, conninfo, timeout_ms);
	if (r < 0)
		return r;
	r = pg_connect(pg);
	if (r < 0) {
		vs_warn("cannot connect to PostgreSQL: %s", pg->err);
		vs_pg_free(pg);
		return r;
	}
	*out = pg;
	return 0;
}

void vs_pg_free(struct vs_pg *pg)
{
	if (!pg)
		return;
	if (pg->conn)
		PQfinish(pg->conn);
	free(pg->conninfo);
	free(pg);
}

void vs_pg_set_timeout(struct vs_pg *pg, int timeout_ms)
{
	pg->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
}

int vs_pg_get_timeout(const struct vs_pg *pg)
{
	return pg->timeout_ms;
}

const char *vs_pg_last_error(const struct vs_pg *pg)
{
	return pg ? pg->err : "";
}

const char *vs_pg_last_state(const struct vs_pg *pg)
{
	return pg ? pg->state : "";
}

int vs_pg_ensure(struct vs_pg *pg)
{
	if (pg->txn_lost) {
		pg_set_error(pg,
			     "the connection was lost inside a transaction");
		return -EIO;
	}
	if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK)
		return 0;
	pg_drop(pg);
	return pg_connect(pg);
}

/* ---- queries ----------------------------------------------------------- */

/* How long the caller of a query past its deadline waits for the cancel
 * to be delivered (pg_abandon) */
#define PG_CANCEL_WAIT_MS 1000

/* A cancel request on its way (pg_abandon): shared by the caller and the
 * thread that sends it; the last to let go frees it. */
struct pg_cancel {
	PGcancel *c;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool done;	     /* sent (or failed) */
	int refs;
};

static void pg_cancel_put(struct pg_cancel *pc)
{
	bool last;

	pthread_mutex_lock(&pc->lock);
	last = --pc->refs == 0;
	pthread_mutex_unlock(&pc->lock);
	if (!last)
		return;
	PQfreeCancel(pc->c);
	pthread_cond_destroy(&pc->cond);
	pthread_mutex_destroy(&pc->lock);
	free(pc);
}

/* Send cancel request @arg (a struct pg_cancel): the body of a detached
 * thread, as PQcancel has no deadline. */
static void *pg_cancel_main(void *arg)
{
	struct pg_cancel *pc = arg;
	char buf[256];

	if (!PQcancel(pc->c, buf, sizeof(buf)))
		vs_debug("cannot cancel query: %s", buf);
	pthread_mutex_lock(&pc->lock);
	pc->done = true;
	pthread_cond_signal(&pc->cond);
	pthread_mutex_unlock(&pc->lock);
	pg_cancel_put(pc);
	return NULL;
}

/* A cancel request for @pg's running query, or NULL. */
static struct pg_cancel *pg_cancel_new(struct vs_pg *pg)
{
	struct pg_cancel *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return NULL;
	pc->c = PQgetCancel(pg->conn);
	if (!pc->c || vs_cond_init_mono(&pc->cond) != 0) {
		PQfreeCancel(pc->c);
		free(pc);
		return NULL;
	}
	pthread_mutex_init(&pc->lock, NULL);
	pc->refs = 2; /* the caller's and the thread's */
	return pc;
}

/*
 * Cancel the running query (best effort) and drop the connection.
 * The cancel is a new connection to the server that PQcancel waits on
 * with no deadline (a frozen server, dropped packets: for ever), so it is
 * sent by a detached thread (taking no signal: all blocked), and the
 * caller waits for it PG_CANCEL_WAIT_MS at most: long enough that a
 * server that answers has the query cancelled before the caller goes on
 * (or exits: vsyncctl's timed-out write must not commit later), never
 * for ever.
 */
static void pg_abandon(struct vs_pg *pg)
{
	struct pg_cancel *pc = pg_cancel_new(pg);
	struct timespec ts;
	sigset_t all, old;
	pthread_attr_t a;
	pthread_t t;
	int r = ENOMEM;

	if (pc && pthread_attr_init(&a) == 0) {
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		r = pthread_create(&t, &a, pg_cancel_main, pc);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&a);
	}
	if (pc && r) {
		vs_debug("cannot cancel query: %s", strerror(r));
		pc->refs = 1; /* no thread */
	} else if (pc) {
		vs_mono_ts(&ts, vs_mono_ms() + PG_CANCEL_WAIT_MS);
		pthread_mutex_lock(&pc->lock);
		while (!pc->done && pthread_cond_timedwait(&pc->cond, &pc->lock,
							   &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&pc->lock);
	}
	if (pc)
		pg_cancel_put(pc);
	pg_drop(pg);
}

/* Flush the query and wait until its results are all in. */
static int pg_wait_results(struct vs_pg *pg, int64_t deadline)
{
	int r;

	for (;;) {
		r = PQflush(pg->conn);
		if (r < 0)
			return pg_fail_result(pg, NULL);
		if (r == 0)
			break;
		r = pg_wait(pg->conn, true, true, deadline);
		if (r < 0)
			return r;
		if (!PQconsumeInput(pg->conn))
			return pg_fail_result(pg, NULL);
	}
	while (PQisBusy(pg->conn)) {
		r = pg_wait(pg->conn, true, false, deadline);
		if (r < 0)
			return r;
		if (!PQconsumeInput(pg->conn))
			return pg_fail_result(pg, NULL);
	}
	return 0;
}

/*
 * Collect the results of the statement(s) just sent. Keeps the last
 * result in *res_out (if asked) and returns the first error as -errno.
 */
static int pg_collect(struct vs_pg *pg, PGresult **res_out, int64_t deadline)
{
	PGresult *res, *last = NULL;
	int r = 0, err = 0;

	for (;;) {
		r = pg_wait_results(pg, deadline);
		if (r < 0)
			break;
		res = PQgetResult(pg->conn);
		if (!res)
			break;
		switch (PQresultStatus(res)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
		case PGRES_EMPTY_QUERY:
			break;
		default:
			if (!err)
				err = pg_fail_result(pg, res);
		}
		PQclear(last);
		last = res;
	}
	if (r == -ETIMEDOUT) {
		pg_set_error(pg, "timed out after %d ms", pg->timeout_ms);
		pg_abandon(pg);
	} else if (r < 0) {
		pg_drop(pg);
	} else {
		pg->in_txn = PQtransactionStatus(pg->conn) != PQTRANS_IDLE;
		if (PQstatus(pg->conn) == CONNECTION_BAD)
			pg_drop(pg);
	}
	if (r < 0 || err) {
		PQclear(last);
		return r < 0 ? r : err;
	}
	if (res_out)
		*res_out = last;
	else
		PQclear(last);
	return 0;
}

int vs_pg_exec(struct vs_pg *pg, PGresult **res_out, const char *sql,
	       int nparams, const char *const *values, const int *lengths,
	       const int *formats, int binary_result)
{
	int64_t deadline = vs_mono_ms() + pg->timeout_ms;
	int r;

	if (res_out)
		*res_out = NULL;
	pg->state[0] = '\0';
	r = vs_pg_ensure(pg);
	if (r < 0)
		return r;
	if (!PQsendQueryParams(pg->conn, sql, nparams, NULL, values, lengths,
			       formats, binary_result)) {
		r = pg_fail_result(pg, NULL);
		if (PQstatus(pg->conn) == CONNECTION_BAD)
			pg_drop(pg);
		return r;
	}
	return pg_collect(pg, res_out, deadline);
}

int vs_pg_cmd(struct vs_pg *pg, const char *sql)
{
	int64_t deadline = vs_mono_ms() + pg->timeout_ms;
	int r;

	pg->state[0] = '\0';
	r = vs_pg_ensure(pg);
	if (r < 0)
		return r;
	if (!PQsendQuery(pg->conn, sql)) {
		r = pg_fail_result(pg, NULL);
		if (PQstatus(pg->conn) == CONNECTION_BAD)
			pg_drop(pg);
		return r;
	}
	return pg_collect(pg, NULL, deadline);
}

int vs_pg_begin(struct vs_pg *pg, const char *mode)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "BEGIN%s%s", mode ? " " : "",
		 mode ? mode : "");
	return vs_pg_cmd(pg, sql);
}

int vs_pg_commit(struct vs_pg *pg)
{
	return vs_pg_cmd(pg, "COMMIT");
}

void vs_pg_rollback(struct vs_pg *pg)
{
	pg->txn_lost = false;
	if (pg->conn && pg->in_txn && vs_pg_cmd(pg, "ROLLBACK") < 0)
		pg_drop(pg);
	pg->txn_lost = false;
}

bool vs_pg_txn_failed(const struct vs_pg *pg)
{
	return !pg->conn || pg->txn_lost ||
	       PQtransactionStatus(pg->conn) != PQTRANS_INTRANS;
}

/* ---- vsync functions --------------------------------------------------- */

int vs_pg_listen(struct vs_pg *pg, const char *channel)
{
	char sql[128];

	for (const char *c = channel; *c; c++)
		if (!(*c == '_' || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9')))
			return -EINVAL;
	snprintf(sql, sizeof(sql), "LISTEN %s", channel);
	return vs_pg_cmd(pg, sql);
}

int vs_pg_notify_parse(const char *payload, char id[VS_UUID_BUFSZ],
		       int64_t *seq)
{
	json_t *v = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
	json_t *pid = json_object_get(v, "project_id");
	json_t *s = json_object_get(v, "seq");
	int r = -EBADMSG;

	*seq = 0;
	if (!json_is_object(v) || !json_is_string(pid) ||
	    json_string_length(pid) != VS_UUID_LEN ||
	    !vs_uuid_valid(json_string_value(pid)) ||
	    json_object_size(v) != (s ? 2u : 1u))
		goto out;
	if (s) {
		if (!json_is_integer(s) || json_integer_value(s) < 1)
			goto out;
		*seq = (int64_t)json_integer_value(s);
	}
	memcpy(id, json_string_value(pid), VS_UUID_BUFSZ);
	r = 0;
out:
	json_decref(v);
	return r;
}

/* Drain the notifications libpq has read; return how many are for
 * @project_id (all of them if NULL). */
static int pg_drain_notifies(struct vs_pg *pg, const char *project_id)
{
	char id[VS_UUID_BUFSZ];
	PGnotify *n;
	int64_t seq;
	int count = 0;

	while ((n = PQnotifies(pg->conn))) {
		if (!project_id ||
		    (vs_pg_notify_parse(n->extra, id, &seq) == 0 &&
		     strcmp(id, project_id) == 0))
			count++;
		PQfreemem(n);
	}
	return count;
}

int vs_pg_wait_notify(struct vs_pg *pg, const char *project_id, int timeout_ms)
{
	int64_t deadline = vs_mono_ms() + timeout_ms;
	int count, r;

	if (!pg->conn)
		return -ECONNRESET;
	count = pg_drain_notifies(pg, project_id);
	while (count == 0) {
		r = pg_wait(pg->conn, true, false, deadline);
		if (r == -ETIMEDOUT)
			return 0;
		if (r < 0 || !PQconsumeInput(pg->conn) ||
		    PQstatus(pg->conn) == CONNECTION_BAD) {
			pg_set_error(pg, "connection lost: %s",
				     PQerrorMessage(pg->conn));
			pg_drop(pg);
			return -ECONNRESET;
		}
		count = pg_drain_notifies(pg, project_id);
	}
	return count;
}

/* Append " key='value'" to @s (size @size, used @len) with ' and \
 * escaped. -ENOMEM when it does not fit. */
static int conninfo_add(char *s, size_t size, size_t *len, const char *key,
			const char *value)
{
	size_t n = *len;
	int w = snprintf(s + n, size - n, "%s%s='", n ? " " : "", key);

	if (w < 0 || (size_t)w >= size - n)
		return -ENOMEM;
	n += (size_t)w;
	for (const char *p = value; *p; p++) {
		if (n + 3 >= size)
			return -ENOMEM;
		if (*p == '\'' || *p == '\\')
			s[n++] = '\\';
		s[n++] = *p;
	}
	if (n + 2 > size)
		return -ENOMEM;
	s[n++] = '\'';
	s[n] = '\0';
	*len = n;
	return 0;
}

int vs_pg_conninfo_as(struct vs_pg *pg, const char *user, const char *password,
		      char **out)
{
	/* where the server is and how it is trusted; not who we are */
	static const char *const keep[] = {"host",
					   "hostaddr",
					   "port",
					   "dbname",
					   "sslmode",
					   "sslrootcert",
					   "sslcrl",
					   "sslcrldir",
					   "sslsni",
					   "requirepeer",
					   "ssl_min_protocol_version",
					   "gssencmode",
					   "target_session_attrs"};
	PQconninfoOption *opts = NULL;
	size_t size = 4096, len = 0;
	char *s = NULL;
	int r = 0;

	*out = NULL;
	if (!pg->conn)
		return -ENOTCONN;
	opts = PQconninfo(pg->conn);
	s = malloc(size);
	if (!opts || !s) {
		r = -ENOMEM;
		goto out;
	}
	s[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword && r == 0; o++) {
		/* a value that is the default need not be said */
		if (!o->val || !*o->val ||
		    (o->compiled && !strcmp(o->val, o->compiled)))
			continue;
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
			if (!strcmp(o->keyword, keep[i]))
				r = conninfo_add(s, size, &len, o->keyword,
						 o->val);
	}
	r = r ?: conninfo_add(s, size, &len, "user", user);
	r = r ?: conninfo_add(s, size, &len, "password", password);
	if (r == 0) {
		*out = s;
		s = NULL;
	}
out:
	PQconninfoFree(opts);
	free(s);
	return r;
}

int vs_pg_project_resolve(struct vs_pg *pg, const char *name_or_id,
			  char id_out[VS_UUID_BUFSZ])
{
	const char *v[1] = {name_or_id};
	PGresult *res = NULL;
	int r;

	r = vs_pg_exec(pg, &res, "SELECT vsync_project_id($1)", 1, v, NULL,
		       NULL, 0);
	if (r < 0) {
		if (r != -ENOENT)
			vs_warn("cannot resolve project '%s': %s", name_or_id,
				pg->err);
		return r;
	}
	if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != VS_UUID_LEN) {
		pg_set_error(pg, "unexpected answer to vsync_project_id");
		r = -EIO;
		goto out;
	}
	memcpy(id_out, PQgetvalue(res, 0, 0), VS_UUID_LEN);
	id_out[VS_UUID_LEN] = '\0';
out:
	PQclear(res);
	return r;
}

/* Fill @e from row @i of a vsync_manifest() result (text format).
 * 0, or -EINVAL for a row that must be skipped (a warning is logged). */
static int manifest_row(struct vs_manifest_entry *e, PGresult *res, int i)
{
	const char *path = PQgetvalue(res, i, 0);
	const char *hash = PQgetvalue(res, i, 4);
	int plen = PQgetlength(res, i, 0);

	memset(e, 0, sizeof(*e));
	if (vs_path_check(path, (size_t)plen) < 0 || plen == 0) {
		vs_warn("skipping manifest row with invalid path '%.200s'",
			path);
		return -EINVAL;
	}
	e->path = (char *)path;
	if (vs_kind_parse(PQgetvalue(res, i, 1), &e->kind) < 0) {
		vs_warn("skipping '%s': unknown kind '%s'", path,
			PQgetvalue(res, i, 1));
		return -EINVAL;
	}
	e->mode = (uint32_t)strtoul(PQgetvalue(res, i, 2), NULL, 10) & 07777;
	e->size = strtoull(PQgetvalue(res, i, 3), NULL, 10);
	e->version = strtoll(PQgetvalue(res, i, 5), NULL, 10);
	e->mtime_ns = strtoll(PQgetvalue(res, i, 6), NULL, 10);
	if (e->kind == VS_KIND_DIR)
		return 0;
	if (!vs_hash_hex_valid(hash)) {
		vs_warn("skipping '%s': invalid content hash '%.80s'", path,
			hash);
		return -EINVAL;
	}
	memcpy(e->hash, hash, VS_HASH_HEX_LEN + 1);
	if (e->kind == VS_KIND_SYMLINK) {
		if (PQgetisnull(res, i, 7) || PQgetlength(res, i, 7) == 0) {
			vs_warn("skipping symlink '%s': no target", path);
			return -EINVAL;
		}
		e->target = PQgetvalue(res, i, 7);
	}
	return 0;
}

static int manifest_fill(struct vs_manifest *m, PGresult *res)
{
	struct vs_manifest_entry e;
	int i, r;

	if (PQnfields(res) != 8)
		return -EPROTO;
	for (i = 0; i < PQntuples(res); i++) {
		if (manifest_row(&e, res, i) < 0)
			continue;
		r = vs_manifest_add(m, &e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* vs_pg_manifest_load() (@seq < 0: the live tree) and _at(). */
static int manifest_load(struct vs_pg *pg, const char *id, int64_t seq,
			 struct vs_manifest *m)
{
	char seqs[24];
	const char *v[2] = {id, seqs};
	PGresult *res = NULL;
	int64_t head;
	int r;

	snprintf(seqs, sizeof(seqs), "%" PRId64, seq);
	r = vs_pg_begin(pg, "ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (r < 0)
		goto out;
	r = vs_pg_exec(pg, &res, "SELECT vsync_project_seq($1)", 1, v, NULL,
		       NULL, 0);
	if (r < 0)
		goto out;
	head = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	if (seq > head) {
		pg_set_error(
		    pg, "no change %" PRId64 " yet (the last is %" PRId64 ")",
		    seq, head);
		r = -ERANGE;
		goto out;
	}
	m->seq = seq < 0 ? head : seq;
	if (seq < 0)
		r = vs_pg_exec(pg, &res,
			       "SELECT path, kind, mode, size, content_hash,"
			       " version, mtime_ns, link_target"
			       " FROM vsync_manifest($1)",
			       1, v, NULL, NULL, 0);
	else
		r = vs_pg_exec(pg, &res,
			       "SELECT path, kind, mode, size, content_hash,"
			       " version, mtime_ns, link_target"
			       " FROM vsync_manifest_at($1, $2::bigint)",
			       2, v, NULL, NULL, 0);
	if (r < 0)
		goto out;
	r = manifest_fill(m, res);
	if (r == -EPROTO)
		pg_set_error(pg, "unexpected columns from vsync_manifest");
	if (r < 0)
		goto out;
	r = vs_pg_commit(pg);
out:
	PQclear(res);
	if (r < 0) {
		vs_warn("cannot load manifest of project '%s': %s", id,
			r == -ENOMEM ? "out of memory" : pg->err);
		vs_pg_rollback(pg);
		vs_manifest_release(m);
		vs_manifest_init(m);
		return r;
	}
	snprintf(m->project_id, sizeof(m->project_id), "%s", id);
	return 0;
}

int vs_pg_manifest_load(struct vs_pg *pg, const char *id, struct vs_manifest *m)
{
	return manifest_load(pg, id, -1, m);
}

int vs_pg_manifest_load_at(struct vs_pg *pg, const char *id, int64_t seq,
			   struct vs_manifest *m)
{
	return manifest_load(pg, id, seq < 0 ? 0 : seq, m);
}

int vs_pg_seq_at(struct vs_pg *pg, const char *id, const char *when,
		 int64_t *seq)
{
	const char *v[2] = {id, when};
	PGresult *res = NULL;
	int64_t n;
	int r;

	if (vs_parse_i64(&n, when, 10, 0, INT64_MAX) == 0) {
		r = vs_pg_exec(pg, &res, "SELECT vsync_project_seq($1)", 1, v,
			       NULL, NULL, 0);
		if (r < 0)
			return r;
		*seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		if (n > *seq) {
			pg_set_error(pg,
				     "no change %" PRId64
				     " yet (the last is %" PRId64 ")",
				     n, *seq);
			return -ERANGE;
		}
		*seq = n;
		return 0;
	}
	r = vs_pg_exec(pg, &res, "SELECT vsync_seq_at($1, $2::timestamptz)", 2,
		       v, NULL, NULL, 0);
	if (r < 0) /* 22007, 22008: not a time */
		return strncmp(vs_pg_last_state(pg), "22", 2) ? r : -EINVAL;
	*seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

int vs_pg_blob_fetch(struct vs_pg *pg, const char *id, const char *hash,
		     uint8_t **buf, size_t *len)
{
	const char *v[2] = {id, hash};
	PGresult *res = NULL;
	size_t n;
	int r;

	*buf = NULL;
	*len = 0;
	r = vs_pg_exec(pg, &res, "SELECT vsync_blob($1, $2)", 2, v, NULL, NULL,
		       1);
	if (r < 0) {
		vs_warn("cannot fetch content %.12s of project '%s': %s", hash,
			id, pg->err);
		return r;
	}
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		pg_set_error(pg, "no content %s in project %s", hash, id);
		r = -ENOENT;
		goto out;
	}
	n = (size_t)PQgetlength(res, 0, 0);
	*buf = malloc(n ? n : 1);
	if (!*buf) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(*buf, PQgetvalue(res, 0, 0), n);
	*len = n;
out:
	PQclear(res);
	return r;
}

/* The SHA-256 (hex) of the chunks of the @size bytes of @fd into @shas
 * (65 bytes each), and of the whole into @whole. */
static int chunks_hash(int fd, uint64_t size, uint8_t *buf, char *shas,
		       char whole[VS_HASH_HEX_LEN + 1])
{
	struct vs_sha256 sha;
	uint64_t off = 0;
	int r = vs_sha256_init(&sha);

	for (unsigned i = 0; r == 0 && off < size; i++) {
		size_t n = size - off < VS_CHUNK_SIZE ? (size_t)(size - off)
						      : VS_CHUNK_SIZE;
		ssize_t got = vs_pread_in_full(fd, buf, n, (off_t)off);

		if (got < 0)
			r = (int)got;
		else if ((size_t)got != n)
			r = -EIO;
		else
			r = vs_sha256_hex(
			    shas + (size_t)i * (VS_HASH_HEX_LEN + 1), buf, n);
		if (r == 0)
			vs_sha256_update(&sha, buf, n);
		off += n;
	}
	if (r == 0)
		vs_sha256_final_hex(&sha, whole);
	else
		vs_sha256_release(&sha);
	return r;
}

int vs_pg_chunks_put(struct vs_pg *pg, const char *id, const char *hash, int fd,
		     uint64_t size, int timeout_ms, char **shas_out)
{
	size_t n = (size_t)((size + VS_CHUNK_SIZE - 1) / VS_CHUNK_SIZE);
	char *shas = malloc(n * (VS_HASH_HEX_LEN + 1) + 1);
	char *arr = malloc(n * (VS_HASH_HEX_LEN + 1) + 3);
	uint8_t *buf = malloc(VS_CHUNK_SIZE);
	char whole[VS_HASH_HEX_LEN + 1];
	const char *v[3] = {id, arr, NULL};
	int lens[3] = {0}, fmts[3] = {0, 0, 1};
	PGresult *res = NULL;
	int r = 0;

	*shas_out = NULL;
	if (!shas || !arr || !buf || size == 0) {
		r = size == 0 ? -EINVAL : -ENOMEM;
		goto out;
	}
	/* first the names: the server is sent only the chunks it lacks (an
	 * edit of a few bytes sends one) */
	r = chunks_hash(fd, size, buf, shas, whole);
	if (r == 0 && strcmp(whole, hash) != 0) {
		pg_set_error(pg, "content %.12s changed while it was read",
			     hash);
		r = -EBADMSG;
	}
	if (r < 0)
		goto out;
	arr[0] = '{';
	for (size_t i = 0; i < n; i++) {
		memcpy(arr + 1 + i * (VS_HASH_HEX_LEN + 1),
		       shas + i * (VS_HASH_HEX_LEN + 1), VS_HASH_HEX_LEN);
		arr[1 + i * (VS_HASH_HEX_LEN + 1) + VS_HASH_HEX_LEN] =
		    i + 1 < n ? ',' : '}';
	}
	arr[1 + n * (VS_HASH_HEX_LEN + 1)] = '\0';
	vs_pg_set_timeout(pg, timeout_ms);
	r = vs_pg_exec(pg, &res, "SELECT vsync_chunks_missing($1::uuid, $2)", 2,
		       v, NULL, NULL, 0);
	for (size_t i = 0; r == 0 && i < n; i++) {
		const char *name = shas + i * (VS_HASH_HEX_LEN + 1);
		uint64_t off = (uint64_t)i * VS_CHUNK_SIZE;
		size_t len = size - off < VS_CHUNK_SIZE ? (size_t)(size - off)
							: VS_CHUNK_SIZE;
		char got[VS_HASH_HEX_LEN + 1];
		bool missing = false;
		ssize_t rd;

		for (int k = 0; k < PQntuples(res) && !missing; k++)
			missing = !strcmp(PQgetvalue(res, k, 0), name);
		/* sent once, though named again further on */
		for (size_t j = 0; j < i && missing; j++)
			missing =
			    strcmp(shas + j * (VS_HASH_HEX_LEN + 1), name);
		if (!missing)
			continue;
		rd = vs_pread_in_full(fd, buf, len, (off_t)off);
		if (rd < 0) {
			/* this machine's failure, not the content's: an
			 * I/O error, which the committer retries */
			pg_set_error(pg, "cannot read content %.12s: %s", hash,
				     strerror((int)-rd));
			r = -EIO;
			break;
		}
		if ((size_t)rd == len && (r = vs_sha256_hex(got, buf, len)) < 0)
			break; /* (out of memory) */
		if ((size_t)rd != len || strcmp(got, name)) {
			pg_set_error(pg,
				     "content %.12s changed while it was "
				     "sent",
				     hash);
			r = -EBADMSG;
			break;
		}
		v[1] = name;
		v[2] = (const char *)buf;
		lens[2] = (int)len;
		vs_pg_set_timeout(pg, vs_size_timeout_ms(timeout_ms, len));
		{
			PGresult *pr = NULL;

			r = vs_pg_exec(pg, &pr,
				       "SELECT vsync_chunk_put($1::uuid, $2,"
				       " $3::bytea)",
				       3, v, lens, fmts, 0);
			PQclear(pr);
		}
	}
	vs_pg_set_timeout(pg, timeout_ms);
	if (r == 0) {
		*shas_out = arr;
		arr = NULL;
	}
out:
	PQclear(res);
	free(arr);
	free(shas);
	free(buf);
	return r;
}

/* Check chunk @i (@res: one row of data, sha) and hand it to @sink. */
static int chunk_take(struct vs_pg *pg, const PGresult *res, unsigned i,
		      const char *hash, uint64_t left,
		      int (*sink)(void *arg, const uint8_t *buf, size_t len),
		      void *arg)
{
	char hex[VS_HASH_HEX_LEN + 1];
	size_t n;
	int r;

	if (PQntuples(res) != 1) {
		pg_set_error(pg, "content %.12s has no chunk %u", hash, i);
		return i == 0 ? -ENOENT : -EIO;
	}
	n = (size_t)PQgetlength(res, 0, 0);
	if (PQgetlength(res, 0, 1) != VS_HASH_HEX_LEN || n == 0 || n > left ||
	    (n != VS_CHUNK_SIZE && n != left)) {
		pg_set_error(pg, "chunk %u of content %.12s has %zu bytes", i,
			     hash, n);
		return -EIO;
	}
	r = vs_sha256_hex(hex, PQgetvalue(res, 0, 0), n);
	if (r < 0)
		return r;
	if (memcmp(PQgetvalue(res, 0, 1), hex, VS_HASH_HEX_LEN) != 0) {
		pg_set_error(pg, "chunk %u of content %.12s is corrupt", i,
			     hash);
		return -EIO;
	}
	return sink(arg, (const uint8_t *)PQgetvalue(res, 0, 0), n);
}

/* Read and drop what is left of the pipeline (after @res, freed here),
 * up to its sync, and leave pipeline mode. 0, or -errno with the
 * connection dropped. */
static int pipeline_drain(struct vs_pg *pg, PGresult *res, int timeout_ms)
{
	int r = 0;

	for (;;) {
		PQclear(res);
		r = pg_wait_results(pg, vs_mono_ms() + timeout_ms);
		if (r < 0)
			break;
		res = PQgetResult(pg->conn);
		if (res && PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
	}
	if (r < 0 || !PQexitPipelineMode(pg->conn)) {
		pg_drop(pg);
		return r < 0 ? r : -EIO;
	}
	return 0;
}

int vs_pg_feed(struct vs_pg *pg, const char *id, int64_t after, int limit,
	       uint64_t content_max, PGresult **res_out)
{
	char a[24], l[16], cmax[24];
	const char *v[4] = {id, a, l, cmax};

	snprintf(a, sizeof(a), "%" PRId64, after);
	snprintf(l, sizeof(l), "%d", limit);
	snprintf(cmax, sizeof(cmax), "%" PRIu64, content_max);
	return vs_pg_exec(pg, res_out,
			  "SELECT seq, op, path, old_path, kind, mode, size,"
			  " hash, version, mtime_ns, target, author, conflict,"
			  " CASE WHEN op <> 'delete' AND kind <> 'dir'"
			  " AND hash IS NOT NULL AND size <= $4::bigint"
			  " THEN vsync_blob($1, hash) END"
			  " FROM vsync_change_feed($1, $2, $3)",
			  4, v, NULL, NULL, 0);
}

int vs_pg_chunks_list(struct vs_pg *pg, const char *id, const char *hash,
		      uint64_t size, char *shas)
{
	size_t n = (size_t)((size + VS_CHUNK_SIZE - 1) / VS_CHUNK_SIZE);
	const char *v[2] = {id, hash};
	PGresult *res = NULL;
	int r;

	if (size == 0 || size / VS_CHUNK_SIZE > 1u << 20)
		return -EINVAL;
	r = vs_pg_exec(pg, &res,
		       "SELECT idx, sha, size FROM"
		       " vsync_chunk_list($1::uuid, $2)",
		       2, v, NULL, NULL, 0);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return -ENOENT;
	}
	/* exactly n chunks, cut at VS_CHUNK_SIZE, named by SHA-256s */
	if ((size_t)PQntuples(res) != n)
		r = -EIO;
	for (size_t i = 0; i < n; i++) {
		if (r < 0 ||
		    strtoull(PQgetvalue(res, (int)i, 0), NULL, 10) != i ||
		    strtoull(PQgetvalue(res, (int)i, 2), NULL, 10) !=
			vs_chunk_len(size, i) ||
		    !vs_hash_hex_valid(PQgetvalue(res, (int)i, 1))) {
			pg_set_error(pg,
				     "content %.12s: chunk list does not "
				     "match its size %llu",
				     hash, (unsigned long long)size);
			r = -EIO;
			break;
		}
		memcpy(shas + i * VS_HASH_HEX_LEN, PQgetvalue(res, (int)i, 1),
		       VS_HASH_HEX_LEN);
	}
	PQclear(res);
	return r;
}

int vs_pg_chunks_fetch(struct vs_pg *pg, const char *id, const char *hash,
		       uint64_t size, const bool *want, int timeout_ms,
		       int (*sink)(void *arg, const uint8_t *buf, size_t len),
		       void *arg)
{
	unsigned n = (unsigned)((size + VS_CHUNK_SIZE - 1) / VS_CHUNK_SIZE);
	int chunk_ms = vs_size_timeout_ms(timeout_ms, VS_CHUNK_SIZE);
	char idx[16];
	const char *v[3] = {id, hash, idx};
	PGresult *res = NULL;
	uint64_t off = 0, expect = 0;
	unsigned nq = 0;
	int r;

	if (size == 0 || size / VS_CHUNK_SIZE > 1u << 20)
		return -EINVAL;
	r = vs_pg_ensure(pg);
	if (r < 0)
		return r;
	/* every chunk's query at once, in a pipeline: the server reads
	 * chunk i + 1 while this side checks and writes chunk i */
	if (!PQenterPipelineMode(pg->conn))
		return pg_fail_result(pg, NULL);
	for (unsigned i = 0; i < n; i++) {
		if (want && !want[i])
			continue;
		expect += vs_chunk_len(size, i);
		nq++;
		snprintf(idx, sizeof(idx), "%u", i);
		if (!PQsendQueryParams(pg->conn,
				       "SELECT data, sha FROM"
				       " vsync_chunk($1::uuid, $2, $3::int)",
				       3, NULL, v, NULL, NULL, 1)) {
			r = pg_fail_result(pg, NULL);
			goto fail;
		}
	}
	if (!PQpipelineSync(pg->conn)) {
		r = pg_fail_result(pg, NULL);
		goto fail;
	}
	for (unsigned i = 0, q = 0; q <= nq; i++) {
		if (q < nq && want && !want[i])
			continue;
		/* one result per query (then NULL), then the sync's */
		r = pg_wait_results(pg, vs_mono_ms() + chunk_ms);
		if (r < 0)
			goto fail;
		res = PQgetResult(pg->conn);
		if (q++ == nq) {
			if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
				r = pg_fail_result(pg, res);
				goto fail;
			}
			break;
		}
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			r = pg_fail_result(pg, res);
			goto fail;
		}
		r = chunk_take(pg, res, i, hash,
			       size - (uint64_t)i * VS_CHUNK_SIZE, sink, arg);
		if (r == -ENOENT) /* stored whole: the rest is as short */
			return pipeline_drain(pg, res, chunk_ms) < 0 ? -EIO : r;
		if (r < 0)
			goto fail;
		off += (uint64_t)PQgetlength(res, 0, 0);
		PQclear(res);
		res = PQgetResult(pg->conn); /* the end of query i */
		if (res) {
			r = -EIO;
			goto fail;
		}
	}
	PQclear(res);
	if (!PQexitPipelineMode(pg->conn)) {
		pg_drop(pg);
		return -EIO;
	}
	if (off != expect) {
		pg_set_error(
		    pg, "content %.12s: chunks of %llu bytes, not %llu", hash,
		    (unsigned long long)off, (unsigned long long)expect);
		return -EIO;
	}
	return 0;
fail:
	/* what is still in flight is not worth reading: start over on a
	 * fresh connection next time */
	PQclear(res);
	if (r == -ETIMEDOUT)
		pg_set_error(pg, "timed out after %d ms", chunk_ms);
	pg_abandon(pg);
	return r;
}
