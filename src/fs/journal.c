/* SPDX-License-Identifier: MIT */
/*
 * The undo journal.
 *
 * A transaction changes metadata in place.  Before the first store to a
 * range it saves the range's old bytes in its lane (an undo record); its
 * commit makes the changed ranges and a commit record durable with one
 * drain.  Recovery rolls back every transaction that did not complete.
 *
 * Crash invariants (the crash tests in tests/test_crash.c are organised by
 * these numbers):
 *
 *  J1. An undo record is durable before the first store to its range: tx_log
 *      appends the old bytes, flushes and drains, and only then returns.
 *  J2. A commit makes the changed ranges (logged ranges and ranges written
 *      in blocks it allocated) and the commit record durable with a single
 *      drain.  The commit record carries a checksum of those ranges' new
 *      contents, so that a crash during that drain, which may leave any
 *      subset of them durable, is recognised: the contents do not match.
 *  J3. A commit is complete when its drain has returned; the journal then
 *      raises its watermark (every commit numbered up to it is complete)
 *      before the transaction's locks are dropped.  Each undo record carries
 *      the watermark read when it was written, and is written only when the
 *      watermark covers every completed commit (a commit numbered below one
 *      that completed may still be in its drain: tx_append waits for it).
 *      A transaction that changes a range another one changed takes the
 *      range's lock after that one completed, so its record's watermark
 *      covers that commit: at recovery,
 *      a commit numbered at or below the largest watermark found in any
 *      record is complete, even if its ranges have changed since; a commit
 *      above it has had its metadata ranges changed by nobody, so its
 *      content checksum decides.  File data changes without transactions,
 *      so data ranges a transaction logs (the tail of a file's last block)
 *      are left out of the checksum and made durable before the commit
 *      record is written.
 *  J4. Transactions not complete at the same time change disjoint ranges
 *      (the callers hold their locks until their commit completes), so each
 *      lane rolls back on its own, in reverse order of its records, and the
 *      order of lanes does not matter.
 *  J5. Blocks a transaction frees reach the allocator only after its commit
 *      completed; blocks it allocated go back if it aborts.  A block is never
 *      reused while the transaction that freed it could still roll back.
 *  J6. Rollback is idempotent: a crash during recovery (or during tx_abort)
 *      rolls back again to the same bytes.  Recovery ends, and an abort
 *      ends, by invalidating the lane's records durably, after the rolled
 *      back ranges are durable; mount starts every lane from scratch.
 *
 * Record format: struct udx_jrec (format.h) followed by r_len bytes, the
 * whole padded to 64 bytes.  A lane has two slots, used by transactions of
 * odd and even generation in turn (slot 0 from byte 64, slot 1 from the
 * middle of the lane): a transaction never writes over the records and
 * commit record of the one before it, whose completion may still rest on
 * them if the crash leaves only some lines of the new one durable.  The
 * commit record (struct udx_jcommit and its range list) follows the last
 * record of its slot.
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

/* The slot of generation @gen: [start, end) bytes of the lane. */
static uint64_t slot_start(const struct jlane *jl, uint64_t gen)
{
	return (gen & 1) ? jl->jl_size / 2 : JREC_ALIGN;
}

static uint64_t slot_end(const struct jlane *jl, uint64_t gen)
{
	return (gen & 1) ? jl->jl_size : jl->jl_size / 2;
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
		/* no stale record may survive from an old file system */
		memset(area + JREC_ALIGN, 0, sizeof(struct udx_jrec));
		memset(area + (lane_blocks << UDX_BLOCK_SHIFT) / 2, 0, sizeof(struct udx_jrec));
		udx_dev_flush(dev, area, JREC_ALIGN + sizeof(struct udx_jrec));
		udx_dev_flush(dev, area + (lane_blocks << UDX_BLOCK_SHIFT) / 2,
			      sizeof(struct udx_jrec));
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
	jn->jn_active = NULL;
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
		if (READ_ONCE(jl->jl_hdr->j_wmark) >= JN_SEQ_LIMIT) {
			free(jn->jn_lanes);
			jn->jn_lanes = NULL;
			return udx_err(-EUCLEAN, "journal lane %u: a commit number out of range "
				       "(run fsck)", i);
		}
	}
	pthread_mutex_init(&jn->jn_lock, NULL);
	pthread_cond_init(&jn->jn_cv, NULL);
	pthread_cond_init(&jn->jn_wcv, NULL);
	/* commit numbers grow across mounts (J3); every earlier commit was
	 * complete or is resolved by recovery before the first new one */
	jn->jn_wmark = 0;
	for (i = 0; i < nlanes; i++)
		jn->jn_wmark = MAX(jn->jn_wmark, READ_ONCE(jn->jn_lanes[i].jl_hdr->j_wmark));
	jn->jn_next_seq = jn->jn_wmark + 1;
	jn->jn_maxdone = jn->jn_wmark;
	memset(jn->jn_done, 0, sizeof(jn->jn_done));
	return 0;
}

void journal_exit(struct udx_journal *jn)
{
	pthread_cond_destroy(&jn->jn_cv);
	pthread_cond_destroy(&jn->jn_wcv);
	pthread_mutex_destroy(&jn->jn_lock);
	free(jn->jn_lanes);
	jn->jn_lanes = NULL;
}

/* Copy the records' old bytes back, last first (J4, J6): @n records of the
 * transaction of generation @gen. */
static void lane_rollback(struct udx_journal *jn, struct jlane *jl, uint64_t gen, uint64_t n)
{
	uint64_t *pos = NULL, p = slot_start(jl, gen), i;

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

/*
 * Forget the lane's records: the next transaction starts after @gen.  The
 * watermark goes into the header first (same line as j_done_gen, drained
 * before the records go): the records it replaces may have been the only
 * evidence that other lanes' commits completed (J3).
 */
static void lane_invalidate(struct udx_journal *jn, struct jlane *jl, uint64_t gen,
			    uint64_t wmark)
{
	unsigned k;

	WRITE_ONCE(jl->jl_hdr->j_wmark, MAX(jl->jl_hdr->j_wmark, wmark));
	WRITE_ONCE(jl->jl_hdr->j_done_gen, gen);
	udx_dev_persist(jn->jn_dev, jl->jl_hdr, sizeof(*jl->jl_hdr));
	for (k = 0; k < 2; k++) {
		struct udx_jrec *r = lane_rec(jl, slot_start(jl, k));

		WRITE_ONCE(r->r_checksum, r->r_checksum ^ 1);   /* any other value */
		WRITE_ONCE(r->r_gen, 0);
		udx_dev_flush(jn->jn_dev, r, sizeof(*r));
	}
	udx_dev_drain(jn->jn_dev);
	jl->jl_gen = gen;
}

/* What a lane holds: its latest transaction's records and commit record. */
struct lane_state {
	uint64_t gen;                   /* 0: no records */
	uint64_t nrecs;
	uint64_t end;                   /* offset after the last record */
	uint64_t wmark;                 /* largest r_wmark of its records */
	const struct udx_jcommit *commit;       /* NULL: none, or invalid */
};

static bool rec_ok(struct udx_journal *jn, struct jlane *jl, uint64_t p, uint64_t end,
		   uint64_t gen, uint64_t seq)
{
	struct udx_jrec *r = lane_rec(jl, p);

	return p + sizeof(*r) <= end &&
	       (gen == 0 || r->r_gen == gen) && r->r_gen != 0 &&
	       (r->r_seq & UDX_JREC_SEQ_MASK) == seq &&
	       r->r_len <= end - p - sizeof(*r) &&
	       r->r_off <= jn->jn_dev_size && r->r_len <= jn->jn_dev_size - r->r_off &&
	       jrec_csum(r) == r->r_checksum;
}

static uint64_t jcommit_csum(const struct udx_jcommit *c)
{
	return udx_csum3(&c->c_magic, sizeof(*c) - offsetof(struct udx_jcommit, c_magic) +
			 (size_t)c->c_nnew * sizeof(c->c_new[0]));
}

/* What slot @k of a lane holds (a transaction of the slot's parity). */
static void slot_read(struct udx_journal *jn, struct jlane *jl, unsigned k,
		      struct lane_state *ls)
{
	const struct udx_jcommit *c;
	uint64_t p = slot_start(jl, k), end = slot_end(jl, k);

	memset(ls, 0, sizeof(*ls));
	if (!rec_ok(jn, jl, p, end, 0, 0))
		return;
	ls->gen = lane_rec(jl, p)->r_gen;
	if (ls->gen <= jl->jl_hdr->j_done_gen || (ls->gen & 1) != k) {
		ls->gen = 0;            /* finished with before, or misplaced */
		return;
	}
	while (rec_ok(jn, jl, p, end, ls->gen, ls->nrecs)) {
		struct udx_jrec *r = lane_rec(jl, p);

		ls->wmark = MAX(ls->wmark, r->r_wmark);
		ls->nrecs++;
		p += ALIGN_UP(sizeof(*r) + r->r_len, JREC_ALIGN);
	}
	ls->end = p;
	c = (const struct udx_jcommit *)(jl->jl_area + p);
	if (p + sizeof(*c) <= end && c->c_magic == UDX_JCOMMIT_MAGIC &&
	    c->c_gen == ls->gen && c->c_nrecs == ls->nrecs &&
	    c->c_nnew <= (end - p - sizeof(*c)) / sizeof(c->c_new[0]) &&
	    jcommit_csum(c) == c->c_checksum)
		ls->commit = c;
}

/*
 * The lane's latest transaction is the one of the higher generation among
 * its two slots; the other one ran before it, so it completed.  Both slots'
 * records count as evidence of completed commits (@wmark).
 */
static void lane_read(struct udx_journal *jn, struct jlane *jl, struct lane_state *ls,
		      uint64_t *wmark)
{
	struct lane_state s0, s1;

	slot_read(jn, jl, 0, &s0);
	slot_read(jn, jl, 1, &s1);
	*wmark = MAX(s0.wmark, s1.wmark);
	*ls = s0.gen >= s1.gen ? s0 : s1;
}

/* The content checksum: XXH3-64 of each range (unseeded: a seed makes XXH3
 * derive a secret for every input longer than 240 bytes), folded into the
 * checksum so far by XXH3-64 of those 8 bytes seeded with it. */
static inline uint64_t content_step(uint64_t h, const void *p, size_t len)
{
	uint64_t r = XXH3_64bits(p, len);

	return XXH3_64bits_withSeed(&r, sizeof(r), h);
}

/* The content checksum of a transaction as the device holds it now. */
static bool lane_content_matches(struct udx_journal *jn, struct jlane *jl,
				 const struct lane_state *ls)
{
	const struct udx_jcommit *c = ls->commit;
	uint64_t p = slot_start(jl, ls->gen), i, h = 0;

	for (i = 0; i < ls->nrecs; i++) {
		struct udx_jrec *r = lane_rec(jl, p);

		if (!(r->r_seq & UDX_JREC_DATA))
			h = content_step(h, jn->jn_base + r->r_off, r->r_len);
		p += ALIGN_UP(sizeof(*r) + r->r_len, JREC_ALIGN);
	}
	for (i = 0; i < c->c_nnew; i++) {
		if (c->c_new[i].g_off > jn->jn_dev_size ||
		    c->c_new[i].g_len > jn->jn_dev_size - c->c_new[i].g_off)
			return false;
		h = content_step(h, jn->jn_base + c->c_new[i].g_off, c->c_new[i].g_len);
	}
	return h == c->c_content;
}

/*
 * Recovery: find each lane's latest transaction, decide which completed
 * (J3), roll back the others (J4), then start every lane afresh (J6).
 * Returns the number of records rolled back, or -EUCLEAN.
 */
static int journal_analyse(struct udx_journal *jn, bool apply)
{
	struct lane_state *ls;
	uint64_t wmark = 0;
	unsigned i;
	int total = 0;

	ls = calloc(jn->jn_nlanes, sizeof(*ls));
	if (ls == NULL)
		return udx_err(-ENOMEM, "out of memory");
	for (i = 0; i < jn->jn_nlanes; i++) {
		struct jlane *jl = &jn->jn_lanes[i];

		if (jl->jl_hdr->j_magic != UDX_JLANE_MAGIC) {
			free(ls);
			return udx_err(-EUCLEAN, "journal lane %u has a damaged header (run fsck)", i);
		}
		uint64_t w;

		lane_read(jn, jl, &ls[i], &w);
		wmark = MAX(wmark, w);
		wmark = MAX(wmark, jl->jl_hdr->j_wmark);
	}
	for (i = 0; i < jn->jn_nlanes; i++) {
		struct jlane *jl = &jn->jn_lanes[i];
		bool complete;

		if (ls[i].gen == 0)
			continue;
		complete = ls[i].commit &&
			   (ls[i].commit->c_seq <= wmark || lane_content_matches(jn, jl, &ls[i]));
		if (!complete) {
			total += (int)ls[i].nrecs;
			if (apply)
				lane_rollback(jn, jl, ls[i].gen, ls[i].nrecs);
		}
	}
	if (apply) {
		/* everything is complete or undone now: the watermark covers
		 * every commit number seen, and new ones continue above it */
		uint64_t top = wmark;

		for (i = 0; i < jn->jn_nlanes; i++)
			if (ls[i].commit)
				top = MAX(top, ls[i].commit->c_seq);
		for (i = 0; i < jn->jn_nlanes; i++) {
			struct jlane *jl = &jn->jn_lanes[i];

			lane_invalidate(jn, jl, MAX(jl->jl_hdr->j_done_gen, ls[i].gen), top);
		}
		jn->jn_wmark = top;
		jn->jn_maxdone = top;
		jn->jn_next_seq = top + 1;
	}
	free(ls);
	return total;
}

int journal_recover(struct udx_journal *jn)
{
	return journal_analyse(jn, true);
}

int journal_pending(struct udx_journal *jn)
{
	return journal_analyse(jn, false);
}

/* Mark lanes finished at unmount, so the next mount starts from scratch. */
void journal_close(struct udx_journal *jn)
{
	uint64_t wmark = __atomic_load_n(&jn->jn_wmark, __ATOMIC_ACQUIRE);
	unsigned i;

	for (i = 0; i < jn->jn_nlanes; i++)
		lane_invalidate(jn, &jn->jn_lanes[i], jn->jn_lanes[i].jl_gen, wmark);
}

/* The commit numbered @seq completed: raise the watermark over every
 * completed commit in order (J3). */
static void journal_complete(struct udx_journal *jn, uint64_t seq)
{
	pthread_mutex_lock(&jn->jn_lock);
	jn->jn_done[seq % JN_RING] = seq;
	if (seq > jn->jn_maxdone)
		__atomic_store_n(&jn->jn_maxdone, seq, __ATOMIC_RELEASE);
	while (jn->jn_done[(jn->jn_wmark + 1) % JN_RING] == jn->jn_wmark + 1)
		__atomic_store_n(&jn->jn_wmark, jn->jn_wmark + 1, __ATOMIC_RELEASE);
	if (jn->jn_wmark == jn->jn_maxdone)
		pthread_cond_broadcast(&jn->jn_wcv);
	jn->jn_commits++;
	pthread_mutex_unlock(&jn->jn_lock);
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
	tx->tx_data = false;
	tx->tx_section = jn->jn_active == NULL || udx_liveref_tryget_live(jn->jn_active);
	if (!tx->tx_section)
		tx->tx_err = udx_err(-ENXIO, "the device is being removed");
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
	tx->tx_pos = slot_start(jl, tx->tx_gen);
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

/* The watermark, once it covers every commit that completed (J3): a commit
 * numbered below a completed one may still be in its drain. */
static uint64_t settled_wmark(struct udx_journal *jn)
{
	uint64_t w = __atomic_load_n(&jn->jn_wmark, __ATOMIC_ACQUIRE);
	uint64_t top = __atomic_load_n(&jn->jn_maxdone, __ATOMIC_ACQUIRE);

	if (w >= top)
		return w;
	pthread_mutex_lock(&jn->jn_lock);
	while (jn->jn_wmark < top)
		pthread_cond_wait(&jn->jn_wcv, &jn->jn_lock);
	w = jn->jn_wmark;
	pthread_mutex_unlock(&jn->jn_lock);
	return w;
}

/* Append the undo record of one range and start its flush; no drain.
 * Returns 1 when a record was written, 0 when the range was logged already. */
static int tx_append(struct udx_tx *tx, void *addr, size_t len, uint32_t flags)
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
	if (tx->tx_pos + need + JN_COMMIT_ROOM > slot_end(jl, tx->tx_gen)) {
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
	r->r_wmark = settled_wmark(jn);                                 /* J3 */
	r->r_len = (uint32_t)len;
	r->r_seq = tx->tx_seq | flags;
	memcpy(r + 1, a, len);
	r->r_checksum = jrec_csum(r);
	udx_dev_flush(jn->jn_dev, r, sizeof(*r) + len);
	tx->tx_pos += need;
	tx->tx_seq++;
	tx->tx_logged[tx->tx_nlogged++] = (struct tx_range){ a, len, flags != 0 };
	tx->tx_data |= flags != 0;
	return 1;
}

int tx_log(struct udx_tx *tx, void *addr, size_t len)
{
	int ret = tx_append(tx, addr, len, 0);

	if (ret < 0)
		return ret;
	if (ret)
		udx_dev_drain(tx->tx_jn->jn_dev);       /* J1 */
	return 0;
}

int tx_log_data(struct udx_tx *tx, void *addr, size_t len)
{
	int ret = tx_append(tx, addr, len, UDX_JREC_DATA);

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
		ret = tx_append(tx, r[i].tr_addr, r[i].tr_len, 0);
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
	tx->tx_dirty[tx->tx_ndirty++] = (struct tx_range){ addr, len, false };
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

void tx_trim(struct udx_tx *tx, uint64_t blk, uint64_t len)
{
	struct tx_extent *e = &tx->tx_allocs[tx->tx_nallocs - 1];

	if (len == 0)
		return;
	UDX_BUG_ON(tx->tx_nallocs == 0 || blk + len != e->te_blk + e->te_len || len >= e->te_len);
	e->te_len -= len;
	tx->tx_jn->jn_bops->free(tx->tx_jn->jn_bctx, blk, len);   /* never used */
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
	if (tx->tx_section && jn->jn_active)
		udx_liveref_put(jn->jn_active);
}

void tx_abort(struct udx_tx *tx)
{
	struct udx_journal *jn = tx->tx_jn;
	size_t i;

	/* roll back what was changed in place, then forget the records (J6) */
	lane_rollback(jn, tx->tx_lane, tx->tx_gen, tx->tx_seq);
	if (tx->tx_seq)
		lane_invalidate(jn, tx->tx_lane, tx->tx_gen,
				__atomic_load_n(&jn->jn_wmark, __ATOMIC_ACQUIRE));
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
	struct jlane *jl = tx->tx_lane;
	struct udx_jcommit *c;
	uint64_t seq, h = 0;
	size_t i, room;
	int ret = tx->tx_err;

	if (ret) {
		tx_abort(tx);
		return ret;
	}
	if (tx->tx_seq == 0 && tx->tx_ndirty == 0) {
		/* nothing logged or written: frees only (J5 holds trivially) */
		for (i = 0; i < tx->tx_nfrees; i++)
			jn->jn_bops->free(jn->jn_bctx, tx->tx_frees[i].te_blk,
					  tx->tx_frees[i].te_len);
		tx_release(tx);
		return 0;
	}
	c = (struct udx_jcommit *)(jl->jl_area + tx->tx_pos);
	room = (slot_end(jl, tx->tx_gen) - tx->tx_pos - sizeof(*c)) / sizeof(c->c_new[0]);
	if (tx->tx_ndirty > room) {
		/* more new ranges than the commit record can list: make them
		 * durable on their own first, and list none */
		for (i = 0; i < tx->tx_ndirty; i++)
			udx_dev_flush(jn->jn_dev, tx->tx_dirty[i].tr_addr, tx->tx_dirty[i].tr_len);
		udx_dev_drain(jn->jn_dev);
		tx->tx_ndirty = 0;
	}
	if (tx->tx_data) {
		/* J3: file data first, as no checksum covers it */
		for (i = 0; i < tx->tx_nlogged; i++)
			if (tx->tx_logged[i].tr_data)
				udx_dev_flush(jn->jn_dev, tx->tx_logged[i].tr_addr,
					      tx->tx_logged[i].tr_len);
		udx_dev_drain(jn->jn_dev);
	}
	/* J2: the ranges and the commit record, one drain */
	for (i = 0; i < tx->tx_nlogged; i++) {
		if (tx->tx_logged[i].tr_data)
			continue;
		udx_dev_flush(jn->jn_dev, tx->tx_logged[i].tr_addr, tx->tx_logged[i].tr_len);
		h = content_step(h, tx->tx_logged[i].tr_addr, tx->tx_logged[i].tr_len);
	}
	for (i = 0; i < tx->tx_ndirty; i++) {
		udx_dev_flush(jn->jn_dev, tx->tx_dirty[i].tr_addr, tx->tx_dirty[i].tr_len);
		h = content_step(h, tx->tx_dirty[i].tr_addr, tx->tx_dirty[i].tr_len);
		c->c_new[i].g_off = (uint64_t)(tx->tx_dirty[i].tr_addr - jn->jn_base);
		c->c_new[i].g_len = (uint32_t)tx->tx_dirty[i].tr_len;
		c->c_new[i].g_pad = 0;
	}
	seq = __atomic_fetch_add(&jn->jn_next_seq, 1, __ATOMIC_RELAXED);
	c->c_magic = UDX_JCOMMIT_MAGIC;
	c->c_gen = tx->tx_gen;
	c->c_seq = seq;
	c->c_content = h;
	c->c_nrecs = tx->tx_seq;
	c->c_nnew = (uint32_t)tx->tx_ndirty;
	c->c_checksum = jcommit_csum(c);
	udx_dev_flush(jn->jn_dev, c, sizeof(*c) + tx->tx_ndirty * sizeof(c->c_new[0]));
	udx_dev_drain(jn->jn_dev);
	/* J3: complete; then J5 */
	jl->jl_gen = tx->tx_gen;
	journal_complete(jn, seq);
	for (i = 0; i < tx->tx_nfrees; i++)
		jn->jn_bops->free(jn->jn_bctx, tx->tx_frees[i].te_blk, tx->tx_frees[i].te_len);
	tx_release(tx);
	return 0;
}
