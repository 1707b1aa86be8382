/* SPDX-License-Identifier: MIT */
/*
 * Benchmark harness: each benchmark prints its figures as lines
 *   BENCH <name> <value>
 * (and comments starting with '#').  Times are medians over several runs;
 * comparisons run both sides in the same process and print the ratio.
 */
#ifndef UDX_BENCH_H
#define UDX_BENCH_H

#include <stdint.h>
#include <stdio.h>

uint64_t bench_now_ns(void);
double bench_median(double *v, int n);
void bench_report(const char *name, double value);
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_pin_cpu(int cpu);

struct bench {
	const char *group;
	void (*run)(void);
};

void bench_liveref(void);
void bench_pgmap(void);
void bench_fs(void);
void bench_dax(void);

#endif
