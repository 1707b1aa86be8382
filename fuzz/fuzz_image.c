/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: mount and fsck corrupted images.
 *
 * The base image is a small, valid file system with files, directories, a
 * symlink, a file big enough for an extent tree and a directory big enough
 * for a multi-level tree, made once.  An input is a list of patches,
 *     [u32 offset][u8 length][length bytes] ...
 * applied to a copy of the base image; offsets below 2^31 land in the
 * metadata area (superblock, journal, inode map and table), the others in
 * the blocks the base image uses for trees and data, so that mutations hit
 * structures rather than empty space.  Then: fsck (check only), fsck
 * --repair, mount, walk the whole tree (stat, readdir, read, readlink),
 * write a little, unmount, fsck.  Every step may fail; none may crash, hang
 * or leak, and errors must carry a message.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <udaxfs.h>

#define DEV_SIZE (16u << 20)

static char *base_image;
static uint64_t meta_end;               /* bytes of metadata area */
static uint32_t *used_blocks;           /* blocks the base image uses */
static size_t nused;

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz setup: %s: %s\n", what, udx_errmsg());
		abort();
	}
}

static void put(struct udx_fs *fs, const char *path, size_t len, char c)
{
	char *buf = malloc(len);
	int fd = udx_open(fs, path, O_CREAT | O_WRONLY, 0644);

	must(fd >= 0 && buf, path);
	memset(buf, c, len);
	must(udx_pwrite(fs, fd, buf, len, 0) == (ssize_t)len, path);
	udx_close(fs, fd);
	free(buf);
}

static void make_base(void)
{
	struct udx_mkfs_opts mo = { .ninodes = 2048, .jlanes = 2, .jlane_size = 64 << 10 };
	struct udx_fs_info info;
	struct udx_dev *dev;
	struct udx_fs *fs;
	char name[64];
	uint64_t b;
	int i, fd;

	must(udx_dev_open("anon:16M", NULL, &dev) == 0, "device");
	must(udx_mkfs(dev, &mo) == 0, "mkfs");
	must(udx_mount(dev, NULL, &fs) == 0, "mount");
	must(udx_mkdir(fs, "/d", 0755) == 0, "mkdir");
	must(udx_mkdir(fs, "/d/e", 0700) == 0, "mkdir");
	put(fs, "/small", 100, 's');
	put(fs, "/d/e/two", 9000, 't');
	must(udx_symlink(fs, "/d/e/two", "/link") == 0, "symlink");
	/* a fragmented file: its extents go to a tree */
	fd = udx_open(fs, "/frag", O_CREAT | O_RDWR, 0644);
	for (i = 0; i < 40; i++)
		must(udx_pwrite(fs, fd, "x", 1, (off_t)i * 3 * 4096) == 1, "frag");
	udx_close(fs, fd);
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "/d/entry-with-a-longish-name-%d", i);
		put(fs, name, (size_t)(i % 3), 'n');
	}
	must(udx_unmount(fs) == 0, "unmount");
	must(udx_fs_info(dev, NULL, &info) == 0, "info");
	meta_end = info.data_start * 4096;
	base_image = malloc(DEV_SIZE);
	memcpy(base_image, udx_dev_addr(dev), DEV_SIZE);
	/* blocks in use, from the checkpoint bitmap */
	used_blocks = malloc(sizeof(uint32_t) * (DEV_SIZE / 4096));
	{
		const struct udx_dsuper *sb = (const struct udx_dsuper *)base_image;
		const uint8_t *bm = (const uint8_t *)base_image + sb->s_bmap_start * 4096;

		for (b = 0; b < sb->s_nblocks - 1 - sb->s_data_start; b++)
			if (bm[b / 8] & (1u << (b % 8)))
				used_blocks[nused++] = (uint32_t)(sb->s_data_start + b);
	}
	udx_dev_close(dev);
}

static void walk(struct udx_fs *fs, const char *path, int depth)
{
	struct udx_dir *d;
	struct dirent *de;
	char sub[1024], buf[4096];
	struct stat st;

	if (depth > 8 || udx_opendir(fs, path, &d) != 0)
		return;
	while ((de = udx_readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", strcmp(path, "/") ? path : "", de->d_name);
		if (udx_lstat(fs, sub, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			walk(fs, sub, depth + 1);
		} else if (S_ISLNK(st.st_mode)) {
			udx_readlink(fs, sub, buf, sizeof(buf));
		} else if (S_ISREG(st.st_mode)) {
			int fd = udx_open(fs, sub, O_RDONLY, 0);

			if (fd >= 0) {
				off_t off;

				for (off = 0; off < 256 * 1024; off += sizeof(buf))
					if (udx_pread(fs, fd, buf, sizeof(buf), off) <= 0)
						break;
				udx_close(fs, fd);
			}
		}
	}
	udx_closedir(d);
}

static void check_msg(int ret)
{
	if (ret < 0 && udx_errmsg()[0] == '\0') {
		fprintf(stderr, "an error (%d) without a message\n", ret);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct udx_fsck_opts fo = { 0 };
	struct udx_fsck_result res;
	struct udx_dev *dev;
	struct udx_fs *fs;
	char *img;
	size_t i = 0;
	int ret;

	if (base_image == NULL)
		make_base();
	if (udx_dev_open("anon:16M", NULL, &dev) != 0)
		abort();
	img = udx_dev_addr(dev);
	memcpy(img, base_image, DEV_SIZE);
	while (i + 5 <= size) {
		uint32_t off;
		uint8_t len;

		memcpy(&off, data + i, 4);
		len = data[i + 4];
		i += 5;
		if (len > size - i)
			len = (uint8_t)(size - i);
		if (off < (1u << 31))
			off %= (uint32_t)meta_end;
		else
			off = used_blocks[(off & 0x7fffffff) / 4096 % nused] * 4096 + off % 4096;
		if (off + len > DEV_SIZE)
			len = (uint8_t)(DEV_SIZE - off);
		memcpy(img + off, data + i, len);
		i += len;
	}
	udx_errclear();
	ret = udx_fsck(dev, &fo, &res);
	check_msg(ret);
	fo.repair = true;
	ret = udx_fsck(dev, &fo, &res);
	check_msg(ret);
	ret = udx_mount(dev, NULL, &fs);
	check_msg(ret);
	if (ret == 0) {
		int fd;

		walk(fs, "/", 0);
		fd = udx_open(fs, "/new", O_CREAT | O_RDWR, 0644);
		if (fd >= 0) {
			udx_pwrite(fs, fd, "fuzz", 4, 5000);
			udx_close(fs, fd);
		}
		udx_rename(fs, "/small", "/d/small", 0);
		udx_unlink(fs, "/d/e/two");
		if (udx_unmount(fs) != 0)
			abort();                /* nothing is open: unmount must work */
		udx_fsck(dev, NULL, &res);
	}
	udx_dev_close(dev);
	return 0;
}
