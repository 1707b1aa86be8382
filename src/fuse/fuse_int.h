/* SPDX-License-Identifier: MIT */
/* Inside the FUSE front end: the state one mount shares between threads. */
#ifndef UDX_FUSE_INT_H
#define UDX_FUSE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fuse/udx_fuse.h"

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#define UFS_MAX_IO (1u << 20)           /* largest read and write request */

#define NODE_SHARD_BITS 6
#define NODE_SHARDS (1u << NODE_SHARD_BITS)

struct node;

/* A part of the node table, under its own lock (node ids hash to shards). */
struct node_shard {
	pthread_mutex_t lock;
	struct node **buckets;
	size_t nbuckets, count;
} __attribute__((aligned(64)));

/*
 * Reads reply from device memory after dropping the inode's locks (the pin
 * keeps the blocks), so a write into the same blocks must not run while
 * the reply is written: a lock per file, striped by inode number, shared
 * for a read's reply and exclusive for a write's copy.
 */
#define IO_LOCKS 256

struct io_lock {
	pthread_rwlock_t lock;
} __attribute__((aligned(64)));

struct ufs {
	struct udx_inode *root;         /* referenced for the whole mount */
	double attr_timeout, entry_timeout, negative_timeout;
	bool rdonly;
	void (*stats)(FILE *out, struct udx_fs *fs);
	struct node_shard shards[NODE_SHARDS];
	struct io_lock io[IO_LOCKS];
};

struct fuse_file_info;
extern const struct fuse_lowlevel_ops ufs_ops;

/* Drop every reference the kernel held (after the FUSE mount is gone). */
void ufs_nodes_drop_all(struct ufs *u);
/* The cache flags of an open file. */
void ufs_open_flags(struct ufs *u, struct fuse_file_info *fi);

#endif
