/* SPDX-License-Identifier: MIT */
/*
 * The block allocator (alloc.h): one bit per block, and summaries per 2 MiB
 * group and per 1 GiB region so that no decision scans the bitmap.  The
 * policy, and why, is in docs/ALLOCATOR.md; this file says how.
 *
 * Geometry.  Alignment is of absolute block numbers, since a block number is
 * a device offset and the device is mapped 2 MiB aligned.  Bit i of a_bits is
 * block a_base + i, where a_base is a_first rounded down to 1 GiB; group g is
 * bits [g * 512, g * 512 + 512) and region r is groups [r * 512, r * 512 +
 * 512).  The bitmap ends with the last group that holds a managed block.
 *
 * Invariants (alloc_verify() checks them all in debug builds, from
 * alloc_stats()):
 *
 *  A1. The bit of a block outside [a_first, a_end) is set, always.  So a group
 *      or region cut by an end of the range is never fully free, and the
 *      counts below count managed blocks only.
 *  A2. a_gsum[g] describes the bits of group g exactly: free blocks, longest
 *      free run (gs_maxpos is the start of one), free blocks at its head and
 *      at its tail.  group_took() and group_gave() keep it so incrementally.
 *  A3. Every group is in exactly the set a_gset[g] names: none (no free
 *      block), a_full (all 512 blocks free), or a_part[kind][k] (partly
 *      used; its longest free run is in [2^k, 2^(k+1))).
 *  A4. A group's kind (a_gmeta, 1 = metadata) is 0 while it is fully free:
 *      a group takes the kind of the request that breaks it, and keeps it
 *      until it is fully free again.
 *  A5. a_rfree[r] and a_rfull[r] are the free blocks and fully free groups of
 *      region r; r is in the one set a_rset[r] names: a_whole (every block
 *      free), a_rpart[k] (not whole, 2^k <= a_rfull[r] < 2^(k+1)), or none.
 *  A6. a_free, a_nfull and a_nwhole are the sums of the above.
 *  A7. Excluded blocks: every block of a_excl and of a_pend has its bit set,
 *      and the two lists are disjoint.  A block of a_excl has no owner and is
 *      never handed out; a block of a_pend has an owner and moves to a_excl
 *      when that owner frees it.
 *
 * Locking: a_lock protects everything in struct udx_alloc.  Every function
 * below whose name does not start with alloc_ is called with it held (debug
 * builds assert it where state changes: take(), give(), group_apply()).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <udaxfs/common.h>
#include "base/compiler.h"
#include "base/err.h"
#include "fs/alloc.h"

#define GROUP_SHIFT     UDX_PMD_ORDER                   /* 2 MiB */
#define GROUP_BLOCKS    (1ull << GROUP_SHIFT)
#define GROUP_WORDS     (GROUP_BLOCKS / 64)
#define REGION_SHIFT    UDX_PUD_ORDER                   /* 1 GiB */
#define REGION_BLOCKS   (1ull << REGION_SHIFT)
#define REGION_GROUPS   (1ull << (REGION_SHIFT - GROUP_SHIFT))
#define NCLASS          GROUP_SHIFT     /* runs 1..511: classes 0..8 */
#define NONE            UINT64_MAX
#define PARTIAL_TRIES   8       /* groups of a mixed class to look at */

enum { KIND_DATA, KIND_META, NKIND };

/* a_gset values */
enum { GSET_NONE, GSET_FULL, GSET_PART /* + kind * NCLASS + class */ };
/* a_rset values */
enum { RSET_NONE, RSET_WHOLE, RSET_PART /* + class */ };

/* A two-level bitset: bs_sum says which words of bs_w are not zero, so that
 * the next member is found in O(bits / 4096) at worst. */
struct bset {
	uint64_t *bs_w;
	uint64_t *bs_sum;
	uint64_t bs_nwords;
	uint64_t bs_nsum;
};

struct gsum {
	uint16_t gs_free;               /* free blocks */
	uint16_t gs_max;                /* longest free run */
	uint16_t gs_maxpos;             /* where one such run starts */
	uint16_t gs_head;               /* free blocks at the start */
	uint16_t gs_tail;               /* free blocks at the end */
};

/* Sorted, disjoint, never adjacent ranges of absolute blocks. */
struct xrange {
	uint64_t x_s, x_e;              /* [x_s, x_e) */
};

struct xlist {
	struct xrange *x_v;
	size_t x_n, x_cap;
};

/*
 * struct udx_alloc - from alloc_create() to alloc_destroy(); holds no
 * reference on anything.  Every field after a_lock is protected by it.
 */
struct udx_alloc {
	pthread_mutex_t a_lock;
#ifdef UDX_DEBUG
	pthread_t a_owner;
	bool a_locked;
#endif
	uint64_t a_first, a_end, a_count;       /* managed: [a_first, a_end) */
	uint64_t a_base;                        /* block of bit 0 (A1) */
	uint64_t a_ngroups, a_nregions;

	uint64_t *a_bits;               /* 1 = in use, excluded or outside */
	struct gsum *a_gsum;            /* A2 */
	uint8_t *a_gset;                /* A3 */
	uint64_t *a_gmeta;              /* A4 */
	struct bset a_full;             /* fully free groups */
	struct bset a_part[NKIND * NCLASS];

	uint32_t *a_rfree;              /* A5 */
	uint16_t *a_rfull;
	uint8_t *a_rset;
	struct bset a_whole;            /* fully free regions */
	struct bset a_rpart[NCLASS];

	uint64_t a_free, a_nfull, a_nwhole;     /* A6 */
	struct xlist a_excl, a_pend;            /* A7 */
};

/* A request, as alloc_blocks() classifies it. */
enum { REQ_SMALL, REQ_2M, REQ_1G };

struct req {
	uint64_t rq_want;               /* capped at a_count */
	uint64_t rq_min;
	uint64_t rq_goal;               /* bit index, or NONE */
	uint64_t rq_goal_g, rq_goal_r;  /* where searches start */
	int rq_class;
	bool rq_meta, rq_align;
};

/* A run chosen for a request: bit index and length (0: nothing found). */
struct cand {
	uint64_t c_i, c_len;
};

static void alloc_lock(struct udx_alloc *a)
{
	pthread_mutex_lock(&a->a_lock);
#ifdef UDX_DEBUG
	a->a_owner = pthread_self();
	a->a_locked = true;
#endif
}

static void alloc_unlock(struct udx_alloc *a)
{
#ifdef UDX_DEBUG
	a->a_locked = false;
#endif
	pthread_mutex_unlock(&a->a_lock);
}

static void assert_held(const struct udx_alloc *a)
{
#ifdef UDX_DEBUG
	UDX_BUG_ON(!a->a_locked || !pthread_equal(a->a_owner, pthread_self()));
#else
	(void)a;
#endif
}

static unsigned ilog2(uint64_t x)
{
	return 63u - (unsigned)__builtin_clzll(x);
}

/* The build targets plain x86-64, where __builtin_popcountll is a call into
 * libgcc; this is a few instructions. */
static unsigned popcount64(uint64_t x)
{
	x -= (x >> 1) & 0x5555555555555555ull;
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

/* ---- plain bit arrays --------------------------------------------------- */

static bool bit_test(const uint64_t *w, uint64_t i)
{
	return (w[i >> 6] >> (i & 63)) & 1;
}

/* The first set bit in [i, end), or @end. */
static uint64_t next_set(const uint64_t *w, uint64_t i, uint64_t end)
{
	uint64_t q, m;

	if (i >= end)
		return end;
	q = i >> 6;
	m = w[q] & (~0ull << (i & 63));
	while (m == 0) {
		if (++q << 6 >= end)
			return end;
		m = w[q];
	}
	return MIN((q << 6) + (uint64_t)__builtin_ctzll(m), end);
}

/* The first clear bit in [i, end), or @end. */
static uint64_t next_clear(const uint64_t *w, uint64_t i, uint64_t end)
{
	uint64_t q, m;

	if (i >= end)
		return end;
	q = i >> 6;
	m = ~w[q] & (~0ull << (i & 63));
	while (m == 0) {
		if (++q << 6 >= end)
			return end;
		m = ~w[q];
	}
	return MIN((q << 6) + (uint64_t)__builtin_ctzll(m), end);
}

static uint64_t word_mask(uint64_t s, uint64_t n)
{
	return n == 64 ? ~0ull : ((1ull << n) - 1) << (s & 63);
}

static void bits_set(uint64_t *w, uint64_t s, uint64_t e)
{
	while (s < e) {
		uint64_t n = MIN(64 - (s & 63), e - s);

		w[s >> 6] |= word_mask(s, n);
		s += n;
	}
}

static void bits_clear(uint64_t *w, uint64_t s, uint64_t e)
{
	while (s < e) {
		uint64_t n = MIN(64 - (s & 63), e - s);

		w[s >> 6] &= ~word_mask(s, n);
		s += n;
	}
}

/* ---- two-level bitsets -------------------------------------------------- */

static int bset_init(struct bset *bs, uint64_t nbits)
{
	bs->bs_nwords = (nbits + 63) / 64;
	bs->bs_nsum = (bs->bs_nwords + 63) / 64;
	bs->bs_w = calloc(bs->bs_nwords + 1, sizeof(uint64_t));
	bs->bs_sum = calloc(bs->bs_nsum + 1, sizeof(uint64_t));
	return bs->bs_w && bs->bs_sum ? 0 : -ENOMEM;
}

static void bset_exit(struct bset *bs)
{
	free(bs->bs_w);
	free(bs->bs_sum);
}

static void bset_reset(struct bset *bs)
{
	memset(bs->bs_w, 0, bs->bs_nwords * sizeof(uint64_t));
	memset(bs->bs_sum, 0, bs->bs_nsum * sizeof(uint64_t));
}

static void bset_set(struct bset *bs, uint64_t i)
{
	bs->bs_w[i >> 6] |= 1ull << (i & 63);
	bs->bs_sum[i >> 12] |= 1ull << ((i >> 6) & 63);
}

static void bset_clear(struct bset *bs, uint64_t i)
{
	bs->bs_w[i >> 6] &= ~(1ull << (i & 63));
	if (bs->bs_w[i >> 6] == 0)
		bs->bs_sum[i >> 12] &= ~(1ull << ((i >> 6) & 63));
}

/* The first member at or after @i, or NONE. */
static uint64_t bset_next(const struct bset *bs, uint64_t i)
{
	uint64_t q = i >> 6, s, m;

	if (q >= bs->bs_nwords)
		return NONE;
	m = bs->bs_w[q] & (~0ull << (i & 63));
	if (m)
		return (q << 6) + (uint64_t)__builtin_ctzll(m);
	if (++q >= bs->bs_nwords)
		return NONE;
	s = q >> 6;
	m = bs->bs_sum[s] & (~0ull << (q & 63));
	while (m == 0) {
		if (++s >= bs->bs_nsum)
			return NONE;
		m = bs->bs_sum[s];
	}
	q = (s << 6) + (uint64_t)__builtin_ctzll(m);
	return (q << 6) + (uint64_t)__builtin_ctzll(bs->bs_w[q]);
}

/* The first member at or after @i, else the first one before it. */
static uint64_t bset_next_wrap(const struct bset *bs, uint64_t i)
{
	uint64_t r = bset_next(bs, i);

	return r == NONE && i ? bset_next(bs, 0) : r;
}

/* ---- excluded ranges ---------------------------------------------------- */

/* The index of the first range that ends after @b. */
static size_t xlist_find(const struct xlist *l, uint64_t b)
{
	size_t lo = 0, hi = l->x_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->x_v[mid].x_e > b)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static bool xlist_overlaps(const struct xlist *l, uint64_t s, uint64_t e)
{
	size_t k = xlist_find(l, s);

	return k < l->x_n && l->x_v[k].x_s < e;
}

static bool xlist_covers(const struct xlist *l, uint64_t s, uint64_t e)
{
	size_t k = xlist_find(l, s);

	return k < l->x_n && l->x_v[k].x_s <= s && l->x_v[k].x_e >= e;
}

/*
 * Room for one more range.  alloc_free() and alloc_exclude() cannot fail by
 * contract, and poisoned ranges are few: running out of memory for them is
 * treated like the journal treats it, as fatal.
 */
static void xlist_reserve(struct xlist *l)
{
	struct xrange *v;
	size_t cap;

	if (l->x_n < l->x_cap)
		return;
	cap = l->x_cap ? l->x_cap * 2 : 8;
	v = realloc(l->x_v, cap * sizeof(*v));
	UDX_BUG_ON(v == NULL);
	l->x_v = v;
	l->x_cap = cap;
}

static void xlist_add(struct xlist *l, uint64_t s, uint64_t e)
{
	size_t k, m;

	xlist_reserve(l);
	k = s ? xlist_find(l, s - 1) : 0;       /* first range with x_e >= s */
	for (m = k; m < l->x_n && l->x_v[m].x_s <= e; m++) {
		s = MIN(s, l->x_v[m].x_s);
		e = MAX(e, l->x_v[m].x_e);
	}
	if (m == k) {
		memmove(&l->x_v[k + 1], &l->x_v[k], (l->x_n - k) * sizeof(*l->x_v));
		l->x_n++;
	} else {
		memmove(&l->x_v[k + 1], &l->x_v[m], (l->x_n - m) * sizeof(*l->x_v));
		l->x_n -= m - k - 1;
	}
	l->x_v[k] = (struct xrange){ s, e };
}

static void xlist_remove(struct xlist *l, uint64_t s, uint64_t e)
{
	size_t k = xlist_find(l, s), m;
	struct xrange *v;

	if (k == l->x_n || l->x_v[k].x_s >= e)
		return;
	if (l->x_v[k].x_s < s && l->x_v[k].x_e > e) {   /* split it */
		xlist_reserve(l);
		v = l->x_v;
		memmove(&v[k + 1], &v[k], (l->x_n - k) * sizeof(*v));
		l->x_n++;
		v[k].x_e = s;
		v[k + 1].x_s = e;
		return;
	}
	v = l->x_v;
	if (v[k].x_s < s)
		v[k++].x_e = s;
	for (m = k; m < l->x_n && v[m].x_e <= e; m++)
		;
	if (m < l->x_n && v[m].x_s < e)
		v[m].x_s = e;
	memmove(&v[k], &v[m], (l->x_n - m) * sizeof(*v));
	l->x_n -= m - k;
}

static uint64_t xlist_blocks(const struct xlist *l)
{
	uint64_t n = 0;
	size_t k;

	for (k = 0; k < l->x_n; k++)
		n += l->x_v[k].x_e - l->x_v[k].x_s;
	return n;
}

/* ---- summaries ---------------------------------------------------------- */

/* The longest run of ones in @f (f != 0, f != ~0), and where the first such
 * run starts: binary lifting, where c[j] marks where 2^j ones start. */
static unsigned word_maxrun(uint64_t f, unsigned *pos)
{
	uint64_t c[6], cur = ~0ull, t;
	unsigned k = 0;
	int j;

	c[0] = f;
	for (j = 1; j < 6; j++)
		c[j] = c[j - 1] & (c[j - 1] >> (1u << (j - 1)));
	for (j = 5; j >= 0; j--) {
		t = cur & (c[j] >> k);
		if (t) {
			k += 1u << j;
			cur = t;
		}
	}
	*pos = (unsigned)__builtin_ctzll(cur);
	return k;
}

/*
 * The summary of a group from its 8 words, in two passes: the runs that
 * touch word boundaries first, then runs inside a word only in words whose
 * other free bits could beat the longest found so far.
 */
static void gsum_compute(const uint64_t *w, struct gsum *gs)
{
	unsigned i, run = 0, max = 0, maxpos = 0, head = 0, nfree = 0, k, pos;
	unsigned inner[GROUP_WORDS];
	bool in_head = true;

	for (i = 0; i < GROUP_WORDS; i++) {
		uint64_t f = ~w[i];
		unsigned n, lo, hi;

		inner[i] = 0;
		if (f == ~0ull) {
			run += 64;
			nfree += 64;
			continue;
		}
		n = popcount64(f);
		lo = (unsigned)__builtin_ctzll(~f);
		hi = (unsigned)__builtin_clzll(~f);
		nfree += n;
		inner[i] = n - lo - hi;
		run += lo;
		if (in_head) {
			head = run;
			in_head = false;
		}
		if (run > max) {
			max = run;
			maxpos = i * 64 + lo - run;
		}
		run = hi;
	}
	if (run > max) {
		max = run;
		maxpos = GROUP_BLOCKS - run;
	}
	for (i = 0; i < GROUP_WORDS; i++) {
		if (inner[i] <= max)
			continue;
		k = word_maxrun(~w[i], &pos);
		if (k > max) {
			max = k;
			maxpos = i * 64 + pos;
		}
	}
	if (in_head)
		head = run;
	gs->gs_free = (uint16_t)nfree;
	gs->gs_max = (uint16_t)max;
	gs->gs_maxpos = (uint16_t)(max ? maxpos : 0);
	gs->gs_head = (uint16_t)head;
	gs->gs_tail = (uint16_t)run;
}

static const struct gsum gsum_free = { GROUP_BLOCKS, GROUP_BLOCKS, 0, GROUP_BLOCKS, GROUP_BLOCKS };
static const struct gsum gsum_used = { 0, 0, 0, 0, 0 };

static unsigned group_kind(const struct udx_alloc *a, uint64_t g)
{
	return bit_test(a->a_gmeta, g) ? KIND_META : KIND_DATA;
}

static unsigned group_set(const struct udx_alloc *a, uint64_t g, const struct gsum *gs)
{
	if (gs->gs_free == 0)
		return GSET_NONE;
	if (gs->gs_free == GROUP_BLOCKS)
		return GSET_FULL;
	return GSET_PART + group_kind(a, g) * NCLASS + ilog2(gs->gs_max);
}

static struct bset *gset_bset(struct udx_alloc *a, unsigned set)
{
	if (set == GSET_NONE)
		return NULL;
	return set == GSET_FULL ? &a->a_full : &a->a_part[set - GSET_PART];
}

static unsigned region_set(const struct udx_alloc *a, uint64_t r)
{
	if (a->a_rfree[r] == REGION_BLOCKS)
		return RSET_WHOLE;
	return a->a_rfull[r] ? RSET_PART + ilog2(a->a_rfull[r]) : RSET_NONE;
}

static struct bset *rset_bset(struct udx_alloc *a, unsigned set)
{
	if (set == RSET_NONE)
		return NULL;
	return set == RSET_WHOLE ? &a->a_whole : &a->a_rpart[set - RSET_PART];
}

static void region_update(struct udx_alloc *a, uint64_t r)
{
	unsigned old = a->a_rset[r], set = region_set(a, r);
	struct bset *bs;

	if (set == old)
		return;
	if ((bs = rset_bset(a, old)) != NULL)
		bset_clear(bs, r);
	if ((bs = rset_bset(a, set)) != NULL)
		bset_set(bs, r);
	a->a_nwhole += (set == RSET_WHOLE) - (old == RSET_WHOLE);
	a->a_rset[r] = (uint8_t)set;
}

/* Group @g's summary is now @n: bring its sets, region and counters up to
 * date (A2-A6). */
static void group_apply(struct udx_alloc *a, uint64_t g, const struct gsum *n)
{
	struct gsum *gs = &a->a_gsum[g];
	uint64_t r = g / REGION_GROUPS;
	bool was_full = gs->gs_free == GROUP_BLOCKS, full = n->gs_free == GROUP_BLOCKS;
	unsigned old = a->a_gset[g], set;
	struct bset *bs;

	assert_held(a);
	a->a_rfree[r] += (uint32_t)((int64_t)n->gs_free - gs->gs_free);
	a->a_free += (uint64_t)((int64_t)n->gs_free - gs->gs_free);
	if (full && !was_full) {
		a->a_rfull[r]++;
		a->a_nfull++;
	} else if (was_full && !full) {
		a->a_rfull[r]--;
		a->a_nfull--;
	}
	if (full)
		a->a_gmeta[g >> 6] &= ~(1ull << (g & 63));      /* A4 */
	*gs = *n;
	set = group_set(a, g, gs);
	if (set != old) {
		if ((bs = gset_bset(a, old)) != NULL)
			bset_clear(bs, g);
		if ((bs = gset_bset(a, set)) != NULL)
			bset_set(bs, g);
		a->a_gset[g] = (uint8_t)set;
	}
	if (full != was_full)           /* the region's set depends on nothing else */
		region_update(a, r);
}

/* Group @g's bits changed in any way: recompute its summary. */
static void group_update(struct udx_alloc *a, uint64_t g)
{
	struct gsum n;

	gsum_compute(&a->a_bits[g * GROUP_WORDS], &n);
	group_apply(a, g, &n);
}

/* Bits [s, e) changed. */
static void groups_update(struct udx_alloc *a, uint64_t s, uint64_t e)
{
	uint64_t g;

	for (g = s >> GROUP_SHIFT; g <= (e - 1) >> GROUP_SHIFT; g++)
		group_update(a, g);
}

/*
 * Group @g's bits [s, e) (offsets in the group) were one free run, or part
 * of one, and are now set.  Only a cut through the longest run needs the
 * summary recomputed; the head and the tail shrink to the cut.
 */
static void group_took(struct udx_alloc *a, uint64_t g, unsigned s, unsigned e)
{
	struct gsum n = a->a_gsum[g];

	if (e - s == n.gs_free) {
		n = gsum_used;
	} else if (s >= n.gs_maxpos && s < n.gs_maxpos + n.gs_max) {
		gsum_compute(&a->a_bits[g * GROUP_WORDS], &n);
	} else {
		n.gs_free = (uint16_t)(n.gs_free - (e - s));
		if (s < n.gs_head)
			n.gs_head = (uint16_t)s;
		if (e > GROUP_BLOCKS - n.gs_tail)
			n.gs_tail = (uint16_t)(GROUP_BLOCKS - e);
	}
	group_apply(a, g, &n);
}

/* The start of the free run that ends at @s (offsets in a group's words). */
static unsigned run_start(const uint64_t *w, unsigned s)
{
	unsigned q;
	uint64_t m;

	if (s == 0)
		return 0;
	q = (s - 1) >> 6;
	m = w[q] & ((s & 63) ? (1ull << (s & 63)) - 1 : ~0ull);
	while (m == 0) {
		if (q == 0)
			return 0;
		m = w[--q];
	}
	return q * 64 + 64 - (unsigned)__builtin_clzll(m);
}

/*
 * Group @g's bits [s, e) were set and are now clear: they join the free
 * runs on either side, which only ever makes the longest run longer.
 */
static void group_gave(struct udx_alloc *a, uint64_t g, unsigned s, unsigned e)
{
	const uint64_t *w = &a->a_bits[g * GROUP_WORDS];
	struct gsum n = a->a_gsum[g];
	unsigned ms, me;

	if (n.gs_free + (e - s) == GROUP_BLOCKS) {
		n = gsum_free;
	} else {
		ms = run_start(w, s);
		me = (unsigned)next_set(w, e, GROUP_BLOCKS);
		n.gs_free = (uint16_t)(n.gs_free + (e - s));
		if (ms == 0)
			n.gs_head = (uint16_t)me;
		if (me == GROUP_BLOCKS)
			n.gs_tail = (uint16_t)(GROUP_BLOCKS - ms);
		if (me - ms > n.gs_max) {
			n.gs_max = (uint16_t)(me - ms);
			n.gs_maxpos = (uint16_t)ms;
		}
	}
	group_apply(a, g, &n);
}

/* Call @fn for each group that bits [s, e) touch, with offsets in it. */
static void groups_each(struct udx_alloc *a, uint64_t s, uint64_t e,
			void (*fn)(struct udx_alloc *, uint64_t, unsigned, unsigned))
{
	uint64_t g, gs;

	for (g = s >> GROUP_SHIFT; g <= (e - 1) >> GROUP_SHIFT; g++) {
		gs = g << GROUP_SHIFT;
		fn(a, g, (unsigned)(MAX(s, gs) - gs), (unsigned)(MIN(e, gs + GROUP_BLOCKS) - gs));
	}
}

/* Recompute every summary from the bitmap (create, load). */
static void summaries_rebuild(struct udx_alloc *a)
{
	uint64_t g;
	size_t k;

	memset(a->a_gsum, 0, a->a_ngroups * sizeof(*a->a_gsum));
	memset(a->a_gset, 0, a->a_ngroups);
	memset(a->a_gmeta, 0, ((a->a_ngroups + 63) / 64) * sizeof(uint64_t));
	memset(a->a_rfree, 0, a->a_nregions * sizeof(*a->a_rfree));
	memset(a->a_rfull, 0, a->a_nregions * sizeof(*a->a_rfull));
	memset(a->a_rset, 0, a->a_nregions);
	bset_reset(&a->a_full);
	bset_reset(&a->a_whole);
	for (k = 0; k < ARRAY_SIZE(a->a_part); k++)
		bset_reset(&a->a_part[k]);
	for (k = 0; k < ARRAY_SIZE(a->a_rpart); k++)
		bset_reset(&a->a_rpart[k]);
	a->a_free = a->a_nfull = a->a_nwhole = 0;
	for (g = 0; g < a->a_ngroups; g++)
		group_update(a, g);
}

/* Hand out bits [c_i, c_i + c_len).  A metadata request gives its kind to a
 * fully free group it breaks (A4). */
static void take(struct udx_alloc *a, const struct cand *c, bool meta)
{
	uint64_t s = c->c_i, e = c->c_i + c->c_len, g;

	assert_held(a);
	UDX_DEBUG_ON(next_set(a->a_bits, s, e) != e);
	if (meta)
		for (g = s >> GROUP_SHIFT; g <= (e - 1) >> GROUP_SHIFT; g++)
			if (a->a_gsum[g].gs_free == GROUP_BLOCKS)
				a->a_gmeta[g >> 6] |= 1ull << (g & 63);
	bits_set(a->a_bits, s, e);
	groups_each(a, s, e, group_took);
}

/* ---- where free space is ------------------------------------------------ */

/* Free blocks from the start of group @g on, within it. */
static uint64_t group_head(struct udx_alloc *a, uint64_t g)
{
	return a->a_gsum[g].gs_head;
}

/* Free blocks from the start of region @r on, within it. */
static uint64_t region_lead(struct udx_alloc *a, uint64_t r)
{
	uint64_t g0 = r * REGION_GROUPS, end = MIN(g0 + REGION_GROUPS, a->a_ngroups);
	uint64_t g = next_clear(a->a_full.bs_w, g0, end);

	return ((g - g0) << GROUP_SHIFT) + (g < end ? a->a_gsum[g].gs_head : 0);
}

/*
 * Place @want blocks in group @g: in the smallest free run that holds them
 * (the first that holds them exactly ends the search), else in its longest.
 * O(runs in the group), at most 256.
 */
static void group_place(struct udx_alloc *a, uint64_t g, uint64_t want, struct cand *c)
{
	uint64_t s = g << GROUP_SHIFT, end = s + GROUP_BLOCKS, e;
	uint64_t best_i = 0, best = 0;

	while ((s = next_clear(a->a_bits, s, end)) < end) {
		e = next_set(a->a_bits, s, end);
		if (e - s >= want ? best < want || e - s < best : e - s > best) {
			best_i = s;
			best = e - s;
			if (best == want)
				break;
		}
		s = e;
	}
	c->c_i = best_i;
	c->c_len = MIN(best, want);
}

/*
 * Runs of members of a unit bitset (fully free groups or whole regions),
 * each followed by rf_extra() free blocks at the start of the next unit.
 * runfit_scan() finds, among the runs that hold rf_want, the one that uses
 * the fewest units (the tail of the request may sit in the extra blocks),
 * then the shortest (best fit); when none holds it, the one with the most
 * blocks.
 */
struct runfit {
	uint64_t rf_want;               /* blocks */
	unsigned rf_shift;              /* log2 of blocks per unit */
	uint64_t rf_nunits;
	uint64_t (*rf_extra)(struct udx_alloc *a, uint64_t u);  /* may be NULL */
	bool rf_fit;                    /* out: the run holds rf_want */
	uint64_t rf_s, rf_e;            /* out: units [rf_s, rf_e) */
	uint64_t rf_x, rf_avail;        /* out: extra blocks, blocks in all */
	uint64_t rf_used;               /* out: units the request uses */
	bool rf_perfect;                /* out: no run can fit better */
};

static void runfit_init(struct runfit *rf, uint64_t want, unsigned shift, uint64_t nunits,
			uint64_t (*extra)(struct udx_alloc *, uint64_t))
{
	memset(rf, 0, sizeof(*rf));
	rf->rf_want = want;
	rf->rf_shift = shift;
	rf->rf_nunits = nunits;
	rf->rf_extra = extra;
}

/* Units that @want uses in a run followed by @x extra blocks. */
static uint64_t runfit_units(const struct runfit *rf, uint64_t want, uint64_t x)
{
	uint64_t unit = 1ull << rf->rf_shift;

	return want > x ? (want - x + unit - 1) >> rf->rf_shift : 0;
}

/* Scan units [lo, hi) of @w.  O(words + runs). */
static void runfit_scan(struct udx_alloc *a, const uint64_t *w, uint64_t lo, uint64_t hi,
			struct runfit *rf)
{
	uint64_t unit = 1ull << rf->rf_shift, s = lo, e, x, avail, used;
	/* no run can do better than this */
	uint64_t floor = MAX(runfit_units(rf, rf->rf_want, unit - 1), 1);

	while ((s = next_set(w, s, hi)) < hi) {
		e = next_clear(w, s, hi);
		x = 0;
		if (rf->rf_extra && e < rf->rf_nunits && !bit_test(w, e))
			x = rf->rf_extra(a, e);
		avail = ((e - s) << rf->rf_shift) + x;
		if (avail >= rf->rf_want) {
			used = MAX(runfit_units(rf, rf->rf_want, x), 1);
			if (!rf->rf_fit || used < rf->rf_used ||
			    (used == rf->rf_used && e - s < rf->rf_e - rf->rf_s)) {
				rf->rf_fit = true;
				rf->rf_s = s;
				rf->rf_e = e;
				rf->rf_x = x;
				rf->rf_avail = avail;
				rf->rf_used = used;
				if (used == floor && e - s == used) {
					rf->rf_perfect = true;
					return;
				}
			}
		} else if (!rf->rf_fit && avail > rf->rf_avail) {
			rf->rf_s = s;
			rf->rf_e = e;
			rf->rf_x = x;
			rf->rf_avail = avail;
		}
		s = e;
	}
}

/*
 * Where the request goes in the chosen run: at its start, or, when the tail
 * of the request can sit in the extra blocks after the run and so spare a
 * unit, as many whole units before the run's end as needed.
 */
static void runfit_place(const struct runfit *rf, struct cand *c)
{
	uint64_t len = MIN(rf->rf_want, rf->rf_avail), start = rf->rf_s, k;

	if (len == rf->rf_want && rf->rf_x > 0 && len > rf->rf_x) {
		k = runfit_units(rf, len, rf->rf_x);
		if (k << rf->rf_shift < len)
			start = rf->rf_e - k;
	}
	c->c_i = start << rf->rf_shift;
	c->c_len = len;
}

/*
 * The longest free run anywhere, up to @want; among runs that hold @want the
 * shortest.  A walk over the group summaries: O(groups).  Used only when the
 * policy's own places failed (a nearly full or badly fragmented allocator)
 * and by alloc_stats().
 */
static uint64_t longest_any(struct udx_alloc *a, uint64_t want, struct cand *c)
{
	uint64_t g, run = 0, run_i = 0, best = 0, best_len = 0, best_i = 0, best_g = NONE;
	uint64_t longest = 0;

#define CONSIDER(i_, len_, g_) do {                                             \
		uint64_t l_ = (len_), cap_ = MIN(l_, want);                     \
		longest = MAX(longest, l_);                                     \
		if (l_ && (cap_ > best || (cap_ == best && l_ < best_len))) {   \
			best = cap_;                                            \
			best_len = l_;                                          \
			best_i = (i_);                                          \
			best_g = (g_);                                          \
		}                                                               \
	} while (0)

	for (g = 0; g < a->a_ngroups; g++) {
		const struct gsum *gs = &a->a_gsum[g];

		if (gs->gs_free == GROUP_BLOCKS) {
			if (run == 0)
				run_i = g << GROUP_SHIFT;
			run += GROUP_BLOCKS;
			continue;
		}
		if (gs->gs_free == 0) {
			CONSIDER(run_i, run, NONE);
			run = 0;
			continue;
		}
		CONSIDER(run ? run_i : g << GROUP_SHIFT, run + gs->gs_head, NONE);
		if (gs->gs_max > gs->gs_head && gs->gs_max > gs->gs_tail)
			CONSIDER(0, gs->gs_max, g);
		run = gs->gs_tail;
		run_i = ((g + 1) << GROUP_SHIFT) - run;
	}
	CONSIDER(run_i, run, NONE);
#undef CONSIDER
	if (c) {
		if (best_g != NONE) {
			group_place(a, best_g, want, c);
		} else {
			c->c_i = best_i;
			c->c_len = best;
		}
	}
	return longest;
}

/* ---- the policy (docs/ALLOCATOR.md) ------------------------------------- */

/* The end of the free run from bit @i, at most @limit: whole free groups are
 * stepped over by their summary. */
static uint64_t free_run_end(struct udx_alloc *a, uint64_t i, uint64_t limit)
{
	while (i < limit) {
		uint64_t gend = (i | (GROUP_BLOCKS - 1)) + 1, e;

		if ((i & (GROUP_BLOCKS - 1)) == 0 &&
		    a->a_gsum[i >> GROUP_SHIFT].gs_free == GROUP_BLOCKS) {
			i = MIN(gend, limit);
			continue;
		}
		e = next_set(a->a_bits, i, MIN(gend, limit));
		if (e < MIN(gend, limit))
			return e;
		i = e;
	}
	return MIN(i, limit);
}

/*
 * The run at the goal, where the policy lets the request continue a file:
 * a small request stays out of fully free groups and out of groups of the
 * other kind; a request under 1 GiB stays out of whole regions; an aligned
 * request needs an aligned goal.
 */
static void goal_cand(struct udx_alloc *a, const struct req *rq, struct cand *c)
{
	uint64_t i = rq->rq_goal, g, r, e, limit;

	c->c_len = 0;
	if (i == NONE || bit_test(a->a_bits, i))
		return;
	g = i >> GROUP_SHIFT;
	r = g / REGION_GROUPS;
	limit = MIN(i + rq->rq_want, a->a_ngroups << GROUP_SHIFT);
	if (rq->rq_class == REQ_SMALL) {
		if (a->a_gsum[g].gs_free == GROUP_BLOCKS ||
		    group_kind(a, g) != (rq->rq_meta ? KIND_META : KIND_DATA))
			return;
		e = next_set(a->a_bits, i, limit);
		if (e > (g + 1) << GROUP_SHIFT &&
		    a->a_gsum[g + 1].gs_free == GROUP_BLOCKS)
			e = (g + 1) << GROUP_SHIFT;
	} else {
		unsigned align = rq->rq_class == REQ_1G ? REGION_SHIFT : GROUP_SHIFT;

		if (rq->rq_align && (i + a->a_base) & ((1ull << align) - 1))
			return;
		if (rq->rq_class == REQ_2M && a->a_rset[r] == RSET_WHOLE)
			return;
		e = free_run_end(a, i, limit);
		if (rq->rq_class == REQ_2M && e > (r + 1) << REGION_SHIFT &&
		    a->a_rset[r + 1] == RSET_WHOLE)
			e = (r + 1) << REGION_SHIFT;
	}
	c->c_i = i;
	c->c_len = e - i;
}

/* A partly used group of @kind with a free run of rq_want, best fit by
 * class, nearest the goal within a class. */
static bool find_partial(struct udx_alloc *a, const struct req *rq, unsigned kind,
			 struct cand *c)
{
	struct bset *cls = &a->a_part[kind * NCLASS];
	uint64_t want = rq->rq_want, g, first;
	unsigned k = ilog2(want), n;

	if (want & (want - 1)) {
		/* class k holds runs of 2^k up to 2 * 2^k - 1: some hold want */
		first = g = bset_next_wrap(&cls[k], rq->rq_goal_g);
		for (n = 0; g != NONE && n < PARTIAL_TRIES; n++) {
			if (a->a_gsum[g].gs_max >= want) {
				group_place(a, g, want, c);
				return true;
			}
			g = bset_next_wrap(&cls[k], g + 1);
			if (g == first)
				break;
		}
		k++;
	}
	for (; k < NCLASS; k++) {
		g = bset_next_wrap(&cls[k], rq->rq_goal_g);
		if (g != NONE) {
			group_place(a, g, want, c);
			return true;
		}
	}
	return false;
}

/*
 * Break a fully free group for a small request: one in the region with the
 * fewest fully free groups (by class), whole regions last; within the region
 * the group in the shortest run of free groups.
 */
static bool open_group(struct udx_alloc *a, const struct req *rq, struct cand *c)
{
	uint64_t r = NONE, g0;
	struct runfit rf;
	unsigned k;

	for (k = 0; k < NCLASS && r == NONE; k++)
		r = bset_next_wrap(&a->a_rpart[k], rq->rq_goal_r);
	if (r == NONE)
		r = bset_next_wrap(&a->a_whole, rq->rq_goal_r);
	if (r == NONE)
		return false;
	g0 = r * REGION_GROUPS;
	runfit_init(&rf, rq->rq_want, GROUP_SHIFT, a->a_ngroups, NULL);
	runfit_scan(a, a->a_full.bs_w, g0, MIN(g0 + REGION_GROUPS, a->a_ngroups), &rf);
	UDX_BUG_ON(!rf.rf_fit);
	c->c_i = rf.rf_s << GROUP_SHIFT;
	c->c_len = rq->rq_want;
	return true;
}

/*
 * A request of 2 MiB or more in free groups of regions that are already
 * partly used: the run that uses the fewest groups, then the shortest (best
 * fit over all such regions, so that long runs of free groups stay long);
 * among equals the region with the fewest free groups, nearest the goal.
 * Regions with fewer free groups than the request needs are skipped by
 * class.  O(candidate regions * 8 words): this is the cost of a 2 MiB
 * request, not of a small one.
 */
static bool fit_in_used_region(struct udx_alloc *a, const struct req *rq, struct cand *c)
{
	/* groups before the head of the next (at least one: want may have been
	 * capped below 2 MiB by a small allocator) */
	uint64_t kmin = MAX(rq->rq_want >> GROUP_SHIFT, 1);
	uint64_t r, first, g0;
	struct runfit rf, best;
	unsigned k;

	memset(&best, 0, sizeof(best));
	for (k = ilog2(kmin); k < NCLASS; k++) {
		first = r = bset_next_wrap(&a->a_rpart[k], rq->rq_goal_r);
		while (r != NONE) {
			g0 = r * REGION_GROUPS;
			runfit_init(&rf, rq->rq_want, GROUP_SHIFT, a->a_ngroups, group_head);
			runfit_scan(a, a->a_full.bs_w, g0,
				    MIN(g0 + REGION_GROUPS, a->a_ngroups), &rf);
			if (rf.rf_fit && (!best.rf_fit || rf.rf_used < best.rf_used ||
					  (rf.rf_used == best.rf_used &&
					   rf.rf_e - rf.rf_s < best.rf_e - best.rf_s))) {
				best = rf;
				if (rf.rf_perfect)
					goto out;
			}
			r = bset_next_wrap(&a->a_rpart[k], r + 1);
			if (r == first)
				break;
		}
	}
out:
	if (best.rf_fit)
		runfit_place(&best, c);
	return best.rf_fit;
}

/* The longest 2 MiB aligned run, up to rq_want (best fit among those that
 * hold it); with @heads, also the free heads of partly used groups when no
 * group is fully free.  O(groups / 64), O(groups) with heads. */
static void longest_aligned_2m(struct udx_alloc *a, const struct req *rq, bool heads,
			       struct cand *c)
{
	struct runfit rf;
	uint64_t g;

	runfit_init(&rf, rq->rq_want, GROUP_SHIFT, a->a_ngroups, group_head);
	runfit_scan(a, a->a_full.bs_w, 0, a->a_ngroups, &rf);
	runfit_place(&rf, c);
	if (rf.rf_avail || !heads)
		return;
	for (g = 0; g < a->a_ngroups; g++) {
		if (a->a_gsum[g].gs_head > c->c_len) {
			c->c_i = g << GROUP_SHIFT;
			c->c_len = MIN(a->a_gsum[g].gs_head, rq->rq_want);
		}
	}
}

/* The longest 1 GiB aligned run, up to rq_want: runs of whole regions, else
 * the free lead of a region.  O(regions * 8 words). */
static void longest_aligned_1g(struct udx_alloc *a, const struct req *rq, struct cand *c)
{
	struct runfit rf;
	uint64_t r, lead;

	runfit_init(&rf, rq->rq_want, REGION_SHIFT, a->a_nregions, region_lead);
	runfit_scan(a, a->a_whole.bs_w, 0, a->a_nregions, &rf);
	runfit_place(&rf, c);
	if (rf.rf_avail)
		return;
	for (r = 0; r < a->a_nregions; r++) {
		lead = region_lead(a, r);
		if (lead > c->c_len) {
			c->c_i = r << REGION_SHIFT;
			c->c_len = MIN(lead, rq->rq_want);
		}
	}
}

static void pick_small(struct udx_alloc *a, const struct req *rq, struct cand *c)
{
	struct cand gc;

	goal_cand(a, rq, &gc);
	if (gc.c_len == rq->rq_want) {
		*c = gc;
		return;
	}
	if (rq->rq_meta) {
		if (find_partial(a, rq, KIND_META, c) || open_group(a, rq, c) ||
		    find_partial(a, rq, KIND_DATA, c))
			return;
	} else {
		if (find_partial(a, rq, KIND_DATA, c) || find_partial(a, rq, KIND_META, c) ||
		    open_group(a, rq, c))
			return;
	}
	longest_any(a, rq->rq_want, c);
	if (gc.c_len >= c->c_len)
		*c = gc;
}

/* Not aligned: the aligned run unless it is under 2 MiB or under min, then
 * the longest run anywhere if it is longer. */
static void pick_fallback(struct udx_alloc *a, const struct req *rq, struct cand *c)
{
	struct cand any;

	longest_aligned_2m(a, rq, rq->rq_align, c);
	if (rq->rq_align || (c->c_len >= GROUP_BLOCKS && c->c_len >= rq->rq_min))
		return;
	longest_any(a, rq->rq_want, &any);
	if (any.c_len > c->c_len)
		*c = any;
}

static void pick_2m(struct udx_alloc *a, const struct req *rq, struct cand *c)
{
	struct cand gc;

	goal_cand(a, rq, &gc);
	if (gc.c_len == rq->rq_want) {
		*c = gc;
		return;
	}
	if (fit_in_used_region(a, rq, c))
		return;
	c->c_i = bset_next_wrap(&a->a_whole, rq->rq_goal_r);
	if (c->c_i != NONE) {
		c->c_i <<= REGION_SHIFT;
		c->c_len = rq->rq_want;
		return;
	}
	pick_fallback(a, rq, c);
	if (gc.c_len >= c->c_len)
		*c = gc;
}

static void pick_1g(struct udx_alloc *a, const struct req *rq, struct cand *c)
{
	struct cand gc;

	goal_cand(a, rq, &gc);
	if (gc.c_len == rq->rq_want) {
		*c = gc;
		return;
	}
	longest_aligned_1g(a, rq, c);
	if (c->c_len < rq->rq_want && !rq->rq_align &&
	    (c->c_len < REGION_BLOCKS || c->c_len < rq->rq_min))
		pick_fallback(a, rq, c);
	if (gc.c_len >= c->c_len)
		*c = gc;
}

/* ---- the interface ------------------------------------------------------ */

static void alloc_release(struct udx_alloc *a)
{
	size_t k;

	free(a->a_bits);
	free(a->a_gsum);
	free(a->a_gset);
	free(a->a_gmeta);
	free(a->a_rfree);
	free(a->a_rfull);
	free(a->a_rset);
	bset_exit(&a->a_full);
	bset_exit(&a->a_whole);
	for (k = 0; k < ARRAY_SIZE(a->a_part); k++)
		bset_exit(&a->a_part[k]);
	for (k = 0; k < ARRAY_SIZE(a->a_rpart); k++)
		bset_exit(&a->a_rpart[k]);
	free(a->a_excl.x_v);
	free(a->a_pend.x_v);
	free(a);
}

int alloc_create(uint64_t first, uint64_t count, struct udx_alloc **out)
{
	struct udx_alloc *a;
	uint64_t nwords;
	size_t k;
	if (count == 0 || first + count < first || first + count > (1ull << 52))
		return udx_err(-EINVAL, "allocator range [%llu, +%llu) is empty or too large",
			       (unsigned long long)first, (unsigned long long)count);
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return udx_err(-ENOMEM, "out of memory");
	a->a_first = first;
	a->a_count = count;
	a->a_end = first + count;
	a->a_base = ALIGN_DOWN(first, REGION_BLOCKS);
	a->a_ngroups = (a->a_end - a->a_base + GROUP_BLOCKS - 1) >> GROUP_SHIFT;
	a->a_nregions = (a->a_ngroups + REGION_GROUPS - 1) / REGION_GROUPS;
	nwords = a->a_ngroups * GROUP_WORDS;

	/* one padding word: alloc_save() reads a word past the last bit */
	a->a_bits = malloc((nwords + 1) * sizeof(uint64_t));
	a->a_gsum = calloc(a->a_ngroups, sizeof(*a->a_gsum));
	a->a_gset = calloc(a->a_ngroups, 1);
	a->a_gmeta = calloc((a->a_ngroups + 63) / 64, sizeof(uint64_t));
	a->a_rfree = calloc(a->a_nregions, sizeof(*a->a_rfree));
	a->a_rfull = calloc(a->a_nregions, sizeof(*a->a_rfull));
	a->a_rset = calloc(a->a_nregions, 1);
	if (!a->a_bits || !a->a_gsum || !a->a_gset || !a->a_gmeta || !a->a_rfree ||
	    !a->a_rfull || !a->a_rset)
		goto out_release;
	if (bset_init(&a->a_full, a->a_ngroups) || bset_init(&a->a_whole, a->a_nregions))
		goto out_release;
	for (k = 0; k < ARRAY_SIZE(a->a_part); k++)
		if (bset_init(&a->a_part[k], a->a_ngroups))
			goto out_release;
	for (k = 0; k < ARRAY_SIZE(a->a_rpart); k++)
		if (bset_init(&a->a_rpart[k], a->a_nregions))
			goto out_release;

	memset(a->a_bits, 0xff, (nwords + 1) * sizeof(uint64_t));      /* A1 */
	bits_clear(a->a_bits, first - a->a_base, a->a_end - a->a_base);
	pthread_mutex_init(&a->a_lock, NULL);
	alloc_lock(a);
	summaries_rebuild(a);
	alloc_unlock(a);
	*out = a;
	return 0;

out_release:
	alloc_release(a);
	return udx_err(-ENOMEM, "out of memory for the allocator of %llu blocks",
		       (unsigned long long)count);
}

void alloc_destroy(struct udx_alloc *a)
{
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->a_lock);
	alloc_release(a);
}

int alloc_blocks(struct udx_alloc *a, uint64_t want, uint64_t min, uint64_t goal,
		 unsigned flags, uint64_t *blk, uint64_t *got)
{
	struct req rq;
	struct cand c = { 0, 0 };
	int ret = 0;

	if (min == 0 || min > want)
		return udx_err(-EINVAL, "allocation of %llu..%llu blocks: need 1 <= min <= want",
			       (unsigned long long)min, (unsigned long long)want);
	memset(&rq, 0, sizeof(rq));
	rq.rq_want = MIN(want, a->a_count);
	rq.rq_min = min;
	rq.rq_class = want >= REGION_BLOCKS ? REQ_1G : want >= GROUP_BLOCKS ? REQ_2M : REQ_SMALL;
	rq.rq_meta = (flags & UDX_ALLOC_META) && rq.rq_class == REQ_SMALL;
	rq.rq_align = (flags & UDX_ALLOC_ALIGN) && rq.rq_class != REQ_SMALL;
	rq.rq_goal = NONE;
	if (goal && goal >= a->a_first && goal < a->a_end) {
		rq.rq_goal = goal - a->a_base;
		rq.rq_goal_g = rq.rq_goal >> GROUP_SHIFT;
		rq.rq_goal_r = rq.rq_goal >> REGION_SHIFT;
	}

	alloc_lock(a);
	if (min > a->a_free || min > rq.rq_want) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	if (rq.rq_class == REQ_SMALL)
		pick_small(a, &rq, &c);
	else if (rq.rq_class == REQ_2M)
		pick_2m(a, &rq, &c);
	else
		pick_1g(a, &rq, &c);
	if (c.c_len < min) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	take(a, &c, rq.rq_meta);
	*blk = a->a_base + c.c_i;
	*got = c.c_len;
out_unlock:
	alloc_unlock(a);
	if (ret)
		udx_err(ret, "no free %srun of %llu blocks", rq.rq_align ? "aligned " : "",
			(unsigned long long)min);
	return ret;
}

/* Give bits [s, e) back; blocks excluded while in use become excluded
 * instead (A7). */
static void give(struct udx_alloc *a, uint64_t s, uint64_t e)
{
	uint64_t base = a->a_base, cur = s, ps, pe;
	size_t k;

	assert_held(a);
	if (a->a_pend.x_n && xlist_overlaps(&a->a_pend, s + base, e + base)) {
		for (k = xlist_find(&a->a_pend, s + base);
		     k < a->a_pend.x_n && a->a_pend.x_v[k].x_s < e + base; k++) {
			ps = MAX(a->a_pend.x_v[k].x_s - base, s);
			pe = MIN(a->a_pend.x_v[k].x_e - base, e);
			bits_clear(a->a_bits, cur, ps);
			xlist_add(&a->a_excl, ps + base, pe + base);
			cur = pe;
		}
		xlist_remove(&a->a_pend, s + base, e + base);
		bits_clear(a->a_bits, cur, e);
		groups_update(a, s, e);
		return;
	}
	bits_clear(a->a_bits, s, e);
	groups_each(a, s, e, group_gave);
}

void alloc_free(struct udx_alloc *a, uint64_t blk, uint64_t len)
{
	uint64_t s = blk - a->a_base;

	if (len == 0)
		return;
	UDX_BUG_ON(blk < a->a_first || blk >= a->a_end || len > a->a_end - blk);
	alloc_lock(a);
	/* a free block, or an excluded one (it was free when excluded) */
	UDX_BUG_ON(next_clear(a->a_bits, s, s + len) != s + len);
	UDX_BUG_ON(xlist_overlaps(&a->a_excl, blk, blk + len));
	give(a, s, s + len);
	alloc_unlock(a);
}

int alloc_mark_used(struct udx_alloc *a, uint64_t blk, uint64_t len)
{
	uint64_t base = a->a_base, s, e, i, j;
	size_t k;
	int ret = 0;

	if (len == 0)
		return 0;
	if (blk < a->a_first || blk >= a->a_end || len > a->a_end - blk)
		return udx_err(-EINVAL, "blocks %llu+%llu are outside the allocator's range",
			       (unsigned long long)blk, (unsigned long long)len);
	s = blk - base;
	e = s + len;
	alloc_lock(a);
	/* in use and not excluded: it has an owner already */
	for (i = next_set(a->a_bits, s, e); i < e; i = next_set(a->a_bits, j, e)) {
		j = next_clear(a->a_bits, i, e);
		if (!xlist_covers(&a->a_excl, i + base, j + base)) {
			ret = udx_err(-EEXIST, "blocks %llu+%llu are in use twice",
				      (unsigned long long)(i + base), (unsigned long long)(j - i));
			goto out_unlock;
		}
	}
	/* excluded blocks with an owner after all: excluded when freed */
	for (k = xlist_find(&a->a_excl, blk);
	     k < a->a_excl.x_n && a->a_excl.x_v[k].x_s < blk + len; k++)
		xlist_add(&a->a_pend, MAX(a->a_excl.x_v[k].x_s, blk),
			  MIN(a->a_excl.x_v[k].x_e, blk + len));
	xlist_remove(&a->a_excl, blk, blk + len);
	bits_set(a->a_bits, s, e);
	groups_update(a, s, e);
out_unlock:
	alloc_unlock(a);
	return ret;
}

void alloc_exclude(struct udx_alloc *a, uint64_t blk, uint64_t len)
{
	uint64_t base = a->a_base, s, e, i, j, p;
	size_t k;

	s = MAX(blk, a->a_first);
	e = blk + len < blk ? a->a_end : MIN(blk + len, a->a_end);
	if (s >= e)
		return;
	s -= base;
	e -= base;
	alloc_lock(a);
	for (i = s; i < e; i = j) {
		if (!bit_test(a->a_bits, i)) {
			j = next_set(a->a_bits, i, e);
			bits_set(a->a_bits, i, j);
			xlist_add(&a->a_excl, i + base, j + base);
			continue;
		}
		/* in use: pending, except what is excluded already */
		j = next_clear(a->a_bits, i, e);
		p = i + base;
		for (k = xlist_find(&a->a_excl, p);
		     k < a->a_excl.x_n && a->a_excl.x_v[k].x_s < j + base; k++) {
			if (p < a->a_excl.x_v[k].x_s)
				xlist_add(&a->a_pend, p, a->a_excl.x_v[k].x_s);
			p = a->a_excl.x_v[k].x_e;
		}
		if (p < j + base)
			xlist_add(&a->a_pend, p, j + base);
	}
	groups_update(a, s, e);
	alloc_unlock(a);
}

bool alloc_is_free(struct udx_alloc *a, uint64_t blk, uint64_t len)
{
	uint64_t s = blk - a->a_base;
	bool ret;

	if (blk < a->a_first || blk >= a->a_end || len > a->a_end - blk)
		return false;
	alloc_lock(a);
	ret = next_set(a->a_bits, s, s + len) == s + len;
	alloc_unlock(a);
	return ret;
}

bool alloc_range_owned(struct udx_alloc *a, uint64_t blk, uint64_t len)
{
	uint64_t s = blk - a->a_base;
	bool ret;

	if (len == 0 || blk < a->a_first || blk >= a->a_end || len > a->a_end - blk)
		return false;
	alloc_lock(a);
	ret = next_clear(a->a_bits, s, s + len) == s + len;
	alloc_unlock(a);
	return ret;
}

#ifdef UDX_DEBUG
/* Check the summary level; returns the number of members. */
static uint64_t bset_verify(const struct bset *bs)
{
	uint64_t q, n = 0;

	for (q = 0; q < bs->bs_nwords; q++) {
		UDX_BUG_ON(!!bs->bs_w[q] != !!((bs->bs_sum[q >> 6] >> (q & 63)) & 1));
		n += popcount64(bs->bs_w[q]);
	}
	return n;
}

/* Check A1-A7 against the bitmap.  O(bits / 64 + ranges). */
static void alloc_verify(struct udx_alloc *a)
{
	uint64_t g, r, nfree = 0, nfull = 0, nwhole = 0, members = 0, rmembers = 0;
	uint64_t fs = a->a_first - a->a_base, fe = a->a_end - a->a_base;
	size_t k;

	UDX_BUG_ON(next_clear(a->a_bits, 0, fs) != fs);
	UDX_BUG_ON(next_clear(a->a_bits, fe, a->a_ngroups << GROUP_SHIFT) !=
		   a->a_ngroups << GROUP_SHIFT);
	for (r = 0; r < a->a_nregions; r++) {
		uint64_t rfree = 0, rfull = 0;

		for (g = r * REGION_GROUPS; g < MIN((r + 1) * REGION_GROUPS, a->a_ngroups); g++) {
			struct gsum n;
			unsigned set;

			const struct gsum *gs = &a->a_gsum[g];
			uint64_t mp = (g << GROUP_SHIFT) + gs->gs_maxpos;

			gsum_compute(&a->a_bits[g * GROUP_WORDS], &n);
			UDX_BUG_ON(n.gs_free != gs->gs_free || n.gs_max != gs->gs_max ||
				   n.gs_head != gs->gs_head || n.gs_tail != gs->gs_tail);
			/* the recorded longest run is one (ties may differ) */
			UDX_BUG_ON(next_set(a->a_bits, mp, mp + gs->gs_max) != mp + gs->gs_max);
			UDX_BUG_ON(n.gs_free == GROUP_BLOCKS && group_kind(a, g) != KIND_DATA);
			set = group_set(a, g, &n);
			UDX_BUG_ON(set != a->a_gset[g]);
			UDX_BUG_ON(set != GSET_NONE && !bit_test(gset_bset(a, set)->bs_w, g));
			members += set != GSET_NONE;
			rfree += n.gs_free;
			rfull += n.gs_free == GROUP_BLOCKS;
		}
		UDX_BUG_ON(rfree != a->a_rfree[r] || rfull != a->a_rfull[r]);
		UDX_BUG_ON(region_set(a, r) != a->a_rset[r]);
		UDX_BUG_ON(a->a_rset[r] != RSET_NONE &&
			   !bit_test(rset_bset(a, a->a_rset[r])->bs_w, r));
		rmembers += a->a_rset[r] != RSET_NONE;
		nfree += rfree;
		nfull += rfull;
		nwhole += a->a_rset[r] == RSET_WHOLE;
	}
	UDX_BUG_ON(nfree != a->a_free || nfull != a->a_nfull || nwhole != a->a_nwhole);
	/* each group is in its set (above) and in no other: count members */
	for (k = 0; k < ARRAY_SIZE(a->a_part); k++)
		members -= bset_verify(&a->a_part[k]);
	members -= bset_verify(&a->a_full);
	UDX_BUG_ON(members != 0);
	members = bset_verify(&a->a_whole);
	for (k = 0; k < ARRAY_SIZE(a->a_rpart); k++)
		members += bset_verify(&a->a_rpart[k]);
	UDX_BUG_ON(members != rmembers);
	for (k = 0; k < a->a_excl.x_n; k++) {
		const struct xrange *x = &a->a_excl.x_v[k];

		UDX_BUG_ON(x->x_s >= x->x_e || (k && x->x_s <= a->a_excl.x_v[k - 1].x_e));
		UDX_BUG_ON(next_clear(a->a_bits, x->x_s - a->a_base, x->x_e - a->a_base) !=
			   x->x_e - a->a_base);
		UDX_BUG_ON(xlist_overlaps(&a->a_pend, x->x_s, x->x_e));
	}
	for (k = 0; k < a->a_pend.x_n; k++) {
		const struct xrange *x = &a->a_pend.x_v[k];

		UDX_BUG_ON(x->x_s >= x->x_e || (k && x->x_s <= a->a_pend.x_v[k - 1].x_e));
		UDX_BUG_ON(next_clear(a->a_bits, x->x_s - a->a_base, x->x_e - a->a_base) !=
			   x->x_e - a->a_base);
	}
}
#endif

void alloc_stats(struct udx_alloc *a, struct alloc_stats *st)
{
	alloc_lock(a);
#ifdef UDX_DEBUG
	alloc_verify(a);
#endif
	st->total = a->a_count;
	st->free = a->a_free;
	st->free_2m = a->a_nfull;
	st->free_1g = a->a_nwhole;
	st->largest_free = longest_any(a, UINT64_MAX, NULL);
	st->excluded = xlist_blocks(&a->a_excl);
	alloc_unlock(a);
}

/* 64 bits of @w from bit @p on (the bitmap has a padding word). */
static uint64_t bits_get64(const uint64_t *w, uint64_t p)
{
	uint64_t q = p >> 6, r = p & 63;

	return r ? (w[q] >> r) | (w[q + 1] << (64 - r)) : w[q];
}

/* Write the low @n bits of @v at bit @p of @w. */
static void bits_put(uint64_t *w, uint64_t p, uint64_t v, uint64_t n)
{
	uint64_t q = p >> 6, r = p & 63, m = n == 64 ? ~0ull : (1ull << n) - 1;

	w[q] = (w[q] & ~(m << r)) | ((v & m) << r);
	if (r && r + n > 64)
		w[q + 1] = (w[q + 1] & ~(m >> (64 - r))) | ((v & m) >> (64 - r));
}

void alloc_save(struct udx_alloc *a, uint8_t *bitmap)
{
	uint64_t off = a->a_first - a->a_base, b, v, n;
	unsigned j;

	alloc_lock(a);
	for (b = 0; b < a->a_count; b += 64) {
		n = MIN(64, a->a_count - b);
		v = bits_get64(a->a_bits, off + b);
		if (n < 64)
			v &= (1ull << n) - 1;
		for (j = 0; j < (n + 7) / 8; j++)
			bitmap[b / 8 + j] = (uint8_t)(v >> (8 * j));
	}
	alloc_unlock(a);
}

void alloc_save_unowned_free(struct udx_alloc *a, uint8_t *bitmap)
{
	uint64_t b;
	size_t k;

	alloc_lock(a);
	for (k = 0; k < a->a_excl.x_n; k++)
		for (b = a->a_excl.x_v[k].x_s; b < a->a_excl.x_v[k].x_e; b++)
			if (b >= a->a_first && b < a->a_first + a->a_count)
				bitmap[(b - a->a_first) / 8] &=
					(uint8_t)~(1u << ((b - a->a_first) % 8));
	alloc_unlock(a);
}

/*
 * Exclusions outlive a load (the poisoned memory is still poisoned): where
 * the loaded bitmap says a block is free it is excluded; where it says it is
 * in use, it may have an owner, so it is excluded when freed (A7).
 */
static void exclusions_reload(struct udx_alloc *a)
{
	struct xlist all = a->a_pend;
	uint64_t base = a->a_base, i, j, e;
	size_t k;

	memset(&a->a_pend, 0, sizeof(a->a_pend));
	for (k = 0; k < a->a_excl.x_n; k++)
		xlist_add(&all, a->a_excl.x_v[k].x_s, a->a_excl.x_v[k].x_e);
	a->a_excl.x_n = 0;
	for (k = 0; k < all.x_n; k++) {
		e = all.x_v[k].x_e - base;
		for (i = all.x_v[k].x_s - base; i < e; i = j) {
			if (bit_test(a->a_bits, i)) {
				j = next_clear(a->a_bits, i, e);
				xlist_add(&a->a_pend, i + base, j + base);
			} else {
				j = next_set(a->a_bits, i, e);
				bits_set(a->a_bits, i, j);
				xlist_add(&a->a_excl, i + base, j + base);
			}
		}
	}
	free(all.x_v);
}

void alloc_load(struct udx_alloc *a, const uint8_t *bitmap)
{
	uint64_t off = a->a_first - a->a_base, b, v, n;
	unsigned j;

	alloc_lock(a);
	for (b = 0; b < a->a_count; b += 64) {
		n = MIN(64, a->a_count - b);
		v = 0;
		for (j = 0; j < (n + 7) / 8; j++)
			v |= (uint64_t)bitmap[b / 8 + j] << (8 * j);
		bits_put(a->a_bits, off + b, v, n);
	}
	exclusions_reload(a);
	summaries_rebuild(a);
	alloc_unlock(a);
}
