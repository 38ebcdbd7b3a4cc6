/* SPDX-License-Identifier: MIT */
/*
 * Explicit setup from a priority-102 constructor: after every module's
 * registration (101), before the main program's automatic setup.  The
 * main program's section is the static region; modlib_a, linked at
 * start-up and registered before setup, is placed by setup in the
 * reserved region of the configured size.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "modlib.h"
#include "check.h"

DEFINE_PER_CPU(long, e_plain) = 31;
static PERCPU_DEFINE_SHARED_ALIGNED(struct modlib_pair, e_shared) = { 32, 33 };
static DEFINE_PER_CPU_ALIGNED(int, e_aligned) = 34;
static PERCPU_DEFINE_PAGE_ALIGNED(char[PERCPU_PAGE_SIZE], e_page) = "page";
static DEFINE_PER_CPU_READ_MOSTLY(short, e_mostly) = 35;

static int setup_rc = -2, setup_was = -1;

__attribute__((constructor(102))) static void early_setup(void)
{
	struct percpu_config cfg;

	setup_was = percpu_is_setup();
	percpu_config_default(&cfg);
	cfg.cpus = "0-5";
	cfg.reserved_size = 40 * 1024;
	setup_rc = percpu_setup(&cfg);
}

int main(void)
{
	struct percpu_stats st;
	unsigned int cpu;

	memset(&st, 0, sizeof(st));
	CHECK_EQ(setup_was, 0);
	CHECK_EQ(setup_rc, 0);
	CHECK(percpu_stats(&st) == 0);
	if (PERCPU_SMP) {
		CHECK_EQ(percpu_num_possible_cpus(), 6);
		CHECK_EQ(st.reserved_size, 40 * 1024);
		CHECK(st.static_size >= PERCPU_PAGE_SIZE);
	}
	for_each_possible_cpu(cpu) {
		CHECK_EQ(per_cpu(e_plain, cpu), 31);
		CHECK_EQ(percpu_ptr(PERCPU_VAR(e_shared), cpu)->a, 32);
		CHECK_EQ(percpu_ptr(PERCPU_VAR(e_shared), cpu)->b, 33);
		CHECK_EQ(per_cpu(e_aligned, cpu), 34);
		CHECK(!strcmp(*percpu_ptr(PERCPU_VAR(e_page), cpu), "page"));
		CHECK_EQ(per_cpu(e_mostly, cpu), 35);
		CHECK_EQ(moda_check_cpu(cpu, moda_base()), 0);
		CHECK_EQ(per_cpu(moda_shared, cpu), MODA_SHARED_INIT);
#if PERCPU_SMP
		/* The static region is [0, static_size) of each unit; modlib_a is after it. */
		uintptr_t u = PERCPU_PTR_BASE + (uintptr_t)percpu_cpu_offset[cpu];
		CHECK((uintptr_t)per_cpu_ptr(&e_plain, cpu) - u < st.static_size);
		CHECK(moda_addr(cpu) - u >= st.static_size);
		CHECK(moda_addr(cpu) - u < st.static_size + st.reserved_size + 4);
#endif
	}
	for_each_possible_cpu(cpu) {
		per_cpu(e_plain, cpu) = cpu;
		this_cpu_add(e_plain, 0);
	}
	for_each_possible_cpu(cpu)
		CHECK_EQ(per_cpu(e_plain, cpu), (long)cpu);
	/* A later, different configuration is refused. */
	struct percpu_config other;
	percpu_config_default(&other);
	other.reserved_size = 8192;
	errno = 0;
	CHECK(percpu_setup(&other) == -1 && errno == EBUSY);
	return check_report();
}
