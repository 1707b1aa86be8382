/* SPDX-License-Identifier: MIT */
/*
 * folio_getput_ns                  get+put of a live folio, one thread
 * folio_request_put_ns             4 KiB folio 0 -> 1 -> 0, one thread
 * memunmap_us_1g, memunmap_us_256g teardown of an idle device's pgmap
 * memunmap_256g_over_1g            their ratio (goal: 1.5 or less)
 * memunmap_scan_over_counter_256g  a teardown that scans every page's count
 *                                  instead of waiting on the liveness counter,
 *                                  timed in the same run, over ours (goal: 100+)
 * pgmap_meta_bytes_per_page        (goal: 8 or less)
 */
#include <udaxfs.h>
#include "bench.h"
#include "dev/pgmap_internal.h"

#define RUNS 7

static void open_pgmap(const char *spec, struct udx_dev **dev, struct udx_pgmap **pg)
{
	if (udx_dev_open(spec, NULL, dev) != 0 || udx_memremap(*dev, NULL, NULL, pg) != 0) {
		fprintf(stderr, "bench: %s: %s\n", spec, udx_errmsg());
		exit(1);
	}
}

static void bench_folio_ops(void)
{
	const uint64_t n = 10000000, m = 2000000;
	double gp[RUNS], rp[RUNS], rp2[RUNS];
	struct udx_pgmap *pg;
	struct udx_dev *dev;
	struct udx_folio *f;
	uint64_t i, t0;
	int r;

	open_pgmap("anon:1G", &dev, &pg);
	bench_pin_cpu(0);
	for (r = 0; r < RUNS; r++) {
		udx_pgmap_request_order(pg, 0, 9, &f);
		t0 = bench_now_ns();
		for (i = 0; i < n; i++) {
			udx_folio_get(pg, f);
			udx_folio_put(pg, f);
		}
		gp[r] = (double)(bench_now_ns() - t0) / (double)n;
		udx_folio_put(pg, f);

		t0 = bench_now_ns();
		for (i = 0; i < m; i++) {
			/* walk 64 MiB of 4 KiB folios */
			udx_pgmap_request_order(pg, (i & 16383) << 12, 0, &f);
			udx_folio_put(pg, f);
		}
		rp[r] = (double)(bench_now_ns() - t0) / (double)m;

		t0 = bench_now_ns();
		for (i = 0; i < m; i++) {
			udx_pgmap_request_order(pg, (i & 511) << 21, 9, &f);
			udx_folio_put(pg, f);
		}
		rp2[r] = (double)(bench_now_ns() - t0) / (double)m;
	}
	bench_report("folio_getput_ns", bench_median(gp, RUNS));
	bench_report("folio_request_put_ns", bench_median(rp, RUNS));
	bench_report("folio_request_put_2m_ns", bench_median(rp2, RUNS));
	udx_memunmap(pg);
	udx_dev_close(dev);
}

/* Our teardown of an idle device that has been used (one folio went live and
 * idle), in microseconds. */
static double time_memunmap(const char *spec)
{
	struct udx_pgmap *pg;
	struct udx_dev *dev;
	struct udx_folio *f;
	uint64_t t0;
	double us;

	open_pgmap(spec, &dev, &pg);
	udx_pgmap_request_order(pg, 0, 9, &f);
	udx_folio_put(pg, f);
	t0 = bench_now_ns();
	udx_memunmap(pg);
	us = (double)(bench_now_ns() - t0) / 1e3;
	udx_dev_close(dev);
	return us;
}

/* The baseline: the same teardown, but it learns that the device is idle by
 * scanning every page's reference count (as a pgmap without a liveness
 * counter at the 0 -> 1 and 1 -> 0 transitions must). */
static double time_scan_teardown(const char *spec)
{
	struct udx_pgmap *pg;
	struct udx_dev *dev;
	struct udx_folio *f;
	uint64_t t0, p, busy;
	double us;

	open_pgmap(spec, &dev, &pg);
	udx_pgmap_request_order(pg, 0, 9, &f);
	udx_folio_put(pg, f);
	t0 = bench_now_ns();
	udx_pgmap_kill(pg);
	do {
		busy = 0;
		for (p = 0; p < pg->pg_npages; p++)
			busy |= __atomic_load_n(&pg->pg_ref[p], __ATOMIC_RELAXED) & F_REF_MASK;
	} while (busy);
	udx_pgmap_wait(pg, -1);
	udx_pgmap_free(pg);
	us = (double)(bench_now_ns() - t0) / 1e3;
	udx_dev_close(dev);
	return us;
}

static void bench_teardown(void)
{
	double g1[RUNS], g256[RUNS], scan[3], m1, m256, ms;
	int r;

	for (r = 0; r < RUNS; r++) {
		g1[r] = time_memunmap("anon:1G");
		g256[r] = time_memunmap("anon:256G");
	}
	m1 = bench_median(g1, RUNS);
	m256 = bench_median(g256, RUNS);
	bench_report("memunmap_us_1g", m1);
	bench_report("memunmap_us_256g", m256);
	bench_report("memunmap_256g_over_1g", m256 / m1);
	for (r = 0; r < 3; r++)
		scan[r] = time_scan_teardown("anon:256G");
	ms = bench_median(scan, 3);
	bench_note("a teardown that scans 64M page counts of 256 GiB: %.0f us", ms);
	bench_report("memunmap_scan_over_counter_256g", ms / m256);
}

static void bench_meta(void)
{
	struct udx_pgmap_stats st;
	struct udx_pgmap *pg;
	struct udx_dev *dev;
	struct udx_folio *f;

	open_pgmap("anon:256G", &dev, &pg);
	udx_pgmap_request_order(pg, 7ull << 30, 9, &f);
	udx_pgmap_stats(pg, &st);
	bench_report("pgmap_meta_bytes_per_page", (double)st.meta_bytes_per_page);
	bench_note("256 GiB device, one live 2 MiB folio: %llu bytes of metadata resident",
		   (unsigned long long)st.meta_resident_bytes);
	udx_folio_put(pg, f);
	udx_memunmap(pg);
	udx_dev_close(dev);
}

void bench_pgmap(void)
{
	bench_folio_ops();
	bench_teardown();
	bench_meta();
}
