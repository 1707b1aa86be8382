/* SPDX-License-Identifier: MIT */
/* udaxfs: the command-line tool. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"

static const struct udx_cmd *const cmds[] = {
	&udx_cmd_mkfs,
	&udx_cmd_fsck,
	&udx_cmd_info,
	&udx_cmd_mount,
	&udx_cmd_stats,
	&udx_cmd_demo,
};

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: udaxfs COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(out, "  %-8s %s\n", cmds[i]->name, cmds[i]->summary);
	fprintf(out, "  %-8s %s\n", "help", "this text, or `udaxfs help COMMAND`");
	fprintf(out, "\nexit codes: 0 success, 1 the operation failed, 2 bad command line\n"
		     "(fsck uses e2fsck's: 0 clean, 1 repaired, 4 problems left, 8 error, 16 usage)\n");
}

static const struct udx_cmd *find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i]->name, name) == 0)
			return cmds[i];
	return NULL;
}

/* Run as mount(8)'s helper, mount.fuse.udaxfs (or mount.udaxfs)? */
static bool called_as_helper(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base ? base + 1 : argv0;
	return strcmp(base, "mount.fuse.udaxfs") == 0 || strcmp(base, "mount.udaxfs") == 0;
}

/* `udaxfs DEVICE MOUNTPOINT -o OPTS`: how fuse3's mount.fuse3 runs a
 * file system named by the type fuse.udaxfs. */
static bool fuse_helper_form(int argc, char **argv)
{
	struct stat st;

	return argc >= 3 && argv[1][0] != '-' && find(argv[1]) == NULL &&
	       stat(argv[2], &st) == 0 && S_ISDIR(st.st_mode);
}

int main(int argc, char **argv)
{
	const struct udx_cmd *c;

	if (called_as_helper(argv[0]))
		return udx_mount_main(argc, argv, true);
	if (fuse_helper_form(argc, argv))
		return udx_mount_main(argc, argv, true);

	if (argc < 2) {
		usage(stderr);
		return UDX_EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		if (argc > 2 && (c = find(argv[2])) != NULL) {
			c->usage(stdout);
			return UDX_EXIT_OK;
		}
		usage(stdout);
		return argc > 2 ? UDX_EXIT_USAGE : UDX_EXIT_OK;
	}
	c = find(argv[1]);
	if (c == NULL) {
		fprintf(stderr, "udaxfs: unknown command '%s'\n\n", argv[1]);
		usage(stderr);
		return UDX_EXIT_USAGE;
	}
	if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
		c->usage(stdout);
		return UDX_EXIT_OK;
	}
	return c->run(argc - 1, argv + 1);
}
