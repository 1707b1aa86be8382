/* SPDX-License-Identifier: MIT */
/*
 * Internal: the mounted file system (super) and in-core inodes.
 *
 * Lifetimes:
 *   struct udx_fs    from udx_mount() to udx_unmount(); unmount refuses
 *                    while fs_busy_inodes > 0.
 *   struct udx_inode in the inode cache from the first iget to reclaim or
 *                    eviction.  i_count counts references (iget/igrab ..
 *                    iput): open files, front-end handles, path walks in
 *                    progress, pins.  At 0 an inode with links stays cached
 *                    (on the LRU) until the cache passes its limit; one
 *                    without links is evicted: its blocks and slot are freed.
 *
 * Locks, in the order they nest:
 *   fs_rename_lock        cross-directory renames (ancestry cannot change)
 *   i_rwsem               the inode lock: directories exclusive to change
 *                         entries, shared to look up; files exclusive to
 *                         change size or extents, shared to read.  Parents
 *                         before children; two unrelated inodes by number.
 *   i_mmap_lock           the invalidate lock: shared to access device memory
 *                         through the extent map (read, write, fault, pin),
 *                         exclusive to free or move blocks (truncate, punch:
 *                         they break the layout first).  Inside i_rwsem;
 *                         a pin may take it without i_rwsem.
 *   i_map.m_lock          the mapping index and pin list (dax/dax.h)
 *   journal lane          a transaction, begun with the inode locks held and
 *                         committed before they are dropped
 *   ic_bucket lock        inode cache hash chain, i_state, i_count 1 <-> 0
 *   fs_lru_lock           the LRU list
 *   i_tlock               in-core timestamps
 *   fs_ino_lock           inode number allocation
 */
#ifndef UDX_FS_FS_H
#define UDX_FS_FS_H

#include <pthread.h>
#include <udaxfs/fs.h>
#include <udaxfs/format.h>

#include <udaxfs/liveref.h>

#include "base/compiler.h"
#include "dax/dax.h"
#include "fs/alloc.h"
#include "fs/journal.h"

struct udx_tx;

#define IC_BUCKETS 16384              /* chains stay short at 65536 inodes */

struct ic_bucket {
	pthread_mutex_t b_lock;
	struct udx_inode *b_head;
} __attribute__((aligned(64)));

/* i_state, with transitions (bucket lock held):
 *   I_NEW -> I_LIVE        creation committed (iget waits while I_NEW)
 *   I_NEW -> I_FREEING     creation rolled back
 *   I_LIVE -> I_FREEING    last iput of an unlinked inode (evict), or reclaim
 *   I_FREEING -> (gone)    removed from the hash, fs_evict_cv broadcast */
enum { I_NEW = 1, I_LIVE, I_FREEING };

struct udx_inode {
	uint64_t i_ino;
	struct udx_fs *i_fs;
	struct udx_dinode *i_d;         /* in device memory */
	uint32_t i_count;               /* atomic; 1 <-> 0 under the bucket lock */
	int i_state;                    /* bucket lock */
	struct udx_inode *i_hnext;      /* bucket chain */
	struct udx_inode *i_lprev, *i_lnext;    /* LRU, fs_lru_lock */
	bool i_on_lru;                  /* fs_lru_lock */
	pthread_rwlock_t i_rwsem;
	pthread_rwlock_t i_mmap_lock;
	pthread_mutex_t i_tlock;
	struct timespec i_atime, i_mtime, i_ctime;      /* i_tlock */
	bool i_times_dirty;             /* i_tlock: newer than the device's */
	bool i_data_dirty;              /* i_tlock: overwrites not yet flushed */
	/* DAX entries and pins (dax/dax.h): a line of its own, as pins write
	 * it where reads and writes only read the fields above */
	struct dax_mapping i_map __attribute__((aligned(64)));
#ifdef UDX_DEBUG
	pthread_t i_wowner;             /* holder of i_rwsem exclusive */
	bool i_wheld;
#endif
};

struct udx_fs {
	struct udx_dev *fs_dev;
	char *fs_base;
	struct udx_dsuper *fs_sb;
	uint64_t fs_nblocks, fs_ninodes, fs_data_start;
	uint8_t *fs_imap;               /* device: one byte per inode */
	struct udx_dinode *fs_itable;   /* device */
	uint64_t fs_hash_seed;
	uid_t fs_uid;                   /* owner of what the POSIX calls create */
	gid_t fs_gid;
	bool fs_rdonly;
	bool fs_errors;                 /* damage seen at run time (atomic) */
	bool fs_page_gran;              /* persistence is msync: track dirty data */

	struct udx_journal fs_jn;
	struct udx_alloc *fs_alloc;

	pthread_mutex_t fs_ino_lock;
	uint64_t *fs_ino_used;          /* in-core: 1 = slot taken (or reserved) */
	uint64_t fs_ino_hint;
	uint64_t fs_free_inodes;

	struct ic_bucket fs_icache[IC_BUCKETS];
	pthread_mutex_t fs_lru_lock;
	struct udx_inode *fs_lru_head, *fs_lru_tail;
	uint64_t fs_lru_count;          /* fs_lru_lock */
	uint64_t fs_cached;             /* atomic: inodes in the cache */
	uint64_t fs_icache_limit;

	pthread_mutex_t fs_busy_lock;
	pthread_cond_t fs_busy_cv;      /* fs_busy_inodes reached 0 */
	pthread_cond_t fs_evict_cv;     /* an I_FREEING inode left the hash */
	uint64_t fs_busy_inodes;        /* fs_busy_lock: referenced or evicting */
	uint64_t fs_orphans;            /* atomic: unlinked, still referenced */

	pthread_mutex_t fs_rename_lock;

	pthread_mutex_t fs_fd_lock;
	struct udx_file **fs_fds;
	int fs_nfds;
	uint64_t fs_open_files;

	/* direct access (src/dax) */
	struct udx_pgmap *fs_pg;        /* the pgmap this file system holds */
	bool fs_own_pg;                 /* made by mount, torn down by unmount */
	bool fs_revoked;                /* atomic: the device is being removed */
	void *fs_zero;                  /* 2 MiB of zeros, read-only: hole entries */
	/* rare events (atomic); entries and pins are counted per inode and
	 * summed by udx_fs_stats, so that no pin writes a shared line */
	uint64_t fs_recalls, fs_waits, fs_poison_events;
	/* sections touching the device (fs_enter): read on every pin, I/O and
	 * transaction, written only at removal and unmount */
	struct udx_liveref fs_active __attribute__((aligned(64)));
};

/*
 * A section in which the file system touches device memory: transactions,
 * file I/O, faults and pins (DESIGN.md rules 2 and 3).  Fails once the
 * device is being removed; removal waits for every open section.
 */
static inline bool fs_enter(struct udx_fs *fs)
{
	return udx_liveref_tryget_live(&fs->fs_active);
}

static inline void fs_exit(struct udx_fs *fs)
{
	udx_liveref_put(&fs->fs_active);
}

static inline void fs_count(uint64_t *c, int64_t d)
{
	__atomic_fetch_add(c, (uint64_t)d, __ATOMIC_RELAXED);
}

struct udx_file {
	struct udx_inode *f_ip;
	int f_flags;
	pthread_mutex_t f_lock;
	uint64_t f_pos;                 /* f_lock */
};

static inline void *fs_block(struct udx_fs *fs, uint64_t blk)
{
	return fs->fs_base + (blk << UDX_BLOCK_SHIFT);
}

static inline uint64_t fs_blkno(struct udx_fs *fs, const void *p)
{
	return (uint64_t)((const char *)p - fs->fs_base) >> UDX_BLOCK_SHIFT;
}

/* ---- inode.c ---- */
int inode_cache_init(struct udx_fs *fs);
void inode_cache_exit(struct udx_fs *fs);
int inode_numbers_init(struct udx_fs *fs);
uint64_t inode_csum(uint64_t ino, const struct udx_dinode *d);
bool inode_valid(struct udx_fs *fs, uint64_t ino);
int inode_log(struct udx_tx *tx, struct udx_inode *ip);
int tx_log_inodes(struct udx_tx *tx, struct udx_inode *a, struct udx_inode *b,
		  struct udx_inode *c, struct udx_inode *d);
void inode_seal(struct udx_inode *ip);
int inode_reserve(struct udx_fs *fs, uint64_t *ino);
void inode_unreserve(struct udx_fs *fs, uint64_t ino);
int inode_init_new(struct udx_tx *tx, struct udx_fs *fs, uint64_t ino, mode_t mode,
		   uid_t uid, gid_t gid);
int inode_insert_new(struct udx_fs *fs, uint64_t ino, struct udx_inode **ip);
void inode_new_done(struct udx_inode *ip);
void inode_new_abort(struct udx_inode *ip);
void inode_touch(struct udx_inode *ip, bool atime, bool mtime, bool ctime);
void inode_times(struct udx_inode *ip, struct timespec *a, struct timespec *m,
		 struct timespec *c);
int inode_write_times(struct udx_inode *ip);
int inode_evict_blocks(struct udx_inode *ip);
bool inode_claim_last(struct udx_inode *ip);
void inode_claim_done(struct udx_inode *ip, bool freed);
int inode_free_in_tx(struct udx_tx *tx, struct udx_inode *ip);
int inode_flush_all(struct udx_fs *fs);
void inode_for_each_cached(struct udx_fs *fs, void (*fn)(struct udx_inode *ip, void *arg),
			   void *arg);
void inode_sum_dax(struct udx_fs *fs, uint64_t *entries, uint64_t *pins, uint64_t *pinned);
void inode_set_nlink(struct udx_inode *ip, uint32_t nlink);
void timespec_now(struct timespec *ts);

static inline mode_t inode_mode(const struct udx_inode *ip)
{
	return READ_ONCE(ip->i_d->i_mode);
}

#define IS_DIR(ip)  S_ISDIR(inode_mode(ip))
#define IS_REG(ip)  S_ISREG(inode_mode(ip))
#define IS_LNK(ip)  S_ISLNK(inode_mode(ip))

/* ---- extent.c ---- */
struct ext_map {
	uint64_t m_lblk;                /* start of the mapping or hole */
	uint64_t m_len;                 /* blocks */
	uint64_t m_pblk;                /* 0 for a hole */
	bool m_unwritten;
};
int ext_lookup(struct udx_inode *ip, uint64_t lblk, struct ext_map *m);
struct bt_cursor;
/* The extent at an extent tree cursor; -EUCLEAN for a damaged value. */
int ext_tree_get(const struct bt_cursor *c, struct udx_dextent *e);
int ext_alloc(struct udx_tx *tx, struct udx_inode *ip, uint64_t lblk, uint64_t len,
	      bool unwritten, struct ext_map *m);
int ext_convert(struct udx_tx *tx, struct udx_inode *ip, uint64_t lblk, uint64_t len);
int ext_punch(struct udx_tx *tx, struct udx_inode *ip, uint64_t lblk, uint64_t end,
	      uint64_t *done, unsigned budget);
int ext_count_blocks(struct udx_fs *fs, uint64_t ino, const struct udx_dinode *d,
		     void (*fn)(void *arg, uint64_t blk, uint64_t len), void *arg);

/* ---- dir.c ---- */
int dir_lookup(struct udx_inode *dir, const char *name, size_t len, uint64_t *ino,
	       unsigned *type);
/* Changes: @pre are ranges the caller will change next (its inodes), logged
 * with the tree's own first undo record so that one drain covers both. */
int dir_add(struct udx_tx *tx, struct udx_inode *dir, const char *name, size_t len,
	    uint64_t ino, unsigned type, const struct tx_range *pre, unsigned npre);
int dir_remove(struct udx_tx *tx, struct udx_inode *dir, const char *name, size_t len,
	       const struct tx_range *pre, unsigned npre);
int dir_set(struct udx_tx *tx, struct udx_inode *dir, const char *name, size_t len,
	    uint64_t ino, unsigned type, const struct tx_range *pre, unsigned npre);
int dir_is_empty(struct udx_inode *dir);
int dir_destroy(struct udx_tx *tx, struct udx_inode *dir);
int dir_iterate(struct udx_inode *dir, uint64_t cookie, udx_filldir_t fill, void *arg);
unsigned mode_to_dtype(mode_t mode);

/* ---- file.c ---- */
int file_truncate_locked(struct udx_inode *ip, uint64_t size, unsigned flags);
int file_finish_truncate(struct udx_inode *ip);

/* ---- super.c ---- */
int fs_block_alloc(void *ctx, uint64_t want, uint64_t min, uint64_t goal,
		   unsigned flags, uint64_t *blk, uint64_t *got);
void fs_block_free(void *ctx, uint64_t blk, uint64_t len);

/* The inode lock.  Debug builds remember the exclusive holder, so that
 * functions that need it held can say so with assert_ilocked(). */
static inline void ilock(struct udx_inode *ip)
{
	pthread_rwlock_wrlock(&ip->i_rwsem);
#ifdef UDX_DEBUG
	ip->i_wowner = pthread_self();
	ip->i_wheld = true;
#endif
}

static inline void ilock_shared(struct udx_inode *ip)
{
	pthread_rwlock_rdlock(&ip->i_rwsem);
}

static inline void iunlock(struct udx_inode *ip)
{
#ifdef UDX_DEBUG
	if (ip->i_wheld && pthread_equal(ip->i_wowner, pthread_self()))
		ip->i_wheld = false;
#endif
	pthread_rwlock_unlock(&ip->i_rwsem);
}

static inline void assert_ilocked(struct udx_inode *ip)
{
#ifdef UDX_DEBUG
	UDX_BUG_ON(!ip->i_wheld || !pthread_equal(ip->i_wowner, pthread_self()));
#else
	(void)ip;
#endif
}

#endif /* UDX_FS_FS_H */
