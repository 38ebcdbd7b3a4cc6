/* SPDX-License-Identifier: MIT */
/*
 * Memory: with 1024 possible CPUs (simulated) and two threads pinned to
 * real CPUs 0 and 1, 1,000,000 live 8-byte allocations written by both
 * threads cost about what two CPUs' copies cost, not 1024; freeing them
 * and balancing gives the memory back; zeroing a reused area does not
 * fault in the pages of CPUs that never wrote there.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include "alloc_test_util.h"
#include <percpu/ops.h>

#if defined(__SANITIZE_THREAD__) || defined(PERCPU_TEST_EMULATED)
# define RSS_MEANINGFUL 0	/* TSan's shadow memory, or qemu's own memory */
#elif defined(__has_feature)
# if __has_feature(thread_sanitizer)
#  define RSS_MEANINGFUL 0
# endif
#endif
#ifndef RSS_MEANINGFUL
# define RSS_MEANINGFUL 1	/* TSan's shadow memory is counted in RSS: limits off */
#endif

#define NR_OBJS 1000000
#define LIMIT_GROWTH (32u << 20)
#define LIMIT_RETURN (2u << 20)

static long __percpu **objs;
static pthread_barrier_t barrier;
static int pinned_ok[2];

static void *writer(void *arg)
{
	int cpu = (int)(uintptr_t)arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pinned_ok[cpu] = !pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	pthread_barrier_wait(&barrier);
	for (long i = 0; i < NR_OBJS; i++) {
		if (pinned_ok[cpu] && sched_getcpu() == cpu)
			percpu_this_write(objs[i], i + 1);
		else
			*percpu_ptr(objs[i], cpu) = i + 1;
	}
	return NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK(percpu_setup(NULL) == 0);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || !percpu_cpu_possible(1)) {
		printf("memory: needs real CPUs 0 and 1; skipped\n");
		return 77;
	}
	printf("memory: %u possible CPUs (simulated), unit %zu B, mode %s\n",
	       percpu_num_possible_cpus(), percpu_max_alloc_size(), percpu_mode_name());

	size_t rss0 = rss_bytes(), pte0 = proc_status_kb("VmPTE");
	/* mmap, not malloc: its memory goes back at munmap whatever the malloc (or ASan). */
	objs = mmap(NULL, NR_OBJS * sizeof(*objs), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(objs != MAP_FAILED);
	memset(objs, 0xff, NR_OBJS * sizeof(*objs));	/* the array is part of the cost */
	size_t rss_array = rss_bytes();
	for (long i = 0; i < NR_OBJS; i++) {
		objs[i] = PERCPU_ALLOC(long);
		if (!objs[i])
			FAIL("allocation %ld failed: errno %d", i, errno);
	}
	size_t rss_alloc = rss_bytes();

	pthread_t th[2];
	CHECK(pthread_barrier_init(&barrier, NULL, 2) == 0);
	for (int c = 0; c < 2; c++)
		CHECK(pthread_create(&th[c], NULL, writer, (void *)(uintptr_t)c) == 0);
	for (int c = 0; c < 2; c++)
		CHECK(pthread_join(th[c], NULL) == 0);
	size_t rss_written = rss_bytes(), pte1 = proc_status_kb("VmPTE");
	struct percpu_stats st = get_stats();

	/* Both copies hold what was written; a third CPU's copy is still zero. */
	for (long i = 0; i < NR_OBJS; i += 997) {
		CHECK(*percpu_ptr(objs[i], 0) == i + 1);
		CHECK(*percpu_ptr(objs[i], 1) == i + 1);
		CHECK(*percpu_ptr(objs[i], 1023) == 0);
	}
	size_t growth = rss_written - rss0;
	printf("memory: RSS baseline %.1f MB; +%.1f MB pointer array; +%.1f MB after %d "
	       "allocations; +%.1f MB after 2 CPUs wrote them: total growth %.1f MB, absolute "
	       "%.1f MB\n", MB(rss0), MB(rss_array - rss0), MB(rss_alloc - rss_array),
	       NR_OBJS, MB(rss_written - rss_alloc), MB(growth), MB(rss_written));
	printf("memory: chunks %u, resident in chunks %.1f MB, page tables +%.1f MB "
	       "(all 1024 CPUs' copies would be %.0f MB)\n", st.nr_chunks,
	       MB(st.resident_bytes), MB(pte1 - pte0), MB((size_t)NR_OBJS * 8 * 1024));
	/* The chunks' own resident pages: two CPUs' 8 MB each, whatever the build. */
	if (st.resident_bytes > 2 * (size_t)NR_OBJS * 8 + (4u << 20))
		FAIL("chunks hold %.1f MB resident for 2 writing CPUs", MB(st.resident_bytes));
	if (!RSS_MEANINGFUL)
		printf("memory: thread sanitizer or emulation: RSS limits not applied\n");
	else if (growth > LIMIT_GROWTH)
		FAIL("RSS grew by %.1f MB, limit %.1f MB", MB(growth), MB(LIMIT_GROWTH));

	for (long i = 0; i < NR_OBJS; i++)
		percpu_free(objs[i]);
	munmap(objs, NR_OBJS * sizeof(*objs));
	percpu_balance();
	size_t rss_freed = rss_bytes();
	st = get_stats();
	printf("memory: after free + balance RSS %.1f MB (%+.1f MB vs baseline), chunks %u, "
	       "resident in chunks %.1f MB\n", MB(rss_freed),
	       ((double)rss_freed - (double)rss0) / (1024.0 * 1024.0), st.nr_chunks,
	       MB(st.resident_bytes));
	if (RSS_MEANINGFUL && rss_freed > rss0 + LIMIT_RETURN)
		FAIL("RSS %.1f MB after freeing, baseline %.1f MB", MB(rss_freed), MB(rss0));

	/*
	 * Reuse without a page release in between: 64 one-page areas written
	 * on CPUs 0 and 1 only, freed and taken again: the zeroing must not
	 * touch (fault in) the other 1022 CPUs' pages.
	 */
	enum { N = 64 };
	char __percpu *a[N], *b[N];
	for (int i = 0; i < N; i++) {
		a[i] = percpu_alloc(4096, 4096);
		CHECK(a[i]);
		memset(percpu_ptr(a[i], 0), 0x5a, 4096);
		memset(percpu_ptr(a[i], 1), 0xa5, 4096);
	}
	size_t rss_before = rss_bytes();
	for (int i = 0; i < N; i++)
		percpu_free(a[i]);
	int same = 0;
	for (int i = 0; i < N; i++) {
		long off;
		b[i] = percpu_alloc(4096, 4096);
		CHECK(b[i]);
		for (int j = 0; j < N; j++)
			same += b[i] == a[j];
		int bad = check_zero_all_cpus(b[i], 4096, &off);
		if (bad >= 0)
			FAIL("reused page not zero on cpu %d at %ld", bad, off);
	}
	size_t rss_after = rss_bytes();
	printf("memory: reuse of %d written pages (%d same areas): RSS %+.2f MB (faulting in "
	       "1022 idle CPUs' pages would be %+.0f MB)\n", N, same,
	       ((double)rss_after - (double)rss_before) / (1024.0 * 1024.0),
	       MB((size_t)N * 4096 * 1022));
	CHECK(same > N / 2);
	if (RSS_MEANINGFUL && rss_after > rss_before + (1u << 20))
		FAIL("zeroing reused areas grew RSS by %.1f MB", MB(rss_after - rss_before));
	for (int i = 0; i < N; i++)
		percpu_free(b[i]);
	printf("test_alloc_memory: OK\n");
	return 0;
}
