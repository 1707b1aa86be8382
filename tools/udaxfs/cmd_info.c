/* SPDX-License-Identifier: MIT */
/* udaxfs info: describe the file system on a device. */
#include <stdio.h>
#include <string.h>

#include <udaxfs.h>
#include "cmd.h"
#include "util.h"

static void info_usage(FILE *out)
{
	fprintf(out,
		"usage: udaxfs info DEVICE\n\n"
		"Print the superblock of the udaxfs on DEVICE: UUID, label, sizes,\n"
		"inodes, journal, and (after a clean unmount) free space.\n\n"
		"exit codes: 0 success, 1 not udaxfs or cannot open, 2 bad command line\n");
}

static int info_run(int argc, char **argv)
{
	/* info reads the superblock of a mounted device too */
	struct udx_dev_opts dopts = { .flags = UDX_DEV_RDONLY | UDX_DEV_NOLOCK };
	struct udx_dev_info di;
	struct udx_fs_info info;
	struct udx_dev *dev = NULL;
	char ubuf[37], sz[32], fr[32];
	int ret;

	if (argc != 2 || argv[1][0] == '-') {
		info_usage(stderr);
		return UDX_EXIT_USAGE;
	}
	ret = udx_dev_open(argv[1], &dopts, &dev);
	if (ret == 0)
		ret = udx_fs_info(dev, NULL, &info);
	if (ret) {
		fprintf(stderr, "udaxfs info: %s\n", udx_errmsg());
		if (dev)
			udx_dev_close(dev);
		return UDX_EXIT_FAILURE;
	}
	udx_dev_info(dev, &di);
	uuid_format(info.uuid, ubuf);
	printf("device:        %s (%s, persistence: %s)\n", argv[1],
	       di.kind == UDX_DEV_ANON ? "anonymous memory" :
	       di.kind == UDX_DEV_DEVDAX ? "device DAX" : "file", udx_gran_name(di.gran));
	printf("uuid:          %s\n", ubuf);
	printf("label:         %s\n", info.label[0] ? info.label : "(none)");
	printf("size:          %s (%llu blocks of 4 KiB)\n",
	       udx_format_size(info.nblocks * 4096, sz, sizeof(sz)),
	       (unsigned long long)info.nblocks);
	printf("state:         %s\n", info.clean ? "clean" : "not cleanly unmounted (mounted, or crashed)");
	printf("mounts:        %llu\n", (unsigned long long)info.mount_count);
	printf("inodes:        %llu", (unsigned long long)info.ninodes);
	if (info.clean)
		printf(" (%llu free)", (unsigned long long)info.free_inodes);
	printf("\njournal:       %u lanes of %llu KiB\n", info.jlanes,
	       (unsigned long long)(info.jlane_size >> 10));
	printf("data starts:   block %llu\n", (unsigned long long)info.data_start);
	if (info.clean)
		printf("free space:    %s\n",
		       udx_format_size(info.free_blocks * 4096, fr, sizeof(fr)));
	udx_dev_close(dev);
	return UDX_EXIT_OK;
}

const struct udx_cmd udx_cmd_info = {
	.name = "info",
	.summary = "describe the file system on a device",
	.run = info_run,
	.usage = info_usage,
};
