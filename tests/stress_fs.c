/* SPDX-License-Identifier: MIT */
/*
 * stress_fs: four threads doing random operations on one file system at
 * once, for UDX_STRESS_SECONDS (default 2 s).
 *
 * Each thread owns a private directory /tN, which no other thread touches,
 * and shares /shared with the others:
 *
 *   /tN/f0 .. f11   its files.  The thread keeps each one's expected
 *                   contents and checks every read against them.  It writes
 *                   them whole (O_TRUNC, ftruncate + pwrite backwards, or a
 *                   temporary file renamed over), changes them in place
 *                   (pwrite, append, truncate, fallocate, punch), fsyncs,
 *                   renames, exchanges and unlinks them.
 *   /tN/d0, d1      subdirectories holding one file "x"; moved to
 *                   /shared/pN_K and back (directory renames across
 *                   directories, under the rename lock, while the others
 *                   work in /shared).
 *   /shared/s0..11  files any thread may read, rename, link, exchange or
 *                   unlink.  A thread publishes one of its files by renaming
 *                   it there, adopts one by renaming it into its own
 *                   directory, and exchanges one it keeps with one there.
 *                   Files are published only "pristine": a header (magic,
 *                   tag, size) and bytes that are a function of (tag,
 *                   offset), so whoever opens one can check it.  A file that
 *                   was ever reachable from /shared is never changed in
 *                   place again (readers may hold it open; a thread even
 *                   keeps one open across operations while others move it).
 *
 * Every call's result is checked (ENOENT and EEXIST only where another
 * thread may have raced).  At the end the tree must be exactly what the
 * threads recorded; then unmount, fsck (clean), mount, and the same check
 * again, with the free inode count matching what is reachable.  A watchdog
 * aborts the test if it hangs (a deadlock).  Under ThreadSanitizer any race
 * report fails the test.
 *
 * Environment:
 *   UDX_SEED=n               the seed (printed; threads make runs differ)
 *   UDX_STRESS_SECONDS=s     how long
 *   UDX_STRESS_THREADS=n     how many threads (default 4)
 *   UDX_STRESS_VERBOSE=1     print every operation
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>

#include "testutil.h"

#define KiB (1ull << 10)
#define MAX_THREADS 16
#define NFILES   12             /* f0 .. f11 in each private directory */
#define NSHARED  12             /* s0 .. s11 in /shared */
#define NSUB     2              /* d0, d1 per thread */
#define MAXFILE  (256 * KiB)
#define HDR      32             /* the header of a pristine file */
#define MAGIC    0x53464653534a5453ull
#define HIST     48

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#ifdef __SANITIZE_THREAD__
/*
 * ThreadSanitizer's lock-order graph knows mutexes, not the tree: a
 * directory locked before its child, and after a directory rename after
 * its new parent, is an "inversion" to it although both follow the tree.
 * Its deadlock detector is therefore off (races are still reported); the
 * watchdog catches real deadlocks.  TSAN_OPTIONS still overrides this.
 */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "detect_deadlocks=0";
}
#endif

enum { SUB_NONE, SUB_HOME, SUB_PARKED };

struct tfile {
	bool present;
	bool pristine;                  /* contents are make_pristine(tag, size) */
	bool immutable;                 /* was reachable from /shared: replace only */
	uint64_t tag, size;
	uint8_t *buf;                   /* the expected contents, MAXFILE bytes,
					 * zero past size (also when absent) */
};

struct tsub {                           /* /tN/dK (or /shared/pN_K) with file x */
	int where;
	uint64_t tag, size;             /* x is pristine */
};

struct thr {
	int id;
	pthread_t th;
	uint64_t rng;
	struct tfile f[NFILES];
	struct tsub sub[NSUB];
	int held_fd;                    /* a shared file kept open, or -1 */
	uint64_t held_tag, held_size;
	uint64_t next_tag;
	uint8_t *rbuf, *wbuf;
	long ops, nread, nshared, nadopt, npublish, nraced, nheld, nswap;
	char hist[HIST][200];
};

static struct udx_fs *g_fs;
static uint64_t g_seed;
static int g_stop;                      /* atomic: threads stop */
static int g_failed;                    /* atomic: a thread found an error */
static uint64_t g_deadline;
static int g_nthreads = 4;              /* UDX_STRESS_THREADS */
static bool g_verbose;                  /* UDX_STRESS_VERBOSE: print every op */

#define MAX_ADOPTED 4                   /* immutable files a thread keeps */

/* ---- reporting ------------------------------------------------------------- */

static const char *errname(long e, char *buf, size_t n)
{
	switch (-e) {
	case ENOENT: return "-ENOENT";
	case EEXIST: return "-EEXIST";
	case ENOTDIR: return "-ENOTDIR";
	case EISDIR: return "-EISDIR";
	case ENOTEMPTY: return "-ENOTEMPTY";
	case EINVAL: return "-EINVAL";
	case EBADF: return "-EBADF";
	case ENOSPC: return "-ENOSPC";
	case EBUSY: return "-EBUSY";
	default:
		snprintf(buf, n, "%ld", e);
		return buf;
	}
}

static void thist(struct thr *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void thist(struct thr *t, const char *fmt, ...)
{
	char *h = t->hist[t->ops % HIST];
	int n = snprintf(h, sizeof(t->hist[0]), "#%ld ", t->ops);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h + n, sizeof(t->hist[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	if (g_verbose)
		fprintf(stderr, "t%d %s\n", t->id, h);
}

static void tfail(struct thr *t, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void tfail(struct thr *t, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the main thread prints every thread's last operations */
	fprintf(stderr, "stress_fs: thread %d FAILED (stress_fs.c:%d, seed UDX_SEED=%llu) at its "
		"operation #%ld: %s\n  last library message in this thread: %s\n", t->id, line,
		(unsigned long long)g_seed, t->ops, msg, udx_errmsg());
	__atomic_store_n(&g_failed, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
}

#define TCHECK(t, cond, ...) \
	do { \
		if (!(cond)) { \
			tfail((t), __LINE__, __VA_ARGS__); \
			return false; \
		} \
	} while (0)

/* @got must be @want (or @alt, when not 0). */
#define TEXPECT(t, got, want, alt, what) \
	do { \
		long g_ = (got), w_ = (want), a_ = (alt); \
		char b1_[24], b2_[24], b3_[24]; \
		TCHECK(t, g_ == w_ || (a_ != 0 && g_ == a_), "%s: got %s, expected %s%s%s", \
		       (what), errname(g_, b1_, sizeof(b1_)), errname(w_, b2_, sizeof(b2_)), \
		       a_ ? " or " : "", a_ ? errname(a_, b3_, sizeof(b3_)) : ""); \
	} while (0)

/* ---- contents --------------------------------------------------------------- */

static uint64_t rnd(struct thr *t, uint64_t n)
{
	return n ? tu_rand(&t->rng) % n : 0;
}

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The contents of a pristine file: header, then a function of (tag, offset). */
static void make_pristine(uint8_t *buf, uint64_t tag, uint64_t size)
{
	uint64_t hdr[4] = { MAGIC, tag, size, MAGIC ^ tag ^ size }, i, v;

	memcpy(buf, hdr, HDR);
	for (i = HDR; i < size; i += 8) {
		v = mix(tag ^ (i * 0x100000001b3ull));
		memcpy(buf + i, &v, MIN(8, size - i));
	}
}

/* Is @buf (@size bytes) a pristine file?  NULL, or what is wrong. */
static const char *check_pristine(const uint8_t *buf, uint64_t size, uint64_t *tag)
{
	static __thread char why[160];
	uint64_t hdr[4], i, v;

	if (size < HDR)
		return "shorter than the header";
	memcpy(hdr, buf, HDR);
	if (hdr[0] != MAGIC || hdr[3] != (MAGIC ^ hdr[1] ^ hdr[2]))
		return "a damaged header";
	if (hdr[2] != size) {
		snprintf(why, sizeof(why), "%llu bytes, but its header (tag %llx) says %llu",
			 (unsigned long long)size, (unsigned long long)hdr[1],
			 (unsigned long long)hdr[2]);
		return why;
	}
	for (i = HDR; i < size; i += 8) {
		v = mix(hdr[1] ^ (i * 0x100000001b3ull));
		if (memcmp(buf + i, &v, MIN(8, size - i)) != 0) {
			snprintf(why, sizeof(why), "bytes at %llu (of %llu) that do not match its "
				 "header (tag %llx)", (unsigned long long)i,
				 (unsigned long long)size, (unsigned long long)hdr[1]);
			return why;
		}
	}
	*tag = hdr[1];
	return NULL;
}

/* For a report: per 4 KiB block of a file that is not pristine, whether it
 * matches its header's tag (P), is zero (0), or neither (x). */
static void block_map(const uint8_t *buf, uint64_t size, char *out, size_t n)
{
	uint64_t hdr[4], b, i, v;
	size_t k = 0;

	memcpy(hdr, buf, MIN(size, (uint64_t)HDR));
	for (b = 0; b * 4096 < size && k + 2 < n; b++) {
		bool p = true, z = true;

		for (i = MAX(b * 4096, (uint64_t)HDR) & ~7ull; i < MIN(size, (b + 1) * 4096); i += 8) {
			v = mix(hdr[1] ^ (i * 0x100000001b3ull));
			p = p && memcmp(buf + i, &v, MIN(8, size - i)) == 0;
			v = 0;
			z = z && memcmp(buf + i, &v, MIN(8, size - i)) == 0;
		}
		out[k++] = p ? 'P' : z ? '0' : 'x';
	}
	out[k] = '\0';
}

static uint64_t gen_size(struct thr *t)
{
	uint64_t r = rnd(t, 100);

	if (r < 50)
		return HDR + rnd(t, 4 * KiB);
	if (r < 85)
		return HDR + rnd(t, 64 * KiB);
	return HDR + rnd(t, MAXFILE - HDR);
}

/* ---- paths ------------------------------------------------------------------- */

static void fpath(struct thr *t, int k, char *buf, size_t n)
{
	snprintf(buf, n, "/t%d/f%d", t->id, k);
}

static void spath(int m, char *buf, size_t n)
{
	snprintf(buf, n, "/shared/s%d", m);
}

static void subpath(struct thr *t, int k, int where, char *buf, size_t n)
{
	if (where == SUB_PARKED)
		snprintf(buf, n, "/shared/p%d_%d", t->id, k);
	else
		snprintf(buf, n, "/t%d/d%d", t->id, k);
}

/* ---- file helpers -------------------------------------------------------- */

/* Write @len bytes of @src at @off through @fd in random pieces. */
static bool write_pieces(struct thr *t, int fd, const uint8_t *src, uint64_t len, bool backwards)
{
	uint64_t done = 0, n;
	long ret;

	while (done < len) {
		n = 1 + rnd(t, rnd(t, 2) ? 4 * KiB : 64 * KiB);
		n = MIN(len - done, n);
		if (backwards) {
			ret = udx_pwrite(g_fs, fd, src + len - done - n, n, (off_t)(len - done - n));
		} else {
			ret = udx_write(g_fs, fd, src + done, n);
		}
		TEXPECT(t, ret, (long)n, 0, backwards ? "pwrite" : "write");
		done += n;
	}
	return true;
}

/* Read a whole file through @fd (at most MAXFILE + 1 bytes) into t->rbuf. */
static bool read_all(struct thr *t, int fd, uint64_t *len)
{
	uint64_t done = 0;
	long ret;

	for (;;) {
		uint64_t n = 1 + rnd(t, 96 * KiB);

		n = MIN(MAXFILE + 1 - done, n);

		if (n == 0)
			break;
		ret = udx_read(g_fs, fd, t->rbuf + done, n);
		TCHECK(t, ret >= 0, "read: %ld", ret);
		if (ret == 0)
			break;
		done += (uint64_t)ret;
	}
	*len = done;
	return true;
}

/* Create @path (O_EXCL) with the pristine contents of (tag, size). */
static bool create_pristine(struct thr *t, const char *path, uint64_t tag, uint64_t size)
{
	int fd = udx_open(g_fs, path, O_CREAT | O_EXCL | O_WRONLY, 0644);

	TCHECK(t, fd >= 0, "create %s: %d", path, fd);
	make_pristine(t->wbuf, tag, size);
	if (!write_pieces(t, fd, t->wbuf, size, false))
		return false;
	TEXPECT(t, udx_close(g_fs, fd), 0, 0, "close");
	return true;
}

/* Check that @path holds the pristine (tag, size). */
static bool verify_pristine_path(struct thr *t, const char *path, uint64_t tag, uint64_t size)
{
	int fd = udx_open(g_fs, path, O_RDONLY, 0);
	const char *why;
	uint64_t len, got_tag = 0;

	TCHECK(t, fd >= 0, "open %s: %d", path, fd);
	if (!read_all(t, fd, &len))
		return false;
	TEXPECT(t, udx_close(g_fs, fd), 0, 0, "close");
	why = check_pristine(t->rbuf, len, &got_tag);
	TCHECK(t, why == NULL, "%s has %s", path, why);
	TCHECK(t, got_tag == tag && len == size, "%s holds tag %llx size %llu, expected tag %llx "
	       "size %llu", path, (unsigned long long)got_tag, (unsigned long long)len,
	       (unsigned long long)tag, (unsigned long long)size);
	return true;
}

static uint64_t new_tag(struct thr *t)
{
	return ((uint64_t)(t->id + 1) << 56) | (g_seed & 0xffff) << 40 | ++t->next_tag;
}

/* ---- operations on private files --------------------------------------------- */

/* Write fK whole with new pristine contents. */
static bool op_write_file(struct thr *t)
{
	int k = (int)rnd(t, NFILES), style = (int)rnd(t, 3), fd;
	struct tfile *f = &t->f[k];
	uint64_t tag = new_tag(t), size = gen_size(t);
	char path[64], tmp[64];

	fpath(t, k, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "/t%d/tmp", t->id);
	if (f->present && f->immutable)
		style = 2;              /* others may hold it open: replace it */
	thist(t, "write %s whole (style %d) size %llu", path, style, (unsigned long long)size);
	if (f->size > size)
		memset(f->buf + size, 0, f->size - size);
	make_pristine(f->buf, tag, size);
	if (style == 2) {
		fd = udx_open(g_fs, tmp, O_CREAT | O_EXCL | O_WRONLY, 0600);
		TCHECK(t, fd >= 0, "create %s: %d", tmp, fd);
	} else {
		fd = udx_open(g_fs, path, O_CREAT | O_WRONLY | (style == 0 ? O_TRUNC : 0), 0600);
		TCHECK(t, fd >= 0, "open %s: %d", path, fd);
		if (style == 1)
			TEXPECT(t, udx_ftruncate(g_fs, fd, 0), 0, 0, "ftruncate to 0");
	}
	if (!write_pieces(t, fd, f->buf, size, style == 1))
		return false;
	if (rnd(t, 4) == 0)
		TEXPECT(t, udx_fsync(g_fs, fd), 0, 0, "fsync");
	TEXPECT(t, udx_close(g_fs, fd), 0, 0, "close");
	if (style == 2)
		TEXPECT(t, udx_rename(g_fs, tmp, path, 0), 0, 0, "rename the new file over");
	*f = (struct tfile){ .present = true, .pristine = true, .tag = tag, .size = size,
			     .buf = f->buf };
	return true;
}

/* Read fK and compare it with what the thread wrote. */
static bool op_verify_file(struct thr *t)
{
	int k = (int)rnd(t, NFILES), fd;
	struct tfile *f = &t->f[k];
	char path[64];
	struct stat st;
	uint64_t len, i;

	fpath(t, k, path, sizeof(path));
	thist(t, "verify %s (%s, size %llu)", path, f->present ? "present" : "absent",
	      (unsigned long long)f->size);
	if (!f->present) {
		TEXPECT(t, udx_stat(g_fs, path, &st), -ENOENT, 0, "stat of an absent file");
		TEXPECT(t, udx_open(g_fs, path, O_RDONLY, 0), -ENOENT, 0, "open of an absent file");
		return true;
	}
	fd = udx_open(g_fs, path, O_RDONLY, 0);
	TCHECK(t, fd >= 0, "open %s: %d", path, fd);
	TEXPECT(t, udx_fstat(g_fs, fd, &st), 0, 0, "fstat");
	TCHECK(t, S_ISREG(st.st_mode) && (uint64_t)st.st_size == f->size,
	       "%s: mode %o size %lld, expected a file of %llu bytes", path, (unsigned)st.st_mode,
	       (long long)st.st_size, (unsigned long long)f->size);
	TCHECK(t, f->immutable || st.st_nlink == 1, "%s: %lu links, expected 1", path,
	       (unsigned long)st.st_nlink);
	if (!read_all(t, fd, &len))
		return false;
	TEXPECT(t, udx_close(g_fs, fd), 0, 0, "close");
	TCHECK(t, len == f->size, "%s: read %llu bytes, the file has %llu", path,
	       (unsigned long long)len, (unsigned long long)f->size);
	if (memcmp(t->rbuf, f->buf, len) != 0) {
		for (i = 0; t->rbuf[i] == f->buf[i]; i++)
			;
		TCHECK(t, false, "%s: byte %llu is %#x, the thread wrote %#x (size %llu, %s)", path,
		       (unsigned long long)i, t->rbuf[i], f->buf[i], (unsigned long long)len,
		       f->pristine ? "pristine" : "changed in place");
	}
	t->nread++;
	return true;
}

/* Change a private file in place. */
static bool op_mutate(struct thr *t)
{
	int k = (int)rnd(t, NFILES), fd, kind = (int)rnd(t, 6);
	struct tfile *f = &t->f[k];
	uint64_t off, len, i;
	char path[64];
	long ret;

	if (!f->present || f->immutable)
		return true;
	fpath(t, k, path, sizeof(path));
	fd = udx_open(g_fs, path, kind == 5 ? O_WRONLY | O_APPEND : O_RDWR, 0);
	TCHECK(t, fd >= 0, "open %s: %d", path, fd);
	off = rnd(t, MAXFILE);
	len = 1 + rnd(t, rnd(t, 2) ? 4 * KiB : 32 * KiB);
	len = MIN(len, MAXFILE - off);
	switch (kind) {
	case 0:                 /* pwrite, maybe past the end */
	case 5:                 /* append */
		if (kind == 5) {
			off = f->size;
			len = MIN(len, MAXFILE - off);
			if (len == 0)
				break;
		}
		for (i = 0; i < len; i++)
			t->wbuf[i] = (uint8_t)tu_rand(&t->rng);
		thist(t, "%s %s off %llu len %llu (size %llu)", kind ? "append" : "pwrite", path,
		      (unsigned long long)off, (unsigned long long)len, (unsigned long long)f->size);
		ret = kind ? udx_write(g_fs, fd, t->wbuf, len) :
			     udx_pwrite(g_fs, fd, t->wbuf, len, (off_t)off);
		TEXPECT(t, ret, (long)len, 0, kind ? "append" : "pwrite");
		memcpy(f->buf + off, t->wbuf, len);
		f->size = MAX(f->size, off + len);
		break;
	case 1:                 /* truncate */
		thist(t, "ftruncate %s %llu (size %llu)", path, (unsigned long long)off,
		      (unsigned long long)f->size);
		TEXPECT(t, udx_ftruncate(g_fs, fd, (off_t)off), 0, 0, "ftruncate");
		if (off < f->size)
			memset(f->buf + off, 0, f->size - off);
		f->size = off;
		break;
	case 2:                 /* punch */
		thist(t, "punch %s off %llu len %llu (size %llu)", path, (unsigned long long)off,
		      (unsigned long long)len, (unsigned long long)f->size);
		TEXPECT(t, udx_fallocate(g_fs, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 (off_t)off, (off_t)len), 0, 0, "punch");
		if (off < f->size)
			memset(f->buf + off, 0, MIN(off + len, f->size) - off);
		break;
	case 3:                 /* fallocate, keeping the size or not */
	case 4:
		thist(t, "fallocate %s %s off %llu len %llu (size %llu)", path,
		      kind == 3 ? "KEEP_SIZE" : "0", (unsigned long long)off,
		      (unsigned long long)len, (unsigned long long)f->size);
		TEXPECT(t, udx_fallocate(g_fs, fd, kind == 3 ? FALLOC_FL_KEEP_SIZE : 0, (off_t)off,
					 (off_t)len), 0, 0, "fallocate");
		if (kind == 4)
			f->size = MAX(f->size, off + len);
		break;
	}
	TEXPECT(t, udx_close(g_fs, fd), 0, 0, "close");
	f->pristine = false;
	return true;
}

static bool op_unlink(struct thr *t)
{
	int k = (int)rnd(t, NFILES);
	char path[64];

	fpath(t, k, path, sizeof(path));
	thist(t, "unlink %s", path);
	TEXPECT(t, udx_unlink(g_fs, path), t->f[k].present ? 0 : -ENOENT, 0, "unlink");
	t->f[k].present = false;
	return true;
}

static bool op_rename_private(struct thr *t)
{
	static const unsigned flagset[] = { 0, 0, UDX_RENAME_NOREPLACE, UDX_RENAME_EXCHANGE };
	int a = (int)rnd(t, NFILES), b = (int)rnd(t, NFILES);
	unsigned flags = flagset[rnd(t, 4)];
	struct tfile *fa = &t->f[a], *fb = &t->f[b], tmp;
	char pa[64], pb[64];
	bool same = false;
	long want;

	fpath(t, a, pa, sizeof(pa));
	fpath(t, b, pb, sizeof(pb));
	if (a != b && fa->present && fb->present && fa->immutable && fb->immutable) {
		/* both adopted through names linked in /shared: maybe one inode,
		 * and then a rename does nothing (POSIX) */
		struct stat sa, sb;

		TEXPECT(t, udx_lstat(g_fs, pa, &sa), 0, 0, "lstat");
		TEXPECT(t, udx_lstat(g_fs, pb, &sb), 0, 0, "lstat");
		same = sa.st_ino == sb.st_ino;
	}
	if (!fa->present)
		want = -ENOENT;
	else if ((flags & UDX_RENAME_EXCHANGE) && !fb->present)
		want = -ENOENT;
	else if ((flags & UDX_RENAME_NOREPLACE) && fb->present)
		want = -EEXIST;
	else
		want = 0;
	thist(t, "rename %s %s flags %u", pa, pb, flags);
	TEXPECT(t, udx_rename(g_fs, pa, pb, flags), want, 0, "rename in the private directory");
	if (want || a == b || same)
		return true;
	if (flags & UDX_RENAME_EXCHANGE) {
		tmp = *fa;
		*fa = *fb;
		*fb = tmp;
	} else {
		tmp = *fb;
		*fb = *fa;
		*fa = tmp;              /* keeps the buffer */
		fa->present = false;
	}
	return true;
}

/* ---- the shared directory ------------------------------------------------- */

/* Move a pristine private file to /shared/sM (replacing what is there). */
static bool op_publish(struct thr *t)
{
	int k = (int)rnd(t, NFILES), m = (int)rnd(t, NSHARED);
	char pa[64], pb[64];

	if (!t->f[k].present || !t->f[k].pristine)
		return true;
	fpath(t, k, pa, sizeof(pa));
	spath(m, pb, sizeof(pb));
	thist(t, "publish %s as %s", pa, pb);
	TEXPECT(t, udx_rename(g_fs, pa, pb, 0), 0, 0, "publish");
	if (t->f[k].immutable) {
		/* adopted through a name that was linked in /shared: if pb is
		 * that inode too, the rename did nothing (POSIX), pa stays */
		struct stat st;
		long ret = udx_lstat(g_fs, pa, &st);

		TEXPECT(t, ret, 0, -ENOENT, "lstat after publishing");
		if (ret == 0)
			return true;
	}
	t->f[k].present = false;
	t->npublish++;
	return true;
}

/* Move /shared/sM into the private directory, check it and keep it. */
static bool op_adopt(struct thr *t)
{
	int k = (int)rnd(t, NFILES), m = (int)rnd(t, NSHARED), fd, i, n;
	struct tfile *f = &t->f[k];
	char pa[64], pb[64];
	const char *why;
	uint64_t len, tag = 0;
	long ret;

	if (f->present)
		return true;
	for (i = 0, n = 0; i < NFILES; i++)
		n += t->f[i].present && t->f[i].immutable;
	if (n >= MAX_ADOPTED)
		return true;            /* enough shared files adopted */
	spath(m, pa, sizeof(pa));
	fpath(t, k, pb, sizeof(pb));
	thist(t, "adopt %s as %s", pa, pb);
	ret = udx_rename(g_fs, pa, pb, UDX_RENAME_NOREPLACE);
	TEXPECT(t, ret, 0, -ENOENT, "adopt");
	if (ret) {
		t->nraced++;
		return true;
	}
	fd = udx_open(g_fs, pb, O_RDONLY, 0);
	TCHECK(t, fd >= 0, "open %s: %d", pb, fd);
	if (!read_all(t, fd, &len))
		return false;
	TEXPECT(t, udx_close(g_fs, fd), 0, 0, "close");
	why = check_pristine(t->rbuf, len, &tag);
	TCHECK(t, why == NULL, "adopted %s (was %s) has %s", pb, pa, why);
	if (f->size > len)
		memset(f->buf + len, 0, f->size - len);
	memcpy(f->buf, t->rbuf, len);
	*f = (struct tfile){ .present = true, .pristine = true, .immutable = true, .tag = tag,
			     .size = len, .buf = f->buf };
	t->nadopt++;
	return true;
}

/* Exchange a kept (once shared) private file with /shared/sM, across the
 * two directories, and check what came back. */
static bool op_swap(struct thr *t)
{
	int k = (int)rnd(t, NFILES), m = (int)rnd(t, NSHARED), fd;
	struct tfile *f = &t->f[k];
	char pa[64], pb[64];
	const char *why;
	uint64_t len, tag = 0;
	long ret;

	if (!f->present || !f->immutable)
		return true;
	fpath(t, k, pa, sizeof(pa));
	spath(m, pb, sizeof(pb));
	thist(t, "exchange %s %s", pa, pb);
	ret = udx_rename(g_fs, pa, pb, UDX_RENAME_EXCHANGE);
	TEXPECT(t, ret, 0, -ENOENT, "exchange with /shared");
	if (ret) {
		t->nraced++;
		return true;
	}
	fd = udx_open(g_fs, pa, O_RDONLY, 0);
	TCHECK(t, fd >= 0, "open %s: %d", pa, fd);
	if (!read_all(t, fd, &len))
		return false;
	TEXPECT(t, udx_close(g_fs, fd), 0, 0, "close");
	why = check_pristine(t->rbuf, len, &tag);
	TCHECK(t, why == NULL, "%s, exchanged with %s, has %s", pa, pb, why);
	if (f->size > len)
		memset(f->buf + len, 0, f->size - len);
	memcpy(f->buf, t->rbuf, len);
	f->tag = tag;
	f->size = len;
	t->nswap++;
	return true;
}

/* Open /shared/sM (if it is there) and check it; now and then keep it open
 * for a while, while the others may unlink or replace it. */
static bool op_shared_read(struct thr *t)
{
	int m = (int)rnd(t, NSHARED), fd;
	char path[64];
	const char *why;
	struct stat st;
	uint64_t len, tag = 0;
	long ret;

	if (t->held_fd >= 0 && rnd(t, 3) == 0) {
		thist(t, "check the held fd %d", t->held_fd);
		TEXPECT(t, udx_fstat(g_fs, t->held_fd, &st), 0, 0, "fstat of the held file");
		TCHECK(t, (uint64_t)st.st_size == t->held_size, "the held file's size changed");
		ret = udx_pread(g_fs, t->held_fd, t->rbuf, MAXFILE + 1, 0);
		TCHECK(t, ret == (long)t->held_size, "pread of the held file: %ld", ret);
		why = check_pristine(t->rbuf, (uint64_t)ret, &tag);
		TCHECK(t, why == NULL && tag == t->held_tag, "the held file has %s",
		       why ? why : "another tag");
		TEXPECT(t, udx_close(g_fs, t->held_fd), 0, 0, "close of the held file");
		t->held_fd = -1;
		t->nheld++;
		return true;
	}
	spath(m, path, sizeof(path));
	thist(t, "read %s", path);
	fd = udx_open(g_fs, path, O_RDONLY, 0);
	TEXPECT(t, fd < 0 ? fd : 0, 0, -ENOENT, "open of a shared file");
	if (fd < 0) {
		t->nraced++;
		return true;
	}
	TEXPECT(t, udx_fstat(g_fs, fd, &st), 0, 0, "fstat");
	TCHECK(t, S_ISREG(st.st_mode) && st.st_size <= (off_t)MAXFILE, "%s: mode %o size %lld",
	       path, (unsigned)st.st_mode, (long long)st.st_size);
	if (!read_all(t, fd, &len))
		return false;
	why = check_pristine(t->rbuf, len, &tag);
	if (why) {
		char map[100];

		block_map(t->rbuf, len, map, sizeof(map));
		TCHECK(t, false, "%s (inode %llu, %lld sectors) has %s; its blocks: %s", path,
		       (unsigned long long)st.st_ino, (long long)st.st_blocks, why, map);
	}
	TCHECK(t, len == (uint64_t)st.st_size, "%s: read %llu bytes, fstat says %lld", path,
	       (unsigned long long)len, (long long)st.st_size);
	t->nshared++;
	if (t->held_fd < 0 && rnd(t, 4) == 0) {
		t->held_fd = fd;
		t->held_tag = tag;
		t->held_size = len;
		return true;
	}
	TEXPECT(t, udx_close(g_fs, fd), 0, 0, "close");
	return true;
}

/* Unlink, rename, exchange or link names in /shared. */
static bool op_shared_change(struct thr *t)
{
	int a = (int)rnd(t, NSHARED), b = (int)rnd(t, NSHARED), kind = (int)rnd(t, 5);
	char pa[64], pb[64];
	long ret;

	spath(a, pa, sizeof(pa));
	spath(b, pb, sizeof(pb));
	switch (kind) {
	case 0:
		thist(t, "unlink %s", pa);
		ret = udx_unlink(g_fs, pa);
		TEXPECT(t, ret, 0, -ENOENT, "unlink in /shared");
		break;
	case 1:
	case 2:
		thist(t, "rename %s %s%s", pa, pb, kind == 2 ? " NOREPLACE" : "");
		ret = udx_rename(g_fs, pa, pb, kind == 2 ? UDX_RENAME_NOREPLACE : 0);
		if (kind == 2)
			TCHECK(t, ret == 0 || ret == -ENOENT || ret == -EEXIST,
			       "rename NOREPLACE in /shared: %ld", ret);
		else
			TEXPECT(t, ret, 0, -ENOENT, "rename in /shared");
		break;
	case 3:
		thist(t, "rename %s %s EXCHANGE", pa, pb);
		ret = udx_rename(g_fs, pa, pb, UDX_RENAME_EXCHANGE);
		TEXPECT(t, ret, 0, -ENOENT, "exchange in /shared");
		break;
	default:
		thist(t, "link %s %s", pa, pb);
		ret = udx_link(g_fs, pa, pb);
		TCHECK(t, ret == 0 || ret == -ENOENT || ret == -EEXIST, "link in /shared: %ld", ret);
		break;
	}
	t->nraced += ret != 0;
	return true;
}

/* ---- subdirectories ------------------------------------------------------- */

static bool op_subdir(struct thr *t)
{
	int k = (int)rnd(t, NSUB), r = (int)rnd(t, 4), j;
	struct tsub *s = &t->sub[k];
	char path[64], path2[64], x[80];
	long ret;

	subpath(t, k, s->where, path, sizeof(path));
	snprintf(x, sizeof(x), "%s/x", path);
	if (s->where == SUB_NONE) {
		thist(t, "mkdir %s, create its x", path);
		TEXPECT(t, udx_mkdir(g_fs, path, 0755), 0, 0, "mkdir");
		s->tag = new_tag(t);
		s->size = gen_size(t);
		s->where = SUB_HOME;
		return create_pristine(t, x, s->tag, s->size);
	}
	if (r == 0) {
		thist(t, "verify %s", x);
		return verify_pristine_path(t, x, s->tag, s->size);
	}
	if (s->where == SUB_PARKED) {
		subpath(t, k, SUB_HOME, path2, sizeof(path2));
		thist(t, "unpark %s to %s", path, path2);
		TEXPECT(t, udx_rename(g_fs, path, path2, UDX_RENAME_NOREPLACE), 0, 0, "unpark");
		s->where = SUB_HOME;
		return true;
	}
	if (r == 1) {
		subpath(t, k, SUB_PARKED, path2, sizeof(path2));
		thist(t, "park %s as %s", path, path2);
		TEXPECT(t, udx_rename(g_fs, path, path2, rnd(t, 2) ? UDX_RENAME_NOREPLACE : 0), 0, 0,
			"park");
		s->where = SUB_PARKED;
		return true;
	}
	if (r == 2) {
		thist(t, "rmdir %s (not empty), unlink x, rmdir", path);
		TEXPECT(t, udx_rmdir(g_fs, path), -ENOTEMPTY, 0, "rmdir of a full directory");
		TEXPECT(t, udx_unlink(g_fs, x), 0, 0, "unlink x");
		TEXPECT(t, udx_rmdir(g_fs, path), 0, 0, "rmdir");
		s->where = SUB_NONE;
		return true;
	}
	/* rename to the other slot (free) */
	j = (k + 1) % NSUB;
	if (t->sub[j].where != SUB_NONE)
		return true;
	subpath(t, j, SUB_HOME, path2, sizeof(path2));
	thist(t, "rename %s %s", path, path2);
	ret = udx_rename(g_fs, path, path2, 0);
	TEXPECT(t, ret, 0, 0, "rename a directory");
	t->sub[j] = *s;
	s->where = SUB_NONE;
	return true;
}

/* ---- listings --------------------------------------------------------------- */

static bool op_readdir_private(struct thr *t)
{
	bool seen_f[NFILES] = { false }, seen_d[NSUB] = { false };
	char path[32], bad[UDX_NAME_MAX + 1] = "";
	unsigned bad_type = 0;
	struct udx_dir *d;
	struct dirent *de;
	int k, ret;

	snprintf(path, sizeof(path), "/t%d", t->id);
	thist(t, "readdir %s", path);
	ret = udx_opendir(g_fs, path, &d);
	TEXPECT(t, ret, 0, 0, "opendir");
	while ((de = udx_readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_name[0] == 'f' && (k = atoi(de->d_name + 1)) >= 0 && k < NFILES) {
			if (!t->f[k].present || seen_f[k] || de->d_type != DT_REG)
				break;
			seen_f[k] = true;
		} else if (de->d_name[0] == 'd' && (k = atoi(de->d_name + 1)) >= 0 && k < NSUB) {
			if (t->sub[k].where != SUB_HOME || seen_d[k] || de->d_type != DT_DIR)
				break;
			seen_d[k] = true;
		} else {
			break;
		}
	}
	if (de) {
		snprintf(bad, sizeof(bad), "%s", de->d_name);
		bad_type = de->d_type;
	}
	udx_closedir(d);
	TCHECK(t, bad[0] == '\0', "%s lists '%s' (type %u), which the thread does not have there "
	       "(or twice)", path, bad, bad_type);
	for (k = 0; k < NFILES; k++)
		TCHECK(t, seen_f[k] == t->f[k].present, "%s: f%d is %s the listing", path, k,
		       seen_f[k] ? "in" : "missing from");
	for (k = 0; k < NSUB; k++)
		TCHECK(t, seen_d[k] == (t->sub[k].where == SUB_HOME), "%s: d%d is %s the listing",
		       path, k, seen_d[k] ? "in" : "missing from");
	return true;
}

/* /shared: only names the threads use; this thread's parked directories
 * exactly once (nobody else moves them). */
static bool op_readdir_shared(struct thr *t)
{
	int parked[NSUB] = { 0 }, k, n, o;
	char bad[UDX_NAME_MAX + 1] = "";
	unsigned bad_type = 0;
	struct udx_dir *d;
	struct dirent *de;

	thist(t, "readdir /shared");
	TEXPECT(t, udx_opendir(g_fs, "/shared", &d), 0, 0, "opendir /shared");
	while ((de = udx_readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (sscanf(de->d_name, "s%d", &k) == 1 && k >= 0 && k < NSHARED &&
		    de->d_type == DT_REG)
			continue;
		if (sscanf(de->d_name, "p%d_%d%n", &o, &k, &n) == 2 && o >= 0 && o < g_nthreads &&
		    k >= 0 && k < NSUB && de->d_type == DT_DIR) {
			if (o == t->id)
				parked[k]++;
			continue;
		}
		snprintf(bad, sizeof(bad), "%s", de->d_name);
		bad_type = de->d_type;
		break;
	}
	udx_closedir(d);
	TCHECK(t, bad[0] == '\0', "/shared lists '%s' (type %u), a name no thread uses", bad,
	       bad_type);
	for (k = 0; k < NSUB; k++)
		TCHECK(t, parked[k] == (t->sub[k].where == SUB_PARKED),
		       "/shared lists p%d_%d %d times, expected %d", t->id, k, parked[k],
		       t->sub[k].where == SUB_PARKED);
	return true;
}

static bool op_sync(struct thr *t)
{
	int k = (int)rnd(t, NFILES), fd;
	char path[64];

	if (!t->f[k].present || rnd(t, 4) == 0) {
		thist(t, "sync");
		TEXPECT(t, udx_sync(g_fs), 0, 0, "sync");
		return true;
	}
	if (!t->f[k].present)
		return true;
	fpath(t, k, path, sizeof(path));
	thist(t, "fsync %s", path);
	fd = udx_open(g_fs, path, O_RDONLY, 0);
	TCHECK(t, fd >= 0, "open %s: %d", path, fd);
	TEXPECT(t, udx_fsync(g_fs, fd), 0, 0, "fsync");
	TEXPECT(t, udx_close(g_fs, fd), 0, 0, "close");
	return true;
}

/* ---- threads ------------------------------------------------------------------ */

static const struct {
	bool (*fn)(struct thr *t);
	unsigned weight;
} ops[] = {
	{ op_write_file, 12 }, { op_verify_file, 12 }, { op_mutate, 12 }, { op_unlink, 4 },
	{ op_rename_private, 8 }, { op_publish, 5 }, { op_adopt, 6 }, { op_shared_read, 10 },
	{ op_shared_change, 7 }, { op_subdir, 6 }, { op_readdir_private, 3 },
	{ op_readdir_shared, 3 }, { op_sync, 2 }, { op_swap, 4 },
};

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	unsigned total = 0, r, i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		total += ops[i].weight;
	while (!__atomic_load_n(&g_stop, __ATOMIC_RELAXED)) {
		if ((t->ops & 63) == 0 && tu_now_ns() >= g_deadline)
			break;
		r = (unsigned)rnd(t, total);
		for (i = 0; r >= ops[i].weight; i++)
			r -= ops[i].weight;
		t->hist[t->ops % HIST][0] = '\0';
		if (!ops[i].fn(t))
			break;
		t->ops++;
	}
	if (t->held_fd >= 0) {
		udx_close(g_fs, t->held_fd);
		t->held_fd = -1;
	}
	return NULL;
}

/* ---- the end: the tree is what the threads recorded ------------------------ */

struct inos {
	uint64_t ino[1024];
	int n;
};

static void count_ino(struct inos *s, uint64_t ino)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (s->ino[i] == ino)
			return;
	assert_true(s->n < 1024);
	s->ino[s->n++] = ino;
}

static void stat_count(struct inos *s, const char *path)
{
	struct stat st;

	assert_int_equal(udx_lstat(g_fs, path, &st), 0);
	count_ino(s, st.st_ino);
}

static bool verify_all(struct thr *th, uint64_t ffree0)
{
	struct statvfs sv;
	struct inos *s = calloc(1, sizeof(*s));
	struct udx_dir *d;
	struct dirent *de;
	char path[UDX_NAME_MAX + 32];
	int i, k;

	stat_count(s, "/");
	stat_count(s, "/shared");
	for (i = 0; i < g_nthreads; i++) {
		struct thr *t = &th[i];

		t->ops++;
		thist(t, "final check");
		if (!op_readdir_private(t) || !op_readdir_shared(t))
			return false;
		snprintf(path, sizeof(path), "/t%d", t->id);
		stat_count(s, path);
		for (k = 0; k < NFILES; k++) {
			/* check every file, with its own read sizes */
			struct stat st;
			uint64_t len;
			int fd;

			if (!t->f[k].present)
				continue;
			fpath(t, k, path, sizeof(path));
			stat_count(s, path);
			fd = udx_open(g_fs, path, O_RDONLY, 0);
			TCHECK(t, fd >= 0, "open %s: %d", path, fd);
			TEXPECT(t, udx_fstat(g_fs, fd, &st), 0, 0, "fstat");
			if (!read_all(t, fd, &len))
				return false;
			TEXPECT(t, udx_close(g_fs, fd), 0, 0, "close");
			TCHECK(t, len == t->f[k].size && (uint64_t)st.st_size == len &&
			       memcmp(t->rbuf, t->f[k].buf, len) == 0,
			       "%s: %llu bytes that differ from the %llu the thread recorded", path,
			       (unsigned long long)len, (unsigned long long)t->f[k].size);
		}
		for (k = 0; k < NSUB; k++) {
			if (t->sub[k].where == SUB_NONE)
				continue;
			subpath(t, k, t->sub[k].where, path, sizeof(path));
			stat_count(s, path);
			strcat(path, "/x");
			stat_count(s, path);
			if (!verify_pristine_path(t, path, t->sub[k].tag, t->sub[k].size))
				return false;
		}
	}
	/* every shared file is intact */
	assert_int_equal(udx_opendir(g_fs, "/shared", &d), 0);
	while ((de = udx_readdir(d)) != NULL) {
		if (de->d_name[0] != 's')
			continue;
		snprintf(path, sizeof(path), "/shared/%s", de->d_name);
		stat_count(s, path);
		th[0].ops++;
		thist(&th[0], "final check of %s", path);
		{
			int fd = udx_open(g_fs, path, O_RDONLY, 0);
			uint64_t len, tag;
			const char *why;

			TCHECK(&th[0], fd >= 0, "open %s: %d", path, fd);
			if (!read_all(&th[0], fd, &len))
				return false;
			udx_close(g_fs, fd);
			why = check_pristine(th[0].rbuf, len, &tag);
			TCHECK(&th[0], why == NULL, "%s has %s", path, why);
		}
	}
	udx_closedir(d);
	/* and nothing else lives: every inode in use is reachable */
	assert_int_equal(udx_statfs(g_fs, &sv), 0);
	if (sv.f_ffree != ffree0 - (uint64_t)(s->n - 1)) {
		fprintf(stderr, "stress_fs: %llu free inodes, but %d reachable (%llu free with the "
			"root alone): inodes leaked or lost\n", (unsigned long long)sv.f_ffree, s->n,
			(unsigned long long)ffree0);
		free(s);
		return false;
	}
	free(s);
	return true;
}

static int fsck_problems;

static void fsck_report(void *arg, const char *problem)
{
	fprintf(stderr, "fsck: %s\n", problem);
	fsck_problems++;
}

static void fsck_clean(struct udx_dev *dev)
{
	struct udx_fsck_opts o = { .report = fsck_report };
	struct udx_fsck_result r;

	fsck_problems = 0;
	assert_int_equal(udx_fsck(dev, &o, &r), 0);
	assert_int_equal(fsck_problems, 0);
}

static void test_stress(void **state)
{
	double secs = tu_stress_seconds(2.0);
	struct thr *th = calloc(MAX_THREADS, sizeof(*th));
	struct tu_watchdog wd;
	struct udx_dev *dev;
	struct statvfs sv;
	uint64_t ffree0, t0;
	long total = 0;
	char path[32];
	int i, k, ret;

	g_seed = tu_seed();
	g_verbose = getenv("UDX_STRESS_VERBOSE") != NULL;
	if (getenv("UDX_STRESS_THREADS"))
		g_nthreads = MAX(1, MIN(MAX_THREADS, atoi(getenv("UDX_STRESS_THREADS"))));
	tu_watchdog_start(&wd, secs * 5 + 120, "stress_fs");
	dev = tu_anon("anon:128M");
	assert_int_equal(udx_mkfs(dev, NULL), 0);
	assert_int_equal(udx_mount(dev, NULL, &g_fs), 0);
	assert_int_equal(udx_statfs(g_fs, &sv), 0);
	ffree0 = sv.f_ffree;
	assert_int_equal(udx_mkdir(g_fs, "/shared", 0777), 0);
	for (i = 0; i < g_nthreads; i++) {
		struct thr *t = &th[i];

		t->id = i;
		t->rng = mix(g_seed + (uint64_t)i * 0x1234567) | 1;
		t->held_fd = -1;
		t->rbuf = malloc(MAXFILE + 1);
		t->wbuf = malloc(MAXFILE + 1);
		for (k = 0; k < NFILES; k++)
			t->f[k].buf = calloc(1, MAXFILE);
		snprintf(path, sizeof(path), "/t%d", i);
		assert_int_equal(udx_mkdir(g_fs, path, 0755), 0);
	}
	t0 = tu_now_ns();
	g_deadline = t0 + (uint64_t)(secs * 1e9);
	for (i = 0; i < g_nthreads; i++)
		assert_int_equal(pthread_create(&th[i].th, NULL, thread_main, &th[i]), 0);
	for (i = 0; i < g_nthreads; i++)
		pthread_join(th[i].th, NULL);
	if (__atomic_load_n(&g_failed, __ATOMIC_RELAXED)) {
		/* what does fsck say about it? */
		struct udx_fsck_opts o = { .report = fsck_report };
		struct udx_fsck_result r;

		for (i = 0; i < g_nthreads; i++) {
			struct thr *t = &th[i];
			long j;

			fprintf(stderr, "stress_fs: thread %d's last operations:\n", i);
			for (j = t->ops - HIST + 1; j <= t->ops; j++)
				if (j >= 0 && t->hist[j % HIST][0])
					fprintf(stderr, "    %s\n", t->hist[j % HIST]);
		}
		for (i = 0; i < 4096; i++)
			udx_close(g_fs, i);     /* left open by the failed operation */
		if (udx_unmount(g_fs) == 0) {
			fprintf(stderr, "stress_fs: fsck after the failure:\n");
			udx_fsck(dev, &o, &r);
		}
		fail_msg("a thread failed (seed UDX_SEED=%llu): see above",
			 (unsigned long long)g_seed);
	}
	for (i = 0; i < g_nthreads; i++) {
		fprintf(stderr, "stress_fs: thread %d: %ld ops, %ld own files read back, %ld shared "
			"read, %ld published, %ld adopted, %ld exchanged, %ld held open, %ld lost "
			"races\n", i, th[i].ops, th[i].nread, th[i].nshared, th[i].npublish,
			th[i].nadopt, th[i].nswap, th[i].nheld, th[i].nraced);
		total += th[i].ops;
	}
	fprintf(stderr, "stress_fs: %ld ops in %.2f s\n", total, (double)(tu_now_ns() - t0) / 1e9);

	/* the tree as recorded; then again after unmount, fsck and mount */
	if (!verify_all(th, ffree0))
		fail_msg("the tree differs from what the threads recorded (seed UDX_SEED=%llu)",
			 (unsigned long long)g_seed);
	ret = udx_unmount(g_fs);
	if (ret)
		fprintf(stderr, "unmount: %s\n", udx_errmsg());
	assert_int_equal(ret, 0);
	fsck_clean(dev);
	assert_int_equal(udx_mount(dev, NULL, &g_fs), 0);
	if (!verify_all(th, ffree0))
		fail_msg("after a remount the tree differs from what the threads recorded "
			 "(seed UDX_SEED=%llu)", (unsigned long long)g_seed);
	assert_int_equal(udx_unmount(g_fs), 0);
	fsck_clean(dev);
	udx_dev_close(dev);
	tu_watchdog_stop(&wd);
	for (i = 0; i < g_nthreads; i++) {
		for (k = 0; k < NFILES; k++)
			free(th[i].f[k].buf);
		free(th[i].rbuf);
		free(th[i].wbuf);
	}
	free(th);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
