/* SPDX-License-Identifier: MIT */
/*
 * liveref: the percpu_ref analogue (see include/udaxfs/liveref.h for the
 * contract).
 *
 * Representation
 * --------------
 * The value of a liveref is
 *
 *     (lr_count & ~DEAD) - (live ? BIAS : 0) + sum over threads of slot[t]
 *
 * all modulo 2^64.  While live, a registered thread adds +1/-1 to its own
 * slot (one cache line per thread per liveref) with a plain load and store,
 * inside a "fast-path section": lt_seq is made odd on entry and even on exit.
 * Threads without a registry entry (more than UDX_LR_MAX_THREADS at once, or
 * no membarrier(2)) use lr_count with atomic read-modify-writes; the BIAS
 * keeps lr_count far from zero while live, so their puts never see a false
 * zero.
 *
 * kill:  1. set DEAD in lr_count (seq_cst RMW);
 *        2. membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
 *        3. with the registry lock held, for every registry entry whose
 *           lt_seq is odd, wait until it changes (load-acquire);
 *        4. sum the slots, and add (sum - BIAS) to lr_count;
 *        5. if that made the count zero, release.
 *
 * Why no get or put is lost (the ordering argument)
 * ---------------------------------------------------
 * A fast-path section S of thread T is, in program order:
 *
 *     W: store lt_seq = odd     R: load lr_count     U: slot += delta
 *     X: store-release lt_seq = even
 *
 * with only a compiler barrier between W and R: the CPU may perform R before
 * W is visible (store buffering).  membarrier() in step 2 supplies the
 * missing full fence on T's side: when it returns, every thread of the
 * process that was running has executed a full memory barrier B_T at some
 * point during the call, and a thread that was not running has passed
 * through a context switch, which is one.  Take any S that performs U (it
 * read DEAD clear in R).  Where is B_T relative to S?
 *
 *   - B_T before W: then R comes after B_T, which comes after step 1, so R
 *     reads DEAD set and S does not perform U.  Contradiction; impossible.
 *   - B_T between W and X (or S straddles the call): W is visible to kill
 *     by the time membarrier returns, so step 3 reads lt_seq odd, or a later
 *     value.  Odd: step 3 waits for X, whose release orders U before kill's
 *     acquire; U is in the sum.  Later (even): kill read X or a later
 *     release store of T, so again U happens-before the sum.
 *   - B_T after X: U and X precede B_T, so they are visible when membarrier
 *     returns; the sum includes U, and kill's acquire of lt_seq orders it.
 *
 * So every U is either in the sum of step 4 or does not happen, and no
 * section that starts after step 2 performs one: they all go to lr_count,
 * whose RMWs are ordered with step 4's RMW by the count's modification
 * order.  Step 4 reads the slots once, and they are never written again.
 *
 * Registry entries added during kill: step 3 holds the registry lock while
 * it scans, so a thread that registers later takes that lock after step 1
 * (and after step 2's barrier), and its first R reads DEAD set.  An entry
 * handed from an exited thread to a new one keeps its lt_seq and its slot
 * values: a slot is a sum of contributions, not a thread's own count, so a
 * reused slot needs no folding; the registry lock orders the hand-over.
 *
 * tryget_live after kill: a section that starts after kill has returned
 * begins after step 2, so it reads DEAD set and fails; the atomic path tests
 * DEAD in the same CAS that increments.  A tryget_live that succeeds while
 * kill runs is counted (cases above), so the exact count includes it.
 *
 * Without membarrier(2) (an old kernel, a seccomp filter, valgrind), no
 * thread registers: everyone uses lr_count, which is correct but slower.
 * After fork() the child has a new mm whose membarrier registration is gone;
 * the atfork handler registers again and resets the entries of threads that
 * did not survive the fork.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <udaxfs/liveref.h>
#include "base/compiler.h"

__thread struct udx_lr_thread *udx_lr_self
	__attribute__((tls_model("initial-exec")));

/* Per-thread registration state: 0 not tried yet, 1 registered, -1 uses the
 * shared count for good (table full or no membarrier). */
static __thread int lr_state;

static struct udx_lr_thread lr_threads[UDX_LR_MAX_THREADS];
static pthread_mutex_t lr_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t lr_hiwater;          /* entries ever used; registry lock */
static pthread_once_t lr_once = PTHREAD_ONCE_INIT;
static pthread_key_t lr_key;
static bool lr_fast_ok;              /* membarrier registered */

static long lr_membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

static bool lr_membarrier_register(void)
{
	long mask = lr_membarrier(MEMBARRIER_CMD_QUERY);

	if (mask < 0 || !(mask & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
		return false;
	return lr_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

static void lr_thread_exit(void *arg)
{
	struct udx_lr_thread *t = arg;

	pthread_mutex_lock(&lr_registry_lock);
	UDX_BUG_ON(READ_ONCE(t->lt_seq) & 1);
	t->lt_used = 0;
	pthread_mutex_unlock(&lr_registry_lock);
	udx_lr_self = NULL;
	lr_state = -1;          /* a destructor running after ours stays slow */
}

static void lr_atfork_prepare(void)
{
	pthread_mutex_lock(&lr_registry_lock);
}

static void lr_atfork_parent(void)
{
	pthread_mutex_unlock(&lr_registry_lock);
}

static void lr_atfork_child(void)
{
	uint32_t i;

	/* Only the forking thread survives.  Entries of the others are freed;
	 * one caught inside a section is closed (that thread is gone). */
	for (i = 0; i < lr_hiwater; i++) {
		struct udx_lr_thread *t = &lr_threads[i];

		if (t == udx_lr_self)
			continue;
		if (t->lt_seq & 1)
			t->lt_seq++;
		t->lt_used = 0;
	}
	if (lr_fast_ok && !lr_membarrier_register()) {
		/* Cannot happen on a kernel that allowed it in the parent; if it
		 * does, the surviving thread must stop using its slots. */
		lr_fast_ok = false;
		udx_lr_self = NULL;
		lr_state = -1;
	}
	pthread_mutex_unlock(&lr_registry_lock);
}

static void lr_global_init(void)
{
	uint32_t i;

	for (i = 0; i < UDX_LR_MAX_THREADS; i++)
		lr_threads[i].lt_idx = i;
	if (pthread_key_create(&lr_key, lr_thread_exit) != 0)
		return;
	if (getenv("UDX_LIVEREF_NO_FASTPATH") != NULL)
		return;         /* test and debugging aid: force the shared count */
	lr_fast_ok = lr_membarrier_register();
	pthread_atfork(lr_atfork_prepare, lr_atfork_parent, lr_atfork_child);
}

/* Give this thread a registry entry.  Returns true when it has one. */
static bool lr_register(void)
{
	struct udx_lr_thread *t = NULL;
	uint32_t i;

	if (lr_state != 0)
		return lr_state > 0;
	pthread_once(&lr_once, lr_global_init);
	lr_state = -1;
	if (!lr_fast_ok)
		return false;
	pthread_mutex_lock(&lr_registry_lock);
	for (i = 0; i < UDX_LR_MAX_THREADS; i++) {
		if (!lr_threads[i].lt_used) {
			t = &lr_threads[i];
			t->lt_used = 1;
			if (i >= lr_hiwater)
				lr_hiwater = i + 1;
			break;
		}
	}
	pthread_mutex_unlock(&lr_registry_lock);
	if (t == NULL)
		return false;
	if (pthread_setspecific(lr_key, t) != 0) {
		pthread_mutex_lock(&lr_registry_lock);
		t->lt_used = 0;
		pthread_mutex_unlock(&lr_registry_lock);
		return false;
	}
	udx_lr_self = t;
	lr_state = 1;
	return true;
}

int udx_liveref_init(struct udx_liveref *ref, udx_liveref_release_fn release)
{
	pthread_condattr_t ca;

	pthread_once(&lr_once, lr_global_init);
	memset(ref, 0, sizeof(*ref));
	ref->lr_slots = aligned_alloc(64, UDX_LR_MAX_THREADS * sizeof(struct udx_lr_slot));
	if (ref->lr_slots == NULL)
		return -ENOMEM;
	memset(ref->lr_slots, 0, UDX_LR_MAX_THREADS * sizeof(struct udx_lr_slot));
	ref->lr_release = release;
	ref->lr_count = UDX_LR_BIAS + 1;        /* the initial reference */
	pthread_mutex_init(&ref->lr_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ref->lr_zero_cv, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

void udx_liveref_exit(struct udx_liveref *ref)
{
	pthread_cond_destroy(&ref->lr_zero_cv);
	pthread_mutex_destroy(&ref->lr_lock);
	free(ref->lr_slots);
	ref->lr_slots = NULL;
}

/* The count reached zero: run the release, then let waiters go. */
static void lr_zero(struct udx_liveref *ref)
{
	if (ref->lr_release)
		ref->lr_release(ref);
	pthread_mutex_lock(&ref->lr_lock);
	ref->lr_zero = true;
	pthread_cond_broadcast(&ref->lr_zero_cv);
	pthread_mutex_unlock(&ref->lr_lock);
}

void udx_liveref_get_slow(struct udx_liveref *ref)
{
	if (udx_lr_self == NULL && lr_register() && udx_lr_fast_add(ref, 1))
		return;
	__atomic_fetch_add(&ref->lr_count, 1, __ATOMIC_RELAXED);
}

bool udx_liveref_tryget_slow(struct udx_liveref *ref)
{
	uint64_t c;

	if (udx_lr_self == NULL && lr_register() && udx_lr_fast_add(ref, 1))
		return true;
	c = __atomic_load_n(&ref->lr_count, __ATOMIC_RELAXED);
	do {
		if ((c & ~UDX_LR_DEAD) == 0)
			return false;
	} while (!__atomic_compare_exchange_n(&ref->lr_count, &c, c + 1, true,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return true;
}

bool udx_liveref_tryget_live_slow(struct udx_liveref *ref)
{
	uint64_t c;

	/* A registered thread only gets here when the fast path saw DEAD. */
	if (udx_lr_self != NULL)
		return false;
	if (lr_register())
		return udx_lr_fast_add(ref, 1);
	c = __atomic_load_n(&ref->lr_count, __ATOMIC_RELAXED);
	do {
		if (c & UDX_LR_DEAD)
			return false;
	} while (!__atomic_compare_exchange_n(&ref->lr_count, &c, c + 1, true,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return true;
}

void udx_liveref_put_slow(struct udx_liveref *ref)
{
	uint64_t old;

	if (udx_lr_self == NULL && lr_register() && udx_lr_fast_add(ref, (uint64_t)-1))
		return;
	old = __atomic_fetch_sub(&ref->lr_count, 1, __ATOMIC_ACQ_REL);
	UDX_BUG_ON((old & ~UDX_LR_DEAD) == 0);
	if ((old & ~UDX_LR_DEAD) == 1)
		lr_zero(ref);
}

static void lr_wait_section(struct udx_lr_thread *t)
{
	uint64_t s = load_acquire(&t->lt_seq);
	unsigned spins = 0;

	if (!(s & 1))
		return;
	/* The section is a few instructions; a long wait means the thread was
	 * preempted inside it. */
	while (load_acquire(&t->lt_seq) == s) {
		if (++spins < 128)
			cpu_relax();
		else
			sched_yield();
	}
}

void udx_liveref_kill(struct udx_liveref *ref)
{
	uint64_t old, sum = 0, now;
	uint32_t i, n;

	old = __atomic_fetch_or(&ref->lr_count, UDX_LR_DEAD, __ATOMIC_SEQ_CST);
	UDX_BUG_ON(old & UDX_LR_DEAD);                  /* killed twice */

	pthread_mutex_lock(&lr_registry_lock);
	if (lr_fast_ok) {
		/* Step 2.  It cannot fail once registered in this mm. */
		UDX_BUG_ON(lr_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0);
	}
	n = lr_hiwater;
	for (i = 0; i < n; i++)
		lr_wait_section(&lr_threads[i]);
	for (i = 0; i < n; i++)
		sum += __atomic_load_n(&ref->lr_slots[i].ls_count, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&lr_registry_lock);

	/* under lr_lock so that udx_liveref_read() sees before or after */
	pthread_mutex_lock(&ref->lr_lock);
	now = __atomic_add_fetch(&ref->lr_count, sum - UDX_LR_BIAS, __ATOMIC_ACQ_REL);
	ref->lr_exact = true;
	pthread_mutex_unlock(&ref->lr_lock);
	if ((now & ~UDX_LR_DEAD) == 0)
		lr_zero(ref);
}

int udx_liveref_wait_zero(struct udx_liveref *ref, int64_t timeout_ns)
{
	struct timespec ts;
	int ret = 0;

	if (timeout_ns >= 0) {
		uint64_t end = udx_now_ns() + (uint64_t)timeout_ns;

		ts.tv_sec = (time_t)(end / 1000000000ull);
		ts.tv_nsec = (long)(end % 1000000000ull);
	}
	pthread_mutex_lock(&ref->lr_lock);
	while (!ref->lr_zero && ret == 0) {
		if (timeout_ns < 0)
			pthread_cond_wait(&ref->lr_zero_cv, &ref->lr_lock);
		else if (pthread_cond_timedwait(&ref->lr_zero_cv, &ref->lr_lock,
						&ts) == ETIMEDOUT)
			ret = ref->lr_zero ? 0 : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&ref->lr_lock);
	return ret;
}

uint64_t udx_liveref_read(struct udx_liveref *ref)
{
	uint64_t c, sum = 0;
	uint32_t i, n;

	pthread_mutex_lock(&ref->lr_lock);
	c = __atomic_load_n(&ref->lr_count, __ATOMIC_ACQUIRE);
	if (ref->lr_exact) {
		pthread_mutex_unlock(&ref->lr_lock);
		return c & ~UDX_LR_DEAD;
	}
	pthread_mutex_lock(&lr_registry_lock);
	n = lr_hiwater;
	pthread_mutex_unlock(&lr_registry_lock);
	for (i = 0; i < n; i++)
		sum += __atomic_load_n(&ref->lr_slots[i].ls_count, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ref->lr_lock);
	return (c & ~UDX_LR_DEAD) - UDX_LR_BIAS + sum;
}
