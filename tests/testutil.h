/* SPDX-License-Identifier: MIT */
/* Helpers shared by the tests: cmocka, devices, threads, stress durations. */
#ifndef UDX_TESTUTIL_H
#define UDX_TESTUTIL_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <udaxfs.h>

static inline uint64_t tu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* How long a stress test runs: UDX_STRESS_SECONDS, else @dflt (short, so that
 * `make test` stays quick; soak runs set the variable). */
static inline double tu_stress_seconds(double dflt)
{
	const char *s = getenv("UDX_STRESS_SECONDS");

	return s ? atof(s) : dflt;
}

/* A fast, seedable generator (xorshift64*), one per thread. */
static inline uint64_t tu_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static inline uint64_t tu_seed(void)
{
	const char *s = getenv("UDX_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);

	fprintf(stderr, "seed: UDX_SEED=%llu\n", (unsigned long long)seed);
	return seed ? seed : 1;
}

static inline struct udx_dev *tu_anon(const char *spec)
{
	struct udx_dev *dev = NULL;
	int ret = udx_dev_open(spec, NULL, &dev);

	if (ret)
		fprintf(stderr, "udx_dev_open(%s): %s\n", spec, udx_errmsg());
	assert_int_equal(ret, 0);
	return dev;
}

/*
 * A watchdog: if the test is still running after @seconds, print @what and
 * abort, so that a deadlock fails the test instead of hanging it.
 */
struct tu_watchdog {
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool done;
	double seconds;
	const char *what;
};

static inline void *tu_watchdog_main(void *arg)
{
	struct tu_watchdog *w = arg;
	struct timespec ts;
	uint64_t end = tu_now_ns() + (uint64_t)(w->seconds * 1e9);

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)w->seconds + 1;
	pthread_mutex_lock(&w->lock);
	while (!w->done) {
		if (pthread_cond_timedwait(&w->cv, &w->lock, &ts) == ETIMEDOUT &&
		    tu_now_ns() >= end && !w->done) {
			fprintf(stderr, "WATCHDOG: %s still running after %.0f s: deadlock?\n",
				w->what, w->seconds);
			abort();
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static inline void tu_watchdog_start(struct tu_watchdog *w, double seconds, const char *what)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->seconds = seconds;
	w->what = what;
	pthread_create(&w->th, NULL, tu_watchdog_main, w);
}

static inline void tu_watchdog_stop(struct tu_watchdog *w)
{
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->th, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->lock);
}

#endif
