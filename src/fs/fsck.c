/* SPDX-License-Identifier: MIT */
/*
 * fsck: check every structure of an unmounted file system, say what is
 * wrong in words a user understands, and repair what can be repaired safely.
 *
 * Phases:
 *   1. superblocks (primary and backup)
 *   2. journal: lane headers, unfinished transactions
 *   3. inodes: map bytes, checksums, fields, extents and trees, block use
 *   4. directories: entries, names, hashes, targets, types, parents
 *   5. link counts, orphans, reachability from the root
 *   6. the free space checkpoint
 *
 * Repairs (with opts->repair), each made with the journal so that a crash
 * during fsck leaves a consistent file system:
 *   superblock from its backup (or the backup from the primary); unfinished
 *   transactions rolled back; damaged inodes released; directory entries
 *   that point at free or damaged inodes removed; wrong link counts, block
 *   counts, parents and entry types corrected; orphans freed; the free space
 *   checkpoint rewritten from what the inodes really use.
 * Blocks are never freed one by one: the checkpoint is recomputed at the end
 * from the blocks every surviving inode owns.
 * Not repaired: blocks claimed by two inodes, extents outside the device,
 * damaged trees, directories with two names, unreachable inodes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "fs/btree.h"
#include "fs/csum.h"
#include "fs/fs.h"
#include "fs/journal.h"

struct fsck {
	struct udx_dev *dev;
	char *base;
	const struct udx_fsck_opts *o;
	struct udx_fsck_result *res;
	struct udx_dsuper *sb;
	uint64_t nblocks, ninodes, data_start;
	uint8_t *imap;
	struct udx_dinode *itable;
	uint64_t *used;                 /* bitmap of blocks in use */
	uint8_t *ok;                    /* per inode: in use and sound */
	uint32_t *refs;                 /* per inode: directory entries naming it */
	uint32_t *subdirs;              /* per directory: entries that are dirs */
	uint64_t *parent;               /* per directory: the directory naming it */
	uint64_t cur_ino;
	uint64_t cur_blocks;            /* blocks owned by the inode being checked */
	bool cur_bad;
	bool journal_ok;
	bool quiet;                     /* recounting blocks: no reports */
	bool released;                  /* repairs released inodes */
	bool tree_damaged;              /* some inode's blocks could not be counted */
	struct udx_journal jn;
};

static void report(struct fsck *c, bool fixed, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct fsck *c, bool fixed, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg) - 16, fmt, ap);
	va_end(ap);
	if (fixed && n >= 0)
		strcat(msg, " (repaired)");
	c->res->problems++;
	if (fixed)
		c->res->repaired++;
	if (c->o->report)
		c->o->report(c->o->arg, msg);
}

static void progress(struct fsck *c, const char *phase, uint64_t done, uint64_t total)
{
	if (c->o->progress)
		c->o->progress(c->o->arg, phase, done, total);
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	default: return "special file";
	}
}

/* ---- repairs go through the journal; blocks are never freed one by one ---- */

static int nofree_alloc(void *ctx, uint64_t want, uint64_t min, uint64_t goal,
			unsigned flags, uint64_t *blk, uint64_t *got)
{
	return -ENOSPC;
}

static void nofree_free(void *ctx, uint64_t blk, uint64_t len)
{
}

static const struct udx_block_ops nofree_ops = { nofree_alloc, nofree_free };

static uint64_t sb_csum(const struct udx_dsuper *sb)
{
	return udx_csum64(sb, offsetof(struct udx_dsuper, s_checksum), 0);
}

/* Fix fields of an inode: @fn changes them between log and checksum. */
static bool fix_inode(struct fsck *c, uint64_t ino, void (*fn)(struct udx_dinode *, uint64_t),
		      uint64_t v)
{
	struct udx_dinode *d = &c->itable[ino];
	struct udx_tx tx;

	if (!c->o->repair || !c->journal_ok)
		return false;
	tx_begin(&c->jn, &tx);
	if (tx_log(&tx, d, sizeof(*d))) {
		tx_abort(&tx);
		return false;
	}
	fn(d, v);
	d->i_checksum = inode_csum(ino, d);
	return tx_commit(&tx) == 0;
}

static void set_nlink(struct udx_dinode *d, uint64_t v) { d->i_nlink = (uint32_t)v; }
static void set_blocks(struct udx_dinode *d, uint64_t v) { d->i_blocks = v; }
static void set_parent(struct udx_dinode *d, uint64_t v) { d->i_parent = v; }

static bool release_inode(struct fsck *c, uint64_t ino)
{
	struct udx_tx tx;

	if (!c->o->repair || !c->journal_ok)
		return false;
	tx_begin(&c->jn, &tx);
	if (tx_log(&tx, &c->imap[ino], 1)) {
		tx_abort(&tx);
		return false;
	}
	c->imap[ino] = 0;
	c->ok[ino] = 0;
	c->released = true;
	return tx_commit(&tx) == 0;
}

/* ---- phase 1: superblocks ------------------------------------------------- */

static int check_super(struct fsck *c)
{
	uint64_t size = udx_dev_size(c->dev);
	struct udx_dsuper *p = (struct udx_dsuper *)c->base;
	struct udx_dsuper *b = (struct udx_dsuper *)(c->base + size - UDX_BLOCK_SIZE);
	bool p_ok, b_ok;

	progress(c, "superblock", 0, 1);
	p_ok = memcmp(p->s_magic, UDX_FORMAT_MAGIC, 8) == 0 && p->s_checksum == sb_csum(p);
	b_ok = memcmp(b->s_magic, UDX_FORMAT_MAGIC, 8) == 0 && b->s_checksum == sb_csum(b);
	if (!p_ok && !b_ok)
		return udx_err(-EINVAL, "no valid udaxfs superblock, primary or backup: "
			       "this is not udaxfs, or both superblocks are destroyed");
	/* mount's full validation */
	{
		struct udx_fs_info info;
		int ret = udx_fs_info(c->dev, NULL, &info);

		if (ret)
			return ret;
	}
	if (!p_ok) {
		bool fixed = false;

		if (c->o->repair) {
			/* the backup's state says nothing of the last mount:
			 * the next mount recovers (as mount from the backup does) */
			memcpy(p, b, UDX_BLOCK_SIZE);
			p->s_state = UDX_STATE_DIRTY;
			p->s_checksum = sb_csum(p);
			udx_dev_persist(c->dev, p, UDX_BLOCK_SIZE);
			fixed = true;
		}
		report(c, fixed, "the primary superblock is damaged; the backup is good");
	} else if (!b_ok || b->s_nblocks != p->s_nblocks || b->s_ninodes != p->s_ninodes) {
		bool fixed = false;

		if (c->o->repair) {
			memcpy(b, p, UDX_BLOCK_SIZE);
			udx_dev_persist(c->dev, b, UDX_BLOCK_SIZE);
			fixed = true;
		}
		report(c, fixed, "the backup superblock is damaged or stale");
	}
	c->sb = p_ok || c->o->repair ? p : b;
	c->nblocks = c->sb->s_nblocks;
	c->ninodes = c->sb->s_ninodes;
	c->data_start = c->sb->s_data_start;
	c->imap = (uint8_t *)c->base + (c->sb->s_imap_start << UDX_BLOCK_SHIFT);
	c->itable = (struct udx_dinode *)(c->base + (c->sb->s_itable_start << UDX_BLOCK_SHIFT));
	progress(c, "superblock", 1, 1);
	return 0;
}

/* ---- phase 2: journal --------------------------------------------------- */

static struct udx_jlane *lane_hdr(struct fsck *c, unsigned i)
{
	const struct udx_dsuper *sb = c->sb;

	return (struct udx_jlane *)(c->base +
		((sb->s_jstart + (uint64_t)i * sb->s_jlane_blocks) << UDX_BLOCK_SHIFT));
}

/* A lane's watermark past any real commit number: repaired to the highest
 * sound one of the other lanes (every commit up to it completed). */
static void check_lane_wmarks(struct fsck *c)
{
	uint64_t good = 0;
	unsigned i;

	for (i = 0; i < c->sb->s_jlanes; i++)
		if (lane_hdr(c, i)->j_wmark < JN_SEQ_LIMIT)
			good = MAX(good, lane_hdr(c, i)->j_wmark);
	for (i = 0; i < c->sb->s_jlanes; i++) {
		struct udx_jlane *h = lane_hdr(c, i);

		if (h->j_wmark < JN_SEQ_LIMIT)
			continue;
		if (c->o->repair) {
			h->j_wmark = good;
			udx_dev_persist(c->dev, &h->j_wmark, sizeof(h->j_wmark));
		}
		report(c, c->o->repair, "journal lane %u: its commit watermark is out of range", i);
	}
}

static void check_journal(struct fsck *c)
{
	const struct udx_dsuper *sb = c->sb;
	unsigned i;
	int n;

	progress(c, "journal", 0, sb->s_jlanes);
	check_lane_wmarks(c);
	for (i = 0; i < sb->s_jlanes; i++) {
		struct udx_jlane *h = (struct udx_jlane *)(c->base +
			((sb->s_jstart + (uint64_t)i * sb->s_jlane_blocks) << UDX_BLOCK_SHIFT));

		if (h->j_magic != UDX_JLANE_MAGIC) {
			bool fixed = false;

			if (c->o->repair) {
				h->j_magic = UDX_JLANE_MAGIC;
				udx_dev_persist(c->dev, h, sizeof(*h));
				fixed = true;
			}
			report(c, fixed, "journal lane %u has a damaged header", i);
		}
	}
	if (journal_init(&c->jn, c->dev, sb->s_jstart, sb->s_jlanes, sb->s_jlane_blocks,
			 &nofree_ops, NULL) != 0)
		return;
	c->journal_ok = true;
	if (!c->o->repair) {
		/* count, without rolling back, what recovery would undo */
		n = journal_pending(&c->jn);
		if (n > 0)
			report(c, false, "the journal holds %d changes of unfinished transactions "
			       "(mount, or fsck --repair, rolls them back)", n);
		return;
	}
	n = journal_recover(&c->jn);
	if (n > 0)
		report(c, true, "rolled back %d changes of unfinished transactions", n);
	progress(c, "journal", sb->s_jlanes, sb->s_jlanes);
}

/* ---- phase 3: inodes ---------------------------------------------------- */

static bool test_and_mark(struct fsck *c, uint64_t blk)
{
	uint64_t bit = 1ull << (blk % 64);
	bool was = c->used[blk / 64] & bit;

	c->used[blk / 64] |= bit;
	return was;
}

static void mark_range(struct fsck *c, uint64_t blk, uint64_t len, const char *what)
{
	uint64_t b, dup = 0, first = 0;

	if (c->quiet) {
		/* recounting after repairs: the checks were made already */
		if (blk >= c->data_start && blk < c->nblocks - 1 && len <= c->nblocks - 1 - blk)
			for (b = blk; b < blk + len; b++)
				test_and_mark(c, b);
		return;
	}

	if (blk < c->data_start || blk >= c->nblocks - 1 || len > c->nblocks - 1 - blk || len == 0) {
		report(c, false, "inode %llu (%s): %s %llu+%llu lies outside the data area",
		       (unsigned long long)c->cur_ino, type_name(c->itable[c->cur_ino].i_mode),
		       what, (unsigned long long)blk, (unsigned long long)len);
		c->cur_bad = true;
		return;
	}
	for (b = blk; b < blk + len; b++) {
		if (test_and_mark(c, b) && dup++ == 0)
			first = b;
	}
	if (dup)
		report(c, false, "inode %llu: %llu blocks from %llu are also used by another inode",
		       (unsigned long long)c->cur_ino, (unsigned long long)dup,
		       (unsigned long long)first);
	c->cur_blocks += len;
}

static void node_block(void *arg, uint64_t blk)
{
	mark_range(arg, blk, 1, "tree node");
}

static void tree_problem(void *arg, const char *what)
{
	struct fsck *c = arg;

	c->cur_bad = true;
	c->tree_damaged = true;
	if (!c->quiet)
		report(c, false, "%s", what);   /* bt_check names the inode */
}

static void tree_open(struct fsck *c, uint64_t ino, uint16_t kind, struct btree *bt)
{
	memset(bt, 0, sizeof(*bt));
	bt->bt_base = c->base;
	bt->bt_nblocks = c->nblocks;
	bt->bt_root = c->itable[ino].i_root;
	bt->bt_owner = ino;
	bt->bt_kind = kind;
}

static void check_extent(struct fsck *c, const struct udx_dextent *e, uint64_t *next_lblk)
{
	if (e->e_len == 0 || e->e_len > UDX_EXT_MAX_LEN || (e->e_flags & ~UDX_EXT_UNWRITTEN)) {
		report(c, false, "inode %llu: a malformed extent at file block %llu",
		       (unsigned long long)c->cur_ino, (unsigned long long)e->e_lblk);
		c->cur_bad = true;
		return;
	}
	if (e->e_lblk < *next_lblk) {
		report(c, false, "inode %llu: extents overlap at file block %llu",
		       (unsigned long long)c->cur_ino, (unsigned long long)e->e_lblk);
		c->cur_bad = true;
	}
	*next_lblk = e->e_lblk + e->e_len;
	mark_range(c, e->e_pblk, e->e_len, "extent");
}

static void check_extents(struct fsck *c, uint64_t ino)
{
	const struct udx_dinode *d = &c->itable[ino];
	uint64_t next = 0;
	unsigned i;

	if (!(d->i_flags & UDX_IF_EXT_TREE)) {
		if (d->i_nextents > UDX_INLINE_EXTENTS) {
			report(c, false, "inode %llu: says it has %u inline extents (at most %d fit)",
			       (unsigned long long)ino, d->i_nextents, UDX_INLINE_EXTENTS);
			c->cur_bad = true;
			return;
		}
		for (i = 0; i < d->i_nextents; i++)
			check_extent(c, &d->i_inline.i_ext[i], &next);
		return;
	} else {
		struct btree bt;
		struct bt_cursor cur;
		int ret;

		tree_open(c, ino, UDX_BT_EXTENTS, &bt);
		if (bt_check(&bt, node_block, tree_problem, c, NULL) != 0)
			return;
		for (ret = bt_seek(&bt, 0, &cur); ret == 0; ret = bt_next(&cur)) {
			struct udx_dextent e;

			if (ext_tree_get(&cur, &e)) {
				tree_problem(c, "an extent of the wrong size");
				return;
			}
			check_extent(c, &e, &next);
		}
	}
}

static void check_inode(struct fsck *c, uint64_t ino)
{
	struct udx_dinode *d = &c->itable[ino];
	mode_t m = d->i_mode;
	const char *t;

	c->cur_ino = ino;
	c->cur_blocks = 0;
	c->cur_bad = false;
	if (d->i_checksum != inode_csum(ino, d)) {
		bool fixed = release_inode(c, ino);

		report(c, fixed, "inode %llu is damaged (checksum mismatch)%s",
		       (unsigned long long)ino, fixed ? "; released" : "");
		return;
	}
	t = type_name(m);
	switch (m & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO: case S_IFSOCK:
	case S_IFCHR: case S_IFBLK:
		break;
	default: {
		bool fixed = release_inode(c, ino);

		report(c, fixed, "inode %llu has an unknown file type %#o", (unsigned long long)ino,
		       (unsigned)(m & S_IFMT));
		return;
	}
	}
	c->ok[ino] = 1;
	c->res->inodes++;
	if (S_ISDIR(m))
		c->res->directories++;
	else if (S_ISREG(m))
		c->res->files++;
	if (d->i_flags & ~(UDX_IF_EXT_TREE | UDX_IF_TRUNCATING | UDX_IF_INLINE_LINK))
		report(c, false, "inode %llu (%s) has unknown flags %#x", (unsigned long long)ino,
		       t, d->i_flags);
	if (d->i_size > UDX_MAX_FILE_SIZE)
		report(c, false, "inode %llu (%s) has an impossible size", (unsigned long long)ino, t);
	if (d->i_flags & UDX_IF_TRUNCATING)
		report(c, false, "inode %llu (%s): a truncate was interrupted (mount finishes it)",
		       (unsigned long long)ino, t);
	if (S_ISLNK(m)) {
		if (d->i_size == 0 || d->i_size > UDX_SYMLINK_MAX)
			report(c, false, "symlink %llu has a bad target length %llu",
			       (unsigned long long)ino, (unsigned long long)d->i_size);
		else if ((d->i_flags & UDX_IF_INLINE_LINK) && d->i_size >= UDX_INLINE_BYTES)
			report(c, false, "symlink %llu: its target cannot fit inline",
			       (unsigned long long)ino);
		if (d->i_flags & UDX_IF_INLINE_LINK)
			goto counts;
	}
	if (S_ISDIR(m)) {
		struct btree bt;

		tree_open(c, ino, UDX_BT_DIRENTS, &bt);
		if (bt.bt_root)
			bt_check(&bt, node_block, tree_problem, c, NULL);
	} else if (S_ISREG(m) || S_ISLNK(m)) {
		check_extents(c, ino);
	} else if (d->i_nextents || d->i_root) {
		report(c, false, "%s %llu owns blocks", t, (unsigned long long)ino);
	}
counts:
	if (!c->cur_bad && d->i_blocks != c->cur_blocks) {
		bool fixed = fix_inode(c, ino, set_blocks, c->cur_blocks);

		report(c, fixed, "inode %llu (%s) counts %llu blocks but owns %llu",
		       (unsigned long long)ino, t, (unsigned long long)d->i_blocks,
		       (unsigned long long)c->cur_blocks);
	}
	c->res->blocks_used += c->cur_blocks;
}

static void check_inodes(struct fsck *c)
{
	uint64_t ino;

	for (ino = 1; ino < c->ninodes; ino++) {
		if ((ino & 0xffff) == 0)
			progress(c, "inodes", ino, c->ninodes);
		if (c->imap[ino] == 0)
			continue;
		if (c->imap[ino] != 1) {
			bool fixed = false;

			if (c->o->repair && c->journal_ok) {
				struct udx_tx tx;

				tx_begin(&c->jn, &tx);
				if (tx_log(&tx, &c->imap[ino], 1) == 0) {
					c->imap[ino] = c->itable[ino].i_checksum ==
						       inode_csum(ino, &c->itable[ino]);
					fixed = tx_commit(&tx) == 0;
				} else {
					tx_abort(&tx);
				}
			}
			report(c, fixed, "inode map entry %llu holds %u (0 or 1 expected)",
			       (unsigned long long)ino, c->imap[ino]);
			if (c->imap[ino] != 1)
				continue;
		}
		check_inode(c, ino);
	}
	progress(c, "inodes", c->ninodes, c->ninodes);
	if (c->imap[0] != 0)
		report(c, false, "inode 0 is marked in use");
	if (!c->ok[UDX_ROOT_INO] || !S_ISDIR(c->itable[UDX_ROOT_INO].i_mode))
		report(c, false, "the root directory is missing or damaged");
}

/* ---- phase 4: directories ------------------------------------------------ */

static bool dir_remove_key(struct fsck *c, uint64_t dir, uint64_t key)
{
	struct udx_dinode *d = &c->itable[dir];
	struct udx_tx tx;
	struct btree bt;

	if (!c->o->repair || !c->journal_ok)
		return false;
	tx_begin(&c->jn, &tx);
	tree_open(c, dir, UDX_BT_DIRENTS, &bt);
	bt.bt_tx = &tx;
	if (tx_log(&tx, d, sizeof(*d)) || bt_delete(&bt, key)) {
		tx_abort(&tx);
		return false;
	}
	d->i_root = bt.bt_root;
	d->i_blocks += (uint64_t)bt.bt_nodes;
	d->i_checksum = inode_csum(dir, d);
	return tx_commit(&tx) == 0;
}

static void check_dir(struct fsck *c, uint64_t dir)
{
	struct btree bt;
	struct bt_cursor cur;
	uint64_t bad[64];
	unsigned nbad = 0, i;
	int ret;

	tree_open(c, dir, UDX_BT_DIRENTS, &bt);
	if (bt.bt_root == 0)
		return;
	c->cur_ino = dir;
	c->cur_bad = false;
	for (ret = bt_seek(&bt, 0, &cur); ret == 0; ret = bt_next(&cur)) {
		uint64_t key = bt_key(&cur), ino, h;
		uint16_t vlen;
		const struct udx_ddirent *de = bt_val(&cur, &vlen);
		char name[UDX_NAME_MAX + 1];
		bool drop = false;

		if (vlen < sizeof(*de) || vlen != sizeof(*de) + de->d_namelen || de->d_namelen == 0) {
			report(c, false, "directory %llu: an entry of a bad size", (unsigned long long)dir);
			continue;
		}
		memcpy(name, de->d_name, de->d_namelen);
		name[de->d_namelen] = '\0';
		ino = de->d_ino;
		if (memchr(de->d_name, '/', de->d_namelen) || memchr(de->d_name, '\0', de->d_namelen) ||
		    (de->d_namelen <= 2 && (strcmp(name, ".") == 0 || strcmp(name, "..") == 0))) {
			report(c, false, "directory %llu: an entry with an invalid name", (unsigned long long)dir);
			drop = true;
		}
		h = udx_hash_name(de->d_name, de->d_namelen, c->sb->s_hash_seed);
		if (!drop && (key >> UDX_DIR_MINOR_BITS) != (h >> UDX_DIR_HASH_SHIFT)) {
			report(c, false, "directory %llu: entry '%s' is filed under the wrong hash "
			       "(lookups will not find it)", (unsigned long long)dir, name);
		}
		if (!drop && (ino == 0 || ino >= c->ninodes || !c->ok[ino])) {
			drop = true;
			if (nbad < 64)
				bad[nbad++] = key;
			report(c, c->o->repair && c->journal_ok,
			       "directory %llu: entry '%s' names inode %llu, which is free or damaged%s",
			       (unsigned long long)dir, name, (unsigned long long)ino,
			       c->o->repair ? "; entry removed" : "");
			continue;
		}
		if (drop)
			continue;
		if (de->d_type != IFTODT(c->itable[ino].i_mode))
			report(c, false, "directory %llu: entry '%s' says %s but inode %llu is a %s",
			       (unsigned long long)dir, name,
			       de->d_type == DT_DIR ? "directory" : "another type",
			       (unsigned long long)ino, type_name(c->itable[ino].i_mode));
		c->refs[ino]++;
		if (S_ISDIR(c->itable[ino].i_mode)) {
			c->subdirs[dir]++;
			if (c->parent[ino] && c->parent[ino] != dir)
				report(c, false, "directory %llu has names in two directories (%llu and %llu)",
				       (unsigned long long)ino, (unsigned long long)c->parent[ino],
				       (unsigned long long)dir);
			c->parent[ino] = dir;
		}
	}
	if (ret != -ENOENT && ret != 0)
		report(c, false, "directory %llu: its tree cannot be read to the end",
		       (unsigned long long)dir);
	for (i = 0; i < nbad; i++)
		if (!dir_remove_key(c, dir, bad[i]) && c->o->repair && c->journal_ok)
			c->res->repaired--;     /* reported as repaired, but was not */
}

static void check_dirs(struct fsck *c)
{
	uint64_t ino;

	for (ino = 1; ino < c->ninodes; ino++) {
		if ((ino & 0xffff) == 0)
			progress(c, "directories", ino, c->ninodes);
		if (c->ok[ino] && S_ISDIR(c->itable[ino].i_mode))
			check_dir(c, ino);
	}
	progress(c, "directories", c->ninodes, c->ninodes);
}

/* ---- phase 5: links, orphans, reachability -------------------------------- */

static void check_links(struct fsck *c)
{
	uint64_t ino, unreachable = 0;
	uint8_t *state;

	for (ino = 1; ino < c->ninodes; ino++) {
		struct udx_dinode *d = &c->itable[ino];
		uint64_t want;

		if (!c->ok[ino])
			continue;
		if (S_ISDIR(d->i_mode)) {
			want = 2 + c->subdirs[ino];
			if (ino != UDX_ROOT_INO && c->refs[ino] == 0) {
				bool fixed = d->i_nlink != 0 && release_inode(c, ino);

				report(c, fixed, "directory %llu is in no directory%s", (unsigned long long)ino,
				       fixed ? "; released" : "");
				continue;
			}
			if (d->i_parent != (ino == UDX_ROOT_INO ? UDX_ROOT_INO : c->parent[ino])) {
				bool fixed = fix_inode(c, ino, set_parent,
						       ino == UDX_ROOT_INO ? UDX_ROOT_INO : c->parent[ino]);

				report(c, fixed, "directory %llu records the wrong parent",
				       (unsigned long long)ino);
			}
		} else {
			want = c->refs[ino];
			if (want == 0) {
				bool fixed = release_inode(c, ino);

				report(c, fixed, "inode %llu (%s) is in no directory (an orphan)%s",
				       (unsigned long long)ino, type_name(d->i_mode),
				       fixed ? "; freed" : "");
				continue;
			}
		}
		if (d->i_nlink != want) {
			bool fixed = fix_inode(c, ino, set_nlink, want);

			report(c, fixed, "inode %llu (%s) has link count %u, should be %llu",
			       (unsigned long long)ino, type_name(d->i_mode), d->i_nlink,
			       (unsigned long long)want);
		}
	}
	/* every directory must hang from the root: follow parents, memoised
	 * (state 1 reachable, 2 on the current walk, 3 unreachable) */
	state = calloc(c->ninodes, 1);
	if (state == NULL || !c->ok[UDX_ROOT_INO])
		goto out;
	state[UDX_ROOT_INO] = 1;
	for (ino = 1; ino < c->ninodes; ino++) {
		uint64_t x = ino, y;
		uint8_t result;

		if (!c->ok[ino] || !S_ISDIR(c->itable[ino].i_mode) || state[ino])
			continue;
		while (x != 0 && state[x] == 0) {
			state[x] = 2;
			x = c->parent[x];
		}
		result = (x != 0 && state[x] == 1) ? 1 : 3;
		for (y = ino; y != x && y != 0 && state[y] == 2; y = c->parent[y])
			state[y] = result;
	}
	for (ino = 1; ino < c->ninodes; ino++)
		unreachable += state[ino] == 3;
	if (unreachable)
		report(c, false, "%llu directories cannot be reached from the root",
		       (unsigned long long)unreachable);
out:
	free(state);
}

/* ---- phase 6: the free space checkpoint ------------------------------------ */

/* Count again the blocks of the inodes that survived the repairs. */
static void recount_blocks(struct fsck *c)
{
	uint64_t ino;

	memset(c->used, 0, (c->nblocks + 63) / 64 * sizeof(uint64_t));
	c->quiet = true;
	for (ino = 1; ino < c->ninodes; ino++) {
		const struct udx_dinode *d = &c->itable[ino];

		if (!c->ok[ino])
			continue;
		c->cur_ino = ino;
		if (S_ISDIR(d->i_mode)) {
			struct btree bt;

			tree_open(c, ino, UDX_BT_DIRENTS, &bt);
			if (bt.bt_root)
				bt_check(&bt, node_block, tree_problem, c, NULL);
		} else if (S_ISREG(d->i_mode) ||
			   (S_ISLNK(d->i_mode) && !(d->i_flags & UDX_IF_INLINE_LINK))) {
			check_extents(c, ino);
		}
	}
	c->quiet = false;
}

static void check_bitmap(struct fsck *c)
{
	uint8_t *bm = (uint8_t *)c->base + (c->sb->s_bmap_start << UDX_BLOCK_SHIFT);
	uint64_t n = c->nblocks - 1 - c->data_start, b, diff = 0;
	bool clean = c->sb->s_state == UDX_STATE_CLEAN;

	if (c->tree_damaged) {
		/* blocks under a damaged tree could not be counted: comparing,
		 * or rewriting the map, would only do harm */
		return;
	}
	if (c->released || c->res->repaired)
		recount_blocks(c);      /* repairs may have freed tree nodes */

	for (b = 0; b < n; b++) {
		uint64_t blk = c->data_start + b;
		bool in_use = (c->used[blk / 64] >> (blk % 64)) & 1;
		bool marked = (bm[b / 8] >> (b % 8)) & 1;

		diff += in_use != marked;
	}
	if (clean && diff) {
		report(c, c->o->repair, "the free space map disagrees with the inodes at %llu blocks",
		       (unsigned long long)diff);
	}
	if (c->o->repair && (diff || !clean)) {
		memset(bm, 0, (n + 7) / 8);
		for (b = 0; b < n; b++) {
			uint64_t blk = c->data_start + b;

			if ((c->used[blk / 64] >> (blk % 64)) & 1)
				bm[b / 8] |= (uint8_t)(1u << (b % 8));
		}
		udx_dev_persist(c->dev, bm, (n + 7) / 8);
	}
}

int udx_fsck(struct udx_dev *dev, const struct udx_fsck_opts *opts, struct udx_fsck_result *res)
{
	static const struct udx_fsck_opts none;
	struct udx_fsck_result dummy;
	struct fsck c;
	int ret;

	if (opts == NULL)
		opts = &none;
	if (res == NULL)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	memset(&c, 0, sizeof(c));
	c.dev = dev;
	c.base = udx_dev_addr(dev);
	c.o = opts;
	c.res = res;
	if (opts->repair) {
		struct udx_dev_info info;

		udx_dev_info(dev, &info);
		if (info.rdonly)
			return udx_err(-EROFS, "the device is open read-only; cannot repair");
	}
	ret = check_super(&c);
	if (ret)
		return ret;
	c.used = calloc((c.nblocks + 63) / 64, sizeof(uint64_t));
	c.ok = calloc(c.ninodes, 1);
	c.refs = calloc(c.ninodes, sizeof(uint32_t));
	c.subdirs = calloc(c.ninodes, sizeof(uint32_t));
	c.parent = calloc(c.ninodes, sizeof(uint64_t));
	if (!c.used || !c.ok || !c.refs || !c.subdirs || !c.parent) {
		ret = udx_err(-ENOMEM, "out of memory for %llu inodes", (unsigned long long)c.ninodes);
		goto out;
	}
	check_journal(&c);
	check_inodes(&c);
	check_dirs(&c);
	check_links(&c);
	check_bitmap(&c);
	if (opts->repair && res->problems == res->repaired) {
		/* everything consistent now: the checkpoint is valid */
		c.sb->s_state = UDX_STATE_CLEAN;
		c.sb->s_checksum = sb_csum(c.sb);
		udx_dev_persist(dev, c.sb, UDX_BLOCK_SIZE);
		memcpy(c.base + udx_dev_size(dev) - UDX_BLOCK_SIZE, c.sb, UDX_BLOCK_SIZE);
		udx_dev_persist(dev, c.base + udx_dev_size(dev) - UDX_BLOCK_SIZE, UDX_BLOCK_SIZE);
	}
	ret = res->problems > res->repaired ?
	      udx_err(-EUCLEAN, "%llu problems found, %llu repaired",
		      (unsigned long long)res->problems, (unsigned long long)res->repaired) : 0;
out:
	if (c.journal_ok)
		journal_exit(&c.jn);
	free(c.used);
	free(c.ok);
	free(c.refs);
	free(c.subdirs);
	free(c.parent);
	return ret;
}
