/* SPDX-License-Identifier: MIT */
/* The memory device: every kind we can make here, persistence, bad specs. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testutil.h"

static char tmpdir[256];

static int make_tmpdir(void **state)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(tmpdir, sizeof(tmpdir), "%s/udx-test-dev-XXXXXX", base);
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int remove_tmpdir(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *tpath(const char *name)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	return p;
}

static void test_default_anon(void **state)
{
	struct udx_dev_info info;
	struct udx_dev *dev;
	char *p;

	assert_int_equal(udx_dev_open(NULL, NULL, &dev), 0);
	udx_dev_info(dev, &info);
	assert_int_equal(info.kind, UDX_DEV_ANON);
	assert_true(info.size == 1ull << 30);
	assert_int_equal(info.gran, UDX_GRAN_NONE);
	assert_true(((uintptr_t)info.addr & ((2u << 20) - 1)) == 0);
	p = info.addr;
	p[0] = 1;
	p[info.size - 1] = 2;
	udx_dev_persist(dev, p, 64);            /* a no-op, but allowed */
	assert_int_equal(p[0] + p[info.size - 1], 3);
	udx_dev_close(dev);
}

static void test_anon_sizes(void **state)
{
	struct udx_dev *dev;

	assert_int_equal(udx_dev_open("anon:4K", NULL, &dev), 0);
	assert_true(udx_dev_size(dev) == 4096);
	udx_dev_close(dev);
	assert_int_equal(udx_dev_open("anon:3M", NULL, &dev), 0);
	assert_true(udx_dev_size(dev) == 3ull << 20);
	assert_true(((uintptr_t)udx_dev_addr(dev) & ((2u << 20) - 1)) == 0);
	udx_dev_close(dev);
	/* sparse: a large device costs nothing until touched */
	assert_int_equal(udx_dev_open("anon:256G", NULL, &dev), 0);
	assert_true(udx_dev_size(dev) == 256ull << 30);
	udx_dev_close(dev);
}

static void expect_err(const char *spec, const struct udx_dev_opts *o, int err,
		       const char *words)
{
	struct udx_dev *dev = (void *)0x1;
	int ret = udx_dev_open(spec, o, &dev);

	if (ret != err || strstr(udx_errmsg(), words) == NULL)
		fprintf(stderr, "spec '%s': got %d '%s', expected %d '...%s...'\n",
			spec, ret, udx_errmsg(), err, words);
	assert_int_equal(ret, err);
	assert_non_null(strstr(udx_errmsg(), words));
	assert_true(dev == (void *)0x1);        /* untouched on failure */
}

static void test_bad_specs(void **state)
{
	struct udx_dev_opts o = { .size = 1 << 20, .flags = 0 };
	int fd;

	expect_err("", NULL, -EINVAL, "empty");
	expect_err("anon:", NULL, -EINVAL, "not a size");
	expect_err("anon:xyz", NULL, -EINVAL, "not a size");
	expect_err("anon:0", NULL, -EINVAL, "zero");
	expect_err("anon:4097", NULL, -EINVAL, "not a multiple of 4 KiB");
	expect_err("anon:1000000T", NULL, -ENOMEM, "address space");
	expect_err("anon:99999999999999999999", NULL, -ENOMEM, "address space");
	expect_err(tpath("missing"), NULL, -ENOENT, "no such file");
	expect_err(tpath("missing"), &o, -ENOENT, "no such file");   /* no CREATE */
	expect_err(tmpdir, NULL, -EISDIR, "directory");
	expect_err("/dev/null", NULL, -ENODEV, "not a device-DAX");
	assert_int_equal(mkfifo(tpath("fifo"), 0600), 0);
	expect_err(tpath("fifo"), NULL, -ENODEV, "cannot be mapped");
	fd = open(tpath("empty"), O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	close(fd);
	expect_err(tpath("empty"), NULL, -EINVAL, "empty");
	fd = open(tpath("odd"), O_CREAT | O_RDWR, 0600);
	assert_int_equal(ftruncate(fd, 5000), 0);
	close(fd);
	expect_err(tpath("odd"), NULL, -EINVAL, "not a multiple of 4 KiB");
	o.flags = UDX_DEV_CREATE;
	o.size = 12345;
	expect_err(tpath("new-odd"), &o, -EINVAL, "not a multiple of 4 KiB");
	assert_int_equal(access(tpath("new-odd"), F_OK), -1);     /* not left behind */
	o.size = 0;
	expect_err(tpath("new-zero"), &o, -ENOENT, "give a size");
}

/* Root reads anything; check EACCES as an unprivileged user in a child. */
static void test_unreadable(void **state)
{
	int fd, status;
	pid_t pid;

	fd = open(tpath("secret"), O_CREAT | O_RDWR, 0600);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	assert_int_equal(chmod(tpath("secret"), 0), 0);
	assert_int_equal(chmod(tmpdir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct udx_dev *dev;
		int ret;

		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(3);
		ret = udx_dev_open(tpath("secret"), NULL, &dev);
		_exit(ret == -EACCES && strstr(udx_errmsg(), "ermission") ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_pool_file_roundtrip(void **state)
{
	struct udx_dev_opts o = { .size = 64 << 20, .flags = UDX_DEV_CREATE };
	struct udx_dev_info info;
	struct udx_dev *dev;
	struct stat st;
	char *p;

	assert_int_equal(udx_dev_open(tpath("pool"), &o, &dev), 0);
	udx_dev_info(dev, &info);
	assert_int_equal(info.kind, UDX_DEV_FILE);
	assert_int_equal(info.gran, UDX_GRAN_PAGE);
	assert_true(info.size == 64 << 20);
	assert_true(((uintptr_t)info.addr & ((2u << 20) - 1)) == 0);
	assert_int_equal(stat(tpath("pool"), &st), 0);
	assert_true(st.st_size == 64 << 20);
	assert_true(st.st_blocks * 512 < (1 << 20));    /* created sparse */
	p = info.addr;
	strcpy(p + (5 << 20), "hello, persistent world");
	udx_dev_persist(dev, p + (5 << 20), 32);
	udx_dev_close(dev);

	/* reopen at its own size */
	assert_int_equal(udx_dev_open(tpath("pool"), NULL, &dev), 0);
	assert_true(udx_dev_size(dev) == 64 << 20);
	assert_string_equal((char *)udx_dev_addr(dev) + (5 << 20), "hello, persistent world");
	udx_dev_close(dev);

	/* asking for more than the file holds: refused without CREATE */
	o.size = 128 << 20;
	o.flags = 0;
	expect_err(tpath("pool"), &o, -EINVAL, "smaller than");
	o.flags = UDX_DEV_CREATE;
	assert_int_equal(udx_dev_open(tpath("pool"), &o, &dev), 0);
	assert_true(udx_dev_size(dev) == 128 << 20);
	assert_string_equal((char *)udx_dev_addr(dev) + (5 << 20), "hello, persistent world");
	udx_dev_close(dev);

	/* read-only */
	o.size = 0;
	o.flags = UDX_DEV_RDONLY;
	assert_int_equal(udx_dev_open(tpath("pool"), &o, &dev), 0);
	udx_dev_info(dev, &info);
	assert_true(info.rdonly);
	assert_string_equal((char *)info.addr + (5 << 20), "hello, persistent world");
	udx_dev_close(dev);
}

/* One writer per device across processes (an OFD lock): a second writable
 * or read-only open is -EBUSY while a writer has it, readers share, a killed
 * holder releases it, and UDX_DEV_NOLOCK reads regardless. */
static void test_device_lock(void **state)
{
	struct udx_dev_opts o = { .size = 16 << 20, .flags = UDX_DEV_CREATE };
	struct udx_dev_opts ro = { .flags = UDX_DEV_RDONLY };
	struct udx_dev_opts nolock = { .flags = UDX_DEV_RDONLY | UDX_DEV_NOLOCK };
	struct udx_dev *w, *r1, *r2, *d;
	int status, pfd[2];
	pid_t pid;
	char c;

	assert_int_equal(udx_dev_open(tpath("locked"), &o, &w), 0);
	expect_err(tpath("locked"), NULL, -EBUSY, "in use by another process");
	expect_err(tpath("locked"), &ro, -EBUSY, "in use by another process");
	assert_int_equal(udx_dev_open(tpath("locked"), &nolock, &d), 0);
	udx_dev_close(d);
	udx_dev_close(w);

	assert_int_equal(udx_dev_open(tpath("locked"), &ro, &r1), 0);
	assert_int_equal(udx_dev_open(tpath("locked"), &ro, &r2), 0);
	expect_err(tpath("locked"), NULL, -EBUSY, "in use by another process");
	udx_dev_close(r1);
	udx_dev_close(r2);

	/* a child holds it and is killed: the lock goes with it */
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		if (udx_dev_open(tpath("locked"), NULL, &d) != 0)
			_exit(1);
		if (write(pfd[1], "l", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);       /* it holds the lock */
	close(pfd[0]);
	expect_err(tpath("locked"), NULL, -EBUSY, "in use by another process");
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(udx_dev_open(tpath("locked"), NULL, &d), 0);
	udx_dev_close(d);
}

static void test_force_cacheline(void **state)
{
	struct udx_dev_opts o = { .size = 8 << 20, .flags = UDX_DEV_FORCE_CACHELINE };
	struct udx_dev *dev;
	char *p;

	assert_int_equal(udx_dev_open("anon:8M", &o, &dev), 0);
	assert_int_equal(udx_dev_gran(dev), UDX_GRAN_CACHE_LINE);
	p = udx_dev_addr(dev);
	memset(p, 0xab, 1 << 20);
	udx_dev_persist(dev, p + 3, 100000);    /* unaligned ranges are fine */
	udx_dev_flush(dev, p, 64);
	udx_dev_drain(dev);
	udx_dev_close(dev);

	o.flags |= UDX_DEV_CREATE;
	assert_int_equal(udx_dev_open(tpath("clpool"), &o, &dev), 0);
	assert_int_equal(udx_dev_gran(dev), UDX_GRAN_CACHE_LINE);
	p = udx_dev_addr(dev);
	strcpy(p, "flushed by cache line");
	udx_dev_persist(dev, p, 32);
	udx_dev_close(dev);
	assert_int_equal(udx_dev_open(tpath("clpool"), NULL, &dev), 0);
	assert_int_equal(udx_dev_gran(dev), UDX_GRAN_PAGE);
	assert_string_equal(udx_dev_addr(dev), "flushed by cache line");
	udx_dev_close(dev);

	/* the environment variable libpmem2 honours works for anon too */
	setenv("PMEM2_FORCE_GRANULARITY", "CACHE_LINE", 1);
	assert_int_equal(udx_dev_open("anon:4M", NULL, &dev), 0);
	assert_int_equal(udx_dev_gran(dev), UDX_GRAN_CACHE_LINE);
	udx_dev_close(dev);
	unsetenv("PMEM2_FORCE_GRANULARITY");
}

struct hook_count {
	int flushes, drains;
	size_t bytes;
};

static void hook_flush(void *ctx, const void *addr, size_t len)
{
	struct hook_count *h = ctx;

	h->flushes++;
	h->bytes += len;
}

static void hook_drain(void *ctx)
{
	((struct hook_count *)ctx)->drains++;
}

static void test_persist_hooks(void **state)
{
	static const struct udx_persist_ops ops = { hook_flush, hook_drain };
	struct hook_count h = { 0 };
	struct udx_dev *dev;
	char *p;

	assert_int_equal(udx_dev_open("anon:2M", NULL, &dev), 0);
	udx_dev_set_persist_ops(dev, &ops, &h);
	p = udx_dev_addr(dev);
	udx_dev_persist(dev, p, 100);
	udx_dev_flush(dev, p + 4096, 10);
	udx_dev_drain(dev);
	assert_int_equal(h.flushes, 2);
	assert_int_equal(h.drains, 2);
	assert_int_equal((int)h.bytes, 110);
	udx_dev_set_persist_ops(dev, NULL, NULL);
	udx_dev_persist(dev, p, 100);
	assert_int_equal(h.flushes, 2);
	udx_dev_close(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_anon),
		cmocka_unit_test(test_anon_sizes),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_pool_file_roundtrip),
		cmocka_unit_test(test_device_lock),
		cmocka_unit_test(test_force_cacheline),
		cmocka_unit_test(test_persist_hooks),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
