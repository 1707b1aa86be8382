/* SPDX-License-Identifier: MIT */
/* The liveness counter: every verb and transition, one at a time. */
#include <stdbool.h>
#include <sched.h>
#include <sys/wait.h>

/* Sections of threads that arm the hook stop inside, until released. */
struct udx_liveref;
static void section_hook(struct udx_liveref *ref);
#define UDX_LR_TEST_HOOK(ref) section_hook(ref)

#include "testutil.h"

static int nreleased;

static void count_release(struct udx_liveref *ref)
{
	(void)ref;
	__atomic_fetch_add(&nreleased, 1, __ATOMIC_RELAXED);
}

static int setup(void **state)
{
	nreleased = 0;
	return 0;
}

static void test_init_counts_one(void **state)
{
	struct udx_liveref r;

	assert_int_equal(udx_liveref_init(&r, count_release), 0);
	assert_true(udx_liveref_read(&r) == 1);
	assert_false(udx_liveref_is_dying(&r));
	udx_liveref_get(&r);
	udx_liveref_get(&r);
	assert_true(udx_liveref_read(&r) == 3);
	udx_liveref_put(&r);
	assert_true(udx_liveref_read(&r) == 2);
	assert_true(udx_liveref_tryget(&r));
	assert_true(udx_liveref_tryget_live(&r));
	assert_true(udx_liveref_read(&r) == 4);
	udx_liveref_put(&r);
	udx_liveref_put(&r);
	udx_liveref_put(&r);
	assert_true(udx_liveref_read(&r) == 1);
	assert_int_equal(nreleased, 0);
	udx_liveref_kill(&r);
	udx_liveref_put(&r);
	assert_int_equal(nreleased, 1);
	assert_int_equal(udx_liveref_wait_zero(&r, 0), 0);
	udx_liveref_exit(&r);
}

static void test_kill_makes_exact_and_refuses_live(void **state)
{
	struct udx_liveref r;
	int i;

	assert_int_equal(udx_liveref_init(&r, count_release), 0);
	for (i = 0; i < 10; i++)
		udx_liveref_get(&r);
	udx_liveref_kill(&r);
	assert_true(udx_liveref_is_dying(&r));
	assert_true(udx_liveref_read(&r) == 11);
	assert_false(udx_liveref_tryget_live(&r));
	/* liveness is not existence: get and tryget still work */
	udx_liveref_get(&r);
	assert_true(udx_liveref_tryget(&r));
	assert_true(udx_liveref_read(&r) == 13);
	for (i = 0; i < 12; i++)
		udx_liveref_put(&r);
	assert_int_equal(nreleased, 0);
	assert_int_equal(udx_liveref_wait_zero(&r, 1000000), -ETIMEDOUT);
	udx_liveref_put(&r);                    /* the initial reference */
	assert_int_equal(nreleased, 1);
	assert_true(udx_liveref_read(&r) == 0);
	assert_false(udx_liveref_tryget(&r));   /* zero stays zero */
	assert_int_equal(udx_liveref_wait_zero(&r, -1), 0);
	udx_liveref_exit(&r);
}

static void test_last_put_before_kill_releases_at_kill(void **state)
{
	struct udx_liveref r;

	assert_int_equal(udx_liveref_init(&r, count_release), 0);
	udx_liveref_put(&r);            /* allowed: release waits for kill */
	assert_int_equal(nreleased, 0);
	assert_int_equal(udx_liveref_wait_zero(&r, 0), -ETIMEDOUT);
	udx_liveref_kill(&r);
	assert_int_equal(nreleased, 1);
	assert_int_equal(udx_liveref_wait_zero(&r, 0), 0);
	udx_liveref_exit(&r);
}

static void test_null_release(void **state)
{
	struct udx_liveref r;

	assert_int_equal(udx_liveref_init(&r, NULL), 0);
	udx_liveref_kill(&r);
	udx_liveref_put(&r);
	assert_int_equal(udx_liveref_wait_zero(&r, -1), 0);
	udx_liveref_exit(&r);
}

/* A get in one thread and its put in another: slots hold contributions, not
 * per-thread counts, so they may go negative. */
struct xfer {
	struct udx_liveref *ref;
	int n;
};

static void *put_n(void *arg)
{
	struct xfer *x = arg;
	int i;

	for (i = 0; i < x->n; i++)
		udx_liveref_put(x->ref);
	return NULL;
}

static void test_get_here_put_there(void **state)
{
	struct udx_liveref r;
	struct xfer x = { &r, 1000 };
	pthread_t th;
	int i;

	assert_int_equal(udx_liveref_init(&r, count_release), 0);
	for (i = 0; i < x.n; i++)
		udx_liveref_get(&r);
	pthread_create(&th, NULL, put_n, &x);
	pthread_join(th, NULL);
	assert_true(udx_liveref_read(&r) == 1);
	udx_liveref_kill(&r);
	assert_true(udx_liveref_read(&r) == 1);
	udx_liveref_put(&r);
	assert_int_equal(nreleased, 1);
	udx_liveref_exit(&r);
}

/* Waiters sleep until the release has run, in another thread. */
static void *late_put(void *arg)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	udx_liveref_put(arg);
	return NULL;
}

static void test_wait_zero_wakes(void **state)
{
	struct udx_liveref r;
	pthread_t th;

	assert_int_equal(udx_liveref_init(&r, count_release), 0);
	udx_liveref_get(&r);
	udx_liveref_kill(&r);
	udx_liveref_put(&r);
	pthread_create(&th, NULL, late_put, &r);
	assert_int_equal(udx_liveref_wait_zero(&r, -1), 0);
	assert_int_equal(nreleased, 1);
	pthread_join(th, NULL);
	udx_liveref_exit(&r);
}

/* More threads than registry entries: the extra ones use the shared count,
 * and every reference still adds up. */
#define MANY 300

struct many {
	struct udx_liveref *ref;
	pthread_barrier_t *hold;
};

static void *get_hold_put(void *arg)
{
	struct many *m = arg;

	udx_liveref_get(m->ref);
	if (!udx_liveref_tryget_live(m->ref))
		abort();
	pthread_barrier_wait(m->hold);          /* everyone holds two */
	pthread_barrier_wait(m->hold);          /* main has checked */
	udx_liveref_put(m->ref);
	udx_liveref_put(m->ref);
	return NULL;
}

static void test_more_threads_than_slots(void **state)
{
	static pthread_t th[MANY];
	struct udx_liveref r;
	pthread_barrier_t hold;
	struct many m = { &r, &hold };
	int i;

	assert_int_equal(udx_liveref_init(&r, count_release), 0);
	pthread_barrier_init(&hold, NULL, MANY + 1);
	for (i = 0; i < MANY; i++)
		assert_int_equal(pthread_create(&th[i], NULL, get_hold_put, &m), 0);
	pthread_barrier_wait(&hold);
	assert_true(udx_liveref_read(&r) == 1 + 2 * MANY);
	udx_liveref_kill(&r);                   /* while they all hold */
	assert_true(udx_liveref_read(&r) == 1 + 2 * MANY);
	pthread_barrier_wait(&hold);
	for (i = 0; i < MANY; i++)
		pthread_join(th[i], NULL);
	assert_true(udx_liveref_read(&r) == 1);
	assert_int_equal(nreleased, 0);
	udx_liveref_put(&r);
	assert_int_equal(nreleased, 1);
	pthread_barrier_destroy(&hold);
	udx_liveref_exit(&r);
}

/* Registry entries are reused by new threads; sums stay right. */
static void *get_one(void *arg)
{
	udx_liveref_get(arg);
	return NULL;
}

static void test_entry_reuse(void **state)
{
	struct udx_liveref r;
	pthread_t th;
	int i;

	assert_int_equal(udx_liveref_init(&r, count_release), 0);
	for (i = 0; i < 2 * UDX_LR_MAX_THREADS; i++) {
		pthread_create(&th, NULL, get_one, &r);
		pthread_join(th, NULL);
	}
	assert_true(udx_liveref_read(&r) == 1 + 2 * UDX_LR_MAX_THREADS);
	pthread_create(&th, NULL, put_n, &(struct xfer){ &r, 2 * UDX_LR_MAX_THREADS });
	pthread_join(th, NULL);
	udx_liveref_kill(&r);
	assert_true(udx_liveref_read(&r) == 1);
	udx_liveref_put(&r);
	assert_int_equal(nreleased, 1);
	udx_liveref_exit(&r);
}

/* After fork the child's membarrier registration is new; kill still works. */
static void test_fork_child_can_kill(void **state)
{
	struct udx_liveref r;
	int status;
	pid_t pid;

	assert_int_equal(udx_liveref_init(&r, count_release), 0);
	udx_liveref_get(&r);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		udx_liveref_get(&r);
		udx_liveref_kill(&r);
		if (udx_liveref_read(&r) != 3 || udx_liveref_tryget_live(&r))
			_exit(1);
		udx_liveref_put(&r);
		udx_liveref_put(&r);
		udx_liveref_put(&r);
		_exit(nreleased == 1 ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the parent's counter is untouched */
	assert_true(udx_liveref_read(&r) == 2);
	udx_liveref_put(&r);
	udx_liveref_kill(&r);
	udx_liveref_put(&r);
	assert_int_equal(nreleased, 1);
	udx_liveref_exit(&r);
}

/* ---- forced interleavings ---------------------------------------------- */

static __thread bool hook_armed;
static int in_section;          /* the worker is parked inside a section */
static int release_section;     /* let it go */
static int killer_started;
static uint64_t section_left_ns, kill_returned_ns;

static void section_hook(struct udx_liveref *ref)
{
	(void)ref;
	if (!hook_armed)
		return;
	__atomic_store_n(&in_section, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&release_section, __ATOMIC_SEQ_CST))
		sched_yield();
}

static void *get_in_hooked_section(void *arg)
{
	/* the first use registers the thread in the library's slow path, which
	 * has no hook; after that the inline fast path (with it) is taken */
	udx_liveref_get(arg);
	udx_liveref_put(arg);
	hook_armed = true;
	udx_liveref_get(arg);           /* parks inside the section */
	hook_armed = false;
	__atomic_store_n(&section_left_ns, tu_now_ns(), __ATOMIC_SEQ_CST);
	return NULL;
}

static void *kill_it(void *arg)
{
	__atomic_store_n(&killer_started, 1, __ATOMIC_SEQ_CST);
	udx_liveref_kill(arg);
	__atomic_store_n(&kill_returned_ns, tu_now_ns(), __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * A thread preempted inside the fast path (it has read "live", not yet
 * written its slot) while another kills the counter: kill must wait for it,
 * and its get must be in the exact count.  A kill that summed the slots
 * without waiting would lose the get here, every time.
 */
static void test_kill_waits_for_section_in_flight(void **state)
{
	struct udx_liveref r;
	struct timespec ts = { 0, 30 * 1000 * 1000 };
	pthread_t worker, killer;

	if (getenv("UDX_LIVEREF_NO_FASTPATH"))
		skip();                         /* no sections to park in */
	assert_int_equal(udx_liveref_init(&r, count_release), 0);
	in_section = release_section = killer_started = 0;
	pthread_create(&worker, NULL, get_in_hooked_section, &r);
	while (!__atomic_load_n(&in_section, __ATOMIC_SEQ_CST))
		sched_yield();
	pthread_create(&killer, NULL, kill_it, &r);
	while (!__atomic_load_n(&killer_started, __ATOMIC_SEQ_CST))
		sched_yield();
	nanosleep(&ts, NULL);                   /* let kill get as far as it can */
	assert_true(__atomic_load_n(&kill_returned_ns, __ATOMIC_SEQ_CST) == 0);
	__atomic_store_n(&release_section, 1, __ATOMIC_SEQ_CST);
	pthread_join(worker, NULL);
	pthread_join(killer, NULL);
	assert_true(kill_returned_ns >= section_left_ns);
	assert_true(udx_liveref_read(&r) == 2); /* initial + the parked get */
	assert_false(udx_liveref_tryget_live(&r));
	udx_liveref_put(&r);
	udx_liveref_put(&r);
	assert_int_equal(nreleased, 1);
	udx_liveref_exit(&r);
	kill_returned_ns = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_init_counts_one, setup),
		cmocka_unit_test_setup(test_kill_makes_exact_and_refuses_live, setup),
		cmocka_unit_test_setup(test_last_put_before_kill_releases_at_kill, setup),
		cmocka_unit_test_setup(test_null_release, setup),
		cmocka_unit_test_setup(test_get_here_put_there, setup),
		cmocka_unit_test_setup(test_wait_zero_wakes, setup),
		cmocka_unit_test_setup(test_more_threads_than_slots, setup),
		cmocka_unit_test_setup(test_entry_reuse, setup),
		cmocka_unit_test_setup(test_fork_child_can_kill, setup),
		cmocka_unit_test_setup(test_kill_waits_for_section_in_flight, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
