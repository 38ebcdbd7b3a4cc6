/* SPDX-License-Identifier: MIT */
/*
 * The test libraries of tests/modules.cmake.  Every library built from
 * modlib_body.h defines the same set of static per-CPU variables (every
 * DEFINE variant, initial values derived from its BASE) and exports
 * functions named <prefix>_<what> that reach them from inside.
 */
#ifndef PERCPU_TEST_MODLIB_H
#define PERCPU_TEST_MODLIB_H

#include <stddef.h>
#include <stdint.h>
#include <percpu/linux.h>

struct modlib_pair {
	long a, b;
};

/* Defined by modlib_a, used by the main program and by modlib_b/_c. */
DECLARE_PER_CPU(long, moda_shared);
#define MODA_SHARED_INIT 100

/* The functions every modlib_body.h library exports. */
#define MODLIB_API(p)								\
	int p##_check_cpu(unsigned int cpu, long v);				\
	void p##_write_cpu(unsigned int cpu, long v);				\
	void p##_inc(long n);							\
	unsigned long p##_hits(unsigned int cpu);				\
	uintptr_t p##_addr(unsigned int cpu);					\
	uintptr_t p##_page_addr(unsigned int cpu);				\
	uintptr_t p##_shared_addr(unsigned int cpu);				\
	long p##_shared_read(unsigned int cpu);					\
	size_t p##_section_size(void);						\
	long p##_base(void);

MODLIB_API(moda)
MODLIB_API(modb)
MODLIB_API(modc)

/* modlib_a's second translation unit. */
long moda2_read_plain(unsigned int cpu);

/* modlib_ctor: uses its variables from its constructor, before setup. */
extern int modctor_was_setup;
long modctor_early(unsigned int cpu);
unsigned long modctor_hits_sum(void);

/* modlib_rseq (and its no-clear twin): this_cpu ops in library code. */
void modr_work(long n);
unsigned long modr_sum(void);

/* modlib_big: a section no unit can hold with a small reserved region. */
int modbig_first(unsigned int cpu);

#endif
