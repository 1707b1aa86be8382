/* SPDX-License-Identifier: MIT */
/*
 * File data: read, write, truncate, fallocate, fsync, and freeing the
 * blocks of evicted inodes.
 *
 * Invariants kept here:
 *  F1. Bytes of a file's last block beyond its size read as zero: new blocks
 *      are zeroed where a write does not cover them, unwritten extents read
 *      as zero, and a shrinking truncate zeroes (under the journal) the
 *      rest of its new last block.
 *  F2. A write that allocates makes the data (and the zeroed rest of the new
 *      blocks) durable, with a drain of its own, before the transaction that
 *      maps the blocks commits, so after a crash a mapped block never shows
 *      stale contents.
 *  F3. A truncate or punch takes i_rwsem and i_mmap_lock exclusively, and
 *      frees blocks through the journal (J5): no reader copies from a block
 *      after it went back to the allocator.
 */
#include <errno.h>
#include <linux/falloc.h>
#include <string.h>

#include "base/err.h"
#include "fs/fs.h"
#include "fs/journal.h"

#define WRITE_TX_BYTES (64ull << 20)    /* bytes allocated per transaction */
#define PUNCH_BUDGET   64               /* extents freed per transaction */

static int check_file(struct udx_inode *ip)
{
	if (IS_DIR(ip))
		return udx_err(-EISDIR, "is a directory");
	if (!IS_REG(ip))
		return udx_err(-EINVAL, "not a regular file");
	return 0;
}

/* relatime: the access time moves only when it is older than the last
 * change, or a day old. */
static void touch_atime(struct udx_inode *ip)
{
	struct timespec now;
	bool upd;

	timespec_now(&now);
	pthread_mutex_lock(&ip->i_tlock);
	upd = ip->i_atime.tv_sec < ip->i_mtime.tv_sec ||
	      ip->i_atime.tv_sec < ip->i_ctime.tv_sec ||
	      now.tv_sec - ip->i_atime.tv_sec >= 86400;
	if (upd) {
		ip->i_atime = now;
		ip->i_times_dirty = true;
	}
	pthread_mutex_unlock(&ip->i_tlock);
}

ssize_t udx_iread(struct udx_inode *ip, void *buf, size_t len, uint64_t off)
{
	struct udx_fs *fs = ip->i_fs;
	char *out = buf;
	uint64_t size, pos;
	ssize_t ret;

	ret = check_file(ip);
	if (ret)
		return ret;
	if (!fs_enter(fs))
		return udx_err(-ENXIO, "the device is being removed");
	ilock_shared(ip);
	size = ip->i_d->i_size;
	if (off >= size || len == 0) {
		ret = 0;
		goto out;
	}
	len = (size_t)MIN((uint64_t)len, size - off);
	for (pos = off; pos < off + len;) {
		struct udx_iomap map;
		uint64_t n;

		ret = iomap_lookup(ip, pos, off + len - pos, &map);
		if (ret)
			goto out;
		n = MIN(off + len, map.offset + map.length) - pos;
		if (map.type != UDX_IOMAP_MAPPED)
			memset(out + (pos - off), 0, n);
		else
			memcpy(out + (pos - off), (char *)map.addr + (pos - map.offset), n);
		pos += n;
	}
	ret = (ssize_t)len;
	touch_atime(ip);
out:
	iunlock(ip);
	fs_exit(fs);
	return ret;
}

/*
 * Is [off, off + len) mapped by written extents all the way?  Then a write
 * needs no transaction (an overwrite).
 */
static int range_written(struct udx_inode *ip, uint64_t off, uint64_t len)
{
	uint64_t pos = off;
	int ret;

	while (pos < off + len) {
		struct udx_iomap map;

		ret = iomap_lookup(ip, pos, off + len - pos, &map);
		if (ret)
			return ret;
		if (map.type != UDX_IOMAP_MAPPED)
			return 0;
		pos = map.offset + map.length;
	}
	return 1;
}

/* Copy user data into mapped, written blocks of [off, off + len).  On msync
 * devices @flush makes each piece durable now (new blocks, F2). */
static int copy_to_blocks(struct udx_inode *ip, const char *src, uint64_t off, uint64_t len,
			  bool flush)
{
	struct udx_fs *fs = ip->i_fs;
	uint64_t pos;
	int ret;

	for (pos = off; pos < off + len;) {
		struct udx_iomap map;
		uint64_t n;
		char *dst;

		ret = iomap_lookup(ip, pos, off + len - pos, &map);
		if (ret)
			return ret;
		UDX_BUG_ON(map.type != UDX_IOMAP_MAPPED);
		n = MIN(off + len, map.offset + map.length) - pos;
		dst = (char *)map.addr + (pos - map.offset);
		udx_dev_memcpy(fs->fs_dev, dst, src + (pos - off), n, UDX_MEM_NODRAIN);
		if (flush && fs->fs_page_gran)
			udx_dev_flush(fs->fs_dev, dst, n);
		pos += n;
	}
	return 0;
}

/*
 * F1 under a crash: bytes a write puts past the end of the file into the
 * block that holds the end are logged first, so that a rollback of the
 * size change zeroes them again.
 */
static int log_tail(struct udx_tx *tx, struct udx_inode *ip, uint64_t off, uint64_t len)
{
	uint64_t size = ip->i_d->i_size;
	uint64_t tail_end = ALIGN_UP(size, (uint64_t)UDX_BLOCK_SIZE);
	uint64_t a = MAX(off, size), b = MIN(off + len, tail_end);
	struct ext_map m;
	int ret;

	if (a >= b)
		return 0;
	ret = ext_lookup(ip, a >> UDX_BLOCK_SHIFT, &m);
	if (ret || m.m_pblk == 0 || m.m_unwritten)
		return ret;
	return tx_log_data(tx, (char *)fs_block(ip->i_fs, m.m_pblk) + (a & (UDX_BLOCK_SIZE - 1)),
			   (size_t)(b - a));
}

/* One transaction's worth of a write that allocates or extends. */
static int write_tx(struct udx_inode *ip, const char *src, uint64_t off, uint64_t len)
{
	struct udx_fs *fs = ip->i_fs;
	struct udx_tx tx;
	int ret;

	tx_begin(&fs->fs_jn, &tx);
	ret = inode_log(&tx, ip);
	if (!ret)
		ret = log_tail(&tx, ip, off, len);
	if (!ret)
		ret = iomap_prepare(&tx, ip, off, len, off, len);
	if (!ret)
		ret = copy_to_blocks(ip, src, off, len, true);
	if (ret) {
		tx_abort(&tx);
		return ret;
	}
	if (off + len > ip->i_d->i_size)
		ip->i_d->i_size = off + len;
	inode_touch(ip, false, true, true);
	inode_seal(ip);
	/* F2: the data (flushed above) is durable before the commit that maps
	 * it: the commit's own drain would not do, as its content checksum does
	 * not cover file data */
	tx_data_written(&tx);
	ret = tx_commit(&tx);
	if (ret == 0)   /* holes there are not holes any more */
		dax_invalidate_zero(ip, off >> UDX_BLOCK_SHIFT,
				    (off + len + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT);
	return ret;
}

ssize_t udx_iwrite(struct udx_inode *ip, const void *buf, size_t len, uint64_t off,
		   unsigned flags, uint64_t *pos)
{
	struct udx_fs *fs = ip->i_fs;
	const char *src = buf;
	uint64_t done = 0;
	ssize_t ret;

	ret = check_file(ip);
	if (ret)
		return ret;
	if (fs->fs_rdonly)
		return udx_err(-EROFS, "the file system is mounted read-only");
	if (!fs_enter(fs))
		return udx_err(-ENXIO, "the device is being removed");
	ilock(ip);
	pthread_rwlock_rdlock(&ip->i_mmap_lock);
	if (flags & UDX_WRITE_APPEND)
		off = ip->i_d->i_size;
	if (pos)
		*pos = off;
	if (len == 0) {
		ret = 0;
		goto out;
	}
	if (off >= UDX_MAX_FILE_SIZE) {
		ret = udx_err(-EFBIG, "the file would grow beyond %llu bytes",
			      (unsigned long long)UDX_MAX_FILE_SIZE);
		goto out;
	}
	len = (size_t)MIN((uint64_t)len, UDX_MAX_FILE_SIZE - off);

	ret = range_written(ip, off, len);
	if (ret < 0)
		goto out;
	if (ret == 1 && off + len <= ip->i_d->i_size) {
		/* an overwrite: no metadata changes but times */
		ret = copy_to_blocks(ip, src, off, len, false);
		if (ret)
			goto out;
		udx_dev_drain(fs->fs_dev);
		if (fs->fs_page_gran) {
			pthread_mutex_lock(&ip->i_tlock);
			ip->i_data_dirty = true;
			pthread_mutex_unlock(&ip->i_tlock);
		}
		inode_touch(ip, false, true, true);
		done = len;
	} else {
		while (done < len) {
			uint64_t n = MIN(len - done, WRITE_TX_BYTES);

			ret = write_tx(ip, src + done, off + done, n);
			if (ret)
				break;
			done += n;
		}
		if (done == 0)
			goto out;
	}
	ret = (ssize_t)done;
out:
	pthread_rwlock_unlock(&ip->i_mmap_lock);
	iunlock(ip);
	dax_flush_stale(ip);            /* holes it filled, no lock held */
	fs_exit(fs);
	return ret;
}

/* ---- truncate and punch ------------------------------------------------- */

/* Unmap [lblk, end) over as many transactions as it takes.  The inode must
 * be locked (i_rwsem and i_mmap_lock exclusive) or unreachable. */
static int punch_blocks(struct udx_inode *ip, uint64_t lblk, uint64_t end, bool last_clears)
{
	struct udx_fs *fs = ip->i_fs;
	struct udx_tx tx;
	uint64_t done = lblk;
	int ret;

	do {
		tx_begin(&fs->fs_jn, &tx);
		ret = inode_log(&tx, ip);
		if (ret) {
			tx_abort(&tx);
			return ret;
		}
		ret = ext_punch(&tx, ip, done, end, &done, PUNCH_BUDGET);
		if (ret && ret != -EAGAIN) {
			tx_abort(&tx);
			return ret;
		}
		if (ret == 0 && last_clears)
			ip->i_d->i_flags &= (uint16_t)~UDX_IF_TRUNCATING;
		inode_seal(ip);
		if (tx_commit(&tx) != 0)
			return -EIO;
	} while (ret == -EAGAIN);
	return 0;
}

/* Called with i_rwsem and i_mmap_lock exclusive.  @flags: UDX_BREAK_NOWAIT. */
int file_truncate_locked(struct udx_inode *ip, uint64_t size, unsigned flags)
{
	struct udx_fs *fs = ip->i_fs;
	struct udx_dinode *d = ip->i_d;
	uint64_t old = d->i_size, keep;
	struct udx_tx tx;
	int ret;

	if (size > UDX_MAX_FILE_SIZE)
		return udx_err(-EFBIG, "a size beyond %llu bytes", (unsigned long long)UDX_MAX_FILE_SIZE);
	if (size < old) {
		/* F3: nothing may reach the blocks that go (pins, entries) */
		ret = dax_break_layout(ip, (size + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT,
				       UINT64_MAX >> UDX_BLOCK_SHIFT, flags);
		if (ret)
			return ret;
	}
	tx_begin(&fs->fs_jn, &tx);
	ret = inode_log(&tx, ip);
	if (ret)
		goto out_abort;
	if (size < old && (size & (UDX_BLOCK_SIZE - 1))) {
		struct ext_map m;

		/* F1: zero the rest of the new last block, under the journal */
		ret = ext_lookup(ip, size >> UDX_BLOCK_SHIFT, &m);
		if (ret)
			goto out_abort;
		if (m.m_pblk && !m.m_unwritten) {
			char *p = (char *)fs_block(fs, m.m_pblk) + (size & (UDX_BLOCK_SIZE - 1));
			size_t n = UDX_BLOCK_SIZE - (size & (UDX_BLOCK_SIZE - 1));

			ret = tx_log_data(&tx, p, n);
			if (ret)
				goto out_abort;
			memset(p, 0, n);
		}
	}
	d->i_size = size;
	keep = (size + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT;
	if (size < old)
		d->i_flags |= UDX_IF_TRUNCATING;        /* recovery finishes it */
	inode_touch(ip, false, true, true);
	inode_seal(ip);
	ret = tx_commit(&tx);
	if (ret || size >= old)
		return ret;
	/* free the blocks past the end, a bounded number per transaction */
	return punch_blocks(ip, keep, UINT64_MAX, true);

out_abort:
	tx_abort(&tx);
	return ret;
}

/* Recovery: free what an interrupted truncate left past the end. */
int file_finish_truncate(struct udx_inode *ip)
{
	uint64_t keep = (ip->i_d->i_size + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT;

	return punch_blocks(ip, keep, UINT64_MAX, true);
}

int udx_itruncate_flags(struct udx_inode *ip, uint64_t size, unsigned flags)
{
	int ret = check_file(ip);

	if (ret)
		return ret;
	if (ip->i_fs->fs_rdonly)
		return udx_err(-EROFS, "the file system is mounted read-only");
	if (flags & ~UDX_BREAK_NOWAIT)
		return udx_err(-EINVAL, "unknown flags %#x", flags);
	if (__atomic_load_n(&ip->i_fs->fs_revoked, __ATOMIC_ACQUIRE))
		return udx_err(-ENXIO, "the device is being removed");
	/* not one section: the layout break may wait for pins, and removal
	 * waits for sections; the transactions are sections of their own */
	ilock(ip);
	pthread_rwlock_wrlock(&ip->i_mmap_lock);
	ret = file_truncate_locked(ip, size, flags);
	pthread_rwlock_unlock(&ip->i_mmap_lock);
	iunlock(ip);
	return ret;
}

int udx_itruncate(struct udx_inode *ip, uint64_t size)
{
	return udx_itruncate_flags(ip, size, 0);
}

/* Zero [off, off + len) of the file where it is mapped and written, block
 * by block (each block's mapping is its own). */
static int zero_range(struct udx_inode *ip, uint64_t off, uint64_t len)
{
	struct udx_fs *fs = ip->i_fs;
	uint64_t end = off + len;
	int ret;

	while (off < end) {
		uint64_t n = MIN(end - off, UDX_BLOCK_SIZE - (off & (UDX_BLOCK_SIZE - 1)));
		struct ext_map m;

		ret = ext_lookup(ip, off >> UDX_BLOCK_SHIFT, &m);
		if (ret)
			return ret;
		if (m.m_pblk && !m.m_unwritten) {
			char *p = (char *)fs_block(fs, m.m_pblk) + (off & (UDX_BLOCK_SIZE - 1));

			udx_dev_memset(fs->fs_dev, p, 0, n, 0);
			if (fs->fs_page_gran)
				udx_dev_flush(fs->fs_dev, p, n);
		}
		off += n;
	}
	return 0;
}

static int falloc_range(struct udx_inode *ip, uint64_t off, uint64_t len, bool keep_size)
{
	struct udx_fs *fs = ip->i_fs;
	uint64_t lblk = off >> UDX_BLOCK_SHIFT;
	uint64_t end = (off + len + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT;
	struct udx_tx tx;
	struct ext_map m;
	int ret = 0;

	while (lblk < end) {
		uint64_t budget = WRITE_TX_BYTES >> UDX_BLOCK_SHIFT;

		tx_begin(&fs->fs_jn, &tx);
		ret = inode_log(&tx, ip);
		while (!ret && lblk < end && budget > 0) {
			ret = ext_lookup(ip, lblk, &m);
			if (ret)
				break;
			if (m.m_pblk) {
				lblk += MIN(m.m_len, end - lblk);
				continue;
			}
			ret = ext_alloc(&tx, ip, lblk, MIN(MIN(m.m_len, end - lblk), budget), true, &m);
			if (ret)
				break;
			lblk += m.m_len;
			budget -= MIN(budget, m.m_len);
		}
		if (ret) {
			tx_abort(&tx);
			return ret;
		}
		if (!keep_size && lblk >= end && off + len > ip->i_d->i_size)
			ip->i_d->i_size = off + len;
		inode_touch(ip, false, true, true);
		inode_seal(ip);
		ret = tx_commit(&tx);
		if (ret)
			return ret;
	}
	if (!keep_size && off + len > ip->i_d->i_size) {
		/* already allocated all along: only the size moves */
		tx_begin(&fs->fs_jn, &tx);
		ret = inode_log(&tx, ip);
		if (ret) {
			tx_abort(&tx);
			return ret;
		}
		ip->i_d->i_size = off + len;
		inode_seal(ip);
		ret = tx_commit(&tx);
	}
	return ret;
}

/* Punch [off, off + len): whole blocks are unmapped, the partial blocks at
 * either end are zeroed. */
static int punch_hole(struct udx_inode *ip, uint64_t off, uint64_t len, unsigned flags)
{
	uint64_t size = ip->i_d->i_size, end = MIN(off + len, size);
	/* the blocks the range covers whole go (the one holding the end of the
	 * file too, if the range covers all of it); the rest is zeroed */
	uint64_t first = (off + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT;
	uint64_t last = MIN((off + len) >> UDX_BLOCK_SHIFT,
			    (size + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT);
	int ret;

	if (off >= end)
		return 0;
	if (first < last) {
		/* F3: nothing may reach the blocks that go (pins, entries) */
		ret = dax_break_layout(ip, first, last, flags);
		if (ret)
			return ret;
	}
	/* the zeroing stores to the device outside a transaction: a section */
	if (!fs_enter(ip->i_fs))
		return udx_err(-ENXIO, "the device is being removed");
	if (first >= last) {
		/* no whole block inside: zero the range, one or two blocks */
		ret = zero_range(ip, off, end - off);
	} else {
		ret = zero_range(ip, off, (first << UDX_BLOCK_SHIFT) - off);
		if (!ret && end > (last << UDX_BLOCK_SHIFT))
			ret = zero_range(ip, last << UDX_BLOCK_SHIFT, end - (last << UDX_BLOCK_SHIFT));
		if (!ret)
			ret = punch_blocks(ip, first, last, false);
	}
	fs_exit(ip->i_fs);
	if (!ret)
		inode_touch(ip, false, true, true);
	return ret;
}

int udx_ifallocate(struct udx_inode *ip, int mode, uint64_t off, uint64_t len)
{
	return udx_ifallocate_flags(ip, mode, off, len, 0);
}

int udx_ifallocate_flags(struct udx_inode *ip, int mode, uint64_t off, uint64_t len,
			 unsigned flags)
{
	int ret = check_file(ip);

	if (ret)
		return ret;
	if (ip->i_fs->fs_rdonly)
		return udx_err(-EROFS, "the file system is mounted read-only");
	if (len == 0)
		return udx_err(-EINVAL, "a zero length");
	if (off >= UDX_MAX_FILE_SIZE || len > UDX_MAX_FILE_SIZE - off)
		return udx_err(-EFBIG, "beyond the largest file size");
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return udx_err(-EOPNOTSUPP, "fallocate mode %#x is not supported", mode);
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return udx_err(-EINVAL, "a punch must keep the size (FALLOC_FL_KEEP_SIZE)");
	if (flags & ~UDX_BREAK_NOWAIT)
		return udx_err(-EINVAL, "unknown flags %#x", flags);
	if (__atomic_load_n(&ip->i_fs->fs_revoked, __ATOMIC_ACQUIRE))
		return udx_err(-ENXIO, "the device is being removed");
	ilock(ip);
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		pthread_rwlock_wrlock(&ip->i_mmap_lock);
		ret = punch_hole(ip, off, len, flags);
		pthread_rwlock_unlock(&ip->i_mmap_lock);
	} else {
		ret = falloc_range(ip, off, len, mode & FALLOC_FL_KEEP_SIZE);
	}
	iunlock(ip);
	return ret;
}

/* Make a file's data and timestamps durable. */
int udx_ifsync(struct udx_inode *ip, bool datasync)
{
	struct udx_fs *fs = ip->i_fs;
	bool dirty;
	int ret = 0;

	if (fs->fs_rdonly)
		return 0;
	if (!fs_enter(fs))
		return udx_err(-ENXIO, "the device is being removed");
	ilock(ip);
	pthread_mutex_lock(&ip->i_tlock);
	dirty = ip->i_data_dirty;
	ip->i_data_dirty = false;
	pthread_mutex_unlock(&ip->i_tlock);
	if (dirty && IS_REG(ip)) {
		/* msync devices: flush every mapped range of the file */
		uint64_t lblk = 0, end = (ip->i_d->i_size + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT;
		struct ext_map m;

		while (lblk < end && (ret = ext_lookup(ip, lblk, &m)) == 0) {
			uint64_t n = MIN(m.m_len, end - lblk);

			if (m.m_pblk && !m.m_unwritten)
				udx_dev_flush(fs->fs_dev, fs_block(fs, m.m_pblk), n << UDX_BLOCK_SHIFT);
			lblk += n;
		}
	}
	udx_dev_drain(fs->fs_dev);
	if (!ret && !datasync)
		ret = inode_write_times(ip);
	iunlock(ip);
	fs_exit(fs);
	return ret;
}

/*
 * Free a small unlinked inode inside the caller's transaction (unlink's fast
 * path): its blocks and its slot.  Returns -EAGAIN, having changed nothing,
 * when it owns too much for one transaction.
 */
int inode_free_in_tx(struct udx_tx *tx, struct udx_inode *ip)
{
	struct udx_fs *fs = ip->i_fs;
	struct udx_dinode *d = ip->i_d;
	uint64_t done;
	int ret = 0;

	if (d->i_flags & UDX_IF_EXT_TREE)
		return -EAGAIN;
	dax_delete_entries(ip, 0, UINT64_MAX);  /* before its blocks go */
	if (S_ISDIR(d->i_mode))
		ret = dir_destroy(tx, ip);
	else if (!(d->i_flags & UDX_IF_INLINE_LINK) && d->i_nextents)
		ret = ext_punch(tx, ip, 0, UINT64_MAX, &done, UDX_INLINE_EXTENTS + 2);
	if (!ret)
		ret = tx_log(tx, &fs->fs_imap[ip->i_ino], 1);
	if (!ret)
		fs->fs_imap[ip->i_ino] = 0;
	return ret;
}

/* Free everything an unlinked inode owns, then its slot (called by evict,
 * with the inode unreachable).  Over several transactions when large. */
int inode_evict_blocks(struct udx_inode *ip)
{
	struct udx_fs *fs = ip->i_fs;
	struct udx_tx tx;
	int ret = 0;

	dax_delete_entries(ip, 0, UINT64_MAX);  /* before its blocks go */
	if (S_ISDIR(ip->i_d->i_mode) && ip->i_d->i_root) {
		tx_begin(&fs->fs_jn, &tx);
		ret = inode_log(&tx, ip);
		if (!ret)
			ret = dir_destroy(&tx, ip);
		if (ret) {
			tx_abort(&tx);
			return ret;
		}
		inode_seal(ip);
		ret = tx_commit(&tx);
	} else if (!S_ISDIR(ip->i_d->i_mode) && !(ip->i_d->i_flags & UDX_IF_INLINE_LINK) &&
		   (ip->i_d->i_nextents || (ip->i_d->i_flags & UDX_IF_EXT_TREE))) {
		ret = punch_blocks(ip, 0, UINT64_MAX, false);
	}
	if (ret)
		return ret;
	tx_begin(&fs->fs_jn, &tx);
	ret = tx_log(&tx, &fs->fs_imap[ip->i_ino], 1);
	if (ret) {
		tx_abort(&tx);
		return ret;
	}
	fs->fs_imap[ip->i_ino] = 0;
	/* the number is given back by the caller once the struct has left the
	 * cache: a new inode with it must not meet the old one there */
	return tx_commit(&tx);
}
