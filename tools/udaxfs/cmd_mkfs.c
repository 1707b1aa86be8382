/* SPDX-License-Identifier: MIT */
/* udaxfs mkfs: write a new file system on a device. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <udaxfs.h>
#include "cmd.h"
#include "util.h"

static void mkfs_usage(FILE *out)
{
	fprintf(out,
		"usage: udaxfs mkfs DEVICE [--size SIZE] [--inodes N] [--label LABEL]\n"
		"                   [--uuid UUID] [--force]\n\n"
		"Write a new, empty udaxfs over the whole DEVICE: a pool file (created\n"
		"sparse at SIZE when it does not exist), a file on a DAX file system, or\n"
		"/dev/daxX.Y.  An existing udaxfs is only overwritten with --force.\n\n"
		"  -s, --size SIZE    size of a new pool file (K, M, G, T suffixes)\n"
		"  -N, --inodes N     number of inodes (default: one per 16 KiB)\n"
		"  -L, --label LABEL  a label of up to 63 bytes\n"
		"  -U, --uuid UUID    the file system UUID (default: random)\n"
		"  -f, --force        overwrite an existing udaxfs\n\n"
		"exit codes: 0 success, 1 failure, 2 bad command line\n");
}

static void on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	progress_show(phase, done, total);
}

static int mkfs_run(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "inodes", required_argument, NULL, 'N' },
		{ "label", required_argument, NULL, 'L' },
		{ "uuid", required_argument, NULL, 'U' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct udx_dev_opts dopts = { .flags = UDX_DEV_CREATE };
	struct udx_mkfs_opts mo = { .progress = on_progress };
	struct udx_fs_info info;
	struct udx_dev *dev;
	uint8_t uuid[16];
	char ubuf[37], sz[32];
	bool force = false;
	uint64_t v;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:N:L:U:fh", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (udx_parse_size(optarg, &dopts.size) != 0 || dopts.size == 0) {
				fprintf(stderr, "udaxfs mkfs: '%s' is not a size\n", optarg);
				return UDX_EXIT_USAGE;
			}
			break;
		case 'N':
			if (udx_parse_size(optarg, &v) != 0 || v == 0) {
				fprintf(stderr, "udaxfs mkfs: '%s' is not a number of inodes\n", optarg);
				return UDX_EXIT_USAGE;
			}
			mo.ninodes = v;
			break;
		case 'L':
			mo.label = optarg;
			break;
		case 'U':
			if (uuid_parse(optarg, uuid) != 0) {
				fprintf(stderr, "udaxfs mkfs: '%s' is not a UUID\n", optarg);
				return UDX_EXIT_USAGE;
			}
			mo.uuid = uuid;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			mkfs_usage(stdout);
			return UDX_EXIT_OK;
		default:
			mkfs_usage(stderr);
			return UDX_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		mkfs_usage(stderr);
		return UDX_EXIT_USAGE;
	}
	ret = udx_dev_open(argv[optind], &dopts, &dev);
	if (ret) {
		fprintf(stderr, "udaxfs mkfs: %s\n", udx_errmsg());
		return UDX_EXIT_FAILURE;
	}
	if (!force && udx_fs_info(dev, NULL, &info) == 0) {
		uuid_format(info.uuid, ubuf);
		fprintf(stderr, "udaxfs mkfs: %s already holds udaxfs %s; use --force to overwrite it\n",
			argv[optind], ubuf);
		udx_dev_close(dev);
		return UDX_EXIT_FAILURE;
	}
	ret = udx_mkfs(dev, &mo);
	progress_done();
	if (ret) {
		fprintf(stderr, "udaxfs mkfs: %s\n", udx_errmsg());
		udx_dev_close(dev);
		return UDX_EXIT_FAILURE;
	}
	udx_fs_info(dev, NULL, &info);
	uuid_format(info.uuid, ubuf);
	printf("udaxfs %s on %s: %s, %llu inodes, %u journal lanes of %llu KiB\n", ubuf,
	       argv[optind], udx_format_size(info.nblocks * 4096, sz, sizeof(sz)),
	       (unsigned long long)info.ninodes, info.jlanes,
	       (unsigned long long)(info.jlane_size >> 10));
	udx_dev_close(dev);
	return UDX_EXIT_OK;
}

const struct udx_cmd udx_cmd_mkfs = {
	.name = "mkfs",
	.summary = "write a new file system on a device",
	.run = mkfs_run,
	.usage = mkfs_usage,
};
