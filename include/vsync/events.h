/*
 * events.h - the mount's live events (sync/events.c), served one JSON
 * object per WebSocket message at GET /events on the control endpoint
 * (docs/protocol.md, "Live events").
 *
 * A process-wide bounded ring: any thread emits (the change follower, the
 * write-back, the prefetcher, the status registry), the control endpoint
 * reads with a cursor of its own per client. Every event gets an id, 1, 2,
 * 3 ... in emission order within the process; a client resumes after the
 * last id it saw, or after a change seq. Emitting never blocks on a
 * reader and never fails the caller (an event that cannot be built is
 * dropped and counted in the next one's "dropped").
 */
#ifndef VSYNC_EVENTS_H
#define VSYNC_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Events kept for resuming. */
#define VS_EVENTS_RING 1024

/* ---- emitting (any thread) --------------------------------------------- */

/* change.applied: change @seq (@op, @path, @old_path for a rename, else
 * NULL or "") applied @lag_ms after its commit (-1: unknown). */
void vs_events_change(int64_t seq, const char *op, const char *path,
		      const char *old_path, int64_t lag_ms);
/* save.committed: a local save of @path (@op) became change @seq,
 * version @version (@merged: a three-way merge was committed). */
void vs_events_saved(const char *op, const char *path, int64_t seq,
		     int64_t version, bool merged);
/* save.refused: PostgreSQL refused a local save of @path for good. */
void vs_events_refused(const char *op, const char *path, int error);
/* conflict: change @seq of @path overwrote version @overwrote, which stays
 * in history; @local: the change was this mount's save (else made
 * elsewhere and applied here). */
void vs_events_conflict(const char *path, int64_t seq, int64_t overwrote,
			bool local);
/* backend.down / backend.up: the change follower lost or regained
 * @backend ("redis", "postgres"). */
void vs_events_backend(const char *backend, bool up);
/* ready: the critical files are local, @ms after the start. */
void vs_events_ready(int64_t ms);

/* Called after each event is added, under the ring's lock (so it never
 * runs after vs_events_set_wake(NULL) returned: it must not call back
 * into this module), to wake the reader; NULL: none. */
void vs_events_set_wake(void (*fn)(void *arg), void *arg);

/* ---- reading (the control endpoint) ------------------------------------ */

/*
 * The event after id @after: 0 with a malloc'd copy of its JSON in
 * *json and *len, and its id in *id; -EAGAIN if there is none yet; -ERANGE if
 * events after @after were dropped from the ring (then *id is the id to
 * continue after: the oldest kept, minus one, and nothing is returned).
 */
int vs_events_next(uint64_t after, char **json, size_t *len, uint64_t *id);
/* The id of the newest event (0: none yet). */
uint64_t vs_events_last_id(void);
/*
 * Where to resume for a client that has applied change @seq: into *after
 * the id of the newest change.applied at or below @seq (the events after
 * it followed that change). 0, or -ERANGE when the ring holds none (the
 * change came before this process or was dropped from the ring): then
 * *after is the oldest id kept minus one, to replay all that is kept.
 */
int vs_events_after_seq(int64_t seq, uint64_t *after);

/* Forget every event and start the ids at 1 again (tests). */
void vs_events_reset(void);

#endif
