/* SPDX-License-Identifier: MIT */
/*
 * this_cpu operations on one thread, pinned to one CPU: every operation
 * and every size against plain arithmetic in the same type, on static and
 * dynamic per-CPU variables; the kernel's lib/percpu_test.c widening
 * cases; and the sum over all CPUs (exact whatever the pinning).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include <percpu/ops.h>

static int failures;
#define CHECK(cond) do {							\
	if (!(cond)) {								\
		fprintf(stderr, "%s:%d: %s: FAILED: %s\n", __FILE__, __LINE__,	\
			what, #cond);						\
		if (++failures > 20)						\
			exit(1);						\
	}									\
} while (0)

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static int pinned_cpu = -1;

/* Model arithmetic: unsigned, then back to the type (no signed overflow). */
#define WRAP(T, x) ((T)(x))

/*
 * Random operations on *p compared with a model in the same type T,
 * reading back the pinned CPU's copy and the value through
 * percpu_this_read() after each.
 */
#define EXERCISE(T, p, label) do {						\
	const char *what = label;						\
	T m = 0, r, o, cur;							\
	percpu_this_write(p, (T)0);						\
	CHECK(percpu_this_read(p) == 0);					\
	CHECK(percpu_this_ptr(p) == percpu_ptr(p, pinned_cpu));		\
	for (int it = 0; it < 20000; it++) {					\
		T v = (T)rnd();							\
		switch (rnd() % 14) {						\
		case 0: percpu_this_write(p, v); m = v; break;			\
		case 1: percpu_this_add(p, v); m = WRAP(T, (uint64_t)m + (uint64_t)v); break;		\
		case 2: percpu_this_sub(p, v); m = WRAP(T, (uint64_t)m - (uint64_t)v); break;		\
		case 3: percpu_this_inc(p); m = WRAP(T, (uint64_t)m + 1); break;		\
		case 4: percpu_this_dec(p); m = WRAP(T, (uint64_t)m - 1); break;		\
		case 5: percpu_this_and(p, v | (T)rnd()); m &= (T)(v | (T)(rnd_state)); break; \
		case 6: percpu_this_or(p, v & (T)rnd()); m |= (T)(v & (T)(rnd_state)); break; \
		case 7: r = percpu_this_add_return(p, v); m = WRAP(T, (uint64_t)m + (uint64_t)v);	\
			CHECK(r == m); break;					\
		case 8: r = percpu_this_sub_return(p, v); m = WRAP(T, (uint64_t)m - (uint64_t)v);	\
			CHECK(r == m); break;					\
		case 9: r = percpu_this_inc_return(p); m = WRAP(T, (uint64_t)m + 1);		\
			CHECK(r == m); break;					\
		case 10: r = percpu_this_dec_return(p); m = WRAP(T, (uint64_t)m - 1);	\
			CHECK(r == m); break;					\
		case 11: r = percpu_this_xchg(p, v); CHECK(r == m); m = v; break; \
		case 12: /* cmpxchg: half the time with the right old value */	\
			o = (rnd() & 1) ? m : WRAP(T, (uint64_t)m + 1);			\
			r = percpu_this_cmpxchg(p, o, v);			\
			CHECK(r == m);						\
			if (o == m)						\
				m = v;						\
			break;							\
		default:							\
			o = (rnd() & 1) ? m : (T)(m ^ 1);			\
			cur = o;						\
			if (percpu_this_try_cmpxchg(p, &cur, v)) {		\
				CHECK(o == m);					\
				m = v;						\
			} else {						\
				CHECK(o != m && cur == m);			\
			}							\
			break;							\
		}								\
		CHECK(*percpu_ptr(p, pinned_cpu) == m);				\
		CHECK(percpu_this_read(p) == m);				\
	}									\
	/* wrap-around at the type's limits */					\
	percpu_this_write(p, (T)-1);						\
	percpu_this_inc(p);							\
	CHECK(percpu_this_read(p) == 0);					\
	CHECK(percpu_this_dec_return(p) == (T)-1);				\
} while (0)

/* Pointers: read, write, xchg, cmpxchg, try_cmpxchg. */
#define EXERCISE_PTR(p, label) do {						\
	const char *what = label;						\
	static char objs[4];							\
	void *cur;								\
	percpu_this_write(p, (void *)&objs[0]);					\
	CHECK(percpu_this_read(p) == &objs[0]);					\
	CHECK(percpu_this_xchg(p, (void *)&objs[1]) == &objs[0]);		\
	CHECK(percpu_this_cmpxchg(p, (void *)&objs[0], (void *)&objs[2]) == &objs[1]); \
	CHECK(percpu_this_read(p) == &objs[1]);					\
	CHECK(percpu_this_cmpxchg(p, (void *)&objs[1], (void *)&objs[2]) == &objs[1]); \
	CHECK(*percpu_ptr(p, pinned_cpu) == &objs[2]);				\
	cur = &objs[0];								\
	CHECK(!percpu_this_try_cmpxchg(p, &cur, (void *)&objs[3]) && cur == &objs[2]); \
	CHECK(percpu_this_try_cmpxchg(p, &cur, (void *)&objs[3]));		\
	CHECK(percpu_this_read(p) == &objs[3]);					\
	percpu_this_write(p, NULL);						\
	CHECK(percpu_this_read(p) == NULL);					\
} while (0)

PERCPU_DEFINE(uint8_t, s_u8);
PERCPU_DEFINE(uint16_t, s_u16);
PERCPU_DEFINE(uint32_t, s_u32);
PERCPU_DEFINE(uint64_t, s_u64);
PERCPU_DEFINE(int8_t, s_s8);
PERCPU_DEFINE(int16_t, s_s16);
PERCPU_DEFINE(int32_t, s_s32);
PERCPU_DEFINE(int64_t, s_s64);
PERCPU_DEFINE(void *, s_ptr);
PERCPU_DEFINE(long, long_counter);
PERCPU_DEFINE(unsigned long, ulong_counter);
PERCPU_DEFINE(int, int_counter);
PERCPU_DEFINE(unsigned long, sum_counter) = 7;

#define BOTH(T, name)								\
	do {									\
		EXERCISE(T, PERCPU_VAR(s_##name), "static " #T);		\
		T *d = PERCPU_ALLOC(T);						\
		if (!d) {							\
			fprintf(stderr, "percpu_alloc(" #T ") failed\n");	\
			exit(1);						\
		}								\
		EXERCISE(T, d, "dynamic " #T);					\
		percpu_free(d);							\
	} while (0)

/*
 * percpu__this_slow(), where an operation goes when its inline attempt
 * cannot finish (a static variable it cannot translate, a critical
 * section that left, atomic mode's long way): every kind and size against
 * the model, on a dynamic pointer and on a static variable's image
 * address (which the slow path translates itself).
 */
#define SLOW_OPS(T, n, p, label) do {						\
	const char *what = label;						\
	uintptr_t a = (uintptr_t)(p);						\
	T m = 0, r, o;								\
	percpu__this_slow(PCPU__OP(PCPU__WRITE, n), a, 0, 0);			\
	for (int it = 0; it < 2000; it++) {					\
		T v = (T)rnd();							\
		switch (rnd() % 7) {						\
		case 0: percpu__this_slow(PCPU__OP(PCPU__ADD, n), a, v, 0);	\
			m = WRAP(T, (uint64_t)m + (uint64_t)v); break;		\
		case 1: percpu__this_slow(PCPU__OP(PCPU__AND, n), a, v | (T)rnd(), 0); \
			m &= (T)(v | (T)rnd_state); break;			\
		case 2: percpu__this_slow(PCPU__OP(PCPU__OR, n), a, v & (T)rnd(), 0); \
			m |= (T)(v & (T)rnd_state); break;			\
		case 3: percpu__this_slow(PCPU__OP(PCPU__WRITE, n), a, v, 0); m = v; break; \
		case 4: r = (T)percpu__this_slow(PCPU__OP(PCPU__ADD_RETURN, n), a, v, 0); \
			m = WRAP(T, (uint64_t)m + (uint64_t)v); CHECK(r == m); break; \
		case 5: r = (T)percpu__this_slow(PCPU__OP(PCPU__XCHG, n), a, v, 0); \
			CHECK(r == m); m = v; break;				\
		default:							\
			o = (rnd() & 1) ? m : WRAP(T, (uint64_t)m + 1);		\
			r = (T)percpu__this_slow(PCPU__OP(PCPU__CMPXCHG, n), a, o, v); \
			CHECK(r == m);						\
			if (o == m)						\
				m = v;						\
			break;							\
		}								\
		CHECK(*percpu_ptr(p, pinned_cpu) == m);				\
	}									\
} while (0)

static void slow_path(void)
{
#if PERCPU_SMP
	uint64_t *d = PERCPU_ALLOC(uint64_t);

	if (!d) {
		fprintf(stderr, "percpu_alloc failed\n");
		exit(1);
	}
	SLOW_OPS(uint8_t, 1, &percpu__s_u8, "slow path, static u8");
	SLOW_OPS(uint16_t, 2, &percpu__s_u16, "slow path, static u16");
	SLOW_OPS(uint32_t, 4, &percpu__s_u32, "slow path, static u32");
	SLOW_OPS(uint64_t, 8, &percpu__s_u64, "slow path, static u64");
	SLOW_OPS(uint8_t, 1, (uint8_t *)d, "slow path, dynamic u8");
	SLOW_OPS(uint16_t, 2, (uint16_t *)d, "slow path, dynamic u16");
	SLOW_OPS(uint32_t, 4, (uint32_t *)d, "slow path, dynamic u32");
	SLOW_OPS(uint64_t, 8, d, "slow path, dynamic u64");
	percpu_free(d);
#endif
}

/* The kernel's lib/percpu_test.c: operands widen to the target type. */
static void widening(void)
{
	const char *what = "widening";
	unsigned int ui_one = 1;
	long l;
	unsigned long ul;

	percpu_this_write(PERCPU_VAR(ulong_counter), 0);
	percpu_this_add(PERCPU_VAR(ulong_counter), -(unsigned int)1);
	ul = percpu_this_read(PERCPU_VAR(ulong_counter));
	CHECK(ul == 0xffffffffUL);
	percpu_this_inc(PERCPU_VAR(ulong_counter));
	CHECK(percpu_this_read(PERCPU_VAR(ulong_counter)) == 0x100000000UL);

	percpu_this_write(PERCPU_VAR(ulong_counter), 0);
	percpu_this_sub(PERCPU_VAR(ulong_counter), ui_one);
	CHECK(percpu_this_read(PERCPU_VAR(ulong_counter)) == ULONG_MAX);
	percpu_this_write(PERCPU_VAR(ulong_counter), 0);
	percpu_this_dec(PERCPU_VAR(ulong_counter));
	CHECK(percpu_this_read(PERCPU_VAR(ulong_counter)) == ULONG_MAX);

	percpu_this_write(PERCPU_VAR(ulong_counter), 0);
	percpu_this_add(PERCPU_VAR(ulong_counter), ~0u);
	CHECK(percpu_this_read(PERCPU_VAR(ulong_counter)) == (uint64_t)UINT_MAX);
	ul = percpu_this_sub_return(PERCPU_VAR(ulong_counter), ui_one);
	CHECK(ul == (uint64_t)UINT_MAX - 1);
	ul = percpu_this_add_return(PERCPU_VAR(ulong_counter), ui_one);
	CHECK(ul == (uint64_t)UINT_MAX);

	percpu_this_write(PERCPU_VAR(long_counter), 0);
	percpu_this_add(PERCPU_VAR(long_counter), -(unsigned int)1);
	CHECK(percpu_this_read(PERCPU_VAR(long_counter)) == 0xffffffffL);
	percpu_this_write(PERCPU_VAR(long_counter), 0);
	percpu_this_sub(PERCPU_VAR(long_counter), ui_one);
	CHECK(percpu_this_read(PERCPU_VAR(long_counter)) == -1);
	l = percpu_this_add_return(PERCPU_VAR(long_counter), ui_one);
	CHECK(l == 0);
	l = percpu_this_sub_return(PERCPU_VAR(long_counter), ui_one);
	CHECK(l == -1);
	l = percpu_this_add_return(PERCPU_VAR(long_counter), -1);
	CHECK(l == -2);

	/* narrowing: a long operand on an int target */
	percpu_this_write(PERCPU_VAR(int_counter), 0);
	long big = 0x100000001L;	/* a variable: the constant would warn */
	percpu_this_add(PERCPU_VAR(int_counter), big);
	CHECK(percpu_this_read(PERCPU_VAR(int_counter)) == 1);
	percpu_this_add(PERCPU_VAR(int_counter), -2L);
	CHECK(percpu_this_read(PERCPU_VAR(int_counter)) == -1);
}

int main(void)
{
	const char *what = "main";
	cpu_set_t set;
	unsigned int cpu;

	if (percpu_setup(NULL)) {
		perror("percpu_setup");
		return 1;
	}
	/* Pin to where we run, so the model is one CPU's copy. */
	pinned_cpu = percpu_current_cpu();
	CPU_ZERO(&set);
	CPU_SET(pinned_cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		return 1;
	}
	pinned_cpu = sched_getcpu();
	if (PERCPU_SMP) {
		CHECK(percpu_current_cpu() == pinned_cpu);
		CHECK(percpu_cpu_possible((unsigned int)pinned_cpu));
	} else {
		CHECK(percpu_current_cpu() == 0);	/* UP: one CPU */
		pinned_cpu = 0;
	}

	/* The static initializer reached every CPU; the sum follows ops. */
	unsigned long before = 0, after = 0;
	percpu_for_each_possible_cpu(cpu)
		before += *percpu_ptr(PERCPU_VAR(sum_counter), cpu);
	CHECK(before == 7ul * percpu_nr_possible);

	BOTH(uint8_t, u8);
	BOTH(uint16_t, u16);
	BOTH(uint32_t, u32);
	BOTH(uint64_t, u64);
	BOTH(int8_t, s8);
	BOTH(int16_t, s16);
	BOTH(int32_t, s32);
	BOTH(int64_t, s64);
	EXERCISE_PTR(PERCPU_VAR(s_ptr), "static void *");
	void **dp = PERCPU_ALLOC(void *);
	CHECK(dp != NULL);
	EXERCISE_PTR(dp, "dynamic void *");
	percpu_free(dp);
	widening();
	slow_path();

	for (int i = 0; i < 1000; i++)
		percpu_this_add(PERCPU_VAR(sum_counter), 3);
	percpu_for_each_possible_cpu(cpu)
		after += *percpu_ptr(PERCPU_VAR(sum_counter), cpu);
	CHECK(after == before + 3000);

	const char *expect = getenv("PERCPU_EXPECT_MODE");
	if (expect)
		CHECK(!strcmp(expect, percpu_mode_name()));
#if PERCPU_SMP && defined(__x86_64__)
	/* Without rseq the CPU comes from the vDSO's getcpu, called directly. */
	uintptr_t vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
	if (getenv("PERCPU_EXPECT_VDSO_GETCPU") && vdso)
		CHECK((uintptr_t)percpu_hot.getcpu - vdso < 65536);
#endif
	printf("test_ops: mode %s, cpu %d, %s\n", percpu_mode_name(), pinned_cpu,
	       failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
