/* SPDX-License-Identifier: MIT */
/*
 * The block allocator: in-core free space of one file system, in 4 KiB
 * blocks.  Its policy is written down in docs/ALLOCATOR.md.
 *
 * The allocator lives in DRAM only.  On the device there is just a
 * checkpoint of its bitmap, written at clean unmount (alloc_save) and read at
 * the next mount (alloc_load); after a crash the file system rebuilds it from
 * the extents of every inode (alloc_mark_used).  So allocating and freeing
 * never write the device, and transactions never contend on it.
 *
 * Thread-safe: every function may be called from any thread.
 */
#ifndef UDX_FS_ALLOC_H
#define UDX_FS_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

struct udx_alloc;

/* alloc_blocks() flags */
#define UDX_ALLOC_META   (1u << 0)  /* a tree node: one block, kept apart
				       from data so that data runs stay long */
#define UDX_ALLOC_ALIGN  (1u << 1)  /* start aligned to the largest of 2 MiB or
				       1 GiB that the length allows, or fail */

/**
 * alloc_create() - an allocator for blocks [first, first + count), all free.
 * Returns 0 or -ENOMEM.
 */
int alloc_create(uint64_t first, uint64_t count, struct udx_alloc **out);
void alloc_destroy(struct udx_alloc *a);

/**
 * alloc_blocks() - allocate one contiguous run of at least @min and at most
 * @want blocks (1 <= @min <= @want), as close to @want as the policy allows,
 * preferring to continue at @goal (0: no preference).  Runs of 512 blocks
 * (2 MiB) or more start 2 MiB aligned when possible, and 1 GiB aligned when
 * 262144 blocks or more are asked for.
 * Returns 0 with *@blk, *@got set, or -ENOSPC when no run of @min blocks is
 * free (nothing is allocated then).
 */
int alloc_blocks(struct udx_alloc *a, uint64_t want, uint64_t min, uint64_t goal,
		 unsigned flags, uint64_t *blk, uint64_t *got);

/** alloc_free() - give blocks back.  Freeing a block that is free is a bug
 * (UDX_BUG_ON). */
void alloc_free(struct udx_alloc *a, uint64_t blk, uint64_t len);

/** alloc_mark_used() - while rebuilding: these blocks are in use.  Returns
 * -EEXIST (and changes nothing) if any of them already is: two owners. */
int alloc_mark_used(struct udx_alloc *a, uint64_t blk, uint64_t len);

/** alloc_exclude() - never hand these blocks out again (poisoned memory);
 * blocks in use now are excluded when they are freed. */
void alloc_exclude(struct udx_alloc *a, uint64_t blk, uint64_t len);

/** alloc_is_free() - true when every block of the range is free. */
bool alloc_is_free(struct udx_alloc *a, uint64_t blk, uint64_t len);
/** alloc_range_owned() - true when every block of the range is in use (so
 * that freeing it is legal). */
bool alloc_range_owned(struct udx_alloc *a, uint64_t blk, uint64_t len);

struct alloc_stats {
	uint64_t total;                 /* blocks managed */
	uint64_t free;
	uint64_t free_2m;               /* free, 2 MiB aligned 2 MiB extents */
	uint64_t free_1g;               /* free, 1 GiB aligned 1 GiB extents */
	uint64_t largest_free;          /* longest free run, blocks */
	uint64_t excluded;
};
void alloc_stats(struct udx_alloc *a, struct alloc_stats *st);

/*
 * The bitmap checkpoint: bit b of byte b/8 of @bitmap is block (first + b),
 * 1 = in use.  alloc_save writes ceil(count / 8) bytes; alloc_load replaces
 * the allocator's state with the bitmap's.
 */
void alloc_save(struct udx_alloc *a, uint8_t *bitmap);
/** alloc_save_unowned_free() - after alloc_save(): mark the excluded blocks
 * that nobody owns (poisoned memory) free in @bitmap, as the device sees
 * them: a new mount learns of the poison from the device again, and fsck
 * finds no block in use without an owner. */
void alloc_save_unowned_free(struct udx_alloc *a, uint8_t *bitmap);
void alloc_load(struct udx_alloc *a, const uint8_t *bitmap);

#endif /* UDX_FS_ALLOC_H */
