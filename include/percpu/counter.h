/* SPDX-License-Identifier: MIT */
/*
 * percpu_counter: the kernel's scalable approximate counter.
 *
 *   struct percpu_counter c;
 *   percpu_counter_init(&c, 0, 0);
 *   percpu_counter_inc(&c);                 (one rseq operation, no lock)
 *   s64 approx = percpu_counter_read(&c);   (lock-free, approximate)
 *   s64 exact = percpu_counter_sum(&c);     (exact once writers are quiet)
 *   percpu_counter_destroy(&c);
 *
 * A global s64 count, under a lock, plus one s32 delta per possible CPU.
 * An add goes to the current CPU's delta; a CPU whose delta would reach
 * +-batch folds it into count under the lock instead.  A fold leaves the
 * delta at 0, as in the kernel, unless this CPU's previous fold of the
 * counter went the same way: a counter that keeps growing (or shrinking)
 * then restarts at the far end of the window, -(batch - 1) (or
 * batch - 1), and folds half as often.  Each fold moves the count's cache
 * line between CPUs, which is what an add costs when several CPUs hammer
 * one counter.  So a counter that only grows reads ahead of its exact
 * value by up to batch - 1 per CPU, where the kernel's reads behind; the
 * bound below is the same either way.
 *
 * Error bound: every CPU's delta stays strictly within (-batch, batch)
 * (an add that would leave it there folds instead, under the lock).  A
 * fold takes its CPU's delta out of the slot and then adds it to count;
 * in between (a few instructions, under the lock, so at most one fold at
 * a time) that CPU's slot can refill.  So while writers use batch b:
 *
 *	|percpu_counter_read() - exact| < b * (nr_possible_cpus + 1)
 *
 * (percpu_counter_error_bound(b)), where "exact" counts every add that
 * has returned and none that has not started; an add in progress may be
 * counted or not.  The kernel's b * nr_cpus has no "+ 1" because it folds
 * with interrupts off; a thread can be preempted in that window.  With
 * the default batch: b = percpu_counter_batch = max(32, 2 x online CPUs),
 * computed once at first use.
 *
 * percpu_counter_sum() reads count and every CPU's delta under the lock:
 * exact once writers are quiet; with writers running, within the same
 * bound of the value at some instant of the call.
 *
 * The kernel's names are these same names (<percpu/linux.h> adds only
 * percpu_counter_batch as a variable-like name).
 */
#ifndef PERCPU_COUNTER_H
#define PERCPU_COUNTER_H

#include <stdbool.h>
#include <stdint.h>
#include <percpu/percpu.h>
#include <percpu/ops.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * What folds write, in a cache line of its own: the counter itself is
 * only read after init, so adds on other CPUs never miss on it.
 */
struct percpu_counter__shared {
	uint32_t seq;			/* the lock: odd while held (a seqcount too) */
	uint32_t sleepers;		/* threads asleep on seq */
	int64_t count;			/* s64: written under lock, read lock-free */
} __attribute__((aligned(64)));

/*
 * Per CPU, each counter owns two s32: its delta (*counters, as in the
 * kernel) and the direction of that CPU's last fold (counters[1]: -1, 0
 * or 1).
 */
#define PERCPU_COUNTER__SLOTS 2

struct percpu_counter {
	int32_t __percpu *counters;	/* s32 per-CPU deltas; NULL when not initialized */
	struct percpu_counter__shared *shared;
};

/*
 * Initializes nr_counters counters fbc[0..nr_counters-1] to amount, with
 * one per-CPU allocation shared by all of them (the kernel's init_many).
 * gfp: the kernel's allocation flags (as <percpu/linux.h> defines them);
 * 0 means GFP_KERNEL (may block).  Returns 0, or -ENOMEM (nothing is
 * allocated then, every counter stays uninitialized).
 */
int percpu_counter_init_many(struct percpu_counter *fbc, int64_t amount, unsigned int gfp,
			     uint32_t nr_counters);
/* Destroys counters set up by one percpu_counter_init_many() call. */
void percpu_counter_destroy_many(struct percpu_counter *fbc, uint32_t nr_counters);

static inline int percpu_counter_init(struct percpu_counter *fbc, int64_t amount,
				      unsigned int gfp)
{
	return percpu_counter_init_many(fbc, amount, gfp, 1);
}

static inline void percpu_counter_destroy(struct percpu_counter *fbc)
{
	percpu_counter_destroy_many(fbc, 1);
}

static inline bool percpu_counter_initialized(struct percpu_counter *fbc)
{
	return __atomic_load_n(&fbc->counters, __ATOMIC_RELAXED) != NULL;
}

/* Sets the counter to amount; exact only when no add runs concurrently. */
void percpu_counter_set(struct percpu_counter *fbc, int64_t amount);
/* count + every CPU's delta, under the lock. */
int64_t __percpu_counter_sum(struct percpu_counter *fbc);
/*
 * Compares the counter with rhs: -1, 0 or 1.  Uses the lock-free read
 * when it differs from rhs by more than percpu_counter_error_bound(batch)
 * (the sign cannot be wrong then), the exact sum otherwise.
 */
int __percpu_counter_compare(struct percpu_counter *fbc, int64_t rhs, int32_t batch);
/*
 * Adds amount only if the result stays <= limit (amount > 0) or >= limit
 * (amount < 0); amount 0 always succeeds.  Returns whether it added.
 * Uses the exact sum when the lock-free view is too close.
 */
bool __percpu_counter_limited_add(struct percpu_counter *fbc, int64_t limit, int64_t amount,
				  int32_t batch);

/*
 * The fold: this CPU's delta + amount go into count, under the lock;
 * batch: the caller's (it places the delta left behind).
 */
void percpu_counter__fold(struct percpu_counter *fbc, int64_t amount, int32_t batch);
/* Computes the default batch (first use). */
int32_t percpu_counter__batch_init(void);
extern int32_t percpu_counter__batch;

/* max(32, 2 x online CPUs), computed once. */
static inline int32_t percpu_counter_default_batch(void)
{
	int32_t b = __atomic_load_n(&percpu_counter__batch, __ATOMIC_RELAXED);

	return pcpu__likely(b) ? b : percpu_counter__batch_init();
}

/*
 * Everything an add's inline attempt leaves: atomic mode, a critical
 * section that left, |amount| >= batch, the batch not computed yet; and
 * the fold.
 */
void percpu_counter__add_slow(struct percpu_counter *fbc, int64_t amount, int32_t batch);

/*
 * The fast path: one critical section adds to this CPU's delta only if
 * the new delta stays within (-batch, batch); that is what keeps the
 * error bound above exact.  (A plain add_return would let a preempted
 * writer leave a delta past the batch until it folds, which breaks the
 * bound.)  Anything else, the fold included, is out of line, so that a
 * loop of adds keeps few values alive.  counters comes from
 * percpu_alloc(): a dynamic per-CPU pointer, which needs no translation.
 */
PCPU__INLINE bool percpu_counter__try_add(struct percpu_counter *fbc, int64_t amount,
					   int32_t batch)
{
	if (pcpu__unlikely(amount >= batch || amount <= -(int64_t)batch || batch > (1 << 30)))
		return false;
#if PERCPU_SMP && PERCPU_ARCH_RSEQ
	uint64_t w = pcpu__rseq_word_fast();
	uintptr_t a = (uintptr_t)fbc->counters;
	int32_t v = (int32_t)amount;
	int r;

	if (pcpu__unlikely(w == 0))
		return false;
	/* A constant amount's sign is known: one compare (arch/x86_64.h). */
	if (__builtin_constant_p(v > 0) && v > 0)
		r = pcpu_arch_add_below_4(w, a, v, batch - v);
	else if (__builtin_constant_p(v < 0) && v < 0)
		r = pcpu_arch_add_above_4(w, a, v, -batch - v);
	else
		r = pcpu_arch_add_within_4(w, a, v, batch);
	return pcpu__likely(r > 0);
#else
	return pcpu__add_within_4((uintptr_t)fbc->counters, (int32_t)amount, batch);
#endif
}

PCPU__INLINE void percpu_counter_add_batch(struct percpu_counter *fbc, int64_t amount,
					    int32_t batch)
{
	if (pcpu__likely(percpu_counter__try_add(fbc, amount, batch)))
		return;
	percpu_counter__add_slow(fbc, amount, batch);
}

PCPU__INLINE void percpu_counter_add(struct percpu_counter *fbc, int64_t amount)
{
	/*
	 * A load the compiler may hoist out of a loop (PCPU__PURE_LOAD32):
	 * the batch is set once, by percpu_counter_init(), before any add can
	 * reach a counter, and a stale 0 would only compute it again below.
	 */
	int32_t batch = (int32_t)PCPU__PURE_LOAD32(percpu_counter__batch);

	/*
	 * percpu_counter_init() computed it (in [32, 2^20]); should this
	 * thread not see that yet, compute it here.  Saying what the range is
	 * lets the compiler drop the range checks of a small constant amount.
	 */
	if (pcpu__unlikely(batch < 32)) {
		percpu_counter__add_slow(fbc, amount, percpu_counter__batch_init());
		return;
	}
	if (batch > (1 << 20))
		__builtin_unreachable();
	percpu_counter_add_batch(fbc, amount, batch);
}

PCPU__INLINE void percpu_counter_sub(struct percpu_counter *fbc, int64_t amount)
{
	percpu_counter_add(fbc, -amount);
}

PCPU__INLINE void percpu_counter_inc(struct percpu_counter *fbc)
{
	percpu_counter_add(fbc, 1);
}

PCPU__INLINE void percpu_counter_dec(struct percpu_counter *fbc)
{
	percpu_counter_add(fbc, -1);
}

/* Approximate, lock-free: count alone (see the error bound above). */
static inline int64_t percpu_counter_read(struct percpu_counter *fbc)
{
	return __atomic_load_n(&fbc->shared->count, __ATOMIC_RELAXED);
}

/* The approximate value, never negative (it may be while deltas are pending). */
static inline int64_t percpu_counter_read_positive(struct percpu_counter *fbc)
{
	int64_t v = percpu_counter_read(fbc);

	return v >= 0 ? v : 0;
}

static inline int64_t percpu_counter_sum(struct percpu_counter *fbc)
{
	return __percpu_counter_sum(fbc);
}

static inline int64_t percpu_counter_sum_positive(struct percpu_counter *fbc)
{
	int64_t v = __percpu_counter_sum(fbc);

	return v >= 0 ? v : 0;
}

static inline int percpu_counter_compare(struct percpu_counter *fbc, int64_t rhs)
{
	return __percpu_counter_compare(fbc, rhs, percpu_counter_default_batch());
}

static inline bool percpu_counter_limited_add(struct percpu_counter *fbc, int64_t limit,
					      int64_t amount)
{
	return __percpu_counter_limited_add(fbc, limit, amount, percpu_counter_default_batch());
}

/* The error bound of percpu_counter_read() for writers using batch (see above). */
static inline int64_t percpu_counter_error_bound(int32_t batch)
{
	return (int64_t)batch * (percpu_num_possible_cpus() + 1);
}

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* PERCPU_COUNTER_H */

/*
 * The kernel's names that differ from ours, defined only for users of
 * <percpu/linux.h> (which includes this header last).  Every function
 * above already has the kernel's name.
 */
#if defined(PERCPU_LINUX_H) && !defined(PERCPU_COUNTER_LINUX_NAMES)
#define PERCPU_COUNTER_LINUX_NAMES
/* The kernel's `extern int percpu_counter_batch`, computed at first use. */
#define percpu_counter_batch	percpu_counter_default_batch()
#endif
