/*
 * unit_check.h - assertion helpers shared by the cmocka unit tests.
 *
 * cmocka's own assert_int_equal() prints two bare numbers; these helpers
 * print what was being checked (a printf-style description), what was
 * expected and what was seen, with errno names for 0/-errno results:
 *
 *   vs_path_check("a//b", 4): expected -22 (EINVAL), got 0 (OK)
 *
 * Include after the system headers; it pulls in cmocka.h itself.
 */
#ifndef VSYNC_UNIT_CHECK_H
#define VSYNC_UNIT_CHECK_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

/* "OK" for 0, "EINVAL" for -22, "" for anything else. */
static inline const char *unit_errname(long long r)
{
	const char *n;

	if (r == 0)
		return "OK";
	if (r < 0 && r > -4096 && (n = strerrorname_np((int)-r)))
		return n;
	return "?";
}

/* Format the description of a check; long ones are cut (quietly: going
 * through vsnprintf keeps -Wformat-truncation out of every check). */
static inline void __attribute__((format(printf, 3, 4)))
unit_what(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* A 0/-errno result: check_ret(-EINVAL, f(x), "f(%s)", x) */
#define check_ret(want, got, ...)                                              \
	do {                                                                   \
		long long w_ = (want), g_ = (got);                             \
		if (w_ != g_) {                                                \
			char what_[1024];                                      \
			unit_what(what_, sizeof(what_), __VA_ARGS__);          \
			fail_msg("%s: expected %lld (%s), got %lld (%s)",      \
				 what_, w_, unit_errname(w_), g_,              \
				 unit_errname(g_));                            \
		}                                                              \
	} while (0)

/* Any integer value. */
#define check_int(want, got, ...)                                              \
	do {                                                                   \
		long long w_ = (long long)(want), g_ = (long long)(got);       \
		if (w_ != g_) {                                                \
			char what_[1024];                                      \
			unit_what(what_, sizeof(what_), __VA_ARGS__);          \
			fail_msg("%s: expected %lld, got %lld", what_, w_,     \
				 g_);                                          \
		}                                                              \
	} while (0)

/* A boolean. */
#define check_bool(want, got, ...)                                             \
	do {                                                                   \
		int w_ = !!(want), g_ = !!(got);                               \
		if (w_ != g_) {                                                \
			char what_[1024];                                      \
			unit_what(what_, sizeof(what_), __VA_ARGS__);          \
			fail_msg("%s: expected %s, got %s", what_,             \
				 w_ ? "true" : "false",                        \
				 g_ ? "true" : "false");                       \
		}                                                              \
	} while (0)

/* A NUL-terminated string; a NULL @got is reported as (null). */
#define check_str(want, got, ...)                                              \
	do {                                                                   \
		const char *w_ = (want), *g_ = (got);                          \
		if (!g_ || strcmp(w_, g_) != 0) {                              \
			char what_[1024];                                      \
			unit_what(what_, sizeof(what_), __VA_ARGS__);          \
			fail_msg("%s: expected \"%s\", got \"%s\"", what_, w_, \
				 g_ ? g_ : "(null)");                          \
		}                                                              \
	} while (0)

/* A pointer that must be the given one (or NULL). */
#define check_ptr(want, got, ...)                                              \
	do {                                                                   \
		const void *w_ = (want), *g_ = (got);                          \
		if (w_ != g_) {                                                \
			char what_[1024];                                      \
			unit_what(what_, sizeof(what_), __VA_ARGS__);          \
			fail_msg("%s: expected %p, got %p", what_, w_, g_);    \
		}                                                              \
	} while (0)

/* Run @fn(@arg) on a thread and wait 5 s at most: a failure naming
 * @what when it has not returned (it hangs: the thread is left behind,
 * the process ends with the test). For a call that must not block. */
static inline void run_within(void *(*fn)(void *), void *arg, const char *what)
{
	struct timespec ts;
	pthread_t t;

	assert_int_equal(0, pthread_create(&t, NULL, fn, arg));
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	if (pthread_timedjoin_np(t, NULL, &ts) != 0)
		fail_msg("%s has not returned within 5 s", what);
}

#endif
