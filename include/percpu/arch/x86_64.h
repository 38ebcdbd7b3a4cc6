/* SPDX-License-Identifier: MIT */
/*
 * rseq critical sections for x86-64.  Included by <percpu/ops.h>.
 *
 * Every operation is one critical section:
 *
 *   6: rseq_cs = &descriptor          (before start_ip: not restartable)
 *   1: idx = low 16 bits of rseq->cpu_id (or mm_cid)
 *      off = percpu__rseq_offset[idx]; if (off == 0) goto slow
 *      ... load / compute ...
 *      commit: one store (or one RMW instruction on memory)
 *   2:                                 (post-commit: end of the section)
 *
 * The kernel moves the instruction pointer to the abort label (4) when the
 * thread is preempted, migrated or signalled inside [1, 2); the abort
 * handler restarts from 6.  The table entry is read inside the section so
 * that pcpu_force_atomic_mode() (zero the entries, then membarrier) sends
 * every section in flight to the atomic fallback.
 *
 * Lean on purpose, measured on Zen 4 (about 0.65 ns per this_cpu_inc in
 * a loop): one load of percpu_hot (a second load of that line costs about
 * 0.2 ns per operation); a 16-bit index into a 65536-entry table, so no
 * bounds check; and the table's address from the GOT, which never changes,
 * so the compiler may keep it in a register across a loop.
 *
 * Only rseq_cs is written in the rseq area; the kernel owns every other
 * field.  In a shared library rseq_cs is cleared again after the commit
 * (and on every exit), so no thread keeps a pointer into code that
 * dlclose() may unmap; libpercpu.so's own sections skip that, since the
 * library is linked never to be unloaded (PERCPU_LIBRARY_NODELETE).
 */
#ifndef PERCPU_ARCH_X86_64_H
#define PERCPU_ARCH_X86_64_H

#include <stdint.h>

#define PERCPU_ARCH_RSEQ 1
#define PERCPU_RSEQ_SIG 0x53053053u

#if defined(__PIC__) && !defined(__PIE__) && !defined(PERCPU_LIBRARY_NODELETE)
# define PCPU__X86_CLEAR "movq $0, %%fs:(%[cs_off])\n\t"
# define PCPU__X86_SLOW "7f"
# define PCPU__X86_SLOW_EXIT "7:\n\t" PCPU__X86_CLEAR "jmp %l[slow]\n\t"
# define PCPU__X86_FULL "8f"
# define PCPU__X86_FULL_EXIT						\
	".pushsection __percpu_rseq_abort, \"ax\"\n"			\
	"8:\n\t" PCPU__X86_CLEAR "jmp %l[full]\n\t"			\
	".popsection\n\t"
#else
# define PCPU__X86_CLEAR ""
# define PCPU__X86_SLOW "%l[slow]"
# define PCPU__X86_SLOW_EXIT ""
# define PCPU__X86_FULL "%l[full]"
# define PCPU__X86_FULL_EXIT ""
#endif

/*
 * The descriptor (struct rseq_cs: version, flags, start_ip,
 * post_commit_offset, abort_ip) is emitted per instance into __rseq_cs;
 * "aw" so a shared library's absolute addresses need no text relocation.
 * On exit %[off] holds the current CPU's unit offset.
 */
#define PCPU__X86_ENTER						\
	".pushsection __rseq_cs, \"aw\"\n\t"			\
	".balign 32\n"						\
	"3:\n\t"						\
	".long 0, 0\n\t"					\
	".quad 1f, 2f - 1f, 4f\n\t"				\
	".popsection\n"						\
	"6:\n\t"						\
	"leaq 3b(%%rip), %[off]\n\t"				\
	"movq %[off], %%fs:(%[cs_off])\n"			\
	"1:\n\t"						\
	"movzwl %%fs:(%[idx_off]), %k[idx]\n\t"			\
	"movq (%[tab], %q[idx], 8), %[off]\n\t"			\
	"testq %[off], %[off]\n\t"				\
	"jz " PCPU__X86_SLOW "\n\t"

/*
 * The abort handler lives out of line.  The signature is the last four
 * bytes before it, encoded as the displacement of "ud1 sig(%rip), %edi"
 * so disassemblers stay in step.
 */
#define PCPU__X86_EXIT						\
	"2:\n\t"						\
	PCPU__X86_CLEAR						\
	".pushsection __percpu_rseq_abort, \"ax\"\n\t"		\
	".byte 0x0f, 0xb9, 0x3d\n\t"				\
	".long 0x53053053\n"					\
	"4:\n\t"						\
	PCPU__X86_CLEAR						\
	"jmp 6b\n\t"						\
	PCPU__X86_SLOW_EXIT					\
	".popsection\n\t"

#define PCPU__X86_OUT [idx] "=&r"(pcpu__idx), [off] "=&r"(pcpu__off)
#define PCPU__X86_IN							\
	[cs_off] "r"((long)(int32_t)w),					\
	[idx_off] "r"((long)((int64_t)w >> 32)),			\
	[tab] "r"(pcpu_arch_rseq_table())

#define PCPU__X86_LOCALS uint64_t pcpu__idx, pcpu__off

/*
 * The tables' addresses (see struct percpu_hot).  Not volatile and reading
 * no memory the compiler knows of: the GOT entry is fixed once the program
 * is loaded, so the compiler may reuse the value instead of reloading it
 * after every operation's memory clobber.  (A C reference to the arrays
 * would also make a PIE program copy them at start-up.)
 */
#define PCPU__X86_GOT_ADDRESS(fn, sym)						\
static inline __attribute__((always_inline)) const intptr_t *fn(void)		\
{										\
	const intptr_t *t;							\
	__asm__("movq " #sym "@GOTPCREL(%%rip), %0" : "=r"(t));			\
	return t;								\
}
PCPU__X86_GOT_ADDRESS(pcpu_arch_rseq_table, percpu__rseq_offset)
PCPU__X86_GOT_ADDRESS(pcpu_arch_atomic_table, percpu__atomic_offset)

/* The low 16 bits of a u32 in the thread's rseq area (no critical section). */
static inline __attribute__((always_inline)) uint64_t pcpu_arch_tp_u16(long off)
{
	uint64_t v;

	__asm__ volatile("movzwl %%fs:(%1), %k0" : "=r"(v) : "r"(off));
	return v;	/* zero-extended to 64 bits: no second extension */
}

/* A u32 from the thread's rseq area (no critical section). */
static inline __attribute__((always_inline)) uint32_t pcpu_arch_tp_u32(long off)
{
	uint32_t v;

	__asm__ volatile("movl %%fs:(%1), %0" : "=r"(v) : "r"(off) : "memory");
	return v;
}

/*
 * The generators.  n: size in bytes; ut: its unsigned type; sfx: the
 * instruction suffix; m: the register modifier for that size; ld: the
 * zero-extending load into a 32/64-bit register, lm its modifier.
 * Each returns 1 when the operation committed, 0 to take the slow path.
 */
#define PCPU__X86_RMW(name, insn, n, ut, sfx, m)				\
static inline __attribute__((always_inline)) int				\
pcpu_arch_##name##_##n(uint64_t w, uintptr_t a, ut v)					\
{										\
	PCPU__X86_LOCALS;							\
	__asm__ volatile goto(PCPU__X86_ENTER						\
		     insn sfx " %" m "[v], (%[off], %[a])\n\t"			\
		     PCPU__X86_EXIT						\
		     : PCPU__X86_OUT						\
		     : PCPU__X86_IN, [a] "r"(a), [v] "er"(v)			\
		     : "memory", "cc" : slow);					\
	return 1;								\
slow:										\
	return 0;								\
}

#define PCPU__X86_GEN(n, ut, sfx, m, ld, lm)					\
PCPU__X86_RMW(add, "add", n, ut, sfx, m)					\
PCPU__X86_RMW(and, "and", n, ut, sfx, m)					\
PCPU__X86_RMW(or, "or", n, ut, sfx, m)						\
PCPU__X86_RMW(write, "mov", n, ut, sfx, m)					\
										\
static inline __attribute__((always_inline)) int				\
pcpu_arch_add_return_##n(uint64_t w, uintptr_t a, ut v, uint64_t *ret)			\
{										\
	PCPU__X86_LOCALS;							\
	uint64_t r;								\
	__asm__ volatile goto(PCPU__X86_ENTER						\
		     "addq %[a], %[off]\n\t"					\
		     ld " (%[off]), %" lm "[r]\n\t"				\
		     "add" sfx " %" m "[v], %" m "[r]\n\t"			\
		     "mov" sfx " %" m "[r], (%[off])\n\t"			\
		     PCPU__X86_EXIT						\
		     : PCPU__X86_OUT, [r] "=&r"(r)				\
		     : PCPU__X86_IN, [a] "r"(a), [v] "r"(v)			\
		     : "memory", "cc" : slow);					\
	*ret = r;								\
	return 1;								\
slow:										\
	return 0;								\
}										\
										\
static inline __attribute__((always_inline)) int				\
pcpu_arch_xchg_##n(uint64_t w, uintptr_t a, ut v, uint64_t *ret)				\
{										\
	PCPU__X86_LOCALS;							\
	uint64_t r;								\
	__asm__ volatile goto(PCPU__X86_ENTER						\
		     "addq %[a], %[off]\n\t"					\
		     ld " (%[off]), %" lm "[r]\n\t"				\
		     "mov" sfx " %" m "[v], (%[off])\n\t"			\
		     PCPU__X86_EXIT						\
		     : PCPU__X86_OUT, [r] "=&r"(r)				\
		     : PCPU__X86_IN, [a] "r"(a), [v] "r"(v)			\
		     : "memory", "cc" : slow);					\
	*ret = r;								\
	return 1;								\
slow:										\
	return 0;								\
}										\
										\
static inline __attribute__((always_inline)) int				\
pcpu_arch_cmpxchg_##n(uint64_t w, uintptr_t a, ut old, ut new, uint64_t *ret)		\
{										\
	PCPU__X86_LOCALS;							\
	uint64_t r;								\
	__asm__ volatile goto(PCPU__X86_ENTER						\
		     "addq %[a], %[off]\n\t"					\
		     ld " (%[off]), %" lm "[r]\n\t"				\
		     "cmp" sfx " %" m "[old], %" m "[r]\n\t"			\
		     "jne 2f\n\t"						\
		     "mov" sfx " %" m "[new], (%[off])\n\t"			\
		     PCPU__X86_EXIT						\
		     : PCPU__X86_OUT, [r] "=&r"(r)				\
		     : PCPU__X86_IN, [a] "r"(a), [old] "r"(old),		\
		       [new] "r"(new)						\
		     : "memory", "cc" : slow);					\
	*ret = r;								\
	return 1;								\
slow:										\
	return 0;								\
}

PCPU__X86_GEN(1, uint8_t, "b", "b", "movzbl", "k")
PCPU__X86_GEN(2, uint16_t, "w", "w", "movzwl", "k")
PCPU__X86_GEN(4, uint32_t, "l", "k", "movl", "k")
PCPU__X86_GEN(8, uint64_t, "q", "q", "movq", "q")

/*
 * percpu_ref's get and put: the ref's mode word *pp is read inside the
 * section, so a switch's membarrier(PRIVATE_EXPEDITED_RSEQ) restarts every
 * section that read per-CPU mode and has not committed (src/ref.c).  The
 * word is the per-CPU pointer of the counts when no bit of mask is set.
 * Returns 1 when added, 0 when a mask bit is set, -1 for the slow path.
 */
static inline __attribute__((always_inline)) int
pcpu_arch_ref_add(uint64_t w, const unsigned long *pp, unsigned long mask, unsigned long v)
{
	PCPU__X86_LOCALS;
	uint64_t p;
	__asm__ volatile goto(PCPU__X86_ENTER
		     "movq (%[pp]), %[p]\n\t"
		     "testq %[mask], %[p]\n\t"
		     "jnz " PCPU__X86_FULL "\n\t"
		     "addq %[v], (%[off], %[p])\n\t"
		     PCPU__X86_EXIT
		     PCPU__X86_FULL_EXIT
		     : PCPU__X86_OUT, [p] "=&r"(p)
		     : PCPU__X86_IN, [pp] "r"(pp), [mask] "er"(mask), [v] "er"(v)
		     : "memory", "cc" : slow, full);
	return 1;
full:
	return 0;
slow:
	return -1;
}

/*
 * percpu_counter's fast path: add v to a 32-bit slot only while the sum
 * stays strictly within (-bound, bound), one unsigned compare of
 * sum + bound - 1 against 2 * bound - 1; otherwise leave for "full"
 * before the commit.  The caller ensures |v| < bound <= 2^30, so the
 * 32-bit sum cannot wrap into the accepted range.
 *
 * 2 * bound - 1 is computed in the section, which saves a register in the
 * caller's loop.  The commit adds v to memory again rather than storing
 * the sum: no other thread of this CPU can change the slot inside the
 * section (a remote percpu_counter_set() may, as in the kernel, where set
 * is exact only with no add running), and a chain of such adds to
 * one slot runs as fast as this_cpu_add's (about 1.2 against 2.8 ns per
 * add on Zen 4), while a load that waits for the previous store and a
 * store of the computed sum run at store-forwarding speed.  The compare
 * only feeds a predicted branch.
 * Returns 1 when added, 0 when full, -1 for the slow path.
 */
static inline __attribute__((always_inline)) int
pcpu_arch_add_within_4(uint64_t w, uintptr_t a, int32_t v, int32_t bound)
{
	PCPU__X86_LOCALS;
	uint32_t r, t;
	__asm__ volatile goto(PCPU__X86_ENTER
		     "movl (%[off], %[a]), %[r]\n\t"
		     "addl %[v], %[r]\n\t"
		     "leal -1(%q[r], %q[b]), %[t]\n\t"
		     "leal -1(%q[b], %q[b]), %[r]\n\t"
		     "cmpl %[r], %[t]\n\t"
		     "jae " PCPU__X86_FULL "\n\t"
		     "addl %[v], (%[off], %[a])\n\t"
		     PCPU__X86_EXIT
		     PCPU__X86_FULL_EXIT
		     : PCPU__X86_OUT, [r] "=&r"(r), [t] "=&r"(t)
		     : PCPU__X86_IN, [a] "r"(a), [v] "er"(v), [b] "r"((int64_t)bound)
		     : "memory", "cc" : slow, full);
	return 1;
full:
	return 0;
slow:
	return -1;
}

/*
 * The same for an amount whose sign is known (a constant: inc, dec, add of
 * a literal): one side of the window can never be crossed, so the check
 * is one compare of the slot with lim, the largest (v > 0: slot < lim =
 * bound - v) or smallest (v < 0: slot > lim = -bound - v) value from
 * which v may be added.
 */
#define PCPU__X86_ADD_ONE_SIDED(name, jfull)					\
static inline __attribute__((always_inline)) int				\
pcpu_arch_##name##_4(uint64_t w, uintptr_t a, int32_t v, int32_t lim)		\
{										\
	PCPU__X86_LOCALS;							\
	__asm__ volatile goto(PCPU__X86_ENTER					\
		     "cmpl %[lim], (%[off], %[a])\n\t"				\
		     jfull " " PCPU__X86_FULL "\n\t"				\
		     "addl %[v], (%[off], %[a])\n\t"				\
		     PCPU__X86_EXIT						\
		     PCPU__X86_FULL_EXIT						\
		     : PCPU__X86_OUT						\
		     : PCPU__X86_IN, [a] "r"(a), [v] "er"(v), [lim] "er"(lim)	\
		     : "memory", "cc" : slow, full);				\
	return 1;								\
full:										\
	return 0;								\
slow:										\
	return -1;								\
}
PCPU__X86_ADD_ONE_SIDED(add_below, "jge")
PCPU__X86_ADD_ONE_SIDED(add_above, "jle")

#endif
