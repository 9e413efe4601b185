/*
 * test_evict.c - unit tests of sync/evict.c (include/vsync/evict.h) and
 * the cache's eviction primitives (vs_cache_evict_object, the size
 * estimate, the atime touches of cache.c).
 *
 * Covers:
 *  - vs_evict_select: oldest first by atime, down to the target; kept
 *    (journaled) items skipped; young items (used within the grace
 *    period) never chosen, even when that leaves the total over; nothing
 *    chosen when already under; an empty list;
 *  - vs_evict_low: percentages of a max, below the max, 0;
 *  - vs_cache_evict_object: removes an object whose atime is as seen;
 *    -EBUSY when it was used since (vs_cache_open touched it), -ENOENT
 *    when gone; the estimate goes down by what was freed;
 *  - vs_cache_link of an object there already touches it (-EEXIST);
 *  - vs_cache_watch: called once by the store that takes the estimate
 *    over the limit, not by the next one (already over), again past a
 *    point moved up by vs_cache_watch_at;
 *    vs_cache_nearly_full false without a watch and under 90%, true over;
 *  - pins: vs_journal_put_content pins its object, a pinned object is
 *    not evicted (-EBUSY) and pins count (two pins, two unpins), an
 *    unpin of what is not pinned does nothing;
 *  - vs_evict_run in a temp cache dir: 20 objects of 8 KiB with staged
 *    atimes, one named by a WRITE entry of a project's journal and one of
 *    another project's journal, one pinned, one used just now, a stray file in
 * a fan-out dir and one in tmp/: the oldest unnamed objects are evicted down to
 * the low watermark, the journaled, young and stray ones stay, the estimate
 * equals what is left; a second run under the max evicts nothing; max 0 only
 * measures;
 *  - vs_cache_reclaim (an evictor's pass on a writer's thread, for a
 *    volume with no room): false without an evictor; under the max, each
 *    call evicts the oldest tenth of the max and says so; under a tenth
 *    of the max (a volume full of other files), it evicts every object
 *    but the pinned and the young ones;
 *  - a reclaim whose pass finds every object journaled waits: once the
 *    entries are committed (vs_journal_done, which calls
 *    vs_cache_room_changed) it passes again and frees them.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vsync/cache.h"
#include "vsync/evict.h"
#include "vsync/hash.h"
#include "vsync/journal.h"

#include "unit_check.h"

#define PROJECT	 "0f8fad5b-d9cb-469f-a165-70867728950e"
#define PROJECT2 "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define NOBJ	 20
#define OBJ_SIZE 8192

/* ------------------------------------------------------------ pure */

static void item(struct vs_evict_item *it, char tag, int64_t atime,
		 uint64_t bytes, bool keep)
{
	memset(it, 0, sizeof(*it));
	memset(it->hash, tag, VS_HASH_HEX_LEN);
	it->atime_ns = atime;
	it->bytes = bytes;
	it->keep = keep;
}

static bool chosen(const struct vs_evict_item *items, size_t n, char tag)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].hash[0] == tag)
			return items[i].evict;
	fail_msg("no item %c", tag);
	return false;
}

static void test_select(void **state)
{
	struct vs_evict_item it[5];
	uint64_t got;

	(void)state;
	/* given out of order; total 500, target 300 */
	item(&it[0], 'c', 30, 100, false);
	item(&it[1], 'a', 10, 100, false);
	item(&it[2], 'e', 50, 100, false);
	item(&it[3], 'b', 20, 100, true); /* journaled */
	item(&it[4], 'd', 40, 100, false);
	got = vs_evict_select(it, 5, 500, 300, 1000);
	check_int(200, got, "bytes chosen");
	check_bool(true, chosen(it, 5, 'a'), "the oldest");
	check_bool(false, chosen(it, 5, 'b'), "a journaled one");
	check_bool(true, chosen(it, 5, 'c'), "the next oldest");
	check_bool(false, chosen(it, 5, 'd'), "not needed: at 300 already");
	check_bool(false, chosen(it, 5, 'e'), "the newest");
	check_int('a', it[0].hash[0], "sorted oldest first");

	/* young ones (atime >= 35) stay even if the total stays over */
	got = vs_evict_select(it, 5, 500, 0, 35);
	check_int(200, got, "bytes chosen with young ones");
	check_bool(false, chosen(it, 5, 'd'), "young d");
	check_bool(false, chosen(it, 5, 'e'), "young e");
	check_bool(false, chosen(it, 5, 'b'), "journaled b");

	got = vs_evict_select(it, 5, 500, 500, 1000);
	check_int(0, got, "already at the target");
	for (int i = 0; i < 5; i++)
		check_bool(false, it[i].evict, "nothing chosen (%d)", i);
	check_int(0, vs_evict_select(NULL, 0, 0, 0, 0), "empty");
	/* a stale total smaller than the items: never more than it */
	check_int(50, vs_evict_select(it, 5, 50, 0, 1000), "stale total");
}

static void test_low(void **state)
{
	(void)state;
	check_int(90, vs_evict_low(100, 90), "90%% of 100");
	check_int(1887436, vs_evict_low(2 << 20, 90), "90%% of 2 MiB");
	check_bool(true,
		   vs_evict_low(UINT64_MAX, 90) ==
		       UINT64_MAX / 100 * 90 + UINT64_MAX % 100 * 90 / 100,
		   "no overflow");
	check_int(99, vs_evict_low(100, 100), "100%%: one below the max");
	check_int(99, vs_evict_low(100, 250), "over 100%%: capped");
	check_int(0, vs_evict_low(0, 90), "max 0");
}

/* ------------------------------------------------------------ cache dir */

struct fixture {
	char tmp[64];
	char dir[PATH_MAX];
	struct vs_cache cache;
	char hashes[NOBJ][VS_HASH_HEX_LEN + 1];
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->tmp, "/tmp/vsync-test-evict.XXXXXX");
	if (!mkdtemp(f->tmp)) {
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/cache", f->tmp);
	if (vs_cache_init(&f->cache, f->dir) < 0) {
		rmdir(f->tmp);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	vs_cache_release(&f->cache);
	nftw(f->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Store object @i (OBJ_SIZE bytes of its own) with atime @age_s seconds
 * ago. */
static void put_object(struct fixture *f, int i, int age_s)
{
	char buf[OBJ_SIZE], name[8 + 3 + VS_HASH_HEX_LEN + 1];
	struct timespec ts[2];

	memset(buf, 'a' + i % 26, sizeof(buf));
	snprintf(buf, 16, "object %d", i);
	check_ret(0, vs_sha256_hex(f->hashes[i], buf, sizeof(buf)), "hash");
	check_ret(0, vs_cache_store(&f->cache, f->hashes[i], buf, sizeof(buf)),
		  "store object %d", i);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= age_s;
	ts[1].tv_nsec = UTIME_OMIT;
	vs_cache_object_name(name, f->hashes[i]);
	check_int(0, utimensat(f->cache.dir_fd, name, ts, 0), "set atime of %d",
		  i);
}

static bool present(struct fixture *f, int i)
{
	return vs_cache_has(&f->cache, f->hashes[i]);
}

static int64_t atime_of(struct fixture *f, int i)
{
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];
	struct stat st;

	vs_cache_object_name(name, f->hashes[i]);
	if (fstatat(f->cache.dir_fd, name, &st, 0) < 0)
		return -1;
	return (int64_t)st.st_atim.tv_sec * 1000000000 + st.st_atim.tv_nsec;
}

static void test_evict_object(void **state)
{
	struct fixture *f = *state;
	uint64_t freed = 1, before;
	int64_t seen;
	int fd;

	put_object(f, 0, 3600);
	put_object(f, 1, 3600);
	before = vs_cache_bytes(&f->cache);
	check_bool(true, before >= 2 * OBJ_SIZE, "estimate counts stores");
	/* opened (used) since the scan: kept */
	seen = atime_of(f, 0);
	check_ret(0, vs_cache_open(&f->cache, f->hashes[0], &fd), "open");
	close(fd);
	check_bool(true, atime_of(f, 0) > seen, "an open touches");
	check_ret(-EBUSY,
		  vs_cache_evict_object(&f->cache, f->hashes[0], seen, &freed),
		  "evict an object used since the scan");
	check_bool(true, present(f, 0), "still there");
	/* as seen: removed */
	seen = atime_of(f, 1);
	check_ret(0,
		  vs_cache_evict_object(&f->cache, f->hashes[1], seen, &freed),
		  "evict");
	check_bool(false, present(f, 1), "gone");
	check_bool(true, freed >= OBJ_SIZE, "freed its blocks");
	check_int(before - freed, vs_cache_bytes(&f->cache),
		  "estimate goes down");
	check_ret(-ENOENT,
		  vs_cache_evict_object(&f->cache, f->hashes[1], seen, &freed),
		  "evict it again");
}

static void test_link_touches(void **state)
{
	struct fixture *f = *state;
	char buf[OBJ_SIZE];
	int64_t seen;
	int fd;

	put_object(f, 0, 3600);
	seen = atime_of(f, 0);
	fd = openat(f->cache.dir_fd, "tmp", O_TMPFILE | O_RDWR | O_CLOEXEC,
		    0600);
	if (fd < 0)
		skip();
	memset(buf, 'a', sizeof(buf));
	snprintf(buf, 16, "object %d", 0);
	check_int(OBJ_SIZE, write(fd, buf, sizeof(buf)), "write");
	check_ret(-EEXIST, vs_cache_link(&f->cache, f->hashes[0], fd),
		  "link of an object there already");
	close(fd);
	check_bool(true, atime_of(f, 0) > seen, "the link touched it");
}

static void test_pins(void **state)
{
	struct fixture *f = *state;
	char buf[OBJ_SIZE], hash[VS_HASH_HEX_LEN + 1];
	uint64_t freed;

	memset(buf, 'p', sizeof(buf));
	check_ret(0,
		  vs_journal_put_content(&f->cache, buf, sizeof(buf), -1, hash),
		  "put_content");
	check_int(1, f->cache.npins, "put_content pinned it");
	check_ret(0, vs_cache_pin(&f->cache, hash), "pin again");
	memcpy(f->hashes[0], hash, sizeof(hash));
	check_ret(
	    -EBUSY,
	    vs_cache_evict_object(&f->cache, hash, atime_of(f, 0), &freed),
	    "evict a pinned object");
	vs_cache_unpin(&f->cache, hash);
	check_ret(
	    -EBUSY,
	    vs_cache_evict_object(&f->cache, hash, atime_of(f, 0), &freed),
	    "still pinned once");
	vs_cache_unpin(&f->cache, hash);
	vs_cache_unpin(&f->cache, hash); /* not pinned: nothing */
	check_int(0, f->cache.npins, "no pins left");
	check_ret(
	    0, vs_cache_evict_object(&f->cache, hash, atime_of(f, 0), &freed),
	    "evict once unpinned");
	check_bool(false, present(f, 0), "gone");
}

static void count_call(void *arg)
{
	(*(int *)arg)++;
}

static void test_watch(void **state)
{
	struct fixture *f = *state;
	int calls = 0;

	check_bool(false, vs_cache_nearly_full(&f->cache), "no watch");
	vs_cache_watch(&f->cache, OBJ_SIZE + OBJ_SIZE / 2, count_call, &calls);
	check_bool(false, vs_cache_nearly_full(&f->cache), "empty");
	put_object(f, 0, 0);
	check_int(0, calls, "under the limit");
	check_bool(false, vs_cache_nearly_full(&f->cache), "2/3 full");
	put_object(f, 1, 0);
	check_int(1, calls, "the store that crossed it");
	check_bool(true, vs_cache_nearly_full(&f->cache), "over");
	put_object(f, 2, 0);
	check_int(1, calls, "already over: not again");
	vs_cache_bytes_set(&f->cache, 0);
	vs_cache_bytes_measured(&f->cache, 0, 0);
	check_int(0, vs_cache_bytes(&f->cache), "measured 0");
	put_object(f, 3, 0);
	put_object(f, 4, 0);
	check_int(2, calls, "crossed again after a measure");
	vs_cache_watch_at(&f->cache, vs_cache_bytes(&f->cache) + OBJ_SIZE);
	put_object(f, 5, 0);
	check_int(2, calls, "the point moved up: not yet");
	put_object(f, 6, 0);
	check_int(3, calls, "crossed the moved point");
	/* a measure that began at 2 objects: the 2 stored since stay */
	vs_cache_bytes_measured(&f->cache,
				vs_cache_bytes(&f->cache) - 2 * OBJ_SIZE, 100);
	check_int(100 + 2 * OBJ_SIZE, vs_cache_bytes(&f->cache),
		  "stores during a measure stay counted");
	vs_cache_watch(&f->cache, 0, NULL, NULL);
}

/* A journal in projects/<project>/journal with a WRITE naming @hash. */
static void journal_write(struct fixture *f, const char *project,
			  const char *hash)
{
	struct vs_journal *j = NULL;
	struct vs_jentry e;
	int jfd;

	check_ret(0, vs_cache_project_dir(&f->cache, project, "journal", &jfd),
		  "journal dir");
	check_ret(0, vs_journal_open(&j, jfd, &f->cache), "journal open");
	memset(&e, 0, sizeof(e));
	e.op = VS_JOP_WRITE;
	snprintf(e.path, sizeof(e.path), "src/a.js");
	memcpy(e.hash, hash, VS_HASH_HEX_LEN + 1);
	e.size = OBJ_SIZE;
	e.mode = 0644;
	e.base_version = -1;
	check_ret(0, vs_journal_append(j, &e), "append");
	/* a mkdir names nothing */
	memset(&e, 0, sizeof(e));
	e.op = VS_JOP_MKDIR;
	snprintf(e.path, sizeof(e.path), "src/d");
	e.mode = 0755;
	e.base_version = -1;
	check_ret(0, vs_journal_append(j, &e), "append mkdir");
	vs_journal_free(j);
	close(jfd);
}

static void test_run(void **state)
{
	struct fixture *f = *state;
	struct vs_evict_stats st;
	uint64_t max, low;
	int fd;

	/* object i was used NOBJ - i hours ago: 0 is the oldest; 19 now */
	for (int i = 0; i < NOBJ; i++)
		put_object(f, i, i == NOBJ - 1 ? 0 : (NOBJ - i) * 3600);
	journal_write(f, PROJECT, f->hashes[0]);
	journal_write(f, PROJECT2, f->hashes[1]);
	check_ret(0, vs_cache_pin(&f->cache, f->hashes[2]), "pin object 2");
	/* not objects: never touched (fan-out dirs come with the first
	 * store into each: make this one) */
	mkdirat(f->cache.dir_fd, "objects/00", 0700);
	fd = openat(f->cache.dir_fd, "objects/00/stray",
		    O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	check_bool(true, fd >= 0, "stray file");
	close(fd);
	fd = openat(f->cache.dir_fd, "tmp/partial",
		    O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	check_bool(true, fd >= 0, "tmp file");
	close(fd);

	/* measure only */
	check_ret(0, vs_evict_run(&f->cache, 0, 0, 10000, &st), "max 0");
	check_int(NOBJ, st.objects, "objects found");
	check_int(0, st.evicted, "max 0 evicts nothing");
	check_int(st.before, vs_cache_bytes(&f->cache), "estimate measured");

	/* room for 10 objects: down to 9 (90%) */
	max = 10 * (st.before / NOBJ);
	low = vs_evict_low(max, 90);
	check_ret(0, vs_evict_run(&f->cache, max, low, 10000, &st), "run");
	check_int(3, st.kept, "journaled and pinned objects");
	check_int(11, st.evicted, "evicted down to 9 objects");
	check_bool(true, st.after <= low, "under the low watermark");
	check_int(st.after, vs_cache_bytes(&f->cache), "estimate after");
	check_bool(true, present(f, 0), "named by a journal: kept");
	check_bool(true, present(f, 1), "named by another journal: kept");
	check_bool(true, present(f, 2), "pinned: kept");
	for (int i = 3; i < 14; i++)
		check_bool(false, present(f, i), "old object %d evicted", i);
	for (int i = 14; i < NOBJ; i++)
		check_bool(true, present(f, i), "newer object %d kept", i);
	check_int(0, faccessat(f->cache.dir_fd, "objects/00/stray", F_OK, 0),
		  "a stray file stays");
	check_int(0, faccessat(f->cache.dir_fd, "tmp/partial", F_OK, 0),
		  "tmp/ stays");

	/* under the max: nothing more */
	check_ret(0, vs_evict_run(&f->cache, max, low, 10000, &st), "again");
	check_int(0, st.evicted, "nothing evicted under the max");

	/* a max below what is kept and young: those stay */
	check_ret(0, vs_evict_run(&f->cache, 1, 0, 10000, &st), "max 1");
	check_bool(true, present(f, 0) && present(f, 1), "journaled stay");
	check_bool(true, present(f, 2), "pinned stays");
	check_bool(true, present(f, NOBJ - 1), "used just now stays");
	check_int(4, st.objects - st.evicted, "only those left");
	vs_cache_unpin(&f->cache, f->hashes[2]);
}

static void test_reclaim(void **state)
{
	struct fixture *f = *state;
	struct vs_evict_config ec = {
	    .cache = &f->cache, .check_ms = 600000, .rescan_ms = 600000};
	struct vs_evict *ev = NULL;

	check_bool(false, vs_cache_reclaim(&f->cache), "no evictor: false");
	/* 10 objects, 0 the oldest; 9 used just now */
	for (int i = 0; i < 10; i++)
		put_object(f, i, i == 9 ? 0 : (10 - i) * 3600);
	/* the max is 20 objects: under it, a reclaim still frees a tenth
	 * of the max (2 objects), the oldest */
	ec.max = 20 * (vs_cache_bytes(&f->cache) / 10);
	check_ret(0, vs_evict_start(&ev, &ec), "start");
	check_bool(true, vs_cache_reclaim(&f->cache), "a reclaim freed room");
	check_bool(false, present(f, 0) || present(f, 1), "the 2 oldest gone");
	for (int i = 2; i < 10; i++)
		check_bool(true, present(f, i), "object %d stays", i);
	check_bool(true, vs_cache_reclaim(&f->cache), "and again");
	check_bool(false, present(f, 2) || present(f, 3), "the next 2 gone");
	vs_evict_stop(ev);
	check_bool(false, vs_cache_reclaim(&f->cache), "stopped: false");
}

static void test_reclaim_small(void **state)
{
	struct fixture *f = *state;
	struct vs_evict_config ec = {
	    .cache = &f->cache, .check_ms = 600000, .rescan_ms = 600000};
	struct vs_evict *ev = NULL;

	/* 10 objects, 0 the oldest, 9 used just now; 8 pinned */
	for (int i = 0; i < 10; i++)
		put_object(f, i, i == 9 ? 0 : (10 - i) * 3600);
	check_ret(0, vs_cache_pin(&f->cache, f->hashes[8]), "pin object 8");
	/* a max far over them (objects/ under a tenth of it): the volume
	 * is full of other files, and what can go goes */
	ec.max = 1000 * vs_cache_bytes(&f->cache);
	check_ret(0, vs_evict_start(&ev, &ec), "start");
	check_bool(true, vs_cache_reclaim(&f->cache),
		   "a reclaim under a tenth of the max freed room");
	for (int i = 0; i < 8; i++)
		check_bool(false, present(f, i), "object %d evicted", i);
	check_bool(true, present(f, 8), "the pinned one stays");
	check_bool(true, present(f, 9), "the one used just now stays");
	vs_evict_stop(ev);
	vs_cache_unpin(&f->cache, f->hashes[8]);
}

static void *reclaim_thread(void *arg)
{
	struct fixture *f = arg;

	return vs_cache_reclaim(&f->cache) ? arg : NULL;
}

/* Poll (deadline 5 s) until @cond(@arg). */
static bool poll_until(bool (*cond)(void *), void *arg)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000; i++) {
		if (cond(arg))
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

static uint64_t measured_was;

static bool bytes_moved(void *arg)
{
	return vs_cache_bytes(&((struct fixture *)arg)->cache) != measured_was;
}

/* Poll until the cache's estimate is not @was: a pass has measured
 * objects/. */
static bool measured_since(struct fixture *f, uint64_t was)
{
	measured_was = was;
	return poll_until(bytes_moved, f);
}

static bool waits_room(void *arg)
{
	return vs_evict_waiting_room(arg);
}

static void test_reclaim_waits(void **state)
{
	struct fixture *f = *state;
	/* a long grace: only a vs_cache_room_changed can end the wait */
	struct vs_evict_config ec = {.cache = &f->cache,
				     .grace_ms = 600000,
				     .check_ms = 600000,
				     .rescan_ms = 600000};
	struct vs_evict *ev = NULL;
	struct vs_journal *j = NULL;
	struct vs_jentry e;
	uint64_t total;
	pthread_t t;
	void *got;
	int jfd;

	for (int i = 0; i < 4; i++)
		put_object(f, i, (4 - i) * 3600);
	check_ret(0, vs_cache_project_dir(&f->cache, PROJECT, "journal", &jfd),
		  "journal dir");
	check_ret(0, vs_journal_open(&j, jfd, &f->cache), "journal open");
	for (int i = 0; i < 4; i++) {
		memset(&e, 0, sizeof(e));
		e.op = VS_JOP_WRITE;
		snprintf(e.path, sizeof(e.path), "src/%d.js", i);
		memcpy(e.hash, f->hashes[i], VS_HASH_HEX_LEN + 1);
		e.size = OBJ_SIZE;
		e.mode = 0644;
		e.base_version = -1;
		check_ret(0, vs_journal_append(j, &e), "append %d", i);
	}
	total = vs_cache_bytes(&f->cache);
	ec.max = total / 4; /* one object */
	/* the start's own pass: everything journaled, nothing evicted (a
	 * pass measures: the estimate is set apart to see it) */
	vs_cache_bytes_set(&f->cache, total + 1);
	check_ret(0, vs_evict_start(&ev, &ec), "start");
	check_bool(true, measured_since(f, total + 1),
		   "the start's pass measured");
	vs_cache_bytes_set(&f->cache, total + 1);
	assert_int_equal(0, pthread_create(&t, NULL, reclaim_thread, f));
	check_bool(true, measured_since(f, total + 1),
		   "the reclaim's pass measured");
	/* the pass has read the journals (the commits below must not race
	 * its scan) and waits for room: nothing was evictable */
	check_bool(true, poll_until(waits_room, ev),
		   "the reclaim waits for a commit");
	for (int i = 0; i < 4; i++)
		check_bool(true, present(f, i), "journaled object %d kept", i);
	for (uint64_t l = 1; l <= 4; l++)
		check_ret(0, vs_journal_done(j, l), "commit %d", (int)l);
	assert_int_equal(0, pthread_join(t, &got));
	check_bool(true, got != NULL, "the waiting reclaim freed room");
	check_bool(false, present(f, 0), "the oldest committed object gone");
	vs_evict_stop(ev);
	vs_journal_free(j);
	close(jfd);
}

#define T(fn)                                                                  \
	cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_select),
	    cmocka_unit_test(test_low),
	    T(test_evict_object),
	    T(test_link_touches),
	    T(test_pins),
	    T(test_watch),
	    T(test_run),
	    T(test_reclaim),
	    T(test_reclaim_small),
	    T(test_reclaim_waits),
	};

	return cmocka_run_group_tests_name("evict", tests, NULL, NULL);
}
