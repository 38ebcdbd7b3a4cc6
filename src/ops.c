/* SPDX-License-Identifier: MIT */
/*
 * The slow path of the this_cpu operations: everything their inline part
 * in <percpu/ops.h> does not finish.
 *
 * The inline part is one attempt: a critical section with the rseq word
 * as the compiler may have kept it, or in atomic mode one atomic on the
 * slot the rseq area's index names.  It comes here when the address is
 * not translated yet (a static variable of another module, or one used
 * before setup), when the word was 0 (before setup), when the critical
 * section left for the slow path (a thread not registered yet, a CPU the
 * tables do not cover, a switch to atomics).  Here every round reads the
 * word again, with acquire, and takes atomic mode's way once the process
 * has switched.
 */
#include "internal.h"
#include <percpu/ops.h>

#if PERCPU_SMP

#if PERCPU_ARCH_RSEQ
/* One critical section for op; true when it committed (*r: its result). */
static bool try_rseq(unsigned int op, uint64_t w, uintptr_t a, uint64_t v, uint64_t v2,
		     uint64_t *r)
{
	switch (op) {
#define RSEQ_CASES(n, ut)								\
	case PCPU__OP(PCPU__ADD, n): return pcpu_arch_add_##n(w, a, (ut)v);		\
	case PCPU__OP(PCPU__AND, n): return pcpu_arch_and_##n(w, a, (ut)v);		\
	case PCPU__OP(PCPU__OR, n): return pcpu_arch_or_##n(w, a, (ut)v);		\
	case PCPU__OP(PCPU__WRITE, n): return pcpu_arch_write_##n(w, a, (ut)v);		\
	case PCPU__OP(PCPU__ADD_RETURN, n): return pcpu_arch_add_return_##n(w, a, (ut)v, r); \
	case PCPU__OP(PCPU__XCHG, n): return pcpu_arch_xchg_##n(w, a, (ut)v, r);	\
	case PCPU__OP(PCPU__CMPXCHG, n): return pcpu_arch_cmpxchg_##n(w, a, (ut)v, (ut)v2, r);
	RSEQ_CASES(1, uint8_t)
	RSEQ_CASES(2, uint16_t)
	RSEQ_CASES(4, uint32_t)
	RSEQ_CASES(8, uint64_t)
	}
	pcpu_msg("unknown this_cpu operation %#x; aborting", op);
	abort();
}
#endif

/* op as a relaxed atomic on the slot at s. */
static uint64_t atomic_op(unsigned int op, uintptr_t s, uint64_t v, uint64_t v2)
{
	switch (op) {
#define ATOMIC_CASES(n, ut)								\
	case PCPU__OP(PCPU__ADD, n):							\
		__atomic_fetch_add((ut *)s, (ut)v, __ATOMIC_RELAXED);			\
		return 0;								\
	case PCPU__OP(PCPU__AND, n):							\
		__atomic_fetch_and((ut *)s, (ut)v, __ATOMIC_RELAXED);			\
		return 0;								\
	case PCPU__OP(PCPU__OR, n):							\
		__atomic_fetch_or((ut *)s, (ut)v, __ATOMIC_RELAXED);			\
		return 0;								\
	case PCPU__OP(PCPU__WRITE, n):							\
		__atomic_store_n((ut *)s, (ut)v, __ATOMIC_RELAXED);			\
		return 0;								\
	case PCPU__OP(PCPU__ADD_RETURN, n):						\
		return __atomic_add_fetch((ut *)s, (ut)v, __ATOMIC_RELAXED);		\
	case PCPU__OP(PCPU__XCHG, n):							\
		return __atomic_exchange_n((ut *)s, (ut)v, __ATOMIC_RELAXED);		\
	case PCPU__OP(PCPU__CMPXCHG, n): {						\
		ut e = (ut)v;								\
		__atomic_compare_exchange_n((ut *)s, &e, (ut)v2, false, __ATOMIC_RELAXED,	\
					    __ATOMIC_RELAXED);				\
		return e;								\
	}
	ATOMIC_CASES(1, uint8_t)
	ATOMIC_CASES(2, uint16_t)
	ATOMIC_CASES(4, uint32_t)
	ATOMIC_CASES(8, uint64_t)
	}
	pcpu_msg("unknown this_cpu operation %#x; aborting", op);
	abort();
}

/*
 * The current CPU's offset for atomic mode, or 0 (not atomic mode yet:
 * the caller runs the slow path and retries).
 */
static intptr_t atomic_offset(uint64_t w)
{
	intptr_t off = w ? 0 : pcpu__atomic_fast_offset();

	if (!off && pcpu__mode() == PERCPU__MODE_ATOMIC)
		off = pcpu__atomic_offset();
	return off;
}

uint64_t percpu__this_slow(unsigned int op, uintptr_t a, uint64_t v, uint64_t v2)
{
	a = percpu__addr((const void *)a);
	for (;;) {
		uint64_t w = pcpu__rseq_word();
#if PERCPU_ARCH_RSEQ
		uint64_t r = 0;

		if (w && try_rseq(op, w, a, v, v2, &r))
			return r;
#endif
		intptr_t off = atomic_offset(w);
		if (off)
			return atomic_op(op, a + (uintptr_t)off, v, v2);
		percpu__slowpath();
	}
}

int percpu__add_within_4_slow(uintptr_t a, int32_t v, int32_t bound)
{
	for (;;) {
		uint64_t w = pcpu__rseq_word();
#if PERCPU_ARCH_RSEQ
		if (w) {
			int added = pcpu_arch_add_within_4(w, a, v, bound);

			if (added >= 0)
				return added;
		}
#endif
		intptr_t off = atomic_offset(w);
		if (off)
			return pcpu__add_within_cas((int32_t *)(a + (uintptr_t)off), v, bound);
		percpu__slowpath();
	}
}

#endif /* PERCPU_SMP */
