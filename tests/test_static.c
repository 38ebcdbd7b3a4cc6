/* SPDX-License-Identifier: MIT */
/*
 * Static per-CPU variables: every DEFINE variant, namespaced and with the
 * kernel's names; initial values in every CPU's copy, independent copies,
 * alignment, and the kernel's CPU queries.  Run on the real machine and
 * on simulated ones (see static.cmake).
 */
#include <stdint.h>
#include <string.h>

#include <percpu/linux.h>
#include "check.h"

struct pair {
	long a, b;
};

/* namespaced */
PERCPU_DEFINE(long, counter) = 42;
PERCPU_DEFINE(int, zeroed);
PERCPU_DEFINE_SHARED_ALIGNED(struct pair, shared) = { 1, 2 };
PERCPU_DEFINE_ALIGNED(int, aligned) = 7;
PERCPU_DEFINE_PAGE_ALIGNED(unsigned char[PERCPU_PAGE_SIZE], page) = { 0xaa, [4095] = 0x55 };
PERCPU_DEFINE_READ_MOSTLY(short, mostly) = -3;
static PERCPU_DEFINE(char *, local_ptr) = (char *)"text";

/* the kernel's names */
DEFINE_PER_CPU(unsigned long, k_hits) = 1000;
DEFINE_PER_CPU_SHARED_ALIGNED(struct pair, k_shared) = { 5, 6 };
DEFINE_PER_CPU_ALIGNED(int, k_aligned) = 8;
DEFINE_PER_CPU_PAGE_ALIGNED(char[100], k_page) = "page";
DEFINE_PER_CPU_READ_MOSTLY(int, k_mostly) = 11;
DECLARE_PER_CPU(unsigned long, k_hits);	/* a declaration of a defined one */
DECLARE_PER_CPU_SHARED_ALIGNED(struct pair, k_shared);

static unsigned int first_cpu(void)
{
	unsigned int cpu;
	for_each_possible_cpu(cpu)
		return cpu;
	return 0;
}

static void initial_values_everywhere(void)
{
	unsigned int cpu, n = 0;

	for_each_possible_cpu(cpu) {
		CHECK(*percpu_ptr(PERCPU_VAR(counter), cpu) == 42);
		CHECK(*percpu_ptr(PERCPU_VAR(zeroed), cpu) == 0);
		CHECK(percpu_ptr(PERCPU_VAR(shared), cpu)->a == 1);
		CHECK(percpu_ptr(PERCPU_VAR(shared), cpu)->b == 2);
		CHECK(*percpu_ptr(PERCPU_VAR(aligned), cpu) == 7);
		CHECK((*percpu_ptr(PERCPU_VAR(page), cpu))[0] == 0xaa);
		CHECK((*percpu_ptr(PERCPU_VAR(page), cpu))[4095] == 0x55);
		CHECK(*percpu_ptr(PERCPU_VAR(mostly), cpu) == -3);
		CHECK(!strcmp(*percpu_ptr(PERCPU_VAR(local_ptr), cpu), "text"));
		CHECK(per_cpu(k_hits, cpu) == 1000);
		CHECK(per_cpu(k_shared, cpu).b == 6);
		CHECK(per_cpu(k_aligned, cpu) == 8);
		CHECK(!strcmp(per_cpu(k_page, cpu), "page"));
		CHECK(per_cpu(k_mostly, cpu) == 11);
		n++;
	}
	CHECK_EQ(n, num_possible_cpus());
}

static void alignment_of_every_copy(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		CHECK((uintptr_t)percpu_ptr(PERCPU_VAR(shared), cpu) % PERCPU_CACHELINE_SIZE == 0);
		CHECK((uintptr_t)percpu_ptr(PERCPU_VAR(aligned), cpu) % PERCPU_CACHELINE_SIZE == 0);
		CHECK((uintptr_t)percpu_ptr(PERCPU_VAR(page), cpu) % PERCPU_PAGE_SIZE == 0);
		CHECK((uintptr_t)per_cpu_ptr(&k_shared, cpu) % PERCPU_CACHELINE_SIZE == 0);
		CHECK((uintptr_t)per_cpu_ptr(&k_page, cpu) % PERCPU_PAGE_SIZE == 0);
		CHECK((uintptr_t)percpu_ptr(PERCPU_VAR(counter), cpu) % _Alignof(long) == 0);
	}
}

/* Writing one CPU's copy changes no other copy, of this or any variable. */
static void copies_are_independent(void)
{
	unsigned int cpu, other;

	for_each_possible_cpu(cpu) {
		*percpu_ptr(PERCPU_VAR(counter), cpu) = 1000 + cpu;
		per_cpu(k_hits, cpu) = 5000 + cpu;
		(*percpu_ptr(PERCPU_VAR(page), cpu))[100] = (unsigned char)cpu;
	}
	for_each_possible_cpu(cpu) {
		CHECK_EQ(*percpu_ptr(PERCPU_VAR(counter), cpu), 1000 + (long)cpu);
		CHECK_EQ(per_cpu(k_hits, cpu), 5000ul + cpu);
		CHECK_EQ((*percpu_ptr(PERCPU_VAR(page), cpu))[100], (unsigned char)cpu);
		CHECK(*percpu_ptr(PERCPU_VAR(zeroed), cpu) == 0);
		CHECK(per_cpu(k_aligned, cpu) == 8);
	}
	/* Distinct CPUs have distinct copies. */
	for_each_possible_cpu(cpu)
		for_each_possible_cpu(other)
			if (other != cpu && num_possible_cpus() <= 256)
				CHECK(percpu_ptr(PERCPU_VAR(counter), cpu) !=
				      percpu_ptr(PERCPU_VAR(counter), other));
	/* SMP: the image is only the initial value; UP: it is the variable. */
	if (PERCPU_SMP)
		CHECK(*(volatile long *)PERCPU_VAR(counter) == 42);
	else
		CHECK(*(volatile long *)PERCPU_VAR(counter) == 1000);
}

/* per_cpu_ptr(p, cpu) == p + __per_cpu_offset[cpu], for statics and dynamic memory. */
static void offsets_name_every_copy(void)
{
	unsigned int cpu, first = first_cpu();
	long *dyn = alloc_percpu(long);

	CHECK(dyn != NULL);
	for_each_possible_cpu(cpu) {
		intptr_t d = per_cpu_offset(cpu) - per_cpu_offset(first);
		CHECK_EQ((intptr_t)((uintptr_t)per_cpu_ptr(&k_hits, cpu) -
				    (uintptr_t)per_cpu_ptr(&k_hits, first)), d);
		CHECK_EQ((intptr_t)((uintptr_t)per_cpu_ptr(dyn, cpu) -
				    (uintptr_t)per_cpu_ptr(dyn, first)), d);
		CHECK_EQ(__per_cpu_offset[cpu], per_cpu_offset(cpu));
	}
	free_percpu(dyn);
}

static void cpu_queries(void)
{
	unsigned int cpu, n = 0, last = 0;

	for_each_possible_cpu(cpu) {
		CHECK(cpu_possible(cpu));
		CHECK(cpu < nr_cpu_ids);
		CHECK(cpu_to_node(cpu) >= 0 && (unsigned)cpu_to_node(cpu) < percpu_nr_nodes());
		CHECK(n == 0 || cpu > last);
		last = cpu;
		n++;
	}
	CHECK_EQ(n, num_possible_cpus());
	CHECK_EQ(last + 1, nr_cpu_ids);
	CHECK(!cpu_possible(nr_cpu_ids));
	CHECK(!cpu_possible(nr_cpu_ids + 1000));
	for (cpu = 0; cpu < nr_cpu_ids; cpu++)
		if (!cpu_possible(cpu))
			CHECK(per_cpu_offset(cpu) == 0);	/* no unit, never a wrong one */
}

int main(void)
{
	CHECK(percpu_is_setup());	/* setup_per_cpu_areas() ran before main */
	printf("possible CPUs: %u, nr_cpu_ids %u, nodes %u\n", num_possible_cpus(), nr_cpu_ids,
	       percpu_nr_nodes());
	initial_values_everywhere();
	alignment_of_every_copy();
	copies_are_independent();
	offsets_name_every_copy();
	cpu_queries();
	return check_report();
}
