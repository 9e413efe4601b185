/*
 * control.h - the agent's control endpoint (agent/control.c): an HTTP
 * server (libwebsockets) on its own thread serving
 *   GET /healthz  200 "ok" while the process serves
 *   GET /readyz   200 "ready" while hooks->ready() says so (without hooks:
 *                 once vs_metrics_is_ready()), else 503 "not ready: why"
 *   GET /metrics  vs_metrics_render(), text/plain; version=0.0.4
 *                 (hooks->refresh() first)
 *   GET /status   hooks->status(): application/json (404 without hooks)
 *   GET /events   with hooks: a WebSocket of the live events (events.h)
 *   anything else 404
 */
#ifndef VSYNC_CONTROL_H
#define VSYNC_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

struct vs_control;

/* What the endpoint asks its owner. ready and refresh are called on the
 * endpoint's service thread, blocking it: no backend calls there. status
 * is called on a thread of its own, one call at a time (so it may keep
 * connections of its own there): requests that come while it runs share
 * the next call, and /healthz and /readyz answer meanwhile. */
struct vs_control_hooks {
	/* GET /status: a malloc'd JSON body. 0 or -errno (then 500). */
	int (*status)(void *arg, char **body, size_t *len);
	/* GET /readyz: ready or not, and why not (into @why). */
	bool (*ready)(void *arg, char *why, size_t whylen);
	/* before GET /metrics renders (refresh the gauges); may be NULL */
	void (*refresh)(void *arg);
	void *arg;
};

/*
 * Listen on @addr ("ADDR:PORT", or ":PORT"/"PORT" for 127.0.0.1:PORT;
 * IPv4 or [IPv6]) and serve from a new thread. 0, or -errno with the
 * reason logged (bad address, port in use). Start it after any fork.
 */
int vs_control_start(struct vs_control **out, const char *addr);
/* The same with @hooks (copied; NULL: none). */
int vs_control_start_with(struct vs_control **out, const char *addr,
			  const struct vs_control_hooks *hooks);
/* The port @c listens on: the one asked for, or the one the kernel picked
 * for port 0 (tests). */
int vs_control_port(const struct vs_control *c);
/*
 * A client for the endpoint (vsync-mount --status): GET @path from @addr
 * (the same forms as vs_control_start()), HTTP/1.0, within @timeout_ms.
 * *status gets the HTTP status, *body (malloc'd, NUL-terminated) and *len
 * the body, at most 1 MiB. 0, or -errno (-EINVAL: a bad address,
 * -EBADMSG: not an HTTP answer).
 */
int vs_control_get(const char *addr, const char *path, int timeout_ms,
		   int *status, char **body, size_t *len);
/* Stop serving and join the thread. NULL is fine. */
void vs_control_stop(struct vs_control *c);

#endif
