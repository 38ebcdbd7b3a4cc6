/* SPDX-License-Identifier: MIT */
/*
 * Fault injection (white box): each mmap, mbind and madvise of the
 * allocator fails in turn, during a workload that creates several chunks,
 * frees some areas and releases pages.  Every allocation succeeds or fails
 * with ENOMEM; every live area keeps its pattern on every CPU; once all is
 * freed and balanced no allocation and no chunk is left behind.
 */
#define _GNU_SOURCE
#include "alloc_test_util.h"
#include "internal.h"

#define NR_AREAS 96
#define MAX_BIG 512
#define ROUNDS 8

struct area {
	char __percpu *p;
	size_t size;
	uint64_t id;
};

static struct area areas[NR_AREAS], big[MAX_BIG];
static uint64_t next_id;
static unsigned long nr_enomem, nr_ok;

static void verify(const struct area *a, const char *when)
{
	unsigned int cpu;

	percpu_for_each_possible_cpu(cpu) {
		long off = pat_check(percpu_ptr(a->p, cpu), a->size, a->id, cpu);
		if (off >= 0)
			FAIL("%s: area %p (%zu B) corrupted on cpu %u at %ld", when, (void *)a->p,
			     a->size, cpu, off);
	}
}

/* Allocates size bytes; the pattern covers the first pat bytes (0: all). */
static void alloc_pat(struct area *a, size_t size, size_t pat, bool nowait)
{
	unsigned int cpu;
	long off;

	errno = 0;
	a->p = nowait ? percpu_alloc_flags(size, 8, PERCPU_ALLOC_F_NOWAIT | PERCPU_ALLOC_F_NOWARN) :
			percpu_alloc_flags(size, 8, PERCPU_ALLOC_F_NOWARN);
	if (!a->p) {
		if (errno != ENOMEM)
			FAIL("alloc(%zu) failed with errno %d, want ENOMEM", size, errno);
		nr_enomem++;
		return;
	}
	nr_ok++;
	a->size = pat ? pat : size;
	a->id = next_id++;
	int bad = check_zero_all_cpus(a->p, size, &off);
	if (bad >= 0)
		FAIL("new area %p (%zu B) not zero on cpu %d at %ld", (void *)a->p, size, bad, off);
	percpu_for_each_possible_cpu(cpu)
		pat_fill(percpu_ptr(a->p, cpu), a->size, a->id, cpu);
}

static void alloc_one(struct area *a, size_t size, bool nowait)
{
	alloc_pat(a, size, 0, nowait);
}

static void free_one(struct area *a)
{
	if (!a->p)
		return;
	verify(a, "before free");
	percpu_free(a->p);
	a->p = NULL;
}

/*
 * Several units' worth of areas: several new chunks.  nr_big chunk-sized
 * areas first, as many chunks at once (the allocator maps chunk slots in
 * batches, so only growth past every earlier peak calls mmap and mbind).
 */
static void workload(uint64_t *r, int nr_big)
{
	size_t max = percpu_max_alloc_size();

	for (int i = 0; i < nr_big; i++)
		alloc_pat(&big[i], max, 512, false);
	for (int i = 0; i < NR_AREAS; i++) {
		size_t size = i % 4 == 3 ? 1 + rng_below(r, 1024) : 2048 + rng_below(r, 12000);
		alloc_one(&areas[i], size, i % 7 == 6);
	}
	for (int i = 0; i < NR_AREAS; i += 3)
		free_one(&areas[i]);
	percpu_balance();
	for (int i = 0; i < NR_AREAS; i++)
		if (areas[i].p)
			verify(&areas[i], "after balance");
	for (int i = 0; i < NR_AREAS; i += 3)
		alloc_one(&areas[i], 4096 + rng_below(r, 8000), false);
	for (int i = 1; i < NR_AREAS; i += 2)
		free_one(&areas[i]);
	percpu_balance();
	for (int i = 0; i < NR_AREAS; i++)
		if (areas[i].p)
			verify(&areas[i], "after second balance");
	for (int i = 0; i < NR_AREAS; i++)
		free_one(&areas[i]);
	for (int i = 0; i < nr_big; i++)
		free_one(&big[i]);
	percpu_balance();
}

/* Enough chunk-sized areas to grow past the largest number of chunks so far. */
static int growth(void)
{
	struct percpu_stats st = get_stats();
	int n = (int)st.nr_max_chunks + 24;

	return n < MAX_BIG ? n : MAX_BIG;
}

static struct percpu_chunk_stats cs[256];

static void check_clean(const struct percpu_stats *st0, const char *when)
{
	struct percpu_stats st;

	memset(&st, 0, sizeof(st));
	st.chunks = cs;
	st.max_chunk_stats = 256;
	CHECK(percpu_stats(&st) == 0);
	if (st.nr_cur_alloc != st0->nr_cur_alloc)
		FAIL("%s: nr_cur_alloc %lu, want %lu", when, st.nr_cur_alloc, st0->nr_cur_alloc);
	/*
	 * Every chunk but the first must be gone (or, if the kernel's one
	 * spare free chunk is kept, be entirely free).
	 */
	unsigned int spare = 0;
	bool first = true;
	for (unsigned int i = 0; i < st.nr_chunk_stats; i++) {
		if (cs[i].reserved)
			continue;
		if (first) {	/* the first chunk stays, full or not */
			first = false;
			continue;
		}
		if (cs[i].free_bytes == st.unit_size && cs[i].nr_alloc == 0)
			spare++;
	}
	if (st.nr_chunks != 1 && !(st.nr_chunks == 2 && spare == 1))
		FAIL("%s: %u chunks left (%u fully free), want the first one only", when,
		     st.nr_chunks, spare);
	if (st.nr_chunks != 1)
		printf("  note: %s: %u chunks, one spare fully free chunk kept\n", when,
		       st.nr_chunks);
}

int main(void)
{
	static const char *const op_names[] = { "mmap", "mbind", "madvise" };
	uint64_t r = 77;

	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK(percpu_setup(NULL) == 0);
	struct percpu_stats st0 = get_stats();
	printf("fault: unit %zu B, %u possible CPUs, node0 %s\n", st0.unit_size,
	       percpu_num_possible_cpus(),
	       access("/sys/devices/system/node/node0", F_OK) ? "absent (mbind skipped)" : "present");

	/* A clean run first: what the workload calls. */
	unsigned long before[PCPU_VM_NR_OPS];
	memcpy(before, pcpu_fault_inject.calls, sizeof(before));
	workload(&r, growth());
	check_clean(&st0, "clean run");
	printf("fault: clean workload: %lu mmap, %lu mbind, %lu madvise calls\n",
	       pcpu_fault_inject.calls[PCPU_VM_MMAP] - before[PCPU_VM_MMAP],
	       pcpu_fault_inject.calls[PCPU_VM_MBIND] - before[PCPU_VM_MBIND],
	       pcpu_fault_inject.calls[PCPU_VM_MADVISE] - before[PCPU_VM_MADVISE]);
	CHECK(pcpu_fault_inject.calls[PCPU_VM_MMAP] > before[PCPU_VM_MMAP]);
	CHECK(pcpu_fault_inject.calls[PCPU_VM_MADVISE] > before[PCPU_VM_MADVISE]);

	for (int op = 0; op < PCPU_VM_NR_OPS; op++) {
		unsigned int injected = 0;
		for (unsigned long k = 1; k <= ROUNDS; k++) {
			unsigned long e0 = nr_enomem;
			pcpu_fault_inject.fail_at[op] = pcpu_fault_inject.calls[op] + k;
			workload(&r, op == PCPU_VM_MADVISE ? 8 : growth());
			bool hit = pcpu_fault_inject.calls[op] >= pcpu_fault_inject.fail_at[op];
			pcpu_fault_inject.fail_at[op] = 0;
			injected += hit;
			char when[64];
			snprintf(when, sizeof(when), "%s failing at call +%lu", op_names[op], k);
			percpu_balance();
			check_clean(&st0, when);
			printf("  %s: %s, %lu ENOMEM\n", when, hit ? "injected" : "not reached",
			       nr_enomem - e0);
		}
		printf("fault: %s: %u of %d rounds injected a failure\n", op_names[op], injected,
		       ROUNDS);
		if (op != PCPU_VM_MBIND || !access("/sys/devices/system/node/node0", F_OK))
			CHECK(injected > 0);
	}
	/* After all that, the allocator still works normally. */
	workload(&r, growth());
	check_clean(&st0, "final run");
	printf("fault: %lu allocations ok, %lu ENOMEM\n", nr_ok, nr_enomem);
	printf("test_fault_inject: OK\n");
	return 0;
}
