/*
 * local_i.h - the handlers of local-only paths (local.c): node_modules/,
 * .git/, dist/ ... passed through to the upper directory. Internal to
 * fuse/.
 *
 * fs.c calls them once it knows that a request is for a local inode, or
 * for a local-only name (vs_name_is_local, or any name in a local
 * directory) in a directory; each replies to @req exactly once, but for
 * local_readdir and local_releasedir, whose caller replies. A local inode
 * is reached through its O_PATH fd (inode_i.h), an entry through its
 * parent's (local.c).
 */
#ifndef VSYNC_FUSE_LOCAL_I_H
#define VSYNC_FUSE_LOCAL_I_H

#include "fs_i.h"

/* Create the directories leading to upper path @path (mkdir -p of its
 * parent, mode 0755) in the cache dir's upper layer. 0 or -errno. */
int local_upper_mkdirs(struct vs_fs *fs, const char *path);

void local_lookup(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name);
void local_getattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		   struct fuse_file_info *fi);
void local_setattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		   const struct stat *attr, int valid,
		   struct fuse_file_info *fi);
void local_readlink(fuse_req_t req, struct vs_inode *in);

/* Creations of @name in directory @parent (checked by fs.c) */
void local_mknod(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		 const char *name, mode_t mode, dev_t rdev);
void local_mkdir(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		 const char *name, mode_t mode);
void local_symlink(fuse_req_t req, struct vs_fs *fs, const char *link,
		   struct vs_inode *parent, const char *name);
/* link local inode @in as @name in @parent */
void local_link(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		struct vs_inode *parent, const char *name);
void local_create(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, mode_t mode, struct fuse_file_info *fi);

/* unlink (@flags 0) or rmdir (AT_REMOVEDIR) */
void local_remove(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, int flags);
/* Both names local-only, @newparent a directory (checked by fs.c) */
void local_rename(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, struct vs_inode *newparent,
		  const char *newname, unsigned int flags);

/* Open files: fi->fh is the upper file's descriptor, or 0 (no-open mode):
 * then the inode's own fd serves (inode_i.h, iofd) */
void local_open(fuse_req_t req, struct vs_inode *in, struct fuse_file_info *fi);
void local_read(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		size_t size, off_t off, struct fuse_file_info *fi);
void local_write_buf(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		     struct fuse_bufvec *in_buf, off_t off,
		     struct fuse_file_info *fi);
void local_release(fuse_req_t req, struct fuse_file_info *fi);
void local_fsync(fuse_req_t req, struct vs_inode *in, int datasync,
		 struct fuse_file_info *fi);

/* Open directories: fi->fh is a struct local_dir (local.c), or 0 (no-open
 * mode: each request reads the upper directory itself) */
void local_opendir(fuse_req_t req, struct vs_inode *in,
		   struct fuse_file_info *fi);
/* Fill @b with the entries from @off on; the caller replies. */
void local_readdir(fuse_req_t req, struct vs_inode *in,
		   struct fuse_file_info *fi, struct fs_dirbuf *b, off_t off);
/* Close fi->fh; the caller replies. */
void local_releasedir(struct fuse_file_info *fi);
/* fsync(2) of a local-only directory: fsync of the upper one */
void local_fsyncdir(fuse_req_t req, struct vs_inode *in, int datasync,
		    struct fuse_file_info *fi);

#endif
