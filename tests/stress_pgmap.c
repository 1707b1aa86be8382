/* SPDX-License-Identifier: MIT */
/*
 * Stress the pgmap: worker threads request, get, try_get, find and put
 * random folios of random orders, clustered so that shapes collide, while a
 * killer thread tears the pgmap down at a random moment.  A shadow of every
 * head page is kept beside the real metadata.  Checked:
 *   - folio_free runs only for a folio that is marked live, with the right
 *     order, and that no worker still counts as held: no folio is freed
 *     twice or while referenced;
 *   - at quiescent points the liveness count equals 1 + the live folios
 *     before kill, and the live folios after it; every live folio's count is
 *     what the workers hold;
 *   - no tryget_live on the pgmap succeeds once kill has returned;
 *   - the teardown (wait) returns only after the last put: by then no worker
 *     holds anything and every folio is idle.
 * Duration: UDX_STRESS_SECONDS (default 2 s).
 */
#include "testutil.h"
#include "dev/pgmap_internal.h"

#define NWORKERS  4
#define MAXHELD   48
#define DEV_SIZE  (2ull << 30)
#define NPAGES    (DEV_SIZE >> 12)

struct shadow {
	int live;               /* marked by a holder, cleared by folio_free */
	int order;
	int refs;               /* references the workers count as held */
};

struct held {
	struct udx_folio *f;
	uint64_t pfn;
};

struct round {
	struct udx_dev *dev;
	struct udx_pgmap *pg;
	struct shadow *sh;              /* NPAGES entries */
	pthread_barrier_t bar;
	int nheld[NWORKERS];
	uint64_t outstanding;
	int phase;                      /* 0 run, 1 park at the barrier, 2 stop */
	int kill_returned;
	int wait_returned;
	int errors;
	uint64_t frees;
	uint64_t kill_delay_ns;
};

static void report(struct round *r, const char *what, uint64_t pfn)
{
	fprintf(stderr, "FAIL: %s at pfn %#llx\n", what, (unsigned long long)pfn);
	__atomic_fetch_add(&r->errors, 1, __ATOMIC_SEQ_CST);
}

static void shadow_free(struct udx_pgmap *pg, uint64_t off, unsigned order, void *data)
{
	struct round *r = data;
	struct shadow *s = &r->sh[off >> 12];

	if (!__atomic_load_n(&s->live, __ATOMIC_SEQ_CST))
		report(r, "folio freed twice, or freed while nobody had it", off >> 12);
	if (__atomic_load_n(&s->order, __ATOMIC_SEQ_CST) != (int)order)
		report(r, "folio freed with another order", off >> 12);
	if (__atomic_load_n(&s->refs, __ATOMIC_SEQ_CST) != 0)
		report(r, "folio freed while referenced", off >> 12);
	__atomic_store_n(&s->live, 0, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&r->frees, 1, __ATOMIC_RELAXED);
}

static const struct udx_pgmap_ops shadow_ops = { .folio_free = shadow_free };

struct worker {
	struct round *r;
	int id;
	uint64_t seed;
	struct held held[MAXHELD];
};

/* We hold a new reference on the folio at @pfn. */
static void took(struct worker *w, struct udx_folio *f, uint64_t pfn)
{
	struct round *r = w->r;
	struct shadow *s = &r->sh[pfn];
	int order = (int)udx_folio_order(f);

	__atomic_fetch_add(&s->refs, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->live, __ATOMIC_SEQ_CST)) {
		if (__atomic_load_n(&s->order, __ATOMIC_SEQ_CST) != order)
			report(r, "live folio changed order under a reference", pfn);
	} else {
		__atomic_store_n(&s->order, order, __ATOMIC_SEQ_CST);
		__atomic_store_n(&s->live, 1, __ATOMIC_SEQ_CST);
	}
	__atomic_fetch_add(&r->outstanding, 1, __ATOMIC_SEQ_CST);
	w->held[r->nheld[w->id]] = (struct held){ f, pfn };
	__atomic_store_n(&r->nheld[w->id], r->nheld[w->id] + 1, __ATOMIC_RELAXED);
}

static void drop(struct worker *w, int i)
{
	struct round *r = w->r;
	struct held h = w->held[i];
	int n = r->nheld[w->id] - 1;

	w->held[i] = w->held[n];
	__atomic_store_n(&r->nheld[w->id], n, __ATOMIC_RELAXED);
	if (udx_folio_offset(r->pg, h.f) >> 12 != h.pfn)
		report(r, "folio handle moved", h.pfn);
	__atomic_fetch_sub(&r->outstanding, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_sub(&r->sh[h.pfn].refs, 1, __ATOMIC_SEQ_CST);
	udx_folio_put(r->pg, h.f);
}

/* heads cluster in a few hot 1 GiB-aligned windows so that shapes collide */
static uint64_t random_pfn(uint64_t *seed, unsigned order)
{
	uint64_t pfn;

	if (tu_rand(seed) % 8 == 0)
		pfn = tu_rand(seed) % NPAGES;
	else
		pfn = (tu_rand(seed) % 4096) + (tu_rand(seed) % 2) * (1ull << 18);
	return pfn & ~((1ull << order) - 1);
}

static unsigned random_order(uint64_t *seed)
{
	uint64_t x = tu_rand(seed) % 100;

	if (x < 60)
		return (unsigned)(tu_rand(seed) % 4);
	if (x < 90)
		return 4 + (unsigned)(tu_rand(seed) % 6);
	if (x < 99)
		return 10 + (unsigned)(tu_rand(seed) % 6);
	return 16 + (unsigned)(tu_rand(seed) % 3);
}

static void one_op(struct worker *w)
{
	struct round *r = w->r;
	struct udx_folio *f, *fs[40];
	uint64_t op = tu_rand(&w->seed) % 16, pfn;
	int n = r->nheld[w->id], seen_kill;
	size_t nr, i;

	if (n >= MAXHELD - 40 || (n > 0 && op < 6)) {
		drop(w, (int)(tu_rand(&w->seed) % (uint64_t)n));
		return;
	}
	switch (op) {
	case 6: case 7: case 8: {
		unsigned order = random_order(&w->seed);

		pfn = random_pfn(&w->seed, order);
		if (udx_pgmap_request_order(r->pg, pfn << 12, order, &f) == 0)
			took(w, f, pfn);
		break;
	}
	case 9: {
		uint64_t len = 1 + tu_rand(&w->seed) % 600;

		pfn = random_pfn(&w->seed, 0);
		if (pfn + len > NPAGES)
			break;
		if (udx_pgmap_request(r->pg, pfn << 12, len << 12, fs, 40, &nr) == 0)
			for (i = 0; i < nr; i++)
				took(w, fs[i], udx_folio_offset(r->pg, fs[i]) >> 12);
		break;
	}
	case 10:
		if (n > 0) {
			struct held *h = &w->held[tu_rand(&w->seed) % (uint64_t)n];

			udx_folio_get(r->pg, h->f);
			took(w, h->f, h->pfn);
		}
		break;
	case 11: {
		/* the folio holding a random page, if any: any shape */
		pfn = random_pfn(&w->seed, 0);
		if (udx_pgmap_folio_find(r->pg, pfn << 12, &f) == 0)
			took(w, f, udx_folio_offset(r->pg, f) >> 12);
		break;
	}
	case 12:
		seen_kill = __atomic_load_n(&r->kill_returned, __ATOMIC_ACQUIRE);
		if (udx_liveref_tryget_live(udx_pgmap_liveref(r->pg))) {
			if (seen_kill)
				report(r, "tryget_live succeeded after kill returned", 0);
			udx_liveref_put(udx_pgmap_liveref(r->pg));
		}
		break;
	case 13:
		if (n > 0) {
			struct held *h = &w->held[tu_rand(&w->seed) % (uint64_t)n];

			/* we hold one, so this can only time out or see <= our share */
			udx_folio_wait_idle(r->pg, h->f, UDX_FOLIO_REF_MAX, 0, NULL, NULL);
			if (!udx_folio_try_get(r->pg, h->f))
				report(r, "try_get failed on a held folio", h->pfn);
			else
				took(w, h->f, h->pfn);
		}
		break;
	default:
		break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct round *r = w->r;

	for (;;) {
		int ph = __atomic_load_n(&r->phase, __ATOMIC_ACQUIRE);

		if (ph == 1) {
			pthread_barrier_wait(&r->bar);
			pthread_barrier_wait(&r->bar);
			continue;
		}
		if (ph == 2)
			break;
		if (__atomic_load_n(&r->kill_returned, __ATOMIC_ACQUIRE) &&
		    tu_rand(&w->seed) % 4 == 0 && r->nheld[w->id] > 0) {
			drop(w, r->nheld[w->id] - 1);   /* wind down after kill */
			continue;
		}
		one_op(w);
	}
	while (r->nheld[w->id] > 0)
		drop(w, r->nheld[w->id] - 1);
	return NULL;
}

static void *killer_main(void *arg)
{
	struct round *r = arg;
	struct timespec ts = { 0, (long)r->kill_delay_ns };

	nanosleep(&ts, NULL);
	udx_pgmap_kill(r->pg);
	__atomic_store_n(&r->kill_returned, 1, __ATOMIC_RELEASE);
	assert_int_equal(udx_pgmap_wait(r->pg, -1), 0);
	/* the last put has happened: nobody holds anything, all is idle */
	if (__atomic_load_n(&r->outstanding, __ATOMIC_SEQ_CST) != 0)
		report(r, "teardown returned while references were held", 0);
	__atomic_store_n(&r->wait_returned, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Park the workers and compare the real state with the shadow. */
static void quiescent_check(struct round *r)
{
	struct udx_liveref *lr = udx_pgmap_liveref(r->pg);
	uint64_t live = 0, p, lv;
	struct udx_pgmap_stats st;
	bool killed, d1, d2;

	__atomic_store_n(&r->phase, 1, __ATOMIC_RELEASE);
	pthread_barrier_wait(&r->bar);
	killed = __atomic_load_n(&r->kill_returned, __ATOMIC_ACQUIRE);
	for (p = 0; p < NPAGES; p++) {
		struct shadow *s = &r->sh[p];
		uint32_t real = udx_folio_refcount(pg_folio(r->pg, p));

		live += s->live;
		if (real != (s->live ? (uint32_t)s->refs : 0)) {
			fprintf(stderr, "pfn %#llx: count %u, shadow live %d refs %d\n",
				(unsigned long long)p, real, s->live, s->refs);
			report(r, "count differs from what the workers hold", p);
		}
	}
	udx_pgmap_stats(r->pg, &st);
	if (st.live_folios != live)
		fprintf(stderr, "live folios %llu, shadow %llu\n",
			(unsigned long long)st.live_folios, (unsigned long long)live);
	assert_true(st.live_folios == live);
	/* the killer is not parked: compare only when no kill overlaps the read */
	d1 = udx_liveref_is_dying(lr);
	lv = udx_liveref_read(lr);
	d2 = udx_liveref_is_dying(lr);
	if (killed)
		assert_true(lv == live);
	else if (!d1 && !d2)
		assert_true(lv == 1 + live);
	__atomic_store_n(&r->phase, 0, __ATOMIC_RELEASE);
	pthread_barrier_wait(&r->bar);
}

static void one_round(uint64_t *seed)
{
	struct round *r = calloc(1, sizeof(*r));
	struct worker *w = calloc(NWORKERS, sizeof(*w));
	pthread_t th[NWORKERS], killer;
	uint64_t end, p;
	int i, checks = 0;

	r->sh = calloc(NPAGES, sizeof(*r->sh));
	r->dev = tu_anon("anon:2G");
	assert_int_equal(udx_memremap(r->dev, &shadow_ops, r, &r->pg), 0);
	pthread_barrier_init(&r->bar, NULL, NWORKERS + 1);
	r->kill_delay_ns = 20000000 + tu_rand(seed) % 80000000;    /* 20 .. 100 ms */
	for (i = 0; i < NWORKERS; i++) {
		w[i].r = r;
		w[i].id = i;
		w[i].seed = tu_rand(seed) | 1;
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	pthread_create(&killer, NULL, killer_main, r);
	end = tu_now_ns() + 150000000;
	while (tu_now_ns() < end) {
		struct timespec ts = { 0, 7000000 };

		nanosleep(&ts, NULL);
		quiescent_check(r);
		checks++;
	}
	__atomic_store_n(&r->phase, 2, __ATOMIC_RELEASE);
	for (i = 0; i < NWORKERS; i++)
		pthread_join(th[i], NULL);
	pthread_join(killer, NULL);
	assert_int_equal(r->errors, 0);
	assert_true(r->wait_returned);
	for (p = 0; p < NPAGES; p++)
		assert_int_equal(r->sh[p].live, 0);
	assert_true(checks > 0);
	udx_pgmap_free(r->pg);
	udx_dev_close(r->dev);
	pthread_barrier_destroy(&r->bar);
	free(r->sh);
	free(w);
	free(r);
}

static void test_stress_teardown(void **state)
{
	uint64_t seed = tu_seed();
	uint64_t end = tu_now_ns() + (uint64_t)(tu_stress_seconds(2.0) * 1e9);
	struct tu_watchdog wd;
	int rounds = 0;

	tu_watchdog_start(&wd, tu_stress_seconds(2.0) + 120, "stress_pgmap");
	do {
		one_round(&seed);
		rounds++;
	} while (tu_now_ns() < end);
	tu_watchdog_stop(&wd);
	fprintf(stderr, "%d rounds\n", rounds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
