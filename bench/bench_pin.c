/* SPDX-License-Identifier: MIT */
/*
 * Direct access benchmarks: pins, on a 4 GiB anonymous device with cache
 * line flushing forced (modelling persistent memory, as bench_fs.c does),
 * beside tmpfs (/dev/shm) and memcpy in the same run:
 *
 *   pin_unpin_4k_ns        udx_ipin+udx_unpin of 4 KiB, entry present (goal: 100-)
 *   pin_unpin_2m_ns        the same, 2 MiB over a 2 MiB entry       (goal: 100-)
 *   pin_unpin_2m_ns_2t     the same, 2 threads, one file each,
 *                          ns per pair per thread                  (goal: 100-)
 *   first_pin_2m_us        first pin of 2 MiB of written blocks (the fault path)
 *   tmpfs_mmap_first_touch_2m_us   mmap + a read per 4 KiB of 2 MiB of tmpfs
 *   first_pin_vs_tmpfs     tmpfs time / ours                       (goal: 50+)
 *   first_pin_new_2m_us    first write pin of 2 MiB of a sparse file (allocates)
 *   pin_seq_read_gbps      memcpy out of a 256 MiB file through 2 MiB pins
 *   pin_seq_read_vs_memcpy over memcpy of the same memory            (goal: 0.95+)
 *
 * Files are written with 2 MiB udx_pwrite calls so that their blocks are
 * 2 MiB aligned (2 MiB entries); every pin is checked to be one segment.
 * pin+unpin figures are medians of many short rounds, the others medians of
 * runs; comparisons are made run by run, in the same process.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udaxfs.h>
#include "bench.h"

#define RUNS 7
#define MIB (1ull << 20)
#define PMD (2 * MIB)

#define ROUNDS 2001                     /* pin+unpin rounds (median) */
#define ROUND_PAIRS 200                 /* pairs per round */
#define FIRST_CHUNKS 64                 /* first pins per run (128 MiB) */
#define NEW_CHUNKS 32                   /* first write pins per run (64 MiB) */
#define SEQ_SIZE (256 * MIB)
#define SEQ_RUNS 9

static char tmpdir[256];
static unsigned long recalls;           /* none expected: every one is a bug */

static void die(const char *what)
{
	fprintf(stderr, "bench_pin: %s: %s\n", what, udx_errmsg());
	exit(1);
}

static void pin_cb(struct udx_pin *p, enum udx_pin_event ev, uint64_t off, uint64_t len,
		   void *arg)
{
	(void)p;
	(void)arg;
	__atomic_fetch_add(&recalls, 1, __ATOMIC_RELAXED);
	fprintf(stderr, "bench_pin: unexpected pin event %d at %llu+%llu\n", (int)ev,
		(unsigned long long)off, (unsigned long long)len);
}

static uint64_t entries(struct udx_fs *fs)
{
	struct udx_fs_stats st;

	udx_fs_stats(fs, &st);
	return st.entries;
}

/* A file of @size bytes written with udx_pwrite, 2 MiB at a time (a write
 * of 2 MiB or more asks the allocator for 2 MiB aligned blocks; smaller
 * appends continue wherever the file began); returns a reference on its
 * inode (the descriptor is closed). */
static struct udx_inode *make_file(struct udx_fs *fs, const char *path, uint64_t size,
				   const char *buf)
{
	struct udx_inode *ip;
	uint64_t off;
	int fd = udx_open(fs, path, O_CREAT | O_TRUNC | O_RDWR, 0644);

	if (fd < 0)
		die(path);
	for (off = 0; off < size; off += PMD) {
		size_t n = (size_t)(size - off < PMD ? size - off : PMD);

		if (udx_pwrite(fs, fd, buf, n, (off_t)off) != (ssize_t)n)
			die("write");
	}
	if (udx_fd_inode(fs, fd, &ip))
		die("fd inode");
	udx_close(fs, fd);
	return ip;
}

/* ---- pin + unpin of a range whose entry exists ------------------------- */

static double pin_unpin_loop(struct udx_inode *ip, uint64_t off, uint64_t len, int n)
{
	struct udx_pin *p;
	uint64_t t0 = bench_now_ns();
	int i;

	for (i = 0; i < n; i++) {
		if (udx_ipin(ip, off, len, 0, pin_cb, NULL, &p))
			die("pin");
		udx_unpin(p);
	}
	return (double)(bench_now_ns() - t0) / n;
}

/* Pin once (making the entry), and check the pin is one segment. */
static void prime(struct udx_inode *ip, uint64_t off, uint64_t len, unsigned flags)
{
	struct udx_pin *p;
	size_t n;

	if (udx_ipin(ip, off, len, flags, pin_cb, NULL, &p))
		die("first pin");
	udx_pin_segs(p, &n);
	if (n != 1) {
		fprintf(stderr, "bench_pin: a %llu byte pin has %zu segments\n",
			(unsigned long long)len, n);
		exit(1);
	}
	udx_unpin(p);
}

/*
 * The machine may be shared: a figure is the median over many short rounds
 * (a round that another process interrupted lands in the upper tail), not
 * the mean of one long run.
 */
struct thr {
	struct udx_inode *ip;
	int cpu;
	double v[ROUNDS];
};

static unsigned barrier_count, barrier_gen;

/* Both threads leave together (a spinning barrier: no sleep to wake from). */
static void spin_barrier(void)
{
	unsigned gen = __atomic_load_n(&barrier_gen, __ATOMIC_ACQUIRE);

	if (__atomic_add_fetch(&barrier_count, 1, __ATOMIC_ACQ_REL) == 2) {
		__atomic_store_n(&barrier_count, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&barrier_gen, gen + 1, __ATOMIC_RELEASE);
		return;
	}
	while (__atomic_load_n(&barrier_gen, __ATOMIC_ACQUIRE) == gen)
		__builtin_ia32_pause();
}

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	int r;

	bench_pin_cpu(t->cpu);
	pin_unpin_loop(t->ip, 0, PMD, 20000);   /* warm: registers the thread */
	for (r = 0; r < ROUNDS; r++) {
		spin_barrier();
		t->v[r] = pin_unpin_loop(t->ip, 0, PMD, ROUND_PAIRS);
	}
	return NULL;
}

static void bench_pin_unpin(struct udx_fs *fs, const char *buf)
{
	static double a[ROUNDS], b[ROUNDS], c[ROUNDS], d[ROUNDS];
	static struct thr t[2];
	struct udx_inode *small, *big;
	pthread_t th[2];
	uint64_t e0;
	int r, i;

	/* 4 KiB entries: a file too small for a 2 MiB one */
	small = make_file(fs, "/pin_small", 64 << 10, buf);
	big = make_file(fs, "/pin_big", 2 * PMD, buf);
	e0 = entries(fs);
	prime(small, 0, 4096, 0);
	prime(big, 0, PMD, UDX_PIN_HUGE);
	if (entries(fs) != e0 + 2)
		fprintf(stderr, "bench_pin: priming made %llu entries, not 2\n",
			(unsigned long long)(entries(fs) - e0));
	prime(big, PMD, PMD, UDX_PIN_HUGE);     /* for 4 KiB inside a 2 MiB entry */

	bench_pin_cpu(0);
	pin_unpin_loop(small, 0, 4096, 20000);
	for (r = 0; r < ROUNDS; r++) {
		a[r] = pin_unpin_loop(small, 0, 4096, ROUND_PAIRS);
		b[r] = pin_unpin_loop(big, 0, PMD, ROUND_PAIRS);
		c[r] = pin_unpin_loop(big, PMD, 4096, ROUND_PAIRS);
	}
	bench_report("pin_unpin_4k_ns", bench_median(a, ROUNDS));
	bench_report("pin_unpin_2m_ns", bench_median(b, ROUNDS));
	bench_note("4 KiB pin inside a 2 MiB entry: %.1f ns per pair", bench_median(c, ROUNDS));

	/* two threads, a file each, rounds started together */
	for (i = 0; i < 2; i++) {
		char name[32];

		snprintf(name, sizeof(name), "/pin_t%d", i);
		t[i].ip = make_file(fs, name, PMD, buf);
		t[i].cpu = i;
		prime(t[i].ip, 0, PMD, UDX_PIN_HUGE);
	}
	for (i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, thr_main, &t[i]);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (r = 0; r < ROUNDS; r++) {
		c[r] = (t[0].v[r] + t[1].v[r]) / 2;
		d[r] = t[0].v[r] > t[1].v[r] ? t[0].v[r] : t[1].v[r];
	}
	bench_report("pin_unpin_2m_ns_2t", bench_median(c, ROUNDS));
	bench_note("2 threads (CPUs 0 and 1): the slower thread of each round, median: "
		   "%.1f ns per pair", bench_median(d, ROUNDS));

	udx_iput(small);
	udx_iput(big);
	udx_iput(t[0].ip);
	udx_iput(t[1].ip);
	udx_unlink(fs, "/pin_small");
	udx_unlink(fs, "/pin_big");
	udx_unlink(fs, "/pin_t0");
	udx_unlink(fs, "/pin_t1");
}

/* ---- first pins: the fault path ----------------------------------------- */

/* Pin each 2 MiB of [0, nchunks * 2 MiB) for the first time; us per pin. */
static double first_pins(struct udx_fs *fs, struct udx_inode *ip, int nchunks, unsigned flags)
{
	static struct udx_pin *pins[FIRST_CHUNKS];
	uint64_t e0 = entries(fs), t0;
	double us;
	int i;

	t0 = bench_now_ns();
	for (i = 0; i < nchunks; i++)
		if (udx_ipin(ip, (uint64_t)i * PMD, PMD, flags, pin_cb, NULL, &pins[i]))
			die("first pin");
	us = (double)(bench_now_ns() - t0) / 1e3 / nchunks;
	for (i = 0; i < nchunks; i++) {
		size_t n;

		udx_pin_segs(pins[i], &n);
		if (n != 1) {
			fprintf(stderr, "bench_pin: first pin %d has %zu segments\n", i, n);
			exit(1);
		}
		udx_unpin(pins[i]);
	}
	if (entries(fs) - e0 != (uint64_t)nchunks) {
		fprintf(stderr, "bench_pin: %d first pins made %llu entries\n", nchunks,
			(unsigned long long)(entries(fs) - e0));
		exit(1);
	}
	return us;
}

/* mmap 2 MiB of a tmpfs file and read a byte of each 4 KiB page: us per
 * iteration (mmap and touches timed, munmap not), the median of @iters
 * (@iters at most FIRST_CHUNKS); *@touch_only: the touches alone. */
static double tmpfs_first_touch(int fd, int iters, double *touch_only)
{
	double all[FIRST_CHUNKS], touch[FIRST_CHUNKS];
	int i;

	for (i = 0; i < iters; i++) {
		volatile const char *m;
		uint64_t t0 = bench_now_ns(), t1, t2;
		unsigned sum = 0;
		size_t off;

		m = mmap(NULL, PMD, PROT_READ, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED) {
			perror("mmap tmpfs");
			exit(1);
		}
		t1 = bench_now_ns();
		for (off = 0; off < PMD; off += 4096)
			sum += (unsigned char)m[off];
		t2 = bench_now_ns();
		__asm__ volatile("" : : "r"(sum));
		munmap((void *)m, PMD);
		all[i] = (double)(t2 - t0) / 1e3;
		touch[i] = (double)(t2 - t1) / 1e3;
	}
	*touch_only = bench_median(touch, iters);
	return bench_median(all, iters);
}

/* A sparse file of NEW_CHUNKS * 2 MiB: write pins allocate (and zero) its
 * blocks.  Returns us per first write pin; *@faults: page faults taken
 * meanwhile (the anonymous device's backing memory, on first use). */
static double new_file_pins(struct udx_fs *fs, long *faults)
{
	struct udx_inode *ip;
	struct rusage r0, r1;
	double us;
	int fd = udx_open(fs, "/new", O_CREAT | O_TRUNC | O_RDWR, 0644);

	if (fd < 0 || udx_ftruncate(fs, fd, (off_t)(NEW_CHUNKS * PMD)))
		die("sparse file");
	if (udx_fd_inode(fs, fd, &ip))
		die("fd inode");
	udx_close(fs, fd);
	getrusage(RUSAGE_THREAD, &r0);
	us = first_pins(fs, ip, NEW_CHUNKS, UDX_PIN_WRITE);
	getrusage(RUSAGE_THREAD, &r1);
	*faults = (r1.ru_minflt - r0.ru_minflt) + (r1.ru_majflt - r0.ru_majflt);
	udx_iput(ip);
	if (udx_unlink(fs, "/new"))
		die("unlink");
	return us;
}

static void bench_first_pin(struct udx_fs *fs, const char *buf)
{
	double a[RUNS], b[RUNS], ra[RUNS], t[RUNS], nw[RUNS], cold;
	long faults, cold_faults, nfaults = 0;
	char path[512];
	int r, tfd;

	/* tmpfs: a 2 MiB file written with write(2), pages in memory */
	snprintf(path, sizeof(path), "%s/touch", tmpdir);
	tfd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	if (tfd < 0 || write(tfd, buf, PMD) != (ssize_t)PMD) {
		perror("tmpfs file");
		exit(1);
	}
	tmpfs_first_touch(tfd, 8, &t[0]);                /* warm */
	/* once untimed: the device memory the runs allocate from is then
	 * resident (a real memory device takes no page faults) */
	cold = new_file_pins(fs, &cold_faults);

	for (r = 0; r < RUNS; r++) {
		struct udx_inode *ip;

		/* a fresh, written file: blocks allocated, no entries yet */
		ip = make_file(fs, "/first", FIRST_CHUNKS * PMD, buf);
		a[r] = first_pins(fs, ip, FIRST_CHUNKS, 0);
		udx_iput(ip);
		if (udx_unlink(fs, "/first"))
			die("unlink");
		b[r] = tmpfs_first_touch(tfd, FIRST_CHUNKS, &t[r]);
		ra[r] = b[r] / a[r];

		nw[r] = new_file_pins(fs, &faults);
		nfaults += faults;
	}
	bench_report("first_pin_2m_us", bench_median(a, RUNS));
	bench_report("tmpfs_mmap_first_touch_2m_us", bench_median(b, RUNS));
	bench_note("first pins: %d per run (a fresh file written with udx_pwrite each run), "
		   "%d runs; tmpfs: mmap + one read per 4 KiB page (munmap not timed), median "
		   "of %d per run; the touches alone: %.1f us", FIRST_CHUNKS, RUNS, FIRST_CHUNKS,
		   bench_median(t, RUNS));
	bench_report("first_pin_vs_tmpfs", bench_median(ra, RUNS));
	bench_report("first_pin_new_2m_us", bench_median(nw, RUNS));
	bench_note("first write pins: %d per run, a sparse file each run; page faults on the "
		   "device's anonymous memory in the timed runs: %ld (the untimed first run, "
		   "whose memory was not yet resident: %.1f us per pin, %ld faults)",
		   NEW_CHUNKS, nfaults, cold, cold_faults);
	close(tfd);
	unlink(path);
}

/* ---- sequential reads through pins ---------------------------------------- */

#define SEQ_CHUNKS (SEQ_SIZE / PMD)

/* memcpy out of [addr, addr + len) in 1 MiB pieces into @buf */
static void copy_out(char *buf, const char *addr, size_t len)
{
	size_t off;

	for (off = 0; off < len; off += MIB) {
		size_t n = len - off < MIB ? len - off : MIB;

		memcpy(buf, addr + off, n);
		__asm__ volatile("" : : "r"(buf) : "memory");
	}
}

static double pin_seq(struct udx_inode *ip, char *buf)
{
	uint64_t t0 = bench_now_ns(), off;

	for (off = 0; off < SEQ_SIZE; off += PMD) {
		const struct udx_pin_seg *s;
		struct udx_pin *p;
		size_t n, i;

		if (udx_ipin(ip, off, PMD, 0, pin_cb, NULL, &p))
			die("seq pin");
		s = udx_pin_segs(p, &n);
		for (i = 0; i < n; i++)
			copy_out(buf, s[i].addr, s[i].len);
		udx_unpin(p);
	}
	return (double)SEQ_SIZE / (double)(bench_now_ns() - t0);       /* GB/s */
}

static double memcpy_seq(char *const *addr, char *buf)
{
	uint64_t t0 = bench_now_ns();
	size_t i;

	for (i = 0; i < SEQ_CHUNKS; i++)
		copy_out(buf, addr[i], PMD);
	return (double)SEQ_SIZE / (double)(bench_now_ns() - t0);
}

static void bench_seq(struct udx_fs *fs, char *buf)
{
	static char *addr[SEQ_CHUNKS];
	double a[SEQ_RUNS], b[SEQ_RUNS], ra[SEQ_RUNS];
	struct udx_inode *ip;
	size_t i;
	int r;

	ip = make_file(fs, "/seq", SEQ_SIZE, buf);
	/* the device memory the pins show, for the baseline (and the entries) */
	for (i = 0; i < SEQ_CHUNKS; i++) {
		struct udx_pin *p;
		size_t n;
		const struct udx_pin_seg *s;

		if (udx_ipin(ip, i * PMD, PMD, 0, pin_cb, NULL, &p))
			die("seq pin");
		s = udx_pin_segs(p, &n);
		if (n != 1 || s[0].len != PMD)
			die("seq pin is not one segment");
		addr[i] = s[0].addr;
		udx_unpin(p);
	}
	pin_seq(ip, buf);
	memcpy_seq(addr, buf);
	for (r = 0; r < SEQ_RUNS; r++) {
		/* alternate the order: neither side always runs second */
		if (r & 1) {
			b[r] = memcpy_seq(addr, buf);
			a[r] = pin_seq(ip, buf);
		} else {
			a[r] = pin_seq(ip, buf);
			b[r] = memcpy_seq(addr, buf);
		}
		ra[r] = a[r] / b[r];
	}
	bench_report("pin_seq_read_gbps", bench_median(a, SEQ_RUNS));
	bench_note("memcpy of the same device memory (2 MiB chunks, 1 MiB copies into one "
		   "1 MiB buffer): %.2f GB/s", bench_median(b, SEQ_RUNS));
	bench_report("pin_seq_read_vs_memcpy", bench_median(ra, SEQ_RUNS));
	udx_iput(ip);
	udx_unlink(fs, "/seq");
}

/* The 1-minute load average: other work on a shared machine. */
static double loadavg(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double l = -1;

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

void bench_dax(void)
{
	struct udx_dev_opts dopts = { .flags = UDX_DEV_FORCE_CACHELINE };
	struct udx_dev_info info;
	struct udx_dev *dev;
	struct udx_fs *fs;
	char *buf = aligned_alloc(4096, PMD);

	if (buf == NULL)
		exit(1);
	memset(buf, 0x5a, PMD);
	snprintf(tmpdir, sizeof(tmpdir), "/dev/shm/udx-bench-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp /dev/shm");
		return;
	}
	if (udx_dev_open("anon:4G", &dopts, &dev) || udx_mkfs(dev, NULL) ||
	    udx_mount(dev, NULL, &fs))
		die("4G device");
	udx_dev_info(dev, &info);
	bench_note("dax: anon:4G, cache line flushing forced (%s), huge pages %s; "
		   "udx_ipin/udx_unpin at the inode level (no callback runs), medians of "
		   "%d rounds of %d pairs; files written with 2 MiB udx_pwrite; tmpfs: %s; "
		   "load average %.2f",
		   udx_gran_name(udx_dev_gran(dev)), info.huge ? "requested" : "not requested",
		   ROUNDS, ROUND_PAIRS, tmpdir, loadavg());

	bench_pin_unpin(fs, buf);
	bench_first_pin(fs, buf);
	bench_seq(fs, buf);
	if (recalls)
		fprintf(stderr, "bench_pin: %lu unexpected pin events\n", recalls);

	if (udx_unmount(fs))
		die("unmount");
	udx_dev_close(dev);
	rmdir(tmpdir);
	free(buf);
}
