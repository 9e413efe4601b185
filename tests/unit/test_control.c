/*
 * test_control.c - unit tests of agent/control.c (include/vsync/control.h).
 *
 * Each case starts the endpoint on 127.0.0.1 and a port the kernel picks
 * ("127.0.0.1:0", vs_control_port() tells which), talks raw HTTP/1.1 to it
 * over a plain socket with a 2 s poll(2) deadline on every step, and stops
 * it in teardown.
 *
 * Covers:
 *  - GET /healthz 200 "ok"; /readyz 503 before vs_metrics_ready() and 200
 *    after; /metrics 200 with the 0.0.4 content type, Content-Length equal
 *    to the body (over 4 KiB: several writable callbacks) and every metric
 *    name; /nope and /healthz/x 404; POST /healthz 405;
 *  - two requests on one keep-alive connection;
 *  - the listener is bound to 127.0.0.1 only (127.0.0.2 is refused);
 *  - address forms ":0", "0" (127.0.0.1) and "[::1]:0" (skipped with a
 *    note when the machine has no IPv6 loopback);
 *  - bad addresses -> -EINVAL and *out NULL;
 *  - a port held by another socket, or by a running endpoint, ->
 *    -EADDRINUSE;
 *  - vs_control_stop() returns within a second, with an idle client
 *    connection open; vs_control_stop(NULL); start/stop five times;
 *  - with hooks, GET /status runs off the service thread: while the
 *    status hook is held, /healthz and /readyz answer; two /status
 *    requests that come while it runs share the next call (2 calls for
 *    3 requests), each answered with the body of a call that started
 *    after it; a failing hook gives 500 {"error":N}.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vsync/control.h"
#include "vsync/log.h"
#include "vsync/metrics.h"

#include "unit_check.h"

#define DEADLINE_MS 2000
#define RESP_MAX    65536

/* ------------------------------------------------------------ client */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for @events on @fd until @deadline (now_ms() scale). 0 or
 * -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	long long left = deadline - now_ms();
	int n;

	if (left < 0)
		left = 0;
	n = poll(&p, 1, (int)left);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* A non-blocking TCP connection to @ip (v4 or v6 text) : @port, within
 * the deadline. The fd, or -errno (-ECONNREFUSED when nobody listens). */
static int connect_to(const char *ip, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	long long deadline = now_ms() + DEADLINE_MS;
	int fd, r, err = 0;
	socklen_t elen = sizeof(err);

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		assert_int_equal(1, inet_pton(AF_INET6, ip, &a->sin6_addr));
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		assert_int_equal(1, inet_pton(AF_INET, ip, &a->sin_addr));
		len = sizeof(*a);
	}
	fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		if (errno != EINPROGRESS) {
			r = -errno;
			close(fd);
			return r;
		}
		r = wait_fd(fd, POLLOUT, deadline);
		if (r == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 &&
		    err)
			r = -err;
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	return fd;
}

static void send_all(int fd, const char *req)
{
	long long deadline = now_ms() + DEADLINE_MS;
	size_t len = strlen(req), off = 0;

	while (off < len) {
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			check_ret(0, wait_fd(fd, POLLOUT, deadline),
				  "waiting to send the request");
			continue;
		}
		if (n < 0)
			fail_msg("send of the request: %s", strerror(errno));
		off += (size_t)n;
	}
}

struct resp {
	int status;
	char head[4096]; /* status line and headers, NUL-terminated */
	char *body;	 /* points into raw, NUL-terminated */
	size_t body_len;
	long content_length; /* -1 when absent */
	char raw[RESP_MAX];
	size_t raw_len;
};

/* The value of header @name in @r->head (case-insensitive name), copied
 * into @val; NULL if absent. */
static const char *header(const struct resp *r, const char *name, char *val,
			  size_t size)
{
	const char *line = strstr(r->head, "\r\n");
	size_t nlen = strlen(name);

	while (line && line[2]) {
		const char *start = line + 2;
		const char *eol = strstr(start, "\r\n");
		size_t llen = eol ? (size_t)(eol - start) : strlen(start);

		if (llen > nlen && !strncasecmp(start, name, nlen) &&
		    start[nlen] == ':') {
			const char *v = start + nlen + 1;
			size_t vlen;

			while (*v == ' ')
				v++;
			vlen = llen - (size_t)(v - start);
			if (vlen >= size)
				vlen = size - 1;
			memcpy(val, v, vlen);
			val[vlen] = '\0';
			return val;
		}
		line = eol;
	}
	return NULL;
}

/*
 * Read one response from @fd: the head, then Content-Length bytes of body
 * (or up to EOF without one). Fails the test on a deadline, a malformed
 * head or a response over RESP_MAX.
 */
static void read_response(int fd, struct resp *r, const char *what)
{
	long long deadline = now_ms() + DEADLINE_MS;
	char *eoh = NULL, cl[32];

	memset(r, 0, offsetof(struct resp, raw));
	r->content_length = -1;
	r->raw_len = 0;
	for (;;) {
		ssize_t n;

		if (eoh && r->content_length >= 0 &&
		    r->raw_len >=
			(size_t)(eoh + 4 - r->raw) + (size_t)r->content_length)
			break;
		if (r->raw_len >= sizeof(r->raw) - 1)
			fail_msg("%s: response over %d bytes", what, RESP_MAX);
		n = recv(fd, r->raw + r->raw_len,
			 sizeof(r->raw) - 1 - r->raw_len, 0);
		if (n < 0 && errno == EAGAIN) {
			int w = wait_fd(fd, POLLIN, deadline);

			if (w < 0)
				fail_msg("%s: no complete response within %d "
					 "ms (got %zu bytes: \"%.*s\")",
					 what, DEADLINE_MS, r->raw_len,
					 (int)r->raw_len, r->raw);
			continue;
		}
		if (n < 0)
			fail_msg("%s: recv: %s", what, strerror(errno));
		if (n == 0)
			break;
		r->raw_len += (size_t)n;
		r->raw[r->raw_len] = '\0';
		if (!eoh && (eoh = strstr(r->raw, "\r\n\r\n"))) {
			size_t hlen = (size_t)(eoh - r->raw);

			if (hlen >= sizeof(r->head))
				fail_msg("%s: header over %zu bytes", what,
					 sizeof(r->head));
			memcpy(r->head, r->raw, hlen);
			r->head[hlen] = '\0';
			if (header(r, "content-length", cl, sizeof(cl)))
				r->content_length = strtol(cl, NULL, 10);
		}
	}
	if (!eoh)
		fail_msg("%s: no end of headers in \"%.*s\"", what,
			 (int)r->raw_len, r->raw);
	if (sscanf(r->head, "HTTP/1.%*d %d ", &r->status) != 1)
		fail_msg("%s: bad status line in \"%s\"", what, r->head);
	r->body = eoh + 4;
	r->body_len = r->raw_len - (size_t)(r->body - r->raw);
}

/* GET @path on a new connection (Connection: close) into @r. */
static void http_request(const char *ip, int port, const char *method,
			 const char *path, struct resp *r)
{
	char req[512], what[300];
	int fd = connect_to(ip, port);

	snprintf(what, sizeof(what), "%s %s on %s:%d", method, path, ip, port);
	if (fd < 0)
		fail_msg("%s: connect: %s", what, strerror(-fd));
	snprintf(req, sizeof(req),
		 "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
		 "Content-Length: 0\r\n\r\n",
		 method, path, ip);
	send_all(fd, req);
	read_response(fd, r, what);
	close(fd);
}

static struct resp *resp_new(void)
{
	struct resp *r = malloc(sizeof(*r));

	assert_non_null(r);
	return r;
}

/* Status and exact body of GET @path. */
static void check_get(int port, const char *path, int status, const char *body)
{
	struct resp *r = resp_new();

	http_request("127.0.0.1", port, "GET", path, r);
	check_int(status, r->status, "status of GET %s", path);
	check_str(body, r->body, "body of GET %s", path);
	check_int(r->body_len, r->content_length,
		  "Content-Length of GET %s vs the body", path);
	free(r);
}

/* ------------------------------------------------------------ fixtures */

struct ctl_state {
	struct vs_control *c;
	int port;
};

static int ctl_setup(void **state)
{
	struct ctl_state *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -1;
	vs_metrics_reset();
	r = vs_control_start(&s->c, "127.0.0.1:0");
	if (r < 0) {
		print_error("vs_control_start(127.0.0.1:0): %s\n",
			    strerror(-r));
		free(s);
		return -1;
	}
	s->port = vs_control_port(s->c);
	*state = s;
	return 0;
}

static int ctl_teardown(void **state)
{
	struct ctl_state *s = *state;

	vs_control_stop(s->c);
	free(s);
	return 0;
}

/* ------------------------------------------------------------ routes */

static void test_healthz(void **state)
{
	struct ctl_state *s = *state;

	check_bool(true, s->port > 0 && s->port < 65536,
		   "vs_control_port %d is a real port", s->port);
	check_get(s->port, "/healthz", 200, "ok\n");
}

static void test_readyz(void **state)
{
	struct ctl_state *s = *state;

	check_get(s->port, "/readyz", 503, "not ready\n");
	vs_metrics_ready(1500);
	check_get(s->port, "/readyz", 200, "ready\n");
}

static void test_metrics(void **state)
{
	static const char *const names[] = {
	    "vsync_ready 0\n",
	    "vsync_time_to_ready_seconds",
	    "vsync_fetch_files_total{source=\"redis\"} 1\n",
	    "vsync_fetch_bytes_total{source=\"redis\"} 321\n",
	    "vsync_fetch_duration_seconds_bucket{source=\"postgres\","
	    "le=\"+Inf\"}",
	    "vsync_fetch_duration_seconds_sum",
	    "vsync_fetch_duration_seconds_count",
	    "vsync_cache_hits_total",
	    "vsync_cache_misses_total",
	    "vsync_backend_errors_total{backend=\"postgres\"}",
	    "vsync_changes_applied_total",
	    "vsync_applied_seq",
	    "vsync_prefetch_pending",
	};
	struct ctl_state *s = *state;
	struct resp *r = resp_new();
	char ctype[128];

	vs_metrics_fetch(VS_SRC_REDIS, 321, 40);
	http_request("127.0.0.1", s->port, "GET", "/metrics", r);
	check_int(200, r->status, "status of GET /metrics");
	check_str("text/plain; version=0.0.4; charset=utf-8",
		  header(r, "content-type", ctype, sizeof(ctype)),
		  "Content-Type of GET /metrics");
	check_int(r->body_len, r->content_length,
		  "Content-Length of GET /metrics vs the body");
	check_bool(true, r->body_len > 4096,
		   "body of /metrics (%zu bytes) spans several writes",
		   r->body_len);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strstr(r->body, names[i]))
			fail_msg("GET /metrics: no \"%s\" in:\n%s", names[i],
				 r->body);
	free(r);
}

static void test_not_found_and_method(void **state)
{
	struct ctl_state *s = *state;
	struct resp *r = resp_new();

	check_get(s->port, "/nope", 404, "not found\n");
	check_get(s->port, "/healthz/x", 404, "not found\n");
	check_get(s->port, "/", 404, "not found\n");
	http_request("127.0.0.1", s->port, "POST", "/healthz", r);
	check_int(405, r->status, "status of POST /healthz");
	free(r);
}

static void test_keep_alive(void **state)
{
	struct ctl_state *s = *state;
	struct resp *r = resp_new();
	int fd = connect_to("127.0.0.1", s->port);

	if (fd < 0)
		fail_msg("connect: %s", strerror(-fd));
	send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	read_response(fd, r, "first GET /healthz on a keep-alive connection");
	check_int(200, r->status, "status of the first request");
	check_str("ok\n", r->body, "body of the first request");
	send_all(fd, "GET /readyz HTTP/1.1\r\nHost: x\r\n"
		     "Connection: close\r\n\r\n");
	read_response(fd, r, "second request on the same connection");
	check_int(503, r->status, "status of the second request");
	check_str("not ready\n", r->body, "body of the second request");
	close(fd);
	free(r);
}

static void test_loopback_only(void **state)
{
	struct ctl_state *s = *state;
	int fd = connect_to("127.0.0.2", s->port);

	if (fd >= 0)
		close(fd);
	check_ret(-ECONNREFUSED, fd < 0 ? fd : 0,
		  "connect to 127.0.0.2:%d (endpoint bound to 127.0.0.1)",
		  s->port);
}

/* ------------------------------------------------------------ addresses */

static void start_get_stop(const char *addr)
{
	struct vs_control *c = NULL;

	check_ret(0, vs_control_start(&c, addr), "vs_control_start(\"%s\")",
		  addr);
	check_get(vs_control_port(c), "/healthz", 200, "ok\n");
	vs_control_stop(c);
}

static bool have_ipv6_loopback(void)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	a.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void test_address_forms(void **state)
{
	(void)state;
	start_get_stop(":0"); /* check_get connects to 127.0.0.1 */
	start_get_stop("0");
	if (have_ipv6_loopback()) {
		struct vs_control *c = NULL;
		struct resp *r = resp_new();

		check_ret(0, vs_control_start(&c, "[::1]:0"),
			  "vs_control_start(\"[::1]:0\")");
		http_request("::1", vs_control_port(c), "GET", "/healthz", r);
		check_int(200, r->status, "GET /healthz over [::1]");
		vs_control_stop(c);
		free(r);
	} else {
		print_message("[   NOTE   ] no IPv6 loopback here: [::1]:0 "
			      "not tried\n");
	}
}

static void test_bad_addresses(void **state)
{
	static const char *const bad[] = {
	    "",
	    "abc",
	    "127.0.0.1:",
	    "127.0.0.1:65536",
	    "127.0.0.1:99999999999999999999",
	    "127.0.0.1:-1",
	    "127.0.0.1:80x",
	    "127.0.0.1: 80",
	    "300.1.1.1:80",
	    "localhost:80",
	    "::1:80",
	    "[::1]80",
	    "[::1",
	    "[]:80",
	    "[127.0.0.1]:80",
	    "[::1]:",
	    "-5",
	    "0x50",
	    "1.2.3.4.5:80",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vs_control *c = (struct vs_control *)&c;

		check_ret(-EINVAL, vs_control_start(&c, bad[i]),
			  "vs_control_start(\"%s\")", bad[i]);
		check_ptr(NULL, c, "*out after vs_control_start(\"%s\")",
			  bad[i]);
	}
	{
		struct vs_control *c = NULL;

		check_ret(-EINVAL, vs_control_start(&c, NULL),
			  "vs_control_start(NULL)");
	}
}

static void test_port_in_use(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	struct vs_control *c = NULL, *c2 = NULL;
	char addr[32];
	int fd, port;

	(void)state;
	/* a plain listening socket holds the port */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 1) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
		fail_msg("cannot hold a port: %s", strerror(errno));
	port = ntohs(a.sin_port);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	check_ret(-EADDRINUSE, vs_control_start(&c, addr),
		  "vs_control_start(\"%s\") with the port held", addr);
	check_ptr(NULL, c, "*out after a failed start");
	close(fd);

	/* a running endpoint holds the port */
	check_ret(0, vs_control_start(&c, "127.0.0.1:0"),
		  "vs_control_start(127.0.0.1:0)");
	snprintf(addr, sizeof(addr), ":%d", vs_control_port(c));
	check_ret(-EADDRINUSE, vs_control_start(&c2, addr),
		  "second vs_control_start(\"%s\")", addr);
	check_ptr(NULL, c2, "*out after a failed second start");
	/* and the first one still answers */
	check_get(vs_control_port(c), "/healthz", 200, "ok\n");
	vs_control_stop(c);
}

/* ------------------------------------------------------------ lifecycle */

static void test_stop_is_prompt(void **state)
{
	struct vs_control *c = NULL;
	long long t0;
	int idle;

	(void)state;
	check_ret(0, vs_control_start(&c, "127.0.0.1:0"),
		  "vs_control_start(127.0.0.1:0)");
	/* an idle client that never sends a request must not hold stop up */
	idle = connect_to("127.0.0.1", vs_control_port(c));
	if (idle < 0)
		fail_msg("connect: %s", strerror(-idle));
	check_get(vs_control_port(c), "/healthz", 200, "ok\n");
	t0 = now_ms();
	vs_control_stop(c);
	check_bool(true, now_ms() - t0 < 1000,
		   "vs_control_stop took %lld ms (want < 1000)", now_ms() - t0);
	close(idle);
	vs_control_stop(NULL);
}

static void test_restart(void **state)
{
	(void)state;
	for (int i = 0; i < 5; i++) {
		struct vs_control *c = NULL;

		check_ret(0, vs_control_start(&c, "127.0.0.1:0"),
			  "vs_control_start, round %d", i);
		if (i % 2)
			check_get(vs_control_port(c), "/healthz", 200, "ok\n");
		vs_control_stop(c);
	}
}

/* ------------------------------------------------------------ /status */

/* A status hook held at a gate: each call counts itself, waits for the
 * gate to open, then answers {"call":N} (or @fail). */
struct gate {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool open;
	int calls;
	int fail;
};

static int gate_status(void *arg, char **body, size_t *len)
{
	struct gate *g = arg;
	int n;

	pthread_mutex_lock(&g->m);
	n = ++g->calls;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->m);
	pthread_mutex_unlock(&g->m);
	if (g->fail)
		return g->fail;
	*body = malloc(32);
	if (!*body)
		return -ENOMEM;
	*len = (size_t)snprintf(*body, 32, "{\"call\":%d}", n);
	return 0;
}

static bool gate_ready(void *arg, char *why, size_t whylen)
{
	(void)arg;
	(void)why;
	(void)whylen;
	return true;
}

/* Wait (2 s at most) until the hook has been called @n times. */
static void gate_wait_calls(struct gate *g, int n)
{
	long long deadline = now_ms() + DEADLINE_MS;

	pthread_mutex_lock(&g->m);
	while (g->calls < n && now_ms() < deadline) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g->cv, &g->m, &ts);
	}
	pthread_mutex_unlock(&g->m);
	check_bool(true, g->calls >= n, "status hook called %d times, want %d",
		   g->calls, n);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->m);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->m);
}

/* Send GET /status on a new connection; the answer is read later. */
static int status_send(int port)
{
	int fd = connect_to("127.0.0.1", port);

	if (fd < 0)
		fail_msg("connect: %s", strerror(-fd));
	send_all(fd, "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Connection: close\r\n\r\n");
	return fd;
}

static void status_read(int fd, int status, const char *body, const char *what)
{
	struct resp *r = resp_new();

	read_response(fd, r, what);
	check_int(status, r->status, "status of %s", what);
	check_str(body, r->body, "body of %s", what);
	check_int(r->body_len, r->content_length, "Content-Length of %s", what);
	free(r);
	close(fd);
}

/* The answer of a /status whose request came before call @min started:
 * 200, from call @min or a later one. Which call, or fails. */
static int status_read_call(int fd, int min, const char *what)
{
	struct resp *r = resp_new();
	int call = 0;

	read_response(fd, r, what);
	check_int(200, r->status, "status of %s", what);
	check_int(1, sscanf(r->body, "{\"call\":%d}", &call),
		  "body of %s: \"%s\"", what, r->body);
	check_bool(true, call >= min,
		   "%s: answered from call %d, which started before it "
		   "(want %d or later)",
		   what, call, min);
	check_int(r->body_len, r->content_length, "Content-Length of %s", what);
	free(r);
	close(fd);
	return call;
}

static void test_status_off_thread(void **state)
{
	struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			 false, 0, 0};
	struct vs_control_hooks hooks = {
	    .status = gate_status, .ready = gate_ready, .arg = &g};
	struct vs_control *c = NULL;
	int port, a, b, b2;

	(void)state;
	check_ret(0, vs_control_start_with(&c, "127.0.0.1:0", &hooks),
		  "vs_control_start_with(127.0.0.1:0)");
	port = vs_control_port(c);
	a = status_send(port);
	gate_wait_calls(&g, 1);
	/* the hook is held: the service thread answers all the same */
	check_get(port, "/healthz", 200, "ok\n");
	check_get(port, "/readyz", 200, "ready\n");
	b = status_send(port);
	b2 = status_send(port);
	check_get(port, "/healthz", 200, "ok\n"); /* both sent, served */
	gate_open(&g);
	/* the first may have the second call's answer: it started after
	 * it too, and may have ended before the first was answered */
	(void)status_read_call(a, 1, "the first /status");
	check_int(2, status_read_call(b, 2, "a /status sent while it ran"),
		  "the call that answered it");
	check_int(2, status_read_call(b2, 2, "another sent meanwhile"),
		  "the call that answered it (shared)");
	check_int(2, g.calls, "calls of the status hook for 3 requests");
	vs_control_stop(c);
}

static void test_status_error(void **state)
{
	struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			 true, 0, -EIO};
	struct vs_control_hooks hooks = {
	    .status = gate_status, .ready = gate_ready, .arg = &g};
	struct vs_control *c = NULL;

	(void)state;
	check_ret(0, vs_control_start_with(&c, "127.0.0.1:0", &hooks),
		  "vs_control_start_with(127.0.0.1:0)");
	status_read(status_send(vs_control_port(c)), 500, "{\"error\":5}",
		    "/status of a failing hook");
	vs_control_stop(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_healthz, ctl_setup,
					    ctl_teardown),
	    cmocka_unit_test_setup_teardown(test_readyz, ctl_setup,
					    ctl_teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, ctl_setup,
					    ctl_teardown),
	    cmocka_unit_test_setup_teardown(test_not_found_and_method,
					    ctl_setup, ctl_teardown),
	    cmocka_unit_test_setup_teardown(test_keep_alive, ctl_setup,
					    ctl_teardown),
	    cmocka_unit_test_setup_teardown(test_loopback_only, ctl_setup,
					    ctl_teardown),
	    cmocka_unit_test(test_address_forms),
	    cmocka_unit_test(test_bad_addresses),
	    cmocka_unit_test(test_port_in_use),
	    cmocka_unit_test(test_stop_is_prompt),
	    cmocka_unit_test(test_restart),
	    cmocka_unit_test(test_status_off_thread),
	    cmocka_unit_test(test_status_error),
	};

	vs_log_set_prog("test_control");
	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
