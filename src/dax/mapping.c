/* SPDX-License-Identifier: MIT */
/*
 * The per-inode mapping index of DAX entries, faults, and layout breaks.
 * See dax.h for the structure and the rules it keeps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "dax/dax.h"
#include "fs/fs.h"

#define EMPTY_KEY UINT64_MAX


void dax_mapping_init(struct dax_mapping *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->m_lock, NULL);
	pthread_cond_init(&m->m_cv, NULL);
}

/* ---- the index: a hash of 2 MiB slots ----------------------------------- */

static size_t slot_hash(uint64_t key, size_t cap)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

static struct dax_pmd *pmd_find(struct dax_mapping *m, uint64_t key)
{
	size_t i;

	if (m->m_cap == 0)
		return NULL;
	for (i = slot_hash(key, m->m_cap);; i = (i + 1) & (m->m_cap - 1)) {
		if (m->m_slots[i].d_key == key)
			return &m->m_slots[i];
		if (m->m_slots[i].d_key == EMPTY_KEY)
			return NULL;
	}
}

static int pmd_grow(struct dax_mapping *m)
{
	size_t ncap = m->m_cap ? m->m_cap * 2 : 8, i, j;
	struct dax_pmd *n = malloc(ncap * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	for (i = 0; i < ncap; i++)
		n[i] = (struct dax_pmd){ .d_key = EMPTY_KEY };
	for (i = 0; i < m->m_cap; i++) {
		if (m->m_slots[i].d_key == EMPTY_KEY)
			continue;
		for (j = slot_hash(m->m_slots[i].d_key, ncap); n[j].d_key != EMPTY_KEY;
		     j = (j + 1) & (ncap - 1))
			;
		n[j] = m->m_slots[i];
	}
	free(m->m_slots);
	m->m_slots = n;
	m->m_cap = ncap;
	return 0;
}

/* The slot of @key, made if missing.  Slots stay until the mapping goes. */
static struct dax_pmd *pmd_get(struct dax_mapping *m, uint64_t key)
{
	struct dax_pmd *d = pmd_find(m, key);
	size_t i;

	if (d)
		return d;
	if ((m->m_used + 1) * 4 > m->m_cap * 3 && pmd_grow(m))
		return NULL;
	for (i = slot_hash(key, m->m_cap); m->m_slots[i].d_key != EMPTY_KEY;
	     i = (i + 1) & (m->m_cap - 1))
		;
	m->m_slots[i] = (struct dax_pmd){ .d_key = key };
	m->m_used++;
	return &m->m_slots[i];
}

static struct dax_entry *entry_at(struct dax_pmd *d, uint64_t idx)
{
	if (d == NULL)
		return NULL;
	if (d->d_huge)
		return d->d_huge;
	return d->d_small ? d->d_small[idx & (DAX_PMD_PAGES - 1)] : NULL;
}

static void entry_unlink(struct dax_mapping *m, struct dax_entry *e)
{
	struct dax_pmd *d = pmd_find(m, e->e_index >> DAX_PMD_SHIFT);

	UDX_BUG_ON(d == NULL);
	if (e->e_order) {
		UDX_BUG_ON(d->d_huge != e);
		d->d_huge = NULL;
	} else {
		UDX_BUG_ON(d->d_small[e->e_index & (DAX_PMD_PAGES - 1)] != e);
		d->d_small[e->e_index & (DAX_PMD_PAGES - 1)] = NULL;
		if (--d->d_nsmall == 0) {
			free(d->d_small);
			d->d_small = NULL;
		}
	}
}

static int entry_link(struct dax_mapping *m, struct dax_pmd *d, struct dax_entry *e)
{
	(void)m;
	if (e->e_order) {
		d->d_huge = e;
		return 0;
	}
	if (d->d_small == NULL) {
		d->d_small = calloc(DAX_PMD_PAGES, sizeof(*d->d_small));
		if (d->d_small == NULL)
			return -ENOMEM;
	}
	d->d_small[e->e_index & (DAX_PMD_PAGES - 1)] = e;
	d->d_nsmall++;
	return 0;
}

static uint64_t entry_pages(const struct dax_entry *e)
{
	return 1ull << e->e_order;
}

/* Delete a filled entry and drop its folio reference (m_lock held; the put
 * never sleeps). */
static void entry_delete(struct udx_inode *ip, struct dax_entry *e)
{
	struct udx_fs *fs = ip->i_fs;

	entry_unlink(&ip->i_map, e);
	if (e->e_folio)
		udx_folio_put(fs->fs_pg, e->e_folio);
	WRITE_ONCE(ip->i_map.m_nentries, ip->i_map.m_nentries - 1);
	free(e);
}

/* Call @fn for every filled entry that overlaps pages [start, end); @fn may
 * delete the entry.  Walks the slots, not the range (ranges can be huge and
 * sparse). */
static void for_each_entry(struct dax_mapping *m, uint64_t start, uint64_t end,
			   void (*fn)(void *arg, struct dax_entry *e), void *arg)
{
	size_t i, k;

	for (i = 0; i < m->m_cap; i++) {
		struct dax_pmd *d = &m->m_slots[i];
		uint64_t base;

		if (d->d_key == EMPTY_KEY)
			continue;
		base = d->d_key << DAX_PMD_SHIFT;
		if (base >= end || base + DAX_PMD_PAGES <= start)
			continue;
		if (d->d_huge) {
			fn(arg, d->d_huge);
			continue;
		}
		for (k = 0; d->d_small && k < DAX_PMD_PAGES; k++) {
			struct dax_entry *e = d->d_small[k];

			if (e && base + k >= start && base + k < end) {
				bool last = d->d_nsmall == 1;

				fn(arg, e);
				if (last && d->d_small == NULL)
					break;  /* the array went with its last entry */
			}
		}
	}
}

struct dax_entry *dax_lookup(struct dax_mapping *m, uint64_t idx)
{
	return entry_at(pmd_find(m, idx >> DAX_PMD_SHIFT), idx);
}

static void batch_add(struct pin_batch *b, struct udx_pin *p);

static bool in_batch(const struct pin_batch *b, const struct udx_pin *p)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (b->p[i] == p)
			return true;
	return false;
}

/* Does read pin @p show the zero page anywhere in pages [start, end)? */
static bool pin_sees_zero(const struct udx_pin *p, const char *zero, uint64_t start,
			  uint64_t end)
{
	size_t i;

	if ((p->p_flags & UDX_PIN_WRITE) || !p->p_zero)
		return false;
	for (i = 0; i < p->p_nseg; i++) {
		const char *a = p->p_seg[i].addr;
		uint64_t s = p->p_segoff[i], e = s + p->p_seg[i].len;

		if (a >= zero && a < zero + DAX_PMD_SIZE && s < (end << 12) && (start << 12) < e)
			return true;
	}
	return false;
}

/* A zero entry in the written range goes; read pins that show the zero
 * page over the written pages are told (whatever entry they came from). */
static void zero_one(void *arg, struct dax_entry *e)
{
	if (e->e_flags & DE_ZERO)
		entry_delete(arg, e);
}

static void stale_pins(struct udx_inode *ip, uint64_t start, uint64_t end)
{
	struct dax_mapping *m = &ip->i_map;
	struct udx_pin *p;

	for (p = m->m_pins; p; p = p->p_next)
		if (pin_sees_zero(p, ip->i_fs->fs_zero, start, end) && !in_batch(&m->m_stale, p))
			batch_add(&m->m_stale, p);
}

/* ---- faults ----------------------------------------------------------- */

/*
 * Make the entry of page @idx: lock a placeholder, drop m_lock, find the
 * blocks and make their folio live, retake m_lock and fill it in.  Returns
 * 0 (entry made), 1 (a 2 MiB entry is not possible here: try 4 KiB), or a
 * negative errno.
 */
static int fault_fill(struct udx_inode *ip, struct dax_pmd *d, uint64_t idx, bool huge,
		      unsigned flags, struct dax_entry **out)
{
	struct dax_mapping *m = &ip->i_map;
	struct udx_fs *fs = ip->i_fs;
	struct dax_entry *e = calloc(1, sizeof(*e));
	struct udx_folio *folio = NULL;
	struct udx_iomap map;
	uint64_t gen = m->m_gen, pages = huge ? DAX_PMD_PAGES : 1;
	bool zero = false;
	int ret;

	if (e == NULL)
		return udx_err(-ENOMEM, "out of memory");
	e->e_index = huge ? idx & ~(DAX_PMD_PAGES - 1) : idx;
	e->e_order = huge ? DAX_PMD_SHIFT : 0;
	e->e_flags = DE_LOCKED;
	ret = entry_link(m, d, e);
	if (ret) {
		free(e);
		return udx_err(ret, "out of memory");
	}
	pthread_mutex_unlock(&m->m_lock);

	/* the entry is locked: nobody else touches it, and what it will hold
	 * is stored under m_lock again (the pin fast path reads entries under it) */
	ret = iomap_lookup(ip, (huge ? idx & ~(DAX_PMD_PAGES - 1) : idx) << 12, pages << 12, &map);
	if (ret == -EIO && huge)
		ret = 1;                        /* a poisoned page: 4 KiB may do */
	if (ret == 0 && map.length < (pages << 12))
		ret = 1;                        /* the extent ends inside */
	if (ret == 0 && map.type == UDX_IOMAP_MAPPED) {
		if (huge && (map.dev_offset & (DAX_PMD_SIZE - 1)))
			ret = 1;                /* not 2 MiB aligned on the device */
		else
			ret = udx_pgmap_request_order(fs->fs_pg, map.dev_offset,
						      huge ? DAX_PMD_SHIFT : 0, &folio);
		if (ret < 0)
			ret = ret == -EHWPOISON ? udx_err(-EIO, "the file's memory is poisoned") :
			      ret == -ENXIO ? udx_err(-ENXIO, "the device is being removed") :
			      udx_err(ret, "the device pages are busy with another shape");
	} else if (ret == 0) {
		if (flags & UDX_PIN_WRITE)
			ret = udx_err(-EAGAIN, "blocks were freed under the fault");
		zero = true;
	}

	pthread_mutex_lock(&m->m_lock);
	if (ret == 0 && zero && m->m_gen != gen)
		ret = -EAGAIN;                  /* written meanwhile: look again */
	if (ret) {
		if (folio)
			udx_folio_put(fs->fs_pg, folio);
		entry_unlink(m, e);
		free(e);
		pthread_cond_broadcast(&m->m_cv);
		return ret;
	}
	e->e_folio = folio;
	e->e_devoff = zero ? 0 : map.dev_offset;
	e->e_flags = zero ? DE_ZERO : 0;
	WRITE_ONCE(m->m_nentries, m->m_nentries + 1);
	pthread_cond_broadcast(&m->m_cv);
	*out = e;
	return 0;
}

int dax_fault(struct udx_inode *ip, uint64_t idx, unsigned flags, uint64_t size,
	      struct dax_entry **out)
{
	struct dax_mapping *m = &ip->i_map;
	unsigned tries = 0;
	int ret;

	for (;;) {
		uint64_t base = idx & ~(DAX_PMD_PAGES - 1);
		struct dax_pmd *d = pmd_get(m, idx >> DAX_PMD_SHIFT);
		struct dax_entry *e;
		bool huge;

		if (d == NULL)
			return udx_err(-ENOMEM, "out of memory");
		e = entry_at(d, idx);
		if (e && (e->e_flags & DE_LOCKED)) {
			if (flags & UDX_PIN_NOWAIT)
				return udx_err(-EAGAIN, "a fault on the range is in progress");
			pthread_cond_wait(&m->m_cv, &m->m_lock);
			continue;
		}
		if (e && (e->e_flags & DE_ZERO) && (flags & UDX_PIN_WRITE)) {
			/* blocks came since: read pins there are told */
			stale_pins(ip, e->e_index, e->e_index + entry_pages(e));
			entry_delete(ip, e);
			continue;
		}
		if (e) {
			if ((flags & UDX_PIN_HUGE) && e->e_order == 0)
				return udx_err(-EINVAL, "the range is mapped in 4 KiB entries");
			*out = e;
			return 0;
		}
		/* 2 MiB when the slot has no 4 KiB entries and the file covers it */
		huge = d->d_nsmall == 0 && (base + DAX_PMD_PAGES) << 12 <= ALIGN_UP(size, 4096ull);
		if ((flags & UDX_PIN_HUGE) && !huge)
			return udx_err(-EINVAL, "2 MiB entries are not possible here");
		ret = fault_fill(ip, d, idx, huge, flags, out);
		if (ret == 1 && huge && !(flags & UDX_PIN_HUGE))
			ret = fault_fill(ip, pmd_get(m, idx >> DAX_PMD_SHIFT), idx, false,
					 flags, out);
		if (ret == 1)
			return udx_err(-EINVAL, "the blocks are not one aligned 2 MiB extent");
		if (ret == -EAGAIN && !(flags & UDX_PIN_NOWAIT) && ++tries < 100)
			continue;
		return ret;
	}
}

/* ---- invalidation ------------------------------------------------------ */

/* Take a reference on @p to call its callback after m_lock is dropped. */
static void batch_add(struct pin_batch *b, struct udx_pin *p)
{
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 8;
		struct udx_pin **n = realloc(b->p, ncap * sizeof(*n));

		if (n == NULL)
			return;                 /* the pin is told next time */
		b->p = n;
		b->cap = ncap;
	}
	p->p_ref++;
	b->p[b->n] = p;
	WRITE_ONCE(b->n, b->n + 1);
}


/* Run the callbacks of a batch (no lock held), then drop the references. */
static void batch_call(struct udx_inode *ip, struct pin_batch *b, enum udx_pin_event ev,
		       uint64_t start, uint64_t end)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		struct udx_pin *p = b->p[i];
		uint64_t s = MAX(start << 12, p->p_off);
		uint64_t e = MIN(end << 12, p->p_off + p->p_len);
		bool dead;

		/* not for a pin its holder released already (one released
		 * from now on may still get it: see udx_pin_cb) */
		pthread_mutex_lock(&ip->i_map.m_lock);
		dead = p->p_dead;
		pthread_mutex_unlock(&ip->i_map.m_lock);
		if (dead)
			continue;
		fs_count(&ip->i_fs->fs_recalls, 1);
		if (p->p_cb)
			p->p_cb(p, ev, s, e > s ? e - s : 0, p->p_arg);
	}
	pthread_mutex_lock(&ip->i_map.m_lock);
	for (i = 0; i < b->n; i++)
		pin_release_ref(b->p[i]);
	pthread_mutex_unlock(&ip->i_map.m_lock);
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}

static bool pin_overlaps(const struct udx_pin *p, uint64_t start, uint64_t end)
{
	return p->p_off < (end << 12) && (start << 12) < p->p_off + p->p_len;
}

void dax_invalidate_zero(struct udx_inode *ip, uint64_t start, uint64_t end)
{
	struct dax_mapping *m = &ip->i_map;
	size_t had;

	pthread_mutex_lock(&m->m_lock);
	m->m_gen++;                     /* faults that saw a hole look again */
	had = m->m_stale.n;
	for_each_entry(m, start, end, zero_one, ip);
	stale_pins(ip, start, end);
	if (m->m_stale.n > had || had) {
		m->m_stale_start = had ? MIN(m->m_stale_start, start) : start;
		m->m_stale_end = had ? MAX(m->m_stale_end, end) : end;
	}
	pthread_mutex_unlock(&m->m_lock);
}

void dax_flush_stale(struct udx_inode *ip)
{
	struct dax_mapping *m = &ip->i_map;
	struct pin_batch b;
	uint64_t start, end;

	if (READ_ONCE(m->m_stale.n) == 0)
		return;
	pthread_mutex_lock(&m->m_lock);
	b = m->m_stale;
	start = m->m_stale_start;
	end = m->m_stale_end;
	m->m_stale.p = NULL;
	m->m_stale.cap = 0;
	WRITE_ONCE(m->m_stale.n, 0);
	pthread_mutex_unlock(&m->m_lock);
	if (b.n)
		batch_call(ip, &b, UDX_PIN_RECALL_STALE, start, end);
	free(b.p);
}

/* ---- layout breaks ------------------------------------------------------ */

struct break_ctx {
	struct udx_inode *ip;
	uint64_t start, end;
	struct udx_folio *busy;         /* a referenced busy folio, to wait on */
	bool pinned;                    /* some pin over the range */
	bool del;                       /* second pass: delete */
};

static void break_scan(void *arg, struct dax_entry *e)
{
	struct break_ctx *c = arg;

	if (c->del) {
		entry_delete(c->ip, e);
		return;
	}
	/* busy: more references than the entry's own (rule 5) */
	if (e->e_folio && c->busy == NULL && udx_folio_refcount(e->e_folio) > 1) {
		c->busy = e->e_folio;
		udx_folio_get(c->ip->i_fs->fs_pg, c->busy);
	}
	/* a pin over the entry's folio, even outside the range, keeps it */
	if (c->start > e->e_index)
		c->start = e->e_index;
	if (c->end < e->e_index + entry_pages(e))
		c->end = e->e_index + entry_pages(e);
}

struct relock {
	struct udx_inode *ip;
};

/* Rule 8: do not sleep on pins holding the locks their holders may need. */
static int break_relock(void *arg, bool relock)
{
	struct udx_inode *ip = ((struct relock *)arg)->ip;

	if (!relock) {
		pthread_rwlock_unlock(&ip->i_mmap_lock);
		iunlock(ip);
	} else {
		ilock(ip);
		pthread_rwlock_wrlock(&ip->i_mmap_lock);
	}
	return 0;
}

int dax_break_layout(struct udx_inode *ip, uint64_t start, uint64_t end, unsigned flags)
{
	struct dax_mapping *m = &ip->i_map;
	struct udx_fs *fs = ip->i_fs;
	struct relock rl = { ip };
	int ret = 0;

	pthread_mutex_lock(&m->m_lock);
	/* one break at a time: a waiting break holds a folio reference that
	 * another's idle test would count as a pin */
	while (m->m_breaking) {
		break_relock(&rl, false);       /* outer locks: released while m_lock is held */
		pthread_cond_wait(&m->m_cv, &m->m_lock);
		pthread_mutex_unlock(&m->m_lock);
		break_relock(&rl, true);
		pthread_mutex_lock(&m->m_lock);
	}
	m->m_breaking++;
	for (;;) {
		struct break_ctx c = { .ip = ip, .start = start, .end = end };
		struct pin_batch b = { 0 };
		struct udx_pin *p;

		if (__atomic_load_n(&fs->fs_revoked, __ATOMIC_ACQUIRE)) {
			/* the device is going: nothing may be freed now */
			ret = udx_err(-ENXIO, "the device is being removed");
			break;
		}
		if (m->m_nentries == 0 && m->m_npins == 0)
			break;
		/* which folios are busy, and the file range their entries span */
		for_each_entry(m, start, end, break_scan, &c);
		for (p = m->m_pins; p; p = p->p_next)
			if (pin_overlaps(p, c.start, c.end))
				c.pinned = true;
		if (c.busy == NULL && !c.pinned) {
			c.del = true;
			for_each_entry(m, start, end, break_scan, &c);
			break;
		}
		if (flags & UDX_BREAK_NOWAIT) {
			if (c.busy)
				udx_folio_put(fs->fs_pg, c.busy);
			ret = udx_err(-EBUSY, "the range is pinned");
			break;
		}
		/* recall every pin over the busy range that was not asked yet */
		for (p = m->m_pins; p; p = p->p_next)
			if (pin_overlaps(p, c.start, c.end) && !p->p_recalled) {
				p->p_recalled = true;
				batch_add(&b, p);
			}
		pthread_mutex_unlock(&m->m_lock);
		if (b.n) {
			/* callbacks run with no udaxfs lock held: a holder may
			 * read the file before it lets go */
			break_relock(&rl, false);
			batch_call(ip, &b, UDX_PIN_RECALL_LAYOUT, c.start, c.end);
			break_relock(&rl, true);
		}
		free(b.p);
		fs_count(&fs->fs_waits, 1);
		if (c.busy) {
			/* the entry's reference and ours: idle for us (rule 5) */
			udx_folio_wait_idle(fs->fs_pg, c.busy, 2, -1, break_relock, &rl);
			udx_folio_put(fs->fs_pg, c.busy);
			pthread_mutex_lock(&m->m_lock);
		} else {
			/* pins without busy folios (over holes, or removal
			 * deleted the entries): wait for an unpin, with the
			 * outer locks dropped (rule 8); unpin signals under
			 * m_lock, which is held from the check to the wait */
			bool still = false;

			pthread_mutex_lock(&m->m_lock);
			for (p = m->m_pins; p; p = p->p_next)
				still |= pin_overlaps(p, c.start, c.end);
			if (still) {
				break_relock(&rl, false);
				pthread_cond_wait(&m->m_cv, &m->m_lock);
				pthread_mutex_unlock(&m->m_lock);
				break_relock(&rl, true);
				pthread_mutex_lock(&m->m_lock);
			}
		}
		/* everything may have changed: look again (rule 5) */
	}
	m->m_breaking--;
	pthread_cond_broadcast(&m->m_cv);       /* the next break, pins waiting */
	pthread_mutex_unlock(&m->m_lock);
	return ret;
}

/* ---- the end of a mapping --------------------------------------------- */

static void delete_one(void *arg, struct dax_entry *e)
{
	entry_delete(arg, e);
}

void dax_mapping_destroy(struct udx_inode *ip)
{
	struct dax_mapping *m = &ip->i_map;
	size_t i;

	pthread_mutex_lock(&m->m_lock);
	UDX_BUG_ON(m->m_pins != NULL);
	for (i = 0; i < m->m_stale.n; i++)
		pin_release_ref(m->m_stale.p[i]);       /* unpinned since */
	free(m->m_stale.p);
	m->m_stale.p = NULL;
	m->m_stale.cap = 0;
	WRITE_ONCE(m->m_stale.n, 0);
	for_each_entry(m, 0, UINT64_MAX, delete_one, ip);
	for (i = 0; i < m->m_cap; i++)
		free(m->m_slots[i].d_small);
	free(m->m_slots);
	m->m_slots = NULL;
	m->m_cap = m->m_used = 0;
	pthread_mutex_unlock(&m->m_lock);
}

/* Delete every entry of pages [start, end) of an inode nobody else can
 * reach (eviction, unlink's fast path). */
void dax_delete_entries(struct udx_inode *ip, uint64_t start, uint64_t end)
{
	pthread_mutex_lock(&ip->i_map.m_lock);
	UDX_BUG_ON(ip->i_map.m_pins != NULL);
	for_each_entry(&ip->i_map, start, end, delete_one, ip);
	pthread_mutex_unlock(&ip->i_map.m_lock);
}

void dax_revoke_inode(struct udx_inode *ip)
{
	struct dax_mapping *m = &ip->i_map;
	struct pin_batch b = { 0 };
	struct udx_pin *p;

	pthread_mutex_lock(&m->m_lock);
	for (p = m->m_pins; p; p = p->p_next) {
		p->p_recalled = true;
		batch_add(&b, p);
	}
	/* every cached entry holds a folio reference: removal waits on them
	 * all, so they all go (rule 1); pins keep their own */
	for_each_entry(m, 0, UINT64_MAX, delete_one, ip);
	pthread_cond_broadcast(&m->m_cv);
	pthread_mutex_unlock(&m->m_lock);
	if (b.n)
		batch_call(ip, &b, UDX_PIN_RECALL_REMOVE, 0, UINT64_MAX >> 12);
	free(b.p);
}

static void poison_one(void *arg, struct dax_entry *e)
{
	(void)arg;
	if (e->e_folio)
		e->e_flags |= DE_POISON;        /* faults and pins check its pages */
}

void dax_poison_inode(struct udx_inode *ip, uint64_t start, uint64_t end)
{
	struct dax_mapping *m = &ip->i_map;
	struct pin_batch b = { 0 };
	struct udx_pin *p;

	pthread_mutex_lock(&m->m_lock);
	for_each_entry(m, start, end, poison_one, NULL);
	for (p = m->m_pins; p; p = p->p_next)
		if (pin_overlaps(p, start, end))
			batch_add(&b, p);
	pthread_mutex_unlock(&m->m_lock);
	if (b.n)
		batch_call(ip, &b, UDX_PIN_POISON, start, end);
	free(b.p);
}
