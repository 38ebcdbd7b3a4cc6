/* SPDX-License-Identifier: MIT */
/*
 * Model-based random test of the dynamic allocator.  Random sizes (mostly
 * small, sometimes up to 1 KiB, rarely up to the largest), random
 * power-of-two alignments, blocking and non-blocking allocations,
 * interleaved frees and occasional percpu_balance().  After every step:
 * the new area is aligned, zero on every possible CPU and overlaps no
 * live area; every byte of every live area on every CPU still holds its
 * pattern (derived from allocation id, CPU and offset).
 *
 * Seed: argv[1] "random" takes one from the clock; PERCPU_SEED overrides
 * both.  PERCPU_MODEL_OPS sets the number of steps (default 1,000,000).
 */
#define _GNU_SOURCE
#include <time.h>

#include "alloc_test_util.h"

#define MAX_LIVE 200
#define LOW_LIVE 100

struct area {
	char __percpu *p;
	size_t size, align;
	uint64_t id;
};

static struct area live[MAX_LIVE];
static int nr_live;

/* Recently freed areas, to name the writer of stale data in a failure report. */
#define HISTORY 65536
static struct freed {
	struct area a;
	uint64_t step;
} history[HISTORY];
static uint64_t nr_history;
static uint64_t seed, step;
static size_t max_size;
static uintptr_t trace_addr;	/* PERCPU_MODEL_TRACE: log areas covering it */

#define MFAIL(...) do {								\
	fprintf(stderr, "model: seed %llu step %llu: ",				\
		(unsigned long long)seed, (unsigned long long)step);		\
	FAIL(__VA_ARGS__);							\
} while (0)

static size_t random_size(uint64_t *r)
{
	uint64_t k = rng_below(r, 1000);

	if (k < 780)
		return 1 + rng_below(r, 64);
	if (k < 980)
		return 65 + rng_below(r, 1024 - 64);
	if (k < 998)
		return 1025 + rng_below(r, 8192 - 1024);
	return 8193 + rng_below(r, max_size - 8192);
}

static size_t random_align(uint64_t *r)
{
	uint64_t k = rng_below(r, 100);

	if (k < 60)
		return (size_t)1 << rng_below(r, 4);		/* 1..8 */
	if (k < 95)
		return (size_t)16 << rng_below(r, 5);		/* 16..256 */
	return (size_t)512 << rng_below(r, 4);			/* 512..4096 */
}

static void verify_area(const struct area *a)
{
	unsigned int cpu;

	percpu_for_each_possible_cpu(cpu) {
		long off = pat_check(percpu_ptr(a->p, cpu), a->size, a->id, cpu);
		if (off >= 0)
			MFAIL("area id %llu (%p size %zu align %zu) corrupted on cpu %u at "
			      "offset %ld", (unsigned long long)a->id, (void *)a->p, a->size,
			      a->align, cpu, off);
	}
}

static void verify_all(void)
{
	for (int i = 0; i < nr_live; i++)
		verify_area(&live[i]);
}

static void report_stale(uintptr_t a, unsigned int cpu)
{
	uint64_t word;

	memcpy(&word, percpu_ptr((char __percpu *)a, cpu), 8);
	for (uint64_t n = nr_history; n && nr_history - n < HISTORY; n--) {
		struct freed *f = &history[(n - 1) % HISTORY];
		uintptr_t l = (uintptr_t)f->a.p;
		if (a < l || a >= l + f->a.size)
			continue;
		size_t w = (a - l) / 8;
		fprintf(stderr, "model: %#lx on cpu %u holds %#llx; last freed there: id %llu "
			"%p+%zu align %zu at step %llu (its word %zu pattern %#llx)\n",
			(unsigned long)a, cpu, (unsigned long long)word,
			(unsigned long long)f->a.id, (void *)f->a.p, f->a.size, f->a.align,
			(unsigned long long)f->step, w,
			(unsigned long long)pat_word(pat_base(f->a.id, cpu), w));
		return;
	}
	fprintf(stderr, "model: %#lx on cpu %u holds %#llx; no recent area covered it\n",
		(unsigned long)a, cpu, (unsigned long long)word);
}

static void add_area(char __percpu *p, size_t size, size_t align, uint64_t id)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + size;
	unsigned int cpu;
	long off;

	if (lo % align)
		MFAIL("%p not aligned to %zu", (void *)p, align);
	percpu_for_each_possible_cpu(cpu)
		if ((uintptr_t)percpu_ptr(p, cpu) % align)
			MFAIL("cpu %u copy of %p not aligned to %zu", cpu, (void *)p, align);
	for (int i = 0; i < nr_live; i++) {
		uintptr_t l = (uintptr_t)live[i].p, h = l + live[i].size;
		if (lo < h && l < hi)
			MFAIL("new area %p+%zu overlaps live id %llu %p+%zu", (void *)p, size,
			      (unsigned long long)live[i].id, (void *)live[i].p, live[i].size);
	}
	int c = check_zero_all_cpus(p, size, &off);
	if (c >= 0) {
		report_stale(lo + (uintptr_t)off, (unsigned int)c);
		MFAIL("new area %p size %zu align %zu not zero on cpu %d at offset %ld",
		      (void *)p, size, align, c, off);
	}
	percpu_for_each_possible_cpu(cpu)
		pat_fill(percpu_ptr(p, cpu), size, id, cpu);
	live[nr_live++] = (struct area){ p, size, align, id };
	if (trace_addr && trace_addr >= lo && trace_addr < hi)
		fprintf(stderr, "trace: step %llu alloc id %llu %p+%zu align %zu\n",
			(unsigned long long)step, (unsigned long long)id, (void *)p, size, align);
}

static void free_area(int i)
{
	if (trace_addr && trace_addr >= (uintptr_t)live[i].p &&
	    trace_addr < (uintptr_t)live[i].p + live[i].size)
		fprintf(stderr, "trace: step %llu free id %llu %p+%zu\n", (unsigned long long)step,
			(unsigned long long)live[i].id, (void *)live[i].p, live[i].size);
	percpu_free(live[i].p);
	history[nr_history++ % HISTORY] = (struct freed){ live[i], step };
	live[i] = live[--nr_live];
}

int main(int argc, char **argv)
{
	const char *env = getenv("PERCPU_SEED");
	uint64_t ops = 1000000, next_id = 0;
	unsigned long nr_nowait = 0, nr_nowait_failed = 0, nr_balance = 0, nr_alloc = 0;
	unsigned long nr_large = 0, nr_free = 0;
	struct timespec t0, t1;

	setvbuf(stdout, NULL, _IONBF, 0);
	seed = 20240601;
	if (argc > 1 && !strcmp(argv[1], "random")) {
		clock_gettime(CLOCK_REALTIME, &t0);
		seed = (uint64_t)t0.tv_sec * 1000000007ull ^ (uint64_t)t0.tv_nsec ^
		       (uint64_t)getpid() << 32;
	}
	if (env)
		seed = strtoull(env, NULL, 0);
	if (getenv("PERCPU_MODEL_TRACE"))
		trace_addr = strtoull(getenv("PERCPU_MODEL_TRACE"), NULL, 0);
	if (getenv("PERCPU_MODEL_OPS"))
		ops = strtoull(getenv("PERCPU_MODEL_OPS"), NULL, 0);
	CHECK(percpu_setup(NULL) == 0);
	max_size = percpu_max_alloc_size();
	printf("model: seed %llu (PERCPU_SEED=%llu reproduces), %llu steps, %u possible CPUs, "
	       "largest %zu\n", (unsigned long long)seed, (unsigned long long)seed,
	       (unsigned long long)ops, percpu_num_possible_cpus(), max_size);

	struct percpu_stats st0 = get_stats();
	uint64_t r = seed ? seed : 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (step = 0; step < ops; step++) {
		uint64_t k = rng_below(&r, 10000);
		int alloc_pct = nr_live < LOW_LIVE ? 70 : nr_live >= MAX_LIVE - 10 ? 20 : 50;

		if (k < 2) {
			percpu_balance();
			nr_balance++;
			if (trace_addr)
				fprintf(stderr, "trace: step %llu balance\n", (unsigned long long)step);
		} else if (k < 4) {
			/* A burst of frees, so chunks empty out and are destroyed. */
			while (nr_live > 10)
				free_area((int)rng_below(&r, (uint64_t)nr_live)), nr_free++;
		} else if (nr_live < MAX_LIVE && (int)(k % 100) < alloc_pct) {
			size_t size = random_size(&r), align = random_align(&r);
			bool nowait = rng_below(&r, 4) == 0;
			char __percpu *p;

			errno = 0;
			p = nowait ? percpu_alloc_flags(size, align, PERCPU_ALLOC_F_NOWAIT |
							PERCPU_ALLOC_F_NOWARN) :
				     percpu_alloc(size, align);
			nr_nowait += nowait;
			if (!p) {
				if (!nowait || errno != ENOMEM)
					MFAIL("%s alloc(%zu, %zu) failed, errno %d",
					      nowait ? "nowait" : "blocking", size, align, errno);
				nr_nowait_failed++;
			} else {
				add_area(p, size, align, next_id++);
				nr_alloc++;
				nr_large += size > 8192;
			}
		} else if (nr_live) {
			/* Large areas live shorter, so checking every step stays cheap. */
			int i = (int)rng_below(&r, (uint64_t)nr_live);
			for (int j = 0; j < 2 && live[i].size <= 8192; j++)
				i = (int)rng_below(&r, (uint64_t)nr_live);
			verify_area(&live[i]);
			free_area(i);
			nr_free++;
		}
		verify_all();
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	struct percpu_stats st1 = get_stats();
	while (nr_live)
		free_area(nr_live - 1);
	percpu_balance();
	struct percpu_stats st2 = get_stats();
	printf("model: %lu allocs (%lu > 8 KiB), %lu frees, %lu nowait (%lu ENOMEM), %lu balance, "
	       "%.1f s\n", nr_alloc, nr_large, nr_free, nr_nowait, nr_nowait_failed, nr_balance,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	printf("model: chunks at end %u (max %u), after free-all+balance %u; nr_cur_alloc %lu -> %lu\n",
	       st1.nr_chunks, st1.nr_max_chunks, st2.nr_chunks, st0.nr_cur_alloc, st2.nr_cur_alloc);
	if (st2.nr_cur_alloc != st0.nr_cur_alloc)
		MFAIL("nr_cur_alloc %lu at start, %lu after freeing all", st0.nr_cur_alloc,
		      st2.nr_cur_alloc);
	if (st2.nr_alloc - st0.nr_alloc != nr_alloc)
		MFAIL("nr_alloc grew by %lu, want %lu", st2.nr_alloc - st0.nr_alloc, nr_alloc);
	printf("test_alloc_model: OK\n");
	return 0;
}
