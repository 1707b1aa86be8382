/* SPDX-License-Identifier: MIT */
/*
 * File system benchmarks, on a 4 GiB anonymous device with cache line
 * flushing forced (modelling persistent memory), beside the same operations
 * on tmpfs (/dev/shm) through system calls, in the same run:
 *
 *   fs_create_unlink_per_s, fs_create_unlink_vs_tmpfs   (goal: 5 or more)
 *   fs_stat_per_s, fs_stat_vs_tmpfs                     (goal: 5 or more)
 *   fs_pwrite4k_rand_per_s, fs_pwrite4k_rand_vs_tmpfs   (goal: 3 or more)
 *   fs_pread4k_rand_per_s, fs_pread4k_rand_vs_tmpfs     (goal: 3 or more)
 *   fs_seq_read_1m_gbps, fs_seq_read_vs_memcpy          (goal: 0.9 or more)
 *   fs_mkfs_ms_64g, fs_mount_ms_64g                     (a sparse 64 GiB pool file)
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udaxfs.h>
#include "bench.h"
#include "fs/fs.h"

#define RUNS 5
#define FILE_SIZE (1ull << 30)

static char tmpdir[256];

static void die(const char *what)
{
	fprintf(stderr, "bench_fs: %s: %s\n", what, udx_errmsg());
	exit(1);
}

static double per_s(uint64_t n, uint64_t ns)
{
	return (double)n * 1e9 / (double)ns;
}

/* ---- create + unlink ---------------------------------------------------- */

static double udx_create_unlink(struct udx_fs *fs, int n)
{
	char name[64];
	uint64_t t0 = bench_now_ns();
	int i, fd;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "/cu/f%d", i);
		fd = udx_open(fs, name, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			die("create");
		udx_close(fs, fd);
	}
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "/cu/f%d", i);
		if (udx_unlink(fs, name))
			die("unlink");
	}
	return per_s((uint64_t)n, bench_now_ns() - t0);
}

static double tmpfs_create_unlink(int n)
{
	char name[512];
	uint64_t t0 = bench_now_ns();
	int i, fd;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/cu/f%d", tmpdir, i);
		fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			exit(1);
		close(fd);
	}
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/cu/f%d", tmpdir, i);
		unlink(name);
	}
	return per_s((uint64_t)n, bench_now_ns() - t0);
}

/* ---- stat ---------------------------------------------------------------- */

static double udx_stats(struct udx_fs *fs, int n)
{
	struct stat st;
	char name[64];
	uint64_t t0;
	int i;

	t0 = bench_now_ns();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "/st/f%d", i % 1000);
		if (udx_stat(fs, name, &st))
			die("stat");
	}
	return per_s((uint64_t)n, bench_now_ns() - t0);
}

static double tmpfs_stats(int n)
{
	char name[512];
	struct stat st;
	uint64_t t0;
	int i;

	t0 = bench_now_ns();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/st/f%d", tmpdir, i % 1000);
		if (stat(name, &st))
			exit(1);
	}
	return per_s((uint64_t)n, bench_now_ns() - t0);
}

/* ---- random 4 KiB I/O ------------------------------------------------------ */

static double udx_rand4k(struct udx_fs *fs, int fd, int n, bool write, char *buf)
{
	uint64_t seed = 12345, t0 = bench_now_ns();
	int i;

	for (i = 0; i < n; i++) {
		off_t off;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		off = (off_t)(((seed >> 20) % (FILE_SIZE / 4096)) * 4096);
		if ((write ? udx_pwrite(fs, fd, buf, 4096, off) : udx_pread(fs, fd, buf, 4096, off)) != 4096)
			die("rand io");
	}
	return per_s((uint64_t)n, bench_now_ns() - t0);
}

static double tmpfs_rand4k(int fd, int n, bool write, char *buf)
{
	uint64_t seed = 12345, t0 = bench_now_ns();
	int i;

	for (i = 0; i < n; i++) {
		off_t off;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		off = (off_t)(((seed >> 20) % (FILE_SIZE / 4096)) * 4096);
		if ((write ? pwrite(fd, buf, 4096, off) : pread(fd, buf, 4096, off)) != 4096)
			exit(1);
	}
	return per_s((uint64_t)n, bench_now_ns() - t0);
}

/* ---- sequential 1 MiB reads ------------------------------------------------ */

static double udx_seq_read(struct udx_fs *fs, int fd, char *buf)
{
	uint64_t t0 = bench_now_ns(), off;

	for (off = 0; off < FILE_SIZE; off += 1 << 20)
		if (udx_pread(fs, fd, buf, 1 << 20, (off_t)off) != 1 << 20)
			die("seq read");
	return (double)FILE_SIZE / (double)(bench_now_ns() - t0);      /* GB/s */
}

/* The baseline: memcpy of the same device memory the file's extents map,
 * in the same 1 MiB pieces. */
struct seg {
	const char *addr;
	uint64_t len;
};

static int file_segments(struct udx_fs *fs, int fd, struct seg *segs, int max)
{
	struct udx_inode *ip;
	uint64_t lblk = 0, end = FILE_SIZE >> 12;
	int n = 0;

	if (udx_fd_inode(fs, fd, &ip))
		die("fd inode");
	while (lblk < end && n < max) {
		struct ext_map m;

		if (ext_lookup(ip, lblk, &m) || m.m_pblk == 0)
			die("extent lookup");
		m.m_len = MIN(m.m_len, end - lblk);
		segs[n].addr = fs_block(fs, m.m_pblk);
		segs[n].len = m.m_len << 12;
		n++;
		lblk += m.m_len;
	}
	udx_iput(ip);
	return n;
}

static double memcpy_seq(const struct seg *segs, int n, char *buf)
{
	uint64_t t0 = bench_now_ns(), total = 0, off;
	int i;

	for (i = 0; i < n; i++) {
		for (off = 0; off < segs[i].len; off += 1 << 20) {
			uint64_t len = MIN(1ull << 20, segs[i].len - off);

			memcpy(buf, segs[i].addr + off, len);
			__asm__ volatile("" : : "r"(buf) : "memory");
			total += len;
		}
	}
	return (double)total / (double)(bench_now_ns() - t0);
}

static void bench_mkfs_mount_64g(void)
{
	struct udx_dev_opts o = { .size = 64ull << 30, .flags = UDX_DEV_CREATE };
	double mk[3], mt[3];
	char path[512];
	int r;

	snprintf(path, sizeof(path), "%s/pool64g", tmpdir);
	for (r = 0; r < 3; r++) {
		struct udx_dev *dev;
		struct udx_fs *fs;
		uint64_t t0;

		unlink(path);
		if (udx_dev_open(path, &o, &dev))
			die("open 64g pool");
		t0 = bench_now_ns();
		if (udx_mkfs(dev, NULL))
			die("mkfs 64g");
		mk[r] = (double)(bench_now_ns() - t0) / 1e6;
		t0 = bench_now_ns();
		if (udx_mount(dev, NULL, &fs))
			die("mount 64g");
		mt[r] = (double)(bench_now_ns() - t0) / 1e6;
		udx_unmount(fs);
		udx_dev_close(dev);
	}
	unlink(path);
	bench_report("fs_mkfs_ms_64g", bench_median(mk, 3));
	bench_report("fs_mount_ms_64g", bench_median(mt, 3));
}

void bench_fs(void)
{
	struct udx_dev_opts dopts = { .flags = UDX_DEV_FORCE_CACHELINE };
	double a[RUNS], b[RUNS], ra[RUNS];
	struct udx_dev *dev;
	struct udx_fs *fs;
	char *buf = aligned_alloc(4096, 1 << 20);
	static struct seg segs[4096];
	char path[512];
	uint64_t off;
	int r, i, fd, tfd, nseg;

	snprintf(tmpdir, sizeof(tmpdir), "/dev/shm/udx-bench-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp /dev/shm");
		return;
	}
	if (udx_dev_open("anon:4G", &dopts, &dev) || udx_mkfs(dev, NULL) ||
	    udx_mount(dev, NULL, &fs))
		die("4G device");
	bench_note("file system: anon:4G, cache line flushing forced (%s); tmpfs: %s",
		   udx_gran_name(udx_dev_gran(dev)), tmpdir);

	/* create + unlink */
	udx_mkdir(fs, "/cu", 0755);
	snprintf(path, sizeof(path), "%s/cu", tmpdir);
	mkdir(path, 0755);
	for (r = 0; r < RUNS; r++) {
		a[r] = udx_create_unlink(fs, 20000);
		b[r] = tmpfs_create_unlink(20000);
		ra[r] = a[r] / b[r];
	}
	bench_report("fs_create_unlink_per_s", bench_median(a, RUNS));
	bench_note("tmpfs create+unlink: %.0f per s", bench_median(b, RUNS));
	bench_report("fs_create_unlink_vs_tmpfs", bench_median(ra, RUNS));

	/* stat */
	udx_mkdir(fs, "/st", 0755);
	snprintf(path, sizeof(path), "%s/st", tmpdir);
	mkdir(path, 0755);
	for (i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "/st/f%d", i);
		udx_close(fs, udx_open(fs, path, O_CREAT | O_WRONLY, 0644));
		snprintf(path, sizeof(path), "%s/st/f%d", tmpdir, i);
		close(open(path, O_CREAT | O_WRONLY, 0644));
	}
	for (r = 0; r < RUNS; r++) {
		a[r] = udx_stats(fs, 200000);
		b[r] = tmpfs_stats(200000);
		ra[r] = a[r] / b[r];
	}
	bench_report("fs_stat_per_s", bench_median(a, RUNS));
	bench_note("tmpfs stat: %.0f per s", bench_median(b, RUNS));
	bench_report("fs_stat_vs_tmpfs", bench_median(ra, RUNS));

	/* a 1 GiB file on each, written in full */
	fd = udx_open(fs, "/big", O_CREAT | O_RDWR, 0644);
	snprintf(path, sizeof(path), "%s/big", tmpdir);
	tfd = open(path, O_CREAT | O_RDWR, 0644);
	memset(buf, 0x5a, 1 << 20);
	for (off = 0; off < FILE_SIZE; off += 1 << 20) {
		if (udx_pwrite(fs, fd, buf, 1 << 20, (off_t)off) != 1 << 20)
			die("fill");
		if (pwrite(tfd, buf, 1 << 20, (off_t)off) != 1 << 20)
			exit(1);
	}
	for (r = 0; r < RUNS; r++) {
		a[r] = udx_rand4k(fs, fd, 200000, true, buf);
		b[r] = tmpfs_rand4k(tfd, 200000, true, buf);
		ra[r] = a[r] / b[r];
	}
	bench_report("fs_pwrite4k_rand_per_s", bench_median(a, RUNS));
	bench_note("tmpfs pwrite 4 KiB random: %.0f per s", bench_median(b, RUNS));
	bench_report("fs_pwrite4k_rand_vs_tmpfs", bench_median(ra, RUNS));
	for (r = 0; r < RUNS; r++) {
		a[r] = udx_rand4k(fs, fd, 200000, false, buf);
		b[r] = tmpfs_rand4k(tfd, 200000, false, buf);
		ra[r] = a[r] / b[r];
	}
	bench_report("fs_pread4k_rand_per_s", bench_median(a, RUNS));
	bench_note("tmpfs pread 4 KiB random: %.0f per s", bench_median(b, RUNS));
	bench_report("fs_pread4k_rand_vs_tmpfs", bench_median(ra, RUNS));

	/* sequential reads against memcpy of the same device memory */
	nseg = file_segments(fs, fd, segs, 4096);
	for (r = 0; r < RUNS; r++) {
		a[r] = udx_seq_read(fs, fd, buf);
		b[r] = memcpy_seq(segs, nseg, buf);
		ra[r] = a[r] / b[r];
	}
	bench_report("fs_seq_read_1m_gbps", bench_median(a, RUNS));
	bench_note("memcpy of the same device memory (%d extents): %.2f GB/s", nseg,
		   bench_median(b, RUNS));
	bench_report("fs_seq_read_vs_memcpy", bench_median(ra, RUNS));

	udx_close(fs, fd);
	close(tfd);
	udx_unmount(fs);
	udx_dev_close(dev);
	bench_mkfs_mount_64g();
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_fs: could not remove %s\n", tmpdir);
	}
	free(buf);
}
