/* SPDX-License-Identifier: MIT */
/*
 * A simulated 4096-CPU, 8-node machine (PERCPU_CPUS / PERCPU_NODES, set
 * by static.cmake) with a 64 KiB zero-initialised static section:
 * setup raises RSS by less than 1 MiB (a non-zero image page would cost
 * a page per CPU, as in the kernel), the first chunk adds O(nodes)
 * entries to /proc/self/maps, and every CPU's copy works.
 */
#include <stdint.h>
#include <string.h>

#include <percpu/layout.h>
#include <percpu/linux.h>
#include "check.h"

DEFINE_PER_CPU_PAGE_ALIGNED(char[64 * 1024], big_zero);
DEFINE_PER_CPU(long, small);	/* the whole section is zero */

static size_t rss_before, rss_after;
static int setup_rc = -1;

/* Before the main program's automatic setup (priority > 101). */
__attribute__((constructor(102))) static void measure_setup(void)
{
	rss_before = check_rss();
	setup_rc = percpu_setup(NULL);
	rss_after = check_rss();
}

/* /proc/self/maps lines that overlap the first chunk. */
static unsigned int maps_entries(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a < hi && b > lo)
			n++;
	}
	fclose(f);
	return n;
}

int main(void)
{
	const struct percpu_layout *l = percpu_layout_current();
	unsigned int cpu, n = 0;

	CHECK_EQ(setup_rc, 0);
	printf("setup raised RSS by %zu KiB (%zu -> %zu KiB)\n", (rss_after - rss_before) / 1024,
	       rss_before / 1024, rss_after / 1024);
	if (CHECK_SANITIZED || CHECK_EMULATED)
		printf("sanitizer or emulated build: the RSS bound is not applied\n");
	else
		CHECK(rss_after - rss_before < 1024 * 1024);
	if (!PERCPU_SMP)
		return check_report();

	CHECK_EQ(num_possible_cpus(), 4096);
	CHECK_EQ(percpu_nr_nodes(), 8);
	CHECK_EQ(l->nr_groups, 8);
	CHECK(l->static_size >= 64 * 1024);
	CHECK_EQ(cpu_to_node(0), 0);
	CHECK_EQ(cpu_to_node(511), 0);
	CHECK_EQ(cpu_to_node(512), 1);
	CHECK_EQ(cpu_to_node(4095), 7);

	/* The first chunk: O(nodes) mappings, not O(CPUs). */
	uintptr_t lo = (uintptr_t)per_cpu_ptr(&small, 0) - l->unit_off[0];
	unsigned int entries = maps_entries(lo, lo + l->chunk_span);
	printf("first chunk: %u /proc/self/maps entries for %u units\n", entries, l->nr_units);
	CHECK(entries >= 1 && entries <= 2 * l->nr_groups + 2);

	for_each_possible_cpu(cpu) {
		CHECK_EQ(per_cpu(small, cpu), 0);
		n++;
	}
	CHECK_EQ(n, 4096);
	/* Write a few CPUs' copies, including the last of every node. */
	for (cpu = 511; cpu < 4096; cpu += 512) {
		per_cpu(big_zero, cpu)[65535] = (char)cpu;
		this_cpu_inc(small);
	}
	for (cpu = 511; cpu < 4096; cpu += 512)
		CHECK_EQ(per_cpu(big_zero, cpu)[65535], (char)cpu);
	CHECK_EQ(per_cpu(big_zero, 0)[65535], 0);

	/* A dynamic allocation spans all 4096 units and is zero on each. */
	long *d = alloc_percpu(long);
	CHECK(d != NULL);
	for_each_possible_cpu(cpu)
		CHECK_EQ(*per_cpu_ptr(d, cpu), 0);
	free_percpu(d);
	return check_report();
}
