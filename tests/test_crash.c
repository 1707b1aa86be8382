/* SPDX-License-Identifier: MIT */
/*
 * The crash harness: a power failure at every persist point of a workload,
 * recovery at the next mount, and a check against a model of what the file
 * system promised (include/udaxfs/fs.h, "Durability").  Tests are named
 * after the crash invariants of src/fs/journal.c (J1..J6) and src/fs/file.c
 * (F1, F2); one more runs random workloads.
 *
 * Making a crash
 *   The workload runs single-threaded on an anonymous device that flushes
 *   cache lines (UDX_DEV_FORCE_CACHELINE), so that every store the file
 *   system makes durable goes through udx_dev_flush() and udx_dev_drain()
 *   (udx_dev_memcpy/memset included).  Persistence hooks keep a durable image
 *   D: a flush remembers the 64-byte lines of its range as they are then
 *   ("flushed, pending"); a drain copies the pending lines into D.  Every
 *   drain is a persist point, numbered from 1 after mkfs (the workload's
 *   mount is the first operation to drain).  The crash at point k is taken
 *   inside the k-th drain, before its pending lines become durable: the
 *   image is D, and each line that differs from D (flushed and not drained,
 *   or never flushed) is taken as D has it, as its flush saw it, or as
 *   memory has it now, chosen at random (seeded), or all old, or all new.
 *   Point P+1 is a crash after the final unmount.
 *
 *   The workload is replayed from the same freshly made image for every
 *   point, so that the k-th drain is the same store each time; the run stops
 *   after the capture.  (mkfs picks a random hash seed: hence one mkfs per
 *   test, and an image copy per run.)
 *
 * What is checked
 *   The image goes onto another device and is mounted (recovery runs).  The
 *   tree is walked (udx_opendir/readdir, udx_lstat, udx_pread,
 *   udx_readlink) and compared with a model: names, types, modes, link
 *   counts, sizes, symlink targets, hard links (same inode), file contents,
 *   and mtimes set by utimens and fsync'ed.  A crash inside operation i must
 *   show the model state before i or after i, as a whole (metadata is
 *   atomic); every operation before i must be there (metadata is durable
 *   when the call returns).  File contents are checked byte by byte against
 *   what the contract allows: data in blocks that a write allocated, and
 *   fsync'ed data, exactly; an overwrite of existing blocks not yet
 *   fsync'ed, old or new (or anything, after two such overwrites); the
 *   operation in flight, its old or new bytes.  Then the bytes past every
 *   file's end must read zero once the file is made longer (F1), the
 *   unmount must succeed, and fsck must find nothing wrong.
 *
 *   Before any crash, each workload also runs once while checking every
 *   return value, and the whole tree after every operation, against the
 *   model (exactly: nothing crashed), then again after a clean remount.
 *
 *   The contract tested is fs.h's: an overwrite of existing blocks is
 *   durable after fsync (on this device a write also drains before it
 *   returns, which the check allows but does not require); bytes a write
 *   places past the old end are durable with the new size (what makes
 *   them reachable).  Timestamps are checked only after utimens and fsync.
 *
 * Known bugs
 *   Library bugs found here and not fixed yet are recognised narrowly (what
 *   the check saw, and in which operation) and counted, not failed; each is
 *   described the first time it shows (see enum kbug).  Anything else
 *   fails.  UDX_CRASH_KNOWN_BUGS=1 makes them failures again.  Remove an
 *   entry when its bug is fixed.
 *
 * The harness tests itself (crash_harness_selftest): a file system that
 * never persists one operation must be caught, and so must a model that is
 * one byte off.
 *
 * Environment
 *   UDX_SEED=n              the base seed (printed; default: the time)
 *   UDX_CRASH_POINTS=all|n  crash points per workload (default: 80 in the
 *                           random test, all in most directed ones; a half
 *                           under ASan, a quarter under TSan)
 *   UDX_CRASH_WORKLOADS=n   random workloads (default 40; 6 under sanitizers)
 *   UDX_CRASH_OPS=n         operations per random workload (default 40)
 *   UDX_STRESS_SECONDS=s    keep running random workloads for s seconds
 *   UDX_CRASH_ONLY=w[:k]    only random workload w (and only point k)
 *   UDX_CRASH_POINT=k       only point k (P+1: after the unmount) of each
 *                           workload; failure reports print the command
 *   UDX_CRASH_TEST=glob     run only the tests matching (cmocka's filter:
 *                           '*' and '?'), e.g. 'crash_J6*'
 *   UDX_CRASH_TORN=1        lines not yet durable persist 8 bytes at a time
 *                           in a quarter of the crashes (x86 promises no
 *                           more), not whole
 *   UDX_CRASH_STRICT_OVERWRITE=1
 *                           overwrites are durable when the write returns
 *                           (what this device does), not only after fsync
 *   UDX_CRASH_KNOWN_BUGS=1  see above
 *   UDX_CRASH_VERBOSE=1     print every workload's operation list
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <signal.h>

#include "testutil.h"
#include "fs/csum.h"
#include "fs/journal.h"

#define DEV_SPEC    "anon:16M"
#define DEV_SIZE    (16ull << 20)
#define LINE        64u
#define NLINES      (DEV_SIZE / LINE)
#define BLK         4096u
#define MAXF        160                 /* model inodes; slot 0 is the root */
#define MAXE        160                 /* model names */
#define PATHMAX     1024
#define TARGET_MAX  300
#define FILE_MAX    (64u << 10)         /* random workloads keep files this small */
#define POINT_END   UINT64_MAX
#define MAX_PRINTED 4                   /* detailed failure reports per test */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return (x ^ (x >> 31)) | 1;
}

/*
 * Bulk copies and compares of 16 MiB images, several per crash point.  They
 * are the harness's own single-threaded work; under ThreadSanitizer the
 * intercepted memcpy/memcmp range checks were most of the run time, so they
 * go around it (rep movsb; a plain loop not instrumented).
 */
#if defined(__x86_64__)
static void img_copy(void *dst, const void *src, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}
#else
#define img_copy memcpy
#endif

#ifdef __SANITIZE_THREAD__
__attribute__((no_sanitize_thread))
#endif
static bool line_differs(const uint8_t *a, const uint8_t *b)
{
	const uint64_t *x = (const uint64_t *)(const void *)a;
	const uint64_t *y = (const uint64_t *)(const void *)b;
	uint64_t d = 0;
	unsigned i;

	for (i = 0; i < LINE / 8; i++)
		d |= x[i] ^ y[i];
	return d != 0;
}

#ifdef __SANITIZE_THREAD__
/*
 * This program runs one thread: ThreadSanitizer can find no race here, and
 * its deadlock detector only reports lock orders seen at different times
 * (rename locks a directory as a parent in one call and as a child in a
 * later one, reported as a lock-order inversion in udx_irename).  With
 * halt_on_error that ends the run; lock order under concurrency is what
 * stress_fs checks.  TSAN_OPTIONS in the environment still overrides this.
 */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "detect_deadlocks=0";
}
#endif

/* What is being checked, for the signal handler: a crash of the harness
 * itself (a segfault in recovery, say) still says which point it was. */
static char g_ctx[768];

static void on_fatal(int sig)
{
	static const char hdr[] = "\ntest_crash: fatal signal while checking: ";
	ssize_t ignored;

	ignored = write(2, hdr, sizeof(hdr) - 1);
	ignored = write(2, g_ctx, strnlen(g_ctx, sizeof(g_ctx)));
	ignored = write(2, "\n", 1);
	(void)ignored;
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ==== the persist-point recorder ========================================= */

struct pline {
	uint64_t pl_line;
	uint8_t pl_bytes[LINE];         /* the line as its last flush saw it */
};

/*
 * A recorder watches one device through its persistence hooks.  It owns
 * rc_dur (D, the durable image), rc_img (the captured crash image) and the
 * pending lines; it is reset by rec_start() before each run.  Calls come
 * from the thread running the workload only.
 */
struct rec {
	const uint8_t *rc_mem;          /* the device's memory */
	uint8_t *rc_dur;                /* D */
	int32_t *rc_slot;               /* line -> index in rc_pend, or -1 */
	struct pline *rc_pend;          /* flushed, not yet drained */
	size_t rc_npend, rc_cap;
	uint64_t rc_drains;             /* persist points so far */
	uint64_t rc_crash_at;           /* capture in this drain; 0: never */
	uint64_t rc_rng;
	uint8_t *rc_img;                /* the crash image */
	bool rc_captured;
	bool rc_off;                    /* stop watching (after the capture) */
	int rc_op;                      /* the operation running now */
	int rc_crash_op;                /* rc_op at the capture */
	uint64_t rc_dirty, rc_new;      /* at the capture: lines differing from D,
					 * lines taken other than D */
	const char *rc_how;             /* how dirty lines were chosen */
	uint64_t rc_stray;              /* flushes outside the device */
	int rc_lose_op;                 /* self-test: drains in this operation
					 * persist nothing; -2: none */
};

static void rec_init(struct rec *r, struct udx_dev *dev)
{
	memset(r, 0, sizeof(*r));
	r->rc_mem = udx_dev_addr(dev);
	r->rc_dur = malloc(DEV_SIZE);
	r->rc_img = malloc(DEV_SIZE);
	r->rc_slot = malloc(NLINES * sizeof(*r->rc_slot));
	assert_non_null(r->rc_dur);
	assert_non_null(r->rc_img);
	assert_non_null(r->rc_slot);
	memset(r->rc_slot, 0xff, NLINES * sizeof(*r->rc_slot));
}

static void rec_exit(struct rec *r)
{
	free(r->rc_dur);
	free(r->rc_img);
	free(r->rc_slot);
	free(r->rc_pend);
}

/* Start watching with D = @durable (NULL: zeros); capture at @crash_at. */
static void rec_start(struct rec *r, const uint8_t *durable, uint64_t crash_at, uint64_t seed)
{
	size_t i;

	if (durable)
		img_copy(r->rc_dur, durable, DEV_SIZE);
	else
		memset(r->rc_dur, 0, DEV_SIZE);
	for (i = 0; i < r->rc_npend; i++)
		r->rc_slot[r->rc_pend[i].pl_line] = -1;
	r->rc_npend = 0;
	r->rc_drains = 0;
	r->rc_crash_at = crash_at;
	r->rc_rng = mix(seed);
	r->rc_captured = false;
	r->rc_off = false;
	r->rc_op = -1;
	r->rc_crash_op = -1;
	r->rc_dirty = r->rc_new = 0;
	r->rc_how = "";
	r->rc_stray = 0;
	r->rc_lose_op = -2;
}

static bool g_torn;                     /* UDX_CRASH_TORN: 8-byte granularity */

/* The power fails now: D, with each line that is not durable yet taken old,
 * as flushed, or new (with UDX_CRASH_TORN, each 8-byte word of it: only
 * aligned 8-byte stores are failure-atomic on x86). */
static void rec_capture(struct rec *r)
{
	uint64_t l, how = tu_rand(&r->rc_rng) % 4;

	r->rc_how = how == 0 ? "all old" : how == 1 ? "all new" :
		    g_torn && how == 3 ? "random 8-byte words" : "random";
	img_copy(r->rc_img, r->rc_dur, DEV_SIZE);
	for (l = 0; l < NLINES; l++) {
		const uint8_t *old = r->rc_dur + l * LINE, *now = r->rc_mem + l * LINE;
		const uint8_t *seen = r->rc_slot[l] >= 0 ? r->rc_pend[r->rc_slot[l]].pl_bytes : NULL;
		const uint8_t *cand[3];
		unsigned nc = 1, pick;

		cand[0] = old;
		if (line_differs(now, old))
			cand[nc++] = now;
		if (seen && line_differs(seen, old) && line_differs(seen, now))
			cand[nc++] = seen;
		if (nc == 1)
			continue;
		r->rc_dirty++;
		if (how == 0)
			pick = 0;
		else if (how == 1)
			pick = 1;
		else if (g_torn && how == 3) {
			unsigned wd;

			for (wd = 0; wd < LINE; wd += 8) {
				pick = (unsigned)(tu_rand(&r->rc_rng) % nc);
				memcpy(r->rc_img + l * LINE + wd, cand[pick] + wd, 8);
			}
			r->rc_new++;
			continue;
		} else {
			pick = (unsigned)(tu_rand(&r->rc_rng) % nc);
		}
		if (pick) {
			memcpy(r->rc_img + l * LINE, cand[pick], LINE);
			r->rc_new++;
		}
	}
	r->rc_captured = true;
	r->rc_off = true;
	r->rc_crash_op = r->rc_op;
}

static void rec_flush(void *ctx, const void *addr, size_t len)
{
	struct rec *r = ctx;
	uintptr_t a = (uintptr_t)addr, base = (uintptr_t)r->rc_mem;
	uint64_t l, l0, l1;

	if (r->rc_off || len == 0)
		return;
	if (a < base || a - base > DEV_SIZE || len > DEV_SIZE - (a - base)) {
		r->rc_stray++;
		return;
	}
	l0 = (a - base) / LINE;
	l1 = (a - base + len - 1) / LINE;
	for (l = l0; l <= l1; l++) {
		int32_t s = r->rc_slot[l];

		if (s < 0) {
			if (r->rc_npend == r->rc_cap) {
				size_t ncap = r->rc_cap ? r->rc_cap * 2 : 4096;
				struct pline *p = realloc(r->rc_pend, ncap * sizeof(*p));

				if (p == NULL)
					abort();
				r->rc_pend = p;
				r->rc_cap = ncap;
			}
			s = (int32_t)r->rc_npend++;
			r->rc_slot[l] = s;
			r->rc_pend[s].pl_line = l;
		}
		memcpy(r->rc_pend[s].pl_bytes, r->rc_mem + l * LINE, LINE);
	}
}

static void rec_drain(void *ctx)
{
	struct rec *r = ctx;
	size_t i;

	if (r->rc_off)
		return;
	r->rc_drains++;
	if (r->rc_drains == r->rc_crash_at) {
		rec_capture(r);
		return;
	}
	for (i = 0; i < r->rc_npend; i++) {
		const struct pline *p = &r->rc_pend[i];

		if (r->rc_op != r->rc_lose_op)
			memcpy(r->rc_dur + p->pl_line * LINE, p->pl_bytes, LINE);
		r->rc_slot[p->pl_line] = -1;
	}
	r->rc_npend = 0;
}

static const struct udx_persist_ops rec_ops = {
	.flush = rec_flush,
	.drain = rec_drain,
};

/* ==== the model ============================================================ */

enum { T_FREE, T_REG, T_DIR, T_LNK };

/* Which values a crash may show for one byte of a file. */
enum { BY_SURE, BY_TWO, BY_ANY };       /* mf_data; mf_data or mf_alt; any */

struct mfile {
	int mf_type;                    /* T_*; T_FREE: an unused slot */
	unsigned mf_perm;
	uint32_t mf_nlink;              /* files and symlinks; directories count */
	uint64_t mf_size;
	uint64_t mf_cap;                /* bytes in the arrays (a block multiple) */
	uint8_t *mf_data;               /* what a read returns now (0 past the end) */
	uint8_t *mf_alt;                /* the other value allowed (BY_TWO) */
	uint8_t *mf_fl;                 /* BY_* per byte */
	uint8_t *mf_written;            /* per block: mapped and written */
	char mf_target[TARGET_MAX + 1];
	bool mf_mtime_known;            /* set by utimens and fsync'ed since */
	struct timespec mf_mtime;
};

struct mentry {
	char me_path[PATHMAX];          /* "a/b", no leading '/' */
	int me_ino;                     /* slot in m_f */
};

struct model {
	struct mfile m_f[MAXF];
	struct mentry m_e[MAXE];
	int m_ne;
};

enum opk {
	OP_CREATE, OP_MKDIR, OP_RMDIR, OP_UNLINK, OP_RENAME, OP_LINK, OP_SYMLINK,
	OP_CHMOD, OP_UTIMENS, OP_WRITE, OP_APPEND, OP_TRUNCATE, OP_OTRUNC, OP_FALLOC,
	OP_PUNCH, OP_FSYNC, OP_UNLINK_OPEN, OP_NKINDS
};

static const char *const op_names[OP_NKINDS] = {
	"create", "mkdir", "rmdir", "unlink", "rename", "link", "symlink", "chmod",
	"utimens+fsync", "write", "append", "truncate", "open(O_TRUNC)", "fallocate",
	"punch", "fsync", "unlink-while-open",
};

struct op {
	enum opk o_kind;
	char o_path[PATHMAX];
	char o_path2[PATHMAX];          /* rename and link: the new name */
	uint64_t o_off, o_len;          /* truncate: o_off is the size; symlink:
					 * o_len is the target's length */
	unsigned o_mode;                /* permissions; fallocate mode */
	bool o_fsync;                   /* write: then fsync */
	uint64_t o_seed;                /* data, symlink target, times */
	bool o_forced;                  /* o_expect given, not from the model
					 * (an error the model cannot predict) */
	int o_expect;
};

struct workload {
	char wl_name[64];
	uint64_t wl_seed;
	struct op *wl_ops;
	int wl_n, wl_cap;
	int wl_focus;                   /* points before this op: only a sample */
	int wl_index;                   /* random workload number; -1: directed */
	uint64_t *wl_c0, *wl_c1;        /* drains before op i, and at its return */
	uint64_t wl_points;             /* drains in a whole run (P) */
};

static char g_long_name[201];

static void m_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->m_f[0].mf_type = T_DIR;
	m->m_f[0].mf_perm = 0755;
}

static void mf_release(struct mfile *f)
{
	free(f->mf_data);
	free(f->mf_alt);
	free(f->mf_fl);
	free(f->mf_written);
	memset(f, 0, sizeof(*f));
}

static void m_free(struct model *m)
{
	int i;

	for (i = 0; i < MAXF; i++)
		mf_release(&m->m_f[i]);
}

static void mf_reserve(struct mfile *f, uint64_t n)
{
	uint64_t cap = (n + BLK - 1) / BLK * BLK, old = f->mf_cap;

	if (cap <= old)
		return;
	if (cap < 2 * old)
		cap = 2 * old;
	f->mf_data = realloc(f->mf_data, cap);
	f->mf_alt = realloc(f->mf_alt, cap);
	f->mf_fl = realloc(f->mf_fl, cap);
	f->mf_written = realloc(f->mf_written, cap / BLK);
	if (!f->mf_data || !f->mf_alt || !f->mf_fl || !f->mf_written)
		abort();
	memset(f->mf_data + old, 0, cap - old);
	memset(f->mf_alt + old, 0, cap - old);
	memset(f->mf_fl + old, BY_SURE, cap - old);
	memset(f->mf_written + old / BLK, 0, (cap - old) / BLK);
	f->mf_cap = cap;
}

static int m_find(const struct model *m, const char *path)
{
	int i;

	for (i = 0; i < m->m_ne; i++)
		if (strcmp(m->m_e[i].me_path, path) == 0)
			return i;
	return -1;
}

static int m_type(const struct model *m, const char *path)
{
	int e;

	if (*path == '\0')
		return T_DIR;
	e = m_find(m, path);
	return e < 0 ? T_FREE : m->m_f[m->m_e[e].me_ino].mf_type;
}

/* The directory part of @path ("" for the root). */
static void parent_of(const char *path, char *out)
{
	const char *s = strrchr(path, '/');
	size_t n = s ? (size_t)(s - path) : 0;

	memcpy(out, path, n);
	out[n] = '\0';
}

/* Is @path inside the directory @dir (at any depth)? */
static bool is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 0)
		return *path != '\0';
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static int m_children(const struct model *m, const char *dir, bool dirs_only)
{
	char p[PATHMAX];
	int i, n = 0;

	for (i = 0; i < m->m_ne; i++) {
		parent_of(m->m_e[i].me_path, p);
		if (strcmp(p, dir) == 0 &&
		    (!dirs_only || m->m_f[m->m_e[i].me_ino].mf_type == T_DIR))
			n++;
	}
	return n;
}

static int m_new_slot(const struct model *m)
{
	int i;

	for (i = 1; i < MAXF; i++)
		if (m->m_f[i].mf_type == T_FREE)
			return i;
	return -1;
}

static void m_add_entry(struct model *m, const char *path, int ino)
{
	if (m->m_ne == MAXE)
		abort();
	snprintf(m->m_e[m->m_ne].me_path, PATHMAX, "%s", path);
	m->m_e[m->m_ne].me_ino = ino;
	m->m_ne++;
}

static void m_del_entry(struct model *m, int e)
{
	m->m_e[e] = m->m_e[--m->m_ne];
}

/* One link fewer; the last one frees the inode (directories: always). */
static void m_drop_link(struct model *m, int ino)
{
	struct mfile *f = &m->m_f[ino];

	if (f->mf_type == T_DIR || --f->mf_nlink == 0)
		mf_release(f);
}

static void pattern(uint64_t seed, uint8_t *buf, size_t len)
{
	uint64_t s = mix(seed);
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(1 + tu_rand(&s) % 255);     /* never 0: a hole shows */
}

static void op_target(const struct op *o, char *buf)
{
	uint64_t s = mix(o->o_seed ^ 0x5151);
	uint64_t i;

	for (i = 0; i < o->o_len; i++)
		buf[i] = (char)('a' + tu_rand(&s) % 26);
	buf[o->o_len] = '\0';
}

static void op_times(const struct op *o, struct timespec ts[2])
{
	ts[0].tv_sec = (time_t)(1000000000 + o->o_seed % 100000000);
	ts[0].tv_nsec = (long)((o->o_seed >> 7) % 1000000000);
	ts[1].tv_sec = (time_t)(1100000000 + (o->o_seed >> 3) % 100000000);
	ts[1].tv_nsec = (long)((o->o_seed >> 11) % 1000000000);
}

static bool g_strict_overwrite;         /* UDX_CRASH_STRICT_OVERWRITE */

/* A byte of an existing block overwritten: durable only after fsync (fs.h),
 * or at once (this device drains before a write returns: the strict mode). */
static void mf_overwrite(struct mfile *f, uint64_t i, uint8_t v)
{
	if (g_strict_overwrite) {
		f->mf_data[i] = v;
		f->mf_fl[i] = BY_SURE;
		return;
	}
	if (v == f->mf_data[i])
		return;
	if (f->mf_fl[i] == BY_SURE) {
		f->mf_alt[i] = f->mf_data[i];
		f->mf_fl[i] = BY_TWO;
	} else if (f->mf_fl[i] == BY_TWO) {
		if (v == f->mf_alt[i])
			f->mf_alt[i] = f->mf_data[i];
		else
			f->mf_fl[i] = BY_ANY;
	}
	f->mf_data[i] = v;
}

static void mf_sync(struct mfile *f)
{
	if (f->mf_cap)
		memset(f->mf_fl, BY_SURE, f->mf_cap);
}

static void m_write(struct mfile *f, uint64_t off, uint64_t len, const uint8_t *buf)
{
	uint64_t i, old = f->mf_size;

	mf_reserve(f, off + len);
	for (i = off; i < off + len; i++) {
		/* in a block written before and inside the old size: an
		 * overwrite; in a new (or unwritten) block, or past the old
		 * end (made reachable by the new size): durable at return */
		if (f->mf_written[i / BLK] && i < old) {
			mf_overwrite(f, i, buf[i - off]);
		} else {
			f->mf_data[i] = buf[i - off];
			f->mf_fl[i] = BY_SURE;
		}
	}
	for (i = off / BLK; i <= (off + len - 1) / BLK; i++)
		f->mf_written[i] = 1;
	if (off + len > f->mf_size)
		f->mf_size = off + len;
	f->mf_mtime_known = false;
}

static void m_truncate(struct mfile *f, uint64_t size)
{
	uint64_t keep = (size + BLK - 1) / BLK, b;

	if (size < f->mf_size) {
		memset(f->mf_data + size, 0, f->mf_size - size);
		memset(f->mf_fl + size, BY_SURE, f->mf_size - size);
		for (b = keep; b < f->mf_cap / BLK; b++)
			f->mf_written[b] = 0;
	}
	mf_reserve(f, size);
	f->mf_size = size;
	f->mf_mtime_known = false;
}

/* FALLOC_FL_PUNCH_HOLE: the bytes read zero; whole blocks are unmapped. */
static void m_punch(struct mfile *f, uint64_t off, uint64_t len)
{
	uint64_t end = off + len, first, last, i;

	f->mf_mtime_known = false;
	if (off >= f->mf_size)
		return;
	first = (off + BLK - 1) / BLK;
	last = end / BLK;
	if (last > (f->mf_size + BLK - 1) / BLK)
		last = (f->mf_size + BLK - 1) / BLK;
	if (end > f->mf_size)
		end = f->mf_size;
	for (i = off; i < end; i++) {
		f->mf_data[i] = 0;
		f->mf_fl[i] = BY_SURE;
	}
	for (i = first; i < last; i++)
		f->mf_written[i] = 0;
}

static int m_create(struct model *m, const char *path, int type, unsigned perm,
		    const struct op *o)
{
	char dir[PATHMAX];
	int ino;

	parent_of(path, dir);
	if (m_type(m, dir) != T_DIR)
		return -ENOENT;
	if (m_find(m, path) >= 0)
		return -EEXIST;
	ino = m_new_slot(m);
	if (ino < 0)
		abort();
	m->m_f[ino].mf_type = type;
	m->m_f[ino].mf_perm = perm;
	m->m_f[ino].mf_nlink = 1;
	if (type == T_LNK) {
		op_target(o, m->m_f[ino].mf_target);
		m->m_f[ino].mf_size = o->o_len;
	}
	m_add_entry(m, path, ino);
	return 0;
}

static int m_rename(struct model *m, const char *from, const char *to)
{
	char tdir[PATHMAX], np[PATHMAX * 2];
	int se = m_find(m, from), te, st, i;
	size_t flen = strlen(from);

	if (se < 0)
		return -ENOENT;
	parent_of(to, tdir);
	if (m_type(m, tdir) != T_DIR)
		return -ENOENT;
	te = m_find(m, to);
	st = m->m_f[m->m_e[se].me_ino].mf_type;
	if (te >= 0 && m->m_e[te].me_ino == m->m_e[se].me_ino)
		return 0;                       /* one inode: nothing to do */
	if (te >= 0 && is_under(from, to))
		return -ENOTEMPTY;              /* onto an ancestor (as Linux) */
	if (st == T_DIR && (strcmp(tdir, from) == 0 || is_under(tdir, from)))
		return -EINVAL;                 /* below itself */
	if (te >= 0) {
		int tt = m->m_f[m->m_e[te].me_ino].mf_type;

		if (st == T_DIR && tt != T_DIR)
			return -ENOTDIR;
		if (st != T_DIR && tt == T_DIR)
			return -EISDIR;
		if (tt == T_DIR && m_children(m, to, false) > 0)
			return -ENOTEMPTY;
		m_drop_link(m, m->m_e[te].me_ino);
		m_del_entry(m, te);
		se = m_find(m, from);
	}
	/* the entry and, for a directory, everything below it */
	for (i = 0; i < m->m_ne; i++) {
		char *p = m->m_e[i].me_path;

		if (i == se || (st == T_DIR && is_under(p, from))) {
			snprintf(np, sizeof(np), "%s%s", to, p + flen);
			if (strlen(np) >= PATHMAX)
				abort();
			snprintf(p, PATHMAX, "%s", np);
		}
	}
	return 0;
}

/* Apply @o to @m; returns what the call must return (0 or -errno). */
static int m_apply(struct model *m, const struct op *o)
{
	int e = o->o_kind == OP_RENAME || o->o_kind == OP_LINK || o->o_kind == OP_CREATE ||
		o->o_kind == OP_MKDIR || o->o_kind == OP_SYMLINK ? -1 : m_find(m, o->o_path);
	struct mfile *f = e >= 0 ? &m->m_f[m->m_e[e].me_ino] : NULL;
	uint8_t *buf;
	int t;

	if (o->o_forced)
		return o->o_expect;
	switch (o->o_kind) {
	case OP_CREATE:
		return m_create(m, o->o_path, T_REG, o->o_mode & 07777, o);
	case OP_MKDIR:
		return m_create(m, o->o_path, T_DIR, o->o_mode & 07777, o);
	case OP_SYMLINK:
		return m_create(m, o->o_path, T_LNK, 0777, o);
	case OP_RMDIR:
		if (e < 0)
			return -ENOENT;
		if (f->mf_type != T_DIR)
			return -ENOTDIR;
		if (m_children(m, o->o_path, false))
			return -ENOTEMPTY;
		m_drop_link(m, m->m_e[e].me_ino);
		m_del_entry(m, e);
		return 0;
	case OP_UNLINK:
	case OP_UNLINK_OPEN:
		if (e < 0)
			return -ENOENT;
		if (f->mf_type == T_DIR)
			return -EISDIR;
		m_drop_link(m, m->m_e[e].me_ino);
		m_del_entry(m, e);
		return 0;
	case OP_RENAME:
		return m_rename(m, o->o_path, o->o_path2);
	case OP_LINK: {
		char dir[PATHMAX];

		e = m_find(m, o->o_path);
		if (e < 0)
			return -ENOENT;
		t = m->m_e[e].me_ino;
		if (m->m_f[t].mf_type == T_DIR)
			return -EPERM;
		parent_of(o->o_path2, dir);
		if (m_type(m, dir) != T_DIR)
			return -ENOENT;
		if (m_find(m, o->o_path2) >= 0)
			return -EEXIST;
		m->m_f[t].mf_nlink++;
		m_add_entry(m, o->o_path2, t);
		return 0;
	}
	default:
		break;
	}
	/* the rest act on an existing file (or directory, for chmod) */
	if (e < 0)
		return -ENOENT;
	switch (o->o_kind) {
	case OP_CHMOD:
		f->mf_perm = o->o_mode & 07777;
		return 0;
	case OP_UTIMENS: {
		struct timespec ts[2];

		op_times(o, ts);
		f->mf_mtime = ts[1];
		f->mf_mtime_known = true;
		return 0;
	}
	case OP_WRITE:
	case OP_APPEND: {
		uint64_t off = o->o_kind == OP_APPEND ? f->mf_size : o->o_off;

		buf = malloc(o->o_len);
		pattern(o->o_seed, buf, o->o_len);
		m_write(f, off, o->o_len, buf);
		free(buf);
		if (o->o_fsync)
			mf_sync(f);
		return 0;
	}
	case OP_TRUNCATE:
		m_truncate(f, o->o_off);
		return 0;
	case OP_OTRUNC:
		m_truncate(f, 0);
		return 0;
	case OP_FALLOC:
		if (!(o->o_mode & FALLOC_FL_KEEP_SIZE) && o->o_off + o->o_len > f->mf_size) {
			mf_reserve(f, o->o_off + o->o_len);
			f->mf_size = o->o_off + o->o_len;
		}
		f->mf_mtime_known = false;
		return 0;
	case OP_PUNCH:
		m_punch(f, o->o_off, o->o_len);
		return 0;
	case OP_FSYNC:
		mf_sync(f);
		return 0;
	default:
		abort();
	}
}

static const char *errname(int e)
{
	static __thread char b[32];

	if (e == 0)
		return "0";
	switch (-e) {
	case ENOENT: return "-ENOENT";
	case EEXIST: return "-EEXIST";
	case ENOTDIR: return "-ENOTDIR";
	case EISDIR: return "-EISDIR";
	case ENOTEMPTY: return "-ENOTEMPTY";
	case EINVAL: return "-EINVAL";
	case EPERM: return "-EPERM";
	case ENOSPC: return "-ENOSPC";
	default:
		snprintf(b, sizeof(b), "%d", e);
		return b;
	}
}

static void op_str(const struct op *o, char *buf, size_t len)
{
	const char *p2 = o->o_path2;
	int n;

	switch (o->o_kind) {
	case OP_RENAME:
	case OP_LINK:
		n = snprintf(buf, len, "%s '%.40s' '%.40s'", op_names[o->o_kind], o->o_path, p2);
		break;
	case OP_SYMLINK:
		n = snprintf(buf, len, "symlink '%.40s' (target %llu bytes)", o->o_path,
			     (unsigned long long)o->o_len);
		break;
	case OP_CREATE:
	case OP_MKDIR:
	case OP_CHMOD:
		n = snprintf(buf, len, "%s '%.40s' %04o", op_names[o->o_kind], o->o_path, o->o_mode);
		break;
	case OP_WRITE:
		n = snprintf(buf, len, "write '%.40s' off %llu len %llu%s", o->o_path,
			     (unsigned long long)o->o_off, (unsigned long long)o->o_len,
			     o->o_fsync ? " +fsync" : "");
		break;
	case OP_APPEND:
		n = snprintf(buf, len, "append '%.40s' len %llu%s", o->o_path,
			     (unsigned long long)o->o_len, o->o_fsync ? " +fsync" : "");
		break;
	case OP_TRUNCATE:
		n = snprintf(buf, len, "truncate '%.40s' %llu", o->o_path,
			     (unsigned long long)o->o_off);
		break;
	case OP_FALLOC:
	case OP_PUNCH:
		n = snprintf(buf, len, "%s '%.40s' off %llu len %llu%s", op_names[o->o_kind],
			     o->o_path, (unsigned long long)o->o_off, (unsigned long long)o->o_len,
			     o->o_kind == OP_FALLOC && (o->o_mode & FALLOC_FL_KEEP_SIZE) ?
			     " keep-size" : "");
		break;
	default:
		n = snprintf(buf, len, "%s '%.40s'", op_names[o->o_kind], o->o_path);
		break;
	}
	if (n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " -> %s", errname(o->o_expect));
}

/* ---- workloads -------------------------------------------------------- */

static void wl_init(struct workload *w, const char *name, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->wl_name, sizeof(w->wl_name), "%s", name);
	w->wl_seed = seed;
	w->wl_index = -1;
}

static void wl_free(struct workload *w)
{
	free(w->wl_ops);
	free(w->wl_c0);
	free(w->wl_c1);
	memset(w, 0, sizeof(*w));
}

static struct op *wl_add(struct workload *w, enum opk kind, const char *path)
{
	struct op *o;

	if (w->wl_n == w->wl_cap) {
		w->wl_cap = w->wl_cap ? w->wl_cap * 2 : 64;
		w->wl_ops = realloc(w->wl_ops, (size_t)w->wl_cap * sizeof(*w->wl_ops));
		assert_non_null(w->wl_ops);
	}
	o = &w->wl_ops[w->wl_n++];
	memset(o, 0, sizeof(*o));
	o->o_kind = kind;
	snprintf(o->o_path, PATHMAX, "%s", path);
	o->o_seed = mix(w->wl_seed + (uint64_t)w->wl_n * 7919);
	o->o_mode = kind == OP_MKDIR ? 0755 : kind == OP_FALLOC || kind == OP_PUNCH ? 0 : 0644;
	return o;
}

/* Directed workloads: compute what each call must return. */
static void wl_finish(struct workload *w)
{
	struct model *m = malloc(sizeof(*m));
	int i;

	assert_non_null(m);
	m_init(m);
	for (i = 0; i < w->wl_n; i++)
		w->wl_ops[i].o_expect = m_apply(m, &w->wl_ops[i]);
	m_free(m);
	free(m);
}

/* The model after the first @n operations of @w. */
static void m_replay(struct model *m, const struct workload *w, int n)
{
	int i;

	m_init(m);
	for (i = 0; i < n && i < w->wl_n; i++)
		m_apply(m, &w->wl_ops[i]);
}

/* ---- random workloads ------------------------------------------------- */

static const char *const g_names[] = { "a", "b", "c", "d", "e", "f" };

static int pick_entry(const struct model *m, uint64_t *rng, unsigned types)
{
	int idx[MAXE], n = 0, i;

	for (i = 0; i < m->m_ne; i++)
		if (types & (1u << m->m_f[m->m_e[i].me_ino].mf_type))
			idx[n++] = i;
	return n ? idx[tu_rand(rng) % (uint64_t)n] : -1;
}

static int depth_of(const char *path)
{
	int d = *path ? 1 : 0;

	for (; *path; path++)
		d += *path == '/';
	return d;
}

/* A name in a random directory (it may exist: then the call fails). */
static void new_path(const struct model *m, uint64_t *rng, char *out)
{
	int e = pick_entry(m, rng, 1u << T_DIR);
	const char *dir = "";
	const char *name;

	if (e >= 0 && tu_rand(rng) % 4 != 0 && depth_of(m->m_e[e].me_path) < 3)
		dir = m->m_e[e].me_path;
	name = tu_rand(rng) % 16 == 0 ? g_long_name : g_names[tu_rand(rng) % 6];
	if (*dir)
		snprintf(out, PATHMAX, "%s/%s", dir, name);
	else
		snprintf(out, PATHMAX, "%s", name);
}

static uint64_t rnd(uint64_t *rng, uint64_t n)
{
	return n ? tu_rand(rng) % n : 0;
}

/*
 * Library bugs this harness found, reported, and does not count as failures
 * unless UDX_CRASH_KNOWN_BUGS is set (then they fail, and random punches
 * may cross block boundaries).  Each is recognised narrowly, by what the
 * check saw and the operation in flight; anything else still fails.
 */
enum kbug {
	KB_NONE,
	/* none open: the four this harness found (an unfinished truncate at
	 * recovery, bytes past the end from an interrupted extending write, a
	 * torn primary superblock, a crash during mkfs over an old file system)
	 * are fixed, and fail if they come back */
	KB_N
};

static const char *const kb_what[KB_N] = {
	[KB_NONE] = "(none)",
};

static bool g_known_bugs;               /* UDX_CRASH_KNOWN_BUGS */
static uint64_t g_kb_hits[KB_N];

/* One random operation, valid more often than not. */
static void gen_op(struct workload *w, const struct model *m, uint64_t *rng)
{
	static const unsigned weights[OP_NKINDS] = {
		[OP_CREATE] = 12, [OP_MKDIR] = 5, [OP_RMDIR] = 3, [OP_UNLINK] = 6,
		[OP_RENAME] = 10, [OP_LINK] = 5, [OP_SYMLINK] = 5, [OP_CHMOD] = 3,
		[OP_UTIMENS] = 3, [OP_WRITE] = 22, [OP_APPEND] = 6, [OP_TRUNCATE] = 8,
		[OP_OTRUNC] = 2, [OP_FALLOC] = 5, [OP_PUNCH] = 6, [OP_FSYNC] = 3,
		[OP_UNLINK_OPEN] = 3,
	};
	unsigned total = 0, r, k;
	char path[PATHMAX];
	struct op *o;
	int e, reg, nfree = 0, i;
	const struct mfile *f;

	for (k = 0; k < OP_NKINDS; k++)
		total += weights[k];
	for (i = 1; i < MAXF; i++)
		nfree += m->m_f[i].mf_type == T_FREE;
	r = (unsigned)rnd(rng, total);
	for (k = 0; r >= weights[k]; k++)
		r -= weights[k];
	reg = pick_entry(m, rng, 1u << T_REG);
	if (reg < 0 && k >= OP_UTIMENS)
		k = OP_CREATE;
	if ((m->m_ne > MAXE - 8 || nfree < 8) &&
	    (k == OP_CREATE || k == OP_MKDIR || k == OP_SYMLINK || k == OP_LINK))
		k = OP_UNLINK;
	f = reg >= 0 ? &m->m_f[m->m_e[reg].me_ino] : NULL;

	switch (k) {
	case OP_CREATE:
	case OP_MKDIR:
	case OP_SYMLINK:
		new_path(m, rng, path);
		o = wl_add(w, (enum opk)k, path);
		if (k == OP_CREATE)
			o->o_mode = 0600 | (unsigned)rnd(rng, 0100);
		if (k == OP_SYMLINK)
			o->o_len = rnd(rng, 3) ? 1 + rnd(rng, 60) : 121 + rnd(rng, TARGET_MAX - 121);
		return;
	case OP_RMDIR:
		e = pick_entry(m, rng, 1u << T_DIR);
		if (e < 0) {
			new_path(m, rng, path);
			wl_add(w, OP_MKDIR, path);
			return;
		}
		wl_add(w, OP_RMDIR, m->m_e[e].me_path);
		return;
	case OP_UNLINK:
		e = pick_entry(m, rng, rnd(rng, 10) ? (1u << T_REG | 1u << T_LNK) : 1u << T_DIR);
		if (e < 0)
			e = pick_entry(m, rng, 1u << T_REG | 1u << T_LNK | 1u << T_DIR);
		if (e < 0) {
			new_path(m, rng, path);
			wl_add(w, OP_CREATE, path);
			return;
		}
		wl_add(w, OP_UNLINK, m->m_e[e].me_path);
		return;
	case OP_RENAME:
	case OP_LINK:
		e = pick_entry(m, rng, k == OP_LINK && rnd(rng, 10) ?
			       (1u << T_REG | 1u << T_LNK) : (1u << T_REG | 1u << T_LNK | 1u << T_DIR));
		if (e < 0) {
			new_path(m, rng, path);
			wl_add(w, OP_CREATE, path);
			return;
		}
		o = wl_add(w, (enum opk)k, m->m_e[e].me_path);
		if (k == OP_RENAME && rnd(rng, 5) < 3) {
			int t = pick_entry(m, rng, 1u << T_REG | 1u << T_LNK | 1u << T_DIR);

			snprintf(o->o_path2, PATHMAX, "%s", m->m_e[t].me_path);
		} else {
			new_path(m, rng, o->o_path2);
		}
		return;
	case OP_CHMOD:
		e = pick_entry(m, rng, 1u << T_REG | 1u << T_DIR);
		if (e < 0) {
			new_path(m, rng, path);
			wl_add(w, OP_MKDIR, path);
			return;
		}
		o = wl_add(w, OP_CHMOD, m->m_e[e].me_path);
		o->o_mode = (m->m_f[m->m_e[e].me_ino].mf_type == T_DIR ? 0700 : 0400) |
			    (unsigned)rnd(rng, 0100);
		return;
	default:
		break;
	}
	/* operations on a regular file */
	o = wl_add(w, (enum opk)k, m->m_e[reg].me_path);
	switch (k) {
	case OP_WRITE: {
		uint64_t size = f->mf_size;

		o->o_len = 1 + rnd(rng, 12 << 10);
		switch (rnd(rng, 4)) {
		case 0:                         /* overwrite */
			o->o_off = rnd(rng, size ? size : 1);
			if (size && o->o_len > size - o->o_off + BLK)
				o->o_len = size - o->o_off + BLK;
			break;
		case 1:                         /* at the end */
			o->o_off = size;
			break;
		case 2:                         /* past the end: a hole */
			o->o_off = size + rnd(rng, 3 * BLK);
			break;
		default:
			o->o_off = rnd(rng, FILE_MAX);
			break;
		}
		if (rnd(rng, 4) == 0) {         /* whole blocks */
			o->o_off &= ~(uint64_t)(BLK - 1);
			o->o_len = BLK * (1 + rnd(rng, 3));
		}
		if (o->o_off >= FILE_MAX)
			o->o_off = rnd(rng, FILE_MAX / 2);
		if (o->o_off + o->o_len > FILE_MAX)
			o->o_len = FILE_MAX - o->o_off;
		o->o_fsync = rnd(rng, 2);
		return;
	}
	case OP_APPEND:
		o->o_len = 1 + rnd(rng, 6000);
		o->o_fsync = rnd(rng, 2);
		if (f->mf_size + o->o_len > FILE_MAX) {
			o->o_kind = OP_TRUNCATE;
			o->o_off = rnd(rng, f->mf_size);
		}
		return;
	case OP_TRUNCATE:
		switch (rnd(rng, 3)) {
		case 0:
			o->o_off = rnd(rng, f->mf_size + 1);
			break;
		case 1:
			o->o_off = f->mf_size + rnd(rng, 2 * BLK);
			break;
		default:
			o->o_off = rnd(rng, FILE_MAX);
			break;
		}
		if (rnd(rng, 4) == 0)
			o->o_off &= ~(uint64_t)(BLK - 1);
		if (o->o_off > FILE_MAX)
			o->o_off = FILE_MAX;
		return;
	case OP_FALLOC:
		o->o_off = rnd(rng, f->mf_size + 2 * BLK);
		o->o_len = 1 + rnd(rng, 4 * BLK);
		if (o->o_off + o->o_len > FILE_MAX) {
			o->o_off = rnd(rng, FILE_MAX / 2);
			o->o_len = 1 + rnd(rng, BLK);
		}
		o->o_mode = rnd(rng, 2) ? FALLOC_FL_KEEP_SIZE : 0;
		return;
	case OP_PUNCH:
		o->o_off = rnd(rng, f->mf_size + BLK);
		o->o_len = 1 + rnd(rng, 3 * BLK);
		if (rnd(rng, 3) == 0) {
			o->o_off &= ~(uint64_t)(BLK - 1);
			o->o_len = BLK * (1 + rnd(rng, 2));
		}
		return;
	case OP_UNLINK_OPEN:
		if (f->mf_nlink != 1)
			o->o_kind = OP_UNLINK;
		return;
	case OP_UTIMENS:
	case OP_OTRUNC:
	case OP_FSYNC:
		return;
	default:
		abort();
	}
}

static void gen_workload(struct workload *w, uint64_t seed, int nops)
{
	struct model *m = malloc(sizeof(*m));
	uint64_t rng = mix(seed);
	char name[64];

	assert_non_null(m);
	snprintf(name, sizeof(name), "random %#llx", (unsigned long long)seed);
	wl_init(w, name, seed);
	m_init(m);
	while (w->wl_n < nops) {
		gen_op(w, m, &rng);
		w->wl_ops[w->wl_n - 1].o_expect = m_apply(m, &w->wl_ops[w->wl_n - 1]);
	}
	m_free(m);
	free(m);
}

/* ==== running a workload =================================================== */

static int do_close(struct udx_fs *fs, int fd, int ret)
{
	int r = udx_close(fs, fd);

	return ret ? ret : r;
}

static int io_result(ssize_t n, uint64_t want)
{
	if (n < 0)
		return (int)n;
	return (uint64_t)n == want ? 0 : -EIO;
}

/* Run one operation; returns 0 or -errno. */
static int exec_op(struct udx_fs *fs, const struct op *o)
{
	struct timespec ts[2];
	char target[TARGET_MAX + 1];
	uint8_t *buf = NULL;
	int fd, ret = 0;

	switch (o->o_kind) {
	case OP_CREATE:
		fd = udx_open(fs, o->o_path, O_CREAT | O_EXCL | O_WRONLY, o->o_mode);
		return fd < 0 ? fd : do_close(fs, fd, 0);
	case OP_MKDIR:
		return udx_mkdir(fs, o->o_path, o->o_mode);
	case OP_RMDIR:
		return udx_rmdir(fs, o->o_path);
	case OP_UNLINK:
		return udx_unlink(fs, o->o_path);
	case OP_RENAME:
		return udx_rename(fs, o->o_path, o->o_path2, 0);
	case OP_LINK:
		return udx_link(fs, o->o_path, o->o_path2);
	case OP_SYMLINK:
		op_target(o, target);
		return udx_symlink(fs, target, o->o_path);
	case OP_CHMOD:
		return udx_chmod(fs, o->o_path, o->o_mode);
	case OP_UTIMENS:
		op_times(o, ts);
		ret = udx_utimens(fs, o->o_path, ts);
		if (ret)
			return ret;
		fd = udx_open(fs, o->o_path, O_RDONLY, 0);
		return fd < 0 ? fd : do_close(fs, fd, udx_fsync(fs, fd));
	case OP_TRUNCATE:
		return udx_truncate(fs, o->o_path, (off_t)o->o_off);
	case OP_OTRUNC:
		fd = udx_open(fs, o->o_path, O_WRONLY | O_TRUNC, 0);
		return fd < 0 ? fd : do_close(fs, fd, 0);
	case OP_FSYNC:
		fd = udx_open(fs, o->o_path, O_RDONLY, 0);
		return fd < 0 ? fd : do_close(fs, fd, udx_fsync(fs, fd));
	default:
		break;
	}
	fd = udx_open(fs, o->o_path, O_WRONLY | (o->o_kind == OP_APPEND ? O_APPEND : 0), 0);
	if (fd < 0)
		return fd;
	switch (o->o_kind) {
	case OP_WRITE:
	case OP_APPEND:
		buf = malloc(o->o_len);
		assert_non_null(buf);
		pattern(o->o_seed, buf, o->o_len);
		if (o->o_kind == OP_WRITE)
			ret = io_result(udx_pwrite(fs, fd, buf, o->o_len, (off_t)o->o_off), o->o_len);
		else
			ret = io_result(udx_write(fs, fd, buf, o->o_len), o->o_len);
		if (!ret && o->o_fsync)
			ret = udx_fsync(fs, fd);
		break;
	case OP_FALLOC:
		ret = udx_fallocate(fs, fd, (int)o->o_mode, (off_t)o->o_off, (off_t)o->o_len);
		break;
	case OP_PUNCH:
		ret = udx_fallocate(fs, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				    (off_t)o->o_off, (off_t)o->o_len);
		break;
	case OP_UNLINK_OPEN:
		/* the name goes; the data written after goes to an orphan */
		ret = udx_unlink(fs, o->o_path);
		if (!ret) {
			buf = malloc(BLK);
			assert_non_null(buf);
			pattern(o->o_seed, buf, BLK);
			ret = io_result(udx_pwrite(fs, fd, buf, BLK, 0), BLK);
		}
		break;
	default:
		abort();
	}
	free(buf);
	return do_close(fs, fd, ret);
}

/* ---- what a crash image holds (for reports and for known bugs) ---------- */

static bool sb_valid(const struct udx_dsuper *sb)
{
	return memcmp(sb->s_magic, UDX_FORMAT_MAGIC, 8) == 0 &&
	       sb->s_checksum == udx_csum64(sb, offsetof(struct udx_dsuper, s_checksum), 0);
}

static int nofree_alloc(void *ctx, uint64_t want, uint64_t min, uint64_t goal, unsigned flags,
			uint64_t *blk, uint64_t *got)
{
	return -ENOSPC;
}

static void nofree_free(void *ctx, uint64_t blk, uint64_t len)
{
}

static const struct udx_block_ops nofree_ops = { nofree_alloc, nofree_free };

/*
 * How many ranges would recovery roll back in @img (the journal's own
 * journal_recover(), on a scratch copy)?  -1 if there is no superblock to
 * find the journal by.
 */
static int rollback_count(const uint8_t *img)
{
	static struct udx_dev *scratch;
	const struct udx_dsuper *sb = (const struct udx_dsuper *)img;
	struct udx_journal jn;
	int n;

	if (!sb_valid(sb))
		sb = (const struct udx_dsuper *)(img + DEV_SIZE - BLK);
	if (!sb_valid(sb))
		return -1;
	if (scratch == NULL && udx_dev_open(DEV_SPEC, NULL, &scratch) != 0)
		return -1;
	img_copy(udx_dev_addr(scratch), img, DEV_SIZE);
	if (journal_init(&jn, scratch, sb->s_jstart, sb->s_jlanes, sb->s_jlane_blocks,
			 &nofree_ops, NULL) != 0)
		return -1;
	n = journal_recover(&jn);
	journal_exit(&jn);
	return n;
}

/* A line about the superblocks and journal of @img (what the journal's own
 * recovery would do, not its record layout, which is journal.c's business). */
static void describe_image(const uint8_t *img, char *out, size_t len)
{
	const struct udx_dsuper *p = (const struct udx_dsuper *)img;
	const struct udx_dsuper *b = (const struct udx_dsuper *)(img + DEV_SIZE - BLK);

	snprintf(out, len, "image: primary superblock %s, backup %s; journal recovery rolls "
		 "back %d ranges",
		 !sb_valid(p) ? "invalid" : p->s_state == UDX_STATE_CLEAN ? "clean" : "dirty",
		 !sb_valid(b) ? "invalid" : b->s_state == UDX_STATE_CLEAN ? "clean" : "dirty",
		 rollback_count(img));
}

/* ==== checking a mounted file system against the model ==================== */

struct tent {
	char te_path[PATHMAX];
	struct stat te_st;
	unsigned char te_dtype;
};

struct tree {
	struct tent *t_e;
	int t_n, t_cap;
};

#define WHY_LEN 1024

static __attribute__((format(printf, 2, 3))) bool why(char *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w, WHY_LEN, fmt, ap);
	va_end(ap);
	return false;
}

static bool tree_walk(struct udx_fs *fs, const char *dir, int depth, struct tree *t, char *w)
{
	char *dpath = malloc(PATHMAX + 2);
	struct udx_dir *d = NULL;
	struct dirent *de;
	bool ok = true;
	int ret, start = t->t_n, i;

	assert_non_null(dpath);
	snprintf(dpath, PATHMAX + 2, "/%s", dir);
	if (depth > 8) {
		ok = why(w, "directories nested too deep at '%s' (a loop?)", dir);
		goto out;
	}
	ret = udx_opendir(fs, dpath, &d);
	if (ret) {
		ok = why(w, "opendir '%s': %s (%s)", dpath, errname(ret), udx_errmsg());
		goto out;
	}
	while ((de = udx_readdir(d)) != NULL) {
		struct tent *e;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (t->t_n == t->t_cap) {
			t->t_cap = t->t_cap ? t->t_cap * 2 : 64;
			t->t_e = realloc(t->t_e, (size_t)t->t_cap * sizeof(*t->t_e));
			assert_non_null(t->t_e);
		}
		if (t->t_n >= 4 * MAXE) {
			ok = why(w, "more than %d names in the tree", 4 * MAXE);
			goto out;
		}
		e = &t->t_e[t->t_n++];
		if (snprintf(e->te_path, PATHMAX, "%s%s%s", dir, *dir ? "/" : "",
			     de->d_name) >= (int)PATHMAX) {
			ok = why(w, "a path too long below '%s'", dir);
			goto out;
		}
		e->te_dtype = de->d_type;
		ret = udx_lstat(fs, e->te_path, &e->te_st);
		if (ret) {
			ok = why(w, "lstat '%s' (listed by readdir): %s (%s)", e->te_path,
				 errname(ret), udx_errmsg());
			goto out;
		}
	}
	for (i = start; ok && i < t->t_n; i++)
		if (S_ISDIR(t->t_e[i].te_st.st_mode)) {
			char sub[PATHMAX];

			snprintf(sub, sizeof(sub), "%s", t->t_e[i].te_path);
			ok = tree_walk(fs, sub, depth + 1, t, w);
		}
out:
	udx_closedir(d);
	free(dpath);
	return ok;
}

static int t_find(const struct tree *t, const char *path)
{
	int i;

	for (i = 0; i < t->t_n; i++)
		if (strcmp(t->t_e[i].te_path, path) == 0)
			return i;
	return -1;
}

static bool byte_ok(const struct mfile *f, uint64_t i, uint8_t v)
{
	switch (f->mf_fl[i]) {
	case BY_SURE:
		return v == f->mf_data[i];
	case BY_TWO:
		return v == f->mf_data[i] || v == f->mf_alt[i];
	default:
		return true;
	}
}

static unsigned type_mode(int type)
{
	return type == T_DIR ? S_IFDIR : type == T_LNK ? S_IFLNK : S_IFREG;
}

static const char *type_name(mode_t mode)
{
	return S_ISDIR(mode) ? "directory" : S_ISLNK(mode) ? "symlink" :
	       S_ISREG(mode) ? "file" : "other";
}

/*
 * Does the mounted tree match @x?  File bytes may also be those @y allows
 * (@y: the state on the other side of the operation in flight, or NULL).
 * @exact: no crash happened, so every byte must be what reads return now.
 */
static bool check_tree(struct udx_fs *fs, const struct model *x, const struct model *y,
		       bool exact, char *w)
{
	uint64_t fsino[MAXF] = { 0 };
	struct tree t = { 0 };
	uint8_t *buf = NULL;
	struct stat st;
	bool ok = false;
	int i, j, ret;

	if (!tree_walk(fs, "", 0, &t, w))
		goto out;
	ret = udx_lstat(fs, "/", &st);
	if (ret) {
		why(w, "lstat '/': %s", errname(ret));
		goto out;
	}
	if (st.st_nlink != (nlink_t)(2 + m_children(x, "", true))) {
		why(w, "'/' has %lu links, not %d", (unsigned long)st.st_nlink,
		    2 + m_children(x, "", true));
		goto out;
	}
	for (i = 0; i < t.t_n; i++)
		if (m_find(x, t.t_e[i].te_path) < 0) {
			why(w, "'%s' (a %s) exists and should not", t.t_e[i].te_path,
			    type_name(t.t_e[i].te_st.st_mode));
			goto out;
		}
	for (i = 0; i < x->m_ne; i++) {
		const struct mentry *me = &x->m_e[i];
		const struct mfile *f = &x->m_f[me->me_ino];
		int k = t_find(&t, me->me_path);
		const struct stat *s;
		unsigned nl;

		if (k < 0) {
			why(w, "'%s' is missing", me->me_path);
			goto out;
		}
		s = &t.t_e[k].te_st;
		if ((s->st_mode & S_IFMT) != type_mode(f->mf_type)) {
			why(w, "'%s' is a %s, not a %s", me->me_path, type_name(s->st_mode),
			    type_name(type_mode(f->mf_type)));
			goto out;
		}
		if (t.t_e[k].te_dtype != IFTODT(type_mode(f->mf_type))) {
			why(w, "readdir gives '%s' type %u", me->me_path, t.t_e[k].te_dtype);
			goto out;
		}
		if ((s->st_mode & 07777) != f->mf_perm) {
			why(w, "'%s' has mode %04o, not %04o", me->me_path,
			    (unsigned)(s->st_mode & 07777), f->mf_perm);
			goto out;
		}
		nl = f->mf_type == T_DIR ? 2u + (unsigned)m_children(x, me->me_path, true) :
		     f->mf_nlink;
		if (s->st_nlink != nl) {
			why(w, "'%s' has %lu links, not %u", me->me_path,
			    (unsigned long)s->st_nlink, nl);
			goto out;
		}
		if (f->mf_type != T_DIR && (uint64_t)s->st_size != f->mf_size) {
			why(w, "'%s' is %llu bytes, not %llu", me->me_path,
			    (unsigned long long)s->st_size, (unsigned long long)f->mf_size);
			goto out;
		}
		if (f->mf_type == T_REG && f->mf_mtime_known &&
		    (s->st_mtim.tv_sec != f->mf_mtime.tv_sec ||
		     s->st_mtim.tv_nsec != f->mf_mtime.tv_nsec)) {
			why(w, "'%s' has mtime %lld.%09ld, not %lld.%09ld (set by utimens, fsync'ed)",
			    me->me_path, (long long)s->st_mtim.tv_sec, s->st_mtim.tv_nsec,
			    (long long)f->mf_mtime.tv_sec, f->mf_mtime.tv_nsec);
			goto out;
		}
		if (fsino[me->me_ino] == 0) {
			fsino[me->me_ino] = s->st_ino;
		} else if (fsino[me->me_ino] != s->st_ino) {
			why(w, "'%s' is inode %llu, but its hard link is inode %llu", me->me_path,
			    (unsigned long long)s->st_ino, (unsigned long long)fsino[me->me_ino]);
			goto out;
		}
		if (f->mf_type == T_LNK) {
			char tb[TARGET_MAX + 2];
			ssize_t n = udx_readlink(fs, me->me_path, tb, sizeof(tb));

			if (n != (ssize_t)strlen(f->mf_target) ||
			    memcmp(tb, f->mf_target, (size_t)n) != 0) {
				why(w, "symlink '%s' reads %zd bytes '%.*s', not '%s'", me->me_path, n,
				    n > 0 ? (int)MIN(n, 60) : 0, tb, f->mf_target);
				goto out;
			}
		}
	}
	for (i = 1; i < MAXF; i++)
		for (j = i + 1; j < MAXF; j++)
			if (fsino[i] && fsino[i] == fsino[j]) {
				why(w, "two different files share inode %llu",
				    (unsigned long long)fsino[i]);
				goto out;
			}
	/* contents */
	for (i = 0; i < x->m_ne; i++) {
		const struct mentry *me = &x->m_e[i];
		const struct mfile *f = &x->m_f[me->me_ino], *g = NULL;
		uint64_t b, bad = UINT64_MAX, nbad = 0;
		ssize_t n;
		int fd;

		if (f->mf_type != T_REG || m_find(x, me->me_path) != i)
			continue;
		for (j = 0; j < i; j++)         /* once per inode */
			if (x->m_e[j].me_ino == me->me_ino)
				break;
		if (j < i)
			continue;
		if (y && y->m_f[me->me_ino].mf_type == T_REG)
			g = &y->m_f[me->me_ino];
		buf = realloc(buf, f->mf_size + 1);
		assert_non_null(buf);
		fd = udx_open(fs, me->me_path, O_RDONLY, 0);
		if (fd < 0) {
			why(w, "open '%s': %s (%s)", me->me_path, errname(fd), udx_errmsg());
			goto out;
		}
		n = udx_pread(fs, fd, buf, f->mf_size + 1, 0);
		udx_close(fs, fd);
		if (n != (ssize_t)f->mf_size) {
			why(w, "read '%s': %zd (%s), expected %llu bytes", me->me_path, n,
			    n < 0 ? udx_errmsg() : "", (unsigned long long)f->mf_size);
			goto out;
		}
		for (b = 0; b < f->mf_size; b++) {
			if (exact ? buf[b] == f->mf_data[b] :
			    byte_ok(f, b, buf[b]) || (g && b < g->mf_size && byte_ok(g, b, buf[b])))
				continue;
			if (bad == UINT64_MAX)
				bad = b;
			nbad++;
		}
		if (nbad) {
			why(w, "'%s' (%llu bytes): %llu bytes wrong, the first at %llu: %#x, "
			    "expected %#x%s (%s)", me->me_path, (unsigned long long)f->mf_size,
			    (unsigned long long)nbad, (unsigned long long)bad, buf[bad],
			    f->mf_data[bad], f->mf_fl[bad] == BY_TWO ? " or the old value" : "",
			    f->mf_written[bad / BLK] ? "a written block" : "a hole or unwritten block");
			goto out;
		}
	}
	ok = true;
out:
	free(buf);
	free(t.t_e);
	return ok;
}

/*
 * F1: past its end, a file reads zero once it is made longer.  @inflight is
 * the operation the crash interrupted (NULL: none); *@kb names a known bug
 * that explains a failure.
 */
static bool check_tails(struct udx_fs *fs, const struct op *inflight, enum kbug *kb, char *w)
{
	struct tree t = { 0 };
	uint8_t *buf = malloc(2 * BLK);
	bool ok = false;
	int i, j;

	assert_non_null(buf);
	if (!tree_walk(fs, "", 0, &t, w))
		goto out;
	for (i = 0; i < t.t_n; i++) {
		const struct tent *e = &t.t_e[i];
		uint64_t size = (uint64_t)e->te_st.st_size, k;
		ssize_t n;
		int fd, ret;

		if (!S_ISREG(e->te_st.st_mode))
			continue;
		for (j = 0; j < i; j++)
			if (t.t_e[j].te_st.st_ino == e->te_st.st_ino)
				break;
		if (j < i)
			continue;
		ret = udx_truncate(fs, e->te_path, (off_t)(size + 2 * BLK));
		if (ret) {
			why(w, "truncate '%s' to %llu: %s (%s)", e->te_path,
			    (unsigned long long)(size + 2 * BLK), errname(ret), udx_errmsg());
			goto out;
		}
		fd = udx_open(fs, e->te_path, O_RDONLY, 0);
		if (fd < 0) {
			why(w, "open '%s': %s", e->te_path, errname(fd));
			goto out;
		}
		n = udx_pread(fs, fd, buf, 2 * BLK, (off_t)size);
		udx_close(fs, fd);
		if (n != 2 * BLK) {
			why(w, "read '%s' past its old end: %zd", e->te_path, n);
			goto out;
		}
		for (k = 0; k < 2 * BLK; k++)
			if (buf[k]) {
				bool whole = (size + k) / BLK * BLK >= (size + BLK - 1) / BLK * BLK;

				why(w, "F1: '%s' was %llu bytes; made longer, it reads %#x at %llu "
				    "(%s), not 0", e->te_path, (unsigned long long)size, buf[k],
				    (unsigned long long)(size + k),
				    whole ? "a block wholly past the end" : "in its last block");
				goto out;
			}
	}
	ok = true;
out:
	free(buf);
	free(t.t_e);
	return ok;
}

struct fsck_log {
	uint64_t fl_n;
	uint64_t fl_truncating;         /* "a truncate was interrupted" */
	char fl_first[512];
};

static void fsck_cb(void *arg, const char *problem)
{
	struct fsck_log *l = arg;

	if (l->fl_n++ == 0)
		snprintf(l->fl_first, sizeof(l->fl_first), "%s", problem);
	l->fl_truncating += strstr(problem, "a truncate was interrupted") != NULL;
}

static bool check_fsck(struct udx_dev *dev, const struct op *inflight, enum kbug *kb, char *w)
{
	struct fsck_log l = { 0 };
	struct udx_fsck_opts o = { .report = fsck_cb, .arg = &l };
	struct udx_fsck_result res;
	int ret = udx_fsck(dev, &o, &res);

	if (ret == 0 && l.fl_n == 0)
		return true;
	why(w, "fsck: %s, %llu problems; the first: %s", errname(ret),
	    (unsigned long long)l.fl_n, l.fl_n ? l.fl_first : udx_errmsg());
	return false;
}

/* Mounted: the tree is @sb or @sa (the sides of the operation in flight). */
static bool check_states(struct udx_fs *fs, const struct model *sa, const struct model *sb,
			 char *w)
{
	char *w2;
	bool ok;

	if (check_tree(fs, sb, sa == sb ? NULL : sa, false, w))
		return true;
	if (sa == sb)
		return false;
	w2 = malloc(WHY_LEN);
	assert_non_null(w2);
	ok = check_tree(fs, sa, sb, false, w2);
	if (!ok) {
		size_t n = strlen(w);

		snprintf(w + n, WHY_LEN - n, "; as before the operation: %s", w2);
	}
	free(w2);
	return ok;
}

/* ==== the harness ========================================================= */

/*
 * One per test: the workload device (watched), a device to check crash
 * images on, one to crash recovery on (watched), the freshly made image
 * every run starts from, and the counts for the summary.
 */
struct world {
	const char *wd_test;
	uint64_t wd_seed;
	struct udx_dev *wd_wdev, *wd_cdev, *wd_rdev;
	uint8_t *wd_fresh;
	struct rec wd_wrec, wd_rrec;
	uint64_t wd_points, wd_checked, wd_skipped, wd_failures, wd_rpoints, wd_runs;
	uint64_t wd_nondet, wd_known;
	int wd_lose_op;                 /* self-test: see rec.rc_lose_op */
	uint64_t wd_point;              /* the point being checked (0: none) */
	int wd_printed;
	uint64_t wd_t0;
};

/* Sanitized builds check fewer points: ASan runs about 3 times slower
 * here, TSan about 10. */
#if defined(__SANITIZE_THREAD__)
static int g_scale = 4;
#elif defined(__SANITIZE_ADDRESS__)
static int g_scale = 2;
#else
static int g_scale = 1;
#endif

/* Crash points per workload: UDX_CRASH_POINTS, else @dflt (fewer under
 * sanitizers); 0 means all. */
static uint64_t points_budget(uint64_t dflt)
{
	const char *s = getenv("UDX_CRASH_POINTS");

	if (s && strcmp(s, "all") == 0)
		return 0;
	if (s && atoll(s) > 0)
		return (uint64_t)atoll(s);
	return dflt ? MAX(dflt / (uint64_t)g_scale, 8ull) : 0;
}

static struct udx_dev *open_dev(bool flushing)
{
	struct udx_dev_opts o = { .flags = flushing ? UDX_DEV_FORCE_CACHELINE : 0 };
	struct udx_dev *dev = NULL;
	int ret = udx_dev_open(DEV_SPEC, &o, &dev);

	if (ret)
		fprintf(stderr, "udx_dev_open(%s): %s\n", DEV_SPEC, udx_errmsg());
	assert_int_equal(ret, 0);
	return dev;
}

static void world_init(struct world *wd, const char *test)
{
	static const uint8_t uuid[16] = { 0x75, 0x64, 0x61, 0x78, 0x63, 0x72, 0x61, 0x73,
					  0x68, 0x00, 0x40, 0x00, 0x80, 0x00, 0x00, 0x01 };
	struct udx_mkfs_opts mo = { .uuid = uuid, .label = "crash" };

	memset(wd, 0, sizeof(*wd));
	wd->wd_test = test;
	wd->wd_lose_op = -2;
	wd->wd_seed = tu_seed();
	wd->wd_t0 = tu_now_ns();
	wd->wd_wdev = open_dev(true);
	wd->wd_cdev = open_dev(false);
	wd->wd_rdev = open_dev(true);
	rec_init(&wd->wd_wrec, wd->wd_wdev);
	rec_init(&wd->wd_rrec, wd->wd_rdev);
	wd->wd_fresh = malloc(DEV_SIZE);
	assert_non_null(wd->wd_fresh);
	/* after cmocka's own handlers, so that a crash in recovery says where;
	 * under ASan its own SEGV report is better */
	signal(SIGABRT, on_fatal);
	if (!SANITIZED) {
		signal(SIGSEGV, on_fatal);
		signal(SIGBUS, on_fatal);
	}
	assert_int_equal(udx_mkfs(wd->wd_wdev, &mo), 0);
	img_copy(wd->wd_fresh, udx_dev_addr(wd->wd_wdev), DEV_SIZE);
}

static void world_exit(struct world *wd)
{
	double s = (double)(tu_now_ns() - wd->wd_t0) / 1e9;

	fprintf(stderr, "%s: %llu runs, %llu crash points checked (and %llu crashes of "
		"recovery), %llu not reached, %llu failures, %llu known bugs seen, %.1f s\n",
		wd->wd_test, (unsigned long long)wd->wd_runs, (unsigned long long)wd->wd_checked,
		(unsigned long long)wd->wd_rpoints, (unsigned long long)wd->wd_skipped,
		(unsigned long long)wd->wd_failures, (unsigned long long)wd->wd_known, s);
	rec_exit(&wd->wd_wrec);
	rec_exit(&wd->wd_rrec);
	udx_dev_close(wd->wd_wdev);
	udx_dev_close(wd->wd_cdev);
	udx_dev_close(wd->wd_rdev);
	free(wd->wd_fresh);
	assert_int_equal(wd->wd_nondet, 0);
	assert_int_equal(wd->wd_failures, 0);
}

static void print_ops(const struct workload *w)
{
	char s[256];
	int i;

	fprintf(stderr, "  workload '%s' (seed %#llx), %d operations, %llu persist points "
		"(mount: 1..%llu):\n", w->wl_name, (unsigned long long)w->wl_seed, w->wl_n,
		(unsigned long long)w->wl_points,
		(unsigned long long)(w->wl_c0 ? w->wl_c0[0] : 0));
	for (i = 0; i < w->wl_n; i++) {
		op_str(&w->wl_ops[i], s, sizeof(s));
		if (w->wl_c0)
			fprintf(stderr, "    %3d [points %llu..%llu] %s\n", i,
				(unsigned long long)w->wl_c0[i] + 1, (unsigned long long)w->wl_c1[i], s);
		else
			fprintf(stderr, "    %3d %s\n", i, s);
	}
}

/* The command that checks this point again, alone. */
static void print_repro(const struct world *wd, const struct workload *w, bool known)
{
	char only[48] = "", point[48] = "";

	if (w->wl_index >= 0)
		snprintf(only, sizeof(only), "UDX_CRASH_ONLY=%d ", w->wl_index);
	if (wd->wd_point)
		snprintf(point, sizeof(point), "UDX_CRASH_POINT=%llu ",
			 (unsigned long long)(wd->wd_point == POINT_END ? w->wl_points + 1 :
					      wd->wd_point));
	fprintf(stderr, "  reproduce: UDX_SEED=%llu UDX_CRASH_TEST=%s %s%s%s./test_crash\n",
		(unsigned long long)wd->wd_seed, wd->wd_test, only, point,
		known ? "UDX_CRASH_KNOWN_BUGS=1 " : "");
}

static void fail_report(struct world *wd, const struct workload *w, const char *what,
			const char *detail, const uint8_t *img)
{
	wd->wd_failures++;
	if (wd->wd_printed++ >= MAX_PRINTED) {
		if (wd->wd_printed == MAX_PRINTED + 1)
			fprintf(stderr, "%s: more failures, not shown\n", wd->wd_test);
		return;
	}
	fprintf(stderr, "\nFAILURE in %s: %s\n  %s\n", wd->wd_test, what, detail);
	print_repro(wd, w, false);
	if (img) {
		char d[1024];

		describe_image(img, d, sizeof(d));
		fprintf(stderr, "  crash %s\n", d);
	}
	print_ops(w);
}

enum run_mode { RUN_REF, RUN_VERIFY, RUN_CRASH };

/*
 * Run @w from the fresh image on the watched device.  RUN_REF records the
 * persist points of each operation and checks every return; RUN_VERIFY also
 * compares the tree with the final model, before and after a remount;
 * RUN_CRASH captures a crash image at drain @crash_at (POINT_END: after the
 * unmount) and stops after the operation it happened in.
 */
static void run_workload(struct world *wd, struct workload *w, enum run_mode mode,
			 uint64_t crash_at, uint64_t cseed)
{
	struct rec *r = &wd->wd_wrec;
	struct udx_fs *fs = NULL;
	struct model *vm = NULL;
	char *wbuf = malloc(WHY_LEN), what[400], s[256];
	bool vfailed = false;
	int i, ret;

	assert_non_null(wbuf);
	if (mode == RUN_VERIFY) {
		vm = malloc(sizeof(*vm));
		assert_non_null(vm);
		m_init(vm);
	}
	wd->wd_runs++;
	img_copy(udx_dev_addr(wd->wd_wdev), wd->wd_fresh, DEV_SIZE);
	rec_start(r, wd->wd_fresh, crash_at == POINT_END ? 0 : crash_at, cseed);
	if (mode == RUN_CRASH)
		r->rc_lose_op = wd->wd_lose_op;
	udx_dev_set_persist_ops(wd->wd_wdev, &rec_ops, r);
	if (mode == RUN_REF) {
		free(w->wl_c0);
		free(w->wl_c1);
		w->wl_c0 = calloc((size_t)w->wl_n + 1, sizeof(uint64_t));
		w->wl_c1 = calloc((size_t)w->wl_n + 1, sizeof(uint64_t));
		assert_non_null(w->wl_c0);
		assert_non_null(w->wl_c1);
	}
	ret = udx_mount(wd->wd_wdev, NULL, &fs);
	if (ret) {
		snprintf(wbuf, WHY_LEN, "%s (%s)", errname(ret), udx_errmsg());
		fail_report(wd, w, "mounting the fresh file system failed", wbuf, NULL);
		goto out;
	}
	for (i = 0; i < w->wl_n && !r->rc_captured; i++) {
		const struct op *o = &w->wl_ops[i];

		r->rc_op = i;
		if (mode == RUN_REF)
			w->wl_c0[i] = r->rc_drains;
		ret = exec_op(fs, o);
		if (mode == RUN_REF)
			w->wl_c1[i] = r->rc_drains;
		if (mode != RUN_CRASH && ret != o->o_expect) {
			op_str(o, s, sizeof(s));
			snprintf(what, sizeof(what), "operation %d returned %s", i, errname(ret));
			snprintf(wbuf, WHY_LEN, "%s (udx_errmsg: %s)", s, ret ? udx_errmsg() : "");
			fail_report(wd, w, what, wbuf, NULL);
		}
		if (mode == RUN_VERIFY)
			m_apply(vm, o);
		if (mode == RUN_VERIFY && !vfailed) {
			/* the live tree after each operation, exactly */
			if (!check_tree(fs, vm, NULL, true, wbuf)) {
				op_str(o, s, sizeof(s));
				snprintf(what, sizeof(what), "no crash: after operation %d (%.200s) "
					 "the tree is wrong", i, s);
				fail_report(wd, w, what, wbuf, NULL);
				vfailed = true;
			}
		}
	}
	if (mode == RUN_VERIFY) {
		struct model *m = vm;

		ret = udx_unmount(fs);
		fs = NULL;
		if (ret || !check_fsck(wd->wd_wdev, NULL, NULL, wbuf)) {
			if (ret)
				snprintf(wbuf, WHY_LEN, "unmount: %s", errname(ret));
			fail_report(wd, w, "after the workload (no crash)", wbuf, NULL);
		} else if ((ret = udx_mount(wd->wd_wdev, NULL, &fs)) != 0) {
			snprintf(wbuf, WHY_LEN, "%s (%s)", errname(ret), udx_errmsg());
			fail_report(wd, w, "remount after the workload failed", wbuf, NULL);
		} else if (!vfailed && !check_tree(fs, m, NULL, true, wbuf)) {
			fail_report(wd, w, "after a clean remount the tree is wrong", wbuf, NULL);
		}
	}
	r->rc_op = w->wl_n;
	if (fs) {
		ret = udx_unmount(fs);
		if (ret && mode != RUN_CRASH) {
			snprintf(wbuf, WHY_LEN, "%s (%s)", errname(ret), udx_errmsg());
			fail_report(wd, w, "unmount after the workload failed", wbuf, NULL);
		}
	}
	if (mode == RUN_REF)
		w->wl_points = r->rc_drains;
	if (crash_at == POINT_END && !r->rc_captured)
		rec_capture(r);
out:
	udx_dev_set_persist_ops(wd->wd_wdev, NULL, NULL);
	if (vm) {
		m_free(vm);
		free(vm);
	}
	assert_int_equal(r->rc_stray, 0);
	free(wbuf);
}

/* Which operation (-1: the mount, wl_n: the unmount) the reference run had
 * in flight at drain @k. */
static int op_of_point(const struct workload *w, uint64_t k)
{
	int i;

	if (k == POINT_END)
		return w->wl_n;
	for (i = 0; i < w->wl_n; i++) {
		if (k <= w->wl_c0[i])
			return i - 1;
		if (k <= w->wl_c1[i])
			return i;
	}
	return w->wl_n;
}

/* @want of the points 1..@n (all when @want is 0 or >= @n), in order. */
static uint64_t *pick_points(uint64_t n, uint64_t want, uint64_t *rng, uint64_t *count)
{
	uint64_t *p = malloc((n ? n : 1) * sizeof(*p)), i;

	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = i + 1;
	if (want && want < n) {
		for (i = 0; i < want; i++) {
			uint64_t j = i + tu_rand(rng) % (n - i), t = p[i];

			p[i] = p[j];
			p[j] = t;
		}
		n = want;
		/* in order: insertion sort is enough for a few hundred */
		for (i = 1; i < n; i++) {
			uint64_t v = p[i], j = i;

			while (j > 0 && p[j - 1] > v) {
				p[j] = p[j - 1];
				j--;
			}
			p[j] = v;
		}
	}
	*count = n;
	return p;
}

/* ---- a snapshot of a tree, to compare two recoveries ------------------- */

struct sent {
	char se_path[PATHMAX];
	uint64_t se_ino, se_hash;
	mode_t se_mode;
	nlink_t se_nlink;
	off_t se_size;
};

struct snap {
	struct sent *s_e;
	int s_n;
};

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

static bool snap_take(struct udx_fs *fs, struct snap *sn, char *w)
{
	struct tree t = { 0 };
	int i;

	sn->s_e = NULL;
	sn->s_n = 0;
	if (!tree_walk(fs, "", 0, &t, w)) {
		free(t.t_e);
		return false;
	}
	sn->s_e = calloc((size_t)t.t_n + 1, sizeof(*sn->s_e));
	assert_non_null(sn->s_e);
	for (i = 0; i < t.t_n; i++) {
		struct sent *e = &sn->s_e[i];
		const struct stat *st = &t.t_e[i].te_st;

		snprintf(e->se_path, PATHMAX, "%s", t.t_e[i].te_path);
		e->se_ino = st->st_ino;
		e->se_mode = st->st_mode;
		e->se_nlink = st->st_nlink;
		e->se_size = S_ISDIR(st->st_mode) ? 0 : st->st_size;
		if (S_ISREG(st->st_mode) || S_ISLNK(st->st_mode)) {
			uint8_t *b = malloc((size_t)st->st_size + 1);
			ssize_t n;

			assert_non_null(b);
			if (S_ISLNK(st->st_mode)) {
				n = udx_readlink(fs, e->se_path, (char *)b, (size_t)st->st_size + 1);
			} else {
				int fd = udx_open(fs, e->se_path, O_RDONLY, 0);

				n = fd < 0 ? fd : udx_pread(fs, fd, b, (size_t)st->st_size + 1, 0);
				if (fd >= 0)
					udx_close(fs, fd);
			}
			e->se_hash = n < 0 ? (uint64_t)n : fnv(b, (size_t)n);
			free(b);
		}
	}
	sn->s_n = t.t_n;
	free(t.t_e);
	return true;
}

static bool snap_equal(const struct snap *a, const struct snap *b, char *w)
{
	int i, j;

	if (a->s_n != b->s_n)
		return why(w, "%d names after an uninterrupted recovery, %d after a crashed one",
			   a->s_n, b->s_n);
	for (i = 0; i < a->s_n; i++) {
		const struct sent *x = &a->s_e[i], *y = NULL;

		for (j = 0; j < b->s_n; j++)
			if (strcmp(b->s_e[j].se_path, x->se_path) == 0)
				y = &b->s_e[j];
		if (y == NULL)
			return why(w, "'%s' is there after an uninterrupted recovery only", x->se_path);
		if (x->se_ino != y->se_ino || x->se_mode != y->se_mode || x->se_nlink != y->se_nlink ||
		    x->se_size != y->se_size || x->se_hash != y->se_hash)
			return why(w, "'%s' differs: inode %llu/%llu mode %o/%o links %lu/%lu "
				   "size %lld/%lld contents %s", x->se_path,
				   (unsigned long long)x->se_ino, (unsigned long long)y->se_ino,
				   (unsigned)x->se_mode, (unsigned)y->se_mode,
				   (unsigned long)x->se_nlink, (unsigned long)y->se_nlink,
				   (long long)x->se_size, (long long)y->se_size,
				   x->se_hash == y->se_hash ? "same" : "differ");
	}
	return true;
}

/* ---- checking one crash image ------------------------------------------ */

/*
 * The image is in @dev's memory: mount it, compare with @sa/@sb, check the
 * tails, unmount, fsck.  With @snap_ref, a snapshot taken right after the
 * mount must equal it.  Returns false on a failure (*@w says what); true
 * with *@kb set when what went wrong is a known bug (*@w says what), true
 * with KB_NONE when all is well.  A known bug does not stop the checks
 * after it: another failure still counts.
 */
static bool check_image(struct udx_dev *dev, const struct model *sa, const struct model *sb,
			const struct op *inflight, const struct snap *snap_ref, enum kbug *kb,
			char *w)
{
	struct udx_fs *fs = NULL;
	struct snap sn = { 0 };
	char *known = malloc(WHY_LEN);
	enum kbug k1 = KB_NONE, k2 = KB_NONE;
	bool ok = false;
	int ret;

	assert_non_null(known);
	*kb = KB_NONE;
	known[0] = '\0';
	ret = udx_mount(dev, NULL, &fs);
	if (ret) {
		why(w, "mount after the crash: %s (%s)", errname(ret), udx_errmsg());
		free(known);
		return false;
	}
	if (snap_ref) {
		if (!snap_take(fs, &sn, w) || !snap_equal(snap_ref, &sn, w))
			goto out;
	}
	if (!check_states(fs, sa, sb, w))
		goto out;
	if (!check_tails(fs, inflight, &k1, w)) {
		if (k1 == KB_NONE)
			goto out;
		snprintf(known, WHY_LEN, "%s", w);
	}
	ok = true;
out:
	ret = udx_unmount(fs);
	if (ok && ret)
		ok = why(w, "unmount after the check: %s (%s)", errname(ret), udx_errmsg());
	if (ok && !check_fsck(dev, inflight, &k2, w)) {
		if (k2 == KB_NONE)
			ok = false;
		else if (k1 == KB_NONE)
			snprintf(known, WHY_LEN, "%s", w);
	}
	if (ok) {
		*kb = k1 != KB_NONE ? k1 : k2;
		snprintf(w, WHY_LEN, "%s", known);
	}
	free(sn.s_e);
	free(known);
	return ok;
}

/* A known bug showed: a failure with UDX_CRASH_KNOWN_BUGS, else counted
 * (and described the first time). */
static void known_bug(struct world *wd, const struct workload *w, enum kbug kb,
		      const char *what, const char *detail, const uint8_t *img)
{
	char d[1024];

	if (g_known_bugs || wd->wd_lose_op != -2) {      /* self-test: a failure */
		fail_report(wd, w, what, detail, img);
		return;
	}
	wd->wd_known++;
	kb = (enum kbug)((unsigned)kb % KB_N);  /* in range, for the optimiser too */
	if (g_kb_hits[kb]++)
		return;
	describe_image(img, d, sizeof(d));
	fprintf(stderr, "\nKNOWN BUG %d (counted, not a failure; UDX_CRASH_KNOWN_BUGS=1 makes it "
		"one): %s\n  first seen in %s: %s\n  %s\n  crash %s\n", (int)kb, kb_what[kb],
		wd->wd_test, what, detail, d);
	print_repro(wd, w, true);
}

/*
 * J6 and "the mount after a crash is crash safe": recover the image in
 * wd_wrec.rc_img once without a crash (snapshot), then crash that recovery
 * at each of its persist points (up to @budget), recover again, and require
 * the same tree, the model, and a clean fsck.
 */
static void crash_recovery(struct world *wd, const struct workload *w, uint64_t k,
			   const struct op *inflight, const struct model *sa,
			   const struct model *sb, uint64_t budget, uint64_t *rng)
{
	struct rec *rr = &wd->wd_rrec;
	const uint8_t *img = wd->wd_wrec.rc_img;
	struct udx_fs *fs = NULL;
	struct snap ref = { 0 };
	char *wbuf = malloc(WHY_LEN), what[300];
	uint64_t npts, *pts, n, i;
	enum kbug kb;
	int ret;

	assert_non_null(wbuf);
	/* the image was checked already: recover a copy to take the snapshot */
	img_copy(udx_dev_addr(wd->wd_cdev), img, DEV_SIZE);
	ret = udx_mount(wd->wd_cdev, NULL, &fs);
	if (ret)
		goto out;
	ret = !snap_take(fs, &ref, wbuf);
	udx_unmount(fs);
	if (ret)
		goto out;
	/* count the persist points of the recovering mount */
	img_copy(udx_dev_addr(wd->wd_rdev), img, DEV_SIZE);
	rec_start(rr, img, 0, 0);
	udx_dev_set_persist_ops(wd->wd_rdev, &rec_ops, rr);
	ret = udx_mount(wd->wd_rdev, NULL, &fs);
	npts = rr->rc_drains;
	if (ret == 0)
		udx_unmount(fs);
	udx_dev_set_persist_ops(wd->wd_rdev, NULL, NULL);
	if (ret)
		goto out;
	pts = pick_points(npts, budget, rng, &n);
	for (i = 0; i < n; i++) {
		img_copy(udx_dev_addr(wd->wd_rdev), img, DEV_SIZE);
		rec_start(rr, img, pts[i], mix(wd->wd_seed ^ mix(w->wl_seed) ^ k ^ (pts[i] << 32)));
		udx_dev_set_persist_ops(wd->wd_rdev, &rec_ops, rr);
		ret = udx_mount(wd->wd_rdev, NULL, &fs);
		if (ret == 0)
			udx_unmount(fs);
		udx_dev_set_persist_ops(wd->wd_rdev, NULL, NULL);
		if (!rr->rc_captured) {
			wd->wd_skipped++;
			continue;
		}
		img_copy(udx_dev_addr(wd->wd_cdev), rr->rc_img, DEV_SIZE);
		snprintf(g_ctx, sizeof(g_ctx), "%s: workload '%s' point %llu, recovery crash at "
			 "its point %llu", wd->wd_test, w->wl_name, (unsigned long long)k,
			 (unsigned long long)pts[i]);
		wd->wd_rpoints++;
		snprintf(what, sizeof(what), "crash at point %llu, then a crash of the "
			 "recovering mount at its point %llu of %llu (%llu lines not durable, "
			 "%llu taken new, %s)", (unsigned long long)k,
			 (unsigned long long)pts[i], (unsigned long long)npts,
			 (unsigned long long)rr->rc_dirty, (unsigned long long)rr->rc_new,
			 rr->rc_how);
		if (!check_image(wd->wd_cdev, sa, sb, inflight, &ref, &kb, wbuf)) {
			fail_report(wd, w, what, wbuf, rr->rc_img);
		} else if (kb != KB_NONE) {
			known_bug(wd, w, kb, what, wbuf, rr->rc_img);
		}
	}
	free(pts);
out:
	free(ref.s_e);
	free(wbuf);
}

struct crash_opts {
	uint64_t co_budget;             /* points per workload; 0: all */
	uint64_t co_before_focus;       /* points sampled before wl_focus */
	uint64_t co_only;               /* only this point (0: no) */
	uint64_t co_recovery_images;    /* images whose recovery is crashed too */
	uint64_t co_recovery_budget;    /* recovery points per image; 0: all */
};

/* Check one crash point of @w. */
static void crash_point(struct world *wd, struct workload *w, uint64_t k, bool recover,
			const struct crash_opts *co, uint64_t *rng)
{
	struct rec *r = &wd->wd_wrec;
	struct model *sa = malloc(sizeof(*sa)), *sb = malloc(sizeof(*sb));
	char *wbuf = malloc(WHY_LEN), what[400], s[256];
	const struct op *inflight;
	enum kbug kb;
	int op, ref_op;

	assert_non_null(sa);
	assert_non_null(sb);
	assert_non_null(wbuf);
	snprintf(g_ctx, sizeof(g_ctx), "%s: workload '%s' (seed %#llx), crash point %llu",
		 wd->wd_test, w->wl_name, (unsigned long long)w->wl_seed, (unsigned long long)k);
	wd->wd_point = k;
	/* the image depends on the seeds and the point only, so that one point
	 * can be checked again alone */
	run_workload(wd, w, RUN_CRASH, k, mix(wd->wd_seed ^ mix(w->wl_seed) ^ k));
	if (!r->rc_captured) {
		wd->wd_skipped++;
		goto out_free;
	}
	op = r->rc_crash_op;
	ref_op = op_of_point(w, k);
	if (op != ref_op) {
		wd->wd_nondet++;
		fprintf(stderr, "%s: point %llu fell in operation %d, in %d in the first run: "
			"the workload does not replay the same\n", wd->wd_test,
			(unsigned long long)k, op, ref_op);
	}
	m_replay(sa, w, op < 0 ? 0 : op);
	m_replay(sb, w, op < 0 ? 0 : op + 1);
	img_copy(udx_dev_addr(wd->wd_cdev), r->rc_img, DEV_SIZE);
	wd->wd_checked++;
	inflight = op >= 0 && op < w->wl_n ? &w->wl_ops[op] : NULL;
	if (inflight)
		op_str(inflight, s, sizeof(s));
	else
		snprintf(s, sizeof(s), "%s", op < 0 ? "the mount" : "the unmount");
	snprintf(what, sizeof(what), "crash at point %s%llu of %llu, in operation %d: %s "
		 "(%llu lines not durable, %llu taken new, %s)",
		 k == POINT_END ? "END " : "", (unsigned long long)(k == POINT_END ? 0 : k),
		 (unsigned long long)w->wl_points, op, s,
		 (unsigned long long)r->rc_dirty, (unsigned long long)r->rc_new, r->rc_how);
	if (!check_image(wd->wd_cdev, sa, sb, inflight, NULL, &kb, wbuf))
		fail_report(wd, w, what, wbuf, r->rc_img);
	else if (kb != KB_NONE)
		known_bug(wd, w, kb, what, wbuf, r->rc_img);
	else if (recover)
		crash_recovery(wd, w, k, inflight, sa, sb, co->co_recovery_budget, rng);
	m_free(sa);
	m_free(sb);
out_free:
	wd->wd_point = 0;
	free(sa);
	free(sb);
	free(wbuf);
}

/* Run @w once for the record, once checked, then crash it at its points. */
static void crash_workload(struct world *wd, struct workload *w, const struct crash_opts *co)
{
	uint64_t rng = mix(wd->wd_seed ^ w->wl_seed ^ 0xc0ffee), n, i, *pts, first = 1;
	uint64_t nrec = co->co_recovery_images, every;
	unsigned long failures = (unsigned long)wd->wd_failures;

	run_workload(wd, w, RUN_REF, 0, 0);
	run_workload(wd, w, RUN_VERIFY, 0, 0);
	if (getenv("UDX_CRASH_VERBOSE"))
		print_ops(w);
	if (wd->wd_failures != failures)
		return;                 /* not even the workload works */
	if (co->co_only || getenv("UDX_CRASH_POINT")) {
		uint64_t k = co->co_only ? co->co_only : strtoull(getenv("UDX_CRASH_POINT"), NULL, 0);

		if (k)
			crash_point(wd, w, k > w->wl_points ? POINT_END : k, nrec > 0, co, &rng);
		return;
	}
	/* points 1..P are drains; P + 1 stands for the end (after unmount) */
	if (w->wl_focus > 0 && w->wl_focus < w->wl_n)
		first = w->wl_c0[w->wl_focus] + 1;
	if (first > 1) {
		pts = pick_points(first - 1, co->co_before_focus ? co->co_before_focus : 1, &rng, &n);
		for (i = 0; i < n; i++)
			crash_point(wd, w, pts[i], false, co, &rng);
		free(pts);
	}
	pts = pick_points(w->wl_points + 2 - first, co->co_budget, &rng, &n);
	every = nrec && n > nrec ? n / nrec : 1;
	for (i = 0; i < n; i++) {
		uint64_t k = pts[i] + first - 1;

		crash_point(wd, w, k > w->wl_points ? POINT_END : k,
			    nrec > 0 && i % every == 0 && i / every < nrec, co, &rng);
	}
	wd->wd_points += w->wl_points + 1;
	free(pts);
}

/* ==== directed workloads, by invariant ===================================== */

static struct op *add_write(struct workload *w, const char *path, uint64_t off, uint64_t len,
			    bool fsync)
{
	struct op *o = wl_add(w, OP_WRITE, path);

	o->o_off = off;
	o->o_len = len;
	o->o_fsync = fsync;
	return o;
}

static struct op *add2(struct workload *w, enum opk kind, const char *a, const char *b)
{
	struct op *o = wl_add(w, kind, a);

	snprintf(o->o_path2, PATHMAX, "%s", b);
	return o;
}

static struct op *add_range(struct workload *w, enum opk kind, const char *path, uint64_t off,
			    uint64_t len)
{
	struct op *o = wl_add(w, kind, path);

	o->o_off = off;
	o->o_len = len;
	return o;
}

static void run_directed(const char *test, struct workload *w, uint64_t budget,
			 uint64_t recovery_images)
{
	struct world wd;
	struct crash_opts co = {
		.co_budget = points_budget(budget),
		.co_before_focus = 12,
		.co_recovery_images = recovery_images,
		.co_recovery_budget = points_budget(16),
	};

	world_init(&wd, test);
	wl_finish(w);
	crash_workload(&wd, w, &co);
	wl_free(w);
	world_exit(&wd);
}

/* J1: every in-place change has its undo record durable first: creates,
 * removals and directory changes crashed at every point. */
static void crash_J1_undo_before_store(void **state)
{
	struct workload w;
	struct op *o;

	wl_init(&w, "J1 create, mkdir, unlink, rmdir", 1);
	wl_add(&w, OP_MKDIR, "d");
	wl_add(&w, OP_CREATE, "d/a");
	wl_add(&w, OP_CREATE, "d/b");
	wl_add(&w, OP_MKDIR, "d/e");
	wl_add(&w, OP_CREATE, "d/e/x");
	o = wl_add(&w, OP_SYMLINK, "d/l");
	o->o_len = 20;
	wl_add(&w, OP_UNLINK, "d/a");
	wl_add(&w, OP_RMDIR, "d/e");                    /* -ENOTEMPTY: nothing changes */
	wl_add(&w, OP_UNLINK, "d/e/x");
	wl_add(&w, OP_RMDIR, "d/e");
	wl_add(&w, OP_CREATE, "d/a");                   /* the freed slot again */
	wl_add(&w, OP_CHMOD, "d")->o_mode = 0700;
	run_directed(__func__, &w, 0, 0);
}

/* J2: every range is durable before the commit word: creates that fill
 * directory blocks, renames (over an existing file, across directories),
 * links, long symlinks (a block written in the transaction). */
static void crash_J2_commit_order_create_rename(void **state)
{
	struct workload w;
	char p[64];
	int i;

	wl_init(&w, "J2 create, rename, link", 2);
	wl_add(&w, OP_MKDIR, "x");
	wl_add(&w, OP_MKDIR, "y");
	for (i = 0; i < 24; i++) {
		snprintf(p, sizeof(p), "x/file-with-a-longer-name-%02d", i);
		wl_add(&w, OP_CREATE, p);
	}
	add_write(&w, "x/file-with-a-longer-name-00", 0, 5000, false);
	add_write(&w, "x/file-with-a-longer-name-01", 0, 3000, true);
	w.wl_focus = w.wl_n;
	add2(&w, OP_RENAME, "x/file-with-a-longer-name-00", "y/a");
	add2(&w, OP_RENAME, "x/file-with-a-longer-name-01", "y/a");      /* over a file */
	add2(&w, OP_LINK, "y/a", "x/hard");
	add2(&w, OP_RENAME, "x/hard", "y/a");           /* one inode: nothing */
	add2(&w, OP_RENAME, "y", "x/y");                /* a directory moves */
	add2(&w, OP_RENAME, "x", "x/y/z");              /* -EINVAL */
	wl_add(&w, OP_SYMLINK, "x/y/long")->o_len = 250;
	add2(&w, OP_RENAME, "x/y/long", "short");
	wl_add(&w, OP_UNLINK, "x/hard");
	add2(&w, OP_RENAME, "x/y/a", "x/file-with-a-longer-name-05");    /* over, last link */
	run_directed(__func__, &w, 0, 0);
}

/* J3: the commit word decides: attribute changes and size changes, each one
 * transaction, are all old or all new. */
static void crash_J3_commit_word_setattr(void **state)
{
	struct workload w;

	wl_init(&w, "J3 setattr, truncate", 3);
	wl_add(&w, OP_CREATE, "f");
	add_write(&w, "f", 0, 10000, true);
	w.wl_focus = w.wl_n;
	wl_add(&w, OP_CHMOD, "f")->o_mode = 0600;
	wl_add(&w, OP_UTIMENS, "f");
	add_range(&w, OP_TRUNCATE, "f", 6000, 0);
	wl_add(&w, OP_UTIMENS, "f");
	add_range(&w, OP_TRUNCATE, "f", 20000, 0);
	wl_add(&w, OP_CHMOD, "f")->o_mode = 0444;
	add_range(&w, OP_TRUNCATE, "f", 0, 0);
	run_directed(__func__, &w, 0, 0);
}

/* J4: lanes rotate and are reused; stale records of an older cycle (a long
 * transaction followed by short ones in the same lane) must not roll back. */
static void crash_J4_lanes_rotate_and_reuse(void **state)
{
	struct workload w;
	char p[32];
	int i;

	wl_init(&w, "J4 lane reuse", 4);
	wl_add(&w, OP_MKDIR, "d");
	for (i = 0; i < 12; i++) {
		snprintf(p, sizeof(p), "d/%d", i);
		wl_add(&w, OP_CREATE, p);
		if (i % 3 == 0)
			add_write(&w, p, (uint64_t)i * 3000, 9000, false);
	}
	for (i = 0; i < 12; i++) {
		snprintf(p, sizeof(p), "d/%d", i);
		wl_add(&w, OP_CHMOD, p)->o_mode = 0600 + (unsigned)i;
		if (i % 4 == 1) {
			char q[32];

			snprintf(q, sizeof(q), "d/r%d", i);
			add2(&w, OP_RENAME, p, q);
		}
	}
	for (i = 0; i < 12; i += 3) {
		snprintf(p, sizeof(p), "d/%d", i);
		wl_add(&w, OP_UNLINK, p);
	}
	run_directed(__func__, &w, 400, 0);
}

/* J5: freed blocks are reused only after the free is durable: a truncate,
 * an unlink and a rename over a file free blocks that the next writes take;
 * a truncate of a file with more extents than one transaction frees
 * (recovery finishes it). */
static void crash_J5_free_then_reuse(void **state)
{
	struct workload w;
	int i;

	wl_init(&w, "J5 free, then reuse", 5);
	wl_add(&w, OP_CREATE, "a");
	wl_add(&w, OP_CREATE, "b");
	wl_add(&w, OP_CREATE, "c");
	add_write(&w, "a", 0, 40000, true);
	add_write(&w, "c", 0, 20000, false);
	/* more extents than one transaction frees (file.c PUNCH_BUDGET, 64):
	 * every other block of "m" and "n" */
	wl_add(&w, OP_CREATE, "m");
	for (i = 0; i < 70; i++)
		add_write(&w, "m", (uint64_t)i * 2 * BLK, BLK, false);
	wl_add(&w, OP_CREATE, "n");
	for (i = 0; i < 68; i++)
		add_write(&w, "n", (uint64_t)i * 2 * BLK + 100, 50, false);
	w.wl_focus = w.wl_n;
	add_range(&w, OP_TRUNCATE, "a", 5000, 0);
	add_write(&w, "b", 0, 30000, false);            /* takes a's blocks */
	add_range(&w, OP_TRUNCATE, "m", 3 * BLK + 17, 0);       /* several transactions */
	add_write(&w, "b", 30000, 30000, true);
	add2(&w, OP_RENAME, "c", "a");                  /* frees the old "a" */
	add_write(&w, "b", 0, 8192, false);
	wl_add(&w, OP_UNLINK, "n");                     /* eviction over several */
	add_write(&w, "a", 20000, 30000, false);
	add_range(&w, OP_TRUNCATE, "m", 0, 0);
	run_directed(__func__, &w, 90, 0);
}

/* J6: rollback is idempotent.  A write that runs out of space aborts after
 * logging (tx_abort's rollback, crashed), then crashes during the recovery
 * of random points are recovered again. */
static void crash_J6_abort_enospc(void **state)
{
	struct world wd;
	struct workload w;
	struct udx_fs *fs;
	struct statvfs sv;
	struct crash_opts co = { .co_budget = points_budget(0), .co_recovery_images = 0 };
	struct op *o;
	int i;

	world_init(&wd, __func__);
	wl_init(&w, "J6 abort on ENOSPC", 6 ^ wd.wd_seed);
	wl_add(&w, OP_CREATE, "big");
	wl_add(&w, OP_CREATE, "small");
	wl_add(&w, OP_MKDIR, "d");
	add_write(&w, "small", 0, 3000, true);
	/* how much is free after these, on this image */
	img_copy(udx_dev_addr(wd.wd_cdev), wd.wd_fresh, DEV_SIZE);
	assert_int_equal(udx_mount(wd.wd_cdev, NULL, &fs), 0);
	for (i = 0; i < w.wl_n; i++)
		assert_int_equal(exec_op(fs, &w.wl_ops[i]), 0);
	assert_int_equal(udx_statfs(fs, &sv), 0);
	assert_int_equal(udx_unmount(fs), 0);
	assert_true(sv.f_bfree > 64);
	o = add_range(&w, OP_FALLOC, "big", 0, (uint64_t)(sv.f_bfree - 6) * BLK);
	o->o_mode = FALLOC_FL_KEEP_SIZE;
	w.wl_focus = w.wl_n;
	o = add_write(&w, "small", 0, 64 << 10, false);  /* needs 16 blocks: fails */
	o->o_forced = true;
	o->o_expect = -ENOSPC;
	o = add_write(&w, "small", 3000, 60000, false);
	o->o_forced = true;
	o->o_expect = -ENOSPC;
	wl_add(&w, OP_MKDIR, "d/e");                     /* a directory block may fit */
	wl_add(&w, OP_UNLINK, "big");                    /* space again */
	add_write(&w, "small", 0, 64 << 10, true);
	wl_finish(&w);
	crash_workload(&wd, &w, &co);
	wl_free(&w);
	world_exit(&wd);
}

/* J6: a crash while the mount recovers, then a mount again: the same tree
 * as an uninterrupted recovery, the model, a clean fsck. */
static void crash_J6_recovery_crash(void **state)
{
	struct world wd;
	struct workload w;
	struct crash_opts co = {
		.co_budget = points_budget(24),
		.co_recovery_images = SANITIZED ? 3 : 10,
		.co_recovery_budget = points_budget(24),
	};
	int i, nwl = SANITIZED ? 1 : 3;

	world_init(&wd, __func__);
	for (i = 0; i < nwl; i++) {
		gen_workload(&w, mix(wd.wd_seed + 0x600 + (uint64_t)i), 30);
		crash_workload(&wd, &w, &co);
		wl_free(&w);
	}
	/* and a directed one: an orphan and an unfinished truncate to finish */
	wl_init(&w, "J6 orphans and truncates at recovery", 0x6e ^ wd.wd_seed);
	wl_add(&w, OP_CREATE, "t");
	for (i = 0; i < 80; i++)
		add_write(&w, "t", (uint64_t)i * 2 * BLK, BLK, false);
	wl_add(&w, OP_CREATE, "u");
	add_write(&w, "u", 0, 30000, false);
	w.wl_focus = w.wl_n;
	add_range(&w, OP_TRUNCATE, "t", 100, 0);
	wl_add(&w, OP_UNLINK_OPEN, "u");
	wl_finish(&w);
	co.co_recovery_images = SANITIZED ? 4 : 12;
	crash_workload(&wd, &w, &co);
	wl_free(&w);
	world_exit(&wd);
}

/* F1: bytes past the end read zero: shrinking truncates in the middle of a
 * block, growing again, appends into the slack of the last block, writes
 * past the end, punches. */
static void crash_F1_tail_zero(void **state)
{
	struct workload w;
	struct op *o;

	wl_init(&w, "F1 tails", 0xf1);
	wl_add(&w, OP_CREATE, "f");
	add_write(&w, "f", 0, 9000, true);
	w.wl_focus = w.wl_n;
	add_range(&w, OP_TRUNCATE, "f", 5000, 0);
	add_range(&w, OP_TRUNCATE, "f", 7000, 0);
	o = wl_add(&w, OP_APPEND, "f");                  /* into the slack */
	o->o_len = 300;
	add_write(&w, "f", 7500, 100, false);           /* past the end, same block */
	add_write(&w, "f", 20000, 100, false);          /* a hole between */
	add_range(&w, OP_PUNCH, "f", 100, 3000);
	add_range(&w, OP_PUNCH, "f", 4096, 8192);
	add_range(&w, OP_TRUNCATE, "f", 4097, 0);
	o = wl_add(&w, OP_APPEND, "f");
	o->o_len = 5000;
	o->o_fsync = true;
	wl_add(&w, OP_OTRUNC, "f");
	add_write(&w, "f", 1, 1, false);
	run_directed(__func__, &w, 0, 0);
}

/* F2: data in blocks a write allocates is durable before the blocks are
 * mapped: writes into holes, appends across blocks, writes into fallocated
 * (unwritten) ranges, and overwrites (old or new until fsync). */
static void crash_F2_alloc_write_durable(void **state)
{
	struct workload w;
	struct op *o;

	wl_init(&w, "F2 allocating writes", 0xf2);
	wl_add(&w, OP_CREATE, "f");
	wl_add(&w, OP_CREATE, "g");
	add_write(&w, "f", 8192, 4096, false);          /* a hole before */
	add_write(&w, "f", 100, 5000, false);           /* fills part of it */
	o = wl_add(&w, OP_APPEND, "f");
	o->o_len = 6000;
	add_range(&w, OP_FALLOC, "g", 0, 40000)->o_mode = FALLOC_FL_KEEP_SIZE;
	add_write(&w, "g", 5000, 10000, false);         /* into unwritten blocks */
	add_range(&w, OP_FALLOC, "g", 30000, 20000);    /* grows the size */
	add_write(&w, "g", 0, 3000, false);             /* overwrite: old or new */
	add_write(&w, "g", 1000, 3000, false);          /* twice, not synced */
	wl_add(&w, OP_FSYNC, "g");
	add_write(&w, "f", 0, 20000, true);             /* overwrite and extend */
	run_directed(__func__, &w, 0, 0);
}

/* mkfs: everything it stores is durable when it returns, and a crash
 * during it leaves a device that mounts as an empty file system or is
 * refused with a clear error, never a crash (on a zeroed device and over an
 * old file system). */
static void crash_mkfs(void **state)
{
	struct world wd;
	struct rec *r;
	struct udx_dev *dev;
	struct workload w;
	uint8_t *old = malloc(DEV_SIZE);
	char *wbuf = malloc(WHY_LEN);
	uint64_t npts, k, l, notdurable = 0, rng;
	int pass, ret;

	assert_non_null(old);
	assert_non_null(wbuf);
	world_init(&wd, __func__);
	r = &wd.wd_wrec;
	dev = wd.wd_wdev;
	rng = mix(wd.wd_seed);
	wl_init(&w, "mkfs", 0);
	/* an old file system with a file in it */
	{
		struct udx_fs *fs;
		struct op o = { .o_kind = OP_CREATE, .o_path = "old", .o_mode = 0644 };

		img_copy(udx_dev_addr(dev), wd.wd_fresh, DEV_SIZE);
		assert_int_equal(udx_mount(dev, NULL, &fs), 0);
		assert_int_equal(exec_op(fs, &o), 0);
		assert_int_equal(udx_unmount(fs), 0);
		memcpy(old, udx_dev_addr(dev), DEV_SIZE);
	}
	for (pass = 0; pass < 2; pass++) {
		const uint8_t *start = pass ? old : NULL;

		/* count, and check that mkfs leaves nothing undurable */
		if (start)
			img_copy(udx_dev_addr(dev), start, DEV_SIZE);
		else
			memset(udx_dev_addr(dev), 0, DEV_SIZE);
		rec_start(r, start, 0, 0);
		udx_dev_set_persist_ops(dev, &rec_ops, r);
		assert_int_equal(udx_mkfs(dev, NULL), 0);
		udx_dev_set_persist_ops(dev, NULL, NULL);
		npts = r->rc_drains;
		for (l = 0; l < NLINES; l++)
			notdurable += line_differs(r->rc_dur + l * LINE, r->rc_mem + l * LINE);
		if (notdurable) {
			snprintf(wbuf, WHY_LEN, "%llu lines stored by mkfs are not durable when it "
				 "returns", (unsigned long long)notdurable);
			fail_report(&wd, &w, "mkfs", wbuf, NULL);
		}
		/* each point four times: the dirty lines are chosen at random */
		for (k = 1; k <= npts * 4; k++) {
			uint64_t kp = (k + 3) / 4;
			struct udx_fs *fs;

			if (start)
				img_copy(udx_dev_addr(dev), start, DEV_SIZE);
			else
				memset(udx_dev_addr(dev), 0, DEV_SIZE);
			rec_start(r, start, kp, tu_rand(&rng));
			udx_dev_set_persist_ops(dev, &rec_ops, r);
			assert_int_equal(udx_mkfs(dev, NULL), 0);
			udx_dev_set_persist_ops(dev, NULL, NULL);
			assert_true(r->rc_captured);
			img_copy(udx_dev_addr(wd.wd_cdev), r->rc_img, DEV_SIZE);
			wd.wd_checked++;
			snprintf(g_ctx, sizeof(g_ctx), "crash_mkfs pass %d point %llu", pass,
				 (unsigned long long)kp);
			ret = udx_mount(wd.wd_cdev, NULL, &fs);
			if (ret) {
				/* refused: it must say so, and fsck must not crash */
				if (ret != -EINVAL && ret != -EUCLEAN) {
					snprintf(wbuf, WHY_LEN, "pass %d point %llu: mount: %s (%s)",
						 pass, (unsigned long long)kp, errname(ret), udx_errmsg());
					fail_report(&wd, &w, "crash during mkfs", wbuf, NULL);
				}
				udx_fsck(wd.wd_cdev, NULL, NULL);
				continue;
			}
			/* it mounted: it must be consistent (empty, or the old one) */
			udx_unmount(fs);
			if (!check_fsck(wd.wd_cdev, NULL, NULL, wbuf)) {
				char what[80];

				snprintf(what, sizeof(what), "crash during mkfs (pass %d, point %llu) "
					 "mounts, but", pass, (unsigned long long)kp);
				fail_report(&wd, &w, what, wbuf, r->rc_img);
			}
		}
	}
	wl_free(&w);
	free(old);
	free(wbuf);
	world_exit(&wd);
}

/*
 * The harness itself: a file system that does not persist one operation
 * (the recorder drops what its drains would make durable) must be caught,
 * and so must a model that differs from the tree by one byte.
 */
static void crash_harness_selftest(void **state)
{
	struct world wd;
	struct workload w;
	struct crash_opts co = { .co_budget = 0 };
	struct model *m = malloc(sizeof(*m));
	struct udx_fs *fs;
	char *wbuf = malloc(WHY_LEN);
	uint64_t caught;
	int lose;

	assert_non_null(m);
	assert_non_null(wbuf);
	world_init(&wd, __func__);
	wd.wd_printed = MAX_PRINTED + 1;        /* the failures are expected: quiet */
	for (lose = 1; lose <= 4; lose++) {
		wl_init(&w, "self-test", 0x5e1f);
		wl_add(&w, OP_MKDIR, "d");
		wl_add(&w, OP_CREATE, "d/a");
		add_write(&w, "d/a", 0, 6000, true);
		add2(&w, OP_RENAME, "d/a", "b");
		wl_add(&w, OP_CHMOD, "b")->o_mode = 0600;
		wl_finish(&w);
		wd.wd_lose_op = lose;
		caught = wd.wd_failures;
		crash_workload(&wd, &w, &co);
		caught = wd.wd_failures - caught;
		fprintf(stderr, "%s: operation %d not persisted: caught at %llu crash points\n",
			__func__, lose, (unsigned long long)caught);
		assert_true(caught > 0);
		/* and the model: one byte off is seen */
		if (lose == 1) {
			img_copy(udx_dev_addr(wd.wd_cdev), wd.wd_fresh, DEV_SIZE);
			assert_int_equal(udx_mount(wd.wd_cdev, NULL, &fs), 0);
			assert_int_equal(exec_op(fs, &w.wl_ops[0]), 0);
			assert_int_equal(exec_op(fs, &w.wl_ops[1]), 0);
			assert_int_equal(exec_op(fs, &w.wl_ops[2]), 0);
			m_replay(m, &w, 3);
			assert_true(check_tree(fs, m, NULL, true, wbuf));
			m->m_f[m->m_e[1].me_ino].mf_data[4321] ^= 1;
			assert_false(check_tree(fs, m, NULL, false, wbuf));
			assert_non_null(strstr(wbuf, "first at 4321"));
			m->m_f[m->m_e[1].me_ino].mf_data[4321] ^= 1;
			m->m_f[m->m_e[1].me_ino].mf_perm ^= 1;
			assert_false(check_tree(fs, m, NULL, false, wbuf));
			m_free(m);
			assert_int_equal(udx_unmount(fs), 0);
		}
		wl_free(&w);
	}
	wd.wd_failures = 0;
	wd.wd_lose_op = -2;
	free(m);
	free(wbuf);
	world_exit(&wd);
}

/* Random workloads, a sample of crash points each. */
static void crash_random_workloads(void **state)
{
	struct world wd;
	struct workload w;
	struct crash_opts co = { .co_budget = points_budget(80) };
	const char *only = getenv("UDX_CRASH_ONLY");
	const char *s;
	long only_w = -1;
	int nwl = SANITIZED ? 6 : 40, nops = 40, i;
	double secs = tu_stress_seconds(0);
	uint64_t end;

	if ((s = getenv("UDX_CRASH_WORKLOADS")) != NULL && atoi(s) > 0)
		nwl = atoi(s);
	if ((s = getenv("UDX_CRASH_OPS")) != NULL && atoi(s) > 0)
		nops = atoi(s);
	if (only) {
		char *c;

		only_w = strtol(only, &c, 0);
		if (*c == ':')
			co.co_only = strtoull(c + 1, NULL, 0);
	}
	world_init(&wd, __func__);
	end = wd.wd_t0 + (uint64_t)(secs * 1e9);
	for (i = 0; i < nwl || (secs > 0 && tu_now_ns() < end); i++) {
		if (only_w >= 0 && i != only_w) {
			if (i > only_w)
				break;
			continue;
		}
		gen_workload(&w, mix(wd.wd_seed + (uint64_t)i), nops);
		snprintf(w.wl_name, sizeof(w.wl_name), "random #%d", i);
		w.wl_index = i;
		crash_workload(&wd, &w, &co);
		wl_free(&w);
		if (wd.wd_failures && secs > 0)
			break;
	}
	world_exit(&wd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crash_harness_selftest),
		cmocka_unit_test(crash_mkfs),
		cmocka_unit_test(crash_J1_undo_before_store),
		cmocka_unit_test(crash_J2_commit_order_create_rename),
		cmocka_unit_test(crash_J3_commit_word_setattr),
		cmocka_unit_test(crash_J4_lanes_rotate_and_reuse),
		cmocka_unit_test(crash_J5_free_then_reuse),
		cmocka_unit_test(crash_J6_abort_enospc),
		cmocka_unit_test(crash_J6_recovery_crash),
		cmocka_unit_test(crash_F1_tail_zero),
		cmocka_unit_test(crash_F2_alloc_write_durable),
		cmocka_unit_test(crash_random_workloads),
	};
	const char *filter = getenv("UDX_CRASH_TEST");
	int ret, k;

	memset(g_long_name, 'L', sizeof(g_long_name) - 1);
	g_known_bugs = getenv("UDX_CRASH_KNOWN_BUGS") != NULL;
	g_torn = getenv("UDX_CRASH_TORN") != NULL;
	g_strict_overwrite = getenv("UDX_CRASH_STRICT_OVERWRITE") != NULL;
	if (filter)
		cmocka_set_test_filter(filter);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	for (k = 1; k < KB_N; k++)
		if (g_kb_hits[k])
			fprintf(stderr, "known bug %d seen at %llu crash points: %.100s...\n", k,
				(unsigned long long)g_kb_hits[k], kb_what[k]);
	return ret;
}
