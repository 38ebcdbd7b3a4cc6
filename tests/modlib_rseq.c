/* SPDX-License-Identifier: MIT */
/*
 * this_cpu operations in library code.  Built twice: as is (ops.h clears
 * rseq_cs after each critical section in a shared library) and with
 * __PIE__ defined (no clearing: the negative control of test_modules_rseq).
 */
#include "modlib.h"

static DEFINE_PER_CPU(unsigned long, work);

void modr_work(long n)
{
	for (long i = 0; i < n; i++)
		this_cpu_inc(work);
}

unsigned long modr_sum(void)
{
	unsigned long s = 0;
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		s += per_cpu(work, cpu);
	return s;
}
