/* SPDX-License-Identifier: MIT */
/*
 * udaxfs/dax.h - direct access to file memory: iomap, and pins.
 *
 * The inode is the arbiter of access to device memory.  iomap translates a
 * file range to device memory for the length of one call (the read and
 * write paths use it too).  A pin is the only way to hold on to file memory
 * beyond a call: it holds a reference on the inode for its whole life and
 * one on every folio it covers, so that unlink, truncate, hole punch, inode
 * reclaim, unmount and device removal never free memory it can reach.
 *
 * Operations that free or move blocks (truncate, punch) first break the
 * layout of their range: they call the recall callback of every pin over a
 * busy folio there, and wait until those pins are gone (or fail with EBUSY
 * when asked not to wait).  The callback must make its holder call
 * udx_unpin() soon; it may do so from inside the callback.
 *
 * Device removal (udx_memunmap() of the pgmap the file system holds) recalls
 * every pin, makes new pins, iomaps and changes fail with ENXIO, and returns
 * after the last unpin.  A poisoned device range (udx_pgmap_memory_failure)
 * is traced back to its files: pins over it are told, reads there fail with
 * EIO, and its blocks are never allocated again while mounted.
 */
#ifndef UDAXFS_DAX_H
#define UDAXFS_DAX_H

#include <udaxfs/common.h>
#include <udaxfs/fs.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- iomap ------------------------------------------------------------- */

enum udx_iomap_type {
	UDX_IOMAP_HOLE = 1,             /* no blocks: reads as zeros */
	UDX_IOMAP_MAPPED,               /* written blocks at dev_offset/addr */
	UDX_IOMAP_UNWRITTEN,            /* allocated, reads as zeros */
};

#define UDX_IOMAP_WRITE  (1u << 0)      /* allocate holes, convert unwritten */

struct udx_iomap {
	uint64_t offset;                /* file offset of the extent (4 KiB aligned) */
	uint64_t length;                /* bytes, from offset */
	enum udx_iomap_type type;
	uint64_t dev_offset;            /* MAPPED, UNWRITTEN: device byte offset */
	void *addr;                     /* MAPPED, UNWRITTEN: its address */
	bool fresh;                     /* WRITE: blocks this call allocated */
};

/**
 * udx_iomap_begin() - the extent of the file that contains @off, up to @len
 * bytes of it.  Takes the inode's invalidate lock shared; the extent stays as
 * described until udx_iomap_end().  With UDX_IOMAP_WRITE, holes and
 * unwritten extents in [off, off + len) (within the file's size) are
 * allocated and zeroed first, so the answer is MAPPED.
 * Returns 0, or -EINVAL (beyond the largest file, or len 0), -EISDIR,
 * -ENOSPC, -EROFS, -EIO (the range is poisoned), -ENXIO (the device is
 * being removed).
 */
UDX_API int udx_iomap_begin(struct udx_inode *ip, uint64_t off, uint64_t len,
			    unsigned flags, struct udx_iomap *map);
UDX_API void udx_iomap_end(struct udx_inode *ip, struct udx_iomap *map);

/* ---- pins ---------------------------------------------------------------- */

struct udx_pin;

/* why a pin's callback runs */
enum udx_pin_event {
	UDX_PIN_RECALL_LAYOUT = 1,      /* truncate or punch over it: unpin */
	UDX_PIN_RECALL_REMOVE,          /* the device is going away: unpin */
	UDX_PIN_POISON,                 /* memory it covers is lost (range given) */
	UDX_PIN_RECALL_STALE,           /* a hole it shows as zeros was written */
};

/*
 * udx_pin_cb - runs in the thread that breaks the layout (or removes the
 * device, or reports the failure), with no udaxfs lock held.  @off/@len is
 * the affected file range.  It may call udx_unpin(@pin) itself.  It is not
 * called for a pin already unpinned when the recall begins, but one that
 * begins while the holder's own thread unpins may still run after that
 * udx_unpin() returned (the pin's memory is valid for the call; its @arg
 * must be too): a holder that frees @arg at unpin, or can unpin from both
 * places, synchronises with its callback itself (udx_unpin of a pin twice
 * is a bug, and is caught).
 */
typedef void (*udx_pin_cb)(struct udx_pin *pin, enum udx_pin_event ev, uint64_t off,
			   uint64_t len, void *arg);

#define UDX_PIN_WRITE  (1u << 0)        /* writable: allocates holes */
#define UDX_PIN_HUGE   (1u << 1)        /* 2 MiB entries only, or -EINVAL */
#define UDX_PIN_NOWAIT (1u << 2)        /* -EAGAIN rather than wait for a
					   fault in progress on the range */

struct udx_pin_seg {
	void *addr;
	size_t len;
};

/**
 * udx_ipin() - pin [@off, @off + @len) of a regular file.
 * @off and @len are 4 KiB aligned (2 MiB with UDX_PIN_HUGE), within the file's
 * size rounded up to 4 KiB.  Read pins over holes show a shared zero page
 * (told UDX_PIN_RECALL_STALE when a write fills the hole).
 * Returns 0, or -EINVAL, -EISDIR, -EBADF (a write pin on a read-only file
 * system: -EROFS), -ENOSPC, -EIO (poisoned), -EAGAIN (NOWAIT), -ENOMEM,
 * -ENXIO (the device is being removed).
 */
UDX_API int udx_ipin(struct udx_inode *ip, uint64_t off, uint64_t len, unsigned flags,
		     udx_pin_cb cb, void *arg, struct udx_pin **out);
/** udx_pin() - udx_ipin() of an open file descriptor (opened for writing
 * when @flags has UDX_PIN_WRITE). */
UDX_API int udx_pin(struct udx_fs *fs, int fd, uint64_t off, uint64_t len, unsigned flags,
		    udx_pin_cb cb, void *arg, struct udx_pin **out);
/** udx_unpin() - release a pin (its memory must not be touched after). */
UDX_API void udx_unpin(struct udx_pin *pin);

/** The pin's memory: @n (address, length) pieces, in file order. */
UDX_API const struct udx_pin_seg *udx_pin_segs(const struct udx_pin *pin, size_t *n);
/** The address of file offset @off (inside the pin), or NULL. */
UDX_API void *udx_pin_addr(const struct udx_pin *pin, uint64_t off);
UDX_API uint64_t udx_pin_offset(const struct udx_pin *pin);
UDX_API uint64_t udx_pin_length(const struct udx_pin *pin);
UDX_API struct udx_inode *udx_pin_inode(const struct udx_pin *pin);
/**
 * udx_pin_persist() - make what was stored through a write pin in
 * [@off, @off + @len) (file offsets) durable.  Returns 0 or -EINVAL.
 */
UDX_API int udx_pin_persist(struct udx_pin *pin, uint64_t off, uint64_t len);

/* ---- layout-breaking calls that may refuse instead of waiting ---------- */

/** Fail with -EBUSY, changing nothing, when a pin holds the range. */
#define UDX_BREAK_NOWAIT (1u << 0)

/** udx_itruncate() with @flags (UDX_BREAK_NOWAIT). */
UDX_API int udx_itruncate_flags(struct udx_inode *ip, uint64_t size, unsigned flags);
/** udx_ifallocate() with @flags (UDX_BREAK_NOWAIT; for FALLOC_FL_PUNCH_HOLE). */
UDX_API int udx_ifallocate_flags(struct udx_inode *ip, int mode, uint64_t off,
				 uint64_t len, unsigned flags);

/* ---- the mounted file system and its pgmap ---------------------------- */

struct udx_pgmap;
/** The pgmap the file system holds (udx_mount_opts.pgmap, or its own). */
UDX_API struct udx_pgmap *udx_fs_pgmap(struct udx_fs *fs);

#ifdef __cplusplus
}
#endif
#endif /* UDAXFS_DAX_H */
