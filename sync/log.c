/*
 * log.c - the one logger (see include/vsync/log.h).
 *
 * Each event is formatted into a stack buffer and written with one write(2)
 * so lines from different threads never interleave. Over-long messages are
 * cut and end in "...". The message is one logfmt value: control
 * characters in it (a file name from outside may hold a newline) become
 * '?' and double quotes single ones, so a line is always one event.
 *
 * With VS_LOG_JSON the same event is one JSON object built by jansson
 * (keys ts, prog, pid, level, msg, always all of them, in that order): the
 * message keeps its quotes and control characters (escaped by jansson),
 * and bytes that are not UTF-8 become '?' (vs_json_text). It is written
 * with one write(2) too.
 */
#include "vsync/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "vsync/clock.h"
#include "vsync/json.h"
#include "vsync/banned.h"

static volatile int log_level = VS_LOG_INFO;
static const char *log_prog = "vsync";
static volatile int log_format = VS_LOG_LOGFMT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void vs_log_set_level(enum vs_log_level level)
{
	log_level = level;
}

enum vs_log_level vs_log_get_level(void)
{
	return (enum vs_log_level)log_level;
}

void vs_log_set_prog(const char *prog)
{
	log_prog = prog;
}

void vs_log_set_format(enum vs_log_format f)
{
	log_format = f;
}

int vs_log_format_parse(const char *name)
{
	if (!strcmp(name, "logfmt"))
		return VS_LOG_LOGFMT;
	if (!strcmp(name, "json"))
		return VS_LOG_JSON;
	return -EINVAL;
}

/*
 * One JSON line: @ts the time text, @msg (@len bytes) the message. Falls
 * back to a fixed line without the message if jansson has no memory.
 */
static void log_json(const char *ts, enum vs_log_level level, const char *msg,
		     size_t len)
{
	json_t *o = json_object();
	char *text = NULL;
	size_t n = 0;

	if (o && json_object_set_new(o, "ts", json_string(ts)) == 0 &&
	    json_object_set_new(o, "prog", vs_json_str(log_prog)) == 0 &&
	    json_object_set_new(o, "pid", json_integer(getpid())) == 0 &&
	    json_object_set_new(o, "level", json_string(level_names[level])) ==
		0 &&
	    json_object_set_new(o, "msg", vs_json_text(msg, len)) == 0 &&
	    vs_json_dump(o, &text, &n) == 0) {
		text[n] = '\n'; /* over the NUL: written with its length */
		if (write(STDERR_FILENO, text, n + 1) < 0) {
			/* nowhere left to report it */
		}
	} else {
		static const char oom[] =
		    "{\"ts\":null,\"prog\":null,\"pid\":null,\"level\":"
		    "\"error\",\"msg\":\"log: out of memory\"}\n";

		if (write(STDERR_FILENO, oom, sizeof(oom) - 1) < 0) {
		}
	}
	free(text);
	json_decref(o);
}

void vs_vlog(enum vs_log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n, msg;
	int r;

	if ((int)level > log_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	if (log_format == VS_LOG_JSON) {
		char ts[64];

		snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (long)(tv.tv_usec / 1000));
		r = vsnprintf(line, sizeof(line), fmt, ap);
		if (r < 0)
			return;
		n = (size_t)r;
		if (n >= sizeof(line)) {
			n = sizeof(line) - 4;
			memcpy(line + n, "...", 3);
			n += 3;
		}
		while (n > 0 && line[n - 1] == '\n')
			n--;
		log_json(ts, level, line, n);
		return;
	}
	r = snprintf(
	    line, sizeof(line),
	    "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ prog=%s level=%s msg=\"",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (long)(tv.tv_usec / 1000), log_prog, level_names[level]);
	if (r < 0)
		return;
	n = msg = (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r < 0)
		return;
	if ((size_t)r >= sizeof(line) - n) {
		n = sizeof(line) - 6;
		memcpy(line + n, "...", 3);
		n += 3;
	} else {
		n += (size_t)r;
	}
	/* strip a trailing newline the caller may have put (libfuse does) */
	while (n > 0 && line[n - 1] == '\n')
		n--;
	/* one line per message, whatever a path from outside holds: control
	 * characters become '?', a double quote a single one */
	for (size_t i = msg; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f)
			line[i] = '?';
		else if (c == '"')
			line[i] = '\'';
	}
	line[n++] = '"';
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
}

void vs_log(enum vs_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vs_vlog(level, fmt, ap);
	va_end(ap);
}

void vs_bug(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vs_error("internal error: %s", msg);
	abort();
}

bool vs_log_due(atomic_int_least64_t *last, int every_ms)
{
	int_least64_t now = vs_mono_ms(), was = atomic_load(last);

	return (!was || now - was >= every_ms) &&
	       atomic_compare_exchange_strong(last, &was, now);
}
