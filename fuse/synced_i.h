/*
 * synced_i.h - the handlers of synced paths (synced.c): served from the
 * inode table and the verified content cache; their writes go through
 * write.c (fsw_*, fs_i.h) with --writable and are EROFS without. Internal
 * to fuse/.
 *
 * fs.c calls them once it knows that a request is for a synced inode, or
 * for a name in a synced directory that is not local-only, and is not the
 * updater's own (update.c); each replies to @req exactly once, but for
 * synced_readdir, whose caller replies.
 */
#ifndef VSYNC_FUSE_SYNCED_I_H
#define VSYNC_FUSE_SYNCED_I_H

#include "fs_i.h"

/* Attributes of synced inode @in. Caller holds table.lock. */
void synced_stat(const struct vs_fs *fs, const struct vs_inode *in,
		 struct stat *st);
/* The entry of synced inode @in. Caller holds table.lock. */
void synced_entry(struct vs_fs *fs, const struct vs_inode *in,
		  struct fuse_entry_param *e);

void synced_lookup(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		   const char *name);
void synced_getattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in);
void synced_setattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		    const struct stat *attr, int valid,
		    struct fuse_file_info *fi);
void synced_readlink(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in);

/* Creations of @name in directory @parent (checked by fs.c) */
/* a FIFO, socket or device is made local (special_i.h) */
void synced_mknod(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, mode_t mode, dev_t rdev);
void synced_mkdir(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, mode_t mode);
void synced_symlink(fuse_req_t req, struct vs_fs *fs, const char *link,
		    struct vs_inode *parent, const char *name);
/* link(2) of a local file into synced @parent: refused */
void synced_link(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		 const char *name);
void synced_create(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		   const char *name, mode_t mode, struct fuse_file_info *fi);

/* unlink or rmdir (@dir) */
void synced_remove(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		   const char *name, bool dir);
/* Both names synced, with --writable (fs.c refuses the rest) */
void synced_rename(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		   const char *name, struct vs_inode *newparent,
		   const char *newname, unsigned int flags);

/* Open files: fi->fh is SYNCED_WRITER (synced.c) or 0 */
void synced_open(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		 struct fuse_file_info *fi);
/* the content is fetched by the first read (EIO, or the deadline's
 * error, when it cannot be had) */
void synced_read(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		 size_t size, off_t off);
void synced_write_buf(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		      struct fuse_bufvec *in_buf, off_t off);
/* the last close of an open that may have written (fi->fh set) */
void synced_release(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in);
void synced_fsync(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in);
/* fsync(2) of a synced directory: returns once every change journaled
 * before it is committed (EIO if it cannot be) */
void synced_fsyncdir(fuse_req_t req, struct vs_fs *fs);

/* Open directories: fi->fh is 0, the listing comes from the table */
void synced_opendir(fuse_req_t req, struct fuse_file_info *fi);
/* Fill @b with the entries of @dir from @off on; the caller replies. */
void synced_readdir(fuse_req_t req, struct vs_fs *fs, struct vs_inode *dir,
		    struct fs_dirbuf *b, off_t off);

#endif
