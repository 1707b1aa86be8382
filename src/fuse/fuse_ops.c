/* SPDX-License-Identifier: MIT */
/*
 * The FUSE low-level operations over the inode-level API (udaxfs/fs.h).
 * See udx_fuse.h for the model: node ids are inode numbers, kernel lookup
 * counts are inode references kept in the node table below.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <udaxfs.h>
#include "fuse/fuse_int.h"

/* ---- the node table: what the kernel holds ------------------------------ */

struct node {
	uint64_t ino;
	struct udx_inode *ip;           /* one reference per node */
	uint64_t nlookup;               /* the kernel's count */
	struct node *next;
};

static struct node_shard *shard_of(struct ufs *u, uint64_t ino)
{
	return &u->shards[(ino * 0x9e3779b97f4a7c15ull) >> (64 - NODE_SHARD_BITS)];
}

static size_t bucket_of(const struct node_shard *s, uint64_t ino)
{
	return (size_t)((ino * 0xff51afd7ed558ccdull) >> 20) & (s->nbuckets - 1);
}

static void shard_grow(struct node_shard *s)
{
	size_t n = s->nbuckets ? s->nbuckets * 2 : 64, i;
	struct node **b = calloc(n, sizeof(*b)), *nd, *next;
	struct node_shard t = { .nbuckets = n };

	if (b == NULL)
		return;                 /* longer chains, still correct */
	for (i = 0; i < s->nbuckets; i++) {
		for (nd = s->buckets[i]; nd; nd = next) {
			size_t k = bucket_of(&t, nd->ino);

			next = nd->next;
			nd->next = b[k];
			b[k] = nd;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

/*
 * The kernel learnt of @ip once more: keep the reference the caller passes
 * (the first time), or drop it for the one the node already holds.
 * Returns -ENOMEM, with the reference dropped, when no node can be made.
 */
static int node_add(struct ufs *u, struct udx_inode *ip)
{
	uint64_t ino = udx_iino(ip);
	struct node_shard *s = shard_of(u, ino);
	struct node *nd;

	pthread_mutex_lock(&s->lock);
	if (s->nbuckets == 0 || s->count >= s->nbuckets)
		shard_grow(s);
	if (s->nbuckets == 0) {
		pthread_mutex_unlock(&s->lock);
		udx_iput(ip);
		return -ENOMEM;
	}
	for (nd = s->buckets[bucket_of(s, ino)]; nd; nd = nd->next)
		if (nd->ino == ino)
			break;
	if (nd) {
		nd->nlookup++;
		pthread_mutex_unlock(&s->lock);
		udx_iput(ip);
		return 0;
	}
	nd = malloc(sizeof(*nd));
	if (nd == NULL) {
		pthread_mutex_unlock(&s->lock);
		udx_iput(ip);
		return -ENOMEM;
	}
	nd->ino = ino;
	nd->ip = ip;
	nd->nlookup = 1;
	nd->next = s->buckets[bucket_of(s, ino)];
	s->buckets[bucket_of(s, ino)] = nd;
	s->count++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The kernel forgot @n lookups of @ino: the last one drops the reference. */
static void node_forget(struct ufs *u, uint64_t ino, uint64_t n)
{
	struct node_shard *s = shard_of(u, ino);
	struct node **pp, *nd;

	pthread_mutex_lock(&s->lock);
	for (pp = s->nbuckets ? &s->buckets[bucket_of(s, ino)] : NULL; pp && *pp;
	     pp = &(*pp)->next) {
		nd = *pp;
		if (nd->ino != ino)
			continue;
		if (nd->nlookup > n) {
			nd->nlookup -= n;
			break;
		}
		*pp = nd->next;
		s->count--;
		pthread_mutex_unlock(&s->lock);
		udx_iput(nd->ip);
		free(nd);
		return;
	}
	pthread_mutex_unlock(&s->lock);
}

/*
 * The inode behind a node id the kernel sent, referenced for the request.
 * The kernel holds the node while it sends requests on it, so a miss is a
 * stale handle (after a daemon restart, or a kernel bug): ESTALE.
 */
static struct udx_inode *node_get(struct ufs *u, fuse_ino_t ino)
{
	struct node_shard *s;
	struct udx_inode *ip = NULL;
	struct node *nd;

	if (ino == FUSE_ROOT_ID) {
		udx_igrab(u->root);
		return u->root;
	}
	s = shard_of(u, ino);
	pthread_mutex_lock(&s->lock);
	for (nd = s->nbuckets ? s->buckets[bucket_of(s, ino)] : NULL; nd; nd = nd->next) {
		if (nd->ino == ino) {
			ip = nd->ip;
			udx_igrab(ip);
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return ip;
}

void ufs_nodes_drop_all(struct ufs *u)
{
	unsigned i;

	for (i = 0; i < NODE_SHARDS; i++) {
		struct node_shard *s = &u->shards[i];
		size_t b;

		pthread_mutex_lock(&s->lock);
		for (b = 0; b < s->nbuckets; b++) {
			struct node *nd, *next;

			for (nd = s->buckets[b]; nd; nd = next) {
				next = nd->next;
				udx_iput(nd->ip);
				free(nd);
			}
		}
		free(s->buckets);
		s->buckets = NULL;
		s->nbuckets = s->count = 0;
		pthread_mutex_unlock(&s->lock);
	}
}

/* ---- replies ------------------------------------------------------------- */

static struct ufs *req_ufs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void reply_err(fuse_req_t req, int neg)
{
	fuse_reply_err(req, neg < 0 ? -neg : neg);
}

#define GET_NODE(req, u, ino, ip)                                               \
	do {                                                                    \
		(ip) = node_get((u), (ino));                                    \
		if ((ip) == NULL) {                                             \
			fuse_reply_err((req), ESTALE);                          \
			return;                                                 \
		}                                                               \
	} while (0)

static int fill_entry(struct ufs *u, struct udx_inode *ip, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = udx_iino(ip);
	e->generation = udx_igeneration(ip);
	e->attr_timeout = u->attr_timeout;
	e->entry_timeout = u->entry_timeout;
	return udx_igetattr(ip, &e->attr);
}

/*
 * Answer a lookup (or create, mknod...) with @ip, whose reference the
 * answer takes over as one kernel lookup.  If the kernel drops the answer
 * (the request was interrupted), the lookup is forgotten again.
 */
static void reply_entry(fuse_req_t req, struct ufs *u, struct udx_inode *ip,
			struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int ret = fill_entry(u, ip, &e);

	if (ret == 0)
		ret = node_add(u, ip);
	else
		udx_iput(ip);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	if ((fi ? fuse_reply_create(req, &e, fi) : fuse_reply_entry(req, &e)) != 0)
		node_forget(u, e.ino, 1);
}

static void reply_attr(fuse_req_t req, struct ufs *u, struct udx_inode *ip)
{
	struct stat st;
	int ret = udx_igetattr(ip, &st);

	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_attr(req, &st, u->attr_timeout);
}

/* ---- the operations ---------------------------------------------------- */

static void op_init(void *data, struct fuse_conn_info *conn)
{
	struct ufs *u = data;

	/* large requests: 1 MiB writes and read-ahead (the kernel keeps the
	 * smaller of this and the read-ahead udx_fuse_serve() set before) */
	conn->max_write = UFS_MAX_IO;
	conn->max_readahead = UFS_MAX_IO;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;       /* stats on the root */
	/* writes land in device memory when they return: no write-back cache */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* every change to file data comes through this mount, which keeps the
	 * page cache right itself: a new mtime need not drop it */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* the kernel keeps its own locks: every process is behind this one */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	(void)u;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *dir, *ip;
	int ret;

	GET_NODE(req, u, parent, dir);
	ret = udx_ilookup(dir, name, &ip);
	udx_iput(dir);
	if (ret == -ENOENT && u->negative_timeout > 0) {
		/* a negative entry the kernel may cache: our own creates
		 * through it invalidate it */
		struct fuse_entry_param e = { .entry_timeout = u->negative_timeout };

		fuse_reply_entry(req, &e);
		return;
	}
	if (ret) {
		reply_err(req, ret);
		return;
	}
	reply_entry(req, u, ip, NULL);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(req_ufs(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	struct ufs *u = req_ufs(req);
	size_t i;

	for (i = 0; i < count; i++)
		node_forget(u, f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *ip;

	GET_NODE(req, u, ino, ip);
	reply_attr(req, u, ip);
	udx_iput(ip);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *ip;
	struct stat st = *attr;
	unsigned which = 0;
	int ret = 0;

	if (to_set & FUSE_SET_ATTR_MODE)
		which |= UDX_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		which |= UDX_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		which |= UDX_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		which |= UDX_SET_SIZE;
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		which |= UDX_SET_ATIME;
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			st.st_atim.tv_nsec = UTIME_NOW;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		which |= UDX_SET_MTIME;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			st.st_mtim.tv_nsec = UTIME_NOW;
	}
	if (to_set & FUSE_SET_ATTR_CTIME)
		which |= UDX_SET_CTIME;
	GET_NODE(req, u, ino, ip);
	if (which)
		ret = udx_isetattr(ip, &st, which);
	if (ret)
		reply_err(req, ret);
	else
		reply_attr(req, u, ip);
	udx_iput(ip);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct ufs *u = req_ufs(req);
	char buf[PATH_MAX + 1];
	struct udx_inode *ip;
	ssize_t n;

	GET_NODE(req, u, ino, ip);
	n = udx_ireadlink(ip, buf, sizeof(buf));
	udx_iput(ip);
	if (n < 0) {
		reply_err(req, (int)n);
		return;
	}
	buf[MIN((size_t)n, sizeof(buf) - 1)] = '\0';
	fuse_reply_readlink(req, buf);
}

/* Make @name in @parent for the caller of @req. */
static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      dev_t rdev, const char *target, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct ufs *u = req_ufs(req);
	struct udx_inode *dir, *ip;
	int ret;

	GET_NODE(req, u, parent, dir);
	ret = udx_icreate(dir, name, mode, ctx->uid, ctx->gid, rdev, target, &ip);
	udx_iput(dir);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	if (fi)
		ufs_open_flags(u, fi);
	reply_entry(req, u, ip, fi);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	make_node(req, parent, name, mode, rdev, NULL, NULL);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, NULL);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make_node(req, parent, name, S_IFLNK | 0777, 0, link, NULL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	make_node(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, fi);
}

/* Remove @name from @parent: udx_iunlink or udx_irmdir. */
static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name,
			int (*rm)(struct udx_inode *dir, const char *name))
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *dir;
	int ret;

	GET_NODE(req, u, parent, dir);
	ret = rm(dir, name);
	udx_iput(dir);
	reply_err(req, ret);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, udx_iunlink);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, udx_irmdir);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *odir, *ndir;
	unsigned uflags = 0;
	int ret;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);    /* RENAME_WHITEOUT: overlayfs only */
		return;
	}
	if (flags & RENAME_NOREPLACE)
		uflags |= UDX_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		uflags |= UDX_RENAME_EXCHANGE;
	GET_NODE(req, u, parent, odir);
	ndir = node_get(u, newparent);
	if (ndir == NULL) {
		udx_iput(odir);
		fuse_reply_err(req, ESTALE);
		return;
	}
	ret = udx_irename(odir, name, ndir, newname, uflags);
	udx_iput(odir);
	udx_iput(ndir);
	reply_err(req, ret);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *ip, *dir;
	int ret;

	GET_NODE(req, u, ino, ip);
	dir = node_get(u, newparent);
	if (dir == NULL) {
		udx_iput(ip);
		fuse_reply_err(req, ESTALE);
		return;
	}
	ret = udx_ilink(ip, dir, newname);
	udx_iput(dir);
	if (ret) {
		udx_iput(ip);
		reply_err(req, ret);
		return;
	}
	reply_entry(req, u, ip, NULL);
}

void ufs_open_flags(struct ufs *u, struct fuse_file_info *fi)
{
	/* every change to a file reaches it through this mount, and the
	 * kernel drops what it changes itself: its page cache may outlive
	 * an open */
	fi->keep_cache = 1;
	if (fi->flags & O_DIRECT)
		fi->direct_io = 1;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *ip;
	struct stat st;
	int ret;

	GET_NODE(req, u, ino, ip);
	ret = udx_igetattr(ip, &st);
	udx_iput(ip);
	if (ret == 0 && S_ISDIR(st.st_mode))
		ret = -EISDIR;
	if (ret == 0 && u->rdonly && (fi->flags & O_ACCMODE) != O_RDONLY)
		ret = -EROFS;
	if (ret) {
		reply_err(req, ret);
		return;
	}
	ufs_open_flags(u, fi);
	fuse_reply_open(req, fi);
}

/* Read through a copy: for ranges a pin cannot take (racing a truncate). */
static void read_copy(fuse_req_t req, struct udx_inode *ip, size_t size, off_t off)
{
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = udx_iread(ip, buf, size, (uint64_t)off);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

#define READ_IOV_MAX 320

static pthread_rwlock_t *io_lock(struct ufs *u, fuse_ino_t ino)
{
	return &u->io[(ino * 0x9e3779b97f4a7c15ull) >> 56].lock;
}

/*
 * Reads give the kernel the device memory: pin the range (a truncate or
 * punch racing with the reply waits for the unpin), write the reply from the
 * pin's segments, unpin.  Holes read as the shared zero page.
 */
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct ufs *u = req_ufs(req);
	struct iovec iov[READ_IOV_MAX];
	const struct udx_pin_seg *seg;
	struct udx_inode *ip;
	struct udx_pin *pin;
	uint64_t start, end, pstart, pend, pos;
	size_t nseg, i, n = 0;
	struct stat st;
	int ret;

	GET_NODE(req, u, ino, ip);
	ret = udx_igetattr(ip, &st);
	if (ret || !S_ISREG(st.st_mode)) {
		reply_err(req, ret ? ret : -EISDIR);
		goto out;
	}
	start = (uint64_t)off;
	if (off < 0 || start >= (uint64_t)st.st_size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		goto out;
	}
	end = MIN(start + size, (uint64_t)st.st_size);
	pstart = start & ~(uint64_t)(UDX_BLOCK_SIZE - 1);
	pend = (end + UDX_BLOCK_SIZE - 1) & ~(uint64_t)(UDX_BLOCK_SIZE - 1);
	ret = udx_ipin(ip, pstart, pend - pstart, 0, NULL, NULL, &pin);
	if (ret == -EINVAL || ret == -EAGAIN || ret == -ENOMEM) {
		read_copy(req, ip, size, off);  /* the size changed under us */
		goto out;
	}
	if (ret) {
		reply_err(req, ret);
		goto out;
	}
	seg = udx_pin_segs(pin, &nseg);
	pos = pstart;
	for (i = 0; i < nseg && pos < end; i++) {
		uint64_t s = MAX(pos, start), e = MIN(pos + seg[i].len, end);

		if (e > s) {
			if (n == READ_IOV_MAX)
				break;
			iov[n].iov_base = (char *)seg[i].addr + (s - pos);
			iov[n].iov_len = e - s;
			n++;
		}
		pos += seg[i].len;
	}
	if (i < nseg && pos < end) {
		udx_unpin(pin);
		read_copy(req, ip, size, off);  /* too many pieces for one reply */
		goto out;
	}
	pthread_rwlock_rdlock(io_lock(u, ino));
	fuse_reply_iov(req, iov, (int)n);
	pthread_rwlock_unlock(io_lock(u, ino));
	udx_unpin(pin);
out:
	udx_iput(ip);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *ip;
	ssize_t n;

	GET_NODE(req, u, ino, ip);
	pthread_rwlock_wrlock(io_lock(u, ino));
	n = off < 0 ? -EINVAL : udx_iwrite(ip, buf, size, (uint64_t)off, 0, NULL);
	pthread_rwlock_unlock(io_lock(u, ino));
	udx_iput(ip);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);         /* the kernel's lookup keeps the inode */
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *ip;
	int ret;

	GET_NODE(req, u, ino, ip);
	ret = u->rdonly ? 0 : udx_ifsync(ip, datasync != 0);
	udx_iput(ip);
	reply_err(req, ret);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *ip;
	struct stat st;
	int ret;

	GET_NODE(req, u, ino, ip);
	ret = udx_igetattr(ip, &st);
	udx_iput(ip);
	if (ret == 0 && !S_ISDIR(st.st_mode))
		ret = -ENOTDIR;
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_open(req, fi);
}

struct rdctx {
	fuse_req_t req;
	struct ufs *u;
	char *buf;
	size_t size, pos;
	bool plus;
	int err;
};

static int rd_fill(void *arg, const char *name, size_t namelen, uint64_t ino, unsigned type,
		   uint64_t next)
{
	struct rdctx *r = arg;
	char nm[UDX_NAME_MAX + 1];
	size_t len, room = r->size - r->pos;

	if (namelen > UDX_NAME_MAX)
		return 0;               /* cannot be: the format refuses it */
	memcpy(nm, name, namelen);
	nm[namelen] = '\0';
	if (!r->plus) {
		struct stat st = { .st_ino = ino, .st_mode = DTTOIF(type) };

		len = fuse_add_direntry(r->req, r->buf + r->pos, room, nm, &st, (off_t)next);
	} else {
		struct fuse_entry_param e = {
			.attr = { .st_ino = ino, .st_mode = DTTOIF(type) },
		};
		struct udx_inode *ip;
		bool dot = strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0;

		len = fuse_add_direntry_plus(r->req, NULL, 0, nm, NULL, 0);
		if (len > room)
			return 1;
		/* an entry the kernel learns of counts as a lookup (not the
		 * dots); one that went away meanwhile is sent without */
		if (!dot && udx_iget(udx_ifs(r->u->root), ino, &ip) == 0) {
			if (fill_entry(r->u, ip, &e) != 0) {
				udx_iput(ip);
				memset(&e, 0, sizeof(e));
			} else if (node_add(r->u, ip) != 0) {   /* dropped ip */
				memset(&e, 0, sizeof(e));
			}
			if (e.ino == 0) {
				e.attr.st_ino = ino;
				e.attr.st_mode = DTTOIF(type);
			}
		}
		len = fuse_add_direntry_plus(r->req, r->buf + r->pos, room, nm, &e, (off_t)next);
	}
	if (len > room)
		return 1;
	r->pos += len;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct ufs *u = req_ufs(req);
	struct rdctx r = { .req = req, .u = u, .size = size, .plus = plus };
	struct udx_inode *dir;
	int ret;

	GET_NODE(req, u, ino, dir);
	r.buf = malloc(size ? size : 1);
	if (r.buf == NULL) {
		udx_iput(dir);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = udx_ireaddir(dir, off < 0 ? 0 : (uint64_t)off, rd_fill, &r);
	udx_iput(dir);
	if (ret && r.pos == 0)
		reply_err(req, ret);
	else
		fuse_reply_buf(req, r.buf, r.pos);
	free(r.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	op_fsync(req, ino, datasync, fi);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct ufs *u = req_ufs(req);
	struct statvfs st;
	int ret = udx_statfs(udx_ifs(u->root), &st);

	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_statfs(req, &st);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct ufs *u = req_ufs(req);
	struct udx_inode *ip;
	int ret;

	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	GET_NODE(req, u, ino, ip);
	ret = udx_ifallocate(ip, mode, (uint64_t)off, (uint64_t)len);
	udx_iput(ip);
	reply_err(req, ret);
}

/*
 * No extended attributes: every xattr operation is left to libfuse's
 * ENOSYS, after which the kernel answers EOPNOTSUPP itself and stops asking
 * (it asked for security.capability before every write).  The counters
 * `udaxfs stats MOUNTPOINT` prints come through an ioctl on the root.
 */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		     size_t in_bufsz, size_t out_bufsz)
{
	struct ufs *u = req_ufs(req);
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (cmd != UDX_FUSE_IOC_STATS || ino != FUSE_ROOT_ID || u->stats == NULL) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	f = open_memstream(&text, &len);
	if (f == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	u->stats(f, udx_ifs(u->root));
	fclose(f);
	if (len + 1 > out_bufsz)
		len = out_bufsz - 1;
	text[len] = '\0';
	fuse_reply_ioctl(req, 0, text, len + 1);
	free(text);
}

const struct fuse_lowlevel_ops ufs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	/* no flush: writes are in device memory when they return, and the
	 * ENOSYS libfuse answers tells the kernel to stop sending one at
	 * every close */
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.create = op_create,
	.fallocate = op_fallocate,
	.ioctl = op_ioctl,
};
