/*
 * relay.h - vsync-relay: committed changes in PostgreSQL -> Redis cache
 * entries, stream events and pub/sub events (docs/protocol.md, "Redis").
 *
 * The relay is stateless: its only state is in Redis (relay:{id}:cursor),
 * and any number of relays may run at once. Each change is published by
 * one Lua script that appends events:{id} with the explicit entry id
 * "<seq>-0"; Redis rejects an id that is not above the stream's last one,
 * so a change another relay already published is never appended twice,
 * and the same script applies the change to manifest:{id} and moves the
 * cursor only when its XADD succeeded. See sync/relay.c for the design.
 *
 * The pure helpers below (entry and event formats, backoff) have no I/O
 * so the unit tests can call them directly.
 */
#ifndef VSYNC_RELAY_H
#define VSYNC_RELAY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "vsync/change.h"
#include "vsync/manifest.h"

struct vs_sign_key;

struct vs_relay_config {
	const char *pg_conninfo; /* NULL: libpq defaults */
	const char *redis_url;	 /* required */
	int timeout_ms;		 /* deadline of each backend call */
	int poll_interval_ms;	 /* full scan of every project this often */
	int batch;		 /* changes read per feed query */
	uint64_t blob_max;	 /* larger content is not put in Redis */
	int blob_ttl_s;		 /* TTL of blob:{id}:<hash> keys */
	long stream_maxlen;	 /* XADD MAXLEN ~ */
	int once;		 /* publish what is pending, then return */
	/* sign stream entries and manifest values (sign.h); NULL: unsigned */
	const struct vs_sign_key *sign_key;
	/*
	 * Stop request: the caller's signal handler sets *stop. The caller
	 * keeps @stop_signals blocked while vs_relay_run() runs; the relay
	 * unblocks them only while it waits (ppoll), and checks for them
	 * (pending) between two changes, so a change is always finished.
	 */
	volatile sig_atomic_t *stop;
	const sigset_t *stop_signals;
};

/*
 * Run until *stop (0) or, with @once, until every project's pending
 * changes are published (0) or a backend fails (-errno, logged). Without
 * @once, backend failures are retried with backoff forever.
 */
int vs_relay_run(const struct vs_relay_config *cfg);

/*
 * The manifest:{id} hash value of @e (its field is e->path):
 *   "<kind> <mode-octal> <size> <version> <mtime_ns> <hash or ->"
 * followed, for a symlink only, by one space and the target (the rest of
 * the value; it may contain spaces). Returns the length, or -ENOSPC if
 * @size is too small (VS_RELAY_ENTRY_MAX always suffices).
 */
#define VS_RELAY_ENTRY_MAX (128 + VS_PATH_MAX)
int vs_relay_entry_format(char *out, size_t size,
			  const struct vs_manifest_entry *e);
/* Parse such a value back into @e (e->path untouched, e->target pointing
 * into @value). 0 or -EBADMSG. */
int vs_relay_entry_parse(struct vs_manifest_entry *e, const char *value,
			 size_t len);

/*
 * The pub/sub event (JSON, one object) for change @c of @project_id:
 *   {"type":"file.updated","project_id":"…","path":"…","old_path":null,
 *    "kind":"file","version":3,"checksum":"…"|null,"author":"…",
 *    ["conflict":M, only when the change overwrote version M],
 *    "timestamp":"2026-11-26T02:45:38.123Z","seq":42}
 * type: file.created (create, mkdir), file.updated (update, rollback),
 * file.deleted, file.renamed. Returns the length or -ENOSPC.
 */
#define VS_RELAY_EVENT_MAX 65536
int vs_relay_event_json(char *out, size_t size, const struct vs_change *c,
			const char *project_id);

#endif
