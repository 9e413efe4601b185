/*
 * owner_i.h - owners of synced paths (owner.c): uid and gid kept per
 * mount in the cache directory, never synced (PostgreSQL stores no
 * owner), and the modes of synced directories (not synced either).
 * Internal to fuse/.
 *
 * An inode with no record shows the mount's owner (cfg.uid/gid). The
 * records live on the inodes (in->owned, uid, gid, under table.lock), so
 * they follow renames and go with removals; the file OWNER_FILE in
 * cfg.meta_fd is a snapshot of them, written whole (temp + rename) at
 * most every OWNER_FLUSH_MS while they change and at unmount, read at
 * mount. Its size is bounded by the number of synced entries.
 */
#ifndef VSYNC_FUSE_OWNER_I_H
#define VSYNC_FUSE_OWNER_I_H

#include "fs_i.h"

/* Apply the saved records to the tree (at mount, before serving). A
 * missing file is no records; a bad line is logged and skipped. 0 or
 * -ENOMEM. */
int owner_load(struct vs_fs *fs);

/* Is @gid the gid or one of the supplementary groups of @req's caller? */
bool owner_caller_in_group(fuse_req_t req, gid_t gid);

/*
 * chown(2) of synced @in by the caller of @req: UID and/or GID of @valid
 * from @attr, with the checks of a local disk (root may do anything; the
 * owner may only change the group to one of its own; else EPERM). Saved
 * (owner_changed). 0 or -errno.
 */
int owner_chown(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		const struct stat *attr, int valid);

/* chmod(2) of synced @in to @mode by @req's caller: EPERM unless root or
 * the owner (the kernel checks this itself with default_permissions), or
 * unless @mode only drops set-id bits, which the kernel asks for when
 * anyone who may write the file writes it. */
int owner_may_chmod(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		    mode_t mode);

/* chmod of synced @in done: a directory's mode is kept here (files'
 * modes are synced). */
void owner_dir_chmod(struct vs_fs *fs, struct vs_inode *in);

/* A new synced entry @in made by @req's caller: owned by the caller
 * where that is not the mount's owner (only with allow_other). */
void owner_created(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in);

/* The tree changed (a rename or a removal of synced entries): save the
 * records again if there are any. Also writes a pending save. */
void owner_changed(struct vs_fs *fs);

/* Write the snapshot now if it is out of date (at unmount). */
void owner_flush(struct vs_fs *fs);

#endif
