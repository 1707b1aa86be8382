/* SPDX-License-Identifier: MIT */
/*
 * The undo journal.
 *
 * Crash invariants (the crash tests in tests/test_crash.c are organised by
 * these numbers):
 *
 *  J1. An undo record is durable before the first store to its range: tx_log
 *      appends the old bytes, flushes and drains, and only then returns.
 *  J2. Every range a transaction changed (logged ranges and ranges written in
 *      blocks it allocated) is durable before its commit word: tx_commit
 *      flushes them all and drains before it stores j_done_gen.
 *  J3. The commit word is one aligned 8-byte store.  Before it is durable the
 *      transaction's records are valid (their checksum carries the
 *      generation) and roll it back; after, they are ignored.
 *  J4. Transactions in flight at the same time change disjoint ranges (the
 *      callers' locks), so each lane rolls back on its own, in reverse order
 *      of its records, and the order of lanes does not matter.
 *  J5. Blocks a transaction frees reach the allocator only after its commit
 *      word is durable; blocks it allocated go back if it aborts.  A block is
 *      never reused while the transaction that freed it could still roll
 *      back.
 *  J6. Rollback is idempotent: a crash during recovery (or during
 *      tx_abort) rolls back again to the same bytes, and the commit word is
 *      written only after the rolled-back ranges are durable.
 *
 * Record format: struct udx_jrec (format.h) followed by r_len bytes, the
 * whole padded to 64 bytes; records start at offset 64 of the lane.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/compiler.h"
#include "base/err.h"
#include "fs/csum.h"
#include "fs/journal.h"

#define JREC_ALIGN 64u

static struct udx_jrec *lane_rec(struct jlane *jl, uint64_t pos)
{
	return (struct udx_jrec *)(jl->jl_area + pos);
}

/* r_checksum covers the record from r_gen to the end of its data. */
static uint64_t jrec_csum(const struct udx_jrec *r)
{
	return udx_csum3(&r->r_gen, sizeof(*r) - offsetof(struct udx_jrec, r_gen) + r->r_len);
}

void journal_format(const struct udx_dev *dev, char *base, uint64_t jstart_blk,
		    unsigned nlanes, uint64_t lane_blocks)
{
	unsigned i;

	for (i = 0; i < nlanes; i++) {
		char *area = base + ((jstart_blk + i * lane_blocks) << UDX_BLOCK_SHIFT);
		struct udx_jlane *h = (struct udx_jlane *)area;

		memset(h, 0, sizeof(*h));
		h->j_magic = UDX_JLANE_MAGIC;
		h->j_done_gen = 0;
		/* a stale record with gen 1 must not survive from an old fs */
		memset(area + JREC_ALIGN, 0, sizeof(struct udx_jrec));
		udx_dev_flush(dev, area, JREC_ALIGN + sizeof(struct udx_jrec));
	}
	udx_dev_drain(dev);
}

int journal_init(struct udx_journal *jn, const struct udx_dev *dev,
		 uint64_t jstart_blk, unsigned nlanes, uint64_t lane_blocks,
		 const struct udx_block_ops *bops, void *bctx)
{
	unsigned i;

	memset(jn, 0, sizeof(*jn));
	jn->jn_dev = dev;
	jn->jn_base = udx_dev_addr(dev);
	jn->jn_dev_size = udx_dev_size(dev);
	jn->jn_nlanes = nlanes;
	jn->jn_bops = bops;
	jn->jn_bctx = bctx;
	jn->jn_lanes = calloc(nlanes, sizeof(*jn->jn_lanes));
	if (jn->jn_lanes == NULL)
		return udx_err(-ENOMEM, "out of memory");
	for (i = 0; i < nlanes; i++) {
		struct jlane *jl = &jn->jn_lanes[i];

		jl->jl_area = jn_addr(jn, jstart_blk + i * lane_blocks);
		jl->jl_hdr = (struct udx_jlane *)jl->jl_area;
		jl->jl_size = lane_blocks << UDX_BLOCK_SHIFT;
		jl->jl_idx = i;
		jl->jl_gen = READ_ONCE(jl->jl_hdr->j_done_gen);
	}
	pthread_mutex_init(&jn->jn_lock, NULL);
	pthread_cond_init(&jn->jn_cv, NULL);
	return 0;
}

void journal_exit(struct udx_journal *jn)
{
	pthread_cond_destroy(&jn->jn_cv);
	pthread_mutex_destroy(&jn->jn_lock);
	free(jn->jn_lanes);
	jn->jn_lanes = NULL;
}

/* Copy the records' old bytes back, last first (J4, J6).  @n records of
 * generation @gen starting at offset 64. */
static void lane_rollback(struct udx_journal *jn, struct jlane *jl, uint64_t n)
{
	uint64_t *pos = NULL, p = JREC_ALIGN, i;

	if (n == 0)
		return;
	pos = malloc(n * sizeof(*pos));
	UDX_BUG_ON(pos == NULL);
	for (i = 0; i < n; i++) {
		struct udx_jrec *r = lane_rec(jl, p);

		pos[i] = p;
		p += ALIGN_UP(sizeof(*r) + r->r_len, JREC_ALIGN);
	}
	for (i = n; i-- > 0;) {
		struct udx_jrec *r = lane_rec(jl, pos[i]);
		char *dst = jn->jn_base + r->r_off;

		memcpy(dst, r + 1, r->r_len);
		udx_dev_flush(jn->jn_dev, dst, r->r_len);
	}
	udx_dev_drain(jn->jn_dev);
	free(pos);
}

/* Count the valid records of generation @gen at the start of the lane. */
static uint64_t lane_scan(struct udx_journal *jn, struct jlane *jl, uint64_t gen)
{
	uint64_t p = JREC_ALIGN, n = 0;

	while (p + sizeof(struct udx_jrec) <= jl->jl_size) {
		struct udx_jrec *r = lane_rec(jl, p);

		if (r->r_gen != gen || r->r_seq != n ||
		    r->r_len > jl->jl_size - p - sizeof(*r) ||
		    r->r_off > jn->jn_dev_size || r->r_len > jn->jn_dev_size - r->r_off ||
		    jrec_csum(r) != r->r_checksum)
			break;
		n++;
		p += ALIGN_UP(sizeof(*r) + r->r_len, JREC_ALIGN);
	}
	return n;
}

static void lane_commit_word(struct udx_journal *jn, struct jlane *jl, uint64_t gen)
{
	WRITE_ONCE(jl->jl_hdr->j_done_gen, gen);
	udx_dev_persist(jn->jn_dev, &jl->jl_hdr->j_done_gen, sizeof(uint64_t));
	jl->jl_gen = gen;
}

int journal_recover(struct udx_journal *jn)
{
	unsigned i;
	int total = 0;

	for (i = 0; i < jn->jn_nlanes; i++) {
		struct jlane *jl = &jn->jn_lanes[i];
		uint64_t gen, n;

		if (jl->jl_hdr->j_magic != UDX_JLANE_MAGIC)
			return udx_err(-EUCLEAN, "journal lane %u has a damaged header (run fsck)", i);
		gen = jl->jl_hdr->j_done_gen + 1;
		n = lane_scan(jn, jl, gen);
		if (n == 0) {
			jl->jl_gen = gen - 1;
			continue;
		}
		lane_rollback(jn, jl, n);
		lane_commit_word(jn, jl, gen);          /* J6: after the data */
		total += (int)n;
	}
	return total;
}

/* ---- transactions ------------------------------------------------------ */

void tx_begin(struct udx_journal *jn, struct udx_tx *tx)
{
	struct jlane *jl = NULL;
	unsigned i;

	tx->tx_err = 0;
	tx->tx_seq = 0;
	tx->tx_logged = tx->tx_logged_inl;
	tx->tx_logged_cap = ARRAY_SIZE(tx->tx_logged_inl);
	tx->tx_dirty = tx->tx_dirty_inl;
	tx->tx_dirty_cap = ARRAY_SIZE(tx->tx_dirty_inl);
	tx->tx_allocs = tx->tx_allocs_inl;
	tx->tx_allocs_cap = ARRAY_SIZE(tx->tx_allocs_inl);
	tx->tx_frees = tx->tx_frees_inl;
	tx->tx_frees_cap = ARRAY_SIZE(tx->tx_frees_inl);
	tx->tx_nlogged = tx->tx_ndirty = tx->tx_nallocs = tx->tx_nfrees = 0;
	pthread_mutex_lock(&jn->jn_lock);
	while (jl == NULL) {
		for (i = 0; i < jn->jn_nlanes; i++) {
			struct jlane *c = &jn->jn_lanes[(jn->jn_hint + i) % jn->jn_nlanes];

			if (!c->jl_busy) {
				jl = c;
				break;
			}
		}
		if (jl == NULL)
			pthread_cond_wait(&jn->jn_cv, &jn->jn_lock);
	}
	jl->jl_busy = true;
	jn->jn_hint = jl->jl_idx + 1;
	pthread_mutex_unlock(&jn->jn_lock);
	tx->tx_jn = jn;
	tx->tx_lane = jl;
	tx->tx_gen = jl->jl_gen + 1;
	tx->tx_pos = JREC_ALIGN;
}

/* Make room for one more element; @inl is the array's inline storage. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem, const void *inl)
{
	void *p;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap * 2;
	if (*arr == inl) {
		p = malloc(ncap * elem);
		if (p)
			memcpy(p, *arr, n * elem);
	} else {
		p = realloc(*arr, ncap * elem);
	}
	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

#define GROW(tx, f, n) grow((void **)&(tx)->f, &(tx)->f##_cap, (tx)->n, \
			    sizeof(*(tx)->f), (tx)->f##_inl)

static bool range_logged(struct udx_tx *tx, const char *a, size_t len)
{
	size_t i;

	for (i = tx->tx_nlogged; i-- > 0;) {
		const struct tx_range *r = &tx->tx_logged[i];

		if (a >= r->tr_addr && a + len <= r->tr_addr + r->tr_len)
			return true;
	}
	return false;
}

/* Append the undo record of one range and start its flush; no drain.
 * Returns 1 when a record was written, 0 when the range was logged already. */
static int tx_append(struct udx_tx *tx, void *addr, size_t len)
{
	struct udx_journal *jn = tx->tx_jn;
	struct jlane *jl = tx->tx_lane;
	char *a = addr;
	struct udx_jrec *r;
	uint64_t need;

	if (tx->tx_err)
		return tx->tx_err;
	UDX_BUG_ON(a < jn->jn_base || a + len > jn->jn_base + jn->jn_dev_size);
	/* The range is logged exactly, never rounded out to cache lines: bytes
	 * next to it (another inode's map byte, say) may belong to another
	 * transaction in flight, which a rollback must not touch (J4). */
	if (range_logged(tx, a, len))
		return 0;
	need = ALIGN_UP(sizeof(*r) + len, JREC_ALIGN);
	if (tx->tx_pos + need > jl->jl_size) {
		tx->tx_err = udx_err(-ENOSPC, "the operation is too large for a journal lane");
		return tx->tx_err;
	}
	if (GROW(tx, tx_logged, tx_nlogged)) {
		tx->tx_err = udx_err(-ENOMEM, "out of memory");
		return tx->tx_err;
	}
	r = lane_rec(jl, tx->tx_pos);
	r->r_gen = tx->tx_gen;
	r->r_off = (uint64_t)(a - jn->jn_base);
	r->r_len = (uint32_t)len;
	r->r_seq = tx->tx_seq;
	memcpy(r + 1, a, len);
	r->r_checksum = jrec_csum(r);
	udx_dev_flush(jn->jn_dev, r, sizeof(*r) + len);
	tx->tx_pos += need;
	tx->tx_seq++;
	tx->tx_logged[tx->tx_nlogged++] = (struct tx_range){ a, len };
	return 1;
}

int tx_log(struct udx_tx *tx, void *addr, size_t len)
{
	int ret = tx_append(tx, addr, len);

	if (ret < 0)
		return ret;
	if (ret)
		udx_dev_drain(tx->tx_jn->jn_dev);       /* J1 */
	return 0;
}

int tx_log_many(struct udx_tx *tx, const struct tx_range *r, unsigned n)
{
	bool any = false;
	unsigned i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = tx_append(tx, r[i].tr_addr, r[i].tr_len);
		if (ret < 0)
			return ret;
		any |= ret;
	}
	if (any)
		udx_dev_drain(tx->tx_jn->jn_dev);       /* J1, once for all */
	return 0;
}

int tx_dirty(struct udx_tx *tx, void *addr, size_t len)
{
	if (tx->tx_err)
		return tx->tx_err;
	if (GROW(tx, tx_dirty, tx_ndirty)) {
		tx->tx_err = udx_err(-ENOMEM, "out of memory");
		return tx->tx_err;
	}
	tx->tx_dirty[tx->tx_ndirty++] = (struct tx_range){ addr, len };
	return 0;
}

int tx_alloc(struct udx_tx *tx, uint64_t want, uint64_t min, uint64_t goal,
	     unsigned flags, uint64_t *blk, uint64_t *got)
{
	struct udx_journal *jn = tx->tx_jn;
	int ret;

	if (tx->tx_err)
		return tx->tx_err;
	if (GROW(tx, tx_allocs, tx_nallocs))
		return udx_err(-ENOMEM, "out of memory");
	ret = jn->jn_bops->alloc(jn->jn_bctx, want, min, goal, flags, blk, got);
	if (ret)
		return ret;             /* not sticky: the caller may try less */
	tx->tx_allocs[tx->tx_nallocs++] = (struct tx_extent){ *blk, *got };
	return 0;
}

bool tx_allocated(const struct udx_tx *tx, uint64_t blk)
{
	size_t i = tx->tx_nallocs, stop = i > 32 ? i - 32 : 0;

	while (i-- > stop) {
		const struct tx_extent *e = &tx->tx_allocs[i];

		if (blk - e->te_blk < e->te_len)
			return true;
	}
	return false;
}

int tx_free(struct udx_tx *tx, uint64_t blk, uint64_t len)
{
	if (tx->tx_err)
		return tx->tx_err;
	if (GROW(tx, tx_frees, tx_nfrees)) {
		tx->tx_err = udx_err(-ENOMEM, "out of memory");
		return tx->tx_err;
	}
	tx->tx_frees[tx->tx_nfrees++] = (struct tx_extent){ blk, len };
	return 0;
}

static void tx_release(struct udx_tx *tx)
{
	struct udx_journal *jn = tx->tx_jn;

	if (tx->tx_logged != tx->tx_logged_inl)
		free(tx->tx_logged);
	if (tx->tx_dirty != tx->tx_dirty_inl)
		free(tx->tx_dirty);
	if (tx->tx_allocs != tx->tx_allocs_inl)
		free(tx->tx_allocs);
	if (tx->tx_frees != tx->tx_frees_inl)
		free(tx->tx_frees);
	pthread_mutex_lock(&jn->jn_lock);
	tx->tx_lane->jl_busy = false;
	pthread_cond_signal(&jn->jn_cv);
	pthread_mutex_unlock(&jn->jn_lock);
	tx->tx_lane = NULL;
}

void tx_abort(struct udx_tx *tx)
{
	struct udx_journal *jn = tx->tx_jn;
	size_t i;

	/* roll back what was changed in place, then close the generation */
	lane_rollback(jn, tx->tx_lane, tx->tx_seq);
	if (tx->tx_seq)
		lane_commit_word(jn, tx->tx_lane, tx->tx_gen);
	for (i = 0; i < tx->tx_nallocs; i++)
		jn->jn_bops->free(jn->jn_bctx, tx->tx_allocs[i].te_blk, tx->tx_allocs[i].te_len);
	pthread_mutex_lock(&jn->jn_lock);
	jn->jn_aborts++;
	pthread_mutex_unlock(&jn->jn_lock);
	tx_release(tx);
}

int tx_commit(struct udx_tx *tx)
{
	struct udx_journal *jn = tx->tx_jn;
	size_t i;
	int ret = tx->tx_err;

	if (ret) {
		tx_abort(tx);
		return ret;
	}
	if (tx->tx_seq == 0 && tx->tx_ndirty == 0 && tx->tx_nfrees == 0) {
		tx_release(tx);         /* nothing changed */
		return 0;
	}
	/* J2 */
	for (i = 0; i < tx->tx_nlogged; i++)
		udx_dev_flush(jn->jn_dev, tx->tx_logged[i].tr_addr, tx->tx_logged[i].tr_len);
	for (i = 0; i < tx->tx_ndirty; i++)
		udx_dev_flush(jn->jn_dev, tx->tx_dirty[i].tr_addr, tx->tx_dirty[i].tr_len);
	udx_dev_drain(jn->jn_dev);
	/* J3 */
	lane_commit_word(jn, tx->tx_lane, tx->tx_gen);
	/* J5 */
	for (i = 0; i < tx->tx_nfrees; i++)
		jn->jn_bops->free(jn->jn_bctx, tx->tx_frees[i].te_blk, tx->tx_frees[i].te_len);
	pthread_mutex_lock(&jn->jn_lock);
	jn->jn_commits++;
	pthread_mutex_unlock(&jn->jn_lock);
	tx_release(tx);
	return 0;
}
