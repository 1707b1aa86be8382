/* SPDX-License-Identifier: MIT */
/* The FUSE session: options, the kernel mount, the worker threads. */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>

#include <udaxfs.h>
#include "fuse/fuse_int.h"

#define DEFAULT_TIMEOUT 1.0             /* seconds the kernel may cache */
#define DEFAULT_THREADS 16

/* Options only /etc/fstab and mount(8) care about: not for the kernel. */
static bool fstab_only(const char *opt)
{
	static const char *const names[] = {
		"defaults", "auto", "noauto", "nofail", "_netdev", "user", "users",
		"nouser", "owner", "group", "default_permissions",
	};
	size_t i;

	if (strncmp(opt, "x-", 2) == 0 || strncmp(opt, "comment=", 8) == 0)
		return true;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(opt, names[i]) == 0)
			return true;
	return false;
}

static int parse_seconds(const char *opt, const char *val, double *out)
{
	char *end;
	double d = strtod(val, &end);

	if (*val == '\0' || *end != '\0' || !(d >= 0 && d <= 86400)) {
		fprintf(stderr, "udaxfs mount: %s: give seconds from 0 to 86400\n", opt);
		return -1;
	}
	*out = d;
	return 0;
}

/* Append @s to @buf (of @size), escaping commas for libfuse's parser. */
static int opt_append(char *buf, size_t size, const char *s, bool escape)
{
	size_t n = strlen(buf);

	if (n && n + 1 < size)
		buf[n++] = ',';
	for (; *s; s++) {
		if (escape && (*s == ',' || *s == '\\')) {
			if (n + 1 >= size)
				return -1;
			buf[n++] = '\\';
		}
		if (n + 1 >= size)
			return -1;
		buf[n++] = *s;
	}
	buf[n] = '\0';
	return 0;
}

/*
 * Split -o options into udaxfs' own (into @u, @threads) and the rest for
 * libfuse and the kernel (into @out, after fsname, subtype and
 * default_permissions, which are always there: permissions are checked by
 * the kernel against the modes and owners udaxfs stores).
 */
static int parse_options(const struct udx_fuse_opts *o, struct ufs *u, unsigned *threads,
			 char *out, size_t size)
{
	char *copy, *opt, *save = NULL;
	int ret = 0;

	out[0] = '\0';
	if (opt_append(out, size, "fsname=", false) ||
	    opt_append(out + strlen(out), size - strlen(out), o->fsname ? o->fsname : "udaxfs",
		       true) ||
	    opt_append(out, size, "subtype=udaxfs,default_permissions", false))
		goto too_long;
	if (o->options == NULL)
		return 0;
	copy = strdup(o->options);
	if (copy == NULL)
		return -1;
	for (opt = strtok_r(copy, ",", &save); opt && !ret; opt = strtok_r(NULL, ",", &save)) {
		if (strncmp(opt, "attr_timeout=", 13) == 0) {
			ret = parse_seconds(opt, opt + 13, &u->attr_timeout);
		} else if (strncmp(opt, "entry_timeout=", 14) == 0) {
			ret = parse_seconds(opt, opt + 14, &u->entry_timeout);
		} else if (strncmp(opt, "negative_timeout=", 17) == 0) {
			ret = parse_seconds(opt, opt + 17, &u->negative_timeout);
		} else if (strncmp(opt, "max_threads=", 12) == 0) {
			char *end;
			unsigned long n = strtoul(opt + 12, &end, 10);

			if (opt[12] == '\0' || *end != '\0' || n < 1 || n > 1024) {
				fprintf(stderr, "udaxfs mount: %s: give 1 to 1024 threads\n", opt);
				ret = -1;
			}
			*threads = (unsigned)n;
		} else if (!fstab_only(opt)) {
			if (opt_append(out, size, opt, false)) {
				free(copy);
				goto too_long;
			}
		}
	}
	free(copy);
	return ret;
too_long:
	fprintf(stderr, "udaxfs mount: the options are too long\n");
	return -1;
}

/*
 * The kernel starts a FUSE mount with 128 KiB of read-ahead, and INIT may
 * only lower it: raise it to the largest request through the mount's
 * backing device info in sysfs, before INIT (root only; otherwise reads
 * stay at 128 KiB pieces).  The device number comes from mountinfo: a stat
 * of the mount point would wait for this very process to answer.
 */
static void raise_readahead(const char *mountpoint)
{
	FILE *mi = fopen("/proc/self/mountinfo", "r");
	char line[4096], path[128], mnt[4096];
	unsigned maj = 0, min = 0, a, b;
	bool found = false;

	if (mi == NULL)
		return;
	while (fgets(line, sizeof(line), mi)) {
		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &a, &b, mnt) == 3 &&
		    strcmp(mnt, mountpoint) == 0) {
			maj = a;                /* the last one is on top */
			min = b;
			found = true;
		}
	}
	fclose(mi);
	if (found) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
		f = fopen(path, "w");
		if (f) {
			fprintf(f, "%u\n", UFS_MAX_IO >> 10);
			fclose(f);
		}
	}
}

/* libfuse's argument vector for @optbuf (and -d). */
static int build_args(struct fuse_args *args, const char *optbuf, bool debug)
{
	if (fuse_opt_add_arg(args, "udaxfs") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, optbuf) || (debug && fuse_opt_add_arg(args, "-d"))) {
		fprintf(stderr, "udaxfs mount: out of memory\n");
		return -1;
	}
	return 0;
}

int udx_fuse_check_options(const struct udx_fuse_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	unsigned threads = DEFAULT_THREADS;
	char optbuf[4096];
	struct ufs *u = calloc(1, sizeof(*u));
	int ret = -1;

	if (u == NULL) {
		fprintf(stderr, "udaxfs mount: out of memory\n");
		return -1;
	}
	/* ours here; libfuse's and the kernel's by making (not mounting) a
	 * session, which names an unknown one */
	if (parse_options(o, u, &threads, optbuf, sizeof(optbuf)) == 0 &&
	    build_args(&args, optbuf, false) == 0)
		se = fuse_session_new(&args, &ufs_ops, sizeof(ufs_ops), NULL);
	if (se) {
		fuse_session_destroy(se);
		ret = 0;
	}
	fuse_opt_free_args(&args);
	free(u);
	return ret;
}

int udx_fuse_serve(struct udx_fs *fs, const char *mountpoint, const struct udx_fuse_opts *o)
{
	char optbuf[4096];
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	unsigned threads = DEFAULT_THREADS, i;
	struct ufs *u;
	int ret = -1;

	u = aligned_alloc(64, sizeof(*u));
	if (u == NULL) {
		fprintf(stderr, "udaxfs mount: out of memory\n");
		return -1;
	}
	memset(u, 0, sizeof(*u));
	for (i = 0; i < NODE_SHARDS; i++)
		pthread_mutex_init(&u->shards[i].lock, NULL);
	for (i = 0; i < IO_LOCKS; i++)
		pthread_rwlock_init(&u->io[i].lock, NULL);
	u->attr_timeout = u->entry_timeout = u->negative_timeout = DEFAULT_TIMEOUT;
	u->rdonly = o->rdonly;
	u->stats = o->stats;
	if (parse_options(o, u, &threads, optbuf, sizeof(optbuf)))
		goto out_free;
	ret = udx_iget(fs, UDX_ROOT_INO, &u->root);
	if (ret) {
		fprintf(stderr, "udaxfs mount: the root directory: %s\n", udx_errmsg());
		ret = -1;
		goto out_free;
	}
	ret = -1;
	if (build_args(&args, optbuf, o->debug))
		goto out_args;
	se = fuse_session_new(&args, &ufs_ops, sizeof(ufs_ops), u);
	if (se == NULL)
		goto out_args;          /* libfuse said why (an unknown option) */
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, mountpoint) != 0)
		goto out_signals;       /* libfuse said why */
	raise_readahead(mountpoint);
	if (o->ready)
		o->ready(o->ready_arg);
	cfg = fuse_loop_cfg_create();
	if (cfg) {
		fuse_loop_cfg_set_clone_fd(cfg, 1);
		fuse_loop_cfg_set_max_threads(cfg, threads);
		fuse_loop_cfg_set_idle_threads(cfg, threads);
	}
	ret = cfg ? fuse_session_loop_mt(se, cfg) : -ENOMEM;
	/* a signal ends the loop with its number; that is a clean exit */
	if (ret > 0)
		ret = 0;
	if (ret < 0)
		fprintf(stderr, "udaxfs mount: the FUSE loop failed: %s\n", strerror(-ret));
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	fuse_opt_free_args(&args);
	/* the kernel mount is gone: it holds nothing any more */
	ufs_nodes_drop_all(u);
	udx_iput(u->root);
out_free:
	for (i = 0; i < NODE_SHARDS; i++)
		pthread_mutex_destroy(&u->shards[i].lock);
	for (i = 0; i < IO_LOCKS; i++)
		pthread_rwlock_destroy(&u->io[i].lock);
	free(u);
	return ret < 0 ? -1 : 0;
}
