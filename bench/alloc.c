/* SPDX-License-Identifier: MIT */
/*
 * percpu-bench alloc: the dynamic allocator.
 *
 *  - The kernel's 2017 scenario (Dennis Zhou's bitmap allocator): N x
 *    alloc(S, 4) for S in 4, 16, 64, 256, 1024, then free in order,
 *    alternately (every other one, then the rest) and in reverse;
 *    milliseconds per phase, against the kernel's published figures.
 *  - alloc+free pairs of 8 bytes in a loop, 1 and 2 threads: wall ns and
 *    CPU ns per pair, against the baseline people write by hand: an
 *    aligned_alloc'ed cache-line-padded array of nr_cpu_ids slots.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <percpu/percpu.h>
#include "bench.h"

/* The kernel's published figures for 1M objects, ms (kernel-percpu.md). */
static const struct {
	size_t size;
	double alloc_ms, free_ms;
} kernel_2017[] = {
	{ 4, 490, 70 }, { 16, 515, 75 }, { 64, 610, 80 }, { 256, 950, 100 }, { 1024, 3520, 200 },
};

enum order { IN_ORDER, ALTERNATELY, REVERSE };
static const char *const order_name[] = { "in order", "alternately", "in reverse" };

static double ms_since(uint64_t t0)
{
	return (double)(bench_now_ns() - t0) / 1e6;
}

static void free_all(void **p, size_t n, enum order o)
{
	switch (o) {
	case IN_ORDER:
		for (size_t i = 0; i < n; i++)
			percpu_free(p[i]);
		break;
	case ALTERNATELY:
		for (size_t i = 0; i < n; i += 2)
			percpu_free(p[i]);
		for (size_t i = 1; i < n; i += 2)
			percpu_free(p[i]);
		break;
	case REVERSE:
		for (size_t i = n; i-- > 0;)
			percpu_free(p[i]);
		break;
	}
}

/* One size: three rounds of N allocations, each freed in one order. */
static int scenario_2017(size_t size, double kernel_alloc, double kernel_free, size_t n,
			 void **p)
{
	char group[64], name[64];
	double scale = 1e6 / (double)n;	/* report as if N were 1M */

	snprintf(group, sizeof(group), "2017 scenario: 1M x alloc(%zu, 4), ms", size);
	bench_result(group, "kernel 2017 alloc (published)", 1, kernel_alloc, "ms", NULL);
	bench_result(group, "kernel 2017 free (published)", 1, kernel_free, "ms", NULL);
	for (int o = IN_ORDER; o <= REVERSE; o++) {
		uint64_t t0 = bench_now_ns();
		for (size_t i = 0; i < n; i++) {
			p[i] = percpu_alloc(size, 4);
			if (!p[i]) {
				perror("percpu_alloc");
				return 1;
			}
		}
		double alloc_ms = ms_since(t0) * scale;
		t0 = bench_now_ns();
		free_all(p, n, (enum order)o);
		double free_ms = ms_since(t0) * scale;
		percpu_balance();
		snprintf(name, sizeof(name), "alloc (then free %s)", order_name[o]);
		bench_result(group, name, 1, alloc_ms, "ms", "kernel 2017 alloc (published)");
		snprintf(name, sizeof(name), "free %s", order_name[o]);
		bench_result(group, name, 1, free_ms, "ms", "kernel 2017 free (published)");
	}
	return 0;
}

/* ---- alloc+free pairs ---- */

static void pairs_percpu(void *arg, int thread, uint64_t iterations)
{
	(void)arg;
	(void)thread;
	for (uint64_t i = 0; i < iterations; i++) {
		void *p = percpu_alloc(8, 8);
		bench_keep(p);
		percpu_free(p);
	}
}

/* What people write by hand: one padded slot per possible CPU id. */
struct padded_slot {
	_Alignas(64) long value;
};

static void pairs_handwritten(void *arg, int thread, uint64_t iterations)
{
	size_t bytes = sizeof(struct padded_slot) * *(unsigned int *)arg;
	(void)thread;
	for (uint64_t i = 0; i < iterations; i++) {
		struct padded_slot *p = aligned_alloc(64, bytes);
		memset(p, 0, bytes);	/* zeroed for every CPU, like percpu_alloc */
		bench_keep(p);
		free(p);
	}
}

static void pairs(const struct bench_opts *o)
{
	static const char *group = "alloc+free pairs of 8 bytes, ns per pair";
	unsigned int nr_cpu_ids = percpu_get_nr_cpu_ids();
	uint64_t n = bench_calibrate(o, pairs_percpu, NULL);

	/* Each row: the best of o->reps runs, the two kinds alternating. */
	for (int threads = 1; threads <= 2; threads++) {
		double hand_cpu = 0, hand_wall = 0, ours_cpu = 0, ours_wall = 0;
		for (int r = 0; r < o->reps; r++) {
			bench_threads_best(threads, n, pairs_handwritten, &nr_cpu_ids, !r,
					   &hand_wall, &hand_cpu);
			bench_threads_best(threads, n, pairs_percpu, NULL, !r, &ours_wall,
					   &ours_cpu);
		}
		bench_result(group, "aligned_alloc padded array (wall)", threads, hand_wall, "ns",
			     NULL);
		bench_result(group, "aligned_alloc padded array (cpu)", threads, hand_cpu, "cpu-ns",
			     NULL);
		bench_result(group, "percpu_alloc+percpu_free (wall)", threads, ours_wall, "ns",
			     "aligned_alloc padded array (wall)");
		bench_result(group, "percpu_alloc+percpu_free (cpu)", threads, ours_cpu, "cpu-ns",
			     "aligned_alloc padded array (cpu)");
	}
}

int bench_alloc(const struct bench_opts *o, int argc, char **argv)
{
	size_t n = o->quick ? 100000 : 1000000;
	void **p;

	(void)argc;
	(void)argv;
	if (percpu_setup(NULL)) {
		perror("percpu_setup");
		return 1;
	}
	p = malloc(n * sizeof(*p));
	if (!p)
		return 1;
	for (size_t i = 0; i < sizeof(kernel_2017) / sizeof(kernel_2017[0]); i++)
		if (scenario_2017(kernel_2017[i].size, kernel_2017[i].alloc_ms, kernel_2017[i].free_ms,
				  n, p))
			return 1;
	free(p);
	if (o->quick)
		bench_note("--quick: the 2017 scenario ran %zu objects per phase, scaled to 1M", n);
	bench_note("ratio < 1: faster than the baseline; targets: every 2017 phase <= 0.10x the "
		   "kernel, pairs < 15 ns (1 thread) and < 30 cpu-ns (2 threads)");
	pairs(o);
	bench_note("mode: %s, possible CPUs: %u", percpu_mode_name(), percpu_num_possible_cpus());
	return 0;
}
