/* SPDX-License-Identifier: MIT */
/* pgmap and folios: every transition and error path, and a model check. */
#include "testutil.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

struct freed {
	uint64_t off;
	unsigned order;
};

static struct freed freed_log[4096];
static int nfreed;

static void log_free(struct udx_pgmap *pg, uint64_t off, unsigned order, void *data)
{
	int i = __atomic_fetch_add(&nfreed, 1, __ATOMIC_RELAXED);

	if (i < (int)(sizeof(freed_log) / sizeof(freed_log[0])))
		freed_log[i] = (struct freed){ off, order };
}

static const struct udx_pgmap_ops log_ops = { .folio_free = log_free };

struct fixture {
	struct udx_dev *dev;
	struct udx_pgmap *pg;
};

static int setup_spec(void **state, const char *spec)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	fx->dev = tu_anon(spec);
	assert_int_equal(udx_memremap(fx->dev, &log_ops, NULL, &fx->pg), 0);
	nfreed = 0;
	*state = fx;
	return 0;
}

static int setup_64m(void **state) { return setup_spec(state, "anon:64M"); }
static int setup_2g(void **state) { return setup_spec(state, "anon:2G"); }

static int teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->pg) {
		udx_pgmap_kill(fx->pg);
		/* a failed test may leave folios held: report, do not hang */
		if (udx_pgmap_wait(fx->pg, 2000000000) != 0) {
			fprintf(stderr, "teardown: folios still live; leaking the pgmap\n");
			return -1;
		}
		udx_pgmap_free(fx->pg);
	}
	udx_dev_close(fx->dev);
	free(fx);
	return 0;
}

static uint64_t live_folios(struct udx_pgmap *pg)
{
	struct udx_pgmap_stats st;

	udx_pgmap_stats(pg, &st);
	return st.live_folios;
}

static uint64_t liveness(struct udx_pgmap *pg)
{
	return udx_liveref_read(udx_pgmap_liveref(pg));
}

static void test_fresh(void **state)
{
	struct fixture *fx = *state;
	struct udx_pgmap_stats st;

	udx_pgmap_stats(fx->pg, &st);
	assert_true(st.npages == (64 * MiB) / 4096);
	assert_true(st.live_folios == 0);
	assert_true(st.liveref == 1);
	assert_true(st.meta_bytes_per_page <= 8);
	assert_false(st.dying);
	assert_false(st.claimed);
}

/* The decomposition, computed independently: the largest aligned order that
 * fits, from the low end. */
static void expect_split(struct udx_pgmap *pg, uint64_t off, uint64_t len)
{
	struct udx_folio *f[64];
	uint64_t pos = off;
	size_t nr, i;

	assert_int_equal(udx_pgmap_request(pg, off, len, f, 64, &nr), 0);
	assert_true(nr == udx_pgmap_nr_folios(off, len));
	for (i = 0; i < nr; i++) {
		unsigned o = 0;

		while (o < 18 && (pos & ((4096ull << (o + 1)) - 1)) == 0 &&
		       (4096ull << (o + 1)) <= off + len - pos)
			o++;
		assert_true(udx_folio_offset(pg, f[i]) == pos);
		assert_int_equal(udx_folio_order(f[i]), o);
		assert_int_equal(udx_folio_refcount(f[i]), 1);
		assert_ptr_equal(udx_folio_addr(pg, f[i]),
				 (char *)udx_dev_addr(udx_pgmap_dev(pg)) + pos);
		assert_true(udx_folio_size(f[i]) == 4096ull << o);
		pos += udx_folio_size(f[i]);
	}
	assert_true(pos == off + len);
	assert_true(liveness(pg) == 1 + nr);
	assert_true(live_folios(pg) == nr);
	for (i = 0; i < nr; i++)
		udx_folio_put(pg, f[i]);
	assert_true(liveness(pg) == 1);
	assert_true(live_folios(pg) == 0);
}

static void test_request_maximal_folios(void **state)
{
	struct fixture *fx = *state;

	expect_split(fx->pg, 0, 4096);
	expect_split(fx->pg, 0, 2 * MiB);
	expect_split(fx->pg, 4096, 6 * MiB + 8192);
	expect_split(fx->pg, 12 * 4096, 3 * MiB);
	expect_split(fx->pg, 0, 64 * MiB);
	expect_split(fx->pg, 60 * MiB, 4 * MiB);
	assert_int_equal(nfreed, 0 + (int)(udx_pgmap_nr_folios(0, 4096) +
		udx_pgmap_nr_folios(0, 2 * MiB) + udx_pgmap_nr_folios(4096, 6 * MiB + 8192) +
		udx_pgmap_nr_folios(12 * 4096, 3 * MiB) + udx_pgmap_nr_folios(0, 64 * MiB) +
		udx_pgmap_nr_folios(60 * MiB, 4 * MiB)));
}

static void test_same_shape_takes_a_reference(void **state)
{
	struct fixture *fx = *state;
	struct udx_folio *a, *b;

	assert_int_equal(udx_pgmap_request_order(fx->pg, 2 * MiB, 9, &a), 0);
	assert_true(liveness(fx->pg) == 2);
	assert_int_equal(udx_pgmap_request_order(fx->pg, 2 * MiB, 9, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(udx_folio_refcount(a), 2);
	assert_true(liveness(fx->pg) == 2);     /* no second liveness ref */
	udx_folio_put(fx->pg, b);
	assert_int_equal(nfreed, 0);
	assert_int_equal(udx_folio_refcount(a), 1);
	udx_folio_put(fx->pg, a);
	assert_int_equal(nfreed, 1);
	assert_true(freed_log[0].off == 2 * MiB && freed_log[0].order == 9);
	assert_true(liveness(fx->pg) == 1);
}

static void test_get_try_get_put(void **state)
{
	struct fixture *fx = *state;
	struct udx_folio *f, *g;

	assert_int_equal(udx_pgmap_request_order(fx->pg, 8192, 0, &f), 0);
	udx_folio_get(fx->pg, f);
	assert_true(udx_folio_try_get(fx->pg, f));
	assert_int_equal(udx_folio_refcount(f), 3);
	udx_folio_put(fx->pg, f);
	udx_folio_put(fx->pg, f);
	udx_folio_put(fx->pg, f);
	assert_int_equal(nfreed, 1);
	assert_int_equal(udx_folio_refcount(f), 0);
	assert_false(udx_folio_try_get(fx->pg, f));     /* idle stays idle */
	assert_int_equal(udx_pgmap_folio_find(fx->pg, 8192, &g), -ENOENT);
}

/* Every kind of overlap with a live folio of another shape is refused, and
 * the refusal changes nothing. */
static void expect_busy(struct udx_pgmap *pg, uint64_t off, unsigned order)
{
	uint64_t live = live_folios(pg), lv = liveness(pg);
	struct udx_folio *f = NULL;

	assert_int_equal(udx_pgmap_request_order(pg, off, order, &f), -EBUSY);
	assert_null(f);
	assert_non_null(strstr(udx_errmsg(), "another shape"));
	assert_true(live_folios(pg) == live);
	assert_true(liveness(pg) == lv);
}

static void test_other_shape_refused(void **state)
{
	struct fixture *fx = *state;
	struct udx_folio *mid, *small, *f[8];
	size_t nr;

	/* a 2 MiB folio at 4 MiB */
	assert_int_equal(udx_pgmap_request_order(fx->pg, 4 * MiB, 9, &mid), 0);
	expect_busy(fx->pg, 4 * MiB, 0);                /* same head, smaller */
	expect_busy(fx->pg, 5 * MiB, 8);                /* inside */
	expect_busy(fx->pg, 6 * MiB - 4096, 0);         /* last page */
	expect_busy(fx->pg, 4 * MiB, 10);               /* same head, bigger */
	expect_busy(fx->pg, 0, 13);                     /* contains it */
	expect_busy(fx->pg, 0, 14);
	/* neighbours are fine */
	assert_int_equal(udx_pgmap_request_order(fx->pg, 6 * MiB, 0, &small), 0);
	expect_busy(fx->pg, 6 * MiB, 9);                /* contains the 4 KiB one */
	expect_busy(fx->pg, 0, 11);                     /* contains both */
	/* all or nothing: a range whose last folio collides makes none live */
	assert_int_equal(udx_pgmap_request(fx->pg, 0, 6 * MiB + 4096 * 2, f, 8, &nr), -EBUSY);
	assert_true(live_folios(fx->pg) == 2);
	assert_true(liveness(fx->pg) == 3);
	/* a range that reuses the same shapes takes references on them */
	assert_int_equal(udx_pgmap_request(fx->pg, 4 * MiB, 2 * MiB + 4096, f, 8, &nr), 0);
	assert_int_equal((int)nr, 2);
	assert_ptr_equal(f[0], mid);
	assert_ptr_equal(f[1], small);
	assert_int_equal(udx_folio_refcount(mid), 2);
	assert_true(live_folios(fx->pg) == 2);
	udx_folio_put(fx->pg, f[0]);
	udx_folio_put(fx->pg, f[1]);
	udx_folio_put(fx->pg, mid);
	udx_folio_put(fx->pg, small);
	assert_int_equal(nfreed, 2);
	/* and now the big one fits */
	assert_int_equal(udx_pgmap_request_order(fx->pg, 0, 14, &mid), 0);
	udx_folio_put(fx->pg, mid);
}

static void test_bad_requests(void **state)
{
	struct fixture *fx = *state;
	struct udx_folio *f[4];
	size_t nr;

	assert_int_equal(udx_pgmap_request(fx->pg, 100, 4096, f, 4, &nr), -EINVAL);
	assert_int_equal(udx_pgmap_request(fx->pg, 0, 100, f, 4, &nr), -EINVAL);
	assert_int_equal(udx_pgmap_request(fx->pg, 0, 0, f, 4, &nr), -EINVAL);
	assert_int_equal(udx_pgmap_request(fx->pg, 64 * MiB, 4096, f, 4, &nr), -EINVAL);
	assert_non_null(strstr(udx_errmsg(), "beyond the device"));
	assert_int_equal(udx_pgmap_request(fx->pg, 60 * MiB, 8 * MiB, f, 4, &nr), -EINVAL);
	assert_int_equal(udx_pgmap_request(fx->pg, 4096, UINT64_MAX - 4095, f, 4, &nr), -EINVAL);
	assert_int_equal(udx_pgmap_request(fx->pg, 4096, 4 * MiB, f, 4, &nr), -ENOBUFS);
	assert_int_equal(udx_pgmap_request_order(fx->pg, 4096, 1, f), -EINVAL);
	assert_non_null(strstr(udx_errmsg(), "not aligned"));
	assert_int_equal(udx_pgmap_request_order(fx->pg, 0, 19, f), -EINVAL);
	assert_int_equal(udx_pgmap_request_order(fx->pg, 0, 18, f), -EINVAL); /* > 64 MiB */
	assert_int_equal(udx_pgmap_folio_find(fx->pg, 64 * MiB, f), -EINVAL);
	assert_true(live_folios(fx->pg) == 0);
	assert_true(liveness(fx->pg) == 1);
}

static void test_gigabyte_folio(void **state)
{
	struct fixture *fx = *state;
	struct udx_folio *g, *h, *x;

	assert_int_equal(udx_pgmap_request_order(fx->pg, GiB, 18, &g), 0);
	assert_true(udx_folio_size(g) == GiB);
	expect_busy(fx->pg, GiB + 777 * 4096, 0);
	expect_busy(fx->pg, 2 * GiB - 2 * MiB, 9);
	assert_int_equal(udx_pgmap_folio_find(fx->pg, GiB + 12345 * 4096, &h), 0);
	assert_ptr_equal(g, h);
	assert_int_equal(udx_folio_refcount(g), 2);
	udx_folio_put(fx->pg, h);
	/* the first GiB is independent */
	assert_int_equal(udx_pgmap_request_order(fx->pg, GiB - 4096, 0, &x), 0);
	expect_busy(fx->pg, 0, 18);
	udx_folio_put(fx->pg, x);
	udx_folio_put(fx->pg, g);
	assert_int_equal(nfreed, 2);
	assert_true(freed_log[1].off == GiB && freed_log[1].order == 18);
	/* a range across the GiB boundary gets folios on each side */
	{
		struct udx_folio *f[64];
		size_t nr, i;

		assert_int_equal(udx_pgmap_request(fx->pg, GiB - 2 * MiB, 4 * MiB, f, 64, &nr), 0);
		assert_int_equal((int)nr, 2);
		assert_int_equal(udx_folio_order(f[0]), 9);
		assert_int_equal(udx_folio_order(f[1]), 9);
		for (i = 0; i < nr; i++)
			udx_folio_put(fx->pg, f[i]);
	}
}

static void test_find(void **state)
{
	struct fixture *fx = *state;
	struct udx_folio *a, *b;

	assert_int_equal(udx_pgmap_request_order(fx->pg, 8 * MiB, 9, &a), 0);
	assert_int_equal(udx_pgmap_folio_find(fx->pg, 8 * MiB + 5 * 4096 + 7, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(udx_folio_refcount(a), 2);
	udx_folio_put(fx->pg, b);
	assert_int_equal(udx_pgmap_folio_find(fx->pg, 10 * MiB, &b), -ENOENT);
	assert_int_equal(udx_pgmap_folio_find(fx->pg, 8 * MiB - 1, &b), -ENOENT);
	udx_folio_put(fx->pg, a);
	assert_int_equal(udx_pgmap_folio_find(fx->pg, 8 * MiB, &b), -ENOENT);
}

/* ---- the holder and memory failure -------------------------------------- */

struct note {
	uint64_t off, len;
	unsigned flags;
	int calls;
};

static int note_failure(void *holder, uint64_t off, uint64_t len, unsigned flags)
{
	struct note *n = holder;

	n->off = off;
	n->len = len;
	n->flags = flags;
	n->calls++;
	return 0;
}

static const struct udx_holder_ops note_ops = { .notify_failure = note_failure };

static void test_holder_claim(void **state)
{
	struct fixture *fx = *state;
	struct note a = { 0 }, b = { 0 };
	struct udx_pgmap_stats st;

	assert_int_equal(udx_pgmap_claim(fx->pg, &note_ops, &a), 0);
	assert_int_equal(udx_pgmap_claim(fx->pg, &note_ops, &b), -EBUSY);
	udx_pgmap_stats(fx->pg, &st);
	assert_true(st.claimed);
	udx_pgmap_unclaim(fx->pg, &a);
	assert_int_equal(udx_pgmap_claim(fx->pg, &note_ops, &b), 0);
	/* removal notice goes to the holder before the pgmap dies */
	udx_pgmap_kill(fx->pg);
	assert_int_equal(b.calls, 1);
	assert_true(b.flags == UDX_MF_PRE_REMOVE);
	assert_true(b.off == 0 && b.len == 64 * MiB);
	assert_int_equal(a.calls, 0);
	assert_int_equal(udx_pgmap_claim(fx->pg, &note_ops, &a), -EBUSY);
	udx_pgmap_unclaim(fx->pg, &b);
	assert_int_equal(udx_pgmap_claim(fx->pg, &note_ops, &a), -ENXIO);
	assert_int_equal(udx_pgmap_wait(fx->pg, -1), 0);
	udx_pgmap_free(fx->pg);
	fx->pg = NULL;
}

static void test_memory_failure(void **state)
{
	struct fixture *fx = *state;
	struct note n = { 0 };
	struct udx_folio *f, *fs[16];
	struct udx_pgmap_stats st;
	size_t nr;

	/* no holder: recorded, nobody to tell */
	assert_int_equal(udx_pgmap_memory_failure(fx->pg, 16 * MiB, 4096, 0), 0);
	assert_int_equal(udx_pgmap_claim(fx->pg, &note_ops, &n), 0);
	assert_int_equal(udx_pgmap_memory_failure(fx->pg, 32 * MiB + 8192, 8192, 0), 0);
	assert_int_equal(n.calls, 1);
	assert_true(n.off == 32 * MiB + 8192 && n.len == 8192 && n.flags == UDX_MF_POISON);
	udx_pgmap_stats(fx->pg, &st);
	assert_true(st.poisoned_pages == 3);
	assert_true(udx_pgmap_poisoned(fx->pg, 32 * MiB, 2 * MiB));
	assert_true(udx_pgmap_poisoned(fx->pg, 32 * MiB + 12288, 1));
	assert_false(udx_pgmap_poisoned(fx->pg, 32 * MiB + 16384, 4096));
	assert_false(udx_pgmap_poisoned(fx->pg, 32 * MiB, 8192));
	assert_int_equal(udx_pgmap_request_order(fx->pg, 32 * MiB, 9, &f), -EHWPOISON);
	assert_int_equal(udx_pgmap_request(fx->pg, 30 * MiB, 4 * MiB, fs, 16, &nr), -EHWPOISON);
	assert_int_equal(udx_pgmap_request_order(fx->pg, 16 * MiB, 0, &f), -EHWPOISON);
	assert_true(liveness(fx->pg) == 1);
	/* pages beside it are fine */
	assert_int_equal(udx_pgmap_request_order(fx->pg, 32 * MiB, 1, &f), 0);
	udx_folio_put(fx->pg, f);
	/* adjacent failures merge; clearing part splits */
	assert_int_equal(udx_pgmap_memory_failure(fx->pg, 32 * MiB + 16384, 4096, 0), 0);
	udx_pgmap_stats(fx->pg, &st);
	assert_true(st.poisoned_pages == 4);
	assert_int_equal(udx_pgmap_clear_poison(fx->pg, 32 * MiB + 12288, 4096), 0);
	udx_pgmap_stats(fx->pg, &st);
	assert_true(st.poisoned_pages == 3);
	assert_int_equal(udx_pgmap_request_order(fx->pg, 32 * MiB + 12288, 0, &f), 0);
	udx_folio_put(fx->pg, f);
	assert_int_equal(udx_pgmap_clear_poison(fx->pg, 0, 64 * MiB), 0);
	assert_int_equal(udx_pgmap_request_order(fx->pg, 32 * MiB, 9, &f), 0);
	udx_folio_put(fx->pg, f);
	/* bad ranges */
	assert_int_equal(udx_pgmap_memory_failure(fx->pg, 64 * MiB, 4096, 0), -EINVAL);
	assert_int_equal(udx_pgmap_memory_failure(fx->pg, 1, 4096, 0), -EINVAL);
	assert_int_equal(udx_pgmap_memory_failure(fx->pg, 0, 0, 0), -EINVAL);
	udx_pgmap_unclaim(fx->pg, &n);
}

/* ---- dying ---------------------------------------------------------------- */

static void test_dying_refuses_new_folios(void **state)
{
	struct fixture *fx = *state;
	struct udx_folio *held, *f;

	assert_int_equal(udx_pgmap_request_order(fx->pg, 0, 9, &held), 0);
	udx_pgmap_kill(fx->pg);
	assert_true(udx_pgmap_dying(fx->pg));
	assert_int_equal(udx_pgmap_request_order(fx->pg, 4 * MiB, 0, &f), -ENXIO);
	assert_non_null(strstr(udx_errmsg(), "removed"));
	/* liveness is not existence: more references on a live folio are fine */
	assert_int_equal(udx_pgmap_request_order(fx->pg, 0, 9, &f), 0);
	assert_ptr_equal(f, held);
	udx_folio_get(fx->pg, held);
	assert_int_equal(udx_folio_refcount(held), 3);
	assert_true(liveness(fx->pg) == 1);     /* the folio's; initial is gone */
	udx_folio_put(fx->pg, held);
	udx_folio_put(fx->pg, held);
	assert_int_equal(udx_pgmap_wait(fx->pg, 1000000), -ETIMEDOUT);
	udx_folio_put(fx->pg, held);            /* the last: teardown completes */
	assert_int_equal(udx_pgmap_wait(fx->pg, 0), 0);
	assert_true(liveness(fx->pg) == 0);
	udx_pgmap_free(fx->pg);
	fx->pg = NULL;
}

/* ---- waiting for idle ------------------------------------------------------ */

struct delayed_put {
	struct udx_pgmap *pg;
	struct udx_folio *f;
	int n;
};

static void *put_later(void *arg)
{
	struct delayed_put *d = arg;
	struct timespec ts = { 0, 30 * 1000 * 1000 };
	int i;

	for (i = 0; i < d->n; i++) {
		nanosleep(&ts, NULL);
		udx_folio_put(d->pg, d->f);
	}
	return NULL;
}

struct cb_log {
	int drops, retakes, stop_after;
};

static int wait_cb(void *arg, bool relock)
{
	struct cb_log *l = arg;

	if (relock)
		l->retakes++;
	else
		l->drops++;
	if (l->stop_after && l->retakes >= l->stop_after)
		return -EINTR;
	return 0;
}

static void test_wait_idle(void **state)
{
	struct fixture *fx = *state;
	struct delayed_put d = { fx->pg, NULL, 3 };
	struct cb_log log = { 0 };
	pthread_t th;

	assert_int_equal(udx_pgmap_request_order(fx->pg, 0, 9, &d.f), 0);
	/* already at or below: no wait, no callback */
	assert_int_equal(udx_folio_wait_idle(fx->pg, d.f, 1, -1, wait_cb, &log), 0);
	assert_int_equal(log.drops, 0);
	udx_folio_get(fx->pg, d.f);
	udx_folio_get(fx->pg, d.f);
	udx_folio_get(fx->pg, d.f);             /* count 4: entry's 1 + 3 "pins" */
	assert_int_equal(udx_folio_wait_idle(fx->pg, d.f, 1, 0, NULL, NULL), -ETIMEDOUT);
	assert_int_equal(udx_folio_wait_idle(fx->pg, d.f, 1, 20 * 1000 * 1000, NULL, NULL),
			 -ETIMEDOUT);
	pthread_create(&th, NULL, put_later, &d);
	assert_int_equal(udx_folio_wait_idle(fx->pg, d.f, 1, -1, wait_cb, &log), 0);
	assert_int_equal(udx_folio_refcount(d.f), 1);
	assert_true(log.drops >= 1 && log.drops == log.retakes);
	pthread_join(th, NULL);

	/* the callback can end the wait */
	udx_folio_get(fx->pg, d.f);
	memset(&log, 0, sizeof(log));
	log.stop_after = 1;
	d.n = 1;
	pthread_create(&th, NULL, put_later, &d);
	assert_int_equal(udx_folio_wait_idle(fx->pg, d.f, 0, -1, wait_cb, &log), -EINTR);
	pthread_join(th, NULL);

	/* waiting for 0: the free satisfies it */
	d.n = 1;
	pthread_create(&th, NULL, put_later, &d);
	assert_int_equal(udx_folio_wait_idle(fx->pg, d.f, 0, 5 * 1000000000ll, NULL, NULL), 0);
	pthread_join(th, NULL);
	assert_int_equal(nfreed, 1);
}

/* ---- metadata costs nothing for pages never used ----------------------- */

static void test_sparse_metadata(void **state)
{
	struct udx_pgmap_stats st;
	struct udx_pgmap *pg;
	struct udx_dev *dev = tu_anon("anon:256G");
	struct udx_folio *f;

	assert_int_equal(udx_memremap(dev, NULL, NULL, &pg), 0);
	udx_pgmap_stats(pg, &st);
	assert_true(st.meta_bytes_per_page <= 8);
	assert_true(st.meta_resident_bytes == 0);
	assert_int_equal(udx_pgmap_request_order(pg, 100 * GiB + 2 * MiB, 0, &f), 0);
	udx_pgmap_stats(pg, &st);
	/* one page of each array, plus the heads of the enclosing 2 MiB .. 1 GiB
	 * blocks that count it */
	assert_true(st.meta_resident_bytes > 0 && st.meta_resident_bytes <= 16 * 4096);
	udx_folio_put(pg, f);
	udx_memunmap(pg);
	udx_dev_close(dev);
}

/* ---- a model check of shapes, over many random operations ----------------- */

struct mfolio {
	uint64_t pfn;
	unsigned order;
	unsigned refs;
	struct udx_folio *f;
};

#define MODEL_MAX 512

static int model_find(struct mfolio *m, int n, uint64_t pfn, unsigned order, int *same)
{
	uint64_t end = pfn + (1ull << order);
	int i;

	*same = -1;
	for (i = 0; i < n; i++) {
		uint64_t e = m[i].pfn + (1ull << m[i].order);

		if (m[i].pfn == pfn && m[i].order == order) {
			*same = i;
			return 0;
		}
		if (m[i].pfn < end && pfn < e)
			return -EBUSY;
	}
	return 0;
}

static void test_model_random_shapes(void **state)
{
	struct fixture *fx = *state;
	uint64_t seed = tu_seed(), npages = (2 * GiB) >> 12;
	struct mfolio *m = calloc(MODEL_MAX, sizeof(*m));
	int n = 0, step, i, same;

	for (step = 0; step < 20000; step++) {
		uint64_t r = tu_rand(&seed);

		if (n > 0 && (r % 3 == 0 || n == MODEL_MAX)) {
			/* put a random reference */
			i = (int)(tu_rand(&seed) % (uint64_t)n);
			udx_folio_put(fx->pg, m[i].f);
			if (--m[i].refs == 0) {
				assert_int_equal(udx_folio_refcount(m[i].f), 0);
				m[i] = m[--n];
			}
		} else {
			/* request a random folio: orders skewed small, big ones rare */
			unsigned order = (unsigned)(tu_rand(&seed) % 19);
			uint64_t pfn;
			struct udx_folio *f;
			int want, got;

			if (tu_rand(&seed) % 4)
				order = order % 10;
			/* cluster heads in a small window so that shapes collide */
			pfn = (tu_rand(&seed) % (npages >> order)) << order;
			if (order < 14 && tu_rand(&seed) % 2)
				pfn = (pfn & ((1ull << 14) - 1)) + (tu_rand(&seed) % 2) * (1ull << 18);
			pfn &= ~((1ull << order) - 1);
			want = model_find(m, n, pfn, order, &same);
			got = udx_pgmap_request_order(fx->pg, pfn << 12, order, &f);
			if (got != want)
				fprintf(stderr, "step %d: request pfn %#llx order %u: got %d want %d\n",
					step, (unsigned long long)pfn, order, got, want);
			assert_int_equal(got, want);
			if (got == 0 && same >= 0) {
				assert_ptr_equal(f, m[same].f);
				m[same].refs++;
			} else if (got == 0) {
				m[n++] = (struct mfolio){ pfn, order, 1, f };
			}
		}
		if (step % 97 == 0) {
			assert_true(live_folios(fx->pg) == (uint64_t)n);
			assert_true(liveness(fx->pg) == 1 + (uint64_t)n);
			for (i = 0; i < n; i++)
				assert_int_equal(udx_folio_refcount(m[i].f), m[i].refs);
		}
	}
	for (i = 0; i < n; i++)
		while (m[i].refs--)
			udx_folio_put(fx->pg, m[i].f);
	assert_true(live_folios(fx->pg) == 0);
	assert_true(liveness(fx->pg) == 1);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_request_maximal_folios, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_same_shape_takes_a_reference, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_get_try_get_put, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_other_shape_refused, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_gigabyte_folio, setup_2g, teardown),
		cmocka_unit_test_setup_teardown(test_find, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_holder_claim, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_memory_failure, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_dying_refuses_new_folios, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_wait_idle, setup_64m, teardown),
		cmocka_unit_test(test_sparse_metadata),
		cmocka_unit_test_setup_teardown(test_model_random_shapes, setup_2g, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
