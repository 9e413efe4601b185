/*
 * log.c - the one logger (see include/vsync/log.h).
 *
 * Each event is formatted into a stack buffer and written with one write(2)
 * so lines from different threads never interleave. Over-long messages are
 * cut and end in "...". The message is one logfmt value: control
 * characters in it (a file name from outside may hold a newline) become
 * '?' and double quotes single ones, so a line is always one event.
 */
#include "vsync/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "vsync/banned.h"

static volatile int log_level = VS_LOG_INFO;
static const char *log_prog = "vsync";

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
