/* SPDX-License-Identifier: MIT */
/*
 * udaxfs/common.h - conventions shared by every udaxfs header.
 *
 * Errors: every call that can fail returns 0 (or a count) on success and a
 * negative errno value on failure.  A failing call also leaves a sentence for
 * a human in a per-thread buffer, read with udx_errmsg(): what was wrong and,
 * where there is one, what to do about it.
 */
#ifndef UDAXFS_COMMON_H
#define UDAXFS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define UDX_API __attribute__((visibility("default")))
#else
#define UDX_API
#endif

/* Sizes used throughout: the device page and the largest folio. */
#define UDX_PAGE_SHIFT  12
#define UDX_PAGE_SIZE   (1ull << UDX_PAGE_SHIFT)
#define UDX_PMD_ORDER   9                    /* 2 MiB */
#define UDX_PUD_ORDER   18                   /* 1 GiB */
#define UDX_MAX_ORDER   UDX_PUD_ORDER

/**
 * udx_errmsg() - the message of the last failure in this thread.
 *
 * Returns a string owned by the library, valid until the next failing udaxfs
 * call in the same thread; "" when nothing has failed yet.
 */
UDX_API const char *udx_errmsg(void);
/** udx_errclear() - forget the message (so that a later one is known new). */
UDX_API void udx_errclear(void);

/**
 * udx_parse_size() - parse a size such as "4096", "64K", "2M", "1G", "3T".
 * @s:   the text; an optional suffix K, M, G or T (either case, optionally
 *       followed by "iB" or "B") multiplies by a power of 1024.
 * @out: the size in bytes.
 *
 * Returns 0, -EINVAL when the text is not a size, or -ERANGE when it does not
 * fit in 64 bits.
 */
UDX_API int udx_parse_size(const char *s, uint64_t *out);

/**
 * udx_format_size() - print a byte count with a binary suffix ("1.5 GiB").
 * Returns @buf.
 */
UDX_API char *udx_format_size(uint64_t bytes, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* UDAXFS_COMMON_H */
