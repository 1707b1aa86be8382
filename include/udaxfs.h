/* SPDX-License-Identifier: MIT */
/*
 * udaxfs.h - the udaxfs library: a file system on byte-addressable memory
 * with direct load/store access and pins.
 *
 * Layers, each in its own header:
 *   udaxfs/common.h    errors, sizes
 *   udaxfs/liveref.h   the liveness counter (percpu_ref for user space)
 *   udaxfs/dev.h       the memory device and its persistence interface
 *   udaxfs/pgmap.h     page metadata, folios, the device's liveness
 *   udaxfs/format.h    the on-device format
 *   udaxfs/fs.h        the file system: mkfs, mount, fsck, inodes, POSIX calls
 */
#ifndef UDAXFS_H
#define UDAXFS_H

#include <udaxfs/common.h>
#include <udaxfs/liveref.h>
#include <udaxfs/dev.h>
#include <udaxfs/pgmap.h>
#include <udaxfs/format.h>
#include <udaxfs/fs.h>
#include <udaxfs/dax.h>

#define UDAXFS_VERSION_MAJOR 0
#define UDAXFS_VERSION_MINOR 1

#endif /* UDAXFS_H */
