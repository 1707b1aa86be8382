/* SPDX-License-Identifier: MIT */
/* Per-thread error messages and the library's fatal-bug report. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <udaxfs/common.h>
#include "base/compiler.h"
#include "base/err.h"

static __thread char udx_errbuf[512];

const char *udx_errmsg(void)
{
	return udx_errbuf;
}

int udx_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(udx_errbuf, sizeof(udx_errbuf), fmt, ap);
	va_end(ap);
	return err;
}

void udx_err_clear(void)
{
	udx_errbuf[0] = '\0';
}

void udx_errclear(void)
{
	udx_err_clear();
}

void udx_bug(const char *file, int line, const char *cond)
{
	fprintf(stderr, "udaxfs: BUG at %s:%d: %s\n", file, line, cond);
	abort();
}

uint64_t udx_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
