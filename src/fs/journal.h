/* SPDX-License-Identifier: MIT */
/*
 * The undo journal and transactions.  See journal.c for the numbered crash
 * invariants.
 *
 * A transaction changes metadata in place, in device memory.  Before the
 * first store to a range it calls tx_log(), which saves the range's old
 * bytes in the transaction's journal lane and makes them durable.  Commit
 * makes every changed range durable, then writes the lane's commit word.  A
 * crash before that rolls the ranges back at the next mount; tx_abort() does
 * the same at once, so an operation that fails half way changes nothing.
 *
 * Calling context: a transaction belongs to one thread.  Ranges that two
 * transactions change at the same time must not overlap: the callers' locks
 * (an inode's lock held until commit) guarantee it.
 *
 *   tx_begin()
 *     tx_log(range) ; store to range      any number of times
 *     tx_alloc() / tx_free()              blocks; frees happen after commit
 *   tx_commit()  or  tx_abort()
 */
#ifndef UDX_FS_JOURNAL_H
#define UDX_FS_JOURNAL_H

#include <pthread.h>
#include <udaxfs/dev.h>
#include <udaxfs/liveref.h>
#include <udaxfs/format.h>

/*
 * Blocks for a transaction come from an allocator behind this table: the
 * file system's (alloc.c), or a simple one in tests.
 *   alloc: contiguous blocks, at least @min and at most @want, near @goal;
 *          @flags are UDX_ALLOC_* (alloc.h).  Returns 0 or -ENOSPC.
 *   free:  give blocks back.
 */
struct udx_block_ops {
	int (*alloc)(void *ctx, uint64_t want, uint64_t min, uint64_t goal,
		     unsigned flags, uint64_t *blk, uint64_t *got);
	void (*free)(void *ctx, uint64_t blk, uint64_t len);
};

/* Commits in flight at once are at most the number of lanes (64). */
#define JN_RING 128
/* Commit numbers grow by one per transaction: one beyond this (centuries
 * of commits away) is a damaged lane header, not a count. */
#define JN_SEQ_LIMIT (1ull << 62)
/* Lane bytes kept for the commit record: its header and 32 new ranges. */
#define JN_COMMIT_ROOM (sizeof(struct udx_jcommit) + 32 * sizeof(struct udx_jrange))

struct jlane {
	struct udx_jlane *jl_hdr;       /* in device memory */
	char *jl_area;                  /* the lane, jl_size bytes */
	uint64_t jl_size;
	uint64_t jl_gen;                /* last committed transaction */
	unsigned jl_idx;
	bool jl_busy;                   /* jn_lock */
};

struct udx_journal {
	const struct udx_dev *jn_dev;
	char *jn_base;                  /* device memory */
	uint64_t jn_dev_size;
	struct jlane *jn_lanes;
	unsigned jn_nlanes;
	pthread_mutex_t jn_lock;
	pthread_cond_t jn_cv;           /* a lane became free */
	unsigned jn_hint;               /* jn_lock: where to look first */
	struct udx_liveref *jn_active;  /* a section per transaction, or NULL
					   (fs_enter: refused once the device
					   is being removed) */
	const struct udx_block_ops *jn_bops;
	void *jn_bctx;
	uint64_t jn_commits, jn_aborts; /* jn_lock */
	uint64_t jn_next_seq;           /* atomic: the next commit's number */
	uint64_t jn_wmark;              /* commits up to this one completed (J3);
					   written under jn_lock, read atomically */
	uint64_t jn_done[JN_RING];      /* jn_lock: completed numbers above it */
	uint64_t jn_maxdone;            /* the largest completed; jn_lock, read
					   atomically */
	pthread_cond_t jn_wcv;          /* the watermark reached jn_maxdone */
};

struct tx_range {
	char *tr_addr;
	size_t tr_len;
	bool tr_data;                   /* file data (tx_log_data) */
};

struct tx_extent {
	uint64_t te_blk, te_len;
};

struct udx_tx {
	struct udx_journal *tx_jn;
	struct jlane *tx_lane;
	uint64_t tx_gen;
	uint32_t tx_seq;
	uint64_t tx_pos;                /* next record offset in the lane */
	int tx_err;                     /* sticky: the first failure */
	bool tx_data;                   /* has file data ranges logged */
	bool tx_section;                /* holds a jn_active reference */
	struct tx_range *tx_logged;     /* old bytes saved: flush at commit */
	size_t tx_nlogged, tx_logged_cap;
	struct tx_range *tx_dirty;      /* new blocks written: flush at commit */
	size_t tx_ndirty, tx_dirty_cap;
	struct tx_extent *tx_allocs;    /* given back on abort */
	size_t tx_nallocs, tx_allocs_cap;
	struct tx_extent *tx_frees;     /* given back after commit */
	size_t tx_nfrees, tx_frees_cap;
	/* room for a small transaction without malloc; the arrays above point
	 * here until they grow past it */
	struct tx_range tx_logged_inl[16], tx_dirty_inl[8];
	struct tx_extent tx_allocs_inl[4], tx_frees_inl[4];
};

/* Layout helpers for mkfs. */
void journal_format(const struct udx_dev *dev, char *base, uint64_t jstart_blk,
		    unsigned nlanes, uint64_t lane_blocks);

int journal_init(struct udx_journal *jn, const struct udx_dev *dev,
		 uint64_t jstart_blk, unsigned nlanes, uint64_t lane_blocks,
		 const struct udx_block_ops *bops, void *bctx);
void journal_exit(struct udx_journal *jn);

/*
 * journal_recover() - roll back every lane's unfinished transaction.  Call
 * before anything reads metadata.  Returns the number of ranges rolled back,
 * or -EUCLEAN when a lane header is damaged.
 */
int journal_recover(struct udx_journal *jn);

/** journal_pending() - the records journal_recover() would roll back, without
 * touching anything (fsck's check mode). */
int journal_pending(struct udx_journal *jn);

/** journal_close() - at unmount: mark every lane finished. */
void journal_close(struct udx_journal *jn);

/** tx_begin() - take a free lane (waits for one) and start a transaction. */
void tx_begin(struct udx_journal *jn, struct udx_tx *tx);

/**
 * tx_log() - about to change [addr, addr + len) of device memory.
 * Saves exactly those old bytes durably (once per range per transaction;
 * neighbouring bytes may belong to other transactions).  Returns 0,
 * or -ENOSPC when the lane is full: then do not touch the range, and end the
 * transaction with tx_abort() (tx_commit() would too).
 */
int tx_log(struct udx_tx *tx, void *addr, size_t len);

/**
 * tx_log_data() - tx_log() of a range of file data: the bytes of a file's
 * last block past its end, which the transaction is about to overwrite.
 * Rollback restores them like any range; but file data changes later
 * without transactions, so commit makes these ranges durable before its
 * commit record and leaves them out of its content checksum (J3).
 */
int tx_log_data(struct udx_tx *tx, void *addr, size_t len);

/** tx_data_written() - file data was written and flushed outside the
 * journal: commit makes it durable before its commit record (F2). */
static inline void tx_data_written(struct udx_tx *tx)
{
	tx->tx_data = true;
}

/** tx_log_many() - tx_log() of several ranges with a single drain: log them
 * all before changing any. */
int tx_log_many(struct udx_tx *tx, const struct tx_range *r, unsigned n);

/** tx_dirty() - [addr, addr+len) was written in blocks this transaction
 * allocated (no old bytes to save); make it durable at commit. */
int tx_dirty(struct udx_tx *tx, void *addr, size_t len);

/** tx_alloc() - blocks from the allocator, given back if the transaction
 * aborts.  Returns 0 or -ENOSPC. */
int tx_alloc(struct udx_tx *tx, uint64_t want, uint64_t min, uint64_t goal,
	     unsigned flags, uint64_t *blk, uint64_t *got);
/** tx_trim() - give back the tail [blk, blk + len) of the run the last
 * tx_alloc() returned, unused (at once: nothing refers to it). */
void tx_trim(struct udx_tx *tx, uint64_t blk, uint64_t len);

/** tx_allocated() - did this transaction allocate @blk?  (Looks at its
 * latest allocations only; a miss is always safe: the caller logs.) */
bool tx_allocated(const struct udx_tx *tx, uint64_t blk);

/** tx_free() - blocks to give back once the transaction has committed (so
 * that nothing reuses them before the free is durable). */
int tx_free(struct udx_tx *tx, uint64_t blk, uint64_t len);

/** tx_commit() - make it durable.  Returns 0, or the sticky error after
 * rolling everything back. */
int tx_commit(struct udx_tx *tx);

/** tx_abort() - roll back in place, release allocations and the lane. */
void tx_abort(struct udx_tx *tx);

static inline void *jn_addr(struct udx_journal *jn, uint64_t blk)
{
	return jn->jn_base + (blk << UDX_BLOCK_SHIFT);
}

#endif /* UDX_FS_JOURNAL_H */
