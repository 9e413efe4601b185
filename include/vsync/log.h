/*
 * log.h - the one logger of every vsync program.
 *
 * One event per line on stderr (or syslog-less journald capture), in
 * key=value form:  "ts=2026-11-26T02:45:38.123Z level=warn msg=..." ,
 * or with VS_LOG_JSON one JSON object per line with the same keys in every
 * line, in this order:
 *   {"ts":"2026-11-26T02:45:38.123Z","prog":"vsync-mount","pid":42,
 *    "level":"warn","msg":"..."}
 * Thread-safe: each line is written with a single write(2).
 * Installed into libfuse with fuse_set_log_func() by the mount program so
 * libfuse's own messages go through it too.
 */
#ifndef VSYNC_LOG_H
#define VSYNC_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

enum vs_log_level {
	VS_LOG_ERROR = 0,
	VS_LOG_WARN = 1,
	VS_LOG_INFO = 2,
	VS_LOG_DEBUG = 3,
};

/* Messages above @level are dropped. Default: VS_LOG_INFO. */
void vs_log_set_level(enum vs_log_level level);
enum vs_log_level vs_log_get_level(void);
/* Program name written as "prog=" on every line (pointer kept, not copied). */
void vs_log_set_prog(const char *prog);

enum vs_log_format {
	VS_LOG_LOGFMT = 0, /* key=value (the default) */
	VS_LOG_JSON = 1,   /* one JSON object per line (jansson) */
};
void vs_log_set_format(enum vs_log_format f);
/* "logfmt" or "json" (--log-format): the format, or -EINVAL. */
int vs_log_format_parse(const char *name);

void vs_log(enum vs_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void vs_vlog(enum vs_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define vs_error(...) vs_log(VS_LOG_ERROR, __VA_ARGS__)
#define vs_warn(...)  vs_log(VS_LOG_WARN, __VA_ARGS__)
#define vs_info(...)  vs_log(VS_LOG_INFO, __VA_ARGS__)
#define vs_debug(...)                                                          \
	do {                                                                   \
		if (vs_log_get_level() >= VS_LOG_DEBUG)                        \
			vs_log(VS_LOG_DEBUG, __VA_ARGS__);                     \
	} while (0)

/*
 * For a line that every request could log (a full volume, say): true at
 * most once per @every_ms for the same @last (a static, 0 at first),
 * across threads. The line should say when the next may come.
 */
bool vs_log_due(atomic_int_least64_t *last, int every_ms);

/* Log "internal error: ..." and abort(): for states that cannot happen. */
void vs_bug(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
