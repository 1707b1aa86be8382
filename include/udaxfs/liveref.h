/* SPDX-License-Identifier: MIT */
/*
 * udaxfs/liveref.h - a liveness counter for user space (the kernel's
 * percpu_ref, with the same verbs and contract).
 *
 * A liveref counts the users of an object that can die: a pgmap counts one
 * reference per live folio plus one initial reference held by its creator.
 * While the object is live, gets and puts are cheap and scale across threads:
 * each thread adds to its own slot with a plain (not lock-prefixed) add
 * inside a tiny read-side section.  udx_liveref_kill() marks the counter
 * dead, waits until no thread is inside such a section, and sums the slots
 * into one exact atomic count; from then on gets and puts use that count, the
 * release callback runs when it reaches zero, and udx_liveref_tryget_live()
 * fails.  Liveness is not existence: after kill, udx_liveref_get() on a
 * counter the caller already holds a reference to still works.
 *
 * Life cycle and calling contexts:
 *
 *   udx_liveref_init()       count = 1 (the initial reference), live
 *     get / tryget / tryget_live / put      from any thread, any time between
 *                                           init and the release
 *   udx_liveref_kill()       once; may sleep (it waits for other threads to
 *                            leave a few-instruction section)
 *   udx_liveref_put()        of the initial reference, after kill (a put of
 *                            the last reference before kill is allowed, but
 *                            the release then happens at kill)
 *   udx_liveref_wait_zero()  returns once the release callback has returned
 *   udx_liveref_exit()       after the release; frees the slots
 *
 * The memory-ordering argument is written beside the code in
 * src/base/liveref.c.
 */
#ifndef UDAXFS_LIVEREF_H
#define UDAXFS_LIVEREF_H

#include <pthread.h>
#include <udaxfs/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Threads that can use the per-thread fast path at the same time; further
 * threads use the shared atomic count (correct, only slower). */
#define UDX_LR_MAX_THREADS 256

/* lr_count: bit 63 is the dead flag; while live the count carries a bias so
 * that puts on the shared count can never reach zero before kill folds the
 * per-thread slots in. */
#define UDX_LR_DEAD  (1ull << 63)
#define UDX_LR_BIAS  (1ull << 62)

/*
 * One entry per registered thread, in a process-wide table that is never
 * freed.  lt_seq is written only by the thread that owns the entry and is
 * odd while that thread is inside a fast-path section; kill reads it.
 */
struct udx_lr_thread {
	uint64_t lt_seq;
	uint32_t lt_idx;        /* this entry's index, and the thread's slot */
	uint32_t lt_used;       /* owned by a live thread (registry lock) */
} __attribute__((aligned(64)));

/* A thread's share of one liveref: its gets minus its puts, modulo 2^64.
 * One cache line each, so that two threads never write the same line. */
struct udx_lr_slot {
	uint64_t ls_count;
} __attribute__((aligned(64)));

struct udx_liveref;
typedef void (*udx_liveref_release_fn)(struct udx_liveref *ref);

/*
 * struct udx_liveref - what it pins is up to its owner (a pgmap: the device
 * mapping and the page metadata).  The release callback runs once, in the
 * thread whose put (or kill) brought the count to zero; it must not free the
 * liveref itself: the owner does that after udx_liveref_wait_zero().
 */
struct udx_liveref {
	uint64_t lr_count;                  /* dead flag | bias | atomic part */
	struct udx_lr_slot *lr_slots;       /* UDX_LR_MAX_THREADS slots */
	udx_liveref_release_fn lr_release;
	pthread_mutex_t lr_lock;            /* lr_zero, lr_exact, the fold */
	pthread_cond_t lr_zero_cv;
	bool lr_zero;                       /* release callback has returned */
	bool lr_exact;                      /* kill has folded the slots in */
};

/* This thread's registry entry, NULL until it first uses a liveref (or for
 * good, when the table is full or membarrier(2) is unavailable). */
extern __thread struct udx_lr_thread *udx_lr_self
	__attribute__((tls_model("initial-exec")));

/**
 * udx_liveref_init() - a live counter holding the initial reference.
 * @release: called once when the count reaches zero after kill; may be NULL.
 * Returns 0 or -ENOMEM.
 */
UDX_API int udx_liveref_init(struct udx_liveref *ref,
			     udx_liveref_release_fn release);

/** udx_liveref_exit() - free the slots; call after the release (or on a
 * counter that was never used beyond its initial reference). */
UDX_API void udx_liveref_exit(struct udx_liveref *ref);

/**
 * udx_liveref_kill() - switch to the exact count and refuse tryget_live.
 *
 * Call once.  When it returns, every later tryget_live fails, and every get
 * or put (in any thread) goes to the exact count.  Does not drop the initial
 * reference: put it afterwards, then wait for zero.
 */
UDX_API void udx_liveref_kill(struct udx_liveref *ref);

/**
 * udx_liveref_wait_zero() - wait until the release callback has returned.
 * @timeout_ns: how long to wait; negative waits for ever.
 * Returns 0, or -ETIMEDOUT.
 */
UDX_API int udx_liveref_wait_zero(struct udx_liveref *ref, int64_t timeout_ns);

/** udx_liveref_is_dying() - true once kill has begun. */
static inline bool udx_liveref_is_dying(const struct udx_liveref *ref)
{
	return __atomic_load_n(&ref->lr_count, __ATOMIC_RELAXED) & UDX_LR_DEAD;
}

/**
 * udx_liveref_read() - the number of references.
 *
 * Exact once kill has returned, and at any quiescent point (no get or put in
 * flight).  While gets and puts race with it, a snapshot that may be off by
 * the operations in flight.
 */
UDX_API uint64_t udx_liveref_read(struct udx_liveref *ref);

/* Slow paths, out of line. */
UDX_API void udx_liveref_get_slow(struct udx_liveref *ref);
UDX_API bool udx_liveref_tryget_slow(struct udx_liveref *ref);
UDX_API bool udx_liveref_tryget_live_slow(struct udx_liveref *ref);
UDX_API void udx_liveref_put_slow(struct udx_liveref *ref);

/*
 * A test can define UDX_LR_TEST_HOOK(ref) before including this header to
 * run code inside the fast-path section (between reading "live" and updating
 * the slot) in its own copies of these inline functions, and so force the
 * interleavings the ordering argument is about.  Empty everywhere else.
 */
#ifndef UDX_LR_TEST_HOOK
#define UDX_LR_TEST_HOOK(ref) do { } while (0)
#endif

/*
 * The fast path: add @delta to this thread's slot, unless the counter is
 * dead.  Returns false when the caller must take the slow path (counter
 * dead, or this thread has no registry entry yet).  See liveref.c,
 * "Why no get or put is lost", for the ordering.
 */
static inline bool udx_lr_fast_add(struct udx_liveref *ref, uint64_t delta)
{
	struct udx_lr_thread *t = udx_lr_self;
	uint64_t seq, *slot;
	bool live;

	if (__builtin_expect(t == NULL, 0))
		return false;
	seq = __atomic_load_n(&t->lt_seq, __ATOMIC_RELAXED);
	__atomic_store_n(&t->lt_seq, seq + 1, __ATOMIC_RELAXED);     /* enter */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	live = !(__atomic_load_n(&ref->lr_count, __ATOMIC_RELAXED) & UDX_LR_DEAD);
	if (__builtin_expect(live, 1)) {
		UDX_LR_TEST_HOOK(ref);
		slot = &ref->lr_slots[t->lt_idx].ls_count;
		__atomic_store_n(slot, __atomic_load_n(slot, __ATOMIC_RELAXED) + delta,
				 __ATOMIC_RELAXED);
	}
	__atomic_store_n(&t->lt_seq, seq + 2, __ATOMIC_RELEASE);     /* leave */
	return live;
}

/** udx_liveref_get() - take a reference; the caller knows the counter has
 * not reached zero (it holds one, or the initial reference is held). */
static inline void udx_liveref_get(struct udx_liveref *ref)
{
	if (!udx_lr_fast_add(ref, 1))
		udx_liveref_get_slow(ref);
}

/** udx_liveref_tryget() - take a reference unless the count is zero. */
static inline bool udx_liveref_tryget(struct udx_liveref *ref)
{
	return udx_lr_fast_add(ref, 1) || udx_liveref_tryget_slow(ref);
}

/** udx_liveref_tryget_live() - take a reference unless kill has begun. */
static inline bool udx_liveref_tryget_live(struct udx_liveref *ref)
{
	return udx_lr_fast_add(ref, 1) || udx_liveref_tryget_live_slow(ref);
}

/** udx_liveref_put() - drop a reference; the last one (after kill) runs the
 * release callback in this thread. */
static inline void udx_liveref_put(struct udx_liveref *ref)
{
	if (!udx_lr_fast_add(ref, (uint64_t)-1))
		udx_liveref_put_slow(ref);
}

#ifdef __cplusplus
}
#endif
#endif /* UDAXFS_LIVEREF_H */
