/* SPDX-License-Identifier: MIT */
/*
 * fsx: random sequences of every file system operation, each checked
 * against an in-memory model of the whole tree (in the spirit of fsx and
 * fsstress).
 *
 * The model holds the names (directory -> name -> inode) and, per inode,
 * its type, permission bits, link count, size, contents, symlink target,
 * parent (directories), the open descriptors and their positions, and for
 * each block of a file what is certain about it:
 *   B_DATA   written since it was last freed: SEEK_DATA/SEEK_HOLE must see
 *            data there;
 *   B_HOLE   never written or allocated since it was last freed (created,
 *            truncated away, punched whole): it must be seen as a hole;
 *   B_MAYBE  allocated but unwritten (fallocate), or after a punch that may
 *            have half happened: either is right, but a hole reads zero.
 *
 * The tree has at most 8 directories besides the root and 24 names, so
 * that renames, links and symlinks keep meeting each other; up to 8
 * descriptors stay open across steps (also on unlinked files).
 *
 * Every call's return value (and errno) is predicted by the model and
 * compared, and what it changed is read back.  Every check_every steps, and
 * at the end, the whole tree is compared: every directory listing (through
 * udx_readdir() or udx_ireaddir() resumed at its cookies), every inode's
 * attributes and inode number, every file's full contents,
 * SEEK_DATA/SEEK_HOLE at every block, the free inode count.  Every fifth
 * time, at random moments and at the end, the file system is unmounted,
 * checked with udx_fsck() (no problem allowed) and mounted again: the free
 * counts and the whole tree must have survived.
 *
 * Two runs:
 *   normal  a 64 MiB device and files of at most 1 MiB: no call may fail
 *           for space;
 *   enospc  a 24 MiB device filled but for a few MiB (by an unlinked file
 *           held open, outside the model), files of up to 8 MiB, large
 *           writes that fill holes: writes, fallocate and creates fail with
 *           ENOSPC, and such a failure must change nothing (one
 *           transaction: size, contents, blocks, free blocks, names all as
 *           before), which is checked; a punch that fails may have zeroed
 *           part of its range, nothing else.
 *
 * Environment:
 *   UDX_SEED=n              reproduce a run (the seed is printed)
 *   UDX_FSX_OPS=n           operations per run (default 20000 normal, 5000
 *                           enospc; a quarter under AddressSanitizer, an
 *                           eighth under ThreadSanitizer)
 *   UDX_STRESS_SECONDS=s    run each mode for s seconds (no op limit unless
 *                           UDX_FSX_OPS is set too)
 *   UDX_FSX_MODE=name       run only "normal" or "enospc"
 *   UDX_FSX_CHECK_EVERY=n   full comparison every n steps (default 200)
 *   UDX_FSX_VERBOSE=1       print every operation
 * A failure prints the seed, the command that reproduces it and the last
 * operations.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include "testutil.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define BLK 4096ull

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#define MAX_DIRS  8             /* directories besides the root */
#define MAX_NAMES 24            /* directory entries in the whole tree */
#define MAX_FDS   8
#define NPOOL     8             /* names n0 .. n7 */
#define NINO      (MAX_NAMES + MAX_FDS + 4)     /* model inode slots */
#define ROOT      1             /* the model's root slot */
#define MAXLINKS  40            /* symlinks followed in one walk (posix.c) */
#define HIST      24
#define LINE      360
#define PATHBUF   4200

/* Default runs are shorter under the sanitizers (ThreadSanitizer checks
 * every byte of the megabytes copied per step). */
#if defined(__SANITIZE_THREAD__)
#define SLOWDOWN 8
#elif defined(__SANITIZE_ADDRESS__)
#define SLOWDOWN 4
#else
#define SLOWDOWN 1
#endif

#ifdef __SANITIZE_THREAD__
/*
 * ThreadSanitizer's lock-order graph knows mutexes, not the tree: an inode
 * locked as a parent before its child, and after a directory rename as a
 * child after its new parent, is an "inversion" to it although the order
 * follows the tree both times (mkdir /A/B; rmdir /A/B locks A, B; mv /A/B
 * /B; mv /A /B/A locks B, A: reported).  Every run that moves directories
 * gets such reports, so its deadlock detector is off here; data races are
 * still reported, and stress_fs's watchdog catches real deadlocks.
 * TSAN_OPTIONS in the environment still overrides this.
 */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "detect_deadlocks=0";
}
#endif

enum { T_FREE, T_REG, T_DIR, T_LNK };
enum { B_HOLE, B_MAYBE, B_DATA };

struct ment {
	char name[8];
	int ino;
};

struct mino {
	int type;                       /* T_*; T_FREE: the slot is unused */
	unsigned perm;                  /* mode & 07777 */
	unsigned nlink;
	uint64_t size;
	uint8_t *data;                  /* files: [0, cap) held, zero past size */
	uint64_t cap;
	uint8_t *bst;                   /* files: B_* per block */
	char *target;                   /* symlinks */
	int parent;                     /* directories */
	struct ment ent[MAX_NAMES];     /* directories */
	int nent;
	int nopen;                      /* model descriptors on it */
	uint64_t rino;                  /* its real inode number, 0 until seen */
	bool mtime_known;               /* set by utimens, not moved since */
	struct timespec mtime;
};

struct mfd {
	bool used;
	int fd;                         /* the real descriptor */
	int ino;
	int acc;                        /* O_RDONLY, O_WRONLY, O_RDWR */
	bool append;
	uint64_t pos;
};

struct fsx_mode {
	const char *name;
	const char *dev;
	uint64_t maxsize;               /* no file grows beyond */
	bool enospc;                    /* ENOSPC is expected (and must change nothing) */
	unsigned large_pct;             /* writes of 256 KiB and more, percent */
	unsigned fill_weight;           /* of op_fill() among the operations */
	long ops;                       /* default operation count */
};

struct fsx {
	const struct fsx_mode *mode;
	struct udx_dev *dev;
	struct udx_fs *fs;
	uint64_t seed, rng;
	long step, nops;
	uint64_t deadline;              /* ns, 0: none */
	int check_every;
	bool verbose;
	struct mino in[NINO];
	struct mfd fd[MAX_FDS];
	int ndirs, nnames;
	uint64_t nblk;                  /* blocks per bst */
	uint8_t *wbuf, *rbuf;
	char *pbuf;                     /* scratch for paths */
	char *lbuf;                     /* check_path()'s readlink buffer */
	uint64_t ffree0;                /* free inodes with only the root */
	char hist[HIST][LINE];
	long nenospc, nremounts, nchecks, nskipped;
	long nok[32], ncalls[32];       /* per operation: succeeded, called */
	long nnospc[32];                /* per operation: failed with ENOSPC */
	long last_ret;                  /* the result opres() saw last */
	long first_enospc;              /* the step of the first ENOSPC */
	int ballast_fd;                 /* enospc: an unlinked file filling the device */
};

/* ---- reporting ----------------------------------------------------------- */

static const char *errname(long e)
{
	static char bufs[4][32];
	static unsigned k;
	char *buf = bufs[k++ % 4];

	switch (-e) {
	case ENOENT: return "-ENOENT";
	case EEXIST: return "-EEXIST";
	case ENOTDIR: return "-ENOTDIR";
	case EISDIR: return "-EISDIR";
	case ENOTEMPTY: return "-ENOTEMPTY";
	case EINVAL: return "-EINVAL";
	case EBADF: return "-EBADF";
	case ENOSPC: return "-ENOSPC";
	case ELOOP: return "-ELOOP";
	case EPERM: return "-EPERM";
	case ENXIO: return "-ENXIO";
	case EFBIG: return "-EFBIG";
	case EBUSY: return "-EBUSY";
	case EOPNOTSUPP: return "-EOPNOTSUPP";
	case ENAMETOOLONG: return "-ENAMETOOLONG";
	case EMLINK: return "-EMLINK";
	case EIO: return "-EIO";
	case EUCLEAN: return "-EUCLEAN";
	default:
		snprintf(buf, sizeof(bufs[0]), "%ld", e);
		return buf;
	}
}

static void fsx_dump(struct fsx *x)
{
	long i;

	fprintf(stderr, "fsx %s: the last operations (step: what -> result):\n", x->mode->name);
	for (i = x->step - HIST + 1; i <= x->step; i++)
		if (i >= 0 && x->hist[i % HIST][0])
			fprintf(stderr, "  %s\n", x->hist[i % HIST]);
	fprintf(stderr, "fsx %s: reproduce with UDX_SEED=%llu UDX_FSX_MODE=%s UDX_FSX_OPS=%ld "
		"(UDX_FSX_VERBOSE=1 prints every step)\n", x->mode->name,
		(unsigned long long)x->seed, x->mode->name, x->step + 1);
}

static void fsx_failed(struct fsx *x, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fsx_failed(struct fsx *x, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fsx %s: FAILED at step %ld (fsx.c:%d): ", x->mode->name, x->step, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  last library message: %s\n", udx_errmsg());
	fsx_dump(x);
	fail();
}

#define CHECK(x, cond, ...) \
	do { \
		if (!(cond)) \
			fsx_failed((x), __LINE__, __VA_ARGS__); \
	} while (0)

/* The step's line in the history: what is about to be done. */
static void oplog(struct fsx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void oplog(struct fsx *x, const char *fmt, ...)
{
	char *h = x->hist[x->step % HIST];
	int n = snprintf(h, LINE, "#%ld ", x->step);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h + n, LINE - (size_t)n, fmt, ap);
	va_end(ap);
}

/* ... and its result. */
static void opres(struct fsx *x, long ret)
{
	char *h = x->hist[x->step % HIST];
	size_t n = strlen(h);

	snprintf(h + n, LINE - n, " -> %s", errname(ret));
	x->last_ret = ret;
	if (x->verbose)
		fprintf(stderr, "%s\n", h);
}

/* Compare a result: @want, or @alt when it is not 0 (where POSIX allows
 * either and Linux and udaxfs may differ). */
static void expect_at(struct fsx *x, int line, long got, long want, long alt, const char *what)
{
	if (got == want || (alt != 0 && got == alt))
		return;
	fsx_failed(x, line, "%s: got %s, the model expected %s%s%s", what, errname(got),
		   errname(want), alt ? " or " : "", alt ? errname(alt) : "");
}

#define expect(x, got, want, alt, what) expect_at((x), __LINE__, (got), (want), (alt), (what))

/* ---- random choices -------------------------------------------------------- */

static uint64_t rnd(struct fsx *x, uint64_t n)
{
	return n ? tu_rand(&x->rng) % n : 0;
}

static bool chance(struct fsx *x, unsigned pct)
{
	return rnd(x, 100) < pct;
}

/* Data to write: random bytes, or now and then one repeated byte (zeros
 * too, which must still count as data). */
static void fill(struct fsx *x, uint8_t *buf, uint64_t len)
{
	uint64_t i, v;

	if (chance(x, 10)) {
		memset(buf, chance(x, 50) ? 0 : (int)rnd(x, 256), len);
		return;
	}
	for (i = 0; i + 8 <= len; i += 8) {
		v = tu_rand(&x->rng);
		memcpy(buf + i, &v, 8);
	}
	for (; i < len; i++)
		buf[i] = (uint8_t)tu_rand(&x->rng);
}

static uint64_t gen_len(struct fsx *x)
{
	uint64_t r = rnd(x, 100);

	if (r < 3)
		return 0;
	if (r < 40)
		return 1 + rnd(x, BLK + 100);
	if (r < 70)
		return 1 + rnd(x, 64 * KiB);
	if (r < 100 - x->mode->large_pct)
		return 1 + rnd(x, 256 * KiB);
	return 256 * KiB + rnd(x, x->mode->maxsize / 2);     /* large */
}

/* An offset for a file of @size: inside, at the end, past it (a hole),
 * aligned, around a block boundary. */
static uint64_t gen_off(struct fsx *x, uint64_t size)
{
	uint64_t max = x->mode->maxsize, r = rnd(x, 100), b;

	if (r < 30)
		return rnd(x, size + 1);
	if (r < 40)
		return size;
	if (r < 55)
		return size + rnd(x, 64 * KiB);
	if (r < 70)
		return rnd(x, max / BLK) * BLK;
	if (r < 82) {
		b = rnd(x, max / BLK) * BLK + rnd(x, 33);
		return b >= 16 ? b - 16 : b;
	}
	return rnd(x, max);
}

/* Keep [*off, *off + *len) under the largest size. */
static void clamp_range(struct fsx *x, uint64_t *off, uint64_t *len)
{
	uint64_t max = x->mode->maxsize;

	if (*off >= max)
		*off = rnd(x, max);
	if (*off + *len > max)
		*len = max - *off;
}

static uint64_t gen_size(struct fsx *x, uint64_t size)
{
	uint64_t max = x->mode->maxsize, r = rnd(x, 100), s;

	if (r < 10)
		return 0;
	if (r < 20)
		return size;
	if (r < 40)
		return rnd(x, size + 1);                        /* shrink */
	if (r < 55) {
		s = size + rnd(x, 2 * BLK + 1);                 /* a little either way */
		s = s > BLK ? s - BLK : s;
	} else if (r < 70) {
		s = rnd(x, max / BLK + 1) * BLK;
	} else {
		s = rnd(x, max + 1);
	}
	return s > max ? max : s;
}

static unsigned gen_perm(struct fsx *x)
{
	static const unsigned common[] = { 0644, 0600, 0755, 0700, 0444, 0, 0777 };

	if (chance(x, 70))
		return common[rnd(x, sizeof(common) / sizeof(common[0]))];
	return (unsigned)rnd(x, 010000);
}

/* ---- the model: names ------------------------------------------------------ */

static struct mino *M(struct fsx *x, int ino)
{
	return &x->in[ino];
}

static int m_lookup(struct fsx *x, int dir, const char *name)
{
	struct mino *d = M(x, dir);
	int i;

	for (i = 0; i < d->nent; i++)
		if (strcmp(d->ent[i].name, name) == 0)
			return d->ent[i].ino;
	return 0;
}

static void m_add(struct fsx *x, int dir, const char *name, int ino)
{
	struct mino *d = M(x, dir);

	size_t n = strlen(name);

	assert_true(d->nent < MAX_NAMES && n < sizeof(d->ent[0].name));
	memcpy(d->ent[d->nent].name, name, n + 1);
	d->ent[d->nent].ino = ino;
	d->nent++;
	x->nnames++;
}

static void m_set(struct fsx *x, int dir, const char *name, int ino)
{
	struct mino *d = M(x, dir);
	int i;

	for (i = 0; i < d->nent; i++)
		if (strcmp(d->ent[i].name, name) == 0)
			d->ent[i].ino = ino;
}

static int m_del(struct fsx *x, int dir, const char *name)
{
	struct mino *d = M(x, dir);
	int i, ino;

	for (i = 0; i < d->nent; i++) {
		if (strcmp(d->ent[i].name, name) == 0) {
			ino = d->ent[i].ino;
			d->ent[i] = d->ent[--d->nent];
			x->nnames--;
			return ino;
		}
	}
	return 0;
}

static int m_new(struct fsx *x, int type, unsigned perm)
{
	struct mino *m;
	uint8_t *data;
	uint64_t cap;
	int i;

	for (i = ROOT + 1; i < NINO; i++)
		if (x->in[i].type == T_FREE)
			break;
	assert_true(i < NINO);
	m = M(x, i);
	data = m->data;                 /* kept from the slot's last file, zeroed */
	cap = m->cap;
	memset(m, 0, sizeof(*m));
	m->data = data;
	m->cap = cap;
	m->type = type;
	m->perm = perm & 07777;
	m->nlink = type == T_DIR ? 2 : 1;
	if (type == T_REG)
		m->bst = calloc(x->nblk, 1);
	if (type == T_DIR)
		x->ndirs++;
	return i;
}

/* Forget an inode without names and descriptors. */
static void m_put(struct fsx *x, int ino)
{
	struct mino *m = M(x, ino);
	uint8_t *data;
	uint64_t cap;

	if (m->type == T_FREE || m->nlink > (m->type == T_DIR ? 1u : 0u) || m->nopen)
		return;
	if (m->type == T_DIR)
		x->ndirs--;
	/* keep the data buffer for the slot's next file (allocating and
	 * faulting in megabytes per file was most of the run time) */
	data = m->data;
	cap = m->cap;
	if (data && m->type == T_REG)
		memset(data, 0, MIN(m->size, cap));
	free(m->bst);
	free(m->target);
	memset(m, 0, sizeof(*m));
	m->data = data;
	m->cap = cap;
}

static bool is_below(struct fsx *x, int dir, int anc)
{
	for (;;) {
		if (dir == anc)
			return true;
		if (dir == ROOT)
			return false;
		dir = M(x, dir)->parent;
	}
}

static unsigned dtype(int type)
{
	return type == T_DIR ? DT_DIR : type == T_LNK ? DT_LNK : DT_REG;
}

static int live_inodes(struct fsx *x)
{
	int i, n = 0;

	for (i = 1; i < NINO; i++)
		n += x->in[i].type != T_FREE;
	return n;
}

/* ---- the model: paths ------------------------------------------------------ */

/* The name of directory @dir in its parent. */
static const char *dir_name(struct fsx *x, int dir)
{
	struct mino *p = M(x, M(x, dir)->parent);
	int i;

	for (i = 0; i < p->nent; i++)
		if (p->ent[i].ino == dir)
			return p->ent[i].name;
	fsx_failed(x, __LINE__, "model: directory %d has no name", dir);
	return "?";
}

static void dir_path(struct fsx *x, int dir, char *buf, size_t n)
{
	int chain[MAX_DIRS + 2], k = 0;
	size_t len = 0;

	while (dir != ROOT && k < MAX_DIRS + 1) {
		chain[k++] = dir;
		dir = M(x, dir)->parent;
	}
	buf[0] = '\0';
	if (k == 0)
		snprintf(buf, n, "/");
	while (k-- > 0)
		len += (size_t)snprintf(buf + len, n - len, "/%s", dir_name(x, chain[k]));
}

static void ent_path(struct fsx *x, int dir, const char *name, char *buf, size_t n)
{
	dir_path(x, dir, buf, n);
	if (strcmp(buf, "/") == 0)
		buf[0] = '\0';
	snprintf(buf + strlen(buf), n - strlen(buf), "/%s", name);
}

/*
 * Resolve @path from @start (an absolute path: the root) as posix.c does:
 * every component but the last must be a directory, symlinks are followed
 * (the last only with @follow_last or a trailing '/').  Returns 0 with *@out
 * the inode, or -errno.
 */
static int m_walk(struct fsx *x, int start, const char *path, bool follow_last, int *links,
		  int *out)
{
	const char *p = path;
	char comp[UDX_NAME_MAX + 1];
	int cur, next, ret;

	if (*path == '\0')
		return -ENOENT;
	cur = path[0] == '/' ? ROOT : start;
	for (;;) {
		const char *e;
		size_t len;
		bool last;

		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		e = strchrnul(p, '/');
		len = (size_t)(e - p);
		if (len > UDX_NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(comp, p, len);
		comp[len] = '\0';
		p = e;
		while (*e == '/')
			e++;
		last = *e == '\0';
		if (M(x, cur)->type != T_DIR)
			return -ENOTDIR;
		if (strcmp(comp, ".") == 0)
			next = cur;
		else if (strcmp(comp, "..") == 0)
			next = M(x, cur)->parent;
		else if ((next = m_lookup(x, cur, comp)) == 0)
			return -ENOENT;
		if (M(x, next)->type == T_LNK && (!last || follow_last || *p == '/')) {
			if (++*links > MAXLINKS)
				return -ELOOP;
			ret = m_walk(x, cur, M(x, next)->target, true, links, &next);
			if (ret)
				return ret;
		}
		cur = next;
		if (last && *p == '/' && M(x, cur)->type != T_DIR)
			return -ENOTDIR;
	}
	*out = cur;
	return 0;
}

static int m_resolve(struct fsx *x, const char *path, bool follow, int *out)
{
	int links = 0;

	return m_walk(x, ROOT, path, follow, &links, out);
}

/* The directory of @path's last name, and the name. */
static int m_parent_at(struct fsx *x, int start, const char *path, int *links, int *dir,
		       char name[UDX_NAME_MAX + 1])
{
	size_t len = strlen(path), nlen;
	const char *b;
	char *dpath;
	int ret;

	if (len == 0)
		return -ENOENT;
	while (len > 1 && path[len - 1] == '/')
		len--;
	for (b = path + len; b > path && b[-1] != '/'; b--)
		;
	nlen = (size_t)(path + len - b);
	if (nlen > UDX_NAME_MAX)
		return -ENAMETOOLONG;
	if (nlen == 1 && *b == '/')
		nlen = 0;
	memcpy(name, b, nlen);
	name[nlen] = '\0';
	if (path[0] == '/')
		start = ROOT;
	if (b == path) {
		*dir = start;
		ret = 0;
	} else {
		dpath = strndup(path, (size_t)(b - path));
		ret = m_walk(x, start, dpath, true, links, dir);
		free(dpath);
	}
	if (ret == 0 && M(x, *dir)->type != T_DIR)
		ret = -ENOTDIR;
	return ret;
}

static int m_parent(struct fsx *x, const char *path, int *dir, char name[UDX_NAME_MAX + 1])
{
	int links = 0;

	return m_parent_at(x, ROOT, path, &links, dir, name);
}

/* ---- the model: file data ---------------------------------------------- */

static void m_reserve(struct mino *m, uint64_t end)
{
	uint64_t cap;

	if (end <= m->cap)
		return;
	cap = MAX(end, m->cap * 2);
	cap = (cap + 64 * KiB - 1) & ~(64 * KiB - 1);
	m->data = realloc(m->data, cap);
	assert_non_null(m->data);
	memset(m->data + m->cap, 0, cap - m->cap);
	m->cap = cap;
}

static uint64_t blocks_of(uint64_t bytes)
{
	return (bytes + BLK - 1) / BLK;
}

static void m_write(struct mino *m, uint64_t off, const uint8_t *buf, uint64_t len)
{
	uint64_t b;

	if (len == 0)
		return;
	m_reserve(m, off + len);
	memcpy(m->data + off, buf, len);
	for (b = off / BLK; b < blocks_of(off + len); b++)
		m->bst[b] = B_DATA;
	if (off + len > m->size)
		m->size = off + len;
}

/* A shrink frees every block past the new end, fallocated ones beyond the
 * old end too (file.c punches to the end of the address space). */
static void m_truncate(struct fsx *x, struct mino *m, uint64_t size)
{
	uint64_t b;

	if (size < m->size) {
		memset(m->data + size, 0, m->size - size);
		for (b = blocks_of(size); b < x->nblk; b++)
			m->bst[b] = B_HOLE;
	}
	m->size = size;
}

static void m_falloc(struct mino *m, uint64_t off, uint64_t len, bool keep)
{
	uint64_t b;

	for (b = off / BLK; b < blocks_of(off + len); b++)
		if (m->bst[b] == B_HOLE)
			m->bst[b] = B_MAYBE;
	if (!keep && off + len > m->size) {
		m_reserve(m, off + len);
		m->size = off + len;
	}
}

static void m_punch(struct mino *m, uint64_t off, uint64_t len)
{
	uint64_t end = off + len, b;

	if (off >= m->size)
		return;
	memset(m->data + off, 0, MIN(end, m->size) - off);
	for (b = blocks_of(off); b < end / BLK && b < blocks_of(m->size); b++)
		m->bst[b] = B_HOLE;
}

static void m_touch(struct fsx *x, int ino)
{
	M(x, ino)->mtime_known = false;
}

/* ---- checking against the file system ----------------------------------- */

static void learn_ino(struct fsx *x, int ino, uint64_t rino, const char *what)
{
	struct mino *m = M(x, ino);
	int i;

	if (m->rino) {
		CHECK(x, m->rino == rino, "%s: inode number %llu, the same file had %llu", what,
		      (unsigned long long)rino, (unsigned long long)m->rino);
		return;
	}
	for (i = 1; i < NINO; i++)
		CHECK(x, i == ino || x->in[i].type == T_FREE || x->in[i].rino != rino,
		      "%s: inode number %llu belongs to another live file too", what,
		      (unsigned long long)rino);
	m->rino = rino;
}

static uint64_t data_blocks(struct fsx *x, const struct mino *m)
{
	uint64_t b, n = 0;

	for (b = 0; b < x->nblk; b++)
		n += m->bst[b] == B_DATA;
	return n;
}

static void check_attr(struct fsx *x, const char *what, const struct stat *st, int ino)
{
	static const mode_t fmt[] = { 0, S_IFREG, S_IFDIR, S_IFLNK };
	struct mino *m = M(x, ino);

	CHECK(x, (st->st_mode & S_IFMT) == fmt[m->type], "%s: file type %o, the model has %o",
	      what, (unsigned)(st->st_mode & S_IFMT), (unsigned)fmt[m->type]);
	CHECK(x, (st->st_mode & 07777) == m->perm, "%s: mode %04o, the model has %04o", what,
	      (unsigned)(st->st_mode & 07777), m->perm);
	CHECK(x, st->st_nlink == m->nlink, "%s: %lu links, the model has %u", what,
	      (unsigned long)st->st_nlink, m->nlink);
	if (m->type != T_DIR)
		CHECK(x, (uint64_t)st->st_size == m->size, "%s: size %lld, the model has %llu",
		      what, (long long)st->st_size, (unsigned long long)m->size);
	if (m->type == T_REG)
		CHECK(x, (uint64_t)st->st_blocks * 512 >= data_blocks(x, m) * BLK,
		      "%s: %lld sectors allocated, fewer than the %llu written blocks", what,
		      (long long)st->st_blocks, (unsigned long long)data_blocks(x, m));
	if (m->mtime_known)
		CHECK(x, st->st_mtim.tv_sec == m->mtime.tv_sec &&
		      st->st_mtim.tv_nsec == m->mtime.tv_nsec,
		      "%s: mtime %lld.%09ld, set by utimens to %lld.%09ld and not changed since",
		      what, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
		      (long long)m->mtime.tv_sec, m->mtime.tv_nsec);
	learn_ino(x, ino, st->st_ino, what);
}

/* Compare [off, off + len) of inode @ip with model inode @ino. */
static void check_data(struct fsx *x, struct udx_inode *ip, int ino, uint64_t off, uint64_t len,
		       const char *what)
{
	struct mino *m = M(x, ino);
	uint64_t want = off >= m->size ? 0 : MIN(len, m->size - off), i;
	ssize_t n;

	assert_true(len <= x->mode->maxsize + 2 * BLK);
	n = udx_iread(ip, x->rbuf, len, off);
	CHECK(x, n == (ssize_t)want, "%s: reading %llu bytes at %llu returned %s, the model has %llu",
	      what, (unsigned long long)len, (unsigned long long)off, errname(n),
	      (unsigned long long)want);
	if (want && memcmp(x->rbuf, m->data + off, want) != 0) {
		for (i = 0; i < want && x->rbuf[i] == m->data[off + i]; i++)
			;
		fsx_failed(x, __LINE__, "%s: byte %llu of the file is %#x, the model has %#x "
			   "(block state %d, file size %llu)", what, (unsigned long long)(off + i),
			   x->rbuf[i], m->data[off + i], m->bst[(off + i) / BLK],
			   (unsigned long long)m->size);
	}
}

static void check_fd_data(struct fsx *x, int f, uint64_t off, uint64_t len, const char *what)
{
	struct udx_inode *ip;

	CHECK(x, udx_fd_inode(x->fs, x->fd[f].fd, &ip) == 0, "%s: udx_fd_inode failed", what);
	check_data(x, ip, x->fd[f].ino, off, len, what);
	udx_iput(ip);
}

static void check_fd_attr(struct fsx *x, int f, const char *what)
{
	struct stat st;

	CHECK(x, udx_fstat(x->fs, x->fd[f].fd, &st) == 0, "%s: fstat failed", what);
	check_attr(x, what, &st, x->fd[f].ino);
}

/* The whole of @path, compared without following a last symlink. */
static void check_path(struct fsx *x, const char *path, const char *what)
{
	struct udx_inode *ip;
	struct stat st;
	int want, ino = 0;
	long got;

	want = m_resolve(x, path, false, &ino);
	got = udx_lstat(x->fs, path, &st);
	expect(x, got, want, 0, what);
	if (got)
		return;
	check_attr(x, what, &st, ino);
	if (M(x, ino)->type == T_REG && M(x, ino)->size) {
		CHECK(x, udx_resolve(x->fs, path, false, &ip) == 0, "%s: resolve failed", what);
		check_data(x, ip, ino, 0, M(x, ino)->size, what);
		udx_iput(ip);
	} else if (M(x, ino)->type == T_LNK) {
		got = udx_readlink(x->fs, path, x->lbuf, PATHBUF);
		CHECK(x, got == (long)strlen(M(x, ino)->target) &&
		      memcmp(x->lbuf, M(x, ino)->target, (size_t)got) == 0,
		      "%s: readlink returned %s, the model's target has %zu bytes", what,
		      errname(got), strlen(M(x, ino)->target));
	}
}

/*
 * SEEK_DATA and SEEK_HOLE from @off returned @r: what is certain is that
 * neither skips a B_DATA block (or any nonzero byte), SEEK_DATA never lands
 * in a B_HOLE block, SEEK_HOLE never lands in a B_DATA block nor skips a
 * B_HOLE block, and a hole reads as zeros.
 */
static void check_seek(struct fsx *x, int ino, uint64_t off, bool data, long r, const char *what)
{
	struct mino *m = M(x, ino);
	uint64_t size = m->size, b, first_data = UINT64_MAX, first_hole = size, i, bs;

	if (off >= size) {
		expect(x, r, -ENXIO, 0, what);
		return;
	}
	for (b = off / BLK; b < blocks_of(size); b++) {
		bs = MAX(off, b * BLK);
		if (first_data == UINT64_MAX && m->bst[b] == B_DATA)
			first_data = bs;
		if (first_data == UINT64_MAX && m->bst[b] == B_MAYBE) {
			/* unwritten, or half punched: data only if not zero */
			for (i = bs; i < MIN(size, (b + 1) * BLK); i++)
				if (m->data[i]) {
					first_data = bs;
					break;
				}
		}
		if (first_hole == size && m->bst[b] == B_HOLE)
			first_hole = bs;
	}
	if (data) {
		if (r == -ENXIO) {
			CHECK(x, first_data == UINT64_MAX, "%s: SEEK_DATA from %llu found none, the "
			      "model has data at %llu", what, (unsigned long long)off,
			      (unsigned long long)first_data);
			return;
		}
		CHECK(x, r >= (long)off && (uint64_t)r < size && ((uint64_t)r == off || r % BLK == 0),
		      "%s: SEEK_DATA from %llu returned %s (size %llu)", what,
		      (unsigned long long)off, errname(r), (unsigned long long)size);
		CHECK(x, (uint64_t)r <= first_data, "%s: SEEK_DATA from %llu returned %ld, skipping "
		      "data at %llu", what, (unsigned long long)off, r, (unsigned long long)first_data);
		CHECK(x, m->bst[r / BLK] != B_HOLE, "%s: SEEK_DATA from %llu returned %ld, in a "
		      "block never written", what, (unsigned long long)off, r);
		return;
	}
	CHECK(x, r >= (long)off && (uint64_t)r <= size &&
	      ((uint64_t)r == off || r % BLK == 0 || (uint64_t)r == size),
	      "%s: SEEK_HOLE from %llu returned %s (size %llu)", what, (unsigned long long)off,
	      errname(r), (unsigned long long)size);
	CHECK(x, (uint64_t)r <= first_hole, "%s: SEEK_HOLE from %llu returned %ld, skipping the "
	      "hole at %llu", what, (unsigned long long)off, r, (unsigned long long)first_hole);
	if ((uint64_t)r < size) {
		b = (uint64_t)r / BLK;
		CHECK(x, m->bst[b] != B_DATA, "%s: SEEK_HOLE from %llu returned %ld, in a written "
		      "block", what, (unsigned long long)off, r);
		for (i = b * BLK; i < MIN(size, (b + 1) * BLK); i++)
			CHECK(x, m->data[i] == 0, "%s: SEEK_HOLE from %llu returned %ld, but byte "
			      "%llu is not zero", what, (unsigned long long)off, r,
			      (unsigned long long)i);
	}
}

/* SEEK_DATA/SEEK_HOLE at @n offsets (every block start if @n is 0) through
 * a descriptor outside the model. */
static void check_seeks_path(struct fsx *x, const char *path, int ino, int n, const char *what)
{
	struct mino *m = M(x, ino);
	uint64_t nb = blocks_of(m->size), b, off;
	int fd = udx_open(x->fs, path, O_RDONLY | O_NOFOLLOW, 0);
	int i;
	long r;

	CHECK(x, fd >= 0, "%s: open for seeking returned %s", what, errname(fd));
	if (n == 0 && nb <= 64) {
		for (b = 0; b < nb; b++) {
			r = udx_lseek(x->fs, fd, (off_t)(b * BLK), SEEK_DATA);
			check_seek(x, ino, b * BLK, true, r, what);
			r = udx_lseek(x->fs, fd, (off_t)(b * BLK), SEEK_HOLE);
			check_seek(x, ino, b * BLK, false, r, what);
		}
	} else {
		for (i = 0; i < (n ? n : 64); i++) {
			off = rnd(x, m->size + BLK);
			r = udx_lseek(x->fs, fd, (off_t)off, i & 1 ? SEEK_HOLE : SEEK_DATA);
			check_seek(x, ino, off, !(i & 1), r, what);
		}
	}
	CHECK(x, udx_close(x->fs, fd) == 0, "%s: close", what);
}

/* ---- directory listings ------------------------------------------------- */

struct listing {
	struct fsx *x;
	int dir;
	bool seen[MAX_NAMES];
	int dots, dotdots, stop_after, count;
	uint64_t cookie;
	const char *what;
};

static void list_entry(struct listing *l, const char *name, uint64_t ino, unsigned type)
{
	struct fsx *x = l->x;
	struct mino *d = M(x, l->dir);
	int i;

	if (strcmp(name, ".") == 0) {
		l->dots++;
		learn_ino(x, l->dir, ino, l->what);
		return;
	}
	if (strcmp(name, "..") == 0) {
		l->dotdots++;
		learn_ino(x, d->parent, ino, l->what);
		return;
	}
	for (i = 0; i < d->nent; i++)
		if (strcmp(d->ent[i].name, name) == 0)
			break;
	CHECK(x, i < d->nent, "%s: lists '%s', which the model does not have", l->what, name);
	CHECK(x, !l->seen[i], "%s: lists '%s' twice", l->what, name);
	l->seen[i] = true;
	CHECK(x, type == dtype(M(x, d->ent[i].ino)->type), "%s: '%s' has d_type %u, the model "
	      "%u", l->what, name, type, dtype(M(x, d->ent[i].ino)->type));
	learn_ino(x, d->ent[i].ino, ino, l->what);
}

static int list_fill(void *arg, const char *name, size_t namelen, uint64_t ino, unsigned type,
		     uint64_t next)
{
	struct listing *l = arg;
	char nm[UDX_NAME_MAX + 1];

	if (l->stop_after && l->count == l->stop_after)
		return 1;
	memcpy(nm, name, namelen);
	nm[namelen] = '\0';
	list_entry(l, nm, ino, type);
	l->cookie = next;
	l->count++;
	return 0;
}

static void list_done(struct listing *l)
{
	struct fsx *x = l->x;
	int i;

	CHECK(x, l->dots == 1 && l->dotdots == 1, "%s: '.' listed %d times, '..' %d times",
	      l->what, l->dots, l->dotdots);
	for (i = 0; i < M(x, l->dir)->nent; i++)
		CHECK(x, l->seen[i], "%s: '%s' is missing from the listing", l->what,
		      M(x, l->dir)->ent[i].name);
}

/* List directory @dir (at @path) through the directory stream. */
static void check_listing(struct fsx *x, const char *path, int dir, const char *what)
{
	struct listing l = { .x = x, .dir = dir, .what = what };
	struct udx_dir *d;
	struct dirent *de;
	int ret = udx_opendir(x->fs, path, &d);

	CHECK(x, ret == 0, "%s: opendir returned %s", what, errname(ret));
	while ((de = udx_readdir(d)) != NULL)
		list_entry(&l, de->d_name, de->d_ino, de->d_type);
	udx_closedir(d);
	list_done(&l);
}

/* The same through udx_ireaddir(), a few entries per call, resuming at the
 * cookie. */
static void check_listing_cookies(struct fsx *x, const char *path, int dir, const char *what)
{
	struct listing l = { .x = x, .dir = dir, .what = what };
	struct udx_inode *ip;
	int ret, rounds = 0, before;

	ret = udx_resolve(x->fs, path, true, &ip);
	CHECK(x, ret == 0, "%s: resolve returned %s", what, errname(ret));
	do {
		before = l.count;
		l.stop_after = l.count + 1 + (int)rnd(x, 4);
		ret = udx_ireaddir(ip, l.cookie, list_fill, &l);
		CHECK(x, ret >= 0, "%s: udx_ireaddir returned %s", what, errname(ret));
		CHECK(x, ++rounds < 100, "%s: udx_ireaddir does not end", what);
	} while (l.count > before && l.count == l.stop_after);
	udx_iput(ip);
	list_done(&l);
}

/* ---- the whole tree ----------------------------------------------------------- */

static void check_free_inodes(struct fsx *x, const char *what)
{
	struct statvfs sv;

	CHECK(x, udx_statfs(x->fs, &sv) == 0, "%s: statfs", what);
	CHECK(x, sv.f_ffree == x->ffree0 - (uint64_t)(live_inodes(x) - 1) - (x->ballast_fd >= 0),
	      "%s: %llu free inodes, the model has %d live inodes (%llu free with the root alone)",
	      what, (unsigned long long)sv.f_ffree, live_inodes(x), (unsigned long long)x->ffree0);
}

static void full_check(struct fsx *x, const char *why)
{
	char *path = malloc(PATHBUF), what[64];
	struct stat st;
	int i, j, f;

	x->nchecks++;
	snprintf(what, sizeof(what), "full check (%s)", why);
	if (x->verbose) {
		struct statvfs sv;
		uint64_t tot = 0, nf = 0;

		for (i = 1; i < NINO; i++)
			if (x->in[i].type == T_REG) {
				tot += x->in[i].size;
				nf++;
			}
		udx_statfs(x->fs, &sv);
		fprintf(stderr, "fsx %s: %llu files, %llu KiB in them; %llu of %llu blocks free\n",
			x->mode->name, (unsigned long long)nf, (unsigned long long)(tot / KiB),
			(unsigned long long)sv.f_bfree, (unsigned long long)sv.f_blocks);
	}
	for (i = 1; i < NINO; i++) {
		struct mino *d = M(x, i);

		if (d->type != T_DIR)
			continue;
		dir_path(x, i, path, PATHBUF);
		CHECK(x, udx_lstat(x->fs, path, &st) == 0, "%s: lstat %s", what, path);
		check_attr(x, what, &st, i);
		if (chance(x, 50))
			check_listing(x, path, i, what);
		else
			check_listing_cookies(x, path, i, what);
		for (j = 0; j < d->nent; j++) {
			ent_path(x, i, d->ent[j].name, path, PATHBUF);
			check_path(x, path, what);
			if (M(x, d->ent[j].ino)->type == T_REG)
				check_seeks_path(x, path, d->ent[j].ino, 0, what);
		}
	}
	for (f = 0; f < MAX_FDS; f++) {
		if (!x->fd[f].used)
			continue;
		check_fd_attr(x, f, what);
		check_fd_data(x, f, 0, M(x, x->fd[f].ino)->size + BLK, what);
	}
	check_free_inodes(x, what);
	free(path);
}

/* ---- mount, fsck, remount ------------------------------------------------ */

static int fsck_problems;

static void fsck_report(void *arg, const char *problem)
{
	fprintf(stderr, "fsck: %s\n", problem);
	fsck_problems++;
}

static void fsx_mount(struct fsx *x)
{
	int ret = udx_mount(x->dev, NULL, &x->fs);

	CHECK(x, ret == 0, "mount returned %s", errname(ret));
}

static void fsx_fsck(struct fsx *x)
{
	struct udx_fsck_opts o = { .report = fsck_report };
	struct udx_fsck_result r;
	int ret;

	fsck_problems = 0;
	ret = udx_fsck(x->dev, &o, &r);
	CHECK(x, ret == 0 && fsck_problems == 0 && r.problems == 0,
	      "fsck returned %s with %d problems", errname(ret), fsck_problems);
}

static void m_close(struct fsx *x, int f)
{
	int ino = x->fd[f].ino;

	x->fd[f].used = false;
	M(x, ino)->nopen--;
	m_put(x, ino);
}

static void close_all(struct fsx *x)
{
	int f, ret;

	for (f = 0; f < MAX_FDS; f++) {
		if (!x->fd[f].used)
			continue;
		ret = udx_close(x->fs, x->fd[f].fd);
		CHECK(x, ret == 0, "close of fd %d returned %s", x->fd[f].fd, errname(ret));
		m_close(x, f);
	}
}

static bool any_open(struct fsx *x)
{
	int f;

	for (f = 0; f < MAX_FDS; f++)
		if (x->fd[f].used)
			return true;
	return false;
}

/*
 * The enospc run: fill all but a few MiB of the device with an unlinked,
 * fallocated file outside the model (an orphan held open), so that ENOSPC
 * comes soon and often.  Closed for each unmount, made again after it.
 */
static void ballast_open(struct fsx *x)
{
	uint64_t keep = (2 + rnd(x, 5)) * MiB / BLK, len;
	struct statvfs sv;
	int fd, ret;

	if (!x->mode->enospc || x->ballast_fd >= 0)
		return;
	CHECK(x, udx_statfs(x->fs, &sv) == 0, "statfs");
	if (sv.f_bfree <= keep + 64)
		return;
	len = (sv.f_bfree - keep) * BLK;
	fd = udx_open(x->fs, "/.ballast", O_CREAT | O_EXCL | O_RDWR, 0600);
	CHECK(x, fd >= 0, "create the ballast file: %s", errname(fd));
	while ((ret = udx_fallocate(x->fs, fd, 0, 0, (off_t)len)) == -ENOSPC && len > MiB)
		len -= MiB;                     /* room for its extent tree */
	CHECK(x, ret == 0, "fallocate the ballast file: %s", errname(ret));
	CHECK(x, udx_unlink(x->fs, "/.ballast") == 0, "unlink the ballast file");
	m_touch(x, ROOT);
	x->ballast_fd = fd;
}

static void ballast_close(struct fsx *x)
{
	if (x->ballast_fd < 0)
		return;
	CHECK(x, udx_close(x->fs, x->ballast_fd) == 0, "close the ballast file");
	x->ballast_fd = -1;
}

static void remount(struct fsx *x, const char *why)
{
	struct statvfs a, b;
	int ret;

	oplog(x, "remount (%s)", why);
	ballast_close(x);
	if (any_open(x)) {
		ret = udx_unmount(x->fs);
		expect(x, ret, -EBUSY, 0, "unmount with open files");
		close_all(x);
	}
	CHECK(x, udx_statfs(x->fs, &a) == 0, "statfs");
	ret = udx_unmount(x->fs);
	opres(x, ret);
	CHECK(x, ret == 0, "unmount returned %s", errname(ret));
	x->fs = NULL;
	fsx_fsck(x);
	fsx_mount(x);
	CHECK(x, udx_statfs(x->fs, &b) == 0, "statfs");
	CHECK(x, a.f_bfree == b.f_bfree && a.f_ffree == b.f_ffree,
	      "remount: %llu free blocks and %llu free inodes before, %llu and %llu after",
	      (unsigned long long)a.f_bfree, (unsigned long long)a.f_ffree,
	      (unsigned long long)b.f_bfree, (unsigned long long)b.f_ffree);
	x->nremounts++;
	full_check(x, "after remount");
	ballast_open(x);
}

/* ---- path generators ----------------------------------------------------- */

/* A random live directory. */
static int pick_dir(struct fsx *x)
{
	int i, n = 0, k;

	for (i = 1; i < NINO; i++)
		n += x->in[i].type == T_DIR;
	k = (int)rnd(x, (uint64_t)n);
	for (i = 1; i < NINO; i++)
		if (x->in[i].type == T_DIR && k-- == 0)
			return i;
	return ROOT;
}

/* A random entry whose inode has a type in @types (bit 1 << T_*); false if
 * there is none. */
static bool pick_entry(struct fsx *x, unsigned types, int *dir, int *e)
{
	int i, j, n = 0, k;

	for (i = 1; i < NINO; i++)
		if (x->in[i].type == T_DIR)
			for (j = 0; j < x->in[i].nent; j++)
				n += !!(types & (1u << M(x, x->in[i].ent[j].ino)->type));
	if (n == 0)
		return false;
	k = (int)rnd(x, (uint64_t)n);
	for (i = 1; i < NINO; i++)
		if (x->in[i].type == T_DIR)
			for (j = 0; j < x->in[i].nent; j++)
				if ((types & (1u << M(x, x->in[i].ent[j].ino)->type)) && k-- == 0) {
					*dir = i;
					*e = j;
					return true;
				}
	return false;
}

#define ANY ((1u << T_REG) | (1u << T_DIR) | (1u << T_LNK))

/* The path of an empty directory, if there is one (else @buf unchanged). */
static void pick_empty_dir(struct fsx *x, char *buf, size_t n)
{
	int i, cnt = 0, k;

	for (i = ROOT + 1; i < NINO; i++)
		cnt += x->in[i].type == T_DIR && x->in[i].nent == 0;
	if (cnt == 0)
		return;
	k = (int)rnd(x, (uint64_t)cnt);
	for (i = ROOT + 1; i < NINO; i++)
		if (x->in[i].type == T_DIR && x->in[i].nent == 0 && k-- == 0)
			dir_path(x, i, buf, n);
}

static bool pick_entry_path(struct fsx *x, unsigned types, char *buf, size_t n)
{
	int dir, e;

	if (!pick_entry(x, types, &dir, &e))
		return false;
	ent_path(x, dir, M(x, dir)->ent[e].name, buf, n);
	return true;
}

/* A path that is mostly a directory: sometimes a symlink, a file, or
 * nothing. */
static void gen_dir(struct fsx *x, char *buf, size_t n)
{
	uint64_t r = rnd(x, 100);

	if (r < 80)
		dir_path(x, pick_dir(x), buf, n);
	else if (r < 88 && !pick_entry_path(x, 1u << T_LNK, buf, n))
		dir_path(x, pick_dir(x), buf, n);
	else if (r >= 88 && r < 94 && !pick_entry_path(x, 1u << T_REG, buf, n))
		dir_path(x, pick_dir(x), buf, n);
	else if (r >= 94)
		ent_path(x, pick_dir(x), "zz", buf, n);         /* missing */
}

/* A path: an existing entry (@existing percent), else a pool name in a
 * directory-ish path.  Sometimes spelled differently. */
static void gen_path_t(struct fsx *x, char *buf, size_t n, unsigned existing, unsigned types)
{
	char name[8], *tmp;
	uint64_t r;

	if (!(chance(x, existing) && pick_entry_path(x, types, buf, n))) {
		gen_dir(x, buf, n);
		if (strcmp(buf, "/") == 0)
			buf[0] = '\0';
		snprintf(name, sizeof(name), "/n%d", (int)rnd(x, NPOOL));
		snprintf(buf + strlen(buf), n - strlen(buf), "%s", name);
	}
	r = rnd(x, 100);
	if (r < 4) {
		memmove(buf, buf + 1, strlen(buf));              /* relative: from the root */
	} else if (r < 7) {
		tmp = strdup(buf);
		snprintf(buf, n, "/.%s", tmp);
		free(tmp);
	} else if (r < 9) {
		tmp = strdup(buf);
		snprintf(buf, n, "/%s", tmp);
		free(tmp);
	}
}

static void gen_path(struct fsx *x, char *buf, size_t n, unsigned existing)
{
	gen_path_t(x, buf, n, existing, ANY);
}

/* A symlink target: an entry, a name nearby, something dangling, a long
 * path (stored in a block), its own path (a loop). */
static void gen_target(struct fsx *x, char *buf, size_t n, const char *self)
{
	uint64_t r = rnd(x, 100);
	size_t len, k, i;

	if (r < 35) {
		gen_path(x, buf, n, 80);
	} else if (r < 55) {
		snprintf(buf, n, "n%d", (int)rnd(x, NPOOL));
	} else if (r < 65) {
		snprintf(buf, n, "../n%d", (int)rnd(x, NPOOL));
	} else if (r < 73) {
		snprintf(buf, n, "/nowhere/n%d", (int)rnd(x, NPOOL));
	} else if (r < 88) {
		/* "/././.../name": long, in a block of its own */
		char tail[512];

		gen_path(x, tail, sizeof(tail), 80);
		k = 60 + rnd(x, 990);
		len = 0;
		for (i = 0; i < k; i++) {
			buf[len++] = '/';
			buf[len++] = '.';
		}
		snprintf(buf + len, n - len, "%s%s", tail[0] == '/' ? "" : "/", tail);
	} else if (r < 95) {
		snprintf(buf, n, "%s", self);
	} else {
		dir_path(x, pick_dir(x), buf, n);
	}
}

/* ---- descriptors ----------------------------------------------------------- */

static int pick_fd(struct fsx *x)
{
	int f, n = 0, k;

	for (f = 0; f < MAX_FDS; f++)
		n += x->fd[f].used;
	if (n == 0)
		return -1;
	k = (int)rnd(x, (uint64_t)n);
	for (f = 0; f < MAX_FDS; f++)
		if (x->fd[f].used && k-- == 0)
			return f;
	return -1;
}

static bool fd_readable(const struct mfd *d)
{
	return d->acc != O_WRONLY;
}

static bool fd_writable(const struct mfd *d)
{
	return d->acc != O_RDONLY;
}

static const char *accname(int acc)
{
	return acc == O_RDONLY ? "r" : acc == O_WRONLY ? "w" : "rw";
}

/* ---- operations ------------------------------------------------------------
 *
 * Each computes what the model expects, skips itself (returns false) if it
 * would take the tree past its limits, logs itself, calls the file system,
 * compares, and updates the model.
 */

/* What open() will do, per the model. */
struct mopen {
	int ino;                        /* an existing inode; 0: create */
	int cdir;                       /* where to create */
	char cname[UDX_NAME_MAX + 1];
};

static int m_open_create(struct fsx *x, int start, const char *path, int flags, int *links,
			 struct mopen *r)
{
	char name[UDX_NAME_MAX + 1];
	int dir, ret, i;

	ret = m_parent_at(x, start, path, links, &dir, name);
	if (ret)
		return ret;
	if (name[0] == '\0' || path[strlen(path) - 1] == '/')
		return -EISDIR;
	i = m_lookup(x, dir, name);
	if (i == 0) {
		r->ino = 0;
		r->cdir = dir;
		snprintf(r->cname, sizeof(r->cname), "%s", name);
		return 0;
	}
	if (flags & O_EXCL)
		return -EEXIST;
	if (M(x, i)->type == T_LNK) {
		if ((flags & O_NOFOLLOW) || ++*links > MAXLINKS)
			return -ELOOP;
		return m_open_create(x, dir, M(x, i)->target, flags, links, r);
	}
	r->ino = i;
	return 0;
}

static int m_open(struct fsx *x, const char *path, int flags, struct mopen *r)
{
	int links = 0, ret;

	if (flags & O_CREAT) {
		ret = m_open_create(x, ROOT, path, flags, &links, r);
	} else {
		ret = m_walk(x, ROOT, path, !(flags & O_NOFOLLOW), &links, &r->ino);
		if (ret == 0 && M(x, r->ino)->type == T_LNK)
			ret = -ELOOP;
	}
	if (ret == 0 && r->ino && M(x, r->ino)->type == T_DIR &&
	    ((flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT)))
		ret = -EISDIR;
	return ret;
}

static void flagstr(int flags, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s%s%s%s", accname(flags & O_ACCMODE),
		 flags & O_CREAT ? "|CREAT" : "", flags & O_EXCL ? "|EXCL" : "",
		 flags & O_TRUNC ? "|TRUNC" : "", flags & O_APPEND ? "|APPEND" : "",
		 flags & O_NOFOLLOW ? "|NOFOLLOW" : "");
}

/*
 * The model side of a successful open: create, truncate, or (a directory,
 * read-only) check that it cannot be read and close it.  Returns the model
 * descriptor slot, or -1 when the descriptor was closed.
 */
static int open_apply(struct fsx *x, const struct mopen *r, int flags, unsigned perm, int fd,
		      const char *path)
{
	int ino = r->ino, f;
	char what[64];

	snprintf(what, sizeof(what), "open %s", path);
	if (ino == 0) {
		ino = m_new(x, T_REG, perm);
		m_add(x, r->cdir, r->cname, ino);
		m_touch(x, r->cdir);
	} else if (M(x, ino)->type == T_DIR) {
		char c;
		struct stat st;

		expect(x, udx_read(x->fs, fd, &c, 1), -EISDIR, 0, "read of a directory");
		expect(x, udx_pread(x->fs, fd, &c, 1, 0), -EISDIR, 0, "pread of a directory");
		CHECK(x, udx_fstat(x->fs, fd, &st) == 0, "fstat of a directory");
		check_attr(x, what, &st, ino);
		expect(x, udx_close(x->fs, fd), 0, 0, "close of a directory");
		return -1;
	} else if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
		m_truncate(x, M(x, ino), 0);
		m_touch(x, ino);
	}
	for (f = 0; f < MAX_FDS && x->fd[f].used; f++)
		;
	assert_true(f < MAX_FDS);
	x->fd[f] = (struct mfd){ .used = true, .fd = fd, .ino = ino, .acc = flags & O_ACCMODE,
				 .append = !!(flags & O_APPEND) };
	M(x, ino)->nopen++;
	check_fd_attr(x, f, what);
	return f;
}

static int open_slots(struct fsx *x)
{
	int f, n = 0;

	for (f = 0; f < MAX_FDS; f++)
		n += !x->fd[f].used;
	return n;
}

/* After a create failed with ENOSPC (enospc mode only): nothing changed. */
static void enospc_nothing(struct fsx *x, long got, const char *path, const char *path2)
{
	CHECK(x, x->mode->enospc, "ENOSPC on a device with room for everything the model holds");
	x->nenospc++;
	(void)got;
	check_path(x, path, "after ENOSPC");
	if (path2)
		check_path(x, path2, "after ENOSPC");
	check_free_inodes(x, "after ENOSPC");
}

static bool do_open(struct fsx *x, const char *path, int flags, unsigned perm, int *slot)
{
	struct mopen r = { 0 };
	char fl[64];
	int want, fd;

	*slot = -1;
	if (open_slots(x) == 0)
		return false;
	want = m_open(x, path, flags, &r);
	if (want == 0 && r.ino == 0 && x->nnames >= MAX_NAMES)
		return false;                   /* the tree is full */
	flagstr(flags, fl, sizeof(fl));
	oplog(x, "open %s %s %04o", path, fl, perm);
	fd = udx_open(x->fs, path, flags, perm);
	opres(x, fd);
	if (want == 0 && r.ino == 0 && fd == -ENOSPC) {
		enospc_nothing(x, fd, path, NULL);
		return true;
	}
	if (want) {
		expect(x, fd, want, 0, "open");
		return true;
	}
	CHECK(x, fd >= 0, "open: got %s, the model expected a descriptor", errname(fd));
	*slot = open_apply(x, &r, flags, perm, fd, path);
	return true;
}

static bool op_open(struct fsx *x)
{
	static const int accs[] = { O_RDONLY, O_WRONLY, O_RDWR, O_RDWR };
	char *path = x->pbuf;
	int flags = accs[rnd(x, 4)], slot;

	if (chance(x, 50))
		flags |= O_CREAT;
	if ((flags & O_CREAT) && chance(x, 25))
		flags |= O_EXCL;
	if ((flags & O_ACCMODE) != O_RDONLY && chance(x, 15))
		flags |= O_TRUNC;
	if (chance(x, 20))
		flags |= O_APPEND;
	if (chance(x, 4))
		flags |= O_NOFOLLOW;
	gen_path(x, path, PATHBUF, 65);
	return do_open(x, path, flags, gen_perm(x), &slot);
}

static bool op_close(struct fsx *x)
{
	int f = pick_fd(x), ret, bad;

	if (f < 0 || chance(x, 5)) {
		bad = 1000 + (int)rnd(x, 1000);
		oplog(x, "close fd %d (not open)", bad);
		ret = udx_close(x->fs, bad);
		opres(x, ret);
		expect(x, ret, -EBADF, 0, "close of a descriptor not open");
		return true;
	}
	oplog(x, "close fd %d", x->fd[f].fd);
	ret = udx_close(x->fs, x->fd[f].fd);
	opres(x, ret);
	expect(x, ret, 0, 0, "close");
	m_close(x, f);
	return true;
}

static void compare_buf(struct fsx *x, int ino, uint64_t off, uint64_t n, const char *what)
{
	struct mino *m = M(x, ino);
	uint64_t i;

	if (n == 0 || memcmp(x->rbuf, m->data + off, n) == 0)
		return;
	for (i = 0; i < n && x->rbuf[i] == m->data[off + i]; i++)
		;
	fsx_failed(x, __LINE__, "%s: byte %llu of the file reads %#x, the model has %#x (block "
		   "state %d, size %llu)", what, (unsigned long long)(off + i), x->rbuf[i],
		   m->data[off + i], m->bst[(off + i) / BLK], (unsigned long long)m->size);
}

static bool op_read(struct fsx *x, bool positional)
{
	int f = pick_fd(x);
	struct mfd *d;
	struct mino *m;
	uint64_t off, len = gen_len(x), want;
	long ret, w;

	if (f < 0)
		return false;
	d = &x->fd[f];
	m = M(x, d->ino);
	len = MIN(len, x->mode->maxsize);
	off = positional ? gen_off(x, m->size) : d->pos;
	if (positional && chance(x, 2)) {
		oplog(x, "pread fd %d len %llu off -1", d->fd, (unsigned long long)len);
		ret = udx_pread(x->fs, d->fd, x->rbuf, len, -1);
		opres(x, ret);
		expect(x, ret, -EINVAL, 0, "pread at a negative offset");
		return true;
	}
	want = off >= m->size ? 0 : MIN(len, m->size - off);
	w = fd_readable(d) ? (long)want : -EBADF;
	if (positional) {
		oplog(x, "pread fd %d (%s, size %llu) len %llu off %llu", d->fd, accname(d->acc),
		      (unsigned long long)m->size, (unsigned long long)len,
		      (unsigned long long)off);
		ret = udx_pread(x->fs, d->fd, x->rbuf, len, (off_t)off);
	} else {
		oplog(x, "read fd %d (%s, size %llu) len %llu at pos %llu", d->fd, accname(d->acc),
		      (unsigned long long)m->size, (unsigned long long)len,
		      (unsigned long long)off);
		ret = udx_read(x->fs, d->fd, x->rbuf, len);
	}
	opres(x, ret);
	expect(x, ret, w, 0, positional ? "pread" : "read");
	if (ret > 0) {
		compare_buf(x, d->ino, off, (uint64_t)ret, positional ? "pread" : "read");
		if (!positional)
			d->pos += (uint64_t)ret;
	}
	return true;
}

/* Before a call that may fail with ENOSPC: what must then be unchanged. */
struct before {
	struct stat st;
	struct statvfs sv;
};

static void take_before(struct fsx *x, int f, struct before *b)
{
	if (!x->mode->enospc)
		return;
	CHECK(x, udx_fstat(x->fs, x->fd[f].fd, &b->st) == 0, "fstat");
	CHECK(x, udx_statfs(x->fs, &b->sv) == 0, "statfs");
}

/* A write or fallocate on [off, off + len) failed with ENOSPC: it must have
 * changed nothing at all. */
static void check_unchanged(struct fsx *x, int f, const struct before *b, uint64_t off,
			    uint64_t len, const char *what)
{
	struct stat st;
	struct statvfs sv;
	uint64_t lo = off > BLK ? off - BLK : 0;

	CHECK(x, x->mode->enospc, "%s: ENOSPC on a device with room for everything the model "
	      "holds", what);
	x->nenospc++;
	CHECK(x, udx_fstat(x->fs, x->fd[f].fd, &st) == 0, "fstat");
	CHECK(x, udx_statfs(x->fs, &sv) == 0, "statfs");
	CHECK(x, st.st_size == b->st.st_size && st.st_blocks == b->st.st_blocks,
	      "%s failed with ENOSPC but changed the file: size %lld -> %lld, sectors %lld -> %lld",
	      what, (long long)b->st.st_size, (long long)st.st_size, (long long)b->st.st_blocks,
	      (long long)st.st_blocks);
	CHECK(x, sv.f_bfree == b->sv.f_bfree, "%s failed with ENOSPC but free blocks went "
	      "from %llu to %llu", what, (unsigned long long)b->sv.f_bfree,
	      (unsigned long long)sv.f_bfree);
	check_attr(x, what, &st, x->fd[f].ino);
	check_fd_data(x, f, lo, MIN(len + 2 * BLK, x->mode->maxsize + BLK), what);
}

static bool do_write(struct fsx *x, int f, bool positional, uint64_t off, uint64_t len)
{
	struct mfd *d = &x->fd[f];
	struct mino *m = M(x, d->ino);
	struct before b;
	uint64_t at;
	long ret;

	if (d->append) {
		if (len == 0)
			len = 1;                /* where a 0-byte append leaves the position
						 * differs between systems */
		off = m->size;
	}
	clamp_range(x, &off, &len);
	if (d->append && off != m->size)
		return false;                   /* full */
	at = off;
	fill(x, x->wbuf, len);
	if (!fd_writable(d)) {
		oplog(x, "%s fd %d (r) len %llu", positional ? "pwrite" : "write", d->fd,
		      (unsigned long long)len);
		ret = positional ? udx_pwrite(x->fs, d->fd, x->wbuf, len, (off_t)off) :
				   udx_write(x->fs, d->fd, x->wbuf, len);
		opres(x, ret);
		expect(x, ret, -EBADF, 0, "write on a read-only descriptor");
		return true;
	}
	take_before(x, f, &b);
	if (positional) {
		/* on an O_APPEND descriptor pwrite appends, as on Linux */
		oplog(x, "pwrite fd %d (%s%s, size %llu) off %llu len %llu", d->fd, accname(d->acc),
		      d->append ? ", append" : "", (unsigned long long)m->size,
		      (unsigned long long)(d->append ? 777 : off), (unsigned long long)len);
		ret = udx_pwrite(x->fs, d->fd, x->wbuf, len, (off_t)(d->append ? 777 : off));
	} else {
		if (!d->append && d->pos != off) {
			/* the position was past the limit: move it */
			CHECK(x, udx_lseek(x->fs, d->fd, (off_t)off, SEEK_SET) == (off_t)off, "lseek");
			d->pos = off;
		}
		oplog(x, "write fd %d (%s%s, size %llu) at %llu len %llu", d->fd, accname(d->acc),
		      d->append ? ", append" : "", (unsigned long long)m->size,
		      (unsigned long long)at, (unsigned long long)len);
		ret = udx_write(x->fs, d->fd, x->wbuf, len);
	}
	opres(x, ret);
	m_touch(x, d->ino);
	if (ret == -ENOSPC && len) {
		check_unchanged(x, f, &b, off, len, "write");
		if (!positional) {
			CHECK(x, udx_lseek(x->fs, d->fd, 0, SEEK_CUR) == (off_t)d->pos,
			      "a write that failed moved the position");
		}
		return true;
	}
	expect(x, ret, (long)len, 0, positional ? "pwrite" : "write");
	m_write(m, off, x->wbuf, len);
	if (!positional)
		d->pos = off + len;
	check_fd_attr(x, f, "write");
	check_fd_data(x, f, off > BLK ? off - BLK : 0, MIN(len + 2 * BLK, x->mode->maxsize), "write");
	return true;
}

static bool op_write(struct fsx *x, bool positional)
{
	int f = pick_fd(x);
	uint64_t off;

	if (f < 0)
		return false;
	if (positional && chance(x, 2) && fd_writable(&x->fd[f]) && !x->fd[f].append) {
		long ret;

		oplog(x, "pwrite fd %d len 1 off 2^50", x->fd[f].fd);
		ret = udx_pwrite(x->fs, x->fd[f].fd, "x", 1, (off_t)UDX_MAX_FILE_SIZE);
		opres(x, ret);
		expect(x, ret, -EFBIG, 0, "pwrite at the largest size");
		check_fd_attr(x, f, "pwrite at the largest size");
		return true;
	}
	off = positional ? gen_off(x, M(x, x->fd[f].ino)->size) : x->fd[f].pos;
	return do_write(x, f, positional, off, gen_len(x));
}

/* A large write that fills a file's holes (enospc mode: to run out). */
static bool op_fill(struct fsx *x)
{
	int f = pick_fd(x);

	if (f < 0 || !fd_writable(&x->fd[f]) || x->fd[f].append)
		return false;
	return do_write(x, f, true, rnd(x, x->mode->maxsize / BLK) * BLK,
			256 * KiB + rnd(x, 2 * MiB));
}

/* Small writes to two files in turn, so that their blocks interleave on the
 * device (a block found through the wrong mapping then shows). */
static bool op_interleave(struct fsx *x)
{
	int a = pick_fd(x), b = pick_fd(x), i, rounds = 2 + (int)rnd(x, 5);
	uint64_t pa, pb;

	if (a < 0 || b < 0 || x->fd[a].ino == x->fd[b].ino || !fd_writable(&x->fd[a]) ||
	    !fd_writable(&x->fd[b]) || x->fd[a].append || x->fd[b].append)
		return false;
	pa = rnd(x, x->mode->maxsize / BLK / 2) * BLK + (chance(x, 50) ? rnd(x, BLK) : 0);
	pb = rnd(x, x->mode->maxsize / BLK / 2) * BLK + (chance(x, 50) ? rnd(x, BLK) : 0);
	for (i = 0; i < rounds; i++) {
		uint64_t la = 1 + rnd(x, 2 * BLK), lb = 1 + rnd(x, 2 * BLK);

		if (i)
			x->step++;
		do_write(x, a, true, pa, la);
		x->step++;
		do_write(x, b, true, pb, lb);
		pa += la;
		pb += lb;
	}
	return true;
}

/* open(O_APPEND), write, close. */
static bool op_append(struct fsx *x)
{
	char *path = x->pbuf;
	int slot, ret;

	gen_path_t(x, path, PATHBUF, 85, 1u << T_REG);
	if (!do_open(x, path, O_WRONLY | O_APPEND | (chance(x, 50) ? O_CREAT : 0), 0644, &slot))
		return false;
	if (slot < 0)
		return true;
	x->step++;
	if (!do_write(x, slot, false, 0, 1 + rnd(x, chance(x, 80) ? 3 * BLK : 128 * KiB))) {
		oplog(x, "append: the file is full");
		opres(x, 0);
	}
	x->step++;
	oplog(x, "close fd %d", x->fd[slot].fd);
	ret = udx_close(x->fs, x->fd[slot].fd);
	opres(x, ret);
	expect(x, ret, 0, 0, "close");
	m_close(x, slot);
	return true;
}

static void apply_truncate(struct fsx *x, int ino, uint64_t size)
{
	m_reserve(M(x, ino), size);
	m_truncate(x, M(x, ino), size);
	m_touch(x, ino);
}

static bool op_ftruncate(struct fsx *x)
{
	int f = pick_fd(x);
	struct mfd *d;
	uint64_t size;
	long ret, want;

	if (f < 0)
		return false;
	d = &x->fd[f];
	size = gen_size(x, M(x, d->ino)->size);
	if (chance(x, 3)) {
		oplog(x, "ftruncate fd %d -1", d->fd);
		ret = udx_ftruncate(x->fs, d->fd, -1);
		opres(x, ret);
		expect(x, ret, -EINVAL, 0, "ftruncate to a negative size");
		return true;
	}
	want = fd_writable(d) ? 0 : -EINVAL;
	oplog(x, "ftruncate fd %d (%s, size %llu) %llu", d->fd, accname(d->acc),
	      (unsigned long long)M(x, d->ino)->size, (unsigned long long)size);
	ret = udx_ftruncate(x->fs, d->fd, (off_t)size);
	opres(x, ret);
	expect(x, ret, want, 0, "ftruncate");
	if (ret == 0) {
		apply_truncate(x, d->ino, size);
		check_fd_attr(x, f, "ftruncate");
		check_fd_data(x, f, size > 2 * BLK ? size - 2 * BLK : 0, 4 * BLK, "ftruncate");
	}
	return true;
}

static bool op_truncate(struct fsx *x)
{
	char *path = x->pbuf;
	int ino = 0, want;
	uint64_t size;
	long ret;

	gen_path_t(x, path, PATHBUF, 80, chance(x, 80) ? 1u << T_REG : ANY);
	want = m_resolve(x, path, true, &ino);
	if (want == 0 && M(x, ino)->type == T_DIR)
		want = -EISDIR;
	size = gen_size(x, want == 0 ? M(x, ino)->size : 0);
	oplog(x, "truncate %s (size %llu) %llu", path,
	      (unsigned long long)(want == 0 ? M(x, ino)->size : 0), (unsigned long long)size);
	ret = udx_truncate(x->fs, path, (off_t)size);
	opres(x, ret);
	expect(x, ret, want, 0, "truncate");
	if (ret == 0)
		apply_truncate(x, ino, size);
	check_path(x, path, "truncate");
	return true;
}

static const char *fmode_name(int mode)
{
	switch (mode) {
	case 0: return "0";
	case FALLOC_FL_KEEP_SIZE: return "KEEP_SIZE";
	case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: return "PUNCH_HOLE|KEEP_SIZE";
	case FALLOC_FL_PUNCH_HOLE: return "PUNCH_HOLE";
	default: return "?";
	}
}

static bool op_fallocate(struct fsx *x)
{
	static const int modes[] = { 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE };
	int f = pick_fd(x), mode;
	struct mfd *d;
	struct mino *m;
	struct before b;
	uint64_t off, len;
	long ret, want;

	if (f < 0)
		return false;
	d = &x->fd[f];
	m = M(x, d->ino);
	mode = modes[rnd(x, 3)];
	off = gen_off(x, m->size);
	len = chance(x, 70) ? 1 + rnd(x, 64 * KiB) : 1 + rnd(x, x->mode->maxsize / 2);
	if (chance(x, 30)) {
		/* a few bytes to two blocks, unaligned: partial blocks at both
		 * ends, maybe no whole block between */
		off = rnd(x, MAX(m->size, BLK) / BLK + 1) * BLK + rnd(x, BLK);
		len = 1 + rnd(x, 2 * BLK);
	}
	clamp_range(x, &off, &len);
	if (len == 0)
		return false;
	if (fd_writable(d) && chance(x, 4)) {
		/* invalid: a punch that does not keep the size, or no length */
		bool punch = chance(x, 50);

		oplog(x, "fallocate fd %d %s off %llu len %llu", d->fd,
		      punch ? "PUNCH_HOLE" : "0", (unsigned long long)off,
		      (unsigned long long)(punch ? len : 0));
		ret = udx_fallocate(x->fs, d->fd, punch ? FALLOC_FL_PUNCH_HOLE : 0, (off_t)off,
				    punch ? (off_t)len : 0);
		opres(x, ret);
		/* Linux says EOPNOTSUPP for the punch; fs.h and test_fs EINVAL */
		expect(x, ret, -EINVAL, punch ? -EOPNOTSUPP : 0, "invalid fallocate");
		check_fd_attr(x, f, "invalid fallocate");
		return true;
	}
	want = fd_writable(d) ? 0 : -EBADF;
	take_before(x, f, &b);
	oplog(x, "fallocate fd %d (%s, size %llu) %s off %llu len %llu", d->fd, accname(d->acc),
	      (unsigned long long)m->size, fmode_name(mode), (unsigned long long)off,
	      (unsigned long long)len);
	ret = udx_fallocate(x->fs, d->fd, mode, (off_t)off, (off_t)len);
	opres(x, ret);
	if (want == 0)
		m_touch(x, d->ino);
	if (want == 0 && ret == -ENOSPC && !(mode & FALLOC_FL_PUNCH_HOLE)) {
		check_unchanged(x, f, &b, off, len, "fallocate");
		return true;
	}
	if (want == 0 && ret == -ENOSPC && x->mode->enospc) {
		/*
		 * A punch that needed a tree block: the partial blocks at its
		 * edges may already be zeroed, the rest not punched.  The size
		 * stays; every byte in the range is as before or zero; nothing
		 * outside changes.  Take what the file holds.
		 */
		uint64_t end = MIN(off + len, m->size), i, bl;
		ssize_t n;
		struct udx_inode *ip;

		x->nenospc++;
		check_fd_attr(x, f, "punch after ENOSPC");
		if (off < end) {
			CHECK(x, udx_fd_inode(x->fs, d->fd, &ip) == 0, "udx_fd_inode");
			n = udx_iread(ip, x->rbuf, end - off, off);
			udx_iput(ip);
			CHECK(x, n == (ssize_t)(end - off), "read back after a failed punch: %s",
			      errname(n));
			for (i = 0; i < end - off; i++)
				CHECK(x, x->rbuf[i] == 0 || x->rbuf[i] == m->data[off + i],
				      "punch failed with ENOSPC, and byte %llu is neither the old "
				      "value nor zero", (unsigned long long)(off + i));
			memcpy(m->data + off, x->rbuf, end - off);
			for (bl = off / BLK; bl < blocks_of(end); bl++)
				if (m->bst[bl] == B_DATA)
					m->bst[bl] = B_MAYBE;
		}
		check_fd_data(x, f, 0, m->size + BLK, "punch after ENOSPC");
		return true;
	}
	expect(x, ret, want, 0, "fallocate");
	if (ret)
		return true;
	if (mode & FALLOC_FL_PUNCH_HOLE)
		m_punch(m, off, len);
	else
		m_falloc(m, off, len, mode & FALLOC_FL_KEEP_SIZE);
	check_fd_attr(x, f, "fallocate");
	check_fd_data(x, f, off > BLK ? off - BLK : 0, MIN(len + 2 * BLK, x->mode->maxsize),
		      "fallocate");
	return true;
}

static bool op_fsync(struct fsx *x)
{
	int f = pick_fd(x);
	long ret;

	if (f < 0 || chance(x, 20)) {
		oplog(x, "sync");
		ret = udx_sync(x->fs);
	} else {
		oplog(x, "fsync fd %d", x->fd[f].fd);
		ret = udx_fsync(x->fs, x->fd[f].fd);
	}
	opres(x, ret);
	expect(x, ret, 0, 0, "fsync");
	return true;
}

static bool op_fstat(struct fsx *x)
{
	int f = pick_fd(x);

	if (f < 0)
		return false;
	oplog(x, "fstat fd %d", x->fd[f].fd);
	opres(x, 0);
	check_fd_attr(x, f, "fstat");
	if (chance(x, 30))
		check_fd_data(x, f, 0, M(x, x->fd[f].ino)->size + BLK, "whole file through fd");
	return true;
}

static bool op_lseek(struct fsx *x)
{
	static const int whences[] = { SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE,
				       SEEK_DATA, SEEK_HOLE };
	static const char *const names[] = { "SET", "CUR", "END", "DATA", "HOLE" };
	int f = pick_fd(x), w;
	struct mfd *d;
	struct mino *m;
	int64_t off, base, want;
	long ret;

	if (f < 0)
		return false;
	d = &x->fd[f];
	m = M(x, d->ino);
	w = whences[rnd(x, 7)];
	off = (int64_t)gen_off(x, m->size);
	if (w == SEEK_CUR || w == SEEK_END) {
		off = (int64_t)rnd(x, 2 * BLK + 1) - (int64_t)BLK;
		if (chance(x, 10))
			off = -(int64_t)(m->size + d->pos + 1);
	} else if (chance(x, 3)) {
		off = -1;
	}
	oplog(x, "lseek fd %d (size %llu, pos %llu) %lld SEEK_%s", d->fd,
	      (unsigned long long)m->size, (unsigned long long)d->pos, (long long)off, names[w]);
	ret = udx_lseek(x->fs, d->fd, (off_t)off, w);
	opres(x, ret);
	if (w == SEEK_DATA || w == SEEK_HOLE) {
		if (off < 0)
			expect(x, ret, -ENXIO, 0, "lseek to a negative SEEK_DATA/HOLE");
		else
			check_seek(x, d->ino, (uint64_t)off, w == SEEK_DATA, ret, "lseek");
	} else {
		base = w == SEEK_SET ? 0 : w == SEEK_CUR ? (int64_t)d->pos : (int64_t)m->size;
		want = base + off < 0 ? -EINVAL : base + off;
		expect(x, ret, want, 0, "lseek");
	}
	if (ret >= 0) {
		d->pos = (uint64_t)ret;
		if (d->pos > x->mode->maxsize) {
			/* keep writes at the position under the limit */
			CHECK(x, udx_lseek(x->fs, d->fd, 0, SEEK_SET) == 0, "lseek");
			d->pos = 0;
		}
	}
	return true;
}

static bool op_mkdir(struct fsx *x)
{
	char *path = x->pbuf, name[UDX_NAME_MAX + 1];
	unsigned perm = gen_perm(x);
	int dir = 0, want, ino;
	long ret;

	gen_path(x, path, PATHBUF, 25);
	want = m_parent(x, path, &dir, name);
	if (want == 0 && m_lookup(x, dir, name))
		want = -EEXIST;
	if (want == 0 && (x->ndirs >= MAX_DIRS || x->nnames >= MAX_NAMES))
		return false;
	oplog(x, "mkdir %s %04o", path, perm);
	ret = udx_mkdir(x->fs, path, perm);
	opres(x, ret);
	if (want == 0 && ret == -ENOSPC) {
		enospc_nothing(x, ret, path, NULL);
		return true;
	}
	expect(x, ret, want, 0, "mkdir");
	if (ret == 0) {
		/* a set-group-ID parent passes its bit on to directories */
		ino = m_new(x, T_DIR, perm | (M(x, dir)->perm & S_ISGID));
		M(x, ino)->parent = dir;
		m_add(x, dir, name, ino);
		M(x, dir)->nlink++;
		m_touch(x, dir);
		check_path(x, path, "mkdir");
	}
	return true;
}

static bool op_remove(struct fsx *x, bool rmdir)
{
	char *path = x->pbuf, name[UDX_NAME_MAX + 1];
	int dir = 0, want, ino = 0;
	long ret;

	gen_path_t(x, path, PATHBUF, 75, rmdir && chance(x, 70) ? 1u << T_DIR : ANY);
	if (rmdir && chance(x, 40))
		pick_empty_dir(x, path, PATHBUF);
	want = m_parent(x, path, &dir, name);
	if (want == 0 && (ino = m_lookup(x, dir, name)) == 0)
		want = -ENOENT;
	if (want == 0 && rmdir && M(x, ino)->type != T_DIR)
		want = -ENOTDIR;
	if (want == 0 && !rmdir && M(x, ino)->type == T_DIR)
		want = -EISDIR;
	if (want == 0 && rmdir && M(x, ino)->nent)
		want = -ENOTEMPTY;
	oplog(x, "%s %s", rmdir ? "rmdir" : "unlink", path);
	ret = rmdir ? udx_rmdir(x->fs, path) : udx_unlink(x->fs, path);
	opres(x, ret);
	expect(x, ret, want, 0, rmdir ? "rmdir" : "unlink");
	if (ret == 0) {
		m_del(x, dir, name);
		m_touch(x, dir);
		if (rmdir) {
			M(x, dir)->nlink--;
			M(x, ino)->nlink = 0;
		} else {
			M(x, ino)->nlink--;
		}
		m_put(x, ino);
		check_path(x, path, rmdir ? "rmdir" : "unlink");
	}
	return true;
}

static bool op_rename(struct fsx *x)
{
	char *from = x->pbuf, to[512], on[UDX_NAME_MAX + 1], nn[UDX_NAME_MAX + 1];
	static const unsigned flagset[] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					    UDX_RENAME_NOREPLACE, UDX_RENAME_NOREPLACE,
					    UDX_RENAME_NOREPLACE, UDX_RENAME_EXCHANGE,
					    UDX_RENAME_EXCHANGE, UDX_RENAME_EXCHANGE,
					    UDX_RENAME_EXCHANGE,
					    UDX_RENAME_NOREPLACE | UDX_RENAME_EXCHANGE };
	unsigned flags = flagset[rnd(x, sizeof(flagset) / sizeof(flagset[0]))];
	bool xchg = flags & UDX_RENAME_EXCHANGE;
	int odir = 0, ndir = 0, src = 0, tgt = 0;
	long ret, want, alt = 0;

	gen_path(x, from, PATHBUF, 85);
	gen_path(x, to, sizeof(to), xchg ? 80 : 45);
	if (flags == (UDX_RENAME_NOREPLACE | UDX_RENAME_EXCHANGE)) {
		/* Linux checks the flags first, udaxfs the paths first */
		want = -EINVAL;
		if ((alt = m_parent(x, from, &odir, on)) == 0)
			alt = m_parent(x, to, &ndir, nn);
		if (alt == 0 && m_lookup(x, odir, on) == 0)
			alt = -ENOENT;
	} else if ((want = m_parent(x, from, &odir, on)) != 0 ||
		 (want = m_parent(x, to, &ndir, nn)) != 0) {
		/* want says why */
	} else if ((src = m_lookup(x, odir, on)) == 0)
		want = -ENOENT;
	else if ((tgt = m_lookup(x, ndir, nn)) == 0 && xchg)
		want = -ENOENT;
	else if (tgt && (flags & UDX_RENAME_NOREPLACE))
		want = -EEXIST;
	else if (odir != ndir && M(x, src)->type == T_DIR && is_below(x, ndir, src))
		want = -EINVAL;                 /* into itself */
	else if (odir != ndir && tgt && M(x, tgt)->type == T_DIR && is_below(x, odir, tgt)) {
		/* over an ancestor of itself: Linux says ENOTEMPTY; udaxfs
		 * checks the file types first when the source is no directory */
		want = xchg ? -EINVAL : -ENOTEMPTY;
		if (!xchg && M(x, src)->type != T_DIR)
			alt = -EISDIR;
	} else if (src == tgt)
		want = 0;
	else if (tgt && !xchg && M(x, src)->type == T_DIR && M(x, tgt)->type != T_DIR)
		want = -ENOTDIR;
	else if (tgt && !xchg && M(x, src)->type != T_DIR && M(x, tgt)->type == T_DIR)
		want = -EISDIR;
	else if (tgt && !xchg && M(x, tgt)->nent)
		want = -ENOTEMPTY;
	oplog(x, "rename %s %s%s%s", from, to, flags & UDX_RENAME_NOREPLACE ? " NOREPLACE" : "",
	      xchg ? " EXCHANGE" : "");
	ret = udx_rename(x->fs, from, to, flags);
	opres(x, ret);
	if (want == 0 && src != tgt && ret == -ENOSPC) {
		enospc_nothing(x, ret, from, to);
		return true;
	}
	expect(x, ret, want, alt, "rename");
	if (ret != 0 || src == tgt)
		goto out;
	m_touch(x, odir);
	m_touch(x, ndir);
	if (M(x, src)->type == T_DIR)
		m_touch(x, src);
	if (xchg) {
		m_set(x, odir, on, tgt);
		m_set(x, ndir, nn, src);
		if (odir != ndir) {
			if (M(x, src)->type == T_DIR) {
				M(x, src)->parent = ndir;
				M(x, odir)->nlink--;
				M(x, ndir)->nlink++;
			}
			if (M(x, tgt)->type == T_DIR) {
				M(x, tgt)->parent = odir;
				M(x, ndir)->nlink--;
				M(x, odir)->nlink++;
			}
		}
		if (M(x, tgt)->type == T_DIR)
			m_touch(x, tgt);
		goto out;
	}
	m_del(x, odir, on);
	if (tgt) {
		m_set(x, ndir, nn, src);
		if (M(x, tgt)->type == T_DIR) {
			M(x, tgt)->nlink = 0;
			M(x, ndir)->nlink--;
		} else {
			M(x, tgt)->nlink--;
		}
		m_put(x, tgt);
	} else {
		m_add(x, ndir, nn, src);
	}
	if (M(x, src)->type == T_DIR) {
		M(x, src)->parent = ndir;
		if (odir != ndir) {
			M(x, odir)->nlink--;
			M(x, ndir)->nlink++;
		}
	}
out:
	check_path(x, from, "rename");
	check_path(x, to, "rename");
	return true;
}

static bool op_link(struct fsx *x)
{
	char *from = x->pbuf, to[512], name[UDX_NAME_MAX + 1];
	int src = 0, dir = 0;
	long ret, want, alt = 0;

	gen_path(x, from, PATHBUF, 85);
	gen_path(x, to, sizeof(to), 25);
	if ((want = m_resolve(x, from, false, &src)) != 0 ||
	    (want = m_parent(x, to, &dir, name)) != 0) {
		/* want says why */
	} else if (m_lookup(x, dir, name)) {
		want = -EEXIST;
		if (M(x, src)->type == T_DIR)
			alt = -EPERM;           /* udaxfs checks the type first */
	} else if (M(x, src)->type == T_DIR)
		want = -EPERM;
	if (want == 0 && x->nnames >= MAX_NAMES)
		return false;
	oplog(x, "link %s %s", from, to);
	ret = udx_link(x->fs, from, to);
	opres(x, ret);
	if (want == 0 && ret == -ENOSPC) {
		enospc_nothing(x, ret, from, to);
		return true;
	}
	expect(x, ret, want, alt, "link");
	if (ret == 0) {
		m_add(x, dir, name, src);
		M(x, src)->nlink++;
		m_touch(x, dir);
		check_path(x, to, "link");
		check_path(x, from, "link");
	}
	return true;
}

static bool op_symlink(struct fsx *x)
{
	char *target = x->pbuf, path[512], name[UDX_NAME_MAX + 1];
	int dir = 0, ino;
	long ret, want;

	gen_path(x, path, sizeof(path), 20);
	gen_target(x, target, PATHBUF, path);
	if ((want = m_parent(x, path, &dir, name)) == 0 && m_lookup(x, dir, name))
		want = -EEXIST;
	if (want == 0 && x->nnames >= MAX_NAMES)
		return false;
	oplog(x, "symlink %.*s%s %s", 60, target, strlen(target) > 60 ? "..." : "", path);
	ret = udx_symlink(x->fs, target, path);
	opres(x, ret);
	if (want == 0 && ret == -ENOSPC) {
		enospc_nothing(x, ret, path, NULL);
		return true;
	}
	expect(x, ret, want, 0, "symlink");
	if (ret == 0) {
		ino = m_new(x, T_LNK, 0777);
		M(x, ino)->target = strdup(target);
		M(x, ino)->size = strlen(target);
		m_add(x, dir, name, ino);
		m_touch(x, dir);
		check_path(x, path, "symlink");
	}
	return true;
}

static bool op_readlink(struct fsx *x)
{
	char *path = x->pbuf, buf[PATHBUF];
	size_t size = chance(x, 20) ? 1 + rnd(x, 64) : sizeof(buf);
	int ino = 0;
	long ret, want;

	gen_path_t(x, path, PATHBUF, 80, chance(x, 80) ? 1u << T_LNK : ANY);
	if ((want = m_resolve(x, path, false, &ino)) == 0 && M(x, ino)->type != T_LNK)
		want = -EINVAL;
	if (want == 0)
		want = (long)MIN(strlen(M(x, ino)->target), size);
	oplog(x, "readlink %s (buffer %zu)", path, size);
	ret = udx_readlink(x->fs, path, buf, size);
	opres(x, ret);
	expect(x, ret, want, 0, "readlink");
	if (ret > 0)
		CHECK(x, memcmp(buf, M(x, ino)->target, (size_t)ret) == 0,
		      "readlink: the target differs from the model's");
	return true;
}

static bool op_stat(struct fsx *x, bool follow)
{
	char *path = x->pbuf, what[16];
	struct stat st;
	int ino = 0;
	long ret, want;

	gen_path(x, path, PATHBUF, 80);
	want = m_resolve(x, path, follow, &ino);
	oplog(x, "%s %s", follow ? "stat" : "lstat", path);
	ret = follow ? udx_stat(x->fs, path, &st) : udx_lstat(x->fs, path, &st);
	opres(x, ret);
	snprintf(what, sizeof(what), "%s", follow ? "stat" : "lstat");
	expect(x, ret, want, 0, what);
	if (ret == 0)
		check_attr(x, what, &st, ino);
	return true;
}

static bool op_chmod(struct fsx *x)
{
	char *path = x->pbuf;
	unsigned perm = gen_perm(x);
	struct stat st;
	int ino = 0;
	long ret, want;

	gen_path(x, path, PATHBUF, 85);
	want = m_resolve(x, path, true, &ino);
	oplog(x, "chmod %s %04o", path, perm);
	ret = udx_chmod(x->fs, path, perm);
	opres(x, ret);
	expect(x, ret, want, 0, "chmod");
	if (ret == 0) {
		M(x, ino)->perm = perm;
		CHECK(x, udx_stat(x->fs, path, &st) == 0, "stat after chmod");
		check_attr(x, "chmod", &st, ino);
	}
	return true;
}

static bool op_utimens(struct fsx *x)
{
	char *path = x->pbuf;
	struct timespec t[2], t0, t1;
	struct stat st;
	bool null = chance(x, 10);
	int ino = 0, i;
	long ret, want;

	for (i = 0; i < 2; i++) {
		uint64_t r = rnd(x, 100);

		t[i].tv_sec = (time_t)(1000000000 + rnd(x, 1000000000));
		t[i].tv_nsec = (long)rnd(x, 1000000000);
		if (r < 15)
			t[i].tv_nsec = UTIME_OMIT;
		else if (r < 30)
			t[i].tv_nsec = UTIME_NOW;
	}
	gen_path(x, path, PATHBUF, 85);
	want = m_resolve(x, path, true, &ino);
	oplog(x, "utimens %s %s", path, null ? "NULL" : "times");
	clock_gettime(CLOCK_REALTIME, &t0);
	ret = udx_utimens(x->fs, path, null ? NULL : t);
	clock_gettime(CLOCK_REALTIME, &t1);
	opres(x, ret);
	expect(x, ret, want, 0, "utimens");
	if (ret)
		return true;
	if (null)
		t[0].tv_nsec = t[1].tv_nsec = UTIME_NOW;
	if (t[1].tv_nsec != UTIME_OMIT)
		M(x, ino)->mtime_known = false;
	CHECK(x, udx_stat(x->fs, path, &st) == 0, "stat after utimens");
	check_attr(x, "utimens", &st, ino);
	for (i = 0; i < 2; i++) {
		const struct timespec *got = i == 0 ? &st.st_atim : &st.st_mtim;

		if (t[i].tv_nsec == UTIME_OMIT)
			continue;
		if (t[i].tv_nsec == UTIME_NOW) {
			CHECK(x, (got->tv_sec > t0.tv_sec ||
				  (got->tv_sec == t0.tv_sec && got->tv_nsec >= t0.tv_nsec)) &&
			      (got->tv_sec < t1.tv_sec ||
			       (got->tv_sec == t1.tv_sec && got->tv_nsec <= t1.tv_nsec)),
			      "utimens: %s %lld.%09ld is not the time of the call", i ? "mtime" : "atime",
			      (long long)got->tv_sec, got->tv_nsec);
			continue;
		}
		CHECK(x, got->tv_sec == t[i].tv_sec && got->tv_nsec == t[i].tv_nsec,
		      "utimens: %s %lld.%09ld, set to %lld.%09ld", i ? "mtime" : "atime",
		      (long long)got->tv_sec, got->tv_nsec, (long long)t[i].tv_sec, t[i].tv_nsec);
	}
	if (t[1].tv_nsec != UTIME_OMIT && t[1].tv_nsec != UTIME_NOW) {
		M(x, ino)->mtime_known = true;
		M(x, ino)->mtime = t[1];
	}
	return true;
}

static bool op_readdir(struct fsx *x)
{
	char *path = x->pbuf;
	struct udx_dir *d = NULL;
	int ino = 0;
	long ret, want;

	gen_dir(x, path, PATHBUF);
	if ((want = m_resolve(x, path, true, &ino)) == 0 && M(x, ino)->type != T_DIR)
		want = -ENOTDIR;
	oplog(x, "readdir %s", path);
	ret = udx_opendir(x->fs, path, &d);
	opres(x, ret);
	expect(x, ret, want, 0, "opendir");
	if (ret)
		return true;
	udx_closedir(d);
	if (chance(x, 50))
		check_listing(x, path, ino, "readdir");
	else
		check_listing_cookies(x, path, ino, "readdir (udx_ireaddir)");
	return true;
}

static bool op_verify(struct fsx *x)
{
	char *path = x->pbuf;
	int dir, e;

	if (!pick_entry(x, 1u << T_REG, &dir, &e))
		return false;
	ent_path(x, dir, M(x, dir)->ent[e].name, path, PATHBUF);
	oplog(x, "verify %s", path);
	opres(x, 0);
	check_path(x, path, "verify");
	check_seeks_path(x, path, M(x, dir)->ent[e].ino, 16, "verify");
	return true;
}

/* ---- the run --------------------------------------------------------------- */

enum {
	OP_OPEN, OP_CLOSE, OP_READ, OP_PREAD, OP_WRITE, OP_PWRITE, OP_APPEND, OP_FTRUNCATE,
	OP_TRUNCATE, OP_FALLOCATE, OP_FSYNC, OP_FSTAT, OP_LSEEK, OP_MKDIR, OP_RMDIR,
	OP_UNLINK, OP_RENAME, OP_LINK, OP_SYMLINK, OP_READLINK, OP_STAT, OP_LSTAT, OP_CHMOD,
	OP_UTIMENS, OP_READDIR, OP_VERIFY, OP_FILL, OP_INTERLEAVE, NOPS
};

static const unsigned op_weight[NOPS] = {
	[OP_OPEN] = 9, [OP_CLOSE] = 6, [OP_READ] = 5, [OP_PREAD] = 6, [OP_WRITE] = 8,
	[OP_PWRITE] = 10, [OP_APPEND] = 3, [OP_FTRUNCATE] = 4, [OP_TRUNCATE] = 3,
	[OP_FALLOCATE] = 6, [OP_FSYNC] = 2, [OP_FSTAT] = 2, [OP_LSEEK] = 5, [OP_MKDIR] = 4,
	[OP_RMDIR] = 3, [OP_UNLINK] = 5, [OP_RENAME] = 9, [OP_LINK] = 3, [OP_SYMLINK] = 3,
	[OP_READLINK] = 2, [OP_STAT] = 3, [OP_LSTAT] = 2, [OP_CHMOD] = 2, [OP_UTIMENS] = 2,
	[OP_READDIR] = 3, [OP_VERIFY] = 2, [OP_FILL] = 0,      /* mode->fill_weight */
	[OP_INTERLEAVE] = 6,
};

static const char *const op_name[NOPS] = {
	"open", "close", "read", "pread", "write", "pwrite", "append", "ftruncate", "truncate",
	"fallocate", "fsync", "fstat", "lseek", "mkdir", "rmdir", "unlink", "rename", "link",
	"symlink", "readlink", "stat", "lstat", "chmod", "utimens", "readdir", "verify", "fill",
	"interleave",
};

static void print_stats(struct fsx *x)
{
	char line[2048], nospc[32];
	size_t n = 0;
	int op;

	for (op = 0; op < NOPS; op++) {
		nospc[0] = '\0';
		if (x->nnospc[op])
			snprintf(nospc, sizeof(nospc), " (%ld ENOSPC)", x->nnospc[op]);
		n += (size_t)snprintf(line + n, sizeof(line) - n, " %s %ld/%ld%s", op_name[op],
				      x->nok[op], x->ncalls[op], nospc);
	}
	fprintf(stderr, "fsx %s: succeeded/called:%s\n", x->mode->name, line);
}

static bool do_op(struct fsx *x, int op)
{
	switch (op) {
	case OP_OPEN: return op_open(x);
	case OP_CLOSE: return op_close(x);
	case OP_READ: return op_read(x, false);
	case OP_PREAD: return op_read(x, true);
	case OP_WRITE: return op_write(x, false);
	case OP_PWRITE: return op_write(x, true);
	case OP_APPEND: return op_append(x);
	case OP_FTRUNCATE: return op_ftruncate(x);
	case OP_TRUNCATE: return op_truncate(x);
	case OP_FALLOCATE: return op_fallocate(x);
	case OP_FSYNC: return op_fsync(x);
	case OP_FSTAT: return op_fstat(x);
	case OP_LSEEK: return op_lseek(x);
	case OP_MKDIR: return op_mkdir(x);
	case OP_RMDIR: return op_remove(x, true);
	case OP_UNLINK: return op_remove(x, false);
	case OP_RENAME: return op_rename(x);
	case OP_LINK: return op_link(x);
	case OP_SYMLINK: return op_symlink(x);
	case OP_READLINK: return op_readlink(x);
	case OP_STAT: return op_stat(x, true);
	case OP_LSTAT: return op_stat(x, false);
	case OP_CHMOD: return op_chmod(x);
	case OP_UTIMENS: return op_utimens(x);
	case OP_READDIR: return op_readdir(x);
	case OP_VERIFY: return op_verify(x);
	case OP_FILL: return op_fill(x);
	case OP_INTERLEAVE: return op_interleave(x);
	}
	return false;
}

static unsigned weight(struct fsx *x, int op)
{
	return op == OP_FILL ? x->mode->fill_weight : op_weight[op];
}

static int pick_op(struct fsx *x)
{
	unsigned total = 0, r;
	int op;

	for (op = 0; op < NOPS; op++)
		total += weight(x, op);
	r = (unsigned)rnd(x, total);
	for (op = 0; op < NOPS; op++) {
		if (r < weight(x, op))
			return op;
		r -= weight(x, op);
	}
	return OP_STAT;
}

/* Remove everything, deepest first, through the model's names. */
static void remove_all(struct fsx *x)
{
	char *path = malloc(PATHBUF);
	bool again = true;
	int i, ino;

	close_all(x);
	while (again) {
		again = false;
		for (i = 1; i < NINO; i++) {
			struct mino *d = M(x, i);

			while (d->type == T_DIR && d->nent) {
				ino = d->ent[d->nent - 1].ino;
				if (M(x, ino)->type == T_DIR && M(x, ino)->nent) {
					again = true;
					break;
				}
				ent_path(x, i, d->ent[d->nent - 1].name, path, PATHBUF);
				x->step++;
				oplog(x, "%s %s (cleanup)", M(x, ino)->type == T_DIR ? "rmdir" :
				      "unlink", path);
				expect(x, M(x, ino)->type == T_DIR ? udx_rmdir(x->fs, path) :
				       udx_unlink(x->fs, path), 0, 0, "cleanup");
				m_del(x, i, d->ent[d->nent - 1].name);
				if (M(x, ino)->type == T_DIR) {
					d->nlink--;
					M(x, ino)->nlink = 0;
				} else {
					M(x, ino)->nlink--;
				}
				m_put(x, ino);
			}
		}
	}
	free(path);
}

static long env_long(const char *name, long dflt)
{
	const char *s = getenv(name);

	return s && *s ? strtol(s, NULL, 0) : dflt;
}

static void fsx_run(const struct fsx_mode *mode)
{
	struct fsx *x = calloc(1, sizeof(*x));
	const char *only = getenv("UDX_FSX_MODE");
	const char *secs = getenv("UDX_STRESS_SECONDS");
	struct statvfs sv;
	struct stat st;
	uint64_t t0 = tu_now_ns();
	int op, tries, periodic = 0;

	if (only && *only && strcmp(only, mode->name) != 0) {
		free(x);
		skip();
	}
	x->mode = mode;
	x->seed = tu_seed();
	x->rng = x->seed ^ (mode->enospc ? 0x5eed0e05bcull : 0);
	if (x->rng == 0)
		x->rng = 1;
	x->nops = env_long("UDX_FSX_OPS", (secs && *secs) ? LONG_MAX :
			   mode->ops / SLOWDOWN);
	if (secs && *secs)
		x->deadline = t0 + (uint64_t)(atof(secs) * 1e9);
	x->check_every = (int)env_long("UDX_FSX_CHECK_EVERY", 200);
	x->verbose = env_long("UDX_FSX_VERBOSE", 0) != 0;
	x->nblk = mode->maxsize / BLK + 2;
	x->wbuf = malloc(mode->maxsize + 2 * BLK);
	x->rbuf = malloc(mode->maxsize + 2 * BLK);
	x->pbuf = malloc(PATHBUF);
	x->lbuf = malloc(PATHBUF);
	assert_true(x->wbuf && x->rbuf && x->pbuf && x->lbuf);
	fprintf(stderr, "fsx %s: %s, files up to %llu KiB, %ld ops%s\n", mode->name, mode->dev,
		(unsigned long long)(mode->maxsize / KiB), x->nops == LONG_MAX ? -1 : x->nops,
		x->deadline ? " (or until UDX_STRESS_SECONDS)" : "");

	x->dev = tu_anon(mode->dev);
	assert_int_equal(udx_mkfs(x->dev, NULL), 0);
	fsx_mount(x);
	assert_int_equal(udx_statfs(x->fs, &sv), 0);
	x->ffree0 = sv.f_ffree;
	assert_int_equal(udx_stat(x->fs, "/", &st), 0);
	x->in[ROOT] = (struct mino){ .type = T_DIR, .perm = st.st_mode & 07777, .nlink = 2,
				     .parent = ROOT, .rino = st.st_ino };
	x->ndirs = 0;                   /* the root does not count */
	x->ballast_fd = -1;
	ballast_open(x);

	for (x->step = 0; x->step < x->nops; x->step++) {
		if (x->deadline && tu_now_ns() >= x->deadline)
			break;
		x->hist[x->step % HIST][0] = '\0';
		for (tries = 0; tries < 20; tries++) {
			op = pick_op(x);
			x->last_ret = 0;
			if (do_op(x, op)) {
				x->ncalls[op]++;
				x->nok[op] += x->last_ret >= 0;
				x->nnospc[op] += x->last_ret == -ENOSPC;
				if (x->last_ret == -ENOSPC && !x->first_enospc)
					x->first_enospc = x->step;
				break;
			}
		}
		if (tries == 20)
			x->nskipped++;
		if (x->check_every && x->step % x->check_every == x->check_every - 1) {
			x->step++;
			if (++periodic % 5 == 0) {
				remount(x, "periodic");         /* fsck, then a full check */
			} else {
				oplog(x, "full check");
				opres(x, 0);
				full_check(x, "periodic");
			}
		}
		if (rnd(x, 500) == 0) {
			x->step++;
			remount(x, "random");
		}
	}
	x->step++;
	oplog(x, "full check (end)");
	opres(x, 0);
	full_check(x, "end");
	x->step++;
	remount(x, "end");
	remove_all(x);
	full_check(x, "after removing everything");
	x->step++;
	remount(x, "after removing everything");
	ballast_close(x);
	assert_int_equal(udx_unmount(x->fs), 0);
	fsx_fsck(x);
	fprintf(stderr, "fsx %s: %ld steps in %.2f s: %ld full checks, %ld remounts + fsck, "
		"%ld ENOSPC checked to change nothing", mode->name, x->step,
		(double)(tu_now_ns() - t0) / 1e9, x->nchecks, x->nremounts, x->nenospc);
	if (x->nenospc)
		fprintf(stderr, " (the first at step %ld)", x->first_enospc);
	fputc('\n', stderr);
	print_stats(x);
	udx_dev_close(x->dev);
	free(x->wbuf);
	free(x->rbuf);
	free(x->pbuf);
	free(x->lbuf);
	for (op = 1; op < NINO; op++) {
		free(x->in[op].data);
		free(x->in[op].bst);
		free(x->in[op].target);
	}
	free(x);
}

static const struct fsx_mode mode_normal = {
	.name = "normal", .dev = "anon:64M", .maxsize = 1 * MiB, .enospc = false, .large_pct = 7,
	.ops = 20000,
};

static const struct fsx_mode mode_enospc = {
	.name = "enospc", .dev = "anon:24M", .maxsize = 8 * MiB, .enospc = true, .large_pct = 30,
	.fill_weight = 14, .ops = 5000,
};

static void test_fsx_normal(void **state)
{
	fsx_run(&mode_normal);
}

static void test_fsx_enospc(void **state)
{
	fsx_run(&mode_enospc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fsx_normal),
		cmocka_unit_test(test_fsx_enospc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
