/*
 * inode_i.h - the inode table of the FUSE layer (internal to fuse/).
 *
 * Two kinds of inodes:
 *  - synced: built from the manifest at mount; metadata lives here and only
 *    here, so lookup/getattr/readdir never touch the network. Permanent for
 *    the life of the mount (until live updates remove them).
 *  - local: a file, directory or special file under a local-only path
 *    (node_modules ...), backed by the upper directory. It holds an O_PATH
 *    fd on its upper file (@fd), so local.c reaches it with *at() calls
 *    whatever renames happened since, and it is keyed by that file's
 *    st_dev/st_ino, so a lookup by any name or hard link finds the inode
 *    the kernel already knows. Its nlookup is the kernel's lookup count
 *    and nothing else; it is freed, and its fd closed, when the kernel
 *    forgets it (nlookup == 0). It has no parent or name here: the kernel
 *    keeps the names.
 *
 * LOCKING. One mutex, table->lock, protects: the ino hash, the local-ino
 * hash, every inode's parent/name/children/nlookup/removed, and the synced
 * metadata. A local inode's fd, upper_dev and upper_ino are set before it
 * is published in the hashes and never change: they are read without the
 * lock while the kernel holds the inode (it sends no FORGET while a
 * request on it is running). Each inode's content fd is guarded by an
 * rwlock, its fd_lock (inode_fd_lock): readers hold it shared while they read
 * from the fd, the first read holds it exclusive while it fetches and the
 * updater holds it exclusive to swap in new content, so an fd is never closed
 * under a reader. The fd_locks are striped: an inode's is one of
 * INODE_FD_LOCKS, chosen by its ino (a lock of its own cost every inode 56
 * bytes, 2.9 MB for 50,000 files), so a slow fetch of one file blocks requests
 * on the few others that share its lock (1 in INODE_FD_LOCKS), none else. So
 * that two inodes may share one, a thread never holds the fd_locks of two
 * inodes at once, only tries another's (inode_content_reclaim). Lock order:
 * fd_lock -> table->lock (never the reverse). No lock is held across a kernel
 * notification or a call through the mountpoint.
 */
#ifndef VSYNC_FUSE_INODE_I_H
#define VSYNC_FUSE_INODE_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vsync/manifest.h"
#include "vsync/util.h"

/*
 * The state of a file's saves, its failed writes and its renames, which a
 * file never written or renamed on this mount does not use: kept apart
 * (vs_inode.save) so that an inode does not carry it. An inode gets one
 * the first time one of its fields is set (inode_save_get, table lock
 * held), and keeps it until the inode is freed; without one, each field
 * reads as zero ("", 0: inode_save_r). The locks named below are those of
 * the inode, as are @hash, @version and wfailed. An inode in the table's
 * list of those with a pending op (pnext) always has one.
 */
struct vs_inode_save {
	/* the journal entry (a save or rename of it) not yet committed, and
	 * its op id ("": none). Set and cleared with inode_pending_set only,
	 * under fd_lock and the table lock (read under either): pnext and
	 * pprev link its inode into the table's list of inodes with one while
	 * set, so that the commit finds it whatever its path has become
	 * (inode_pending_find) */
	uint64_t pending_lseq;
	char pending_op[VS_UUID_BUFSZ];
	/* the lseq of the newest rename of it among them, 0: none:
	 * PostgreSQL does not have it at its path yet (set with the rename's
	 * pending op; cleared when that rename is committed, even with a
	 * later op pending (inode_moved_find), or with the last op; same
	 * locks) */
	uint64_t pending_moved;
	struct vs_inode *pnext, **pprev;
	/* the bytes of the newest save of the file (journaled, or committed
	 * without the file taking them: written since) when @hash does not
	 * have them yet, "" otherwise: what a failed write reverts to
	 * (write.c, revert_locked); with no save pending, the bytes of
	 * @version unless that save was merged (update.c, keeps). Set under
	 * fd_lock and the table lock (read under either). */
	char saved_hash[VS_HASH_HEX_LEN + 1];
	uint64_t saved_size;
	/* the bytes of the version the pending save is based on, @version
	 * (that of the first save of a chain of them) when @hash does not
	 * have them: a save committed before it without the file taking
	 * its bytes (inode_committed_hash when it was journaled); "":
	 * @hash's. For its record (write.c, landed_note). Same locks as
	 * saved_hash. */
	char base_hash[VS_HASH_HEX_LEN + 1];
	/* while wfailed: the newest remote version that came meanwhile,
	 * left unapplied (update.c), which the revert goes back to instead
	 * of the last saved one (write.c, revert_locked); theirs_version 0:
	 * none. Under the table lock. */
	int64_t theirs_version, theirs_mtime_ns;
	uint64_t theirs_size;
	uint32_t theirs_mode;
	char theirs_hash[VS_HASH_HEX_LEN + 1];
	/* what PostgreSQL had at the path that rename moved it to, a file
	 * it replaced (inode_committed_*): its version there (0: nothing,
	 * or not known), mtime, mode and bytes, for the rename's record
	 * (write.c, landed_note). Set with pending_moved; same locks as
	 * it (fd_lock and the table lock). */
	int64_t over_version, over_mtime_ns;
	uint32_t over_mode;
	char over_hash[VS_HASH_HEX_LEN + 1];
	/* the wait before a save refused at a directory is made again
	 * where the file stays (write.c, dirty_mark_refused): grows at each
	 * refusal, starts over once a save of it is committed; all zero
	 * until its first refusal. Under fd_lock (exclusive). */
	struct vs_backoff refused;
};

struct vs_inode {
	uint64_t ino;
	struct vs_inode *parent; /* NULL for the root and local inodes */
	char *name;		 /* "" for the root and local inodes */
	enum vs_kind kind;
	bool local;	     /* lives in the upper layer */
	bool removed;	     /* synced, unlinked: freed at nlookup 0 */
	bool replaced;	     /* removed: a new inode took its name */
	atomic_bool learned; /* first open or read recorded (set under fs
				learn_lock; read unlocked first) */
	uint64_t nlookup;    /* kernel lookup count */

	/* synced metadata */
	uint64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns; /* synced: status change, if after mtime_ns */
	int64_t atime_ns; /* set by utimensat (local only); else mtime */
	int64_t version;
	char hash[VS_HASH_HEX_LEN + 1];
	bool atime_set;
	/* owner kept per mount, never synced (owner.c); !owned: the
	 * mount's owner */
	bool owned;
	bool dir_mode_local; /* a directory's chmod, kept there too (the
				mode of a directory is not synced) */
	uint32_t mode;	     /* permission bits */
	union {
		/* synced directories: children sorted by name */
		struct vs_inode **children;
		char *target; /* symlinks: the target */
	};
	uint32_t nchildren, children_alloc; /* (directories) */
	uint32_t uid, gid;		    /* owned: its owner */

	/* synced files: verified content, opened by the first read */
	uint32_t fd_mem; /* synced: @fd is a memfd holding about this many
			    pages of memory, 0: not (inode_content_set) */
	int fd;		 /* -1 until opened; protected by fd_lock (local inodes:
			    the O_PATH fd on the upper file, see the top) */

	/* synced files written here (--writable), protected by fd_lock:
	 * the working copy (an O_TMPFILE in the cache dir) while local
	 * changes exist, its write generation and the generation last
	 * journaled (the journal operation not yet committed is in its
	 * save state: pending_op) */
	int wfd;
	bool wfrozen; /* wfd is a cache object (a save made it one):
		       * copied to a new working copy before a write */
	bool wmem;    /* wfd is a memfd (a new or truncated file, small so
		       * far): no inode on the cache dir's disk until saved */
	atomic_bool wfailed; /* a write failed (EFBIG, ENOSPC ...): not
			      * saved until truncated to 0 (rewritten
			      * whole: O_TRUNC, truncate(2) to 0) or
			      * reverted (write.c, revert_locked) */
	/* synced: a read used @fd since the last inode_content_reclaim pass
	 * (set by reads, cleared by the pass: a second chance) */
	atomic_bool fd_used;
	/* (wfailed, wgen and jgen are atomic so that the sync state's
	 * walk, vs_fs_dirty_walk, may read them under the table lock) */
	_Atomic uint64_t wgen, jgen;
	/* in the set of dirty files (fs_i.h, the save policy): the
	 * monotonic ms of its last write, 0 when not in it; protected by
	 * the fs's dirty_lock */
	int64_t dirty_ms;
	/* ... and its last change made it empty (a creation, a truncation
	 * to 0) with no write since: the write that usually follows at once
	 * may be late on a loaded machine, so it waits longer
	 * (FSW_EMPTY_QUIET_MS) before an empty version is saved */
	bool dirty_empty;
	/* ... or its last write ended at its end on a page boundary: a
	 * streaming writer (cp, tar, a download, the kernel's write-back of
	 * a large file) likely has more to come, so it waits
	 * FSW_STREAM_QUIET_MS, not to publish a prefix at a pause */
	bool dirty_stream;
	/* ... or it is due at once, whatever its wait: removed while in the
	 * set (fsw_removed_unpin), or its write failed and its writer
	 * closed it (write.c, dirty_mark_revert); a new write clears it */
	bool dirty_now;
	/* its last save (or revert) failed (no room on the cache volume,
	 * the backend down ...): it is tried again after at least this
	 * long (ms, doubled at each failure, bounded), or sooner once the
	 * volume has more room than @save_retry_room (bytes free at the
	 * failure); 0: no failure since its last save. Set under both
	 * fd_lock and the dirty_lock, read under either (write.c,
	 * dirty_mark_retry) */
	uint32_t save_retry_ms;
	uint64_t save_retry_room;

	/* its save state (struct vs_inode_save), NULL until it needs one:
	 * set once (release) under the table lock, read with inode_save or
	 * inode_save_r (acquire) under the lock its fields need, freed with
	 * the inode */
	_Atomic(struct vs_inode_save *) save;

	struct vs_inode *hnext; /* ino hash chain */
};

/* What only a local inode has: allocated with it, right after it (a
 * synced inode, most of a tree, goes without); inode_local. */
struct vs_inode_local {
	/* the upper file's st_dev and st_ino (its O_PATH fd is in->fd) */
	dev_t upper_dev;
	ino_t upper_ino;
	/* local files: the inode's own open fds on its upper file, opened
	 * at its first read or write without a file handle (fh 0: no-open
	 * mode) and kept until the inode is freed; -1 until then. Each set
	 * once (compare-and-swap): @iofd O_RDWR; @rofd O_RDONLY, only
	 * where O_RDWR is refused (a read-only file when the daemon is not
	 * root, one being executed), for reads: a write tries O_RDWR
	 * again (the file may have been made writable since). */
	_Atomic int iofd, rofd;
	struct vs_inode *lhnext; /* upper-ino hash chain */
};

struct vs_inode_with_local {
	struct vs_inode in;
	struct vs_inode_local local;
};

/* Local inode @in's own fields (in->local only). */
static inline struct vs_inode_local *inode_local(struct vs_inode *in)
{
	return &((struct vs_inode_with_local *)in)->local;
}

#define INODE_FD_LOCKS 4096 /* a power of two */

struct vs_inode_table {
	pthread_mutex_t lock;
	pthread_rwlock_t fd_locks[INODE_FD_LOCKS]; /* see LOCKING */
	struct vs_inode *root;
	struct vs_inode **ht; /* by ino */
	size_t ht_size, count;
	struct vs_inode **lht; /* local inodes by upper_dev/upper_ino */
	size_t lht_size, lcount;
	uint64_t next_ino;
	struct vs_inode *pending; /* inodes with a pending_op (save->pnext) */
	size_t reclaim_at;	  /* inode_content_reclaim's next bucket */
};

/* @in's fd_lock (LOCKING, at the top). */
static inline pthread_rwlock_t *inode_fd_lock(struct vs_inode_table *t,
					      const struct vs_inode *in)
{
	return &t->fd_locks[in->ino & (INODE_FD_LOCKS - 1)];
}

/* Take @in's fd_lock shared, or exclusive, and let it go. A thread holds
 * one inode's fd_lock at most (LOCKING: two may share one); a build
 * without NDEBUG (the sanitizer build) checks it, and aborts (vs_bug)
 * where a second is taken. Only inode_content_reclaim tries another's. */
void inode_fd_rdlock(struct vs_inode_table *t, const struct vs_inode *in);
void inode_fd_wrlock(struct vs_inode_table *t, const struct vs_inode *in);
void inode_fd_unlock(struct vs_inode_table *t, const struct vs_inode *in);

/* @in's save state, NULL if it has none yet (its fields are all zero). */
static inline struct vs_inode_save *inode_save(const struct vs_inode *in)
{
	return atomic_load_explicit(&in->save, memory_order_acquire);
}

/* For reading: @in's save state, or one that is all zero (never NULL). */
extern const struct vs_inode_save inode_save_none;
static inline const struct vs_inode_save *
inode_save_r(const struct vs_inode *in)
{
	const struct vs_inode_save *s = inode_save(in);

	return s ? s : &inode_save_none;
}

/* For writing a field of it: @in's save state, made (all zero) if it has
 * none; NULL on ENOMEM. t->lock held. */
struct vs_inode_save *inode_save_get(struct vs_inode *in);

int inode_table_init(struct vs_inode_table *t);
/*
 * Out of fds (EMFILE, ENFILE): close the content fds of up to @max synced
 * files that no read used since the pass before (fd_used: a second
 * chance) and that nothing holds now (their fd_lock taken without
 * waiting); their next read opens the content again (fsw_content). A
 * memfd (fd_mem: the only copy of a pushed edit's bytes, not reopened
 * from the cache) and a file written here (wfd) keep theirs, as does
 * @keep (its caller holds its fd_lock). Takes t->lock: the caller holds
 * no table lock. How many were closed.
 */
size_t inode_content_reclaim(struct vs_inode_table *t, struct vs_inode *keep,
			     size_t max);
/* Frees every inode and closes their fds. */
void inode_table_release(struct vs_inode_table *t);

/*
 * Build the synced tree from @m. Parent directories missing from the
 * manifest are created with mode 0755; entries whose path is local-only
 * under @local are skipped (logged). 0 or -ENOMEM.
 */
struct vs_local_rules;
int inode_table_build(struct vs_inode_table *t, const struct vs_manifest *m,
		      const struct vs_local_rules *local);

/* Set @in's pending op to @op (NULL or "": none) and @lseq, and keep the
 * table's list of inodes with one. 0, or -ENOMEM if @in has no save state
 * yet (inode_save_get) and none can be had: then nothing changed. t->lock
 * held. */
int inode_pending_set(struct vs_inode_table *t, struct vs_inode *in,
		      const char *op, uint64_t lseq);
/* The inode whose pending op is @op, or NULL: for the commit of an entry
 * whose path no longer names it (a parent directory renamed since). A
 * walk of the inodes with a pending op. t->lock held. */
struct vs_inode *inode_pending_find(struct vs_inode_table *t, const char *op);
/* The inode whose pending rename (pending_moved) is journal entry @lseq,
 * whatever op of it is pending now (a save after the rename); NULL if
 * none. */
struct vs_inode *inode_moved_find(struct vs_inode_table *t, uint64_t lseq);
/* The bytes PostgreSQL has for synced file @in at in->version, while no
 * op of it is pending: those of a save committed without the file taking
 * them (written since, write.c vs_fs_committed: saved_hash), else
 * in->hash. t->lock held. */
const char *inode_committed_hash(const struct vs_inode *in);

/* Count one lookup on @in, or drop it (inode_forget: may free @in), with
 * t->lock taken here: a pin, so that @in outlives what the caller does
 * meanwhile (a reply, after which the kernel may forget it). */
void inode_pin(struct vs_inode_table *t, struct vs_inode *in);
void inode_unpin(struct vs_inode_table *t, struct vs_inode *in);

/* The following require t->lock held. */
struct vs_inode *inode_table_get(struct vs_inode_table *t, uint64_t ino);
struct vs_inode *inode_child_find(const struct vs_inode *dir, const char *name);
/* The local inode of upper file @dev/@ino, or NULL. */
struct vs_inode *inode_local_find(struct vs_inode_table *t, dev_t dev,
				  ino_t ino);
/*
 * A kernel lookup of upper file @dev/@ino, of kind @kind, whose O_PATH fd
 * is *@fd: count one lookup on its local inode, creating it if there is
 * none. A new inode takes the fd (*@fd becomes -1); otherwise the caller
 * still owns (and closes) it. NULL on ENOMEM (nothing changed).
 */
struct vs_inode *inode_local_get(struct vs_inode_table *t, dev_t dev, ino_t ino,
				 enum vs_kind kind, int *fd);
/* Find or create the synced child @name of @dir (a new one has default
 * metadata: the caller fills it in). 0 or -ENOMEM. */
int inode_synced_child(struct vs_inode_table *t, struct vs_inode *dir,
		       const char *name, enum vs_kind kind,
		       struct vs_inode **out);
/* Find or create the synced inode at project path @path (not ""), creating
 * missing parents as directories (0755); a new one has default metadata.
 * 0, -ENOTDIR (a parent is not a directory), -EEXIST (*out is the entry
 * there, of another kind) or -ENOMEM. */
int inode_synced_at(struct vs_inode_table *t, const char *path,
		    enum vs_kind kind, struct vs_inode **out);
/*
 * Make @fd the content fd of synced file @in (fd_lock exclusive, or an
 * inode no reader can reach yet); the caller closes the one it had.
 * Content the cache made in memory (vs_cache_fd_in_memory: a sealed memfd
 * of @in->size bytes) is counted in vs_cache_mem_bytes() while it is
 * @in's content.
 */
void inode_content_set(struct vs_inode *in, int fd);

/* Unlink synced @in from its directory; it is freed once the kernel has
 * forgotten it (at once if it never knew it). */
void inode_synced_remove(struct vs_inode_table *t, struct vs_inode *in);
/*
 * The rules of unlink(2)/rmdir(2) and rename(2) on the tree, in the one
 * place the three writers of the tree use (a local write, a remote change
 * applied by the updater, a journal entry replayed at start). Pure: they
 * look, change nothing; table lock held.
 *
 * inode_remove_check: may @in (NULL: not there) be removed by rmdir
 * (@dir) or unlink? 0, -ENOENT, -ENOTDIR, -EISDIR or -ENOTEMPTY.
 *
 * inode_rename_check: may @in move into @newparent over @old (NULL: the
 * name is free; the caller handles @old == @in, a no-op)? With
 * @noreplace an existing @old is -EEXIST; a directory over a file is
 * -ENOTDIR, a file over a directory -EISDIR, over a non-empty directory
 * -ENOTEMPTY; into itself or a descendant -EINVAL. 0 otherwise.
 */
int inode_remove_check(const struct vs_inode *in, bool dir);
/* A local change of its entries (a name made, removed or moved) at @now:
 * directory @dir's mtime and ctime, as a disk's. Table lock held. */
void inode_dir_changed(struct vs_inode *dir, int64_t now);
int inode_rename_check(const struct vs_inode *in,
		       const struct vs_inode *newparent,
		       const struct vs_inode *old, bool noreplace);

/* Move synced @in to @dir/@name (the caller removed any entry there).
 * 0 or -ENOMEM (then nothing changed). */
int inode_synced_move(struct vs_inode *in, struct vs_inode *dir,
		      const char *name);
/* Files under directory @dir, just moved (by a local rename or a remote
 * one), have new versions at their new paths in PostgreSQL (1, or one
 * above a deleted file's there), unknown here: version -1, so their next
 * saves are committed unconditionally rather than refused as based on a
 * version the path never had, and any remote version of them is newer.
 * Table lock held. */
void inode_forget_versions(struct vs_inode *dir);
/* The synced inode at project path @path ("" = root), or NULL. */
struct vs_inode *inode_lookup_path(struct vs_inode_table *t, const char *path);
/* Drop @n lookups; frees a local or removed inode that reaches 0 (a
 * local inode's O_PATH fd is closed). */
void inode_forget(struct vs_inode_table *t, struct vs_inode *in, uint64_t n);

/* Write the project-relative path of @in into @buf ("" for the root).
 * -ENAMETOOLONG if it does not fit. */
int inode_path(const struct vs_inode *in, char *buf, size_t size);

#endif
