/* SPDX-License-Identifier: MIT */
/*
 * Internal layout of a pgmap and of its per-page metadata.
 *
 * Per page, two 32-bit words in two sparse arrays (8 bytes a page; pages
 * never used are never touched, so their metadata stays unpopulated):
 *
 *   pg_ref[p]    at a folio's head page:
 *                  bits  0..25  reference count (0: idle)
 *                  bits 26..30  order (meaningful only while the count > 0)
 *                  bit  31      WAITERS: someone sleeps in udx_folio_wait_idle
 *                Changed lock-free by get/try_get/put while the count stays
 *                above 0; the 0 -> 1 and 1 -> 0 transitions happen with the
 *                folio's region lock held.
 *
 *   pg_inner[p]  the number of live folios strictly smaller than p's "home
 *                block" and inside it.  The home block of page p is
 *                [p, p + 2^A(p)) with A(p) = min(ctz(p), 18) (A(0) = 18): the
 *                largest aligned block that starts at p.  Changed only with
 *                the region lock held.
 *
 * With pg_inner, "is any live folio strictly inside [h, h + 2^o)?" takes
 * O(18) loads instead of a scan of 2^o pages (see folio_inner_live() in
 * folio.c), and "is [h, h + 2^o) inside a live folio?" looks at the heads at
 * h rounded down to each order.  Folios never cross a 1 GiB boundary, so all
 * of this stays inside one region, under one lock.
 */
#ifndef UDX_DEV_PGMAP_INTERNAL_H
#define UDX_DEV_PGMAP_INTERNAL_H

#include <pthread.h>
#include <udaxfs/pgmap.h>
#include "base/compiler.h"

/* dev.c: one pgmap per device */
bool dev_attach_pgmap(struct udx_dev *dev);
void dev_detach_pgmap(struct udx_dev *dev);

#define F_REF_BITS      26
#define F_REF_MASK      ((1u << F_REF_BITS) - 1)
#define F_ORDER_SHIFT   26
#define F_ORDER_MASK    (0x1fu << F_ORDER_SHIFT)
#define F_WAITERS       (1u << 31)

#define F_REF(w)        ((w) & F_REF_MASK)
#define F_ORDER(w)      (((w) & F_ORDER_MASK) >> F_ORDER_SHIFT)

#define PG_REGION_ORDER UDX_MAX_ORDER          /* one lock per 1 GiB */
#define PG_NR_WAITQ     64

/* A 1 GiB region: the lock under which folios in it change shape. */
struct pg_region {
	pthread_mutex_t rg_lock;
	uint64_t rg_live;               /* live folios; rg_lock (read racily) */
#ifdef UDX_DEBUG
	pthread_t rg_owner;
	bool rg_locked;
#endif
} __attribute__((aligned(64)));

/* A sleeper in udx_folio_wait_idle(), on its own stack. */
struct pg_waiter {
	struct pg_waiter *w_next;
	uint32_t *w_word;
};

/* Hashed wait queues: the WAITERS bit of a word is set and cleared only with
 * its queue's lock held. */
struct pg_waitq {
	pthread_mutex_t wq_lock;
	pthread_cond_t wq_cv;
	struct pg_waiter *wq_head;      /* wq_lock */
} __attribute__((aligned(64)));

/* A poisoned range, in pages. */
struct pg_poison {
	uint64_t pp_start, pp_end;
};

/*
 * struct udx_pgmap - the liveness counter pg_live counts 1 (the initial
 * reference, dropped by udx_pgmap_kill()) + one per live folio.  While it is
 * above zero, the metadata arrays, the regions and the wait queues exist.
 */
struct udx_pgmap {
	struct udx_liveref pg_live;
	struct udx_dev *pg_dev;
	char *pg_base;                  /* device memory */
	uint64_t pg_npages;
	uint32_t *pg_ref;               /* per page, see above */
	uint32_t *pg_inner;
	size_t pg_meta_len;             /* bytes of each array's mapping */
	const struct udx_pgmap_ops *pg_ops;
	void *pg_data;

	struct pg_region *pg_regions;
	uint64_t pg_nregions;
	struct pg_waitq pg_waitq[PG_NR_WAITQ];

	pthread_rwlock_t pg_holder_lock;        /* the holder and its ops */
	const struct udx_holder_ops *pg_holder_ops;
	void *pg_holder;

	pthread_rwlock_t pg_poison_lock;
	struct pg_poison *pg_poison;            /* sorted, disjoint; pg_poison_lock */
	size_t pg_npoison, pg_poison_cap;
	uint64_t pg_poison_pages;               /* READ_ONCE outside the lock */
};

static inline struct pg_region *pg_region_of(struct udx_pgmap *pg, uint64_t pfn)
{
	return &pg->pg_regions[pfn >> PG_REGION_ORDER];
}

static inline void pg_region_lock(struct pg_region *rg)
{
	pthread_mutex_lock(&rg->rg_lock);
#ifdef UDX_DEBUG
	rg->rg_owner = pthread_self();
	rg->rg_locked = true;
#endif
}

static inline void pg_region_unlock(struct pg_region *rg)
{
#ifdef UDX_DEBUG
	rg->rg_locked = false;
#endif
	pthread_mutex_unlock(&rg->rg_lock);
}

static inline void pg_region_assert_held(struct pg_region *rg)
{
#ifdef UDX_DEBUG
	UDX_BUG_ON(!rg->rg_locked || !pthread_equal(rg->rg_owner, pthread_self()));
#else
	(void)rg;
#endif
}

static inline uint64_t pg_pfn(const struct udx_pgmap *pg, const struct udx_folio *f)
{
	return (uint64_t)((const uint32_t *)f - pg->pg_ref);
}

static inline struct udx_folio *pg_folio(struct udx_pgmap *pg, uint64_t pfn)
{
	return (struct udx_folio *)&pg->pg_ref[pfn];
}

/* folio.c */
void pg_wake(struct udx_pgmap *pg, uint32_t *word);
bool pg_poisoned_pages(struct udx_pgmap *pg, uint64_t start, uint64_t end);

#endif /* UDX_DEV_PGMAP_INTERNAL_H */
