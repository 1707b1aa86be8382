/* SPDX-License-Identifier: MIT */
/*
 * Folios: making ranges live (0 -> 1), get, try_get, put (1 -> 0), waiting
 * for a folio to go idle, and finding the folio that holds a page.
 *
 * Locking:
 *   - pg_region.rg_lock (one per 1 GiB) serializes every change of shape in
 *     its region: 0 -> 1, 1 -> 0, and pg_inner.  A request over several
 *     regions takes their locks in ascending order; nothing else nests them.
 *   - get/try_get/put change a live folio's count lock-free, but never take
 *     it to 0: the put that would is done with the region lock held, so a
 *     folio whose count the region lock holder reads as > 0 stays live until
 *     it drops the lock.
 *   - pg_waitq.wq_lock guards the waiter lists and the WAITERS bits.
 *   Order: rg_lock -> wq_lock is never needed; wakeups run with no lock held.
 */
#include <errno.h>
#include <string.h>

#include "base/err.h"
#include "dev/pgmap_internal.h"

/* A(p): the order of the largest aligned block that starts at p. */
static inline unsigned home_order(uint64_t pfn)
{
	if (pfn == 0)
		return UDX_MAX_ORDER;
	return MIN((unsigned)__builtin_ctzll(pfn), (unsigned)UDX_MAX_ORDER);
}

static inline uint32_t ref_load(struct udx_pgmap *pg, uint64_t pfn)
{
	return __atomic_load_n(&pg->pg_ref[pfn], __ATOMIC_ACQUIRE);
}

/*
 * The number of live folios strictly inside [h, h + 2^o) and smaller than
 * it, given that h is aligned to 2^o and the head word at h is idle.  Region
 * lock held.
 *
 * Derivation: the home block B(h) = [h, h + 2^A) splits into [h, h + 2^o)
 * and the blocks B(h + 2^j) for j = o .. A-1, each of which is the home block
 * of h + 2^j (that page has alignment exactly j).  pg_inner[h] counts the
 * live folios inside B(h) of order < A; take away those of each B(h + 2^j):
 * the ones strictly inside it (pg_inner[h + 2^j]) and the one that is all of
 * it (a live head of order j at h + 2^j).  A live folio of order >= o at h
 * itself would also need removing, but the caller has checked h is idle.
 */
static uint32_t folio_inner_live(struct udx_pgmap *pg, uint64_t h, unsigned o)
{
	unsigned a = home_order(h), j;
	uint32_t d = READ_ONCE(pg->pg_inner[h]);

	for (j = o; j < a; j++) {
		uint64_t r = h + (1ull << j);
		uint32_t w;

		if (r >= pg->pg_npages)
			break;
		d -= READ_ONCE(pg->pg_inner[r]);
		w = ref_load(pg, r);
		if (F_REF(w) && F_ORDER(w) == j)
			d--;
	}
	return d;
}

/* Count a folio (h, o) in or out of the home blocks that contain it. */
static void folio_account(struct udx_pgmap *pg, uint64_t h, unsigned o, int delta)
{
	uint64_t prev = UINT64_MAX;
	unsigned k;

	for (k = o + 1; k <= UDX_MAX_ORDER; k++) {
		uint64_t q = ALIGN_DOWN(h, 1ull << k);

		if (q == prev)
			continue;
		prev = q;
		WRITE_ONCE(pg->pg_inner[q], READ_ONCE(pg->pg_inner[q]) + (uint32_t)delta);
	}
}

enum folio_state { FOLIO_IDLE, FOLIO_SAME };

/*
 * Can (h, o) be requested?  FOLIO_IDLE: no live folio overlaps it;
 * FOLIO_SAME: it is live with that very shape; -EBUSY: a live folio of a
 * different shape overlaps it.  Region lock held.
 */
static int folio_check(struct udx_pgmap *pg, uint64_t h, unsigned o)
{
	uint64_t prev = h;
	uint32_t w = ref_load(pg, h);
	unsigned k;

	if (F_REF(w) && F_ORDER(w) != o)
		return -EBUSY;
	if (F_REF(w))
		return F_REF(w) < UDX_FOLIO_REF_MAX ? FOLIO_SAME : -EOVERFLOW;
	/* a live folio that contains the range: its head is h rounded down */
	for (k = o + 1; k <= UDX_MAX_ORDER; k++) {
		uint64_t q = ALIGN_DOWN(h, 1ull << k);

		if (q == prev)
			continue;
		prev = q;
		w = ref_load(pg, q);
		if (F_REF(w) && F_ORDER(w) >= k)
			return -EBUSY;
	}
	/* live folios inside the range */
	if (o > 0 && folio_inner_live(pg, h, o) != 0)
		return -EBUSY;
	return FOLIO_IDLE;
}

/* 0 -> 1.  Region lock held; folio_check() said FOLIO_IDLE; the caller holds
 * the liveness reference this folio now owns. */
static void folio_make_live(struct udx_pgmap *pg, uint64_t h, unsigned o)
{
	uint32_t *word = &pg->pg_ref[h];
	uint32_t w = __atomic_load_n(word, __ATOMIC_RELAXED);

	pg_region_assert_held(pg_region_of(pg, h));
	do {
		UDX_BUG_ON(F_REF(w) != 0);
	} while (!__atomic_compare_exchange_n(word, &w,
			(w & F_WAITERS) | ((uint32_t)o << F_ORDER_SHIFT) | 1u,
			true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	folio_account(pg, h, o, +1);
	WRITE_ONCE(pg_region_of(pg, h)->rg_live, pg_region_of(pg, h)->rg_live + 1);
}

/* Split [start, end) pages into maximally sized aligned folios. */
static unsigned folio_next_order(uint64_t pfn, uint64_t end)
{
	unsigned o = home_order(pfn);

	while ((1ull << o) > end - pfn)
		o--;
	return o;
}

size_t udx_pgmap_nr_folios(uint64_t offset, uint64_t length)
{
	uint64_t pfn = offset >> UDX_PAGE_SHIFT, end = (offset + length) >> UDX_PAGE_SHIFT;
	size_t n = 0;

	while (pfn < end) {
		pfn += 1ull << folio_next_order(pfn, end);
		n++;
	}
	return n;
}

static void regions_lock(struct udx_pgmap *pg, uint64_t first, uint64_t last)
{
	uint64_t r;

	for (r = first; r <= last; r++)
		pg_region_lock(&pg->pg_regions[r]);
}

static void regions_unlock(struct udx_pgmap *pg, uint64_t first, uint64_t last)
{
	uint64_t r;

	for (r = last + 1; r-- > first;)
		pg_region_unlock(&pg->pg_regions[r]);
}

/*
 * Make [start, end) pages live as the folios of folio_next_order(), all or
 * nothing.  @order_only: exactly one folio of that order.
 */
static int folio_request(struct udx_pgmap *pg, uint64_t start, uint64_t end,
			 int order_only, struct udx_folio **folios, size_t *nr)
{
	uint64_t first = start >> PG_REGION_ORDER, last = (end - 1) >> PG_REGION_ORDER;
	uint64_t pfn;
	size_t n = 0, nnew = 0, i;
	int ret = 0;

	if (pg_poisoned_pages(pg, start, end))
		return udx_err(-EHWPOISON, "the range %#llx+%#llx contains poisoned memory",
			       (unsigned long long)(start << UDX_PAGE_SHIFT),
			       (unsigned long long)((end - start) << UDX_PAGE_SHIFT));
	regions_lock(pg, first, last);
	/* pass 1: check every folio; nothing changes yet */
	for (pfn = start; pfn < end; n++) {
		unsigned o = order_only >= 0 ? (unsigned)order_only : folio_next_order(pfn, end);
		int st = folio_check(pg, pfn, o);

		if (st == -EOVERFLOW) {
			ret = udx_err(st, "the folio at %#llx has the most references it can hold",
				      (unsigned long long)(pfn << UDX_PAGE_SHIFT));
			goto out_unlock;
		}
		if (st < 0) {
			ret = udx_err(-EBUSY, "page %#llx belongs to a live folio of another shape",
				      (unsigned long long)(pfn << UDX_PAGE_SHIFT));
			goto out_unlock;
		}
		nnew += st == FOLIO_IDLE;
		pfn += 1ull << o;
	}
	/* one liveness reference for each folio that goes 0 -> 1 */
	for (i = 0; i < nnew; i++) {
		if (!udx_liveref_tryget_live(&pg->pg_live)) {
			while (i--)
				udx_liveref_put(&pg->pg_live);
			ret = udx_err(-ENXIO, "the device is being removed");
			goto out_unlock;
		}
	}
	/* pass 2: apply */
	for (pfn = start, i = 0; pfn < end; i++) {
		unsigned o = order_only >= 0 ? (unsigned)order_only : folio_next_order(pfn, end);
		uint32_t w = ref_load(pg, pfn);

		if (F_REF(w)) {
			/* same shape, and live until we unlock */
			__atomic_fetch_add(&pg->pg_ref[pfn], 1, __ATOMIC_RELAXED);
		} else {
			folio_make_live(pg, pfn, o);
		}
		folios[i] = pg_folio(pg, pfn);
		pfn += 1ull << o;
	}
	*nr = n;
out_unlock:
	regions_unlock(pg, first, last);
	return ret;
}

static int folio_check_range(struct udx_pgmap *pg, uint64_t off, uint64_t len)
{
	uint64_t size = udx_dev_size(pg->pg_dev);

	if (len == 0 || !IS_ALIGNED(off | len, UDX_PAGE_SIZE))
		return udx_err(-EINVAL, "range %#llx+%#llx is empty or not 4 KiB aligned",
			       (unsigned long long)off, (unsigned long long)len);
	if (off >= size || len > size - off)
		return udx_err(-EINVAL, "range %#llx+%#llx is beyond the device (%llu bytes)",
			       (unsigned long long)off, (unsigned long long)len,
			       (unsigned long long)size);
	return 0;
}

int udx_pgmap_request(struct udx_pgmap *pg, uint64_t offset, uint64_t length,
		      struct udx_folio **folios, size_t max, size_t *nr)
{
	size_t need;
	int ret = folio_check_range(pg, offset, length);

	if (ret)
		return ret;
	need = udx_pgmap_nr_folios(offset, length);
	if (need > max)
		return udx_err(-ENOBUFS, "the range needs %zu folios, room was given for %zu",
			       need, max);
	return folio_request(pg, offset >> UDX_PAGE_SHIFT,
			     (offset + length) >> UDX_PAGE_SHIFT, -1, folios, nr);
}

int udx_pgmap_request_order(struct udx_pgmap *pg, uint64_t offset, unsigned order,
			    struct udx_folio **folio)
{
	uint64_t len;
	size_t nr;
	int ret;

	if (order > UDX_MAX_ORDER)
		return udx_err(-EINVAL, "order %u is above the largest folio (%u)",
			       order, UDX_MAX_ORDER);
	len = UDX_PAGE_SIZE << order;
	ret = folio_check_range(pg, offset, len);
	if (ret)
		return ret;
	if (!IS_ALIGNED(offset, len))
		return udx_err(-EINVAL, "offset %#llx is not aligned to the folio size %#llx",
			       (unsigned long long)offset, (unsigned long long)len);
	return folio_request(pg, offset >> UDX_PAGE_SHIFT,
			     (offset + len) >> UDX_PAGE_SHIFT, (int)order, folio, &nr);
}

void udx_folio_get(struct udx_pgmap *pg, struct udx_folio *f)
{
	uint32_t old = __atomic_fetch_add((uint32_t *)f, 1, __ATOMIC_RELAXED);

	(void)pg;
	UDX_BUG_ON(F_REF(old) == 0 || F_REF(old) >= F_REF_MASK);
}

bool udx_folio_try_get(struct udx_pgmap *pg, struct udx_folio *f)
{
	uint32_t *word = (uint32_t *)f;
	uint32_t w = __atomic_load_n(word, __ATOMIC_RELAXED);

	(void)pg;
	do {
		if (F_REF(w) == 0 || F_REF(w) >= UDX_FOLIO_REF_MAX)
			return false;
	} while (!__atomic_compare_exchange_n(word, &w, w + 1, true,
					      __ATOMIC_ACQUIRE, __ATOMIC_RELAXED));
	return true;
}

static struct pg_waitq *pg_waitq_of(struct udx_pgmap *pg, uint32_t *word)
{
	uint64_t h = (uint64_t)(uintptr_t)word;

	h ^= h >> 17;
	h *= 0x9e3779b97f4a7c15ull;
	return &pg->pg_waitq[h >> 58];
}

void pg_wake(struct udx_pgmap *pg, uint32_t *word)
{
	struct pg_waitq *wq = pg_waitq_of(pg, word);

	pthread_mutex_lock(&wq->wq_lock);
	pthread_cond_broadcast(&wq->wq_cv);
	pthread_mutex_unlock(&wq->wq_lock);
}

/* The count is 1: take the region lock and see whether this put is the last. */
static void folio_put_last(struct udx_pgmap *pg, uint32_t *word)
{
	uint64_t h = (uint64_t)(word - pg->pg_ref);
	struct pg_region *rg = pg_region_of(pg, h);
	uint32_t old, w;
	unsigned o;

	pg_region_lock(rg);
	old = __atomic_fetch_sub(word, 1, __ATOMIC_ACQ_REL);
	UDX_BUG_ON(F_REF(old) == 0);
	if (F_REF(old) != 1) {
		/* a try_get got in first; not the last */
		pg_region_unlock(rg);
		if (old & F_WAITERS)
			pg_wake(pg, word);
		return;
	}
	o = F_ORDER(old);
	if (pg->pg_ops && pg->pg_ops->folio_free)
		pg->pg_ops->folio_free(pg, h << UDX_PAGE_SHIFT, o, pg->pg_data);
	folio_account(pg, h, o, -1);
	WRITE_ONCE(rg->rg_live, rg->rg_live - 1);
	/* clear the order; keep WAITERS, which belongs to the wait queue */
	w = __atomic_load_n(word, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(word, &w, w & F_WAITERS, true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	pg_region_unlock(rg);
	if (w & F_WAITERS)
		pg_wake(pg, word);
	/* last: after this the pgmap may be gone */
	udx_liveref_put(&pg->pg_live);
}

void udx_folio_put(struct udx_pgmap *pg, struct udx_folio *f)
{
	uint32_t *word = (uint32_t *)f;
	uint32_t w = __atomic_load_n(word, __ATOMIC_RELAXED);

	for (;;) {
		UDX_BUG_ON(F_REF(w) == 0);
		if (F_REF(w) == 1) {
			folio_put_last(pg, word);
			return;
		}
		if (__atomic_compare_exchange_n(word, &w, w - 1, true,
						__ATOMIC_RELEASE, __ATOMIC_RELAXED))
			break;
	}
	if (w & F_WAITERS)
		pg_wake(pg, word);
}

unsigned udx_folio_order(const struct udx_folio *f)
{
	return F_ORDER(__atomic_load_n((const uint32_t *)f, __ATOMIC_RELAXED));
}

uint32_t udx_folio_refcount(const struct udx_folio *f)
{
	return F_REF(__atomic_load_n((const uint32_t *)f, __ATOMIC_RELAXED));
}

uint64_t udx_folio_offset(const struct udx_pgmap *pg, const struct udx_folio *f)
{
	return pg_pfn(pg, f) << UDX_PAGE_SHIFT;
}

uint64_t udx_folio_size(const struct udx_folio *f)
{
	return UDX_PAGE_SIZE << udx_folio_order(f);
}

void *udx_folio_addr(const struct udx_pgmap *pg, const struct udx_folio *f)
{
	return pg->pg_base + udx_folio_offset(pg, f);
}

int udx_pgmap_folio_find(struct udx_pgmap *pg, uint64_t offset, struct udx_folio **folio)
{
	uint64_t pfn = offset >> UDX_PAGE_SHIFT;
	unsigned k;

	if (offset >= udx_dev_size(pg->pg_dev))
		return udx_err(-EINVAL, "offset %#llx is beyond the device",
			       (unsigned long long)offset);
	for (k = 0; k <= UDX_MAX_ORDER; k++) {
		uint64_t q = ALIGN_DOWN(pfn, 1ull << k);
		uint32_t w = ref_load(pg, q);

		if (!F_REF(w) || F_ORDER(w) < k)
			continue;
		/* (q, order) covers pfn; take a reference, then make sure the
		 * folio did not change shape before we got it */
		if (!udx_folio_try_get(pg, pg_folio(pg, q)))
			continue;
		w = ref_load(pg, q);
		if (F_ORDER(w) >= k) {
			*folio = pg_folio(pg, q);
			return 0;
		}
		udx_folio_put(pg, pg_folio(pg, q));
	}
	return -ENOENT;
}

/* ---- waiting for a folio to go idle ---------------------------------- */

static void waitq_add(struct pg_waitq *wq, struct pg_waiter *w)
{
	w->w_next = wq->wq_head;
	wq->wq_head = w;
	__atomic_fetch_or(w->w_word, F_WAITERS, __ATOMIC_SEQ_CST);
}

static void waitq_del(struct pg_waitq *wq, struct pg_waiter *w)
{
	struct pg_waiter **pp, *o;
	bool others = false;

	for (pp = &wq->wq_head; *pp; pp = &(*pp)->w_next) {
		if (*pp == w) {
			*pp = w->w_next;
			break;
		}
	}
	for (o = wq->wq_head; o; o = o->w_next)
		others |= o->w_word == w->w_word;
	if (!others)
		__atomic_fetch_and(w->w_word, ~F_WAITERS, __ATOMIC_RELAXED);
}

int udx_folio_wait_idle(struct udx_pgmap *pg, struct udx_folio *f, unsigned idle,
			int64_t timeout_ns, udx_wait_cb cb, void *arg)
{
	uint32_t *word = (uint32_t *)f;
	struct pg_waitq *wq = pg_waitq_of(pg, word);
	struct pg_waiter me = { .w_word = word };
	uint64_t deadline = 0;
	struct timespec ts;
	int ret;

	if (timeout_ns >= 0) {
		deadline = udx_now_ns() + (uint64_t)timeout_ns;
		ts.tv_sec = (time_t)(deadline / 1000000000ull);
		ts.tv_nsec = (long)(deadline % 1000000000ull);
	}
	for (;;) {
		if (F_REF(__atomic_load_n(word, __ATOMIC_ACQUIRE)) <= idle)
			return 0;
		if (timeout_ns >= 0 && udx_now_ns() >= deadline)
			return -ETIMEDOUT;
		if (cb && (ret = cb(arg, false)) != 0)
			return ret;
		pthread_mutex_lock(&wq->wq_lock);
		waitq_add(wq, &me);
		/* WAITERS is set before this check, so any put after it wakes
		 * us.  One sleep per round: every change of the count goes back
		 * through @cb, so the caller can recheck its own state. */
		if (F_REF(__atomic_load_n(word, __ATOMIC_ACQUIRE)) > idle) {
			if (timeout_ns < 0)
				pthread_cond_wait(&wq->wq_cv, &wq->wq_lock);
			else
				pthread_cond_timedwait(&wq->wq_cv, &wq->wq_lock, &ts);
		}
		waitq_del(wq, &me);
		pthread_mutex_unlock(&wq->wq_lock);
		if (cb && (ret = cb(arg, true)) != 0)
			return ret;
	}
}
