/* SPDX-License-Identifier: MIT */
/*
 * Names: lookup, create (files, directories, symlinks, special files), link,
 * unlink, rmdir, rename, readlink, getattr and setattr.
 *
 * Each operation that changes the file system is one transaction, begun
 * after every inode it changes is locked (parents before children, two
 * unrelated inodes by number, cross-directory renames under fs_rename_lock)
 * and committed before they are unlocked, so that concurrent transactions
 * never change the same bytes (journal.c, J4).
 */
#include <errno.h>
#include <linux/falloc.h>
#include <string.h>

#include "base/err.h"
#include "fs/fs.h"
#include "fs/journal.h"

#define LINK_MAX_COUNT 65000u

static int check_name(const char *name, size_t *len)
{
	size_t n = strlen(name);

	if (n == 0)
		return udx_err(-ENOENT, "an empty name");
	if (n > UDX_NAME_MAX)
		return udx_err(-ENAMETOOLONG, "a name longer than %d bytes", UDX_NAME_MAX);
	if (memchr(name, '/', n))
		return udx_err(-EINVAL, "a name may not contain '/'");
	*len = n;
	return 0;
}

static bool is_dot(const char *name, size_t len)
{
	return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

static int check_dir(struct udx_inode *dir)
{
	if (!IS_DIR(dir))
		return udx_err(-ENOTDIR, "inode %llu is not a directory",
			       (unsigned long long)dir->i_ino);
	return 0;
}

static int check_rw(struct udx_fs *fs)
{
	return fs->fs_rdonly ? udx_err(-EROFS, "the file system is mounted read-only") : 0;
}

int udx_ilookup(struct udx_inode *dir, const char *name, struct udx_inode **ip)
{
	uint64_t ino;
	size_t len = 0;
	int ret;

	ret = check_dir(dir);
	if (!ret)
		ret = check_name(name, &len);
	if (ret)
		return ret;
	if (len == 1 && name[0] == '.') {
		udx_igrab(dir);
		*ip = dir;
		return 0;
	}
	ilock_shared(dir);
	if (len == 2 && name[0] == '.' && name[1] == '.') {
		ino = dir->i_d->i_parent;
		ret = 0;
	} else {
		ret = dir->i_d->i_nlink == 0 ? -ENOENT : dir_lookup(dir, name, len, &ino, NULL);
	}
	/* the reference is taken while the directory still names the inode:
	 * released, its number could belong to another file by now */
	if (ret == 0)
		ret = udx_iget(dir->i_fs, ino, ip);
	iunlock(dir);
	if (ret == -ENOENT)
		return udx_err(-ENOENT, "'%s' does not exist", name);
	return ret;
}

/* ---- create ------------------------------------------------------------- */

static int write_symlink(struct udx_tx *tx, struct udx_fs *fs, uint64_t ino,
			 const char *target, size_t len)
{
	struct udx_dinode *d = &fs->fs_itable[ino];
	uint64_t blk, got;
	char *p;
	int ret;

	d->i_size = len;
	if (len < UDX_INLINE_BYTES) {
		memcpy(d->i_inline.i_link, target, len);
		d->i_flags |= UDX_IF_INLINE_LINK;
		return 0;
	}
	ret = tx_alloc(tx, 1, 1, 0, 0, &blk, &got);
	if (ret)
		return ret == -ENOSPC ? udx_err(-ENOSPC, "no space left on the device") : ret;
	p = fs_block(fs, blk);
	memset(p, 0, UDX_BLOCK_SIZE);
	memcpy(p, target, len);
	ret = tx_dirty(tx, p, UDX_BLOCK_SIZE);
	if (ret)
		return ret;
	d->i_inline.i_ext[0] = (struct udx_dextent){ 0, blk, 1, 0 };
	d->i_nextents = 1;
	d->i_blocks = 1;
	return 0;
}

int udx_icreate(struct udx_inode *dir, const char *name, mode_t mode, uid_t uid,
		gid_t gid, dev_t rdev, const char *target, struct udx_inode **out)
{
	struct udx_fs *fs = dir->i_fs;
	size_t len = 0, tlen = 0;
	struct udx_inode *ip;
	struct udx_dinode *d;
	struct udx_tx tx;
	uint64_t ino;
	int ret;

	ret = check_rw(fs);
	if (!ret)
		ret = check_dir(dir);
	if (!ret)
		ret = check_name(name, &len);
	if (ret)
		return ret;
	if (is_dot(name, len))
		return udx_err(-EEXIST, "'%s' exists", name);
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		break;
	case S_IFLNK:
		tlen = target ? strlen(target) : 0;
		if (tlen == 0)
			return udx_err(-ENOENT, "an empty symlink target");
		if (tlen > UDX_SYMLINK_MAX)
			return udx_err(-ENAMETOOLONG, "a symlink target longer than %d bytes",
				       UDX_SYMLINK_MAX);
		break;
	default:
		return udx_err(-EINVAL, "unknown file type %#o", (unsigned)(mode & S_IFMT));
	}
	if (S_ISLNK(mode))
		mode = S_IFLNK | 0777;

	ilock(dir);
	if (dir->i_d->i_nlink == 0) {
		ret = udx_err(-ENOENT, "the directory has been removed");
		goto out_unlock;
	}
	/* a set-group-ID directory gives its group to what is made in it, and
	 * its set-group-ID bit to subdirectories (as every Unix file system) */
	if (dir->i_d->i_mode & S_ISGID) {
		gid = dir->i_d->i_gid;
		if (S_ISDIR(mode))
			mode |= S_ISGID;
	}
	/* a name that exists is found by dir_add(), in the transaction: the
	 * callers look up first, so that is the rare case */
	if (S_ISDIR(mode) && dir->i_d->i_nlink >= LINK_MAX_COUNT) {
		ret = udx_err(-EMLINK, "too many subdirectories");
		goto out_unlock;
	}
	ret = inode_reserve(fs, &ino);
	if (ret) {
		uint64_t other;

		/* full, but the name exists: that is the answer a user expects */
		if (dir_lookup(dir, name, len, &other, NULL) == 0)
			ret = udx_err(-EEXIST, "'%s' exists", name);
		goto out_unlock;
	}
	ret = inode_insert_new(fs, ino, &ip);
	if (ret) {
		inode_unreserve(fs, ino);
		goto out_unlock;
	}

	tx_begin(&fs->fs_jn, &tx);
	{
		/* the directory inode and the map byte are logged with the
		 * tree's first undo record: one drain for everything */
		struct tx_range r[2] = {
			{ (char *)dir->i_d, sizeof(*dir->i_d), false },
			{ (char *)&fs->fs_imap[ino], 1, false },
		};

		ret = dir_add(&tx, dir, name, len, ino, mode_to_dtype(mode), r, 2);
	}
	if (!ret)
		ret = inode_init_new(&tx, fs, ino, mode, uid, gid);
	if (ret)
		goto out_abort;
	d = &fs->fs_itable[ino];
	if (S_ISDIR(mode))
		d->i_parent = dir->i_ino;
	if (S_ISCHR(mode) || S_ISBLK(mode))
		d->i_rdev = rdev;
	if (S_ISLNK(mode)) {
		ret = write_symlink(&tx, fs, ino, target, tlen);
		if (ret)
			goto out_abort;
	}
	d->i_checksum = inode_csum(ino, d);
	if (S_ISDIR(mode))
		dir->i_d->i_nlink++;
	inode_touch(dir, false, true, true);
	inode_seal(dir);
	ret = tx_commit(&tx);
	if (ret)
		goto out_new;
	iunlock(dir);
	inode_new_done(ip);
	*out = ip;
	return 0;

out_abort:
	tx_abort(&tx);
out_new:
	inode_new_abort(ip);
	inode_unreserve(fs, ino);
out_unlock:
	iunlock(dir);
	return ret;
}

/* ---- link, unlink, rmdir ------------------------------------------------ */

int udx_ilink(struct udx_inode *ip, struct udx_inode *dir, const char *name)
{
	struct udx_fs *fs = dir->i_fs;
	struct udx_tx tx;
	uint64_t dummy;
	size_t len = 0;
	int ret;

	ret = check_rw(fs);
	if (!ret)
		ret = check_dir(dir);
	if (!ret)
		ret = check_name(name, &len);
	if (ret)
		return ret;
	if (is_dot(name, len))
		return udx_err(-EEXIST, "'%s' exists", name);
	if (IS_DIR(ip))
		return udx_err(-EPERM, "directories cannot have hard links");
	ilock(dir);
	ilock(ip);
	if (dir->i_d->i_nlink == 0)
		ret = udx_err(-ENOENT, "the directory has been removed");
	else if (ip->i_d->i_nlink == 0)
		ret = udx_err(-ENOENT, "the file has been removed");
	else if (ip->i_d->i_nlink >= LINK_MAX_COUNT)
		ret = udx_err(-EMLINK, "too many links to the file");
	else if ((ret = dir_lookup(dir, name, len, &dummy, NULL)) == 0)
		ret = udx_err(-EEXIST, "'%s' exists", name);
	else if (ret == -ENOENT)
		ret = 0;
	if (ret)
		goto out_unlock;
	tx_begin(&fs->fs_jn, &tx);
	{
		struct tx_range r[2] = {
			{ (char *)dir->i_d, sizeof(*dir->i_d), false },
			{ (char *)ip->i_d, sizeof(*ip->i_d), false },
		};

		ret = dir_add(&tx, dir, name, len, ip->i_ino, mode_to_dtype(inode_mode(ip)), r, 2);
	}
	if (ret) {
		tx_abort(&tx);
		goto out_unlock;
	}
	ip->i_d->i_nlink++;
	inode_touch(ip, false, false, true);
	inode_touch(dir, false, true, true);
	inode_seal(ip);
	inode_seal(dir);
	ret = tx_commit(&tx);
out_unlock:
	iunlock(ip);
	iunlock(dir);
	return ret;
}

/* Remove @name from @dir: a non-directory (@want_dir false) or an empty
 * directory (@want_dir true). */
static int remove_name(struct udx_inode *dir, const char *name, bool want_dir)
{
	struct udx_fs *fs = dir->i_fs;
	bool claimed = false, freed = false;
	struct udx_inode *ip;
	struct udx_tx tx;
	uint64_t ino;
	size_t len = 0;
	int ret;

	ret = check_rw(fs);
	if (!ret)
		ret = check_dir(dir);
	if (!ret)
		ret = check_name(name, &len);
	if (ret)
		return ret;
	if (is_dot(name, len)) {
		if (!want_dir)
			return udx_err(-EISDIR, "'%s' is a directory", name);
		return len == 1 ? udx_err(-EINVAL, "cannot remove '.'") :
				  udx_err(-ENOTEMPTY, "cannot remove '..'");
	}
	ilock(dir);
	ret = dir->i_d->i_nlink == 0 ? -ENOENT : dir_lookup(dir, name, len, &ino, NULL);
	if (ret) {
		if (ret == -ENOENT)
			ret = udx_err(-ENOENT, "'%s' does not exist", name);
		goto out_dir;
	}
	ret = udx_iget(fs, ino, &ip);
	if (ret)
		goto out_dir;
	ilock(ip);
	if (want_dir && !IS_DIR(ip)) {
		ret = udx_err(-ENOTDIR, "'%s' is not a directory", name);
		goto out_ip;
	}
	if (!want_dir && IS_DIR(ip)) {
		ret = udx_err(-EISDIR, "'%s' is a directory", name);
		goto out_ip;
	}
	if (want_dir) {
		ret = dir_is_empty(ip);
		if (ret == 0)
			ret = udx_err(-ENOTEMPTY, "'%s' is not empty", name);
		if (ret < 0)
			goto out_ip;
	}
	/* the last link of an inode nobody else holds: free it right here,
	 * in the same transaction, instead of in a second one at iput */
	claimed = (want_dir || ip->i_d->i_nlink == 1) && inode_claim_last(ip);
	tx_begin(&fs->fs_jn, &tx);
	{
		struct tx_range r[3] = {
			{ (char *)dir->i_d, sizeof(*dir->i_d), false },
			{ (char *)ip->i_d, sizeof(*ip->i_d), false },
			{ (char *)&fs->fs_imap[ip->i_ino], 1, false },      /* if it goes */
		};

		ret = dir_remove(&tx, dir, name, len, r, claimed ? 3 : 2);
	}
	if (ret) {
		tx_abort(&tx);
		goto out_ip;
	}
	if (want_dir) {
		dir->i_d->i_nlink--;
		inode_set_nlink(ip, 0);
	} else {
		inode_set_nlink(ip, ip->i_d->i_nlink - 1);
	}
	if (claimed) {
		ret = inode_free_in_tx(&tx, ip);
		if (ret == -EAGAIN)
			ret = 0;                /* too big: evicted at iput */
		else if (ret == 0)
			freed = true;
		if (ret) {
			tx_abort(&tx);
			goto out_ip;
		}
	}
	inode_touch(ip, false, false, true);
	inode_touch(dir, false, true, true);
	inode_seal(ip);
	inode_seal(dir);
	ret = tx_commit(&tx);
	if (ret)
		freed = false;
out_ip:
	iunlock(ip);
	iunlock(dir);
	if (claimed)
		inode_claim_done(ip, freed);
	else
		udx_iput(ip);           /* the last one frees an unlinked inode */
	return ret;
out_dir:
	iunlock(dir);
	return ret;
}

int udx_iunlink(struct udx_inode *dir, const char *name)
{
	return remove_name(dir, name, false);
}

int udx_irmdir(struct udx_inode *dir, const char *name)
{
	return remove_name(dir, name, true);
}

/* ---- rename --------------------------------------------------------- */

/* Is @dir @anc or below it?  fs_rename_lock held (ancestry is stable). */
static bool is_below(struct udx_fs *fs, uint64_t dir, uint64_t anc)
{
	unsigned depth = 0;

	while (depth++ < 100000) {
		if (dir == anc)
			return true;
		if (dir == UDX_ROOT_INO || dir == 0 || dir >= fs->fs_ninodes)
			return false;
		dir = READ_ONCE(fs->fs_itable[dir].i_parent);
	}
	return true;            /* a cycle: refuse the rename */
}

static void lock_two(struct udx_inode *a, struct udx_inode *b)
{
	if (a == b || b == NULL) {
		ilock(a);
	} else if (a->i_ino < b->i_ino) {
		ilock(a);
		ilock(b);
	} else {
		ilock(b);
		ilock(a);
	}
}

static void unlock_two(struct udx_inode *a, struct udx_inode *b)
{
	iunlock(a);
	if (b && b != a)
		iunlock(b);
}

int udx_irename(struct udx_inode *odir, const char *oname, struct udx_inode *ndir,
		const char *nname, unsigned flags)
{
	struct udx_fs *fs = odir->i_fs;
	struct udx_inode *src = NULL, *tgt = NULL;
	bool cross = odir != ndir, sdir, tdir = false;
	uint64_t sino, tino;
	size_t olen = 0, nlen = 0;
	struct udx_tx tx;
	int ret;

	ret = check_rw(fs);
	if (!ret)
		ret = check_dir(odir);
	if (!ret)
		ret = check_dir(ndir);
	if (!ret)
		ret = check_name(oname, &olen);
	if (!ret)
		ret = check_name(nname, &nlen);
	if (ret)
		return ret;
	if ((flags & ~(UDX_RENAME_NOREPLACE | UDX_RENAME_EXCHANGE)) ||
	    ((flags & UDX_RENAME_NOREPLACE) && (flags & UDX_RENAME_EXCHANGE)))
		return udx_err(-EINVAL, "bad rename flags %#x", flags);
	if (is_dot(oname, olen) || is_dot(nname, nlen))
		return udx_err(is_dot(nname, nlen) && !is_dot(oname, olen) ? -EEXIST : -EINVAL,
			       "cannot rename '.' or '..'");

	if (cross) {
		pthread_mutex_lock(&fs->fs_rename_lock);
		if (is_below(fs, ndir->i_ino, odir->i_ino)) {
			ilock(odir);
			ilock(ndir);
		} else if (is_below(fs, odir->i_ino, ndir->i_ino)) {
			ilock(ndir);
			ilock(odir);
		} else {
			lock_two(odir, ndir);
		}
	} else {
		ilock(odir);
	}
	if (odir->i_d->i_nlink == 0 || ndir->i_d->i_nlink == 0) {
		ret = udx_err(-ENOENT, "the directory has been removed");
		goto out_dirs;
	}
	ret = dir_lookup(odir, oname, olen, &sino, NULL);
	if (ret) {
		if (ret == -ENOENT)
			ret = udx_err(-ENOENT, "'%s' does not exist", oname);
		goto out_dirs;
	}
	ret = dir_lookup(ndir, nname, nlen, &tino, NULL);
	if (ret && ret != -ENOENT)
		goto out_dirs;
	if (ret == -ENOENT)
		tino = 0;
	if ((flags & UDX_RENAME_EXCHANGE) && tino == 0) {
		ret = udx_err(-ENOENT, "'%s' does not exist", nname);
		goto out_dirs;
	}
	if ((flags & UDX_RENAME_NOREPLACE) && tino != 0) {
		ret = udx_err(-EEXIST, "'%s' exists", nname);
		goto out_dirs;
	}
	if (sino == tino) {             /* two names of one inode: nothing to do */
		ret = 0;
		goto out_dirs;
	}
	ret = udx_iget(fs, sino, &src);
	if (!ret && tino)
		ret = udx_iget(fs, tino, &tgt);
	if (ret)
		goto out_dirs;
	sdir = IS_DIR(src);
	tdir = tgt && IS_DIR(tgt);
	/* a target that is an ancestor of the source is not empty (and locking
	 * it after its descendants would invert the lock order) */
	if (tdir && (tgt == odir || (cross && is_below(fs, odir->i_ino, tgt->i_ino)))) {
		ret = (flags & UDX_RENAME_EXCHANGE) ?
		      udx_err(-EINVAL, "cannot exchange a directory with one below it") :
		      udx_err(-ENOTEMPTY, "'%s' is not empty", nname);
		goto out_inodes;
	}
	/* no directory may move below itself */
	if (cross && ((sdir && is_below(fs, ndir->i_ino, src->i_ino)) ||
		      ((flags & UDX_RENAME_EXCHANGE) && tdir &&
		       is_below(fs, odir->i_ino, tgt->i_ino)))) {
		ret = udx_err(-EINVAL, "cannot move a directory below itself");
		goto out_inodes;
	}
	if (tgt && !(flags & UDX_RENAME_EXCHANGE)) {
		if (sdir && !tdir) {
			ret = udx_err(-ENOTDIR, "'%s' is not a directory", nname);
			goto out_inodes;
		}
		if (!sdir && tdir) {
			ret = udx_err(-EISDIR, "'%s' is a directory", nname);
			goto out_inodes;
		}
	}
	lock_two(src, tgt);
	if (tdir && !(flags & UDX_RENAME_EXCHANGE)) {
		ret = dir_is_empty(tgt);
		if (ret == 0)
			ret = udx_err(-ENOTEMPTY, "'%s' is not empty", nname);
		if (ret < 0)
			goto out_children;
	}
	if (cross && !(flags & UDX_RENAME_EXCHANGE) && sdir && !tgt &&
	    ndir->i_d->i_nlink >= LINK_MAX_COUNT) {
		ret = udx_err(-EMLINK, "too many subdirectories");
		goto out_children;
	}

	tx_begin(&fs->fs_jn, &tx);
	ret = tx_log_inodes(&tx, odir, cross ? ndir : NULL, src, tgt);
	if (ret)
		goto out_abort;
	/* (renames are rarer: the inodes take their own drain) */
	if (flags & UDX_RENAME_EXCHANGE) {
		ret = dir_set(&tx, odir, oname, olen, tgt->i_ino, mode_to_dtype(inode_mode(tgt)),
			      NULL, 0);
		if (!ret)
			ret = dir_set(&tx, ndir, nname, nlen, src->i_ino,
				      mode_to_dtype(inode_mode(src)), NULL, 0);
		if (ret)
			goto out_abort;
		if (cross) {
			if (sdir) {
				src->i_d->i_parent = ndir->i_ino;
				odir->i_d->i_nlink--;
				ndir->i_d->i_nlink++;
			}
			if (tdir) {
				tgt->i_d->i_parent = odir->i_ino;
				ndir->i_d->i_nlink--;
				odir->i_d->i_nlink++;
			}
		}
	} else {
		ret = dir_remove(&tx, odir, oname, olen, NULL, 0);
		if (!ret && tgt)
			ret = dir_set(&tx, ndir, nname, nlen, src->i_ino,
				      mode_to_dtype(inode_mode(src)), NULL, 0);
		else if (!ret)
			ret = dir_add(&tx, ndir, nname, nlen, src->i_ino,
				      mode_to_dtype(inode_mode(src)), NULL, 0);
		if (ret)
			goto out_abort;
		if (tgt) {
			if (tdir) {
				inode_set_nlink(tgt, 0);
				ndir->i_d->i_nlink--;           /* its ".." */
			} else {
				inode_set_nlink(tgt, tgt->i_d->i_nlink - 1);
			}
		}
		if (sdir) {
			src->i_d->i_parent = ndir->i_ino;
			if (cross) {
				odir->i_d->i_nlink--;
				ndir->i_d->i_nlink++;
			}
		}
	}
	inode_touch(src, false, false, true);
	if (tgt)
		inode_touch(tgt, false, false, true);
	inode_touch(odir, false, true, true);
	if (cross)
		inode_touch(ndir, false, true, true);
	inode_seal(src);
	if (tgt)
		inode_seal(tgt);
	inode_seal(odir);
	if (cross)
		inode_seal(ndir);
	ret = tx_commit(&tx);
	goto out_children;

out_abort:
	tx_abort(&tx);
out_children:
	unlock_two(src, tgt);
out_inodes:
	udx_iput(src);
	if (tgt)
		udx_iput(tgt);
	src = tgt = NULL;
out_dirs:
	if (cross) {
		iunlock(ndir);
		iunlock(odir);
		pthread_mutex_unlock(&fs->fs_rename_lock);
	} else {
		iunlock(odir);
	}
	return ret;
}

/* ---- symlinks and attributes ------------------------------------------- */

ssize_t udx_ireadlink(struct udx_inode *ip, char *buf, size_t size)
{
	const struct udx_dinode *d = ip->i_d;
	struct ext_map m;
	size_t len, n;
	const char *src;
	int ret;

	if (!IS_LNK(ip))
		return udx_err(-EINVAL, "not a symbolic link");
	ilock_shared(ip);
	len = d->i_size;
	if (len > UDX_SYMLINK_MAX) {
		ret = udx_err(-EUCLEAN, "symlink %llu has a bad length (run fsck)",
			      (unsigned long long)ip->i_ino);
		goto out;
	}
	if (d->i_flags & UDX_IF_INLINE_LINK) {
		src = d->i_inline.i_link;
	} else {
		ret = ext_lookup(ip, 0, &m);
		if (ret)
			goto out;
		if (m.m_pblk == 0) {
			ret = udx_err(-EUCLEAN, "symlink %llu has no target block (run fsck)",
				      (unsigned long long)ip->i_ino);
			goto out;
		}
		src = fs_block(ip->i_fs, m.m_pblk);
	}
	n = MIN(len, size);
	memcpy(buf, src, n);
	if (n < size)
		buf[n] = '\0';
	ret = (int)len;
out:
	iunlock(ip);
	return ret;
}

int udx_igetattr(struct udx_inode *ip, struct stat *st)
{
	const struct udx_dinode *d = ip->i_d;

	memset(st, 0, sizeof(*st));
	ilock_shared(ip);
	st->st_ino = ip->i_ino;
	st->st_mode = d->i_mode;
	st->st_nlink = d->i_nlink;
	st->st_uid = d->i_uid;
	st->st_gid = d->i_gid;
	st->st_rdev = (dev_t)d->i_rdev;
	st->st_size = S_ISDIR(d->i_mode) ? (off_t)(MAX(d->i_blocks, 1ull) * UDX_BLOCK_SIZE) :
					    (off_t)d->i_size;
	st->st_blksize = UDX_BLOCK_SIZE;
	st->st_blocks = (blkcnt_t)(d->i_blocks * (UDX_BLOCK_SIZE / 512));
	iunlock(ip);
	inode_times(ip, &st->st_atim, &st->st_mtim, &st->st_ctim);
	return 0;
}

static void resolve_time(const struct timespec *in, struct timespec *out)
{
	if (in->tv_nsec == UTIME_NOW)
		timespec_now(out);
	else
		*out = *in;
}

int udx_isetattr(struct udx_inode *ip, const struct stat *st, unsigned which)
{
	struct udx_fs *fs = ip->i_fs;
	struct udx_tx tx;
	int ret;

	ret = check_rw(fs);
	if (ret)
		return ret;
	if (which & UDX_SET_SIZE) {
		if (IS_DIR(ip))
			return udx_err(-EISDIR, "cannot truncate a directory");
		if (!IS_REG(ip))
			return udx_err(-EINVAL, "only regular files have a size to set");
		if (st->st_size < 0)
			return udx_err(-EINVAL, "a negative size");
		ret = udx_itruncate(ip, (uint64_t)st->st_size);
		if (ret)
			return ret;
	}
	which &= ~UDX_SET_SIZE;
	if (which == 0)
		return 0;
	ilock(ip);
	tx_begin(&fs->fs_jn, &tx);
	ret = inode_log(&tx, ip);
	if (ret) {
		tx_abort(&tx);
		goto out;
	}
	if (which & UDX_SET_MODE)
		ip->i_d->i_mode = (uint16_t)((ip->i_d->i_mode & S_IFMT) | (st->st_mode & 07777));
	if (which & UDX_SET_UID)
		ip->i_d->i_uid = (uint32_t)st->st_uid;
	if (which & UDX_SET_GID)
		ip->i_d->i_gid = (uint32_t)st->st_gid;
	pthread_mutex_lock(&ip->i_tlock);
	if ((which & UDX_SET_ATIME) && st->st_atim.tv_nsec != UTIME_OMIT)
		resolve_time(&st->st_atim, &ip->i_atime);
	if ((which & UDX_SET_MTIME) && st->st_mtim.tv_nsec != UTIME_OMIT)
		resolve_time(&st->st_mtim, &ip->i_mtime);
	if (which & UDX_SET_CTIME)
		resolve_time(&st->st_ctim, &ip->i_ctime);
	else
		timespec_now(&ip->i_ctime);
	ip->i_times_dirty = true;
	pthread_mutex_unlock(&ip->i_tlock);
	inode_seal(ip);
	ret = tx_commit(&tx);
out:
	iunlock(ip);
	return ret;
}
