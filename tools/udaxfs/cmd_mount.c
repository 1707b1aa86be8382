/* SPDX-License-Identifier: MIT */
/*
 * udaxfs mount: serve a udaxfs through FUSE.
 *
 * Three ways in: `udaxfs mount DEVICE MOUNTPOINT [-o OPTS] [-f] [-d]`; the
 * mount helper `mount.fuse.udaxfs DEVICE MOUNTPOINT [-o OPTS]`, which
 * mount(8) runs for `mount -t fuse.udaxfs` (install it as a link to
 * udaxfs); and `udaxfs DEVICE MOUNTPOINT -o OPTS`, which fuse3's own helper
 * (mount.fuse3) runs for the same command when ours is not installed.
 *
 * In the background (the default), the process forks first: the child
 * opens, recovers and mounts, and tells the parent through a pipe when the
 * mount is ready; the parent exits 0 then, or with the child's code after
 * the child printed why it failed.  So the shell sees every error, and no
 * thread exists when the process forks.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <udaxfs.h>
#include "cmd.h"
#include "fuse/udx_fuse.h"

#define UNMOUNT_WAIT_NS (60ll * 1000000000ll)

static void mount_usage(FILE *out)
{
	fprintf(out,
		"usage: udaxfs mount DEVICE MOUNTPOINT [-o OPTIONS] [-f] [-d]\n"
		"       mount -t fuse.udaxfs DEVICE MOUNTPOINT [-o OPTIONS]\n\n"
		"Mount the udaxfs on DEVICE (a pool file, a file on a DAX file system,\n"
		"or /dev/daxX.Y) at MOUNTPOINT through FUSE.  A file system that was not\n"
		"unmounted cleanly is recovered first.  The mount runs in the background\n"
		"until it is unmounted (umount MOUNTPOINT, or fusermount3 -u MOUNTPOINT).\n\n"
		"  -f              stay in the foreground; Ctrl-C (SIGINT or SIGTERM)\n"
		"                  unmounts cleanly\n"
		"  -d              foreground, with libfuse's trace of every request\n"
		"  -o OPTIONS      comma separated:\n"
		"     ro                   read-only (the device is not written)\n"
		"     allow_other          let other users in (the kernel checks file\n"
		"                          modes: default_permissions is always on)\n"
		"     default_permissions  accepted; always on\n"
		"     attr_timeout=S, entry_timeout=S, negative_timeout=S\n"
		"                          seconds the kernel caches attributes, names\n"
		"                          and missing names (default 1)\n"
		"     max_threads=N        worker threads (default 16)\n"
		"     and the usual mount options (nosuid, nodev, noexec, noatime...)\n\n"
		"`udaxfs stats MOUNTPOINT` prints the counters of the mounted file system.\n\n"
		"exit codes: 0 mounted (with -f: mounted, and unmounted cleanly),\n"
		"            1 the mount failed (device, not udaxfs, mount point),\n"
		"            2 bad command line\n");
}

struct mount_args {
	const char *device, *mountpoint;
	char options[2048];
	bool foreground, debug, rdonly;
};

/* Add one -o list; note "ro" and "rw" (the last one wins, as in mount). */
static int add_options(struct mount_args *a, const char *list)
{
	size_t n = strlen(a->options);
	char *copy, *opt, *save = NULL;

	if (n + strlen(list) + 2 > sizeof(a->options)) {
		fprintf(stderr, "udaxfs mount: the options are too long\n");
		return -1;
	}
	if (n)
		a->options[n++] = ',';
	strcpy(a->options + n, list);
	copy = strdup(list);
	if (copy == NULL)
		return -1;
	for (opt = strtok_r(copy, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		if (strcmp(opt, "ro") == 0)
			a->rdonly = true;
		else if (strcmp(opt, "rw") == 0)
			a->rdonly = false;
	}
	free(copy);
	return 0;
}

/*
 * The command line, options and operands in any order (mount(8) puts the
 * options last).  @helper: mount(8)'s form, where -s, -n, -v (sloppy, no
 * mtab, verbose) and -t TYPE are accepted and ignored, -r means ro, -w rw.
 */
static int parse_args(int argc, char **argv, bool helper, struct mount_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			mount_usage(stdout);
			exit(UDX_EXIT_OK);
		} else if (strcmp(arg, "-o") == 0) {
			if (++i == argc) {
				fprintf(stderr, "udaxfs mount: -o needs a list of options\n");
				return -1;
			}
			if (add_options(a, argv[i]))
				return -1;
		} else if (strncmp(arg, "-o", 2) == 0) {
			if (add_options(a, arg + 2))
				return -1;
		} else if (strcmp(arg, "-f") == 0) {
			a->foreground = true;
		} else if (strcmp(arg, "-d") == 0) {
			a->foreground = a->debug = true;
		} else if (helper && strcmp(arg, "-r") == 0) {
			if (add_options(a, "ro"))
				return -1;
		} else if (helper && strcmp(arg, "-w") == 0) {
			if (add_options(a, "rw"))
				return -1;
		} else if (helper && (strcmp(arg, "-s") == 0 || strcmp(arg, "-n") == 0 ||
				      strcmp(arg, "-v") == 0)) {
			continue;
		} else if (helper && strcmp(arg, "-t") == 0) {
			i++;
		} else if (arg[0] == '-') {
			fprintf(stderr, "udaxfs mount: unknown option '%s'\n", arg);
			return -1;
		} else if (a->device == NULL) {
			a->device = arg;
		} else if (a->mountpoint == NULL) {
			a->mountpoint = arg;
		} else {
			fprintf(stderr, "udaxfs mount: one DEVICE and one MOUNTPOINT ('%s' is extra)\n",
				arg);
			return -1;
		}
	}
	if (a->device == NULL || a->mountpoint == NULL) {
		fprintf(stderr, "udaxfs mount: give a DEVICE and a MOUNTPOINT\n");
		return -1;
	}
	return 0;
}

/* The mount point: an existing directory, not a dead FUSE mount. */
static int check_mountpoint(const char *path, char *abs)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		int e = errno;

		if (e == ENOTCONN)
			fprintf(stderr, "udaxfs mount: %s: a FUSE mount whose server is gone is "
				"still there; unmount it first (fusermount3 -u %s)\n", path, path);
		else
			fprintf(stderr, "udaxfs mount: %s: %s\n", path, strerror(e));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "udaxfs mount: %s: not a directory\n", path);
		return -1;
	}
	if (realpath(path, abs) == NULL) {
		fprintf(stderr, "udaxfs mount: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

struct ready {
	int fd;                 /* the pipe to the waiting parent, or -1 */
};

/* The mount is up: release the parent, and leave the terminal. */
static void on_ready(void *arg)
{
	struct ready *r = arg;
	int null;

	if (r->fd < 0)
		return;
	if (write(r->fd, "", 1) != 1) {
		/* the parent is gone; the mount stays */
	}
	close(r->fd);
	r->fd = -1;
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	if (chdir("/") != 0) {
		/* the mount does not need it */
	}
}

/* Fork: the parent waits for the child's word and exits with its result. */
static int background(struct ready *r)
{
	int pfd[2], status;
	ssize_t n;
	pid_t pid;
	char c;

	if (pipe2(pfd, O_CLOEXEC) != 0) {
		fprintf(stderr, "udaxfs mount: pipe: %s\n", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "udaxfs mount: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		setsid();
		r->fd = pfd[1];
		return 0;
	}
	close(pfd[1]);
	do
		n = read(pfd[0], &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		_exit(UDX_EXIT_OK);     /* mounted, and the child serves it */
	/* the child ended without a mount, after saying why */
	if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status))
		_exit(WEXITSTATUS(status));
	_exit(UDX_EXIT_FAILURE);
}

int udx_mount_main(int argc, char **argv, bool helper)
{
	struct udx_dev_opts dopts = { 0 };
	struct udx_mount_opts mopts = { 0 };
	struct udx_fuse_opts fo = { 0 };
	struct ready r = { .fd = -1 };
	struct mount_args a;
	char abs[PATH_MAX], devabs[PATH_MAX];
	struct udx_dev *dev;
	struct udx_fs *fs;
	int ret;

	if (parse_args(argc, argv, helper, &a)) {
		fprintf(stderr, "(udaxfs mount --help tells more)\n");
		return UDX_EXIT_USAGE;
	}
	/* /proc/mounts names the device by its full path, like any mount */
	fo.fsname = realpath(a.device, devabs) ? devabs : a.device;
	fo.options = a.options[0] ? a.options : NULL;
	fo.rdonly = a.rdonly;
	fo.debug = a.debug;
	fo.stats = print_fs_stats;
	fo.ready = on_ready;
	fo.ready_arg = &r;
	/* a bad option is a bad command line: found before the device is
	 * touched (a mount recovers it) */
	if (udx_fuse_check_options(&fo)) {
		fprintf(stderr, "(udaxfs mount --help tells more)\n");
		return UDX_EXIT_USAGE;
	}
	if (check_mountpoint(a.mountpoint, abs))
		return UDX_EXIT_FAILURE;
	if (!a.foreground && background(&r))
		return UDX_EXIT_FAILURE;
	if (a.rdonly) {
		dopts.flags |= UDX_DEV_RDONLY;
		mopts.flags |= UDX_MOUNT_RDONLY;
	}
	ret = udx_dev_open(a.device, &dopts, &dev);
	if (ret == -ENOENT && strchr(a.device, ':') == NULL) {
		fprintf(stderr, "udaxfs mount: %s: no such device or pool file\n", a.device);
		return UDX_EXIT_FAILURE;
	}
	if (ret) {
		fprintf(stderr, "udaxfs mount: %s\n", udx_errmsg());
		return UDX_EXIT_FAILURE;
	}
	ret = udx_mount(dev, &mopts, &fs);
	if (ret) {
		fprintf(stderr, "udaxfs mount: %s\n", udx_errmsg());
		udx_dev_close(dev);
		return UDX_EXIT_FAILURE;
	}
	ret = udx_fuse_serve(fs, abs, &fo);
	/* the kernel mount is gone and holds nothing: write back, release */
	if (udx_unmount_wait(fs, UNMOUNT_WAIT_NS) != 0) {
		fprintf(stderr, "udaxfs mount: unmount: %s\n", udx_errmsg());
		return UDX_EXIT_FAILURE;
	}
	udx_dev_close(dev);
	return ret ? UDX_EXIT_FAILURE : UDX_EXIT_OK;
}

static int mount_run(int argc, char **argv)
{
	return udx_mount_main(argc, argv, false);
}

const struct udx_cmd udx_cmd_mount = {
	.name = "mount",
	.summary = "mount a file system through FUSE",
	.run = mount_run,
	.usage = mount_usage,
};
