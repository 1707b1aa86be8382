/* SPDX-License-Identifier: MIT */
/*
 * The superblock: mkfs, mount (with crash recovery), unmount, sync, statfs.
 *
 * Mount-time recovery, after a crash (superblock state DIRTY):
 *  1. roll back unfinished transactions (journal_recover);
 *  2. rebuild free space from the blocks every in-use inode owns (the
 *     bitmap on the device is only a checkpoint of a clean unmount);
 *  3. free orphans (in-use inodes without links: they were open, or pinned,
 *     when the system went down) and finish interrupted truncates.
 * The superblock is marked DIRTY, durably, before the first transaction of a
 * mount, and CLEAN after the bitmap checkpoint at unmount.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/err.h"
#include "fs/csum.h"
#include "fs/fs.h"
#include "fs/journal.h"

#define MIN_DEV_BLOCKS 4096             /* 16 MiB */
#define DEFAULT_ICACHE 65536

static const struct udx_block_ops fs_block_ops;

int fs_block_alloc(void *ctx, uint64_t want, uint64_t min, uint64_t goal,
		   unsigned flags, uint64_t *blk, uint64_t *got)
{
	struct udx_fs *fs = ctx;

	return alloc_blocks(fs->fs_alloc, want, min, goal, flags, blk, got);
}

/*
 * Freeing blocks that are already free means the metadata is damaged (two
 * inodes claimed the same blocks): say so and leave them alone, rather than
 * corrupt the allocator or abort the program.
 */
void fs_block_free(void *ctx, uint64_t blk, uint64_t len)
{
	struct udx_fs *fs = ctx;

	if (!alloc_range_owned(fs->fs_alloc, blk, len)) {
		if (!__atomic_exchange_n(&fs->fs_errors, true, __ATOMIC_RELAXED))
			fprintf(stderr, "udaxfs: blocks %llu+%llu were freed but are not in use: "
				"the file system is damaged; unmount it and run fsck\n",
				(unsigned long long)blk, (unsigned long long)len);
		return;
	}
	alloc_free(fs->fs_alloc, blk, len);
}

static const struct udx_block_ops fs_block_ops = {
	.alloc = fs_block_alloc,
	.free = fs_block_free,
};

static uint64_t sb_csum(const struct udx_dsuper *sb)
{
	return udx_csum64(sb, offsetof(struct udx_dsuper, s_checksum), 0);
}

static void sb_time(struct udx_dtime *t)
{
	struct timespec ts;

	timespec_now(&ts);
	t->t_sec = (uint64_t)ts.tv_sec;
	t->t_nsec = (uint32_t)ts.tv_nsec;
	t->t_pad = 0;
}

/* Write @sb to the primary (block 0) and, with @backup, to the last block. */
static void sb_write(struct udx_dev *dev, struct udx_dsuper *sb, bool backup)
{
	char *base = udx_dev_addr(dev);
	struct udx_dsuper *last = (struct udx_dsuper *)
		(base + ((sb->s_nblocks - 1) << UDX_BLOCK_SHIFT));

	sb->s_checksum = sb_csum(sb);
	if ((char *)sb != base)
		memcpy(base, sb, sizeof(*sb));
	udx_dev_persist(dev, base, sizeof(*sb));
	if (backup) {
		memcpy(last, base, sizeof(*sb));
		udx_dev_persist(dev, last, sizeof(*sb));
	}
}

/* ---- mkfs ------------------------------------------------------------- */

struct layout {
	uint64_t nblocks, ninodes, jstart, jlane_blocks, imap_start, imap_blocks;
	uint64_t itable_start, itable_blocks, bmap_start, bmap_blocks, data_start;
	unsigned jlanes;
};

static int compute_layout(uint64_t size, const struct udx_mkfs_opts *o, struct layout *l)
{
	uint64_t lane;

	memset(l, 0, sizeof(*l));
	l->nblocks = size >> UDX_BLOCK_SHIFT;
	if (l->nblocks < MIN_DEV_BLOCKS)
		return udx_err(-ENOSPC, "the device is too small (%llu KiB; udaxfs needs 16 MiB)",
			       (unsigned long long)(size >> 10));
	l->ninodes = o->ninodes ? o->ninodes + 1 : MAX(size / (16 << 10), 64ull);
	if (l->ninodes > (1ull << 32))
		return udx_err(-EINVAL, "too many inodes (at most 4294967295)");
	l->jlanes = o->jlanes ? o->jlanes : (size >= (1ull << 30) ? 8 : 4);
	if (l->jlanes > 64)
		return udx_err(-EINVAL, "too many journal lanes (at most 64)");
	lane = o->jlane_size ? o->jlane_size : (size >= (1ull << 30) ? 1u << 20 : 256u << 10);
	if (lane < (64u << 10) || lane > (64u << 20) || lane % UDX_BLOCK_SIZE)
		return udx_err(-EINVAL, "a journal lane must be 64 KiB to 64 MiB, in 4 KiB units");
	l->jlane_blocks = lane >> UDX_BLOCK_SHIFT;
	l->jstart = 1;
	l->imap_start = l->jstart + l->jlanes * l->jlane_blocks;
	l->imap_blocks = (l->ninodes + UDX_BLOCK_SIZE - 1) / UDX_BLOCK_SIZE;
	l->itable_start = l->imap_start + l->imap_blocks;
	l->itable_blocks = (l->ninodes * sizeof(struct udx_dinode) + UDX_BLOCK_SIZE - 1) /
			   UDX_BLOCK_SIZE;
	l->bmap_start = l->itable_start + l->itable_blocks;
	l->bmap_blocks = (l->nblocks / 8 + UDX_BLOCK_SIZE) / UDX_BLOCK_SIZE;
	l->data_start = l->bmap_start + l->bmap_blocks;
	/* data on a 2 MiB boundary, so that aligned extents are huge-mappable */
	if (ALIGN_UP(l->data_start, 512ull) + 1024 < l->nblocks)
		l->data_start = ALIGN_UP(l->data_start, 512ull);
	if (l->data_start + 256 >= l->nblocks)
		return udx_err(-ENOSPC, "the device is too small for %llu inodes",
			       (unsigned long long)l->ninodes);
	return 0;
}

/* Zero the inode and block maps, in pieces, telling opts->progress. */
static void zero_maps(struct udx_dev *dev, const struct udx_mkfs_opts *opts, char *imap,
		      uint64_t ilen, char *bmap, uint64_t blen)
{
	const uint64_t piece = 64ull << 20;
	uint64_t total = ilen + blen, done = 0, n;

	for (; done < total; done += n) {
		char *p = done < ilen ? imap + done : bmap + (done - ilen);

		n = MIN(piece, done < ilen ? ilen - done : total - done);
		udx_dev_memset(dev, p, 0, n, UDX_MEM_NODRAIN);
		if (opts->progress)
			opts->progress(opts->progress_arg, "mkfs", done + n, total);
	}
}

int udx_mkfs(struct udx_dev *dev, const struct udx_mkfs_opts *opts)
{
	static const struct udx_mkfs_opts none;
	struct udx_dev_info info;
	struct udx_dsuper *sb;
	struct udx_dinode *root;
	struct layout l;
	char *base;
	int ret;

	if (opts == NULL)
		opts = &none;
	udx_dev_info(dev, &info);
	if (info.rdonly)
		return udx_err(-EROFS, "the device is open read-only");
	ret = compute_layout(info.size, opts, &l);
	if (ret)
		return ret;
	if (opts->label && strlen(opts->label) >= sizeof(sb->s_label))
		return udx_err(-EINVAL, "a label longer than 63 bytes");
	base = info.addr;

	/* first make any old file system on the device unrecognisable: a crash
	 * in the middle of mkfs must not leave its superblocks over new maps */
	memset(base, 0, UDX_BLOCK_SIZE);
	memset(base + info.size - UDX_BLOCK_SIZE, 0, UDX_BLOCK_SIZE);
	udx_dev_flush(dev, base, UDX_BLOCK_SIZE);
	udx_dev_flush(dev, base + info.size - UDX_BLOCK_SIZE, UDX_BLOCK_SIZE);
	udx_dev_drain(dev);

	/* everything but the inode table (valid only where the map says so)
	 * and the data area starts out zero */
	zero_maps(dev, opts, base + (l.imap_start << UDX_BLOCK_SHIFT), l.imap_blocks << UDX_BLOCK_SHIFT,
		  base + (l.bmap_start << UDX_BLOCK_SHIFT), l.bmap_blocks << UDX_BLOCK_SHIFT);
	udx_dev_flush(dev, base + (l.imap_start << UDX_BLOCK_SHIFT), l.imap_blocks << UDX_BLOCK_SHIFT);
	udx_dev_flush(dev, base + (l.bmap_start << UDX_BLOCK_SHIFT), l.bmap_blocks << UDX_BLOCK_SHIFT);
	journal_format(dev, base, l.jstart, l.jlanes, l.jlane_blocks);

	/* the root directory */
	root = (struct udx_dinode *)(base + (l.itable_start << UDX_BLOCK_SHIFT)) + UDX_ROOT_INO;
	memset(root, 0, sizeof(*root));
	root->i_mode = S_IFDIR | 0755;
	root->i_nlink = 2;
	root->i_uid = (uint32_t)getuid();
	root->i_gid = (uint32_t)getgid();
	root->i_parent = UDX_ROOT_INO;
	root->i_generation = 1;
	sb_time(&root->i_atime);
	root->i_mtime = root->i_ctime = root->i_btime = root->i_atime;
	root->i_checksum = inode_csum(UDX_ROOT_INO, root);
	udx_dev_flush(dev, root, sizeof(*root));
	base[(l.imap_start << UDX_BLOCK_SHIFT) + UDX_ROOT_INO] = 1;
	udx_dev_flush(dev, base + (l.imap_start << UDX_BLOCK_SHIFT), 64);
	udx_dev_drain(dev);

	/* the superblock last: until it is written this is not udaxfs */
	sb = calloc(1, sizeof(*sb));
	if (sb == NULL)
		return udx_err(-ENOMEM, "out of memory");
	memcpy(sb->s_magic, UDX_FORMAT_MAGIC, 8);
	sb->s_version = UDX_FORMAT_VERSION;
	sb->s_block_size = UDX_BLOCK_SIZE;
	if (opts->uuid)
		memcpy(sb->s_uuid, opts->uuid, 16);
	else if (getrandom(sb->s_uuid, 16, 0) != 16)
		memcpy(sb->s_uuid, &info.addr, sizeof(void *));
	sb->s_uuid[6] = (uint8_t)((sb->s_uuid[6] & 0x0f) | (opts->uuid ? sb->s_uuid[6] & 0xf0 : 0x40));
	if (!opts->uuid)
		sb->s_uuid[8] = (uint8_t)((sb->s_uuid[8] & 0x3f) | 0x80);
	if (opts->label)
		strncpy(sb->s_label, opts->label, sizeof(sb->s_label) - 1);
	sb->s_nblocks = l.nblocks;
	sb->s_ninodes = l.ninodes;
	sb->s_jstart = l.jstart;
	sb->s_jlanes = l.jlanes;
	sb->s_jlane_blocks = (uint32_t)l.jlane_blocks;
	sb->s_imap_start = l.imap_start;
	sb->s_imap_blocks = l.imap_blocks;
	sb->s_itable_start = l.itable_start;
	sb->s_itable_blocks = l.itable_blocks;
	sb->s_bmap_start = l.bmap_start;
	sb->s_bmap_blocks = l.bmap_blocks;
	sb->s_data_start = l.data_start;
	sb->s_root_ino = UDX_ROOT_INO;
	if (getrandom(&sb->s_hash_seed, sizeof(sb->s_hash_seed), 0) != sizeof(sb->s_hash_seed))
		sb->s_hash_seed = udx_now_ns();
	sb->s_state = UDX_STATE_CLEAN;
	sb_time(&sb->s_mkfs_time);
	sb_write(dev, sb, true);
	free(sb);
	return 0;
}

/* ---- reading the superblock ---------------------------------------------- */

/* Why @sb is not a usable superblock for a device of @devsize, or NULL. */
static const char *sb_problem(const struct udx_dsuper *sb, uint64_t devsize)
{
	uint64_t nb = devsize >> UDX_BLOCK_SHIFT;
	struct layout l;

	if (memcmp(sb->s_magic, UDX_FORMAT_MAGIC, 8) != 0)
		return "no udaxfs superblock (not udaxfs, or never formatted)";
	if (sb->s_checksum != sb_csum(sb))
		return "the superblock checksum does not match";
	if (sb->s_version != UDX_FORMAT_VERSION)
		return "an unknown format version";
	if (sb->s_block_size != UDX_BLOCK_SIZE)
		return "an unsupported block size";
	if (sb->s_nblocks > nb || sb->s_nblocks < MIN_DEV_BLOCKS)
		return "the superblock's size does not fit the device";
	/* the layout must be the one mkfs computes for these parameters */
	{
		struct udx_mkfs_opts o = { .ninodes = sb->s_ninodes - 1, .jlanes = sb->s_jlanes,
			.jlane_size = (uint64_t)sb->s_jlane_blocks << UDX_BLOCK_SHIFT };

		if (sb->s_ninodes < 2 || sb->s_jlanes == 0 || sb->s_jlane_blocks == 0 ||
		    compute_layout(sb->s_nblocks << UDX_BLOCK_SHIFT, &o, &l) != 0)
			return "impossible sizes in the superblock";
	}
	if (sb->s_jstart != l.jstart || sb->s_imap_start != l.imap_start ||
	    sb->s_imap_blocks != l.imap_blocks || sb->s_itable_start != l.itable_start ||
	    sb->s_itable_blocks != l.itable_blocks || sb->s_bmap_start != l.bmap_start ||
	    sb->s_bmap_blocks != l.bmap_blocks || sb->s_data_start != l.data_start ||
	    sb->s_root_ino != UDX_ROOT_INO)
		return "the superblock's layout is inconsistent";
	if (sb->s_state != UDX_STATE_CLEAN && sb->s_state != UDX_STATE_DIRTY)
		return "an unknown state in the superblock";
	return NULL;
}

static const char *dev_spec(struct udx_dev *dev)
{
	struct udx_dev_info info;

	udx_dev_info(dev, &info);
	return info.spec;
}

/* Find a good superblock: the primary, else the backup in the last block. */
static int sb_find(struct udx_dev *dev, const struct udx_dsuper **out, bool *from_backup)
{
	const char *base = udx_dev_addr(dev), *why, *why2;
	uint64_t size = udx_dev_size(dev);
	const struct udx_dsuper *sb = (const struct udx_dsuper *)base, *bk;

	if (size < MIN_DEV_BLOCKS * (uint64_t)UDX_BLOCK_SIZE)
		return udx_err(-EINVAL, "the device is too small to hold udaxfs");
	why = sb_problem(sb, size);
	if (why == NULL) {
		*out = sb;
		*from_backup = false;
		return 0;
	}
	bk = (const struct udx_dsuper *)(base + size - UDX_BLOCK_SIZE);
	why2 = sb_problem(bk, size);
	if (why2 == NULL) {
		*out = bk;
		*from_backup = true;
		return 0;
	}
	return udx_err(-EINVAL, "%s: %s%s", dev_spec(dev), why,
		       memcmp(sb->s_magic, UDX_FORMAT_MAGIC, 8) == 0 ?
		       " (and the backup superblock is no better; run fsck)" : "");
}

/* Is the backup superblock unusable, or does it describe another layout
 * than the good primary @sb? */
static bool sb_backup_stale(struct udx_dev *dev, const struct udx_dsuper *sb)
{
	uint64_t size = udx_dev_size(dev);
	const struct udx_dsuper *bk = (const struct udx_dsuper *)
		((const char *)udx_dev_addr(dev) + size - UDX_BLOCK_SIZE);

	return sb_problem(bk, size) != NULL || memcmp(bk->s_uuid, sb->s_uuid, sizeof(sb->s_uuid)) ||
	       bk->s_nblocks != sb->s_nblocks || bk->s_ninodes != sb->s_ninodes ||
	       bk->s_hash_seed != sb->s_hash_seed;
}

/* ---- mount ------------------------------------------------------------- */

struct rebuild {
	struct udx_fs *fs;
	int err;
	uint64_t ino;
};

static void rebuild_mark(void *arg, uint64_t blk, uint64_t len)
{
	struct rebuild *rb = arg;
	struct udx_fs *fs = rb->fs;

	if (rb->err)
		return;
	if (blk < fs->fs_data_start || blk >= fs->fs_nblocks - 1 ||
	    len > fs->fs_nblocks - 1 - blk) {
		rb->err = udx_err(-EUCLEAN, "inode %llu owns blocks outside the data area (run fsck)",
				  (unsigned long long)rb->ino);
		return;
	}
	if (alloc_mark_used(fs->fs_alloc, blk, len) != 0)
		rb->err = udx_err(-EUCLEAN, "inode %llu shares blocks with another (run fsck)",
				  (unsigned long long)rb->ino);
}

/* After a crash: every in-use inode's blocks are in use; list the inodes
 * that need finishing. */
static int rebuild_free_space(struct udx_fs *fs, uint64_t **todo, size_t *ntodo)
{
	struct rebuild rb = { fs, 0, 0 };
	size_t cap = 0;
	uint64_t ino;

	*todo = NULL;
	*ntodo = 0;
	for (ino = 1; ino < fs->fs_ninodes; ino++) {
		const struct udx_dinode *d = &fs->fs_itable[ino];

		if (fs->fs_imap[ino] == 0)
			continue;
		if (fs->fs_imap[ino] != 1 || !inode_valid(fs, ino))
			return udx_err(-EUCLEAN, "inode %llu is damaged (run fsck)",
				       (unsigned long long)ino);
		rb.ino = ino;
		if (ext_count_blocks(fs, ino, d, rebuild_mark, &rb) != 0 && !rb.err)
			rb.err = udx_err(-EUCLEAN, "inode %llu has a damaged tree (run fsck)",
					 (unsigned long long)ino);
		if (rb.err)
			return rb.err;
		if (d->i_nlink == 0 || (d->i_flags & UDX_IF_TRUNCATING)) {
			if (*ntodo == cap) {
				uint64_t *p = realloc(*todo, (cap ? cap * 2 : 16) * sizeof(*p));

				if (p == NULL)
					return udx_err(-ENOMEM, "out of memory");
				*todo = p;
				cap = cap ? cap * 2 : 16;
			}
			(*todo)[(*ntodo)++] = ino;
		}
	}
	return 0;
}

/* Free orphans and finish truncates found by the rebuild. */
static int finish_inodes(struct udx_fs *fs, const uint64_t *todo, size_t n)
{
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		struct udx_inode *ip;

		ret = udx_iget(fs, todo[i], &ip);
		if (ret)
			return ret;
		if (ip->i_d->i_nlink == 0) {
			__atomic_fetch_add(&fs->fs_orphans, 1, __ATOMIC_RELAXED);
			udx_iput(ip);           /* the last reference evicts it */
			continue;
		}
		ilock(ip);
		pthread_rwlock_wrlock(&ip->i_mmap_lock);
		ret = file_finish_truncate(ip);
		pthread_rwlock_unlock(&ip->i_mmap_lock);
		iunlock(ip);
		udx_iput(ip);
		if (ret)
			return ret;
	}
	return 0;
}

int udx_mount(struct udx_dev *dev, const struct udx_mount_opts *opts, struct udx_fs **out)
{
	static const struct udx_mount_opts none;
	const struct udx_dsuper *sbs;
	struct udx_dev_info info;
	struct udx_fs *fs;
	uint64_t *todo = NULL;
	size_t ntodo = 0;
	bool backup;
	int ret;

	if (opts == NULL)
		opts = &none;
	udx_dev_info(dev, &info);
	ret = sb_find(dev, &sbs, &backup);
	if (ret)
		return ret;
	if (sbs->s_feature_incompat & ~UDX_FEATURE_INCOMPAT_SUPP)
		return udx_err(-EOPNOTSUPP, "the file system uses features this version lacks");
	fs = calloc(1, sizeof(*fs));
	if (fs == NULL)
		return udx_err(-ENOMEM, "out of memory");
	fs->fs_dev = dev;
	fs->fs_base = info.addr;
	fs->fs_sb = (struct udx_dsuper *)info.addr;
	fs->fs_rdonly = (opts->flags & UDX_MOUNT_RDONLY) || info.rdonly ||
			(sbs->s_feature_ro_compat & ~UDX_FEATURE_RO_COMPAT_SUPP);
	fs->fs_page_gran = info.gran == UDX_GRAN_PAGE;
	/* become the pgmap's holder before touching anything: a second mount
	 * of a mounted device stops here */
	ret = dax_fs_init(fs, opts->pgmap);
	if (ret)
		goto out_free;
	if (backup) {
		if (fs->fs_rdonly) {
			ret = udx_err(-EROFS, "the primary superblock is damaged; mount read-write "
				      "(or run fsck) to restore it from the backup");
			goto out_dax;
		}
		/* The primary was torn or damaged, maybe by a crash while a
		 * mount marked it DIRTY: the backup's state says nothing about
		 * the last mount, so recover whatever it says, and say DIRTY in
		 * the primary before recovery starts, in case it is cut short. */
		memcpy(fs->fs_sb, sbs, sizeof(*sbs));
		fs->fs_sb->s_state = UDX_STATE_DIRTY;
		sb_write(dev, fs->fs_sb, false);
	} else if (!fs->fs_rdonly && sb_backup_stale(dev, sbs)) {
		/* the primary is about to be rewritten in place: a crash that
		 * tears it must find a good backup */
		sb_write(dev, fs->fs_sb, true);
	}
	fs->fs_nblocks = fs->fs_sb->s_nblocks;
	fs->fs_ninodes = fs->fs_sb->s_ninodes;
	fs->fs_data_start = fs->fs_sb->s_data_start;
	fs->fs_imap = (uint8_t *)fs_block(fs, fs->fs_sb->s_imap_start);
	fs->fs_itable = fs_block(fs, fs->fs_sb->s_itable_start);
	fs->fs_hash_seed = fs->fs_sb->s_hash_seed;
	fs->fs_icache_limit = opts->icache_limit ? opts->icache_limit : DEFAULT_ICACHE;
	fs->fs_uid = geteuid();
	fs->fs_gid = getegid();
	pthread_mutex_init(&fs->fs_rename_lock, NULL);
	pthread_mutex_init(&fs->fs_fd_lock, NULL);

	ret = alloc_create(fs->fs_data_start, fs->fs_nblocks - 1 - fs->fs_data_start,
			   &fs->fs_alloc);
	if (ret) {
		ret = ret == -ENOMEM ? udx_err(ret, "out of memory") :
		      udx_err(-EUCLEAN, "the superblock's data area is empty or impossible (run fsck)");
		goto out_dax;
	}
	ret = journal_init(&fs->fs_jn, dev, fs->fs_sb->s_jstart, fs->fs_sb->s_jlanes,
			   fs->fs_sb->s_jlane_blocks, &fs_block_ops, fs);
	if (ret)
		goto out_alloc;
	if (fs->fs_sb->s_state == UDX_STATE_DIRTY) {
		if (fs->fs_rdonly) {
			ret = udx_err(-EROFS, "the file system was not unmounted cleanly and needs "
				      "recovery: mount it read-write (or run fsck)");
			goto out_journal;
		}
		ret = journal_recover(&fs->fs_jn);
		if (ret < 0)
			goto out_journal;
		ret = rebuild_free_space(fs, &todo, &ntodo);
		if (ret)
			goto out_journal;
	} else {
		alloc_load(fs->fs_alloc, fs_block(fs, fs->fs_sb->s_bmap_start));
	}
	if (!inode_valid(fs, UDX_ROOT_INO) || !S_ISDIR(fs->fs_itable[UDX_ROOT_INO].i_mode)) {
		ret = udx_err(-EUCLEAN, "the root directory is damaged (run fsck)");
		goto out_journal;
	}
	ret = inode_numbers_init(fs);
	if (ret)
		goto out_journal;
	inode_cache_init(fs);
	if (!fs->fs_rdonly) {
		fs->fs_sb->s_state = UDX_STATE_DIRTY;
		fs->fs_sb->s_mount_count++;
		sb_time(&fs->fs_sb->s_mount_time);
		sb_write(dev, fs->fs_sb, false);
	}
	fs->fs_jn.jn_active = &fs->fs_active;
	ret = finish_inodes(fs, todo, ntodo);
	free(todo);
	todo = NULL;
	if (ret)
		goto out_cache;
	*out = fs;
	return 0;

out_cache:
	inode_cache_exit(fs);
	free(fs->fs_ino_used);
out_journal:
	journal_exit(&fs->fs_jn);
out_alloc:
	alloc_destroy(fs->fs_alloc);
out_dax:
	dax_fs_exit(fs);
out_free:
	free(todo);
	pthread_mutex_destroy(&fs->fs_rename_lock);
	pthread_mutex_destroy(&fs->fs_fd_lock);
	free(fs);
	return ret;
}

/* ---- unmount ------------------------------------------------------------- */

static int fs_shutdown(struct udx_fs *fs)
{
	int ret = 0;

	if (__atomic_load_n(&fs->fs_revoked, __ATOMIC_ACQUIRE)) {
		/* the device was removed: touch nothing there; the next mount
		 * recovers (the superblock still says DIRTY) */
		ret = 0;
	} else if (!fs->fs_rdonly) {
		ret = inode_flush_all(fs);
		if (fs->fs_page_gran)
			udx_dev_flush(fs->fs_dev, fs->fs_base, fs->fs_nblocks << UDX_BLOCK_SHIFT);
		journal_close(&fs->fs_jn);
		alloc_save(fs->fs_alloc, fs_block(fs, fs->fs_sb->s_bmap_start));
		alloc_save_unowned_free(fs->fs_alloc, fs_block(fs, fs->fs_sb->s_bmap_start));
		udx_dev_persist(fs->fs_dev, fs_block(fs, fs->fs_sb->s_bmap_start),
				fs->fs_sb->s_bmap_blocks << UDX_BLOCK_SHIFT);
		fs->fs_sb->s_state = UDX_STATE_CLEAN;
		sb_time(&fs->fs_sb->s_unmount_time);
		sb_write(fs->fs_dev, fs->fs_sb, true);
	}
	inode_cache_exit(fs);           /* deletes every entry (rule 1) */
	dax_fs_exit(fs);
	free(fs->fs_ino_used);
	pthread_mutex_destroy(&fs->fs_ino_lock);
	journal_exit(&fs->fs_jn);
	alloc_destroy(fs->fs_alloc);
	pthread_mutex_destroy(&fs->fs_rename_lock);
	pthread_mutex_destroy(&fs->fs_fd_lock);
	free(fs->fs_fds);
	free(fs);
	return ret;
}

int udx_unmount(struct udx_fs *fs)
{
	return udx_unmount_wait(fs, 0);
}

int udx_unmount_wait(struct udx_fs *fs, int64_t timeout_ns)
{
	struct timespec ts;
	uint64_t end = timeout_ns > 0 ? udx_now_ns() + (uint64_t)timeout_ns : 0;

	pthread_mutex_lock(&fs->fs_busy_lock);
	while (__atomic_load_n(&fs->fs_busy_inodes, __ATOMIC_ACQUIRE) != 0) {
		if (timeout_ns == 0) {
			pthread_mutex_unlock(&fs->fs_busy_lock);
			return udx_err(-EBUSY, "the file system is busy: %llu inodes are in use "
				       "(open files, handles or pins)",
				       (unsigned long long)__atomic_load_n(&fs->fs_busy_inodes,
									   __ATOMIC_RELAXED));
		}
		if (timeout_ns < 0) {
			pthread_cond_wait(&fs->fs_busy_cv, &fs->fs_busy_lock);
			continue;
		}
		if (udx_now_ns() >= end) {
			pthread_mutex_unlock(&fs->fs_busy_lock);
			return udx_err(-ETIMEDOUT, "inodes still in use after the timeout");
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&fs->fs_busy_cv, &fs->fs_busy_lock, &ts);
	}
	pthread_mutex_unlock(&fs->fs_busy_lock);
	return fs_shutdown(fs);
}

int udx_sync(struct udx_fs *fs)
{
	int ret;

	if (fs->fs_rdonly)
		return 0;
	ret = inode_flush_all(fs);
	if (fs->fs_page_gran)
		udx_dev_flush(fs->fs_dev, fs->fs_base, fs->fs_nblocks << UDX_BLOCK_SHIFT);
	udx_dev_drain(fs->fs_dev);
	return ret;
}

int udx_statfs(struct udx_fs *fs, struct statvfs *st)
{
	struct alloc_stats as;

	alloc_stats(fs->fs_alloc, &as);
	memset(st, 0, sizeof(*st));
	st->f_bsize = UDX_BLOCK_SIZE;
	st->f_frsize = UDX_BLOCK_SIZE;
	st->f_blocks = as.total;
	st->f_bfree = as.free;
	st->f_bavail = as.free;
	st->f_files = fs->fs_ninodes - 1;
	pthread_mutex_lock(&fs->fs_ino_lock);
	st->f_ffree = fs->fs_free_inodes;
	pthread_mutex_unlock(&fs->fs_ino_lock);
	st->f_favail = st->f_ffree;
	memcpy(&st->f_fsid, fs->fs_sb->s_uuid, sizeof(st->f_fsid));
	st->f_namemax = UDX_NAME_MAX;
	st->f_flag = fs->fs_rdonly ? ST_RDONLY : 0;
	return 0;
}

void udx_fs_set_owner(struct udx_fs *fs, uid_t uid, gid_t gid)
{
	WRITE_ONCE(fs->fs_uid, uid);
	WRITE_ONCE(fs->fs_gid, gid);
}

struct udx_dev *udx_fs_dev(struct udx_fs *fs)
{
	return fs->fs_dev;
}

int udx_fs_info(struct udx_dev *dev, struct udx_fs *fs, struct udx_fs_info *info)
{
	const struct udx_dsuper *sb;
	bool backup;
	int ret;

	memset(info, 0, sizeof(*info));
	if (fs) {
		sb = fs->fs_sb;
	} else {
		ret = sb_find(dev, &sb, &backup);
		if (ret)
			return ret;
	}
	memcpy(info->uuid, sb->s_uuid, 16);
	memcpy(info->label, sb->s_label, sizeof(info->label) - 1);
	info->nblocks = sb->s_nblocks;
	info->ninodes = sb->s_ninodes - 1;
	info->data_start = sb->s_data_start;
	info->jlanes = sb->s_jlanes;
	info->jlane_size = (uint64_t)sb->s_jlane_blocks << UDX_BLOCK_SHIFT;
	info->clean = sb->s_state == UDX_STATE_CLEAN;
	info->mount_count = sb->s_mount_count;
	if (fs) {
		struct alloc_stats as;

		alloc_stats(fs->fs_alloc, &as);
		info->free_blocks = as.free;
		info->free_2m = as.free_2m;
		info->free_1g = as.free_1g;
		pthread_mutex_lock(&fs->fs_ino_lock);
		info->free_inodes = fs->fs_free_inodes;
		pthread_mutex_unlock(&fs->fs_ino_lock);
	} else if (info->clean) {
		/* from the checkpoint bitmap and the inode map */
		const uint8_t *bm = (const uint8_t *)udx_dev_addr(dev) +
				    (sb->s_bmap_start << UDX_BLOCK_SHIFT);
		const uint8_t *im = (const uint8_t *)udx_dev_addr(dev) +
				    (sb->s_imap_start << UDX_BLOCK_SHIFT);
		uint64_t n = sb->s_nblocks - 1 - sb->s_data_start, b, used = 0, i;

		for (b = 0; b < n / 8; b++)
			used += (uint64_t)__builtin_popcount(bm[b]);
		for (b = n / 8 * 8; b < n; b++)
			used += (bm[b / 8] >> (b % 8)) & 1;
		info->free_blocks = n - used;
		for (i = 1; i < sb->s_ninodes; i++)
			info->free_inodes += im[i] == 0;
	}
	return 0;
}

void udx_fs_stats(struct udx_fs *fs, struct udx_fs_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->inodes_cached = __atomic_load_n(&fs->fs_cached, __ATOMIC_RELAXED);
	st->inodes_referenced = __atomic_load_n(&fs->fs_busy_inodes, __ATOMIC_RELAXED);
	st->orphans = __atomic_load_n(&fs->fs_orphans, __ATOMIC_RELAXED);
	pthread_mutex_lock(&fs->fs_jn.jn_lock);
	st->tx_commits = fs->fs_jn.jn_commits;
	st->tx_aborts = fs->fs_jn.jn_aborts;
	pthread_mutex_unlock(&fs->fs_jn.jn_lock);
	pthread_mutex_lock(&fs->fs_fd_lock);
	st->open_files = fs->fs_open_files;
	pthread_mutex_unlock(&fs->fs_fd_lock);
	inode_sum_dax(fs, &st->entries, &st->pins, &st->pinned_inodes);
	st->recalls = __atomic_load_n(&fs->fs_recalls, __ATOMIC_RELAXED);
	st->waits = __atomic_load_n(&fs->fs_waits, __ATOMIC_RELAXED);
	st->poison_events = __atomic_load_n(&fs->fs_poison_events, __ATOMIC_RELAXED);
	st->revoked = __atomic_load_n(&fs->fs_revoked, __ATOMIC_ACQUIRE);
	if (!st->revoked || fs->fs_own_pg) {
		struct udx_pgmap_stats ps;

		udx_pgmap_stats(fs->fs_pg, &ps);
		st->live_folios = ps.live_folios;
		st->pgmap_refs = ps.liveref;
	}
}
