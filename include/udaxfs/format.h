/* SPDX-License-Identifier: MIT */
/*
 * udaxfs/format.h - the on-device format, byte by byte.
 *
 * All fields are little-endian and fixed width; every structure has explicit
 * padding and a static assertion on its size.  docs/FORMAT.md explains each
 * field and what fsck checks about it.
 *
 * Device layout, in 4 KiB blocks:
 *
 *   0                      primary superblock
 *   1 .. j                 journal: s_jlanes lanes of s_jlane_blocks blocks
 *   s_imap_start           inode map: one byte per inode (0 free, 1 in use)
 *   s_itable_start         inode table: s_ninodes inodes of 256 bytes
 *   s_bmap_start           block bitmap checkpoint (valid only when clean)
 *   s_data_start ..        data blocks and tree nodes
 *   s_nblocks - 1          backup superblock (written at mkfs and unmount)
 *
 * Checksums are xxh64 (Debian's libxxhash).  Each says what it covers.
 */
#ifndef UDAXFS_FORMAT_H
#define UDAXFS_FORMAT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t le16;
typedef uint32_t le32;
typedef uint64_t le64;

#define UDX_BLOCK_SHIFT   12
#define UDX_BLOCK_SIZE    4096u
#define UDX_FORMAT_MAGIC  "UDAXFS\r\n"      /* 8 bytes, no terminator */
#define UDX_FORMAT_VERSION 1
#define UDX_ROOT_INO      1                  /* inode 0 is never used */
#define UDX_NAME_MAX      255
#define UDX_SYMLINK_MAX   4095
#define UDX_MAX_FILE_SIZE (1ull << 50)      /* 1 PiB */

/* s_state */
#define UDX_STATE_CLEAN   1                  /* unmounted cleanly */
#define UDX_STATE_DIRTY   2                  /* mounted, or crashed */

/* Feature bits: none defined yet.  A mount refuses unknown incompat bits,
 * mounts read-only with unknown ro_compat bits, ignores unknown compat bits. */
#define UDX_FEATURE_INCOMPAT_SUPP  0ull
#define UDX_FEATURE_RO_COMPAT_SUPP 0ull

struct udx_dtime {
	le64 t_sec;
	le32 t_nsec;
	le32 t_pad;
};

/*
 * The superblock.  s_checksum = xxh64 of the first 4088 bytes of the block
 * (everything before it), seed 0.
 */
struct udx_dsuper {
	uint8_t s_magic[8];
	le32 s_version;
	le32 s_block_size;              /* 4096 */
	le64 s_feature_compat;
	le64 s_feature_incompat;
	le64 s_feature_ro_compat;
	uint8_t s_uuid[16];
	char s_label[64];               /* NUL padded */
	le64 s_nblocks;                 /* blocks in the file system */
	le64 s_ninodes;                 /* inode slots, including 0 */
	le64 s_jstart;                  /* first journal block */
	le32 s_jlanes;                  /* journal lanes */
	le32 s_jlane_blocks;            /* blocks per lane */
	le64 s_imap_start, s_imap_blocks;
	le64 s_itable_start, s_itable_blocks;
	le64 s_bmap_start, s_bmap_blocks;
	le64 s_data_start;
	le64 s_root_ino;
	le64 s_hash_seed;               /* directory name hash seed */
	le64 s_state;                   /* UDX_STATE_* */
	le64 s_mount_count;
	struct udx_dtime s_mkfs_time;
	struct udx_dtime s_mount_time;
	struct udx_dtime s_unmount_time;
	uint8_t s_pad[4096 - 288 - 8];
	le64 s_checksum;
};

/* i_flags */
#define UDX_IF_EXT_TREE    0x0001       /* extents in a tree at i_root */
#define UDX_IF_TRUNCATING  0x0002       /* a multi-step truncate is running */
#define UDX_IF_INLINE_LINK 0x0004       /* symlink target in i_inline */

#define UDX_INLINE_EXTENTS 5
#define UDX_INLINE_BYTES   120

/* An extent: file blocks [e_lblk, e_lblk + e_len) at device blocks
 * [e_pblk, e_pblk + e_len). */
struct udx_dextent {
	le64 e_lblk;
	le64 e_pblk;
	le32 e_len;
	le32 e_flags;                   /* UDX_EXT_UNWRITTEN */
};
#define UDX_EXT_UNWRITTEN 0x1           /* allocated, reads as zeros */
#define UDX_EXT_MAX_LEN   (1u << 30)    /* blocks */

/*
 * An inode: 256 bytes in the inode table at (ino * 256).  Valid only when
 * its inode map byte is 1.  i_checksum = xxh64 of the first 248 bytes,
 * seeded with the inode number (so an inode copied to another slot fails).
 * Timestamps may lag the in-core ones until the next fsync or sync.
 */
struct udx_dinode {
	le16 i_mode;                    /* S_IFMT | permissions */
	le16 i_flags;                   /* UDX_IF_* */
	le32 i_nlink;
	le32 i_uid;
	le32 i_gid;
	le64 i_size;                    /* bytes */
	le64 i_blocks;                  /* 4 KiB blocks owned: data and tree nodes */
	struct udx_dtime i_atime, i_mtime, i_ctime, i_btime;
	le64 i_root;                    /* tree root block (dirs, big files); 0: none */
	le32 i_generation;              /* bumped each time the slot is reused */
	le32 i_nextents;                /* inline extents in use */
	le64 i_parent;                  /* directories: the parent's inode number */
	le64 i_rdev;                    /* device special files */
	union {
		struct udx_dextent i_ext[UDX_INLINE_EXTENTS];
		char i_link[UDX_INLINE_BYTES];  /* UDX_IF_INLINE_LINK, NUL padded */
	} i_inline;
	le64 i_checksum;
};

/*
 * A tree node (4 KiB): a header, then n_nkeys slots sorted by key growing
 * up, and the slots' values growing down from the end of the block.
 * Internal nodes (n_level > 0) have 8-byte values: the child block.
 *
 * n_checksum = xxh64(header with n_checksum = 0, seed = block number)
 *              XOR, for every slot, xxh64(key || value, seed = 0).
 * Inserting or removing a slot updates it in O(slot); the bytes outside the
 * slots and values are free space and not covered.
 */
#define UDX_BNODE_MAGIC 0x45444f4eu     /* "NODE" */
#define UDX_BT_EXTENTS  1
#define UDX_BT_DIRENTS  2

struct udx_bnode {
	le32 n_magic;
	le16 n_level;                   /* 0: leaf */
	le16 n_nkeys;
	le16 n_vstart;                  /* offset of the lowest value byte */
	le16 n_kind;                    /* UDX_BT_* */
	le32 n_pad;
	le64 n_owner;                   /* inode number */
	le64 n_checksum;
};

struct udx_bslot {
	le64 s_key;
	le16 s_voff;
	le16 s_vlen;
} __attribute__((packed));

/* Extent tree: key = e_lblk, value = this. */
struct udx_dext_val {
	le64 v_pblk;
	le32 v_len;
	le32 v_flags;
};

/*
 * Directory tree: key = (hash(name) >> 10) << 8 | minor, where hash is
 * XXH3-64 of the name seeded with s_hash_seed, and minor (0..255) tells apart
 * names whose 54-bit hashes collide.  Keys are below 2^62, so key + 3 is a
 * positive 64-bit readdir cookie (0, 1, 2 are the start, "." and ".."): a
 * readdir that resumes at a key never repeats or skips an entry that stayed.
 * "." and ".." are not stored.
 */
#define UDX_DIR_HASH_SHIFT 10
#define UDX_DIR_MINOR_BITS 8
struct udx_ddirent {
	le64 d_ino;
	uint8_t d_type;                 /* DT_* */
	uint8_t d_namelen;
	char d_name[];                  /* not NUL terminated */
} __attribute__((packed));

/*
 * Journal: each lane is s_jlane_blocks blocks.  Its first 64 bytes are the
 * lane header; the records of the lane's latest transaction follow at
 * 64-byte aligned offsets from byte 64, then its commit record.  A record
 * holds the bytes a transaction is about to overwrite (an undo record).
 *
 * r_checksum = XXH3-64 of the rest of the record header and its data (one
 *              contiguous run), seed 0; r_gen inside it ties the record to
 *              its transaction.
 * r_wmark    = when the record was written, every commit numbered up to
 *              r_wmark had completed (its single drain had returned).
 * A commit record (struct udx_jcommit) follows the last undo record:
 * c_content = the new contents of the logged ranges (in record order, but
 *             for UDX_JREC_DATA records) and of
 *             the listed new ranges (blocks the transaction allocated and
 *             wrote), chained: h = XXH3-64(XXH3-64(range) as 8 bytes,
 *             seed = h), from h = 0; so
 *             that a commit record made durable together with its data can
 *             be checked against it.
 * c_checksum = XXH3-64 of the rest of the commit record and its range list.
 *
 * Recovery (journal.c, "Recovery"): a transaction with a valid commit record
 * whose c_seq <= the largest r_wmark or j_wmark in any lane, or whose content
 * checksum matches, is complete; any other transaction's records are rolled
 * back, in reverse.  j_done_gen is the last generation a lane has finished
 * with, j_wmark the watermark then; both are written when a transaction
 * aborts, at recovery and at unmount.  Commit numbers grow across mounts:
 * a mount continues above the largest j_wmark.
 */
#define UDX_JLANE_MAGIC  0x454e414c4c4e524aull  /* "JRNLLANE" */
#define UDX_JCOMMIT_MAGIC 0x54494d4d4f43524aull /* "JRCOMMIT" */

struct udx_jlane {
	le64 j_magic;
	le64 j_done_gen;
	le64 j_wmark;                   /* commits up to it completed (when the
					   lane was last finished with) */
	le64 j_pad[5];
};

struct udx_jrec {
	le64 r_checksum;                /* of everything after it, see above */
	le64 r_gen;
	le64 r_off;                     /* device byte offset of the range */
	le64 r_wmark;                   /* commits known complete when written */
	le32 r_len;                     /* bytes of data that follow */
	le32 r_seq;                     /* 0, 1, 2 ... within the transaction,
					   | UDX_JREC_DATA */
};

/* r_seq flag: the range is file data (the tail of a file's last block).
 * Data was durable before its commit record was written, and it is not in
 * c_content: later writes change file data without a transaction. */
#define UDX_JREC_DATA    0x80000000u
#define UDX_JREC_SEQ_MASK 0x7fffffffu

struct udx_jrange {
	le64 g_off;
	le32 g_len;
	le32 g_pad;
};

struct udx_jcommit {
	le64 c_checksum;                /* of everything after it */
	le64 c_magic;                   /* UDX_JCOMMIT_MAGIC */
	le64 c_gen;
	le64 c_seq;                     /* global commit number (this mount) */
	le64 c_content;                 /* new contents, see above */
	le32 c_nrecs;                   /* undo records of the transaction */
	le32 c_nnew;                    /* entries of c_new */
	struct udx_jrange c_new[];      /* new ranges written (not logged) */
};

#define UDX_STATIC_ASSERT(c, m) _Static_assert(c, m)
#ifndef __cplusplus
UDX_STATIC_ASSERT(sizeof(struct udx_dsuper) == 4096, "superblock is one block");
UDX_STATIC_ASSERT(sizeof(struct udx_dinode) == 256, "inode is 256 bytes");
UDX_STATIC_ASSERT(sizeof(struct udx_dextent) == 24, "extent is 24 bytes");
UDX_STATIC_ASSERT(sizeof(struct udx_bnode) == 32, "node header is 32 bytes");
UDX_STATIC_ASSERT(sizeof(struct udx_bslot) == 12, "slot is 12 bytes");
UDX_STATIC_ASSERT(sizeof(struct udx_dext_val) == 16, "extent value is 16 bytes");
UDX_STATIC_ASSERT(sizeof(struct udx_ddirent) == 10, "dirent header is 10 bytes");
UDX_STATIC_ASSERT(sizeof(struct udx_jlane) == 64, "lane header is a cache line");
UDX_STATIC_ASSERT(sizeof(struct udx_jrec) == 40, "record header is 40 bytes");
UDX_STATIC_ASSERT(sizeof(struct udx_jcommit) == 48, "commit header is 48 bytes");
UDX_STATIC_ASSERT(sizeof(struct udx_jrange) == 16, "range is 16 bytes");
#endif

#ifdef __cplusplus
}
#endif
#endif /* UDAXFS_FORMAT_H */
