/* SPDX-License-Identifier: MIT */
/*
 * percpu_counter: the slow paths (see <percpu/counter.h> for the design
 * and the error bound).  Written from the kernel's documented semantics.
 *
 * Exactness: count + sum(deltas) changes only by the amounts added.  The
 * fast path commits a delta change with one bounded per-CPU add; a fold
 * moves one CPU's whole delta into count with a per-CPU xchg (atomic
 * against every other operation on that CPU's slot, in rseq and in atomic
 * mode) and adds it to count under the lock, so sum(), which holds the
 * same lock, never sees a delta both in its slot and in count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include <percpu/counter.h>

/* The kernel's GFP_KERNEL bits (see <percpu/linux.h>): anything less may not block. */
#define PCPU_GFP_KERNEL 0xcc0u
#define PCPU_GFP_NOWARN 0x2000u

int32_t percpu_counter__batch;

int32_t percpu_counter__batch_init(void)
{
	int32_t b = __atomic_load_n(&percpu_counter__batch, __ATOMIC_RELAXED);

	if (b)
		return b;
	long online = sysconf(_SC_NPROCESSORS_ONLN);

	if (online < 1)
		online = 1;
	b = online > 16 ? (int32_t)pcpu_min(online * 2, 1L << 20) : 32;
	/* Every caller computes the same value: a plain race is harmless. */
	__atomic_store_n(&percpu_counter__batch, b, __ATOMIC_RELAXED);
	return b;
}

int percpu_counter_init_many(struct percpu_counter *fbc, int64_t amount,
					 unsigned int gfp, uint32_t nr_counters)
{
	unsigned int flags = 0;
	int32_t __percpu *base;
	struct percpu_counter__shared *shared;

	if (!nr_counters)
		return 0;
	if (gfp && (gfp & PCPU_GFP_KERNEL) != PCPU_GFP_KERNEL)
		flags |= PERCPU_ALLOC_F_NOWAIT;
	if (gfp & PCPU_GFP_NOWARN)
		flags |= PERCPU_ALLOC_F_NOWARN;
	/* One allocation for all: the kernel's init_many (zeroed deltas). */
	base = percpu_alloc_flags((size_t)nr_counters * PERCPU_COUNTER__SLOTS * sizeof(int32_t),
				  PERCPU_COUNTER__SLOTS * sizeof(int32_t), flags);
	if (!base)
		return -ENOMEM;
	shared = aligned_alloc(_Alignof(struct percpu_counter__shared),
			       (size_t)nr_counters * sizeof(*shared));
	if (!shared) {
		percpu_free(base);
		return -ENOMEM;
	}
	/* percpu_counter_add() relies on the batch being known from here on. */
	(void)percpu_counter_default_batch();
	for (uint32_t i = 0; i < nr_counters; i++) {
		shared[i] = (struct percpu_counter__shared){ .count = amount };
		fbc[i].shared = &shared[i];
		/* A per-CPU pointer: element i of every CPU's array. */
		__atomic_store_n(&fbc[i].counters, base + (size_t)i * PERCPU_COUNTER__SLOTS,
				 __ATOMIC_RELEASE);
	}
	return 0;
}

void percpu_counter_destroy_many(struct percpu_counter *fbc, uint32_t nr_counters)
{
	if (!nr_counters || !fbc[0].counters)
		return;
	percpu_free(fbc[0].counters);
	free(fbc[0].shared);
	for (uint32_t i = 0; i < nr_counters; i++) {
		fbc[i].counters = NULL;
		fbc[i].shared = NULL;
	}
}

/*
 * The count lock is the sequence count itself: odd while held, so every
 * hold (a fold, a sum, a set) is a write section that a lock-free reader
 * can detect (limited_add needs that).  Taking it is one locked bit-test-
 * and-set, which asks for the line exclusively at once; the line is
 * usually free but in the cache of the CPU that folded last, and a plain
 * load first would fetch it shared and then upgrade it.  Releasing it is
 * a plain store.
 *
 * The kernel's lock is held with interrupts off for a few instructions; a
 * thread cannot stop being preempted.  So a waiter spins briefly, then
 * yields a few times (a preempted holder may be waiting for this CPU),
 * and only then sleeps on the futex, so that a real-time waiter cannot
 * spin forever on a holder it starves.  The release does not fence
 * between its store and its look at sleepers, so it can miss a sleeper
 * that went to sleep in that instant: sleeps are bounded (1 ms) and a
 * missed wake costs that much, never a hang.
 */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static inline bool count_trylock(uint32_t *seq)
{
	bool held;

#if (defined(__x86_64__) || defined(__i386__)) && !PCPU_UNDER_TSAN
	/* Spelled out: clang makes a load and a cmpxchg loop of fetch_or. */
	__asm__ volatile("lock btsl $0, %0" : "+m"(*seq), "=@ccc"(held) : : "memory");
#else
	held = __atomic_fetch_or(seq, 1, __ATOMIC_ACQUIRE) & 1;
#endif
	/*
	 * The odd sequence before anything written under the lock: an
	 * acquire RMW alone does not order its store before later stores.
	 */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return !held;
}

static void count_lock(struct percpu_counter *fbc)
{
	struct percpu_counter__shared *sh = fbc->shared;

	if (count_trylock(&sh->seq))
		return;
	for (unsigned int tries = 0;; tries++) {
		uint32_t v = __atomic_load_n(&sh->seq, __ATOMIC_RELAXED);

		if (!(v & 1)) {
			if (count_trylock(&sh->seq))
				return;
		} else if (tries < 100) {
			cpu_relax();
		} else if (tries < 116) {
			sched_yield();
		} else {
			struct timespec ms = { 0, 1000000 };

			__atomic_fetch_add(&sh->sleepers, 1, __ATOMIC_SEQ_CST);
			syscall(SYS_futex, &sh->seq, FUTEX_WAIT_PRIVATE, v, &ms, NULL, 0);
			__atomic_fetch_sub(&sh->sleepers, 1, __ATOMIC_RELAXED);
		}
	}
}

static void count_unlock(struct percpu_counter *fbc)
{
	struct percpu_counter__shared *sh = fbc->shared;

	/* Odd to the next even value: a new sequence. */
	__atomic_store_n(&sh->seq, __atomic_load_n(&sh->seq, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
	if (__atomic_load_n(&sh->sleepers, __ATOMIC_RELAXED))
		syscall(SYS_futex, &sh->seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/*
 * This CPU's delta and amount into count; the caller holds the lock.  The
 * kernel's fold, then, when this CPU's previous fold went the same way,
 * a second step that moves the delta to the far end of its window (see
 * <percpu/counter.h>): rest comes out of count first and then goes into
 * the delta, only if the delta stays within (-batch, batch).  In each
 * step's window the amount in flight and the folding CPU's delta add up
 * to less than 2 x batch, which is where the bound's "+ 1" comes from; a
 * single step to rest would leave up to 3 x batch in flight.
 *
 * The direction is only a hint: should the thread move between the
 * exchanges, another CPU's hint or delta changes, never a total.
 */
void (*pcpu_counter_fold_hook)(int step);

static inline void fold_hook(int step)
{
	void (*hook)(int) = __atomic_load_n(&pcpu_counter_fold_hook, __ATOMIC_RELAXED);

	if (__builtin_expect(hook != NULL, 0))
		hook(step);
}

static void fold_locked(struct percpu_counter *fbc, int64_t amount, int32_t batch)
{
	int64_t *count = &fbc->shared->count;	/* read lock-free: stores are atomic */
	int32_t dir = amount > 0 ? 1 : amount < 0 ? -1 : 0;
	int32_t prev = percpu_this_xchg(fbc->counters + 1, dir);
	int32_t old = percpu_this_xchg(fbc->counters, 0);
	int64_t c = *count + old + amount;

	fold_hook(1);
	__atomic_store_n(count, c, __ATOMIC_RELAXED);
	if (!dir || prev != dir || batch <= 1)
		return;
	int32_t rest = -dir * (pcpu_min(batch, 1 << 30) - 1);
	__atomic_store_n(count, c - rest, __ATOMIC_RELAXED);
	fold_hook(2);
	if (!pcpu__add_within_4((uintptr_t)fbc->counters, rest, batch))
		__atomic_store_n(count, c, __ATOMIC_RELAXED);
}

void percpu_counter__fold(struct percpu_counter *fbc, int64_t amount, int32_t batch)
{
	count_lock(fbc);
	fold_locked(fbc, amount, batch);
	count_unlock(fbc);
}

void percpu_counter__add_slow(struct percpu_counter *fbc, int64_t amount, int32_t batch)
{
	/* The critical section's arithmetic is 32-bit: |amount| < b <= 2^30. */
	int32_t b = pcpu_min(batch, 1 << 30);

	if (amount < b && amount > -(int64_t)b &&
	    pcpu__add_within_4((uintptr_t)fbc->counters, (int32_t)amount, b))
		return;
	percpu_counter__fold(fbc, amount, batch);
}

static int64_t sum_deltas(struct percpu_counter *fbc)
{
	int64_t s = 0;
	unsigned int cpu;

	percpu_for_each_possible_cpu(cpu)
		s += __atomic_load_n(percpu_ptr(fbc->counters, cpu), __ATOMIC_RELAXED);
	return s;
}

int64_t __percpu_counter_sum(struct percpu_counter *fbc)
{
	int64_t ret;

	count_lock(fbc);
	ret = fbc->shared->count + sum_deltas(fbc);
	count_unlock(fbc);
	return ret;
}

void percpu_counter_set(struct percpu_counter *fbc, int64_t amount)
{
	unsigned int cpu;

	count_lock(fbc);
	/*
	 * A remote store can race a fast-path commit on that CPU and be
	 * overwritten: as in the kernel, set is exact only when no add runs.
	 */
	percpu_for_each_possible_cpu(cpu) {
		int32_t *slots = percpu_ptr(fbc->counters, cpu);

		__atomic_store_n(&slots[0], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&slots[1], 0, __ATOMIC_RELAXED);	/* folds start afresh */
	}
	__atomic_store_n(&fbc->shared->count, amount, __ATOMIC_RELAXED);
	count_unlock(fbc);
}

int __percpu_counter_compare(struct percpu_counter *fbc, int64_t rhs, int32_t batch)
{
	int64_t count = percpu_counter_read(fbc);

	/* |read - exact| < the error bound: beyond it the sign is certain. */
	if (count - rhs > percpu_counter_error_bound(batch))
		return 1;
	if (rhs - count > percpu_counter_error_bound(batch))
		return -1;
	count = __percpu_counter_sum(fbc);
	return count > rhs ? 1 : count < rhs ? -1 : 0;
}

/*
 * The kernel's limited_add: amount > 0 is added only if the result stays
 * <= limit; amount < 0 only if it stays >= limit; 0 always succeeds.
 */
bool __percpu_counter_limited_add(struct percpu_counter *fbc, int64_t limit,
					      int64_t amount, int32_t batch)
{
	int64_t unknown = percpu_counter_error_bound(batch), c;
	bool good = false;

	if (amount == 0)
		return true;
	/*
	 * Lock-free when even the worst case of the other deltas keeps us on
	 * the right side: exact-after-add < count + unknown, because the new
	 * local delta is committed only within (-batch, batch) too.
	 */
	if (amount < batch && amount > -(int64_t)batch) {
		uint32_t seq = __atomic_load_n(&fbc->shared->seq, __ATOMIC_ACQUIRE);

		c = percpu_counter_read(fbc);
		if (!(seq & 1) && (amount > 0 ? c + unknown <= limit : c - unknown >= limit) &&
		    pcpu__add_within_4((uintptr_t)fbc->counters, (int32_t)amount, batch)) {
			/*
			 * The decision holds only if count did not move between
			 * the read and the commit (a fold frees a CPU's delta to
			 * grow again).  If it moved, take the amount back out and
			 * decide under the lock.
			 */
			/* The commit, then the check (Dekker with the locked path). */
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (__atomic_load_n(&fbc->shared->seq, __ATOMIC_RELAXED) == seq)
				return true;
			percpu_counter_add_batch(fbc, -amount, batch);
		}
	}

	count_lock(fbc);
	/*
	 * The whole decision is a write section (the lock is the odd
	 * sequence): a lock-free limited_add that commits meanwhile either
	 * sees the odd sequence (and takes its amount back) or is seen by the
	 * sum below (the fences pair).
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	c = fbc->shared->count + amount;
	if (amount > 0) {
		if (c - unknown > limit)
			goto out;
		good = c + unknown <= limit;
	} else {
		if (c + unknown < limit)
			goto out;
		good = c - unknown >= limit;
	}
	if (!good) {
		/* Too close to tell from count alone: the exact sum decides. */
		c += sum_deltas(fbc);
		good = amount > 0 ? c <= limit : c >= limit;
	}
	if (good)
		fold_locked(fbc, amount, batch);
out:
	count_unlock(fbc);
	return good;
}
