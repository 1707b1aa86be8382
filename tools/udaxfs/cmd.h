/* SPDX-License-Identifier: MIT */
/* The udaxfs command: one file per subcommand, behind this table. */
#ifndef UDX_TOOLS_CMD_H
#define UDX_TOOLS_CMD_H

#include <stdio.h>

/* Exit codes shared by every subcommand (see `udaxfs help`). */
enum {
	UDX_EXIT_OK = 0,
	UDX_EXIT_FAILURE = 1,           /* the operation failed */
	UDX_EXIT_USAGE = 2,             /* bad command line */
};

struct udx_cmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
	void (*usage)(FILE *out);
};

extern const struct udx_cmd udx_cmd_demo;
extern const struct udx_cmd udx_cmd_mkfs;
extern const struct udx_cmd udx_cmd_fsck;
extern const struct udx_cmd udx_cmd_info;
extern const struct udx_cmd udx_cmd_stats;
extern const struct udx_cmd udx_cmd_mount;

#include <stdbool.h>

/* udaxfs mount, also as mount(8)'s helper (@helper: its argument forms). */
int udx_mount_main(int argc, char **argv, bool helper);

struct udx_fs;
/* The counters of a mounted file system (udaxfs stats, demo). */
void print_fs_stats(FILE *out, struct udx_fs *fs);

#endif
