/* SPDX-License-Identifier: MIT */
/*
 * percpu_counter's error bound inside a fold.  A fold moves a CPU's delta
 * into count under the lock in two steps (src/counter.c); while a thread
 * is stopped inside one, other threads on the same CPU keep adding.  The
 * test stops a fold in each step (pcpu_counter_fold_hook), fills the
 * folding CPU's delta from another thread on that CPU, and checks
 * percpu_counter_read() against the exact value: with CPUs 0 and 1 the
 * only ones used, it must be within batch x (2 + 1).  Delta left at the
 * far end in one step instead of two, the same construction is 4 x batch
 * - 4 away.
 *
 * The fold stopped is a CPU's second fold the same way, the one that
 * moves its delta to the far end of the window; CPU 1's delta is full
 * meanwhile, so the error is as large as the construction allows.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include <percpu/counter.h>

static struct percpu_counter c;
static int32_t b;
static int64_t exact;		/* adds that have returned (A's last one is in progress) */
static sem_t in_hook, resume;
static int hook_step;

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		exit(1);
	}
}

/* Stops the folding thread: the main thread looks at the counter meanwhile. */
static void hook(int step)
{
	hook_step = step;
	sem_post(&in_hook);
	while (sem_wait(&resume))
		;
}

static void *folder(void *arg)
{
	(void)arg;
	pin(0);
	percpu_counter_add(&c, b - 1);
	percpu_counter_inc(&c);			/* the first fold: the kernel's */
	percpu_counter_add(&c, b - 1);
	__atomic_fetch_add(&exact, 2 * (int64_t)b - 1, __ATOMIC_RELAXED);
	__atomic_store_n(&pcpu_counter_fold_hook, hook, __ATOMIC_RELEASE);
	percpu_counter_inc(&c);			/* the second: stopped in the hook */
	return NULL;
}

/* Fills CPU 0's delta up to batch - 1 from another thread on CPU 0. */
static void *filler(void *arg)
{
	int32_t *slot = percpu_ptr(c.counters, 0);
	int64_t n = 0;

	(void)arg;
	pin(0);
	while (__atomic_load_n(slot, __ATOMIC_RELAXED) < b - 1) {
		percpu_counter_inc(&c);
		n++;
	}
	__atomic_fetch_add(&exact, n, __ATOMIC_RELAXED);
	return NULL;
}

static void look(const char *when)
{
	int64_t r = percpu_counter_read(&c), e = __atomic_load_n(&exact, __ATOMIC_RELAXED);
	int64_t bound = (int64_t)b * 3;	/* two CPUs used, + 1 */

	printf("test_counter_window: %s: read %lld, exact %lld (+1 in progress), bound %lld\n",
	       when, (long long)r, (long long)e, (long long)bound);
	/* The add in progress may be counted or not. */
	CHECK((r - e < bound && e - r < bound) || (r - e - 1 < bound && e + 1 - r < bound));
}

int main(void)
{
	pthread_t a, f;

	if (percpu_setup(NULL) || percpu_counter_init(&c, 0, 0)) {
		perror("setup");
		return 1;
	}
	/* Two CPUs with a delta each (the UP build has one copy). */
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || percpu_num_possible_cpus() < 2) {
		printf("test_counter_window: needs 2 CPUs with a delta each, skipped\n");
		return 77;
	}
	b = percpu_counter_default_batch();
	sem_init(&in_hook, 0, 0);
	sem_init(&resume, 0, 0);

	/* CPU 1's delta: full. */
	pin(1);
	percpu_counter_add(&c, b - 1);
	CHECK(*percpu_ptr(c.counters, 1) == b - 1);

	__atomic_store_n(&exact, b - 1, __ATOMIC_RELAXED);
	pthread_create(&a, NULL, folder, NULL);
	for (int step = 1; step <= 2; step++) {
		while (sem_wait(&in_hook))
			;
		CHECK(hook_step == step);
		if (step == 1) {	/* the filler never folds: it stops at batch - 1 */
			pthread_create(&f, NULL, filler, NULL);
			pthread_join(f, NULL);
		}
		look(step == 1 ? "in step 1" : "in step 2");
		sem_post(&resume);
	}
	pthread_join(a, NULL);
	__atomic_store_n(&pcpu_counter_fold_hook, NULL, __ATOMIC_RELAXED);
	__atomic_fetch_add(&exact, 1, __ATOMIC_RELAXED);
	CHECK(percpu_counter_sum(&c) == __atomic_load_n(&exact, __ATOMIC_RELAXED));
	look("after");
	percpu_counter_destroy(&c);
	printf("test_counter_window: mode %s, batch %d\n", percpu_mode_name(), b);
	return check_report();
}
