/* SPDX-License-Identifier: MIT */
/*
 * Linked at start-up; its constructor uses its per-CPU variables before
 * anything set up (library constructors run before the main program's):
 * the first use sets up, and the values stay right afterwards.
 */
#include "modlib.h"

static PERCPU_DEFINE(long, early) = 5;
static DEFINE_PER_CPU(unsigned long, ctor_hits);
int modctor_was_setup = -1;

__attribute__((constructor)) static void modctor_init(void)
{
	unsigned int cpu;

	modctor_was_setup = percpu_is_setup();
	this_cpu_add(ctor_hits, 3);
	for_each_possible_cpu(cpu)
		*percpu_ptr(PERCPU_VAR(early), cpu) += cpu;
}

long modctor_early(unsigned int cpu)
{
	return *percpu_ptr(PERCPU_VAR(early), cpu);
}

unsigned long modctor_hits_sum(void)
{
	unsigned long s = 0;
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		s += per_cpu(ctor_hits, cpu);
	return s;
}
