/* SPDX-License-Identifier: MIT */
/*
 * Exactness under migration and signals: 4x more threads than CPUs, each
 * moving itself between CPUs with sched_setaffinity while another thread
 * sends it SIGUSR1 (the handler does its own this_cpu increment), doing
 * add / inc / add_return / try_cmpxchg increment loops on static and
 * dynamic variables.  At the end the sum of every variable over the
 * possible CPUs equals what was added, exactly.
 *
 * PERCPU_EXPECT_MODE=rseq|atomic: the mode the run must be in, so a
 * silent fallback cannot pass as rseq.  PERCPU_TEST_SCALE scales the
 * work (0.01 under valgrind).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <percpu/ops.h>

PERCPU_DEFINE(unsigned long, s_add);
PERCPU_DEFINE(long, s_cmpxchg);
PERCPU_DEFINE(uint16_t, s_u16);
PERCPU_DEFINE(unsigned long, s_signal);

static unsigned long *d_inc;
static unsigned long *d_ret;
static uint32_t *d_cmpxchg32;

static unsigned long expect_add, expect_inc, expect_ret, expect_cmpxchg, expect_u16;
static unsigned long expect_signal;
static unsigned long iterations = 1000000;
static int stop_signals, finished;
static cpu_set_t allowed;
static int nr_allowed;
static int cpus_allowed[CPU_SETSIZE];

static void on_sigusr1(int sig)
{
	(void)sig;
	percpu_this_inc(PERCPU_VAR(s_signal));
	__atomic_fetch_add(&expect_signal, 1, __ATOMIC_RELAXED);
}

static void move_somewhere(unsigned int *seed)
{
	cpu_set_t set;
	int r = rand_r(seed) % (nr_allowed + 1);

	if (r == nr_allowed) {
		set = allowed;		/* sometimes: let the scheduler choose */
	} else {
		CPU_ZERO(&set);
		CPU_SET(cpus_allowed[r], &set);
	}
	sched_setaffinity(0, sizeof(set), &set);
}

static void *worker(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg * 7919u + 1;
	unsigned long add = 0, inc = 0, ret = 0, cx = 0, u16 = 0;

	for (unsigned long i = 0; i < iterations; i++) {
		unsigned long v = (i & 7) + 1;

		if ((i & 255) == 0)
			move_somewhere(&seed);
		percpu_this_add(PERCPU_VAR(s_add), v);
		add += v;
		percpu_this_inc(d_inc);
		inc++;
		(void)percpu_this_add_return(d_ret, 3);
		ret += 3;
		percpu_this_add(PERCPU_VAR(s_u16), (uint16_t)v);
		u16 += v;
		if ((i & 3) == 0) {
			long old = percpu_this_read(PERCPU_VAR(s_cmpxchg));
			while (!percpu_this_try_cmpxchg(PERCPU_VAR(s_cmpxchg), &old, old + 1))
				;
			uint32_t o32 = percpu_this_read(d_cmpxchg32);
			while (!percpu_this_try_cmpxchg(d_cmpxchg32, &o32, o32 + 1))
				;
			cx++;
		}
	}
	__atomic_fetch_add(&expect_add, add, __ATOMIC_RELAXED);
	__atomic_fetch_add(&expect_inc, inc, __ATOMIC_RELAXED);
	__atomic_fetch_add(&expect_ret, ret, __ATOMIC_RELAXED);
	__atomic_fetch_add(&expect_cmpxchg, cx, __ATOMIC_RELAXED);
	__atomic_fetch_add(&expect_u16, u16, __ATOMIC_RELAXED);
	/* Stay joinable-but-alive until the signaller stops aiming at us. */
	__atomic_fetch_add(&finished, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&stop_signals, __ATOMIC_ACQUIRE))
		usleep(100);
	return NULL;
}

struct targets {
	pthread_t *tid;
	int n;
};

static void *signaller(void *arg)
{
	struct targets *t = arg;
	unsigned int seed = 42;

	while (!__atomic_load_n(&stop_signals, __ATOMIC_RELAXED)) {
		pthread_kill(t->tid[rand_r(&seed) % t->n], SIGUSR1);
		percpu_this_inc(PERCPU_VAR(s_signal));	/* the sender counts too */
		__atomic_fetch_add(&expect_signal, 1, __ATOMIC_RELAXED);
		usleep(20);
	}
	return NULL;
}

static int check(const char *name, unsigned long got, unsigned long want)
{
	printf("  %-10s %14lu %14lu %s\n", name, got, want, got == want ? "ok" : "MISMATCH");
	return got != want;
}

int main(void)
{
	const char *expect = getenv("PERCPU_EXPECT_MODE");
	const char *scale = getenv("PERCPU_TEST_SCALE");
	unsigned int cpu;
	int bad = 0;

	if (scale)
		iterations = (unsigned long)(iterations * atof(scale));
	if (iterations < 1024)
		iterations = 1024;
	if (percpu_setup(NULL)) {
		perror("percpu_setup");
		return 1;
	}
	d_inc = PERCPU_ALLOC(unsigned long);
	d_ret = PERCPU_ALLOC(unsigned long);
	d_cmpxchg32 = PERCPU_ALLOC(uint32_t);
	if (!d_inc || !d_ret || !d_cmpxchg32) {
		perror("percpu_alloc");
		return 1;
	}
	sched_getaffinity(0, sizeof(allowed), &allowed);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed))
			cpus_allowed[nr_allowed++] = c;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	int n = 4 * nr_allowed;
	pthread_t tid[n], sig;
	struct targets t = { tid, n };
	for (int i = 0; i < n; i++)
		pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)i);
	pthread_create(&sig, NULL, signaller, &t);
	while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < n)
		usleep(1000);
	__atomic_store_n(&stop_signals, 1, __ATOMIC_RELEASE);
	pthread_join(sig, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(tid[i], NULL);

	unsigned long add = 0, inc = 0, ret = 0, cx = 0, cx32 = 0, u16 = 0, sg = 0;
	percpu_for_each_possible_cpu(cpu) {
		add += *percpu_ptr(PERCPU_VAR(s_add), cpu);
		inc += *percpu_ptr(d_inc, cpu);
		ret += *percpu_ptr(d_ret, cpu);
		cx += (unsigned long)*percpu_ptr(PERCPU_VAR(s_cmpxchg), cpu);
		cx32 += *percpu_ptr(d_cmpxchg32, cpu);
		u16 += *percpu_ptr(PERCPU_VAR(s_u16), cpu);
		sg += *percpu_ptr(PERCPU_VAR(s_signal), cpu);
	}
	printf("test_migration: mode %s, index %s, %d threads on %d CPUs, %lu iterations each\n",
	       percpu_mode_name(), percpu_index_mode() == PERCPU_INDEX_MM_CID ? "mm_cid" : "cpu",
	       n, nr_allowed, iterations);
	printf("  %-10s %14s %14s\n", "variable", "sum", "expected");
	bad |= check("s_add", add, expect_add);
	bad |= check("d_inc", inc, expect_inc);
	bad |= check("d_ret", ret, expect_ret);
	bad |= check("s_cmpxchg", cx, expect_cmpxchg);
	bad |= check("d_cmpxchg", cx32, expect_cmpxchg);
	bad |= check("s_u16", u16 & 0xffff, expect_u16 & 0xffff);
	bad |= check("s_signal", sg, expect_signal);
	if (expect && strcmp(expect, percpu_mode_name())) {
		printf("expected mode %s, ran in %s\n", expect, percpu_mode_name());
		bad = 1;
	}
	const char *eidx = getenv("PERCPU_EXPECT_INDEX");
	if (eidx && strcmp(eidx, percpu_index_mode() == PERCPU_INDEX_MM_CID ? "mm_cid" : "cpu")) {
		printf("expected index mode %s\n", eidx);
		bad = 1;
	}
	printf("%s\n", bad ? "FAILED" : "ok");
	return bad;
}
