/* SPDX-License-Identifier: MIT */
/*
 * iomap: file offset -> device memory, the one path to file data.  The
 * read and write paths (fs/file.c), faults and pins (mapping.c, pin.c) and
 * the public udx_iomap_begin() all translate through iomap_lookup(), and
 * allocate through iomap_prepare().
 */
#include <errno.h>
#include <string.h>

#include "base/err.h"
#include "dax/dax.h"
#include "fs/fs.h"
#include "fs/journal.h"

#define ALLOC_TX_BLOCKS (16384ull)      /* 64 MiB per transaction */

int iomap_lookup(struct udx_inode *ip, uint64_t off, uint64_t len, struct udx_iomap *map)
{
	struct udx_fs *fs = ip->i_fs;
	uint64_t lblk = off >> UDX_BLOCK_SHIFT;
	struct ext_map m;
	uint64_t n;
	int ret;

	ret = ext_lookup(ip, lblk, &m);
	if (ret)
		return ret;
	/* from @lblk to the end of the extent (or hole), at most @len */
	n = m.m_len > (UINT64_MAX >> UDX_BLOCK_SHIFT) ? UINT64_MAX >> UDX_BLOCK_SHIFT : m.m_len;
	map->offset = lblk << UDX_BLOCK_SHIFT;
	map->length = MIN(n << UDX_BLOCK_SHIFT,
			  ALIGN_UP(off + len, (uint64_t)UDX_BLOCK_SIZE) - map->offset);
	map->fresh = false;
	if (m.m_pblk == 0) {
		map->type = UDX_IOMAP_HOLE;
		map->dev_offset = 0;
		map->addr = NULL;
		return 0;
	}
	/* the one path to file memory: a damaged extent map never sends a
	 * load or store outside the data area */
	if (m.m_pblk < fs->fs_data_start || m.m_pblk >= fs->fs_nblocks ||
	    (map->length >> UDX_BLOCK_SHIFT) > fs->fs_nblocks - m.m_pblk) {
		__atomic_store_n(&fs->fs_errors, true, __ATOMIC_RELAXED);
		return udx_err(-EUCLEAN, "inode %llu maps offset %llu outside the data area "
			       "(run fsck)", (unsigned long long)ip->i_ino,
			       (unsigned long long)map->offset);
	}
	map->type = m.m_unwritten ? UDX_IOMAP_UNWRITTEN : UDX_IOMAP_MAPPED;
	map->dev_offset = m.m_pblk << UDX_BLOCK_SHIFT;
	map->addr = fs->fs_base + map->dev_offset;
	if (map->type == UDX_IOMAP_MAPPED &&
	    udx_pgmap_poisoned(fs->fs_pg, map->dev_offset, map->length))
		return udx_err(-EIO, "the file's memory at offset %llu is poisoned",
			       (unsigned long long)map->offset);
	return 0;
}

int iomap_prepare(struct udx_tx *tx, struct udx_inode *ip, uint64_t off, uint64_t len,
		  uint64_t keep_off, uint64_t keep_len)
{
	struct udx_fs *fs = ip->i_fs;
	uint64_t lblk = off >> UDX_BLOCK_SHIFT;
	uint64_t end = (off + len + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT;
	uint64_t k0 = keep_off, k1 = keep_off + keep_len;
	struct ext_map m;
	int ret;

	while (lblk < end) {
		uint64_t n, b0, b1;
		char *p;

		ret = ext_lookup(ip, lblk, &m);
		if (ret)
			return ret;
		if (m.m_pblk != 0 && !m.m_unwritten) {
			lblk += MIN(m.m_len, end - lblk);
			continue;
		}
		n = MIN(m.m_len, end - lblk);
		if (m.m_pblk == 0) {
			ret = ext_alloc(tx, ip, lblk, n, false, &m);
			if (ret)
				return ret;
			n = m.m_len;
		} else {
			ret = ext_convert(tx, ip, lblk, n);
			if (ret)
				return ret;
		}
		/* zero what the caller leaves untouched in blocks [lblk, lblk+n):
		 * [b0, b1) minus [k0, k1) (F1, F2) */
		p = fs_block(fs, m.m_pblk);
		b0 = lblk << UDX_BLOCK_SHIFT;
		b1 = (lblk + n) << UDX_BLOCK_SHIFT;
		if (k1 <= b0 || k0 >= b1) {
			udx_dev_memset(fs->fs_dev, p, 0, b1 - b0, UDX_MEM_NODRAIN);
		} else {
			if (k0 > b0)
				udx_dev_memset(fs->fs_dev, p, 0, k0 - b0, UDX_MEM_NODRAIN);
			if (k1 < b1)
				udx_dev_memset(fs->fs_dev, p + (k1 - b0), 0, b1 - k1,
					       UDX_MEM_NODRAIN);
		}
		if (fs->fs_page_gran)
			udx_dev_flush(fs->fs_dev, p, n << UDX_BLOCK_SHIFT);
		tx_data_written(tx);            /* the zeros, before the commit */
		lblk += n;
	}
	return 0;
}

int iomap_alloc_range(struct udx_inode *ip, uint64_t off, uint64_t len)
{
	struct udx_fs *fs = ip->i_fs;
	uint64_t pos = off & ~(uint64_t)(UDX_BLOCK_SIZE - 1), end = off + len;
	int ret = 0;

	assert_ilocked(ip);
	while (pos < end) {
		uint64_t n = MIN(end - pos, ALLOC_TX_BLOCKS << UDX_BLOCK_SHIFT);
		struct udx_tx tx;

		tx_begin(&fs->fs_jn, &tx);
		ret = inode_log(&tx, ip);
		if (!ret)
			ret = iomap_prepare(&tx, ip, pos, n, 0, 0);
		if (ret) {
			tx_abort(&tx);
			break;
		}
		inode_touch(ip, false, true, true);
		inode_seal(ip);
		ret = tx_commit(&tx);
		if (ret)
			break;
		pos += n;
	}
	dax_invalidate_zero(ip, off >> UDX_BLOCK_SHIFT,
			    (end + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT);
	return ret;
}

int udx_iomap_begin(struct udx_inode *ip, uint64_t off, uint64_t len, unsigned flags,
		    struct udx_iomap *map)
{
	struct udx_fs *fs = ip->i_fs;
	unsigned tries;
	int ret = 0;

	if (IS_DIR(ip))
		return udx_err(-EISDIR, "is a directory");
	if (!IS_REG(ip))
		return udx_err(-EINVAL, "not a regular file");
	if (len == 0 || off >= UDX_MAX_FILE_SIZE || len > UDX_MAX_FILE_SIZE - off)
		return udx_err(-EINVAL, "an empty range, or beyond the largest file");
	if (flags & ~UDX_IOMAP_WRITE)
		return udx_err(-EINVAL, "unknown iomap flags %#x", flags);
	if ((flags & UDX_IOMAP_WRITE) && fs->fs_rdonly)
		return udx_err(-EROFS, "the file system is mounted read-only");
	if (!fs_enter(fs))
		return udx_err(-ENXIO, "the device is being removed");
	for (tries = 0;; tries++) {
		ilock_shared(ip);
		pthread_rwlock_rdlock(&ip->i_mmap_lock);
		ret = iomap_lookup(ip, off, len, map);
		if (ret || !(flags & UDX_IOMAP_WRITE) || map->type == UDX_IOMAP_MAPPED)
			break;
		/* a write over a hole or unwritten blocks: allocate, look again */
		pthread_rwlock_unlock(&ip->i_mmap_lock);
		iunlock(ip);
		if (tries >= 16) {
			fs_exit(fs);
			return udx_err(-EAGAIN, "the range keeps losing its blocks");
		}
		ilock(ip);
		pthread_rwlock_rdlock(&ip->i_mmap_lock);
		if (off + len > ALIGN_UP(ip->i_d->i_size, (uint64_t)UDX_BLOCK_SIZE))
			ret = udx_err(-EINVAL, "a write map beyond the end of the file");
		else
			ret = iomap_alloc_range(ip, map->offset, MIN(map->length, off + len - map->offset));
		pthread_rwlock_unlock(&ip->i_mmap_lock);
		iunlock(ip);
		dax_flush_stale(ip);
		if (ret) {
			fs_exit(fs);
			return ret;
		}
	}
	if (ret) {
		pthread_rwlock_unlock(&ip->i_mmap_lock);
		iunlock(ip);
		fs_exit(fs);
		return ret;
	}
	map->fresh = tries > 0;
	return 0;
}

void udx_iomap_end(struct udx_inode *ip, struct udx_iomap *map)
{
	(void)map;
	pthread_rwlock_unlock(&ip->i_mmap_lock);
	iunlock(ip);
	fs_exit(ip->i_fs);
}
