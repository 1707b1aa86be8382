/* SPDX-License-Identifier: MIT */
/*
 * Stress the liveness counter's mode switch: worker threads get, put,
 * tryget and tryget_live as fast as they can while a killer thread kills the
 * counter at a random moment.  Checked:
 *   - at quiescent points (all workers parked on a barrier), before and
 *     after kill, the count equals 1 + the references the workers hold;
 *   - no tryget_live succeeds once the worker has seen that kill returned;
 *   - the release runs exactly once, after the last put, and wait_zero
 *     returns only then.
 * Duration: UDX_STRESS_SECONDS (default 2 s per flavour of build).
 */
#include "testutil.h"

#define NWORKERS 4
#define EPOCHS   64

struct round {
	struct udx_liveref ref;
	pthread_barrier_t bar;
	uint64_t held[NWORKERS];        /* per worker, read at quiescent points */
	uint64_t outstanding;           /* sum of held, maintained atomically */
	int kill_returned;
	int initial_dropped;
	int releases;
	int bad_release;
	int bad_tryget_live;
	uint64_t kill_delay_ns;
};

static void on_release(struct udx_liveref *ref)
{
	struct round *r = (struct round *)((char *)ref - offsetof(struct round, ref));

	if (__atomic_load_n(&r->outstanding, __ATOMIC_SEQ_CST) != 0 ||
	    !__atomic_load_n(&r->initial_dropped, __ATOMIC_SEQ_CST))
		__atomic_store_n(&r->bad_release, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&r->releases, 1, __ATOMIC_SEQ_CST);
}

struct worker {
	struct round *r;
	int id;
	uint64_t seed;
};

static void hold(struct round *r, int id)
{
	__atomic_fetch_add(&r->outstanding, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&r->held[id], r->held[id] + 1, __ATOMIC_RELAXED);
}

static void drop(struct round *r, int id)
{
	__atomic_store_n(&r->held[id], r->held[id] - 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&r->outstanding, 1, __ATOMIC_SEQ_CST);
	udx_liveref_put(&r->ref);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct round *r = w->r;
	int e, i;

	for (e = 0; e < EPOCHS; e++) {
		int nops = 200 + (int)(tu_rand(&w->seed) % 2000);

		for (i = 0; i < nops; i++) {
			uint64_t op = tu_rand(&w->seed) % 8;
			int seen_kill;

			switch (op) {
			case 0: case 1:
				udx_liveref_get(&r->ref);       /* we hold one, or the initial is held */
				hold(r, w->id);
				break;
			case 2:
				if (udx_liveref_tryget(&r->ref))
					hold(r, w->id);
				break;
			case 3: case 4:
				seen_kill = __atomic_load_n(&r->kill_returned, __ATOMIC_ACQUIRE);
				if (udx_liveref_tryget_live(&r->ref)) {
					if (seen_kill)
						__atomic_store_n(&r->bad_tryget_live, 1, __ATOMIC_SEQ_CST);
					hold(r, w->id);
				}
				break;
			default:
				if (r->held[w->id] > 0)
					drop(r, w->id);
				break;
			}
		}
		/* the last epochs drain everything */
		if (e >= EPOCHS - 4)
			while (r->held[w->id] > 0)
				drop(r, w->id);
		pthread_barrier_wait(&r->bar);          /* quiescent */
		pthread_barrier_wait(&r->bar);          /* main has checked */
	}
	return NULL;
}

static void *killer_main(void *arg)
{
	struct round *r = arg;
	struct timespec ts = { 0, (long)r->kill_delay_ns };

	nanosleep(&ts, NULL);
	udx_liveref_kill(&r->ref);
	__atomic_store_n(&r->kill_returned, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void one_round(uint64_t *seed)
{
	struct round *r = calloc(1, sizeof(*r));
	struct worker w[NWORKERS];
	pthread_t th[NWORKERS], killer;
	int i, e;

	assert_int_equal(udx_liveref_init(&r->ref, on_release), 0);
	pthread_barrier_init(&r->bar, NULL, NWORKERS + 1);
	r->kill_delay_ns = tu_rand(seed) % 3000000;     /* 0 .. 3 ms in */
	for (i = 0; i < NWORKERS; i++) {
		w[i] = (struct worker){ r, i, tu_rand(seed) | 1 };
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	pthread_create(&killer, NULL, killer_main, r);
	for (e = 0; e < EPOCHS; e++) {
		uint64_t sum = 0, c;

		pthread_barrier_wait(&r->bar);
		for (i = 0; i < NWORKERS; i++)
			sum += __atomic_load_n(&r->held[i], __ATOMIC_RELAXED);
		c = udx_liveref_read(&r->ref);
		if (c != 1 + sum)
			fprintf(stderr, "epoch %d: count %llu, expected 1 + %llu (killed: %d)\n", e,
				(unsigned long long)c, (unsigned long long)sum,
				udx_liveref_is_dying(&r->ref));
		assert_true(c == 1 + sum);
		pthread_barrier_wait(&r->bar);
	}
	for (i = 0; i < NWORKERS; i++)
		pthread_join(th[i], NULL);
	pthread_join(killer, NULL);
	assert_int_equal(r->bad_tryget_live, 0);
	assert_true(udx_liveref_read(&r->ref) == 1);
	assert_int_equal(r->releases, 0);
	assert_int_equal(udx_liveref_wait_zero(&r->ref, 0), -ETIMEDOUT);
	__atomic_store_n(&r->initial_dropped, 1, __ATOMIC_SEQ_CST);
	udx_liveref_put(&r->ref);
	assert_int_equal(udx_liveref_wait_zero(&r->ref, -1), 0);
	assert_int_equal(r->releases, 1);
	assert_int_equal(r->bad_release, 0);
	pthread_barrier_destroy(&r->bar);
	udx_liveref_exit(&r->ref);
	free(r);
}

static void test_stress_kill(void **state)
{
	uint64_t seed = tu_seed();
	uint64_t end = tu_now_ns() + (uint64_t)(tu_stress_seconds(2.0) * 1e9);
	struct tu_watchdog wd;
	int rounds = 0;

	tu_watchdog_start(&wd, tu_stress_seconds(2.0) + 120, "stress_liveref");
	do {
		one_round(&seed);
		rounds++;
	} while (tu_now_ns() < end);
	tu_watchdog_stop(&wd);
	fprintf(stderr, "%d rounds\n", rounds);
}

/*
 * Many short-lived threads hammering one live counter: registry entries are
 * taken and handed back while others count; the total must come out exact.
 */
static void *churn_main(void *arg)
{
	struct udx_liveref *ref = arg;
	int i;

	for (i = 0; i < 1000; i++) {
		udx_liveref_get(ref);
		udx_liveref_put(ref);
	}
	udx_liveref_get(ref);           /* leave one behind */
	return NULL;
}

static void test_stress_thread_churn(void **state)
{
	struct udx_liveref ref;
	pthread_t th[8];
	int i, round, nthreads = 0;

	assert_int_equal(udx_liveref_init(&ref, NULL), 0);
	for (round = 0; round < 50; round++) {
		for (i = 0; i < 8; i++)
			pthread_create(&th[i], NULL, churn_main, &ref);
		for (i = 0; i < 8; i++)
			pthread_join(th[i], NULL);
		nthreads += 8;
		if (round == 25)
			udx_liveref_kill(&ref);
	}
	assert_true(udx_liveref_read(&ref) == 1 + (uint64_t)nthreads);
	for (i = 0; i < nthreads; i++)
		udx_liveref_put(&ref);
	udx_liveref_put(&ref);
	assert_int_equal(udx_liveref_wait_zero(&ref, 0), 0);
	udx_liveref_exit(&ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress_kill),
		cmocka_unit_test(test_stress_thread_churn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
