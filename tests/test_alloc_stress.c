/* SPDX-License-Identifier: MIT */
/*
 * Threads: 8 threads allocate areas of random sizes, fill them with a
 * pattern on every possible CPU and hand them through a shared queue to
 * whichever thread frees next, which checks the pattern on every CPU
 * first.  Half the threads allocate blocking, half non-blocking (and fall
 * back to blocking on ENOMEM).  Meanwhile the main thread takes
 * statistics snapshots: none may show more frees than allocations.  At
 * the end nr_cur_alloc is back where it started.
 *
 * Before that, one thread sweeps request sizes down to 1 and then up past
 * anything the workers ask for, so min_alloc_size and max_alloc_size move
 * on every step (without a lock: a cached allocation takes none) while
 * snapshots read them; min may only fall and max only rise.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>

#include "alloc_test_util.h"

#define NR_THREADS 8
#define QUEUE_CAP 4096

struct item {
	char __percpu *p;
	size_t size;
	uint64_t id;
};

static struct {
	pthread_mutex_t lock;
	struct item q[QUEUE_CAP];
	unsigned int head, len;
} queue = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int iterations = 150000;
static unsigned long nowait_ok, nowait_enomem, cross_frees;
static int workers_done;

static bool push(struct item it)
{
	bool ok;

	pthread_mutex_lock(&queue.lock);
	ok = queue.len < QUEUE_CAP;
	if (ok)
		queue.q[(queue.head + queue.len++) % QUEUE_CAP] = it;
	pthread_mutex_unlock(&queue.lock);
	return ok;
}

static bool pop(struct item *it)
{
	bool ok;

	pthread_mutex_lock(&queue.lock);
	ok = queue.len > 0;
	if (ok) {
		*it = queue.q[queue.head];
		queue.head = (queue.head + 1) % QUEUE_CAP;
		queue.len--;
	}
	pthread_mutex_unlock(&queue.lock);
	return ok;
}

static void check_and_free(const struct item *it)
{
	unsigned int cpu;

	percpu_for_each_possible_cpu(cpu) {
		long off = pat_check(percpu_ptr(it->p, cpu), it->size, it->id, cpu);
		if (off >= 0)
			FAIL("area id %#llx (%p, %zu B) corrupted on cpu %u at offset %ld",
			     (unsigned long long)it->id, (void *)it->p, it->size, cpu, off);
	}
	percpu_free(it->p);
}

static void *worker(void *arg)
{
	unsigned int t = (unsigned int)(uintptr_t)arg;
	uint64_t r = 0x1234567ull + t * 0x9e3779b97f4a7c15ull, serial = 0;
	bool nowait_thread = t % 2;
	struct item own[16];
	int nr_own = 0;
	unsigned long ok = 0, enomem = 0, cross = 0;

	for (int i = 0; i < iterations; i++) {
		uint64_t k = rng_below(&r, 100);
		if (k < 50) {
			uint64_t s = rng_below(&r, 100);
			size_t size = s < 70 ? 1 + rng_below(&r, 64) :
				      s < 97 ? 65 + rng_below(&r, 960) : 1025 + rng_below(&r, 16000);
			size_t align = (size_t)1 << rng_below(&r, 7);
			char __percpu *p = NULL;

			if (nowait_thread) {
				p = percpu_alloc_flags(size, align, PERCPU_ALLOC_F_NOWAIT |
								    PERCPU_ALLOC_F_NOWARN);
				if (p)
					ok++;
				else if (errno == ENOMEM)
					enomem++;
				else
					FAIL("nowait errno %d", errno);
			}
			if (!p)
				p = percpu_alloc(size, align);
			if (!p)
				FAIL("thread %u: alloc(%zu, %zu) failed, errno %d", t, size, align, errno);
			if ((uintptr_t)p % align)
				FAIL("misaligned %p for %zu", (void *)p, align);
			struct item it = { p, size, ((uint64_t)t << 48) | serial++ };
			unsigned int cpu;
			long off;
			int bad = check_zero_all_cpus(p, size, &off);
			if (bad >= 0)
				FAIL("new area %p (%zu B) not zero on cpu %d at %ld", (void *)p, size,
				     bad, off);
			percpu_for_each_possible_cpu(cpu)
				pat_fill(percpu_ptr(p, cpu), size, it.id, cpu);
			if (rng_below(&r, 4) == 0 && nr_own < 16)
				own[nr_own++] = it;
			else if (!push(it))
				check_and_free(&it);
		} else if (k < 90) {
			struct item it;
			if (pop(&it)) {
				cross += (it.id >> 48) != t;
				check_and_free(&it);
			}
		} else if (nr_own) {
			int j = (int)rng_below(&r, (uint64_t)nr_own);
			check_and_free(&own[j]);
			own[j] = own[--nr_own];
		}
		if (rng_below(&r, 20000) == 0)
			percpu_balance();
	}
	while (nr_own)
		check_and_free(&own[--nr_own]);
	__atomic_fetch_add(&nowait_ok, ok, __ATOMIC_RELAXED);
	__atomic_fetch_add(&nowait_enomem, enomem, __ATOMIC_RELAXED);
	__atomic_fetch_add(&cross_frees, cross, __ATOMIC_RELAXED);
	__atomic_fetch_add(&workers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

#define SWEEP_TOP 2048
#define SWEEP_MAX 20480		/* above the workers' largest request */
static int sweep_done;

static void alloc_and_free(size_t size)
{
	char __percpu *p = percpu_alloc(size, 1);
	if (!p)
		FAIL("sweep: alloc(%zu, 1) failed, errno %d", size, errno);
	percpu_free(p);
}

static void *size_sweeper(void *arg)
{
	(void)arg;
	for (size_t size = SWEEP_TOP; size >= 1; size--)
		alloc_and_free(size);
	for (size_t size = SWEEP_TOP; size <= SWEEP_MAX; size += 8)
		alloc_and_free(size);
	__atomic_store_n(&sweep_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void sweep_sizes(void)
{
	pthread_t th;
	size_t min = SIZE_MAX, max = 0;
	unsigned long snapshots = 0;

	CHECK(pthread_create(&th, NULL, size_sweeper, NULL) == 0);
	while (!__atomic_load_n(&sweep_done, __ATOMIC_ACQUIRE)) {
		struct percpu_stats st = get_stats();
		size_t smin = st.min_alloc_size ? st.min_alloc_size : SIZE_MAX;
		if (smin > min || st.max_alloc_size < max)
			FAIL("snapshot %lu: min_alloc_size %zu -> %zu, max_alloc_size %zu -> %zu",
			     snapshots, min, st.min_alloc_size, max, st.max_alloc_size);
		min = smin;
		max = st.max_alloc_size;
		snapshots++;
	}
	CHECK(pthread_join(th, NULL) == 0);
	struct percpu_stats st = get_stats();
	if (st.min_alloc_size != 1 || st.max_alloc_size != SWEEP_MAX)
		FAIL("after the sweep: min_alloc_size %zu, max_alloc_size %zu", st.min_alloc_size,
		     st.max_alloc_size);
	printf("stress: %lu snapshots during the size sweep\n", snapshots);
}

int main(void)
{
	pthread_t th[NR_THREADS];
	struct item it;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (getenv("PERCPU_STRESS_ITERATIONS"))
		iterations = atoi(getenv("PERCPU_STRESS_ITERATIONS"));
	CHECK(percpu_setup(NULL) == 0);
	struct percpu_stats st0 = get_stats();
	printf("stress: %d threads x %d iterations on %ld online CPUs, %u possible, mode %s\n",
	       NR_THREADS, iterations, sysconf(_SC_NPROCESSORS_ONLN), percpu_num_possible_cpus(),
	       percpu_mode_name());
	sweep_sizes();
	for (int i = 0; i < NR_THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i) == 0);
	/* Snapshots race the workers' cached and bitmap paths. */
	unsigned long snapshots = 0;
	while (__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE) < NR_THREADS) {
		struct percpu_stats st = get_stats();
		if (st.nr_alloc < st.nr_dealloc || st.nr_cur_alloc > st.nr_alloc)
			FAIL("snapshot %lu: nr_alloc %lu nr_dealloc %lu nr_cur_alloc %lu", snapshots,
			     st.nr_alloc, st.nr_dealloc, st.nr_cur_alloc);
		snapshots++;
	}
	for (int i = 0; i < NR_THREADS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	printf("stress: %lu statistics snapshots while the threads ran\n", snapshots);
	unsigned int left = queue.len;
	while (pop(&it))
		check_and_free(&it);
	percpu_balance();
	struct percpu_stats st1 = get_stats();
	printf("stress: %lu cross-thread frees, %lu nowait ok, %lu nowait ENOMEM, %u drained at end\n",
	       cross_frees, nowait_ok, nowait_enomem, left);
	printf("stress: nr_alloc %lu nr_dealloc %lu; nr_cur_alloc %lu -> %lu; chunks %u (max %u)\n",
	       st1.nr_alloc - st0.nr_alloc, st1.nr_dealloc - st0.nr_dealloc, st0.nr_cur_alloc,
	       st1.nr_cur_alloc, st1.nr_chunks, st1.nr_max_chunks);
	if (st1.nr_cur_alloc != st0.nr_cur_alloc)
		FAIL("nr_cur_alloc %lu at start, %lu at end", st0.nr_cur_alloc, st1.nr_cur_alloc);
	CHECK(cross_frees > 0);
	printf("test_alloc_stress: OK\n");
	return 0;
}
