/*
 * events.c - the live events ring (include/vsync/events.h).
 *
 * DESIGN
 *
 * A ring of the last VS_EVENTS_RING events under one mutex (`ev.lock`, a
 * leaf: only malloc/free and copies happen under it). Each slot holds the
 * event's id, the change seq it is about (change.applied only, else -1)
 * and its JSON text, built by jansson outside the lock; the id is given
 * under the lock, so ids are dense and in ring order, and the JSON gets
 * it spliced in front ({"id":N, ...}) as it is stored. After storing, the
 * wake function (the control endpoint's lws_cancel_service, which takes
 * the endpoint's lock: order ev.lock -> that lock) is called under the
 * lock, so vs_events_set_wake(NULL) guarantees no call is under way.
 */
#include "vsync/events.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "vsync/json.h"
#include "vsync/banned.h"

struct slot {
	uint64_t id;
	int64_t seq; /* change.applied: its change seq, else -1 */
	char *json;
	size_t len;
};

static struct {
	pthread_mutex_t lock;
	struct slot ring[VS_EVENTS_RING];
	uint64_t last;	  /* id of the newest event; the ring holds
			     max(1, last - RING + 1) .. last */
	uint64_t dropped; /* events that could not be built */
	void (*wake)(void *arg);
	void *wake_arg;
} ev = {.lock = PTHREAD_MUTEX_INITIALIZER};

void vs_events_set_wake(void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&ev.lock);
	ev.wake = fn;
	ev.wake_arg = arg;
	pthread_mutex_unlock(&ev.lock);
}

static void now_text(char *out, size_t size)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));
}

/* Store @o (consumed; "type" and the fields set) with an id and a time. */
static void emit(json_t *o, int64_t seq)
{
	char ts[64], *body = NULL, *text;
	size_t blen = 0, tlen;
	uint64_t id;
	struct slot *s;

	now_text(ts, sizeof(ts));
	if (!o || json_object_set_new(o, "ts", json_string(ts)) < 0 ||
	    vs_json_dump(o, &body, &blen) < 0 || blen < 2) {
		json_decref(o);
		free(body);
		pthread_mutex_lock(&ev.lock);
		ev.dropped++;
		pthread_mutex_unlock(&ev.lock);
		return;
	}
	json_decref(o);
	/* {"id":N,"dropped":D, + the rest of body after its '{' */
	tlen = blen + 64;
	text = malloc(tlen);
	pthread_mutex_lock(&ev.lock);
	if (!text) {
		ev.dropped++;
		pthread_mutex_unlock(&ev.lock);
		free(body);
		return;
	}
	id = ++ev.last;
	s = &ev.ring[id % VS_EVENTS_RING];
	free(s->json);
	s->id = id;
	s->seq = seq;
	if (ev.dropped)
		s->len = (size_t)snprintf(text, tlen,
					  "{\"id\":%" PRIu64
					  ",\"dropped\":%" PRIu64 ",%s",
					  id, ev.dropped, body + 1);
	else
		s->len = (size_t)snprintf(text, tlen, "{\"id\":%" PRIu64 ",%s",
					  id, body + 1);
	s->json = text;
	ev.dropped = 0;
	if (ev.wake)
		ev.wake(ev.wake_arg);
	pthread_mutex_unlock(&ev.lock);
	free(body);
}

static json_t *event_new(const char *type)
{
	json_t *o = json_object();

	if (o && json_object_set_new(o, "type", json_string(type)) < 0) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* Set @key of @o to @v (consumed); on failure @o is freed and NULL. */
static json_t *with(json_t *o, const char *key, json_t *v)
{
	if (!o) {
		json_decref(v);
		return NULL;
	}
	if (json_object_set_new(o, key, v) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

void vs_events_change(int64_t seq, const char *op, const char *path,
		      const char *old_path, int64_t lag_ms)
{
	json_t *o = event_new("change.applied");

	o = with(o, "seq", json_integer(seq));
	o = with(o, "op", json_string(op));
	o = with(o, "path", vs_json_str(path));
	if (old_path && old_path[0])
		o = with(o, "old_path", vs_json_str(old_path));
	o = with(o, "lag_ms", lag_ms < 0 ? json_null() : json_integer(lag_ms));
	emit(o, seq);
}

void vs_events_saved(const char *op, const char *path, int64_t seq,
		     int64_t version, bool merged)
{
	json_t *o = event_new("save.committed");

	o = with(o, "op", json_string(op));
	o = with(o, "path", vs_json_str(path));
	o = with(o, "seq", json_integer(seq));
	o = with(o, "version", json_integer(version));
	o = with(o, "merged", json_boolean(merged));
	emit(o, -1);
}

void vs_events_refused(const char *op, const char *path, int error)
{
	json_t *o = event_new("save.refused");

	o = with(o, "op", json_string(op));
	o = with(o, "path", vs_json_str(path));
	o = with(o, "error", json_string(strerror(error < 0 ? -error : error)));
	emit(o, -1);
}

void vs_events_conflict(const char *path, int64_t seq, int64_t overwrote,
			bool local)
{
	json_t *o = event_new("conflict");

	o = with(o, "path", vs_json_str(path));
	o = with(o, "seq", json_integer(seq));
	o = with(o, "overwrote", json_integer(overwrote));
	o = with(o, "by", json_string(local ? "this mount" : "elsewhere"));
	emit(o, -1);
}

void vs_events_backend(const char *backend, bool up)
{
	json_t *o = event_new(up ? "backend.up" : "backend.down");

	o = with(o, "backend", json_string(backend));
	emit(o, -1);
}

void vs_events_ready(int64_t ms)
{
	json_t *o = event_new("ready");

	o = with(o, "ms", json_integer(ms));
	emit(o, -1);
}

/* Under ev.lock: the oldest id the ring holds (ev.last + 1 when empty). */
static uint64_t oldest_locked(void)
{
	return ev.last >= VS_EVENTS_RING ? ev.last - VS_EVENTS_RING + 1 : 1;
}

int vs_events_next(uint64_t after, char **json, size_t *len, uint64_t *id)
{
	const struct slot *s;
	int r = 0;

	*json = NULL;
	*len = 0;
	pthread_mutex_lock(&ev.lock);
	if (after >= ev.last) {
		r = -EAGAIN;
	} else if (after + 1 < oldest_locked()) {
		*id = oldest_locked() - 1;
		r = -ERANGE;
	} else {
		s = &ev.ring[(after + 1) % VS_EVENTS_RING];
		*json = malloc(s->len + 1);
		if (!*json) {
			r = -ENOMEM;
		} else {
			memcpy(*json, s->json, s->len + 1);
			*len = s->len;
			*id = s->id;
		}
	}
	pthread_mutex_unlock(&ev.lock);
	return r;
}

uint64_t vs_events_last_id(void)
{
	uint64_t v;

	pthread_mutex_lock(&ev.lock);
	v = ev.last;
	pthread_mutex_unlock(&ev.lock);
	return v;
}

int vs_events_after_seq(int64_t seq, uint64_t *after)
{
	uint64_t at = 0;
	int r = 0;

	pthread_mutex_lock(&ev.lock);
	for (uint64_t id = oldest_locked(); id <= ev.last; id++) {
		const struct slot *s = &ev.ring[id % VS_EVENTS_RING];

		if (s->seq >= 0 && s->seq <= seq)
			at = id;
	}
	if (at == 0) {
		at = oldest_locked() - 1; /* replay what is kept */
		r = -ERANGE;
	}
	pthread_mutex_unlock(&ev.lock);
	*after = at;
	return r;
}

void vs_events_reset(void)
{
	pthread_mutex_lock(&ev.lock);
	for (size_t i = 0; i < VS_EVENTS_RING; i++) {
		free(ev.ring[i].json);
		ev.ring[i].json = NULL;
		ev.ring[i].id = 0;
	}
	ev.last = 0;
	ev.dropped = 0;
	pthread_mutex_unlock(&ev.lock);
}
