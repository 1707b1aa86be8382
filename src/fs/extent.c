/* SPDX-License-Identifier: MIT */
/*
 * Extent maps: which device blocks hold which file blocks.
 *
 * Up to UDX_INLINE_EXTENTS extents live in the inode itself; the sixth moves
 * them all into a B+tree (UDX_IF_EXT_TREE, root in i_root), which the file
 * keeps from then on.  Extents never overlap and are kept sorted.  Adjacent
 * extents that continue each other physically, with the same flags, are
 * merged when one is added.
 *
 * Locking: readers hold i_rwsem shared; every function that takes a
 * transaction needs i_rwsem exclusive and the inode logged in it
 * (inode_log()); the caller seals the inode before commit.
 */
#include <errno.h>
#include <string.h>

#include "base/err.h"
#include "fs/btree.h"
#include "fs/fs.h"

#define ALIGN_2M_BLOCKS 512ull

/* An extent set: the inode's inline extents, or its tree. */
struct extset {
	struct udx_inode *es_ip;
	struct udx_tx *es_tx;
	struct btree es_bt;
	bool es_tree;
};

static void es_open(struct extset *es, struct udx_inode *ip, struct udx_tx *tx)
{
	struct udx_fs *fs = ip->i_fs;
	struct udx_dinode *d = ip->i_d;

	memset(es, 0, sizeof(*es));
	es->es_ip = ip;
	es->es_tx = tx;
	es->es_tree = d->i_flags & UDX_IF_EXT_TREE;
	es->es_bt.bt_base = fs->fs_base;
	es->es_bt.bt_nblocks = fs->fs_nblocks;
	es->es_bt.bt_root = d->i_root;
	es->es_bt.bt_owner = ip->i_ino;
	es->es_bt.bt_kind = UDX_BT_EXTENTS;
	es->es_bt.bt_goal = d->i_root;
	es->es_bt.bt_tx = tx;
}

/* Store tree changes (root, node count) in the (logged) inode. */
static void es_sync(struct extset *es)
{
	struct udx_dinode *d = es->es_ip->i_d;

	if (!es->es_tree)
		return;
	d->i_root = es->es_bt.bt_root;
	d->i_blocks += (uint64_t)es->es_bt.bt_nodes;
	es->es_bt.bt_nodes = 0;
}

static void val_to_ext(uint64_t key, const struct udx_dext_val *v, struct udx_dextent *e)
{
	e->e_lblk = key;
	e->e_pblk = v->v_pblk;
	e->e_len = v->v_len;
	e->e_flags = v->v_flags;
}

int ext_tree_get(const struct bt_cursor *c, struct udx_dextent *e)
{
	struct udx_dext_val v;

	if (bt_val_copy(c, &v, sizeof(v)))
		return -EUCLEAN;
	val_to_ext(bt_key(c), &v, e);
	return 0;
}

static int es_tree_get(struct bt_cursor *c, struct udx_dextent *e)
{
	if (ext_tree_get(c, e))
		return udx_err(-EUCLEAN, "extent tree: a value of the wrong size (run fsck)");
	return 0;
}

/* The last extent starting at or before @lblk. */
static int es_find_le(struct extset *es, uint64_t lblk, struct udx_dextent *e)
{
	const struct udx_dinode *d = es->es_ip->i_d;
	struct bt_cursor c;
	int ret, i;

	if (es->es_tree) {
		ret = bt_seek_le(&es->es_bt, lblk, &c);
		return ret ? ret : es_tree_get(&c, e);
	}
	for (i = (int)MIN(d->i_nextents, UDX_INLINE_EXTENTS) - 1; i >= 0; i--) {
		if (d->i_inline.i_ext[i].e_lblk <= lblk) {
			*e = d->i_inline.i_ext[i];
			return 0;
		}
	}
	return -ENOENT;
}

/* The first extent starting at or after @lblk. */
static int es_find_ge(struct extset *es, uint64_t lblk, struct udx_dextent *e)
{
	const struct udx_dinode *d = es->es_ip->i_d;
	struct bt_cursor c;
	unsigned i;
	int ret;

	if (es->es_tree) {
		ret = bt_seek(&es->es_bt, lblk, &c);
		return ret ? ret : es_tree_get(&c, e);
	}
	for (i = 0; i < MIN(d->i_nextents, UDX_INLINE_EXTENTS); i++) {
		if (d->i_inline.i_ext[i].e_lblk >= lblk) {
			*e = d->i_inline.i_ext[i];
			return 0;
		}
	}
	return -ENOENT;
}

static int es_tree_insert(struct extset *es, const struct udx_dextent *e)
{
	struct udx_dext_val v = { e->e_pblk, e->e_len, e->e_flags };

	return bt_insert(&es->es_bt, e->e_lblk, &v, sizeof(v));
}

/* Move the inline extents into a new tree. */
static int es_convert_to_tree(struct extset *es)
{
	struct udx_dinode *d = es->es_ip->i_d;
	struct udx_dextent ext[UDX_INLINE_EXTENTS];
	unsigned i, n = d->i_nextents;
	int ret;

	memcpy(ext, d->i_inline.i_ext, sizeof(ext));
	es->es_tree = true;
	es->es_bt.bt_root = 0;
	es->es_bt.bt_goal = n ? ext[0].e_pblk : 0;
	for (i = 0; i < n; i++) {
		ret = es_tree_insert(es, &ext[i]);
		if (ret)
			return ret;
	}
	memset(&d->i_inline, 0, sizeof(d->i_inline));
	d->i_nextents = 0;
	d->i_flags |= UDX_IF_EXT_TREE;
	es_sync(es);
	return 0;
}

static int es_insert(struct extset *es, const struct udx_dextent *e)
{
	struct udx_dinode *d = es->es_ip->i_d;
	unsigned i, n;
	int ret;

	if (!es->es_tree && d->i_nextents >= UDX_INLINE_EXTENTS) {
		ret = es_convert_to_tree(es);
		if (ret)
			return ret;
	}
	if (es->es_tree) {
		ret = es_tree_insert(es, e);
		es_sync(es);
		return ret;
	}
	n = d->i_nextents;
	for (i = n; i > 0 && d->i_inline.i_ext[i - 1].e_lblk > e->e_lblk; i--)
		d->i_inline.i_ext[i] = d->i_inline.i_ext[i - 1];
	d->i_inline.i_ext[i] = *e;
	d->i_nextents = n + 1;
	return 0;
}

static int es_delete(struct extset *es, uint64_t lblk)
{
	struct udx_dinode *d = es->es_ip->i_d;
	unsigned i, n = d->i_nextents;
	int ret;

	if (es->es_tree) {
		ret = bt_delete(&es->es_bt, lblk);
		es_sync(es);
		return ret;
	}
	for (i = 0; i < n && d->i_inline.i_ext[i].e_lblk != lblk; i++)
		;
	if (i == n)
		return -ENOENT;
	for (; i + 1 < n; i++)
		d->i_inline.i_ext[i] = d->i_inline.i_ext[i + 1];
	memset(&d->i_inline.i_ext[n - 1], 0, sizeof(struct udx_dextent));
	d->i_nextents = n - 1;
	return 0;
}

/* Replace the extent that starts at e->e_lblk. */
static int es_update(struct extset *es, const struct udx_dextent *e)
{
	struct udx_dinode *d = es->es_ip->i_d;
	struct udx_dext_val v = { e->e_pblk, e->e_len, e->e_flags };
	unsigned i;
	int ret;

	if (es->es_tree) {
		ret = bt_update(&es->es_bt, e->e_lblk, &v, sizeof(v));
		es_sync(es);
		return ret;
	}
	for (i = 0; i < d->i_nextents; i++) {
		if (d->i_inline.i_ext[i].e_lblk == e->e_lblk) {
			d->i_inline.i_ext[i] = *e;
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- lookups ------------------------------------------------------------ */

int ext_lookup(struct udx_inode *ip, uint64_t lblk, struct ext_map *m)
{
	struct udx_dextent e = { 0 };
	struct extset es;
	int ret;

	es_open(&es, ip, NULL);
	ret = es_find_le(&es, lblk, &e);
	if (ret == 0 && (e.e_len == 0 || e.e_len > UDX_EXT_MAX_LEN))
		goto damaged;
	if (ret == 0 && lblk < e.e_lblk + e.e_len) {
		m->m_lblk = lblk;
		m->m_len = e.e_lblk + e.e_len - lblk;
		m->m_pblk = e.e_pblk + (lblk - e.e_lblk);
		m->m_unwritten = e.e_flags & UDX_EXT_UNWRITTEN;
		if (m->m_pblk + m->m_len > ip->i_fs->fs_nblocks || e.e_pblk < ip->i_fs->fs_data_start)
			return udx_err(-EUCLEAN, "inode %llu: an extent points outside the data area (run fsck)",
				       (unsigned long long)ip->i_ino);
		return 0;
	}
	if (ret && ret != -ENOENT)
		return ret;
	/* a hole: up to the next extent */
	m->m_lblk = lblk;
	m->m_pblk = 0;
	m->m_unwritten = false;
	ret = es_find_ge(&es, lblk, &e);
	if (ret == -ENOENT)
		m->m_len = UINT64_MAX - lblk;
	else if (ret)
		return ret;
	else if (e.e_lblk <= lblk || e.e_len == 0)
		goto damaged;           /* a hole of no length: never loop on it */
	else
		m->m_len = e.e_lblk - lblk;
	return 0;

damaged:
	return udx_err(-EUCLEAN, "inode %llu: a malformed extent (run fsck)",
		       (unsigned long long)ip->i_ino);
}

/* ---- changes ------------------------------------------------------------ */

/* Add @e, merging with the extent before and after when they continue it. */
static int ext_add(struct extset *es, struct udx_dextent e)
{
	struct udx_dextent p = { 0 }, n = { 0 };
	int ret;

	if (e.e_lblk > 0 && es_find_le(es, e.e_lblk - 1, &p) == 0 &&
	    p.e_lblk + p.e_len == e.e_lblk && p.e_pblk + p.e_len == e.e_pblk &&
	    p.e_flags == e.e_flags && (uint64_t)p.e_len + e.e_len <= UDX_EXT_MAX_LEN) {
		p.e_len += e.e_len;
		if (es_find_ge(es, e.e_lblk + e.e_len, &n) == 0 &&
		    n.e_lblk == p.e_lblk + p.e_len && n.e_pblk == p.e_pblk + p.e_len &&
		    n.e_flags == p.e_flags && (uint64_t)p.e_len + n.e_len <= UDX_EXT_MAX_LEN) {
			ret = es_delete(es, n.e_lblk);
			if (ret)
				return ret;
			p.e_len += n.e_len;
		}
		return es_update(es, &p);
	}
	if (es_find_ge(es, e.e_lblk + e.e_len, &n) == 0 &&
	    n.e_lblk == e.e_lblk + e.e_len && n.e_pblk == e.e_pblk + e.e_len &&
	    n.e_flags == e.e_flags && (uint64_t)n.e_len + e.e_len <= UDX_EXT_MAX_LEN) {
		ret = es_delete(es, n.e_lblk);
		if (ret)
			return ret;
		e.e_len += n.e_len;
	}
	return es_insert(es, &e);
}

/*
 * Allocate device blocks for the hole at @lblk, up to @len blocks (less if
 * the hole or the free space is shorter), and map them.  @m gets the new
 * mapping.  The caller makes the blocks' contents right (zeros, or data)
 * and durable before committing.
 */
int ext_alloc(struct udx_tx *tx, struct udx_inode *ip, uint64_t lblk, uint64_t len,
	      bool unwritten, struct ext_map *m)
{
	struct udx_dextent prev = { 0 }, e = { 0 };
	struct extset es;
	struct ext_map hole;
	uint64_t goal = 0, blk, got;
	int ret;

	ret = ext_lookup(ip, lblk, &hole);
	if (ret)
		return ret;
	UDX_BUG_ON(hole.m_pblk != 0);                   /* not a hole */
	len = MIN(len, hole.m_len);
	len = MIN(len, (uint64_t)UDX_EXT_MAX_LEN);
	es_open(&es, ip, tx);
	if (lblk > 0 && es_find_le(&es, lblk - 1, &prev) == 0)
		goal = prev.e_pblk + (lblk - prev.e_lblk);     /* continue it */
	ret = -ENOSPC;
	if ((lblk & (ALIGN_2M_BLOCKS - 1)) == 0 && len < ALIGN_2M_BLOCKS &&
	    (goal & (ALIGN_2M_BLOCKS - 1)) == 0 &&
	    (len >= ALIGN_2M_BLOCKS / 4 || ip->i_d->i_size >= (ALIGN_2M_BLOCKS << UDX_BLOCK_SHIFT))) {
		/* a large file's 2 MiB piece begins in smaller writes: start it on
		 * an aligned 2 MiB run, which the writes that follow continue,
		 * so that one 2 MiB entry can map it (small files do not, to
		 * keep large free runs whole) */
		ret = tx_alloc(tx, ALIGN_2M_BLOCKS, ALIGN_2M_BLOCKS, goal, UDX_ALLOC_ALIGN,
			       &blk, &got);
		if (ret == 0) {
			tx_trim(tx, blk + len, got - len);
			got = len;
		}
	}
	if (ret)
		ret = tx_alloc(tx, len, 1, goal, 0, &blk, &got);
	if (ret)
		return ret == -ENOSPC ? udx_err(-ENOSPC, "no space left on the device") : ret;
	e.e_lblk = lblk;
	e.e_pblk = blk;
	e.e_len = (uint32_t)got;
	e.e_flags = unwritten ? UDX_EXT_UNWRITTEN : 0;
	ret = ext_add(&es, e);
	if (ret)
		return ret;
	ip->i_d->i_blocks += got;
	m->m_lblk = lblk;
	m->m_len = got;
	m->m_pblk = blk;
	m->m_unwritten = unwritten;
	return 0;
}

/*
 * Split the extent containing @at (if it starts before @at) into two at
 * @at.  Both halves keep their flags.
 */
static int ext_split_at(struct extset *es, uint64_t at)
{
	struct udx_dextent e = { 0 }, tail;
	int ret;

	ret = es_find_le(es, at, &e);
	if (ret == -ENOENT || (ret == 0 && (e.e_lblk == at || at >= e.e_lblk + e.e_len)))
		return 0;
	if (ret)
		return ret;
	tail.e_lblk = at;
	tail.e_pblk = e.e_pblk + (at - e.e_lblk);
	tail.e_len = (uint32_t)(e.e_lblk + e.e_len - at);
	tail.e_flags = e.e_flags;
	e.e_len = (uint32_t)(at - e.e_lblk);
	ret = es_update(es, &e);
	return ret ? ret : es_insert(es, &tail);
}

/* Mark [lblk, lblk + len) written (it was unwritten, or written already). */
int ext_convert(struct udx_tx *tx, struct udx_inode *ip, uint64_t lblk, uint64_t len)
{
	struct udx_dextent e = { 0 };
	struct extset es;
	uint64_t pos = lblk, end = lblk + len;
	int ret;

	es_open(&es, ip, tx);
	ret = ext_split_at(&es, lblk);
	if (!ret)
		ret = ext_split_at(&es, end);
	while (!ret && pos < end) {
		ret = es_find_ge(&es, pos, &e);
		if (ret == -ENOENT || (ret == 0 && e.e_lblk >= end)) {
			ret = 0;
			break;
		}
		if (ret)
			break;
		pos = e.e_lblk + e.e_len;
		if (!(e.e_flags & UDX_EXT_UNWRITTEN))
			continue;
		ret = es_delete(&es, e.e_lblk);
		if (!ret) {
			e.e_flags &= ~UDX_EXT_UNWRITTEN;
			ret = ext_add(&es, e);
		}
	}
	return ret;
}

/*
 * Unmap [lblk, end) and free its blocks (after commit).  Processes at most
 * @budget extents; returns -EAGAIN with *@done = where it stopped when there
 * is more, so that a huge punch spans several transactions.
 */
int ext_punch(struct udx_tx *tx, struct udx_inode *ip, uint64_t lblk, uint64_t end,
	      uint64_t *done, unsigned budget)
{
	struct udx_dextent e = { 0 };
	struct extset es;
	unsigned n = 0;
	int ret;

	es_open(&es, ip, tx);
	if (end != UINT64_MAX)
		ret = ext_split_at(&es, end);   /* may need a tree block: first */
	else
		ret = 0;
	/* an extent that starts before @lblk keeps its head: trimmed in place,
	 * so a truncate never needs a new extent (nor a block for one) */
	if (!ret && es_find_le(&es, lblk, &e) == 0 && e.e_lblk < lblk &&
	    lblk < e.e_lblk + e.e_len) {
		uint64_t keep = lblk - e.e_lblk, cut = e.e_len - keep;

		ret = tx_free(tx, e.e_pblk + keep, cut);
		if (!ret) {
			e.e_len = (uint32_t)keep;
			ret = es_update(&es, &e);
		}
		if (!ret)
			ip->i_d->i_blocks -= cut;
		n++;
	}
	while (!ret) {
		ret = es_find_ge(&es, lblk, &e);
		if (ret == -ENOENT || (ret == 0 && e.e_lblk >= end)) {
			ret = 0;
			break;
		}
		if (ret)
			break;
		if (n++ == budget) {
			*done = e.e_lblk;
			return -EAGAIN;
		}
		ret = es_delete(&es, e.e_lblk);
		if (!ret)
			ret = tx_free(tx, e.e_pblk, e.e_len);
		if (!ret)
			ip->i_d->i_blocks -= e.e_len;
		lblk = e.e_lblk + e.e_len;
	}
	if (ret == 0)
		*done = end;
	return ret;
}

/* Walk every block an inode owns (extents and tree nodes): recovery and
 * fsck use it to rebuild the free space map. */
struct count_ctx {
	void (*fn)(void *arg, uint64_t blk, uint64_t len);
	void *arg;
};

static void count_node(void *arg, uint64_t blk)
{
	struct count_ctx *cc = arg;

	cc->fn(cc->arg, blk, 1);
}

static void count_problem(void *arg, const char *what)
{
	(void)arg;
	(void)what;
}

int ext_count_blocks(struct udx_fs *fs, uint64_t ino, const struct udx_dinode *d,
		     void (*fn)(void *arg, uint64_t blk, uint64_t len), void *arg)
{
	struct count_ctx cc = { fn, arg };
	struct btree bt;
	struct bt_cursor c;
	unsigned i;
	int ret;

	if (S_ISLNK(d->i_mode) && (d->i_flags & UDX_IF_INLINE_LINK))
		return 0;
	memset(&bt, 0, sizeof(bt));
	bt.bt_base = fs->fs_base;
	bt.bt_nblocks = fs->fs_nblocks;
	bt.bt_root = d->i_root;
	bt.bt_owner = ino;
	if (S_ISDIR(d->i_mode)) {
		bt.bt_kind = UDX_BT_DIRENTS;
		return bt_check(&bt, count_node, count_problem, &cc, NULL) ? -EUCLEAN : 0;
	}
	if (!(d->i_flags & UDX_IF_EXT_TREE)) {
		if (d->i_nextents > UDX_INLINE_EXTENTS)
			return -EUCLEAN;
		for (i = 0; i < d->i_nextents; i++)
			fn(arg, d->i_inline.i_ext[i].e_pblk, d->i_inline.i_ext[i].e_len);
		return 0;
	}
	bt.bt_kind = UDX_BT_EXTENTS;
	if (bt_check(&bt, count_node, count_problem, &cc, NULL))
		return -EUCLEAN;
	for (ret = bt_seek(&bt, 0, &c); ret == 0; ret = bt_next(&c)) {
		struct udx_dextent e;

		if (ext_tree_get(&c, &e))
			return -EUCLEAN;
		fn(arg, e.e_pblk, e.e_len);
	}
	return ret == -ENOENT ? 0 : ret;
}
