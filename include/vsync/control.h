/*
 * control.h - the agent's control endpoint (agent/control.c): an HTTP
 * server (libwebsockets) on its own thread serving
 *   GET /healthz  200 "ok" while the process serves
 *   GET /readyz   200 "ready" once vs_metrics_is_ready(), else 503
 *   GET /metrics  vs_metrics_render(), text/plain; version=0.0.4
 *   anything else 404
 */
#ifndef VSYNC_CONTROL_H
#define VSYNC_CONTROL_H

struct vs_control;

/*
 * Listen on @addr ("ADDR:PORT", or ":PORT"/"PORT" for 127.0.0.1:PORT;
 * IPv4 or [IPv6]) and serve from a new thread. 0, or -errno with the
 * reason logged (bad address, port in use). Start it after any fork.
 */
int vs_control_start(struct vs_control **out, const char *addr);
/* The port @c listens on: the one asked for, or the one the kernel picked
 * for port 0 (tests). */
int vs_control_port(const struct vs_control *c);
/* Stop serving and join the thread. NULL is fine. */
void vs_control_stop(struct vs_control *c);

#endif
