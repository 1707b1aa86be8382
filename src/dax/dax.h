/* SPDX-License-Identifier: MIT */
/*
 * Internal: the DAX layer.  iomap (iomap.c), the per-inode mapping index of
 * DAX entries (mapping.c), pins (pin.c), and the mounted file system as the
 * pgmap's holder: device removal and memory failure (holder.c).
 *
 * The mapping index of an inode: file page index -> entry.  An entry is
 * 4 KiB (order 0) or 2 MiB (order 9) and holds one reference on its device
 * folio, taken through the pgmap when the entry is inserted and dropped when
 * it is deleted; the zero entry of a hole holds none (it shows the file
 * system's shared zero page).  Index: a hash of 2 MiB slots, each holding a
 * 2 MiB entry or an array of 512 4 KiB entries.
 *
 * Locks (fs.h gives the whole order): i_rwsem, then i_mmap_lock (the
 * invalidate lock: shared to fault and pin, exclusive to break the layout),
 * then m_lock, innermost, which guards the index, the pin list and the
 * counters below.  An entry with DE_LOCKED set is being filled by a fault
 * that dropped m_lock to do its work; faults on that index wait on m_cv
 * (rule 6: one index, one fault at a time).
 *
 * Rules of DESIGN.md kept here (the numbers are its numbers):
 *  1  eviction and unmount delete every entry; removal deletes them all
 *  2  removal kills fs_active and waits for every section (pin, iomap,
 *     transaction) in flight before recalling pins
 *  3  transactions and file I/O run inside fs_active sections
 *  4  a pin asked for while a layout break is in progress on its inode
 *     fails with EAGAIN (it could only be born recalled)
 *  5  a break waits for the folio to drop to its entry's share (plus its
 *     own), then rechecks everything under its locks
 *  6  DE_LOCKED
 *  8  the break's wait callback drops and retakes i_mmap_lock and i_rwsem
 */
#ifndef UDX_DAX_DAX_H
#define UDX_DAX_DAX_H

#include <pthread.h>
#include <udaxfs/dax.h>
#include <udaxfs/pgmap.h>

struct udx_inode;
struct udx_fs;
struct udx_tx;

#define DAX_PMD_SHIFT   9               /* 512 pages: 2 MiB */
#define DAX_PMD_PAGES   (1ull << DAX_PMD_SHIFT)
#define DAX_PMD_SIZE    (DAX_PMD_PAGES << 12)

enum {
	DE_LOCKED = 1 << 0,             /* a fault is filling it */
	DE_ZERO   = 1 << 1,             /* a hole: the zero page, no folio */
	DE_POISON = 1 << 2,             /* memory in it failed: check pages */
};

/* Pins whose callbacks are to run once m_lock is dropped; each holds a
 * p_ref. */
struct pin_batch {
	struct udx_pin **p;
	size_t n, cap;
};

struct dax_entry {
	uint64_t e_index;               /* first file page it maps */
	uint64_t e_devoff;              /* device byte offset (not DE_ZERO) */
	struct udx_folio *e_folio;      /* its reference (NULL for DE_ZERO) */
	uint8_t e_order;                /* 0 or DAX_PMD_SHIFT */
	uint8_t e_flags;
};

struct dax_pmd {
	uint64_t d_key;                 /* file index >> 9; UINT64_MAX: empty */
	struct dax_entry *d_huge;       /* a 2 MiB entry, or NULL */
	struct dax_entry **d_small;     /* 512 4 KiB entries, or NULL */
	uint32_t d_nsmall;
};

struct dax_mapping {
	pthread_mutex_t m_lock;
	pthread_cond_t m_cv;            /* an entry unlocked, or a pin left */
	struct dax_pmd *m_slots;        /* open addressing, m_cap a power of 2 */
	size_t m_cap, m_used;
	uint64_t m_nentries;            /* written under m_lock, read by stats */
	struct udx_pin *m_pins;         /* list of pins */
	uint64_t m_npins;               /* written under m_lock, read by stats */
	unsigned m_breaking;            /* layout breaks in progress */
	uint64_t m_gen;                 /* bumped when zero entries go stale */
	struct pin_batch m_stale;       /* read pins over holes written since:
					   told by dax_flush_stale() */
	uint64_t m_stale_start, m_stale_end;    /* the pages written */
};

struct udx_pin {
	struct udx_inode *p_ip;         /* a reference, for the pin's life */
	uint64_t p_off, p_len;
	unsigned p_flags;
	udx_pin_cb p_cb;
	void *p_arg;
	struct udx_pin *p_prev, *p_next;        /* m_lock */
	uint32_t p_ref;                 /* m_lock: the holder's, + callbacks */
	bool p_recalled;                /* m_lock */
	bool p_dead;                    /* m_lock: unpinned (the struct may live
					   on while a callback is in flight) */
	bool p_zero;                    /* shows the zero page somewhere */
	size_t p_nseg, p_nfolio;
	struct udx_pin_seg *p_seg;
	struct udx_folio **p_folio;
	uint64_t *p_segoff;             /* file offset of each segment */
};

/* mapping.c */
void dax_mapping_init(struct dax_mapping *m);
/* Delete every entry (the inode is leaving the cache, or the file system
 * is going away): no pin may exist. */
void dax_mapping_destroy(struct udx_inode *ip);
/* The entry covering page @idx, or NULL (m_lock held). */
struct dax_entry *dax_lookup(struct dax_mapping *m, uint64_t idx);
/* Find or make the entry covering page @idx (m_lock held; may drop and
 * retake it).  Returns 0 with *@out set, or a negative errno. */
int dax_fault(struct udx_inode *ip, uint64_t idx, unsigned flags, uint64_t size,
	      struct dax_entry **out);
/* Delete the zero entries over [start, end) pages after blocks were
 * allocated there; read pins over the written pages are told
 * (UDX_PIN_RECALL_STALE) by the next dax_flush_stale(), which the caller
 * runs once it holds no lock. */
void dax_invalidate_zero(struct udx_inode *ip, uint64_t start, uint64_t end);
void dax_flush_stale(struct udx_inode *ip);
/*
 * Break the layout of pages [start, end): with i_rwsem and i_mmap_lock held
 * exclusively.  Recalls pins over busy folios and waits for them (dropping
 * both locks meanwhile, rule 8), or fails with -EBUSY under UDX_BREAK_NOWAIT;
 * then deletes the entries there.  Returns 0, -EBUSY, -ENXIO.
 */
int dax_break_layout(struct udx_inode *ip, uint64_t start, uint64_t end, unsigned flags);
/* Delete the entries of pages [start, end) of an inode nobody else can
 * reach (eviction, unlink's fast path): no pin may exist. */
void dax_delete_entries(struct udx_inode *ip, uint64_t start, uint64_t end);
/* Delete every entry and recall every pin of a cached inode (removal). */
void dax_revoke_inode(struct udx_inode *ip);
/* Tell the pins over file pages [start, end) that memory there is lost. */
void dax_poison_inode(struct udx_inode *ip, uint64_t start, uint64_t end);

/* iomap.c */
/* The extent at @off, up to @len bytes (i_mmap_lock or i_rwsem held). */
int iomap_lookup(struct udx_inode *ip, uint64_t off, uint64_t len, struct udx_iomap *map);
/*
 * Give [off, off + len) written blocks inside @tx: allocate holes and
 * convert unwritten extents, zeroing the new blocks except
 * [keep_off, keep_off + keep_len), which the caller is about to write.
 * With i_rwsem held exclusively.
 */
int iomap_prepare(struct udx_tx *tx, struct udx_inode *ip, uint64_t off, uint64_t len,
		  uint64_t keep_off, uint64_t keep_len);
/* Allocate and zero every hole and unwritten block of [off, off + len), in
 * as many transactions as it takes (i_rwsem exclusive). */
int iomap_alloc_range(struct udx_inode *ip, uint64_t off, uint64_t len);

/* pin.c */
void pin_release_ref(struct udx_pin *p);

/* holder.c */
int dax_fs_init(struct udx_fs *fs, struct udx_pgmap *pg);
void dax_fs_exit(struct udx_fs *fs);
/* fs_enter()/fs_exit(): fs.h */

#endif /* UDX_DAX_DAX_H */
