/* SPDX-License-Identifier: MIT */
/*
 * Mixed modes stay exact: threads hammer this_cpu ops in rseq mode while
 * one of them switches the process to the atomic fallback mid-run
 * (pcpu_force_atomic_mode, as a thread without rseq would).  Critical
 * sections in flight at the switch must abort and redo their operation
 * as an atomic; none may commit a stale plain store over an atomic.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include <percpu/ops.h>

PERCPU_DEFINE(unsigned long, s_add);
PERCPU_DEFINE(unsigned long, s_cx);
static unsigned long *d_ret;

static unsigned long iterations = 2000000;
static unsigned long expect_add, expect_ret, expect_cx;
static int nr_cpus;
static int mode_before_switch = -1;

/*
 * The switch's guarantee, deterministically: a thread that read the open
 * rseq word before the switch and enters its critical section after it
 * (stress can hardly hit that window) must leave for the slow path, not
 * commit a plain add.
 */
static uint64_t stale_word;
static int stale_committed = -1;

static void stale_section_check_before(void)
{
	stale_word = pcpu__rseq_word();
}

static void stale_section_check_after(void)
{
#if PERCPU_ARCH_RSEQ
	if (stale_word)
		stale_committed = pcpu_arch_add_8(stale_word, percpu__addr(d_ret), 1);
#endif
}

static void *worker(void *arg)
{
	int id = (int)(uintptr_t)arg;
	unsigned long add = 0, ret = 0, cx = 0;

	for (unsigned long i = 0; i < iterations; i++) {
		if (id == 0 && i == iterations / 2) {
			mode_before_switch = percpu_hot.mode;
			stale_section_check_before();
			pcpu_force_atomic_mode("test_ops_mixed");
			stale_section_check_after();
		}
		if ((i & 4095) == 0) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET((int)((i >> 12) + (unsigned long)id) % nr_cpus, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		percpu_this_add(PERCPU_VAR(s_add), 2);
		add += 2;
		(void)percpu_this_add_return(d_ret, 1);
		ret++;
		if ((i & 7) == 0) {
			unsigned long o = percpu_this_read(PERCPU_VAR(s_cx));
			while (!percpu_this_try_cmpxchg(PERCPU_VAR(s_cx), &o, o + 1))
				;
			cx++;
		}
	}
	__atomic_fetch_add(&expect_add, add, __ATOMIC_RELAXED);
	__atomic_fetch_add(&expect_ret, ret, __ATOMIC_RELAXED);
	__atomic_fetch_add(&expect_cx, cx, __ATOMIC_RELAXED);
	return NULL;
}

int main(void)
{
	const char *expect = getenv("PERCPU_EXPECT_MODE");
	const char *scale = getenv("PERCPU_TEST_SCALE");
	unsigned long add = 0, ret = 0, cx = 0;
	unsigned int cpu;

	if (scale)
		iterations = (unsigned long)(iterations * atof(scale));
	if (iterations < 4096)
		iterations = 4096;
	if (percpu_setup(NULL))
		return 1;
	d_ret = PERCPU_ALLOC(unsigned long);
	/* Open the fast path, then check the mode we start in. */
	percpu_this_inc(d_ret);
	percpu_this_dec(d_ret);
	const char *start = percpu_mode_name();
	printf("test_ops_mixed: starting in mode %s\n", start);
	if (expect && strcmp(start, expect)) {
		printf("expected to start in %s\nFAILED\n", expect);
		return 1;
	}
	nr_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nr_cpus < 1)
		nr_cpus = 1;
	int n = 4 * nr_cpus;
	pthread_t tid[n];
	for (int i = 0; i < n; i++)
		pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)i);
	for (int i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	percpu_for_each_possible_cpu(cpu) {
		add += *percpu_ptr(PERCPU_VAR(s_add), cpu);
		ret += *percpu_ptr(d_ret, cpu);
		cx += *percpu_ptr(PERCPU_VAR(s_cx), cpu);
	}
	int bad = add != expect_add || ret != expect_ret || cx != expect_cx ||
		  strcmp(percpu_mode_name(), "atomic") || stale_committed == 1 ||
		  mode_before_switch != (!strcmp(start, "rseq") ? PCPU_MODE_RSEQ : PCPU_MODE_ATOMIC);
	printf("  add %lu/%lu ret %lu/%lu cmpxchg %lu/%lu; mode now %s; stale section %s\n%s\n",
	       add, expect_add, ret, expect_ret, cx, expect_cx, percpu_mode_name(),
	       stale_committed < 0 ? "not tried" : stale_committed ? "COMMITTED" : "left",
	       bad ? "FAILED" : "ok");
	return bad;
}
