/* SPDX-License-Identifier: MIT */
/*
 * Shared libraries with static per-CPU variables (tests/modules.cmake).
 *
 * modlib_a (two translation units, exports moda_shared) and modlib_ctor
 * (uses its variables from its constructor, before setup) are linked at
 * start-up; modlib_b and modlib_c are dlopen'ed by path.  Checks, on
 * every possible CPU, from inside the libraries and from here:
 *  - initial values of every DEFINE variant, writes and reads;
 *  - moda_shared (DECLARE_PER_CPU) is one variable for the program (whose
 *    reference is a copy relocation), modlib_a, _b and _c;
 *  - this_cpu ops in library code on every real CPU, totals exact;
 *  - placement: reserved region, or the dynamic area when
 *    PERCPU_EXPECT_PLACE=dynamic (a small PERCPU_RESERVED);
 *  - registration once per library (two constructors run), and dlclose
 *    giving the space back;
 *  - 10,000 dlopen/dlclose cycles: statistics back where they started,
 *    initial values on every CPU after every reload although each cycle
 *    wrote every CPU's copy.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modlib.h"
#include "check.h"

/* The main program's own section (the static region). */
DEFINE_PER_CPU(long, main_var) = 42;
static PERCPU_DEFINE_PAGE_ALIGNED(int[16], main_page) = { 9, [15] = 10 };

struct lib {
	void *h;
	int (*check_cpu)(unsigned int, long);
	void (*write_cpu)(unsigned int, long);
	void (*inc)(long);
	unsigned long (*hits)(unsigned int);
	uintptr_t (*addr)(unsigned int);
	uintptr_t (*page_addr)(unsigned int);
	uintptr_t (*shared_addr)(unsigned int);
	long (*shared_read)(unsigned int);
	size_t (*section_size)(void);
	long (*base)(void);
};

static void *sym(void *h, const char *prefix, const char *what)
{
	char name[64];
	snprintf(name, sizeof(name), "%s_%s", prefix, what);
	void *f = dlsym(h, name);
	if (!f) {
		fprintf(stderr, "dlsym %s: %s\n", name, dlerror());
		abort();
	}
	return f;
}

static int lib_open(struct lib *l, const char *path, const char *prefix)
{
	l->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!l->h) {
		fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
		return -1;
	}
	*(void **)&l->check_cpu = sym(l->h, prefix, "check_cpu");
	*(void **)&l->write_cpu = sym(l->h, prefix, "write_cpu");
	*(void **)&l->inc = sym(l->h, prefix, "inc");
	*(void **)&l->hits = sym(l->h, prefix, "hits");
	*(void **)&l->addr = sym(l->h, prefix, "addr");
	*(void **)&l->page_addr = sym(l->h, prefix, "page_addr");
	*(void **)&l->shared_addr = sym(l->h, prefix, "shared_addr");
	*(void **)&l->shared_read = sym(l->h, prefix, "shared_read");
	*(void **)&l->section_size = sym(l->h, prefix, "section_size");
	*(void **)&l->base = sym(l->h, prefix, "base");
	return 0;
}

static void lib_close(struct lib *l)
{
	CHECK(dlclose(l->h) == 0);
	l->h = NULL;
}

static const struct lib lib_a = {
	NULL, moda_check_cpu, moda_write_cpu, moda_inc, moda_hits, moda_addr, moda_page_addr,
	moda_shared_addr, moda_shared_read, moda_section_size, moda_base,
};

/* ---- statistics ---- */

struct snap {
	bool has_reserved;
	size_t res_free, res_contig, first_free;
	unsigned long cur;
	size_t static_size, reserved_size, unit_size;
};

static struct snap snap(void)
{
	struct percpu_chunk_stats cs[256];
	struct percpu_stats st;
	struct snap s;

	memset(&st, 0, sizeof(st));
	memset(&s, 0, sizeof(s));
	st.chunks = cs;
	st.max_chunk_stats = 256;
	CHECK(percpu_stats(&st) == 0);
	unsigned int first = 0;
	if (st.nr_chunk_stats && cs[0].reserved) {
		s.has_reserved = true;
		s.res_free = cs[0].free_bytes;
		s.res_contig = cs[0].contig_bytes;
		first = 1;
	}
	if (first < st.nr_chunk_stats)
		s.first_free = cs[first].free_bytes;
	s.cur = st.nr_cur_alloc;
	s.static_size = st.static_size;
	s.reserved_size = st.reserved_size;
	s.unit_size = st.unit_size;
	return s;
}

/* ---- placement ---- */

enum place { PLACE_STATIC, PLACE_RESERVED, PLACE_DYNAMIC, PLACE_NONE };

/* Where CPU cpu's copy at address a lies in the first chunk's unit layout. */
static enum place where(uintptr_t a, unsigned int cpu)
{
#if PERCPU_SMP
	struct snap s = snap();
	uintptr_t off = a - (uintptr_t)percpu_cpu_offset[cpu] - PERCPU_PTR_BASE;
	size_t st = (s.static_size + 3) & ~(size_t)3;
	if (off < st)
		return PLACE_STATIC;
	if (off < st + s.reserved_size)
		return PLACE_RESERVED;
	return PLACE_DYNAMIC;
#else
	(void)a;
	(void)cpu;
	return PLACE_NONE;
#endif
}

static enum place expected_place(void)
{
	const char *e = getenv("PERCPU_EXPECT_PLACE");
	if (!PERCPU_SMP)
		return PLACE_NONE;
	return e && !strcmp(e, "dynamic") ? PLACE_DYNAMIC : PLACE_RESERVED;
}

/* ---- per-library checks ---- */

static void check_initial(const struct lib *l, const char *what)
{
	unsigned int cpu;
	for_each_possible_cpu(cpu) {
		int bad = l->check_cpu(cpu, l->base());
		if (bad)
			fprintf(stderr, "%s: cpu %u: %d value(s) differ from the initial ones\n",
				what, cpu, bad);
		CHECK(bad == 0);
	}
}

static void check_write_read(const struct lib *l)
{
	unsigned int cpu;
	for_each_possible_cpu(cpu)
		l->write_cpu(cpu, 20 + cpu);
	for_each_possible_cpu(cpu)
		CHECK_EQ(l->check_cpu(cpu, 20 + cpu), 0);
	/* Distinct copies, each at the same offset from its CPU's unit. */
	for_each_possible_cpu(cpu) {
		CHECK(l->page_addr(cpu) % PERCPU_PAGE_SIZE == 0);
		CHECK_EQ(where(l->addr(cpu), cpu), where(l->addr(0 + percpu_next_possible(-1)),
							 percpu_next_possible(-1)));
	}
	for_each_possible_cpu(cpu)
		l->write_cpu(cpu, l->base());
	check_initial(l, "rewritten");
}

/* The exported variable is one variable for every module. */
static void check_shared(const struct lib *l)
{
	unsigned int cpu;
	for_each_possible_cpu(cpu) {
		CHECK(l->shared_addr(cpu) == (uintptr_t)per_cpu_ptr(&moda_shared, cpu));
		CHECK(l->shared_addr(cpu) == moda_shared_addr(cpu));
		per_cpu(moda_shared, cpu) = 500 + cpu;
	}
	for_each_possible_cpu(cpu) {
		CHECK_EQ(l->shared_read(cpu), 500 + (long)cpu);
		CHECK_EQ(moda_shared_read(cpu), 500 + (long)cpu);
	}

	/*
	 * this_cpu operations of the program on the library's variable: the
	 * inline translation leaves it (another module's), the slow paths
	 * translate it, reads included.
	 */
	cpu_set_t saved, one;
	CHECK(pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0);
	int here = sched_getcpu();
	CPU_ZERO(&one);
	CPU_SET(here, &one);
	CHECK(pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0);
	cpu = (unsigned int)smp_processor_id();
	this_cpu_write(moda_shared, 77);
	CHECK_EQ(this_cpu_read(moda_shared), 77);
	this_cpu_add(moda_shared, 3);
	CHECK_EQ(this_cpu_read(moda_shared), 80);
	CHECK_EQ(*this_cpu_ptr(&moda_shared), 80);
	CHECK_EQ(per_cpu(moda_shared, cpu), 80);
	CHECK_EQ(moda_shared_read(cpu), 80);
	per_cpu(moda_shared, cpu) = 500 + cpu;
	CHECK(pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved) == 0);
}

/* ---- this_cpu ops in library code on every CPU ---- */

struct worker {
	const struct lib *libs[3];
	int nr_libs;
	int cpu;		/* pinned to it, or -1 */
	long n;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	if (w->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		CHECK(pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0);
	}
	for (int i = 0; i < w->nr_libs; i++)
		w->libs[i]->inc(w->n);
	return NULL;
}

static void check_ops(const struct lib **libs, int nr_libs)
{
	cpu_set_t allowed;
	unsigned int cpu;
	unsigned long before[3][256] = { { 0 } }, shared_before = 0;
	pthread_t t[64];
	struct worker w[64];
	int nt = 0;
	bool by_cpu = percpu_index_mode() == PERCPU_INDEX_CPU;

	for_each_possible_cpu(cpu) {
		for (int i = 0; i < nr_libs && cpu < 256; i++)
			before[i][cpu] = libs[i]->hits(cpu);
		shared_before += (unsigned long)per_cpu(moda_shared, cpu);
	}
	CHECK(sched_getaffinity(0, sizeof(allowed), &allowed) == 0);
	/* One thread pinned to each CPU we may run on, and four that roam. */
	for (int c = 0; c < CPU_SETSIZE && nt < 60; c++)
		if (CPU_ISSET(c, &allowed))
			w[nt++] = (struct worker){ { libs[0], libs[1], libs[2] }, nr_libs, c, 1000 };
	int pinned = nt;
	for (int i = 0; i < 4; i++)
		w[nt++] = (struct worker){ { libs[0], libs[1], libs[2] }, nr_libs, -1, 20000 };
	for (int i = 0; i < nt; i++)
		CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);

	unsigned long total = 0, shared_after = 0;
	for (int i = 0; i < nt; i++)
		total += (unsigned long)w[i].n;
	for (int i = 0; i < nr_libs; i++) {
		unsigned long sum = 0;
		for_each_possible_cpu(cpu)
			sum += libs[i]->hits(cpu) - (cpu < 256 ? before[i][cpu] : 0);
		CHECK_EQ(sum, total);
	}
	for_each_possible_cpu(cpu)
		shared_after += (unsigned long)per_cpu(moda_shared, cpu);
	CHECK_EQ(shared_after - shared_before, total * (unsigned long)nr_libs);
	/* The pinned threads' increments went to their own CPU's copies. */
	if (by_cpu && PERCPU_SMP)
		for (int i = 0; i < pinned; i++) {
			cpu = (unsigned int)w[i].cpu;
			if (cpu >= percpu_get_nr_cpu_ids() || !percpu_cpu_possible(cpu) || cpu >= 256)
				continue;
			for (int l = 0; l < nr_libs; l++)
				CHECK(libs[l]->hits(cpu) - before[l][cpu] >= (unsigned long)w[i].n);
		}
}

/* ---- the main program's own section and the linked libraries ---- */

static void check_static_and_linked(void)
{
	unsigned int cpu;

	/* modlib_ctor: its constructor ran before setup and set up by using its variables. */
	CHECK_EQ(modctor_was_setup, 0);
	CHECK_EQ(modctor_hits_sum(), 3);
	for_each_possible_cpu(cpu)
		CHECK_EQ(modctor_early(cpu), 5 + (long)cpu);

	for_each_possible_cpu(cpu) {
		CHECK_EQ(per_cpu(main_var, cpu), 42);
		CHECK_EQ((*percpu_ptr(PERCPU_VAR(main_page), cpu))[0], 9);
		CHECK_EQ((*percpu_ptr(PERCPU_VAR(main_page), cpu))[15], 10);
		CHECK_EQ(per_cpu(moda_shared, cpu), MODA_SHARED_INIT);
		CHECK_EQ(moda2_read_plain(cpu), 77);
		if (PERCPU_SMP)
			CHECK_EQ(where((uintptr_t)per_cpu_ptr(&main_var, cpu), cpu), PLACE_STATIC);
	}
	check_initial(&lib_a, "modlib_a");
	CHECK_EQ(where(lib_a.addr(0 + percpu_next_possible(-1)), percpu_next_possible(-1)),
		 expected_place());
	check_write_read(&lib_a);
	check_shared(&lib_a);
}

/* ---- dlopen / dlclose ---- */

static void check_dlopen(void)
{
	struct lib b, c;
	unsigned int first = percpu_next_possible(-1);

	struct snap s0 = snap();
	if (lib_open(&b, MODLIB_B_PATH, "modb")) {
		CHECK(0);
		return;
	}
	struct snap s1 = snap();
	/* Two translation units, two constructors: one registration, one area. */
	if (PERCPU_SMP) {
		CHECK_EQ(s1.cur - s0.cur, 1);
		enum place p = where(b.addr(first), first);
		if (expected_place() == PLACE_RESERVED && s0.res_contig >= b.section_size() + 4096) {
			CHECK_EQ(p, PLACE_RESERVED);
			CHECK(s0.res_free - s1.res_free >= b.section_size());
			CHECK(s0.res_free - s1.res_free < b.section_size() + 4096);
		} else if (expected_place() == PLACE_DYNAMIC) {
			CHECK_EQ(p, PLACE_DYNAMIC);
		}
	}
	check_initial(&b, "modlib_b");
	check_write_read(&b);
	check_shared(&b);

	if (lib_open(&c, MODLIB_C_PATH, "modc")) {
		CHECK(0);
		return;
	}
	check_initial(&c, "modlib_c");
	check_write_read(&c);
	check_shared(&c);
	/* Two dlopen'ed libraries sharing modlib_a's variable, and modlib_a. */
	const struct lib *libs[3] = { &lib_a, &b, &c };
	check_ops(libs, 3);

	lib_close(&c);
	lib_close(&b);
	struct snap s2 = snap();
	CHECK_EQ(s2.cur, s0.cur);
	CHECK_EQ(s2.res_free, s0.res_free);
	if (expected_place() != PLACE_DYNAMIC)
		CHECK_EQ(s2.first_free, s0.first_free);
}

/*
 * Meanwhile a thread of the main program increments moda_shared: each
 * increment looks the copy-relocated address up in the module table
 * while the loop adds and removes modlib_c's entries.
 */
static volatile int hammer_stop;
static unsigned long hammer_count;

static void *hammer(void *arg)
{
	(void)arg;
	while (!hammer_stop) {
		this_cpu_inc(moda_shared);
		hammer_count++;
	}
	return NULL;
}

static unsigned long shared_sum(void)
{
	unsigned long s = 0;
	unsigned int cpu;
	for_each_possible_cpu(cpu)
		s += (unsigned long)per_cpu(moda_shared, cpu);
	return s;
}

static void check_leak_loop(int iterations)
{
	struct lib c;
	pthread_t t;

	/* One cycle first: a small section in the dynamic area fills a size class's cache. */
	if (lib_open(&c, MODLIB_C_PATH, "modc"))
		return;
	lib_close(&c);
	struct snap s0 = snap();
	unsigned long shared0 = shared_sum();
	CHECK(pthread_create(&t, NULL, hammer, NULL) == 0);
	for (int i = 0; i < iterations; i++) {
		unsigned int cpu;
		if (lib_open(&c, MODLIB_C_PATH, "modc")) {
			CHECK(0);
			return;
		}
		for_each_possible_cpu(cpu) {
			int bad = c.check_cpu(cpu, c.base());
			if (bad) {
				fprintf(stderr, "reload %d: cpu %u: %d value(s) not initial\n", i, cpu, bad);
				CHECK(0);
			}
			c.write_cpu(cpu, 30 + (i + (int)cpu) % 50);
		}
		c.inc(3);
		lib_close(&c);
	}
	hammer_stop = 1;
	pthread_join(t, NULL);
	CHECK_EQ(shared_sum() - shared0, hammer_count + 3 * (unsigned long)iterations);
	struct snap s1 = snap();
	CHECK_EQ(s1.cur, s0.cur);
	CHECK_EQ(s1.res_free, s0.res_free);
	CHECK_EQ(s1.res_contig, s0.res_contig);
	CHECK_EQ(s1.first_free, s0.first_free);
	printf("%d load/unload cycles (%lu concurrent increments): nr_cur_alloc %lu, reserved free %zu, first chunk free %zu\n",
	       iterations, hammer_count, s1.cur, s1.res_free, s1.first_free);
}

int main(int argc, char **argv)
{
	int iterations = argc > 1 ? atoi(argv[1]) : 10000;

	printf("mode %s, %u possible CPUs, reserved %zu\n", percpu_mode_name(),
	       percpu_num_possible_cpus(), snap().reserved_size);
	check_static_and_linked();
	check_dlopen();
	check_leak_loop(iterations);
	return check_report();
}
