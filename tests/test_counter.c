/* SPDX-License-Identifier: MIT */
/*
 * percpu_counter: every call's single-thread semantics, then writers
 * racing a reader that checks sum, read and compare against what is
 * known to be in flight, then exactness once the writers are joined.
 *
 * PERCPU_EXPECT_MODE=rseq|atomic|up: the mode the run must be in (a silent
 * fallback cannot pass as rseq).  PERCPU_TEST_SCALE scales the work.
 * Argument "stress": 10x the work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <percpu/linux.h>	/* the kernel's names, counter included */

static int failures;
#define CHECK(c) do {								\
	if (!(c)) {								\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);\
		failures++;							\
	}									\
} while (0)
#define CHECK_EQ(a, b) do {							\
	long long a_ = (long long)(a), b_ = (long long)(b);			\
	if (a_ != b_) {								\
		fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n",	\
			__FILE__, __LINE__, #a, a_, #b, b_);			\
		failures++;							\
	}									\
} while (0)

static double scale = 1.0;
static int nr_online;

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % nr_online, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void unpin(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int i = 0; i < nr_online; i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void test_basics(void)
{
	struct percpu_counter c;
	int32_t b = percpu_counter_batch;

	CHECK_EQ(b, nr_online * 2 > 32 ? nr_online * 2 : 32);
	memset(&c, 0, sizeof(c));
	CHECK(!percpu_counter_initialized(&c));
	CHECK_EQ(percpu_counter_init(&c, 5, GFP_KERNEL), 0);
	CHECK(percpu_counter_initialized(&c));
	CHECK_EQ(percpu_counter_read(&c), 5);
	CHECK_EQ(percpu_counter_sum(&c), 5);

	pin(0);		/* one CPU: the deltas are deterministic */
	percpu_counter_inc(&c);
	percpu_counter_inc(&c);
	percpu_counter_dec(&c);
	percpu_counter_add(&c, 3);
	percpu_counter_sub(&c, 2);
	CHECK_EQ(percpu_counter_sum(&c), 7);
	CHECK_EQ(percpu_counter_read(&c), 5);	/* the delta (2) is not folded */

	/* Up to batch - 1 stays in the delta; reaching the batch folds. */
	percpu_counter_set(&c, 0);
	CHECK_EQ(percpu_counter_read(&c), 0);
	percpu_counter_add(&c, b - 1);
	CHECK_EQ(percpu_counter_read(&c), 0);
	CHECK_EQ(percpu_counter_sum(&c), b - 1);
	percpu_counter_add(&c, 1);
	CHECK_EQ(percpu_counter_read(&c), b);
	CHECK_EQ(percpu_counter_sum(&c), b);
	/* Negative side. */
	percpu_counter_set(&c, 0);
	percpu_counter_sub(&c, b - 1);
	CHECK_EQ(percpu_counter_read(&c), 0);
	percpu_counter_dec(&c);
	CHECK_EQ(percpu_counter_read(&c), -b);
	CHECK_EQ(percpu_counter_read_positive(&c), 0);
	CHECK_EQ(percpu_counter_sum_positive(&c), 0);
	CHECK_EQ(percpu_counter_sum(&c), -b);
	/*
	 * A CPU whose previous fold of the counter went the same way moves
	 * its delta to the far end of the window: a counter that keeps
	 * growing folds every 2 * batch - 1 adds instead of every batch.
	 * A fold the other way is the kernel's again.  (set() starts afresh.)
	 */
	percpu_counter_set(&c, 0);
	percpu_counter_add(&c, b - 1);
	percpu_counter_inc(&c);			/* first fold: as the kernel */
	CHECK_EQ(percpu_counter_read(&c), b);
	percpu_counter_add(&c, b - 1);
	percpu_counter_inc(&c);			/* second fold, same way */
	CHECK_EQ(percpu_counter_read(&c), 3 * (int64_t)b - 1);
	CHECK_EQ(percpu_counter_sum(&c), 2 * (int64_t)b);
	for (int i = 0; i < 2 * b - 2; i++)
		percpu_counter_inc(&c);		/* from -(b - 1) up to b - 1 */
	CHECK_EQ(percpu_counter_read(&c), 3 * (int64_t)b - 1);
	percpu_counter_inc(&c);			/* and the third fold */
	CHECK_EQ(percpu_counter_read(&c), 5 * (int64_t)b - 2);
	CHECK_EQ(percpu_counter_sum(&c), 4 * (int64_t)b - 1);
	/*
	 * 2b - 1 decrements from -(b - 1): the first folds the other way (to
	 * 0, count 4b - 2), b - 1 more reach -(b - 1), the next folds the
	 * same way again (count 3b - 2, then to the far end: delta b - 1,
	 * count 2b - 1), and b - 2 more leave the delta at 1.
	 */
	for (int i = 0; i < 2 * b - 1; i++)
		percpu_counter_dec(&c);
	CHECK_EQ(percpu_counter_read(&c), 2 * (int64_t)b - 1);
	CHECK_EQ(percpu_counter_sum(&c), 2 * (int64_t)b);
	/* |amount| >= batch goes to count directly, with the pending delta. */
	percpu_counter_set(&c, 0);
	percpu_counter_add(&c, 3);
	percpu_counter_add(&c, b);
	CHECK_EQ(percpu_counter_read(&c), b + 3);
	percpu_counter_add(&c, -3 * (int64_t)b);
	CHECK_EQ(percpu_counter_read(&c), 3 - 2 * (int64_t)b);
	CHECK_EQ(percpu_counter_sum(&c), 3 - 2 * (int64_t)b);
	/* An explicit batch. */
	percpu_counter_set(&c, 0);
	percpu_counter_add_batch(&c, 100, 1000);
	CHECK_EQ(percpu_counter_read(&c), 0);
	CHECK_EQ(percpu_counter_sum(&c), 100);
	percpu_counter_add_batch(&c, 1, 1);
	CHECK_EQ(percpu_counter_read(&c), 101);
	/* 64-bit values. */
	percpu_counter_set(&c, 1LL << 40);
	percpu_counter_inc(&c);
	CHECK_EQ(percpu_counter_sum(&c), (1LL << 40) + 1);
	CHECK_EQ(percpu_counter_read_positive(&c), 1LL << 40);
	/* set clears every CPU's delta. */
	pin(1);
	percpu_counter_add(&c, 7);
	pin(0);
	percpu_counter_add(&c, 9);
	percpu_counter_set(&c, -4);
	CHECK_EQ(percpu_counter_sum(&c), -4);
	CHECK_EQ(percpu_counter_read(&c), -4);
	CHECK_EQ(percpu_counter_read_positive(&c), 0);
	unpin();
	percpu_counter_destroy(&c);
	CHECK(!percpu_counter_initialized(&c));
	percpu_counter_destroy(&c);	/* twice: a no-op, as in the kernel */
}

static void test_many(void)
{
	enum { N = 37 };
	struct percpu_counter c[N];

	CHECK_EQ(percpu_counter_init_many(c, -3, GFP_KERNEL, N), 0);
	for (int i = 0; i < N; i++) {
		CHECK(percpu_counter_initialized(&c[i]));
		/* One allocation: consecutive elements of every CPU's array. */
		CHECK((char *)c[i].counters ==
		      (char *)c[0].counters + i * PERCPU_COUNTER__SLOTS * sizeof(int32_t));
	}
	for (int i = 0; i < N; i++)
		percpu_counter_add(&c[i], i);
	for (int i = 0; i < N; i++)
		CHECK_EQ(percpu_counter_sum(&c[i]), i - 3);
	percpu_counter_set(&c[5], 1000);
	CHECK_EQ(percpu_counter_sum(&c[4]), 1);
	CHECK_EQ(percpu_counter_sum(&c[6]), 3);
	percpu_counter_destroy_many(c, N);
	for (int i = 0; i < N; i++)
		CHECK(!percpu_counter_initialized(&c[i]));
	/* GFP_NOWAIT: may fail (no populated space), never blocks. */
	if (percpu_counter_init_many(c, 1, GFP_NOWAIT | __GFP_NOWARN, 2) == 0) {
		CHECK_EQ(percpu_counter_sum(&c[1]), 1);
		percpu_counter_destroy_many(c, 2);
	}
	/* Too big for one allocation: -ENOMEM, nothing initialized. */
	memset(c, 0, sizeof(c));
	CHECK_EQ(percpu_counter_init_many(c, 0, GFP_KERNEL | __GFP_NOWARN,
					  (uint32_t)(percpu_max_alloc_size() / 4 + 1)),
		 -ENOMEM);
	CHECK(!percpu_counter_initialized(&c[0]));
}

/*
 * Batches up to INT32_MAX: the fast path works in 32 bits, so a huge
 * batch must fold rather than let a delta wrap.
 */
static void test_huge_batch(void)
{
	struct percpu_counter c;
	int64_t want = 0;

	CHECK_EQ(percpu_counter_init(&c, 0, GFP_KERNEL), 0);
	for (int i = 0; i < 1000; i++) {
		percpu_counter_add_batch(&c, 5, INT32_MAX);
		want += 5;
	}
	percpu_counter_add_batch(&c, INT32_MAX - 10, INT32_MAX);
	percpu_counter_add_batch(&c, INT32_MAX - 10, INT32_MAX);
	want += 2 * (int64_t)(INT32_MAX - 10);
	CHECK(__percpu_counter_limited_add(&c, INT64_MAX, INT32_MAX - 10, INT32_MAX));
	CHECK(__percpu_counter_limited_add(&c, INT64_MAX, 100, INT32_MAX));
	want += (int64_t)(INT32_MAX - 10) + 100;
	CHECK_EQ(percpu_counter_sum(&c), want);
	percpu_counter_add_batch(&c, -(INT32_MAX - 1), INT32_MAX);
	want -= INT32_MAX - 1;
	CHECK_EQ(percpu_counter_sum(&c), want);
	/* From zeroed deltas: lock-free limited adds must not wrap a delta either. */
	percpu_counter_set(&c, 0);
	CHECK(__percpu_counter_limited_add(&c, INT64_MAX, INT32_MAX - 10, INT32_MAX));
	CHECK(__percpu_counter_limited_add(&c, INT64_MAX, 100, INT32_MAX));
	CHECK(__percpu_counter_limited_add(&c, INT64_MIN, -(INT32_MAX - 10), INT32_MAX));
	CHECK(__percpu_counter_limited_add(&c, INT64_MIN, -(INT32_MAX - 10), INT32_MAX));
	CHECK(__percpu_counter_limited_add(&c, INT64_MIN, -100, INT32_MAX));
	CHECK_EQ(percpu_counter_sum(&c), -(int64_t)(INT32_MAX - 10));
	percpu_counter_destroy(&c);
}

static void test_limited_add(void)
{
	struct percpu_counter c;
	int32_t b = percpu_counter_batch;
	int64_t bound = percpu_counter_error_bound(b);

	percpu_counter_init(&c, 0, GFP_KERNEL);
	pin(0);
	CHECK(percpu_counter_limited_add(&c, 10, 0));	/* 0 always succeeds */
	CHECK(percpu_counter_limited_add(&c, 10, 10));	/* == limit is fine */
	CHECK(!percpu_counter_limited_add(&c, 10, 1));
	CHECK_EQ(percpu_counter_sum(&c), 10);
	CHECK(!percpu_counter_limited_add(&c, 9, 1));	/* already above */
	/* Negative amounts: may not go below limit. */
	CHECK(percpu_counter_limited_add(&c, 5, -5));
	CHECK(!percpu_counter_limited_add(&c, 5, -1));
	CHECK_EQ(percpu_counter_sum(&c), 5);
	CHECK(percpu_counter_limited_add(&c, -100, -1));
	CHECK_EQ(percpu_counter_sum(&c), 4);
	/* Far from the limit: the lock-free path, into the delta. */
	percpu_counter_set(&c, 0);
	CHECK(percpu_counter_limited_add(&c, 10 * bound, 1));
	CHECK_EQ(percpu_counter_read(&c), 0);
	CHECK_EQ(percpu_counter_sum(&c), 1);
	/* Near the limit with pending deltas: decided by the exact sum. */
	percpu_counter_set(&c, 0);
	percpu_counter_add(&c, b - 1);	/* all pending */
	CHECK(!percpu_counter_limited_add(&c, b - 1, 1));
	CHECK(percpu_counter_limited_add(&c, b, 1));
	CHECK(!percpu_counter_limited_add(&c, b, 1));
	CHECK_EQ(percpu_counter_sum(&c), b);
	/* Amounts past the batch. */
	percpu_counter_set(&c, 0);
	CHECK(percpu_counter_limited_add(&c, 3LL * b, 3LL * b));
	CHECK(!percpu_counter_limited_add(&c, 3LL * b, 1));
	CHECK(!percpu_counter_limited_add(&c, 0, -3LL * b - 1));
	CHECK(percpu_counter_limited_add(&c, 0, -3LL * b));
	CHECK_EQ(percpu_counter_sum(&c), 0);
	unpin();
	percpu_counter_destroy(&c);
}

struct locker {
	struct percpu_counter *c;
	pthread_mutex_t m;
	pthread_cond_t cv;
	int state;
};

static void *hold_lock(void *arg)
{
	struct locker *l = arg;

	/* Take the count lock as a fold would (the sequence odd while held). */
	uint32_t *seq = &l->c->shared->seq;
	while (__atomic_fetch_or(seq, 1, __ATOMIC_ACQUIRE) & 1)
		;
	pthread_mutex_lock(&l->m);
	l->state = 1;
	pthread_cond_broadcast(&l->cv);
	while (l->state != 2)
		pthread_cond_wait(&l->cv, &l->m);
	pthread_mutex_unlock(&l->m);
	__atomic_store_n(seq, __atomic_load_n(seq, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
	if (__atomic_load_n(&l->c->shared->sleepers, __ATOMIC_RELAXED))
		syscall(SYS_futex, seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return NULL;
}

static void test_compare(void)
{
	struct percpu_counter c;
	int32_t b = percpu_counter_batch;
	int64_t bound = percpu_counter_error_bound(b);

	percpu_counter_init(&c, 0, GFP_KERNEL);
	pin(0);
	percpu_counter_add(&c, b - 1);	/* read 0, exact b - 1 */
	CHECK_EQ(percpu_counter_compare(&c, 0), 1);	/* precise path */
	CHECK_EQ(percpu_counter_compare(&c, b - 1), 0);
	CHECK_EQ(percpu_counter_compare(&c, b), -1);
	CHECK_EQ(__percpu_counter_compare(&c, b - 1, 1000), 0);
	unpin();

	/*
	 * Beyond the bound the lock-free read decides: with the lock held
	 * elsewhere compare must still answer (a sum would block).
	 */
	struct locker l = { .c = &c, .m = PTHREAD_MUTEX_INITIALIZER,
			    .cv = PTHREAD_COND_INITIALIZER };
	pthread_t t;
	pthread_create(&t, NULL, hold_lock, &l);
	pthread_mutex_lock(&l.m);
	while (l.state != 1)
		pthread_cond_wait(&l.cv, &l.m);
	pthread_mutex_unlock(&l.m);
	CHECK_EQ(percpu_counter_compare(&c, bound + 1), -1);
	CHECK_EQ(percpu_counter_compare(&c, -bound - 1), 1);
	pthread_mutex_lock(&l.m);
	l.state = 2;
	pthread_cond_broadcast(&l.cv);
	pthread_mutex_unlock(&l.m);
	pthread_join(t, NULL);
	percpu_counter_destroy(&c);
}

/*
 * A sum that waits long enough on a held lock goes to sleep on the
 * futex; the release must wake it (or its bounded sleep end), and the
 * sum it then returns is exact.
 */
static void *sum_thread(void *arg)
{
	struct percpu_counter *c = arg;
	int64_t *r = malloc(sizeof(*r));

	*r = percpu_counter_sum(c);
	return r;
}

static void test_lock_sleep(void)
{
	struct percpu_counter c;
	struct locker l = { .c = &c, .m = PTHREAD_MUTEX_INITIALIZER,
			    .cv = PTHREAD_COND_INITIALIZER };
	pthread_t holder, summer;
	void *r;

	percpu_counter_init(&c, 1234, GFP_KERNEL);
	pthread_create(&holder, NULL, hold_lock, &l);
	pthread_mutex_lock(&l.m);
	while (l.state != 1)
		pthread_cond_wait(&l.cv, &l.m);
	pthread_mutex_unlock(&l.m);
	pthread_create(&summer, NULL, sum_thread, &c);
	/* Long past the spins and yields: the summer sleeps. */
	uint32_t asleep = 0;
	for (int i = 0; i < 2000 && !asleep; i++) {
		asleep = __atomic_load_n(&c.shared->sleepers, __ATOMIC_RELAXED);
		usleep(100);
	}
	CHECK(asleep == 1);
	pthread_mutex_lock(&l.m);
	l.state = 2;
	pthread_cond_broadcast(&l.cv);
	pthread_mutex_unlock(&l.m);
	pthread_join(holder, NULL);
	pthread_join(summer, &r);
	CHECK_EQ(*(int64_t *)r, 1234);
	CHECK_EQ(c.shared->seq & 1, 0);
	free(r);
	percpu_counter_destroy(&c);
}

/* ---- writers racing a reader ------------------------------------------ */

#define NR_WRITERS 8
static struct percpu_counter shared;
static int64_t started, done;		/* amounts begun / completed */
static int writers_left;
static int positive_only;
static unsigned long iterations;

static void *writer(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg * 2654435761u;
	int32_t b = percpu_counter_batch;
	int64_t mine = 0;

	for (unsigned long i = 0; i < iterations; i++) {
		int64_t a;
		unsigned int r = rand_r(&seed);

		switch (r % 8) {
		case 0: a = b + (r >> 8) % 100; break;		/* past the batch */
		case 1: a = (r >> 8) % b; break;
		default: a = 1; break;
		}
		if (!positive_only && (r & 0x10000))
			a = -a;
		if ((i & 8191) == 0)
			pin((int)((i >> 13) + (uintptr_t)arg));	/* force migrations */
		__atomic_fetch_add(&started, a, __ATOMIC_SEQ_CST);
		switch ((r >> 20) % 4) {
		case 0: percpu_counter_add_batch(&shared, a, b); break;
		case 1: if (a == 1) { percpu_counter_inc(&shared); break; }
			/* fall through */
		default: percpu_counter_add(&shared, a); break;
		}
		__atomic_fetch_add(&done, a, __ATOMIC_SEQ_CST);
		mine += a;
	}
	unpin();
	__atomic_fetch_sub(&writers_left, 1, __ATOMIC_SEQ_CST);
	return (void *)(intptr_t)mine;
}

static void race(int positive)
{
	pthread_t t[NR_WRITERS];
	int64_t total = 0, bound = percpu_counter_error_bound(percpu_counter_batch);
	unsigned long checks = 0;
	unsigned int seed = 7;

	positive_only = positive;
	started = done = 0;
	writers_left = NR_WRITERS;
	CHECK_EQ(percpu_counter_init(&shared, 0, GFP_KERNEL), 0);
	for (int i = 0; i < NR_WRITERS; i++)
		pthread_create(&t[i], NULL, writer, (void *)(uintptr_t)(i + 1));
	while (__atomic_load_n(&writers_left, __ATOMIC_SEQ_CST)) {
		/*
		 * With positive amounts only the true value grows: at any
		 * instant during the call it lies in [done before, started after].
		 */
		int64_t lo = __atomic_load_n(&done, __ATOMIC_SEQ_CST);
		int64_t s = percpu_counter_sum(&shared);
		int64_t r = percpu_counter_read(&shared);
		int64_t rhs = lo - 2 * bound + rand_r(&seed) % (4 * bound + 1);
		int cmp = percpu_counter_compare(&shared, rhs);
		int64_t hi = __atomic_load_n(&started, __ATOMIC_SEQ_CST);

		if (positive) {
			if (s < lo || s > hi) {
				fprintf(stderr, "sum %lld outside [%lld, %lld]\n",
					(long long)s, (long long)lo, (long long)hi);
				failures++;
			}
			if (r <= lo - bound || r >= hi + bound) {
				fprintf(stderr, "read %lld beyond the bound %lld of [%lld, %lld]\n",
					(long long)r, (long long)bound, (long long)lo,
					(long long)hi);
				failures++;
			}
			if ((rhs < lo && cmp != 1) || (rhs > hi && cmp != -1)) {
				fprintf(stderr, "compare(%lld) = %d with value in [%lld, %lld]\n",
					(long long)rhs, cmp, (long long)lo, (long long)hi);
				failures++;
			}
		}
		checks++;
		if (failures > 20)
			break;
	}
	for (int i = 0; i < NR_WRITERS; i++) {
		void *ret;

		pthread_join(t[i], &ret);
		total += (intptr_t)ret;
	}
	CHECK_EQ(total, done);
	CHECK_EQ(percpu_counter_sum(&shared), total);
	int64_t r = percpu_counter_read(&shared);
	CHECK(r > total - bound && r < total + bound);
	CHECK_EQ(percpu_counter_compare(&shared, total), 0);
	CHECK_EQ(percpu_counter_compare(&shared, total - 1), 1);
	CHECK_EQ(percpu_counter_compare(&shared, total + 1), -1);
	printf("test_counter: race (%s): total %lld, read %lld, %lu checks\n",
	       positive ? "positive" : "mixed", (long long)total, (long long)r, checks);
	percpu_counter_destroy(&shared);
}

/* limited_add racing itself: the limit is never exceeded. */
static struct percpu_counter lim;
static int64_t lim_added;
#define LIMIT 100000

static void *limited_writer(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;

	for (unsigned long i = 0; i < iterations / 4; i++) {
		int64_t a = 1 + rand_r(&seed) % 50;

		if ((i & 4095) == 0)
			pin((int)(i >> 12) + (int)(uintptr_t)arg);
		if (percpu_counter_limited_add(&lim, LIMIT, a))
			__atomic_fetch_add(&lim_added, a, __ATOMIC_RELAXED);
	}
	unpin();
	return NULL;
}

static void test_limited_race(void)
{
	pthread_t t[NR_WRITERS];

	percpu_counter_init(&lim, 0, GFP_KERNEL);
	for (int i = 0; i < NR_WRITERS; i++)
		pthread_create(&t[i], NULL, limited_writer, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < NR_WRITERS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(percpu_counter_sum(&lim), lim_added);
	CHECK(lim_added <= LIMIT);
	printf("test_counter: limited_add race: %lld of %d\n", (long long)lim_added, LIMIT);
	percpu_counter_destroy(&lim);
}

int main(int argc, char **argv)
{
	const char *expect = getenv("PERCPU_EXPECT_MODE");
	const char *s = getenv("PERCPU_TEST_SCALE");

	if (s)
		scale = atof(s);
	if (argc > 1 && !strcmp(argv[1], "stress"))
		scale *= 10;
	iterations = (unsigned long)(200000 * scale);
	if (iterations < 1000)
		iterations = 1000;
	nr_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nr_online < 1)
		nr_online = 1;
	if (percpu_setup(NULL))
		return 1;

	test_basics();
	printf("test_counter: mode %s, batch %d, %u possible CPUs\n", percpu_mode_name(),
	       percpu_counter_batch, percpu_num_possible_cpus());
	if (expect && strcmp(expect, percpu_mode_name())) {
		fprintf(stderr, "test_counter: mode %s, expected %s\n", percpu_mode_name(), expect);
		return 1;
	}
	test_many();
	test_huge_batch();
	test_limited_add();
	test_compare();
	test_lock_sleep();
	race(1);
	race(0);
	test_limited_race();
	if (failures) {
		fprintf(stderr, "test_counter: %d failures\n", failures);
		return 1;
	}
	printf("test_counter: OK\n");
	return 0;
}
