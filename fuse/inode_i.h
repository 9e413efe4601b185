/*
 * inode_i.h - the inode table of the FUSE layer (internal to fuse/).
 *
 * Two kinds of inodes:
 *  - synced: built from the manifest at mount; metadata lives here and only
 *    here, so lookup/getattr/readdir never touch the network. Permanent for
 *    the life of the mount (until live updates remove them).
 *  - local: a file or directory under a local-only path (node_modules ...),
 *    backed by the upper directory. Created on lookup, keyed by the upper
 *    file's st_ino, freed when the kernel forgets it (nlookup == 0).
 *
 * LOCKING. One mutex, table->lock, protects: the ino hash, the local-ino
 * hash, every inode's parent/name/children/nlookup/removed, and the synced
 * metadata. Each inode's content fd has its own rwlock (fd_lock): readers
 * hold it shared while they read from the fd, open holds it exclusive
 * while it fetches (so a slow fetch of one file never blocks requests on
 * others) and the updater holds it exclusive to swap in new content, so an
 * fd is never closed under a reader. Lock order: fd_lock -> table->lock
 * (never the reverse). No lock is held across a kernel notification or a
 * call through the mountpoint.
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

struct vs_inode {
	uint64_t ino;
	struct vs_inode *parent; /* NULL for the root */
	char *name;		 /* "" for the root */
	enum vs_kind kind;
	bool local;	     /* lives in the upper layer */
	bool removed;	     /* synced, unlinked: freed at nlookup 0 */
	bool replaced;	     /* removed: a new inode took its name */
	atomic_bool learned; /* first open recorded (set under fs
				learn_lock; read unlocked first) */
	uint64_t nlookup;    /* kernel lookup count */

	/* synced metadata */
	uint32_t mode; /* permission bits */
	uint64_t size;
	int64_t mtime_ns;
	int64_t atime_ns; /* set by utimensat (local only); else mtime */
	bool atime_set;
	int64_t version;
	char hash[VS_HASH_HEX_LEN + 1];
	char *target; /* symlink target */
	/* owner kept per mount, never synced (owner.c); !owned: the
	 * mount's owner */
	bool owned;
	uint32_t uid, gid;
	bool dir_mode_local; /* a directory's chmod, kept there too (the
				mode of a directory is not synced) */

	/* synced directories: children sorted by name */
	struct vs_inode **children;
	size_t nchildren, children_alloc;

	/* local: st_ino in the upper layer; a local file whose name went
	 * while the kernel still knew it is reached through an O_PATH fd
	 * kept in @fd ("detached", see local.c local_detach), set once under
	 * the table lock */
	ino_t upper_ino;

	/* synced files: verified content, opened on first open */
	pthread_rwlock_t fd_lock;
	int fd; /* -1 until opened; protected by fd_lock (local inodes:
		   the detached fd, see upper_ino) */

	/* synced files written here (--writable), protected by fd_lock:
	 * the working copy (an O_TMPFILE in the cache dir) while local
	 * changes exist, its write generation, the generation last
	 * journaled, and the journal operation not yet committed */
	int wfd;
	bool wfailed; /* a write failed (EFBIG, ENOSPC ...): not saved
		       * until truncated or rewritten whole */
	uint64_t wgen, jgen;
	uint64_t pending_lseq;
	char pending_op[VS_UUID_BUFSZ];

	struct vs_inode *hnext;	 /* ino hash chain */
	struct vs_inode *lhnext; /* upper-ino hash chain (local only) */
};

struct vs_inode_table {
	pthread_mutex_t lock;
	struct vs_inode *root;
	struct vs_inode **ht; /* by ino */
	size_t ht_size, count;
	struct vs_inode **lht; /* local inodes by upper_ino */
	size_t lht_size;
	uint64_t next_ino;
};

int inode_table_init(struct vs_inode_table *t);
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

/* The following require t->lock held. */
struct vs_inode *inode_table_get(struct vs_inode_table *t, uint64_t ino);
struct vs_inode *inode_child_find(const struct vs_inode *dir, const char *name);
/* The local inode for upper file @upper_ino, or NULL. */
struct vs_inode *inode_local_find(struct vs_inode_table *t, ino_t upper_ino);
/* Find or create the local inode for upper file @upper_ino, setting its
 * parent and name. NULL on ENOMEM. */
struct vs_inode *inode_local_get(struct vs_inode_table *t,
				 struct vs_inode *parent, const char *name,
				 ino_t upper_ino, enum vs_kind kind);
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
/* Unlink synced @in from its directory; it is freed once the kernel has
 * forgotten it (at once if it never knew it). */
void inode_synced_remove(struct vs_inode_table *t, struct vs_inode *in);
/*
 * Put a new inode (a new ino, no content yet: the caller fills it in) in
 * the place of synced file or symlink @old, which is unlinked like
 * inode_synced_remove() - descriptors open on it keep its bytes. Used to
 * swap in a new version atomically for readers. NULL on ENOMEM (nothing
 * changed).
 */
struct vs_inode *inode_synced_replace(struct vs_inode_table *t,
				      struct vs_inode *old);
/* Move synced @in to @dir/@name (the caller removed any entry there).
 * 0 or -ENOMEM (then nothing changed). */
int inode_synced_move(struct vs_inode *in, struct vs_inode *dir,
		      const char *name);
/* The synced inode at project path @path ("" = root), or NULL. */
struct vs_inode *inode_lookup_path(struct vs_inode_table *t, const char *path);
/* Drop @n lookups; frees a local or removed inode that reaches 0. */
void inode_forget(struct vs_inode_table *t, struct vs_inode *in, uint64_t n);
/* Point a local inode at a new parent/name (after a rename or a lookup
 * through another hard link), moving its reference on a local parent.
 * 0 or -ENOMEM (then nothing changed). */
int inode_rename(struct vs_inode_table *t, struct vs_inode *in,
		 struct vs_inode *parent, const char *name);

/* Write the project-relative path of @in into @buf ("" for the root).
 * -ENAMETOOLONG if it does not fit. */
int inode_path(const struct vs_inode *in, char *buf, size_t size);

#endif
