/* SPDX-License-Identifier: MIT */
/*
 * The POSIX-level interface: paths, file descriptors, directory streams.
 * Everything here is built on the inode-level calls.
 *
 * A file descriptor is a slot in fs_fds holding a struct udx_file, which
 * holds an inode reference.  Calls on a descriptor take a reference on the
 * udx_file (f_refs) for their duration, so a close racing with a read frees
 * it only after the read.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "fs/fs.h"

#define MAX_SYMLINKS 40

struct fd_file {
	struct udx_file f;
	uint32_t f_refs;                /* atomic */
};

/* ---- path resolution ------------------------------------------------------ */

static int resolve_from(struct udx_fs *fs, struct udx_inode *start, const char *path,
			bool follow_last, int *links, struct udx_inode **out);

/* Replace the symlink @lnk (found in @dir) by what it points at. */
static int follow_link(struct udx_fs *fs, struct udx_inode *dir, struct udx_inode *lnk,
		       int *links, struct udx_inode **out)
{
	char *target;
	ssize_t n;
	int ret;

	if (++*links > MAX_SYMLINKS)
		return udx_err(-ELOOP, "too many levels of symbolic links");
	target = malloc(UDX_SYMLINK_MAX + 1);
	if (target == NULL)
		return udx_err(-ENOMEM, "out of memory");
	n = udx_ireadlink(lnk, target, UDX_SYMLINK_MAX + 1);
	if (n < 0) {
		free(target);
		return (int)n;
	}
	target[n] = '\0';
	ret = resolve_from(fs, target[0] == '/' ? NULL : dir, target, true, links, out);
	free(target);
	return ret;
}

/*
 * Walk @path from @start (NULL: the root).  Every component but the last
 * must be a directory (symlinks followed); the last is followed if it is a
 * symlink and @follow_last, or if the path ends in '/'.
 */
static int resolve_from(struct udx_fs *fs, struct udx_inode *start, const char *path,
			bool follow_last, int *links, struct udx_inode **out)
{
	struct udx_inode *cur, *next;
	char comp[UDX_NAME_MAX + 1];
	const char *p = path;
	int ret;

	if (*path == '\0')
		return udx_err(-ENOENT, "an empty path");
	if (start) {
		udx_igrab(start);
		cur = start;
	} else {
		ret = udx_iget(fs, UDX_ROOT_INO, &cur);
		if (ret)
			return ret;
	}
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
		if (len > UDX_NAME_MAX) {
			udx_iput(cur);
			return udx_err(-ENAMETOOLONG, "a path component longer than %d bytes",
				       UDX_NAME_MAX);
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		p = e;
		while (*e == '/')
			e++;
		last = *e == '\0';
		if (!IS_DIR(cur)) {
			udx_iput(cur);
			return udx_err(-ENOTDIR, "a path component is not a directory");
		}
		ret = udx_ilookup(cur, comp, &next);
		if (ret) {
			udx_iput(cur);
			return ret;
		}
		if (IS_LNK(next) && (!last || follow_last || *p == '/')) {
			struct udx_inode *t;

			ret = follow_link(fs, cur, next, links, &t);
			udx_iput(next);
			if (ret) {
				udx_iput(cur);
				return ret;
			}
			next = t;
		}
		udx_iput(cur);
		cur = next;
		if (last && *p == '/' && !IS_DIR(cur)) {
			udx_iput(cur);
			return udx_err(-ENOTDIR, "'%s' is not a directory", comp);
		}
	}
	*out = cur;
	return 0;
}

int udx_resolve(struct udx_fs *fs, const char *path, bool follow, struct udx_inode **ip)
{
	int links = 0;

	if (path == NULL)
		return udx_err(-EFAULT, "a NULL path");
	return resolve_from(fs, NULL, path, follow, &links, ip);
}

/*
 * Split @path into its directory (resolved, referenced) and last name.
 * Returns -EEXIST-style errors through @last_empty when the path names the
 * root (no last component): *@name is then "".
 */
static int resolve_parent_at(struct udx_fs *fs, struct udx_inode *start, const char *path,
			     int *links, struct udx_inode **dir, char name[UDX_NAME_MAX + 1],
			     bool *trailing_slash);

static int resolve_parent(struct udx_fs *fs, const char *path, struct udx_inode **dir,
			  char name[UDX_NAME_MAX + 1], bool *trailing_slash)
{
	int links = 0;

	return resolve_parent_at(fs, NULL, path, &links, dir, name, trailing_slash);
}

/* The same, relative to @start (NULL or an absolute path: the root). */
static int resolve_parent_at(struct udx_fs *fs, struct udx_inode *start, const char *path,
			     int *links, struct udx_inode **dir, char name[UDX_NAME_MAX + 1],
			     bool *trailing_slash)
{
	size_t len, nlen;
	const char *b;
	char *dpath;
	int ret;

	if (path == NULL)
		return udx_err(-EFAULT, "a NULL path");
	len = strlen(path);
	if (len == 0)
		return udx_err(-ENOENT, "an empty path");
	if (len > 4096)
		return udx_err(-ENAMETOOLONG, "a path longer than 4096 bytes");
	*trailing_slash = path[len - 1] == '/';
	while (len > 1 && path[len - 1] == '/')
		len--;
	for (b = path + len; b > path && b[-1] != '/'; b--)
		;
	nlen = (size_t)(path + len - b);
	if (nlen > UDX_NAME_MAX)
		return udx_err(-ENAMETOOLONG, "a name longer than %d bytes", UDX_NAME_MAX);
	if (nlen == 1 && *b == '/')
		nlen = 0;               /* the path is "/" */
	memcpy(name, b, nlen);
	name[nlen] = '\0';
	dpath = strndup(path, (size_t)(b - path));
	if (dpath == NULL)
		return udx_err(-ENOMEM, "out of memory");
	if (path[0] == '/')
		start = NULL;
	if (*dpath == '\0' && start) {
		udx_igrab(start);
		*dir = start;
		ret = 0;
	} else if (*dpath == '\0') {
		ret = udx_iget(fs, UDX_ROOT_INO, dir);
	} else {
		ret = resolve_from(fs, start, dpath, true, links, dir);
	}
	free(dpath);
	if (ret == 0 && !IS_DIR(*dir)) {
		udx_iput(*dir);
		ret = udx_err(-ENOTDIR, "a path component is not a directory");
	}
	return ret;
}

/* ---- file descriptors ----------------------------------------------------- */

static int fd_install(struct udx_fs *fs, struct udx_inode *ip, int flags)
{
	struct fd_file *ff = calloc(1, sizeof(*ff));
	int fd;

	if (ff == NULL)
		return udx_err(-ENOMEM, "out of memory");
	ff->f.f_ip = ip;
	ff->f.f_flags = flags;
	ff->f_refs = 1;
	pthread_mutex_init(&ff->f.f_lock, NULL);
	pthread_mutex_lock(&fs->fs_fd_lock);
	for (fd = 0; fd < fs->fs_nfds && fs->fs_fds[fd]; fd++)
		;
	if (fd == fs->fs_nfds) {
		int n = fs->fs_nfds ? fs->fs_nfds * 2 : 64;
		struct udx_file **p = n > (1 << 24) ? NULL :
				      realloc(fs->fs_fds, (size_t)n * sizeof(*p));

		if (p == NULL) {
			pthread_mutex_unlock(&fs->fs_fd_lock);
			pthread_mutex_destroy(&ff->f.f_lock);
			free(ff);
			return udx_err(-EMFILE, "too many open files");
		}
		memset(p + fs->fs_nfds, 0, (size_t)(n - fs->fs_nfds) * sizeof(*p));
		fs->fs_fds = p;
		fs->fs_nfds = n;
	}
	fs->fs_fds[fd] = &ff->f;
	fs->fs_open_files++;
	pthread_mutex_unlock(&fs->fs_fd_lock);
	return fd;
}

static struct fd_file *fd_get(struct udx_fs *fs, int fd)
{
	struct fd_file *ff = NULL;

	pthread_mutex_lock(&fs->fs_fd_lock);
	if (fd >= 0 && fd < fs->fs_nfds && fs->fs_fds[fd]) {
		ff = container_of(fs->fs_fds[fd], struct fd_file, f);
		__atomic_fetch_add(&ff->f_refs, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&fs->fs_fd_lock);
	if (ff == NULL)
		udx_err(-EBADF, "file descriptor %d is not open", fd);
	return ff;
}

static void fd_put(struct fd_file *ff)
{
	if (__atomic_sub_fetch(&ff->f_refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	udx_iput(ff->f.f_ip);
	pthread_mutex_destroy(&ff->f.f_lock);
	free(ff);
}

static bool fd_readable(const struct fd_file *ff)
{
	return (ff->f.f_flags & O_ACCMODE) != O_WRONLY;
}

static bool fd_writable(const struct fd_file *ff)
{
	return (ff->f.f_flags & O_ACCMODE) != O_RDONLY;
}

/*
 * Create or open @path (relative to @start) for open(O_CREAT): a symlink in
 * the last place is followed, and its target created if missing, as Linux
 * does.
 */
static int open_create(struct udx_fs *fs, struct udx_inode *start, const char *path,
		       int flags, mode_t mode, int *links, struct udx_inode **out)
{
	char name[UDX_NAME_MAX + 1], *target;
	struct udx_inode *dir, *ip;
	bool slash;
	ssize_t n;
	int ret;

	ret = resolve_parent_at(fs, start, path, links, &dir, name, &slash);
	if (ret)
		return ret;
	if (name[0] == '\0' || slash) {
		udx_iput(dir);
		return udx_err(-EISDIR, "cannot create a directory with open()");
	}
	/* look first: opening an existing file must not cost a transaction */
	ret = udx_ilookup(dir, name, &ip);
	if (ret == 0 && (flags & O_EXCL)) {
		udx_iput(ip);
		ret = udx_err(-EEXIST, "'%s' exists", name);
	} else if (ret == -ENOENT) {
		udx_err_clear();        /* an expected miss, not the caller's failure */
		ret = udx_icreate(dir, name, S_IFREG | (mode & 07777), READ_ONCE(fs->fs_uid),
				  READ_ONCE(fs->fs_gid), 0, NULL, &ip);
		if (ret == -EEXIST && !(flags & O_EXCL))        /* lost a race */
			ret = udx_ilookup(dir, name, &ip);
	}
	if (ret == 0 && IS_DIR(ip)) {
		udx_iput(ip);
		ret = udx_err(-EISDIR, "'%s' is a directory", name);
	} else if (ret == 0 && IS_LNK(ip) && !(flags & O_EXCL)) {
		if ((flags & O_NOFOLLOW) || ++*links > MAX_SYMLINKS) {
			ret = (flags & O_NOFOLLOW) ? udx_err(-ELOOP, "'%s' is a symbolic link", name) :
						     udx_err(-ELOOP, "too many levels of symbolic links");
			udx_iput(ip);
			goto out;
		}
		target = malloc(UDX_SYMLINK_MAX + 1);
		n = target ? udx_ireadlink(ip, target, UDX_SYMLINK_MAX + 1) : -ENOMEM;
		udx_iput(ip);
		ip = NULL;
		if (n < 0) {
			free(target);
			ret = (int)n;
			goto out;
		}
		target[n] = '\0';
		ret = open_create(fs, dir, target, flags, mode, links, &ip);
		free(target);
	}
out:
	udx_iput(dir);
	if (ret == 0)
		*out = ip;
	return ret;
}

int udx_open(struct udx_fs *fs, const char *path, int flags, mode_t mode)
{
	struct udx_inode *ip = NULL;
	bool wr = (flags & O_ACCMODE) != O_RDONLY;
	int ret, links = 0, fd;

	if (path == NULL)
		return udx_err(-EFAULT, "a NULL path");
	if ((flags & O_ACCMODE) == O_ACCMODE)
		return udx_err(-EINVAL, "bad access mode");
	if (fs->fs_rdonly && (wr || (flags & (O_CREAT | O_TRUNC))))
		return udx_err(-EROFS, "the file system is mounted read-only");
	if (flags & O_CREAT) {
		ret = open_create(fs, NULL, path, flags, mode, &links, &ip);
		if (ret)
			return ret;
	} else {
		ret = udx_resolve(fs, path, !(flags & O_NOFOLLOW), &ip);
		if (ret)
			return ret;
		if ((flags & O_NOFOLLOW) && IS_LNK(ip)) {
			udx_iput(ip);
			return udx_err(-ELOOP, "'%s' is a symbolic link", path);
		}
	}
	if ((flags & O_DIRECTORY) && !IS_DIR(ip)) {
		ret = udx_err(-ENOTDIR, "'%s' is not a directory", path);
		goto out_put;
	}
	if (IS_DIR(ip) && wr) {
		ret = udx_err(-EISDIR, "'%s' is a directory", path);
		goto out_put;
	}
	if ((flags & O_TRUNC) && wr && IS_REG(ip)) {
		ret = udx_itruncate(ip, 0);
		if (ret)
			goto out_put;
	}
	fd = fd_install(fs, ip, flags);
	if (fd < 0) {
		ret = fd;
		goto out_put;
	}
	return fd;

out_put:
	udx_iput(ip);
	return ret;
}

int udx_close(struct udx_fs *fs, int fd)
{
	struct fd_file *ff = NULL;

	pthread_mutex_lock(&fs->fs_fd_lock);
	if (fd >= 0 && fd < fs->fs_nfds && fs->fs_fds[fd]) {
		ff = container_of(fs->fs_fds[fd], struct fd_file, f);
		fs->fs_fds[fd] = NULL;
		fs->fs_open_files--;
	}
	pthread_mutex_unlock(&fs->fs_fd_lock);
	if (ff == NULL)
		return udx_err(-EBADF, "file descriptor %d is not open", fd);
	fd_put(ff);
	return 0;
}

int udx_fd_inode(struct udx_fs *fs, int fd, struct udx_inode **ip)
{
	struct fd_file *ff = fd_get(fs, fd);

	if (ff == NULL)
		return -EBADF;
	udx_igrab(ff->f.f_ip);
	*ip = ff->f.f_ip;
	fd_put(ff);
	return 0;
}

int udx_fd_flags(struct udx_fs *fs, int fd)
{
	struct fd_file *ff = fd_get(fs, fd);
	int flags;

	if (ff == NULL)
		return -EBADF;
	flags = ff->f.f_flags;
	fd_put(ff);
	return flags;
}

ssize_t udx_pread(struct udx_fs *fs, int fd, void *buf, size_t len, off_t off)
{
	struct fd_file *ff = fd_get(fs, fd);
	ssize_t ret;

	if (ff == NULL)
		return -EBADF;
	if (off < 0)
		ret = udx_err(-EINVAL, "a negative offset");
	else if (!fd_readable(ff))
		ret = udx_err(-EBADF, "file descriptor %d is not open for reading", fd);
	else
		ret = udx_iread(ff->f.f_ip, buf, len, (uint64_t)off);
	fd_put(ff);
	return ret;
}

ssize_t udx_pwrite(struct udx_fs *fs, int fd, const void *buf, size_t len, off_t off)
{
	struct fd_file *ff = fd_get(fs, fd);
	ssize_t ret;

	if (ff == NULL)
		return -EBADF;
	if (off < 0)
		ret = udx_err(-EINVAL, "a negative offset");
	else if (!fd_writable(ff))
		ret = udx_err(-EBADF, "file descriptor %d is not open for writing", fd);
	else
		/* like Linux, pwrite on an O_APPEND descriptor appends */
		ret = udx_iwrite(ff->f.f_ip, buf, len, (uint64_t)off,
				 (ff->f.f_flags & O_APPEND) ? UDX_WRITE_APPEND : 0, NULL);
	fd_put(ff);
	return ret;
}

ssize_t udx_read(struct udx_fs *fs, int fd, void *buf, size_t len)
{
	struct fd_file *ff = fd_get(fs, fd);
	ssize_t ret;

	if (ff == NULL)
		return -EBADF;
	if (!fd_readable(ff)) {
		fd_put(ff);
		return udx_err(-EBADF, "file descriptor %d is not open for reading", fd);
	}
	pthread_mutex_lock(&ff->f.f_lock);
	ret = udx_iread(ff->f.f_ip, buf, len, ff->f.f_pos);
	if (ret > 0)
		ff->f.f_pos += (uint64_t)ret;
	pthread_mutex_unlock(&ff->f.f_lock);
	fd_put(ff);
	return ret;
}

ssize_t udx_write(struct udx_fs *fs, int fd, const void *buf, size_t len)
{
	struct fd_file *ff = fd_get(fs, fd);
	uint64_t at;
	ssize_t ret;

	if (ff == NULL)
		return -EBADF;
	if (!fd_writable(ff)) {
		fd_put(ff);
		return udx_err(-EBADF, "file descriptor %d is not open for writing", fd);
	}
	pthread_mutex_lock(&ff->f.f_lock);
	ret = udx_iwrite(ff->f.f_ip, buf, len, ff->f.f_pos,
			 (ff->f.f_flags & O_APPEND) ? UDX_WRITE_APPEND : 0, &at);
	if (ret >= 0)
		ff->f.f_pos = at + (uint64_t)ret;
	pthread_mutex_unlock(&ff->f.f_lock);
	fd_put(ff);
	return ret;
}

/* SEEK_DATA / SEEK_HOLE: the next data or hole at or after @off. */
static off_t seek_data_hole(struct udx_inode *ip, uint64_t off, bool data)
{
	uint64_t size, lblk;
	struct ext_map m;
	off_t ret;

	ilock_shared(ip);
	size = ip->i_d->i_size;
	if (off >= size) {
		ret = udx_err(-ENXIO, "beyond the end of the file");
		goto out;
	}
	for (lblk = off >> UDX_BLOCK_SHIFT; (lblk << UDX_BLOCK_SHIFT) < size; lblk += m.m_len) {
		bool is_data;

		ret = ext_lookup(ip, lblk, &m);
		if (ret)
			goto out;
		is_data = m.m_pblk != 0 && !m.m_unwritten;
		if (is_data == data) {
			ret = (off_t)MAX(off, lblk << UDX_BLOCK_SHIFT);
			goto out;
		}
		if (m.m_len > (size >> UDX_BLOCK_SHIFT) + 1)
			break;
	}
	ret = data ? udx_err(-ENXIO, "no data after the offset") : (off_t)size;
out:
	iunlock(ip);
	return ret;
}

off_t udx_lseek(struct udx_fs *fs, int fd, off_t off, int whence)
{
	struct fd_file *ff = fd_get(fs, fd);
	struct stat st;
	off_t base, ret;

	if (ff == NULL)
		return -EBADF;
	pthread_mutex_lock(&ff->f.f_lock);
	switch (whence) {
	case SEEK_SET:
		base = 0;
		break;
	case SEEK_CUR:
		base = (off_t)ff->f.f_pos;
		break;
	case SEEK_END:
		udx_igetattr(ff->f.f_ip, &st);
		base = st.st_size;
		break;
	case SEEK_DATA:
	case SEEK_HOLE:
		if (off < 0) {
			ret = udx_err(-ENXIO, "a negative offset");
			goto out;
		}
		ret = seek_data_hole(ff->f.f_ip, (uint64_t)off, whence == SEEK_DATA);
		if (ret >= 0)
			ff->f.f_pos = (uint64_t)ret;
		goto out;
	default:
		ret = udx_err(-EINVAL, "bad whence %d", whence);
		goto out;
	}
	if ((off > 0 && base > INT64_MAX - off) || base + off < 0) {
		ret = udx_err(-EINVAL, "the offset would be negative or overflow");
		goto out;
	}
	ff->f.f_pos = (uint64_t)(base + off);
	ret = base + off;
out:
	pthread_mutex_unlock(&ff->f.f_lock);
	fd_put(ff);
	return ret;
}

int udx_ftruncate(struct udx_fs *fs, int fd, off_t size)
{
	struct fd_file *ff = fd_get(fs, fd);
	int ret;

	if (ff == NULL)
		return -EBADF;
	if (size < 0)
		ret = udx_err(-EINVAL, "a negative size");
	else if (!fd_writable(ff))
		ret = udx_err(-EINVAL, "file descriptor %d is not open for writing", fd);
	else
		ret = udx_itruncate(ff->f.f_ip, (uint64_t)size);
	fd_put(ff);
	return ret;
}

int udx_fallocate(struct udx_fs *fs, int fd, int mode, off_t off, off_t len)
{
	struct fd_file *ff = fd_get(fs, fd);
	int ret;

	if (ff == NULL)
		return -EBADF;
	if (off < 0 || len <= 0)
		ret = udx_err(-EINVAL, "a negative offset or a length that is not positive");
	else if (!fd_writable(ff))
		ret = udx_err(-EBADF, "file descriptor %d is not open for writing", fd);
	else
		ret = udx_ifallocate(ff->f.f_ip, mode, (uint64_t)off, (uint64_t)len);
	fd_put(ff);
	return ret;
}

int udx_fsync(struct udx_fs *fs, int fd)
{
	struct fd_file *ff = fd_get(fs, fd);
	int ret;

	if (ff == NULL)
		return -EBADF;
	ret = udx_ifsync(ff->f.f_ip, false);
	fd_put(ff);
	return ret;
}

int udx_fstat(struct udx_fs *fs, int fd, struct stat *st)
{
	struct fd_file *ff = fd_get(fs, fd);
	int ret;

	if (ff == NULL)
		return -EBADF;
	ret = udx_igetattr(ff->f.f_ip, st);
	fd_put(ff);
	return ret;
}

/* ---- path operations ------------------------------------------------------ */

static int stat_path(struct udx_fs *fs, const char *path, struct stat *st, bool follow)
{
	struct udx_inode *ip;
	int ret = udx_resolve(fs, path, follow, &ip);

	if (ret)
		return ret;
	ret = udx_igetattr(ip, st);
	udx_iput(ip);
	return ret;
}

int udx_stat(struct udx_fs *fs, const char *path, struct stat *st)
{
	return stat_path(fs, path, st, true);
}

int udx_lstat(struct udx_fs *fs, const char *path, struct stat *st)
{
	return stat_path(fs, path, st, false);
}

static int create_path(struct udx_fs *fs, const char *path, mode_t mode, const char *target)
{
	char name[UDX_NAME_MAX + 1];
	struct udx_inode *dir, *ip;
	bool slash;
	int ret;

	ret = resolve_parent(fs, path, &dir, name, &slash);
	if (ret)
		return ret;
	if (name[0] == '\0') {
		udx_iput(dir);
		return udx_err(-EEXIST, "'/' exists");
	}
	if (slash && !S_ISDIR(mode)) {
		udx_iput(dir);
		return udx_err(-ENOENT, "'%s' names a directory", path);
	}
	ret = udx_icreate(dir, name, mode, READ_ONCE(fs->fs_uid), READ_ONCE(fs->fs_gid), 0,
			  target, &ip);
	udx_iput(dir);
	if (ret == 0)
		udx_iput(ip);
	return ret;
}

int udx_mkdir(struct udx_fs *fs, const char *path, mode_t mode)
{
	return create_path(fs, path, S_IFDIR | (mode & 07777), NULL);
}

int udx_symlink(struct udx_fs *fs, const char *target, const char *path)
{
	if (target == NULL)
		return udx_err(-EFAULT, "a NULL target");
	return create_path(fs, path, S_IFLNK | 0777, target);
}

static int remove_path(struct udx_fs *fs, const char *path, bool dir_wanted)
{
	char name[UDX_NAME_MAX + 1];
	struct udx_inode *dir;
	bool slash;
	int ret;

	ret = resolve_parent(fs, path, &dir, name, &slash);
	if (ret)
		return ret;
	if (name[0] == '\0')
		ret = dir_wanted ? udx_err(-EBUSY, "cannot remove the root") :
				   udx_err(-EISDIR, "'/' is a directory");
	else if (dir_wanted)
		ret = udx_irmdir(dir, name);
	else if (slash)
		ret = udx_err(-ENOTDIR, "'%s' ends in '/'", path);
	else
		ret = udx_iunlink(dir, name);
	udx_iput(dir);
	return ret;
}

int udx_rmdir(struct udx_fs *fs, const char *path)
{
	return remove_path(fs, path, true);
}

int udx_unlink(struct udx_fs *fs, const char *path)
{
	return remove_path(fs, path, false);
}

int udx_rename(struct udx_fs *fs, const char *from, const char *to, unsigned flags)
{
	char oname[UDX_NAME_MAX + 1], nname[UDX_NAME_MAX + 1];
	struct udx_inode *odir, *ndir;
	bool s1, s2;
	int ret;

	ret = resolve_parent(fs, from, &odir, oname, &s1);
	if (ret)
		return ret;
	ret = resolve_parent(fs, to, &ndir, nname, &s2);
	if (ret) {
		udx_iput(odir);
		return ret;
	}
	if (oname[0] == '\0' || nname[0] == '\0')
		ret = udx_err(-EBUSY, "cannot rename the root");
	else
		ret = udx_irename(odir, oname, ndir, nname, flags);
	udx_iput(odir);
	udx_iput(ndir);
	return ret;
}

int udx_link(struct udx_fs *fs, const char *from, const char *to)
{
	char name[UDX_NAME_MAX + 1];
	struct udx_inode *ip, *dir;
	bool slash;
	int ret;

	ret = udx_resolve(fs, from, false, &ip);
	if (ret)
		return ret;
	ret = resolve_parent(fs, to, &dir, name, &slash);
	if (ret) {
		udx_iput(ip);
		return ret;
	}
	if (name[0] == '\0')
		ret = udx_err(-EEXIST, "'/' exists");
	else
		ret = udx_ilink(ip, dir, name);
	udx_iput(dir);
	udx_iput(ip);
	return ret;
}

ssize_t udx_readlink(struct udx_fs *fs, const char *path, char *buf, size_t size)
{
	struct udx_inode *ip;
	ssize_t ret = udx_resolve(fs, path, false, &ip);

	if (ret)
		return ret;
	ret = udx_ireadlink(ip, buf, size);
	udx_iput(ip);
	return ret < 0 ? ret : (ssize_t)MIN((size_t)ret, size);
}

static int setattr_path(struct udx_fs *fs, const char *path, const struct stat *st,
			unsigned which, bool follow)
{
	struct udx_inode *ip;
	int ret = udx_resolve(fs, path, follow, &ip);

	if (ret)
		return ret;
	ret = udx_isetattr(ip, st, which);
	udx_iput(ip);
	return ret;
}

int udx_truncate(struct udx_fs *fs, const char *path, off_t size)
{
	struct stat st = { .st_size = size };

	if (size < 0)
		return udx_err(-EINVAL, "a negative size");
	return setattr_path(fs, path, &st, UDX_SET_SIZE, true);
}

int udx_chmod(struct udx_fs *fs, const char *path, mode_t mode)
{
	struct stat st = { .st_mode = mode };

	return setattr_path(fs, path, &st, UDX_SET_MODE, true);
}

int udx_chown(struct udx_fs *fs, const char *path, uid_t uid, gid_t gid)
{
	struct stat st = { .st_uid = uid, .st_gid = gid };
	unsigned which = 0;

	if (uid != (uid_t)-1)
		which |= UDX_SET_UID;
	if (gid != (gid_t)-1)
		which |= UDX_SET_GID;
	return setattr_path(fs, path, &st, which, true);
}

int udx_utimens(struct udx_fs *fs, const char *path, const struct timespec times[2])
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	if (times) {
		st.st_atim = times[0];
		st.st_mtim = times[1];
	} else {
		st.st_atim.tv_nsec = UTIME_NOW;
		st.st_mtim.tv_nsec = UTIME_NOW;
	}
	return setattr_path(fs, path, &st, UDX_SET_ATIME | UDX_SET_MTIME, true);
}

/* ---- directory streams --------------------------------------------------- */

#define DIR_BATCH 64

struct dir_ent {
	char name[UDX_NAME_MAX + 1];
	uint64_t ino, next;
	unsigned type;
};

struct udx_dir {
	struct udx_inode *d_ip;
	uint64_t d_cookie;              /* where the next batch starts */
	uint64_t d_bstart;              /* where the current batch started */
	struct dir_ent d_batch[DIR_BATCH];
	int d_n, d_i;
	bool d_eof;
	struct dirent d_ent;
};

int udx_opendir(struct udx_fs *fs, const char *path, struct udx_dir **out)
{
	struct udx_inode *ip;
	struct udx_dir *d;
	int ret = udx_resolve(fs, path, true, &ip);

	if (ret)
		return ret;
	if (!IS_DIR(ip)) {
		udx_iput(ip);
		return udx_err(-ENOTDIR, "'%s' is not a directory", path);
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		udx_iput(ip);
		return udx_err(-ENOMEM, "out of memory");
	}
	d->d_ip = ip;
	*out = d;
	return 0;
}

static int batch_fill(void *arg, const char *name, size_t len, uint64_t ino, unsigned type,
		      uint64_t next)
{
	struct udx_dir *d = arg;
	struct dir_ent *e;

	if (d->d_n == DIR_BATCH)
		return 1;
	e = &d->d_batch[d->d_n++];
	memcpy(e->name, name, len);
	e->name[len] = '\0';
	e->ino = ino;
	e->type = type;
	e->next = next;
	return 0;
}

struct dirent *udx_readdir(struct udx_dir *d)
{
	struct dir_ent *e;

	if (d->d_i == d->d_n) {
		if (d->d_eof)
			return NULL;
		d->d_n = d->d_i = 0;
		d->d_bstart = d->d_cookie;
		ilock_shared(d->d_ip);
		if (dir_iterate(d->d_ip, d->d_cookie, batch_fill, d) != 0) {
			iunlock(d->d_ip);
			return NULL;
		}
		iunlock(d->d_ip);
		if (d->d_n < DIR_BATCH)
			d->d_eof = true;
		if (d->d_n == 0)
			return NULL;
		d->d_cookie = d->d_batch[d->d_n - 1].next;
	}
	e = &d->d_batch[d->d_i++];
	memset(&d->d_ent, 0, sizeof(d->d_ent));
	d->d_ent.d_ino = e->ino;
	d->d_ent.d_off = (off_t)e->next;
	d->d_ent.d_type = (unsigned char)e->type;
	d->d_ent.d_reclen = sizeof(d->d_ent);
	memcpy(d->d_ent.d_name, e->name, strlen(e->name) + 1);
	return &d->d_ent;
}

long udx_telldir(struct udx_dir *d)
{
	return (long)(d->d_i == 0 ? d->d_bstart : d->d_batch[d->d_i - 1].next);
}

void udx_seekdir(struct udx_dir *d, long cookie)
{
	d->d_cookie = (uint64_t)cookie;
	d->d_bstart = (uint64_t)cookie;
	d->d_n = d->d_i = 0;
	d->d_eof = false;
}

void udx_closedir(struct udx_dir *d)
{
	if (d == NULL)
		return;
	udx_iput(d->d_ip);
	free(d);
}

int udx_ireaddir(struct udx_inode *dir, uint64_t cookie, udx_filldir_t fill, void *arg)
{
	int ret;

	if (!IS_DIR(dir))
		return udx_err(-ENOTDIR, "not a directory");
	ilock_shared(dir);
	/* a removed directory has no entries left, not even . and .. */
	ret = dir->i_d->i_nlink ? dir_iterate(dir, cookie, fill, arg) : 0;
	iunlock(dir);
	return ret;
}
