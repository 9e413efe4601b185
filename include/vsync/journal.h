/*
 * journal.h - local changes to synced paths not yet committed to
 * PostgreSQL (sync/journal.c).
 *
 * A directory of one file per operation, named by a local sequence number,
 * written to a temp name and renamed, so an operation is either wholly in
 * the journal or not at all. An append does not fsync: vs_journal_sync()
 * makes a group of entries durable at once (their content objects first,
 * then the entries, then the directory), off the path of a save at
 * close(2); the committer may commit an entry to PostgreSQL before it is
 * durable here (its replay is a no-op). File content is not in the journal
 * entry: it is a cache object (by SHA-256), stored before the entry that names
 * it. After a crash the entries are replayed in order with their original
 * operation ids, so nothing is committed twice (the SQL functions are
 * idempotent per id) and nothing synced is lost; an entry appended after the
 * last sync may be lost or torn (a torn one is set aside, see journal.c).
 *
 * Thread-safe (one mutex).
 */
#ifndef VSYNC_JOURNAL_H
#define VSYNC_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vsync/hash.h"
#include "vsync/path.h"
#include "vsync/util.h"

enum vs_jop {
	VS_JOP_WRITE = 0,   /* put file content (hash, size, mode) at path */
	VS_JOP_SYMLINK = 1, /* put a symlink (target) at path */
	VS_JOP_MKDIR = 2,   /* mkdir path (mode) */
	VS_JOP_DELETE = 3,  /* delete path (recursive for a directory) */
	VS_JOP_RENAME = 4,  /* rename old_path -> path */
};

struct vs_jentry {
	uint64_t lseq;		   /* set by vs_journal_append */
	char op_id[VS_UUID_BUFSZ]; /* UUID text, the idempotency key */
	enum vs_jop op;
	char path[VS_PATH_MAX + 1];
	char old_path[VS_PATH_MAX + 1]; /* rename */
	char target[VS_PATH_MAX + 1];	/* symlink */
	uint32_t mode;
	/* -1: none (unconditional). A RENAME's is the version of the file
	 * it moves, when known (-1 for a directory), for the mount: the
	 * rename itself is committed unconditionally */
	int64_t base_version;
	/* WRITE/SYMLINK: when not "", the base is the version that journal
	 * operation @after_op produced (a chain of local saves of one path
	 * journaled before the previous one was committed); look it up in
	 * file_operations by operation id. Takes precedence over
	 * base_version. */
	char after_op[VS_UUID_BUFSZ];
	/* DELETE: when > 0, the newest change the mount had applied when
	 * the path was deleted here: what someone else changed there after
	 * it stays (vsync_delete's p_seen_seq); 0: delete whatever is there
	 * (entries of older versions, and deletes the mount makes for
	 * PostgreSQL's sake) */
	int64_t seen_seq;
	char hash[VS_HASH_HEX_LEN + 1]; /* write: content object */
	uint64_t size;
};

/* Upper bound of a formatted entry (three paths at most plus the fields):
 * a buffer of this size always holds vs_jentry_format()'s output. */
#define VS_JENTRY_MAX (3 * (VS_PATH_MAX + 32) + 512)

/* Entries (of up to 4 KiB: every unlink, mkdir or rename of paths under
 * about 1 KiB each) that can be journaled when the journal's volume is
 * full: the room kept, in files allocated ahead, at open and after. */
#define VS_JOURNAL_ROOM_ENTRIES 64

struct vs_journal;
struct vs_cache;

/* Open (creating) the journal in directory @dir_fd (borrowed). Scans what
 * is there; a malformed entry is moved aside to <name>.bad with a log line.
 * @cache (borrowed, may be NULL if no entry names an object) holds the
 * content objects of WRITE entries: vs_journal_sync() fsyncs them. 0 or
 * -errno. */
int vs_journal_open(struct vs_journal **out, int dir_fd,
		    struct vs_cache *cache);
void vs_journal_free(struct vs_journal *j);
/* Make the room kept for a full disk (VS_JOURNAL_ROOM_ENTRIES) if it is
 * not there yet: files created and allocated, 1-3 ms the first time, so
 * not in vs_journal_open() (the mount's way to ready). Best effort; after
 * a short one, each vs_journal_done() tries again. */
void vs_journal_keep_room(struct vs_journal *j);

/* Append @e (a fresh op_id is made if e->op_id is empty); sets e->lseq.
 * When it returns 0 the entry is written and renamed, in lseq order (a
 * reader or a process started after a SIGKILL sees it), but durable only
 * once vs_journal_sync() covers it (call it without holding a lock other
 * appenders need: that is the group commit).
 * -EINVAL for an invalid entry, -errno (-ENOSPC ...) otherwise; on failure
 * nothing is left on disk or pending, and nothing is logged (the caller
 * says what it was doing). */
int vs_journal_append(struct vs_journal *j, struct vs_jentry *e);
/* vs_journal_append() in two steps, so that the slow one runs outside the
 * caller's lock: reserve gives @e its lseq (its place in the journal's
 * order; cheap, -ENOMEM only), append_reserved writes and renames it,
 * waiting for the entries reserved before it to be renamed or given up. Every
 * reservation must be followed by one append_reserved (which gives it up when
 * it fails). The same results as vs_journal_append(). */
int vs_journal_reserve(struct vs_journal *j, struct vs_jentry *e);
int vs_journal_append_reserved(struct vs_journal *j, struct vs_jentry *e);
/* Make every entry up to @lseq durable (0: every entry appended so far),
 * with the content objects they name: fsyncs shared by the threads that
 * sync at the same time (it covers every entry renamed before it
 * started). 0, or -errno with a log line; the entries stay pending then
 * (a later sync may still make them durable). */
int vs_journal_sync(struct vs_journal *j, uint64_t lseq);
/* Every entry up to this lseq is durable (vs_journal_each() also visits
 * entries that are not yet). */
uint64_t vs_journal_synced(struct vs_journal *j);
/* The oldest pending entry into @e, durable or not (the committer may
 * commit it first: a replay is a no-op; vs_journal_sync() makes what has
 * to wait durable): 0, -ENOENT if none, or -errno. */
int vs_journal_peek(struct vs_journal *j, struct vs_jentry *e);
/* Remove entry @lseq (committed). 0 or -errno. */
int vs_journal_done(struct vs_journal *j, uint64_t lseq);
/* Call @fn on each pending entry, oldest first (unreadable ones are
 * skipped with a log line); stops at the first non-zero return of @fn and
 * returns it. 0 or -ENOMEM otherwise. */
int vs_journal_each(struct vs_journal *j,
		    int (*fn)(void *arg, const struct vs_jentry *e), void *arg);
/*
 * Call @fn with the content object of each WRITE entry in journal
 * directory @dir_fd (borrowed), whether or not a vs_journal has it open:
 * the entry files and the ones being written ("<lseq>.tmp"), read from
 * the directory as it is (an entry renamed meanwhile may be missed; the
 * caller allows for that). For the cache's evictor, which keeps these
 * objects, including those of other projects' journals in the same cache
 * dir. Entries gone meanwhile (-ENOENT) or malformed (never replayed) are
 * skipped. Stops at the first non-zero return of @fn and returns it; 0,
 * or -errno if the directory or an entry cannot be read.
 */
int vs_journal_dir_hashes(int dir_fd, int (*fn)(void *arg, const char *hash),
			  void *arg);
/* Pending entries. */
size_t vs_journal_pending(struct vs_journal *j);
/* The lseq of the oldest pending entry, or the lseq the next append will
 * get if none is pending: every entry below it is done. */
uint64_t vs_journal_low_water(struct vs_journal *j);
/* When the oldest pending entry was journaled (its file's mtime, wall
 * clock ms, so it survives a restart) into *@ms: 0, -ENOENT if none is
 * pending, or -errno. */
int vs_journal_oldest_ms(struct vs_journal *j, int64_t *ms);

/*
 * For appenders: make @len bytes at @buf a cache object, so a WRITE entry
 * naming it may be appended. When @fd >= 0 (a linkable O_TMPFILE holding
 * exactly those bytes) it is linked into place (vs_cache_link: no copy,
 * no new inode), else the bytes are stored (vs_cache_store). Not fsync'd:
 * vs_journal_sync() makes it durable with the entry (the journal's @cache
 * must be @c). Sets @hash_out. 1 if @fd became the object (the caller
 * must not write it again), 0 if the object is there otherwise, or
 * -errno. On success the object is pinned (vs_cache_pin: the cache's
 * evictor keeps it): the caller unpins it (vs_cache_unpin) once the entry
 * naming it is appended or given up; on failure nothing is pinned.
 */
int vs_journal_put_content(struct vs_cache *c, const void *buf, size_t len,
			   int fd, char hash_out[VS_HASH_HEX_LEN + 1]);
/* The same for the bytes of @fd (read with pread from offset 0, never
 * whole in memory: a file of any size): linked when @linkable, else
 * copied (vs_cache_store_fd). */
int vs_journal_put_content_fd(struct vs_cache *c, int fd, bool linkable,
			      char hash_out[VS_HASH_HEX_LEN + 1]);

/*
 * Pure: serialise / parse one entry (the file format, see journal.c).
 * format: the length written (a NUL follows it), -EINVAL if @e is not a
 * valid entry (bad path, op, op_id, fields that do not belong to the op),
 * -ENOBUFS if @size is too small (VS_JENTRY_MAX always suffices).
 * parse: 0, or -EBADMSG for anything that is not exactly one valid entry
 * (@e is then unspecified).
 */
int vs_jentry_format(char *out, size_t size, const struct vs_jentry *e);
int vs_jentry_parse(struct vs_jentry *e, const char *buf, size_t len);

/* A random UUID (OpenSSL RAND_bytes), as text. 0 or -EIO. */
int vs_uuid_random(char out[VS_UUID_BUFSZ]);

#endif
