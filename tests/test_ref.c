/* SPDX-License-Identifier: MIT */
/*
 * percpu_ref: every call's single-thread semantics, then the kill race:
 * 4x more threads than CPUs (at least 8) hammer get/put/tryget/
 * tryget_live while another thread kills the ref (and, in half the
 * rounds, flips it between atomic and per-CPU mode first).  release must
 * run exactly once, and only when every reference taken was put: the test
 * counts outstanding references itself and release asserts the count is 0.
 *
 * PERCPU_EXPECT_MODE=rseq|atomic|up: the mode the run must be in.
 * PERCPU_TEST_SCALE scales the work; argument "stress": 5x the rounds.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <percpu/linux.h>	/* the kernel's names, ref included */

static int failures;
#define CHECK(c) do {								\
	if (!(c)) {								\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);\
		__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);		\
	}									\
} while (0)
#define CHECK_EQ(a, b) do {							\
	long long a_ = (long long)(a), b_ = (long long)(b);			\
	if (a_ != b_) {								\
		fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n",	\
			__FILE__, __LINE__, #a, a_, #b, b_);			\
		__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);		\
	}									\
} while (0)

static int released, confirmed;
static struct percpu_ref *confirm_expect;

static void release_count(struct percpu_ref *ref)
{
	(void)ref;
	__atomic_fetch_add(&released, 1, __ATOMIC_SEQ_CST);
}

static void confirm_kill(struct percpu_ref *ref)
{
	CHECK(ref == confirm_expect);
	CHECK(percpu_ref_is_dying(ref));
	CHECK(!percpu_ref_tryget_live(ref));	/* dead: fails from now on */
	CHECK_EQ(released, 0);			/* confirm comes first */
	confirmed++;
}

static void confirm_switch(struct percpu_ref *ref)
{
	CHECK(ref->percpu_count_ptr & __PERCPU_REF_ATOMIC);
	confirmed++;
}

static bool is_atomic(struct percpu_ref *r)
{
	return r->percpu_count_ptr & __PERCPU_REF_ATOMIC;
}

static void test_basics(void)
{
	struct percpu_ref r;

	released = confirmed = 0;
	CHECK_EQ(percpu_ref_init(&r, release_count, 0, GFP_KERNEL), 0);
	CHECK(!is_atomic(&r));
	CHECK(!percpu_ref_is_zero(&r));
	CHECK(!percpu_ref_is_dying(&r));
	percpu_ref_get(&r);
	percpu_ref_get_many(&r, 5);
	CHECK(percpu_ref_tryget(&r));
	CHECK(percpu_ref_tryget_many(&r, 2));
	CHECK(percpu_ref_tryget_live(&r));
	percpu_ref_put_many(&r, 4);
	percpu_ref_put(&r);
	/* Outstanding: 1 + 5 + 1 + 2 + 1 - 5 = 5 besides the initial one. */
	confirm_expect = &r;
	percpu_ref_kill_and_confirm(&r, confirm_kill);
	CHECK_EQ(confirmed, 1);
	CHECK(percpu_ref_is_dying(&r));
	CHECK(is_atomic(&r));
	CHECK(!percpu_ref_is_zero(&r));
	CHECK(!percpu_ref_tryget_live(&r));
	CHECK(percpu_ref_tryget(&r));		/* count not zero: tryget works */
	CHECK_EQ(r.data->count, 6);
	percpu_ref_put_many(&r, 5);
	CHECK_EQ(released, 0);
	percpu_ref_put(&r);
	CHECK_EQ(released, 1);
	CHECK(percpu_ref_is_zero(&r));
	CHECK(!percpu_ref_tryget(&r));		/* zero: even tryget fails */
	CHECK(!percpu_ref_tryget_many(&r, 3));
	CHECK(!percpu_ref_tryget_live(&r));
	CHECK_EQ(released, 1);
	percpu_ref_exit(&r);
	CHECK(percpu_ref_is_zero(&r));		/* the count kept by exit */
	CHECK(percpu_ref_is_dying(&r));
	percpu_ref_exit(&r);			/* twice: a no-op */

	/* Kill with nothing outstanding releases at once. */
	released = 0;
	percpu_ref_init(&r, release_count, 0, GFP_KERNEL);
	percpu_ref_kill(&r);
	CHECK_EQ(released, 1);
	percpu_ref_exit(&r);

	/* exit of a live ref stashes a non-zero count. */
	percpu_ref_init(&r, release_count, PERCPU_REF_INIT_ATOMIC, GFP_KERNEL);
	percpu_ref_exit(&r);
	CHECK(!percpu_ref_is_zero(&r));
}

static void test_init_dead(void)
{
	struct percpu_ref r;

	released = 0;
	CHECK_EQ(percpu_ref_init(&r, release_count, PERCPU_REF_INIT_DEAD, GFP_KERNEL), 0);
	CHECK(percpu_ref_is_dying(&r));
	CHECK(percpu_ref_is_zero(&r));
	CHECK(is_atomic(&r));
	CHECK(!percpu_ref_tryget(&r));
	CHECK(!percpu_ref_tryget_live(&r));
	/* INIT_DEAD implies ALLOW_REINIT: reinit gives one reference, per-CPU mode. */
	percpu_ref_reinit(&r);
	CHECK(!percpu_ref_is_dying(&r));
	CHECK(!is_atomic(&r));
	CHECK(!percpu_ref_is_zero(&r));
	CHECK(percpu_ref_tryget_live(&r));
	percpu_ref_put(&r);
	percpu_ref_kill(&r);
	CHECK_EQ(released, 1);
	CHECK(percpu_ref_is_zero(&r));
	percpu_ref_exit(&r);
}

static void test_init_atomic(void)
{
	struct percpu_ref r;

	released = confirmed = 0;
	CHECK_EQ(percpu_ref_init(&r, release_count, PERCPU_REF_INIT_ATOMIC, GFP_KERNEL), 0);
	CHECK(is_atomic(&r));
	CHECK(!percpu_ref_is_dying(&r));
	percpu_ref_get_many(&r, 3);
	CHECK_EQ(r.data->count, 4);
	percpu_ref_put(&r);
	CHECK(percpu_ref_tryget_live(&r));	/* atomic but live */
	CHECK_EQ(r.data->count, 4);
	/* switch_to_atomic on an atomic ref: confirm runs at once. */
	percpu_ref_switch_to_atomic(&r, confirm_switch);
	CHECK_EQ(confirmed, 1);
	percpu_ref_switch_to_percpu(&r);
	CHECK(!is_atomic(&r));
	percpu_ref_get(&r);
	percpu_ref_put_many(&r, 2);
	/* Per-CPU mode: never zero, whatever the per-CPU counts say. */
	CHECK(!percpu_ref_is_zero(&r));
	percpu_ref_switch_to_atomic_sync(&r);
	CHECK(is_atomic(&r));
	CHECK_EQ(r.data->count, 3);
	percpu_ref_switch_to_percpu(&r);
	CHECK(!is_atomic(&r));
	percpu_ref_put_many(&r, 2);
	CHECK_EQ(released, 0);
	percpu_ref_kill(&r);
	CHECK_EQ(released, 1);
	percpu_ref_exit(&r);
}

static void test_switching(void)
{
	struct percpu_ref r;

	released = confirmed = 0;
	/* switch_to_atomic on a live ref: puts go to the atomic count. */
	percpu_ref_init(&r, release_count, PERCPU_REF_ALLOW_REINIT, GFP_KERNEL);
	percpu_ref_get_many(&r, 10);
	percpu_ref_switch_to_atomic(&r, confirm_switch);
	CHECK_EQ(confirmed, 1);
	CHECK(is_atomic(&r));
	CHECK(!percpu_ref_is_dying(&r));
	CHECK_EQ(r.data->count, 11);
	percpu_ref_put_many(&r, 10);
	CHECK_EQ(r.data->count, 1);
	/* reinit/resurrect keep atomic mode while switch_to_atomic is in force. */
	percpu_ref_kill(&r);
	CHECK_EQ(released, 1);
	percpu_ref_reinit(&r);
	CHECK(is_atomic(&r));
	CHECK(!percpu_ref_is_dying(&r));
	CHECK_EQ(r.data->count, 1);
	percpu_ref_switch_to_percpu(&r);
	CHECK(!is_atomic(&r));
	/* Atomic mode on a live ref: reaching zero releases (kernel semantics). */
	percpu_ref_switch_to_atomic_sync(&r);
	percpu_ref_put(&r);
	CHECK_EQ(released, 2);
	percpu_ref_exit(&r);

	/* Without ALLOW_REINIT a ref cannot go back to per-CPU mode. */
	percpu_ref_init(&r, release_count, 0, GFP_KERNEL);
	percpu_ref_switch_to_atomic_sync(&r);
	percpu_ref_switch_to_percpu(&r);	/* refused, with a message */
	CHECK(is_atomic(&r));
	percpu_ref_exit(&r);
}

static void test_reinit_cycles(void)
{
	struct percpu_ref r;

	released = 0;
	percpu_ref_init(&r, release_count, PERCPU_REF_ALLOW_REINIT, GFP_KERNEL);
	for (int i = 0; i < 100; i++) {
		CHECK(!is_atomic(&r));
		percpu_ref_get_many(&r, (unsigned long)i + 1);
		if (i % 3 == 0) {
			/* resurrect: killed but still referenced. */
			percpu_ref_kill(&r);
			CHECK(percpu_ref_is_dying(&r));
			percpu_ref_resurrect(&r);
			CHECK(!percpu_ref_is_dying(&r));
			CHECK(!is_atomic(&r));
			CHECK_EQ(released, i);
		}
		percpu_ref_kill(&r);
		CHECK(!percpu_ref_tryget_live(&r));
		percpu_ref_put_many(&r, (unsigned long)i + 1);
		CHECK_EQ(released, i + 1);
		CHECK(percpu_ref_is_zero(&r));
		percpu_ref_reinit(&r);
		CHECK(!percpu_ref_is_zero(&r));
	}
	percpu_ref_kill(&r);
	CHECK_EQ(released, 101);
	percpu_ref_exit(&r);
}

/* ---- the kill race ------------------------------------------------------ */

struct race {
	struct percpu_ref ref;
	long outstanding;	/* references the test knows are held */
	int released;
	int stop;
	int flip;		/* toggle atomic/per-CPU before the kill */
	unsigned long ops_before_kill;
	unsigned long ops;
};

static void race_release(struct percpu_ref *ref)
{
	struct race *r = (struct race *)((char *)ref - __builtin_offsetof(struct race, ref));

	/* Every get was put, and this is the only release. */
	CHECK_EQ(__atomic_load_n(&r->outstanding, __ATOMIC_SEQ_CST), 0);
	CHECK_EQ(__atomic_fetch_add(&r->released, 1, __ATOMIC_SEQ_CST), 0);
}

static void take(struct race *r)
{
	__atomic_fetch_add(&r->outstanding, 1, __ATOMIC_SEQ_CST);
}

static void drop(struct race *r)
{
	__atomic_fetch_sub(&r->outstanding, 1, __ATOMIC_SEQ_CST);
}

static void *hammer(void *arg)
{
	struct race *r = arg;
	unsigned int seed = (unsigned int)(uintptr_t)&seed;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		unsigned int k = rand_r(&seed);
		bool got;

		/* Our own reference first: tryget_live, or tryget. */
		got = (k & 1) ? percpu_ref_tryget_live(&r->ref) : percpu_ref_tryget(&r->ref);
		if (!got)
			break;		/* dead (live) or zero */
		take(r);
		if (percpu_ref_is_zero(&r->ref))
			CHECK(0 && "zero while a reference is held");
		/* Nested gets and puts under it. */
		for (unsigned int i = 0; i < 1 + (k >> 4) % 8; i++) {
			unsigned long n = 1 + ((k >> 8) & 3);

			percpu_ref_get_many(&r->ref, n);
			__atomic_fetch_add(&r->outstanding, (long)n, __ATOMIC_SEQ_CST);
			if ((k >> 12) & 1) {
				percpu_ref_get(&r->ref);
				take(r);
				drop(r);
				percpu_ref_put(&r->ref);
			}
			__atomic_fetch_sub(&r->outstanding, (long)n, __ATOMIC_SEQ_CST);
			percpu_ref_put_many(&r->ref, n);
		}
		if ((k & 255) == 0)
			sched_yield();
		__atomic_fetch_add(&r->ops, 1, __ATOMIC_RELAXED);
		drop(r);
		percpu_ref_put(&r->ref);
	}
	return NULL;
}

static void *killer(void *arg)
{
	struct race *r = arg;

	while (__atomic_load_n(&r->ops, __ATOMIC_RELAXED) < r->ops_before_kill / 2)
		sched_yield();
	if (r->flip) {
		percpu_ref_switch_to_atomic_sync(&r->ref);
		sched_yield();
		percpu_ref_switch_to_percpu(&r->ref);
	}
	while (__atomic_load_n(&r->ops, __ATOMIC_RELAXED) < r->ops_before_kill)
		sched_yield();
	percpu_ref_kill(&r->ref);
	return NULL;
}

static void kill_race(int rounds, int nthreads, unsigned long ops)
{
	unsigned long total_ops = 0;
	pthread_t t[256], k;

	for (int round = 0; round < rounds; round++) {
		struct race *r = calloc(1, sizeof(*r));

		r->flip = round & 1;
		r->ops_before_kill = ops / 2 + (unsigned long)rand() % (ops + 1);
		CHECK_EQ(percpu_ref_init(&r->ref, race_release,
					 r->flip ? PERCPU_REF_ALLOW_REINIT : 0, GFP_KERNEL), 0);
		for (int i = 0; i < nthreads; i++)
			pthread_create(&t[i], NULL, hammer, r);
		pthread_create(&k, NULL, killer, r);
		pthread_join(k, NULL);
		/* Dead: tryget_live fails, and threads stop once tryget sees zero. */
		for (int i = 0; i < nthreads; i++)
			pthread_join(t[i], NULL);
		CHECK_EQ(r->released, 1);
		CHECK_EQ(r->outstanding, 0);
		CHECK(percpu_ref_is_zero(&r->ref));
		total_ops += r->ops;
		percpu_ref_exit(&r->ref);
		free(r);
		if (failures)
			break;
	}
	printf("test_ref: kill race: %d rounds x %d threads, %lu reference cycles\n",
	       rounds, nthreads, total_ops);
}

/*
 * The rseq get's guarantee, deterministically: a critical section that
 * read per-CPU mode and is still in flight when a switch to atomic runs
 * must be restarted (and then see atomic mode), never commit its add
 * after the switch summed the counts.  The section below reads the mode
 * word, says so, and spins inside the section until the switch is done;
 * stress can hardly hit that window.
 */
#if PERCPU_SMP && PERCPU_ARCH_RSEQ && defined(__x86_64__)
static int stale_read, stale_go, stale_cpu;

static int stale_get(struct percpu_ref *ref)
{
	uint64_t w = pcpu__rseq_word();
	PCPU__X86_LOCALS;
	uint64_t p;

	if (!w)
		return -1;
	__asm__ volatile goto(PCPU__X86_ENTER
		     "movq (%[pp]), %[p]\n\t"
		     "movl $1, (%[rd])\n"
		     "9:\n\t"
		     "pause\n\t"
		     "cmpl $0, (%[go])\n\t"
		     "je 9b\n\t"
		     "testq $3, %[p]\n\t"
		     "jnz " PCPU__X86_FULL "\n\t"
		     "addq $1, (%[off], %[p])\n\t"
		     PCPU__X86_EXIT
		     PCPU__X86_FULL_EXIT
		     : PCPU__X86_OUT, [p] "=&r"(p)
		     : PCPU__X86_IN, [pp] "r"(&ref->percpu_count_ptr), [rd] "r"(&stale_read),
		       [go] "r"(&stale_go)
		     : "memory", "cc" : slow, full);
	return 1;	/* committed a per-CPU add */
full:
	return 0;	/* saw atomic mode */
slow:
	return -1;
}

/* The result, and whether the reader was preempted (then a restart proves nothing). */
struct stale_result {
	int r;
	bool preempted;
};

static long involuntary_switches(void)
{
	struct rusage u;

	return getrusage(RUSAGE_THREAD, &u) ? -1 : u.ru_nivcsw;
}

static void *stale_reader(void *arg)
{
	struct stale_result *res = malloc(sizeof(*res));
	cpu_set_t set;
	long before;

	res->r = -1;
	CPU_ZERO(&set);
	CPU_SET(stale_cpu, &set);
	if (!sched_setaffinity(0, sizeof(set), &set)) {
		before = involuntary_switches();
		res->r = stale_get(arg);
		res->preempted = before < 0 || involuntary_switches() != before;
	}
	if (res->r < 0)
		__atomic_store_n(&stale_read, -1, __ATOMIC_RELEASE);	/* nothing to test */
	return res;
}

/* One attempt: 1 tested, 0 inconclusive (preempted), -1 cannot run here. */
static int stale_attempt(void)
{
	struct percpu_ref ref;
	struct stale_result *res;
	pthread_t t;
	int tested;

	released = 0;
	CHECK_EQ(percpu_ref_init(&ref, release_count, PERCPU_REF_ALLOW_REINIT, GFP_KERNEL), 0);
	stale_read = stale_go = 0;
	pthread_create(&t, NULL, stale_reader, &ref);
	while (!__atomic_load_n(&stale_read, __ATOMIC_ACQUIRE))
		;
	if (__atomic_load_n(&stale_read, __ATOMIC_ACQUIRE) > 0)
		percpu_ref_switch_to_atomic_sync(&ref);
	__atomic_store_n(&stale_go, 1, __ATOMIC_RELEASE);
	pthread_join(t, (void **)&res);
	tested = res->r < 0 ? -1 : !res->preempted;
	if (res->r >= 0) {
		if (tested)
			CHECK_EQ(res->r, 0);	/* restarted, then atomic: no late per-CPU add */
		if (res->r == 0)
			percpu_ref_get(&ref);	/* the get the section stood for */
		percpu_ref_put(&ref);
	}
	percpu_ref_kill(&ref);
	CHECK_EQ(released, 1);		/* every reference was counted */
	percpu_ref_exit(&ref);
	free(res);
	return tested;
}

static void test_stale_section(void)
{
	cpu_set_t saved, set;
	int cpus[2], n = 0, tested = 0;

	/* Two CPUs this process may use: the reader spins on one, the switch runs on the other. */
	if (strcmp(percpu_mode_name(), "rseq") || sched_getaffinity(0, sizeof(saved), &saved))
		return;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &saved))
			cpus[n++] = c;
	CPU_ZERO(&set);
	if (n < 2)
		return;
	CPU_SET(cpus[0], &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return;
	stale_cpu = cpus[1];
	/* A reader preempted meanwhile restarts anyway: try again, up to 50 times. */
	for (int i = 0; i < 50 && !tested; i++) {
		tested = stale_attempt();
		if (tested < 0)
			break;
	}
	printf("test_ref: stale section %s\n", tested > 0 ? "tested" :
	       tested < 0 ? "cannot run here" : "inconclusive (reader always preempted)");
	sched_setaffinity(0, sizeof(saved), &saved);
}
#else
static void test_stale_section(void)
{
}
#endif

int main(int argc, char **argv)
{
	const char *expect = getenv("PERCPU_EXPECT_MODE");
	const char *s = getenv("PERCPU_TEST_SCALE");
	double scale = s ? atof(s) : 1.0;
	int rounds = 200, nthreads;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (argc > 1 && !strcmp(argv[1], "stress"))
		rounds *= 5;
	if (percpu_setup(NULL))
		return 1;
	test_basics();
	printf("test_ref: mode %s\n", percpu_mode_name());
	if (expect && strcmp(expect, percpu_mode_name())) {
		fprintf(stderr, "test_ref: mode %s, expected %s\n", percpu_mode_name(), expect);
		return 1;
	}
	test_init_dead();
	test_init_atomic();
	test_switching();
	test_reinit_cycles();
	test_stale_section();
	nthreads = (int)(ncpu < 1 ? 1 : ncpu) * 4;
	if (nthreads < 8)
		nthreads = 8;
	if (nthreads > 256)
		nthreads = 256;
	srand(12345);
	kill_race((int)(rounds * (scale < 1 ? scale : 1)) + 1, nthreads,
		  (unsigned long)(2000 * scale) + 10);
	if (failures) {
		fprintf(stderr, "test_ref: %d failures\n", failures);
		return 1;
	}
	printf("test_ref: OK\n");
	return 0;
}
