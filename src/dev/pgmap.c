/* SPDX-License-Identifier: MIT */
/*
 * The pgmap: creation, the holder, memory failure, statistics and teardown.
 * Folios themselves are in folio.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/err.h"
#include "dev/pgmap_internal.h"

static void *meta_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int udx_memremap(struct udx_dev *dev, const struct udx_pgmap_ops *ops, void *data,
		 struct udx_pgmap **out)
{
	struct udx_pgmap *pg;
	pthread_condattr_t ca;
	uint64_t i;
	int ret;

	if (!dev_attach_pgmap(dev))
		return udx_err(-EBUSY, "the device has a pgmap already (is it mounted?)");
	pg = calloc(1, sizeof(*pg));
	if (pg == NULL) {
		dev_detach_pgmap(dev);
		return udx_err(-ENOMEM, "out of memory");
	}
	pg->pg_dev = dev;
	pg->pg_base = udx_dev_addr(dev);
	pg->pg_npages = udx_dev_size(dev) >> UDX_PAGE_SHIFT;
	pg->pg_ops = ops;
	pg->pg_data = data;

	ret = udx_liveref_init(&pg->pg_live, NULL);
	if (ret) {
		ret = udx_err(ret, "out of memory");
		goto out_free;
	}
	pg->pg_meta_len = ALIGN_UP(pg->pg_npages * sizeof(uint32_t), (uint64_t)UDX_PAGE_SIZE);
	pg->pg_ref = meta_map(pg->pg_meta_len);
	pg->pg_inner = meta_map(pg->pg_meta_len);
	if (pg->pg_ref == NULL || pg->pg_inner == NULL) {
		ret = udx_err(-ENOMEM, "cannot reserve page metadata for %llu pages",
			      (unsigned long long)pg->pg_npages);
		goto out_meta;
	}
	pg->pg_nregions = (pg->pg_npages + (1ull << PG_REGION_ORDER) - 1) >> PG_REGION_ORDER;
	pg->pg_regions = aligned_alloc(64, pg->pg_nregions * sizeof(*pg->pg_regions));
	if (pg->pg_regions == NULL) {
		ret = udx_err(-ENOMEM, "out of memory");
		goto out_meta;
	}
	for (i = 0; i < pg->pg_nregions; i++) {
		memset(&pg->pg_regions[i], 0, sizeof(pg->pg_regions[i]));
		pthread_mutex_init(&pg->pg_regions[i].rg_lock, NULL);
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (i = 0; i < PG_NR_WAITQ; i++) {
		pthread_mutex_init(&pg->pg_waitq[i].wq_lock, NULL);
		pthread_cond_init(&pg->pg_waitq[i].wq_cv, &ca);
	}
	pthread_condattr_destroy(&ca);
	pthread_rwlock_init(&pg->pg_holder_lock, NULL);
	pthread_rwlock_init(&pg->pg_poison_lock, NULL);
	*out = pg;
	return 0;

out_meta:
	if (pg->pg_ref)
		munmap(pg->pg_ref, pg->pg_meta_len);
	if (pg->pg_inner)
		munmap(pg->pg_inner, pg->pg_meta_len);
	udx_liveref_exit(&pg->pg_live);
out_free:
	dev_detach_pgmap(dev);
	free(pg);
	return ret;
}

struct udx_dev *udx_pgmap_dev(const struct udx_pgmap *pg)
{
	return pg->pg_dev;
}

struct udx_liveref *udx_pgmap_liveref(struct udx_pgmap *pg)
{
	return &pg->pg_live;
}

bool udx_pgmap_dying(const struct udx_pgmap *pg)
{
	return udx_liveref_is_dying(&pg->pg_live);
}

/* ---- the holder -------------------------------------------------------- */

int udx_pgmap_claim(struct udx_pgmap *pg, const struct udx_holder_ops *ops, void *holder)
{
	int ret = 0;

	pthread_rwlock_wrlock(&pg->pg_holder_lock);
	if (pg->pg_holder != NULL)
		ret = udx_err(-EBUSY, "the device already has a holder (is it mounted?)");
	else if (udx_pgmap_dying(pg))
		ret = udx_err(-ENXIO, "the device is being removed");
	else {
		pg->pg_holder = holder;
		pg->pg_holder_ops = ops;
	}
	pthread_rwlock_unlock(&pg->pg_holder_lock);
	return ret;
}

void udx_pgmap_unclaim(struct udx_pgmap *pg, void *holder)
{
	pthread_rwlock_wrlock(&pg->pg_holder_lock);
	UDX_BUG_ON(pg->pg_holder != holder);
	pg->pg_holder = NULL;
	pg->pg_holder_ops = NULL;
	pthread_rwlock_unlock(&pg->pg_holder_lock);
}

static int pg_notify_holder(struct udx_pgmap *pg, uint64_t off, uint64_t len,
			    unsigned flags)
{
	int ret = 0;

	pthread_rwlock_rdlock(&pg->pg_holder_lock);
	if (pg->pg_holder_ops && pg->pg_holder_ops->notify_failure)
		ret = pg->pg_holder_ops->notify_failure(pg->pg_holder, off, len, flags);
	pthread_rwlock_unlock(&pg->pg_holder_lock);
	return ret;
}

/* ---- memory failure ------------------------------------------------------ */

static int pg_check_range(struct udx_pgmap *pg, uint64_t off, uint64_t len)
{
	if (len == 0 || !IS_ALIGNED(off | len, UDX_PAGE_SIZE))
		return udx_err(-EINVAL, "range %#llx+%#llx is empty or not 4 KiB aligned",
			       (unsigned long long)off, (unsigned long long)len);
	if (off >= udx_dev_size(pg->pg_dev) || len > udx_dev_size(pg->pg_dev) - off)
		return udx_err(-EINVAL, "range %#llx+%#llx is beyond the device",
			       (unsigned long long)off, (unsigned long long)len);
	return 0;
}

/* Add or remove [start, end) pages; pg_poison_lock held for writing. */
static int pg_poison_update(struct udx_pgmap *pg, uint64_t start, uint64_t end, bool add)
{
	struct pg_poison *out;
	size_t i, n = 0, cap = pg->pg_npoison + 2;
	uint64_t pages = 0;

	out = malloc(cap * sizeof(*out));
	if (out == NULL)
		return -ENOMEM;
	for (i = 0; i < pg->pg_npoison; i++) {
		struct pg_poison r = pg->pg_poison[i];

		if (add) {
			if (r.pp_end < start || r.pp_start > end) {
				out[n++] = r;           /* disjoint, not adjacent */
				continue;
			}
			start = MIN(start, r.pp_start); /* merge into the new one */
			end = MAX(end, r.pp_end);
			continue;
		}
		if (r.pp_end <= start || r.pp_start >= end) {
			out[n++] = r;
			continue;
		}
		if (r.pp_start < start)
			out[n++] = (struct pg_poison){ r.pp_start, start };
		if (r.pp_end > end)
			out[n++] = (struct pg_poison){ end, r.pp_end };
	}
	if (add)
		out[n++] = (struct pg_poison){ start, end };
	/* keep it sorted: insertion sort, the list is short */
	for (i = 1; i < n; i++) {
		struct pg_poison r = out[i];
		size_t j = i;

		while (j > 0 && out[j - 1].pp_start > r.pp_start) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = r;
	}
	for (i = 0; i < n; i++)
		pages += out[i].pp_end - out[i].pp_start;
	free(pg->pg_poison);
	pg->pg_poison = out;
	pg->pg_npoison = n;
	pg->pg_poison_cap = cap;
	WRITE_ONCE(pg->pg_poison_pages, pages);
	return 0;
}

bool pg_poisoned_pages(struct udx_pgmap *pg, uint64_t start, uint64_t end)
{
	bool hit = false;
	size_t lo, hi;

	if (READ_ONCE(pg->pg_poison_pages) == 0)
		return false;
	pthread_rwlock_rdlock(&pg->pg_poison_lock);
	/* the first range that ends after start */
	lo = 0;
	hi = pg->pg_npoison;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (pg->pg_poison[mid].pp_end <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	hit = lo < pg->pg_npoison && pg->pg_poison[lo].pp_start < end;
	pthread_rwlock_unlock(&pg->pg_poison_lock);
	return hit;
}

bool udx_pgmap_poisoned(struct udx_pgmap *pg, uint64_t off, uint64_t len)
{
	if (len == 0 || off >= udx_dev_size(pg->pg_dev))
		return false;
	len = MIN(len, udx_dev_size(pg->pg_dev) - off);
	return pg_poisoned_pages(pg, off >> UDX_PAGE_SHIFT,
				 (off + len + UDX_PAGE_SIZE - 1) >> UDX_PAGE_SHIFT);
}

int udx_pgmap_memory_failure(struct udx_pgmap *pg, uint64_t off, uint64_t len,
			     unsigned flags)
{
	int ret = pg_check_range(pg, off, len);

	if (ret)
		return ret;
	pthread_rwlock_wrlock(&pg->pg_poison_lock);
	ret = pg_poison_update(pg, off >> UDX_PAGE_SHIFT, (off + len) >> UDX_PAGE_SHIFT, true);
	pthread_rwlock_unlock(&pg->pg_poison_lock);
	if (ret)
		return udx_err(ret, "out of memory recording poisoned memory");
	return pg_notify_holder(pg, off, len, flags | UDX_MF_POISON);
}

int udx_pgmap_clear_poison(struct udx_pgmap *pg, uint64_t off, uint64_t len)
{
	int ret = pg_check_range(pg, off, len);

	if (ret)
		return ret;
	pthread_rwlock_wrlock(&pg->pg_poison_lock);
	ret = pg_poison_update(pg, off >> UDX_PAGE_SHIFT, (off + len) >> UDX_PAGE_SHIFT, false);
	pthread_rwlock_unlock(&pg->pg_poison_lock);
	return ret ? udx_err(ret, "out of memory") : 0;
}

/* ---- statistics ---------------------------------------------------------- */

static uint64_t meta_resident(const void *addr, size_t len)
{
	size_t pages = len / (size_t)UDX_PAGE_SIZE, i, chunk = 1 << 16;
	unsigned char vec[1 << 16];
	uint64_t n = 0;

	for (i = 0; i < pages; i += chunk) {
		size_t c = MIN(chunk, pages - i), j;

		if (mincore((char *)addr + i * UDX_PAGE_SIZE, c * UDX_PAGE_SIZE, vec) != 0)
			return 0;
		for (j = 0; j < c; j++)
			n += vec[j] & 1;
	}
	return n * UDX_PAGE_SIZE;
}

void udx_pgmap_stats(struct udx_pgmap *pg, struct udx_pgmap_stats *st)
{
	uint64_t i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < pg->pg_nregions; i++)
		st->live_folios += READ_ONCE(pg->pg_regions[i].rg_live);
	st->liveref = udx_liveref_read(&pg->pg_live);
	st->poisoned_pages = READ_ONCE(pg->pg_poison_pages);
	st->npages = pg->pg_npages;
	st->meta_bytes_per_page = pg->pg_npages ?
		(2 * pg->pg_meta_len + pg->pg_npages - 1) / pg->pg_npages : 0;
	st->meta_resident_bytes = meta_resident(pg->pg_ref, pg->pg_meta_len) +
				  meta_resident(pg->pg_inner, pg->pg_meta_len);
	st->dying = udx_pgmap_dying(pg);
	pthread_rwlock_rdlock(&pg->pg_holder_lock);
	st->claimed = pg->pg_holder != NULL;
	pthread_rwlock_unlock(&pg->pg_holder_lock);
}

/* ---- teardown ------------------------------------------------------------ */

void udx_pgmap_kill(struct udx_pgmap *pg)
{
	pg_notify_holder(pg, 0, udx_dev_size(pg->pg_dev), UDX_MF_PRE_REMOVE);
	udx_liveref_kill(&pg->pg_live);
	udx_liveref_put(&pg->pg_live);          /* the initial reference */
}

int udx_pgmap_wait(struct udx_pgmap *pg, int64_t timeout_ns)
{
	return udx_liveref_wait_zero(&pg->pg_live, timeout_ns);
}

void udx_pgmap_free(struct udx_pgmap *pg)
{
	uint64_t i;

	UDX_BUG_ON(udx_pgmap_wait(pg, 0) != 0);         /* folios still live */
	for (i = 0; i < pg->pg_nregions; i++)
		pthread_mutex_destroy(&pg->pg_regions[i].rg_lock);
	for (i = 0; i < PG_NR_WAITQ; i++) {
		pthread_mutex_destroy(&pg->pg_waitq[i].wq_lock);
		pthread_cond_destroy(&pg->pg_waitq[i].wq_cv);
	}
	pthread_rwlock_destroy(&pg->pg_holder_lock);
	pthread_rwlock_destroy(&pg->pg_poison_lock);
	free(pg->pg_poison);
	free(pg->pg_regions);
	munmap(pg->pg_ref, pg->pg_meta_len);
	munmap(pg->pg_inner, pg->pg_meta_len);
	udx_liveref_exit(&pg->pg_live);
	dev_detach_pgmap(pg->pg_dev);
	free(pg);
}

void udx_memunmap(struct udx_pgmap *pg)
{
	udx_pgmap_kill(pg);
	udx_pgmap_wait(pg, -1);
	udx_pgmap_free(pg);
}
