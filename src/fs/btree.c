/* SPDX-License-Identifier: MIT */
/*
 * B+trees in device memory; btree.h gives the contract.
 *
 * Tree invariants (bt_check() verifies them; the code cites them):
 *
 *  B1. A node is one 4 KiB block: a struct udx_bnode header, then n_nkeys
 *      slots of strictly increasing keys growing up from byte 32, and values
 *      growing down from byte 4096, n_vstart being the lowest value byte:
 *      32 + 12 * n_nkeys <= n_vstart <= 4096.  Between the slots and
 *      n_vstart lies free space; a removed value leaves a hole above
 *      n_vstart until the node is compacted.  Free space and holes are not
 *      covered by the checksum and may hold anything.
 *  B2. Leaves are level 0.  A node at level L > 0 has 8-byte values, the
 *      block numbers of its children, all at level L - 1.  Child i holds
 *      keys in [key i, key i+1); child 0 also every key below key 1, so the
 *      key of slot 0 bounds nothing (a split below slot 0 lowers it when it
 *      must, to keep B1).  Every path has the root's level + 1 <=
 *      BT_MAX_LEVEL nodes, and levels strictly decrease along it: a damaged
 *      pointer cannot make a loop.
 *  B3. No node is empty and a root internal node has two children or more:
 *      an empty tree has no root at all (bt_root == 0), an emptied node is
 *      freed, and a root left with one child is replaced by it.  There is no
 *      other balancing: nodes split when full, by bytes about in half (or,
 *      for a key going past either end of the node, leaving the old entries
 *      together, so that keys added in order fill nodes).
 *  B4. n_checksum is always current (format.h).  Each change XORs in and out
 *      the hashes of the slots it adds or removes and of the old and new
 *      header, so damage already in a node stays visible to fsck rather than
 *      being sealed under a freshly computed checksum.
 *
 * Transaction rules (journal.c's J1..J6 make them crash safe):
 *
 *  T1. Before a store to bytes that were in use in a node when the
 *      transaction began (header, slots, values, holes), those bytes are
 *      logged with tx_log().  Bytes that were free space then (below
 *      n_vstart, past the slot table) are not: the rollback of the logged
 *      header makes them free again.  They go to tx_dirty() instead, so
 *      that the commit makes them durable.  Space freed during the
 *      transaction is not free in that sense, since a rollback brings its
 *      slot or value back: it is logged before it becomes free (the last
 *      slot when a slot is removed, the value n_vstart moves over), as a
 *      later change in the same transaction may write there.  Compactions
 *      and splits log the whole node.
 *  T2. A node this transaction allocated is neither logged nor marked again:
 *      it was marked dirty whole when allocated, and an abort frees it.
 *  T3. A tx_* failure stops the operation before its next store; the caller
 *      then aborts, which rolls back what was stored.  The blocks a split
 *      needs are allocated, and every node it rewrites is checked, before its
 *      first store, so -ENOSPC (and -EUCLEAN) leave the tree as it was; the
 *      blocks already obtained go back through tx_free(), so that even a
 *      caller that commits after -ENOSPC leaks nothing.
 *  T4. bt_root changes in the struct only in the last step of a call that
 *      succeeds.
 *
 * Readers trust nothing on the device: each node on a path is checked
 * (magic, kind, owner, level, slot table bounds), each slot before it is
 * used, and cursors check that keys increase, so a damaged tree gives
 * -EUCLEAN, never an access outside a node nor an endless walk.  They do not
 * verify checksums (a hash of every node on every path); bt_check() does.
 *
 * Locking: none here.  The caller holds the lock of the inode that owns the
 * tree, shared for the readers and bt_check(), exclusive for the changes,
 * and until its transaction has ended.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/compiler.h"
#include "base/err.h"
#include "fs/alloc.h"
#include "fs/btree.h"
#include "fs/csum.h"
#include "fs/journal.h"

#define NODE_HDR      ((unsigned)sizeof(struct udx_bnode))
#define SLOT_SIZE     ((unsigned)sizeof(struct udx_bslot))
#define NODE_SPACE    (UDX_BLOCK_SIZE - NODE_HDR)       /* slots + values */
#define NODE_MAX_KEYS (NODE_SPACE / SLOT_SIZE)
#define CHILD_SIZE    8u
/* A journal record costs a 32-byte header and padding to 64 bytes: logging
 * a gap this short costs less than starting a second record. */
#define LOG_GAP       64u

/* An entry being placed: a key and its value (anywhere in memory). */
struct bt_ent {
	uint64_t e_key;
	const void *e_val;
	uint16_t e_vlen;
};

/* ---- node access --------------------------------------------------------- */

static inline struct udx_bnode *bt_node(const struct btree *bt, uint64_t blk)
{
	return (struct udx_bnode *)(bt->bt_base + (blk << UDX_BLOCK_SHIFT));
}

static inline struct udx_bslot *node_slot(const struct udx_bnode *n, unsigned i)
{
	return (struct udx_bslot *)((char *)n + NODE_HDR + i * SLOT_SIZE);
}

static inline uint64_t slot_key(const struct udx_bnode *n, unsigned i)
{
	return node_slot(n, i)->s_key;
}

static inline char *slot_val(const struct udx_bnode *n, unsigned i)
{
	return (char *)n + node_slot(n, i)->s_voff;
}

/* The byte after the slot table. */
static inline unsigned slots_end(const struct udx_bnode *n)
{
	return NODE_HDR + n->n_nkeys * SLOT_SIZE;
}

static inline struct udx_bnode *cur_node(const struct bt_cursor *c, int lvl)
{
	return bt_node(c->c_bt, c->c_blk[lvl]);
}

/* ---- checksums (B4) ------------------------------------------------------- */

static uint64_t hdr_csum(const struct udx_bnode *n, uint64_t blk)
{
	struct udx_bnode h = *n;

	h.n_checksum = 0;
	return udx_csum64(&h, sizeof(h), blk);
}

/* xxh64(key || value, seed 0) of a slot; @vlen <= BT_VAL_MAX. */
static uint64_t ent_csum(uint64_t key, const void *val, uint16_t vlen)
{
	unsigned char buf[sizeof(key) + BT_VAL_MAX];

	memcpy(buf, &key, sizeof(key));
	if (vlen)
		memcpy(buf + sizeof(key), val, vlen);
	return udx_csum64(buf, sizeof(key) + vlen, 0);
}

static uint64_t slot_csum(const struct udx_bnode *n, unsigned i)
{
	const struct udx_bslot *s = node_slot(n, i);

	return ent_csum(s->s_key, slot_val(n, i), s->s_vlen);
}

/*
 * From scratch, for fsck and the tests.  Safe on a damaged node: slots and
 * values are clamped to the block (such a node cannot match anyway).
 */
uint64_t bt_node_csum(const struct udx_bnode *n, uint64_t blk)
{
	unsigned nk = MIN((unsigned)n->n_nkeys, NODE_MAX_KEYS), i;
	uint64_t sum = hdr_csum(n, blk);

	for (i = 0; i < nk; i++) {
		const struct udx_bslot *s = node_slot(n, i);
		unsigned lo = MIN((unsigned)s->s_voff, UDX_BLOCK_SIZE);
		unsigned hi = MIN(lo + s->s_vlen, UDX_BLOCK_SIZE);
		uint64_t key = s->s_key;
		XXH64_state_t st;

		XXH64_reset(&st, 0);
		XXH64_update(&st, &key, sizeof(key));
		XXH64_update(&st, (const char *)n + lo, hi - lo);
		sum ^= XXH64_digest(&st);
	}
	return sum;
}

/* ---- checks for readers and writers ---------------------------------------- */

static const char *tree_name(const struct btree *bt)
{
	switch (bt->bt_kind) {
	case UDX_BT_EXTENTS:
		return "extent tree";
	case UDX_BT_DIRENTS:
		return "directory tree";
	default:
		return "tree";
	}
}

static int bt_damaged(const struct btree *bt, uint64_t blk, const char *what)
{
	return udx_err(-EUCLEAN, "%s of inode %llu: node %llu %s; run fsck",
		       tree_name(bt), (unsigned long long)bt->bt_owner,
		       (unsigned long long)blk, what);
}

/*
 * node_get() - the node at @blk, checked as far as walking it needs (B1, B2,
 * B3): @level is the level it must have, or -1 for the root.
 */
static int node_get(const struct btree *bt, uint64_t blk, int level,
		    struct udx_bnode **out)
{
	struct udx_bnode *n;

	if (unlikely(blk == 0 || blk >= bt->bt_nblocks))
		return udx_err(-EUCLEAN, "%s of inode %llu: a pointer to block %llu, outside the device; run fsck",
			       tree_name(bt), (unsigned long long)bt->bt_owner,
			       (unsigned long long)blk);
	n = bt_node(bt, blk);
	if (unlikely(n->n_magic != UDX_BNODE_MAGIC))
		return bt_damaged(bt, blk, "is not a tree node (bad magic)");
	if (unlikely(n->n_kind != bt->bt_kind || n->n_owner != bt->bt_owner))
		return bt_damaged(bt, blk, "belongs to another tree");
	if (unlikely(level < 0 ? n->n_level >= BT_MAX_LEVEL : n->n_level != level))
		return bt_damaged(bt, blk, "is at the wrong level");
	if (unlikely(n->n_vstart > UDX_BLOCK_SIZE || slots_end(n) > n->n_vstart))
		return bt_damaged(bt, blk, "has more slots than room");
	if (unlikely(n->n_nkeys == 0 && (level >= 0 || n->n_level > 0)))
		return bt_damaged(bt, blk, "is empty");
	*out = n;
	return 0;
}

/* Slot @i of a node whose header node_get() accepted: is its value inside
 * the value area, and of a length its level allows? */
static bool slot_ok(const struct udx_bnode *n, unsigned i)
{
	const struct udx_bslot *s = node_slot(n, i);

	if (n->n_level ? s->s_vlen != CHILD_SIZE : s->s_vlen > BT_VAL_MAX)
		return false;
	return s->s_voff >= n->n_vstart && s->s_voff + s->s_vlen <= UDX_BLOCK_SIZE;
}

static int node_child(const struct btree *bt, const struct udx_bnode *n,
		      uint64_t blk, unsigned i, uint64_t *child)
{
	if (unlikely(!slot_ok(n, i)))
		return bt_damaged(bt, blk, "has a child pointer outside its value area");
	memcpy(child, slot_val(n, i), sizeof(*child));
	return 0;
}

/* Every slot, before a compaction or a split reads them all. */
static int node_check_slots(const struct btree *bt, const struct udx_bnode *n,
			    uint64_t blk)
{
	unsigned i, sum = 0;

	for (i = 0; i < n->n_nkeys; i++) {
		if (!slot_ok(n, i))
			return bt_damaged(bt, blk, "has a value outside its value area");
		sum += node_slot(n, i)->s_vlen;
	}
	if (sum > UDX_BLOCK_SIZE - n->n_vstart)
		return bt_damaged(bt, blk, "has overlapping values");
	return 0;
}

/* Free bytes once compacted; the slots must have been checked. */
static int node_room(const struct udx_bnode *n)
{
	int room = (int)NODE_SPACE - (int)(n->n_nkeys * SLOT_SIZE);
	unsigned i;

	for (i = 0; i < n->n_nkeys; i++)
		room -= node_slot(n, i)->s_vlen;
	return room;
}

/* ---- search ---------------------------------------------------------------- */

/* The number of slots with a key <= @key. */
static unsigned node_upper(const struct udx_bnode *n, uint64_t key)
{
	unsigned lo = 0, hi = n->n_nkeys;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (slot_key(n, mid) <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first slot with a key >= @key (n_nkeys if none). */
static unsigned node_lower(const struct udx_bnode *n, uint64_t key)
{
	unsigned lo = 0, hi = n->n_nkeys;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (slot_key(n, mid) < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * bt_descend() - the path to @key in @c: at each internal level the child
 * that covers it (B2), at the leaf the first slot with a key >= @key.  The
 * tree must not be empty.  On failure c_height stays 0.
 */
static int bt_descend(const struct btree *bt, uint64_t key, struct bt_cursor *c)
{
	struct udx_bnode *n;
	uint64_t blk = bt->bt_root;
	int lvl, height, ret;

	c->c_bt = bt;
	c->c_height = 0;
	ret = node_get(bt, blk, -1, &n);
	if (ret)
		return ret;
	height = n->n_level + 1;
	for (lvl = n->n_level; lvl > 0; lvl--) {
		unsigned i = node_upper(n, key);

		i = i ? i - 1 : 0;
		c->c_blk[lvl] = blk;
		c->c_idx[lvl] = (int)i;
		ret = node_child(bt, n, blk, i, &blk);
		if (ret)
			return ret;
		ret = node_get(bt, blk, lvl - 1, &n);
		if (ret)
			return ret;
	}
	c->c_blk[0] = blk;
	c->c_idx[0] = (int)node_lower(n, key);
	c->c_height = height;
	return 0;
}

/* ---- cursors ------------------------------------------------------------- */

static int cur_fail(struct bt_cursor *c, int ret)
{
	c->c_height = 0;
	return ret;
}

/* The cursor is on a leaf slot: may bt_val() hand out its value? */
static int cur_check(struct bt_cursor *c)
{
	if (unlikely(!slot_ok(cur_node(c, 0), (unsigned)c->c_idx[0])))
		return cur_fail(c, bt_damaged(c->c_bt, c->c_blk[0],
					      "has a value outside its value area"));
	return 0;
}

/* c_idx[0] may be one past the leaf's last slot: move to the next slot that
 * exists, through the parents. */
static int cur_forward(struct bt_cursor *c)
{
	const struct btree *bt = c->c_bt;
	struct udx_bnode *n;
	uint64_t blk = 0;
	int lvl = 0, ret;

	while (c->c_idx[lvl] >= cur_node(c, lvl)->n_nkeys) {
		if (++lvl == c->c_height)
			return cur_fail(c, -ENOENT);
		c->c_idx[lvl]++;
	}
	for (; lvl > 0; lvl--) {
		ret = node_child(bt, cur_node(c, lvl), c->c_blk[lvl],
				 (unsigned)c->c_idx[lvl], &blk);
		if (!ret)
			ret = node_get(bt, blk, lvl - 1, &n);
		if (ret)
			return cur_fail(c, ret);
		c->c_blk[lvl - 1] = blk;
		c->c_idx[lvl - 1] = 0;
	}
	return cur_check(c);
}

/* c_idx[0] may be -1: move to the previous slot that exists. */
static int cur_backward(struct bt_cursor *c)
{
	const struct btree *bt = c->c_bt;
	struct udx_bnode *n;
	uint64_t blk = 0;
	int lvl = 0, ret;

	while (c->c_idx[lvl] < 0) {
		if (++lvl == c->c_height)
			return cur_fail(c, -ENOENT);
		c->c_idx[lvl]--;
	}
	for (; lvl > 0; lvl--) {
		ret = node_child(bt, cur_node(c, lvl), c->c_blk[lvl],
				 (unsigned)c->c_idx[lvl], &blk);
		if (!ret)
			ret = node_get(bt, blk, lvl - 1, &n);
		if (ret)
			return cur_fail(c, ret);
		c->c_blk[lvl - 1] = blk;
		c->c_idx[lvl - 1] = n->n_nkeys - 1;
	}
	return cur_check(c);
}

int bt_seek(const struct btree *bt, uint64_t key, struct bt_cursor *c)
{
	int ret;

	c->c_bt = bt;
	c->c_height = 0;
	if (bt->bt_root == 0)
		return -ENOENT;
	ret = bt_descend(bt, key, c);
	if (!ret)
		ret = cur_forward(c);
	/* keys out of order could have led the search astray */
	if (!ret && unlikely(bt_key(c) < key))
		ret = cur_fail(c, bt_damaged(bt, c->c_blk[0], "has keys out of order"));
	return ret;
}

int bt_seek_le(const struct btree *bt, uint64_t key, struct bt_cursor *c)
{
	int ret;

	c->c_bt = bt;
	c->c_height = 0;
	if (bt->bt_root == 0)
		return -ENOENT;
	ret = bt_descend(bt, key, c);
	if (ret)
		return ret;
	c->c_idx[0] = (int)node_upper(cur_node(c, 0), key) - 1;
	ret = cur_backward(c);
	if (!ret && unlikely(bt_key(c) > key))
		ret = cur_fail(c, bt_damaged(bt, c->c_blk[0], "has keys out of order"));
	return ret;
}

int bt_next(struct bt_cursor *c)
{
	uint64_t prev;
	int ret;

	if (c->c_height == 0)
		return -ENOENT;
	prev = bt_key(c);
	c->c_idx[0]++;
	ret = cur_forward(c);
	/* keys strictly increase (B1, B2): even a tree whose nodes are shared
	 * by two parents cannot make an iteration repeat itself */
	if (!ret && unlikely(bt_key(c) <= prev))
		ret = cur_fail(c, bt_damaged(c->c_bt, c->c_blk[0], "has keys out of order"));
	return ret;
}

uint64_t bt_key(const struct bt_cursor *c)
{
	UDX_DEBUG_ON(c->c_height == 0);
	return slot_key(cur_node(c, 0), (unsigned)c->c_idx[0]);
}

const void *bt_val(const struct bt_cursor *c, uint16_t *vlen)
{
	const struct udx_bnode *n = cur_node(c, 0);

	UDX_DEBUG_ON(c->c_height == 0);
	*vlen = node_slot(n, (unsigned)c->c_idx[0])->s_vlen;
	return slot_val(n, (unsigned)c->c_idx[0]);
}

int bt_val_copy(const struct bt_cursor *c, void *buf, uint16_t len)
{
	uint16_t vlen;
	const void *v = bt_val(c, &vlen);

	if (unlikely(vlen != len))
		return -EUCLEAN;
	memcpy(buf, v, len);
	return 0;
}

int bt_lookup(const struct btree *bt, uint64_t key, void *val, uint16_t *vlen)
{
	struct bt_cursor c;
	struct udx_bnode *n;
	unsigned i;
	uint16_t len;
	int ret;

	if (bt->bt_root == 0)
		return -ENOENT;
	ret = bt_descend(bt, key, &c);
	if (ret)
		return ret;
	n = cur_node(&c, 0);
	i = (unsigned)c.c_idx[0];
	if (i >= n->n_nkeys || slot_key(n, i) != key)
		return -ENOENT;
	if (unlikely(!slot_ok(n, i)))
		return bt_damaged(bt, c.c_blk[0], "has a value outside its value area");
	len = node_slot(n, i)->s_vlen;
	if (val && *vlen)
		memcpy(val, slot_val(n, i), MIN(len, *vlen));
	*vlen = len;
	return 0;
}

/* ---- changing nodes under the transaction ---------------------------------- */

/*
 * T2: did this transaction allocate @blk?  Blocks it allocated go back to the
 * allocator if it aborts, so their old bytes never matter.
 */
static bool node_fresh(const struct btree *bt, uint64_t blk)
{
	return tx_allocated(bt->bt_tx, blk);
}

/*
 * Log @n ranges together with the caller's pending ranges (bt_prelog), all
 * with one drain.  The prelog is consumed by the first log of an operation.
 */
static int bt_log(const struct btree *bt, const struct tx_range *r, unsigned n)
{
	struct btree *w = (struct btree *)bt;   /* only the prelog changes */
	struct tx_range all[2 + BT_PRELOG_MAX];
	unsigned i, k = 0;

	if (bt->bt_nprelog == 0)
		return tx_log_many(bt->bt_tx, r, n);
	for (i = 0; i < bt->bt_nprelog; i++)
		all[k++] = bt->bt_prelog[i];
	for (i = 0; i < n; i++)
		all[k++] = r[i];
	w->bt_nprelog = 0;
	return tx_log_many(bt->bt_tx, all, k);
}

/* T1: [off, off + len) of @n is about to change. */
static int node_log(const struct btree *bt, struct udx_bnode *n,
		    unsigned off, unsigned len)
{
	struct tx_range r = { (char *)n + off, len, false };

	if (len == 0)
		return 0;
	return bt_log(bt, &r, 1);
}

/* T1: the header and [off, off + len) are about to change; one record when
 * the range starts close to the header. */
static int node_log_hdr(const struct btree *bt, struct udx_bnode *n,
			unsigned off, unsigned len)
{
	struct tx_range r[2] = {
		{ (char *)n, NODE_HDR, false },
		{ (char *)n + off, len, false },
	};

	if (len == 0)
		return node_log(bt, n, 0, NODE_HDR);
	if (off < NODE_HDR + LOG_GAP)
		return node_log(bt, n, 0, off + len);
	return bt_log(bt, r, 2);                /* both, one drain */
}

/* T1: [off, off + len) of @n's free space is about to be written. */
static int node_dirty(const struct btree *bt, struct udx_bnode *n,
		      unsigned off, unsigned len)
{
	if (len == 0)
		return 0;
	return tx_dirty(bt->bt_tx, (char *)n + off, len);
}

/*
 * bt_node_alloc() - a block for a new node, marked dirty whole (T2) and
 * counted in bt_nodes.  Stores nothing.
 */
static int bt_node_alloc(struct btree *bt, uint64_t *blk)
{
	uint64_t got;
	int ret;

	ret = tx_alloc(bt->bt_tx, 1, 1, bt->bt_goal, UDX_ALLOC_META, blk, &got);
	if (ret)
		return ret;
	UDX_BUG_ON(got != 1 || *blk == 0 || *blk >= bt->bt_nblocks);
	bt->bt_nodes++;
	return tx_dirty(bt->bt_tx, bt_node(bt, *blk), UDX_BLOCK_SIZE);
}

/* A new node's header; the caller appends and then sets the checksum. */
static void node_init(const struct btree *bt, struct udx_bnode *n, unsigned level)
{
	memset(n, 0, UDX_BLOCK_SIZE);
	n->n_magic = UDX_BNODE_MAGIC;
	n->n_level = (uint16_t)level;
	n->n_nkeys = 0;
	n->n_vstart = UDX_BLOCK_SIZE;
	n->n_kind = bt->bt_kind;
	n->n_owner = bt->bt_owner;
}

/* Add @e after the last slot of a node being built (no checksum, no log). */
static void node_append(struct udx_bnode *n, const struct bt_ent *e)
{
	struct udx_bslot *s = node_slot(n, n->n_nkeys);

	n->n_vstart -= e->e_vlen;
	if (e->e_vlen)
		memcpy((char *)n + n->n_vstart, e->e_val, e->e_vlen);
	s->s_key = e->e_key;
	s->s_voff = n->n_vstart;
	s->s_vlen = e->e_vlen;
	n->n_nkeys++;
}

/*
 * node_compact() - move the values together at the end of the block, so
 * that all free space lies between the slots and n_vstart.  The whole node
 * is logged once (T1); only the header part of the checksum changes, as
 * value offsets are not covered.
 */
static int node_compact(struct btree *bt, uint64_t blk, bool fresh)
{
	struct udx_bnode *n = bt_node(bt, blk);
	uint64_t buf[UDX_BLOCK_SIZE / sizeof(uint64_t)], h0;
	const char *old = (const char *)buf;
	unsigned i, top = UDX_BLOCK_SIZE;
	int ret;

	ret = node_check_slots(bt, n, blk);
	if (ret)
		return ret;
	if (!fresh) {
		ret = node_log(bt, n, 0, UDX_BLOCK_SIZE);
		if (ret)
			return ret;
	}
	memcpy(buf, n, UDX_BLOCK_SIZE);
	for (i = 0; i < n->n_nkeys; i++) {
		struct udx_bslot *s = node_slot(n, i);

		top -= s->s_vlen;
		memcpy((char *)n + top, old + s->s_voff, s->s_vlen);
		s->s_voff = (uint16_t)top;
	}
	h0 = hdr_csum(n, blk);
	n->n_vstart = (uint16_t)top;
	n->n_checksum ^= h0 ^ hdr_csum(n, blk);
	return 0;
}

/*
 * node_insert() - put @e at slot @p of the node at @blk, which has room for
 * it, compacted if need be.  The common case logs the header's line and the
 * slots that shift, and writes the value and the slot past the old end
 * into free space (T1).
 */
static int node_insert(struct btree *bt, uint64_t blk, unsigned p,
		       const struct bt_ent *e)
{
	struct udx_bnode *n = bt_node(bt, blk);
	bool fresh = node_fresh(bt, blk);
	unsigned nk = n->n_nkeys, send = slots_end(n), voff;
	struct udx_bslot *s;
	uint64_t h0;
	int ret;

	UDX_DEBUG_ON(p > nk || send + SLOT_SIZE + e->e_vlen > UDX_BLOCK_SIZE);
	if (send + SLOT_SIZE + e->e_vlen > n->n_vstart) {
		ret = node_compact(bt, blk, fresh);
		if (ret)
			return ret;
	}
	voff = n->n_vstart - e->e_vlen;
	if (!fresh) {
		ret = node_log_hdr(bt, n, NODE_HDR + p * SLOT_SIZE, (nk - p) * SLOT_SIZE);
		if (!ret)
			ret = node_dirty(bt, n, voff, e->e_vlen);
		if (!ret)
			ret = node_dirty(bt, n, send, SLOT_SIZE);
		if (ret)
			return ret;
	}
	if (e->e_vlen)
		memcpy((char *)n + voff, e->e_val, e->e_vlen);
	memmove(node_slot(n, p + 1), node_slot(n, p), (nk - p) * SLOT_SIZE);
	s = node_slot(n, p);
	s->s_key = e->e_key;
	s->s_voff = (uint16_t)voff;
	s->s_vlen = e->e_vlen;
	h0 = hdr_csum(n, blk);
	n->n_nkeys = (uint16_t)(nk + 1);
	n->n_vstart = (uint16_t)voff;
	n->n_checksum ^= h0 ^ hdr_csum(n, blk) ^ ent_csum(e->e_key, e->e_val, e->e_vlen);
	return 0;
}

/*
 * node_remove() - take slot @p out of the node at @blk.  Its value becomes a
 * hole, unless it is the lowest value: then n_vstart moves up over it.
 */
static int node_remove(struct btree *bt, uint64_t blk, unsigned p)
{
	struct udx_bnode *n = bt_node(bt, blk);
	unsigned nk = n->n_nkeys;
	struct udx_bslot *s = node_slot(n, p);
	uint64_t h0, hs;
	int ret;

	UDX_DEBUG_ON(p >= nk);
	if (!node_fresh(bt, blk)) {
		/* the slots after p move down; the last one becomes free space
		 * and is logged all the same (T1), as is the value n_vstart
		 * moves over */
		ret = node_log_hdr(bt, n, NODE_HDR + p * SLOT_SIZE, (nk - p) * SLOT_SIZE);
		if (!ret && s->s_voff == n->n_vstart)
			ret = node_log(bt, n, s->s_voff, s->s_vlen);
		if (ret)
			return ret;
	}
	hs = slot_csum(n, p);
	h0 = hdr_csum(n, blk);
	if (s->s_voff == n->n_vstart)
		n->n_vstart += s->s_vlen;
	memmove(s, node_slot(n, p + 1), (nk - 1 - p) * SLOT_SIZE);
	n->n_nkeys = (uint16_t)(nk - 1);
	n->n_checksum ^= h0 ^ hdr_csum(n, blk) ^ hs;
	return 0;
}

/* node_overwrite() - a new value for slot @p, no longer than its old one:
 * written over the old one, whose tail becomes a hole. */
static int node_overwrite(struct btree *bt, uint64_t blk, unsigned p,
			  const void *val, uint16_t vlen)
{
	struct udx_bnode *n = bt_node(bt, blk);
	struct udx_bslot *s = node_slot(n, p);
	uint64_t h;
	int ret;

	UDX_DEBUG_ON(vlen > s->s_vlen);
	if (!node_fresh(bt, blk)) {
		ret = node_log_hdr(bt, n, NODE_HDR + p * SLOT_SIZE, SLOT_SIZE);
		if (!ret)
			ret = node_log(bt, n, s->s_voff, vlen);
		if (ret)
			return ret;
	}
	h = slot_csum(n, p);
	if (vlen)
		memmove(slot_val(n, p), val, vlen);
	s->s_vlen = vlen;
	n->n_checksum ^= h ^ slot_csum(n, p);
	return 0;
}

/* node_set_key() - slot @i of the node at @blk gets key @key. */
static int node_set_key(struct btree *bt, uint64_t blk, unsigned i, uint64_t key)
{
	struct udx_bnode *n = bt_node(bt, blk);
	uint64_t h;
	int ret;

	if (!node_fresh(bt, blk)) {
		ret = node_log_hdr(bt, n, NODE_HDR + i * SLOT_SIZE, SLOT_SIZE);
		if (ret)
			return ret;
	}
	h = slot_csum(n, i);
	node_slot(n, i)->s_key = key;
	n->n_checksum ^= h ^ slot_csum(n, i);
	return 0;
}

/* ---- splits ----------------------------------------------------------------- */

/*
 * Entry @j of the sequence a split distributes: the slots of @old with @x
 * put at @p, in place of slot @p if @replace.
 */
static void seq_get(const struct udx_bnode *old, unsigned p, bool replace,
		    const struct bt_ent *x, unsigned j, struct bt_ent *e)
{
	unsigned i;

	if (j == p) {
		*e = *x;
		return;
	}
	i = j < p ? j : j - 1 + replace;
	e->e_key = slot_key(old, i);
	e->e_val = slot_val(old, i);
	e->e_vlen = node_slot(old, i)->s_vlen;
}

static unsigned seq_size(const struct udx_bnode *old, unsigned p, bool replace,
			 const struct bt_ent *x, unsigned j)
{
	struct bt_ent e;

	seq_get(old, p, replace, x, j, &e);
	return SLOT_SIZE + e.e_vlen;
}

/*
 * The number of entries, out of @cnt, that stay on the left: half of the
 * bytes, or all the old entries when @x goes after them (appending keys in
 * order then fills nodes instead of leaving them half full), or none but @x
 * when it goes before them.
 */
static unsigned split_point(const struct udx_bnode *old, unsigned p, bool replace,
			    const struct bt_ent *x, unsigned cnt)
{
	unsigned total = 0, acc = 0, m = 0, j, last;

	if (!replace && p == cnt - 1)
		return cnt - 1;
	if (!replace && p == 0)
		return 1;
	for (j = 0; j < cnt; j++)
		total += seq_size(old, p, replace, x, j);
	while (m < cnt && 2 * acc < total)
		acc += seq_size(old, p, replace, x, m++);
	/* acc is the left side with m entries, the first at least half:
	 * one fewer may be closer to even */
	last = seq_size(old, p, replace, x, m - 1);
	if (m > 1 && total - (acc - last) < acc)
		m--;
	return MAX(1u, MIN(m, cnt - 1));
}

/*
 * node_split() - spread the node at @blk, with @x put at @p (in place of
 * slot @p if @replace), over itself and the new node @rblk.  *@sep gets the
 * new node's first key, the key for it in the parent.  The whole node is
 * logged (T1); @rblk is fresh (T2).
 */
static int node_split(struct btree *bt, uint64_t blk, unsigned p, bool replace,
		      const struct bt_ent *x, uint64_t rblk, uint64_t *sep)
{
	struct udx_bnode *n = bt_node(bt, blk), *r = bt_node(bt, rblk);
	uint64_t buf[UDX_BLOCK_SIZE / sizeof(uint64_t)];
	const struct udx_bnode *old = (const struct udx_bnode *)buf;
	uint64_t hx, h, h0, rsum = 0, gone = 0;
	unsigned cnt, m, j, lbytes = 0, rbytes = 0;
	struct bt_ent e;
	int ret;

	if (!node_fresh(bt, blk)) {
		ret = node_log(bt, n, 0, UDX_BLOCK_SIZE);
		if (ret)
			return ret;
	}
	memcpy(buf, n, UDX_BLOCK_SIZE);
	cnt = old->n_nkeys + !replace;
	UDX_BUG_ON(cnt < 2);
	m = split_point(old, p, replace, x, cnt);
	for (j = 0; j < cnt; j++)
		*(j < m ? &lbytes : &rbytes) += seq_size(old, p, replace, x, j);
	UDX_BUG_ON(lbytes > NODE_SPACE || rbytes > NODE_SPACE);

	hx = ent_csum(x->e_key, x->e_val, x->e_vlen);
	node_init(bt, r, old->n_level);
	for (j = m; j < cnt; j++) {
		seq_get(old, p, replace, x, j, &e);
		node_append(r, &e);
		h = j == p ? hx : ent_csum(e.e_key, e.e_val, e.e_vlen);
		rsum ^= h;
		if (j != p)
			gone ^= h;
	}
	r->n_checksum = hdr_csum(r, rblk) ^ rsum;

	/* B4: the left node loses what moved right (and the replaced slot),
	 * and gains @x if it stays */
	if (replace)
		gone ^= slot_csum(old, p);
	h0 = hdr_csum(old, blk);
	n->n_nkeys = 0;
	n->n_vstart = UDX_BLOCK_SIZE;
	for (j = 0; j < m; j++) {
		seq_get(old, p, replace, x, j, &e);
		node_append(n, &e);
	}
	n->n_checksum = old->n_checksum ^ h0 ^ hdr_csum(n, blk) ^ gone ^ (p < m ? hx : 0);
	*sep = slot_key(r, 0);
	return 0;
}

/* bt_new_root() - the root split into @left and @right: a new root @blk
 * above them (B2: its first key is the left node's, below @sep). */
static void bt_new_root(struct btree *bt, uint64_t blk, uint64_t left,
			uint64_t right, uint64_t sep)
{
	struct udx_bnode *n = bt_node(bt, blk), *l = bt_node(bt, left);
	struct bt_ent e;

	node_init(bt, n, l->n_level + 1u);
	e = (struct bt_ent){ slot_key(l, 0), &left, CHILD_SIZE };
	node_append(n, &e);
	e = (struct bt_ent){ sep, &right, CHILD_SIZE };
	node_append(n, &e);
	n->n_checksum = hdr_csum(n, blk) ^ slot_csum(n, 0) ^ slot_csum(n, 1);
	bt->bt_root = blk;              /* T4 */
}

/*
 * bt_split_put() - put @x at the leaf position in @c when the leaf cannot
 * hold it: split the leaf, and each parent that has no room for one more
 * child, and the root if it comes to that.  T3: first check every node
 * that will be rewritten and allocate every new node.
 */
static int bt_split_put(struct btree *bt, const struct bt_cursor *c,
			struct bt_ent x, bool replace)
{
	uint64_t blks[BT_MAX_LEVEL + 1], sep, child = 0, blk;
	int h = c->c_height, lvl, need, got, k = 0, ret;
	unsigned p = (unsigned)c->c_idx[0];

	for (lvl = 1; lvl < h; lvl++) {
		struct udx_bnode *n = cur_node(c, lvl);

		ret = node_check_slots(bt, n, c->c_blk[lvl]);
		if (ret)
			return ret;
		if (node_room(n) >= (int)(SLOT_SIZE + CHILD_SIZE))
			break;
	}
	/* levels 0 .. lvl - 1 split; so does the root when lvl == h */
	need = lvl + (lvl == h);
	if (lvl == h && h == BT_MAX_LEVEL)
		return udx_err(-EFBIG, "%s of inode %llu: the tree is %d levels deep already",
			       tree_name(bt), (unsigned long long)bt->bt_owner, h);
	for (got = 0; got < need; got++) {
		ret = bt_node_alloc(bt, &blks[got]);
		if (ret)
			goto free_new;
	}

	for (lvl = 0;; lvl++) {
		uint64_t pblk;
		unsigned ci;

		blk = c->c_blk[lvl];
		if (lvl > 0 && node_room(bt_node(bt, blk)) >= (int)(SLOT_SIZE + CHILD_SIZE))
			return node_insert(bt, blk, p, &x);
		ret = node_split(bt, blk, p, replace, &x, blks[k], &sep);
		if (ret)
			return ret;
		child = blks[k++];
		x = (struct bt_ent){ sep, &child, CHILD_SIZE };
		replace = false;
		if (lvl + 1 == h) {
			UDX_BUG_ON(k + 1 != need);
			bt_new_root(bt, blks[k], blk, child, sep);
			return 0;
		}
		/*
		 * B1 in the parent: the new key goes right after the split
		 * node's.  When that is slot 0, whose key need not be a lower
		 * bound of its child (B2), it could be >= the new key: the
		 * left node's first key, below @sep, takes its place.
		 */
		pblk = c->c_blk[lvl + 1];
		ci = (unsigned)c->c_idx[lvl + 1];
		if (ci == 0 && sep <= slot_key(bt_node(bt, pblk), 0)) {
			ret = node_set_key(bt, pblk, 0, slot_key(bt_node(bt, blk), 0));
			if (ret)
				return ret;
		}
		p = ci + 1;
	}

free_new:
	/* T3: nothing stored yet; give back what was allocated */
	while (got-- > 0) {
		if (tx_free(bt->bt_tx, blks[got], 1))
			break;
		bt->bt_nodes--;
	}
	return ret;
}

/*
 * bt_put() - put @x at the leaf position in @c (in place of the slot there
 * if @replace): in the leaf if it has room, compacting it if it must,
 * splitting otherwise.
 */
static int bt_put(struct btree *bt, const struct bt_cursor *c, const struct bt_ent *x,
		  bool replace)
{
	uint64_t blk = c->c_blk[0];
	struct udx_bnode *n = bt_node(bt, blk);
	unsigned p = (unsigned)c->c_idx[0], ov = 0;
	int ret, room;

	if (replace) {
		ov = node_slot(n, p)->s_vlen;
		if (x->e_vlen <= ov)
			return node_overwrite(bt, blk, p, x->e_val, x->e_vlen);
	} else if (slots_end(n) + SLOT_SIZE + x->e_vlen <= n->n_vstart) {
		return node_insert(bt, blk, p, x);      /* the common case */
	}
	ret = node_check_slots(bt, n, blk);
	if (ret)
		return ret;
	room = node_room(n) + (replace ? (int)(SLOT_SIZE + ov) : 0);
	if (room >= (int)(SLOT_SIZE + x->e_vlen)) {
		if (replace) {
			ret = node_remove(bt, blk, p);
			if (ret)
				return ret;
		}
		return node_insert(bt, blk, p, x);
	}
	return bt_split_put(bt, c, *x, replace);
}

/* ---- the changes ---------------------------------------------------------- */

/*
 * Checks common to the changes.  A value that lies in device memory (say,
 * one read with bt_val()) is copied to @copy first: a compaction or a split
 * could move it while it is being stored.
 */
static int bt_change_prep(const struct btree *bt, const void **val, uint16_t vlen,
			  char *copy)
{
	uintptr_t v = (uintptr_t)*val, base = (uintptr_t)bt->bt_base;

	if (bt->bt_tx == NULL)
		return udx_err(-EROFS, "%s of inode %llu: changed without a transaction",
			       tree_name(bt), (unsigned long long)bt->bt_owner);
	if (vlen > BT_VAL_MAX)
		return udx_err(-EINVAL, "a tree value of %u bytes is longer than %u",
			       vlen, BT_VAL_MAX);
	if (vlen && v >= base && v < base + (bt->bt_nblocks << UDX_BLOCK_SHIFT)) {
		memcpy(copy, *val, vlen);
		*val = copy;
	}
	return 0;
}

/* The first entry of an empty tree: a root leaf. */
static int bt_plant(struct btree *bt, const struct bt_ent *x)
{
	struct udx_bnode *n;
	uint64_t blk;
	int ret;

	ret = bt_node_alloc(bt, &blk);
	if (ret)
		return ret;
	n = bt_node(bt, blk);
	node_init(bt, n, 0);
	node_append(n, x);
	n->n_checksum = hdr_csum(n, blk) ^ slot_csum(n, 0);
	bt->bt_root = blk;              /* T4 */
	return 0;
}

int bt_insert(struct btree *bt, uint64_t key, const void *val, uint16_t vlen)
{
	char copy[BT_VAL_MAX];
	struct bt_cursor c;
	struct udx_bnode *n;
	struct bt_ent x;
	unsigned p;
	int ret;

	ret = bt_change_prep(bt, &val, vlen, copy);
	if (ret)
		return ret;
	x = (struct bt_ent){ key, val, vlen };
	if (bt->bt_root == 0)
		return bt_plant(bt, &x);
	ret = bt_descend(bt, key, &c);
	if (ret)
		return ret;
	n = cur_node(&c, 0);
	p = (unsigned)c.c_idx[0];
	if (p < n->n_nkeys && slot_key(n, p) == key)
		return -EEXIST;
	return bt_put(bt, &c, &x, false);
}

int bt_update(struct btree *bt, uint64_t key, const void *val, uint16_t vlen)
{
	char copy[BT_VAL_MAX];
	struct bt_cursor c;
	struct udx_bnode *n;
	struct bt_ent x;
	unsigned p;
	int ret;

	ret = bt_change_prep(bt, &val, vlen, copy);
	if (ret)
		return ret;
	if (bt->bt_root == 0)
		return -ENOENT;
	ret = bt_descend(bt, key, &c);
	if (ret)
		return ret;
	n = cur_node(&c, 0);
	p = (unsigned)c.c_idx[0];
	if (p >= n->n_nkeys || slot_key(n, p) != key)
		return -ENOENT;
	if (!slot_ok(n, p))
		return bt_damaged(bt, c.c_blk[0], "has a value outside its value area");
	x = (struct bt_ent){ key, val, vlen };
	return bt_put(bt, &c, &x, true);
}

/*
 * bt_delete(): remove the slot from its leaf.  When that would empty the
 * leaf, the leaf is freed and its slot removed from the parent instead, and
 * so on up (B3); a root left with one child gives way to it, and so on down.
 * Everything is checked before the first store (T3).
 */
int bt_delete(struct btree *bt, uint64_t key)
{
	uint64_t chain[BT_MAX_LEVEL], newroot = 0, blk = 0;
	struct bt_cursor c;
	struct udx_bnode *n;
	int top, h, nchain = 0, i, ret;
	unsigned p;

	if (bt->bt_tx == NULL)
		return udx_err(-EROFS, "%s of inode %llu: changed without a transaction",
			       tree_name(bt), (unsigned long long)bt->bt_owner);
	if (bt->bt_root == 0)
		return -ENOENT;
	ret = bt_descend(bt, key, &c);
	if (ret)
		return ret;
	h = c.c_height;
	n = cur_node(&c, 0);
	p = (unsigned)c.c_idx[0];
	if (p >= n->n_nkeys || slot_key(n, p) != key)
		return -ENOENT;
	if (!slot_ok(n, p))
		return bt_damaged(bt, c.c_blk[0], "has a value outside its value area");
	if (n->n_nkeys > 1)
		return node_remove(bt, c.c_blk[0], p);

	/* levels 0 .. top - 1 hold one slot each: they go */
	for (top = 0; top < h && cur_node(&c, top)->n_nkeys == 1; top++)
		;
	if (top < h && top == h - 1 && cur_node(&c, top)->n_nkeys == 2) {
		/* the root keeps one child, which replaces it (B3), as does
		 * each node below with one child */
		n = cur_node(&c, top);
		ret = node_child(bt, n, c.c_blk[top], c.c_idx[top] ? 0 : 1, &blk);
		if (!ret)
			ret = node_get(bt, blk, top - 1, &n);
		while (!ret && n->n_level > 0 && n->n_nkeys == 1) {
			chain[nchain++] = blk;
			ret = node_child(bt, n, blk, 0, &blk);
			if (!ret)
				ret = node_get(bt, blk, n->n_level - 1, &n);
		}
		if (ret)
			return ret;
		newroot = blk;
	}

	for (i = 0; i < top; i++) {
		ret = tx_free(bt->bt_tx, c.c_blk[i], 1);
		if (ret)
			return ret;
		bt->bt_nodes--;
	}
	if (top == h) {
		bt->bt_root = 0;                /* T4: the tree is empty */
		return 0;
	}
	if (newroot == 0)
		return node_remove(bt, c.c_blk[top], (unsigned)c.c_idx[top]);
	chain[nchain++] = c.c_blk[top];
	for (i = 0; i < nchain; i++) {
		ret = tx_free(bt->bt_tx, chain[i], 1);
		if (ret)
			return ret;
		bt->bt_nodes--;
	}
	bt->bt_root = newroot;                  /* T4 */
	return 0;
}

/* ---- a set of blocks, for walks that must not visit a node twice ---------- */

struct blkset {
	uint64_t *bs_tab;               /* open addressing; 0 is empty */
	size_t bs_cap, bs_n;            /* bs_cap: a power of two */
};

static size_t blkset_hash(uint64_t blk, size_t cap)
{
	return (size_t)((blk * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

/* Returns 1 when @blk (not 0) was added, 0 when it was there, -ENOMEM. */
static int blkset_add(struct blkset *s, uint64_t blk)
{
	size_t i;

	if (2 * (s->bs_n + 1) > s->bs_cap) {
		size_t cap = s->bs_cap ? 2 * s->bs_cap : 256, j;
		uint64_t *tab = calloc(cap, sizeof(*tab));

		if (tab == NULL)
			return -ENOMEM;
		for (j = 0; j < s->bs_cap; j++) {
			if (s->bs_tab[j] == 0)
				continue;
			for (i = blkset_hash(s->bs_tab[j], cap); tab[i]; i = (i + 1) & (cap - 1))
				;
			tab[i] = s->bs_tab[j];
		}
		free(s->bs_tab);
		s->bs_tab = tab;
		s->bs_cap = cap;
	}
	for (i = blkset_hash(blk, s->bs_cap); s->bs_tab[i]; i = (i + 1) & (s->bs_cap - 1))
		if (s->bs_tab[i] == blk)
			return 0;
	s->bs_tab[i] = blk;
	s->bs_n++;
	return 1;
}

static void blkset_exit(struct blkset *s)
{
	free(s->bs_tab);
	s->bs_tab = NULL;
	s->bs_cap = s->bs_n = 0;
}

/*
 * bt_destroy(): walk the whole tree first, checking every node and that
 * none is reached twice (a block freed twice would corrupt the allocator),
 * then free them all, children before parents.  Nothing is stored.
 */
int bt_destroy(struct btree *bt)
{
	uint64_t *order = NULL, blk = 0;
	size_t n = 0, cap = 0, i;
	struct blkset seen = { 0 };
	struct bt_cursor c;
	struct udx_bnode *nd;
	int lvl, h, ret;

	if (bt->bt_root == 0)
		return 0;
	if (bt->bt_tx == NULL)
		return udx_err(-EROFS, "%s of inode %llu: changed without a transaction",
			       tree_name(bt), (unsigned long long)bt->bt_owner);
	ret = node_get(bt, bt->bt_root, -1, &nd);
	if (ret)
		return ret;
	h = nd->n_level + 1;
	lvl = h - 1;
	c.c_blk[lvl] = bt->bt_root;
	c.c_idx[lvl] = 0;
	for (;;) {
		nd = bt_node(bt, c.c_blk[lvl]);
		if (lvl > 0 && c.c_idx[lvl] < nd->n_nkeys) {
			ret = node_child(bt, nd, c.c_blk[lvl], (unsigned)c.c_idx[lvl]++, &blk);
			if (!ret)
				ret = node_get(bt, blk, lvl - 1, &nd);
			if (ret)
				goto out_free;
			lvl--;
			c.c_blk[lvl] = blk;
			c.c_idx[lvl] = 0;
			continue;
		}
		ret = blkset_add(&seen, c.c_blk[lvl]);
		if (ret == 0)
			ret = bt_damaged(bt, c.c_blk[lvl], "is reached twice");
		if (ret < 0)
			goto out_free;
		if (n == cap) {
			uint64_t *o = realloc(order, (cap = cap ? 2 * cap : 64) * sizeof(*o));

			if (o == NULL) {
				ret = udx_err(-ENOMEM, "out of memory");
				goto out_free;
			}
			order = o;
		}
		order[n++] = c.c_blk[lvl];
		if (++lvl == h)
			break;
	}
	for (i = 0; i < n; i++) {
		ret = tx_free(bt->bt_tx, order[i], 1);
		if (ret)
			goto out_free;
		bt->bt_nodes--;
	}
	bt->bt_root = 0;                        /* T4 */
	ret = 0;
out_free:
	blkset_exit(&seen);
	free(order);
	return ret;
}

/* ---- fsck ----------------------------------------------------------------- */

struct bt_chk {
	const struct btree *k_bt;
	void (*k_block)(void *arg, uint64_t blk);
	void (*k_problem)(void *arg, const char *what);
	void *k_arg;
	uint64_t k_problems;
	uint64_t k_nkeys;               /* entries in the leaves read */
	struct blkset k_seen;           /* nodes reached */
};

static void chk_report(struct bt_chk *k, uint64_t blk, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void chk_report(struct bt_chk *k, uint64_t blk, const char *fmt, ...)
{
	char what[256], line[512];
	va_list ap;

	k->k_problems++;
	if (k->k_problem == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (blk)
		snprintf(line, sizeof(line), "%s of inode %llu: node %llu: %s",
			 tree_name(k->k_bt), (unsigned long long)k->k_bt->bt_owner,
			 (unsigned long long)blk, what);
	else
		snprintf(line, sizeof(line), "%s of inode %llu: %s",
			 tree_name(k->k_bt), (unsigned long long)k->k_bt->bt_owner, what);
	k->k_problem(k->k_arg, line);
}

/* Mark bytes [lo, hi) as used by a value; false if one of them already was. */
static bool chk_mark(uint64_t *used, unsigned lo, unsigned hi)
{
	bool clash = false;

	while (lo < hi) {
		unsigned b = lo % 64, nb = MIN(64 - b, hi - lo);
		uint64_t mask = (nb == 64 ? ~0ull : (1ull << nb) - 1) << b;

		clash |= (used[lo / 64] & mask) != 0;
		used[lo / 64] |= mask;
		lo += nb;
	}
	return !clash;
}

/*
 * chk_node() - check the node at @blk (in range, not 0) and its subtree:
 * @level is the level it must have (-1: the root), its keys must lie in
 * [@lo, @hi) (no upper bound unless @hi_set).  Recursion depth is bounded by
 * the levels (B2), and work by the set of nodes reached.
 */
static void chk_node(struct bt_chk *k, uint64_t blk, int level, uint64_t lo,
		     uint64_t hi, bool hi_set)
{
	const struct btree *bt = k->k_bt;
	const struct udx_bnode *n = bt_node(bt, blk);
	uint64_t used[UDX_BLOCK_SIZE / 64] = { 0 };
	bool bad[NODE_MAX_KEYS] = { false };
	bool order_told = false, range_told = false, overlap_told = false;
	unsigned nk, i;
	int ret;

	ret = blkset_add(&k->k_seen, blk);
	if (ret == 0) {
		chk_report(k, blk, "is reached twice (two pointers to one node)");
		return;
	}
	if (ret < 0) {
		chk_report(k, blk, "not checked: out of memory");
		return;
	}
	if (k->k_block)
		k->k_block(k->k_arg, blk);
	if (n->n_magic != UDX_BNODE_MAGIC) {
		chk_report(k, blk, "is not a tree node (bad magic %#x)", n->n_magic);
		return;
	}
	if (n->n_kind != bt->bt_kind) {
		chk_report(k, blk, "belongs to another kind of tree (kind %u)", n->n_kind);
		return;
	}
	if (n->n_owner != bt->bt_owner) {
		chk_report(k, blk, "belongs to inode %llu", (unsigned long long)n->n_owner);
		return;
	}
	if (level < 0 && n->n_level >= BT_MAX_LEVEL) {
		chk_report(k, blk, "is the root at level %u, deeper than %u levels allow",
			   n->n_level, BT_MAX_LEVEL);
		return;
	}
	if (level >= 0 && n->n_level != level) {
		chk_report(k, blk, "is at level %u where its parent needs level %d",
			   n->n_level, level);
		return;
	}
	if (n->n_vstart > UDX_BLOCK_SIZE || slots_end(n) > n->n_vstart) {
		chk_report(k, blk, "%u slots and values from byte %u do not fit in the node",
			   n->n_nkeys, n->n_vstart);
		return;
	}
	if (bt_node_csum(n, blk) != n->n_checksum)
		chk_report(k, blk, "checksum mismatch");
	nk = n->n_nkeys;
	if (nk == 0)
		chk_report(k, blk, "is empty");
	else if (level < 0 && n->n_level > 0 && nk == 1)
		chk_report(k, blk, "is a root with a single child");

	for (i = 0; i < nk; i++) {
		const struct udx_bslot *s = node_slot(n, i);
		uint64_t key = s->s_key;

		if (!slot_ok(n, i)) {
			chk_report(k, blk, "slot %u: a value of %u bytes at byte %u is outside the value area",
				   i, s->s_vlen, s->s_voff);
			bad[i] = true;
		} else if (!chk_mark(used, s->s_voff, s->s_voff + s->s_vlen)) {
			if (!overlap_told)
				chk_report(k, blk, "slot %u: its value overlaps another", i);
			overlap_told = true;
			bad[i] = true;
		}
		if (i > 0 && key <= slot_key(n, i - 1) && !order_told) {
			chk_report(k, blk, "keys out of order at slot %u", i);
			order_told = true;
		}
		/* B2: the first key of an internal node bounds nothing */
		if ((n->n_level == 0 || i > 0) && (key < lo || (hi_set && key >= hi)) &&
		    !range_told) {
			if (hi_set)
				chk_report(k, blk, "key %#llx is outside the range %#llx..%#llx its parent gives",
					   (unsigned long long)key, (unsigned long long)lo,
					   (unsigned long long)hi - 1);
			else
				chk_report(k, blk, "key %#llx is below %#llx, where its parent starts",
					   (unsigned long long)key, (unsigned long long)lo);
			range_told = true;
		}
	}
	if (n->n_level == 0) {
		k->k_nkeys += nk;
		return;
	}
	for (i = 0; i < nk; i++) {
		uint64_t child;

		if (bad[i])
			continue;
		memcpy(&child, slot_val(n, i), sizeof(child));
		if (child == 0 || child >= bt->bt_nblocks) {
			chk_report(k, blk, "slot %u points to block %llu, outside the device",
				   i, (unsigned long long)child);
			continue;
		}
		if (i + 1 < nk)
			chk_node(k, child, n->n_level - 1, i ? slot_key(n, i) : lo,
				 slot_key(n, i + 1), true);
		else
			chk_node(k, child, n->n_level - 1, i ? slot_key(n, i) : lo, hi, hi_set);
	}
}

uint64_t bt_check(const struct btree *bt,
		  void (*block)(void *arg, uint64_t blk),
		  void (*problem)(void *arg, const char *what),
		  void *arg, uint64_t *nkeys)
{
	struct bt_chk k = {
		.k_bt = bt,
		.k_block = block,
		.k_problem = problem,
		.k_arg = arg,
	};

	if (bt->bt_root >= bt->bt_nblocks)
		chk_report(&k, 0, "the root pointer %llu is outside the device",
			   (unsigned long long)bt->bt_root);
	else if (bt->bt_root != 0)
		chk_node(&k, bt->bt_root, -1, 0, 0, false);
	blkset_exit(&k.k_seen);
	if (nkeys)
		*nkeys = k.k_nkeys;
	return k.k_problems;
}
