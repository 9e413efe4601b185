/*
 * update.c - applying remote changes to the mounted tree (fs.h,
 * vs_fs_apply).
 *
 * DESIGN
 * Runs on the updater thread only (the subscriber's). Following
 * ../shared/notes/fuse-remote-changes.md, a change becomes visible as a
 * local save would:
 *  - edit: fetch and verify the new content, then save it as an editor's
 *    atomic save does (replace_path): put it into the table under a
 *    temporary name beside the file, rename it over the file through the
 *    mountpoint (the kernel looks the name up on the way), then push the
 *    bytes into the new inode's page cache. Watchers get IN_MOVED_FROM
 *    of the temporary name and IN_MOVED_TO of the file (what chokidar,
 *    and so Vite, takes for a save with no delay); readers have the old
 *    inode or the new one, each whole: never a mix of old and new bytes,
 *    nor an empty file. The rename's handler takes the old inode's
 *    fd_lock and replaces it only if it has no local changes and is
 *    older than the edit; else the temporary name goes again and the
 *    write-back merges.
 *    A change of mode alone is a chmod through the mountpoint
 *    (IN_ATTRIB).
 *  - create / mkdir / symlink: the metadata (and verified content fd) go
 *    into fs->pending, then mknod/mkdir/symlink through the mountpoint; the
 *    handler builds the inode from it (IN_CREATE, no stale negative dentry,
 *    the parent's cached listing dropped by the kernel itself).
 *  - delete / rename: unlink/rmdir (children first) and rename through the
 *    mountpoint (IN_DELETE, IN_MOVED_FROM/IN_MOVED_TO). What the upper
 *    layer holds under a removed or renamed synced directory (local-only
 *    names such as node_modules, FIFOs, sockets) is removed or moved with
 *    it (special.c), as rm -r or mv would do on a disk. A file with
 *    local changes not committed yet stays where it is (keeps), and so do
 *    the directories above it: its save goes to that path. A change that
 *    puts something of another kind there (a directory renamed there
 *    too), or renames another file onto it, moves it aside, with those
 *    directories (make_room, keep_aside): its save goes to that name.
 * No lock is held across a notification or a call through the mountpoint:
 * those are served by other FUSE threads (the loop is multithreaded).
 *
 * vs_fs_apply runs on the updater thread only; the handlers of its calls
 * through the mountpoint (update_*, at the end) run on the FUSE threads
 * that serve them, and take the table lock only (and, for an edit's
 * rename, the replaced inode's fd_lock before it).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_i.h"
#include "special_i.h"
#include "synced_i.h"
#include "vsync/cache.h"
#include "vsync/change.h"
#include "vsync/content.h"
#include "vsync/log.h"
#include "vsync/status.h"
#include "vsync/banned.h"

/*
 * The largest new version whose bytes an edit pushes into the kernel's
 * page cache (push_pages): source files, not bundles or media nobody may
 * read.
 */
#define VS_PUSH_PAGES_MAX (256 * 1024)

/*
 * The content a change carries (small: 1 KiB or less in a stream entry,
 * 16 KiB in the PostgreSQL feed) is kept in a memfd rather than in a
 * cache object while the memfds of the process hold less than this (and
 * than --cache-mem-max, struct vs_cache's mem_max):
 * making the object (create, write, rename on the cache dir's file
 * system) was a fifth of a pushed change's CPU. Beyond it, content goes
 * to the cache as before. A later mount fetches what only memory had on
 * its first read.
 */
#define UPDATE_MEM_BYTES_MAX ((uint64_t)16 << 20)

/* mountpoint + '/' + project path */
#define VS_MNT_PATH_MAX (PATH_MAX + VS_PATH_MAX + 2)

/* the names keep_aside tries: NAME.vsync-conflict, then -1 to -(N - 1) */
#define UPDATE_ASIDE_NAMES 16

/*
 * The absolute path of project path @path through the mountpoint. No fd on
 * the mount is kept open: it would make `fusermount3 -u` fail with EBUSY.
 * 0, or -ENAMETOOLONG if it does not fit in @size.
 */
static int mnt_path(struct vs_fs *fs, const char *path, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s", fs->cfg.mountpoint, path);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* What is at @path now: its kind, ino, or -ENOENT. */
static int stat_path(struct vs_fs *fs, const char *path, enum vs_kind *kind,
		     uint64_t *ino)
{
	struct vs_inode *in;

	pthread_mutex_lock(&fs->table.lock);
	in = inode_lookup_path(&fs->table, path);
	if (in) {
		*kind = in->kind;
		*ino = in->ino;
	}
	pthread_mutex_unlock(&fs->table.lock);
	return in ? 0 : -ENOENT;
}

/* Log a failed call through the mountpoint and return -errno. */
static int through_failed(const char *call, const char *path)
{
	int r = -errno;

	vs_warn("cannot apply change to '%s': %s: %s", path, call,
		strerror(-r));
	return r;
}

/* Has synced file @in local changes not committed yet? (table lock) A
 * working copy whose bytes are committed is none. */
static bool local_changes(const struct vs_inode *in)
{
	return in->wgen != in->jgen || inode_save_r(in)->pending_op[0];
}

static int delete_tree(struct vs_fs *fs, const char *path, int64_t keep,
		       bool *kept);

/*
 * Must file or symlink @in stay where it is, whatever remote change @seq
 * does to its path (table lock)? So it must while it has local changes
 * not committed yet (their save goes to the path it has), and when a save
 * or rename of it was committed after @seq (PostgreSQL has it at that
 * path: @seq came first, and is applied now). What the path had before
 * them in PostgreSQL, which @seq moved, in *@was (files only; version 0:
 * nothing), and its seq that commit's (0: not committed yet).
 */
static bool keeps(struct vs_fs *fs, const struct vs_inode *in, int64_t seq,
		  struct vs_landed *was)
{
	const struct vs_inode_save *save;

	*was = (struct vs_landed){.ino = in->ino};
	if (in->kind == VS_KIND_DIR)
		return false;
	if (fsw_landed_after(fs, in->ino, seq, was))
		return true;
	if (!local_changes(in))
		return false;
	save = inode_save_r(in);
	if (in->kind != VS_KIND_FILE || in->version == 0 || save->pending_moved)
		return true; /* PostgreSQL has nothing of it at this path */
	if (atomic_load(&in->wfailed) && save->theirs_version > in->version) {
		/* a remote version left unapplied (update.c, put_path) */
		was->version = save->theirs_version;
		was->mtime_ns = save->theirs_mtime_ns;
		was->mode = save->theirs_mode;
		memcpy(was->hash, save->theirs_hash, sizeof(was->hash));
		return true;
	}
	was->version = in->version;
	was->mtime_ns = in->mtime_ns;
	was->mode = in->mode;
	/* a save committed without the file taking its bytes (written
	 * since, write.c vs_fs_committed): the version is that save's, its
	 * bytes saved_hash, not hash (the version before it) */
	memcpy(was->hash, inode_committed_hash(in), sizeof(was->hash));
	return true;
}

/* Must @path, a file or symlink, stay whatever remote change @seq does to
 * it (keeps)? */
static bool busy_file(struct vs_fs *fs, const char *path, int64_t seq,
		      struct vs_landed *was)
{
	struct vs_inode *in;
	bool busy;

	pthread_mutex_lock(&fs->table.lock);
	in = inode_lookup_path(&fs->table, path);
	busy = in && keeps(fs, in, seq, was);
	pthread_mutex_unlock(&fs->table.lock);
	return busy;
}

/* Is an op on file @path (a save, a rename to it) journaled, not committed
 * yet? Its commit lands there after any remote change applied now. */
static bool op_journaled(struct vs_fs *fs, const char *path)
{
	struct vs_inode *in;
	bool journaled;

	pthread_mutex_lock(&fs->table.lock);
	in = inode_lookup_path(&fs->table, path);
	journaled =
	    in && in->kind != VS_KIND_DIR && inode_save_r(in)->pending_op[0];
	pthread_mutex_unlock(&fs->table.lock);
	return journaled;
}

/* Does directory @dir hold a file that must stay whatever remote change
 * @seq does to it (keeps)? With @landed, one that does because a commit
 * of ours after @seq put it there. (table lock) */
static bool tree_keeps(struct vs_fs *fs, const struct vs_inode *dir,
		       int64_t seq, bool landed)
{
	struct vs_landed was;

	for (size_t i = 0; i < dir->nchildren; i++) {
		const struct vs_inode *c = dir->children[i];

		if (c->kind == VS_KIND_DIR
			? tree_keeps(fs, c, seq, landed)
			: keeps(fs, c, seq, &was) && (!landed || was.seq))
			return true;
	}
	return false;
}

/* Delete everything under directory @path (children first); with @keep,
 * what delete_tree keeps stays, and *@kept tells whether anything did. */
static int delete_children(struct vs_fs *fs, const char *path, int64_t keep,
			   bool *kept)
{
	size_t skip = 0; /* children kept, before the next one (sorted) */

	for (;;) {
		struct vs_inode *dir;
		char *child = NULL;
		bool empty, child_kept = false;
		int r;

		pthread_mutex_lock(&fs->table.lock);
		dir = inode_lookup_path(&fs->table, path);
		empty = !dir || dir->nchildren <= skip;
		if (!empty) {
			const char *name = dir->children[skip]->name;
			size_t n = strlen(path) + strlen(name) + 2;

			child = malloc(n);
			if (child)
				snprintf(child, n, "%s/%s", path, name);
		}
		pthread_mutex_unlock(&fs->table.lock);
		if (empty)
			return 0;
		if (!child)
			return -ENOMEM;
		r = delete_tree(fs, child, keep, &child_kept);
		free(child);
		if (r < 0)
			return r;
		if (child_kept) {
			*kept = true;
			skip++;
		}
	}
}

/*
 * Remove @path (a whole subtree for a directory) through the mountpoint.
 * With @keep, the seq of a remote deletion (0: none), a file with local
 * changes not committed yet stays (keeps), and so do the directories
 * above it (*@kept): its save re-creates it in PostgreSQL over the
 * deletion (a conflict the write-back records), which the mount then
 * shows as it does now. Removing it would lose those writes, and the
 * save's commit, the mount's own, would never bring the file back.
 */
static int delete_tree(struct vs_fs *fs, const char *path, int64_t keep,
		       bool *kept)
{
	char *full;
	struct vs_landed was;
	enum vs_kind kind;
	uint64_t ino;
	bool sub_kept = false;
	int r;

	if (stat_path(fs, path, &kind, &ino) < 0)
		return 0; /* already gone */
	if (keep && busy_file(fs, path, keep, &was)) {
		vs_info("'%s' deleted remotely while it has local changes: "
			"kept (its save re-creates it)",
			path);
		if (!was.seq) /* until the save is committed */
			vs_status_conflict(path);
		*kept = true;
		return 0;
	}
	if (kind == VS_KIND_DIR) {
		r = delete_children(fs, path, keep, &sub_kept);
		if (r < 0)
			return r;
		if (sub_kept) {
			*kept = true;
			return 0;
		}
	}
	/* (on the heap, and only now: this recurses once per level of the
	 * tree, which may be as deep as VS_PATH_MAX allows; a mountpoint
	 * path in each frame overflowed the updater's stack at ~1000) */
	full = malloc(VS_MNT_PATH_MAX);
	if (!full)
		return -ENOMEM;
	r = mnt_path(fs, path, full, VS_MNT_PATH_MAX);
	if (r == 0 && kind == VS_KIND_DIR) {
		if (rmdir(full) < 0)
			r = through_failed("rmdir", path);
		else /* its local entries go with it */
			special_dir_clear(fs, path);
	} else if (r == 0 && unlink(full) < 0) {
		r = through_failed("unlink", path);
	}
	free(full);
	return r;
}

/* Remove @path (a whole subtree for a directory) through the mountpoint,
 * whatever it holds: to make room for what replaces it. */
static int delete_path(struct vs_fs *fs, const char *path)
{
	bool kept = false;

	return delete_tree(fs, path, 0, &kept);
}

/*
 * Add @name, of state @st, to synced directory @dir (table lock): its
 * content @fd (files; the inode takes it on success: no reader can hold
 * fd_lock on a new inode), its @target (symlinks).
 * -EEXIST if @dir has @name already.
 */
static int synced_new(struct vs_fs *fs, struct vs_inode *dir, const char *name,
		      const struct vs_manifest_entry *st, const char *target,
		      int fd, struct vs_inode **out)
{
	struct vs_inode *in;
	char *link = NULL;
	int r;

	if (inode_child_find(dir, name))
		return -EEXIST;
	if (st->kind == VS_KIND_SYMLINK && !(link = strdup(target)))
		return -ENOMEM;
	r = inode_synced_child(&fs->table, dir, name, st->kind, &in);
	if (r < 0) {
		free(link);
		return r;
	}
	in->mode = st->mode & 07777;
	in->size = st->kind == VS_KIND_DIR ? 0 : st->size;
	in->mtime_ns = st->mtime_ns;
	in->version = st->version;
	memcpy(in->hash, st->hash, sizeof(in->hash));
	if (st->kind == VS_KIND_SYMLINK) {
		in->target = link;
		in->size = strlen(target);
	}
	inode_content_set(in, fd);
	*out = in;
	return 0;
}

/*
 * Create @path of state @st through the mountpoint, with content @fd
 * (files; consumed in every case).
 */
static int create_path(struct vs_fs *fs, const char *path,
		       const struct vs_manifest_entry *st, int fd)
{
	struct vs_pending *p = &fs->pending;
	char full[VS_MNT_PATH_MAX];
	size_t parent_len;
	const char *name = vs_path_basename(path, &parent_len);
	char parent[VS_PATH_MAX + 1];
	enum vs_kind pkind;
	uint64_t pino;
	int r;

	memcpy(parent, path, parent_len);
	parent[parent_len] = '\0';
	if (stat_path(fs, parent, &pkind, &pino) < 0 || pkind != VS_KIND_DIR) {
		if (fd >= 0)
			close(fd);
		return -ESTALE;
	}
	pthread_mutex_lock(&fs->table.lock);
	p->active = true;
	p->parent_ino = pino;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->st = *st;
	p->st.path = NULL;
	snprintf(p->target, sizeof(p->target), "%s",
		 st->target ? st->target : "");
	p->st.target = p->target;
	p->fd = fd;
	pthread_mutex_unlock(&fs->table.lock);

	r = mnt_path(fs, path, full, sizeof(full));
	if (r == 0) {
		if (st->kind == VS_KIND_DIR) {
			special_dir_clear(fs, path); /* leftovers */
			r = mkdir(full, st->mode & 07777);
		} else if (st->kind == VS_KIND_SYMLINK) {
			r = symlink(p->target, full);
		} else {
			r = mknod(full, S_IFREG | (st->mode & 07777), 0);
		}
		if (r < 0)
			r = through_failed("create", path);
	}

	pthread_mutex_lock(&fs->table.lock);
	p->active = false;
	fd = p->fd; /* left over if the handler did not take it */
	p->fd = -1;
	pthread_mutex_unlock(&fs->table.lock);
	if (fd >= 0)
		close(fd);
	return r;
}

static void moved_versions(struct vs_fs *fs, const char *path, uint64_t ino,
			   int64_t version);

/*
 * File @path (inode @ino), with local changes not committed yet, stands
 * where a remote change puts a directory, or something of another kind:
 * PostgreSQL refuses its save there (a directory), and removing it would
 * lose the writes. It is moved aside, beside it, to a free name
 * "<path>.vsync-conflict[-N]" through the mountpoint (the updater's own
 * rename: nothing journaled), where PostgreSQL has nothing: its save
 * creates that path. So is a directory (@kind) that still holds such
 * files (and the directories above them: delete_tree kept them) where a
 * remote change puts a file or symlink: PostgreSQL refuses their saves
 * under a file; moved, they are saved at their new paths (versions not
 * known: moved_versions), and so are their conflict marks.
 * 0, 1 if no such name is free (left where it is), or -errno.
 */
static int keep_aside(struct vs_fs *fs, const char *path, enum vs_kind kind,
		      uint64_t ino)
{
	char aside[VS_PATH_MAX + 1], from[VS_MNT_PATH_MAX], to[VS_MNT_PATH_MAX];
	enum vs_kind other_kind;
	uint64_t other;
	int n = -1, r;

	for (unsigned int i = 0; i < UPDATE_ASIDE_NAMES && n < 0; i++) {
		n = i ? snprintf(aside, sizeof(aside), "%s.vsync-conflict-%u",
				 path, i)
		      : snprintf(aside, sizeof(aside), "%s.vsync-conflict",
				 path);
		if (n < 0 || (size_t)n >= sizeof(aside) ||
		    vs_path_is_local(&fs->cfg.local, aside) ||
		    stat_path(fs, aside, &other_kind, &other) == 0)
			n = -1;
	}
	if (n < 0) {
		vs_warn("'%s' cannot be moved aside: '%s.vsync-conflict' and "
			"'-1' to '-%d' are taken (or too long): its local "
			"changes stay there, not synced (their save is "
			"refused there, and tried again less and less often)",
			path, path, UPDATE_ASIDE_NAMES - 1);
		return 1;
	}
	if ((r = mnt_path(fs, path, from, sizeof(from))) < 0 ||
	    (r = mnt_path(fs, aside, to, sizeof(to))) < 0)
		return r;
	if (rename(from, to) < 0)
		return through_failed("rename", aside);
	/* the conflicts its remote delete marked at @path (under it) go
	 * with it: no save comes there now to clear them */
	vs_status_moved(path, aside);
	if (kind == VS_KIND_DIR) {
		moved_versions(fs, aside, ino, -1);
		special_dir_moved(fs, path, aside); /* as mv would */
		vs_warn("'%s' replaced remotely while files under it have "
			"local changes: moved to '%s' (their saves create "
			"them there)",
			path, aside);
		return 0;
	}
	moved_versions(fs, aside, ino, 0); /* its save creates it */
	vs_warn("'%s' replaced remotely while it has local changes: moved "
		"to '%s' (its save creates it there)",
		path, aside);
	vs_status_conflict(aside); /* until the save is committed */
	return 0;
}

/*
 * Make room at @path for what remote change @seq puts there (something of
 * another kind than what is there, made or renamed there, or a file
 * renamed over it): remove it (a whole subtree for a directory), but
 * files that must stay (keeps), at @path or under it (delete_tree keeps
 * those, and the directories above them): ones with local changes not
 * committed yet go aside, @path with them (keep_aside); one a commit of
 * ours after @seq put there stays (PostgreSQL has it there, over @seq),
 * and so does what is at @path.
 * 0, 1 if something stays at @path (the change is left unapplied there:
 * what stays wins), or -errno.
 */
static int make_room(struct vs_fs *fs, const char *path, int64_t seq)
{
	struct vs_landed was;
	struct vs_inode *in;
	enum vs_kind kind;
	uint64_t ino;
	bool kept = false, landed;
	int r;

	if (stat_path(fs, path, &kind, &ino) < 0)
		return 0;
	if (kind == VS_KIND_DIR) {
		r = delete_tree(fs, path, seq, &kept);
		if (r < 0 || !kept)
			return r;
		pthread_mutex_lock(&fs->table.lock);
		in = inode_lookup_path(&fs->table, path);
		landed = in && tree_keeps(fs, in, seq, true);
		pthread_mutex_unlock(&fs->table.lock);
	} else if (busy_file(fs, path, seq, &was)) {
		landed = was.seq != 0;
	} else {
		return delete_path(fs, path);
	}
	r = landed ? 1 : keep_aside(fs, path, kind, ino);
	if (r == 1)
		vs_warn("'%s' replaced remotely while %s local changes: kept, "
			"the change is not shown",
			path,
			kind == VS_KIND_DIR ? "files under it have" : "it has");
	return r;
}

/* Make sure every directory leading to @path exists (mode 0755), for
 * remote change @seq. 0, 1 if a file that must stay is in the way
 * (make_room), or -errno. */
static int ensure_parents(struct vs_fs *fs, const char *path, int64_t seq,
			  int64_t mtime_ns)
{
	struct vs_manifest_entry dir = {.kind = VS_KIND_DIR,
					.mode = 0755,
					.version = 1,
					.mtime_ns = mtime_ns};
	char prefix[VS_PATH_MAX + 1];

	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		enum vs_kind kind;
		uint64_t ino;
		int r;

		memcpy(prefix, path, (size_t)(s - path));
		prefix[s - path] = '\0';
		r = stat_path(fs, prefix, &kind, &ino);
		if (r == 0 && kind == VS_KIND_DIR)
			continue;
		if (r == 0 && (r = make_room(fs, prefix, seq)) != 0)
			return r;
		r = create_path(fs, prefix, &dir, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Put the new version @st (content @fd, consumed) of a file or symlink
 * under name @tmp straight into the table, with no call through the
 * mountpoint: replace_path's rename over the file is what watchers are to
 * see, and a mknod would cost the kernel a LOOKUP and a MKNOD round trip
 * before it. The inos of its parent and of itself in @parent_ino, @ino.
 */
static int place_path(struct vs_fs *fs, const char *tmp,
		      const struct vs_manifest_entry *st, int fd,
		      uint64_t *parent_ino, uint64_t *ino)
{
	char parent[VS_PATH_MAX + 1];
	size_t parent_len;
	const char *name = vs_path_basename(tmp, &parent_len);
	struct vs_inode *dir, *in;
	int r = -ESTALE;

	memcpy(parent, tmp, parent_len);
	parent[parent_len] = '\0';
	pthread_mutex_lock(&fs->table.lock);
	dir = inode_lookup_path(&fs->table, parent);
	if (dir && dir->kind == VS_KIND_DIR && !dir->local)
		r = synced_new(fs, dir, name, st, st->target ? st->target : "",
			       fd, &in);
	if (r == 0) {
		*parent_ino = dir->ino;
		*ino = in->ino;
	}
	pthread_mutex_unlock(&fs->table.lock);
	if (r < 0 && fd >= 0)
		close(fd);
	return r;
}

/* Take back what place_path put at @tmp (in directory @parent_ino): the
 * kernel never saw it. */
static void unplace_path(struct vs_fs *fs, uint64_t parent_ino, const char *tmp,
			 uint64_t ino)
{
	size_t parent_len;
	const char *name = vs_path_basename(tmp, &parent_len);
	struct vs_inode *dir, *in = NULL;

	pthread_mutex_lock(&fs->table.lock);
	dir = inode_table_get(&fs->table, parent_ino);
	if (dir)
		in = inode_child_find(dir, name);
	if (in && in->ino == ino)
		inode_synced_remove(&fs->table, in);
	pthread_mutex_unlock(&fs->table.lock);
}

/*
 * Rename @from (temporary name @tmp in directory @parent_ino) to @to
 * through the mountpoint: 0 or -errno. The kernel looks @tmp up on the
 * way (a LOOKUP round trip). A negative entry it kept for the name
 * (someone looked for it before) makes that ENOENT with no round trip:
 * it is dropped, and the rename made again.
 */
static int rename_placed(struct vs_fs *fs, const char *from, const char *to,
			 const char *tmp, uint64_t parent_ino)
{
	size_t parent_len;
	const char *name = vs_path_basename(tmp, &parent_len);
	int e;

	if (rename(from, to) == 0)
		return 0;
	e = errno; /* the rename's, whatever the notify leaves in errno */
	if (e != ENOENT || !fs->se ||
	    fuse_lowlevel_notify_inval_entry(fs->se, parent_ino, name,
					     strlen(name)) < 0)
		return -e;
	vs_debug("'%s': the kernel's negative entry dropped", tmp);
	return rename(from, to) == 0 ? 0 : -errno;
}

/*
 * Put a new version's @size checked bytes, @bytes or else those of @fd,
 * in the page cache of inode @ino, which the kernel knows, as a local
 * save leaves them: the watcher's read after the event, and the dev
 * server's, cost no READ round trip. Best effort: what is not pushed is
 * read as before.
 */
static void push_pages(struct vs_fs *fs, uint64_t ino, const void *bytes,
		       int fd, uint64_t size)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	int r;

	if (!fs->se)
		return;
	if (bytes) {
		buf.buf[0].mem = (void *)bytes; /* only read */
	} else {
		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = fd;
		buf.buf[0].pos = 0;
	}
	r = fuse_lowlevel_notify_store(fs->se, ino, 0, &buf, 0);
	if (r < 0)
		vs_debug("page push of ino %llu: %s", (unsigned long long)ino,
			 strerror(-r));
}

/* The write generation of inode @ino (wgen: bumped by every local write
 * and truncate), or UINT64_MAX once it is gone. */
static uint64_t placed_wgen(struct vs_fs *fs, uint64_t ino)
{
	struct vs_inode *in;
	uint64_t gen = UINT64_MAX;

	pthread_mutex_lock(&fs->table.lock);
	in = inode_table_get(&fs->table, ino);
	if (in)
		gen = atomic_load(&in->wgen);
	pthread_mutex_unlock(&fs->table.lock);
	return gen;
}

/*
 * Put the new version @st (content @fd, consumed; its checked bytes in
 * @bytes too, or NULL) of the file or symlink at @path, inode @old_ino
 * now, in place as an editor's atomic save does: put under a temporary
 * name beside it (place_path), renamed over it through the mountpoint,
 * its bytes then pushed into the page cache (push_pages). Watchers see
 * IN_MOVED_FROM of the temporary name and IN_MOVED_TO of @path (what
 * Vite's watcher and the others take for a save at once); a reader has
 * the old inode or the new one, each whole, never a mix or an empty file;
 * one that reads before the push has its bytes by READ, as before it. A
 * local write to the new inode between the rename and the push has the
 * kernel's pages of it dropped after the push (placed_wgen).
 * The rename's handler (update_rename) replaces @old_ino only if it still
 * is at @path, with no local changes and older than @st; else the
 * temporary name is removed again and the change left to the write-back
 * to merge.
 */
static int replace_path(struct vs_fs *fs, const char *path,
			const struct vs_manifest_entry *st, int fd,
			const void *bytes, uint64_t old_ino)
{
	struct vs_pending *p = &fs->pending;
	char tmp[VS_PATH_MAX + 1], from[VS_MNT_PATH_MAX], to[VS_MNT_PATH_MAX];
	size_t plen;
	enum vs_kind kind;
	uint64_t ino, tmp_parent = 0, tmp_ino = 0, gen = 0;
	int r, n = -1, push_fd = -1;
	bool push;

	(void)vs_path_basename(path, &plen);
	for (unsigned int i = 0; i < 32 && n < 0; i++) {
		/* beside it; in the top directory if that is too long (the
		 * rename then moves it across directories, still one event
		 * on @path's) */
		if (i == 16)
			plen = 0;
		n = snprintf(tmp, sizeof(tmp), "%.*s%s.vsync-save-%llx-%u",
			     (int)plen, path, plen ? "/" : "",
			     (unsigned long long)old_ino, i % 16);
		if (n < 0 || (size_t)n >= sizeof(tmp) ||
		    vs_path_is_local(&fs->cfg.local, tmp) ||
		    stat_path(fs, tmp, &kind, &ino) == 0 ||
		    mnt_path(fs, tmp, from, sizeof(from)) < 0)
			n = -1;
	}
	r = n < 0 ? -EEXIST : mnt_path(fs, path, to, sizeof(to));
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		vs_warn("cannot apply change to '%s': no temporary name: %s",
			path, strerror(-r));
		return r;
	}
	push = st->kind == VS_KIND_FILE && st->size > 0 &&
	       st->size <= VS_PUSH_PAGES_MAX && (bytes || fd >= 0);
	if (push && !bytes && (push_fd = dup(fd)) < 0)
		push = false;
	r = place_path(fs, tmp, st, fd, &tmp_parent, &tmp_ino);
	if (r < 0) {
		if (push_fd >= 0)
			close(push_fd);
		return r;
	}
	if (push)
		gen = placed_wgen(fs, tmp_ino);
	atomic_store(&p->replace_version, st->version);
	atomic_store(&p->replace_ino, old_ino);
	r = rename_placed(fs, from, to, tmp, tmp_parent);
	atomic_store(&p->replace_ino, 0);
	if (r == 0 && push) {
		push_pages(fs, tmp_ino, bytes, push_fd, st->size);
		/* a local write or truncate between the rename and the push
		 * may have had its pages overwritten by it (the push waited
		 * for a write's pages, so the write is counted by now):
		 * drop them, and read what the file has */
		if (placed_wgen(fs, tmp_ino) != gen)
			fs_inval_inode(fs, tmp_ino);
	}
	if (push_fd >= 0)
		close(push_fd);
	if (r == 0)
		return 0;
	if (unlink(from) == 0)
		; /* the handler took it out of the table */
	else if (errno == ENOENT)
		unplace_path(fs, tmp_parent, tmp, tmp_ino); /* never seen */
	else
		(void)through_failed("unlink", tmp);
	if (r == -EBUSY) {
		vs_info("'%s' changed remotely (v%lld) while it has local "
			"changes: left to the write-back to merge",
			path, (long long)st->version);
		vs_status_conflict(path); /* until the save is committed */
		return 0;
	}
	if (r == -ESTALE) {
		vs_debug("'%s': change v%lld overtaken while applied: left",
			 path, (long long)st->version);
		return 0;
	}
	errno = -r;
	return through_failed("rename", path);
}

/* chmod @path through the mountpoint so watchers see IN_ATTRIB. */
static int chmod_path(struct vs_fs *fs, const char *path, mode_t mode)
{
	char full[VS_MNT_PATH_MAX];
	int r = mnt_path(fs, path, full, sizeof(full));

	if (r < 0)
		return r;
	if (chmod(full, mode & 07777) < 0)
		return through_failed("chmod", path);
	return 0;
}

/*
 * Put state @st at @path, for remote change @seq: swap the content of an
 * existing file or symlink in place, or create it (replacing something
 * of another kind: make_room, which may leave the change unapplied).
 * @delta_base (NULL or "": none) is the content the change's Redis delta
 * applies to: if we have it, the new content is made from the delta
 * (vs_content_prepare_delta()), else it is fetched in full. @fd: the
 * content of a file opened already (consumed), -1: open
 * it here; @bytes: its checked bytes in memory too, or NULL.
 */
/*
 * Take change @seq up (fs->seen_seq, the updater's mark): a delete made
 * here from now on is of the tree with it (fsw_remove), and PostgreSQL
 * deletes it with the rest; one made before is of the tree without it,
 * and PostgreSQL refuses it if the change is someone else's. So a change
 * is taken up where the updater looks at what it changes: a file's under
 * the table lock a delete needs to remove the file (put_path), after its
 * content is fetched. A delete is then either of the file with the
 * change (which, finding the file gone, leaves it: replace_path) or
 * without it (the change brings the path back). Given back when the
 * change is to be applied again (vs_fs_apply).
 */
static void take_up(struct vs_fs *fs, int64_t seq)
{
	if (seq > atomic_load(&fs->seen_seq))
		atomic_store(&fs->seen_seq, seq); /* (one updater thread) */
}

static int put_path(struct vs_fs *fs, const char *path, int64_t seq,
		    const struct vs_manifest_entry *st, const char *delta_base,
		    int fd, const void *bytes)
{
	enum { APPLY_NONE, APPLY_MODE, APPLY_SAVE } act = APPLY_SAVE;
	struct vs_inode *in;
	uint64_t old_ino;
	bool same_bytes, nomem = false;
	int r;

	if (st->kind == VS_KIND_FILE && fd < 0) {
		char base[VS_HASH_HEX_LEN + 1] = "";

		/* best effort: whatever they return, vs_content_open() finds
		 * the content in the cache or fetches it in full */
		if (delta_base && delta_base[0]) {
			(void)vs_content_prepare_delta(fs->cfg.content,
						       delta_base, st->hash,
						       st->size, path);
		} else if (vs_content_in_pieces(st->size)) {
			/* those pieces it shares with the version here are
			 * taken from the cache */
			pthread_mutex_lock(&fs->table.lock);
			in = inode_lookup_path(&fs->table, path);
			if (in && in->kind == VS_KIND_FILE)
				memcpy(base, in->hash, sizeof(base));
			pthread_mutex_unlock(&fs->table.lock);
			if (base[0])
				(void)vs_content_prepare_pieces(fs->cfg.content,
								base, st->hash,
								st->size, path);
		}
		r = vs_content_open(fs->cfg.content, st->hash, st->size, path,
				    &fd);
		if (r < 0)
			return r;
		bytes = NULL;
	}
	pthread_mutex_lock(&fs->table.lock);
	take_up(fs, seq); /* where the path is looked at, content in hand */
	in = inode_lookup_path(&fs->table, path);
	if (in && in->kind != st->kind) {
		pthread_mutex_unlock(&fs->table.lock);
		r = make_room(fs, path, seq);
		if (r != 0) {
			if (fd >= 0)
				close(fd);
			return r < 0 ? r : 0;
		}
		return create_path(fs, path, st, fd);
	}
	if (!in) {
		pthread_mutex_unlock(&fs->table.lock);
		return create_path(fs, path, st, fd);
	}

	/* an existing file or symlink */
	same_bytes = strcmp(in->hash, st->hash) == 0;
	if (in->version > 0 && st->version <= in->version) {
		/* not newer than what we hold (versions of a path only
		 * grow): one of our own saves coming back after a later one
		 * was committed. Applying it would put old bytes back and
		 * orphan the writers' open inode. */
		vs_debug("'%s': change v%lld is not newer than v%lld: "
			 "ignored",
			 path, (long long)st->version, (long long)in->version);
		act = APPLY_NONE;
	} else if (same_bytes) {
		/* the same bytes (our own commit coming back, a rollback to
		 * what we have, or a chmod): take its version quietly, and
		 * its mode as chmod(2) would */
		in->version = st->version;
		in->mtime_ns = st->mtime_ns;
		act = in->mode == (st->mode & 07777) ? APPLY_NONE : APPLY_MODE;
	} else if (local_changes(in)) {
		/* local changes not committed yet: they stay, and the
		 * committer merges with this change when it commits them */
		vs_info("'%s' changed remotely (v%lld) while it has local "
			"changes: left to the write-back to merge",
			path, (long long)st->version);
		vs_status_conflict(path); /* until the save is committed */
		if (atomic_load(&in->wfailed) &&
		    st->version > inode_save_r(in)->theirs_version) {
			/* nothing of it will be saved: its revert takes this
			 * version (write.c, revert_locked) */
			struct vs_inode_save *s = inode_save_get(in);

			if (s) {
				s->theirs_version = st->version;
				s->theirs_mtime_ns = st->mtime_ns;
				s->theirs_size = st->size;
				s->theirs_mode = st->mode & 07777;
				memcpy(s->theirs_hash, st->hash,
				       sizeof(s->theirs_hash));
			} else {
				nomem = true;
			}
		}
		act = APPLY_NONE;
	}
	old_ino = in->ino;
	pthread_mutex_unlock(&fs->table.lock);
	if (act != APPLY_SAVE && fd >= 0)
		close(fd);
	if (nomem)
		return -ENOMEM;
	if (act == APPLY_MODE)
		return chmod_path(fs, path, st->mode);
	if (act == APPLY_NONE)
		return 0;
	/*
	 * The new version is a new inode in the old one's place, as an
	 * editor's atomic save makes it: a reader that opened the old one
	 * reads it whole (size and bytes agree), the next open finds the new
	 * one. Swapping bytes in place could let a reader that fetched the
	 * size just before the swap read the new bytes cut to the old length.
	 */
	return replace_path(fs, path, st, fd, bytes, old_ino);
}

/*
 * Inode @ino, just moved to @path by a remote rename, takes the versions
 * PostgreSQL numbers at its new path (versions are per path: a file
 * renamed to a fresh path is at v1 there): @version, the rename's, for a
 * file or symlink; for a directory, unknown (-1) for the files under it,
 * as after a local rename. Keeping the old path's version would make
 * every later change of the new path up to it look old (ignored) and the
 * next local save be based on a version the path never had.
 */
static void moved_versions(struct vs_fs *fs, const char *path, uint64_t ino,
			   int64_t version)
{
	struct vs_inode *in;

	pthread_mutex_lock(&fs->table.lock);
	in = inode_lookup_path(&fs->table, path);
	if (in && in->ino == ino) {
		if (in->kind == VS_KIND_DIR)
			inode_forget_versions(in);
		else
			in->version = version;
	}
	pthread_mutex_unlock(&fs->table.lock);
}

/*
 * The committed content @was->hash of file inode @ino: from the cache,
 * else the inode's own content while it still is that version (content
 * that came with a change may live in memory only). 0 and an fd, or
 * -ENOENT.
 */
static int committed_fd(struct vs_fs *fs, uint64_t ino,
			const struct vs_landed *was, int *fd)
{
	struct vs_inode *in;

	if (fs->cfg.cache && vs_cache_open(fs->cfg.cache, was->hash, fd) == 0)
		return 0;
	*fd = -1;
	pthread_mutex_lock(&fs->table.lock);
	in = inode_table_get(&fs->table, ino);
	if (in)
		in->nlookup++; /* pinned: not freed while we use it */
	pthread_mutex_unlock(&fs->table.lock);
	if (!in)
		return -ENOENT;
	inode_fd_rdlock(&fs->table, in);
	pthread_mutex_lock(&fs->table.lock);
	if (in->fd >= 0 && strcmp(in->hash, was->hash) == 0)
		*fd = fcntl(in->fd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_unlock(&fs->table.lock);
	inode_fd_unlock(&fs->table, in);
	inode_unpin(&fs->table, in);
	return *fd >= 0 ? 0 : -ENOENT;
}

/*
 * File @old_path (inode @ino) stays where it is (keeps) while remote
 * change @seq moved it to @path: its save re-creates the old path over the
 * move (a conflict), and @path gets the version the change moved there,
 * @moved (the change's state), or else @was (version 0: nothing, the
 * file was never committed at @old_path).
 */
static int keep_moved(struct vs_fs *fs, int64_t seq, const char *old_path,
		      uint64_t ino, const char *path,
		      const struct vs_manifest_entry *moved,
		      const struct vs_landed *was)
{
	struct vs_manifest_entry st = {.kind = VS_KIND_FILE,
				       .mode = was->mode,
				       .version = -1, /* unknown: moved */
				       .mtime_ns = was->mtime_ns};
	struct stat sb;
	int fd, r;

	vs_info("'%s' moved remotely to '%s' while it has local changes: "
		"kept (its save re-creates it)",
		old_path, path);
	if (!was->seq)
		vs_status_conflict(old_path); /* until the save is committed */
	if (moved)
		return put_path(fs, path, seq, moved, NULL, -1, NULL);
	if (!was->version)
		return 0;
	memcpy(st.hash, was->hash, sizeof(st.hash));
	r = committed_fd(fs, ino, was, &fd);
	if (r == 0 && fstat(fd, &sb) < 0) {
		r = -errno;
		close(fd);
	}
	if (r < 0) {
		vs_warn("'%s': its committed version is not here: not shown "
			"(%s)",
			path, strerror(-r));
		return 0;
	}
	st.size = (uint64_t)sb.st_size;
	return put_path(fs, path, seq, &st, NULL, fd, NULL);
}

static int split_dir(struct vs_fs *fs, int64_t seq, const char *from,
		     const char *to, const struct vs_manifest_entry *st);

/* split_entry's paths: on the heap, as it recurses once per level of the
 * tree (with split_dir), and the tree may be as deep as VS_PATH_MAX
 * allows: these on the stack overflowed the updater's at ~330 levels */
struct split_paths {
	char src[VS_PATH_MAX + 1], dst[VS_PATH_MAX + 1];
	char full_src[VS_MNT_PATH_MAX], full_dst[VS_MNT_PATH_MAX];
};

/*
 * @from/@name, under a directory remote change @seq moved to @to while
 * files under it must stay (keeps): a file that must stays, and @to/@name
 * gets its committed version; a directory holding one is split in turn;
 * the rest moves.
 */
static int split_entry_in(struct vs_fs *fs, int64_t seq, const char *from,
			  const char *to, const char *name,
			  struct split_paths *p)
{
	char *src = p->src, *dst = p->dst;
	struct vs_manifest_entry dir = {.kind = VS_KIND_DIR};
	struct vs_landed was;
	struct vs_inode *in;
	enum vs_kind kind = VS_KIND_FILE, dkind;
	bool split = false, keep = false, left = false;
	uint64_t ino = 0, dino;
	int n, r;

	n = snprintf(src, sizeof(p->src), "%s/%s", from, name);
	if (n < 0 || (size_t)n >= sizeof(p->src))
		return -ENAMETOOLONG;
	n = snprintf(dst, sizeof(p->dst), "%s/%s", to, name);
	if (n < 0 || (size_t)n >= sizeof(p->dst))
		return -ENAMETOOLONG;
	pthread_mutex_lock(&fs->table.lock);
	in = inode_lookup_path(&fs->table, src);
	if (in) {
		ino = in->ino;
		kind = in->kind;
		if (in->kind == VS_KIND_DIR) {
			split = tree_keeps(fs, in, seq, false);
			dir.mode = in->mode;
			dir.mtime_ns = in->mtime_ns;
			dir.version = in->version;
		} else {
			keep = keeps(fs, in, seq, &was);
		}
	}
	pthread_mutex_unlock(&fs->table.lock);
	if (!in)
		return 0; /* gone meanwhile */
	if (stat_path(fs, dst, &dkind, &dino) == 0) {
		/* what a remote delete kept at @to (apply_rename): a
		 * directory takes the entries in turn; files with local
		 * changes stay, and what PostgreSQL moved over them is not
		 * shown (their saves go there: a conflict) */
		if (kind == VS_KIND_DIR && dkind == VS_KIND_DIR)
			r = split_dir(fs, seq, src, dst, &dir);
		else if (keep)
			return 0;
		else
			r = 0;
		return r < 0 ? r : delete_tree(fs, src, seq, &left);
	}
	if (split)
		return split_dir(fs, seq, src, dst, &dir);
	if (keep)
		return keep_moved(fs, seq, src, ino, dst, NULL, &was);
	if ((r = mnt_path(fs, src, p->full_src, sizeof(p->full_src))) < 0 ||
	    (r = mnt_path(fs, dst, p->full_dst, sizeof(p->full_dst))) < 0)
		return r;
	if (rename(p->full_src, p->full_dst) < 0)
		return through_failed("rename", dst);
	moved_versions(fs, dst, ino, -1);
	return 0;
}

static int split_entry(struct vs_fs *fs, int64_t seq, const char *from,
		       const char *to, const char *name)
{
	struct split_paths *p = malloc(sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	r = split_entry_in(fs, seq, from, to, name, p);
	free(p);
	return r;
}

/*
 * Directory @from, moved to @to (state @st) by remote change @seq, holds
 * files that must stay (keeps): @to is made, and every entry of @from
 * goes there (split_entry) but those files, which stay with the
 * directories above them. Their saves re-create them at @from in
 * PostgreSQL; @to has the versions the change moved, as PostgreSQL has.
 */
static int split_dir(struct vs_fs *fs, int64_t seq, const char *from,
		     const char *to, const struct vs_manifest_entry *st)
{
	struct vs_inode *dir;
	char **names = NULL;
	size_t n = 0;
	enum vs_kind kind;
	uint64_t ino;
	/* (there: what a remote delete kept, apply_rename) */
	int r = stat_path(fs, to, &kind, &ino) == 0 && kind == VS_KIND_DIR
		    ? 0
		    : create_path(fs, to, st, -1);

	/* the names now: the loop moves them away */
	pthread_mutex_lock(&fs->table.lock);
	dir = inode_lookup_path(&fs->table, from);
	if (r == 0 && dir && dir->nchildren) {
		names = calloc(dir->nchildren, sizeof(*names));
		if (!names)
			r = -ENOMEM;
		for (; r == 0 && n < dir->nchildren; n++)
			if (!(names[n] = strdup(dir->children[n]->name)))
				r = -ENOMEM;
	}
	pthread_mutex_unlock(&fs->table.lock);
	for (size_t i = 0; i < n && r == 0; i++)
		r = split_entry(fs, seq, from, to, names[i]);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static int apply_rename(struct vs_fs *fs, const struct vs_change *c)
{
	char from[VS_MNT_PATH_MAX], to[VS_MNT_PATH_MAX];
	struct vs_landed was;
	struct vs_inode *in;
	enum vs_kind kind;
	uint64_t ino, src_ino;
	bool split = false, dst_kept = false, left = false, resumed;
	int r;

	if (stat_path(fs, c->old_path, &kind, &src_ino) < 0) {
		/* we never had the source: a file can still be put in place,
		 * a directory's subtree cannot be guessed */
		if (c->state.kind == VS_KIND_DIR)
			return -ESTALE;
		return put_path(fs, c->path, c->seq, &c->state, NULL, -1, NULL);
	}
	if (strncmp(c->path, c->old_path, strlen(c->old_path)) == 0 &&
	    c->path[strlen(c->old_path)] == '/')
		return -ESTALE; /* into itself: the database refuses this */
	r = ensure_parents(fs, c->path, c->seq, c->state.mtime_ns);
	if (r != 0)
		return r < 0 ? r : 0;
	if (kind != VS_KIND_DIR && busy_file(fs, c->old_path, c->seq, &was))
		return keep_moved(fs, c->seq, c->old_path, src_ino, c->path,
				  &c->state, &was);
	if (kind == VS_KIND_DIR) {
		pthread_mutex_lock(&fs->table.lock);
		in = inode_lookup_path(&fs->table, c->old_path);
		split = in && tree_keeps(fs, in, c->seq, false);
		pthread_mutex_unlock(&fs->table.lock);
	}
	/* a split of this change that failed part-way (retried): what is at
	 * the new path is what it moved there, and stays; the split goes on
	 * into it (split_entry takes what is there) */
	resumed = fs->split_seq == c->seq;
	if (resumed) {
		vs_info("change %lld: the split of '%s' into '%s' goes on",
			(long long)c->seq, c->old_path, c->path);
		dst_kept = fs->split_dst_kept;
	}
	/* PostgreSQL moves nothing over a directory: one here is what a
	 * remote delete left, files with local changes under it (their
	 * saves re-create them), which stay (delete_tree); nor a directory
	 * over anything: a file here is one PostgreSQL does not have, which
	 * makes room as for a remote mkdir (make_room: one with local
	 * changes goes aside, even with an op journaled: PostgreSQL
	 * refuses that op at a directory, and it is made again aside) */
	if (!resumed && stat_path(fs, c->path, &kind, &ino) == 0) {
		if (kind != VS_KIND_DIR && c->state.kind == VS_KIND_DIR)
			dst_kept = (r = make_room(fs, c->path, c->seq)) == 1;
		else if (kind == VS_KIND_DIR)
			r = delete_tree(fs, c->path, c->seq, &dst_kept);
		if (r < 0)
			return r;
	}
	/* a file over a file (PostgreSQL allows it) that must stay (keeps):
	 * one with local changes goes aside (make_room, which may leave it
	 * instead), but one with an op journaled stays: that op is
	 * committed at its path after this change, over it (which stays in
	 * history: a conflict the write-back records), as a commit of ours
	 * after the change is */
	if (!resumed && !dst_kept && c->state.kind != VS_KIND_DIR &&
	    busy_file(fs, c->path, c->seq, &was)) {
		if (!was.seq && op_journaled(fs, c->path))
			dst_kept = true;
		else if ((r = make_room(fs, c->path, c->seq)) != 0)
			return r < 0 ? r
				     : delete_tree(fs, c->old_path, c->seq,
						   &left);
	}
	if (dst_kept && (kind != VS_KIND_DIR || c->state.kind != VS_KIND_DIR)) {
		/* a file over one of them, or a directory over a file
		 * kept: what stays wins here, the move is not shown */
		vs_warn("'%s' moved remotely to '%s', where local changes "
			"stay: not shown there",
			c->old_path, c->path);
		return delete_tree(fs, c->old_path, c->seq, &left);
	}
	if (split || dst_kept || resumed) {
		/* files under it must stay, as a file renamed does (above),
		 * or under the directory it moves to: the rest moves, the
		 * new path has what PostgreSQL has but for those */
		r = split_dir(fs, c->seq, c->old_path, c->path, &c->state);
		/* its local entries go with it, as with a local rename */
		special_dir_moved(fs, c->old_path, c->path);
		/* (what is left of it, merged into the kept one) */
		if (r == 0 && dst_kept)
			r = delete_tree(fs, c->old_path, c->seq, &left);
		/* not atomic: a failure part-way leaves entries moved, which
		 * the retry must not take for leftovers at the new path */
		fs->split_seq = r < 0 ? c->seq : 0;
		fs->split_dst_kept = dst_kept;
		return r;
	}
	if ((r = mnt_path(fs, c->old_path, from, sizeof(from))) < 0 ||
	    (r = mnt_path(fs, c->path, to, sizeof(to))) < 0)
		return r;
	if (rename(from, to) < 0)
		return through_failed("rename", c->path);
	moved_versions(fs, c->path, src_ino, c->state.version);
	if (c->state.kind == VS_KIND_DIR) {
		/* its local entries go with it, as with a local rename */
		special_dir_moved(fs, c->old_path, c->path);
		return 0;
	}
	return put_path(fs, c->path, c->seq, &c->state, NULL, -1, NULL);
}

static int fs_apply(struct vs_fs *fs, const struct vs_change *c);

/* A change that fails, to be applied again later (all but -ESTALE,
 * which skips it: vs_sub's deliver), is given back (take_up): a delete
 * made meanwhile is of what the mount shows without it, and the change
 * brings the path back when applied. */
int vs_fs_apply(struct vs_fs *fs, const struct vs_change *c)
{
	int64_t prior = atomic_load(&fs->seen_seq);
	int r = fs_apply(fs, c);

	if (r < 0 && r != -ESTALE)
		atomic_store(&fs->seen_seq, prior); /* (one updater thread) */
	return r;
}

static int fs_apply(struct vs_fs *fs, const struct vs_change *c)
{
	static _Thread_local int tid; /* a syscall less per change */
	bool own, put;
	int r, fd = -1;

	if (!tid)
		tid = (int)gettid();
	atomic_store(&fs->updater_tid, tid);
	/* changes come in seq order: our commits up to this one can never
	 * keep a file from it or a later one (keeps) */
	pthread_mutex_lock(&fs->table.lock);
	fsw_landed_prune(fs, c->seq);
	pthread_mutex_unlock(&fs->table.lock);
	/* taken up here (take_up), but a file or symlink put in place once
	 * its content is in hand (put_path) */
	own = fsw_own_change(fs, c->seq);
	put = c->op != VS_OP_DELETE && c->op != VS_OP_RENAME &&
	      c->state.kind != VS_KIND_DIR &&
	      !vs_path_is_local(&fs->cfg.local, c->path);
	if (own || !put)
		take_up(fs, c->seq);
	if (own) {
		vs_debug("change %lld (%s '%s') is our own: the tree has it",
			 (long long)c->seq, vs_change_op_name(c->op), c->path);
		return 0;
	}
	if (vs_path_is_local(&fs->cfg.local, c->path)) {
		if (c->op == VS_OP_RENAME &&
		    !vs_path_is_local(&fs->cfg.local, c->old_path)) {
			/* moved out of the synced tree: gone from it */
			bool kept = false;

			return delete_tree(fs, c->old_path, c->seq, &kept);
		}
		vs_info("change %lld to local-only path '%s' ignored",
			(long long)c->seq, c->path);
		return 0;
	}
	switch (c->op) {
	case VS_OP_DELETE: {
		bool kept = false;

		return delete_tree(fs, c->path, c->seq, &kept);
	}
	case VS_OP_RENAME:
		/* moved in from a local-only path: a file is put in place
		 * (its content comes by its hash); a directory's subtree
		 * cannot be guessed */
		if (!vs_path_is_local(&fs->cfg.local, c->old_path))
			return apply_rename(fs, c);
		if (c->state.kind == VS_KIND_DIR)
			return -ESTALE;
		r = ensure_parents(fs, c->path, c->seq, c->state.mtime_ns);
		return r != 0 ? (r < 0 ? r : 0)
			      : put_path(fs, c->path, c->seq, &c->state, NULL,
					 -1, NULL);
	default:
		r = ensure_parents(fs, c->path, c->seq, c->state.mtime_ns);
		if (r != 0)
			return r < 0 ? r : 0;
		if (c->state.kind == VS_KIND_DIR) {
			enum vs_kind kind;
			uint64_t ino;

			if (stat_path(fs, c->path, &kind, &ino) == 0 &&
			    kind == VS_KIND_DIR)
				return 0;
			if ((r = make_room(fs, c->path, c->seq)) != 0)
				return r < 0 ? r : 0;
			return create_path(fs, c->path, &c->state, -1);
		}
		/* small content the change carries: no round trip, kept
		 * in memory while few inodes have theirs there, else put
		 * in the cache and opened once (best effort; put_path()
		 * fetches what is still missing) */
		if (c->data && c->state.kind == VS_KIND_FILE) {
			uint64_t cap = UPDATE_MEM_BYTES_MAX;

			if (fs->cfg.cache && fs->cfg.cache->mem_max < cap)
				cap = fs->cfg.cache->mem_max;
			(void)vs_content_put(
			    fs->cfg.content, c->state.hash, c->state.size,
			    c->data, c->data_len, c->path,
			    vs_cache_mem_bytes() + c->data_len <= cap, &fd);
		}
		/* once in @fd, the bytes are checked: its page push takes
		 * them from here, not through a dup of @fd */
		return put_path(
		    fs, c->path, c->seq, &c->state, c->delta_base, fd,
		    fd >= 0 && c->data_len == c->state.size ? c->data : NULL);
	}
}

/* ---- the handlers of the updater's own calls through the mountpoint ----
 *
 * They run on the FUSE threads, while the updater waits in its call: fs.c
 * hands a request over here when fs_own_request() says it is the
 * updater's. They apply the change to the inode table instead of refusing
 * or journaling it: it is in PostgreSQL already.
 */

void update_create(fuse_req_t req, struct vs_fs *fs, fuse_ino_t parent_ino,
		   const char *name, enum vs_kind kind)
{
	struct vs_pending *p = &fs->pending;
	struct fuse_entry_param e;
	struct vs_inode *dir, *in = NULL;
	int r = -EIO;

	pthread_mutex_lock(&fs->table.lock);
	dir = inode_table_get(&fs->table, parent_ino);
	if (!p->active || p->parent_ino != parent_ino ||
	    strcmp(p->name, name) != 0 || p->st.kind != kind || !dir) {
		vs_error("internal error: updater created '%s' with no "
			 "matching pending change",
			 name);
		goto out;
	}
	r = synced_new(fs, dir, name, &p->st, p->target, p->fd, &in);
	if (r < 0)
		goto out;
	p->fd = -1;
	p->active = false;
	in->nlookup++;
	synced_entry(fs, in, &e);
out:
	pthread_mutex_unlock(&fs->table.lock);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

void update_remove(fuse_req_t req, struct vs_fs *fs, fuse_ino_t parent_ino,
		   const char *name, bool dir)
{
	struct vs_inode *parent, *in = NULL, *gone = NULL;
	int r = 0;

	pthread_mutex_lock(&fs->table.lock);
	parent = inode_table_get(&fs->table, parent_ino);
	if (parent && !parent->local)
		in = inode_child_find(parent, name);
	r = inode_remove_check(in, dir);
	if (r == 0) {
		gone = fsw_removed_pin(in);
		inode_synced_remove(&fs->table, in);
	}
	pthread_mutex_unlock(&fs->table.lock);
	if (gone)
		fsw_removed_unpin(fs, gone);
	fuse_reply_err(req, -r);
}

void update_rename(fuse_req_t req, struct vs_fs *fs, fuse_ino_t parent_ino,
		   const char *name, fuse_ino_t newparent_ino,
		   const char *newname)
{
	struct vs_inode *parent, *newparent, *in = NULL, *old, *saved = NULL,
					     *gone = NULL;
	uint64_t replace_ino = atomic_load(&fs->pending.replace_ino);
	int64_t replace_version = atomic_load(&fs->pending.replace_version);
	int r = 0;

	/* a remote edit's atomic save (replace_path): the inode it replaces
	 * is pinned and its fd_lock taken (before the table lock, as
	 * everywhere), so no local write is under way while it is judged */
	pthread_mutex_lock(&fs->table.lock);
	if (replace_ino) {
		saved = inode_table_get(&fs->table, replace_ino);
		if (saved)
			saved->nlookup++;
	}
	pthread_mutex_unlock(&fs->table.lock);
	if (saved)
		inode_fd_wrlock(&fs->table, saved);

	pthread_mutex_lock(&fs->table.lock);
	parent = inode_table_get(&fs->table, parent_ino);
	newparent = inode_table_get(&fs->table, newparent_ino);
	if (parent && newparent && !parent->local && !newparent->local)
		in = inode_child_find(parent, name);
	if (!in) {
		r = -ENOENT;
		goto out;
	}
	old = inode_child_find(newparent, newname);
	if (old == in)
		goto out;
	if (replace_ino) {
		if (!saved || old != saved || saved->removed ||
		    (old->version > 0 && replace_version <= old->version))
			r = -ESTALE; /* moved on meanwhile: a newer commit */
		else if (local_changes(old))
			r = -EBUSY; /* local changes: the write-back merges */
		if (r < 0)
			goto out;
	}
	r = inode_rename_check(in, newparent, old, false);
	if (r < 0)
		goto out;
	if (replace_ino) {
		/* the new version keeps what is local to the mount; writes
		 * through a descriptor of the old one are saved nowhere */
		in->owned = old->owned;
		in->uid = old->uid;
		in->gid = old->gid;
		old->replaced = true;
	}
	if (old) {
		gone = fsw_removed_pin(old);
		inode_synced_remove(&fs->table, old);
	}
	r = inode_synced_move(in, newparent, newname);
out:
	pthread_mutex_unlock(&fs->table.lock);
	if (gone)
		fsw_removed_unpin(fs, gone);
	if (saved) {
		inode_fd_unlock(&fs->table, saved);
		inode_unpin(&fs->table, saved);
	}
	fuse_reply_err(req, -r);
}

void update_setattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		    const struct stat *attr, int valid)
{
	struct stat st;

	/* the updater touching a changed file: apply, sync nothing */
	pthread_mutex_lock(&fs->table.lock);
	if (valid & FUSE_SET_ATTR_MODE)
		in->mode = attr->st_mode & 07777;
	if ((valid & FUSE_SET_ATTR_MTIME) && !(valid & FUSE_SET_ATTR_MTIME_NOW))
		in->mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 +
			       attr->st_mtim.tv_nsec;
	in->atime_set = false; /* a new version: atime follows */
	synced_stat(fs, in, &st);
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}
