/* SPDX-License-Identifier: MIT */
/* Checksums: xxHash (libxxhash), inlined. */
#ifndef UDX_FS_CSUM_H
#define UDX_FS_CSUM_H

#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t udx_csum64(const void *p, size_t len, uint64_t seed)
{
	return XXH64(p, len, seed);
}

static inline uint64_t udx_csum3(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

static inline uint64_t udx_hash_name(const char *name, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(name, len, seed);
}

#endif
