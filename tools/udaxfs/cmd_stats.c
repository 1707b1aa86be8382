/* SPDX-License-Identifier: MIT */
/* udaxfs stats: the lifetime counters of a mounted file system. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <udaxfs.h>
#include "cmd.h"
#include "util.h"
#include "fuse/udx_fuse.h"

static void stats_usage(FILE *out)
{
	fprintf(out,
		"usage: udaxfs stats DEVICE | MOUNTPOINT\n\n"
		"Print the counters of a udaxfs: of the file system mounted at\n"
		"MOUNTPOINT (udaxfs mount), live; or, for an unmounted DEVICE, after\n"
		"mounting it read-only here.  The counters: inodes\n"
		"cached and referenced, orphans (unlinked files still referenced),\n"
		"transactions, and the direct-access lifetimes: live folios, the\n"
		"pgmap's liveness count, mapping entries, pins, pinned inodes,\n"
		"recalls, waits for pins, memory failures.  A file system that was\n"
		"not unmounted cleanly must be recovered first (mount it read-write,\n"
		"or run fsck).\n\n"
		"exit codes: 0 success, 1 not udaxfs, cannot open, in use by another\n"
		"process (give its mount point), or needs recovery,\n"
		"2 bad command line\n");
}

void print_fs_stats(FILE *out, struct udx_fs *fs)
{
	struct udx_fs_stats st;
	struct udx_pgmap_stats ps;

	udx_fs_stats(fs, &st);
	udx_pgmap_stats(udx_fs_pgmap(fs), &ps);
	fprintf(out, "inodes cached:      %llu\n", (unsigned long long)st.inodes_cached);
	fprintf(out, "inodes referenced:  %llu\n", (unsigned long long)st.inodes_referenced);
	fprintf(out, "orphans:            %llu\n", (unsigned long long)st.orphans);
	fprintf(out, "open files:         %llu\n", (unsigned long long)st.open_files);
	fprintf(out, "transactions:       %llu committed, %llu aborted\n",
		(unsigned long long)st.tx_commits, (unsigned long long)st.tx_aborts);
	fprintf(out, "live folios:        %llu\n", (unsigned long long)st.live_folios);
	fprintf(out, "pgmap references:   %llu (1 + live folios)\n",
		(unsigned long long)st.pgmap_refs);
	fprintf(out, "mapping entries:    %llu\n", (unsigned long long)st.entries);
	fprintf(out, "pins:               %llu on %llu inodes\n", (unsigned long long)st.pins,
		(unsigned long long)st.pinned_inodes);
	fprintf(out, "recalls:            %llu\n", (unsigned long long)st.recalls);
	fprintf(out, "waits for pins:     %llu\n", (unsigned long long)st.waits);
	fprintf(out, "memory failures:    %llu (%llu pages poisoned)\n",
		(unsigned long long)st.poison_events, (unsigned long long)ps.poisoned_pages);
	fprintf(out, "page metadata:      %llu bytes per 4 KiB page, %llu bytes resident\n",
		(unsigned long long)ps.meta_bytes_per_page,
		(unsigned long long)ps.meta_resident_bytes);
	fprintf(out, "device:             %s\n", st.revoked ? "being removed" : "present");
}

/* A mounted udaxfs answers an ioctl on its root with its counters. */
static int stats_of_mount(const char *mnt)
{
	char buf[UDX_FUSE_STATS_MAX];
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;

	if (fd < 0) {
		fprintf(stderr, "udaxfs stats: %s: %s\n", mnt, strerror(errno));
		return UDX_EXIT_FAILURE;
	}
	ret = ioctl(fd, UDX_FUSE_IOC_STATS, buf);
	close(fd);
	if (ret < 0) {
		if (errno == ENOTTY || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)
			fprintf(stderr, "udaxfs stats: %s: not the root of a udaxfs mount\n", mnt);
		else
			fprintf(stderr, "udaxfs stats: %s: %s\n", mnt, strerror(errno));
		return UDX_EXIT_FAILURE;
	}
	buf[sizeof(buf) - 1] = '\0';
	printf("mount point:        %s\n%s", mnt, buf);
	return UDX_EXIT_OK;
}

static int stats_run(int argc, char **argv)
{
	struct udx_dev_opts dopts = { .flags = UDX_DEV_RDONLY };
	struct udx_mount_opts mopts = { .flags = UDX_MOUNT_RDONLY };
	struct udx_dev *dev = NULL;
	struct udx_fs *fs = NULL;
	struct stat st;
	int ret;

	if (argc != 2 || argv[1][0] == '-') {
		stats_usage(stderr);
		return UDX_EXIT_USAGE;
	}
	if (stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode))
		return stats_of_mount(argv[1]);
	ret = udx_dev_open(argv[1], &dopts, &dev);
	if (ret == 0)
		ret = udx_mount(dev, &mopts, &fs);
	if (ret) {
		fprintf(stderr, "udaxfs stats: %s\n", udx_errmsg());
		if (dev)
			udx_dev_close(dev);
		return UDX_EXIT_FAILURE;
	}
	printf("device:             %s\n", argv[1]);
	print_fs_stats(stdout, fs);
	udx_unmount(fs);
	udx_dev_close(dev);
	return UDX_EXIT_OK;
}

const struct udx_cmd udx_cmd_stats = {
	.name = "stats",
	.summary = "print the lifetime counters (folios, entries, pins, orphans)",
	.run = stats_run,
	.usage = stats_usage,
};
