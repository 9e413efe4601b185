/*
 * fs_i.h - state shared by the FUSE request handlers (fs.c, local.c,
 * synced.c, write.c) and the updater that applies remote changes
 * (update.c). Internal to fuse/.
 *
 * A remote change is made visible the way a local save would be (see
 * ../shared/notes/fuse-remote-changes.md): the updater thread makes the
 * call through the mountpoint (mknod, mkdir, symlink, unlink, rmdir,
 * rename, utimensat) and the handler, recognising the updater's own request
 * by its thread id, applies it to the inode table instead of refusing it.
 * Content is made local and verified before any of that, so a reader woken
 * by the event reads the new bytes.
 *
 * The handlers are split by the kind of request (fs.c dispatches): the
 * updater's own (update.c, below), local-only paths (local.c, local_i.h)
 * and synced paths (synced.c, synced_i.h; their writes go through write.c,
 * below).
 */
#ifndef VSYNC_FUSE_FS_I_H
#define VSYNC_FUSE_FS_I_H

#include <fuse_lowlevel.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "inode_i.h"
#include "vsync/fs.h"

/*
 * A creation the updater is making through the mountpoint: the handler of
 * its mknod/mkdir/symlink takes the metadata (and content fd) from here.
 * Protected by table.lock; only the updater thread fills it.
 */
struct vs_pending {
	bool active;
	uint64_t parent_ino;
	char name[VS_NAME_MAX + 1];
	struct vs_manifest_entry st; /* st.target points into @target */
	char target[VS_PATH_MAX + 1];
	int fd; /* verified content of a file, -1 otherwise; the handler
		   takes it (sets -1) */
	/* a remote edit saved as a rename over the file (update.c,
	 * replace_path): the inode it replaces and the edit's version; 0
	 * when no such rename is under way. Written by the updater only,
	 * and read only by the handler of its own rename while it waits in
	 * it: atomics, not under table.lock, which FUSE threads hold just
	 * then for the old inode's FORGET and the watcher's lookups */
	_Atomic uint64_t replace_ino;
	_Atomic int64_t replace_version;
};

/* own changes remembered until they come back (fsw_own_change) */
#define VS_OWN_MAX 4096

/*
 * A save or rename of a file committed by this process (vs_fs_committed),
 * remembered for the updater: a remote change committed before it and
 * applied after it (the updater applies a change once the committer has
 * reported ours up to it) must not move or remove the file, which
 * PostgreSQL has at its path here (update.c). What the path had before it
 * is what that change moved: the version the save was based on (@version
 * 0: none, a file made here or moved there).
 */
struct vs_landed {
	uint64_t ino; /* 0: a free slot */
	int64_t seq;  /* the change the commit became */
	int64_t version;
	int64_t mtime_ns;
	uint32_t mode;
	char hash[VS_HASH_HEX_LEN + 1];
};

struct vs_fs {
	struct vs_fs_config cfg;
	struct vs_writeback *wb; /* set once, after the fork */
	struct vs_inode_table table;
	struct fuse_session *se; /* set while mounted */
	atomic_int updater_tid;	 /* thread applying remote changes, 0: none */
	/* the newest change the updater has taken up (the manifest's at
	 * first): a delete made here is of what the mount had up to it
	 * (write.c, fsw_remove; update.c, vs_fs_apply) */
	atomic_int_least64_t seen_seq;
	/* the remote rename whose directory split (update.c, apply_rename)
	 * failed part-way, 0: none; and whether it merged into a directory a
	 * remote delete left. The updater's own: no lock. */
	int64_t split_seq;
	bool split_dst_kept;
	struct vs_pending pending; /* table.lock, but replace_* (atomic) */

	/*
	 * --writable: this process's own changes, to skip when the change
	 * stream brings them back (the tree has them already, and may have
	 * moved on since: applying a rename or a delete again would undo a
	 * later save). first_lseq and last_lseq bound the journal entries
	 * appended by this process (0: none yet); entries replayed from an
	 * earlier run are not ours to skip (the tree loaded at start does not
	 * have them). own_seqs is a FIFO of the change seqs the committer
	 * made of our entries, ascending (when full, the oldest is dropped
	 * and its change applied like a remote one); own_newest is the last
	 * one pushed. Both under own_lock.
	 */
	_Atomic uint64_t first_lseq, last_lseq;
	/*
	 * Orders the journal with the tree: held across a change of the
	 * synced tree and its journal entry (mkdir, symlink, unlink, rename),
	 * and across a snapshot's reading of its path and the reservation of
	 * its WRITE entry's lseq (the entry is written after, renamed in lseq
	 * order), so the journal's order is the order the tree changed in (a
	 * save released just as its file or a parent is renamed or unlinked
	 * is journaled wholly before or after). No fsync is made under it
	 * (nor in a save at all: the committer syncs the journal). Order:
	 * fd_lock, ns_lock, table.lock
	 * (the journal's own mutex is taken inside all of them).
	 */
	pthread_mutex_t ns_lock;
	pthread_mutex_t own_lock;
	int64_t own_seqs[VS_OWN_MAX];
	size_t own_head, own_count;
	int64_t own_newest;
	/* the commits of ours after the change the updater applies now,
	 * landed_applied (those up to it can never matter again: changes
	 * are applied in seq order); grown as needed, pruned as changes are
	 * applied. Under table.lock. */
	struct vs_landed *landed;
	size_t nlanded, landed_cap;
	int64_t landed_applied;

	/* the learned list: synced files in the order of their first open or
	 * read while learning; protected by learn_lock. learn_until_ms is
	 * written under it and atomic for the unlocked first look of every
	 * open. */
	pthread_mutex_t learn_lock;
	_Atomic int64_t learn_until_ms; /* monotonic; 0: not learning */
	char **learned;
	size_t nlearned;

	/*
	 * The save policy (write.c): the set of dirty files, synced files
	 * written since their last save, each pinned (one lookup counted)
	 * while in it and its inode's dirty_ms the monotonic ms of its last
	 * write. The saver thread saves a file once it has had no write for
	 * cfg.save_quiet_ms; fsync, rename, chmod, the stop and a RELEASE
	 * (when the kernel sends one) save at once. dirty, ndirty,
	 * dirty_cap, saver_stop and every inode's dirty_ms under dirty_lock,
	 * taken inside fd_lock and outside table.lock; dirty_cond wakes the
	 * saver (CLOCK_MONOTONIC).
	 */
	pthread_mutex_t dirty_lock;
	pthread_cond_t dirty_cond;
	struct vs_inode **dirty;
	size_t ndirty, dirty_cap;
	/* when the saver, asleep, wakes next (monotonic ms; INT64_MAX: only
	 * when signalled; 0: it is awake, and looks at the set again before
	 * it sleeps): a file due sooner signals dirty_cond */
	int64_t saver_wake_ms;
	bool saver_stop;
	bool saver_running; /* set and read by vs_fs_run's thread only */
	pthread_t saver;

	/* owners of synced paths (owner.c): owner_dirty and owner_saved_ms
	 * under owner_lock; owner_any is set once any record exists */
	pthread_mutex_t owner_lock;
	bool owner_dirty;
	int64_t owner_saved_ms;
	atomic_bool owner_any;
};

/* ---- shared by the handlers (fs.c) ---- */

/* Are files served without OPEN (no-open mode, and writable: fs.h)? */
static inline bool fs_no_open_files(const struct vs_fs *fs)
{
	return fs->cfg.no_open && fs->cfg.journal;
}

/* d_ino of a listed entry whose inode the kernel will look up itself */
#define VS_UNKNOWN_INO 0xffffffffu

/* Is @req the updater's own call through the mountpoint? */
bool fs_own_request(struct vs_fs *fs, fuse_req_t req);

/*
 * Path of @in (plus "/@name" if @name) relative to the upper layer, "."
 * for the root. Takes the table lock. 0 or -ENAMETOOLONG.
 */
int fs_upper_path(struct vs_fs *fs, struct vs_inode *in, const char *name,
		  char *buf, size_t size);

/*
 * Is -errno @r "out of fds" (EMFILE, ENFILE)? Then fs_fds_reclaim may
 * make room: it closes the content fds of synced files not read lately
 * (inode_content_reclaim; @keep, whose fd_lock the caller may hold, is
 * skipped), logs it now and then, and tells whether it closed any (try
 * once more then).
 */
static inline bool fs_fds_out(int r)
{
	return r == -EMFILE || r == -ENFILE;
}
bool fs_fds_reclaim(struct vs_fs *fs, struct vs_inode *keep);

/* An entry of inode @ino with attributes @st and the mount's timeouts. */
void fs_fill_entry(struct vs_fs *fs, struct fuse_entry_param *e,
		   const struct stat *st, fuse_ino_t ino);

/* Reply with a negative entry (ino 0), cached like a positive one: module
 * resolution probes many names that do not exist. */
void fs_reply_negative(fuse_req_t req, struct vs_fs *fs);

/* Drop the kernel's pages and attributes of inode @ino (its bytes changed
 * under it). Never from a request handler of @ino's; no lock of the inode
 * held: an in-flight read may wait for one. */
void fs_inval_inode(struct vs_fs *fs, uint64_t ino);

/* A reply buffer for readdir, or readdirplus (@plus). */
struct fs_dirbuf {
	char *p;
	size_t size, len;
	bool plus;
};

/* Add one entry, with no attributes (readdirplus: none, so the kernel
 * looks it up itself if it needs it); false when the buffer is full. */
bool fs_dirbuf_add(fuse_req_t req, struct fs_dirbuf *b, const char *name,
		   fuse_ino_t ino, mode_t type, off_t next);
/* readdirplus: add one entry with its attributes; the kernel counts a
 * lookup of e->ino when it is added (true). False when full. */
bool fs_dirbuf_add_plus(fuse_req_t req, struct fs_dirbuf *b, const char *name,
			const struct fuse_entry_param *e, off_t next);

/* ---- the updater's own calls through the mountpoint (update.c): fs.c
 * hands them over once fs_own_request() says so; each replies. ---- */

/* mknod/mkdir/symlink of a remote creation: the inode from fs->pending */
void update_create(fuse_req_t req, struct vs_fs *fs, fuse_ino_t parent_ino,
		   const char *name, enum vs_kind kind);
/* unlink/rmdir of a remote deletion */
void update_remove(fuse_req_t req, struct vs_fs *fs, fuse_ino_t parent_ino,
		   const char *name, bool dir);
/* rename of a remote move (replacing a file at the target) */
void update_rename(fuse_req_t req, struct vs_fs *fs, fuse_ino_t parent_ino,
		   const char *name, fuse_ino_t newparent_ino,
		   const char *newname);
/* utimensat/chmod of synced @in after a remote edit: applied, not synced */
void update_setattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		    const struct stat *attr, int valid);

/* ---- writes to synced paths (fuse/write.c); all return 0 or -errno and
 * journal what they change. Callers hold no lock. ---- */
/* An open for writing of @in (kernel open mode): -ESTALE for an inode a
 * remote edit has just replaced, -EISDIR for a directory; sets nothing
 * up (the working copy comes with the first write or truncation). */
int fsw_open_check(struct vs_fs *fs, struct vs_inode *in);
/* Make sure synced file @in has its content fd (fetched from the cache,
 * Redis or PostgreSQL; nothing to do when it has a working copy or no
 * content). Called with in->fd_lock exclusive. 0 or -errno. */
int fsw_content(struct vs_fs *fs, struct vs_inode *in);
int fsw_write(struct vs_fs *fs, struct vs_inode *in, struct fuse_bufvec *buf,
	      off_t off, size_t *written);
int fsw_setattr(struct vs_fs *fs, struct vs_inode *in, const struct stat *attr,
		int valid);
/* Save @in now if it has unsaved writes: snapshot its working copy and
 * journal it (committed behind). A failed write is not saved (0). */
int fsw_save(struct vs_fs *fs, struct vs_inode *in);
/* Start and stop the saver thread of the save policy (vs_fs_run). */
int fsw_saver_start(struct vs_fs *fs);
void fsw_saver_stop(struct vs_fs *fs);
int fsw_fsync(struct vs_fs *fs, struct vs_inode *in);
/* Wait until every journal entry this process appended is committed: 0,
 * or -EIO (not within the deadline, or refused). */
int fsw_fsyncdir(struct vs_fs *fs);
/* Create @name in synced @parent: a file (opened: a working copy), a
 * directory or a symlink. *out gets the inode with one lookup counted. */
int fsw_create(struct vs_fs *fs, struct vs_inode *parent, const char *name,
	       enum vs_kind kind, mode_t mode, const char *target,
	       struct vs_inode **out);
int fsw_remove(struct vs_fs *fs, struct vs_inode *parent, const char *name,
	       bool dir);
int fsw_rename(struct vs_fs *fs, struct vs_inode *parent, const char *name,
	       struct vs_inode *newparent, const char *newname,
	       unsigned int flags);
/* Around inode_synced_remove() of a file, unlinked or renamed over: pin
 * @in first (table lock held; NULL: nothing to do), then, with no lock
 * held, fsw_removed_unpin() makes it due at once if it waits in the set
 * of dirty files (nothing of a removed file is saved, and its working
 * copy's room returns now) and unpins it. */
struct vs_inode *fsw_removed_pin(struct vs_inode *in);
void fsw_removed_unpin(struct vs_fs *fs, struct vs_inode *in);
/* At start: apply the journal's pending entries to the tree built from
 * the manifest, so a restart shows what close() returned for before it is
 * committed. 0 or -ENOMEM. */
int fsw_overlay_journal(struct vs_fs *fs);
/* At the stop (after fsw_saver_stop): save (journal) every file with
 * unsaved writes, such as one still open for writing or not yet quiet,
 * and empty the set of dirty files. 0 or -ENOMEM. */
int fsw_save_all(struct vs_fs *fs);
/*
 * Is change @seq one this process committed (so already in the tree)? For
 * the updater, before it applies the change: waits (bounded) until the
 * committer has reported what may have become @seq.
 */
bool fsw_own_change(struct vs_fs *fs, int64_t seq);
/* For the updater (table lock held): was a save or rename of file @ino
 * committed after change @seq (the first such one in *@out)? @seq is the
 * change applied now, or a later one (fsw_landed_prune). */
bool fsw_landed_after(struct vs_fs *fs, uint64_t ino, int64_t seq,
		      struct vs_landed *out);
/* The updater applies change @seq now (table lock held): the commits of
 * ours up to it are forgotten, and no later one up to it is remembered. */
void fsw_landed_prune(struct vs_fs *fs, int64_t seq);

#endif
