/* Uses every installed header; exits 0 when the library works. */
#include <stdio.h>

#include <percpu/counter.h>
#include <percpu/layout.h>
#include <percpu/linux.h>
#include <percpu/ops.h>
#include <percpu/percpu.h>
#include <percpu/ref.h>

DEFINE_PER_CPU(long, hits) = 3;

int main(void)
{
	unsigned int cpu;
	long total = 0, *p = alloc_percpu(long);

	if (!p)
		return 1;
	this_cpu_inc(hits);
	this_cpu_add(*p, 5);
	for_each_possible_cpu(cpu)
		total += per_cpu(hits, cpu) + *per_cpu_ptr(p, cpu);
	free_percpu(p);
	printf("consumer: %ld (mode %s)\n", total, percpu_mode_name());
	return total == 3 * (long)num_possible_cpus() + 6 ? 0 : 1;
}
