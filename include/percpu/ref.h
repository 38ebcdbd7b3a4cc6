/* SPDX-License-Identifier: MIT */
/*
 * percpu_ref: the kernel's per-CPU reference count.
 *
 *   percpu_ref_init(&obj->ref, release, 0, 0);   (one reference held)
 *   percpu_ref_get(&obj->ref); ... percpu_ref_put(&obj->ref);
 *   percpu_ref_kill(&obj->ref);                  (drops the initial one)
 *   ... release(&obj->ref) runs once, after the last put.
 *
 * While live, get and put add to the current CPU's unsigned long count
 * (one this_cpu operation, no atomic instruction); the total is known
 * only as the sum over CPUs.  kill (or switch_to_atomic) flips the ref to
 * one atomic count, biased by PERCPU_COUNT_BIAS while the per-CPU counts
 * are summed into it so it cannot reach zero early, then unbiased; from
 * then on put decrements the atomic and the one that reaches zero calls
 * release.
 *
 * The kernel reads the mode and adds to the per-CPU count with preemption
 * disabled (an RCU read-side section) and waits for a grace period before
 * summing.  A thread cannot disable preemption.  In rseq mode a get/put is
 * one rseq critical section that reads the mode and adds, and the switch
 * publishes the new mode and runs
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ), which restarts every
 * section in flight.  In the fallback a get/put is a tiny read-side
 * section marked in a per-thread word (plain stores, no atomic
 * instruction), and the switch also waits until every thread seen inside
 * one has left it (userspace RCU's "memb" flavour).  The argument is in
 * src/ref.c.
 *
 * Mode switches (kill, switch_to_*, reinit, resurrect) are synchronous
 * and may block briefly; call them from thread context, not from a signal
 * handler that interrupted a get/put.  get/put/tryget are async-signal-
 * safe once the thread has used a percpu_ref outside a signal handler.
 */
#ifndef PERCPU_REF_H
#define PERCPU_REF_H

#include <stdbool.h>
#include <stdint.h>
#include <percpu/percpu.h>
#include <percpu/ops.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct percpu_ref;
typedef void (percpu_ref_func_t)(struct percpu_ref *);

/* Low bits of percpu_count_ptr (the per-CPU pointer is 8-byte aligned). */
enum {
	__PERCPU_REF_ATOMIC = 1UL << 0,		/* use the atomic count */
	__PERCPU_REF_DEAD = 1UL << 1,		/* killed: tryget_live fails */
	__PERCPU_REF_ATOMIC_DEAD = __PERCPU_REF_ATOMIC | __PERCPU_REF_DEAD,
	__PERCPU_REF_FLAG_BITS = 2,
};

/* percpu_ref_init() flags (the kernel's values). */
enum {
	PERCPU_REF_INIT_ATOMIC = 1 << 0,	/* start in atomic mode */
	PERCPU_REF_INIT_DEAD = 1 << 1,		/* start dead, count 0 (implies atomic) */
	PERCPU_REF_ALLOW_REINIT = 1 << 2,	/* may go back to per-CPU mode */
};

/* Keeps the atomic count away from zero while per-CPU counts are pending. */
#define PERCPU_COUNT_BIAS (1UL << (sizeof(unsigned long) * 8 - 1))

struct percpu_ref_data {
	long count;			/* the atomic count */
	percpu_ref_func_t *release;
	percpu_ref_func_t *confirm_switch;	/* during a switch to atomic */
	bool force_atomic;		/* switch_to_atomic() in force */
	bool allow_reinit;
	struct percpu_ref *ref;
};

struct percpu_ref {
	/*
	 * The per-CPU pointer of the counts | __PERCPU_REF_ATOMIC/DEAD; after
	 * percpu_ref_exit() the final count << __PERCPU_REF_FLAG_BITS.
	 */
	unsigned long percpu_count_ptr;
	struct percpu_ref_data *data;
};

/*
 * gfp: the kernel's allocation flags (<percpu/linux.h>); 0 = may block.
 * Returns 0 or -ENOMEM.
 */
int percpu_ref_init(struct percpu_ref *ref, percpu_ref_func_t *release, unsigned int flags,
		    unsigned int gfp);
void percpu_ref_exit(struct percpu_ref *ref);
void percpu_ref_switch_to_atomic(struct percpu_ref *ref, percpu_ref_func_t *confirm_switch);
void percpu_ref_switch_to_atomic_sync(struct percpu_ref *ref);
void percpu_ref_switch_to_percpu(struct percpu_ref *ref);
/*
 * Marks the ref dead, switches it to atomic mode, calls confirm_kill (if
 * not NULL; tryget_live fails from then on), then drops the initial
 * reference.
 */
void percpu_ref_kill_and_confirm(struct percpu_ref *ref, percpu_ref_func_t *confirm_kill);
void percpu_ref_resurrect(struct percpu_ref *ref);
void percpu_ref_reinit(struct percpu_ref *ref);
bool percpu_ref_is_zero(struct percpu_ref *ref);

static inline void percpu_ref_kill(struct percpu_ref *ref)
{
	percpu_ref_kill_and_confirm(ref, NULL);
}

static inline bool percpu_ref_is_dying(struct percpu_ref *ref)
{
	return __atomic_load_n(&ref->percpu_count_ptr, __ATOMIC_RELAXED) & __PERCPU_REF_DEAD;
}

/* ---- the read-side section (see src/ref.c for the argument) ---------- */

/*
 * Per thread: bits 0-7 the nesting depth of sections (signal handlers),
 * bits 8-61 the number of outermost sections left, bit 62 "membarrier is
 * unavailable: fence", bit 63 "thread not registered yet".
 */
#define PERCPU_REF__DEPTH	0xffull
#define PERCPU_REF__LEFT_ONE	0x100ull
#define PERCPU_REF__FENCE	(1ull << 62)
#define PERCPU_REF__UNREG	(1ull << 63)

extern __thread uint64_t percpu_ref__rd __attribute__((tls_model("initial-exec")));
uint64_t percpu_ref__enter_slow(void);

PCPU__INLINE uint64_t percpu_ref__enter(void)
{
	uint64_t w = __atomic_load_n(&percpu_ref__rd, __ATOMIC_RELAXED);

	if (pcpu__unlikely(w >= PERCPU_REF__FENCE))
		return percpu_ref__enter_slow();
	__atomic_store_n(&percpu_ref__rd, w + 1, __ATOMIC_RELAXED);
	/* The mode load must follow the store: the switch's membarrier orders the CPU. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return w;
}

PCPU__INLINE void percpu_ref__leave(uint64_t w)
{
	/* Release: the per-CPU add is visible to whoever sees us leave. */
	__atomic_store_n(&percpu_ref__rd,
			 (w & PERCPU_REF__DEPTH) ? w : w + PERCPU_REF__LEFT_ONE,
			 __ATOMIC_RELEASE);
}

/* The mode word, inside a section. */
PCPU__INLINE unsigned long percpu_ref__ptr(struct percpu_ref *ref)
{
	return __atomic_load_n(&ref->percpu_count_ptr, __ATOMIC_ACQUIRE);
}

#define percpu_ref__counts(p) ((unsigned long __percpu *)(p))

/* ---- get / put ---------------------------------------------------------- */

/*
 * The rseq path of get and put: one critical section reads the mode word
 * and adds to this CPU's count; a switch to atomic restarts it with
 * membarrier (src/ref.c), so it needs no reader word.  1: added; 0: the
 * ref is in atomic mode; -1: take the section (no rseq here or now).
 */
PCPU__INLINE int percpu_ref__rseq_add(struct percpu_ref *ref, unsigned long v)
{
#if PERCPU_SMP && PERCPU_ARCH_RSEQ
	uint64_t w = pcpu__rseq_word_fast();

	/*
	 * A thread's first get or put still takes the section, which
	 * registers its reader word: should the process later switch to
	 * atomics, a get in a signal handler must not have to register.
	 */
	if (pcpu__likely(w != 0) &&
	    pcpu__likely(!(__atomic_load_n(&percpu_ref__rd, __ATOMIC_RELAXED) & PERCPU_REF__UNREG)))
		return pcpu_arch_ref_add(w, &ref->percpu_count_ptr, __PERCPU_REF_ATOMIC_DEAD, v);
#else
	(void)ref, (void)v;
#endif
	return -1;
}

/*
 * Adds v (mod 2^64) to this CPU's count if the ref is in per-CPU mode:
 * the critical section, else a section with the reader word.  false: a
 * mode flag is set, and *pp (if not NULL) gets the mode word.
 */
PCPU__INLINE bool percpu_ref__percpu_add(struct percpu_ref *ref, unsigned long v, unsigned long *pp)
{
	int r = percpu_ref__rseq_add(ref, v);

	if (pcpu__likely(r > 0))
		return true;
	if (r == 0) {
		if (pp)
			*pp = percpu_ref__ptr(ref);
		return false;
	}
	uint64_t w = percpu_ref__enter();
	unsigned long p = percpu_ref__ptr(ref);
	bool added = !(p & __PERCPU_REF_ATOMIC_DEAD);

	if (pcpu__likely(added))
		percpu_this_add(percpu_ref__counts(p), v);
	percpu_ref__leave(w);
	if (pp)
		*pp = p;
	return added;
}

PCPU__INLINE void percpu_ref_get_many(struct percpu_ref *ref, unsigned long nr)
{
	if (pcpu__likely(percpu_ref__percpu_add(ref, nr, NULL)))
		return;
	__atomic_fetch_add(&ref->data->count, (long)nr, __ATOMIC_RELAXED);
}

PCPU__INLINE void percpu_ref_get(struct percpu_ref *ref)
{
	percpu_ref_get_many(ref, 1);
}

PCPU__INLINE void percpu_ref_put_many(struct percpu_ref *ref, unsigned long nr)
{
	if (pcpu__likely(percpu_ref__percpu_add(ref, 0 - nr, NULL)))
		return;
	/* Read before the decrement: release may free the data. */
	percpu_ref_func_t *release = ref->data->release;
	if (__atomic_sub_fetch(&ref->data->count, (long)nr, __ATOMIC_ACQ_REL) == 0)
		release(ref);
}

PCPU__INLINE void percpu_ref_put(struct percpu_ref *ref)
{
	percpu_ref_put_many(ref, 1);
}

/* Atomic mode: add nr unless the count is zero. */
static inline bool percpu_ref__inc_not_zero(struct percpu_ref *ref, unsigned long nr)
{
	long c = __atomic_load_n(&ref->data->count, __ATOMIC_RELAXED);

	/* Unsigned arithmetic: the count carries the 1 << 63 bias while switching. */
	do {
		if (!c)
			return false;
	} while (!__atomic_compare_exchange_n(&ref->data->count, &c,
					      (long)((unsigned long)c + nr), true,
					      __ATOMIC_ACQUIRE, __ATOMIC_RELAXED));
	return true;
}

/* Takes nr references unless the count already reached zero. */
PCPU__INLINE bool percpu_ref_tryget_many(struct percpu_ref *ref, unsigned long nr)
{
	return percpu_ref__percpu_add(ref, nr, NULL) || percpu_ref__inc_not_zero(ref, nr);
}

PCPU__INLINE bool percpu_ref_tryget(struct percpu_ref *ref)
{
	return percpu_ref_tryget_many(ref, 1);
}

/* Takes a reference unless the ref is dying (killed) or at zero. */
PCPU__INLINE bool percpu_ref_tryget_live(struct percpu_ref *ref)
{
	unsigned long p;

	if (pcpu__likely(percpu_ref__percpu_add(ref, 1, &p)))
		return true;
	if (p & __PERCPU_REF_DEAD)
		return false;
	return percpu_ref__inc_not_zero(ref, 1);
}

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* PERCPU_REF_H */

/*
 * Kernel names: every percpu_ref name above is already the kernel's, so
 * <percpu/linux.h> needs nothing more from this header; the section is
 * kept for symmetry with <percpu/counter.h> (percpu_ref_tryget_live_rcu
 * is the same call here: our section does what rcu_read_lock() did).
 */
#if defined(PERCPU_LINUX_H) && !defined(PERCPU_REF_LINUX_NAMES)
#define PERCPU_REF_LINUX_NAMES
#define percpu_ref_tryget_live_rcu(ref)	percpu_ref_tryget_live(ref)
#endif
