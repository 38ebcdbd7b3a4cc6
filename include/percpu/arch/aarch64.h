/* SPDX-License-Identifier: MIT */
/*
 * rseq critical sections for aarch64.  Included by <percpu/ops.h>.
 * The shape is the x86-64 one (see arch/x86_64.h): store rseq_cs, read
 * the index, look it up in the rseq table inside the section, then plain
 * ldr / compute / str with the final str as the commit.  No exclusive
 * loads or stores: rseq's restart makes the sequence per-CPU atomic.
 */
#ifndef PERCPU_ARCH_AARCH64_H
#define PERCPU_ARCH_AARCH64_H

#include <stdint.h>

#if defined(__AARCH64EB__)
/* The critical sections read the low half of cpu_id at its address. */
# error "libpercpu supports little-endian aarch64 only"
#endif

#define PERCPU_ARCH_RSEQ 1
#define PERCPU_RSEQ_SIG 0xd428bc00u

#if defined(__PIC__) && !defined(__PIE__) && !defined(PERCPU_LIBRARY_NODELETE)
# define PCPU__A64_CLEAR "str xzr, [%[tp], %[cs_off]]\n\t"
#else
# define PCPU__A64_CLEAR ""
#endif

/*
 * The slow exit is a conditional branch to a local trampoline, never straight
 * to the C label: b.cond reaches only +-1 MiB and the compiler may move
 * the cold label into another section.  On exit %[off] is the slot.
 */
#define PCPU__A64_ENTER						\
	".pushsection __rseq_cs, \"aw\"\n\t"			\
	".balign 32\n"						\
	"3:\n\t"						\
	".long 0, 0\n\t"					\
	".quad 1f, 2f - 1f, 4f\n\t"				\
	".popsection\n"						\
	"6:\n\t"						\
	"mrs %[tp], tpidr_el0\n\t"				\
	"adrp %[off], 3b\n\t"					\
	"add %[off], %[off], :lo12:3b\n\t"			\
	"str %[off], [%[tp], %[cs_off]]\n"			\
	"1:\n\t"						\
	"ldrh %w[idx], [%[tp], %[idx_off]]\n\t"			\
	"ldr %[off], [%[tab], %[idx], lsl #3]\n\t"		\
	"cbz %[off], 7f\n\t"					\
	"add %[off], %[off], %[a]\n\t"

#define PCPU__A64_EXIT PCPU__A64_EXIT_WITH("")
/* extra: more local trampolines (label: clear, b %l[target]), placed with 7. */
#define PCPU__A64_EXIT_WITH(extra)				\
	"2:\n\t"						\
	PCPU__A64_CLEAR						\
	"b 5f\n"						\
	"7:\n\t"						\
	PCPU__A64_CLEAR						\
	"b %l[slow]\n"						\
	extra							\
	"5:\n\t"						\
	".pushsection __percpu_rseq_abort, \"ax\"\n\t"		\
	".inst 0xd428bc00\n"					\
	"4:\n\t"						\
	PCPU__A64_CLEAR						\
	"b 6b\n\t"						\
	".popsection\n\t"

#define PCPU__A64_LOCALS uint64_t pcpu__idx, pcpu__off, pcpu__tp
#define PCPU__A64_OUT [idx] "=&r"(pcpu__idx), [off] "=&r"(pcpu__off), [tp] "=&r"(pcpu__tp)
#define PCPU__A64_IN							\
	[cs_off] "r"((long)(int32_t)w),					\
	[idx_off] "r"((long)((int64_t)w >> 32)),			\
	[tab] "r"(pcpu_arch_rseq_table())

/* The tables' addresses, from the GOT (see arch/x86_64.h). */
#define PCPU__A64_GOT_ADDRESS(fn, sym)						\
static inline __attribute__((always_inline)) const intptr_t *fn(void)		\
{										\
	const intptr_t *t;							\
	__asm__("adrp %0, :got:" #sym "\n\t"					\
		"ldr %0, [%0, :got_lo12:" #sym "]" : "=r"(t));			\
	return t;								\
}
PCPU__A64_GOT_ADDRESS(pcpu_arch_rseq_table, percpu__rseq_offset)
PCPU__A64_GOT_ADDRESS(pcpu_arch_atomic_table, percpu__atomic_offset)

static inline __attribute__((always_inline)) uint64_t pcpu_arch_tp_u16(long off)
{
	uint64_t tp, v;

	__asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
	__asm__ volatile("ldrh %w0, [%1, %2]" : "=r"(v) : "r"(tp), "r"(off));
	return v;
}

static inline __attribute__((always_inline)) uint32_t pcpu_arch_tp_u32(long off)
{
	uint64_t tp;
	uint32_t v;

	__asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
	__asm__ volatile("ldr %w0, [%1, %2]" : "=r"(v) : "r"(tp), "r"(off) : "memory");
	return v;
}

/*
 * Generators.  ld/st: the load and store for the size, r: the register
 * width ("w" or "x") the value is computed in.
 */
#define PCPU__A64_RMW(name, insn, n, ut, ld, st, r)				\
static inline __attribute__((always_inline)) int				\
pcpu_arch_##name##_##n(uint64_t w, uintptr_t a, ut v)					\
{										\
	PCPU__A64_LOCALS;							\
	uint64_t t;								\
	__asm__ volatile goto(PCPU__A64_ENTER						\
		     ld " %" r "[t], [%[off]]\n\t"				\
		     insn " %" r "[t], %" r "[t], %" r "[v]\n\t"		\
		     st " %" r "[t], [%[off]]\n\t"				\
		     PCPU__A64_EXIT						\
		     : PCPU__A64_OUT, [t] "=&r"(t)				\
		     : PCPU__A64_IN, [a] "r"(a), [v] "r"((uint64_t)v)		\
		     : "memory", "cc" : slow);					\
	return 1;								\
slow:										\
	return 0;								\
}

#define PCPU__A64_GEN(n, ut, ld, st, r)						\
PCPU__A64_RMW(add, "add", n, ut, ld, st, r)					\
PCPU__A64_RMW(and, "and", n, ut, ld, st, r)					\
PCPU__A64_RMW(or, "orr", n, ut, ld, st, r)					\
										\
static inline __attribute__((always_inline)) int				\
pcpu_arch_write_##n(uint64_t w, uintptr_t a, ut v)						\
{										\
	PCPU__A64_LOCALS;							\
	__asm__ volatile goto(PCPU__A64_ENTER						\
		     st " %" r "[v], [%[off]]\n\t"				\
		     PCPU__A64_EXIT						\
		     : PCPU__A64_OUT						\
		     : PCPU__A64_IN, [a] "r"(a), [v] "r"((uint64_t)v)		\
		     : "memory", "cc" : slow);					\
	return 1;								\
slow:										\
	return 0;								\
}										\
										\
static inline __attribute__((always_inline)) int				\
pcpu_arch_add_return_##n(uint64_t w, uintptr_t a, ut v, uint64_t *ret)			\
{										\
	PCPU__A64_LOCALS;							\
	uint64_t t;								\
	__asm__ volatile goto(PCPU__A64_ENTER						\
		     ld " %" r "[t], [%[off]]\n\t"				\
		     "add %" r "[t], %" r "[t], %" r "[v]\n\t"			\
		     st " %" r "[t], [%[off]]\n\t"				\
		     PCPU__A64_EXIT						\
		     : PCPU__A64_OUT, [t] "=&r"(t)				\
		     : PCPU__A64_IN, [a] "r"(a), [v] "r"((uint64_t)v)		\
		     : "memory", "cc" : slow);					\
	*ret = t;								\
	return 1;								\
slow:										\
	return 0;								\
}										\
										\
static inline __attribute__((always_inline)) int				\
pcpu_arch_xchg_##n(uint64_t w, uintptr_t a, ut v, uint64_t *ret)				\
{										\
	PCPU__A64_LOCALS;							\
	uint64_t t;								\
	__asm__ volatile goto(PCPU__A64_ENTER						\
		     ld " %" r "[t], [%[off]]\n\t"				\
		     st " %" r "[v], [%[off]]\n\t"				\
		     PCPU__A64_EXIT						\
		     : PCPU__A64_OUT, [t] "=&r"(t)				\
		     : PCPU__A64_IN, [a] "r"(a), [v] "r"((uint64_t)v)		\
		     : "memory", "cc" : slow);					\
	*ret = t;								\
	return 1;								\
slow:										\
	return 0;								\
}										\
										\
/* old is zero-extended: the load zero-extends sub-word values too. */		\
static inline __attribute__((always_inline)) int				\
pcpu_arch_cmpxchg_##n(uint64_t w, uintptr_t a, ut old, ut new, uint64_t *ret)		\
{										\
	PCPU__A64_LOCALS;							\
	uint64_t t;								\
	__asm__ volatile goto(PCPU__A64_ENTER						\
		     ld " %" r "[t], [%[off]]\n\t"				\
		     "cmp %" r "[t], %" r "[old]\n\t"				\
		     "b.ne 2f\n\t"						\
		     st " %" r "[new], [%[off]]\n\t"				\
		     PCPU__A64_EXIT						\
		     : PCPU__A64_OUT, [t] "=&r"(t)				\
		     : PCPU__A64_IN, [a] "r"(a), [old] "r"((uint64_t)old),	\
		       [new] "r"((uint64_t)new)					\
		     : "memory", "cc" : slow);					\
	*ret = t;								\
	return 1;								\
slow:										\
	return 0;								\
}

PCPU__A64_GEN(1, uint8_t, "ldrb", "strb", "w")
PCPU__A64_GEN(2, uint16_t, "ldrh", "strh", "w")
PCPU__A64_GEN(4, uint32_t, "ldr", "str", "w")
PCPU__A64_GEN(8, uint64_t, "ldr", "str", "x")

/* percpu_ref's get and put (see arch/x86_64.h): the mode word is read in the section. */
static inline __attribute__((always_inline)) int
pcpu_arch_ref_add(uint64_t w, const unsigned long *pp, unsigned long mask, unsigned long v)
{
	PCPU__A64_LOCALS;
	uint64_t p, t;
	__asm__ volatile goto(PCPU__A64_ENTER
		     "ldr %[p], [%[pp]]\n\t"
		     "tst %[p], %[mask]\n\t"
		     "b.ne 8f\n\t"
		     "ldr %[t], [%[off], %[p]]\n\t"
		     "add %[t], %[t], %[v]\n\t"
		     "str %[t], [%[off], %[p]]\n\t"
		     PCPU__A64_EXIT_WITH("8:\n\t" PCPU__A64_CLEAR "b %l[full]\n")
		     : PCPU__A64_OUT, [p] "=&r"(p), [t] "=&r"(t)
		     : PCPU__A64_IN, [a] "r"(0ul), [pp] "r"(pp), [mask] "r"(mask), [v] "r"(v)
		     : "memory", "cc" : slow, full);
	return 1;
full:
	return 0;
slow:
	return -1;
}

/*
 * percpu_counter's fast path (see arch/x86_64.h): a bounded 32-bit add.
 * "full" is reached through a local trampoline in .text, as "slow" is:
 * b.cond reaches only +-1 MiB.
 */
static inline __attribute__((always_inline)) int
pcpu_arch_add_within_4(uint64_t w, uintptr_t a, int32_t v, int32_t bound)
{
	PCPU__A64_LOCALS;
	uint64_t t, u;
	__asm__ volatile goto(PCPU__A64_ENTER
		     "ldr %w[t], [%[off]]\n\t"
		     "add %w[t], %w[t], %w[v]\n\t"
		     "add %w[u], %w[t], %w[bm1]\n\t"
		     "cmp %w[u], %w[range]\n\t"
		     "b.hs 8f\n\t"
		     "str %w[t], [%[off]]\n\t"
		     PCPU__A64_EXIT_WITH("8:\n\t" PCPU__A64_CLEAR "b %l[full]\n")
		     : PCPU__A64_OUT, [t] "=&r"(t), [u] "=&r"(u)
		     : PCPU__A64_IN, [a] "r"(a), [v] "r"((int64_t)v),
		       [bm1] "r"((int64_t)bound - 1), [range] "r"((int64_t)2 * bound - 1)
		     : "memory", "cc" : slow, full);
	return 1;
full:
	return 0;
slow:
	return -1;
}

/* The one-sided variants (see arch/x86_64.h): cond is the "full" condition. */
#define PCPU__A64_ADD_ONE_SIDED(name, bfull)					\
static inline __attribute__((always_inline)) int				\
pcpu_arch_##name##_4(uint64_t w, uintptr_t a, int32_t v, int32_t lim)		\
{										\
	PCPU__A64_LOCALS;							\
	uint64_t t;								\
	__asm__ volatile goto(PCPU__A64_ENTER					\
		     "ldr %w[t], [%[off]]\n\t"					\
		     "cmp %w[t], %w[lim]\n\t"					\
		     bfull " 8f\n\t"						\
		     "add %w[t], %w[t], %w[v]\n\t"				\
		     "str %w[t], [%[off]]\n\t"					\
		     PCPU__A64_EXIT_WITH("8:\n\t" PCPU__A64_CLEAR "b %l[full]\n")	\
		     : PCPU__A64_OUT, [t] "=&r"(t)				\
		     : PCPU__A64_IN, [a] "r"(a), [v] "r"((int64_t)v),		\
		       [lim] "r"((int64_t)lim)					\
		     : "memory", "cc" : slow, full);				\
	return 1;								\
full:										\
	return 0;								\
slow:										\
	return -1;								\
}
PCPU__A64_ADD_ONE_SIDED(add_below, "b.ge")
PCPU__A64_ADD_ONE_SIDED(add_above, "b.le")

#endif
