/* SPDX-License-Identifier: MIT */
/* udx-bench [GROUP...]: run the benchmark groups (all by default). */
#include <string.h>

#include "bench.h"

static const struct bench groups[] = {
	{ "liveref", bench_liveref },
	{ "pgmap", bench_pgmap },
	{ "fs", bench_fs },
	{ "dax", bench_dax },
};

int main(int argc, char **argv)
{
	size_t i;
	int a;

	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		int want = argc < 2;

		for (a = 1; a < argc; a++)
			want |= strcmp(argv[a], groups[i].group) == 0;
		if (want)
			groups[i].run();
	}
	return 0;
}
