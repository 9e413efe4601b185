/*
 * clock.h - the monotonic clock, for deadlines and durations, and the
 * wall clock, for comparing with times from elsewhere (a change's commit
 * time). The one place every module reads them from.
 */
#ifndef VSYNC_CLOCK_H
#define VSYNC_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC (never jumps with the wall clock). */
static inline int64_t vs_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Microseconds on CLOCK_MONOTONIC. */
static inline uint64_t vs_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* @ts = monotonic millisecond @at_ms (a vs_mono_ms() time), for
 * pthread_cond_timedwait() on a condition variable made with
 * pthread_condattr_setclock(CLOCK_MONOTONIC). */
static inline void vs_mono_ts(struct timespec *ts, int64_t at_ms)
{
	ts->tv_sec = (time_t)(at_ms / 1000);
	ts->tv_nsec = (long)(at_ms % 1000) * 1000000L;
}

/* @cond, made to time its waits on CLOCK_MONOTONIC (deadlines from
 * vs_mono_ts), so that a step of the wall clock (NTP setting it at boot)
 * neither stretches nor cuts them. 0 or an errno. */
static inline int vs_cond_init_mono(pthread_cond_t *cond)
{
	pthread_condattr_t ca;
	int r = pthread_condattr_init(&ca);

	if (r)
		return r;
	r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!r)
		r = pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
	return r;
}

/* Milliseconds since the epoch on CLOCK_REALTIME (jumps with the wall
 * clock: only for comparing with other machines' timestamps). */
static inline int64_t vs_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nanoseconds since the epoch on CLOCK_REALTIME: the times a file shows
 * (mtime, ctime), which compare with other machines' and the kernel's. */
static inline int64_t vs_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
