/*
 * control.c - the agent's control endpoint (include/vsync/control.h): a
 * small HTTP server for health checks and Prometheus scrapes.
 *
 *   GET /healthz  200 "ok"            the process serves
 *   GET /readyz   200 "ready" / 503   hooks->ready() (else
 *                                     vs_metrics_is_ready())
 *   GET /metrics  200 vs_metrics_render(), text/plain; version=0.0.4
 *   GET /status   200 hooks->status(), application/json
 *   GET /events   WebSocket: one JSON event per message (events.h), from
 *                 ?after=ID, ?seq=N or now; 426 without the upgrade
 *   GET other     404                 other methods: 405
 *
 * DESIGN
 *
 * Threads. vs_control_start() parses the address, checks with a plain
 * bind(2) that it can be had, then creates the libwebsockets context and
 * its one vhost in the caller's thread, so every start-up failure (bad
 * address, port in use, lws refusing) is a return value and a log line,
 * never a thread that died quietly. Only then does it start the service
 * thread, which from that moment owns the context: it alone calls
 * lws_service() and, on the way out, lws_context_destroy(). The only
 * calls other threads make on the context are lws_cancel_service() (lws's
 * one thread-safe entry point, made under `lock` so it never meets a
 * context the thread is destroying) and reading the port saved at start.
 *
 * Stopping. vs_control_stop() sets the atomic flag `stop` and calls
 * lws_cancel_service(), which wakes lws_service() through lws's event pipe
 * (a wake-up sent before the thread reaches poll(2) is not lost: the pipe
 * stays readable). The loop sees the flag, destroys the context (closing
 * the listener and any client) and returns; stop joins it.
 *
 * Signals. The service thread is created with every signal blocked, so
 * SIGTERM/SIGINT/SIGHUP reach the FUSE threads, whose blocking read(2) of
 * /dev/fuse a signal must interrupt for the mount to exit.
 *
 * Events. /events is a WebSocket on the same protocol (lws binds an
 * upgrade without a subprotocol to the first one). The handshake picks the
 * client's cursor (an event id) from its query; a writable callback sends
 * the one event after the cursor (lws allows one write per callback) and
 * asks for another while more are there. Emitters on other threads add to
 * the ring (sync/events.c), whose wake function is lws_cancel_service()
 * under `lock`; the service thread then gets
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED and asks every connection of the
 * protocol for a writable callback. A client slower than the ring (1024
 * events) gets a "gap" event and goes on from the oldest kept.
 *
 * Requests. The protocol callback runs on the service thread only. On
 * LWS_CALLBACK_HTTP it picks the status and body, writes the headers (with
 * Content-Length, so HTTP/1.1 keep-alive works) and asks for a writable
 * callback; LWS_CALLBACK_HTTP_WRITEABLE sends the body in chunks of at most
 * CONTROL_CHUNK bytes, then completes the transaction. The body belongs to
 * the connection's per-session data and is freed when sent or when the
 * connection closes first.
 *
 * /status. hooks->status reads the backends (within their deadlines, a
 * few seconds when one is down), so it runs on a thread of its own
 * (status_main), never on the service thread: /healthz and /readyz
 * answer meanwhile. A request takes a ticket (status_want, counted up
 * under status_lock) and waits, with no headers written; the status
 * thread runs the hook once for every ticket taken before the run
 * started, publishes the body with the last such ticket (status_done)
 * and wakes the service thread as an event does. Each connection whose
 * ticket is covered then copies the body in its writable callback and
 * answers as any request. Requests that come together share one run; a
 * connection closed while it waits leaves nothing behind.
 *
 * Logging. lws's own messages go through vs_log (errors and warnings as
 * warnings, the rest as debug). lws 4.1 built with LWS_MAX_SMP 1 formats
 * them in one static buffer, so only one thread of the process should run
 * lws; this endpoint is that thread.
 *
 * Side effects of lws worth knowing: lws_create_context() sets SIGPIPE to
 * SIG_IGN for the whole process. The context is capped at CONTROL_MAX_FDS
 * descriptors, so it neither sizes its tables by `ulimit -n` nor cares how
 * high the process's other fds go.
 */
#include "vsync/control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "vsync/events.h"
#include "vsync/json.h"
#include "vsync/log.h"
#include "vsync/metrics.h"
#include "vsync/util.h"
#include "vsync/banned.h"

/* Descriptors of the lws context: the listener, lws's event pipe and a
 * few concurrent clients (probes and one scraper). */
#define CONTROL_MAX_FDS 32
/* Largest piece of a body written per writable callback. */
#define CONTROL_CHUNK 4096
/* Longest address accepted: "[" IPv6 "]:" port. */
#define CONTROL_ADDR_MAX (INET6_ADDRSTRLEN + 8)

struct vs_control {
	/* Owned by the service thread once started, which destroys it and
	 * sets it NULL under `lock`; vs_control_stop() cancels it under
	 * `lock`, so it never wakes a destroyed context. */
	struct lws_context *ctx;
	pthread_mutex_t lock; /* protects ctx after start */
	pthread_t thread;
	atomic_bool stop; /* set by vs_control_stop() */
	int port;	  /* the port listened on (0 resolved); read-only */
	struct vs_control_hooks hooks; /* read-only after start */
	bool has_hooks;
	char where[CONTROL_ADDR_MAX + 8]; /* "ADDR:PORT", for log lines */

	/* /status (the top of this file): the thread running hooks->status,
	 * and under
	 * status_lock the tickets asked for and the last one run for, the
	 * body of that run (malloc'd; NULL if it failed: status_err) */
	pthread_t status_thread;
	bool status_started;
	pthread_mutex_t status_lock;
	pthread_cond_t status_cond; /* a ticket taken, or stop */
	uint64_t status_want, status_run, status_done;
	char *status_body;
	size_t status_len;
	int status_err;
};

/* One HTTP connection's reply in progress (lws per-session data, zeroed by
 * lws when the connection is bound to the protocol). */
struct control_session {
	char *body; /* malloc'd; NULL when there is nothing to send */
	size_t len, off;
	/* GET /status waiting for the status thread: its ticket, 0 none */
	uint64_t status_ticket;
	/* GET /events (WebSocket): the id of the last event sent, and a
	 * gap to announce (events dropped from the ring before they were
	 * sent: gap_to is the id to go on after) */
	bool ws;
	uint64_t cursor;
	bool gap;
	uint64_t gap_to;
};

/* ------------------------------------------------------------ logging */

static void control_lws_log(int level, const char *line)
{
	if (level & (LLL_ERR | LLL_WARN))
		vs_warn("lws: %s", line);
	else
		vs_debug("lws: %s", line);
}

/* lws's log level and emitter are process-wide: set them once. Notices
 * (context creation chatter) are wanted only at debug level. */
static void control_log_init(void)
{
	int mask = LLL_ERR | LLL_WARN;

	if (vs_log_get_level() >= VS_LOG_DEBUG)
		mask |= LLL_NOTICE;
	lws_set_log_level(mask, control_lws_log);
}

/* ------------------------------------------------------------ address */

/*
 * Parse "ADDR:PORT", ":PORT", "PORT" (127.0.0.1) or "[IPv6]:PORT" into a
 * socket address and the numeric host text lws is given as its "iface".
 * Only numeric addresses: a name would need a resolver, and an interface
 * name is taken by lws as one. Port 0 asks the kernel for a free one.
 * 0, or -EINVAL (nothing logged: the caller names the input).
 */
static int control_parse_addr(const char *s, struct sockaddr_storage *ss,
			      socklen_t *sslen, char *host, size_t hostlen,
			      int *port)
{
	const char *colon, *p;
	size_t n;
	long v = 0;

	if (!s || !*s || strlen(s) > CONTROL_ADDR_MAX)
		return -EINVAL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - s - 1);
		p = end + 2;
		if (n == 0 || n >= hostlen)
			return -EINVAL;
		memcpy(host, s + 1, n);
		host[n] = '\0';
	} else if ((colon = strrchr(s, ':'))) {
		n = (size_t)(colon - s);
		p = colon + 1;
		if (n >= hostlen || memchr(s, ':', n)) /* bare IPv6 */
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = '\0';
		if (n == 0)
			snprintf(host, hostlen, "127.0.0.1");
	} else {
		p = s;
		snprintf(host, hostlen, "127.0.0.1");
	}

	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (*p - '0');
		if (v > 65535)
			return -EINVAL;
	}
	*port = (int)v;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -EINVAL;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)v);
		*sslen = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -EINVAL;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)v);
		*sslen = sizeof(*a4);
	}
	return 0;
}

/*
 * Can @sa be bound? The same socket options as lws (SO_REUSEADDR, so a
 * port in TIME_WAIT is usable, one being listened on is not). lws 4.1
 * reports a failed bind only as a NULL vhost, so this is where the reason
 * comes from. 0 or -errno.
 */
static int control_bind_check(const struct sockaddr_storage *sa,
			      socklen_t salen)
{
	int fd, one = 1, r = 0;

	fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)sa, salen) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* ------------------------------------------------------------ requests */

static void control_session_release(struct control_session *ss)
{
	free(ss->body);
	ss->body = NULL;
	ss->len = ss->off = 0;
	ss->status_ticket = 0;
}

/* Give @ss the reply @text (copied) with @status: @status, or -ENOMEM. */
static int control_reply(struct control_session *ss, int status,
			 const char *text)
{
	ss->len = strlen(text);
	ss->off = 0;
	ss->body = strdup(text);
	return ss->body ? status : -ENOMEM;
}

/*
 * Route one request: sets the body of @ss and its content type (*ctype)
 * and returns the status; 0 when the answer comes later (/status:
 * status_answer), or -ENOMEM when a body cannot be had (the caller then
 * closes the connection).
 */
static int control_route(struct vs_control *c, struct lws *wsi, const char *uri,
			 struct control_session *ss, const char **ctype)
{
	char why[256], text[300];
	int r;

	*ctype = "text/plain; charset=utf-8";
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
		return control_reply(ss, 405, "method not allowed\n");
	if (!strcmp(uri, "/healthz"))
		return control_reply(ss, 200, "ok\n");
	if (!strcmp(uri, "/readyz")) {
		if (!c->has_hooks)
			return vs_metrics_is_ready()
				   ? control_reply(ss, 200, "ready\n")
				   : control_reply(ss, 503, "not ready\n");
		why[0] = '\0';
		if (c->hooks.ready(c->hooks.arg, why, sizeof(why)))
			return control_reply(ss, 200, "ready\n");
		snprintf(text, sizeof(text), "not ready: %s\n",
			 why[0] ? why : "?");
		return control_reply(ss, 503, text);
	}
	if (!strcmp(uri, "/events") && c->has_hooks)
		return control_reply(ss, 426,
				     "GET /events is a WebSocket: send "
				     "Upgrade: websocket\n");
	if (!strcmp(uri, "/status") && c->has_hooks) {
		pthread_mutex_lock(&c->status_lock);
		ss->status_ticket = ++c->status_want;
		pthread_cond_signal(&c->status_cond);
		pthread_mutex_unlock(&c->status_lock);
		return 0; /* answered by status_answer */
	}
	if (!strcmp(uri, "/metrics")) {
		*ctype = "text/plain; version=0.0.4; charset=utf-8";
		if (c->has_hooks && c->hooks.refresh)
			c->hooks.refresh(c->hooks.arg);
		ss->off = 0;
		r = vs_metrics_render(&ss->body, &ss->len);
		return r < 0 ? r : 200;
	}
	return control_reply(ss, 404, "not found\n");
}

static int control_callback(struct lws *wsi, enum lws_callback_reasons reason,
			    void *user, void *in, size_t len);

/* One protocol for both the HTTP requests and the /events WebSocket. */
static const struct lws_protocols control_protocols[] = {
    {
	.name = "http",
	.callback = control_callback,
	.per_session_data_size = sizeof(struct control_session),
    },
    {0},
};

/* ------------------------------------------------------------ /events */

/* A WebSocket client asks for /events (its handshake, before the answer):
 * where to start, from its query:
 * ?after=ID (the last event id it saw), ?seq=N (the last change it has
 * applied), else only events from now on. */
static void events_open(struct lws *wsi, struct control_session *ss)
{
	char arg[64];
	const char *val;
	int64_t v;

	memset(ss, 0, sizeof(*ss));
	ss->ws = true;
	ss->cursor = vs_events_last_id();
	if ((val = lws_get_urlarg_by_name(wsi, "after=", arg, sizeof(arg))) &&
	    vs_parse_i64(&v, val, 10, 0, INT64_MAX) == 0) {
		ss->cursor = (uint64_t)v;
		if (ss->cursor > vs_events_last_id()) {
			/* an id of an earlier process of this mount: what
			 * happened since is not known here, replay all */
			ss->gap = true;
			ss->gap_to = 0;
			ss->cursor = 0;
		}
	} else if ((val = lws_get_urlarg_by_name(wsi, "seq=", arg,
						 sizeof(arg))) &&
		   vs_parse_i64(&v, val, 10, 0, INT64_MAX) == 0) {
		uint64_t at;

		if (vs_events_after_seq(v, &at) < 0)
			ss->gap = true;
		ss->cursor = at;
		ss->gap_to = at;
	}
}

/* Send one message of @len bytes at @text (copied behind LWS_PRE).
 * 0, or -1 to close the connection. */
static int events_send(struct lws *wsi, const char *text, size_t len)
{
	unsigned char *buf = malloc(LWS_PRE + len);
	int r;

	if (!buf)
		return -1;
	memcpy(buf + LWS_PRE, text, len);
	r = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT);
	free(buf);
	return r < (int)len ? -1 : 0;
}

/* Writable: one message per callback (lws's rule), then ask again while
 * there is more. */
static int events_writable(struct lws *wsi, struct control_session *ss)
{
	char *json = NULL;
	size_t len = 0;
	uint64_t id = 0;
	int r;

	if (ss->gap) {
		json_t *o = json_pack("{s:s,s:I}", "type", "gap",
				      "resume_after", (json_int_t)ss->gap_to);

		ss->gap = false;
		r = o ? vs_json_dump(o, &json, &len) : -ENOMEM;
		json_decref(o);
		if (r < 0 || events_send(wsi, json, len) < 0) {
			free(json);
			return -1;
		}
		free(json);
		lws_callback_on_writable(wsi);
		return 0;
	}
	r = vs_events_next(ss->cursor, &json, &len, &id);
	if (r == -EAGAIN)
		return 0;
	if (r == -ERANGE) { /* the client was too slow: say so, go on */
		ss->gap = true;
		ss->gap_to = id;
		ss->cursor = id;
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (r < 0)
		return -1;
	r = events_send(wsi, json, len);
	free(json);
	if (r < 0)
		return -1;
	ss->cursor = id;
	if (id < vs_events_last_id())
		lws_callback_on_writable(wsi);
	return 0;
}

/* An event was emitted (any thread): wake the service thread, which then
 * asks every /events client for a writable callback. */
static void events_wake(void *arg)
{
	struct vs_control *c = arg;

	pthread_mutex_lock(&c->lock);
	if (c->ctx)
		lws_cancel_service(c->ctx);
	pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------------ /status */

/* Run hooks->status for the tickets taken (the top of this file), until
 * stop. */
static void *status_main(void *arg)
{
	struct vs_control *c = arg;

	pthread_setname_np(pthread_self(), "vs-status");
	pthread_mutex_lock(&c->status_lock);
	for (;;) {
		uint64_t run;
		char *body = NULL;
		size_t len = 0;
		int r;

		while (!atomic_load(&c->stop) &&
		       c->status_run == c->status_want)
			pthread_cond_wait(&c->status_cond, &c->status_lock);
		if (atomic_load(&c->stop))
			break;
		run = c->status_run = c->status_want;
		pthread_mutex_unlock(&c->status_lock);
		r = c->hooks.status(c->hooks.arg, &body, &len);
		if (r < 0) {
			free(body);
			body = NULL;
			len = 0;
		}
		pthread_mutex_lock(&c->status_lock);
		free(c->status_body);
		c->status_body = body;
		c->status_len = len;
		c->status_err = r < 0 ? r : 0;
		c->status_done = run;
		pthread_mutex_unlock(&c->status_lock);
		events_wake(c); /* every connection gets a writable callback */
		pthread_mutex_lock(&c->status_lock);
	}
	pthread_mutex_unlock(&c->status_lock);
	return NULL;
}

/* Stop the status thread (a run under way ends first: its hook's
 * deadlines bound it). */
static void status_stop(struct vs_control *c)
{
	if (!c->status_started)
		return;
	pthread_mutex_lock(&c->status_lock);
	pthread_cond_broadcast(&c->status_cond);
	pthread_mutex_unlock(&c->status_lock);
	pthread_join(c->status_thread, NULL);
	c->status_started = false;
}

/* Write the headers of a reply of @len bytes with @status and @ctype:
 * 0, or nonzero (close the connection). */
static int control_headers(struct lws *wsi, int status, const char *ctype,
			   size_t len)
{
	unsigned char buf[LWS_PRE + CONTROL_CHUNK];
	unsigned char *start = buf + LWS_PRE, *p = start;
	unsigned char *end = buf + sizeof(buf) - 1;

	return lws_add_http_common_headers(wsi, (unsigned)status, ctype, len,
					   &p, end) ||
	       lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					    (const unsigned char *)"no-store",
					    8, &p, end) ||
	       lws_finalize_write_http_header(wsi, start, &p, end);
}

/* A writable callback of a /status request that waits: once a run covers
 * its ticket, take a copy of that run's body and write the headers. 1:
 * answered (the body follows), 0: still waiting, -1: close. */
static int status_answer(struct vs_control *c, struct lws *wsi,
			 struct control_session *ss)
{
	char text[64];
	int status = 200, err;

	pthread_mutex_lock(&c->status_lock);
	if (c->status_done < ss->status_ticket) {
		pthread_mutex_unlock(&c->status_lock);
		return 0;
	}
	err = c->status_err;
	if (!err && (ss->body = malloc(c->status_len + 1))) {
		if (c->status_len) /* (a hook may give an empty NULL body) */
			memcpy(ss->body, c->status_body, c->status_len);
		ss->len = c->status_len;
	}
	pthread_mutex_unlock(&c->status_lock);
	ss->status_ticket = 0;
	ss->off = 0;
	if (err) {
		snprintf(text, sizeof(text), "{\"error\":%d}", -err);
		status = control_reply(ss, 500, text);
	} else if (!ss->body) {
		status = -ENOMEM;
	}
	if (status < 0) {
		vs_warn("control endpoint: cannot answer '/status': %s",
			strerror(-status));
		return -1;
	}
	return control_headers(wsi, status, "application/json", ss->len) ? -1
									 : 1;
}

/* lws calls this on the service thread for every event of a connection.
 * Returning nonzero closes the connection. */
static int control_callback(struct lws *wsi, enum lws_callback_reasons reason,
			    void *user, void *in, size_t len)
{
	struct vs_control *c = lws_context_user(lws_get_context(wsi));
	struct control_session *ss = user;
	unsigned char buf[LWS_PRE + CONTROL_CHUNK];
	unsigned char *start = buf + LWS_PRE;
	const char *ctype;
	size_t n;
	int status;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		control_session_release(ss); /* a previous keep-alive reply */
		status = control_route(c, wsi, in, ss, &ctype);
		if (status < 0) {
			vs_warn("control endpoint: cannot answer '%s': %s",
				(const char *)in, strerror(-status));
			control_session_release(ss);
			return -1;
		}
		if (status == 0)
			return 0; /* /status: status_answer, later */
		if (control_headers(wsi, status, ctype, ss->len))
			return 1;
		lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (ss->status_ticket) {
			status = status_answer(c, wsi, ss);
			if (status > 0)
				lws_callback_on_writable(wsi);
			return status < 0 ? -1 : 0;
		}
		if (!ss->body)
			return 0;
		n = ss->len - ss->off;
		if (n > CONTROL_CHUNK)
			n = CONTROL_CHUNK;
		memcpy(start, ss->body + ss->off, n);
		ss->off += n;
		if (lws_write(wsi, start, n,
			      ss->off < ss->len
				  ? LWS_WRITE_HTTP
				  : LWS_WRITE_HTTP_FINAL) != (int)n)
			return 1;
		if (ss->off < ss->len) {
			lws_callback_on_writable(wsi);
			return 0;
		}
		control_session_release(ss);
		/* nonzero: the client asked to close, or lws wants to */
		if (lws_http_transaction_completed(wsi))
			return -1;
		return 0;

	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (ss)
			control_session_release(ss);
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
		/* a WebSocket upgrade: only GET /events, only in a mount */
		char uri[64];

		if (!c->has_hooks || !ss ||
		    lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <
			0 ||
		    strcmp(uri, "/events"))
			return 1;
		events_open(wsi, ss); /* the query is still there */
		return 0;
	}

	case LWS_CALLBACK_ESTABLISHED:
		lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ss && ss->ws ? events_writable(wsi, ss) : 0;

	case LWS_CALLBACK_RECEIVE:
		return 0; /* nothing is expected from a client */

	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		lws_callback_on_writable_all_protocol(lws_get_context(wsi),
						      &control_protocols[0]);
		return 0;

	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* ------------------------------------------------------------ lifecycle */

static void *control_thread(void *arg)
{
	struct vs_control *c = arg;

	pthread_setname_np(pthread_self(), "vs-control");
	while (!atomic_load(&c->stop)) {
		if (lws_service(c->ctx, 0) < 0) {
			vs_warn("control endpoint on %s: service loop failed; "
				"it no longer answers",
				c->where);
			break;
		}
	}
	pthread_mutex_lock(&c->lock);
	lws_context_destroy(c->ctx);
	c->ctx = NULL;
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int vs_control_start(struct vs_control **out, const char *addr)
{
	return vs_control_start_with(out, addr, NULL);
}

int vs_control_start_with(struct vs_control **out, const char *addr,
			  const struct vs_control_hooks *hooks)
{
	static pthread_once_t log_once = PTHREAD_ONCE_INIT;
	struct lws_context_creation_info info;
	struct sockaddr_storage sa;
	struct vs_control *c = NULL;
	struct lws_vhost *vh;
	sigset_t all, old;
	char host[INET6_ADDRSTRLEN];
	socklen_t salen = 0;
	int port = 0, r;

	*out = NULL;
	if (control_parse_addr(addr, &sa, &salen, host, sizeof(host), &port)) {
		vs_error("control endpoint: bad address '%s' (want ADDR:PORT, "
			 ":PORT, PORT or [IPv6]:PORT, numeric)",
			 addr ? addr : "(null)");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->status_lock, NULL);
	pthread_cond_init(&c->status_cond, NULL);
	if (hooks && hooks->status && hooks->ready) {
		c->hooks = *hooks;
		c->has_hooks = true;
	}
	snprintf(c->where, sizeof(c->where),
		 sa.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);

	r = control_bind_check(&sa, salen);
	if (r < 0) {
		vs_error("control endpoint: cannot listen on %s: %s%s",
			 c->where, strerror(-r),
			 r == -EADDRINUSE ? " (another listener holds it)"
					  : "");
		goto fail;
	}

	pthread_once(&log_once, control_log_init);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
	/* lws 4.1 with IPv6 enabled reads an IPv4 "iface" into the wrong
	 * field and listens on every address: keep IPv4 listeners IPv4. */
	if (sa.ss_family == AF_INET)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.fd_limit_per_thread = CONTROL_MAX_FDS;
	info.gid = (gid_t)-1; /* never change user or group */
	info.uid = (uid_t)-1;
	info.protocols = control_protocols;
	info.vhost_name = "vsync-control";
	info.iface = host;
	info.port = port;
	info.server_string = "vsync";
	info.user = c; /* lws_context_user() in the callback */

	c->ctx = lws_create_context(&info);
	if (!c->ctx) {
		vs_error("control endpoint: cannot create the HTTP context");
		r = -ENOMEM;
		goto fail;
	}
	vh = lws_create_vhost(c->ctx, &info);
	if (!vh) {
		/* lws does not say why: ask bind(2) again (someone may have
		 * taken the port since the check) */
		r = control_bind_check(&sa, salen);
		if (r == 0)
			r = -EIO;
		vs_error("control endpoint: cannot listen on %s: %s", c->where,
			 strerror(-r));
		goto fail;
	}
	c->port = lws_get_vhost_listen_port(vh);
	if (port == 0) /* say which port the kernel picked */
		snprintf(c->where, sizeof(c->where),
			 sa.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host,
			 c->port);

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = c->has_hooks
		? -pthread_create(&c->status_thread, NULL, status_main, c)
		: 0;
	c->status_started = r == 0 && c->has_hooks;
	if (r == 0)
		r = -pthread_create(&c->thread, NULL, control_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		vs_error("control endpoint: cannot start its threads: %s",
			 strerror(-r));
		atomic_store(&c->stop, true);
		status_stop(c);
		goto fail;
	}
	if (c->has_hooks)
		vs_events_set_wake(events_wake, c);
	vs_info("control endpoint listening on %s", c->where);
	*out = c;
	return 0;

fail:
	if (c->ctx)
		lws_context_destroy(c->ctx);
	pthread_cond_destroy(&c->status_cond);
	pthread_mutex_destroy(&c->status_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return r;
}

/* ------------------------------------------------------------ client */

/* Largest answer vs_control_get() reads. */
#define CONTROL_GET_MAX (1 << 20)

int vs_control_get(const char *addr, const char *path, int timeout_ms,
		   int *status, char **body, size_t *len)
{
	struct sockaddr_storage sa;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	char host[INET6_ADDRSTRLEN], req[512], *buf = NULL, *hdr_end;
	socklen_t salen = 0;
	size_t n = 0, cap = 8192;
	int port, fd = -1, r, code;

	*body = NULL;
	*len = 0;
	if (control_parse_addr(addr, &sa, &salen, host, sizeof(host), &port) ||
	    strlen(path) > 256)
		return -EINVAL;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* on Linux SO_SNDTIMEO bounds connect(2) too */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (const struct sockaddr *)&sa, salen) < 0) {
		r = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		goto out;
	}
	r = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n",
		     path, host);
	r = vs_write_in_full(fd, req, (size_t)r);
	if (r < 0)
		goto out;
	buf = malloc(cap + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t got;

		if (n == cap) {
			char *nb;

			if (cap >= CONTROL_GET_MAX) {
				r = -EFBIG;
				goto out;
			}
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				r = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	hdr_end = strstr(buf, "\r\n\r\n");
	if (!hdr_end || sscanf(buf, "HTTP/1.%*d %d", &code) != 1) {
		r = -EBADMSG;
		goto out;
	}
	hdr_end += 4;
	*len = n - (size_t)(hdr_end - buf);
	memmove(buf, hdr_end, *len + 1);
	*body = buf;
	*status = code;
	buf = NULL;
	r = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}

int vs_control_port(const struct vs_control *c)
{
	return c->port;
}

void vs_control_stop(struct vs_control *c)
{
	if (!c)
		return;
	if (c->has_hooks)
		vs_events_set_wake(NULL, NULL); /* no wake after this */
	atomic_store(&c->stop, true);
	status_stop(c);
	pthread_mutex_lock(&c->lock);
	if (c->ctx) /* NULL if the loop failed and already ended */
		lws_cancel_service(c->ctx);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	free(c->status_body);
	pthread_cond_destroy(&c->status_cond);
	pthread_mutex_destroy(&c->status_lock);
	pthread_mutex_destroy(&c->lock);
	vs_debug("control endpoint on %s stopped", c->where);
	free(c);
}
