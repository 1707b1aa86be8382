/* SPDX-License-Identifier: MIT */
/*
 * The FUSE front end: a mounted udaxfs served to the kernel through
 * libfuse3's low-level API, so that ordinary programs use its files.
 *
 * Node ids are inode numbers (the root is 1 in both), and each lookup the
 * kernel counts is one inode reference (udx_iget/udx_iput) held here until
 * the kernel forgets it: an open file on the mount keeps an unlinked inode
 * alive, and unmount waits for nothing the kernel no longer knows about.
 * Generations come from the inode, so (node id, generation) names one file
 * for the life of the file system.
 *
 * Reads hand the kernel the device memory itself: the range is pinned for
 * the length of the reply (udx_ipin), so a truncate or hole punch racing with
 * it waits for the reply to be written, and never frees what is being read.
 */
#ifndef UDX_FUSE_H
#define UDX_FUSE_H

#include <stdbool.h>
#include <stdio.h>

#include <sys/ioctl.h>

struct udx_fs;

/* ioctl on the root directory of a mount: its counters, as text (NUL
 * terminated), what `udaxfs stats MOUNTPOINT` prints */
#define UDX_FUSE_STATS_MAX 4096
#define UDX_FUSE_IOC_STATS _IOR('u', 0x51, char[UDX_FUSE_STATS_MAX])

struct udx_fuse_opts {
	const char *fsname;             /* shown in /proc/mounts (the device) */
	/* options for the kernel mount and libfuse, comma separated, as after
	 * -o (ro, allow_other, ...); udaxfs' own ones are taken out first:
	 * attr_timeout=S, entry_timeout=S, negative_timeout=S, max_threads=N */
	const char *options;
	bool rdonly;                    /* the file system is mounted read-only */
	bool debug;                     /* libfuse's request trace on stderr */
	/* prints the counters UDX_FUSE_IOC_STATS on the root answers with */
	void (*stats)(FILE *out, struct udx_fs *fs);
	/* called once the kernel mount exists (the mount is usable) */
	void (*ready)(void *arg);
	void *ready_arg;
};

/*
 * udx_fuse_check_options() - are @o's options all known and well formed?
 * 0, or -1 with a message on stderr.  For the command line, before the
 * device is opened and recovered.
 */
int udx_fuse_check_options(const struct udx_fuse_opts *o);

/*
 * udx_fuse_serve() - mount @fs at @mountpoint and serve it until the mount
 * goes away (umount, fusermount3 -u) or SIGINT, SIGTERM or SIGHUP arrives;
 * then unmount the FUSE mount and drop every reference the kernel held.
 * The caller unmounts @fs afterwards.  Returns 0, or -1 with a message on
 * stderr (a bad option, a mount point that does not exist or is busy).
 */
int udx_fuse_serve(struct udx_fs *fs, const char *mountpoint, const struct udx_fuse_opts *o);

#endif
