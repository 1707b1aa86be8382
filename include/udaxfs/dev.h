/* SPDX-License-Identifier: MIT */
/*
 * udaxfs/dev.h - the memory device: a range of byte-addressable memory mapped
 * into the process, 2 MiB aligned, with a persistence interface.
 *
 * Specs understood by udx_dev_open():
 *
 *   anon:SIZE          anonymous memory (the embedded default); nothing
 *                      persists, flush and drain do nothing
 *   PATH               a regular file used as a pool: opened at its size, or
 *                      created sparse at opts->size when it does not exist
 *                      (UDX_DEV_CREATE); persisted with msync, or with CPU
 *                      cache flushes when the file is on a DAX file system
 *                      (then mapped MAP_SHARED_VALIDATE | MAP_SYNC)
 *   /dev/daxX.Y        a device-DAX character device; size and alignment are
 *                      read from sysfs; persisted with cache flushes
 *
 * SIZE takes K, M, G and T suffixes and must be a non-zero multiple of 4 KiB.
 * libpmem2 maps files and device DAX and supplies the flush functions.
 *
 * A device is immutable once open and may be used from any thread.  It does
 * not count its users: the pgmap built on it does (udaxfs/pgmap.h), and the
 * device must outlive it.
 */
#ifndef UDAXFS_DEV_H
#define UDAXFS_DEV_H

#include <udaxfs/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UDX_DEV_DEFAULT_SPEC "anon:1G"   /* the embedded default device */

/* What a store needs before it is persistent. */
enum udx_gran {
	UDX_GRAN_NONE,          /* volatile memory: nothing persists */
	UDX_GRAN_BYTE,          /* eADR: stores persist once globally visible */
	UDX_GRAN_CACHE_LINE,    /* flush the cache lines, then drain */
	UDX_GRAN_PAGE,          /* msync of the pages (a pool file) */
};

enum udx_dev_kind {
	UDX_DEV_ANON,
	UDX_DEV_FILE,
	UDX_DEV_DEVDAX,
};

/* Flags for struct udx_dev_opts. */
#define UDX_DEV_CREATE          (1u << 0)  /* create a missing pool file */
#define UDX_DEV_RDONLY          (1u << 1)  /* map read-only */
/* Test and benchmark aid: flush cache lines (CLWB/CLFLUSHOPT + SFENCE) on
 * every persist even though the memory is ordinary, to model persistent
 * memory on a machine without it.  Same as PMEM2_FORCE_GRANULARITY=CACHE_LINE
 * in the environment, which this also honours for anon devices. */
#define UDX_DEV_FORCE_CACHELINE (1u << 2)
/* Pool files and DAX devices are locked against other processes: one
 * writable open, or any number of read-only ones (-EBUSY otherwise).  This
 * skips the lock, for a reader that accepts an image that may change under
 * it (`udaxfs info` of a mounted device). */
#define UDX_DEV_NOLOCK          (1u << 3)

struct udx_dev_opts {
	uint64_t size;          /* create (or check) at this size; 0: the file's */
	unsigned flags;         /* UDX_DEV_* */
};

struct udx_dev_info {
	enum udx_dev_kind kind;
	enum udx_gran gran;
	uint64_t size;          /* bytes mapped */
	void *addr;             /* start of the mapping, 2 MiB aligned */
	uint64_t align;         /* device alignment (device DAX), else 4096 */
	bool huge;              /* huge pages requested (THP or device DAX) */
	bool map_sync;          /* MAP_SYNC mapping of a DAX file */
	bool rdonly;
	const char *spec;
};

struct udx_dev;

/**
 * udx_dev_open() - map a device.
 * @spec: see above; NULL means UDX_DEV_DEFAULT_SPEC.
 * @opts: may be NULL.
 * @out:  the device.
 *
 * Returns 0 or a negative errno with a message in udx_errmsg():
 *   -EINVAL      a malformed spec, a size of zero or not a multiple of 4 KiB
 *   -ENOENT      a missing path (and no UDX_DEV_CREATE with a size)
 *   -EISDIR      a directory
 *   -EACCES      permission denied
 *   -ENODEV      a kind of file that cannot be mapped (block device, FIFO...)
 *   -ENOMEM      larger than the address space allows
 *   -EFBIG       the file system refused to size the pool file
 *   -EBUSY       another process has it open (see UDX_DEV_NOLOCK)
 *   -EIO         anything else libpmem2 refused
 */
UDX_API int udx_dev_open(const char *spec, const struct udx_dev_opts *opts,
			 struct udx_dev **out);

/** udx_dev_close() - unmap and free; nothing may still use the memory. */
UDX_API void udx_dev_close(struct udx_dev *dev);

UDX_API void udx_dev_info(const struct udx_dev *dev, struct udx_dev_info *info);
UDX_API void *udx_dev_addr(const struct udx_dev *dev);
UDX_API uint64_t udx_dev_size(const struct udx_dev *dev);
UDX_API enum udx_gran udx_dev_gran(const struct udx_dev *dev);
UDX_API const char *udx_gran_name(enum udx_gran gran);

/*
 * The persistence interface.  flush starts write-back of a range, drain
 * waits for every flush issued by this thread, persist does both.  Ranges
 * need no alignment.  All three are no-ops on volatile memory.
 */
UDX_API void udx_dev_flush(const struct udx_dev *dev, const void *addr, size_t len);
UDX_API void udx_dev_drain(const struct udx_dev *dev);
UDX_API void udx_dev_persist(const struct udx_dev *dev, const void *addr, size_t len);

/*
 * Copies into device memory that persist as the device allows: on cache
 * line and byte granularity devices the data is durable when the call
 * returns (non-temporal stores and a drain; with UDX_MEM_NODRAIN the caller
 * drains later); on page granularity (msync) devices the copy is plain and
 * durable after udx_dev_flush() of the range; on volatile memory it is a
 * copy.
 */
#define UDX_MEM_NODRAIN (1u << 0)
UDX_API void udx_dev_memcpy(const struct udx_dev *dev, void *dst, const void *src,
			    size_t len, unsigned flags);
UDX_API void udx_dev_memset(const struct udx_dev *dev, void *dst, int c, size_t len,
			    unsigned flags);

/*
 * Persistence hooks: a test harness (the crash recorder) can watch every
 * flush and drain.  Each hook is called before the device's own function.
 * Install before the device is shared with other threads; NULL removes them.
 */
struct udx_persist_ops {
	void (*flush)(void *ctx, const void *addr, size_t len);
	void (*drain)(void *ctx);
};
UDX_API void udx_dev_set_persist_ops(struct udx_dev *dev,
				     const struct udx_persist_ops *ops, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* UDAXFS_DEV_H */
