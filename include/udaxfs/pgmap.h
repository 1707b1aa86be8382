/* SPDX-License-Identifier: MIT */
/*
 * udaxfs/pgmap.h - page metadata for a device, folios, and the device's
 * liveness (the "common pgmap code" of the fsdax design).
 *
 * A pgmap covers one device.  A folio is an aligned run of 2^order pages
 * (order 0 to UDX_MAX_ORDER = 18, 4 KiB to 1 GiB) with a reference count at
 * its head page; 0 means idle.  The pgmap's liveness counter counts
 * 1 (the initial reference) + the number of live folios:
 *
 *   0 -> 1   only through udx_pgmap_request*(), which takes one liveness
 *            reference per folio made live and fails once the pgmap is dying
 *   1 -> 0   the last udx_folio_put(): runs ops->folio_free, wakes waiters,
 *            then drops that liveness reference
 *
 * so a pgmap is live while any folio count is not 0, and teardown waits on
 * one counter instead of scanning pages.  The per-page metadata is 8 bytes,
 * in memory that is only populated for pages that are used.
 *
 * Teardown order (udx_memunmap(), or its three steps):
 *   udx_pgmap_kill()   tell the holder (UDX_MF_PRE_REMOVE), kill the liveness
 *                      counter, drop the initial reference
 *   udx_pgmap_wait()   wait until the last folio is put
 *   udx_pgmap_free()   unmap the metadata; the device can then be closed
 */
#ifndef UDAXFS_PGMAP_H
#define UDAXFS_PGMAP_H

#include <udaxfs/common.h>
#include <udaxfs/dev.h>
#include <udaxfs/liveref.h>

#ifdef __cplusplus
extern "C" {
#endif

struct udx_pgmap;

/*
 * struct udx_folio - a handle on a live folio (its head page's metadata).
 * Valid while the caller holds a reference; every call that takes a folio
 * also takes its pgmap.
 */
struct udx_folio;

/* The count at which udx_folio_try_get() and requests stop adding references
 * (the field holds twice that, leaving room for udx_folio_get()). */
#define UDX_FOLIO_REF_MAX (1u << 25)

struct udx_pgmap_ops {
	/*
	 * folio_free - a folio's count went 1 -> 0.  Called with the folio's
	 * 1 GiB region locked, before its pages can be requested again: it must
	 * not request, get or put folios.  May be NULL.
	 */
	void (*folio_free)(struct udx_pgmap *pg, uint64_t offset, unsigned order,
			   void *data);
};

/* notify_failure flags */
#define UDX_MF_POISON      (1u << 0)  /* the memory in the range is lost */
#define UDX_MF_PRE_REMOVE  (1u << 1)  /* the device is about to go away */

/*
 * The holder: the one owner of a pgmap that must be told when its memory
 * fails or is about to be removed (the mounted file system).  notify_failure
 * runs with the holder lock shared: it may not claim or unclaim.
 */
struct udx_holder_ops {
	int (*notify_failure)(void *holder, uint64_t offset, uint64_t length,
			      unsigned flags);
};

/**
 * udx_memremap() - create the pgmap of a device.
 * @ops, @data: folio_free and its argument; @ops may be NULL.
 * Returns 0, -ENOMEM.
 */
UDX_API int udx_memremap(struct udx_dev *dev, const struct udx_pgmap_ops *ops,
			 void *data, struct udx_pgmap **out);

/** udx_memunmap() - kill, wait for the last folio put, free. */
UDX_API void udx_memunmap(struct udx_pgmap *pg);
UDX_API void udx_pgmap_kill(struct udx_pgmap *pg);
/** Returns 0 once the last folio is put, or -ETIMEDOUT (negative: forever). */
UDX_API int udx_pgmap_wait(struct udx_pgmap *pg, int64_t timeout_ns);
UDX_API void udx_pgmap_free(struct udx_pgmap *pg);

UDX_API struct udx_dev *udx_pgmap_dev(const struct udx_pgmap *pg);
UDX_API struct udx_liveref *udx_pgmap_liveref(struct udx_pgmap *pg);
UDX_API bool udx_pgmap_dying(const struct udx_pgmap *pg);

/**
 * udx_pgmap_claim() - become the pgmap's one holder.
 * Returns 0, or -EBUSY when another holder has it.
 */
UDX_API int udx_pgmap_claim(struct udx_pgmap *pg, const struct udx_holder_ops *ops,
			    void *holder);
/** udx_pgmap_unclaim() - give it up (only the current holder). */
UDX_API void udx_pgmap_unclaim(struct udx_pgmap *pg, void *holder);

/** The number of folios a request of this (page aligned) range returns. */
UDX_API size_t udx_pgmap_nr_folios(uint64_t offset, uint64_t length);

/**
 * udx_pgmap_request() - make a range live as maximally sized aligned folios.
 * @offset, @length: bytes, multiples of 4 KiB, inside the device.
 * @folios, @max:    where to put the folios, in ascending order.
 * @nr:              how many were returned.
 *
 * Each folio comes back with one reference for the caller: an idle one goes
 * 0 -> 1 (taking a liveness reference); a live one of the same shape gets
 * one more reference.  All or nothing.  Returns 0, or:
 *   -EINVAL       a range not 4 KiB aligned, empty, or beyond the device
 *   -ENOBUFS      @max is smaller than udx_pgmap_nr_folios()
 *   -EHWPOISON    part of the range is poisoned
 *   -EBUSY        a page belongs to a live folio of a different shape
 *   -EOVERFLOW    a live folio of the same shape is at UDX_FOLIO_REF_MAX
 *   -ENXIO        the pgmap is dying
 */
UDX_API int udx_pgmap_request(struct udx_pgmap *pg, uint64_t offset, uint64_t length,
			      struct udx_folio **folios, size_t max, size_t *nr);

/** udx_pgmap_request_order() - one folio of 2^@order pages at @offset (which
 * must be aligned to its size).  Errors as udx_pgmap_request(). */
UDX_API int udx_pgmap_request_order(struct udx_pgmap *pg, uint64_t offset,
				    unsigned order, struct udx_folio **folio);

/**
 * udx_pgmap_folio_find() - the live folio containing @offset, with a
 * reference taken.  Returns 0, or -ENOENT when the page is idle.
 */
UDX_API int udx_pgmap_folio_find(struct udx_pgmap *pg, uint64_t offset,
				 struct udx_folio **folio);

/** udx_folio_get() - one more reference on a folio the caller holds. */
UDX_API void udx_folio_get(struct udx_pgmap *pg, struct udx_folio *f);
/** udx_folio_try_get() - a reference unless the count is 0 (or at its max). */
UDX_API bool udx_folio_try_get(struct udx_pgmap *pg, struct udx_folio *f);
/** udx_folio_put() - drop one; the last runs folio_free and may end the pgmap. */
UDX_API void udx_folio_put(struct udx_pgmap *pg, struct udx_folio *f);

UDX_API unsigned udx_folio_order(const struct udx_folio *f);
UDX_API uint32_t udx_folio_refcount(const struct udx_folio *f);
UDX_API uint64_t udx_folio_offset(const struct udx_pgmap *pg, const struct udx_folio *f);
UDX_API uint64_t udx_folio_size(const struct udx_folio *f);
UDX_API void *udx_folio_addr(const struct udx_pgmap *pg, const struct udx_folio *f);

/*
 * udx_wait_cb - run around each sleep of udx_folio_wait_idle(): with
 * relock=false just before sleeping (drop your locks), with relock=true just
 * after waking (take them again).  A non-zero return ends the wait and is
 * returned by udx_folio_wait_idle().
 */
typedef int (*udx_wait_cb)(void *arg, bool relock);

/**
 * udx_folio_wait_idle() - wait until the folio's count is at most @idle.
 * @idle:       the references the caller itself accounts for (1 for a
 *              mapping entry's own reference; 0 to wait for the free)
 * @timeout_ns: negative waits for ever; 0 only checks
 * @cb, @arg:   see udx_wait_cb; may be NULL
 *
 * The folio may be freed while waiting (that satisfies any @idle); its
 * pages may even be live again when this returns, so a caller that dropped
 * its locks in @cb rechecks its own state after them.
 * Returns 0, -ETIMEDOUT, or what @cb returned.
 */
UDX_API int udx_folio_wait_idle(struct udx_pgmap *pg, struct udx_folio *f,
				unsigned idle, int64_t timeout_ns, udx_wait_cb cb,
				void *arg);

/**
 * udx_pgmap_memory_failure() - the memory of a range is lost: mark it
 * poisoned (requests over it fail from now on) and tell the holder.
 * Returns the holder's answer, 0 without a holder, or -EINVAL for a bad range.
 */
UDX_API int udx_pgmap_memory_failure(struct udx_pgmap *pg, uint64_t offset,
				     uint64_t length, unsigned flags);
/** udx_pgmap_poisoned() - does the range contain a poisoned page? */
UDX_API bool udx_pgmap_poisoned(struct udx_pgmap *pg, uint64_t offset, uint64_t length);
/** udx_pgmap_clear_poison() - the range was repaired (rewritten). */
UDX_API int udx_pgmap_clear_poison(struct udx_pgmap *pg, uint64_t offset, uint64_t length);

struct udx_pgmap_stats {
	uint64_t live_folios;           /* folios with a count above 0 */
	uint64_t liveref;               /* liveness count (1 + live, until kill) */
	uint64_t poisoned_pages;
	uint64_t meta_bytes_per_page;   /* metadata reserved per 4 KiB page */
	uint64_t meta_resident_bytes;   /* metadata actually in memory */
	uint64_t npages;
	bool dying;
	bool claimed;
};
UDX_API void udx_pgmap_stats(struct udx_pgmap *pg, struct udx_pgmap_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* UDAXFS_PGMAP_H */
