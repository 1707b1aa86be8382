/* SPDX-License-Identifier: MIT */
/* The undo journal: commit, abort, crash recovery, lanes, limits.  Tests are
 * named after the crash invariants of src/fs/journal.c (J1 .. J6). */
#include "testutil.h"
#include "fs/journal.h"

#define DEV_SIZE   (16u << 20)
#define JSTART     1
#define NLANES     4
#define LANE_BLKS  16                   /* 64 KiB lanes */
#define DATA_START 256                  /* blocks below are journal */

/* A tiny bitmap allocator for the injected block ops. */
struct talloc {
	pthread_mutex_t lock;
	uint8_t used[DEV_SIZE / 4096];
	int allocs, frees;
};

static int t_alloc(void *ctx, uint64_t want, uint64_t min, uint64_t goal, unsigned flags,
		   uint64_t *blk, uint64_t *got)
{
	struct talloc *a = ctx;
	uint64_t b, n;

	pthread_mutex_lock(&a->lock);
	for (b = DATA_START; b < DEV_SIZE / 4096; b++) {
		for (n = 0; n < want && b + n < DEV_SIZE / 4096 && !a->used[b + n]; n++)
			;
		if (n >= min) {
			memset(&a->used[b], 1, n);
			*blk = b;
			*got = n;
			a->allocs++;
			pthread_mutex_unlock(&a->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return -ENOSPC;
}

static void t_free(void *ctx, uint64_t blk, uint64_t len)
{
	struct talloc *a = ctx;
	uint64_t i;

	pthread_mutex_lock(&a->lock);
	for (i = 0; i < len; i++) {
		if (!a->used[blk + i])
			abort();                /* double free */
		a->used[blk + i] = 0;
	}
	a->frees++;
	pthread_mutex_unlock(&a->lock);
}

static const struct udx_block_ops t_ops = { t_alloc, t_free };

struct fx {
	struct udx_dev *dev;
	char *base;
	struct udx_journal jn;
	struct talloc ta;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->dev = tu_anon("anon:16M");
	f->base = udx_dev_addr(f->dev);
	pthread_mutex_init(&f->ta.lock, NULL);
	journal_format(f->dev, f->base, JSTART, NLANES, LANE_BLKS);
	assert_int_equal(journal_init(&f->jn, f->dev, JSTART, NLANES, LANE_BLKS, &t_ops, &f->ta), 0);
	assert_int_equal(journal_recover(&f->jn), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	journal_exit(&f->jn);
	udx_dev_close(f->dev);
	pthread_mutex_destroy(&f->ta.lock);
	free(f);
	return 0;
}

static char *data(struct fx *f, uint64_t off)
{
	return f->base + DATA_START * 4096ull + off;
}

/* Recover a copy of the device as it is right now (a crash here). */
static struct udx_dev *crash_copy(struct fx *f, int *rolled)
{
	struct udx_dev *c = tu_anon("anon:16M");
	struct udx_journal jn;
	struct talloc ta;

	memcpy(udx_dev_addr(c), f->base, DEV_SIZE);
	memset(&ta, 0, sizeof(ta));
	pthread_mutex_init(&ta.lock, NULL);
	assert_int_equal(journal_init(&jn, c, JSTART, NLANES, LANE_BLKS, &t_ops, &ta), 0);
	*rolled = journal_recover(&jn);
	journal_exit(&jn);
	pthread_mutex_destroy(&ta.lock);
	return c;
}

/* A crash copy in which [off, off + len) holds @bytes instead (a range that
 * did not reach the media), recovered. */
static struct udx_dev *crash_copy_with(struct fx *f, uint64_t off, const char *bytes,
				       size_t len, int *rolled)
{
	struct udx_dev *c = tu_anon("anon:16M");
	struct udx_journal jn;
	struct talloc ta;

	memcpy(udx_dev_addr(c), f->base, DEV_SIZE);
	if (bytes)
		memcpy((char *)udx_dev_addr(c) + DATA_START * 4096ull + off, bytes, len);
	memset(&ta, 0, sizeof(ta));
	pthread_mutex_init(&ta.lock, NULL);
	assert_int_equal(journal_init(&jn, c, JSTART, NLANES, LANE_BLKS, &t_ops, &ta), 0);
	*rolled = journal_recover(&jn);
	journal_exit(&jn);
	pthread_mutex_destroy(&ta.lock);
	return c;
}

static void test_commit_keeps_changes(void **state)
{
	struct fx *f = *state;
	struct udx_dev *c;
	struct udx_tx tx;
	int rolled;

	strcpy(data(f, 0), "old");
	tx_begin(&f->jn, &tx);
	assert_int_equal(tx_log(&tx, data(f, 0), 4), 0);
	strcpy(data(f, 0), "new");
	assert_int_equal(tx_commit(&tx), 0);
	assert_string_equal(data(f, 0), "new");
	/* J3: a committed transaction is not rolled back */
	c = crash_copy(f, &rolled);
	assert_int_equal(rolled, 0);
	assert_string_equal((char *)udx_dev_addr(c) + DATA_START * 4096, "new");
	udx_dev_close(c);
}

static void test_abort_restores(void **state)
{
	struct fx *f = *state;
	struct udx_dev *c;
	struct udx_tx tx;
	int rolled;

	strcpy(data(f, 100), "before");
	strcpy(data(f, 9000), "second");
	tx_begin(&f->jn, &tx);
	assert_int_equal(tx_log(&tx, data(f, 100), 7), 0);
	strcpy(data(f, 100), "AFTER!");
	assert_int_equal(tx_log(&tx, data(f, 9000), 7), 0);
	memset(data(f, 9000), 'x', 7);
	assert_int_equal(tx_log(&tx, data(f, 100), 3), 0);     /* logged already */
	data(f, 100)[0] = 'Z';
	tx_abort(&tx);
	assert_string_equal(data(f, 100), "before");
	assert_string_equal(data(f, 9000), "second");
	/* J6: the abort closed the generation; recovery does nothing more */
	c = crash_copy(f, &rolled);
	assert_int_equal(rolled, 0);
	udx_dev_close(c);
	/* the lane is reusable */
	tx_begin(&f->jn, &tx);
	assert_int_equal(tx_log(&tx, data(f, 100), 7), 0);
	strcpy(data(f, 100), "third");
	assert_int_equal(tx_commit(&tx), 0);
	assert_string_equal(data(f, 100), "third");
}

/* J1, J3, J4: a crash before the commit word rolls every change back. */
static void test_crash_before_commit(void **state)
{
	struct fx *f = *state;
	struct udx_tx t1, t2;
	struct udx_dev *c;
	char *cb;
	int rolled, i;

	for (i = 0; i < 8192; i++)
		data(f, 0)[i] = (char)i;
	tx_begin(&f->jn, &t1);
	tx_begin(&f->jn, &t2);                          /* another lane */
	assert_true(t1.tx_lane != t2.tx_lane);
	assert_int_equal(tx_log(&t1, data(f, 0), 4096), 0);
	memset(data(f, 0), 0xaa, 4096);
	assert_int_equal(tx_log(&t2, data(f, 4096), 100), 0);
	memset(data(f, 4096), 0xbb, 100);
	assert_int_equal(tx_log(&t1, data(f, 4096 + 200), 300), 0);
	memset(data(f, 4096 + 200), 0xcc, 300);
	c = crash_copy(f, &rolled);
	assert_true(rolled >= 3);
	cb = (char *)udx_dev_addr(c) + DATA_START * 4096;
	for (i = 0; i < 8192; i++)
		assert_int_equal(cb[i], (char)i);
	udx_dev_close(c);
	/* after t2 commits, only t1 rolls back */
	assert_int_equal(tx_commit(&t2), 0);
	c = crash_copy(f, &rolled);
	cb = (char *)udx_dev_addr(c) + DATA_START * 4096;
	for (i = 0; i < 4096; i++)
		assert_int_equal(cb[i], (char)i);
	for (i = 4096; i < 4196; i++)
		assert_int_equal(cb[i], (char)0xbb);
	for (i = 4296; i < 4596; i++)
		assert_int_equal(cb[i], (char)i);
	udx_dev_close(c);
	assert_int_equal(tx_commit(&t1), 0);
}

/* J1: a torn (unfinished) record ends the scan; its range was never changed. */
static void test_torn_record(void **state)
{
	struct fx *f = *state;
	struct udx_tx tx;
	struct udx_dev *c;
	struct udx_jrec *r;
	int rolled;

	strcpy(data(f, 0), "aaaa");
	strcpy(data(f, 64), "bbbb");
	tx_begin(&f->jn, &tx);
	assert_int_equal(tx_log(&tx, data(f, 0), 5), 0);
	strcpy(data(f, 0), "AAAA");
	assert_int_equal(tx_log(&tx, data(f, 64), 5), 0);
	/* crash while the second record was being written: corrupt it */
	r = (struct udx_jrec *)(tx.tx_lane->jl_area + tx.tx_pos - 64);    /* the 2nd */
	assert_int_equal(r->r_seq, 1);
	r->r_checksum ^= 1;
	c = crash_copy(f, &rolled);
	assert_int_equal(rolled, 1);
	assert_string_equal((char *)udx_dev_addr(c) + DATA_START * 4096, "aaaa");
	assert_string_equal((char *)udx_dev_addr(c) + DATA_START * 4096 + 64, "bbbb");
	udx_dev_close(c);
	r->r_checksum ^= 1;
	tx_abort(&tx);
}

/* J2: the commit record reached the media in the same drain as the data,
 * but one changed range did not: its content checksum tells, and the
 * transaction is rolled back as a whole. */
static void test_commit_torn_by_crash(void **state)
{
	struct fx *f = *state;
	struct udx_tx tx;
	struct udx_dev *c;
	char *cb;
	int rolled;

	strcpy(data(f, 0), "A-old");
	strcpy(data(f, 8192), "B-old");
	tx_begin(&f->jn, &tx);
	assert_int_equal(tx_log(&tx, data(f, 0), 6), 0);
	strcpy(data(f, 0), "A-new");
	assert_int_equal(tx_log(&tx, data(f, 8192), 6), 0);
	strcpy(data(f, 8192), "B-new");
	assert_int_equal(tx_commit(&tx), 0);
	/* the image a crash in that drain could leave: B never got there */
	c = crash_copy_with(f, 8192, "B-old", 6, &rolled);
	cb = (char *)udx_dev_addr(c) + DATA_START * 4096;
	assert_int_equal(rolled, 2);
	assert_string_equal(cb, "A-old");
	assert_string_equal(cb + 8192, "B-old");
	udx_dev_close(c);
	/* and with every range there, it stands */
	c = crash_copy_with(f, 0, NULL, 0, &rolled);
	cb = (char *)udx_dev_addr(c) + DATA_START * 4096;
	assert_int_equal(rolled, 0);
	assert_string_equal(cb, "A-new");
	assert_string_equal(cb + 8192, "B-new");
	udx_dev_close(c);
}

/* J3: a completed commit whose range a later transaction (another lane)
 * changed, not yet committed, at the crash: the later one is rolled back to
 * the first one's values; the first one is not rolled back although its
 * content checksum no longer matches. */
static void test_later_change_keeps_commit(void **state)
{
	struct fx *f = *state;
	struct udx_tx t1, t2, hold;
	struct udx_dev *c;
	int rolled;

	strcpy(data(f, 0), "v0");
	tx_begin(&f->jn, &hold);                        /* keep t2 off t1's lane */
	tx_begin(&f->jn, &t1);
	assert_int_equal(tx_log(&t1, data(f, 0), 3), 0);
	strcpy(data(f, 0), "v1");
	assert_int_equal(tx_commit(&t1), 0);
	tx_begin(&f->jn, &t2);
	assert_int_equal(tx_log(&t2, data(f, 0), 3), 0);
	strcpy(data(f, 0), "v2");
	c = crash_copy_with(f, 0, NULL, 0, &rolled);
	assert_int_equal(rolled, 1);                    /* t2's one record */
	assert_string_equal((char *)udx_dev_addr(c) + DATA_START * 4096, "v1");
	udx_dev_close(c);
	tx_abort(&t2);
	assert_string_equal(data(f, 0), "v1");
	assert_int_equal(tx_commit(&hold), 0);
}

/*
 * J3 under concurrency: a commit numbered below one that completed may still
 * be in its drain.  A record written then must not carry the lower
 * watermark: tx_append waits until it covers every completed commit, or a
 * later change of the completed commit's ranges would roll it back.
 */
struct wm_arg {
	struct fx *f;
	struct udx_tx tx;
	int done;                       /* atomic */
};

static void *wm_logger(void *arg)
{
	struct wm_arg *a = arg;

	tx_begin(&a->f->jn, &a->tx);
	assert_int_equal(tx_log(&a->tx, data(a->f, 4096), 8), 0);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_record_waits_for_settled_watermark(void **state)
{
	struct fx *f = *state;
	struct udx_journal *jn = &f->jn;
	struct wm_arg a = { .f = f };
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	struct udx_jrec *r;
	pthread_t th;
	uint64_t w;

	/* commit w + 1 is in flight, w + 2 has completed */
	pthread_mutex_lock(&jn->jn_lock);
	w = jn->jn_wmark;
	jn->jn_next_seq = w + 3;
	jn->jn_done[(w + 2) % JN_RING] = w + 2;
	jn->jn_maxdone = w + 2;
	pthread_mutex_unlock(&jn->jn_lock);

	pthread_create(&th, NULL, wm_logger, &a);
	nanosleep(&ts, NULL);
	assert_int_equal(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE), 0);   /* waits */

	/* w + 1 completes: the watermark jumps to w + 2 */
	pthread_mutex_lock(&jn->jn_lock);
	jn->jn_done[(w + 1) % JN_RING] = w + 1;
	while (jn->jn_done[(jn->jn_wmark + 1) % JN_RING] == jn->jn_wmark + 1)
		__atomic_store_n(&jn->jn_wmark, jn->jn_wmark + 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&jn->jn_wcv);
	pthread_mutex_unlock(&jn->jn_lock);
	pthread_join(th, NULL);
	/* the first record of its slot (journal.c: odd generations use the
	 * second half of the lane, even ones start at byte 64) */
	r = (struct udx_jrec *)(a.tx.tx_lane->jl_area +
				((a.tx.tx_gen & 1) ? a.tx.tx_lane->jl_size / 2 : 64));
	assert_int_equal(r->r_wmark, w + 2);
	tx_abort(&a.tx);
}

/*
 * J3 and file data: a committed transaction that logged file data (a
 * file's tail) stays complete when the data changes later without a
 * transaction (an overwrite): data records are not in the content checksum.
 */
static void test_data_record_outside_checksum(void **state)
{
	struct fx *f = *state;
	struct udx_tx t;
	struct udx_dev *c;
	int rolled;

	strcpy(data(f, 0), "meta0");
	memset(data(f, 8192), 0, 16);
	tx_begin(&f->jn, &t);
	assert_int_equal(tx_log(&t, data(f, 0), 6), 0);
	assert_int_equal(tx_log_data(&t, data(f, 8192), 16), 0);
	strcpy(data(f, 0), "meta1");
	strcpy(data(f, 8192), "tail-data");
	assert_int_equal(tx_commit(&t), 0);
	/* an overwrite of the data, no transaction, then a crash */
	strcpy(data(f, 8192), "overwritten");
	c = crash_copy_with(f, 0, NULL, 0, &rolled);
	assert_int_equal(rolled, 0);
	assert_string_equal((char *)udx_dev_addr(c) + DATA_START * 4096, "meta1");
	assert_string_equal((char *)udx_dev_addr(c) + DATA_START * 4096 + 8192, "overwritten");
	udx_dev_close(c);
}

/* J6: recovering twice (a crash during recovery) gives the same bytes. */
static void test_recover_idempotent(void **state)
{
	struct fx *f = *state;
	struct udx_journal jn;
	struct udx_tx tx;
	struct udx_dev *c;
	int rolled;

	strcpy(data(f, 0), "orig");
	tx_begin(&f->jn, &tx);
	assert_int_equal(tx_log(&tx, data(f, 0), 5), 0);
	strcpy(data(f, 0), "chg1");
	c = crash_copy(f, &rolled);
	assert_int_equal(rolled, 1);
	/* roll back again on the recovered copy: nothing left to do */
	assert_int_equal(journal_init(&jn, c, JSTART, NLANES, LANE_BLKS, &t_ops, &f->ta), 0);
	assert_int_equal(journal_recover(&jn), 0);
	assert_string_equal((char *)udx_dev_addr(c) + DATA_START * 4096, "orig");
	journal_exit(&jn);
	udx_dev_close(c);
	tx_abort(&tx);
}

/* J5: frees reach the allocator after commit; allocations undo on abort. */
static void test_alloc_free_order(void **state)
{
	struct fx *f = *state;
	struct udx_tx tx;
	uint64_t b1, b2, got;

	tx_begin(&f->jn, &tx);
	assert_int_equal(tx_alloc(&tx, 4, 4, 0, 0, &b1, &got), 0);
	assert_true(got == 4);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(f->ta.used[b1], 1);

	tx_begin(&f->jn, &tx);
	assert_int_equal(tx_free(&tx, b1, 4), 0);
	assert_int_equal(f->ta.used[b1], 1);            /* not yet */
	assert_int_equal(tx_alloc(&tx, 2, 1, 0, 0, &b2, &got), 0);
	assert_true(b2 != b1);                          /* the freed ones stay taken */
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(f->ta.used[b1], 0);
	assert_int_equal(f->ta.used[b2], 1);

	tx_begin(&f->jn, &tx);
	assert_int_equal(tx_alloc(&tx, 8, 8, 0, 0, &b1, &got), 0);
	tx_abort(&tx);
	assert_int_equal(f->ta.used[b1], 0);            /* given back */
}

static void test_lane_full_is_sticky(void **state)
{
	struct fx *f = *state;
	struct udx_tx tx;
	int i, ret = 0;

	strcpy(data(f, 0), "keep");
	tx_begin(&f->jn, &tx);
	assert_int_equal(tx_log(&tx, data(f, 0), 5), 0);
	strcpy(data(f, 0), "gone");
	for (i = 1; i < 64 && ret == 0; i++) {
		ret = tx_log(&tx, data(f, (uint64_t)i * 4096), 4096);
		if (ret == 0)
			memset(data(f, (uint64_t)i * 4096), 0x5a, 4096);
	}
	assert_int_equal(ret, -ENOSPC);
	assert_non_null(strstr(udx_errmsg(), "journal lane"));
	assert_int_equal(tx_log(&tx, data(f, 100), 1), -ENOSPC);   /* sticky */
	assert_int_equal(tx_commit(&tx), -ENOSPC);      /* rolled back */
	assert_string_equal(data(f, 0), "keep");
}

static void test_bad_lane_header(void **state)
{
	struct fx *f = *state;
	struct udx_journal jn;

	((struct udx_jlane *)(f->base + JSTART * 4096))->j_magic = 0;
	assert_int_equal(journal_init(&jn, f->dev, JSTART, NLANES, LANE_BLKS, &t_ops, &f->ta), 0);
	assert_int_equal(journal_recover(&jn), -EUCLEAN);
	journal_exit(&jn);
	((struct udx_jlane *)(f->base + JSTART * 4096))->j_magic = UDX_JLANE_MAGIC;
}

/* More threads than lanes, each changing its own region in transactions that
 * commit or abort at random; in the end each region holds exactly the
 * values of its committed transactions. */
struct worker {
	struct fx *f;
	int id;
	uint64_t seed;
	uint32_t model[256];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint32_t *reg = (uint32_t *)data(w->f, 65536 + (uint64_t)w->id * 4096);
	int round, i;

	for (round = 0; round < 300; round++) {
		struct udx_tx tx;
		bool commit = tu_rand(&w->seed) % 3 != 0;
		uint32_t shadow[256];

		memcpy(shadow, w->model, sizeof(shadow));
		tx_begin(&w->f->jn, &tx);
		for (i = 0; i < 8; i++) {
			unsigned k = (unsigned)(tu_rand(&w->seed) % 256);

			if (tx_log(&tx, &reg[k], 4) != 0)
				abort();
			reg[k] = (uint32_t)tu_rand(&w->seed);
			shadow[k] = reg[k];
		}
		if (commit) {
			if (tx_commit(&tx) != 0)
				abort();
			memcpy(w->model, shadow, sizeof(shadow));
		} else {
			tx_abort(&tx);
		}
		if (memcmp(reg, w->model, sizeof(w->model)) != 0)
			abort();
	}
	return NULL;
}

static void test_threads_share_lanes(void **state)
{
	struct fx *f = *state;
	uint64_t seed = tu_seed();
	struct worker w[8];
	pthread_t th[8];
	int i;

	for (i = 0; i < 8; i++) {
		w[i] = (struct worker){ f, i, seed + (uint64_t)i, { 0 } };
		memset(data(f, 65536 + (uint64_t)i * 4096), 0, 4096);
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 8; i++)
		assert_memory_equal(data(f, 65536 + (uint64_t)i * 4096), w[i].model,
				    sizeof(w[i].model));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_keeps_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_restores, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_torn_by_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_later_change_keeps_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_free_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lane_full_is_sticky, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_lane_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_share_lanes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_waits_for_settled_watermark, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_data_record_outside_checksum, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
