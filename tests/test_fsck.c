/* SPDX-License-Identifier: MIT */
/*
 * fsck on images with one known problem each: it must name the problem in
 * words, repair what it says it repairs, and leave a file system that checks
 * clean and mounts (or, for what it cannot repair, keep saying so).
 */
#include <fcntl.h>

#include "testutil.h"
#include "fs/csum.h"
#include "fs/fs.h"

struct img {
	struct udx_dev *dev;
	char *base;
	struct udx_dsuper *sb;
	uint64_t file_ino, dir_ino, big_ino;
};

static char reports[64][600];
static int nreports;

static void on_report(void *arg, const char *what)
{
	if (nreports < 64)
		snprintf(reports[nreports++], sizeof(reports[0]), "%s", what);
}

static bool reported(const char *words)
{
	int i;

	for (i = 0; i < nreports; i++)
		if (strstr(reports[i], words))
			return true;
	return false;
}

static void dump_reports(void)
{
	int i;

	for (i = 0; i < nreports; i++)
		fprintf(stderr, "  fsck: %s\n", reports[i]);
}

static int run_fsck(struct img *im, bool repair, struct udx_fsck_result *res)
{
	struct udx_fsck_opts o = { .repair = repair, .report = on_report };

	nreports = 0;
	return udx_fsck(im->dev, &o, res);
}

static void put(struct udx_fs *fs, const char *path, size_t len)
{
	char *buf = calloc(1, len + 1);
	int fd = udx_open(fs, path, O_CREAT | O_WRONLY, 0644);

	assert_true(fd >= 0);
	memset(buf, 'q', len);
	assert_int_equal(udx_write(fs, fd, buf, len), (ssize_t)len);
	udx_close(fs, fd);
	free(buf);
}

static int setup(void **state)
{
	struct img *im = calloc(1, sizeof(*im));
	struct udx_fs *fs;
	struct stat st;
	int fd, i;

	im->dev = tu_anon("anon:32M");
	im->base = udx_dev_addr(im->dev);
	im->sb = (struct udx_dsuper *)im->base;
	assert_int_equal(udx_mkfs(im->dev, NULL), 0);
	assert_int_equal(udx_mount(im->dev, NULL, &fs), 0);
	assert_int_equal(udx_mkdir(fs, "/dir", 0755), 0);
	put(fs, "/dir/file", 5000);
	put(fs, "/other", 100);
	fd = udx_open(fs, "/big", O_CREAT | O_RDWR, 0644);        /* extent tree */
	for (i = 0; i < 20; i++)
		assert_int_equal(udx_pwrite(fs, fd, "b", 1, (off_t)i * 8192), 1);
	udx_close(fs, fd);
	assert_int_equal(udx_stat(fs, "/dir/file", &st), 0);
	im->file_ino = st.st_ino;
	assert_int_equal(udx_stat(fs, "/dir", &st), 0);
	im->dir_ino = st.st_ino;
	assert_int_equal(udx_stat(fs, "/big", &st), 0);
	im->big_ino = st.st_ino;
	assert_int_equal(udx_unmount(fs), 0);
	*state = im;
	return 0;
}

static int teardown(void **state)
{
	struct img *im = *state;

	udx_dev_close(im->dev);
	free(im);
	return 0;
}

static struct udx_dinode *dinode(struct img *im, uint64_t ino)
{
	return (struct udx_dinode *)(im->base + im->sb->s_itable_start * 4096) + ino;
}

static void reseal(struct img *im, uint64_t ino)
{
	struct udx_dinode *d = dinode(im, ino);

	d->i_checksum = inode_csum(ino, d);
}

/* After a repair: fsck is clean and the file system mounts and works. */
static void expect_clean_and_usable(struct img *im)
{
	struct udx_fsck_result res;
	struct udx_fs *fs;

	if (run_fsck(im, false, &res) != 0)
		dump_reports();
	assert_true(res.problems == 0);
	assert_int_equal(udx_mount(im->dev, NULL, &fs), 0);
	put(fs, "/after-repair", 10);
	assert_int_equal(udx_unmount(fs), 0);
	assert_int_equal(run_fsck(im, false, &res), 0);
}

static void test_clean(void **state)
{
	struct img *im = *state;
	struct udx_fsck_result res;

	assert_int_equal(run_fsck(im, false, &res), 0);
	assert_true(res.problems == 0 && res.inodes == 5 && res.directories == 2);
	assert_true(res.files == 3 && res.blocks_used > 0);
}

static void test_not_udaxfs(void **state)
{
	struct udx_dev *dev = tu_anon("anon:32M");
	struct udx_fsck_result res;

	assert_int_equal(udx_fsck(dev, NULL, &res), -EINVAL);
	assert_non_null(strstr(udx_errmsg(), "not udaxfs"));
	udx_dev_close(dev);
}

static void test_primary_superblock(void **state)
{
	struct img *im = *state;
	struct udx_fsck_result res;

	im->base[200] ^= 1;
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("primary superblock is damaged"));
	assert_int_equal(run_fsck(im, true, &res), 0);
	assert_true(res.repaired == res.problems);
	expect_clean_and_usable(im);
}

static void test_backup_superblock(void **state)
{
	struct img *im = *state;
	struct udx_fsck_result res;

	im->base[udx_dev_size(im->dev) - 4096 + 50] ^= 1;
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("backup superblock"));
	assert_int_equal(run_fsck(im, true, &res), 0);
	expect_clean_and_usable(im);
}

/* A lane watermark past any commit number (the fuzzer's: the journal's
 * numbering wrapped, and the first write waited for ever): the mount
 * refuses it, fsck names and repairs it. */
static void test_lane_watermark(void **state)
{
	struct img *im = *state;
	struct udx_fsck_result res;
	struct udx_jlane *h = (struct udx_jlane *)(im->base + im->sb->s_jstart * 4096);
	struct udx_fs *fs;

	h->j_wmark = UINT64_MAX;
	assert_int_equal(udx_mount(im->dev, NULL, &fs), -EUCLEAN);
	assert_non_null(strstr(udx_errmsg(), "commit number out of range"));
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("journal lane 0: its commit watermark is out of range"));
	assert_int_equal(run_fsck(im, true, &res), 0);
	assert_true(h->j_wmark < UINT64_MAX);
	expect_clean_and_usable(im);
}

static void test_inode_checksum(void **state)
{
	struct img *im = *state;
	struct udx_fsck_result res;

	dinode(im, im->file_ino)->i_size ^= 0x100;       /* checksum now wrong */
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("is damaged (checksum mismatch)"));
	/* the entry that names it dangles once it is released */
	if (run_fsck(im, true, &res) != 0)
		dump_reports();
	assert_int_equal(res.problems, res.repaired);
	assert_true(reported("released"));
	assert_true(reported("free or damaged"));
	expect_clean_and_usable(im);
}

static void test_dangling_entry(void **state)
{
	struct img *im = *state;
	uint8_t *imap = (uint8_t *)im->base + im->sb->s_imap_start * 4096;
	struct udx_fsck_result res;
	struct udx_fs *fs;
	struct stat st;

	imap[im->file_ino] = 0;                 /* the inode is gone, its name is not */
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("entry 'file' names inode"));
	assert_true(reported("free or damaged"));
	assert_int_equal(run_fsck(im, true, &res), 0);
	assert_true(reported("entry removed"));
	expect_clean_and_usable(im);
	assert_int_equal(udx_mount(im->dev, NULL, &fs), 0);
	assert_int_equal(udx_stat(fs, "/dir/file", &st), -ENOENT);
	assert_int_equal(udx_unmount(fs), 0);
}

static void test_link_count(void **state)
{
	struct img *im = *state;
	struct udx_fsck_result res;

	dinode(im, im->file_ino)->i_nlink = 7;
	reseal(im, im->file_ino);
	dinode(im, im->dir_ino)->i_nlink = 9;
	reseal(im, im->dir_ino);
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("has link count 7, should be 1"));
	assert_true(reported("has link count 9, should be 2"));
	assert_int_equal(run_fsck(im, true, &res), 0);
	assert_true(res.repaired == 2);
	expect_clean_and_usable(im);
}

static void test_block_count(void **state)
{
	struct img *im = *state;
	struct udx_fsck_result res;

	dinode(im, im->big_ino)->i_blocks += 3;
	reseal(im, im->big_ino);
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("counts"));
	assert_int_equal(run_fsck(im, true, &res), 0);
	expect_clean_and_usable(im);
}

static void test_orphan(void **state)
{
	struct img *im = *state;
	struct udx_fsck_result res;
	struct udx_fs *fs;
	struct statvfs before, after;

	/* an allocated inode no directory names */
	assert_int_equal(udx_mount(im->dev, NULL, &fs), 0);
	udx_statfs(fs, &before);
	assert_int_equal(udx_unmount(fs), 0);
	{
		uint8_t *imap = (uint8_t *)im->base + im->sb->s_imap_start * 4096;
		struct udx_dinode *d = dinode(im, 500);

		memset(d, 0, sizeof(*d));
		d->i_mode = S_IFREG | 0644;
		d->i_nlink = 1;
		reseal(im, 500);
		imap[500] = 1;
	}
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("inode 500 (file) is in no directory"));
	assert_int_equal(run_fsck(im, true, &res), 0);
	assert_true(reported("freed"));
	expect_clean_and_usable(im);
	assert_int_equal(udx_mount(im->dev, NULL, &fs), 0);
	udx_statfs(fs, &after);
	assert_true(after.f_ffree == before.f_ffree - 1);       /* /after-repair */
	assert_int_equal(udx_unmount(fs), 0);
}

static void test_shared_blocks(void **state)
{
	struct img *im = *state;
	struct udx_dinode *a = dinode(im, im->file_ino);
	struct udx_fsck_result res;
	uint64_t other;
	struct udx_fs *fs;
	struct stat st;

	/* point /other's extent at /dir/file's blocks */
	assert_int_equal(udx_mount(im->dev, NULL, &fs), 0);
	assert_int_equal(udx_stat(fs, "/other", &st), 0);
	other = st.st_ino;
	assert_int_equal(udx_unmount(fs), 0);
	dinode(im, other)->i_inline.i_ext[0].e_pblk = a->i_inline.i_ext[0].e_pblk;
	reseal(im, other);
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("also used by another inode"));
	/* not repairable: it says so and keeps saying so */
	assert_int_equal(run_fsck(im, true, &res), -EUCLEAN);
	assert_true(res.repaired < res.problems);
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
}

static void test_tree_node(void **state)
{
	struct img *im = *state;
	struct udx_dinode *d = dinode(im, im->big_ino);
	struct udx_fsck_result res;
	char *node;

	assert_true(d->i_flags & UDX_IF_EXT_TREE);
	node = im->base + d->i_root * 4096;
	node[40] ^= 0x55;                       /* inside the first slot */
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("checksum mismatch"));
	assert_true(reported("inode 5") || reported("of inode"));
	node[40] ^= 0x55;
	assert_int_equal(run_fsck(im, false, &res), 0);
}

static void test_bad_imap_byte(void **state)
{
	struct img *im = *state;
	uint8_t *imap = (uint8_t *)im->base + im->sb->s_imap_start * 4096;
	struct udx_fsck_result res;

	imap[im->file_ino] = 9;
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("holds 9"));
	assert_int_equal(run_fsck(im, true, &res), 0);
	expect_clean_and_usable(im);
}

static void test_free_space_map(void **state)
{
	struct img *im = *state;
	uint8_t *bm = (uint8_t *)im->base + im->sb->s_bmap_start * 4096;
	struct udx_fsck_result res;

	bm[0] ^= 0x0f;
	bm[100] ^= 0xff;
	assert_int_equal(run_fsck(im, false, &res), -EUCLEAN);
	assert_true(reported("free space map disagrees"));
	assert_int_equal(run_fsck(im, true, &res), 0);
	expect_clean_and_usable(im);
}

static void test_unfinished_transaction(void **state)
{
	struct img *im = *state;
	struct udx_fsck_result res;
	struct udx_fs *fs;
	struct udx_dev *copy;
	int fd;

	/* crash in the middle of work: copy the image of a live mount */
	assert_int_equal(udx_mount(im->dev, NULL, &fs), 0);
	fd = udx_open(fs, "/open-unlinked", O_CREAT | O_RDWR, 0644);
	assert_int_equal(udx_pwrite(fs, fd, "x", 1, 10000), 1);
	assert_int_equal(udx_unlink(fs, "/open-unlinked"), 0);
	copy = tu_anon("anon:32M");
	memcpy(udx_dev_addr(copy), im->base, udx_dev_size(im->dev));
	udx_close(fs, fd);
	assert_int_equal(udx_unmount(fs), 0);
	{
		struct img c = { .dev = copy, .base = udx_dev_addr(copy) };

		c.sb = (struct udx_dsuper *)c.base;
		/* an orphan left by the crash is named; --repair frees it */
		assert_int_equal(run_fsck(&c, false, &res), -EUCLEAN);
		assert_true(reported("orphan"));
		assert_int_equal(run_fsck(&c, true, &res), 0);
		expect_clean_and_usable(&c);
	}
	udx_dev_close(copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_clean),
		cmocka_unit_test(test_not_udaxfs),
		T(test_primary_superblock),
		T(test_backup_superblock),
		T(test_lane_watermark),
		T(test_inode_checksum),
		T(test_dangling_entry),
		T(test_link_count),
		T(test_block_count),
		T(test_orphan),
		T(test_shared_blocks),
		T(test_tree_node),
		T(test_bad_imap_byte),
		T(test_free_space_map),
		T(test_unfinished_transaction),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
