/* SPDX-License-Identifier: MIT */
/*
 * Pins: the one way to hold on to file memory beyond a call.  A pin holds
 * an inode reference for its whole life and one folio reference per entry
 * it covers, taken from the inode's mapping entries (faulting them in).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "dax/dax.h"
#include "fs/fs.h"


#define PIN_INLINE 4

struct pin_alloc {
	struct udx_pin p;
	struct udx_pin_seg seg[PIN_INLINE];
	struct udx_folio *folio[PIN_INLINE];
	uint64_t segoff[PIN_INLINE];
	size_t seg_cap, folio_cap;
};

static void pin_free(struct udx_pin *p)
{
	struct pin_alloc *a = (struct pin_alloc *)p;

	if (p->p_seg != a->seg) {
		free(p->p_seg);
		free(p->p_segoff);
	}
	if (p->p_folio != a->folio)
		free(p->p_folio);
	free(a);
}

/* m_lock held: drop a reference on the struct (the holder's, or one a
 * callback in flight took); the last frees it. */
void pin_release_ref(struct udx_pin *p)
{
	if (--p->p_ref == 0)
		pin_free(p);
}

static int grow_segs(struct pin_alloc *a)
{
	struct udx_pin *p = &a->p;
	size_t ncap = a->seg_cap * 2;
	struct udx_pin_seg *s = malloc(ncap * sizeof(*s));
	uint64_t *o = malloc(ncap * sizeof(*o));

	if (s == NULL || o == NULL) {
		free(s);
		free(o);
		return -ENOMEM;
	}
	memcpy(s, p->p_seg, p->p_nseg * sizeof(*s));
	memcpy(o, p->p_segoff, p->p_nseg * sizeof(*o));
	if (p->p_seg != a->seg) {
		free(p->p_seg);
		free(p->p_segoff);
	}
	p->p_seg = s;
	p->p_segoff = o;
	a->seg_cap = ncap;
	return 0;
}

static int add_seg(struct pin_alloc *a, uint64_t off, char *addr, size_t len)
{
	struct udx_pin *p = &a->p;

	if (p->p_nseg && (char *)p->p_seg[p->p_nseg - 1].addr + p->p_seg[p->p_nseg - 1].len == addr) {
		p->p_seg[p->p_nseg - 1].len += len;
		return 0;
	}
	if (p->p_nseg == a->seg_cap && grow_segs(a))
		return -ENOMEM;
	p->p_seg[p->p_nseg] = (struct udx_pin_seg){ addr, len };
	p->p_segoff[p->p_nseg++] = off;
	return 0;
}

static int add_folio(struct pin_alloc *a, struct udx_folio *f)
{
	struct udx_pin *p = &a->p;

	if (p->p_nfolio && p->p_folio[p->p_nfolio - 1] == f)
		return 1;                       /* one reference per folio */
	if (p->p_nfolio == a->folio_cap) {
		size_t ncap = a->folio_cap * 2;
		struct udx_folio **n = malloc(ncap * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		memcpy(n, p->p_folio, p->p_nfolio * sizeof(*n));
		if (p->p_folio != a->folio)
			free(p->p_folio);
		p->p_folio = n;
		a->folio_cap = ncap;
	}
	p->p_folio[p->p_nfolio++] = f;
	return 0;
}

static void put_folios(struct udx_fs *fs, struct udx_pin *p)
{
	size_t i;

	for (i = 0; i < p->p_nfolio; i++)
		udx_folio_put(fs->fs_pg, p->p_folio[i]);
	p->p_nfolio = 0;
}

/* Does [off, off + len) need blocks before a write pin can map it? */
static int needs_blocks(struct udx_inode *ip, uint64_t off, uint64_t len)
{
	uint64_t pos = off;

	while (pos < off + len) {
		struct udx_iomap map;
		int ret = iomap_lookup(ip, pos, off + len - pos, &map);

		if (ret)
			return ret;
		if (map.type != UDX_IOMAP_MAPPED)
			return 1;
		pos = map.offset + map.length;
	}
	return 0;
}

/* Add entry @e's piece of the pin from page @idx (m_lock held): a folio
 * reference and a segment.  Returns the next page, or 0 with -ENOMEM. */
static uint64_t pin_add(struct pin_alloc *a, struct udx_fs *fs, const struct dax_entry *e,
			uint64_t idx, uint64_t end, int *err)
{
	uint64_t stop = MIN(end, e->e_index + (1ull << e->e_order));
	uint64_t in = (idx - e->e_index) << 12;
	char *addr = (e->e_flags & DE_ZERO) ? (char *)fs->fs_zero + in :
		     fs->fs_base + e->e_devoff + in;
	int ret = 0;

	if (e->e_flags & DE_ZERO)
		a->p.p_zero = true;

	if (e->e_folio) {
		ret = add_folio(a, e->e_folio);
		if (ret == 0)
			udx_folio_get(fs->fs_pg, e->e_folio);
		else if (ret == 1)
			ret = 0;
	}
	if (!ret)
		ret = add_seg(a, idx << 12, addr, (size_t)((stop - idx) << 12));
	if (ret) {
		*err = udx_err(ret, "out of memory");
		return 0;
	}
	return stop;
}

/* m_lock held: put the pin on the inode's list; from here a layout break
 * sees it. */
static void pin_register(struct udx_pin *p, struct dax_mapping *m)
{
	p->p_next = m->m_pins;
	if (m->m_pins)
		m->m_pins->p_prev = p;
	m->m_pins = p;
	WRITE_ONCE(m->m_npins, m->m_npins + 1);
}

/*
 * Reference the entries of the pin's range and register it, under one hold
 * of m_lock.
 *
 * Without @fault (the fast path) every entry must exist already, so neither
 * the inode lock nor the invalidate lock is needed: entries are deleted only
 * under m_lock (a layout break, which holds m_breaking and sees the pins
 * registered before it; removal, which waits for this section; eviction,
 * which no referenced inode meets), so what is found and registered under
 * one hold of m_lock stays valid.  Returns 1 when an entry is missing or
 * unusable: take the slow path.
 *
 * With @fault (i_rwsem and i_mmap_lock held shared), missing entries are
 * faulted in (dax_fault may drop and retake m_lock).
 *
 * Returns 0, 1 (fast path only) or a negative errno.
 */
static int pin_collect(struct pin_alloc *a, struct udx_inode *ip, bool fault, uint64_t size)
{
	struct udx_pin *p = &a->p;
	struct dax_mapping *m = &ip->i_map;
	struct udx_fs *fs = ip->i_fs;
	uint64_t idx = p->p_off >> 12, end = (p->p_off + p->p_len) >> 12;
	int ret = 0;

	pthread_mutex_lock(&m->m_lock);
	if (m->m_breaking) {
		/* rule 4: a pin made now could only be born recalled */
		pthread_mutex_unlock(&m->m_lock);
		return udx_err(-EAGAIN, "the file is being truncated or punched; try again");
	}
	while (idx < end) {
		struct dax_entry *e;

		if (!fault) {
			e = dax_lookup(m, idx);
			if (e == NULL || (e->e_flags & (DE_LOCKED | DE_POISON)) ||
			    ((e->e_flags & DE_ZERO) && (p->p_flags & UDX_PIN_WRITE)) ||
			    ((p->p_flags & UDX_PIN_HUGE) && e->e_order == 0)) {
				ret = 1;
				break;
			}
		} else {
			ret = dax_fault(ip, idx, p->p_flags, size, &e);
			if (ret)
				break;
			if ((e->e_flags & DE_POISON) &&
			    udx_pgmap_poisoned(fs->fs_pg, e->e_devoff + ((idx - e->e_index) << 12),
					       (MIN(end, e->e_index + (1ull << e->e_order)) - idx) << 12)) {
				ret = udx_err(-EIO, "the file's memory is poisoned");
				break;
			}
		}
		idx = pin_add(a, fs, e, idx, end, &ret);
		if (ret)
			break;
	}
	if (ret == 0)
		pin_register(p, m);
	pthread_mutex_unlock(&m->m_lock);
	if (ret) {
		put_folios(fs, p);
		p->p_nseg = 0;
	}
	return ret;
}

int udx_ipin(struct udx_inode *ip, uint64_t off, uint64_t len, unsigned flags,
	     udx_pin_cb cb, void *arg, struct udx_pin **out)
{
	struct udx_fs *fs = ip->i_fs;
	uint64_t align = (flags & UDX_PIN_HUGE) ? DAX_PMD_SIZE : 4096;
	struct pin_alloc *a;
	unsigned tries;
	int ret;

	if (IS_DIR(ip))
		return udx_err(-EISDIR, "is a directory");
	if (!IS_REG(ip))
		return udx_err(-EINVAL, "not a regular file");
	if (len == 0 || (off | len) & (align - 1) || off + len < off)
		return udx_err(-EINVAL, "a pin's offset and length must be multiples of %s",
			       align == 4096 ? "4 KiB" : "2 MiB");
	if (flags & ~(UDX_PIN_WRITE | UDX_PIN_HUGE | UDX_PIN_NOWAIT))
		return udx_err(-EINVAL, "unknown pin flags %#x", flags);
	if ((flags & UDX_PIN_WRITE) && fs->fs_rdonly)
		return udx_err(-EROFS, "the file system is mounted read-only");
	if (!fs_enter(fs))
		return udx_err(-ENXIO, "the device is being removed");
	a = malloc(sizeof(*a));         /* not calloc: glibc's skips its cache */
	if (a == NULL) {
		fs_exit(fs);
		return udx_err(-ENOMEM, "out of memory");
	}
	a->p = (struct udx_pin){
		.p_ip = ip, .p_off = off, .p_len = len, .p_flags = flags,
		.p_cb = cb, .p_arg = arg, .p_ref = 1,
		.p_seg = a->seg, .p_segoff = a->segoff, .p_folio = a->folio,
	};
	a->seg_cap = a->folio_cap = PIN_INLINE;
	/* the pin's own reference, for its whole life: taken before it is
	 * registered, as a recall may unpin it at once */
	udx_igrab(ip);

	ret = pin_collect(a, ip, false, 0);
	for (tries = 0; ret == 1; tries++) {
		uint64_t size;

		if (flags & UDX_PIN_NOWAIT) {
			if (pthread_rwlock_tryrdlock(&ip->i_rwsem)) {
				ret = udx_err(-EAGAIN, "the file is busy");
				break;
			}
			if (pthread_rwlock_tryrdlock(&ip->i_mmap_lock)) {
				iunlock(ip);
				ret = udx_err(-EAGAIN, "the file's layout is changing");
				break;
			}
		} else {
			ilock_shared(ip);
			pthread_rwlock_rdlock(&ip->i_mmap_lock);
		}
		size = READ_ONCE(ip->i_d->i_size);
		ret = 0;
		if (off + len > ALIGN_UP(size, 4096ull))
			ret = udx_err(-EINVAL, "the range goes beyond the end of the file");
		if (!ret && (flags & UDX_PIN_WRITE)) {
			ret = needs_blocks(ip, off, len);
			if (ret == 1) {
				/* allocate under the exclusive lock, then look again */
				pthread_rwlock_unlock(&ip->i_mmap_lock);
				iunlock(ip);
				if (tries >= 16) {
					ret = udx_err(-EAGAIN, "the range keeps losing its blocks");
					break;
				}
				ilock(ip);
				pthread_rwlock_rdlock(&ip->i_mmap_lock);
				ret = iomap_alloc_range(ip, off, MIN(len, ALIGN_UP(ip->i_d->i_size,
									       4096ull) - off));
				pthread_rwlock_unlock(&ip->i_mmap_lock);
				iunlock(ip);
				if (ret)
					break;
				ret = 1;
				continue;
			}
		}
		if (!ret)
			ret = pin_collect(a, ip, true, size);
		pthread_rwlock_unlock(&ip->i_mmap_lock);
		iunlock(ip);
		break;
	}
	if (flags & UDX_PIN_WRITE)
		dax_flush_stale(ip);            /* holes it filled, no lock held */
	if (ret) {
		pin_free(&a->p);
		fs_exit(fs);
		udx_iput(ip);
		return ret;
	}
	fs_exit(fs);
	*out = &a->p;
	return 0;
}

int udx_pin(struct udx_fs *fs, int fd, uint64_t off, uint64_t len, unsigned flags,
	    udx_pin_cb cb, void *arg, struct udx_pin **out)
{
	struct udx_inode *ip;
	int accmode, ret;

	ret = udx_fd_inode(fs, fd, &ip);
	if (ret)
		return udx_err(ret, "bad file descriptor %d", fd);
	accmode = udx_fd_flags(fs, fd) & O_ACCMODE;
	if ((flags & UDX_PIN_WRITE) && accmode == O_RDONLY)
		ret = udx_err(-EBADF, "a write pin needs a descriptor open for writing");
	else
		ret = udx_ipin(ip, off, len, flags, cb, arg, out);
	udx_iput(ip);
	return ret;
}

void udx_unpin(struct udx_pin *p)
{
	struct udx_inode *ip = p->p_ip;
	struct dax_mapping *m = &ip->i_map;
	struct udx_fs *fs = ip->i_fs;

	bool last = false;

	pthread_mutex_lock(&m->m_lock);
	UDX_BUG_ON(p->p_dead);                  /* unpinned twice */
	p->p_dead = true;
	if (p->p_prev)
		p->p_prev->p_next = p->p_next;
	else
		m->m_pins = p->p_next;
	if (p->p_next)
		p->p_next->p_prev = p->p_prev;
	WRITE_ONCE(m->m_npins, m->m_npins - 1);
	if (m->m_breaking)
		pthread_cond_broadcast(&m->m_cv);       /* a break waiting on pins */
	if (__atomic_load_n(&fs->fs_revoked, __ATOMIC_ACQUIRE)) {
		/* removal waits for the last pin */
		pthread_mutex_lock(&fs->fs_busy_lock);
		pthread_cond_broadcast(&fs->fs_busy_cv);
		pthread_mutex_unlock(&fs->fs_busy_lock);
	}
	if (p->p_ref == 1) {
		p->p_ref = 0;                   /* no callback in flight: ours */
		last = true;
	}
	pthread_mutex_unlock(&m->m_lock);
	/* folio puts after the pin left the list: a break that sees the
	 * folio idle sees no pin either */
	put_folios(fs, p);
	if (last) {
		pin_free(p);
	} else {
		pthread_mutex_lock(&m->m_lock);
		pin_release_ref(p);
		pthread_mutex_unlock(&m->m_lock);
	}
	udx_iput(ip);                   /* may evict an unlinked file */
}

const struct udx_pin_seg *udx_pin_segs(const struct udx_pin *p, size_t *n)
{
	*n = p->p_nseg;
	return p->p_seg;
}

void *udx_pin_addr(const struct udx_pin *p, uint64_t off)
{
	size_t lo = 0, hi = p->p_nseg;

	if (off < p->p_off || off >= p->p_off + p->p_len)
		return NULL;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (p->p_segoff[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return (char *)p->p_seg[lo].addr + (off - p->p_segoff[lo]);
}

uint64_t udx_pin_offset(const struct udx_pin *p)
{
	return p->p_off;
}

uint64_t udx_pin_length(const struct udx_pin *p)
{
	return p->p_len;
}

struct udx_inode *udx_pin_inode(const struct udx_pin *p)
{
	return p->p_ip;
}

int udx_pin_persist(struct udx_pin *p, uint64_t off, uint64_t len)
{
	struct udx_fs *fs = p->p_ip->i_fs;
	size_t i;

	if (!(p->p_flags & UDX_PIN_WRITE))
		return udx_err(-EINVAL, "not a write pin");
	if (off < p->p_off || off > p->p_off + p->p_len || len > p->p_off + p->p_len - off)
		return udx_err(-EINVAL, "the range is not inside the pin");
	for (i = 0; i < p->p_nseg; i++) {
		uint64_t s = MAX(off, p->p_segoff[i]);
		uint64_t e = MIN(off + len, p->p_segoff[i] + p->p_seg[i].len);

		if (s < e)
			udx_dev_flush(fs->fs_dev, (char *)p->p_seg[i].addr + (s - p->p_segoff[i]),
				      e - s);
	}
	udx_dev_drain(fs->fs_dev);
	return 0;
}
