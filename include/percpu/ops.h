/* SPDX-License-Identifier: MIT */
/*
 * this_cpu operations: the kernel's this_cpu_*() for userspace.
 *
 *   PERCPU_DEFINE(long, hits);
 *   percpu_this_inc(PERCPU_VAR(hits));
 *   long *p = PERCPU_ALLOC(long);   (a per-CPU pointer)
 *   long v = percpu_this_add_return(p, 5);
 *
 * The first argument is a per-CPU pointer to a 1, 2, 4 or 8-byte integer
 * or pointer; any other size does not compile.  Operands are converted to
 * the target's type first, as the kernel does: adding -(unsigned int)1 to
 * an unsigned long adds 0xffffffff.
 *
 * Each operation is safe against preemption, migration and signals: it
 * acts on the copy of the CPU the thread runs on when it commits.
 *
 * Fast path (mode "rseq"): one rseq critical section (arch/<arch>.h).
 * Fallback (mode "atomic", when rseq is absent: valgrind, seccomp,
 * glibc.pthread.rseq=0, emulators): a relaxed atomic RMW on the slot of
 * the current CPU.  The mode is process-wide; a switch from rseq to atomic
 * waits until no critical section is in flight, so the two never mix on a
 * slot and totals stay exact.
 */
#ifndef PERCPU_OPS_H
#define PERCPU_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include <percpu/percpu.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; the functions declared here are exported. */
#pragma GCC visibility push(default)

/* Values of percpu_hot.mode (enum pcpu_mode in the library). */
#define PERCPU__MODE_NONE 0
#define PERCPU__MODE_RSEQ 1
#define PERCPU__MODE_ATOMIC 2
#define PERCPU__MODE_UP 3

/*
 * A load of one of the library's variables that the compiler may treat
 * as a constant: through the GOT, in an asm that reads no memory the
 * compiler knows of, so it may be hoisted out of a loop or shared between
 * operations.  Only for variables whose every possible stale value is
 * safe to use (each use says why).
 */
#if defined(__x86_64__)
# define PCPU__PURE_LOAD64(sym) ({						\
	uint64_t pcpu__v;							\
	__asm__("movq " #sym "@GOTPCREL(%%rip), %0\n\t"			\
		"movq (%0), %0" : "=r"(pcpu__v));				\
	pcpu__v; })
# define PCPU__PURE_LOAD32(sym) ({						\
	uint64_t pcpu__v;							\
	__asm__("movq " #sym "@GOTPCREL(%%rip), %0\n\t"			\
		"movl (%0), %k0" : "=r"(pcpu__v));				\
	(uint32_t)pcpu__v; })
#elif defined(__aarch64__)
# define PCPU__PURE_LOAD64(sym) ({						\
	uint64_t pcpu__v;							\
	__asm__("adrp %0, :got:" #sym "\n\t"					\
		"ldr %0, [%0, :got_lo12:" #sym "]\n\t"			\
		"ldr %0, [%0]" : "=r"(pcpu__v));				\
	pcpu__v; })
# define PCPU__PURE_LOAD32(sym) ({						\
	uint64_t pcpu__v;							\
	__asm__("adrp %0, :got:" #sym "\n\t"					\
		"ldr %0, [%0, :got_lo12:" #sym "]\n\t"			\
		"ldr %w0, [%0]" : "=r"(pcpu__v));				\
	(uint32_t)pcpu__v; })
#else
# define PCPU__PURE_LOAD64(sym) ((uint64_t)__atomic_load_n((const uint64_t *)&(sym), __ATOMIC_RELAXED))
# define PCPU__PURE_LOAD32(sym) ((uint32_t)__atomic_load_n((const uint32_t *)&(sym), __ATOMIC_RELAXED))
#endif

#define pcpu__likely(x) __builtin_expect(!!(x), 1)
#define pcpu__unlikely(x) __builtin_expect(!!(x), 0)
#define PCPU__INLINE static inline __attribute__((always_inline))

/* The CPU this thread runs on now (rseq's cpu_id, else sched_getcpu()). */
int percpu_current_cpu(void);

/* The bounded add as a compare-and-exchange loop on one slot (atomic modes). */
PCPU__INLINE int pcpu__add_within_cas(int32_t *s, int32_t v, int32_t bound)
{
	int32_t o = __atomic_load_n(s, __ATOMIC_RELAXED);
	int64_t r;
	do {
		r = (int64_t)o + v;
		if (r >= bound || r <= -(int64_t)bound)
			return 0;
	} while (!__atomic_compare_exchange_n(s, &o, (int32_t)r, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return 1;
}

#if PERCPU_SMP
# if defined(__x86_64__)
#  include <percpu/arch/x86_64.h>
# elif defined(__aarch64__)
#  include <percpu/arch/aarch64.h>
# else
#  define PERCPU_ARCH_RSEQ 0	/* no critical sections: always the fallback */
# endif

/*
 * Out of line: first use (runs setup), the lazy rseq registration of a
 * thread, and the switch to the fallback when a thread cannot use rseq.
 * The caller retries its operation afterwards.
 */
void percpu__slowpath(void);
unsigned int pcpu_current_index(void);

/*
 * Everything the inline attempt of an operation leaves (src/ops.c): a
 * static variable it could not translate, a critical section that left
 * for the slow path, setup.  (Atomic mode, short way and long, runs
 * inline: PCPU__INLINE_OP.)  op: PCPU__OP(kind, n).
 */
uint64_t percpu__this_slow(unsigned int op, uintptr_t a, uint64_t v, uint64_t v2);
enum {
	PCPU__ADD, PCPU__AND, PCPU__OR, PCPU__WRITE, PCPU__ADD_RETURN, PCPU__XCHG, PCPU__CMPXCHG
};
#define PCPU__OP(kind, n) ((unsigned int)(kind) << 4 | (n))

PCPU__INLINE int pcpu__mode(void)
{
	/* Acquire: pairs with the release that publishes the tables or the switch. */
	return __atomic_load_n(&percpu_hot.mode, __ATOMIC_ACQUIRE);
}

/*
 * The current CPU's unit offset for the fallback and for reads: the index
 * from the rseq area when it holds a valid one, else getcpu().  Any valid
 * slot is correct here (atomics), so an odd CPU id is folded.
 */
PCPU__INLINE intptr_t pcpu__atomic_offset(void)
{
	const struct percpu_hot *h = &percpu_hot;
	unsigned int i;

	if (h->rseq_index_tp_off) {
		i = pcpu_arch_tp_u32(h->rseq_index_tp_off);
		if (pcpu__likely(i < h->nr_atomic_index))
			return h->index_offset[i];
	}
	h->getcpu(&i, NULL, NULL);
	if (pcpu__unlikely(i >= h->nr_atomic_index))
		i = pcpu_current_index();
	return h->index_offset[i];
}

/* The current CPU's offset (may be stale as soon as it is returned). */
PCPU__INLINE intptr_t pcpu__cur_offset(void)
{
	for (;;) {
		int m = pcpu__mode();

		if (pcpu__likely(m == PERCPU__MODE_RSEQ || m == PERCPU__MODE_ATOMIC))
			return pcpu__atomic_offset();
		percpu__slowpath();
	}
}

#if PERCPU_ARCH_RSEQ
/* The rseq word with acquire, for the slow paths' retries. */
PCPU__INLINE uint64_t pcpu__rseq_word(void)
{
	/* Acquire: pairs with the release that opens the rseq path. */
	return __atomic_load_n(&percpu_hot.rseq_tp_offs, __ATOMIC_ACQUIRE);
}

/*
 * The rseq word as an operation's first attempt reads it: an asm the
 * compiler may hoist out of a loop or share between operations, like a
 * constant.  Any value it keeps is safe: the word only goes from 0 to its
 * value once (setup) and back to 0 once (the switch to atomics).  A stale
 * 0 sends the operation to percpu__this_slow(), which reads the word
 * again; a stale word finds the zeroed table inside the critical section
 * and leaves for the slow path too (src/rseq.c).
 */
PCPU__INLINE uint64_t pcpu__rseq_word_fast(void)
{
	_Static_assert(__builtin_offsetof(struct percpu_hot, rseq_tp_offs) == 0,
		       "the word is percpu_hot's first field");
	return PCPU__PURE_LOAD64(percpu_hot);
}
#else
PCPU__INLINE uint64_t pcpu__rseq_word(void)
{
	return 0;
}

PCPU__INLINE uint64_t pcpu__rseq_word_fast(void)
{
	return 0;
}
#endif

/*
 * Atomic mode's short way to the current CPU's offset: the index from
 * the rseq area (when one is readable) looked up in percpu__atomic_offset,
 * a table filled only once the process is in atomic mode.  0: take the
 * long way (mode check, getcpu()).
 */
PCPU__INLINE intptr_t pcpu__atomic_fast_offset(void)
{
#if PERCPU_ARCH_RSEQ
	long io = __atomic_load_n(&percpu_hot.rseq_index_tp_off, __ATOMIC_RELAXED);

	if (!io)
		return 0;
	/* Acquire: pairs with the release that fills the table. */
	return __atomic_load_n(&pcpu_arch_atomic_table()[pcpu_arch_tp_u16(io)], __ATOMIC_ACQUIRE);
#else
	return 0;
#endif
}

/*
 * An operation's inline part, for a translated per-CPU address a: one
 * critical section (fast: true when it committed) in rseq mode, one
 * relaxed atomic on the current CPU's slot in atomic mode, short way or
 * long (a unit offset is never 0, so 0 means "none").
 * Everything else, including an address that is not negative (a static
 * variable not translated yet), is percpu__this_slow()'s.
 */
#if PERCPU_ARCH_RSEQ
# define PCPU__TRY_RSEQ(fast)						\
		if (pcpu__likely(w != 0)) {				\
			if (pcpu__likely(fast))				\
				return r;				\
		} else
#else
# define PCPU__TRY_RSEQ(fast)
#endif
#define PCPU__INLINE_OP(fast, atomic_expr, slow)				\
	uint64_t w = pcpu__rseq_word_fast();				\
	(void)w;							\
	if (pcpu__likely((intptr_t)a < 0)) {				\
		PCPU__TRY_RSEQ(fast)					\
		{							\
			intptr_t off = pcpu__atomic_fast_offset();	\
			if (!off && pcpu__mode() == PERCPU__MODE_ATOMIC) \
				off = pcpu__atomic_offset();		\
			if (pcpu__likely(off != 0)) {			\
				atomic_expr;				\
				return r;				\
			}						\
		}							\
	}								\
	return slow;

#define PCPU__SLOT(ut) ((ut *)(a + off))

#define PCPU__GEN_OPS(n, ut)							\
PCPU__INLINE uint64_t pcpu__add_##n(uintptr_t a, ut v)				\
{										\
	uint64_t r = 0;								\
	PCPU__INLINE_OP(pcpu_arch_add_##n(w, a, v),				\
		__atomic_fetch_add(PCPU__SLOT(ut), v, __ATOMIC_RELAXED),		\
		percpu__this_slow(PCPU__OP(PCPU__ADD, n), a, v, 0))		\
}										\
PCPU__INLINE uint64_t pcpu__and_##n(uintptr_t a, ut v)				\
{										\
	uint64_t r = 0;								\
	PCPU__INLINE_OP(pcpu_arch_and_##n(w, a, v),				\
		__atomic_fetch_and(PCPU__SLOT(ut), v, __ATOMIC_RELAXED),		\
		percpu__this_slow(PCPU__OP(PCPU__AND, n), a, v, 0))		\
}										\
PCPU__INLINE uint64_t pcpu__or_##n(uintptr_t a, ut v)				\
{										\
	uint64_t r = 0;								\
	PCPU__INLINE_OP(pcpu_arch_or_##n(w, a, v),				\
		__atomic_fetch_or(PCPU__SLOT(ut), v, __ATOMIC_RELAXED),		\
		percpu__this_slow(PCPU__OP(PCPU__OR, n), a, v, 0))		\
}										\
PCPU__INLINE uint64_t pcpu__write_##n(uintptr_t a, ut v)			\
{										\
	uint64_t r = 0;								\
	PCPU__INLINE_OP(pcpu_arch_write_##n(w, a, v),				\
		__atomic_store_n(PCPU__SLOT(ut), v, __ATOMIC_RELAXED),		\
		percpu__this_slow(PCPU__OP(PCPU__WRITE, n), a, v, 0))		\
}										\
PCPU__INLINE uint64_t pcpu__add_return_##n(uintptr_t a, ut v)			\
{										\
	uint64_t r;								\
	PCPU__INLINE_OP(pcpu_arch_add_return_##n(w, a, v, &r),			\
		r = __atomic_add_fetch(PCPU__SLOT(ut), v, __ATOMIC_RELAXED),	\
		(ut)percpu__this_slow(PCPU__OP(PCPU__ADD_RETURN, n), a, v, 0))	\
}										\
PCPU__INLINE uint64_t pcpu__xchg_##n(uintptr_t a, ut v)			\
{										\
	uint64_t r;								\
	PCPU__INLINE_OP(pcpu_arch_xchg_##n(w, a, v, &r),				\
		r = __atomic_exchange_n(PCPU__SLOT(ut), v, __ATOMIC_RELAXED),	\
		(ut)percpu__this_slow(PCPU__OP(PCPU__XCHG, n), a, v, 0))		\
}										\
PCPU__INLINE uint64_t pcpu__cmpxchg_##n(uintptr_t a, ut o, ut nv)		\
{										\
	uint64_t r;								\
	PCPU__INLINE_OP(pcpu_arch_cmpxchg_##n(w, a, o, nv, &r),			\
		ut e = o;							\
		__atomic_compare_exchange_n(PCPU__SLOT(ut), &e, nv, false,	\
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);	\
		r = e,								\
		(ut)percpu__this_slow(PCPU__OP(PCPU__CMPXCHG, n), a, o, nv))	\
}

/*
 * Adds v to the current CPU's 32-bit slot only while the sum stays
 * strictly within (-bound, bound); returns whether it added (the fast path
 * of percpu_counter_add_batch: one critical section, no read-then-cmpxchg).
 * a: a dynamic per-CPU pointer.  Needs |v| < bound <= 2^30 (the critical
 * section's arithmetic is 32-bit); the caller checks, and not adding is
 * always allowed: the caller folds instead.
 */
int percpu__add_within_4_slow(uintptr_t a, int32_t v, int32_t bound);
PCPU__INLINE int pcpu__add_within_4(uintptr_t a, int32_t v, int32_t bound)
{
	int r = 0;

	if (pcpu__unlikely(bound > (1 << 30)))
		bound = 1 << 30;
	if (pcpu__unlikely(v >= bound || v <= -bound))
		return 0;
	PCPU__INLINE_OP(
		(r = pcpu_arch_add_within_4(w, a, v, bound)) >= 0,
		r = pcpu__add_within_cas(PCPU__SLOT(int32_t), v, bound),
		percpu__add_within_4_slow(a, v, bound))
}

#else /* !PERCPU_SMP */

PCPU__INLINE int pcpu__add_within_4(uintptr_t a, int32_t v, int32_t bound)
{
	return pcpu__add_within_cas((int32_t *)a, v, bound);
}

/*
 * UP build: one copy, and per-CPU pointers are plain pointers.  A
 * userspace UP build still runs threads, so the operations stay atomic
 * (the kernel's UP build only needs to disable interrupts).
 */
#define PERCPU_ARCH_RSEQ 0
PCPU__INLINE intptr_t pcpu__cur_offset(void)
{
	return 0;
}

#define PCPU__GEN_OPS(n, ut)							\
PCPU__INLINE uint64_t pcpu__add_##n(uintptr_t a, ut v)				\
{										\
	__atomic_fetch_add((ut *)a, v, __ATOMIC_RELAXED);			\
	return 0;								\
}										\
PCPU__INLINE uint64_t pcpu__and_##n(uintptr_t a, ut v)				\
{										\
	__atomic_fetch_and((ut *)a, v, __ATOMIC_RELAXED);			\
	return 0;								\
}										\
PCPU__INLINE uint64_t pcpu__or_##n(uintptr_t a, ut v)				\
{										\
	__atomic_fetch_or((ut *)a, v, __ATOMIC_RELAXED);			\
	return 0;								\
}										\
PCPU__INLINE uint64_t pcpu__write_##n(uintptr_t a, ut v)			\
{										\
	__atomic_store_n((ut *)a, v, __ATOMIC_RELAXED);				\
	return 0;								\
}										\
PCPU__INLINE uint64_t pcpu__add_return_##n(uintptr_t a, ut v)			\
{										\
	return __atomic_add_fetch((ut *)a, v, __ATOMIC_RELAXED);		\
}										\
PCPU__INLINE uint64_t pcpu__xchg_##n(uintptr_t a, ut v)			\
{										\
	return __atomic_exchange_n((ut *)a, v, __ATOMIC_RELAXED);		\
}										\
PCPU__INLINE uint64_t pcpu__cmpxchg_##n(uintptr_t a, ut o, ut nv)		\
{										\
	__atomic_compare_exchange_n((ut *)a, &o, nv, false, __ATOMIC_RELAXED,	\
				    __ATOMIC_RELAXED);				\
	return o;								\
}
#endif /* PERCPU_SMP */

PCPU__GEN_OPS(1, uint8_t)
PCPU__GEN_OPS(2, uint16_t)
PCPU__GEN_OPS(4, uint32_t)
PCPU__GEN_OPS(8, uint64_t)

/* ---- the type-generic layer -------------------------------------------- */

#define PCPU__CHECK_SIZE(p)							\
	_Static_assert(sizeof(*(p)) == 1 || sizeof(*(p)) == 2 ||		\
		       sizeof(*(p)) == 4 || sizeof(*(p)) == 8,			\
		       "percpu: this_cpu operations take 1, 2, 4 or 8-byte operands")

/* The value as the target's type, then as the unsigned type of size n. */
#define PCPU__AS(n, x) ((uint##n##_t)(uintptr_t)(x))

/* op(a, v) for the target's size; yields the uint64_t result. */
#define PCPU__CALL1(op, p, v)	({						\
	PCPU__CHECK_SIZE(p);							\
	uintptr_t pcpu__a = percpu__xlate(p);					\
	__typeof__(*(p)) pcpu__v = (v);						\
	uint64_t pcpu__r;							\
	switch (sizeof(*(p))) {							\
	case 1: pcpu__r = pcpu__##op##_1(pcpu__a, PCPU__AS(8, pcpu__v)); break;	\
	case 2: pcpu__r = pcpu__##op##_2(pcpu__a, PCPU__AS(16, pcpu__v)); break;\
	case 4: pcpu__r = pcpu__##op##_4(pcpu__a, PCPU__AS(32, pcpu__v)); break;\
	default: pcpu__r = pcpu__##op##_8(pcpu__a, PCPU__AS(64, pcpu__v)); break;\
	}									\
	pcpu__r; })

#define PCPU__RET(p, r) ((__typeof__(*(p)))(uintptr_t)(r))

#define percpu_this_write(p, v)		((void)PCPU__CALL1(write, p, v))
#define percpu_this_add(p, v)		((void)PCPU__CALL1(add, p, v))
#define percpu_this_and(p, v)		((void)PCPU__CALL1(and, p, v))
#define percpu_this_or(p, v)		((void)PCPU__CALL1(or, p, v))
/*
 * sub: add the negation in the target's type, as the kernel; negated as
 * unsigned so that the most negative value does not overflow.
 */
#define PCPU__NEG(p, v)	((__typeof__(*(p)))(0ull - (uint64_t)(__typeof__(*(p)))(v)))
#define percpu_this_sub(p, v)		percpu_this_add(p, PCPU__NEG(p, v))
#define percpu_this_inc(p)		percpu_this_add(p, 1)
#define percpu_this_dec(p)		percpu_this_sub(p, 1)
#define percpu_this_add_return(p, v)	PCPU__RET(p, PCPU__CALL1(add_return, p, v))
#define percpu_this_sub_return(p, v)	percpu_this_add_return(p, PCPU__NEG(p, v))
#define percpu_this_inc_return(p)	percpu_this_add_return(p, 1)
#define percpu_this_dec_return(p)	percpu_this_sub_return(p, 1)
#define percpu_this_xchg(p, v)		PCPU__RET(p, PCPU__CALL1(xchg, p, v))

/* Returns the old value; stores new only if it equaled old. */
#define percpu_this_cmpxchg(p, old, new)	PCPU__RET(p, ({			\
	PCPU__CHECK_SIZE(p);							\
	uintptr_t pcpu__a = percpu__xlate(p);					\
	__typeof__(*(p)) pcpu__o = (old), pcpu__n = (new);			\
	uint64_t pcpu__r;							\
	switch (sizeof(*(p))) {							\
	case 1: pcpu__r = pcpu__cmpxchg_1(pcpu__a, PCPU__AS(8, pcpu__o),	\
					  PCPU__AS(8, pcpu__n)); break;		\
	case 2: pcpu__r = pcpu__cmpxchg_2(pcpu__a, PCPU__AS(16, pcpu__o),	\
					  PCPU__AS(16, pcpu__n)); break;	\
	case 4: pcpu__r = pcpu__cmpxchg_4(pcpu__a, PCPU__AS(32, pcpu__o),	\
					  PCPU__AS(32, pcpu__n)); break;	\
	default: pcpu__r = pcpu__cmpxchg_8(pcpu__a, PCPU__AS(64, pcpu__o),	\
					   PCPU__AS(64, pcpu__n)); break;	\
	}									\
	pcpu__r; }))

/* true if *pold was the value (now new); else *pold = the current value. */
#define percpu_this_try_cmpxchg(p, pold, new)	({				\
	__typeof__(*(p)) *pcpu__po = (pold);					\
	__typeof__(*(p)) pcpu__old = *pcpu__po;					\
	__typeof__(*(p)) pcpu__cur = percpu_this_cmpxchg(p, pcpu__old, new);	\
	bool pcpu__ok = pcpu__cur == pcpu__old;					\
	if (!pcpu__ok)								\
		*pcpu__po = pcpu__cur;						\
	pcpu__ok; })

/* A relaxed atomic load of the current CPU's copy, in every mode. */
#define percpu_this_read(p)	({						\
	PCPU__CHECK_SIZE(p);							\
	uintptr_t pcpu__a = percpu__addr(p);					\
	__atomic_load_n((__typeof__(*(p)) *)(pcpu__a + pcpu__cur_offset()),	\
			__ATOMIC_RELAXED); })

/* The current CPU's copy; the thread may migrate right after. */
#define percpu_this_ptr(p)						\
	((__typeof__(*(p)) *)(percpu__addr(p) + pcpu__cur_offset()))

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* PERCPU_OPS_H */
