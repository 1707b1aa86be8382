/* SPDX-License-Identifier: MIT */
/*
 * udaxfs/fs.h - the file system on a device.
 *
 * Two interfaces over one implementation:
 *
 *  - inode level (udx_i*): operations on in-core inodes, with iget/iput
 *    reference counts, for front ends that keep their own handles (FUSE);
 *  - POSIX level: paths and integer file descriptors (udx_open, udx_pwrite,
 *    udx_rename ...), for programs that use the file system in-process.
 *
 * Paths are resolved from the root ("a/b" and "/a/b" are the same file).
 * Every call returns 0 (or a count) or a negative errno, the value a POSIX
 * user expects (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, ENOSPC,
 * ENAMETOOLONG, EINVAL, EFBIG, EBADF, ELOOP, EXDEV ...), with a sentence in
 * udx_errmsg().  The library checks no permissions: the process using it
 * owns the file system; a front end that serves other users checks them
 * (udx_iaccess() helps).
 *
 * All calls are thread-safe.  Operations on different files run in parallel;
 * operations on one file serialize.
 *
 * Durability (the data contract, docs/FORMAT.md "Durability"):
 *  - every metadata operation (create, rename, truncate, a write that
 *    allocates or extends ...) is durable and atomic when it returns;
 *  - data written into blocks that a write allocates is durable before the
 *    write returns (MAP_SYNC semantics: what makes it reachable is too);
 *  - data overwriting existing blocks is visible at once and durable after
 *    udx_fsync() or udx_sync();
 *  - timestamps are durable after udx_fsync() or udx_sync().
 */
#ifndef UDAXFS_FS_H
#define UDAXFS_FS_H

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <udaxfs/common.h>
#include <udaxfs/dev.h>

#ifdef __cplusplus
extern "C" {
#endif

struct udx_fs;
struct udx_inode;
struct udx_pgmap;

/* ---- format, mount, check ------------------------------------------------ */

struct udx_mkfs_opts {
	uint64_t ninodes;               /* 0: one per 16 KiB of device */
	const char *label;              /* up to 63 bytes; NULL: none */
	const uint8_t *uuid;            /* 16 bytes; NULL: random */
	unsigned jlanes;                /* journal lanes; 0: automatic */
	uint64_t jlane_size;            /* bytes per lane; 0: automatic */
	/* told how far mkfs is (a large device takes seconds); may be NULL */
	void (*progress)(void *arg, const char *phase, uint64_t done, uint64_t total);
	void *progress_arg;
};

/**
 * udx_mkfs() - write a new, empty file system over the whole device.
 * Returns 0, -EINVAL (options), -ENOSPC (device too small: 16 MiB at least),
 * -EROFS.
 */
UDX_API int udx_mkfs(struct udx_dev *dev, const struct udx_mkfs_opts *opts);

#define UDX_MOUNT_RDONLY  (1u << 0)

struct udx_pgmap;

struct udx_mount_opts {
	unsigned flags;                 /* UDX_MOUNT_* */
	uint64_t icache_limit;          /* unreferenced inodes kept; 0: 65536 */
	/* the device's pgmap (udx_memremap), which the file system claims as
	 * its holder; NULL: the mount makes its own and tears it down at
	 * unmount */
	struct udx_pgmap *pgmap;
};

/**
 * udx_mount() - mount the file system on a device.  After a crash it rolls
 * back unfinished transactions, finishes interrupted truncates, frees
 * orphans and rebuilds the free space map.
 * Returns 0, or -EINVAL (not udaxfs, or a bad superblock: run fsck),
 * -EUCLEAN (corrupt metadata found while recovering), -EOPNOTSUPP (unknown
 * features), -ENOMEM.
 */
UDX_API int udx_mount(struct udx_dev *dev, const struct udx_mount_opts *opts,
		      struct udx_fs **out);

/**
 * udx_unmount() - write everything back and release the device.
 * Returns -EBUSY, changing nothing, while any inode reference is held (an
 * open file descriptor, an inode a front end holds, a pin).
 */
UDX_API int udx_unmount(struct udx_fs *fs);
/** udx_unmount_wait() - the same, waiting (up to @timeout_ns; negative: for
 * ever) for the last inode reference to go.  -ETIMEDOUT if it does not. */
UDX_API int udx_unmount_wait(struct udx_fs *fs, int64_t timeout_ns);

UDX_API int udx_sync(struct udx_fs *fs);
/** udx_fs_set_owner() - the owner of what the POSIX-level calls create
 * (default: the effective uid and gid at mount time). */
UDX_API void udx_fs_set_owner(struct udx_fs *fs, uid_t uid, gid_t gid);
UDX_API int udx_statfs(struct udx_fs *fs, struct statvfs *st);
UDX_API struct udx_dev *udx_fs_dev(struct udx_fs *fs);

struct udx_fs_info {
	uint8_t uuid[16];
	char label[64];
	uint64_t nblocks, free_blocks;
	uint64_t ninodes, free_inodes;
	uint64_t data_start;            /* first data block */
	unsigned jlanes;
	uint64_t jlane_size;
	bool clean;                     /* last unmount was clean */
	uint64_t mount_count;
	uint64_t free_2m, free_1g;      /* aligned free 2 MiB / 1 GiB extents */
};

/** udx_fs_info() - read the superblock of an unmounted device (fs NULL) or
 * describe a mounted one. */
UDX_API int udx_fs_info(struct udx_dev *dev, struct udx_fs *fs, struct udx_fs_info *info);

struct udx_fsck_opts {
	bool repair;                    /* fix what can be fixed safely */
	void (*report)(void *arg, const char *problem);  /* one line per problem */
	void *arg;
	void (*progress)(void *arg, const char *phase, uint64_t done, uint64_t total);
};

struct udx_fsck_result {
	uint64_t problems;              /* found */
	uint64_t repaired;              /* of those, fixed */
	uint64_t inodes, directories, files, blocks_used;
};

/**
 * udx_fsck() - check an unmounted file system.
 * Returns 0 when it is clean (or every problem was repaired), -EUCLEAN when
 * problems remain, -EINVAL when it is not udaxfs at all.
 */
UDX_API int udx_fsck(struct udx_dev *dev, const struct udx_fsck_opts *opts,
		     struct udx_fsck_result *res);

/* ---- inode level ------------------------------------------------------- */

/** udx_iget() - a reference on inode @ino (-ENOENT if it is not in use). */
UDX_API int udx_iget(struct udx_fs *fs, uint64_t ino, struct udx_inode **ip);
/** udx_igrab() - one more reference on an inode the caller holds. */
UDX_API void udx_igrab(struct udx_inode *ip);
/** udx_iput() - drop a reference; the last one of an unlinked inode frees it. */
UDX_API void udx_iput(struct udx_inode *ip);
UDX_API uint64_t udx_iino(const struct udx_inode *ip);
/** udx_igeneration() - changes each time an inode number is reused, so
 * (number, generation) names one file for the life of the file system (NFS
 * and FUSE file handles). */
UDX_API uint32_t udx_igeneration(const struct udx_inode *ip);
UDX_API struct udx_fs *udx_ifs(const struct udx_inode *ip);

/** udx_ilookup() - the inode named @name in @dir, referenced. */
UDX_API int udx_ilookup(struct udx_inode *dir, const char *name, struct udx_inode **ip);
UDX_API int udx_igetattr(struct udx_inode *ip, struct stat *st);

/* udx_isetattr() fields */
#define UDX_SET_MODE   (1u << 0)
#define UDX_SET_UID    (1u << 1)
#define UDX_SET_GID    (1u << 2)
#define UDX_SET_SIZE   (1u << 3)
#define UDX_SET_ATIME  (1u << 4)        /* st_atim; UTIME_NOW allowed */
#define UDX_SET_MTIME  (1u << 5)
#define UDX_SET_CTIME  (1u << 6)
UDX_API int udx_isetattr(struct udx_inode *ip, const struct stat *st, unsigned which);

/** udx_icreate() - a new inode of @mode (S_IFREG, S_IFDIR, S_IFLNK with
 * @target, S_IFIFO, S_IFSOCK, S_IFCHR/S_IFBLK with @rdev) named @name in
 * @dir.  -EEXIST if the name exists. */
UDX_API int udx_icreate(struct udx_inode *dir, const char *name, mode_t mode,
			uid_t uid, gid_t gid, dev_t rdev, const char *target,
			struct udx_inode **ip);
UDX_API int udx_ilink(struct udx_inode *ip, struct udx_inode *dir, const char *name);
UDX_API int udx_iunlink(struct udx_inode *dir, const char *name);
UDX_API int udx_irmdir(struct udx_inode *dir, const char *name);

#define UDX_RENAME_NOREPLACE (1u << 0)
#define UDX_RENAME_EXCHANGE  (1u << 1)
UDX_API int udx_irename(struct udx_inode *odir, const char *oname,
			struct udx_inode *ndir, const char *nname, unsigned flags);
/** udx_ireadlink() - copy the target (NUL terminated if it fits); returns
 * its length. */
UDX_API ssize_t udx_ireadlink(struct udx_inode *ip, char *buf, size_t size);

/*
 * udx_filldir_t - one directory entry; @next is the cookie to resume after
 * it.  Return non-zero to stop.
 */
typedef int (*udx_filldir_t)(void *arg, const char *name, size_t namelen,
			     uint64_t ino, unsigned type, uint64_t next);
/** udx_ireaddir() - entries from @cookie (0: the start, with "." and "..").
 * Entries that stay in the directory are returned once even when others come
 * and go between calls. */
UDX_API int udx_ireaddir(struct udx_inode *dir, uint64_t cookie,
			 udx_filldir_t fill, void *arg);

UDX_API ssize_t udx_iread(struct udx_inode *ip, void *buf, size_t len, uint64_t off);
#define UDX_WRITE_APPEND (1u << 0)
/** udx_iwrite() - returns the bytes written; with UDX_WRITE_APPEND, @off is
 * ignored and *@pos (if not NULL) gets where the data went. */
UDX_API ssize_t udx_iwrite(struct udx_inode *ip, const void *buf, size_t len,
			   uint64_t off, unsigned flags, uint64_t *pos);
UDX_API int udx_itruncate(struct udx_inode *ip, uint64_t size);
/** udx_ifallocate() - @mode: 0, FALLOC_FL_KEEP_SIZE, or
 * FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (linux/falloc.h values). */
UDX_API int udx_ifallocate(struct udx_inode *ip, int mode, uint64_t off, uint64_t len);
UDX_API int udx_ifsync(struct udx_inode *ip, bool datasync);

/* ---- POSIX level --------------------------------------------------------- */

UDX_API int udx_open(struct udx_fs *fs, const char *path, int flags, mode_t mode);
UDX_API int udx_close(struct udx_fs *fs, int fd);
UDX_API ssize_t udx_read(struct udx_fs *fs, int fd, void *buf, size_t len);
UDX_API ssize_t udx_write(struct udx_fs *fs, int fd, const void *buf, size_t len);
UDX_API ssize_t udx_pread(struct udx_fs *fs, int fd, void *buf, size_t len, off_t off);
UDX_API ssize_t udx_pwrite(struct udx_fs *fs, int fd, const void *buf, size_t len, off_t off);
UDX_API off_t udx_lseek(struct udx_fs *fs, int fd, off_t off, int whence);
UDX_API int udx_ftruncate(struct udx_fs *fs, int fd, off_t size);
UDX_API int udx_fallocate(struct udx_fs *fs, int fd, int mode, off_t off, off_t len);
UDX_API int udx_fsync(struct udx_fs *fs, int fd);
UDX_API int udx_fstat(struct udx_fs *fs, int fd, struct stat *st);
/** udx_fd_inode() - the inode behind @fd, referenced. */
UDX_API int udx_fd_inode(struct udx_fs *fs, int fd, struct udx_inode **ip);
/** udx_fd_flags() - the open flags of a descriptor, or -EBADF. */
UDX_API int udx_fd_flags(struct udx_fs *fs, int fd);

UDX_API int udx_stat(struct udx_fs *fs, const char *path, struct stat *st);
UDX_API int udx_lstat(struct udx_fs *fs, const char *path, struct stat *st);
UDX_API int udx_mkdir(struct udx_fs *fs, const char *path, mode_t mode);
UDX_API int udx_rmdir(struct udx_fs *fs, const char *path);
UDX_API int udx_unlink(struct udx_fs *fs, const char *path);
UDX_API int udx_rename(struct udx_fs *fs, const char *from, const char *to, unsigned flags);
UDX_API int udx_link(struct udx_fs *fs, const char *from, const char *to);
UDX_API int udx_symlink(struct udx_fs *fs, const char *target, const char *path);
UDX_API ssize_t udx_readlink(struct udx_fs *fs, const char *path, char *buf, size_t size);
UDX_API int udx_truncate(struct udx_fs *fs, const char *path, off_t size);
UDX_API int udx_chmod(struct udx_fs *fs, const char *path, mode_t mode);
UDX_API int udx_chown(struct udx_fs *fs, const char *path, uid_t uid, gid_t gid);
/** udx_utimens() - times[0] atime, times[1] mtime; UTIME_NOW, UTIME_OMIT;
 * NULL: both now. */
UDX_API int udx_utimens(struct udx_fs *fs, const char *path, const struct timespec times[2]);
/** udx_resolve() - the inode at @path, referenced (@follow: the last
 * component's symlink too). */
UDX_API int udx_resolve(struct udx_fs *fs, const char *path, bool follow,
			struct udx_inode **ip);

struct udx_dir;
UDX_API int udx_opendir(struct udx_fs *fs, const char *path, struct udx_dir **d);
/** udx_readdir() - the next entry, or NULL at the end (valid until the next
 * call).  d_off is the cookie to udx_seekdir() back after it. */
UDX_API struct dirent *udx_readdir(struct udx_dir *d);
UDX_API void udx_seekdir(struct udx_dir *d, long cookie);
UDX_API long udx_telldir(struct udx_dir *d);
UDX_API void udx_closedir(struct udx_dir *d);

/* ---- statistics ---------------------------------------------------------- */

struct udx_fs_stats {
	uint64_t inodes_cached, inodes_referenced, orphans;
	uint64_t tx_commits, tx_aborts;
	uint64_t open_files;
	/* direct access (udaxfs/dax.h) */
	uint64_t live_folios;           /* folios of the device with a count */
	uint64_t pgmap_refs;            /* the pgmap's liveness count */
	uint64_t entries;               /* mapping entries, all inodes */
	uint64_t pins;                  /* pins held */
	uint64_t pinned_inodes;         /* inodes with at least one pin */
	uint64_t recalls;               /* recall callbacks run */
	uint64_t waits;                 /* layout breaks that waited for pins */
	uint64_t poison_events;         /* memory failures reported */
	bool revoked;                   /* the device is being removed */
};
UDX_API void udx_fs_stats(struct udx_fs *fs, struct udx_fs_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* UDAXFS_FS_H */
