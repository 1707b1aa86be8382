/* SPDX-License-Identifier: MIT */
/* Internal helpers used by every layer: branch hints, atomics, assertions. */
#ifndef UDX_BASE_COMPILER_H
#define UDX_BASE_COMPILER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a)   (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a) - 1)) == 0)

/* Shared-memory accesses: every word touched by more than one thread goes
 * through one of these, so that the sanitizers and the reader both see it. */
#define READ_ONCE(x)      __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v)  __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define load_acquire(p)   __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define barrier()         __atomic_signal_fence(__ATOMIC_SEQ_CST)
#define smp_mb()          __atomic_thread_fence(__ATOMIC_SEQ_CST)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	barrier();
#endif
}

/*
 * UDX_BUG_ON: a broken invariant of the library itself (not bad input).
 * Always checked: continuing would corrupt the file system or memory.
 * UDX_DEBUG_ON: the same, checked only in debug builds (UDX_DEBUG).
 */
void udx_bug(const char *file, int line, const char *cond)
	__attribute__((noreturn, cold));
#define UDX_BUG_ON(c) \
	do { if (unlikely(c)) udx_bug(__FILE__, __LINE__, #c); } while (0)
#ifdef UDX_DEBUG
#define UDX_DEBUG_ON(c) UDX_BUG_ON(c)
#else
#define UDX_DEBUG_ON(c) do { (void)sizeof(c); } while (0)
#endif

/* Monotonic clock in nanoseconds. */
uint64_t udx_now_ns(void);

#endif /* UDX_BASE_COMPILER_H */
