/* SPDX-License-Identifier: MIT */
/*
 * A per-CPU stack of words in the per-CPU range (the allocator's per-CPU
 * object cache).  Each CPU's copy is popped and pushed with one rseq
 * critical section whose commit is the update of head, so no lock and no
 * atomic instruction is needed.
 *
 * head holds the count in its low byte and, above it, how many pushes the
 * stack has had: the push's commit adds both, so the allocator's
 * statistics count every cached free (and, from that, every cached
 * allocation) without a counter of their own on the fast path.
 *
 * Both return 1 on success, 0 when the stack is empty (pop) or full
 * (push), and -1 when rseq cannot be used (atomic mode): the caller then
 * takes its locked path.  Once the process is in atomic mode every call
 * returns -1, so the rseq and locked paths never mix on one stack.
 */
#ifndef PCPU_STACK_H
#define PCPU_STACK_H

#include <stddef.h>
#include <stdint.h>
#include <percpu/ops.h>

struct pcpu_stack {
	uint64_t head;		/* count (bits 0-7), pushes ever (bits 8-63) */
	uint32_t cap;		/* at most 255 */
	uint32_t pad;
	uintptr_t item[];
};

#define PCPU_STACK_COUNT(head) ((uint32_t)((head) & 0xff))
#define PCPU_STACK_PUSHES(head) ((head) >> 8)
#define PCPU_STACK_PUSH_ONE 0x101	/* count + 1, pushes + 1 */

_Static_assert(offsetof(struct pcpu_stack, cap) == 8 &&
	       offsetof(struct pcpu_stack, item) == 16 && sizeof(uintptr_t) == 8,
	       "the critical sections below assume cap at 8 and item[] at 16");

#if PERCPU_SMP && PERCPU_ARCH_RSEQ && defined(__x86_64__)
static inline __attribute__((always_inline)) int
pcpu_arch_stack_pop(uint64_t w, uintptr_t a, uintptr_t *item, int *res)
{
	PCPU__X86_LOCALS;
	uint64_t cnt, r, it;

	__asm__ volatile goto(PCPU__X86_ENTER
		     "addq %[a], %[off]\n\t"
		     "movzbl (%[off]), %k[cnt]\n\t"
		     "xorl %k[r], %k[r]\n\t"
		     "testl %k[cnt], %k[cnt]\n\t"
		     "jz 2f\n\t"
		     /* item[count - 1] is at 16 + 8 * (count - 1) = 8 + 8 * count */
		     "movq 8(%[off], %[cnt], 8), %[it]\n\t"
		     "movl $1, %k[r]\n\t"
		     "decq (%[off])\n\t"
		     PCPU__X86_EXIT
		     : PCPU__X86_OUT, [cnt] "=&r"(cnt), [r] "=&r"(r), [it] "=&r"(it)
		     : PCPU__X86_IN, [a] "r"(a)
		     : "memory", "cc" : slow);
	if (r)
		*item = it;
	*res = (int)r;
	return 1;
slow:
	return 0;
}

static inline __attribute__((always_inline)) int
pcpu_arch_stack_push(uint64_t w, uintptr_t a, uintptr_t item, int *res)
{
	PCPU__X86_LOCALS;
	uint64_t cnt, r;

	__asm__ volatile goto(PCPU__X86_ENTER
		     "addq %[a], %[off]\n\t"
		     "movzbl (%[off]), %k[cnt]\n\t"
		     "xorl %k[r], %k[r]\n\t"
		     "cmpl 8(%[off]), %k[cnt]\n\t"
		     "jae 2f\n\t"
		     /* item[count]: past the top, harmless if we abort */
		     "movq %[item], 16(%[off], %[cnt], 8)\n\t"
		     "movl $1, %k[r]\n\t"
		     "addq $0x101, (%[off])\n\t"
		     PCPU__X86_EXIT
		     : PCPU__X86_OUT, [cnt] "=&r"(cnt), [r] "=&r"(r)
		     : PCPU__X86_IN, [a] "r"(a), [item] "r"(item)
		     : "memory", "cc" : slow);
	*res = (int)r;
	return 1;
slow:
	return 0;
}
/*
 * Pops up to want items in one section: copies the top ones to out (the
 * copy is redone if the section restarts) and commits the new count.
 * *got: how many, the topmost last.
 */
static inline __attribute__((always_inline)) int
pcpu_arch_stack_pop_n(uint64_t w, uintptr_t a, uintptr_t *out, uint32_t want, uint32_t *got)
{
	PCPU__X86_LOCALS;
	uint64_t cnt, nw, i, dst;

	__asm__ volatile goto(PCPU__X86_ENTER
		     "addq %[a], %[off]\n\t"
		     "movzbl (%[off]), %k[cnt]\n\t"
		     "movl %k[cnt], %k[nw]\n\t"
		     "subl %[want], %k[nw]\n\t"
		     "jae 9f\n\t"
		     "xorl %k[nw], %k[nw]\n"
		     "9:\n\t"
		     "movl %k[nw], %k[i]\n\t"
		     "movq %[out], %[dst]\n"
		     "10:\n\t"
		     "cmpl %k[cnt], %k[i]\n\t"
		     "jae 11f\n\t"
		     "movq 16(%[off], %[i], 8), %[idx]\n\t"
		     "movq %[idx], (%[dst])\n\t"
		     "addq $8, %[dst]\n\t"
		     "incl %k[i]\n\t"
		     "jmp 10b\n"
		     "11:\n\t"
		     /* head - (count - new count): the pushes stay */
		     "movl %k[nw], %k[i]\n\t"
		     "subl %k[cnt], %k[i]\n\t"
		     "movslq %k[i], %[i]\n\t"
		     "addq %[i], (%[off])\n\t"
		     PCPU__X86_EXIT
		     : PCPU__X86_OUT, [cnt] "=&r"(cnt), [nw] "=&r"(nw), [i] "=&r"(i),
		       [dst] "=&r"(dst)
		     : PCPU__X86_IN, [a] "rm"(a), [out] "rm"(out), [want] "rm"(want)
		     : "memory", "cc" : slow);
	*got = (uint32_t)(cnt - nw);
	return 1;
slow:
	return 0;
}
#elif PERCPU_SMP && PERCPU_ARCH_RSEQ && defined(__aarch64__)
static inline __attribute__((always_inline)) int
pcpu_arch_stack_pop(uint64_t w, uintptr_t a, uintptr_t *item, int *res)
{
	PCPU__A64_LOCALS;
	uint64_t cnt, r, it;

	__asm__ volatile goto(PCPU__A64_ENTER
		     "ldrb %w[cnt], [%[off]]\n\t"
		     "mov %w[r], #0\n\t"
		     "cbz %w[cnt], 2f\n\t"
		     /* item[count - 1] is at 16 + 8 * (count - 1) = 8 + 8 * count */
		     "add %[it], %[off], %[cnt], lsl #3\n\t"
		     "ldr %[it], [%[it], #8]\n\t"
		     "ldr %[cnt], [%[off]]\n\t"
		     "sub %[cnt], %[cnt], #1\n\t"
		     "mov %w[r], #1\n\t"
		     "str %[cnt], [%[off]]\n\t"
		     PCPU__A64_EXIT
		     : PCPU__A64_OUT, [cnt] "=&r"(cnt), [r] "=&r"(r), [it] "=&r"(it)
		     : PCPU__A64_IN, [a] "r"(a)
		     : "memory", "cc" : slow);
	if (r)
		*item = it;
	*res = (int)r;
	return 1;
slow:
	return 0;
}

static inline __attribute__((always_inline)) int
pcpu_arch_stack_push(uint64_t w, uintptr_t a, uintptr_t item, int *res)
{
	PCPU__A64_LOCALS;
	uint64_t cnt, r, t;

	__asm__ volatile goto(PCPU__A64_ENTER
		     "ldrb %w[cnt], [%[off]]\n\t"
		     "ldr %w[t], [%[off], #8]\n\t"
		     "mov %w[r], #0\n\t"
		     "cmp %w[cnt], %w[t]\n\t"
		     "b.hs 2f\n\t"
		     "add %[t], %[off], %[cnt], lsl #3\n\t"
		     "str %[item], [%[t], #16]\n\t"
		     "ldr %[cnt], [%[off]]\n\t"
		     "add %[cnt], %[cnt], #0x101\n\t"
		     "mov %w[r], #1\n\t"
		     "str %[cnt], [%[off]]\n\t"
		     PCPU__A64_EXIT
		     : PCPU__A64_OUT, [cnt] "=&r"(cnt), [r] "=&r"(r), [t] "=&r"(t)
		     : PCPU__A64_IN, [a] "r"(a), [item] "r"(item)
		     : "memory", "cc" : slow);
	*res = (int)r;
	return 1;
slow:
	return 0;
}

static inline __attribute__((always_inline)) int
pcpu_arch_stack_pop_n(uint64_t w, uintptr_t a, uintptr_t *out, uint32_t want, uint32_t *got)
{
	PCPU__A64_LOCALS;
	uint64_t cnt, nw, i, dst, t;

	__asm__ volatile goto(PCPU__A64_ENTER
		     "ldrb %w[cnt], [%[off]]\n\t"
		     "subs %w[nw], %w[cnt], %w[want]\n\t"
		     "csel %w[nw], %w[nw], wzr, hs\n\t"
		     "mov %w[i], %w[nw]\n\t"
		     "mov %[dst], %[out]\n"
		     "10:\n\t"
		     "cmp %w[i], %w[cnt]\n\t"
		     "b.hs 11f\n\t"
		     "add %[t], %[off], %[i], lsl #3\n\t"
		     "ldr %[t], [%[t], #16]\n\t"
		     "str %[t], [%[dst]], #8\n\t"
		     "add %w[i], %w[i], #1\n\t"
		     "b 10b\n"
		     "11:\n\t"
		     /* head - (count - new count): the pushes stay */
		     "ldr %[t], [%[off]]\n\t"
		     "sub %[t], %[t], %[cnt]\n\t"
		     "add %[t], %[t], %[nw]\n\t"
		     "str %[t], [%[off]]\n\t"
		     PCPU__A64_EXIT
		     : PCPU__A64_OUT, [cnt] "=&r"(cnt), [nw] "=&r"(nw), [i] "=&r"(i),
		       [dst] "=&r"(dst), [t] "=&r"(t)
		     : PCPU__A64_IN, [a] "r"(a), [out] "r"(out), [want] "r"(want)
		     : "memory", "cc" : slow);
	*got = (uint32_t)(cnt - nw);
	return 1;
slow:
	return 0;
}
#endif

#if PERCPU_SMP && PERCPU_ARCH_RSEQ
/*
 * After a critical section could not run (rseq closed, or it left for the
 * slow path): true once the slow path ran and the caller should try
 * again, false in a mode without critical sections (the caller returns -1).
 */
static inline int pcpu_stack_retry(void)
{
	int m = pcpu__mode();

	if (m != PERCPU__MODE_RSEQ && m != PERCPU__MODE_NONE)
		return 0;
	percpu__slowpath();
	return 1;
}

/*
 * stack: a translated per-CPU address (percpu__addr() already applied).
 * The first attempt takes the rseq word as the compiler may have kept it
 * (pcpu__rseq_word_fast()); a retry reads it again.
 */
static inline int pcpu_stack_pop(uintptr_t stack, uintptr_t *item)
{
	uint64_t w = pcpu__rseq_word_fast();
	int res;

	for (;;) {
		if (w && pcpu_arch_stack_pop(w, stack, item, &res))
			return res;
		if (!pcpu_stack_retry())
			return -1;
		w = pcpu__rseq_word();
	}
}

static inline int pcpu_stack_push(uintptr_t stack, uintptr_t item)
{
	uint64_t w = pcpu__rseq_word_fast();
	int res;

	for (;;) {
		if (w && pcpu_arch_stack_push(w, stack, item, &res))
			return res;
		if (!pcpu_stack_retry())
			return -1;
		w = pcpu__rseq_word();
	}
}

/*
 * Pops up to want items into out in one critical section; returns how
 * many (the topmost last), or -1 in atomic mode.
 */
static inline int pcpu_stack_pop_n(uintptr_t stack, uintptr_t *out, uint32_t want)
{
	uint32_t got;

	do {
		uint64_t w = pcpu__rseq_word();
		if (w && pcpu_arch_stack_pop_n(w, stack, out, want, &got))
			return (int)got;
	} while (pcpu_stack_retry());
	return -1;
}

#else /* no critical sections: every call answers "atomic mode" */

static inline int pcpu_stack_pop(uintptr_t stack, uintptr_t *item)
{
	(void)stack, (void)item;
	return -1;
}

static inline int pcpu_stack_push(uintptr_t stack, uintptr_t item)
{
	(void)stack, (void)item;
	return -1;
}

static inline int pcpu_stack_pop_n(uintptr_t stack, uintptr_t *out, uint32_t want)
{
	(void)stack, (void)out, (void)want;
	return -1;
}
#endif

#endif
