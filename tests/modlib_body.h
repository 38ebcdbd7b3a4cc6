/* SPDX-License-Identifier: MIT */
/*
 * The body of a test library: define MODLIB(x) (the exported names'
 * prefix, e.g. moda_##x) and MODLIB_BASE (initial values) first.
 * Variables are static (each library has its own); the functions reach
 * them with every accessor: per_cpu, per_cpu_ptr/percpu_ptr, this_cpu_*.
 */
#include <string.h>
#include "modlib.h"

static PERCPU_DEFINE(long, plain) = MODLIB_BASE;
static PERCPU_DEFINE_SHARED_ALIGNED(struct modlib_pair, shared) = { MODLIB_BASE + 1, MODLIB_BASE + 2 };
static PERCPU_DEFINE_ALIGNED(int, aligned) = MODLIB_BASE + 3;
static PERCPU_DEFINE_PAGE_ALIGNED(unsigned char[PERCPU_PAGE_SIZE], page) = {
	(unsigned char)(MODLIB_BASE + 4), [PERCPU_PAGE_SIZE - 1] = (unsigned char)(MODLIB_BASE + 5) };
static PERCPU_DEFINE_READ_MOSTLY(short, mostly) = MODLIB_BASE + 6;
static DEFINE_PER_CPU(long, k_plain) = MODLIB_BASE + 7;
static DEFINE_PER_CPU_SHARED_ALIGNED(struct modlib_pair, k_shared) = { MODLIB_BASE + 8, MODLIB_BASE + 9 };
static DEFINE_PER_CPU_ALIGNED(int, k_aligned) = MODLIB_BASE + 10;
static DEFINE_PER_CPU_PAGE_ALIGNED(long[8], k_page) = { MODLIB_BASE + 11, [7] = MODLIB_BASE + 12 };
static DEFINE_PER_CPU_READ_MOSTLY(int, k_mostly) = MODLIB_BASE + 13;
static DEFINE_PER_CPU(unsigned long, hits);
/* All zero in the image: only zeroing of reused space makes it zero again. */
static DEFINE_PER_CPU_PAGE_ALIGNED(unsigned char[PERCPU_PAGE_SIZE], zpage);

#if PERCPU_SMP
extern char __start_percpu_data[] __attribute__((weak, visibility("hidden")));
extern char __stop_percpu_data[] __attribute__((weak, visibility("hidden")));
#endif

long MODLIB(base)(void)
{
	return MODLIB_BASE;
}

/*
 * Number of the CPU's values that differ from those derived from v
 * (v == MODLIB_BASE: the initial values; the rest of the pages zero).
 */
int MODLIB(check_cpu)(unsigned int cpu, long v)
{
	int bad = 0;

	bad += *percpu_ptr(PERCPU_VAR(plain), cpu) != v;
	bad += percpu_ptr(PERCPU_VAR(shared), cpu)->a != v + 1;
	bad += percpu_ptr(PERCPU_VAR(shared), cpu)->b != v + 2;
	bad += *percpu_ptr(PERCPU_VAR(aligned), cpu) != (int)(v + 3);
	const unsigned char *pg = *percpu_ptr(PERCPU_VAR(page), cpu);
	const unsigned char *zp = per_cpu(zpage, cpu);
	unsigned char z = v == MODLIB_BASE ? 0 : (unsigned char)(v + 14);
	bad += pg[0] != (unsigned char)(v + 4);
	bad += pg[PERCPU_PAGE_SIZE - 1] != (unsigned char)(v + 5);
	for (int i = 1; i < PERCPU_PAGE_SIZE - 1; i++)
		bad += pg[i] != z;
	for (int i = 0; i < PERCPU_PAGE_SIZE; i++)
		bad += zp[i] != z;
	bad += *percpu_ptr(PERCPU_VAR(mostly), cpu) != (short)(v + 6);
	bad += per_cpu(k_plain, cpu) != v + 7;
	bad += per_cpu(k_shared, cpu).a != v + 8;
	bad += per_cpu_ptr(&k_shared, cpu)->b != v + 9;
	bad += per_cpu(k_aligned, cpu) != (int)(v + 10);
	bad += per_cpu(k_page, cpu)[0] != v + 11;
	bad += per_cpu(k_page, cpu)[7] != v + 12;
	for (int i = 1; i < 7; i++)
		bad += per_cpu(k_page, cpu)[i] != (long)z;
	bad += per_cpu(k_mostly, cpu) != (int)(v + 13);
	return bad;
}

void MODLIB(write_cpu)(unsigned int cpu, long v)
{
	*percpu_ptr(PERCPU_VAR(plain), cpu) = v;
	percpu_ptr(PERCPU_VAR(shared), cpu)->a = v + 1;
	percpu_ptr(PERCPU_VAR(shared), cpu)->b = v + 2;
	*percpu_ptr(PERCPU_VAR(aligned), cpu) = (int)(v + 3);
	unsigned char z = v == MODLIB_BASE ? 0 : (unsigned char)(v + 14);
	unsigned char *pg = *percpu_ptr(PERCPU_VAR(page), cpu);
	memset(pg, z, PERCPU_PAGE_SIZE);
	pg[0] = (unsigned char)(v + 4);
	pg[PERCPU_PAGE_SIZE - 1] = (unsigned char)(v + 5);
	memset(per_cpu(zpage, cpu), z, PERCPU_PAGE_SIZE);
	for (int i = 1; i < 7; i++)
		per_cpu(k_page, cpu)[i] = z;
	*percpu_ptr(PERCPU_VAR(mostly), cpu) = (short)(v + 6);
	per_cpu(k_plain, cpu) = v + 7;
	per_cpu(k_shared, cpu).a = v + 8;
	per_cpu_ptr(&k_shared, cpu)->b = v + 9;
	per_cpu(k_aligned, cpu) = (int)(v + 10);
	per_cpu(k_page, cpu)[0] = v + 11;
	per_cpu(k_page, cpu)[7] = v + 12;
	per_cpu(k_mostly, cpu) = (int)(v + 13);
}

/* n increments of this CPU's hits and of moda_shared (another module's). */
void MODLIB(inc)(long n)
{
	for (long i = 0; i < n; i++) {
		this_cpu_inc(hits);
		percpu_this_inc(&moda_shared);
	}
}

unsigned long MODLIB(hits)(unsigned int cpu)
{
	return per_cpu(hits, cpu);
}

uintptr_t MODLIB(addr)(unsigned int cpu)
{
	return (uintptr_t)percpu_ptr(PERCPU_VAR(plain), cpu);
}

uintptr_t MODLIB(page_addr)(unsigned int cpu)
{
	return (uintptr_t)per_cpu_ptr(&k_page, cpu);
}

uintptr_t MODLIB(shared_addr)(unsigned int cpu)
{
	return (uintptr_t)per_cpu_ptr(&moda_shared, cpu);
}

long MODLIB(shared_read)(unsigned int cpu)
{
	return per_cpu(moda_shared, cpu);
}

size_t MODLIB(section_size)(void)
{
#if PERCPU_SMP
	return (size_t)(__stop_percpu_data - __start_percpu_data);
#else
	return 0;
#endif
}
