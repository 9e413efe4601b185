/*
 * cache.h - the local content-addressed cache in --cache-dir.
 *
 * Layout:
 *   <dir>/lock                         flock'd by the process using the
 *                                      dir; holds its pid
 *   <dir>/objects/<h0h1>/<64-hex>      verified content, named by SHA-256
 *                                      (the 256 <h0h1> made at init)
 *   <dir>/tmp/                         files being written (renamed in),
 *                                      <pid>.<n>; those of a process that
 *                                      is gone are removed at init
 *   <dir>/projects/<uuid>/manifest     last manifest seen (vs_manifest format)
 *   <dir>/projects/<uuid>/local/       local-only upper layer (node_modules
 * ...) <dir>/projects/<name> -> <uuid>    symlink, so a remount by name works
 * offline
 *
 * Objects are immutable once renamed into place. Thread-safe: every call
 * works on its own file descriptors.
 *
 * Objects may be evicted (evict.h) to keep objects/ under --cache-max:
 * an object is then fetched again like on a cold start. So nothing may
 * take "object present" for longer than the fd it opened: an fd keeps the
 * bytes (the inode) whatever happens to the name. The recency the evictor
 * goes by is an object's atime, set explicitly (not left to the mount's
 * atime options) by vs_cache_open() and when a store or link finds the
 * object there already.
 */
#ifndef VSYNC_CACHE_H
#define VSYNC_CACHE_H

#include <pthread.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "vsync/hash.h"
#include "vsync/util.h"

/* An object as this process knew it to hold its bytes (cache.c). */
struct vs_cache_known {
	char hash[VS_HASH_HEX_LEN + 1]; /* "" for an empty slot */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec ctime; /* any change to the inode moves it */
};

struct vs_cache {
	char *dir; /* owned */
	int dir_fd;
	pid_t pid; /* at init: the names of its temporary files */
	/* held across the rename or link that puts an object in place, the
	 * touch of one found there, and the evictor's check-and-unlink of
	 * one (vs_cache_evict_object): an object a save has just made or
	 * found is never removed under it */
	pthread_mutex_t evict_lock;
	/* one large object (over a chunk) fetched at a time, by whichever
	 * of the mount's readers and prefetchers needs it first: the others
	 * wait and find it made (content.c) */
	pthread_mutex_t fill_lock;
	/* estimate of the bytes of objects/ (allocated, st_blocks): added
	 * to by stores and links (less the object they replace), taken
	 * from by evictions and the removal of a corrupt object, set by
	 * the evictor's scans; may drift (other processes sharing the
	 * dir) */
	atomic_uint_least64_t bytes;
	/* vs_cache_watch: set before other threads use the cache */
	void (*over)(void *arg);
	void *over_arg;
	uint64_t limit;
	atomic_uint_least64_t over_at; /* vs_cache_watch_at */
	/* vs_cache_on_full: set before other threads use the cache */
	bool (*reclaim)(void *arg);
	void (*room)(void *arg);
	void *reclaim_arg;
	atomic_uint_least64_t room_gen; /* vs_cache_room_changed */
	/* vs_cache_store_open keeps content in memory only while the
	 * memfds held (vs_cache_mem_bytes) stay within this many bytes
	 * (VS_CACHE_MEM_TOTAL_DEFAULT unless set before other threads use
	 * the cache; --cache-mem-max) */
	uint64_t mem_max;
	/* under evict_lock: objects pinned by vs_cache_pin (a multiset) */
	char (*pins)[VS_HASH_HEX_LEN + 1];
	size_t npins, apins;
	/* under evict_lock (may be NULL: no memory): objects this process
	 * linked or checked, one slot per hash prefix, as they were then,
	 * so that a link that finds one unchanged need not hash it again
	 * (vs_cache_link) */
	struct vs_cache_known *known;
};

/* Create the layout under @dir if missing, and remove the temporary files
 * of processes that are gone (killed while writing one). 0 or -errno (the
 * dir is unusable); on failure nothing is held. */
int vs_cache_init(struct vs_cache *c, const char *dir);
void vs_cache_release(struct vs_cache *c);

/*
 * Take a lock of the cache dir: an exclusive flock(2) on @file (relative to
 * the cache dir; its directory must exist), a file that then holds the
 * taker's pid. A mount that follows its project takes "lock": one such
 * process at a time owns a cache dir (two agents sharing one would clobber
 * each other's journal and local files). A read-only mount of a past
 * version (vsync-mount --at) takes the lock of its own state directory
 * instead: it shares only the content objects, which are immutable and
 * written atomically. 0 and *fd_out, to keep open while the dir is in use
 * (closing it, or exiting, releases the lock); -EWOULDBLOCK if another
 * process holds it, with its pid in *holder (0 if it cannot be read);
 * other -errno. Nothing is logged; on failure nothing is held.
 */
int vs_cache_lock(struct vs_cache *c, const char *file, int *fd_out,
		  pid_t *holder);

/* "objects/ab/ab...." relative to the cache dir. Pure. */
void vs_cache_object_name(char out[8 + 3 + VS_HASH_HEX_LEN + 1],
			  const char *hash);

/*
 * Open object @hash read-only and check its bytes against the name.
 * 0 and *fd_out on success; -ENOENT if absent; -EBADMSG if the bytes do not
 * match or it is not a regular file (a symlink, a FIFO: never followed nor
 * waited on; the bad object is removed and a warning logged); other -errno.
 */
int vs_cache_open(struct vs_cache *c, const char *hash, int *fd_out);

/* Open object @hash read-only without checking its bytes, for a caller
 * that has just made it or checks what it reads itself: 0 and *@fd_out,
 * -ENOENT if absent, -EBADMSG if it is not a regular file (removed, as by
 * vs_cache_open), other -errno. */
int vs_cache_open_unchecked(struct vs_cache *c, const char *hash, int *fd_out);

/* Is object @hash present? (Not verified: vs_cache_open() does that.) */
bool vs_cache_has(struct vs_cache *c, const char *hash);

/*
 * Store @len bytes as object @hash after checking that they hash to it:
 * -EBADMSG if not (nothing written). Written to tmp/ then renamed, so a
 * reader never sees a partial object. A volume with no room is reclaimed
 * from (vs_cache_reclaim) and written again, as long as a reclaim frees
 * something. 0 or -errno (-ENOSPC ...).
 */
int vs_cache_store(struct vs_cache *c, const char *hash, const void *buf,
		   size_t len);

/*
 * vs_cache_store, and *@fd_out an fd of the bytes, read-only: the object's
 * (opened as it is made: not hashed again as vs_cache_open would), or, when the
 * cache dir's volume is full (ENOSPC or EDQUOT, even after vs_cache_reclaim)
 * and @len is at most VS_CACHE_MEM_MAX, a memfd holding them (checked the same
 * way; in memory, not in the cache), so that a read on a full disk still gets
 * what it asked for, as long as the memfds held stay within @c->mem_max
 * (vs_cache_mem_bytes; beyond it, the volume's error: the read fails until
 * room returns, rather than the process growing without bound). 0 or
 * -errno. With @fd_out NULL, vs_cache_store.
 */
#define VS_CACHE_MEM_MAX	   ((size_t)8 << 20)
#define VS_CACHE_MEM_TOTAL_DEFAULT ((uint64_t)128 << 20)
/*
 * *@fd_out a memfd holding @len bytes, sealed, after checking them against
 * @hash: content kept in memory and not stored in the cache (the cache
 * fetches it again if it is asked for by hash). 0, -EINVAL (not a hash),
 * -EBADMSG (the bytes do not match) or -errno.
 */
int vs_cache_memory_open(const char *hash, const void *buf, size_t len,
			 int *fd_out);
int vs_cache_store_open(struct vs_cache *c, const char *hash, const void *buf,
			size_t len, int *fd_out);

/*
 * Content kept in memfds (vs_cache_store_open on a full volume,
 * vs_cache_memory_open): whoever holds such an fd as content counts its
 * memory, vs_cache_mem_hold(+bytes) while it holds it and (-bytes) when
 * it lets it go; vs_cache_mem_bytes() is the sum, process-wide (one
 * mount per process). Any thread; atomic.
 */
void vs_cache_mem_hold(int64_t delta);
uint64_t vs_cache_mem_bytes(void);
/* Is @fd content the cache made in memory (a sealed memfd), not an
 * object on its volume? */
bool vs_cache_fd_in_memory(int fd);

/* Store the bytes of @fd (pread from offset 0, 1 MiB at a time) as object
 * @hash, checked as vs_cache_store does. */
int vs_cache_store_fd(struct vs_cache *c, const char *hash, int fd);

/*
 * An object written piece by piece (content too large to hold whole):
 * vs_cache_writer_open(), vs_cache_writer_add() for each piece in order,
 * then vs_cache_writer_commit(), which checks the bytes against @hash
 * (-EBADMSG if they differ) and renames them into place, or
 * vs_cache_writer_abort(). Both end the writer and remove what was written
 * unless it became the object. An open or add that finds the volume with
 * no room asks for a reclaim (vs_cache_reclaim) and tries again, as long
 * as a reclaim frees something (as vs_cache_store does).
 */
struct vs_cache_writer {
	struct vs_cache *c;
	char tmp[64];
	int fd;
	uint64_t len;
	struct vs_sha256 sha;
};
int vs_cache_writer_open(struct vs_cache *c, struct vs_cache_writer *w);
int vs_cache_writer_add(struct vs_cache_writer *w, const void *buf, size_t len);
int vs_cache_writer_commit(struct vs_cache_writer *w, const char *hash);
/* The same, and *@fd_out (when not NULL) an fd of the object, read-only:
 * its bytes were checked on the way in (no hash at vs_cache_open). */
int vs_cache_writer_commit_open(struct vs_cache_writer *w, const char *hash,
				int *fd_out);
void vs_cache_writer_abort(struct vs_cache_writer *w);

/*
 * Make open file @fd (an O_TMPFILE on the cache dir's file system, not
 * made with O_EXCL) object @hash by linking it into place: no copy. The
 * caller vouches that its bytes hash to @hash (not checked) and must not
 * write @fd again. 0; -EEXIST if the object is there already, holding
 * those bytes (@fd is untouched): an object this process linked or
 * hashed, unchanged since (the same inode and st_ctim), is taken as it
 * is, any other has its size, then its hash checked; one that does not
 * hold them (torn by a crash, planted in the cache dir) is replaced by
 * @fd (0); other -errno (EXDEV, no /proc ...): store a copy instead.
 */
int vs_cache_link(struct vs_cache *c, const char *hash, int fd);

/* The estimate of the bytes under objects/ (see struct vs_cache). */
uint64_t vs_cache_bytes(struct vs_cache *c);
/* Set it (the evictor, after measuring). */
void vs_cache_bytes_set(struct vs_cache *c, uint64_t bytes);
/* The same for a measure that found @measured and began when the estimate
 * was @seen: what was added since (stores during the measure, which it
 * may or may not have seen) stays added. */
void vs_cache_bytes_measured(struct vs_cache *c, uint64_t seen,
			     uint64_t measured);
/*
 * Call @over(@arg) on the thread of a store or link that takes the
 * estimate over @limit (from at or below it): the evictor's kick, which
 * must be quick and must not call the cache. Set (or cleared, @over NULL)
 * only while no other thread uses the cache.
 */
void vs_cache_watch(struct vs_cache *c, uint64_t limit, void (*over)(void *arg),
		    void *arg);
/*
 * Call @reclaim(@arg) when a write to the cache dir's volume fails for
 * want of room (vs_cache_reclaim): the evictor's pass, waited for by the
 * writer; true if it freed anything. Call @room(@arg) (may be NULL; quick,
 * must not call the cache) on vs_cache_room_changed(). Set (or cleared)
 * only while no other thread uses the cache.
 */
void vs_cache_on_full(struct vs_cache *c, bool (*reclaim)(void *arg),
		      void (*room)(void *arg), void *arg);
/*
 * A write to the cache dir's volume (an object, a working copy, a journal
 * entry) failed with ENOSPC or EDQUOT: make room now by evicting what the
 * evictor may (vs_cache_on_full; its thread scans, the caller waits a few
 * seconds at most). true if something was freed and the write is worth
 * one more try; false without an evictor. Any thread.
 */
bool vs_cache_reclaim(struct vs_cache *c);
/*
 * Something happened that may let a reclaim free what the last one could
 * not: a file removed (its object no longer in use), an entry committed
 * (its object no longer unsaved data). A reclaim that freed nothing makes
 * writers skip the next ones for a while; this ends that wait. Any
 * thread; an atomic add.
 */
void vs_cache_room_changed(struct vs_cache *c);
/* How many times vs_cache_room_changed() was called. */
uint64_t vs_cache_room_gen(struct vs_cache *c);
/* Is @r -ENOSPC or -EDQUOT (the cache dir's volume has no room)? */
static inline bool vs_cache_no_room(int r)
{
	return r == -ENOSPC || r == -EDQUOT;
}
/* Is the estimate at 90% of the watch's limit or more (what an eviction
 * pass brings it down to)? false without a watch. For work that only
 * fills the cache ahead of need (the prefetcher): past it, it would evict
 * what was fetched before it. */
bool vs_cache_nearly_full(struct vs_cache *c);
/* Move the point whose crossing calls the watch (initially its limit):
 * the evictor raises it while it cannot get under the limit, so that it
 * is called again once that much more is stored. Any thread. */
void vs_cache_watch_at(struct vs_cache *c, uint64_t at);

/*
 * Remove object @hash unless it is pinned or has been touched since
 * @atime_ns (its st_atim seen by the caller's scan, in ns): under
 * evict_lock, so a store or link of the same object is either before
 * (then the atime moved: -EBUSY, kept) or after (it makes the object
 * again). 0 and *@freed (its allocated bytes, taken off the estimate);
 * -EBUSY; -ENOENT; -errno.
 */
int vs_cache_evict_object(struct vs_cache *c, const char *hash,
			  int64_t atime_ns, uint64_t *freed);

/*
 * Pin object @hash: the evictor keeps it (whether or not it exists yet)
 * until as many vs_cache_unpin() calls. For a save, between making its
 * object and appending the journal entry that names it (from then on the
 * journal keeps it): vs_journal_put_content() pins, the appender unpins.
 * 0 or -ENOMEM (nothing pinned). Unpinning what is not pinned does
 * nothing.
 */
int vs_cache_pin(struct vs_cache *c, const char *hash);
void vs_cache_unpin(struct vs_cache *c, const char *hash);
/* Call @fn on each pinned hash, under evict_lock (@fn must not call the
 * cache); stops at, and returns, its first non-zero return. */
int vs_cache_pins_each(struct vs_cache *c,
		       int (*fn)(void *arg, const char *hash), void *arg);

/* Create (if missing) and open projects/<uuid>/<sub> as a directory;
 * @sub may be "" for the project dir itself. 0 and *fd_out, or -errno. */
int vs_cache_project_dir(struct vs_cache *c, const char *project_id,
			 const char *sub, int *fd_out);

/* Record the name -> uuid link (best effort) and resolve it back.
 * resolve: 0 and @out, or -ENOENT. */
int vs_cache_project_link(struct vs_cache *c, const char *name,
			  const char *project_id);
int vs_cache_project_resolve(struct vs_cache *c, const char *name,
			     char out[VS_UUID_BUFSZ]);

/* Atomically replace projects/<uuid>/<file> with @len bytes. */
int vs_cache_project_write(struct vs_cache *c, const char *project_id,
			   const char *file, const void *buf, size_t len);
/* Read projects/<uuid>/<file> into a malloc'd buffer. -ENOENT if absent,
 * -EBADMSG if it is not a regular file (never followed or waited on). */
int vs_cache_project_read(struct vs_cache *c, const char *project_id,
			  const char *file, char **buf, size_t *len);

#endif
