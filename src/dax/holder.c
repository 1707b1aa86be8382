/* SPDX-License-Identifier: MIT */
/*
 * The mounted file system as its pgmap's holder: it is told of device
 * removal (UDX_MF_PRE_REMOVE) and of memory failure (UDX_MF_POISON).
 *
 * Removal (rules 1-3): set revoked and kill fs_active, so that no new
 * section (transaction, file I/O, fault, pin) starts; wait for the sections
 * in flight; then recall every pin and delete every entry of every cached
 * inode.  The pgmap's teardown then waits on its liveness counter, which
 * the pins' folio references keep up until the last unpin.  From then on
 * the file system does not touch the device: unmount only frees memory.
 *
 * Memory failure: the pgmap has marked the range poisoned (faults and reads
 * there fail with EIO).  The blocks are excluded from the allocator, now if
 * free and when freed otherwise, and the range is traced back to the files
 * that own it (a reverse map built by walking the extent maps of the files
 * in use: rare enough not to keep one on the device), whose pins are told.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "base/err.h"
#include "dax/dax.h"
#include "fs/fs.h"

static void revoke_one(struct udx_inode *ip, void *arg)
{
	(void)arg;
	dax_revoke_inode(ip);
}

static int fs_revoke(struct udx_fs *fs)
{
	if (__atomic_exchange_n(&fs->fs_revoked, true, __ATOMIC_ACQ_REL))
		return 0;
	udx_liveref_kill(&fs->fs_active);
	udx_liveref_put(&fs->fs_active);        /* the initial reference */
	udx_liveref_wait_zero(&fs->fs_active, -1);
	inode_for_each_cached(fs, revoke_one, NULL);
	/* the teardown returns after the last unpin: pins over holes hold no
	 * folio for its counter to wait on, so wait for them here (unpin
	 * signals fs_busy_cv once revoked; the timed wait covers a signal
	 * between the count and the sleep) */
	for (;;) {
		uint64_t entries, pins, pinned;
		struct timespec ts;

		inode_sum_dax(fs, &entries, &pins, &pinned);
		if (pins == 0)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&fs->fs_busy_lock);
		pthread_cond_timedwait(&fs->fs_busy_cv, &fs->fs_busy_lock, &ts);
		pthread_mutex_unlock(&fs->fs_busy_lock);
	}
	return 0;
}

struct poison_ctx {
	uint64_t b0, b1;                /* poisoned blocks [b0, b1) */
	uint64_t hits;
};

/* The file ranges of @ip that map poisoned blocks: tell their pins. */
static void poison_one(struct udx_inode *ip, void *arg)
{
	struct poison_ctx *c = arg;
	uint64_t lblk = 0, end;
	struct ext_map m;

	if (!IS_REG(ip))
		return;
	ilock_shared(ip);
	end = UDX_MAX_FILE_SIZE >> UDX_BLOCK_SHIFT;
	while (lblk < end && ext_lookup(ip, lblk, &m) == 0) {
		uint64_t n = MIN(m.m_len, end - lblk);

		if (m.m_pblk && m.m_pblk < c->b1 && c->b0 < m.m_pblk + n) {
			uint64_t s = MAX(m.m_pblk, c->b0), e = MIN(m.m_pblk + n, c->b1);
			uint64_t fs0 = lblk + (s - m.m_pblk), fs1 = fs0 + (e - s);

			c->hits++;
			iunlock(ip);
			fprintf(stderr, "udaxfs: memory failure: inode %llu, bytes %llu..%llu\n",
				(unsigned long long)ip->i_ino, (unsigned long long)(fs0 << 12),
				(unsigned long long)(fs1 << 12));
			dax_poison_inode(ip, fs0, fs1);
			ilock_shared(ip);
		}
		lblk += n;
	}
	iunlock(ip);
}

static int fs_memory_failure(struct udx_fs *fs, uint64_t off, uint64_t len)
{
	struct poison_ctx c = { off >> UDX_BLOCK_SHIFT,
				(off + len + UDX_BLOCK_SIZE - 1) >> UDX_BLOCK_SHIFT, 0 };
	uint64_t ino;

	fs_count(&fs->fs_poison_events, 1);
	if (c.b1 > fs->fs_nblocks)
		c.b1 = fs->fs_nblocks;
	if (c.b0 >= c.b1)
		return 0;
	if (c.b1 > fs->fs_data_start)
		alloc_exclude(fs->fs_alloc, MAX(c.b0, fs->fs_data_start),
			      c.b1 - MAX(c.b0, fs->fs_data_start));
	if (c.b0 < fs->fs_data_start) {
		__atomic_store_n(&fs->fs_errors, true, __ATOMIC_RELAXED);
		fprintf(stderr, "udaxfs: memory failure in metadata (blocks %llu..%llu): "
			"unmount and run fsck\n", (unsigned long long)c.b0,
			(unsigned long long)c.b1);
	}
	/* the reverse map: every file in use */
	for (ino = UDX_ROOT_INO; ino < fs->fs_ninodes; ino++) {
		struct udx_inode *ip;

		if (READ_ONCE(fs->fs_imap[ino]) != 1 || !S_ISREG(fs->fs_itable[ino].i_mode))
			continue;
		if (udx_iget(fs, ino, &ip))
			continue;
		poison_one(ip, &c);
		udx_iput(ip);
	}
	return 0;
}

static int fs_notify_failure(void *holder, uint64_t offset, uint64_t length, unsigned flags)
{
	struct udx_fs *fs = holder;

	if (flags & UDX_MF_PRE_REMOVE)
		return fs_revoke(fs);
	if (flags & UDX_MF_POISON)
		return fs_memory_failure(fs, offset, length);
	return 0;
}

static const struct udx_holder_ops fs_holder_ops = {
	.notify_failure = fs_notify_failure,
};

int dax_fs_init(struct udx_fs *fs, struct udx_pgmap *pg)
{
	int ret;

	if (pg && udx_pgmap_dev(pg) != fs->fs_dev)
		return udx_err(-EINVAL, "the pgmap belongs to another device");
	if (pg == NULL) {
		ret = udx_memremap(fs->fs_dev, NULL, NULL, &pg);
		if (ret)
			return udx_err(ret, "cannot make the device's pgmap");
		fs->fs_own_pg = true;
	}
	fs->fs_pg = pg;
	ret = udx_pgmap_claim(pg, &fs_holder_ops, fs);
	if (ret) {
		ret = udx_err(-EBUSY, "the device is mounted already (its pgmap has a holder)");
		goto out_pg;
	}
	ret = udx_liveref_init(&fs->fs_active, NULL);
	if (ret) {
		ret = udx_err(ret, "out of memory");
		goto out_unclaim;
	}
	fs->fs_zero = mmap(NULL, DAX_PMD_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fs->fs_zero == MAP_FAILED) {
		fs->fs_zero = NULL;
		ret = udx_err(-ENOMEM, "out of memory for the zero page");
		goto out_ref;
	}
	return 0;

out_ref:
	udx_liveref_exit(&fs->fs_active);
out_unclaim:
	udx_pgmap_unclaim(pg, fs);
out_pg:
	if (fs->fs_own_pg)
		udx_memunmap(pg);
	fs->fs_pg = NULL;
	fs->fs_own_pg = false;
	return ret;
}

void dax_fs_exit(struct udx_fs *fs)
{
	if (fs->fs_pg == NULL)
		return;
	if (!__atomic_load_n(&fs->fs_revoked, __ATOMIC_ACQUIRE)) {
		udx_liveref_kill(&fs->fs_active);
		udx_liveref_put(&fs->fs_active);
		udx_liveref_wait_zero(&fs->fs_active, -1);
	}
	udx_liveref_exit(&fs->fs_active);
	munmap(fs->fs_zero, DAX_PMD_SIZE);
	if (fs->fs_own_pg) {
		udx_pgmap_unclaim(fs->fs_pg, fs);
		udx_memunmap(fs->fs_pg);
	} else if (!__atomic_load_n(&fs->fs_revoked, __ATOMIC_ACQUIRE)) {
		/* after a removal the caller's pgmap may be gone already */
		udx_pgmap_unclaim(fs->fs_pg, fs);
	}
	fs->fs_pg = NULL;
}

struct udx_pgmap *udx_fs_pgmap(struct udx_fs *fs)
{
	return fs->fs_pg;
}
