/*
 * special_i.h - FIFOs, sockets and device nodes on synced paths
 * (special.c). Internal to fuse/.
 *
 * PostgreSQL holds files, directories and symlinks only. A special node
 * made in a synced directory is kept local to the mount: it is created in
 * the upper layer at the same path and served by the local-only handlers
 * (local.c) as a local inode, never synced and never journaled. It lives
 * in the cache directory, so it stays across remounts (a socket as a dead
 * socket, as on a disk after a reboot). These helpers tell fs.c and
 * synced.c where such nodes are.
 */
#ifndef VSYNC_FUSE_SPECIAL_I_H
#define VSYNC_FUSE_SPECIAL_I_H

#include "fs_i.h"

/* Is @mode a FIFO, socket or device node? */
bool special_mode(mode_t mode);

/* Is @name in synced directory @parent a special node of the upper layer
 * (and no synced entry)? */
bool special_is(struct vs_fs *fs, struct vs_inode *parent, const char *name);

/* Is upper path @path (fs.c's resolve()) a special node? */
bool special_at(struct vs_fs *fs, const char *path);
/* Is local inode @in (its O_PATH fd) a FIFO, socket or device node? */
bool special_inode(struct vs_inode *in);

/* Does synced directory @name of @parent hold local entries (special
 * nodes or local-only names) in the upper layer? Then rmdir is
 * ENOTEMPTY. */
bool special_dir_busy(struct vs_fs *fs, struct vs_inode *parent,
		      const char *name);

/* After synced directory @from (an upper path) was renamed to @to: move
 * what the upper layer has there along, in place of anything left at @to.
 * Best effort, logged. */
void special_dir_moved(struct vs_fs *fs, const char *from, const char *to);

/*
 * Remove what the upper layer holds at synced directory @path (an upper
 * path): its local-only names and special nodes, with all they hold. Done
 * when the directory is removed by a remote change (as rm -r would on a
 * disk), and before a synced directory is made at @path (by mkdir, a
 * remote change or a rename), so that leftovers of an earlier directory of
 * that name (removed while unmounted, say) never turn up in the new one.
 * Best effort, logged.
 */
void special_dir_clear(struct vs_fs *fs, const char *path);

/*
 * List the special nodes in the upper layer at synced directory @dir,
 * after the entries before @base: entry i (readdir order) has offset
 * @base + i + 1; those from @off on are added to @b. False when @b is
 * full.
 */
bool special_readdir(fuse_req_t req, struct vs_fs *fs, struct vs_inode *dir,
		     struct fs_dirbuf *b, off_t base, off_t off);

/*
 * rename(2) in synced directories where @name or @newname is a special
 * node (fs.c checked): a special node moves in the upper layer, replacing
 * a synced file there as on disk (its removal is journaled); a synced
 * entry moved over a special node replaces it. Replies.
 */
void special_rename(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		    const char *name, struct vs_inode *newparent,
		    const char *newname, unsigned int flags);

#endif
