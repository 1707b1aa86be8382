/* SPDX-License-Identifier: MIT */
/*
 * The memory device: parse a spec, map it 2 MiB aligned, and persist ranges.
 *
 * Mapping strategy, by kind:
 *   anon       our own mmap, over-allocated by 2 MiB and trimmed to an
 *              aligned start, MADV_HUGEPAGE.  Persistence: none, or cache
 *              line flushes through a libpmem2 map of the existing range when
 *              forced (UDX_DEV_FORCE_CACHELINE / PMEM2_FORCE_GRANULARITY).
 *   file       libpmem2 maps it (2 MiB aligned; MAP_SYNC on a DAX file
 *              system) and picks msync or cache flushes.  When cache line
 *              flushing is forced on an ordinary file we map it ourselves
 *              and give libpmem2 the existing range.
 *   devdax     libpmem2 maps it at the device's alignment.
 */
#include <errno.h>
#include <fcntl.h>
#include <libpmem2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udaxfs/dev.h>
#include "dev/pgmap_internal.h"
#include "base/compiler.h"
#include "base/err.h"

#define DEV_ALIGN (2ull << 20)

struct udx_dev {
	char *dv_spec;
	enum udx_dev_kind dv_kind;
	enum udx_gran dv_gran;
	void *dv_addr;                  /* 2 MiB aligned start */
	uint64_t dv_size;
	uint64_t dv_align;
	bool dv_huge, dv_map_sync, dv_rdonly;
	bool dv_own_mapping;            /* we mmap'ed it (else libpmem2 did) */
	int dv_fd;
	struct pmem2_source *dv_src;
	struct pmem2_map *dv_map;
	pmem2_flush_fn dv_flush;        /* NULL: nothing to do */
	pmem2_drain_fn dv_drain;
	pmem2_memcpy_fn dv_memcpy;      /* NULL: not a cache-flushing device */
	pmem2_memset_fn dv_memset;
	const struct udx_persist_ops *dv_pops;
	void *dv_pctx;
	bool dv_pgmap;                  /* atomic: a pgmap covers it */
};

/* One pgmap per device (pgmap.c): two would count the same pages twice,
 * and two mounts would write the same metadata. */
bool dev_attach_pgmap(struct udx_dev *dev)
{
	bool no = false;

	return __atomic_compare_exchange_n(&dev->dv_pgmap, &no, true, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

void dev_detach_pgmap(struct udx_dev *dev)
{
	__atomic_store_n(&dev->dv_pgmap, false, __ATOMIC_RELEASE);
}

static bool dev_force_cacheline(const struct udx_dev_opts *opts)
{
	const char *e = getenv("PMEM2_FORCE_GRANULARITY");

	if (opts->flags & UDX_DEV_FORCE_CACHELINE)
		return true;
	return e != NULL && (strcasecmp(e, "CACHE_LINE") == 0 ||
			     strcasecmp(e, "CL") == 0 ||
			     strcasecmp(e, "CACHELINE") == 0);
}

static enum udx_gran gran_from_pmem2(enum pmem2_granularity g)
{
	switch (g) {
	case PMEM2_GRANULARITY_BYTE:
		return UDX_GRAN_BYTE;
	case PMEM2_GRANULARITY_CACHE_LINE:
		return UDX_GRAN_CACHE_LINE;
	default:
		return UDX_GRAN_PAGE;
	}
}

static int check_size(const char *spec, uint64_t size)
{
	if (size == 0)
		return udx_err(-EINVAL, "%s: the size is zero; give a size such as 1G", spec);
	if (!IS_ALIGNED(size, UDX_PAGE_SIZE))
		return udx_err(-EINVAL,
			       "%s: the size %llu is not a multiple of 4 KiB",
			       spec, (unsigned long long)size);
	return 0;
}

/*
 * Reserve an address range of @size bytes starting on a 2 MiB boundary.
 * Returns the aligned start, or MAP_FAILED with errno set.
 */
static void *reserve_aligned(uint64_t size, int prot, int flags)
{
	uint64_t len = size + DEV_ALIGN;
	char *raw, *start;

	if (len < size)
		return (errno = ENOMEM, MAP_FAILED);
	raw = mmap(NULL, len, prot, flags, -1, 0);
	if (raw == MAP_FAILED)
		return MAP_FAILED;
	start = (char *)ALIGN_UP((uintptr_t)raw, DEV_ALIGN);
	if (start > raw)
		munmap(raw, (size_t)(start - raw));
	if (raw + len > start + size)
		munmap(start + size, (size_t)(raw + len - (start + size)));
	return start;
}

static int pmem2_errno(int ret)
{
	/* libpmem2 returns negative errno values, or its own codes below
	 * -100000 for conditions that have no errno. */
	return ret < 0 && ret > -4096 ? ret : -EIO;
}

/* Give libpmem2 an existing mapping so that it supplies cache line flushes. */
static int dev_attach_flusher(struct udx_dev *dev)
{
	int ret;

	ret = pmem2_map_from_existing(&dev->dv_map, dev->dv_src, dev->dv_addr,
				      dev->dv_size, PMEM2_GRANULARITY_CACHE_LINE);
	if (ret)
		return udx_err(pmem2_errno(ret), "%s: cannot set up cache line flushing: %s",
			       dev->dv_spec, pmem2_errormsg());
	dev->dv_gran = UDX_GRAN_CACHE_LINE;
	dev->dv_flush = pmem2_get_flush_fn(dev->dv_map);
	dev->dv_drain = pmem2_get_drain_fn(dev->dv_map);
	dev->dv_memcpy = pmem2_get_memcpy_fn(dev->dv_map);
	dev->dv_memset = pmem2_get_memset_fn(dev->dv_map);
	return 0;
}

static int dev_open_anon(struct udx_dev *dev, const char *sizestr,
			 const struct udx_dev_opts *opts)
{
	int prot = PROT_READ | (dev->dv_rdonly ? 0 : PROT_WRITE);
	uint64_t size;
	int ret;

	ret = udx_parse_size(sizestr, &size);
	if (ret == -ERANGE)
		return udx_err(-ENOMEM, "%s: the size is larger than the address space allows",
			       dev->dv_spec);
	if (ret)
		return udx_err(-EINVAL, "%s: '%s' is not a size (try anon:1G)",
			       dev->dv_spec, sizestr);
	ret = check_size(dev->dv_spec, size);
	if (ret)
		return ret;
	dev->dv_kind = UDX_DEV_ANON;
	dev->dv_size = size;
	dev->dv_align = UDX_PAGE_SIZE;
	dev->dv_addr = reserve_aligned(size, prot,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	if (dev->dv_addr == MAP_FAILED) {
		dev->dv_addr = NULL;
		return udx_err(-ENOMEM, "%s: cannot map %s bytes: larger than the address space allows",
			       dev->dv_spec, sizestr);
	}
	dev->dv_own_mapping = true;
	dev->dv_huge = madvise(dev->dv_addr, size, MADV_HUGEPAGE) == 0;
	dev->dv_gran = UDX_GRAN_NONE;
	if (dev_force_cacheline(opts)) {
		ret = pmem2_source_from_anon(&dev->dv_src, size);
		if (ret)
			return udx_err(pmem2_errno(ret), "%s: %s", dev->dv_spec, pmem2_errormsg());
		return dev_attach_flusher(dev);
	}
	return 0;
}

/* Map an open pool file or device DAX through libpmem2. */
static int dev_map_pmem2(struct udx_dev *dev)
{
	struct pmem2_config *cfg = NULL;
	int ret;

	ret = pmem2_config_new(&cfg);
	if (ret)
		return udx_err(pmem2_errno(ret), "%s: %s", dev->dv_spec, pmem2_errormsg());
	pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	pmem2_config_set_length(cfg, dev->dv_size);
	pmem2_config_set_sharing(cfg, PMEM2_SHARED);
	pmem2_config_set_protection(cfg, PMEM2_PROT_READ |
				    (dev->dv_rdonly ? 0 : PMEM2_PROT_WRITE));
	ret = pmem2_map_new(&dev->dv_map, cfg, dev->dv_src);
	pmem2_config_delete(&cfg);
	if (ret) {
		ret = pmem2_errno(ret);
		if (ret == -ENOMEM)
			return udx_err(ret, "%s: cannot map %llu bytes: larger than the address space allows",
				       dev->dv_spec, (unsigned long long)dev->dv_size);
		return udx_err(ret, "%s: cannot map: %s", dev->dv_spec, pmem2_errormsg());
	}
	dev->dv_addr = pmem2_map_get_address(dev->dv_map);
	dev->dv_gran = gran_from_pmem2(pmem2_map_get_store_granularity(dev->dv_map));
	dev->dv_flush = pmem2_get_flush_fn(dev->dv_map);
	dev->dv_drain = pmem2_get_drain_fn(dev->dv_map);
	if (dev->dv_gran != UDX_GRAN_PAGE) {
		dev->dv_memcpy = pmem2_get_memcpy_fn(dev->dv_map);
		dev->dv_memset = pmem2_get_memset_fn(dev->dv_map);
	}
	return 0;
}

/* Map a pool file ourselves (for forced cache line flushing). */
static int dev_map_own(struct udx_dev *dev)
{
	int prot = PROT_READ | (dev->dv_rdonly ? 0 : PROT_WRITE);
	void *at, *p;

	at = reserve_aligned(dev->dv_size, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	if (at == MAP_FAILED)
		return udx_err(-ENOMEM, "%s: cannot map %llu bytes: larger than the address space allows",
			       dev->dv_spec, (unsigned long long)dev->dv_size);
	p = mmap(at, dev->dv_size, prot, MAP_SHARED | MAP_FIXED, dev->dv_fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;

		munmap(at, dev->dv_size);
		return udx_err(-e, "%s: cannot map: %s", dev->dv_spec, strerror(e));
	}
	dev->dv_addr = p;
	dev->dv_own_mapping = true;
	return dev_attach_flusher(dev);
}

static int dev_create_file(struct udx_dev *dev, const struct udx_dev_opts *opts)
{
	const char *path = dev->dv_spec;
	int fd, ret;

	if (!(opts->flags & UDX_DEV_CREATE) || opts->size == 0)
		return udx_err(-ENOENT, "%s: no such file (give a size to create a pool file)",
			       path);
	ret = check_size(path, opts->size);
	if (ret)
		return ret;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;

		return udx_err(-e, "%s: cannot create the pool file: %s", path, strerror(e));
	}
	if (ftruncate(fd, (off_t)opts->size) != 0) {
		int e = errno;

		close(fd);
		unlink(path);
		return udx_err(e == EFBIG || e == EINVAL ? -EFBIG : -e,
			       "%s: cannot make the pool file %llu bytes long: %s", path,
			       (unsigned long long)opts->size, strerror(e));
	}
	dev->dv_fd = fd;
	return 0;
}

/*
 * One writer per device across processes: an open file description lock
 * over the whole file, exclusive for a writable open and shared for a
 * read-only one (fsck, stats), so a mount in one process and a mount or a
 * repair in another refuse each other.  It goes with the process, so a
 * killed mount leaves nothing behind.  UDX_DEV_NOLOCK skips it for readers
 * that tolerate a changing image (info).
 */
static int dev_lock(struct udx_dev *dev, const struct udx_dev_opts *opts)
{
	struct flock fl = {
		.l_type = dev->dv_rdonly ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
	};

	if (opts->flags & UDX_DEV_NOLOCK)
		return 0;
	if (fcntl(dev->dv_fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return udx_err(-EBUSY, "%s: in use by another process (a mount, or another udaxfs "
			       "command)", dev->dv_spec);
	if (errno == EINVAL || errno == ENOLCK)
		return 0;               /* a file system without locks */
	return udx_err(-errno, "%s: cannot lock: %s", dev->dv_spec, strerror(errno));
}

static int dev_open_path(struct udx_dev *dev, const struct udx_dev_opts *opts)
{
	const char *path = dev->dv_spec;
	struct stat st;
	size_t srcsize;
	int ret;

	if (stat(path, &st) != 0) {
		int e = errno;

		if (e != ENOENT)
			return udx_err(-e, "%s: %s", path, strerror(e));
		ret = dev_create_file(dev, opts);
		if (ret)
			return ret;
		if (fstat(dev->dv_fd, &st) != 0)
			return udx_err(-errno, "%s: %s", path, strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		return udx_err(-EISDIR, "%s: is a directory, not a pool file or DAX device", path);
	} else if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		return udx_err(-ENODEV, "%s: cannot be mapped as a memory device "
			       "(use a regular file, a file on a DAX file system, or /dev/daxX.Y)",
			       path);
	}
	if (dev->dv_fd < 0) {
		dev->dv_fd = open(path, (dev->dv_rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (dev->dv_fd < 0) {
			int e = errno;

			return udx_err(-e, "%s: cannot open: %s%s", path, strerror(e),
				       e == EACCES && !dev->dv_rdonly ?
				       " (read and write access is needed)" : "");
		}
	}
	ret = dev_lock(dev, opts);
	if (ret)
		return ret;
	ret = pmem2_source_from_fd(&dev->dv_src, dev->dv_fd);
	if (ret) {
		if (S_ISCHR(st.st_mode))
			return udx_err(-ENODEV, "%s: not a device-DAX character device: %s",
				       path, pmem2_errormsg());
		return udx_err(pmem2_errno(ret), "%s: %s", path, pmem2_errormsg());
	}
	ret = pmem2_source_size(dev->dv_src, &srcsize);
	if (ret)
		return udx_err(pmem2_errno(ret), "%s: cannot read its size: %s", path,
			       pmem2_errormsg());
	if (S_ISCHR(st.st_mode)) {
		size_t align = UDX_PAGE_SIZE;

		dev->dv_kind = UDX_DEV_DEVDAX;
		if (pmem2_source_alignment(dev->dv_src, &align) == 0)
			dev->dv_align = align;
	} else {
		dev->dv_kind = UDX_DEV_FILE;
		dev->dv_align = UDX_PAGE_SIZE;
	}
	if (opts->size != 0) {
		ret = check_size(path, opts->size);
		if (ret)
			return ret;
		if (opts->size > srcsize) {
			if (dev->dv_kind != UDX_DEV_FILE || !(opts->flags & UDX_DEV_CREATE))
				return udx_err(-EINVAL, "%s: is %zu bytes, smaller than the %llu asked for",
					       path, srcsize, (unsigned long long)opts->size);
			if (ftruncate(dev->dv_fd, (off_t)opts->size) != 0)
				return udx_err(-EFBIG, "%s: cannot grow to %llu bytes: %s", path,
					       (unsigned long long)opts->size, strerror(errno));
		}
		dev->dv_size = opts->size;
	} else {
		if (srcsize == 0)
			return udx_err(-EINVAL, "%s: the file is empty; give a size to use it as a pool",
				       path);
		/* device DAX is sized in whole alignment units; a pool file
		 * of a size that is not a page multiple is refused, not cut */
		dev->dv_size = dev->dv_kind == UDX_DEV_DEVDAX ?
			ALIGN_DOWN((uint64_t)srcsize, dev->dv_align) : srcsize;
		ret = check_size(path, dev->dv_size);
		if (ret)
			return ret;
	}
	if (dev->dv_kind == UDX_DEV_FILE && dev_force_cacheline(opts))
		ret = dev_map_own(dev);
	else
		ret = dev_map_pmem2(dev);
	if (ret)
		return ret;
	if (dev->dv_kind == UDX_DEV_DEVDAX)
		dev->dv_huge = dev->dv_align >= DEV_ALIGN;
	else
		dev->dv_huge = madvise(dev->dv_addr, dev->dv_size, MADV_HUGEPAGE) == 0;
	dev->dv_map_sync = dev->dv_kind == UDX_DEV_FILE && !dev->dv_own_mapping &&
			   dev->dv_gran != UDX_GRAN_PAGE &&
			   getenv("PMEM2_FORCE_GRANULARITY") == NULL;
	return 0;
}

int udx_dev_open(const char *spec, const struct udx_dev_opts *opts,
		 struct udx_dev **out)
{
	static const struct udx_dev_opts no_opts;
	struct udx_dev *dev;
	int ret;

	if (opts == NULL)
		opts = &no_opts;
	if (spec == NULL)
		spec = UDX_DEV_DEFAULT_SPEC;
	if (*spec == '\0')
		return udx_err(-EINVAL, "an empty device spec (try anon:1G or a file path)");
	dev = calloc(1, sizeof(*dev));
	if (dev == NULL)
		return udx_err(-ENOMEM, "out of memory");
	dev->dv_fd = -1;
	dev->dv_rdonly = opts->flags & UDX_DEV_RDONLY;
	dev->dv_spec = strdup(spec);
	if (dev->dv_spec == NULL) {
		ret = udx_err(-ENOMEM, "out of memory");
		goto out_free;
	}
	if (strncmp(spec, "anon:", 5) == 0)
		ret = dev_open_anon(dev, spec + 5, opts);
	else
		ret = dev_open_path(dev, opts);
	if (ret)
		goto out_close;
	/* libpmem2 aligns file mappings to 2 MiB; should it ever not, the
	 * device still works, only without huge mappings. */
	if (!IS_ALIGNED((uintptr_t)dev->dv_addr, DEV_ALIGN))
		dev->dv_huge = false;
	*out = dev;
	return 0;

out_close:
	udx_dev_close(dev);
	return ret;
out_free:
	free(dev);
	return ret;
}

/*
 * Page-granularity devices (pool files) persist with msync, a system call
 * that writes the pages back and waits.  A transaction flushes many small
 * ranges before one drain, so flushes of page devices are gathered per
 * thread, merged where they are near, and synced at the drain, which is the
 * only point the contract promises durability (flush: "on its way"; drain:
 * "there").  A full list syncs its oldest range early, which is allowed.
 */
#define PEND_MAX 8
#define PEND_MERGE_GAP (256u << 10)     /* syncing clean pages between is cheap */

struct pend_range {
	const struct udx_dev *dev;      /* a key only: never dereferenced */
	pmem2_flush_fn flush;
	uintptr_t start, end;
};

static __thread struct pend_range pend[PEND_MAX];
static __thread unsigned npend;

static void pend_sync(struct pend_range *r)
{
	r->flush((const void *)r->start, r->end - r->start);
}

static void pend_add(const struct udx_dev *dev, const void *addr, size_t len)
{
	uintptr_t s = (uintptr_t)addr & ~(uintptr_t)(UDX_PAGE_SIZE - 1);
	uintptr_t e = ((uintptr_t)addr + len + UDX_PAGE_SIZE - 1) & ~(uintptr_t)(UDX_PAGE_SIZE - 1);
	unsigned i;

	for (i = 0; i < npend; i++) {
		struct pend_range *r = &pend[i];

		if (r->dev == dev && s <= r->end + PEND_MERGE_GAP && e + PEND_MERGE_GAP >= r->start) {
			r->start = MIN(r->start, s);
			r->end = MAX(r->end, e);
			return;
		}
	}
	if (npend == PEND_MAX) {
		pend_sync(&pend[0]);
		memmove(&pend[0], &pend[1], sizeof(pend[0]) * (PEND_MAX - 1));
		npend--;
	}
	pend[npend++] = (struct pend_range){ dev, dev->dv_flush, s, e };
}

static void pend_drain(void)
{
	unsigned i;

	for (i = 0; i < npend; i++)
		pend_sync(&pend[i]);
	npend = 0;
}

void udx_dev_close(struct udx_dev *dev)
{
	if (dev == NULL)
		return;
	/* what this thread flushed and never drained goes out before the
	 * unmap; another thread's leftovers would sync an unmapped range,
	 * which msync refuses harmlessly */
	if (npend)
		pend_drain();
	if (dev->dv_map)
		pmem2_map_delete(&dev->dv_map);       /* unmaps unless ours */
	if (dev->dv_own_mapping && dev->dv_addr)
		munmap(dev->dv_addr, dev->dv_size);
	if (dev->dv_src)
		pmem2_source_delete(&dev->dv_src);
	if (dev->dv_fd >= 0)
		close(dev->dv_fd);
	free(dev->dv_spec);
	free(dev);
}

void udx_dev_info(const struct udx_dev *dev, struct udx_dev_info *info)
{
	info->kind = dev->dv_kind;
	info->gran = dev->dv_gran;
	info->size = dev->dv_size;
	info->addr = dev->dv_addr;
	info->align = dev->dv_align;
	info->huge = dev->dv_huge;
	info->map_sync = dev->dv_map_sync;
	info->rdonly = dev->dv_rdonly;
	info->spec = dev->dv_spec;
}

void *udx_dev_addr(const struct udx_dev *dev)
{
	return dev->dv_addr;
}

uint64_t udx_dev_size(const struct udx_dev *dev)
{
	return dev->dv_size;
}

enum udx_gran udx_dev_gran(const struct udx_dev *dev)
{
	return dev->dv_gran;
}

const char *udx_gran_name(enum udx_gran gran)
{
	switch (gran) {
	case UDX_GRAN_NONE:
		return "none (volatile)";
	case UDX_GRAN_BYTE:
		return "byte";
	case UDX_GRAN_CACHE_LINE:
		return "cache line";
	case UDX_GRAN_PAGE:
		return "page (msync)";
	}
	return "?";
}

void udx_dev_flush(const struct udx_dev *dev, const void *addr, size_t len)
{
	if (dev->dv_pops && dev->dv_pops->flush)
		dev->dv_pops->flush(dev->dv_pctx, addr, len);
	if (dev->dv_flush == NULL || len == 0)
		return;
	if (dev->dv_gran == UDX_GRAN_PAGE)
		pend_add(dev, addr, len);
	else
		dev->dv_flush(addr, len);
}

void udx_dev_drain(const struct udx_dev *dev)
{
	if (dev->dv_pops && dev->dv_pops->drain)
		dev->dv_pops->drain(dev->dv_pctx);
	if (npend)
		pend_drain();
	if (dev->dv_drain)
		dev->dv_drain();
}

void udx_dev_persist(const struct udx_dev *dev, const void *addr, size_t len)
{
	udx_dev_flush(dev, addr, len);
	udx_dev_drain(dev);
}

void udx_dev_memcpy(const struct udx_dev *dev, void *dst, const void *src, size_t len,
		    unsigned flags)
{
	if (dev->dv_memcpy && dev->dv_pops == NULL) {
		dev->dv_memcpy(dst, src, len, (flags & UDX_MEM_NODRAIN) ? PMEM2_F_MEM_NODRAIN : 0);
		return;
	}
	memcpy(dst, src, len);
	if (dev->dv_gran == UDX_GRAN_CACHE_LINE || dev->dv_gran == UDX_GRAN_BYTE) {
		udx_dev_flush(dev, dst, len);
		if (!(flags & UDX_MEM_NODRAIN))
			udx_dev_drain(dev);
	}
}

void udx_dev_memset(const struct udx_dev *dev, void *dst, int c, size_t len, unsigned flags)
{
	if (dev->dv_memset && dev->dv_pops == NULL) {
		dev->dv_memset(dst, c, len, (flags & UDX_MEM_NODRAIN) ? PMEM2_F_MEM_NODRAIN : 0);
		return;
	}
	memset(dst, c, len);
	if (dev->dv_gran == UDX_GRAN_CACHE_LINE || dev->dv_gran == UDX_GRAN_BYTE) {
		udx_dev_flush(dev, dst, len);
		if (!(flags & UDX_MEM_NODRAIN))
			udx_dev_drain(dev);
	}
}

void udx_dev_set_persist_ops(struct udx_dev *dev, const struct udx_persist_ops *ops,
			     void *ctx)
{
	dev->dv_pops = ops;
	dev->dv_pctx = ctx;
}
