/* SPDX-License-Identifier: MIT */
/*
 * The file system through its POSIX interface: every operation, its errors,
 * and what survives a remount.  Each test starts on a fresh file system and
 * ends with an unmount and an fsck that must find nothing wrong.
 */
#include <fcntl.h>
#include <linux/falloc.h>

#include "testutil.h"

#define MiB (1ull << 20)

struct fx {
	struct udx_dev *dev;
	struct udx_fs *fs;
};

static int fsck_problems;

static void fsck_report(void *arg, const char *what)
{
	fprintf(stderr, "fsck: %s\n", what);
	fsck_problems++;
}

static void fx_mount(struct fx *f)
{
	int ret = udx_mount(f->dev, NULL, &f->fs);

	if (ret)
		fprintf(stderr, "mount: %s\n", udx_errmsg());
	assert_int_equal(ret, 0);
}

static void fx_unmount(struct fx *f)
{
	int ret = udx_unmount(f->fs);

	if (ret)
		fprintf(stderr, "unmount: %s\n", udx_errmsg());
	assert_int_equal(ret, 0);
	f->fs = NULL;
}

static void fx_fsck_clean(struct fx *f)
{
	struct udx_fsck_opts o = { .report = fsck_report };
	struct udx_fsck_result r;

	fsck_problems = 0;
	assert_int_equal(udx_fsck(f->dev, &o, &r), 0);
	assert_int_equal(fsck_problems, 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->dev = tu_anon("anon:64M");
	assert_int_equal(udx_mkfs(f->dev, NULL), 0);
	fx_mount(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->fs)
		fx_unmount(f);
	fx_fsck_clean(f);
	udx_dev_close(f->dev);
	free(f);
	return 0;
}

static void remount(struct fx *f)
{
	fx_unmount(f);
	fx_fsck_clean(f);
	fx_mount(f);
}

static void put_file(struct udx_fs *fs, const char *path, const char *text)
{
	int fd = udx_open(fs, path, O_CREAT | O_WRONLY | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(udx_write(fs, fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(udx_close(fs, fd), 0);
}

static void expect_file(struct udx_fs *fs, const char *path, const char *text)
{
	char buf[4096];
	int fd = udx_open(fs, path, O_RDONLY, 0);
	ssize_t n;

	assert_true(fd >= 0);
	n = udx_read(fs, fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, text);
	assert_int_equal(udx_close(fs, fd), 0);
}

static uint64_t free_blocks(struct udx_fs *fs)
{
	struct statvfs st;

	assert_int_equal(udx_statfs(fs, &st), 0);
	return st.f_bfree;
}

static uint64_t free_inodes(struct udx_fs *fs)
{
	struct statvfs st;

	assert_int_equal(udx_statfs(fs, &st), 0);
	return st.f_ffree;
}

/* ---- format and mount --------------------------------------------------- */

static void test_mkfs_mount_info(void **state)
{
	struct fx *f = *state;
	struct udx_fs_info info;
	struct statvfs st;
	struct stat s;

	assert_int_equal(udx_statfs(f->fs, &st), 0);
	assert_true(st.f_bsize == 4096 && st.f_namemax == 255);
	assert_true(st.f_bfree > 0 && st.f_bfree <= st.f_blocks);
	assert_int_equal(udx_stat(f->fs, "/", &s), 0);
	assert_true(S_ISDIR(s.st_mode) && s.st_nlink == 2 && s.st_ino == UDX_ROOT_INO);
	assert_int_equal(udx_fs_info(f->dev, f->fs, &info), 0);
	assert_false(info.clean);                       /* mounted */
	fx_unmount(f);
	assert_int_equal(udx_fs_info(f->dev, NULL, &info), 0);
	assert_true(info.clean);
	assert_true(info.nblocks == 64 * MiB / 4096);
	assert_true(info.free_blocks == st.f_bfree);
	fx_mount(f);
}

struct prog {
	uint64_t calls, last_done, total;
	bool backwards;
};

static void count_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	struct prog *p = arg;

	assert_string_equal(phase, "mkfs");
	p->backwards |= done < p->last_done;
	p->calls++;
	p->last_done = done;
	p->total = total;
}

/* mkfs tells its progress, in order, up to the whole */
static void test_mkfs_progress(void **state)
{
	struct prog p = { 0 };
	struct udx_mkfs_opts mo = { .progress = count_progress, .progress_arg = &p };
	struct udx_dev *dev;

	assert_int_equal(udx_dev_open("anon:4G", NULL, &dev), 0);
	assert_int_equal(udx_mkfs(dev, &mo), 0);
	assert_true(p.calls >= 1 && !p.backwards);
	assert_true(p.total > 0 && p.last_done == p.total);
	udx_dev_close(dev);
}

static void test_mount_errors(void **state)
{
	struct udx_dev *dev = tu_anon("anon:32M"), *small = tu_anon("anon:8M");
	struct udx_mkfs_opts o = { .label = "x" };
	struct udx_fs *fs;
	char *base = udx_dev_addr(dev);

	assert_int_equal(udx_mount(dev, NULL, &fs), -EINVAL);      /* never formatted */
	assert_non_null(strstr(udx_errmsg(), "not udaxfs"));
	assert_int_equal(udx_mkfs(small, NULL), -ENOSPC);
	assert_non_null(strstr(udx_errmsg(), "too small"));
	o.label = "a label that is far too long for the sixty-three bytes that fit in it";
	assert_int_equal(udx_mkfs(dev, &o), -EINVAL);
	assert_int_equal(udx_mkfs(dev, NULL), 0);
	/* a damaged primary superblock: the backup takes over */
	base[100] ^= 0xff;
	assert_int_equal(udx_mount(dev, NULL, &fs), 0);
	assert_int_equal(udx_unmount(fs), 0);
	/* both damaged: refused with a reason */
	base[udx_dev_size(dev) - 4096 + 100] ^= 0xff;
	base[100] ^= 0xff;
	assert_int_equal(udx_mount(dev, NULL, &fs), -EINVAL);
	assert_non_null(strstr(udx_errmsg(), "checksum"));
	udx_dev_close(dev);
	udx_dev_close(small);
}

/* ---- open, read, write -------------------------------------------------- */

static void test_open_flags(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	char buf[16];
	int fd, fd2;

	assert_int_equal(udx_open(fs, "/nope", O_RDONLY, 0), -ENOENT);
	fd = udx_open(fs, "/a", O_CREAT | O_EXCL | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(udx_open(fs, "/a", O_CREAT | O_EXCL | O_RDWR, 0600), -EEXIST);
	fd2 = udx_open(fs, "/a", O_CREAT | O_RDWR, 0600);       /* exists: just opens */
	assert_true(fd2 >= 0 && fd2 != fd);
	assert_int_equal(udx_write(fs, fd, "hello", 5), 5);
	assert_int_equal(udx_pread(fs, fd2, buf, 16, 0), 5);
	assert_int_equal(udx_close(fs, fd2), 0);
	assert_int_equal(udx_close(fs, fd2), -EBADF);
	assert_int_equal(udx_close(fs, fd), 0);
	assert_int_equal(udx_read(fs, 12345, buf, 1), -EBADF);
	assert_int_equal(udx_write(fs, -1, buf, 1), -EBADF);

	/* O_TRUNC, O_APPEND, access modes */
	fd = udx_open(fs, "/a", O_WRONLY | O_TRUNC, 0);
	assert_int_equal(udx_read(fs, fd, buf, 1), -EBADF);
	assert_int_equal(udx_write(fs, fd, "xy", 2), 2);
	assert_int_equal(udx_close(fs, fd), 0);
	fd = udx_open(fs, "/a", O_WRONLY | O_APPEND, 0);
	assert_int_equal(udx_write(fs, fd, "z", 1), 1);
	assert_int_equal(udx_pwrite(fs, fd, "w", 1, 0), 1);     /* appends, like Linux */
	assert_int_equal(udx_close(fs, fd), 0);
	expect_file(fs, "/a", "xyzw");
	fd = udx_open(fs, "/a", O_RDONLY, 0);
	assert_int_equal(udx_write(fs, fd, "q", 1), -EBADF);
	assert_int_equal(udx_ftruncate(fs, fd, 0), -EINVAL);
	assert_int_equal(udx_close(fs, fd), 0);

	/* directories */
	assert_int_equal(udx_open(fs, "/", O_RDWR, 0), -EISDIR);
	fd = udx_open(fs, "/", O_RDONLY | O_DIRECTORY, 0);
	assert_true(fd >= 0);
	assert_int_equal(udx_read(fs, fd, buf, 1), -EISDIR);
	assert_int_equal(udx_close(fs, fd), 0);
	assert_int_equal(udx_open(fs, "/a", O_RDONLY | O_DIRECTORY, 0), -ENOTDIR);
	assert_int_equal(udx_open(fs, "/a/b", O_RDONLY, 0), -ENOTDIR);
	assert_int_equal(udx_open(fs, "/a/", O_RDONLY, 0), -ENOTDIR);
	assert_int_equal(udx_open(fs, "/new/", O_CREAT | O_RDWR, 0644), -EISDIR);
	assert_int_equal(udx_open(fs, "", O_RDONLY, 0), -ENOENT);
	{
		char longname[300];

		memset(longname, 'n', 299);
		longname[0] = '/';
		longname[299] = '\0';
		assert_int_equal(udx_open(fs, longname, O_CREAT | O_RDWR, 0644), -ENAMETOOLONG);
	}
}

static void test_read_write_holes(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	char *big = malloc(8 * MiB), *back = malloc(8 * MiB);
	uint64_t seed = 42;
	struct stat st;
	size_t i;
	int fd;

	for (i = 0; i < 8 * MiB; i++)
		big[i] = (char)tu_rand(&seed);
	fd = udx_open(fs, "/big", O_CREAT | O_RDWR, 0644);
	assert_int_equal(udx_pwrite(fs, fd, big, 8 * MiB, 3 * MiB + 123), (ssize_t)(8 * MiB));
	assert_int_equal(udx_fstat(fs, fd, &st), 0);
	assert_true(st.st_size == (off_t)(11 * MiB + 123));
	assert_true(st.st_blocks <= (blkcnt_t)((8 * MiB + 8192) / 512));    /* sparse */
	/* the hole before it reads as zeros */
	assert_int_equal(udx_pread(fs, fd, back, MiB, 0), (ssize_t)MiB);
	for (i = 0; i < MiB; i++)
		assert_int_equal(back[i], 0);
	assert_int_equal(udx_pread(fs, fd, back, 8 * MiB, 3 * MiB + 123), (ssize_t)(8 * MiB));
	assert_memory_equal(back, big, 8 * MiB);
	/* overwrite in place, across block boundaries */
	assert_int_equal(udx_pwrite(fs, fd, "ABCDEFGH", 8, 3 * MiB + 4090), 8);
	assert_int_equal(udx_pread(fs, fd, back, 16, 3 * MiB + 4086), 16);
	assert_memory_equal(back + 4, "ABCDEFGH", 8);
	assert_memory_equal(back, big + 4086 - 123, 4);
	/* reading at and beyond the end */
	assert_int_equal(udx_pread(fs, fd, back, 100, 11 * MiB + 123), 0);
	assert_int_equal(udx_pread(fs, fd, back, 100, 11 * MiB + 100), 23);
	assert_int_equal(udx_pwrite(fs, fd, "x", 1, -1), -EINVAL);
	assert_int_equal(udx_pwrite(fs, fd, "x", 1, (off_t)(1ull << 50)), -EFBIG);
	assert_int_equal(udx_close(fs, fd), 0);
	remount(f);
	fs = f->fs;
	fd = udx_open(fs, "/big", O_RDONLY, 0);
	assert_int_equal(udx_pread(fs, fd, back, 8 * MiB, 3 * MiB + 123), (ssize_t)(8 * MiB));
	memcpy(big + (4090 - 123), "ABCDEFGH", 8);      /* the overwrite above */
	assert_memory_equal(back, big, 8 * MiB);
	assert_int_equal(udx_close(fs, fd), 0);
	free(big);
	free(back);
}

static void test_seek(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	int fd = udx_open(fs, "/s", O_CREAT | O_RDWR, 0644);
	char c;

	assert_int_equal(udx_pwrite(fs, fd, "d", 1, 1 * MiB), 1);
	assert_true(udx_lseek(fs, fd, 0, SEEK_END) == (off_t)(MiB + 1));
	assert_true(udx_lseek(fs, fd, -1, SEEK_CUR) == (off_t)MiB);
	assert_int_equal(udx_read(fs, fd, &c, 1), 1);
	assert_int_equal(c, 'd');
	assert_true(udx_lseek(fs, fd, 0, SEEK_DATA) == (off_t)MiB);
	assert_true(udx_lseek(fs, fd, 0, SEEK_HOLE) == 0);
	assert_true(udx_lseek(fs, fd, MiB, SEEK_HOLE) == (off_t)(MiB + 1));
	assert_true(udx_lseek(fs, fd, 2 * MiB, SEEK_DATA) == -ENXIO);
	assert_true(udx_lseek(fs, fd, -5, SEEK_SET) == -EINVAL);
	assert_true(udx_lseek(fs, fd, 0, 99) == -EINVAL);
	assert_int_equal(udx_close(fs, fd), 0);
}

/* ---- truncate and fallocate ---------------------------------------------- */

static void test_truncate(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	char buf[8192], ones[8192];
	uint64_t before;
	struct stat st;
	int fd, i;

	memset(ones, 1, sizeof(ones));
	fd = udx_open(fs, "/t", O_CREAT | O_RDWR, 0644);
	before = free_blocks(fs);       /* the directory's tree exists now */
	for (i = 0; i < 256; i++)
		assert_int_equal(udx_write(fs, fd, ones, sizeof(ones)), (ssize_t)sizeof(ones));
	assert_true(free_blocks(fs) < before);
	/* shrink into the middle of a block, grow back: the tail reads zero */
	assert_int_equal(udx_ftruncate(fs, fd, 5000), 0);
	assert_int_equal(udx_ftruncate(fs, fd, 9000), 0);
	assert_int_equal(udx_pread(fs, fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, ones, 5000);
	for (i = 5000; i < 8192; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(udx_fstat(fs, fd, &st), 0);
	assert_true(st.st_size == 9000);
	assert_int_equal(udx_ftruncate(fs, fd, 0), 0);
	assert_true(free_blocks(fs) == before);         /* every block came back */
	assert_int_equal(udx_ftruncate(fs, fd, -1), -EINVAL);
	assert_int_equal(udx_close(fs, fd), 0);
	assert_int_equal(udx_truncate(fs, "/t", 123456), 0);
	assert_int_equal(udx_stat(fs, "/t", &st), 0);
	assert_true(st.st_size == 123456 && st.st_blocks == 0);
	assert_int_equal(udx_mkdir(fs, "/d", 0755), 0);
	assert_int_equal(udx_truncate(fs, "/d", 0), -EISDIR);
}

static void test_fallocate(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	char buf[65536], ff[65536];
	uint64_t before;
	struct stat st;
	int fd, i;

	memset(ff, 0xff, sizeof(ff));
	fd = udx_open(fs, "/fa", O_CREAT | O_RDWR, 0644);
	before = free_blocks(fs);
	assert_int_equal(udx_fallocate(fs, fd, 0, 0, 1 * MiB), 0);
	assert_int_equal(udx_fstat(fs, fd, &st), 0);
	assert_true(st.st_size == (off_t)MiB && st.st_blocks == (blkcnt_t)(MiB / 512));
	assert_int_equal(udx_pread(fs, fd, buf, sizeof(buf), 4096), (ssize_t)sizeof(buf));
	for (i = 0; i < (int)sizeof(buf); i++)
		assert_int_equal(buf[i], 0);                    /* unwritten reads zero */
	assert_int_equal(udx_fallocate(fs, fd, FALLOC_FL_KEEP_SIZE, MiB, MiB), 0);
	assert_int_equal(udx_fstat(fs, fd, &st), 0);
	assert_true(st.st_size == (off_t)MiB && st.st_blocks == (blkcnt_t)(2 * MiB / 512));
	assert_true(before - free_blocks(fs) == 512);
	/* write, then punch a hole in the middle (unaligned edges) */
	assert_int_equal(udx_pwrite(fs, fd, ff, sizeof(ff), 0), (ssize_t)sizeof(ff));
	assert_int_equal(udx_fallocate(fs, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				       1000, 20000), 0);
	assert_int_equal(udx_pread(fs, fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (i = 0; i < (int)sizeof(buf); i++)
		assert_int_equal((unsigned char)buf[i], i >= 1000 && i < 21000 ? 0 : 0xff);
	assert_int_equal(udx_fstat(fs, fd, &st), 0);
	assert_true(st.st_size == (off_t)MiB);
	assert_true(st.st_blocks == (blkcnt_t)((2 * MiB - 4 * 4096) / 512));   /* 4 whole blocks gone */
	/* errors */
	assert_int_equal(udx_fallocate(fs, fd, FALLOC_FL_PUNCH_HOLE, 0, 4096), -EINVAL);
	assert_int_equal(udx_fallocate(fs, fd, 0x40, 0, 4096), -EOPNOTSUPP);
	assert_int_equal(udx_fallocate(fs, fd, 0, 0, 0), -EINVAL);
	assert_int_equal(udx_fallocate(fs, fd, 0, 0, 1ll << 62), -EFBIG);
	assert_int_equal(udx_fallocate(fs, fd, 0, 0, 200 * MiB), -ENOSPC);
	assert_int_equal(udx_ftruncate(fs, fd, 0), 0);
	assert_true(free_blocks(fs) == before);
	assert_int_equal(udx_close(fs, fd), 0);
}

/* ---- directories ----------------------------------------------------------- */

static void test_mkdir_rmdir(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	struct stat st;

	assert_int_equal(udx_mkdir(fs, "/a", 0755), 0);
	assert_int_equal(udx_mkdir(fs, "/a/b", 0700), 0);
	assert_int_equal(udx_mkdir(fs, "/a/b/c/", 0700), 0);    /* trailing slash is fine */
	assert_int_equal(udx_mkdir(fs, "/a", 0755), -EEXIST);
	assert_int_equal(udx_mkdir(fs, "/", 0755), -EEXIST);
	assert_int_equal(udx_mkdir(fs, "/x/y", 0755), -ENOENT);
	assert_int_equal(udx_stat(fs, "/a", &st), 0);
	assert_true(st.st_nlink == 3);
	assert_int_equal(udx_stat(fs, "/", &st), 0);
	assert_true(st.st_nlink == 3);
	assert_int_equal(udx_stat(fs, "/a/b/../b/./c", &st), 0);
	assert_true(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
	assert_int_equal(udx_rmdir(fs, "/a"), -ENOTEMPTY);
	assert_int_equal(udx_rmdir(fs, "/"), -EBUSY);
	assert_int_equal(udx_rmdir(fs, "/a/b/c/."), -EINVAL);
	assert_int_equal(udx_rmdir(fs, "/a/b/.."), -ENOTEMPTY);
	put_file(fs, "/a/file", "x");
	assert_int_equal(udx_rmdir(fs, "/a/file"), -ENOTDIR);
	assert_int_equal(udx_unlink(fs, "/a/b"), -EISDIR);
	assert_int_equal(udx_rmdir(fs, "/a/b/c"), 0);
	assert_int_equal(udx_rmdir(fs, "/a/b/c"), -ENOENT);
	assert_int_equal(udx_rmdir(fs, "/a/b"), 0);
	assert_int_equal(udx_stat(fs, "/a", &st), 0);
	assert_true(st.st_nlink == 2);
	assert_int_equal(udx_unlink(fs, "/a/file"), 0);
	assert_int_equal(udx_rmdir(fs, "/a"), 0);
	assert_int_equal(udx_stat(fs, "/", &st), 0);
	assert_true(st.st_nlink == 2);
}

struct seen {
	char names[2000][UDX_NAME_MAX + 1];
	int n;
};

static void read_all(struct udx_fs *fs, const char *path, struct seen *s)
{
	struct udx_dir *d;
	struct dirent *de;

	s->n = 0;
	assert_int_equal(udx_opendir(fs, path, &d), 0);
	while ((de = udx_readdir(d)) != NULL)
		if (s->n < 2000)
			snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", de->d_name);
	udx_closedir(d);
}

static int count_name(const struct seen *s, const char *name)
{
	int i, n = 0;

	for (i = 0; i < s->n; i++)
		n += strcmp(s->names[i], name) == 0;
	return n;
}

static void test_readdir_stable(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	static struct seen s;
	struct udx_dir *d;
	struct dirent *de;
	char name[32];
	int i, got = 0, stayed[1000] = { 0 };
	long pos = -1;

	assert_int_equal(udx_mkdir(fs, "/d", 0755), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "/d/f%d", i);
		put_file(fs, name, "");
	}
	read_all(fs, "/d", &s);
	assert_int_equal(s.n, 1002);
	assert_int_equal(count_name(&s, "."), 1);
	assert_int_equal(count_name(&s, ".."), 1);
	/* read half, change the directory, read on: what stayed comes once */
	assert_int_equal(udx_opendir(fs, "/d", &d), 0);
	while (got < 500 && (de = udx_readdir(d)) != NULL) {
		if (de->d_name[0] == 'f')
			stayed[atoi(de->d_name + 1)]++;
		got++;
		if (got == 250)
			pos = udx_telldir(d);
	}
	for (i = 0; i < 1000; i += 3) {                 /* remove a third */
		snprintf(name, sizeof(name), "/d/f%d", i);
		assert_int_equal(udx_unlink(fs, name), 0);
	}
	for (i = 0; i < 500; i++) {                     /* add new ones */
		snprintf(name, sizeof(name), "/d/g%d", i);
		put_file(fs, name, "");
	}
	while ((de = udx_readdir(d)) != NULL)
		if (de->d_name[0] == 'f')
			stayed[atoi(de->d_name + 1)]++;
	for (i = 0; i < 1000; i++)
		if (i % 3 != 0)
			assert_int_equal(stayed[i], 1);  /* present throughout: exactly once */
		else
			assert_true(stayed[i] <= 1);
	/* seekdir back to a told position replays from there */
	udx_seekdir(d, pos);
	assert_non_null(udx_readdir(d));
	udx_closedir(d);
	read_all(fs, "/d", &s);
	assert_int_equal(s.n, 2 + 1000 - 334 + 500);
	assert_int_equal(udx_opendir(fs, "/d/f1", &d), -ENOTDIR);
}

/* ---- links, symlinks, unlink ------------------------------------------------ */

static void test_links(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	struct stat a, b;

	put_file(fs, "/orig", "data");
	assert_int_equal(udx_link(fs, "/orig", "/hard"), 0);
	assert_int_equal(udx_stat(fs, "/orig", &a), 0);
	assert_int_equal(udx_stat(fs, "/hard", &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_nlink == 2);
	assert_int_equal(udx_link(fs, "/orig", "/hard"), -EEXIST);
	assert_int_equal(udx_link(fs, "/missing", "/x"), -ENOENT);
	assert_int_equal(udx_mkdir(fs, "/dir", 0755), 0);
	assert_int_equal(udx_link(fs, "/dir", "/dir2"), -EPERM);
	assert_int_equal(udx_unlink(fs, "/orig"), 0);
	assert_int_equal(udx_stat(fs, "/orig", &a), -ENOENT);
	expect_file(fs, "/hard", "data");
	assert_int_equal(udx_stat(fs, "/hard", &b), 0);
	assert_true(b.st_nlink == 1);
	assert_int_equal(udx_unlink(fs, "/hard"), 0);
	assert_int_equal(udx_unlink(fs, "/hard"), -ENOENT);
}

/* A set-group-ID directory passes its group on, and its bit to
 * subdirectories; generations tell a reused inode number apart. */
static void test_setgid_and_generation(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	struct udx_inode *dir, *a, *b;
	struct stat st;
	uint64_t ino;
	uint32_t gen;

	assert_int_equal(udx_mkdir(fs, "/shared", 0775), 0);
	assert_int_equal(udx_chown(fs, "/shared", 0, 4242), 0);
	assert_int_equal(udx_chmod(fs, "/shared", 02775), 0);
	assert_int_equal(udx_resolve(fs, "/shared", true, &dir), 0);
	assert_int_equal(udx_icreate(dir, "file", S_IFREG | 0644, 1000, 1000, 0, NULL, &a), 0);
	assert_int_equal(udx_icreate(dir, "sub", S_IFDIR | 0755, 1000, 1000, 0, NULL, &b), 0);
	assert_int_equal(udx_igetattr(a, &st), 0);
	assert_true(st.st_gid == 4242 && st.st_uid == 1000 && !(st.st_mode & S_ISGID));
	assert_int_equal(udx_igetattr(b, &st), 0);
	assert_true(st.st_gid == 4242 && (st.st_mode & S_ISGID));
	udx_iput(b);
	assert_int_equal(udx_chmod(fs, "/shared", 0775), 0);
	assert_int_equal(udx_icreate(dir, "plain", S_IFREG | 0644, 1000, 1000, 0, NULL, &b), 0);
	assert_int_equal(udx_igetattr(b, &st), 0);
	assert_true(st.st_gid == 1000);
	udx_iput(b);

	ino = udx_iino(a);
	gen = udx_igeneration(a);
	udx_iput(a);
	assert_int_equal(udx_iunlink(dir, "file"), 0);
	/* the freed number comes back (the lowest free one), newer */
	assert_int_equal(udx_icreate(dir, "again", S_IFREG | 0644, 0, 0, 0, NULL, &a), 0);
	assert_true(udx_iino(a) == ino);
	assert_true(udx_igeneration(a) != gen);
	udx_iput(a);
	udx_iput(dir);
}

static void test_symlinks(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	char target[3000], buf[4096];
	struct stat st;
	int fd;

	put_file(fs, "/real", "through the link");
	assert_int_equal(udx_symlink(fs, "real", "/ln"), 0);
	assert_int_equal(udx_readlink(fs, "/ln", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "real", 4);
	expect_file(fs, "/ln", "through the link");
	assert_int_equal(udx_lstat(fs, "/ln", &st), 0);
	assert_true(S_ISLNK(st.st_mode) && st.st_size == 4);
	assert_int_equal(udx_stat(fs, "/ln", &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* a long target lives in a block */
	memset(target, 'a', sizeof(target) - 1);
	target[sizeof(target) - 1] = '\0';
	assert_int_equal(udx_symlink(fs, target, "/long"), 0);
	assert_int_equal(udx_readlink(fs, "/long", buf, sizeof(buf)), (ssize_t)strlen(target));
	assert_memory_equal(buf, target, strlen(target));
	/* directories through links, loops, dangling */
	assert_int_equal(udx_mkdir(fs, "/d", 0755), 0);
	assert_int_equal(udx_symlink(fs, "/d", "/dl"), 0);
	put_file(fs, "/dl/inside", "in");
	expect_file(fs, "/d/inside", "in");
	assert_int_equal(udx_symlink(fs, "/loop2", "/loop1"), 0);
	assert_int_equal(udx_symlink(fs, "/loop1", "/loop2"), 0);
	assert_int_equal(udx_stat(fs, "/loop1", &st), -ELOOP);
	assert_int_equal(udx_symlink(fs, "/nowhere", "/dangling"), 0);
	assert_int_equal(udx_stat(fs, "/dangling", &st), -ENOENT);
	assert_int_equal(udx_lstat(fs, "/dangling", &st), 0);
	assert_int_equal(udx_open(fs, "/ln", O_RDONLY | O_NOFOLLOW, 0), -ELOOP);
	fd = udx_open(fs, "/dangling", O_CREAT | O_WRONLY, 0644);   /* creates the target */
	assert_true(fd >= 0);
	assert_int_equal(udx_close(fs, fd), 0);
	assert_int_equal(udx_stat(fs, "/nowhere", &st), 0);
	assert_int_equal(udx_readlink(fs, "/real", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(udx_symlink(fs, "", "/empty"), -ENOENT);
	{
		char *huge = malloc(5000);

		memset(huge, 'h', 4999);
		huge[4999] = '\0';
		assert_int_equal(udx_symlink(fs, huge, "/huge"), -ENAMETOOLONG);
		free(huge);
	}
	remount(f);
	assert_int_equal(udx_readlink(f->fs, "/long", buf, sizeof(buf)), (ssize_t)strlen(target));
	assert_memory_equal(buf, target, strlen(target));
}

static void test_unlink_open_file(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	struct udx_fs_stats st;
	uint64_t fb, fi;
	char buf[8];
	int fd;

	put_file(fs, "/keep", "");              /* the root's tree exists from now */
	fb = free_blocks(fs);
	fi = free_inodes(fs);

	fd = udx_open(fs, "/open", O_CREAT | O_RDWR, 0644);
	assert_int_equal(udx_pwrite(fs, fd, "survives", 8, 1 * MiB), 8);
	assert_int_equal(udx_unlink(fs, "/open"), 0);
	assert_int_equal(udx_open(fs, "/open", O_RDONLY, 0), -ENOENT);
	udx_fs_stats(fs, &st);
	assert_true(st.orphans == 1);
	assert_int_equal(udx_pread(fs, fd, buf, 8, 1 * MiB), 8);
	assert_memory_equal(buf, "survives", 8);
	assert_int_equal(udx_pwrite(fs, fd, "STILL OK", 8, 0), 8);
	assert_true(free_blocks(fs) < fb);
	assert_int_equal(udx_unmount(fs), -EBUSY);      /* the open file holds it */
	assert_int_equal(udx_close(fs, fd), 0);
	udx_fs_stats(fs, &st);
	assert_true(st.orphans == 0);
	assert_true(free_blocks(fs) == fb);
	assert_true(free_inodes(fs) == fi);
}

/* A crash while an unlinked file is open: the next mount frees it. */
static void test_orphan_after_crash(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs, *fs2;
	struct udx_dev *copy;
	uint64_t fb, fi;
	int fd;

	put_file(fs, "/keep", "");
	fb = free_blocks(fs);
	fi = free_inodes(fs);
	fd = udx_open(fs, "/orphan", O_CREAT | O_RDWR, 0644);
	assert_int_equal(udx_pwrite(fs, fd, "x", 1, 4 * MiB), 1);
	assert_int_equal(udx_unlink(fs, "/orphan"), 0);
	/* power fails now: the image is what the device holds */
	copy = tu_anon("anon:64M");
	memcpy(udx_dev_addr(copy), udx_dev_addr(f->dev), 64 * MiB);
	assert_int_equal(udx_mount(copy, NULL, &fs2), 0);
	assert_true(free_blocks(fs2) == fb);
	assert_true(free_inodes(fs2) == fi);
	assert_int_equal(udx_unmount(fs2), 0);
	{
		struct fx c = { copy, NULL };

		fx_fsck_clean(&c);
	}
	udx_dev_close(copy);
	assert_int_equal(udx_close(fs, fd), 0);
}

/* ---- rename ---------------------------------------------------------------- */

static void test_rename(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	uint64_t fi;
	struct stat st, st2;

	put_file(fs, "/a", "A");
	put_file(fs, "/b", "B");
	assert_int_equal(udx_mkdir(fs, "/d1", 0755), 0);
	assert_int_equal(udx_mkdir(fs, "/d2", 0755), 0);
	assert_int_equal(udx_mkdir(fs, "/d1/sub", 0755), 0);

	assert_int_equal(udx_rename(fs, "/a", "/a2", 0), 0);           /* same dir */
	expect_file(fs, "/a2", "A");
	fi = free_inodes(fs);
	assert_int_equal(udx_rename(fs, "/a2", "/b", 0), 0);           /* replaces b */
	expect_file(fs, "/b", "A");
	assert_true(free_inodes(fs) == fi + 1);                         /* old b freed */
	assert_int_equal(udx_rename(fs, "/b", "/d2/b", 0), 0);         /* across dirs */
	expect_file(fs, "/d2/b", "A");
	/* directories: parents and link counts follow */
	assert_int_equal(udx_rename(fs, "/d1/sub", "/d2/sub", 0), 0);
	assert_int_equal(udx_stat(fs, "/d1", &st), 0);
	assert_true(st.st_nlink == 2);
	assert_int_equal(udx_stat(fs, "/d2", &st), 0);
	assert_true(st.st_nlink == 3);
	assert_int_equal(udx_stat(fs, "/d2/sub/..", &st2), 0);
	assert_true(st2.st_ino == st.st_ino);
	/* errors */
	assert_int_equal(udx_rename(fs, "/nope", "/x", 0), -ENOENT);
	assert_int_equal(udx_rename(fs, "/d2", "/d2/sub/inner", 0), -EINVAL);
	assert_int_equal(udx_rename(fs, "/d2", "/d2/sub", 0), -EINVAL);    /* into itself */
	assert_int_equal(udx_rename(fs, "/d2/sub", "/d2", 0), -ENOTEMPTY); /* over its parent */
	assert_int_equal(udx_rename(fs, "/d2/b", "/d1", 0), -EISDIR);
	assert_int_equal(udx_rename(fs, "/d1", "/d2/b", 0), -ENOTDIR);
	put_file(fs, "/c", "C");
	assert_int_equal(udx_rename(fs, "/c", "/d2/b", UDX_RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(udx_rename(fs, "/c", "/d2/b", 3), -EINVAL);
	assert_int_equal(udx_rename(fs, "/", "/x", 0), -EBUSY);
	/* a directory over an empty directory */
	assert_int_equal(udx_mkdir(fs, "/empty", 0755), 0);
	assert_int_equal(udx_rename(fs, "/d1", "/empty", 0), 0);
	assert_int_equal(udx_stat(fs, "/d1", &st), -ENOENT);
	/* exchange a file and a directory in different directories */
	assert_int_equal(udx_rename(fs, "/c", "/d2/sub", UDX_RENAME_EXCHANGE), 0);
	assert_int_equal(udx_stat(fs, "/c", &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	expect_file(fs, "/d2/sub", "C");
	assert_int_equal(udx_stat(fs, "/c/..", &st), 0);
	assert_true(st.st_ino == UDX_ROOT_INO);
	assert_int_equal(udx_rename(fs, "/c", "/nothere", UDX_RENAME_EXCHANGE), -ENOENT);
	/* two names of one file: nothing happens */
	assert_int_equal(udx_link(fs, "/d2/b", "/d2/b2"), 0);
	assert_int_equal(udx_rename(fs, "/d2/b", "/d2/b2", 0), 0);
	expect_file(fs, "/d2/b", "A");
	remount(f);
}

/* ---- attributes ------------------------------------------------------------ */

static void test_attributes(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	struct timespec t[2] = { { 1000, 5 }, { 2000, 7 } };
	struct stat st, st2;
	int fd;

	put_file(fs, "/f", "abc");
	assert_int_equal(udx_chmod(fs, "/f", 0600), 0);
	assert_int_equal(udx_chown(fs, "/f", 1234, 5678), 0);
	assert_int_equal(udx_utimens(fs, "/f", t), 0);
	assert_int_equal(udx_stat(fs, "/f", &st), 0);
	assert_true(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600);
	assert_true(st.st_uid == 1234 && st.st_gid == 5678);
	assert_true(st.st_atim.tv_sec == 1000 && st.st_atim.tv_nsec == 5);
	assert_true(st.st_mtim.tv_sec == 2000 && st.st_mtim.tv_nsec == 7);
	assert_true(st.st_size == 3 && st.st_nlink == 1);
	t[0].tv_nsec = UTIME_OMIT;
	t[1].tv_nsec = UTIME_NOW;
	assert_int_equal(udx_utimens(fs, "/f", t), 0);
	assert_int_equal(udx_stat(fs, "/f", &st2), 0);
	assert_true(st2.st_atim.tv_sec == 1000 && st2.st_mtim.tv_sec > 2000);
	assert_int_equal(udx_chown(fs, "/f", (uid_t)-1, 99), 0);
	assert_int_equal(udx_stat(fs, "/f", &st), 0);
	assert_true(st.st_uid == 1234 && st.st_gid == 99);
	/* a write moves mtime; fsync makes times durable */
	fd = udx_open(fs, "/f", O_WRONLY, 0);
	assert_int_equal(udx_pwrite(fs, fd, "z", 1, 0), 1);
	assert_int_equal(udx_fsync(fs, fd), 0);
	assert_int_equal(udx_fstat(fs, fd, &st), 0);
	assert_int_equal(udx_close(fs, fd), 0);
	remount(f);
	assert_int_equal(udx_stat(f->fs, "/f", &st2), 0);
	assert_true(st2.st_mtim.tv_sec == st.st_mtim.tv_sec &&
		    st2.st_mtim.tv_nsec == st.st_mtim.tv_nsec);
	assert_true((st2.st_mode & 07777) == 0600 && st2.st_uid == 1234);
	assert_int_equal(udx_chmod(f->fs, "/nope", 0600), -ENOENT);
}

/* ---- limits, busy, cache ---------------------------------------------------- */

static void test_enospc(void **state)
{
	struct fx *f = *state;
	struct udx_fs *fs = f->fs;
	static char chunk[1 << 20];
	uint64_t before = free_blocks(fs);
	ssize_t n = 0;
	int fd, i;

	memset(chunk, 7, sizeof(chunk));
	fd = udx_open(fs, "/fill", O_CREAT | O_WRONLY, 0644);
	for (i = 0; i < 100 && n >= 0; i++)
		n = udx_write(fs, fd, chunk, sizeof(chunk));
	assert_int_equal(n, -ENOSPC);
	assert_non_null(strstr(udx_errmsg(), "no space"));
	assert_int_equal(udx_close(fs, fd), 0);
	/* the file system still works and nothing is lost */
	assert_int_equal(udx_unlink(fs, "/fill"), 0);
	assert_true(free_blocks(fs) == before);
	put_file(fs, "/after", "ok");
	expect_file(fs, "/after", "ok");
}

static void test_enospc_inodes(void **state)
{
	struct udx_mkfs_opts o = { .ninodes = 20 };
	struct udx_dev *dev = tu_anon("anon:32M");
	struct udx_fs *fs;
	char name[32];
	int i, ret = 0;

	assert_int_equal(udx_mkfs(dev, &o), 0);
	assert_int_equal(udx_mount(dev, NULL, &fs), 0);
	for (i = 0; i < 30 && ret == 0; i++) {
		snprintf(name, sizeof(name), "/f%d", i);
		ret = udx_mkdir(fs, name, 0755);
	}
	assert_int_equal(ret, -ENOSPC);
	assert_int_equal(i, 20);                /* 20 slots, the root took one */
	assert_int_equal(udx_rmdir(fs, "/f0"), 0);
	assert_int_equal(udx_mkdir(fs, "/again", 0755), 0);
	assert_int_equal(udx_unmount(fs), 0);
	udx_dev_close(dev);
}

struct closer {
	struct udx_fs *fs;
	int fd;
};

static void *close_later(void *arg)
{
	struct closer *c = arg;
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	udx_close(c->fs, c->fd);
	return NULL;
}

static void test_unmount_busy(void **state)
{
	struct fx *f = *state;
	struct closer c = { f->fs, -1 };
	struct udx_inode *ip;
	pthread_t th;

	c.fd = udx_open(f->fs, "/busy", O_CREAT | O_RDWR, 0644);
	assert_int_equal(udx_unmount(f->fs), -EBUSY);
	assert_non_null(strstr(udx_errmsg(), "busy"));
	assert_int_equal(udx_unmount_wait(f->fs, 1000000), -ETIMEDOUT);
	pthread_create(&th, NULL, close_later, &c);
	assert_int_equal(udx_unmount_wait(f->fs, -1), 0);       /* after the close */
	pthread_join(th, NULL);
	fx_mount(f);
	/* an inode reference alone (no descriptor) also holds it */
	assert_int_equal(udx_resolve(f->fs, "/busy", true, &ip), 0);
	assert_int_equal(udx_unmount(f->fs), -EBUSY);
	udx_iput(ip);
}

/*
 * Allocation policy: a large file written in pieces smaller than 2 MiB
 * still gets each 2 MiB piece as one 2 MiB aligned run (so one 2 MiB entry
 * maps it), even behind a small file; a small file does not take one.
 */
static void test_large_file_2m_aligned(void **state)
{
	struct fx *f = *state;
	static char buf[MiB];
	struct udx_inode *ip;
	struct udx_iomap map;
	uint64_t at[2];
	int small, fd, i;

	/* two small files: the second does not skip to a new 2 MiB run */
	for (i = 0; i < 2; i++) {
		small = udx_open(f->fs, i ? "/small2" : "/small", O_CREAT | O_RDWR, 0644);
		assert_true(small >= 0);
		assert_int_equal(udx_pwrite(f->fs, small, "x", 1, 0), 1);
		assert_int_equal(udx_fd_inode(f->fs, small, &ip), 0);
		assert_int_equal(udx_iomap_begin(ip, 0, 4096, 0, &map), 0);
		assert_int_equal(map.type, UDX_IOMAP_MAPPED);
		at[i] = map.dev_offset;
		udx_iomap_end(ip, &map);
		udx_iput(ip);
		if (i == 0)
			udx_close(f->fs, small);
	}
	assert_true(at[1] - at[0] < 2 * MiB);

	fd = udx_open(f->fs, "/big", O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	for (i = 0; i < 8; i++)
		assert_int_equal(udx_pwrite(f->fs, fd, buf, MiB, (off_t)i * (off_t)MiB), (ssize_t)MiB);
	assert_int_equal(udx_fd_inode(f->fs, fd, &ip), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(udx_iomap_begin(ip, (uint64_t)i * 2 * MiB, 2 * MiB, 0, &map), 0);
		assert_int_equal(map.type, UDX_IOMAP_MAPPED);
		assert_int_equal(map.dev_offset % (2 * MiB), 0);
		assert_true(map.length >= 2 * MiB);
		udx_iomap_end(ip, &map);
	}
	udx_iput(ip);
	udx_close(f->fs, fd);
	udx_close(f->fs, small);
}

static void test_inode_cache_limit(void **state)
{
	struct fx *f = *state;
	struct udx_mount_opts mo = { .icache_limit = 16 };
	struct udx_fs_stats st;
	struct stat s;
	char name[32];
	int i;

	fx_unmount(f);
	assert_int_equal(udx_mount(f->dev, &mo, &f->fs), 0);
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "/c%d", i);
		put_file(f->fs, name, "x");
	}
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "/c%d", i);
		assert_int_equal(udx_stat(f->fs, name, &s), 0);
	}
	udx_fs_stats(f->fs, &st);
	assert_true(st.inodes_cached <= 16 + 1);
	assert_true(st.inodes_referenced == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_large_file_2m_aligned),
		T(test_mkfs_mount_info),
		cmocka_unit_test(test_mount_errors),
		cmocka_unit_test(test_mkfs_progress),
		T(test_open_flags),
		T(test_read_write_holes),
		T(test_seek),
		T(test_truncate),
		T(test_fallocate),
		T(test_mkdir_rmdir),
		T(test_readdir_stable),
		T(test_links),
		T(test_symlinks),
		T(test_setgid_and_generation),
		T(test_unlink_open_file),
		T(test_orphan_after_crash),
		T(test_rename),
		T(test_attributes),
		T(test_enospc),
		cmocka_unit_test(test_enospc_inodes),
		T(test_unmount_busy),
		T(test_inode_cache_limit),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
