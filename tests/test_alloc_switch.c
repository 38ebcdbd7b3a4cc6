/* SPDX-License-Identifier: MIT */
/*
 * The object caches after a switch to atomics (white box).  Objects freed
 * in rseq mode wait in the per-CPU caches, allocated in the bitmaps; once
 * the process runs on atomics no critical section may touch those stacks
 * again, so percpu_balance() must still give every cached object back
 * (it reads the frozen stacks), and nothing may be handed out twice.
 * Checked through the chunks' allocation counts: after the switch and a
 * balance they must be what they were before the objects were allocated.
 */
#define _GNU_SOURCE
#include <sched.h>

#include "alloc_test_util.h"
#include "internal.h"

#define NR 300

/* Areas the bitmaps count as allocated, cached objects included. */
static unsigned long allocated_in_chunks(void)
{
	static struct percpu_chunk_stats cs[4096];
	struct percpu_stats st = { .chunks = cs, .max_chunk_stats = 4096 };
	unsigned long n = 0;

	CHECK(percpu_stats(&st) == 0);
	for (unsigned int i = 0; i < st.nr_chunk_stats; i++)
		n += cs[i].nr_alloc;
	return n;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return (x > y) - (x < y);
}

/* Frees NR areas of each size from each CPU in turn, so every CPU caches some. */
static cpu_set_t all;

static void fill_caches(void)
{
	static const size_t sizes[] = { 8, 64, 1024 };
	static void __percpu *p[NR];
	CHECK(sched_getaffinity(0, sizeof(all), &all) == 0);
	for (int cpu = 0, done = 0; cpu < CPU_SETSIZE && done < 2; cpu++) {
		cpu_set_t one;
		if (!CPU_ISSET(cpu, &all))
			continue;
		done++;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		CHECK(sched_setaffinity(0, sizeof(one), &one) == 0);
		for (int s = 0; s < 3; s++) {
			for (int i = 0; i < NR; i++)
				CHECK((p[i] = percpu_alloc(sizes[s], sizes[s])) != NULL);
			for (int i = 0; i < NR; i++)
				percpu_free(p[i]);
		}
	}
}

int main(void)
{
	CHECK(percpu_setup(NULL) == 0);
	if (strcmp(percpu_mode_name(), "rseq") != 0) {
		printf("test_alloc_switch: SKIP (mode %s: no object cache)\n", percpu_mode_name());
		return 77;
	}
	percpu_balance();
	unsigned long before = allocated_in_chunks();

	fill_caches();
	unsigned long cached = allocated_in_chunks() - before;
	printf("cached after the frees: %lu areas\n", cached);
	CHECK(cached > 0);	/* otherwise this test proves nothing */

	pcpu_force_atomic_mode("test_alloc_switch");
	CHECK(strcmp(percpu_mode_name(), "atomic") == 0);
	percpu_balance();
	unsigned long after = allocated_in_chunks();
	printf("after the switch and a balance: %lu areas more than before (want 0)\n",
	       after - before);
	CHECK(after == before);

	/* The areas come back once each: NR allocations are all distinct. */
	static uintptr_t q[3 * NR];
	for (int i = 0; i < 3 * NR; i++)
		CHECK((q[i] = (uintptr_t)percpu_alloc(8, 8)) != 0);
	qsort(q, 3 * NR, sizeof(q[0]), cmp_ptr);
	for (int i = 1; i < 3 * NR; i++)
		CHECK(q[i] != q[i - 1]);
	for (int i = 0; i < 3 * NR; i++)
		percpu_free((void __percpu *)q[i]);
	CHECK(sched_setaffinity(0, sizeof(all), &all) == 0);
	percpu_balance();
	CHECK(allocated_in_chunks() == before);
	printf("test_alloc_switch: OK\n");
	return 0;
}
