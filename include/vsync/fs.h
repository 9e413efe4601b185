/*
 * fs.h - the FUSE file system (fuse/): what the mount program hands it.
 *
 * The file system serves the tree of a manifest (synced paths: writes are
 * journaled and written back, or EROFS when mounted --read-only) and passes
 * local-only paths through to an upper directory. Content comes from a struct
 * vs_content.
 */
#ifndef VSYNC_FS_H
#define VSYNC_FS_H

#include <stdbool.h>
#include <sys/types.h>

#include "vsync/manifest.h"
#include "vsync/path.h"

struct vs_content;
struct fuse_args;

struct vs_fs_config {
	const char *mountpoint;
	struct vs_local_rules local; /* names of local-only paths */
	int upper_fd; /* dir fd of the local upper layer (borrowed) */
	struct vs_content *content; /* borrowed */
	double entry_timeout;	    /* seconds */
	double attr_timeout;
	bool foreground;
	bool single_thread;
	uid_t uid; /* owner shown for synced files without a chown */
	gid_t gid;
	int meta_fd; /* dir of local metadata never synced (the owners of
			synced paths); -1: none, chown is not kept */

	/* synced paths take writes, journaled here and committed by the
	 * write-back (NULL, --read-only: synced paths are EROFS) */
	struct vs_journal *journal; /* borrowed */
	struct vs_cache *cache;	    /* borrowed: content objects */
	int work_fd;		    /* dir for working copies (O_TMPFILE) */
	uint64_t max_file_size;	    /* bigger synced files: EFBIG */
	/* a written file is saved once it has had no write for this long
	 * (ms; --save-quiet-ms), or at once by fsync, rename, chmod, its
	 * last close when the kernel reports it, and the stop */
	int save_quiet_ms;
	/* no-open mode (--open-mode=none): OPEN and OPENDIR answered ENOSYS,
	 * so the kernel sends neither them nor RELEASE for the life of the
	 * mount and keeps pages and listings itself; requests come with
	 * fh 0 and are served by inode. Without @journal (--read-only) files
	 * are still opened, so that a write to a synced file is refused
	 * with EROFS by its open (the kernel reports a WRITE's EROFS as
	 * EIO); directories are not. */
	bool no_open;
};

struct vs_fs;

/*
 * Build the inode table from @m (entries need not be sorted; directories
 * implied by paths are created; entries under local-only paths are skipped
 * with a log line). 0 or -errno.
 */
int vs_fs_new(struct vs_fs **out, const struct vs_fs_config *cfg,
	      const struct vs_manifest *m);
void vs_fs_free(struct vs_fs *fs);

/*
 * Mount and serve until unmounted or signalled (SIGINT/SIGTERM/SIGHUP).
 * @args: FUSE options (-o ...). @ready_cb is called once mounted (in the
 * process that serves, after daemonising when not foreground: start
 * threads there); @stop_cb once the mount is gone and before the session
 * is destroyed (stop those threads there: vs_fs_apply must not run after).
 * Returns 0 on a clean unmount, -errno if the mount failed (reason logged).
 */
int vs_fs_run(struct vs_fs *fs, struct fuse_args *args,
	      void (*ready_cb)(void *arg), void (*stop_cb)(void *arg),
	      void *cb_arg);

/*
 * The learned list: record the synced files opened during the next
 * @seconds, in the order of their first open or read (at most 4096). Then
 * vs_fs_learned() hands over the paths (a malloc'd array of malloc'd
 * strings; the caller frees) and stops recording.
 */
void vs_fs_learn_start(struct vs_fs *fs, int seconds);
int vs_fs_learned(struct vs_fs *fs, char ***paths, size_t *n);

struct vs_writeback;
struct vs_jentry;
struct vs_wb_result;
/* The committer to wait on for fsync() and to kick after journaling
 * (set once it runs, after the fork). */
void vs_fs_set_writeback(struct vs_fs *fs, struct vs_writeback *wb);
/* A journal entry was committed (or refused): called by the write-back on
 * its thread. Updates the inode's version and, when the local copy has
 * not changed since, serves the committed content again. True if it was a
 * save refused because its path is a directory (or a parent a file) in
 * PostgreSQL: the file stays a local change, saved again at the path it
 * has now if it has left that one, else after a wait that grows at each
 * refusal (the remote change, once applied, moves it aside: update.c,
 * keep_aside; with no free name there it stays, refused less and less
 * often). So for a rename of a file refused so: the file is saved where
 * it is, and its old path deleted in PostgreSQL (a DELETE journaled, unless
 * the mount has something there again; so it is for a file deleted here
 * since, unless the mount forgot it and the version the rename moved is
 * not known); and for one refused
 * because its old path was deleted there first: the file is saved where
 * it is, a new file there. */
bool vs_fs_committed(struct vs_fs *fs, const struct vs_jentry *e,
		     const struct vs_wb_result *res);

/*
 * For the sync state (status.h, vs_status_set_dirty_walk, with @arg the
 * vs_fs): call @cb(@ctx, path, failed) for every synced file written here
 * since its last save (not in the journal yet) or whose last write failed.
 * Paths are collected under the table lock, @cb is called after it. 0 or
 * -ENOMEM.
 */
int vs_fs_dirty_walk(void *arg,
		     void (*cb)(void *ctx, const char *path, bool failed),
		     void *ctx);

/* Has the mounted tree something at synced @path now? */
bool vs_fs_has_path(struct vs_fs *fs, const char *path);

struct vs_change;
/*
 * Apply one remote change to the mounted tree so that readers and
 * watchers see it as a local save (fuse/update.c). Call from one thread
 * (the updater), only between @ready_cb and @stop_cb, never from a FUSE
 * request. Content of a new or changed file is made local (and verified)
 * first. Returns 0 when applied (or nothing to do), -EIO when content could
 * not be had (retry later), -ESTALE when the change does not fit the tree
 * (the caller should resync), other -errno on failure.
 */
int vs_fs_apply(struct vs_fs *fs, const struct vs_change *c);

#endif
