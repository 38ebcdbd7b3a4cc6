/* SPDX-License-Identifier: MIT */
/*
 * An explicit percpu_setup() from a constructor that runs before the main
 * program's automatic setup chooses the configuration: a sparse simulated
 * machine (CPUs 0-3 and 64-67 on two nodes).  Bad configurations fail
 * with EINVAL and a message, and leave setup possible.
 */
#include <errno.h>

#include <percpu/layout.h>
#include <percpu/linux.h>
#include "check.h"

DEFINE_PER_CPU(long, early) = 77;
static int bad_rc, bad_errno, rc_setup, rc_again, badcpus_rc, badcpus_errno;

__attribute__((constructor(200))) static void choose_configuration(void)
{
	struct percpu_config cfg;

	percpu_config_default(&cfg);
	cfg.atom_size = 3000;			/* not a power of two */
	bad_rc = percpu_setup(&cfg);
	bad_errno = errno;

	percpu_config_default(&cfg);
	cfg.cpus = "3-1";			/* malformed: refused, not replaced */
	badcpus_rc = percpu_setup(&cfg);
	badcpus_errno = errno;

	percpu_config_default(&cfg);
	cfg.cpus = "0-3,64-67";
	cfg.nodes = "0-3;64-67";
	rc_setup = percpu_setup(&cfg);
	rc_again = percpu_setup(&cfg);
}

int main(void)
{
	unsigned int cpu;

	CHECK_EQ(bad_rc, -1);
	CHECK_EQ(bad_errno, EINVAL);
	CHECK_EQ(badcpus_rc, -1);
	CHECK_EQ(badcpus_errno, EINVAL);
	CHECK_EQ(rc_setup, 0);
	CHECK_EQ(rc_again, 0);
	if (PERCPU_SMP) {
		CHECK_EQ(num_possible_cpus(), 8);
		CHECK_EQ(nr_cpu_ids, 68);
		CHECK_EQ(percpu_nr_nodes(), 2);
		CHECK(cpu_possible(3) && cpu_possible(64) && !cpu_possible(4) && !cpu_possible(63));
		CHECK_EQ(cpu_to_node(2), 0);
		CHECK_EQ(cpu_to_node(66), 1);
		CHECK_EQ(percpu_layout_current()->nr_groups, 2);
	} else {
		/* CONFIG_SMP=n: one CPU whatever the configuration says. */
		CHECK_EQ(num_possible_cpus(), 1);
		CHECK_EQ(nr_cpu_ids, 1);
	}
	for_each_possible_cpu(cpu) {
		CHECK_EQ(per_cpu(early, cpu), 77);
		per_cpu(early, cpu) = cpu;
	}
	for_each_possible_cpu(cpu)
		CHECK_EQ(per_cpu(early, cpu), (long)cpu);
	long *d = alloc_percpu(long);
	CHECK(d != NULL);
	for_each_possible_cpu(cpu)
		CHECK_EQ(*per_cpu_ptr(d, cpu), 0);
	free_percpu(d);
	return check_report();
}
