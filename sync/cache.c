/*
 * cache.c - the content-addressed local cache (cache.h).
 *
 * Objects are written to tmp/ under a unique name and renamed to
 * objects/<h0h1>/<hash>, so a reader never sees one half-written (after a
 * crash one may be torn: the hash check on open catches it). Reads check
 * the bytes against the name before handing out the fd; a mismatch removes
 * the object so the next open fetches it again.
 *
 * Recency for the evictor (evict.c) is the atime: an open sets it when it
 * is older than CACHE_TOUCH_S (not on every open: a touch dirties the
 * inode), a store gives a fresh file, and a link or store that finds the
 * object there sets it at once, under evict_lock, so that the save that
 * is about to journal it does not lose it to an eviction already decided.
 */
#include "vsync/cache.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vsync/log.h"
#include "vsync/util.h"
#include "vsync/banned.h"

/* The largest per-project file (manifest, learned list) read back: a
 * bound for the buffer, far above any real manifest. */
#define CACHE_PROJECT_FILE_MAX ((size_t)1 << 30)
/* An open moves an object's atime when it is older than this. */
#define CACHE_TOUCH_S 60
/* Slots of the objects this process linked or checked (c->known). */
#define CACHE_KNOWN 1024

static const struct timespec touch_now[2] = {{.tv_nsec = UTIME_NOW},
					     {.tv_nsec = UTIME_OMIT}};

/* What an object of @len bytes is taken to allocate until a scan says
 * (whole 4 KiB blocks). */
static uint64_t est_bytes(uint64_t len)
{
	return (len + 4095) & ~(uint64_t)4095;
}

static int mkdirat_p(int dirfd, const char *name, mode_t mode)
{
	if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* When process @pid started (CLOCK_REALTIME, ns; to the clock tick), or
 * -1 if it does not run (or /proc cannot tell). */
static int64_t proc_start_ns(pid_t pid)
{
	char path[32], buf[512], *p;
	unsigned long long ticks;
	struct timespec real, boot;
	ssize_t n;
	long hz = sysconf(_SC_CLK_TCK);
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || hz <= 0)
		return -1;
	buf[n] = '\0';
	/* after "pid (comm)" (comm may hold anything): state is field 3,
	 * starttime field 22, in clock ticks since boot */
	p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return -1;
	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	return (int64_t)real.tv_sec * 1000000000 + real.tv_nsec -
	       ((int64_t)boot.tv_sec * 1000000000 + boot.tv_nsec) +
	       (int64_t)(ticks / (unsigned long long)hz) * 1000000000 +
	       (int64_t)(ticks % (unsigned long long)hz) * 1000000000 / hz;
}

/*
 * Remove the temporary files (tmp/<pid>.<n>, tmp_create) of processes
 * that are gone: a process killed while it wrote one (a large fetch: as
 * big as the content) leaves it, and nothing else ever removes it. The
 * dir may be shared (a mount --at, another process of this cache dir),
 * so a file whose process runs is left alone, unless it is older than
 * that process by more than a second: then the pid is another process's
 * now (a container's restarted agent often has the pid of the one
 * before, this process's own included). Anything else in tmp/ is not
 * ours: left. Best effort; logged when it removed something.
 */
static void tmp_sweep(struct vs_cache *c)
{
	uint64_t bytes = 0;
	size_t removed = 0;
	struct dirent *d;
	struct stat st;
	DIR *dir;

	if (vs_opendirat(c->dir_fd, "tmp", true, &dir) < 0)
		return;
	while ((d = readdir(dir))) {
		unsigned long pid, n;
		int64_t start, mtime;
		int len = 0;

		if (sscanf(d->d_name, "%lu.%lu%n", &pid, &n, &len) != 2 ||
		    (size_t)len != strlen(d->d_name) || !pid ||
		    pid > INT32_MAX || !isdigit((unsigned char)d->d_name[0]) ||
		    fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			0 ||
		    !S_ISREG(st.st_mode))
			continue;
		start = proc_start_ns((pid_t)pid);
		mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 +
			st.st_mtim.tv_nsec;
		if (start >= 0 && mtime + 1000000000 >= start)
			continue; /* its process runs */
		if (unlinkat(dirfd(dir), d->d_name, 0) == 0) {
			removed++;
			bytes += (uint64_t)st.st_blocks * 512;
		}
	}
	closedir(dir);
	if (removed)
		vs_info("cache: removed %zu temporary file%s (%llu bytes) left "
			"in '%s/tmp' by processes that are gone",
			removed, removed == 1 ? "" : "s",
			(unsigned long long)bytes, c->dir);
}

int vs_cache_init(struct vs_cache *c, const char *dir)
{
	int r;

	c->dir = NULL;
	c->dir_fd = -1;
	c->pid = getpid();
	c->pins = NULL;
	c->npins = c->apins = 0;
	c->over = NULL;
	c->reclaim = NULL;
	c->known = NULL;
	c->limit = 0;
	c->mem_max = VS_CACHE_MEM_TOTAL_DEFAULT;
	atomic_init(&c->over_at, 0);
	atomic_init(&c->bytes, 0);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		vs_error("cannot create cache dir '%s': %s", dir, strerror(-r));
		return r;
	}
	c->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dir_fd < 0) {
		r = -errno;
		vs_error("cannot open cache dir '%s': %s", dir, strerror(-r));
		return r;
	}
	pthread_mutex_init(&c->evict_lock, NULL);
	pthread_mutex_init(&c->fill_lock, NULL);
	if ((r = mkdirat_p(c->dir_fd, "objects", 0700)) < 0 ||
	    (r = mkdirat_p(c->dir_fd, "tmp", 0700)) < 0 ||
	    (r = mkdirat_p(c->dir_fd, "projects", 0700)) < 0) {
		vs_error("cannot set up cache dir '%s': %s", dir, strerror(-r));
		goto fail;
	}
	/* the 256 fan-out directories are made by the first store into
	 * each (its rename or link fails with ENOENT, once): a cold start
	 * makes only those it needs, a save asks nothing more */
	c->dir = strdup(dir);
	if (!c->dir) {
		r = -ENOMEM;
		goto fail;
	}
	/* none (no memory): a link that finds an object hashes it */
	c->known = calloc(CACHE_KNOWN, sizeof(*c->known));
	tmp_sweep(c);
	return 0;
fail:
	pthread_mutex_destroy(&c->evict_lock);
	pthread_mutex_destroy(&c->fill_lock);
	close(c->dir_fd);
	c->dir_fd = -1;
	return r;
}

void vs_cache_release(struct vs_cache *c)
{
	if (c->dir) { /* initialised */
		pthread_mutex_destroy(&c->evict_lock);
		pthread_mutex_destroy(&c->fill_lock);
	}
	free(c->pins);
	c->pins = NULL;
	c->npins = c->apins = 0;
	free(c->known);
	c->known = NULL;
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	c->dir_fd = -1;
	free(c->dir);
	c->dir = NULL;
}

int vs_cache_lock(struct vs_cache *c, const char *file, int *fd_out,
		  pid_t *holder)
{
	char buf[24];
	ssize_t n;
	int fd, r, len;

	*fd_out = -1;
	*holder = 0;
	fd = openat(c->dir_fd, file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
		if (r == -EWOULDBLOCK &&
		    (n = pread(fd, buf, sizeof(buf) - 1, 0)) > 0) {
			buf[n] = '\0';
			*holder = (pid_t)strtol(buf, NULL, 10);
		}
		close(fd);
		return r;
	}
	/* who holds it, for the error of the next one that tries */
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	errno = 0;
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		r = errno ? -errno : -EIO;
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

void vs_cache_object_name(char out[8 + 3 + VS_HASH_HEX_LEN + 1],
			  const char *hash)
{
	snprintf(out, 8 + 3 + VS_HASH_HEX_LEN + 1, "objects/%.2s/%.64s", hash,
		 hash);
}

/* Add @n to the estimate; crossing the watch's limit calls it. */
static void bytes_add(struct vs_cache *c, uint64_t n)
{
	uint64_t now = atomic_fetch_add(&c->bytes, n) + n;

	uint64_t at = atomic_load(&c->over_at);

	if (c->over && now > at && now - n <= at)
		c->over(c->over_arg);
}

/* Take @n off the estimate, never below 0. */
static void bytes_sub(struct vs_cache *c, uint64_t n)
{
	uint64_t cur = atomic_load(&c->bytes);

	while (!atomic_compare_exchange_weak(&c->bytes, &cur,
					     cur > n ? cur - n : 0))
		;
}

/* Remove object @name, a regular file that @fd is open on (corrupt), and
 * take what it allocates off the estimate; not if the name is another
 * file's now (a store put the object there since: stores rename under
 * evict_lock). */
static void object_remove(struct vs_cache *c, const char *name, int fd)
{
	struct stat st, at;
	bool removed;

	if (fstat(fd, &st) < 0)
		return;
	pthread_mutex_lock(&c->evict_lock);
	removed = fstatat(c->dir_fd, name, &at, AT_SYMLINK_NOFOLLOW) == 0 &&
		  at.st_dev == st.st_dev && at.st_ino == st.st_ino &&
		  unlinkat(c->dir_fd, name, 0) == 0;
	pthread_mutex_unlock(&c->evict_lock);
	if (removed)
		bytes_sub(c, (uint64_t)at.st_blocks * 512);
}

/* Object @name (relative to the cache dir) is not a regular file (a FIFO,
 * a device, a symlink: planted by whatever can write the cache dir):
 * removed as a corrupt object is, unless a store put a file there since
 * (stores rename under evict_lock); the estimate never counted it (the
 * evictor measures regular files only). -EBADMSG. */
static int not_a_file(struct vs_cache *c, const char *name, const char *hash)
{
	struct stat st;

	vs_warn("cache object %s is not a regular file: removed, will fetch "
		"again",
		hash);
	pthread_mutex_lock(&c->evict_lock);
	if (fstatat(c->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISREG(st.st_mode))
		unlinkat(c->dir_fd, name,
			 S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
	pthread_mutex_unlock(&c->evict_lock);
	return -EBADMSG;
}

int vs_cache_open_unchecked(struct vs_cache *c, const char *hash, int *fd_out)
{
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];
	int r;

	if (!vs_hash_hex_valid(hash))
		return -EINVAL;
	vs_cache_object_name(name, hash);
	r = vs_open_regular(c->dir_fd, name, O_RDONLY, fd_out);
	return r == 1 ? not_a_file(c, name, hash) : r;
}

int vs_cache_open(struct vs_cache *c, const char *hash, int *fd_out)
{
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];
	char got[VS_HASH_HEX_LEN + 1];
	struct stat st;
	int fd, r;

	r = vs_cache_open_unchecked(c, hash, &fd);
	if (r < 0)
		return r;
	r = vs_sha256_fd_hex(got, fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (strcmp(got, hash) != 0) {
		vs_warn("cache object %s is corrupt (its bytes hash to %s): "
			"removed, will fetch again",
			hash, got);
		vs_cache_object_name(name, hash);
		object_remove(c, name, fd);
		close(fd);
		return -EBADMSG;
	}
	/* used now: the evictor takes the least recently used first */
	if (fstat(fd, &st) == 0 &&
	    st.st_atim.tv_sec + CACHE_TOUCH_S < time(NULL))
		futimens(fd, touch_now);
	*fd_out = fd;
	return 0;
}

bool vs_cache_has(struct vs_cache *c, const char *hash)
{
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];

	if (!vs_hash_hex_valid(hash))
		return false;
	vs_cache_object_name(name, hash);
	return faccessat(c->dir_fd, name, F_OK, 0) == 0;
}

/* A fresh name in tmp/, into @tmp (64 bytes): "tmp/<pid>.<n>". */
static void tmp_name(struct vs_cache *c, char tmp[64])
{
	static unsigned counter;

	snprintf(tmp, 64, "tmp/%d.%u", (int)c->pid,
		 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
}

/* Create a fresh file in tmp/, named into @tmp (64 bytes): its fd or
 * -errno. A volume with no room is reclaimed from as room_write does. */
static int tmp_create(struct vs_cache *c, char tmp[64])
{
	int fd;

	do {
		tmp_name(c, tmp);
		/* always a new file: one put at this name (a FIFO would hold
		 * the open for ever) is removed, once */
		for (int tries = 0; tries < 2; tries++) {
			fd = openat(c->dir_fd, tmp,
				    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					O_CLOEXEC,
				    0600);
			if (fd >= 0 || errno != EEXIST ||
			    (unlinkat(c->dir_fd, tmp, 0) < 0 &&
			     errno != ENOENT))
				break;
		}
		if (fd < 0)
			fd = -errno;
	} while (vs_cache_no_room(fd) && vs_cache_reclaim(c));
	return fd;
}

/*
 * Write @len bytes to @fd, a file of tmp/ whose position is @off. A volume
 * with no room (ENOSPC, EDQUOT) is reclaimed from (vs_cache_reclaim) and
 * the bytes written again from @off (part of them may be written) as long
 * as a reclaim frees something: one frees a tenth of --cache-max, which
 * may be less than they need. 0 or -errno (the volume's, once a reclaim
 * frees nothing).
 */
static int room_write(struct vs_cache *c, int fd, off_t off, const void *buf,
		      size_t len)
{
	int r = vs_write_in_full(fd, buf, len);

	while (vs_cache_no_room(r) && vs_cache_reclaim(c))
		r = lseek(fd, off, SEEK_SET) < 0
			? -errno
			: vs_write_in_full(fd, buf, len);
	return r;
}

/* Write @len bytes to a fresh file in tmp/, named into @tmp (64 bytes),
 * making room as room_write does. The file is removed on failure. */
static int tmp_write(struct vs_cache *c, char tmp[64], const void *buf,
		     size_t len)
{
	int fd, r;

	fd = tmp_create(c, tmp);
	if (fd < 0)
		return fd;
	/* no fsync: every object is checked against its hash when opened
	 * and the manifest is validated when parsed, so a file torn by a
	 * crash is detected and fetched again; an fsync per object would
	 * cost milliseconds on every first read */
	r = room_write(c, fd, 0, buf, len);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlinkat(c->dir_fd, tmp, 0);
	return r;
}

/* Write @len bytes to a fresh file in tmp/ and rename it to @dest (relative
 * to @destdir). The temp file is removed on failure. */
static int atomic_write(struct vs_cache *c, int destdir, const char *dest,
			const void *buf, size_t len)
{
	char tmp[64];
	int r;

	r = tmp_write(c, tmp, buf, len);
	if (r == 0 && renameat(c->dir_fd, tmp, destdir, dest) < 0) {
		r = -errno;
		unlinkat(c->dir_fd, tmp, 0);
	}
	return r;
}

/*
 * Rename temp file @tmp to object @name, under evict_lock. An object there
 * already (the same bytes, a copy torn by a crash, one planted) is
 * replaced, and what it allocated taken off the estimate: callers store
 * without asking first whether it is there, which a store of new content
 * (nearly every one) would pay a lookup for.
 */
static int object_rename(struct vs_cache *c, const char *tmp, const char *name,
			 size_t len)
{
	uint64_t old = 0, add = est_bytes(len);
	struct stat st;
	int r = 0;

	pthread_mutex_lock(&c->evict_lock);
	if (renameat2(c->dir_fd, tmp, c->dir_fd, name, RENAME_NOREPLACE) < 0) {
		/* there already, or a volume with no RENAME_NOREPLACE */
		if (errno != EEXIST && errno != EINVAL)
			r = -errno;
		else if (fstatat(c->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) ==
			     0 &&
			 S_ISREG(st.st_mode))
			old = (uint64_t)st.st_blocks * 512;
		if (r == 0 && renameat(c->dir_fd, tmp, c->dir_fd, name) < 0)
			r = -errno;
	}
	pthread_mutex_unlock(&c->evict_lock);
	if (r == 0 && add >= old)
		bytes_add(c, add - old);
	else if (r == 0)
		bytes_sub(c, old - add);
	return r;
}

/* Make temp file @tmp (@len bytes, checked) object @hash; @tmp is removed
 * on failure. */
static int object_place(struct vs_cache *c, const char *tmp, const char *hash,
			uint64_t len)
{
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];
	int r;

	vs_cache_object_name(name, hash);
	r = object_rename(c, tmp, name, len);
	if (r == -ENOENT) {
		/* its fan-out directory is not made yet (or was removed) */
		name[10] = '\0'; /* "objects/ab" */
		r = mkdirat_p(c->dir_fd, name, 0700);
		vs_cache_object_name(name, hash);
		if (r == 0)
			r = object_rename(c, tmp, name, len);
	}
	if (r < 0) {
		unlinkat(c->dir_fd, tmp, 0);
		vs_warn("cannot store %s in the cache: %s", hash, strerror(-r));
	}
	return r;
}

/* Make temp file @tmp (its @len bytes checked) object @hash and, with
 * @fd_out (may be NULL), give an fd of it, read-only, opened before the
 * rename: the bytes just checked, no second hash at open (vs_cache_open).
 * @tmp is removed on failure. */
static int place_open(struct vs_cache *c, const char *tmp, const char *hash,
		      uint64_t len, int *fd_out)
{
	int fd = -1, r;

	if (fd_out && (r = vs_open_regular(c->dir_fd, tmp, O_RDONLY, &fd))) {
		unlinkat(c->dir_fd, tmp, 0);
		return r == 1 ? -EBADMSG : r;
	}
	r = object_place(c, tmp, hash, len);
	if (fd >= 0 && r < 0)
		close(fd);
	else if (fd >= 0)
		*fd_out = fd;
	return r;
}

/* Store checked bytes (vs_cache_store, vs_cache_store_open). */
static int store_checked(struct vs_cache *c, const char *hash, const void *buf,
			 size_t len, int *fd_out)
{
	char tmp[64] = "";
	int r;

	r = tmp_write(c, tmp, buf, len);
	if (r < 0) {
		vs_warn("cannot store %s in the cache: %s", hash, strerror(-r));
		return r;
	}
	return place_open(c, tmp, hash, len, fd_out);
}

/* 0 if @len bytes at @buf hash to @hash; -EINVAL (not a hash), -EBADMSG. */
static int check_bytes(const char *hash, const void *buf, size_t len)
{
	char got[VS_HASH_HEX_LEN + 1];
	int r;

	if (!vs_hash_hex_valid(hash))
		return -EINVAL;
	r = vs_sha256_hex(got, buf, len);
	if (r < 0)
		return r;
	return strcmp(got, hash) == 0 ? 0 : -EBADMSG;
}

int vs_cache_store(struct vs_cache *c, const char *hash, const void *buf,
		   size_t len)
{
	int r = check_bytes(hash, buf, len);

	return r < 0 ? r : store_checked(c, hash, buf, len, NULL);
}

/* A memfd holding @len bytes, sealed against any change: its fd or
 * -errno. */
static int memory_copy(const void *buf, size_t len)
{
	int fd, r;

	fd = memfd_create("vsync-content", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	r = vs_write_in_full(fd, buf, len);
	if (r == 0 &&
	    fcntl(fd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* content kept in memory is logged at most this often (a full volume
 * would have every first read log it) */
#define CACHE_MEM_WARN_MS 10000
static atomic_int_least64_t mem_warned_ms, mem_full_warned_ms;

/* the memfds held as content (vs_cache_mem_hold) */
static atomic_int_least64_t mem_held;

void vs_cache_mem_hold(int64_t delta)
{
	atomic_fetch_add(&mem_held, delta);
}

uint64_t vs_cache_mem_bytes(void)
{
	int64_t n = atomic_load(&mem_held);

	return n > 0 ? (uint64_t)n : 0;
}

bool vs_cache_fd_in_memory(int fd)
{
	/* a file of a tmpfs cache dir has F_SEAL_SEAL alone; one on
	 * another file system, no seals (EINVAL) */
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & F_SEAL_WRITE);
}

int vs_cache_store_open(struct vs_cache *c, const char *hash, const void *buf,
			size_t len, int *fd_out)
{
	int r = check_bytes(hash, buf, len);

	if (r < 0)
		return r;
	if (fd_out)
		*fd_out = -1;
	r = store_checked(c, hash, buf, len, fd_out);
	if (!fd_out || !vs_cache_no_room(r) || len > VS_CACHE_MEM_MAX)
		return r;
	if (vs_cache_mem_bytes() + len > c->mem_max) {
		if (vs_log_due(&mem_full_warned_ms, CACHE_MEM_WARN_MS))
			vs_warn(
			    "cache: no room on the cache dir's volume, and "
			    "the content kept in memory (%llu bytes) is at "
			    "--cache-mem-max (%llu): %s (%zu bytes) cannot "
			    "be read until room returns (the next such line "
			    "in %d s at the earliest)",
			    (unsigned long long)vs_cache_mem_bytes(),
			    (unsigned long long)c->mem_max, hash, len,
			    CACHE_MEM_WARN_MS / 1000);
		return r;
	}
	r = memory_copy(buf, len);
	if (r < 0)
		return r;
	if (vs_log_due(&mem_warned_ms, CACHE_MEM_WARN_MS))
		vs_warn("cache: no room on the cache dir's volume: %s (%zu "
			"bytes) is kept in memory (the next such line in "
			"%d s at the earliest)",
			hash, len, CACHE_MEM_WARN_MS / 1000);
	*fd_out = r;
	return 0;
}

int vs_cache_memory_open(const char *hash, const void *buf, size_t len,
			 int *fd_out)
{
	int r = check_bytes(hash, buf, len);

	if (r < 0)
		return r;
	r = memory_copy(buf, len);
	if (r < 0)
		return r;
	*fd_out = r;
	return 0;
}

int vs_cache_writer_open(struct vs_cache *c, struct vs_cache_writer *w)
{
	int r;

	w->c = c;
	w->len = 0;
	w->fd = -1;
	r = vs_sha256_init(&w->sha);
	if (r < 0)
		return r;
	w->fd = tmp_create(c, w->tmp);
	if (w->fd < 0) {
		r = w->fd;
		vs_sha256_release(&w->sha);
	}
	return r;
}

int vs_cache_writer_add(struct vs_cache_writer *w, const void *buf, size_t len)
{
	/* no room: a reclaim and the piece again from its start, while a
	 * reclaim frees something (a piece, 8 MiB from PostgreSQL, may need
	 * more than one frees) */
	int r = room_write(w->c, w->fd, (off_t)w->len, buf, len);

	if (r == 0) {
		vs_sha256_update(&w->sha, buf, len);
		w->len += len;
	}
	return r;
}

void vs_cache_writer_abort(struct vs_cache_writer *w)
{
	if (w->fd < 0)
		return;
	close(w->fd);
	w->fd = -1;
	unlinkat(w->c->dir_fd, w->tmp, 0);
	vs_sha256_release(&w->sha);
}

int vs_cache_writer_commit(struct vs_cache_writer *w, const char *hash)
{
	return vs_cache_writer_commit_open(w, hash, NULL);
}

int vs_cache_writer_commit_open(struct vs_cache_writer *w, const char *hash,
				int *fd_out)
{
	char got[VS_HASH_HEX_LEN + 1];
	int r = 0;

	if (!vs_hash_hex_valid(hash)) {
		vs_cache_writer_abort(w);
		return -EINVAL;
	}
	vs_sha256_final_hex(&w->sha, got);
	if (close(w->fd) < 0)
		r = -errno;
	w->fd = -1;
	if (r == 0 && strcmp(got, hash) != 0)
		r = -EBADMSG;
	if (r < 0) {
		unlinkat(w->c->dir_fd, w->tmp, 0);
		return r;
	}
	return place_open(w->c, w->tmp, hash, w->len, fd_out);
}

/*
 * Objects this process knows to hold their bytes: one it linked (the
 * caller of vs_cache_link vouches for them) or hashed, with the inode as
 * it was then. The cache dir is writable by what runs in the container,
 * so a name is never trusted: only the same inode (st_dev, st_ino) with
 * the same st_ctim, which any change to the inode moves (a write, a
 * truncation, a link, a chmod, a utimensat) and nothing can set back; a
 * crash, which may tear an object, ends the process and its table.
 * Called with evict_lock.
 */
static struct vs_cache_known *known_slot(struct vs_cache *c, const char *hash)
{
	unsigned long i =
	    strtoul((char[4]){hash[0], hash[1], hash[2], '\0'}, NULL, 16);

	return c->known ? &c->known[i % CACHE_KNOWN] : NULL;
}

/* @k: file @st as it is. */
static void known_fill(struct vs_cache_known *k, const struct stat *st)
{
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->size = st->st_size;
	k->ctime = st->st_ctim;
}

/* Is @st the regular file @k was filled from, unchanged since? */
static bool known_unchanged(const struct vs_cache_known *k,
			    const struct stat *st)
{
	return S_ISREG(st->st_mode) && k->dev == st->st_dev &&
	       k->ino == st->st_ino && k->size == st->st_size &&
	       k->ctime.tv_sec == st->st_ctim.tv_sec &&
	       k->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* Object @hash is file @st, which holds its bytes. */
static void known_put(struct vs_cache *c, const char *hash,
		      const struct stat *st)
{
	struct vs_cache_known *k = known_slot(c, hash);

	if (!k)
		return;
	memcpy(k->hash, hash, VS_HASH_HEX_LEN + 1);
	known_fill(k, st);
}

/* Is @st (object @hash's now) the file known_put recorded, unchanged? */
static bool known_same(struct vs_cache *c, const char *hash,
		       const struct stat *st)
{
	const struct vs_cache_known *k = known_slot(c, hash);

	return k && memcmp(k->hash, hash, VS_HASH_HEX_LEN) == 0 &&
	       known_unchanged(k, st);
}

/*
 * Object @name (of @hash) was found there by a link: touched (used now:
 * the save journals it next). True if it is a file this process knows to
 * hold the bytes (known_same), unchanged up to the touch, which moves its
 * st_ctim: recorded again after it, if the name is still that inode.
 * Called with evict_lock.
 */
static bool touch_found(struct vs_cache *c, const char *name, const char *hash)
{
	struct stat st, now;
	bool same = fstatat(c->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    known_same(c, hash, &st);

	utimensat(c->dir_fd, name, touch_now, AT_SYMLINK_NOFOLLOW);
	if (!same)
		return false;
	same = fstatat(c->dir_fd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	       now.st_dev == st.st_dev && now.st_ino == st.st_ino &&
	       now.st_size == st.st_size;
	if (same)
		known_put(c, hash, &now);
	return same;
}

/*
 * Object @name (of @hash) was found there as a file (fstat @want) whose
 * bytes hash to @hash was linked as it: 1 if it does not hold them (not a
 * regular file, another size, or, the same size, bytes that do not hash
 * to @hash: vs_cache_open, which removes it then), 0 if it does (known
 * from then on, if it did not change while hashed), or -errno. A torn or
 * planted object must not be taken for the save's.
 */
static int object_differs(struct vs_cache *c, const char *name,
			  const char *hash, const struct stat *want)
{
	struct vs_cache_known was;
	struct stat st, now;
	int fd, r;

	if (fstatat(c->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 1 : -errno;
	if (!S_ISREG(st.st_mode) || st.st_size != want->st_size)
		return 1;
	known_fill(&was, &st);
	r = vs_cache_open(c, hash, &fd);
	if (r == 0) {
		/* the inode hashed is the one stat'd, and its st_ctim did
		 * not move: those bytes were there from before the hash */
		pthread_mutex_lock(&c->evict_lock);
		if (fstat(fd, &now) == 0 && known_unchanged(&was, &now))
			known_put(c, hash, &now);
		pthread_mutex_unlock(&c->evict_lock);
		close(fd);
	}
	return r == -EBADMSG || r == -ENOENT ? 1 : r;
}

/* Make @fd (/proc path @proc, @len bytes) object @name in place of what
 * is there: linked at a temp name, renamed over it. */
static int link_over(struct vs_cache *c, const char *proc, const char *name,
		     uint64_t len)
{
	char tmp[64];
	int r;

	tmp_name(c, tmp);
	if (linkat(AT_FDCWD, proc, c->dir_fd, tmp, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	r = object_rename(c, tmp, name, len);
	if (r < 0)
		unlinkat(c->dir_fd, tmp, 0);
	return r;
}

int vs_cache_link(struct vs_cache *c, const char *hash, int fd)
{
	char name[8 + 3 + VS_HASH_HEX_LEN + 1], proc[40];
	bool known = false, linked = false;
	struct stat st;
	int r;

	if (!vs_hash_hex_valid(hash))
		return -EINVAL;
	vs_cache_object_name(name, hash);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	/* the name appears with every byte in place: no temp name needed */
	for (int tries = 0; tries < 2; tries++) {
		pthread_mutex_lock(&c->evict_lock);
		r = linkat(AT_FDCWD, proc, c->dir_fd, name,
			   AT_SYMLINK_FOLLOW) == 0
			? 0
			: -errno;
		/* linked: these bytes, as the caller vouches */
		if (r == 0 && (linked = fstat(fd, &st) == 0))
			known_put(c, hash, &st);
		/* there already: used now (the caller journals it next) */
		if (r == -EEXIST)
			known = touch_found(c, name, hash);
		pthread_mutex_unlock(&c->evict_lock);
		if (r == 0) {
			if (linked)
				bytes_add(c, (uint64_t)st.st_blocks * 512);
			return 0;
		}
		if (r != -ENOENT || tries)
			break;
		/* its fan-out directory is not made yet (or was removed) */
		name[10] = '\0';
		r = mkdirat_p(c->dir_fd, name, 0700);
		vs_cache_object_name(name, hash);
		if (r < 0)
			break;
	}
	if (r != -EEXIST || known)
		return r; /* (known: this process linked or hashed it) */
	/* there already: kept if it holds these bytes, else (torn by a
	 * crash, planted by whatever can write the cache dir) replaced */
	if (fstat(fd, &st) < 0)
		return -errno;
	r = object_differs(c, name, hash, &st);
	if (r <= 0)
		return r < 0 ? r : -EEXIST;
	vs_warn("cache object %s does not hold the bytes a save of it does "
		"(torn or planted): replaced by them",
		hash);
	return link_over(c, proc, name, (uint64_t)st.st_size);
}

void vs_cache_watch(struct vs_cache *c, uint64_t limit, void (*over)(void *arg),
		    void *arg)
{
	c->limit = limit;
	atomic_store(&c->over_at, limit);
	c->over_arg = arg;
	c->over = over;
}

void vs_cache_on_full(struct vs_cache *c, bool (*reclaim)(void *arg),
		      void (*room)(void *arg), void *arg)
{
	c->reclaim_arg = arg;
	c->reclaim = reclaim;
	c->room = room;
}

bool vs_cache_reclaim(struct vs_cache *c)
{
	return c->reclaim && c->reclaim(c->reclaim_arg);
}

void vs_cache_room_changed(struct vs_cache *c)
{
	atomic_fetch_add(&c->room_gen, 1);
	if (c->room)
		c->room(c->reclaim_arg);
}

uint64_t vs_cache_room_gen(struct vs_cache *c)
{
	return atomic_load(&c->room_gen);
}

bool vs_cache_nearly_full(struct vs_cache *c)
{
	return c->over &&
	       atomic_load(&c->bytes) >= c->limit / 10 * 9 + c->limit % 10;
}

void vs_cache_watch_at(struct vs_cache *c, uint64_t at)
{
	atomic_store(&c->over_at, at);
}

uint64_t vs_cache_bytes(struct vs_cache *c)
{
	return atomic_load(&c->bytes);
}

void vs_cache_bytes_set(struct vs_cache *c, uint64_t bytes)
{
	atomic_store(&c->bytes, bytes);
}

/* The index of a pin of @hash, or -1. Called with evict_lock. */
static ssize_t pin_find(struct vs_cache *c, const char *hash)
{
	for (size_t i = 0; i < c->npins; i++)
		if (memcmp(c->pins[i], hash, VS_HASH_HEX_LEN) == 0)
			return (ssize_t)i;
	return -1;
}

int vs_cache_pin(struct vs_cache *c, const char *hash)
{
	int r = 0;

	if (!vs_hash_hex_valid(hash))
		return -EINVAL;
	pthread_mutex_lock(&c->evict_lock);
	if (c->npins == c->apins) {
		size_t na = c->apins ? 2 * c->apins : 16;
		void *p = realloc(c->pins, na * sizeof(*c->pins));

		if (p) {
			c->pins = p;
			c->apins = na;
		} else {
			r = -ENOMEM;
		}
	}
	if (r == 0)
		memcpy(c->pins[c->npins++], hash, VS_HASH_HEX_LEN + 1);
	pthread_mutex_unlock(&c->evict_lock);
	return r;
}

void vs_cache_unpin(struct vs_cache *c, const char *hash)
{
	ssize_t i;

	pthread_mutex_lock(&c->evict_lock);
	i = pin_find(c, hash);
	if (i >= 0)
		memcpy(c->pins[i], c->pins[--c->npins], VS_HASH_HEX_LEN + 1);
	pthread_mutex_unlock(&c->evict_lock);
}

int vs_cache_pins_each(struct vs_cache *c,
		       int (*fn)(void *arg, const char *hash), void *arg)
{
	int r = 0;

	pthread_mutex_lock(&c->evict_lock);
	for (size_t i = 0; i < c->npins && r == 0; i++)
		r = fn(arg, c->pins[i]);
	pthread_mutex_unlock(&c->evict_lock);
	return r;
}

void vs_cache_bytes_measured(struct vs_cache *c, uint64_t seen,
			     uint64_t measured)
{
	uint64_t cur = atomic_load(&c->bytes);

	while (!atomic_compare_exchange_weak(
	    &c->bytes, &cur, measured + (cur > seen ? cur - seen : 0)))
		;
}

int vs_cache_evict_object(struct vs_cache *c, const char *hash,
			  int64_t atime_ns, uint64_t *freed)
{
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];
	struct stat st;
	int r = 0;

	*freed = 0;
	if (!vs_hash_hex_valid(hash))
		return -EINVAL;
	vs_cache_object_name(name, hash);
	pthread_mutex_lock(&c->evict_lock);
	if (pin_find(c, hash) >= 0)
		r = -EBUSY; /* a save is journaling it */
	else if (fstatat(c->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode) ||
		 (int64_t)st.st_atim.tv_sec * 1000000000 + st.st_atim.tv_nsec !=
		     atime_ns)
		r = -EBUSY; /* used since the scan */
	else if (unlinkat(c->dir_fd, name, 0) < 0)
		r = -errno;
	pthread_mutex_unlock(&c->evict_lock);
	if (r < 0)
		return r;
	*freed = (uint64_t)st.st_blocks * 512;
	bytes_sub(c, *freed);
	return 0;
}

/* "projects/<uuid>" or "projects/<uuid>/<sub>" */
static int project_path(char *out, size_t size, const char *project_id,
			const char *sub)
{
	int n;

	if (strchr(project_id, '/') || project_id[0] == '.' || !project_id[0])
		return -EINVAL;
	n = snprintf(out, size, "projects/%s%s%s", project_id,
		     sub && sub[0] ? "/" : "", sub ? sub : "");
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int vs_cache_project_dir(struct vs_cache *c, const char *project_id,
			 const char *sub, int *fd_out)
{
	char path[256];
	int r, fd;

	r = project_path(path, sizeof(path), project_id, NULL);
	if (r < 0)
		return r;
	r = mkdirat_p(c->dir_fd, path, 0700);
	if (r < 0)
		return r;
	r = project_path(path, sizeof(path), project_id, sub);
	if (r < 0)
		return r;
	if (sub && sub[0] && (r = mkdirat_p(c->dir_fd, path, 0755)) < 0)
		return r;
	fd = openat(c->dir_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*fd_out = fd;
	return 0;
}

int vs_cache_project_link(struct vs_cache *c, const char *name,
			  const char *project_id)
{
	char link[256], tmp[300];

	if (project_path(link, sizeof(link), name, NULL) < 0 ||
	    strcmp(name, project_id) == 0)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", link, (int)c->pid);
	unlinkat(c->dir_fd, tmp, 0);
	if (symlinkat(project_id, c->dir_fd, tmp) < 0 ||
	    renameat(c->dir_fd, tmp, c->dir_fd, link) < 0) {
		int r = -errno;

		unlinkat(c->dir_fd, tmp, 0);
		return r;
	}
	return 0;
}

int vs_cache_project_resolve(struct vs_cache *c, const char *name,
			     char out[VS_UUID_BUFSZ])
{
	char link[256], target[64];
	ssize_t n;

	if (project_path(link, sizeof(link), name, NULL) < 0)
		return -ENOENT;
	n = readlinkat(c->dir_fd, link, target, sizeof(target) - 1);
	if (n < 0) {
		struct stat st;

		/* the argument may be the UUID itself */
		if (fstatat(c->dir_fd, link, &st, 0) == 0 &&
		    S_ISDIR(st.st_mode) && strlen(name) == VS_UUID_LEN) {
			memcpy(out, name, VS_UUID_BUFSZ);
			return 0;
		}
		return -ENOENT;
	}
	if (n != VS_UUID_LEN)
		return -ENOENT;
	target[n] = '\0';
	memcpy(out, target, VS_UUID_BUFSZ);
	return 0;
}

int vs_cache_project_write(struct vs_cache *c, const char *project_id,
			   const char *file, const void *buf, size_t len)
{
	char path[256];
	int r, fd;

	r = vs_cache_project_dir(c, project_id, "", &fd);
	if (r < 0)
		return r;
	close(fd);
	r = project_path(path, sizeof(path), project_id, file);
	if (r < 0)
		return r;
	return atomic_write(c, c->dir_fd, path, buf, len);
}

int vs_cache_project_read(struct vs_cache *c, const char *project_id,
			  const char *file, char **buf, size_t *len)
{
	char path[256];
	int fd, r;

	r = project_path(path, sizeof(path), project_id, file);
	if (r < 0)
		return r;
	/* (a FIFO planted there would hold the mount's start for ever) */
	r = vs_open_regular(c->dir_fd, path, O_RDONLY, &fd);
	if (r == 1) {
		vs_warn("cache: '%s' is not a regular file: ignored", path);
		return -EBADMSG;
	}
	if (r < 0)
		return r;
	r = vs_read_fd_whole(buf, len, fd, CACHE_PROJECT_FILE_MAX);
	close(fd);
	return r;
}

int vs_cache_store_fd(struct vs_cache *c, const char *hash, int fd)
{
	struct vs_cache_writer w;
	uint8_t *buf = malloc((size_t)1 << 20);
	off_t off = 0;
	ssize_t n;
	int r;

	if (!buf)
		return -ENOMEM;
	r = vs_cache_writer_open(c, &w);
	while (r == 0) {
		n = vs_pread_in_full(fd, buf, (size_t)1 << 20, off);
		if (n <= 0) {
			r = (int)n;
			break;
		}
		r = vs_cache_writer_add(&w, buf, (size_t)n);
		off += n;
	}
	free(buf);
	if (r < 0) {
		vs_cache_writer_abort(&w);
		vs_warn("cannot store %s in the cache: %s", hash, strerror(-r));
		return r;
	}
	return vs_cache_writer_commit(&w, hash);
}
