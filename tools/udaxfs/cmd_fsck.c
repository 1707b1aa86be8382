/* SPDX-License-Identifier: MIT */
/* udaxfs fsck: check (and repair) an unmounted file system. */
#include <getopt.h>
#include <stdio.h>

#include <udaxfs.h>
#include "cmd.h"
#include "util.h"

/* e2fsck's exit codes, which scripts already understand */
enum {
	FSCK_OK = 0,
	FSCK_FIXED = 1,
	FSCK_UNFIXED = 4,
	FSCK_ERROR = 8,
	FSCK_USAGE = 16,
};

static void fsck_usage(FILE *out)
{
	fprintf(out,
		"usage: udaxfs fsck DEVICE [--repair]\n\n"
		"Check every structure of the unmounted udaxfs on DEVICE and name each\n"
		"problem.  With --repair (-y), fix what can be fixed safely: superblocks,\n"
		"unfinished transactions, damaged inodes, dangling directory entries,\n"
		"link and block counts, orphans, the free space map.\n\n"
		"exit codes: 0 clean, 1 problems found and all repaired, 4 problems left,\n"
		"            8 could not check (not udaxfs, cannot open), 16 bad command line\n");
}

static void on_problem(void *arg, const char *what)
{
	progress_done();
	printf("  %s\n", what);
}

static void on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	progress_show(phase, done, total);
}

static int fsck_run(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "repair", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct udx_fsck_opts fo = { .report = on_problem, .progress = on_progress };
	struct udx_dev_opts dopts = { 0 };
	struct udx_fsck_result res;
	struct udx_dev *dev;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "yh", lopts, NULL)) != -1) {
		switch (c) {
		case 'y':
			fo.repair = true;
			break;
		case 'h':
			fsck_usage(stdout);
			return FSCK_OK;
		default:
			fsck_usage(stderr);
			return FSCK_USAGE;
		}
	}
	if (optind != argc - 1) {
		fsck_usage(stderr);
		return FSCK_USAGE;
	}
	if (!fo.repair)
		dopts.flags |= UDX_DEV_RDONLY;
	ret = udx_dev_open(argv[optind], &dopts, &dev);
	if (ret) {
		fprintf(stderr, "udaxfs fsck: %s\n", udx_errmsg());
		return FSCK_ERROR;
	}
	ret = udx_fsck(dev, &fo, &res);
	progress_done();
	udx_dev_close(dev);
	if (ret && res.problems == 0) {
		fprintf(stderr, "udaxfs fsck: %s\n", udx_errmsg());
		return FSCK_ERROR;
	}
	printf("%s: %llu inodes (%llu directories, %llu files), %llu blocks in use\n",
	       argv[optind], (unsigned long long)res.inodes, (unsigned long long)res.directories,
	       (unsigned long long)res.files, (unsigned long long)res.blocks_used);
	if (res.problems == 0) {
		printf("%s: clean\n", argv[optind]);
		return FSCK_OK;
	}
	printf("%s: %llu problems, %llu repaired%s\n", argv[optind],
	       (unsigned long long)res.problems, (unsigned long long)res.repaired,
	       fo.repair ? "" : " (run with --repair to fix what can be fixed)");
	return res.repaired == res.problems ? FSCK_FIXED : FSCK_UNFIXED;
}

const struct udx_cmd udx_cmd_fsck = {
	.name = "fsck",
	.summary = "check, and repair, an unmounted file system",
	.run = fsck_run,
	.usage = fsck_usage,
};
