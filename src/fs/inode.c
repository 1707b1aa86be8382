/* SPDX-License-Identifier: MIT */
/*
 * Inodes: the inode table on the device, inode numbers, the in-core inode
 * cache with iget/iput, reclaim, and eviction of unlinked inodes.
 *
 * Rule 7 of DESIGN.md (last reference and last link decide together): the
 * 1 -> 0 transition of i_count happens with the inode's bucket lock held,
 * and the link count is read there.  Only a holder of a reference changes
 * the link count, and nobody gets a new reference to an inode whose count
 * is 0 without the bucket lock, so the test "count == 0 && nlink == 0" is
 * made exactly once, by the last iput, and the inode is evicted once.
 *
 * Rule 9: an inode being evicted still counts in fs_busy_inodes until its
 * blocks are freed, so unmount waits for it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "fs/csum.h"
#include "fs/fs.h"
#include "fs/journal.h"

void timespec_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static void dtime_set(struct udx_dtime *d, const struct timespec *ts)
{
	d->t_sec = (uint64_t)ts->tv_sec;
	d->t_nsec = (uint32_t)ts->tv_nsec;
	d->t_pad = 0;
}

static void dtime_get(const struct udx_dtime *d, struct timespec *ts)
{
	ts->tv_sec = (time_t)d->t_sec;
	ts->tv_nsec = (long)d->t_nsec;
}

uint64_t inode_csum(uint64_t ino, const struct udx_dinode *d)
{
	return udx_csum64(d, offsetof(struct udx_dinode, i_checksum), ino);
}

bool inode_valid(struct udx_fs *fs, uint64_t ino)
{
	const struct udx_dinode *d;

	if (ino == 0 || ino >= fs->fs_ninodes || READ_ONCE(fs->fs_imap[ino]) != 1)
		return false;
	d = &fs->fs_itable[ino];
	return d->i_checksum == inode_csum(ino, d);
}

/* ---- inode numbers -------------------------------------------------- */

int inode_numbers_init(struct udx_fs *fs)
{
	uint64_t words = (fs->fs_ninodes + 63) / 64, ino;

	fs->fs_ino_used = calloc(words, sizeof(uint64_t));
	if (fs->fs_ino_used == NULL)
		return udx_err(-ENOMEM, "out of memory");
	fs->fs_free_inodes = 0;
	for (ino = 0; ino < words * 64; ino++) {
		if (ino == 0 || ino >= fs->fs_ninodes || fs->fs_imap[ino] != 0)
			fs->fs_ino_used[ino / 64] |= 1ull << (ino % 64);
		else
			fs->fs_free_inodes++;
	}
	fs->fs_ino_hint = 1;
	pthread_mutex_init(&fs->fs_ino_lock, NULL);
	return 0;
}

int inode_reserve(struct udx_fs *fs, uint64_t *ino)
{
	uint64_t words = (fs->fs_ninodes + 63) / 64, w, i;
	int ret = -ENOSPC;

	pthread_mutex_lock(&fs->fs_ino_lock);
	if (fs->fs_free_inodes == 0) {
		ret = udx_err(-ENOSPC, "no free inodes left (mkfs with more inodes)");
		goto out;
	}
	w = fs->fs_ino_hint / 64;
	for (i = 0; i < words; i++, w = (w + 1) % words) {
		uint64_t free = ~fs->fs_ino_used[w];

		if (free == 0)
			continue;
		*ino = w * 64 + (uint64_t)__builtin_ctzll(free);
		fs->fs_ino_used[w] |= 1ull << (*ino % 64);
		fs->fs_free_inodes--;
		fs->fs_ino_hint = *ino + 1;
		ret = 0;
		break;
	}
	UDX_BUG_ON(ret != 0);           /* the count said there was one */
out:
	pthread_mutex_unlock(&fs->fs_ino_lock);
	return ret;
}

void inode_unreserve(struct udx_fs *fs, uint64_t ino)
{
	pthread_mutex_lock(&fs->fs_ino_lock);
	UDX_BUG_ON(!(fs->fs_ino_used[ino / 64] & (1ull << (ino % 64))));
	fs->fs_ino_used[ino / 64] &= ~(1ull << (ino % 64));
	fs->fs_free_inodes++;
	if (ino < fs->fs_ino_hint)
		fs->fs_ino_hint = ino;
	pthread_mutex_unlock(&fs->fs_ino_lock);
}

/* ---- the on-device inode ----------------------------------------------- */

int inode_log(struct udx_tx *tx, struct udx_inode *ip)
{
	return tx_log(tx, ip->i_d, sizeof(*ip->i_d));
}

/* Log up to four inodes (NULLs and repeats skipped) with one drain. */
int tx_log_inodes(struct udx_tx *tx, struct udx_inode *a, struct udx_inode *b,
		  struct udx_inode *c, struct udx_inode *d)
{
	struct udx_inode *v[4] = { a, b, c, d };
	struct tx_range r[4];
	unsigned i, n = 0;

	for (i = 0; i < 4; i++)
		if (v[i])
			r[n++] = (struct tx_range){ (char *)v[i]->i_d, sizeof(*v[i]->i_d), false };
	return tx_log_many(tx, r, n);
}

/* Fold dirty in-core timestamps into the device inode and recompute its
 * checksum.  After inode_log() in the same transaction. */
void inode_seal(struct udx_inode *ip)
{
	struct udx_dinode *d = ip->i_d;

	pthread_mutex_lock(&ip->i_tlock);
	if (ip->i_times_dirty) {
		dtime_set(&d->i_atime, &ip->i_atime);
		dtime_set(&d->i_mtime, &ip->i_mtime);
		dtime_set(&d->i_ctime, &ip->i_ctime);
		ip->i_times_dirty = false;
	}
	pthread_mutex_unlock(&ip->i_tlock);
	d->i_checksum = inode_csum(ip->i_ino, d);
}

int inode_init_new(struct udx_tx *tx, struct udx_fs *fs, uint64_t ino, mode_t mode,
		   uid_t uid, gid_t gid)
{
	struct udx_dinode *d = &fs->fs_itable[ino];
	struct timespec now;
	uint32_t gen;
	int ret;

	/* Only the map byte needs its old value saved: while it is 0 the slot's
	 * contents mean nothing, so a rollback that clears it undoes the whole
	 * inode.  The slot is still flushed at commit. */
	ret = tx_log(tx, &fs->fs_imap[ino], 1);
	if (!ret)
		ret = tx_dirty(tx, d, sizeof(*d));
	if (ret)
		return ret;
	/* a reused slot keeps counting generations; a never used one starts
	 * somewhere unpredictable */
	if (d->i_checksum == inode_csum(ino, d))
		gen = d->i_generation + 1;
	else
		gen = (uint32_t)udx_now_ns() ^ (uint32_t)(ino * 0x9e3779b1u);
	memset(d, 0, sizeof(*d));
	timespec_now(&now);
	d->i_mode = (uint16_t)mode;
	d->i_uid = (uint32_t)uid;
	d->i_gid = (uint32_t)gid;
	d->i_nlink = S_ISDIR(mode) ? 2 : 1;
	d->i_generation = gen;
	dtime_set(&d->i_atime, &now);
	dtime_set(&d->i_mtime, &now);
	dtime_set(&d->i_ctime, &now);
	dtime_set(&d->i_btime, &now);
	d->i_checksum = inode_csum(ino, d);
	fs->fs_imap[ino] = 1;
	return 0;
}

void inode_set_nlink(struct udx_inode *ip, uint32_t nlink)
{
	if (ip->i_d->i_nlink != 0 && nlink == 0)
		__atomic_fetch_add(&ip->i_fs->fs_orphans, 1, __ATOMIC_RELAXED);
	ip->i_d->i_nlink = nlink;
}

/* ---- timestamps ------------------------------------------------------ */

void inode_touch(struct udx_inode *ip, bool atime, bool mtime, bool ctime)
{
	struct timespec now;

	timespec_now(&now);
	pthread_mutex_lock(&ip->i_tlock);
	if (atime)
		ip->i_atime = now;
	if (mtime)
		ip->i_mtime = now;
	if (ctime)
		ip->i_ctime = now;
	ip->i_times_dirty = true;
	pthread_mutex_unlock(&ip->i_tlock);
}

void inode_times(struct udx_inode *ip, struct timespec *a, struct timespec *m,
		 struct timespec *c)
{
	pthread_mutex_lock(&ip->i_tlock);
	*a = ip->i_atime;
	*m = ip->i_mtime;
	*c = ip->i_ctime;
	pthread_mutex_unlock(&ip->i_tlock);
}

/* Write dirty timestamps to the device.  Called with i_rwsem exclusive, or
 * on an inode nobody else can reach. */
int inode_write_times(struct udx_inode *ip)
{
	struct udx_fs *fs = ip->i_fs;
	struct udx_tx tx;
	bool dirty;
	int ret;

	pthread_mutex_lock(&ip->i_tlock);
	dirty = ip->i_times_dirty;
	pthread_mutex_unlock(&ip->i_tlock);
	if (!dirty || fs->fs_rdonly || READ_ONCE(fs->fs_imap[ip->i_ino]) != 1)
		return 0;
	tx_begin(&fs->fs_jn, &tx);
	ret = inode_log(&tx, ip);
	if (ret) {
		tx_abort(&tx);
		return ret;
	}
	inode_seal(ip);
	return tx_commit(&tx);
}

/* ---- the inode cache ------------------------------------------------- */

static struct ic_bucket *ic_bucket(struct udx_fs *fs, uint64_t ino)
{
	return &fs->fs_icache[(ino * 0x9e3779b97f4a7c15ull) >> (64 - 14)];
}

int inode_cache_init(struct udx_fs *fs)
{
	unsigned i;

	for (i = 0; i < IC_BUCKETS; i++) {
		pthread_mutex_init(&fs->fs_icache[i].b_lock, NULL);
		fs->fs_icache[i].b_head = NULL;
	}
	pthread_mutex_init(&fs->fs_lru_lock, NULL);
	pthread_mutex_init(&fs->fs_busy_lock, NULL);
	pthread_cond_init(&fs->fs_busy_cv, NULL);
	pthread_cond_init(&fs->fs_evict_cv, NULL);
	return 0;
}

static void inode_free_struct(struct udx_inode *ip)
{
	pthread_rwlock_destroy(&ip->i_rwsem);
	pthread_rwlock_destroy(&ip->i_mmap_lock);
	pthread_mutex_destroy(&ip->i_tlock);
	dax_mapping_destroy(ip);                /* rule 1 */
	pthread_mutex_destroy(&ip->i_map.m_lock);
	pthread_cond_destroy(&ip->i_map.m_cv);
	free(ip);
}

void inode_cache_exit(struct udx_fs *fs)
{
	unsigned i;

	for (i = 0; i < IC_BUCKETS; i++) {
		struct udx_inode *ip = fs->fs_icache[i].b_head, *next;

		for (; ip; ip = next) {
			next = ip->i_hnext;
			inode_free_struct(ip);
		}
		fs->fs_icache[i].b_head = NULL;
		pthread_mutex_destroy(&fs->fs_icache[i].b_lock);
	}
	pthread_mutex_destroy(&fs->fs_lru_lock);
	pthread_mutex_destroy(&fs->fs_busy_lock);
	pthread_cond_destroy(&fs->fs_busy_cv);
	pthread_cond_destroy(&fs->fs_evict_cv);
}

static void busy_inc(struct udx_fs *fs)
{
	__atomic_fetch_add(&fs->fs_busy_inodes, 1, __ATOMIC_RELAXED);
}

/* The last use of @fs by a thread that held an inode: once the count is 0
 * a waiting unmount may free it, so 1 -> 0 happens under fs_busy_lock (which
 * the unmount takes before it looks), and nothing follows. */
static void busy_dec(struct udx_fs *fs)
{
	uint64_t c = __atomic_load_n(&fs->fs_busy_inodes, __ATOMIC_RELAXED);

	while (c > 1) {
		if (__atomic_compare_exchange_n(&fs->fs_busy_inodes, &c, c - 1, true,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return;
	}
	pthread_mutex_lock(&fs->fs_busy_lock);
	if (__atomic_sub_fetch(&fs->fs_busy_inodes, 1, __ATOMIC_ACQ_REL) == 0)
		pthread_cond_broadcast(&fs->fs_busy_cv);
	pthread_mutex_unlock(&fs->fs_busy_lock);
}

/* LRU: called with the inode's bucket lock held. */
static void lru_add(struct udx_fs *fs, struct udx_inode *ip)
{
	pthread_mutex_lock(&fs->fs_lru_lock);
	if (!__atomic_load_n(&ip->i_on_lru, __ATOMIC_RELAXED)) {
		ip->i_lprev = NULL;
		ip->i_lnext = fs->fs_lru_head;
		if (fs->fs_lru_head)
			fs->fs_lru_head->i_lprev = ip;
		else
			fs->fs_lru_tail = ip;
		fs->fs_lru_head = ip;
		__atomic_store_n(&ip->i_on_lru, true, __ATOMIC_RELAXED);
		fs->fs_lru_count++;
	}
	pthread_mutex_unlock(&fs->fs_lru_lock);
}

static void lru_del_locked(struct udx_fs *fs, struct udx_inode *ip)
{
	if (!__atomic_load_n(&ip->i_on_lru, __ATOMIC_RELAXED))
		return;
	if (ip->i_lprev)
		ip->i_lprev->i_lnext = ip->i_lnext;
	else
		fs->fs_lru_head = ip->i_lnext;
	if (ip->i_lnext)
		ip->i_lnext->i_lprev = ip->i_lprev;
	else
		fs->fs_lru_tail = ip->i_lprev;
	__atomic_store_n(&ip->i_on_lru, false, __ATOMIC_RELAXED);
	fs->fs_lru_count--;
}

static void lru_del(struct udx_fs *fs, struct udx_inode *ip)
{
	pthread_mutex_lock(&fs->fs_lru_lock);
	lru_del_locked(fs, ip);
	pthread_mutex_unlock(&fs->fs_lru_lock);
}

static struct udx_inode *inode_alloc_struct(struct udx_fs *fs, uint64_t ino)
{
	/* cache-line aligned: the counts and locks of two inodes used by two
	 * threads never share a line */
	struct udx_inode *ip = aligned_alloc(64, ALIGN_UP(sizeof(*ip), 64));
	struct udx_dinode *d = &fs->fs_itable[ino];

	if (ip == NULL)
		return NULL;
	memset(ip, 0, sizeof(*ip));
	ip->i_ino = ino;
	ip->i_fs = fs;
	ip->i_d = d;
	ip->i_count = 1;
	ip->i_state = I_LIVE;
	pthread_rwlock_init(&ip->i_rwsem, NULL);
	pthread_rwlock_init(&ip->i_mmap_lock, NULL);
	pthread_mutex_init(&ip->i_tlock, NULL);
	dax_mapping_init(&ip->i_map);
	dtime_get(&d->i_atime, &ip->i_atime);
	dtime_get(&d->i_mtime, &ip->i_mtime);
	dtime_get(&d->i_ctime, &ip->i_ctime);
	return ip;
}

static void inode_unhash(struct udx_fs *fs, struct udx_inode *ip);

static void wait_for_freeing(void)
{
	struct timespec ts = { 0, 20000 };

	nanosleep(&ts, NULL);
}

int udx_iget(struct udx_fs *fs, uint64_t ino, struct udx_inode **out)
{
	struct ic_bucket *b = ic_bucket(fs, ino);
	struct udx_inode *ip;

	for (;;) {
		pthread_mutex_lock(&b->b_lock);
		for (ip = b->b_head; ip; ip = ip->i_hnext)
			if (ip->i_ino == ino)
				break;
		if (ip == NULL)
			break;
		if (ip->i_state != I_LIVE) {
			/* being created or freed: its slot is in flux */
			pthread_mutex_unlock(&b->b_lock);
			wait_for_freeing();
			continue;
		}
		/* 0 -> 1 leaves it on the LRU: reclaim skips referenced inodes
		 * (lazy removal keeps the LRU lock off the lookup path) */
		if (__atomic_fetch_add(&ip->i_count, 1, __ATOMIC_ACQUIRE) == 0)
			busy_inc(fs);
		pthread_mutex_unlock(&b->b_lock);
		*out = ip;
		return 0;
	}
	/* not cached: the device inode is in memory, so loading is cheap */
	if (!inode_valid(fs, ino)) {
		pthread_mutex_unlock(&b->b_lock);
		if (ino != 0 && ino < fs->fs_ninodes && READ_ONCE(fs->fs_imap[ino]) == 1)
			return udx_err(-EUCLEAN, "inode %llu is damaged (checksum mismatch; run fsck)",
				       (unsigned long long)ino);
		return udx_err(-ENOENT, "inode %llu is not in use", (unsigned long long)ino);
	}
	ip = inode_alloc_struct(fs, ino);
	if (ip == NULL) {
		pthread_mutex_unlock(&b->b_lock);
		return udx_err(-ENOMEM, "out of memory");
	}
	ip->i_hnext = b->b_head;
	b->b_head = ip;
	busy_inc(fs);
	__atomic_fetch_add(&fs->fs_cached, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&b->b_lock);
	*out = ip;
	return 0;
}

/*
 * Creation: the inode enters the cache as I_NEW, referenced, before its
 * slot is written, so that an iget by number (a front end's stale handle)
 * waits instead of reading a slot whose transaction may yet roll back.
 * inode_new_done() makes it I_LIVE after the commit; inode_new_abort()
 * removes it after a rollback.  The number is reserved (inode_reserve).
 */
int inode_insert_new(struct udx_fs *fs, uint64_t ino, struct udx_inode **out)
{
	struct ic_bucket *b = ic_bucket(fs, ino);
	struct udx_inode *ip = inode_alloc_struct(fs, ino), *o;

	if (ip == NULL)
		return udx_err(-ENOMEM, "out of memory");
	ip->i_state = I_NEW;
	pthread_mutex_lock(&b->b_lock);
	for (o = b->b_head; o; o = o->i_hnext)
		UDX_BUG_ON(o->i_ino == ino);    /* a reserved number is not cached */
	ip->i_hnext = b->b_head;
	b->b_head = ip;
	busy_inc(fs);
	__atomic_fetch_add(&fs->fs_cached, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&b->b_lock);
	*out = ip;
	return 0;
}

void inode_new_done(struct udx_inode *ip)
{
	struct ic_bucket *b = ic_bucket(ip->i_fs, ip->i_ino);
	struct udx_dinode *d = ip->i_d;

	pthread_mutex_lock(&ip->i_tlock);
	dtime_get(&d->i_atime, &ip->i_atime);
	dtime_get(&d->i_mtime, &ip->i_mtime);
	dtime_get(&d->i_ctime, &ip->i_ctime);
	pthread_mutex_unlock(&ip->i_tlock);
	pthread_mutex_lock(&b->b_lock);
	ip->i_state = I_LIVE;
	pthread_mutex_unlock(&b->b_lock);
}

void inode_new_abort(struct udx_inode *ip)
{
	struct udx_fs *fs = ip->i_fs;
	struct ic_bucket *b = ic_bucket(fs, ip->i_ino);

	pthread_mutex_lock(&b->b_lock);
	ip->i_state = I_FREEING;
	pthread_mutex_unlock(&b->b_lock);
	inode_unhash(fs, ip);
	busy_dec(fs);
}

void udx_igrab(struct udx_inode *ip)
{
	uint32_t old = __atomic_fetch_add(&ip->i_count, 1, __ATOMIC_RELAXED);

	UDX_BUG_ON(old == 0);
}

/* Remove an I_FREEING inode from its chain and free it. */
static void inode_unhash(struct udx_fs *fs, struct udx_inode *ip)
{
	struct ic_bucket *b = ic_bucket(fs, ip->i_ino);
	struct udx_inode **pp;

	/* entries go while it is still hashed (I_FREEING: iget waits), or
	 * the inode could be loaded again, its blocks freed and reused while
	 * these still hold their folios (rule 1) */
	dax_delete_entries(ip, 0, UINT64_MAX);

	pthread_mutex_lock(&b->b_lock);
	for (pp = &b->b_head; *pp; pp = &(*pp)->i_hnext) {
		if (*pp == ip) {
			*pp = ip->i_hnext;
			break;
		}
	}
	pthread_mutex_unlock(&b->b_lock);
	lru_del(fs, ip);        /* it may sit there since an earlier 1 -> 0 */
	__atomic_fetch_sub(&fs->fs_cached, 1, __ATOMIC_RELAXED);
	inode_free_struct(ip);
}

/* Free everything an unlinked inode owns: blocks, tree, slot.  Nobody else
 * can reach it (I_FREEING). */
static bool inode_evict(struct udx_fs *fs, struct udx_inode *ip)
{
	int ret = -EROFS;

	if (!fs->fs_rdonly) {
		ret = inode_evict_blocks(ip);
		if (ret && !__atomic_load_n(&fs->fs_revoked, __ATOMIC_RELAXED))
			fprintf(stderr, "udaxfs: evicting inode %llu: %s (fsck will free it)\n",
				(unsigned long long)ip->i_ino, udx_errmsg());
	}
	__atomic_fetch_sub(&fs->fs_orphans, 1, __ATOMIC_RELAXED);
	return ret == 0;
}

/* Reclaim unreferenced inodes until the cache is back under its limit. */
static void inode_reclaim(struct udx_fs *fs)
{
	while (__atomic_load_n(&fs->fs_cached, __ATOMIC_RELAXED) > fs->fs_icache_limit) {
		struct udx_inode *ip, *v;
		struct ic_bucket *b;
		uint64_t ino;

		pthread_mutex_lock(&fs->fs_lru_lock);
		v = fs->fs_lru_tail;
		if (v == NULL) {
			pthread_mutex_unlock(&fs->fs_lru_lock);
			return;
		}
		ino = v->i_ino;
		lru_del_locked(fs, v);
		pthread_mutex_unlock(&fs->fs_lru_lock);
		/* v may be gone by now: find it again by number */
		b = ic_bucket(fs, ino);
		pthread_mutex_lock(&b->b_lock);
		for (ip = b->b_head; ip; ip = ip->i_hnext)
			if (ip == v)
				break;
		if (ip == NULL || ip->i_state != I_LIVE ||
		    __atomic_load_n(&ip->i_count, __ATOMIC_ACQUIRE) != 0) {
			pthread_mutex_unlock(&b->b_lock);
			continue;               /* someone took it back */
		}
		ip->i_state = I_FREEING;
		busy_inc(fs);                   /* rule 9: unmount waits for us */
		pthread_mutex_unlock(&b->b_lock);
		inode_write_times(ip);
		inode_unhash(fs, ip);
		busy_dec(fs);
	}
}

void udx_iput(struct udx_inode *ip)
{
	struct udx_fs *fs = ip->i_fs;
	struct ic_bucket *b;
	uint32_t c = __atomic_load_n(&ip->i_count, __ATOMIC_RELAXED);

	while (c > 1) {
		if (__atomic_compare_exchange_n(&ip->i_count, &c, c - 1, true,
						__ATOMIC_RELEASE, __ATOMIC_RELAXED))
			return;
	}
	b = ic_bucket(fs, ip->i_ino);
	pthread_mutex_lock(&b->b_lock);
	c = __atomic_fetch_sub(&ip->i_count, 1, __ATOMIC_ACQ_REL);
	UDX_BUG_ON(c == 0);
	if (c != 1) {
		pthread_mutex_unlock(&b->b_lock);
		return;
	}
	if (READ_ONCE(ip->i_d->i_nlink) == 0) {
		/* the last reference of an unlinked inode: rule 7 */
		ip->i_state = I_FREEING;
		pthread_mutex_unlock(&b->b_lock);
		uint64_t ino = ip->i_ino;
		bool freed = inode_evict(fs, ip);

		inode_unhash(fs, ip);
		if (freed)
			inode_unreserve(fs, ino);       /* reusable only now (J5) */
		busy_dec(fs);
		return;
	}
	if (!__atomic_load_n(&ip->i_on_lru, __ATOMIC_RELAXED))
		lru_add(fs, ip);
	pthread_mutex_unlock(&b->b_lock);
	/* reclaim while this inode still keeps the file system busy */
	if (__atomic_load_n(&fs->fs_cached, __ATOMIC_RELAXED) > fs->fs_icache_limit)
		inode_reclaim(fs);
	busy_dec(fs);
}

/*
 * Unlink's fast path: when the caller's reference is the only one, mark the
 * inode I_FREEING now, so that nobody can take a new reference (iget waits),
 * and the caller may free it in its own transaction.  Rule 7 holds: the
 * test "count == 1 (ours) and no other" is made under the bucket lock, as
 * iput's.  Returns true when claimed; then end with inode_claim_done().
 */
bool inode_claim_last(struct udx_inode *ip)
{
	struct ic_bucket *b = ic_bucket(ip->i_fs, ip->i_ino);
	bool ok;

	pthread_mutex_lock(&b->b_lock);
	ok = ip->i_state == I_LIVE && __atomic_load_n(&ip->i_count, __ATOMIC_ACQUIRE) == 1;
	if (ok)
		ip->i_state = I_FREEING;
	pthread_mutex_unlock(&b->b_lock);
	return ok;
}

/*
 * Finish a claim: @freed says the inode's slot was freed in the caller's
 * committed transaction (drop the struct, give the number back); otherwise
 * it goes back to I_LIVE and the caller's iput decides as usual.
 */
void inode_claim_done(struct udx_inode *ip, bool freed)
{
	struct udx_fs *fs = ip->i_fs;
	struct ic_bucket *b = ic_bucket(fs, ip->i_ino);
	uint64_t ino = ip->i_ino;

	if (!freed) {
		pthread_mutex_lock(&b->b_lock);
		ip->i_state = I_LIVE;
		pthread_mutex_unlock(&b->b_lock);
		udx_iput(ip);
		return;
	}
	__atomic_store_n(&ip->i_count, 0, __ATOMIC_RELEASE);
	__atomic_fetch_sub(&fs->fs_orphans, 1, __ATOMIC_RELAXED);
	inode_unhash(fs, ip);
	inode_unreserve(fs, ino);       /* after the struct left the cache */
	busy_dec(fs);
}

uint64_t udx_iino(const struct udx_inode *ip)
{
	return ip->i_ino;
}

uint32_t udx_igeneration(const struct udx_inode *ip)
{
	return READ_ONCE(ip->i_d->i_generation);
}

struct udx_fs *udx_ifs(const struct udx_inode *ip)
{
	return ip->i_fs;
}

/* Call @fn on every live cached inode, holding a reference.  The references
 * are taken under the bucket lock on the cached structs: an inode is never
 * reloaded by number here (its slot may be in flux). */
void inode_for_each_cached(struct udx_fs *fs, void (*fn)(struct udx_inode *ip, void *arg),
			   void *arg)
{
	struct udx_inode **ips = NULL;
	size_t n, cap = 0, k;
	unsigned i;

	for (i = 0; i < IC_BUCKETS; i++) {
		struct ic_bucket *b = &fs->fs_icache[i];
		struct udx_inode *ip;

		pthread_mutex_lock(&b->b_lock);
		for (n = 0, ip = b->b_head; ip; ip = ip->i_hnext) {
			if (ip->i_state != I_LIVE)
				continue;
			if (n == cap) {
				struct udx_inode **p = realloc(ips, (cap ? cap * 2 : 64) * sizeof(*ips));

				if (p == NULL)
					break;
				ips = p;
				cap = cap ? cap * 2 : 64;
			}
			if (__atomic_fetch_add(&ip->i_count, 1, __ATOMIC_ACQUIRE) == 0)
				busy_inc(fs);
			ips[n++] = ip;
		}
		pthread_mutex_unlock(&b->b_lock);
		for (k = 0; k < n; k++) {
			fn(ips[k], arg);
			udx_iput(ips[k]);
		}
	}
	free(ips);
}

/* The DAX counters of every cached inode (a snapshot, for statistics):
 * only cached inodes have entries or pins. */
void inode_sum_dax(struct udx_fs *fs, uint64_t *entries, uint64_t *pins, uint64_t *pinned)
{
	unsigned i;

	*entries = *pins = *pinned = 0;
	for (i = 0; i < IC_BUCKETS; i++) {
		struct ic_bucket *b = &fs->fs_icache[i];
		struct udx_inode *ip;

		pthread_mutex_lock(&b->b_lock);
		for (ip = b->b_head; ip; ip = ip->i_hnext) {
			uint64_t n = READ_ONCE(ip->i_map.m_npins);

			*entries += READ_ONCE(ip->i_map.m_nentries);
			*pins += n;
			*pinned += n != 0;
		}
		pthread_mutex_unlock(&b->b_lock);
	}
}

static void flush_one(struct udx_inode *ip, void *arg)
{
	int *ret = arg;

	ilock(ip);
	if (inode_write_times(ip) && !*ret)
		*ret = -EIO;
	iunlock(ip);
}

/* Write back the timestamps of every cached inode (sync, unmount). */
int inode_flush_all(struct udx_fs *fs)
{
	int ret = 0;

	inode_for_each_cached(fs, flush_one, &ret);
	return ret;
}
