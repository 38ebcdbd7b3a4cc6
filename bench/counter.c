/* SPDX-License-Identifier: MIT */
/*
 * percpu-bench counter | ref: the cost of percpu_counter_add and of a
 * percpu_ref get+put, with 1, 2 and 8 threads, against the baselines in
 * the same run: a shared atomic (__atomic_fetch_add) and a plain per-CPU
 * counter (percpu_this_add).  Wall ns/op is per thread (elapsed time /
 * iterations); CPU ns/op is process CPU time / all operations.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include <percpu/counter.h>
#include <percpu/ops.h>
#include <percpu/ref.h>

static const int thread_counts[] = { 1, 2, 8 };

struct target {
	long shared __attribute__((aligned(64)));	/* the atomic baseline */
	long __percpu *pcpu;
	struct percpu_counter counter;
	struct percpu_ref ref;
};

static struct target tg;

static void run_atomic_add(void *arg, int thread, uint64_t n)
{
	(void)arg, (void)thread;
	for (uint64_t i = 0; i < n; i++)
		__atomic_fetch_add(&tg.shared, 1, __ATOMIC_RELAXED);
}

static void run_this_add(void *arg, int thread, uint64_t n)
{
	(void)arg, (void)thread;
	for (uint64_t i = 0; i < n; i++)
		percpu_this_add(tg.pcpu, 1);
}

static void run_counter_add(void *arg, int thread, uint64_t n)
{
	(void)arg, (void)thread;
	for (uint64_t i = 0; i < n; i++)
		percpu_counter_add(&tg.counter, 1);
}

/*
 * For comparison only: an add_return fast path (one rseq op).  Cheaper,
 * but a writer preempted between its add_return and its fold leaves a
 * delta past the batch, so read() has no fixed error bound; the library
 * uses the cmpxchg path for that reason (include/percpu/counter.h).
 */
static void run_counter_add_return(void *arg, int thread, uint64_t n)
{
	(void)arg, (void)thread;
	int32_t b = percpu_counter_default_batch();
	for (uint64_t i = 0; i < n; i++) {
		int32_t v = percpu_this_add_return(tg.counter.counters, 1);
		if (pcpu__unlikely(v >= b))
			percpu_counter__fold(&tg.counter, 0, b);
	}
}

/* An atomic refcount's get + put (the put tests for zero, as a ref must). */
static void run_atomic_getput(void *arg, int thread, uint64_t n)
{
	(void)arg, (void)thread;
	for (uint64_t i = 0; i < n; i++) {
		__atomic_fetch_add(&tg.shared, 1, __ATOMIC_RELAXED);
		if (__atomic_sub_fetch(&tg.shared, 1, __ATOMIC_ACQ_REL) == 0)
			abort();
	}
}

static void run_two_this_add(void *arg, int thread, uint64_t n)
{
	(void)arg, (void)thread;
	for (uint64_t i = 0; i < n; i++) {
		percpu_this_add(tg.pcpu, 1);
		percpu_this_add(tg.pcpu, -1);
	}
}

static void run_ref_getput(void *arg, int thread, uint64_t n)
{
	(void)arg, (void)thread;
	for (uint64_t i = 0; i < n; i++) {
		percpu_ref_get(&tg.ref);
		percpu_ref_put(&tg.ref);
	}
}

struct kind {
	const char *name;
	void (*fn)(void *, int, uint64_t);
	const char *baseline;
};

static void measure(const struct bench_opts *o, const char *group, const struct kind *k,
		    int nk)
{
	enum { NT = sizeof(thread_counts) / sizeof(thread_counts[0]) };
	double wall[NT][8], cpu[NT][8];
	char cpu_group[64];

	uint64_t iters[8];

	for (int i = 0; i < nk; i++)
		iters[i] = bench_calibrate(o, k[i].fn, NULL);
	/* Each row: the best of o->reps runs, the kinds alternating. */
	for (int r = 0; r < o->reps; r++)
		for (int t = 0; t < NT; t++)
			for (int i = 0; i < nk; i++)
				bench_threads_best(thread_counts[t], iters[i], k[i].fn, NULL, !r,
						   &wall[t][i], &cpu[t][i]);
	/* One table of wall time, one of CPU time. */
	snprintf(cpu_group, sizeof(cpu_group), "%s (CPU time)", group);
	for (int t = 0; t < NT; t++)
		for (int i = 0; i < nk; i++)
			bench_result(group, k[i].name, thread_counts[t], wall[t][i], "ns/op",
				     k[i].baseline);
	for (int t = 0; t < NT; t++)
		for (int i = 0; i < nk; i++)
			bench_result(cpu_group, k[i].name, thread_counts[t], cpu[t][i],
				     "cpu-ns/op", k[i].baseline);
}

static int setup(void)
{
	tg.shared = 1;		/* a refcount's initial reference */
	tg.pcpu = PERCPU_ALLOC(long);
	if (!tg.pcpu || percpu_counter_init(&tg.counter, 0, 0) ||
	    percpu_ref_init(&tg.ref, NULL, 0, 0)) {
		fprintf(stderr, "percpu-bench: setup failed\n");
		return -1;
	}
	return 0;
}

int bench_counter(const struct bench_opts *o, int argc, char **argv)
{
	static const struct kind k[] = {
		{ "percpu_this_add", run_this_add, NULL },
		{ "percpu_counter_add", run_counter_add, "percpu_this_add" },
		{ "atomic fetch_add (shared)", run_atomic_add, "percpu_counter_add" },
		{ "alt: add_return fast path", run_counter_add_return, "percpu_this_add" },
	};

	(void)argc, (void)argv;
	if (setup())
		return 1;
	measure(o, "percpu_counter_add", k, 4);
	bench_note("mode %s; ratios: percpu_counter_add / percpu_this_add (target <= 2x), "
		   "atomic / percpu_counter_add", percpu_mode_name());
	bench_note("counter: sum %lld, batch %d", (long long)percpu_counter_sum(&tg.counter),
		   percpu_counter_default_batch());
	return 0;
}

int bench_ref(const struct bench_opts *o, int argc, char **argv)
{
	static const struct kind k[] = {
		{ "2x percpu_this_add", run_two_this_add, NULL },
		{ "percpu_ref get+put", run_ref_getput, "2x percpu_this_add" },
		{ "atomic refcount get+put", run_atomic_getput, "percpu_ref get+put" },
	};

	(void)argc, (void)argv;
	if (setup())
		return 1;
	measure(o, "percpu_ref get+put", k, 3);
	bench_note("mode %s; ratios: percpu_ref / 2x percpu_this_add (target <= 2x), "
		   "atomic refcount / percpu_ref (target >= 5x at 2 threads)", percpu_mode_name());
	return 0;
}
