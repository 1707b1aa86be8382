/* SPDX-License-Identifier: MIT */
/*
 * udaxfs demo [DEVICE]: walk through the device, the pgmap and the folio
 * lifetime rules on a device (the embedded anon:1G by default), printing
 * what happens at each step.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <udaxfs.h>
#include "cmd.h"

static void demo_usage(FILE *out)
{
	fprintf(out,
		"usage: udaxfs demo [DEVICE]\n\n"
		"Map DEVICE (default " UDX_DEV_DEFAULT_SPEC "), build its pgmap, and show\n"
		"folios going live and idle, the liveness counter, memory failure, the\n"
		"holder, and a teardown that waits for the last folio reference; then\n"
		"make a file system there and show pins: unlink, unmount, truncate and\n"
		"device removal while a pin is held.\n\n"
		"exit codes: 0 success, 1 a step failed, 2 bad command line\n");
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void show_counts(struct udx_pgmap *pg, const char *when)
{
	struct udx_pgmap_stats st;

	udx_pgmap_stats(pg, &st);
	printf("   %-34s live folios %llu, liveness count %llu (1 + live)\n", when,
	       (unsigned long long)st.live_folios, (unsigned long long)st.liveref);
}

static int demo_notify(void *holder, uint64_t off, uint64_t len, unsigned flags)
{
	printf("   holder '%s' told: %s at %#llx+%#llx\n", (const char *)holder,
	       (flags & UDX_MF_PRE_REMOVE) ? "device removal" : "memory failure",
	       (unsigned long long)off, (unsigned long long)len);
	return 0;
}

static const struct udx_holder_ops demo_holder_ops = {
	.notify_failure = demo_notify,
};

static unsigned nfreed;

static void demo_folio_free(struct udx_pgmap *pg, uint64_t off, unsigned order, void *data)
{
	nfreed++;
}

static const struct udx_pgmap_ops demo_ops = {
	.folio_free = demo_folio_free,
};

struct late_put {
	struct udx_pgmap *pg;
	struct udx_folio *f;
};

static void *late_put_thread(void *arg)
{
	struct late_put *lp = arg;
	struct timespec ts = { 0, 200 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	printf("   [other thread] drops its folio reference now\n");
	udx_folio_put(lp->pg, lp->f);
	return NULL;
}

/* ---- part two: the file system, pins, and the inode as arbiter ---------- */

static int nrecalls;

static void demo_recall(struct udx_pin *pin, enum udx_pin_event ev, uint64_t off,
			uint64_t len, void *arg)
{
	(void)arg;
	nrecalls++;
	printf("   [recall callback] %s over %llu+%llu: unpinning\n",
	       ev == UDX_PIN_RECALL_LAYOUT ? "truncate/punch" :
	       ev == UDX_PIN_RECALL_REMOVE ? "device removal" :
	       ev == UDX_PIN_POISON ? "memory failure" : "stale hole",
	       (unsigned long long)off, (unsigned long long)len);
	udx_unpin(pin);
}

static void show_fs(struct udx_fs *fs, const char *when)
{
	struct udx_fs_stats st;

	udx_fs_stats(fs, &st);
	printf("   %-34s pins %llu, entries %llu, live folios %llu, orphans %llu\n", when,
	       (unsigned long long)st.pins, (unsigned long long)st.entries,
	       (unsigned long long)st.live_folios, (unsigned long long)st.orphans);
}

struct late_unpin {
	struct udx_pin *pin;
};

static void *late_unpin_thread(void *arg)
{
	struct late_unpin *lu = arg;
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	printf("   [other thread] unpins now\n");
	udx_unpin(lu->pin);
	return NULL;
}

static int demo_fs(struct udx_dev *dev)
{
	struct udx_pin *pin, *pin2;
	struct udx_fs *fs;
	struct late_unpin lu;
	const struct udx_pin_seg *seg;
	struct udx_pgmap *pg;
	char buf[32];
	pthread_t th;
	size_t n;
	int fd, ret;

	printf("9. mkfs and mount: the file system is the holder of a new pgmap\n");
	if ((ret = udx_mkfs(dev, NULL)) || (ret = udx_memremap(dev, NULL, NULL, &pg)))
		return ret;
	{
		struct udx_mount_opts mo = { .pgmap = pg };

		if ((ret = udx_mount(dev, &mo, &fs)))
			return ret;
	}
	fd = udx_open(fs, "/data", O_CREAT | O_RDWR, 0644);
	if (fd < 0 || (ret = udx_ftruncate(fs, fd, 4u << 20)))
		return fd < 0 ? fd : ret;
	printf("10. pin 2 MiB of /data for writing: one 2 MiB entry, one folio\n");
	if ((ret = udx_pin(fs, fd, 0, 2u << 20, UDX_PIN_WRITE, demo_recall, NULL, &pin)))
		return ret;
	seg = udx_pin_segs(pin, &n);
	memcpy(seg[0].addr, "stored through the pin", 23);
	udx_pin_persist(pin, 0, 4096);
	printf("   %zu piece(s) of memory, %zu bytes at %p\n", n, seg[0].len, seg[0].addr);
	show_fs(fs, "pinned:");
	udx_close(fs, fd);
	printf("11. close the file and unlink it while pinned\n");
	if ((ret = udx_unlink(fs, "/data")))
		return ret;
	fd = udx_open(fs, "/data", O_RDONLY, 0);
	printf("   open by name: %s; through the pin: \"%s\"\n",
	       fd == -ENOENT ? "gone (ENOENT)" : "still there?!", (char *)seg[0].addr);
	show_fs(fs, "an orphan, still pinned:");
	ret = udx_unmount(fs);
	printf("12. unmount while pinned: %s\n", ret == -EBUSY ? "refused (EBUSY)" : "accepted?!");
	lu.pin = pin;
	pthread_create(&th, NULL, late_unpin_thread, &lu);
	ret = udx_unmount_wait(fs, -1);
	pthread_join(th, NULL);
	printf("   the waiting unmount returned after the unpin: %s\n", ret ? udx_errmsg() : "ok");
	if (ret)
		return ret;

	printf("13. truncate over a pin: the pin is recalled, then the blocks go\n");
	{
		struct udx_mount_opts mo = { .pgmap = pg };

		if ((ret = udx_mount(dev, &mo, &fs)))
			return ret;
	}
	fd = udx_open(fs, "/log", O_CREAT | O_RDWR, 0644);
	if (fd < 0 || (ret = udx_ftruncate(fs, fd, 1u << 20)) ||
	    (ret = udx_pin(fs, fd, 0, 1u << 20, UDX_PIN_WRITE, demo_recall, NULL, &pin2)))
		return fd < 0 ? fd : ret;
	{
		struct udx_inode *ip;

		udx_fd_inode(fs, fd, &ip);
		ret = udx_itruncate_flags(ip, 0, UDX_BREAK_NOWAIT);
		printf("   truncate that may not wait: %s\n",
		       ret == -EBUSY ? "refused (EBUSY), nothing changed" : "accepted?!");
		udx_iput(ip);
	}
	ret = udx_ftruncate(fs, fd, 0);
	printf("   truncate that waits: %s\n", ret ? udx_errmsg() : "done, after the recall");
	show_fs(fs, "after the truncate:");

	printf("14. device removal with a pin held\n");
	if ((ret = udx_ftruncate(fs, fd, 2u << 20)) ||
	    (ret = udx_pin(fs, fd, 0, 2u << 20, UDX_PIN_WRITE, demo_recall, NULL, &pin2)))
		return ret;
	udx_memunmap(pg);
	printf("   memunmap returned after the recall and the unpin\n");
	ret = (int)udx_pread(fs, fd, buf, sizeof(buf), 0);
	printf("   a read now: %s\n", ret == -ENXIO ? "refused (ENXIO)" : "accepted?!");
	udx_close(fs, fd);
	ret = udx_unmount(fs);
	printf("   unmount: %s; recalls: %d\n", ret ? udx_errmsg() : "ok", nrecalls);
	return ret;
}

static int demo_run(int argc, char **argv)
{
	const char *spec = argc > 1 ? argv[1] : UDX_DEV_DEFAULT_SPEC;
	struct udx_folio *f[64], *one, *huge;
	struct udx_dev_info info;
	struct udx_pgmap_stats st;
	struct udx_pgmap *pg;
	struct udx_dev *dev;
	struct late_put lp;
	pthread_t th;
	size_t nr, i;
	char sz[32];
	uint64_t t0;
	int ret;

	if (argc > 2) {
		demo_usage(stderr);
		return UDX_EXIT_USAGE;
	}
	printf("1. open the device '%s'\n", spec);
	ret = udx_dev_open(spec, NULL, &dev);
	if (ret) {
		fprintf(stderr, "udaxfs demo: %s\n", udx_errmsg());
		return UDX_EXIT_FAILURE;
	}
	udx_dev_info(dev, &info);
	printf("   %s mapped at %p (2 MiB aligned: %s), persistence: %s, huge pages: %s\n",
	       udx_format_size(info.size, sz, sizeof(sz)), info.addr,
	       ((uintptr_t)info.addr & ((2u << 20) - 1)) ? "no" : "yes",
	       udx_gran_name(info.gran), info.huge ? "requested" : "no");

	printf("2. memremap: page metadata beside the device\n");
	ret = udx_memremap(dev, &demo_ops, NULL, &pg);
	if (ret) {
		fprintf(stderr, "udaxfs demo: %s\n", udx_errmsg());
		udx_dev_close(dev);
		return UDX_EXIT_FAILURE;
	}
	udx_pgmap_stats(pg, &st);
	printf("   %llu pages, %llu bytes of metadata per page reserved, %llu bytes in memory\n",
	       (unsigned long long)st.npages, (unsigned long long)st.meta_bytes_per_page,
	       (unsigned long long)st.meta_resident_bytes);
	show_counts(pg, "after memremap:");

	printf("3. the file system becomes the holder\n");
	udx_pgmap_claim(pg, &demo_holder_ops, (void *)"demo-fs");
	ret = udx_pgmap_claim(pg, &demo_holder_ops, (void *)"intruder");
	printf("   a second claim: %s\n", ret == -EBUSY ? "refused (EBUSY)" : "accepted?!");

	printf("4. request 4 KiB .. 6 MiB + 12 KiB: maximally sized aligned folios\n");
	ret = udx_pgmap_request(pg, 4096, (6u << 20) + 8192, f, 64, &nr);
	if (ret)
		goto fail;
	for (i = 0; i < nr; i++)
		printf("   folio at %#9llx, order %2u (%s)\n",
		       (unsigned long long)udx_folio_offset(pg, f[i]), udx_folio_order(f[i]),
		       udx_format_size(udx_folio_size(f[i]), sz, sizeof(sz)));
	show_counts(pg, "each 0->1 took a pgmap reference:");

	printf("5. the same 2 MiB folio again: one more reference, no new liveness\n");
	ret = udx_pgmap_request_order(pg, 2u << 20, 9, &one);
	if (ret)
		goto fail;
	printf("   refcount of the folio at 2 MiB: %u\n", udx_folio_refcount(one));
	show_counts(pg, "unchanged:");
	ret = udx_pgmap_request_order(pg, 2u << 20, 0, &huge);
	printf("   a 4 KiB folio inside it: %s\n", ret == -EBUSY ? "refused (EBUSY)" : "accepted?!");
	udx_folio_put(pg, one);

	printf("6. a 1 GiB folio over live pages: refused; put them, then it works\n");
	ret = udx_pgmap_request_order(pg, 0, 18, &huge);
	printf("   request: %s\n", ret == -EBUSY ? "refused (EBUSY)" : "accepted?!");
	nfreed = 0;
	for (i = 0; i < nr; i++)
		udx_folio_put(pg, f[i]);
	printf("   put them all: folio_free ran %u times\n", nfreed);
	show_counts(pg, "every 1->0 dropped its reference:");
	ret = udx_pgmap_request_order(pg, 0, 18, &huge);
	if (ret)
		goto fail;
	show_counts(pg, "one 1 GiB folio:");
	udx_folio_put(pg, huge);

	printf("7. memory failure at 64 MiB: the holder is told, requests refuse it\n");
	udx_pgmap_memory_failure(pg, 64u << 20, 4096, 0);
	ret = udx_pgmap_request_order(pg, 64u << 20, 9, &huge);
	printf("   request of the 2 MiB around it: %s\n",
	       ret == -EHWPOISON ? "refused (EHWPOISON)" : "accepted?!");

	printf("8. teardown while another thread still holds a folio\n");
	ret = udx_pgmap_request_order(pg, 128u << 20, 9, &one);
	if (ret)
		goto fail;
	lp.pg = pg;
	lp.f = one;
	pthread_create(&th, NULL, late_put_thread, &lp);
	t0 = now_ns();
	udx_pgmap_kill(pg);
	ret = udx_pgmap_request_order(pg, 256u << 20, 9, &huge);
	printf("   after kill a new request: %s\n", ret == -ENXIO ? "refused (ENXIO)" : "accepted?!");
	udx_pgmap_wait(pg, -1);
	printf("   teardown returned after %.1f ms, once the last reference was gone\n",
	       (double)(now_ns() - t0) / 1e6);
	pthread_join(th, NULL);
	udx_pgmap_unclaim(pg, (void *)"demo-fs");
	udx_pgmap_free(pg);
	ret = demo_fs(dev);
	if (ret) {
		fprintf(stderr, "udaxfs demo: %s\n", udx_errmsg());
		udx_dev_close(dev);
		return UDX_EXIT_FAILURE;
	}
	udx_dev_close(dev);
	printf("done.\n");
	return UDX_EXIT_OK;

fail:
	fprintf(stderr, "udaxfs demo: %s\n", udx_errmsg());
	return UDX_EXIT_FAILURE;
}

const struct udx_cmd udx_cmd_demo = {
	.name = "demo",
	.summary = "show the device, pgmap and folio lifetimes at work",
	.run = demo_run,
	.usage = demo_usage,
};
