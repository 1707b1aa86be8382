/* SPDX-License-Identifier: MIT */
/*
 * Directories: entries in a B+tree keyed by name hash (format.h), so that
 * lookups stay O(log n) at millions of entries and readdir cookies are
 * stable while the directory changes.
 *
 * Locking: lookups and readdir need the directory's i_rwsem shared; changes
 * need it exclusive, the directory logged in the transaction (inode_log),
 * and the caller seals it before commit.
 */
#include <errno.h>
#include <string.h>

#include "base/err.h"
#include "fs/btree.h"
#include "fs/csum.h"
#include "fs/fs.h"

#define MINOR_MASK ((1ull << UDX_DIR_MINOR_BITS) - 1)

static void dir_tree(struct udx_inode *dir, struct udx_tx *tx, struct btree *bt)
{
	struct udx_fs *fs = dir->i_fs;

	memset(bt, 0, sizeof(*bt));
	bt->bt_base = fs->fs_base;
	bt->bt_nblocks = fs->fs_nblocks;
	bt->bt_root = dir->i_d->i_root;
	bt->bt_owner = dir->i_ino;
	bt->bt_kind = UDX_BT_DIRENTS;
	bt->bt_goal = dir->i_d->i_root;
	bt->bt_tx = tx;
}

/* Ranges the caller logged through the tree's first node log, or, when the
 * operation logged no node, now. */
static int dir_prelog_finish(struct udx_tx *tx, struct btree *bt)
{
	unsigned n = bt->bt_nprelog;

	bt->bt_nprelog = 0;
	return n ? tx_log_many(tx, bt->bt_prelog, n) : 0;
}

/* Store the tree's root and node count in the (logged) directory inode. */
static void dir_tree_sync(struct udx_inode *dir, struct btree *bt)
{
	dir->i_d->i_root = bt->bt_root;
	dir->i_d->i_blocks += (uint64_t)bt->bt_nodes;
	bt->bt_nodes = 0;
}

static uint64_t name_key(struct udx_fs *fs, const char *name, size_t len)
{
	uint64_t h = udx_hash_name(name, len, fs->fs_hash_seed);

	return (h >> UDX_DIR_HASH_SHIFT) << UDX_DIR_MINOR_BITS;
}

unsigned mode_to_dtype(mode_t mode)
{
	return IFTODT(mode);
}

/*
 * Find @name among the entries with its hash.  Returns 0 with *@key set, or
 * -ENOENT with *@free_minor the first minor not in use (or -1 if all are).
 */
static int dir_find(const struct btree *bt, uint64_t base, const char *name, size_t len,
		    uint64_t *key, const struct udx_ddirent **out, int *free_minor)
{
	uint64_t used[(MINOR_MASK + 1) / 64] = { 0 };
	struct bt_cursor c;
	unsigned m;
	int ret;

	for (ret = bt_seek(bt, base, &c); ret == 0; ret = bt_next(&c)) {
		uint64_t k = bt_key(&c);
		uint16_t vlen;
		const struct udx_ddirent *de;

		if (k > (base | MINOR_MASK))
			break;
		de = bt_val(&c, &vlen);
		if (vlen < sizeof(*de) || vlen != sizeof(*de) + de->d_namelen)
			return udx_err(-EUCLEAN, "directory %llu: a damaged entry (run fsck)",
				       (unsigned long long)bt->bt_owner);
		if (de->d_namelen == len && memcmp(de->d_name, name, len) == 0) {
			*key = k;
			if (out)
				*out = de;
			return 0;
		}
		used[(k & MINOR_MASK) / 64] |= 1ull << (k % 64);
	}
	if (ret && ret != -ENOENT)
		return ret;
	if (free_minor) {
		*free_minor = -1;
		for (m = 0; m <= MINOR_MASK; m++) {
			if (!(used[m / 64] & (1ull << (m % 64)))) {
				*free_minor = (int)m;
				break;
			}
		}
	}
	return -ENOENT;
}

int dir_lookup(struct udx_inode *dir, const char *name, size_t len, uint64_t *ino,
	       unsigned *type)
{
	const struct udx_ddirent *de;
	struct btree bt;
	uint64_t key;
	int ret;

	dir_tree(dir, NULL, &bt);
	if (bt.bt_root == 0)
		return -ENOENT;
	ret = dir_find(&bt, name_key(dir->i_fs, name, len), name, len, &key, &de, NULL);
	if (ret)
		return ret;
	*ino = de->d_ino;
	if (type)
		*type = de->d_type;
	return 0;
}

static uint16_t make_dirent(struct udx_ddirent *de, const char *name, size_t len,
			    uint64_t ino, unsigned type)
{
	de->d_ino = ino;
	de->d_type = (uint8_t)type;
	de->d_namelen = (uint8_t)len;
	memcpy(de->d_name, name, len);
	return (uint16_t)(sizeof(*de) + len);
}

int dir_add(struct udx_tx *tx, struct udx_inode *dir, const char *name, size_t len,
	    uint64_t ino, unsigned type, const struct tx_range *pre, unsigned npre)
{
	char buf[sizeof(struct udx_ddirent) + UDX_NAME_MAX];
	struct udx_ddirent *de = (struct udx_ddirent *)buf;
	uint64_t base = name_key(dir->i_fs, name, len), key;
	struct btree bt;
	int ret, minor = 0;

	assert_ilocked(dir);
	dir_tree(dir, tx, &bt);
	if (bt.bt_root) {
		ret = dir_find(&bt, base, name, len, &key, NULL, &minor);
		if (ret == 0)
			return udx_err(-EEXIST, "'%.*s' exists", (int)len, name);
		if (ret != -ENOENT)
			return ret;
		if (minor < 0)
			return udx_err(-ENOSPC, "too many names in this directory share one hash");
	}
	bt.bt_prelog = pre;
	bt.bt_nprelog = npre;
	ret = bt_insert(&bt, base | (uint64_t)minor, de, make_dirent(de, name, len, ino, type));
	if (!ret)
		ret = dir_prelog_finish(tx, &bt);
	dir_tree_sync(dir, &bt);
	return ret;
}

int dir_remove(struct udx_tx *tx, struct udx_inode *dir, const char *name, size_t len,
	       const struct tx_range *pre, unsigned npre)
{
	struct btree bt;
	uint64_t key;
	int ret;

	assert_ilocked(dir);
	dir_tree(dir, tx, &bt);
	if (bt.bt_root == 0)
		return -ENOENT;
	ret = dir_find(&bt, name_key(dir->i_fs, name, len), name, len, &key, NULL, NULL);
	if (ret)
		return ret;
	bt.bt_prelog = pre;
	bt.bt_nprelog = npre;
	ret = bt_delete(&bt, key);
	if (!ret)
		ret = dir_prelog_finish(tx, &bt);
	dir_tree_sync(dir, &bt);
	return ret;
}

/* Point an existing name at another inode (rename over a target). */
int dir_set(struct udx_tx *tx, struct udx_inode *dir, const char *name, size_t len,
	    uint64_t ino, unsigned type, const struct tx_range *pre, unsigned npre)
{
	char buf[sizeof(struct udx_ddirent) + UDX_NAME_MAX];
	struct udx_ddirent *de = (struct udx_ddirent *)buf;
	struct btree bt;
	uint64_t key;
	int ret;

	assert_ilocked(dir);
	dir_tree(dir, tx, &bt);
	if (bt.bt_root == 0)
		return -ENOENT;
	ret = dir_find(&bt, name_key(dir->i_fs, name, len), name, len, &key, NULL, NULL);
	if (ret)
		return ret;
	bt.bt_prelog = pre;
	bt.bt_nprelog = npre;
	ret = bt_update(&bt, key, de, make_dirent(de, name, len, ino, type));
	if (!ret)
		ret = dir_prelog_finish(tx, &bt);
	dir_tree_sync(dir, &bt);
	return ret;
}

int dir_is_empty(struct udx_inode *dir)
{
	struct bt_cursor c;
	struct btree bt;
	int ret;

	dir_tree(dir, NULL, &bt);
	if (bt.bt_root == 0)
		return 1;
	ret = bt_seek(&bt, 0, &c);
	if (ret == -ENOENT)
		return 1;
	return ret ? ret : 0;
}

int dir_destroy(struct udx_tx *tx, struct udx_inode *dir)
{
	struct btree bt;
	int ret;

	dir_tree(dir, tx, &bt);
	if (bt.bt_root == 0)
		return 0;
	ret = bt_destroy(&bt);
	dir_tree_sync(dir, &bt);
	return ret;
}

/*
 * Cookies: 0 start, 1 after ".", 2 after "..", key + 3 resumes at key; the
 * entry with key k is followed by cookie k + 4.
 */
int dir_iterate(struct udx_inode *dir, uint64_t cookie, udx_filldir_t fill, void *arg)
{
	struct bt_cursor c;
	struct btree bt;
	int ret;

	if (cookie == 0) {
		if (fill(arg, ".", 1, dir->i_ino, DT_DIR, 1))
			return 0;
		cookie = 1;
	}
	if (cookie == 1) {
		if (fill(arg, "..", 2, dir->i_d->i_parent, DT_DIR, 2))
			return 0;
		cookie = 2;
	}
	dir_tree(dir, NULL, &bt);
	if (bt.bt_root == 0)
		return 0;
	for (ret = bt_seek(&bt, cookie < 3 ? 0 : cookie - 3, &c); ret == 0; ret = bt_next(&c)) {
		uint64_t k = bt_key(&c);
		uint16_t vlen;
		const struct udx_ddirent *de = bt_val(&c, &vlen);

		if (vlen < sizeof(*de) || vlen != sizeof(*de) + de->d_namelen)
			return udx_err(-EUCLEAN, "directory %llu: a damaged entry (run fsck)",
				       (unsigned long long)dir->i_ino);
		if (fill(arg, de->d_name, de->d_namelen, de->d_ino, de->d_type, k + 4))
			return 0;
	}
	return ret == -ENOENT ? 0 : ret;
}
