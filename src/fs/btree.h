/* SPDX-License-Identifier: MIT */
/*
 * B+trees in device memory: the extent maps of large files and directories.
 *
 * Nodes are 4 KiB blocks (struct udx_bnode, format.h): slots sorted by a
 * 64-bit key, values of up to BT_VAL_MAX bytes.  Leaves (level 0) hold the
 * values; internal nodes hold 8-byte child block numbers, where child i
 * covers keys from slot i's key up to slot i+1's (child 0 also everything
 * below).  Nodes split when full; a node that becomes empty is freed; a
 * root with one child is replaced by the child; there is no other
 * rebalancing.
 *
 * Every change goes through a transaction: tx_log() before a store to an
 * existing node, tx_alloc()/tx_free() for nodes, tx_dirty() for bytes written
 * into new nodes or into free space.  Node checksums (format.h) are kept up
 * to date by every change.
 *
 * The caller owns the root pointer (it lives in the inode, under the inode's
 * checksum): it sets bt_root before a call and stores it back, logged, when
 * the call changed it.  bt_nodes counts nodes allocated minus freed by the
 * calls made with this struct, for the inode's block count.
 *
 * Locking: the caller's (the inode's lock): readers shared, writers
 * exclusive.
 */
#ifndef UDX_FS_BTREE_H
#define UDX_FS_BTREE_H

#include <stdbool.h>
#include <stdint.h>
#include <udaxfs/format.h>

#include "fs/journal.h"

#define BT_VAL_MAX   512
#define BT_MAX_LEVEL 16

struct btree {
	char *bt_base;                  /* device memory: block b is at b << 12 */
	uint64_t bt_nblocks;            /* device size in blocks (for checks) */
	uint64_t bt_root;               /* 0: empty tree */
	uint64_t bt_owner;              /* inode number, stored in each node */
	uint16_t bt_kind;               /* UDX_BT_EXTENTS or UDX_BT_DIRENTS */
	uint64_t bt_goal;               /* where to allocate nodes near */
	struct udx_tx *bt_tx;           /* NULL for read-only use */
	int64_t bt_nodes;               /* nodes allocated - freed by this ctx */
	/*
	 * Ranges the caller is about to change too (its inodes): the next
	 * operation logs them with its own first node log, saving a drain.
	 * Whatever is still pending afterwards (bt_nprelog > 0) the caller
	 * logs itself, before changing those ranges.
	 */
	const struct tx_range *bt_prelog;
	unsigned bt_nprelog;
};

#define BT_PRELOG_MAX 4

struct bt_cursor {
	const struct btree *c_bt;
	int c_height;                   /* levels in the path; 0: at the end */
	uint64_t c_blk[BT_MAX_LEVEL];   /* [0] leaf ... root */
	int c_idx[BT_MAX_LEVEL];
};

/**
 * bt_seek() - position @c at the first key >= @key.  Returns 0, or
 * -ENOENT when there is none (the cursor is at the end), or -EUCLEAN when a
 * node on the path is damaged.
 */
int bt_seek(const struct btree *bt, uint64_t key, struct bt_cursor *c);

/** bt_seek_le() - position at the last key <= @key; -ENOENT if none. */
int bt_seek_le(const struct btree *bt, uint64_t key, struct bt_cursor *c);

/** bt_next() - advance; -ENOENT at the end. */
int bt_next(struct bt_cursor *c);

/** The current entry: its key, and its value (in device memory, read-only,
 * valid until the tree changes). */
uint64_t bt_key(const struct bt_cursor *c);
const void *bt_val(const struct bt_cursor *c, uint16_t *vlen);

/** bt_val_copy() - the current value copied to @buf, which holds a
 * fixed-size record of @len bytes: -EUCLEAN when the value is another size.
 * Use it for values read as structures: a damaged node may place a value at
 * any byte, so only a copy is sure to be aligned. */
int bt_val_copy(const struct bt_cursor *c, void *buf, uint16_t len);

/** bt_lookup() - the value of @key copied to @val (at most *@vlen bytes;
 * *@vlen gets its length).  -ENOENT if absent. */
int bt_lookup(const struct btree *bt, uint64_t key, void *val, uint16_t *vlen);

/** bt_insert() - add @key; -EEXIST if present; -ENOSPC when no block is
 * left for a split; other errors from the transaction. */
int bt_insert(struct btree *bt, uint64_t key, const void *val, uint16_t vlen);

/** bt_update() - replace the value of @key (any length); -ENOENT if absent. */
int bt_update(struct btree *bt, uint64_t key, const void *val, uint16_t vlen);

/** bt_delete() - remove @key; -ENOENT if absent. */
int bt_delete(struct btree *bt, uint64_t key);

/** bt_destroy() - free every node; bt_root becomes 0. */
int bt_destroy(struct btree *bt);

/*
 * bt_check() - verify a tree for fsck: node magic, kind, owner, level,
 * checksum, slot bounds, key order and the key ranges given by the parents.
 * @block is called for every node (to account for its block); @problem for
 * every problem found, in words a user understands.  Returns the number of
 * problems; *@nkeys gets the number of leaf entries.
 */
uint64_t bt_check(const struct btree *bt,
		  void (*block)(void *arg, uint64_t blk),
		  void (*problem)(void *arg, const char *what),
		  void *arg, uint64_t *nkeys);

/* Node checksum helpers (also used by fsck). */
uint64_t bt_node_csum(const struct udx_bnode *n, uint64_t blk);

#endif /* UDX_FS_BTREE_H */
