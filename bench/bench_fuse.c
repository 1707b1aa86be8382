/* SPDX-License-Identifier: MIT */
/*
 * udx-bench-fuse UDAXFS: the FUSE benchmarks.  A udaxfs is made on a sparse
 * 4 GiB pool file on /dev/shm, mounted with `UDAXFS mount -f` (its
 * environment has PMEM2_FORCE_GRANULARITY=CACHE_LINE, so it flushes cache
 * lines as on persistent memory), and the same operations run through the
 * mount and on tmpfs (/dev/shm) in the same run, interleaved round by round:
 *
 *   fuse_create_unlink_per_s, fuse_create_unlink_vs_tmpfs
 *       open(O_CREAT|O_EXCL|O_WRONLY) + close of NAMES names in one
 *       directory, then unlink of each; pairs per second
 *   fuse_stat_per_s, fuse_stat_vs_tmpfs
 *       stat() of the files of a directory of NAMES files, with the kernel's
 *       attribute and entry cache as the mount configures it (1 s)
 *   fuse_stat_nocache_per_s, fuse_stat_nocache_vs_tmpfs
 *       the same, mounted with -o attr_timeout=0,entry_timeout=0
 *   fuse_seq_write_1m_gbps, fuse_seq_write_1m_vs_tmpfs
 *       fio rw=write bs=1m ioengine=psync end_fsync=1, a fresh 1 GiB file
 *   fuse_seq_read_1m_gbps, fuse_seq_read_1m_vs_tmpfs
 *       fio rw=read bs=1m of the written file with invalidate=0: a re-read,
 *       served from the kernel's page cache (the mount sets keep_cache); the
 *       share of the file cached before each run is printed (mincore).  The
 *       first read after the write is printed, not counted (the mount keeps
 *       the pages a write leaves in the cache: no auto_inval_data)
 *   fuse_seq_read_1m_cold_gbps, fuse_seq_read_1m_cold_vs_tmpfs
 *       the same read with the file's page cache dropped first
 *       (posix_fadvise DONTNEED, and fio's invalidate=1), so every byte
 *       comes from the daemon
 *
 * Ratios are fuse rate / tmpfs rate (higher is better; 0.25 is 4x slower),
 * the median of the per-round ratios.  GB/s are 10^9 bytes per second.
 * If FUSE cannot be used (no /dev/fuse, no fusermount3, the mount fails),
 * one line `# fuse benchmarks skipped: ...` is printed and no BENCH line.
 * Everything made (the pool, the tmpfs directory, the mount point) is
 * removed at the end, and on SIGINT, SIGTERM or SIGHUP.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define RUNS 5                  /* rounds of each metadata benchmark */
#define FIO_RUNS 5              /* fio runs of each kind */
#define NAMES 5000              /* files in the directory */
#define STAT_PASSES 20          /* stat passes over the directory per round */
#define STAT_PASSES_NOCACHE 4
#define POOL_SIZE "4G"
#define FIO_SIZE "1g"
#define FIO_BYTES (1ull << 30)
#define MOUNT_WAIT_S 30
#define UNMOUNT_WAIT_S 90

static const char *udaxfs_bin;
static char workdir[64];        /* /dev/shm/udx-bench-fuse-XXXXXX */
static char pool[PATH_MAX];     /* workdir/pool */
static char tmpfsdir[PATH_MAX]; /* workdir/tmpfs: the tmpfs side */
static char mnt[64];            /* /tmp/udx-bench-fuse-mnt-XXXXXX */
static char mountlog[PATH_MAX]; /* workdir/mount.log: the daemon's stderr */
static volatile pid_t mount_pid;        /* the `udaxfs mount -f` process */
static volatile pid_t child_pid;        /* fio, mkfs...: the one running now */
static volatile sig_atomic_t cleaning;

/* ---- output -------------------------------------------------------------- */

/* The median of @n values (@v is left as it was). */
static double median(const double *v, int n)
{
	double s[32];

	memcpy(s, v, (size_t)n * sizeof(*s));
	return bench_median(s, n);
}

/* "a b c" of @n values, for the comment lines. */
static const char *list(const double *v, int n, const char *fmt)
{
	static char buf[4][256];
	static int k;
	char *b = buf[k++ & 3];
	size_t len = 0;
	int i;

	b[0] = '\0';
	for (i = 0; i < n && len < 200; i++) {
		if (i)
			b[len++] = ' ';
		len += (size_t)snprintf(b + len, 256 - len, fmt[0] == 'g' ? "%.2f" : "%.0f", v[i]);
	}
	return b;
}

/* ---- processes ------------------------------------------------------------- */

/* Run @argv, stdout to @out_fd (or inherited if < 0), stderr to @err_fd (or
 * inherited); returns the wait status, or -1. */
static int run(char *const argv[], int out_fd, int err_fd)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (out_fd >= 0)
			dup2(out_fd, STDOUT_FILENO);
		if (err_fd >= 0)
			dup2(err_fd, STDERR_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	child_pid = pid;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			child_pid = 0;
			return -1;
		}
	}
	child_pid = 0;
	return status;
}

static bool run_ok(char *const argv[], int out_fd, int err_fd)
{
	int st = run(argv, out_fd, err_fd);

	return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Run @argv and return its standard output (malloc'd), or NULL. */
static char *run_capture(char *const argv[])
{
	char path[PATH_MAX + 16], *buf;
	struct stat st;
	int fd, ok;

	snprintf(path, sizeof(path), "%s/out", workdir);
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	if (fd < 0)
		return NULL;
	ok = run_ok(argv, fd, -1);
	if (!ok || fstat(fd, &st) != 0 || (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		unlink(path);
		return NULL;
	}
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		buf = NULL;
	} else {
		buf[st.st_size] = '\0';
	}
	close(fd);
	unlink(path);
	return buf;
}

static bool have_program(const char *name)
{
	char *argv[] = { "sh", "-c", NULL, NULL };
	char cmd[256];
	int null = open("/dev/null", O_WRONLY);
	bool ok;

	snprintf(cmd, sizeof(cmd), "command -v %s", name);
	argv[2] = cmd;
	ok = run_ok(argv, null, null);
	if (null >= 0)
		close(null);
	return ok;
}

/* ---- the mount --------------------------------------------------------------- */

/* Is @mnt a fuse.udaxfs mount point (in /proc/self/mountinfo)? */
static bool is_mounted(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX], *sep = strstr(line, " - ");

		/* id parent major:minor root mountpoint ... - fstype ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, mnt) == 0 &&
		    sep && strncmp(sep + 3, "fuse.udaxfs ", 12) == 0)
			found = true;
	}
	fclose(f);
	return found;
}

static void print_mount_log(void)
{
	FILE *f = fopen(mountlog, "r");
	char line[512];

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f))
		bench_note("udaxfs mount: %.*s", (int)strcspn(line, "\n"), line);
	fclose(f);
}

/* Start `udaxfs mount -f [-o @opts] POOL MNT`; wait for the mount.  Returns
 * false, with the reason in @why, if it did not come up. */
static bool mount_fs(const char *opts, char *why, size_t whysize)
{
	char *argv[8];
	int i = 0, status, log;
	uint64_t t0 = bench_now_ns();
	pid_t pid;

	argv[i++] = (char *)udaxfs_bin;
	argv[i++] = "mount";
	argv[i++] = "-f";
	if (opts) {
		argv[i++] = "-o";
		argv[i++] = (char *)opts;
	}
	argv[i++] = pool;
	argv[i++] = mnt;
	argv[i] = NULL;
	log = open(mountlog, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0600);
	pid = fork();
	if (pid < 0) {
		snprintf(why, whysize, "fork: %s", strerror(errno));
		return false;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		setpgid(0, 0);  /* a Ctrl-C reaches us; we unmount it */
		setenv("PMEM2_FORCE_GRANULARITY", "CACHE_LINE", 1);
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (log >= 0)
			dup2(log, STDERR_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	if (log >= 0)
		close(log);
	mount_pid = pid;
	while (!is_mounted()) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			mount_pid = 0;
			snprintf(why, whysize, "`%s mount -f%s%s %s %s` exited with %d "
				 "(its messages follow)", udaxfs_bin, opts ? " -o " : "",
				 opts ? opts : "", pool, mnt,
				 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
			return false;
		}
		if (bench_now_ns() - t0 > MOUNT_WAIT_S * 1000000000ull) {
			snprintf(why, whysize, "no mount at %s after %d s", mnt, MOUNT_WAIT_S);
			return false;   /* the caller's unmount kills it */
		}
		usleep(10000);
	}
	return true;
}

/* Unmount (fusermount3 -u), and wait for the daemon to write back and
 * exit.  Async-signal-safe (fork, exec, waitpid, kill, nanosleep). */
static bool unmount_fs(void)
{
	char *argv[] = { "fusermount3", "-u", mnt, NULL };
	pid_t pid = mount_pid;
	int status, i, null;
	bool clean = true;

	if (pid <= 0)
		return true;
	null = open("/dev/null", O_WRONLY);
	for (i = 0; i < 50; i++) {          /* busy for a moment after a close */
		if (run_ok(argv, -1, null))
			break;
		usleep(100000);
	}
	if (null >= 0)
		close(null);
	if (i == 50) {
		clean = false;
		kill(pid, SIGTERM);     /* -f: SIGTERM unmounts cleanly too */
	}
	for (i = 0; i < UNMOUNT_WAIT_S * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(100000);
	}
	if (i == UNMOUNT_WAIT_S * 10) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		clean = false;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		clean = false;
	}
	mount_pid = 0;
	return clean;
}

/* Remove what this program made; async-signal-safe (for the handler). */
static void cleanup(void)
{
	char *rm[] = { "rm", "-rf", "--one-file-system", workdir, NULL };

	if (cleaning)
		return;
	cleaning = 1;
	unmount_fs();
	if (mnt[0])
		rmdir(mnt);     /* empty once unmounted; never removed while mounted */
	if (workdir[0])
		run(rm, -1, -1);
}

static void on_signal(int sig)
{
	pid_t child = child_pid;

	if (child > 0 && !cleaning) {   /* fio may hold a file on the mount */
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
	}
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- metadata benchmarks ------------------------------------------------------ */

static double create_unlink(const char *dir, int n)
{
	char name[PATH_MAX + 32];
	uint64_t t0 = bench_now_ns();
	int i, fd;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/f%d", dir, i);
		fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0) {
			fprintf(stderr, "udx-bench-fuse: create %s: %s\n", name, strerror(errno));
			return -1;
		}
		close(fd);
	}
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/f%d", dir, i);
		if (unlink(name) != 0) {
			fprintf(stderr, "udx-bench-fuse: unlink %s: %s\n", name, strerror(errno));
			return -1;
		}
	}
	return (double)n * 1e9 / (double)(bench_now_ns() - t0);
}

static bool make_files(const char *dir, int n)
{
	char name[PATH_MAX + 32];
	int i, fd;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return false;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/f%d", dir, i);
		fd = open(name, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			return false;
		close(fd);
	}
	return true;
}

/* @passes passes of stat() over f0..f(n-1) in @dir, by full path. */
static double stats(const char *dir, int n, int passes)
{
	char name[PATH_MAX + 32];
	size_t dlen = strlen(dir);
	struct stat st;
	uint64_t t0;
	int p, i;

	memcpy(name, dir, dlen);
	t0 = bench_now_ns();
	for (p = 0; p < passes; p++) {
		for (i = 0; i < n; i++) {
			snprintf(name + dlen, sizeof(name) - dlen, "/f%d", i);
			if (stat(name, &st) != 0) {
				fprintf(stderr, "udx-bench-fuse: stat %s: %s\n", name, strerror(errno));
				return -1;
			}
		}
	}
	return (double)n * passes * 1e9 / (double)(bench_now_ns() - t0);
}

/* ---- fio ------------------------------------------------------------------------ */

/* A minimal JSON walk: skip one value starting at @p; returns the end. */
static const char *json_skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *json_skip(const char *p)
{
	int depth = 0;

	p = json_skip_ws(p);
	do {
		if (*p == '\0')
			return NULL;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p == '\0')
				return NULL;
			p++;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			depth--;
			p++;
		} else if (depth == 0) {
			while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
			       *p != '\n' && *p != '\r' && *p != '\t')
				p++;
		} else {
			p++;
		}
	} while (depth > 0);
	return p;
}

/* The value of member @key of the object at @obj ('{'), or NULL. */
static const char *json_member(const char *obj, const char *key)
{
	size_t klen = strlen(key);
	const char *p = json_skip_ws(obj);

	if (p == NULL || *p != '{')
		return NULL;
	p++;
	for (;;) {
		const char *k;

		p = json_skip_ws(p);
		if (*p != '"')
			return NULL;
		k = p + 1;
		p = json_skip(p);
		if (p == NULL)
			return NULL;
		p = json_skip_ws(p);
		if (*p != ':')
			return NULL;
		p = json_skip_ws(p + 1);
		if ((size_t)(p - k) >= klen + 1 && strncmp(k, key, klen) == 0 && k[klen] == '"')
			return p;
		p = json_skip(p);
		if (p == NULL)
			return NULL;
		p = json_skip_ws(p);
		if (*p != ',')
			return NULL;
		p++;
	}
}

/* jobs[0].@dir.bw_bytes of fio's JSON, in GB/s; -1 on an error. */
static double fio_gbps(const char *json, const char *dir)
{
	const char *p = strchr(json, '{'), *job, *err, *d, *bw;

	if (p == NULL || (p = json_member(p, "jobs")) == NULL || *p != '[')
		return -1;
	job = json_skip_ws(p + 1);
	if (*job != '{')
		return -1;
	err = json_member(job, "error");
	if (err && strtol(err, NULL, 10) != 0) {
		fprintf(stderr, "udx-bench-fuse: fio reports error %ld\n", strtol(err, NULL, 10));
		return -1;
	}
	d = json_member(job, dir);
	if (d == NULL || (bw = json_member(d, "bw_bytes")) == NULL)
		return -1;
	return strtod(bw, NULL) / 1e9;
}

/* One fio job, sequential 1 MiB psync I/O on @file: rw=write with
 * end_fsync=1, or rw=read with invalidate=@invalidate.  GB/s, or -1. */
static double fio_seq(const char *file, bool write, bool invalidate)
{
	char fname[PATH_MAX + 16];
	char *argv[] = {
		"fio", "--name=seq", fname, write ? "--rw=write" : "--rw=read", "--bs=1m",
		"--size=" FIO_SIZE, "--ioengine=psync", "--numjobs=1",
		write ? "--end_fsync=1" : (invalidate ? "--invalidate=1" : "--invalidate=0"),
		"--output-format=json", NULL,
	};
	double gbps;
	char *out;

	snprintf(fname, sizeof(fname), "--filename=%s", file);
	if (write)
		unlink(file);   /* a fresh file each time */
	out = run_capture(argv);
	if (out == NULL) {
		fprintf(stderr, "udx-bench-fuse: fio on %s failed\n", file);
		return -1;
	}
	gbps = fio_gbps(out, write ? "write" : "read");
	if (gbps <= 0)
		fprintf(stderr, "udx-bench-fuse: no bandwidth in fio's output for %s\n", file);
	free(out);
	return gbps;
}

/* The share of @file's pages in the page cache (mincore), 0..1, or -1. */
static double resident(const char *file)
{
	int fd = open(file, O_RDONLY);
	struct stat st;
	unsigned char *vec;
	size_t pages, i, n = 0;
	void *m;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || st.st_size == 0) {
		close(fd);
		return -1;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	pages = ((size_t)st.st_size + 4095) / 4096;
	vec = malloc(pages);
	if (vec && mincore(m, (size_t)st.st_size, vec) == 0)
		for (i = 0; i < pages; i++)
			n += vec[i] & 1;
	munmap(m, (size_t)st.st_size);
	if (vec == NULL)
		return -1;
	free(vec);
	return (double)n / (double)pages;
}

static void drop_cache(const char *file)
{
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return;
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

/* ---- the runs -------------------------------------------------------------------- */

static void ratios(const double *a, const double *b, double *r, int n)
{
	int i;

	for (i = 0; i < n; i++)
		r[i] = a[i] / b[i];
}

static bool bench_metadata(void)
{
	char fdir[PATH_MAX + 16], tdir[PATH_MAX + 16];
	double a[RUNS], b[RUNS], r[RUNS];
	int i;

	/* create + unlink */
	snprintf(fdir, sizeof(fdir), "%s/cu", mnt);
	snprintf(tdir, sizeof(tdir), "%s/cu", tmpfsdir);
	if (mkdir(fdir, 0755) != 0 || mkdir(tdir, 0755) != 0) {
		fprintf(stderr, "udx-bench-fuse: mkdir cu: %s\n", strerror(errno));
		return false;
	}
	for (i = 0; i < RUNS; i++) {
		a[i] = create_unlink(fdir, NAMES);
		b[i] = create_unlink(tdir, NAMES);
		if (a[i] < 0 || b[i] < 0)
			return false;
	}
	ratios(a, b, r, RUNS);
	bench_report("fuse_create_unlink_per_s", median(a, RUNS));
	bench_report("fuse_create_unlink_vs_tmpfs", median(r, RUNS));
	bench_note("create+unlink of %d names in one directory, pairs per s (median of %d rounds): "
	     "fuse %.0f, tmpfs %.0f, fuse/tmpfs %.3f (%.1fx slower); rounds fuse [%s] tmpfs [%s]",
	     NAMES, RUNS, median(a, RUNS), median(b, RUNS), median(r, RUNS),
	     1 / median(r, RUNS), list(a, RUNS, "f"), list(b, RUNS, "f"));

	/* stat, with the kernel's caches as the mount sets them */
	snprintf(fdir, sizeof(fdir), "%s/st", mnt);
	snprintf(tdir, sizeof(tdir), "%s/st", tmpfsdir);
	if (!make_files(fdir, NAMES) || !make_files(tdir, NAMES)) {
		fprintf(stderr, "udx-bench-fuse: making the stat files: %s\n", strerror(errno));
		return false;
	}
	if (stats(fdir, NAMES, 1) < 0 || stats(tdir, NAMES, 1) < 0)  /* warm up */
		return false;
	for (i = 0; i < RUNS; i++) {
		a[i] = stats(fdir, NAMES, STAT_PASSES);
		b[i] = stats(tdir, NAMES, STAT_PASSES);
		if (a[i] < 0 || b[i] < 0)
			return false;
	}
	ratios(a, b, r, RUNS);
	bench_report("fuse_stat_per_s", median(a, RUNS));
	bench_report("fuse_stat_vs_tmpfs", median(r, RUNS));
	bench_note("stat of %d files in one directory (%d passes a round; the mount's attr and "
	     "entry timeouts, 1 s by default), per s (median of %d): fuse %.0f, tmpfs %.0f, "
	     "fuse/tmpfs %.3f; rounds fuse [%s]", NAMES, STAT_PASSES, RUNS, median(a, RUNS),
	     median(b, RUNS), median(r, RUNS), list(a, RUNS, "f"));
	return true;
}

/* Mounted with attr_timeout=0,entry_timeout=0: every stat asks the daemon. */
static bool bench_stat_nocache(void)
{
	char fdir[PATH_MAX + 16], tdir[PATH_MAX + 16];
	double a[RUNS], b[RUNS], r[RUNS];
	int i;

	snprintf(fdir, sizeof(fdir), "%s/st", mnt);
	snprintf(tdir, sizeof(tdir), "%s/st", tmpfsdir);
	if (stats(fdir, NAMES, 1) < 0 || stats(tdir, NAMES, 1) < 0)
		return false;
	for (i = 0; i < RUNS; i++) {
		a[i] = stats(fdir, NAMES, STAT_PASSES_NOCACHE);
		b[i] = stats(tdir, NAMES, STAT_PASSES_NOCACHE);
		if (a[i] < 0 || b[i] < 0)
			return false;
	}
	ratios(a, b, r, RUNS);
	bench_report("fuse_stat_nocache_per_s", median(a, RUNS));
	bench_report("fuse_stat_nocache_vs_tmpfs", median(r, RUNS));
	bench_note("stat, mounted with -o attr_timeout=0,entry_timeout=0, per s (median of %d): "
	     "fuse %.0f, tmpfs %.0f, fuse/tmpfs %.3f (%.1fx slower); rounds fuse [%s]", RUNS,
	     median(a, RUNS), median(b, RUNS), median(r, RUNS), 1 / median(r, RUNS),
	     list(a, RUNS, "f"));
	return true;
}

static bool bench_fio(void)
{
	char ffile[PATH_MAX + 16], tfile[PATH_MAX + 16];
	double a[FIO_RUNS], b[FIO_RUNS], r[FIO_RUNS], res[FIO_RUNS];
	double first_f, first_t, first_res, res_min = 1, res_max = 0;
	int i;

	snprintf(ffile, sizeof(ffile), "%s/seq", mnt);
	snprintf(tfile, sizeof(tfile), "%s/seq", tmpfsdir);

	/* the first write goes to memory never touched in this run (the sparse
	 * pool file's pages, faulted in one by one; new tmpfs pages), which
	 * costs far more than the later writes into freed and reused memory:
	 * reported, not counted */
	first_f = fio_seq(ffile, true, false);
	first_t = fio_seq(tfile, true, false);
	if (first_f < 0 || first_t < 0)
		return false;

	for (i = 0; i < FIO_RUNS; i++) {
		a[i] = fio_seq(ffile, true, false);
		b[i] = fio_seq(tfile, true, false);
		if (a[i] < 0 || b[i] < 0)
			return false;
	}
	ratios(a, b, r, FIO_RUNS);
	bench_report("fuse_seq_write_1m_gbps", median(a, FIO_RUNS));
	bench_report("fuse_seq_write_1m_vs_tmpfs", median(r, FIO_RUNS));
	bench_note("fio rw=write bs=1m %s ioengine=psync end_fsync=1, a fresh file each run, GB/s "
	     "(median of %d): fuse %.2f, tmpfs %.2f, fuse/tmpfs %.3f; runs fuse [%s] tmpfs [%s]",
	     FIO_SIZE, FIO_RUNS, median(a, FIO_RUNS), median(b, FIO_RUNS), median(r, FIO_RUNS),
	     list(a, FIO_RUNS, "g"), list(b, FIO_RUNS, "g"));
	bench_note("not counted: the first write, into memory not touched before (the sparse "
	     "pool file's pages faulted in; new tmpfs pages): fuse %.2f GB/s, tmpfs %.2f GB/s",
	     first_f, first_t);

	/* the first read after the write: reported, not counted (how much of
	 * it the write left in the page cache is printed) */
	first_res = resident(ffile);
	first_f = fio_seq(ffile, false, false);
	if (first_f < 0)
		return false;

	/* re-read: the written file, its page cache kept (invalidate=0) */
	for (i = 0; i < FIO_RUNS; i++) {
		res[i] = resident(ffile);
		a[i] = fio_seq(ffile, false, false);
		b[i] = fio_seq(tfile, false, false);
		if (a[i] < 0 || b[i] < 0)
			return false;
		res_min = res[i] < res_min ? res[i] : res_min;
		res_max = res[i] > res_max ? res[i] : res_max;
	}
	ratios(a, b, r, FIO_RUNS);
	bench_report("fuse_seq_read_1m_gbps", median(a, FIO_RUNS));
	bench_report("fuse_seq_read_1m_vs_tmpfs", median(r, FIO_RUNS));
	bench_note("fio rw=read bs=1m invalidate=0 of the written file, GB/s (median of %d): fuse "
	     "%.2f, tmpfs %.2f, fuse/tmpfs %.3f; runs fuse [%s]", FIO_RUNS, median(a, FIO_RUNS),
	     median(b, FIO_RUNS), median(r, FIO_RUNS), list(a, FIO_RUNS, "g"));
	bench_note("  that read is %s: %.0f%%..%.0f%% of the file was in the kernel's page cache "
	     "before each run (mincore; the mount sets keep_cache)",
	     res_min > 0.99 ? "from the page cache" : res_max < 0.01 ? "from the daemon" :
	     "partly from the page cache", res_min * 100, res_max * 100);
	bench_note("not counted: the first read after the write, %.0f%% cached before it: "
	     "fuse %.2f GB/s",
	     first_res * 100, first_f);

	/* cold: the file's page cache dropped first, every byte from the daemon */
	res_min = 1;
	res_max = 0;
	for (i = 0; i < FIO_RUNS; i++) {
		drop_cache(ffile);
		res[i] = resident(ffile);
		a[i] = fio_seq(ffile, false, true);
		drop_cache(tfile);
		b[i] = fio_seq(tfile, false, true);
		if (a[i] < 0 || b[i] < 0)
			return false;
		res_min = res[i] < res_min ? res[i] : res_min;
		res_max = res[i] > res_max ? res[i] : res_max;
	}
	ratios(a, b, r, FIO_RUNS);
	bench_report("fuse_seq_read_1m_cold_gbps", median(a, FIO_RUNS));
	bench_report("fuse_seq_read_1m_cold_vs_tmpfs", median(r, FIO_RUNS));
	bench_note("cold: the same read with the file's page cache dropped (posix_fadvise "
	     "DONTNEED; fio invalidate=1), %.0f%%..%.0f%% cached before each run, GB/s "
	     "(median of %d): fuse %.2f, tmpfs %.2f (tmpfs has no cache to drop), "
	     "fuse/tmpfs %.3f; runs fuse [%s]", res_min * 100, res_max * 100, FIO_RUNS,
	     median(a, FIO_RUNS), median(b, FIO_RUNS), median(r, FIO_RUNS),
	     list(a, FIO_RUNS, "g"));
	unlink(ffile);
	unlink(tfile);
	return true;
}

static int skipped(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int skipped(const char *fmt, ...)
{
	va_list ap;

	printf("# fuse benchmarks skipped: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	char *mkfs[] = { NULL, "mkfs", pool, "--size", POOL_SIZE, NULL };
	struct sigaction sa;
	char why[PATH_MAX * 3];
	bool ok, fio;
	int fd, null;

	if (argc != 2) {
		fprintf(stderr, "usage: udx-bench-fuse UDAXFS\n"
			"  UDAXFS: the udaxfs program (build/release/udaxfs)\n");
		return 2;
	}
	udaxfs_bin = argv[1];
	if (access(udaxfs_bin, X_OK) != 0) {
		fprintf(stderr, "udx-bench-fuse: %s: %s\n", udaxfs_bin, strerror(errno));
		return 2;
	}
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return skipped("/dev/fuse: %s", strerror(errno));
	close(fd);
	if (!have_program("fusermount3"))
		return skipped("fusermount3 is not installed");
	fio = have_program("fio");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	snprintf(workdir, sizeof(workdir), "/dev/shm/udx-bench-fuse-XXXXXX");
	if (mkdtemp(workdir) == NULL) {
		workdir[0] = '\0';
		return skipped("mkdtemp /dev/shm: %s", strerror(errno));
	}
	snprintf(mnt, sizeof(mnt), "/tmp/udx-bench-fuse-mnt-XXXXXX");
	if (mkdtemp(mnt) == NULL) {
		mnt[0] = '\0';
		cleanup();
		return skipped("mkdtemp /tmp: %s", strerror(errno));
	}
	snprintf(pool, sizeof(pool), "%s/pool", workdir);
	snprintf(tmpfsdir, sizeof(tmpfsdir), "%s/tmpfs", workdir);
	snprintf(mountlog, sizeof(mountlog), "%s/mount.log", workdir);
	mkdir(tmpfsdir, 0755);

	mkfs[0] = (char *)udaxfs_bin;
	null = open("/dev/null", O_WRONLY);
	ok = run_ok(mkfs, null, -1);
	if (null >= 0)
		close(null);
	if (!ok) {
		cleanup();
		return skipped("`%s mkfs %s --size %s` failed", udaxfs_bin, pool, POOL_SIZE);
	}
	if (!mount_fs(NULL, why, sizeof(why))) {
		skipped("%s", why);
		print_mount_log();
		cleanup();
		return 0;
	}
	bench_note("fuse: udaxfs mount -f of a sparse %s pool file %s, PMEM2_FORCE_GRANULARITY="
	     "CACHE_LINE, at %s; tmpfs: %s", POOL_SIZE, pool, mnt, tmpfsdir);

	ok = bench_metadata();
	if (ok && fio)
		ok = bench_fio();
	else if (ok)
		bench_note("fio is not installed: the sequential I/O benchmarks are skipped");
	if (!unmount_fs()) {
		bench_note("the first mount did not unmount cleanly");
		print_mount_log();
		ok = false;
	}

	if (ok) {
		if (!mount_fs("attr_timeout=0,entry_timeout=0", why, sizeof(why))) {
			bench_note("the mount with attr_timeout=0,entry_timeout=0 failed: %s", why);
			print_mount_log();
			ok = false;
		} else {
			ok = bench_stat_nocache();
			if (!unmount_fs()) {
				bench_note("the second mount did not unmount cleanly");
				print_mount_log();
				ok = false;
			}
		}
	}
	cleanup();
	return ok ? 0 : 1;
}
