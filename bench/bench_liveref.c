/* SPDX-License-Identifier: MIT */
/*
 * liveref_getput_ns_2t   ns per get+put pair per thread, two threads on one
 *                        liveref (goal: 3 or less)
 * liveref_vs_atomic_2t   the same loop on one shared atomic counter, time
 *                        divided by the liveref's, same run (goal: 5 or more)
 */
#include <pthread.h>

#include <udaxfs.h>
#include "bench.h"

#define PAIRS  20000000ull
#define RUNS   7

struct lr_arg {
	struct udx_liveref *ref;
	uint64_t *shared;
	pthread_barrier_t *bar;
	int cpu;
	double ns;
};

static void *lr_loop(void *p)
{
	struct lr_arg *a = p;
	uint64_t i, t0;

	bench_pin_cpu(a->cpu);
	udx_liveref_get(a->ref);        /* register this thread outside the timing */
	udx_liveref_put(a->ref);
	pthread_barrier_wait(a->bar);
	t0 = bench_now_ns();
	for (i = 0; i < PAIRS; i++) {
		udx_liveref_get(a->ref);
		udx_liveref_put(a->ref);
	}
	a->ns = (double)(bench_now_ns() - t0) / (double)PAIRS;
	return NULL;
}

static void *atomic_loop(void *p)
{
	struct lr_arg *a = p;
	uint64_t i, t0;

	bench_pin_cpu(a->cpu);
	pthread_barrier_wait(a->bar);
	t0 = bench_now_ns();
	for (i = 0; i < PAIRS; i++) {
		__atomic_fetch_add(a->shared, 1, __ATOMIC_RELAXED);
		__atomic_fetch_sub(a->shared, 1, __ATOMIC_RELEASE);
	}
	a->ns = (double)(bench_now_ns() - t0) / (double)PAIRS;
	return NULL;
}

/* Two threads run @fn at once; the per-thread ns per pair (the slower one). */
static double run2(void *(*fn)(void *), struct udx_liveref *ref, uint64_t *shared)
{
	pthread_barrier_t bar;
	struct lr_arg a[2];
	pthread_t th[2];
	int i;

	pthread_barrier_init(&bar, NULL, 2);
	for (i = 0; i < 2; i++) {
		a[i] = (struct lr_arg){ ref, shared, &bar, i, 0 };
		pthread_create(&th[i], NULL, fn, &a[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	return a[0].ns > a[1].ns ? a[0].ns : a[1].ns;
}

void bench_liveref(void)
{
	double lr[RUNS], at[RUNS], ratio[RUNS];
	uint64_t shared __attribute__((aligned(64))) = 0;
	struct udx_liveref ref;
	int r;

	if (udx_liveref_init(&ref, NULL) != 0)
		return;
	/* alternate the two so that machine noise hits both alike */
	for (r = 0; r < RUNS; r++) {
		lr[r] = run2(lr_loop, &ref, NULL);
		at[r] = run2(atomic_loop, NULL, &shared);
		ratio[r] = at[r] / lr[r];
	}
	bench_note("liveref: %llu get+put pairs per thread, 2 threads, median of %d",
		   (unsigned long long)PAIRS, RUNS);
	bench_report("liveref_getput_ns_2t", bench_median(lr, RUNS));
	bench_note("one shared atomic counter, same loop: %.2f ns per pair",
		   bench_median(at, RUNS));
	bench_report("liveref_vs_atomic_2t", bench_median(ratio, RUNS));
	udx_liveref_kill(&ref);
	udx_liveref_put(&ref);
	udx_liveref_wait_zero(&ref, -1);
	udx_liveref_exit(&ref);
}
