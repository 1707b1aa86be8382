/* SPDX-License-Identifier: MIT */
/*
 * The block allocator: every call and error path, the placement policy, a
 * randomized check against a byte-per-block model, threads, and an aging
 * comparison with a first-fit allocator.
 *
 * Knobs: UDX_SEED (random tests), UDX_STRESS_SECONDS (the thread test),
 * UDX_ALLOC_SCALE (multiplies the operation counts of the model, aging and
 * speed tests; the default keeps the whole run to a few seconds).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"
#include "base/compiler.h"
#include "fs/alloc.h"

#define B2M 512ull                      /* blocks in 2 MiB */
#define B1G 262144ull                   /* blocks in 1 GiB */

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* Operation counts: a default, shrunk under the sanitizers, times UDX_ALLOC_SCALE. */
static uint64_t scaled(uint64_t n)
{
	const char *s = getenv("UDX_ALLOC_SCALE");
	double f = s ? atof(s) : 1.0;

	if (SANITIZED)
		n /= 4;
	return MAX((uint64_t)((double)n * f), 1);
}

static struct udx_alloc *mk(uint64_t first, uint64_t count)
{
	struct udx_alloc *a = NULL;

	assert_int_equal(alloc_create(first, count, &a), 0);
	assert_non_null(a);
	return a;
}

static struct alloc_stats stats_of(struct udx_alloc *a)
{
	struct alloc_stats st;

	alloc_stats(a, &st);
	return st;
}

/* Allocate and expect success; returns the length, *blk the start. */
static uint64_t get(struct udx_alloc *a, uint64_t want, uint64_t min, uint64_t goal,
		    unsigned flags, uint64_t *blk)
{
	uint64_t got = 0;

	assert_int_equal(alloc_blocks(a, want, min, goal, flags, blk, &got), 0);
	assert_true(got >= min && got <= want);
	return got;
}

static uint64_t aligned_groups(uint64_t first, uint64_t count, uint64_t unit)
{
	uint64_t lo = (first + unit - 1) / unit, hi = (first + count) / unit;

	return hi > lo ? hi - lo : 0;
}

static void expect_state(struct udx_alloc *a, uint64_t nfree, uint64_t excluded)
{
	struct alloc_stats st = stats_of(a);

	assert_true(st.free == nfree);
	assert_true(st.excluded == excluded);
}

/* Run @fn in a child process: true when it died of SIGABRT (UDX_BUG_ON). */
static bool dies(void (*fn)(void *), void *arg)
{
	pid_t pid;
	int st = 0, fd;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open("/dev/null", O_WRONLY);
		if (fd >= 0)
			dup2(fd, 2);
		fn(arg);
		_exit(0);
	}
	assert_true(waitpid(pid, &st, 0) == pid);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

/* Snapshot of the whole state, to show that a failed call changed nothing. */
struct snap {
	uint8_t *bm;
	size_t len;
	struct alloc_stats st;
};

static void snap_take(struct udx_alloc *a, uint64_t count, struct snap *s)
{
	s->len = (count + 7) / 8;
	s->bm = malloc(s->len);
	assert_non_null(s->bm);
	alloc_save(a, s->bm);
	alloc_stats(a, &s->st);
}

static void snap_same(struct udx_alloc *a, struct snap *s)
{
	struct snap now;

	snap_take(a, s->len * 8, &now);
	assert_memory_equal(now.bm, s->bm, s->len);
	assert_memory_equal(&now.st, &s->st, sizeof(now.st));
	free(now.bm);
	free(s->bm);
}

/* ---- creation ----------------------------------------------------------- */

static void test_create_errors(void **state)
{
	struct udx_alloc *a = NULL;

	assert_int_equal(alloc_create(0, 0, &a), -EINVAL);
	assert_int_equal(alloc_create(UINT64_MAX - 10, 100, &a), -EINVAL);
	assert_int_equal(alloc_create(0, 1ull << 60, &a), -EINVAL);
	assert_null(a);
	alloc_destroy(NULL);
}

static void test_fresh_geometries(void **state)
{
	static const uint64_t geo[][2] = {
		{ 0, 1 }, { 0, 4096 }, { 3, 5000 }, { 511, 2 }, { 512 * 7 + 5, 512 * 40 - 9 },
		{ 0, B1G }, { 1, B1G }, { B1G - 1000, 3 * B1G + 777 }, { 5 * B1G, 2 * B1G },
		{ 0, 16ull << 20 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(geo); i++) {
		struct udx_alloc *a = mk(geo[i][0], geo[i][1]);
		struct alloc_stats st = stats_of(a);

		assert_true(st.total == geo[i][1]);
		assert_true(st.free == geo[i][1]);
		assert_true(st.free_2m == aligned_groups(geo[i][0], geo[i][1], B2M));
		assert_true(st.free_1g == aligned_groups(geo[i][0], geo[i][1], B1G));
		assert_true(st.largest_free == geo[i][1]);
		assert_true(st.excluded == 0);
		assert_true(alloc_is_free(a, geo[i][0], geo[i][1]));
		alloc_destroy(a);
	}
}

/* ---- the policy --------------------------------------------------------- */

/* Small data requests fill partly used groups before breaking free ones. */
static void test_small_requests_pack(void **state)
{
	struct udx_alloc *a = mk(0, 64 * B2M);
	uint64_t blk, total = 0, touched[64] = { 0 }, ngroups = 0, seed = 7;
	int i;

	for (i = 0; i < 300; i++) {
		uint64_t want = 1 + tu_rand(&seed) % 16, got = get(a, want, want, 0, 0, &blk), g;

		total += got;
		for (g = blk / B2M; g <= (blk + got - 1) / B2M; g++)
			touched[g] = 1;
	}
	for (i = 0; i < 64; i++)
		ngroups += touched[i];
	/* a group is left only when the next request does not fit in it */
	assert_true(ngroups <= total / B2M + 2);
	assert_true(stats_of(a).free_2m == 64 - ngroups);
	alloc_destroy(a);
}

/* Metadata clusters in its own groups, apart from data. */
static void test_meta_apart(void **state)
{
	struct udx_alloc *a = mk(0, 64 * B2M);
	uint64_t d, m, blk;
	int i;

	get(a, 10, 10, 0, 0, &d);
	get(a, 1, 1, 0, UDX_ALLOC_META, &m);
	assert_true(d / B2M != m / B2M);
	for (i = 0; i < 100; i++) {
		get(a, 1, 1, 0, UDX_ALLOC_META, &blk);
		assert_true(blk / B2M == m / B2M);
	}
	for (i = 0; i < 100; i++) {
		get(a, 3, 3, 0, 0, &blk);
		assert_true(blk / B2M == d / B2M);
	}
	/* a goal in a group of the other kind is not followed */
	get(a, 1, 1, d + 10 + 300, UDX_ALLOC_META, &blk);
	assert_true(blk / B2M == m / B2M);
	get(a, 2, 2, m + 101, 0, &blk);
	assert_true(blk / B2M == d / B2M);
	/* data fills holes of metadata groups before breaking a free group */
	{
		struct udx_alloc *b = mk(0, 2 * B2M);
		uint64_t x, y;

		get(b, 1, 1, 0, UDX_ALLOC_META, &x);
		assert_true(get(b, 512, 512, 0, 0, &y) == 512);
		assert_true(y == B2M);
		get(b, 7, 7, 0, 0, &y);
		assert_true(y / B2M == 0);
		alloc_destroy(b);
	}
	alloc_destroy(a);
}

/* A small request that must break a free group takes it in the region with
 * the fewest free groups; whole regions stay whole. */
static void test_small_breaks_group_in_most_used_region(void **state)
{
	struct udx_alloc *a = mk(0, 3 * B1G);
	uint64_t blk;

	assert_int_equal(alloc_mark_used(a, B1G + 5 * B2M, B2M), 0);
	assert_int_equal(alloc_mark_used(a, 2 * B1G, 400 * B2M), 0);
	assert_true(stats_of(a).free_1g == 1);
	get(a, 5, 5, 0, 0, &blk);
	assert_true(blk / B1G == 2);
	get(a, 500, 500, 0, 0, &blk);          /* the rest of the group it opened */
	assert_true(blk / B1G == 2);
	get(a, 100, 100, 0, 0, &blk);          /* another group, in the same region */
	assert_true(blk / B1G == 2);
	assert_true(stats_of(a).free_1g == 1);
	/* a goal does not pull a small request into a fully free group */
	get(a, 5, 5, 10, 0, &blk);
	assert_true(blk / B1G == 2);
	alloc_destroy(a);
}

/* 2 MiB requests take aligned free groups in partly used regions. */
static void test_2m_prefers_used_regions(void **state)
{
	struct udx_alloc *a = mk(0, 2 * B1G);
	uint64_t blk, got;

	assert_int_equal(alloc_mark_used(a, B1G + 100 * B2M, 1), 0);
	got = get(a, 4 * B2M, 4 * B2M, 0, 0, &blk);
	assert_true(got == 4 * B2M);
	assert_true(blk % B2M == 0 && blk / B1G == 1);
	assert_true(stats_of(a).free_1g == 1);
	/* a tail that fits in the free head of the next group spares a group */
	{
		struct udx_alloc *b = mk(0, 8 * B2M);
		uint64_t before;

		assert_int_equal(alloc_mark_used(b, 3 * B2M + 100, 1), 0);   /* group 3: head 100 */
		assert_int_equal(alloc_mark_used(b, 5 * B2M, 1), 0);
		before = stats_of(b).free_2m;                                 /* 0,1,2,4,6,7 */
		get(b, B2M + 50, B2M + 50, 0, 0, &blk);
		assert_true(blk == 2 * B2M);
		assert_true(stats_of(b).free_2m == before - 1);
		alloc_destroy(b);
	}
	alloc_destroy(a);
}

/* 1 GiB requests take whole aligned regions. */
static void test_1g_whole_regions(void **state)
{
	uint64_t first = 100, count = 3 * B1G;
	struct udx_alloc *a = mk(first, count);
	uint64_t blk, got, b1, b2;
	struct snap s;

	assert_true(stats_of(a).free_1g == 2);
	get(a, B1G, B1G, 0, 0, &b1);
	assert_true(b1 % B1G == 0);
	get(a, B1G, B1G, 0, UDX_ALLOC_ALIGN, &b2);
	assert_true(b2 % B1G == 0 && b2 != b1);
	assert_true(stats_of(a).free_1g == 0);

	snap_take(a, count, &s);
	assert_int_equal(alloc_blocks(a, B1G, B1G, 0, 0, &blk, &got), -ENOSPC);
	assert_int_equal(alloc_blocks(a, B1G, 2, 0, UDX_ALLOC_ALIGN, &blk, &got), 0);
	/* the only 1 GiB aligned start with free blocks: region 3, 100 blocks */
	assert_true(blk == 3 * B1G && got == 100);
	alloc_free(a, blk, got);
	snap_same(a, &s);

	/* not aligned: the longest 2 MiB aligned run, region 0 after its cut group */
	got = get(a, B1G, 1, 0, 0, &blk);
	assert_true(blk == B2M && got == B1G - B2M);
	alloc_free(a, b1, B1G);
	alloc_free(a, b2, B1G);
	alloc_free(a, blk, got);
	assert_true(stats_of(a).free == count);
	/* a run of two whole regions */
	got = get(a, 2 * B1G, 2 * B1G, 0, UDX_ALLOC_ALIGN, &blk);
	assert_true(blk == B1G);
	alloc_free(a, blk, got);
	alloc_destroy(a);
}

/* A goal continues a file where the policy allows. */
static void test_goal(void **state)
{
	struct udx_alloc *a = mk(0, 16 * B2M);
	uint64_t b, blk;

	get(a, 10, 10, 0, 0, &b);
	get(a, 10, 10, b + 10, 0, &blk);
	assert_true(blk == b + 10);
	get(a, 5, 5, b + 100, 0, &blk);         /* free and in a partly used group */
	assert_true(blk == b + 100);
	get(a, 5, 1, b + 102, 0, &blk);         /* in use: elsewhere */
	assert_true(blk != b + 102);
	/* a goal run that cannot hold want is taken only when nothing longer is */
	get(a, 1024, 1024, 0, 0, &b);
	assert_true(b % B2M == 0);
	get(a, 1024, 1024, b + 1024, 0, &blk);
	assert_true(blk == b + 1024);
	/* goal out of range is no preference */
	get(a, 1, 1, 1ull << 40, 0, &blk);
	alloc_destroy(a);
}

static void test_align(void **state)
{
	struct udx_alloc *a = mk(1, 4095);
	uint64_t blk, got, i;
	struct snap s;

	get(a, B2M, B2M, 0, UDX_ALLOC_ALIGN, &blk);
	assert_true(blk % B2M == 0);
	alloc_free(a, blk, B2M);
	for (i = B2M; i < 4096; i += B2M)
		assert_int_equal(alloc_mark_used(a, i, 1), 0);
	snap_take(a, 4095, &s);
	assert_int_equal(alloc_blocks(a, B2M, 1, 0, UDX_ALLOC_ALIGN, &blk, &got), -ENOSPC);
	assert_int_equal(alloc_blocks(a, B1G, 1, 0, UDX_ALLOC_ALIGN, &blk, &got), -ENOSPC);
	snap_same(a, &s);
	got = get(a, B2M, 1, 0, 0, &blk);      /* not aligned: the longest run */
	assert_true(got == 511 && blk % B2M == 1);
	/* ALIGN on a small request means nothing */
	get(a, 3, 3, 0, UDX_ALLOC_ALIGN, &blk);
	alloc_destroy(a);

	/* an allocator smaller than the request's alignment */
	a = mk(5, 300);
	assert_int_equal(alloc_blocks(a, 600, 1, 0, UDX_ALLOC_ALIGN, &blk, &got), -ENOSPC);
	assert_int_equal(alloc_blocks(a, B1G, 1, 0, UDX_ALLOC_ALIGN, &blk, &got), -ENOSPC);
	got = get(a, 600, 1, 0, 0, &blk);
	assert_true(blk == 5 && got == 300);
	alloc_free(a, blk, got);
	got = get(a, B1G, 1, 0, 0, &blk);
	assert_true(blk == 5 && got == 300);
	alloc_destroy(a);
}

/* want, min, -ENOSPC, -EINVAL */
static void test_min_want(void **state)
{
	struct udx_alloc *a = mk(0, 4096);
	uint64_t blk, got, i;
	struct snap s;

	for (i = 100; i < 4096; i += 101)
		assert_int_equal(alloc_mark_used(a, i, 1), 0);
	got = get(a, 200, 50, 0, 0, &blk);
	assert_true(got == 100);
	snap_take(a, 4096, &s);
	assert_int_equal(alloc_blocks(a, 200, 150, 0, 0, &blk, &got), -ENOSPC);
	assert_int_equal(alloc_blocks(a, 5000, 4097, 0, 0, &blk, &got), -ENOSPC);
	assert_int_equal(alloc_blocks(a, 10, 0, 0, 0, &blk, &got), -EINVAL);
	assert_int_equal(alloc_blocks(a, 10, 11, 0, 0, &blk, &got), -EINVAL);
	snap_same(a, &s);
	/* more than the allocator holds: the longest run */
	got = get(a, 1ull << 40, 1, 0, 0, &blk);
	assert_true(got == 100);
	alloc_destroy(a);
}

/* ---- free, mark_used, exclude, is_free ---------------------------------- */

struct bad_free {
	struct udx_alloc *a;
	uint64_t blk, len;
};

static void do_free(void *arg)
{
	struct bad_free *bf = arg;

	alloc_free(bf->a, bf->blk, bf->len);
}

static void test_free_bugs(void **state)
{
	struct udx_alloc *a = mk(10, 4096);
	struct bad_free bf = { a, 0, 0 };
	uint64_t blk;

	get(a, 100, 100, 0, 0, &blk);
	alloc_free(a, blk, 0);                   /* nothing */
	bf.blk = blk + 50;
	bf.len = 100;                            /* half of it is free */
	assert_true(dies(do_free, &bf));
	bf.blk = 4;
	bf.len = 10;                             /* before the range */
	assert_true(dies(do_free, &bf));
	bf.blk = 4100;
	bf.len = 10;                             /* past the end */
	assert_true(dies(do_free, &bf));
	alloc_exclude(a, 3000, 10);
	bf.blk = 3000;
	bf.len = 1;                              /* excluded, not in use */
	assert_true(dies(do_free, &bf));
	alloc_free(a, blk, 100);
	bf.blk = blk;
	bf.len = 100;                            /* twice */
	assert_true(dies(do_free, &bf));
	alloc_destroy(a);
}

static void test_mark_used(void **state)
{
	struct udx_alloc *a = mk(1000, 8192);
	uint64_t blk, got;
	struct snap s;

	assert_int_equal(alloc_mark_used(a, 2000, 300), 0);
	assert_false(alloc_is_free(a, 2299, 1));
	assert_true(alloc_is_free(a, 2300, 1));
	assert_int_equal(alloc_mark_used(a, 5000, 0), 0);
	snap_take(a, 8192, &s);
	assert_int_equal(alloc_mark_used(a, 1900, 101), -EEXIST);
	assert_int_equal(alloc_mark_used(a, 2299, 5), -EEXIST);
	assert_int_equal(alloc_mark_used(a, 999, 5), -EINVAL);
	assert_int_equal(alloc_mark_used(a, 9000, 193), -EINVAL);
	assert_int_equal(alloc_mark_used(a, 9191, 1), 0);
	alloc_free(a, 9191, 1);
	snap_same(a, &s);
	/* rebuilding over excluded blocks: they have an owner, excluded when freed */
	alloc_exclude(a, 6000, 20);
	expect_state(a, 8192 - 300 - 20, 20);
	assert_int_equal(alloc_mark_used(a, 5990, 40), 0);
	expect_state(a, 8192 - 300 - 40, 0);
	alloc_free(a, 5990, 40);
	expect_state(a, 8192 - 300 - 20, 20);
	/* everything else can still be had, never an excluded block */
	while (alloc_blocks(a, 64, 1, 0, 0, &blk, &got) == 0)
		assert_true(blk + got <= 6000 || blk >= 6020);
	expect_state(a, 0, 20);
	alloc_destroy(a);
}

static void test_exclude(void **state)
{
	struct udx_alloc *a = mk(0, 8192);
	uint64_t b, blk, got, n = 0;
	uint64_t *runs = calloc(8192, sizeof(uint64_t) * 2);

	get(a, 100, 100, 0, 0, &b);
	alloc_exclude(a, b + 50, 100);          /* 50 in use, 50 free */
	expect_state(a, 8192 - 150, 50);
	assert_false(alloc_is_free(a, b + 120, 1));
	alloc_exclude(a, b + 60, 80);           /* again: no change */
	expect_state(a, 8192 - 150, 50);
	while (alloc_blocks(a, 1 + n % 37, 1, 0, n % 3 ? 0 : UDX_ALLOC_META, &blk, &got) == 0) {
		assert_true(blk + got <= b + 100 || blk >= b + 150);
		runs[2 * n] = blk;
		runs[2 * n + 1] = got;
		n++;
	}
	expect_state(a, 0, 50);
	alloc_free(a, b, 100);                  /* b+50.. become excluded */
	expect_state(a, 50, 100);
	while (n--)
		alloc_free(a, runs[2 * n], runs[2 * n + 1]);
	expect_state(a, 8192 - 100, 100);
	/* out of range parts are ignored */
	alloc_exclude(a, 8000, 1000);
	expect_state(a, 8000 - 100, 292);
	alloc_exclude(a, 10000, 5);
	alloc_exclude(a, 5, UINT64_MAX);        /* wraps: to the end */
	expect_state(a, 5, 8192 - 5);
	assert_int_equal(alloc_blocks(a, 6, 6, 0, 0, &blk, &got), -ENOSPC);
	get(a, 6, 1, 0, 0, &blk);
	assert_true(blk == 0 && stats_of(a).largest_free == 0);
	free(runs);
	alloc_destroy(a);
}

static void test_is_free(void **state)
{
	struct udx_alloc *a = mk(100, 1000);

	assert_true(alloc_is_free(a, 100, 1000));
	assert_true(alloc_is_free(a, 500, 0));
	assert_false(alloc_is_free(a, 99, 2));
	assert_false(alloc_is_free(a, 1099, 2));
	assert_false(alloc_is_free(a, 5000, 1));
	assert_false(alloc_is_free(a, 100, UINT64_MAX));
	assert_int_equal(alloc_mark_used(a, 600, 1), 0);
	assert_false(alloc_is_free(a, 100, 1000));
	assert_true(alloc_is_free(a, 100, 500));
	assert_true(alloc_is_free(a, 601, 499));
	alloc_destroy(a);
}

static void test_stats_exact(void **state)
{
	struct udx_alloc *a = mk(B2M - 3, 2 * B1G);     /* ends 509 short of 2G + 512 */
	struct alloc_stats st;
	uint64_t blk;

	st = stats_of(a);
	assert_true(st.free_2m == 2 * B1G / B2M - 1 && st.free_1g == 1);
	assert_int_equal(alloc_mark_used(a, B1G + 7, 1), 0);
	assert_int_equal(alloc_mark_used(a, B1G + 3 * B2M, 2), 0);
	st = stats_of(a);
	assert_true(st.free == 2 * B1G - 3);
	assert_true(st.free_2m == 2 * B1G / B2M - 3);
	assert_true(st.free_1g == 0);
	/* longest: after the 2 blocks at 1G + 3*512 to the end */
	assert_true(st.largest_free == B1G + 7 - (B2M - 3));
	alloc_exclude(a, 10 * B2M, 3);
	st = stats_of(a);
	assert_true(st.excluded == 3 && st.free == 2 * B1G - 6);
	get(a, 1, 1, 0, UDX_ALLOC_META, &blk);
	alloc_destroy(a);
}

/* ---- the checkpoint ----------------------------------------------------- */

static void test_save_load(void **state)
{
	uint64_t first = 77, count = 3 * B2M + 13, blk, got, seed = 99, i;
	struct udx_alloc *a = mk(first, count), *b = mk(first, count);
	size_t len = (count + 7) / 8;
	uint8_t *bm = malloc(len), *bm2 = malloc(len);
	struct alloc_stats sa, sb;

	for (i = 0; i < 60; i++)
		if (alloc_blocks(a, 1 + tu_rand(&seed) % 60, 1, 0, 0, &blk, &got) == 0 && i % 3 == 0)
			alloc_free(a, blk, got);
	alloc_exclude(a, first + count - 1, 1);
	memset(bm, 0xaa, len);
	alloc_save(a, bm);
	/* padding bits of the last byte are zero; excluded blocks are in use */
	assert_int_equal(bm[len - 1] >> (count % 8), 0);
	assert_true(bm[(count - 1) / 8] & (1u << ((count - 1) % 8)));
	for (i = 0; i < count; i += 7)
		assert_true(!!(bm[i / 8] & (1u << (i % 8))) == !alloc_is_free(a, first + i, 1));
	alloc_load(b, bm);
	alloc_save(b, bm2);
	assert_memory_equal(bm, bm2, len);
	alloc_stats(a, &sa);
	alloc_stats(b, &sb);
	assert_true(sa.free == sb.free && sa.free_2m == sb.free_2m &&
		    sa.largest_free == sb.largest_free);

	/* load replaces the state: an empty bitmap frees everything */
	memset(bm2, 0, len);
	alloc_load(b, bm2);
	expect_state(b, count, 0);
	/* exclusions outlive a load: free in the bitmap -> excluded, in use ->
	 * excluded when freed */
	alloc_exclude(b, first, 10);
	bm2[0] = 0x0f;                           /* blocks 0..3 in use */
	alloc_load(b, bm2);
	expect_state(b, count - 10, 6);
	alloc_free(b, first, 4);
	expect_state(b, count - 10, 10);
	/* load over a full allocator: the excluded block may have an owner now */
	memset(bm2, 0xff, len);
	alloc_load(a, bm2);
	expect_state(a, 0, 0);
	free(bm);
	free(bm2);
	alloc_destroy(a);
	alloc_destroy(b);
}

/* ---- randomized, against a model ---------------------------------------- */

enum { X_NONE, X_EXCL, X_PEND };

struct ext {
	uint64_t blk, len;
};

struct model {
	struct udx_alloc *a;
	uint64_t first, count;
	uint8_t *used;                  /* 1: in use or excluded */
	uint8_t *xs;                    /* X_* */
	struct ext *live;
	size_t nlive, cap;
	uint64_t seed;
};

struct runs {
	uint64_t any, a2m, a1g;         /* longest free, from 2M / 1G aligned starts */
};

static void model_runs(const struct model *m, struct runs *r)
{
	uint64_t i = 0, s, e, al;
	const uint8_t *p;

	memset(r, 0, sizeof(*r));
	while (i < m->count) {
		p = memchr(m->used + i, 0, m->count - i);
		if (p == NULL)
			break;
		s = (uint64_t)(p - m->used);
		p = memchr(m->used + s, 1, m->count - s);
		e = p ? (uint64_t)(p - m->used) : m->count;
		r->any = MAX(r->any, e - s);
		al = ALIGN_UP(m->first + s, B2M) - m->first;
		if (al < e)
			r->a2m = MAX(r->a2m, e - al);
		al = ALIGN_UP(m->first + s, B1G) - m->first;
		if (al < e)
			r->a1g = MAX(r->a1g, e - al);
		i = e;
	}
}

/* What the contract and the policy promise for this request, at least. */
static uint64_t model_expect(const struct model *m, uint64_t want, uint64_t min, unsigned flags)
{
	uint64_t w = MIN(want, m->count), e;
	bool align = flags & UDX_ALLOC_ALIGN;
	struct runs r;

	model_runs(m, &r);
	if (want >= B1G) {
		e = MIN(w, r.a1g);
		if (align || e == w || (e >= B1G && e >= min))
			return e;
	}
	if (want >= B2M) {
		e = MIN(w, r.a2m);
		if ((align && want < B1G) || e == w || (e >= B2M && e >= min))
			return e;
	}
	return MIN(w, r.any);
}

static void model_check_stats(struct model *m)
{
	struct alloc_stats st = stats_of(m->a);
	uint64_t nfree = 0, excl = 0, f2 = 0, f1 = 0, i, g;
	struct runs r;

	for (i = 0; i < m->count; i++) {
		nfree += !m->used[i];
		excl += m->xs[i] == X_EXCL;
	}
	for (g = ALIGN_UP(m->first, B2M); g + B2M <= m->first + m->count; g += B2M)
		f2 += memchr(m->used + g - m->first, 1, B2M) == NULL;
	for (g = ALIGN_UP(m->first, B1G); g + B1G <= m->first + m->count; g += B1G)
		f1 += memchr(m->used + g - m->first, 1, B1G) == NULL;
	model_runs(m, &r);
	assert_true(st.total == m->count);
	assert_true(st.free == nfree);
	assert_true(st.excluded == excl);
	assert_true(st.free_2m == f2);
	assert_true(st.free_1g == f1);
	assert_true(st.largest_free == r.any);
}

static void model_add_live(struct model *m, uint64_t blk, uint64_t len)
{
	if (m->nlive == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->live = realloc(m->live, m->cap * sizeof(*m->live));
		assert_non_null(m->live);
	}
	m->live[m->nlive++] = (struct ext){ blk, len };
}

static uint64_t rnd(struct model *m, uint64_t n)
{
	return n ? tu_rand(&m->seed) % n : 0;
}

static void model_alloc(struct model *m)
{
	uint64_t want, min, goal = 0, blk = 0, got = 0, i, expect;
	unsigned flags = 0, k = (unsigned)rnd(m, 100);
	int ret;

	if (k < 60)
		want = 1 + rnd(m, 16);
	else if (k < 75)
		want = 1 + rnd(m, 511);
	else if (k < 90)
		want = B2M + rnd(m, 8 * B2M);
	else if (k < 95)
		want = B2M * (1 + rnd(m, 16));
	else
		want = B1G + rnd(m, 2 * B1G);
	k = (unsigned)rnd(m, 4);
	min = k < 2 ? 1 : k == 2 ? want : 1 + rnd(m, want);
	if (want <= 4 && rnd(m, 5) == 0)
		flags |= UDX_ALLOC_META;
	if (rnd(m, 7) == 0)
		flags |= UDX_ALLOC_ALIGN;
	k = (unsigned)rnd(m, 10);
	if (k < 4 && m->nlive) {
		struct ext *x = &m->live[rnd(m, m->nlive)];

		goal = x->blk + x->len;
	} else if (k == 4) {
		goal = m->first + rnd(m, m->count);
	}
	expect = model_expect(m, want, min, flags);
	ret = alloc_blocks(m->a, want, min, goal, flags, &blk, &got);
	if (expect < min) {
		if (ret != -ENOSPC)
			fprintf(stderr, "want %llu min %llu flags %u: expected ENOSPC, got %d (%llu+%llu)\n",
				(unsigned long long)want, (unsigned long long)min, flags, ret,
				(unsigned long long)blk, (unsigned long long)got);
		assert_int_equal(ret, -ENOSPC);
		return;
	}
	if (ret != 0 || got < expect)
		fprintf(stderr, "want %llu min %llu goal %llu flags %u: ret %d got %llu, expected %llu\n",
			(unsigned long long)want, (unsigned long long)min,
			(unsigned long long)goal, flags, ret, (unsigned long long)got,
			(unsigned long long)expect);
	assert_int_equal(ret, 0);
	assert_true(got >= min && got <= want && got >= expect);
	assert_true(blk >= m->first && blk + got <= m->first + m->count);
	if ((flags & UDX_ALLOC_ALIGN) && want >= B1G)
		assert_true(blk % B1G == 0);
	else if ((flags & UDX_ALLOC_ALIGN) && want >= B2M)
		assert_true(blk % B2M == 0);
	for (i = blk - m->first; i < blk - m->first + got; i++) {
		assert_int_equal(m->used[i], 0);
		m->used[i] = 1;
	}
	model_add_live(m, blk, got);
}

/* Free a live extent, or a piece of one. */
static void model_free(struct model *m)
{
	size_t k = rnd(m, m->nlive);
	struct ext x = m->live[k];
	uint64_t s = x.blk, len = x.len, i;

	if (rnd(m, 10) < 3 && x.len > 1) {
		s = x.blk + rnd(m, x.len);
		len = 1 + rnd(m, x.blk + x.len - s);
	}
	m->live[k] = m->live[--m->nlive];
	if (s > x.blk)
		model_add_live(m, x.blk, s - x.blk);
	if (s + len < x.blk + x.len)
		model_add_live(m, s + len, x.blk + x.len - s - len);
	alloc_free(m->a, s, len);
	for (i = s - m->first; i < s - m->first + len; i++) {
		if (m->xs[i] == X_PEND)
			m->xs[i] = X_EXCL;
		else
			m->used[i] = 0;
	}
}

static void model_mark(struct model *m)
{
	uint64_t i = rnd(m, m->count), n = 0;

	if (m->used[i] && m->nlive && rnd(m, 2)) {
		struct ext *x = &m->live[rnd(m, m->nlive)];
		uint64_t s = x->blk > m->first ? x->blk - 1 - rnd(m, x->blk - m->first) / 8 : x->blk;
		uint64_t before = stats_of(m->a).free;

		/* overlaps a live extent: two owners */
		assert_int_equal(alloc_mark_used(m->a, s, x->blk - s + 1), -EEXIST);
		assert_true(stats_of(m->a).free == before);
		return;
	}
	while (i + n < m->count && !m->used[i + n] && n < 64)
		n++;
	if (n == 0)
		return;
	n = 1 + rnd(m, n);
	assert_int_equal(alloc_mark_used(m->a, m->first + i, n), 0);
	memset(m->used + i, 1, n);
	model_add_live(m, m->first + i, n);
}

static void model_exclude(struct model *m)
{
	uint64_t s = rnd(m, m->count), n = 1 + rnd(m, 32), i;

	alloc_exclude(m->a, m->first + s, n);
	for (i = s; i < MIN(s + n, m->count); i++) {
		if (m->xs[i] != X_NONE)
			continue;
		if (m->used[i]) {
			m->xs[i] = X_PEND;
		} else {
			m->used[i] = 1;
			m->xs[i] = X_EXCL;
		}
	}
}

static void model_is_free(struct model *m)
{
	uint64_t s = rnd(m, m->count), n = 1 + rnd(m, 600);
	bool expect = s + n <= m->count && memchr(m->used + s, 1, n) == NULL;

	assert_true(alloc_is_free(m->a, m->first + s, n) == expect);
}

static void model_run(uint64_t first, uint64_t count, uint64_t ops, uint64_t seed)
{
	struct model m;
	uint64_t op, nbytes = (count + 7) / 8, i;
	uint8_t *bm;
	struct udx_alloc *b;

	memset(&m, 0, sizeof(m));
	m.a = mk(first, count);
	m.first = first;
	m.count = count;
	m.used = calloc(count, 1);
	m.xs = calloc(count, 1);
	m.seed = seed;
	for (op = 0; op < ops; op++) {
		unsigned k = (unsigned)rnd(&m, 100);

		/* keep the live set small enough for the model's scans */
		if (m.nlive > 400 && k < 45)
			k += 45;
		if (k < 45)
			model_alloc(&m);
		else if (k < 85 && m.nlive)
			model_free(&m);
		else if (k < 90)
			model_mark(&m);
		else if (k < 92)
			model_exclude(&m);
		else if (k < 97)
			model_is_free(&m);
		else
			model_check_stats(&m);
	}
	model_check_stats(&m);

	/* the checkpoint of this state loads into a fresh allocator */
	bm = malloc(nbytes);
	alloc_save(m.a, bm);
	for (i = 0; i < count; i++)
		assert_true(!!(bm[i / 8] & (1u << (i % 8))) == m.used[i]);
	b = mk(first, count);
	alloc_load(b, bm);
	assert_true(stats_of(b).free == stats_of(m.a).free);
	alloc_destroy(b);
	free(bm);

	while (m.nlive)
		model_free(&m);
	model_check_stats(&m);
	free(m.live);
	free(m.used);
	free(m.xs);
	alloc_destroy(m.a);
}

static void test_model_random(void **state)
{
	static const uint64_t geo[][3] = {
		/* first, count, ops */
		{ 0, 4096, 4000 },
		{ 3, 5000, 4000 },
		{ 512 * 7 + 5, 512 * 40 - 9, 4000 },
		{ 0, 1, 200 },
		{ B1G - 1000, 3 * B1G + 777, 1500 },
	};
	uint64_t seed = tu_seed();
	size_t i;

	for (i = 0; i < ARRAY_SIZE(geo); i++)
		model_run(geo[i][0], geo[i][1], scaled(geo[i][2]), seed + i);
}

/* ---- threads ------------------------------------------------------------ */

struct stress {
	struct udx_alloc *a;
	uint64_t first, count;
	uint8_t *owner;                 /* atomic: 1 while handed out */
	uint64_t deadline;
	int errors;                     /* atomic */
	uint64_t seed;
};

static void stress_put(struct stress *sx, uint64_t blk, uint64_t len)
{
	uint64_t i;

	for (i = blk - sx->first; i < blk - sx->first + len; i++)
		__atomic_store_n(&sx->owner[i], 0, __ATOMIC_RELAXED);
	alloc_free(sx->a, blk, len);
}

static void *stress_main(void *arg)
{
	struct stress *sx = arg;
	struct ext mine[64];
	uint64_t seed = __atomic_add_fetch(&sx->seed, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
	size_t n = 0;
	unsigned iter = 0;

	while ((++iter & 63) || tu_now_ns() < sx->deadline) {
		uint64_t r = tu_rand(&seed), blk, got, i;

		if (n < ARRAY_SIZE(mine) && (r & 1)) {
			uint64_t want = (r >> 8) % 8 == 0 ? B2M * (1 + (r >> 16) % 4) : 1 + (r >> 16) % 40;
			unsigned flags = (r >> 24) % 5 == 0 && want == 1 ? UDX_ALLOC_META : 0;

			if (alloc_blocks(sx->a, want, 1, 0, flags, &blk, &got))
				continue;
			for (i = blk - sx->first; i < blk - sx->first + got; i++)
				if (__atomic_exchange_n(&sx->owner[i], 1, __ATOMIC_RELAXED))
					__atomic_add_fetch(&sx->errors, 1, __ATOMIC_RELAXED);
			mine[n++] = (struct ext){ blk, got };
		} else if (n) {
			size_t k = (r >> 8) % n;
			struct ext x = mine[k];

			mine[k] = mine[--n];
			if (x.len > 2 && (r >> 32) % 3 == 0) {
				/* in two pieces */
				stress_put(sx, x.blk, x.len / 2);
				stress_put(sx, x.blk + x.len / 2, x.len - x.len / 2);
			} else {
				stress_put(sx, x.blk, x.len);
			}
		}
		if ((r >> 40) % 512 == 0) {
			struct alloc_stats st;

			alloc_stats(sx->a, &st);
			if (st.free > sx->count)
				__atomic_add_fetch(&sx->errors, 1, __ATOMIC_RELAXED);
			(void)alloc_is_free(sx->a, sx->first + (r >> 20) % sx->count, 4);
		}
		if ((r >> 50) % 4096 == 0)
			alloc_exclude(sx->a, sx->first + (r >> 8) % sx->count, 3);
	}
	while (n--)
		stress_put(sx, mine[n].blk, mine[n].len);
	return NULL;
}

static void test_threads(void **state)
{
	struct stress sx;
	struct tu_watchdog wd;
	pthread_t th[4];
	struct alloc_stats st;
	size_t i;

	memset(&sx, 0, sizeof(sx));
	sx.first = 3;
	sx.count = 32 * B2M + 77;
	sx.a = mk(sx.first, sx.count);
	sx.owner = calloc(sx.count, 1);
	sx.seed = tu_seed();
	sx.deadline = tu_now_ns() + (uint64_t)(tu_stress_seconds(0.5) * 1e9);
	tu_watchdog_start(&wd, tu_stress_seconds(0.5) + 60, "test_threads");
	for (i = 0; i < ARRAY_SIZE(th); i++)
		assert_int_equal(pthread_create(&th[i], NULL, stress_main, &sx), 0);
	for (i = 0; i < ARRAY_SIZE(th); i++)
		pthread_join(th[i], NULL);
	tu_watchdog_stop(&wd);
	assert_int_equal(sx.errors, 0);
	alloc_stats(sx.a, &st);
	assert_true(st.free + st.excluded == sx.count);
	free(sx.owner);
	alloc_destroy(sx.a);
}

/* ---- aging: the policy against first fit -------------------------------- */

/* First fit over a bitmap: the lowest run of @want free blocks. */
struct ffit {
	uint64_t *bits;                 /* 1 = in use */
	uint64_t count;
	uint64_t low;                   /* no free block below */
};

static bool ff_test(const struct ffit *f, uint64_t i)
{
	return (f->bits[i / 64] >> (i % 64)) & 1;
}

static uint64_t ff_next(const struct ffit *f, uint64_t i, bool used)
{
	while (i < f->count) {
		uint64_t w = used ? f->bits[i / 64] : ~f->bits[i / 64];

		w &= ~0ull << (i % 64);
		if (w)
			return MIN(i / 64 * 64 + (uint64_t)__builtin_ctzll(w), f->count);
		i = (i / 64 + 1) * 64;
	}
	return f->count;
}

static void ff_mark(struct ffit *f, uint64_t s, uint64_t len, bool used)
{
	uint64_t i;

	for (i = s; i < s + len; i++) {
		if (used)
			f->bits[i / 64] |= 1ull << (i % 64);
		else
			f->bits[i / 64] &= ~(1ull << (i % 64));
	}
}

static bool ff_alloc(struct ffit *f, uint64_t want, uint64_t *blk)
{
	uint64_t s = f->low, e;

	while ((s = ff_next(f, s, false)) < f->count) {
		e = ff_next(f, s, true);
		if (e - s >= want) {
			ff_mark(f, s, want, true);
			f->low = s == f->low ? ff_next(f, s, false) : f->low;
			*blk = s;
			return true;
		}
		s = e;
	}
	return false;
}

static void ff_free(struct ffit *f, uint64_t blk, uint64_t len)
{
	UDX_BUG_ON(!ff_test(f, blk));
	ff_mark(f, blk, len, false);
	f->low = MIN(f->low, blk);
}

struct aging_item {
	uint64_t want;
	uint64_t ours, ff;              /* starts; UINT64_MAX: that one failed */
	bool long_lived;
};

/* Free 2 MiB groups, and free blocks outside them ("stranded"). */
static void ff_shape(const struct ffit *f, uint64_t *groups, uint64_t *stranded)
{
	uint64_t g, i, n;

	*groups = *stranded = 0;
	for (g = 0; g + B2M <= f->count; g += B2M) {
		for (n = 0, i = g; i < g + B2M; i++)
			n += !ff_test(f, i);
		if (n == B2M)
			(*groups)++;
		else
			*stranded += n;
	}
}

/*
 * A file system's life on 4 GiB, filled to 85% and churned: small files
 * (1-8 blocks, a quarter of them up to 64), a fifth of them long lived;
 * tree nodes (one block, metadata), long lived; large files in 2 MiB steps
 * up to 16 MiB.  Long-lived items are freed 16 times less often.  The same
 * requests (min = want, no goal) go to the policy and to first fit.
 */
static void test_aging(void **state)
{
	const uint64_t count = 4 * B1G, target = count * 85 / 100;
	uint64_t steps = scaled(100000), step, seed = 12345, used = 0, blk, got, i;
	uint64_t fail_ours = 0, fail_ff = 0, big = 0, big_al_ours = 0, big_al_ff = 0;
	uint64_t ff_groups, ff_stranded, our_stranded;
	struct udx_alloc *a = mk(0, count);
	struct ffit f = { calloc(count / 64, sizeof(uint64_t)), count, 0 };
	size_t nlive = 0, cap = 1 << 16;
	struct aging_item *live = calloc(cap, sizeof(*live));
	struct alloc_stats st;

	if (getenv("UDX_SEED"))
		seed = tu_seed();
	for (step = 0; step < steps; step++) {
		uint64_t r = tu_rand(&seed);

		if (used < target && nlive < cap) {
			struct aging_item it = { 0, 0, 0, false };
			unsigned k = (unsigned)((r >> 8) % 100), flags = 0;

			if (k < 60) {
				it.want = 1 + (r >> 16) % ((r >> 40) % 4 == 0 ? 64 : 8);
				it.long_lived = (r >> 50) % 5 == 0;
			} else if (k < 80) {
				it.want = 1;
				flags = UDX_ALLOC_META;
				it.long_lived = true;
			} else {
				it.want = B2M * (1 + (r >> 16) % 8);
			}
			it.ours = alloc_blocks(a, it.want, it.want, 0, flags, &blk, &got) ? UINT64_MAX : blk;
			it.ff = ff_alloc(&f, it.want, &blk) ? blk : UINT64_MAX;
			fail_ours += it.ours == UINT64_MAX;
			fail_ff += it.ff == UINT64_MAX;
			if (it.want >= B2M) {
				big++;
				big_al_ours += it.ours != UINT64_MAX && it.ours % B2M == 0;
				big_al_ff += it.ff != UINT64_MAX && it.ff % B2M == 0;
			}
			live[nlive++] = it;
			used += it.want;
		} else if (nlive) {
			size_t k = (r >> 8) % nlive;
			struct aging_item it = live[k];

			if (it.long_lived && (r >> 58) % 16)
				continue;
			live[k] = live[--nlive];
			if (it.ours != UINT64_MAX)
				alloc_free(a, it.ours, it.want);
			if (it.ff != UINT64_MAX)
				ff_free(&f, it.ff, it.want);
			used -= it.want;
		}
	}
	alloc_stats(a, &st);
	ff_shape(&f, &ff_groups, &ff_stranded);
	our_stranded = st.free - st.free_2m * B2M;
	fprintf(stderr, "aging, %llu steps on 4 GiB at 85%% full:\n"
		"  free aligned 2 MiB groups: policy %llu, first fit %llu"
		" (%.1f%% and %.1f%% of free space)\n"
		"  free blocks stranded outside them: policy %llu, first fit %llu\n"
		"  2 MiB aligned large extents: policy %llu, first fit %llu of %llu\n"
		"  failed requests: policy %llu, first fit %llu\n",
		(unsigned long long)steps, (unsigned long long)st.free_2m,
		(unsigned long long)ff_groups,
		100.0 * (double)(st.free_2m * B2M) / (double)st.free,
		100.0 * (double)(ff_groups * B2M) / (double)(ff_groups * B2M + ff_stranded),
		(unsigned long long)our_stranded,
		(unsigned long long)ff_stranded, (unsigned long long)big_al_ours,
		(unsigned long long)big_al_ff, (unsigned long long)big,
		(unsigned long long)fail_ours, (unsigned long long)fail_ff);
	/* When first fit fails more requests it holds less and has more free
	 * space, so compare shares of free space: in whole aligned groups,
	 * and stranded outside them. */
	assert_true(st.free_2m * B2M * (ff_groups * B2M + ff_stranded) >
		    ff_groups * B2M * st.free);
	assert_true(our_stranded * 4 <= ff_stranded);
	assert_true(fail_ours <= fail_ff);
	assert_true(big_al_ours * 10 >= (big - fail_ours) * 9);
	for (i = 0; i < nlive; i++)
		if (live[i].ours != UINT64_MAX)
			alloc_free(a, live[i].ours, live[i].want);
	alloc_stats(a, &st);
	assert_true(st.free == count && st.free_1g == 4);
	free(live);
	free(f.bits);
	alloc_destroy(a);
}

/* ---- speed on a fragmented 64 GiB allocator ----------------------------- */

static void test_speed_fragmented_64g(void **state)
{
	const uint64_t count = 64 * B1G;        /* 64 GiB */
	uint64_t n = scaled(200000), i, seed = 42, t0, t1, t2, got;
	uint8_t *bm = calloc(count / 8, 1);
	uint64_t *blks = calloc(n, sizeof(uint64_t)), *lens = calloc(n, sizeof(uint64_t));
	struct udx_alloc *a = mk(0, count);
	struct alloc_stats st;
	double ns_alloc, ns_free;

	/* random runs: in use 1..96, free 1..48 (about 2/3 in use, every
	 * group partly used) */
	for (i = 0; i < count;) {
		uint64_t u = 1 + tu_rand(&seed) % 96, f = 1 + tu_rand(&seed) % 48, j;

		for (j = i; j < MIN(i + u, count); j++)
			bm[j / 8] |= (uint8_t)(1u << (j % 8));
		i += u + f;
	}
	alloc_load(a, bm);
	alloc_stats(a, &st);
	t0 = tu_now_ns();
	for (i = 0; i < n; i++) {
		uint64_t r = tu_rand(&seed), want = 1 + r % 16;

		assert_int_equal(alloc_blocks(a, want, 1, 0, r % 8 ? 0 : UDX_ALLOC_META,
					      &blks[i], &lens[i]), 0);
	}
	t1 = tu_now_ns();
	for (i = 0; i < n; i++)
		alloc_free(a, blks[i], lens[i]);
	t2 = tu_now_ns();
	ns_alloc = (double)(t1 - t0) / (double)n;
	ns_free = (double)(t2 - t1) / (double)n;
	fprintf(stderr, "64 GiB, %.1f%% free in %llu aligned free groups, largest run %llu: "
		"%.0f ns per small allocation, %.0f ns per free (%llu each)\n",
		100.0 * (double)st.free / (double)count, (unsigned long long)st.free_2m,
		(unsigned long long)st.largest_free, ns_alloc, ns_free, (unsigned long long)n);
	assert_true(stats_of(a).free == st.free);
	/* a 2 MiB request when no group is free: the slow path, timed once */
	t0 = tu_now_ns();
	assert_int_equal(alloc_blocks(a, B2M, 1, 0, 0, &blks[0], &got), 0);
	fprintf(stderr, "2 MiB request with no free group: %.1f us (got %llu)\n",
		(double)(tu_now_ns() - t0) / 1e3, (unsigned long long)got);
	if (!SANITIZED)
		assert_true(ns_alloc < 5000 && ns_free < 5000);
	free(bm);
	free(blks);
	free(lens);
	alloc_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_errors),
		cmocka_unit_test(test_fresh_geometries),
		cmocka_unit_test(test_small_requests_pack),
		cmocka_unit_test(test_meta_apart),
		cmocka_unit_test(test_small_breaks_group_in_most_used_region),
		cmocka_unit_test(test_2m_prefers_used_regions),
		cmocka_unit_test(test_1g_whole_regions),
		cmocka_unit_test(test_goal),
		cmocka_unit_test(test_align),
		cmocka_unit_test(test_min_want),
		cmocka_unit_test(test_free_bugs),
		cmocka_unit_test(test_mark_used),
		cmocka_unit_test(test_exclude),
		cmocka_unit_test(test_is_free),
		cmocka_unit_test(test_stats_exact),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_model_random),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_aging),
		cmocka_unit_test(test_speed_fragmented_64g),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
